/* lora.c — LoRA pairs on CLIP's blocks: creation, PEFT names, files, merging (see lora.h). */
#include "train/lora.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/gemm.h"

/* PEFT's module names of the slots, and the path of the module inside a block */
static const char *const slot_names[CC_LORA_SLOTS] = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
static const char *const slot_paths[CC_LORA_SLOTS] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                      "self_attn.out_proj", "mlp.fc1", "mlp.fc2"};

int cc_lora_parse_targets(const char *text, unsigned *targets) {
    static const struct { const char *name; unsigned bits; } words[] = {
        {"q", CC_LORA_TARGET(CC_LORA_Q)},        {"k", CC_LORA_TARGET(CC_LORA_K)},
        {"v", CC_LORA_TARGET(CC_LORA_V)},        {"q_proj", CC_LORA_TARGET(CC_LORA_Q)},
        {"k_proj", CC_LORA_TARGET(CC_LORA_K)},   {"v_proj", CC_LORA_TARGET(CC_LORA_V)},
        {"qkv", CC_LORA_TARGET(CC_LORA_Q) | CC_LORA_TARGET(CC_LORA_K) | CC_LORA_TARGET(CC_LORA_V)},
        {"out", CC_LORA_TARGET(CC_LORA_OUT)},    {"out_proj", CC_LORA_TARGET(CC_LORA_OUT)},
        {"fc1", CC_LORA_TARGET(CC_LORA_FC1)},    {"fc2", CC_LORA_TARGET(CC_LORA_FC2)},
        {"mlp", CC_LORA_TARGET(CC_LORA_FC1) | CC_LORA_TARGET(CC_LORA_FC2)},
        {"all", (1u << CC_LORA_SLOTS) - 1},
    };
    *targets = 0;
    const char *p = text ? text : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        unsigned bits = 0;
        for (size_t i = 0; i < sizeof words / sizeof words[0] && !bits; i++)
            if (strlen(words[i].name) == len && !strncmp(words[i].name, p, len)) bits = words[i].bits;
        if (!bits) {
            cc_set_error("--lora-targets: unknown target '%.*s' (q, k, v, qkv, out, fc1, fc2, mlp, all, or q_proj, "
                         "k_proj, v_proj, out_proj)", (int)len, p);
            return -1;
        }
        *targets |= bits;
        p += len;
        if (*p == ',') p++;
    }
    if (!*targets) {
        cc_set_error("--lora-targets: no target given");
        return -1;
    }
    return 0;
}

void cc_lora_targets_str(unsigned targets, char *buf, size_t size) {
    size_t len = 0;
    if (size) buf[0] = 0;
    for (int s = 0; s < CC_LORA_SLOTS; s++)
        if (targets & CC_LORA_TARGET(s) && len < size)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", slot_names[s]);
}

/* "base_model.model.<weight name without .weight>.lora_A.weight" */
static void pair_name(const cc_tensor *weight, char which, char *out, size_t size) {
    size_t len = strlen(weight->name);
    if (len > 7 && !strcmp(weight->name + len - 7, ".weight")) len -= 7;
    snprintf(out, size, "base_model.model.%.*s.lora_%c.weight", (int)len, weight->name, which);
}

static cc_tensor *new_pair_tensor(cc_clip_model *m, const cc_tensor *weight, char which, int64_t rows, int64_t cols,
                                  cc_rng *rng) {
    char name[CC_NAME_MAX];
    pair_name(weight, which, name, sizeof name);
    cc_tensor *t = cc_tensor_new(CC_F32, 2, (int64_t[]){rows, cols}, name);
    if (!t) return NULL;
    float *host = cc_calloc((size_t)(rows * cols), sizeof(float), name);
    int status = host ? cc_tensor_alloc(t, m->backend->host_memory ? NULL : m->backend) : -1;
    if (status == 0) {
        /* A: torch's kaiming_uniform_(a=√5) as PEFT calls it: gain √(2/(1+5)), bound gain·√(3/in) = 1/√in */
        float bound = 1.0f / sqrtf((float)cols);
        if (which == 'A')
            for (int64_t i = 0; i < rows * cols; i++) host[i] = bound * (float)(2.0 * cc_rng_uniform(rng) - 1.0);
        status = cc_tensor_upload(t, host); /* B: zero */
    }
    free(host);
    if (status != 0) {
        cc_tensor_free(t);
        return NULL;
    }
    t->flags |= CC_FLAG_PARAM;
    return t;
}

