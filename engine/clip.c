/* clip.c — CLIP (Hugging Face CLIPModel) on the graph: config, parameter registry, loading,
 * initialisation, graph builders and cached-graph embedding.
 *
 * Vision: patchify → ·Wpatchᵀ → prepend class embedding → + positions → pre_layrnorm →
 *         pre-LN blocks → class token → post_layernorm → visual_projection.
 * Text:   token embedding → + positions → causal pre-LN blocks → row of the end-of-text token →
 *         final_layer_norm (per row, so pooling first is the same) → text_projection.
 * Block:  x + out_proj(attention(q, k, v of ln1(x))) ; then + fc2(act(fc1(ln2(·)))).
 */
#include "engine/clip.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/util.h"
#include "kernels/gemm.h"

#define GRAPH_CACHE_SIZE 8      /* distinct (tower, batch, length) graphs kept ready */
#define MAX_REPORTED_NAMES 12   /* tensors listed by name in a load error before "and N more" */

/* Parameter leaves carry their role in iparams (unused for leaves otherwise). */
enum { TOWER_SHARED = 0, TOWER_TEXT = 1, TOWER_VISION = 2 };
#define PARAM_TOWER(t) ((t)->iparams[0])
#define PARAM_DECAYS(t) ((t)->iparams[1])

/* ---------------------------------------------------------------- config */

static const char *act_name(cc_act_kind act) {
    return act == CC_ACT_QUICK_GELU ? "quick_gelu" : act == CC_ACT_GELU_ERF ? "gelu" : "gelu_pytorch_tanh";
}

static int parse_act(const char *path, const char *section, const char *name, cc_act_kind *out) {
    if (!strcmp(name, "quick_gelu")) *out = CC_ACT_QUICK_GELU;
    else if (!strcmp(name, "gelu")) *out = CC_ACT_GELU_ERF;
    else if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh") || !strcmp(name, "gelu_fast"))
        *out = CC_ACT_GELU_TANH;
    else {
        cc_set_error("%s: %s.hidden_act '%s' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)", path,
                     section, name);
        return -1;
    }
    return 0;
}

/* Reads an integer field in [lo, hi]; required fields missing are an error naming them. The bound
 * comes first, so no size is ever multiplied before it is known to be sane. */
