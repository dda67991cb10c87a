/* synth.c — the synthetic shapes dataset (see synth.h): scene sampling, antialiased rendering, captions,
 * and the writer of images + pairs.tsv (+ COCO / Karpathy JSON variants). */
#include "data/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "engine/util.h"

#define SUPERSAMPLE 4          /* samples per pixel side for antialiasing */
#define NOISE_LEVEL 4          /* +- this many levels of per-pixel noise, so images are not flat */
#define MIN_GAP 0.03f          /* space between shapes (image units) */
#define PLACEMENT_TRIES 200

static const struct { const char *name; uint8_t rgb[3]; } SHAPE_COLOURS[] = {
    {"red", {220, 40, 40}},    {"green", {40, 170, 60}},   {"blue", {40, 80, 220}},    {"yellow", {240, 210, 40}},
    {"orange", {245, 140, 30}}, {"purple", {140, 60, 190}}, {"pink", {240, 120, 180}}, {"cyan", {40, 200, 210}},
};
#define N_COLOURS (int)(sizeof SHAPE_COLOURS / sizeof SHAPE_COLOURS[0])

static const struct { const char *name; uint8_t rgb[3]; } BACKGROUNDS[] = {
    {"white", {245, 245, 245}}, {"black", {20, 20, 20}}, {"gray", {128, 128, 128}},
};
#define N_BACKGROUNDS (int)(sizeof BACKGROUNDS / sizeof BACKGROUNDS[0])

static const char *const SHAPE_NAMES[CC_SHAPE_COUNT] = {"circle", "square", "triangle", "star", "diamond", "hexagon", "cross"};

const char *cc_synth_colour_name(int colour) { return colour >= 0 && colour < N_COLOURS ? SHAPE_COLOURS[colour].name : "?"; }
const char *cc_synth_background_name(int background) {
    return background >= 0 && background < N_BACKGROUNDS ? BACKGROUNDS[background].name : "?";
}
const char *cc_synth_shape_name(cc_shape_kind kind) { return kind < CC_SHAPE_COUNT ? SHAPE_NAMES[kind] : "?"; }
void cc_synth_colour_rgb(int colour, uint8_t rgb[3]) { memcpy(rgb, SHAPE_COLOURS[colour].rgb, 3); }
void cc_synth_background_rgb(int background, uint8_t rgb[3]) { memcpy(rgb, BACKGROUNDS[background].rgb, 3); }

/* ---------------------------------------------------------------------------------------------- */
/* Scenes                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

static uint64_t sample_seed(uint64_t seed, int64_t index) {
    uint64_t x = seed ^ ((uint64_t)index + 1) * 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static float uniform(cc_rng *rng, float lo, float hi) { return lo + (hi - lo) * (float)cc_rng_uniform(rng); }

/* Rotation that keeps each shape recognisable (a square turned 45 degrees would read as a diamond). */
static float shape_angle(cc_rng *rng, cc_shape_kind kind) {
    const float deg = (float)M_PI / 180;
    switch (kind) {
    case CC_SHAPE_STAR:
    case CC_SHAPE_HEXAGON: return uniform(rng, 0, 2 * (float)M_PI);
    case CC_SHAPE_TRIANGLE: return uniform(rng, -20 * deg, 20 * deg);
    case CC_SHAPE_CIRCLE: return 0;
    default: return uniform(rng, -15 * deg, 15 * deg);
    }
}

static int overlaps(const cc_synth_scene *scene, int n, float cx, float cy, float r) {
    for (int i = 0; i < n; i++) {
        float dx = scene->shapes[i].cx - cx, dy = scene->shapes[i].cy - cy;
        float min_dist = scene->shapes[i].radius + r + MIN_GAP;
        if (dx * dx + dy * dy < min_dist * min_dist) return 1;
    }
    return 0;
}

