/* bench_gemm.c — GFLOP/s of clipc's own SGEMM and of OpenBLAS on the ViT-B/32 and text-encoder
 * shapes (forward, and the transposed products of the backward pass), plus the machine's FMA peak.
 *
 *   bench_gemm [--threads N] [--impl own|openblas|both] [--isa avx512|avx2|scalar]
 *              [--time SECONDS] [--only SUBSTRING] [--blocking KC,MC,NC] [--peak] [--verify]
 *
 * Prints one tab-separated line per shape: name, M, N, K, ta, tb, impl, GFLOP/s, and with
 * --verify the relative error of that implementation against the other one (own vs OpenBLAS),
 * so a second OpenBLAS build (OPENBLAS_CORETYPE, read at load time) can be checked in its own
 * process. benchmarks/kernels/run_gemm.sh turns the lines into benchmarks/out/kernels_gemm.md.
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "engine/util.h"
#include "kernels/gemm.h"

typedef struct shape {
    const char *name;
    int64_t M, N, K;
    int trans_a, trans_b;
} shape;

/* ViT-B/32: width 768, MLP 3072, 50 tokens per image; batch 32 -> M = 1600, batch 1 -> M = 50.
 * Text encoder: width 512, MLP 2048, 77 tokens; batch 32 -> M = 2464. Weights as in PyTorch
 * ([out, in]), so forward is X·Wᵀ (tb=1); backward dX = dY·W (NN), dW = dYᵀ·X (ta=1). */
static const shape shapes[] = {
    {"vit qkv fwd", 1600, 2304, 768, 0, 1},
    {"vit proj fwd", 1600, 768, 768, 0, 1},
    {"vit fc1 fwd", 1600, 3072, 768, 0, 1},
    {"vit fc2 fwd", 1600, 768, 3072, 0, 1},
    {"vit proj fwd, W [in,out]", 1600, 768, 768, 0, 0},
    {"vit fc1 dX = dY·W", 1600, 768, 3072, 0, 0},
    {"vit fc2 dX = dY·W", 1600, 3072, 768, 0, 0},
    {"vit fc1 dW = dYᵀ·X", 3072, 768, 1600, 1, 0},
    {"vit proj dW = dYᵀ·X", 768, 768, 1600, 1, 0},
    {"vit b1 qkv fwd", 50, 2304, 768, 0, 1},
    {"vit b1 proj fwd", 50, 768, 768, 0, 1},
    {"vit b1 fc1 fwd", 50, 3072, 768, 0, 1},
    {"vit b1 fc2 fwd", 50, 768, 3072, 0, 1},
    {"vit b1 proj fwd, W [in,out]", 50, 768, 768, 0, 0},
    {"vit b1 fc2 fwd, W [in,out]", 50, 768, 3072, 0, 0},
    {"text qkv fwd", 2464, 1536, 512, 0, 1},
    {"text fc1 fwd", 2464, 2048, 512, 0, 1},
    {"text fc2 fwd", 2464, 512, 2048, 0, 1},
};

/* ---- FMA peak: independent FMA chains in registers ---------------------------------------- */

#define PEAK_CHAINS 12
__attribute__((target("avx512f,fma"), noinline)) static float fma_loop_avx512(int64_t iters) {
    __m512 acc[PEAK_CHAINS];
    const __m512 mul = _mm512_set1_ps(0.9999f), add = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(int64_t iters) {
    __m256 acc[PEAK_CHAINS];
    const __m256 mul = _mm256_set1_ps(0.9999f), add = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) sum = _mm256_add_ps(sum, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, sum);
    return out[0];
}

static double fma_peak(int n_threads, int avx512) {
    const int64_t iters = 20 * 1000 * 1000;
    double best = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = cc_now();
        float sink = 0;
#pragma omp parallel num_threads(n_threads) reduction(+ : sink)
        sink += avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
        double dt = cc_now() - t0;
        double gflops = (double)n_threads * iters * PEAK_CHAINS * (avx512 ? 32 : 16) / dt * 1e-9;
        if (gflops > best && sink != 12345.0f) best = gflops;
    }
    return best;
}

/* ---- timing ----------------------------------------------------------------------------- */

typedef void (*gemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *,
                        int64_t, float, float *, int64_t);

