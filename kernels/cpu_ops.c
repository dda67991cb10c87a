/* cpu_ops.c — the CPU kernels' entry points (see cpu_ops.h).
 *
 * Each op takes the kernel table of the best SIMD level this CPU runs (AVX-512, AVX2+FMA, or the
 * portable scalar reference; see cpu_kernels.h), splits its work into one contiguous chunk per
 * OpenMP thread when the work pays for waking the other threads (tiny shapes, like batch-1
 * embedding, stay on the calling thread), and runs each chunk through the table. The ops that
 * remain simple loops here (fill, sums, gathers, layout copies) are vectorised by the compiler:
 * CC_VEC compiles them for AVX-512, AVX2 and baseline, chosen at load time. Reductions over
 * whole tensors accumulate in double.
 */
#include "kernels/cpu_ops.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_ops_ref.h"
#include "kernels/gemm.h"

#define CC_VEC __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define PARALLEL_MIN_ELEMENTS 32768 /* simple loops below this many elements stay on one thread */
#define PARALLEL_MIN_ROWS 8
/* Memory traffic (bytes read + written, or its equivalent in compute) below which one thread
 * is done before a second one would be woken and synchronised (a few microseconds). */
#define PARALLEL_MIN_BYTES (512 * 1024)
#define TRANSCENDENTAL_COST 4   /* an activation element costs about as much as 4 copied ones */
#define ATTENTION_FLOP_COST 0.25 /* attention: bytes-equivalent per flop for threads_for */
#define CHUNK_ALIGN 16          /* elementwise chunks start on 64-byte (16-float) boundaries */
#define FALLBACK_SCRATCH 4096   /* floats on the stack for the reference attention if malloc fails */

/* ---------------------------------------------------------------- SIMD level */

static const cc_cpu_kernels *active_kernels;

/* The table for a level name (NULL or "auto": the best this CPU runs); NULL if unavailable. */
static const cc_cpu_kernels *kernels_by_name(const char *name) {
    int best = !name || !name[0] || !strcmp(name, "auto");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                     __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (has_avx512 && (best || !strcmp(name, "avx512"))) return &cc_cpu_kernels_avx512;
    if (has_avx2 && (best || !strcmp(name, "avx2"))) return &cc_cpu_kernels_avx2;
#endif
    if (best || !strcmp(name, "scalar")) return &cc_cpu_kernels_scalar;
    return NULL;
}

static const cc_cpu_kernels *kernels(void) {
    const cc_cpu_kernels *k = __atomic_load_n(&active_kernels, __ATOMIC_ACQUIRE);
    if (k) return k;
    const char *env = getenv("CLIPC_SIMD");
    k = kernels_by_name(env);
    if (!k) {
        fprintf(stderr, "clipc: CLIPC_SIMD=%s is not available on this CPU (avx512, avx2, scalar or auto); "
                        "using the best level\n", env);
        k = kernels_by_name(NULL);
    }
    __atomic_store_n(&active_kernels, k, __ATOMIC_RELEASE);
    return k;
}

const char *cc_cpu_simd_name(void) { return kernels()->name; }

int cc_cpu_set_simd(const char *name) {
    const cc_cpu_kernels *k = kernels_by_name(name);
    if (!k) {
        cc_set_error("SIMD level '%s' is not available on this CPU (avx512, avx2, scalar or auto)", name);
        return -1;
    }
    __atomic_store_n(&active_kernels, k, __ATOMIC_RELEASE);
    return 0;
}

void cc_cpu_vexp(const float *x, float *y, int64_t n) { kernels()->exp(x, y, n); }
void cc_cpu_verf(const float *x, float *y, int64_t n) { kernels()->erf(x, y, n); }
void cc_cpu_vtanh(const float *x, float *y, int64_t n) { kernels()->tanh(x, y, n); }

/* ---------------------------------------------------------------- threading */

