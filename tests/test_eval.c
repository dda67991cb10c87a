/* test_eval.c — recall@K (COCO protocol) against a sort-based brute force, and checkpoint round trips. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "tests/test.h"
#include "train/checkpoint.h"
#include "train/eval.h"
#include "train/trainer.h"

typedef struct {
    float score;
    int64_t index;
} scored;

static int by_score_desc(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

static float dot(const float *a, const float *b, int64_t dim) {
    double s = 0;
    for (int64_t d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return (float)s;
}

/* Full sort per query; first position of a true match (ties broken by the sort: avoided by data). */
static void brute_recall(const float *img, int64_t ni, const float *txt, int64_t nt, int64_t dim, const int64_t *map,
                         cc_recall *out) {
    const int ks[3] = {1, 5, 10};
    scored *list = malloc((size_t)(ni > nt ? ni : nt) * sizeof *list);
    int64_t hits_i2t[3] = {0}, hits_t2i[3] = {0}, with_caption = 0;
    for (int64_t i = 0; i < ni; i++) {
        for (int64_t t = 0; t < nt; t++) list[t] = (scored){dot(img + i * dim, txt + t * dim, dim), t};
        qsort(list, (size_t)nt, sizeof *list, by_score_desc);
        int64_t first = -1;
        for (int64_t r = 0; r < nt && first < 0; r++)
            if (map[list[r].index] == i) first = r;
        if (first < 0) continue;
        with_caption++;
        for (int k = 0; k < 3; k++) hits_i2t[k] += first < ks[k];
    }
    for (int64_t t = 0; t < nt; t++) {
        for (int64_t i = 0; i < ni; i++) list[i] = (scored){dot(img + i * dim, txt + t * dim, dim), i};
        qsort(list, (size_t)ni, sizeof *list, by_score_desc);
        int64_t rank = 0;
        while (list[rank].index != map[t]) rank++;
        for (int k = 0; k < 3; k++) hits_t2i[k] += rank < ks[k];
    }
    for (int k = 0; k < 3; k++) {
        out->image_to_text[k] = (double)hits_i2t[k] / (double)with_caption;
        out->text_to_image[k] = (double)hits_t2i[k] / (double)nt;
    }
    free(list);
}

TEST(recall_matches_brute_force) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int64_t ni = 97, per = 3, nt = 0, dim = 24;
    int64_t *map = malloc((size_t)(ni * per) * sizeof(int64_t));
    float *img = malloc((size_t)(ni * dim) * 4), *txt = malloc((size_t)(ni * per * dim) * 4);
    for (int64_t i = 0; i < ni * dim; i++) img[i] = cc_rng_normal(&rng);
    for (int64_t i = 0; i < ni; i++) {
        int64_t captions = (int64_t)cc_rng_below(&rng, (uint64_t)per + 1); /* 0..3 captions: some images have none */
        for (int64_t c = 0; c < captions; c++, nt++) {
            map[nt] = i;
            for (int64_t d = 0; d < dim; d++) txt[nt * dim + d] = img[i * dim + d] + 1.5f * cc_rng_normal(&rng);
        }
    }
    cc_recall got, want;
    REQUIRE(cc_retrieval_recall(img, ni, txt, nt, dim, map, &got) == 0, "%s", cc_last_error());
    brute_recall(img, ni, txt, nt, dim, map, &want);
    for (int k = 0; k < 3; k++) {
        CHECK(fabs(got.image_to_text[k] - want.image_to_text[k]) < 1e-12, "i2t R@%d: %g vs %g", k, got.image_to_text[k],
              want.image_to_text[k]);
        CHECK(fabs(got.text_to_image[k] - want.text_to_image[k]) < 1e-12, "t2i R@%d: %g vs %g", k, got.text_to_image[k],
              want.text_to_image[k]);
    }
    CHECK(got.image_to_text[0] > 0.05 && got.image_to_text[2] <= 1.0, "the data should be partly retrievable");
    int64_t bad_map[1] = {ni};
    CHECK(cc_retrieval_recall(img, ni, txt, 1, dim, bad_map, &got) != 0);
    free(map);
    free(img);
    free(txt);
}

