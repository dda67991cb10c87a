/* util.c — error messages, checked allocation, clocks, threads, atomic writes, RNG.
 * See util.h for the conventions these helpers define for the rest of clipc. */
#include "engine/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char error_message[CC_ERROR_MAX];

void cc_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
}

void cc_prefix_error(const char *fmt, ...) {
    char prefix[CC_ERROR_MAX / 2], old[CC_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof old);
    int len = snprintf(error_message, sizeof error_message, "%s: ", prefix);
    if (len > 0 && (size_t)len < sizeof error_message) snprintf(error_message + len, sizeof error_message - (size_t)len, "%s", old);
}

const char *cc_last_error(void) { return error_message[0] ? error_message : "unknown error"; }
void cc_clear_error(void) { error_message[0] = 0; }

void *cc_malloc(size_t nbytes, const char *what) {
    void *ptr = malloc(nbytes ? nbytes : 1);
    if (!ptr) cc_set_error("out of memory allocating %zu bytes for %s", nbytes, what);
    return ptr;
}

void *cc_calloc(size_t count, size_t size, const char *what) {
    void *ptr = calloc(count ? count : 1, size ? size : 1);
    if (!ptr) cc_set_error("out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return ptr;
}

void *cc_realloc(void *ptr, size_t nbytes, const char *what) {
    void *out = realloc(ptr, nbytes ? nbytes : 1);
    if (!out) cc_set_error("out of memory growing %s to %zu bytes", what, nbytes);
    return out;
}

void *cc_malloc_aligned(size_t nbytes, const char *what) {
    void *ptr = NULL;
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes || posix_memalign(&ptr, 64, rounded ? rounded : 64) != 0) {
        cc_set_error("out of memory allocating %zu bytes for %s", nbytes, what);
        return NULL;
    }
    return ptr;
}

void cc_free_aligned(void *ptr) { free(ptr); }

char *cc_strdup(const char *s) {
    size_t len = strlen(s);
    char *out = cc_malloc(len + 1, "string");
    if (out) memcpy(out, s, len + 1);
    return out;
}

int cc_mul_size(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

double cc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int configured_threads = 0;

/* OpenBLAS exports this; declared weak so that builds without it still link. */
extern void openblas_set_num_threads(int) __attribute__((weak));

void cc_set_threads(int n_threads) {
    if (n_threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = cores > 0 ? (int)cores : 1;
    }
    configured_threads = n_threads;
#ifdef _OPENMP
    omp_set_num_threads(n_threads);
#endif
    if (openblas_set_num_threads) openblas_set_num_threads(n_threads);
}

int cc_get_threads(void) {
    if (configured_threads <= 0) cc_set_threads(0);
    return configured_threads;
}

int cc_quiet = 0;

int cc_progress_enabled(void) { return !cc_quiet && isatty(1) && isatty(2); }

int cc_read_file(const char *path, char **out_data, size_t *out_size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cc_set_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* files and pipes only: a device (/dev/zero) or a directory is never what was meant */
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode))) {
        cc_set_error("%s: not a regular file", path);
        fclose(fp);
        return -1;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > CC_READ_FILE_MAX) {
        cc_set_error("%s: %lld bytes, more than the %lld bytes read at most", path, (long long)st.st_size,
                     (long long)CC_READ_FILE_MAX);
        fclose(fp);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = cc_malloc(cap, path);
    if (!buf) {
        fclose(fp);
        return -1;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *grown = cc_realloc(buf, cap * 2, path);
            if (!grown) {
                free(buf);
                fclose(fp);
                return -1;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0) break;
        if (len > CC_READ_FILE_MAX) { /* a pipe (or a file that grew) past the cap */
            cc_set_error("%s: more than the %lld bytes read at most", path, (long long)CC_READ_FILE_MAX);
            free(buf);
            fclose(fp);
            return -1;
        }
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        free(buf);
        cc_set_error("%s: read error", path);
        return -1;
    }
    buf[len] = 0;
    *out_data = buf;
    if (out_size) *out_size = len;
    return 0;
}

int cc_atomic_open(cc_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t len = strlen(path) + 32;
    af->path = cc_strdup(path);
    af->tmp_path = cc_malloc(len, "temp path");
    if (!af->path || !af->tmp_path) {
        free(af->path);
        free(af->tmp_path);
        return -1;
    }
    snprintf(af->tmp_path, len, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        cc_set_error("%s: cannot create: %s", af->tmp_path, strerror(errno));
        free(af->path);
        free(af->tmp_path);
        return -1;
    }
    return 0;
}

/* Removes NAME.tmp.PID files of dead processes (a save killed by SIGKILL leaves its temporary
 * file) from the directory of path: only regular files of this user whose PID no longer exists. */
static void remove_stale_temps(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *tmp = strstr(e->d_name, ".tmp.");
        if (!tmp) continue;
        while (strstr(tmp + 1, ".tmp.")) tmp = strstr(tmp + 1, ".tmp.");
        const char *digits = tmp + 5;
        if (!*digits || digits[strspn(digits, "0123456789")] || strlen(digits) > 9) continue;
        long pid = strtol(digits, NULL, 10);
        if (pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char file[4096 + 256];
        snprintf(file, sizeof file, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) unlink(file);
    }
    closedir(d);
}

int cc_atomic_commit(cc_atomic_file *af) {
    int failed = fflush(af->fp) != 0 || ferror(af->fp);
    if (!failed) failed = fsync(fileno(af->fp)) != 0;
    int saved_errno = errno;
    if (fclose(af->fp) != 0) failed = 1;
    af->fp = NULL;
    if (!failed && rename(af->tmp_path, af->path) != 0) {
        saved_errno = errno;
        failed = 1;
    }
    if (failed) {
        cc_set_error("%s: write failed (%s); the previous file, if any, is untouched", af->path,
                     strerror(saved_errno));
        unlink(af->tmp_path);
    }
    if (!failed) remove_stale_temps(af->path);
    free(af->path);
    free(af->tmp_path);
    af->path = af->tmp_path = NULL;
    return failed ? -1 : 0;
}

void cc_atomic_abort(cc_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int cc_write_file_atomic(const char *path, const void *data, size_t size) {
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) return -1;
    if (size && fwrite(data, 1, size, af.fp) != size) {
        cc_set_error("%s: write failed: %s", path, strerror(errno));
        cc_atomic_abort(&af);
        return -1;
    }
    return cc_atomic_commit(&af);
}

int cc_mkdir_p(const char *path) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        cc_set_error("%s: bad directory path", path);
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char saved = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
                cc_set_error("%s: cannot create directory: %s", buf, strerror(errno));
                return -1;
            }
            buf[i] = saved;
        }
    }
    return 0;
}

int cc_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void cc_rng_seed(cc_rng *rng, uint64_t seed) {
    /* splitmix64 expands the seed into the four state words */
    for (int i = 0; i < 4; i++) {
        seed += 0x9e3779b97f4a7c15ull;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rng->s[i] = z ^ (z >> 31);
    }
}

uint64_t cc_rng_u64(cc_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cc_rng_uniform(cc_rng *rng) { return (double)(cc_rng_u64(rng) >> 11) * 0x1.0p-53; }

float cc_rng_normal(cc_rng *rng) {
    double u1 = cc_rng_uniform(rng), u2 = cc_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t cc_rng_below(cc_rng *rng, uint64_t bound) {
    if (bound == 0) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = cc_rng_u64(rng);
    while (x >= limit);
    return x % bound;
}
