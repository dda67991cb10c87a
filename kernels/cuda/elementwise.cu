/* elementwise.cu — elementwise ops (add with broadcast, mul, scale, exp, fill, accumulate,
 * activations and their gradients, repeat, f32->bf16) as one grid-stride "map" kernel.
 *
 * The op is a launch parameter (uniform over the grid, so no divergence). When every pointer is
 * 16-byte aligned and the lengths are multiples of 4, each thread moves float4s (16-byte loads and
 * stores, what the memory system wants); otherwise it goes one float at a time. The activation
 * formulas are the CPU's (kernels/cpu_ops.c) written once for both.
 */
#include "kernels/cuda/kernels.cuh"
#include "engine/tensor.h"

static unsigned grid_cap = 132 * 8; /* H100: 132 SMs x 8 blocks of 256 threads */

void cc_cuda_set_grid_cap(unsigned max_blocks) { grid_cap = max_blocks ? max_blocks : 1; }
unsigned cc_cuda_grid_cap(void) { return grid_cap; }

enum map_op {
    MAP_ADD,
    MAP_MUL,
    MAP_SCALE,
    MAP_MUL_SCALAR,
    MAP_EXP,
    MAP_FILL,
    MAP_ACCUMULATE,
    MAP_ACT_FORWARD,
    MAP_ACT_BACKWARD,
    MAP_REPEAT,
};

struct map_params {
    int op, act;
    int64_t n;       /* elements of out */
    int64_t period;  /* ADD: elements of b (b repeats); REPEAT: elements of a */
    const float *a, *b;
    float *out;
    float c;
    const float *scalar;
};

#define MAP_THREADS 256

/* ---- activations (same formulas as kernels/cpu_ops.c) ---- */
CC_HD float gelu_tanh(float x) {
    const float k = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
CC_HD float gelu_tanh_grad(float x) {
    const float k = 0.7978845608028654f;
    float inner = k * (x + 0.044715f * x * x * x);
    float t = tanhf(inner);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}
CC_HD float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
CC_HD float gelu_erf_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
    float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
    return cdf + x * pdf;
}
CC_HD float quick_gelu(float x) { return x / (1.0f + expf(-1.702f * x)); }
CC_HD float quick_gelu_grad(float x) {
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    return s + 1.702f * x * s * (1.0f - s);
}

CC_HD float act_forward(int kind, float x) {
    switch (kind) {
    case CC_ACT_GELU_TANH: return gelu_tanh(x);
    case CC_ACT_GELU_ERF: return gelu_erf(x);
    default: return quick_gelu(x);
    }
}

CC_HD float act_grad(int kind, float x) {
    switch (kind) {
    case CC_ACT_GELU_TANH: return gelu_tanh_grad(x);
    case CC_ACT_GELU_ERF: return gelu_erf_grad(x);
    default: return quick_gelu_grad(x);
    }
}

/* Element i of the result; a_i/b_i are the operands already loaded. */
CC_BODY float map_value(const map_params &p, float a_i, float b_i, float scalar, float old) {
    switch (p.op) {
    case MAP_ADD: return a_i + p.c * b_i;
    case MAP_MUL: return a_i * b_i;
    case MAP_SCALE: return a_i * p.c;
    case MAP_MUL_SCALAR: return a_i * scalar;
    case MAP_EXP: return expf(a_i);
    case MAP_FILL: return p.c;
    case MAP_ACCUMULATE: return old + a_i;
    case MAP_ACT_FORWARD: return act_forward(p.act, a_i);
    case MAP_ACT_BACKWARD: return a_i * act_grad(p.act, b_i); /* a = dy, b = x */
    case MAP_REPEAT: return a_i;
    }
    return 0.0f;
}

CC_HD bool map_reads_b(int op) { return op == MAP_ADD || op == MAP_MUL || op == MAP_ACT_BACKWARD; }
CC_HD bool map_reads_a(int op) { return op != MAP_FILL; }

/* Index of a's element for result element i (REPEAT wraps a), of b's (ADD broadcasts b). */
CC_BODY int64_t map_a_index(const map_params &p, int64_t i) { return p.op == MAP_REPEAT ? i % p.period : i; }
CC_BODY int64_t map_b_index(const map_params &p, int64_t i) {
    return (p.op == MAP_ADD && p.period != p.n) ? i % p.period : i;
}

