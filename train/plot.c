/* plot.c — line charts into an RGB buffer: frame, grid with tick labels, one polyline per series,
 * legend. Text uses a built-in 5×7 bitmap font (upper case, digits, a few symbols). */
#include "train/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#define MARGIN_LEFT 52
#define MARGIN_RIGHT 12
#define MARGIN_TOP 22
#define MARGIN_BOTTOM 30
#define GRID_LINES 5

/* 5×7 glyphs, one byte per row, bit 4 = leftmost column. */
static const struct { char ch; uint8_t rows[7]; } font[] = {
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},   {'2', {14, 17, 1, 2, 4, 8, 31}},
    {'3', {31, 2, 4, 2, 1, 17, 14}},     {'4', {2, 6, 10, 18, 31, 2, 2}},  {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},    {'8', {14, 17, 17, 14, 17, 17, 14}},
    {'9', {14, 17, 17, 15, 1, 2, 12}},   {'A', {14, 17, 17, 31, 17, 17, 17}}, {'B', {30, 17, 17, 30, 17, 17, 30}},
    {'C', {14, 17, 16, 16, 16, 17, 14}}, {'D', {28, 18, 17, 17, 17, 18, 28}}, {'E', {31, 16, 16, 30, 16, 16, 31}},
    {'F', {31, 16, 16, 30, 16, 16, 16}}, {'G', {14, 17, 16, 23, 17, 17, 15}}, {'H', {17, 17, 17, 31, 17, 17, 17}},
    {'I', {14, 4, 4, 4, 4, 4, 14}},      {'J', {7, 2, 2, 2, 2, 18, 12}},   {'K', {17, 18, 20, 24, 20, 18, 17}},
    {'L', {16, 16, 16, 16, 16, 16, 31}}, {'M', {17, 27, 21, 21, 17, 17, 17}}, {'N', {17, 17, 25, 21, 19, 17, 17}},
    {'O', {14, 17, 17, 17, 17, 17, 14}}, {'P', {30, 17, 17, 30, 16, 16, 16}}, {'Q', {14, 17, 17, 17, 21, 18, 13}},
    {'R', {30, 17, 17, 30, 20, 18, 17}}, {'S', {15, 16, 16, 14, 1, 1, 30}}, {'T', {31, 4, 4, 4, 4, 4, 4}},
    {'U', {17, 17, 17, 17, 17, 17, 14}}, {'V', {17, 17, 17, 17, 17, 10, 4}}, {'W', {17, 17, 17, 21, 21, 21, 10}},
    {'X', {17, 17, 10, 4, 10, 17, 17}},  {'Y', {17, 17, 17, 10, 4, 4, 4}}, {'Z', {31, 1, 2, 4, 8, 16, 31}},
    {'.', {0, 0, 0, 0, 0, 12, 12}},      {'-', {0, 0, 0, 31, 0, 0, 0}},    {'@', {14, 17, 1, 13, 21, 21, 14}},
    {'/', {0, 1, 2, 4, 8, 16, 0}},       {':', {0, 12, 12, 0, 12, 12, 0}}, {'>', {8, 4, 2, 1, 2, 4, 8}},
    {'(', {2, 4, 8, 8, 8, 4, 2}},        {')', {8, 4, 2, 2, 2, 4, 8}},     {'+', {0, 4, 4, 31, 4, 4, 0}},
};

typedef struct {
    uint8_t *rgb;
    int width, height;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t *color) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    memcpy(c->rgb + ((size_t)y * (size_t)c->width + (size_t)x) * 3, color, 3);
}

static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t *color) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) { /* Bresenham */
        put(c, x0, y0, color);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static void text(canvas *c, int x, int y, const char *s, const uint8_t *color) {
    for (; *s; s++, x += 6) {
        char ch = (*s >= 'a' && *s <= 'z') ? (char)(*s - 32) : *s;
        for (size_t g = 0; g < sizeof font / sizeof font[0]; g++) {
            if (font[g].ch != ch) continue;
            for (int row = 0; row < 7; row++)
                for (int col = 0; col < 5; col++)
                    if (font[g].rows[row] & (16 >> col)) put(c, x + col, y + row, color);
            break;
        }
    }
}

/* Enough decimals to tell neighbouring grid values apart. */
static void format_tick(char *buf, size_t size, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) + 1e-9);
    if (decimals > 4) decimals = 4;
    snprintf(buf, size, "%.*f", decimals, v);
}

