/* autograd.c — reverse-mode differentiation on the graph.
 *
 * cc_graph_backward walks the forward order backwards. Each node that needs a gradient hands
 * gradient contributions to its sources through the rule for its op (below, one case per op);
 * contributions to one tensor are summed with add nodes. Rules are written with the same op
 * constructors as the forward pass, plus a few dedicated *_BACK ops, so every backend runs
 * backward with no extra code beyond those ops' kernels. Finally each parameter's gradient is
 * either made an output (param->grad) or added into its persistent accumulator (param->grad_acc)
 * with an in-place CC_OP_ACCUMULATE node.
 *
 * Recomputed segments (cc_graph_checkpoint): when the walk reaches a segment's output, the
 * segment's nodes are cloned from its input, each clone ordered after the output's gradient (its
 * `after` link), and the rules run on the clones. The forward originals then have no reader in
 * backward, so the planner frees them as soon as the forward pass is done with them.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "engine/util.h"

static int wants_grad(const cc_tensor *t) { return t && (t->flags & (CC_FLAG_PARAM | CC_FLAG_NEEDS_GRAD)); }

/* grad(t) += contribution */
static void add_grad(cc_graph *g, cc_tensor *t, cc_tensor *contribution) {
    if (!wants_grad(t) || !contribution) return;
    if (!cc_same_shape(t, contribution)) {
        char a[96], b[96];
        cc_graph_fail(g, "backward: gradient of %s has shape %s, expected %s", t->name, cc_shape_str(contribution, b, sizeof b),
                      cc_shape_str(t, a, sizeof a));
        return;
    }
    t->grad = t->grad ? cc_add(g, t->grad, contribution) : contribution;
}

static cc_tensor *backward_node(cc_graph *g, cc_tensor *op_node, cc_op op, int ndim, const int64_t *shape, cc_tensor *a,
                                cc_tensor *b, cc_tensor *c, cc_tensor *d) {
    if (!a) return NULL;
    cc_tensor *node = cc_graph_new_node(g, op, CC_F32, ndim, shape);
    if (!node) return NULL;
    node->src[0] = a;
    node->src[1] = b;
    node->src[2] = c;
    node->src[3] = d;
    memcpy(node->iparams, op_node->iparams, sizeof node->iparams);
    memcpy(node->fparams, op_node->fparams, sizeof node->fparams);
    node->flags |= CC_FLAG_NEEDS_GRAD; /* not differentiated again, but keeps grads flowing */
    return node;
}

/* Gradient of an operand that was broadcast into a larger result: sum over the extra dims. */
static cc_tensor *reduce_to(cc_graph *g, cc_tensor *grad, const cc_tensor *like) {
    if (cc_same_shape(grad, like)) return grad;
    return cc_sum_to(g, grad, like->ndim, like->shape);
}

static void matmul_backward(cc_graph *g, cc_tensor *node, cc_tensor *dy) {
    cc_tensor *a = node->src[0], *b = node->src[1];
    int ta = node->iparams[0], tb = node->iparams[1];
    float alpha = node->fparams[0];
    cc_tensor *da = NULL, *db = NULL;
    /* the gradient products multiply in the precision of the forward product */
    int graph_bf16 = cc_graph_matmul_bf16(g);
    cc_graph_set_matmul_bf16(g, node->iparams[2]);
    if (wants_grad(a)) {
        if (!ta) da = tb ? cc_matmul_scaled(g, dy, b, 0, 0, alpha) : cc_matmul_scaled(g, dy, b, 0, 1, alpha);
        else da = tb ? cc_matmul_scaled(g, b, dy, 1, 1, alpha) : cc_matmul_scaled(g, b, dy, 0, 1, alpha);
        add_grad(g, a, da);
    }
    if (wants_grad(b)) {
        if (!tb) db = ta ? cc_matmul_scaled(g, a, dy, 0, 0, alpha) : cc_matmul_scaled(g, a, dy, 1, 0, alpha);
        else db = ta ? cc_matmul_scaled(g, dy, a, 1, 1, alpha) : cc_matmul_scaled(g, dy, a, 1, 0, alpha);
        if (db && b->ndim < db->ndim) db = cc_sum_to(g, db, b->ndim, b->shape);
        add_grad(g, b, db);
    }
    cc_graph_set_matmul_bf16(g, graph_bf16);
}

