/* check_ops.c — the CUDA backend against the CPU backend, op by op and on whole graphs.
 *
 * usage: check_ops [--precision f32|bf16|both] [--quick] [--seed N] [--filter SUBSTR] [--table FILE]
 *
 * For every op (the cases of tests/test_ops.c plus odd shapes, every attention kernel variant,
 * causal and not, strided q/k/v views, 4-D and non-uniform batched matmuls, fused GEMM epilogues)
 * it draws fresh random inputs, builds the same graph (op -> dot with a random dy -> backward) on
 * both backends, and compares the output and every input gradient by max|cuda - cpu| / max|cpu|.
 * Each CUDA graph is computed three times (eager, captured + replayed, replayed) and every result
 * is compared. Then transformer-block graphs (with gradient accumulation), AdamW and the global
 * sum of squares, bf16 weight-shadow refresh after parameter writes, and bad input (ids, labels,
 * impossible allocations) that must fail with a message.
 *
 * Tolerances: f32 precision 1e-5 everywhere (cuBLAS without TF32, exact f32 kernels). bf16
 * precision: 3e-2 for results that go through a GEMM or attention (bf16 operands, f32
 * accumulation), 5e-2 for the transformer-block gradients, 1e-5 for the rest (f32 kernels).
 * Prints one line per check and a summary table; exit status 0 only when everything passed.
 * Built in CUDA=1 builds (real GPU) and in every build against the host fake (tests/gpu/fake).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cuda/backend_cuda.h"
#include "engine/graph.h"
#include "engine/util.h"

#define MAX_INPUTS 4
#define TOL_F32 1e-5
#define TOL_BF16_GEMM 3e-2
#define TOL_BF16_BLOCK 5e-2
#define ZERO_GRAD_FLOOR 1e-3 /* gradients below this fraction of the largest are compared absolutely */

typedef struct {
    int ndim;
    int64_t shape[CC_MAX_DIMS];
    int int_range; /* > 0: int32 ids in [0, int_range) */
    float scale, offset;
} input_spec;

typedef cc_tensor *(*build_fn)(cc_graph *g, cc_tensor **in);

typedef struct {
    const char *name;
    int n_inputs;
    input_spec in[MAX_INPUTS];
    build_fn build;
    int gemm; /* goes through a GEMM or attention: bf16 tolerance applies */
} op_case;

/* ---- results table ---- */
typedef struct {
    char name[64];
    char precision[8];
    double forward, grads, tol;
    int pass;
    char note[96];
} result_row;

static result_row *rows;
static int n_rows, cap_rows, n_failed;
static int quick;

static void record(const char *name, const char *precision, double forward, double grads, double tol, int pass,
                   const char *note) {
    if (n_rows == cap_rows) {
        cap_rows = cap_rows ? cap_rows * 2 : 64;
        rows = realloc(rows, (size_t)cap_rows * sizeof *rows);
        if (!rows) exit(2);
    }
    result_row *r = &rows[n_rows++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->precision, sizeof r->precision, "%s", precision);
    r->forward = forward;
    r->grads = grads;
    r->tol = tol;
    r->pass = pass;
    snprintf(r->note, sizeof r->note, "%s", note ? note : "");
    if (!pass) n_failed++;
    printf("%-4s %-34s %-5s fwd %-9.2e grad %-9.2e tol %.0e %s\n", pass ? "ok" : "FAIL", name, precision, forward, grads,
           tol, note ? note : "");
    fflush(stdout);
}

/* max|a-b| / max(max|b|, floor); NaN or Inf anywhere -> infinity. */
static double rel_error(const float *a, const float *b, int64_t n, double floor) {
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]);
        if (d > max_diff) max_diff = d;
        if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
    }
    if (max_ref < floor) max_ref = floor;
    if (max_diff == 0) return 0;
    return max_ref > 0 ? max_diff / max_ref : INFINITY;
}

static double max_abs(const float *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)x[i]) > m) m = fabs((double)x[i]);
    return m;
}

