/* loss.h — CLIP's contrastive losses, as graph nodes.
 *
 * InfoNCE (CLIP, the default):
 *   logits = exp(logit_scale) · norm(img) · norm(txt)ᵀ ; loss = ½·(CE(logits, labels) + CE(logitsᵀ, labels))
 *   where labels[i] is the column of row i's partner (arange for aligned batches).
 * SigLIP (Zhai et al. 2023), pairs aligned by row:
 *   loss = -(1/B) Σ_ij log σ(z_ij · (exp(logit_scale) · norm(img_i)·norm(txt_j) + logit_bias)),
 *   z = +1 on the diagonal and -1 off it; one fused op (CC_OP_SIGLIP_LOSS) forms the B × B logits a
 *   block of rows at a time, in the forward and the backward pass.
 * Either loss, with modal_reg λ > 0: + λ·‖mean(norm(img)) − mean(norm(txt))‖². */
#ifndef CLIPC_LOSS_H
#define CLIPC_LOSS_H

#include "engine/graph.h"

/* SigLIP's initial temperature and bias (the paper's t' = log 10, b = -10). */
#define CC_SIGLIP_LOGIT_SCALE_INIT 2.302585093f
#define CC_SIGLIP_LOGIT_BIAS_INIT (-10.0f)

/* img, txt: [B, D] features (not normalised); logit_scale: 1-element parameter; labels: int32 [B]. */
cc_tensor *cc_infonce_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale, cc_tensor *labels,
                           float modal_reg);
/* img, txt: [B, D] features (not normalised, row i of each is a pair); logit_scale, logit_bias: 1 element. */
cc_tensor *cc_siglip_loss_graph(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale,
                                cc_tensor *logit_bias, float modal_reg);

#endif
