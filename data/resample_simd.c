/* resample_simd.c — AVX2 versions of the two passes of Pillow's 8-bit resize (see resample.h), chosen at
 * run time, with the scalar definitions in preprocess.c as the fallback and the reference.
 *
 * Both compute Pillow's exact 32-bit integer sums (integer addition does not depend on the order), so
 * the bytes are identical to the scalar code's — the resize_properties test holds them to it.
 *
 * Vertical pass: output row i = sum over taps t of input row (start + t) * k[t]; along a row the bytes
 *   are independent, so 16 bytes at a time are widened to int32 and multiplied by the broadcast weight.
 * Horizontal pass (3 channels, the RGB case): input rows, two at a time, are first split into int16
 *   planes; an output pixel is then three dot products of 16 (or 8) taps at a time with vpmaddwd. The 22-bit
 *   weights do not fit int16, so each is split k = kh * 4096 + kl (kl in 0..4095) and
 *   sum(p * k) = (sum(p * kh) << 12) + sum(p * kl), exact in int32 (mod 2^32, like Pillow's int sum).
 *   Other channel counts use the scalar pass.
 */
#include "data/resample.h"

#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define SPLIT_BITS 12 /* k = kh << SPLIT_BITS | kl */

#if HAVE_X86

static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2"); }

__attribute__((target("avx2"))) static void vertical_avx2(const uint8_t *src, size_t src_stride, int row_bytes,
                                                          const cc_resample_coeffs *c, int first_row, uint8_t *dst,
                                                          size_t dst_stride) {
    const __m256i round = _mm256_set1_epi32(1 << (CC_RESAMPLE_PRECISION_BITS - 1));
    for (int i = 0; i < c->count; i++) {
        const int32_t *k = c->fixed + (size_t)i * c->kstride;
        const uint8_t *in = src + (size_t)(c->start[i] - first_row) * src_stride;
        uint8_t *out = dst + (size_t)i * dst_stride;
        int n_taps = c->n_taps[i], x = 0;
        for (; x + 32 <= row_bytes; x += 32) {
            __m256i a0 = round, a1 = round, a2 = round, a3 = round;
            for (int t = 0; t < n_taps; t++) {
                const uint8_t *row = in + (size_t)t * src_stride + x;
                __m256i w = _mm256_set1_epi32(k[t]);
                __m128i lo = _mm_loadu_si128((const __m128i *)row), hi = _mm_loadu_si128((const __m128i *)(row + 16));
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(lo), w));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), w));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(hi), w));
                a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), w));
            }
            a0 = _mm256_srai_epi32(a0, CC_RESAMPLE_PRECISION_BITS);
            a1 = _mm256_srai_epi32(a1, CC_RESAMPLE_PRECISION_BITS);
            a2 = _mm256_srai_epi32(a2, CC_RESAMPLE_PRECISION_BITS);
            a3 = _mm256_srai_epi32(a3, CC_RESAMPLE_PRECISION_BITS);
            /* saturating packs clamp to 0..255 exactly like clip8; undo the in-lane interleave */
            __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a0, a1), 0xd8);
            __m256i words2 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a2, a3), 0xd8);
            __m256i bytes = _mm256_permute4x64_epi64(_mm256_packus_epi16(words, words2), 0xd8);
            _mm256_storeu_si256((__m256i *)(out + x), bytes);
        }
        for (; x < row_bytes; x++) {
            int32_t sum = 1 << (CC_RESAMPLE_PRECISION_BITS - 1);
            for (int t = 0; t < n_taps; t++) sum += (int32_t)in[(size_t)t * src_stride + x] * k[t];
            int32_t v = sum >> CC_RESAMPLE_PRECISION_BITS;
            out[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

/* Splits interleaved RGB pixels [0, n) into three int16 planes. */
__attribute__((target("avx2"))) static void split_rgb_avx2(const uint8_t *in, int n, int16_t *r, int16_t *g, int16_t *b) {
    /* byte positions of each channel within 48 bytes (16 pixels) seen as three 16-byte loads */
    static const int8_t masks[3][3][16] = {
        {{0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13}},
        {{1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14}},
        {{2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1},
         {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15}},
    };
    int16_t *planes[3] = {r, g, b};
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        const uint8_t *p = in + 3 * x;
        __m128i a = _mm_loadu_si128((const __m128i *)p), m = _mm_loadu_si128((const __m128i *)(p + 16)),
                z = _mm_loadu_si128((const __m128i *)(p + 32));
        for (int ch = 0; ch < 3; ch++) {
            __m128i v = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, _mm_loadu_si128((const __m128i *)masks[ch][0])),
                                                  _mm_shuffle_epi8(m, _mm_loadu_si128((const __m128i *)masks[ch][1]))),
                                     _mm_shuffle_epi8(z, _mm_loadu_si128((const __m128i *)masks[ch][2])));
            _mm256_storeu_si256((__m256i *)(planes[ch] + x), _mm256_cvtepu8_epi16(v));
        }
    }
    for (; x < n; x++) {
        r[x] = in[3 * x];
        g[x] = in[3 * x + 1];
        b[x] = in[3 * x + 2];
    }
}

