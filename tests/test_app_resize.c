/* test_app_resize.c — engine/clip_resize.c: bicubic position-embedding interpolation against torch's
 * F.interpolate, a resized model's image features against the PyTorch reference at the new size, and
 * the properties a multi-scale caller relies on (weights shared, same size = same features, bad sizes
 * refused). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/clip.h"
#include "engine/util.h"
#include "tests/test.h"

static void fill_random(cc_rng *rng, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = cc_rng_normal(rng);
}

/* One grid size pair against torch: upsampling, downsampling and a non-square case. */
static void check_interp_against_torch(cc_rng *rng, int in_h, int in_w, int channels, int out_h, int out_w) {
    int64_t n_in = (int64_t)in_h * in_w * channels, n_out = (int64_t)out_h * out_w * channels;
    float *grid = malloc((size_t)n_in * 4), *ours = malloc((size_t)n_out * 4);
    fill_random(rng, grid, n_in);
    REQUIRE(cc_npy_write_f32(test_path("grid.npy"), 3, (int64_t[]){in_h, in_w, channels}, grid) == 0);
    REQUIRE(cc_bicubic_resize_rows(grid, in_h, in_w, channels, out_h, out_w, ours) == 0, "%s", cc_last_error());
    char h[16], w[16];
    snprintf(h, sizeof h, "%d", out_h);
    snprintf(w, sizeof w, "%d", out_w);
    REQUIRE(test_python("app_resize_ref.py", "interp", test_path("grid.npy"), h, w, test_path("ref.npy"), NULL) == 0);
    cc_npy ref;
    REQUIRE(cc_npy_read_f32(test_path("ref.npy"), &ref) == 0);
    REQUIRE(ref.count == n_out);
    char what[96];
    snprintf(what, sizeof what, "bicubic %dx%d -> %dx%d", in_h, in_w, out_h, out_w);
    CHECK_REL(ours, (float *)ref.data, n_out, 1e-6, what);
    cc_npy_free(&ref);
    free(grid);
    free(ours);
}

TEST_SLOW(app_resize_bicubic_matches_torch) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    check_interp_against_torch(&rng, 7, 7, 5, 10, 10);  /* ViT-B/32 224 -> 320 shape of grid */
    check_interp_against_torch(&rng, 9, 9, 4, 4, 4);    /* downsampling */
    check_interp_against_torch(&rng, 5, 8, 2, 11, 3);   /* non-square, mixed */
    check_interp_against_torch(&rng, 1, 1, 2, 3, 3);    /* a single sample spreads everywhere */
}

TEST(app_resize_same_size_is_identity) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int grid = 6, width = 9;
    int64_t n = (int64_t)(grid * grid + 1) * width;
    float *pos = malloc((size_t)n * 4), *out = malloc((size_t)n * 4);
    fill_random(&rng, pos, n);
    REQUIRE(cc_clip_interpolate_positions(pos, grid, width, grid, out) == 0);
    CHECK(memcmp(pos, out, (size_t)n * 4) == 0, "same-size interpolation changed values");
    /* a constant field stays constant at any size (the weights of each tap sum to 1) */
    for (int64_t i = width; i < n; i++) pos[i] = 0.75f;
    int new_grid = 11;
    float *big = malloc((size_t)(new_grid * new_grid + 1) * width * 4);
    REQUIRE(cc_clip_interpolate_positions(pos, grid, width, new_grid, big) == 0);
    double worst = 0;
    for (int64_t i = width; i < (int64_t)(new_grid * new_grid + 1) * width; i++) worst = fmax(worst, fabs(big[i] - 0.75));
    CHECK(worst < 1e-6, "constant field drifted by %g", worst);
    CHECK(memcmp(big, pos, (size_t)width * 4) == 0, "class row changed");
    free(pos);
    free(out);
    free(big);
}

/* A small random model built in memory (no files, no Python). */
static cc_clip_model *small_model(uint64_t seed) {
    cc_clip_config cfg;
    if (cc_clip_config_builtin("tiny", &cfg) != 0) return NULL;
    cfg.text.vocab_size = 300;
    cc_clip_tower_config *towers[2] = {&cfg.text, &cfg.vision};
    for (int t = 0; t < 2; t++) {
        towers[t]->hidden_size = 32;
        towers[t]->intermediate_size = 64;
        towers[t]->num_layers = 2;
        towers[t]->num_heads = 2;
    }
    cfg.vision.image_size = 32;
    cfg.projection_dim = 16;
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    if (m && cc_clip_init_random(m, seed) != 0) {
        cc_clip_free(m);
        return NULL;
    }
    return m;
}

