/* test_index_hnsw.c — the HNSW graph: recall at a generous ef against brute force, determinism
 * with a seed at one thread, removal (tombstones never returned, slots reused by later adds),
 * filtered search, multi-threaded build. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/index.h"
#include "tests/test.h"
#include "tests/test_index_helpers.h"

static double hnsw_recall(cc_index *idx, const float *x, int64_t n, const int64_t *ids, const unsigned char *alive,
                          const float *q, int64_t nq, int d, int k, int ef, cc_metric metric) {
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(nq * k)), *truth = malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(nq * k));
    cc_search_params p = {0};
    p.ef_search = ef;
    double r = -1;
    if (cc_index_search_ex(idx, nq, q, k, &p, got, scores) == 0) {
        tix_brute_force(x, n, d, ids, alive, q, nq, k, metric, truth, NULL);
        r = tix_recall(got, truth, nq, k);
    }
    free(got), free(truth), free(scores);
    return r;
}

static void recall_case(int64_t n, int d, int M, int ef_construction, int ef, double want, cc_metric metric) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int64_t nq = 100;
    int k = 10;
    float *x = tix_clustered(&rng, n, d, 50, metric == CC_METRIC_IP), *q = tix_clustered(&rng, nq, d, 50, metric == CC_METRIC_IP);
    char desc[32];
    snprintf(desc, sizeof desc, "HNSW%d", M);
    cc_index *idx = cc_index_create(desc, d, metric);
    REQUIRE(idx);
    REQUIRE(cc_index_set_param(idx, "efConstruction", ef_construction) == 0);
    REQUIRE(cc_index_add(idx, n, x) == 0, "%s", cc_last_error());
    double r = hnsw_recall(idx, x, n, NULL, NULL, q, nq, d, k, ef, metric);
    CHECK(r >= want, "%s %s n=%lld d=%d ef=%d: recall@10 %.4f < %.2f", desc, cc_metric_name(metric), (long long)n, d, ef,
          r, want);
    cc_index_free(idx);
    free(x), free(q);
}

TEST_SLOW(index_hnsw_recall_20k) { recall_case(20000, 32, 16, 200, 500, 0.98, CC_METRIC_IP); }

TEST(index_hnsw_recall_small) {
    recall_case(3000, 24, 12, 80, 100, 0.98, CC_METRIC_IP);
    recall_case(3000, 24, 12, 80, 100, 0.98, CC_METRIC_L2);
}

TEST(index_hnsw_is_deterministic_at_one_thread) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 16;
    int64_t n = 2500;
    float *x = tix_clustered(&rng, n, d, 20, 1);
    cc_set_threads(1);
    for (int run = 0; run < 2; run++) {
        cc_index *idx = cc_index_create("HNSW8", d, CC_METRIC_IP);
        REQUIRE(idx && cc_index_set_param(idx, "seed", 99) == 0);
        REQUIRE(cc_index_add(idx, n / 2, x) == 0 && cc_index_add(idx, n - n / 2, x + (n / 2) * d) == 0);
        REQUIRE(cc_index_save(idx, test_path(run ? "b.idx" : "a.idx")) == 0, "%s", cc_last_error());
        cc_index_free(idx);
    }
    CHECK(tix_file_equal(test_path("a.idx"), test_path("b.idx")), "two builds with the same seed differ");
    /* another seed gives another graph */
    cc_index *idx = cc_index_create("HNSW8", d, CC_METRIC_IP);
    REQUIRE(cc_index_set_param(idx, "seed", 100) == 0);
    REQUIRE(cc_index_add(idx, n / 2, x) == 0 && cc_index_add(idx, n - n / 2, x + (n / 2) * d) == 0);
    REQUIRE(cc_index_save(idx, test_path("c.idx")) == 0);
    CHECK(!tix_file_equal(test_path("a.idx"), test_path("c.idx")), "the seed has no effect");
    cc_index_free(idx);
    free(x);
}

