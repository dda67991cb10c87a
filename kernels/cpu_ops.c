/* cpu_ops.c — CPU kernels for the engine's ops (see cpu_ops.h).
 *
 * Reductions accumulate in double where rows are long enough for float error to matter against
 * the 1e-5 parity tolerance (sums over whole tensors), and in float elsewhere (per-row statistics
 * of a few hundred values, as PyTorch does). CC_VEC marks hot loops compiled in three versions
 * (AVX-512, AVX2, baseline) chosen at load time by the CPU.
 */
#include "kernels/cpu_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#define CC_VEC __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define PARALLEL_MIN_ELEMENTS 32768 /* below this, threading costs more than it saves */
#define PARALLEL_MIN_ROWS 8

/* ---- elementwise ---- */

CC_VEC void cc_cpu_add(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta) {
    if (nb == n) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
        for (int64_t i = 0; i < n; i++) out[i] = a[i] + beta * b[i];
        return;
    }
    int64_t periods = n / nb;
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t p = 0; p < periods; p++) {
        const float *ap = a + p * nb;
        float *op = out + p * nb;
#pragma omp simd
        for (int64_t i = 0; i < nb; i++) op[i] = ap[i] + beta * b[i];
    }
}

CC_VEC void cc_cpu_mul(const float *a, const float *b, float *out, int64_t n) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

CC_VEC void cc_cpu_scale(const float *x, float *out, int64_t n, float c) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * c;
}

void cc_cpu_exp(const float *x, float *out, int64_t n) {
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) out[i] = expf(x[i]);
}

CC_VEC void cc_cpu_fill(float *out, int64_t n, float value) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) out[i] = value;
}

CC_VEC void cc_cpu_accumulate(float *dst, const float *src, int64_t n) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* GELU with the tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static inline float gelu_tanh_grad(float x) {
    const float k = 0.7978845608028654f;
    float inner = k * (x + 0.044715f * x * x * x);
    float t = tanhf(inner);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

/* Exact GELU: 0.5x(1 + erf(x/√2)). */
static inline float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }

static inline float gelu_erf_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
    float pdf = 0.3989422804014327f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) */
    return cdf + x * pdf;
}

/* QuickGELU (openai CLIP): x·σ(1.702x). */
static inline float quick_gelu(float x) { return x / (1.0f + expf(-1.702f * x)); }

static inline float quick_gelu_grad(float x) {
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    return s + 1.702f * x * s * (1.0f - s);
}

void cc_cpu_act_forward(const float *x, float *y, int64_t n, cc_act_kind kind) {
    switch (kind) {
    case CC_ACT_GELU_TANH:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) y[i] = gelu_tanh(x[i]);
        break;
    case CC_ACT_GELU_ERF:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) y[i] = gelu_erf(x[i]);
        break;
    case CC_ACT_QUICK_GELU:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) y[i] = quick_gelu(x[i]);
        break;
    }
}

void cc_cpu_act_backward(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind) {
    switch (kind) {
    case CC_ACT_GELU_TANH:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_tanh_grad(x[i]);
        break;
    case CC_ACT_GELU_ERF:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_erf_grad(x[i]);
        break;
    case CC_ACT_QUICK_GELU:
#pragma omp parallel for if (n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * quick_gelu_grad(x[i]);
        break;
    }
}

/* ---- reductions ---- */

CC_VEC double cc_cpu_sum(const float *x, int64_t n) {
    double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) total += x[i];
    return total;
}

CC_VEC double cc_cpu_dot(const float *a, const float *b, int64_t n) {
    double total = 0;
#pragma omp parallel for simd reduction(+ : total) if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) total += (double)a[i] * b[i];
    return total;
}

void cc_cpu_sum_rows(const float *x, float *out, int64_t rows, int64_t width) {
    /* columns split across threads; each column summed in double over all rows */
#pragma omp parallel for if (rows * width > PARALLEL_MIN_ELEMENTS)
    for (int64_t c0 = 0; c0 < width; c0 += 64) {
        int64_t c1 = c0 + 64 < width ? c0 + 64 : width;
        double acc[64] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const float *row = x + r * width;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; c++) out[c] = (float)acc[c - c0];
    }
}

void cc_cpu_repeat(const float *x, float *out, int64_t n_out, int64_t n_in) {
#pragma omp parallel for if (n_out > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n_out; i++) out[i] = x[i % n_in];
}

/* ---- layernorm ---- */

