/* test_data_image.c — image decoding and CLIP preprocessing against PIL 9.4 (tests/reference/
 * data_image_ref.py), PIL-exact resize properties, and bad input (truncated, corrupt, huge, empty). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/image.h"
#include "data/image_internal.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "data/resample.h"
#include "engine/util.h"
#include "tests/test.h"

/* the formats image_formats_ref.py writes for the parity test */
#define IMAGE_FORMATS_TESTED "webp,gif,bmp,tiff"

/* Compares 8-bit outputs; returns the number of differing bytes and updates *max_diff. */
static int64_t count_diff_u8(const uint8_t *a, const uint8_t *b, int64_t n, int *max_diff) {
    int64_t differing = 0;
    for (int64_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) differing++;
        if (d > *max_diff) *max_diff = d;
    }
    return differing;
}

typedef struct parity_totals {
    int64_t values, identical;
    int max_diff;
    double max_float_diff;
    int images, crops;
} parity_totals;

static void check_crop(const char *dir, const char *name, const char *file, const cc_image *img, int size, int crop,
                       cc_preprocess_style style, parity_totals *totals) {
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, size);
    cfg.crop_height = cfg.crop_width = crop;
    cfg.style = style;
    const char *tag = style == CC_PREPROCESS_HF ? "hf" : "openai";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%d_%d.%s_u8.npy", dir, name, size, crop, tag);
    cc_npy expected_u8, expected_f32;
    REQUIRE(cc_npy_read(path, &expected_u8) == 0, "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/%s.%d_%d.%s.npy", dir, name, size, crop, tag);
    REQUIRE(cc_npy_read(path, &expected_f32) == 0, "%s", cc_last_error());
    int64_t n = (int64_t)crop * crop * 3;
    REQUIRE(expected_u8.count == n && expected_f32.count == n, "%s: reference has %lld values, want %lld", name,
            (long long)expected_u8.count, (long long)n);
    uint8_t *ours = malloc((size_t)n);
    float *ours_f = malloc((size_t)n * sizeof(float));
    CHECK(cc_preprocess_image_u8(&cfg, img, ours) == 0, "%s: %s", name, cc_last_error());
    CHECK(cc_preprocess_image(&cfg, img, ours_f) == 0, "%s: %s", name, cc_last_error());
    int max_diff = 0;
    int64_t differing = count_diff_u8(ours, expected_u8.data, n, &max_diff);
    if (differing)
        fprintf(stderr, "    %s %s S=%d crop=%d mode=%s: %lld of %lld bytes differ (max %d)\n", name, tag, size, crop,
                cc_image_mode_name(img->mode), (long long)differing, (long long)n, max_diff);
    totals->values += n;
    totals->identical += n - differing;
    if (max_diff > totals->max_diff) totals->max_diff = max_diff;
    /* where the bytes agree, the floats must agree to the bit (same float32 arithmetic) */
    const float *ref = expected_f32.data;
    for (int c = 0; c < 3; c++)
        for (int64_t i = 0; i < (int64_t)crop * crop; i++) {
            if (ours[i * 3 + c] != ((uint8_t *)expected_u8.data)[i * 3 + c]) continue;
            double d = fabs((double)ours_f[c * crop * crop + i] - ref[c * crop * crop + i]);
            if (d > totals->max_float_diff) totals->max_float_diff = d;
        }
    /* the file entry point (decode inside, without the extra planes for the HF style) gives the same */
    char image_path[1024];
    snprintf(image_path, sizeof image_path, "%s/%s", dir, file);
    float *from_file = malloc((size_t)n * sizeof(float));
    CHECK(cc_preprocess_file(&cfg, image_path, from_file) == 0, "%s", cc_last_error());
    CHECK(memcmp(from_file, ours_f, (size_t)n * sizeof(float)) == 0, "%s %s: cc_preprocess_file differs", name, tag);
    free(from_file);
    totals->crops++;
    free(ours);
    free(ours_f);
    cc_npy_free(&expected_u8);
    cc_npy_free(&expected_f32);
}

/* Decodes every image of a reference manifest and preprocesses it at each listed size, both styles;
 * everything must equal PIL's bytes. */
