/* trainer.c — CLIP training step: graphs per batch shape, InfoNCE or SigLIP, accumulation, AdamW. */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/comm.h"
#include "engine/util.h"
#include "kernels/gemm.h"
#include "train/loss.h"

#define TRAINER_CACHE_SIZE 12  /* distinct (kind, batch, text length) graphs kept planned */
#define TEXT_LENGTH_QUANTUM 8  /* text lengths are rounded up to this, to bound the number of graphs */
#define LOGIT_SCALE_MAX 4.605170186f /* ln(100) */

enum graph_kind { GRAPH_TRAIN, GRAPH_ACCUM, GRAPH_LOSS, GRAPH_IMAGE_FEATURES, GRAPH_TEXT_FEATURES };

typedef struct trainer_graph {
    enum graph_kind kind;
    int64_t batch, seq_len, n_others;
    int scale_is_input; /* GRAPH_ACCUM after the first micro-batch: logit_scale enters as a constant */
    cc_graph *graph;
    cc_tensor *pixels, *ids, *pool, *labels, *img_others, *txt_others, *scale, *bias, *output;
    uint64_t last_used;
} trainer_graph;

struct trainer_graph_cache {
    trainer_graph entries[TRAINER_CACHE_SIZE];
    uint64_t clock;
};

void cc_trainer_config_default(cc_trainer_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cc_adamw_config_default(&cfg->adamw);
    cfg->accum_freq = 1;
}

static void clear_cache(cc_trainer *tr) {
    if (!tr->cache) return;
    for (int i = 0; i < TRAINER_CACHE_SIZE; i++) cc_graph_free(tr->cache->entries[i].graph);
    memset(tr->cache, 0, sizeof *tr->cache);
}

/* An identity [D, D] adapter on the model's backend. */
static cc_tensor *new_adapter(cc_clip_model *m, const char *name) {
    int64_t dim = m->config.projection_dim;
    cc_tensor *t = cc_tensor_new(CC_F32, 2, (int64_t[]){dim, dim}, name);
    if (!t) return NULL;
    float *host = cc_calloc((size_t)(dim * dim), sizeof(float), name);
    int status = host ? cc_tensor_alloc(t, m->backend->host_memory ? NULL : m->backend) : -1;
    if (status == 0) {
        for (int64_t i = 0; i < dim; i++) host[i * dim + i] = 1.0f;
        status = cc_tensor_upload(t, host);
    }
    free(host);
    if (status != 0) {
        cc_tensor_free(t);
        return NULL;
    }
    t->flags |= CC_FLAG_PARAM;
    return t;
}

