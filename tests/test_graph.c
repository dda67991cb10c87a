/* test_graph.c — whole-graph tests: a two-block transformer against PyTorch (output and every
 * gradient), memory planning, gradient accumulation, and op construction errors. */
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/graph.h"
#include "engine/util.h"
#include "tests/test.h"

#define BLOCK_B 2
#define BLOCK_T 13
#define BLOCK_C 48
#define BLOCK_H 4
#define BLOCK_F 96
#define BLOCK_LAYERS 2
#define PARAMS_PER_LAYER 16
#define N_PARAMS (BLOCK_LAYERS * PARAMS_PER_LAYER + 2)

/* Same layout as tests/reference/block_ref.py. */
static cc_tensor *build_blocks(cc_graph *g, cc_tensor *x, cc_tensor **p) {
    cc_tensor *h = x;
    for (int layer = 0; layer < BLOCK_LAYERS; layer++) {
        cc_tensor **w = p + layer * PARAMS_PER_LAYER;
        cc_tensor *a = cc_layernorm(g, h, w[0], w[1], 1e-5f);
        cc_tensor *q = cc_linear(g, a, w[2], w[3]);
        cc_tensor *k = cc_linear(g, a, w[4], w[5]);
        cc_tensor *v = cc_linear(g, a, w[6], w[7]);
        cc_tensor *att = cc_attention(g, q, k, v, BLOCK_H, 1.0f / sqrtf((float)(BLOCK_C / BLOCK_H)), 1);
        h = cc_add(g, h, cc_linear(g, att, w[8], w[9]));
        cc_tensor *m = cc_layernorm(g, h, w[10], w[11], 1e-5f);
        m = cc_act(g, cc_linear(g, m, w[12], w[13]), CC_ACT_QUICK_GELU);
        h = cc_add(g, h, cc_linear(g, m, w[14], w[15]));
    }
    return cc_layernorm(g, h, p[N_PARAMS - 2], p[N_PARAMS - 1], 1e-5f);
}

static cc_tensor *param_from_npy(const char *path) {
    cc_npy arr;
    if (cc_npy_read_f32(path, &arr) != 0) return NULL;
    cc_tensor *t = cc_tensor_new(CC_F32, arr.ndim, arr.shape, path);
    if (t && cc_tensor_alloc(t, NULL) == 0) memcpy(t->data, arr.data, (size_t)arr.count * 4);
    t->flags |= CC_FLAG_PARAM;
    cc_npy_free(&arr);
    return t;
}

/* Relative error against the file; floor > 0 gives the scale for gradients that are zero in exact
 * arithmetic (the key bias: softmax ignores a constant added to every score of a row). */
static void compare_with_file(const cc_tensor *t, const char *file, double tol, double floor) {
    cc_npy ref;
    REQUIRE(cc_npy_read_f32(test_path(file), &ref) == 0, "%s", cc_last_error());
    REQUIRE(ref.count == cc_nelements(t), "%s: size mismatch", file);
    float *got = malloc((size_t)ref.count * 4);
    cc_tensor_download(t, got);
    if (floor > 0) {
        double max_diff = 0;
        for (int64_t i = 0; i < ref.count; i++) max_diff = fmax(max_diff, fabs(got[i] - ((float *)ref.data)[i]));
        CHECK(max_diff <= tol * floor, "%s: max difference %g", file, max_diff);
    } else {
        CHECK_REL(got, (float *)ref.data, ref.count, tol, file);
    }
    free(got);
    cc_npy_free(&ref);
}

