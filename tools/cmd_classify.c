/* cmd_classify.c — `clipc classify`: zero-shot image labels with a CLIP model.
 *
 * Each label's text feature is a template ensemble: every template ("a blurry photo of a {}.") filled
 * with the label, embedded, L2-normalised, averaged, renormalised. An image's probabilities are
 * softmax(exp(logit_scale) * cosine) over the labels, as CLIP computes its zero-shot logits. Output: one
 * line per image, "PATH<TAB>LABEL<TAB>PROB..." for the top k labels, or JSON. --pseudo-label writes a
 * caption TSV (image, caption, label, prob) that `clipc train` reads: cold-start labels for an
 * unlabelled folder. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"
#include "engine/util.h"
#include "tools/commands.h"
#include "tools/lines.h"
#include "tools/serve_query.h"
#include "train/zeroshot.h"

#define MAX_LABELS 100000  /* labels in one run (each is a row of the logits) */
/* The default templates, the templates file and the class features are train/zeroshot.c's, shared
 * with `clipc eval --zeroshot-data` and `clipc train --zeroshot-data`. */

static int run_classify(int argc, char **argv);
const cc_command cmd_classify = {
    "classify", "--model DIR --labels FILE [--templates FILE] (--image FILE... | --images DIR|LIST) [options]",
    "Zero-shot image labels with template ensembles; prints the top labels and probabilities per image.",
    run_classify};

typedef struct classify_args {
    const char *model, *labels, *templates, *images_list, *pseudo, *caption_template, *scales, *style;
    cc_strlist images;
    int64_t top;
    double min_prob;
    int json;
} classify_args;

typedef struct {
    app_model *am;
    cc_progress *progress;
} prompt_embedder;

static int embed_prompts(void *ctx, const char *const *texts, int64_t n, float *out) {
    prompt_embedder *pe = ctx;
    return app_embed_texts(pe->am, texts, n, NULL, pe->progress, out, NULL);
}

/* [n_labels, dim] class features from the template ensemble (train/zeroshot.c). */
static int label_features(app_model *am, char *const *labels, int64_t n_labels, const char *const *templates,
                          int64_t n_templates, float *out) {
    cc_progress progress;
    cc_progress_start(&progress, "labels", n_labels * n_templates, "txt");
    prompt_embedder pe = {am, &progress};
    int rc = cc_zeroshot_class_features(embed_prompts, &pe, am->dim, (const char *const *)labels, n_labels, templates,
                                        n_templates, out);
    cc_progress_finish(&progress);
    return rc;
}

typedef struct {
    int64_t label;
    double prob;
} label_prob;

static int by_prob_desc(const void *a, const void *b) {
    const label_prob *x = a, *y = b;
    if (x->prob != y->prob) return x->prob > y->prob ? -1 : 1;
    return (x->label > y->label) - (x->label < y->label);
}

/* Probabilities of one image over all labels, sorted best first into ranked[n_labels]. */
static void rank_labels(const float *image, const float *classes, int64_t n_labels, int64_t dim, double scale,
                        label_prob *ranked) {
    double max_logit = -INFINITY, sum = 0;
    for (int64_t l = 0; l < n_labels; l++) {
        double dot = 0;
        for (int64_t d = 0; d < dim; d++) dot += (double)image[d] * classes[l * dim + d];
        ranked[l] = (label_prob){l, scale * dot};
        if (ranked[l].prob > max_logit) max_logit = ranked[l].prob;
    }
    for (int64_t l = 0; l < n_labels; l++) sum += (ranked[l].prob = exp(ranked[l].prob - max_logit));
    for (int64_t l = 0; l < n_labels; l++) ranked[l].prob /= sum;
    qsort(ranked, (size_t)n_labels, sizeof *ranked, by_prob_desc);
}

static int write_pseudo_labels(const classify_args *a, const char *const *paths, const int64_t *kept, int64_t n_kept,
                               char *const *labels, const label_prob *best, int64_t *n_written) {
    cc_atomic_file af;
    if (cc_atomic_open(&af, a->pseudo) != 0) return -1;
    fprintf(af.fp, "image\tcaption\tlabel\tprob\n");
    *n_written = 0;
    for (int64_t i = 0; i < n_kept; i++) {
        if (best[i].prob < a->min_prob) continue;
        const char *label = labels[best[i].label];
        char *caption = app_fill_template(a->caption_template, label);
        if (!caption) {
            cc_atomic_abort(&af);
            return -1;
        }
        fprintf(af.fp, "%s\t%s\t%s\t%.4f\n", paths[kept[i]], caption, label, best[i].prob);
        free(caption);
        (*n_written)++;
    }
    return cc_atomic_commit(&af);
}

