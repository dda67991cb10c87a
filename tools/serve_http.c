/* serve_http.c — the HTTP side of `clipc serve` on libmicrohttpd (API in docs/SEARCH.md):
 *
 *   GET  /                      the single-page UI (tools/web/index.html, compiled in)
 *   GET  /api/search?q=&k=      text query -> {"results": [...]}
 *   POST /api/search[?k=]       image query: multipart field "image" (or a body of an image type)
 *   GET  /api/item/ID[?thumb=1] the indexed file of item ID (JPEG / PNG as stored, other formats as the
 *                               PNG of their decoded pixels), or a JPEG thumbnail (256 px max side)
 *   GET  /metrics               Prometheus text format
 *   GET  /healthz               {"status": "ok", ...}
 *
 * Each request keeps a small state record (*req_cls). Searches become jobs for the engine thread: the
 * connection is suspended while the job waits and resumed by the engine when the results are in, so the
 * few HTTP threads never block on the model. /api/item opens only paths recorded in the index (never a
 * path from the request: the URL carries a numeric id). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "data/preprocess.h"
#include "engine/util.h"
#include "tools/serve.h"

#define POST_BUFFER_SIZE (32 * 1024)       /* libmicrohttpd's multipart parsing buffer */
#define ABORT_FACTOR 4                     /* an upload this many times over the limit drops the connection */
#define THUMB_SIDE 256                     /* thumbnails fit in THUMB_SIDE x THUMB_SIDE */
#define THUMB_QUALITY 85
#define THUMB_SLOTS 512                    /* thumbnails kept in memory (direct-mapped by id) */
#define MAX_THUMB_SOURCE_BYTES (64 << 20)  /* larger originals get no thumbnail (413) */
#define MAX_FORM_VALUE 32                  /* bytes kept of the small form fields (k, decay) */
#define MAX_DECAY 1000.0

extern const char cc_web_page[]; /* generated from tools/web/index.html by the Makefile */

typedef struct request {
    server *s;
    struct MHD_Connection *connection;
    serve_route route;
    double start;
    struct MHD_PostProcessor *pp;
    char *body; /* the image upload */
    size_t body_len, body_cap, received;
    int too_large, saw_image, bad_form, body_kind; /* body_kind: 0 none, 1 multipart, 2 raw image */
    char form_k[MAX_FORM_VALUE], form_decay[MAX_FORM_VALUE];
    serve_job *job;
    int job_done; /* set (atomically) by the engine before it resumes the connection */
    int responded; /* a response is queued (e.g. an early 413): anything more is ignored */
    int over_budget; /* the upload did not fit the memory budget: answered 503 at its end */
    int64_t budget_held; /* bytes of the memory budget this request holds (body, decoded image) */
} request;

/* ------------------------------------------------------------------ memory budget of a request */

static int request_take(request *r, int64_t bytes) {
    if (serve_budget_take(r->s, bytes) != 0) return -1;
    r->budget_held += bytes;
    return 0;
}

static void request_give(request *r, int64_t bytes) {
    if (bytes > r->budget_held) bytes = r->budget_held;
    serve_budget_give(r->s, bytes);
    r->budget_held -= bytes;
}

static void drop_body(request *r) {
    free(r->body);
    r->body = NULL;
    request_give(r, (int64_t)r->body_cap);
    r->body_len = r->body_cap = 0;
}

/* ------------------------------------------------------------------ responses */

static enum MHD_Result send_response(request *r, int status, struct MHD_Response *resp, const char *type) {
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (status == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (__atomic_load_n(&r->s->http_stopping, __ATOMIC_ACQUIRE)) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(r->connection, (unsigned)status, resp);
    MHD_destroy_response(resp);
    r->responded = 1;
    double ms = (cc_now() - r->start) * 1e3;
    serve_record(r->s, r->route, status, ms);
    if (r->s->log_requests) fprintf(stderr, "clipc serve: %d route=%d %.1f ms\n", status, (int)r->route, ms);
    return ret;
}

static enum MHD_Result send_bytes(request *r, int status, const char *type, void *data, size_t len,
                                  enum MHD_ResponseMemoryMode mode, const char *cache) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, mode);
    if (resp && cache) MHD_add_response_header(resp, "Cache-Control", cache);
    return send_response(r, status, resp, type);
}

