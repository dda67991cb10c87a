/* test_lora.c — LoRA fine-tuning (train/lora.h): loss, features and every pair's gradient against
 * the PyTorch reference (clip_ref.py lora-grad, float64); step 0 equal to the base model; frozen
 * base weights; merging keeps the features; checkpoints restore the pairs; bad settings fail. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/clip.h"
#include "engine/safetensors.h"
#include "engine/util.h"
#include "tests/test.h"
#include "train/checkpoint.h"
#include "train/lora.h"
#include "train/trainer.h"

#define ALL_TARGETS ((1u << CC_LORA_SLOTS) - 1)

static int read_i64_as_i32(const char *path, int32_t **out, int64_t *count) {
    cc_npy a;
    if (cc_npy_read_i64(path, &a) != 0) return -1;
    *out = malloc((size_t)a.count * 4);
    for (int64_t i = 0; i < a.count; i++) (*out)[i] = (int32_t)((int64_t *)a.data)[i];
    *count = a.count;
    cc_npy_free(&a);
    return 0;
}

/* Random LoRA pairs (B non-zero) on every target of both towers of clip_ref.py's small model:
 * clipc's InfoNCE loss, L2-normalised features and the gradient of every A and B against the
 * float64 reference, relative 1e-4 per tensor (norm-wise, test_rel_error). */
