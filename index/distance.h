/* distance.h — per-vector distance kernels for the indexes: inner product and squared L2 between
 * float vectors, one pair at a time, four rows at a time (more loads in flight for graph search),
 * and one query against many contiguous rows (the Flat scan). Batched query×database distances go
 * through cc_sgemm instead (kernels/gemm.h).
 *
 * Each kernel exists as AVX-512, AVX2+FMA and portable C; cc_dist() picks the best the CPU runs
 * (runtime detection, once). CLIPC_INDEX_ISA=scalar|avx2|avx512 in the environment forces a lower
 * level, for tests and benchmarks. Any dimension works (tails use masked or scalar loads).
 */
#ifndef CLIPC_INDEX_DISTANCE_H
#define CLIPC_INDEX_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CC_ISA_SCALAR = 0, CC_ISA_AVX2 = 1, CC_ISA_AVX512 = 2 } cc_isa;

typedef struct cc_dist_kernels {
    cc_isa isa;
    const char *name; /* "avx512", "avx2", "scalar" */
    float (*ip)(const float *a, const float *b, size_t d);
    float (*l2sq)(const float *a, const float *b, size_t d);
    /* out[i] = distance between q and x_i, for four rows that need not be contiguous */
    void (*ip4)(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                size_t d, float out[4]);
    void (*l2sq4)(const float *q, const float *x0, const float *x1, const float *x2, const float *x3,
                  size_t d, float out[4]);
    /* out[i] = distance between q and row i of x (n rows, row stride d) */
    void (*ip_rows)(const float *q, const float *x, size_t n, size_t d, float *out);
    void (*l2sq_rows)(const float *q, const float *x, size_t n, size_t d, float *out);
} cc_dist_kernels;

/* The kernels for this CPU (cached after the first call; thread-safe). */
const cc_dist_kernels *cc_dist(void);
/* Kernels of one ISA level, or NULL when the CPU cannot run them (tests compare levels). */
const cc_dist_kernels *cc_dist_for(cc_isa isa);
/* Highest ISA level the CPU supports, capped by CLIPC_INDEX_ISA. */
cc_isa cc_cpu_isa(void);
/* True when the CPU has AVX-512 VBMI + BW (the 8-bit PQ fast scan), and the level allows it. */
int cc_cpu_has_vbmi(void);

/* Around a parallel region whose threads each call cc_sgemm on their own block: OpenBLAS (the
 * GEMM fallback) must then not start its own thread pool inside ours, which on few cores costs more
 * than it gains (both pools spin). clipc's own GEMM stays single-threaded inside a parallel region
 * by itself; these calls make OpenBLAS do the same. */
void cc_gemm_per_thread_begin(void);
void cc_gemm_per_thread_end(void);

/* Feeds vals[j] (id id0 + j, j < n) into a top-k heap (index/topk.h): the values are compared
 * with the heap threshold 16 at a time and only those above it are pushed. */
struct cc_topk;
void cc_topk_push_row(struct cc_topk *heap, const float *vals, int64_t n, int64_t id0);

/* Squared norms of n rows (row stride d). */
void cc_norms_sq(const float *x, size_t n, size_t d, float *out);

#endif
