/* graph.c — the computation graph: node records, topological order, memory planning, execution.
 *
 * Story of a graph:
 *  1. Op constructors (ops.c) append node records to g->nodes; nothing runs.
 *  2. cc_graph_build walks back from the outputs and lists the graph-owned nodes in a topological
 *     order (g->order). Leaves owned outside the graph (parameters) are not listed: their data is
 *     already in place.
 *  3. cc_graph_backward (autograd.c) appends gradient nodes and rebuilds the order. With recompute
 *     on, segments declared by cc_graph_checkpoint are re-run from their input during backward
 *     (clones ordered after the segment output's gradient through their `after` link), so their
 *     interior activations die during the forward pass.
 *  4. cc_graph_plan computes, for every node, the last position that reads its memory (views
 *     extend the life of the tensor they view), then walks the order allocating each result from
 *     one arena with a best-fit free list and releasing blocks after their last use. Inputs and
 *     outputs are never released. The arena size is the peak; the sum of all sizes is reported as
 *     the naive figure.
 *  5. cc_graph_compute runs the nodes in order on the backend (one node at a time; the kernels
 *     are multi-threaded inside).
 */
#include "engine/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#define ARENA_ALIGN 64 /* bytes: cache line and AVX-512 vector */
#define GRAPH_ERROR_MAX 1024

struct cc_graph {
    cc_tensor **nodes; /* every record this graph owns, in creation order */
    int n_nodes, cap_nodes;
    cc_tensor **order; /* graph-owned nodes to run, topological */
    int n_order;
    cc_tensor **outputs;
    int n_outputs;
    int recompute;                 /* cc_graph_checkpoint records segments only when set */
    int matmul_bf16;               /* matmuls recorded from now on multiply in bf16 */
    cc_tensor **segments;          /* pairs: input, output */
    int n_segments, cap_segments;
    char error[GRAPH_ERROR_MAX];
    cc_backend *backend;
    void *arena;
    size_t arena_bytes, naive_bytes;
    int profile;
    double op_seconds[CC_OP_COUNT];
    int op_calls[CC_OP_COUNT];
};

cc_graph *cc_graph_new(void) {
    cc_graph *g = cc_calloc(1, sizeof *g, "graph");
    if (g && getenv("CLIPC_PROFILE")) g->profile = 1;
    return g;
}

void cc_graph_free(cc_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i]);
    if (g->arena && g->backend) g->backend->free(g->backend, g->arena);
    free(g->nodes);
    free(g->order);
    free(g->outputs);
    free(g->segments);
    free(g);
}

void cc_graph_set_recompute(cc_graph *g, int enable) { g->recompute = enable; }

void cc_graph_set_matmul_bf16(cc_graph *g, int enable) { g->matmul_bf16 = enable; }
int cc_graph_matmul_bf16(const cc_graph *g) { return g->matmul_bf16; }

void cc_graph_checkpoint(cc_graph *g, cc_tensor *input, cc_tensor *output) {
    if (!g->recompute || !input || !output || input == output || g->error[0]) return;
    if (g->n_segments == g->cap_segments) {
        int cap = g->cap_segments ? g->cap_segments * 2 : 32;
        cc_tensor **grown = realloc(g->segments, (size_t)cap * 2 * sizeof *grown);
        if (!grown) {
            cc_graph_fail(g, "out of memory recording a checkpoint segment");
            return;
        }
        g->segments = grown;
        g->cap_segments = cap;
    }
    g->segments[2 * g->n_segments] = input;
    g->segments[2 * g->n_segments + 1] = output;
    g->n_segments++;
}

int cc_graph_n_segments(const cc_graph *g) { return g->n_segments; }

void cc_graph_segment(const cc_graph *g, int i, cc_tensor **input, cc_tensor **output) {
    *input = g->segments[2 * i];
    *output = g->segments[2 * i + 1];
}

const char *cc_graph_error(const cc_graph *g) { return g->error[0] ? g->error : NULL; }

cc_tensor *cc_graph_fail(cc_graph *g, const char *fmt, ...) {
    if (!g->error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->error, sizeof g->error, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

cc_tensor *cc_graph_new_node(cc_graph *g, cc_op op, cc_dtype dtype, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > CC_MAX_DIMS) return cc_graph_fail(g, "%s: %d dims (at most %d)", cc_op_name(op), ndim, CC_MAX_DIMS);
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        cc_tensor **grown = realloc(g->nodes, (size_t)cap * sizeof *grown);
        if (!grown) return cc_graph_fail(g, "out of memory growing the graph to %d nodes", cap);
        g->nodes = grown;
        g->cap_nodes = cap;
    }
    cc_tensor *t = calloc(1, sizeof *t);
    if (!t) return cc_graph_fail(g, "out of memory creating a %s node", cc_op_name(op));
    t->op = op;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    cc_set_contiguous_strides(t);
    t->order = -1;
    t->plan_offset = -1;
    g->nodes[g->n_nodes++] = t;
    return t;
}

