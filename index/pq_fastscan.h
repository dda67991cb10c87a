/* pq_fastscan.h — 4-bit "fast-scan" product quantiser (faiss's PQ<M>x4fs idea, clipc's own
 * layout): training, encoding, packing, quantised tables and the block kernels. The index type
 * on top (PQ<M>x4fs, IVF<nlist>,PQ<M>x4fs with residual codes, ",RFlat") is index/fastscan.c.
 *
 * Codes: M sub-quantisers of 16 centroids each (4 bits per sub-quantiser, M/2 bytes per vector;
 * M even, d divisible by M). Trained with the project's k-means (index/kmeans.c).
 *
 * Packed layout — blocks of 32 vectors, M * 16 bytes per block. Inside a block, sub-quantisers
 * go in pairs (2p, 2p+1); pair p owns the 32 bytes at block + 32 p:
 *     byte      i (i < 16): low nibble = code of vector i      for sub-quantiser 2p,
 *                           high nibble = code of vector i + 16 for sub-quantiser 2p
 *     byte 16 + i          : the same for sub-quantiser 2p + 1
 * The look-up table of a query is [M][16] bytes, so the 32 table bytes of pair p (at lut + 32 p)
 * line up with the 32 code bytes of pair p: one ymm register holds both tables, one vpshufb on
 * the low nibbles looks up vectors 0..15, one on the high nibbles vectors 16..31 (each 128-bit
 * lane is one sub-quantiser). AVX-512 does two pairs per zmm (vpshufb on zmm, AVX512BW: the
 * 16-entry table of a sub-quantiser fits one lane, so vpermb is not needed). The looked-up bytes
 * are summed in u16 lanes (even and odd vectors apart), which is exact for M <= 256.
 *
 * Quantised tables: the float table t[m][j] (a similarity to maximise: <q_m, c_mj> for inner
 * product, -||q_m - c_mj||^2 for L2) becomes lut[m][j] = round((t[m][j] - min_j t[m][j]) / scale)
 * with one scale for all m (the largest range / 255). Then
 *     sim ~= base + scale * sum_m lut[m][code_m],   base = sum_m min_j t[m][j],
 * and |sim - (base + scale * sum)| <= M * scale / 2 (plus float rounding): the bound tests check.
 *
 * Search keeps the k (or k * rerank with RFlat) best estimates in a heap (index/topk.h); the SIMD
 * kernel compares the 32 sums of a block with the heap threshold, so most blocks push nothing.
 * RFlat keeps the float vectors and re-scores the candidates exactly.
 */
#ifndef CLIPC_INDEX_PQ_FASTSCAN_H
#define CLIPC_INDEX_PQ_FASTSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "index/distance.h"
#include "index/index.h"

#define CC_PQ4_KSUB 16   /* centroids per sub-quantiser (4-bit codes) */
#define CC_PQ4_BLOCK 32  /* vectors per packed block */
#define CC_PQ4_MAX_M 256 /* u16 sums of M bytes <= 255 stay exact up to M = 257 */

/* ------------------------------------------------------------------ quantiser and kernels */

typedef struct cc_pq4 {
    int d, M, dsub;
    float *books; /* [M][16][dsub], owned (64-byte aligned) */
} cc_pq4;

/* Checks M (even, 2..256, divides d) and allocates the books. */
int cc_pq4_init(cc_pq4 *pq, int d, int M);
void cc_pq4_release(cc_pq4 *pq);
/* k-means per sub-space on (a sample of at most 32768 of) n vectors. */
int cc_pq4_train(cc_pq4 *pq, const float *x, int64_t n, uint64_t seed);
/* codes: n rows of M bytes, each the nearest centroid (0..15) of its sub-space; threads over rows. */
void cc_pq4_encode(const cc_pq4 *pq, const float *x, int64_t n, uint8_t *codes);
void cc_pq4_decode(const cc_pq4 *pq, const uint8_t *code, float *out);

/* Bytes of the packed codes of n vectors (whole blocks). */
static inline size_t cc_pq4_packed_bytes(int64_t n, int M) {
    return (size_t)((n + CC_PQ4_BLOCK - 1) / CC_PQ4_BLOCK) * (size_t)M * 16;
}
/* Writes / reads the M codes of vector i of a packed array (the nibbles of other vectors stay). */
void cc_pq4_pack_code(uint8_t *packed, int64_t i, int M, const uint8_t *code);
void cc_pq4_unpack_code(const uint8_t *packed, int64_t i, int M, uint8_t *code);

/* table[m][j]: similarity of q's sub-vector m to centroid j (see the top of the file). */
void cc_pq4_table(const cc_pq4 *pq, const float *q, cc_metric metric, float *table);
/* lut [M][16] bytes, *base and *scale as at the top of the file. */
void cc_pq4_quantize_table(const float *table, int M, uint8_t *lut, float *base, float *scale);

/* One block: sums[i] = sum_m lut[m][code of vector i] for the 32 vectors; returns the mask of
 * vectors with sums[i] > threshold (threshold < 0: all 32). The padding vectors of a last,
 * partial block have code 0 everywhere and must be masked off by the caller. */
typedef uint32_t (*cc_pq4_block_fn)(const uint8_t *block, int M, const uint8_t *lut, int32_t threshold,
                                    uint16_t *sums);
/* The kernel of one ISA level (scalar, AVX2 vpshufb, AVX-512BW vpshufb on zmm), or NULL when this
 * CPU cannot run it; cc_pq4_block_kernel() is the best level cc_cpu_isa() allows. */
cc_pq4_block_fn cc_pq4_block_kernel_for(cc_isa isa);
cc_pq4_block_fn cc_pq4_block_kernel(void);

#endif