static void check_manifest(const char *dir, int min_images, int min_crops) {
    char manifest_path[1024];
    snprintf(manifest_path, sizeof manifest_path, "%s/manifest.tsv", dir);
    FILE *manifest = fopen(manifest_path, "r");
    REQUIRE(manifest != NULL);
    char line[1024], last_name[256] = "";
    cc_image img = {0};
    parity_totals totals = {0};
    int64_t decode_values = 0, decode_mismatch = 0;
    while (fgets(line, sizeof line, manifest)) {
        char name[256], file[256], mode[16];
        int size, crop;
        int n_fields = sscanf(line, "%255s %255s %d %d %15s", name, file, &size, &crop, mode);
        REQUIRE(n_fields == 5, "manifest: %s", line);
        if (strcmp(name, last_name) != 0) {
            cc_image_free(&img);
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, file);
            REQUIRE(cc_image_load(path, &img) == 0, "%s", cc_last_error());
            CHECK(strcmp(cc_image_mode_name(img.mode), mode) == 0, "%s: mode %s, PIL says %s", name,
                  cc_image_mode_name(img.mode), mode);
            snprintf(path, sizeof path, "%s/%s.rgb.npy", dir, name);
            cc_npy rgb;
            REQUIRE(cc_npy_read(path, &rgb) == 0, "%s", cc_last_error());
            REQUIRE(rgb.ndim == 3 && rgb.shape[0] == img.height && rgb.shape[1] == img.width, "%s: size %dx%d", name,
                    img.width, img.height);
            int max_diff = 0;
            int64_t differing = count_diff_u8(img.rgb, rgb.data, rgb.count, &max_diff);
            CHECK(differing == 0, "%s (%s): decoded RGB differs from PIL's convert('RGB') in %lld bytes (max %d)",
                  name, mode, (long long)differing, max_diff);
            decode_values += rgb.count;
            decode_mismatch += differing;
            cc_npy_free(&rgb);
            snprintf(last_name, sizeof last_name, "%s", name);
            totals.images++;
        }
        check_crop(dir, name, file, &img, size, crop, CC_PREPROCESS_OPENAI, &totals);
        check_crop(dir, name, file, &img, size, crop, CC_PREPROCESS_HF, &totals);
    }
    fclose(manifest);
    cc_image_free(&img);
    double identical = (double)totals.identical / (double)totals.values;
    fprintf(stderr, "    %d images, %d crops: decode %lld/%lld bytes differ; preprocess %.5f%% of %lld bytes identical, "
            "max diff %d, max float diff where equal %.3g\n", totals.images, totals.crops, (long long)decode_mismatch,
            (long long)decode_values, 100 * identical, (long long)totals.values, totals.max_diff, totals.max_float_diff);
    CHECK(totals.images >= min_images && totals.crops >= min_crops);
    /* the bar is >= 99% identical and none more than 1 level apart; the implementation is
     * bit-exact, so hold it to that */
    CHECK(identical >= 0.99, "only %.4f%% identical to PIL", 100 * identical);
    CHECK(totals.max_diff <= 1, "max difference %d levels", totals.max_diff);
    CHECK(totals.identical == totals.values, "not bit-exact to PIL: %lld bytes differ",
          (long long)(totals.values - totals.identical));
    CHECK(totals.max_float_diff == 0, "normalisation differs from the float32 reference by %g", totals.max_float_diff);
}

static void reference_seed(char *seed, size_t size) {
    snprintf(seed, size, "%llu", (unsigned long long)(test_seed() % 1000000007));
}

TEST_SLOW(image_decode_and_preprocess_match_pil) {
    const char *dir = test_path("ref");
    char seed[32];
    reference_seed(seed, sizeof seed);
    REQUIRE(test_python("data_image_ref.py", "make", dir, seed, NULL) == 0);
    check_manifest(dir, 51, 301);
}

/* WebP (lossy, lossless, alpha, animated), GIF (P / L, transparency, animated, offset frames), BMP (every
 * mode PIL writes, and 4/16-bit, bitfields, top-down, RLE, OS/2, short palettes), TIFF: written by PIL
 * (or by hand and read by PIL), compared byte for byte as PNG/JPEG are. */
