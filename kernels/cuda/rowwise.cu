/* rowwise.cu — ops that reduce along rows: layernorm (forward, dx, dgamma/dbeta), softmax with the
 * causal mask (forward, backward), L2 normalisation (forward, backward) and cross-entropy
 * (forward with the mean over rows, backward).
 *
 * One warp per row for the narrow rows of a transformer (widths of a few hundred to a few
 * thousand): the row's statistics are warp-shuffle reductions, no shared memory, no barriers.
 * Layernorm keeps the row in registers as float4s when the width allows (<= 1024, multiple of 4,
 * aligned: one read of x instead of three); the generic path re-reads the row from L1/L2.
 * Cross-entropy rows can be a whole batch wide, so it uses one block per row and double sums, as
 * the CPU does. Statistics follow the CPU reference's formulas (two-pass mean/variance in float).
 */
#include "kernels/cuda/kernels.cuh"

#define ROW_THREADS 256 /* 8 warps = 8 rows per block */
#define ROWS_PER_BLOCK (ROW_THREADS / CC_WARP)
#define LN_MAX_CHUNKS 8 /* register path: widths up to 8 float4 per lane = 1024 */
#define CE_THREADS 256

struct ln_params {
    const float *x, *gamma, *beta, *dy;
    float *y;       /* forward: y; backward: dx */
    float *stats;   /* params backward: [rows][2] mean, rstd */
    int64_t rows, width;
    float eps;
};

/* ---- layernorm: generic (any width, any alignment) ---- */

CC_BODY void row_mean_rstd(const cc_simt_ctx &ctx, const float *xr, int64_t width, float eps, float *mean_out,
                           float *rstd_out) {
    float sum = 0;
    for (int64_t i = ctx.lane(); i < width; i += CC_WARP) sum += xr[i];
    sum = cc_warp_sum(ctx, sum);
    float mean = sum / (float)width;
    float var = 0;
    for (int64_t i = ctx.lane(); i < width; i += CC_WARP) var += (xr[i] - mean) * (xr[i] - mean);
    var = cc_warp_sum(ctx, var);
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(var / (float)width + eps);
}

CC_BODY void ln_forward_body(cc_simt_ctx &ctx, const ln_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return; /* uniform per warp */
    const float *xr = p.x + row * p.width;
    float *yr = p.y + row * p.width;
    float mean, rstd;
    row_mean_rstd(ctx, xr, p.width, p.eps, &mean, &rstd);
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) yr[i] = (xr[i] - mean) * rstd * p.gamma[i] + p.beta[i];
}

CC_BODY void ln_backward_x_body(cc_simt_ctx &ctx, const ln_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    const float *xr = p.x + row * p.width, *dyr = p.dy + row * p.width;
    float *dxr = p.y + row * p.width;
    float mean, rstd;
    row_mean_rstd(ctx, xr, p.width, p.eps, &mean, &rstd);
    float sum_g = 0, sum_gx = 0;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) {
        float g = dyr[i] * p.gamma[i];
        sum_g += g;
        sum_gx += g * (xr[i] - mean) * rstd;
    }
    sum_g = cc_warp_sum(ctx, sum_g);
    sum_gx = cc_warp_sum(ctx, sum_gx);
    float mean_g = sum_g / (float)p.width, mean_gx = sum_gx / (float)p.width;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) {
        float xhat = (xr[i] - mean) * rstd;
        dxr[i] = rstd * (dyr[i] * p.gamma[i] - mean_g - xhat * mean_gx);
    }
}

/* ---- layernorm: row held in registers (width % 4 == 0, width <= 128*CHUNKS, 16-byte aligned) ---- */

template <int CHUNKS>
CC_BODY void ln_load_row(const cc_simt_ctx &ctx, const float *row, int64_t n4, float4 (&v)[CHUNKS]) {
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
        int64_t idx = (int64_t)c * CC_WARP + ctx.lane();
        v[c] = idx < n4 ? reinterpret_cast<const float4 *>(row)[idx] : make_float4(0, 0, 0, 0);
    }
}

