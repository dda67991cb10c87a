/* gen_seeds.c — writes the binary seed files of the fuzz corpora with clipc's own writers:
 *   gen_seeds OUT_DIR   ->  OUT_DIR/<target>/<seed files>
 * safetensors (f32/f16/bf16, with metadata), config.json / preprocessor_config.json, .npy (each
 * dtype), PNG and JPEG images, index files of every type, a training checkpoint of a tiny model (with
 * and without adapters), embedding caches, and tokenizer vocabularies (learned with cc_bpe_learn;
 * openai layout gzip'd and plain). Small sizes throughout: seeds should be a few KB. Text seeds
 * (datasets, --meta TSV, HTTP requests, tokenizer texts) are written by make_corpus.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/image.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "engine/clip.h"
#include "engine/safetensors.h"
#include "engine/util.h"
#include "index/index.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static const char *out_dir;

static const char *seed_path(const char *target, const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    return path;
}

static void fail(const char *what) {
    fprintf(stderr, "gen_seeds: %s: %s\n", what, cc_last_error());
    exit(1);
}

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: cannot write %s\n", path);
        exit(1);
    }
}

static char *read_all(const char *path, size_t *size) {
    char *text;
    if (cc_read_file(path, &text, size) != 0) fail(path);
    return text;
}

static void safetensors_seeds(void) {
    int64_t shape_a[2] = {2, 3}, shape_b[1] = {4}, shape_c[3] = {1, 2, 2};
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, -7}, b[4] = {0.25f, 0.5f, 0.75f, 1}, c[4] = {9, 8, 7, 6};
    cc_st_write_item items[3] = {{"text_model.embeddings.weight", 2, shape_a, a}, {"logit_scale", 1, shape_b, b},
                                 {"vision.w", 3, shape_c, c}};
    if (cc_st_write(seed_path("fuzz_safetensors", "f32.safetensors"), items, 3, CC_F32, "{\"format\":\"pt\"}") != 0 ||
        cc_st_write(seed_path("fuzz_safetensors", "f16.safetensors"), items, 2, CC_F16, NULL) != 0 ||
        cc_st_write(seed_path("fuzz_safetensors", "bf16.safetensors"), items + 1, 2, CC_BF16, "{\"a\":\"b\",\"c\":\"d\"}") != 0)
        fail("safetensors");
}

static cc_clip_config tiny_config(void) {
    cc_clip_config cfg = {
        .text = {.hidden_size = 8, .intermediate_size = 16, .num_layers = 1, .num_heads = 2, .act = CC_ACT_QUICK_GELU,
                 .layer_norm_eps = 1e-5f, .vocab_size = 20, .max_positions = 6, .eos_token_id = -1},
        .vision = {.hidden_size = 8, .intermediate_size = 16, .num_layers = 1, .num_heads = 2, .act = CC_ACT_QUICK_GELU,
                   .layer_norm_eps = 1e-5f, .image_size = 8, .patch_size = 4, .num_channels = 3},
        .projection_dim = 4, .logit_scale_init = 2.6592f};
    return cfg;
}

static void config_seeds(void) {
    cc_clip_config cfg;
    if (cc_clip_config_builtin("b32", &cfg) != 0 || cc_clip_config_save(&cfg, seed_path("fuzz_config", "b32.json")) != 0)
        fail("config");
    cfg = tiny_config();
    if (cc_clip_config_save(&cfg, seed_path("fuzz_config", "tiny.json")) != 0) fail("config");
    cc_preprocess_config pre;
    cc_preprocess_config_default(&pre, 224);
    if (cc_preprocess_config_save(&pre, seed_path("fuzz_config", "preprocessor_config.json")) != 0) fail("preprocess");
}

static void npy_seeds(void) {
    int64_t shape[2] = {3, 2};
    float f[6] = {1, 2, 3, 4, 5, 6};
    double d[6] = {1, 2, 3, 4, 5, 6};
    int32_t i32[6] = {1, 2, 3, 4, 5, 6};
    int64_t i64[6] = {1, 2, 3, 4, 5, 6};
    uint8_t u8[6] = {1, 2, 3, 4, 5, 6};
    if (cc_npy_write(seed_path("fuzz_npy", "f32.npy"), CC_NPY_F32, 2, shape, f) != 0 ||
        cc_npy_write(seed_path("fuzz_npy", "f64.npy"), CC_NPY_F64, 2, shape, d) != 0 ||
        cc_npy_write(seed_path("fuzz_npy", "i32.npy"), CC_NPY_I32, 1, shape, i32) != 0 ||
        cc_npy_write(seed_path("fuzz_npy", "i64.npy"), CC_NPY_I64, 2, shape, i64) != 0 ||
        cc_npy_write(seed_path("fuzz_npy", "u8.npy"), CC_NPY_U8, 0, shape, u8) != 0)
        fail("npy");
}

static void image_seeds(void) {
    uint8_t pixels[24 * 16 * 3];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 37 + (i >> 4));
    struct { int w, h, channels, jpeg; const char *name; } kinds[] = {
        {24, 16, 3, 0, "rgb.png"}, {16, 24, 1, 0, "gray.png"}, {24, 16, 3, 1, "rgb.jpg"}, {9, 7, 1, 1, "gray.jpg"},
        {1, 1, 3, 0, "one.png"}};
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        uint8_t *data;
        size_t size;
        int rc = kinds[k].jpeg ? cc_image_encode_jpeg(pixels, kinds[k].w, kinds[k].h, kinds[k].channels, 70, &data, &size)
                               : cc_image_encode_png(pixels, kinds[k].w, kinds[k].h, kinds[k].channels, &data, &size);
        if (rc != 0) fail("image");
        write_bytes(seed_path("fuzz_image", kinds[k].name), data, size);
        free(data);
    }
}

/* vectors of a small data set: n points in dim dimensions, in 4 clusters */
static float *points(int64_t n, int dim) {
    float *x = malloc((size_t)(n * dim) * sizeof(float));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) % 1000) / 1000.0f + (float)((i / dim) % 4);
    }
    return x;
}