int cc_trainer_init(cc_trainer *tr, cc_clip_model *model, const cc_trainer_config *cfg) {
    memset(tr, 0, sizeof *tr);
    tr->config = *cfg;
    tr->model = model;
    if (cfg->accum_freq < 1) {
        cc_set_error("accum-freq must be at least 1");
        return -1;
    }
    tr->cache = cc_calloc(1, sizeof *tr->cache, "trainer graphs");
    if (!tr->cache) return -1;
    if (cfg->loss == CC_LOSS_SIGLIP && !model->backend->host_memory) {
        cc_set_error("the SigLIP loss runs on the CPU backend only for now (not on %s)", model->backend->name);
        return -1;
    }
    if (cfg->loss == CC_LOSS_SIGLIP && !model->logit_bias) {
        float scale = CC_SIGLIP_LOGIT_SCALE_INIT;
        if (!cc_clip_add_logit_bias(model, CC_SIGLIP_LOGIT_BIAS_INIT) || cc_tensor_upload(model->logit_scale, &scale) != 0)
            return -1;
    }
    if (cfg->adapter && cfg->lora.rank > 0) {
        cc_set_error("--adapter and --lora are two ways of fine-tuning: give one");
        return -1;
    }
    if (cfg->lora.rank > 0) {
        cc_clip_set_trainable(model, 0, 0);
        cc_lora_config lc = cfg->lora;
        lc.text = !cfg->lock_text;
        lc.vision = !cfg->lock_image;
        tr->config.lora = lc;
        if (cc_lora_attach(&tr->lora, model, &lc) != 0) return -1;
        /* SigLIP's temperature and bias are trained with the pairs: frozen at their initialisation
         * (t' = log 10, b = -10) no positive pair's logit could exceed 0 */
        if (cfg->loss == CC_LOSS_SIGLIP) {
            model->logit_scale->flags |= CC_FLAG_PARAM;
            model->logit_bias->flags |= CC_FLAG_PARAM;
        }
    } else if (cfg->adapter) {
        cc_clip_set_trainable(model, 0, 0);
        tr->image_adapter = new_adapter(model, "image_adapter.weight");
        tr->text_adapter = new_adapter(model, "text_adapter.weight");
        if (!tr->image_adapter || !tr->text_adapter) return -1;
    } else {
        cc_clip_set_trainable(model, !cfg->lock_text, !cfg->lock_image);
    }
    int n = 0, cap = model->n_params + 2 + 2 * tr->lora.n_pairs;
    cc_tensor **params = cc_calloc((size_t)cap, sizeof *params, "trainable list");
    int *decays = cc_calloc((size_t)cap, sizeof *decays, "trainable list");
    if (!params || !decays) {
        free(params);
        free(decays);
        return -1;
    }
    for (int i = 0; i < model->n_params; i++)
        if (model->params[i]->flags & CC_FLAG_PARAM) {
            decays[n] = cc_clip_param_decays(model, model->params[i]);
            params[n++] = model->params[i];
        }
    if (cfg->adapter) {
        params[n++] = tr->image_adapter;
        params[n++] = tr->text_adapter;
    }
    for (int i = 0; i < tr->lora.n_pairs; i++) { /* matrices: decayed as the weights they update would be */
        decays[n] = 1;
        params[n++] = tr->lora.a[i];
        decays[n] = 1;
        params[n++] = tr->lora.b[i];
    }
    for (int i = 0; i < n; i++) tr->n_trainable += cc_nelements(params[i]);
    for (int i = 0; i < model->n_params; i++)
        if (!(model->params[i]->flags & CC_FLAG_PARAM)) tr->n_frozen += cc_nelements(model->params[i]);
    int status = n > 0 ? cc_adamw_init(&tr->opt, &cfg->adamw, model->backend, params, decays, n) : -1;
    if (n == 0) cc_set_error("nothing to train: both towers are locked");
    free(params);
    free(decays);
    return status;
}

void cc_trainer_free(cc_trainer *tr) {
    clear_cache(tr);
    free(tr->cache);
    cc_adamw_free(&tr->opt);
    cc_tensor_free(tr->image_adapter);
    cc_tensor_free(tr->text_adapter);
    cc_lora_free(&tr->lora);
    if (tr->model) cc_clip_set_trainable(tr->model, 0, 0);
    memset(tr, 0, sizeof *tr);
}

/* ---- graph construction ---- */

static cc_tensor *image_branch(cc_trainer *tr, cc_graph *g, cc_tensor *pixels) {
    cc_tensor *f = cc_clip_image_features(g, tr->model, pixels);
    return tr->image_adapter ? cc_matmul(g, f, tr->image_adapter, 0, 1) : f;
}

static cc_tensor *text_branch(cc_trainer *tr, cc_graph *g, cc_tensor *ids, int64_t batch, int64_t seq_len,
                              cc_tensor *pool) {
    cc_tensor *f = cc_clip_text_features(g, tr->model, ids, batch, seq_len, pool);
    return tr->text_adapter ? cc_matmul(g, f, tr->text_adapter, 0, 1) : f;
}

