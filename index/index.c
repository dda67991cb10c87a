/* index.c — the dispatcher of clipc's indexes: argument checks, ids and slots, removal, the
 * search entry points (which convert internal similarities and slots into scores and ids),
 * parameters and metadata, each calling the index type through its table of functions
 * (idx->ops, internal.h). The types live in flat.c, ivf.c and hnsw.c, descriptions in factory.c,
 * buffers, the label map and per-item arrays in slots.c, the file format in io.c, tuning in
 * tune.c. See index.h for the API. */
#include "index/index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/filter.h"
#include "index/internal.h"

#define MAX_KV_ENTRIES 4096      /* metadata keys */
#define MAX_KV_TEXT 65536        /* bytes of one metadata key or value */

const char *cc_metric_name(cc_metric metric) { return metric == CC_METRIC_L2 ? "l2" : "ip"; }

/* ------------------------------------------------------------------ lifetime */

static cc_index *index_alloc(int dim, cc_metric metric) {
    cc_index *idx = cc_calloc(1, sizeof *idx, "index");
    if (!idx) return NULL;
    idx->dim = dim;
    idx->metric = metric;
    idx->nprobe = CC_INDEX_DEFAULT_NPROBE;
    idx->ef_search = CC_INDEX_DEFAULT_EF_SEARCH;
    idx->rerank = CC_INDEX_DEFAULT_RERANK;
    idx->ef_construction = CC_INDEX_DEFAULT_EF_CONSTRUCTION;
    idx->seed = CC_INDEX_DEFAULT_SEED;
    idx->labels_identity = 1;
    pthread_mutex_init(&idx->map_lock, NULL);
    return idx;
}

cc_index *cc_index_create_empty(int dim, cc_metric metric) { return index_alloc(dim, metric); }

cc_index *cc_index_create(const char *desc, int dim, cc_metric metric) {
    if (!desc) {
        cc_set_error("index type: missing description");
        return NULL;
    }
    if (dim < 1 || dim > CC_INDEX_MAX_DIM) {
        cc_set_error("index '%s': dimension %d out of range 1..%d", desc, dim, CC_INDEX_MAX_DIM);
        return NULL;
    }
    if (metric != CC_METRIC_IP && metric != CC_METRIC_L2) {
        cc_set_error("index '%s': unknown metric %d", desc, (int)metric);
        return NULL;
    }
    cc_index *idx = index_alloc(dim, metric);
    if (!idx) return NULL;
    if (cc_index_setup_type(idx, desc) != 0) {
        cc_index_free(idx);
        return NULL;
    }
    return idx;
}

static void free_kv(cc_index *idx) {
    for (int i = 0; i < idx->n_kv; i++) {
        free(idx->kv_keys[i]);
        free(idx->kv_values[i]);
    }
    free(idx->kv_keys);
    free(idx->kv_values);
    idx->kv_keys = idx->kv_values = NULL;
    idx->n_kv = 0;
}

void cc_index_free(cc_index *idx) {
    if (!idx) return;
    if (idx->ops && idx->ops->free) idx->ops->free(idx);
    cc_buf_free(&idx->labels);
    cc_buf_free(&idx->removed);
    cc_buf_free(&idx->vectors);
    cc_buf_free(&idx->norms);
    cc_buf_free(&idx->item_text);
    cc_buf_free(&idx->text_pool);
    cc_buf_free(&idx->item_time);
    cc_buf_free(&idx->item_tags);
    cc_buf_free(&idx->tag_pool);
    free_kv(idx);
    cc_label_map_free(idx);
    pthread_mutex_destroy(&idx->map_lock);
    cc_index_unmap(idx);
    free(idx);
}

/* ------------------------------------------------------------------ accessors */

const char *cc_index_desc(const cc_index *idx) { return idx->desc; }
int cc_index_dim(const cc_index *idx) { return idx->dim; }
cc_metric cc_index_metric(const cc_index *idx) { return idx->metric; }
int64_t cc_index_count(const cc_index *idx) { return idx->n_live; }
int64_t cc_index_next_id(const cc_index *idx) { return idx->next_id; }
int cc_index_is_trained(const cc_index *idx) { return idx->trained; }