TEST_SLOW(image_formats_match_pil) {
    const char *dir = test_path("formats");
    char seed[32];
    reference_seed(seed, sizeof seed);
    REQUIRE(test_python("image_formats_ref.py", "make", dir, seed, IMAGE_FORMATS_TESTED, NULL) == 0);
    check_manifest(dir, 80, 160);
}

/* ---------------------------------------------------------------------------------------------- */
/* Without Python: writers, resize properties, bad input, config files                            */
/* ---------------------------------------------------------------------------------------------- */

static uint8_t *random_rgb(cc_rng *rng, int width, int height) {
    uint8_t *rgb = malloc((size_t)width * height * 3);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            for (int c = 0; c < 3; c++) /* smooth plus noise, so JPEG keeps it close */
                rgb[((size_t)y * width + x) * 3 + c] = (uint8_t)((x * 3 + y * 2 + c * 60) % 200 + cc_rng_below(rng, 20));
    return rgb;
}

TEST(image_writers_round_trip) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int width = 17 + (int)cc_rng_below(&rng, 60), height = 9 + (int)cc_rng_below(&rng, 60);
    uint8_t *rgb = random_rgb(&rng, width, height);
    REQUIRE(cc_image_write_png(test_path("a.png"), rgb, width, height, 3) == 0, "%s", cc_last_error());
    cc_image img;
    REQUIRE(cc_image_load(test_path("a.png"), &img) == 0, "%s", cc_last_error());
    CHECK(img.width == width && img.height == height && img.mode == CC_IMAGE_RGB);
    CHECK(memcmp(img.rgb, rgb, (size_t)width * height * 3) == 0, "PNG is lossless");
    cc_image_free(&img);
    REQUIRE(cc_image_write_jpeg(test_path("a.jpg"), rgb, width, height, 3, 95) == 0, "%s", cc_last_error());
    REQUIRE(cc_image_load(test_path("a.jpg"), &img) == 0, "%s", cc_last_error());
    double err = 0;
    for (size_t i = 0; i < (size_t)width * height * 3; i++) err += fabs((double)img.rgb[i] - rgb[i]);
    CHECK(err / ((double)width * height * 3) < 12, "JPEG q95 mean error %.2f", err / ((double)width * height * 3));
    cc_image_free(&img);
    /* gray: written with 1 channel, read back as mode L replicated */
    REQUIRE(cc_image_write_png(test_path("g.png"), rgb, width, height, 1) == 0);
    REQUIRE(cc_image_load(test_path("g.png"), &img) == 0);
    CHECK(img.mode == CC_IMAGE_L && img.rgb[0] == rgb[0] && img.rgb[1] == rgb[0] && img.rgb[2] == rgb[0]);
    cc_image_free(&img);
    /* decoding from memory and probing */
    char *data;
    size_t size;
    REQUIRE(cc_read_file(test_path("a.jpg"), &data, &size) == 0);
    int w, h;
    CHECK(cc_image_probe(data, size, "upload", &w, &h) == 0 && w == width && h == height);
    CHECK(cc_image_decode(data, size, "upload", &img) == 0 && img.width == width);
    cc_image_free(&img);
    free(data);
    free(rgb);
}