static enum MHD_Result send_json(request *r, int status, cJSON *root) {
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return MHD_NO;
    return send_bytes(r, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE, "no-store");
}

static enum MHD_Result send_error(request *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(request *r, int status, const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "error", message);
    cJSON_AddNumberToObject(root, "status", status);
    return send_json(r, status, root);
}

/* ------------------------------------------------------------------ parameters */

static int valid_utf8(const char *s, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    while (len > 0) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t step = utf8proc_iterate(p, (utf8proc_ssize_t)len, &cp);
        if (step <= 0) return 0;
        p += step;
        len -= (size_t)step;
    }
    return 1;
}

/* k: absent = 10 (or max_k when smaller); otherwise 1..max_k written as plain digits. */
static int parse_k(const char *text, int max_k, int *k) {
    *k = max_k < 10 ? max_k : 10;
    if (!text) return 0;
    size_t len = strlen(text);
    if (len == 0 || len > 9 || strspn(text, "0123456789") != len) return -1;
    long v = strtol(text, NULL, 10);
    if (v < 1 || v > max_k) return -1;
    *k = (int)v;
    return 0;
}

static int parse_decay(const char *text, double *decay) {
    *decay = 0;
    if (!text || !*text) return 0;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (text[strspn(text, "0123456789.eE+-")]) return -1; /* decimal only: strtod takes hex (0x10) */
    if (errno || *end || !isfinite(v) || v < 0 || v > MAX_DECAY) return -1;
    *decay = v;
    return 0;
}