static int get_int(const char *path, const cJSON *obj, const char *section, const char *key, int required, int fallback,
                   int lo, int hi, int *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item)) {
        if (required) {
            cc_set_error("%s: missing field %s.%s", path, section, key);
            return -1;
        }
        *out = fallback;
        return 0;
    }
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!(v >= lo && v <= hi) || v != floor(v)) {
        cc_set_error("%s: field %s.%s must be an integer in %d..%d", path, section, key, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Bounds of the config fields: generous for any CLIP (ViT-bigG is 1664 wide, 48 layers), small
 * enough that no product of them overflows and no registry is gigabytes before weights are read. */
#define CFG_MAX_WIDTH 16384          /* hidden_size, projection_dim */
#define CFG_MAX_FFN 65536            /* intermediate_size */
#define CFG_MAX_LAYERS 512           /* num_hidden_layers */
#define CFG_MAX_VOCAB (1 << 21)      /* vocab_size */
#define CFG_MAX_CONTEXT 8192         /* max_position_embeddings */
#define CFG_MAX_IMAGE 4096           /* image_size */
#define CFG_MAX_PATCHES (CC_CLIP_MAX_GRID * CC_CLIP_MAX_GRID) /* (image_size / patch_size)^2 */
#define CFG_MAX_PARAMS (1LL << 33)   /* parameters in all (34 GB in f32) */

/* Parameters of one tower (as cc_clip_new declares them), in double: no overflow. */
static double tower_params(const cc_clip_tower_config *t, int is_text, int projection_dim) {
    double c = t->hidden_size, f = t->intermediate_size;
    double layer = 4 * c * c + 2 * c * f + 9 * c + f;
    double embed = is_text ? ((double)t->vocab_size + t->max_positions) * c
                           : c + c * 3.0 * t->patch_size * t->patch_size +
                                 ((double)(t->image_size / t->patch_size) * (t->image_size / t->patch_size) + 1) * c;
    return embed + t->num_layers * layer + 4 * c + (double)projection_dim * c;
}

static int parse_tower(const char *path, const cJSON *obj, const char *section, int is_text, cc_clip_tower_config *t) {
    if (!cJSON_IsObject(obj)) {
        cc_set_error("%s: missing object %s", path, section);
        return -1;
    }
    memset(t, 0, sizeof *t);
    if (get_int(path, obj, section, "hidden_size", 1, 0, 1, CFG_MAX_WIDTH, &t->hidden_size) ||
        get_int(path, obj, section, "intermediate_size", 1, 0, 1, CFG_MAX_FFN, &t->intermediate_size) ||
        get_int(path, obj, section, "num_hidden_layers", 1, 0, 1, CFG_MAX_LAYERS, &t->num_layers) ||
        get_int(path, obj, section, "num_attention_heads", 1, 0, 1, CFG_MAX_WIDTH, &t->num_heads))
        return -1;
    if (is_text) {
        if (get_int(path, obj, section, "vocab_size", 0, 49408, 1, CFG_MAX_VOCAB, &t->vocab_size) ||
            get_int(path, obj, section, "max_position_embeddings", 0, 77, 1, CFG_MAX_CONTEXT, &t->max_positions))
            return -1;
        const cJSON *eos = cJSON_GetObjectItemCaseSensitive(obj, "eos_token_id");
        double eos_id = cJSON_IsNumber(eos) ? eos->valuedouble : -1;
        t->eos_token_id = eos_id >= 0 && eos_id < t->vocab_size && eos_id == floor(eos_id) ? (int)eos_id : -1;
    } else {
        /* the image pipeline (decoding, preprocessing, uploads) is RGB: 3 planes per image */
        if (get_int(path, obj, section, "image_size", 1, 0, 1, CFG_MAX_IMAGE, &t->image_size) ||
            get_int(path, obj, section, "patch_size", 1, 0, 1, CFG_MAX_IMAGE, &t->patch_size) ||
            get_int(path, obj, section, "num_channels", 0, 3, 0, INT_MAX, &t->num_channels))
            return -1;
        if (t->num_channels != 3) {
            cc_set_error("%s: %s.num_channels is %d: only 3 (RGB images) is supported", path, section, t->num_channels);
            return -1;
        }
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
    t->act = CC_ACT_QUICK_GELU;
    if (act && !cJSON_IsNull(act)) {
        if (!cJSON_IsString(act)) {
            cc_set_error("%s: %s.hidden_act must be a string", path, section);
            return -1;
        }
        if (parse_act(path, section, act->valuestring, &t->act)) return -1;
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(obj, "layer_norm_eps");
    t->layer_norm_eps = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 1e-5f;
    /* consistency */
    if (t->hidden_size <= 0 || t->num_heads <= 0 || t->hidden_size % t->num_heads != 0) {
        cc_set_error("%s: %s.hidden_size %d is not a positive multiple of num_attention_heads %d", path, section,
                     t->hidden_size, t->num_heads);
        return -1;
    }
    if (t->intermediate_size <= 0 || t->num_layers <= 0) {
        cc_set_error("%s: %s needs positive intermediate_size and num_hidden_layers", path, section);
        return -1;
    }
    if (!is_text && (t->patch_size <= 0 || t->image_size <= 0 || t->image_size % t->patch_size != 0)) {
        cc_set_error("%s: %s.image_size %d is not a positive multiple of patch_size %d", path, section, t->image_size,
                     t->patch_size);
        return -1;
    }
    if (is_text && (t->vocab_size <= 0 || t->max_positions <= 0)) {
        cc_set_error("%s: %s needs positive vocab_size and max_position_embeddings", path, section);
        return -1;
    }
    if (!is_text && (int64_t)(t->image_size / t->patch_size) * (t->image_size / t->patch_size) > CFG_MAX_PATCHES) {
        cc_set_error("%s: %s.image_size %d / patch_size %d gives %lld patches, more than %d", path, section,
                     t->image_size, t->patch_size,
                     (long long)(t->image_size / t->patch_size) * (t->image_size / t->patch_size), CFG_MAX_PATCHES);
        return -1;
    }
    if (!(t->layer_norm_eps > 0 && t->layer_norm_eps < 1)) {
        cc_set_error("%s: %s.layer_norm_eps must be in (0, 1)", path, section);
        return -1;
    }
    return 0;
}

int cc_clip_config_parse(const char *text, size_t size, const char *path, cc_clip_config *out) {
    cJSON *root = cJSON_ParseWithLength(text, size);
    if (!root || !cJSON_IsObject(root)) {
        const char *at = cJSON_GetErrorPtr();
        cc_set_error("%s: not valid JSON (error near byte %lld)", path, at && root == NULL ? (long long)(at - text) : -1LL);
        cJSON_Delete(root);
        return -1;
    }
    memset(out, 0, sizeof *out);
    int status = parse_tower(path, cJSON_GetObjectItemCaseSensitive(root, "text_config"), "text_config", 1, &out->text);
    if (!status)
        status = parse_tower(path, cJSON_GetObjectItemCaseSensitive(root, "vision_config"), "vision_config", 0, &out->vision);
    if (!status) status = get_int(path, root, "config", "projection_dim", 1, 0, 1, CFG_MAX_WIDTH, &out->projection_dim);
    if (!status) {
        double params = tower_params(&out->text, 1, out->projection_dim) + tower_params(&out->vision, 0, out->projection_dim);
        if (params > (double)CFG_MAX_PARAMS) {
            cc_set_error("%s: the sizes give %.3g parameters, more than %.3g (num_hidden_layers, hidden_size, "
                         "intermediate_size, vocab_size)", path, params, (double)CFG_MAX_PARAMS);
            status = -1;
        }
    }
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(root, "logit_scale_init_value");
    out->logit_scale_init = cJSON_IsNumber(scale) ? (float)scale->valuedouble : 2.6592f;
    cJSON_Delete(root);
    return status;
}

int cc_clip_config_load(const char *path, cc_clip_config *out) {
    char *text;
    size_t size;
    if (cc_read_file(path, &text, &size) != 0) return -1;
    int status = cc_clip_config_parse(text, size, path, out);
    free(text);
    return status;
}

static cJSON *tower_json(const cc_clip_tower_config *t, int is_text, int projection_dim) {
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddNumberToObject(obj, "hidden_size", t->hidden_size);
    cJSON_AddNumberToObject(obj, "intermediate_size", t->intermediate_size);
    cJSON_AddNumberToObject(obj, "num_hidden_layers", t->num_layers);
    cJSON_AddNumberToObject(obj, "num_attention_heads", t->num_heads);
    cJSON_AddStringToObject(obj, "hidden_act", act_name(t->act));
    cJSON_AddNumberToObject(obj, "layer_norm_eps", t->layer_norm_eps);
    cJSON_AddNumberToObject(obj, "projection_dim", projection_dim);
    if (is_text) {
        cJSON_AddStringToObject(obj, "model_type", "clip_text_model");
        cJSON_AddNumberToObject(obj, "vocab_size", t->vocab_size);
        cJSON_AddNumberToObject(obj, "max_position_embeddings", t->max_positions);
        cJSON_AddNumberToObject(obj, "bos_token_id", t->vocab_size - 2);
        cJSON_AddNumberToObject(obj, "eos_token_id", t->vocab_size - 1);
        cJSON_AddNumberToObject(obj, "pad_token_id", t->vocab_size - 1);
    } else {
        cJSON_AddStringToObject(obj, "model_type", "clip_vision_model");
        cJSON_AddNumberToObject(obj, "image_size", t->image_size);
        cJSON_AddNumberToObject(obj, "patch_size", t->patch_size);
        cJSON_AddNumberToObject(obj, "num_channels", t->num_channels);
    }
    return obj;
}

char *cc_clip_config_json(const cc_clip_config *cfg) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPModel"));
    cJSON_AddStringToObject(root, "model_type", "clip");
    cJSON_AddNumberToObject(root, "projection_dim", cfg->projection_dim);
    cJSON_AddNumberToObject(root, "logit_scale_init_value", cfg->logit_scale_init);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON_AddItemToObject(root, "text_config", tower_json(&cfg->text, 1, cfg->projection_dim));
    cJSON_AddItemToObject(root, "vision_config", tower_json(&cfg->vision, 0, cfg->projection_dim));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) cc_set_error("out of memory writing a model config");
    return text;
}

int cc_clip_config_save(const cc_clip_config *cfg, const char *path) {
    char *text = cc_clip_config_json(cfg);
    if (!text) return -1;
    int status = cc_write_file_atomic(path, text, strlen(text));
    free(text);
    return status;
}

int cc_clip_config_builtin(const char *name, cc_clip_config *out) {
    memset(out, 0, sizeof *out);
    out->logit_scale_init = 2.6592f; /* ln(1/0.07) */
    if (!strcmp(name, "b32")) {
        out->text = (cc_clip_tower_config){.hidden_size = 512, .intermediate_size = 2048, .num_layers = 12,
                                           .num_heads = 8, .act = CC_ACT_QUICK_GELU, .layer_norm_eps = 1e-5f,
                                           .vocab_size = 49408, .max_positions = 77, .eos_token_id = 49407};
        out->vision = (cc_clip_tower_config){.hidden_size = 768, .intermediate_size = 3072, .num_layers = 12,
                                             .num_heads = 12, .act = CC_ACT_QUICK_GELU, .layer_norm_eps = 1e-5f,
                                             .image_size = 224, .patch_size = 32, .num_channels = 3};
        out->projection_dim = 512;
        return 0;
    }
    if (!strcmp(name, "tiny")) {
        /* 64×64 images in 8×8 patches (64 tokens + class); 4 layers per tower at width 192;
         * captions up to 32 tokens. Sized for a few minutes of training on 2 cores. */
        out->text = (cc_clip_tower_config){.hidden_size = 192, .intermediate_size = 768, .num_layers = 4,
                                           .num_heads = 4, .act = CC_ACT_QUICK_GELU, .layer_norm_eps = 1e-5f,
                                           .vocab_size = 49408, .max_positions = 32, .eos_token_id = -1};
        out->vision = (cc_clip_tower_config){.hidden_size = 192, .intermediate_size = 768, .num_layers = 4,
                                             .num_heads = 4, .act = CC_ACT_QUICK_GELU, .layer_norm_eps = 1e-5f,
                                             .image_size = 64, .patch_size = 8, .num_channels = 3};
        out->projection_dim = 128;
        return 0;
    }
    cc_set_error("unknown architecture '%s' (built in: tiny, b32; or give a config.json)", name);
    return -1;
}

int cc_clip_n_patches(const cc_clip_config *cfg) {
    int grid = cfg->vision.image_size / cfg->vision.patch_size;
    return grid * grid;
}

/* ---------------------------------------------------------------- parameter registry */

static cc_tensor *declare(cc_clip_model *m, int tower, int decays, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static cc_tensor *declare(cc_clip_model *m, int tower, int decays, int ndim, const int64_t *shape, const char *fmt, ...) {
    char name[CC_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    cc_tensor *t = cc_tensor_new(CC_F32, ndim, shape, name);
    if (!t) return NULL;
    PARAM_TOWER(t) = tower;
    PARAM_DECAYS(t) = decays;
    m->params[m->n_params++] = t;
    if (tower == TOWER_TEXT) m->n_text_params += cc_nelements(t);
    if (tower == TOWER_VISION) m->n_vision_params += cc_nelements(t);
    return t;
}

#define D1(a) (int64_t[]){(a)}
#define D2(a, b) (int64_t[]){(a), (b)}

static void declare_layers(cc_clip_model *m, const cc_clip_tower_config *t, int tower, const char *prefix,
                           cc_clip_layer *layers) {
    int64_t c = t->hidden_size, f = t->intermediate_size;
    for (int i = 0; i < t->num_layers; i++) {
        cc_clip_layer *l = &layers[i];
        const char *p = prefix;
        l->ln1_w = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.layer_norm1.weight", p, i);
        l->ln1_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.layer_norm1.bias", p, i);
        l->q_w = declare(m, tower, 1, 2, D2(c, c), "%s.encoder.layers.%d.self_attn.q_proj.weight", p, i);
        l->q_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.self_attn.q_proj.bias", p, i);
        l->k_w = declare(m, tower, 1, 2, D2(c, c), "%s.encoder.layers.%d.self_attn.k_proj.weight", p, i);
        l->k_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.self_attn.k_proj.bias", p, i);
        l->v_w = declare(m, tower, 1, 2, D2(c, c), "%s.encoder.layers.%d.self_attn.v_proj.weight", p, i);
        l->v_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.self_attn.v_proj.bias", p, i);
        l->o_w = declare(m, tower, 1, 2, D2(c, c), "%s.encoder.layers.%d.self_attn.out_proj.weight", p, i);
        l->o_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.self_attn.out_proj.bias", p, i);
        l->ln2_w = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.layer_norm2.weight", p, i);
        l->ln2_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.layer_norm2.bias", p, i);
        l->fc1_w = declare(m, tower, 1, 2, D2(f, c), "%s.encoder.layers.%d.mlp.fc1.weight", p, i);
        l->fc1_b = declare(m, tower, 0, 1, D1(f), "%s.encoder.layers.%d.mlp.fc1.bias", p, i);
        l->fc2_w = declare(m, tower, 1, 2, D2(c, f), "%s.encoder.layers.%d.mlp.fc2.weight", p, i);
        l->fc2_b = declare(m, tower, 0, 1, D1(c), "%s.encoder.layers.%d.mlp.fc2.bias", p, i);
    }
}

/* The precision new models start with (cc_clip_set_default_precision). */
static cc_precision default_precision = CC_PRECISION_F32;

static int precision_supported(cc_precision precision);

int cc_clip_set_default_precision(cc_precision precision) {
    if (precision_supported(precision) != 0) {
        default_precision = CC_PRECISION_F32;
        return -1;
    }
    default_precision = precision;
    return 0;
}

cc_clip_model *cc_clip_new(const cc_clip_config *cfg, cc_backend *backend) {
    cc_clip_model *m = cc_calloc(1, sizeof *m, "CLIP model");
    if (!m) return NULL;
    m->config = *cfg;
    m->backend = backend ? backend : cc_backend_cpu();
    m->precision = default_precision;
    const cc_clip_tower_config *tc = &cfg->text, *vc = &cfg->vision;
    if (tc->num_layers < 1 || tc->num_layers > CFG_MAX_LAYERS || vc->num_layers < 1 || vc->num_layers > CFG_MAX_LAYERS ||
        vc->num_channels != 3) {
        cc_set_error("CLIP model: %d text and %d vision layers, %d channels (1..%d layers and 3 channels supported)",
                     tc->num_layers, vc->num_layers, vc->num_channels, CFG_MAX_LAYERS);
        cc_clip_free(m);
        return NULL;
    }
    int max_params = 16 * (tc->num_layers + vc->num_layers) + 16;
    m->params = cc_calloc((size_t)max_params, sizeof *m->params, "parameter list");
    m->text_layers = cc_calloc((size_t)tc->num_layers, sizeof *m->text_layers, "text layers");
    m->vision_layers = cc_calloc((size_t)vc->num_layers, sizeof *m->vision_layers, "vision layers");
    if (!m->params || !m->text_layers || !m->vision_layers) {
        cc_clip_free(m);
        return NULL;
    }
    int64_t ct = tc->hidden_size, cv = vc->hidden_size, patch = vc->patch_size;
    int64_t n_positions = cc_clip_n_patches(cfg) + 1;
    m->token_embedding = declare(m, TOWER_TEXT, 0, 2, D2(tc->vocab_size, ct), "text_model.embeddings.token_embedding.weight");
    m->text_position_embedding =
        declare(m, TOWER_TEXT, 0, 2, D2(tc->max_positions, ct), "text_model.embeddings.position_embedding.weight");
    declare_layers(m, tc, TOWER_TEXT, "text_model", m->text_layers);
    m->final_ln_w = declare(m, TOWER_TEXT, 0, 1, D1(ct), "text_model.final_layer_norm.weight");
    m->final_ln_b = declare(m, TOWER_TEXT, 0, 1, D1(ct), "text_model.final_layer_norm.bias");
    m->class_embedding = declare(m, TOWER_VISION, 0, 1, D1(cv), "vision_model.embeddings.class_embedding");
    m->patch_embedding = declare(m, TOWER_VISION, 1, 4, (int64_t[]){cv, vc->num_channels, patch, patch},
                                 "vision_model.embeddings.patch_embedding.weight");
    m->vision_position_embedding =
        declare(m, TOWER_VISION, 0, 2, D2(n_positions, cv), "vision_model.embeddings.position_embedding.weight");
    m->pre_ln_w = declare(m, TOWER_VISION, 0, 1, D1(cv), "vision_model.pre_layrnorm.weight");
    m->pre_ln_b = declare(m, TOWER_VISION, 0, 1, D1(cv), "vision_model.pre_layrnorm.bias");
    declare_layers(m, vc, TOWER_VISION, "vision_model", m->vision_layers);
    m->post_ln_w = declare(m, TOWER_VISION, 0, 1, D1(cv), "vision_model.post_layernorm.weight");
    m->post_ln_b = declare(m, TOWER_VISION, 0, 1, D1(cv), "vision_model.post_layernorm.bias");
    m->visual_projection = declare(m, TOWER_VISION, 1, 2, D2(cfg->projection_dim, cv), "visual_projection.weight");
    m->text_projection = declare(m, TOWER_TEXT, 1, 2, D2(cfg->projection_dim, ct), "text_projection.weight");
    m->logit_scale = declare(m, TOWER_SHARED, 0, 0, NULL, "logit_scale");
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i]) {
            cc_clip_free(m);
            return NULL;
        }
    return m;
}

cc_tensor *cc_clip_add_logit_bias(cc_clip_model *m, float value) {
    if (!m->logit_bias) {
        m->logit_bias = declare(m, TOWER_SHARED, 0, 0, NULL, "logit_bias");
        if (!m->logit_bias) return NULL;
        if (m->logit_scale->flags & CC_FLAG_PARAM) m->logit_bias->flags |= CC_FLAG_PARAM;
    }
    if (!isfinite(value)) return m->logit_bias;
    cc_tensor *b = m->logit_bias;
    if (!b->data && cc_tensor_alloc(b, m->backend->host_memory ? NULL : m->backend) != 0) return NULL;
    if (cc_tensor_upload(b, &value) != 0) return NULL;
    cc_clip_clear_cache(m);
    return b;
}

void cc_clip_free(cc_clip_model *m) {
    if (!m) return;
    cc_clip_clear_cache(m);
    free(m->cache);
    for (int i = 0; i < m->n_params; i++) cc_tensor_free(m->params[i]);
    free(m->params);
    free(m->text_layers);
    free(m->vision_layers);
    cc_st_close(&m->weights_file);
    free(m);
}

int cc_clip_is_text_param(const cc_clip_model *m, const cc_tensor *param) {
    (void)m;
    return PARAM_TOWER(param) == TOWER_TEXT;
}

int cc_clip_param_decays(const cc_clip_model *m, const cc_tensor *param) {
    (void)m;
    return PARAM_DECAYS(param);
}

void cc_clip_set_trainable(cc_clip_model *m, int text, int vision) {
    if (text || vision) { /* weights will change: packed copies would go stale */
        m->weights_modified = 1;
        cc_clip_unpack(m);
    }
    for (int i = 0; i < m->n_params; i++) {
        cc_tensor *p = m->params[i];
        int on = PARAM_TOWER(p) == TOWER_TEXT ? text : PARAM_TOWER(p) == TOWER_VISION ? vision : (text || vision);
        if (on) p->flags |= CC_FLAG_PARAM;
        else p->flags &= ~CC_FLAG_PARAM;
    }
    cc_clip_clear_cache(m);
}

/* ---------------------------------------------------------------- loading and init */

static int shape_matches(const cc_tensor *t, const cc_st_entry *e) {
    if (cc_nelements(t) == 1 && t->ndim <= 1) { /* logit_scale: [] or [1] */
        int64_t count = 1;
        for (int d = 0; d < e->ndim; d++) count *= e->shape[d];
        return count == 1;
    }
    if (t->ndim != e->ndim) return 0;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != e->shape[d]) return 0;
    return 1;
}

static int is_ignorable_buffer(const char *name) {
    size_t len = strlen(name);
    return len >= 13 && !strcmp(name + len - 13, ".position_ids");
}

/* Appends "name" to a bounded list in buf. */
static void list_name(char *buf, size_t size, int *count, const char *name) {
    (*count)++;
    size_t len = strlen(buf);
    if (*count <= MAX_REPORTED_NAMES) snprintf(buf + len, size - len, "%s%s", *count > 1 ? ", " : "", name);
}

/* Places one tensor's values in the parameter: zero-copy into the mapping for f32 on the CPU,
 * converted / uploaded otherwise. */
static int place_param(cc_clip_model *m, cc_tensor *p, const cc_st_entry *e) {
    int64_t count = cc_nelements(p);
    if (e->dtype == CC_F32 && m->backend->host_memory && ((uintptr_t)e->data % 4) == 0) {
        p->data = (void *)e->data; /* private writable mapping: training may update it in place */
        p->backend = NULL;
        return 0;
    }
    float *host = cc_malloc_aligned((size_t)count * sizeof(float), p->name);
    if (!host || cc_st_read_f32(e, host, count) != 0) {
        cc_free_aligned(host);
        return -1;
    }
    if (m->backend->host_memory) {
        p->data = p->owned_data = host;
        p->backend = NULL;
        return 0;
    }
    int status = cc_tensor_alloc(p, m->backend);
    if (status == 0) status = m->backend->upload(m->backend, p->data, host, (size_t)count * sizeof(float));
    cc_free_aligned(host);
    return status;
}

cc_clip_model *cc_clip_load(const char *model_dir, cc_backend *backend) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    cc_clip_config cfg;
    if (cc_clip_config_load(path, &cfg) != 0) return NULL;
    cc_safetensors st;
    if (cc_st_open(model_dir, &st) != 0) return NULL;
    /* the vocabulary and context come from the tensors when the config omits them */
    const cc_st_entry *tok = cc_st_find(&st, "text_model.embeddings.token_embedding.weight");
    if (tok && tok->ndim == 2 && tok->shape[0] != cfg.text.vocab_size) {
        cc_set_error("%s: config says vocab_size %d but token_embedding has %lld rows", model_dir, cfg.text.vocab_size,
                     (long long)tok->shape[0]);
        cc_st_close(&st);
        return NULL;
    }
    cc_clip_model *m = cc_clip_new(&cfg, backend);
    if (!m) {
        cc_st_close(&st);
        return NULL;
    }
    m->weights_file = st;
    if (cc_st_find(&st, "logit_bias") && !cc_clip_add_logit_bias(m, NAN)) {
        cc_clip_free(m);
        return NULL;
    }
    char missing[1024] = "", mismatched[2048] = "", unexpected[1024] = "";
    int n_missing = 0, n_mismatched = 0, n_unexpected = 0;
    for (int i = 0; i < m->n_params; i++) {
        cc_tensor *p = m->params[i];
        const cc_st_entry *e = cc_st_find(&st, p->name);
        if (!e) {
            list_name(missing, sizeof missing, &n_missing, p->name);
        } else if (e->is_index || !shape_matches(p, e)) {
            char want[96], got[160] = "[";
            cc_shape_str(p, want, sizeof want);
            for (int d = 0; d < e->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)e->shape[d]);
            strcat(got, "]");
            char item[CC_NAME_MAX + 256];
            if (e->is_index) { /* same shape or not, integers are no weights: say the dtype */
                int64_t count = 1;
                for (int d = 0; d < e->ndim; d++) count *= e->shape[d];
                snprintf(item, sizeof item, "%s (file %s %s, config float %s)", p->name,
                         count > 0 && e->nbytes / (size_t)count == 8 ? "I64" : "I32", got, want);
            } else {
                snprintf(item, sizeof item, "%s (file %s, config %s)", p->name, got, want);
            }
            list_name(mismatched, sizeof mismatched, &n_mismatched, item);
        }
    }
    for (int i = 0; i < st.n_entries; i++) {
        const char *name = st.entries[i].name;
        if (is_ignorable_buffer(name)) continue;
        int known = 0;
        for (int j = 0; j < m->n_params && !known; j++) known = !strcmp(m->params[j]->name, name);
        if (!known) list_name(unexpected, sizeof unexpected, &n_unexpected, name);
    }
    if (n_missing || n_mismatched || n_unexpected) {
        char message[CC_ERROR_MAX];
        int len = snprintf(message, sizeof message, "%s: the weights do not match config.json:", model_dir);
        if (len > (int)sizeof message - 1) len = (int)sizeof message - 1; /* each part is cut at the end, never past it */
        if (n_missing)
            len += snprintf(message + len, sizeof message - (size_t)len, " %d missing (%s%s);", n_missing, missing,
                            n_missing > MAX_REPORTED_NAMES ? ", ..." : "");
        if (len > (int)sizeof message - 1) len = (int)sizeof message - 1;
        if (n_mismatched)
            len += snprintf(message + len, sizeof message - (size_t)len, " %d mis-shaped or not float (%s%s);", n_mismatched,
                            mismatched, n_mismatched > MAX_REPORTED_NAMES ? ", ..." : "");
        if (len > (int)sizeof message - 1) len = (int)sizeof message - 1;
        if (n_unexpected)
            snprintf(message + len, sizeof message - (size_t)len, " %d unexpected (%s%s)", n_unexpected, unexpected,
                     n_unexpected > MAX_REPORTED_NAMES ? ", ..." : "");
        cc_set_error("%s", message);
        cc_clip_free(m);
        return NULL;
    }
    for (int i = 0; i < m->n_params; i++)
        if (place_param(m, m->params[i], cc_st_find(&st, m->params[i]->name)) != 0) {
            cc_prefix_error("%s", model_dir);
            cc_clip_free(m);
            return NULL;
        }
    return m;
}