/* Labels and templates: non-empty lines; templates skip # comments and need "{}"; tabs and newlines
 * are not allowed in labels (they go into TSV output). */
static int read_inputs(const classify_args *a, cc_lines *labels, char ***templates, int64_t *n_templates) {
    if (cc_lines_read(a->labels, 1, labels) != 0) return -1;
    if (labels->count < 1 || labels->count > MAX_LABELS) {
        cc_set_error("%s: expected 1 to %d labels, one per line; found %lld", a->labels, MAX_LABELS,
                     (long long)labels->count);
        return -1;
    }
    for (int64_t i = 0; i < labels->count; i++)
        if (strchr(labels->lines[i], '\t')) {
            cc_set_error("%s:%lld: a label must not contain a tab", a->labels, (long long)i + 1);
            return -1;
        }
    *templates = NULL;
    *n_templates = 0;
    return a->templates ? cc_zeroshot_read_templates(a->templates, templates, n_templates) : 0;
}

static int classify(const classify_args *a) {
    cc_lines labels = {0};
    char **templates = NULL;
    int64_t n_read_templates = 0;
    char **listed = NULL;
    int64_t n_listed = 0, n_kept = 0;
    app_model am = {0};
    float *classes = NULL, *images = NULL;
    int64_t *kept = NULL;
    label_prob *ranked = NULL, *best = NULL;
    cJSON *root = NULL;
    int rc = -1;
    cc_preprocess_style style = CC_PREPROCESS_OPENAI;
    if (a->style && cc_preprocess_style_parse(a->style, &style) != 0) goto done;
    if (read_inputs(a, &labels, &templates, &n_read_templates) != 0) goto done;
    const char *const *paths = a->images.items;
    int64_t n = a->images.count;
    if (a->images_list) {
        if (app_list_images(a->images_list, &listed, &n_listed) != 0) goto done;
        paths = (const char *const *)listed;
        n = n_listed;
    }
    if (n == 0) {
        cc_set_error("%s: no images", a->images_list ? a->images_list : "--image");
        goto done;
    }
    if (app_model_open(&am, a->model, a->scales) != 0) goto done;
    am.session.preprocess.style = style;
    int64_t dim = am.dim, n_labels = labels.count;
    const char *const *tpl = templates ? (const char *const *)templates : cc_zeroshot_default_templates;
    int64_t n_templates = templates ? n_read_templates : cc_zeroshot_n_default_templates;
    classes = cc_malloc((size_t)(n_labels * dim) * sizeof(float), "label features");
    images = cc_malloc((size_t)(n * dim) * sizeof(float), "image features");
    kept = cc_malloc((size_t)n * sizeof(int64_t), "kept images");
    ranked = cc_malloc((size_t)n_labels * sizeof *ranked, "label ranking");
    best = cc_malloc((size_t)n * sizeof *best, "best labels");
    if (!classes || !images || !kept || !ranked || !best) goto done;
    if (label_features(&am, labels.lines, n_labels, tpl, n_templates, classes) != 0) goto done;
    cc_progress progress;
    cc_progress_start(&progress, "embed", n, "img");
    int erc = app_embed_image_files(&am, paths, n, &progress, images, kept, &n_kept);
    cc_progress_finish(&progress);
    if (erc != 0) goto done;
    for (int64_t i = 0, next = 0; i < n; i++) {
        if (next < n_kept && kept[next] == i) next++;
        else fprintf(stderr, "warning: %s: unreadable image, skipped\n", paths[i]);
    }
    float logit_scale;
    if (cc_tensor_download(am.session.model->logit_scale, &logit_scale) != 0) goto done;
    double scale = exp((double)logit_scale);
    int64_t top = a->top < n_labels ? a->top : n_labels;
    cJSON *list = NULL;
    if (a->json) {
        root = cJSON_CreateObject();
        cJSON_AddNumberToObject(root, "labels", (double)n_labels);
        cJSON_AddNumberToObject(root, "templates", (double)n_templates);
        list = cJSON_AddArrayToObject(root, "results");
    }
    for (int64_t i = 0; i < n_kept; i++) {
        rank_labels(images + i * dim, classes, n_labels, dim, scale, ranked);
        best[i] = ranked[0];
        const char *path = paths[kept[i]];
        if (a->json) {
            cJSON *item = cJSON_CreateObject(), *tops = cJSON_CreateArray();
            cJSON_AddStringToObject(item, "image", path);
            for (int64_t r = 0; r < top; r++) {
                cJSON *entry = cJSON_CreateObject();
                cJSON_AddStringToObject(entry, "label", labels.lines[ranked[r].label]);
                cJSON_AddNumberToObject(entry, "prob", round(ranked[r].prob * 1e6) / 1e6);
                cJSON_AddItemToArray(tops, entry);
            }
            cJSON_AddItemToObject(item, "top", tops);
            cJSON_AddItemToArray(list, item);
        } else {
            printf("%s", path);
            for (int64_t r = 0; r < top; r++) printf("\t%s\t%.4f", labels.lines[ranked[r].label], ranked[r].prob);
            printf("\n");
        }
    }
    if (root) {
        char *text = cJSON_PrintUnformatted(root);
        if (!text) goto done;
        printf("%s\n", text);
        free(text);
    }
    if (a->pseudo) {
        int64_t written;
        if (write_pseudo_labels(a, paths, kept, n_kept, labels.lines, best, &written) != 0) goto done;
        fprintf(stderr, "wrote %lld pseudo-label(s) (%lld below --min-prob %.2f) -> %s\n", (long long)written,
                (long long)(n_kept - written), a->min_prob, a->pseudo);
    }
    if (n_kept < n) fprintf(stderr, "classify: skipped %lld unreadable image(s)\n", (long long)(n - n_kept));
    rc = 0;
done:
    cJSON_Delete(root);
    cc_lines_free(&labels);
    cc_zeroshot_free_strings(templates, n_read_templates);
    app_free_strings(listed, n_listed);
    app_model_close(&am);
    free(classes);
    free(images);
    free(kept);
    free(ranked);
    free(best);
    return rc;
}

