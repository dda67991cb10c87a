/* test_main.c — runner for the unit tests registered with TEST()/TEST_SLOW().
 *
 * usage: unit [--skip-slow] [--no-fork] [--list] [SUBSTRING...]
 * Each test runs in a forked child with its own temporary directory; the parent prints
 * "ok"/"FAIL" per test with its time and ends with "N passed, M failed". */
#include "tests/test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TESTS 2048

typedef struct {
    const char *name;
    const char *file;
    test_fn fn;
    int slow;
} test_case;

static test_case all_tests[MAX_TESTS];
static int n_tests;
int test_failures;
static char current_tmpdir[512];
static uint64_t run_seed;

void test_register(const char *name, const char *file, test_fn fn, int slow) {
    if (n_tests >= MAX_TESTS) {
        fprintf(stderr, "too many tests (raise MAX_TESTS)\n");
        exit(2);
    }
    all_tests[n_tests++] = (test_case){name, file, fn, slow};
}

void test_fail_at(const char *file, int line, const char *fmt, ...) {
    test_failures++;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

void test_fail_cond(const char *file, int line, const char *kind, const char *cond, const char *fmt, ...) {
    test_failures++;
    fprintf(stderr, "    %s:%d: %s(%s) failed", file, line, kind, cond);
    if (fmt[0]) {
        fprintf(stderr, ": ");
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "\n");
}

double test_rel_error(const float *a, const float *b, int64_t n) {
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        if (isnan(a[i]) != isnan(b[i]) || isinf(a[i]) != isinf(b[i])) return INFINITY;
        if (diff > max_diff) max_diff = diff;
        if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
    }
    if (max_diff == 0) return 0;
    return max_ref > 0 ? max_diff / max_ref : INFINITY;
}

const char *test_tmpdir(void) { return current_tmpdir; }

const char *test_path(const char *name) {
    static _Thread_local char ring[8][1024];
    static _Thread_local int next;
    char *buf = ring[next++ % 8];
    snprintf(buf, sizeof ring[0], "%s/%s", current_tmpdir, name);
    return buf;
}

const char *test_src_dir(void) {
    const char *src = getenv("CLIPC_SRC");
    return src ? src : ".";
}

const char *test_shared_dir(void) {
    static char buf[1024];
    const char *shared = getenv("CLIPC_SHARED");
    if (shared) return shared;
    snprintf(buf, sizeof buf, "%s/../shared", test_src_dir());
    return buf;
}

int test_system(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int status = system(cmd);
    if (status == -1) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int test_python(const char *script, ...) {
    char cmd[8192];
    int len = snprintf(cmd, sizeof cmd, "cd '%s' && /usr/bin/python3 tests/reference/%s", test_src_dir(), script);
    va_list ap;
    va_start(ap, script);
    for (const char *arg = va_arg(ap, const char *); arg; arg = va_arg(ap, const char *))
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " '%s'", arg);
    va_end(ap);
    snprintf(cmd + len, sizeof cmd - (size_t)len, " > '%s/python.log' 2>&1", current_tmpdir);
    int status = test_system("%s", cmd);
    if (status != 0) {
        fprintf(stderr, "    python %s failed (exit %d); its output:\n", script, status);
        test_system("sed 's/^/      /' '%s/python.log' | tail -n 30 >&2", current_tmpdir);
    }
    return status;
}

uint64_t test_seed(void) { return run_seed; }

static int run_one(const test_case *tc, int use_fork) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(current_tmpdir, sizeof current_tmpdir, "%s/clipc-test-%s-XXXXXX", base, tc->name);
    if (!mkdtemp(current_tmpdir)) {
        fprintf(stderr, "cannot create temp dir for %s\n", tc->name);
        return 0;
    }
    int ok;
    if (use_fork) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            test_failures = 0;
            tc->fn();
            fflush(stdout);
            fflush(stderr);
            _exit(test_failures ? 1 : 0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (WIFSIGNALED(status)) fprintf(stderr, "    crashed with signal %d\n", WTERMSIG(status));
    } else {
        test_failures = 0;
        tc->fn();
        ok = test_failures == 0;
    }
    if (ok) test_system("rm -rf '%s'", current_tmpdir);
    else fprintf(stderr, "    (files kept in %s)\n", current_tmpdir);
    return ok;
}

static int matches(const char *name, int argc, char **argv, int first_filter) {
    if (first_filter >= argc) return 1;
    for (int i = first_filter; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int skip_slow = 0, use_fork = 1, list = 0, first_filter = 1;
    for (; first_filter < argc && argv[first_filter][0] == '-' && argv[first_filter][1] == '-'; first_filter++) {
        if (!strcmp(argv[first_filter], "--skip-slow")) skip_slow = 1;
        else if (!strcmp(argv[first_filter], "--no-fork")) use_fork = 0;
        else if (!strcmp(argv[first_filter], "--list")) list = 1;
        else {
            fprintf(stderr, "unknown option %s\n", argv[first_filter]);
            return 2;
        }
    }
    const char *seed_env = getenv("CLIPC_TEST_SEED");
    run_seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)run_seed);
    setenv("CLIPC_TEST_SEED_RUN", seed_text, 1);
    if (!list) printf("unit tests (seed %s; reproduce with CLIPC_TEST_SEED=%s)\n", seed_text, seed_text);
    int passed = 0, failed = 0;
    for (int i = 0; i < n_tests; i++) {
        const test_case *tc = &all_tests[i];
        if (!matches(tc->name, argc, argv, first_filter)) continue;
        if (skip_slow && tc->slow) continue;
        if (list) {
            printf("%s%s\n", tc->name, tc->slow ? " (slow)" : "");
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int ok = run_one(tc, use_fork);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf("%s %s (%.2fs)\n", ok ? "ok  " : "FAIL", tc->name, secs);
        fflush(stdout);
        if (ok) passed++;
        else failed++;
    }
    if (!list) printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
