/* test_gemm.c — clipc's own SGEMM (kernels/gemm.c) against OpenBLAS cblas_sgemm on fresh random
 * inputs: all transpose combinations, odd shapes, padded strides, alpha/beta (beta = 0 over NaN,
 * beta = 1 accumulation), K = 0, thread counts 1–3, every instruction set the CPU has, small
 * blocking sizes (to run the blocking loops), the batched and bf16-B variants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/gemm.h"
#include "tests/test.h"

#define GEMM_TOL 1e-5           /* norm-wise relative error allowed against OpenBLAS */
#define PAD_SENTINEL 12345.0f   /* value in the stride padding of C, must survive the call */

typedef struct gemm_case {
    int trans_a, trans_b;
    int64_t M, N, K;
    float alpha, beta;
    int pad; /* extra elements per row of A, B, C */
} gemm_case;

static void fill_normal(cc_rng *rng, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = cc_rng_normal(rng);
}

/* Error of got against want relative to the magnitudes the product sums: max |got - want| over
 * max (|alpha|·|op(A)|·|op(B)| + |beta|·|C0|). A plain relative error is unbounded when alpha·AB and
 * beta·C nearly cancel (a 1x1x1 product with beta = 1), where FMA or not changes the last bits. */
static double product_error(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, const float *B, int64_t ldb, float beta, const float *C0, const float *got,
                            const float *want) {
    int64_t a_len = (trans_a ? K : M) * lda, b_len = (trans_b ? N : K) * ldb;
    float *abs_a = malloc(sizeof(float) * (size_t)(a_len + 1)), *abs_b = malloc(sizeof(float) * (size_t)(b_len + 1));
    float *scale = malloc(sizeof(float) * (size_t)(M * N + 1));
    for (int64_t i = 0; i < a_len; i++) abs_a[i] = fabsf(A[i]);
    for (int64_t i = 0; i < b_len; i++) abs_b[i] = fabsf(B[i]);
    for (int64_t i = 0; i < M * N; i++) scale[i] = beta == 0.0f ? 0.0f : fabsf(C0[i]);
    cc_sgemm_openblas(trans_a, trans_b, M, N, K, fabsf(alpha), abs_a, lda, abs_b, ldb, fabsf(beta), scale, N);
    double worst = 0, largest = 0;
    for (int64_t i = 0; i < M * N; i++) {
        double diff = isnan(got[i]) ? INFINITY : fabs((double)got[i] - (double)want[i]);
        if (diff > worst) worst = diff;
        if (scale[i] > largest) largest = scale[i];
    }
    free(abs_a), free(abs_b), free(scale);
    return largest > 0 ? worst / largest : worst;
}

/* Runs one case with cc_sgemm and cc_sgemm_openblas; returns product_error (INFINITY when
 * the stride padding of C was touched). beta == 0: the own call gets a NaN-filled C. */
static double run_case(cc_rng *rng, const gemm_case *g) {
    int64_t a_rows = g->trans_a ? g->K : g->M, a_cols = g->trans_a ? g->M : g->K;
    int64_t b_rows = g->trans_b ? g->N : g->K, b_cols = g->trans_b ? g->K : g->N;
    int64_t lda = a_cols + g->pad, ldb = b_cols + g->pad, ldc = g->N + g->pad;
    float *A = malloc((size_t)(a_rows * lda + 1) * sizeof(float));
    float *B = malloc((size_t)(b_rows * ldb + 1) * sizeof(float));
    float *C = malloc((size_t)(g->M * ldc) * sizeof(float));
    float *C_ref = malloc((size_t)(g->M * ldc) * sizeof(float));
    float *got = malloc((size_t)(g->M * g->N) * sizeof(float));
    float *want = malloc((size_t)(g->M * g->N) * sizeof(float));
    fill_normal(rng, A, a_rows * lda);
    fill_normal(rng, B, b_rows * ldb);
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            float v = j < g->N ? cc_rng_normal(rng) : PAD_SENTINEL;
            C_ref[i * ldc + j] = g->beta == 0.0f && j < g->N ? 0.0f : v;
            C[i * ldc + j] = g->beta == 0.0f && j < g->N ? NAN : v;
        }
    float *C0 = malloc((size_t)(g->M * g->N + 1) * sizeof(float));
    for (int64_t i = 0; i < g->M; i++) memcpy(C0 + i * g->N, C_ref + i * ldc, (size_t)g->N * sizeof(float));
    cc_sgemm(g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C, ldc);
    cc_sgemm_openblas(g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C_ref, ldc);
    int padding_ok = 1;
    for (int64_t i = 0; i < g->M; i++) {
        memcpy(got + i * g->N, C + i * ldc, (size_t)g->N * sizeof(float));
        memcpy(want + i * g->N, C_ref + i * ldc, (size_t)g->N * sizeof(float));
        for (int64_t j = g->N; j < ldc; j++) padding_ok &= C[i * ldc + j] == PAD_SENTINEL;
    }
    double rel = padding_ok ? product_error(g->trans_a, g->trans_b, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta,
                                            C0, got, want)
                            : INFINITY;
    free(C0);
    free(A);
    free(B);
    free(C);
    free(C_ref);
    free(got);
    free(want);
    return rel;
}

