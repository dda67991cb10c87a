/* graph.h — building and running computation graphs (ggml style).
 *
 *   cc_graph *g = cc_graph_new();
 *   cc_tensor *x = cc_input(g, CC_F32, 2, (int64_t[]){n, d}, "x");
 *   cc_tensor *y = cc_layernorm(g, cc_matmul(g, x, w, 0, 1), gamma, beta, 1e-5f);
 *   cc_graph_build(g, &y, 1);            // collect nodes in topological order
 *   cc_graph_backward(g, loss);          // optional: add gradient nodes
 *   cc_graph_plan(g, backend);           // assign memory (liveness-based reuse), report peak
 *   cc_tensor_upload(x, host_x);  cc_graph_compute(g);  cc_tensor_download(y, host_y);
 *
 * Op constructors only record nodes and check shapes. A shape error sets the graph's error (naming
 * the op and both shapes) and returns NULL; every op given a NULL source returns NULL, so a model
 * can be built without checks after each op and tested once with cc_graph_error().
 */
#ifndef CLIPC_GRAPH_H
#define CLIPC_GRAPH_H

#include <stdio.h>

#include "engine/backend.h"
#include "engine/tensor.h"

typedef struct cc_graph cc_graph;

cc_graph *cc_graph_new(void);
void cc_graph_free(cc_graph *g);
const char *cc_graph_error(const cc_graph *g); /* NULL when no error */

/* ---- leaves ---- */
/* Input: memory allocated by the plan; fill with cc_tensor_upload after cc_graph_plan. */
cc_tensor *cc_input(cc_graph *g, cc_dtype dtype, int ndim, const int64_t *shape, const char *name);

/* ---- views (no compute, no memory) ---- */
cc_tensor *cc_reshape(cc_graph *g, cc_tensor *x, int ndim, const int64_t *shape); /* copies if not contiguous */
cc_tensor *cc_permute(cc_graph *g, cc_tensor *x, const int *perm);  /* out dim i = x dim perm[i] */
cc_tensor *cc_transpose(cc_graph *g, cc_tensor *x, int dim0, int dim1);
/* Slice along one dim: [start, start+length). */
cc_tensor *cc_slice(cc_graph *g, cc_tensor *x, int dim, int64_t start, int64_t length);
cc_tensor *cc_cont(cc_graph *g, cc_tensor *x); /* contiguous copy (returns x if already contiguous) */

/* ---- ops ---- */
/* op(A)[..., M, K] · op(B)[..., K, N] * alpha. B may have fewer (broadcast) batch dims than A.
 * Each operand needs one unit-stride dim among its last two (any row stride). */
cc_tensor *cc_matmul(cc_graph *g, cc_tensor *a, cc_tensor *b, int trans_a, int trans_b);
cc_tensor *cc_matmul_scaled(cc_graph *g, cc_tensor *a, cc_tensor *b, int trans_a, int trans_b, float alpha);
/* x [..., in] · Wᵀ [out, in] + bias [out] (bias may be NULL): PyTorch's nn.Linear. */
cc_tensor *cc_linear(cc_graph *g, cc_tensor *x, cc_tensor *weight, cc_tensor *bias);
cc_tensor *cc_add(cc_graph *g, cc_tensor *a, cc_tensor *b);        /* b: same shape or trailing shape */
cc_tensor *cc_sub(cc_graph *g, cc_tensor *a, cc_tensor *b);
cc_tensor *cc_add_scaled(cc_graph *g, cc_tensor *a, cc_tensor *b, float beta);
cc_tensor *cc_mul(cc_graph *g, cc_tensor *a, cc_tensor *b);        /* same shape */
cc_tensor *cc_scale(cc_graph *g, cc_tensor *x, float c);
cc_tensor *cc_mul_scalar(cc_graph *g, cc_tensor *x, cc_tensor *s); /* s has one element */
cc_tensor *cc_exp(cc_graph *g, cc_tensor *x);
cc_tensor *cc_layernorm(cc_graph *g, cc_tensor *x, cc_tensor *gamma, cc_tensor *beta, float eps);
cc_tensor *cc_softmax(cc_graph *g, cc_tensor *x, float scale, int causal);
/* q, k, v: [B, T, C] (unit stride in C, any row stride), C = n_heads * head_dim. */
cc_tensor *cc_attention(cc_graph *g, cc_tensor *q, cc_tensor *k, cc_tensor *v, int n_heads, float scale,
                        int causal);
