/* cmd_serve.c — `clipc serve`: an HTTP search server and web page over an index built with a model
 * (serve.h for the parts, docs/SEARCH.md for the API). Runs until SIGINT or SIGTERM; then it stops
 * accepting connections, answers every request it has (queued searches and new ones get 503), waits up
 * to --shutdown-grace seconds for uploads still arriving, and exits. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/util.h"
#include "tools/commands.h"
#include "tools/serve.h"

#define CONNECTION_MEMORY 65536      /* per-connection header buffer: longer request lines get a 414 */
#define MAX_WORKERS 256
#define SHUTDOWN_POLL_US 20000       /* how often shutdown checks for requests still in flight */
#define SHUTDOWN_HARD_LIMIT_S 20     /* past the grace period: if stopping still hangs, exit anyway */
#define CONNECTION_HEADROOM_MIN 16   /* connections past --max-connections that are accepted to get a 503 */

static int run_serve(int argc, char **argv);
const cc_command cmd_serve = {
    "serve", "--index FILE [--model DIR] [--port 8080] [--host 127.0.0.1] [options]",
    "HTTP search server with a web page: /api/search, /api/item/ID, /metrics, /healthz.", run_serve};

typedef struct serve_args {
    const char *index, *model, *host, *template_text, *style;
    int64_t port, workers, max_upload_mb, timeout_s, reload_ms, batch, max_connections;
    int64_t max_k, max_query_bytes, max_decode_mb, header_timeout_s, upload_timeout_s, idle_timeout_s, grace_s;
    int log;
} serve_args;

/* host -> socket address (numeric IPv4 / IPv6, or "localhost"). */
static int make_address(const char *host, int port, struct sockaddr_storage *addr, int *ipv6) {
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (!strcmp(host, "localhost")) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    cc_set_error("--host '%s' is not a numeric IPv4 or IPv6 address (or localhost)", host);
    return -1;
}

static void *hard_exit_main(void *arg) {
    unsigned seconds = (unsigned)(uintptr_t)arg;
    while (seconds > 0) seconds = sleep(seconds);
    fprintf(stderr, "clipc serve: still not stopped %d s after the grace period; exiting\n", SHUTDOWN_HARD_LIMIT_S);
    _exit(1);
    return NULL;
}

/* Stops taking connections, answers what is in flight, then stops everything. */
static void shut_down(server *s, struct MHD_Daemon *d, double grace_s) {
    pthread_t watchdog; /* whatever hangs (a thread stuck in a system call), the process ends */
    if (pthread_create(&watchdog, NULL, hard_exit_main, (void *)(uintptr_t)(grace_s + SHUTDOWN_HARD_LIMIT_S)) == 0)
        pthread_detach(watchdog);
    __atomic_store_n(&s->http_stopping, 1, __ATOMIC_RELEASE); /* new requests: 503, Connection: close */
    MHD_socket listener = MHD_quiesce_daemon(d);              /* no new connections */
    serve_stop(s);                                            /* queued jobs answered 503, engine joined */
    double until = cc_now() + grace_s;
    while (__atomic_load_n(&s->active_requests, __ATOMIC_ACQUIRE) > 0 && cc_now() < until) usleep(SHUTDOWN_POLL_US);
    int left = __atomic_load_n(&s->active_requests, __ATOMIC_ACQUIRE);
    if (left > 0) fprintf(stderr, "clipc serve: %d requests still unfinished after %.0f s, closing them\n", left, grace_s);
    MHD_stop_daemon(d); /* connections closed, request records freed */
    if (listener != MHD_INVALID_SOCKET) close(listener);
    serve_guard_stop(s);
    serve_free(s);
}

