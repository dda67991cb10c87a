/* flat_sq.c — exact scan over scalar-quantised codes: "SQ8", "F16", "BF16" (also spelled
 * "Flat,SQ8", ...), optionally ",RFlat" (keep the float vectors and re-score the best k * rerank
 * code candidates exactly). A type of its own behind cc_flat_sq_ops; the codes and kernels are in
 * sq.c.
 *
 * Memory layout: codes [n_slots][code bytes] in slot order, contiguous (SQ8: dim bytes, F16/BF16:
 * 2·dim bytes); SQ8 adds vmin[dim] and scale[dim] (float32, "sqrange" section). RFlat keeps the
 * float rows in idx->vectors. File sections: sqrange (trained SQ8), sqcodes, and vectors (RFlat).
 *
 * Search: threads over queries; each query scans the codes in blocks with cc_sq_rows into a top-k
 * heap (k * rerank candidates with RFlat, then exact re-scoring).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"
#include "index/sq.h"
#include "index/topk.h"

#define SQ_SCAN_BLOCK 256 /* code rows scored per kernel call */

typedef struct flat_sq {
    cc_sq sq;
    int refine;
    size_t code_bytes;
    cc_buf codes;
    cc_buf range; /* SQ8: float vmin[d] then scale[d] */
} flat_sq;

static inline flat_sq *fsq_of(const cc_index *idx) { return (flat_sq *)idx->impl; }

static void point_range(flat_sq *f, int d) {
    f->sq.vmin = f->range.size ? (const float *)f->range.ptr : NULL;
    f->sq.scale = f->range.size ? (const float *)f->range.ptr + d : NULL;
}

static int fsq_init(cc_index *idx, const cc_index_spec *spec) {
    flat_sq *f = cc_calloc(1, sizeof *f, "SQ state");
    if (!f) return -1;
    idx->impl = f;
    f->sq.kind = (cc_sq_kind)spec->storage;
    f->sq.d = idx->dim;
    f->refine = spec->refine;
    f->code_bytes = cc_sq_code_bytes(f->sq.kind, idx->dim);
    idx->exact_vectors = f->refine;
    idx->trained = f->sq.kind != CC_SQ_8; /* only SQ8 learns ranges */
    return 0;
}

static void fsq_free(cc_index *idx) {
    flat_sq *f = fsq_of(idx);
    if (!f) return;
    cc_buf_free(&f->codes);
    cc_buf_free(&f->range);
    free(f);
    idx->impl = NULL;
}

static int fsq_train(cc_index *idx, int64_t n, const float *x) {
    flat_sq *f = fsq_of(idx);
    if (f->sq.kind != CC_SQ_8) return 0;
    if (n < 1) {
        cc_set_error("training %s needs at least one vector", idx->desc);
        return -1;
    }
    if (cc_buf_resize(&f->range, (size_t)idx->dim * 2 * sizeof(float), "SQ8 ranges") != 0) return -1;
    float *r = (float *)f->range.ptr;
    cc_sq8_train(x, n, idx->dim, r, r + idx->dim);
    point_range(f, idx->dim);
    return 0;
}

static int fsq_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                   int64_t new_n_slots) {
    (void)labels;
    flat_sq *f = fsq_of(idx);
    size_t bytes, vec_bytes;
    if (!cc_mul_size((size_t)new_n_slots, f->code_bytes, &bytes) ||
        !cc_mul_size((size_t)new_n_slots, (size_t)idx->dim * sizeof(float), &vec_bytes)) {
        cc_set_error("%s add: %lld vectors overflow memory", idx->desc, (long long)new_n_slots);
        return -1;
    }
    if (cc_buf_resize(&f->codes, bytes, "SQ codes") != 0) return -1;
    if (f->refine && cc_buf_resize(&idx->vectors, vec_bytes, "re-ranking vectors") != 0) return -1;
    size_t d = (size_t)idx->dim;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        cc_sq_encode(&f->sq, x + (size_t)i * d, 1, f->codes.ptr + (size_t)slots[i] * f->code_bytes);
        if (f->refine) memcpy((float *)idx->vectors.ptr + (size_t)slots[i] * d, x + (size_t)i * d, d * sizeof(float));
    }
    return 0;
}

/* Scans all code rows for one query into the heap. */
static void scan_query(const cc_index *idx, const flat_sq *f, const float *q, const cc_id_filter *filter,
                       float *factors, cc_topk *heap) {
    cc_sq_query qs;
    int ip = idx->metric == CC_METRIC_IP;
    cc_sq_query_prepare(&qs, &f->sq, q, ip, factors);
    cc_isa isa = cc_cpu_isa();
    float scores[SQ_SCAN_BLOCK];
    for (int64_t b = 0; b < idx->n_slots; b += SQ_SCAN_BLOCK) {
        size_t count = (size_t)(idx->n_slots - b < SQ_SCAN_BLOCK ? idx->n_slots - b : SQ_SCAN_BLOCK);
        cc_sq_rows(&qs, f->codes.ptr + (size_t)b * f->code_bytes, count, scores, isa);
        float threshold = cc_topk_threshold(heap);
        for (size_t i = 0; i < count; i++) {
            float sim = ip ? scores[i] : -scores[i];
            if (sim > threshold && cc_slot_ok(idx, filter, b + (int64_t)i)) {
                cc_topk_push(heap, sim, b + (int64_t)i);
                threshold = cc_topk_threshold(heap);
            }
        }
    }
}

