/* test_index_helpers.h — shared by the tests/test_index_*.c files: embedding-like test data,
 * a brute-force oracle in double precision (independent of the index code), and recall. */
#ifndef CLIPC_TEST_INDEX_HELPERS_H
#define CLIPC_TEST_INDEX_HELPERS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/index.h"

/* n points around n_clusters centres in a low-dimensional latent space mapped to d dims, plus a
 * little isotropic noise; unit length when normalize. */
static inline float *tix_clustered(cc_rng *rng, int64_t n, int d, int n_clusters, int normalize) {
    int latent = d < 16 ? d : 16;
    float *map = malloc((size_t)latent * d * sizeof(float));
    float *centres = malloc((size_t)n_clusters * latent * sizeof(float));
    float *x = malloc((size_t)n * d * sizeof(float));
    for (int i = 0; i < latent * d; i++) map[i] = cc_rng_normal(rng) / sqrtf((float)latent);
    for (int i = 0; i < n_clusters * latent; i++) centres[i] = 2.0f * cc_rng_normal(rng);
    float z[64];
    for (int64_t i = 0; i < n; i++) {
        int c = (int)cc_rng_below(rng, (uint64_t)n_clusters);
        for (int t = 0; t < latent; t++) z[t] = centres[c * latent + t] + cc_rng_normal(rng);
        float *row = x + i * d;
        double norm = 0;
        for (int j = 0; j < d; j++) {
            float v = 0.1f * cc_rng_normal(rng);
            for (int t = 0; t < latent; t++) v += z[t] * map[t * d + j];
            row[j] = v;
            norm += (double)v * v;
        }
        if (normalize && norm > 0)
            for (int j = 0; j < d; j++) row[j] = (float)(row[j] / sqrt(norm));
    }
    free(map);
    free(centres);
    return x;
}

/* Exact scores in double: inner product or squared L2. */
static inline double tix_score(const float *a, const float *b, int d, cc_metric metric) {
    double s = 0;
    for (int j = 0; j < d; j++) {
        if (metric == CC_METRIC_IP) s += (double)a[j] * b[j];
        else s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    }
    return s;
}

/* Top-k of each query over the rows allowed (allow may be NULL), ids = ids[row] or row. */
static inline void tix_brute_force(const float *x, int64_t n, int d, const int64_t *ids, const unsigned char *allow,
                                   const float *q, int64_t nq, int k, cc_metric metric, int64_t *out_ids,
                                   double *out_scores) {
    double *best = malloc((size_t)k * sizeof(double));
    int64_t *best_id = malloc((size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < nq; i++) {
        int have = 0;
        for (int64_t r = 0; r < n; r++) {
            if (allow && !allow[r]) continue;
            double s = tix_score(q + i * d, x + r * d, d, metric);
            double key = metric == CC_METRIC_IP ? s : -s;
            if (have == k && key <= best[have - 1]) continue;
            int pos = have < k ? have++ : k - 1;
            while (pos > 0 && best[pos - 1] < key) {
                best[pos] = best[pos - 1];
                best_id[pos] = best_id[pos - 1];
                pos--;
            }
            best[pos] = key;
            best_id[pos] = ids ? ids[r] : r;
        }
        for (int j = 0; j < k; j++) {
            out_ids[i * k + j] = j < have ? best_id[j] : -1;
            if (out_scores) out_scores[i * k + j] = j < have ? (metric == CC_METRIC_IP ? best[j] : -best[j]) : NAN;
        }
    }
    free(best);
    free(best_id);
}

/* Fraction of the true top-k (padding -1 excluded) found in the returned top-k. */
static inline double tix_recall(const int64_t *found, const int64_t *truth, int64_t nq, int k) {
    int64_t hits = 0, total = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int b = 0; b < k; b++) {
            if (truth[i * k + b] < 0) continue;
            total++;
            for (int a = 0; a < k; a++)
                if (found[i * k + a] == truth[i * k + b]) {
                    hits++;
                    break;
                }
        }
    return total ? (double)hits / (double)total : 1.0;
}

static inline int tix_file_equal(const char *a, const char *b) {
    char *da, *db;
    size_t na, nb;
    if (cc_read_file(a, &da, &na) != 0) return 0;
    if (cc_read_file(b, &db, &nb) != 0) {
        free(da);
        return 0;
    }
    int eq = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

#endif