TEST(resize_properties) {
    /* a constant image stays constant at any size; the SIMD passes equal the scalar definitions */
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int trial = 0; trial < 40; trial++) {
        int width = 1 + (int)cc_rng_below(&rng, 300), height = 1 + (int)cc_rng_below(&rng, 300);
        int out_w = 1 + (int)cc_rng_below(&rng, 260), out_h = 1 + (int)cc_rng_below(&rng, 260);
        if (trial % 4 == 0) out_w = width; /* one pass only: vertical */
        if (trial % 4 == 1) out_h = height; /* horizontal only */
        int channels = 1 + (int)cc_rng_below(&rng, 4);
        uint8_t *src = malloc((size_t)width * height * channels);
        uint8_t value = (uint8_t)cc_rng_below(&rng, 256);
        memset(src, value, (size_t)width * height * channels);
        uint8_t *out = malloc((size_t)out_w * out_h * channels);
        REQUIRE(cc_resize_bicubic_u8(src, width, height, channels, out_w, out_h, 0, 0, out_w, out_h, out) == 0);
        int constant = 1;
        for (size_t i = 0; i < (size_t)out_w * out_h * channels; i++) constant &= out[i] == value;
        CHECK(constant, "constant %d image %dx%d -> %dx%d changed", value, width, height, out_w, out_h);
        /* random content: the horizontal and vertical passes against their scalar definitions */
        for (size_t i = 0; i < (size_t)width * height * channels; i++) src[i] = (uint8_t)cc_rng_below(&rng, 256);
        cc_resample_coeffs coeffs;
        REQUIRE(cc_resample_coeffs_init(&coeffs, width, out_w, 0, out_w) == 0);
        uint8_t *fast = malloc((size_t)out_w * height * channels), *slow = malloc((size_t)out_w * height * channels);
        cc_resample_horizontal(src, (size_t)width * channels, 0, height, channels, &coeffs, fast, (size_t)out_w * channels);
        cc_resample_horizontal_scalar(src, (size_t)width * channels, 0, height, channels, &coeffs, slow, (size_t)out_w * channels);
        CHECK(memcmp(fast, slow, (size_t)out_w * height * channels) == 0, "horizontal pass %dx%d -> %d, %d channels", width,
              height, out_w, channels);
        cc_resample_coeffs_free(&coeffs);
        REQUIRE(cc_resample_coeffs_init(&coeffs, height, out_h, 0, out_h) == 0);
        uint8_t *vfast = malloc((size_t)width * out_h * channels), *vslow = malloc((size_t)width * out_h * channels);
        cc_resample_vertical(src, (size_t)width * channels, width * channels, &coeffs, 0, vfast, (size_t)width * channels);
        cc_resample_vertical_scalar(src, (size_t)width * channels, width * channels, &coeffs, 0, vslow, (size_t)width * channels);
        CHECK(memcmp(vfast, vslow, (size_t)width * out_h * channels) == 0, "vertical pass %dx%d -> %d", width, height, out_h);
        /* a window of the result equals the same region of the full result */
        uint8_t *full = malloc((size_t)out_w * out_h * channels);
        REQUIRE(cc_resize_bicubic_u8(src, width, height, channels, out_w, out_h, 0, 0, out_w, out_h, full) == 0);
        int x0 = (int)cc_rng_below(&rng, (uint64_t)out_w), y0 = (int)cc_rng_below(&rng, (uint64_t)out_h);
        int ww = 1 + (int)cc_rng_below(&rng, (uint64_t)(out_w - x0)), wh = 1 + (int)cc_rng_below(&rng, (uint64_t)(out_h - y0));
        uint8_t *window = malloc((size_t)ww * wh * channels);
        REQUIRE(cc_resize_bicubic_u8(src, width, height, channels, out_w, out_h, x0, y0, ww, wh, window) == 0);
        for (int y = 0; y < wh; y++)
            CHECK(memcmp(window + (size_t)y * ww * channels, full + ((size_t)(y0 + y) * out_w + x0) * channels, (size_t)ww * channels) == 0,
                  "window row %d", y);
        cc_resample_coeffs_free(&coeffs);
        free(window);
        free(full);
        free(vfast);
        free(vslow);
        free(fast);
        free(slow);
        free(src);
        free(out);
    }
}

TEST(preprocess_sizes_and_offsets) {
    int w, h;
    cc_preprocess_resized_size(224, 640, 480, &w, &h);
    CHECK(w == 298 && h == 224, "%dx%d", w, h); /* int(224 * 640 / 480) = int(298.67) */
    cc_preprocess_resized_size(224, 1080, 1920, &w, &h);
    CHECK(w == 224 && h == 398, "%dx%d", w, h);
    cc_preprocess_resized_size(224, 5, 3, &w, &h);
    CHECK(w == 373 && h == 224, "%dx%d", w, h); /* int(224 * 5 / 3) = 373 */
    /* a 1x1 image upscales to a constant crop; openai and HF agree on RGB */
    uint8_t pixel[3] = {10, 200, 77};
    cc_image img = {1, 1, pixel, NULL, NULL, NULL, CC_IMAGE_RGB, 1};
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, 224);
    float *out = malloc(3 * 224 * 224 * sizeof(float));
    REQUIRE(cc_preprocess_image(&cfg, &img, out) == 0, "%s", cc_last_error());
    for (int c = 0; c < 3; c++) {
        float want = ((float)pixel[c] / 255.0f - cfg.mean[c]) / cfg.std[c];
        CHECK(out[c * 224 * 224] == want && out[c * 224 * 224 + 224 * 224 - 1] == want, "channel %d", c);
    }
    free(out);
}

