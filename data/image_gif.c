/* image_gif.c — the first frame of a GIF (giflib's record-level API, from memory), as PIL 9.4's
 * GifImagePlugin opens it:
 *   - the canvas is the logical screen, grown to hold the first frame if it sticks out;
 *   - outside the frame it is index 0, or the frame's transparent index when its graphic control
 *     extension has one; inside, every pixel of the frame (the transparent ones too);
 *   - mode P with the frame's palette (local, else global), or mode L when there is no palette or the
 *     palette is exactly the gray ramp 0, 1, 2, ... (PIL then drops it and the indices are gray levels);
 *   - indices past the palette read as the gray ramp, as PIL's palette does; transparency does not
 *     change convert("RGB"), which only looks the indices up.
 * Later frames are not read.
 */
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>

#include "data/image_internal.h"
#include "engine/util.h"

typedef struct gif_reader {
    const uint8_t *data;
    size_t size, pos;
} gif_reader;

static int read_from_memory(GifFileType *gif, GifByteType *dest, int n) {
    gif_reader *r = gif->UserData;
    size_t left = r->size - r->pos, want = n > 0 ? (size_t)n : 0;
    if (want > left) want = left;
    memcpy(dest, r->data + r->pos, want);
    r->pos += want;
    return (int)want;
}

static int gif_error(const char *name, int code) {
    const char *message = GifErrorString(code);
    cc_set_error("%s: corrupt GIF: %s", name, message ? message : "decoder error");
    return -1;
}

/* PIL's _is_palette_needed: false when every entry i is (i, i, i). */
static int palette_needed(const ColorMapObject *map) {
    for (int i = 0; i < map->ColorCount; i++) {
        const GifColorType *c = &map->Colors[i];
        if (c->Red != i || c->Green != i || c->Blue != i) return 1;
    }
    return 0;
}

/* The first frame's descriptor (read, its pixels not yet) and the transparent index before it (-1). */
static int find_first_frame(GifFileType *gif, const char *name, int *transparent) {
    *transparent = -1;
    for (;;) {
        GifRecordType type;
        if (DGifGetRecordType(gif, &type) == GIF_ERROR) return gif_error(name, gif->Error);
        if (type == IMAGE_DESC_RECORD_TYPE) {
            if (DGifGetImageDesc(gif) == GIF_ERROR) return gif_error(name, gif->Error);
            return 0;
        }
        if (type == TERMINATE_RECORD_TYPE) {
            cc_set_error("%s: corrupt GIF: no image in the file", name);
            return -1;
        }
        if (type == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *block;
            if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) return gif_error(name, gif->Error);
            /* graphic control: block[0] = length, [1] flags, [2..3] delay, [4] transparent index */
            if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] >= 4 && (block[1] & 1)) *transparent = block[4];
            while (block) {
                if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) return gif_error(name, gif->Error);
            }
        }
        /* other record types (UNDEFINED, SCREEN_DESC) carry nothing for us */
    }
}

static int read_frame_rows(GifFileType *gif, const char *name, int frame_w, int frame_h, int interlaced,
                           uint8_t *pixels /* frame_h rows of frame_w */) {
    static const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
    int passes = interlaced ? 4 : 1;
    for (int p = 0; p < passes; p++)
        for (int y = interlaced ? start[p] : 0; y < frame_h; y += interlaced ? step[p] : 1)
            if (DGifGetLine(gif, pixels + (size_t)y * frame_w, frame_w) == GIF_ERROR) {
                if (gif->Error == D_GIF_ERR_READ_FAILED || gif->Error == D_GIF_ERR_EOF_TOO_SOON) {
                    cc_set_error("%s: truncated GIF: the first frame's data ends early", name);
                    return -1;
                }
                return gif_error(name, gif->Error);
            }
    return 0;
}

static int open_gif(const uint8_t *data, size_t size, const char *name, gif_reader *reader, GifFileType **gif) {
    int error = 0;
    reader->data = data;
    reader->size = size;
    reader->pos = 0;
    *gif = DGifOpen(reader, read_from_memory, &error);
    if (!*gif) return gif_error(name, error);
    return 0;
}

