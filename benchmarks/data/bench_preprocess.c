/* bench_preprocess.c — JPEG/PNG decode + CLIP preprocessing to S x S, one thread, ms per image.
 * usage: bench_preprocess [--fast] [--size S] [--repeats N] FILE...
 * Prints one line per file: "FILE WxH decode_ms preprocess_ms total_ms" (best of N after a warm-up), from
 * an in-memory copy of the file as the PIL peer (preprocess_ref.py) does. total_ms is the whole pipeline
 * (cc_preprocess_memory, which for JPEGs decodes only the region the crop needs); decode_ms and
 * preprocess_ms time a full decode (cc_image_decode) and the resize + crop + normalise of the decoded
 * image (cc_preprocess_image) separately, to show where the time goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/preprocess.h"
#include "engine/util.h"

int main(int argc, char **argv) {
    int fast = 0, size = 224, repeats = 20, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "--fast")) fast = 1;
        else if (!strcmp(argv[first], "--size") && first + 1 < argc) size = atoi(argv[++first]);
        else if (!strcmp(argv[first], "--repeats") && first + 1 < argc) repeats = atoi(argv[++first]);
        else {
            fprintf(stderr, "usage: %s [--fast] [--size S] [--repeats N] FILE...\n", argv[0]);
            return 2;
        }
    }
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, size);
    cc_image_options options = {0};
    options.fast_min_side = fast ? size : 0;
    float *out = malloc((size_t)3 * size * size * sizeof(float));
    for (int f = first; f < argc; f++) {
        char *data;
        size_t n;
        if (cc_read_file(argv[f], &data, &n) != 0) {
            fprintf(stderr, "%s\n", cc_last_error());
            return 1;
        }
        double best_decode = 1e9, best_pre = 1e9, best_total = 1e9;
        int width = 0, height = 0;
        cfg.fast_decode = fast;
        for (int r = 0; r < repeats + 1; r++) {
            cc_image img;
            double t0 = cc_now();
            if (cc_image_decode_ex(data, n, argv[f], &options, &img) != 0) {
                fprintf(stderr, "%s\n", cc_last_error());
                return 1;
            }
            double t1 = cc_now();
            if (cc_preprocess_image(&cfg, &img, out) != 0) {
                fprintf(stderr, "%s\n", cc_last_error());
                return 1;
            }
            double t2 = cc_now();
            width = img.width * img.scale_denom;
            height = img.height * img.scale_denom;
            cc_image_free(&img);
            if (cc_preprocess_memory(&cfg, data, n, argv[f], out) != 0) {
                fprintf(stderr, "%s\n", cc_last_error());
                return 1;
            }
            double t3 = cc_now();
            if (r == 0) continue; /* warm-up */
            if (t1 - t0 < best_decode) best_decode = t1 - t0;
            if (t2 - t1 < best_pre) best_pre = t2 - t1;
            if (t3 - t2 < best_total) best_total = t3 - t2;
        }
        printf("%s %dx%d %.3f %.3f %.3f\n", argv[f], width, height, 1e3 * best_decode, 1e3 * best_pre, 1e3 * best_total);
        free(data);
    }
    free(out);
    return 0;
}
