/* test_clip.c — the CLIP model against the PyTorch reference (tests/reference/clip_ref.py),
 * safetensors validation, config errors, and weight export round trips. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/clip.h"
#include "kernels/gemm.h"
#include "engine/safetensors.h"
#include "engine/util.h"
#include "tests/test.h"

static double min_cosine(const float *a, const float *b, int64_t rows, int64_t width) {
    double worst = 1.0;
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0, na = 0, nb = 0;
        for (int64_t i = 0; i < width; i++) {
            dot += (double)a[r * width + i] * b[r * width + i];
            na += (double)a[r * width + i] * a[r * width + i];
            nb += (double)b[r * width + i] * b[r * width + i];
        }
        double cosine = dot / sqrt(na * nb);
        if (!(cosine >= worst)) worst = cosine;
    }
    return worst;
}

typedef struct {
    cc_npy pixels, ids, eot;
    int32_t *ids32, *eot32;
    int64_t n_images, n_texts, context;
} ref_inputs;

static int load_inputs(ref_inputs *in) {
    memset(in, 0, sizeof *in);
    if (cc_npy_read_f32(test_path("pixels.npy"), &in->pixels) || cc_npy_read_i64(test_path("ids.npy"), &in->ids) ||
        cc_npy_read_i64(test_path("eot.npy"), &in->eot))
        return -1;
    in->n_images = in->pixels.shape[0];
    in->n_texts = in->ids.shape[0];
    in->context = in->ids.shape[1];
    in->ids32 = malloc((size_t)in->ids.count * 4);
    in->eot32 = malloc((size_t)in->eot.count * 4);
    for (int64_t i = 0; i < in->ids.count; i++) in->ids32[i] = (int32_t)((int64_t *)in->ids.data)[i];
    for (int64_t i = 0; i < in->eot.count; i++) in->eot32[i] = (int32_t)((int64_t *)in->eot.data)[i];
    return 0;
}

static void free_inputs(ref_inputs *in) {
    cc_npy_free(&in->pixels);
    cc_npy_free(&in->ids);
    cc_npy_free(&in->eot);
    free(in->ids32);
    free(in->eot32);
}

/* Embeds the reference inputs with the model in dir and compares with <dtype>_*.npy. */
static void check_against_reference(const char *dtype, double min_cos, double logits_tol) {
    char dir[1024], name[256];
    snprintf(dir, sizeof dir, "%s/model_%s", test_tmpdir(), dtype);
    cc_clip_model *m = cc_clip_load(dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    ref_inputs in;
    REQUIRE(load_inputs(&in) == 0, "%s", cc_last_error());
    int64_t dim = m->config.projection_dim;
    float *img = malloc((size_t)(in.n_images * dim) * 4), *txt = malloc((size_t)(in.n_texts * dim) * 4);
    REQUIRE(cc_clip_embed_images(m, in.pixels.data, in.n_images, img, 1) == 0, "%s", cc_last_error());
    REQUIRE(cc_clip_embed_texts(m, in.ids32, in.eot32, in.n_texts, txt, 1) == 0, "%s", cc_last_error());
    cc_npy ref_img, ref_txt, ref_logits;
    snprintf(name, sizeof name, "%s_image_embeds.npy", dtype);
    REQUIRE(cc_npy_read_f32(test_path(name), &ref_img) == 0);
    snprintf(name, sizeof name, "%s_text_embeds.npy", dtype);
    REQUIRE(cc_npy_read_f32(test_path(name), &ref_txt) == 0);
    snprintf(name, sizeof name, "%s_logits.npy", dtype);
    REQUIRE(cc_npy_read_f32(test_path(name), &ref_logits) == 0);
    double cos_img = min_cosine(img, ref_img.data, in.n_images, dim);
    double cos_txt = min_cosine(txt, ref_txt.data, in.n_texts, dim);
    CHECK(cos_img >= min_cos, "%s image embeddings: worst cosine %.8f", dtype, cos_img);
    CHECK(cos_txt >= min_cos, "%s text embeddings: worst cosine %.8f", dtype, cos_txt);
    /* logits = exp(logit_scale) · img · txtᵀ */
    float scale = expf(((float *)m->logit_scale->data)[0]);
    float *logits = malloc((size_t)(in.n_images * in.n_texts) * 4);
    for (int64_t i = 0; i < in.n_images; i++)
        for (int64_t j = 0; j < in.n_texts; j++) {
            double dot = 0;
            for (int64_t d = 0; d < dim; d++) dot += (double)img[i * dim + d] * txt[j * dim + d];
            logits[i * in.n_texts + j] = (float)(scale * dot);
        }
    CHECK_REL(logits, (float *)ref_logits.data, in.n_images * in.n_texts, logits_tol, "logits");
    /* trimming the text tower to the longest caption changes nothing */
    float *full = malloc((size_t)(in.n_texts * dim) * 4);
    REQUIRE(cc_clip_embed_texts_full(m, in.ids32, in.eot32, in.n_texts, full, 1) == 0, "%s", cc_last_error());
    CHECK_REL(txt, full, in.n_texts * dim, 1e-6, "trimmed vs full-context text embeddings");
    /* short captions only: the trimmed graph is shorter and still equal */
    int32_t *short_eot = malloc((size_t)in.n_texts * 4);
    int64_t n_short = 0;
    for (int64_t i = 0; i < in.n_texts; i++)
        if (in.eot32[i] < in.context / 2) short_eot[n_short++] = (int32_t)i;
    if (n_short > 0) {
        int32_t *ids = malloc((size_t)(n_short * in.context) * 4), *eot = malloc((size_t)n_short * 4);
        for (int64_t i = 0; i < n_short; i++) {
            memcpy(ids + i * in.context, in.ids32 + short_eot[i] * in.context, (size_t)in.context * 4);
            eot[i] = in.eot32[short_eot[i]];
        }
        float *a = malloc((size_t)(n_short * dim) * 4), *b = malloc((size_t)(n_short * dim) * 4);
        REQUIRE(cc_clip_embed_texts(m, ids, eot, n_short, a, 1) == 0 &&
                cc_clip_embed_texts_full(m, ids, eot, n_short, b, 1) == 0, "%s", cc_last_error());
        CHECK_REL(a, b, n_short * dim, 1e-6, "short captions: trimmed vs full");
        free(ids);
        free(eot);
        free(a);
        free(b);
    }
    free(short_eot);
    free(full);
    free(logits);
    free(img);
    free(txt);
    cc_npy_free(&ref_img);
    cc_npy_free(&ref_txt);
    cc_npy_free(&ref_logits);
    free_inputs(&in);
    cc_clip_free(m);
}

TEST_SLOW(clip_embeddings_match_pytorch_reference_f32_and_bf16) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    REQUIRE(test_python("clip_ref.py", "make", test_tmpdir(), seed, NULL) == 0);
    check_against_reference("f32", 0.99999, 1e-4);
    check_against_reference("bf16", 0.99999, 1e-4);
}

