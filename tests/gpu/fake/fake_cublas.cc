/* fake_cublas.cc — reference-loop implementations of the cuBLAS / cuBLASLt calls in fake_cublas.h.
 * Column-major, as the real libraries: C[m x n] = alpha op(A) op(B) + beta C. */
#include "tests/gpu/fake/fake_cublas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

struct cc_fake_cublas {
    cudaStream_t stream;
};
struct cc_fake_lt {
    int unused;
};
struct cc_fake_lt_desc {
    cublasComputeType_t compute;
    int transa, transb;
    unsigned epilogue;
    const void *bias;
    int bias_type;
};
struct cc_fake_lt_layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct cc_fake_lt_pref {
    uint64_t workspace;
    uint32_t alignment[4]; /* promised alignment of A, B, C, D (bytes) */
};

static float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

/* Element (r, c) of a column-major matrix of the given type. */
static float element(const void *m, cudaDataType type, int64_t ld, int64_t r, int64_t c) {
    if (type == CUDA_R_16BF) return bf16_value(((const uint16_t *)m)[c * ld + r]);
    return ((const float *)m)[c * ld + r];
}

static bool known_type(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }

/* C = alpha op(A) op(B) + beta C, all column-major. op(A) and op(B) are first unpacked to dense
 * float rows (A as [m][k], B as [n][k]) so the inner loop is a contiguous dot product. */
static void gemm(int transa, int transb, int m, int n, int k, float alpha, const void *A, cudaDataType at, int64_t lda,
                 const void *B, cudaDataType bt, int64_t ldb, float beta, float *C, int64_t ldc, bool round_inputs) {
    std::vector<float> a((size_t)m * k), b((size_t)n * k);
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++) {
            float v = transa ? element(A, at, lda, p, i) : element(A, at, lda, i, p);
            a[(size_t)i * k + p] = round_inputs ? round_bf16(v) : v;
        }
    for (int j = 0; j < n; j++)
        for (int p = 0; p < k; p++) {
            float v = transb ? element(B, bt, ldb, j, p) : element(B, bt, ldb, p, j);
            b[(size_t)j * k + p] = round_inputs ? round_bf16(v) : v;
        }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const float *ar = &a[(size_t)i * k], *br = &b[(size_t)j * k];
            float acc = 0;
            for (int p = 0; p < k; p++) acc += ar[p] * br[p];
            float old = beta != 0.0f ? C[j * ldc + i] : 0.0f;
            C[j * ldc + i] = alpha * acc + beta * old;
        }
}

/* The real library's checks: leading dimension >= rows of the stored column-major matrix. */
static bool dims_ok(int transa, int transb, int m, int n, int k, int64_t lda, int64_t ldb, int64_t ldc) {
    if (m < 0 || n < 0 || k < 0) return false;
    int64_t a_rows = transa ? k : m, b_rows = transb ? n : k;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1)) return false;
    return true;
}

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    *handle = new cc_fake_cublas();
    (*handle)->stream = NULL;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    (void)handle;
    return mode == CUBLAS_DEFAULT_MATH || mode == CUBLAS_PEDANTIC_MATH || mode == CUBLAS_TF32_TENSOR_OP_MATH
               ? CUBLAS_STATUS_SUCCESS
               : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes) {
    (void)handle;
    (void)workspace;
    (void)bytes;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    default: return "CUBLAS_STATUS_(fake)";
    }
}