static const char *get_arg(struct MHD_Connection *c, const char *name) {
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* ------------------------------------------------------------------ search jobs */

static void job_queued(serve_job *job) {
    request *r = job->owner;
    MHD_suspend_connection(r->connection);
}

static void job_done(serve_job *job) {
    request *r = job->owner;
    struct MHD_Connection *c = r->connection;
    __atomic_store_n(&r->job_done, 1, __ATOMIC_RELEASE);
    MHD_resume_connection(c);
}

static serve_job *new_job(request *r, int k, double decay) {
    serve_job *job = cc_calloc(1, sizeof *job, "search job");
    if (!job) return NULL;
    job->k = k;
    job->decay = decay;
    job->deadline = r->start + r->s->request_timeout_ms / 1e3;
    job->owner = r;
    job->on_queued = job_queued;
    job->on_done = job_done;
    return job;
}

/* filter= (index/filter.h): parsed here, so a bad one is a 400 before any work; 0, or -1 with *ret sent */
static int take_filter(request *r, serve_job *job, enum MHD_Result *ret) {
    size_t len = 0;
    const char *text = NULL;
    if (MHD_lookup_connection_value_n(r->connection, MHD_GET_ARGUMENT_KIND, "filter", 6, &text, &len) != MHD_YES ||
        !text)
        return 0;
    if (cc_filter_parse(text, len, &job->filter) != 0) {
        *ret = send_error(r, 400, "%s", cc_last_error());
        return -1;
    }
    if (!(job->filter_text = cc_strdup(text))) {
        *ret = send_error(r, 500, "out of memory");
        return -1;
    }
    return 0;
}

static enum MHD_Result submit(request *r, serve_job *job) {
    r->job = job;
    if (serve_submit(r->s, job) == 0) return MHD_YES; /* suspended until the engine is done */
    r->job = NULL;
    enum MHD_Result ret = send_error(r, job->http_status, "%s", job->error);
    serve_job_free(job);
    return ret;
}

static enum MHD_Result send_results(request *r) {
    serve_job *job = r->job;
    if (job->http_status != 200) return send_error(r, job->http_status, "%s", job->error);
    cJSON *root = app_results_json(job->index->idx, job->ids, job->scores, job->n);
    cJSON *query = cJSON_CreateObject();
    if (job->is_image) cJSON_AddStringToObject(query, "image", "upload");
    else cJSON_AddStringToObject(query, "text", job->text);
    if (job->filter_text) cJSON_AddStringToObject(query, "filter", job->filter_text);
    cJSON_AddItemToObject(root, "query", query);
    cJSON_AddNumberToObject(root, "k", job->k);
    cJSON_AddNumberToObject(root, "took_ms", round((cc_now() - r->start) * 1e5) / 100);
    cJSON_AddNumberToObject(root, "index_generation", (double)job->index->generation);
    return send_json(r, 200, root);
}

static enum MHD_Result search_text(request *r) {
    size_t q_len = 0;
    const char *q = NULL;
    if (MHD_lookup_connection_value_n(r->connection, MHD_GET_ARGUMENT_KIND, "q", 1, &q, &q_len) != MHD_YES || !q)
        return send_error(r, 400, "missing query parameter q");
    if (q_len == 0) return send_error(r, 400, "empty query q");
    if (q_len > (size_t)r->s->max_query_bytes)
        return send_error(r, 414, "query q is %zu bytes; the limit is %d", q_len, r->s->max_query_bytes);
    if (strlen(q) != q_len || !valid_utf8(q, q_len)) return send_error(r, 400, "query q is not valid UTF-8 text");
    int k;
    double decay;
    if (parse_k(get_arg(r->connection, "k"), r->s->max_k, &k) != 0)
        return send_error(r, 400, "k must be an integer between 1 and %d", r->s->max_k);
    if (parse_decay(get_arg(r->connection, "decay"), &decay) != 0)
        return send_error(r, 400, "decay must be a number between 0 and %g", MAX_DECAY);
    serve_job *job = new_job(r, k, decay);
    if (!job || !(job->text = cc_strdup(q))) {
        serve_job_free(job);
        return send_error(r, 500, "out of memory");
    }
    enum MHD_Result ret;
    if (take_filter(r, job, &ret) != 0) {
        serve_job_free(job);
        return ret;
    }
    return submit(r, job);
}

/* Decodes the upload into job->image within the memory budget; -1 with the response sent. */
static int decode_upload(request *r, serve_job *job, enum MHD_Result *ret) {
    server *s = r->s;
    int64_t cost = serve_decode_cost(r->body, r->body_len, SERVE_MAX_UPLOAD_PIXELS);
    if (cost > s->memory_budget) {
        *ret = send_error(r, 413, "the image needs %lld MB to decode; the server's limit is %lld MB (--max-decode-mb)",
                          (long long)(cost >> 20), (long long)(s->memory_budget >> 20));
        return -1;
    }
    if (request_take(r, cost) != 0) {
        *ret = send_error(r, 503, "the server is busy decoding other uploads; retry shortly");
        return -1;
    }
    cc_image_options o = {.max_pixels = SERVE_MAX_UPLOAD_PIXELS};
    if (cc_image_decode_ex(r->body, r->body_len, "upload", &o, &job->image) != 0) {
        request_give(r, cost);
        *ret = send_error(r, 415, "%s", cc_last_error());
        return -1;
    }
    int64_t held = serve_image_bytes(&job->image);
    if (held < cost) request_give(r, cost - held); /* the decoded image stays charged until the request ends */
    drop_body(r);                                   /* decoded: the bytes are no longer needed */
    return 0;
}

static enum MHD_Result search_image(request *r) {
    if (r->too_large)
        return send_error(r, 413, "upload larger than %zu bytes", r->s->max_body);
    if (r->over_budget) return send_error(r, 503, "the server is busy receiving other uploads; retry shortly");
    if (__atomic_load_n(&r->s->http_stopping, __ATOMIC_ACQUIRE))
        return send_error(r, 503, "the server is shutting down");
    if (r->bad_form) return send_error(r, 400, "malformed multipart/form-data body");
    if (!r->saw_image || r->body_len == 0)
        return send_error(r, 400, "no image: send a multipart/form-data field named \"image\"");
    int k;
    double decay;
    const char *k_text = get_arg(r->connection, "k");
    if (!k_text && r->form_k[0]) k_text = r->form_k;
    const char *decay_text = get_arg(r->connection, "decay");
    if (!decay_text && r->form_decay[0]) decay_text = r->form_decay;
    if (parse_k(k_text, r->s->max_k, &k) != 0)
        return send_error(r, 400, "k must be an integer between 1 and %d", r->s->max_k);
    if (parse_decay(decay_text, &decay) != 0)
        return send_error(r, 400, "decay must be a number between 0 and %g", MAX_DECAY);
    serve_job *job = new_job(r, k, decay);
    if (!job) return send_error(r, 500, "out of memory");
    job->is_image = 1;
    enum MHD_Result ret;
    if (take_filter(r, job, &ret) != 0 || decode_upload(r, job, &ret) != 0) {
        serve_job_free(job);
        return ret;
    }
    return submit(r, job);
}

/* ------------------------------------------------------------------ uploads */

static int append_body(request *r, const char *data, size_t size) {
    r->received += size;
    if (size == 0) return 0; /* (the post processor passes empty pieces, maybe before any body exists) */
    if (r->too_large || r->over_budget) return r->received <= ABORT_FACTOR * r->s->max_body ? 0 : -1;
    if (r->body_len + size > r->s->max_body) {
        r->too_large = 1;
        drop_body(r);
        return 0;
    }
    if (r->body_len + size > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 64 * 1024;
        while (cap < r->body_len + size) cap *= 2;
        if (cap > r->s->max_body) cap = r->s->max_body;
        if (request_take(r, (int64_t)(cap - r->body_cap)) != 0) { /* over the memory budget: 503 at the end */
            r->over_budget = 1;
            drop_body(r);
            return 0;
        }
        char *grown = realloc(r->body, cap);
        if (!grown) return -1;
        r->body = grown;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, size);
    r->body_len += size;
    return 0;
}

static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                     const char *content_type, const char *transfer_encoding, const char *data,
                                     uint64_t off, size_t size) {
    request *r = cls;
    if (!key) return MHD_YES; /* a part without a name (MHD passes NULL): not one of ours */
    if (!strcmp(key, "image")) {
        r->saw_image = 1;
        return append_body(r, data, size) == 0 ? MHD_YES : MHD_NO;
    }
    char *dst = !strcmp(key, "k") ? r->form_k : !strcmp(key, "decay") ? r->form_decay : NULL;
    if (dst && off + size < MAX_FORM_VALUE) {
        memcpy(dst + off, data, size);
        dst[off + size] = 0;
    } else if (dst) {
        snprintf(dst, MAX_FORM_VALUE, "x"); /* too long: fails validation */
    }
    return MHD_YES;
}