/* Every shape × all four transpose combinations × the thread counts, with alpha, beta and
 * padding drawn per case. */
static void check_shapes(cc_rng *rng, const int64_t (*shapes)[3], int n_shapes, const int *threads, int n_threads,
                         const char *what) {
    static const float alphas[] = {1.0f, -0.5f, 2.25f};
    static const float betas[] = {0.0f, 1.0f, 0.75f, -1.0f};
    for (int t = 0; t < n_threads; t++) {
        cc_set_threads(threads[t]);
        for (int s = 0; s < n_shapes; s++)
            for (int tr = 0; tr < 4; tr++) {
                gemm_case g = {.trans_a = tr & 1, .trans_b = tr >> 1, .M = shapes[s][0], .N = shapes[s][1],
                               .K = shapes[s][2], .alpha = alphas[cc_rng_below(rng, 3)],
                               .beta = betas[cc_rng_below(rng, 4)], .pad = (int)cc_rng_below(rng, 4)};
                double rel = run_case(rng, &g);
                CHECK(rel <= GEMM_TOL, "%s [%s] %d threads: %s%s M=%lld N=%lld K=%lld alpha=%g beta=%g pad=%d: rel %.3g",
                      what, cc_gemm_impl_name(), threads[t], g.trans_a ? "T" : "N", g.trans_b ? "T" : "N",
                      (long long)g.M, (long long)g.N, (long long)g.K, g.alpha, g.beta, g.pad, rel);
            }
    }
    cc_set_threads(0);
}

static const int64_t small_shapes[][3] = {
    {1, 1, 1}, {3, 37, 65}, {17, 1, 129}, {1, 1000, 7}, {14, 32, 16}, {15, 33, 17}, {28, 64, 5}, {6, 16, 300},
    {129, 257, 63}, {50, 96, 96}, {7, 17, 1},
};
static const int thread_counts[] = {1, 2, 3};

