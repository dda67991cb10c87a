/* safetensors.c — validated, mmap'd safetensors reader and an atomic writer (see safetensors.h). */
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/util.h"

#define ST_MAX_HEADER (100u << 20) /* 100 MB: far above any real header, refuse beyond it */
#define ST_MAX_SHARDS 1024

struct cc_st_file {
    char *path;
    void *map;
    size_t size;
};

static void close_file(cc_st_file *f) {
    if (!f) return;
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->size);
    free(f->path);
    free(f);
}

static int dtype_from_string(const char *s, cc_dtype *dtype, int *is_index, size_t *elem_size) {
    static const struct { const char *name; cc_dtype dtype; int is_index; size_t size; } known[] = {
        {"F32", CC_F32, 0, 4}, {"F16", CC_F16, 0, 2}, {"BF16", CC_BF16, 0, 2},
        {"I32", CC_I32, 1, 4}, {"I64", CC_I32, 1, 8},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(s, known[i].name)) {
            *dtype = known[i].dtype;
            *is_index = known[i].is_index;
            *elem_size = known[i].size;
            return 0;
        }
    return -1;
}

typedef struct {
    size_t begin, end;
    const char *name;
} span;

static int compare_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int compare_entry(const void *a, const void *b) {
    return strcmp(((const cc_st_entry *)a)->name, ((const cc_st_entry *)b)->name);
}

static int append_entry(cc_safetensors *st, int *cap, const cc_st_entry *entry) {
    if (st->n_entries == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        cc_st_entry *grown = cc_realloc(st->entries, (size_t)*cap * sizeof *grown, "safetensors index");
        if (!grown) return -1;
        st->entries = grown;
    }
    st->entries[st->n_entries++] = *entry;
    return 0;
}

/* Keeps the string values of __metadata__ (the format allows only strings there). */
static int keep_metadata(cc_safetensors *st, const cJSON *meta, const char *path) {
    if (!cJSON_IsObject(meta)) {
        cc_set_error("%s: __metadata__ must be an object of strings", path);
        return -1;
    }
    if (st->meta_keys) {
        cc_set_error("%s: __metadata__ appears twice in the header", path);
        return -1;
    }
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = cc_calloc((size_t)n + 1, sizeof *st->meta_keys, "metadata");
    st->meta_values = cc_calloc((size_t)n + 1, sizeof *st->meta_values, "metadata");
    if (!st->meta_keys || !st->meta_values) return -1;
    for (const cJSON *item = meta->child; item; item = item->next) {
        if (!cJSON_IsString(item)) continue;
        st->meta_keys[st->n_meta] = cc_strdup(item->string);
        st->meta_values[st->n_meta] = cc_strdup(item->valuestring);
        if (!st->meta_keys[st->n_meta] || !st->meta_values[st->n_meta]) return -1;
        st->n_meta++;
    }
    return 0;
}

