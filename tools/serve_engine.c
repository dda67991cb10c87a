/* serve_engine.c — the model thread, the served index (reference counted, reloaded when the file is
 * replaced) and the metrics of `clipc serve` (see serve.h).
 *
 * Reload: the watcher thread stat()s the index file every reload_ms. When its identity (device, inode,
 * size, mtime) changes it loads the new file completely (sizes, offsets and CRCs checked) and only then
 * swaps it in; a file that does not load is logged and ignored until it changes again, and the old
 * index keeps serving. Requests hold a reference to the index they started with, so an old index is
 * freed when its last request finishes. clipc writes index files by rename, so a complete rename is a
 * complete file; a file overwritten in place (cp onto it) is not supported (the index is mmap'd). */
#include "tools/serve.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/util.h"

/* ------------------------------------------------------------------ the index */

static int read_sig(const char *path, file_sig *sig) {
    struct stat st;
    memset(sig, 0, sizeof *sig);
    if (stat(path, &st) != 0) return -1;
    sig->dev = st.st_dev;
    sig->ino = st.st_ino;
    sig->size = st.st_size;
    sig->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    sig->valid = 1;
    return 0;
}

static int same_sig(const file_sig *a, const file_sig *b) {
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

/* Loads and checks an index file for this server's model; NULL with an error. */
static index_ref *load_index(server *s, const char *path) {
    cc_index *idx = cc_index_load(path);
    if (!idx) return NULL;
    if (s->model.session.model && app_check_dims(&s->model, idx, path) != 0) {
        cc_index_free(idx);
        return NULL;
    }
    if (cc_index_count(idx) == 0) {
        cc_set_error("%s: the index is empty", path);
        cc_index_free(idx);
        return NULL;
    }
    /* the id -> slot map is built on first use: build it now, before other threads read the index */
    int64_t ignored;
    cc_index_item_timestamp(idx, 0, &ignored);
    index_ref *ref = cc_calloc(1, sizeof *ref, "index reference");
    if (!ref) {
        cc_index_free(idx);
        return NULL;
    }
    const char *kind = cc_index_get_meta(idx, APP_META_KIND);
    ref->idx = idx;
    ref->images = kind && !strcmp(kind, "images");
    return ref;
}

index_ref *serve_index_acquire(server *s) {
    pthread_mutex_lock(&s->index_lock);
    index_ref *ref = s->current;
    ref->refs++;
    pthread_mutex_unlock(&s->index_lock);
    return ref;
}

void serve_index_release(server *s, index_ref *ref) {
    if (!ref) return;
    pthread_mutex_lock(&s->index_lock);
    int last = --ref->refs == 0 && ref != s->current;
    pthread_mutex_unlock(&s->index_lock);
    if (last) {
        cc_index_free(ref->idx);
        free(ref);
    }
}

int serve_check_reload(server *s) {
    file_sig sig;
    if (read_sig(s->index_path, &sig) != 0) return 0; /* gone for now (mid-replace): keep serving */
    if (same_sig(&sig, &s->current_sig) || same_sig(&sig, &s->failed_sig)) return 0;
    index_ref *fresh = load_index(s, s->index_path);
    if (!fresh) {
        fprintf(stderr, "clipc serve: %s changed but does not load; still serving the previous index: %s\n",
                s->index_path, cc_last_error());
        s->failed_sig = sig;
        pthread_mutex_lock(&s->metrics.lock);
        s->reload_failures++;
        pthread_mutex_unlock(&s->metrics.lock);
        return 0;
    }
    fresh->generation = ++s->generation;
    pthread_mutex_lock(&s->index_lock);
    index_ref *old = s->current;
    s->current = fresh;
    s->current_sig = sig;
    int free_old = old->refs == 0;
    pthread_mutex_unlock(&s->index_lock);
    if (free_old) {
        cc_index_free(old->idx);
        free(old);
    }
    pthread_mutex_lock(&s->metrics.lock);
    s->reloads++;
    pthread_mutex_unlock(&s->metrics.lock);
    fprintf(stderr, "clipc serve: reloaded %s (%s, %lld items)\n", s->index_path, cc_index_desc(fresh->idx),
            (long long)cc_index_count(fresh->idx));
    return 1;
}

static void *watch_main(void *arg) {
    server *s = arg;
    pthread_mutex_lock(&s->queue_lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (int64_t)s->reload_ms * 1000000LL;
        until.tv_sec += ns / 1000000000LL;
        until.tv_nsec = ns % 1000000000LL;
        pthread_cond_timedwait(&s->stop_cond, &s->queue_lock, &until);
        if (s->stopping) break;
        pthread_mutex_unlock(&s->queue_lock);
        serve_check_reload(s);
        pthread_mutex_lock(&s->queue_lock);
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

/* ------------------------------------------------------------------ jobs */

void serve_job_free(serve_job *job) {
    if (!job) return;
    free(job->text);
    free(job->filter_text);
    cc_filter_expr_free(&job->filter);
    cc_image_free(&job->image);
    free(job);
}

int serve_submit(server *s, serve_job *job) {
    pthread_mutex_lock(&s->queue_lock);
    if (s->stopping || s->queue_len >= SERVE_QUEUE_LIMIT) {
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->queue_lock);
        job->http_status = 503;
        snprintf(job->error, sizeof job->error, "%s", stopping ? "the server is shutting down" : "the server is busy (queue full)");
        return -1;
    }
    job->next = NULL;
    if (job->on_queued) job->on_queued(job);
    if (s->tail) s->tail->next = job;
    else s->head = job;
    s->tail = job;
    s->queue_len++;
    pthread_cond_signal(&s->queue_cond);
    pthread_mutex_unlock(&s->queue_lock);
    return 0;
}

/* Takes the first job and, when it is a text query, up to max_batch - 1 more text jobs (queue order). */
static int take_batch(server *s, serve_job **batch) {
    serve_job *first = s->head;
    int n = 0;
    batch[n++] = first;
    s->head = first->next;
    s->queue_len--;
    if (!first->is_image) {
        serve_job **link = &s->head;
        while (*link && n < s->max_batch) {
            serve_job *j = *link;
            if (!j->is_image) {
                *link = j->next;
                batch[n++] = j;
                s->queue_len--;
            } else {
                link = &j->next;
            }
        }
    }
    s->tail = NULL;
    for (serve_job *j = s->head; j; j = j->next) s->tail = j;
    return n;
}

static void fail_job(serve_job *job, int status, const char *message) {
    job->http_status = status;
    snprintf(job->error, sizeof job->error, "%s", message);
    job->n = 0;
}

/* Embeds and searches a batch; every job gets results or an error, then on_done. */
static void run_batch(server *s, serve_job **batch, int n_batch) {
    double t0 = cc_now();
    serve_job *live[SERVE_MAX_BATCH];
    int n = 0;
    for (int i = 0; i < n_batch; i++) {
        if (t0 > batch[i]->deadline) fail_job(batch[i], 503, "timed out waiting for the model");
        else live[n++] = batch[i];
    }
    index_ref *ix = n ? serve_index_acquire(s) : NULL;
    int dim = s->model.dim;
    float *q = n ? cc_malloc((size_t)n * dim * sizeof(float), "queries") : NULL;
    int rc = q ? 0 : -1;
    if (rc == 0 && !live[0]->is_image) {
        const char *texts[SERVE_MAX_BATCH];
        for (int i = 0; i < n; i++) texts[i] = live[i]->text;
        rc = app_embed_texts(&s->model, texts, n, s->template_text, NULL, q, NULL);
    } else if (rc == 0) {
        rc = app_embed_image(&s->model, &live[0]->image, q);
    }
    if (rc != 0 && n) {
        char message[256];
        snprintf(message, sizeof message, "embedding failed: %s", cc_last_error());
        for (int i = 0; i < n; i++) fail_job(live[i], 500, message);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        serve_job *job = live[i];
        app_search_options o = {.k = job->k, .decay = job->decay, .now = (int64_t)time(NULL)};
        cc_id_filter allow = {0};
        int64_t n_allowed = 0;
        int got = -1;
        if (!job->filter_text || cc_filter_build(ix->idx, &job->filter, &allow, &n_allowed) == 0) {
            if (job->filter_text) o.params.filter = &allow;
            got = app_search(ix->idx, q + (size_t)i * dim, &o, job->ids, job->scores);
        }
        cc_filter_free_allow(&allow);
        if (got < 0) {
            char message[256];
            snprintf(message, sizeof message, "search failed: %s", cc_last_error());
            fail_job(job, 500, message);
            continue;
        }
        job->n = got;
        job->http_status = 200;
        pthread_mutex_lock(&s->index_lock);
        ix->refs++;
        pthread_mutex_unlock(&s->index_lock);
        job->index = ix;
    }
    free(q);
    if (ix) serve_index_release(s, ix);
    double ms = (cc_now() - t0) * 1e3;
    pthread_mutex_lock(&s->metrics.lock);
    if (n) {
        s->metrics.batches++;
        s->metrics.batched_queries += n;
    }
    pthread_mutex_unlock(&s->metrics.lock);
    for (int i = 0; i < n_batch; i++) {
        batch[i]->engine_ms = ms;
        batch[i]->on_done(batch[i]); /* the job may be freed from here on */
    }
}

static void *engine_main(void *arg) {
    server *s = arg;
    serve_job *batch[SERVE_MAX_BATCH];
    pthread_mutex_lock(&s->queue_lock);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->queue_cond, &s->queue_lock);
        if (!s->head) break; /* stopping and drained */
        int n = take_batch(s, batch);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->queue_lock);
        if (stopping) {
            for (int i = 0; i < n; i++) {
                fail_job(batch[i], 503, "the server is shutting down");
                batch[i]->on_done(batch[i]);
            }
        } else {
            run_batch(s, batch, n);
        }
        pthread_mutex_lock(&s->queue_lock);
    }
    pthread_mutex_unlock(&s->queue_lock);
    return NULL;
}