int64_t cc_index_memory_bytes(const cc_index *idx) {
    int64_t bytes = (int64_t)(idx->labels.size + idx->removed.size + idx->vectors.size + idx->norms.size +
                              idx->item_text.size + idx->text_pool.size + idx->item_time.size +
                              idx->item_tags.size + idx->tag_pool.size);
    if (idx->ops->memory) bytes += idx->ops->memory(idx);
    return bytes;
}

/* ------------------------------------------------------------------ adding */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int check_new_ids(const cc_index *idx, int64_t n, const int64_t *ids) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] == INT64_MAX) { /* INT64_MAX: the next automatic id would overflow */
            cc_set_error("ids must be in 0..%lld; row %lld has %lld", (long long)(INT64_MAX - 1), (long long)i,
                         (long long)ids[i]);
            return -1;
        }
    int64_t *sorted = cc_malloc((size_t)n * sizeof(int64_t), "id check");
    if (!sorted) return -1;
    memcpy(sorted, ids, (size_t)n * sizeof(int64_t));
    qsort(sorted, (size_t)n, sizeof(int64_t), cmp_i64);
    for (int64_t i = 1; i < n; i++)
        if (sorted[i] == sorted[i - 1]) {
            cc_set_error("id %lld appears more than once in the vectors to add", (long long)sorted[i]);
            free(sorted);
            return -1;
        }
    free(sorted);
    for (int64_t i = 0; i < n; i++)
        if (cc_label_to_slot(idx, ids[i]) >= 0) {
            cc_set_error("id %lld (row %lld) is already in the index", (long long)ids[i], (long long)i);
            return -1;
        }
    return 0;
}

int cc_index_add_items(cc_index *idx, int64_t n, const float *x, const int64_t *ids, const char *const *texts,
                       const int64_t *timestamps) {
    return cc_index_add_items_tagged(idx, n, x, ids, texts, timestamps, NULL);
}

static void free_tag_lists(char **lists, int64_t n) {
    for (int64_t i = 0; lists && i < n; i++) free(lists[i]);
    free(lists);
}

