/* test_index_flat.c — distance kernels, top-k, and the Flat index against a brute-force oracle:
 * exact results (scan and GEMM paths, IP and L2), ids, removal and re-adding, filters, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/distance.h"
#include "index/index.h"
#include "index/topk.h"
#include "tests/test.h"
#include "tests/test_index_helpers.h"

TEST(index_distance_kernels_match_double_reference) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int isa = CC_ISA_SCALAR; isa <= CC_ISA_AVX512; isa++) {
        const cc_dist_kernels *k = cc_dist_for((cc_isa)isa);
        if (!k) continue;
        for (int trial = 0; trial < 20; trial++) {
            int d = 1 + (int)cc_rng_below(&rng, 300);
            float *v = malloc(sizeof(float) * (size_t)d * 6);
            for (int i = 0; i < d * 6; i++) v[i] = cc_rng_normal(&rng);
            const float *q = v, *x[4] = {v + d, v + 2 * d, v + 3 * d, v + 4 * d};
            float ip4[4], l24[4], rows[5];
            k->ip4(q, x[0], x[1], x[2], x[3], (size_t)d, ip4);
            k->l2sq4(q, x[0], x[1], x[2], x[3], (size_t)d, l24);
            k->ip_rows(q, v + d, 5, (size_t)d, rows);
            for (int r = 0; r < 4; r++) {
                double ip = tix_score(q, x[r], d, CC_METRIC_IP), l2 = tix_score(q, x[r], d, CC_METRIC_L2);
                double tol = 1e-5 * (sqrt((double)d) * 4 + 1);
                CHECK(fabs(k->ip(q, x[r], (size_t)d) - ip) <= tol * (1 + fabs(ip)), "%s ip d=%d", k->name, d);
                CHECK(fabs(k->l2sq(q, x[r], (size_t)d) - l2) <= tol * (1 + l2), "%s l2 d=%d", k->name, d);
                CHECK(fabs(ip4[r] - ip) <= tol * (1 + fabs(ip)), "%s ip4 d=%d", k->name, d);
                CHECK(fabs(l24[r] - l2) <= tol * (1 + l2), "%s l2sq4 d=%d", k->name, d);
                CHECK(fabs(rows[r] - ip) <= tol * (1 + fabs(ip)), "%s ip_rows d=%d", k->name, d);
            }
            free(v);
        }
    }
}

TEST(index_topk_heap_keeps_the_k_largest_sorted) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + (int)cc_rng_below(&rng, 500), k = 1 + (int)cc_rng_below(&rng, 40);
        float *v = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) v[i] = (float)cc_rng_below(&rng, 50); /* ties on purpose */
        float sims[64];
        int64_t ids[64];
        cc_topk h;
        cc_topk_init(&h, sims, ids, k);
        for (int i = 0; i < n; i++)
            if (v[i] > cc_topk_threshold(&h)) cc_topk_push(&h, v[i], i);
        cc_topk_finish(&h);
        /* oracle: selection by (value desc, index asc) */
        char *used = calloc((size_t)n, 1);
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!used[i] && (best < 0 || v[i] > v[best])) best = i;
            if (best < 0) {
                CHECK(ids[j] == -1 && isinf(sims[j]), "padding at %d", j);
                continue;
            }
            used[best] = 1;
            CHECK(sims[j] == v[best], "rank %d: %g vs %g", j, sims[j], v[best]);
            if (j > 0 && sims[j] == sims[j - 1]) CHECK(ids[j] > ids[j - 1], "ties ordered by id");
        }
        free(used);
        free(v);
    }
}

/* Compares index results with the oracle: same scores (relative), same ids except where the
 * oracle's neighbouring scores are too close to order reliably in float. */
static void check_against_oracle(const int64_t *ids, const float *scores, const int64_t *want_ids,
                                 const double *want_scores, int64_t nq, int k, const char *what) {
    int bad = 0;
    for (int64_t i = 0; i < nq && bad < 5; i++)
        for (int j = 0; j < k; j++) {
            double ws = want_scores[i * k + j];
            double tol = 1e-4 * (1 + fabs(ws));
            if (!(fabs(scores[i * k + j] - ws) <= tol)) {
                test_fail_at(__FILE__, __LINE__, "%s: query %lld rank %d score %g, expected %g", what, (long long)i, j,
                             scores[i * k + j], ws);
                bad++;
                continue;
            }
            if (ids[i * k + j] != want_ids[i * k + j]) {
                int near_tie = (j > 0 && fabs(want_scores[i * k + j - 1] - ws) <= tol) ||
                               (j + 1 < k && fabs(want_scores[i * k + j + 1] - ws) <= tol);
                if (!near_tie) {
                    test_fail_at(__FILE__, __LINE__, "%s: query %lld rank %d id %lld, expected %lld", what,
                                 (long long)i, j, (long long)ids[i * k + j], (long long)want_ids[i * k + j]);
                    bad++;
                }
            }
        }
}

