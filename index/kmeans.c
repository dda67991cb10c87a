/* kmeans.c — Lloyd k-means with GEMM assignment, sampled or k-means++ init and empty-cluster
 * repair, plus batched nearest-centroid search. See kmeans.h. */
#include "index/kmeans.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"
#include "engine/util.h"
#include "index/distance.h"
#include "index/topk.h"
#include "kernels/gemm.h"

#define KMEANS_BLOCK_FLOATS (1 << 20)          /* GEMM output block per thread: 4 MB of scores */
#define KMEANS_BLOCK_ROWS 512                  /* points per GEMM block at most */
#define KMEANS_PLUSPLUS_MAX_WORK 1e8           /* k * n * d above which k-means++ is too slow */
#define KMEANS_SMALL_D 32                      /* nearest centroid without GEMM up to this dimension */
#define KMEANS_SPLIT_EPS (1.0f / 1024.0f)      /* relative perturbation when splitting a cluster */

void cc_kmeans_default_params(cc_kmeans_params *p) {
    p->niter = 25;
    p->ip = 0;
    p->max_points_per_centroid = 256;
    p->seed = 1234;
    p->init = CC_KMEANS_INIT_AUTO;
    p->progress = NULL;
}


/* Small dimension, one nearest centroid: centroids transposed to [d][k16] (k rounded up to 16,
 * padding scores -inf) and scored 16 at a time with broadcasts of the point's coordinates. */
__attribute__((target("avx512f"))) static void argmax_small_avx512(const float *x, int64_t n, int d, const float *ct,
                                                                 const float *bias, int k16, int32_t *out_ids,
                                                                 float *out_sims, float scale) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * d;
        __m512 px[KMEANS_SMALL_D];
        for (int t = 0; t < d; t++) px[t] = _mm512_set1_ps(scale * p[t]);
        __m512 best = _mm512_set1_ps(-INFINITY);
        __m512i best_idx = _mm512_setzero_si512();
        const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        int b = 0;
        /* four blocks of 16 centroids at once: four independent FMA chains */
        for (; b + 64 <= k16; b += 64) {
            __m512 a0 = _mm512_loadu_ps(bias + b), a1 = _mm512_loadu_ps(bias + b + 16);
            __m512 a2 = _mm512_loadu_ps(bias + b + 32), a3 = _mm512_loadu_ps(bias + b + 48);
            for (int t = 0; t < d; t++) {
                const float *row = ct + (size_t)t * k16 + b;
                a0 = _mm512_fmadd_ps(px[t], _mm512_loadu_ps(row), a0);
                a1 = _mm512_fmadd_ps(px[t], _mm512_loadu_ps(row + 16), a1);
                a2 = _mm512_fmadd_ps(px[t], _mm512_loadu_ps(row + 32), a2);
                a3 = _mm512_fmadd_ps(px[t], _mm512_loadu_ps(row + 48), a3);
            }
            __m512 acc[4] = {a0, a1, a2, a3};
            for (int j = 0; j < 4; j++) {
                __mmask16 better = _mm512_cmp_ps_mask(acc[j], best, _CMP_GT_OQ);
                best = _mm512_mask_blend_ps(better, best, acc[j]);
                best_idx = _mm512_mask_blend_epi32(better, best_idx, _mm512_add_epi32(lane, _mm512_set1_epi32(b + 16 * j)));
            }
        }
        for (; b < k16; b += 16) {
            __m512 acc = _mm512_loadu_ps(bias + b);
            for (int t = 0; t < d; t++) acc = _mm512_fmadd_ps(px[t], _mm512_loadu_ps(ct + (size_t)t * k16 + b), acc);
            __mmask16 better = _mm512_cmp_ps_mask(acc, best, _CMP_GT_OQ);
            best = _mm512_mask_blend_ps(better, best, acc);
            best_idx = _mm512_mask_blend_epi32(better, best_idx, _mm512_add_epi32(lane, _mm512_set1_epi32(b)));
        }
        float vals[16];
        int32_t ids[16];
        _mm512_storeu_ps(vals, best);
        _mm512_storeu_si512(ids, best_idx);
        int bj = 0;
        for (int j = 1; j < 16; j++)
            if (vals[j] > vals[bj] || (vals[j] == vals[bj] && ids[j] < ids[bj])) bj = j;
        out_ids[i] = ids[bj];
        out_sims[i] = vals[bj];
    }
}