static void view_backward(cc_graph *g, cc_tensor *node, cc_tensor *dy) {
    cc_tensor *src = node->src[0];
    switch (node->iparams[0]) {
    case 0: /* reshape */
    case 3: /* rows of a strided tensor read as one matrix: logically a reshape */
        add_grad(g, src, cc_reshape(g, dy, src->ndim, src->shape));
        break;
    case 1: { /* permute: apply the inverse permutation */
        int inverse[CC_MAX_DIMS];
        for (int i = 0; i < node->ndim; i++) inverse[node->iparams[1 + i]] = i;
        add_grad(g, src, cc_permute(g, dy, inverse));
        break;
    }
    case 2: /* slice: place dy in a zero tensor of the source's shape */
        add_grad(g, src, backward_node(g, node, CC_OP_VIEW_BACK, src->ndim, src->shape, cc_cont(g, dy), NULL, NULL, NULL));
        break;
    }
}

static void node_backward(cc_graph *g, cc_tensor *node) {
    cc_tensor *dy = node->grad;
    cc_tensor *x = node->src[0], *y = node->src[1];
    switch (node->op) {
    case CC_OP_NONE:
    case CC_OP_FILL:
    case CC_OP_ACCUMULATE: break;
    case CC_OP_VIEW: view_backward(g, node, dy); break;
    case CC_OP_CONT: add_grad(g, x, dy); break;
    case CC_OP_MATMUL: matmul_backward(g, node, dy); break;
    case CC_OP_ADD:
        add_grad(g, x, dy);
        if (wants_grad(y)) {
            cc_tensor *db = reduce_to(g, dy, y);
            add_grad(g, y, node->fparams[0] == 1.0f ? db : cc_scale(g, db, node->fparams[0]));
        }
        break;
    case CC_OP_MUL:
        if (wants_grad(x)) add_grad(g, x, cc_mul(g, dy, y));
        if (wants_grad(y)) add_grad(g, y, cc_mul(g, dy, x));
        break;
    case CC_OP_SCALE: add_grad(g, x, cc_scale(g, dy, node->fparams[0])); break;
    case CC_OP_MUL_SCALAR:
        if (wants_grad(x)) add_grad(g, x, cc_mul_scalar(g, dy, y));
        if (wants_grad(y)) add_grad(g, y, cc_reshape(g, cc_dot(g, dy, x), y->ndim, y->shape));
        break;
    case CC_OP_EXP: add_grad(g, x, cc_mul(g, dy, node)); break;
    case CC_OP_LAYERNORM: {
        cc_tensor *gamma = y, *beta = node->src[2];
        if (wants_grad(x)) add_grad(g, x, backward_node(g, node, CC_OP_LAYERNORM_BACK_X, x->ndim, x->shape, dy, x, gamma, NULL));
        if (wants_grad(gamma) || wants_grad(beta)) {
            int64_t shape[2] = {2, gamma->shape[0]};
            cc_tensor *both = backward_node(g, node, CC_OP_LAYERNORM_BACK_PARAMS, 2, shape, dy, x, NULL, NULL);
            int64_t row_shape[1] = {gamma->shape[0]};
            add_grad(g, gamma, cc_reshape(g, cc_slice(g, both, 0, 0, 1), 1, row_shape));
            add_grad(g, beta, cc_reshape(g, cc_slice(g, both, 0, 1, 1), 1, row_shape));
        }
        break;
    }
    case CC_OP_SOFTMAX: add_grad(g, x, backward_node(g, node, CC_OP_SOFTMAX_BACK, x->ndim, x->shape, dy, node, NULL, NULL)); break;
    case CC_OP_ATTENTION: {
        cc_tensor *q = node->src[0], *k = node->src[1], *v = node->src[2];
        int64_t shape[4] = {3, q->shape[0], q->shape[1], q->shape[2]};
        cc_tensor *dqkv = backward_node(g, node, CC_OP_ATTENTION_BACK, 4, shape, cc_cont(g, dy), q, k, v);
        cc_tensor *targets[3] = {q, k, v};
        for (int i = 0; i < 3; i++)
            if (wants_grad(targets[i])) add_grad(g, targets[i], cc_reshape(g, cc_slice(g, dqkv, 0, i, 1), 3, q->shape));
        break;
    }
    case CC_OP_ACT: add_grad(g, x, backward_node(g, node, CC_OP_ACT_BACK, x->ndim, x->shape, dy, x, NULL, NULL)); break;
    case CC_OP_GET_ROWS:
        add_grad(g, x, backward_node(g, node, CC_OP_GET_ROWS_BACK, x->ndim, x->shape, dy, y, NULL, NULL));
        break;
    case CC_OP_PATCHIFY:
        add_grad(g, x, backward_node(g, node, CC_OP_PATCHIFY_BACK, x->ndim, x->shape, dy, NULL, NULL, NULL));
        break;
    case CC_OP_PREPEND_ROW: {
        int64_t n_rows = x->shape[1];
        if (wants_grad(x)) add_grad(g, x, cc_cont(g, cc_slice(g, dy, 1, 1, n_rows)));
        if (wants_grad(y)) {
            int64_t width[1] = {x->shape[2]};
            cc_tensor *first = cc_sum_to(g, cc_slice(g, dy, 1, 0, 1), 1, width);
            add_grad(g, y, cc_reshape(g, first, y->ndim, y->shape));
        }
        break;
    }
    case CC_OP_L2NORM: add_grad(g, x, backward_node(g, node, CC_OP_L2NORM_BACK, x->ndim, x->shape, dy, x, NULL, NULL)); break;
    case CC_OP_CROSS_ENTROPY:
        add_grad(g, x, backward_node(g, node, CC_OP_CROSS_ENTROPY_BACK, x->ndim, x->shape, dy, x, y, NULL));
        break;
    case CC_OP_SUM:
    case CC_OP_SUM_TO: add_grad(g, x, cc_repeat(g, dy, x)); break;
    case CC_OP_REPEAT: add_grad(g, x, cc_nelements(x) == 1 ? cc_reshape(g, cc_sum(g, dy), x->ndim, x->shape) : cc_sum_to(g, dy, x->ndim, x->shape)); break;
    case CC_OP_DOT:
        if (wants_grad(x)) add_grad(g, x, cc_mul_scalar(g, y, dy));
        if (wants_grad(y)) add_grad(g, y, cc_mul_scalar(g, x, dy));
        break;
    case CC_OP_CONCAT:
        if (wants_grad(x)) add_grad(g, x, cc_cont(g, cc_slice(g, dy, 0, 0, x->shape[0])));
        if (wants_grad(y)) add_grad(g, y, cc_cont(g, cc_slice(g, dy, 0, x->shape[0], y->shape[0])));
        break;
    case CC_OP_SIGLIP_LOSS: {
        cc_tensor *params = node->src[2];
        int64_t bd = cc_nelements(x), total = 2 * bd + 2, two = 2;
        cc_tensor *all = backward_node(g, node, CC_OP_SIGLIP_LOSS_BACK, 1, &total, dy, x, y, params);
        if (wants_grad(x)) add_grad(g, x, cc_reshape(g, cc_slice(g, all, 0, 0, bd), x->ndim, x->shape));
        if (wants_grad(y)) add_grad(g, y, cc_reshape(g, cc_slice(g, all, 0, bd, bd), y->ndim, y->shape));
        if (wants_grad(params)) add_grad(g, params, cc_reshape(g, cc_slice(g, all, 0, 2 * bd, 2), params->ndim, &two));
        break;
    }
    default:
        cc_graph_fail(g, "backward: no gradient rule for op %s", cc_op_name(node->op));
        break;
    }
}

