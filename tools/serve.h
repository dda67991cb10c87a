/* serve.h — the parts of `clipc serve` (docs/SEARCH.md):
 *   serve_engine.c  the model thread (a queue of search jobs; text queries batched, images one by one;
 *                   everything that runs the model or OpenMP happens on this one thread), the served
 *                   index with reference counts and reload when the file is replaced, and the metrics;
 *   serve_http.c    libmicrohttpd request handling: routes, limits, multipart uploads, JSON, thumbnails;
 *   serve_limits.c  connection deadlines (slow clients) and the memory budget of uploads and decodes;
 *   cmd_serve.c     the command: options, start, signals, stop.
 * HTTP threads never touch the model: they parse and validate a request, queue a job, suspend the
 * connection, and the engine resumes it when the results are ready. */
#ifndef CLIPC_SERVE_H
#define CLIPC_SERVE_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "data/image.h"
#include "index/filter.h"
#include "index/index.h"
#include "tools/serve_query.h"

#define SERVE_MAX_K 100                    /* default --max-k: k outside [1, max_k] is a 400 */
#define SERVE_K_CAP 1000                   /* the largest --max-k */
#define SERVE_MAX_QUERY_BYTES 1024         /* default --max-query-bytes: longer q is a 414 */
#define SERVE_DEFAULT_MAX_BODY (10 << 20)  /* upload limit (bytes); larger is a 413 */
#define SERVE_DEFAULT_MEMORY_MB 512        /* default --max-decode-mb: upload bodies + decoded images in flight */
#define SERVE_DEFAULT_HEADER_TIMEOUT 10    /* seconds from connect (or the last answer) to complete headers */
#define SERVE_DEFAULT_UPLOAD_TIMEOUT 60    /* seconds from the headers to the end of an upload body */
#define SERVE_MAX_UPLOAD_PIXELS 40000000LL /* decoded upload size limit (a decompression-bomb guard) */
#define SERVE_QUEUE_LIMIT 512              /* queued jobs; more is a 503 */
#define SERVE_MAX_BATCH 16                 /* text queries embedded in one forward pass */
#define SERVE_LATENCY_RING 8192            /* recent search latencies kept for the percentiles */

/* One version of the index file, shared by the requests that started while it was current. */
typedef struct index_ref {
    cc_index *idx;
    int refs;            /* requests and jobs holding it (server.index_lock) */
    int images;          /* kind "images": /api/item serves the recorded files */
    uint64_t generation; /* 1, 2, ... per load */
} index_ref;

/* File identity used to notice a replaced index file. */
typedef struct file_sig {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int valid;
} file_sig;

typedef struct serve_job serve_job;
struct serve_job {
    int is_image;
    char *text;          /* text query (owned) */
    cc_image image;      /* decoded upload (owned) */
    int k;
    double decay;
    cc_filter_expr filter; /* filter= (parsed on the HTTP thread, applied by the engine) */
    char *filter_text;   /* as given (owned), NULL when none */
    double deadline;     /* cc_now() after which the job is answered 503 instead of run */
    /* results, written by the engine before on_done */
    int http_status;     /* 200, or the error's status */
    char error[256];
    int n;
    int64_t ids[SERVE_K_CAP];
    float scores[SERVE_K_CAP];
    index_ref *index;    /* the index the results refer to (a reference the job's owner releases) */
    double engine_ms;    /* time on the engine thread (embed + search) */
    void (*on_queued)(serve_job *job); /* called under the queue lock just before the engine can see it */
    void (*on_done)(serve_job *job);   /* called on the engine thread, last thing it does with the job */
    void *owner;
    serve_job *next;
};

typedef struct serve_metrics {
    pthread_mutex_t lock;
    double *latency_ms;  /* ring of SERVE_LATENCY_RING search latencies */
    int64_t n_latency;
    int64_t requests[8]; /* by route: see serve_route */
    int64_t status_2xx, status_4xx, status_5xx;
    int64_t queries_text, queries_image, batches, batched_queries;
    int64_t slow_connections_cut, budget_refusals;
} serve_metrics;

