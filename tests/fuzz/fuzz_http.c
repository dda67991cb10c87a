/* fuzz_http.c — libFuzzer target: `clipc serve` request handling (tools/serve_http.c) without sockets.
 *
 * The input is one request in HTTP/1.1 text form: "METHOD URL\n", header lines "Name: value\n", an
 * empty line, then the body. This harness splits it (the part libmicrohttpd does on a socket: the
 * query string into arguments, decoded with MHD's own MHD_http_unescape) and drives serve_handle()
 * exactly as the daemon does: a first call with the headers, the body in pieces, a last call, then
 * serve_completed(). The MHD functions that need a real connection (argument and header lookup,
 * queueing a response, suspend/resume) are defined here and take precedence over the library's —
 * libmicrohttpd's own multipart parser (MHD_create_post_processor, which looks the content type up
 * through MHD_lookup_connection_value_n) thus runs on the fuzzed body. The server is set up with a
 * small "images" index whose item 0 is a real PNG (thumbnails), and marked stopping, so searches are
 * validated and decoded, then answered 503 instead of reaching the model. */
#include <microhttpd.h>
#include <pthread.h>

#include "data/image.h"
#include "index/index.h"
#include "tests/fuzz/fuzz_common.h"
#include "tools/serve.h"

#define MAX_VALUES 64

/* ---- the fake connection */
typedef struct value {
    enum MHD_ValueKind kind;
    char *key, *value;
    size_t value_len;
} value;

struct MHD_Connection {
    value values[MAX_VALUES];
    int n_values;
    int queued_status; /* 0 until a response is queued */
    int suspended;
};

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key,
                                              size_t key_size, const char **value_ptr, size_t *value_size_ptr) {
    for (int i = 0; i < c->n_values; i++) {
        if (!(c->values[i].kind & kind)) continue;
        int header = kind == MHD_HEADER_KIND;
        if (strlen(c->values[i].key) != key_size ||
            (header ? strncasecmp(c->values[i].key, key, key_size) : strncmp(c->values[i].key, key, key_size)))
            continue;
        if (value_ptr) *value_ptr = c->values[i].value;
        if (value_size_ptr) *value_size_ptr = c->values[i].value_len;
        return MHD_YES;
    }
    return MHD_NO;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key) {
    const char *v = NULL;
    return key && MHD_lookup_connection_value_n(c, kind, key, strlen(key), &v, NULL) == MHD_YES ? v : NULL;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status, struct MHD_Response *response) {
    if (c->queued_status) abort(); /* two responses to one request */
    if (!response || status < 100 || status > 599) abort();
    c->queued_status = (int)status;
    return MHD_YES;
}

/* no socket behind a fuzzed connection: no tracking context (serve_limits.c then sets no deadline) */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *c, enum MHD_ConnectionInfoType type, ...) {
    (void)c, (void)type;
    return NULL;
}

void MHD_suspend_connection(struct MHD_Connection *c) { c->suspended = 1; }
void MHD_resume_connection(struct MHD_Connection *c) { c->suspended = 0; }

/* ---- the server */
static server srv;
static index_ref current;

