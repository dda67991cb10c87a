/* util.h — small shared helpers for all of clipc: error reporting, checked allocation,
 * clocks, thread count, atomic file writes.
 *
 * Error convention: functions that can fail return an int (0 = ok, -1 = error) or a NULL
 * pointer, after calling cc_set_error() with a message that names the file / op / value
 * at fault. The message is per thread; the CLI prints cc_last_error() and exits non-zero.
 */
#ifndef CLIPC_UTIL_H
#define CLIPC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CC_ERROR_MAX 1024 /* longest error message kept; longer ones are truncated */

void cc_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current error with more context: "loading X: <old message>". */
void cc_prefix_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cc_last_error(void);
void cc_clear_error(void);

/* Allocation that sets an error ("out of memory allocating N bytes for WHAT") on failure. */
void *cc_malloc(size_t nbytes, const char *what);
void *cc_calloc(size_t count, size_t size, const char *what);
void *cc_realloc(void *ptr, size_t nbytes, const char *what);
/* 64-byte aligned allocation (SIMD and cache-line friendly); free with cc_free_aligned. */
void *cc_malloc_aligned(size_t nbytes, const char *what);
void cc_free_aligned(void *ptr);
char *cc_strdup(const char *s);

/* Multiplication of sizes that reports overflow instead of wrapping. Returns 0 on overflow. */
int cc_mul_size(size_t a, size_t b, size_t *out);

double cc_now(void); /* monotonic seconds */

/* Thread count used by kernels (OpenMP) and OpenBLAS. 0 = all cores. */
void cc_set_threads(int n_threads);
int cc_get_threads(void);

/* Global quiet flag (--quiet): progress bars are not drawn. */
extern int cc_quiet;
/* True when progress should be drawn: not quiet, and stdout and stderr are terminals. */
int cc_progress_enabled(void);

#define CC_READ_FILE_MAX (1LL << 30) /* cc_read_file refuses more bytes than this */
/* Reads a whole regular file or pipe (at most CC_READ_FILE_MAX bytes; devices and directories are
 * refused), NUL-terminated. */
int cc_read_file(const char *path, char **out_data, size_t *out_size);

/* Atomic write: data goes to PATH.tmp.<pid>, is fsync'd and renamed over PATH, so a crash or a
 * full disk never leaves a half-written PATH in place of a good one. A commit also removes the
 * PATH-like *.tmp.<pid> files of dead processes in that directory (saves killed by SIGKILL). */
typedef struct cc_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} cc_atomic_file;
int cc_atomic_open(cc_atomic_file *af, const char *path);
int cc_atomic_commit(cc_atomic_file *af); /* flush, fsync, close, rename; reports write errors */
void cc_atomic_abort(cc_atomic_file *af); /* close and delete the temp file */
int cc_write_file_atomic(const char *path, const void *data, size_t size);

int cc_mkdir_p(const char *path);
int cc_file_exists(const char *path);

/* Deterministic random numbers (xoshiro256**), used by synthetic data, init and tests. */
typedef struct cc_rng {
    uint64_t s[4];
} cc_rng;
void cc_rng_seed(cc_rng *rng, uint64_t seed);
uint64_t cc_rng_u64(cc_rng *rng);
double cc_rng_uniform(cc_rng *rng);  /* [0, 1) */
float cc_rng_normal(cc_rng *rng);    /* standard normal */
uint64_t cc_rng_below(cc_rng *rng, uint64_t bound); /* [0, bound) */

#endif
