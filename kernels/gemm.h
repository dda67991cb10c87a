/* gemm.h — single-precision matrix multiply used by the engine, the indexes and k-means.
 *
 * Row-major: C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C, where op(X) is X or Xᵀ.
 * lda/ldb/ldc are row strides in elements of the matrices as stored (A is M×K when !trans_a,
 * K×M when trans_a). The call is multi-threaded over cc_get_threads() threads. As in BLAS,
 * beta == 0 never reads C (NaN there is overwritten) and alpha == 0 or K == 0 never reads A, B;
 * negative sizes or strides shorter than a row (lda < max(1, columns of A as stored), ...) set
 * cc_last_error and leave C untouched.
 *
 * Two implementations: clipc's own SIMD kernel (AVX-512 with runtime detection, AVX2+FMA
 * fallback, a portable C path; packing and cache blocking), and OpenBLAS cblas_sgemm, used as
 * fallback and as the reference in tests and benchmarks. cc_gemm_set_impl() selects one for the
 * whole process.
 */
#ifndef CLIPC_GEMM_H
#define CLIPC_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CC_GEMM_AUTO = 0,  /* own kernel when the CPU has AVX-512F or AVX2+FMA, else OpenBLAS */
    CC_GEMM_OWN,       /* own kernel; the portable C path on CPUs without either */
    CC_GEMM_OPENBLAS,
} cc_gemm_impl;

void cc_gemm_set_impl(cc_gemm_impl impl);
cc_gemm_impl cc_gemm_get_impl(void);
/* "own-avx512", "own-avx2", "own-scalar" or "openblas": what cc_sgemm runs now. */
const char *cc_gemm_impl_name(void);

void cc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Always OpenBLAS (the reference). */
void cc_sgemm_openblas(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc);

/* `batch` independent products: matrix b uses A + b*stride_a, B + b*stride_b, C + b*stride_c
 * (strides in elements). Small products run one per thread; large ones one after the other,
 * each multi-threaded. The C blocks must not overlap. */
void cc_sgemm_batched(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, int64_t stride_a, const float *B, int64_t ldb, int64_t stride_b, float beta,
                      float *C, int64_t ldc, int64_t stride_c, int64_t batch);

/* As cc_sgemm, with B stored as bfloat16 (the upper 16 bits of an IEEE float, e.g. weights kept
 * in bf16); B is widened to float while it is packed, products and sums are in float. */
void cc_sgemm_bf16b(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Pre-packed B (inference weights): op(B) [K, N] packed once into the own kernel's panel layout,
 * so that each product streams it contiguously and skips packing. Worth it when B is used many
 * times unchanged and M is small (batch-1 inference: packing and the strided reads of a weight
 * cost about as much as the multiply). The packed copy does not follow later changes to B.
 * cc_gemm_pack_b returns NULL (cc_last_error set) when out of memory, and also when the own
 * kernel is not in use (OpenBLAS selected): callers then keep using cc_sgemm. */
typedef struct cc_gemm_packed cc_gemm_packed;
cc_gemm_packed *cc_gemm_pack_b(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb);
void cc_gemm_packed_free(cc_gemm_packed *packed);
int64_t cc_gemm_packed_k(const cc_gemm_packed *packed);
int64_t cc_gemm_packed_n(const cc_gemm_packed *packed);
size_t cc_gemm_packed_bytes(const cc_gemm_packed *packed);
/* C[M, N] = alpha * op(A)[M, K] · packed + beta * C, with K, N those of the packed matrix. */
void cc_sgemm_packed(int trans_a, int64_t M, float alpha, const float *A, int64_t lda, const cc_gemm_packed *B,
                     float beta, float *C, int64_t ldc);

/* Pre-packed B in bfloat16, for bf16 inference on CPUs with AVX512_BF16 (vdpbf16ps): B is rounded
 * to bf16 once (nearest even) and takes half the memory of the float layout; cc_sgemm_packed then
 * rounds each A block to bf16 too and sums the products in float. Relative error per output is
 * about 2^-8 of the sum of |a·b| (the roundings of the operands), not the float product's 2^-24.
 * Returns NULL with cc_last_error when the CPU lacks AVX512_BF16 (cc_gemm_has_bf16() says) or
 * out of memory. CLIPC_NO_BF16 in the environment makes cc_gemm_has_bf16() answer 0 (to run the
 * fallback on any CPU). */
int cc_gemm_has_bf16(void);
cc_gemm_packed *cc_gemm_pack_b_bf16(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb);
/* 1 when the packed matrix is in bf16. */
int cc_gemm_packed_is_bf16(const cc_gemm_packed *packed);
/* Pre-packed B quantized to int8, for int8 inference on CPUs with AVX512_VNNI (vpdpbusd): B per
 * output column (symmetric, scale max|column|/127), once; cc_sgemm_packed then quantizes each row of
 * A the same way and sums the code products exactly in int32. Error per output: about 1% of the
 * sum of |a·b| (the two quantizations). NULL with cc_last_error when the CPU lacks AVX512_VNNI
 * (cc_gemm_has_int8(); CLIPC_NO_INT8 set answers 0) or out of memory. */
int cc_gemm_has_int8(void);
cc_gemm_packed *cc_gemm_pack_b_int8(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb);
int cc_gemm_packed_is_int8(const cc_gemm_packed *packed);

/* As cc_sgemm with both operands rounded to bf16 (nearest even) and the products summed in float
 * by vdpbf16ps: B is packed into the bf16 layout for this call, then the pre-packed product runs.
 * For training in bf16 (the backward products included). Runs cc_sgemm (float) on CPUs without
 * AVX512_BF16. */
void cc_sgemm_bf16(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* float -> bfloat16 bits, rounding to nearest even (as the bf16 kernels do). */
uint16_t cc_bf16_round(float value);

/* For tests and benchmarks: run the own kernel with one instruction set, "avx512", "avx2" or
 * "scalar" (NULL or "auto" = detect again). Returns -1 (with cc_last_error) when the CPU lacks
 * it or the name is unknown. Takes effect for CC_GEMM_AUTO and CC_GEMM_OWN. */
int cc_gemm_force_isa(const char *isa);
/* For tests and benchmarks: cache-blocking sizes of the own kernel (0 = the back end's default).
 * Small values exercise the blocking loops on small matrices. */
void cc_gemm_set_blocking(int kc, int mc, int nc);

#endif
