/* test_data_synth.c — the synthetic shapes dataset: determinism, captions that agree with the pixels,
 * and the files it writes (PNG/JPEG, pairs.tsv, COCO and Karpathy JSON), read back with our readers. */
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "engine/util.h"
#include "tests/test.h"

TEST(synth_is_deterministic) {
    uint64_t seed = test_seed();
    int size = 48;
    uint8_t *a = malloc((size_t)size * size * 3), *b = malloc((size_t)size * size * 3);
    int differing_samples = 0;
    for (int64_t i = 0; i < 50; i++) {
        cc_synth_scene s1, s2;
        cc_synth_make_scene(seed, i, &s1);
        cc_synth_make_scene(seed, i, &s2);
        cc_synth_draw(&s1, size, a);
        cc_synth_draw(&s2, size, b);
        CHECK(memcmp(a, b, (size_t)size * size * 3) == 0, "sample %lld renders differently", (long long)i);
        char c1[CC_SYNTH_CAPTION_MAX], c2[CC_SYNTH_CAPTION_MAX];
        cc_synth_caption(&s1, 0, c1, sizeof c1);
        cc_synth_caption(&s2, 0, c2, sizeof c2);
        CHECK(strcmp(c1, c2) == 0);
        cc_synth_make_scene(seed + 1, i, &s2); /* another seed gives another dataset */
        cc_synth_caption(&s2, 0, c2, sizeof c2);
        differing_samples += strcmp(c1, c2) != 0;
    }
    CHECK(differing_samples > 40, "only %d of 50 samples differ between seeds", differing_samples);
    free(a);
    free(b);
}

TEST(synth_captions_match_pixels) {
    uint64_t seed = test_seed();
    int size = 64, counts[4] = {0};
    uint8_t *rgb = malloc((size_t)size * size * 3);
    for (int64_t i = 0; i < 300; i++) {
        cc_synth_scene scene;
        cc_synth_make_scene(seed, i, &scene);
        REQUIRE(scene.n_shapes >= 1 && scene.n_shapes <= 3);
        counts[scene.n_shapes]++;
        cc_synth_draw(&scene, size, rgb);
        char caption[CC_SYNTH_CAPTION_MAX];
        cc_synth_caption(&scene, 0, caption, sizeof caption);
        char bg[64];
        snprintf(bg, sizeof bg, "on a %s background", cc_synth_background_name(scene.background));
        CHECK(strstr(caption, bg) != NULL, "'%s' lacks '%s'", caption, bg);
        uint8_t bg_rgb[3];
        cc_synth_background_rgb(scene.background, bg_rgb);
        /* the corner pixel is background (shapes keep a margin), up to the noise */
        for (int c = 0; c < 3; c++) CHECK(abs(rgb[c] - bg_rgb[c]) <= 4, "sample %lld corner", (long long)i);
        for (int k = 0; k < scene.n_shapes; k++) {
            const cc_synth_shape *s = &scene.shapes[k];
            char words[96];
            snprintf(words, sizeof words, "%s %s %s", s->large ? "large" : "small", cc_synth_colour_name(s->colour),
                     cc_synth_shape_name(s->kind));
            CHECK(strstr(caption, words) != NULL, "'%s' lacks '%s'", caption, words);
            /* the centre pixel has the shape's colour (every shape covers its centre) */
            int px = (int)(s->cx * size), py = (int)(s->cy * size);
            uint8_t want[3];
            cc_synth_colour_rgb(s->colour, want);
            const uint8_t *got = rgb + ((size_t)py * size + px) * 3;
            for (int c = 0; c < 3; c++)
                CHECK(abs(got[c] - want[c]) <= 4, "sample %lld shape %d (%s) centre pixel %d,%d,%d", (long long)i, k, words,
                      got[0], got[1], got[2]);
        }
        if (scene.n_shapes == 2) { /* the relation word agrees with the centres */
            const cc_synth_shape *a = &scene.shapes[0], *b = &scene.shapes[1];
            float dx = b->cx - a->cx, dy = b->cy - a->cy;
            const char *rel = fabsf(dy) >= fabsf(dx) ? (dy > 0 ? " above " : " below ") : (dx > 0 ? " to the left of " : " to the right of ");
            CHECK(strstr(caption, rel) != NULL, "'%s' should say '%s'", caption, rel);
        }
        char variant[CC_SYNTH_CAPTION_MAX];
        cc_synth_caption(&scene, 1, variant, sizeof variant);
        CHECK(strcmp(variant, caption) != 0 && strstr(variant, cc_synth_background_name(scene.background)) != NULL,
              "variant '%s' of '%s'", variant, caption);
    }
    for (int n = 1; n <= 3; n++) CHECK(counts[n] > 30, "%d scenes with %d shapes", counts[n], n);
    free(rgb);
}

