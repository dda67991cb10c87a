/* io.c — the index file: save (atomic, temp file + rename) and load (mmap, copy-on-write, with
 * every size and offset checked and a CRC32 per section). The layout is documented byte by byte
 * in docs/FORMATS.md ("Index file"); in short:
 *
 *   [0, 128)         header: magic "CLIPCIDX", version, dims, counts, description, CRCs
 *   [128, 1152)      section table: up to 32 entries of {name[8], offset u64, size u64, crc u32, 0 u32}
 *   [1152, ...)      sections, each at a 64-byte aligned offset (so float arrays can be used in place)
 *
 * All integers are little-endian. Sections every index may have: params, metakv, labels, removed,
 * vectors, norms, itemtext, itempool, itemtime, itemtags, tagpool; index types add theirs through their table of
 * functions (save, load, write_params, read_param: ivf.c, hnsw.c). This file never names a type.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "engine/util.h"
#include "index/internal.h"

#define FILE_MAGIC "CLIPCIDX"
#define FILE_VERSION 1
#define HEADER_SIZE 128
#define MAX_SECTIONS 32
#define TABLE_ENTRY_SIZE 32
#define DATA_START (HEADER_SIZE + MAX_SECTIONS * TABLE_ENTRY_SIZE) /* 1152, a multiple of 64 */
#define SECTION_ALIGN 64
#define HEADER_DESC_BYTES 56 /* description field, NUL-padded */
#define CRC_CHUNK ((size_t)1 << 26) /* CRC computed in 64 MB pieces, in parallel, then combined */

#define FLAG_TRAINED 1u
#define FLAG_LABELS_IDENTITY 2u

_Static_assert(DATA_START % SECTION_ALIGN == 0, "sections must start aligned");
_Static_assert(CC_INDEX_DESC_MAX <= HEADER_DESC_BYTES, "descriptions must fit the header");

/* ------------------------------------------------------------------ little-endian fields */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t crc_update(uint32_t crc, const uint8_t *data, size_t len) {
    while (len > 0) {
        uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, data, piece);
        data += piece;
        len -= piece;
    }
    return crc;
}

/* CRC32 (zlib) of a buffer; big buffers in parallel pieces combined with crc32_combine. */
static uint32_t crc_of(const uint8_t *data, size_t len) {
    if (len <= 2 * CRC_CHUNK) return crc_update((uint32_t)crc32(0, Z_NULL, 0), data, len);
    int64_t pieces = (int64_t)((len + CRC_CHUNK - 1) / CRC_CHUNK);
    uint32_t *crcs = malloc((size_t)pieces * sizeof(uint32_t));
    if (!crcs) return crc_update((uint32_t)crc32(0, Z_NULL, 0), data, len);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < pieces; i++) {
        size_t from = (size_t)i * CRC_CHUNK, n = len - from < CRC_CHUNK ? len - from : CRC_CHUNK;
        crcs[i] = crc_update((uint32_t)crc32(0, Z_NULL, 0), data + from, n);
    }
    uint32_t crc = crcs[0];
    for (int64_t i = 1; i < pieces; i++) {
        size_t from = (size_t)i * CRC_CHUNK, n = len - from < CRC_CHUNK ? len - from : CRC_CHUNK;
        crc = (uint32_t)crc32_combine(crc, crcs[i], (z_off_t)n);
    }
    free(crcs);
    return crc;
}

/* ------------------------------------------------------------------ key\0value\0 lists */

int cc_kv_parse(const uint8_t *data, size_t size, const char *path, const char *section,
                int (*fn)(void *ctx, const char *key, const char *value), void *ctx) {
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *key = data + pos;
        const uint8_t *key_end = memchr(key, 0, size - pos);
        if (!key_end) goto bad;
        size_t key_len = (size_t)(key_end - key);
        pos += key_len + 1;
        if (pos > size) goto bad;
        const uint8_t *value = data + pos;
        const uint8_t *value_end = memchr(value, 0, size - pos);
        if (!value_end) goto bad;
        size_t value_len = (size_t)(value_end - value);
        pos += value_len + 1;
        if (key_len == 0 || !cc_utf8_valid((const char *)key, key_len) ||
            !cc_utf8_valid((const char *)value, value_len))
            goto bad;
        if (fn(ctx, (const char *)key, (const char *)value) != 0) {
            cc_prefix_error("%s: section '%s'", path, section);
            return -1;
        }
    }
    return 0;
