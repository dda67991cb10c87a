/* layout.cu — data movement ops: strided view -> contiguous copy, patchify (ViT patch embedding
 * input) and its inverse, class-token prepend, embedding gather (get_rows) and its scatter-add
 * backward, and the zero-padded slice gradient.
 *
 * One thread per output element, grid-stride; index arithmetic in 64 bits. Reads of ids validate
 * them on the device: an id outside the table is recorded in the error record (first one wins)
 * and its row is written as zeros / skipped, never read or written out of bounds.
 */
#include "kernels/cuda/kernels.cuh"

#define LAYOUT_THREADS 256

static unsigned layout_grid(int64_t n) {
    int64_t blocks = (n + LAYOUT_THREADS - 1) / LAYOUT_THREADS;
    if (blocks < 1) blocks = 1;
    unsigned cap = cc_cuda_grid_cap();
    return blocks < (int64_t)cap ? (unsigned)blocks : cap;
}

#define GRID_STRIDE_LOOP(i, n)                                                                              \
    for (int64_t i = (int64_t)ctx.bx() * ctx.nthreads() + ctx.tid(), stride_ = (int64_t)ctx.nthreads() * ctx.nbx(); \
         i < (n); i += stride_)

/* ---- strided copy ---- */
struct copy_params {
    const float *src;
    float *dst;
    int64_t shape[4], stride[4]; /* right-aligned to 4 dims */
    int64_t n;
};

CC_BODY void copy_strided_body(cc_simt_ctx &ctx, const copy_params &p) {
    GRID_STRIDE_LOOP(i, p.n) {
        int64_t rest = i, offset = 0;
        for (int d = 3; d >= 0; d--) {
            int64_t coord = rest % p.shape[d];
            rest /= p.shape[d];
            offset += coord * p.stride[d];
        }
        p.dst[i] = p.src[offset];
    }
}

/* ---- patchify ---- */
struct patch_params {
    const float *src;
    float *dst;
    int64_t batch, channels, height, width, patch;
};

/* Offset in the image of element i of the patch matrix [B, gh*gw, C*P*P]. */
CC_BODY int64_t patch_source(const patch_params &p, int64_t i) {
    int64_t row_len = p.channels * p.patch * p.patch;
    int64_t grid_w = p.width / p.patch, n_patches = (p.height / p.patch) * grid_w;
    int64_t col = i % row_len, patch_index = (i / row_len) % n_patches, b = i / (row_len * n_patches);
    int64_t c = col / (p.patch * p.patch), within = col % (p.patch * p.patch);
    int64_t dy = within / p.patch, dx = within % p.patch;
    int64_t py = patch_index / grid_w, px = patch_index % grid_w;
    return ((b * p.channels + c) * p.height + py * p.patch + dy) * p.width + px * p.patch + dx;
}

CC_BODY void patchify_body(cc_simt_ctx &ctx, const patch_params &p) {
    int64_t n = p.batch * p.channels * p.height * p.width;
    GRID_STRIDE_LOOP(i, n) p.dst[i] = p.src[patch_source(p, i)];
}

/* the map is a bijection (H, W multiples of P), so the backward is a scatter without conflicts */
CC_BODY void patchify_backward_body(cc_simt_ctx &ctx, const patch_params &p) {
    int64_t n = p.batch * p.channels * p.height * p.width;
    GRID_STRIDE_LOOP(i, n) p.dst[patch_source(p, i)] = p.src[i];
}

/* ---- prepend row ---- */
struct prepend_params {
    const float *x, *row;
    float *out;
    int64_t batch, n_rows, width;
};

CC_BODY void prepend_row_body(cc_simt_ctx &ctx, const prepend_params &p) {
    int64_t n = p.batch * (p.n_rows + 1) * p.width;
    GRID_STRIDE_LOOP(i, n) {
        int64_t c = i % p.width, r = (i / p.width) % (p.n_rows + 1), b = i / (p.width * (p.n_rows + 1));
        p.out[i] = r == 0 ? p.row[c] : p.x[(b * p.n_rows + r - 1) * p.width + c];
    }
}

/* ---- get_rows ---- */
struct rows_params {
    const float *src;
    const int32_t *ids;
    float *dst;
    int64_t n_ids, width, n_rows;
    cc_cuda_error_record *err;
};

CC_BODY bool id_ok(const rows_params &p, int64_t i, int32_t id) {
    if (id >= 0 && id < p.n_rows) return true;
    if (cc_atomic_claim(&p.err->code, CC_CUDA_ERR_GET_ROWS_ID)) {
        p.err->value = id;
        p.err->position = i;
        p.err->limit = p.n_rows;
    }
    return false;
}

CC_BODY void get_rows_body(cc_simt_ctx &ctx, const rows_params &p) {
    GRID_STRIDE_LOOP(i, p.n_ids * p.width) {
        int64_t k = i / p.width, c = i % p.width;
        int32_t id = p.ids[k];
        p.dst[i] = id_ok(p, k, id) ? p.src[(int64_t)id * p.width + c] : 0.0f;
    }
}

CC_BODY void get_rows_backward_body(cc_simt_ctx &ctx, const rows_params &p) {
    GRID_STRIDE_LOOP(i, p.n_ids * p.width) {
        int64_t k = i / p.width, c = i % p.width;
        int32_t id = p.ids[k];
        if (id_ok(p, k, id)) cc_atomic_add(&p.dst[(int64_t)id * p.width + c], p.src[i]);
    }
}

/* ---- slice backward ---- */
struct slice_params {
    const float *dy;
    float *dst;
    int64_t outer, full, inner, start, length;
};