/* Threads worth using for `bytes` of traffic that splits into at most `units` pieces. */
static int threads_for(double bytes, int64_t units) {
    if (units < 2 || bytes < PARALLEL_MIN_BYTES || omp_in_parallel()) return 1;
    int n = cc_get_threads();
    return n < units ? n : (int)units;
}

/* This thread's share [begin, end) of [0, total) inside a parallel region. */
static void thread_range(int64_t total, int64_t *begin, int64_t *end) {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    *begin = total * t / n;
    *end = total * (t + 1) / n;
}

/* Runs the statements after the arguments once per thread with `begin`/`end` set to that
 * thread's range of [0, units); on the calling thread alone when threads_for says 1. */
#define PARALLEL_RANGES(bytes, units, begin, end, ...)                                                 \
    do {                                                                                               \
        int nt_ = threads_for((bytes), (units));                                                       \
        if (nt_ <= 1) {                                                                                \
            int64_t begin = 0, end = (units);                                                          \
            __VA_ARGS__;                                                                               \
        } else {                                                                                       \
            _Pragma("omp parallel num_threads(nt_)") {                                                 \
                int64_t begin, end;                                                                    \
                thread_range((units), &begin, &end);                                                   \
                __VA_ARGS__;                                                                           \
            }                                                                                          \
        }                                                                                              \
    } while (0)

/* Elementwise ranges over blocks of CHUNK_ALIGN elements: offset and count of this block range. */
#define BLOCKS(n) (((n) + CHUNK_ALIGN - 1) / CHUNK_ALIGN)
#define BLOCK_OFFSET(begin) ((begin) * CHUNK_ALIGN)
#define BLOCK_COUNT(begin, end, n) (((end) * CHUNK_ALIGN < (n) ? (end) * CHUNK_ALIGN : (n)) - (begin) * CHUNK_ALIGN)

/* ---------------------------------------------------------------- elementwise */

void cc_cpu_add(const float *a, const float *b, float *out, int64_t n, int64_t nb, float beta) {
    const cc_cpu_kernels *k = kernels();
    if (nb == n) {
        PARALLEL_RANGES(12.0 * n, BLOCKS(n), begin, end, {
            int64_t o = BLOCK_OFFSET(begin), c = BLOCK_COUNT(begin, end, n);
            k->add(a + o, b + o, out + o, c, c, beta);
        });
    } else { /* chunks of whole periods of b */
        PARALLEL_RANGES(8.0 * n, n / nb, begin, end, k->add(a + begin * nb, b, out + begin * nb, (end - begin) * nb, nb, beta));
    }
}

void cc_cpu_mul(const float *a, const float *b, float *out, int64_t n) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->mul(a + o, b + o, out + o, BLOCK_COUNT(begin, end, n));
    });
}

void cc_cpu_scale(const float *x, float *out, int64_t n, float c) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->scale(x + o, out + o, BLOCK_COUNT(begin, end, n), c);
    });
}

void cc_cpu_exp(const float *x, float *out, int64_t n) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * TRANSCENDENTAL_COST * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->exp(x + o, out + o, BLOCK_COUNT(begin, end, n));
    });
}

void cc_cpu_accumulate(float *dst, const float *src, int64_t n) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->accumulate(dst + o, src + o, BLOCK_COUNT(begin, end, n));
    });
}

void cc_cpu_act_forward(const float *x, float *y, int64_t n, cc_act_kind kind) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * TRANSCENDENTAL_COST * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->act_forward(x + o, y + o, BLOCK_COUNT(begin, end, n), kind);
    });
}

void cc_cpu_act_backward(const float *dy, const float *x, float *dx, int64_t n, cc_act_kind kind) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * TRANSCENDENTAL_COST * n, BLOCKS(n), begin, end, {
        int64_t o = BLOCK_OFFSET(begin);
        k->act_backward(dy + o, x + o, dx + o, BLOCK_COUNT(begin, end, n), kind);
    });
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

CC_VEC void cc_cpu_fill(float *out, int64_t n, float value) {
#pragma omp parallel for simd if (n > PARALLEL_MIN_ELEMENTS)
    for (int64_t i = 0; i < n; i++) out[i] = value;
}


