/* test_cpu_kernels.c — the fast CPU kernels against their scalar references (kernels/cpu_ops_ref.c)
 * at every SIMD level this CPU runs, on odd shapes (widths not a multiple of 16, rows of one
 * element, strided attention operands, causal masks) and on shapes big enough to be threaded;
 * and the vectorised expf / erff / tanhf against libm over wide ranges, in ulp. Fast, no Python:
 * also run under ASan+UBSan. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_ops.h"
#include "kernels/cpu_ops_ref.h"
#include "tests/test.h"

#define MATH_SAMPLES 400000 /* floats per range in the ulp tests */
#define EXP_MAX_ULP 2.0
#define TANH_MAX_ULP 2.5 /* glibc's own tanhf is 2 ulp off in places (the "scalar" level) */
#define ERF_MAX_ULP 2.0
#define FORWARD_TOL 2e-6  /* norm-wise relative error, fast vs reference */
#define BACKWARD_TOL 1e-5

static const char *const levels[] = {"avx512", "avx2", "scalar"};
#define N_LEVELS 3

/* Float error of a layernorm row grows with |mean|/std (x − mean cancels): the worst row's ratio. */
static double layernorm_condition(const float *x, int64_t rows, int64_t width) {
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < width; i++) sum += x[r * width + i];
        double mean = sum / (double)width;
        for (int64_t i = 0; i < width; i++) sq += (x[r * width + i] - mean) * (x[r * width + i] - mean);
        double ratio = fabs(mean) / sqrt(sq / (double)width + 1e-5);
        if (ratio > worst) worst = ratio;
    }
    return worst;
}

/* The magnitudes layernorm's input gradient is summed from, per element:
 * dx = rstd·(g - mean(g) - x̂·mean(g·x̂)) with g = γ·dy cancels when g is near its two projections, so
 * its rounding is relative to rstd·(|g| + mean|g| + |x̂|·mean|g·x̂|), written to scale. */
static void layernorm_dx_magnitudes(const float *dy, const float *x, const float *gamma, double *scale, int64_t rows,
                                    int64_t width, double eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * width, *dyr = dy + r * width;
        double sum = 0, sq = 0, m1 = 0, m2 = 0;
        for (int64_t i = 0; i < width; i++) sum += xr[i];
        double mean = sum / (double)width;
        for (int64_t i = 0; i < width; i++) sq += (xr[i] - mean) * (xr[i] - mean);
        double rstd = 1.0 / sqrt(sq / (double)width + eps);
        for (int64_t i = 0; i < width; i++) {
            double g = fabs((double)gamma[i] * dyr[i]);
            m1 += g;
            m2 += g * fabs((xr[i] - mean) * rstd);
        }
        m1 /= (double)width;
        m2 /= (double)width;
        for (int64_t i = 0; i < width; i++)
            scale[r * width + i] = rstd * (fabs((double)gamma[i] * dyr[i]) + m1 + fabs((xr[i] - mean) * rstd) * m2);
    }
}

/* Conditioning of column sums of a rows x width matrix: norm of the column sums of |values| over
 * the norm of the column sums. Sums of values that nearly cancel (a few rows) have a large one: the
 * float partial sums' rounding is relative to the magnitudes summed, not to the result. */
static double column_sum_condition(const float *values, int64_t rows, int64_t width) {
    double abs_norm = 0, sum_norm = 0;
    for (int64_t i = 0; i < width; i++) {
        double abs_sum = 0, sum = 0;
        for (int64_t r = 0; r < rows; r++) abs_sum += fabs(values[r * width + i]), sum += values[r * width + i];
        abs_norm += abs_sum * abs_sum;
        sum_norm += sum * sum;
    }
    return sum_norm > 0 ? sqrt(abs_norm / sum_norm) : 1e30;
}

static float *random_floats(cc_rng *rng, int64_t n, float scale) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = cc_rng_normal(rng) * scale;
    return x;
}

/* ---------------------------------------------------------------- vectorised math in ulp */

