/* test.h — clipc's unit-test harness.
 *
 *   TEST(name) { CHECK(x == 1, "x was %d", x); }
 *
 * Tests register themselves (constructor attribute) and run each in a forked child, so a crash
 * fails one test, not the run. TEST_SLOW marks tests that call the Python reference or take
 * seconds; the sanitizer run skips them (--skip-slow). The runner prints one line per test and
 * ends with "N passed, M failed".
 */
#ifndef CLIPC_TEST_H
#define CLIPC_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn, int slow);

#define TEST_IMPL(name, slow)                                                                        \
    static void name(void);                                                                          \
    __attribute__((constructor)) static void register_##name(void) { test_register(#name, __FILE__, name, slow); } \
    static void name(void)
#define TEST(name) TEST_IMPL(name, 0)
#define TEST_SLOW(name) TEST_IMPL(name, 1)

void test_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Failure of CHECK/REQUIRE: prints the condition's text, then the optional message. */
void test_fail_cond(const char *file, int line, const char *kind, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
extern int test_failures; /* failures in the current test */

/* CHECK records a failure and continues; REQUIRE also returns from the test function. */
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) test_fail_cond(__FILE__, __LINE__, "CHECK", #cond, "" __VA_ARGS__); \
    } while (0)
#define REQUIRE(cond, ...)                                                     \
    do {                                                                       \
        if (!(cond)) {                                                         \
            test_fail_cond(__FILE__, __LINE__, "REQUIRE", #cond, "" __VA_ARGS__); \
            return;                                                            \
        }                                                                      \
    } while (0)

/* max|a-b| / max|b| (norm-wise relative error; 0/0 = 0). */
double test_rel_error(const float *a, const float *b, int64_t n);
#define CHECK_REL(a, b, n, tol, what)                                                             \
    do {                                                                                          \
        double rel_ = test_rel_error((a), (b), (n));                                              \
        if (!(rel_ <= (tol))) test_fail_at(__FILE__, __LINE__, "%s: relative error %.3g > %.3g", (what), rel_, (double)(tol)); \
    } while (0)

/* A fresh temporary directory for this test (removed after the test unless it failed). */
const char *test_tmpdir(void);
/* Builds "<tmpdir>/<name>" in a static ring of buffers. */
const char *test_path(const char *name);
/* Root of the source tree (CLIPC_SRC env or the current directory) and ../shared. */
const char *test_src_dir(void);
const char *test_shared_dir(void);
/* Runs /usr/bin/python3 tests/reference/<script> with the arguments (NULL-terminated);
 * returns its exit status (0 = ok). Output goes to <tmpdir>/python.log, shown on failure. */
int test_python(const char *script, ...) __attribute__((sentinel));
/* Runs a shell command; returns the exit status. */
int test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A seed that differs per run (printed, and fixed by CLIPC_TEST_SEED for reproduction). */
uint64_t test_seed(void);

#endif