/* ---------------------------------------------------------------- row-wise */

void cc_cpu_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y, int64_t rows,
                              int64_t width, float eps) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * rows * width, rows, begin, end,
                    k->layernorm_forward(x + begin * width, gamma, beta, y + begin * width, end - begin, width, eps));
}

void cc_cpu_layernorm_backward_x(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows,
                                 int64_t width, float eps) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * rows * width, rows, begin, end,
                    k->layernorm_backward_x(dy + begin * width, x + begin * width, gamma, dx + begin * width,
                                            end - begin, width, eps));
}

/* dgamma = Σ_rows dy·x̂, dbeta = Σ_rows dy: rows split over threads, each with double partials. */
void cc_cpu_layernorm_backward_params(const float *dy, const float *x, float *dgamma_dbeta, int64_t rows,
                                      int64_t width, float eps) {
    const cc_cpu_kernels *k = kernels();
    int nt = threads_for(8.0 * rows * width, rows);
    double *partial = calloc((size_t)nt * 2 * (size_t)width, sizeof(double));
    if (!partial) { /* out of memory: one thread, float accumulation straight into the output */
        memset(dgamma_dbeta, 0, (size_t)(2 * width) * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * width, *dyr = dy + r * width;
            float mean = 0, var = 0;
            for (int64_t i = 0; i < width; i++) mean += xr[i];
            mean /= (float)width;
            for (int64_t i = 0; i < width; i++) var += (xr[i] - mean) * (xr[i] - mean);
            float rstd = 1.0f / sqrtf(var / (float)width + eps);
            for (int64_t i = 0; i < width; i++) {
                dgamma_dbeta[i] += dyr[i] * ((xr[i] - mean) * rstd);
                dgamma_dbeta[width + i] += dyr[i];
            }
        }
        return;
    }
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t begin, end;
        thread_range(rows, &begin, &end);
        double *dgamma = partial + (size_t)omp_get_thread_num() * 2 * (size_t)width;
        k->layernorm_backward_params(dy + begin * width, x + begin * width, dgamma, dgamma + width, end - begin, width, eps);
    }
    for (int64_t i = 0; i < 2 * width; i++) {
        double total = 0;
        for (int t = 0; t < nt; t++) total += partial[(size_t)t * 2 * (size_t)width + (size_t)i];
        dgamma_dbeta[i] = (float)total;
    }
    free(partial);
}

void cc_cpu_softmax_forward(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t causal_period) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * TRANSCENDENTAL_COST * rows * width, rows, begin, end,
                    k->softmax_forward(x + begin * width, y + begin * width, end - begin, width, scale, causal_period,
                                       begin));
}

void cc_cpu_softmax_backward(const float *dy, const float *y, float *dx, int64_t rows, int64_t width, float scale) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * rows * width, rows, begin, end,
                    k->softmax_backward(dy + begin * width, y + begin * width, dx + begin * width, end - begin, width,
                                        scale));
}

void cc_cpu_l2norm_forward(const float *x, float *y, int64_t rows, int64_t width, float eps) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(8.0 * rows * width, rows, begin, end,
                    k->l2norm_forward(x + begin * width, y + begin * width, end - begin, width, eps));
}

void cc_cpu_l2norm_backward(const float *dy, const float *x, float *dx, int64_t rows, int64_t width, float eps) {
    const cc_cpu_kernels *k = kernels();
    PARALLEL_RANGES(12.0 * rows * width, rows, begin, end,
                    k->l2norm_backward(dy + begin * width, x + begin * width, dx + begin * width, end - begin, width,
                                       eps));
}

/* ---------------------------------------------------------------- cross-entropy */

int cc_cpu_check_labels(const int32_t *labels, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        if (labels[r] < 0 || labels[r] >= cols) {
            cc_set_error("cross_entropy: label %d of row %lld is outside [0, %lld)", labels[r], (long long)r, (long long)cols);
            return -1;
        }
    return 0;
}

