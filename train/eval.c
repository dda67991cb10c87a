/* eval.c — recall@{1,5,10} in both directions from embeddings (see eval.h). Scores are computed in
 * blocks of images with the SGEMM so that memory stays O(block × n_texts). A candidate outranks the
 * true match only when its score is strictly higher (ties count in the match's favour). */
#include "train/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/gemm.h"

#define EVAL_BLOCK 256 /* images scored per GEMM */

static const int recall_ks[3] = {1, 5, 10};

int cc_retrieval_recall(const float *image_emb, int64_t n_images, const float *text_emb, int64_t n_texts,
                        int64_t dim, const int64_t *text_image, cc_recall *out) {
    memset(out, 0, sizeof *out);
    out->n_images = n_images;
    out->n_texts = n_texts;
    if (n_images <= 0 || n_texts <= 0) {
        cc_set_error("recall: need at least one image and one caption");
        return -1;
    }
    for (int64_t t = 0; t < n_texts; t++)
        if (text_image[t] < 0 || text_image[t] >= n_images) {
            cc_set_error("recall: caption %lld refers to image %lld of %lld", (long long)t, (long long)text_image[t],
                         (long long)n_images);
            return -1;
        }
    float *scores = cc_malloc((size_t)(EVAL_BLOCK * n_texts) * sizeof(float), "recall scores");
    float *true_score = cc_malloc((size_t)n_texts * sizeof(float), "recall scores");        /* score(text, its image) */
    int64_t *text_rank = cc_calloc((size_t)n_texts, sizeof(int64_t), "recall ranks");       /* images above it */
    int64_t hits_i2t[3] = {0};
    if (!scores || !true_score || !text_rank) {
        free(scores);
        free(true_score);
        free(text_rank);
        return -1;
    }
    for (int64_t t = 0; t < n_texts; t++) {
        const float *a = text_emb + t * dim, *b = image_emb + text_image[t] * dim;
        double dot = 0;
        for (int64_t d = 0; d < dim; d++) dot += (double)a[d] * b[d];
        true_score[t] = (float)dot;
    }
    for (int64_t i0 = 0; i0 < n_images; i0 += EVAL_BLOCK) {
        int64_t rows = n_images - i0 < EVAL_BLOCK ? n_images - i0 : EVAL_BLOCK;
        cc_sgemm(0, 1, rows, n_texts, dim, 1.0f, image_emb + i0 * dim, dim, text_emb, dim, 0.0f, scores, n_texts);
        for (int64_t r = 0; r < rows; r++) {
            int64_t image = i0 + r;
            const float *row = scores + r * n_texts;
            /* image→text: best score among this image's captions, and how many captions beat it */
            float best_own = -INFINITY;
            for (int64_t t = 0; t < n_texts; t++)
                if (text_image[t] == image && row[t] > best_own) best_own = row[t];
            if (best_own > -INFINITY) {
                int64_t above = 0;
                for (int64_t t = 0; t < n_texts; t++) above += row[t] > best_own;
                for (int k = 0; k < 3; k++) hits_i2t[k] += above < recall_ks[k];
            }
            /* text→image: does this image beat each caption's own image? (use the GEMM score of the
             * true pair for consistency with the row) */
            for (int64_t t = 0; t < n_texts; t++)
                if (text_image[t] == image) true_score[t] = row[t];
        }
    }
    /* second pass for text→image, now that every true score is the GEMM's own */
    for (int64_t i0 = 0; i0 < n_images; i0 += EVAL_BLOCK) {
        int64_t rows = n_images - i0 < EVAL_BLOCK ? n_images - i0 : EVAL_BLOCK;
        cc_sgemm(0, 1, rows, n_texts, dim, 1.0f, image_emb + i0 * dim, dim, text_emb, dim, 0.0f, scores, n_texts);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t t = 0; t < n_texts; t++) text_rank[t] += scores[r * n_texts + t] > true_score[t];
    }
    /* images without captions cannot be hits image→text and are not counted */
    int64_t images_with_captions = 0;
    char *has_caption = cc_calloc((size_t)n_images, 1, "recall");
    if (has_caption) {
        for (int64_t t = 0; t < n_texts; t++) has_caption[text_image[t]] = 1;
        for (int64_t i = 0; i < n_images; i++) images_with_captions += has_caption[i];
        free(has_caption);
    }
    for (int k = 0; k < 3; k++) {
        int64_t hits_t2i = 0;
        for (int64_t t = 0; t < n_texts; t++) hits_t2i += text_rank[t] < recall_ks[k];
        out->text_to_image[k] = (double)hits_t2i / (double)n_texts;
        out->image_to_text[k] = images_with_captions ? (double)hits_i2t[k] / (double)images_with_captions : 0.0;
    }
    free(scores);
    free(true_score);
    free(text_rank);
    return 0;
}