static int build_graph(cc_trainer *tr, trainer_graph *e) {
    const cc_clip_config *c = &tr->model->config;
    cc_graph *g = e->graph = cc_graph_new();
    if (!g) return -1;
    int64_t b = e->batch, dim = c->projection_dim;
    int needs_pixels = e->kind != GRAPH_TEXT_FEATURES, needs_text = e->kind != GRAPH_IMAGE_FEATURES;
    cc_graph_set_recompute(g, tr->config.checkpoint_activations && (e->kind == GRAPH_TRAIN || e->kind == GRAPH_ACCUM));
    cc_graph_set_matmul_bf16(g, tr->config.bf16_matmul);
    if (needs_pixels)
        e->pixels = cc_input(g, CC_F32, 4,
                             (int64_t[]){b, c->vision.num_channels, c->vision.image_size, c->vision.image_size}, "pixels");
    if (needs_text) {
        e->ids = cc_input(g, CC_I32, 1, (int64_t[]){b * e->seq_len}, "token_ids");
        e->pool = cc_input(g, CC_I32, 1, (int64_t[]){b}, "pool_index");
    }
    cc_tensor *img = needs_pixels ? image_branch(tr, g, e->pixels) : NULL;
    cc_tensor *txt = needs_text ? text_branch(tr, g, e->ids, b, e->seq_len, e->pool) : NULL;
    int backward = 0;
    /* the loss's logits (features of norm 1, scaled by up to 100) multiply in f32: a bf16 rounding of
     * 2^-9 relative there moves each logit by up to 0.2 */
    cc_graph_set_matmul_bf16(g, 0);
    cc_tensor *logit_scale = tr->model->logit_scale, *logit_bias = tr->model->logit_bias;
    int siglip = tr->config.loss == CC_LOSS_SIGLIP;
    if (e->scale_is_input) logit_scale = e->scale = cc_input(g, CC_F32, logit_scale->ndim, logit_scale->shape, "logit_scale");
    if (e->scale_is_input && siglip) logit_bias = e->bias = cc_input(g, CC_F32, logit_bias->ndim, logit_bias->shape, "logit_bias");
    switch (e->kind) {
    case GRAPH_IMAGE_FEATURES: e->output = cc_l2norm(g, img, 1e-12f); break;
    case GRAPH_TEXT_FEATURES: e->output = cc_l2norm(g, txt, 1e-12f); break;
    case GRAPH_ACCUM:
        e->img_others = cc_input(g, CC_F32, 2, (int64_t[]){e->n_others, dim}, "image_features_of_other_micro_batches");
        e->txt_others = cc_input(g, CC_F32, 2, (int64_t[]){e->n_others, dim}, "text_features_of_other_micro_batches");
        img = cc_concat(g, img, e->img_others);
        txt = cc_concat(g, txt, e->txt_others);
        backward = 1;
        /* fall through */
    case GRAPH_TRAIN:
    case GRAPH_LOSS:
        if (siglip) {
            e->output = cc_siglip_loss_graph(g, img, txt, logit_scale, logit_bias, tr->config.modal_reg);
        } else {
            e->labels = cc_input(g, CC_I32, 1, (int64_t[]){b + e->n_others}, "labels");
            e->output = cc_infonce_loss(g, img, txt, logit_scale, e->labels, tr->config.modal_reg);
        }
        backward |= e->kind == GRAPH_TRAIN;
        break;
    }
    if (!e->output || cc_graph_build(g, &e->output, 1) != 0 || (backward && cc_graph_backward(g, e->output) != 0) ||
        cc_graph_plan(g, tr->model->backend) != 0) {
        if (cc_graph_error(g)) cc_set_error("%s", cc_graph_error(g));
        return -1;
    }
    return 0;
}

static trainer_graph *get_graph(cc_trainer *tr, enum graph_kind kind, int64_t batch, int64_t seq_len, int64_t n_others,
                                int scale_is_input) {
    struct trainer_graph_cache *cache = tr->cache;
    trainer_graph *victim = &cache->entries[0];
    for (int i = 0; i < TRAINER_CACHE_SIZE; i++) {
        trainer_graph *e = &cache->entries[i];
        if (e->graph && e->kind == kind && e->batch == batch && e->seq_len == seq_len && e->n_others == n_others &&
            e->scale_is_input == scale_is_input) {
            e->last_used = ++cache->clock;
            return e;
        }
        if (!e->graph || e->last_used < victim->last_used) victim = e;
    }
    cc_graph_free(victim->graph);
    *victim = (trainer_graph){.kind = kind, .batch = batch, .seq_len = seq_len, .n_others = n_others,
                              .scale_is_input = scale_is_input, .last_used = ++cache->clock};
    if (build_graph(tr, victim) != 0) {
        cc_graph_free(victim->graph);
        memset(victim, 0, sizeof *victim);
        return NULL;
    }
    return victim;
}

