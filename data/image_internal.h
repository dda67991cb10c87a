/* image_internal.h — internal to data/: the helpers every format decoder shares (size and memory
 * limits, allocation of a cc_image), the per-format decoders behind cc_image_decode_ex, and decoding
 * only a region of a JPEG, for the preprocessing of files, which needs just the rows and columns that
 * the resize of the center crop reads. */
#ifndef CLIPC_IMAGE_INTERNAL_H
#define CLIPC_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"

/* Refuses a zero or too large width x height (the pixel cap of options, or CC_IMAGE_MAX_PIXELS). */
int cc_image_check_dimensions(const char *name, const char *format, long long width, long long height,
                              const cc_image_options *options);
/* Refuses a decode that would hold more than the decoded-bytes cap at once: the planes of a
 * width x height image of `mode` plus `scratch_bytes` of decoder buffers. */
int cc_image_check_budget(const char *name, const char *format, int width, int height, cc_image_mode mode,
                          size_t scratch_bytes, const cc_image_options *options);
/* Allocates the RGB plane (and the extra planes of the mode unless options->rgb_only). */
int cc_image_alloc(cc_image *img, int width, int height, cc_image_mode mode, const cc_image_options *options,
                   const char *name);
/* PIL's CMYK -> RGB on non-inverted CMYK samples (4 bytes per pixel in, 3 out). */
void cc_image_cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t n_pixels);
/* Bytes of the planes cc_image_alloc would allocate. */
size_t cc_image_plane_bytes(int width, int height, cc_image_mode mode, const cc_image_options *options);

/* The format decoders (data/image_*.c): the signature has been checked, size > 0, out is zeroed. */
int cc_decode_webp(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                   cc_image *out);
int cc_decode_gif(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                  cc_image *out);
int cc_decode_bmp(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                  cc_image *out);
int cc_decode_tiff(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                   cc_image *out);
/* Header-only sizes, for cc_image_probe. */
int cc_probe_webp(const uint8_t *data, size_t size, const char *name, int *width, int *height);
int cc_probe_gif(const uint8_t *data, size_t size, const char *name, int *width, int *height);
int cc_probe_bmp(const uint8_t *data, size_t size, const char *name, int *width, int *height);
int cc_probe_tiff(const uint8_t *data, size_t size, const char *name, int *width, int *height);

/* RGB pixels of columns [x0, x0 + width) and rows [y0, y0 + height) of a full_width x full_height image. */
typedef struct cc_image_region {
    uint8_t *rgb;     /* height rows of width * 3 bytes */
    int x0, y0, width, height;
    int full_width, full_height;
} cc_image_region;

/* Header only: the size, and whether the JPEG is a colour space the region decoder handles (RGB or
 * gray output; not CMYK). Returns 1 (a JPEG it can decode by region), 0 (not one), -1 (error). */
int cc_jpeg_region_probe(const void *data, size_t size, const char *name, int *width, int *height);
/* Decodes at least columns [x0, x1) and exactly rows [y0, y1) with libjpeg-turbo's cropped and skipped
 * scanlines; the bytes equal those of a full decode (a margin keeps the fancy-upsampling edges out of
 * the requested columns). The rest of the file is still read, so a truncated file is an error as in a
 * full decode. Returns 0 or -1. */
int cc_jpeg_decode_region(const void *data, size_t size, const char *name, int x0, int x1, int y0, int y1,
                          cc_image_region *out);

#endif
