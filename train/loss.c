/* loss.c — symmetric InfoNCE with optional modal-alignment regulariser (see loss.h). */
#include "train/loss.h"

cc_tensor *cc_infonce_loss(cc_graph *g, cc_tensor *img, cc_tensor *txt, cc_tensor *logit_scale, cc_tensor *labels,
                           float modal_reg) {
    cc_tensor *img_n = cc_l2norm(g, img, 1e-12f);
    cc_tensor *txt_n = cc_l2norm(g, txt, 1e-12f);
    cc_tensor *logits = cc_mul_scalar(g, cc_matmul(g, img_n, txt_n, 0, 1), cc_exp(g, logit_scale));
    cc_tensor *image_to_text = cc_cross_entropy(g, logits, labels);
    cc_tensor *text_to_image = cc_cross_entropy(g, cc_cont(g, cc_transpose(g, logits, 0, 1)), labels);
    cc_tensor *loss = cc_scale(g, cc_add(g, image_to_text, text_to_image), 0.5f);
    if (modal_reg > 0 && img) {
        int64_t width = img->shape[1];
        float inv_batch = 1.0f / (float)img->shape[0];
        cc_tensor *gap = cc_scale(g, cc_sub(g, cc_sum_to(g, img_n, 1, &width), cc_sum_to(g, txt_n, 1, &width)), inv_batch);
        loss = cc_add(g, loss, cc_scale(g, cc_dot(g, gap, gap), modal_reg));
    }
    return loss;
}