/* Distance in units in the last place of the float result `ref` (exact, in double). */
static double ulp_error(float got, double ref) {
    if (isnan(ref)) return isnan(got) ? 0 : INFINITY;
    if (isinf(ref) || fabs(ref) > FLT_MAX) {
        float r = (float)ref;
        return got == r ? 0 : INFINITY;
    }
    if (isnan(got) || isinf(got)) return INFINITY;
    float r = (float)ref;
    double ulp = r == 0 ? 0x1p-149 : fabs((double)nextafterf(fabsf(r), INFINITY) - fabsf(r));
    if (fabs(ref) < 0x1p-126) ulp = 0x1p-149; /* subnormal results: absolute, one subnormal step */
    return fabs((double)got - ref) / ulp;
}

typedef double (*ref_fn)(double);

/* Max ulp error of fn over `count` floats evenly spaced in [lo, hi] plus special values. */
static double max_ulp(void (*fn)(const float *, float *, int64_t), ref_fn ref, double lo, double hi, int count,
                      float *worst_x) {
    static const float specials[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-45f, 1.0f, -1.0f, 0.5f, 0.625f, -0.625f,
                                     1e30f, -1e30f, FLT_MAX, -FLT_MAX, 88.72f, -87.33f, -103.9f, 3.92f, -3.92f, 4.0f};
    int n_special = (int)(sizeof specials / sizeof specials[0]);
    int n = count + n_special;
    float *x = malloc((size_t)n * sizeof(float)), *y = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < count; i++) x[i] = (float)(lo + (hi - lo) * i / (count - 1));
    memcpy(x + count, specials, sizeof specials);
    fn(x, y, n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = ulp_error(y[i], ref((double)x[i]));
        if (e > worst) {
            worst = e;
            *worst_x = x[i];
        }
    }
    free(x);
    free(y);
    return worst;
}

static int check_special(void (*fn)(const float *, float *, int64_t), float in, float expected) {
    float x[3] = {in, in, in}, y[3];
    fn(x, y, 3); /* a partial vector: the masked tail path */
    return isnan(expected) ? isnan(y[0]) : (y[0] == expected && signbit(y[0]) == signbit(expected));
}

TEST(cpu_vector_math_matches_libm_in_ulp) {
    int tested = 0;
    for (int l = 0; l < N_LEVELS; l++) {
        if (cc_cpu_set_simd(levels[l]) != 0) continue;
        tested++;
        float wx = 0;
        double e;
        e = max_ulp(cc_cpu_vexp, exp, -110.0, 100.0, MATH_SAMPLES, &wx);
        CHECK(e <= EXP_MAX_ULP, "%s exp: %.2f ulp at x=%.9g", levels[l], e, wx);
        e = max_ulp(cc_cpu_vexp, exp, -2.0, 2.0, MATH_SAMPLES, &wx);
        CHECK(e <= EXP_MAX_ULP, "%s exp near 0: %.2f ulp at x=%.9g", levels[l], e, wx);
        e = max_ulp(cc_cpu_vtanh, tanh, -12.0, 12.0, MATH_SAMPLES, &wx);
        CHECK(e <= TANH_MAX_ULP, "%s tanh: %.2f ulp at x=%.9g", levels[l], e, wx);
        e = max_ulp(cc_cpu_vtanh, tanh, -0.01, 0.01, MATH_SAMPLES / 4, &wx);
        CHECK(e <= TANH_MAX_ULP, "%s tanh near 0: %.2f ulp at x=%.9g", levels[l], e, wx);
        e = max_ulp(cc_cpu_verf, erf, -6.0, 6.0, MATH_SAMPLES, &wx);
        CHECK(e <= ERF_MAX_ULP, "%s erf: %.2f ulp at x=%.9g", levels[l], e, wx);
        e = max_ulp(cc_cpu_verf, erf, -0.01, 0.01, MATH_SAMPLES / 4, &wx);
        CHECK(e <= ERF_MAX_ULP, "%s erf near 0: %.2f ulp at x=%.9g", levels[l], e, wx);
        CHECK(check_special(cc_cpu_vexp, INFINITY, INFINITY), "%s exp(inf)", levels[l]);
        CHECK(check_special(cc_cpu_vexp, -INFINITY, 0.0f), "%s exp(-inf)", levels[l]);
        CHECK(check_special(cc_cpu_vexp, NAN, NAN), "%s exp(nan)", levels[l]);
        CHECK(check_special(cc_cpu_vexp, 89.0f, INFINITY), "%s exp(89)", levels[l]);
        CHECK(check_special(cc_cpu_vtanh, INFINITY, 1.0f), "%s tanh(inf)", levels[l]);
        CHECK(check_special(cc_cpu_vtanh, -INFINITY, -1.0f), "%s tanh(-inf)", levels[l]);
        CHECK(check_special(cc_cpu_vtanh, -0.0f, -0.0f), "%s tanh(-0)", levels[l]);
        CHECK(check_special(cc_cpu_vtanh, NAN, NAN), "%s tanh(nan)", levels[l]);
        CHECK(check_special(cc_cpu_verf, INFINITY, 1.0f), "%s erf(inf)", levels[l]);
        CHECK(check_special(cc_cpu_verf, -INFINITY, -1.0f), "%s erf(-inf)", levels[l]);
        CHECK(check_special(cc_cpu_verf, -0.0f, -0.0f), "%s erf(-0)", levels[l]);
        CHECK(check_special(cc_cpu_verf, NAN, NAN), "%s erf(nan)", levels[l]);
    }
    CHECK(tested >= 1);
}