/* ---- op builders ---- */
static cc_tensor *b_matmul_nn(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 0, 0); }
static cc_tensor *b_matmul_nt(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 0, 1); }
static cc_tensor *b_matmul_tn(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 1, 0); }
static cc_tensor *b_matmul_tt(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 1, 1); }
static cc_tensor *b_matmul_scaled(cc_graph *g, cc_tensor **in) { return cc_matmul_scaled(g, in[0], in[1], 0, 1, 0.125f); }
static cc_tensor *b_matmul_4d_perm(cc_graph *g, cc_tensor **in) {
    /* [3,2,T,C] viewed as [2,3,T,C]: batch strides not collapsible -> one GEMM call per outer index */
    return cc_matmul(g, cc_transpose(g, in[0], 0, 1), in[1], 0, 0);
}
static cc_tensor *b_linear(cc_graph *g, cc_tensor **in) { return cc_linear(g, in[0], in[1], in[2]); }
static cc_tensor *b_linear_gelu(cc_graph *g, cc_tensor **in) {
    return cc_act(g, cc_linear(g, in[0], in[1], in[2]), CC_ACT_GELU_TANH);
}
static cc_tensor *b_linear_quick_gelu(cc_graph *g, cc_tensor **in) {
    return cc_act(g, cc_linear(g, in[0], in[1], in[2]), CC_ACT_QUICK_GELU);
}
static cc_tensor *b_add(cc_graph *g, cc_tensor **in) { return cc_add(g, in[0], in[1]); }
static cc_tensor *b_sub(cc_graph *g, cc_tensor **in) { return cc_sub(g, in[0], in[1]); }
static cc_tensor *b_mul(cc_graph *g, cc_tensor **in) { return cc_mul(g, in[0], in[1]); }
static cc_tensor *b_scale(cc_graph *g, cc_tensor **in) { return cc_scale(g, in[0], -0.37f); }
static cc_tensor *b_mul_scalar(cc_graph *g, cc_tensor **in) { return cc_mul_scalar(g, in[0], in[1]); }
static cc_tensor *b_exp(cc_graph *g, cc_tensor **in) { return cc_exp(g, in[0]); }
static cc_tensor *b_layernorm(cc_graph *g, cc_tensor **in) { return cc_layernorm(g, in[0], in[1], in[2], 1e-5f); }
static cc_tensor *b_layernorm_offset(cc_graph *g, cc_tensor **in) {
    /* a view at an odd element offset: the unaligned (generic) kernel path */
    cc_tensor *x = cc_slice(g, in[0], 1, 1, in[0]->shape[1] - 1);
    return cc_layernorm(g, x, in[1], in[2], 1e-5f);
}
static cc_tensor *b_softmax(cc_graph *g, cc_tensor **in) { return cc_softmax(g, in[0], 0.7f, 0); }
static cc_tensor *b_softmax_causal(cc_graph *g, cc_tensor **in) { return cc_softmax(g, in[0], 1.3f, 1); }
static float head_scale(const cc_tensor *q, int heads) { return 1.0f / sqrtf((float)(q->shape[2] / heads)); }
static cc_tensor *b_attention_h4(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 4, head_scale(in[0], 4), 0);
}
static cc_tensor *b_attention_h4_causal(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 4, head_scale(in[0], 4), 1);
}
static cc_tensor *b_attention_h2(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 2, head_scale(in[0], 2), 0);
}
static cc_tensor *b_attention_h2_causal(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 2, head_scale(in[0], 2), 1);
}
/* q, k, v: column slices of one fused [B, T, 3C] projection (row stride 3C) */
static cc_tensor *fused_attention(cc_graph *g, cc_tensor *x, int heads, int causal) {
    int64_t c = x->shape[2] / 3;
    cc_tensor *q = cc_slice(g, x, 2, 0, c), *k = cc_slice(g, x, 2, c, c), *v = cc_slice(g, x, 2, 2 * c, c);
    return cc_attention(g, q, k, v, heads, 1.0f / sqrtf((float)(c / heads)), causal);
}
static cc_tensor *b_attention_fused_h6_causal(cc_graph *g, cc_tensor **in) { return fused_attention(g, in[0], 6, 1); }
static cc_tensor *b_attention_fused_h4(cc_graph *g, cc_tensor **in) { return fused_attention(g, in[0], 4, 0); }
static cc_tensor *b_attention_fused_h2_causal(cc_graph *g, cc_tensor **in) { return fused_attention(g, in[0], 2, 1); }
static cc_tensor *b_gelu_tanh(cc_graph *g, cc_tensor **in) { return cc_act(g, in[0], CC_ACT_GELU_TANH); }
static cc_tensor *b_gelu_erf(cc_graph *g, cc_tensor **in) { return cc_act(g, in[0], CC_ACT_GELU_ERF); }
static cc_tensor *b_quick_gelu(cc_graph *g, cc_tensor **in) { return cc_act(g, in[0], CC_ACT_QUICK_GELU); }
static cc_tensor *b_get_rows(cc_graph *g, cc_tensor **in) { return cc_get_rows(g, in[0], in[1]); }
static cc_tensor *b_patchify_conv(cc_graph *g, cc_tensor **in) {
    cc_tensor *w = in[1];
    int64_t flat[2] = {w->shape[0], w->shape[1] * w->shape[2] * w->shape[3]};
    return cc_matmul(g, cc_patchify(g, in[0], (int)w->shape[2]), cc_reshape(g, w, 2, flat), 0, 1);
}
static cc_tensor *b_prepend_row(cc_graph *g, cc_tensor **in) { return cc_prepend_row(g, in[0], in[1]); }
static cc_tensor *b_l2norm(cc_graph *g, cc_tensor **in) { return cc_l2norm(g, in[0], 1e-12f); }
static cc_tensor *b_cross_entropy(cc_graph *g, cc_tensor **in) { return cc_cross_entropy(g, in[0], in[1]); }
static cc_tensor *b_sum(cc_graph *g, cc_tensor **in) { return cc_sum(g, in[0]); }
static cc_tensor *b_sum_to(cc_graph *g, cc_tensor **in) { return cc_sum_to(g, in[0], 2, in[0]->shape + 1); }
static cc_tensor *b_repeat(cc_graph *g, cc_tensor **in) {
    cc_tensor like = {.ndim = 3, .shape = {3, 37, in[0]->shape[0]}};
    return cc_repeat(g, in[0], &like);
}
static cc_tensor *b_dot(cc_graph *g, cc_tensor **in) { return cc_dot(g, in[0], in[1]); }
static cc_tensor *b_transpose_cont(cc_graph *g, cc_tensor **in) { return cc_cont(g, cc_transpose(g, in[0], 0, 2)); }
static cc_tensor *b_permute_matmul(cc_graph *g, cc_tensor **in) {
    return cc_matmul(g, cc_transpose(g, in[0], 1, 2), in[1], 0, 0);
}
static cc_tensor *b_slice(cc_graph *g, cc_tensor **in) { return cc_slice(g, in[0], 1, 3, 17); }
/* CLIP's contrastive head: l2-normalised embeddings, scaled similarity, cross-entropy both ways */
static cc_tensor *b_infonce(cc_graph *g, cc_tensor **in) {
    cc_tensor *a = cc_l2norm(g, in[0], 1e-12f), *b = cc_l2norm(g, in[1], 1e-12f);
    cc_tensor *logits = cc_matmul_scaled(g, a, b, 0, 1, 14.3f);
    cc_tensor *lt = cc_cont(g, cc_transpose(g, logits, 0, 1));
    return cc_add(g, cc_cross_entropy(g, logits, in[2]), cc_cross_entropy(g, lt, in[2]));
}

#define F(...) {__VA_ARGS__}
#define IN(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .scale = 1.0f}
#define INS(nd, sc, off, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .scale = sc, .offset = off}
#define IDS(n, range) {.ndim = 1, .shape = {n}, .int_range = range}

enum { B = 3, T = 37, C = 65 };

