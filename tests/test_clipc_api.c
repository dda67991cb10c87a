/* test_clipc_api.c — the public API's binding functions (include/clipc.h: tokenize, RGB arrays, image
 * file batches, indexes) on a random tiny model written to a directory, under the sanitizers too. */
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "include/clipc.h"
#include "engine/clip.h"
#include "engine/util.h"
#include "tests/test.h"
#include "train/export.h"

/* A random-weight "tiny" model directory with openai's vocabulary; NULL when it cannot be written. */
static const char *tiny_model_dir(uint64_t seed) {
    static char dir[4200], vocab[4200];
    snprintf(dir, sizeof dir, "%s", test_path("tiny_model"));
    snprintf(vocab, sizeof vocab, "%s/clip/bpe_simple_vocab_16e6.txt.gz", test_shared_dir());
    cc_clip_config cfg;
    if (cc_clip_config_builtin("tiny", &cfg) != 0) return NULL;
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    cc_preprocess_config pre;
    cc_preprocess_config_default(&pre, cfg.vision.image_size);
    int status = m && cc_clip_init_random(m, seed) == 0 ? cc_export_model_dir(m, &pre, vocab, dir, CC_F32) : -1;
    cc_clip_free(m);
    return status == 0 ? dir : NULL;
}

TEST(clipc_api_tokenize_and_rgb_arrays) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    const char *dir = tiny_model_dir(cc_rng_u64(&rng));
    REQUIRE(dir, "%s", cc_last_error());
    clipc_model *m = clipc_open(dir, NULL);
    REQUIRE(m, "%s", clipc_last_error());
    int context = clipc_context_length(m), dim = clipc_dim(m);
    CHECK(context == 32 && dim == 128, "context %d, dim %d", context, dim);
    /* tokenize: start, tokens, end, zeros; a caption too long ends with the end token */
    char long_caption[2000] = "";
    for (int i = 0; i < 100; i++) strcat(long_caption, "dog ");
    const char *texts[] = {"a photo of a dog", "", long_caption};
    int *ids = calloc(3 * (size_t)context, sizeof(int)), eot[3];
    REQUIRE(clipc_tokenize(m, texts, 3, ids, eot) == 1, "%s", clipc_last_error());
    CHECK(eot[0] == 6 && eot[1] == 1 && eot[2] == context - 1, "eot %d %d %d", eot[0], eot[1], eot[2]);
    for (int t = 0; t < 3; t++) {
        CHECK(ids[t * context] == 49406 && ids[t * context + eot[t]] == 49407, "text %d", t);
        for (int j = eot[t] + 1; j < context; j++) CHECK(ids[t * context + j] == 0, "text %d pad %d", t, j);
    }
    /* RGB arrays give the embeddings of PNG files of the same pixels */
    enum { N = 3 };
    int widths[N], heights[N];
    unsigned char *rgb[N];
    const char *paths[N];
    char names[N][64];
    for (int i = 0; i < N; i++) {
        widths[i] = 20 + (int)cc_rng_below(&rng, 90);
        heights[i] = 20 + (int)cc_rng_below(&rng, 90);
        rgb[i] = malloc((size_t)widths[i] * heights[i] * 3);
        for (int p = 0; p < widths[i] * heights[i] * 3; p++) rgb[i][p] = (unsigned char)cc_rng_below(&rng, 256);
        snprintf(names[i], sizeof names[i], "img%d.png", i);
        paths[i] = strdup(test_path(names[i]));
        REQUIRE(cc_image_write_png(paths[i], rgb[i], widths[i], heights[i], 3) == 0, "%s", cc_last_error());
    }
    float *from_arrays = malloc(sizeof(float) * N * dim), *from_files = malloc(sizeof(float) * N * dim);
    REQUIRE(clipc_embed_images_rgb(m, N, (const unsigned char *const *)rgb, widths, heights, from_arrays) == 0, "%s",
            clipc_last_error());
    REQUIRE(clipc_embed_image_files(m, paths, N, from_files) == 0, "%s", clipc_last_error());
    for (int i = 0; i < N * dim; i++) CHECK(from_arrays[i] == from_files[i], "element %d: %g vs %g", i, from_arrays[i], from_files[i]);
    float one[128];
    REQUIRE(clipc_embed_image_file(m, paths[1], one) == 0);
    CHECK(clipc_similarity(m, one, from_files + dim) > 0.99999f);
    /* errors name what is wrong */
    int bad_width = 0;
    CHECK(clipc_embed_images_rgb(m, 1, (const unsigned char *const *)rgb, &bad_width, heights, from_arrays) == -1);
    CHECK(strstr(clipc_last_error(), "image 0"), "%s", clipc_last_error());
    const char *missing[] = {test_path("missing.png")};
    CHECK(clipc_embed_image_files(m, missing, 1, from_files) == -1 && strstr(clipc_last_error(), "missing.png"), "%s",
          clipc_last_error());
    for (int i = 0; i < N; i++) {
        free(rgb[i]);
        free((void *)paths[i]);
    }
    free(from_arrays);
    free(from_files);
    free(ids);
    clipc_close(m);
}