template <int CHUNKS>
CC_BODY void ln_stats_regs(const cc_simt_ctx &ctx, const float4 (&v)[CHUNKS], int64_t n4, int64_t width, float eps,
                           float *mean_out, float *rstd_out) {
    float sum = 0;
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) sum += (v[c].x + v[c].y) + (v[c].z + v[c].w);
    sum = cc_warp_sum(ctx, sum);
    float mean = sum / (float)width;
    float var = 0;
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
        if ((int64_t)c * CC_WARP + ctx.lane() < n4) {
            float a = v[c].x - mean, b = v[c].y - mean, d = v[c].z - mean, e = v[c].w - mean;
            var += (a * a + b * b) + (d * d + e * e);
        }
    }
    var = cc_warp_sum(ctx, var);
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(var / (float)width + eps);
}

template <int CHUNKS>
CC_BODY void ln_forward_regs_body(cc_simt_ctx &ctx, const ln_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    int64_t n4 = p.width / 4;
    float4 v[CHUNKS];
    ln_load_row<CHUNKS>(ctx, p.x + row * p.width, n4, v);
    float mean, rstd;
    ln_stats_regs<CHUNKS>(ctx, v, n4, p.width, p.eps, &mean, &rstd);
    float4 *yr = reinterpret_cast<float4 *>(p.y + row * p.width);
    const float4 *g4 = reinterpret_cast<const float4 *>(p.gamma), *b4 = reinterpret_cast<const float4 *>(p.beta);
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
        int64_t idx = (int64_t)c * CC_WARP + ctx.lane();
        if (idx < n4) {
            float4 g = g4[idx], b = b4[idx], r;
            r.x = (v[c].x - mean) * rstd * g.x + b.x;
            r.y = (v[c].y - mean) * rstd * g.y + b.y;
            r.z = (v[c].z - mean) * rstd * g.z + b.z;
            r.w = (v[c].w - mean) * rstd * g.w + b.w;
            yr[idx] = r;
        }
    }
}

template <int CHUNKS>
CC_BODY void ln_backward_x_regs_body(cc_simt_ctx &ctx, const ln_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    int64_t n4 = p.width / 4;
    float4 v[CHUNKS], d[CHUNKS];
    ln_load_row<CHUNKS>(ctx, p.x + row * p.width, n4, v);
    ln_load_row<CHUNKS>(ctx, p.dy + row * p.width, n4, d);
    float mean, rstd;
    ln_stats_regs<CHUNKS>(ctx, v, n4, p.width, p.eps, &mean, &rstd);
    const float4 *g4 = reinterpret_cast<const float4 *>(p.gamma);
    float sum_g = 0, sum_gx = 0;
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
        int64_t idx = (int64_t)c * CC_WARP + ctx.lane();
        if (idx < n4) {
            float4 g = g4[idx];
            float gx = d[c].x * g.x, gy = d[c].y * g.y, gz = d[c].z * g.z, gw = d[c].w * g.w;
            sum_g += (gx + gy) + (gz + gw);
            sum_gx += (gx * (v[c].x - mean) * rstd + gy * (v[c].y - mean) * rstd) +
                      (gz * (v[c].z - mean) * rstd + gw * (v[c].w - mean) * rstd);
        }
    }
    sum_g = cc_warp_sum(ctx, sum_g);
    sum_gx = cc_warp_sum(ctx, sum_gx);
    float mean_g = sum_g / (float)p.width, mean_gx = sum_gx / (float)p.width;
    float4 *dxr = reinterpret_cast<float4 *>(p.y + row * p.width);
#pragma unroll
    for (int c = 0; c < CHUNKS; c++) {
        int64_t idx = (int64_t)c * CC_WARP + ctx.lane();
        if (idx < n4) {
            float4 g = g4[idx], r;
            r.x = rstd * (d[c].x * g.x - mean_g - (v[c].x - mean) * rstd * mean_gx);
            r.y = rstd * (d[c].y * g.y - mean_g - (v[c].y - mean) * rstd * mean_gx);
            r.z = rstd * (d[c].z * g.z - mean_g - (v[c].z - mean) * rstd * mean_gx);
            r.w = rstd * (d[c].w * g.w - mean_g - (v[c].w - mean) * rstd * mean_gx);
            dxr[idx] = r;
        }
    }
}

/* ---- layernorm: dgamma, dbeta ---- */

