/* preprocess.h — CLIP image preprocessing: resize the shorter side to `size` with PIL's antialiased
 * bicubic filter, center-crop, scale to [0,1], normalise with mean/std, output float32 CHW.
 *
 * Two reference pipelines exist and differ in small ways; `style` picks one:
 *   CC_PREPROCESS_OPENAI (default) — openai/CLIP's _transform with torchvision on PIL images:
 *     Resize(size, BICUBIC) on the image in its original PIL mode (palette and 1-bit images are
 *     therefore resized with nearest neighbour, RGBA/LA with premultiplied alpha, 16-bit gray in
 *     32-bit), CenterCrop with offsets int(round((h - crop) / 2.0)) (round half to even), then
 *     convert("RGB"), ToTensor (v / 255 in float32) and Normalize ((x - mean) / std in float32).
 *   CC_PREPROCESS_HF — Hugging Face CLIPImageProcessor: convert("RGB") first, PIL bicubic resize,
 *     center crop with offsets (h - crop) // 2, rescale in float64 then float32, normalise.
 * For RGB and grayscale images, the 8-bit resized pixels of both are identical; only the crop offset
 * (when (long side - crop) % 4 == 3) and the last float bit can differ.
 *
 * The resize is bit-exact to Pillow's Resample.c (fixed-point 8-bit coefficients, horizontal pass then
 * vertical pass, 8-bit rounding between); only the cropped window is computed.
 * Everything here is thread-safe.
 */
#ifndef CLIPC_PREPROCESS_H
#define CLIPC_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

#define CC_CLIP_IMAGE_SIZE 224
#define CC_PREPROCESS_MAX_SIZE 8192 /* largest resize/crop side accepted from a config */

typedef enum { CC_PREPROCESS_OPENAI = 0, CC_PREPROCESS_HF = 1 } cc_preprocess_style;

typedef struct cc_preprocess_config {
    int size;                     /* the shorter side after resizing */
    int crop_height, crop_width;  /* center crop; the output is [3, crop_height, crop_width] */
    float mean[3], std[3];        /* per RGB channel, on the [0, 1] scale */
    cc_preprocess_style style;
    int fast_decode;              /* JPEG DCT scaling when loading files (not exact; docs/DATA.md) */
} cc_preprocess_config;

/* "openai" / "hf" <-> style; parse returns -1 (error set, naming the text) for anything else. Which one
 * a reference uses: openai's clip.load / _transform -> openai; transformers' CLIPProcessor /
 * CLIPImageProcessor -> hf. They differ only on palette, 1-bit, alpha, 16-bit and CMYK files (and in
 * rare crop offsets / the last float bit), see above. */
int cc_preprocess_style_parse(const char *text, cc_preprocess_style *style);
const char *cc_preprocess_style_name(cc_preprocess_style style);

/* CLIP's defaults: size = crop = `size` (224 when <= 0), OpenAI mean/std, openai style. */
void cc_preprocess_config_default(cc_preprocess_config *cfg, int size);
/* Reads a Hugging Face preprocessor_config.json (a file, or a directory holding one): `size` (int or
 * {"shortest_edge": N}), `crop_size` (int or {"height", "width"}), `image_mean`, `image_std`.
 * Missing keys keep CLIP's defaults; a resample other than bicubic (3) is an error. The style stays
 * the openai one (set cfg->style to CC_PREPROCESS_HF for the processor's exact arithmetic). */
int cc_preprocess_config_load(const char *path, cc_preprocess_config *cfg);

/* Writes a Hugging Face preprocessor_config.json (CLIPImageProcessor) for cfg (atomic). */
int cc_preprocess_config_save(const cc_preprocess_config *cfg, const char *path);

/* Size of the image after the shorter-side resize (torchvision / HF rule:
 * long = int(size * long / short)). */
void cc_preprocess_resized_size(int size, int width, int height, int *out_width, int *out_height);

/* The full pipeline: out is float32 [3][crop_height][crop_width]. */
int cc_preprocess_image(const cc_preprocess_config *cfg, const cc_image *img, float *out);
/* The 8-bit resized and cropped RGB pixels, [crop_height][crop_width][3] (for tests and tools). */
int cc_preprocess_image_u8(const cc_preprocess_config *cfg, const cc_image *img, uint8_t *out);
/* 8-bit HWC RGB -> normalised float CHW, with the arithmetic of cfg->style. */
void cc_preprocess_normalize(const cc_preprocess_config *cfg, const uint8_t *rgb, int height, int width,
                             float *out);
/* Loads (honouring cfg->fast_decode) and preprocesses a file / an in-memory image. */
int cc_preprocess_file(const cc_preprocess_config *cfg, const char *path, float *out);
int cc_preprocess_memory(const cc_preprocess_config *cfg, const void *data, size_t size, const char *name,
                         float *out);

/* PIL-exact antialiased bicubic resize (Image.resize(..., BICUBIC)) of 8-bit interleaved pixels with
 * 1..4 channels. Only the output window [x0, x0 + window_width) x [y0, y0 + window_height) of the
 * out_width x out_height result is written, into `out` (window_width * channels bytes per row). */
int cc_resize_bicubic_u8(const uint8_t *src, int width, int height, int channels, int out_width, int out_height,
                         int x0, int y0, int window_width, int window_height, uint8_t *out);

#endif
