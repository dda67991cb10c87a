/* export.h — writing a model directory in Hugging Face layout: model.safetensors, config.json,
 * preprocessor_config.json and the tokenizer files (vocab.json + merges.txt, or openai's .gz). */
#ifndef CLIPC_EXPORT_H
#define CLIPC_EXPORT_H

#include "data/preprocess.h"
#include "engine/clip.h"

/* Copies the tokenizer files found at src (a directory, a vocab.json with merges.txt beside it, or a
 * .gz) into dst_dir. */
int cc_copy_tokenizer_files(const char *src, const char *dst_dir);
/* Creates out_dir and writes the whole model directory; every file atomically. */
int cc_export_model_dir(const cc_clip_model *m, const cc_preprocess_config *pre, const char *tokenizer_dir,
                        const char *out_dir, cc_dtype dtype);

#endif
