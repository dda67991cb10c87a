/* test_util.c — tests of engine/util (atomic writes, RNG) and data/npy. */
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/util.h"
#include "tests/test.h"

TEST(npy_round_trip_f32_and_i64) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int64_t shape[2] = {3 + (int64_t)cc_rng_below(&rng, 20), 1 + (int64_t)cc_rng_below(&rng, 40)};
    int64_t count = shape[0] * shape[1];
    float *values = malloc((size_t)count * sizeof(float));
    int64_t *ids = malloc((size_t)shape[0] * sizeof(int64_t));
    for (int64_t i = 0; i < count; i++) values[i] = cc_rng_normal(&rng);
    for (int64_t i = 0; i < shape[0]; i++) ids[i] = (int64_t)cc_rng_u64(&rng) >> 1;
    REQUIRE(cc_npy_write_f32(test_path("x.npy"), 2, shape, values) == 0, "%s", cc_last_error());
    REQUIRE(cc_npy_write_i64(test_path("ids.npy"), 1, shape, ids) == 0, "%s", cc_last_error());
    cc_npy arr;
    REQUIRE(cc_npy_read_f32(test_path("x.npy"), &arr) == 0, "%s", cc_last_error());
    CHECK(arr.ndim == 2 && arr.shape[0] == shape[0] && arr.shape[1] == shape[1]);
    CHECK(memcmp(arr.data, values, (size_t)count * sizeof(float)) == 0);
    cc_npy_free(&arr);
    REQUIRE(cc_npy_read_i64(test_path("ids.npy"), &arr) == 0, "%s", cc_last_error());
    CHECK(arr.ndim == 1 && arr.shape[0] == shape[0]);
    CHECK(memcmp(arr.data, ids, (size_t)shape[0] * sizeof(int64_t)) == 0);
    cc_npy_free(&arr);
    free(values);
    free(ids);
}

TEST_SLOW(npy_matches_numpy) {
    /* numpy reads what we write, and we read what numpy writes (incl. f64 and i32). */
    float values[6] = {1.5f, -2.25f, 3.0f, 0.125f, 7.0f, -0.5f};
    int64_t shape[2] = {2, 3};
    REQUIRE(cc_npy_write_f32(test_path("ours.npy"), 2, shape, values) == 0, "%s", cc_last_error());
    REQUIRE(test_system("/usr/bin/python3 -c \"import numpy as np; a=np.load('%s'); "
                        "assert a.dtype==np.float32 and a.shape==(2,3), a; "
                        "assert (a.ravel()==np.array([1.5,-2.25,3,0.125,7,-0.5],np.float32)).all(); "
                        "np.save('%s', np.arange(12,dtype=np.float64).reshape(3,4)/8); "
                        "np.save('%s', np.arange(5,dtype=np.int32)-2)\"",
                        test_path("ours.npy"), test_path("f64.npy"), test_path("i32.npy")) == 0);
    cc_npy arr;
    REQUIRE(cc_npy_read_f32(test_path("f64.npy"), &arr) == 0, "%s", cc_last_error());
    CHECK(arr.shape[0] == 3 && arr.shape[1] == 4);
    for (int i = 0; i < 12; i++) CHECK(((float *)arr.data)[i] == (float)i / 8, "at %d", i);
    cc_npy_free(&arr);
    REQUIRE(cc_npy_read_i64(test_path("i32.npy"), &arr) == 0, "%s", cc_last_error());
    for (int i = 0; i < 5; i++) CHECK(((int64_t *)arr.data)[i] == i - 2);
    cc_npy_free(&arr);
}

TEST(npy_rejects_bad_files) {
    cc_npy arr;
    REQUIRE(cc_write_file_atomic(test_path("junk.npy"), "not numpy at all", 16) == 0);
    CHECK(cc_npy_read(test_path("junk.npy"), &arr) != 0);
    CHECK(strstr(cc_last_error(), "junk.npy") != NULL, "error should name the file: %s", cc_last_error());
    /* a header that claims more data than the file holds */
    float values[4] = {1, 2, 3, 4};
    int64_t shape[1] = {4};
    REQUIRE(cc_npy_write_f32(test_path("t.npy"), 1, shape, values) == 0);
    char *data;
    size_t size;
    REQUIRE(cc_read_file(test_path("t.npy"), &data, &size) == 0);
    REQUIRE(cc_write_file_atomic(test_path("t.npy"), data, size - 5) == 0);
    free(data);
    CHECK(cc_npy_read(test_path("t.npy"), &arr) != 0);
    CHECK(strstr(cc_last_error(), "truncated") != NULL, "%s", cc_last_error());
    CHECK(cc_npy_read(test_path("missing.npy"), &arr) != 0);
}

TEST(atomic_write_keeps_old_file_on_abort) {
    const char *path = test_path("keep.txt");
    REQUIRE(cc_write_file_atomic(path, "good", 4) == 0);
    cc_atomic_file af;
    REQUIRE(cc_atomic_open(&af, path) == 0);
    fputs("half-written", af.fp);
    cc_atomic_abort(&af);
    char *data;
    size_t size;
    REQUIRE(cc_read_file(path, &data, &size) == 0);
    CHECK(size == 4 && memcmp(data, "good", 4) == 0);
    free(data);
}

TEST(rng_is_deterministic_and_uniform) {
    cc_rng a, b;
    cc_rng_seed(&a, 42);
    cc_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(cc_rng_u64(&a) == cc_rng_u64(&b));
    double sum = 0, sum_sq = 0;
    int n = 100000;
    for (int i = 0; i < n; i++) {
        float x = cc_rng_normal(&a);
        sum += x;
        sum_sq += (double)x * x;
    }
    CHECK(fabs(sum / n) < 0.02, "mean %g", sum / n);
    CHECK(fabs(sum_sq / n - 1) < 0.03, "variance %g", sum_sq / n);
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[cc_rng_below(&a, 7)]++;
    for (int i = 0; i < 7; i++) CHECK(counts[i] > 9500 && counts[i] < 10500, "bucket %d: %d", i, counts[i]);
}
