/* gemm_tiles.h — the micro-kernel dispatch the AVX-512 back ends share (float, bf16, int8): a
 * 14-row register tile specialised for every row count 1..14 and three column cases (all 32
 * columns; 17..31, masked; 1..16, one vector), so that after inlining every loop bound is a
 * constant and the accumulators stay in registers.
 *
 * A back end defines `tile(rows, nv, full, ARGS...)` (always inlined), then
 *   CC_GEMM_TILES(TARGET, (PARAMS), (ARGS))   the 42 specialisations and three tables of them,
 * and its micro-kernel calls CC_GEMM_TILE(m, n)(ARGS...). PARAMS and ARGS are the parameter list
 * and argument list after `rows, nv, full` (the first of them must be `int n`). */
#ifndef CLIPC_GEMM_TILES_H
#define CLIPC_GEMM_TILES_H

#include <immintrin.h>

#define CC_GEMM_TILE_ROWS 14
#define CC_GEMM_TILE_UNPAREN(...) __VA_ARGS__

#define CC_GEMM_TILE_DEF(TARGET, KIND, R, NV, FULL, PARAMS, ARGS) \
    static TARGET void tile_##KIND##_##R PARAMS { tile(R, NV, FULL, CC_GEMM_TILE_UNPAREN ARGS); }
#define CC_GEMM_TILE_DEFS(TARGET, R, PARAMS, ARGS)                                           \
    CC_GEMM_TILE_DEF(TARGET, full, R, 2, 1, PARAMS, ARGS)                                    \
    CC_GEMM_TILE_DEF(TARGET, edge2, R, 2, 0, PARAMS, ARGS)                                   \
    CC_GEMM_TILE_DEF(TARGET, edge1, R, 1, 0, PARAMS, ARGS)
#define CC_GEMM_TILE_TABLE(kind)                                                                              \
    {NULL,            tile_##kind##_1,  tile_##kind##_2,  tile_##kind##_3,  tile_##kind##_4,  tile_##kind##_5, \
     tile_##kind##_6, tile_##kind##_7,  tile_##kind##_8,  tile_##kind##_9,  tile_##kind##_10, tile_##kind##_11, \
     tile_##kind##_12, tile_##kind##_13, tile_##kind##_14}

#define CC_GEMM_TILES(TARGET, PARAMS, ARGS)                                                                      \
    CC_GEMM_TILE_DEFS(TARGET, 1, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 2, PARAMS, ARGS)                        \
    CC_GEMM_TILE_DEFS(TARGET, 3, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 4, PARAMS, ARGS)                        \
    CC_GEMM_TILE_DEFS(TARGET, 5, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 6, PARAMS, ARGS)                        \
    CC_GEMM_TILE_DEFS(TARGET, 7, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 8, PARAMS, ARGS)                        \
    CC_GEMM_TILE_DEFS(TARGET, 9, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 10, PARAMS, ARGS)                       \
    CC_GEMM_TILE_DEFS(TARGET, 11, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 12, PARAMS, ARGS)                      \
    CC_GEMM_TILE_DEFS(TARGET, 13, PARAMS, ARGS) CC_GEMM_TILE_DEFS(TARGET, 14, PARAMS, ARGS)                      \
    typedef void(*tile_fn) PARAMS;                                                                               \
    static const tile_fn tiles_full[CC_GEMM_TILE_ROWS + 1] = CC_GEMM_TILE_TABLE(full);                          \
    static const tile_fn tiles_edge2[CC_GEMM_TILE_ROWS + 1] = CC_GEMM_TILE_TABLE(edge2);                        \
    static const tile_fn tiles_edge1[CC_GEMM_TILE_ROWS + 1] = CC_GEMM_TILE_TABLE(edge1);

/* The end of every tile: row r's nv accumulator vectors (floats), times alpha, plus beta * C
 * (beta == 0 never reads C), stored with the column masks (full: no masks). */
static inline __attribute__((target("avx512f"), always_inline)) void cc_gemm_tile_store(
    const __m512 *acc, int nv, int full, __mmask16 mask0, __mmask16 mask1, float *crow, float alpha, float beta) {
    for (int v = 0; v < nv; v++) {
        __mmask16 mask = v == 0 ? mask0 : mask1;
        __m512 out = _mm512_mul_ps(acc[v], _mm512_set1_ps(alpha));
        if (beta != 0.0f) {
            __m512 old = full ? _mm512_loadu_ps(crow + 16 * v) : _mm512_maskz_loadu_ps(mask, crow + 16 * v);
            out = _mm512_fmadd_ps(old, _mm512_set1_ps(beta), out);
        }
        if (full) _mm512_storeu_ps(crow + 16 * v, out);
        else _mm512_mask_storeu_ps(crow + 16 * v, mask, out);
    }
}

/* The specialisation for m rows and n columns (of 32). */
#define CC_GEMM_TILE(m, n) ((n) == 32 ? tiles_full : (n) > 16 ? tiles_edge2 : tiles_edge1)[m]

#endif