static void fill_normal(cc_rng *rng, float *x, int64_t n, float std) {
    for (int64_t i = 0; i < n; i++) x[i] = std * cc_rng_normal(rng);
}

static void fill_value(float *x, int64_t n, float value) {
    for (int64_t i = 0; i < n; i++) x[i] = value;
}

/* Hugging Face CLIPPreTrainedModel._init_weights with factor 1 and initializer_range 0.02. */
static void init_layers(cc_rng *rng, const cc_clip_tower_config *t, cc_clip_layer *layers, float **host_of,
                        cc_tensor **params, int n_params) {
    float width = (float)t->hidden_size;
    float in_proj_std = powf(width, -0.5f) * powf(2.0f * (float)t->num_layers, -0.5f);
    float out_proj_std = powf(width, -0.5f);
    float fc_std = powf(2.0f * width, -0.5f);
    for (int i = 0; i < t->num_layers; i++) {
        cc_clip_layer *l = &layers[i];
        struct { cc_tensor *t; float std; } normals[] = {
            {l->q_w, in_proj_std}, {l->k_w, in_proj_std}, {l->v_w, in_proj_std}, {l->o_w, out_proj_std},
            {l->fc1_w, fc_std}, {l->fc2_w, in_proj_std},
        };
        for (size_t j = 0; j < sizeof normals / sizeof normals[0]; j++)
            for (int p = 0; p < n_params; p++)
                if (params[p] == normals[j].t) fill_normal(rng, host_of[p], cc_nelements(params[p]), normals[j].std);
    }
}