int cc_index_add_items_tagged(cc_index *idx, int64_t n, const float *x, const int64_t *ids, const char *const *texts,
                              const int64_t *timestamps, const char *const *tags) {
    if (n < 0 || (n > 0 && !x)) {
        cc_set_error("index add: bad arguments (n = %lld)", (long long)n);
        return -1;
    }
    if (n == 0) return 0;
    if (!idx->trained) {
        cc_set_error("index %s is not trained: train it before adding vectors", idx->desc);
        return -1;
    }
    if (cc_check_finite(x, n, idx->dim, "vectors to add") != 0) return -1;
    if (idx->n_slots + (n > idx->n_removed ? n - idx->n_removed : 0) > CC_INDEX_MAX_SLOTS) {
        cc_set_error("index add: too many vectors (the limit is %lld)", (long long)CC_INDEX_MAX_SLOTS);
        return -1;
    }
    if (ids && check_new_ids(idx, n, ids) != 0) return -1;
    if (!ids && idx->next_id > INT64_MAX - n) {
        cc_set_error("index add: %lld automatic ids after id %lld would pass the largest id %lld; give --ids",
                     (long long)n, (long long)(idx->next_id - 1), (long long)(INT64_MAX - 1));
        return -1;
    }
    int need_text = 0, need_time = timestamps != NULL;
    if (texts)
        for (int64_t i = 0; i < n; i++) {
            if (!texts[i]) continue;
            need_text = 1;
            size_t len = strlen(texts[i]);
            if (!cc_utf8_valid(texts[i], len)) {
                cc_set_error("item text of row %lld is not valid UTF-8", (long long)i);
                return -1;
            }
        }

    char **tag_lists = NULL; /* normalised, before anything changes */
    int need_tags = 0;
    if (tags) {
        if (!(tag_lists = cc_calloc((size_t)n, sizeof *tag_lists, "item tags"))) return -1;
        for (int64_t i = 0; i < n; i++) {
            if (tags[i] && cc_tags_normalize(tags[i], &tag_lists[i]) != 0) {
                cc_prefix_error("row %lld", (long long)i);
                free_tag_lists(tag_lists, n);
                return -1;
            }
            if (tag_lists[i]) need_tags = 1;
        }
    }

    int64_t *slots = cc_malloc((size_t)n * sizeof(int64_t), "slots");
    int64_t *labels = cc_malloc((size_t)n * sizeof(int64_t), "labels");
    int rc = -1;
    if (!slots || !labels) goto done;
    /* removed slots first (lowest first), then new ones */
    int64_t reused = 0;
    if (idx->n_removed > 0) {
        const uint64_t *w = (const uint64_t *)idx->removed.ptr;
        for (size_t wi = 0; wi < CC_BITMAP_WORDS(idx->n_slots) && reused < n; wi++) {
            uint64_t bits = w[wi];
            while (bits && reused < n) {
                int b = __builtin_ctzll(bits);
                bits &= bits - 1;
                slots[reused++] = (int64_t)wi * 64 + b;
            }
        }
    }
    int64_t new_n_slots = idx->n_slots;
    for (int64_t i = reused; i < n; i++) slots[i] = new_n_slots++;
    int identity = idx->labels_identity;
    int64_t max_label = idx->next_id - 1;
    for (int64_t i = 0; i < n; i++) {
        labels[i] = ids ? ids[i] : idx->next_id + i;
        if (labels[i] != slots[i]) identity = 0;
        if (labels[i] > max_label) max_label = labels[i];
    }

    /* common arrays first, so that the type add is the last step that can fail */
    int common_labels = idx->ops->slot_label == NULL;
    if (!identity && common_labels) {
        if (cc_buf_resize(&idx->labels, (size_t)new_n_slots * 8, "labels") != 0) goto done;
        int64_t *l = (int64_t *)idx->labels.ptr;
        if (idx->labels_identity)
            for (int64_t s = 0; s < idx->n_slots; s++) l[s] = s;
    }
    if (idx->removed.size && cc_buf_resize(&idx->removed, CC_BITMAP_WORDS(new_n_slots) * 8, "removed flags") != 0)
        goto done;
    if (cc_items_grow(idx, new_n_slots, need_text, need_time, need_tags) != 0) goto done;

    rc = idx->ops->add(idx, n, x, slots, labels, new_n_slots);
    if (rc != 0) goto done;

    /* commit */
    if (!identity && common_labels) {
        int64_t *l = (int64_t *)idx->labels.ptr;
        for (int64_t i = 0; i < n; i++) l[slots[i]] = labels[i];
    }
    idx->labels_identity = identity;
    if (reused) {
        uint64_t *w = (uint64_t *)idx->removed.ptr;
        for (int64_t i = 0; i < reused; i++) w[slots[i] >> 6] &= ~(1ull << (slots[i] & 63));
        idx->n_removed -= reused;
    }
    idx->n_slots = new_n_slots;
    idx->n_live += n;
    idx->next_id = max_label + 1;
    if (identity) idx->map_valid = 0; /* labels are slots: no map needed */
    else
        for (int64_t i = 0; i < n; i++)
            if (cc_label_map_put(idx, labels[i], slots[i]) != 0) break; /* rebuilt on next use */
    for (int64_t i = 0; i < n; i++) {
        if (idx->item_text.size && cc_item_set_text(idx, slots[i], texts ? texts[i] : NULL) != 0) {
            rc = -1; /* vectors are in; only a text failed (out of memory) */
            break;
        }
        if (idx->item_time.size)
            ((int64_t *)idx->item_time.ptr)[slots[i]] = timestamps ? timestamps[i] : CC_INDEX_NO_TIMESTAMP;
        if (idx->item_tags.size && cc_item_set_tags(idx, slots[i], tag_lists ? tag_lists[i] : NULL) != 0) {
            rc = -1;
            break;
        }
    }
done:
    free(slots);
    free(labels);
    free_tag_lists(tag_lists, n);
    return rc;
}