/* Best GFLOP/s of three rounds of at least `seconds`/3 each. */
static double time_gemm(gemm_fn fn, const shape *s, const float *A, const float *B, float *C, double seconds) {
    int64_t lda = s->trans_a ? s->M : s->K, ldb = s->trans_b ? s->K : s->N;
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K, best = 0;
    fn(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N); /* warm-up */
    for (int round = 0; round < 3; round++) {
        int64_t calls = 0;
        double t0 = cc_now(), dt;
        do {
            fn(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
            calls++;
            dt = cc_now() - t0;
        } while (dt < seconds / 3);
        double gflops = flops * (double)calls / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

static double rel_error(const float *a, const float *b, int64_t n) {
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        if (!(diff <= max_diff)) max_diff = diff; /* NaN counts */
        if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_gemm [--threads N] [--impl own|openblas|both] [--isa avx512|avx2|scalar] "
                    "[--time SECONDS] [--only SUBSTRING] [--blocking KC,MC,NC] [--peak] [--verify]\n");
    exit(2);
}

int main(int argc, char **argv) {
    int n_threads = 1, run_own = 1, run_openblas = 1, peak = 0, verify = 0;
    double seconds = 0.6;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--impl") && i + 1 < argc) {
            const char *impl = argv[++i];
            run_own = !strcmp(impl, "own") || !strcmp(impl, "both");
            run_openblas = !strcmp(impl, "openblas") || !strcmp(impl, "both");
            if (!run_own && !run_openblas) usage();
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (cc_gemm_force_isa(argv[++i]) != 0) {
                fprintf(stderr, "bench_gemm: %s\n", cc_last_error());
                return 1;
            }
        } else if (!strcmp(argv[i], "--time") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--blocking") && i + 1 < argc) {
            int kc = 0, mc = 0, nc = 0;
            if (sscanf(argv[++i], "%d,%d,%d", &kc, &mc, &nc) != 3) usage();
            cc_gemm_set_blocking(kc, mc, nc);
        } else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--verify")) verify = 1;
        else usage();
    }
    cc_set_threads(n_threads);
    if (peak) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) printf("peak\tavx512\t%d\t%.1f\n", n_threads, fma_peak(n_threads, 1));
        if (__builtin_cpu_supports("avx2")) printf("peak\tavx2\t%d\t%.1f\n", n_threads, fma_peak(n_threads, 0));
        return 0;
    }
    cc_gemm_set_impl(CC_GEMM_OWN);
    cc_rng rng;
    cc_rng_seed(&rng, 42);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        if (only && !strstr(s->name, only)) continue;
        float *A = cc_malloc_aligned((size_t)(s->M * s->K) * sizeof(float), "A");
        float *B = cc_malloc_aligned((size_t)(s->K * s->N) * sizeof(float), "B");
        float *C_own = cc_malloc_aligned((size_t)(s->M * s->N) * sizeof(float), "C");
        float *C_blas = cc_malloc_aligned((size_t)(s->M * s->N) * sizeof(float), "C");
        if (!A || !B || !C_own || !C_blas) {
            fprintf(stderr, "bench_gemm: %s\n", cc_last_error());
            return 1;
        }
        for (int64_t i = 0; i < s->M * s->K; i++) A[i] = (float)cc_rng_uniform(&rng) - 0.5f;
        for (int64_t i = 0; i < s->K * s->N; i++) B[i] = (float)cc_rng_uniform(&rng) - 0.5f;
        double own = run_own ? time_gemm(cc_sgemm, s, A, B, C_own, seconds) : 0;
        double blas = run_openblas ? time_gemm(cc_sgemm_openblas, s, A, B, C_blas, seconds) : 0;
        double err = -1;
        if (verify) { /* one fresh call of each, compared */
            int64_t lda = s->trans_a ? s->M : s->K, ldb = s->trans_b ? s->K : s->N;
            cc_sgemm(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C_own, s->N);
            cc_sgemm_openblas(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C_blas, s->N);
            err = rel_error(C_own, C_blas, s->M * s->N);
        }
        if (run_own)
            printf("%s\t%lld\t%lld\t%lld\t%d\t%d\t%s\t%.1f\t%.2g\n", s->name, (long long)s->M, (long long)s->N,
                   (long long)s->K, s->trans_a, s->trans_b, cc_gemm_impl_name(), own, err);
        if (run_openblas)
            printf("%s\t%lld\t%lld\t%lld\t%d\t%d\t%s\t%.1f\t%.2g\n", s->name, (long long)s->M, (long long)s->N,
                   (long long)s->K, s->trans_a, s->trans_b, "openblas", blas, err);
        fflush(stdout);
        cc_free_aligned(A);
        cc_free_aligned(B);
        cc_free_aligned(C_own);
        cc_free_aligned(C_blas);
    }
    return 0;
}