TEST(index_flat_equals_brute_force) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    const int dims[] = {7, 64, 100};
    for (int m = 0; m < 2; m++) {
        cc_metric metric = m ? CC_METRIC_L2 : CC_METRIC_IP;
        for (int di = 0; di < 3; di++) {
            int d = dims[di];
            int64_t n = 1500 + (int64_t)cc_rng_below(&rng, 1500);
            float *x = tix_clustered(&rng, n, d, 20, metric == CC_METRIC_IP);
            cc_index *idx = cc_index_create("Flat", d, metric);
            REQUIRE(idx && cc_index_add(idx, n, x) == 0, "%s", cc_last_error());
            const int64_t nqs[] = {1, 3, 37}; /* scan (one / several threads) and GEMM paths */
            for (int qi = 0; qi < 3; qi++) {
                int64_t nq = nqs[qi];
                int k = 1 + (int)cc_rng_below(&rng, 20);
                float *q = tix_clustered(&rng, nq, d, 20, metric == CC_METRIC_IP);
                int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k)), *want = malloc(sizeof(int64_t) * (size_t)(nq * k));
                float *scores = malloc(sizeof(float) * (size_t)(nq * k));
                double *want_scores = malloc(sizeof(double) * (size_t)(nq * k));
                REQUIRE(cc_index_search(idx, nq, q, k, ids, scores) == 0, "%s", cc_last_error());
                tix_brute_force(x, n, d, NULL, NULL, q, nq, k, metric, want, want_scores);
                char what[64];
                snprintf(what, sizeof what, "%s d=%d nq=%lld k=%d", cc_metric_name(metric), d, (long long)nq, k);
                check_against_oracle(ids, scores, want, want_scores, nq, k, what);
                free(q);
                free(ids);
                free(want);
                free(scores);
                free(want_scores);
            }
            cc_index_free(idx);
            free(x);
        }
    }
}

TEST(index_flat_ids_remove_and_readd) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 24, k = 10;
    int64_t n = 2000, nq = 20;
    float *x = tix_clustered(&rng, n, d, 10, 1), *q = tix_clustered(&rng, nq, d, 10, 1);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = 1000000 + 7 * i + (int64_t)cc_rng_below(&rng, 7);
    cc_index *idx = cc_index_create("Flat", d, CC_METRIC_IP);
    REQUIRE(cc_index_add_with_ids(idx, n, x, ids) == 0, "%s", cc_last_error());
    /* a duplicate id is refused */
    CHECK(cc_index_add_with_ids(idx, 1, x, ids + 5) != 0);
    CHECK(strstr(cc_last_error(), "already") != NULL, "%s", cc_last_error());
    /* remove every third id */
    int64_t n_rm = 0;
    int64_t *rm = malloc(sizeof(int64_t) * (size_t)n);
    unsigned char *alive = malloc((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        alive[i] = i % 3 != 0;
        if (!alive[i]) rm[n_rm++] = ids[i];
    }
    rm[n_rm] = 424242; /* unknown ids are ignored */
    CHECK(cc_index_remove(idx, n_rm + 1, rm) == n_rm);
    CHECK(cc_index_count(idx) == n - n_rm);
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(nq * k)), *want = malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(nq * k));
    double *want_scores = malloc(sizeof(double) * (size_t)(nq * k));
    REQUIRE(cc_index_search(idx, nq, q, k, got, scores) == 0);
    tix_brute_force(x, n, d, ids, alive, q, nq, k, CC_METRIC_IP, want, want_scores);
    check_against_oracle(got, scores, want, want_scores, nq, k, "after remove");
    int64_t mem_before = cc_index_memory_bytes(idx);
    /* re-add the removed ones (same ids): their slots are reused */
    float *xr = malloc(sizeof(float) * (size_t)(n_rm * d));
    for (int64_t i = 0, j = 0; i < n; i++)
        if (!alive[i]) memcpy(xr + (j++) * d, x + i * d, sizeof(float) * (size_t)d);
    REQUIRE(cc_index_add_with_ids(idx, n_rm, xr, rm) == 0, "%s", cc_last_error());
    CHECK(cc_index_count(idx) == n);
    CHECK(cc_index_memory_bytes(idx) <= mem_before + 64, "slots were not reused: %lld -> %lld",
          (long long)mem_before, (long long)cc_index_memory_bytes(idx));
    REQUIRE(cc_index_search(idx, nq, q, k, got, scores) == 0);
    tix_brute_force(x, n, d, ids, NULL, q, nq, k, CC_METRIC_IP, want, want_scores);
    check_against_oracle(got, scores, want, want_scores, nq, k, "after re-add");
    /* add without ids continues after the largest id */
    REQUIRE(cc_index_add(idx, 1, x) == 0);
    float y[24];
    int64_t max_id = 0;
    for (int64_t i = 0; i < n; i++) max_id = ids[i] > max_id ? ids[i] : max_id;
    CHECK(cc_index_reconstruct(idx, max_id + 1, y) == 0 && memcmp(y, x, sizeof y) == 0);
    cc_index_free(idx);
    free(x), free(q), free(ids), free(rm), free(alive), free(got), free(want), free(scores), free(want_scores), free(xr);
}

