/* cpu_ops.h — CPU kernels for the engine's ops, on raw f32 pointers.
 *
 * The fast CPU path: hand-vectorised AVX-512 and AVX2+FMA kernels (kernels/cpu_ops_simd.inc, with
 * vectorised exp/erf/tanh from kernels/simd_math.h), chosen at run time by the CPU, threaded with
 * OpenMP over rows, elements or (batch, head) pairs when the work is big enough. The readable
 * scalar definition of each op is in kernels/cpu_ops_ref.c (cc_ref_*): the portable fallback and
 * the reference tests/test_cpu_kernels.c checks the fast kernels against. Shapes are passed
 * explicitly; "rows" × "width" means a contiguous [rows, width] matrix. Functions that can fail
 * (bad ids) return -1 and set an error.
 */
#ifndef CLIPC_CPU_OPS_H
#define CLIPC_CPU_OPS_H

#include <stdint.h>

#include "engine/tensor.h"

/* SIMD level used by the kernels: "avx512", "avx2" or "scalar" (the reference code). The best
 * one this CPU runs is picked at first use; the environment variable CLIPC_SIMD (avx512, avx2,
 * scalar, auto) overrides it. */
const char *cc_cpu_simd_name(void);
/* Forces a level for the whole process (tests, benchmarks); -1 with an error if this CPU cannot
 * run it. NULL or "auto" = the best. Not to be called while kernels are running. */
int cc_cpu_set_simd(const char *name);

/* Vectorised expf / erff / tanhf at the current level (one thread; for tests and benchmarks). */
void cc_cpu_vexp(const float *x, float *y, int64_t n);
void cc_cpu_verf(const float *x, float *y, int64_t n);
void cc_cpu_vtanh(const float *x, float *y, int64_t n);

/* elementwise; b broadcast with period nb (nb == n: same shape) */
void cc_cpu_add(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta);
void cc_cpu_mul(const float *a, const float *b, float *out, int64_t n);
void cc_cpu_scale(const float *x, float *out, int64_t n, float c);
void cc_cpu_exp(const float *x, float *out, int64_t n);
void cc_cpu_fill(float *out, int64_t n, float value);
void cc_cpu_accumulate(float *dst, const float *src, int64_t n);
void cc_cpu_act_forward(const float *x, float *y, int64_t n, cc_act_kind kind);
void cc_cpu_act_backward(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind);

/* reductions */
double cc_cpu_sum(const float *x, int64_t n);
double cc_cpu_dot(const float *a, const float *b, int64_t n);
void cc_cpu_sum_rows(const float *x, float *out, int64_t rows, int64_t width); /* out[width] = Σ rows */
void cc_cpu_repeat(const float *x, float *out, int64_t n_out, int64_t n_in);

/* row-wise */
void cc_cpu_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                              int64_t width, float eps);
void cc_cpu_layernorm_backward_x(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                 int64_t width, float eps);
void cc_cpu_layernorm_backward_params(const float *dy, const float *x, float *dgamma_dbeta, int64_t rows,
                                      int64_t width, float eps);
/* causal_period: 0 = no mask; else row r masks columns > r % causal_period */
void cc_cpu_softmax_forward(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period);
void cc_cpu_softmax_backward(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale);
void cc_cpu_l2norm_forward(const float *x, float *y, int64_t rows, int64_t width, float eps);
void cc_cpu_l2norm_backward(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps);
float cc_cpu_cross_entropy_forward(const float *logits, const int32_t *labels, int64_t rows, int64_t cols);
void cc_cpu_cross_entropy_backward(float dloss, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols);
int cc_cpu_check_labels(const int32_t *labels, int64_t rows, int64_t cols);

/* attention: q/k/v rows of width C = n_heads*head_dim with row stride ld*, batch stride bs*;
 * out contiguous [B, T, C]. */
typedef struct cc_attention_shape {
    int64_t batch, seq, width, n_heads;
    int64_t q_row_stride, k_row_stride, v_row_stride; /* elements between consecutive tokens */
    float scale;
    int causal;
} cc_attention_shape;
void cc_cpu_attention_forward(const cc_attention_shape *s, const float *q, const float *k, const float *v, float *out);
/* dq, dk, dv: contiguous [B, T, C] each. */
void cc_cpu_attention_backward(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                               const float *v, float *dq, float *dk, float *dv);

/* gathers and layout */
int cc_cpu_get_rows(const float *table, const int32_t *ids, float *out, int64_t n_ids, int64_t width, int64_t n_rows);
int cc_cpu_get_rows_backward(const float *dy, const int32_t *ids, float *dtable, int64_t n_ids, int64_t width,
                             int64_t n_rows);
void cc_cpu_patchify(const float *images, float *patches, int64_t batch, int64_t channels, int64_t height,
                     int64_t width, int64_t patch);
void cc_cpu_patchify_backward(const float *dpatches, float *dimages, int64_t batch, int64_t channels, int64_t height,
                              int64_t width, int64_t patch);
void cc_cpu_prepend_row(const float *x, const float *row, float *out, int64_t batch, int64_t n_rows, int64_t width);
/* Strided copy of a tensor view (up to 4 dims) into contiguous memory. */
void cc_cpu_copy_strided(const float *src, const int64_t *shape, const int64_t *stride, int ndim, float *dst);
/* dst (contiguous, src_shape) = 0, then the slice [start, start+len) of dim gets dy. */
void cc_cpu_slice_backward(const float *dy, float *dst, const int64_t *dst_shape, int ndim, int dim, int64_t start,
                           int64_t length);

/* SigLIP loss (train/loss.h) of L2-normalised img, txt [n, dim] with t = exp(log_scale):
 * (1/n) Σ_ij softplus(-z_ij (t·img_i·txt_j + bias)), z = +1 on the diagonal, -1 off it. The n × n
 * logits are formed SIGLIP_BLOCK_ROWS rows at a time (never whole). Backward writes dimg, dtxt
 * [n, dim] and dparams[2] = (d log_scale, d bias), scaled by dloss. -1 when out of memory. */
int cc_cpu_siglip_forward(const float *img, const float *txt, int64_t n, int64_t dim, float log_scale, float bias,
                          double *loss);
int cc_cpu_siglip_backward(float dloss, const float *img, const float *txt, int64_t n, int64_t dim, float log_scale,
                           float bias, float *dimg, float *dtxt, float *dparams);

#endif
