/* eval.h — retrieval recall with the COCO / CLIP_benchmark protocol: an image can have several
 * captions (COCO: 5), and every caption is a query. text→image: each caption is a hit at K if its
 * image ranks in the top K of all images (averaged over all captions); image→text: each image is a
 * hit at K if any of its captions ranks in the top K of all captions (averaged over images). */
#ifndef CLIPC_EVAL_H
#define CLIPC_EVAL_H

#include <stdint.h>

/* The convention, as written into the JSON of `clipc eval` and train_log.jsonl. */
#define CC_RECALL_PROTOCOL                                                                            \
    "CLIP_benchmark: text_to_image over every caption; image_to_text hit if any of the image's captions is in the top K"

typedef struct cc_recall {
    double image_to_text[3]; /* R@1, R@5, R@10 */
    double text_to_image[3];
    int64_t n_images, n_texts;
} cc_recall;

/* image_emb [n_images, dim], text_emb [n_texts, dim] (L2-normalised); text_image[t] = index of the
 * image caption t describes. */
int cc_retrieval_recall(const float *image_emb, int64_t n_images, const float *text_emb, int64_t n_texts,
                        int64_t dim, const int64_t *text_image, cc_recall *out);

#endif