static void argmax_small_scalar(const float *x, int64_t n, int d, const float *ct, const float *bias, int k16,
                                int32_t *out_ids, float *out_sims, float scale) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * d;
        float best = -INFINITY;
        int best_j = 0;
        for (int j = 0; j < k16; j++) {
            float acc = bias[j];
            for (int t = 0; t < d; t++) acc += scale * p[t] * ct[(size_t)t * k16 + j];
            if (acc > best) best = acc, best_j = j;
        }
        out_ids[i] = best_j;
        out_sims[i] = best;
    }
}

static int nearest_small_d(const float *x, int64_t nq, int d, const float *centroids, const float *centroid_norms,
                           int k, int ip, int32_t *out_ids, float *out_sims) {
    int k16 = (k + 15) & ~15;
    float *ct = cc_malloc_aligned((size_t)d * k16 * sizeof(float), "transposed centroids");
    float *bias = cc_malloc_aligned((size_t)k16 * sizeof(float), "centroid bias");
    if (!ct || !bias) {
        cc_free_aligned(ct);
        cc_free_aligned(bias);
        return -1;
    }
    for (int j = 0; j < k16; j++) {
        bias[j] = j < k ? (ip ? 0.0f : -centroid_norms[j]) : -INFINITY;
        for (int t = 0; t < d; t++) ct[(size_t)t * k16 + j] = j < k ? centroids[(size_t)j * d + t] : 0.0f;
    }
    /* score = 2 x·c - ||c||² (L2; minus ||x||² below) or x·c (IP) */
    float scale = ip ? 1.0f : 2.0f;
    if (cc_cpu_isa() == CC_ISA_AVX512) argmax_small_avx512(x, nq, d, ct, bias, k16, out_ids, out_sims, scale);
    else argmax_small_scalar(x, nq, d, ct, bias, k16, out_ids, out_sims, scale);
    if (!ip) {
        const cc_dist_kernels *dk = cc_dist();
        for (int64_t i = 0; i < nq; i++) out_sims[i] -= dk->ip(x + i * d, x + i * d, (size_t)d);
    }
    cc_free_aligned(ct);
    cc_free_aligned(bias);
    return 0;
}

int cc_nearest_centroids(const float *x, int64_t nq, int d, const float *centroids,
                         const float *centroid_norms, int k, int ip, int m, int32_t *out_ids,
                         float *out_sims) {
    if (m > k) m = k;
    if (m == 1 && d <= KMEANS_SMALL_D) return nearest_small_d(x, nq, d, centroids, centroid_norms, k, ip, out_ids, out_sims);
    /* row blocks over threads, each with its own single-threaded GEMM and selection */
    int64_t rows = KMEANS_BLOCK_FLOATS / k;
    if (rows > KMEANS_BLOCK_ROWS) rows = KMEANS_BLOCK_ROWS;
    if (rows < 1) rows = 1;
    int threads = cc_get_threads();
    if (rows * threads > nq) rows = (nq + threads - 1) / threads;
    if (rows < 1) rows = 1;
    const cc_dist_kernels *dk = cc_dist();
    int failed = 0;
    cc_gemm_per_thread_begin();
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *scores = cc_malloc_aligned((size_t)rows * (size_t)k * sizeof(float), "centroid scores");
        int64_t *heap_ids = cc_malloc((size_t)m * sizeof(int64_t), "centroid heap");
        if (!scores || !heap_ids) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t start = 0; start < nq; start += rows) {
            if (failed) continue;
            int64_t count = nq - start < rows ? nq - start : rows;
            cc_sgemm(0, 1, count, k, d, 1.0f, x + start * d, d, centroids, d, 0.0f, scores, k);
            for (int64_t r = 0; r < count; r++) {
                float *row = scores + r * k;
                if (!ip) {
                    const float *xr = x + (start + r) * d;
                    float qnorm = dk->ip(xr, xr, (size_t)d);
                    for (int c = 0; c < k; c++) row[c] = 2.0f * row[c] - centroid_norms[c] - qnorm;
                }
                float *sims = out_sims + (start + r) * m;
                cc_topk heap;
                cc_topk_init(&heap, sims, heap_ids, m);
                cc_topk_push_row(&heap, row, k, 0);
                cc_topk_finish(&heap);
                for (int j = 0; j < m; j++) out_ids[(start + r) * m + j] = (int32_t)heap_ids[j];
            }
        }
        cc_free_aligned(scores);
        free(heap_ids);
    }
    cc_gemm_per_thread_end();
    if (failed) {
        cc_set_error("nearest centroids: out of memory for score blocks");
        return -1;
    }
    return 0;
}