size_t cc_trainer_peak_activation_bytes(const cc_trainer *tr) {
    size_t peak = 0;
    for (int i = 0; tr->cache && i < TRAINER_CACHE_SIZE; i++) {
        const trainer_graph *e = &tr->cache->entries[i];
        if (e->graph && (e->kind == GRAPH_TRAIN || e->kind == GRAPH_ACCUM) && cc_graph_peak_bytes(e->graph) > peak)
            peak = cc_graph_peak_bytes(e->graph);
    }
    return peak;
}

void cc_trainer_print_profile(const cc_trainer *tr, FILE *out) {
    static const char *const kinds[] = {"train", "accum", "loss", "image features", "text features"};
    for (int i = 0; tr->cache && i < TRAINER_CACHE_SIZE; i++) {
        const trainer_graph *e = &tr->cache->entries[i];
        if (!e->graph) continue;
        fprintf(out, "%s graph, batch %lld, text length %lld, peak activations %.1f MB:\n", kinds[e->kind],
                (long long)e->batch, (long long)e->seq_len, (double)cc_graph_peak_bytes(e->graph) / 1e6);
        cc_graph_print_profile(e->graph, out);
    }
}

/* ---- feeding a batch ---- */

/* Text rows cut to the longest caption (rounded up), as the causal mask allows. */
static int64_t text_length(const cc_trainer *tr, const int32_t *eot, int64_t batch) {
    int64_t context = tr->model->config.text.max_positions, longest = 1;
    for (int64_t b = 0; b < batch; b++)
        if (eot[b] + 1 > longest) longest = eot[b] + 1;
    longest = (longest + TEXT_LENGTH_QUANTUM - 1) / TEXT_LENGTH_QUANTUM * TEXT_LENGTH_QUANTUM;
    return longest < context ? longest : context;
}

static int upload_text(cc_trainer *tr, trainer_graph *e, const int32_t *ids, const int32_t *eot) {
    int64_t context = tr->model->config.text.max_positions, b = e->batch, T = e->seq_len;
    int32_t *packed = cc_malloc((size_t)(b * T + b) * sizeof(int32_t), "token batch");
    if (!packed) return -1;
    for (int64_t i = 0; i < b; i++) {
        if (eot[i] < 0 || eot[i] >= T) {
            free(packed);
            cc_set_error("caption %lld: end-of-text position %d outside [0, %lld)", (long long)i, eot[i], (long long)T);
            return -1;
        }
        memcpy(packed + i * T, ids + i * context, (size_t)T * sizeof(int32_t));
        packed[b * T + i] = (int32_t)(i * T + eot[i]);
    }
    int status = cc_tensor_upload(e->ids, packed) || cc_tensor_upload(e->pool, packed + b * T) ? -1 : 0;
    free(packed);
    return status;
}

static int upload_labels(trainer_graph *e) {
    if (!e->labels) return 0; /* SigLIP: pairs are aligned by row */
    int64_t n = e->batch + e->n_others;
    int32_t *labels = cc_malloc((size_t)n * sizeof(int32_t), "labels");
    if (!labels) return -1;
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)i;
    int status = cc_tensor_upload(e->labels, labels);
    free(labels);
    return status;
}

static int run_loss_graph(cc_trainer *tr, enum graph_kind kind, const cc_train_batch *batch, float *loss) {
    int64_t T = text_length(tr, batch->eot, batch->size);
    trainer_graph *e = get_graph(tr, kind, batch->size, T, 0, 0);
    if (!e || cc_tensor_upload(e->pixels, batch->pixels) != 0 || upload_text(tr, e, batch->ids, batch->eot) != 0 ||
        upload_labels(e) != 0 || cc_graph_compute(e->graph) != 0)
        return -1;
    return cc_tensor_download(e->output, loss);
}

int cc_trainer_loss(cc_trainer *tr, const cc_train_batch *batch, float *loss) {
    return run_loss_graph(tr, GRAPH_LOSS, batch, loss);
}

