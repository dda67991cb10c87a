/* clipc.h — the public C API of libclipc: load a CLIP model directory (Hugging Face layout) and turn
 * captions and images into L2-normalised embeddings.
 *
 *   clipc_model *m = clipc_open("clip-vit-base-patch32", NULL);
 *   float *v = malloc(clipc_dim(m) * sizeof(float));
 *   if (clipc_embed_text(m, "a photo of a dog", v) != 0) fprintf(stderr, "%s\n", clipc_last_error());
 *   clipc_close(m);
 *
 * Link with: pkg-config --cflags --libs clipc. Errors: functions return 0 (or a pointer) on success,
 * -1 (or NULL) on failure; clipc_last_error() says what went wrong (per thread). A model is not
 * thread-safe: use one per thread, or serialise calls.
 */
#ifndef CLIPC_PUBLIC_H
#define CLIPC_PUBLIC_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct clipc_model clipc_model;

/* device: NULL or "cpu", or "cuda" in CUDA builds. */
clipc_model *clipc_open(const char *model_dir, const char *device);
void clipc_close(clipc_model *model);
/* Embedding dimension (projection_dim). */
int clipc_dim(const clipc_model *model);
/* One caption -> out[clipc_dim]. Captions longer than the context are truncated. */
int clipc_embed_text(clipc_model *model, const char *text, float *out);
/* n captions -> out[n * clipc_dim]. */
int clipc_embed_texts(clipc_model *model, const char *const *texts, int n, float *out);
/* An image file (JPEG, PNG, WebP, GIF, BMP or TIFF; the format from its content) -> out[clipc_dim]. */
int clipc_embed_image_file(clipc_model *model, const char *path, float *out);
/* How images are preprocessed: "openai" (the default: openai/CLIP's clip.load transform, resize in the
 * image's own mode, then RGB) or "hf" (transformers' CLIPImageProcessor: RGB first, then resize). They
 * differ on palette, 1-bit, alpha and 16-bit images. Sizes and mean/std come from the model's
 * preprocessor_config.json either way. Returns -1 for another name. */
int clipc_set_style(clipc_model *model, const char *style);
/* Cosine similarity of two embeddings of clipc_dim floats. */
float clipc_similarity(const clipc_model *model, const float *a, const float *b);
const char *clipc_last_error(void);
/* Threads used by the kernels (0 = all cores). */
void clipc_set_threads(int n_threads);

#ifdef __cplusplus
}
#endif
#endif
