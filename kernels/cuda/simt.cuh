/* simt.cuh — the thread model every clipc CUDA kernel is written against.
 *
 * A kernel is a "body": a function of a thread context (block/thread indices, barriers, warp
 * shuffles, the bf16 tensor-core mma, dynamic shared memory) and one parameter struct. Under nvcc
 * the context is the hardware and CC_LAUNCH launches a __global__ wrapper. Under a plain C++
 * compiler with CC_FAKE_CUDA defined, the same body runs in tests/gpu/fake, a host emulator that
 * runs each thread of a block as a fiber with real barrier and warp-collective semantics. That is
 * how every kernel is executed and checked against the CPU reference on machines without a GPU
 * (`make test` runs it, under ASan too).
 *
 * Rules for bodies: 1-D thread blocks; shared memory only through ctx.smem() (dynamic); warp
 * collectives (shfl_xor, mma_bf16) called by all 32 lanes of a warp; no early return before a
 * ctx.sync(); atomics only through the cc_atomic_* helpers below.
 */
#ifndef CLIPC_KERNELS_CUDA_SIMT_CUH
#define CLIPC_KERNELS_CUDA_SIMT_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__) && !defined(CC_FAKE_CUDA)
#define CC_DEVICE_BUILD 1
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#define CC_BODY __device__ __forceinline__
#define CC_HD __host__ __device__ __forceinline__
#else
#include "tests/gpu/fake/fake_cuda.h"
#define CC_BODY inline
#define CC_HD inline
#endif

/* Grid, block and dynamic shared memory of one launch. */
struct cc_launch_cfg {
    unsigned gx, gy, gz;
    unsigned block;
    size_t smem;
};

static inline cc_launch_cfg cc_cfg(unsigned gx, unsigned gy, unsigned block, size_t smem) {
    cc_launch_cfg c;
    c.gx = gx;
    c.gy = gy;
    c.gz = 1;
    c.block = block;
    c.smem = smem;
    return c;
}

#define CC_WARP 32
#define CC_FULL_MASK 0xffffffffu
#define CC_MAX_GRID_Y 65535u /* hardware limit of gridDim.y and gridDim.z */

#ifdef CC_DEVICE_BUILD

struct cc_simt_ctx {
    __device__ __forceinline__ int tid() const { return (int)threadIdx.x; }
    __device__ __forceinline__ int lane() const { return (int)(threadIdx.x & 31); }
    __device__ __forceinline__ int warp() const { return (int)(threadIdx.x >> 5); }
    __device__ __forceinline__ int nthreads() const { return (int)blockDim.x; }
    __device__ __forceinline__ int bx() const { return (int)blockIdx.x; }
    __device__ __forceinline__ int by() const { return (int)blockIdx.y; }
    __device__ __forceinline__ int bz() const { return (int)blockIdx.z; }
    __device__ __forceinline__ int nbx() const { return (int)gridDim.x; }
    __device__ __forceinline__ int nby() const { return (int)gridDim.y; }
    __device__ __forceinline__ void sync() const { __syncthreads(); }
    __device__ __forceinline__ float shfl_xor(float v, int mask) const { return __shfl_xor_sync(CC_FULL_MASK, v, mask); }
    __device__ __forceinline__ double shfl_xor(double v, int mask) const { return __shfl_xor_sync(CC_FULL_MASK, v, mask); }
    __device__ __forceinline__ int shfl_xor(int v, int mask) const { return __shfl_xor_sync(CC_FULL_MASK, v, mask); }
    /* d (16x8 f32) += a (16x16 bf16, row) · b (16x8 bf16, col): mma.sync.m16n8k16, PTX fragment layout */
    __device__ __forceinline__ void mma_bf16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) const {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ __forceinline__ unsigned char *smem() const {
        extern __shared__ __align__(16) unsigned char cc_dynamic_smem[];
        return cc_dynamic_smem;
    }
};

__device__ __forceinline__ void cc_atomic_add(float *p, float v) { atomicAdd(p, v); }
/* Sets *p from 0 to value; returns 1 for the one thread that did it. */
__device__ __forceinline__ int cc_atomic_claim(int *p, int value) { return atomicCAS(p, 0, value) == 0; }

/* Launch: KERNEL is the __global__ wrapper (device builds), BODY the body (emulated builds). */
#define CC_LAUNCH(cfg, stream, KERNEL, BODY, params)                                                       \
    (KERNEL<<<dim3((cfg).gx, (cfg).gy, (cfg).gz), (cfg).block, (cfg).smem, (stream)>>>(params), cudaGetLastError())
/* Opt a kernel into more than 48 KB of dynamic shared memory. */
#define CC_ALLOW_SMEM(KERNEL, bytes) cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)(bytes))

#else /* emulated */

#define CC_LAUNCH(cfg, stream, KERNEL, BODY, params)                                                       \
    cc_fake_launch((cfg).gx, (cfg).gy, (cfg).gz, (cfg).block, (cfg).smem, (stream),                        \
                   [=](cc_simt_ctx &cc_ctx_) { BODY(cc_ctx_, params); })
#define CC_ALLOW_SMEM(KERNEL, bytes) cudaSuccess

#endif

/* ---- helpers shared by all bodies ---- */

/* f32 -> bf16 bits, round to nearest even (NaN stays NaN). */
CC_HD uint16_t cc_bf16_bits(float x) {
#ifdef __CUDA_ARCH__
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
#else
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
#endif
}

CC_HD float cc_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Two floats as one bf16x2 register: lo in the low half (the lower column of an mma fragment). */
CC_HD uint32_t cc_pack_bf16x2(float lo, float hi) {
    return (uint32_t)cc_bf16_bits(lo) | ((uint32_t)cc_bf16_bits(hi) << 16);
}

CC_BODY float cc_warp_sum(const cc_simt_ctx &ctx, float v) {
    for (int m = 16; m > 0; m >>= 1) v += ctx.shfl_xor(v, m);
    return v;
}

CC_BODY double cc_warp_sum(const cc_simt_ctx &ctx, double v) {
    for (int m = 16; m > 0; m >>= 1) v += ctx.shfl_xor(v, m);
    return v;
}

CC_BODY float cc_warp_max(const cc_simt_ctx &ctx, float v) {
    for (int m = 16; m > 0; m >>= 1) v = fmaxf(v, ctx.shfl_xor(v, m));
    return v;
}

/* Sum over the whole block (every thread gets it). scratch: nthreads/32 values of shared memory
 * that no other live data uses; the call ends with a barrier so scratch can be reused. */
template <typename T>
CC_BODY T cc_block_sum(const cc_simt_ctx &ctx, T v, T *scratch) {
    v = cc_warp_sum(ctx, v);
    int n_warps = ctx.nthreads() / CC_WARP;
    if (ctx.lane() == 0) scratch[ctx.warp()] = v;
    ctx.sync();
    T total = 0;
    for (int w = 0; w < n_warps; w++) total += scratch[w]; /* same order in every thread */
    ctx.sync();
    return total;
}

CC_BODY float cc_block_max(const cc_simt_ctx &ctx, float v, float *scratch) {
    v = cc_warp_max(ctx, v);
    int n_warps = ctx.nthreads() / CC_WARP;
    if (ctx.lane() == 0) scratch[ctx.warp()] = v;
    ctx.sync();
    float m = -INFINITY;
    for (int w = 0; w < n_warps; w++) m = fmaxf(m, scratch[w]);
    ctx.sync();
    return m;
}

static inline unsigned cc_div_up(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

#endif