cc_tensor *cc_input(cc_graph *g, cc_dtype dtype, int ndim, const int64_t *shape, const char *name) {
    cc_tensor *t = cc_graph_new_node(g, CC_OP_NONE, dtype, ndim, shape);
    if (!t) return NULL;
    t->flags = CC_FLAG_INPUT;
    if (name) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

/* ---- topological order ---- */

static int owned_by(const cc_graph *g, const cc_tensor *t) {
    /* graph-owned records have no EXTERNAL flag; standalone tensors always do */
    (void)g;
    return !(t->flags & CC_FLAG_EXTERNAL);
}

/* Iterative post-order DFS (graphs are thousands of nodes deep in backward). */
static int collect(cc_graph *g, cc_tensor *root) {
    typedef struct { cc_tensor *node; int next_src; } frame;
    int cap = 64, depth = 0;
    frame *stack = malloc((size_t)cap * sizeof *stack);
    if (!stack) {
        cc_graph_fail(g, "out of memory ordering the graph");
        return -1;
    }
    stack[depth++] = (frame){root, 0};
    while (depth > 0) {
        frame *top = &stack[depth - 1];
        cc_tensor *node = top->node;
        if (node->order == -2) { /* already listed (mark -2 = visited) */
            depth--;
            continue;
        }
        if (top->next_src <= CC_MAX_SRC) { /* slot 0: the `after` dependency, then the sources */
            int slot = top->next_src++;
            cc_tensor *src = slot == 0 ? node->after : node->src[slot - 1];
            if (src && owned_by(g, src) && src->order != -2) {
                if (depth == cap) {
                    cap *= 2;
                    frame *grown = realloc(stack, (size_t)cap * sizeof *grown);
                    if (!grown) {
                        free(stack);
                        cc_graph_fail(g, "out of memory ordering the graph");
                        return -1;
                    }
                    stack = grown;
                }
                stack[depth++] = (frame){src, 0};
            }
            continue;
        }
        node->order = -2;
        g->order[g->n_order++] = node;
        depth--;
    }
    free(stack);
    return 0;
}

static int build_order(cc_graph *g) {
    free(g->order);
    g->order = malloc((size_t)(g->n_nodes + 1) * sizeof *g->order);
    if (!g->order) {
        cc_graph_fail(g, "out of memory ordering the graph");
        return -1;
    }
    g->n_order = 0;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->order = -1;
    for (int i = 0; i < g->n_outputs; i++)
        if (owned_by(g, g->outputs[i]) && collect(g, g->outputs[i]) != 0) return -1;
    for (int i = 0; i < g->n_order; i++) g->order[i]->order = i;
    return 0;
}

static int add_output(cc_graph *g, cc_tensor *t) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == t) return 0;
    cc_tensor **grown = realloc(g->outputs, (size_t)(g->n_outputs + 1) * sizeof *grown);
    if (!grown) {
        cc_graph_fail(g, "out of memory");
        return -1;
    }
    g->outputs = grown;
    g->outputs[g->n_outputs++] = t;
    t->flags |= CC_FLAG_OUTPUT;
    return 0;
}

int cc_graph_add_output(cc_graph *g, cc_tensor *t) { return add_output(g, t); }

int cc_graph_build(cc_graph *g, cc_tensor *const *outputs, int n_outputs) {
    if (g->error[0]) {
        cc_set_error("%s", g->error);
        return -1;
    }
    for (int i = 0; i < n_outputs; i++) {
        if (!outputs[i]) {
            cc_set_error("graph build: output %d is NULL", i);
            return -1;
        }
        if (add_output(g, outputs[i]) != 0) break;
    }
    if (g->error[0] || build_order(g) != 0) {
        cc_set_error("%s", g->error);
        return -1;
    }
    return 0;
}

int cc_graph_rebuild_order(cc_graph *g) {
    if (g->error[0] || build_order(g) != 0) {
        cc_set_error("%s", g->error);
        return -1;
    }
    return 0;
}

/* ---- memory plan ---- */

typedef struct { size_t offset, size; } block;
typedef struct {
    block *free_blocks; /* sorted by offset, merged when adjacent */
    int n_free, cap_free;
    size_t end;         /* high-water mark = arena size needed */
} arena_plan;

static size_t align_up(size_t n) { return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1); }