TEST(index_hnsw_remove_and_readd_reuses_slots) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 20, k = 10;
    int64_t n = 3000, nq = 50;
    float *x = tix_clustered(&rng, n, d, 25, 1), *q = tix_clustered(&rng, nq, d, 25, 1);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = 5 * i + 3;
    cc_index *idx = cc_index_create("HNSW12", d, CC_METRIC_IP);
    REQUIRE(cc_index_add_with_ids(idx, n, x, ids) == 0, "%s", cc_last_error());
    /* remove 30%, including most of the best matches of the first queries */
    unsigned char *alive = malloc((size_t)n);
    int64_t *rm = malloc(sizeof(int64_t) * (size_t)n), n_rm = 0;
    for (int64_t i = 0; i < n; i++) {
        alive[i] = cc_rng_uniform(&rng) >= 0.3;
        if (!alive[i]) rm[n_rm++] = ids[i];
    }
    REQUIRE(cc_index_remove(idx, n_rm, rm) == n_rm);
    CHECK(cc_index_remove(idx, n_rm, rm) == 0, "second removal finds nothing");
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(nq * k));
    cc_search_params p = {0};
    p.ef_search = 100;
    REQUIRE(cc_index_search_ex(idx, nq, q, k, &p, got, scores) == 0);
    for (int64_t i = 0; i < nq * k; i++) {
        CHECK(got[i] >= 0, "fewer than k results");
        if (got[i] >= 0) CHECK(alive[(got[i] - 3) / 5], "removed id %lld returned", (long long)got[i]);
    }
    double r = hnsw_recall(idx, x, n, ids, alive, q, nq, d, k, 100, CC_METRIC_IP);
    CHECK(r >= 0.95, "recall with tombstones %.4f", r);
    int64_t mem = cc_index_memory_bytes(idx);
    /* re-add the removed vectors under new ids: the removed slots are taken again */
    float *xr = malloc(sizeof(float) * (size_t)(n_rm * d));
    int64_t *new_ids = malloc(sizeof(int64_t) * (size_t)n_rm);
    int64_t *all_ids = malloc(sizeof(int64_t) * (size_t)n);
    memcpy(all_ids, ids, sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0, j = 0; i < n; i++)
        if (!alive[i]) {
            memcpy(xr + j * d, x + i * d, sizeof(float) * (size_t)d);
            new_ids[j] = 1000000 + i;
            all_ids[i] = new_ids[j];
            j++;
        }
    REQUIRE(cc_index_add_with_ids(idx, n_rm, xr, new_ids) == 0, "%s", cc_last_error());
    CHECK(cc_index_count(idx) == n);
    CHECK(cc_index_memory_bytes(idx) == mem, "memory grew from %lld to %lld: slots not reused", (long long)mem,
          (long long)cc_index_memory_bytes(idx));
    r = hnsw_recall(idx, x, n, all_ids, NULL, q, nq, d, k, 100, CC_METRIC_IP);
    CHECK(r >= 0.95, "recall after re-adding %.4f", r);
    cc_index_free(idx);
    free(x), free(q), free(ids), free(alive), free(rm), free(got), free(scores), free(xr), free(new_ids), free(all_ids);
}

TEST(index_hnsw_filtered_search_returns_only_allowed) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 16, k = 10;
    int64_t n = 10000, nq = 30;
    float *x = tix_clustered(&rng, n, d, 30, 1), *q = tix_clustered(&rng, nq, d, 30, 1);
    cc_index *idx = cc_index_create("HNSW16", d, CC_METRIC_IP);
    REQUIRE(cc_index_add(idx, n, x) == 0);
    const double keep[] = {0.6, 0.2, 0.001}; /* graph search with the filter; exact scan when tiny */
    for (int f = 0; f < 3; f++) {
        uint64_t *words = calloc((size_t)(n + 63) / 64, 8);
        unsigned char *allow = calloc((size_t)n, 1);
        for (int64_t i = 0; i < n; i++)
            if (cc_rng_uniform(&rng) < keep[f]) {
                allow[i] = 1;
                words[i >> 6] |= 1ull << (i & 63);
            }
        cc_id_filter filter = {words, n};
        int64_t *got = malloc(sizeof(int64_t) * (size_t)(nq * k)), *truth = malloc(sizeof(int64_t) * (size_t)(nq * k));
        float *scores = malloc(sizeof(float) * (size_t)(nq * k));
        cc_search_params p = {0};
        p.ef_search = 200;
        p.filter = &filter;
        REQUIRE(cc_index_search_ex(idx, nq, q, k, &p, got, scores) == 0);
        for (int64_t i = 0; i < nq * k; i++) CHECK(got[i] == -1 || allow[got[i]], "id %lld not allowed", (long long)got[i]);
        tix_brute_force(x, n, d, NULL, allow, q, nq, k, CC_METRIC_IP, truth, NULL);
        double r = tix_recall(got, truth, nq, k);
        CHECK(r >= (f == 2 ? 0.999 : 0.9), "filter keeping %.1f%%: recall %.4f", 100 * keep[f], r);
        free(words), free(allow), free(got), free(truth), free(scores);
    }
    cc_index_free(idx);
    free(x), free(q);
}

