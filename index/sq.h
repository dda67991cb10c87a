/* sq.h — scalar-quantised vector storage for the Flat index ("Flat,SQ8", "Flat,F16", "Flat,BF16"):
 * one code per dimension, and distances computed on the codes without decoding rows.
 *
 *   SQ8   u8 per dimension: x_j ≈ vmin_j + scale_j · c_j, with vmin_j / scale_j = (max_j - min_j) / 255
 *         trained per dimension on sample vectors (values outside the range are clamped).
 *   F16   IEEE half precision, BF16 the upper half of the float32 (both rounded to nearest even by
 *         engine/tensor.c's conversions, the one definition clipc has of them).
 *
 * Distances of one float query against codes: the query is prepared once (cc_sq_query: for SQ8
 * the per-dimension factors q_j · scale_j and the constant Σ q_j · vmin_j for the inner product,
 * q_j - vmin_j for L2), then each code row costs one pass of dim multiply-adds. Kernels exist in
 * AVX2 (+F16C, FMA) and portable C, chosen by cc_cpu_isa() (index/distance.h); the scalar version
 * is the readable definition the tests compare the SIMD one against.
 */
#ifndef CLIPC_INDEX_SQ_H
#define CLIPC_INDEX_SQ_H

#include <stddef.h>
#include <stdint.h>

#include "index/distance.h"

typedef enum { CC_SQ_NONE = 0, CC_SQ_8 = 1, CC_SQ_F16 = 2, CC_SQ_BF16 = 3 } cc_sq_kind;

typedef struct cc_sq {
    cc_sq_kind kind;
    int d;
    const float *vmin, *scale; /* SQ8: [d] each (trained); NULL otherwise */
} cc_sq;

/* Per-query state for the code kernels: d floats of factors (+ an offset for SQ8 IP). */
typedef struct cc_sq_query {
    const cc_sq *sq;
    int ip;          /* inner product (else squared L2) */
    float *a;        /* [d]: SQ8 IP q·scale, SQ8 L2 q - vmin, F16/BF16 the query itself */
    float offset;    /* SQ8 IP: Σ q·vmin */
} cc_sq_query;

const char *cc_sq_name(cc_sq_kind kind);            /* "SQ8", "F16", "BF16" */
size_t cc_sq_code_bytes(cc_sq_kind kind, int d);  /* bytes per vector */

/* SQ8 training: per-dimension min into vmin, (max - min) / 255 into scale (0 for constant dims). */
void cc_sq8_train(const float *x, int64_t n, int d, float *vmin, float *scale);
/* Encodes n rows of d floats into codes (cc_sq_code_bytes each, contiguous). */
void cc_sq_encode(const cc_sq *sq, const float *x, int64_t n, uint8_t *codes);
void cc_sq_decode(const cc_sq *sq, const uint8_t *code, float *out);

/* a must hold d floats. */
void cc_sq_query_prepare(cc_sq_query *qs, const cc_sq *sq, const float *q, int ip, float *a);
/* Inner product or squared L2 between the prepared query and n code rows (row stride = code
 * bytes), with the given ISA level's kernels (levels the CPU lacks fall back to lower ones). */
void cc_sq_rows(const cc_sq_query *qs, const uint8_t *codes, size_t n, float *out, cc_isa isa);

#endif
