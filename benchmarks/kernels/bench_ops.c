/* bench_ops.c — times every CPU op (forward and backward) on ViT-B/32 shapes and on sizes above
 * the caches, plus this machine's measured copy bandwidth and SGEMM peak, in one run.
 *
 * usage: bench_ops [--threads N] [--rounds R] [--filter SUBSTRING] [--simd LEVEL]
 *
 * Prints one JSON object per line (benchmarks/kernels/report.py turns them, with PyTorch's
 * timings of the same ops from bench_ops.py, into the markdown table):
 *   {"kind":"copy","name":...,"bytes":B,"seconds":S}     memcpy of a buffer, bytes = read + written
 *   {"kind":"sgemm","name":...,"impl":...,"flops":F,"seconds":S}
 *   {"kind":"op","name":...,"shape":...,"bytes":B,"flops":F,"seconds":S}
 * Each time is the best of R rounds, a round being as many calls as fill ~10 ms (the machine is
 * shared: the best round is the least disturbed one). bytes = each input read once + each output
 * written once; flops only for attention (4·B·T²·C forward, 2.5× that backward; with a causal mask
 * T² becomes T(T+1)/2, the scores actually kept).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>
#include <omp.h>

#include "engine/util.h"
#include "kernels/cpu_ops.h"
#include "kernels/gemm.h"

#define DEFAULT_ROUNDS 9
#define ROUND_SECONDS 0.01
#define MAX_CALLS_PER_ROUND 100000
#define BIG_COPY_BYTES (256ll << 20) /* well above the 32 MiB L3: DRAM bandwidth */

static int rounds = DEFAULT_ROUNDS;
static const char *filter;

typedef void (*bench_fn)(void *ctx);

/* Best-of-rounds seconds per call of fn(ctx). */
static double time_calls(bench_fn fn, void *ctx) {
    fn(ctx); /* warm-up: page faults, caches, thread start */
    double t0 = cc_now();
    fn(ctx);
    double once = cc_now() - t0;
    int calls = once > 0 ? (int)(ROUND_SECONDS / once) : MAX_CALLS_PER_ROUND;
    if (calls < 1) calls = 1;
    if (calls > MAX_CALLS_PER_ROUND) calls = MAX_CALLS_PER_ROUND;
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double start = cc_now();
        for (int c = 0; c < calls; c++) fn(ctx);
        double per_call = (cc_now() - start) / calls;
        if (per_call < best) best = per_call;
    }
    return best;
}

static float *random_buffer(int64_t n, float scale, uint64_t seed) {
    float *x = cc_malloc_aligned((size_t)n * sizeof(float), "benchmark buffer");
    if (!x) {
        fprintf(stderr, "bench_ops: %s\n", cc_last_error());
        exit(1);
    }
    cc_rng rng;
    cc_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(2.0 * cc_rng_uniform(&rng) - 1.0) * 1.7320508f * scale; /* variance scale² */
    return x;
}

static int selected(const char *name) { return !filter || strstr(name, filter); }

/* ---------------------------------------------------------------- copy bandwidth and SGEMM */

typedef struct {
    char *src, *dst;
    size_t bytes;
} copy_ctx;

static void run_copy(void *p) {
    copy_ctx *c = p;
#pragma omp parallel num_threads(cc_get_threads())
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        size_t begin = c->bytes * t / n / 64 * 64, end = t == n - 1 ? c->bytes : c->bytes * (t + 1) / n / 64 * 64;
        memcpy(c->dst + begin, c->src + begin, end - begin);
    }
}

static void bench_copy(const char *name, size_t bytes) {
    if (!selected(name)) return;
    copy_ctx c = {cc_malloc_aligned(bytes, "copy source"), cc_malloc_aligned(bytes, "copy destination"), bytes};
    if (!c.src || !c.dst) exit(1);
    memset(c.src, 1, bytes);
    memset(c.dst, 2, bytes);
    double s = time_calls(run_copy, &c);
    printf("{\"kind\":\"copy\",\"name\":\"%s\",\"bytes\":%.0f,\"seconds\":%.9g}\n", name, 2.0 * (double)bytes, s);
    fflush(stdout);
    cc_free_aligned(c.src);
    cc_free_aligned(c.dst);
}

typedef struct {
    int64_t M, N, K;
    float *a, *b, *c;
} sgemm_ctx;

