/* index.h — clipc's vector indexes: one API for exact (Flat, scalar-quantised SQ8/F16/BF16), inverted-file (IVF-Flat, IVF-PQ),
 * product-quantised (PQ) and graph (HNSW) search over float vectors, with inner-product or L2
 * metric, int64 ids, removal, allow-list filters, per-item metadata and an mmap-able file format.
 *
 * Index types are named by a description string in faiss's factory style:
 *   "Flat"                   exact search (SIMD scan for few queries, GEMM for batches)
 *   "IVF<nlist>,Flat"        inverted lists of raw vectors
 *   "IVF<nlist>,PQ<M>[x8]"   inverted lists of residual PQ codes (M bytes per vector)
 *   "PQ<M>[x8]"              PQ codes, scanned exhaustively
 *   "PQ<M>x4fs", "IVF<nlist>,PQ<M>x4fs"  4-bit fast-scan PQ (M/2 bytes per vector, M even; codes
 *                            packed in blocks of 32, u8 tables looked up with vpshufb), exhaustive
 *                            or inverted lists of residual codes
 *   "...,RFlat"              (after a PQ type) keep the float vectors too and re-rank the top
 *                            k*rerank PQ candidates exactly
 *   "HNSW<M>" / "HNSW<M>,Flat"  hierarchical navigable small-world graph over raw vectors
 *   "SQ8" / "Flat,SQ8"       exact scan over 8-bit scalar codes (per-dimension min/max, trained)
 *   "F16", "BF16" (also "Flat,F16", "Flat,BF16")  exact scan over 16-bit float codes
 *   "...,RFlat"              (after SQ8/F16/BF16 too) keep the float vectors and re-rank the top
 *                            k*rerank code candidates exactly
 *
 * Scores: inner product (higher is better) for CC_METRIC_IP, squared L2 distance (lower is better)
 * for CC_METRIC_L2. Results are sorted best first; slots with no result (a filter that allows
 * fewer than k ids) hold id -1 and score -inf (IP) / +inf (L2).
 *
 * Ids: cc_index_add numbers vectors 0, 1, 2, ... in insertion order; cc_index_add_with_ids takes
 * caller ids, which must be >= 0 and unique within the index. Removed ids may be added again.
 *
 * Threads: search parallelises over queries and build over vectors, with cc_get_threads() threads.
 * Searching one index from several threads at once is safe; adding, removing or changing
 * parameters must not overlap with anything else on the same index.
 *
 * Errors: functions return 0 (or a count) on success and -1 / NULL on error, with cc_last_error()
 * naming what is wrong (engine/util.h).
 */
#ifndef CLIPC_INDEX_H
#define CLIPC_INDEX_H

#include <stdint.h>

typedef enum { CC_METRIC_IP = 0, CC_METRIC_L2 = 1 } cc_metric;

typedef struct cc_index cc_index;

/* Allow-list for filtered search: id i may be returned iff i < n_bits and bit (i % 64) of
 * words[i / 64] is set. */
typedef struct cc_id_filter {
    const uint64_t *words;
    int64_t n_bits;
} cc_id_filter;

/* Per-call search settings; a 0 / NULL field means "the index's current default". */
typedef struct cc_search_params {
    int nprobe;    /* IVF: inverted lists visited per query (clamped to nlist) */
    int ef_search; /* HNSW: size of the dynamic candidate list (raised to k when smaller) */
    int rerank;    /* RFlat: PQ candidates re-scored exactly = k * rerank */
    const cc_id_filter *filter;
} cc_search_params;

/* ---- lifetime */
cc_index *cc_index_create(const char *desc, int dim, cc_metric metric);
void cc_index_free(cc_index *index);

/* ---- description */
const char *cc_index_desc(const cc_index *index); /* canonical description, e.g. "IVF1024,PQ64" */
int cc_index_dim(const cc_index *index);
cc_metric cc_index_metric(const cc_index *index);
const char *cc_metric_name(cc_metric metric);     /* "ip" / "l2" */
int64_t cc_index_count(const cc_index *index);     /* vectors that can be returned (not removed) */
int64_t cc_index_next_id(const cc_index *index);   /* id cc_index_add gives next: 1 + the largest id so far */
int cc_index_is_trained(const cc_index *index);
/* Approximate bytes held by the index (vectors, codes, graph, ids, metadata). */
int64_t cc_index_memory_bytes(const cc_index *index);

/* ---- build */
/* Learns the coarse quantiser / PQ codebooks from n vectors (IVF and PQ types; a no-op for Flat
 * and HNSW). Uses at most 256 points per centroid, sampled with the index seed. */
int cc_index_train(cc_index *index, int64_t n, const float *x);
int cc_index_add(cc_index *index, int64_t n, const float *x);
int cc_index_add_with_ids(cc_index *index, int64_t n, const float *x, const int64_t *ids);
/* As add_with_ids (ids may be NULL), and stores per item a UTF-8 text (path or caption; texts or
 * texts[i] may be NULL) and a timestamp (timestamps may be NULL). */