CC_BODY void map_body(cc_simt_ctx &ctx, const map_params &p) {
    float scalar = p.op == MAP_MUL_SCALAR ? p.scalar[0] : 0.0f;
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i < p.n; i += stride) {
        float a_i = map_reads_a(p.op) ? p.a[map_a_index(p, i)] : 0.0f;
        float b_i = map_reads_b(p.op) ? p.b[map_b_index(p, i)] : 0.0f;
        float old = p.op == MAP_ACCUMULATE ? p.out[i] : 0.0f;
        p.out[i] = map_value(p, a_i, b_i, scalar, old);
    }
}

/* Same with 4 consecutive elements per step (n, period multiples of 4, pointers 16-byte aligned). */
CC_BODY void map4_body(cc_simt_ctx &ctx, const map_params &p) {
    float scalar = p.op == MAP_MUL_SCALAR ? p.scalar[0] : 0.0f;
    int64_t n4 = p.n / 4;
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i4 = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i4 < n4; i4 += stride) {
        int64_t i = i4 * 4;
        float4 a = make_float4(0, 0, 0, 0), b = a, old = a;
        if (map_reads_a(p.op)) a = *reinterpret_cast<const float4 *>(p.a + map_a_index(p, i));
        if (map_reads_b(p.op)) b = *reinterpret_cast<const float4 *>(p.b + map_b_index(p, i));
        if (p.op == MAP_ACCUMULATE) old = *reinterpret_cast<const float4 *>(p.out + i);
        float4 r;
        r.x = map_value(p, a.x, b.x, scalar, old.x);
        r.y = map_value(p, a.y, b.y, scalar, old.y);
        r.z = map_value(p, a.z, b.z, scalar, old.z);
        r.w = map_value(p, a.w, b.w, scalar, old.w);
        *reinterpret_cast<float4 *>(p.out + i) = r;
    }
}

struct bf16_params {
    const float *x;
    uint16_t *out;
    int64_t n;
};

CC_BODY void to_bf16_body(cc_simt_ctx &ctx, const bf16_params &p) {
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i < p.n; i += stride) p.out[i] = cc_bf16_bits(p.x[i]);
}

/* 4 per step: one 16-byte load, one 8-byte store */
CC_BODY void to_bf16_4_body(cc_simt_ctx &ctx, const bf16_params &p) {
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i4 = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i4 < p.n / 4; i4 += stride) {
        float4 v = *reinterpret_cast<const float4 *>(p.x + i4 * 4);
        uint2 packed;
        packed.x = cc_pack_bf16x2(v.x, v.y);
        packed.y = cc_pack_bf16x2(v.z, v.w);
        *reinterpret_cast<uint2 *>(p.out + i4 * 4) = packed;
    }
}

#ifdef CC_DEVICE_BUILD
__global__ void __launch_bounds__(MAP_THREADS) map_kernel(map_params p) {
    cc_simt_ctx ctx;
    map_body(ctx, p);
}
__global__ void __launch_bounds__(MAP_THREADS) map4_kernel(map_params p) {
    cc_simt_ctx ctx;
    map4_body(ctx, p);
}
__global__ void __launch_bounds__(MAP_THREADS) to_bf16_kernel(bf16_params p) {
    cc_simt_ctx ctx;
    to_bf16_body(ctx, p);
}
__global__ void __launch_bounds__(MAP_THREADS) to_bf16_4_kernel(bf16_params p) {
    cc_simt_ctx ctx;
    to_bf16_4_body(ctx, p);
}
#endif

static bool map_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static unsigned grid_for(int64_t work_items) {
    int64_t blocks = (work_items + MAP_THREADS - 1) / MAP_THREADS;
    if (blocks < 1) blocks = 1;
    return blocks < (int64_t)grid_cap ? (unsigned)blocks : grid_cap;
}

