/* fuzz_checkpoint.c — libFuzzer target: training checkpoints (train/checkpoint.c). A safetensors file
 * whose metadata holds the format, the model config and the training state is loaded as a model (with
 * adapters when present), then its optimizer moments restored into a trainer built for that model.
 * Configs above a small size are skipped before loading (they only allocate big models; their size
 * arithmetic is the config target's and the known-bug list's business). */
#include "engine/safetensors.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

static int tower_small(const cc_clip_tower_config *t) {
    return t->hidden_size <= 64 && t->intermediate_size <= 128 && t->num_layers <= 2 && t->num_heads <= 8 &&
           t->vocab_size <= 256 && t->max_positions <= 32 && t->image_size <= 32;
}

/* 1 when the checkpoint's config parses and describes a small model */
static int small_model(const char *path) {
    cc_safetensors st;
    if (cc_st_open(path, &st) != 0) return 0;
    const char *config = cc_st_metadata(&st, "config");
    cc_clip_config cfg;
    int ok = config && cc_clip_config_parse(config, strlen(config), path, &cfg) == 0 && tower_small(&cfg.text) &&
             tower_small(&cfg.vision) && cfg.projection_dim <= 64;
    cc_st_close(&st);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("checkpoint.safetensors", data, size);
    if (!small_model(path)) return 0;
    cc_train_state state;
    float *image_adapter = NULL, *text_adapter = NULL;
    cc_clip_model *m = cc_checkpoint_load_model(path, NULL, &state, &image_adapter, &text_adapter);
    if (!m) return 0;
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.adapter = image_adapter || text_adapter;
    cc_trainer tr;
    if (cc_trainer_init(&tr, m, &cfg) == 0) {
        cc_checkpoint_restore_trainer(path, &tr);
        cc_trainer_free(&tr);
    }
    free(image_adapter);
    free(text_adapter);
    cc_clip_free(m);
    return 0;
}
