/* topk.h — keeping the k best (largest) similarities with their ids: a binary min-heap whose root
 * is the worst result kept, so a new candidate is compared against one value and most candidates
 * are rejected by that single compare. Header-only because it sits in every scan's inner loop.
 *
 * Indexes work internally with similarities to maximise: the inner product, or minus the squared
 * L2 distance; the public API converts back.
 */
#ifndef CLIPC_INDEX_TOPK_H
#define CLIPC_INDEX_TOPK_H

#include <math.h>
#include <stdint.h>

/* Min-heap over (sim, id) of capacity k. sims[0] is the worst kept; while the heap holds fewer
 * than k entries the threshold is -inf. */
typedef struct cc_topk {
    float *sims;
    int64_t *ids;
    int size, k;
} cc_topk;

static inline void cc_topk_init(cc_topk *h, float *sims, int64_t *ids, int k) {
    h->sims = sims;
    h->ids = ids;
    h->size = 0;
    h->k = k;
}

/* Similarity a candidate must exceed to enter. */
static inline float cc_topk_threshold(const cc_topk *h) { return h->size < h->k ? -INFINITY : h->sims[0]; }

static inline void cc_topk_sift_down(float *sims, int64_t *ids, int size, int pos) {
    float s = sims[pos];
    int64_t id = ids[pos];
    for (;;) {
        int child = 2 * pos + 1;
        if (child >= size) break;
        if (child + 1 < size && sims[child + 1] < sims[child]) child++;
        if (sims[child] >= s) break;
        sims[pos] = sims[child];
        ids[pos] = ids[child];
        pos = child;
    }
    sims[pos] = s;
    ids[pos] = id;
}

/* Inserts when sim beats the threshold (or the heap is not full). */
static inline void cc_topk_push(cc_topk *h, float sim, int64_t id) {
    if (h->size < h->k) {
        int pos = h->size++;
        while (pos > 0) {
            int parent = (pos - 1) / 2;
            if (h->sims[parent] <= sim) break;
            h->sims[pos] = h->sims[parent];
            h->ids[pos] = h->ids[parent];
            pos = parent;
        }
        h->sims[pos] = sim;
        h->ids[pos] = id;
    } else if (sim > h->sims[0]) {
        h->sims[0] = sim;
        h->ids[0] = id;
        cc_topk_sift_down(h->sims, h->ids, h->size, 0);
    }
}

/* Sorts the kept entries best first (heap sort in place) and pads to k with (-inf, -1).
 * Equal similarities are ordered by id so results do not depend on scan order. */
static inline void cc_topk_finish(cc_topk *h) {
    int n = h->size;
    for (int end = n - 1; end > 0; end--) {
        float s = h->sims[0];
        int64_t id = h->ids[0];
        h->sims[0] = h->sims[end];
        h->ids[0] = h->ids[end];
        h->sims[end] = s;
        h->ids[end] = id;
        cc_topk_sift_down(h->sims, h->ids, end, 0);
    }
    /* now descending; fix runs of equal similarity to ascending id (rare, short runs) */
    for (int i = 1; i < n; i++) {
        float s = h->sims[i];
        int64_t id = h->ids[i];
        int j = i;
        while (j > 0 && h->sims[j - 1] == s && h->ids[j - 1] > id) {
            h->ids[j] = h->ids[j - 1];
            j--;
        }
        h->ids[j] = id;
    }
    for (int i = n; i < h->k; i++) {
        h->sims[i] = -INFINITY;
        h->ids[i] = -1;
    }
    h->size = h->k;
}

#endif