static void setup_server(void) {
    fuzz_single_thread();
    pthread_mutex_init(&srv.index_lock, NULL);
    pthread_mutex_init(&srv.queue_lock, NULL);
    pthread_mutex_init(&srv.metrics.lock, NULL);
    pthread_cond_init(&srv.queue_cond, NULL);
    pthread_cond_init(&srv.stop_cond, NULL);
    srv.metrics.latency_ms = calloc(SERVE_LATENCY_RING, sizeof(double));
    srv.index_path = "fuzz.cci";
    srv.template_text = "a photo of {}";
    srv.request_timeout_ms = 1000;
    srv.max_batch = SERVE_MAX_BATCH;
    srv.max_body = 64 << 10;
    srv.stopping = 1; /* searches end in a 503 after validation and decoding */
    srv.start_time = 0;
    /* item 0: a real 300x20 PNG (thumbnail resized); 1: a missing file; 2: a relative path */
    uint8_t pixels[300 * 20 * 3];
    for (size_t i = 0; i < sizeof pixels; i++) pixels[i] = (uint8_t)(i * 31);
    char png_path[512];
    snprintf(png_path, sizeof png_path, "%s/item0.png", fuzz_dir());
    if (cc_image_write_png(png_path, pixels, 300, 20, 3) != 0) abort();
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.png", fuzz_dir());
    const char *texts[3] = {png_path, missing, "relative.png"};
    float vectors[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    cc_index *idx = cc_index_create("Flat", 4, CC_METRIC_IP);
    if (!idx || cc_index_set_meta(idx, APP_META_KIND, "images") != 0 ||
        cc_index_add_items(idx, 3, vectors, NULL, texts, NULL) != 0)
        abort();
    current = (index_ref){.idx = idx, .refs = 1, .images = 1, .generation = 1};
    srv.current = &current;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    setup_server();
    return 0;
}

/* ---- the request */
static void add_value(struct MHD_Connection *c, enum MHD_ValueKind kind, const char *key, size_t key_len,
                      const char *val, size_t val_len, int unescape) {
    if (c->n_values == MAX_VALUES) return;
    value *v = &c->values[c->n_values++];
    v->kind = kind;
    v->key = fuzz_strndup((const uint8_t *)key, key_len);
    v->value = fuzz_strndup((const uint8_t *)val, val_len);
    v->value_len = val_len;
    if (unescape) {
        MHD_http_unescape(v->key);
        v->value_len = MHD_http_unescape(v->value);
    }
}

/* "a=1&b=%20x&c": arguments as MHD splits them (a key without '=' has an empty value). */
static void parse_query(struct MHD_Connection *c, const char *q, size_t len) {
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        if (!amp) amp = end;
        const char *eq = memchr(q, '=', (size_t)(amp - q));
        if (eq) add_value(c, MHD_GET_ARGUMENT_KIND, q, (size_t)(eq - q), eq + 1, (size_t)(amp - eq - 1), 1);
        else if (amp > q) add_value(c, MHD_GET_ARGUMENT_KIND, q, (size_t)(amp - q), "", 0, 1);
        q = amp + 1;
    }
}

static const char *next_line(const char *p, const char *end, size_t *len) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    if (*len && p[*len - 1] == '\r') (*len)--;
    return nl ? nl + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size;
    size_t len;
    const char *line = p;
    p = next_line(p, end, &len);
    const char *sp = memchr(line, ' ', len);
    if (!sp) return 0;
    char *method = fuzz_strndup((const uint8_t *)line, (size_t)(sp - line));
    const char *url_start = sp + 1;
    size_t url_len = len - (size_t)(url_start - line);
    const char *qmark = memchr(url_start, '?', url_len);
    char *url = fuzz_strndup((const uint8_t *)url_start, qmark ? (size_t)(qmark - url_start) : url_len);
    MHD_http_unescape(url);
    struct MHD_Connection *c = calloc(1, sizeof *c);
    if (qmark) parse_query(c, qmark + 1, url_len - (size_t)(qmark + 1 - url_start));
    while (p < end) {
        line = p;
        p = next_line(p, end, &len);
        if (len == 0) break;
        const char *colon = memchr(line, ':', len);
        if (!colon) continue;
        const char *v = colon + 1;
        while (v < line + len && *v == ' ') v++;
        add_value(c, MHD_HEADER_KIND, line, (size_t)(colon - line), v, (size_t)(line + len - v), 0);
    }
    /* the body, delivered in pieces of a size chosen by its length (as a socket splits it) */
    const char *body = p;
    size_t body_len = (size_t)(end - p), piece = 1 + body_len % 97 * 13;
    void *req_cls = NULL;
    size_t zero = 0;
    enum MHD_Result ok = serve_handle(&srv, c, url, method, "HTTP/1.1", NULL, &zero, &req_cls);
    for (size_t off = 0; ok == MHD_YES && off < body_len; off += piece) {
        size_t n = body_len - off < piece ? body_len - off : piece;
        size_t left = n;
        ok = serve_handle(&srv, c, url, method, "HTTP/1.1", body + off, &left, &req_cls);
        if (left != 0) abort(); /* the handler must consume what it is given */
    }
    if (ok == MHD_YES) {
        zero = 0;
        serve_handle(&srv, c, url, method, "HTTP/1.1", NULL, &zero, &req_cls);
        /* with the engine stopped, every complete request is answered */
        if (!c->queued_status) abort();
    }
    serve_completed(&srv, c, &req_cls, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    for (int i = 0; i < c->n_values; i++) {
        free(c->values[i].key);
        free(c->values[i].value);
    }
    free(c);
    free(url);
    free(method);
    return 0;
}
