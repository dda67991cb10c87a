/* bench_model.c — clipc's CLIP towers: latency and throughput of cc_clip_embed_* on a model directory.
 *
 * usage: bench_model MODEL_DIR image BATCH [REPEATS]
 *        bench_model MODEL_DIR text BATCH TOKENS [REPEATS]
 *        bench_model MODEL_DIR check PIXELS.npy IDS.npy EOT.npy REF_PREFIX   (parity with the reference)
 * Prints one JSON line: {"tower", "batch", "tokens", "ms_per_batch", "items_per_s", "gflops", "peak_rss_mb"}.
 * Threads: CLIPC_THREADS or all cores; precision: CLIPC_PRECISION (f32 default, or bf16). Inputs are
 * random (timing does not depend on values). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "data/npy.h"
#include "engine/clip.h"
#include "engine/util.h"

static double peak_rss_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0;
}

/* Multiply-adds ×2 of one pre-LN block on n tokens of width c with MLP width f. */
static double block_flops(double n, double c, double f) { return 2 * (4 * n * c * c + 2 * n * c * f + 2 * n * n * c); }

static double image_flops(const cc_clip_config *cfg) {
    const cc_clip_tower_config *v = &cfg->vision;
    double patches = cc_clip_n_patches(cfg), n = patches + 1, c = v->hidden_size;
    double patch_embed = 2 * patches * c * v->num_channels * v->patch_size * v->patch_size;
    return patch_embed + v->num_layers * block_flops(n, c, v->intermediate_size) + 2 * c * cfg->projection_dim;
}

static double text_flops(const cc_clip_config *cfg, double tokens) {
    const cc_clip_tower_config *t = &cfg->text;
    return t->num_layers * block_flops(tokens, t->hidden_size, t->intermediate_size) +
           2 * t->hidden_size * (double)cfg->projection_dim;
}