typedef enum { ROUTE_PAGE, ROUTE_SEARCH_TEXT, ROUTE_SEARCH_IMAGE, ROUTE_ITEM, ROUTE_METRICS, ROUTE_HEALTH, ROUTE_OTHER, N_ROUTES } serve_route;

typedef struct conn_track conn_track;

typedef struct server {
    /* settings */
    const char *index_path, *template_text;
    const char *style;          /* --style: image preprocessing (NULL: the index's, else openai) */
    int request_timeout_ms, reload_ms, max_batch, log_requests;
    size_t max_body;
    int max_k, max_query_bytes, max_connections;
    double header_timeout_s, upload_timeout_s;
    int64_t memory_budget;             /* bytes of upload bodies and decoded images in flight */
    /* connection guard (serve_limits.c) */
    pthread_mutex_t guard_lock;
    pthread_cond_t guard_cond;
    conn_track *conns;
    int n_conns, guard_stopping, guard_started;
    pthread_t guard_thread;
    /* memory budget */
    pthread_mutex_t budget_lock;
    int64_t budget_used;
    /* requests between their headers and their end (shutdown waits for them) */
    int active_requests, http_stopping;
    /* model (engine thread only) */
    app_model model;
    /* index */
    pthread_mutex_t index_lock;
    index_ref *current;
    file_sig current_sig, failed_sig;
    uint64_t generation;
    int64_t reloads, reload_failures;
    /* job queue */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond, stop_cond;
    serve_job *head, *tail;
    int queue_len, stopping;
    pthread_t engine_thread, watch_thread;
    int threads_started;
    serve_metrics metrics;
    double start_time;
    struct thumb_cache *thumbs;
} server;

/* Loads the index and the model (--model or the index's), starts the engine and watcher threads. */
int serve_start(server *s, const char *model_override);
/* Fails queued jobs (503) and stops the threads; the index and model stay until serve_free (stop the
 * HTTP daemon in between, so no request still uses them). */
void serve_stop(server *s);
void serve_free(server *s);

index_ref *serve_index_acquire(server *s);
void serve_index_release(server *s, index_ref *ref);
/* Checks the index file now (the watcher does this every reload_ms); returns 1 when it was replaced. */
int serve_check_reload(server *s);

/* Queues a job (on_queued runs first); -1 (with job->http_status / error set, on_queued not called)
 * when the queue is full or the server stops. */
int serve_submit(server *s, serve_job *job);
void serve_job_free(serve_job *job);

/* serve_http.c: the libmicrohttpd access handler and completion callback (cls = the server). */
enum MHD_Result serve_handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                             const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls);
void serve_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                     enum MHD_RequestTerminationCode code);
void serve_thumbs_free(server *s);

/* serve_limits.c: connection tracking for libmicrohttpd (MHD_OPTION_NOTIFY_CONNECTION, cls = the
 * server), the connection's deadline (seconds from now; 0 = none), and the guard thread that cuts
 * connections past their deadline. serve_limits_init before the daemon starts. */
void serve_limits_init(server *s);
void serve_notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                             enum MHD_ConnectionNotificationCode code);
void serve_set_deadline(server *s, struct MHD_Connection *connection, double seconds);
int serve_open_connections(server *s);
int serve_guard_start(server *s);
void serve_guard_stop(server *s);
/* Memory budget: take returns -1 (nothing taken) when bytes do not fit now. */
int serve_budget_take(server *s, int64_t bytes);
void serve_budget_give(server *s, int64_t bytes);
int64_t serve_budget_used(server *s);
/* Peak bytes the decoder will allocate for this file, from its header (0 when the header is unreadable
 * or over max_pixels: the decoder then fails before allocating). */
int64_t serve_decode_cost(const void *data, size_t size, int64_t max_pixels);
/* Bytes held by a decoded image. */
int64_t serve_image_bytes(const cc_image *img);

void serve_record(server *s, serve_route route, int status, double latency_ms);
/* Prometheus text exposition of the metrics (malloc'd). */
char *serve_metrics_text(server *s);

#endif
