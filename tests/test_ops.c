/* test_ops.c — every engine op, forward and backward, against PyTorch (tests/reference/ops_ref.py),
 * plus a finite-difference check of each backward on the same inputs. */
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/graph.h"
#include "engine/util.h"
#include "tests/test.h"

#define MAX_INPUTS 4

typedef cc_tensor *(*build_fn)(cc_graph *g, cc_tensor **in);

static cc_tensor *b_matmul_nn(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 0, 0); }
static cc_tensor *b_matmul_nt(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 0, 1); }
static cc_tensor *b_matmul_tn(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 1, 0); }
static cc_tensor *b_matmul_tt(cc_graph *g, cc_tensor **in) { return cc_matmul(g, in[0], in[1], 1, 1); }
static cc_tensor *b_linear(cc_graph *g, cc_tensor **in) { return cc_linear(g, in[0], in[1], in[2]); }
static cc_tensor *b_add(cc_graph *g, cc_tensor **in) { return cc_add(g, in[0], in[1]); }
static cc_tensor *b_sub(cc_graph *g, cc_tensor **in) { return cc_sub(g, in[0], in[1]); }
static cc_tensor *b_mul(cc_graph *g, cc_tensor **in) { return cc_mul(g, in[0], in[1]); }
static cc_tensor *b_scale(cc_graph *g, cc_tensor **in) { return cc_scale(g, in[0], -0.37f); }
static cc_tensor *b_mul_scalar(cc_graph *g, cc_tensor **in) { return cc_mul_scalar(g, in[0], in[1]); }
static cc_tensor *b_exp(cc_graph *g, cc_tensor **in) { return cc_exp(g, in[0]); }
static cc_tensor *b_layernorm(cc_graph *g, cc_tensor **in) { return cc_layernorm(g, in[0], in[1], in[2], 1e-5f); }
static cc_tensor *b_softmax(cc_graph *g, cc_tensor **in) { return cc_softmax(g, in[0], 0.7f, 0); }
static cc_tensor *b_softmax_causal(cc_graph *g, cc_tensor **in) { return cc_softmax(g, in[0], 1.3f, 1); }
static cc_tensor *b_attention(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 4, 1.0f / sqrtf(12.0f), 0);
}
static cc_tensor *b_attention_causal(cc_graph *g, cc_tensor **in) {
    return cc_attention(g, in[0], in[1], in[2], 4, 1.0f / sqrtf(12.0f), 1);
}
static cc_tensor *b_attention_fused(cc_graph *g, cc_tensor **in) {
    cc_tensor *q = cc_slice(g, in[0], 2, 0, 48), *k = cc_slice(g, in[0], 2, 48, 48), *v = cc_slice(g, in[0], 2, 96, 48);
    return cc_attention(g, q, k, v, 6, 1.0f / sqrtf(8.0f), 1);
}
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
static cc_tensor *b_concat(cc_graph *g, cc_tensor **in) { return cc_concat(g, in[0], in[1]); }

static const struct {
    const char *name;
    int n_inputs;
    build_fn build;
} cases[] = {
    {"matmul_nn", 2, b_matmul_nn}, {"matmul_nt", 2, b_matmul_nt}, {"matmul_tn", 2, b_matmul_tn},
    {"matmul_tt", 2, b_matmul_tt}, {"matmul_batched", 2, b_matmul_nn}, {"matmul_batched_nt", 2, b_matmul_nt},
    {"linear", 3, b_linear}, {"add_same", 2, b_add}, {"add_rows", 2, b_add}, {"add_bias", 2, b_add},
    {"sub", 2, b_sub}, {"mul", 2, b_mul}, {"scale", 1, b_scale}, {"mul_scalar", 2, b_mul_scalar},
    {"exp", 1, b_exp}, {"layernorm", 3, b_layernorm}, {"softmax", 1, b_softmax},
    {"softmax_causal", 1, b_softmax_causal}, {"attention", 3, b_attention},
    {"attention_causal", 3, b_attention_causal}, {"attention_fused", 1, b_attention_fused},
    {"gelu_tanh", 1, b_gelu_tanh}, {"gelu_erf", 1, b_gelu_erf}, {"quick_gelu", 1, b_quick_gelu},
    {"get_rows", 2, b_get_rows}, {"patchify_conv", 2, b_patchify_conv}, {"prepend_row", 2, b_prepend_row},
    {"l2norm", 1, b_l2norm}, {"cross_entropy", 2, b_cross_entropy}, {"sum", 1, b_sum}, {"sum_to", 1, b_sum_to},
    {"repeat", 1, b_repeat}, {"dot", 2, b_dot}, {"transpose_cont", 1, b_transpose_cont},
    {"permute_matmul", 2, b_permute_matmul}, {"slice", 1, b_slice}, {"concat", 2, b_concat},
};

/* A parameter tensor holding an npy file's data (float -> trainable; int -> int32 constant). */
static cc_tensor *load_input(const char *path) {
    cc_npy arr;
    if (cc_npy_read(path, &arr) != 0) return NULL;
    int64_t shape[CC_MAX_DIMS];
    for (int i = 0; i < arr.ndim; i++) shape[i] = arr.shape[i];
    int is_float = arr.dtype == CC_NPY_F32;
    cc_tensor *t = cc_tensor_new(is_float ? CC_F32 : CC_I32, arr.ndim, shape, path);
    if (t && cc_tensor_alloc(t, NULL) == 0) {
        if (is_float) {
            memcpy(t->data, arr.data, (size_t)arr.count * 4);
            t->flags |= CC_FLAG_PARAM;
        } else {
            for (int64_t i = 0; i < arr.count; i++) ((int32_t *)t->data)[i] = (int32_t)((int64_t *)arr.data)[i];
        }
    }
    cc_npy_free(&arr);
    return t;
}