cc_tensor *cc_act(cc_graph *g, cc_tensor *x, cc_act_kind kind);
cc_tensor *cc_get_rows(cc_graph *g, cc_tensor *table, cc_tensor *ids);     /* ids: int32 [N] */
cc_tensor *cc_patchify(cc_graph *g, cc_tensor *images, int patch_size);    /* [B,C,H,W] */
cc_tensor *cc_prepend_row(cc_graph *g, cc_tensor *x, cc_tensor *row);      /* [B,N,C] + [C] */
cc_tensor *cc_l2norm(cc_graph *g, cc_tensor *x, float eps);
cc_tensor *cc_cross_entropy(cc_graph *g, cc_tensor *logits, cc_tensor *labels); /* labels int32 [R] */
cc_tensor *cc_sum(cc_graph *g, cc_tensor *x);
cc_tensor *cc_sum_to(cc_graph *g, cc_tensor *x, int ndim, const int64_t *shape); /* trailing shape */
cc_tensor *cc_repeat(cc_graph *g, cc_tensor *x, const cc_tensor *like);
cc_tensor *cc_dot(cc_graph *g, cc_tensor *a, cc_tensor *b);
/* SigLIP loss of L2-normalised img, txt [B, D] with params [2] = (t', b): see train/loss.h. */
cc_tensor *cc_siglip_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *params);
/* [a; b] along dim 0; the other dims must match. */
cc_tensor *cc_concat(cc_graph *g, cc_tensor *a, cc_tensor *b);

/* ---- bf16 products ----
 * While set, matmuls recorded on the graph (and the gradient matmuls cc_graph_backward adds) round
 * both operands to bf16 and sum in float (cc_sgemm_bf16) on the CPU backend: training in bf16 with
 * float master weights. Other ops, and other backends, are unchanged. */
void cc_graph_set_matmul_bf16(cc_graph *g, int enable);
int cc_graph_matmul_bf16(const cc_graph *g);

/* ---- activation recomputation (gradient checkpointing) ----
 * With recompute on, cc_graph_checkpoint(g, in, out) declares that the nodes between `in` and `out`
 * (a transformer block) are computed again from `in` during backward instead of being kept from the
 * forward pass: only `in` and `out` survive the forward, at the price of one more forward per block.
 * Gradients are identical. Without recompute (the default) the call records nothing. */
void cc_graph_set_recompute(cc_graph *g, int enable);
void cc_graph_checkpoint(cc_graph *g, cc_tensor *input, cc_tensor *output);
int cc_graph_n_segments(const cc_graph *g);
void cc_graph_segment(const cc_graph *g, int i, cc_tensor **input, cc_tensor **output);

/* Generic node constructor used by the ops and by backward (checks nothing). */
cc_tensor *cc_graph_new_node(cc_graph *g, cc_op op, cc_dtype dtype, int ndim, const int64_t *shape);
/* Records an error on the graph (first one wins) and returns NULL. */
cc_tensor *cc_graph_fail(cc_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- running ---- */
/* Collects every node the outputs depend on, in topological order; marks them CC_FLAG_OUTPUT. */
int cc_graph_build(cc_graph *g, cc_tensor *const *outputs, int n_outputs);
/* Marks one more tensor as an output (kept alive, readable after compute); rebuilds nothing. */
int cc_graph_add_output(cc_graph *g, cc_tensor *t);
/* Recomputes the execution order from the outputs (after adding nodes). */
int cc_graph_rebuild_order(cc_graph *g);
/* Adds gradient nodes for d(loss)/d(every CC_FLAG_PARAM leaf that loss depends on); loss must be a
 * 1-element tensor. Afterwards param->grad is the gradient node (an output), or, for params with a
 * grad_acc tensor, the gradient is added into grad_acc. Call after cc_graph_build. */
int cc_graph_backward(cc_graph *g, cc_tensor *loss);
/* Assigns memory on the backend: inputs and outputs get their own regions; intermediates share
 * one arena by liveness. Returns 0 or -1. */
int cc_graph_plan(cc_graph *g, cc_backend *backend);
int cc_graph_compute(cc_graph *g);

int cc_graph_n_nodes(const cc_graph *g);
cc_tensor *cc_graph_node(const cc_graph *g, int i);
size_t cc_graph_peak_bytes(const cc_graph *g);   /* arena size: intermediates at their peak */
size_t cc_graph_naive_bytes(const cc_graph *g);  /* what no reuse would need, for reports */
cc_backend *cc_graph_backend(const cc_graph *g);
/* Per-op time profile of the last compute (set CLIPC_PROFILE=1 or call with enable=1). */
void cc_graph_set_profile(cc_graph *g, int enable);
void cc_graph_print_profile(const cc_graph *g, FILE *out);

/* Host <-> backend copies of whole (contiguous) tensors. */
int cc_tensor_upload(cc_tensor *t, const void *host_data);
int cc_tensor_download(const cc_tensor *t, void *host_data);

#endif
