/* gemm_internal.h — what the SGEMM driver (gemm.c) needs from each instruction-set back end
 * (gemm_avx512.c, gemm_avx2.c, gemm_scalar.c). Not part of the public interface.
 *
 * Layout of the packed operands (BLIS/GotoBLAS style):
 *   packed A: panels of MR rows of op(A); inside a panel, k-major: ap[k*MR + r] = op(A)[i0+r, k0+k].
 *             Rows past the matrix edge are not written (the micro-kernel is told how many rows).
 *   packed B: panels of NR columns of op(B); inside a panel, bp[k*NR + c] = op(B)[k0+k, j0+c],
 *             zero-padded to NR columns.
 */
#ifndef CLIPC_GEMM_INTERNAL_H
#define CLIPC_GEMM_INTERNAL_H

#include <stdint.h>

/* C[m×n] = alpha · Ap·Bp + beta · C for one register tile (m <= MR, n <= NR). ap is one packed-A
 * panel (stride MR per k). bp points at row 0 of kc rows of B, ldb floats apart (NR for a packed
 * panel, or the caller's ldb when B is used in place); columns >= n are not read when n < NR.
 * beta == 0 never reads C. */
typedef void (*cc_gemm_micro_fn)(int m, int n, int64_t kc, const float *ap, const float *bp, int64_t ldb,
                                 float *c, int64_t ldc, float alpha, float beta);

/* Packs the rows [i0, i0+m) × columns [k0, k0+kc) of op(A) into ceil(m/MR) panels at dst. */
typedef void (*cc_gemm_pack_a_fn)(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m,
                                  int64_t k0, int64_t kc, float *dst);
/* Packs rows [k0, k0+kc) × columns [j0, j0+n) of op(B) into ceil(n/NR) zero-padded panels at dst. */
typedef void (*cc_gemm_pack_b_fn)(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc,
                                  int64_t j0, int64_t n, float *dst);
/* Same, reading B stored as bf16 (upper 16 bits of a float) and widening. */
typedef void (*cc_gemm_pack_b_bf16_fn)(int trans_b, const uint16_t *B, int64_t ldb, int64_t k0, int64_t kc,
                                       int64_t j0, int64_t n, float *dst);

typedef struct cc_gemm_backend {
    const char *name; /* "avx512", "avx2", "scalar" */
    int mr, nr;       /* register tile */
    int kc, mc, nc;   /* cache blocking: kc×nr B panel in L1, mc×kc A block in L2, kc×nc B block in L3 */
    cc_gemm_micro_fn micro;
    cc_gemm_pack_a_fn pack_a;
    cc_gemm_pack_b_fn pack_b;
    cc_gemm_pack_b_bf16_fn pack_b_bf16;
} cc_gemm_backend;

/* The bf16 back end of the pre-packed product (gemm_bf16.c): operands as k pairs of bf16, one
 * uint32 per pair; ap[kp*mr + r], bp[kp*nr + c] (see gemm_bf16.c). pairs = ceil(kc / 2). */
typedef struct cc_gemm_bf16_backend {
    int mr, nr, kc, mc;
    void (*pack_a)(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc,
                   uint32_t *dst);
    void (*pack_b)(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                   uint32_t *dst);
    void (*micro)(int m, int n, int64_t pairs, const uint32_t *ap, const uint32_t *bp, float *c, int64_t ldc,
                  float alpha, float beta);
} cc_gemm_bf16_backend;

extern const cc_gemm_bf16_backend cc_gemm_bf16_avx512;
int cc_gemm_cpu_has_bf16(void);

/* The int8 back end (gemm_int8.c): k quads, one uint32 per quad; A as u8 (code + 128) with a
 * scale per row, B as s8 with a scale per column and the column sums of its codes per k block. */
typedef struct cc_gemm_int8_backend {
    int mr, nr, kc, mc;
    float (*absmax)(const float *x, int64_t n); /* max |x| of a contiguous row, NaN if any is NaN */
    void (*pack_a)(int trans_a, const float *A, int64_t lda, int64_t i0, int64_t m, int64_t k0, int64_t kc,
                   const float *inv_scale, uint32_t *dst);
    void (*pack_b)(int trans_b, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t n,
                   const float *inv_scale, uint32_t *dst, int32_t *colsum);
    /* colsum and b_scale: nr values of this panel; a_scale: m values of these rows */
    void (*micro)(int m, int n, int64_t quads, const uint32_t *ap, const uint32_t *bp, const int32_t *colsum,
                  const float *b_scale, const float *a_scale, float *c, int64_t ldc, float alpha, float beta);
} cc_gemm_int8_backend;

extern const cc_gemm_int8_backend cc_gemm_int8_avx512;
int cc_gemm_cpu_has_int8(void);

extern const cc_gemm_backend cc_gemm_backend_avx512;
extern const cc_gemm_backend cc_gemm_backend_avx2;
extern const cc_gemm_backend cc_gemm_backend_scalar;

#endif