/* A node that can be part of a recomputed segment: graph-owned, computed (not an input). */
static int recomputable(const cc_tensor *t) {
    return t && t->order >= 0 && !(t->flags & (CC_FLAG_EXTERNAL | CC_FLAG_INPUT)) && t->op != CC_OP_NONE;
}

/* seg_of[order] = segment index of each forward node inside a declared segment, else -1: the
 * ancestors of the segment's output computed after its input. Fails if a node outside a segment
 * but before its output reads one of its interior nodes (that read would come too late). */
static int mark_segments(cc_graph *g, cc_tensor **forward, int n_forward, int *seg_of) {
    cc_tensor **stack = malloc((size_t)(n_forward + 1) * sizeof *stack);
    if (!stack) {
        cc_graph_fail(g, "backward: out of memory marking recomputed segments");
        return -1;
    }
    for (int i = 0; i < n_forward; i++) seg_of[i] = -1;
    for (int s = 0; s < cc_graph_n_segments(g); s++) {
        cc_tensor *in, *out;
        cc_graph_segment(g, s, &in, &out);
        if (in->order < 0 || !recomputable(out) || out->order <= in->order) continue;
        int depth = 0;
        stack[depth++] = out;
        seg_of[out->order] = s;
        while (depth > 0) {
            cc_tensor *node = stack[--depth];
            for (int k = 0; k < CC_MAX_SRC; k++) {
                cc_tensor *src = node->src[k];
                if (!recomputable(src) || src->order <= in->order || seg_of[src->order] == s) continue;
                if (seg_of[src->order] >= 0) {
                    free(stack);
                    cc_graph_fail(g, "backward: recomputed segments overlap at %s", src->name);
                    return -1;
                }
                seg_of[src->order] = s;
                stack[depth++] = src;
            }
        }
    }
    free(stack);
    for (int i = 0; i < n_forward; i++) {
        for (int k = 0; k < CC_MAX_SRC; k++) {
            cc_tensor *src = forward[i]->src[k];
            if (!recomputable(src) || seg_of[src->order] < 0 || seg_of[src->order] == seg_of[i]) continue;
            cc_tensor *in, *out;
            cc_graph_segment(g, seg_of[src->order], &in, &out);
            if (src != out && i < out->order) {
                cc_graph_fail(g, "backward: %s inside a recomputed segment is read by %s outside it", src->name,
                              forward[i]->name);
                return -1;
            }
        }
    }
    return 0;
}

