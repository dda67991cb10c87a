/* internal.h — what the index types share behind index/index.h: the cc_index struct, the table
 * of functions every index type implements (cc_index_ops), growable buffers that may point into a
 * mapped file, slots, labels, tombstones, the label→slot map. Not part of the public API.
 *
 * Floors inside index/ (each file calls only files on its floor or below):
 *   slots.c, distance.c, kmeans.c, pq.c, pq_fastscan.c, io.c's section reader/writer   buffers, maps, kernels
 *   flat.c, flat_sq.c, ivf.c, fastscan.c, hnsw.c   the types: one cc_index_ops table each
 *   factory.c                                 description string -> table + parameters
 *   index.c, io.c (save/load), tune.c         the dispatcher: public API over idx->ops
 * A new type plugs in with its table and one entry in factory.c; the dispatcher is unchanged.
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
#define CC_INDEX_MAX_RERANK 1024        /* largest re-ranking factor */
#define CC_INDEX_MAX_EF (1 << 20)       /* largest efSearch / efConstruction */

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

typedef struct cc_index_ops cc_index_ops;

struct cc_index {
    const cc_index_ops *ops; /* the type's table of functions (factory.c sets it) */
    void *impl;              /* the type's own state (struct cc_ivf, struct cc_hnsw, ...) */
    int exact_vectors;       /* the type keeps every slot's float vector (ops->slot_vector) */
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
    cc_buf item_tags;   /* {uint64 offset, uint64 length} per slot into tag_pool ("cat,dog"); empty = none */
    cc_buf tag_pool;    /* normalised tag lists, each followed by a NUL */
    int n_kv;
    char **kv_keys, **kv_values;

    /* label -> slot, built on first use when labels are not the identity */
    cc_label_map map;
    int map_valid;
    pthread_mutex_t map_lock;