TEST(clipc_api_index) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    enum { N = 300, DIM = 16 };
    float *x = malloc(sizeof(float) * N * DIM);
    for (int i = 0; i < N * DIM; i++) x[i] = cc_rng_normal(&rng);
    CHECK(clipc_index_new("Flat", DIM, 7) == NULL && strstr(clipc_last_error(), "metric"), "%s", clipc_last_error());
    CHECK(clipc_index_new("Nonsense", DIM, 0) == NULL && strstr(clipc_last_error(), "Nonsense"), "%s", clipc_last_error());
    const char *types[] = {"Flat", "HNSW16", "IVF4,Flat"};
    for (int t = 0; t < 3; t++) {
        clipc_index *ix = clipc_index_new(types[t], DIM, 1); /* L2: each vector is its own nearest */
        REQUIRE(ix, "%s", clipc_last_error());
        long long *ids = malloc(sizeof(long long) * N);
        for (int i = 0; i < N; i++) ids[i] = 1000 + i;
        REQUIRE(clipc_index_train(ix, N, x) == 0 && clipc_index_add(ix, N, x, ids) == 0, "%s", clipc_last_error());
        CHECK(clipc_index_count(ix) == N && clipc_index_dim(ix) == DIM && clipc_index_metric(ix) == 1);
        CHECK(!strncmp(clipc_index_desc(ix), types[t], 4), "%s", clipc_index_desc(ix));
        clipc_index_set_param(ix, "nprobe", 4);
        long long found[N * 2];
        float scores[N * 2];
        REQUIRE(clipc_index_search(ix, N, x, 2, scores, found) == 0, "%s", clipc_last_error());
        int self = 0;
        for (int i = 0; i < N; i++) self += found[2 * i] == ids[i] && scores[2 * i] < 1e-4f;
        CHECK(self >= (t == 1 ? N * 95 / 100 : N), "%s: %d of %d find themselves", types[t], self, N);
        CHECK(clipc_index_remove(ix, 2, (long long[]){1000, 5}) == 1 && clipc_index_count(ix) == N - 1);
        REQUIRE(clipc_index_save(ix, test_path("api.idx")) == 0, "%s", clipc_last_error());
        clipc_index *again = clipc_index_load(test_path("api.idx"));
        REQUIRE(again, "%s", clipc_last_error());
        CHECK(clipc_index_count(again) == N - 1);
        CHECK(clipc_index_search(again, 1, x, N, scores, found) == -1, "k > count must fail");
        clipc_index_free(again);
        clipc_index_free(ix);
        free(ids);
    }
    CHECK(clipc_index_load(test_path("none.idx")) == NULL && strstr(clipc_last_error(), "none.idx"), "%s", clipc_last_error());
    free(x);
}