bad:
    cc_set_error("%s: section '%s' is malformed (expected NUL-terminated UTF-8 key/value pairs)", path, section);
    return -1;
}

/* ------------------------------------------------------------------ writer */

struct cc_writer {
    cc_atomic_file af;
    const char *path;
    uint64_t pos;
    cc_section sections[MAX_SECTIONS];
    int n_sections;
    int open; /* a section is being written */
    uint32_t crc;
    int failed;
};

static int writer_raw(cc_writer *w, const void *data, size_t bytes) {
    if (w->failed) return -1;
    if (bytes && fwrite(data, 1, bytes, w->af.fp) != bytes) {
        cc_set_error("%s: write failed: %s", w->path, strerror(errno));
        w->failed = 1;
        return -1;
    }
    w->pos += bytes;
    return 0;
}

static int writer_pad(cc_writer *w) {
    static const uint8_t zeros[SECTION_ALIGN];
    size_t pad = (size_t)((SECTION_ALIGN - w->pos % SECTION_ALIGN) % SECTION_ALIGN);
    return writer_raw(w, zeros, pad);
}

static void writer_close_section(cc_writer *w) {
    if (!w->open) return;
    cc_section *s = &w->sections[w->n_sections - 1];
    s->size = w->pos - s->offset;
    s->crc = w->crc;
    w->open = 0;
}

int cc_writer_section(cc_writer *w, const char *name) {
    writer_close_section(w);
    if (w->n_sections >= MAX_SECTIONS) {
        cc_set_error("%s: too many sections", w->path);
        w->failed = 1;
        return -1;
    }
    if (writer_pad(w) != 0) return -1;
    cc_section *s = &w->sections[w->n_sections++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->offset = w->pos;
    w->crc = (uint32_t)crc32(0, Z_NULL, 0);
    w->open = 1;
    return 0;
}

int cc_writer_write(cc_writer *w, const void *data, size_t bytes) {
    w->crc = crc_update(w->crc, data, bytes);
    return writer_raw(w, data, bytes);
}

/* A section from one buffer, CRC in parallel. */
static int write_section(cc_writer *w, const char *name, const void *data, size_t bytes) {
    if (cc_writer_section(w, name) != 0) return -1;
    uint32_t crc = crc_of(data, bytes);
    if (writer_raw(w, data, bytes) != 0) return -1;
    w->crc = crc;
    return 0;
}

static int write_kv(cc_writer *w, const char *name, int n, char *const *keys, char *const *values) {
    if (cc_writer_section(w, name) != 0) return -1;
    for (int i = 0; i < n; i++) {
        if (cc_writer_write(w, keys[i], strlen(keys[i]) + 1) != 0) return -1;
        if (cc_writer_write(w, values[i], strlen(values[i]) + 1) != 0) return -1;
    }
    return 0;
}

#define MAX_PARAMS 32
static int write_params(const cc_index *idx, cc_writer *w) {
    char text[1024];
    int len = snprintf(text, sizeof text, "seed=%llu\nefConstruction=%d\n", (unsigned long long)idx->seed,
                       idx->ef_construction);
    if (idx->ops->write_params) idx->ops->write_params(idx, text + len, sizeof text - (size_t)len);
    /* "k=v\n" lines -> key\0value\0 */
    char *keys[MAX_PARAMS], *values[MAX_PARAMS];
    int n = 0;
    for (char *line = text; *line && n < MAX_PARAMS;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = 0;
            keys[n] = line;
            values[n++] = eq + 1;
        }
        line = nl + 1;
    }
    return write_kv(w, "params", n, keys, values);
}

