/* backend_cuda.h — what the CUDA backend offers beyond engine/backend.h (CUDA=1 builds only).
 *
 *   cc_backend *be = cc_backend_cuda_create_ex(0, CC_PRECISION_BF16);   // or cc_backend_by_name("cuda")
 *   ... plan and compute graphs on `be` exactly as on the CPU backend ...
 *   be->destroy(be);
 *
 * Precision is an internal choice of the backend; graphs stay f32-typed:
 *  - CC_PRECISION_F32: every op in f32, GEMMs through cuBLAS with CUBLAS_COMPUTE_32F (no TF32),
 *    attention in the exact f32 kernels. Matches the CPU backend to ~1e-6 relative.
 *  - CC_PRECISION_BF16: GEMMs with bf16 operands and f32 accumulation/output (weights get bf16
 *    shadow copies, refreshed automatically after any write through the backend: upload, copy,
 *    zero, adamw; activations are converted per GEMM), attention on bf16 tensor cores with f32
 *    softmax; every other op, master weights and the optimizer stay f32.
 * cc_backend_cuda_create(device) reads CLIPC_CUDA_PRECISION=f32|bf16 (default f32).
 *
 * Environment switches (read at creation): CLIPC_CUDA_GRAPHS=0 disables CUDA-graph capture and
 * replay, CLIPC_CUDA_FUSE=0 disables GEMM epilogue fusion, CLIPC_CUDA_TIMEOUT=seconds bounds every
 * wait for the GPU (default 600; a wait that runs out fails with an error instead of hanging),
 * CLIPC_CUDA_BF16_GEMM=convert|fast chooses explicit bf16 operands (default) or cuBLAS's
 * CUBLAS_COMPUTE_32F_FAST_16BF on f32 operands.
 */
#ifndef CLIPC_ENGINE_CUDA_BACKEND_CUDA_H
#define CLIPC_ENGINE_CUDA_BACKEND_CUDA_H

#include <stddef.h>

#include "engine/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cc_precision { CC_PRECISION_F32 = 0, CC_PRECISION_BF16 = 1 } cc_precision;

/* NULL + cc_set_error when there is no usable GPU (none, driver too old, wrong architecture). */
cc_backend *cc_backend_cuda_create_ex(int device, cc_precision precision);

/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.2 GiB, driver 13.0, runtime 13.0, precision bf16" */
int cc_backend_cuda_info(cc_backend *be, char *buf, size_t size);

/* Counters since creation, for tests and reports. */
typedef struct cc_cuda_stats {
    long graph_computes;  /* compute_graph calls */
    long eager_runs;      /* ... run node by node */
    long captures;        /* ... captured into a CUDA graph */
    long replays;         /* ... replayed from a captured graph */
    long fused_gemms;     /* GEMMs run with a bias (or bias+GELU) epilogue, per compute */
    long shadow_refreshes;/* bf16 weight copies (re)converted */
} cc_cuda_stats;
void cc_backend_cuda_stats(cc_backend *be, cc_cuda_stats *out);

#ifdef __cplusplus
}
#endif

#endif