TEST_SLOW(graph_two_transformer_blocks_match_pytorch) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    REQUIRE(test_python("block_ref.py", test_tmpdir(), seed, NULL) == 0);
    cc_tensor *params[N_PARAMS];
    char name[64];
    for (int i = 0; i < N_PARAMS; i++) {
        snprintf(name, sizeof name, "p%d.npy", i);
        params[i] = param_from_npy(test_path(name));
        REQUIRE(params[i], "%s", cc_last_error());
    }
    cc_tensor *x = param_from_npy(test_path("x.npy")); /* x is a "parameter" so that its gradient is computed */
    REQUIRE(x);
    cc_graph *g = cc_graph_new();
    cc_tensor *out = build_blocks(g, x, params);
    cc_tensor *dy = cc_input(g, CC_F32, 3, out ? out->shape : x->shape, "dy");
    cc_tensor *loss = cc_dot(g, out, dy);
    REQUIRE(cc_graph_build(g, (cc_tensor *[]){out, loss}, 2) == 0, "%s", cc_last_error());
    REQUIRE(cc_graph_backward(g, loss) == 0, "%s", cc_last_error());
    REQUIRE(cc_graph_plan(g, cc_backend_cpu()) == 0, "%s", cc_last_error());
    cc_npy dy_arr;
    REQUIRE(cc_npy_read_f32(test_path("dy.npy"), &dy_arr) == 0);
    cc_tensor_upload(dy, dy_arr.data);
    cc_npy_free(&dy_arr);
    REQUIRE(cc_graph_compute(g) == 0, "%s", cc_last_error());
    compare_with_file(out, "out.npy", 1e-5, 0);
    compare_with_file(x->grad, "grad_x.npy", 1e-4, 0);
    for (int i = 0; i < N_PARAMS; i++) {
        snprintf(name, sizeof name, "grad_p%d.npy", i);
        REQUIRE(params[i]->grad, "param %d has no gradient", i);
        int is_key_bias = i % PARAMS_PER_LAYER == 5 && i < BLOCK_LAYERS * PARAMS_PER_LAYER;
        compare_with_file(params[i]->grad, name, 1e-4, is_key_bias ? 1.0 : 0);
    }
    /* the planner must reuse memory: the arena is well below the sum of all results */
    size_t peak = cc_graph_peak_bytes(g), naive = cc_graph_naive_bytes(g);
    CHECK(peak > 0 && peak < naive / 2, "peak %zu bytes vs %zu without reuse", peak, naive);
    cc_graph_free(g);
    for (int i = 0; i < N_PARAMS; i++) cc_tensor_free(params[i]);
    cc_tensor_free(x);
}

static cc_tensor *random_param(cc_rng *rng, int ndim, const int64_t *shape, float scale, float base) {
    cc_tensor *t = cc_tensor_new(CC_F32, ndim, shape, "param");
    if (!t || cc_tensor_alloc(t, NULL) != 0) return NULL;
    for (int64_t i = 0; i < cc_nelements(t); i++) ((float *)t->data)[i] = base + scale * cc_rng_normal(rng);
    t->flags |= CC_FLAG_PARAM;
    return t;
}

static void make_block_params(cc_rng *rng, cc_tensor **p) {
    int64_t c[1] = {BLOCK_C}, f[1] = {BLOCK_F}, cc[2] = {BLOCK_C, BLOCK_C}, fc[2] = {BLOCK_F, BLOCK_C},
            cf[2] = {BLOCK_C, BLOCK_F};
    for (int layer = 0; layer < BLOCK_LAYERS; layer++) {
        cc_tensor **w = p + layer * PARAMS_PER_LAYER;
        w[0] = random_param(rng, 1, c, 0.2f, 1.0f);
        w[1] = random_param(rng, 1, c, 0.2f, 0.0f);
        for (int j = 2; j <= 8; j += 2) {
            w[j] = random_param(rng, 2, cc, 0.2f, 0.0f);
            w[j + 1] = random_param(rng, 1, c, 0.2f, 0.0f);
        }
        w[10] = random_param(rng, 1, c, 0.2f, 1.0f);
        w[11] = random_param(rng, 1, c, 0.2f, 0.0f);
        w[12] = random_param(rng, 2, fc, 0.2f, 0.0f);
        w[13] = random_param(rng, 1, f, 0.2f, 0.0f);
        w[14] = random_param(rng, 2, cf, 0.2f, 0.0f);
        w[15] = random_param(rng, 1, c, 0.2f, 0.0f);
    }
    p[N_PARAMS - 2] = random_param(rng, 1, c, 0.2f, 1.0f);
    p[N_PARAMS - 1] = random_param(rng, 1, c, 0.2f, 0.0f);
}

/* Gradients accumulated into grad_acc over two computes equal twice the plain gradient; and a
 * finite-difference check on a few weights, with no Python involved (runs under ASan too). */
