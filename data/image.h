/* image.h — decoding JPEG (libjpeg-turbo, TurboJPEG API), PNG (libpng), WebP (libwebp, first frame of
 * an animation), GIF (giflib, first frame), BMP (own parser) and TIFF (libtiff, first page) into 8-bit
 * RGB, exactly as PIL's Image.open(...).convert("RGB") gives it, plus writers for RGB PNG/JPEG files.
 * The format comes from the file's first bytes, never from its name.
 *
 * What "as PIL" means here (Pillow 9.4, the reference of the tests):
 *   - grayscale is replicated into R, G and B; palettes are expanded; 1/2/4-bit grayscale is scaled to
 *     0..255 (x255, x85, x17); alpha is dropped, never composited onto a background;
 *   - 16-bit RGB(A) and gray+alpha keep the high byte of each sample; 16-bit grayscale is PIL mode "I",
 *     whose conversion to RGB clips the value to 255 (PIL's behaviour, kept on purpose);
 *   - CMYK JPEGs (Adobe, inverted) are converted with PIL's formula;
 *   - WebP opens as RGBA when the file says it has alpha, else RGB (frame 1 on a transparent canvas);
 *   - GIF frame 1 opens as P (its palette, the canvas outside the frame filled with index 0, or with the
 *     transparent index when there is one), or L when the palette is the identity gray ramp;
 *   - BMP 1/4/8-bit opens as P, or as "1" / L when the palette is black-white / the gray ramp; 16-bit
 *     as RGB (5 bits scaled by 255/31), 24/32-bit as RGB (the 4th byte ignored), 32-bit bitfields with
 *     an alpha mask as RGBA; palette indices past the palette read as the gray ramp, as in PIL;
 *   - TIFF: see data/image_tiff.c for the modes read;
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
/* At most this many bytes held at once by one decode (planes of the result + the decoder's own
 * buffers, e.g. WebP's RGBA canvas): a 100-megapixel RGBA WebP needs 800 MB. */
#define CC_IMAGE_MAX_DECODED_BYTES (1024LL * 1024 * 1024)

/* The PIL mode the file opens as; it decides how the openai transform resizes (preprocess.h). */
typedef enum {
    CC_IMAGE_RGB = 0, /* JPEG YCbCr/RGB, PNG RGB (8 or 16 bit), WebP without alpha, BMP 16/24/32-bit */
    CC_IMAGE_L,       /* 8-bit gray (JPEG gray, PNG gray 2/4/8 bit, GIF / BMP with a gray-ramp palette) */
    CC_IMAGE_1,       /* PNG 1-bit gray, BMP black-white: PIL mode "1", resized with nearest neighbour */
    CC_IMAGE_P,       /* PNG / GIF / BMP palette: PIL mode "P", resized with nearest neighbour */
    CC_IMAGE_LA,      /* PNG 8-bit gray + alpha */
    CC_IMAGE_RGBA,    /* PNG RGBA, and 16-bit gray + alpha (which PIL opens as RGBA); WebP with alpha;
                       * BMP 32-bit bitfields with alpha */
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
    int64_t max_decoded_bytes; /* 0 = CC_IMAGE_MAX_DECODED_BYTES */
} cc_image_options;

/* Loads an image file of any format above (format from its signature, not its name). Errors name the
 * file. cc_image_decode_ex is the one entry point for "decode any format from memory". */
int cc_image_load(const char *path, cc_image *out);
int cc_image_load_ex(const char *path, const cc_image_options *options, cc_image *out);
/* Decodes an in-memory file; `name` is used in error messages (e.g. "upload"). */
int cc_image_decode(const void *data, size_t size, const char *name, cc_image *out);
int cc_image_decode_ex(const void *data, size_t size, const char *name, const cc_image_options *options,
                       cc_image *out);
void cc_image_free(cc_image *img);

/* "jpeg", "png", "webp", "gif", "bmp" or "tiff" from the first bytes; NULL when none matches. */
const char *cc_image_format(const void *data, size_t size);

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
