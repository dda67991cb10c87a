/* serve_limits.c — the guards of `clipc serve` against slow and greedy clients (see serve.h):
 *
 *   connection deadlines  every connection is tracked from accept (libmicrohttpd's connection
 *                         notifications); a guard thread shuts down the socket of one whose request
 *                         headers (--header-timeout) or upload body (--upload-timeout) have not arrived
 *                         in time, so slow or half-open clients cannot hold the connection slots.
 *                         libmicrohttpd's own timeout only counts idle time: a byte every few seconds
 *                         would keep a connection forever.
 *   memory budget         upload bodies and decoded images in flight are charged to one budget
 *                         (--max-decode-mb); a request that does not fit now gets a 503 with
 *                         Retry-After, one that can never fit a 413. The cost of decoding is computed
 *                         from the image header before any pixel is allocated.
 *
 * The guard only calls shutdown(2), never close(2), on a socket, and only under the lock that the
 * connection-closed notification takes before libmicrohttpd closes the descriptor, so it can never hit
 * a descriptor that was closed and reused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "engine/util.h"
#include "tools/serve.h"

#define GUARD_PERIOD_MS 200 /* how often the guard looks for connections past their deadline */

/* ------------------------------------------------------------------ connection deadlines */

struct conn_track {
    int fd;
    double deadline; /* cc_now() after which the connection is cut; 0 = none (request being answered) */
    conn_track *prev, *next;
};

void serve_notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                             enum MHD_ConnectionNotificationCode code) {
    server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        *socket_context = t;
        if (!t) return; /* untracked: only libmicrohttpd's idle timeout applies */
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = info ? info->connect_fd : -1;
        pthread_mutex_lock(&s->guard_lock);
        t->deadline = cc_now() + s->header_timeout_s;
        t->next = s->conns;
        if (s->conns) s->conns->prev = t;
        s->conns = t;
        s->n_conns++;
        pthread_mutex_unlock(&s->guard_lock);
        return;
    }
    conn_track *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&s->guard_lock);
    if (t->prev) t->prev->next = t->next;
    else s->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    s->n_conns--;
    pthread_mutex_unlock(&s->guard_lock);
    free(t);
    *socket_context = NULL;
}

int serve_open_connections(server *s) {
    pthread_mutex_lock(&s->guard_lock);
    int n = s->n_conns;
    pthread_mutex_unlock(&s->guard_lock);
    return n;
}

void serve_set_deadline(server *s, struct MHD_Connection *connection, double seconds) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = info ? info->socket_context : NULL;
    if (!t) return;
    pthread_mutex_lock(&s->guard_lock);
    t->deadline = seconds > 0 ? cc_now() + seconds : 0;
    pthread_mutex_unlock(&s->guard_lock);
}

/* Cuts the connections past their deadline; returns how many. */
static int cut_late_connections(server *s) {
    int cut = 0;
    double now = cc_now();
    pthread_mutex_lock(&s->guard_lock);
    for (conn_track *t = s->conns; t; t = t->next) {
        if (t->deadline <= 0 || now < t->deadline || t->fd < 0) continue;
        shutdown(t->fd, SHUT_RDWR); /* libmicrohttpd sees the end of the stream and closes it */
        t->deadline = 0;
        cut++;
    }
    pthread_mutex_unlock(&s->guard_lock);
    return cut;
}

static void *guard_main(void *arg) {
    server *s = arg;
    pthread_mutex_lock(&s->guard_lock);
    while (!s->guard_stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (int64_t)GUARD_PERIOD_MS * 1000000LL;
        until.tv_sec += ns / 1000000000LL;
        until.tv_nsec = ns % 1000000000LL;
        pthread_cond_timedwait(&s->guard_cond, &s->guard_lock, &until);
        if (s->guard_stopping) break;
        pthread_mutex_unlock(&s->guard_lock);
        int cut = cut_late_connections(s);
        if (cut) {
            pthread_mutex_lock(&s->metrics.lock);
            s->metrics.slow_connections_cut += cut;
            pthread_mutex_unlock(&s->metrics.lock);
        }
        pthread_mutex_lock(&s->guard_lock);
    }
    pthread_mutex_unlock(&s->guard_lock);
    return NULL;
}

void serve_limits_init(server *s) {
    pthread_mutex_init(&s->guard_lock, NULL);
    pthread_cond_init(&s->guard_cond, NULL);
    pthread_mutex_init(&s->budget_lock, NULL);
}

int serve_guard_start(server *s) {
    s->guard_stopping = 0;
    if (pthread_create(&s->guard_thread, NULL, guard_main, s) != 0) {
        cc_set_error("cannot start the connection guard thread");
        return -1;
    }
    s->guard_started = 1;
    return 0;
}