/* Maps one file and appends its entries (only those in `wanted` when given: shards). */
static int open_one(cc_safetensors *st, int *cap, const char *path) {
    cc_st_file *f = cc_calloc(1, sizeof *f, "safetensors file");
    if (!f) return -1;
    f->path = cc_strdup(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        cc_set_error("%s: cannot open: %s", path, strerror(errno));
        close_file(f);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 8) {
        cc_set_error("%s: not a safetensors file (%lld bytes, need at least the 8-byte header length)", path,
                     (long long)sb.st_size);
        close(fd);
        close_file(f);
        return -1;
    }
    f->size = (size_t)sb.st_size;
    /* private and writable: pages a trainer updates in place become private copies; the file is never written */
    f->map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) {
        cc_set_error("%s: mmap failed: %s", path, strerror(errno));
        f->map = NULL;
        close_file(f);
        return -1;
    }
    const unsigned char *bytes = f->map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    if (header_len > ST_MAX_HEADER || header_len > f->size - 8) {
        cc_set_error("%s: header length %llu does not fit in the file of %zu bytes", path,
                     (unsigned long long)header_len, f->size);
        close_file(f);
        return -1;
    }
    cJSON *header = cJSON_ParseWithLength((const char *)bytes + 8, (size_t)header_len);
    if (!header || !cJSON_IsObject(header)) {
        const char *at = cJSON_GetErrorPtr();
        cc_set_error("%s: header is not a JSON object (error near byte %lld of the header)", path,
                     at ? (long long)(at - (const char *)bytes - 8) : -1LL);
        cJSON_Delete(header);
        close_file(f);
        return -1;
    }
    const unsigned char *data_start = bytes + 8 + header_len;
    size_t data_size = f->size - 8 - (size_t)header_len;
    int n_items = cJSON_GetArraySize(header);
    span *spans = cc_calloc((size_t)n_items + 1, sizeof *spans, "safetensors spans");
    int n_spans = 0, status = spans ? 0 : -1;
    for (cJSON *item = header->child; item && status == 0; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) {
            if (st->n_files == 0) status = keep_metadata(st, item, path);
            continue;
        }
        cc_st_entry e = {0};
        cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        cJSON *offsets = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        size_t elem_size = 0;
        if (!cJSON_IsString(dtype) || !cJSON_IsArray(shape) || !cJSON_IsArray(offsets) ||
            cJSON_GetArraySize(offsets) != 2) {
            cc_set_error("%s: tensor '%s' lacks dtype, shape or data_offsets", path, item->string);
            status = -1;
            break;
        }
        if (dtype_from_string(dtype->valuestring, &e.dtype, &e.is_index, &elem_size) != 0) {
            cc_set_error("%s: tensor '%s' has unsupported dtype %s (supported: F32, F16, BF16)", path, item->string,
                         dtype->valuestring);
            status = -1;
            break;
        }
        e.ndim = cJSON_GetArraySize(shape);
        if (e.ndim > CC_ST_MAX_DIMS) {
            cc_set_error("%s: tensor '%s' has %d dims", path, item->string, e.ndim);
            status = -1;
            break;
        }
        size_t count = 1;
        int d = 0;
        for (cJSON *dim = shape->child; dim; dim = dim->next, d++) {
            double v = cJSON_IsNumber(dim) ? dim->valuedouble : -1;
            if (v < 0 || v > 1e12 || v != (double)(int64_t)v || !cc_mul_size(count, (size_t)v, &count)) {
                cc_set_error("%s: tensor '%s' has an invalid shape", path, item->string);
                status = -1;
                break;
            }
            e.shape[d] = (int64_t)v;
        }
        if (status) break;
        double begin = cJSON_GetArrayItem(offsets, 0)->valuedouble, end = cJSON_GetArrayItem(offsets, 1)->valuedouble;
        size_t nbytes;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(offsets, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(offsets, 1)) ||
            begin < 0 || end < begin || end > (double)data_size || !cc_mul_size(count, elem_size, &nbytes) ||
            (size_t)(end - begin) != nbytes) {
            cc_set_error("%s: tensor '%s' has data_offsets [%.0f, %.0f] that do not match its shape (%zu bytes) or lie "
                         "outside the %zu data bytes",
                         path, item->string, begin, end, count * elem_size, data_size);
            status = -1;
            break;
        }
        if (!e.is_index && ((size_t)begin % elem_size) != 0) {
            cc_set_error("%s: tensor '%s' is not aligned to its element size", path, item->string);
            status = -1;
            break;
        }
        e.name = cc_strdup(item->string);
        e.data = data_start + (size_t)begin;
        e.nbytes = nbytes;
        e.file = f->path;
        if (end > begin) spans[n_spans++] = (span){(size_t)begin, (size_t)end, e.name}; /* empty ones overlap nothing */
        if (!e.name || append_entry(st, cap, &e) != 0) status = -1;
    }
    if (status == 0) {
        qsort(spans, (size_t)n_spans, sizeof *spans, compare_span);
        /* by begin: each span must start at or after the furthest end so far */
        int furthest = 0;
        for (int i = 1; i < n_spans; i++) {
            if (spans[i].begin < spans[furthest].end) {
                cc_set_error("%s: tensors '%s' and '%s' overlap in the data area", path, spans[furthest].name, spans[i].name);
                status = -1;
                break;
            }
            if (spans[i].end > spans[furthest].end) furthest = i;
        }
    }
    free(spans);
    cJSON_Delete(header);
    if (status != 0) {
        close_file(f);
        return -1;
    }
    cc_st_file **grown = cc_realloc(st->files, (size_t)(st->n_files + 1) * sizeof *grown, "safetensors files");
    if (!grown) {
        close_file(f);
        return -1;
    }
    st->files = grown;
    st->files[st->n_files++] = f;
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Sharded: index.json's weight_map names the shard of each tensor; each shard is opened once and
 * must hold exactly the tensors the map assigns to it. */
