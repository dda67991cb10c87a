/* cblas_ref.c — reference cblas_sgemm (shim, see cblas.h): row-major or column-major, threaded
 * over rows of C with OpenMP, float accumulation in k order. Used only as the CPU reference of the
 * GPU check program on images without OpenBLAS. */
#include "cblas.h"

#include <stdint.h>

static float element(const float *m, int64_t ld, int trans, int row_major, int64_t r, int64_t c) {
    /* element (r, c) of op(M) */
    if (trans) {
        int64_t t = r;
        r = c;
        c = t;
    }
    return row_major ? m[r * ld + c] : m[c * ld + r];
}

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE trans_a, enum CBLAS_TRANSPOSE trans_b, blasint m,
                 blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta,
                 float *c, blasint ldc) {
    int row_major = order == CblasRowMajor, ta = trans_a == CblasTrans, tb = trans_b == CblasTrans;
#pragma omp parallel for schedule(static) if ((int64_t)m * n * k > 100000)
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0;
            for (int64_t p = 0; p < k; p++) acc += element(a, lda, ta, row_major, i, p) * element(b, ldb, tb, row_major, p, j);
            float *out = row_major ? &c[i * ldc + j] : &c[j * ldc + i];
            *out = alpha * acc + (beta != 0.0f ? beta * *out : 0.0f);
        }
}
