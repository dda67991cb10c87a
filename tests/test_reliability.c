/* test_reliability.c — regression tests for inputs a hostile user found by hand (issue 14):
 * overflowing k-means distances, invalid UTF-8 in vocabularies, mismatched caches, bad config
 * fields, over-long paths, malformed safetensors metadata, id overflow, and similar. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/util.h"
#include <cjson/cJSON.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/tokenizer.h"
#include "engine/clip.h"
#include "engine/safetensors.h"
#include "data/tokenizer_internal.h"
#include "index/kmeans.h"
#include "tests/test.h"

/* Finite vectors near 1e20: every squared distance overflows float. k-means++ must still pick k
 * distinct data rows as centres (it read before its buffer when no candidate had a finite potential). */
TEST(reliability_kmeans_plusplus_survives_overflowing_distances) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int dims[2] = {8, 48}; /* the small-dimension loop and the distance kernel */
    for (int di = 0; di < 2; di++) {
        int d = dims[di], k = 6;
        int64_t n = 60;
        float *x = malloc(sizeof(float) * (size_t)(n * d));
        for (int64_t i = 0; i < n * d; i++) x[i] = 1e20f * (float)cc_rng_normal(&rng) + 3e20f * (float)(i / d % k);
        float *out = malloc(sizeof(float) * (size_t)(k * d));
        cc_kmeans_params p;
        cc_kmeans_default_params(&p);
        p.seed = test_seed();
        p.init = CC_KMEANS_INIT_PLUSPLUS;
        p.niter = 3;
        double objective = 0;
        int rc = cc_kmeans(x, n, d, k, &p, out, &objective);
        CHECK(rc == 0, "d=%d: %s", d, cc_last_error());
        CHECK(isfinite(objective) && objective > 0, "d=%d: objective %g", d, objective);
        for (int64_t i = 0; rc == 0 && i < (int64_t)k * d; i++) {
            if (!isfinite(out[i])) {
                CHECK(isfinite(out[i]), "d=%d: centroid value %lld is %g", d, (long long)i, out[i]);
                break;
            }
        }
        free(x), free(out);
    }
}

/* A vocab.json whose byte tokens are complete, plus one key of `n_bad` invalid UTF-8 bytes (id 512). */
static void write_vocab_with_invalid_key(const char *vocab, const char *merges, int n_bad) {
    uint32_t byte_unicode[256];
    uint8_t byte_order[256];
    cc_bytes_to_unicode(byte_unicode, byte_order);
    char *json = malloc(24 * 512 + (size_t)n_bad + 64);
    size_t w = 0;
    json[w++] = '{';
    for (int b = 0; b < 512; b++) {
        char key[8];
        size_t n = cc_utf8_encode(byte_unicode[b % 256], key);
        json[w++] = '"';
        if (n == 1 && (key[0] == '"' || key[0] == '\\')) json[w++] = '\\';
        memcpy(json + w, key, n);
        w += n;
        w += (size_t)sprintf(json + w, "%s\": %d, ", b < 256 ? "" : "</w>", b);
    }
    json[w++] = '"';
    memset(json + w, 0xff, (size_t)n_bad);
    w += (size_t)n_bad;
    w += (size_t)sprintf(json + w, "\": 512, \"<|startoftext|>\": 513, \"<|endoftext|>\": 514}");
    REQUIRE(cc_write_file_atomic(vocab, json, w) == 0);
    REQUIRE(cc_write_file_atomic(merges, "#version: 0.2\n", 14) == 0);
    free(json);
}

/* Each invalid byte of a vocabulary key decodes to U+FFFD, 3 bytes: the decoded-token buffer was
 * sized from the raw key lengths and overflowed. */