/* sum over taps of plane[t] * (kh[t] << 12 | kl[t]) in 8 int32 lanes: n_blocks blocks of 16 taps, then
 * `half` = 1 for a last block of 8 taps (128-bit) */
__attribute__((target("avx2"))) static inline __m256i dot_taps(const int16_t *plane, const int16_t *kh, const int16_t *kl,
                                                             int n_blocks, int half) {
    __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    for (int b = 0; b < n_blocks; b++) {
        __m256i p = _mm256_loadu_si256((const __m256i *)(plane + 16 * b));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(p, _mm256_load_si256((const __m256i *)(kh + 16 * b))));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(p, _mm256_load_si256((const __m256i *)(kl + 16 * b))));
    }
    if (half) {
        __m128i p = _mm_loadu_si128((const __m128i *)(plane + 16 * n_blocks));
        __m128i h = _mm_madd_epi16(p, _mm_load_si128((const __m128i *)(kh + 16 * n_blocks)));
        __m128i l = _mm_madd_epi16(p, _mm_load_si128((const __m128i *)(kl + 16 * n_blocks)));
        hi = _mm256_add_epi32(hi, _mm256_inserti128_si256(_mm256_setzero_si256(), h, 0));
        lo = _mm256_add_epi32(lo, _mm256_inserti128_si256(_mm256_setzero_si256(), l, 0));
    }
    return _mm256_add_epi32(_mm256_slli_epi32(hi, SPLIT_BITS), lo);
}

/* Rounds, shifts and clamps lane sums to bytes (saturating packs clamp exactly like clip8). */
__attribute__((target("avx2"))) static inline __m128i sums_to_bytes(__m128i a, __m128i b) {
    const __m128i round = _mm_set1_epi32(1 << (CC_RESAMPLE_PRECISION_BITS - 1));
    a = _mm_srai_epi32(_mm_add_epi32(a, round), CC_RESAMPLE_PRECISION_BITS);
    b = _mm_srai_epi32(_mm_add_epi32(b, round), CC_RESAMPLE_PRECISION_BITS);
    __m128i words = _mm_packs_epi32(a, b);
    return _mm_packus_epi16(words, words);
}

/* Two rows at a time: the weights are loaded once for both, and the six dot products of an output
 * pixel pair share one reduction tree. */
__attribute__((target("avx2"))) static void horizontal_rgb_avx2(const uint8_t *src, size_t src_stride, int n_rows,
                                                                const cc_resample_coeffs *c, const int16_t *kh,
                                                                const int16_t *kl, int kstride16, int16_t *planes,
                                                                int x_first, int x_offset, int x_count, uint8_t *dst,
                                                                size_t dst_stride) {
    size_t plane_len = (size_t)x_count + (size_t)kstride16;
    int16_t *p[6];
    for (int k = 0; k < 6; k++) p[k] = planes + (size_t)k * plane_len;
    for (int y = 0; y < n_rows; y += 2) {
        int pair = y + 1 < n_rows;
        const uint8_t *row = src + (size_t)y * src_stride + (size_t)(x_first - x_offset) * 3;
        split_rgb_avx2(row, x_count, p[0], p[1], p[2]);
        if (pair) split_rgb_avx2(row + src_stride, x_count, p[3], p[4], p[5]);
        uint8_t *out0 = dst + (size_t)y * dst_stride, *out1 = out0 + dst_stride;
        for (int i = 0; i < c->count; i++) {
            int s = c->start[i] - x_first, n_taps = c->n_taps[i];
            int n_blocks = n_taps / 16, rest = n_taps % 16, half = rest > 0 && rest <= 8;
            if (rest > 8) n_blocks++;
            const int16_t *khi = kh + (size_t)i * kstride16, *kli = kl + (size_t)i * kstride16;
            __m256i r0 = dot_taps(p[0] + s, khi, kli, n_blocks, half), g0 = dot_taps(p[1] + s, khi, kli, n_blocks, half),
                    b0 = dot_taps(p[2] + s, khi, kli, n_blocks, half);
            if (!pair) {
                __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(r0, g0), _mm256_hadd_epi32(b0, b0));
                __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1)); /* R G B B */
                uint32_t rgbx = (uint32_t)_mm_cvtsi128_si32(sums_to_bytes(sums, sums));
                memcpy(out0 + 3 * i, &rgbx, 3);
                continue;
            }
            __m256i r1 = dot_taps(p[3] + s, khi, kli, n_blocks, half), g1 = dot_taps(p[4] + s, khi, kli, n_blocks, half),
                    b1 = dot_taps(p[5] + s, khi, kli, n_blocks, half);
            __m256i t1 = _mm256_hadd_epi32(_mm256_hadd_epi32(r0, g0), _mm256_hadd_epi32(b0, r1)); /* R0 G0 B0 R1 */
            __m256i t2 = _mm256_hadd_epi32(_mm256_hadd_epi32(g1, b1), _mm256_hadd_epi32(g1, b1)); /* G1 B1 G1 B1 */
            __m128i s1 = _mm_add_epi32(_mm256_castsi256_si128(t1), _mm256_extracti128_si256(t1, 1));
            __m128i s2 = _mm_add_epi32(_mm256_castsi256_si128(t2), _mm256_extracti128_si256(t2, 1));
            uint64_t bytes = (uint64_t)_mm_cvtsi128_si64(sums_to_bytes(s1, s2)); /* R0 G0 B0 R1 G1 B1 G1 B1 */
            memcpy(out0 + 3 * i, &bytes, 3);
            bytes >>= 24;
            memcpy(out1 + 3 * i, &bytes, 3);
        }
    }
}