static void run_sgemm(void *p) {
    sgemm_ctx *g = p;
    cc_sgemm(0, 1, g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->K, 0.0f, g->c, g->N);
}

static void bench_sgemm(const char *name, int64_t M, int64_t N, int64_t K) {
    if (!selected(name)) return;
    sgemm_ctx g = {M, N, K, random_buffer(M * K, 1, 1), random_buffer(N * K, 1, 2), random_buffer(M * N, 1, 3)};
    double s = time_calls(run_sgemm, &g);
    printf("{\"kind\":\"sgemm\",\"name\":\"%s\",\"impl\":\"%s\",\"flops\":%.0f,\"seconds\":%.9g}\n", name,
           cc_gemm_impl_name(), 2.0 * M * N * K, s);
    fflush(stdout);
    cc_free_aligned(g.a);
    cc_free_aligned(g.b);
    cc_free_aligned(g.c);
}

/* ---------------------------------------------------------------- ops */

typedef struct {
    int64_t rows, width;      /* [rows, width] operands */
    int64_t bias;             /* add: 1 = b is one row broadcast */
    cc_act_kind act;
    int causal;
    cc_attention_shape att;
    float *x, *y, *dy, *out, *gamma, *beta, *params;
    int32_t *labels;
} op_ctx;

static void op_add(void *p) {
    op_ctx *c = p;
    int64_t n = c->rows * c->width;
    cc_cpu_add(c->x, c->y, c->out, n, c->bias ? c->width : n, 1.0f);
}
static void op_layernorm(void *p) {
    op_ctx *c = p;
    cc_cpu_layernorm_forward(c->x, c->gamma, c->beta, c->out, c->rows, c->width, 1e-5f);
}
static void op_layernorm_back(void *p) { /* what the engine runs: dx and (dgamma, dbeta) nodes */
    op_ctx *c = p;
    cc_cpu_layernorm_backward_x(c->dy, c->x, c->gamma, c->out, c->rows, c->width, 1e-5f);
    cc_cpu_layernorm_backward_params(c->dy, c->x, c->params, c->rows, c->width, 1e-5f);
}
static void op_softmax(void *p) {
    op_ctx *c = p;
    cc_cpu_softmax_forward(c->x, c->out, c->rows, c->width, 1.0f, c->causal ? c->width : 0);
}
static void op_softmax_back(void *p) {
    op_ctx *c = p;
    cc_cpu_softmax_backward(c->dy, c->y, c->out, c->rows, c->width, 1.0f);
}
static void op_act(void *p) {
    op_ctx *c = p;
    cc_cpu_act_forward(c->x, c->out, c->rows * c->width, c->act);
}
static void op_act_back(void *p) {
    op_ctx *c = p;
    cc_cpu_act_backward(c->dy, c->x, c->out, c->rows * c->width, c->act);
}
static void op_l2norm(void *p) {
    op_ctx *c = p;
    cc_cpu_l2norm_forward(c->x, c->out, c->rows, c->width, 1e-12f);
}
static void op_l2norm_back(void *p) {
    op_ctx *c = p;
    cc_cpu_l2norm_backward(c->dy, c->x, c->out, c->rows, c->width, 1e-12f);
}
static void op_cross_entropy(void *p) {
    op_ctx *c = p;
    c->params[0] = cc_cpu_cross_entropy_forward(c->x, c->labels, c->rows, c->width);
}
static void op_cross_entropy_back(void *p) {
    op_ctx *c = p;
    cc_cpu_cross_entropy_backward(1.0f, c->x, c->labels, c->out, c->rows, c->width);
}
static void op_attention(void *p) {
    op_ctx *c = p;
    int64_t per = c->att.batch * c->att.seq * c->att.width;
    cc_cpu_attention_forward(&c->att, c->x, c->x + per, c->x + 2 * per, c->out);
}
static void op_attention_back(void *p) {
    op_ctx *c = p;
    int64_t per = c->att.batch * c->att.seq * c->att.width;
    cc_cpu_attention_backward(&c->att, c->dy, c->x, c->x + per, c->x + 2 * per, c->out, c->out + per, c->out + 2 * per);
}
static void op_patchify(void *p) { /* rows = batch; [B, 3, 224, 224] in 32×32 patches */
    op_ctx *c = p;
    cc_cpu_patchify(c->x, c->out, c->rows, 3, 224, 224, 32);
}

