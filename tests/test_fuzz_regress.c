/* test_fuzz_regress.c — unit tests for the bugs the fuzz targets found (tests/fuzz/; each has its
 * reproducer in tests/fuzz/regress/<target>/). Each test feeds the smallest input of the same shape
 * and checks the documented behaviour: an error naming the file and the field, or the right result. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/tokenizer.h"
#include "engine/safetensors.h"
#include "engine/util.h"
#include "index/index.h"
#include "tests/test.h"

static void write_bytes(const char *path, const void *data, size_t size) {
    if (cc_write_file_atomic(path, data, size) != 0) fprintf(stderr, "    %s\n", cc_last_error());
}

/* fuzz_tokenizer_text: a NUL right after an entity name ("&amp\0") made find_entity's strncmp stop at
 * the NUL and read the candidate name past its end. Python: html.unescape("&amp\0\0x") == "&\0\0x". */
TEST(fuzz_html_entity_followed_by_nul) {
    const char text[] = "a &amp\0\0x &lt\0;";
    size_t len;
    char *clean = cc_clip_clean_text(text, sizeof text - 1, &len, NULL);
    REQUIRE(clean, "%s", cc_last_error());
    const char want[] = "a &\0\0x <\0;";
    CHECK(len == sizeof want - 1 && memcmp(clean, want, len) == 0, "got %zu bytes '%s'", len, clean);
    free(clean);
}

/* fuzz_config: preprocessor_config.json sizes beyond int range were converted to int before the check
 * (undefined behaviour; the result could pass as a valid size). */
TEST(fuzz_preprocess_config_size_out_of_int_range) {
    const char *cases[][2] = {{"{\"size\": {\"shortest_edge\": 22477777777}}", "size"},
                              {"{\"size\": -1e300}", "size"},
                              {"{\"crop_size\": {\"height\": 224, \"width\": 4294967520}}", "crop_size"},
                              {"{\"crop_size\": 1e19}", "crop_size"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *path = test_path("preprocessor_config.json");
        write_bytes(path, cases[i][0], strlen(cases[i][0]));
        cc_preprocess_config cfg;
        cc_preprocess_config_default(&cfg, 224);
        CHECK(cc_preprocess_config_load(path, &cfg) != 0, "accepted %s", cases[i][0]);
        CHECK(strstr(cc_last_error(), "preprocessor_config.json") && strstr(cc_last_error(), cases[i][1]),
              "%s: error '%s'", cases[i][0], cc_last_error());
    }
    const char *good = "{\"size\": {\"shortest_edge\": 336}, \"crop_size\": 336.0}";
    write_bytes(test_path("preprocessor_config.json"), good, strlen(good));
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, 224);
    REQUIRE(cc_preprocess_config_load(test_path("preprocessor_config.json"), &cfg) == 0, "%s", cc_last_error());
    CHECK(cfg.size == 336 && cfg.crop_height == 336 && cfg.crop_width == 336);
}

/* fuzz_dataset: a CSV row whose caption was read before a malformed field leaked the caption; the
 * error must still name the file and line. */
TEST(fuzz_csv_bad_field_after_caption) {
    const char *text = "caption,image\nhello,\"unterminated\n";
    const char *path = test_path("bad_after_caption.csv");
    write_bytes(path, text, strlen(text));
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) != 0, "a row with an unterminated quote was accepted");
    CHECK(strstr(cc_last_error(), "bad_after_caption.csv"), "error '%s'", cc_last_error());
}

/* fuzz_dataset: COCO annotations with no "images" array (or an empty one) passed NULL to qsort and
 * bsearch; now the annotation's unknown image_id is reported. */
TEST(fuzz_coco_annotations_without_images) {
    const char *texts[] = {"{\"annotations\": [{\"image_id\": 1, \"caption\": \"a cat\"}]}",
                           "{\"images\": [], \"annotations\": [{\"image_id\": 1, \"caption\": \"a cat\"}]}"};
    for (int i = 0; i < 2; i++) {
        const char *path = test_path("no_images.json");
        write_bytes(path, texts[i], strlen(texts[i]));
        cc_dataset ds;
        REQUIRE(cc_dataset_read(path, NULL, &ds) != 0, "%s accepted", texts[i]);
        CHECK(strstr(cc_last_error(), "no_images.json") && strstr(cc_last_error(), "image_id"), "error '%s'",
              cc_last_error());
    }
}

/* fuzz_safetensors: a file with no tensors (only metadata) passed NULL to qsort. It is a valid file. */
TEST(fuzz_safetensors_without_tensors) {
    const char header[] = "{\"__metadata__\": {\"format\": \"pt\"}}";
    size_t n = sizeof header - 1;
    uint8_t file[8 + sizeof header];
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(file + 8, header, n);
    const char *path = test_path("empty.safetensors");
    write_bytes(path, file, 8 + n);
    cc_safetensors st;
    REQUIRE(cc_st_open(path, &st) == 0, "%s", cc_last_error());
    CHECK(st.n_entries == 0 && cc_st_find(&st, "x") == NULL);
    const char *format = cc_st_metadata(&st, "format");
    CHECK(format && !strcmp(format, "pt"));
    cc_st_close(&st);
}

/* fuzz_index: an IVF-PQ file whose header held vectors but not the "trained" flag loaded without
 * codebooks; reconstruct then decoded from a NULL codebook. Such a file is now rejected. */
TEST(fuzz_index_vectors_without_training) {
    enum { n = 300, d = 8 };
    float *x = malloc(sizeof(float) * n * d);
    REQUIRE(x);
    uint64_t state = 12345;
    for (int i = 0; i < n * d; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((state >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    cc_index *idx = cc_index_create("IVF4,PQ2", d, CC_METRIC_L2);
    REQUIRE(idx, "%s", cc_last_error());
    REQUIRE(cc_index_train(idx, n, x) == 0 && cc_index_add(idx, n, x) == 0, "%s", cc_last_error());
    const char *path = test_path("untrained.cci");
    REQUIRE(cc_index_save(idx, path) == 0, "%s", cc_last_error());
    cc_index_free(idx);
    free(x);
    size_t size;
    char *bytes = NULL;
    REQUIRE(cc_read_file(path, &bytes, &size) == 0 && size > 64, "%s", cc_last_error());
    bytes[52] &= (char)~1; /* FLAG_TRAINED, bit 0 of the flags word at offset 52 */
    uint32_t crc = (uint32_t)crc32(0, (const Bytef *)bytes, 124); /* the header CRC (docs/FORMATS.md) */
    for (int i = 0; i < 4; i++) bytes[124 + i] = (char)(crc >> (8 * i));
    write_bytes(path, bytes, size);
    free(bytes);
    idx = cc_index_load_flags(path, CC_INDEX_LOAD_NO_CRC);
    CHECK(idx == NULL, "loaded an untrained IVF-PQ holding vectors");
    if (idx) cc_index_free(idx);
    CHECK(strstr(cc_last_error(), "untrained.cci") && strstr(cc_last_error(), "not trained"), "error '%s'",
          cc_last_error());
}