/* Runs the small-shape sweep with the named instruction set, when the CPU has it. */
static void check_isa(const char *isa) {
    if (cc_gemm_force_isa(isa) != 0) {
        printf("    (skipped: %s)\n", cc_last_error());
        return;
    }
    cc_gemm_set_impl(CC_GEMM_OWN);
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    check_shapes(&rng, small_shapes, (int)(sizeof small_shapes / sizeof small_shapes[0]), thread_counts, 3, isa);
    /* tiny blocking: many kc/mc/nc blocks, beta applied only on the first k block; the shapes
     * are big enough for 2–3 threads: a tall one (M split, shared B blocks), a wide one with
     * few rows (N split, fused packing) */
    cc_gemm_set_blocking(40, 30, 70);
    static const int64_t blocked[][3] = {{200, 300, 130}, {40, 600, 150}, {31, 200, 81}, {84, 192, 270}};
    static const int blocked_threads[] = {1, 2, 4}; /* 4: 84×192 runs on a 2×2 grid */
    check_shapes(&rng, blocked, 4, blocked_threads, 3, isa);
    cc_gemm_set_blocking(0, 0, 0);
    cc_gemm_force_isa(NULL);
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

TEST(gemm_avx512_matches_openblas) { check_isa("avx512"); }
TEST(gemm_avx2_matches_openblas) { check_isa("avx2"); }
TEST(gemm_scalar_matches_openblas) { check_isa("scalar"); }

TEST_SLOW(gemm_large_shapes_match_openblas) {
    /* ViT-B/32 shapes (batch 1 and 32) and an odd one; 2 threads (the sweep above covers 1–3) */
    static const int64_t shapes[][3] = {{50, 768, 768}, {1600, 768, 768}, {77, 2304, 768}, {333, 517, 1030}};
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_gemm_set_impl(CC_GEMM_OWN);
    static const int threads[] = {2};
    check_shapes(&rng, shapes, (int)(sizeof shapes / sizeof shapes[0]), threads, 1, "large");
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

TEST(gemm_beta0_overwrites_nan_alpha0_k0_and_bad_strides) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    enum { M = 9, N = 21, K = 13, LDC = 24 };
    float A[M * K], B[K * N], C[M * LDC];
    fill_normal(&rng, A, M * K);
    fill_normal(&rng, B, K * N);
    cc_gemm_set_impl(CC_GEMM_OWN);
    /* beta = 0 over NaN: result is the plain product, padding untouched */
    for (int i = 0; i < M * LDC; i++) C[i] = (i % LDC) < N ? NAN : PAD_SENTINEL;
    cc_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, LDC);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < LDC; j++) {
            double want = 0;
            for (int k = 0; k < K; k++) want += (double)A[i * K + k] * B[k * N + j % N];
            if (j < N) CHECK(fabs(C[i * LDC + j] - want) <= 1e-5 * (1 + fabs(want)), "C[%d,%d]=%g want %g", i, j, C[i * LDC + j], want);
            else CHECK(C[i * LDC + j] == PAD_SENTINEL, "padding C[%d,%d] changed", i, j);
        }
    /* alpha = 0: A and B are not read (NaN there stays out), C = beta*C */
    float A_nan[M * K];
    for (int i = 0; i < M * K; i++) A_nan[i] = NAN;
    float before[M * LDC];
    fill_normal(&rng, C, M * LDC);
    memcpy(before, C, sizeof before);
    cc_sgemm(0, 0, M, N, K, 0.0f, A_nan, K, B, N, 0.5f, C, LDC);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) CHECK(C[i * LDC + j] == 0.5f * before[i * LDC + j], "alpha=0 at %d,%d", i, j);
    /* K = 0: C = beta*C; with beta = 0, zeros over NaN */
    cc_sgemm(1, 1, M, N, 0, 1.0f, A, M, B, 1, -2.0f, C, LDC);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) CHECK(C[i * LDC + j] == -1.0f * before[i * LDC + j], "K=0 at %d,%d", i, j);
    for (int i = 0; i < M * LDC; i++) C[i] = NAN;
    cc_sgemm(0, 1, M, N, 0, 1.0f, A, 1, B, 1, 0.0f, C, LDC);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) CHECK(C[i * LDC + j] == 0.0f, "K=0 beta=0 at %d,%d: %g", i, j, C[i * LDC + j]);
    /* a stride shorter than a row is refused (as BLAS does): error named, C untouched */
    fill_normal(&rng, C, M * LDC);
    memcpy(before, C, sizeof before);
    cc_clear_error();
    cc_sgemm(0, 0, M, N, K, 1.0f, A, K - 1, B, N, 0.0f, C, LDC);
    CHECK(strstr(cc_last_error(), "lda=12") != NULL, "error should name lda: '%s'", cc_last_error());
    CHECK(memcmp(C, before, sizeof before) == 0, "C changed by a refused call");
    cc_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N - 1);
    CHECK(strstr(cc_last_error(), "ldc=20") != NULL, "error should name ldc: '%s'", cc_last_error());
    CHECK(memcmp(C, before, sizeof before) == 0, "C changed by a refused call");
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