/* First call of a POST /api/search: size and type checks before reading the body. */
static enum MHD_Result start_upload(request *r) {
    struct MHD_Connection *c = r->connection;
    const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > r->s->max_body)
        return send_error(r, 413, "upload of %s bytes is larger than the limit of %zu bytes", length, r->s->max_body);
    const char *type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && !strncasecmp(type, "multipart/form-data", 19)) {
        r->pp = MHD_create_post_processor(c, POST_BUFFER_SIZE, on_form_field, r);
        if (!r->pp) return send_error(r, 400, "malformed multipart/form-data header (boundary?)");
        r->body_kind = 1;
    } else if (type && (!strncasecmp(type, "image/", 6) || !strncasecmp(type, "application/octet-stream", 24))) {
        r->body_kind = 2;
        r->saw_image = 1;
    } else {
        return send_error(r, 415, "send multipart/form-data with an \"image\" field, or an image/* body");
    }
    return MHD_YES;
}

/* ------------------------------------------------------------------ items and thumbnails */

typedef struct thumb_slot {
    uint64_t generation;
    int64_t id;
    uint8_t *jpeg;
    size_t size;
} thumb_slot;

struct thumb_cache {
    pthread_mutex_t lock;
    thumb_slot slots[THUMB_SLOTS];
};