int cc_index_add(cc_index *idx, int64_t n, const float *x) { return cc_index_add_items(idx, n, x, NULL, NULL, NULL); }

int cc_index_add_with_ids(cc_index *idx, int64_t n, const float *x, const int64_t *ids) {
    if (!ids && n > 0) {
        cc_set_error("index add: ids missing");
        return -1;
    }
    return cc_index_add_items(idx, n, x, ids, NULL, NULL);
}

int cc_index_train(cc_index *idx, int64_t n, const float *x) {
    if (n < 0 || (n > 0 && !x)) {
        cc_set_error("index train: bad arguments");
        return -1;
    }
    if (!idx->ops->train) return 0; /* the type needs no training */
    if (idx->n_slots > 0) {
        cc_set_error("index %s already holds vectors; train before adding", idx->desc);
        return -1;
    }
    if (cc_check_finite(x, n, idx->dim, "training vectors") != 0) return -1;
    if (idx->ops->train(idx, n, x) != 0) return -1;
    idx->trained = 1;
    return 0;
}

/* ------------------------------------------------------------------ removing */

int64_t cc_index_remove(cc_index *idx, int64_t n, const int64_t *ids) {
    if (n < 0 || (n > 0 && !ids)) {
        cc_set_error("index remove: bad arguments");
        return -1;
    }
    if (n == 0 || idx->n_live == 0) return 0;
    uint64_t *doomed = cc_calloc(CC_BITMAP_WORDS(idx->n_slots), 8, "removal flags");
    if (!doomed) return -1;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = cc_label_to_slot(idx, ids[i]);
        if (s < 0 || ((doomed[s >> 6] >> (s & 63)) & 1)) continue;
        doomed[s >> 6] |= 1ull << (s & 63);
        count++;
    }
    if (count == 0) {
        free(doomed);
        return 0;
    }
    if (!idx->removed.size && cc_buf_resize(&idx->removed, CC_BITMAP_WORDS(idx->n_slots) * 8, "removed flags") != 0) {
        free(doomed);
        return -1;
    }
    if (idx->ops->remove && idx->ops->remove(idx, doomed) != 0) {
        free(doomed);
        return -1;
    }
    uint64_t *w = (uint64_t *)idx->removed.ptr;
    for (size_t wi = 0; wi < CC_BITMAP_WORDS(idx->n_slots); wi++) {
        uint64_t bits = doomed[wi];
        w[wi] |= bits;
        while (bits) {
            int64_t s = (int64_t)wi * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            cc_label_map_del(idx, cc_slot_label(idx, s));
            if (idx->item_text.size) cc_item_set_text(idx, s, NULL);
            if (idx->item_time.size) ((int64_t *)idx->item_time.ptr)[s] = CC_INDEX_NO_TIMESTAMP;
            if (idx->item_tags.size) cc_item_set_tags(idx, s, NULL);
        }
    }
    idx->n_removed += count;
    idx->n_live -= count;
    free(doomed);
    return count;
}

/* ------------------------------------------------------------------ searching */

#define SMALL_FILTER_EXACT 4096      /* filters allowing at most this many ids: exact scan of those */

static int64_t filter_popcount(const cc_id_filter *f) {
    int64_t count = 0;
    size_t words = CC_BITMAP_WORDS(f->n_bits);
    for (size_t i = 0; i < words; i++) {
        uint64_t w = f->words[i];
        if (i == words - 1 && (f->n_bits & 63)) w &= (1ull << (f->n_bits & 63)) - 1;
        count += __builtin_popcountll(w);
    }
    return count;
}

