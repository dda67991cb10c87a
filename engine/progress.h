/* progress.h — one-line progress display with rate and ETA for long jobs (embed, train, index build).
 * Drawn on stderr only when cc_progress_enabled() (a terminal, not --quiet); otherwise silent, and
 * the caller prints its own final summary. */
#ifndef CLIPC_PROGRESS_H
#define CLIPC_PROGRESS_H

#include <stdint.h>

typedef struct cc_progress {
    const char *label;  /* e.g. "embed" */
    const char *unit;   /* e.g. "img" */
    int64_t total;      /* 0 when unknown */
    int64_t done;
    double start_time;
    double last_draw;
    int enabled;
    char extra[128];    /* caller text shown after the rate, e.g. "loss 2.31" */
} cc_progress;

void cc_progress_start(cc_progress *p, const char *label, int64_t total, const char *unit);
void cc_progress_update(cc_progress *p, int64_t done);     /* redraws at most ~10 times/s */
void cc_progress_set_extra(cc_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cc_progress_finish(cc_progress *p);                   /* clears the line */
double cc_progress_rate(const cc_progress *p);             /* units per second so far */

#endif