/* Per-item strings (texts, tags), compacted: the strings of live items in slot order. */
static int write_strings(const cc_index *idx, cc_writer *w, const cc_buf *entries, const cc_buf *pool,
                         const char *entry_section, const char *pool_section) {
    if (!entries->size) return 0;
    const uint64_t *e = (const uint64_t *)entries->ptr;
    if (cc_writer_section(w, entry_section) != 0) return -1;
    uint64_t off = 0;
    for (int64_t s = 0; s < idx->n_slots; s++) {
        uint8_t entry[16];
        int has = e[2 * s] != UINT64_MAX && !cc_slot_removed(idx, s);
        put_u64(entry, has ? off : UINT64_MAX);
        put_u64(entry + 8, has ? e[2 * s + 1] : 0);
        if (cc_writer_write(w, entry, 16) != 0) return -1;
        if (has) off += e[2 * s + 1] + 1;
    }
    if (cc_writer_section(w, pool_section) != 0) return -1;
    for (int64_t s = 0; s < idx->n_slots; s++) {
        if (e[2 * s] == UINT64_MAX || cc_slot_removed(idx, s)) continue;
        if (cc_writer_write(w, pool->ptr + e[2 * s], e[2 * s + 1] + 1) != 0) return -1;
    }
    return 0;
}

static int write_items(const cc_index *idx, cc_writer *w) {
    if (write_strings(idx, w, &idx->item_text, &idx->text_pool, "itemtext", "itempool") != 0) return -1;
    if (idx->item_time.size && write_section(w, "itemtime", idx->item_time.ptr, (size_t)idx->n_slots * 8) != 0)
        return -1;
    if (write_strings(idx, w, &idx->item_tags, &idx->tag_pool, "itemtags", "tagpool") != 0) return -1;
    return 0;
}

int cc_index_save(const cc_index *idx, const char *path) {
    cc_writer *w = cc_calloc(1, sizeof *w, "index writer");
    if (!w) return -1;
    w->path = path;
    if (cc_atomic_open(&w->af, path) != 0) {
        free(w);
        return -1;
    }
    /* header and table are written last; reserve their space */
    static const uint8_t zeros[DATA_START];
    int rc = writer_raw(w, zeros, DATA_START);
    if (rc == 0) rc = write_params(idx, w);
    if (rc == 0 && idx->n_kv) rc = write_kv(w, "metakv", idx->n_kv, idx->kv_keys, idx->kv_values);
    if (rc == 0 && !idx->labels_identity && !idx->ops->slot_label)
        rc = write_section(w, "labels", idx->labels.ptr, (size_t)idx->n_slots * 8);
    if (rc == 0 && idx->n_removed)
        rc = write_section(w, "removed", idx->removed.ptr, ((size_t)idx->n_slots + 63) / 64 * 8);
    if (rc == 0 && idx->vectors.size)
        rc = write_section(w, "vectors", idx->vectors.ptr, (size_t)idx->n_slots * (size_t)idx->dim * 4);
    if (rc == 0 && idx->norms.size) rc = write_section(w, "norms", idx->norms.ptr, (size_t)idx->n_slots * 4);
    if (rc == 0) rc = write_items(idx, w);
    if (rc == 0 && idx->ops->save) rc = idx->ops->save(idx, w);
    writer_close_section(w);
    if (rc == 0) {
        uint8_t head[DATA_START];
        memset(head, 0, sizeof head);
        memcpy(head, FILE_MAGIC, 8);
        put_u32(head + 8, FILE_VERSION);
        put_u32(head + 12, HEADER_SIZE);
        put_u32(head + 16, (uint32_t)idx->dim);
        put_u32(head + 20, (uint32_t)idx->metric);
        put_u64(head + 24, (uint64_t)idx->n_slots);
        put_u64(head + 32, (uint64_t)idx->n_live);
        put_u64(head + 40, (uint64_t)idx->next_id);
        put_u32(head + 48, (uint32_t)w->n_sections);
        put_u32(head + 52, (idx->trained ? FLAG_TRAINED : 0) | (idx->labels_identity ? FLAG_LABELS_IDENTITY : 0));
        put_u64(head + 56, w->pos);
        memcpy(head + 64, idx->desc, strlen(idx->desc));
        uint8_t *table = head + HEADER_SIZE;
        for (int i = 0; i < w->n_sections; i++) {
            uint8_t *e = table + i * TABLE_ENTRY_SIZE;
            memcpy(e, w->sections[i].name, strlen(w->sections[i].name));
            put_u64(e + 8, w->sections[i].offset);
            put_u64(e + 16, w->sections[i].size);
            put_u32(e + 24, w->sections[i].crc);
        }
        put_u32(head + 120, (uint32_t)crc32(0, table, (uInt)(w->n_sections * TABLE_ENTRY_SIZE)));
        put_u32(head + 124, (uint32_t)crc32(0, head, 124));
        if (fflush(w->af.fp) != 0) { /* buffered sections reach the file here: a full disk shows now */
            cc_set_error("%s: write failed (%s); the previous file, if any, is untouched", path, strerror(errno));
            rc = -1;
        } else if (fseek(w->af.fp, 0, SEEK_SET) != 0) {
            cc_set_error("%s: seek failed: %s", path, strerror(errno));
            rc = -1;
        } else {
            rc = writer_raw(w, head, DATA_START);
        }
    }
    if (rc == 0) rc = cc_atomic_commit(&w->af);
    else cc_atomic_abort(&w->af);
    free(w);
    return rc;
}