TEST(reliability_vocab_key_with_invalid_utf8) {
    const char *vocab = test_path("vocab.json"), *merges = test_path("merges.txt");
    int n_bad = 3000;
    write_vocab_with_invalid_key(vocab, merges, n_bad);
    cc_tokenizer *tok = cc_tokenizer_load_hf(vocab, merges);
    REQUIRE(tok, "%s", cc_last_error());
    int32_t id = 512;
    size_t len = 0;
    char *text = cc_tokenizer_decode(tok, &id, 1, &len);
    REQUIRE(text, "%s", cc_last_error());
    CHECK(len == 3 * (size_t)n_bad, "decoded %zu bytes, expected %d", len, 3 * n_bad);
    for (size_t i = 0; i + 2 < len; i += 3) {
        if (memcmp(text + i, "\xef\xbf\xbd", 3) != 0) {
            CHECK(0, "byte %zu of the decoded key is not U+FFFD", i);
            break;
        }
    }
    free(text);
    cc_tokenizer_free(tok);
}

/* Parses the tiny built-in config with one field replaced by a JSON value (section NULL: top level);
 * returns the parse status, the error in cc_last_error(). */
static int parse_config_with(const char *section, const char *key, const char *value_json) {
    cc_clip_config cfg;
    if (cc_clip_config_builtin("tiny", &cfg) != 0) return 99;
    char *text = cc_clip_config_json(&cfg);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *obj = section ? cJSON_GetObjectItemCaseSensitive(root, section) : root;
    cJSON_ReplaceItemInObjectCaseSensitive(obj, key, cJSON_Parse(value_json));
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    int status = cc_clip_config_parse(text, strlen(text), "cfg/config.json", &cfg);
    free(text);
    return status;
}