TEST(image_rejects_bad_input) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int width = 64, height = 48;
    uint8_t *rgb = random_rgb(&rng, width, height);
    uint8_t *jpeg, *png;
    size_t jpeg_size, png_size;
    REQUIRE(cc_image_encode_jpeg(rgb, width, height, 3, 90, &jpeg, &jpeg_size) == 0);
    REQUIRE(cc_image_encode_png(rgb, width, height, 3, &png, &png_size) == 0);
    cc_image img;
    /* truncated */
    CHECK(cc_image_decode(jpeg, jpeg_size / 2, "half.jpg", &img) != 0 && strstr(cc_last_error(), "half.jpg") &&
          strstr(cc_last_error(), "truncated"), "%s", cc_last_error());
    CHECK(cc_image_decode(png, png_size / 2, "half.png", &img) != 0 && strstr(cc_last_error(), "half.png"), "%s", cc_last_error());
    CHECK(cc_image_decode(jpeg, 10, "tiny.jpg", &img) != 0);
    /* corrupt PNG data (CRC mismatch) */
    uint8_t *bad = malloc(png_size);
    memcpy(bad, png, png_size);
    bad[png_size / 2] ^= 0x55;
    CHECK(cc_image_decode(bad, png_size, "crc.png", &img) != 0 && strstr(cc_last_error(), "crc.png"), "%s", cc_last_error());
    /* garbage inside the JPEG entropy data: decodes (as libjpeg and PIL do) or fails cleanly */
    memcpy(bad, jpeg, jpeg_size);
    for (int k = 0; k < 40; k++) bad[jpeg_size / 3 + cc_rng_below(&rng, jpeg_size / 3)] = (uint8_t)cc_rng_below(&rng, 256);
    if (cc_image_decode(bad, jpeg_size, "noisy.jpg", &img) == 0) cc_image_free(&img);
    free(bad);
    /* huge dimensions are refused from the header, before any allocation */
    uint8_t *huge = malloc(jpeg_size);
    memcpy(huge, jpeg, jpeg_size);
    int patched = 0;
    for (size_t i = 2; i + 9 < jpeg_size && !patched; i++)
        if (huge[i] == 0xff && (huge[i + 1] == 0xc0 || huge[i + 1] == 0xc2)) { /* SOF: len(2) precision(1) height(2) width(2) */
            huge[i + 5] = 0xfd, huge[i + 6] = 0xe8; /* 65000 */
            huge[i + 7] = 0xfd, huge[i + 8] = 0xe8;
            patched = 1;
        }
    REQUIRE(patched);
    CHECK(cc_image_decode(huge, jpeg_size, "bomb.jpg", &img) != 0 && strstr(cc_last_error(), "megapixels"), "%s", cc_last_error());
    memcpy(huge, jpeg, jpeg_size);
    for (size_t i = 2; i + 9 < jpeg_size; i++)
        if (huge[i] == 0xff && huge[i + 1] == 0xc0) {
            huge[i + 5] = huge[i + 6] = 0; /* height 0 */
            break;
        }
    CHECK(cc_image_decode(huge, jpeg_size, "zero.jpg", &img) != 0, "zero-height JPEG accepted");
    free(huge);
    /* a PNG whose header claims 20000 x 20000, and one claiming width 0 (CRC fixed, so the size check refuses) */
    uint8_t *header = malloc(png_size);
    memcpy(header, png, png_size);
    header[16] = 0, header[17] = 0, header[18] = 0x4e, header[19] = 0x20;
    header[20] = 0, header[21] = 0, header[22] = 0x4e, header[23] = 0x20;
    uint32_t crc = (uint32_t)crc32(0, header + 12, 17);
    header[29] = (uint8_t)(crc >> 24), header[30] = (uint8_t)(crc >> 16), header[31] = (uint8_t)(crc >> 8), header[32] = (uint8_t)crc;
    CHECK(cc_image_decode(header, png_size, "bomb.png", &img) != 0 && strstr(cc_last_error(), "megapixels"), "%s", cc_last_error());
    header[18] = header[19] = 0;
    crc = (uint32_t)crc32(0, header + 12, 17);
    header[29] = (uint8_t)(crc >> 24), header[30] = (uint8_t)(crc >> 16), header[31] = (uint8_t)(crc >> 8), header[32] = (uint8_t)crc;
    CHECK(cc_image_decode(header, png_size, "zero.png", &img) != 0 && strstr(cc_last_error(), "zero.png"), "%s", cc_last_error());
    free(header);
    cc_image_options small_limit = {0};
    small_limit.max_pixels = 100;
    CHECK(cc_image_decode_ex(png, png_size, "limited.png", &small_limit, &img) != 0 && strstr(cc_last_error(), "megapixels"),
          "%s", cc_last_error());
    /* not an image, empty */
    CHECK(cc_image_decode("hello world, not an image", 25, "notes.txt", &img) != 0 && strstr(cc_last_error(), "not a JPEG, PNG, WebP, GIF, BMP or TIFF"));
    CHECK(cc_image_decode("", 0, "empty.png", &img) != 0 && strstr(cc_last_error(), "empty"));
    CHECK(cc_image_load(test_path("missing.png"), &img) != 0 && strstr(cc_last_error(), "missing.png"));
    /* a 1x1 image of each format decodes and preprocesses */
    uint8_t one[3] = {200, 100, 50};
    REQUIRE(cc_image_write_png(test_path("one.png"), one, 1, 1, 3) == 0);
    REQUIRE(cc_image_write_jpeg(test_path("one.jpg"), one, 1, 1, 3, 90) == 0);
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, 224);
    float *out = malloc(3 * 224 * 224 * sizeof(float));
    CHECK(cc_preprocess_file(&cfg, test_path("one.png"), out) == 0 && cc_preprocess_file(&cfg, test_path("one.jpg"), out) == 0,
          "%s", cc_last_error());
    CHECK(cc_preprocess_file(&cfg, test_path("missing.jpg"), out) != 0 && strstr(cc_last_error(), "missing.jpg"));
    free(out);
    free(jpeg);
    free(png);
    free(rgb);
}