    /* parameters */
    int nprobe, ef_search, rerank, ef_construction;
    uint64_t seed;

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

/* Internal search results: per query k (slot, similarity) pairs sorted best first, slot -1 pad. */
typedef struct cc_search_ctx {
    int nprobe, ef_search, rerank;
    const cc_id_filter *filter;
} cc_search_ctx;

/* similarity -> public score */
static inline float cc_sim_to_score(const cc_index *idx, float sim) {
    return idx->metric == CC_METRIC_L2 ? -sim : sim;
}

typedef struct cc_writer cc_writer;
typedef struct cc_reader cc_reader;

/* What the factory read from a description (factory.c); each type reads its own fields. */
typedef struct cc_index_spec {
    const cc_index_ops *ops;
    int nlist, pq_m, pq_nbits, by_residual, refine; /* IVF / PQ */
    int hnsw_m;                                     /* HNSW */
    int storage;                                    /* scalar codes: a cc_sq_kind (sq.h) */
} cc_index_spec;

/* The search knob that cc_index_tune sweeps (values lo..hi, recall growing with the value). */
typedef struct cc_tune_space {
    const char *knob;   /* parameter name: "nprobe", "efSearch" */
    int lo, hi;
    int exact_at_hi;    /* searching at hi is exact (IVF-Flat: every list): ground truth from it */
    int rerank;         /* the re-rank factor is tuned too (RFlat) */
} cc_tune_space;

/* Results of set_param in a type's table besides 0 (set) and 1 (clamped). */
#define CC_PARAM_NOT_APPLICABLE (-2)
#define CC_PARAM_BAD_VALUE (-3)

/* The table of functions of one index type (faiss's Index, hnswlib's AlgorithmInterface). The
 * dispatcher (index.c, io.c, tune.c) checks arguments, ids and slots, then calls these; a NULL
 * entry means the default noted on it. Slots are internal rows (internal.h, top). */
struct cc_index_ops {
    const char *name; /* family, for messages: "Flat", "IVF", "HNSW" */
    /* state from the parsed description; sets idx->impl and idx->exact_vectors */
    int (*init)(cc_index *idx, const cc_index_spec *spec);
    void (*free)(cc_index *idx);
    /* NULL: the type needs no training (it is trained from the start) */
    int (*train)(cc_index *idx, int64_t n, const float *x);
    /* stores n vectors at the given slots (reused or new, new_n_slots in all); labels are the ids */
    int (*add)(cc_index *idx, int64_t n, const float *x, const int64_t *slots, const int64_t *labels,
               int64_t new_n_slots);
    int (*search)(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_ctx *ctx,
                  int64_t *out_slots, float *out_sims);
    /* NULL: tombstones (the common removed bitmap) are enough */
    int (*remove)(cc_index *idx, const uint64_t *slot_bitmap);
    /* decoded vector of a slot; NULL or unused when exact_vectors (slot_vector is copied) */
    int (*reconstruct)(const cc_index *idx, int64_t slot, float *out);
    /* float vector of a slot, for types with exact_vectors */
    const float *(*slot_vector)(const cc_index *idx, int64_t slot);
    /* NULL: labels are the common labels array (or the identity); else the type stores them */
    int64_t (*slot_label)(const cc_index *idx, int64_t slot);
    /* type sections of the file (NULL: none); common sections are written by io.c */
    int (*save)(const cc_index *idx, cc_writer *w);
    int (*load)(cc_index *idx, const cc_reader *r);
    /* "key=value\n" lines for the params section, and reading one back (NULL: none) */
    int (*write_params)(const cc_index *idx, char *buf, size_t size);
    int (*read_param)(cc_index *idx, const char *key, const char *value);
    int64_t (*memory)(const cc_index *idx); /* bytes beyond the common arrays (NULL: 0) */
    /* -1 for a name that does not apply */
    int64_t (*get_param)(const cc_index *idx, const char *name);
    /* 0 / 1 (clamped), CC_PARAM_NOT_APPLICABLE or CC_PARAM_BAD_VALUE (NULL: nothing applies) */
    int (*set_param)(cc_index *idx, const char *name, int64_t value);
    /* 0 and *out filled; -1 with an error when there is nothing to tune (NULL: same) */
    int (*tune_space)(const cc_index *idx, int k, cc_tune_space *out);
};

extern const cc_index_ops cc_flat_ops, cc_flat_sq_ops, cc_ivf_ops, cc_hnsw_ops, cc_fastscan_ops;

static inline int64_t cc_slot_label(const cc_index *idx, int64_t slot) {
    if (idx->ops->slot_label) return idx->ops->slot_label(idx, slot);
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

#define CC_BITMAP_WORDS(n) (((size_t)(n) + 63) / 64)

/* ---- exact search over float rows (flat.c), shared by Flat, RFlat re-ranking, small filters
 * and tuning. Rows are slots (removed / filtered skipped) when check_slots; norms may be NULL
 * (computed per block for L2). */
int cc_exact_search_rows(const cc_index *idx, const float *base, int64_t stride, int64_t n_rows, const float *norms,
                         int check_slots, const cc_id_filter *filter, int64_t nq, const float *q, int k,
                         int64_t *out_rows, float *out_sims);
/* Exact top-k of one query over the float vectors of the n_cand candidate slots (idx->ops->slot_vector). */
void cc_rerank_exact(const cc_index *idx, const float *q, const int64_t *cand, int n_cand, int k,
                     int64_t *out_slots, float *out_sims);

/* ---- slots.c: per-item arrays, the label map, checks */
int cc_items_grow(cc_index *idx, int64_t new_n_slots, int need_text, int need_time, int need_tags);
int cc_item_set_text(cc_index *idx, int64_t slot, const char *text);
int cc_item_set_tags(cc_index *idx, int64_t slot, const char *tags); /* tags already normalised */
int cc_label_map_put(cc_index *idx, int64_t label, int64_t slot); /* keeps a valid map in step */
void cc_label_map_del(cc_index *idx, int64_t label);
void cc_label_map_free(cc_index *idx);

/* ---- factory.c: parses a description, sets idx->ops, idx->desc (canonical) and the type state */
int cc_index_setup_type(cc_index *idx, const char *desc);

/* ---- common layer (index.c) used by io.c and tune.c */
cc_index *cc_index_create_empty(int dim, cc_metric metric);
int cc_index_kv_set_raw(cc_index *idx, const char *key, const char *value);
int cc_utf8_valid(const char *s, size_t len);
static inline int cc_index_has_exact_vectors(const cc_index *idx) { return idx->exact_vectors; }
static inline const float *cc_index_slot_vector(const cc_index *idx, int64_t slot) {
    return idx->ops->slot_vector(idx, slot);
}

/* ---- file format (io.c) */
void cc_index_unmap(cc_index *idx);
int cc_writer_section(cc_writer *w, const char *name);
int cc_writer_write(cc_writer *w, const void *data, size_t bytes);

typedef struct cc_section {
    char name[9];
    uint64_t offset, size;
    uint32_t crc;
} cc_section;
struct cc_reader {
    const char *path;
    const uint8_t *base;
    size_t file_size;
    int n_sections;
    cc_section *sections;
};
/* Finds a section: 1 = found (*ptr, *size set), 0 = absent and not required, -1 = error (absent
 * but required, or its size differs from expected_size; pass CC_ANY_SIZE to accept any). */
#define CC_ANY_SIZE ((size_t)-1)
int cc_reader_get(const cc_reader *r, const char *name, size_t expected_size, int required, const uint8_t **ptr,
                  size_t *size);

/* The float vectors (and, with L2 when want_norms, their squared norms) of every slot from the
 * "vectors" / "norms" sections into idx->vectors / idx->norms: for types with exact_vectors. */
int cc_load_float_rows(cc_index *idx, const cc_reader *r, int want_norms);

/* key\0value\0 lists (params and metakv sections) */
int cc_kv_parse(const uint8_t *data, size_t size, const char *path, const char *section,
                int (*fn)(void *ctx, const char *key, const char *value), void *ctx);

/* ---- shared helpers */
int cc_parse_int64(const char *text, int64_t lo, int64_t hi, int64_t *out);

#endif
