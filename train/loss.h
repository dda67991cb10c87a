/* loss.h — the contrastive (InfoNCE) loss of CLIP, as graph nodes.
 *
 * logits = exp(logit_scale) · norm(img) · norm(txt)ᵀ ; loss = ½·(CE(logits, labels) + CE(logitsᵀ, labels))
 * where labels[i] is the column of row i's partner (arange for aligned batches). With modal_reg λ > 0:
 * + λ·‖mean(norm(img)) − mean(norm(txt))‖². */
#ifndef CLIPC_LOSS_H
#define CLIPC_LOSS_H

#include "engine/graph.h"

/* img, txt: [B, D] features (not normalised); logit_scale: 1-element parameter; labels: int32 [B]. */
cc_tensor *cc_infonce_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale, cc_tensor *labels,
                           float modal_reg);

#endif