/* Row statistics into stats[row*2 + {0,1}] (one warp per row). */
CC_BODY void ln_row_stats_body(cc_simt_ctx &ctx, const ln_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    float mean, rstd;
    row_mean_rstd(ctx, p.x + row * p.width, p.width, p.eps, &mean, &rstd);
    if (ctx.lane() == 0) {
        p.stats[row * 2] = mean;
        p.stats[row * 2 + 1] = rstd;
    }
}

struct ln_params_partial {
    const float *dy, *x, *stats;
    int64_t rows, width, rows_per_chunk;
    double *partials; /* [chunks][2][width] */
};

/* Block = 32 columns x 8 row lanes, blockIdx.y = chunk of rows (as the column sum in reduce.cu). */
CC_BODY void ln_params_partial_body(cc_simt_ctx &ctx, const ln_params_partial &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem()); /* [2][8][32] */
    int col_in = ctx.tid() & 31, lane_row = ctx.tid() >> 5;
    int64_t col = (int64_t)ctx.bx() * 32 + col_in;
    int64_t r0 = (int64_t)ctx.by() * p.rows_per_chunk;
    int64_t r1 = r0 + p.rows_per_chunk < p.rows ? r0 + p.rows_per_chunk : p.rows;
    double dgamma = 0, dbeta = 0;
    if (col < p.width)
        for (int64_t r = r0 + lane_row; r < r1; r += 8) {
            float mean = p.stats[r * 2], rstd = p.stats[r * 2 + 1];
            float dyv = p.dy[r * p.width + col];
            dgamma += (double)dyv * ((p.x[r * p.width + col] - mean) * rstd);
            dbeta += dyv;
        }
    scratch[lane_row * 32 + col_in] = dgamma;
    scratch[256 + lane_row * 32 + col_in] = dbeta;
    ctx.sync();
    if (lane_row == 0 && col < p.width) {
        double g = 0, b = 0;
        for (int l = 0; l < 8; l++) {
            g += scratch[l * 32 + col_in];
            b += scratch[256 + l * 32 + col_in];
        }
        double *out = p.partials + (int64_t)ctx.by() * 2 * p.width;
        out[col] = g;
        out[p.width + col] = b;
    }
}

struct ln_params_finish {
    const double *partials;
    int64_t chunks, width;
    float *out; /* [2][width] */
};

CC_BODY void ln_params_finish_body(cc_simt_ctx &ctx, const ln_params_finish &p) {
    int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid();
    if (i >= 2 * p.width) return;
    double total = 0;
    for (int64_t c = 0; c < p.chunks; c++) total += p.partials[c * 2 * p.width + i];
    p.out[i] = (float)total;
}

/* ---- softmax ---- */

struct softmax_params {
    const float *x, *dy;
    float *y; /* forward: y; backward: dx (x = y of the forward) */
    int64_t rows, width, causal_period;
    float scale;
};

CC_BODY void softmax_forward_body(cc_simt_ctx &ctx, const softmax_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    const float *xr = p.x + row * p.width;
    float *yr = p.y + row * p.width;
    int64_t valid = p.causal_period ? (row % p.causal_period) + 1 : p.width;
    if (valid > p.width) valid = p.width;
    float max_value = -INFINITY;
    for (int64_t i = ctx.lane(); i < valid; i += CC_WARP) max_value = fmaxf(max_value, xr[i] * p.scale);
    max_value = cc_warp_max(ctx, max_value);
    float sum = 0;
    for (int64_t i = ctx.lane(); i < valid; i += CC_WARP) sum += expf(xr[i] * p.scale - max_value);
    sum = cc_warp_sum(ctx, sum);
    float inv = 1.0f / sum;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) yr[i] = i < valid ? expf(xr[i] * p.scale - max_value) * inv : 0.0f;
}

CC_BODY void softmax_backward_body(cc_simt_ctx &ctx, const softmax_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    const float *yr = p.x + row * p.width, *dyr = p.dy + row * p.width;
    float *dxr = p.y + row * p.width;
    float dot = 0;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) dot += dyr[i] * yr[i];
    dot = cc_warp_sum(ctx, dot);
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) dxr[i] = p.scale * yr[i] * (dyr[i] - dot);
}

/* ---- L2 normalise ---- */

