/* checkpoint.c — save and restore training state (see checkpoint.h). */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/safetensors.h"
#include "engine/util.h"

#define CHECKPOINT_FORMAT "clipc-checkpoint-1"

/* Host copy of a tensor's data (the tensor's own memory when it is on the host). */
static float *host_view(cc_tensor *t, float **to_free) {
    *to_free = NULL;
    if (!t->backend || t->backend->host_memory) return t->data;
    float *copy = cc_malloc(cc_nbytes(t), t->name);
    if (!copy || cc_tensor_download(t, copy) != 0) {
        free(copy);
        return NULL;
    }
    *to_free = copy;
    return copy;
}

static char *metadata_json(cc_trainer *tr, const cc_train_state *state) {
    char *config = cc_clip_config_json(&tr->model->config);
    if (!config) return NULL;
    cJSON *meta = cJSON_CreateObject();
    char number[64];
    cJSON_AddStringToObject(meta, "format", CHECKPOINT_FORMAT);
    cJSON_AddStringToObject(meta, "config", config);
    free(config);
#define ADD_NUMBER(key, value)                                           \
    snprintf(number, sizeof number, "%lld", (long long)(value));        \
    cJSON_AddStringToObject(meta, key, number)
    ADD_NUMBER("step", state->step);
    ADD_NUMBER("optimizer_step", tr->opt.step);
    ADD_NUMBER("epoch", state->epoch);
    ADD_NUMBER("batch_in_epoch", state->batch_in_epoch);
    ADD_NUMBER("skipped_images", state->skipped_images);
#undef ADD_NUMBER
    snprintf(number, sizeof number, "%llu", (unsigned long long)state->seed);
    cJSON_AddStringToObject(meta, "seed", number);
    cJSON_AddStringToObject(meta, "tokenizer_dir", state->tokenizer_dir);
    cJSON_AddStringToObject(meta, "train_config", state->train_config);
    if (tr->lora.n_pairs) {
        char *lora = cc_lora_config_json(&tr->lora.config);
        if (!lora) {
            cJSON_Delete(meta);
            return NULL;
        }
        cJSON_AddStringToObject(meta, "lora", lora);
        free(lora);
    }
    char *text = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    return text;
}

int cc_checkpoint_save(const char *path, cc_trainer *tr, const cc_train_state *state) {
    cc_clip_model *m = tr->model;
    int max_items = m->n_params + 3 * tr->opt.n_params + 2; /* LoRA pairs are among opt.params */
    cc_st_write_item *items = cc_calloc((size_t)max_items, sizeof *items, "checkpoint");
    float **owned = cc_calloc((size_t)max_items, sizeof *owned, "checkpoint");
    char **names = cc_calloc((size_t)max_items, sizeof *names, "checkpoint");
    int n = 0, status = items && owned && names ? 0 : -1;
    for (int i = 0; i < m->n_params && status == 0; i++) {
        cc_tensor *p = m->params[i];
        float *data = host_view(p, &owned[n]);
        if (!data) status = -1;
        items[n++] = (cc_st_write_item){p->name, p->ndim, p->shape, data};
    }
    cc_tensor *adapters[2] = {tr->image_adapter, tr->text_adapter};
    const char *adapter_names[2] = {"adapter.image", "adapter.text"};
    for (int i = 0; i < 2 && status == 0; i++) {
        if (!adapters[i]) continue;
        float *data = host_view(adapters[i], &owned[n]);
        if (!data) status = -1;
        items[n++] = (cc_st_write_item){adapter_names[i], 2, adapters[i]->shape, data};
    }
    for (int i = 0; i < 2 * tr->lora.n_pairs && status == 0; i++) { /* under their PEFT names */
        cc_tensor *t = i % 2 ? tr->lora.b[i / 2] : tr->lora.a[i / 2];
        float *data = host_view(t, &owned[n]);
        if (!data) status = -1;
        items[n++] = (cc_st_write_item){t->name, 2, t->shape, data};
    }
    for (int i = 0; i < tr->opt.n_params && status == 0; i++) {
        cc_tensor *p = tr->opt.params[i];
        cc_tensor *moments[2] = {tr->opt.m[i], tr->opt.v[i]};
        for (int k = 0; k < 2 && status == 0; k++) {
            size_t len = strlen(p->name) + 16;
            names[n] = cc_malloc(len, "checkpoint name");
            if (!names[n]) {
                status = -1;
                break;
            }
            snprintf(names[n], len, "optimizer.%c.%s", k == 0 ? 'm' : 'v', p->name);
            float *data = host_view(moments[k], &owned[n]);
            if (!data) status = -1;
            items[n] = (cc_st_write_item){names[n], p->ndim, p->shape, data};
            n++;
        }
    }
    char *meta = status == 0 ? metadata_json(tr, state) : NULL;
    if (status == 0 && meta) status = cc_st_write(path, items, n, CC_F32, meta);
    else status = -1;
    free(meta);
    for (int i = 0; i < max_items && owned; i++) {
        free(owned[i]);
        if (names) free(names[i]);
    }
    free(owned);
    free(names);
    free(items);
    return status;
}