TEST_SLOW(lora_matches_pytorch_loss_features_and_gradients) {
    char seed[32], model_dir[1024];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    REQUIRE(test_python("clip_ref.py", "make", test_tmpdir(), seed, "--dtypes", "f32", "--n-images", "6", "--n-texts",
                        "6", NULL) == 0);
    snprintf(model_dir, sizeof model_dir, "%s/model_f32", test_tmpdir());
    REQUIRE(test_python("clip_ref.py", "lora-grad", model_dir, test_path("pixels.npy"), test_path("ids.npy"),
                        test_path("eot.npy"), test_tmpdir(), "4", "6", "q,k,v,out,fc1,fc2", "text,vision", seed, NULL) == 0);
    cc_clip_model *m = cc_clip_load(model_dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    cc_npy pixels, ref_loss, ref_img, ref_txt;
    int32_t *ids, *eot;
    int64_t n_ids, n;
    REQUIRE(cc_npy_read_f32(test_path("pixels.npy"), &pixels) == 0 && read_i64_as_i32(test_path("ids.npy"), &ids, &n_ids) == 0 &&
            read_i64_as_i32(test_path("eot.npy"), &eot, &n) == 0 && cc_npy_read_f32(test_path("loss.npy"), &ref_loss) == 0 &&
            cc_npy_read_f32(test_path("lora_image_embeds.npy"), &ref_img) == 0 &&
            cc_npy_read_f32(test_path("lora_text_embeds.npy"), &ref_txt) == 0, "%s", cc_last_error());
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.lora = (cc_lora_config){.rank = 4, .alpha = 6.0f, .targets = ALL_TARGETS, .seed = 1};
    cc_trainer tr;
    REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    int n_layers = m->config.text.num_layers + m->config.vision.num_layers;
    CHECK(tr.lora.n_pairs == 6 * n_layers, "%d pairs", tr.lora.n_pairs);
    cc_safetensors st;
    REQUIRE(cc_st_open(test_path("lora.safetensors"), &st) == 0, "%s", cc_last_error());
    REQUIRE(cc_lora_load(&tr.lora, &st, "lora.safetensors") == 0, "%s", cc_last_error());
    cc_st_close(&st);
    cc_train_batch batch = {pixels.data, ids, eot, n};
    float loss;
    REQUIRE(cc_trainer_accumulate(&tr, &batch, &loss) == 0, "%s", cc_last_error());
    float ref = ((float *)ref_loss.data)[0];
    CHECK(fabsf(loss - ref) <= 1e-5f * fabsf(ref), "loss %.7g, reference %.7g", loss, ref);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < 2 * tr.lora.n_pairs; i++) {
        cc_tensor *p = i % 2 ? tr.lora.b[i / 2] : tr.lora.a[i / 2];
        char name[256];
        snprintf(name, sizeof name, "grad_%s.npy", p->name);
        cc_npy g;
        REQUIRE(cc_npy_read_f32(test_path(name), &g) == 0, "%s", cc_last_error());
        REQUIRE(g.count == cc_nelements(p) && p->grad_acc);
        double rel = test_rel_error(p->grad_acc->data, g.data, g.count);
        CHECK(rel <= 1e-4, "%s: relative error %.3g", p->name, rel);
        if (rel > worst) {
            worst = rel;
            worst_name = p->name;
        }
        cc_npy_free(&g);
    }
    printf("    %d LoRA tensors: loss %.7g vs %.7g; largest gradient error %.3g (%s)\n", 2 * tr.lora.n_pairs, loss, ref,
           worst, worst_name);
    for (int i = 0; i < m->n_params; i++) CHECK(m->params[i]->grad_acc == NULL, "%s has a gradient buffer", m->params[i]->name);
    int64_t dim = m->config.projection_dim;
    float *img = malloc((size_t)(n * dim) * 4), *txt = malloc((size_t)(n * dim) * 4);
    REQUIRE(cc_trainer_image_features(&tr, pixels.data, n, img) == 0 && cc_trainer_text_features(&tr, ids, eot, n, txt) == 0,
            "%s", cc_last_error());
    CHECK_REL(img, (float *)ref_img.data, n * dim, 1e-5, "LoRA image features");
    CHECK_REL(txt, (float *)ref_txt.data, n * dim, 1e-5, "LoRA text features");
    /* merged: the plain model's embeddings are the LoRA model's */
    REQUIRE(cc_trainer_merge_adapters(&tr) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    REQUIRE(cc_clip_embed_images(m, pixels.data, n, img, 1) == 0, "%s", cc_last_error());
    CHECK_REL(img, (float *)ref_img.data, n * dim, 1e-5, "merged image features");
    free(img);
    free(txt);
    free(ids);
    free(eot);
    cc_npy_free(&pixels);
    cc_npy_free(&ref_loss);
    cc_npy_free(&ref_img);
    cc_npy_free(&ref_txt);
    cc_clip_free(m);
}

/* ---- without Python ---- */

static cc_clip_model *small_model(uint64_t seed) {
    cc_clip_config cfg = {
        .text = {.hidden_size = 24, .intermediate_size = 40, .num_layers = 2, .num_heads = 2, .act = CC_ACT_QUICK_GELU,
                 .layer_norm_eps = 1e-5f, .vocab_size = 60, .max_positions = 11, .eos_token_id = -1},
        .vision = {.hidden_size = 20, .intermediate_size = 36, .num_layers = 2, .num_heads = 2, .act = CC_ACT_GELU_ERF,
                   .layer_norm_eps = 1e-5f, .image_size = 12, .patch_size = 4, .num_channels = 3},
        .projection_dim = 16, .logit_scale_init = 2.6592f};
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    if (m && cc_clip_init_random(m, seed) != 0) {
        cc_clip_free(m);
        return NULL;
    }
    return m;
}

typedef struct {
    float *pixels;
    int32_t *ids, *eot;
    int64_t n;
} small_batch;

static void random_batch(cc_rng *rng, const cc_clip_model *m, int64_t n, small_batch *b) {
    int64_t pixel_count = 3 * 12 * 12, context = m->config.text.max_positions;
    b->n = n;
    b->pixels = malloc((size_t)(n * pixel_count) * 4);
    b->ids = calloc((size_t)(n * context), 4);
    b->eot = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n * pixel_count; i++) b->pixels[i] = cc_rng_normal(rng);
    for (int64_t i = 0; i < n; i++) {
        b->eot[i] = 1 + (int32_t)cc_rng_below(rng, (uint64_t)(context - 1));
        for (int32_t t = 0; t < b->eot[i]; t++) b->ids[i * context + t] = (int32_t)cc_rng_below(rng, 58);
        b->ids[i * context + b->eot[i]] = 59;
    }
}

