/* fuzz_image.c — libFuzzer target: image decoding and preprocessing through the format-neutral entry
 * points (cc_image_probe, cc_image_decode_ex from memory, cc_image_load_ex from a file with fast JPEG
 * decoding), so every format the decoder dispatches to by signature is covered; a decoded image is
 * then preprocessed (openai and Hugging Face arithmetic) and an 8-bit crop made. */
#include "data/image.h"
#include "data/preprocess.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_PIXELS (1 << 20) /* bigger images are refused, as a server refuses them: keeps runs fast */
#define CROP 32

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

static void preprocess(const cc_image *img) {
    if ((int64_t)img->width * img->height > MAX_PIXELS || img->width < 1 || img->height < 1) abort();
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, CROP);
    static float out[3 * CROP * CROP];
    static uint8_t out_u8[CROP * CROP * 3];
    cc_preprocess_image(&cfg, img, out);
    cfg.style = CC_PREPROCESS_HF;
    cc_preprocess_image(&cfg, img, out);
    cc_preprocess_image_u8(&cfg, img, out_u8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int w, h;
    cc_image_probe(data, size, "fuzz", &w, &h);
    cc_image_options o = {.max_pixels = MAX_PIXELS};
    cc_image img;
    if (cc_image_decode_ex(data, size, "fuzz", &o, &img) == 0) {
        if (!img.rgb) abort();
        preprocess(&img);
        cc_image_free(&img);
    }
    /* the file path, with fast (DCT-scaled) JPEG decoding and the RGB-only planes */
    cc_image_options fast = {.max_pixels = MAX_PIXELS, .fast_min_side = 8, .rgb_only = 1};
    if (cc_image_load_ex(fuzz_file("image", data, size), &fast, &img) == 0) {
        preprocess(&img);
        cc_image_free(&img);
    }
    return 0;
}
