/* kernels.cuh — launchers of clipc's CUDA kernels (one per op family), called by the CUDA backend
 * (engine/cuda/backend_cuda.cu) and by the development files in kernels/cuda/dev/.
 *
 * Every launcher enqueues its kernels on `stream` and returns the launch status (cudaSuccess or
 * the error of the first failed launch); nothing here synchronises. Each computes the same
 * function as its CPU reference in kernels/cpu_ops.c, on the same contiguous f32 layouts (the
 * attention and layout kernels take the strides the engine allows). Bad indices found on the
 * device (embedding ids, cross-entropy labels) are recorded in a cc_cuda_error_record that the
 * backend reads back at its next synchronisation, so a kernel never writes out of bounds and the
 * host still gets a message naming the op, the value and its position.
 */
#ifndef CLIPC_KERNELS_CUDA_KERNELS_CUH
#define CLIPC_KERNELS_CUDA_KERNELS_CUH

#include "kernels/cuda/simt.cuh"

/* ---- device-side error record ---- */
enum {
    CC_CUDA_ERR_NONE = 0,
    CC_CUDA_ERR_GET_ROWS_ID = 1,     /* value = id, position = index in ids, limit = rows of the table */
    CC_CUDA_ERR_CROSS_ENTROPY_LABEL, /* value = label, position = row, limit = classes */
};
struct cc_cuda_error_record {
    int code;
    int pad;
    long long value, position, limit;
};

/* Once per process before the first launch (raises shared-memory limits; not allowed during
 * stream capture, so the backend calls it at creation). */
cudaError_t cc_cuda_prepare_kernels(void);

/* Upper bound for grid-stride launches (blocks); set once by the backend from the SM count. */
void cc_cuda_set_grid_cap(unsigned max_blocks);
unsigned cc_cuda_grid_cap(void);

/* ---- elementwise (elementwise.cu) ---- */
/* out = a + beta * b[i % nb] (nb == n: same shape) */
cudaError_t cc_cuda_add(cudaStream_t s, const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta);
cudaError_t cc_cuda_mul(cudaStream_t s, const float *a, const float *b, float *out, int64_t n);
cudaError_t cc_cuda_scale(cudaStream_t s, const float *x, float *out, int64_t n, float c);
/* out = x * scalar[0], the scalar read on the device */
cudaError_t cc_cuda_mul_scalar(cudaStream_t s, const float *x, const float *scalar, float *out, int64_t n);
cudaError_t cc_cuda_exp(cudaStream_t s, const float *x, float *out, int64_t n);
cudaError_t cc_cuda_fill(cudaStream_t s, float *out, int64_t n, float value);
cudaError_t cc_cuda_accumulate(cudaStream_t s, float *dst, const float *src, int64_t n); /* dst += src */
cudaError_t cc_cuda_act_forward(cudaStream_t s, const float *x, float *y, int64_t n, int kind);
cudaError_t cc_cuda_act_backward(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t n, int kind);
cudaError_t cc_cuda_repeat(cudaStream_t s, const float *x, float *out, int64_t n_out, int64_t n_in);
/* f32 -> bf16 (round to nearest even), for GEMM operands in the bf16 precision mode */
cudaError_t cc_cuda_to_bf16(cudaStream_t s, const float *x, uint16_t *out, int64_t n);

/* ---- reductions (reduce.cu) ---- */
/* Scratch for cc_cuda_sum/dot (bytes); partial sums are double, summed in a fixed order. */
size_t cc_cuda_reduce_scratch_bytes(int64_t n);
/* *out = (float)Σ a[i]·(b ? b[i] : 1), accumulated in double (b == a: sum of squares) */
cudaError_t cc_cuda_dot(cudaStream_t s, const float *a, const float *b, int64_t n, float *out, void *scratch);
/* out[width] = Σ over rows of x[rows, width] (CC_OP_SUM_TO) */
size_t cc_cuda_sum_rows_scratch_bytes(int64_t rows, int64_t width);
cudaError_t cc_cuda_sum_rows(cudaStream_t s, const float *x, float *out, int64_t rows, int64_t width, void *scratch);

/* ---- optimizer (adamw.cu) ---- */
/* One parameter tensor of a fused AdamW launch; bias1/bias2/step_size/decay computed on the host
 * exactly as the CPU backend does. */
struct cc_cuda_adamw_entry {
    float *param;
    const float *grad;
    float *m, *v;
    long long n;
    float beta1, beta2, eps, grad_scale, step_size, decay, bias2, pad;
};
/* entries: device array of count entries (count <= 65535 per launch; the launcher splits) */
cudaError_t cc_cuda_adamw(cudaStream_t s, const cc_cuda_adamw_entry *entries, int count, long long max_n);
struct cc_cuda_sumsq_entry {
    const float *x;
    long long n;
};
/* *out (device double) = Σ over entries Σ x², fixed summation order. scratch: count*blocks doubles,
 * see cc_cuda_sumsq_scratch_bytes. */
size_t cc_cuda_sumsq_scratch_bytes(int count);
cudaError_t cc_cuda_sum_squares(cudaStream_t s, const cc_cuda_sumsq_entry *entries, int count, double *out,
                                void *scratch);