static const op_case cases[] = {
    {"matmul_nn", 2, {IN(3, B, T, C), IN(2, C, 29)}, b_matmul_nn, 1},
    {"matmul_nt", 2, {IN(3, B, T, C), IN(2, 29, C)}, b_matmul_nt, 1},
    {"matmul_tn", 2, {IN(2, C, T), IN(2, C, 29)}, b_matmul_tn, 1},
    {"matmul_tt", 2, {IN(2, C, T), IN(2, 29, C)}, b_matmul_tt, 1},
    {"matmul_batched", 2, {IN(3, B, T, C), IN(3, B, C, 29)}, b_matmul_nn, 1},
    {"matmul_batched_nt", 2, {IN(3, B, T, C), IN(3, B, 29, C)}, b_matmul_nt, 1},
    {"matmul_4d", 2, {IN(4, 2, 3, 13, 20), IN(4, 2, 3, 20, 9)}, b_matmul_nn, 1},
    {"matmul_4d_perm", 2, {IN(4, 3, 2, 13, 20), IN(4, 2, 3, 20, 9)}, b_matmul_4d_perm, 1},
    {"matmul_scaled", 2, {IN(2, 70, 48), IN(2, 33, 48)}, b_matmul_scaled, 1},
    {"linear", 3, {IN(3, B, T, C), IN(2, 29, C), IN(1, 29)}, b_linear, 1},
    {"linear_768", 3, {IN(2, 50, 768), INS(2, 0.05f, 0, 256, 768), IN(1, 256)}, b_linear, 1},
    {"linear_gelu_tanh", 3, {IN(3, 2, 50, 64), INS(2, 0.2f, 0, 128, 64), IN(1, 128)}, b_linear_gelu, 1},
    {"linear_quick_gelu", 3, {IN(3, 2, 50, 64), INS(2, 0.2f, 0, 128, 64), IN(1, 128)}, b_linear_quick_gelu, 1},
    {"add_same", 2, {IN(3, B, T, C), IN(3, B, T, C)}, b_add, 0},
    {"add_rows", 2, {IN(3, B, T, C), IN(2, T, C)}, b_add, 0},
    {"add_bias", 2, {IN(3, B, T, C), IN(1, C)}, b_add, 0},
    {"add_bias_vec4", 2, {IN(3, B, T, 64), IN(1, 64)}, b_add, 0},
    {"sub", 2, {IN(3, B, T, C), IN(1, C)}, b_sub, 0},
    {"mul", 2, {IN(3, B, T, C), IN(3, B, T, C)}, b_mul, 0},
    {"scale", 1, {IN(3, B, T, C)}, b_scale, 0},
    {"mul_scalar", 2, {IN(3, B, T, C), IN(1, 1)}, b_mul_scalar, 0},
    {"exp", 1, {IN(3, B, T, C)}, b_exp, 0},
    {"layernorm", 3, {INS(3, 2.0f, 0.5f, B, T, C), INS(1, 0.3f, 1.0f, C), IN(1, C)}, b_layernorm, 0},
    {"layernorm_768", 3, {INS(3, 2.0f, 0.5f, 4, 50, 768), INS(1, 0.3f, 1.0f, 768), IN(1, 768)}, b_layernorm, 0},
    {"layernorm_128", 3, {INS(2, 2.0f, 0.5f, 77, 128), INS(1, 0.3f, 1.0f, 128), IN(1, 128)}, b_layernorm, 0},
    {"layernorm_1100", 3, {INS(2, 2.0f, 0.5f, 9, 1100), INS(1, 0.3f, 1.0f, 1100), IN(1, 1100)}, b_layernorm, 0},
    {"layernorm_offset_view", 3, {INS(3, 2.0f, 0.5f, 2, 11, 64), INS(1, 0.3f, 1.0f, 64), IN(1, 64)}, b_layernorm_offset, 0},
    {"softmax", 1, {IN(3, B, T, C)}, b_softmax, 0},
    {"softmax_causal", 1, {IN(4, B, 5, T, T)}, b_softmax_causal, 0},
    {"attention_d12", 3, {IN(3, B, T, 48), IN(3, B, T, 48), IN(3, B, T, 48)}, b_attention_h4, 1},
    {"attention_d12_causal", 3, {IN(3, B, T, 48), IN(3, B, T, 48), IN(3, B, T, 48)}, b_attention_h4_causal, 1},
    {"attention_fused_d8_causal", 1, {IN(3, B, T, 144)}, b_attention_fused_h6_causal, 1},
    {"attention_d64_t70", 3, {IN(3, 2, 70, 256), IN(3, 2, 70, 256), IN(3, 2, 70, 256)}, b_attention_h4, 1},
    {"attention_d64_t70_causal", 3, {IN(3, 2, 70, 256), IN(3, 2, 70, 256), IN(3, 2, 70, 256)}, b_attention_h4_causal, 1},
    {"attention_fused_d64_t50", 1, {IN(3, 2, 50, 768)}, b_attention_fused_h4, 1},
    {"attention_fused_d32_t77_causal", 1, {IN(3, 2, 77, 192)}, b_attention_fused_h2_causal, 1},
    {"attention_d128_t45", 3, {IN(3, 1, 45, 256), IN(3, 1, 45, 256), IN(3, 1, 45, 256)}, b_attention_h2, 1},
    {"attention_d100_t33_causal", 3, {IN(3, 2, 33, 200), IN(3, 2, 33, 200), IN(3, 2, 33, 200)}, b_attention_h2_causal, 1},
    {"gelu_tanh", 1, {INS(3, 2.0f, 0, B, T, C)}, b_gelu_tanh, 0},
    {"gelu_erf", 1, {INS(3, 2.0f, 0, B, T, C)}, b_gelu_erf, 0},
    {"quick_gelu", 1, {INS(3, 2.0f, 0, B, T, C)}, b_quick_gelu, 0},
    {"get_rows", 2, {IN(2, 50, C), IDS(2 * T, 50)}, b_get_rows, 0},
    {"patchify_conv", 2, {IN(4, 2, 3, 32, 48), IN(4, C, 3, 8, 8)}, b_patchify_conv, 1},
    {"prepend_row", 2, {IN(3, B, T, C), IN(1, C)}, b_prepend_row, 0},
    {"l2norm", 1, {IN(2, T, C)}, b_l2norm, 0},
    {"cross_entropy", 2, {INS(2, 3.0f, 0, T, 29), IDS(T, 29)}, b_cross_entropy, 0},
    {"cross_entropy_wide", 2, {INS(2, 3.0f, 0, 24, 1000), IDS(24, 1000)}, b_cross_entropy, 0},
    {"infonce", 3, {IN(2, 24, 64), IN(2, 24, 64), IDS(24, 24)}, b_infonce, 1},
    {"sum", 1, {IN(3, B, T, C)}, b_sum, 0},
    {"sum_to", 1, {IN(3, B, T, C)}, b_sum_to, 0},
    {"repeat", 1, {IN(1, C)}, b_repeat, 0},
    {"dot", 2, {IN(3, B, T, C), IN(3, B, T, C)}, b_dot, 0},
    {"transpose_cont", 1, {IN(3, B, T, C)}, b_transpose_cont, 0},
    {"permute_matmul", 2, {IN(3, B, T, C), IN(3, B, T, 29)}, b_permute_matmul, 1},
    {"slice", 1, {IN(3, B, T, C)}, b_slice, 0},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- helpers ---- */

static void fill_random(cc_rng *rng, const input_spec *spec, void *data, int64_t n) {
    if (spec->int_range > 0) {
        for (int64_t i = 0; i < n; i++) ((int32_t *)data)[i] = (int32_t)cc_rng_below(rng, (uint64_t)spec->int_range);
    } else {
        for (int64_t i = 0; i < n; i++) ((float *)data)[i] = spec->offset + spec->scale * cc_rng_normal(rng);
    }
}

/* A standalone tensor on `be` (NULL = host) holding host data; float inputs are parameters. */
static cc_tensor *make_tensor(cc_backend *be, const input_spec *spec, const void *host, const char *name) {
    cc_tensor *t = cc_tensor_new(spec->int_range > 0 ? CC_I32 : CC_F32, spec->ndim, spec->shape, name);
    if (!t || cc_tensor_alloc(t, be) != 0) return NULL;
    if (spec->int_range == 0) t->flags |= CC_FLAG_PARAM;
    if (be ? be->upload(be, t->data, host, cc_nbytes(t)) != 0 : (memcpy(t->data, host, cc_nbytes(t)), 0)) return NULL;
    return t;
}

static float *download(const cc_tensor *t) {
    float *out = malloc(cc_nbytes(t) ? cc_nbytes(t) : 4);
    if (out && cc_tensor_download(t, out) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

typedef struct {
    cc_graph *g;
    cc_tensor *in[MAX_INPUTS];
    cc_tensor *out, *dy, *loss;
} built_case;

static int build_case(const op_case *oc, cc_backend *be, void *const *host_in, const float *dy, built_case *bc) {
    memset(bc, 0, sizeof *bc);
    for (int i = 0; i < oc->n_inputs; i++) {
        bc->in[i] = make_tensor(be, &oc->in[i], host_in[i], "input");
        if (!bc->in[i]) return -1;
    }
    bc->g = cc_graph_new();
    bc->out = cc_cont(bc->g, oc->build(bc->g, bc->in));
    if (!bc->out) {
        cc_set_error("%s", cc_graph_error(bc->g));
        return -1;
    }
    bc->dy = cc_input(bc->g, CC_F32, bc->out->ndim, bc->out->shape, "dy");
    bc->loss = cc_dot(bc->g, bc->out, bc->dy);
    cc_tensor *outputs[2] = {bc->out, bc->loss};
    if (cc_graph_build(bc->g, outputs, 2) != 0 || cc_graph_backward(bc->g, bc->loss) != 0 ||
        cc_graph_plan(bc->g, be ? be : cc_backend_cpu()) != 0 || cc_tensor_upload(bc->dy, dy) != 0)
        return -1;
    return 0;
}

static void free_case(built_case *bc, int n_inputs) {
    if (bc->g) cc_graph_free(bc->g);
    for (int i = 0; i < n_inputs; i++) cc_tensor_free(bc->in[i]);
}

/* Compares CUDA's output and gradients with the CPU's; returns the worst forward / grad error. */
static int compare_case(const op_case *oc, built_case *cpu, built_case *gpu, const float *ref_out, float *const *ref_grads,
                        double *fwd_err, double *grad_err) {
    float *got = download(gpu->out);
    if (!got) return -1;
    *fwd_err = rel_error(got, ref_out, cc_nelements(cpu->out), 0);
    free(got);
    *grad_err = 0;
    for (int i = 0; i < oc->n_inputs; i++) {
        if (!ref_grads[i]) continue;
        if (!gpu->in[i]->grad) {
            cc_set_error("input %d got no gradient on CUDA", i);
            return -1;
        }
        float *gg = download(gpu->in[i]->grad);
        if (!gg) return -1;
        double e = rel_error(gg, ref_grads[i], cc_nelements(cpu->in[i]), 0);
        if (e > *grad_err) *grad_err = e;
        free(gg);
    }
    return 0;
}

static void run_case(const op_case *oc, cc_backend *gpu_be, const char *precision, cc_rng *rng) {
    void *host_in[MAX_INPUTS] = {0};
    built_case cpu, gpu;
    float *ref_out = NULL, *ref_grads[MAX_INPUTS] = {0}, *dy = NULL;
    double tol = strcmp(precision, "bf16") == 0 && oc->gemm ? TOL_BF16_GEMM : TOL_F32;
    char note[96] = "";
    memset(&cpu, 0, sizeof cpu);
    memset(&gpu, 0, sizeof gpu);
    for (int i = 0; i < oc->n_inputs; i++) {
        int64_t n = 1;
        for (int d = 0; d < oc->in[i].ndim; d++) n *= oc->in[i].shape[d];
        host_in[i] = malloc((size_t)n * 4);
        fill_random(rng, &oc->in[i], host_in[i], n);
    }
    /* the CPU graph first, to know the output shape for dy */
    cc_graph *probe = cc_graph_new();
    cc_tensor *probe_in[MAX_INPUTS];
    for (int i = 0; i < oc->n_inputs; i++) probe_in[i] = make_tensor(NULL, &oc->in[i], host_in[i], "probe");
    cc_tensor *probe_out = oc->build(probe, probe_in);
    int64_t n_out = probe_out ? cc_nelements(probe_out) : 0;
    cc_graph_free(probe);
    for (int i = 0; i < oc->n_inputs; i++) cc_tensor_free(probe_in[i]);
    dy = malloc((size_t)(n_out ? n_out : 1) * 4);
    for (int64_t i = 0; i < n_out; i++) dy[i] = cc_rng_normal(rng);
    double fwd = INFINITY, grads = INFINITY;
    int pass = 0;
    if (build_case(oc, NULL, host_in, dy, &cpu) != 0 || cc_graph_compute(cpu.g) != 0) {
        snprintf(note, sizeof note, "CPU: %.80s", cc_last_error());
        goto done;
    }
    ref_out = download(cpu.out);
    for (int i = 0; i < oc->n_inputs; i++)
        if (cpu.in[i]->dtype == CC_F32 && cpu.in[i]->grad) ref_grads[i] = download(cpu.in[i]->grad);
    if (build_case(oc, gpu_be, host_in, dy, &gpu) != 0) {
        snprintf(note, sizeof note, "CUDA build: %.80s", cc_last_error());
        goto done;
    }
    /* eager, captured + replayed, replayed: each compared */
    fwd = grads = 0;
    int computes = quick ? 2 : 3;
    for (int run = 0; run < computes; run++) {
        double f, gr;
        if (cc_graph_compute(gpu.g) != 0 || compare_case(oc, &cpu, &gpu, ref_out, ref_grads, &f, &gr) != 0) {
            snprintf(note, sizeof note, "run %d: %.80s", run + 1, cc_last_error());
            fwd = grads = INFINITY;
            goto done;
        }
        if (f > fwd) fwd = f;
        if (gr > grads) grads = gr;
    }
    pass = fwd <= tol && grads <= tol;
done:
    record(oc->name, precision, fwd, grads, tol, pass, note);
    free_case(&cpu, oc->n_inputs);
    free_case(&gpu, oc->n_inputs);
    for (int i = 0; i < MAX_INPUTS; i++) {
        free(host_in[i]);
        free(ref_grads[i]);
    }
    free(ref_out);
    free(dy);
}

/* ---- transformer blocks (as tests/test_graph.c) ---- */

typedef struct {
    const char *name;
    int batch, seq, width, heads, hidden, layers, causal;
    cc_act_kind act;
    int fused_qkv;
} block_shape;

#define PARAMS_PER_LAYER 12

/* Pre-LN blocks: x + attn(LN(x)), then x + MLP(LN(x)). Params per layer: ln1 g,b; qkv w,b (fused
 * [3C, C] or three [C, C] in one tensor sliced); proj w,b; ln2 g,b; fc1 w,b; fc2 w,b. */
static cc_tensor *build_blocks(cc_graph *g, const block_shape *s, cc_tensor *x, cc_tensor **p) {
    cc_tensor *h = x;
    for (int l = 0; l < s->layers; l++) {
        cc_tensor **w = p + l * PARAMS_PER_LAYER;
        cc_tensor *a = cc_layernorm(g, h, w[0], w[1], 1e-5f);
        cc_tensor *qkv = cc_linear(g, a, w[2], w[3]);
        int64_t c = s->width;
        cc_tensor *q, *k, *v;
        if (s->fused_qkv) {
            q = cc_slice(g, qkv, 2, 0, c);
            k = cc_slice(g, qkv, 2, c, c);
            v = cc_slice(g, qkv, 2, 2 * c, c);
        } else {
            q = cc_cont(g, cc_slice(g, qkv, 2, 0, c));
            k = cc_cont(g, cc_slice(g, qkv, 2, c, c));
            v = cc_cont(g, cc_slice(g, qkv, 2, 2 * c, c));
        }
        cc_tensor *att = cc_attention(g, q, k, v, s->heads, 1.0f / sqrtf((float)(c / s->heads)), s->causal);
        h = cc_add(g, h, cc_linear(g, att, w[4], w[5]));
        cc_tensor *m = cc_layernorm(g, h, w[6], w[7], 1e-5f);
        m = cc_act(g, cc_linear(g, m, w[8], w[9]), s->act);
        h = cc_add(g, h, cc_linear(g, m, w[10], w[11]));
    }
    return cc_layernorm(g, h, p[s->layers * PARAMS_PER_LAYER], p[s->layers * PARAMS_PER_LAYER + 1], 1e-5f);
}

static int block_param_shape(const block_shape *s, int i, int64_t *shape) {
    int64_t c = s->width, f = s->hidden;
    if (i >= s->layers * PARAMS_PER_LAYER) {
        shape[0] = c;
        return 1;
    }
    switch (i % PARAMS_PER_LAYER) {
    case 0: case 1: case 5: case 6: case 7: case 11: shape[0] = c; return 1;
    case 2: shape[0] = 3 * c; shape[1] = c; return 2;
    case 3: shape[0] = 3 * c; return 1;
    case 4: shape[0] = c; shape[1] = c; return 2;
    case 8: shape[0] = f; shape[1] = c; return 2;
    case 9: shape[0] = f; return 1;
    default: shape[0] = c; shape[1] = f; return 2; /* 10: fc2 weight */
    }
}

/* Builds the block graph on a backend; with_acc: gradients go into grad_acc tensors. */
typedef struct {
    cc_graph *g;
    cc_tensor **params;
    int n_params;
    cc_tensor *x, *out, *loss;
} block_graph;

static int make_block_graph(const block_shape *s, cc_backend *be, float *const *host_params, const float *host_x,
                            const float *dy, int with_acc, block_graph *bg) {
    memset(bg, 0, sizeof *bg);
    bg->n_params = s->layers * PARAMS_PER_LAYER + 2;
    bg->params = calloc((size_t)bg->n_params, sizeof *bg->params);
    for (int i = 0; i < bg->n_params; i++) {
        input_spec spec = {0};
        spec.ndim = block_param_shape(s, i, spec.shape);
        bg->params[i] = make_tensor(be, &spec, host_params[i], "param");
        if (!bg->params[i]) return -1;
        if (with_acc) {
            cc_tensor *acc = cc_tensor_new(CC_F32, spec.ndim, spec.shape, "acc");
            if (!acc || cc_tensor_alloc(acc, be) != 0) return -1;
            if (be) {
                if (be->zero(be, acc->data, cc_nbytes(acc)) != 0) return -1;
            } else {
                memset(acc->data, 0, cc_nbytes(acc));
            }
            bg->params[i]->grad_acc = acc;
        }
    }
    input_spec xs = {.ndim = 3, .shape = {s->batch, s->seq, s->width}};
    bg->x = make_tensor(be, &xs, host_x, "x");
    if (!bg->x) return -1;
    bg->g = cc_graph_new();
    bg->out = build_blocks(bg->g, s, bg->x, bg->params);
    cc_tensor *dyt = cc_input(bg->g, CC_F32, 3, xs.shape, "dy");
    bg->loss = cc_dot(bg->g, bg->out, dyt);
    cc_tensor *outs[2] = {bg->out, bg->loss};
    if (!bg->out || cc_graph_build(bg->g, outs, 2) != 0 || cc_graph_backward(bg->g, bg->loss) != 0 ||
        cc_graph_plan(bg->g, be ? be : cc_backend_cpu()) != 0 || cc_tensor_upload(dyt, dy) != 0)
        return -1;
    return 0;
}

static void free_block_graph(block_graph *bg) {
    if (bg->g) cc_graph_free(bg->g);
    for (int i = 0; i < bg->n_params; i++)
        if (bg->params[i]) {
            cc_tensor_free(bg->params[i]->grad_acc);
            cc_tensor_free(bg->params[i]);
        }
    free(bg->params);
    cc_tensor_free(bg->x);
}

static const cc_tensor *block_grad(const block_graph *bg, int i, int with_acc) {
    return with_acc ? bg->params[i]->grad_acc : bg->params[i]->grad;
}

static void run_blocks(const block_shape *s, cc_backend *gpu_be, const char *precision, int with_acc, cc_rng *rng) {
    int n_params = s->layers * PARAMS_PER_LAYER + 2;
    float **host_params = calloc((size_t)n_params, sizeof *host_params);
    for (int i = 0; i < n_params; i++) {
        int64_t shape[2] = {1, 1};
        int nd = block_param_shape(s, i, shape);
        int64_t n = nd == 2 ? shape[0] * shape[1] : shape[0];
        int kind = i >= s->layers * PARAMS_PER_LAYER ? i - s->layers * PARAMS_PER_LAYER : i % PARAMS_PER_LAYER;
        int is_gain = kind == 0 || kind == 6;
        float scale = nd == 2 ? 1.0f / sqrtf((float)shape[1]) : 0.2f;
        host_params[i] = malloc((size_t)n * 4);
        for (int64_t j = 0; j < n; j++) host_params[i][j] = (is_gain ? 1.0f : 0.0f) + scale * cc_rng_normal(rng);
    }
    int64_t nx = (int64_t)s->batch * s->seq * s->width;
    float *x = malloc((size_t)nx * 4), *dy = malloc((size_t)nx * 4);
    for (int64_t j = 0; j < nx; j++) {
        x[j] = cc_rng_normal(rng);
        dy[j] = cc_rng_normal(rng);
    }
    block_graph cpu, gpu;
    char name[80], note[96] = "";
    snprintf(name, sizeof name, "%s%s", s->name, with_acc ? "+grad_acc" : "");
    double tol = strcmp(precision, "bf16") == 0 ? TOL_BF16_BLOCK : TOL_F32;
    double fwd = INFINITY, grads = INFINITY;
    int computes = with_acc ? 2 : (quick ? 2 : 3);
    if (make_block_graph(s, NULL, host_params, x, dy, with_acc, &cpu) != 0 ||
        make_block_graph(s, gpu_be, host_params, x, dy, with_acc, &gpu) != 0) {
        snprintf(note, sizeof note, "build: %.80s", cc_last_error());
        goto done;
    }
    for (int run = 0; run < computes; run++) {
        if ((with_acc || run == 0) && cc_graph_compute(cpu.g) != 0) {
            snprintf(note, sizeof note, "CPU: %.80s", cc_last_error());
            goto done;
        }
        if (cc_graph_compute(gpu.g) != 0) {
            snprintf(note, sizeof note, "CUDA run %d: %.80s", run + 1, cc_last_error());
            goto done;
        }
    }
    {
        float *ref = download(cpu.out), *got = download(gpu.out);
        fwd = rel_error(got, ref, nx, 0);
        free(ref);
        free(got);
        /* the largest gradient anywhere sets the floor for the ones that are zero in exact
         * arithmetic (key bias: softmax ignores a constant added to a row of scores) */
        double global = 0;
        float **refs = calloc((size_t)n_params, sizeof *refs);
        for (int i = 0; i < n_params; i++) {
            refs[i] = download(block_grad(&cpu, i, with_acc));
            double m = max_abs(refs[i], cc_nelements(cpu.params[i]));
            if (m > global) global = m;
        }
        grads = 0;
        for (int i = 0; i < n_params; i++) {
            float *gg = download(block_grad(&gpu, i, with_acc));
            double e = gg ? rel_error(gg, refs[i], cc_nelements(cpu.params[i]), ZERO_GRAD_FLOOR * global) : INFINITY;
            if (e > grads) grads = e;
            free(gg);
            free(refs[i]);
        }
        free(refs);
        cc_cuda_stats st;
        cc_backend_cuda_stats(gpu_be, &st);
        snprintf(note, sizeof note, "%d computes; captures %ld replays %ld fused %ld", computes, st.captures, st.replays,
                 st.fused_gemms);
    }
done:
    record(name, precision, fwd, grads, tol, fwd <= tol && grads <= tol, note);
    if (cpu.g || cpu.params) free_block_graph(&cpu);
    if (gpu.g || gpu.params) free_block_graph(&gpu);
    for (int i = 0; i < n_params; i++) free(host_params[i]);
    free(host_params);
    free(x);
    free(dy);
}

/* ---- optimizer ---- */

static void run_adamw(cc_backend *gpu_be, const char *precision, cc_rng *rng) {
    enum { N_TENSORS = 4 };
    const int64_t sizes[N_TENSORS] = {1000, 4097, 65536 + 3, 7};
    cc_adamw_args cpu_args[N_TENSORS], gpu_args[N_TENSORS];
    float *host[N_TENSORS][4];
    float *dev[N_TENSORS][4];
    double worst = 0, sumsq_err = 0;
    char note[96] = "";
    for (int t = 0; t < N_TENSORS; t++) {
        for (int k = 0; k < 4; k++) {
            host[t][k] = malloc((size_t)sizes[t] * 4);
            for (int64_t i = 0; i < sizes[t]; i++) host[t][k][i] = k == 3 ? 0.01f * fabsf(cc_rng_normal(rng)) : cc_rng_normal(rng);
            dev[t][k] = gpu_be->alloc(gpu_be, (size_t)sizes[t] * 4);
            if (!dev[t][k] || gpu_be->upload(gpu_be, dev[t][k], host[t][k], (size_t)sizes[t] * 4) != 0) {
                record("adamw_multi", precision, INFINITY, INFINITY, 1e-6, 0, cc_last_error());
                return;
            }
        }
        cc_adamw_args a = {.n = sizes[t], .lr = 1e-3f * (float)(t + 1), .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f,
                           .weight_decay = t % 2 ? 0.2f : 0.0f, .grad_scale = 0.5f, .step = 3 + t};
        cpu_args[t] = gpu_args[t] = a;
        cpu_args[t].param = host[t][0];
        cpu_args[t].grad = host[t][1];
        cpu_args[t].m = host[t][2];
        cpu_args[t].v = host[t][3];
        gpu_args[t].param = dev[t][0];
        gpu_args[t].grad = dev[t][1];
        gpu_args[t].m = dev[t][2];
        gpu_args[t].v = dev[t][3];
    }
    /* global sum of squares of the grads first */
    const float *xs[N_TENSORS];
    int64_t ns[N_TENSORS];
    double ref_sumsq = 0, got_sumsq = 0, single = 0, single_total = 0;
    cc_backend *cpu_be = cc_backend_cpu();
    for (int t = 0; t < N_TENSORS; t++) {
        xs[t] = dev[t][1];
        ns[t] = sizes[t];
        double part;
        cpu_be->sum_squares(cpu_be, host[t][1], sizes[t], &part);
        ref_sumsq += part;
        if (gpu_be->sum_squares(gpu_be, dev[t][1], sizes[t], &single) != 0) snprintf(note, sizeof note, "%.90s", cc_last_error());
        single_total += single;
    }
    if (cc_backend_sum_squares_all(gpu_be, xs, ns, N_TENSORS, &got_sumsq) != 0) snprintf(note, sizeof note, "%.90s", cc_last_error());
    sumsq_err = fmax(fabs(got_sumsq - ref_sumsq), fabs(single_total - ref_sumsq)) / ref_sumsq;
    /* two steps: one fused call over all tensors, then one call per tensor */
    for (int step = 0; step < 2; step++) {
        for (int t = 0; t < N_TENSORS; t++) cpu_be->adamw(cpu_be, &cpu_args[t]);
        int status = 0;
        if (step == 0) status = cc_backend_adamw_all(gpu_be, gpu_args, N_TENSORS);
        else
            for (int t = 0; t < N_TENSORS && status == 0; t++) status = gpu_be->adamw(gpu_be, &gpu_args[t]);
        if (status != 0) snprintf(note, sizeof note, "%.90s", cc_last_error());
        for (int t = 0; t < N_TENSORS; t++) {
            cpu_args[t].step++;
            gpu_args[t].step++;
        }
    }
    for (int t = 0; t < N_TENSORS; t++)
        for (int k = 0; k < 4; k++) {
            if (k == 1) continue;
            float *got = malloc((size_t)sizes[t] * 4);
            if (gpu_be->download(gpu_be, got, dev[t][k], (size_t)sizes[t] * 4) != 0) worst = INFINITY;
            else worst = fmax(worst, rel_error(got, host[t][k], sizes[t], 0));
            free(got);
        }
    for (int t = 0; t < N_TENSORS; t++)
        for (int k = 0; k < 4; k++) {
            gpu_be->free(gpu_be, dev[t][k]);
            free(host[t][k]);
        }
    record("adamw (fused multi + per tensor)", precision, worst, 0, 1e-6, worst <= 1e-6 && !note[0], note);
    record("sum_squares (multi + single)", precision, sumsq_err, 0, 1e-9, sumsq_err <= 1e-9 && !note[0], note);
}

/* ---- bf16 weight shadows follow parameter writes ---- */

static void run_shadow_refresh(cc_backend *gpu_be, const char *precision, cc_rng *rng) {
    const op_case *oc = NULL;
    for (int i = 0; i < N_CASES; i++)
        if (!strcmp(cases[i].name, "linear_768")) oc = &cases[i];
    void *host_in[3];
    for (int i = 0; i < 3; i++) {
        int64_t n = 1;
        for (int d = 0; d < oc->in[i].ndim; d++) n *= oc->in[i].shape[d];
        host_in[i] = malloc((size_t)n * 4);
        fill_random(rng, &oc->in[i], host_in[i], n);
    }
    float *dy = malloc(50 * 256 * 4);
    for (int i = 0; i < 50 * 256; i++) dy[i] = cc_rng_normal(rng);
    built_case cpu, gpu;
    double worst = 0;
    char note[96] = "";
    if (build_case(oc, NULL, host_in, dy, &cpu) != 0 || build_case(oc, gpu_be, host_in, dy, &gpu) != 0) {
        snprintf(note, sizeof note, "%.90s", cc_last_error());
        worst = INFINITY;
        goto done;
    }
    int64_t nw = 256 * 768;
    float *w = malloc((size_t)nw * 4);
    for (int round = 0; round < 4 && worst != INFINITY; round++) {
        if (round == 1) { /* new weights uploaded */
            for (int64_t i = 0; i < nw; i++) w[i] = 0.05f * cc_rng_normal(rng);
            memcpy(cpu.in[1]->data, w, (size_t)nw * 4);
            cc_tensor_upload(gpu.in[1], w);
        } else if (round == 2) { /* an optimizer step on the weights */
            /* eps large enough that tiny gradient differences cannot flip an update (sign-like near 0) */
            cc_adamw_args a = {.n = nw, .lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 0.1f, .grad_scale = 1.0f, .step = 1};
            float *m_host = calloc((size_t)nw, 4), *v_host = calloc((size_t)nw, 4);
            float *m_dev = gpu_be->alloc(gpu_be, (size_t)nw * 4), *v_dev = gpu_be->alloc(gpu_be, (size_t)nw * 4);
            gpu_be->zero(gpu_be, m_dev, (size_t)nw * 4);
            gpu_be->zero(gpu_be, v_dev, (size_t)nw * 4);
            a.param = cpu.in[1]->data;
            a.grad = cpu.in[1]->grad->data;
            a.m = m_host;
            a.v = v_host;
            cc_backend_cpu()->adamw(cc_backend_cpu(), &a);
            a.param = gpu.in[1]->data;
            a.grad = gpu.in[1]->grad->data;
            a.m = m_dev;
            a.v = v_dev;
            if (gpu_be->adamw(gpu_be, &a) != 0) snprintf(note, sizeof note, "%.90s", cc_last_error());
            gpu_be->free(gpu_be, m_dev);
            gpu_be->free(gpu_be, v_dev);
            free(m_host);
            free(v_host);
        } else if (round == 3) { /* a device-to-device copy into the weights */
            float *tmp = gpu_be->alloc(gpu_be, (size_t)nw * 4);
            for (int64_t i = 0; i < nw; i++) w[i] = 0.05f * cc_rng_normal(rng);
            gpu_be->upload(gpu_be, tmp, w, (size_t)nw * 4);
            gpu_be->copy(gpu_be, gpu.in[1]->data, tmp, (size_t)nw * 4);
            memcpy(cpu.in[1]->data, w, (size_t)nw * 4);
            gpu_be->free(gpu_be, tmp);
        }
        if (cc_graph_compute(cpu.g) != 0 || cc_graph_compute(gpu.g) != 0) {
            snprintf(note, sizeof note, "%.90s", cc_last_error());
            worst = INFINITY;
            break;
        }
        float *ref = download(cpu.out), *got = download(gpu.out);
        worst = fmax(worst, rel_error(got, ref, cc_nelements(cpu.out), 0));
        free(ref);
        free(got);
    }
    free(w);
done:
    record("weights rewritten between computes", precision, worst, 0, strcmp(precision, "bf16") ? TOL_F32 : TOL_BF16_GEMM,
           worst <= (strcmp(precision, "bf16") ? TOL_F32 : TOL_BF16_GEMM) && !note[0], note);
    free_case(&cpu, 3);
    free_case(&gpu, 3);
    for (int i = 0; i < 3; i++) free(host_in[i]);
    free(dy);
}

/* ---- bad input ---- */

static int expect_failure(cc_backend *be, const op_case *oc, void *const *host_in, const char *needle, char *note,
                          size_t note_size) {
    built_case bc;
    float dy[4096];
    for (int i = 0; i < 4096; i++) dy[i] = 1.0f;
    int ok = 0;
    if (build_case(oc, be, host_in, dy, &bc) != 0) {
        snprintf(note, note_size, "build: %.80s", cc_last_error());
    } else if (cc_graph_compute(bc.g) == 0) {
        snprintf(note, note_size, "compute succeeded on bad input");
    } else if (!strstr(cc_last_error(), needle)) {
        snprintf(note, note_size, "message lacks '%s': %.60s", needle, cc_last_error());
    } else {
        snprintf(note, note_size, "%.90s", cc_last_error());
        ok = 1;
    }
    free_case(&bc, oc->n_inputs);
    return ok;
}

static void run_bad_input(cc_backend *gpu_be, const char *precision, cc_rng *rng) {
    char note[128];
    /* an embedding id outside the table */
    {
        op_case oc = {"get_rows", 2, {IN(2, 10, 8), IDS(6, 10)}, b_get_rows, 0};
        float table[80];
        int32_t ids[6] = {1, 2, 3, 17, 4, 5};
        for (int i = 0; i < 80; i++) table[i] = cc_rng_normal(rng);
        void *in[2] = {table, ids};
        int ok = expect_failure(gpu_be, &oc, in, "outside the table", note, sizeof note);
        record("bad id in get_rows -> error", precision, 0, 0, 0, ok, note);
    }
    /* a label outside the classes */
    {
        op_case oc = {"cross_entropy", 2, {IN(2, 5, 7), IDS(5, 7)}, b_cross_entropy, 0};
        float logits[35];
        int32_t labels[5] = {0, 6, -1, 2, 3};
        for (int i = 0; i < 35; i++) logits[i] = cc_rng_normal(rng);
        void *in[2] = {logits, labels};
        int ok = expect_failure(gpu_be, &oc, in, "label", note, sizeof note);
        record("bad label in cross_entropy -> error", precision, 0, 0, 0, ok, note);
    }
    /* a parameter left in host memory: a clear error, not a fault inside a kernel */
    {
        op_case oc = {"host_weight", 2, {IN(2, 4, 8), IN(2, 8, 3)}, b_matmul_nn, 0};
        cc_graph *g = cc_graph_new();
        int64_t sa[2] = {4, 8}, sb[2] = {8, 3};
        cc_tensor *a = cc_tensor_new(CC_F32, 2, sa, "device weight"), *b = cc_tensor_new(CC_F32, 2, sb, "host weight");
        int ok = a && b && cc_tensor_alloc(a, gpu_be) == 0 && cc_tensor_alloc(b, NULL) == 0;
        cc_tensor *y = ok ? cc_matmul(g, a, b, 0, 0) : NULL;
        ok = ok && y && cc_graph_build(g, &y, 1) == 0 && cc_graph_plan(g, gpu_be) == 0 && cc_graph_compute(g) != 0 &&
             strstr(cc_last_error(), "host weight") && strstr(cc_last_error(), "not in this GPU backend's memory");
        snprintf(note, sizeof note, "%.100s", cc_last_error());
        record("host tensor in a CUDA graph -> error", precision, 0, 0, 0, ok, note);
        cc_graph_free(g);
        cc_tensor_free(a);
        cc_tensor_free(b);
        (void)oc;
    }
    /* the backend still works after an error */
    run_case(&cases[0], gpu_be, precision, rng);
    /* an impossible allocation */
    {
        void *p = gpu_be->alloc(gpu_be, (size_t)1 << 52);
        int ok = p == NULL && strstr(cc_last_error(), "out of device memory") != NULL;
        snprintf(note, sizeof note, "%.100s", cc_last_error());
        if (p) gpu_be->free(gpu_be, p);
        record("4 PiB allocation -> error", precision, 0, 0, 0, ok, note);
    }
}

/* ---- main ---- */

static void print_table(FILE *out) {
    fprintf(out, "| check | precision | forward rel | grad rel | tolerance | result |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const result_row *r = &rows[i];
        fprintf(out, "| %s | %s | %.2e | %.2e | %.0e | %s%s%s |\n", r->name, r->precision, r->forward, r->grads, r->tol,
                r->pass ? "ok" : "**FAIL**", r->pass ? "" : ": ", r->pass ? "" : r->note);
    }
    fprintf(out, "\n%d passed, %d failed\n", n_rows - n_failed, n_failed);
}

static void run_precision(cc_precision precision, const char *filter, uint64_t seed) {
    const char *pname = precision == CC_PRECISION_BF16 ? "bf16" : "f32";
    cc_backend *gpu_be = cc_backend_cuda_create_ex(0, precision);
    if (!gpu_be) {
        record("create CUDA backend", pname, INFINITY, INFINITY, 0, 0, cc_last_error());
        return;
    }
    char info[512];
    cc_backend_cuda_info(gpu_be, info, sizeof info);
    printf("== CUDA backend: %s\n", info);
    cc_rng rng;
    cc_rng_seed(&rng, seed + (uint64_t)precision);
    for (int i = 0; i < N_CASES; i++)
        if (!filter || strstr(cases[i].name, filter)) run_case(&cases[i], gpu_be, pname, &rng);
    block_shape blocks[] = {
        {"blocks_b2_t13_c48_causal", 2, 13, 48, 4, 96, 2, 1, CC_ACT_QUICK_GELU, 0},
        {"blocks_vit_t50_c256_d64", 4, 50, 256, 4, 1024, 2, 0, CC_ACT_QUICK_GELU, 1},
        {"blocks_text_t77_c128_causal_gelu", 2, 77, 128, 2, 512, 1, 1, CC_ACT_GELU_TANH, 1},
    };
    int n_blocks = quick ? 2 : 3;
    for (int i = 0; i < n_blocks; i++)
        if (!filter || strstr(blocks[i].name, filter)) {
            run_blocks(&blocks[i], gpu_be, pname, 0, &rng);
            if (i == 0) run_blocks(&blocks[i], gpu_be, pname, 1, &rng);
        }
    if (!filter || strstr("adamw sum_squares", filter)) run_adamw(gpu_be, pname, &rng);
    if (!filter || strstr("shadow weights", filter)) run_shadow_refresh(gpu_be, pname, &rng);
    if (!filter || strstr("bad errors", filter)) run_bad_input(gpu_be, pname, &rng);
    cc_cuda_stats st;
    cc_backend_cuda_stats(gpu_be, &st);
    printf("== %s: %ld graph computes (%ld eager, %ld captured, %ld replays), %ld fused GEMMs, %ld bf16 weight copies\n",
           pname, st.graph_computes, st.eager_runs, st.captures, st.replays, st.fused_gemms, st.shadow_refreshes);
    if (!filter) {
        int replay_ok = !getenv("CLIPC_CUDA_GRAPHS") ? st.replays > 0 && st.captures > 0 : 1;
        int fuse_ok = !getenv("CLIPC_CUDA_FUSE") ? st.fused_gemms > 0 : 1;
        record("CUDA graphs captured and replayed", pname, 0, 0, 0, replay_ok, NULL);
        record("GEMM epilogues fused", pname, 0, 0, 0, fuse_ok, NULL);
        if (precision == CC_PRECISION_BF16) record("bf16 weight copies made", pname, 0, 0, 0, st.shadow_refreshes > 0, NULL);
    }
    gpu_be->destroy(gpu_be);
}

int main(int argc, char **argv) {
    const char *precision = "both", *filter = NULL, *table_path = NULL;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--precision") && i + 1 < argc) precision = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--table") && i + 1 < argc) table_path = argv[++i];
        else {
            fprintf(stderr, "usage: check_ops [--precision f32|bf16|both] [--quick] [--seed N] [--filter S] [--table FILE]\n");
            return 2;
        }
    }
    if (!seed) {
        const char *env = getenv("CLIPC_TEST_SEED");
        seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    }
    printf("check_ops: seed %llu (CLIPC_TEST_SEED=%llu reproduces)\n", (unsigned long long)seed, (unsigned long long)seed);
    if (strcmp(precision, "bf16") != 0) run_precision(CC_PRECISION_F32, filter, seed);
    if (strcmp(precision, "f32") != 0) run_precision(CC_PRECISION_BF16, filter, seed);
    if (table_path) {
        FILE *f = fopen(table_path, "w");
        if (f) {
            print_table(f);
            fclose(f);
        }
    }
    printf("\n");
    print_table(stdout);
    free(rows);
    return n_failed ? 1 : 0;
}