TEST_SLOW(clip_export_round_trips_through_the_reference_loader) {
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    REQUIRE(test_python("clip_ref.py", "make", test_tmpdir(), seed, "--dtypes", "f32", NULL) == 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/model_f32", test_tmpdir());
    cc_clip_model *m = cc_clip_load(dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    /* export as bf16 into a new directory; the reference reads it and must agree with clipc on it */
    char out_dir[1024], path[1200];
    snprintf(out_dir, sizeof out_dir, "%s/exported", test_tmpdir());
    REQUIRE(cc_mkdir_p(out_dir) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    REQUIRE(cc_clip_save_weights(m, path, CC_BF16) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    REQUIRE(cc_clip_config_save(&m->config, path) == 0, "%s", cc_last_error());
    cc_clip_free(m);
    char prefix[1200];
    snprintf(prefix, sizeof prefix, "%s/exported", test_tmpdir());
    REQUIRE(test_python("clip_ref.py", "embed", out_dir, test_path("pixels.npy"), test_path("ids.npy"),
                        test_path("eot.npy"), prefix, NULL) == 0);
    m = cc_clip_load(out_dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    ref_inputs in;
    REQUIRE(load_inputs(&in) == 0);
    int64_t dim = m->config.projection_dim;
    float *img = malloc((size_t)(in.n_images * dim) * 4);
    REQUIRE(cc_clip_embed_images(m, in.pixels.data, in.n_images, img, 1) == 0, "%s", cc_last_error());
    cc_npy ref;
    REQUIRE(cc_npy_read_f32(test_path("exported_image_embeds.npy"), &ref) == 0);
    CHECK(min_cosine(img, ref.data, in.n_images, dim) >= 0.99999);
    cc_npy_free(&ref);
    free(img);
    free_inputs(&in);
    cc_clip_free(m);
}

/* ---- safetensors and config validation (no Python) ---- */

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    fwrite(data, 1, size, fp);
    fclose(fp);
}

/* A file with the given header JSON and data_size bytes of data. */
static void write_st(const char *path, const char *header, size_t data_size, uint64_t claimed_len) {
    size_t len = strlen(header);
    unsigned char *buf = calloc(1, 8 + len + data_size);
    uint64_t n = claimed_len ? claimed_len : len;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, len);
    write_bytes(path, buf, 8 + len + data_size);
    free(buf);
}

static void expect_open_error(const char *path, const char *fragment) {
    cc_safetensors st;
    int status = cc_st_open(path, &st);
    CHECK(status != 0, "opening %s should fail", path);
    if (status == 0) {
        cc_st_close(&st);
        return;
    }
    CHECK(strstr(cc_last_error(), fragment) != NULL, "error '%s' lacks '%s'", cc_last_error(), fragment);
}

TEST(safetensors_rejects_bad_files) {
    const char *p = test_path("bad.safetensors");
    write_bytes(p, "abc", 3);
    expect_open_error(p, "not a safetensors file");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 1ull << 40);
    expect_open_error(p, "header length");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, 0);
    expect_open_error(p, "not a JSON object");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0);
    expect_open_error(p, "data_offsets");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 16, 0);
    expect_open_error(p, "data_offsets");
    write_st(p, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0);
    expect_open_error(p, "unsupported dtype Q4");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0);
    expect_open_error(p, "overlap");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0);
    expect_open_error(p, "invalid shape");
    write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0);
    expect_open_error(p, "lacks dtype, shape or data_offsets");
    /* a valid one opens, and values read back */
    const char *good = test_path("good.safetensors");
    float values[2] = {1.5f, -2.0f};
    int64_t shape[1] = {2};
    cc_st_write_item item = {"w", 1, shape, values};
    REQUIRE(cc_st_write(good, &item, 1, CC_F16, NULL) == 0, "%s", cc_last_error());
    cc_safetensors st;
    REQUIRE(cc_st_open(good, &st) == 0, "%s", cc_last_error());
    const cc_st_entry *e = cc_st_find(&st, "w");
    REQUIRE(e && e->dtype == CC_F16 && e->shape[0] == 2);
    float back[2];
    REQUIRE(cc_st_read_f32(e, back, 2) == 0);
    CHECK(back[0] == 1.5f && back[1] == -2.0f);
    CHECK(cc_st_find(&st, "missing") == NULL);
    cc_st_close(&st);
    /* truncating the valid file is caught */
    char *data;
    size_t size;
    REQUIRE(cc_read_file(good, &data, &size) == 0);
    write_bytes(p, data, size - 2);
    free(data);
    expect_open_error(p, "data_offsets");
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

