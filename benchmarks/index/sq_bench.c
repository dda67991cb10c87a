/* sq_bench.c — scalar-quantised Flat storage against float32 Flat, measured in the same run: bytes
 * held, single-query latency (one thread, the code scan against the float scan), and recall@10
 * against the exact float32 result. Prints a markdown table; ratios are to Flat in this run.
 *
 * usage: sq_bench [--n N] [--dim D] [--queries Q] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/index.h"

#define REPEATS 3 /* best of */
#define K 10

static float *random_unit_rows(cc_rng *rng, int64_t n, int d) {
    /* clustered like embeddings: a shared component plus noise, unit length */
    float *x = malloc((size_t)n * d * sizeof(float)), *centre = malloc((size_t)d * sizeof(float));
    for (int j = 0; j < d; j++) centre[j] = cc_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) {
        double norm = 0;
        for (int j = 0; j < d; j++) {
            float v = 0.3f * centre[j] + cc_rng_normal(rng);
            x[i * d + j] = v;
            norm += (double)v * v;
        }
        for (int j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / sqrt(norm));
    }
    free(centre);
    return x;
}

/* Seconds per query, one query per call (the latency a server sees), best of REPEATS. */
static double time_queries(cc_index *idx, const float *q, int64_t nq, int d, int64_t *ids) {
    double best = INFINITY;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cc_now();
        for (int64_t i = 0; i < nq; i++)
            if (cc_index_search(idx, 1, q + i * d, K, ids + i * K, NULL) != 0) return -1;
        double t = (cc_now() - t0) / (double)nq;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int64_t n = 50000, nq = 50;
    int d = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) nq = atoll(argv[i + 1]);
    }
    cc_set_threads(1);
    cc_rng rng;
    cc_rng_seed(&rng, 42);
    float *x = random_unit_rows(&rng, n, d), *q = random_unit_rows(&rng, nq, d);
    int64_t *truth = malloc((size_t)nq * K * sizeof(int64_t)), *ids = malloc((size_t)nq * K * sizeof(int64_t));
    const char *types[] = {"Flat", "SQ8", "F16", "BF16", "SQ8,RFlat"};
    printf("Flat storage, %lld x %d, inner product, one thread, one query per call, %lld queries, best of %d\n\n",
           (long long)n, d, (long long)nq, REPEATS);
    printf("| type | MB held | vs Flat | ms / query | speed vs Flat | recall@10 |\n|---|---|---|---|---|---|\n");
    double flat_bytes = 0, flat_time = 0;
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        cc_index *idx = cc_index_create(types[t], d, CC_METRIC_IP);
        if (!idx || cc_index_train(idx, n, x) != 0 || cc_index_add(idx, n, x) != 0) {
            fprintf(stderr, "sq_bench: %s: %s\n", types[t], cc_last_error());
            return 1;
        }
        double secs = time_queries(idx, q, nq, d, t == 0 ? truth : ids);
        if (secs < 0) {
            fprintf(stderr, "sq_bench: %s: %s\n", types[t], cc_last_error());
            return 1;
        }
        double bytes = (double)cc_index_memory_bytes(idx);
        if (t == 0) flat_bytes = bytes, flat_time = secs;
        int64_t hits = 0;
        const int64_t *found = t == 0 ? truth : ids;
        for (int64_t i = 0; i < nq * K; i += K)
            for (int a = 0; a < K; a++)
                for (int b = 0; b < K; b++)
                    if (found[i + a] == truth[i + b]) hits++;
        printf("| %s | %.1f | %.2fx | %.3f | %.2fx | %.3f |\n", types[t], bytes / 1e6, bytes / flat_bytes, secs * 1e3,
               flat_time / secs, (double)hits / (double)(nq * K));
        cc_index_free(idx);
    }
    free(x), free(q), free(truth), free(ids);
    return 0;
}
