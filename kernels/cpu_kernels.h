/* cpu_kernels.h — internal: one table of single-threaded kernels per SIMD level.
 *
 * cpu_ops.c picks a table at first use (AVX-512, AVX2+FMA, or the portable scalar reference of
 * cpu_ops_ref.c), splits each op's work into contiguous chunks (rows, elements, or (batch, head)
 * pairs), and runs one chunk per OpenMP thread through the table. The kernels themselves never
 * start threads. The AVX-512 and AVX2 tables are built from one source, cpu_ops_simd.inc,
 * compiled twice (cpu_ops_avx512.c, cpu_ops_avx2.c) over a small per-ISA vector layer.
 *
 * Chunk conventions: elementwise kernels take [0, n); row kernels take `rows` consecutive rows;
 * softmax also gets the index of its first row (the causal mask depends on it); attention takes
 * the (batch, head) pairs [bh_begin, bh_end) (pair = b*n_heads + h) and a per-thread scratch of
 * cc_attention_scratch_floats() floats, 64-byte aligned.
 */
#ifndef CLIPC_CPU_KERNELS_H
#define CLIPC_CPU_KERNELS_H

#include <stdint.h>

#include "kernels/cpu_ops.h"

typedef struct cc_cpu_kernels {
    const char *name; /* "avx512", "avx2", "scalar" */
    /* elementwise; add's n is a multiple of nb (b repeats with period nb) */
    void (*add)(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta);
    void (*mul)(const float *a, const float *b, float *out, int64_t n);
    void (*scale)(const float *x, float *out, int64_t n, float c);
    void (*accumulate)(float *dst, const float *src, int64_t n);
    void (*exp)(const float *x, float *out, int64_t n);
    void (*erf)(const float *x, float *out, int64_t n);
    void (*tanh)(const float *x, float *out, int64_t n);
    void (*act_forward)(const float *x, float *y, int64_t n, cc_act_kind kind);
    void (*act_backward)(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind);
    /* row-wise */
    void (*layernorm_forward)(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                              int64_t width, float eps);
    void (*layernorm_backward_x)(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                 int64_t width, float eps);
    /* dgamma[width] += Σ_rows dy·x̂, dbeta[width] += Σ_rows dy */
    void (*layernorm_backward_params)(const float *dy, const float *x, double *dgamma, double *dbeta, int64_t rows,
                                      int64_t width, float eps);
    void (*softmax_forward)(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period,
                            int64_t first_row);
    void (*softmax_backward)(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale);
    void (*l2norm_forward)(const float *x, float *y, int64_t rows, int64_t width, float eps);
    void (*l2norm_backward)(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps);
    /* cross-entropy rows: returns Σ_rows (logsumexp − logit[label]) */
    double (*cross_entropy_forward)(const float *logits, const int32_t *labels, int64_t rows, int64_t cols);
    void (*cross_entropy_backward)(float per_row, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols);
    /* attention over (batch, head) pairs */
    void (*attention_forward)(const cc_attention_shape *s, const float *q, const float *k, const float *v, float *out,
                              int64_t bh_begin, int64_t bh_end, float *scratch);
    void (*attention_backward)(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                               const float *v, float *dq, float *dk, float *dv, int64_t bh_begin, int64_t bh_end,
                               float *scratch);
} cc_cpu_kernels;

extern const cc_cpu_kernels cc_cpu_kernels_scalar; /* cpu_ops_ref.c: the references */
#if defined(__x86_64__) && defined(__GNUC__)
extern const cc_cpu_kernels cc_cpu_kernels_avx512; /* cpu_ops_avx512.c */
extern const cc_cpu_kernels cc_cpu_kernels_avx2;   /* cpu_ops_avx2.c */
#endif

/* Scratch floats one thread needs for attention of this shape (the largest of the three levels'
 * needs: a few [T, T] and [head_dim, T] panels of one head, padded to 16 columns). */
int64_t cc_attention_scratch_floats(const cc_attention_shape *s);

#endif