struct l2_params {
    const float *x, *dy;
    float *y;
    int64_t rows, width;
    float eps;
};

CC_BODY void l2_forward_body(cc_simt_ctx &ctx, const l2_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    const float *xr = p.x + row * p.width;
    float *yr = p.y + row * p.width;
    float sum_sq = 0;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) sum_sq += xr[i] * xr[i];
    sum_sq = cc_warp_sum(ctx, sum_sq);
    float norm = sqrtf(sum_sq);
    float inv = 1.0f / (norm > p.eps ? norm : p.eps);
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) yr[i] = xr[i] * inv;
}

CC_BODY void l2_backward_body(cc_simt_ctx &ctx, const l2_params &p) {
    int64_t row = (int64_t)ctx.bx() * ROWS_PER_BLOCK + ctx.warp();
    if (row >= p.rows) return;
    const float *xr = p.x + row * p.width, *dyr = p.dy + row * p.width;
    float *dxr = p.y + row * p.width;
    float sum_sq = 0, x_dot_dy = 0;
    for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) {
        sum_sq += xr[i] * xr[i];
        x_dot_dy += xr[i] * dyr[i];
    }
    sum_sq = cc_warp_sum(ctx, sum_sq);
    x_dot_dy = cc_warp_sum(ctx, x_dot_dy);
    float norm = sqrtf(sum_sq);
    if (norm > p.eps) {
        float inv = 1.0f / norm;
        float coef = x_dot_dy * inv * inv * inv;
        for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) dxr[i] = dyr[i] * inv - xr[i] * coef;
    } else {
        for (int64_t i = ctx.lane(); i < p.width; i += CC_WARP) dxr[i] = dyr[i] / p.eps;
    }
}

/* ---- cross-entropy (one block per row) ---- */

struct ce_params {
    const float *logits;
    const int32_t *labels;
    const float *dloss;
    float *dlogits;
    double *row_loss; /* forward: [rows] */
    int64_t rows, cols;
    cc_cuda_error_record *err;
};

/* logsumexp of row r in double (max in float, as the CPU). Uses smem (block-sum scratch). */
CC_BODY double ce_row_lse(cc_simt_ctx &ctx, const float *row, int64_t cols) {
    float *fscratch = reinterpret_cast<float *>(ctx.smem());
    double *dscratch = reinterpret_cast<double *>(ctx.smem() + 256);
    float max_value = -INFINITY;
    for (int64_t c = ctx.tid(); c < cols; c += ctx.nthreads()) max_value = fmaxf(max_value, row[c]);
    max_value = cc_block_max(ctx, max_value, fscratch);
    double sum = 0;
    for (int64_t c = ctx.tid(); c < cols; c += ctx.nthreads()) sum += exp((double)row[c] - max_value);
    sum = cc_block_sum(ctx, sum, dscratch);
    return max_value + log(sum);
}

CC_BODY bool ce_label_ok(const ce_params &p, int64_t r, int32_t label) {
    if (label >= 0 && label < p.cols) return true;
    if (cc_atomic_claim(&p.err->code, CC_CUDA_ERR_CROSS_ENTROPY_LABEL)) {
        p.err->value = label;
        p.err->position = r;
        p.err->limit = p.cols;
    }
    return false;
}

CC_BODY void ce_forward_body(cc_simt_ctx &ctx, const ce_params &p) {
    int64_t r = ctx.bx();
    const float *row = p.logits + r * p.cols;
    double lse = ce_row_lse(ctx, row, p.cols);
    if (ctx.tid() == 0) {
        int32_t label = p.labels[r];
        p.row_loss[r] = ce_label_ok(p, r, label) ? lse - row[label] : 0.0;
    }
}

struct ce_finish_params {
    const double *row_loss;
    int64_t rows;
    float *out;
};

CC_BODY void ce_finish_body(cc_simt_ctx &ctx, const ce_finish_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem());
    double acc = 0;
    for (int64_t i = ctx.tid(); i < p.rows; i += ctx.nthreads()) acc += p.row_loss[i];
    acc = cc_block_sum(ctx, acc, scratch);
    if (ctx.tid() == 0) p.out[0] = (float)(acc / (double)p.rows);
}