static int fsq_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                      int64_t *out_slots, float *out_sims) {
    const flat_sq *f = fsq_of(idx);
    int heap_k = k;
    if (f->refine) {
        int64_t want = (int64_t)k * ctx->rerank;
        heap_k = want > idx->n_live ? (int)idx->n_live : (int)want;
        if (heap_k < k) heap_k = k;
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *factors = cc_malloc((size_t)idx->dim * sizeof(float), "SQ query");
        float *cand_sims = f->refine ? cc_malloc((size_t)heap_k * sizeof(float), "re-rank candidates") : NULL;
        int64_t *cand = f->refine ? cc_malloc((size_t)heap_k * sizeof(int64_t), "re-rank candidates") : NULL;
        if (!factors || (f->refine && (!cand_sims || !cand))) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < nq; i++) {
            if (failed) continue;
            cc_topk heap;
            if (f->refine) cc_topk_init(&heap, cand_sims, cand, heap_k);
            else cc_topk_init(&heap, out_sims + i * k, out_slots + i * k, k);
            scan_query(idx, f, q + i * idx->dim, ctx->filter, factors, &heap);
            if (f->refine) cc_rerank_exact(idx, q + i * idx->dim, cand, heap.size, k, out_slots + i * k, out_sims + i * k);
            else cc_topk_finish(&heap);
        }
        free(factors);
        free(cand_sims);
        free(cand);
    }
    return failed ? -1 : 0;
}

static int fsq_reconstruct(const cc_index *idx, int64_t slot, float *out) {
    const flat_sq *f = fsq_of(idx);
    cc_sq_decode(&f->sq, f->codes.ptr + (size_t)slot * f->code_bytes, out);
    return 0;
}

static const float *fsq_slot_vector(const cc_index *idx, int64_t slot) {
    return (const float *)idx->vectors.ptr + slot * idx->dim; /* RFlat only (exact_vectors) */
}

static int fsq_save(const cc_index *idx, cc_writer *w) {
    const flat_sq *f = fsq_of(idx);
    if (f->range.size &&
        (cc_writer_section(w, "sqrange") != 0 || cc_writer_write(w, f->range.ptr, f->range.size) != 0))
        return -1;
    if (cc_writer_section(w, "sqcodes") != 0 ||
        cc_writer_write(w, f->codes.ptr, (size_t)idx->n_slots * f->code_bytes) != 0)
        return -1;
    return 0;
}

static int fsq_load(cc_index *idx, const cc_reader *r) {
    flat_sq *f = fsq_of(idx);
    size_t n = (size_t)idx->n_slots, bytes;
    int d = idx->dim;
    const uint8_t *p;
    if (f->refine && cc_load_float_rows(idx, r, 0) != 0) return -1;
    if (f->sq.kind == CC_SQ_8 && idx->trained) {
        size_t range_bytes = (size_t)d * 2 * sizeof(float);
        if (cc_reader_get(r, "sqrange", range_bytes, 1, &p, NULL) < 0) return -1;
        const float *range = (const float *)p;
        if (cc_check_finite(range, 2, d, "SQ8 ranges") != 0) {
            cc_prefix_error("%s", r->path);
            return -1;
        }
        for (int j = 0; j < d; j++)
            if (range[d + j] < 0) {
                cc_set_error("%s: SQ8 scale of dimension %d is negative", r->path, j);
                return -1;
            }
        cc_buf_view(&f->range, p, range_bytes);
        point_range(f, d);
    } else if (f->sq.kind == CC_SQ_8 && n > 0) {
        cc_set_error("%s: untrained %s index holds vectors", r->path, idx->desc);
        return -1;
    }
    if (!cc_mul_size(n, f->code_bytes, &bytes)) {
        cc_set_error("%s: code size overflows", r->path);
        return -1;
    }
    if (cc_reader_get(r, "sqcodes", bytes, 1, &p, NULL) < 0) return -1;
    if (n) cc_buf_view(&f->codes, p, bytes);
    return 0;
}

static int64_t fsq_memory(const cc_index *idx) {
    const flat_sq *f = fsq_of(idx);
    return (int64_t)(f->codes.size + f->range.size);
}

static int64_t fsq_get_param(const cc_index *idx, const char *name) {
    if (!strcmp(name, "rerank")) return fsq_of(idx)->refine ? idx->rerank : -1;
    return -1;
}

static int fsq_set_param(cc_index *idx, const char *name, int64_t value) {
    if (strcmp(name, "rerank") != 0 || !fsq_of(idx)->refine) return CC_PARAM_NOT_APPLICABLE;
    if (value < 1 || value > CC_INDEX_MAX_RERANK) return CC_PARAM_BAD_VALUE;
    idx->rerank = (int)value;
    return 0;
}

static int fsq_tune_space(const cc_index *idx, int k, cc_tune_space *out) {
    (void)k, (void)out;
    cc_set_error("tune: %s scans every code; there is no search parameter to tune (not yet: the re-rank factor)",
                 idx->desc);
    return -1;
}

const cc_index_ops cc_flat_sq_ops = {
    .name = "SQ",
    .init = fsq_init,
    .free = fsq_free,
    .train = fsq_train,
    .add = fsq_add,
    .search = fsq_search,
    .reconstruct = fsq_reconstruct,
    .slot_vector = fsq_slot_vector,
    .save = fsq_save,
    .load = fsq_load,
    .memory = fsq_memory,
    .get_param = fsq_get_param,
    .set_param = fsq_set_param,
    .tune_space = fsq_tune_space,
};
