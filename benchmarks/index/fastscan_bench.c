/* fastscan_bench.c — clipc's 4-bit fast-scan PQ types on vectors given as .npy files: for each
 * description, build (train on all base vectors, add them), then for each nprobe search every
 * query in one batch at one thread and print one markdown row: recall@10 against the given
 * ground truth and queries/s (best of REPEATS). benchmarks/index/fastscan_peer.py writes the
 * files, runs faiss on the same data and merges the rows.
 *
 * usage: fastscan_bench --base X.npy --queries Q.npy --gt GT.npy [--metric l2|ip]
 *                       [--nprobe 1,4,16] DESC...                  (e.g. PQ32x4fs IVF256,PQ32x4fs) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/util.h"
#include "index/index.h"

#define REPEATS 3 /* best of */
#define K 10
#define MAX_NPROBES 16

static double recall_at_k(const int64_t *found, const int64_t *truth, int64_t nq, int gt_k) {
    int64_t hits = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++) hits += found[i * K + a] == truth[i * gt_k + b];
    return (double)hits / (double)(nq * K);
}

/* Best-of-REPEATS seconds for the whole batch; ids of the last run in out. */
static double time_batch(const cc_index *idx, int64_t nq, const float *q, int nprobe, int64_t *out) {
    cc_search_params sp = {0};
    sp.nprobe = nprobe;
    double best = INFINITY;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = cc_now();
        if (cc_index_search_ex(idx, nq, q, K, &sp, out, NULL) != 0) return -1;
        double t = cc_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static int parse_nprobes(const char *text, int *out) {
    int n = 0;
    for (const char *p = text; *p && n < MAX_NPROBES; n++) {
        out[n] = atoi(p);
        const char *comma = strchr(p, ',');
        if (!comma) return n + 1;
        p = comma + 1;
    }
    return n;
}

static int bench_type(const char *desc, const cc_npy *x, const cc_npy *q, const cc_npy *gt, cc_metric metric,
                      const int *nprobes, int n_nprobes) {
    int d = (int)x->shape[1];
    int64_t n = x->shape[0], nq = q->shape[0];
    cc_index *idx = cc_index_create(desc, d, metric);
    double t0 = cc_now();
    if (!idx || cc_index_train(idx, n, x->data) != 0 || cc_index_add(idx, n, x->data) != 0) {
        fprintf(stderr, "fastscan_bench: %s: %s\n", desc, cc_last_error());
        cc_index_free(idx);
        return -1;
    }
    double build = cc_now() - t0;
    int64_t *ids = malloc((size_t)(nq * K) * sizeof(int64_t));
    int ivf = cc_index_get_param(idx, "nlist") > 0;
    for (int p = 0; p < (ivf ? n_nprobes : 1); p++) {
        double secs = time_batch(idx, nq, q->data, ivf ? nprobes[p] : 0, ids);
        if (secs < 0) {
            fprintf(stderr, "fastscan_bench: %s: %s\n", desc, cc_last_error());
            break;
        }
        char probe_text[16] = "-";
        if (ivf) snprintf(probe_text, sizeof probe_text, "%d", nprobes[p]);
        printf("| clipc | %s | %s | %.3f | %.0f | %.1f |\n", desc, probe_text,
               recall_at_k(ids, gt->data, nq, (int)gt->shape[1]), (double)nq / secs, build);
        fflush(stdout);
    }
    free(ids);
    cc_index_free(idx);
    return 0;
}

int main(int argc, char **argv) {
    const char *base = NULL, *queries = NULL, *truth = NULL;
    cc_metric metric = CC_METRIC_L2;
    int nprobes[MAX_NPROBES] = {1, 4, 16}, n_nprobes = 3;
    int first_desc = argc;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--base")) base = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--queries")) queries = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--gt")) truth = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--metric")) metric = strcmp(argv[++i], "ip") ? CC_METRIC_L2 : CC_METRIC_IP;
        else if (i + 1 < argc && !strcmp(argv[i], "--nprobe")) n_nprobes = parse_nprobes(argv[++i], nprobes);
        else {
            first_desc = i;
            break;
        }
    }
    if (!base || !queries || !truth || first_desc >= argc) {
        fprintf(stderr, "usage: fastscan_bench --base X.npy --queries Q.npy --gt GT.npy [--metric l2|ip] "
                        "[--nprobe 1,4,16] DESC...\n");
        return 2;
    }
    cc_npy x, q, gt;
    if (cc_npy_read_f32(base, &x) != 0 || cc_npy_read_f32(queries, &q) != 0 || cc_npy_read_i64(truth, &gt) != 0 ||
        x.ndim != 2 || q.ndim != 2 || gt.ndim != 2 || q.shape[1] != x.shape[1] || gt.shape[0] != q.shape[0] ||
        gt.shape[1] < K) {
        fprintf(stderr, "fastscan_bench: bad input files (%s)\n", cc_last_error());
        return 1;
    }
    cc_set_threads(1);
    for (int i = first_desc; i < argc; i++)
        if (bench_type(argv[i], &x, &q, &gt, metric, nprobes, n_nprobes) != 0) return 1;
    cc_npy_free(&x), cc_npy_free(&q), cc_npy_free(&gt);
    return 0;
}
