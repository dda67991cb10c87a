/* tune.c — picks search parameters for a target recall: exact neighbours of sample queries (GEMM
 * over the stored vectors, or over the original vectors for PQ without RFlat), then the smallest
 * value of the type's search knob (its tune_space: nprobe for IVF, efSearch for HNSW) whose
 * recall@k reaches the target — doubling until reached, then bisecting. For RFlat, each re-rank
 * factor gets its smallest value and the fastest combination wins. The choice becomes the index
 * default and is recorded in the metadata. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"

static const int tune_rerank_factors[] = {1, 2, 4, 8, 16, 32};

typedef struct tune_ctx {
    cc_index *idx;
    int64_t nq;
    const float *q;
    int k;
    const int64_t *gt; /* nq * k exact labels */
    const char *knob;  /* the parameter tuned */
    int64_t *ids;      /* scratch nq * k */
    float *scores;
} tune_ctx;

/* The search parameters with the tuned knob at value (and the re-rank factor; 0 = default). */
static cc_search_params knob_params(const char *knob, int value, int rerank) {
    cc_search_params p = {0};
    if (!strcmp(knob, "nprobe")) p.nprobe = value;
    else if (!strcmp(knob, "efSearch")) p.ef_search = value;
    p.rerank = rerank;
    return p;
}

/* Recall@k with the knob at value; *seconds receives the search time. -1 on error. */
static double measure(tune_ctx *t, int value, int rerank, double *seconds) {
    cc_search_params p = knob_params(t->knob, value, rerank);
    double t0 = cc_now();
    if (cc_index_search_ex(t->idx, t->nq, t->q, t->k, &p, t->ids, t->scores) != 0) return -1;
    if (seconds) *seconds = cc_now() - t0;
    int64_t hits = 0;
    for (int64_t i = 0; i < t->nq; i++) {
        const int64_t *g = t->gt + i * t->k, *r = t->ids + i * t->k;
        for (int a = 0; a < t->k; a++)
            for (int b = 0; b < t->k; b++)
                if (r[a] == g[b] && r[a] >= 0) {
                    hits++;
                    break;
                }
    }
    return (double)hits / (double)(t->nq * t->k);
}

/* Smallest knob value in [lo, hi] reaching target, assuming recall grows with the value;
 * doubling from lo then bisecting. Returns hi + 1 when hi misses. */
static int smallest_reaching(tune_ctx *t, int lo, int hi, int rerank, double target, double *recall_out) {
    int below = lo - 1, above = -1;
    double above_recall = 0;
    for (int v = lo;; v = v * 2 > hi ? hi : v * 2) {
        double r = measure(t, v, rerank, NULL);
        if (r < 0) return -1;
        if (r >= target) {
            above = v;
            above_recall = r;
            break;
        }
        below = v;
        if (v == hi) break;
    }
    if (above < 0) return hi + 1;
    while (above - below > 1) {
        int mid = below + (above - below) / 2;
        double r = measure(t, mid, rerank, NULL);
        if (r < 0) return -1;
        if (r >= target) above = mid, above_recall = r;
        else below = mid;
    }
    *recall_out = above_recall;
    return above;
}

static int exact_ground_truth(cc_index *idx, const cc_tune_space *space, int64_t nq, const float *q, int k,
                              const float *exact, int64_t n_exact, int64_t *gt) {
    float *sims = cc_malloc((size_t)nq * k * sizeof(float), "tuning ground truth");
    if (!sims) return -1;
    int rc;
    if (space->exact_at_hi) {
        /* e.g. IVF-Flat: visiting every list is exact */
        cc_search_params p = knob_params(space->knob, space->hi, 0);
        rc = cc_index_search_ex(idx, nq, q, k, &p, gt, sims);
    } else if (cc_index_has_exact_vectors(idx)) {
        const float *base = idx->n_slots ? cc_index_slot_vector(idx, 0) : NULL;
        int64_t stride = idx->n_slots > 1 ? cc_index_slot_vector(idx, 1) - base : idx->dim;
        rc = cc_exact_search_rows(idx, base, stride, idx->n_slots, NULL, 1, NULL, nq, q, k, gt, sims);
        for (int64_t i = 0; rc == 0 && i < nq * k; i++)
            if (gt[i] >= 0) gt[i] = cc_slot_label(idx, gt[i]);
    } else if (exact) {
        if (n_exact < k) {
            cc_set_error("tune: %lld original vectors, fewer than k = %d", (long long)n_exact, k);
            free(sims);
            return -1;
        }
        rc = cc_exact_search_rows(idx, exact, idx->dim, n_exact, NULL, 0, NULL, nq, q, k, gt, sims);
    } else {
        cc_set_error("tune: %s stores no exact vectors; pass the original vectors (in id order) to compute "
                     "exact neighbours",
                     idx->desc);
        rc = -1;
    }
    free(sims);
    return rc;
}

