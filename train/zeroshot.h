/* zeroshot.h — zero-shot classification with open_clip's convention, shared by `clipc classify`,
 * `clipc eval --zeroshot-data` and the evaluations of `clipc train --zeroshot-data`.
 *
 * A class's feature is a template ensemble: every template ("a photo of a {}.") filled with the class
 * name, embedded and L2-normalised, the mean of those renormalised. An image is classified by the
 * cosine with each class feature; top-K is a hit when fewer than K classes score strictly higher than
 * the true one (ties count in the label's favour, as the retrieval recall does).
 *
 * Data file: one "image path<TAB>label" per line (blank lines and lines starting with # skipped);
 * relative paths against --images-root or the file's directory. The classes are the distinct labels
 * in order of first appearance. Templates file: one template per line with {} for the class name
 * (# comments skipped). */
#ifndef CLIPC_ZEROSHOT_H
#define CLIPC_ZEROSHOT_H

#include <stdint.h>

#include "data/dataset.h"
#include "train/evaluate.h"

#define CC_ZEROSHOT_MAX_TEMPLATES 1000

/* clipc's default ensemble (22 templates: varied qualities, sizes and depictions). */
extern const char *const cc_zeroshot_default_templates[];
extern const int64_t cc_zeroshot_n_default_templates;

/* Templates from a file (malloc'd strings, *templates an array of *n); errors name the file and the
 * line (a template without {}). */
int cc_zeroshot_read_templates(const char *path, char ***templates, int64_t *n);
void cc_zeroshot_free_strings(char **strings, int64_t n);
/* "{}" of a template filled with text (every occurrence); malloc'd. Error when "{}" is missing. */
char *cc_zeroshot_fill_template(const char *template_text, const char *text);

/* Embeds n texts into out [n, dim], L2-normalised; 0 or -1. */
typedef int (*cc_embed_texts_fn)(void *ctx, const char *const *texts, int64_t n, float *out);
/* out [n_classes, dim]: the template-ensemble feature of each class. */
int cc_zeroshot_class_features(cc_embed_texts_fn embed, void *ctx, int64_t dim, const char *const *classes,
                               int64_t n_classes, const char *const *templates, int64_t n_templates, float *out);

typedef struct cc_zeroshot_set {
    cc_dataset images;     /* one pair per line: the image and its label as the caption */
    char **classes;        /* distinct labels, first appearance first */
    int64_t n_classes;
    int64_t *label;        /* class of each pair of images */
} cc_zeroshot_set;

int cc_zeroshot_read(const char *path, const char *image_root, cc_zeroshot_set *out);
void cc_zeroshot_free(cc_zeroshot_set *z);

typedef struct cc_zeroshot_result {
    double top1, top5;
    int64_t n_images, n_classes, n_skipped; /* images scored, classes, unreadable images skipped */
} cc_zeroshot_result;

/* Class features from the templates (NULL = the defaults) through e's text tower and tok, image
 * features through e's image tower (o's batch, workers and preprocessing), then top-1 / top-5. */
int cc_zeroshot_evaluate(const cc_zeroshot_set *z, cc_tokenizer *tok, const cc_embedder *e,
                         const cc_evaluate_options *o, const char *const *templates, int64_t n_templates,
                         cc_zeroshot_result *out);
/* {"top1": .., "top5": .., "n_images": .., "n_classes": .., "templates": ..} (malloc'd) */
char *cc_zeroshot_json(const cc_zeroshot_result *r, int64_t n_templates);

#endif
