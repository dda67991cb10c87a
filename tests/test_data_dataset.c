/* test_data_dataset.c — dataset readers (TSV/CSV, COCO, Karpathy) on good and bad files, seeded shuffle,
 * split by image, and the threaded loader checked batch by batch against direct preprocessing. */
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "engine/util.h"
#include "tests/test.h"

static void write_text(const char *path, const char *text) {
    if (cc_write_file_atomic(path, text, strlen(text)) != 0) fprintf(stderr, "    %s\n", cc_last_error());
}

/* Reads `text` written to NAME and expects failure with every `needles` substring in the error. */
static int read_fails_with(const char *name, const char *text, const cc_dataset_options *options, const char *needle1,
                           const char *needle2) {
    write_text(test_path(name), text);
    cc_dataset ds;
    if (cc_dataset_read(test_path(name), options, &ds) == 0) {
        cc_dataset_free(&ds);
        fprintf(stderr, "    %s: read succeeded, expected an error\n", name);
        return 0;
    }
    const char *err = cc_last_error();
    if (!strstr(err, name) || (needle1 && !strstr(err, needle1)) || (needle2 && !strstr(err, needle2))) {
        fprintf(stderr, "    %s: error '%s' lacks the file name or '%s' / '%s'\n", name, err, needle1 ? needle1 : "",
                needle2 ? needle2 : "");
        return 0;
    }
    return 1;
}

