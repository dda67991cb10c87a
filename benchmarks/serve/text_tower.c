/* text_tower.c — the part of a text query that the model takes, in process (no HTTP): tokenizing and the
 * text tower of a model directory for one query at a time, and for batches of 16 (what clipc serve's
 * engine does under load). For benchmarks/serve/run.sh's breakdown of the server latency.
 *
 *   text_tower MODEL_DIR QUERIES.txt N     prints "single p50_ms A p99_ms B batch16_ms_per_query C" */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session.h"
#include "engine/util.h"

#define MAX_QUERIES 4096
#define BATCH 16

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: text_tower MODEL_DIR QUERIES.txt N\n");
        return 2;
    }
    cc_session s;
    if (cc_session_open(&s, argv[1], NULL) != 0) {
        fprintf(stderr, "text_tower: %s\n", cc_last_error());
        return 1;
    }
    static char *queries[MAX_QUERIES];
    int n_queries = 0, n = atoi(argv[3]);
    char line[4096];
    FILE *f = fopen(argv[2], "r");
    while (f && n_queries < MAX_QUERIES && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) queries[n_queries++] = strdup(line);
    }
    if (f) fclose(f);
    if (n_queries < BATCH || n < 1) {
        fprintf(stderr, "text_tower: need at least %d queries in %s\n", BATCH, argv[2]);
        return 1;
    }
    float *out = malloc((size_t)BATCH * s.model->config.projection_dim * sizeof(float));
    double *ms = malloc((size_t)n * sizeof(double));
    cc_text_options o = {.normalize = 1};
    for (int i = 0; i < 20; i++) cc_session_embed_texts(&s, (const char *const *)&queries[i % n_queries], 1, &o, out, NULL);
    for (int i = 0; i < n; i++) {
        double t0 = cc_now();
        cc_session_embed_texts(&s, (const char *const *)&queries[i % n_queries], 1, &o, out, NULL);
        ms[i] = (cc_now() - t0) * 1e3;
    }
    qsort(ms, (size_t)n, sizeof(double), compare_double);
    int n_batches = n / BATCH > 0 ? n / BATCH : 1;
    double t0 = cc_now();
    for (int b = 0; b < n_batches; b++)
        cc_session_embed_texts(&s, (const char *const *)&queries[(b * BATCH) % (n_queries - BATCH)], BATCH, &o, out, NULL);
    double batch_ms = (cc_now() - t0) * 1e3 / (n_batches * BATCH);
    printf("single p50_ms %.2f p99_ms %.2f batch16_ms_per_query %.2f\n", ms[n / 2], ms[(int)ceil(0.99 * n) - 1], batch_ms);
    cc_session_close(&s);
    return 0;
}