static void report(const char *name, const char *shape, double bytes, double flops, bench_fn fn, op_ctx *c) {
    double s = time_calls(fn, c);
    printf("{\"kind\":\"op\",\"name\":\"%s\",\"shape\":\"%s\",\"bytes\":%.0f,\"flops\":%.0f,\"seconds\":%.9g}\n", name,
           shape, bytes, flops, s);
    fflush(stdout);
}

static void free_ctx(op_ctx *c) {
    cc_free_aligned(c->x);
    cc_free_aligned(c->y);
    cc_free_aligned(c->dy);
    cc_free_aligned(c->out);
    cc_free_aligned(c->gamma);
    cc_free_aligned(c->beta);
    cc_free_aligned(c->params);
    free(c->labels);
    memset(c, 0, sizeof *c);
}

/* [rows, width] buffers: x, y, dy, out (+ gamma, beta, params [2·width]) */
static op_ctx matrix_ctx(int64_t rows, int64_t width) {
    int64_t n = rows * width;
    op_ctx c = {.rows = rows, .width = width};
    c.x = random_buffer(n, 1.0f, 11);
    c.y = random_buffer(n, 1.0f, 12);
    c.dy = random_buffer(n, 1.0f, 13);
    c.out = random_buffer(n, 1.0f, 14);
    c.gamma = random_buffer(width, 1.0f, 15);
    c.beta = random_buffer(width, 1.0f, 16);
    c.params = random_buffer(2 * width, 1.0f, 17);
    return c;
}

static void bench_rowwise(int64_t rows, int64_t width) {
    char shape[64];
    snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)rows, (long long)width);
    double n = (double)rows * (double)width;
    op_ctx c = matrix_ctx(rows, width);
    if (selected("add")) report("add", shape, 12 * n, 0, op_add, &c);
    c.bias = 1;
    if (selected("add_bias")) report("add_bias", shape, 8 * n, 0, op_add, &c);
    c.bias = 0;
    if (selected("layernorm")) report("layernorm", shape, 8 * n, 0, op_layernorm, &c);
    if (selected("layernorm_backward")) report("layernorm_backward", shape, 12 * n, 0, op_layernorm_back, &c);
    free_ctx(&c);
}

static void bench_softmax(int64_t rows, int64_t width, int causal) {
    char shape[64];
    snprintf(shape, sizeof shape, "[%lld, %lld]%s", (long long)rows, (long long)width, causal ? " causal" : "");
    double n = (double)rows * (double)width;
    op_ctx c = matrix_ctx(rows, width);
    c.causal = causal;
    cc_cpu_softmax_forward(c.x, c.y, rows, width, 1.0f, 0);
    if (selected("softmax")) report(causal ? "softmax_causal" : "softmax", shape, 8 * n, 0, op_softmax, &c);
    if (!causal && selected("softmax_backward")) report("softmax_backward", shape, 12 * n, 0, op_softmax_back, &c);
    free_ctx(&c);
}

static void bench_activations(int64_t rows, int64_t width) {
    static const struct {
        const char *name;
        cc_act_kind kind;
    } acts[] = {{"gelu_tanh", CC_ACT_GELU_TANH}, {"gelu_erf", CC_ACT_GELU_ERF}, {"quick_gelu", CC_ACT_QUICK_GELU}};
    char shape[64], name[64];
    snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)rows, (long long)width);
    double n = (double)rows * (double)width;
    op_ctx c = matrix_ctx(rows, width);
    for (int a = 0; a < 3; a++) {
        c.act = acts[a].kind;
        if (selected(acts[a].name)) report(acts[a].name, shape, 8 * n, 0, op_act, &c);
        snprintf(name, sizeof name, "%s_backward", acts[a].name);
        if (selected(name)) report(name, shape, 12 * n, 0, op_act_back, &c);
    }
    free_ctx(&c);
}

