/* cblas.h (shim) — the one CBLAS call clipc uses (cblas_sgemm), for building the GPU check
 * program on machines without OpenBLAS headers (the GPU image). Only on the include path of CUDA=1
 * builds where <cblas.h> is missing; the implementation is tests/gpu/shim/cblas_ref.c. */
#ifndef CLIPC_SHIM_CBLAS_H
#define CLIPC_SHIM_CBLAS_H

typedef int blasint;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, blasint m,
                 blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta,
                 float *c, blasint ldc);

#endif
