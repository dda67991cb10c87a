/* tensor.c — tensor records outside graphs (parameters, buffers), shapes, dtype conversion. */
#include "engine/tensor.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/util.h"
#include "kernels/gemm.h"

size_t cc_dtype_size(cc_dtype dtype) {
    switch (dtype) {
    case CC_F32: return 4;
    case CC_F16: return 2;
    case CC_BF16: return 2;
    case CC_I32: return 4;
    }
    return 0;
}

const char *cc_dtype_name(cc_dtype dtype) {
    switch (dtype) {
    case CC_F32: return "f32";
    case CC_F16: return "f16";
    case CC_BF16: return "bf16";
    case CC_I32: return "i32";
    }
    return "?";
}

const char *cc_op_name(cc_op op) {
    static const char *names[CC_OP_COUNT] = {
        [CC_OP_NONE] = "leaf", [CC_OP_VIEW] = "view", [CC_OP_CONT] = "cont", [CC_OP_MATMUL] = "matmul",
        [CC_OP_ADD] = "add", [CC_OP_MUL] = "mul", [CC_OP_SCALE] = "scale", [CC_OP_MUL_SCALAR] = "mul_scalar",
        [CC_OP_EXP] = "exp", [CC_OP_LAYERNORM] = "layernorm", [CC_OP_SOFTMAX] = "softmax",
        [CC_OP_ATTENTION] = "attention", [CC_OP_ACT] = "act", [CC_OP_GET_ROWS] = "get_rows",
        [CC_OP_PATCHIFY] = "patchify", [CC_OP_PREPEND_ROW] = "prepend_row", [CC_OP_L2NORM] = "l2norm",
        [CC_OP_CROSS_ENTROPY] = "cross_entropy", [CC_OP_SUM] = "sum", [CC_OP_SUM_TO] = "sum_to",
        [CC_OP_REPEAT] = "repeat", [CC_OP_DOT] = "dot", [CC_OP_FILL] = "fill", [CC_OP_CONCAT] = "concat",
        [CC_OP_LAYERNORM_BACK_X] = "layernorm_back_x", [CC_OP_LAYERNORM_BACK_PARAMS] = "layernorm_back_params",
        [CC_OP_SOFTMAX_BACK] = "softmax_back", [CC_OP_ATTENTION_BACK] = "attention_back",
        [CC_OP_ACT_BACK] = "act_back", [CC_OP_GET_ROWS_BACK] = "get_rows_back",
        [CC_OP_PATCHIFY_BACK] = "patchify_back", [CC_OP_L2NORM_BACK] = "l2norm_back",
        [CC_OP_CROSS_ENTROPY_BACK] = "cross_entropy_back", [CC_OP_VIEW_BACK] = "view_back",
        [CC_OP_ACCUMULATE] = "accumulate", [CC_OP_SIGLIP_LOSS] = "siglip_loss",
        [CC_OP_SIGLIP_LOSS_BACK] = "siglip_loss_back",
    };
    return (op >= 0 && op < CC_OP_COUNT && names[op]) ? names[op] : "?";
}

int64_t cc_nelements(const cc_tensor *t) {
    int64_t count = 1;
    for (int i = 0; i < t->ndim; i++) count *= t->shape[i];
    return count;
}

size_t cc_nbytes(const cc_tensor *t) { return (size_t)cc_nelements(t) * cc_dtype_size(t->dtype); }

int64_t cc_nrows(const cc_tensor *t) {
    int64_t rows = 1;
    for (int i = 0; i + 1 < t->ndim; i++) rows *= t->shape[i];
    return rows;
}

void cc_set_contiguous_strides(cc_tensor *t) {
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = stride;
        stride *= t->shape[i];
    }
}

int cc_is_contiguous(const cc_tensor *t) {
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expected) return 0;
        expected *= t->shape[i];
    }
    return 1;
}

