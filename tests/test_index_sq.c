/* test_index_sq.c — scalar-quantised storage (SQ8, F16, BF16; index/sq.c, index/flat_sq.c): the
 * code kernels (AVX2 and portable) against a double reference over the decoded vectors, SQ8's
 * rounding bound, recall against brute force on fresh random data, re-ranking, filters and the
 * factory spellings. File round trips and bad files: test_index_io.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/index.h"
#include "index/sq.h"
#include "tests/test.h"
#include "tests/test_index_helpers.h"

static const cc_sq_kind sq_kinds[] = {CC_SQ_8, CC_SQ_F16, CC_SQ_BF16};

TEST(index_sq_kernels_match_double_reference) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (size_t c = 0; c < sizeof sq_kinds / sizeof sq_kinds[0]; c++)
        for (int trial = 0; trial < 12; trial++) {
            int d = 1 + (int)cc_rng_below(&rng, 300), n = 1 + (int)cc_rng_below(&rng, 20);
            float *x = malloc(sizeof(float) * (size_t)d * n), *q = malloc(sizeof(float) * (size_t)d);
            float *vmin = malloc(sizeof(float) * d), *scale = malloc(sizeof(float) * d);
            for (int i = 0; i < d * n; i++) x[i] = 3.0f * cc_rng_normal(&rng) + 0.5f;
            for (int j = 0; j < d; j++) q[j] = cc_rng_normal(&rng);
            cc_sq8_train(x, n, d, vmin, scale);
            cc_sq sq = {sq_kinds[c], d, vmin, scale};
            size_t cb = cc_sq_code_bytes(sq.kind, d);
            uint8_t *codes = malloc(cb * (size_t)n);
            cc_sq_encode(&sq, x, n, codes);
            float *dec = malloc(sizeof(float) * d), *a = malloc(sizeof(float) * d), out[2][20];
            for (int ip = 0; ip < 2; ip++) {
                cc_sq_query qs;
                cc_sq_query_prepare(&qs, &sq, q, ip, a);
                cc_sq_rows(&qs, codes, (size_t)n, out[0], CC_ISA_SCALAR);
                cc_sq_rows(&qs, codes, (size_t)n, out[1], CC_ISA_AVX512); /* best available level */
                for (int r = 0; r < n; r++) {
                    cc_sq_decode(&sq, codes + (size_t)r * cb, dec);
                    double want = tix_score(q, dec, d, ip ? CC_METRIC_IP : CC_METRIC_L2);
                    double mag = 0; /* sum of the magnitudes of the terms: the scale of rounding error */
                    for (int j = 0; j < d; j++) mag += ip ? fabs((double)q[j] * dec[j]) : ((double)q[j] - dec[j]) * ((double)q[j] - dec[j]);
                    double tol = 2e-6 * sqrt((double)d) * (mag + 1e-3);
                    for (int l = 0; l < 2; l++)
                        CHECK(fabs(out[l][r] - want) <= tol, "%s %s level %d d=%d row %d: %g vs %g", cc_sq_name(sq.kind),
                              ip ? "ip" : "l2", l, d, r, out[l][r], want);
                }
            }
            /* SQ8 rounds to the nearest level: error at most half a step */
            if (sq.kind == CC_SQ_8)
                for (int r = 0; r < n; r++) {
                    cc_sq_decode(&sq, codes + (size_t)r * cb, dec);
                    for (int j = 0; j < d; j++)
                        CHECK(fabsf(dec[j] - x[r * d + j]) <= 0.5f * scale[j] * 1.001f + 1e-5f * fabsf(x[r * d + j]),
                              "SQ8 dim %d: %g decoded as %g (step %g)", j, x[r * d + j], dec[j], scale[j]);
                }
            free(x), free(q), free(vmin), free(scale), free(codes), free(dec), free(a);
        }
}