static float *read_f32(const char *path, int64_t expected_count) {
    cc_npy arr;
    if (cc_npy_read_f32(path, &arr) != 0) return NULL;
    if (arr.count != expected_count) {
        cc_set_error("%s: %lld values, expected %lld", path, (long long)arr.count, (long long)expected_count);
        cc_npy_free(&arr);
        return NULL;
    }
    return arr.data;
}

static float loss_value(cc_graph *g, cc_tensor *loss) {
    float value = NAN;
    if (cc_graph_compute(g) == 0) cc_tensor_download(loss, &value);
    return value;
}

/* Runs one case: forward and gradients vs PyTorch, then central differences on sampled elements. */
static void check_case(int index, cc_rng *rng) {
    const char *name = cases[index].name;
    char path[1024];
    cc_tensor *in[MAX_INPUTS] = {0};
    for (int i = 0; i < cases[index].n_inputs; i++) {
        snprintf(path, sizeof path, "%s/%s.in%d.npy", test_tmpdir(), name, i);
        in[i] = load_input(path);
        REQUIRE(in[i], "%s: %s", name, cc_last_error());
    }
    cc_graph *g = cc_graph_new();
    cc_tensor *out = cc_cont(g, cases[index].build(g, in));
    REQUIRE(out, "%s: %s", name, cc_graph_error(g));
    cc_tensor *dy = cc_input(g, CC_F32, out->ndim, out->shape, "dy");
    cc_tensor *loss = cc_dot(g, out, dy);
    cc_tensor *outputs[2] = {out, loss};
    REQUIRE(cc_graph_build(g, outputs, 2) == 0, "%s: %s", name, cc_last_error());
    REQUIRE(cc_graph_backward(g, loss) == 0, "%s: %s", name, cc_last_error());
    REQUIRE(cc_graph_plan(g, cc_backend_cpu()) == 0, "%s: %s", name, cc_last_error());
    int64_t n_out = cc_nelements(out);
    snprintf(path, sizeof path, "%s/%s.dy.npy", test_tmpdir(), name);
    float *dy_data = read_f32(path, n_out);
    snprintf(path, sizeof path, "%s/%s.out.npy", test_tmpdir(), name);
    float *ref_out = read_f32(path, n_out);
    REQUIRE(dy_data && ref_out, "%s: %s", name, cc_last_error());
    cc_tensor_upload(dy, dy_data);
    REQUIRE(cc_graph_compute(g) == 0, "%s: %s", name, cc_last_error());
    float *got = malloc((size_t)n_out * 4);
    cc_tensor_download(out, got);
    CHECK_REL(got, ref_out, n_out, 1e-5, name);
    free(got);
    /* read every gradient before the finite differences recompute the graph */
    float *grads[MAX_INPUTS] = {0};
    for (int i = 0; i < cases[index].n_inputs; i++) {
        if (in[i]->dtype != CC_F32) continue;
        REQUIRE(in[i]->grad, "%s: input %d got no gradient", name, i);
        grads[i] = malloc((size_t)cc_nelements(in[i]) * 4);
        cc_tensor_download(in[i]->grad, grads[i]);
    }
    for (int i = 0; i < cases[index].n_inputs; i++) {
        if (in[i]->dtype != CC_F32) continue;
        int64_t n_in = cc_nelements(in[i]);
        snprintf(path, sizeof path, "%s/%s.grad%d.npy", test_tmpdir(), name, i);
        float *ref_grad = read_f32(path, n_in);
        REQUIRE(ref_grad, "%s", cc_last_error());
        float *grad = grads[i];
        char what[128];
        snprintf(what, sizeof what, "%s grad of input %d", name, i);
        CHECK_REL(grad, ref_grad, n_in, 1e-4, what);
        /* finite differences on a few elements: (L(x+h) - L(x-h)) / 2h */
        double max_diff = 0, max_grad = 0;
        for (int sample = 0; sample < 6; sample++) {
            int64_t at = (int64_t)cc_rng_below(rng, (uint64_t)n_in);
            float *x = (float *)in[i]->data, saved = x[at];
            float h = 1e-2f * fmaxf(1.0f, fabsf(saved));
            x[at] = saved + h;
            float up = loss_value(g, loss);
            x[at] = saved - h;
            float down = loss_value(g, loss);
            x[at] = saved;
            double fd = ((double)up - (double)down) / (2.0 * h);
            double diff = fabs(fd - grad[at]);
            if (diff > max_diff) max_diff = diff;
            if (fabs(grad[at]) > max_grad) max_grad = fabs(grad[at]);
        }
        CHECK(max_diff <= 2e-2 * fmax(1.0, max_grad), "%s: finite differences differ from the gradient by %g (|grad| %g)",
              what, max_diff, max_grad);
        free(grad);
        free(ref_grad);
    }
    free(dy_data);
    free(ref_out);
    cc_graph_free(g);
    for (int i = 0; i < MAX_INPUTS; i++) cc_tensor_free(in[i]);
}

TEST_SLOW(ops_match_pytorch_forward_backward_and_finite_differences) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    REQUIRE(test_python("ops_ref.py", test_tmpdir(), seed, NULL) == 0);
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = test_failures;
        check_case((int)i, &rng);
        if (test_failures != before) fprintf(stderr, "    ^ in case %s\n", cases[i].name);
    }
}