int cc_index_add_items(cc_index *index, int64_t n, const float *x, const int64_t *ids,
                       const char *const *texts, const int64_t *timestamps);
/* As cc_index_add_items, with a tag list per item (tags or tags[i] may be NULL): "cat, dog" — tags
 * separated by ',', stored normalised ("cat,dog"; filter.h cc_tags_normalize says what a tag may hold),
 * matched by the filter clause tag=. A bad tag list fails the call before anything changes. */
int cc_index_add_items_tagged(cc_index *index, int64_t n, const float *x, const int64_t *ids,
                              const char *const *texts, const int64_t *timestamps, const char *const *tags);
/* Removes the given ids (unknown ids are ignored); returns how many were removed, or -1. */
int64_t cc_index_remove(cc_index *index, int64_t n, const int64_t *ids);

/* ---- search: out_ids and out_scores hold nq * k entries (out_scores may be NULL). k must not
 * exceed cc_index_count(). */
int cc_index_search(const cc_index *index, int64_t nq, const float *queries, int k, int64_t *out_ids,
                    float *out_scores);
int cc_index_search_filtered(const cc_index *index, int64_t nq, const float *queries, int k,
                             const cc_id_filter *allow, int64_t *out_ids, float *out_scores);
int cc_index_search_ex(const cc_index *index, int64_t nq, const float *queries, int k,
                       const cc_search_params *params, int64_t *out_ids, float *out_scores);

/* Writes the stored (for PQ: decoded) vector of an id into out[dim]; -1 when the id is absent. */
int cc_index_reconstruct(const cc_index *index, int64_t id, float *out);

/* ---- parameters, by name:
 *   "nprobe"          IVF search default (1..nlist; larger values are clamped, returning 1)
 *   "efSearch"        HNSW search default
 *   "rerank"          RFlat re-ranking factor (default 4; PQ and SQ types)
 *   "efConstruction"  HNSW build (default 200); set before adding
 *   "seed"            training samples, k-means init and HNSW levels (default 1234)
 *   "nlist", "M", "nbits"  read-only structure
 * set returns 0, 1 when the value was clamped, -1 for an unknown name or bad value. get returns
 * -1 for a name that does not apply to the index type. */
int cc_index_set_param(cc_index *index, const char *name, int64_t value);
int64_t cc_index_get_param(const cc_index *index, const char *name);

/* ---- file: save is atomic (temp file + rename). load maps the file (mmap, copy-on-write: the
 * big arrays are used in place, and pages are copied only when the index is modified) and checks
 * every size, offset and section CRC32. */
int cc_index_save(const cc_index *index, const char *path);
cc_index *cc_index_load(const char *path);
#define CC_INDEX_LOAD_NO_CRC 1 /* skip the CRC pass (sizes and offsets are still checked) */
cc_index *cc_index_load_flags(const char *path, int flags);

/* ---- metadata: a small key/value map (model name, tuned search parameters, ...) and per-item
 * text and timestamp. Keys "search.nprobe", "search.efSearch" and "search.rerank" mirror the
 * search defaults: setting one sets the parameter (and set_param updates the key). */
int cc_index_set_meta(cc_index *index, const char *key, const char *value); /* value NULL: remove */
const char *cc_index_get_meta(const cc_index *index, const char *key);      /* NULL if absent */
int cc_index_meta_count(const cc_index *index);
int cc_index_meta_at(const cc_index *index, int i, const char **key, const char **value);
/* Text of an id (NULL when the id is unknown or has none). Valid until the index is modified. */
const char *cc_index_item_text(const cc_index *index, int64_t id);
/* 1 and *out set when the id has a timestamp, 0 when it has none, -1 when the id is unknown. */
int cc_index_item_timestamp(const cc_index *index, int64_t id, int64_t *out);
int cc_index_has_item_texts(const cc_index *index);
/* Tag list of an id ("cat,dog"; NULL when the id is unknown or has none). Valid until the index is modified. */
const char *cc_index_item_tags(const cc_index *index, int64_t id);
int cc_index_has_item_tags(const cc_index *index);

/* ---- tuning: picks the smallest nprobe (IVF) or efSearch (HNSW) — for RFlat also the re-rank
 * factor — whose recall@k against exact search on the given queries reaches target_recall, and
 * makes it the index default (saved with the index). Exact neighbours come from the vectors the
 * index stores; PQ types without RFlat need the original vectors (exact, n_exact rows, in id
 * order 0..n_exact-1 as added without ids), else pass NULL. */
typedef struct cc_tune_result {
    int nprobe, ef_search, rerank; /* chosen values (0 when not applicable) */
    double recall;                 /* recall@k at the chosen values */
    double queries_per_s;          /* measured at the chosen values */
    int reached;                   /* 0 when even the largest setting missed the target */
} cc_tune_result;
int cc_index_tune(cc_index *index, int64_t nq, const float *queries, int k, double target_recall,
                  const float *exact_vectors, int64_t n_exact, cc_tune_result *out);

/* Checks that n rows of dim floats hold no NaN/Inf; the error names the first rows at fault. */
int cc_check_finite(const float *x, int64_t n, int dim, const char *what);

#endif
