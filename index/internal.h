/* internal.h — what the index types share behind index/index.h: the cc_index struct, growable
 * buffers that may point into a mapped file, slots, labels, tombstones, the label→slot map, and
 * the entry points each type implements. Not part of the public API.
 *
 * Slots: every vector ever added gets a slot number (0, 1, 2, ...), the row of the per-item arrays
 * (labels, tombstones, stored vectors, metadata). Removing an id marks its slot removed; later
 * adds take removed slots first, so space is reused. IVF lists and HNSW links hold slot numbers
 * (uint32), the public API sees labels (the ids).
 */
#ifndef CLIPC_INDEX_INTERNAL_H
#define CLIPC_INDEX_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "index/index.h"

#define CC_INDEX_MAX_DIM 65536        /* largest vector dimension accepted */
#define CC_INDEX_DESC_MAX 48          /* description string, with its NUL */
#define CC_INDEX_MAX_SLOTS 0xFFFFFFF0ll /* slots are stored as uint32 in lists and links */
#define CC_INDEX_NO_TIMESTAMP INT64_MIN /* item_time value of an item without timestamp */
#define CC_INDEX_DEFAULT_SEED 1234
#define CC_INDEX_DEFAULT_RERANK 4
#define CC_INDEX_DEFAULT_EF_CONSTRUCTION 200
#define CC_INDEX_DEFAULT_EF_SEARCH 64
#define CC_INDEX_DEFAULT_NPROBE 8

typedef enum { CC_KIND_FLAT = 0, CC_KIND_IVF = 1, CC_KIND_HNSW = 2 } cc_index_kind;

/* A byte array that is either heap memory we own or a view into the mapped file. Views are
 * writable in place (the mapping is private copy-on-write); growing a view copies it to the heap. */
typedef struct cc_buf {
    uint8_t *ptr;
    size_t size; /* bytes in use */
    size_t cap;  /* bytes allocated (owned) */
    int owned;
} cc_buf;

int cc_buf_reserve(cc_buf *b, size_t bytes, const char *what); /* cap >= bytes, owned */
int cc_buf_resize(cc_buf *b, size_t bytes, const char *what);  /* size = bytes; new bytes zeroed */
int cc_buf_append(cc_buf *b, const void *data, size_t bytes, const char *what);
void cc_buf_view(cc_buf *b, const void *ptr, size_t size);
void cc_buf_free(cc_buf *b);

/* Open-addressing map from label to slot (linear probing, backward-shift deletion). */
typedef struct cc_label_map {
    int64_t *keys; /* -1 = empty */
    int64_t *values;
    int64_t cap;   /* power of two */
    int64_t count;
} cc_label_map;

struct cc_ivf;
struct cc_hnsw;

struct cc_index {
    cc_index_kind kind;
    int dim;
    cc_metric metric;
    char desc[CC_INDEX_DESC_MAX];
    int trained;

    int64_t n_slots;    /* slots in use, live or removed */
    int64_t n_live;
    int64_t next_id;    /* id that cc_index_add gives next: 1 + the largest id so far */
    int labels_identity; /* every label equals its slot: no labels array, no map needed */
    cc_buf labels;      /* int64 per slot unless labels_identity (HNSW keeps labels in its records) */
    cc_buf removed;     /* uint64 bitmap over slots; empty while nothing was removed */
    int64_t n_removed;

    cc_buf vectors;     /* float [n_slots][dim]: Flat data and RFlat re-ranking vectors */
    cc_buf norms;       /* float per slot: squared norms (Flat with L2) */

    /* metadata */
    cc_buf item_text;   /* {uint64 offset, uint64 length} per slot into text_pool; empty = none */
    cc_buf text_pool;   /* UTF-8 strings, each followed by a NUL */
    cc_buf item_time;   /* int64 per slot; empty = none */
    int n_kv;
    char **kv_keys, **kv_values;

    /* label -> slot, built on first use when labels are not the identity */
    cc_label_map map;
    int map_valid;
    pthread_mutex_t map_lock;

    /* parameters */
    int nprobe, ef_search, rerank, ef_construction;
    uint64_t seed;

    struct cc_ivf *ivf;
    struct cc_hnsw *hnsw;

    /* mapped file, when loaded */
    void *map_base;
    size_t map_size;
};

/* ---- slots */
static inline int cc_slot_removed(const cc_index *idx, int64_t slot) {
    if (!idx->removed.size) return 0;
    const uint64_t *w = (const uint64_t *)idx->removed.ptr;
    return (int)((w[slot >> 6] >> (slot & 63)) & 1);
}
int64_t cc_hnsw_slot_label(const cc_index *idx, int64_t slot);
static inline int64_t cc_slot_label(const cc_index *idx, int64_t slot) {
    if (idx->kind == CC_KIND_HNSW) return cc_hnsw_slot_label(idx, slot);
    return idx->labels_identity ? slot : ((const int64_t *)idx->labels.ptr)[slot];
}
static inline int cc_filter_allows(const cc_id_filter *f, int64_t label) {
    return label >= 0 && label < f->n_bits && ((f->words[label >> 6] >> (label & 63)) & 1);
}
/* May this slot be returned? (not removed, and allowed by the filter when there is one) */
static inline int cc_slot_ok(const cc_index *idx, const cc_id_filter *filter, int64_t slot) {
    if (cc_slot_removed(idx, slot)) return 0;
    return !filter || cc_filter_allows(filter, cc_slot_label(idx, slot));
}
/* Slot of a label, or -1. Thread-safe (builds the map under a lock on first use). */
int64_t cc_label_to_slot(const cc_index *idx, int64_t label);

