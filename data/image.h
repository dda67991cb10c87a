/* image.h — decoding JPEG (libjpeg-turbo, TurboJPEG API) and PNG (libpng) into 8-bit RGB, exactly as
 * PIL's Image.open(...).convert("RGB") gives it, plus writers for RGB PNG/JPEG files.
 *
 * What "as PIL" means here (Pillow 9.4, the reference of the tests):
 *   - grayscale is replicated into R, G and B; palettes are expanded; 1/2/4-bit grayscale is scaled to
 *     0..255 (x255, x85, x17); alpha is dropped, never composited onto a background;
 *   - 16-bit RGB(A) and gray+alpha keep the high byte of each sample; 16-bit grayscale is PIL mode "I",
 *     whose conversion to RGB clips the value to 255 (PIL's behaviour, kept on purpose);
 *   - CMYK JPEGs (Adobe, inverted) are converted with PIL's formula;
 *   - the EXIF orientation tag is NOT applied (PIL does not apply it unless asked to), gamma and
 *     colour profiles are ignored.
 * Besides the RGB pixels, the struct keeps what the openai CLIP transform needs to resize the image the
 * way PIL resizes its original mode (alpha for LA/RGBA, the 16-bit values for "I", CMYK samples, and
 * whether PIL would resize it with nearest neighbour): see data/preprocess.h.
 *
 * Images are refused above CC_IMAGE_MAX_PIXELS (decompression bombs). All functions are thread-safe.
 */
#ifndef CLIPC_IMAGE_H
#define CLIPC_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* 100 megapixels: larger than any camera photo in common use, and its RGB buffer (300 MB) still fits
 * comfortably; anything larger is refused as a likely decompression bomb. */
#define CC_IMAGE_MAX_PIXELS 100000000LL

/* The PIL mode the file opens as; it decides how the openai transform resizes (preprocess.h). */
typedef enum {
    CC_IMAGE_RGB = 0, /* JPEG YCbCr/RGB, PNG RGB (8 or 16 bit) */
    CC_IMAGE_L,       /* 8-bit gray (JPEG gray, PNG gray 2/4/8 bit) */
    CC_IMAGE_1,       /* PNG 1-bit gray: PIL mode "1", resized with nearest neighbour */
    CC_IMAGE_P,       /* PNG palette: PIL mode "P", resized with nearest neighbour */
    CC_IMAGE_LA,      /* PNG 8-bit gray + alpha */
    CC_IMAGE_RGBA,    /* PNG RGBA, and 16-bit gray + alpha (which PIL opens as RGBA) */
    CC_IMAGE_I,       /* PNG 16-bit gray: PIL mode "I" */
    CC_IMAGE_CMYK,    /* CMYK / YCCK JPEG */
} cc_image_mode;

typedef struct cc_image {
    int width, height;
    uint8_t *rgb;       /* width*height*3 bytes, rows top to bottom: what convert("RGB") gives */
    uint8_t *alpha;     /* width*height, for modes LA and RGBA; NULL otherwise */
    uint16_t *gray16;   /* width*height, the original samples of mode I; NULL otherwise */
    uint8_t *cmyk;      /* width*height*4, the CMYK samples (not inverted) of mode CMYK; NULL otherwise */
    cc_image_mode mode;
    int scale_denom;    /* 1, or the JPEG DCT scaling used by fast decoding (size is then reduced) */
} cc_image;

typedef struct cc_image_options {
    /* > 0: fast decoding. A JPEG much larger than this is decoded with libjpeg-turbo's DCT scaling
     * (1/2, 1/4 or 1/8), keeping the shorter side >= this value. Not exact to PIL (docs/DATA.md). */
    int fast_min_side;
    int64_t max_pixels; /* 0 = CC_IMAGE_MAX_PIXELS */
    int rgb_only;       /* 1: skip the alpha / gray16 / cmyk planes (the openai transform then falls
                         * back to resizing the RGB pixels, as the Hugging Face processor does) */
} cc_image_options;

/* Loads a JPEG or PNG file (format from its signature, not its name). Errors name the file. */
int cc_image_load(const char *path, cc_image *out);
int cc_image_load_ex(const char *path, const cc_image_options *options, cc_image *out);
/* Decodes an in-memory file; `name` is used in error messages (e.g. "upload"). */
int cc_image_decode(const void *data, size_t size, const char *name, cc_image *out);
int cc_image_decode_ex(const void *data, size_t size, const char *name, const cc_image_options *options,
                       cc_image *out);
void cc_image_free(cc_image *img);

/* Reads width and height from the header only. */
int cc_image_probe(const void *data, size_t size, const char *name, int *width, int *height);

/* Writers for 8-bit RGB (channels = 3) or gray (channels = 1) pixels; atomic (temp file + rename). */
int cc_image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels);
int cc_image_write_jpeg(const char *path, const uint8_t *pixels, int width, int height, int channels,
                        int quality);
/* Encodes into a malloc'd buffer. */
int cc_image_encode_png(const uint8_t *pixels, int width, int height, int channels, uint8_t **out,
                        size_t *out_size);
int cc_image_encode_jpeg(const uint8_t *pixels, int width, int height, int channels, int quality,
                         uint8_t **out, size_t *out_size);

const char *cc_image_mode_name(cc_image_mode mode);

#endif
