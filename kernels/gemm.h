/* gemm.h — single-precision matrix multiply used by the engine, the indexes and k-means.
 *
 * Row-major: C[M,N] = alpha * op(A)[M,K] · op(B)[K,N] + beta * C, where op(X) is X or Xᵀ.
 * lda/ldb/ldc are row strides in elements of the matrices as stored (A is M×K when !trans_a,
 * K×M when trans_a). The call is multi-threaded over cc_get_threads() threads.
 *
 * Two implementations: clipc's own SIMD kernel (AVX-512 with runtime detection, AVX2+FMA
 * fallback, packing and cache blocking), and OpenBLAS cblas_sgemm, used as fallback and as the
 * reference in tests and benchmarks. cc_gemm_set_impl() selects one for the whole process.
 */
#ifndef CLIPC_GEMM_H
#define CLIPC_GEMM_H

#include <stdint.h>

typedef enum {
    CC_GEMM_AUTO = 0,  /* own kernel when the CPU supports it, else OpenBLAS */
    CC_GEMM_OWN,
    CC_GEMM_OPENBLAS,
} cc_gemm_impl;

void cc_gemm_set_impl(cc_gemm_impl impl);
cc_gemm_impl cc_gemm_get_impl(void);
const char *cc_gemm_impl_name(void); /* e.g. "own-avx512", "own-avx2", "openblas" */

void cc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Always OpenBLAS (the reference). */
void cc_sgemm_openblas(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc);

#endif