TEST(graph_grad_accumulation_and_finite_differences) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_tensor *p[N_PARAMS];
    make_block_params(&rng, p);
    int64_t x_shape[3] = {BLOCK_B, BLOCK_T, BLOCK_C};
    cc_tensor *x = random_param(&rng, 3, x_shape, 1.0f, 0.0f);
    x->flags &= ~CC_FLAG_PARAM;
    /* plain gradients */
    cc_graph *g = cc_graph_new();
    cc_tensor *loss = cc_sum(g, cc_mul(g, build_blocks(g, x, p), build_blocks(g, x, p)));
    REQUIRE(cc_graph_build(g, &loss, 1) == 0 && cc_graph_backward(g, loss) == 0, "%s", cc_last_error());
    REQUIRE(cc_graph_plan(g, cc_backend_cpu()) == 0 && cc_graph_compute(g) == 0, "%s", cc_last_error());
    int probe = 12; /* fc1 weight of layer 0 */
    int64_t n = cc_nelements(p[probe]);
    float *plain = malloc((size_t)n * 4);
    cc_tensor_download(p[probe]->grad, plain);
    float base_loss;
    cc_tensor_download(loss, &base_loss);
    /* finite differences on that weight */
    for (int sample = 0; sample < 4; sample++) {
        int64_t at = (int64_t)cc_rng_below(&rng, (uint64_t)n);
        float *w = p[probe]->data, saved = w[at], h = 1e-2f;
        float up, down;
        w[at] = saved + h;
        cc_graph_compute(g);
        cc_tensor_download(loss, &up);
        w[at] = saved - h;
        cc_graph_compute(g);
        cc_tensor_download(loss, &down);
        w[at] = saved;
        double fd = ((double)up - down) / (2 * h);
        CHECK(fabs(fd - plain[at]) <= 2e-2 * fmax(1.0, fabs(plain[at])) + 1e-3 * fabs(base_loss) / h * 1e-3,
              "fd %g vs grad %g at %lld", fd, plain[at], (long long)at);
    }
    cc_graph_free(g);
    /* accumulated gradients */
    for (int i = 0; i < N_PARAMS; i++) {
        p[i]->grad_acc = cc_tensor_new(CC_F32, p[i]->ndim, p[i]->shape, "acc");
        REQUIRE(cc_tensor_alloc(p[i]->grad_acc, NULL) == 0);
        memset(p[i]->grad_acc->data, 0, cc_nbytes(p[i]));
    }
    g = cc_graph_new();
    loss = cc_sum(g, cc_mul(g, build_blocks(g, x, p), build_blocks(g, x, p)));
    REQUIRE(cc_graph_build(g, &loss, 1) == 0 && cc_graph_backward(g, loss) == 0, "%s", cc_last_error());
    REQUIRE(cc_graph_plan(g, cc_backend_cpu()) == 0, "%s", cc_last_error());
    REQUIRE(cc_graph_compute(g) == 0 && cc_graph_compute(g) == 0, "%s", cc_last_error());
    float *twice = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) twice[i] = 2 * plain[i];
    CHECK_REL((float *)p[probe]->grad_acc->data, twice, n, 1e-6, "accumulated gradient");
    cc_graph_free(g);
    free(plain);
    free(twice);
    for (int i = 0; i < N_PARAMS; i++) {
        cc_tensor_free(p[i]->grad_acc);
        cc_tensor_free(p[i]);
    }
    cc_tensor_free(x);
}

TEST(graph_shape_errors_name_op_and_shapes) {
    cc_graph *g = cc_graph_new();
    int64_t sa[2] = {3, 5}, sb[2] = {4, 7};
    cc_tensor *a = cc_input(g, CC_F32, 2, sa, "a"), *b = cc_input(g, CC_F32, 2, sb, "b");
    cc_tensor *bad = cc_matmul(g, a, b, 0, 0);
    CHECK(bad == NULL);
    const char *err = cc_graph_error(g);
    REQUIRE(err != NULL);
    CHECK(strstr(err, "matmul") && strstr(err, "[3, 5]") && strstr(err, "[4, 7]"), "message: %s", err);
    /* later ops on NULL keep the first error */
    CHECK(cc_layernorm(g, bad, a, a, 1e-5f) == NULL);
    CHECK(strstr(cc_graph_error(g), "matmul") != NULL);
    CHECK(cc_graph_build(g, &bad, 1) != 0);
    cc_graph_free(g);
    g = cc_graph_new();
    a = cc_input(g, CC_F32, 2, sa, "a");
    CHECK(cc_add(g, a, cc_input(g, CC_F32, 2, sb, "b")) == NULL);
    CHECK(strstr(cc_graph_error(g), "add") && strstr(cc_graph_error(g), "[4, 7]"), "%s", cc_graph_error(g));
    cc_graph_free(g);
}

