/* ops.c — op constructors: check shapes, record a node, compute nothing.
 *
 * Conventions: elementwise and row-wise ops want contiguous sources and insert a CC_OP_CONT copy
 * when given a strided view; matmul and attention read strided operands directly. An op handed a
 * NULL source returns NULL (the first error is kept on the graph). Each node gets the
 * CC_FLAG_NEEDS_GRAD flag when any source is a parameter or needs a gradient itself.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/graph.h"

static void mark_needs_grad(cc_tensor *node) {
    for (int s = 0; s < CC_MAX_SRC; s++) {
        cc_tensor *src = node->src[s];
        if (src && (src->flags & (CC_FLAG_PARAM | CC_FLAG_NEEDS_GRAD))) node->flags |= CC_FLAG_NEEDS_GRAD;
    }
}

/* New node with sources; derives the needs-grad flag. */
static cc_tensor *make_node(cc_graph *g, cc_op op, int ndim, const int64_t *shape, cc_tensor *a, cc_tensor *b,
                            cc_tensor *c, cc_tensor *d) {
    cc_tensor *node = cc_graph_new_node(g, op, CC_F32, ndim, shape);
    if (!node) return NULL;
    node->src[0] = a;
    node->src[1] = b;
    node->src[2] = c;
    node->src[3] = d;
    mark_needs_grad(node);
    return node;
}

#define SHAPE(t) cc_shape_str((t), shape_a, sizeof shape_a)
#define SHAPE2(t) cc_shape_str((t), shape_b, sizeof shape_b)
#define SHAPE_BUFFERS char shape_a[96] __attribute__((unused)), shape_b[96] __attribute__((unused))

static int require_f32(cc_graph *g, const char *op, const cc_tensor *t) {
    if (t->dtype == CC_F32) return 1;
    cc_graph_fail(g, "%s: %s is %s, expected f32", op, t->name[0] ? t->name : "operand", cc_dtype_name(t->dtype));
    return 0;
}

/* ---- views ---- */

static cc_tensor *make_view(cc_graph *g, cc_tensor *x, int ndim, const int64_t *shape, const int64_t *stride,
                            int64_t offset) {
    cc_tensor *v = make_node(g, CC_OP_VIEW, ndim, shape, x, NULL, NULL, NULL);
    if (!v) return NULL;
    v->dtype = x->dtype;
    for (int i = 0; i < ndim; i++) v->stride[i] = stride[i];
    v->view_offset = offset;
    return v;
}

cc_tensor *cc_cont(cc_graph *g, cc_tensor *x) {
    if (!x) return NULL;
    if (cc_is_contiguous(x)) return x;
    cc_tensor *out = make_node(g, CC_OP_CONT, x->ndim, x->shape, x, NULL, NULL, NULL);
    if (out) out->dtype = x->dtype;
    return out;
}

cc_tensor *cc_reshape(cc_graph *g, cc_tensor *x, int ndim, const int64_t *shape) {
    SHAPE_BUFFERS;
    if (!x) return NULL;
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    cc_tensor probe = {.ndim = ndim};
    for (int i = 0; i < ndim && i < CC_MAX_DIMS; i++) probe.shape[i] = shape[i];
    if (ndim < 0 || ndim > CC_MAX_DIMS || count != cc_nelements(x))
        return cc_graph_fail(g, "reshape: cannot reshape %s to %s", SHAPE(x), SHAPE2(&probe));
    x = cc_cont(g, x);
    if (!x) return NULL;
    cc_set_contiguous_strides(&probe);
    cc_tensor *v = make_view(g, x, ndim, shape, probe.stride, 0);
    if (v) v->iparams[0] = 0; /* view kind: reshape */
    return v;
}

