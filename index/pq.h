/* pq.h — product quantiser (M sub-quantisers of 256 centroids each, 8-bit codes): training,
 * encoding, decoding, asymmetric distance tables, and the code scanners used by IVF-PQ / PQ.
 *
 * Code storage (see ivf.c): a list of n codes is kept in blocks of 64 codes, "transposed": for
 * block b and sub-quantiser m, the 64 codes' bytes are contiguous (stride 64 between
 * sub-quantisers); the last, partial block of r codes uses stride r. One code therefore reads as
 * bytes codes[m * stride] for m = 0..M-1.
 *
 * Fast scan (AVX-512 VBMI): the float table of a query is quantised to 8 bits per entry (common
 * scale, per-sub-quantiser offset); a 256-entry byte table is 4 zmm registers, looked up for 64
 * codes at once with two vpermi2b and a blend, and summed in 16-bit lanes. The 16-bit sum bounds
 * the exact similarity within M * scale / 2, so only codes whose bound can beat the current k-th
 * best are re-scored with the float table: results are exactly those of the float scan.
 */
#ifndef CLIPC_INDEX_PQ_H
#define CLIPC_INDEX_PQ_H

#include <stddef.h>
#include <stdint.h>

#define CC_PQ_KSUB 256   /* centroids per sub-quantiser (8-bit codes) */
#define CC_PQ_BLOCK 64   /* codes per transposed block */

typedef struct cc_pq {
    int d, M, dsub;
    const float *books;  /* [M][256][dsub] */
    float *books_t;      /* [M][dsub][256], derived */
    float *code_norms;   /* [M][256] squared norms of the centroids, derived */
} cc_pq;

/* Derived tables from pq->books. */
int cc_pq_prepare(cc_pq *pq);
void cc_pq_release(cc_pq *pq);

/* Trains books_out ([M][256][dsub]) on n vectors (k-means per sub-space, at most 65536 points);
 * a progress line over the sub-quantisers when show_progress. */
int cc_pq_train(int d, int M, const float *x, int64_t n, uint64_t seed, float *books_out, int show_progress);

/* table[m][j] = <q_m, c_mj> */
void cc_pq_ip_table(const cc_pq *pq, const float *q, float *table);
/* The same for nq <= 4 queries at once: each codebook line is read once for all of them. */
void cc_pq_ip_tables(const cc_pq *pq, int nq, const float *const *q, float *const *tables);
/* codes: n rows of M bytes (row-major), nearest centroid per sub-space; threads over rows. */
void cc_pq_encode(const cc_pq *pq, const float *x, int64_t n, uint8_t *codes);
/* code given as bytes code[m * stride] */
void cc_pq_decode(const cc_pq *pq, const uint8_t *code, size_t stride, float *out);

/* Sum of table[m][code byte m]. */
float cc_pq_code_sim(const uint8_t *code, size_t stride, int M, const float *table);

/* 8-bit table for the fast scan: qtable[m][j] = round((table[m][j] - min_m) / scale);
 * similarity ~= *offset + scale * sum, with |error| <= M * scale / 2 (+ float rounding). */
void cc_pq_quantize_table(const float *table, int M, uint8_t *qtable, float *offset, float *scale);
/* Bit i set when the 16-bit table sum of code i of the block (count <= 64 codes, bytes of
 * sub-quantiser m at block + m * stride) exceeds threshold. Needs cc_cpu_has_vbmi(); M <= 256. */
uint64_t cc_pq_scan_block_mask(const uint8_t *block, size_t stride, int M, int count, const uint8_t *qtable,
                               uint16_t threshold);
/* The same 16-bit sums in portable C (the reference in tests). */
void cc_pq_block_sums(const uint8_t *block, size_t stride, int M, int count, const uint8_t *qtable, uint16_t *sums);

#endif