static cudaError_t launch_map(cudaStream_t s, map_params p) {
    if (p.n <= 0) return cudaSuccess;
    bool vec = p.n % 4 == 0 && map_aligned16(p.out) && (!map_reads_a(p.op) || map_aligned16(p.a)) &&
               (!map_reads_b(p.op) || map_aligned16(p.b));
    if ((p.op == MAP_ADD || p.op == MAP_REPEAT) && p.period % 4 != 0) vec = false;
    if (vec) {
        cc_launch_cfg cfg = cc_cfg(grid_for(p.n / 4), 1, MAP_THREADS, 0);
        return CC_LAUNCH(cfg, s, map4_kernel, map4_body, p);
    }
    cc_launch_cfg cfg = cc_cfg(grid_for(p.n), 1, MAP_THREADS, 0);
    return CC_LAUNCH(cfg, s, map_kernel, map_body, p);
}

static map_params map_make_params(int op, const float *a, const float *b, float *out, int64_t n) {
    map_params p;
    memset(&p, 0, sizeof p);
    p.op = op;
    p.a = a;
    p.b = b;
    p.out = out;
    p.n = n;
    p.period = n;
    return p;
}

cudaError_t cc_cuda_add(cudaStream_t s, const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta) {
    map_params p = map_make_params(MAP_ADD, a, b, out, n);
    p.period = nb > 0 ? nb : 1;
    p.c = beta;
    return launch_map(s, p);
}

cudaError_t cc_cuda_mul(cudaStream_t s, const float *a, const float *b, float *out, int64_t n) {
    return launch_map(s, map_make_params(MAP_MUL, a, b, out, n));
}

cudaError_t cc_cuda_scale(cudaStream_t s, const float *x, float *out, int64_t n, float c) {
    map_params p = map_make_params(MAP_SCALE, x, NULL, out, n);
    p.c = c;
    return launch_map(s, p);
}

cudaError_t cc_cuda_mul_scalar(cudaStream_t s, const float *x, const float *scalar, float *out, int64_t n) {
    map_params p = map_make_params(MAP_MUL_SCALAR, x, NULL, out, n);
    p.scalar = scalar;
    return launch_map(s, p);
}

cudaError_t cc_cuda_exp(cudaStream_t s, const float *x, float *out, int64_t n) {
    return launch_map(s, map_make_params(MAP_EXP, x, NULL, out, n));
}

cudaError_t cc_cuda_fill(cudaStream_t s, float *out, int64_t n, float value) {
    map_params p = map_make_params(MAP_FILL, NULL, NULL, out, n);
    p.c = value;
    return launch_map(s, p);
}

cudaError_t cc_cuda_accumulate(cudaStream_t s, float *dst, const float *src, int64_t n) {
    return launch_map(s, map_make_params(MAP_ACCUMULATE, src, NULL, dst, n));
}

cudaError_t cc_cuda_act_forward(cudaStream_t s, const float *x, float *y, int64_t n, int kind) {
    map_params p = map_make_params(MAP_ACT_FORWARD, x, NULL, y, n);
    p.act = kind;
    return launch_map(s, p);
}

cudaError_t cc_cuda_act_backward(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t n, int kind) {
    map_params p = map_make_params(MAP_ACT_BACKWARD, dy, x, dx, n);
    p.act = kind;
    return launch_map(s, p);
}

cudaError_t cc_cuda_repeat(cudaStream_t s, const float *x, float *out, int64_t n_out, int64_t n_in) {
    map_params p = map_make_params(MAP_REPEAT, x, NULL, out, n_out);
    p.period = n_in > 0 ? n_in : 1;
    return launch_map(s, p);
}

cudaError_t cc_cuda_to_bf16(cudaStream_t s, const float *x, uint16_t *out, int64_t n) {
    if (n <= 0) return cudaSuccess;
    bf16_params p = {x, out, n};
    if (n % 4 == 0 && map_aligned16(x) && ((uintptr_t)out & 7u) == 0) {
        cc_launch_cfg cfg = cc_cfg(grid_for(n / 4), 1, MAP_THREADS, 0);
        return CC_LAUNCH(cfg, s, to_bf16_4_kernel, to_bf16_4_body, p);
    }
    cc_launch_cfg cfg = cc_cfg(grid_for(n), 1, MAP_THREADS, 0);
    return CC_LAUNCH(cfg, s, to_bf16_kernel, to_bf16_body, p);
}