void cc_synth_make_scene(uint64_t seed, int64_t index, cc_synth_scene *scene) {
    cc_rng rng;
    cc_rng_seed(&rng, sample_seed(seed, index));
    memset(scene, 0, sizeof *scene);
    uint64_t roll = cc_rng_below(&rng, 10);
    int wanted = roll < 3 ? 1 : roll < 7 ? 2 : 3;
    scene->background = (int)cc_rng_below(&rng, N_BACKGROUNDS);
    for (int s = 0; s < wanted; s++) {
        cc_synth_shape shape;
        int unique;
        do { /* no two shapes with the same colour and kind: the caption must tell them apart */
            shape.kind = (cc_shape_kind)cc_rng_below(&rng, CC_SHAPE_COUNT);
            shape.colour = (int)cc_rng_below(&rng, N_COLOURS);
            unique = 1;
            for (int i = 0; i < scene->n_shapes; i++)
                if (scene->shapes[i].kind == shape.kind && scene->shapes[i].colour == shape.colour) unique = 0;
        } while (!unique);
        shape.large = (int)cc_rng_below(&rng, 2);
        shape.angle = shape_angle(&rng, shape.kind);
        int placed = 0;
        for (int attempt = 0; attempt < 2 && !placed; attempt++) {
            if (attempt == 1) shape.large = 0; /* no room for a large one: try a small one */
            for (int t = 0; t < PLACEMENT_TRIES && !placed; t++) {
                shape.radius = shape.large ? uniform(&rng, 0.19f, 0.25f) : uniform(&rng, 0.09f, 0.13f);
                float margin = shape.radius + 0.02f;
                shape.cx = uniform(&rng, margin, 1 - margin);
                shape.cy = uniform(&rng, margin, 1 - margin);
                placed = !overlaps(scene, scene->n_shapes, shape.cx, shape.cy, shape.radius);
            }
        }
        if (placed) scene->shapes[scene->n_shapes++] = shape;
    }
    scene->noise_seed = cc_rng_u64(&rng);
}

/* ---------------------------------------------------------------------------------------------- */
/* Rendering                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

static int inside_polygon(const float (*v)[2], int n, float u, float w) {
    int inside = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        if ((v[i][1] > w) != (v[j][1] > w) && u < (v[j][0] - v[i][0]) * (w - v[i][1]) / (v[j][1] - v[i][1]) + v[i][0])
            inside = !inside;
    }
    return inside;
}

typedef struct shape_geometry {
    float vertices[12][2]; /* polygon in the shape's unit frame (y down); n = 0 for circle / cross */
    int n;
    float cos_a, sin_a;    /* the inverse rotation */
} shape_geometry;

static void make_geometry(const cc_synth_shape *shape, shape_geometry *g) {
    cc_shape_kind kind = shape->kind;
    g->n = 0;
    g->cos_a = cosf(-shape->angle);
    g->sin_a = sinf(-shape->angle);
    switch (kind) {
    case CC_SHAPE_TRIANGLE:
        g->n = 3;
        for (int i = 0; i < 3; i++) {
            float a = (float)(-M_PI / 2 + i * 2 * M_PI / 3);
            g->vertices[i][0] = cosf(a);
            g->vertices[i][1] = sinf(a) + 0.15f; /* centre the visual mass */
        }
        break;
    case CC_SHAPE_STAR:
        g->n = 10;
        for (int i = 0; i < 10; i++) {
            float a = (float)(-M_PI / 2 + i * M_PI / 5), r = i % 2 ? 0.45f : 1.0f;
            g->vertices[i][0] = r * cosf(a);
            g->vertices[i][1] = r * sinf(a);
        }
        break;
    case CC_SHAPE_HEXAGON:
        g->n = 6;
        for (int i = 0; i < 6; i++) {
            float a = (float)(i * M_PI / 3);
            g->vertices[i][0] = 0.95f * cosf(a);
            g->vertices[i][1] = 0.95f * sinf(a);
        }
        break;
    case CC_SHAPE_SQUARE: {
        static const float sq[4][2] = {{-0.75f, -0.75f}, {0.75f, -0.75f}, {0.75f, 0.75f}, {-0.75f, 0.75f}};
        memcpy(g->vertices, sq, sizeof sq);
        g->n = 4;
        break;
    }
    case CC_SHAPE_DIAMOND: { /* a rhombus, taller than wide: not a turned square */
        static const float dm[4][2] = {{0, -1}, {0.62f, 0}, {0, 1}, {-0.62f, 0}};
        memcpy(g->vertices, dm, sizeof dm);
        g->n = 4;
        break;
    }
    default: break;
    }
}