/* ---- row-wise ops (rowwise.cu) ---- */
cudaError_t cc_cuda_layernorm_forward(cudaStream_t s, const float *x, const float *gamma, const float *beta, float *y,
                                      int64_t rows, int64_t width, float eps);
cudaError_t cc_cuda_layernorm_backward_x(cudaStream_t s, const float *dy, const float *x, const float *gamma,
                                         float *dx, int64_t rows, int64_t width, float eps);
size_t cc_cuda_layernorm_params_scratch_bytes(int64_t rows, int64_t width);
/* out: [2, width] = dgamma, dbeta */
cudaError_t cc_cuda_layernorm_backward_params(cudaStream_t s, const float *dy, const float *x, float *out,
                                              int64_t rows, int64_t width, float eps, void *scratch);
/* causal_period: 0 = no mask; else row r keeps columns <= r % causal_period */
cudaError_t cc_cuda_softmax_forward(cudaStream_t s, const float *x, float *y, int64_t rows, int64_t width, float scale,
                                    int64_t causal_period);
cudaError_t cc_cuda_softmax_backward(cudaStream_t s, const float *dy, const float *y, float *dx, int64_t rows,
                                     int64_t width, float scale);
cudaError_t cc_cuda_l2norm_forward(cudaStream_t s, const float *x, float *y, int64_t rows, int64_t width, float eps);
cudaError_t cc_cuda_l2norm_backward(cudaStream_t s, const float *dy, const float *x, float *dx, int64_t rows,
                                    int64_t width, float eps);
size_t cc_cuda_cross_entropy_scratch_bytes(int64_t rows);
/* *out = mean over rows of logsumexp(row) - row[label] */
cudaError_t cc_cuda_cross_entropy_forward(cudaStream_t s, const float *logits, const int32_t *labels, float *out,
                                          int64_t rows, int64_t cols, void *scratch, cc_cuda_error_record *err);
/* dloss: device pointer to the upstream gradient (1 value) */
cudaError_t cc_cuda_cross_entropy_backward(cudaStream_t s, const float *dloss, const float *logits,
                                           const int32_t *labels, float *dlogits, int64_t rows, int64_t cols,
                                           cc_cuda_error_record *err);

/* ---- layout and gathers (layout.cu) ---- */
/* contiguous copy of a strided view of up to 4 dims (shape/stride outermost first) */
cudaError_t cc_cuda_copy_strided(cudaStream_t s, const float *src, const int64_t *shape, const int64_t *stride,
                                 int ndim, float *dst);
cudaError_t cc_cuda_patchify(cudaStream_t s, const float *images, float *patches, int64_t batch, int64_t channels,
                             int64_t height, int64_t width, int64_t patch);
cudaError_t cc_cuda_patchify_backward(cudaStream_t s, const float *dpatches, float *dimages, int64_t batch,
                                      int64_t channels, int64_t height, int64_t width, int64_t patch);
cudaError_t cc_cuda_prepend_row(cudaStream_t s, const float *x, const float *row, float *out, int64_t batch,
                                int64_t n_rows, int64_t width);
cudaError_t cc_cuda_get_rows(cudaStream_t s, const float *table, const int32_t *ids, float *out, int64_t n_ids,
                             int64_t width, int64_t n_rows, cc_cuda_error_record *err);
/* zeroes dtable then scatter-adds (float atomics: the order of additions into one row varies) */
cudaError_t cc_cuda_get_rows_backward(cudaStream_t s, const float *dy, const int32_t *ids, float *dtable,
                                      int64_t n_ids, int64_t width, int64_t n_rows, cc_cuda_error_record *err);
/* dst (contiguous, dst_shape) = zeros with dy in the slice [start, start+length) of dim */
cudaError_t cc_cuda_slice_backward(cudaStream_t s, const float *dy, float *dst, const int64_t *dst_shape, int ndim,
                                   int dim, int64_t start, int64_t length);

/* ---- attention (attention.cu) ---- */
struct cc_cuda_attention_shape {
    int batch, seq, width, n_heads;
    long long q_row_stride, k_row_stride, v_row_stride; /* elements between consecutive tokens */
    float scale;
    int causal;
};
/* Largest head dim the kernels take. */
#define CC_CUDA_ATTENTION_MAX_HEAD_DIM 128
/* use_bf16: tensor-core kernels (bf16 operands, f32 accumulation and softmax) instead of the exact
 * f32 ones. Backward: dq, dk, dv contiguous [B, T, C]; scratch: cc_cuda_attention_scratch_bytes. */
cudaError_t cc_cuda_attention_forward(cudaStream_t s, const cc_cuda_attention_shape *shape, const float *q,
                                      const float *k, const float *v, float *out, int use_bf16);
size_t cc_cuda_attention_scratch_bytes(const cc_cuda_attention_shape *shape);
cudaError_t cc_cuda_attention_backward(cudaStream_t s, const cc_cuda_attention_shape *shape, const float *dout,
                                       const float *q, const float *k, const float *v, float *dq, float *dk, float *dv,
                                       void *scratch, int use_bf16);
/* The kernel variant a shape gets ("f32-d64", "bf16-mma-d64", ...), for reports. */
const char *cc_cuda_attention_variant(const cc_cuda_attention_shape *shape, int use_bf16, int backward);

#endif