int cc_trainer_image_features(cc_trainer *tr, const float *pixels, int64_t batch, float *out) {
    trainer_graph *e = get_graph(tr, GRAPH_IMAGE_FEATURES, batch, 0, 0, 0);
    if (!e || cc_tensor_upload(e->pixels, pixels) != 0 || cc_graph_compute(e->graph) != 0) return -1;
    return cc_tensor_download(e->output, out);
}

int cc_trainer_text_features(cc_trainer *tr, const int32_t *ids, const int32_t *eot, int64_t batch, float *out) {
    trainer_graph *e = get_graph(tr, GRAPH_TEXT_FEATURES, batch, text_length(tr, eot, batch), 0, 0);
    if (!e || upload_text(tr, e, ids, eot) != 0 || cc_graph_compute(e->graph) != 0) return -1;
    return cc_tensor_download(e->output, out);
}

/* open_clip accumulation, across micro-batches and ranks: features of every micro-batch without
 * gradients (each rank its own slice, then all-gathered in rank order), then one pass per local
 * micro-batch with every other row's features as constants. Rows are ordered (this micro-batch, then
 * the others): neither loss depends on the order of the pairs. Every pass sees the whole loss, so
 * logit_scale (and SigLIP's logit_bias) takes its gradient from the first pass of rank 0 only
 * (open_clip adds it K times); the ranks' gradients are summed in cc_trainer_apply. */
static int micro_batch_pass(cc_trainer *tr, const cc_train_batch *batch, int64_t k, int64_t b, const float *img,
                            const float *txt, int64_t total, int64_t first_row, float *others_img, float *others_txt,
                            float *pass_loss) {
    const cc_clip_config *c = &tr->model->config;
    int64_t dim = c->projection_dim, context = c->text.max_positions;
    int64_t pixel_count = (int64_t)c->vision.num_channels * c->vision.image_size * c->vision.image_size;
    /* every row but this micro-batch's, in order */
    memcpy(others_img, img, (size_t)(first_row * dim) * sizeof(float));
    memcpy(others_txt, txt, (size_t)(first_row * dim) * sizeof(float));
    memcpy(others_img + first_row * dim, img + (first_row + b) * dim, (size_t)((total - first_row - b) * dim) * sizeof(float));
    memcpy(others_txt + first_row * dim, txt + (first_row + b) * dim, (size_t)((total - first_row - b) * dim) * sizeof(float));
    int64_t T = text_length(tr, batch->eot + k * b, b);
    trainer_graph *e = get_graph(tr, GRAPH_ACCUM, b, T, total - b, k > 0 || cc_comm_rank() > 0);
    float value;
    if (e && e->scale && (cc_tensor_download(tr->model->logit_scale, &value) != 0 || cc_tensor_upload(e->scale, &value) != 0))
        e = NULL;
    if (e && e->bias && (cc_tensor_download(tr->model->logit_bias, &value) != 0 || cc_tensor_upload(e->bias, &value) != 0))
        e = NULL;
    if (!e || cc_tensor_upload(e->pixels, batch->pixels + k * b * pixel_count) != 0 ||
        upload_text(tr, e, batch->ids + k * b * context, batch->eot + k * b) != 0 || upload_labels(e) != 0 ||
        cc_tensor_upload(e->img_others, others_img) != 0 || cc_tensor_upload(e->txt_others, others_txt) != 0 ||
        cc_graph_compute(e->graph) != 0 || cc_tensor_download(e->output, pass_loss) != 0)
        return -1;
    return 0;
}