TEST(gemm_beta1_accumulates_over_calls) {
    /* C += A1·B1 then C += A2·B2 equals [A1 A2]·[B1; B2] (K split in two calls) */
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    enum { M = 37, N = 45, K1 = 19, K2 = 26, K = K1 + K2 };
    float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
    float *C = calloc(M * N, sizeof(float)), *C_ref = malloc(M * N * sizeof(float));
    fill_normal(&rng, A, M * K);
    fill_normal(&rng, B, K * N);
    cc_gemm_set_impl(CC_GEMM_OWN);
    cc_sgemm(0, 0, M, N, K1, 1.0f, A, K, B, N, 1.0f, C, N);
    cc_sgemm(0, 0, M, N, K2, 1.0f, A + K1, K, B + K1 * N, N, 1.0f, C, N);
    cc_sgemm_openblas(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C_ref, N);
    CHECK_REL(C, C_ref, M * N, GEMM_TOL, "split-K accumulation");
    cc_gemm_set_impl(CC_GEMM_AUTO);
    free(A);
    free(B);
    free(C);
    free(C_ref);
}

TEST(gemm_batched_matches_per_matrix_openblas) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    /* attention-like: scores = Q·Kᵀ per head (small, one per thread) and a bigger batch of 2 */
    static const int64_t shapes[][4] = {{50, 50, 64, 24}, {77, 64, 77, 5}, {200, 300, 128, 2}};
    cc_gemm_set_impl(CC_GEMM_OWN);
    for (int s = 0; s < 3; s++) {
        int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], batch = shapes[s][3];
        int trans_b = s != 1;
        int64_t stride_a = M * K + 3, stride_b = N * K + 5, stride_c = M * N + 7;
        float *A = malloc((size_t)(stride_a * batch) * sizeof(float));
        float *B = malloc((size_t)(stride_b * batch) * sizeof(float));
        float *C = malloc((size_t)(stride_c * batch) * sizeof(float));
        float *C_ref = malloc((size_t)(stride_c * batch) * sizeof(float));
        fill_normal(&rng, A, stride_a * batch);
        fill_normal(&rng, B, stride_b * batch);
        fill_normal(&rng, C, stride_c * batch);
        memcpy(C_ref, C, (size_t)(stride_c * batch) * sizeof(float));
        cc_set_threads(2);
        cc_sgemm_batched(0, trans_b, M, N, K, 0.125f, A, K, stride_a, B, trans_b ? K : N, stride_b, 0.5f, C, N,
                         stride_c, batch);
        for (int64_t b = 0; b < batch; b++)
            cc_sgemm_openblas(0, trans_b, M, N, K, 0.125f, A + b * stride_a, K, B + b * stride_b, trans_b ? K : N,
                              0.5f, C_ref + b * stride_c, N);
        CHECK_REL(C, C_ref, stride_c * batch, GEMM_TOL, "batched");
        free(A);
        free(B);
        free(C);
        free(C_ref);
    }
    cc_set_threads(0);
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