TEST(synth_writes_files_that_read_back) {
    cc_synth_options options;
    cc_synth_options_default(&options);
    options.count = 30;
    options.seed = test_seed();
    options.size = 32;
    options.write_coco = options.write_karpathy = 1;
    const char *dir = test_path("synth");
    REQUIRE(cc_synth_write(dir, &options) == 0, "%s", cc_last_error());
    /* again into another directory: byte-identical files */
    const char *again = test_path("synth2");
    REQUIRE(cc_synth_write(again, &options) == 0);
    int differ = test_system("diff -r '%s' '%s' > /dev/null", dir, again);
    CHECK(differ == 0, "two runs with one seed differ");
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.tsv", dir);
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 30 && ds.n_images == 30);
    for (int64_t i = 0; i < ds.n_pairs; i++) {
        char image_path[1024];
        cc_image img;
        REQUIRE(cc_image_load(cc_dataset_image_path(&ds, i, image_path, sizeof image_path), &img) == 0, "%s", cc_last_error());
        CHECK(img.width == 32 && img.height == 32 && img.mode == CC_IMAGE_RGB);
        cc_synth_scene scene;
        cc_synth_make_scene(options.seed, i, &scene);
        char caption[CC_SYNTH_CAPTION_MAX];
        cc_synth_caption(&scene, 0, caption, sizeof caption);
        CHECK(strcmp(ds.pairs[i].caption, caption) == 0, "pair %lld", (long long)i);
        uint8_t *rgb = malloc(32 * 32 * 3);
        cc_synth_draw(&scene, 32, rgb);
        CHECK(memcmp(rgb, img.rgb, 32 * 32 * 3) == 0, "PNG %lld holds the rendered pixels", (long long)i);
        free(rgb);
        cc_image_free(&img);
    }
    cc_dataset_free(&ds);
    snprintf(path, sizeof path, "%s/captions_coco.json", dir);
    cc_dataset_options coco_options = {0};
    snprintf(path, sizeof path, "%s/captions_coco.json", dir);
    char root[1024];
    snprintf(root, sizeof root, "%s/images", dir);
    coco_options.image_root = root;
    REQUIRE(cc_dataset_read(path, &coco_options, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 60 && ds.n_images == 30, "%lld pairs %lld images", (long long)ds.n_pairs, (long long)ds.n_images);
    char image_path[1024];
    CHECK(cc_file_exists(cc_dataset_image_path(&ds, 59, image_path, sizeof image_path)), "%s", image_path);
    cc_dataset_free(&ds);
    snprintf(path, sizeof path, "%s/dataset_karpathy.json", dir);
    cc_dataset_options karpathy_options = {0};
    karpathy_options.split = "val,test";
    REQUIRE(cc_dataset_read(path, &karpathy_options, &ds) == 0, "%s", cc_last_error());
    int64_t held_out = ds.n_images;
    CHECK(ds.n_pairs == 2 * held_out && held_out < 30);
    CHECK(cc_file_exists(cc_dataset_image_path(&ds, 0, image_path, sizeof image_path)), "%s", image_path);
    cc_dataset_free(&ds);
    karpathy_options.split = "train";
    REQUIRE(cc_dataset_read(path, &karpathy_options, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_images + held_out == 30);
    cc_dataset_free(&ds);
    /* JPEG output */
    options.jpeg = 1;
    options.count = 3;
    REQUIRE(cc_synth_write(test_path("jpeg"), &options) == 0);
    snprintf(path, sizeof path, "%s/images/000002.jpg", test_path("jpeg"));
    cc_image img;
    CHECK(cc_image_load(path, &img) == 0 && img.width == 32);
    cc_image_free(&img);
    options.count = 0;
    CHECK(cc_synth_write(test_path("bad"), &options) != 0);
}

TEST(synth_captions_fit_clip_context) {
    char path[1024];
    snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", test_shared_dir());
    cc_tokenizer *tok = cc_tokenizer_load_openai(path);
    REQUIRE(tok, "%s", cc_last_error());
    int longest = 0;
    for (int64_t i = 0; i < 500; i++) {
        cc_synth_scene scene;
        cc_synth_make_scene(test_seed(), i, &scene);
        for (int v = 0; v < 2; v++) {
            char caption[CC_SYNTH_CAPTION_MAX];
            cc_synth_caption(&scene, v, caption, sizeof caption);
            cc_tokens tokens = {0};
            REQUIRE(cc_tokenizer_encode(tok, caption, strlen(caption), &tokens, NULL) == 0);
            if (tokens.count > longest) longest = tokens.count;
            cc_tokens_free(&tokens);
        }
    }
    CHECK(longest + 2 <= CC_CLIP_CONTEXT, "a caption needs %d tokens", longest);
    cc_tokenizer_free(tok);
}