/* Runs or captures f on the stream (cuBLAS work is stream-ordered like kernels). */
static cublasStatus_t on_stream(cudaStream_t stream, std::function<void()> f) {
    cudaError_t e = cc_fake_launch(1, 1, 1, 32, 0, stream, [=](cc_simt_ctx &ctx) {
        if (ctx.tid() == 0) f();
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long strideA, const void *B, cudaDataType Btype, int ldb,
                                          long long strideB, const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batch_count, cublasComputeType_t compute,
                                          cublasGemmAlgo_t algo) {
    (void)algo;
    if (!known_type(Atype) || !known_type(Btype) || Ctype != CUDA_R_32F || batch_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (Atype != Btype) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!dims_ok(transa, transb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    if (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_PEDANTIC && compute != CUBLAS_COMPUTE_32F_FAST_16BF)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float a = *(const float *)alpha, b = *(const float *)beta;
    size_t esize_a = Atype == CUDA_R_16BF ? 2 : 4, esize_b = Btype == CUDA_R_16BF ? 2 : 4;
    bool round_inputs = compute == CUBLAS_COMPUTE_32F_FAST_16BF;
    return on_stream(handle->stream, [=]() {
        for (int i = 0; i < batch_count; i++)
            gemm(transa, transb, m, n, k, a, (const char *)A + (size_t)(strideA * i) * esize_a, Atype, lda,
                 (const char *)B + (size_t)(strideB * i) * esize_b, Btype, ldb, b, (float *)C + strideC * i, ldc,
                 round_inputs);
    });
}

/* ---- Lt ---- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    *handle = new cc_fake_lt();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute, cudaDataType_t scale) {
    if (scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *desc = new cc_fake_lt_desc();
    (*desc)->compute = compute;
    (*desc)->transa = (*desc)->transb = 0;
    (*desc)->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    (*desc)->bias = NULL;
    (*desc)->bias_type = -1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size) {
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        int32_t v;
        memcpy(&v, buf, 4);
        if (attr == CUBLASLT_MATMUL_DESC_TRANSA) desc->transa = v;
        else desc->transb = v;
        return CUBLAS_STATUS_SUCCESS;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->epilogue, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->bias, buf, sizeof(void *));
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&desc->bias_type, buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (!known_type(type) || ld < (int64_t)(rows > 1 ? rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    *layout = new cc_fake_lt_layout();
    (*layout)->type = type;
    (*layout)->rows = rows;
    (*layout)->cols = cols;
    (*layout)->ld = ld;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    *pref = new cc_fake_lt_pref();
    (*pref)->workspace = 0;
    for (int i = 0; i < 4; i++) (*pref)->alignment[i] = 256; /* the real default */
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size) {
    if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&pref->workspace, buf, 8);
        return CUBLAS_STATUS_SUCCESS;
    }
    if (attr >= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES && attr <= CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES) {
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&pref->alignment[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

/* Shapes of op(A) [m x k], op(B) [k x n], D [m x n] consistent? */
static bool lt_shapes(cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                      cublasLtMatrixLayout_t d, uint64_t *m, uint64_t *n, uint64_t *k) {
    uint64_t am = desc->transa ? a->cols : a->rows, ak = desc->transa ? a->rows : a->cols;
    uint64_t bk = desc->transb ? b->cols : b->rows, bn = desc->transb ? b->rows : b->cols;
    *m = am;
    *n = bn;
    *k = ak;
    return ak == bk && d->rows == am && d->cols == bn && d->type == CUDA_R_32F && a->type == b->type;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *returned) {
    (void)handle;
    (void)c;
    uint64_t m, n, k;
    *returned = 0;
    if (requested < 1 || !lt_shapes(desc, a, b, d, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
    unsigned ep = desc->epilogue;
    if (ep != CUBLASLT_EPILOGUE_DEFAULT && ep != CUBLASLT_EPILOGUE_BIAS && ep != CUBLASLT_EPILOGUE_GELU_BIAS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(&results[0], 0, sizeof results[0]);
    for (int i = 0; i < 4; i++) results[0].algo.data[i] = pref->alignment[i];
    results[0].state = CUBLAS_STATUS_SUCCESS;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                              cudaStream_t stream) {
    (void)handle;
    (void)workspace;
    /* the real library may fault when a buffer is less aligned than the heuristic was promised */
    const void *buffers[4] = {A, B, C, D};
    for (int i = 0; i < 4; i++)
        if (algo->data[i] && ((uintptr_t)buffers[i] % algo->data[i]) != 0) return CUBLAS_STATUS_INVALID_VALUE;
    (void)workspace_bytes;
    uint64_t m, n, k;
    if (!lt_shapes(desc, a, b, d, &m, &n, &k)) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    if (be != 0.0f && C != D) return CUBLAS_STATUS_NOT_SUPPORTED; /* clipc only uses beta = 0 */
    (void)c;
    unsigned ep = desc->epilogue;
    bool bias = ep == CUBLASLT_EPILOGUE_BIAS || ep == CUBLASLT_EPILOGUE_GELU_BIAS;
    bool gelu = ep == CUBLASLT_EPILOGUE_GELU_BIAS;
    if (bias && (!desc->bias || desc->bias_type != CUDA_R_32F)) return CUBLAS_STATUS_INVALID_VALUE;
    const float *bias_ptr = (const float *)desc->bias;
    int ta = desc->transa, tb = desc->transb;
    cudaDataType at = a->type, bt = b->type;
    int64_t lda = a->ld, ldb = b->ld, ldd = d->ld;
    bool round_inputs = desc->compute == CUBLAS_COMPUTE_32F_FAST_16BF;
    return on_stream(stream, [=]() {
        gemm(ta, tb, (int)m, (int)n, (int)k, al, A, at, lda, B, bt, ldb, 0.0f, (float *)D, ldd, round_inputs);
        for (uint64_t j = 0; j < n; j++)
            for (uint64_t i = 0; i < m; i++) {
                float *x = (float *)D + j * ldd + i;
                if (bias) *x += bias_ptr[i];
                if (gelu) *x = 0.5f * *x * (1.0f + tanhf(0.7978845608028654f * (*x + 0.044715f * *x * *x * *x)));
            }
    });
}