int cc_probe_gif(const uint8_t *data, size_t size, const char *name, int *width, int *height) {
    gif_reader reader;
    GifFileType *gif;
    if (open_gif(data, size, name, &reader, &gif) != 0) return -1;
    int transparent, rc = find_first_frame(gif, name, &transparent);
    if (rc == 0) {
        const GifImageDesc *f = &gif->Image;
        long long w = f->Left + (long long)f->Width, h = f->Top + (long long)f->Height;
        *width = (int)(w > gif->SWidth ? w : gif->SWidth);
        *height = (int)(h > gif->SHeight ? h : gif->SHeight);
        rc = cc_image_check_dimensions(name, "GIF", *width, *height, NULL);
    }
    DGifCloseFile(gif, NULL);
    return rc;
}

int cc_decode_gif(const uint8_t *data, size_t size, const char *name, const cc_image_options *options,
                  cc_image *out) {
    gif_reader reader;
    GifFileType *gif;
    if (open_gif(data, size, name, &reader, &gif) != 0) return -1;
    uint8_t *indices = NULL;
    int rc = -1, transparent;
    if (find_first_frame(gif, name, &transparent) != 0) goto done;
    const GifImageDesc *frame = &gif->Image;
    if (frame->Left < 0 || frame->Top < 0 || frame->Width <= 0 || frame->Height <= 0) {
        cc_set_error("%s: corrupt GIF: the first frame is empty (%dx%d)", name, frame->Width, frame->Height);
        goto done;
    }
    long long right = (long long)frame->Left + frame->Width, bottom = (long long)frame->Top + frame->Height;
    long long width = right > gif->SWidth ? right : gif->SWidth, height = bottom > gif->SHeight ? bottom : gif->SHeight;
    if (cc_image_check_dimensions(name, "GIF", width, height, options) != 0) goto done;
    const ColorMapObject *map = frame->ColorMap ? frame->ColorMap : gif->SColorMap;
    if (frame->ColorMap && !palette_needed(frame->ColorMap)) map = NULL; /* PIL: a gray local palette -> L */
    else if (!frame->ColorMap && map && !palette_needed(map)) map = NULL;
    cc_image_mode mode = map ? CC_IMAGE_P : CC_IMAGE_L;
    size_t n_canvas = (size_t)width * (size_t)height;
    if (cc_image_check_budget(name, "GIF", (int)width, (int)height, mode, 2 * n_canvas, options) != 0) goto done;
    indices = cc_malloc(n_canvas, name);
    if (!indices) goto done;
    memset(indices, transparent >= 0 ? transparent : 0, n_canvas);
    uint8_t *frame_pixels = cc_malloc((size_t)frame->Width * (size_t)frame->Height, name);
    if (!frame_pixels) goto done;
    if (read_frame_rows(gif, name, frame->Width, frame->Height, frame->Interlace, frame_pixels) != 0) {
        free(frame_pixels);
        goto done;
    }
    for (int y = 0; y < frame->Height; y++)
        memcpy(indices + (size_t)(frame->Top + y) * width + frame->Left, frame_pixels + (size_t)y * frame->Width,
               (size_t)frame->Width);
    free(frame_pixels);
    uint8_t palette[256][3];
    for (int i = 0; i < 256; i++) palette[i][0] = palette[i][1] = palette[i][2] = (uint8_t)i;
    for (int i = 0; map && i < map->ColorCount && i < 256; i++) {
        palette[i][0] = map->Colors[i].Red;
        palette[i][1] = map->Colors[i].Green;
        palette[i][2] = map->Colors[i].Blue;
    }
    if (cc_image_alloc(out, (int)width, (int)height, mode, options, name) != 0) goto done;
    for (size_t i = 0; i < n_canvas; i++) memcpy(out->rgb + 3 * i, palette[indices[i]], 3);
    rc = 0;
done:
    free(indices);
    DGifCloseFile(gif, NULL);
    return rc;
}