static int accumulate_micro_batches(cc_trainer *tr, const cc_train_batch *batch, float *loss) {
    const cc_clip_config *c = &tr->model->config;
    int64_t K = tr->config.accum_freq, B_local = batch->size, b = B_local / K, dim = c->projection_dim;
    int64_t context = c->text.max_positions;
    int64_t pixel_count = (int64_t)c->vision.num_channels * c->vision.image_size * c->vision.image_size;
    if (B_local % K != 0 || B_local == 0) {
        cc_set_error("batch size %lld is not a positive multiple of accum-freq %lld", (long long)B_local, (long long)K);
        return -1;
    }
    int n_ranks = cc_comm_size();
    int64_t counts[n_ranks], my_first = 0, B = 0;
    cc_comm_allgather_i64(B_local * dim, counts);
    for (int r = 0; r < n_ranks; r++) {
        if (r == cc_comm_rank()) my_first = B;
        B += counts[r] / dim;
    }
    float *img = cc_malloc((size_t)(B * dim) * sizeof(float), "cached features");
    float *txt = cc_malloc((size_t)(B * dim) * sizeof(float), "cached features");
    float *others_img = cc_malloc((size_t)((B - b) * dim + 1) * sizeof(float), "cached features");
    float *others_txt = cc_malloc((size_t)((B - b) * dim + 1) * sizeof(float), "cached features");
    int status = img && txt && others_img && others_txt ? 0 : -1;
    for (int64_t k = 0; k < K && status == 0; k++) {
        float *my_img = img + (my_first + k * b) * dim, *my_txt = txt + (my_first + k * b) * dim;
        status = cc_trainer_image_features(tr, batch->pixels + k * b * pixel_count, b, my_img);
        if (status == 0) status = cc_trainer_text_features(tr, batch->ids + k * b * context, batch->eot + k * b, b, my_txt);
    }
    /* a rank that failed here aborts the job (the others would wait in the all-gather) */
    if (status != 0 && n_ranks > 1) cc_comm_abort(cc_last_error());
    cc_comm_allgather_floats(img, counts);
    cc_comm_allgather_floats(txt, counts);
    for (int64_t k = 0; k < K && status == 0; k++) {
        float pass_loss;
        status = micro_batch_pass(tr, batch, k, b, img, txt, B, my_first + k * b, others_img, others_txt, &pass_loss);
        if (status == 0 && k == 0) *loss = pass_loss;
    }
    if (status != 0 && n_ranks > 1) cc_comm_abort(cc_last_error());
    /* every rank reports rank 0's value of the (global) loss, so that all take the same decisions */
    cc_comm_broadcast(loss, sizeof *loss, 0);
    free(img);
    free(txt);
    free(others_img);
    free(others_txt);
    return status;
}

int cc_trainer_accumulate(cc_trainer *tr, const cc_train_batch *batch, float *loss) {
    if (tr->config.accum_freq > 1 || cc_comm_is_distributed()) return accumulate_micro_batches(tr, batch, loss);
    return run_loss_graph(tr, GRAPH_TRAIN, batch, loss);
}

/* FNV-1a over the bytes of every model parameter, adapter and AdamW moment. */
static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static int hash_tensor(const cc_tensor *t, uint64_t *h) {
    if (!t) return 0;
    void *host = cc_malloc(cc_nbytes(t), "parameter checksum");
    if (!host || cc_tensor_download(t, host) != 0) {
        free(host);
        return -1;
    }
    *h = hash_bytes(*h, host, cc_nbytes(t));
    free(host);
    return 0;
}

int cc_trainer_state_hash(cc_trainer *tr, uint64_t *hash) {
    uint64_t h = 14695981039346656037ull;
    int status = 0;
    for (int i = 0; i < tr->model->n_params && status == 0; i++) status = hash_tensor(tr->model->params[i], &h);
    if (status == 0) status = hash_tensor(tr->model->logit_bias, &h);
    if (status == 0) status = hash_tensor(tr->image_adapter, &h) || hash_tensor(tr->text_adapter, &h) ? -1 : 0;
    for (int i = 0; i < tr->lora.n_pairs && status == 0; i++)
        status = hash_tensor(tr->lora.a[i], &h) || hash_tensor(tr->lora.b[i], &h) ? -1 : 0;
    for (int i = 0; i < tr->opt.n_params && status == 0; i++)
        status = hash_tensor(tr->opt.m[i], &h) || hash_tensor(tr->opt.v[i], &h) ? -1 : 0;
    *hash = h;
    return status;
}

int cc_trainer_zero_grad(cc_trainer *tr) { return cc_adamw_zero_grad(&tr->opt); }

/* logit_scale stays ≤ ln(100) (CLIP's clamp) */
static int clamp_logit_scale(cc_trainer *tr) {
    cc_tensor *s = tr->model->logit_scale;
    float value;
    if (cc_tensor_download(s, &value) != 0) return -1;
    if (value <= LOGIT_SCALE_MAX) return 0;
    value = LOGIT_SCALE_MAX;
    return cc_tensor_upload(s, &value);
}

