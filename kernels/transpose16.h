/* transpose16.h — in-register transpose of a 16×16 block of 32-bit lanes (floats, or bf16 pairs and
 * int8 quads cast to __m512), shared by the AVX-512 GEMM back ends' packing routines. */
#ifndef CLIPC_TRANSPOSE16_H
#define CLIPC_TRANSPOSE16_H

#include <immintrin.h>

/* In-register transpose of a 16×16 block: on return r[j] holds what was column j. */
static inline __attribute__((target("avx512f"), always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    #pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    #pragma GCC unroll 16
    for (int i = 0; i < 4; i++) {
        __m512d t0 = _mm512_castps_pd(t[4 * i]), t1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d t2 = _mm512_castps_pd(t[4 * i + 2]), t3 = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    /* now r[4i+j] lane L = rows 4i..4i+3 of column 4L+j */
    #pragma GCC unroll 16
    for (int j = 0; j < 4; j++) {
        u[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        u[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        u[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        u[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    #pragma GCC unroll 16
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(u[j], u[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(u[j], u[8 + j], 0xdd);
        r[4 + j] = _mm512_shuffle_f32x4(u[4 + j], u[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(u[4 + j], u[12 + j], 0xdd);
    }
}

#endif