static int serve(const serve_args *a) {
    server s;
    memset(&s, 0, sizeof s);
    s.index_path = a->index;
    s.template_text = a->template_text;
    s.style = a->style;
    s.request_timeout_ms = (int)(a->timeout_s * 1000);
    s.reload_ms = (int)a->reload_ms;
    s.max_batch = (int)a->batch;
    s.max_body = (size_t)a->max_upload_mb << 20;
    s.max_k = (int)a->max_k;
    s.max_query_bytes = (int)a->max_query_bytes;
    s.memory_budget = a->max_decode_mb << 20;
    s.header_timeout_s = (double)a->header_timeout_s;
    s.upload_timeout_s = (double)a->upload_timeout_s;
    s.log_requests = a->log;
    s.max_connections = (int)a->max_connections;
    serve_limits_init(&s);
    /* libmicrohttpd accepts a few more connections than the limit, so that those get a 503 */
    int64_t headroom = a->max_connections / 8 > CONNECTION_HEADROOM_MIN ? a->max_connections / 8 : CONNECTION_HEADROOM_MIN;
    struct sockaddr_storage addr;
    int ipv6;
    if (make_address(a->host, (int)a->port, &addr, &ipv6) != 0) return -1;
    /* every thread created from here on inherits this mask: signals are taken by sigwait below */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (serve_start(&s, a->model) != 0) {
        serve_free(&s);
        return -1;
    }
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     (ipv6 ? MHD_USE_IPv6 : 0) | (cc_quiet ? 0 : MHD_USE_ERROR_LOG);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)a->port, NULL, NULL, serve_handle, &s, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)a->workers,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)a->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(a->max_connections + headroom), MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, serve_completed, &s, MHD_OPTION_NOTIFY_CONNECTION, serve_notify_connection, &s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_END);
    if (!d) {
        cc_set_error("cannot listen on %s port %lld (in use, or not allowed?)", a->host, (long long)a->port);
        serve_free(&s);
        return -1;
    }
    if (serve_guard_start(&s) != 0) {
        MHD_stop_daemon(d);
        serve_free(&s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : (int)a->port;
    index_ref *ix = serve_index_acquire(&s);
    printf("clipc serve: listening on http://%s%s%s:%d/ (%s: %s, %lld items; model %s)\n", ipv6 ? "[" : "", a->host,
           ipv6 ? "]" : "", port, a->index, cc_index_desc(ix->idx), (long long)cc_index_count(ix->idx),
           s.model.session.model_dir);
    serve_index_release(&s, ix);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "clipc serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    shut_down(&s, d, (double)a->grace_s);
    return 0;
}

/* OpenMP threads that spin while idle (libgomp's default) take the cores the HTTP threads, the load of
 * other processes and the next request need: measured on 2 shared cores, p99 latency 5-50x worse. The
 * wait policy is read when libgomp loads, so serve starts itself again with OMP_WAIT_POLICY=passive
 * unless the variable is set (an explicit setting is kept). */
static void reexec_with_passive_openmp(int argc, char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) return;
    args[0] = "clipc";
    for (int i = 0; i < argc; i++) args[i + 1] = argv[i]; /* argv[0] is "serve" */
    execv("/proc/self/exe", args);
    free(args); /* exec failed: carry on with the default policy */
}