/* ------------------------------------------------------------------ reader */

int cc_reader_get(const cc_reader *r, const char *name, size_t expected_size, int required, const uint8_t **ptr,
                  size_t *size) {
    *ptr = NULL;
    if (size) *size = 0;
    for (int i = 0; i < r->n_sections; i++) {
        if (strcmp(r->sections[i].name, name) != 0) continue;
        if (expected_size != CC_ANY_SIZE && r->sections[i].size != expected_size) {
            cc_set_error("%s: section '%s' has %llu bytes, expected %zu (file corrupted?)", r->path, name,
                         (unsigned long long)r->sections[i].size, expected_size);
            return -1;
        }
        *ptr = r->base + r->sections[i].offset;
        if (size) *size = r->sections[i].size;
        return 1;
    }
    if (!required) return 0;
    cc_set_error("%s: section '%s' is missing", r->path, name);
    return -1;
}

void cc_index_unmap(cc_index *idx) {
    if (idx->map_base) munmap(idx->map_base, idx->map_size);
    idx->map_base = NULL;
    idx->map_size = 0;
}

static int parse_common_param(void *ctx, const char *key, const char *value) {
    cc_index *idx = ctx;
    int64_t v;
    if (!strcmp(key, "seed")) {
        if (cc_parse_int64(value, 0, INT64_MAX, &v) != 0) goto bad;
        idx->seed = (uint64_t)v;
    } else if (!strcmp(key, "efConstruction")) {
        if (cc_parse_int64(value, 1, CC_INDEX_MAX_EF, &v) != 0) goto bad;
        idx->ef_construction = (int)v;
    } else if (idx->ops->read_param) {
        return idx->ops->read_param(idx, key, value);
    }
    return 0; /* unknown keys from a newer writer are ignored */
bad:
    cc_set_error("bad value '%s' for %s", value, key);
    return -1;
}

static int parse_meta_entry(void *ctx, const char *key, const char *value) {
    return cc_index_set_meta((cc_index *)ctx, key, value);
}

/* A shard manifest (index/manifest.h) opens with '{' after optional whitespace; an index file never does. */
static int starts_like_json(const uint8_t *base, size_t size) {
    size_t i = 0;
    while (i < size && (base[i] == ' ' || base[i] == '\n' || base[i] == '\r' || base[i] == '\t')) i++;
    return i < size && base[i] == '{';
}