CC_BODY void ce_backward_body(cc_simt_ctx &ctx, const ce_params &p) {
    int64_t r = ctx.bx();
    const float *row = p.logits + r * p.cols;
    float *drow = p.dlogits + r * p.cols;
    double lse = ce_row_lse(ctx, row, p.cols);
    float per_row = p.dloss[0] / (float)p.rows;
    for (int64_t c = ctx.tid(); c < p.cols; c += ctx.nthreads()) drow[c] = (float)exp((double)row[c] - lse) * per_row;
    ctx.sync();
    if (ctx.tid() == 0) {
        int32_t label = p.labels[r];
        if (ce_label_ok(p, r, label)) drow[label] -= per_row;
    }
}

#ifdef CC_DEVICE_BUILD
__global__ void __launch_bounds__(ROW_THREADS) ln_forward_kernel(ln_params p) {
    cc_simt_ctx ctx;
    ln_forward_body(ctx, p);
}
template <int CHUNKS>
__global__ void __launch_bounds__(ROW_THREADS) ln_forward_regs_kernel(ln_params p) {
    cc_simt_ctx ctx;
    ln_forward_regs_body<CHUNKS>(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) ln_backward_x_kernel(ln_params p) {
    cc_simt_ctx ctx;
    ln_backward_x_body(ctx, p);
}
template <int CHUNKS>
__global__ void __launch_bounds__(ROW_THREADS) ln_backward_x_regs_kernel(ln_params p) {
    cc_simt_ctx ctx;
    ln_backward_x_regs_body<CHUNKS>(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) ln_row_stats_kernel(ln_params p) {
    cc_simt_ctx ctx;
    ln_row_stats_body(ctx, p);
}
__global__ void __launch_bounds__(256) ln_params_partial_kernel(ln_params_partial p) {
    cc_simt_ctx ctx;
    ln_params_partial_body(ctx, p);
}
__global__ void __launch_bounds__(256) ln_params_finish_kernel(ln_params_finish p) {
    cc_simt_ctx ctx;
    ln_params_finish_body(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) softmax_forward_kernel(softmax_params p) {
    cc_simt_ctx ctx;
    softmax_forward_body(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) softmax_backward_kernel(softmax_params p) {
    cc_simt_ctx ctx;
    softmax_backward_body(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) l2_forward_kernel(l2_params p) {
    cc_simt_ctx ctx;
    l2_forward_body(ctx, p);
}
__global__ void __launch_bounds__(ROW_THREADS) l2_backward_kernel(l2_params p) {
    cc_simt_ctx ctx;
    l2_backward_body(ctx, p);
}
__global__ void __launch_bounds__(CE_THREADS) ce_forward_kernel(ce_params p) {
    cc_simt_ctx ctx;
    ce_forward_body(ctx, p);
}
__global__ void __launch_bounds__(CE_THREADS) ce_finish_kernel(ce_finish_params p) {
    cc_simt_ctx ctx;
    ce_finish_body(ctx, p);
}
__global__ void __launch_bounds__(CE_THREADS) ce_backward_kernel(ce_params p) {
    cc_simt_ctx ctx;
    ce_backward_body(ctx, p);
}
#endif

static bool row_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static unsigned row_blocks(int64_t rows) { return cc_div_up(rows, ROWS_PER_BLOCK); }

/* Register path chunk count for a width (0 = use the generic path). */
static int ln_chunks(int64_t width, const void *a, const void *b, const void *c, const void *d) {
    if (width % 4 != 0 || width > 128 * LN_MAX_CHUNKS || !row_aligned16(a) || !row_aligned16(b) || !row_aligned16(c) ||
        !row_aligned16(d))
        return 0;
    int64_t n4 = width / 4;
    return n4 <= 32 ? 1 : n4 <= 64 ? 2 : n4 <= 128 ? 4 : 8;
}

static ln_params make_ln(const float *x, const float *gamma, const float *beta, const float *dy, float *y,
                         int64_t rows, int64_t width, float eps) {
    ln_params p;
    memset(&p, 0, sizeof p);
    p.x = x;
    p.gamma = gamma;
    p.beta = beta;
    p.dy = dy;
    p.y = y;
    p.rows = rows;
    p.width = width;
    p.eps = eps;
    return p;
}

cudaError_t cc_cuda_layernorm_forward(cudaStream_t s, const float *x, const float *gamma, const float *beta, float *y,
                                      int64_t rows, int64_t width, float eps) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    ln_params p = make_ln(x, gamma, beta, NULL, y, rows, width, eps);
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    switch (ln_chunks(width, x, gamma, beta, y)) {
    case 1: return CC_LAUNCH(cfg, s, ln_forward_regs_kernel<1>, ln_forward_regs_body<1>, p);
    case 2: return CC_LAUNCH(cfg, s, ln_forward_regs_kernel<2>, ln_forward_regs_body<2>, p);
    case 4: return CC_LAUNCH(cfg, s, ln_forward_regs_kernel<4>, ln_forward_regs_body<4>, p);
    case 8: return CC_LAUNCH(cfg, s, ln_forward_regs_kernel<8>, ln_forward_regs_body<8>, p);
    default: return CC_LAUNCH(cfg, s, ln_forward_kernel, ln_forward_body, p);
    }
}

cudaError_t cc_cuda_layernorm_backward_x(cudaStream_t s, const float *dy, const float *x, const float *gamma,
                                         float *dx, int64_t rows, int64_t width, float eps) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    ln_params p = make_ln(x, gamma, NULL, dy, dx, rows, width, eps);
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    int chunks = ln_chunks(width, x, gamma, dy, dx);
    switch (chunks) {
    case 1: return CC_LAUNCH(cfg, s, ln_backward_x_regs_kernel<1>, ln_backward_x_regs_body<1>, p);
    case 2: return CC_LAUNCH(cfg, s, ln_backward_x_regs_kernel<2>, ln_backward_x_regs_body<2>, p);
    case 4: return CC_LAUNCH(cfg, s, ln_backward_x_regs_kernel<4>, ln_backward_x_regs_body<4>, p);
    case 8: return CC_LAUNCH(cfg, s, ln_backward_x_regs_kernel<8>, ln_backward_x_regs_body<8>, p);
    default: return CC_LAUNCH(cfg, s, ln_backward_x_kernel, ln_backward_x_body, p);
    }
}

static void ln_params_shape(int64_t rows, int64_t width, int64_t *chunks, int64_t *rows_per_chunk) {
    int64_t col_blocks = (width + 31) / 32;
    int64_t want = (int64_t)cc_cuda_grid_cap() / (col_blocks > 0 ? col_blocks : 1);
    int64_t by_rows = (rows + 63) / 64;
    int64_t c = want < by_rows ? want : by_rows;
    if (c > 1024) c = 1024;
    if (c < 1) c = 1;
    *rows_per_chunk = (rows + c - 1) / c;
    if (*rows_per_chunk < 1) *rows_per_chunk = 1;
    *chunks = (rows + *rows_per_chunk - 1) / *rows_per_chunk;
    if (*chunks < 1) *chunks = 1;
}

size_t cc_cuda_layernorm_params_scratch_bytes(int64_t rows, int64_t width) {
    int64_t chunks, per;
    ln_params_shape(rows, width, &chunks, &per);
    size_t stats = (size_t)(rows > 0 ? rows : 1) * 2 * sizeof(float);
    stats = (stats + 255) & ~(size_t)255;
    return stats + (size_t)(chunks * 2 * width) * sizeof(double);
}

cudaError_t cc_cuda_layernorm_backward_params(cudaStream_t s, const float *dy, const float *x, float *out,
                                              int64_t rows, int64_t width, float eps, void *scratch) {
    if (width <= 0) return cudaSuccess;
    int64_t chunks, per;
    ln_params_shape(rows, width, &chunks, &per);
    float *stats = static_cast<float *>(scratch);
    size_t stats_bytes = ((size_t)(rows > 0 ? rows : 1) * 2 * sizeof(float) + 255) & ~(size_t)255;
    double *partials = reinterpret_cast<double *>(static_cast<char *>(scratch) + stats_bytes);
    cudaError_t e = cudaSuccess;
    if (rows > 0) {
        ln_params p = make_ln(x, NULL, NULL, NULL, NULL, rows, width, eps);
        p.stats = stats;
        cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
        e = CC_LAUNCH(cfg, s, ln_row_stats_kernel, ln_row_stats_body, p);
        if (e != cudaSuccess) return e;
    }
    ln_params_partial pp = {dy, x, stats, rows, width, per, partials};
    cc_launch_cfg cfg = cc_cfg(cc_div_up(width, 32), (unsigned)chunks, 256, 2 * 256 * sizeof(double));
    e = CC_LAUNCH(cfg, s, ln_params_partial_kernel, ln_params_partial_body, pp);
    if (e != cudaSuccess) return e;
    ln_params_finish f = {partials, chunks, width, out};
    cc_launch_cfg fin = cc_cfg(cc_div_up(2 * width, 256), 1, 256, 0);
    return CC_LAUNCH(fin, s, ln_params_finish_kernel, ln_params_finish_body, f);
}

cudaError_t cc_cuda_softmax_forward(cudaStream_t s, const float *x, float *y, int64_t rows, int64_t width, float scale,
                                    int64_t causal_period) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    softmax_params p = {x, NULL, y, rows, width, causal_period, scale};
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    return CC_LAUNCH(cfg, s, softmax_forward_kernel, softmax_forward_body, p);
}

cudaError_t cc_cuda_softmax_backward(cudaStream_t s, const float *dy, const float *y, float *dx, int64_t rows,
                                     int64_t width, float scale) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    softmax_params p = {y, dy, dx, rows, width, 0, scale};
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    return CC_LAUNCH(cfg, s, softmax_backward_kernel, softmax_backward_body, p);
}

cudaError_t cc_cuda_l2norm_forward(cudaStream_t s, const float *x, float *y, int64_t rows, int64_t width, float eps) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    l2_params p = {x, NULL, y, rows, width, eps};
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    return CC_LAUNCH(cfg, s, l2_forward_kernel, l2_forward_body, p);
}

