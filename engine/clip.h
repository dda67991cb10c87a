/* clip.h — the CLIP model (Hugging Face CLIPModel layout) built on the graph.
 *
 * One place for each fact: every shape comes from cc_clip_config, read from config.json (or one of
 * the built-in architectures); every parameter is declared once in clip.c's registry with its
 * Hugging Face name and shape, and loading, random init, export and the optimizer all walk that
 * registry.
 */
#ifndef CLIPC_CLIP_H
#define CLIPC_CLIP_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/safetensors.h"

typedef struct cc_clip_tower_config {
    int hidden_size;
    int intermediate_size;
    int num_layers;
    int num_heads;
    cc_act_kind act;
    float layer_norm_eps;
    /* text tower */
    int vocab_size;
    int max_positions;   /* context length */
    int eos_token_id;    /* -1: pool at the position the tokenizer reports (first end-of-text) */
    /* vision tower */
    int image_size;
    int patch_size;
    int num_channels;
} cc_clip_tower_config;

typedef struct cc_clip_config {
    cc_clip_tower_config text, vision;
    int projection_dim;
    float logit_scale_init;
} cc_clip_config;

/* Parses a Hugging Face CLIP config.json (CLIPConfig). Errors name the file and the field. */
int cc_clip_config_load(const char *path, cc_clip_config *out);
int cc_clip_config_parse(const char *text, size_t size, const char *source_name, cc_clip_config *out);
/* config.json text in Hugging Face's layout (malloc'd). */
char *cc_clip_config_json(const cc_clip_config *cfg);
/* Writes config.json in Hugging Face's layout (atomic). */
int cc_clip_config_save(const cc_clip_config *cfg, const char *path);
/* Built-in shapes: "tiny" (64x64 images, for training from scratch on 2 cores) and "b32"
 * (ViT-B/32). vocab_size is set by the caller for tiny. Returns -1 for unknown names. */
int cc_clip_config_builtin(const char *name, cc_clip_config *out);
int cc_clip_n_patches(const cc_clip_config *cfg); /* (image/patch)^2 */
#define CC_CLIP_MAX_GRID 64 /* patches on a side, at any image size (4097 tokens: 135 MB of attention scratch per thread) */

/* The six weight matrices of a block that a LoRA pair can update (train/lora.h). */
typedef enum { CC_LORA_Q = 0, CC_LORA_K, CC_LORA_V, CC_LORA_OUT, CC_LORA_FC1, CC_LORA_FC2, CC_LORA_SLOTS } cc_lora_slot;

typedef struct cc_clip_layer {
    cc_tensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    cc_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
    /* LoRA (attached by train/lora.c, NULL otherwise): the product with weight slot s becomes
     * x·Wᵀ + lora_scale · (x·Aᵀ)·Bᵀ, A = lora_a[s] [R, in], B = lora_b[s] [out, R]. Not registry
     * parameters: the model never loads, saves or frees them. */
    cc_tensor *lora_a[CC_LORA_SLOTS], *lora_b[CC_LORA_SLOTS];
} cc_clip_layer;

/* The weight matrix of slot s of a layer ([out, in], PyTorch's nn.Linear layout). */
cc_tensor *cc_clip_layer_weight(const cc_clip_layer *l, cc_lora_slot s);

/* Precision of CPU inference's weight products: f32; bf16 (weights packed in bf16, activations
 * rounded to bf16 per product, float sums); int8 (weights quantized per output channel, activations
 * per row at run time, exact int32 sums). Layernorm, softmax, GELU, attention and the residual
 * stream stay in float. bf16 needs AVX512_BF16, int8 AVX512_VNNI. */
typedef enum { CC_PRECISION_F32 = 0, CC_PRECISION_BF16, CC_PRECISION_INT8 } cc_precision;

typedef struct cc_clip_model {
    cc_clip_config config;
    /* text tower */
    cc_tensor *token_embedding, *text_position_embedding, *final_ln_w, *final_ln_b, *text_projection;
    cc_clip_layer *text_layers;
    /* vision tower */
    cc_tensor *class_embedding, *patch_embedding, *vision_position_embedding;
    cc_tensor *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b, *visual_projection;
    cc_clip_layer *vision_layers;
    cc_tensor *logit_scale;
    cc_tensor *logit_bias;          /* SigLIP's learnable bias (HF SiglipModel's name); NULL for plain CLIP */
    /* every parameter above, in registry order; tensor->name is the Hugging Face name */
    cc_tensor **params;
    int n_params;
    int64_t n_text_params, n_vision_params; /* element counts per tower (projections included) */
    cc_backend *backend;
    cc_safetensors weights_file; /* kept open while params point into it */
    struct clip_graph_cache *cache; /* graphs per (tower, batch, length), clip.c */
    int weights_modified;           /* set once any parameter was trainable: never pre-pack (clip.c) */
    cc_precision precision;         /* CPU inference products (cc_clip_set_precision) */
    float lora_scale;               /* alpha / rank of the attached LoRA pairs (cc_clip_layer) */
} cc_clip_model;

/* Creates the parameter records for a config on a backend (NULL = CPU), without data. */
cc_clip_model *cc_clip_new(const cc_clip_config *cfg, cc_backend *backend);
void cc_clip_free(cc_clip_model *m);
/* Loads config.json + weights from a model directory (model.safetensors or a sharded index).
 * Missing, unexpected or mis-shaped tensors are reported together in one error. */
cc_clip_model *cc_clip_load(const char *model_dir, cc_backend *backend);
/* Declares the optional "logit_bias" parameter (shared, no weight decay) when the model lacks it;
 * with value finite, also allocates it on the model's backend and sets it. cc_clip_load and
 * checkpoints declare it when the file holds it. Returns it, or NULL. */