/* Backward through segment s from its output down: clone its nodes (sources inside the segment
 * map to clones), then apply each clone's rule with the gradient its original received. */
static void segment_backward(cc_graph *g, cc_tensor **forward, const int *seg_of, cc_tensor **clone_of, int s) {
    cc_tensor *in, *out;
    cc_graph_segment(g, s, &in, &out);
    for (int i = in->order + 1; i <= out->order; i++) {
        if (seg_of[i] != s) continue;
        cc_tensor *orig = forward[i];
        cc_tensor *c = cc_graph_new_node(g, orig->op, orig->dtype, orig->ndim, orig->shape);
        if (!c) return;
        memcpy(c->stride, orig->stride, sizeof c->stride);
        memcpy(c->iparams, orig->iparams, sizeof c->iparams);
        memcpy(c->fparams, orig->fparams, sizeof c->fparams);
        c->view_offset = orig->view_offset;
        c->flags = orig->flags & ~CC_FLAG_OUTPUT;
        for (int k = 0; k < CC_MAX_SRC; k++) {
            cc_tensor *src = orig->src[k];
            c->src[k] = recomputable(src) && seg_of[src->order] == s ? clone_of[src->order] : src;
        }
        c->after = out->grad; /* recompute only once backward has reached this segment */
        cc_tensor_set_name(c, "%.*s (recomputed)", CC_NAME_MAX - 16, orig->name);
        clone_of[i] = c;
    }
    for (int i = out->order; i > in->order && !cc_graph_error(g); i--) {
        if (seg_of[i] != s) continue;
        cc_tensor *orig = forward[i], *c = clone_of[i];
        if (orig->grad) c->grad = c->grad ? cc_add(g, c->grad, orig->grad) : orig->grad;
        if (c->grad && wants_grad(c)) node_backward(g, c);
    }
}