int cc_clip_init_random(cc_clip_model *m, uint64_t seed) {
    cc_rng rng;
    cc_rng_seed(&rng, seed);
    float **host = cc_calloc((size_t)m->n_params, sizeof *host, "init buffers");
    if (!host) return -1;
    int status = 0;
    for (int i = 0; i < m->n_params && status == 0; i++) {
        host[i] = cc_malloc_aligned(cc_nbytes(m->params[i]), m->params[i]->name);
        if (!host[i]) status = -1;
    }
    if (status == 0) {
        /* defaults: layernorm gains 1, every other vector 0 (biases) */
        for (int i = 0; i < m->n_params; i++) {
            cc_tensor *p = m->params[i];
            int is_gain = strstr(p->name, "norm") && strstr(p->name, ".weight");
            int is_gain2 = strstr(p->name, "layrnorm.weight") != NULL;
            fill_value(host[i], cc_nelements(p), (is_gain || is_gain2) ? 1.0f : 0.0f);
        }
        const cc_clip_config *c = &m->config;
        for (int i = 0; i < m->n_params; i++) {
            cc_tensor *p = m->params[i];
            int64_t n = cc_nelements(p);
            if (p == m->token_embedding || p == m->text_position_embedding || p == m->patch_embedding ||
                p == m->vision_position_embedding)
                fill_normal(&rng, host[i], n, 0.02f);
            else if (p == m->class_embedding) fill_normal(&rng, host[i], n, powf((float)c->vision.hidden_size, -0.5f));
            else if (p == m->visual_projection) fill_normal(&rng, host[i], n, powf((float)c->vision.hidden_size, -0.5f));
            else if (p == m->text_projection) fill_normal(&rng, host[i], n, powf((float)c->text.hidden_size, -0.5f));
            else if (p == m->logit_scale) host[i][0] = c->logit_scale_init;
        }
        init_layers(&rng, &c->text, m->text_layers, host, m->params, m->n_params);
        init_layers(&rng, &c->vision, m->vision_layers, host, m->params, m->n_params);
    }
    for (int i = 0; i < m->n_params && status == 0; i++) {
        cc_tensor *p = m->params[i];
        if (m->backend->host_memory) {
            if (p->owned_data) cc_free_aligned(p->owned_data);
            p->data = p->owned_data = host[i];
            p->backend = NULL;
            host[i] = NULL;
        } else {
            if (!p->owned_data) status = cc_tensor_alloc(p, m->backend);
            if (status == 0) status = m->backend->upload(m->backend, p->data, host[i], cc_nbytes(p));
        }
    }
    for (int i = 0; i < m->n_params; i++) cc_free_aligned(host[i]);
    free(host);
    cc_clip_clear_cache(m);
    return status;
}