TEST(clip_config_and_weight_mismatches_are_reported) {
    const char *dir = test_tmpdir();
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, "{\"text_config\": {\"hidden_size\": 16, \"num_hidden_layers\": 1, \"num_attention_heads\": 2},"
                     " \"vision_config\": {}, \"projection_dim\": 8}");
    cc_clip_config cfg;
    CHECK(cc_clip_config_load(path, &cfg) != 0);
    CHECK(strstr(cc_last_error(), "text_config.intermediate_size") != NULL, "%s", cc_last_error());
    write_text(path, "{\"text_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 3}, \"vision_config\": {}, \"projection_dim\": 8}");
    CHECK(cc_clip_config_load(path, &cfg) != 0);
    CHECK(strstr(cc_last_error(), "num_attention_heads") != NULL, "%s", cc_last_error());
    write_text(path, "{\"text_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"vocab_size\": 50, \"max_position_embeddings\": 9},"
                     " \"vision_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"image_size\": 12, \"patch_size\": 5}, \"projection_dim\": 8}");
    CHECK(cc_clip_config_load(path, &cfg) != 0);
    CHECK(strstr(cc_last_error(), "patch_size") != NULL, "%s", cc_last_error());
    /* a valid config with weights written from a model of a different width */
    write_text(path, "{\"text_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"vocab_size\": 50, \"max_position_embeddings\": 9},"
                     " \"vision_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                     " \"num_attention_heads\": 2, \"image_size\": 12, \"patch_size\": 4}, \"projection_dim\": 8}");
    REQUIRE(cc_clip_config_load(path, &cfg) == 0, "%s", cc_last_error());
    cc_clip_config other = cfg;
    other.vision.intermediate_size = 24;
    cc_clip_model *m = cc_clip_new(&other, NULL);
    REQUIRE(m && cc_clip_init_random(m, 7) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(cc_clip_save_weights(m, path, CC_F32) == 0, "%s", cc_last_error());
    cc_clip_free(m);
    m = cc_clip_load(dir, NULL);
    CHECK(m == NULL);
    CHECK(strstr(cc_last_error(), "mis-shaped") && strstr(cc_last_error(), "vision_model.encoder.layers.0.mlp.fc1.weight"),
          "%s", cc_last_error());
    /* the same config's own weights load and embed */
    m = cc_clip_new(&cfg, NULL);
    REQUIRE(m && cc_clip_init_random(m, 9) == 0);
    REQUIRE(cc_clip_save_weights(m, path, CC_F32) == 0);
    cc_clip_free(m);
    m = cc_clip_load(dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    float pixels[2 * 3 * 12 * 12], out[2 * 8];
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (size_t i = 0; i < sizeof pixels / sizeof pixels[0]; i++) pixels[i] = cc_rng_normal(&rng);
    REQUIRE(cc_clip_embed_images(m, pixels, 2, out, 1) == 0, "%s", cc_last_error());
    double norm = 0;
    for (int i = 0; i < 8; i++) norm += (double)out[i] * out[i];
    CHECK(fabs(norm - 1) < 1e-5, "normalised embedding has squared norm %g", norm);
    int32_t ids[2 * 9] = {48, 5, 49, 0}, eot[2] = {2, 9};
    CHECK(cc_clip_embed_texts(m, ids, eot, 2, out, 1) != 0, "an end-of-text position past the context must fail");
    cc_clip_free(m);
}

/* --precision bf16 / int8: weights packed in bf16 (int8) and activations rounded (quantized) per
 * product give embeddings within cosine 0.999 (0.99) of f32 for every image and caption (mapped f32
 * weights, as a real model loads), and differ from them (the kernel ran); switching back gives
 * f32's bits again; where the CPU lacks AVX512_BF16 / AVX512_VNNI (or CLIPC_NO_BF16 / CLIPC_NO_INT8
 * say so) the model stays f32 with an error. */
static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

TEST(clip_bf16_and_int8_precision_close_to_f32) {
    cc_clip_config cfg = {
        .text = {.hidden_size = 64, .intermediate_size = 256, .num_layers = 2, .num_heads = 4, .act = CC_ACT_QUICK_GELU,
                 .layer_norm_eps = 1e-5f, .vocab_size = 300, .max_positions = 16, .eos_token_id = -1},
        .vision = {.hidden_size = 96, .intermediate_size = 384, .num_layers = 2, .num_heads = 4, .act = CC_ACT_QUICK_GELU,
                   .layer_norm_eps = 1e-5f, .image_size = 32, .patch_size = 8, .num_channels = 3},
        .projection_dim = 48, .logit_scale_init = 2.6592f};
    enum { N = 5, CTX = 16, DIM = 48, PIXELS = 3 * 32 * 32 };
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    REQUIRE(m && cc_clip_init_random(m, test_seed()) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(cc_clip_save_weights(m, path, CC_F32) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/config.json", dir);
    REQUIRE(cc_clip_config_save(&cfg, path) == 0, "%s", cc_last_error());
    cc_clip_free(m);
    m = cc_clip_load(dir, NULL);
    REQUIRE(m, "%s", cc_last_error());
    cc_rng rng;
    cc_rng_seed(&rng, test_seed() + 1);
    float *pixels = malloc(sizeof(float) * N * PIXELS);
    int32_t ids[N * CTX] = {0}, eot[N];
    for (int i = 0; i < N * PIXELS; i++) pixels[i] = cc_rng_normal(&rng);
    for (int i = 0; i < N; i++) {
        eot[i] = 3 + (int32_t)cc_rng_below(&rng, CTX - 3);
        for (int t = 0; t <= eot[i]; t++) ids[i * CTX + t] = (int32_t)cc_rng_below(&rng, 299);
        ids[i * CTX + eot[i]] = 299;
    }
    float img32[N * DIM], txt32[N * DIM], img16[N * DIM], txt16[N * DIM], again[N * DIM];
    REQUIRE(cc_clip_embed_images(m, pixels, N, img32, 1) == 0 && cc_clip_embed_texts(m, ids, eot, N, txt32, 1) == 0, "%s",
            cc_last_error());
    static const struct {
        cc_precision precision;
        const char *name, *needs, *env;
        double min_cosine;
    } cases[] = {{CC_PRECISION_BF16, "bf16", "AVX512_BF16", "CLIPC_NO_BF16", 0.999},
                 {CC_PRECISION_INT8, "int8", "AVX512_VNNI", "CLIPC_NO_INT8", 0.99}};
    for (int c = 0; c < 2; c++) {
        int has = cases[c].precision == CC_PRECISION_BF16 ? cc_gemm_has_bf16() : cc_gemm_has_int8();
        if (!has) {
            CHECK(cc_clip_set_precision(m, cases[c].precision) != 0 && strstr(cc_last_error(), cases[c].needs));
            CHECK(m->precision == CC_PRECISION_F32);
            continue;
        }
        REQUIRE(cc_clip_set_precision(m, cases[c].precision) == 0, "%s", cc_last_error());
        REQUIRE(cc_clip_embed_images(m, pixels, N, img16, 1) == 0 && cc_clip_embed_texts(m, ids, eot, N, txt16, 1) == 0,
                "%s", cc_last_error());
        const cc_gemm_packed *fc1 = m->vision_layers[0].fc1_w->packed, *q = m->text_layers[1].q_w->packed;
        CHECK(fc1 && q && (c == 0 ? cc_gemm_packed_is_bf16(fc1) && cc_gemm_packed_is_bf16(q)
                                  : cc_gemm_packed_is_int8(fc1) && cc_gemm_packed_is_int8(q)),
              "%s: weights packed in %s", cases[c].name, cases[c].name);
        for (int i = 0; i < N; i++) {
            double ci = cosine(img16 + i * DIM, img32 + i * DIM, DIM), ct = cosine(txt16 + i * DIM, txt32 + i * DIM, DIM);
            CHECK(ci >= cases[c].min_cosine && ct >= cases[c].min_cosine && ci < 1 - 1e-9,
                  "%s item %d: cosine to f32: image %.6f, text %.6f", cases[c].name, i, ci, ct);
        }
        REQUIRE(cc_clip_set_precision(m, CC_PRECISION_F32) == 0);
        REQUIRE(cc_clip_embed_images(m, pixels, N, again, 1) == 0, "%s", cc_last_error());
        CHECK(memcmp(again, img32, sizeof again) == 0, "back to f32: the f32 embeddings again");
        setenv(cases[c].env, "1", 1);
        CHECK(cc_clip_set_precision(m, cases[c].precision) != 0 && strstr(cc_last_error(), cases[c].needs), "%s",
              cc_last_error());
        unsetenv(cases[c].env);
        REQUIRE(cc_clip_embed_images(m, pixels, N, again, 1) == 0, "%s", cc_last_error());
        CHECK(m->precision == CC_PRECISION_F32 && memcmp(again, img32, sizeof again) == 0, "fallback runs f32");
    }
    free(pixels);
    cc_clip_free(m);
}