/* Exact scan over the ids a small filter allows. */
static int search_small_filter(const cc_index *idx, int64_t nq, const float *q, int k, const cc_id_filter *f,
                               int64_t n_allowed, int64_t *out_slots, float *out_sims) {
    int64_t *cand = cc_malloc((size_t)(n_allowed ? n_allowed : 1) * sizeof(int64_t), "filter candidates");
    if (!cand) return -1;
    int64_t n_cand = 0;
    size_t words = CC_BITMAP_WORDS(f->n_bits);
    for (size_t wi = 0; wi < words; wi++) {
        uint64_t bits = f->words[wi];
        while (bits) {
            int64_t label = (int64_t)wi * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            if (label >= f->n_bits) break;
            int64_t s = cc_label_to_slot(idx, label);
            if (s >= 0 && n_cand < n_allowed) cand[n_cand++] = s;
        }
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < nq; i++)
        cc_rerank_exact(idx, q + i * idx->dim, cand, (int)n_cand, k, out_slots + i * k, out_sims + i * k);
    free(cand);
    return 0;
}

int cc_index_search_ex(const cc_index *idx, int64_t nq, const float *q, int k, const cc_search_params *params,
                       int64_t *out_ids, float *out_scores) {
    if (nq < 0 || (nq > 0 && (!q || !out_ids))) {
        cc_set_error("index search: bad arguments");
        return -1;
    }
    if (nq == 0) return 0;
    if (k < 1) {
        cc_set_error("index search: k must be at least 1, got %d", k);
        return -1;
    }
    if (!idx->trained) {
        cc_set_error("index %s is not trained", idx->desc);
        return -1;
    }
    if (idx->n_live == 0) {
        cc_set_error("index search: the index is empty");
        return -1;
    }
    if (k > idx->n_live) {
        cc_set_error("index search: k = %d is larger than the number of vectors in the index (%lld)", k,
                     (long long)idx->n_live);
        return -1;
    }
    if (cc_check_finite(q, nq, idx->dim, "queries") != 0) return -1;
    cc_search_ctx ctx;
    ctx.filter = params ? params->filter : NULL;
    ctx.nprobe = params && params->nprobe > 0 ? params->nprobe : idx->nprobe;
    /* (types clamp nprobe to their lists) */
    ctx.ef_search = params && params->ef_search > 0 ? params->ef_search : idx->ef_search;
    if (ctx.ef_search > CC_INDEX_MAX_EF) ctx.ef_search = CC_INDEX_MAX_EF;
    if (ctx.ef_search < k) ctx.ef_search = k;
    ctx.rerank = params && params->rerank > 0 ? params->rerank : idx->rerank;
    if (ctx.rerank > CC_INDEX_MAX_RERANK) ctx.rerank = CC_INDEX_MAX_RERANK;
    if (ctx.filter && (ctx.filter->n_bits < 0 || (ctx.filter->n_bits > 0 && !ctx.filter->words))) {
        cc_set_error("index search: bad filter");
        return -1;
    }

    float *sims = out_scores ? out_scores : cc_malloc((size_t)nq * (size_t)k * sizeof(float), "search scores");
    if (!sims) return -1;
    int64_t *slots = out_ids;
    int rc;
    int64_t n_allowed = ctx.filter ? filter_popcount(ctx.filter) : 0;
    if (ctx.filter && n_allowed <= SMALL_FILTER_EXACT && cc_index_has_exact_vectors(idx)) {
        rc = search_small_filter(idx, nq, q, k, ctx.filter, n_allowed, slots, sims);
    } else {
        rc = idx->ops->search(idx, nq, q, k, &ctx, slots, sims);
    }
    if (rc == 0) {
        for (int64_t i = 0; i < nq * k; i++) {
            if (slots[i] < 0) {
                slots[i] = -1;
                sims[i] = -INFINITY;
            } else {
                slots[i] = cc_slot_label(idx, slots[i]);
            }
            sims[i] = cc_sim_to_score(idx, sims[i]);
        }
    }
    if (!out_scores) free(sims);
    return rc;
}

int cc_index_search(const cc_index *idx, int64_t nq, const float *q, int k, int64_t *out_ids, float *out_scores) {
    return cc_index_search_ex(idx, nq, q, k, NULL, out_ids, out_scores);
}

int cc_index_search_filtered(const cc_index *idx, int64_t nq, const float *q, int k, const cc_id_filter *allow,
                             int64_t *out_ids, float *out_scores) {
    cc_search_params params = {0};
    params.filter = allow;
    return cc_index_search_ex(idx, nq, q, k, &params, out_ids, out_scores);
}