int cc_clip_save_weights(const cc_clip_model *m, const char *path, cc_dtype dtype) {
    cc_st_write_item *items = cc_calloc((size_t)m->n_params, sizeof *items, "export list");
    float **host = cc_calloc((size_t)m->n_params, sizeof *host, "export buffers");
    int status = items && host ? 0 : -1;
    for (int i = 0; i < m->n_params && status == 0; i++) {
        cc_tensor *p = m->params[i];
        items[i] = (cc_st_write_item){.name = p->name, .ndim = p->ndim, .shape = p->shape};
        if (!p->backend || p->backend->host_memory) {
            items[i].data = p->data;
            continue;
        }
        host[i] = cc_malloc(cc_nbytes(p), p->name);
        if (!host[i] || cc_tensor_download(p, host[i]) != 0) status = -1;
        items[i].data = host[i];
    }
    if (status == 0) status = cc_st_write(path, items, m->n_params, dtype, "{\"format\": \"pt\"}");
    for (int i = 0; host && i < m->n_params; i++) free(host[i]);
    free(host);
    free(items);
    return status;
}

/* ---------------------------------------------------------------- graph builders */

cc_tensor *cc_clip_layer_weight(const cc_clip_layer *l, cc_lora_slot s) {
    cc_tensor *const weights[CC_LORA_SLOTS] = {l->q_w, l->k_w, l->v_w, l->o_w, l->fc1_w, l->fc2_w};
    return s >= 0 && s < CC_LORA_SLOTS ? weights[s] : NULL;
}