/* The CLIP_benchmark convention on a hand-made case: 4 images (the unit vectors, so that a caption's
 * vector is its column of the similarity matrix), 7 captions: image 0 has t0, t1; image 1 t2, t3, t4;
 * image 2 t5; image 3 t6. Ties count for the true match (exact in float: the scores are the entries).
 *
 *        t0   t1   t2   t3   t4   t5   t6
 *   i0   .9   .2   .1   .3   0    .4   0
 *   i1   .8   .1   .5   .2   .7   0    .1
 *   i2   .1   .6   .3   .1   .2   .3   .2
 *   i3   .3   .2   .6   .1   .1   .9   .05
 *
 * text→image, per caption, images strictly above its own: t0 0, t1 1 (i2; i3 ties), t2 1, t3 1, t4 0,
 * t5 2, t6 2: R@1 = 2/7, R@5 = R@10 = 1.
 * image→text, captions strictly above the image's best own caption: i0 0 (t0), i1 1 (t4 .7 < t0 .8),
 * i2 1 (t5 .3: t1 above, t2 ties), i3 6 (t6 .05): R@1 = 1/4, R@5 = 3/4, R@10 = 1. */
TEST(recall_clip_benchmark_convention_hand_computed) {
    static const float sim[4][7] = {{.9f, .2f, .1f, .3f, 0, .4f, 0},
                                    {.8f, .1f, .5f, .2f, .7f, 0, .1f},
                                    {.1f, .6f, .3f, .1f, .2f, .3f, .2f},
                                    {.3f, .2f, .6f, .1f, .1f, .9f, .05f}};
    float img[4 * 4] = {0}, txt[7 * 4];
    for (int i = 0; i < 4; i++) img[i * 4 + i] = 1;
    for (int t = 0; t < 7; t++)
        for (int i = 0; i < 4; i++) txt[t * 4 + i] = sim[i][t];
    const int64_t image_of[7] = {0, 0, 1, 1, 1, 2, 3};
    cc_recall r;
    REQUIRE(cc_retrieval_recall(img, 4, txt, 7, 4, image_of, &r) == 0, "%s", cc_last_error());
    const double t2i[3] = {2.0 / 7, 1, 1}, i2t[3] = {0.25, 0.75, 1};
    for (int k = 0; k < 3; k++) {
        CHECK(fabs(r.text_to_image[k] - t2i[k]) < 1e-12, "t2i R@%d: %g, expected %g", (int[]){1, 5, 10}[k],
              r.text_to_image[k], t2i[k]);
        CHECK(fabs(r.image_to_text[k] - i2t[k]) < 1e-12, "i2t R@%d: %g, expected %g", (int[]){1, 5, 10}[k],
              r.image_to_text[k], i2t[k]);
    }
    CHECK(r.n_images == 4 && r.n_texts == 7);
}

static cc_clip_model *tiny_model(uint64_t seed) {
    cc_clip_config cfg = {
        .text = {.hidden_size = 16, .intermediate_size = 24, .num_layers = 1, .num_heads = 2, .act = CC_ACT_QUICK_GELU,
                 .layer_norm_eps = 1e-5f, .vocab_size = 30, .max_positions = 8, .eos_token_id = -1},
        .vision = {.hidden_size = 16, .intermediate_size = 24, .num_layers = 1, .num_heads = 2, .act = CC_ACT_QUICK_GELU,
                   .layer_norm_eps = 1e-5f, .image_size = 8, .patch_size = 4, .num_channels = 3},
        .projection_dim = 8, .logit_scale_init = 2.6592f};
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    if (m && cc_clip_init_random(m, seed) != 0) {
        cc_clip_free(m);
        return NULL;
    }
    return m;
}

/* Two steps, save, two more steps; versus: two steps, save, load into a fresh trainer, two steps.
 * The losses and the final weights must be identical. */