cc_tensor *cc_permute(cc_graph *g, cc_tensor *x, const int *perm) {
    if (!x) return NULL;
    int64_t shape[CC_MAX_DIMS], stride[CC_MAX_DIMS];
    int seen = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= x->ndim || (seen & (1 << perm[i])))
            return cc_graph_fail(g, "permute: invalid permutation for a %d-dim tensor", x->ndim);
        seen |= 1 << perm[i];
        shape[i] = x->shape[perm[i]];
        stride[i] = x->stride[perm[i]];
    }
    cc_tensor *v = make_view(g, x, x->ndim, shape, stride, 0);
    if (!v) return NULL;
    v->iparams[0] = 1; /* view kind: permute */
    for (int i = 0; i < x->ndim; i++) v->iparams[1 + i] = perm[i];
    return v;
}

cc_tensor *cc_transpose(cc_graph *g, cc_tensor *x, int dim0, int dim1) {
    if (!x) return NULL;
    if (dim0 < 0 || dim1 < 0 || dim0 >= x->ndim || dim1 >= x->ndim)
        return cc_graph_fail(g, "transpose: dims %d, %d out of range for %d dims", dim0, dim1, x->ndim);
    int perm[CC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) perm[i] = i;
    perm[dim0] = dim1;
    perm[dim1] = dim0;
    return cc_permute(g, x, perm);
}