static struct thumb_cache *thumbs(server *s) {
    static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&init_lock);
    if (!s->thumbs && (s->thumbs = cc_calloc(1, sizeof *s->thumbs, "thumbnail cache")))
        pthread_mutex_init(&s->thumbs->lock, NULL);
    pthread_mutex_unlock(&init_lock);
    return s->thumbs;
}

void serve_thumbs_free(server *s) {
    if (!s->thumbs) return;
    for (int i = 0; i < THUMB_SLOTS; i++) free(s->thumbs->slots[i].jpeg);
    pthread_mutex_destroy(&s->thumbs->lock);
    free(s->thumbs);
    s->thumbs = NULL;
}

/* A copy of the cached thumbnail, or NULL. */
static uint8_t *thumb_lookup(server *s, uint64_t generation, int64_t id, size_t *size) {
    struct thumb_cache *tc = thumbs(s);
    if (!tc) return NULL;
    uint8_t *copy = NULL;
    pthread_mutex_lock(&tc->lock);
    thumb_slot *slot = &tc->slots[(uint64_t)id % THUMB_SLOTS];
    if (slot->jpeg && slot->generation == generation && slot->id == id && (copy = malloc(slot->size))) {
        memcpy(copy, slot->jpeg, slot->size);
        *size = slot->size;
    }
    pthread_mutex_unlock(&tc->lock);
    return copy;
}

static void thumb_store(server *s, uint64_t generation, int64_t id, const uint8_t *jpeg, size_t size) {
    struct thumb_cache *tc = thumbs(s);
    uint8_t *copy = tc ? malloc(size) : NULL;
    if (!copy) return;
    memcpy(copy, jpeg, size);
    pthread_mutex_lock(&tc->lock);
    thumb_slot *slot = &tc->slots[(uint64_t)id % THUMB_SLOTS];
    free(slot->jpeg);
    *slot = (thumb_slot){generation, id, copy, size};
    pthread_mutex_unlock(&tc->lock);
}

/* Reads an item's file and decodes it (any format data/image reads, RGB only, as the index saw it) within
 * the memory budget (held until the request ends); -1 with an error, *status 503 when the budget is
 * full now, 413 when the file can never fit. fast_min_side: as cc_image_options (thumbnails). */
