/* safetensors.h — reading and writing Hugging Face safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:
 * [begin, end]}, "__metadata__": {...}}, then the data. Files are mmap'd; tensors are pointers into
 * the mapping. Every length, shape and offset in the header is validated against the file before
 * use: offsets inside the data area, sizes equal to shape × dtype size, no two tensors overlapping.
 * A sharded checkpoint (model.safetensors.index.json + shards) opens as one set.
 */
#ifndef CLIPC_SAFETENSORS_H
#define CLIPC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

#define CC_ST_MAX_DIMS 8

typedef struct cc_st_entry {
    char *name;
    cc_dtype dtype;            /* F32, F16, BF16 (I32/I64 entries are listed with is_index = 1) */
    int is_index;              /* integer buffers such as position_ids: readable, never parameters */
    int ndim;
    int64_t shape[CC_ST_MAX_DIMS];
    const void *data;          /* inside the mapping */
    size_t nbytes;
    const char *file;          /* which file (shard) holds it */
} cc_st_entry;

typedef struct cc_st_file cc_st_file;

typedef struct cc_safetensors {
    cc_st_entry *entries; /* sorted by name */
    int n_entries;
    char **meta_keys, **meta_values; /* __metadata__ string pairs (of the first file) */
    int n_meta;
    cc_st_file **files;
    int n_files;
} cc_safetensors;

/* Opens a .safetensors file, a model.safetensors.index.json, or a directory holding either. */
int cc_st_open(const char *path, cc_safetensors *out);
void cc_st_close(cc_safetensors *st);
const cc_st_entry *cc_st_find(const cc_safetensors *st, const char *name);
/* Value of a __metadata__ key, or NULL. */
const char *cc_st_metadata(const cc_safetensors *st, const char *key);
/* Converts an entry to f32 into dst (count elements). */
int cc_st_read_f32(const cc_st_entry *entry, float *dst, int64_t count);

/* Writing: tensors given as f32 host arrays, stored as `dtype` (F32/F16/BF16). Names are written
 * sorted, data 8-byte aligned; the file is written to a temp name and renamed. */
typedef struct cc_st_write_item {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} cc_st_write_item;
int cc_st_write(const char *path, const cc_st_write_item *items, int n_items, cc_dtype dtype,
                const char *metadata_json /* NULL or a JSON object of string values */);

#endif