/* ------------------------------------------------------------------ start / stop */

int serve_start(server *s, const char *model_override) {
    s->start_time = cc_now();
    pthread_mutex_init(&s->index_lock, NULL);
    pthread_mutex_init(&s->queue_lock, NULL);
    pthread_mutex_init(&s->metrics.lock, NULL);
    pthread_cond_init(&s->queue_cond, NULL);
    pthread_cond_init(&s->stop_cond, NULL);
    if (s->max_batch < 1 || s->max_batch > SERVE_MAX_BATCH) s->max_batch = SERVE_MAX_BATCH;
    s->metrics.latency_ms = cc_calloc(SERVE_LATENCY_RING, sizeof(double), "latency ring");
    if (!s->metrics.latency_ms) return -1;
    read_sig(s->index_path, &s->current_sig);
    index_ref *first = load_index(s, s->index_path);
    if (!first) return -1;
    first->generation = s->generation = 1;
    s->current = first;
    const char *model_dir = app_index_model_dir(first->idx, model_override);
    if (!model_dir || app_model_open(&s->model, model_dir, cc_index_get_meta(first->idx, APP_META_SCALES)) != 0 ||
        app_check_dims(&s->model, first->idx, s->index_path) != 0)
        return -1;
    if (app_index_style(first->idx, s->style, &s->model.session.preprocess.style) != 0) return -1;
    const char *long_text = cc_index_get_meta(first->idx, APP_META_LONG_TEXT);
    if (long_text && !strncmp(long_text, "window", 6)) s->model.long_text = CC_LONG_TEXT_WINDOW;
    if (pthread_create(&s->engine_thread, NULL, engine_main, s) != 0) {
        cc_set_error("cannot start the engine thread");
        return -1;
    }
    if (pthread_create(&s->watch_thread, NULL, watch_main, s) != 0) {
        cc_set_error("cannot start the index watcher thread");
        pthread_mutex_lock(&s->queue_lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->queue_cond);
        pthread_mutex_unlock(&s->queue_lock);
        pthread_join(s->engine_thread, NULL);
        return -1;
    }
    s->threads_started = 1;
    return 0;
}