static uint16_t to_bf16(float x) { /* round to nearest even */
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

TEST(gemm_bf16b_matches_openblas_on_widened_b) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const int64_t shapes[][3] = {{50, 77, 96}, {3, 33, 17}, {130, 64, 200}};
    static const char *isas[] = {"avx512", "avx2", "scalar"};
    cc_gemm_set_impl(CC_GEMM_OWN);
    for (int isa = 0; isa < 3; isa++) {
        if (cc_gemm_force_isa(isas[isa]) != 0) continue;
        for (int s = 0; s < 3; s++)
            for (int trans_b = 0; trans_b < 2; trans_b++) {
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int64_t b_rows = trans_b ? N : K, b_cols = trans_b ? K : N, ldb = b_cols + 2;
                float *A = malloc((size_t)(M * K) * sizeof(float)), *B = malloc((size_t)(b_rows * ldb) * sizeof(float));
                uint16_t *B16 = malloc((size_t)(b_rows * ldb) * sizeof(uint16_t));
                float *C = malloc((size_t)(M * N) * sizeof(float)), *C_ref = malloc((size_t)(M * N) * sizeof(float));
                fill_normal(&rng, A, M * K);
                for (int64_t i = 0; i < b_rows * ldb; i++) {
                    B16[i] = to_bf16(cc_rng_normal(&rng));
                    uint32_t bits = (uint32_t)B16[i] << 16;
                    memcpy(&B[i], &bits, sizeof bits);
                }
                fill_normal(&rng, C, M * N);
                memcpy(C_ref, C, (size_t)(M * N) * sizeof(float));
                cc_sgemm_bf16b(0, trans_b, M, N, K, 1.5f, A, K, B16, ldb, 0.25f, C, N);
                cc_sgemm_openblas(0, trans_b, M, N, K, 1.5f, A, K, B, ldb, 0.25f, C_ref, N);
                CHECK_REL(C, C_ref, M * N, GEMM_TOL, isas[isa]);
                free(A);
                free(B);
                free(B16);
                free(C);
                free(C_ref);
            }
    }
    cc_gemm_force_isa(NULL);
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

/* Pre-packed B: the same products as OpenBLAS for every instruction set, transposes, odd shapes,
 * several k blocks (a shorter last one), more rows than one A block, 1-3 threads; a packed copy
 * does not see later changes to B; packing is refused while OpenBLAS is selected. */
static void check_packed(cc_rng *rng, const char *isa) {
    static const int64_t shapes[][3] = {{1, 1, 1}, {50, 97, 130}, {3, 33, 7}, {200, 70, 301}, {14, 64, 96}, {61, 40, 41}};
    static const float betas[] = {0.0f, 1.0f, -0.5f};
    for (int blocked = 0; blocked < 2; blocked++) {
        cc_gemm_set_blocking(blocked ? 40 : 0, blocked ? 30 : 0, 0);
        for (int s = 0; s < 6; s++)
            for (int tr = 0; tr < 4; tr++)
                for (int threads = 1; threads <= 3; threads++) {
                    int trans_a = tr & 1, trans_b = tr >> 1, pad = (int)cc_rng_below(rng, 3);
                    int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int64_t lda = (trans_a ? M : K) + pad, ldb = (trans_b ? K : N) + pad;
                    float *A = malloc(sizeof(float) * (size_t)((trans_a ? K : M) * lda));
                    float *B = malloc(sizeof(float) * (size_t)((trans_b ? N : K) * ldb));
                    float *C = malloc(sizeof(float) * (size_t)(M * N)), *want = malloc(sizeof(float) * (size_t)(M * N));
                    fill_normal(rng, A, (trans_a ? K : M) * lda);
                    fill_normal(rng, B, (trans_b ? N : K) * ldb);
                    fill_normal(rng, C, M * N);
                    memcpy(want, C, sizeof(float) * (size_t)(M * N));
                    float *C0 = malloc(sizeof(float) * (size_t)(M * N));
                    memcpy(C0, C, sizeof(float) * (size_t)(M * N));
                    float *B_copy = malloc(sizeof(float) * (size_t)((trans_b ? N : K) * ldb));
                    memcpy(B_copy, B, sizeof(float) * (size_t)((trans_b ? N : K) * ldb));
                    float alpha = threads == 2 ? -1.5f : 1.0f, beta = betas[cc_rng_below(rng, 3)];
                    cc_gemm_packed *packed = cc_gemm_pack_b(trans_b, K, N, B, ldb);
                    REQUIRE(packed, "%s", cc_last_error());
                    CHECK(cc_gemm_packed_k(packed) == K && cc_gemm_packed_n(packed) == N &&
                          cc_gemm_packed_bytes(packed) >= sizeof(float) * (size_t)(K * N));
                    cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, want, N);
                    for (int64_t i = 0; i < (trans_b ? N : K) * ldb; i++) B[i] = NAN; /* the copy is independent */
                    cc_set_threads(threads);
                    cc_sgemm_packed(trans_a, M, alpha, A, lda, packed, beta, C, N);
                    cc_set_threads(0);
                    double rel = product_error(trans_a, trans_b, M, N, K, alpha, A, lda, B_copy, ldb, beta, C0, C, want);
                    free(C0), free(B_copy);
                    CHECK(rel <= GEMM_TOL, "packed %s%s %s M=%lld N=%lld K=%lld beta=%g %d threads blocked=%d: rel %.3g",
                          trans_a ? "T" : "N", trans_b ? "T" : "N", isa, (long long)M, (long long)N, (long long)K, beta,
                          threads, blocked, rel);
                    cc_gemm_packed_free(packed);
                    free(A), free(B), free(C), free(want);
                }
    }
    cc_gemm_set_blocking(0, 0, 0);
}