/* ---------------------------------------------------------------- ops: fast vs reference */

static const int64_t widths[] = {1, 3, 15, 16, 17, 50, 77, 773};
static const int64_t row_counts[] = {1, 2, 7, 300};
#define N_WIDTHS ((int)(sizeof widths / sizeof widths[0]))
#define N_ROWS ((int)(sizeof row_counts / sizeof row_counts[0]))

/* norm-wise relative error of fast vs ref within tol; the message (fmt, ...) names the case */
#define CHECK_CLOSE(fast, ref, n, tol, fmt, ...)                                                       \
    do {                                                                                               \
        double rel_ = test_rel_error((fast), (ref), (n));                                              \
        CHECK(rel_ <= (tol), "relative error %.3g, " fmt, rel_, __VA_ARGS__);                          \
    } while (0)

TEST(cpu_elementwise_kernels_match_reference) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const int64_t sizes[] = {1, 5, 16, 17, 100, 1023, 300001};
    for (int l = 0; l < N_LEVELS; l++) {
        if (cc_cpu_set_simd(levels[l]) != 0) continue;
        for (int si = 0; si < (int)(sizeof sizes / sizeof sizes[0]); si++) {
            int64_t n = sizes[si];
            float *a = random_floats(&rng, n, 3.0f), *b = random_floats(&rng, n, 1.0f);
            float *fast = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
            const char *lv = levels[l];
            a[0] = -50.0f; /* far tails of the activations */
            if (n > 1) a[1] = 50.0f;
            cc_cpu_add(a, b, fast, n, n, -0.7f);
            cc_ref_add(a, b, ref, n, n, -0.7f);
            CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s add n=%lld", lv, (long long)n);
            for (int64_t nb = 1; nb <= 17 && nb <= n; nb += 16) {
                if (n % nb) continue;
                cc_cpu_add(a, b, fast, n, nb, 1.3f);
                cc_ref_add(a, b, ref, n, nb, 1.3f);
                CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s add broadcast n=%lld nb=%lld", lv, (long long)n, (long long)nb);
            }
            cc_cpu_mul(a, b, fast, n);
            cc_ref_mul(a, b, ref, n);
            CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s mul n=%lld", lv, (long long)n);
            cc_cpu_scale(a, fast, n, 0.37f);
            cc_ref_scale(a, ref, n, 0.37f);
            CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s scale n=%lld", lv, (long long)n);
            cc_cpu_exp(b, fast, n);
            cc_ref_exp(b, ref, n);
            CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s exp n=%lld", lv, (long long)n);
            memcpy(fast, a, (size_t)n * sizeof(float));
            memcpy(ref, a, (size_t)n * sizeof(float));
            cc_cpu_accumulate(fast, b, n);
            cc_ref_accumulate(ref, b, n);
            CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s accumulate n=%lld", lv, (long long)n);
            for (int kind = CC_ACT_GELU_TANH; kind <= CC_ACT_QUICK_GELU; kind++) {
                cc_cpu_act_forward(a, fast, n, (cc_act_kind)kind);
                cc_ref_act_forward(a, ref, n, (cc_act_kind)kind);
                CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s act %d forward n=%lld", lv, kind, (long long)n);
                cc_cpu_act_backward(b, a, fast, n, (cc_act_kind)kind);
                cc_ref_act_backward(b, a, ref, n, (cc_act_kind)kind);
                CHECK_CLOSE(fast, ref, n, BACKWARD_TOL, "%s act %d backward n=%lld", lv, kind, (long long)n);
            }
            free(a);
            free(b);
            free(fast);
            free(ref);
        }
    }
}