int cc_index_reconstruct(const cc_index *idx, int64_t id, float *out) {
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) {
        cc_set_error("index: id %lld is not in the index", (long long)id);
        return -1;
    }
    if (!idx->exact_vectors) return idx->ops->reconstruct(idx, slot, out);
    memcpy(out, cc_index_slot_vector(idx, slot), (size_t)idx->dim * sizeof(float));
    return 0;
}

/* ------------------------------------------------------------------ parameters */

static void mirror_param(cc_index *idx, const char *key, int64_t value) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)value);
    cc_index_kv_set_raw(idx, key, text);
}

/* Parameters the dispatcher knows by name (for "does not apply" versus "unknown"); the search
 * defaults among them are mirrored in the metadata as "search.<name>". */
static const char *const known_params[] = {"nprobe", "efSearch", "rerank", "efConstruction", "seed"};
static const char *const mirrored_params[] = {"nprobe", "efSearch", "rerank"};

static int name_in(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i])) return 1;
    return 0;
}

int cc_index_set_param(cc_index *idx, const char *name, int64_t value) {
    if (!strcmp(name, "seed")) {
        if (value < 0) goto bad_value;
        idx->seed = (uint64_t)value;
        return 0;
    }
    if (!strcmp(name, "nlist") || !strcmp(name, "M") || !strcmp(name, "nbits")) {
        cc_set_error("index parameter %s is fixed by the index type (%s)", name, idx->desc);
        return -1;
    }
    int rc = idx->ops->set_param ? idx->ops->set_param(idx, name, value) : CC_PARAM_NOT_APPLICABLE;
    if (rc == CC_PARAM_BAD_VALUE) goto bad_value;
    if (rc == CC_PARAM_NOT_APPLICABLE) {
        if (name_in(name, known_params, sizeof known_params / sizeof known_params[0])) {
            cc_set_error("index parameter %s does not apply to %s", name, idx->desc);
            return -1;
        }
        cc_set_error("unknown index parameter '%s' (nprobe, efSearch, rerank, efConstruction, seed)", name);
        return -1;
    }
    if (rc < 0) return -1;
    if (name_in(name, mirrored_params, sizeof mirrored_params / sizeof mirrored_params[0])) {
        char key[64];
        snprintf(key, sizeof key, "search.%s", name);
        mirror_param(idx, key, cc_index_get_param(idx, name));
    }
    return rc;
bad_value:
    cc_set_error("index parameter %s: bad value %lld", name, (long long)value);
    return -1;
}

int64_t cc_index_get_param(const cc_index *idx, const char *name) {
    if (!strcmp(name, "seed")) return (int64_t)idx->seed;
    return idx->ops->get_param ? idx->ops->get_param(idx, name) : -1;
}

/* ------------------------------------------------------------------ key/value metadata */

static int kv_find(const cc_index *idx, const char *key) {
    for (int i = 0; i < idx->n_kv; i++)
        if (!strcmp(idx->kv_keys[i], key)) return i;
    return -1;
}

int cc_index_kv_set_raw(cc_index *idx, const char *key, const char *value) {
    int i = kv_find(idx, key);
    if (!value) {
        if (i < 0) return 0;
        free(idx->kv_keys[i]);
        free(idx->kv_values[i]);
        memmove(idx->kv_keys + i, idx->kv_keys + i + 1, (size_t)(idx->n_kv - i - 1) * sizeof(char *));
        memmove(idx->kv_values + i, idx->kv_values + i + 1, (size_t)(idx->n_kv - i - 1) * sizeof(char *));
        idx->n_kv--;
        return 0;
    }
    char *copy = cc_strdup(value);
    if (!copy) return -1;
    if (i >= 0) {
        free(idx->kv_values[i]);
        idx->kv_values[i] = copy;
        return 0;
    }
    if (idx->n_kv >= MAX_KV_ENTRIES) {
        free(copy);
        cc_set_error("index metadata: too many keys (limit %d)", MAX_KV_ENTRIES);
        return -1;
    }
    char *key_copy = cc_strdup(key);
    char **keys = cc_realloc(idx->kv_keys, (size_t)(idx->n_kv + 1) * sizeof(char *), "metadata keys");
    if (keys) idx->kv_keys = keys;
    char **values = keys ? cc_realloc(idx->kv_values, (size_t)(idx->n_kv + 1) * sizeof(char *), "metadata values") : NULL;
    if (values) idx->kv_values = values;
    if (!key_copy || !keys || !values) {
        free(copy);
        free(key_copy);
        return -1;
    }
    idx->kv_keys[idx->n_kv] = key_copy;
    idx->kv_values[idx->n_kv] = copy;
    idx->n_kv++;
    return 0;
}