TEST(f16_bf16_conversion_round_trips) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int i = 0; i < 100000; i++) {
        float x = cc_rng_normal(&rng) * (float)pow(10.0, (double)(cc_rng_below(&rng, 9)) - 4.0);
        float h = cc_f16_to_f32(cc_f32_to_f16(x));
        float b = cc_bf16_to_f32(cc_f32_to_bf16(x));
        if (fabsf(x) > 6.2e-5f && fabsf(x) < 65000.0f) CHECK(fabsf(h - x) <= fabsf(x) * (1.0f / 2048), "f16 %g -> %g", x, h);
        CHECK(fabsf(b - x) <= fabsf(x) * (1.0f / 256), "bf16 %g -> %g", x, b);
        if (test_failures) return;
    }
    CHECK(cc_f16_to_f32(cc_f32_to_f16(65504.0f)) == 65504.0f);
    CHECK(isinf(cc_f16_to_f32(cc_f32_to_f16(1e6f))));
    CHECK(cc_f16_to_f32(cc_f32_to_f16(5.9604645e-8f)) == 5.9604645e-8f); /* smallest subnormal */
    CHECK(cc_f32_to_bf16(1.0f) == 0x3f80 && cc_bf16_to_f32(0x4049) == 3.140625f);
}

TEST_SLOW(f16_bf16_conversion_matches_numpy_and_torch) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int64_t count = 4096;
    float *x = malloc((size_t)count * 4);
    for (int64_t i = 0; i < count; i++) x[i] = cc_rng_normal(&rng) * (float)pow(2.0, (double)cc_rng_below(&rng, 40) - 24.0);
    REQUIRE(cc_npy_write_f32(test_path("x.npy"), 1, &count, x) == 0);
    REQUIRE(test_system("/usr/bin/python3 -c \"import numpy as np, torch; x=np.load('%s'); "
                        "np.save('%s', x.astype(np.float16).astype(np.float32)); "
                        "np.save('%s', torch.tensor(x).to(torch.bfloat16).float().numpy())\"",
                        test_path("x.npy"), test_path("h.npy"), test_path("b.npy")) == 0);
    cc_npy h, b;
    REQUIRE(cc_npy_read_f32(test_path("h.npy"), &h) == 0 && cc_npy_read_f32(test_path("b.npy"), &b) == 0);
    for (int64_t i = 0; i < count; i++) {
        CHECK(cc_f16_to_f32(cc_f32_to_f16(x[i])) == ((float *)h.data)[i], "f16 of %g", x[i]);
        CHECK(cc_bf16_to_f32(cc_f32_to_bf16(x[i])) == ((float *)b.data)[i], "bf16 of %g", x[i]);
        if (test_failures > 5) break;
    }
    cc_npy_free(&h);
    cc_npy_free(&b);
    free(x);
}

/* The gradient products of a matmul multiply in the precision of the forward product, whatever
 * the graph's bf16 setting is when backward is built: bf16 forward -> bf16 dA and dB; an f32
 * forward product (the trainer's loss logits) stays f32 in backward. */
TEST(graph_matmul_backward_keeps_forward_precision) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_tensor *a = random_param(&rng, 2, (int64_t[]){4, 8}, 1.0f, 0.0f);
    cc_tensor *b = random_param(&rng, 2, (int64_t[]){8, 8}, 1.0f, 0.0f);
    cc_tensor *c = random_param(&rng, 2, (int64_t[]){8, 8}, 1.0f, 0.0f);
    cc_graph *g = cc_graph_new();
    cc_graph_set_matmul_bf16(g, 1);
    cc_tensor *h = cc_matmul(g, a, b, 0, 1);     /* bf16 */
    cc_graph_set_matmul_bf16(g, 0);
    cc_tensor *y = cc_matmul(g, h, c, 0, 0);     /* f32 */
    cc_graph_set_matmul_bf16(g, 1);              /* backward built with the flag on */
    cc_tensor *loss = cc_sum(g, cc_mul(g, y, y));
    REQUIRE(cc_graph_build(g, &loss, 1) == 0 && cc_graph_backward(g, loss) == 0, "%s", cc_last_error());
    int n_bf16 = 0, n_f32 = 0;
    for (int i = 0; i < cc_graph_n_nodes(g); i++) {
        cc_tensor *t = cc_graph_node(g, i);
        if (t->op != CC_OP_MATMUL || t == h || t == y) continue;
        /* gradient products of y involve c or h's gradient; of h involve a or b */
        int of_h = t->src[0] == a || t->src[1] == a || t->src[0] == b || t->src[1] == b;
        if (of_h) {
            n_bf16 += t->iparams[2] == 1;
            CHECK(t->iparams[2] == 1, "a gradient product of the bf16 matmul is f32");
        } else {
            n_f32 += t->iparams[2] == 0;
            CHECK(t->iparams[2] == 0, "a gradient product of the f32 matmul is bf16");
        }
    }
    CHECK(n_bf16 == 2 && n_f32 == 2, "gradient products: %d bf16, %d f32 (expected 2 and 2)", n_bf16, n_f32);
    cc_graph_free(g);
    cc_tensor_free(a);
    cc_tensor_free(b);
    cc_tensor_free(c);
}