TEST(cpu_row_kernels_match_reference) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int l = 0; l < N_LEVELS; l++) {
        if (cc_cpu_set_simd(levels[l]) != 0) continue;
        const char *lv = levels[l];
        for (int wi = 0; wi < N_WIDTHS; wi++)
            for (int ri = 0; ri < N_ROWS; ri++) {
                int64_t w = widths[wi], rows = row_counts[ri], n = rows * w;
                float *x = random_floats(&rng, n, 2.0f), *dy = random_floats(&rng, n, 1.0f);
                float *gamma = random_floats(&rng, w, 1.0f), *beta = random_floats(&rng, w, 1.0f);
                float *fast = malloc((size_t)n * sizeof(float)), *ref = malloc((size_t)n * sizeof(float));
                for (int64_t i = 0; i < n; i++) x[i] += 5.0f; /* a mean well away from 0 */
                double ln_tol = 2e-6 * (1.0 + layernorm_condition(x, rows, w));
                cc_cpu_layernorm_forward(x, gamma, beta, fast, rows, w, 1e-5f);
                cc_ref_layernorm_forward(x, gamma, beta, ref, rows, w, 1e-5f);
                CHECK_CLOSE(fast, ref, n, ln_tol, "%s layernorm %lldx%lld", lv, (long long)rows, (long long)w);
                cc_cpu_layernorm_backward_x(dy, x, gamma, fast, rows, w, 1e-5f);
                cc_ref_layernorm_backward_x(dy, x, gamma, ref, rows, w, 1e-5f);
                { /* error against the magnitudes summed (seed 25998811220: 4.5e-4 of |dx| on a 1x3 row) */
                    double *mag = malloc((size_t)n * sizeof(double)), err2 = 0, mag2 = 0;
                    layernorm_dx_magnitudes(dy, x, gamma, mag, rows, w, 1e-5);
                    for (int64_t i = 0; i < n; i++) {
                        err2 += ((double)fast[i] - ref[i]) * ((double)fast[i] - ref[i]);
                        mag2 += mag[i] * mag[i];
                    }
                    CHECK(sqrt(err2) <= 10 * ln_tol * sqrt(mag2), "%s layernorm dx %lldx%lld: error %.3g of magnitudes %.3g",
                          lv, (long long)rows, (long long)w, sqrt(err2), sqrt(mag2));
                    free(mag);
                }
                {
                    float *params = malloc((size_t)(2 * w) * sizeof(float)), *params_ref = malloc((size_t)(2 * w) * sizeof(float));
                    double *acc = calloc((size_t)(2 * w), sizeof(double));
                    cc_cpu_layernorm_backward_params(dy, x, params, rows, w, 1e-5f);
                    cc_ref_layernorm_backward_params(dy, x, acc, acc + w, rows, w, 1e-5f);
                    for (int64_t i = 0; i < 2 * w; i++) params_ref[i] = (float)acc[i];
                    CHECK_CLOSE(params, params_ref, w, 1e-4, "%s layernorm dgamma %lldx%lld", lv, (long long)rows, (long long)w);
                    double dbeta_tol = 1e-5 * fmax(1.0, column_sum_condition(dy, rows, w));
                    CHECK_CLOSE(params + w, params_ref + w, w, dbeta_tol, "%s layernorm dbeta %lldx%lld", lv,
                                (long long)rows, (long long)w);
                    free(params);
                    free(params_ref);
                    free(acc);
                }
                for (int causal = 0; causal <= 1; causal++) {
                    int64_t period = causal ? (w > 1 ? w - 1 : 1) : 0; /* period != width: masks vary by row */
                    cc_cpu_softmax_forward(x, fast, rows, w, 0.8f, period);
                    cc_ref_softmax_forward(x, ref, rows, w, 0.8f, period, 0);
                    CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s softmax causal=%d %lldx%lld", lv, causal, (long long)rows,
                                (long long)w);
                }
                {
                    float *y = malloc((size_t)n * sizeof(float));
                    cc_ref_softmax_forward(x, y, rows, w, 0.8f, 0, 0);
                    cc_cpu_softmax_backward(dy, y, fast, rows, w, 0.8f);
                    cc_ref_softmax_backward(dy, y, ref, rows, w, 0.8f);
                    /* dx = s·y·(dy - Σ y·dy) cancels when dy is near the row's mean: the error is measured
                     * against the magnitudes summed, s·y·(|dy| + Σ y·|dy|) (seed 41 gave 1.7e-5 against
                     * max |dx| on a 1x15 row) */
                    double worst = 0, scale = 0;
                    for (int64_t r = 0; r < rows; r++) {
                        double mean_abs = 0;
                        for (int64_t i = 0; i < w; i++) mean_abs += (double)y[r * w + i] * fabs(dy[r * w + i]);
                        for (int64_t i = 0; i < w; i++) {
                            int64_t at = r * w + i;
                            worst = fmax(worst, fabs((double)fast[at] - ref[at]));
                            scale = fmax(scale, 0.8 * y[at] * (fabs(dy[at]) + mean_abs));
                        }
                    }
                    CHECK(worst <= BACKWARD_TOL * scale, "%s softmax backward %lldx%lld: error %.3g of magnitudes %.3g", lv,
                          (long long)rows, (long long)w, worst, scale);
                    free(y);
                }
                cc_cpu_l2norm_forward(x, fast, rows, w, 1e-12f);
                cc_ref_l2norm_forward(x, ref, rows, w, 1e-12f);
                CHECK_CLOSE(fast, ref, n, FORWARD_TOL, "%s l2norm %lldx%lld", lv, (long long)rows, (long long)w);
                cc_cpu_l2norm_backward(dy, x, fast, rows, w, 1e-12f);
                cc_ref_l2norm_backward(dy, x, ref, rows, w, 1e-12f);
                if (w > 1) /* at width 1 the exact gradient is 0 and both give rounding noise */
                    CHECK_CLOSE(fast, ref, n, BACKWARD_TOL, "%s l2norm backward %lldx%lld", lv, (long long)rows,
                                (long long)w);
                {
                    int32_t *labels = malloc((size_t)rows * sizeof(int32_t));
                    for (int64_t r = 0; r < rows; r++) labels[r] = (int32_t)cc_rng_below(&rng, (uint64_t)w);
                    float *logits = random_floats(&rng, n, 20.0f); /* CLIP-like logit scale */
                    float loss = cc_cpu_cross_entropy_forward(logits, labels, rows, w);
                    float loss_ref = (float)(cc_ref_cross_entropy_forward(logits, labels, rows, w) / (double)rows);
                    CHECK(fabsf(loss - loss_ref) <= 1e-5f * (1.0f + fabsf(loss_ref)), "%s cross-entropy %lldx%lld: %g vs %g",
                          lv, (long long)rows, (long long)w, loss, loss_ref);
                    /* dlogits = (softmax − onehot)·per_row: when one logit dominates, softmax − 1 cancels in
                     * any float code, so the error is measured against per_row, the gradient's scale */
                    float per_row = 1.7f / (float)rows;
                    cc_cpu_cross_entropy_backward(1.7f, logits, labels, fast, rows, w);
                    cc_ref_cross_entropy_backward(per_row, logits, labels, ref, rows, w);
                    double worst = 0;
                    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)fast[i] - ref[i]) / per_row);
                    CHECK(worst <= BACKWARD_TOL, "%s cross-entropy backward %lldx%lld: error %.3g of per_row", lv,
                          (long long)rows, (long long)w, worst);
                    free(labels);
                    free(logits);
                }
                free(x);
                free(dy);
                free(gamma);
                free(beta);
                free(fast);
                free(ref);
            }
    }
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    int64_t batch, seq, heads, head_dim;
    int causal, fused; /* fused: q, k, v are column slices of one [B, T, 3C] tensor */
} attention_case;