int cc_graph_backward(cc_graph *g, cc_tensor *loss) {
    if (cc_graph_error(g)) {
        cc_set_error("%s", cc_graph_error(g));
        return -1;
    }
    if (!loss || cc_nelements(loss) != 1) {
        cc_set_error("backward: the loss must be a single value");
        return -1;
    }
    if (!wants_grad(loss)) {
        cc_set_error("backward: the loss does not depend on any trainable parameter");
        return -1;
    }
    int n_forward = cc_graph_n_nodes(g);
    if (loss->order < 0) {
        cc_set_error("backward: the loss is not in the graph (build the graph with it as an output first)");
        return -1;
    }
    /* collect the forward nodes and the parameters they read, before adding anything */
    cc_tensor **forward = malloc((size_t)(n_forward + 1) * sizeof *forward);
    cc_tensor **params = NULL;
    int n_params = 0, cap_params = 0;
    if (!forward) {
        cc_set_error("backward: out of memory");
        return -1;
    }
    for (int i = 0; i < n_forward; i++) {
        cc_tensor *node = cc_graph_node(g, i);
        forward[i] = node;
        node->grad = NULL;
        for (int s = 0; s < CC_MAX_SRC; s++) {
            cc_tensor *src = node->src[s];
            if (!src || !(src->flags & CC_FLAG_PARAM) || src->order >= 0) continue;
            int known = 0;
            for (int p = 0; p < n_params; p++) known |= params[p] == src;
            if (known) continue;
            if (n_params == cap_params) {
                cap_params = cap_params ? cap_params * 2 : 64;
                cc_tensor **grown = realloc(params, (size_t)cap_params * sizeof *grown);
                if (!grown) {
                    free(forward);
                    free(params);
                    cc_set_error("backward: out of memory");
                    return -1;
                }
                params = grown;
            }
            params[n_params++] = src;
            src->grad = NULL;
        }
    }
    int64_t one = 1;
    cc_tensor *seed = cc_graph_new_node(g, CC_OP_FILL, CC_F32, loss->ndim, loss->shape);
    if (seed) seed->fparams[0] = 1.0f;
    (void)one;
    loss->grad = seed;
    int *seg_of = NULL;
    cc_tensor **clone_of = NULL;
    if (cc_graph_n_segments(g) > 0) {
        seg_of = malloc((size_t)(n_forward + 1) * sizeof *seg_of);
        clone_of = calloc((size_t)(n_forward + 1), sizeof *clone_of);
        if (!seg_of || !clone_of) cc_graph_fail(g, "backward: out of memory");
        else mark_segments(g, forward, n_forward, seg_of);
    }
    for (int i = loss->order; i >= 0 && !cc_graph_error(g); i--) {
        cc_tensor *node = forward[i];
        if (seg_of && seg_of[i] >= 0) {
            cc_tensor *in, *out;
            cc_graph_segment(g, seg_of[i], &in, &out);
            if (node == out) segment_backward(g, forward, seg_of, clone_of, seg_of[i]);
            continue;
        }
        if (node->grad && wants_grad(node)) node_backward(g, node);
    }
    free(seg_of);
    free(clone_of);
    int status = 0;
    /* last-used parameters first: the order then computes each weight gradient (and frees what it
     * reads) as soon as backward reaches its layer, not after the whole backward pass */
    for (int p = n_params - 1; p >= 0 && !cc_graph_error(g); p--) {
        cc_tensor *param = params[p];
        if (!param->grad) continue;
        if (param->grad_acc) {
            cc_tensor *acc = cc_graph_new_node(g, CC_OP_ACCUMULATE, CC_F32, param->ndim, param->shape);
            if (!acc) break;
            acc->src[0] = param->grad_acc;
            acc->src[1] = cc_cont(g, param->grad);
            cc_tensor_set_name(acc, "accumulate %s", param->name);
            if (cc_graph_add_output(g, acc) != 0) break;
        } else {
            param->grad = cc_cont(g, param->grad);
            if (param->grad && cc_graph_add_output(g, param->grad) != 0) break;
        }
    }
    if (cc_graph_error(g)) {
        cc_set_error("%s", cc_graph_error(g));
        status = -1;
    } else {
        status = cc_graph_rebuild_order(g);
    }
    free(forward);
    free(params);
    return status;
}