static void index_seeds(void) {
    struct { const char *desc, *name; cc_metric metric; } types[] = {
        {"Flat", "flat.cci", CC_METRIC_IP}, {"Flat", "flat_l2.cci", CC_METRIC_L2}, {"IVF4,Flat", "ivf.cci", CC_METRIC_L2},
        {"PQ2", "pq.cci", CC_METRIC_IP},   {"IVF4,PQ2", "ivfpq.cci", CC_METRIC_L2}, {"PQ2,RFlat", "pq_rflat.cci", CC_METRIC_IP},
        {"HNSW4", "hnsw.cci", CC_METRIC_IP}, {"SQ8", "sq8.cci", CC_METRIC_L2},   {"F16,RFlat", "f16_rflat.cci", CC_METRIC_IP},
        {"BF16", "bf16.cci", CC_METRIC_IP}, {"PQ2x4fs", "pq4fs.cci", CC_METRIC_IP},
        {"IVF4,PQ2x4fs", "ivfpq4fs.cci", CC_METRIC_L2}, {"IVF4,PQ4x4fs,RFlat", "ivfpq4fs_rflat.cci", CC_METRIC_IP}};
    int dim = 4;
    int64_t n = 40, n_train = 300; /* PQ codebooks (256 centroids) need 256+ training vectors */
    float *x = points(n_train, dim);
    const char *texts[40];
    char text_buf[40][16];
    int64_t times[40];
    const char *tags[40];
    for (int i = 0; i < 40; i++) {
        snprintf(text_buf[i], sizeof text_buf[i], "item %d", i);
        texts[i] = text_buf[i];
        times[i] = 1700000000 + i;
        tags[i] = i % 3 == 0 ? NULL : i % 3 == 1 ? "cat,pet" : "dog";
    }
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        cc_index *idx = cc_index_create(types[t].desc, dim, types[t].metric);
        if (!idx) fail(types[t].desc);
        cc_index_set_param(idx, "seed", 1);
        if (!cc_index_is_trained(idx) && cc_index_train(idx, n_train, x) != 0) fail(types[t].desc);
        /* half with texts, timestamps and tags, a few removed, metadata */
        if (cc_index_add_items_tagged(idx, n / 2, x, NULL, texts, times, tags) != 0 || cc_index_add(idx, n / 2, x + n / 2 * dim) != 0)
            fail(types[t].desc);
        int64_t removed[2] = {3, 30};
        cc_index_remove(idx, 2, removed);
        cc_index_set_meta(idx, "model", "/models/tiny");
        if (cc_index_save(idx, seed_path("fuzz_index", types[t].name)) != 0) fail(types[t].desc);
        cc_index_free(idx);
    }
    /* embedding caches: keys "SIZE MTIME PATH" (images) or captions (texts), with the stamp
     * fuzz_embedding_cache.c opens them with */
    static const char *const stamp_keys[] = {"cache.model", "cache.model_files", "cache.kind", "cache.scales", "cache.long_text"};
    static const char *const stamp_images[] = {"/models/tiny", "10:20,30:40", "images", "", ""};
    static const char *const stamp_texts[] = {"/models/tiny", "10:20,30:40", "texts", "", ""};
    const char *image_keys[3] = {"100 1700000000000000000 /images/a.jpg", "200 1700000000000000001 /images/b.png",
                                 "bad key"};
    const char *caption_keys[3] = {"a cat", "a dog", ""};
    for (int kind = 0; kind < 2; kind++) {
        cc_index *idx = cc_index_create("Flat", dim, CC_METRIC_IP);
        for (int i = 0; i < 5; i++) cc_index_set_meta(idx, stamp_keys[i], kind ? stamp_texts[i] : stamp_images[i]);
        if (cc_index_add_items(idx, 3, x, NULL, kind ? caption_keys : image_keys, NULL) != 0) fail("cache");
        if (cc_index_save(idx, seed_path("fuzz_embedding_cache", kind ? "texts.cache" : "images.cache")) != 0) fail("cache");
        cc_index_free(idx);
    }
    free(x);
}