static int read_and_decode(request *r, const char *path, int fd, off_t file_size, int fast_min_side, cc_image *img,
                           int *status) {
    server *s = r->s;
    *status = 413;
    if (file_size >= s->memory_budget) {
        cc_set_error("the file is larger than the server's memory limit (--max-decode-mb)");
        return -1;
    }
    *status = 503;
    if (request_take(r, (int64_t)file_size + 1) != 0) {
        cc_set_error("the server is busy decoding other images; retry shortly");
        return -1;
    }
    uint8_t *data = cc_malloc((size_t)file_size + 1, "image file");
    if (!data) return -1;
    size_t got = 0;
    while (got < (size_t)file_size) {
        ssize_t n = pread(fd, data + got, (size_t)file_size - got, (off_t)got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    int64_t cost = serve_decode_cost(data, got, 0);
    if (cost + (int64_t)file_size > s->memory_budget || request_take(r, cost) != 0) {
        *status = cost + (int64_t)file_size > s->memory_budget ? 413 : 503;
        cc_set_error("%s", *status == 413 ? "the image is too large to decode within the server's memory limit (--max-decode-mb)"
                                          : "the server is busy decoding other images; retry shortly");
        free(data);
        return -1;
    }
    *status = 415;
    cc_image_options o = {.fast_min_side = fast_min_side, .rgb_only = 1};
    int rc = cc_image_decode_ex(data, got, path, &o, img);
    free(data);
    return rc;
}

/* A file the browser may not show (WebP, GIF, BMP, TIFF), as the PNG of what clipc decodes from it. */
static int make_png(request *r, const char *path, int fd, off_t file_size, uint8_t **png, size_t *png_size,
                    int *status) {
    cc_image img = {0};
    if (read_and_decode(r, path, fd, file_size, 0, &img, status) != 0) return -1;
    *status = 500;
    int rc = cc_image_encode_png(img.rgb, img.width, img.height, 3, png, png_size);
    cc_image_free(&img);
    return rc;
}

static int make_thumbnail(request *r, const char *path, int fd, off_t file_size, uint8_t **jpeg, size_t *jpeg_size,
                          int *status) {
    cc_image img = {0};
    int rc = read_and_decode(r, path, fd, file_size, THUMB_SIDE, &img, status);
    if (rc != 0) return -1;
    *status = 500;
    int w = img.width, h = img.height, side = w > h ? w : h;
    int tw = w, th = h;
    if (side > THUMB_SIDE) {
        tw = (int)lround((double)w * THUMB_SIDE / side);
        th = (int)lround((double)h * THUMB_SIDE / side);
        if (tw < 1) tw = 1;
        if (th < 1) th = 1;
    }
    uint8_t *small = img.rgb;
    if (tw != w || th != h) {
        small = cc_malloc((size_t)tw * th * 3, "thumbnail");
        if (!small || cc_resize_bicubic_u8(img.rgb, w, h, 3, tw, th, 0, 0, tw, th, small) != 0) {
            free(small);
            cc_image_free(&img);
            return -1;
        }
    }
    rc = cc_image_encode_jpeg(small, tw, th, 3, THUMB_QUALITY, jpeg, jpeg_size);
    if (small != img.rgb) free(small);
    cc_image_free(&img);
    return rc;
}

/* The type to send an item's file as: JPEG and PNG as they are; the other formats clipc reads are sent
 * as the PNG of their decoded pixels (*reencode = 1). NULL: not an image clipc reads. */
static const char *image_type(int fd, int *reencode) {
    unsigned char head[16] = {0};
    ssize_t n = pread(fd, head, sizeof head, 0);
    const char *format = n > 0 ? cc_image_format(head, (size_t)n) : NULL;
    *reencode = format && strcmp(format, "jpeg") && strcmp(format, "png");
    if (!format) return NULL;
    return strcmp(format, "jpeg") == 0 ? "image/jpeg" : "image/png";
}

/* Opens an indexed file for reading: a regular file only, never through a symbolic link, and without
 * blocking (a path that became a FIFO or a device would otherwise hang the HTTP thread in open() for
 * good). -1 when it is not such a file. */
static int open_item_file(const char *path, struct stat *st) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

/* "/api/item/<digits>": the id, or -1. */
static int64_t parse_item_id(const char *rest) {
    size_t len = strlen(rest);
    if (len == 0 || len > 18 || strspn(rest, "0123456789") != len) return -1;
    return strtoll(rest, NULL, 10);
}

static enum MHD_Result serve_item(request *r, const char *id_text) {
    int64_t id = parse_item_id(id_text);
    if (id < 0) return send_error(r, 400, "item id must be a non-negative integer");
    const char *thumb_arg = get_arg(r->connection, "thumb");
    int thumb = thumb_arg && strcmp(thumb_arg, "0") != 0;
    index_ref *ix = serve_index_acquire(r->s);
    enum MHD_Result ret;
    const char *path = ix->images ? cc_index_item_text(ix->idx, id) : NULL;
    if (!ix->images) {
        ret = send_error(r, 404, "this index holds captions, not image files");
        goto done;
    }
    if (!path || path[0] != '/') {
        ret = send_error(r, 404, "no item %lld", (long long)id);
        goto done;
    }
    if (thumb) {
        size_t size;
        uint8_t *cached = thumb_lookup(r->s, ix->generation, id, &size);
        if (cached) {
            ret = send_bytes(r, 200, "image/jpeg", cached, size, MHD_RESPMEM_MUST_FREE, "max-age=300");
            goto done;
        }
    }
    struct stat st;
    int fd = open_item_file(path, &st);
    if (fd < 0) {
        ret = send_error(r, 404, "the file of item %lld is no longer readable", (long long)id);
        goto done;
    }
    int reencode = 0;
    const char *type = image_type(fd, &reencode);
    if (!type) {
        close(fd);
        ret = send_error(r, 415, "the file of item %lld is not an image clipc reads", (long long)id);
        goto done;
    }
    if (!thumb && !reencode) {
        struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* closes fd */
        if (resp) MHD_add_response_header(resp, "Cache-Control", "max-age=300");
        else close(fd);
        ret = send_response(r, 200, resp, type);
        goto done;
    }
    if (st.st_size > MAX_THUMB_SOURCE_BYTES) {
        close(fd);
        ret = send_error(r, 413, "the file of item %lld is too large to decode for the page", (long long)id);
        goto done;
    }
    uint8_t *jpeg = NULL;
    size_t jpeg_size = 0;
    int status = 500;
    int rc = thumb ? make_thumbnail(r, path, fd, st.st_size, &jpeg, &jpeg_size, &status)
                   : make_png(r, path, fd, st.st_size, &jpeg, &jpeg_size, &status);
    close(fd);
    request_give(r, r->budget_held); /* the decoded pixels are freed */
    if (rc != 0) {
        ret = send_error(r, status, "item %lld: %s", (long long)id, cc_last_error());
        goto done;
    }
    if (thumb) thumb_store(r->s, ix->generation, id, jpeg, jpeg_size);
    ret = send_bytes(r, 200, thumb ? "image/jpeg" : "image/png", jpeg, jpeg_size, MHD_RESPMEM_MUST_FREE, "max-age=300");
done:
    serve_index_release(r->s, ix);
    return ret;
}

/* ------------------------------------------------------------------ small routes */

static enum MHD_Result serve_health(request *r) {
    index_ref *ix = serve_index_acquire(r->s);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ok");
    cJSON_AddStringToObject(root, "index", r->s->index_path);
    cJSON_AddStringToObject(root, "type", cc_index_desc(ix->idx));
    cJSON_AddNumberToObject(root, "items", (double)cc_index_count(ix->idx));
    cJSON_AddNumberToObject(root, "dim", cc_index_dim(ix->idx));
    const char *kind = cc_index_get_meta(ix->idx, APP_META_KIND);
    cJSON_AddStringToObject(root, "kind", kind ? kind : "vectors");
    cJSON_AddStringToObject(root, "item_key", app_item_key(ix->idx));
    cJSON_AddNumberToObject(root, "generation", (double)ix->generation);
    cJSON_AddStringToObject(root, "model", r->s->model.session.model_dir);
    cJSON_AddNumberToObject(root, "max_k", r->s->max_k);
    cJSON_AddNumberToObject(root, "uptime_s", round((cc_now() - r->s->start_time) * 10) / 10);
    serve_index_release(r->s, ix);
    return send_json(r, 200, root);
}

static enum MHD_Result serve_metrics_page(request *r) {
    char *text = serve_metrics_text(r->s);
    if (!text) return send_error(r, 500, "out of memory");
    return send_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), MHD_RESPMEM_MUST_FREE,
                      "no-store");
}