static int open_index(cc_safetensors *st, int *cap, const char *index_path) {
    char *text;
    size_t size;
    if (cc_read_file(index_path, &text, &size) != 0) return -1;
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cc_set_error("%s: not a safetensors index (no weight_map object)", index_path);
        cJSON_Delete(root);
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    const char *shards[ST_MAX_SHARDS];
    int n_shards = 0, status = 0;
    for (cJSON *item = map->child; item && status == 0; item = item->next) {
        if (!cJSON_IsString(item) || strchr(item->valuestring, '/') || !strcmp(item->valuestring, "..")) {
            cc_set_error("%s: weight_map entry '%s' is not a plain file name", index_path, item->string);
            status = -1;
            break;
        }
        int known = 0;
        for (int i = 0; i < n_shards; i++) known |= !strcmp(shards[i], item->valuestring);
        if (known) continue;
        if (n_shards == ST_MAX_SHARDS) {
            cc_set_error("%s: more than %d shards", index_path, ST_MAX_SHARDS);
            status = -1;
            break;
        }
        shards[n_shards++] = item->valuestring;
        char shard_path[8192];
        snprintf(shard_path, sizeof shard_path, "%s%s", dir, item->valuestring);
        status = open_one(st, cap, shard_path);
    }
    if (status == 0) {
        qsort(st->entries, (size_t)st->n_entries, sizeof *st->entries, compare_entry);
        for (cJSON *item = map->child; item; item = item->next) {
            const cc_st_entry *e = cc_st_find(st, item->string);
            if (!e) {
                cc_set_error("%s: tensor '%s' is listed in the index but missing from shard %s", index_path,
                             item->string, item->valuestring);
                status = -1;
                break;
            }
        }
    }
    cJSON_Delete(root);
    return status;
}

int cc_st_open(const char *path, cc_safetensors *out) {
    memset(out, 0, sizeof *out);
    int cap = 0, status;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        cc_set_error("%s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(sb.st_mode)) {
        char candidate[4096];
        snprintf(candidate, sizeof candidate, "%s/model.safetensors", path);
        if (cc_file_exists(candidate)) {
            status = open_one(out, &cap, candidate);
        } else {
            snprintf(candidate, sizeof candidate, "%s/model.safetensors.index.json", path);
            if (!cc_file_exists(candidate)) {
                cc_set_error("%s: no model.safetensors or model.safetensors.index.json in this directory", path);
                return -1;
            }
            status = open_index(out, &cap, candidate);
        }
    } else if (ends_with(path, ".json")) {
        status = open_index(out, &cap, path);
    } else {
        status = open_one(out, &cap, path);
    }
    if (status != 0) {
        cc_st_close(out);
        return -1;
    }
    if (out->n_entries > 1) /* a file may hold no tensors (entries is then NULL) */
        qsort(out->entries, (size_t)out->n_entries, sizeof *out->entries, compare_entry);
    for (int i = 1; i < out->n_entries; i++)
        if (!strcmp(out->entries[i].name, out->entries[i - 1].name)) {
            cc_set_error("%s: tensor '%s' appears twice", path, out->entries[i].name);
            cc_st_close(out);
            return -1;
        }
    return 0;
}

