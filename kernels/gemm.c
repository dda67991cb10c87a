/* gemm.c — dispatch between clipc's own SGEMM kernel and OpenBLAS.
 * The own kernel is being written (issue 2); until it lands every call goes to OpenBLAS. */
#include "kernels/gemm.h"

#include <cblas.h>

static cc_gemm_impl selected_impl = CC_GEMM_AUTO;

void cc_gemm_set_impl(cc_gemm_impl impl) { selected_impl = impl; }
cc_gemm_impl cc_gemm_get_impl(void) { return selected_impl; }
const char *cc_gemm_impl_name(void) { return "openblas"; }

void cc_sgemm_openblas(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                (blasint)ldc);
}

void cc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