static void checkpoint_seeds(void) {
    for (int adapter = 0; adapter < 2; adapter++) {
        cc_clip_config cfg = tiny_config();
        cc_clip_model *m = cc_clip_new(&cfg, NULL);
        if (!m || cc_clip_init_random(m, 3) != 0) fail("model");
        cc_trainer_config tc;
        cc_trainer_config_default(&tc);
        tc.adapter = adapter;
        cc_trainer tr;
        if (cc_trainer_init(&tr, m, &tc) != 0) fail("trainer");
        cc_train_state state = {.step = 2, .epoch = 1, .batch_in_epoch = 1, .seed = 5};
        snprintf(state.tokenizer_dir, sizeof state.tokenizer_dir, "tok");
        snprintf(state.train_config, sizeof state.train_config, "{\"lr\":0.001}");
        if (cc_checkpoint_save(seed_path("fuzz_checkpoint", adapter ? "adapter.safetensors" : "full.safetensors"), &tr, &state) != 0)
            fail("checkpoint");
        cc_trainer_free(&tr);
        cc_clip_free(m);
    }
}

static void tokenizer_seeds(void) {
    const char *texts[] = {"a photo of a cat", "a photo of a dog", "two cats on a mat", "the cat sat", "a dog and a cat"};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bpe-tmp", out_dir);
    mkdir(dir, 0755);
    if (cc_bpe_learn(texts, 5, 12, dir) < 0) fail("bpe_learn");
    char vocab_path[4200], merges_path[4200];
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
    size_t vocab_size, merges_size;
    char *vocab = read_all(vocab_path, &vocab_size), *merges = read_all(merges_path, &merges_size);
    /* Hugging Face: vocab.json, the separator line, merges.txt */
    const char *sep = "\n--merges.txt--\n";
    FILE *f = fopen(seed_path("fuzz_tokenizer_files", "hf.txt"), "wb");
    if (!f) fail("hf seed");
    fwrite(vocab, 1, vocab_size, f);
    fwrite(sep, 1, strlen(sep), f);
    fwrite(merges, 1, merges_size, f);
    fclose(f);
    /* openai: a header line, then the merges (merges.txt minus its "#version" line) */
    const char *body = merges;
    if (!strncmp(body, "#version", 8) && strchr(body, '\n')) body = strchr(body, '\n') + 1;
    char *openai = malloc(merges_size + 64);
    int len = snprintf(openai, merges_size + 64, "\"bpe_simple_vocab_16e6.txt#version: 0.2\n%s", body);
    write_bytes(seed_path("fuzz_tokenizer_files", "openai.txt"), openai, (size_t)len);
    gzFile gz = gzopen(seed_path("fuzz_tokenizer_files", "openai.txt.gz"), "wb9");
    if (!gz || gzwrite(gz, openai, (unsigned)len) != len || gzclose(gz) != Z_OK) fail("gzip seed");
    free(openai);
    free(vocab);
    free(merges);
    remove(vocab_path);
    remove(merges_path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    safetensors_seeds();
    config_seeds();
    npy_seeds();
    image_seeds();
    index_seeds();
    checkpoint_seeds();
    tokenizer_seeds();
    return 0;
}
