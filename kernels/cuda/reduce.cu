/* reduce.cu — whole-tensor sums (CC_OP_SUM, CC_OP_DOT) and column sums (CC_OP_SUM_TO).
 *
 * Deterministic two-phase reductions: phase 1 writes one double partial per block (the grid size
 * depends only on the length, so a given input always gives the same partials), phase 2 sums the
 * partials in index order in one block. Accumulation is in double, as in the CPU reference, so
 * long sums stay well inside the f32 parity tolerance.
 */
#include "kernels/cuda/kernels.cuh"

#define REDUCE_THREADS 256
#define REDUCE_MAX_BLOCKS 1024 /* phase-1 blocks at most (partials summed by one block) */
#define COLSUM_ROWS_PER_BLOCK 64 /* rows one phase-1 block of the column sum covers at least */
#define COLSUM_MAX_CHUNKS 1024

struct dot_params {
    const float *a, *b; /* b NULL: plain sum */
    int64_t n;
    double *partials;
};

struct finish_params {
    const double *partials;
    int count;
    float *out;      /* may be NULL */
    double *out_d;   /* may be NULL */
};

CC_BODY void dot_partial_body(cc_simt_ctx &ctx, const dot_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem());
    double acc = 0;
    int64_t stride = (int64_t)ctx.nthreads() * ctx.nbx();
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(); i < p.n; i += stride)
        acc += p.b ? (double)p.a[i] * p.b[i] : (double)p.a[i];
    acc = cc_block_sum(ctx, acc, scratch);
    if (ctx.tid() == 0) p.partials[ctx.bx()] = acc;
}

/* One block: Σ partials[0..count) with each thread summing a strided subset, then the block sum. */
CC_BODY void finish_body(cc_simt_ctx &ctx, const finish_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem());
    double acc = 0;
    for (int i = ctx.tid(); i < p.count; i += ctx.nthreads()) acc += p.partials[i];
    acc = cc_block_sum(ctx, acc, scratch);
    if (ctx.tid() == 0) {
        if (p.out) p.out[0] = (float)acc;
        if (p.out_d) p.out_d[0] = acc;
    }
}

struct colsum_params {
    const float *x;
    int64_t rows, width;
    int64_t rows_per_chunk;
    double *partials; /* [chunks, width] */
};

/* Block = 32 columns x 8 row lanes; blockIdx.y = chunk of rows. Thread (col, lane) sums rows
 * lane, lane+8, ... of the chunk; the 8 lanes are then added in order. */
CC_BODY void colsum_partial_body(cc_simt_ctx &ctx, const colsum_params &p) {
    double *scratch = reinterpret_cast<double *>(ctx.smem()); /* [8][32] */
    int col_in = ctx.tid() & 31, lane_row = ctx.tid() >> 5;
    int64_t col = (int64_t)ctx.bx() * 32 + col_in;
    int64_t r0 = (int64_t)ctx.by() * p.rows_per_chunk;
    int64_t r1 = r0 + p.rows_per_chunk < p.rows ? r0 + p.rows_per_chunk : p.rows;
    double acc = 0;
    if (col < p.width)
        for (int64_t r = r0 + lane_row; r < r1; r += 8) acc += p.x[r * p.width + col];
    scratch[lane_row * 32 + col_in] = acc;
    ctx.sync();
    if (lane_row == 0 && col < p.width) {
        double total = 0;
        for (int l = 0; l < 8; l++) total += scratch[l * 32 + col_in];
        p.partials[(int64_t)ctx.by() * p.width + col] = total;
    }
}

struct colsum_finish_params {
    const double *partials;
    int64_t chunks, width;
    float *out;
};

CC_BODY void colsum_finish_body(cc_simt_ctx &ctx, const colsum_finish_params &p) {
    int64_t col = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid();
    if (col >= p.width) return;
    double total = 0;
    for (int64_t c = 0; c < p.chunks; c++) total += p.partials[c * p.width + col];
    p.out[col] = (float)total;
}