/* x·Wᵀ + b, plus scale·(x·Aᵀ)·Bᵀ when slot s of the layer has a LoRA pair: the low-rank path is
 * two thin products (R columns), never the merged [out, in] matrix. */
static cc_tensor *layer_linear(cc_graph *g, const cc_clip_model *m, const cc_clip_layer *l, cc_lora_slot s,
                               cc_tensor *x, cc_tensor *bias) {
    cc_tensor *y = cc_linear(g, x, cc_clip_layer_weight(l, s), bias);
    if (!l->lora_a[s]) return y;
    cc_tensor *low = cc_matmul(g, cc_matmul(g, x, l->lora_a[s], 0, 1), l->lora_b[s], 0, 1);
    return cc_add_scaled(g, y, low, m->lora_scale);
}

static cc_tensor *encoder_layer(cc_graph *g, const cc_clip_model *m, const cc_clip_tower_config *t,
                                const cc_clip_layer *l, cc_tensor *x, int causal) {
    float scale = 1.0f / sqrtf((float)(t->hidden_size / t->num_heads));
    cc_tensor *a = cc_layernorm(g, x, l->ln1_w, l->ln1_b, t->layer_norm_eps);
    cc_tensor *q = layer_linear(g, m, l, CC_LORA_Q, a, l->q_b);
    cc_tensor *k = layer_linear(g, m, l, CC_LORA_K, a, l->k_b);
    cc_tensor *v = layer_linear(g, m, l, CC_LORA_V, a, l->v_b);
    cc_tensor *att = cc_attention(g, q, k, v, t->num_heads, scale, causal);
    x = cc_add(g, x, layer_linear(g, m, l, CC_LORA_OUT, att, l->o_b));
    cc_tensor *h = cc_layernorm(g, x, l->ln2_w, l->ln2_b, t->layer_norm_eps);
    h = cc_act(g, layer_linear(g, m, l, CC_LORA_FC1, h, l->fc1_b), t->act);
    return cc_add(g, x, layer_linear(g, m, l, CC_LORA_FC2, h, l->fc2_b));
}