static int run_serve(int argc, char **argv) {
    reexec_with_passive_openmp(argc, argv);
    serve_args a = {.host = "127.0.0.1", .port = 8080, .workers = 4, .max_upload_mb = SERVE_DEFAULT_MAX_BODY >> 20,
                    .timeout_s = 10, .reload_ms = 1000, .batch = SERVE_MAX_BATCH, .max_connections = 256,
                    .max_k = SERVE_MAX_K, .max_query_bytes = SERVE_MAX_QUERY_BYTES,
                    .max_decode_mb = SERVE_DEFAULT_MEMORY_MB, .header_timeout_s = SERVE_DEFAULT_HEADER_TIMEOUT,
                    .upload_timeout_s = SERVE_DEFAULT_UPLOAD_TIMEOUT, .idle_timeout_s = 30, .grace_s = 10};
    const char *precision = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &a.index, "FILE", "index built with clipc index build --model (reloaded when replaced; one index file, not a shard manifest)"},
        {"--model", CC_OPT_STRING, &a.model, "DIR", "model directory (default: the one recorded in the index)"},
        {"--host", CC_OPT_STRING, &a.host, "ADDR", "address to listen on (default 127.0.0.1)"},
        {"--port", CC_OPT_INT, &a.port, "N", "port (default 8080; 0 picks a free one)"},
        {"--workers", CC_OPT_INT, &a.workers, "N", "HTTP threads (default 4; the model has its own thread)"},
        {"--batch", CC_OPT_INT, &a.batch, "N", "text queries embedded together at most (default 16)"},
        {"--max-upload-mb", CC_OPT_INT, &a.max_upload_mb, "MB", "largest image upload (default 10)"},
        {"--request-timeout", CC_OPT_INT, &a.timeout_s, "S", "a query not started within S seconds gets 503 (default 10)"},
        {"--reload-interval", CC_OPT_INT, &a.reload_ms, "MS", "how often the index file is checked (default 1000)"},
        {"--max-connections", CC_OPT_INT, &a.max_connections, "N",
         "concurrent connections; requests on connections past it get 503 (default 256)"},
        {"--max-k", CC_OPT_INT, &a.max_k, "N", "most results per query; larger k is a 400 (default 100, at most 1000)"},
        {"--max-query-bytes", CC_OPT_INT, &a.max_query_bytes, "N", "longest text query; longer is a 414 (default 1024)"},
        {"--max-decode-mb", CC_OPT_INT, &a.max_decode_mb, "MB",
         "memory for upload bodies and decoded images in flight; over it a request gets 503 (default 512)"},
        {"--header-timeout", CC_OPT_INT, &a.header_timeout_s, "S",
         "a connection must send its request headers within S seconds, or is closed (default 10)"},
        {"--upload-timeout", CC_OPT_INT, &a.upload_timeout_s, "S", "an upload body must arrive within S seconds (default 60)"},
        {"--idle-timeout", CC_OPT_INT, &a.idle_timeout_s, "S", "a connection silent for S seconds is closed (default 30)"},
        {"--shutdown-grace", CC_OPT_INT, &a.grace_s, "S",
         "on SIGTERM, how long requests in flight may take to finish (default 10)"},
        {"--template", CC_OPT_STRING, &a.template_text, "\"...{}...\"", "template applied to every text query"},
        {"--log", CC_OPT_FLAG, &a.log, NULL, "log every request to stderr"},
        {"--style", CC_OPT_STRING, &a.style, "NAME", "image query preprocessing: openai or hf (default: the index's, else openai)"},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int rc = cc_parse_options(&cmd_serve, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (cc_apply_precision(&cmd_serve, precision) != 0) return 2;
    if (!a.index) {
        fprintf(stderr, "clipc serve: --index is required\n");
        return 2;
    }
    if (a.port < 0 || a.port > 65535 || a.workers < 1 || a.workers > MAX_WORKERS || a.max_upload_mb < 1 ||
        a.max_upload_mb > 1024 || a.timeout_s < 1 || a.timeout_s > 3600 || a.reload_ms < 10 || a.reload_ms > 3600000 ||
        a.batch < 1 || a.batch > SERVE_MAX_BATCH || a.max_connections < 1 || a.max_connections > 65536 ||
        a.max_k < 1 || a.max_k > SERVE_K_CAP || a.max_query_bytes < 1 || a.max_query_bytes > APP_MAX_QUERY_BYTES ||
        a.max_decode_mb < 16 || a.max_decode_mb > (1 << 20) || a.header_timeout_s < 1 || a.header_timeout_s > 3600 ||
        a.upload_timeout_s < 1 || a.upload_timeout_s > 3600 || a.idle_timeout_s < 1 || a.idle_timeout_s > 3600 ||
        a.grace_s < 0 || a.grace_s > 3600) {
        fprintf(stderr, "clipc serve: an option is out of range (see clipc serve --help)\n");
        return 2;
    }
    if (a.template_text && !strstr(a.template_text, "{}")) {
        fprintf(stderr, "clipc serve: --template needs {} for the query\n");
        return 2;
    }
    if (serve(&a) != 0) return cc_command_error(&cmd_serve, cc_last_error());
    return 0;
}
