/* image_tiff.c — TIFF: recognised by its signature, not decoded yet (a clear error naming the file). */
#include "data/image_internal.h"
#include "engine/util.h"

int cc_probe_tiff(const uint8_t *data, size_t size, const char *name, int *width, int *height) {
    (void)data, (void)size, (void)width, (void)height;
    cc_set_error("%s: TIFF images are not supported yet", name);
    return -1;
}

int cc_decode_tiff(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                   cc_image *out) {
    (void)options, (void)out;
    return cc_probe_tiff(data, size, name, NULL, NULL);
}
