/* session.h — a loaded model ready to embed: CLIP weights, tokenizer and image preprocessing of one
 * model directory, on one backend. This is what the CLI commands, the server and the public library
 * API (include/clipc.h) use to turn captions and image files into embeddings. */
#ifndef CLIPC_SESSION_H
#define CLIPC_SESSION_H

#include <stdint.h>

#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "engine/clip.h"
#include "engine/progress.h"

typedef struct cc_session {
    cc_clip_model *model;
    cc_tokenizer *tokenizer;
    cc_preprocess_config preprocess;
    cc_backend *backend;
    char model_dir[4096];
} cc_session;

/* Loads DIR's config.json + weights, vocab.json + merges.txt (or the openai .gz), and
 * preprocessor_config.json when present (else CLIP's defaults at the model's image size).
 * device: "cpu" (NULL) or "cuda". */
int cc_session_open(cc_session *s, const char *model_dir, const char *device);
void cc_session_close(cc_session *s);

typedef enum { CC_LONG_TEXT_TRUNCATE = 0, CC_LONG_TEXT_WINDOW } cc_long_text_mode;

typedef struct cc_text_options {
    cc_long_text_mode long_text; /* captions longer than the context: truncate, or average windows */
    int window_stride;           /* window mode: tokens between window starts (0 = context - 2) */
    int batch;                   /* captions per forward pass (0 = 64) */
    int normalize;               /* L2-normalise the embeddings */
    cc_progress *progress;       /* NULL = none */
} cc_text_options;

/* out: [n, projection_dim]. *n_truncated (may be NULL) counts captions cut to the context. */
int cc_session_embed_texts(cc_session *s, const char *const *texts, int64_t n, const cc_text_options *options,
                           float *out, int64_t *n_truncated);

typedef struct cc_image_embed_options {
    int batch;          /* images per forward pass (0 = 32) */
    int normalize;
    int skip_bad;       /* skip unreadable images (recorded in kept[]) instead of failing */
    int n_workers;      /* decoding threads (0 = cores) */
    cc_progress *progress;
} cc_image_embed_options;

/* Embeds image files in order. out: [n, projection_dim] (only the first *n_kept rows are written
 * when skipping); kept (may be NULL) receives the input index of each written row. */
int cc_session_embed_image_files(cc_session *s, const char *const *paths, int64_t n,
                                 const cc_image_embed_options *options, float *out, int64_t *kept, int64_t *n_kept);
/* One decoded image (e.g. an upload). */
int cc_session_embed_image(cc_session *s, const cc_image *img, int normalize, float *out);

#endif