/* Recall@10 of each storage against brute force over the float vectors. */
TEST(index_sq_recall_against_brute_force) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 48, k = 10;
    int64_t n = 4000, nq = 40;
    struct {
        const char *desc;
        double min_recall;
    } types[] = {{"SQ8", 0.90}, {"Flat,F16", 0.99}, {"BF16", 0.95}, {"SQ8,RFlat", 0.99}, {"Flat,BF16,RFlat", 0.99}};
    for (int m = 0; m < 2; m++) {
        cc_metric metric = m ? CC_METRIC_L2 : CC_METRIC_IP;
        float *x = tix_clustered(&rng, n, d, 30, !m), *q = tix_clustered(&rng, nq, d, 30, !m);
        int64_t *truth = malloc(sizeof(int64_t) * nq * k), *found = malloc(sizeof(int64_t) * nq * k);
        float *scores = malloc(sizeof(float) * nq * k);
        tix_brute_force(x, n, d, NULL, NULL, q, nq, k, metric, truth, NULL);
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            cc_index *idx = cc_index_create(types[t].desc, d, metric);
            REQUIRE(idx, "%s: %s", types[t].desc, cc_last_error());
            REQUIRE(cc_index_train(idx, n, x) == 0 && cc_index_add(idx, n, x) == 0, "%s", cc_last_error());
            REQUIRE(cc_index_search(idx, nq, q, k, found, scores) == 0, "%s", cc_last_error());
            double recall = tix_recall(found, truth, nq, k);
            CHECK(recall >= types[t].min_recall, "%s %s: recall@10 %.3f < %.2f", types[t].desc, cc_metric_name(metric),
                  recall, types[t].min_recall);
            /* scores are the distances to the decoded (or, with RFlat, exact) vectors, best first */
            float *v = malloc(sizeof(float) * d);
            for (int64_t i = 0; i < nq; i++)
                for (int j = 0; j < k; j++) {
                    REQUIRE(cc_index_reconstruct(idx, found[i * k + j], v) == 0);
                    double want = tix_score(q + i * d, v, d, metric), got = scores[i * k + j];
                    if (metric == CC_METRIC_L2 && strstr(types[t].desc, "RFlat")) want = tix_score(q + i * d, x + found[i * k + j] * d, d, metric);
                    CHECK(fabs(got - want) <= 1e-4 * (1 + fabs(want)), "%s score %g vs %g", types[t].desc, got, want);
                    if (j) CHECK(metric == CC_METRIC_IP ? scores[i * k + j] <= scores[i * k + j - 1] : scores[i * k + j] >= scores[i * k + j - 1]);
                }
            free(v);
            cc_index_free(idx);
        }
        free(x), free(q), free(truth), free(found), free(scores);
    }
}

TEST(index_sq_filters_removal_and_spellings) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 20, k = 5;
    int64_t n = 6000;
    float *x = tix_clustered(&rng, n, d, 10, 1);
    cc_index *idx = cc_index_create("Flat,SQ8", d, CC_METRIC_IP);
    REQUIRE(idx);
    CHECK(!strcmp(cc_index_desc(idx), "SQ8"), "%s", cc_index_desc(idx));
    CHECK(!cc_index_is_trained(idx));
    CHECK(cc_index_add(idx, n, x) != 0 && strstr(cc_last_error(), "not trained"), "%s", cc_last_error());
    REQUIRE(cc_index_train(idx, n, x) == 0 && cc_index_add(idx, n, x) == 0);
    CHECK(cc_index_memory_bytes(idx) < n * d * 2, "SQ8 holds %lld bytes", (long long)cc_index_memory_bytes(idx));
    /* a filter allowing every 3rd id (above the small-filter exact path), minus removed ones */
    uint64_t *words = calloc((size_t)(n + 63) / 64, 8);
    for (int64_t i = 0; i < n; i += 3) words[i >> 6] |= 1ull << (i & 63);
    int64_t rm[2] = {0, 3};
    REQUIRE(cc_index_remove(idx, 2, rm) == 2);
    cc_id_filter f = {words, n};
    int64_t ids[10 * 5];
    REQUIRE(cc_index_search_filtered(idx, 10, x + 100 * d, k, &f, ids, NULL) == 0);
    for (int i = 0; i < 10 * k; i++) CHECK(ids[i] >= 6 && ids[i] % 3 == 0, "id %lld", (long long)ids[i]);
    CHECK(cc_index_get_param(idx, "rerank") == -1);
    CHECK(cc_index_set_param(idx, "rerank", 2) != 0 && strstr(cc_last_error(), "does not apply"));
    cc_index_free(idx);
    const char *spellings[][2] = {{"F16", "F16"}, {"Flat,BF16,RFlat", "BF16,RFlat"}, {"SQ8,RFlat", "SQ8,RFlat"}};
    for (int s = 0; s < 3; s++) {
        idx = cc_index_create(spellings[s][0], d, CC_METRIC_L2);
        REQUIRE(idx, "%s", cc_last_error());
        CHECK(!strcmp(cc_index_desc(idx), spellings[s][1]), "%s -> %s", spellings[s][0], cc_index_desc(idx));
        cc_index_free(idx);
    }
    const char *bad[] = {"SQ4", "Flat,SQ8,Flat", "SQ8,RFlat,RFlat", "F16,SQ8"};
    for (int b = 0; b < 4; b++) {
        CHECK(cc_index_create(bad[b], d, CC_METRIC_IP) == NULL && strstr(cc_last_error(), "unknown index type"), "%s", bad[b]);
    }
    free(words), free(x);
}