static void bench_attention(int64_t batch, int64_t seq, int64_t width, int64_t heads, int causal) {
    if (!selected("attention")) return;
    char shape[96];
    snprintf(shape, sizeof shape, "[%lld, %lld, %lld] %lld heads%s", (long long)batch, (long long)seq, (long long)width,
             (long long)heads, causal ? " causal" : "");
    int64_t per = batch * seq * width;
    op_ctx c = {0};
    c.x = random_buffer(3 * per, 1.0f, 21); /* q, k, v: three contiguous [B, T, C] tensors */
    c.dy = random_buffer(per, 1.0f, 22);
    c.out = random_buffer(3 * per, 1.0f, 23);
    c.att = (cc_attention_shape){.batch = batch, .seq = seq, .width = width, .n_heads = heads, .q_row_stride = width,
                                 .k_row_stride = width, .v_row_stride = width,
                                 .scale = 1.0f / sqrtf((float)(width / heads)), .causal = causal};
    /* QKᵀ and P·V, 2·T·T·d each per head; with a causal mask only the T(T+1)/2 kept scores count */
    double flops = 4.0 * batch * width * (causal ? seq * (seq + 1) / 2.0 : (double)seq * seq);
    report(causal ? "attention_causal" : "attention", shape, 16.0 * per, flops, op_attention, &c);
    if (selected("attention_backward"))
        report(causal ? "attention_causal_backward" : "attention_backward", shape, 28.0 * per, 2.5 * flops,
               op_attention_back, &c);
    free_ctx(&c);
}

static void bench_small_ops(void) {
    op_ctx c = matrix_ctx(1024, 512);
    double n = 1024.0 * 512;
    if (selected("l2norm")) report("l2norm", "[1024, 512]", 8 * n, 0, op_l2norm, &c);
    if (selected("l2norm_backward")) report("l2norm_backward", "[1024, 512]", 12 * n, 0, op_l2norm_back, &c);
    free_ctx(&c);
    c = matrix_ctx(256, 256);
    c.labels = malloc(256 * sizeof(int32_t));
    for (int i = 0; i < 256; i++) c.labels[i] = i;
    for (int i = 0; i < 256 * 256; i++) c.x[i] *= 10.0f;
    if (selected("cross_entropy")) report("cross_entropy", "[256, 256]", 4.0 * 256 * 256, 0, op_cross_entropy, &c);
    if (selected("cross_entropy_backward"))
        report("cross_entropy_backward", "[256, 256]", 8.0 * 256 * 256, 0, op_cross_entropy_back, &c);
    free_ctx(&c);
    if (selected("patchify")) {
        int64_t n_img = 32 * 3 * 224 * 224;
        c = (op_ctx){.rows = 32};
        c.x = random_buffer(n_img, 1.0f, 31);
        c.out = random_buffer(n_img, 1.0f, 32);
        report("patchify", "[32, 3, 224, 224] / 32", 8.0 * n_img, 0, op_patchify, &c);
        free_ctx(&c);
    }
}

int main(int argc, char **argv) {
    int threads = 0;
    const char *simd = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--simd") && i + 1 < argc) simd = argv[++i];
        else {
            fprintf(stderr, "usage: bench_ops [--threads N] [--rounds R] [--filter SUBSTRING] [--simd LEVEL]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    cc_set_threads(threads);
    if (simd && cc_cpu_set_simd(simd) != 0) {
        fprintf(stderr, "bench_ops: %s\n", cc_last_error());
        return 1;
    }
    printf("{\"kind\":\"info\",\"threads\":%d,\"simd\":\"%s\",\"gemm\":\"%s\"}\n", cc_get_threads(), cc_cpu_simd_name(),
           cc_gemm_impl_name());
    bench_copy("copy 4.9 MB", 1600 * 768 * 4);
    bench_copy("copy 19.7 MB", 1600 * 3072 * 4);
    bench_copy("copy 50.3 MB", 16384 * 768 * 4); /* the size of each operand of the "above L3" shapes */
    bench_copy("copy 256 MB", BIG_COPY_BYTES);
    bench_sgemm("sgemm 1600x3072x768", 1600, 3072, 768);
    bench_sgemm("sgemm 2048x2048x2048", 2048, 2048, 2048);
    /* ViT-B/32 at batch 32: 1600 tokens of width 768, MLP width 3072 */
    bench_rowwise(1600, 768);
    bench_activations(1600, 3072);
    bench_softmax(32 * 12 * 50, 50, 0);
    bench_softmax(32 * 8 * 77, 77, 0);
    bench_softmax(32 * 8 * 77, 77, 1);
    bench_attention(32, 50, 768, 12, 0);
    bench_attention(1, 50, 768, 12, 0);
    bench_attention(32, 77, 512, 8, 1);
    bench_small_ops();
    /* above the 32 MiB L3: each operand 50 MB */
    bench_rowwise(16384, 768);
    bench_activations(4096, 3072);
    bench_softmax(262144, 50, 0);
    return 0;
}