cc_tensor *cc_clip_image_features(cc_graph *g, const cc_clip_model *m, cc_tensor *images) {
    const cc_clip_tower_config *t = &m->config.vision;
    if (!images) return NULL;
    if (images->ndim != 4 || images->shape[1] != t->num_channels || images->shape[2] != t->image_size ||
        images->shape[3] != t->image_size) {
        char s[96];
        return cc_graph_fail(g, "image features: images are %s, the model takes [B, %d, %d, %d]",
                             cc_shape_str(images, s, sizeof s), t->num_channels, t->image_size, t->image_size);
    }
    int64_t batch = images->shape[0], width = t->hidden_size;
    cc_tensor *patch_matrix = cc_reshape(
        g, m->patch_embedding, 2, (int64_t[]){width, (int64_t)t->num_channels * t->patch_size * t->patch_size});
    cc_tensor *x = cc_matmul(g, cc_patchify(g, images, t->patch_size), patch_matrix, 0, 1);
    x = cc_prepend_row(g, x, m->class_embedding);
    x = cc_add(g, x, m->vision_position_embedding);
    x = cc_layernorm(g, x, m->pre_ln_w, m->pre_ln_b, t->layer_norm_eps);
    for (int i = 0; i < t->num_layers; i++) {
        cc_tensor *block_input = x;
        x = encoder_layer(g, m, t, &m->vision_layers[i], x, 0);
        cc_graph_checkpoint(g, block_input, x); /* recorded only when the graph recomputes */
    }
    cc_tensor *pooled = cc_reshape(g, cc_slice(g, x, 1, 0, 1), 2, (int64_t[]){batch, width});
    pooled = cc_layernorm(g, pooled, m->post_ln_w, m->post_ln_b, t->layer_norm_eps);
    return cc_matmul(g, pooled, m->visual_projection, 0, 1);
}

cc_tensor *cc_clip_text_features(cc_graph *g, const cc_clip_model *m, cc_tensor *token_ids, int64_t batch,
                                 int64_t seq_len, cc_tensor *pool_index) {
    const cc_clip_tower_config *t = &m->config.text;
    if (!token_ids || !pool_index) return NULL;
    if (seq_len < 1 || seq_len > t->max_positions || cc_nelements(token_ids) != batch * seq_len)
        return cc_graph_fail(g, "text features: %lld tokens for batch %lld x length %lld (context %d)",
                             (long long)cc_nelements(token_ids), (long long)batch, (long long)seq_len, t->max_positions);
    int64_t width = t->hidden_size;
    cc_tensor *x = cc_reshape(g, cc_get_rows(g, m->token_embedding, token_ids), 3, (int64_t[]){batch, seq_len, width});
    x = cc_add(g, x, cc_slice(g, m->text_position_embedding, 0, 0, seq_len));
    for (int i = 0; i < t->num_layers; i++) {
        cc_tensor *block_input = x;
        x = encoder_layer(g, m, t, &m->text_layers[i], x, 1);
        cc_graph_checkpoint(g, block_input, x);
    }
    cc_tensor *pooled = cc_get_rows(g, cc_reshape(g, x, 2, (int64_t[]){batch * seq_len, width}), pool_index);
    pooled = cc_layernorm(g, pooled, m->final_ln_w, m->final_ln_b, t->layer_norm_eps);
    return cc_matmul(g, pooled, m->text_projection, 0, 1);
}

/* ---------------------------------------------------------------- cached embedding graphs */

typedef struct clip_graph_entry {
    int kind; /* 0 image, 1 text */
    int64_t batch, seq_len;
    int normalize;
    cc_graph *graph;
    cc_tensor *input, *pool, *output;
    uint64_t last_used;
} clip_graph_entry;

struct clip_graph_cache {
    clip_graph_entry entries[GRAPH_CACHE_SIZE];
    uint64_t clock;
};

void cc_clip_clear_cache(cc_clip_model *m) {
    if (!m->cache) return;
    for (int i = 0; i < GRAPH_CACHE_SIZE; i++) {
        cc_graph_free(m->cache->entries[i].graph);
        memset(&m->cache->entries[i], 0, sizeof m->cache->entries[i]);
    }
}

void cc_clip_print_profile(const cc_clip_model *m, FILE *out) {
    if (!m->cache) return;
    for (int i = 0; i < GRAPH_CACHE_SIZE; i++) {
        const clip_graph_entry *e = &m->cache->entries[i];
        if (!e->graph) continue;
        fprintf(out, "%s tower, batch %lld%s:\n", e->kind ? "text" : "image", (long long)e->batch,
                e->kind ? "" : "");
        cc_graph_print_profile(e->graph, out);
    }
}

/* ---------------------------------------------------------------- pre-packed weights */

/* Releases the pages wholly inside a tensor mapped from the weights file (clean pages of a
 * private mapping: a later read faults them in from the file again). */
static void release_mapped_pages(const cc_tensor *w) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !w->data) return;
    uintptr_t start = ((uintptr_t)w->data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t end = ((uintptr_t)w->data + cc_nbytes(w)) / (uintptr_t)page * (uintptr_t)page;
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}

static void prepack_weight(cc_tensor *w, cc_precision precision) {
    if (!w || w->packed || w->dtype != CC_F32 || w->ndim != 2 || !w->data || (w->flags & CC_FLAG_PARAM)) return;
    /* f32: only weights mapped from an f32 file, whose pages can be released, so packing costs no
     * memory; a copy of owned weights (converted from bf16/f16, random init) would double the model
     * in RAM. bf16 and int8 pack owned ones too: half or a quarter of their size again, for two or
     * four times the multiply rate. */
    if (precision == CC_PRECISION_BF16) w->packed = cc_gemm_pack_b_bf16(1, w->shape[1], w->shape[0], w->data, w->shape[1]);
    else if (precision == CC_PRECISION_INT8)
        w->packed = cc_gemm_pack_b_int8(1, w->shape[1], w->shape[0], w->data, w->shape[1]);
    else if (!w->owned_data) w->packed = cc_gemm_pack_b(1, w->shape[1], w->shape[0], w->data, w->shape[1]);
    if (w->packed && !w->owned_data) release_mapped_pages(w); /* else: the plain product runs, nothing lost */
}

void cc_clip_prepack(cc_clip_model *m, int tower) {
    if (m->weights_modified || getenv("CLIPC_NO_PREPACK") || (m->backend && !m->backend->host_memory)) return;
    const cc_clip_tower_config *t = tower ? &m->config.text : &m->config.vision;
    const cc_clip_layer *layers = tower ? m->text_layers : m->vision_layers;
    for (int i = 0; i < t->num_layers; i++) {
        const cc_clip_layer *l = &layers[i];
        cc_tensor *weights[] = {l->q_w, l->k_w, l->v_w, l->o_w, l->fc1_w, l->fc2_w};
        for (int j = 0; j < 6; j++) prepack_weight(weights[j], m->precision);
    }
    prepack_weight(tower ? m->text_projection : m->visual_projection, m->precision);
}