/* Assigns every point to its nearest centroid; returns the objective sum. */
static int assign_points(const float *x, int64_t n, int d, const float *centroids, float *cnorms, int k,
                         int ip, int32_t *assign, double *out_sum) {
    float *sims = cc_malloc((size_t)n * sizeof(float), "k-means scores");
    if (!sims) return -1;
    if (!ip) cc_norms_sq(centroids, (size_t)k, (size_t)d, cnorms);
    if (cc_nearest_centroids(x, n, d, centroids, cnorms, k, ip, 1, assign, sims) != 0) {
        free(sims);
        return -1;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        if (assign[i] < 0 || assign[i] >= k) assign[i] = 0; /* all scores NaN (NaN input) */
        sum += ip ? sims[i] : -sims[i];
    }
    *out_sum = sum;
    free(sims);
    return 0;
}

static void normalize_rows(float *c, int k, int d) {
    const cc_dist_kernels *dk = cc_dist();
    for (int j = 0; j < k; j++) {
        float *row = c + (int64_t)j * d;
        float norm = sqrtf(dk->ip(row, row, (size_t)d));
        if (norm > 0)
            for (int t = 0; t < d; t++) row[t] /= norm;
    }
}

/* New centroids = means of their points (threads over clusters, points bucketed by cluster). */
static int update_centroids(const float *x, int64_t n, int d, int k, const int32_t *assign, float *centroids,
                            int64_t *counts) {
    int64_t *start = cc_calloc((size_t)k + 1, sizeof(int64_t), "k-means buckets");
    int64_t *order = cc_malloc((size_t)n * sizeof(int64_t), "k-means order");
    if (!start || !order) {
        free(start);
        free(order);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) start[assign[i] + 1]++;
    for (int c = 0; c < k; c++) {
        counts[c] = start[c + 1];
        start[c + 1] += start[c];
    }
    int64_t *fill = cc_malloc((size_t)k * sizeof(int64_t), "k-means fill");
    if (!fill) {
        free(start);
        free(order);
        return -1;
    }
    memcpy(fill, start, (size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) order[fill[assign[i]]++] = i;
    free(fill);
#pragma omp parallel for schedule(dynamic, 16)
    for (int c = 0; c < k; c++) {
        if (counts[c] == 0) continue;
        float *row = centroids + (int64_t)c * d;
        double acc_small[256];
        double *acc = d <= 256 ? acc_small : calloc((size_t)d, sizeof(double));
        if (!acc) continue; /* keeps the old centroid; only under memory exhaustion */
        memset(acc, 0, (size_t)d * sizeof(double));
        for (int64_t j = start[c]; j < start[c + 1]; j++) {
            const float *p = x + order[j] * d;
            for (int t = 0; t < d; t++) acc[t] += p[t];
        }
        double inv = 1.0 / (double)counts[c];
        for (int t = 0; t < d; t++) row[t] = (float)(acc[t] * inv);
        if (acc != acc_small) free(acc);
    }
    free(start);
    free(order);
    return 0;
}

/* Empty clusters take half of a populated one, chosen with probability proportional to its size
 * beyond one point; the two copies are pushed apart by a small symmetric perturbation. */
static void repair_empty(float *centroids, int64_t *counts, int k, int d, cc_rng *rng) {
    for (int ci = 0; ci < k; ci++) {
        if (counts[ci] != 0) continue;
        int64_t spare = 0;
        for (int c = 0; c < k; c++)
            if (counts[c] > 1) spare += counts[c] - 1;
        if (spare == 0) return;
        int64_t pick = (int64_t)cc_rng_below(rng, (uint64_t)spare);
        int cj = 0;
        for (; cj < k; cj++) {
            if (counts[cj] <= 1) continue;
            if (pick < counts[cj] - 1) break;
            pick -= counts[cj] - 1;
        }
        float *a = centroids + (int64_t)ci * d, *b = centroids + (int64_t)cj * d;
        memcpy(a, b, (size_t)d * sizeof(float));
        for (int t = 0; t < d; t++) {
            float up = 1.0f + KMEANS_SPLIT_EPS, down = 1.0f - KMEANS_SPLIT_EPS;
            a[t] *= (t % 2) ? up : down;
            b[t] *= (t % 2) ? down : up;
        }
        counts[ci] = counts[cj] / 2;
        counts[cj] -= counts[ci];
    }
}

/* Squared distance of every point to one row, in double, min-ed into best (or written to out when
 * best is NULL). The float kernel does the work; a distance that overflowed float (finite points
 * near 1e19 and beyond) is recomputed in double, where no squared float difference overflows. */
static void min_distances_double(const float *x, int64_t n, int d, const float *row, const double *best, double *out) {
    const cc_dist_kernels *dk = cc_dist();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float *p = x + i * d;
        double dist;
        if (d <= KMEANS_SMALL_D) {
            float f = 0;
            for (int t = 0; t < d; t++) f += (p[t] - row[t]) * (p[t] - row[t]);
            dist = f;
        } else {
            dist = dk->l2sq(p, row, (size_t)d);
        }
        if (!isfinite(dist)) {
            dist = 0;
            for (int t = 0; t < d; t++) dist += ((double)p[t] - row[t]) * ((double)p[t] - row[t]);
            if (!(dist >= 0)) dist = 0; /* NaN input: no weight */
        }
        out[i] = best && best[i] < dist ? best[i] : dist;
    }
}