/* Header and section table checks; fills r. */
static int read_table(cc_reader *r, const uint8_t *base, size_t size, int flags, uint32_t *dim, uint32_t *metric) {
    const char *path = r->path;
    if (starts_like_json(base, size)) {
        cc_set_error("%s: is a JSON shard manifest, not an index file (this command takes one index file)", path);
        return -1;
    }
    if (size < HEADER_SIZE) {
        cc_set_error("%s: not a clipc index (file too short: %zu bytes)", path, size);
        return -1;
    }
    if (memcmp(base, FILE_MAGIC, 8) != 0) {
        cc_set_error("%s: not a clipc index file (bad magic)", path);
        return -1;
    }
    uint32_t version = get_u32(base + 8);
    if (version != FILE_VERSION) {
        cc_set_error("%s: index file version %u is not supported (this clipc reads version %d)", path, version,
                     FILE_VERSION);
        return -1;
    }
    if (get_u32(base + 124) != (uint32_t)crc32(0, base, 124)) {
        cc_set_error("%s: CRC error in the header (file corrupted)", path);
        return -1;
    }
    if (get_u32(base + 12) != HEADER_SIZE) {
        cc_set_error("%s: bad header size %u", path, get_u32(base + 12));
        return -1;
    }
    if (get_u64(base + 56) != size) {
        cc_set_error("%s: the file has %zu bytes, its header says %llu (truncated or appended to)", path, size,
                     (unsigned long long)get_u64(base + 56));
        return -1;
    }
    *dim = get_u32(base + 16);
    *metric = get_u32(base + 20);
    uint32_t n_sections = get_u32(base + 48);
    if (n_sections > MAX_SECTIONS) {
        cc_set_error("%s: %u sections (at most %d)", path, n_sections, MAX_SECTIONS);
        return -1;
    }
    size_t table_end = HEADER_SIZE + (size_t)n_sections * TABLE_ENTRY_SIZE;
    if (size < table_end) {
        cc_set_error("%s: truncated (section table ends at %zu, file has %zu bytes)", path, table_end, size);
        return -1;
    }
    if (get_u32(base + 120) != (uint32_t)crc32(0, base + HEADER_SIZE, (uInt)(n_sections * TABLE_ENTRY_SIZE))) {
        cc_set_error("%s: CRC error in the section table (file corrupted)", path);
        return -1;
    }
    r->sections = cc_calloc(n_sections ? n_sections : 1, sizeof(cc_section), "section table");
    if (!r->sections) return -1;
    r->n_sections = (int)n_sections;
    for (uint32_t i = 0; i < n_sections; i++) {
        const uint8_t *e = base + HEADER_SIZE + i * TABLE_ENTRY_SIZE;
        cc_section *s = &r->sections[i];
        memcpy(s->name, e, 8);
        s->name[8] = 0;
        for (int c = 0; c < 8 && s->name[c]; c++)
            if (!((s->name[c] >= 'a' && s->name[c] <= 'z') || (s->name[c] >= '0' && s->name[c] <= '9'))) {
                cc_set_error("%s: bad section name in entry %u", path, i);
                return -1;
            }
        s->offset = get_u64(e + 8);
        s->size = get_u64(e + 16);
        s->crc = get_u32(e + 24);
        if (s->offset % SECTION_ALIGN || s->offset < table_end || s->offset > size || s->size > size - s->offset) {
            cc_set_error("%s: section '%s' (offset %llu, %llu bytes) lies outside the file of %zu bytes%s", path,
                         s->name, (unsigned long long)s->offset, (unsigned long long)s->size, size,
                         s->offset <= size ? " (truncated?)" : "");
            return -1;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(r->sections[j].name, s->name)) {
                cc_set_error("%s: section '%s' appears twice", path, s->name);
                return -1;
            }
    }
    if (!(flags & CC_INDEX_LOAD_NO_CRC))
        for (uint32_t i = 0; i < n_sections; i++) {
            cc_section *s = &r->sections[i];
            if (crc_of(base + s->offset, s->size) != s->crc) {
                cc_set_error("%s: CRC error in section '%s' (file corrupted)", path, s->name);
                return -1;
            }
        }
    return 0;
}