static enum MHD_Result serve_page(request *r) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(cc_web_page), (void *)cc_web_page, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' blob: data:; style-src 'unsafe-inline'; "
                                "script-src 'unsafe-inline'; connect-src 'self'");
    }
    return send_response(r, 200, resp, "text/html; charset=utf-8");
}

static serve_route route_of(const char *method, const char *url) {
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    if (!strcmp(url, "/api/search")) return !strcmp(method, "POST") ? ROUTE_SEARCH_IMAGE : ROUTE_SEARCH_TEXT;
    if (!strncmp(url, "/api/item/", 10)) return ROUTE_ITEM;
    if (get && (!strcmp(url, "/") || !strcmp(url, "/index.html"))) return ROUTE_PAGE;
    if (!strcmp(url, "/metrics")) return ROUTE_METRICS;
    if (!strcmp(url, "/healthz")) return ROUTE_HEALTH;
    return ROUTE_OTHER;
}

/* ------------------------------------------------------------------ the handler */

enum MHD_Result serve_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls) {
    server *s = cls;
    request *r = *req_cls;
    if (!r) { /* first call: headers only */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *req_cls = r;
        r->s = s;
        r->connection = c;
        r->start = cc_now();
        r->route = route_of(method, url);
        __atomic_add_fetch(&s->active_requests, 1, __ATOMIC_ACQ_REL);
        /* the headers are in: an upload body has its own deadline, anything else none */
        serve_set_deadline(s, c, r->route == ROUTE_SEARCH_IMAGE ? s->upload_timeout_s : 0);
        if (__atomic_load_n(&s->http_stopping, __ATOMIC_ACQUIRE))
            return send_error(r, 503, "the server is shutting down");
        if (serve_open_connections(s) > s->max_connections)
            return send_error(r, 503, "too many connections (the limit is %d)", s->max_connections);
        if (r->route == ROUTE_SEARCH_IMAGE) return start_upload(r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t size = *upload_data_size;
        *upload_data_size = 0;
        if (r->route != ROUTE_SEARCH_IMAGE || r->responded) return MHD_YES; /* not read: ignored */
        if (r->body_kind == 1 && !r->too_large && !r->bad_form) {
            if (MHD_post_process(r->pp, upload_data, size) != MHD_YES) {
                if (!r->too_large) r->bad_form = 1;
                if (r->received > ABORT_FACTOR * s->max_body) return MHD_NO;
            }
            return MHD_YES;
        }
        if (r->body_kind == 1) {
            r->received += size;
            return r->received > ABORT_FACTOR * s->max_body ? MHD_NO : MHD_YES;
        }
        return append_body(r, upload_data, size) == 0 ? MHD_YES : MHD_NO;
    }
    /* the request is complete (or resumed after its job) */
    if (r->route == ROUTE_SEARCH_IMAGE) serve_set_deadline(s, c, 0);
    if (r->responded) return MHD_YES;
    if (r->job) {
        if (!__atomic_load_n(&r->job_done, __ATOMIC_ACQUIRE)) return MHD_YES;
        return send_results(r);
    }
    int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    switch (r->route) {
    case ROUTE_SEARCH_IMAGE:
        if (r->pp && MHD_destroy_post_processor(r->pp) != MHD_YES && !r->too_large) r->bad_form = 1;
        r->pp = NULL;
        return search_image(r);
    case ROUTE_SEARCH_TEXT:
        if (!get) return send_error(r, 405, "use GET with ?q= or POST an image");
        return search_text(r);
    case ROUTE_ITEM:
        if (!get) return send_error(r, 405, "use GET");
        return serve_item(r, url + 10);
    case ROUTE_PAGE: return serve_page(r);
    case ROUTE_METRICS: return get ? serve_metrics_page(r) : send_error(r, 405, "use GET");
    case ROUTE_HEALTH: return get ? serve_health(r) : send_error(r, 405, "use GET");
    default: return send_error(r, 404, "no such endpoint");
    }
}

void serve_completed(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode code) {
    server *s = cls;
    serve_set_deadline(s, c, s->header_timeout_s); /* a kept-alive connection must send its next request */
    request *r = *req_cls;
    if (!r) return;
    request_give(r, r->budget_held);
    __atomic_sub_fetch(&s->active_requests, 1, __ATOMIC_ACQ_REL);
    if (r->job) {
        serve_index_release(r->s, r->job->index);
        serve_job_free(r->job);
    }
    if (r->pp) MHD_destroy_post_processor(r->pp);
    free(r->body);
    free(r);
    *req_cls = NULL;
}