#ifdef CC_DEVICE_BUILD
__global__ void __launch_bounds__(REDUCE_THREADS) dot_partial_kernel(dot_params p) {
    cc_simt_ctx ctx;
    dot_partial_body(ctx, p);
}
__global__ void __launch_bounds__(REDUCE_THREADS) finish_kernel(finish_params p) {
    cc_simt_ctx ctx;
    finish_body(ctx, p);
}
__global__ void __launch_bounds__(256) colsum_partial_kernel(colsum_params p) {
    cc_simt_ctx ctx;
    colsum_partial_body(ctx, p);
}
__global__ void __launch_bounds__(256) colsum_finish_kernel(colsum_finish_params p) {
    cc_simt_ctx ctx;
    colsum_finish_body(ctx, p);
}
#endif

static int reduce_blocks(int64_t n) {
    int64_t blocks = (n + REDUCE_THREADS * 4 - 1) / (REDUCE_THREADS * 4);
    if (blocks < 1) blocks = 1;
    if (blocks > REDUCE_MAX_BLOCKS) blocks = REDUCE_MAX_BLOCKS;
    return (int)blocks;
}

size_t cc_cuda_reduce_scratch_bytes(int64_t n) { return (size_t)reduce_blocks(n) * sizeof(double); }

cudaError_t cc_cuda_dot(cudaStream_t s, const float *a, const float *b, int64_t n, float *out, void *scratch) {
    dot_params p = {a, b, n, static_cast<double *>(scratch)};
    int blocks = reduce_blocks(n);
    size_t smem = REDUCE_THREADS / CC_WARP * sizeof(double);
    cc_launch_cfg cfg = cc_cfg((unsigned)blocks, 1, REDUCE_THREADS, smem);
    cudaError_t e = CC_LAUNCH(cfg, s, dot_partial_kernel, dot_partial_body, p);
    if (e != cudaSuccess) return e;
    finish_params f = {p.partials, blocks, out, NULL};
    cc_launch_cfg one = cc_cfg(1, 1, REDUCE_THREADS, smem);
    return CC_LAUNCH(one, s, finish_kernel, finish_body, f);
}

/* Row chunks: enough blocks to fill the GPU, at least COLSUM_ROWS_PER_BLOCK rows each. */
static void colsum_shape(int64_t rows, int64_t width, int64_t *chunks, int64_t *rows_per_chunk) {
    int64_t col_blocks = (width + 31) / 32;
    int64_t want = (int64_t)cc_cuda_grid_cap() / (col_blocks > 0 ? col_blocks : 1);
    int64_t by_rows = (rows + COLSUM_ROWS_PER_BLOCK - 1) / COLSUM_ROWS_PER_BLOCK;
    int64_t c = want < by_rows ? want : by_rows;
    if (c > COLSUM_MAX_CHUNKS) c = COLSUM_MAX_CHUNKS;
    if (c > (int64_t)CC_MAX_GRID_Y) c = CC_MAX_GRID_Y;
    if (c < 1) c = 1;
    *rows_per_chunk = (rows + c - 1) / c;
    if (*rows_per_chunk < 1) *rows_per_chunk = 1;
    *chunks = (rows + *rows_per_chunk - 1) / *rows_per_chunk;
    if (*chunks < 1) *chunks = 1;
}

size_t cc_cuda_sum_rows_scratch_bytes(int64_t rows, int64_t width) {
    int64_t chunks, per;
    colsum_shape(rows, width, &chunks, &per);
    return (size_t)(chunks * width) * sizeof(double);
}

cudaError_t cc_cuda_sum_rows(cudaStream_t s, const float *x, float *out, int64_t rows, int64_t width, void *scratch) {
    if (width <= 0) return cudaSuccess;
    int64_t chunks, per;
    colsum_shape(rows, width, &chunks, &per);
    colsum_params p = {x, rows, width, per, static_cast<double *>(scratch)};
    cc_launch_cfg cfg = cc_cfg(cc_div_up(width, 32), (unsigned)chunks, 256, 256 * sizeof(double));
    cudaError_t e = CC_LAUNCH(cfg, s, colsum_partial_kernel, colsum_partial_body, p);
    if (e != cudaSuccess) return e;
    colsum_finish_params f = {p.partials, chunks, width, out};
    cc_launch_cfg fin = cc_cfg(cc_div_up(width, 256), 1, 256, 0);
    return CC_LAUNCH(fin, s, colsum_finish_kernel, colsum_finish_body, f);
}