/* Index of the point where the running sum of weights first reaches target (n - 1 at worst). */
static int64_t draw_weighted(const double *weights, int64_t n, double target) {
    double run = 0;
    for (int64_t i = 0; i < n; i++) {
        run += weights[i];
        if (run >= target) return i;
    }
    return n - 1;
}

/* Greedy k-means++ (as scikit-learn): each next centre is the best of 2 + ln(k) candidates drawn
 * with probability proportional to the squared distance to the nearest centre so far, "best"
 * meaning the lowest total squared distance afterwards. Plain k-means++ puts two centres in one
 * well-separated cluster a few percent of the time; the local trials make that rare. Distances
 * are kept in double; when their total is 0 or not finite, candidates are drawn uniformly. */
static int init_plusplus(const float *x, int64_t n, int d, int k, float *centroids, cc_rng *rng) {
    int trials = 2 + (int)log((double)k);
    double *best = cc_malloc((size_t)n * sizeof(double), "k-means++ distances");
    double *trial = cc_malloc((size_t)n * sizeof(double), "k-means++ distances");
    double *kept = cc_malloc((size_t)n * sizeof(double), "k-means++ distances");
    if (!best || !trial || !kept) {
        free(best), free(trial), free(kept);
        return -1;
    }
    int64_t first = (int64_t)cc_rng_below(rng, (uint64_t)n);
    memcpy(centroids, x + first * d, (size_t)d * sizeof(float));
    min_distances_double(x, n, d, centroids, NULL, best);
    for (int c = 1; c < k; c++) {
        double total = 0;
        for (int64_t i = 0; i < n; i++) total += best[i];
        int weighted = total > 0 && isfinite(total);
        int64_t chosen = -1;
        double chosen_potential = INFINITY;
        for (int t = 0; t < trials; t++) {
            int64_t candidate = (int64_t)cc_rng_below(rng, (uint64_t)n);
            if (weighted) candidate = draw_weighted(best, n, cc_rng_uniform(rng) * total);
            min_distances_double(x, n, d, x + candidate * d, best, trial);
            double potential = 0;
            for (int64_t i = 0; i < n; i++) potential += trial[i];
            if (chosen < 0 || potential < chosen_potential) {
                chosen_potential = potential;
                chosen = candidate;
                double *swap = kept;
                kept = trial;
                trial = swap;
            }
        }
        memcpy(centroids + (int64_t)c * d, x + chosen * d, (size_t)d * sizeof(float));
        double *swap = best;
        best = kept;
        kept = swap;
    }
    free(best), free(trial), free(kept);
    return 0;
}