void serve_guard_stop(server *s) {
    if (!s->guard_started) return;
    pthread_mutex_lock(&s->guard_lock);
    s->guard_stopping = 1;
    pthread_cond_broadcast(&s->guard_cond);
    pthread_mutex_unlock(&s->guard_lock);
    pthread_join(s->guard_thread, NULL);
    s->guard_started = 0;
}

/* ------------------------------------------------------------------ memory budget */

int serve_budget_take(server *s, int64_t bytes) {
    if (bytes <= 0) return 0;
    pthread_mutex_lock(&s->budget_lock);
    int ok = s->budget_used + bytes <= s->memory_budget;
    if (ok) s->budget_used += bytes;
    pthread_mutex_unlock(&s->budget_lock);
    if (!ok) {
        pthread_mutex_lock(&s->metrics.lock);
        s->metrics.budget_refusals++;
        pthread_mutex_unlock(&s->metrics.lock);
    }
    return ok ? 0 : -1;
}

void serve_budget_give(server *s, int64_t bytes) {
    if (bytes <= 0) return;
    pthread_mutex_lock(&s->budget_lock);
    s->budget_used -= bytes;
    if (s->budget_used < 0) s->budget_used = 0;
    pthread_mutex_unlock(&s->budget_lock);
}

int64_t serve_budget_used(server *s) {
    pthread_mutex_lock(&s->budget_lock);
    int64_t used = s->budget_used;
    pthread_mutex_unlock(&s->budget_lock);
    return used;
}

/* ------------------------------------------------------------------ the cost of decoding */

static int is_png_data(const uint8_t *p, size_t n) { return n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8); }
static int is_jpeg_data(const uint8_t *p, size_t n) { return n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF; }

/* PNG: the decoder holds every decoded row (samples of 1 byte, 2 at 16 bits) and the image it builds
 * (RGB, plus alpha for LA/RGBA, plus the 16-bit values of mode I). */
static int64_t png_bytes_per_pixel(const uint8_t *p, size_t n) {
    if (n < 26) return 16;
    int bit_depth = p[24], color_type = p[25];
    int samples = color_type == 0 ? 1 : color_type == 2 ? 3 : color_type == 3 ? 1 : color_type == 4 ? 2 : 4;
    int64_t row = (int64_t)samples * (bit_depth == 16 ? 2 : 1);
    int64_t image = 3 + ((color_type == 4 || color_type == 6) ? 1 : 0) + (color_type == 0 && bit_depth == 16 ? 2 : 0);
    return row + image;
}

/* JPEG: RGB, plus the CMYK samples for a 4-component file (components from the SOF marker), plus for a
 * progressive file libjpeg's whole-image coefficient buffers (2 bytes per sample, no subsampling
 * assumed). */
static int64_t jpeg_bytes_per_pixel(const uint8_t *p, size_t n) {
    size_t pos = 2;
    while (pos + 4 <= n) {
        if (p[pos] != 0xFF) return 7 + 8; /* lost sync: assume the costliest kind */
        int marker = p[pos + 1];
        if (marker == 0xFF) {
            pos++;
            continue;
        }
        size_t length = (size_t)p[pos + 2] << 8 | p[pos + 3];
        int is_sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
        if (is_sof) {
            if (pos + 10 > n) return 7 + 8;
            int components = p[pos + 9];
            int progressive = marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE;
            return (components == 4 ? 7 : 3) + (progressive ? 2 * (components > 0 ? components : 4) : 0);
        }
        if (length < 2) return 7 + 8;
        pos += 2 + length;
    }
    return 7 + 8;
}

#define UNKNOWN_FORMAT_BYTES_PER_PIXEL 16 /* formats decoded elsewhere (a generous bound) */

int64_t serve_decode_cost(const void *data, size_t size, int64_t max_pixels) {
    int width = 0, height = 0;
    if (cc_image_probe(data, size, "upload", &width, &height) != 0 || width <= 0 || height <= 0) return 0;
    int64_t pixels = (int64_t)width * height;
    if (max_pixels > 0 && pixels > max_pixels) return 0; /* the decoder refuses it before allocating */
    const uint8_t *p = data;
    int64_t per_pixel = is_png_data(p, size)    ? png_bytes_per_pixel(p, size)
                        : is_jpeg_data(p, size) ? jpeg_bytes_per_pixel(p, size)
                                                : UNKNOWN_FORMAT_BYTES_PER_PIXEL;
    return pixels * per_pixel + (int64_t)height * (int64_t)sizeof(void *);
}

int64_t serve_image_bytes(const cc_image *img) {
    int64_t pixels = (int64_t)img->width * img->height;
    return pixels * 3 + (img->alpha ? pixels : 0) + (img->gray16 ? 2 * pixels : 0) + (img->cmyk ? 4 * pixels : 0);
}
