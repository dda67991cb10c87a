/* cpu_ops_ref.c — scalar reference kernels (see cpu_ops_ref.h) and the "scalar" kernel table.
 *
 * Per-row statistics accumulate in float, as PyTorch's CPU kernels do for rows of a few
 * thousand values; cross-entropy's log-sum-exp and the layernorm parameter gradients (sums over
 * all rows) accumulate in double.
 */
#include "kernels/cpu_ops_ref.h"

#include <math.h>
#include <string.h>

#include "kernels/cpu_kernels.h"

/* ---- elementwise ---- */

void cc_ref_add(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + beta * b[i % nb];
}

void cc_ref_mul(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void cc_ref_scale(const float *x, float *out, int64_t n, float c) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * c;
}

void cc_ref_accumulate(float *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

void cc_ref_exp(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = expf(x[i]);
}

void cc_ref_erf(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = erff(x[i]);
}

void cc_ref_tanh(const float *x, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = tanhf(x[i]);
}

/* GELU with the tanh approximation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
static float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static float gelu_tanh_grad(float x) {
    const float k = 0.7978845608028654f;
    float t = tanhf(k * (x + 0.044715f * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

/* Exact GELU: 0.5x(1 + erf(x/√2)). */
static float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }

static float gelu_erf_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
    float pdf = 0.3989422804014327f * expf(-0.5f * x * x); /* 1/sqrt(2 pi) */
    return cdf + x * pdf;
}

/* QuickGELU (openai CLIP): x·σ(1.702x). */
static float quick_gelu(float x) { return x / (1.0f + expf(-1.702f * x)); }

static float quick_gelu_grad(float x) {
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    return s + 1.702f * x * s * (1.0f - s);
}

void cc_ref_act_forward(const float *x, float *y, int64_t n, cc_act_kind kind) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case CC_ACT_GELU_TANH: y[i] = gelu_tanh(x[i]); break;
        case CC_ACT_GELU_ERF: y[i] = gelu_erf(x[i]); break;
        case CC_ACT_QUICK_GELU: y[i] = quick_gelu(x[i]); break;
        }
    }
}

void cc_ref_act_backward(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case CC_ACT_GELU_TANH: dx[i] = dy[i] * gelu_tanh_grad(x[i]); break;
        case CC_ACT_GELU_ERF: dx[i] = dy[i] * gelu_erf_grad(x[i]); break;
        case CC_ACT_QUICK_GELU: dx[i] = dy[i] * quick_gelu_grad(x[i]); break;
        }
    }
}

/* ---- layernorm ---- */

/* Two passes: the mean, then the mean squared deviation (never E[x²] − mean², which cancels). */
static void row_mean_rstd(const float *row, int64_t width, float eps, float *mean_out, float *rstd_out) {
    float sum = 0;
    for (int64_t i = 0; i < width; i++) sum += row[i];
    float mean = sum / (float)width;
    float var = 0;
    for (int64_t i = 0; i < width; i++) var += (row[i] - mean) * (row[i] - mean);
    *mean_out = mean;
    *rstd_out = 1.0f / sqrtf(var / (float)width + eps);
}

void cc_ref_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                              int64_t width, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        float mean, rstd;
        row_mean_rstd(xr, width, eps, &mean, &rstd);
        for (int64_t i = 0; i < width; i++) yr[i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
    }
}

/* dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·gamma, x̂ = normalised x */
void cc_ref_layernorm_backward_x(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                 int64_t width, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        float *dxr = dx + r * width;
        float mean, rstd;
        row_mean_rstd(xr, width, eps, &mean, &rstd);
        float sum_g = 0, sum_gx = 0;
        for (int64_t i = 0; i < width; i++) {
            float g = dyr[i] * gamma[i];
            sum_g += g;
            sum_gx += g * (xr[i] - mean) * rstd;
        }
        float mean_g = sum_g / (float)width, mean_gx = sum_gx / (float)width;
        for (int64_t i = 0; i < width; i++) {
            float xhat = (xr[i] - mean) * rstd;
            dxr[i] = rstd * (dyr[i] * gamma[i] - mean_g - xhat * mean_gx);
        }
    }
}

void cc_ref_layernorm_backward_params(const float *dy, const float *x, double *dgamma, double *dbeta, int64_t rows,
                                      int64_t width, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        float mean, rstd;
        row_mean_rstd(xr, width, eps, &mean, &rstd);
        for (int64_t i = 0; i < width; i++) {
            dgamma[i] += (double)dyr[i] * ((xr[i] - mean) * rstd);
            dbeta[i] += dyr[i];
        }
    }
}

/* ---- softmax ---- */

void cc_ref_softmax_forward(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period,
                            int64_t first_row) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        int64_t valid = causal_period ? (first_row + r) % causal_period + 1 : width;
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

void cc_ref_softmax_backward(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale) {
    for (int64_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * width, *yr = y + r * width;
        float *dxr = dx + r * width;
        float dot = 0;
        for (int64_t i = 0; i < width; i++) dot += dyr[i] * yr[i];
        for (int64_t i = 0; i < width; i++) dxr[i] = scale * yr[i] * (dyr[i] - dot);
    }
}

/* ---- l2 normalise ---- */

void cc_ref_l2norm_forward(const float *x, float *y, int64_t rows, int64_t width, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        float sum_sq = 0;
        for (int64_t i = 0; i < width; i++) sum_sq += xr[i] * xr[i];
        float norm = sqrtf(sum_sq);
        float inv = 1.0f / (norm > eps ? norm : eps);
        for (int64_t i = 0; i < width; i++) yr[i] = xr[i] * inv;
    }
}