int cc_same_shape(const cc_tensor *a, const cc_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *cc_shape_str(const cc_tensor *t, char *buf, size_t size) {
    if (!t) {
        snprintf(buf, size, "(null)");
        return buf;
    }
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

cc_tensor *cc_tensor_new(cc_dtype dtype, int ndim, const int64_t *shape, const char *name) {
    if (ndim < 0 || ndim > CC_MAX_DIMS) {
        cc_set_error("tensor %s: %d dims (at most %d)", name ? name : "", ndim, CC_MAX_DIMS);
        return NULL;
    }
    cc_tensor *t = cc_calloc(1, sizeof *t, "tensor");
    if (!t) return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            cc_set_error("tensor %s: negative dimension", name ? name : "");
            free(t);
            return NULL;
        }
        t->shape[i] = shape[i];
    }
    cc_set_contiguous_strides(t);
    t->flags = CC_FLAG_EXTERNAL;
    t->order = -1;
    t->plan_offset = -1;
    if (name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

int cc_tensor_alloc(cc_tensor *t, cc_backend *backend) {
    size_t nbytes = cc_nbytes(t);
    void *ptr = backend ? backend->alloc(backend, nbytes) : cc_malloc_aligned(nbytes, t->name);
    if (!ptr) {
        cc_prefix_error("tensor %s", t->name);
        return -1;
    }
    t->data = t->owned_data = ptr;
    t->backend = backend;
    return 0;
}

void cc_tensor_free(cc_tensor *t) {
    if (!t) return;
    cc_gemm_packed_free(t->packed);
    if (t->owned_data) {
        if (t->backend) t->backend->free(t->backend, t->owned_data);
        else cc_free_aligned(t->owned_data);
    }
    free(t);
}

void cc_tensor_set_name(cc_tensor *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
}

uint16_t cc_f32_to_f16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint32_t sign = (bits >> 16) & 0x8000;
    uint32_t abs_bits = bits & 0x7fffffff;
    if (abs_bits >= 0x7f800000) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (abs_bits > 0x7f800000 ? 0x200 : 0));
    if (abs_bits >= 0x477ff000) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (abs_bits < 0x38800000) {                                    /* subnormal or zero in f16 */
        float abs_x;
        memcpy(&abs_x, &abs_bits, 4);
        /* scale into the subnormal range; rint rounds to nearest even */
        return (uint16_t)(sign | (uint32_t)rintf(abs_x * 16777216.0f)); /* 2^24 */
    }
    uint32_t mantissa_rounding = 0xfff + ((abs_bits >> 13) & 1);
    abs_bits += mantissa_rounding;
    return (uint16_t)(sign | ((abs_bits - 0x38000000) >> 13));
}

float cc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    float out;
    if (exponent == 0) {
        out = (float)mantissa / 16777216.0f;
        if (sign) out = -out;
        return out;
    }
    uint32_t bits;
    if (exponent == 31) bits = sign | 0x7f800000 | (mantissa << 13);
    else bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    memcpy(&out, &bits, 4);
    return out;
}

uint16_t cc_f32_to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7fffffff) > 0x7f800000) return (uint16_t)((bits >> 16) | 0x40); /* quiet nan */
    bits += 0x7fff + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

float cc_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

void cc_convert_to_f32(cc_dtype src_dtype, const void *src, float *dst, int64_t count) {
    switch (src_dtype) {
    case CC_F32: memmove(dst, src, (size_t)count * 4); break;
    case CC_F16:
        for (int64_t i = 0; i < count; i++) dst[i] = cc_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case CC_BF16:
        for (int64_t i = 0; i < count; i++) dst[i] = cc_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    case CC_I32:
        for (int64_t i = 0; i < count; i++) dst[i] = (float)((const int32_t *)src)[i];
        break;
    }
}

void cc_convert_from_f32(cc_dtype dst_dtype, const float *src, void *dst, int64_t count) {
    switch (dst_dtype) {
    case CC_F32: memmove(dst, src, (size_t)count * 4); break;
    case CC_F16:
        for (int64_t i = 0; i < count; i++) ((uint16_t *)dst)[i] = cc_f32_to_f16(src[i]);
        break;
    case CC_BF16:
        for (int64_t i = 0; i < count; i++) ((uint16_t *)dst)[i] = cc_f32_to_bf16(src[i]);
        break;
    case CC_I32:
        for (int64_t i = 0; i < count; i++) ((int32_t *)dst)[i] = (int32_t)lrintf(src[i]);
        break;
    }
}