static const attention_case attention_cases[] = {
    {1, 1, 1, 16, 0, 0},  {2, 7, 3, 5, 1, 0},   {1, 50, 12, 64, 0, 1}, {2, 77, 8, 64, 1, 1},
    {3, 17, 2, 24, 0, 0}, {1, 33, 4, 8, 1, 1},  {2, 16, 1, 1, 0, 0},   {1, 2, 2, 3, 1, 0},
    {4, 50, 12, 64, 0, 0}, {1, 77, 2, 64, 1, 0}, {2, 13, 4, 12, 0, 1},
};

TEST(cpu_attention_matches_reference) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int l = 0; l < N_LEVELS; l++) {
        if (cc_cpu_set_simd(levels[l]) != 0) continue;
        for (int ci = 0; ci < (int)(sizeof attention_cases / sizeof attention_cases[0]); ci++) {
            const attention_case *c = &attention_cases[ci];
            int64_t C = c->heads * c->head_dim, T = c->seq, per = c->batch * T * C;
            int64_t stride = c->fused ? 3 * C : C;
            float *qkv = random_floats(&rng, 3 * per, 1.0f), *dout = random_floats(&rng, per, 1.0f);
            const float *q = qkv, *k = c->fused ? qkv + C : qkv + per, *v = c->fused ? qkv + 2 * C : qkv + 2 * per;
            cc_attention_shape s = {.batch = c->batch, .seq = T, .width = C, .n_heads = c->heads,
                                    .q_row_stride = stride, .k_row_stride = stride, .v_row_stride = stride,
                                    .scale = 1.0f / sqrtf((float)c->head_dim), .causal = c->causal};
            float *out = malloc((size_t)per * sizeof(float)), *out_ref = malloc((size_t)per * sizeof(float));
            float *grads = malloc((size_t)(3 * per) * sizeof(float)), *grads_ref = malloc((size_t)(3 * per) * sizeof(float));
            float *scratch = malloc((size_t)cc_attention_scratch_floats(&s) * sizeof(float));
            cc_cpu_attention_forward(&s, q, k, v, out);
            cc_ref_attention_forward(&s, q, k, v, out_ref, 0, c->batch * c->heads, scratch);
            CHECK_CLOSE(out, out_ref, per, 1e-5, "%s attention case %d forward", levels[l], ci);
            cc_cpu_attention_backward(&s, dout, q, k, v, grads, grads + per, grads + 2 * per);
            cc_ref_attention_backward(&s, dout, q, k, v, grads_ref, grads_ref + per, grads_ref + 2 * per, 0,
                                      c->batch * c->heads, scratch);
            static const char *names[3] = {"dq", "dk", "dv"};
            for (int g = 0; g < 3; g++)
                CHECK_CLOSE(grads + g * per, grads_ref + g * per, per, 1e-5, "%s attention case %d %s", levels[l], ci,
                            names[g]);
            free(qkv);
            free(dout);
            free(out);
            free(out_ref);
            free(grads);
            free(grads_ref);
            free(scratch);
        }
    }
}

TEST(cpu_simd_level_selection) {
    CHECK(cc_cpu_set_simd("scalar") == 0);
    CHECK(strcmp(cc_cpu_simd_name(), "scalar") == 0);
    CHECK(cc_cpu_set_simd("no-such-isa") != 0);
    CHECK(strstr(cc_last_error(), "no-such-isa") != NULL, "%s", cc_last_error());
    CHECK(cc_cpu_set_simd("auto") == 0);
    const char *best = cc_cpu_simd_name();
    CHECK(!strcmp(best, "avx512") || !strcmp(best, "avx2") || !strcmp(best, "scalar"), "%s", best);
}