CC_VEC static void row_mean_rstd(const float *row, int64_t width, float eps, float *mean_out, float *rstd_out) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < width; i++) sum += row[i];
    float mean = sum / (float)width;
    float var = 0;
#pragma omp simd reduction(+ : var)
    for (int64_t i = 0; i < width; i++) var += (row[i] - mean) * (row[i] - mean);
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(var / (float)width + eps);
}

CC_VEC void cc_cpu_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                                     int64_t width, float eps) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        float mean, rstd;
        row_mean_rstd(xr, width, eps, &mean, &rstd);
#pragma omp simd
        for (int64_t i = 0; i < width; i++) yr[i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
    }
}

/* dx = rstd·(g - mean(g) - x̂·mean(g·x̂)), g = dy·gamma, x̂ = normalised x */
CC_VEC void cc_cpu_layernorm_backward_x(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                        int64_t width, float eps) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        float *dxr = dx + r * width;
        float mean, rstd;
        row_mean_rstd(xr, width, eps, &mean, &rstd);
        float sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
        for (int64_t i = 0; i < width; i++) {
            float g = dyr[i] * gamma[i];
            sum_g += g;
            sum_gx += g * (xr[i] - mean) * rstd;
        }
        float mean_g = sum_g / (float)width, mean_gx = sum_gx / (float)width;
#pragma omp simd
        for (int64_t i = 0; i < width; i++) {
            float xhat = (xr[i] - mean) * rstd;
            dxr[i] = rstd * (dyr[i] * gamma[i] - mean_g - xhat * mean_gx);
        }
    }
}

/* dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy; rows are split over threads, each with double partials. */
void cc_cpu_layernorm_backward_params(const float *dy, const float *x, float *dgamma_dbeta, int64_t rows,
                                      int64_t width, float eps) {
    int n_chunks = rows >= PARALLEL_MIN_ROWS ? cc_get_threads() : 1;
    double *partial = calloc((size_t)n_chunks * 2 * (size_t)width, sizeof(double));
    if (!partial) n_chunks = 0; /* out of memory: single pass straight into the output below */
#pragma omp parallel for if (n_chunks > 1)
    for (int chunk = 0; chunk < n_chunks; chunk++) {
        double *dgamma = partial + (size_t)chunk * 2 * (size_t)width, *dbeta = dgamma + width;
        for (int64_t r = rows * chunk / n_chunks; r < rows * (chunk + 1) / n_chunks; r++) {
            const float *xr = x + r * width, *dyr = dy + r * width;
            float mean, rstd;
            row_mean_rstd(xr, width, eps, &mean, &rstd);
            for (int64_t i = 0; i < width; i++) {
                dgamma[i] += (double)dyr[i] * ((xr[i] - mean) * rstd);
                dbeta[i] += dyr[i];
            }
        }
    }
    if (!partial) {
        memset(dgamma_dbeta, 0, (size_t)(2 * width) * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * width, *dyr = dy + r * width;
            float mean, rstd;
            row_mean_rstd(xr, width, eps, &mean, &rstd);
            for (int64_t i = 0; i < width; i++) {
                dgamma_dbeta[i] += dyr[i] * ((xr[i] - mean) * rstd);
                dgamma_dbeta[width + i] += dyr[i];
            }
        }
        return;
    }
    for (int64_t i = 0; i < width; i++) {
        double g = 0, b = 0;
        for (int chunk = 0; chunk < n_chunks; chunk++) {
            g += partial[(size_t)chunk * 2 * (size_t)width + (size_t)i];
            b += partial[(size_t)chunk * 2 * (size_t)width + (size_t)width + (size_t)i];
        }
        dgamma_dbeta[i] = (float)g;
        dgamma_dbeta[width + i] = (float)b;
    }
    free(partial);
}

/* ---- softmax ---- */

void cc_cpu_softmax_forward(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        int64_t valid = causal_period ? (r % causal_period) + 1 : width;
        if (valid > width) valid = width;
        float max_value = -INFINITY;
        for (int64_t i = 0; i < valid; i++)
            if (xr[i] * scale > max_value) max_value = xr[i] * scale;
        float sum = 0;
        for (int64_t i = 0; i < valid; i++) {
            yr[i] = expf(xr[i] * scale - max_value);
            sum += yr[i];
        }
        float inv = 1.0f / sum;
        for (int64_t i = 0; i < valid; i++) yr[i] *= inv;
        for (int64_t i = valid; i < width; i++) yr[i] = 0.0f;
    }
}