static void detach(cc_clip_model *m) {
    const int counts[2] = {m->config.text.num_layers, m->config.vision.num_layers};
    cc_clip_layer *const towers[2] = {m->text_layers, m->vision_layers};
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < counts[t]; i++)
            for (int s = 0; s < CC_LORA_SLOTS; s++) towers[t][i].lora_a[s] = towers[t][i].lora_b[s] = NULL;
    cc_clip_clear_cache(m);
}

int cc_lora_attach(cc_lora *l, cc_clip_model *m, const cc_lora_config *cfg) {
    memset(l, 0, sizeof *l);
    const cc_clip_tower_config *tcfg[2] = {&m->config.text, &m->config.vision};
    cc_clip_layer *const towers[2] = {m->text_layers, m->vision_layers};
    const int on[2] = {cfg->text, cfg->vision};
    if (cfg->rank < 1) {
        cc_set_error("--lora: the rank must be at least 1 (got %d)", cfg->rank);
        return -1;
    }
    if (!(cfg->alpha > 0) || !isfinite(cfg->alpha)) {
        cc_set_error("--lora-alpha must be a positive number (got %g)", (double)cfg->alpha);
        return -1;
    }
    if (!cfg->text && !cfg->vision) {
        cc_set_error("--lora: both towers are locked, so no weight would get a LoRA pair");
        return -1;
    }
    if (!(cfg->targets & ((1u << CC_LORA_SLOTS) - 1))) {
        cc_set_error("--lora: no target matrices");
        return -1;
    }
    int n = 0;
    for (int t = 0; t < 2; t++) {
        if (!on[t]) continue;
        for (int s = 0; s < CC_LORA_SLOTS; s++) {
            if (!(cfg->targets & CC_LORA_TARGET(s))) continue;
            const cc_tensor *w = cc_clip_layer_weight(&towers[t][0], s);
            int64_t smaller = w->shape[0] < w->shape[1] ? w->shape[0] : w->shape[1];
            if (cfg->rank > smaller) {
                cc_set_error("--lora %d is larger than the %s tower's %s [%lld, %lld] (the rank can be at most %lld)",
                             cfg->rank, t ? "vision" : "text", slot_names[s], (long long)w->shape[0],
                             (long long)w->shape[1], (long long)smaller);
                return -1;
            }
            n += tcfg[t]->num_layers;
        }
    }
    l->config = *cfg;
    l->model = m;
    l->a = cc_calloc((size_t)n, sizeof *l->a, "LoRA pairs");
    l->b = cc_calloc((size_t)n, sizeof *l->b, "LoRA pairs");
    l->weights = cc_calloc((size_t)n, sizeof *l->weights, "LoRA pairs");
    if (!l->a || !l->b || !l->weights) {
        cc_lora_free(l);
        return -1;
    }
    cc_rng rng;
    cc_rng_seed(&rng, cfg->seed ^ 0x4c6f5241ull); /* "LoRA": apart from the model's own init stream */
    for (int t = 0; t < 2; t++) {
        if (!on[t]) continue;
        for (int i = 0; i < tcfg[t]->num_layers; i++)
            for (int s = 0; s < CC_LORA_SLOTS; s++) {
                if (!(cfg->targets & CC_LORA_TARGET(s))) continue;
                cc_clip_layer *layer = &towers[t][i];
                cc_tensor *w = cc_clip_layer_weight(layer, s);
                int64_t out = w->shape[0], in = w->shape[1];
                cc_tensor *a = new_pair_tensor(m, w, 'A', cfg->rank, in, &rng);
                cc_tensor *b = a ? new_pair_tensor(m, w, 'B', out, cfg->rank, &rng) : NULL;
                if (!b) {
                    cc_tensor_free(a);
                    cc_lora_free(l);
                    return -1;
                }
                l->a[l->n_pairs] = layer->lora_a[s] = a;
                l->b[l->n_pairs] = layer->lora_b[s] = b;
                l->weights[l->n_pairs++] = w;
            }
    }
    m->lora_scale = cfg->alpha / (float)cfg->rank;
    m->weights_modified = 1; /* merging changes the base weights: never pre-pack them */
    cc_clip_unpack(m);
    cc_clip_clear_cache(m);
    return 0;
}