/* y = x/n: dx = (dy − y(y·dy))/n when n > eps, else dy/eps */
void cc_ref_l2norm_backward(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        float *dxr = dx + r * width;
        float sum_sq = 0, x_dot_dy = 0;
        for (int64_t i = 0; i < width; i++) {
            sum_sq += xr[i] * xr[i];
            x_dot_dy += xr[i] * dyr[i];
        }
        float norm = sqrtf(sum_sq);
        if (norm > eps) {
            float inv = 1.0f / norm;
            float coef = x_dot_dy * inv * inv * inv;
            for (int64_t i = 0; i < width; i++) dxr[i] = dyr[i] * inv - xr[i] * coef;
        } else {
            for (int64_t i = 0; i < width; i++) dxr[i] = dyr[i] / eps;
        }
    }
}

/* ---- cross-entropy ---- */

static double row_logsumexp(const float *row, int64_t cols) {
    float max_value = -INFINITY;
    for (int64_t c = 0; c < cols; c++)
        if (row[c] > max_value) max_value = row[c];
    double sum = 0;
    for (int64_t c = 0; c < cols; c++) sum += exp((double)row[c] - max_value);
    return max_value + log(sum);
}

double cc_ref_cross_entropy_forward(const float *logits, const int32_t *labels, int64_t rows, int64_t cols) {
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * cols;
        total += row_logsumexp(row, cols) - row[labels[r]];
    }
    return total;
}

void cc_ref_cross_entropy_backward(float per_row, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * cols;
        float *drow = dlogits + r * cols;
        double lse = row_logsumexp(row, cols);
        for (int64_t c = 0; c < cols; c++) drow[c] = (float)exp((double)row[c] - lse) * per_row;
        drow[labels[r]] -= per_row;
    }
}

/* ---- attention ---- */

/* Scores of query qi against keys 0..n_keys-1 of one head, softmaxed in place into p. */
static void attention_probs(const float *qi, const float *k, int64_t k_stride, int64_t n_keys, int64_t head_dim,
                            float scale, float *p) {
    float max_value = -INFINITY;
    for (int64_t j = 0; j < n_keys; j++) {
        const float *kj = k + j * k_stride;
        float dot = 0;
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

void cc_ref_attention_forward(const cc_attention_shape *s, const float *q, const float *k, const float *v, float *out,
                              int64_t bh_begin, int64_t bh_end, float *scratch) {
    int64_t head_dim = s->width / s->n_heads, T = s->seq;
    float *p = scratch;
    for (int64_t bh = bh_begin; bh < bh_end; bh++) {
        int64_t b = bh / s->n_heads, h = bh % s->n_heads;
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
                for (int64_t d = 0; d < head_dim; d++) oi[d] += p[j] * vj[d];
            }
        }
    }
}

/* Per head, with P recomputed row by row: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)),
 * dQ = scale·dS·K, dK = scale·dSᵀ·Q. */
void cc_ref_attention_backward(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                               const float *v, float *dq, float *dk, float *dv, int64_t bh_begin, int64_t bh_end,
                               float *scratch) {
    int64_t head_dim = s->width / s->n_heads, T = s->seq, C = s->width;
    float *p = scratch, *dp = scratch + T;
    for (int64_t bh = bh_begin; bh < bh_end; bh++) {
        int64_t b = bh / s->n_heads, h = bh % s->n_heads;
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
                for (int64_t d = 0; d < head_dim; d++) dot += doi[d] * vj[d];
                dp[j] = dot;
                row_dot += p[j] * dot;
            }
            float *dqi = dqb + i * C;
            for (int64_t d = 0; d < head_dim; d++) dqi[d] = 0;
            for (int64_t j = 0; j < n_keys; j++) {
                float dsj = p[j] * (dp[j] - row_dot) * s->scale;
                const float *kj = kb + j * s->k_row_stride;
                float *dkj = dkb + j * C, *dvj = dvb + j * C;
                for (int64_t d = 0; d < head_dim; d++) {
                    dvj[d] += p[j] * doi[d];
                    dqi[d] += dsj * kj[d];
                    dkj[d] += dsj * qi[d];
                }
            }
        }
    }
}

const cc_cpu_kernels cc_cpu_kernels_scalar = {
    .name = "scalar",
    .add = cc_ref_add,
    .mul = cc_ref_mul,
    .scale = cc_ref_scale,
    .accumulate = cc_ref_accumulate,
    .exp = cc_ref_exp,
    .erf = cc_ref_erf,
    .tanh = cc_ref_tanh,
    .act_forward = cc_ref_act_forward,
    .act_backward = cc_ref_act_backward,
    .layernorm_forward = cc_ref_layernorm_forward,
    .layernorm_backward_x = cc_ref_layernorm_backward_x,
    .layernorm_backward_params = cc_ref_layernorm_backward_params,
    .softmax_forward = cc_ref_softmax_forward,
    .softmax_backward = cc_ref_softmax_backward,
    .l2norm_forward = cc_ref_l2norm_forward,
    .l2norm_backward = cc_ref_l2norm_backward,
    .cross_entropy_forward = cc_ref_cross_entropy_forward,
    .cross_entropy_backward = cc_ref_cross_entropy_backward,
    .attention_forward = cc_ref_attention_forward,
    .attention_backward = cc_ref_attention_backward,
};
