/* progress.c — terminal progress line: "label  done/total  rate unit/s  ETA m:ss  extra". */
#include "engine/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/util.h"

void cc_progress_start(cc_progress *p, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start_time = cc_now();
    p->enabled = cc_progress_enabled();
}

double cc_progress_rate(const cc_progress *p) {
    double elapsed = cc_now() - p->start_time;
    return elapsed > 0 ? (double)p->done / elapsed : 0.0;
}

static void format_duration(char *buf, size_t size, double seconds) {
    if (seconds < 0 || seconds > 1e7) {
        snprintf(buf, size, "--:--");
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
}

static void draw(cc_progress *p) {
    double rate = cc_progress_rate(p);
    char eta[32] = "--:--";
    if (p->total > 0 && rate > 0) format_duration(eta, sizeof eta, (double)(p->total - p->done) / rate);
    if (p->total > 0)
        fprintf(stderr, "\r\033[K%s %lld/%lld (%.0f%%)  %.1f %s/s  ETA %s  %s", p->label, (long long)p->done,
                (long long)p->total, 100.0 * (double)p->done / (double)p->total, rate, p->unit, eta, p->extra);
    else
        fprintf(stderr, "\r\033[K%s %lld  %.1f %s/s  %s", p->label, (long long)p->done, rate, p->unit, p->extra);
    fflush(stderr);
}

void cc_progress_update(cc_progress *p, int64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double now = cc_now();
    if (now - p->last_draw < 0.1 && done != p->total) return;
    p->last_draw = now;
    draw(p);
}

void cc_progress_set_extra(cc_progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->extra, sizeof p->extra, fmt, ap);
    va_end(ap);
}

void cc_progress_finish(cc_progress *p) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
