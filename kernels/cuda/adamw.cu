/* adamw.cu — AdamW fused over many parameter tensors in one launch, and the global sum of squares
 * of many gradient tensors (for grad-norm clipping) in one deterministic reduction.
 *
 * Both take a device array of per-tensor entries; blockIdx.y picks the tensor, blocks along x
 * stride over its elements. The AdamW update is the CPU backend's, operation for operation, with
 * the host-computed bias corrections passed in, so f32 results agree to rounding.
 */
#include "kernels/cuda/kernels.cuh"

#define ADAMW_THREADS 256
#define ADAMW_BLOCKS_PER_TENSOR_MAX 256
#define SUMSQ_THREADS 256
#define SUMSQ_BLOCKS_PER_TENSOR 32

struct adamw_params {
    const cc_cuda_adamw_entry *entries;
};

CC_BODY void adamw_body(cc_simt_ctx &ctx, const adamw_params &p) {
    const cc_cuda_adamw_entry e = p.entries[ctx.by()];
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i < e.n; i += stride) {
        float g = e.grad[i] * e.grad_scale;
        float m = e.beta1 * e.m[i] + (1.0f - e.beta1) * g;
        float v = e.beta2 * e.v[i] + (1.0f - e.beta2) * g * g;
        e.m[i] = m;
        e.v[i] = v;
        float denom = sqrtf(v / e.bias2) + e.eps;
        e.param[i] = e.param[i] * e.decay - e.step_size * m / denom;
    }
}

struct sumsq_params {
    const cc_cuda_sumsq_entry *entries;
    double *partials; /* [count][SUMSQ_BLOCKS_PER_TENSOR] */
};

CC_BODY void sumsq_partial_body(cc_simt_ctx &ctx, const sumsq_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem());
    const cc_cuda_sumsq_entry e = p.entries[ctx.by()];
    double acc = 0;
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i < e.n; i += stride)
        acc += (double)e.x[i] * e.x[i];
    acc = cc_block_sum(ctx, acc, scratch);
    if (ctx.tid() == 0) p.partials[(int64_t)ctx.by() * ctx.nbx() + ctx.bx()] = acc;
}

struct sumsq_finish_params {
    const double *partials;
    int64_t count;
    double *out;
};

CC_BODY void sumsq_finish_body(cc_simt_ctx &ctx, const sumsq_finish_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem());
    double acc = 0;
    for (int64_t i = ctx.tid(); i < p.count; i += ctx.nthreads()) acc += p.partials[i];
    acc = cc_block_sum(ctx, acc, scratch);
    if (ctx.tid() == 0) p.out[0] = acc;
}

#ifdef CC_DEVICE_BUILD
__global__ void __launch_bounds__(ADAMW_THREADS) adamw_kernel(adamw_params p) {
    cc_simt_ctx ctx;
    adamw_body(ctx, p);
}
__global__ void __launch_bounds__(SUMSQ_THREADS) sumsq_partial_kernel(sumsq_params p) {
    cc_simt_ctx ctx;
    sumsq_partial_body(ctx, p);
}
__global__ void __launch_bounds__(SUMSQ_THREADS) sumsq_finish_kernel(sumsq_finish_params p) {
    cc_simt_ctx ctx;
    sumsq_finish_body(ctx, p);
}
#endif

cudaError_t cc_cuda_adamw(cudaStream_t s, const cc_cuda_adamw_entry *entries, int count, long long max_n) {
    if (count <= 0) return cudaSuccess;
    int64_t blocks = (max_n + ADAMW_THREADS - 1) / ADAMW_THREADS;
    if (blocks > ADAMW_BLOCKS_PER_TENSOR_MAX) blocks = ADAMW_BLOCKS_PER_TENSOR_MAX;
    if (blocks < 1) blocks = 1;
    for (int first = 0; first < count; first += (int)CC_MAX_GRID_Y) {
        int n = count - first < (int)CC_MAX_GRID_Y ? count - first : (int)CC_MAX_GRID_Y;
        adamw_params p = {entries + first};
        cc_launch_cfg cfg = cc_cfg((unsigned)blocks, (unsigned)n, ADAMW_THREADS, 0);
        cudaError_t e = CC_LAUNCH(cfg, s, adamw_kernel, adamw_body, p);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

size_t cc_cuda_sumsq_scratch_bytes(int count) {
    return (size_t)(count > 0 ? count : 1) * SUMSQ_BLOCKS_PER_TENSOR * sizeof(double);
}

cudaError_t cc_cuda_sum_squares(cudaStream_t s, const cc_cuda_sumsq_entry *entries, int count, double *out,
                                void *scratch) {
    double *partials = static_cast<double *>(scratch);
    size_t smem = SUMSQ_THREADS / CC_WARP * sizeof(double);
    for (int first = 0; first < count; first += (int)CC_MAX_GRID_Y) {
        int n = count - first < (int)CC_MAX_GRID_Y ? count - first : (int)CC_MAX_GRID_Y;
        sumsq_params p = {entries + first, partials + (int64_t)first * SUMSQ_BLOCKS_PER_TENSOR};
        cc_launch_cfg cfg = cc_cfg(SUMSQ_BLOCKS_PER_TENSOR, (unsigned)n, SUMSQ_THREADS, smem);
        cudaError_t e = CC_LAUNCH(cfg, s, sumsq_partial_kernel, sumsq_partial_body, p);
        if (e != cudaSuccess) return e;
    }
    sumsq_finish_params f = {partials, (int64_t)(count > 0 ? count : 0) * SUMSQ_BLOCKS_PER_TENSOR, out};
    cc_launch_cfg one = cc_cfg(1, 1, SUMSQ_THREADS, smem);
    return CC_LAUNCH(one, s, sumsq_finish_kernel, sumsq_finish_body, f);
}