static void init_random(const float *x, int64_t n, int d, int k, float *centroids, cc_rng *rng) {
    /* k distinct points: partial Fisher-Yates over an index permutation */
    int64_t *perm = malloc((size_t)n * sizeof(int64_t));
    if (!perm) {
        for (int c = 0; c < k; c++) memcpy(centroids + (int64_t)c * d, x + ((int64_t)c * n / k) * d, (size_t)d * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int c = 0; c < k; c++) {
        int64_t j = c + (int64_t)cc_rng_below(rng, (uint64_t)(n - c));
        int64_t t = perm[c];
        perm[c] = perm[j];
        perm[j] = t;
        memcpy(centroids + (int64_t)c * d, x + perm[c] * d, (size_t)d * sizeof(float));
    }
    free(perm);
}

static int cmp_int64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Copies n_out randomly chosen rows (ascending order, so the reads are sequential). */
static float *sample_rows(const float *x, int64_t n, int d, int64_t n_out, cc_rng *rng) {
    int64_t *perm = cc_malloc((size_t)n * sizeof(int64_t), "k-means sample");
    float *sample = cc_malloc_aligned((size_t)n_out * (size_t)d * sizeof(float), "k-means sample");
    if (!perm || !sample) {
        free(perm);
        cc_free_aligned(sample);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = 0; i < n_out; i++) {
        int64_t j = i + (int64_t)cc_rng_below(rng, (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    qsort(perm, (size_t)n_out, sizeof(int64_t), cmp_int64);
    for (int64_t i = 0; i < n_out; i++) memcpy(sample + i * d, x + perm[i] * d, (size_t)d * sizeof(float));
    free(perm);
    return sample;
}

/* Power of two to divide the points by so that no squared distance or GEMM score overflows
 * float (finite points near 1e19 and beyond would give inf - inf = NaN scores); 1 when none is
 * needed. k-means is scale-equivariant, so centroids of the scaled points times it are the answer. */
static float overflow_scale(const float *x, int64_t n, int d) {
    float max_abs = 0;
    for (int64_t i = 0; i < n * d; i++) {
        float a = fabsf(x[i]);
        if (a > max_abs) max_abs = a;
    }
    double limit = sqrt((double)FLT_MAX / (4.0 * (double)d)) / 16.0;
    if (!((double)max_abs > limit)) return 1.0f;
    return ldexpf(1.0f, (int)ceil(log2((double)max_abs / limit)));
}

int cc_kmeans(const float *x, int64_t n, int d, int k, const cc_kmeans_params *p, float *centroids,
              double *out_objective) {
    if (k < 1 || n < k) {
        cc_set_error("k-means: need at least %d training points for %d centroids, got %lld", k, k, (long long)n);
        return -1;
    }
    cc_rng rng;
    cc_rng_seed(&rng, p->seed);
    const float *train = x;
    float *sample = NULL;
    int64_t n_train = n;
    if (p->max_points_per_centroid > 0 && n > (int64_t)k * p->max_points_per_centroid) {
        n_train = (int64_t)k * p->max_points_per_centroid;
        sample = sample_rows(x, n, d, n_train, &rng);
        if (!sample) return -1;
        train = sample;
    }
    float scale = overflow_scale(train, n_train, d);
    if (scale != 1.0f) {
        if (!sample) {
            sample = cc_malloc_aligned((size_t)n_train * (size_t)d * sizeof(float), "k-means scaled points");
            if (!sample) return -1;
            memcpy(sample, x, (size_t)n_train * (size_t)d * sizeof(float));
            train = sample;
        }
        for (int64_t i = 0; i < n_train * d; i++) sample[i] /= scale;
    }
    int32_t *assign = cc_malloc((size_t)n_train * sizeof(int32_t), "k-means assignment");
    int64_t *counts = cc_malloc((size_t)k * sizeof(int64_t), "k-means counts");
    float *cnorms = cc_malloc((size_t)k * sizeof(float), "k-means norms");
    int rc = -1;
    if (!assign || !counts || !cnorms) goto done;

    cc_kmeans_init init = p->init;
    if (init == CC_KMEANS_INIT_AUTO)
        init = (double)k * (double)n_train * (double)d <= KMEANS_PLUSPLUS_MAX_WORK ? CC_KMEANS_INIT_PLUSPLUS
                                                                                  : CC_KMEANS_INIT_RANDOM;
    if (init == CC_KMEANS_INIT_PLUSPLUS) {
        if (init_plusplus(train, n_train, d, k, centroids, &rng) != 0) goto done;
    } else {
        init_random(train, n_train, d, k, centroids, &rng);
    }
    if (p->ip) normalize_rows(centroids, k, d);

    double objective = 0;
    int niter = p->niter > 0 ? p->niter : 1;
    cc_progress progress;
    if (p->progress) cc_progress_start(&progress, p->progress, niter, "iter");
    for (int iter = 0; iter < niter; iter++) {
        if (assign_points(train, n_train, d, centroids, cnorms, k, p->ip, assign, &objective) != 0) goto done;
        if (update_centroids(train, n_train, d, k, assign, centroids, counts) != 0) goto done;
        repair_empty(centroids, counts, k, d, &rng);
        if (p->ip) normalize_rows(centroids, k, d);
        if (p->progress) {
            cc_progress_set_extra(&progress, "objective %.4g", objective / (double)n_train);
            cc_progress_update(&progress, iter + 1);
        }
    }
    if (p->progress) cc_progress_finish(&progress);
    if (scale != 1.0f && !p->ip) { /* spherical centroids are unit length at any scale */
        for (int64_t i = 0; i < (int64_t)k * d; i++) centroids[i] *= scale;
        objective *= (double)scale * (double)scale;
    }
    if (out_objective) *out_objective = objective / (double)n_train;
    rc = 0;
done:
    free(assign);
    free(counts);
    free(cnorms);
    cc_free_aligned(sample);
    return rc;
}
