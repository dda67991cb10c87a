/* slots.c — what every index type stands on: growable buffers that may view the mapped file,
 * the label -> slot map (open addressing), per-item texts and timestamps, and the input checks
 * (finite floats, UTF-8, integers). Called by the types and the dispatcher; calls neither. See
 * internal.h for the slot model. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"

#define BAD_ROWS_LISTED 5 /* rows named in a NaN/Inf error */

/* ------------------------------------------------------------------ buffers */

int cc_buf_reserve(cc_buf *b, size_t bytes, const char *what) {
    if (b->owned && b->cap >= bytes) return 0;
    size_t cap = b->owned ? b->cap + b->cap / 2 : 0;
    if (cap < bytes) cap = bytes;
    if (cap < 64) cap = 64;
    uint8_t *p = cc_malloc_aligned(cap, what);
    if (!p) return -1;
    if (b->size) memcpy(p, b->ptr, b->size);
    if (b->owned) cc_free_aligned(b->ptr);
    b->ptr = p;
    b->cap = cap;
    b->owned = 1;
    return 0;
}

int cc_buf_resize(cc_buf *b, size_t bytes, const char *what) {
    if (bytes > b->size && (!b->owned || bytes > b->cap)) {
        if (cc_buf_reserve(b, bytes, what) != 0) return -1;
    }
    if (bytes > b->size) memset(b->ptr + b->size, 0, bytes - b->size);
    b->size = bytes;
    return 0;
}

int cc_buf_append(cc_buf *b, const void *data, size_t bytes, const char *what) {
    size_t old = b->size;
    if (cc_buf_resize(b, old + bytes, what) != 0) return -1;
    if (bytes) memcpy(b->ptr + old, data, bytes);
    return 0;
}

void cc_buf_view(cc_buf *b, const void *ptr, size_t size) {
    cc_buf_free(b);
    b->ptr = (uint8_t *)ptr;
    b->size = size;
    b->cap = size;
    b->owned = 0;
}

void cc_buf_free(cc_buf *b) {
    if (b->owned) cc_free_aligned(b->ptr);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ small helpers */

int cc_parse_int64(const char *text, int64_t lo, int64_t hi, int64_t *out) {
    if (!text || !*text) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}


/* A float is NaN or Inf exactly when its exponent bits are all ones: an integer test the compiler
 * vectorises (a float reduction would need -ffast-math). */
static int row_finite(const float *row, int dim) {
    uint32_t any = 0;
    for (int j = 0; j < dim; j++) {
        uint32_t bits;
        memcpy(&bits, row + j, sizeof bits);
        any |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return !any;
}

int cc_check_finite(const float *x, int64_t n, int dim, const char *what) {
    int64_t bad[BAD_ROWS_LISTED], n_bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (row_finite(x + i * dim, dim)) continue;
        if (n_bad < BAD_ROWS_LISTED) bad[n_bad] = i;
        n_bad++;
    }
    if (!n_bad) return 0;
    char list[128] = "";
    int len = 0;
    for (int64_t i = 0; i < n_bad && i < BAD_ROWS_LISTED; i++)
        len += snprintf(list + len, sizeof list - (size_t)len, "%s%lld", i ? ", " : "", (long long)bad[i]);
    cc_set_error("%s contain NaN or Inf at row%s %s%s (%lld row%s in all)", what, n_bad > 1 ? "s" : "", list,
                 n_bad > BAD_ROWS_LISTED ? ", ..." : "", (long long)n_bad, n_bad > 1 ? "s" : "");
    return -1;
}


/* ------------------------------------------------------------------ UTF-8 */

int cc_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c == 0) return 0;
            i++;
            continue;
        }
        int extra;
        unsigned min;
        if ((c & 0xe0) == 0xc0) extra = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0) extra = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0) extra = 3, min = 0x10000, c &= 0x07;
        else return 0;
        if (i + (size_t)extra >= len) return 0;
        for (int j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += (size_t)extra + 1;
    }
    return 1;
}


/* ------------------------------------------------------------------ label -> slot map */

static uint64_t hash_label(int64_t label) {
    uint64_t z = (uint64_t)label + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int map_grow(cc_label_map *m, int64_t min_count) {
    int64_t cap = 64;
    while (cap < 2 * min_count) cap *= 2;
    if (cap <= m->cap) return 0;
    int64_t *keys = cc_malloc((size_t)cap * sizeof(int64_t), "id map");
    int64_t *values = cc_malloc((size_t)cap * sizeof(int64_t), "id map");
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    memset(keys, 0xff, (size_t)cap * sizeof(int64_t)); /* -1 = empty */
    for (int64_t i = 0; i < m->cap; i++) {
        if (m->keys[i] < 0) continue;
        int64_t pos = (int64_t)(hash_label(m->keys[i]) & (uint64_t)(cap - 1));
        while (keys[pos] >= 0) pos = (pos + 1) & (cap - 1);
        keys[pos] = m->keys[i];
        values[pos] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->cap = cap;
    return 0;
}

static int map_put(cc_label_map *m, int64_t label, int64_t slot) {
    if (2 * (m->count + 1) > m->cap && map_grow(m, m->count + 1) != 0) return -1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)(m->cap - 1));
    while (m->keys[pos] >= 0 && m->keys[pos] != label) pos = (pos + 1) & (m->cap - 1);
    if (m->keys[pos] < 0) m->count++;
    m->keys[pos] = label;
    m->values[pos] = slot;
    return 0;
}

static int64_t map_get(const cc_label_map *m, int64_t label) {
    if (!m->cap) return -1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)(m->cap - 1));
    while (m->keys[pos] >= 0) {
        if (m->keys[pos] == label) return m->values[pos];
        pos = (pos + 1) & (m->cap - 1);
    }
    return -1;
}

