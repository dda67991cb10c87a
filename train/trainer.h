/* trainer.h — one CLIP training step on the graph: forward both towers, InfoNCE, backward into the
 * parameters' gradient accumulators, and AdamW. The CLI loop (tools/cmd_train.c) adds data,
 * evaluation, logging and checkpoints around it.
 *
 * accum_freq K > 1 is open_clip's large-batch trick: first the features of all K micro-batches are
 * computed without gradients; then each micro-batch is recomputed with gradients while the other
 * micro-batches' features enter the loss as constants. Every pass computes the full-batch loss, and
 * the K gradients sum to the full-batch gradient, while activations for only one micro-batch exist.
 *
 * Data-parallel (`mpirun -np N`, engine/comm.h): each rank passes its slice of the global batch; the
 * same mechanism runs with the other ranks' features all-gathered as constants, and cc_trainer_apply
 * sums the ranks' gradients before AdamW, so every rank takes the same step on the same weights.
 */
#ifndef CLIPC_TRAINER_H
#define CLIPC_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "engine/clip.h"
#include "train/lora.h"
#include "train/optim.h"

typedef enum { CC_LOSS_CLIP = 0, CC_LOSS_SIGLIP } cc_loss_kind;

typedef struct cc_trainer_config {
    cc_adamw_config adamw;
    cc_loss_kind loss;   /* CLIP's InfoNCE (default) or SigLIP's pairwise sigmoid (train/loss.h) */
    int accum_freq;      /* micro-batches per batch (1 = plain) */
    float modal_reg;     /* λ of the modal-alignment regulariser; 0 = off */
    int lock_image;      /* freeze the vision tower (LiT) */
    int lock_text;       /* freeze the text tower */
    int adapter;         /* train only a linear map after each tower's projection (identity-initialised) */
    cc_lora_config lora; /* rank > 0: train only LoRA pairs (train/lora.h) on the unlocked towers; text and
                            vision are set from lock_text / lock_image */
    int checkpoint_activations; /* recompute each transformer block in backward instead of keeping it */
    int bf16_matmul;            /* products in bf16 (float master weights, AdamW and loss), CPU only */
} cc_trainer_config;

void cc_trainer_config_default(cc_trainer_config *cfg);

typedef struct cc_trainer {
    cc_trainer_config config;
    cc_clip_model *model;
    cc_adamw opt;
    cc_tensor *image_adapter, *text_adapter; /* [D, D] when config.adapter */
    cc_lora lora;                            /* pairs when config.lora.rank > 0 */
    struct trainer_graph_cache *cache;
    int64_t n_trainable;                     /* trainable parameter elements */
    int64_t n_frozen;                        /* model parameter elements without gradients */
} cc_trainer;

/* With loss SigLIP on a model without logit_bias, the bias is created (-10) and logit_scale set to
 * log 10 (the SigLIP paper's initialisation); a model that has the bias keeps both values. */
int cc_trainer_init(cc_trainer *tr, cc_clip_model *model, const cc_trainer_config *cfg);
void cc_trainer_free(cc_trainer *tr);

/* A batch: pixels [B, C, S, S]; ids [B, context] (context = model text max_positions); eot[b] =
 * position of row b's end-of-text token. */
typedef struct cc_train_batch {
    const float *pixels;
    const int32_t *ids;
    const int32_t *eot;
    int64_t size;
} cc_train_batch;

/* Forward + backward of one batch; gradients are added to the accumulators; *loss = batch loss. */
int cc_trainer_accumulate(cc_trainer *tr, const cc_train_batch *batch, float *loss);
/* (Data-parallel: first the gradients are summed over the ranks.) AdamW on the accumulated gradients × grad_scale, clamp logit_scale ≤ ln 100, zero gradients.
 * *grad_norm receives the global norm before clipping. */
int cc_trainer_apply(cc_trainer *tr, float grad_scale, double *grad_norm);
int cc_trainer_zero_grad(cc_trainer *tr);
/* A checksum of the weights, adapters and AdamW moments (data-parallel ranks compare it). */
int cc_trainer_state_hash(cc_trainer *tr, uint64_t *hash);
/* Largest planned activation memory (bytes) of the gradient graphs built so far. */
size_t cc_trainer_peak_activation_bytes(const cc_trainer *tr);
/* Loss without gradients (validation). */
int cc_trainer_loss(cc_trainer *tr, const cc_train_batch *batch, float *loss);
/* Features as the loss sees them (adapters applied), L2-normalised: [B, D]. */
int cc_trainer_image_features(cc_trainer *tr, const float *pixels, int64_t batch, float *out);
int cc_trainer_text_features(cc_trainer *tr, const int32_t *ids, const int32_t *eot, int64_t batch, float *out);
/* Per-op time profile of the cached training graphs (profiling is on when CLIPC_PROFILE is set). */
void cc_trainer_print_profile(const cc_trainer *tr, FILE *out);
/* Bytes of the optimizer state: AdamW's two moments, and the gradient accumulators, of the
 * trainable parameters only (frozen ones have neither). */
size_t cc_trainer_moment_bytes(const cc_trainer *tr);
size_t cc_trainer_gradient_bytes(const cc_trainer *tr);
/* Folds the adapters into the projections, and LoRA pairs into their weights (export keeps the
 * Hugging Face layout); the features stay the same. */
int cc_trainer_merge_adapters(cc_trainer *tr);

#endif
