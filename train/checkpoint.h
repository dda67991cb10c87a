/* checkpoint.h — training checkpoints: one safetensors file holding the model parameters (Hugging
 * Face names), the AdamW moments ("optimizer.m.<name>", "optimizer.v.<name>"), the adapters if any,
 * LoRA pairs under their PEFT names, and in its metadata the model config (and "lora": rank, alpha,
 * targets, towers), the optimizer step and the data position, so that a resumed
 * run continues exactly where the saved one stopped. Written atomically (temp file + rename). */
#ifndef CLIPC_CHECKPOINT_H
#define CLIPC_CHECKPOINT_H

#include <stdint.h>

#include "engine/clip.h"
#include "train/trainer.h"

#define CC_CHECKPOINT_TEXT_MAX 4096

typedef struct cc_train_state {
    int64_t step;                 /* optimizer steps completed */
    int64_t epoch;                /* epoch in progress */
    int64_t batch_in_epoch;       /* batches of that epoch already consumed */
    uint64_t seed;                /* data order and initialisation seed */
    int64_t skipped_images;       /* unreadable images skipped so far */
    char tokenizer_dir[CC_CHECKPOINT_TEXT_MAX];  /* where vocab.json / merges.txt of this model are */
    char train_config[CC_CHECKPOINT_TEXT_MAX];   /* JSON of the run's options, for the record */
} cc_train_state;

int cc_checkpoint_save(const char *path, cc_trainer *tr, const cc_train_state *state);

/* Loads the model of a checkpoint (on backend; NULL = CPU) and its state. When the checkpoint holds
 * adapters, *image_adapter / *text_adapter receive host copies ([D, D] floats, malloc'd), else NULL. */
cc_clip_model *cc_checkpoint_load_model(const char *path, cc_backend *backend, cc_train_state *state,
                                        float **image_adapter, float **text_adapter);
/* Restores the optimizer moments and step (and the adapters, and LoRA pairs) into a trainer built
 * for the model. */
int cc_checkpoint_restore_trainer(const char *path, cc_trainer *tr);
/* The LoRA settings a checkpoint was trained with ("lora" metadata); rank 0 when it has none. */
int cc_checkpoint_lora_config(const char *path, cc_lora_config *cfg);
/* Folds the checkpoint's LoRA pairs (if any) into the weights of m, loaded from that checkpoint. */
int cc_checkpoint_merge_lora(const char *path, cc_clip_model *m);

#endif
