/* flat_bench.c — Flat search against the machine's own limits: one query at a time versus the
 * memory-bandwidth bound (a streaming AVX-512/AVX2 read of the same bytes), and batches versus
 * cc_sgemm's peak on the same block shape. Prints a markdown table (1 and 2 threads).
 *
 * usage: flat_bench [--n N] [--dim D] [--queries Q] */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/distance.h"
#include "index/index.h"
#include "kernels/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define REPEATS 5 /* best of */

__attribute__((target("avx512f"))) static float read_sum_avx512(const float *x, size_t n) {
    /* eight independent chains, so the adds never limit the loads */
    __m512 acc[8];
    for (int j = 0; j < 8; j++) acc[j] = _mm512_setzero_ps();
    for (size_t i = 0; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++) acc[j] = _mm512_add_ps(acc[j], _mm512_load_ps(x + i + 16 * j));
    for (int j = 1; j < 8; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    return _mm512_reduce_add_ps(acc[0]);
}

static float read_sum_scalar(const float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

/* The same access pattern as the Flat scan without its arithmetic: four rows of d floats at a
 * time, rows prefetched ahead, loads only added up. */
__attribute__((target("avx512f"))) static float read_rows4_avx512(const float *x, size_t n_rows, size_t d) {
    __m512 acc[4];
    for (int j = 0; j < 4; j++) acc[j] = _mm512_setzero_ps();
    for (size_t r = 0; r + 4 <= n_rows; r += 4) {
        if (r + 12 <= n_rows)
            for (int j = 0; j < 4; j++) _mm_prefetch((const char *)(x + (r + 8 + j) * d), _MM_HINT_T0);
        for (size_t i = 0; i < d; i += 16)
            for (int j = 0; j < 4; j++) acc[j] = _mm512_add_ps(acc[j], _mm512_loadu_ps(x + (r + j) * d + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* One round of streaming reads over the buffer with `threads` threads, GB/s: the better of a plain
 * sequential read and the scan's four-row pattern. */
static double read_bandwidth_round(const float *x, size_t n_rows, size_t d, int threads) {
    double best = 0;
    volatile float sink = 0;
    for (int variant = 0; variant < 2; variant++) {
        double t0 = cc_now();
        float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            int t = 0, nt = 1;
#ifdef _OPENMP
            t = omp_get_thread_num();
            nt = omp_get_num_threads();
#endif
            size_t rows = n_rows / (size_t)nt / 4 * 4;
            const float *p = x + rows * d * (size_t)t;
            if (cc_cpu_isa() != CC_ISA_AVX512) total += read_sum_scalar(p, rows * d);
            else total += variant ? read_rows4_avx512(p, rows, d) : read_sum_avx512(p, rows * d & ~(size_t)127);
        }
        double dt = cc_now() - t0;
        sink += total;
        double gbs = (double)n_rows * d * 4 / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    (void)sink;
    return best;
}

static double gemm_gflops(int64_t m, int64_t n, int64_t k) {
    float *a = cc_malloc_aligned((size_t)(m * k) * 4, "A"), *b = cc_malloc_aligned((size_t)(n * k) * 4, "B");
    float *c = cc_malloc_aligned((size_t)(m * n) * 4, "C");
    for (int64_t i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (int64_t i = 0; i < n * k; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cc_now();
        cc_sgemm(0, 1, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        double dt = cc_now() - t0;
        double g = 2.0 * (double)m * (double)n * (double)k / dt / 1e9;
        if (g > best) best = g;
    }
    cc_free_aligned(a), cc_free_aligned(b), cc_free_aligned(c);
    return best;
}

int main(int argc, char **argv) {
    int64_t n = 200000, nq = 1024;
    int d = 512;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) nq = atoll(argv[i + 1]);
    }
    cc_rng rng;
    cc_rng_seed(&rng, 7);
    float *x = cc_malloc_aligned((size_t)(n * d) * 4, "vectors"), *q = cc_malloc_aligned((size_t)(nq * d) * 4, "queries");
    if (!x || !q) return 1;
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)(cc_rng_u64(&rng) >> 40) * 0x1p-24f - 0.5f;
    for (int64_t i = 0; i < nq * d; i++) q[i] = (float)(cc_rng_u64(&rng) >> 40) * 0x1p-24f - 0.5f;
    cc_index *idx = cc_index_create("Flat", d, CC_METRIC_IP);
    if (!idx || cc_index_add(idx, n, x) != 0) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    int k = 10;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)(nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(nq * k));
    double bytes = (double)n * d * 4;
    printf("Flat against the machine's limits (`build/bench/index/flat_bench`, %lld vectors of %d floats = %.0f MB, "
           "GEMM %s, kernels %s):\n\n",
           (long long)n, d, bytes / 1e6, cc_gemm_impl_name(), cc_dist()->name);
    printf("| threads | read bandwidth (GB/s) | one query: GB/s scanned | %% of bandwidth | GEMM peak (GFLOP/s, %lldx4096x%d) "
           "| batch of %lld: GFLOP/s | %% of GEMM peak | targets (80%% / 70%%) |\n",
           (long long)nq, d, (long long)nq);
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int threads = 1; threads <= 2; threads++) {
        cc_set_threads(threads);
        /* rounds alternate the bandwidth probe and one-query searches (10 different queries), so
         * that background load affects both alike; best of REPEATS rounds each */
        double bw = 0, best = 1e30;
        for (int r = 0; r < REPEATS; r++) {
            double b = read_bandwidth_round(x, (size_t)n, (size_t)d, threads);
            if (b > bw) bw = b;
            double t0 = cc_now();
            for (int i = 0; i < 10; i++) cc_index_search(idx, 1, q + (int64_t)i * d, k, ids, scores);
            double dt = (cc_now() - t0) / 10;
            if (dt < best) best = dt;
        }
        double scan = bytes / best / 1e9;
        double peak = gemm_gflops(nq, 4096, d);
        double bt = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = cc_now();
            cc_index_search(idx, nq, q, k, ids, scores);
            double dt = cc_now() - t0;
            if (dt < bt) bt = dt;
        }
        double batch = 2.0 * (double)nq * (double)n * d / bt / 1e9;
        printf("| %d | %.1f | %.1f | %.0f%% | %.0f | %.0f | %.0f%% | %s / %s |\n", threads, bw, scan, 100 * scan / bw,
               peak, batch, 100 * batch / peak, scan >= 0.8 * bw ? "**met**" : "**missed**",
               batch >= 0.7 * peak ? "**met**" : "**missed**");
    }
    cc_index_free(idx);
    cc_free_aligned(x), cc_free_aligned(q);
    free(ids), free(scores);
    return 0;
}