const char *cc_st_metadata(const cc_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

void cc_st_close(cc_safetensors *st) {
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    for (int i = 0; i < st->n_entries; i++) free(st->entries[i].name);
    for (int i = 0; i < st->n_files; i++) close_file(st->files[i]);
    free(st->entries);
    free(st->files);
    memset(st, 0, sizeof *st);
}

const cc_st_entry *cc_st_find(const cc_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_entries - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(st->entries[mid].name, name);
        if (c == 0) return &st->entries[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

int cc_st_read_f32(const cc_st_entry *entry, float *dst, int64_t count) {
    if (entry->is_index) {
        cc_set_error("%s: tensor '%s' holds integers, not weights", entry->file, entry->name);
        return -1;
    }
    if ((size_t)count * cc_dtype_size(entry->dtype) != entry->nbytes) {
        cc_set_error("%s: tensor '%s' has %zu bytes, expected %lld elements", entry->file, entry->name, entry->nbytes,
                     (long long)count);
        return -1;
    }
    /* the mapping may be unaligned for 2-byte types only if the file is odd; memcpy-based reads */
    if (entry->dtype == CC_F32) {
        memcpy(dst, entry->data, entry->nbytes);
        return 0;
    }
    const unsigned char *src = entry->data;
    for (int64_t i = 0; i < count; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = entry->dtype == CC_F16 ? cc_f16_to_f32(h) : cc_bf16_to_f32(h);
    }
    return 0;
}

static int compare_items(const void *a, const void *b) {
    return strcmp((*(const cc_st_write_item *const *)a)->name, (*(const cc_st_write_item *const *)b)->name);
}

int cc_st_write(const char *path, const cc_st_write_item *items, int n_items, cc_dtype dtype, const char *metadata_json) {
    if (dtype != CC_F32 && dtype != CC_F16 && dtype != CC_BF16) {
        cc_set_error("%s: safetensors export supports f32, f16 and bf16", path);
        return -1;
    }
    const cc_st_write_item **sorted = cc_malloc((size_t)n_items * sizeof *sorted, "safetensors items");
    if (!sorted) return -1;
    for (int i = 0; i < n_items; i++) sorted[i] = &items[i];
    qsort(sorted, (size_t)n_items, sizeof *sorted, compare_items);
    cJSON *header = cJSON_CreateObject();
    if (metadata_json) {
        cJSON *meta = cJSON_Parse(metadata_json);
        if (meta) cJSON_AddItemToObject(header, "__metadata__", meta);
    }
    const char *dtype_name = dtype == CC_F32 ? "F32" : dtype == CC_F16 ? "F16" : "BF16";
    size_t elem = cc_dtype_size(dtype), offset = 0;
    for (int i = 0; i < n_items; i++) {
        const cc_st_write_item *it = sorted[i];
        size_t count = 1;
        for (int d = 0; d < it->ndim; d++) count *= (size_t)it->shape[d];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "dtype", dtype_name);
        cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
        for (int d = 0; d < it->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)it->shape[d]));
        cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)(offset + count * elem)));
        cJSON_AddItemToObject(header, it->name, entry);
        offset += count * elem;
    }
    char *text = cJSON_PrintUnformatted(header);
    cJSON_Delete(header);
    if (!text) {
        free(sorted);
        cc_set_error("%s: out of memory building the header", path);
        return -1;
    }
    size_t header_len = strlen(text), padded = (header_len + 7) & ~(size_t)7;
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) {
        free(text);
        free(sorted);
        return -1;
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int failed = fwrite(len_bytes, 1, 8, af.fp) != 8 || fwrite(text, 1, header_len, af.fp) != header_len;
    for (size_t i = header_len; i < padded && !failed; i++) failed = fputc(' ', af.fp) == EOF;
    free(text);
    uint16_t chunk[4096];
    for (int i = 0; i < n_items && !failed; i++) {
        const cc_st_write_item *it = sorted[i];
        size_t count = 1;
        for (int d = 0; d < it->ndim; d++) count *= (size_t)it->shape[d];
        if (dtype == CC_F32) {
            failed = count && fwrite(it->data, 4, count, af.fp) != count;
            continue;
        }
        for (size_t at = 0; at < count && !failed; at += 4096) {
            size_t n = count - at < 4096 ? count - at : 4096;
            cc_convert_from_f32(dtype, it->data + at, chunk, (int64_t)n);
            failed = fwrite(chunk, 2, n, af.fp) != n;
        }
    }
    free(sorted);
    if (failed) {
        cc_set_error("%s: write failed: %s", path, strerror(errno));
        cc_atomic_abort(&af);
        return -1;
    }
    return cc_atomic_commit(&af);
}