TEST(preprocess_config_files) {
    cc_preprocess_config cfg;
    const char *dir = test_path("model");
    cc_mkdir_p(dir);
    char path[1024];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    const char hf[] = "{\"crop_size\": {\"height\": 336, \"width\": 336}, \"do_center_crop\": true, \"image_mean\": "
                      "[0.5, 0.25, 0.125], \"image_std\": [0.2, 0.3, 0.4], \"resample\": 3, \"size\": {\"shortest_edge\": 336}}";
    REQUIRE(cc_write_file_atomic(path, hf, sizeof hf - 1) == 0);
    cc_preprocess_config_default(&cfg, 0);
    REQUIRE(cc_preprocess_config_load(dir, &cfg) == 0, "%s", cc_last_error());
    CHECK(cfg.size == 336 && cfg.crop_height == 336 && cfg.crop_width == 336);
    CHECK(cfg.mean[0] == 0.5f && cfg.mean[2] == 0.125f && cfg.std[1] == 0.3f);
    const char old[] = "{\"crop_size\": 224, \"size\": 224, \"image_mean\": [0.48145466, 0.4578275, 0.40821073]}";
    REQUIRE(cc_write_file_atomic(path, old, sizeof old - 1) == 0);
    REQUIRE(cc_preprocess_config_load(path, &cfg) == 0, "%s", cc_last_error());
    CHECK(cfg.size == 224 && cfg.crop_width == 224 && cfg.std[0] == 0.26862954f);
    const char bad_resample[] = "{\"size\": 224, \"resample\": 2}";
    REQUIRE(cc_write_file_atomic(path, bad_resample, sizeof bad_resample - 1) == 0);
    CHECK(cc_preprocess_config_load(dir, &cfg) != 0 && strstr(cc_last_error(), "resample"), "%s", cc_last_error());
    const char bad_json[] = "{\"size\": 224,\n \"crop_size\": }";
    REQUIRE(cc_write_file_atomic(path, bad_json, sizeof bad_json - 1) == 0);
    CHECK(cc_preprocess_config_load(dir, &cfg) != 0 && strstr(cc_last_error(), "line 2"), "%s", cc_last_error());
    const char bad_mean[] = "{\"image_mean\": [0.5, 0.5]}";
    REQUIRE(cc_write_file_atomic(path, bad_mean, sizeof bad_mean - 1) == 0);
    CHECK(cc_preprocess_config_load(dir, &cfg) != 0 && strstr(cc_last_error(), "image_mean"));
    CHECK(cc_preprocess_config_load(test_path("nowhere"), &cfg) != 0);
}