TEST(gemm_packed_b_matches_openblas) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const char *const isas[] = {"avx512", "avx2", "scalar"};
    for (int i = 0; i < 3; i++) {
        if (cc_gemm_force_isa(isas[i]) != 0) continue;
        cc_gemm_set_impl(CC_GEMM_OWN);
        check_packed(&rng, isas[i]);
    }
    cc_gemm_force_isa(NULL);
    cc_gemm_set_impl(CC_GEMM_OPENBLAS);
    float b[4] = {1, 2, 3, 4};
    CHECK(cc_gemm_pack_b(0, 2, 2, b, 2) == NULL && strstr(cc_last_error(), "OpenBLAS"), "%s", cc_last_error());
    cc_gemm_set_impl(CC_GEMM_AUTO);
}

TEST(gemm_impl_selection_and_names) {
    cc_gemm_set_impl(CC_GEMM_OPENBLAS);
    CHECK(!strcmp(cc_gemm_impl_name(), "openblas"), "%s", cc_gemm_impl_name());
    cc_gemm_set_impl(CC_GEMM_AUTO);
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? "own-avx512"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "own-avx2"
                                                                                          : "openblas";
    CHECK(!strcmp(cc_gemm_impl_name(), want), "auto gives %s, expected %s", cc_gemm_impl_name(), want);
    CHECK(cc_gemm_force_isa("scalar") == 0);
    CHECK(!strcmp(cc_gemm_impl_name(), "own-scalar"), "%s", cc_gemm_impl_name());
    CHECK(cc_gemm_force_isa("sse9") != 0);
    CHECK(strstr(cc_last_error(), "sse9") != NULL, "error should name the ISA: %s", cc_last_error());
    cc_gemm_force_isa(NULL);
    CHECK(!strcmp(cc_gemm_impl_name(), want), "after reset: %s", cc_gemm_impl_name());
}

/* bf16 pre-packed B (vdpbf16ps): equal to OpenBLAS's float product of the bf16-rounded operands
 * (summed in float in another order: GEMM_TOL of the summed magnitudes), transposes, odd K (a half
 * pair), several k blocks, more rows than one A block, 1-3 threads; and within 2^-7 of the
 * unrounded float product (the operands' rounding). Without AVX512_BF16, packing is refused. */
static void round_to_bf16(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)cc_bf16_round(x[i]) << 16;
        memcpy(&out[i], &bits, sizeof bits);
    }
}

