/* manifest.h — sharded indexes: a small JSON manifest naming N shard index files (paths relative to
 * the manifest; index/manifest.c), and the shards in memory: merged top-k search, build, add and
 * remove (index/shards.c), using only index.h's public API. Single process: every shard is loaded
 * and searched here, one after the other (each search is itself multi-threaded).
 *
 * Ids are global and unique across shards; id i lives in shard i % N (so `index add` and
 * `index remove` know an id's shard from the id alone). A merged search asks every shard for
 * its best min(k, count) results and keeps the k best overall; equal scores are ordered by id
 * (ascending), so results do not depend on the shard order.
 *
 * Manifest text (every field required, unknown keys refused, no shard file named twice; docs/FORMATS.md):
 *   {"clipc_manifest": 1, "type": "Flat", "metric": "ip", "dim": 512, "model": "ViT-B-32",
 *    "shards": [{"file": "idx.shard0", "count": 1000}, ...]}
 */
#ifndef CLIPC_INDEX_MANIFEST_H
#define CLIPC_INDEX_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "index/index.h"

#define CC_MANIFEST_MAX_SHARDS 4096

typedef struct cc_manifest {
    char *type;      /* index description, e.g. "Flat" */
    cc_metric metric;
    int dim;
    char *model;     /* may be "" */
    int n_shards;
    char **files;    /* as written in the manifest (relative to it) */
    int64_t *counts; /* items per shard */
} cc_manifest;

/* 1 when the file starts (after whitespace) with '{' — a manifest rather than an index file. */
int cc_manifest_is_manifest(const char *path);
/* Parses and checks every field; errors name the file. */
int cc_manifest_load(const char *path, cc_manifest *out);
/* Parses a manifest held in memory (name used in errors). */
int cc_manifest_parse(const char *text, size_t len, const char *name, cc_manifest *out);
/* Writes atomically (temp file + rename). */
int cc_manifest_save(const cc_manifest *m, const char *path);
void cc_manifest_free(cc_manifest *m);
/* Path of shard s: its file name joined to the manifest's directory (malloc'd). */
char *cc_manifest_shard_path(const char *manifest_path, const char *file);
/* Shard that holds a global id: id % n_shards. */
static inline int cc_manifest_shard_of(int64_t id, int n_shards) { return (int)(id % n_shards); }

/* Merges per-shard results: n_lists lists of nq x k_list[s] (ids, scores), best first, -1 ids
 * ignored, into nq x k (ties by ascending id; missing slots id -1, worst score). */
int cc_topk_merge(int n_lists, const int64_t *const *ids, const float *const *scores, const int *k_list,
                  int64_t nq, int k, cc_metric metric, int64_t *out_ids, float *out_scores);

/* ---- a sharded index in memory (index/shards.c)
 *
 * Writing: every shard that changes is saved under a fresh name (FILE.shard<s> and FILE.shard<s>.alt
 * alternate), then the manifest is replaced (temp file + rename: the one commit point), then the
 * files it no longer names are deleted. An error before the commit removes the new files and leaves
 * the manifest and every file it names as they were. */
typedef struct cc_shards {
    cc_manifest m;
    cc_index **idx; /* m.n_shards loaded shards */
} cc_shards;

/* Loads the manifest and every shard; each shard must match the manifest's type, dim, metric and
 * count (errors name the manifest and the shard file). flags as cc_index_load_flags. */
int cc_shards_open(const char *manifest_path, cc_shards *out);
int cc_shards_open_flags(const char *manifest_path, int flags, cc_shards *out);
void cc_shards_close(cc_shards *s);
int64_t cc_shards_count(const cc_shards *s);
/* The shard an id belongs to (whether or not it is there). */
const cc_index *cc_shards_owner(const cc_shards *s, int64_t id);
/* 1 + the largest id any shard has held: the first automatic id of cc_shards_add. */
int64_t cc_shards_next_id(const cc_shards *s);
/* Searches every shard (params applied to each) and merges; k must not exceed cc_shards_count. */
int cc_shards_search(const cc_shards *s, int64_t nq, const float *queries, int k, const cc_search_params *params,
                     int64_t *out_ids, float *out_scores);
/* The same with allow[i] as shard i's filter (an allow-list built over that shard's ids; NULL: none). */
int cc_shards_search_filtered(const cc_shards *s, int64_t nq, const float *queries, int k,
                              const cc_search_params *params, const cc_id_filter *allow, int64_t *out_ids,
                              float *out_scores);

/* Adds n rows (ids NULL: cc_shards_next_id, +1, ...; texts / timestamps / tags may be NULL), each into
 * shard id % n_shards, and commits the changed shards and the manifest at manifest_path. */
int cc_shards_add(cc_shards *s, const char *manifest_path, int64_t n, const float *x, const int64_t *ids,
                  const char *const *texts, const int64_t *timestamps, const char *const *tags);
/* Removes ids (unknown ones ignored) from their shards and commits; returns how many were removed. */
int64_t cc_shards_remove(cc_shards *s, const char *manifest_path, int64_t n, const int64_t *ids);

/* How cc_shards_build makes each shard. */
typedef struct cc_shard_spec {
    const char *desc;               /* index type, e.g. "Flat", "HNSW32", "IVF64,Flat" */
    int dim;
    cc_metric metric;
    int n_shards;
    int64_t ef_construction, seed;  /* 0 / -1 keep the defaults */
    const cc_index *meta_from;      /* its metadata is copied into every shard (may be NULL); its
                                       "model" entry becomes the manifest's "model" */
} cc_shard_spec;

/* Builds n rows of x (ids: NULL = 0..n-1; texts / timestamps / tags may be NULL) into spec->n_shards
 * indexes, id i into shard i % n_shards, each trained on its own rows, and commits them with a new
 * manifest at out (files of a manifest that was there before and are no longer named are deleted). */
int cc_shards_build(const char *out, const cc_shard_spec *spec, int64_t n, const float *x, const int64_t *ids,
                    const char *const *texts, const int64_t *timestamps, const char *const *tags);

#endif