#define CHECKPOINT_MAX_COUNT (1LL << 48) /* steps, epochs, batches, images: counters beyond are corrupt */

/* A counter of the metadata (absent: 0) in 0..CHECKPOINT_MAX_COUNT, decimal digits only; else -1 with
 * an error naming the key (a step near INT64_MAX overflowed the optimizer's step count). */
static int meta_count(const cc_safetensors *st, const char *key, const char *path, int64_t *out) {
    const char *value = cc_st_metadata(st, key);
    *out = 0;
    if (!value) return 0;
    size_t len = strlen(value);
    long long v = len && len <= 15 && strspn(value, "0123456789") == len ? strtoll(value, NULL, 10) : -1;
    if (v < 0 || v > CHECKPOINT_MAX_COUNT) {
        cc_set_error("%s: checkpoint metadata %s = '%.40s' is not a count in 0..%lld", path, key, value,
                     (long long)CHECKPOINT_MAX_COUNT);
        return -1;
    }
    *out = v;
    return 0;
}

static float *read_host(const cc_safetensors *st, const char *name, int64_t count, const char *path) {
    const cc_st_entry *e = cc_st_find(st, name);
    if (!e) {
        cc_set_error("%s: checkpoint lacks tensor %s", path, name);
        return NULL;
    }
    float *data = cc_malloc_aligned((size_t)count * sizeof(float), name);
    if (data && cc_st_read_f32(e, data, count) != 0) {
        cc_free_aligned(data);
        return NULL;
    }
    return data;
}

/* Copies host values into a tensor (allocating it on its backend if needed). */
static int fill_tensor(cc_tensor *t, cc_backend *backend, float *host) {
    if (backend->host_memory) {
        if (t->owned_data) cc_free_aligned(t->owned_data);
        t->data = t->owned_data = host;
        t->backend = NULL;
        return 0;
    }
    int status = t->data ? 0 : cc_tensor_alloc(t, backend);
    if (status == 0) status = cc_tensor_upload(t, host);
    cc_free_aligned(host);
    return status;
}

/* Checkpoints of older runs stored the tokenizer directory as given, maybe relative to the working
 * directory of the run: when it is relative and not found from here, OUT/tokenizer next to
 * OUT/checkpoints/step_N.safetensors is used (where training always puts it). */
static void resolve_old_tokenizer_dir(const char *checkpoint_path, char *dir, size_t size) {
    struct stat st;
    if (!dir[0] || dir[0] == '/' || (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))) return;
    char guess[4400];
    snprintf(guess, sizeof guess, "%s", checkpoint_path);
    for (int up = 0; up < 2; up++) { /* drop the file name, then "checkpoints" */
        char *slash = strrchr(guess, '/');
        if (slash) *slash = 0;
        else snprintf(guess, sizeof guess, ".");
    }
    size_t len = strlen(guess);
    snprintf(guess + len, sizeof guess - len, "/tokenizer");
    if (stat(guess, &st) == 0 && S_ISDIR(st.st_mode) && strlen(guess) < size) snprintf(dir, size, "%s", guess);
}

