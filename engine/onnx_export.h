/* onnx_export.h — the two CLIP towers of a model as ONNX files (opset 17, float32), for ONNX
 * Runtime, TensorRT and friends. Everything comes from the model's config and parameter registry.
 *
 * vision.onnx  input  pixel_values  float [batch, C, S, S]   (CLIP-preprocessed, as clipc's)
 *              output image_embeds   float [batch, D]  L2-normalised (what `clipc embed` writes)
 *                     image_features float [batch, D]  the projection before normalisation
 * text.onnx    input  input_ids      int64 [batch, sequence]  (sequence <= the context; clip.tokenize)
 *              output text_embeds / text_features  as above
 * The text graph applies a causal mask and pools at the first position holding eot_token_id (the
 * Hugging Face rule `(input_ids == eos_token_id).argmax(-1)`, which is where clipc pools too).
 */
#ifndef CLIPC_ONNX_EXPORT_H
#define CLIPC_ONNX_EXPORT_H

#include "engine/clip.h"

/* Parameters must be in host memory (a model loaded on the CPU). Files are written atomically. */
int cc_onnx_export_vision(const cc_clip_model *m, const char *path);
int cc_onnx_export_text(const cc_clip_model *m, int eot_token_id, const char *path);
/* Creates out_dir and writes out_dir/vision.onnx and out_dir/text.onnx. */
int cc_onnx_export(const cc_clip_model *m, int eot_token_id, const char *out_dir);

#endif
