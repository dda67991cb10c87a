/* image_webp.c — WebP (lossy, lossless, with or without alpha; the first frame of an animation) with
 * libwebp's animation decoder, the path PIL 9.4 takes for every WebP file (WebPAnimDecoder in MODE_RGBA,
 * the first frame composited onto a transparent canvas of the file's canvas size). PIL's mode is RGBA
 * when WebPGetFeatures reports alpha, else RGB (the canvas's 4th byte dropped). Same library, same
 * calls, so the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/demux.h>

#include "data/image_internal.h"
#include "engine/util.h"

static const char *status_text(VP8StatusCode status) {
    switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated (not enough data)";
    default: return "decoder error";
    }
}

static int read_features(const uint8_t *data, size_t size, const char *name, WebPBitstreamFeatures *features) {
    VP8StatusCode status = WebPGetFeatures(data, size, features);
    if (status != VP8_STATUS_OK) {
        cc_set_error("%s: corrupt WebP header: %s", name, status_text(status));
        return -1;
    }
    return 0;
}

int cc_probe_webp(const uint8_t *data, size_t size, const char *name, int *width, int *height) {
    WebPBitstreamFeatures features;
    if (read_features(data, size, name, &features) != 0) return -1;
    *width = features.width;
    *height = features.height;
    return cc_image_check_dimensions(name, "WebP", features.width, features.height, NULL);
}

int cc_decode_webp(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                   cc_image *out) {
    WebPBitstreamFeatures features;
    if (read_features(data, size, name, &features) != 0) return -1;
    /* the features give the canvas size of an animation: check it before the decoder allocates it */
    if (cc_image_check_dimensions(name, "WebP", features.width, features.height, options) != 0) return -1;
    cc_image_mode mode = features.has_alpha ? CC_IMAGE_RGBA : CC_IMAGE_RGB;
    size_t canvas_bytes = (size_t)features.width * (size_t)features.height * 4;
    if (cc_image_check_budget(name, "WebP", features.width, features.height, mode, 2 * canvas_bytes, options) != 0)
        return -1;
    WebPAnimDecoderOptions decoder_options;
    if (!WebPAnimDecoderOptionsInit(&decoder_options)) {
        cc_set_error("%s: libwebp version mismatch", name);
        return -1;
    }
    decoder_options.color_mode = MODE_RGBA;
    decoder_options.use_threads = 0;
    WebPData webp = {data, size};
    WebPAnimDecoder *decoder = WebPAnimDecoderNew(&webp, &decoder_options);
    if (!decoder) {
        cc_set_error("%s: corrupt WebP: the container or its first frame cannot be parsed", name);
        return -1;
    }
    WebPAnimInfo info;
    uint8_t *canvas = NULL;
    int timestamp = 0, rc = -1;
    if (!WebPAnimDecoderGetInfo(decoder, &info) || (int)info.canvas_width != features.width ||
        (int)info.canvas_height != features.height) {
        cc_set_error("%s: corrupt WebP: inconsistent canvas size", name);
        goto done;
    }
    if (!WebPAnimDecoderGetNext(decoder, &canvas, &timestamp) || !canvas) {
        cc_set_error("%s: corrupt or truncated WebP: the first frame cannot be decoded", name);
        goto done;
    }
    if (cc_image_alloc(out, features.width, features.height, mode, options, name) != 0) goto done;
    size_t n_pixels = (size_t)features.width * (size_t)features.height;
    for (size_t i = 0; i < n_pixels; i++) {
        memcpy(out->rgb + 3 * i, canvas + 4 * i, 3);
        if (out->alpha) out->alpha[i] = canvas[4 * i + 3];
    }
    rc = 0;
done:
    WebPAnimDecoderDelete(decoder);
    return rc;
}