void cc_lora_free(cc_lora *l) {
    if (l->model) detach(l->model);
    for (int i = 0; i < l->n_pairs; i++) {
        cc_tensor_free(l->a[i]);
        cc_tensor_free(l->b[i]);
    }
    free(l->a);
    free(l->b);
    free(l->weights);
    memset(l, 0, sizeof *l);
}

int64_t cc_lora_n_params(const cc_lora *l) {
    int64_t n = 0;
    for (int i = 0; i < l->n_pairs; i++) n += cc_nelements(l->a[i]) + cc_nelements(l->b[i]);
    return n;
}

static int load_one(cc_tensor *t, const cc_safetensors *st, const char *path) {
    const cc_st_entry *e = cc_st_find(st, t->name);
    if (!e) {
        cc_set_error("%s: no LoRA tensor %s (trained with another --lora rank, --lora-targets or locked tower?)", path,
                     t->name);
        return -1;
    }
    if (e->ndim != 2 || e->shape[0] != t->shape[0] || e->shape[1] != t->shape[1]) {
        cc_set_error("%s: LoRA tensor %s is not [%lld, %lld] (another --lora rank?)", path, t->name,
                     (long long)t->shape[0], (long long)t->shape[1]);
        return -1;
    }
    float *host = cc_malloc(cc_nbytes(t), t->name);
    int status = host && cc_st_read_f32(e, host, cc_nelements(t)) == 0 ? cc_tensor_upload(t, host) : -1;
    free(host);
    return status;
}

int cc_lora_load(cc_lora *l, const cc_safetensors *st, const char *path) {
    for (int i = 0; i < l->n_pairs; i++)
        if (load_one(l->a[i], st, path) != 0 || load_one(l->b[i], st, path) != 0) return -1;
    if (l->model) cc_clip_clear_cache(l->model);
    return 0;
}

/* PEFT's adapter_config.json: a list of module names when both towers have pairs, else a regular
 * expression that PEFT matches against the full module names of the one tower. */
static char *adapter_config_json(const cc_lora_config *cfg) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNullToObject(root, "task_type");
    cJSON_AddNullToObject(root, "base_model_name_or_path");
    cJSON_AddNumberToObject(root, "r", cfg->rank);
    cJSON_AddNumberToObject(root, "lora_alpha", cfg->alpha);
    cJSON_AddNumberToObject(root, "lora_dropout", 0.0);
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddFalseToObject(root, "fan_in_fan_out");
    cJSON_AddTrueToObject(root, "inference_mode");
    cJSON_AddTrueToObject(root, "init_lora_weights");
    cJSON_AddNullToObject(root, "modules_to_save");
    if (cfg->text && cfg->vision) {
        cJSON *list = cJSON_AddArrayToObject(root, "target_modules");
        for (int s = 0; s < CC_LORA_SLOTS; s++)
            if (cfg->targets & CC_LORA_TARGET(s)) cJSON_AddItemToArray(list, cJSON_CreateString(slot_names[s]));
    } else {
        char regex[256], alternatives[128];
        size_t len = 0;
        alternatives[0] = 0;
        for (int s = 0; s < CC_LORA_SLOTS; s++)
            if (cfg->targets & CC_LORA_TARGET(s))
                len += (size_t)snprintf(alternatives + len, sizeof alternatives - len, "%s%s", len ? "|" : "",
                                        slot_paths[s]);
        snprintf(regex, sizeof regex, "%s\\.encoder\\.layers\\.\\d+\\.(%s)", cfg->text ? "text_model" : "vision_model",
                 alternatives);
        for (char *c = regex; *c; c++) /* the module paths' dots, escaped */
            if (*c == '.' && (c == regex || c[-1] != '\\')) {
                memmove(c + 1, c, strlen(c) + 1);
                *c++ = '\\';
            }
        cJSON_AddStringToObject(root, "target_modules", regex);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) cc_set_error("out of memory writing adapter_config.json");
    return text;
}