static double median(double *values, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (values[j] < values[i]) {
                double t = values[i];
                values[i] = values[j];
                values[j] = t;
            }
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

static int check_parity(cc_clip_model *m, char **argv) {
    cc_npy pixels, ids, eot, ref_img, ref_txt;
    char path[4096];
    if (cc_npy_read_f32(argv[3], &pixels) || cc_npy_read_i64(argv[4], &ids) || cc_npy_read_i64(argv[5], &eot)) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    snprintf(path, sizeof path, "%s_image_embeds.npy", argv[6]);
    if (cc_npy_read_f32(path, &ref_img)) return fprintf(stderr, "%s\n", cc_last_error()), 1;
    snprintf(path, sizeof path, "%s_text_embeds.npy", argv[6]);
    if (cc_npy_read_f32(path, &ref_txt)) return fprintf(stderr, "%s\n", cc_last_error()), 1;
    int64_t ni = pixels.shape[0], nt = ids.shape[0], ctx = ids.shape[1], dim = m->config.projection_dim;
    int32_t *ids32 = malloc((size_t)ids.count * 4), *eot32 = malloc((size_t)nt * 4);
    for (int64_t i = 0; i < ids.count; i++) ids32[i] = (int32_t)((int64_t *)ids.data)[i];
    for (int64_t i = 0; i < nt; i++) eot32[i] = (int32_t)((int64_t *)eot.data)[i];
    float *img = malloc((size_t)(ni * dim) * 4), *txt = malloc((size_t)(nt * dim) * 4);
    (void)ctx;
    if (cc_clip_embed_images(m, pixels.data, ni, img, 1) || cc_clip_embed_texts(m, ids32, eot32, nt, txt, 1)) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    double worst[2] = {1, 1};
    const float *ours[2] = {img, txt}, *refs[2] = {ref_img.data, ref_txt.data};
    int64_t rows[2] = {ni, nt};
    for (int k = 0; k < 2; k++)
        for (int64_t r = 0; r < rows[k]; r++) {
            double dot = 0;
            for (int64_t d = 0; d < dim; d++) dot += (double)ours[k][r * dim + d] * refs[k][r * dim + d];
            if (dot < worst[k]) worst[k] = dot;
        }
    printf("{\"check\": \"parity\", \"min_cosine_image\": %.8f, \"min_cosine_text\": %.8f}\n", worst[0], worst[1]);
    return worst[0] >= 0.99999 && worst[1] >= 0.99999 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_model MODEL_DIR image BATCH [REPEATS] | text BATCH TOKENS [REPEATS] | check ...\n");
        return 2;
    }
    const char *threads = getenv("CLIPC_THREADS");
    cc_set_threads(threads ? atoi(threads) : 0);
    cc_clip_model *m = cc_clip_load(argv[1], NULL);
    if (!m) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    cc_precision precision = CC_PRECISION_F32;
    if (cc_precision_parse(getenv("CLIPC_PRECISION"), &precision) != 0 || cc_clip_set_precision(m, precision) != 0) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    if (!strcmp(argv[2], "check")) return argc < 7 ? 2 : check_parity(m, argv);
    int is_text = !strcmp(argv[2], "text");
    int64_t batch = atoll(argv[3]), tokens = is_text && argc > 4 ? atoll(argv[4]) : 0;
    int repeats = atoi(argc > (is_text ? 5 : 4) ? argv[is_text ? 5 : 4] : "0");
    const cc_clip_config *c = &m->config;
    int64_t context = c->text.max_positions, dim = c->projection_dim;
    int64_t pixel_count = (int64_t)c->vision.num_channels * c->vision.image_size * c->vision.image_size;
    cc_rng rng;
    cc_rng_seed(&rng, 1);
    float *pixels = NULL, *out = malloc((size_t)(batch * dim) * 4);
    int32_t *ids = NULL, *eot = NULL;
    if (is_text) {
        if (tokens < 2 || tokens > context) {
            fprintf(stderr, "tokens must be in [2, %lld]\n", (long long)context);
            return 2;
        }
        ids = calloc((size_t)(batch * context), 4);
        eot = malloc((size_t)batch * 4);
        for (int64_t b = 0; b < batch; b++) {
            for (int64_t t = 0; t < tokens; t++) ids[b * context + t] = (int32_t)cc_rng_below(&rng, (uint64_t)c->text.vocab_size - 2);
            eot[b] = (int32_t)tokens - 1;
            ids[b * context + tokens - 1] = c->text.vocab_size - 1;
        }
    } else {
        pixels = malloc((size_t)(batch * pixel_count) * 4);
        for (int64_t i = 0; i < batch * pixel_count; i++) pixels[i] = cc_rng_normal(&rng);
    }
    double flops = is_text ? text_flops(c, (double)tokens) : image_flops(c);
    if (repeats <= 0) repeats = batch >= 32 ? 5 : batch >= 8 ? 10 : 20;
    double times[256];
    if (repeats > 256) repeats = 256;
    for (int r = -2; r < repeats; r++) { /* two warm-up runs build and plan the graph */
        double start = cc_now();
        int status = is_text ? cc_clip_embed_texts(m, ids, eot, batch, out, 1) : cc_clip_embed_images(m, pixels, batch, out, 1);
        if (status != 0) {
            fprintf(stderr, "%s\n", cc_last_error());
            return 1;
        }
        if (r >= 0) times[r] = cc_now() - start;
    }
    double seconds = median(times, repeats);
    if (getenv("CLIPC_PROFILE")) cc_clip_print_profile(m, stderr);
    printf("{\"tower\": \"%s\", \"precision\": \"%s\", \"batch\": %lld, \"tokens\": %lld, \"threads\": %d, "
           "\"ms_per_batch\": %.2f, \"items_per_s\": %.2f, \"gflops\": %.1f, \"peak_rss_mb\": %.0f}\n",
           is_text ? "text" : "image", cc_precision_name(m->precision), (long long)batch, (long long)tokens, cc_get_threads(), 1e3 * seconds,
           (double)batch / seconds, flops * (double)batch / seconds / 1e9, peak_rss_mb());
    free(pixels);
    free(ids);
    free(eot);
    free(out);
    cc_clip_free(m);
    return 0;
}