cc_tensor *cc_clip_add_logit_bias(cc_clip_model *m, float value);
/* Fills every parameter with Hugging Face CLIP's initialisation (allocating memory). */
int cc_clip_init_random(cc_clip_model *m, uint64_t seed);
/* CPU inference: packs a tower's matrix weights (0 = vision, 1 = text) once into the GEMM's panel
 * layout, so that each product streams them without re-packing (batch-1 latency); the mapped f32
 * source pages are then released (they re-load from the file if read again). The cached embedding
 * graphs call it; it does nothing on other backends, for weights not mapped from an f32 file
 * (converted or owned ones would need a second copy in memory), with CLIPC_NO_PREPACK
 * set, or once a parameter of the model has been trainable. */
void cc_clip_prepack(cc_clip_model *m, int tower);
void cc_clip_unpack(cc_clip_model *m);
/* "f32", "bf16" or "int8" (NULL = f32) -> *out; -1 with cc_last_error for any other name. */
int cc_precision_parse(const char *name, cc_precision *out);
const char *cc_precision_name(cc_precision precision);
/* Sets the precision of CPU inference: packed weights are dropped and packed again, in the new
 * precision, by the next embedding. bf16 and int8 pack every matrix weight of a used tower (also
 * weights converted from a bf16/f16 file: a half or a quarter of their float copy again); a model
 * that has been trainable, or one on another backend, runs in f32 whatever is set. Returns -1 with
 * cc_last_error, the model staying at f32, when the CPU lacks the instructions (AVX512_BF16 for
 * bf16, AVX512_VNNI for int8). */
int cc_clip_set_precision(cc_clip_model *m, cc_precision precision);
/* The precision of models created from now on (cc_clip_new, cc_clip_load, resized towers): what the
 * CLI's --precision sets for a command. -1 with cc_last_error (default f32) as above. */
int cc_clip_set_default_precision(cc_precision precision);
/* Marks parameters trainable (CC_FLAG_PARAM) per tower. */
void cc_clip_set_trainable(cc_clip_model *m, int text, int vision);
int cc_clip_is_text_param(const cc_clip_model *m, const cc_tensor *param);
/* Decay applies to matrices only: not to biases, layernorm gains, embeddings or logit_scale. */
int cc_clip_param_decays(const cc_clip_model *m, const cc_tensor *param);
/* Saves every parameter as HF model.safetensors (dtype F32/F16/BF16). */
int cc_clip_save_weights(const cc_clip_model *m, const char *path, cc_dtype dtype);

/* Graph builders (no computation). images: [B, C, S, S]; token_ids: int32 [B*T]; pool_index:
 * int32 [B] with b*T + (position of the end-of-text token of row b). Return [B, projection_dim]
 * features, not normalised. */
cc_tensor *cc_clip_image_features(cc_graph *g, const cc_clip_model *m, cc_tensor *images);
cc_tensor *cc_clip_text_features(cc_graph *g, const cc_clip_model *m, cc_tensor *token_ids, int64_t batch,
                                 int64_t seq_len, cc_tensor *pool_index);

/* Embedding through cached graphs. pixels: [batch, C, S, S] preprocessed; out: [batch, proj]. */
int cc_clip_embed_images(cc_clip_model *m, const float *pixels, int64_t batch, float *out, int normalize);
/* ids: [batch, context] (context = config.text.max_positions), eot_pos[b] = index of the end-of-text
 * token in row b. Runs only up to the longest row (the causal mask makes the rest irrelevant). */
int cc_clip_embed_texts(cc_clip_model *m, const int32_t *ids, const int32_t *eot_pos, int64_t batch, float *out,
                        int normalize);
/* Same, but always computing all `context` positions (for tests of the trimming). */
int cc_clip_embed_texts_full(cc_clip_model *m, const int32_t *ids, const int32_t *eot_pos, int64_t batch, float *out,
                             int normalize);
/* Per-op time profile of the cached graphs (profiling is on when CLIPC_PROFILE is set). */
void cc_clip_print_profile(const cc_clip_model *m, FILE *out);
/* Drops cached graphs (after parameters moved or changed shape). */
void cc_clip_clear_cache(cc_clip_model *m);

/* ---- other image sizes (engine/clip_resize.c) */
/* A model record that shares every weight of m except the vision position embedding, rebuilt for
 * image_size (a multiple of the patch size): class row kept, patch grid resized bicubically as
 * torch's F.interpolate(mode="bicubic", align_corners=False). Preprocess images at image_size for it.
 * m must outlive it; free it with cc_clip_resized_free (never cc_clip_free). */
cc_clip_model *cc_clip_resized(const cc_clip_model *m, int image_size);
/* 0 when the vision tower of cfg can run at image_size: a multiple of the patch size whose patch
 * grid is at most CC_CLIP_MAX_GRID on a side (attention scratch grows with the square of the
 * tokens: a 128x128 grid needs over 2 GB per thread); else -1 with an error saying the limit. */
int cc_clip_check_image_size(const cc_clip_config *cfg, int image_size);
void cc_clip_resized_free(cc_clip_model *resized);
/* pos: [1 + grid*grid, width] -> out: [1 + new_grid*new_grid, width]. */
int cc_clip_interpolate_positions(const float *pos, int grid, int width, int new_grid, float *out);
/* Bicubic resize (torch, align_corners=False) of an in_h x in_w grid of `channels`-float rows. */
int cc_bicubic_resize_rows(const float *src, int in_h, int in_w, int channels, int out_h, int out_w, float *dst);

#endif
