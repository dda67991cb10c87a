/* evaluate.h — retrieval evaluation of a model on an image–caption dataset: embeds every distinct
 * image once and every caption, then recall@{1,5,10} both ways (COCO protocol, train/eval.h).
 * The embedding functions are passed in, so the same code evaluates a plain model (`clipc eval`)
 * and a model under training (adapters applied). */
#ifndef CLIPC_EVALUATE_H
#define CLIPC_EVALUATE_H

#include <stdint.h>

#include "data/dataset.h"
#include "engine/progress.h"
#include "train/eval.h"

typedef struct cc_embedder {
    void *ctx;
    int64_t dim;
    int context; /* token ids per caption */
    /* L2-normalised features; return 0 or -1 */
    int (*images)(void *ctx, const float *pixels, int64_t n, float *out);
    int (*texts)(void *ctx, const int32_t *ids, const int32_t *eot, int64_t n, float *out);
} cc_embedder;

typedef struct cc_evaluate_options {
    int batch;                       /* images / captions per pass */
    int n_workers;                   /* decoding threads (0 = cores) */
    cc_preprocess_config preprocess;
    const char *label;               /* progress label */
} cc_evaluate_options;

/* Unreadable images are skipped with their captions and counted in *n_skipped (may be NULL). */
int cc_evaluate_retrieval(const cc_dataset *ds, cc_tokenizer *tok, const cc_embedder *embedder,
                          const cc_evaluate_options *options, cc_recall *out, int64_t *n_skipped);

/* {"image_to_text": {"R@1": ..}, "text_to_image": {..}, "n_images": .., "n_texts": ..} (malloc'd) */
char *cc_recall_json(const cc_recall *r);

#endif