cc_tensor *cc_slice(cc_graph *g, cc_tensor *x, int dim, int64_t start, int64_t length) {
    SHAPE_BUFFERS;
    if (!x) return NULL;
    if (dim < 0 || dim >= x->ndim || start < 0 || length < 0 || start + length > x->shape[dim])
        return cc_graph_fail(g, "slice: [%lld, %lld) of dim %d is outside %s", (long long)start,
                             (long long)(start + length), dim, SHAPE(x));
    int64_t shape[CC_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = length;
    cc_tensor *v = make_view(g, x, x->ndim, shape, x->stride, start * x->stride[dim]);
    if (!v) return NULL;
    v->iparams[0] = 2; /* view kind: slice */
    v->iparams[1] = dim;
    v->iparams[2] = (int32_t)start;
    return v;
}

/* ---- matmul ---- */

/* Which of the last two dims has unit stride decides how the kernel reads a matrix. */
static int matrix_readable(const cc_tensor *t) {
    return t->ndim >= 2 && (t->stride[t->ndim - 1] == 1 || t->stride[t->ndim - 2] == 1);
}

/* Can the leading dims and the row dim be read as one matrix with a uniform row stride? */
static int rows_collapsible(const cc_tensor *t) {
    if (t->stride[t->ndim - 1] != 1) return 0;
    for (int i = 0; i + 2 < t->ndim; i++)
        if (t->stride[i] != t->stride[i + 1] * t->shape[i + 1]) return 0;
    return 1;
}

cc_tensor *cc_matmul_scaled(cc_graph *g, cc_tensor *a, cc_tensor *b, int trans_a, int trans_b, float alpha) {
    SHAPE_BUFFERS;
    if (!a || !b) return NULL;
    if (!require_f32(g, "matmul", a) || !require_f32(g, "matmul", b)) return NULL;
    if (a->ndim < 2 || b->ndim < 2)
        return cc_graph_fail(g, "matmul: operands need 2+ dims, got %s and %s", SHAPE(a), SHAPE2(b));
    /* x[..., M, K] · W: when B is a plain matrix, read A as one tall matrix */
    if (a->ndim > 2 && b->ndim == 2 && !trans_a && rows_collapsible(a)) {
        int64_t rows = cc_nrows(a), k = a->shape[a->ndim - 1];
        int64_t flat_shape[2] = {rows, k};
        cc_tensor *flat = a;
        if (!cc_is_contiguous(a)) {
            /* same memory with a uniform row stride: a 2-dim view */
            int64_t flat_stride[2] = {a->stride[a->ndim - 2], 1};
            flat = make_view(g, a, 2, flat_shape, flat_stride, 0);
            if (flat) flat->iparams[0] = 3; /* view kind: row-collapse of a strided tensor */
        } else {
            flat = cc_reshape(g, a, 2, flat_shape);
        }
        cc_tensor *out2 = cc_matmul_scaled(g, flat, b, 0, trans_b, alpha);
        if (!out2) return NULL;
        int64_t out_shape[CC_MAX_DIMS];
        memcpy(out_shape, a->shape, sizeof out_shape);
        out_shape[a->ndim - 1] = out2->shape[1];
        return cc_reshape(g, out2, a->ndim, out_shape);
    }
    int64_t m = trans_a ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
    int64_t ka = trans_a ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    int64_t kb = trans_b ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    int64_t n = trans_b ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    if (ka != kb)
        return cc_graph_fail(g, "matmul: inner dimensions differ: %s%s · %s%s", SHAPE(a), trans_a ? "ᵀ" : "", SHAPE2(b),
                             trans_b ? "ᵀ" : "");
    if (b->ndim > 2) {
        if (b->ndim != a->ndim) return cc_graph_fail(g, "matmul: batch dims differ: %s · %s", SHAPE(a), SHAPE2(b));
        for (int i = 0; i + 2 < a->ndim; i++)
            if (a->shape[i] != b->shape[i]) return cc_graph_fail(g, "matmul: batch dims differ: %s · %s", SHAPE(a), SHAPE2(b));
    }
    if (!matrix_readable(a)) a = cc_cont(g, a);
    if (!matrix_readable(b)) b = cc_cont(g, b);
    int64_t shape[CC_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 2] = m;
    shape[a->ndim - 1] = n;
    cc_tensor *out = make_node(g, CC_OP_MATMUL, a->ndim, shape, a, b, NULL, NULL);
    if (!out) return NULL;
    out->iparams[0] = trans_a;
    out->iparams[1] = trans_b;
    out->iparams[2] = cc_graph_matmul_bf16(g);
    out->fparams[0] = alpha;
    return out;
}

cc_tensor *cc_matmul(cc_graph *g, cc_tensor *a, cc_tensor *b, int trans_a, int trans_b) {
    return cc_matmul_scaled(g, a, b, trans_a, trans_b, 1.0f);
}

cc_tensor *cc_linear(cc_graph *g, cc_tensor *x, cc_tensor *weight, cc_tensor *bias) {
    cc_tensor *y = cc_matmul(g, x, weight, 0, 1);
    return bias ? cc_add(g, y, bias) : y;
}

/* ---- elementwise ---- */

static int is_trailing_shape(const cc_tensor *a, const cc_tensor *b) {
    if (b->ndim > a->ndim) return 0;
    for (int i = 0; i < b->ndim; i++)
        if (b->shape[b->ndim - 1 - i] != a->shape[a->ndim - 1 - i]) return 0;
    return 1;
}

cc_tensor *cc_add_scaled(cc_graph *g, cc_tensor *a, cc_tensor *b, float beta) {
    SHAPE_BUFFERS;
    if (!a || !b) return NULL;
    if (!require_f32(g, "add", a) || !require_f32(g, "add", b)) return NULL;
    if (!is_trailing_shape(a, b))
        return cc_graph_fail(g, "add: %s and %s do not match (the second must equal the first or its trailing dims)",
                             SHAPE(a), SHAPE2(b));
    a = cc_cont(g, a);
    b = cc_cont(g, b);
    cc_tensor *out = make_node(g, CC_OP_ADD, a ? a->ndim : 0, a ? a->shape : NULL, a, b, NULL, NULL);
    if (out) out->fparams[0] = beta;
    return out;
}

cc_tensor *cc_add(cc_graph *g, cc_tensor *a, cc_tensor *b) { return cc_add_scaled(g, a, b, 1.0f); }
cc_tensor *cc_sub(cc_graph *g, cc_tensor *a, cc_tensor *b) { return cc_add_scaled(g, a, b, -1.0f); }

cc_tensor *cc_mul(cc_graph *g, cc_tensor *a, cc_tensor *b) {
    SHAPE_BUFFERS;
    if (!a || !b) return NULL;
    if (!cc_same_shape(a, b)) return cc_graph_fail(g, "mul: shapes differ: %s and %s", SHAPE(a), SHAPE2(b));
    a = cc_cont(g, a);
    b = cc_cont(g, b);
    return a && b ? make_node(g, CC_OP_MUL, a->ndim, a->shape, a, b, NULL, NULL) : NULL;
}

cc_tensor *cc_scale(cc_graph *g, cc_tensor *x, float c) {
    x = cc_cont(g, x);
    if (!x) return NULL;
    cc_tensor *out = make_node(g, CC_OP_SCALE, x->ndim, x->shape, x, NULL, NULL, NULL);
    if (out) out->fparams[0] = c;
    return out;
}

cc_tensor *cc_mul_scalar(cc_graph *g, cc_tensor *x, cc_tensor *s) {
    SHAPE_BUFFERS;
    if (!x || !s) return NULL;
    if (cc_nelements(s) != 1) return cc_graph_fail(g, "mul_scalar: scalar operand has shape %s", SHAPE(s));
    x = cc_cont(g, x);
    return x ? make_node(g, CC_OP_MUL_SCALAR, x->ndim, x->shape, x, s, NULL, NULL) : NULL;
}

cc_tensor *cc_exp(cc_graph *g, cc_tensor *x) {
    x = cc_cont(g, x);
    return x ? make_node(g, CC_OP_EXP, x->ndim, x->shape, x, NULL, NULL, NULL) : NULL;
}

cc_tensor *cc_act(cc_graph *g, cc_tensor *x, cc_act_kind kind) {
    x = cc_cont(g, x);
    if (!x) return NULL;
    cc_tensor *out = make_node(g, CC_OP_ACT, x->ndim, x->shape, x, NULL, NULL, NULL);
    if (out) out->iparams[0] = kind;
    return out;
}

/* ---- row-wise ---- */

cc_tensor *cc_layernorm(cc_graph *g, cc_tensor *x, cc_tensor *gamma, cc_tensor *beta, float eps) {
    SHAPE_BUFFERS;
    if (!x || !gamma || !beta) return NULL;
    int64_t width = x->shape[x->ndim - 1];
    if (gamma->ndim != 1 || beta->ndim != 1 || gamma->shape[0] != width || beta->shape[0] != width)
        return cc_graph_fail(g, "layernorm: input %s needs gamma and beta of shape [%lld], got %s", SHAPE(x),
                             (long long)width, SHAPE2(gamma->shape[0] != width ? gamma : beta));
    x = cc_cont(g, x);
    cc_tensor *out = x ? make_node(g, CC_OP_LAYERNORM, x->ndim, x->shape, x, gamma, beta, NULL) : NULL;
    if (out) out->fparams[0] = eps;
    return out;
}

cc_tensor *cc_softmax(cc_graph *g, cc_tensor *x, float scale, int causal) {
    SHAPE_BUFFERS;
    if (!x) return NULL;
    if (causal && (x->ndim < 2 || x->shape[x->ndim - 1] != x->shape[x->ndim - 2]))
        return cc_graph_fail(g, "softmax: a causal mask needs square [..., T, T] scores, got %s", SHAPE(x));
    x = cc_cont(g, x);
    cc_tensor *out = x ? make_node(g, CC_OP_SOFTMAX, x->ndim, x->shape, x, NULL, NULL, NULL) : NULL;
    if (out) {
        out->iparams[0] = causal;
        out->fparams[0] = scale;
    }
    return out;
}

cc_tensor *cc_attention(cc_graph *g, cc_tensor *q, cc_tensor *k, cc_tensor *v, int n_heads, float scale, int causal) {
    SHAPE_BUFFERS;
    if (!q || !k || !v) return NULL;
    if (q->ndim != 3 || !cc_same_shape(q, k) || !cc_same_shape(q, v))
        return cc_graph_fail(g, "attention: q, k, v must be [B, T, C] of one shape, got q %s, k %s", SHAPE(q), SHAPE2(k));
    if (n_heads <= 0 || q->shape[2] % n_heads != 0)
        return cc_graph_fail(g, "attention: width %lld is not divisible by %d heads", (long long)q->shape[2], n_heads);
    cc_tensor *qkv[3] = {q, k, v};
    for (int i = 0; i < 3; i++)
        if (qkv[i]->stride[2] != 1 || qkv[i]->stride[0] != qkv[i]->stride[1] * qkv[i]->shape[1]) qkv[i] = cc_cont(g, qkv[i]);
    cc_tensor *out = make_node(g, CC_OP_ATTENTION, 3, q->shape, qkv[0], qkv[1], qkv[2], NULL);
    if (!out) return NULL;
    out->iparams[0] = n_heads;
    out->iparams[1] = causal;
    out->fparams[0] = scale;
    return out;
}

cc_tensor *cc_get_rows(cc_graph *g, cc_tensor *table, cc_tensor *ids) {
    SHAPE_BUFFERS;
    if (!table || !ids) return NULL;
    if (table->ndim != 2 || ids->ndim != 1 || ids->dtype != CC_I32)
        return cc_graph_fail(g, "get_rows: need a [V, C] table and int32 [N] ids, got %s and %s (%s)", SHAPE(table),
                             SHAPE2(ids), cc_dtype_name(ids->dtype));
    table = cc_cont(g, table);
    int64_t shape[2] = {ids->shape[0], table ? table->shape[1] : 0};
    return table ? make_node(g, CC_OP_GET_ROWS, 2, shape, table, ids, NULL, NULL) : NULL;
}

cc_tensor *cc_patchify(cc_graph *g, cc_tensor *images, int patch_size) {
    SHAPE_BUFFERS;
    if (!images) return NULL;
    if (images->ndim != 4 || patch_size <= 0 || images->shape[2] % patch_size || images->shape[3] % patch_size)
        return cc_graph_fail(g, "patchify: images %s are not [B, C, H, W] with H and W multiples of %d", SHAPE(images),
                             patch_size);
    images = cc_cont(g, images);
    if (!images) return NULL;
    int64_t grid_h = images->shape[2] / patch_size, grid_w = images->shape[3] / patch_size;
    int64_t shape[3] = {images->shape[0], grid_h * grid_w, images->shape[1] * patch_size * patch_size};
    cc_tensor *out = make_node(g, CC_OP_PATCHIFY, 3, shape, images, NULL, NULL, NULL);
    if (out) out->iparams[0] = patch_size;
    return out;
}

cc_tensor *cc_prepend_row(cc_graph *g, cc_tensor *x, cc_tensor *row) {
    SHAPE_BUFFERS;
    if (!x || !row) return NULL;
    if (x->ndim != 3 || cc_nelements(row) != x->shape[2])
        return cc_graph_fail(g, "prepend_row: need [B, N, C] and [C], got %s and %s", SHAPE(x), SHAPE2(row));
    x = cc_cont(g, x);
    row = cc_cont(g, row);
    int64_t shape[3] = {x->shape[0], x->shape[1] + 1, x->shape[2]};
    return x && row ? make_node(g, CC_OP_PREPEND_ROW, 3, shape, x, row, NULL, NULL) : NULL;
}

cc_tensor *cc_l2norm(cc_graph *g, cc_tensor *x, float eps) {
    x = cc_cont(g, x);
    cc_tensor *out = x ? make_node(g, CC_OP_L2NORM, x->ndim, x->shape, x, NULL, NULL, NULL) : NULL;
    if (out) out->fparams[0] = eps;
    return out;
}

cc_tensor *cc_cross_entropy(cc_graph *g, cc_tensor *logits, cc_tensor *labels) {
    SHAPE_BUFFERS;
    if (!logits || !labels) return NULL;
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0] || labels->dtype != CC_I32)
        return cc_graph_fail(g, "cross_entropy: need [R, C] logits and int32 [R] labels, got %s and %s", SHAPE(logits),
                             SHAPE2(labels));
    logits = cc_cont(g, logits);
    int64_t one = 1;
    return logits ? make_node(g, CC_OP_CROSS_ENTROPY, 1, &one, logits, labels, NULL, NULL) : NULL;
}