float cc_cpu_cross_entropy_forward(const float *logits, const int32_t *labels, int64_t rows, int64_t cols) {
    const cc_cpu_kernels *k = kernels();
    double total = 0;
    int nt = threads_for(4.0 * TRANSCENDENTAL_COST * rows * cols, rows);
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(+ : total)
    {
        int64_t begin, end;
        thread_range(rows, &begin, &end);
        total += k->cross_entropy_forward(logits + begin * cols, labels + begin, end - begin, cols);
    }
    return (float)(total / (double)rows);
}

void cc_cpu_cross_entropy_backward(float dloss, const float *logits, const int32_t *labels, float *dlogits,
                                   int64_t rows, int64_t cols) {
    const cc_cpu_kernels *k = kernels();
    float per_row = dloss / (float)rows;
    PARALLEL_RANGES(8.0 * TRANSCENDENTAL_COST * rows * cols, rows, begin, end,
                    k->cross_entropy_backward(per_row, logits + begin * cols, labels + begin, dlogits + begin * cols,
                                              end - begin, cols));
}

/* ---------------------------------------------------------------- attention */

int64_t cc_attention_scratch_floats(const cc_attention_shape *s) {
    int64_t head_dim = s->width / s->n_heads;
    int64_t t16 = (s->seq + 15) / 16 * 16, d16 = (head_dim + 15) / 16 * 16;
    /* two [head_dim, T16] panels, two [T, T16] panels, three [T, D16] packed operands */
    return 2 * head_dim * t16 + 2 * s->seq * t16 + 3 * s->seq * d16 + 2 * s->seq + 64;
}

static double attention_flops(const cc_attention_shape *s) {
    return 4.0 * (double)s->batch * (double)s->seq * (double)s->seq * (double)s->width;
}

/* Runs the attention kernel over (batch, head) pairs split across threads, each thread with its
 * own scratch. On allocation failure, the reference kernel with a stack buffer (one thread). */
#define ATTENTION_OVER_HEADS(flop_scale, CALL)                                                         \
    do {                                                                                               \
        int64_t pairs_ = s->batch * s->n_heads, per_thread_ = cc_attention_scratch_floats(s);          \
        int nt_ = threads_for(ATTENTION_FLOP_COST * (flop_scale) * attention_flops(s), pairs_);        \
        float *all_ = cc_malloc_aligned((size_t)(nt_ * per_thread_) * sizeof(float), "attention scratch"); \
        while (!all_ && nt_ > 1) { /* fewer threads, less scratch */                                   \
            nt_ /= 2;                                                                                  \
            all_ = cc_malloc_aligned((size_t)(nt_ * per_thread_) * sizeof(float), "attention scratch");  \
        }                                                                                              \
        if (!all_) {                                                                                   \
            float stack_[FALLBACK_SCRATCH];                                                            \
            float *heap_ = 2 * s->seq + 64 > FALLBACK_SCRATCH                                          \
                               ? malloc((size_t)(2 * s->seq + 64) * sizeof(float)) : NULL;             \
            if (2 * s->seq + 64 > FALLBACK_SCRATCH && !heap_) {                                        \
                fprintf(stderr, "clipc: out of memory for attention scratch: %s\n", cc_last_error());  \
                abort();                                                                               \
            }                                                                                          \
            const cc_cpu_kernels *k_ = &cc_cpu_kernels_scalar;                                         \
            float *scratch_ = heap_ ? heap_ : stack_;                                                  \
            int64_t begin_ = 0, end_ = pairs_;                                                         \
            CALL;                                                                                      \
            free(heap_);                                                                               \
            break;                                                                                     \
        }                                                                                              \
        const cc_cpu_kernels *k_ = kernels();                                                          \
        _Pragma("omp parallel num_threads(nt_) if (nt_ > 1)") {                                       \
            int64_t begin_, end_;                                                                      \
            thread_range(pairs_, &begin_, &end_);                                                      \
            float *scratch_ = all_ + (size_t)omp_get_thread_num() * (size_t)per_thread_;              \
            CALL;                                                                                      \
        }                                                                                              \
        cc_free_aligned(all_);                                                                         \
    } while (0)

