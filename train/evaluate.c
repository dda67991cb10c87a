/* evaluate.c — dataset-level retrieval evaluation (see evaluate.h). */
#include "train/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

int cc_evaluate_retrieval(const cc_dataset *ds, cc_tokenizer *tok, const cc_embedder *e,
                          const cc_evaluate_options *o, cc_recall *out, int64_t *n_skipped) {
    int64_t n_images = ds->n_images, n_pairs = ds->n_pairs, dim = e->dim;
    int batch = o->batch > 0 ? o->batch : 32;
    if (n_pairs == 0) {
        cc_set_error("evaluation: the dataset is empty");
        return -1;
    }
    /* one pseudo-pair per distinct image, in image_index order */
    cc_dataset images = {0};
    char path[4096];
    int64_t *first_pair = cc_malloc((size_t)n_images * sizeof(int64_t), "evaluation");
    int64_t *image_row = cc_malloc((size_t)n_images * sizeof(int64_t), "evaluation");
    float *image_emb = cc_malloc((size_t)(n_images * dim) * sizeof(float), "evaluation");
    float *text_emb = cc_malloc((size_t)(n_pairs * dim) * sizeof(float), "evaluation");
    int32_t *ids = cc_malloc((size_t)batch * (size_t)e->context * sizeof(int32_t), "evaluation");
    int32_t *eot = cc_malloc((size_t)batch * sizeof(int32_t), "evaluation");
    int64_t *text_image = cc_malloc((size_t)n_pairs * sizeof(int64_t), "evaluation");
    int status = first_pair && image_row && image_emb && text_emb && ids && eot && text_image ? 0 : -1;
    for (int64_t i = 0; i < n_images && status == 0; i++) first_pair[i] = -1, image_row[i] = -1;
    for (int64_t p = 0; p < n_pairs && status == 0; p++)
        if (first_pair[ds->pairs[p].image_index] < 0) first_pair[ds->pairs[p].image_index] = p;
    for (int64_t i = 0; i < n_images && status == 0; i++)
        status = cc_dataset_add(&images, cc_dataset_image_path(ds, first_pair[i], path, sizeof path), "");
    cc_progress progress;
    cc_progress_start(&progress, o->label ? o->label : "eval", n_images + n_pairs, "items");
    /* images */
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, batch);
    cfg.preprocess = o->preprocess;
    cfg.n_workers = o->n_workers;
    cfg.skip_unreadable = 1;
    cc_loader *loader = status == 0 ? cc_loader_create(&images, NULL, &cfg) : NULL;
    if (!loader) status = -1;
    int64_t n_rows = 0, done = 0;
    cc_batch *b;
    int got;
    while (status == 0 && (got = cc_loader_next(loader, &b)) != 0) {
        if (got < 0 || (b->n > 0 && e->images(e->ctx, b->images, b->n, image_emb + n_rows * dim) != 0)) {
            status = -1;
            break;
        }
        for (int i = 0; i < b->n; i++) image_row[b->pair_index[i]] = n_rows + i;
        n_rows += b->n;
        done += b->n + b->n_skipped;
        cc_progress_update(&progress, done);
    }
    int64_t skipped = loader ? cc_loader_total_skipped(loader) : 0;
    cc_loader_free(loader);
    /* captions of readable images */
    int64_t n_texts = 0;
    for (int64_t p = 0; p < n_pairs && status == 0;) {
        int count = 0;
        int64_t start_text = n_texts;
        for (; p < n_pairs && count < batch; p++) {
            int64_t row = image_row[ds->pairs[p].image_index];
            if (row < 0) continue;
            int eot_pos;
            if (cc_tokenizer_encode_context(tok, ds->pairs[p].caption, e->context, ids + (int64_t)count * e->context,
                                            &eot_pos, NULL, NULL) < 0) {
                status = -1;
                break;
            }
            eot[count++] = eot_pos;
            text_image[n_texts++] = row;
        }
        if (status == 0 && count > 0) status = e->texts(e->ctx, ids, eot, count, text_emb + start_text * dim);
        cc_progress_update(&progress, n_images + p);
    }
    cc_progress_finish(&progress);
    if (status == 0 && (n_rows == 0 || n_texts == 0)) {
        cc_set_error("evaluation: no readable image with a caption");
        status = -1;
    }
    if (status == 0) status = cc_retrieval_recall(image_emb, n_rows, text_emb, n_texts, dim, text_image, out);
    if (n_skipped) *n_skipped = skipped;
    free(first_pair);
    free(image_row);
    free(image_emb);
    free(text_emb);
    free(ids);
    free(eot);
    free(text_image);
    cc_dataset_free(&images);
    return status;
}

char *cc_recall_json(const cc_recall *r) {
    char *text = cc_malloc(768, "recall json");
    if (!text) return NULL;
    snprintf(text, 768,
             "{\"image_to_text\": {\"R@1\": %.4f, \"R@5\": %.4f, \"R@10\": %.4f}, "
             "\"text_to_image\": {\"R@1\": %.4f, \"R@5\": %.4f, \"R@10\": %.4f}, \"n_images\": %lld, \"n_texts\": %lld, "
             "\"protocol\": \"" CC_RECALL_PROTOCOL "\"}",
             r->image_to_text[0], r->image_to_text[1], r->image_to_text[2], r->text_to_image[0], r->text_to_image[1],
             r->text_to_image[2], (long long)r->n_images, (long long)r->n_texts);
    return text;
}
