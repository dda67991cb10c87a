/* npy.h — NumPy .npy files (format 1.0/2.0/3.0, C order, little-endian): the format in which
 * embeddings, ids and test data go in and out of clipc. */
#ifndef CLIPC_NPY_H
#define CLIPC_NPY_H

#include <stddef.h>
#include <stdint.h>

#define CC_NPY_MAX_DIMS 8

typedef enum { CC_NPY_F32, CC_NPY_F64, CC_NPY_I32, CC_NPY_I64, CC_NPY_U8 } cc_npy_dtype;

typedef struct cc_npy {
    cc_npy_dtype dtype;
    int ndim;
    int64_t shape[CC_NPY_MAX_DIMS];
    int64_t count; /* product of shape */
    void *data;    /* malloc'd, count elements of dtype */
} cc_npy;

/* Reads any supported dtype as stored. Errors name the file and what is wrong. */
int cc_npy_read(const char *path, cc_npy *out);
/* Reads and converts to float32 (from f32/f64/i32/i64). */
int cc_npy_read_f32(const char *path, cc_npy *out);
/* Reads and converts to int64 (from i32/i64). */
int cc_npy_read_i64(const char *path, cc_npy *out);
void cc_npy_free(cc_npy *arr);

/* Atomic writes (temp file + rename). */
int cc_npy_write(const char *path, cc_npy_dtype dtype, int ndim, const int64_t *shape, const void *data);
int cc_npy_write_f32(const char *path, int ndim, const int64_t *shape, const float *data);
int cc_npy_write_i64(const char *path, int ndim, const int64_t *shape, const int64_t *data);

size_t cc_npy_dtype_size(cc_npy_dtype dtype);

#endif
