/* gemm_scalar.c — portable C back end of clipc's SGEMM (any CPU): a 4×16 tile of plain loops the
 * compiler may vectorise with the baseline ISA. Same packed layouts as the SIMD back ends. */
#include <string.h>

#include "kernels/gemm_internal.h"

enum { MR = 4, NR = 16 };
enum { KC = 256, MC = 128, NC = 2048 };

static void micro_scalar(int m, int n, int64_t kc, const float *ap, const float *bp, int64_t ldb, float *c,
                         int64_t ldc, float alpha, float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *brow = bp + k * ldb;
        float b[NR];
        for (int j = 0; j < NR; j++) b[j] = j < n ? brow[j] : 0.0f;
        for (int r = 0; r < MR; r++) {
            float a = r < m ? ap[k * MR + r] : 0.0f;
            for (int j = 0; j < NR; j++) acc[r][j] += a * b[j];
        }
    }
    for (int r = 0; r < m; r++) {
        float *crow = c + r * ldc;
        for (int j = 0; j < n; j++) crow[j] = beta == 0.0f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * crow[j];
    }
}

static void pack_a_scalar(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc,
                          float *dst) {
    for (int64_t p = 0; p < m; p += MR, dst += MR * kc) {
        int rows = m - p < MR ? (int)(m - p) : MR;
        for (int r = 0; r < rows; r++) {
            int64_t i = i0 + p + r;
            for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = trans_a ? A[(k0 + k) * lda + i] : A[i * lda + k0 + k];
        }
    }
}

static void pack_b_scalar(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                          float *dst) {
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

static void pack_b_bf16_scalar(int trans_b, const uint16_t *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0,
                               int64_t n, float *dst) {
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

const cc_gemm_backend cc_gemm_backend_scalar = {
    .name = "scalar",
    .mr = MR,
    .nr = NR,
    .kc = KC,
    .mc = MC,
    .nc = NC,
    .micro = micro_scalar,
    .pack_a = pack_a_scalar,
    .pack_b = pack_b_scalar,
    .pack_b_bf16 = pack_b_bf16_scalar,
};
