/* gemm_avx2.c — AVX2+FMA back end of clipc's SGEMM for CPUs without AVX-512: a 6×16 register
 * tile (12 ymm accumulators, B rows as two ymm, A broadcast), specialised per row count, with
 * masked loads/stores for column edges. Packing is plain C compiled for AVX2. */
#include <immintrin.h>
#include <string.h>

#include "kernels/gemm_internal.h"

#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define AVX2_INLINE static inline AVX2_TARGET __attribute__((always_inline))

enum { MR = 6, NR = 16 };
enum { KC = 256, MC = 144, NC = 3072 };

/* lane i of the mask is set when i < n (n clamped to 0..8) */
AVX2_INLINE __m256i lane_mask(int n) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes);
}

AVX2_INLINE void tile(const int rows, const int full, int n, int64_t kc, const float *ap, const float *bp, int64_t ldb,
                      float *c, int64_t ldc, float alpha, float beta) {
    const __m256i mask0 = lane_mask(n), mask1 = lane_mask(n - 8);
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const float *brow = bp + k * ldb;
        __m256 b0 = full ? _mm256_loadu_ps(brow) : _mm256_maskload_ps(brow, mask0);
        __m256 b1 = full ? _mm256_loadu_ps(brow + 8) : _mm256_maskload_ps(brow + 8, mask1);
#pragma GCC unroll 6
        for (int r = 0; r < rows; r++) {
            __m256 a = _mm256_broadcast_ss(ap + k * MR + r);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    const __m256 alpha_v = _mm256_set1_ps(alpha), beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int r = 0; r < rows; r++) {
        float *crow = c + r * ldc;
        for (int v = 0; v < 2; v++) {
            __m256i mask = v == 0 ? mask0 : mask1;
            __m256 out = _mm256_mul_ps(acc[r][v], alpha_v);
            if (beta != 0.0f) {
                __m256 old = full ? _mm256_loadu_ps(crow + 8 * v) : _mm256_maskload_ps(crow + 8 * v, mask);
                out = _mm256_fmadd_ps(old, beta_v, out);
            }
            if (full) _mm256_storeu_ps(crow + 8 * v, out);
            else _mm256_maskstore_ps(crow + 8 * v, mask, out);
        }
    }
}

#define DEFINE_TILES(R)                                                                                     \
    static AVX2_TARGET void tile_full_##R(int n, int64_t kc, const float *ap, const float *bp, int64_t ldb,  \
                                          float *c, int64_t ldc, float alpha, float beta) {                  \
        tile(R, 1, n, kc, ap, bp, ldb, c, ldc, alpha, beta);                                                \
    }                                                                                                       \
    static AVX2_TARGET void tile_edge_##R(int n, int64_t kc, const float *ap, const float *bp, int64_t ldb,  \
                                          float *c, int64_t ldc, float alpha, float beta) {                  \
        tile(R, 0, n, kc, ap, bp, ldb, c, ldc, alpha, beta);                                                \
    }
DEFINE_TILES(1)
DEFINE_TILES(2)
DEFINE_TILES(3)
DEFINE_TILES(4)
DEFINE_TILES(5)
DEFINE_TILES(6)

typedef void (*tile_fn)(int n, int64_t kc, const float *ap, const float *bp, int64_t ldb, float *c, int64_t ldc,
                        float alpha, float beta);
static const tile_fn tiles_full[MR + 1] = {NULL, tile_full_1, tile_full_2, tile_full_3,
                                           tile_full_4, tile_full_5, tile_full_6};
static const tile_fn tiles_edge[MR + 1] = {NULL, tile_edge_1, tile_edge_2, tile_edge_3,
                                           tile_edge_4, tile_edge_5, tile_edge_6};

static void micro_avx2(int m, int n, int64_t kc, const float *ap, const float *bp, int64_t ldb, float *c, int64_t ldc,
                       float alpha, float beta) {
    (n == NR ? tiles_full : tiles_edge)[m](n, kc, ap, bp, ldb, c, ldc, alpha, beta);
}

static AVX2_TARGET void pack_a_avx2(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                    int64_t kc, float *dst) {
    for (int64_t p = 0; p < m; p += MR, dst += MR * kc) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        for (int r = 0; r < rows; r++) {
            int64_t i = i0 + p + r;
            if (trans_a)
                for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = A[(k0 + k) * lda + i];
            else
                for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = A[i * lda + k0 + k];
        }
    }
}

static AVX2_TARGET void pack_b_avx2(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                                    int64_t n, float *dst) {
    for (int64_t p = 0; p < n; p += NR, dst += NR * kc) {
        int cols = n - p < NR ? (int)(n - p) : NR;
        for (int64_t k = 0; k < kc; k++) {
            float *out = dst + k * NR;
            for (int c = 0; c < cols; c++)
                out[c] = trans_b ? B[(j0 + p + c) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + p + c];
            for (int c = cols; c < NR; c++) out[c] = 0.0f;
        }
    }
}

static AVX2_TARGET void pack_b_bf16_avx2(int trans_b, const uint16_t *B, int64_t ldb, int64_t k0, int64_t kc,
                                         int64_t j0, int64_t n, float *dst) {
    for (int64_t p = 0; p < n; p += NR, dst += NR * kc) {
        int cols = n - p < NR ? (int)(n - p) : NR;
        for (int64_t k = 0; k < kc; k++) {
            float *out = dst + k * NR;
            for (int c = 0; c < cols; c++) {
                uint32_t bits = (uint32_t)(trans_b ? B[(j0 + p + c) * ldb + k0 + k] : B[(k0 + k) * ldb + j0 + p + c])
                                << 16;
                memcpy(&out[c], &bits, sizeof bits);
            }
            for (int c = cols; c < NR; c++) out[c] = 0.0f;
        }
    }
}

const cc_gemm_backend cc_gemm_backend_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .mc = MC,
    .nc = NC,
    .micro = micro_avx2,
    .pack_a = pack_a_avx2,
    .pack_b = pack_b_avx2,
    .pack_b_bf16 = pack_b_bf16_avx2,
};