TEST(checkpoint_resume_continues_identically) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int64_t n = 4, pixel_count = 3 * 8 * 8, context = 8;
    float *pixels = malloc((size_t)(n * pixel_count) * 4);
    int32_t ids[4 * 8] = {0}, eot[4];
    for (int64_t i = 0; i < n * pixel_count; i++) pixels[i] = cc_rng_normal(&rng);
    for (int64_t i = 0; i < n; i++) {
        eot[i] = 2 + (int32_t)cc_rng_below(&rng, 5);
        for (int32_t t = 0; t < eot[i]; t++) ids[i * context + t] = (int32_t)cc_rng_below(&rng, 29);
        ids[i * context + eot[i]] = 29;
    }
    cc_train_batch batch = {pixels, ids, eot, n};
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.adamw.lr = 1e-2f;
    cfg.adamw.warmup_steps = 1;
    cfg.adamw.total_steps = 4;
    float straight[4], resumed[4];
    /* straight run, with a checkpoint after two steps */
    cc_clip_model *m = tiny_model(test_seed());
    cc_trainer tr;
    REQUIRE(m && cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    cc_train_state state = {.seed = 5, .epoch = 1, .batch_in_epoch = 2};
    snprintf(state.tokenizer_dir, sizeof state.tokenizer_dir, "tok");
    for (int step = 0; step < 4; step++) {
        REQUIRE(cc_trainer_accumulate(&tr, &batch, &straight[step]) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0);
        if (step == 1) {
            state.step = 2;
            REQUIRE(cc_checkpoint_save(test_path("ckpt.safetensors"), &tr, &state) == 0, "%s", cc_last_error());
        }
    }
    float final_weight = ((float *)m->visual_projection->data)[3];
    cc_trainer_free(&tr);
    cc_clip_free(m);
    /* resumed run */
    cc_train_state loaded;
    m = cc_checkpoint_load_model(test_path("ckpt.safetensors"), NULL, &loaded, NULL, NULL);
    REQUIRE(m, "%s", cc_last_error());
    CHECK(loaded.step == 2 && loaded.epoch == 1 && loaded.batch_in_epoch == 2 && loaded.seed == 5);
    CHECK(strcmp(loaded.tokenizer_dir, "tok") == 0);
    REQUIRE(cc_trainer_init(&tr, m, &cfg) == 0, "%s", cc_last_error());
    REQUIRE(cc_checkpoint_restore_trainer(test_path("ckpt.safetensors"), &tr) == 0, "%s", cc_last_error());
    CHECK(tr.opt.step == 2);
    for (int step = 2; step < 4; step++)
        REQUIRE(cc_trainer_accumulate(&tr, &batch, &resumed[step]) == 0 && cc_trainer_apply(&tr, 1.0f, NULL) == 0);
    for (int step = 2; step < 4; step++) CHECK(resumed[step] == straight[step], "step %d: %.9g vs %.9g", step, resumed[step], straight[step]);
    CHECK(((float *)m->visual_projection->data)[3] == final_weight);
    cc_trainer_free(&tr);
    cc_clip_free(m);
    /* not a checkpoint */
    CHECK(cc_checkpoint_load_model(test_path("missing.safetensors"), NULL, NULL, NULL, NULL) == NULL);
    free(pixels);
}

#include "data/image.h"
#include "train/plot.h"

TEST(plot_renders_series_and_writes_png) {
    double x[5] = {0, 10, 20, 30, 40}, y[5] = {4.1, 3.2, 2.5, 2.2, 2.0}, y2[5] = {0.01, 0.1, 0.3, 0.45, 0.5};
    cc_plot_panel panels[2] = {
        {.title = "loss", .x_label = "step", .n_series = 1, .series = {{"train", x, y, 5, {200, 10, 10}}}},
        {.title = "recall", .x_label = "step", .n_series = 1, .series = {{"R@1", x, y2, 5, {10, 10, 200}}}},
    };
    int width, height;
    uint8_t *rgb = cc_plot_render(panels, 2, 300, 200, &width, &height);
    REQUIRE(rgb && width == 600 && height == 200);
    int64_t red = 0, blue = 0;
    for (int64_t i = 0; i < (int64_t)width * height; i++) {
        red += rgb[3 * i] == 200 && rgb[3 * i + 1] == 10;
        blue += rgb[3 * i + 2] == 200 && rgb[3 * i] == 10;
    }
    CHECK(red > 100 && blue > 100, "series drawn: %lld red, %lld blue pixels", (long long)red, (long long)blue);
    REQUIRE(cc_image_write_png(test_path("curves.png"), rgb, width, height, 3) == 0, "%s", cc_last_error());
    cc_image img;
    REQUIRE(cc_image_load(test_path("curves.png"), &img) == 0, "%s", cc_last_error());
    CHECK(img.width == width && img.height == height);
    cc_image_free(&img);
    free(rgb);
}
