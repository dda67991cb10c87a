/* serve_query.h — what `clipc search`, `clipc serve`, `clipc classify` and the model-based `clipc index
 * build/add` share: a model opened at one or several image scales, query embedding (templates, long-text
 * windows, multi-scale image features), the index metadata that records which model built an index,
 * search with time-decay re-ranking, the result JSON, and image folder listing. Prefix app_. */
#ifndef CLIPC_SERVE_QUERY_H
#define CLIPC_SERVE_QUERY_H

#include <stdint.h>

#include "data/image.h"
#include "engine/progress.h"
#include "engine/session.h"
#include "index/index.h"

#define APP_MAX_SCALES 4          /* --multiscale sizes at most */
#define APP_MAX_QUERY_BYTES 4096  /* longest text query accepted (long ones need --long-text window) */

/* Index metadata keys written by `clipc index build --model` (docs/SEARCH.md). */
#define APP_META_MODEL "model"           /* absolute path of the model directory */
#define APP_META_KIND "kind"             /* "images" or "texts" */
#define APP_META_DIM "projection_dim"    /* embedding dimension, as text */
#define APP_META_SCALES "multiscale"     /* "224,336" when built with --multiscale */
#define APP_META_LONG_TEXT "long_text"   /* "window" when captions were embedded with windows */
#define APP_META_STYLE "preprocess_style" /* "openai" or "hf": how the images were preprocessed */

typedef struct app_model {
    cc_session session;
    int n_scales;                          /* 0: the model's own size only */
    int scales[APP_MAX_SCALES];            /* image sizes */
    cc_clip_model *scaled[APP_MAX_SCALES]; /* resized towers; NULL where the size is the model's own */
    cc_long_text_mode long_text;
    int window_stride;
    int dim;                               /* projection dimension */
} app_model;

/* "224,336" -> sizes (each 16..4096, at most APP_MAX_SCALES, no duplicates). */
int app_parse_scales(const char *text, int *scales, int *n_scales);
/* Opens a model directory; scales may be NULL or "" (the model's own size). */
int app_model_open(app_model *am, const char *model_dir, const char *scales);
void app_model_close(app_model *am);
/* "224,336" for the model's current scales, "" for a single native scale. */
void app_model_scales_text(const app_model *am, char *buf, size_t size);

/* L2-normalised text features, out: [n, dim]. template (may be NULL) holds "{}" where the text goes. */
int app_embed_texts(app_model *am, const char *const *texts, int64_t n, const char *template_text,
                    cc_progress *progress, float *out, int64_t *n_truncated);
/* One decoded image; multi-scale: features of each scale normalised, averaged, renormalised. */
int app_embed_image(app_model *am, const cc_image *img, float *out);
/* Image files in order (decoding threads), multi-scale as above. Unreadable files are skipped and
 * listed in kept[] as with cc_session_embed_image_files (skip_bad = 1). */
int app_embed_image_files(app_model *am, const char *const *paths, int64_t n, cc_progress *progress, float *out,
                          int64_t *kept, int64_t *n_kept);

/* Fills "{}" of a template with text (every occurrence); malloc'd. Error when "{}" is missing. */
char *app_fill_template(const char *template_text, const char *text);

/* The model directory for an index: override when given, else the index's "model" key (error when
 * neither). */
const char *app_index_model_dir(const cc_index *idx, const char *override);
/* The preprocessing style for an index's images and image queries: override (a --style value) when
 * given, else the index's "preprocess_style", else openai (indexes from before the key). */
int app_index_style(const cc_index *idx, const char *override, cc_preprocess_style *style);
/* Dimension check with a message naming both. */
int app_check_dims(const app_model *am, const cc_index *idx, const char *index_path);
/* "path" (kind images), "caption" (kind texts) or "text" (anything else): the JSON key of item texts. */
const char *app_item_key(const cc_index *idx);

typedef struct app_search_options {
    int k;
    double decay;         /* > 0: score * exp(-decay * age in days) over 3k candidates */
    int64_t now;          /* unix seconds for the age (decay) */
    cc_search_params params;
} app_search_options;

/* One query. ids/scores hold k entries; returns how many results were written (<= k; fewer when the
 * index is smaller), or -1. */
int app_search(const cc_index *idx, const float *query, const app_search_options *o, int64_t *ids, float *scores);

/* {"results": [{"rank", "score", "id", "path"|"caption"|"text", "timestamp"?}, ...]} (cJSON *). */
struct cJSON *app_results_json(const cc_index *idx, const int64_t *ids, const float *scores, int n);
/* The same for results over n_shards shard indexes: result i's text and timestamp come from
 * shards[ids[i] % n_shards] (index/manifest.h's id rule), the item key from shards[0]. */
struct cJSON *app_results_json_shards(const cc_index *const *shards, int n_shards, const int64_t *ids,
                                      const float *scores, int n);

/* Image paths of a folder (recursive; .jpg, .jpeg, .png in any case, hidden entries skipped, sorted) or
 * of a list file (one per line, blank lines skipped). *out is a malloc'd array of malloc'd strings. */
int app_list_images(const char *dir_or_list, char ***out, int64_t *n_out);
void app_free_strings(char **items, int64_t n);
int app_is_directory(const char *path);

#endif