cc_tensor *cc_siglip_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *params) {
    SHAPE_BUFFERS;
    if (!img || !txt || !params) return NULL;
    if (img->ndim != 2 || !cc_same_shape(img, txt) || cc_nelements(params) != 2)
        return cc_graph_fail(g, "siglip_loss: need [B, D] image and text features and 2 parameters, got %s and %s",
                             SHAPE(img), SHAPE2(txt));
    img = cc_cont(g, img);
    txt = cc_cont(g, txt);
    params = cc_cont(g, params);
    int64_t one = 1;
    return img && txt && params ? make_node(g, CC_OP_SIGLIP_LOSS, 1, &one, img, txt, params, NULL) : NULL;
}

/* ---- reductions and broadcasts ---- */

cc_tensor *cc_sum(cc_graph *g, cc_tensor *x) {
    x = cc_cont(g, x);
    int64_t one = 1;
    return x ? make_node(g, CC_OP_SUM, 1, &one, x, NULL, NULL, NULL) : NULL;
}

cc_tensor *cc_sum_to(cc_graph *g, cc_tensor *x, int ndim, const int64_t *shape) {
    SHAPE_BUFFERS;
    if (!x) return NULL;
    cc_tensor probe = {.ndim = ndim};
    for (int i = 0; i < ndim && i < CC_MAX_DIMS; i++) probe.shape[i] = shape[i];
    if (ndim < 1 || !is_trailing_shape(x, &probe))
        return cc_graph_fail(g, "sum_to: %s is not a trailing shape of %s", SHAPE(&probe), SHAPE2(x));
    x = cc_cont(g, x);
    return x ? make_node(g, CC_OP_SUM_TO, ndim, shape, x, NULL, NULL, NULL) : NULL;
}