static size_t plan_alloc(arena_plan *p, size_t size) {
    size = align_up(size ? size : 1);
    int best = -1;
    for (int i = 0; i < p->n_free; i++)
        if (p->free_blocks[i].size >= size && (best < 0 || p->free_blocks[i].size < p->free_blocks[best].size)) best = i;
    if (best >= 0) {
        size_t offset = p->free_blocks[best].offset;
        p->free_blocks[best].offset += size;
        p->free_blocks[best].size -= size;
        if (p->free_blocks[best].size == 0) {
            memmove(&p->free_blocks[best], &p->free_blocks[best + 1], (size_t)(p->n_free - best - 1) * sizeof(block));
            p->n_free--;
        }
        return offset;
    }
    /* grow the arena; a free block at the very end can be extended */
    if (p->n_free > 0) {
        block *last = &p->free_blocks[p->n_free - 1];
        if (last->offset + last->size == p->end) {
            size_t offset = last->offset;
            p->end = offset + size;
            p->n_free--;
            return offset;
        }
    }
    size_t offset = p->end;
    p->end += size;
    return offset;
}

static int plan_release(arena_plan *p, size_t offset, size_t size) {
    size = align_up(size ? size : 1);
    if (p->n_free == p->cap_free) {
        int cap = p->cap_free ? p->cap_free * 2 : 64;
        block *grown = realloc(p->free_blocks, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        p->free_blocks = grown;
        p->cap_free = cap;
    }
    int at = 0;
    while (at < p->n_free && p->free_blocks[at].offset < offset) at++;
    memmove(&p->free_blocks[at + 1], &p->free_blocks[at], (size_t)(p->n_free - at) * sizeof(block));
    p->free_blocks[at] = (block){offset, size};
    p->n_free++;
    /* merge with the next, then with the previous */
    if (at + 1 < p->n_free && p->free_blocks[at].offset + p->free_blocks[at].size == p->free_blocks[at + 1].offset) {
        p->free_blocks[at].size += p->free_blocks[at + 1].size;
        memmove(&p->free_blocks[at + 1], &p->free_blocks[at + 2], (size_t)(p->n_free - at - 2) * sizeof(block));
        p->n_free--;
    }
    if (at > 0 && p->free_blocks[at - 1].offset + p->free_blocks[at - 1].size == p->free_blocks[at].offset) {
        p->free_blocks[at - 1].size += p->free_blocks[at].size;
        memmove(&p->free_blocks[at], &p->free_blocks[at + 1], (size_t)(p->n_free - at - 1) * sizeof(block));
        p->n_free--;
    }
    return 0;
}

/* The tensor whose memory t uses: follows views to the record that owns the bytes. */
static cc_tensor *memory_base(cc_tensor *t) {
    while (t->op == CC_OP_VIEW || t->op == CC_OP_ACCUMULATE) t = t->src[0];
    return t;
}

static int needs_arena(const cc_tensor *t) {
    return t->op != CC_OP_VIEW && t->op != CC_OP_ACCUMULATE && !(t->flags & CC_FLAG_EXTERNAL) &&
           (t->op != CC_OP_NONE || (t->flags & CC_FLAG_INPUT));
}

int cc_graph_plan(cc_graph *g, cc_backend *backend) {
    if (g->error[0]) {
        cc_set_error("%s", g->error);
        return -1;
    }
    const int forever = g->n_order; /* inputs and outputs live past the last node */
    for (int i = 0; i < g->n_order; i++) g->order[i]->last_use = -1;
    for (int i = 0; i < g->n_order; i++) {
        cc_tensor *node = g->order[i];
        if (node->flags & (CC_FLAG_OUTPUT | CC_FLAG_INPUT)) memory_base(node)->last_use = forever;
        for (int s = 0; s < CC_MAX_SRC; s++) {
            if (!node->src[s]) continue;
            cc_tensor *base = memory_base(node->src[s]);
            if (base->order >= 0 && base->last_use < i) base->last_use = i;
        }
    }
    arena_plan plan = {0};
    g->naive_bytes = 0;
    /* inputs first: the caller writes them before compute starts */
    for (int i = 0; i < g->n_order; i++) {
        cc_tensor *node = g->order[i];
        if (node->op == CC_OP_NONE && (node->flags & CC_FLAG_INPUT)) {
            node->plan_offset = (int64_t)plan_alloc(&plan, cc_nbytes(node));
            g->naive_bytes += align_up(cc_nbytes(node));
        }
    }
    for (int i = 0; i < g->n_order; i++) {
        cc_tensor *node = g->order[i];
        if (needs_arena(node) && node->op != CC_OP_NONE) {
            node->plan_offset = (int64_t)plan_alloc(&plan, cc_nbytes(node));
            g->naive_bytes += align_up(cc_nbytes(node));
        }
        /* release everything whose last reader is this node (a node never frees its own result
         * before it is computed, so results never alias their sources) */
        for (int s = 0; s < CC_MAX_SRC; s++) {
            if (!node->src[s]) continue;
            cc_tensor *base = memory_base(node->src[s]);
            if (base->order >= 0 && base->last_use == i && base->plan_offset >= 0 && needs_arena(base)) {
                plan_release(&plan, (size_t)base->plan_offset, cc_nbytes(base));
                base->last_use = -2; /* released */
            }
        }
        /* a result nobody reads is released at once (unless it is an output) */
        if (needs_arena(node) && node->last_use == -1 && node->plan_offset >= 0) {
            plan_release(&plan, (size_t)node->plan_offset, cc_nbytes(node));
            node->last_use = -2;
        }
    }
    free(plan.free_blocks);
    if (g->arena && g->backend) g->backend->free(g->backend, g->arena);
    g->arena = NULL;
    g->backend = backend;
    g->arena_bytes = plan.end;
    if (plan.end > 0) {
        g->arena = backend->alloc(backend, plan.end);
        if (!g->arena) {
            cc_prefix_error("graph plan (%zu bytes of activations)", plan.end);
            return -1;
        }
    }
    for (int i = 0; i < g->n_order; i++) {
        cc_tensor *node = g->order[i];
        node->backend = backend;
        if (node->plan_offset >= 0) {
            node->data = (char *)g->arena + node->plan_offset;
        } else if (node->op == CC_OP_VIEW) {
            cc_tensor *src = node->src[0];
            if (!src->data) {
                cc_set_error("graph plan: view %s of a tensor without data (%s)", node->name, src->name);
                return -1;
            }
            node->data = (char *)src->data + node->view_offset * (int64_t)cc_dtype_size(src->dtype);
        } else if (node->op == CC_OP_ACCUMULATE) {
            node->data = node->src[0]->data;
        }
    }
    return 0;
}

/* ---- execution ---- */

int cc_graph_compute(cc_graph *g) {
    cc_backend *be = g->backend;
    if (!be) {
        cc_set_error("graph compute: the graph has not been planned");
        return -1;
    }
    if (be->compute_graph) return be->compute_graph(be, g);
    for (int i = 0; i < g->n_order; i++) {
        cc_tensor *node = g->order[i];
        if (node->op == CC_OP_NONE || node->op == CC_OP_VIEW) continue;
        double start = g->profile ? cc_now() : 0;
        if (be->compute_node(be, node) != 0) {
            cc_prefix_error("%s (%s)", cc_op_name(node->op), node->name[0] ? node->name : "unnamed");
            return -1;
        }
        if (g->profile) {
            if (be->synchronize) be->synchronize(be);
            g->op_seconds[node->op] += cc_now() - start;
            g->op_calls[node->op]++;
        }
    }
    return be->synchronize ? be->synchronize(be) : 0;
}

int cc_graph_n_nodes(const cc_graph *g) { return g->n_order; }
cc_tensor *cc_graph_node(const cc_graph *g, int i) { return (i >= 0 && i < g->n_order) ? g->order[i] : NULL; }
size_t cc_graph_peak_bytes(const cc_graph *g) { return g->arena_bytes; }
size_t cc_graph_naive_bytes(const cc_graph *g) { return g->naive_bytes; }
cc_backend *cc_graph_backend(const cc_graph *g) { return g->backend; }
void cc_graph_set_profile(cc_graph *g, int enable) { g->profile = enable; }

void cc_graph_print_profile(const cc_graph *g, FILE *out) {
    double total = 0;
    for (int op = 0; op < CC_OP_COUNT; op++) total += g->op_seconds[op];
    fprintf(out, "%-24s %8s %10s %6s\n", "op", "calls", "ms", "%");
    for (int op = 0; op < CC_OP_COUNT; op++)
        if (g->op_calls[op])
            fprintf(out, "%-24s %8d %10.2f %5.1f%%\n", cc_op_name((cc_op)op), g->op_calls[op], 1e3 * g->op_seconds[op],
                    total > 0 ? 100.0 * g->op_seconds[op] / total : 0.0);
}

int cc_tensor_upload(cc_tensor *t, const void *host_data) {
    if (!t->data) {
        cc_set_error("upload into %s: tensor has no memory (plan the graph first)", t->name);
        return -1;
    }
    size_t nbytes = cc_nbytes(t);
    if (t->backend && !t->backend->host_memory) return t->backend->upload(t->backend, t->data, host_data, nbytes);
    memcpy(t->data, host_data, nbytes);
    return 0;
}

int cc_tensor_download(const cc_tensor *t, void *host_data) {
    if (!t->data) {
        cc_set_error("download of %s: tensor has no memory", t->name);
        return -1;
    }
    if (!cc_is_contiguous(t)) {
        cc_set_error("download of %s: tensor is a strided view; make it contiguous first", t->name);
        return -1;
    }
    size_t nbytes = cc_nbytes(t);
    if (t->backend && !t->backend->host_memory) return t->backend->download(t->backend, host_data, t->data, nbytes);
    memcpy(host_data, t->data, nbytes);
    return 0;
}