static void free_batch(small_batch *b) {
    free(b->pixels);
    free(b->ids);
    free(b->eot);
}

static float *copy_params(const cc_clip_model *m, int64_t *count_out) {
    int64_t count = 0;
    for (int i = 0; i < m->n_params; i++) count += cc_nelements(m->params[i]);
    float *all = malloc((size_t)count * 4), *at = all;
    for (int i = 0; i < m->n_params; i++) {
        memcpy(at, m->params[i]->data, (size_t)cc_nelements(m->params[i]) * 4);
        at += cc_nelements(m->params[i]);
    }
    *count_out = count;
    return all;
}

/* Step 0 is the base model bit for bit; training moves only the pairs (no gradient buffer or
 * moment for a base weight); the trainable count is the pairs' size. */
TEST(lora_step0_is_the_base_model_and_base_weights_stay) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_clip_model *m = small_model(test_seed() + 3);
    REQUIRE(m, "%s", cc_last_error());
    small_batch b;
    random_batch(&rng, m, 6, &b);
    cc_train_batch batch = {b.pixels, b.ids, b.eot, b.n};
    int64_t dim = m->config.projection_dim;
    float *base_img = malloc((size_t)(6 * dim) * 4), *base_txt = malloc((size_t)(6 * dim) * 4);
    float *img = malloc((size_t)(6 * dim) * 4), *txt = malloc((size_t)(6 * dim) * 4);
    float base_loss, loss;
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.lock_image = cfg.lock_text = 1;
    cfg.adapter = 1; /* a trainer whose graphs have no LoRA, for the base features */
    cc_trainer tr;
    REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    REQUIRE(cc_trainer_image_features(&tr, b.pixels, 6, base_img) == 0 && cc_trainer_text_features(&tr, b.ids, b.eot, 6, base_txt) == 0 &&
            cc_trainer_loss(&tr, &batch, &base_loss) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    int64_t n_base;
    float *before = copy_params(m, &n_base);
    cc_trainer_config_default(&cfg);
    cfg.adamw.lr = 1e-2f;
    cfg.adamw.total_steps = 3;
    cfg.lora = (cc_lora_config){.rank = 3, .alpha = 6.0f, .targets = ALL_TARGETS, .seed = test_seed()};
    REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    REQUIRE(cc_trainer_image_features(&tr, b.pixels, 6, img) == 0 && cc_trainer_text_features(&tr, b.ids, b.eot, 6, txt) == 0 &&
            cc_trainer_loss(&tr, &batch, &loss) == 0, "%s", cc_last_error());
    CHECK(memcmp(img, base_img, (size_t)(6 * dim) * 4) == 0, "step 0 image features differ from the base model's");
    CHECK(memcmp(txt, base_txt, (size_t)(6 * dim) * 4) == 0, "step 0 text features differ from the base model's");
    CHECK(loss == base_loss, "step 0 loss %.9g, base %.9g", loss, base_loss);
    /* rank 3 on 6 matrices per layer, 2 layers per tower: A [3, in] + B [out, 3] */
    const cc_clip_tower_config *t = &m->config.text, *v = &m->config.vision;
    int64_t per_text = 3 * (4 * (t->hidden_size + t->hidden_size) + 2 * (t->hidden_size + t->intermediate_size));
    int64_t per_vision = 3 * (4 * (v->hidden_size + v->hidden_size) + 2 * (v->hidden_size + v->intermediate_size));
    CHECK(tr.n_trainable == 2 * per_text + 2 * per_vision, "%lld trainable", (long long)tr.n_trainable);
    CHECK(tr.n_frozen == n_base, "%lld frozen of %lld", (long long)tr.n_frozen, (long long)n_base);
    CHECK(cc_trainer_moment_bytes(&tr) == (size_t)(2 * 4 * tr.n_trainable));
    CHECK(cc_trainer_gradient_bytes(&tr) == (size_t)(4 * tr.n_trainable));
    for (int i = 0; i < m->n_params; i++) CHECK(m->params[i]->grad_acc == NULL, "%s has a gradient buffer", m->params[i]->name);
    CHECK(tr.opt.n_params == 2 * tr.lora.n_pairs, "the optimizer holds %d tensors", tr.opt.n_params);
    float first = 0;
    for (int step = 0; step < 3; step++) {
        REQUIRE(cc_trainer_accumulate(&tr, &batch, &loss) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0, "%s",
                cc_last_error());
        if (step == 0) first = loss;
    }
    REQUIRE(cc_trainer_loss(&tr, &batch, &loss) == 0, "%s", cc_last_error());
    CHECK(loss < first, "loss %g after 3 steps, %g before", loss, first);
    int64_t n_after;
    float *after = copy_params(m, &n_after);
    CHECK(n_after == n_base && memcmp(after, before, (size_t)n_base * 4) == 0, "a base weight moved");
    double b_norm = 0;
    for (int64_t j = 0; j < cc_nelements(tr.lora.b[0]); j++) b_norm += fabs(((float *)tr.lora.b[0]->data)[j]);
    CHECK(b_norm > 0, "B still zero after training");
    /* merging: the plain model gives the LoRA model's features */
    REQUIRE(cc_trainer_image_features(&tr, b.pixels, 6, img) == 0 && cc_trainer_text_features(&tr, b.ids, b.eot, 6, txt) == 0,
            "%s", cc_last_error());
    REQUIRE(cc_trainer_merge_adapters(&tr) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    for (int i = 0; i < m->config.text.num_layers; i++) CHECK(m->text_layers[i].lora_a[0] == NULL, "pairs detached");
    REQUIRE(cc_clip_embed_images(m, b.pixels, 6, base_img, 1) == 0 && cc_clip_embed_texts(m, b.ids, b.eot, 6, base_txt, 1) == 0,
            "%s", cc_last_error());
    CHECK_REL(base_img, img, 6 * dim, 1e-5, "merged image features");
    CHECK_REL(base_txt, txt, 6 * dim, 1e-5, "merged text features");
    free(before);
    free(after);
    free(base_img);
    free(base_txt);
    free(img);
    free(txt);
    free_batch(&b);
    cc_clip_free(m);
}

/* --lock-image: pairs on the text tower only; a checkpoint carries them and their moments, and a
 * trainer restored from it takes the same next step. */
TEST(lora_one_tower_and_checkpoint_restore) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_clip_model *m = small_model(test_seed() + 5);
    REQUIRE(m, "%s", cc_last_error());
    small_batch b;
    random_batch(&rng, m, 4, &b);
    cc_train_batch batch = {b.pixels, b.ids, b.eot, b.n};
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.adamw.lr = 1e-2f;
    cfg.adamw.total_steps = 4;
    cfg.lock_image = 1;
    cfg.lora = (cc_lora_config){.rank = 2, .alpha = 4.0f, .targets = CC_LORA_DEFAULT_TARGETS, .seed = 9};
    cc_trainer tr;
    REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    CHECK(tr.lora.n_pairs == 2 * m->config.text.num_layers);
    for (int i = 0; i < m->config.vision.num_layers; i++) CHECK(m->vision_layers[i].lora_a[CC_LORA_Q] == NULL);
    CHECK(m->text_layers[0].lora_a[CC_LORA_K] == NULL && m->text_layers[0].lora_a[CC_LORA_V] != NULL);
    CHECK(!strcmp(tr.lora.a[0]->name, "base_model.model.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"),
          "%s", tr.lora.a[0]->name);
    CHECK(!strcmp(tr.lora.b[1]->name, "base_model.model.text_model.encoder.layers.0.self_attn.v_proj.lora_B.weight"),
          "%s", tr.lora.b[1]->name);
    float loss, next_loss, restored_loss;
    for (int step = 0; step < 2; step++)
        REQUIRE(cc_trainer_accumulate(&tr, &batch, &loss) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0, "%s",
                cc_last_error());
    cc_train_state state = {.step = 2};
    REQUIRE(cc_checkpoint_save(test_path("ckpt.safetensors"), &tr, &state) == 0, "%s", cc_last_error());
    REQUIRE(cc_trainer_accumulate(&tr, &batch, &next_loss) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0 &&
            cc_trainer_loss(&tr, &batch, &next_loss) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    cc_lora_config saved;
    REQUIRE(cc_checkpoint_lora_config(test_path("ckpt.safetensors"), &saved) == 0, "%s", cc_last_error());
    CHECK(saved.rank == 2 && saved.alpha == 4.0f && saved.targets == CC_LORA_DEFAULT_TARGETS && saved.text && !saved.vision);
    cc_clip_model *m2 = cc_checkpoint_load_model(test_path("ckpt.safetensors"), NULL, NULL, NULL, NULL);
    REQUIRE(m2, "%s", cc_last_error());
    cfg.lora.seed = 12345; /* the restored pairs replace the initialisation */
    REQUIRE(cc_trainer_init(&tr, m2, &cfg) == 0 && cc_checkpoint_restore_trainer(test_path("ckpt.safetensors"), &tr) == 0,
            "%s", cc_last_error());
    CHECK(tr.opt.step == 2);
    REQUIRE(cc_trainer_accumulate(&tr, &batch, &restored_loss) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0 &&
            cc_trainer_loss(&tr, &batch, &restored_loss) == 0, "%s", cc_last_error());
    CHECK(restored_loss == next_loss, "resumed %.9g, straight %.9g", restored_loss, next_loss);
    cc_trainer_free(&tr);
    /* export's merge from the checkpoint file equals the trainer's merge */
    cc_clip_model *m3 = cc_checkpoint_load_model(test_path("ckpt.safetensors"), NULL, NULL, NULL, NULL);
    REQUIRE(m3 && cc_checkpoint_merge_lora(test_path("ckpt.safetensors"), m3) == 0, "%s", cc_last_error());
    cc_clip_model *m4 = cc_checkpoint_load_model(test_path("ckpt.safetensors"), NULL, NULL, NULL, NULL);
    REQUIRE(m4, "%s", cc_last_error());
    REQUIRE(cc_trainer_init(&tr, m4, &cfg) == 0 && cc_checkpoint_restore_trainer(test_path("ckpt.safetensors"), &tr) == 0 &&
            cc_trainer_merge_adapters(&tr) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    int64_t n3, n4;
    float *p3 = copy_params(m3, &n3), *p4 = copy_params(m4, &n4);
    CHECK(n3 == n4 && memcmp(p3, p4, (size_t)n3 * 4) == 0, "export's merge differs from the trainer's");
    free(p3);
    free(p4);
    cc_clip_free(m4);
    cc_clip_free(m3);
    cc_clip_free(m2);
    free_batch(&b);
    cc_clip_free(m);
}

TEST(lora_bad_settings_are_errors) {
    cc_clip_model *m = small_model(1);
    REQUIRE(m, "%s", cc_last_error());
    unsigned targets;
    CHECK(cc_lora_parse_targets("qkv,out,mlp", &targets) == 0 && targets == ALL_TARGETS);
    CHECK(cc_lora_parse_targets("q_proj,v_proj", &targets) == 0 && targets == CC_LORA_DEFAULT_TARGETS);
    CHECK(cc_lora_parse_targets("q,attn", &targets) != 0 && strstr(cc_last_error(), "'attn'"), "%s", cc_last_error());
    CHECK(cc_lora_parse_targets("", &targets) != 0);
    char text[128];
    cc_lora_targets_str(ALL_TARGETS, text, sizeof text);
    CHECK(!strcmp(text, "q_proj,k_proj,v_proj,out_proj,fc1,fc2"), "%s", text);
    cc_trainer_config cfg;
    cc_trainer tr;
    cc_trainer_config_default(&cfg);
    cfg.lora = (cc_lora_config){.rank = 21, .alpha = 1, .targets = CC_LORA_DEFAULT_TARGETS};
    /* the vision tower is 20 wide: rank 21 is too large for its q_proj */
    CHECK(cc_trainer_init(&tr, m, &cfg) != 0 && strstr(cc_last_error(), "vision tower's q_proj [20, 20]"), "%s", cc_last_error());
    cc_trainer_free(&tr);
    cfg.lock_image = 1; /* the text tower is 24 wide */
    CHECK(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    cc_trainer_free(&tr);
    cfg.lock_text = 1;
    CHECK(cc_trainer_init(&tr, m, &cfg) != 0 && strstr(cc_last_error(), "locked"), "%s", cc_last_error());
    cc_trainer_free(&tr);
    cc_trainer_config_default(&cfg);
    cfg.adapter = 1;
    cfg.lora = (cc_lora_config){.rank = 2, .alpha = 2, .targets = CC_LORA_DEFAULT_TARGETS};
    CHECK(cc_trainer_init(&tr, m, &cfg) != 0 && strstr(cc_last_error(), "--adapter"), "%s", cc_last_error());
    cc_trainer_free(&tr);
    cc_lora lora;
    cc_lora_config lc = {.rank = 2, .alpha = 0, .targets = CC_LORA_DEFAULT_TARGETS, .text = 1};
    CHECK(cc_lora_attach(&lora, m, &lc) != 0 && strstr(cc_last_error(), "alpha"), "%s", cc_last_error());
    CHECK(cc_lora_config_parse("{\"r\": 0}", &lc) != 0);
    cc_clip_free(m);
}

/* The pairs' gradients are the same with open_clip accumulation (K = 2 micro-batches) and with
 * recomputed blocks (--checkpoint-activations) as in one plain pass. */
TEST(lora_accumulation_and_recompute_same_gradients) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    cc_clip_model *m = small_model(test_seed() + 7);
    REQUIRE(m, "%s", cc_last_error());
    small_batch b;
    random_batch(&rng, m, 6, &b);
    cc_train_batch batch = {b.pixels, b.ids, b.eot, b.n};
    float *reference = NULL;
    int64_t total = 0;
    for (int variant = 0; variant < 3; variant++) {
        cc_trainer_config cfg;
        cc_trainer_config_default(&cfg);
        cfg.lora = (cc_lora_config){.rank = 2, .alpha = 3.0f, .targets = ALL_TARGETS, .seed = 4};
        cfg.accum_freq = variant == 1 ? 2 : 1;
        cfg.checkpoint_activations = variant == 2;
        cc_trainer tr;
        REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
        cc_rng_seed(&rng, test_seed() + 100); /* the same non-zero B every time, so that A has a gradient */
        for (int i = 0; i < tr.lora.n_pairs; i++)
            for (int64_t j = 0; j < cc_nelements(tr.lora.b[i]); j++) ((float *)tr.lora.b[i]->data)[j] = 0.3f * cc_rng_normal(&rng);
        float loss;
        REQUIRE(cc_trainer_accumulate(&tr, &batch, &loss) == 0, "%s", cc_last_error());
        int64_t count = 0;
        for (int i = 0; i < tr.opt.n_params; i++) count += cc_nelements(tr.opt.params[i]);
        float *grads = malloc((size_t)count * 4), *at = grads;
        for (int i = 0; i < tr.opt.n_params; i++) {
            memcpy(at, tr.opt.params[i]->grad_acc->data, (size_t)cc_nelements(tr.opt.params[i]) * 4);
            at += cc_nelements(tr.opt.params[i]);
        }
        if (variant == 0) {
            reference = grads;
            total = count;
        } else {
            REQUIRE(count == total);
            CHECK_REL(grads, reference, total, 1e-5, variant == 1 ? "accum-freq 2" : "checkpoint-activations");
            free(grads);
        }
        cc_trainer_free(&tr);
    }
    free(reference);
    free_batch(&b);
    cc_clip_free(m);
}
