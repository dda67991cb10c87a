/* cpu_ops_ref.h — the readable scalar reference of every CPU kernel (kernels/cpu_ops_ref.c).
 *
 * Plain loops and libm, single-threaded, written to be obviously right: they define what the
 * fast SIMD kernels compute, tests/test_cpu_kernels.c compares the fast ones against them on odd
 * shapes, and they are the portable fallback on CPUs without AVX2 (cpu_ops.c threads them).
 * Signatures are those of the kernel table in cpu_kernels.h (chunk arguments included).
 */
#ifndef CLIPC_CPU_OPS_REF_H
#define CLIPC_CPU_OPS_REF_H

#include <stdint.h>

#include "kernels/cpu_ops.h"

void cc_ref_add(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta);
void cc_ref_mul(const float *a, const float *b, float *out, int64_t n);
void cc_ref_scale(const float *x, float *out, int64_t n, float c);
void cc_ref_accumulate(float *dst, const float *src, int64_t n);
void cc_ref_exp(const float *x, float *out, int64_t n);
void cc_ref_erf(const float *x, float *out, int64_t n);
void cc_ref_tanh(const float *x, float *out, int64_t n);
void cc_ref_act_forward(const float *x, float *y, int64_t n, cc_act_kind kind);
void cc_ref_act_backward(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind);

void cc_ref_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                              int64_t width, float eps);
void cc_ref_layernorm_backward_x(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                 int64_t width, float eps);
/* dgamma[width] += Σ_rows dy·x̂, dbeta[width] += Σ_rows dy (accumulates in double) */
void cc_ref_layernorm_backward_params(const float *dy, const float *x, double *dgamma, double *dbeta, int64_t rows,
                                      int64_t width, float eps);
/* first_row: index of row 0 of this chunk in the whole tensor (the causal mask uses it) */
void cc_ref_softmax_forward(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period,
                            int64_t first_row);
void cc_ref_softmax_backward(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale);
void cc_ref_l2norm_forward(const float *x, float *y, int64_t rows, int64_t width, float eps);
void cc_ref_l2norm_backward(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps);
double cc_ref_cross_entropy_forward(const float *logits, const int32_t *labels, int64_t rows, int64_t cols);
void cc_ref_cross_entropy_backward(float per_row, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols);
/* scratch: at least 2*seq floats */
void cc_ref_attention_forward(const cc_attention_shape *s, const float *q, const float *k, const float *v, float *out,
                              int64_t bh_begin, int64_t bh_end, float *scratch);
void cc_ref_attention_backward(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                               const float *v, float *dq, float *dk, float *dv, int64_t bh_begin, int64_t bh_end,
                               float *scratch);

#endif