CC_VEC void cc_cpu_softmax_backward(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * width, *yr = y + r * width;
        float *dxr = dx + r * width;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t i = 0; i < width; i++) dot += dyr[i] * yr[i];
#pragma omp simd
        for (int64_t i = 0; i < width; i++) dxr[i] = scale * yr[i] * (dyr[i] - dot);
    }
}

/* ---- l2 normalise ---- */

CC_VEC void cc_cpu_l2norm_forward(const float *x, float *y, int64_t rows, int64_t width, float eps) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        float sum_sq = 0;
#pragma omp simd reduction(+ : sum_sq)
        for (int64_t i = 0; i < width; i++) sum_sq += xr[i] * xr[i];
        float norm = sqrtf(sum_sq);
        float inv = 1.0f / (norm > eps ? norm : eps);
#pragma omp simd
        for (int64_t i = 0; i < width; i++) yr[i] = xr[i] * inv;
    }
}

/* y = x/n: dx = (dy - y(y·dy))/n when n > eps, else dy/eps */
CC_VEC void cc_cpu_l2norm_backward(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps) {
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        float *dxr = dx + r * width;
        float sum_sq = 0, x_dot_dy = 0;
#pragma omp simd reduction(+ : sum_sq, x_dot_dy)
        for (int64_t i = 0; i < width; i++) {
            sum_sq += xr[i] * xr[i];
            x_dot_dy += xr[i] * dyr[i];
        }
        float norm = sqrtf(sum_sq);
        if (norm > eps) {
            float inv = 1.0f / norm;
            float coef = x_dot_dy * inv * inv * inv;
#pragma omp simd
            for (int64_t i = 0; i < width; i++) dxr[i] = dyr[i] * inv - xr[i] * coef;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < width; i++) dxr[i] = dyr[i] / eps;
        }
    }
}

/* ---- cross-entropy ---- */

int cc_cpu_check_labels(const int32_t *labels, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= cols) {
            cc_set_error("cross_entropy: label %d of row %lld is outside [0, %lld)", labels[r], (long long)r, (long long)cols);
            return -1;
        }
    return 0;
}

static double row_logsumexp(const float *row, int64_t cols) {
    float max_value = -INFINITY;
    for (int64_t c = 0; c < cols; c++)
        if (row[c] > max_value) max_value = row[c];
    double sum = 0;
    for (int64_t c = 0; c < cols; c++) sum += exp((double)row[c] - max_value);
    return max_value + log(sum);
}

float cc_cpu_cross_entropy_forward(const float *logits, const int32_t *labels, int64_t rows, int64_t cols) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * cols;
        total += row_logsumexp(row, cols) - row[labels[r]];
    }
    return (float)(total / (double)rows);
}

void cc_cpu_cross_entropy_backward(float dloss, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols) {
    float per_row = dloss / (float)rows;
#pragma omp parallel for if (rows >= PARALLEL_MIN_ROWS)
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * cols;
        float *drow = dlogits + r * cols;
        double lse = row_logsumexp(row, cols);
        for (int64_t c = 0; c < cols; c++) drow[c] = (float)exp((double)row[c] - lse) * per_row;
        drow[labels[r]] -= per_row;
    }
}

/* ---- attention ---- */

/* Scores of query i against keys 0..n_keys-1 of one head, softmaxed in place into p. */
CC_VEC static void attention_probs(const float *qi, const float *k, int64_t k_stride, int64_t n_keys, int64_t head_dim,
                                   float scale, float *p) {
    float max_value = -INFINITY;
    for (int64_t j = 0; j < n_keys; j++) {
        const float *kj = k + j * k_stride;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < head_dim; d++) dot += qi[d] * kj[d];
        p[j] = dot * scale;
        if (p[j] > max_value) max_value = p[j];
    }
    float sum = 0;
    for (int64_t j = 0; j < n_keys; j++) {
        p[j] = expf(p[j] - max_value);
        sum += p[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < n_keys; j++) p[j] *= inv;
}

