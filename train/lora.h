/* lora.h — LoRA (Hu et al. 2021) on CLIP's transformer blocks: low-rank updates
 * W' = W + (alpha / R) · B · A of chosen weight matrices (q/k/v projections, the attention output
 * projection, the MLP's fc1/fc2) of one or both towers, the base weights frozen.
 *
 * A pair is A [R, in], initialised as PEFT does (kaiming-uniform with a = √5: U(±1/√in)), and
 * B [out, R], zero, so that the model at step 0 is the base model. The pairs hang on the model's
 * layers (cc_clip_layer.lora_a/lora_b; engine/clip.c adds the low-rank path to each product) but
 * are owned here. Names follow PEFT's saved adapters for a CLIPModel:
 *   base_model.model.vision_model.encoder.layers.0.self_attn.q_proj.lora_A.weight
 * so OUT/lora/adapter_model.safetensors + adapter_config.json load with
 * peft.PeftModel.from_pretrained(CLIPModel...). Merging folds each pair into its weight
 * (clipc export; the end of clipc train), so the exported model is a plain CLIPModel. */
#ifndef CLIPC_LORA_H
#define CLIPC_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/clip.h"
#include "engine/safetensors.h"

#define CC_LORA_TARGET(slot) (1u << (slot))
/* PEFT users' usual choice for CLIP (and the LoRA paper's): the query and value projections */
#define CC_LORA_DEFAULT_TARGETS (CC_LORA_TARGET(CC_LORA_Q) | CC_LORA_TARGET(CC_LORA_V))

typedef struct cc_lora_config {
    int rank;          /* R; 0 = no LoRA */
    float alpha;       /* the update is scaled by alpha / R */
    unsigned targets;  /* CC_LORA_TARGET(slot) bits */
    int text, vision;  /* towers that get pairs */
    uint64_t seed;     /* of A's initialisation */
} cc_lora_config;

/* "qkv,out,mlp": comma-separated q, k, v, qkv, out, fc1, fc2, mlp, all, or PEFT's module names
 * q_proj, k_proj, v_proj, out_proj. -1 with an error naming an unknown one. */
int cc_lora_parse_targets(const char *text, unsigned *targets);
/* The targets as PEFT module names, comma-separated ("q_proj,v_proj"). */
void cc_lora_targets_str(unsigned targets, char *buf, size_t size);

typedef struct cc_lora {
    cc_lora_config config;
    cc_clip_model *model;
    int n_pairs;
    cc_tensor **a, **b;   /* n_pairs each, in layer order (text tower first) */
    cc_tensor **weights;  /* the base weight each pair updates */
} cc_lora;

/* Checks the config against the model (rank in 1..min(in, out) of every target, a tower, a
 * target), creates and initialises the pairs on the model's backend and attaches them. */
int cc_lora_attach(cc_lora *l, cc_clip_model *m, const cc_lora_config *cfg);
/* Detaches the pairs from the model and frees them. */
void cc_lora_free(cc_lora *l);
int64_t cc_lora_n_params(const cc_lora *l);
/* Reads every pair's A and B by name from a safetensors file (a checkpoint or an adapter file);
 * a missing or mis-shaped tensor is an error naming it. */
int cc_lora_load(cc_lora *l, const cc_safetensors *st, const char *path);
/* OUT_DIR/adapter_model.safetensors and adapter_config.json (PEFT's layout), atomically. */
int cc_lora_save(const cc_lora *l, const char *out_dir);
/* W ← W + (alpha/R)·B·A for every pair, then B ← 0 (the features stay the same). */
int cc_lora_merge(cc_lora *l);

/* {"r": R, "alpha": A, "targets": "q_proj,v_proj", "text": 1, "vision": 1} (malloc'd), for
 * checkpoint metadata; parse reads it back (seed 0). */
char *cc_lora_config_json(const cc_lora_config *cfg);
int cc_lora_config_parse(const char *json, cc_lora_config *cfg);

#endif