/* Internal search results: per query k (slot, similarity) pairs sorted best first, slot -1 pad. */
typedef struct cc_search_ctx {
    int nprobe, ef_search, rerank;
    const cc_id_filter *filter;
} cc_search_ctx;

/* similarity -> public score */
static inline float cc_sim_to_score(const cc_index *idx, float sim) {
    return idx->metric == CC_METRIC_L2 ? -sim : sim;
}

/* Brute force over the given slots (or all live slots when slots == NULL) with stored vectors
 * fetched by get_vec; used for small filters and re-ranking. */
typedef const float *(*cc_vec_getter)(const cc_index *idx, int64_t slot, float *scratch);

/* ---- per-type entry points */
int cc_flat_init(cc_index *idx);
void cc_flat_free(cc_index *idx);
int cc_flat_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, int64_t new_n_slots);
int cc_flat_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                   int64_t *out_slots, float *out_sims);
/* Exact GEMM search over n_rows vectors at base (row stride `stride` floats); rows are slots
 * (removed / filtered skipped) when check_slots; norms may be NULL (computed per block for L2). */
int cc_exact_search_rows(const cc_index *idx, const float *base, int64_t stride, int64_t n_rows, const float *norms,
                         int check_slots, const cc_id_filter *filter, int64_t nq, const float *q, int k,
                         int64_t *out_rows, float *out_sims);
/* Exact search over the float vectors in idx->vectors for slots (nq queries, each its own slot
 * list of n_cand entries); used by RFlat re-ranking. */
void cc_rerank_exact(const cc_index *idx, const float *q, const int64_t *cand, int n_cand, int k,
                     int64_t *out_slots, float *out_sims);

int cc_ivf_init(cc_index *idx, int nlist, int pq_m, int pq_nbits, int by_residual, int refine);
void cc_ivf_free(cc_index *idx);
int cc_ivf_train(cc_index *idx, int64_t n, const float *x);
int cc_ivf_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, int64_t new_n_slots);
int cc_ivf_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                  int64_t *out_slots, float *out_sims);
int cc_ivf_remove_slots(cc_index *idx, const uint64_t *slot_bitmap); /* bitmap over slots */
int cc_ivf_reconstruct_slot(const cc_index *idx, int64_t slot, float *out);
int64_t cc_ivf_memory(const cc_index *idx);
int cc_ivf_nlist(const cc_index *idx);
int64_t cc_ivf_get_param(const cc_index *idx, const char *name); /* nlist, M, nbits, refine; -1 if n/a */

int cc_hnsw_init(cc_index *idx, int M);
void cc_hnsw_free(cc_index *idx);
int cc_hnsw_add(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
                int64_t new_n_slots);
int cc_hnsw_search(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                   int64_t *out_slots, float *out_sims);
const float *cc_hnsw_vector(const cc_index *idx, int64_t slot);
int64_t cc_hnsw_memory(const cc_index *idx);
int64_t cc_hnsw_get_param(const cc_index *idx, const char *name); /* M; -1 if n/a */

/* ---- common layer (index.c) used by io.c and tune.c */
cc_index *cc_index_create_empty(int dim, cc_metric metric);
int cc_index_setup_type(cc_index *idx, const char *desc);
int cc_index_kv_set_raw(cc_index *idx, const char *key, const char *value);
int cc_utf8_valid(const char *s, size_t len);
/* Exact top-k over the given candidate slots using stored float vectors (Flat/HNSW/RFlat). */
int cc_index_has_exact_vectors(const cc_index *idx);
const float *cc_index_slot_vector(const cc_index *idx, int64_t slot);

/* ---- file format (io.c) */
void cc_index_unmap(cc_index *idx);
typedef struct cc_writer cc_writer;
int cc_writer_section(cc_writer *w, const char *name);
int cc_writer_write(cc_writer *w, const void *data, size_t bytes);

typedef struct cc_section {
    char name[9];
    uint64_t offset, size;
    uint32_t crc;
} cc_section;
typedef struct cc_reader {
    const char *path;
    const uint8_t *base;
    size_t file_size;
    int n_sections;
    cc_section *sections;
} cc_reader;
/* Finds a section: 1 = found (*ptr, *size set), 0 = absent and not required, -1 = error (absent
 * but required, or its size differs from expected_size; pass CC_ANY_SIZE to accept any). */
#define CC_ANY_SIZE ((size_t)-1)
int cc_reader_get(const cc_reader *r, const char *name, size_t expected_size, int required, const uint8_t **ptr,
                  size_t *size);

int cc_ivf_save(const cc_index *idx, cc_writer *w);
int cc_ivf_load(cc_index *idx, const cc_reader *r);
int cc_hnsw_save(const cc_index *idx, cc_writer *w);
int cc_hnsw_load(cc_index *idx, const cc_reader *r);
/* Type parameters as "key=value" pairs in the params section. */
int cc_hnsw_params(const cc_index *idx, char *buf, size_t size);
int cc_hnsw_set_params(cc_index *idx, const char *key, const char *value);

/* key\0value\0 lists (params and metakv sections) */
int cc_kv_parse(const uint8_t *data, size_t size, const char *path, const char *section,
                int (*fn)(void *ctx, const char *key, const char *value), void *ctx);

/* ---- shared helpers */
int cc_parse_int64(const char *text, int64_t lo, int64_t hi, int64_t *out);

#endif