static void map_del(cc_label_map *m, int64_t label) {
    if (!m->cap) return;
    int64_t mask = m->cap - 1;
    int64_t pos = (int64_t)(hash_label(label) & (uint64_t)mask);
    while (m->keys[pos] >= 0 && m->keys[pos] != label) pos = (pos + 1) & mask;
    if (m->keys[pos] < 0) return;
    /* backward-shift deletion keeps probe chains intact without tombstones */
    int64_t hole = pos;
    for (int64_t next = (hole + 1) & mask; m->keys[next] >= 0; next = (next + 1) & mask) {
        int64_t home = (int64_t)(hash_label(m->keys[next]) & (uint64_t)mask);
        /* move next into the hole when its home is not in (hole, next] cyclically */
        int64_t dist_next = (next - home) & mask, dist_hole = (next - hole) & mask;
        if (dist_next >= dist_hole) {
            m->keys[hole] = m->keys[next];
            m->values[hole] = m->values[next];
            hole = next;
        }
    }
    m->keys[hole] = -1;
    m->count--;
}

static int build_map_locked(cc_index *idx) {
    if (idx->map_valid) return 0;
    cc_label_map fresh = {0};
    if (map_grow(&fresh, idx->n_live) != 0) return -1;
    for (int64_t s = 0; s < idx->n_slots; s++) {
        if (cc_slot_removed(idx, s)) continue;
        if (map_put(&fresh, cc_slot_label(idx, s), s) != 0) {
            free(fresh.keys);
            free(fresh.values);
            return -1;
        }
    }
    free(idx->map.keys);
    free(idx->map.values);
    idx->map = fresh;
    idx->map_valid = 1;
    return 0;
}

static int ensure_map(const cc_index *cidx) {
    cc_index *idx = (cc_index *)cidx; /* the map is a cache: building it does not change the index */
    if (__atomic_load_n(&idx->map_valid, __ATOMIC_ACQUIRE)) return 0;
    pthread_mutex_lock(&idx->map_lock);
    int rc = build_map_locked(idx);
    pthread_mutex_unlock(&idx->map_lock);
    return rc;
}

int cc_label_map_put(cc_index *idx, int64_t label, int64_t slot) {
    if (!idx->map_valid) return 0;
    if (map_put(&idx->map, label, slot) != 0) {
        idx->map_valid = 0; /* rebuilt on next use */
        return -1;
    }
    return 0;
}

void cc_label_map_del(cc_index *idx, int64_t label) {
    if (idx->map_valid) map_del(&idx->map, label);
}

void cc_label_map_free(cc_index *idx) {
    free(idx->map.keys);
    free(idx->map.values);
    memset(&idx->map, 0, sizeof idx->map);
    idx->map_valid = 0;
}

int64_t cc_label_to_slot(const cc_index *idx, int64_t label) {
    if (label < 0) return -1;
    if (idx->labels_identity) {
        if (label >= idx->n_slots || cc_slot_removed(idx, label)) return -1;
        return label;
    }
    if (ensure_map(idx) != 0) return -1;
    return map_get(&idx->map, label);
}

/* ------------------------------------------------------------------ per-item texts and timestamps */

/* Per-item arrays grow with the slots; texts/timestamps start when the first item has one. */
static int grow_strings(cc_buf *entries, int64_t new_n_slots, const char *what) {
    size_t old = entries->size / 16;
    if (cc_buf_resize(entries, (size_t)new_n_slots * 16, what) != 0) return -1;
    uint64_t *e = (uint64_t *)entries->ptr;
    for (size_t s = old; s < (size_t)new_n_slots; s++) e[2 * s] = UINT64_MAX, e[2 * s + 1] = 0;
    return 0;
}

int cc_items_grow(cc_index *idx, int64_t new_n_slots, int need_text, int need_time, int need_tags) {
    if ((idx->item_text.size || need_text) && grow_strings(&idx->item_text, new_n_slots, "item texts") != 0) return -1;
    if ((idx->item_tags.size || need_tags) && grow_strings(&idx->item_tags, new_n_slots, "item tags") != 0) return -1;
    if (idx->item_time.size || need_time) {
        size_t old = idx->item_time.size / 8;
        if (cc_buf_resize(&idx->item_time, (size_t)new_n_slots * 8, "item timestamps") != 0) return -1;
        int64_t *t = (int64_t *)idx->item_time.ptr;
        for (size_t s = old; s < (size_t)new_n_slots; s++) t[s] = CC_INDEX_NO_TIMESTAMP;
    }
    return 0;
}

/* Entry {offset, length} of slot into pool; NULL text: none. (A replaced string stays in the pool
 * until the next save, which writes live strings only.) */
static int set_string(cc_buf *entries, cc_buf *pool, int64_t slot, const char *text, const char *what) {
    uint64_t *e = (uint64_t *)entries->ptr;
    if (!text) {
        e[2 * slot] = UINT64_MAX;
        e[2 * slot + 1] = 0;
        return 0;
    }
    size_t len = strlen(text), off = pool->size;
    if (cc_buf_append(pool, text, len + 1, what) != 0) return -1;
    e = (uint64_t *)entries->ptr;
    e[2 * slot] = off;
    e[2 * slot + 1] = len;
    return 0;
}

int cc_item_set_text(cc_index *idx, int64_t slot, const char *text) {
    return set_string(&idx->item_text, &idx->text_pool, slot, text, "item text pool");
}

int cc_item_set_tags(cc_index *idx, int64_t slot, const char *tags) {
    return set_string(&idx->item_tags, &idx->tag_pool, slot, tags && *tags ? tags : NULL, "item tag pool");
}