TEST(gemm_packed_bf16_matches_openblas_on_rounded_operands) {
    float one = 1.0f;
    if (!cc_gemm_has_bf16()) {
        CHECK(cc_gemm_pack_b_bf16(0, 1, 1, &one, 1) == NULL && strstr(cc_last_error(), "AVX512_BF16"), "%s",
              cc_last_error());
        return;
    }
    CHECK(cc_bf16_round(1.0f + 1.0f / 256) == 0x3f80 && cc_bf16_round(1.0f + 3.0f / 256) == 0x3f82 &&
          cc_bf16_round(-2.0f) == 0xc000, "round to nearest even");
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const int64_t shapes[][3] = {{1, 1, 1}, {50, 97, 130}, {3, 33, 7}, {200, 70, 1301}, {14, 64, 96},
                                        {61, 40, 41}, {170, 33, 600}};
    for (int s = 0; s < 7; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int threads = 1; threads <= 3; threads++) {
                int trans_a = tr & 1, trans_b = tr >> 1, pad = (int)cc_rng_below(&rng, 3);
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int64_t lda = (trans_a ? M : K) + pad, ldb = (trans_b ? K : N) + pad;
                int64_t a_len = (trans_a ? K : M) * lda, b_len = (trans_b ? N : K) * ldb;
                float *A = malloc(sizeof(float) * (size_t)a_len), *B = malloc(sizeof(float) * (size_t)b_len);
                float *A16 = malloc(sizeof(float) * (size_t)a_len), *B16 = malloc(sizeof(float) * (size_t)b_len);
                float *C = malloc(sizeof(float) * (size_t)(M * N)), *C0 = malloc(sizeof(float) * (size_t)(M * N));
                float *want = malloc(sizeof(float) * (size_t)(M * N)), *exact = malloc(sizeof(float) * (size_t)(M * N));
                fill_normal(&rng, A, a_len);
                fill_normal(&rng, B, b_len);
                fill_normal(&rng, C0, M * N);
                round_to_bf16(A, A16, a_len);
                round_to_bf16(B, B16, b_len);
                float alpha = threads == 2 ? -1.5f : 1.0f, beta = tr == 1 ? 0.0f : 0.5f;
                memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                memcpy(want, C0, sizeof(float) * (size_t)(M * N));
                memcpy(exact, C0, sizeof(float) * (size_t)(M * N));
                cc_gemm_packed *packed = cc_gemm_pack_b_bf16(trans_b, K, N, B, ldb);
                REQUIRE(packed, "%s", cc_last_error());
                CHECK(cc_gemm_packed_is_bf16(packed) && cc_gemm_packed_k(packed) == K && cc_gemm_packed_n(packed) == N &&
                      cc_gemm_packed_bytes(packed) >= 2 * (size_t)(K * N) &&
                      cc_gemm_packed_bytes(packed) < 4 * (size_t)((K + 64) * (N + 32)));
                cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A16, lda, B16, ldb, beta, want, N);
                cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, exact, N);
                cc_set_threads(threads);
                cc_sgemm_packed(trans_a, M, alpha, A, lda, packed, beta, C, N);
                cc_set_threads(0);
                double rel = product_error(trans_a, trans_b, M, N, K, alpha, A16, lda, B16, ldb, beta, C0, C, want);
                double rounding = product_error(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, exact);
                CHECK(rel <= GEMM_TOL && rounding <= 1.0 / 128,
                      "bf16 packed %s%s M=%lld N=%lld K=%lld %d threads: rel %.3g to the rounded product, %.3g to the float one",
                      trans_a ? "T" : "N", trans_b ? "T" : "N", (long long)M, (long long)N, (long long)K, threads, rel,
                      rounding);
                /* the unpacked bf16 product (training): B packed for the call */
                memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                cc_set_threads(threads);
                cc_sgemm_bf16(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
                cc_set_threads(0);
                rel = product_error(trans_a, trans_b, M, N, K, alpha, A16, lda, B16, ldb, beta, C0, C, want);
                CHECK(rel <= GEMM_TOL, "cc_sgemm_bf16 %s%s M=%lld N=%lld K=%lld %d threads: rel %.3g to the rounded product",
                      trans_a ? "T" : "N", trans_b ? "T" : "N", (long long)M, (long long)N, (long long)K, threads, rel);
                cc_gemm_packed_free(packed);
                free(A), free(B), free(A16), free(B16), free(C), free(C0), free(want), free(exact);
            }
}

/* int8 pre-packed B (vpdpbusd): equal to the product of the quantized operands computed here in
 * double (codes round(x·127/max) per row of A and per column of op(B)), transposes, K not a
 * multiple of 4, several k blocks, more rows than one A block, 1-3 threads, beta; within 1/64 of the
 * summed magnitudes of the float product (1/8 with a 40x outlier in A); NaN in A gives NaN in its row. Without AVX512_VNNI,
 * packing is refused. */
static void quantize_reference(const float *x, int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride,
                               double *codes, double *scales) {
    for (int64_t r = 0; r < rows; r++) {
        double largest = 0;
        for (int64_t c = 0; c < cols; c++) largest = fmax(largest, fabs(x[r * row_stride + c * col_stride]));
        float scale = (float)largest / 127.0f, inv = largest > 0 ? 127.0f / (float)largest : 0.0f;
        scales[r] = scale;
        for (int64_t c = 0; c < cols; c++) {
            float q = nearbyintf(x[r * row_stride + c * col_stride] * inv);
            codes[r * cols + c] = q > 127 ? 127 : q < -127 ? -127 : q;
        }
    }
}