int cc_index_tune(cc_index *idx, int64_t nq, const float *q, int k, double target, const float *exact,
                  int64_t n_exact, cc_tune_result *out) {
    memset(out, 0, sizeof *out);
    if (nq < 1 || !q || k < 1 || !(target > 0 && target <= 1)) {
        cc_set_error("tune: need at least one query, k >= 1 and a target recall in (0, 1]");
        return -1;
    }
    cc_tune_space space;
    if (!idx->ops->tune_space) {
        cc_set_error("tune: %s has no search parameter to tune", idx->desc);
        return -1;
    }
    if (idx->ops->tune_space(idx, k, &space) != 0) return -1;
    if (idx->n_live == 0 || k > idx->n_live) {
        cc_set_error("tune: the index holds %lld vectors, k = %d", (long long)idx->n_live, k);
        return -1;
    }
    if (cc_check_finite(q, nq, idx->dim, "tuning queries") != 0) return -1;
    tune_ctx t = {idx, nq, q, k, NULL, space.knob, NULL, NULL};
    int64_t *gt = cc_malloc((size_t)nq * k * sizeof(int64_t), "tuning ground truth");
    t.ids = cc_malloc((size_t)nq * k * sizeof(int64_t), "tuning results");
    t.scores = cc_malloc((size_t)nq * k * sizeof(float), "tuning results");
    int rc = -1;
    if (!gt || !t.ids || !t.scores) goto done;
    if (exact_ground_truth(idx, &space, nq, q, k, exact, n_exact, gt) != 0) goto done;
    t.gt = gt;

    /* each re-rank factor (RFlat) gets its smallest knob value; the fastest pair wins */
    double recall = 0, seconds = 0, best_time = INFINITY;
    int n_factors = space.rerank ? (int)(sizeof tune_rerank_factors / sizeof tune_rerank_factors[0]) : 1;
    int best_v = space.hi, best_r = space.rerank ? tune_rerank_factors[n_factors - 1] : 0;
    for (int f = 0; f < n_factors; f++) {
        int r = space.rerank ? tune_rerank_factors[f] : 0;
        double rec;
        int v = smallest_reaching(&t, space.lo, space.hi, r, target, &rec);
        if (v < 0) goto done;
        if (v > space.hi) continue;
        /* time it twice, keep the faster (the first run warms caches) */
        double secs, secs2;
        if (measure(&t, v, r, &secs) < 0 || measure(&t, v, r, &secs2) < 0) goto done;
        if (secs2 < secs) secs = secs2;
        if (secs < best_time) best_time = secs, best_v = v, best_r = r, out->reached = 1;
    }
    recall = measure(&t, best_v, best_r, &seconds);
    if (recall < 0) goto done;
    if (!strcmp(space.knob, "nprobe")) out->nprobe = best_v;
    else if (!strcmp(space.knob, "efSearch")) out->ef_search = best_v;
    out->rerank = best_r;
    if (cc_index_set_param(idx, space.knob, best_v) < 0) goto done;
    if (space.rerank && cc_index_set_param(idx, "rerank", best_r) < 0) goto done;
    out->recall = recall;
    out->queries_per_s = seconds > 0 ? (double)nq / seconds : 0;
    char text[64];
    snprintf(text, sizeof text, "%g", target);
    cc_index_kv_set_raw(idx, "tune.target", text);
    snprintf(text, sizeof text, "%.4f", recall);
    char key[32];
    snprintf(key, sizeof key, "tune.recall@%d", k);
    cc_index_kv_set_raw(idx, key, text);
    rc = 0;
done:
    free(gt);
    free(t.ids);
    free(t.scores);
    return rc;
}