static int run_classify(int argc, char **argv) {
    classify_args a = {.top = 5, .caption_template = "a photo of a {}."};
    const char *precision = NULL;
    cc_option options[] = {
        {"--model", CC_OPT_STRING, &a.model, "DIR", "CLIP model directory"},
        {"--labels", CC_OPT_STRING, &a.labels, "FILE", "class names, one per line"},
        {"--templates", CC_OPT_STRING, &a.templates, "FILE", "prompt templates with {} (default: clipc's 22)"},
        {"--image", CC_OPT_LIST, &a.images, "FILE...", "image file(s) to label"},
        {"--images", CC_OPT_STRING, &a.images_list, "DIR|LIST", "a folder (recursive) or a file listing images"},
        {"--top", CC_OPT_INT, &a.top, "K", "labels shown per image (default 5)"},
        {"--json", CC_OPT_FLAG, &a.json, NULL, "print {\"results\": [{image, top: [{label, prob}]}]}"},
        {"--pseudo-label", CC_OPT_STRING, &a.pseudo, "OUT.tsv", "write image<TAB>caption<TAB>label<TAB>prob per image"},
        {"--min-prob", CC_OPT_FLOAT, &a.min_prob, "P", "pseudo-label only images whose top probability is >= P"},
        {"--caption-template", CC_OPT_STRING, &a.caption_template, "\"...{}...\"", "pseudo-label caption (default \"a photo of a {}.\")"},
        {"--multiscale", CC_OPT_STRING, &a.scales, "S1,S2", "average image features at these sizes"},
        {"--style", CC_OPT_STRING, &a.style, "NAME", CC_STYLE_HELP},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int rc = cc_parse_options(&cmd_classify, options, argc, argv, NULL);
    int exit_code = 2;
    if (rc) {
        exit_code = rc > 0 ? 0 : 2;
    } else if (cc_apply_precision(&cmd_classify, precision) != 0) {
        exit_code = 2;
    } else if (!a.model || !a.labels || (a.images.count > 0) == (a.images_list != NULL)) {
        fprintf(stderr, "clipc classify: need --model, --labels and one of --image or --images\n");
    } else if (a.top < 1 || !(a.min_prob >= 0 && a.min_prob <= 1)) {
        fprintf(stderr, "clipc classify: --top must be >= 1 and --min-prob in [0, 1]\n");
    } else if (!strstr(a.caption_template, "{}")) {
        fprintf(stderr, "clipc classify: --caption-template needs {} for the label\n");
    } else {
        exit_code = classify(&a) == 0 ? 0 : cc_command_error(&cmd_classify, cc_last_error());
    }
    cc_strlist_free(&a.images);
    return exit_code;
}