TEST(index_flat_filtered_search_returns_only_allowed) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 32, k = 8;
    int64_t n = 6000, nq = 25;
    float *x = tix_clustered(&rng, n, d, 12, 1), *q = tix_clustered(&rng, nq, d, 12, 1);
    cc_index *idx = cc_index_create("Flat", d, CC_METRIC_IP);
    REQUIRE(cc_index_add(idx, n, x) == 0);
    /* dense filter (scan with the filter) and sparse filter (exact scan of the allowed ids) */
    const double keep[] = {0.5, 0.002};
    for (int f = 0; f < 2; f++) {
        uint64_t *words = calloc((size_t)(n + 63) / 64, 8);
        unsigned char *allow = calloc((size_t)n, 1);
        for (int64_t i = 0; i < n; i++)
            if (cc_rng_uniform(&rng) < keep[f]) {
                allow[i] = 1;
                words[i >> 6] |= 1ull << (i & 63);
            }
        cc_id_filter filter = {words, n};
        int64_t *got = malloc(sizeof(int64_t) * (size_t)(nq * k)), *want = malloc(sizeof(int64_t) * (size_t)(nq * k));
        float *scores = malloc(sizeof(float) * (size_t)(nq * k));
        double *want_scores = malloc(sizeof(double) * (size_t)(nq * k));
        for (int batch = 0; batch < 2; batch++) {
            int64_t m = batch ? nq : 1;
            REQUIRE(cc_index_search_filtered(idx, m, q, k, &filter, got, scores) == 0, "%s", cc_last_error());
            tix_brute_force(x, n, d, NULL, allow, q, m, k, CC_METRIC_IP, want, want_scores);
            for (int64_t i = 0; i < m * k; i++) {
                CHECK(got[i] == -1 || allow[got[i]], "id %lld is not allowed", (long long)got[i]);
                CHECK(got[i] == want[i] || fabs(scores[i] - want_scores[i]) < 1e-5, "filter %d rank %lld", f,
                      (long long)i);
                if (want[i] == -1) CHECK(got[i] == -1 && isinf(scores[i]) && scores[i] < 0, "padding");
            }
        }
        free(words), free(allow), free(got), free(want), free(scores), free(want_scores);
    }
    cc_index_free(idx);
    free(x), free(q);
}

TEST(index_rejects_bad_input) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 8;
    float x[80];
    for (int i = 0; i < 80; i++) x[i] = cc_rng_normal(&rng);
    CHECK(cc_index_create("IVF0,Flat", d, CC_METRIC_IP) == NULL);
    CHECK(cc_index_create("HNSW", d, CC_METRIC_IP) == NULL);
    CHECK(cc_index_create("IVF16,PQ3", d, CC_METRIC_IP) == NULL);
    CHECK(strstr(cc_last_error(), "multiple") != NULL, "%s", cc_last_error());
    CHECK(cc_index_create("PQ4x4", d, CC_METRIC_IP) == NULL);
    CHECK(cc_index_create("Flat", 0, CC_METRIC_IP) == NULL);
    CHECK(cc_index_create("Flat,Flat", d, CC_METRIC_IP) == NULL);
    cc_index *idx = cc_index_create("Flat", d, CC_METRIC_L2);
    REQUIRE(idx);
    int64_t ids[4];
    float scores[4];
    CHECK(cc_index_search(idx, 1, x, 1, ids, scores) != 0);
    CHECK(strstr(cc_last_error(), "empty") != NULL, "%s", cc_last_error());
    x[3 * d + 2] = NAN;
    x[7 * d] = INFINITY;
    CHECK(cc_index_add(idx, 10, x) != 0);
    CHECK(strstr(cc_last_error(), "rows 3, 7") != NULL, "%s", cc_last_error());
    CHECK(cc_index_count(idx) == 0);
    x[3 * d + 2] = 1;
    x[7 * d] = 1;
    REQUIRE(cc_index_add(idx, 10, x) == 0);
    CHECK(cc_index_search(idx, 1, x, 11, ids, scores) != 0);
    CHECK(strstr(cc_last_error(), "larger") != NULL, "%s", cc_last_error());
    CHECK(cc_index_search(idx, 1, x, 0, ids, scores) != 0);
    float bad_q[8] = {0, 0, NAN, 0, 0, 0, 0, 0};
    CHECK(cc_index_search(idx, 1, bad_q, 1, ids, scores) != 0);
    CHECK(strstr(cc_last_error(), "queries") != NULL, "%s", cc_last_error());
    int64_t neg = -3;
    CHECK(cc_index_add_with_ids(idx, 1, x, &neg) != 0);
    CHECK(cc_index_set_param(idx, "nprobe", 4) != 0); /* not an IVF index */
    CHECK(cc_index_set_param(idx, "bogus", 4) != 0);
    cc_index_free(idx);
}