int cc_load_float_rows(cc_index *idx, const cc_reader *r, int want_norms) {
    size_t n = (size_t)idx->n_slots, vec_bytes;
    const uint8_t *p;
    if (!cc_mul_size(n, (size_t)idx->dim * 4, &vec_bytes)) {
        cc_set_error("%s: vector count overflows", r->path);
        return -1;
    }
    if (cc_reader_get(r, "vectors", vec_bytes, n > 0, &p, NULL) < 0) return -1; /* an empty index has none */
    if (n) cc_buf_view(&idx->vectors, p, vec_bytes);
    if (want_norms && idx->metric == CC_METRIC_L2) {
        if (cc_reader_get(r, "norms", n * 4, n > 0, &p, NULL) < 0) return -1;
        if (n) cc_buf_view(&idx->norms, p, n * 4);
    }
    return 0;
}

/* Per-item strings: entries {offset, length} per slot into a pool section; each string must lie inside
 * the pool, end with a NUL and be UTF-8. Absent sections: none. */
static int read_strings(const cc_reader *r, size_t n, const char *entry_section,
                        const char *pool_section, const char *what, cc_buf *entries, cc_buf *pool_buf) {
    const uint8_t *p;
    int found = cc_reader_get(r, entry_section, n * 16, 0, &p, NULL);
    if (found < 0) return -1;
    if (!found || !n) return 0;
    const uint8_t *pool;
    size_t pool_size;
    if (cc_reader_get(r, pool_section, CC_ANY_SIZE, 1, &pool, &pool_size) < 0) return -1;
    const uint64_t *e = (const uint64_t *)p;
    for (size_t s = 0; s < n; s++) {
        if (e[2 * s] == UINT64_MAX) continue;
        if (e[2 * s] >= pool_size || e[2 * s + 1] >= pool_size - e[2 * s] || pool[e[2 * s] + e[2 * s + 1]] != 0 ||
            !cc_utf8_valid((const char *)pool + e[2 * s], e[2 * s + 1])) {
            cc_set_error("%s: %s of slot %zu is outside section '%s' or not UTF-8", r->path, what, s, pool_section);
            return -1;
        }
    }
    cc_buf_view(entries, p, n * 16);
    if (pool_size) cc_buf_view(pool_buf, pool, pool_size);
    return 0;
}

static int load_common(cc_index *idx, const cc_reader *r) {
    size_t n = (size_t)idx->n_slots, size;
    const uint8_t *p;
    int found;
    if (cc_reader_get(r, "params", CC_ANY_SIZE, 1, &p, &size) < 0) return -1;
    if (cc_kv_parse(p, size, r->path, "params", parse_common_param, idx) != 0) return -1;
    if (!idx->labels_identity && !idx->ops->slot_label) {
        if (cc_reader_get(r, "labels", n * 8, 1, &p, NULL) < 0) return -1;
        cc_buf_view(&idx->labels, p, n * 8);
        const int64_t *l = (const int64_t *)p;
        for (size_t s = 0; s < n; s++)
            if (l[s] < 0) {
                cc_set_error("%s: negative id %lld at slot %zu", r->path, (long long)l[s], s);
                return -1;
            }
    }
    size_t words = (n + 63) / 64;
    if ((found = cc_reader_get(r, "removed", words * 8, 0, &p, NULL)) < 0) return -1;
    if (found && words) {
        const uint64_t *w = (const uint64_t *)p;
        int64_t count = 0;
        for (size_t i = 0; i < words; i++) count += __builtin_popcountll(w[i]);
        if ((n & 63) && (w[words - 1] >> (n & 63))) {
            cc_set_error("%s: section 'removed' marks slots beyond the %zu in use", r->path, n);
            return -1;
        }
        cc_buf_view(&idx->removed, p, words * 8);
        idx->n_removed = count;
    }
    if (idx->n_slots - idx->n_removed != idx->n_live) {
        cc_set_error("%s: header says %lld vectors, slots and removals give %lld", r->path, (long long)idx->n_live,
                     (long long)(idx->n_slots - idx->n_removed));
        return -1;
    }
    if (read_strings(r, n, "itemtext", "itempool", "item text", &idx->item_text, &idx->text_pool) != 0) return -1;
    if ((found = cc_reader_get(r, "itemtime", n * 8, 0, &p, NULL)) < 0) return -1;
    if (found && n) cc_buf_view(&idx->item_time, p, n * 8);
    if (read_strings(r, n, "itemtags", "tagpool", "tag list", &idx->item_tags, &idx->tag_pool) != 0) return -1;
    if ((found = cc_reader_get(r, "metakv", CC_ANY_SIZE, 0, &p, &size)) < 0) return -1;
    if (found && cc_kv_parse(p, size, r->path, "metakv", parse_meta_entry, idx) != 0) return -1;
    return 0;
}

