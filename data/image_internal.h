/* image_internal.h — internal to data/: decoding only a region of a JPEG, for the preprocessing of
 * files, which needs just the rows and columns that the resize of the center crop reads. */
#ifndef CLIPC_IMAGE_INTERNAL_H
#define CLIPC_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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
