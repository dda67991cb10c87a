/* plot.h — small line charts rendered to an RGB image (training curves: loss and recall vs step),
 * written as PNG. No dependency beyond the PNG writer of data/image. */
#ifndef CLIPC_PLOT_H
#define CLIPC_PLOT_H

#include <stdint.h>

#define CC_PLOT_MAX_SERIES 8

typedef struct cc_plot_series {
    const char *label;
    const double *x, *y;
    int n;
    uint8_t rgb[3];
} cc_plot_series;

typedef struct cc_plot_panel {
    const char *title;
    const char *x_label;
    cc_plot_series series[CC_PLOT_MAX_SERIES];
    int n_series;
} cc_plot_panel;

/* Renders the panels side by side (each width × height pixels) into a malloc'd RGB buffer. */
uint8_t *cc_plot_render(const cc_plot_panel *panels, int n_panels, int panel_width, int panel_height, int *out_width,
                        int *out_height);

#endif
