/* manifest.h — sharded indexes: a small JSON manifest naming N shard index files (paths relative to
 * the manifest), and a merged top-k search over all shards, using only index.h's public API.
 *
 * Ids are global and unique across shards; id i lives in shard i % N (so `index add` and
 * `index remove` route an id without loading other shards). A merged search asks every shard for
 * its best min(k, count) results and keeps the k best overall; equal scores are ordered by id
 * (ascending), so results do not depend on the shard order.
 *
 * Manifest text (every field required, unknown keys refused):
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

/* All shards of a manifest, loaded. */
typedef struct cc_shards {
    cc_manifest m;
    cc_index **idx;
} cc_shards;
int cc_shards_open(const char *manifest_path, cc_shards *out);
void cc_shards_close(cc_shards *s);
int64_t cc_shards_count(const cc_shards *s);
/* Searches every shard (params applied to each) and merges; k must not exceed cc_shards_count. */
int cc_shards_search(const cc_shards *s, int64_t nq, const float *queries, int k, const cc_search_params *params,
                     int64_t *out_ids, float *out_scores);

/* Builds n rows of x (ids: NULL = 0..n-1; texts may be NULL) into n_shards indexes of type desc,
 * id i into shard i % n_shards (each shard trained on its own rows), saved as OUT.shard<s> next to
 * the manifest written at out. ef_construction / seed: 0 / -1 keep the defaults. */
int cc_shards_build(const char *out, const char *desc, int dim, cc_metric metric, const char *model, int64_t n,
                    const float *x, const int64_t *ids, const char *const *texts, int n_shards,
                    int64_t ef_construction, int64_t seed);

#endif
