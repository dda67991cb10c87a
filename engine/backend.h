/* backend.h — what a backend (CPU, CUDA) provides to execute a graph.
 *
 * The graph decides what runs and in which order, and where every intermediate lives (an offset in
 * one arena per graph, see graph.c). A backend provides memory (alloc/free/copies in its address
 * space) and one compute function that executes a single node given its sources' data. Model code
 * never sees a backend beyond choosing one by name; the same graph runs on either.
 */
#ifndef CLIPC_BACKEND_H
#define CLIPC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

struct cc_graph;

/* AdamW over one flat parameter buffer (the optimizer calls it per parameter tensor). */
typedef struct cc_adamw_args {
    float *param;          /* n values, updated in place */
    const float *grad;     /* n values */
    float *m, *v;          /* moment buffers, updated in place */
    int64_t n;
    float lr, beta1, beta2, eps, weight_decay;
    float grad_scale;      /* multiply grads by this first (clipping, accumulation averaging) */
    int64_t step;          /* 1-based, for bias correction */
} cc_adamw_args;

typedef struct cc_backend cc_backend;
struct cc_backend {
    const char *name;      /* "cpu", "cuda" */
    int host_memory;       /* 1 when data pointers are host-addressable */
    void *ctx;             /* backend private state */

    void *(*alloc)(cc_backend *be, size_t nbytes);       /* NULL + cc_set_error on failure */
    void (*free)(cc_backend *be, void *ptr);
    int (*upload)(cc_backend *be, void *dst, const void *host_src, size_t nbytes);
    int (*download)(cc_backend *be, void *host_dst, const void *src, size_t nbytes);
    int (*copy)(cc_backend *be, void *dst, const void *src, size_t nbytes);
    int (*zero)(cc_backend *be, void *dst, size_t nbytes);
    int (*compute_node)(cc_backend *be, cc_tensor *node); /* executes one node; -1 + error */
    /* Optional: runs the whole graph (e.g. as a captured CUDA graph). NULL = node loop. */
    int (*compute_graph)(cc_backend *be, struct cc_graph *graph);
    int (*synchronize)(cc_backend *be);
    int (*adamw)(cc_backend *be, const cc_adamw_args *args);
    /* sum of squares of n floats -> *out (host), for global grad-norm clipping */
    int (*sum_squares)(cc_backend *be, const float *x, int64_t n, double *out);
    void (*destroy)(cc_backend *be);
    /* Optional (NULL = not provided; use the helpers below, which fall back to the calls above). */
    /* AdamW over `count` parameter tensors in one fused launch. */
    int (*adamw_multi)(cc_backend *be, const cc_adamw_args *args, int count);
    /* Σ over tensors Σ x² -> *out (host), one reduction and one device->host copy. */
    int (*sum_squares_multi)(cc_backend *be, const float *const *x, const int64_t *n, int count, double *out);
    /* Parameter memory was written by means the backend cannot see (it tracks its own writes). */
    void (*params_changed)(cc_backend *be);
};

/* AdamW over many parameter tensors: one fused call where the backend has it. */
static inline int cc_backend_adamw_all(cc_backend *be, const cc_adamw_args *args, int count) {
    if (be->adamw_multi) return be->adamw_multi(be, args, count);
    for (int i = 0; i < count; i++)
        if (be->adamw(be, &args[i]) != 0) return -1;
    return 0;
}

/* Sum of squares over many tensors (global grad norm = sqrt of it). */
static inline int cc_backend_sum_squares_all(cc_backend *be, const float *const *x, const int64_t *n, int count,
                                             double *out) {
    if (be->sum_squares_multi) return be->sum_squares_multi(be, x, n, count, out);
    double total = 0, part = 0;
    for (int i = 0; i < count; i++) {
        if (be->sum_squares(be, x[i], n[i], &part) != 0) return -1;
        total += part;
    }
    *out = total;
    return 0;
}

cc_backend *cc_backend_cpu(void);            /* process-wide singleton */
/* "cpu" or "cuda" (CUDA only in CUDA=1 builds with a GPU present); NULL + error otherwise. */
cc_backend *cc_backend_by_name(const char *name);

#ifdef CLIPC_CUDA
cc_backend *cc_backend_cuda_create(int device); /* engine/cuda/backend_cuda.cu; more in engine/cuda/backend_cuda.h */
#endif

#endif