TEST(dataset_reads_tsv_and_csv) {
    write_text(test_path("pairs.tsv"), "image\tcaption\na.png\ta red circle\nsub/b.jpg\ta blue square\r\na.png\tthe same image again\n\n");
    cc_dataset ds;
    REQUIRE(cc_dataset_read(test_path("pairs.tsv"), NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 3 && ds.n_images == 2);
    CHECK(strcmp(ds.pairs[1].image, "sub/b.jpg") == 0 && strcmp(ds.pairs[1].caption, "a blue square") == 0);
    CHECK(ds.pairs[0].image_index == ds.pairs[2].image_index && ds.pairs[0].image_index != ds.pairs[1].image_index);
    char path[1024];
    CHECK(strcmp(cc_dataset_image_path(&ds, 1, path, sizeof path), test_path("sub/b.jpg")) == 0, "%s", path);
    cc_dataset_free(&ds);
    /* CSV with open_clip's column names, quoting, commas and a newline inside a caption, a BOM */
    write_text(test_path("data.csv"),
               "\xef\xbb\xbfid,filepath,title\n1,x.png,\"a cat, sitting\"\n2,\"y z.png\",\"two\nlines \"\"quoted\"\"\"\n3,w.png,plain\n");
    REQUIRE(cc_dataset_read(test_path("data.csv"), NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 3);
    CHECK(strcmp(ds.pairs[0].caption, "a cat, sitting") == 0);
    CHECK(strcmp(ds.pairs[1].image, "y z.png") == 0 && strcmp(ds.pairs[1].caption, "two\nlines \"quoted\"") == 0,
          "'%s'", ds.pairs[1].caption);
    cc_dataset_free(&ds);
    /* explicit keys and separator, image root */
    write_text(test_path("custom.txt"), "cap|img\nhello|h.png\n");
    cc_dataset_options options = {0};
    options.img_key = "img";
    options.caption_key = "cap";
    options.separator = '|';
    options.image_root = "/data/images";
    REQUIRE(cc_dataset_read(test_path("custom.txt"), &options, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 1 && strcmp(cc_dataset_image_path(&ds, 0, path, sizeof path), "/data/images/h.png") == 0);
    cc_dataset_free(&ds);
    /* invalid UTF-8 in a caption is repaired and counted */
    write_text(test_path("bad_utf8.tsv"), "image\tcaption\na.png\tcaf\xc3 \xff ok\n");
    REQUIRE(cc_dataset_read(test_path("bad_utf8.tsv"), NULL, &ds) == 0);
    CHECK(ds.n_invalid_utf8 == 2 && strcmp(ds.pairs[0].caption, "caf\xef\xbf\xbd \xef\xbf\xbd ok") == 0);
    cc_dataset_free(&ds);
}

TEST(dataset_rejects_bad_tsv) {
    CHECK(read_fails_with("nocol.tsv", "path\ttext\na.png\thello\n", NULL, ":1:", "image"));
    CHECK(read_fails_with("short.tsv", "image\tcaption\na.png\thello\nb.png\n", NULL, ":3:", "field"));
    CHECK(read_fails_with("quote.csv", "image,caption\na.png,\"never closed\nb.png,x\n", NULL, "unterminated", "line 2"));
    CHECK(read_fails_with("after.csv", "image,caption\na.png,\"x\"y\n", NULL, ":2:", "closing quote"));
    CHECK(read_fails_with("empty.tsv", "image\tcaption\n", NULL, "no image-caption pairs", NULL));
    CHECK(read_fails_with("noimage.tsv", "image\tcaption\n\tcaption without image\n", NULL, ":2:", "empty image"));
    cc_dataset ds;
    CHECK(cc_dataset_read(test_path("missing.tsv"), NULL, &ds) != 0 && strstr(cc_last_error(), "missing.tsv"));
}

TEST(dataset_reads_coco_and_karpathy_json) {
    write_text(test_path("captions.json"),
               "{\"info\": {\"year\": 2017, \"list\": [1, 2.5e3, null, true, false, {\"deep\": [[[]]]}]},\n"
               " \"annotations\": [{\"image_id\": 42, \"id\": 1, \"caption\": \"A dog \\u00e9\\ud83d\\ude00 \\\"quoted\\\"\"},\n"
               "                   {\"image_id\": 7, \"id\": 2, \"caption\": \"A cat\"},\n"
               "                   {\"image_id\": 42, \"id\": 3, \"caption\": \"Another dog\"}],\n"
               " \"images\": [{\"id\": 7, \"file_name\": \"cat.jpg\", \"width\": 640}, {\"id\": 42, \"file_name\": \"dog.jpg\"}]}");
    cc_dataset ds;
    REQUIRE(cc_dataset_read(test_path("captions.json"), NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 3 && ds.n_images == 2);
    CHECK(strcmp(ds.pairs[0].image, "dog.jpg") == 0 && strcmp(ds.pairs[0].caption, "A dog \xc3\xa9\xf0\x9f\x98\x80 \"quoted\"") == 0,
          "'%s'", ds.pairs[0].caption);
    CHECK(strcmp(ds.pairs[1].image, "cat.jpg") == 0 && ds.pairs[0].image_index == ds.pairs[2].image_index);
    cc_dataset_free(&ds);
    write_text(test_path("dataset_coco.json"),
               "{\"images\": [{\"filepath\": \"val2014\", \"filename\": \"a.jpg\", \"split\": \"test\", \"sentences\": "
               "[{\"raw\": \"first\", \"tokens\": [\"first\"]}, {\"raw\": \"second\"}]},"
               "{\"sentences\": [{\"raw\": \"third\"}], \"split\": \"train\", \"filename\": \"b.jpg\", \"filepath\": \"train2014\"},"
               "{\"filepath\": \"val2014\", \"filename\": \"c.jpg\", \"split\": \"restval\", \"sentences\": [{\"raw\": \"fourth\"}]}],"
               " \"dataset\": \"coco\"}");
    cc_dataset_options options = {0};
    REQUIRE(cc_dataset_read(test_path("dataset_coco.json"), &options, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 4 && ds.n_images == 3 && strcmp(ds.pairs[0].image, "val2014/a.jpg") == 0);
    cc_dataset_free(&ds);
    options.split = "train,restval";
    REQUIRE(cc_dataset_read(test_path("dataset_coco.json"), &options, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 2 && strcmp(ds.pairs[0].image, "train2014/b.jpg") == 0 && strcmp(ds.pairs[1].caption, "fourth") == 0);
    cc_dataset_free(&ds);
    /* asking for the other format is an error */
    options.split = NULL;
    options.format = CC_DATASET_COCO;
    CHECK(cc_dataset_read(test_path("dataset_coco.json"), &options, &ds) != 0 && strstr(cc_last_error(), "annotations"));
}

TEST(dataset_rejects_bad_json) {
    CHECK(read_fails_with("trunc.json", "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}],\n \"annotations\": [{\"image_id\": 1,",
                          NULL, "line 2", "end of file"));
    CHECK(read_fails_with("comma.json", "{\"images\": [],\n\n  \"annotations\": [{\"image_id\": 1, \"caption\": \"x\"},]}", NULL,
                          "line 3", "trailing comma"));
    CHECK(read_fails_with("unknown.json", "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"}], \"annotations\": "
                                          "[{\"image_id\": 1, \"caption\": \"ok\"}, {\"image_id\": 99, \"caption\": \"x\"}]}",
                          NULL, "annotation 1", "image_id 99"));
    CHECK(read_fails_with("badnum.json", "{\"images\": [{\"id\": 1.5, \"file_name\": \"a.jpg\"}], \"annotations\": []}", NULL,
                          "line 1", "integer"));
    CHECK(read_fails_with("ctrl.json", "{\"annotations\": [{\"image_id\": 1, \"caption\": \"tab\there\"}], \"images\": []}", NULL,
                          "control character", NULL));
    CHECK(read_fails_with("garbage.json", "{\"images\": []} trailing", NULL, "after the JSON value", NULL));
    CHECK(read_fails_with("neither.json", "{\"images\": [], \"x\": 1}", NULL, "neither", NULL));
    CHECK(read_fails_with("dup.json", "{\"images\": [{\"id\": 1, \"file_name\": \"a\"}, {\"id\": 1, \"file_name\": \"b\"}],"
                                      " \"annotations\": [{\"image_id\": 1, \"caption\": \"x\"}]}", NULL, "twice", NULL));
    /* deep nesting is refused, not a stack overflow */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    strcpy(deep, "{\"info\": ");
    size_t n = strlen(deep);
    for (size_t i = 0; i < depth; i++) deep[n++] = '[';
    deep[n] = 0;
    CHECK(read_fails_with("deep.json", deep, NULL, "too deep", NULL));
    free(deep);
    /* invalid UTF-8 inside a JSON caption is repaired and counted */
    write_text(test_path("utf8.json"), "{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": "
                                       "[{\"image_id\": 1, \"caption\": \"bad \xe2\x82 \\ud800 end\"}]}");
    cc_dataset ds;
    REQUIRE(cc_dataset_read(test_path("utf8.json"), NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_invalid_utf8 == 2 && strcmp(ds.pairs[0].caption, "bad \xef\xbf\xbd \xef\xbf\xbd end") == 0, "'%s'",
          ds.pairs[0].caption);
    cc_dataset_free(&ds);
}

TEST(dataset_shuffle_and_split_by_image) {
    cc_dataset ds = {0};
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int n_images = 50 + (int)cc_rng_below(&rng, 50);
    for (int i = 0; i < n_images; i++) {
        int captions = 1 + (int)cc_rng_below(&rng, 5);
        for (int k = 0; k < captions; k++) {
            char image[32], caption[64];
            snprintf(image, sizeof image, "img%03d.png", i);
            snprintf(caption, sizeof caption, "caption %d of image %d", k, i);
            REQUIRE(cc_dataset_add(&ds, image, caption) == 0);
        }
    }
    CHECK(ds.n_images == n_images);
    /* seeded shuffle: same seed, same order; a permutation of the pairs */
    cc_dataset a = {0}, b = {0}, train, val;
    for (int64_t i = 0; i < ds.n_pairs; i++) {
        cc_dataset_add(&a, ds.pairs[i].image, ds.pairs[i].caption);
        cc_dataset_add(&b, ds.pairs[i].image, ds.pairs[i].caption);
    }
    cc_dataset_shuffle(&a, 99);
    cc_dataset_shuffle(&b, 99);
    int same = 1, moved = 0;
    for (int64_t i = 0; i < a.n_pairs; i++) {
        same &= strcmp(a.pairs[i].caption, b.pairs[i].caption) == 0;
        moved += strcmp(a.pairs[i].caption, ds.pairs[i].caption) != 0;
    }
    CHECK(same && moved > a.n_pairs / 2, "same %d moved %d", same, moved);
    cc_dataset_shuffle(&b, 100);
    int differ = 0;
    for (int64_t i = 0; i < a.n_pairs; i++) differ += strcmp(a.pairs[i].caption, b.pairs[i].caption) != 0;
    CHECK(differ > 0);
    /* split: no image on both sides, every pair kept, ~fraction of the images in val, deterministic */
    REQUIRE(cc_dataset_split(&ds, 0.2, 5, &train, &val) == 0);
    CHECK(train.n_pairs + val.n_pairs == ds.n_pairs);
    CHECK(val.n_images == (int64_t)(0.2 * n_images + 0.5), "%lld val images of %d", (long long)val.n_images, n_images);
    for (int64_t i = 0; i < val.n_pairs; i++)
        for (int64_t j = 0; j < train.n_pairs; j++)
            CHECK(strcmp(val.pairs[i].image, train.pairs[j].image) != 0, "%s on both sides", val.pairs[i].image);
    cc_dataset train2, val2;
    REQUIRE(cc_dataset_split(&ds, 0.2, 5, &train2, &val2) == 0);
    CHECK(val2.n_pairs == val.n_pairs && strcmp(val2.pairs[0].caption, val.pairs[0].caption) == 0);
    cc_dataset_free(&train2);
    cc_dataset_free(&val2);
    cc_dataset_free(&train);
    cc_dataset_free(&val);
    CHECK(cc_dataset_split(&ds, 1.5, 5, &train, &val) != 0);
    cc_dataset_free(&a);
    cc_dataset_free(&b);
    cc_dataset_free(&ds);
}

/* ---------------------------------------------------------------------------------------------- */
/* Loader                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

static cc_tokenizer *openai_tokenizer(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", test_shared_dir());
    return cc_tokenizer_load_openai(path);
}

TEST(loader_batches_equal_direct_preprocessing) {
    cc_synth_options options;
    cc_synth_options_default(&options);
    options.count = 37;
    options.size = 40;
    options.seed = test_seed();
    const char *dir = test_path("synth");
    REQUIRE(cc_synth_write(dir, &options) == 0, "%s", cc_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.tsv", dir);
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0);
    /* two pairs point at missing files, one at a file that is not an image */
    cc_dataset_add(&ds, "images/does-not-exist.png", "a ghost");
    cc_dataset_add(&ds, "pairs.tsv", "not an image");
    cc_dataset_add(&ds, "images/also-missing.png", "another ghost");
    cc_tokenizer *tok = openai_tokenizer();
    REQUIRE(tok, "%s", cc_last_error());
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, 8);
    cc_preprocess_config_default(&cfg.preprocess, 32);
    cfg.n_workers = 3;
    cfg.prefetch = 2;
    cfg.shuffle = 1;
    cfg.seed = 17;
    cc_loader *loader = cc_loader_create(&ds, tok, &cfg);
    REQUIRE(loader, "%s", cc_last_error());
    CHECK(cc_loader_n_batches(loader) == 5);
    int *seen = calloc((size_t)ds.n_pairs, sizeof(int));
    float *direct = malloc(3 * 32 * 32 * sizeof(float));
    cc_batch *batch;
    int rc, n_batches = 0, skipped = 0, mismatches = 0;
    int64_t first_pairs[2] = {-1, -1};
    while ((rc = cc_loader_next(loader, &batch)) == 1) {
        CHECK(batch->index == n_batches && batch->image_size == 32 && batch->context == 77);
        CHECK(batch->n + batch->n_skipped == (n_batches < 4 ? 8 : 8), "batch %d: %d + %d", n_batches, batch->n, batch->n_skipped);
        if (n_batches == 0) first_pairs[0] = batch->pair_index[0];
        skipped += batch->n_skipped;
        CHECK((batch->n_skipped > 0) == (batch->skip_reason != NULL));
        if (batch->skip_reason)
            CHECK(strstr(batch->skip_reason, "missing.png") || strstr(batch->skip_reason, "does-not-exist.png") ||
                      strstr(batch->skip_reason, "pairs.tsv"),
                  "skip reason '%s'", batch->skip_reason);
        for (int i = 0; i < batch->n; i++) {
            int64_t p = batch->pair_index[i];
            seen[p]++;
            char image_path[1024];
            cc_dataset_image_path(&ds, p, image_path, sizeof image_path);
            REQUIRE(cc_preprocess_file(&cfg.preprocess, image_path, direct) == 0, "%s", cc_last_error());
            mismatches += memcmp(direct, batch->images + (size_t)i * 3 * 32 * 32, 3 * 32 * 32 * sizeof(float)) != 0;
            int32_t ids[77];
            int eot;
            cc_tokenizer_encode_context(tok, ds.pairs[p].caption, 77, ids, &eot, NULL, NULL);
            mismatches += memcmp(ids, batch->tokens + (size_t)i * 77, sizeof ids) != 0 || eot != batch->eot_pos[i];
        }
        n_batches++;
    }
    CHECK(rc == 0 && n_batches == 5, "rc %d after %d batches: %s", rc, n_batches, rc < 0 ? cc_last_error() : "");
    CHECK(mismatches == 0, "%d items differ from direct preprocessing/tokenization", mismatches);
    CHECK(skipped == 3 && cc_loader_total_skipped(loader) == 3, "skipped %d", skipped);
    for (int64_t p = 0; p < ds.n_pairs; p++) CHECK(seen[p] == (p < 37 ? 1 : 0), "pair %lld seen %d times", (long long)p, seen[p]);
    CHECK(cc_loader_next(loader, &batch) == 0, "the epoch stays ended");
    cc_loader_free(loader);
    /* the same seed gives the same order; another seed another one */
    loader = cc_loader_create(&ds, tok, &cfg);
    REQUIRE(cc_loader_next(loader, &batch) == 1);
    CHECK(batch->pair_index[0] == first_pairs[0]);
    cc_loader_free(loader); /* freed mid-epoch: the workers stop */
    /* strict mode stops with an error naming the file */
    cfg.skip_unreadable = 0;
    cfg.shuffle = 0;
    loader = cc_loader_create(&ds, tok, &cfg);
    while ((rc = cc_loader_next(loader, &batch)) == 1) {
    }
    CHECK(rc < 0 && strstr(cc_last_error(), "does-not-exist.png"), "rc %d: %s", rc, cc_last_error());
    cc_loader_free(loader);
    /* drop_last, no tokenizer, one worker */
    cfg.skip_unreadable = 1;
    cfg.drop_last = 1;
    cfg.n_workers = 1;
    loader = cc_loader_create(&ds, NULL, &cfg);
    n_batches = 0;
    while ((rc = cc_loader_next(loader, &batch)) == 1) n_batches++;
    CHECK(rc == 0 && n_batches == 5 && cc_loader_n_batches(loader) == 5);
    cc_loader_free(loader);
    free(seen);
    free(direct);
    cc_tokenizer_free(tok);
    cc_dataset_free(&ds);
}

/* Resuming mid-epoch: start_batch k yields exactly batches k.. of the same seeded epoch. */
TEST(loader_start_batch_resumes_the_same_order) {
    cc_synth_options options;
    cc_synth_options_default(&options);
    options.count = 29;
    options.size = 16;
    options.seed = test_seed();
    const char *dir = test_path("synth");
    REQUIRE(cc_synth_write(dir, &options) == 0, "%s", cc_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.tsv", dir);
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0, "%s", cc_last_error());
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, 4);
    cc_preprocess_config_default(&cfg.preprocess, 16);
    cfg.shuffle = 1;
    cfg.seed = test_seed();
    cfg.drop_last = 1;
    cfg.prefetch = 3;
    int64_t full[8][4];
    cc_loader *loader = cc_loader_create(&ds, NULL, &cfg);
    REQUIRE(loader, "%s", cc_last_error());
    cc_batch *batch;
    int n = 0;
    while (cc_loader_next(loader, &batch) == 1 && n < 8) memcpy(full[n++], batch->pair_index, 4 * sizeof(int64_t));
    cc_loader_free(loader);
    REQUIRE(n == 7, "29 pairs in batches of 4 with drop_last: %d batches", n);
    for (int start = 1; start <= 7; start += 2) {
        cfg.start_batch = start;
        loader = cc_loader_create(&ds, NULL, &cfg);
        REQUIRE(loader, "%s", cc_last_error());
        int b = start;
        while (cc_loader_next(loader, &batch) == 1) {
            CHECK(batch->index == b && memcmp(batch->pair_index, full[b], 4 * sizeof(int64_t)) == 0, "batch %d", b);
            b++;
        }
        CHECK(b == 7, "resumed at %d, ended at %d", start, b);
        cc_loader_free(loader);
    }
    cfg.start_batch = 9;
    CHECK(cc_loader_create(&ds, NULL, &cfg) == NULL);
    cc_dataset_free(&ds);
}

/* Data-parallel slices: slice r of s yields the r-th contiguous 1/s of each global batch (resumed
 * mid-epoch too), and a batch the slices cannot split evenly is refused. */
TEST(loader_slices_cut_each_global_batch) {
    cc_synth_options options;
    cc_synth_options_default(&options);
    options.count = 29;
    options.size = 16;
    options.seed = test_seed();
    const char *dir = test_path("synth");
    REQUIRE(cc_synth_write(dir, &options) == 0, "%s", cc_last_error());
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.tsv", dir);
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0, "%s", cc_last_error());
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, 8);
    cc_preprocess_config_default(&cfg.preprocess, 16);
    cfg.shuffle = 1;
    cfg.seed = test_seed();
    cfg.drop_last = 1;
    int64_t full[3][8];
    cc_loader *loader = cc_loader_create(&ds, NULL, &cfg);
    REQUIRE(loader, "%s", cc_last_error());
    cc_batch *batch;
    int n = 0;
    while (cc_loader_next(loader, &batch) == 1 && n < 3) memcpy(full[n++], batch->pair_index, 8 * sizeof(int64_t));
    cc_loader_free(loader);
    REQUIRE(n == 3, "29 pairs in batches of 8: %d batches", n);
    for (int slices = 2; slices <= 4; slices *= 2)
        for (int start = 0; start <= 1; start++)
            for (int r = 0; r < slices; r++) {
                cfg.slice_count = slices;
                cfg.slice_index = r;
                cfg.start_batch = start;
                loader = cc_loader_create(&ds, NULL, &cfg);
                REQUIRE(loader, "%s", cc_last_error());
                int b = start, local = 8 / slices;
                while (cc_loader_next(loader, &batch) == 1) {
                    CHECK(batch->n == local && batch->index == b &&
                              memcmp(batch->pair_index, full[b] + r * local, (size_t)local * sizeof(int64_t)) == 0,
                          "slice %d of %d, batch %d", r, slices, b);
                    b++;
                }
                CHECK(b == 3, "slice %d of %d ended at batch %d", r, slices, b);
                cc_loader_free(loader);
            }
    cfg.start_batch = 0;
    cfg.slice_count = 3;
    cfg.slice_index = 0;
    CHECK(cc_loader_create(&ds, NULL, &cfg) == NULL, "8 pairs cannot be cut in 3 slices");
    cc_dataset_free(&ds);
}
