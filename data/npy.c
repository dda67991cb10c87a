/* npy.c — reader and writer for NumPy .npy files. The header is a Python dict literal of the three
 * keys the format defines, parsed as one; the data length is checked against the file size. */
#include "data/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#define NPY_MAX_HEADER (1 << 20) /* no sane header is this large; refuse rather than allocate */

size_t cc_npy_dtype_size(cc_npy_dtype dtype) {
    switch (dtype) {
    case CC_NPY_F32: return 4;
    case CC_NPY_F64: return 8;
    case CC_NPY_I32: return 4;
    case CC_NPY_I64: return 8;
    case CC_NPY_U8: return 1;
    }
    return 0;
}

static const char *dtype_descr(cc_npy_dtype dtype) {
    switch (dtype) {
    case CC_NPY_F32: return "<f4";
    case CC_NPY_F64: return "<f8";
    case CC_NPY_I32: return "<i4";
    case CC_NPY_I64: return "<i8";
    case CC_NPY_U8: return "|u1";
    }
    return "?";
}

/* The header is parsed as the Python dict literal it is ({'descr': '<f4', 'fortran_order': False,
 * 'shape': (3, 4), }): a key is only ever found in key position, never inside another value. */
typedef struct {
    const char *at;
} npy_cursor;

static void skip_space(npy_cursor *c) {
    while (isspace((unsigned char)*c->at)) c->at++;
}

/* A quoted string (no escapes) into buf; -1 when malformed or longer than size - 1. */
static int parse_string(npy_cursor *c, char *buf, size_t size) {
    char quote = *c->at;
    if (quote != '\'' && quote != '"') return -1;
    const char *start = ++c->at;
    while (*c->at && *c->at != quote && *c->at != '\\') c->at++;
    if (*c->at != quote || (size_t)(c->at - start) >= size) return -1;
    memcpy(buf, start, (size_t)(c->at - start));
    buf[c->at - start] = 0;
    c->at++;
    return 0;
}

static int parse_shape(const char *path, npy_cursor *c, cc_npy *out) {
    if (*c->at != '(') {
        cc_set_error("%s: npy 'shape' is not a tuple", path);
        return -1;
    }
    c->at++;
    out->ndim = 0;
    out->count = 1;
    for (;;) {
        skip_space(c);
        if (*c->at == ')') break;
        if (!isdigit((unsigned char)*c->at)) {
            cc_set_error("%s: malformed npy shape", path);
            return -1;
        }
        char *end;
        errno = 0;
        long long dim = strtoll(c->at, &end, 10);
        if (errno || dim < 0 || dim > (1LL << 40)) {
            cc_set_error("%s: npy dimension out of range", path);
            return -1;
        }
        if (out->ndim >= CC_NPY_MAX_DIMS) {
            cc_set_error("%s: npy array has more than %d dimensions", path, CC_NPY_MAX_DIMS);
            return -1;
        }
        out->shape[out->ndim++] = dim;
        if (dim && out->count > (1LL << 40) / dim) {
            cc_set_error("%s: npy array too large", path);
            return -1;
        }
        out->count *= dim;
        c->at = end;
        skip_space(c);
        if (*c->at == ',') c->at++;
        else if (*c->at != ')') {
            cc_set_error("%s: malformed npy shape", path);
            return -1;
        }
    }
    c->at++;
    return 0;
}

static int parse_descr(const char *path, const char *descr, cc_npy *out) {
    static const struct { const char *name; cc_npy_dtype dtype; } known[] = {
        {"<f4", CC_NPY_F32}, {"<f8", CC_NPY_F64}, {"<i4", CC_NPY_I32},
        {"<i8", CC_NPY_I64}, {"|u1", CC_NPY_U8},  {"<u1", CC_NPY_U8},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(descr, known[i].name)) {
            out->dtype = known[i].dtype;
            return 0;
        }
    cc_set_error("%s: unsupported npy dtype '%.15s' (need <f4, <f8, <i4, <i8 or |u1)", path, descr);
    return -1;
}