static void draw_panel(canvas *c, int x0, int width, int height, const cc_plot_panel *p) {
    static const uint8_t black[3] = {0, 0, 0}, grey[3] = {225, 225, 225}, dark[3] = {90, 90, 90};
    double min_x = INFINITY, max_x = -INFINITY, min_y = INFINITY, max_y = -INFINITY;
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            min_x = fmin(min_x, x);
            max_x = fmax(max_x, x);
            min_y = fmin(min_y, y);
            max_y = fmax(max_y, y);
        }
    if (!(min_x < max_x)) {
        min_x = isfinite(min_x) ? min_x - 1 : 0;
        max_x = min_x + 2;
    }
    if (!(min_y < max_y)) {
        min_y = isfinite(min_y) ? min_y - 1 : 0;
        max_y = min_y + 2;
    }
    double pad = 0.05 * (max_y - min_y);
    min_y -= pad;
    max_y += pad;
    int left = x0 + MARGIN_LEFT, right = x0 + width - MARGIN_RIGHT, top = MARGIN_TOP, bottom = height - MARGIN_BOTTOM;
    char label[32];
    for (int g = 0; g <= GRID_LINES; g++) {
        int y = bottom - (bottom - top) * g / GRID_LINES, x = left + (right - left) * g / GRID_LINES;
        line(c, left, y, right, y, grey);
        line(c, x, top, x, bottom, grey);
        format_tick(label, sizeof label, min_y + (max_y - min_y) * g / GRID_LINES, (max_y - min_y) / GRID_LINES);
        text(c, left - 6 * (int)strlen(label) - 4, y - 3, label, dark);
        format_tick(label, sizeof label, min_x + (max_x - min_x) * g / GRID_LINES, (max_x - min_x) / GRID_LINES);
        text(c, x - 3 * (int)strlen(label), bottom + 5, label, dark);
    }
    line(c, left, top, left, bottom, black);
    line(c, left, bottom, right, bottom, black);
    if (p->title) text(c, left, 6, p->title, black);
    if (p->x_label) text(c, right - 6 * (int)strlen(p->x_label), bottom + 16, p->x_label, dark);
    for (int s = 0; s < p->n_series; s++) {
        const cc_plot_series *series = &p->series[s];
        int have_prev = 0, px = 0, py = 0;
        for (int i = 0; i < series->n; i++) {
            if (!isfinite(series->x[i]) || !isfinite(series->y[i])) continue;
            int x = left + (int)lround((series->x[i] - min_x) / (max_x - min_x) * (right - left));
            int y = bottom - (int)lround((series->y[i] - min_y) / (max_y - min_y) * (bottom - top));
            if (have_prev) line(c, px, py, x, y, series->rgb);
            else put(c, x, y, series->rgb);
            px = x;
            py = y;
            have_prev = 1;
        }
        int ly = top + 6 + 11 * s; /* legend, top right */
        int lx = right - 6 * (int)strlen(series->label ? series->label : "") - 22;
        line(c, lx, ly + 3, lx + 14, ly + 3, series->rgb);
        line(c, lx, ly + 4, lx + 14, ly + 4, series->rgb);
        if (series->label) text(c, lx + 18, ly, series->label, dark);
    }
}

uint8_t *cc_plot_render(const cc_plot_panel *panels, int n_panels, int panel_width, int panel_height, int *out_width,
                        int *out_height) {
    canvas c = {NULL, panel_width * n_panels, panel_height};
    c.rgb = cc_malloc((size_t)c.width * (size_t)c.height * 3, "plot");
    if (!c.rgb) return NULL;
    memset(c.rgb, 255, (size_t)c.width * (size_t)c.height * 3);
    for (int i = 0; i < n_panels; i++) draw_panel(&c, i * panel_width, panel_width, panel_height, &panels[i]);
    *out_width = c.width;
    *out_height = c.height;
    return c.rgb;
}
