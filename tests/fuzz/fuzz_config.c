/* fuzz_config.c — libFuzzer target: config.json (cc_clip_config_parse, from memory, and its JSON
 * printed back and parsed again) and preprocessor_config.json (cc_preprocess_config_load). */
#include "data/preprocess.h"
#include "engine/clip.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cc_clip_config cfg;
    if (cc_clip_config_parse((const char *)data, size, "config.json", &cfg) == 0) {
        cc_clip_n_patches(&cfg);
        char *json = cc_clip_config_json(&cfg);
        cc_clip_config again;
        /* what clipc writes it must read back */
        if (json && cc_clip_config_parse(json, strlen(json), "config.json (re-read)", &again) != 0) abort();
        free(json);
    }
    const char *path = fuzz_file("preprocessor_config.json", data, size);
    cc_preprocess_config pre;
    cc_preprocess_config_default(&pre, 0);
    if (cc_preprocess_config_load(path, &pre) == 0) {
        if (pre.size <= 0 || pre.crop_width <= 0 || pre.crop_height <= 0) abort();
        int w, h;
        cc_preprocess_resized_size(pre.size, 640, 480, &w, &h);
    }
    return 0;
}