int cc_lora_save(const cc_lora *l, const char *out_dir) {
    if (cc_mkdir_p(out_dir) != 0) return -1;
    cc_st_write_item *items = cc_calloc((size_t)(2 * l->n_pairs + 1), sizeof *items, "LoRA file");
    float **owned = cc_calloc((size_t)(2 * l->n_pairs + 1), sizeof *owned, "LoRA file");
    int status = items && owned ? 0 : -1;
    for (int i = 0; i < 2 * l->n_pairs && status == 0; i++) {
        cc_tensor *t = i % 2 ? l->b[i / 2] : l->a[i / 2];
        const float *data = t->data;
        if (t->backend && !t->backend->host_memory) {
            owned[i] = cc_malloc(cc_nbytes(t), t->name);
            if (!owned[i] || cc_tensor_download(t, owned[i]) != 0) status = -1;
            data = owned[i];
        }
        items[i] = (cc_st_write_item){t->name, 2, t->shape, data};
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", out_dir);
    if (status == 0) status = cc_st_write(path, items, 2 * l->n_pairs, CC_F32, "{\"format\": \"pt\"}");
    for (int i = 0; owned && i < 2 * l->n_pairs; i++) free(owned[i]);
    free(owned);
    free(items);
    char *json = status == 0 ? adapter_config_json(&l->config) : NULL;
    snprintf(path, sizeof path, "%s/adapter_config.json", out_dir);
    if (status == 0) status = json ? cc_write_file_atomic(path, json, strlen(json)) : -1;
    free(json);
    return status;
}

int cc_lora_merge(cc_lora *l) {
    float scale = l->config.alpha / (float)l->config.rank;
    int status = 0;
    for (int i = 0; i < l->n_pairs && status == 0; i++) {
        cc_tensor *w = l->weights[i], *a = l->a[i], *b = l->b[i];
        int64_t out = w->shape[0], in = w->shape[1], r = a->shape[0];
        float *hw = cc_malloc(cc_nbytes(w), "LoRA merge"), *ha = cc_malloc(cc_nbytes(a), "LoRA merge");
        float *hb = cc_malloc(cc_nbytes(b), "LoRA merge");
        status = hw && ha && hb ? 0 : -1;
        if (status == 0)
            status = cc_tensor_download(w, hw) || cc_tensor_download(a, ha) || cc_tensor_download(b, hb) ? -1 : 0;
        if (status == 0) {
            cc_sgemm(0, 0, out, in, r, scale, hb, r, ha, in, 1.0f, hw, in);
            status = cc_tensor_upload(w, hw);
            memset(hb, 0, cc_nbytes(b));
            if (status == 0) status = cc_tensor_upload(b, hb);
        }
        free(hw);
        free(ha);
        free(hb);
    }
    if (l->model) {
        cc_clip_unpack(l->model);
        cc_clip_clear_cache(l->model);
    }
    return status;
}

char *cc_lora_config_json(const cc_lora_config *cfg) {
    char targets[128];
    cc_lora_targets_str(cfg->targets, targets, sizeof targets);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "r", cfg->rank);
    cJSON_AddNumberToObject(root, "alpha", cfg->alpha);
    cJSON_AddStringToObject(root, "targets", targets);
    cJSON_AddNumberToObject(root, "text", cfg->text);
    cJSON_AddNumberToObject(root, "vision", cfg->vision);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) cc_set_error("out of memory writing the LoRA config");
    return text;
}

int cc_lora_config_parse(const char *json, cc_lora_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "r"), *alpha = cJSON_GetObjectItemCaseSensitive(root, "alpha");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(root, "targets");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(root, "text"), *vision = cJSON_GetObjectItemCaseSensitive(root, "vision");
    int status = cJSON_IsNumber(r) && cJSON_IsNumber(alpha) && cJSON_IsString(targets) && cJSON_IsNumber(text) &&
                         cJSON_IsNumber(vision) && r->valuedouble >= 1 && r->valuedouble <= 1 << 20
                     ? 0
                     : -1;
    if (status == 0) {
        cfg->rank = (int)r->valuedouble;
        cfg->alpha = (float)alpha->valuedouble;
        cfg->text = text->valueint != 0;
        cfg->vision = vision->valueint != 0;
        status = cc_lora_parse_targets(targets->valuestring, &cfg->targets);
    }
    if (status != 0) cc_set_error("LoRA metadata '%.80s' is not {\"r\", \"alpha\", \"targets\", \"text\", \"vision\"}", json);
    cJSON_Delete(root);
    return status;
}