TEST_SLOW(index_hnsw_parallel_build_matches_serial_quality) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 32, k = 10;
    int64_t n = 10000, nq = 100;
    float *x = tix_clustered(&rng, n, d, 40, 1), *q = tix_clustered(&rng, nq, d, 40, 1);
    double recall[2];
    for (int t = 0; t < 2; t++) {
        cc_set_threads(t ? 2 : 1);
        cc_index *idx = cc_index_create("HNSW16", d, CC_METRIC_IP);
        REQUIRE(cc_index_add(idx, n, x) == 0);
        recall[t] = hnsw_recall(idx, x, n, NULL, NULL, q, nq, d, k, 64, CC_METRIC_IP);
        cc_index_free(idx);
    }
    CHECK(recall[1] >= recall[0] - 0.02, "2 threads %.4f vs 1 thread %.4f", recall[1], recall[0]);
    CHECK(recall[0] >= 0.9, "recall %.4f", recall[0]);
    free(x), free(q);
}

/* Every vector of a parallel build is reachable: searching for itself with a wide beam finds it.
 * Nearly parallel vectors (what a random model gives) are the hard case: before concurrent links
 * were merged into a fresh node's own selection, 2 threads lost 3-11 of these 6000 (hnswlib on the
 * same kind of data: ~1 in 12000; clipc at 1 thread: none). Two nodes inserted at the same moment
 * cannot see each other, so a parallel build may still lose one now and then: measured 0-2 (rarely
 * 3) on a loaded machine, hence the bound. Statistical, so release build only (TEST_SLOW). */
TEST_SLOW(index_hnsw_parallel_build_leaves_no_node_unreachable) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 24;
    int64_t n = 3000;
    int lost = 0;
    float *x = malloc(sizeof(float) * (size_t)(n * d)), mean[24];
    for (int round = 0; round < 2; round++) {
        float noise = round ? 0.02f : 0.2f;
        for (int j = 0; j < d; j++) mean[j] = cc_rng_normal(&rng);
        for (int64_t i = 0; i < n; i++) {
            double norm = 0;
            for (int j = 0; j < d; j++) {
                x[i * d + j] = mean[j] + noise * cc_rng_normal(&rng);
                norm += (double)x[i * d + j] * x[i * d + j];
            }
            for (int j = 0; j < d; j++) x[i * d + j] /= (float)sqrt(norm);
        }
        cc_set_threads(2);
        cc_index *idx = cc_index_create("HNSW16", d, CC_METRIC_IP);
        REQUIRE(cc_index_add(idx, n, x) == 0, "%s", cc_last_error());
        cc_set_threads(0);
        cc_search_params p = {0};
        p.ef_search = 400;
        int64_t id;
        float score;
        for (int64_t i = 0; i < n; i++) {
            REQUIRE(cc_index_search_ex(idx, 1, x + i * d, 1, &p, &id, &score) == 0);
            lost += id != i && score < 0.999999f;
        }
        cc_index_free(idx);
    }
    CHECK(lost <= 3, "%d of %lld vectors not found by searching for themselves", lost, (long long)(2 * n));
    free(x);
}