cc_tensor *cc_repeat(cc_graph *g, cc_tensor *x, const cc_tensor *like) {
    SHAPE_BUFFERS;
    if (!x || !like) return NULL;
    if (!is_trailing_shape(like, x) && cc_nelements(x) != 1)
        return cc_graph_fail(g, "repeat: cannot broadcast %s to %s", SHAPE(x), SHAPE2(like));
    x = cc_cont(g, x);
    return x ? make_node(g, CC_OP_REPEAT, like->ndim, like->shape, x, NULL, NULL, NULL) : NULL;
}

cc_tensor *cc_dot(cc_graph *g, cc_tensor *a, cc_tensor *b) {
    SHAPE_BUFFERS;
    if (!a || !b) return NULL;
    if (!cc_same_shape(a, b)) return cc_graph_fail(g, "dot: shapes differ: %s and %s", SHAPE(a), SHAPE2(b));
    a = cc_cont(g, a);
    b = cc_cont(g, b);
    int64_t one = 1;
    return a && b ? make_node(g, CC_OP_DOT, 1, &one, a, b, NULL, NULL) : NULL;
}

cc_tensor *cc_concat(cc_graph *g, cc_tensor *a, cc_tensor *b) {
    SHAPE_BUFFERS;
    if (!a || !b) return NULL;
    int same = a->ndim == b->ndim && a->ndim >= 1;
    for (int i = 1; same && i < a->ndim; i++) same = a->shape[i] == b->shape[i];
    if (!same) return cc_graph_fail(g, "concat: %s and %s differ beyond the first dim", SHAPE(a), SHAPE2(b));
    a = cc_cont(g, a);
    b = cc_cont(g, b);
    if (!a || !b) return NULL;
    int64_t shape[CC_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[0] = a->shape[0] + b->shape[0];
    return make_node(g, CC_OP_CONCAT, a->ndim, shape, a, b, NULL, NULL);
}