CC_VEC void cc_cpu_attention_forward(const cc_attention_shape *s, const float *q, const float *k, const float *v,
                                     float *out) {
    int64_t head_dim = s->width / s->n_heads, T = s->seq;
#pragma omp parallel
    {
        float *p = malloc((size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = 0; b < s->batch; b++)
            for (int64_t h = 0; h < s->n_heads; h++) {
                const float *qb = q + b * T * s->q_row_stride + h * head_dim;
                const float *kb = k + b * T * s->k_row_stride + h * head_dim;
                const float *vb = v + b * T * s->v_row_stride + h * head_dim;
                float *ob = out + b * T * s->width + h * head_dim;
                for (int64_t i = 0; i < T; i++) {
                    int64_t n_keys = s->causal ? i + 1 : T;
                    attention_probs(qb + i * s->q_row_stride, kb, s->k_row_stride, n_keys, head_dim, s->scale, p);
                    float *oi = ob + i * s->width;
                    for (int64_t d = 0; d < head_dim; d++) oi[d] = 0;
                    for (int64_t j = 0; j < n_keys; j++) {
                        const float *vj = vb + j * s->v_row_stride;
                        float pj = p[j];
#pragma omp simd
                        for (int64_t d = 0; d < head_dim; d++) oi[d] += pj * vj[d];
                    }
                }
            }
        free(p);
    }
}

/* Per head, with P recomputed row by row (only one head's T×T scores exist at a time per thread):
 * dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q. */
CC_VEC void cc_cpu_attention_backward(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                                      const float *v, float *dq, float *dk, float *dv) {
    int64_t head_dim = s->width / s->n_heads, T = s->seq, C = s->width;
#pragma omp parallel
    {
        float *p = malloc((size_t)T * sizeof(float));
        float *dp = malloc((size_t)T * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = 0; b < s->batch; b++)
            for (int64_t h = 0; h < s->n_heads; h++) {
                const float *qb = q + b * T * s->q_row_stride + h * head_dim;
                const float *kb = k + b * T * s->k_row_stride + h * head_dim;
                const float *vb = v + b * T * s->v_row_stride + h * head_dim;
                const float *dob = dout + b * T * C + h * head_dim;
                float *dqb = dq + b * T * C + h * head_dim;
                float *dkb = dk + b * T * C + h * head_dim;
                float *dvb = dv + b * T * C + h * head_dim;
                for (int64_t j = 0; j < T; j++)
                    for (int64_t d = 0; d < head_dim; d++) dkb[j * C + d] = dvb[j * C + d] = 0;
                for (int64_t i = 0; i < T; i++) {
                    int64_t n_keys = s->causal ? i + 1 : T;
                    const float *qi = qb + i * s->q_row_stride;
                    const float *doi = dob + i * C;
                    attention_probs(qi, kb, s->k_row_stride, n_keys, head_dim, s->scale, p);
                    float row_dot = 0;
                    for (int64_t j = 0; j < n_keys; j++) {
                        const float *vj = vb + j * s->v_row_stride;
                        float dot = 0;
#pragma omp simd reduction(+ : dot)
                        for (int64_t d = 0; d < head_dim; d++) dot += doi[d] * vj[d];
                        dp[j] = dot;
                        row_dot += p[j] * dot;
                    }
                    float *dqi = dqb + i * C;
                    for (int64_t d = 0; d < head_dim; d++) dqi[d] = 0;
                    for (int64_t j = 0; j < n_keys; j++) {
                        float pj = p[j];
                        float dsj = pj * (dp[j] - row_dot) * s->scale;
                        const float *kj = kb + j * s->k_row_stride;
                        float *dkj = dkb + j * C, *dvj = dvb + j * C;
#pragma omp simd
                        for (int64_t d = 0; d < head_dim; d++) {
                            dvj[d] += pj * doi[d];
                            dqi[d] += dsj * kj[d];
                            dkj[d] += dsj * qi[d];
                        }
                    }
                }
            }
        free(p);
        free(dp);
    }
}

/* ---- gathers and layout ---- */

int cc_cpu_get_rows(const float *table, const int32_t *ids, float *out, int64_t n_ids, int64_t width, int64_t n_rows) {
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= n_rows) {
            cc_set_error("get_rows: id %d at position %lld is outside the table of %lld rows", ids[i], (long long)i,
                         (long long)n_rows);
            return -1;
        }
#pragma omp parallel for if (n_ids * width > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n_ids; i++) memcpy(out + i * width, table + (int64_t)ids[i] * width, (size_t)width * sizeof(float));
    return 0;
}