TEST(gemm_packed_int8_matches_quantized_reference) {
    float one = 1.0f;
    if (!cc_gemm_has_int8()) {
        CHECK(cc_gemm_pack_b_int8(0, 1, 1, &one, 1) == NULL && strstr(cc_last_error(), "AVX512_VNNI"), "%s",
              cc_last_error());
        return;
    }
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const int64_t shapes[][3] = {{1, 1, 1}, {50, 97, 130}, {3, 33, 7}, {20, 70, 2301}, {14, 64, 96},
                                        {61, 40, 41}, {170, 33, 600}};
    for (int s = 0; s < 7; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int threads = 1; threads <= 3; threads++) {
                int trans_a = tr & 1, trans_b = tr >> 1, pad = (int)cc_rng_below(&rng, 3);
                int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int64_t lda = (trans_a ? M : K) + pad, ldb = (trans_b ? K : N) + pad;
                int64_t a_len = (trans_a ? K : M) * lda, b_len = (trans_b ? N : K) * ldb;
                float *A = malloc(sizeof(float) * (size_t)a_len), *B = malloc(sizeof(float) * (size_t)b_len);
                float *C = malloc(sizeof(float) * (size_t)(M * N)), *C0 = malloc(sizeof(float) * (size_t)(M * N));
                float *exact = malloc(sizeof(float) * (size_t)(M * N)), *want = malloc(sizeof(float) * (size_t)(M * N));
                double *qa = malloc(sizeof(double) * (size_t)(M * K)), *qb = malloc(sizeof(double) * (size_t)(N * K));
                double *sa = malloc(sizeof(double) * (size_t)M), *sb = malloc(sizeof(double) * (size_t)N);
                fill_normal(&rng, A, a_len);
                fill_normal(&rng, B, b_len);
                fill_normal(&rng, C0, M * N);
                if (s == 1) A[0] *= 40; /* an outlier in one row: that row's codes get coarse */
                float alpha = threads == 2 ? -1.5f : 1.0f, beta = tr == 1 ? 0.0f : 0.5f;
                /* op(A)[i, k] = A[i*lda + k] or A[k*lda + i]; op(B)[k, j] = B[k*ldb + j] or B[j*ldb + k] */
                quantize_reference(A, M, K, trans_a ? 1 : lda, trans_a ? lda : 1, qa, sa);
                quantize_reference(B, N, K, trans_b ? ldb : 1, trans_b ? 1 : ldb, qb, sb);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double sum = 0;
                        for (int64_t k = 0; k < K; k++) sum += qa[i * K + k] * qb[j * K + k];
                        want[i * N + j] = (float)(alpha * sa[i] * sb[j] * sum + beta * C0[i * N + j]);
                    }
                memcpy(C, C0, sizeof(float) * (size_t)(M * N));
                memcpy(exact, C0, sizeof(float) * (size_t)(M * N));
                cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, exact, N);
                cc_gemm_packed *packed = cc_gemm_pack_b_int8(trans_b, K, N, B, ldb);
                REQUIRE(packed, "%s", cc_last_error());
                CHECK(cc_gemm_packed_is_int8(packed) && !cc_gemm_packed_is_bf16(packed) && cc_gemm_packed_k(packed) == K &&
                      cc_gemm_packed_n(packed) == N && cc_gemm_packed_bytes(packed) >= (size_t)(K * N) &&
                      cc_gemm_packed_bytes(packed) < (size_t)((K + 64) * (N + 32)));
                cc_set_threads(threads);
                cc_sgemm_packed(trans_a, M, alpha, A, lda, packed, beta, C, N);
                cc_set_threads(0);
                double rel = product_error(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, want);
                double quantization = product_error(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C0, C, exact);
                /* the outlier row's codes are 40 times coarser */
                CHECK(rel <= GEMM_TOL && quantization <= (s == 1 ? 1.0 / 8 : 1.0 / 64),
                      "int8 packed %s%s M=%lld N=%lld K=%lld %d threads: rel %.3g to the quantized product, %.3g to the float one",
                      trans_a ? "T" : "N", trans_b ? "T" : "N", (long long)M, (long long)N, (long long)K, threads, rel,
                      quantization);
                if (s == 6 && tr == 0 && threads == 1) { /* NaN in row 3 of A: row 3 of C is NaN, the rest finite */
                    A[3 * lda + 5] = NAN;
                    cc_sgemm_packed(0, M, 1.0f, A, lda, packed, 0.0f, C, N);
                    int nan_row = 1, others = 1;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            if (i == 3) nan_row &= isnan(C[i * N + j]);
                            else others &= isfinite(C[i * N + j]);
                        }
                    CHECK(nan_row && others, "NaN in a row of A: NaN in that row of C only");
                }
                cc_gemm_packed_free(packed);
                free(A), free(B), free(C), free(C0), free(exact), free(want), free(qa), free(qb), free(sa), free(sb);
            }
}