/* Every size is bounded before it is multiplied: layers, widths, image grids, channels. */
TEST(reliability_config_sizes_are_bounded_first) {
    REQUIRE(parse_config_with(NULL, "projection_dim", "128") == 0, "%s", cc_last_error());
    static const struct { const char *section, *key, *value, *says; } bad[] = {
        {"text_config", "num_hidden_layers", "134217728", "text_config.num_hidden_layers"},
        {"vision_config", "num_hidden_layers", "100000000", "vision_config.num_hidden_layers"},
        {"vision_config", "image_size", "1048576", "vision_config.image_size"},
        {"vision_config", "image_size", "4096", "patches"},
        {"text_config", "hidden_size", "2147483648", "text_config.hidden_size"},
        {"text_config", "hidden_size", "1e300", "text_config.hidden_size"},
        {"text_config", "intermediate_size", "2.5", "text_config.intermediate_size"},
        {"text_config", "vocab_size", "-1", "text_config.vocab_size"},
        {NULL, "projection_dim", "1e10", "projection_dim"},
        {"vision_config", "num_channels", "1", "vision_config.num_channels"},
        {"vision_config", "num_channels", "4", "vision_config.num_channels"},
        {"vision_config", "layer_norm_eps", "-1", "vision_config.layer_norm_eps"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int status = parse_config_with(bad[i].section, bad[i].key, bad[i].value);
        CHECK(status == -1 && strstr(cc_last_error(), "cfg/config.json") && strstr(cc_last_error(), bad[i].says),
              "%s = %s: status %d, error '%s'", bad[i].key, bad[i].value, status, cc_last_error());
    }
    /* each field within bounds, their product not: 512 layers of width 16384 */
    cc_clip_config cfg;
    REQUIRE(cc_clip_config_builtin("tiny", &cfg) == 0);
    cfg.text.num_layers = 512, cfg.text.hidden_size = 16384, cfg.text.num_heads = 16, cfg.text.intermediate_size = 65536;
    char *text = cc_clip_config_json(&cfg);
    CHECK(cc_clip_config_parse(text, strlen(text), "cfg/config.json", &cfg) == -1 && strstr(cc_last_error(), "parameters"),
          "%s", cc_last_error());
    free(text);
    /* cc_clip_new refuses what the parser would (a config built in code) */
    REQUIRE(cc_clip_config_builtin("tiny", &cfg) == 0);
    cfg.vision.num_channels = 1;
    CHECK(cc_clip_new(&cfg, NULL) == NULL);
    cfg.vision.num_channels = 3, cfg.text.num_layers = 1 << 27;
    CHECK(cc_clip_new(&cfg, NULL) == NULL);
}

/* A Karpathy filepath + filename longer than the path buffer: a clear error naming the file, not
 * a read past the buffer with snprintf's would-be length. */
TEST(reliability_karpathy_path_longer_than_buffer) {
    size_t long_len = 9000;
    char *name = malloc(long_len + 1);
    memset(name, 'a', long_len);
    name[long_len] = 0;
    size_t size = long_len + 256;
    char *json = malloc(size);
    snprintf(json, size, "{\"images\": [{\"filepath\": \"dir\", \"filename\": \"%s.jpg\", \"split\": \"train\", "
             "\"sentences\": [{\"raw\": \"a caption\"}]}], \"dataset\": \"coco\"}", name);
    const char *path = test_path("dataset_long.json");
    REQUIRE(cc_write_file_atomic(path, json, strlen(json)) == 0);
    cc_dataset ds;
    int status = cc_dataset_read(path, NULL, &ds);
    CHECK(status != 0 && strstr(cc_last_error(), "dataset_long.json") && strstr(cc_last_error(), "longer than"),
          "status %d: %s", status, cc_last_error());
    if (status == 0) cc_dataset_free(&ds);
    free(name), free(json);
}

/* A safetensors file with this header and data_size zero bytes of data. */
static void write_safetensors(const char *path, const char *header, size_t data_size) {
    size_t len = strlen(header), total = 8 + len + data_size;
    unsigned char *bytes = calloc(1, total);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(bytes + 8, header, len);
    REQUIRE(cc_write_file_atomic(path, (const char *)bytes, total) == 0);
    free(bytes);
}

static int st_open_fails_with(const char *header, size_t data_size, const char *says) {
    const char *path = test_path("w.safetensors");
    write_safetensors(path, header, data_size);
    cc_safetensors st;
    if (cc_st_open(path, &st) == 0) {
        cc_st_close(&st);
        return 0;
    }
    return strstr(cc_last_error(), "w.safetensors") && strstr(cc_last_error(), says);
}

/* __metadata__ that is no object, or given twice; an empty tensor between two overlapping ones. */
TEST(reliability_safetensors_metadata_and_overlaps) {
    const char *a = "\"a\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [0, 400]}";
    char header[1024];
    snprintf(header, sizeof header, "{\"__metadata__\": {\"format\": \"pt\"}, %s}", a);
    const char *path = test_path("w.safetensors");
    write_safetensors(path, header, 400);
    cc_safetensors st;
    REQUIRE(cc_st_open(path, &st) == 0, "%s", cc_last_error());
    CHECK(cc_st_metadata(&st, "format") && !strcmp(cc_st_metadata(&st, "format"), "pt"));
    cc_st_close(&st);
    snprintf(header, sizeof header, "{\"__metadata__\": [\"pt\", 2], %s}", a);
    CHECK(st_open_fails_with(header, 400, "__metadata__"), "%s", cc_last_error());
    snprintf(header, sizeof header, "{\"__metadata__\": \"text\", %s}", a);
    CHECK(st_open_fails_with(header, 400, "__metadata__"), "%s", cc_last_error());
    snprintf(header, sizeof header, "{\"__metadata__\": {\"x\": \"1\"}, %s, \"__metadata__\": {\"y\": \"2\"}}", a);
    CHECK(st_open_fails_with(header, 400, "twice"), "%s", cc_last_error());
    snprintf(header, sizeof header,
             "{%s, \"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [200, 200]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [240, 640]}}", a);
    CHECK(st_open_fails_with(header, 640, "overlap"), "%s", cc_last_error());
    /* an empty tensor anywhere is fine when the real ones do not overlap */
    snprintf(header, sizeof header,
             "{%s, \"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [200, 200]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [400, 800]}}", a);
    write_safetensors(path, header, 800);
    CHECK(cc_st_open(path, &st) == 0, "%s", cc_last_error());
    cc_st_close(&st);
}

/* A weight stored as I32 with the right shape: the error says the dtype, not "mis-shaped". */
TEST(reliability_integer_weight_error_names_dtype) {
    const char *dir = test_path("m");
    REQUIRE(cc_mkdir_p(dir) == 0);
    cc_clip_config cfg;
    const char *cfg_text = "{\"text_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                           " \"num_attention_heads\": 2, \"vocab_size\": 50, \"max_position_embeddings\": 9},"
                           " \"vision_config\": {\"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,"
                           " \"num_attention_heads\": 2, \"image_size\": 12, \"patch_size\": 4}, \"projection_dim\": 8}";
    REQUIRE(cc_clip_config_parse(cfg_text, strlen(cfg_text), "config.json", &cfg) == 0, "%s", cc_last_error());
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    REQUIRE(cc_write_file_atomic(path, cfg_text, strlen(cfg_text)) == 0);
    cc_clip_model *m = cc_clip_new(&cfg, NULL);
    REQUIRE(m && cc_clip_init_random(m, 3) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(cc_clip_save_weights(m, path, CC_F32) == 0, "%s", cc_last_error());
    cc_clip_free(m);
    /* F32 -> I32 in the header of text_projection.weight: same length, same element size */
    char *bytes;
    size_t size;
    REQUIRE(cc_read_file(path, &bytes, &size) == 0);
    char *name = strstr(bytes + 8, "\"text_projection.weight\"");
    REQUIRE(name);
    char *dtype = strstr(name, "F32");
    REQUIRE(dtype);
    memcpy(dtype, "I32", 3);
    REQUIRE(cc_write_file_atomic(path, bytes, size) == 0);
    free(bytes);
    m = cc_clip_load(dir, NULL);
    CHECK(m == NULL);
    CHECK(strstr(cc_last_error(), "text_projection.weight (file I32"), "%s", cc_last_error());
    cc_clip_free(m);
}

/* An .npy file with this header (padded with spaces to a multiple of 64, as numpy does) and
 * data_size bytes of float data. */
static void write_npy_raw(const char *path, const char *dict, size_t data_size) {
    size_t len = strlen(dict), header_len = (10 + len + 1 + 63) / 64 * 64 - 10;
    size_t total = 10 + header_len + data_size;
    unsigned char *bytes = calloc(1, total);
    memcpy(bytes, "\x93NUMPY\x01\x00", 8);
    bytes[8] = (unsigned char)(header_len & 0xff), bytes[9] = (unsigned char)(header_len >> 8);
    memset(bytes + 10, ' ', header_len);
    memcpy(bytes + 10, dict, len);
    bytes[10 + header_len - 1] = '\n';
    REQUIRE(cc_write_file_atomic(path, (const char *)bytes, total) == 0);
    free(bytes);
}

/* The .npy header is a dict: a key inside a string value is no key (strstr found it first). */
TEST(reliability_npy_header_parsed_as_dict) {
    const char *path = test_path("a.npy");
    cc_npy arr;
    write_npy_raw(path, "{'descr': '<f4', 'note': \"'shape': (100,)\", 'fortran_order': False, 'shape': (2, 2), }", 400);
    int status = cc_npy_read(path, &arr);
    CHECK(status != 0 && strstr(cc_last_error(), "a.npy") && strstr(cc_last_error(), "note"),
          "status %d (shape [%lld]): %s", status, status == 0 ? (long long)arr.shape[0] : -1LL, cc_last_error());
    if (status == 0) cc_npy_free(&arr);
    /* keys in any order, double quotes, no trailing comma: fine */
    write_npy_raw(path, "{\"shape\": (2,3), \"fortran_order\": False, \"descr\": \"<f4\"}", 24);
    REQUIRE(cc_npy_read(path, &arr) == 0, "%s", cc_last_error());
    CHECK(arr.ndim == 2 && arr.shape[0] == 2 && arr.shape[1] == 3 && arr.dtype == CC_NPY_F32);
    cc_npy_free(&arr);
    static const char *const bad[] = {
        "{'descr': '<f4', 'fortran_order': False}",                               /* no shape */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (3,)}", /* twice */
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", /* no comma */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_npy_raw(path, bad[i], 64);
        status = cc_npy_read(path, &arr);
        CHECK(status != 0 && strstr(cc_last_error(), "a.npy"), "header %s: status %d", bad[i], status);
        if (status == 0) cc_npy_free(&arr);
    }
}

/* A TSV with an image column but no caption column: the error names the caption column. */
TEST(reliability_missing_caption_column_named) {
    const char *path = test_path("pairs.tsv");
    const char text[] = "image\tlabel\na.jpg\ta cat\n";
    REQUIRE(cc_write_file_atomic(path, text, sizeof text - 1) == 0);
    cc_dataset ds;
    int status = cc_dataset_read(path, NULL, &ds);
    CHECK(status != 0 && strstr(cc_last_error(), "no caption column 'caption'"), "status %d: %s", status, cc_last_error());
    if (status == 0) cc_dataset_free(&ds);
    const char text2[] = "caption\tpath\na cat\ta.jpg\n";
    REQUIRE(cc_write_file_atomic(path, text2, sizeof text2 - 1) == 0);
    status = cc_dataset_read(path, NULL, &ds);
    CHECK(status != 0 && strstr(cc_last_error(), "no image column 'image'"), "status %d: %s", status, cc_last_error());
    if (status == 0) cc_dataset_free(&ds);
}

/* A save killed by SIGKILL leaves NAME.tmp.PID behind: the next save in that directory removes
 * those of dead processes (and keeps those of live ones). */
TEST(reliability_stale_temp_files_are_cleaned) {
    pid_t child = fork();
    if (child == 0) _exit(0);
    REQUIRE(child > 0);
    waitpid(child, NULL, 0); /* now a PID with no process */
    char dead[512], live[512], other[512];
    snprintf(dead, sizeof dead, "%s/step_3.safetensors.tmp.%ld", test_tmpdir(), (long)child);
    snprintf(live, sizeof live, "%s/step_2.safetensors.tmp.%ld", test_tmpdir(), (long)getppid());
    snprintf(other, sizeof other, "%s/notes.tmp.txt", test_tmpdir());
    const char *paths[3] = {dead, live, other};
    for (int i = 0; i < 3; i++) {
        FILE *fp = fopen(paths[i], "w");
        REQUIRE(fp);
        fputs("partial", fp);
        fclose(fp);
    }
    REQUIRE(cc_write_file_atomic(test_path("x.bin"), "data", 4) == 0, "%s", cc_last_error());
    CHECK(!cc_file_exists(dead), "the dead process's temporary file is still there");
    CHECK(cc_file_exists(live), "a live process's temporary file was removed");
    CHECK(cc_file_exists(other), "a file that is no temporary file was removed");
}

/* Devices and directories are no files to read whole (/dev/zero allocated gigabytes). */
TEST(reliability_read_file_refuses_devices) {
    char *data = NULL;
    size_t size;
    CHECK(cc_read_file("/dev/zero", &data, &size) != 0 && strstr(cc_last_error(), "not a regular file"), "%s",
          cc_last_error());
    CHECK(cc_read_file(test_tmpdir(), &data, &size) != 0);
    cc_image img;
    CHECK(cc_image_load("/dev/zero", &img) != 0 && strstr(cc_last_error(), "/dev/zero"), "%s", cc_last_error());
    REQUIRE(cc_write_file_atomic(test_path("small.txt"), "abc", 3) == 0);
    REQUIRE(cc_read_file(test_path("small.txt"), &data, &size) == 0 && size == 3 && !strcmp(data, "abc"));
    free(data);
}