TEST(app_resize_model_shares_weights) {
    cc_clip_model *m = small_model(test_seed());
    REQUIRE(m, "%s", cc_last_error());
    int size = m->config.vision.image_size, patch = m->config.vision.patch_size, dim = m->config.projection_dim;
    cc_rng rng;
    cc_rng_seed(&rng, test_seed() + 1);
    /* same size: identical features to the original */
    int64_t n_px = 2LL * 3 * size * size;
    float *px = malloc((size_t)n_px * 4), *a = malloc((size_t)2 * dim * 4), *b = malloc((size_t)2 * dim * 4);
    fill_random(&rng, px, n_px);
    cc_clip_model *same = cc_clip_resized(m, size);
    REQUIRE(same, "%s", cc_last_error());
    CHECK(same->patch_embedding == m->patch_embedding && same->text_layers[0].q_w == m->text_layers[0].q_w);
    CHECK(same->vision_position_embedding != m->vision_position_embedding);
    REQUIRE(cc_clip_embed_images(m, px, 2, a, 1) == 0, "%s", cc_last_error());
    REQUIRE(cc_clip_embed_images(same, px, 2, b, 1) == 0, "%s", cc_last_error());
    CHECK_REL(b, a, 2 * dim, 1e-6, "same-size resized model");
    cc_clip_resized_free(same);
    /* larger size: runs, unit-norm features, the original is untouched afterwards */
    int big = size + 2 * patch;
    cc_clip_model *r = cc_clip_resized(m, big);
    REQUIRE(r, "%s", cc_last_error());
    CHECK(r->config.vision.image_size == big && m->config.vision.image_size == size);
    CHECK(r->vision_position_embedding->shape[0] == (int64_t)(big / patch) * (big / patch) + 1);
    float *px_big = malloc((size_t)3 * big * big * 4);
    fill_random(&rng, px_big, 3LL * big * big);
    REQUIRE(cc_clip_embed_images(r, px_big, 1, b, 1) == 0, "%s", cc_last_error());
    double norm = 0;
    for (int i = 0; i < dim; i++) norm += (double)b[i] * b[i];
    CHECK(fabs(norm - 1) < 1e-5, "norm %g", norm);
    /* the original still gives the same features */
    REQUIRE(cc_clip_embed_images(m, px, 2, b, 1) == 0, "%s", cc_last_error());
    CHECK_REL(b, a, 2 * dim, 1e-6, "original after resizing");
    cc_clip_resized_free(r);
    /* sizes that are not a multiple of the patch, or absurd, are refused with a message */
    CHECK(cc_clip_resized(m, size + 1) == NULL && strstr(cc_last_error(), "multiple of the patch size"));
    CHECK(cc_clip_resized(m, 0) == NULL);
    CHECK(cc_clip_resized(m, 1 << 20) == NULL);
    free(px);
    free(px_big);
    free(a);
    free(b);
    cc_clip_free(m);
}

/* End to end: features of a resized model against the PyTorch model with the interpolated table. */
TEST_SLOW(app_resize_features_match_reference) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)(test_seed() % 1000000007ULL));
    REQUIRE(test_python("clip_ref.py", "make", test_tmpdir(), seed, "--dtypes", "f32", "--n-images", "1",
                        "--n-texts", "1", NULL) == 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/model_f32", test_tmpdir());
    cc_clip_model *m = cc_clip_load(dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    int patch = m->config.vision.patch_size, dim = m->config.projection_dim;
    int sizes[] = {m->config.vision.image_size + 2 * patch, m->config.vision.image_size - patch};
    cc_rng rng;
    cc_rng_seed(&rng, test_seed() + 7);
    for (int s = 0; s < 2; s++) {
        int size = sizes[s];
        int64_t n_px = 3LL * 3 * size * size;
        float *px = malloc((size_t)n_px * 4), *ours = malloc((size_t)3 * dim * 4);
        fill_random(&rng, px, n_px);
        REQUIRE(cc_npy_write_f32(test_path("px.npy"), 4, (int64_t[]){3, 3, size, size}, px) == 0);
        cc_clip_model *r = cc_clip_resized(m, size);
        REQUIRE(r, "%s", cc_last_error());
        REQUIRE(cc_clip_embed_images(r, px, 3, ours, 1) == 0, "%s", cc_last_error());
        char size_text[16];
        snprintf(size_text, sizeof size_text, "%d", size);
        REQUIRE(test_python("app_resize_ref.py", "embed", dir, size_text, test_path("px.npy"), test_path("ref.npy"),
                            NULL) == 0);
        cc_npy ref;
        REQUIRE(cc_npy_read_f32(test_path("ref.npy"), &ref) == 0 && ref.count == 3LL * dim);
        CHECK_REL(ours, (float *)ref.data, 3 * dim, 1e-4, size == sizes[0] ? "upscaled tower" : "downscaled tower");
        cc_npy_free(&ref);
        cc_clip_resized_free(r);
        free(px);
        free(ours);
    }
    cc_clip_free(m);
}
