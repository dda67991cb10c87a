/* loss.c — symmetric InfoNCE and SigLIP, with optional modal-alignment regulariser (see loss.h). */
#include "train/loss.h"

/* + λ·‖mean(img_n) − mean(txt_n)‖² */
static cc_tensor *add_modal_reg(cc_graph *g, cc_tensor *loss, cc_tensor *img_n, cc_tensor *txt_n, float modal_reg) {
    if (!(modal_reg > 0) || !img_n) return loss;
    int64_t width = img_n->shape[1];
    float inv_batch = 1.0f / (float)img_n->shape[0];
    cc_tensor *gap = cc_scale(g, cc_sub(g, cc_sum_to(g, img_n, 1, &width), cc_sum_to(g, txt_n, 1, &width)), inv_batch);
    return cc_add(g, loss, cc_scale(g, cc_dot(g, gap, gap), modal_reg));
}

cc_tensor *cc_infonce_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale, cc_tensor *labels,
                           float modal_reg) {
    cc_tensor *img_n = cc_l2norm(g, img, 1e-12f);
    cc_tensor *txt_n = cc_l2norm(g, txt, 1e-12f);
    cc_tensor *logits = cc_mul_scalar(g, cc_matmul(g, img_n, txt_n, 0, 1), cc_exp(g, logit_scale));
    cc_tensor *image_to_text = cc_cross_entropy(g, logits, labels);
    cc_tensor *text_to_image = cc_cross_entropy(g, cc_cont(g, cc_transpose(g, logits, 0, 1)), labels);
    cc_tensor *loss = cc_scale(g, cc_add(g, image_to_text, text_to_image), 0.5f);
    return add_modal_reg(g, loss, img_n, txt_n, modal_reg);
}

cc_tensor *cc_siglip_loss_graph(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale,
                                cc_tensor *logit_bias, float modal_reg) {
    if (!logit_scale || !logit_bias) return NULL;
    int64_t one = 1;
    cc_tensor *img_n = cc_l2norm(g, img, 1e-12f);
    cc_tensor *txt_n = cc_l2norm(g, txt, 1e-12f);
    /* the two scalars travel as one [2] operand (a node has at most four sources) */
    cc_tensor *params = cc_concat(g, cc_reshape(g, logit_scale, 1, &one), cc_reshape(g, logit_bias, 1, &one));
    return add_modal_reg(g, cc_siglip_loss(g, img_n, txt_n, params), img_n, txt_n, modal_reg);
}
