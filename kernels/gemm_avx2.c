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

/* In-register transpose of an 8×8 block: on return r[j] holds what was column j. */
AVX2_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) { /* u[4i+j] = rows 4i..4i+3 of columns j (low lane) and j+4 (high lane) */
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

/* Reads `rows` (<= 8) rows of `cols` (<= 8) floats, `ld` apart, and stores column j (the
 * `rows` values, zero past them) at dst + j*dst_stride for j < cols under store_mask. */
AVX2_INLINE void transpose_block(const float *src, int64_t ld, int rows, int cols, float *dst, int64_t dst_stride,
                                 __m256i store_mask) {
    __m256 r[8];
    __m256i load_mask = lane_mask(cols);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        r[i] = i >= rows ? _mm256_setzero_ps() : cols == 8 ? _mm256_loadu_ps(src + i * ld) : _mm256_maskload_ps(src + i * ld, load_mask);
    transpose8(r);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        if (j < cols) _mm256_maskstore_ps(dst + j * dst_stride, store_mask, r[j]);
}

static AVX2_TARGET void pack_a_avx2(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0,
                                    int64_t kc, float *dst) {
    for (int64_t p = 0; p < m; p += MR, dst += MR * kc) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        __m256i row_mask = lane_mask(rows);
        if (trans_a) { /* op(A)[i, k] = A[k*lda + i]: each k gives `rows` contiguous floats */
            const float *src = A + k0 * lda + i0 + p;
            for (int64_t k = 0; k < kc; k++)
                _mm256_maskstore_ps(dst + k * MR, row_mask, _mm256_maskload_ps(src + k * lda, row_mask));
        } else { /* rows of A are contiguous along k: transpose 8-wide blocks */
            const float *src = A + (i0 + p) * lda + k0;
            for (int64_t k = 0; k < kc; k += 8)
                transpose_block(src + k, lda, rows, kc - k < 8 ? (int)(kc - k) : 8, dst + k * MR, MR, row_mask);
        }
    }
}

static AVX2_TARGET void pack_b_avx2(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                                    int64_t n, float *dst) {
    const __m256i all = _mm256_set1_epi32(-1);
    for (int64_t p = 0; p < n; p += NR, dst += NR * kc) {
        int cols = n - p < NR ? (int)(n - p) : NR;
        if (!trans_b) { /* op(B)[k, j] = B[k*ldb + j]: contiguous along j */
            const float *src = B + k0 * ldb + j0 + p;
            __m256i mask0 = lane_mask(cols), mask1 = lane_mask(cols - 8);
            for (int64_t k = 0; k < kc; k++) {
                _mm256_storeu_ps(dst + k * NR, cols == NR ? _mm256_loadu_ps(src + k * ldb) : _mm256_maskload_ps(src + k * ldb, mask0));
                _mm256_storeu_ps(dst + k * NR + 8,
                                 cols == NR ? _mm256_loadu_ps(src + k * ldb + 8) : _mm256_maskload_ps(src + k * ldb + 8, mask1));
            }
        } else { /* op(B)[k, j] = B[j*ldb + k]: transpose 8×8 blocks, two per panel row */
            for (int half = 0; half < 2; half++) {
                int rows = cols - 8 * half;
                if (rows > 8) rows = 8;
                const float *src = B + (j0 + p + 8 * half) * ldb + k0;
                for (int64_t k = 0; k < kc; k += 8) {
                    int kk = kc - k < 8 ? (int)(kc - k) : 8;
                    if (rows <= 0) {
                        for (int j = 0; j < kk; j++) _mm256_storeu_ps(dst + (k + j) * NR + 8 * half, _mm256_setzero_ps());
                    } else {
                        transpose_block(src + k, ldb, rows, kk, dst + k * NR + 8 * half, NR, all);
                    }
                }
            }
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
