/* resample.h — internal to data/: Pillow's resampling coefficients and the two 8-bit passes of its
 * antialiased resize, in a readable scalar version (preprocess.c) and a SIMD version with identical
 * results (resample_simd.c, chosen at run time). */
#ifndef CLIPC_RESAMPLE_H
#define CLIPC_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Pillow's fixed point: 32 bits - 8 for the value - 2 for the overshoot of the negative lobes. */
#define CC_RESAMPLE_PRECISION_BITS (32 - 8 - 2)

/* Filter taps of the output positions [first, first + count) of a 1-D resize in_size -> out_size. */
typedef struct cc_resample_coeffs {
    int first, count;
    int ksize;        /* Pillow's maximum number of taps */
    int kstride;      /* ksize rounded up to 8; weights past n_taps are 0 */
    int *start;       /* [count] first input position of each output */
    int *n_taps;      /* [count] number of taps (start + n_taps <= in_size) */
    double *weights;  /* [count][kstride] normalised weights (used as such by the 32-bit resize) */
    int32_t *fixed;   /* [count][kstride] the weights in 22-bit fixed point (the 8-bit resize) */
} cc_resample_coeffs;

int cc_resample_coeffs_init(cc_resample_coeffs *c, int in_size, int out_size, int first, int count);
void cc_resample_coeffs_free(cc_resample_coeffs *c);

/* Horizontal pass: n_rows rows of interleaved pixels (channels 1..4) -> c->count output pixels per row.
 * The rows hold input columns from x_offset on (input column x is at (x - x_offset) * channels). */
void cc_resample_horizontal(const uint8_t *src, size_t src_stride, int x_offset, int n_rows, int channels,
                            const cc_resample_coeffs *c, uint8_t *dst, size_t dst_stride);
void cc_resample_horizontal_scalar(const uint8_t *src, size_t src_stride, int x_offset, int n_rows, int channels,
                                   const cc_resample_coeffs *c, uint8_t *dst, size_t dst_stride);
/* Vertical pass: output row i reads rows start[i]..start[i]+n_taps[i]-1, where `src` holds rows from
 * first_row on; row_bytes = pixels per row * channels. */
void cc_resample_vertical(const uint8_t *src, size_t src_stride, int row_bytes, const cc_resample_coeffs *c,
                          int first_row, uint8_t *dst, size_t dst_stride);
void cc_resample_vertical_scalar(const uint8_t *src, size_t src_stride, int row_bytes, const cc_resample_coeffs *c,
                                 int first_row, uint8_t *dst, size_t dst_stride);

#endif
