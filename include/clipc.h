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


/* ---- for language bindings (python/clipc) and array inputs. All take and return host memory. */

/* Text context length (max_position_embeddings, 77 for CLIP). */
int clipc_context_length(const clipc_model *model);
/* clip.tokenize of n captions: ids[n * context] (int32: start token, tokens, end token, zero
 * padding; captions too long are cut so the end token stays last) and eot_pos[n] (may be NULL),
 * the position of each end token, where the model pools. Returns how many were truncated, or -1. */
int clipc_tokenize(clipc_model *model, const char *const *texts, int n, int *ids, int *eot_pos);
/* n image files (JPEG or PNG) -> out[n * clipc_dim], batched and decoded as `clipc embed` does. */
int clipc_embed_image_files(clipc_model *model, const char *const *paths, int n, float *out);
/* n decoded 8-bit RGB images, image i being heights[i] rows of widths[i] * 3 bytes (R, G, B),
 * top to bottom, rows packed -> out[n * clipc_dim]. Preprocessed as an RGB file would be. */
int clipc_embed_images_rgb(clipc_model *model, int n, const unsigned char *const *rgb, const int *widths,
                           const int *heights, float *out);
/* Side of the square images the vision tower takes (config image_size). */
int clipc_image_size(const clipc_model *model);
/* n already-preprocessed images, pixels[n][3][S][S] floats (S = clipc_image_size; CLIP's resize, center
 * crop and mean/std, e.g. `clipc preprocess` or CLIPImageProcessor) -> out[n * clipc_dim]. */
int clipc_embed_pixels(clipc_model *model, int n, const float *pixels, float *out);

/* ---- vector indexes (index/index.h): the same files as `clipc index`. metric 0 = inner product
 * (scores: higher is better), 1 = squared L2 (lower is better). Searching one index from several
 * threads at once is safe; add, remove and set_param must not overlap with anything else on it. */
typedef struct clipc_index clipc_index;
/* desc: faiss factory style, e.g. "Flat", "HNSW32", "IVF64,Flat", "IVF64,PQ8". */
clipc_index *clipc_index_new(const char *desc, int dim, int metric);
/* IVF and PQ types learn their quantisers from n vectors; a no-op for Flat and HNSW. */
int clipc_index_train(clipc_index *index, long long n, const float *x);
/* ids: NULL numbers the vectors 0, 1, 2, ... in insertion order; else n distinct ids >= 0. */
int clipc_index_add(clipc_index *index, long long n, const float *x, const long long *ids);
/* Removes ids (unknown ones ignored); returns how many were removed, or -1. */
long long clipc_index_remove(clipc_index *index, long long n, const long long *ids);
/* out_scores[nq * k] (may be NULL), out_ids[nq * k], best first; k <= clipc_index_count. */
int clipc_index_search(const clipc_index *index, long long nq, const float *queries, int k, float *out_scores,
                       long long *out_ids);
/* Search defaults by name: "nprobe" (IVF), "efSearch" (HNSW), "rerank" (RFlat). 0, 1 = clamped, -1. */
int clipc_index_set_param(clipc_index *index, const char *name, long long value);
int clipc_index_save(const clipc_index *index, const char *path); /* atomic */
clipc_index *clipc_index_load(const char *path);
void clipc_index_free(clipc_index *index);
long long clipc_index_count(const clipc_index *index); /* vectors that can be returned */
int clipc_index_dim(const clipc_index *index);
int clipc_index_metric(const clipc_index *index);
const char *clipc_index_desc(const clipc_index *index); /* canonical, e.g. "HNSW32" */

#ifdef __cplusplus
}
#endif
#endif
