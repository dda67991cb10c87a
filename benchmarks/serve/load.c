/* load.c — HTTP load client for benchmarks/serve: text queries against `clipc serve`'s /api/search over
 * keep-alive connections, measuring latency per request on the client side.
 *
 *   load sequential HOST PORT QUERIES.txt N K     N queries one after another (one connection)
 *   load concurrent HOST PORT QUERIES.txt CLIENTS SECONDS K
 *                                                 CLIENTS threads, each on its own connection, send
 *                                                 queries back to back for SECONDS
 *
 * Prints one line: "requests N ok N errors N seconds S qps Q p50_ms A p95_ms B p99_ms C max_ms D".
 * A request is ok when the reply is "HTTP/1.1 200" with a complete body holding "results"; anything else
 * (other status, a reset or closed connection, a timeout) is an error, and the client reconnects. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_QUERIES 100000
#define MAX_REPLY (1 << 20)      /* replies are a few KB; more is an error */
#define IO_TIMEOUT_S 30
#define MAX_SAMPLES (1 << 22)

static const char *host;
static int port, k_results;
static char **queries;
static int n_queries;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int connect_server(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void url_encode(const char *in, char *out, size_t size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < size; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
}

/* One request on a connection; 0 when the reply is a complete 200 with results. */
static int one_request(int fd, const char *query, char *buf) {
    char encoded[4096], request[4608];
    url_encode(query, encoded, sizeof encoded);
    int len = snprintf(request, sizeof request, "GET /api/search?q=%s&k=%d HTTP/1.1\r\nHost: %s\r\n\r\n", encoded,
                       k_results, host);
    for (int sent = 0; sent < len;) {
        ssize_t n = send(fd, request + sent, (size_t)(len - sent), MSG_NOSIGNAL);
        if (n <= 0) return -1;
        sent += (int)n;
    }
    size_t got = 0;
    char *body = NULL;
    long content_length = -1;
    while (!body || got < (size_t)(body - buf) + (size_t)content_length) {
        if (got >= MAX_REPLY - 1) return -1;
        ssize_t n = recv(fd, buf + got, MAX_REPLY - 1 - got, 0);
        if (n <= 0) return -1;
        got += (size_t)n;
        buf[got] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            body += 4;
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (!cl || cl > body) return -1;
            content_length = strtol(cl + 17, NULL, 10);
        }
    }
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 && strstr(body, "\"results\"") ? 0 : -1;
}

typedef struct {
    int id;
    double until;       /* concurrent mode: stop time */
    int count;          /* sequential mode: requests */
    double *latency_ms; /* per-thread samples */
    int n_samples, cap;
    long ok, errors;
} client;

static void *run_client(void *arg) {
    client *c = arg;
    char *buf = malloc(MAX_REPLY);
    int fd = connect_server();
    int next = c->id * 7919;
    for (int i = 0;; i++) {
        if (c->until > 0 ? now_s() >= c->until : i >= c->count) break;
        if (fd < 0 && (fd = connect_server()) < 0) {
            c->errors++;
            usleep(10000);
            continue;
        }
        double t0 = now_s();
        int rc = one_request(fd, queries[next++ % n_queries], buf);
        double ms = (now_s() - t0) * 1e3;
        if (rc == 0) {
            c->ok++;
            if (c->n_samples < c->cap) c->latency_ms[c->n_samples++] = ms;
        } else {
            c->errors++;
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, long n, double p) {
    if (n == 0) return NAN;
    long rank = (long)ceil(p / 100 * (double)n);
    return sorted[(rank < 1 ? 1 : rank) - 1];
}

static int read_queries(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    queries = malloc(MAX_QUERIES * sizeof *queries);
    char line[4096];
    while (n_queries < MAX_QUERIES && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) queries[n_queries++] = strdup(line);
    }
    fclose(f);
    return n_queries > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    int sequential = argc == 7 && !strcmp(argv[1], "sequential");
    int concurrent = argc == 8 && !strcmp(argv[1], "concurrent");
    if (!sequential && !concurrent) {
        fprintf(stderr, "usage: load sequential HOST PORT QUERIES N K | load concurrent HOST PORT QUERIES CLIENTS SECONDS K\n");
        return 2;
    }
    host = argv[2];
    port = atoi(argv[3]);
    if (read_queries(argv[4]) != 0) {
        fprintf(stderr, "load: cannot read queries from %s\n", argv[4]);
        return 1;
    }
    int n_clients = sequential ? 1 : atoi(argv[5]);
    double seconds = concurrent ? atof(argv[6]) : 0;
    k_results = atoi(argv[sequential ? 6 : 7]);
    client *clients = calloc((size_t)n_clients, sizeof *clients);
    pthread_t *threads = calloc((size_t)n_clients, sizeof *threads);
    double t0 = now_s();
    for (int i = 0; i < n_clients; i++) {
        clients[i].id = i;
        clients[i].count = sequential ? atoi(argv[5]) : 0;
        clients[i].until = concurrent ? t0 + seconds : 0;
        clients[i].cap = MAX_SAMPLES / n_clients;
        clients[i].latency_ms = malloc((size_t)clients[i].cap * sizeof(double));
        pthread_create(&threads[i], NULL, run_client, &clients[i]);
    }
    long ok = 0, errors = 0, n = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(threads[i], NULL);
        ok += clients[i].ok;
        errors += clients[i].errors;
        n += clients[i].n_samples;
    }
    double elapsed = now_s() - t0;
    double *all = malloc((size_t)(n ? n : 1) * sizeof(double));
    long at = 0;
    for (int i = 0; i < n_clients; i++) {
        memcpy(all + at, clients[i].latency_ms, (size_t)clients[i].n_samples * sizeof(double));
        at += clients[i].n_samples;
    }
    qsort(all, (size_t)n, sizeof(double), compare_double);
    printf("requests %ld ok %ld errors %ld seconds %.2f qps %.1f p50_ms %.2f p95_ms %.2f p99_ms %.2f max_ms %.2f\n",
           ok + errors, ok, errors, elapsed, ok / elapsed, percentile(all, n, 50), percentile(all, n, 95),
           percentile(all, n, 99), n ? all[n - 1] : NAN);
    return 0;
}