void serve_stop(server *s) {
    if (s->threads_started) {
        pthread_mutex_lock(&s->queue_lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->queue_cond);
        pthread_cond_broadcast(&s->stop_cond);
        pthread_mutex_unlock(&s->queue_lock);
        pthread_join(s->engine_thread, NULL);
        pthread_join(s->watch_thread, NULL);
        s->threads_started = 0;
    }
}

void serve_free(server *s) {
    serve_stop(s);
    serve_thumbs_free(s);
    if (s->current) {
        cc_index_free(s->current->idx);
        free(s->current);
        s->current = NULL;
    }
    app_model_close(&s->model);
    free(s->metrics.latency_ms);
    s->metrics.latency_ms = NULL;
}

/* ------------------------------------------------------------------ metrics */

void serve_record(server *s, serve_route route, int status, double latency_ms) {
    pthread_mutex_lock(&s->metrics.lock);
    serve_metrics *m = &s->metrics;
    m->requests[route]++;
    if (status < 300) m->status_2xx++;
    else if (status < 500) m->status_4xx++;
    else m->status_5xx++;
    if ((route == ROUTE_SEARCH_TEXT || route == ROUTE_SEARCH_IMAGE) && status == 200) {
        m->latency_ms[m->n_latency % SERVE_LATENCY_RING] = latency_ms;
        m->n_latency++;
        if (route == ROUTE_SEARCH_TEXT) m->queries_text++;
        else m->queries_image++;
    }
    pthread_mutex_unlock(&s->metrics.lock);
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const double *sorted, int64_t n, double p) {
    if (n == 0) return 0;
    int64_t rank = (int64_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

static int64_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages_total = 0, pages_resident = 0;
    if (!f) return 0;
    if (fscanf(f, "%lld %lld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    fclose(f);
    return (int64_t)pages_resident * sysconf(_SC_PAGESIZE);
}

static const char *const route_names[N_ROUTES] = {"page", "search_text", "search_image", "item", "metrics", "healthz", "other"};

char *serve_metrics_text(server *s) {
    serve_metrics snap;
    double *sorted = cc_malloc(SERVE_LATENCY_RING * sizeof(double), "latency percentiles");
    if (!sorted) return NULL;
    pthread_mutex_lock(&s->metrics.lock);
    snap = s->metrics;
    int64_t n = snap.n_latency < SERVE_LATENCY_RING ? snap.n_latency : SERVE_LATENCY_RING;
    memcpy(sorted, s->metrics.latency_ms, (size_t)n * sizeof(double));
    int64_t reloads = s->reloads, failures = s->reload_failures;
    pthread_mutex_unlock(&s->metrics.lock);
    qsort(sorted, (size_t)n, sizeof(double), compare_double);
    index_ref *ix = serve_index_acquire(s);
    int64_t items = cc_index_count(ix->idx), index_bytes = cc_index_memory_bytes(ix->idx);
    serve_index_release(s, ix);
    pthread_mutex_lock(&s->queue_lock);
    int queue_len = s->queue_len;
    pthread_mutex_unlock(&s->queue_lock);
    size_t cap = 16384;
    char *out = cc_malloc(cap, "metrics");
    if (!out) {
        free(sorted);
        return NULL;
    }
    size_t len = 0;
#define EMIT(...) len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__)
    EMIT("# HELP clipc_requests_total HTTP requests by route.\n# TYPE clipc_requests_total counter\n");
    for (int r = 0; r < N_ROUTES; r++) EMIT("clipc_requests_total{route=\"%s\"} %lld\n", route_names[r], (long long)snap.requests[r]);
    EMIT("# HELP clipc_responses_total HTTP responses by status class.\n# TYPE clipc_responses_total counter\n");
    EMIT("clipc_responses_total{code=\"2xx\"} %lld\n", (long long)snap.status_2xx);
    EMIT("clipc_responses_total{code=\"4xx\"} %lld\n", (long long)snap.status_4xx);
    EMIT("clipc_responses_total{code=\"5xx\"} %lld\n", (long long)snap.status_5xx);
    EMIT("# HELP clipc_queries_total Answered search queries by kind.\n# TYPE clipc_queries_total counter\n");
    EMIT("clipc_queries_total{kind=\"text\"} %lld\n", (long long)snap.queries_text);
    EMIT("clipc_queries_total{kind=\"image\"} %lld\n", (long long)snap.queries_image);
    EMIT("# HELP clipc_search_latency_seconds Search request latency (receipt to response) over the last %d "
         "searches.\n# TYPE clipc_search_latency_seconds summary\n",
         SERVE_LATENCY_RING);
    static const double quantiles[] = {50, 95, 99};
    for (int i = 0; i < 3; i++)
        EMIT("clipc_search_latency_seconds{quantile=\"%.2f\"} %.6f\n", quantiles[i] / 100, percentile(sorted, n, quantiles[i]) / 1e3);
    EMIT("clipc_search_latency_seconds_count %lld\n", (long long)snap.n_latency);
    EMIT("# HELP clipc_model_batches_total Forward passes of the engine and the queries they held.\n"
         "# TYPE clipc_model_batches_total counter\n");
    EMIT("clipc_model_batches_total %lld\nclipc_model_batched_queries_total %lld\n", (long long)snap.batches,
         (long long)snap.batched_queries);
    EMIT("# HELP clipc_queue_length Jobs waiting for the model.\n# TYPE clipc_queue_length gauge\nclipc_queue_length %d\n",
         queue_len);
    EMIT("# HELP clipc_resident_memory_bytes Resident set size.\n# TYPE clipc_resident_memory_bytes gauge\n"
         "clipc_resident_memory_bytes %lld\n",
         (long long)resident_bytes());
    EMIT("# HELP clipc_index_items Items in the served index.\n# TYPE clipc_index_items gauge\nclipc_index_items %lld\n",
         (long long)items);
    EMIT("# HELP clipc_index_memory_bytes Bytes held by the served index.\n# TYPE clipc_index_memory_bytes gauge\n"
         "clipc_index_memory_bytes %lld\n",
         (long long)index_bytes);
    EMIT("# HELP clipc_index_reloads_total Index file reloads (and failed attempts).\n# TYPE clipc_index_reloads_total counter\n"
         "clipc_index_reloads_total %lld\nclipc_index_reload_failures_total %lld\n",
         (long long)reloads, (long long)failures);
    pthread_mutex_lock(&s->guard_lock);
    int open_connections = s->n_conns;
    pthread_mutex_unlock(&s->guard_lock);
    EMIT("# HELP clipc_connections Open connections.\n# TYPE clipc_connections gauge\nclipc_connections %d\n",
         open_connections);
    EMIT("# HELP clipc_requests_in_flight Requests between their headers and their answer.\n"
         "# TYPE clipc_requests_in_flight gauge\nclipc_requests_in_flight %d\n",
         __atomic_load_n(&s->active_requests, __ATOMIC_ACQUIRE));
    EMIT("# HELP clipc_connections_cut_total Connections closed for missing their header or upload deadline.\n"
         "# TYPE clipc_connections_cut_total counter\nclipc_connections_cut_total %lld\n",
         (long long)snap.slow_connections_cut);
    EMIT("# HELP clipc_memory_budget_bytes Memory for upload bodies and decoded images (--max-decode-mb), and in use.\n"
         "# TYPE clipc_memory_budget_bytes gauge\nclipc_memory_budget_bytes %lld\nclipc_memory_budget_used_bytes %lld\n",
         (long long)s->memory_budget, (long long)serve_budget_used(s));
    EMIT("# HELP clipc_memory_budget_refusals_total Requests refused (503) because the memory budget was full.\n"
         "# TYPE clipc_memory_budget_refusals_total counter\nclipc_memory_budget_refusals_total %lld\n",
         (long long)snap.budget_refusals);
    EMIT("# HELP clipc_uptime_seconds Seconds since start.\n# TYPE clipc_uptime_seconds gauge\nclipc_uptime_seconds %.1f\n",
         cc_now() - s->start_time);
#undef EMIT
    free(sorted);
    return out;
}