CC_BODY void slice_backward_body(cc_simt_ctx &ctx, const slice_params &p) {
    GRID_STRIDE_LOOP(i, p.outer * p.full * p.inner) {
        int64_t in = i % p.inner, f = (i / p.inner) % p.full, o = i / (p.inner * p.full);
        int64_t at = f - p.start;
        p.dst[i] = (at >= 0 && at < p.length) ? p.dy[(o * p.length + at) * p.inner + in] : 0.0f;
    }
}

#ifdef CC_DEVICE_BUILD
__global__ void __launch_bounds__(LAYOUT_THREADS) copy_strided_kernel(copy_params p) {
    cc_simt_ctx ctx;
    copy_strided_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) patchify_kernel(patch_params p) {
    cc_simt_ctx ctx;
    patchify_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) patchify_backward_kernel(patch_params p) {
    cc_simt_ctx ctx;
    patchify_backward_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) prepend_row_kernel(prepend_params p) {
    cc_simt_ctx ctx;
    prepend_row_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) get_rows_kernel(rows_params p) {
    cc_simt_ctx ctx;
    get_rows_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) get_rows_backward_kernel(rows_params p) {
    cc_simt_ctx ctx;
    get_rows_backward_body(ctx, p);
}
__global__ void __launch_bounds__(LAYOUT_THREADS) slice_backward_kernel(slice_params p) {
    cc_simt_ctx ctx;
    slice_backward_body(ctx, p);
}
#endif

cudaError_t cc_cuda_copy_strided(cudaStream_t s, const float *src, const int64_t *shape, const int64_t *stride,
                                 int ndim, float *dst) {
    if (ndim < 0 || ndim > 4) return cudaErrorInvalidValue;
    copy_params p;
    p.src = src;
    p.dst = dst;
    p.n = 1;
    for (int i = 0; i < 4; i++) {
        p.shape[i] = 1;
        p.stride[i] = 0;
    }
    for (int i = 0; i < ndim; i++) {
        p.shape[4 - ndim + i] = shape[i];
        p.stride[4 - ndim + i] = stride[i];
        p.n *= shape[i];
    }
    if (p.n <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(p.n), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, copy_strided_kernel, copy_strided_body, p);
}

cudaError_t cc_cuda_patchify(cudaStream_t s, const float *images, float *patches, int64_t batch, int64_t channels,
                             int64_t height, int64_t width, int64_t patch) {
    if (patch <= 0 || height % patch || width % patch) return cudaErrorInvalidValue;
    patch_params p = {images, patches, batch, channels, height, width, patch};
    int64_t n = batch * channels * height * width;
    if (n <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(n), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, patchify_kernel, patchify_body, p);
}

cudaError_t cc_cuda_patchify_backward(cudaStream_t s, const float *dpatches, float *dimages, int64_t batch,
                                      int64_t channels, int64_t height, int64_t width, int64_t patch) {
    if (patch <= 0 || height % patch || width % patch) return cudaErrorInvalidValue;
    patch_params p = {dpatches, dimages, batch, channels, height, width, patch};
    int64_t n = batch * channels * height * width;
    if (n <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(n), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, patchify_backward_kernel, patchify_backward_body, p);
}

cudaError_t cc_cuda_prepend_row(cudaStream_t s, const float *x, const float *row, float *out, int64_t batch,
                                int64_t n_rows, int64_t width) {
    prepend_params p = {x, row, out, batch, n_rows, width};
    int64_t n = batch * (n_rows + 1) * width;
    if (n <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(n), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, prepend_row_kernel, prepend_row_body, p);
}

cudaError_t cc_cuda_get_rows(cudaStream_t s, const float *table, const int32_t *ids, float *out, int64_t n_ids,
                             int64_t width, int64_t n_rows, cc_cuda_error_record *err) {
    rows_params p = {table, ids, out, n_ids, width, n_rows, err};
    if (n_ids * width <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(n_ids * width), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, get_rows_kernel, get_rows_body, p);
}

cudaError_t cc_cuda_get_rows_backward(cudaStream_t s, const float *dy, const int32_t *ids, float *dtable,
                                      int64_t n_ids, int64_t width, int64_t n_rows, cc_cuda_error_record *err) {
    cudaError_t e = cudaMemsetAsync(dtable, 0, (size_t)(n_rows * width) * sizeof(float), s);
    if (e != cudaSuccess || n_ids * width <= 0) return e;
    rows_params p = {dy, ids, dtable, n_ids, width, n_rows, err};
    cc_launch_cfg cfg = cc_cfg(layout_grid(n_ids * width), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, get_rows_backward_kernel, get_rows_backward_body, p);
}

cudaError_t cc_cuda_slice_backward(cudaStream_t s, const float *dy, float *dst, const int64_t *dst_shape, int ndim,
                                   int dim, int64_t start, int64_t length) {
    if (dim < 0 || dim >= ndim) return cudaErrorInvalidValue;
    slice_params p;
    p.dy = dy;
    p.dst = dst;
    p.outer = 1;
    p.inner = 1;
    for (int i = 0; i < dim; i++) p.outer *= dst_shape[i];
    for (int i = dim + 1; i < ndim; i++) p.inner *= dst_shape[i];
    p.full = dst_shape[dim];
    p.start = start;
    p.length = length;
    int64_t n = p.outer * p.full * p.inner;
    if (n <= 0) return cudaSuccess;
    cc_launch_cfg cfg = cc_cfg(layout_grid(n), 1, LAYOUT_THREADS, 0);
    return CC_LAUNCH(cfg, s, slice_backward_kernel, slice_backward_body, p);
}
