/* export.h — writing a model directory in Hugging Face layout: model.safetensors, config.json,
 * preprocessor_config.json and the tokenizer files (vocab.json + merges.txt, or openai's .gz). */
#ifndef CLIPC_EXPORT_H
#define CLIPC_EXPORT_H

#include "data/preprocess.h"
#include "engine/clip.h"

/* Copies the tokenizer files found at src (a directory, a vocab.json with merges.txt beside it, or a
 * .gz) into dst_dir. */
int cc_copy_tokenizer_files(const char *src, const char *dst_dir);
/* Writes the whole model directory: into OUT.tmp.PID first, then renamed to out_dir (or, when
 * out_dir exists, each file renamed into it). On failure out_dir is left as it was. */
int cc_export_model_dir(const cc_clip_model *m, const cc_preprocess_config *pre, const char *tokenizer_dir,
                        const char *out_dir, cc_dtype dtype);

#endif
