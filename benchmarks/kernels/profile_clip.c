/* profile_clip.c — per-op time profile of a random ViT-B/32 CLIP tower on the CPU backend.
 *
 * usage: profile_clip [image|text] BATCH THREADS [ITERATIONS] [--markdown]
 *
 * Builds the same graph cc_clip_embed_images / cc_clip_embed_texts use (features, l2-normalised),
 * runs it once to warm up and then ITERATIONS times with the graph profiler on, and prints the
 * per-op time (ms) and share of the fastest iteration, plus the GEMM vs non-GEMM split. The text tower runs at
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

#define MAX_OPS 64

/* Cumulative per-op profile as cc_graph_print_profile reports it (ops in its order). */
typedef struct {
    int n;
    char name[MAX_OPS][32];
    int calls[MAX_OPS];
    double ms[MAX_OPS];
} op_times;

static int read_profile(const cc_graph *g, op_times *out) {
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (!mem) {
        cc_set_error("profile_clip: out of memory");
        return -1;
    }
    cc_graph_print_profile(g, mem);
    fclose(mem);
    out->n = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && out->n < MAX_OPS; line = strtok_r(NULL, "\n", &save)) {
        double pct;
        int i = out->n;
        if (sscanf(line, "%31s %d %lf %lf", out->name[i], &out->calls[i], &out->ms[i], &pct) == 4) out->n++;
    }
    free(text);
    return 0;
}

static void print_profile(const op_times *t, double seconds, int is_text, int64_t batch, int threads, int iterations,
                          int markdown) {
    double total = 0, gemm = 0;
    for (int i = 0; i < t->n; i++) {
        total += t->ms[i];
        if (!strcmp(t->name[i], "matmul")) gemm += t->ms[i];
    }
    printf("%s tower, batch %lld, %d threads, gemm %s: %.1f ms per forward (%.1f items/s; fastest of %d)\n%s",
           is_text ? "text" : "image", (long long)batch, threads, cc_gemm_impl_name(), 1e3 * seconds, batch / seconds,
           iterations, markdown ? "\n| op | calls/forward | ms/forward | share |\n|---|---:|---:|---:|\n" : "");
    for (int i = 0; i < t->n; i++) {
        double share = total > 0 ? 100 * t->ms[i] / total : 0;
        if (markdown) printf("| %s | %d | %.2f | %.1f%% |\n", t->name[i], t->calls[i], t->ms[i], share);
        else printf("  %-20s %6d calls %9.2f ms %5.1f%%\n", t->name[i], t->calls[i], t->ms[i], share);
    }
    printf("%sGEMM %.1f ms, everything else %.1f ms (%.1f%% of op time)\n", markdown ? "\n" : "  ", gemm, total - gemm,
           total > 0 ? 100 * (total - gemm) / total : 0);
}

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
    /* the profiler accumulates per op over computes: read it after each one and keep the fastest
     * iteration's differences (the machine may be shared: the fastest is the least disturbed) */
    op_times previous = {0}, best = {0};
    double best_seconds = 1e30;
    for (int it = 0; it < iterations; it++) {
        double t0 = cc_now();
        if (cc_graph_compute(g) != 0) goto done;
        double seconds = cc_now() - t0;
        op_times now;
        if (read_profile(g, &now) != 0) goto done;
        if (seconds < best_seconds) {
            best_seconds = seconds;
            best = now;
            for (int i = 0; i < now.n; i++) {
                best.ms[i] -= previous.ms[i];
                best.calls[i] -= previous.calls[i];
            }
        }
        previous = now;
    }
    print_profile(&best, best_seconds, is_text, batch, threads, iterations, markdown);
    status = 0;
done:
    if (status) fprintf(stderr, "profile_clip: %s\n", cc_last_error());
    cc_graph_free(g);
    cc_clip_free(m);
    return status;
}
