/* test_reliability.c — regression tests for inputs a hostile user found by hand (issue 14):
 * overflowing k-means distances, invalid UTF-8 in vocabularies, mismatched caches, bad config
 * fields, over-long paths, malformed safetensors metadata, id overflow, and similar. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/kmeans.h"
#include "tests/test.h"

/* Finite vectors near 1e20: every squared distance overflows float. k-means++ must still pick k
 * distinct data rows as centres (it read before its buffer when no candidate had a finite potential). */
TEST(reliability_kmeans_plusplus_survives_overflowing_distances) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int dims[2] = {8, 48}; /* the small-dimension loop and the distance kernel */
    for (int di = 0; di < 2; di++) {
        int d = dims[di], k = 6;
        int64_t n = 60;
        float *x = malloc(sizeof(float) * (size_t)(n * d));
        for (int64_t i = 0; i < n * d; i++) x[i] = 1e20f * (float)cc_rng_normal(&rng) + 3e20f * (float)(i / d % k);
        float *out = malloc(sizeof(float) * (size_t)(k * d));
        cc_kmeans_params p;
        cc_kmeans_default_params(&p);
        p.seed = test_seed();
        p.init = CC_KMEANS_INIT_PLUSPLUS;
        p.niter = 3;
        double objective = 0;
        int rc = cc_kmeans(x, n, d, k, &p, out, &objective);
        CHECK(rc == 0, "d=%d: %s", d, cc_last_error());
        CHECK(isfinite(objective) && objective > 0, "d=%d: objective %g", d, objective);
        for (int64_t i = 0; rc == 0 && i < (int64_t)k * d; i++) {
            if (!isfinite(out[i])) {
                CHECK(isfinite(out[i]), "d=%d: centroid value %lld is %g", d, (long long)i, out[i]);
                break;
            }
        }
        free(x), free(out);
    }
}