/* Data-parallel: every rank's accumulated gradients ← their sum over the ranks. All gradients go
 * into one buffer in the optimizer's parameter order, so that each rank adds the same floats in the
 * same order, and one all-reduce sums them. */
static int reduce_gradients(cc_trainer *tr) {
    cc_adamw *opt = &tr->opt;
    int64_t total = 0;
    for (int i = 0; i < opt->n_params; i++) total += cc_nelements(opt->params[i]->grad_acc);
    float *flat = cc_malloc((size_t)total * sizeof(float), "gradient all-reduce");
    if (!flat) return -1;
    int64_t at = 0;
    int status = 0;
    for (int i = 0; i < opt->n_params && status == 0; i++) {
        status = cc_tensor_download(opt->params[i]->grad_acc, flat + at);
        at += cc_nelements(opt->params[i]->grad_acc);
    }
    if (status != 0) cc_comm_abort(cc_last_error());
    cc_comm_allreduce_sum(flat, total);
    at = 0;
    for (int i = 0; i < opt->n_params && status == 0; i++) {
        status = cc_tensor_upload(opt->params[i]->grad_acc, flat + at);
        at += cc_nelements(opt->params[i]->grad_acc);
    }
    free(flat);
    return status;
}

int cc_trainer_apply(cc_trainer *tr, float grad_scale, double *grad_norm) {
    int status = cc_comm_is_distributed() ? reduce_gradients(tr) : 0;
    if (status == 0) status = cc_adamw_step(&tr->opt, grad_scale, grad_norm);
    if (status == 0) status = clamp_logit_scale(tr);
    if (cc_adamw_zero_grad(&tr->opt) != 0) status = -1;
    return status;
}

/* projection ← adapter · projection, then the adapter becomes the identity again */
static int merge_one(cc_trainer *tr, cc_tensor *adapter, cc_tensor *projection) {
    int64_t dim = adapter->shape[0], width = projection->shape[1];
    float *a = cc_malloc(cc_nbytes(adapter), "adapter"), *p = cc_malloc(cc_nbytes(projection), "projection");
    float *merged = cc_malloc(cc_nbytes(projection), "projection");
    int status = a && p && merged ? 0 : -1;
    if (status == 0) status = cc_tensor_download(adapter, a) || cc_tensor_download(projection, p) ? -1 : 0;
    if (status == 0) {
        cc_sgemm(0, 0, dim, width, dim, 1.0f, a, dim, p, width, 0.0f, merged, width);
        status = cc_tensor_upload(projection, merged);
        for (int64_t i = 0; i < dim * dim; i++) a[i] = (i / dim == i % dim) ? 1.0f : 0.0f;
        if (status == 0) status = cc_tensor_upload(adapter, a);
    }
    free(a);
    free(p);
    free(merged);
    return status;
}

size_t cc_trainer_moment_bytes(const cc_trainer *tr) {
    size_t bytes = 0;
    for (int i = 0; i < tr->opt.n_params; i++) bytes += cc_nbytes(tr->opt.m[i]) + cc_nbytes(tr->opt.v[i]);
    return bytes;
}

size_t cc_trainer_gradient_bytes(const cc_trainer *tr) {
    size_t bytes = 0;
    for (int i = 0; i < tr->opt.n_params; i++)
        if (tr->opt.params[i]->grad_acc) bytes += cc_nbytes(tr->opt.params[i]->grad_acc);
    return bytes;
}

int cc_trainer_merge_adapters(cc_trainer *tr) {
    if (tr->lora.n_pairs) {
        if (cc_lora_merge(&tr->lora) != 0) return -1;
        clear_cache(tr);
    }
    if (!tr->config.adapter) return 0;
    if (merge_one(tr, tr->image_adapter, tr->model->visual_projection) != 0 ||
        merge_one(tr, tr->text_adapter, tr->model->text_projection) != 0)
        return -1;
    clear_cache(tr);
    cc_clip_clear_cache(tr->model);
    return 0;
}