int cc_cpu_get_rows_backward(const float *dy, const int32_t *ids, float *dtable, int64_t n_ids, int64_t width,
                             int64_t n_rows) {
    memset(dtable, 0, (size_t)(n_rows * width) * sizeof(float));
    for (int64_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= n_rows) {
            cc_set_error("get_rows backward: id %d outside the table of %lld rows", ids[i], (long long)n_rows);
            return -1;
        }
        float *dst = dtable + (int64_t)ids[i] * width;
        const float *src = dy + i * width;
        for (int64_t c = 0; c < width; c++) dst[c] += src[c];
    }
    return 0;
}

/* patch (py, px) of image b becomes row py*grid_w+px; its columns are ordered (channel, dy, dx),
 * matching a conv weight [out, channels, patch, patch] flattened to [out, channels*patch*patch]. */
void cc_cpu_patchify(const float *images, float *patches, int64_t batch, int64_t channels, int64_t height,
                     int64_t width, int64_t patch) {
    int64_t grid_h = height / patch, grid_w = width / patch, row_len = channels * patch * patch;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t py = 0; py < grid_h; py++)
            for (int64_t px = 0; px < grid_w; px++) {
                float *dst = patches + ((b * grid_h + py) * grid_w + px) * row_len;
                for (int64_t c = 0; c < channels; c++)
                    for (int64_t dy = 0; dy < patch; dy++) {
                        const float *src = images + ((b * channels + c) * height + py * patch + dy) * width + px * patch;
                        memcpy(dst + (c * patch + dy) * patch, src, (size_t)patch * sizeof(float));
                    }
            }
}

void cc_cpu_patchify_backward(const float *dpatches, float *dimages, int64_t batch, int64_t channels, int64_t height,
                              int64_t width, int64_t patch) {
    int64_t grid_h = height / patch, grid_w = width / patch, row_len = channels * patch * patch;
#pragma omp parallel for collapse(2)
    for (int64_t b = 0; b < batch; b++)
        for (int64_t py = 0; py < grid_h; py++)
            for (int64_t px = 0; px < grid_w; px++) {
                const float *src = dpatches + ((b * grid_h + py) * grid_w + px) * row_len;
                for (int64_t c = 0; c < channels; c++)
                    for (int64_t dy = 0; dy < patch; dy++) {
                        float *dst = dimages + ((b * channels + c) * height + py * patch + dy) * width + px * patch;
                        memcpy(dst, src + (c * patch + dy) * patch, (size_t)patch * sizeof(float));
                    }
            }
}

void cc_cpu_prepend_row(const float *x, const float *row, float *out, int64_t batch, int64_t n_rows, int64_t width) {
#pragma omp parallel for if (batch * n_rows * width > PARALLEL_MIN_ELEMENTS)
    for (int64_t b = 0; b < batch; b++) {
        float *dst = out + b * (n_rows + 1) * width;
        memcpy(dst, row, (size_t)width * sizeof(float));
        memcpy(dst + width, x + b * n_rows * width, (size_t)(n_rows * width) * sizeof(float));
    }
}

void cc_cpu_copy_strided(const float *src, const int64_t *shape, const int64_t *stride, int ndim, float *dst) {
    int64_t s[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    for (int i = 0; i < ndim; i++) { /* right-align into 4 dims */
        s[4 - ndim + i] = shape[i];
        st[4 - ndim + i] = stride[i];
    }
#pragma omp parallel for collapse(2) if (s[0] * s[1] * s[2] * s[3] > PARALLEL_MIN_ELEMENTS)
    for (int64_t i0 = 0; i0 < s[0]; i0++)
        for (int64_t i1 = 0; i1 < s[1]; i1++)
            for (int64_t i2 = 0; i2 < s[2]; i2++) {
                const float *from = src + i0 * st[0] + i1 * st[1] + i2 * st[2];
                float *to = dst + ((i0 * s[1] + i1) * s[2] + i2) * s[3];
                if (st[3] == 1) memcpy(to, from, (size_t)s[3] * sizeof(float));
                else
                    for (int64_t i3 = 0; i3 < s[3]; i3++) to[i3] = from[i3 * st[3]];
            }
}

void cc_cpu_slice_backward(const float *dy, float *dst, const int64_t *dst_shape, int ndim, int dim, int64_t start,
                           int64_t length) {
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < dim; i++) outer *= dst_shape[i];
    for (int i = dim + 1; i < ndim; i++) inner *= dst_shape[i];
    int64_t full = dst_shape[dim];
    memset(dst, 0, (size_t)(outer * full * inner) * sizeof(float));
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (o * full + start) * inner, dy + o * length * inner, (size_t)(length * inner) * sizeof(float));
}