cc_index *cc_index_load_flags(const char *path, int flags) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cc_set_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cc_set_error("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    uint8_t head[HEADER_SIZE];
    ssize_t got = size < HEADER_SIZE ? pread(fd, head, size, 0) : 0;
    if (got > 0 && starts_like_json(head, (size_t)got)) {
        cc_set_error("%s: is a JSON shard manifest, not an index file (this command takes one index file)", path);
        close(fd);
        return NULL;
    }
    if (size < HEADER_SIZE) {
        cc_set_error("%s: not a clipc index (file too short: %zu bytes)", path, size);
        close(fd);
        return NULL;
    }
    /* private writable mapping: in-place changes (tombstones, links) copy pages, never touch the file */
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (base == MAP_FAILED) {
        cc_set_error("%s: cannot map: %s", path, strerror(errno));
        return NULL;
    }
    cc_reader r = {path, base, size, 0, NULL};
    uint32_t dim, metric;
    cc_index *idx = NULL;
    if (read_table(&r, base, size, flags, &dim, &metric) != 0) goto fail;
    if (dim < 1 || dim > CC_INDEX_MAX_DIM || metric > 1) {
        cc_set_error("%s: bad dimension %u or metric %u in the header", path, dim, metric);
        goto fail;
    }
    idx = cc_index_create_empty((int)dim, (cc_metric)metric);
    if (!idx) goto fail;
    idx->map_base = base;
    idx->map_size = size;
    char desc[HEADER_DESC_BYTES + 1];
    memcpy(desc, (const uint8_t *)base + 64, HEADER_DESC_BYTES);
    desc[HEADER_DESC_BYTES] = 0;
    if (strnlen(desc, HEADER_DESC_BYTES) == HEADER_DESC_BYTES) {
        cc_set_error("%s: index type in the header is not terminated", path);
        goto fail;
    }
    if (cc_index_setup_type(idx, desc) != 0) {
        cc_prefix_error("%s", path);
        goto fail;
    }
    const uint8_t *h = base;
    uint64_t n_slots = get_u64(h + 24), n_live = get_u64(h + 32), next_id = get_u64(h + 40);
    uint32_t hflags = get_u32(h + 52);
    if (n_slots > (uint64_t)CC_INDEX_MAX_SLOTS || n_live > n_slots || next_id > (uint64_t)INT64_MAX) {
        cc_set_error("%s: bad counts in the header (%llu slots, %llu vectors)", path, (unsigned long long)n_slots,
                     (unsigned long long)n_live);
        goto fail;
    }
    idx->n_slots = (int64_t)n_slots;
    idx->n_live = (int64_t)n_live;
    idx->next_id = (int64_t)next_id;
    idx->trained = (hflags & FLAG_TRAINED) || !idx->ops->train;
    if (!idx->trained && idx->n_slots > 0) { /* vectors are added only after training (fuzz_index) */
        cc_set_error("%s: holds %lld vectors but is not trained", path, (long long)idx->n_slots);
        goto fail;
    }
    idx->labels_identity = (hflags & FLAG_LABELS_IDENTITY) != 0;
    if (idx->labels_identity && idx->next_id < idx->n_slots) {
        cc_set_error("%s: inconsistent id counter in the header", path);
        goto fail;
    }
    if (load_common(idx, &r) != 0) goto fail;
    if (idx->ops->load && idx->ops->load(idx, &r) != 0) goto fail;
    free(r.sections);
    return idx;
fail:
    free(r.sections);
    if (idx) cc_index_free(idx); /* unmaps */
    else munmap(base, size);
    return NULL;
}

cc_index *cc_index_load(const char *path) { return cc_index_load_flags(path, 0); }