cc_clip_model *cc_checkpoint_load_model(const char *path, cc_backend *backend, cc_train_state *state,
                                        float **image_adapter, float **text_adapter) {
    if (!backend) backend = cc_backend_cpu();
    cc_safetensors st;
    if (cc_st_open(path, &st) != 0) return NULL;
    const char *format = cc_st_metadata(&st, "format"), *config_text = cc_st_metadata(&st, "config");
    if (!format || strcmp(format, CHECKPOINT_FORMAT) != 0 || !config_text) {
        cc_set_error("%s: not a clipc training checkpoint (no '%s' metadata)", path, CHECKPOINT_FORMAT);
        cc_st_close(&st);
        return NULL;
    }
    cc_clip_config cfg;
    cc_clip_model *m = NULL;
    if (cc_clip_config_parse(config_text, strlen(config_text), path, &cfg) == 0) m = cc_clip_new(&cfg, backend);
    int status = m ? 0 : -1;
    if (m && cc_st_find(&st, "logit_bias") && !cc_clip_add_logit_bias(m, NAN)) status = -1;
    for (int i = 0; m && i < m->n_params && status == 0; i++) {
        float *host = read_host(&st, m->params[i]->name, cc_nelements(m->params[i]), path);
        status = host ? fill_tensor(m->params[i], backend, host) : -1;
    }
    if (status == 0 && state) {
        memset(state, 0, sizeof *state);
        if (meta_count(&st, "step", path, &state->step) || meta_count(&st, "epoch", path, &state->epoch) ||
            meta_count(&st, "batch_in_epoch", path, &state->batch_in_epoch) ||
            meta_count(&st, "skipped_images", path, &state->skipped_images))
            status = -1;
        const char *seed = cc_st_metadata(&st, "seed");
        state->seed = seed ? strtoull(seed, NULL, 10) : 0;
        const char *tok = cc_st_metadata(&st, "tokenizer_dir"), *train = cc_st_metadata(&st, "train_config");
        snprintf(state->tokenizer_dir, sizeof state->tokenizer_dir, "%s", tok ? tok : "");
        resolve_old_tokenizer_dir(path, state->tokenizer_dir, sizeof state->tokenizer_dir);
        snprintf(state->train_config, sizeof state->train_config, "%s", train ? train : "");
    }
    int64_t dim = cfg.projection_dim;
    float **outs[2] = {image_adapter, text_adapter};
    const char *names[2] = {"adapter.image", "adapter.text"};
    for (int i = 0; i < 2 && status == 0; i++) {
        if (!outs[i]) continue;
        *outs[i] = cc_st_find(&st, names[i]) ? read_host(&st, names[i], dim * dim, path) : NULL;
        if (cc_st_find(&st, names[i]) && !*outs[i]) status = -1;
    }
    cc_st_close(&st);
    if (status != 0) {
        cc_clip_free(m);
        return NULL;
    }
    return m;
}

int cc_checkpoint_restore_trainer(const char *path, cc_trainer *tr) {
    cc_safetensors st;
    if (cc_st_open(path, &st) != 0) return -1;
    int status = 0;
    char name[CC_NAME_MAX + 32];
    for (int i = 0; i < tr->opt.n_params && status == 0; i++) {
        cc_tensor *p = tr->opt.params[i];
        cc_tensor *moments[2] = {tr->opt.m[i], tr->opt.v[i]};
        for (int k = 0; k < 2 && status == 0; k++) {
            snprintf(name, sizeof name, "optimizer.%c.%s", k == 0 ? 'm' : 'v', p->name);
            float *host = read_host(&st, name, cc_nelements(p), path);
            status = host ? 0 : -1;
            if (host) {
                status = cc_tensor_upload(moments[k], host);
                cc_free_aligned(host);
            }
        }
    }
    cc_tensor *adapters[2] = {tr->image_adapter, tr->text_adapter};
    const char *adapter_names[2] = {"adapter.image", "adapter.text"};
    for (int i = 0; i < 2 && status == 0; i++) {
        if (!adapters[i]) continue;
        float *host = read_host(&st, adapter_names[i], cc_nelements(adapters[i]), path);
        status = host ? cc_tensor_upload(adapters[i], host) : -1;
        cc_free_aligned(host);
    }
    if (status == 0 && tr->lora.n_pairs) status = cc_lora_load(&tr->lora, &st, path);
    if (status == 0) status = meta_count(&st, "optimizer_step", path, &tr->opt.step);
    cc_st_close(&st);
    return status;
}

int cc_checkpoint_lora_config(const char *path, cc_lora_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cc_safetensors st;
    if (cc_st_open(path, &st) != 0) return -1;
    const char *text = cc_st_metadata(&st, "lora");
    int status = text ? cc_lora_config_parse(text, cfg) : 0;
    if (status != 0) cc_prefix_error("%s", path);
    cc_st_close(&st);
    return status;
}

int cc_checkpoint_merge_lora(const char *path, cc_clip_model *m) {
    cc_lora_config cfg;
    if (cc_checkpoint_lora_config(path, &cfg) != 0) return -1;
    if (cfg.rank == 0) return 0;
    cc_lora lora;
    if (cc_lora_attach(&lora, m, &cfg) != 0) {
        cc_prefix_error("%s", path);
        return -1;
    }
    cc_safetensors st;
    int status = cc_st_open(path, &st);
    if (status == 0) {
        status = cc_lora_load(&lora, &st, path);
        cc_st_close(&st);
    }
    if (status == 0) status = cc_lora_merge(&lora);
    cc_lora_free(&lora);
    return status;
}
