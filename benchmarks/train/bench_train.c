/* bench_train.c — time of one CLIP training step (forward both towers, InfoNCE, backward, AdamW)
 * on a model directory with random inputs.
 *
 * usage: bench_train MODEL_DIR BATCH TOKENS [STEPS [recompute] [bf16]]   (bf16: --precision bf16 products)
 * Prints one JSON line: {"batch", "tokens", "threads", "s_per_step", "loss_first", "loss_last",
 * "peak_rss_mb", "peak_activations_mb"}. Threads: CLIPC_THREADS or all cores. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine/clip.h"
#include "engine/util.h"
#include "kernels/gemm.h"
#include "train/trainer.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_train MODEL_DIR BATCH TOKENS [STEPS [recompute] [bf16]]\n");
        return 2;
    }
    const char *threads = getenv("CLIPC_THREADS");
    cc_set_threads(threads ? atoi(threads) : 0);
    cc_clip_model *m = cc_clip_load(argv[1], NULL);
    if (!m) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    int64_t batch = atoll(argv[2]), tokens = atoll(argv[3]), steps = argc > 4 ? atoll(argv[4]) : 5;
    const cc_clip_config *c = &m->config;
    int64_t context = c->text.max_positions;
    int64_t pixel_count = (int64_t)c->vision.num_channels * c->vision.image_size * c->vision.image_size;
    if (tokens < 2 || tokens > context) return fprintf(stderr, "tokens must be in [2, %lld]\n", (long long)context), 2;
    cc_rng rng;
    cc_rng_seed(&rng, 7);
    float *pixels = malloc((size_t)(batch * pixel_count) * sizeof(float));
    int32_t *ids = calloc((size_t)(batch * context), sizeof(int32_t)), *eot = malloc((size_t)batch * sizeof(int32_t));
    for (int64_t i = 0; i < batch * pixel_count; i++) pixels[i] = cc_rng_normal(&rng);
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t t = 0; t < tokens - 1; t++) ids[b * context + t] = (int32_t)cc_rng_below(&rng, (uint64_t)c->text.vocab_size - 2);
        ids[b * context + tokens - 1] = c->text.vocab_size - 1;
        eot[b] = (int32_t)tokens - 1;
    }
    cc_trainer_config cfg;
    cc_trainer_config_default(&cfg);
    cfg.adamw.lr = 1e-5f;
    cfg.adamw.total_steps = steps + 1;
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "recompute") == 0) cfg.checkpoint_activations = 1;
        else if (strcmp(argv[i], "bf16") == 0) cfg.bf16_matmul = cc_gemm_has_bf16();
    }
    cc_trainer tr;
    if (cc_trainer_init(&tr, m, &cfg) != 0) return fprintf(stderr, "%s\n", cc_last_error()), 1;
    cc_train_batch tb = {pixels, ids, eot, batch};
    float loss = 0, first = 0;
    double best = 1e30;
    for (int64_t s = -1; s < steps; s++) { /* one warm-up step builds and plans the graph */
        double start = cc_now();
        if (cc_trainer_accumulate(&tr, &tb, &loss) != 0 || cc_trainer_apply(&tr, 1.0f, NULL) != 0)
            return fprintf(stderr, "%s\n", cc_last_error()), 1;
        double t = cc_now() - start;
        if (s == -1) first = loss;
        else if (t < best) best = t;
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    if (getenv("CLIPC_PROFILE")) cc_trainer_print_profile(&tr, stderr);
    printf("{\"batch\": %lld, \"tokens\": %lld, \"threads\": %d, \"bf16\": %d, \"s_per_step\": %.3f, \"loss_first\": %.4f, "
           "\"loss_last\": %.4f, \"peak_rss_mb\": %.0f, \"activations_mb\": %.0f}\n",
           (long long)batch, (long long)tokens, cc_get_threads(), cfg.bf16_matmul, best, first, loss, (double)usage.ru_maxrss / 1024.0,
           (double)cc_trainer_peak_activation_bytes(&tr) / 1e6);
    cc_trainer_free(&tr);
    cc_clip_free(m);
    free(pixels);
    free(ids);
    free(eot);
    return 0;
}
