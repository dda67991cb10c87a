/* fast_decode_quality.c — what --fast-decode changes: for each JPEG, the exact pipeline and the fast one
 * (libjpeg-turbo DCT scaling keeping the shorter side >= FACTOR * S), compared on the 8-bit S x S crop
 * and on the normalised tensor, with the time of each (one thread, best of N).
 * usage: fast_decode_quality [--size S] [--factor F] [--repeats N] FILE...
 * prints: FILE WxH denom exact_ms fast_ms identical_% mean_abs_levels max_abs_levels psnr_db max_abs_tensor */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "data/preprocess.h"
#include "engine/util.h"

static double time_pipeline(const char *data, size_t n, const cc_image_options *opts, const cc_preprocess_config *cfg,
                            uint8_t *u8, float *tensor, int repeats, int *denom) {
    double best = 1e9;
    for (int r = 0; r < repeats + 1; r++) {
        double t0 = cc_now();
        cc_image img;
        if (cc_image_decode_ex(data, n, "image", opts, &img) != 0 || cc_preprocess_image_u8(cfg, &img, u8) != 0) {
            fprintf(stderr, "%s\n", cc_last_error());
            exit(1);
        }
        cc_preprocess_normalize(cfg, u8, cfg->crop_height, cfg->crop_width, tensor);
        *denom = img.scale_denom;
        cc_image_free(&img);
        double t = cc_now() - t0;
        if (r && t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int size = 224, repeats = 10, first = 1;
    double factor = 1.0;
    for (; first < argc && argv[first][0] == '-'; first += 2) {
        if (first + 1 >= argc) return 2;
        if (!strcmp(argv[first], "--size")) size = atoi(argv[first + 1]);
        else if (!strcmp(argv[first], "--factor")) factor = atof(argv[first + 1]);
        else if (!strcmp(argv[first], "--repeats")) repeats = atoi(argv[first + 1]);
        else return 2;
    }
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, size);
    size_t n_values = (size_t)3 * size * size;
    uint8_t *exact_u8 = malloc(n_values), *fast_u8 = malloc(n_values);
    float *exact_t = malloc(n_values * sizeof(float)), *fast_t = malloc(n_values * sizeof(float));
    cc_image_options exact = {0}, fast = {0};
    fast.fast_min_side = (int)(factor * size + 0.5);
    for (int f = first; f < argc; f++) {
        char *data;
        size_t n;
        if (cc_read_file(argv[f], &data, &n) != 0) {
            fprintf(stderr, "%s\n", cc_last_error());
            return 1;
        }
        int w, h, denom_exact, denom_fast;
        cc_image_probe(data, n, argv[f], &w, &h);
        double t_exact = time_pipeline(data, n, &exact, &cfg, exact_u8, exact_t, repeats, &denom_exact);
        double t_fast = time_pipeline(data, n, &fast, &cfg, fast_u8, fast_t, repeats, &denom_fast);
        size_t same = 0;
        double abs_sum = 0, sq_sum = 0, max_tensor = 0;
        int max_abs = 0;
        for (size_t i = 0; i < n_values; i++) {
            int d = abs((int)exact_u8[i] - (int)fast_u8[i]);
            same += d == 0;
            abs_sum += d;
            sq_sum += (double)d * d;
            if (d > max_abs) max_abs = d;
            double dt = fabs((double)exact_t[i] - fast_t[i]);
            if (dt > max_tensor) max_tensor = dt;
        }
        double mse = sq_sum / (double)n_values;
        printf("%s %dx%d 1/%d %.3f %.3f %.2f %.3f %d %.1f %.3f\n", argv[f], w, h, denom_fast, 1e3 * t_exact, 1e3 * t_fast,
               100.0 * (double)same / (double)n_values, abs_sum / (double)n_values, max_abs,
               mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : INFINITY, max_tensor);
        free(data);
    }
    free(exact_u8);
    free(fast_u8);
    free(exact_t);
    free(fast_t);
    return 0;
}