#endif /* HAVE_X86 */

void cc_resample_vertical(const uint8_t *src, size_t src_stride, int row_bytes, const cc_resample_coeffs *c,
                          int first_row, uint8_t *dst, size_t dst_stride) {
#if HAVE_X86
    if (cpu_has_avx2()) {
        vertical_avx2(src, src_stride, row_bytes, c, first_row, dst, dst_stride);
        return;
    }
#endif
    cc_resample_vertical_scalar(src, src_stride, row_bytes, c, first_row, dst, dst_stride);
}

void cc_resample_horizontal(const uint8_t *src, size_t src_stride, int x_offset, int n_rows, int channels,
                            const cc_resample_coeffs *c, uint8_t *dst, size_t dst_stride) {
#if HAVE_X86
    if (channels == 3 && c->count > 0 && cpu_has_avx2()) {
        /* the input columns the outputs read, and the weights split into int16 halves, zero padded to
         * whole 16-tap blocks (so that a block may read past a row's last tap: its weight is 0) */
        int x_first = c->start[0], x_end = 0, max_taps = 1;
        for (int i = 0; i < c->count; i++) {
            if (c->start[i] < x_first) x_first = c->start[i];
            if (c->start[i] + c->n_taps[i] > x_end) x_end = c->start[i] + c->n_taps[i];
            if (c->n_taps[i] > max_taps) max_taps = c->n_taps[i];
        }
        int kstride16 = (max_taps + 15) & ~15, x_count = x_end - x_first;
        size_t n_weights = (size_t)c->count * kstride16, plane_len = (size_t)x_count + (size_t)kstride16;
        int16_t *kh = cc_malloc_aligned(n_weights * sizeof(int16_t) * 2, "resample weights");
        int16_t *planes = cc_calloc(6 * plane_len, sizeof(int16_t), "resample planes"); /* 2 rows x RGB */
        if (kh && planes) {
            int16_t *kl = kh + n_weights;
            memset(kh, 0, n_weights * sizeof(int16_t) * 2);
            for (int i = 0; i < c->count; i++)
                for (int t = 0; t < c->n_taps[i]; t++) {
                    int32_t k = c->fixed[(size_t)i * c->kstride + t];
                    kh[(size_t)i * kstride16 + t] = (int16_t)(k >> SPLIT_BITS); /* arithmetic shift: floor */
                    kl[(size_t)i * kstride16 + t] = (int16_t)(k & ((1 << SPLIT_BITS) - 1));
                }
            horizontal_rgb_avx2(src, src_stride, n_rows, c, kh, kl, kstride16, planes, x_first, x_offset, x_count, dst,
                                dst_stride);
            cc_free_aligned(kh);
            free(planes);
            return;
        }
        cc_free_aligned(kh);
        free(planes); /* out of memory: the scalar pass needs none */
    }
#endif
    cc_resample_horizontal_scalar(src, src_stride, x_offset, n_rows, channels, c, dst, dst_stride);
}