void cc_clip_unpack(cc_clip_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        cc_gemm_packed_free(m->params[i]->packed);
        m->params[i]->packed = NULL;
    }
}

int cc_precision_parse(const char *name, cc_precision *out) {
    if (!name || !strcmp(name, "f32")) *out = CC_PRECISION_F32;
    else if (!strcmp(name, "bf16")) *out = CC_PRECISION_BF16;
    else if (!strcmp(name, "int8")) *out = CC_PRECISION_INT8;
    else {
        cc_set_error("precision must be f32, bf16 or int8, got '%s'", name);
        return -1;
    }
    return 0;
}

const char *cc_precision_name(cc_precision precision) {
    return precision == CC_PRECISION_BF16 ? "bf16" : precision == CC_PRECISION_INT8 ? "int8" : "f32";
}

/* 0 when this CPU runs the precision's products; else -1 with cc_last_error naming what it lacks. */
static int precision_supported(cc_precision precision) {
    if (precision == CC_PRECISION_BF16 && !cc_gemm_has_bf16()) {
        cc_set_error("bf16 needs a CPU with AVX512_BF16 instructions, which this one lacks");
        return -1;
    }
    if (precision == CC_PRECISION_INT8 && !cc_gemm_has_int8()) {
        cc_set_error("int8 needs a CPU with AVX512_VNNI instructions, which this one lacks");
        return -1;
    }
    return 0;
}

int cc_clip_set_precision(cc_clip_model *m, cc_precision precision) {
    int ok = precision_supported(precision) == 0;
    if (!ok) precision = CC_PRECISION_F32;
    if (precision != m->precision) {
        m->precision = precision;
        cc_clip_unpack(m);
        cc_clip_clear_cache(m); /* graphs are rebuilt, and weights packed again, on the next embedding */
    }
    return ok ? 0 : -1;
}

static clip_graph_entry *cached_graph(cc_clip_model *m, int kind, int64_t batch, int64_t seq_len, int normalize) {
    if (!m->cache) {
        m->cache = cc_calloc(1, sizeof *m->cache, "graph cache");
        if (!m->cache) return NULL;
    }
    struct clip_graph_cache *cache = m->cache;
    clip_graph_entry *victim = &cache->entries[0];
    for (int i = 0; i < GRAPH_CACHE_SIZE; i++) {
        clip_graph_entry *e = &cache->entries[i];
        if (e->graph && e->kind == kind && e->batch == batch && e->seq_len == seq_len && e->normalize == normalize) {
            e->last_used = ++cache->clock;
            return e;
        }
        if (!e->graph || e->last_used < victim->last_used) victim = e;
    }
    cc_graph_free(victim->graph);
    memset(victim, 0, sizeof *victim);
    cc_graph *g = cc_graph_new();
    if (!g) return NULL;
    const cc_clip_config *c = &m->config;
    cc_tensor *input, *pool = NULL, *features;
    cc_clip_prepack(m, kind);
    if (kind == 0) {
        input = cc_input(g, CC_F32, 4,
                         (int64_t[]){batch, c->vision.num_channels, c->vision.image_size, c->vision.image_size}, "pixels");
        features = cc_clip_image_features(g, m, input);
    } else {
        input = cc_input(g, CC_I32, 1, (int64_t[]){batch * seq_len}, "token_ids");
        pool = cc_input(g, CC_I32, 1, (int64_t[]){batch}, "pool_index");
        features = cc_clip_text_features(g, m, input, batch, seq_len, pool);
    }
    cc_tensor *output = normalize ? cc_l2norm(g, features, 1e-12f) : features;
    if (!output || cc_graph_build(g, &output, 1) != 0 || cc_graph_plan(g, m->backend) != 0) {
        if (cc_graph_error(g)) cc_set_error("%s", cc_graph_error(g));
        cc_graph_free(g);
        return NULL;
    }
    *victim = (clip_graph_entry){kind, batch, seq_len, normalize, g, input, pool, output, ++cache->clock};
    return victim;
}

int cc_clip_embed_images(cc_clip_model *m, const float *pixels, int64_t batch, float *out, int normalize) {
    if (batch <= 0) return 0;
    clip_graph_entry *e = cached_graph(m, 0, batch, 0, normalize);
    if (!e) return -1;
    if (cc_tensor_upload(e->input, pixels) != 0 || cc_graph_compute(e->graph) != 0) return -1;
    return cc_tensor_download(e->output, out);
}

static int embed_texts(cc_clip_model *m, const int32_t *ids, const int32_t *eot_pos, int64_t batch, float *out,
                       int normalize, int trim) {
    if (batch <= 0) return 0;
    int64_t context = m->config.text.max_positions, seq_len = trim ? 1 : context;
    for (int64_t b = 0; b < batch; b++) {
        if (eot_pos[b] < 0 || eot_pos[b] >= context) {
            cc_set_error("text %lld: end-of-text position %d is outside the context of %lld", (long long)b, eot_pos[b],
                         (long long)context);
            return -1;
        }
        if (eot_pos[b] + 1 > seq_len) seq_len = eot_pos[b] + 1;
    }
    int32_t *packed = cc_malloc((size_t)(batch * seq_len + batch) * sizeof(int32_t), "token batch");
    if (!packed) return -1;
    int32_t *pool = packed + batch * seq_len;
    for (int64_t b = 0; b < batch; b++) {
        memcpy(packed + b * seq_len, ids + b * context, (size_t)seq_len * sizeof(int32_t));
        pool[b] = (int32_t)(b * seq_len + eot_pos[b]);
    }
    clip_graph_entry *e = cached_graph(m, 1, batch, seq_len, normalize);
    int status = -1;
    if (e && cc_tensor_upload(e->input, packed) == 0 && cc_tensor_upload(e->pool, pool) == 0 &&
        cc_graph_compute(e->graph) == 0)
        status = cc_tensor_download(e->output, out);
    free(packed);
    return status;
}

int cc_clip_embed_texts(cc_clip_model *m, const int32_t *ids, const int32_t *eot_pos, int64_t batch, float *out,
                        int normalize) {
    return embed_texts(m, ids, eot_pos, batch, out, normalize, 1);
}

int cc_clip_embed_texts_full(cc_clip_model *m, const int32_t *ids, const int32_t *eot_pos, int64_t batch, float *out,
                             int normalize) {
    return embed_texts(m, ids, eot_pos, batch, out, normalize, 0);
}