static int parse_header(const char *path, const char *header, cc_npy *out) {
    npy_cursor c = {header};
    int have_descr = 0, have_order = 0, have_shape = 0;
    skip_space(&c);
    if (*c.at++ != '{') goto malformed;
    for (;;) {
        skip_space(&c);
        if (*c.at == '}') break;
        char key[32];
        if (parse_string(&c, key, sizeof key) != 0) goto malformed;
        skip_space(&c);
        if (*c.at++ != ':') goto malformed;
        skip_space(&c);
        int *seen = !strcmp(key, "descr") ? &have_descr : !strcmp(key, "fortran_order") ? &have_order
                    : !strcmp(key, "shape") ? &have_shape : NULL;
        if (!seen) {
            cc_set_error("%s: npy header has an unknown key '%s'", path, key);
            return -1;
        }
        if (*seen) {
            cc_set_error("%s: npy header has '%s' twice", path, key);
            return -1;
        }
        *seen = 1;
        if (seen == &have_descr) {
            char descr[32];
            if (parse_string(&c, descr, sizeof descr) != 0) {
                cc_set_error("%s: npy 'descr' is not a simple dtype string", path);
                return -1;
            }
            if (parse_descr(path, descr, out) != 0) return -1;
        } else if (seen == &have_order) {
            if (!strncmp(c.at, "False", 5)) {
                c.at += 5;
            } else {
                cc_set_error("%s: only C-order npy arrays are supported (fortran_order must be False)", path);
                return -1;
            }
        } else if (parse_shape(path, &c, out) != 0) {
            return -1;
        }
        skip_space(&c);
        if (*c.at == ',') c.at++;
        else if (*c.at != '}') goto malformed;
    }
    c.at++;
    skip_space(&c);
    if (*c.at) goto malformed;
    if (!have_descr || !have_order || !have_shape) {
        cc_set_error("%s: npy header lacks '%s'", path, !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        return -1;
    }
    return 0;
malformed:
    cc_set_error("%s: malformed npy header (not a dict of 'descr', 'fortran_order' and 'shape') near byte %lld", path,
                 (long long)(c.at - header));
    return -1;
}

int cc_npy_read(const char *path, cc_npy *out) {
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cc_set_error("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    unsigned char preamble[12];
    char *header = NULL;
    int result = -1;
    if (fread(preamble, 1, 8, fp) != 8 || memcmp(preamble, "\x93NUMPY", 6) != 0) {
        cc_set_error("%s: not an .npy file (bad magic)", path);
        goto done;
    }
    int major = preamble[6];
    size_t header_len;
    if (major == 1) {
        if (fread(preamble + 8, 1, 2, fp) != 2) goto truncated;
        header_len = preamble[8] | (preamble[9] << 8);
    } else if (major == 2 || major == 3) {
        if (fread(preamble + 8, 1, 4, fp) != 4) goto truncated;
        header_len = (size_t)preamble[8] | ((size_t)preamble[9] << 8) | ((size_t)preamble[10] << 16) |
                     ((size_t)preamble[11] << 24);
    } else {
        cc_set_error("%s: unsupported npy format version %d", path, major);
        goto done;
    }
    if (header_len > NPY_MAX_HEADER) {
        cc_set_error("%s: npy header length %zu is implausible", path, header_len);
        goto done;
    }
    header = cc_malloc(header_len + 1, "npy header");
    if (!header) goto done;
    if (fread(header, 1, header_len, fp) != header_len) goto truncated;
    header[header_len] = 0;
    if (parse_header(path, header, out) != 0) goto done;
    long data_start = ftell(fp);
    if (fseek(fp, 0, SEEK_END) != 0) goto truncated;
    long file_size = ftell(fp);
    size_t nbytes = (size_t)out->count * cc_npy_dtype_size(out->dtype);
    if (file_size < data_start || (size_t)(file_size - data_start) < nbytes) {
        cc_set_error("%s: npy data truncated: header says %zu bytes, file has %ld", path, nbytes,
                     file_size - data_start);
        goto done;
    }
    fseek(fp, data_start, SEEK_SET);
    out->data = cc_malloc(nbytes, path);
    if (!out->data) goto done;
    if (nbytes && fread(out->data, 1, nbytes, fp) != nbytes) goto truncated;
    result = 0;
    goto done;
truncated:
    cc_set_error("%s: npy file truncated", path);
done:
    if (result != 0) {
        free(out->data);
        out->data = NULL;
    }
    free(header);
    fclose(fp);
    return result;
}

int cc_npy_read_f32(const char *path, cc_npy *out) {
    if (cc_npy_read(path, out) != 0) return -1;
    if (out->dtype == CC_NPY_F32) return 0;
    float *converted = cc_malloc((size_t)out->count * sizeof(float), path);
    if (!converted) {
        cc_npy_free(out);
        return -1;
    }
    for (int64_t i = 0; i < out->count; i++) {
        switch (out->dtype) {
        case CC_NPY_F64: converted[i] = (float)((double *)out->data)[i]; break;
        case CC_NPY_I32: converted[i] = (float)((int32_t *)out->data)[i]; break;
        case CC_NPY_I64: converted[i] = (float)((int64_t *)out->data)[i]; break;
        case CC_NPY_U8: converted[i] = (float)((uint8_t *)out->data)[i]; break;
        default: break;
        }
    }
    free(out->data);
    out->data = converted;
    out->dtype = CC_NPY_F32;
    return 0;
}

int cc_npy_read_i64(const char *path, cc_npy *out) {
    if (cc_npy_read(path, out) != 0) return -1;
    if (out->dtype == CC_NPY_I64) return 0;
    if (out->dtype != CC_NPY_I32) {
        cc_set_error("%s: expected an integer npy array (<i4 or <i8), got %s", path, dtype_descr(out->dtype));
        cc_npy_free(out);
        return -1;
    }
    int64_t *converted = cc_malloc((size_t)out->count * sizeof(int64_t), path);
    if (!converted) {
        cc_npy_free(out);
        return -1;
    }
    for (int64_t i = 0; i < out->count; i++) converted[i] = ((int32_t *)out->data)[i];
    free(out->data);
    out->data = converted;
    out->dtype = CC_NPY_I64;
    return 0;
}

void cc_npy_free(cc_npy *arr) {
    free(arr->data);
    memset(arr, 0, sizeof *arr);
}

int cc_npy_write(const char *path, cc_npy_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    char header[512];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                       dtype_descr(dtype));
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        len += snprintf(header + len, sizeof header - (size_t)len, "%lld,%s", (long long)shape[i],
                        i + 1 < ndim ? " " : "");
        count *= shape[i];
    }
    if (ndim > 1) len--; /* numpy writes (3,) for one dim and (3, 4) for more */
    len += snprintf(header + len, sizeof header - (size_t)len, "), }");
    /* pad with spaces so that magic + length + header + '\n' is a multiple of 64 */
    int total = 10 + len + 1;
    int padded = (total + 63) / 64 * 64;
    while (10 + len + 1 < padded) header[len++] = ' ';
    header[len++] = '\n';
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) return -1;
    unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff),
                                  (unsigned char)(len >> 8)};
    size_t nbytes = (size_t)count * cc_npy_dtype_size(dtype);
    if (fwrite(preamble, 1, 10, af.fp) != 10 || fwrite(header, 1, (size_t)len, af.fp) != (size_t)len ||
        (nbytes && fwrite(data, 1, nbytes, af.fp) != nbytes)) {
        cc_set_error("%s: write failed: %s", path, strerror(errno));
        cc_atomic_abort(&af);
        return -1;
    }
    return cc_atomic_commit(&af);
}

int cc_npy_write_f32(const char *path, int ndim, const int64_t *shape, const float *data) {
    return cc_npy_write(path, CC_NPY_F32, ndim, shape, data);
}

int cc_npy_write_i64(const char *path, int ndim, const int64_t *shape, const int64_t *data) {
    return cc_npy_write(path, CC_NPY_I64, ndim, shape, data);
}