cudaError_t cc_cuda_l2norm_backward(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t rows,
                                    int64_t width, float eps) {
    if (rows <= 0 || width <= 0) return cudaSuccess;
    l2_params p = {x, dy, dx, rows, width, eps};
    cc_launch_cfg cfg = cc_cfg(row_blocks(rows), 1, ROW_THREADS, 0);
    return CC_LAUNCH(cfg, s, l2_backward_kernel, l2_backward_body, p);
}

size_t cc_cuda_cross_entropy_scratch_bytes(int64_t rows) { return (size_t)(rows > 0 ? rows : 1) * sizeof(double); }

/* smem of one CE block: 256 bytes of float scratch + 8 warps of double scratch */
#define CE_SMEM (256 + CE_THREADS / CC_WARP * sizeof(double))

cudaError_t cc_cuda_cross_entropy_forward(cudaStream_t s, const float *logits, const int32_t *labels, float *out,
                                          int64_t rows, int64_t cols, void *scratch, cc_cuda_error_record *err) {
    if (rows <= 0) return cudaErrorInvalidValue;
    ce_params p = {logits, labels, NULL, NULL, static_cast<double *>(scratch), rows, cols, err};
    cc_launch_cfg cfg = cc_cfg((unsigned)rows, 1, CE_THREADS, CE_SMEM);
    cudaError_t e = CC_LAUNCH(cfg, s, ce_forward_kernel, ce_forward_body, p);
    if (e != cudaSuccess) return e;
    ce_finish_params f = {p.row_loss, rows, out};
    cc_launch_cfg one = cc_cfg(1, 1, CE_THREADS, CE_THREADS / CC_WARP * sizeof(double));
    return CC_LAUNCH(one, s, ce_finish_kernel, ce_finish_body, f);
}

cudaError_t cc_cuda_cross_entropy_backward(cudaStream_t s, const float *dloss, const float *logits,
                                           const int32_t *labels, float *dlogits, int64_t rows, int64_t cols,
                                           cc_cuda_error_record *err) {
    if (rows <= 0) return cudaErrorInvalidValue;
    ce_params p = {logits, labels, dloss, dlogits, NULL, rows, cols, err};
    cc_launch_cfg cfg = cc_cfg((unsigned)rows, 1, CE_THREADS, CE_SMEM);
    return CC_LAUNCH(cfg, s, ce_backward_kernel, ce_backward_body, p);
}