int cc_index_set_meta(cc_index *idx, const char *key, const char *value) {
    if (!key || !*key || strlen(key) > MAX_KV_TEXT || !cc_utf8_valid(key, strlen(key))) {
        cc_set_error("index metadata: keys must be non-empty UTF-8 of at most %d bytes", MAX_KV_TEXT);
        return -1;
    }
    if (value && (strlen(value) > MAX_KV_TEXT || !cc_utf8_valid(value, strlen(value)))) {
        cc_set_error("index metadata '%s': values must be UTF-8 of at most %d bytes", key, MAX_KV_TEXT);
        return -1;
    }
    if (!strncmp(key, "search.", 7)) {
        const char *param = key + 7;
        if (strcmp(param, "nprobe") && strcmp(param, "efSearch") && strcmp(param, "rerank")) {
            cc_set_error("index metadata: '%s' is reserved (search.nprobe, search.efSearch, search.rerank)", key);
            return -1;
        }
        if (!value) return cc_index_kv_set_raw(idx, key, NULL);
        int64_t v;
        if (cc_parse_int64(value, 1, INT32_MAX, &v) != 0) {
            cc_set_error("index metadata '%s': expected a positive integer, got '%s'", key, value);
            return -1;
        }
        return cc_index_set_param(idx, param, v) < 0 ? -1 : 0;
    }
    return cc_index_kv_set_raw(idx, key, value);
}

const char *cc_index_get_meta(const cc_index *idx, const char *key) {
    int i = kv_find(idx, key);
    return i < 0 ? NULL : idx->kv_values[i];
}

int cc_index_meta_count(const cc_index *idx) { return idx->n_kv; }

int cc_index_meta_at(const cc_index *idx, int i, const char **key, const char **value) {
    if (i < 0 || i >= idx->n_kv) return -1;
    *key = idx->kv_keys[i];
    *value = idx->kv_values[i];
    return 0;
}

int cc_index_has_item_texts(const cc_index *idx) { return idx->item_text.size != 0; }

const char *cc_index_item_text(const cc_index *idx, int64_t id) {
    if (!idx->item_text.size) return NULL;
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) return NULL;
    const uint64_t *e = (const uint64_t *)idx->item_text.ptr;
    if (e[2 * slot] == UINT64_MAX) return NULL;
    return (const char *)idx->text_pool.ptr + e[2 * slot];
}

int cc_index_has_item_tags(const cc_index *idx) { return idx->item_tags.size != 0; }

const char *cc_index_item_tags(const cc_index *idx, int64_t id) {
    if (!idx->item_tags.size) return NULL;
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) return NULL;
    const uint64_t *e = (const uint64_t *)idx->item_tags.ptr;
    if (e[2 * slot] == UINT64_MAX) return NULL;
    return (const char *)idx->tag_pool.ptr + e[2 * slot];
}

int cc_index_item_timestamp(const cc_index *idx, int64_t id, int64_t *out) {
    int64_t slot = cc_label_to_slot(idx, id);
    if (slot < 0) return -1;
    if (!idx->item_time.size) return 0;
    int64_t t = ((const int64_t *)idx->item_time.ptr)[slot];
    if (t == CC_INDEX_NO_TIMESTAMP) return 0;
    *out = t;
    return 1;
}
