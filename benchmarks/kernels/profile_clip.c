/* profile_clip.c — per-op time profile of a random ViT-B/32 CLIP tower on the CPU backend.
 *
 * usage: profile_clip [image|text] BATCH THREADS [ITERATIONS] [--markdown]
 *
 * Builds the same graph cc_clip_embed_images / cc_clip_embed_texts use (features, l2-normalised),
 * runs it once to warm up and then ITERATIONS times with the graph profiler on, and prints the
 * per-op time (ms per forward) and share, plus the GEMM vs non-GEMM split. The text tower runs at
 * the full context (77 tokens). Weights are random (Hugging Face init): timing does not depend on
 * their values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/clip.h"
#include "engine/graph.h"
#include "engine/util.h"
#include "kernels/gemm.h"

#define DEFAULT_ITERATIONS 3

static int usage(void) {
    fprintf(stderr, "usage: profile_clip [image|text] BATCH THREADS [ITERATIONS] [--markdown]\n");
    return 2;
}

int main(int argc, char **argv) {
    int markdown = 0, n_pos = 0;
    const char *pos[4] = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--markdown")) markdown = 1;
        else if (n_pos < 4) pos[n_pos++] = argv[i];
        else return usage();
    }
    if (n_pos < 3) return usage();
    int is_text = !strcmp(pos[0], "text");
    if (!is_text && strcmp(pos[0], "image")) return usage();
    int64_t batch = atoll(pos[1]);
    int threads = atoi(pos[2]);
    int iterations = n_pos > 3 ? atoi(pos[3]) : DEFAULT_ITERATIONS;
    if (batch < 1 || threads < 1 || iterations < 1) return usage();
    cc_set_threads(threads);

    cc_clip_config cfg;
    cc_clip_model *m = NULL;
    cc_graph *g = NULL;
    int status = 1;
    if (cc_clip_config_builtin("b32", &cfg) != 0 || !(m = cc_clip_new(&cfg, NULL)) || cc_clip_init_random(m, 1234) != 0)
        goto done;
    g = cc_graph_new();
    if (!g) goto done;
    int64_t seq = cfg.text.max_positions;
    cc_tensor *input, *pool = NULL, *features;
    if (is_text) {
        input = cc_input(g, CC_I32, 1, (int64_t[]){batch * seq}, "token_ids");
        pool = cc_input(g, CC_I32, 1, (int64_t[]){batch}, "pool_index");
        features = cc_clip_text_features(g, m, input, batch, seq, pool);
    } else {
        input = cc_input(g, CC_F32, 4,
                         (int64_t[]){batch, cfg.vision.num_channels, cfg.vision.image_size, cfg.vision.image_size},
                         "pixels");
        features = cc_clip_image_features(g, m, input);
    }
    cc_tensor *output = cc_l2norm(g, features, 1e-12f);
    if (!output || cc_graph_build(g, &output, 1) != 0 || cc_graph_plan(g, cc_backend_cpu()) != 0) {
        if (cc_graph_error(g)) cc_set_error("%s", cc_graph_error(g));
        goto done;
    }
    if (cc_graph_backend(g) == NULL) goto done;

    cc_rng rng;
    cc_rng_seed(&rng, 99);
    int64_t n_in = cc_nelements(input);
    void *host = malloc((size_t)n_in * 4 + (size_t)batch * 4);
    if (!host) goto done;
    if (is_text) {
        int32_t *ids = host, *pool_ids = (int32_t *)host + n_in;
        for (int64_t i = 0; i < n_in; i++) ids[i] = (int32_t)cc_rng_below(&rng, (uint64_t)cfg.text.vocab_size);
        for (int64_t b = 0; b < batch; b++) pool_ids[b] = (int32_t)(b * seq + seq - 1);
        cc_tensor_upload(pool, pool_ids);
    } else {
        float *pixels = host;
        for (int64_t i = 0; i < n_in; i++) pixels[i] = cc_rng_normal(&rng);
    }
    cc_tensor_upload(input, host);
    free(host);

    if (cc_graph_compute(g) != 0) goto done; /* warm-up, unprofiled */
    cc_graph_set_profile(g, 1);
    double t0 = cc_now();
    for (int it = 0; it < iterations; it++)
        if (cc_graph_compute(g) != 0) goto done;
    double per_forward = (cc_now() - t0) / iterations;

    /* the profiler accumulates seconds per op over the iterations: re-read them through the printout */
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (!mem) goto done;
    cc_graph_print_profile(g, mem);
    fclose(mem);
    double gemm_ms = 0, total_ms = 0;
    if (markdown) {
        printf("%s tower, batch %lld, %d threads, gemm %s: %.1f ms per forward (%.1f items/s)\n\n", is_text ? "text" : "image",
               (long long)batch, threads, cc_gemm_impl_name(), 1e3 * per_forward, batch / per_forward);
        printf("| op | calls/forward | ms/forward | share |\n|---|---:|---:|---:|\n");
    } else {
        printf("%s tower, batch %lld, %d threads, gemm %s: %.2f ms per forward (%.1f items/s)\n", is_text ? "text" : "image",
               (long long)batch, threads, cc_gemm_impl_name(), 1e3 * per_forward, batch / per_forward);
    }
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64];
        int calls;
        double ms, pct;
        if (sscanf(line, "%63s %d %lf %lf", name, &calls, &ms, &pct) != 4) continue;
        total_ms += ms;
        if (!strcmp(name, "matmul")) gemm_ms += ms;
        if (markdown) printf("| %s | %d | %.2f | %.1f%% |\n", name, calls / iterations, ms / iterations, pct);
        else printf("  %-20s %6d calls %9.2f ms %5.1f%%\n", name, calls / iterations, ms / iterations, pct);
    }
    free(text);
    if (markdown) printf("\nGEMM %.1f ms, everything else %.1f ms (%.1f%% of op time)\n", gemm_ms / iterations,
                         (total_ms - gemm_ms) / iterations, total_ms > 0 ? 100 * (total_ms - gemm_ms) / total_ms : 0);
    else printf("  GEMM %.2f ms, non-GEMM %.2f ms (%.1f%%)\n", gemm_ms / iterations, (total_ms - gemm_ms) / iterations,
                total_ms > 0 ? 100 * (total_ms - gemm_ms) / total_ms : 0);
    status = 0;
done:
    if (status) fprintf(stderr, "profile_clip: %s\n", cc_last_error());
    cc_graph_free(g);
    cc_clip_free(m);
    return status;
}