void cc_cpu_attention_forward(const cc_attention_shape *s, const float *q, const float *k, const float *v, float *out) {
    ATTENTION_OVER_HEADS(1.0, k_->attention_forward(s, q, k, v, out, begin_, end_, scratch_));
}

void cc_cpu_attention_backward(const cc_attention_shape *s, const float *dout, const float *q, const float *k,
                               const float *v, float *dq, float *dk, float *dv) {
    ATTENTION_OVER_HEADS(2.5, k_->attention_backward(s, dout, q, k, v, dq, dk, dv, begin_, end_, scratch_));
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

/* ---------------------------------------------------------------- SigLIP loss */

#define SIGLIP_BLOCK_ROWS 64 /* rows of the n × n logits formed at a time */

/* -log sigmoid(x) = softplus(-x), without overflow */
static inline double neg_log_sigmoid(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }
static inline double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

int cc_cpu_siglip_forward(const float *img, const float *txt, int64_t n, int64_t dim, float log_scale, float bias,
                          double *loss) {
    int64_t block = n < SIGLIP_BLOCK_ROWS ? n : SIGLIP_BLOCK_ROWS;
    float *cosines = cc_malloc((size_t)(block * n) * sizeof(float), "siglip logits block");
    if (!cosines) return -1;
    double t = exp((double)log_scale), total = 0;
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        int64_t rows = n - i0 < block ? n - i0 : block;
        cc_sgemm(0, 1, rows, n, dim, 1.0f, img + i0 * dim, dim, txt, dim, 0.0f, cosines, n);
#pragma omp parallel for reduction(+ : total) if (rows * n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) {
                double logit = t * cosines[r * n + j] + bias;
                total += neg_log_sigmoid(i0 + r == j ? logit : -logit);
            }
    }
    free(cosines);
    *loss = total / (double)n;
    return 0;
}

/* d loss / d logit_ij = -(z/n) sigmoid(-z·logit); logit = t·cos + b, so dimg_i = t Σ_j G_ij txt_j,
 * dtxt_j = t Σ_i G_ij img_i, d log_scale = t Σ G_ij cos_ij, d bias = Σ G_ij. */
int cc_cpu_siglip_backward(float dloss, const float *img, const float *txt, int64_t n, int64_t dim, float log_scale,
                           float bias, float *dimg, float *dtxt, float *dparams) {
    int64_t block = n < SIGLIP_BLOCK_ROWS ? n : SIGLIP_BLOCK_ROWS;
    float *grad = cc_malloc((size_t)(block * n) * sizeof(float), "siglip gradient block");
    if (!grad) return -1;
    double t = exp((double)log_scale), per_pair = (double)dloss / (double)n, d_scale = 0, d_bias = 0;
    for (int64_t i0 = 0; i0 < n; i0 += block) {
        int64_t rows = n - i0 < block ? n - i0 : block;
        cc_sgemm(0, 1, rows, n, dim, 1.0f, img + i0 * dim, dim, txt, dim, 0.0f, grad, n);
#pragma omp parallel for reduction(+ : d_scale, d_bias) if (rows * n > PARALLEL_MIN_ELEMENTS / 8)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < n; j++) {
                double cosine = grad[r * n + j], logit = t * cosine + bias;
                double z = i0 + r == j ? 1.0 : -1.0, g = -z * per_pair * sigmoid(-z * logit);
                d_scale += g * cosine;
                d_bias += g;
                grad[r * n + j] = (float)g;
            }
        cc_sgemm(0, 0, rows, dim, n, (float)t, grad, n, txt, dim, 0.0f, dimg + i0 * dim, dim);
        cc_sgemm(1, 0, n, dim, rows, (float)t, grad, n, img + i0 * dim, dim, i0 == 0 ? 0.0f : 1.0f, dtxt, dim);
    }
    free(grad);
    dparams[0] = (float)(t * d_scale);
    dparams[1] = (float)d_bias;
    return 0;
}