static int inside_shape(const cc_synth_shape *s, const shape_geometry *g, float x, float y) {
    float dx = (x - s->cx) / s->radius, dy = (y - s->cy) / s->radius;
    if (dx * dx + dy * dy > 1.3f) return 0; /* every shape lies within 1.14 radii */
    float u = g->cos_a * dx - g->sin_a * dy, w = g->sin_a * dx + g->cos_a * dy;
    switch (s->kind) {
    case CC_SHAPE_CIRCLE: return u * u + w * w <= 1;
    case CC_SHAPE_CROSS: return (fabsf(u) <= 0.3f && fabsf(w) <= 0.9f) || (fabsf(w) <= 0.3f && fabsf(u) <= 0.9f);
    default: return inside_polygon((const float(*)[2])g->vertices, g->n, u, w);
    }
}

void cc_synth_draw(const cc_synth_scene *scene, int size, uint8_t *rgb) {
    shape_geometry geometry[CC_SYNTH_MAX_SHAPES];
    for (int i = 0; i < scene->n_shapes; i++) make_geometry(&scene->shapes[i], &geometry[i]);
    const uint8_t *bg = BACKGROUNDS[scene->background].rgb;
    for (int py = 0; py < size; py++)
        for (int px = 0; px < size; px++) {
            int sum[3] = {0, 0, 0};
            for (int sy = 0; sy < SUPERSAMPLE; sy++)
                for (int sx = 0; sx < SUPERSAMPLE; sx++) {
                    float x = (px + (sx + 0.5f) / SUPERSAMPLE) / size, y = (py + (sy + 0.5f) / SUPERSAMPLE) / size;
                    const uint8_t *colour = bg;
                    for (int i = 0; i < scene->n_shapes; i++)
                        if (inside_shape(&scene->shapes[i], &geometry[i], x, y)) colour = SHAPE_COLOURS[scene->shapes[i].colour].rgb;
                    for (int c = 0; c < 3; c++) sum[c] += colour[c];
                }
            uint64_t h = sample_seed(scene->noise_seed, (int64_t)py * size + px);
            for (int c = 0; c < 3; c++) {
                int noise = (int)((h >> (8 * c)) % (2 * NOISE_LEVEL + 1)) - NOISE_LEVEL;
                int v = (sum[c] + SUPERSAMPLE * SUPERSAMPLE / 2) / (SUPERSAMPLE * SUPERSAMPLE) + noise;
                rgb[((size_t)py * size + px) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* Captions                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

static void describe(const cc_synth_shape *s, char *out, size_t size) {
    snprintf(out, size, "a %s %s %s", s->large ? "large" : "small", SHAPE_COLOURS[s->colour].name, SHAPE_NAMES[s->kind]);
}

/* Where a shape is in the image (3 x 3 grid). */
static const char *position_phrase(const cc_synth_shape *s) {
    static const char *const grid[3][3] = {
        {"in the top left corner", "at the top", "in the top right corner"},
        {"on the left", "in the center", "on the right"},
        {"in the bottom left corner", "at the bottom", "in the bottom right corner"},
    };
    int col = s->cx < 1.0f / 3 ? 0 : s->cx < 2.0f / 3 ? 1 : 2, row = s->cy < 1.0f / 3 ? 0 : s->cy < 2.0f / 3 ? 1 : 2;
    return grid[row][col];
}

/* Where a is relative to b, along the axis on which they are further apart. */
static const char *relation(const cc_synth_shape *a, const cc_synth_shape *b) {
    float dx = b->cx - a->cx, dy = b->cy - a->cy;
    if (fabsf(dy) >= fabsf(dx)) return dy > 0 ? "above" : "below";
    return dx > 0 ? "to the left of" : "to the right of";
}

void cc_synth_caption(const cc_synth_scene *scene, int variant, char *out, size_t out_size) {
    char a[64], b[64], c[64];
    const char *bg = BACKGROUNDS[scene->background].name;
    const cc_synth_shape *s = scene->shapes;
    switch (scene->n_shapes) {
    case 1:
        describe(&s[0], a, sizeof a);
        if (variant) snprintf(out, out_size, "a %s background with %s %s", bg, a, position_phrase(&s[0]));
        else snprintf(out, out_size, "%s %s on a %s background", a, position_phrase(&s[0]), bg);
        break;
    case 2:
        describe(&s[0], a, sizeof a);
        describe(&s[1], b, sizeof b);
        if (variant) snprintf(out, out_size, "%s %s %s on a %s background", b, relation(&s[1], &s[0]), a, bg);
        else snprintf(out, out_size, "%s %s %s on a %s background", a, relation(&s[0], &s[1]), b, bg);
        break;
    case 3:
        describe(&s[0], a, sizeof a);
        describe(&s[1], b, sizeof b);
        describe(&s[2], c, sizeof c);
        if (variant)
            snprintf(out, out_size, "%s %s and %s %s %s on a %s background", c, position_phrase(&s[2]), b,
                     relation(&s[1], &s[0]), a, bg);
        else
            snprintf(out, out_size, "%s %s %s and %s %s on a %s background", a, relation(&s[0], &s[1]), b, c,
                     position_phrase(&s[2]), bg);
        break;
    default: snprintf(out, out_size, "a plain %s background", bg);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing a dataset                                                                              */
/* ---------------------------------------------------------------------------------------------- */

/* Writes an image file through a temp file + rename (never a half-written image under its name) but
 * without cc_write_file_atomic's fsync: the images can be regenerated from the seed, and an fsync per
 * file made writing thousands of them disk-bound (pairs.tsv, written last, is fsync'd). */
static int write_image_file(const char *path, const uint8_t *rgb, int size, const cc_synth_options *o) {
    uint8_t *data;
    size_t n = 0;
    int rc = o->jpeg ? cc_image_encode_jpeg(rgb, size, size, 3, o->quality, &data, &n)
                     : cc_image_encode_png(rgb, size, size, 3, &data, &n);
    if (rc != 0) return -1;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int ok = fp && fwrite(data, 1, n, fp) == n;
    if (fp && fclose(fp) != 0) ok = 0;
    free(data);
    if (!ok || rename(tmp, path) != 0) {
        cc_set_error("%s: cannot write the image", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

void cc_synth_options_default(cc_synth_options *options) {
    memset(options, 0, sizeof *options);
    options->count = 1000;
    options->seed = 1;
    options->size = 64;
    options->quality = 90;
}

/* Karpathy-style split of sample i: ~80% train, ~10% val, ~10% test (a function of seed and i). */
static const char *karpathy_split(uint64_t seed, int64_t i) {
    uint64_t r = sample_seed(seed ^ 0x5eed5911ull, i) % 10;
    return r == 0 ? "val" : r == 1 ? "test" : "train";
}

static int write_json_files(const char *out_dir, const cc_synth_options *o, char (*captions)[2][CC_SYNTH_CAPTION_MAX]) {
    const char *ext = o->jpeg ? "jpg" : "png";
    char path[4096];
    cc_atomic_file af;
    if (o->write_coco) {
        snprintf(path, sizeof path, "%s/captions_coco.json", out_dir);
        if (cc_atomic_open(&af, path) != 0) return -1;
        fprintf(af.fp, "{\"info\": {\"description\": \"clipc synthetic shapes, seed %llu\"},\n\"images\": [\n",
                (unsigned long long)o->seed);
        for (int64_t i = 0; i < o->count; i++)
            fprintf(af.fp, "%s{\"id\": %lld, \"file_name\": \"%06lld.%s\", \"width\": %d, \"height\": %d}", i ? ",\n" : "",
                    (long long)i + 1, (long long)i, ext, o->size, o->size);
        fputs("],\n\"annotations\": [\n", af.fp);
        for (int64_t i = 0; i < o->count; i++)
            for (int v = 0; v < 2; v++) /* captions are plain ASCII words: nothing to escape */
                fprintf(af.fp, "%s{\"id\": %lld, \"image_id\": %lld, \"caption\": \"%s\"}", i || v ? ",\n" : "",
                        (long long)(2 * i + v + 1), (long long)i + 1, captions[i][v]);
        fputs("]}\n", af.fp);
        if (cc_atomic_commit(&af) != 0) return -1;
    }
    if (o->write_karpathy) {
        snprintf(path, sizeof path, "%s/dataset_karpathy.json", out_dir);
        if (cc_atomic_open(&af, path) != 0) return -1;
        fputs("{\"images\": [\n", af.fp);
        for (int64_t i = 0; i < o->count; i++)
            fprintf(af.fp,
                    "%s{\"filepath\": \"images\", \"filename\": \"%06lld.%s\", \"imgid\": %lld, \"split\": \"%s\", "
                    "\"sentences\": [{\"raw\": \"%s\", \"sentid\": %lld}, {\"raw\": \"%s\", \"sentid\": %lld}], \"cocoid\": %lld}",
                    i ? ",\n" : "", (long long)i, ext, (long long)i, karpathy_split(o->seed, i), captions[i][0],
                    (long long)(2 * i), captions[i][1], (long long)(2 * i + 1), (long long)i + 1);
        fputs("], \"dataset\": \"synth\"}\n", af.fp);
        if (cc_atomic_commit(&af) != 0) return -1;
    }
    return 0;
}

int cc_synth_write(const char *out_dir, const cc_synth_options *o) {
    if (o->count <= 0 || o->count > 100000000 || o->size < 8 || o->size > 4096 || (o->jpeg && (o->quality < 1 || o->quality > 100))) {
        cc_set_error("synth: bad options (count %lld must be 1..1e8, size %d must be 8..4096, quality %d)",
                     (long long)o->count, o->size, o->quality);
        return -1;
    }
    char images_dir[4096];
    snprintf(images_dir, sizeof images_dir, "%s/images", out_dir);
    if (cc_mkdir_p(images_dir) != 0) return -1;
    char (*captions)[2][CC_SYNTH_CAPTION_MAX] = cc_malloc((size_t)o->count * sizeof *captions, "captions");
    if (!captions) return -1;
    const char *ext = o->jpeg ? "jpg" : "png";
    int failed = 0;
    char first_error[CC_ERROR_MAX] = "";
#pragma omp parallel num_threads(cc_get_threads())
    {
        uint8_t *rgb = malloc((size_t)o->size * o->size * 3);
        if (!rgb) {
#pragma omp critical(synth_error)
            if (!failed++) snprintf(first_error, sizeof first_error, "synth: out of memory");
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < o->count; i++) {
            if (!rgb || failed) continue;
            cc_synth_scene scene;
            cc_synth_make_scene(o->seed, i, &scene);
            cc_synth_draw(&scene, o->size, rgb);
            cc_synth_caption(&scene, 0, captions[i][0], CC_SYNTH_CAPTION_MAX);
            cc_synth_caption(&scene, 1, captions[i][1], CC_SYNTH_CAPTION_MAX);
            char path[4200];
            snprintf(path, sizeof path, "%s/%06lld.%s", images_dir, (long long)i, ext);
            if (write_image_file(path, rgb, o->size, o) != 0) {
#pragma omp critical(synth_error)
                if (!failed++) snprintf(first_error, sizeof first_error, "%s", cc_last_error());
            }
        }
        free(rgb);
    }
    if (failed) {
        cc_set_error("%s", first_error);
        free(captions);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/pairs.tsv", out_dir);
    cc_atomic_file af;
    int rc = cc_atomic_open(&af, path);
    if (rc == 0) {
        fputs("image\tcaption\n", af.fp);
        for (int64_t i = 0; i < o->count; i++) fprintf(af.fp, "images/%06lld.%s\t%s\n", (long long)i, ext, captions[i][0]);
        rc = cc_atomic_commit(&af);
    }
    if (rc == 0) rc = write_json_files(out_dir, o, captions);
    free(captions);
    return rc;
}
