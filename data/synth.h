/* synth.h — deterministic synthetic image-caption pairs (no downloads): 1-3 coloured shapes on a plain
 * background, and a caption saying what is where, e.g.
 *   "a small red circle above a large blue square on a white background".
 * Every sample is a pure function of (seed, index), so any subset can be regenerated, in parallel.
 * This is the embedded data of `make demo` and of the training tests: the captions carry colour,
 * shape, size and relative position, enough for a small CLIP to learn retrieval from a few thousand
 * 64x64 images.
 */
#ifndef CLIPC_SYNTH_H
#define CLIPC_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#define CC_SYNTH_MAX_SHAPES 3
#define CC_SYNTH_CAPTION_MAX 256 /* bytes, with the NUL; captions are far below CLIP's 77 tokens */

typedef enum {
    CC_SHAPE_CIRCLE, CC_SHAPE_SQUARE, CC_SHAPE_TRIANGLE, CC_SHAPE_STAR, CC_SHAPE_DIAMOND, CC_SHAPE_HEXAGON,
    CC_SHAPE_CROSS, CC_SHAPE_COUNT
} cc_shape_kind;

typedef struct cc_synth_shape {
    cc_shape_kind kind;
    int colour;     /* index into the shape colours (cc_synth_colour_name) */
    int large;      /* 0 = small, 1 = large */
    float cx, cy;   /* centre, in [0, 1] image coordinates (y down) */
    float radius;   /* circumradius, in [0, 1] units of the image side */
    float angle;    /* rotation in radians (not mentioned in the caption) */
} cc_synth_shape;

typedef struct cc_synth_scene {
    int n_shapes;
    cc_synth_shape shapes[CC_SYNTH_MAX_SHAPES];
    int background;   /* index into the background colours */
    uint64_t noise_seed;
} cc_synth_scene;

/* The scene of sample `index` for `seed`. */
void cc_synth_make_scene(uint64_t seed, int64_t index, cc_synth_scene *scene);
/* Renders it (antialiased, with faint noise) into size x size RGB pixels. */
void cc_synth_draw(const cc_synth_scene *scene, int size, uint8_t *rgb);
/* The caption; variant 1 words the same scene differently (relations inverted / reordered). */
void cc_synth_caption(const cc_synth_scene *scene, int variant, char *out, size_t out_size);

const char *cc_synth_colour_name(int colour);
const char *cc_synth_background_name(int background);
const char *cc_synth_shape_name(cc_shape_kind kind);
void cc_synth_colour_rgb(int colour, uint8_t rgb[3]);
void cc_synth_background_rgb(int background, uint8_t rgb[3]);

typedef struct cc_synth_options {
    int64_t count;       /* number of images */
    uint64_t seed;
    int size;            /* image side in pixels (default 64) */
    int jpeg;            /* write JPEG (quality below) instead of PNG */
    int quality;
    int write_coco;      /* also DIR/captions_coco.json (COCO captions layout, images root DIR/images) */
    int write_karpathy;  /* also DIR/dataset_karpathy.json (Karpathy split layout, ~10% val, ~10% test) */
} cc_synth_options;

void cc_synth_options_default(cc_synth_options *options);
/* Writes DIR/images/NNNNNN.png (or .jpg) and DIR/pairs.tsv (header "image<TAB>caption", image paths
 * relative to DIR), plus the JSON variants asked for; every file atomically. Returns 0 or -1. */
int cc_synth_write(const char *out_dir, const cc_synth_options *options);

#endif