TEST(jpeg_region_decode_equals_full_decode) {
    /* the region decoder (cropped + skipped scanlines) gives the bytes of a full decode, and the file
     * pipeline that uses it equals decode-then-preprocess */
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    for (int trial = 0; trial < 12; trial++) {
        int width = 40 + (int)cc_rng_below(&rng, 400), height = 40 + (int)cc_rng_below(&rng, 400);
        int channels = trial % 3 == 2 ? 1 : 3;
        uint8_t *pixels = random_rgb(&rng, width, height);
        uint8_t *jpeg;
        size_t size;
        REQUIRE(cc_image_encode_jpeg(pixels, width, height, channels, 70 + (int)cc_rng_below(&rng, 30), &jpeg, &size) == 0);
        cc_image full;
        REQUIRE(cc_image_decode(jpeg, size, "full", &full) == 0);
        for (int k = 0; k < 10; k++) {
            int x0 = (int)cc_rng_below(&rng, (uint64_t)width), y0 = (int)cc_rng_below(&rng, (uint64_t)height);
            int x1 = x0 + 1 + (int)cc_rng_below(&rng, (uint64_t)(width - x0)), y1 = y0 + 1 + (int)cc_rng_below(&rng, (uint64_t)(height - y0));
            cc_image_region region;
            REQUIRE(cc_jpeg_decode_region(jpeg, size, "region", x0, x1, y0, y1, &region) == 0, "%s", cc_last_error());
            CHECK(region.x0 <= x0 && region.x0 + region.width >= x1 && region.y0 == y0 && region.height == y1 - y0);
            int differ = 0;
            for (int y = y0; y < y1; y++)
                differ += memcmp(region.rgb + ((size_t)(y - y0) * region.width + (x0 - region.x0)) * 3,
                                 full.rgb + ((size_t)y * width + x0) * 3, (size_t)(x1 - x0) * 3) != 0;
            CHECK(differ == 0, "%dx%d (%d channels) region x[%d,%d) y[%d,%d): %d rows differ", width, height, channels, x0, x1,
                  y0, y1, differ);
            free(region.rgb);
        }
        cc_preprocess_config cfg;
        cc_preprocess_config_default(&cfg, 16 + (int)cc_rng_below(&rng, 200));
        size_t n = (size_t)3 * cfg.size * cfg.size;
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        CHECK(cc_preprocess_image(&cfg, &full, a) == 0 && cc_preprocess_memory(&cfg, jpeg, size, "mem", b) == 0);
        CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%dx%d at S=%d: file pipeline differs", width, height, cfg.size);
        /* a file cut in its last rows (outside the rows the crop needs) is still refused */
        CHECK(cc_preprocess_memory(&cfg, jpeg, size - size / 10, "cut.jpg", b) != 0 && strstr(cc_last_error(), "cut.jpg") &&
              strstr(cc_last_error(), "truncated"), "trial %d %dx%d ch %d: %s", trial, width, height, channels, cc_last_error());
        free(a);
        free(b);
        cc_image_free(&full);
        free(jpeg);
        free(pixels);
    }
}
