/* onnx_export.c — CLIP's vision and text towers as ONNX graphs (opset 17), written with the
 * protobuf encoder of engine/pb_writer.c. The graphs mirror engine/clip.c op for op:
 *
 * vision: Conv(patch, stride patch) → [B, W, G·G] → Transpose → Concat(class row) → + positions →
 *         pre LayerNormalization → blocks → row 0 → post LayerNormalization → MatMul(projectionᵀ)
 * text:   Gather(token embedding, ids) → + positions[0:T] → causal blocks → row of the first
 *         end-of-text id (ArgMax of ids == eot) via GatherND → final LayerNormalization → MatMul
 * block:  x + out(attention(ln1 x)); + fc2(act(fc1(ln2 ·))), attention as Reshape/Transpose/MatMul/
 *         Softmax with the causal mask built from the runtime sequence length (ConstantOfShape + Trilu).
 * Activations: quick_gelu = x·Sigmoid(1.702x), gelu = x/2·(1 + Erf(x/√2)), gelu_tanh with Tanh.
 * Weights are initializers with raw_data; matrices are stored transposed ([in, out]) for MatMul
 * and named "<Hugging Face name>.T". Only the transposed copies are allocated; other tensors are
 * written straight from the model's memory.
 */
#include "engine/onnx_export.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pb_writer.h"
#include "engine/util.h"

#define ONNX_OPSET 17
#define ONNX_IR_VERSION 8 /* the IR version that goes with opset 17 */
#define NAME_MAX_LEN 256

/* ONNX field numbers (onnx.proto) */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER = 2, MODEL_PRODUCER_VERSION = 3, MODEL_DOC = 6, MODEL_GRAPH = 7,
       MODEL_OPSET = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP = 4, NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_T = 5, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_TENSOR = 4, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW = 9 };
enum { ELEM_FLOAT = 1, ELEM_INT64 = 7 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TENSOR_ELEM = 1, TENSOR_SHAPE = 2, SHAPE_DIM = 1,
       DIM_VALUE = 1, DIM_PARAM = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };

typedef struct onnx_graph {
    cc_pb nodes, initializers;
    char **names; /* every generated value name, freed at the end */
    int n_names, cap_names;
    float **buffers; /* transposed weights the initializers point into */
    int n_buffers, cap_buffers;
    int counter, failed;
} onnx_graph;

static int push_pointer(void ***list, int *n, int *cap, void *p) {
    if (*n == *cap) {
        int grown_cap = *cap ? *cap * 2 : 64;
        void **grown = cc_realloc(*list, (size_t)grown_cap * sizeof *grown, "ONNX export");
        if (!grown) return -1;
        *list = grown;
        *cap = grown_cap;
    }
    (*list)[(*n)++] = p;
    return 0;
}

static void graph_free(onnx_graph *g) {
    cc_pb_free(&g->nodes);
    cc_pb_free(&g->initializers);
    for (int i = 0; i < g->n_names; i++) free(g->names[i]);
    for (int i = 0; i < g->n_buffers; i++) free(g->buffers[i]);
    free(g->names);
    free(g->buffers);
}

/* A name kept until the graph is freed; "" when out of memory (the export then fails). */
static const char *keep_name(onnx_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *keep_name(onnx_graph *g, const char *fmt, ...) {
    char buf[NAME_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *copy = cc_strdup(buf);
    if (!copy || push_pointer((void ***)&g->names, &g->n_names, &g->cap_names, copy) != 0) {
        free(copy);
        g->failed = 1;
        return "";
    }
    return copy;
}

/* ---------------------------------------------------------------- tensors and initializers */

static void tensor_header(cc_pb *t, const char *name, int elem, int ndim, const int64_t *dims) {
    for (int d = 0; d < ndim; d++) cc_pb_int(t, TENSOR_DIMS, dims[d]);
    cc_pb_int(t, TENSOR_TYPE, elem);
    if (name) cc_pb_string(t, TENSOR_NAME, name);
}

static int64_t count_of(int ndim, const int64_t *dims) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= dims[d];
    return n;
}

/* raw_data is little-endian: the host's order on every platform clipc builds for. */
static const char *init_f32(onnx_graph *g, const char *name, int ndim, const int64_t *dims, const float *data) {
    cc_pb t;
    cc_pb_init(&t);
    tensor_header(&t, name, ELEM_FLOAT, ndim, dims);
    cc_pb_bytes_ref(&t, TENSOR_RAW, data, (size_t)count_of(ndim, dims) * sizeof(float));
    cc_pb_message(&g->initializers, GRAPH_INITIALIZER, &t);
    return name;
}

static const char *init_param(onnx_graph *g, const cc_tensor *p) {
    return init_f32(g, p->name, p->ndim, p->shape, p->data);
}

/* A [rows, cols] parameter stored as its transpose [cols, rows], for x · Wᵀ as MatMul(x, W.T). */
static const char *init_transposed(onnx_graph *g, const cc_tensor *p) {
    int64_t rows = p->shape[0], cols = p->shape[1];
    float *t = cc_malloc((size_t)(rows * cols) * sizeof(float), p->name);
    if (!t || push_pointer((void ***)&g->buffers, &g->n_buffers, &g->cap_buffers, t) != 0) {
        free(t);
        g->failed = 1;
        return "";
    }
    const float *w = p->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c];
    return init_f32(g, keep_name(g, "%s.T", p->name), 2, (int64_t[]){cols, rows}, t);
}

static const char *const_f32(onnx_graph *g, float value) {
    const char *name = keep_name(g, "const_%d", g->counter++);
    cc_pb t;
    cc_pb_init(&t);
    tensor_header(&t, name, ELEM_FLOAT, 0, NULL);
    cc_pb_bytes(&t, TENSOR_RAW, &value, sizeof value);
    cc_pb_message(&g->initializers, GRAPH_INITIALIZER, &t);
    return name;
}

/* int64 constant: a 1-D list of n values, or a scalar when n < 0 (one value). */
static const char *const_i64(onnx_graph *g, int n, const int64_t *values) {
    const char *name = keep_name(g, "const_%d", g->counter++);
    cc_pb t;
    cc_pb_init(&t);
    int64_t dims[1] = {n};
    tensor_header(&t, name, ELEM_INT64, n < 0 ? 0 : 1, dims);
    cc_pb_bytes(&t, TENSOR_RAW, values, (size_t)(n < 0 ? 1 : n) * sizeof(int64_t));
    cc_pb_message(&g->initializers, GRAPH_INITIALIZER, &t);
    return name;
}

#define I64S(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

/* ---------------------------------------------------------------- attributes and nodes */

static void attr_int(cc_pb *attrs, const char *name, int64_t value) {
    cc_pb a;
    cc_pb_init(&a);
    cc_pb_string(&a, ATTR_NAME, name);
    cc_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INT);
    cc_pb_int(&a, ATTR_I, value);
    cc_pb_message(attrs, NODE_ATTRIBUTE, &a);
}

static void attr_float(cc_pb *attrs, const char *name, float value) {
    cc_pb a;
    cc_pb_init(&a);
    cc_pb_string(&a, ATTR_NAME, name);
    cc_pb_int(&a, ATTR_TYPE, ATTR_TYPE_FLOAT);
    cc_pb_float(&a, ATTR_F, value);
    cc_pb_message(attrs, NODE_ATTRIBUTE, &a);
}

static void attr_ints(cc_pb *attrs, const char *name, int n, const int64_t *values) {
    cc_pb a;
    cc_pb_init(&a);
    cc_pb_string(&a, ATTR_NAME, name);
    cc_pb_int(&a, ATTR_TYPE, ATTR_TYPE_INTS);
    for (int i = 0; i < n; i++) cc_pb_int(&a, ATTR_INTS, values[i]);
    cc_pb_message(attrs, NODE_ATTRIBUTE, &a);
}

/* A one-element float tensor attribute (ConstantOfShape's value). */
static void attr_float_tensor(cc_pb *attrs, const char *name, float value) {
    cc_pb a, t;
    cc_pb_init(&a);
    cc_pb_init(&t);
    tensor_header(&t, NULL, ELEM_FLOAT, 1, (int64_t[]){1});
    cc_pb_bytes(&t, TENSOR_RAW, &value, sizeof value);
    cc_pb_string(&a, ATTR_NAME, name);
    cc_pb_int(&a, ATTR_TYPE, ATTR_TYPE_TENSOR);
    cc_pb_message(&a, ATTR_T, &t);
    cc_pb_message(attrs, NODE_ATTRIBUTE, &a);
}

/* Appends a node with n_in inputs and one output (named `out`, or a fresh name); attrs (may be
 * NULL) holds its attributes and is consumed. Returns the output name. */
static const char *node(onnx_graph *g, const char *op, cc_pb *attrs, const char *out, int n_in, ...) {
    cc_pb n;
    cc_pb_init(&n);
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in; i++) cc_pb_string(&n, NODE_INPUT, va_arg(ap, const char *));
    va_end(ap);
    int id = g->counter++;
    if (!out) out = keep_name(g, "%s_%d", op, id);
    cc_pb_string(&n, NODE_OUTPUT, out);
    char node_name[64];
    snprintf(node_name, sizeof node_name, "%s_node_%d", op, id);
    cc_pb_string(&n, NODE_NAME, node_name);
    cc_pb_string(&n, NODE_OP, op);
    if (attrs) cc_pb_append(&n, attrs);
    cc_pb_message(&g->nodes, GRAPH_NODE, &n);
    return out;
}

#define OP1(g, op, a) node(g, op, NULL, NULL, 1, a)
#define OP2(g, op, a, b) node(g, op, NULL, NULL, 2, a, b)

static const char *layernorm(onnx_graph *g, const char *x, const cc_tensor *w, const cc_tensor *b, float eps) {
    cc_pb attrs;
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", -1);
    attr_float(&attrs, "epsilon", eps);
    return node(g, "LayerNormalization", &attrs, NULL, 3, x, init_param(g, w), init_param(g, b));
}

/* x · Wᵀ + b (b may be NULL) */
static const char *linear(onnx_graph *g, const char *x, const cc_tensor *w, const cc_tensor *b) {
    const char *y = OP2(g, "MatMul", x, init_transposed(g, w));
    return b ? OP2(g, "Add", y, init_param(g, b)) : y;
}

static const char *transpose(onnx_graph *g, const char *x, int n, const int64_t *perm) {
    cc_pb attrs;
    cc_pb_init(&attrs);
    attr_ints(&attrs, "perm", n, perm);
    return node(g, "Transpose", &attrs, NULL, 1, x);
}

static const char *activation(onnx_graph *g, const char *x, cc_act_kind act) {
    if (act == CC_ACT_QUICK_GELU) return OP2(g, "Mul", x, OP1(g, "Sigmoid", OP2(g, "Mul", x, const_f32(g, 1.702f))));
    const char *half_x = OP2(g, "Mul", x, const_f32(g, 0.5f));
    const char *inner;
    if (act == CC_ACT_GELU_ERF) {
        inner = OP1(g, "Erf", OP2(g, "Mul", x, const_f32(g, (float)(1.0 / sqrt(2.0)))));
    } else { /* tanh approximation */
        const char *cube = OP2(g, "Mul", OP2(g, "Mul", x, x), x);
        const char *poly = OP2(g, "Add", x, OP2(g, "Mul", cube, const_f32(g, 0.044715f)));
        inner = OP1(g, "Tanh", OP2(g, "Mul", poly, const_f32(g, (float)sqrt(2.0 / M_PI))));
    }
    return OP2(g, "Mul", half_x, OP2(g, "Add", inner, const_f32(g, 1.0f)));
}

/* x: [B, T, C] -> per-head [B, H, T, Dh] (or [B, H, Dh, T] when keys) */
static const char *split_heads(onnx_graph *g, const char *x, const cc_clip_tower_config *t, int keys) {
    int64_t heads = t->num_heads, head_dim = t->hidden_size / t->num_heads;
    const char *r = OP2(g, "Reshape", x, const_i64(g, I64S(0, 0, heads, head_dim)));
    return keys ? transpose(g, r, I64S(0, 2, 3, 1)) : transpose(g, r, I64S(0, 2, 1, 3));
}

/* mask: NULL, or the [T, T] additive causal mask */
static const char *encoder_layer(onnx_graph *g, const cc_clip_tower_config *t, const cc_clip_layer *l, const char *x,
                                 const char *mask) {
    float scale = 1.0f / sqrtf((float)(t->hidden_size / t->num_heads));
    const char *a = layernorm(g, x, l->ln1_w, l->ln1_b, t->layer_norm_eps);
    const char *q = split_heads(g, linear(g, a, l->q_w, l->q_b), t, 0);
    const char *k = split_heads(g, linear(g, a, l->k_w, l->k_b), t, 1);
    const char *v = split_heads(g, linear(g, a, l->v_w, l->v_b), t, 0);
    const char *scores = OP2(g, "Mul", OP2(g, "MatMul", q, k), const_f32(g, scale));
    if (mask) scores = OP2(g, "Add", scores, mask);
    cc_pb attrs;
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", -1);
    const char *probs = node(g, "Softmax", &attrs, NULL, 1, scores);
    const char *heads = transpose(g, OP2(g, "MatMul", probs, v), I64S(0, 2, 1, 3));
    const char *merged = OP2(g, "Reshape", heads, const_i64(g, I64S(0, 0, t->hidden_size)));
    x = OP2(g, "Add", x, linear(g, merged, l->o_w, l->o_b));
    const char *h = layernorm(g, x, l->ln2_w, l->ln2_b, t->layer_norm_eps);
    h = activation(g, linear(g, h, l->fc1_w, l->fc1_b), t->act);
    return OP2(g, "Add", x, linear(g, h, l->fc2_w, l->fc2_b));
}

/* features -> features / max(||features||, 1e-12), per row (clipc's L2 normalisation) */
static const char *l2_normalize(onnx_graph *g, const char *features, const char *out) {
    cc_pb attrs;
    cc_pb_init(&attrs);
    attr_ints(&attrs, "axes", I64S(1));
    attr_int(&attrs, "keepdims", 1);
    const char *norm = node(g, "ReduceL2", &attrs, NULL, 1, features);
    return node(g, "Div", NULL, out, 2, features, OP2(g, "Max", norm, const_f32(g, 1e-12f)));
}

/* ---------------------------------------------------------------- the towers */

static void vision_graph(onnx_graph *g, const cc_clip_model *m, const char *pixels) {
    const cc_clip_tower_config *t = &m->config.vision;
    int64_t width = t->hidden_size;
    cc_pb attrs;
    cc_pb_init(&attrs);
    attr_ints(&attrs, "kernel_shape", I64S(t->patch_size, t->patch_size));
    attr_ints(&attrs, "strides", I64S(t->patch_size, t->patch_size));
    const char *patches = node(g, "Conv", &attrs, NULL, 2, pixels, init_param(g, m->patch_embedding));
    patches = OP2(g, "Reshape", patches, const_i64(g, I64S(0, width, -1)));
    patches = transpose(g, patches, I64S(0, 2, 1)); /* [B, G·G, W] */
    /* the class row, broadcast to [B, 1, W] */
    const char *class_row = init_f32(g, m->class_embedding->name, 3, (int64_t[]){1, 1, width}, m->class_embedding->data);
    cc_pb_init(&attrs);
    attr_int(&attrs, "end", 1);
    const char *batch = node(g, "Shape", &attrs, NULL, 1, pixels);
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", 0);
    const char *expand_to = node(g, "Concat", &attrs, NULL, 2, batch, const_i64(g, I64S(1, 1)));
    const char *classes = OP2(g, "Expand", class_row, expand_to);
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", 1);
    const char *x = node(g, "Concat", &attrs, NULL, 2, classes, patches);
    x = OP2(g, "Add", x, init_param(g, m->vision_position_embedding));
    x = layernorm(g, x, m->pre_ln_w, m->pre_ln_b, t->layer_norm_eps);
    for (int i = 0; i < t->num_layers; i++) x = encoder_layer(g, t, &m->vision_layers[i], x, NULL);
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", 1);
    const char *pooled = node(g, "Gather", &attrs, NULL, 2, x, const_i64(g, -1, (int64_t[]){0}));
    pooled = layernorm(g, pooled, m->post_ln_w, m->post_ln_b, t->layer_norm_eps);
    const char *features = node(g, "MatMul", NULL, "image_features", 2, pooled, init_transposed(g, m->visual_projection));
    l2_normalize(g, features, "image_embeds");
}

static void text_graph(onnx_graph *g, const cc_clip_model *m, const char *ids, int eot_token_id) {
    const cc_clip_tower_config *t = &m->config.text;
    cc_pb attrs;
    const char *x = OP2(g, "Gather", init_param(g, m->token_embedding), ids); /* [B, T, C] */
    cc_pb_init(&attrs);
    attr_int(&attrs, "start", 1);
    attr_int(&attrs, "end", 2);
    const char *length = node(g, "Shape", &attrs, NULL, 1, ids); /* [T] */
    const char *positions = node(g, "Slice", NULL, NULL, 4, init_param(g, m->text_position_embedding),
                                 const_i64(g, I64S(0)), length, const_i64(g, I64S(0)));
    x = OP2(g, "Add", x, positions);
    /* causal mask [T, T]: 0 on and below the diagonal, the lowest float above it */
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", 0);
    const char *square = node(g, "Concat", &attrs, NULL, 2, length, length);
    cc_pb_init(&attrs);
    attr_float_tensor(&attrs, "value", -3.4028234663852886e38f);
    const char *full = node(g, "ConstantOfShape", &attrs, NULL, 1, square);
    cc_pb_init(&attrs);
    attr_int(&attrs, "upper", 1);
    const char *mask = node(g, "Trilu", &attrs, NULL, 2, full, const_i64(g, -1, (int64_t[]){1}));
    for (int i = 0; i < t->num_layers; i++) x = encoder_layer(g, t, &m->text_layers[i], x, mask);
    /* pool: first position of the end-of-text id in each row */
    const char *is_eot = OP2(g, "Equal", ids, const_i64(g, -1, (int64_t[]){eot_token_id}));
    cc_pb_init(&attrs);
    attr_int(&attrs, "to", ELEM_FLOAT);
    const char *as_float = node(g, "Cast", &attrs, NULL, 1, is_eot);
    cc_pb_init(&attrs);
    attr_int(&attrs, "axis", 1);
    attr_int(&attrs, "keepdims", 1);
    attr_int(&attrs, "select_last_index", 0);
    const char *eot_pos = node(g, "ArgMax", &attrs, NULL, 1, as_float); /* [B, 1] */
    cc_pb_init(&attrs);
    attr_int(&attrs, "batch_dims", 1);
    const char *pooled = node(g, "GatherND", &attrs, NULL, 2, x, eot_pos); /* [B, C] */
    pooled = layernorm(g, pooled, m->final_ln_w, m->final_ln_b, t->layer_norm_eps);
    const char *features = node(g, "MatMul", NULL, "text_features", 2, pooled, init_transposed(g, m->text_projection));
    l2_normalize(g, features, "text_embeds");
}

/* ---------------------------------------------------------------- model files */

/* ValueInfoProto: dims < 0 are symbolic, named by dim_names[d]. */
static void value_info(cc_pb *graph, int field, const char *name, int elem, int ndim, const int64_t *dims,
                       const char *const *dim_names) {
    cc_pb shape, tensor, type, info;
    cc_pb_init(&shape);
    cc_pb_init(&tensor);
    cc_pb_init(&type);
    cc_pb_init(&info);
    for (int d = 0; d < ndim; d++) {
        cc_pb dim;
        cc_pb_init(&dim);
        if (dims[d] < 0) cc_pb_string(&dim, DIM_PARAM, dim_names[d]);
        else cc_pb_int(&dim, DIM_VALUE, dims[d]);
        cc_pb_message(&shape, SHAPE_DIM, &dim);
    }
    cc_pb_int(&tensor, TENSOR_ELEM, elem);
    cc_pb_message(&tensor, TENSOR_SHAPE, &shape);
    cc_pb_message(&type, TYPE_TENSOR, &tensor);
    cc_pb_string(&info, VALUE_NAME, name);
    cc_pb_message(&info, VALUE_TYPE, &type);
    cc_pb_message(graph, field, &info);
}

static void metadata(cc_pb *model, const char *key, const char *value) {
    cc_pb entry;
    cc_pb_init(&entry);
    cc_pb_string(&entry, ENTRY_KEY, key);
    cc_pb_string(&entry, ENTRY_VALUE, value);
    cc_pb_message(model, MODEL_METADATA, &entry);
}

static int check_host(const cc_clip_model *m) {
    for (int i = 0; i < m->n_params; i++)
        if (!m->params[i]->data || (m->params[i]->backend && !m->params[i]->backend->host_memory) ||
            m->params[i]->dtype != CC_F32) {
            cc_set_error("ONNX export: parameter %s is not f32 in host memory (load the model on the CPU)",
                         m->params[i]->name);
            return -1;
        }
    return 0;
}

/* Wraps the graph in a ModelProto and writes it. */
static int write_model(onnx_graph *g, const char *graph_name, cc_pb *inputs_outputs, const char *doc,
                       cc_pb *extra_metadata, const char *path) {
    cc_pb graph, model, opset;
    cc_pb_init(&graph);
    cc_pb_init(&model);
    cc_pb_init(&opset);
    cc_pb_append(&graph, &g->nodes);
    cc_pb_string(&graph, GRAPH_NAME, graph_name);
    cc_pb_append(&graph, &g->initializers);
    cc_pb_append(&graph, inputs_outputs);
    cc_pb_int(&model, MODEL_IR_VERSION, ONNX_IR_VERSION);
    cc_pb_string(&model, MODEL_PRODUCER, "clipc");
    cc_pb_string(&model, MODEL_PRODUCER_VERSION, "0.1.0");
    cc_pb_string(&model, MODEL_DOC, doc);
    cc_pb_string(&opset, OPSET_DOMAIN, "");
    cc_pb_int(&opset, OPSET_VERSION, ONNX_OPSET);
    cc_pb_message(&model, MODEL_OPSET, &opset);
    metadata(&model, "embeds_normalized", "true");
    cc_pb_append(&model, extra_metadata);
    cc_pb_message(&model, MODEL_GRAPH, &graph);
    int status = -1;
    if (g->failed || cc_pb_failed(&model)) cc_set_error("%s: out of memory building the ONNX graph", path);
    else status = cc_pb_write(&model, path);
    cc_pb_free(&model);
    return status;
}

int cc_onnx_export_vision(const cc_clip_model *m, const char *path) {
    if (check_host(m) != 0) return -1;
    const cc_clip_config *c = &m->config;
    onnx_graph g = {0};
    vision_graph(&g, m, "pixel_values");
    cc_pb io;
    cc_pb_init(&io);
    const char *batch_name[] = {"batch", NULL, NULL, NULL};
    value_info(&io, GRAPH_INPUT, "pixel_values", ELEM_FLOAT, 4,
               (int64_t[]){-1, c->vision.num_channels, c->vision.image_size, c->vision.image_size}, batch_name);
    value_info(&io, GRAPH_OUTPUT, "image_embeds", ELEM_FLOAT, 2, (int64_t[]){-1, c->projection_dim}, batch_name);
    value_info(&io, GRAPH_OUTPUT, "image_features", ELEM_FLOAT, 2, (int64_t[]){-1, c->projection_dim}, batch_name);
    cc_pb meta;
    cc_pb_init(&meta);
    char value[32];
    snprintf(value, sizeof value, "%d", c->vision.image_size);
    metadata(&meta, "image_size", value);
    int status = write_model(&g, "clip_vision", &io,
                             "CLIP vision tower (clipc export): pixel_values -> image_embeds (L2-normalised), "
                             "image_features (projection)", &meta, path);
    graph_free(&g);
    return status;
}

int cc_onnx_export_text(const cc_clip_model *m, int eot_token_id, const char *path) {
    if (check_host(m) != 0) return -1;
    if (eot_token_id < 0 || eot_token_id >= m->config.text.vocab_size) {
        cc_set_error("ONNX export: end-of-text id %d is outside the vocabulary of %d", eot_token_id,
                     m->config.text.vocab_size);
        return -1;
    }
    onnx_graph g = {0};
    text_graph(&g, m, "input_ids", eot_token_id);
    cc_pb io;
    cc_pb_init(&io);
    const char *names[] = {"batch", "sequence"};
    value_info(&io, GRAPH_INPUT, "input_ids", ELEM_INT64, 2, (int64_t[]){-1, -1}, names);
    value_info(&io, GRAPH_OUTPUT, "text_embeds", ELEM_FLOAT, 2, (int64_t[]){-1, m->config.projection_dim}, names);
    value_info(&io, GRAPH_OUTPUT, "text_features", ELEM_FLOAT, 2, (int64_t[]){-1, m->config.projection_dim}, names);
    cc_pb meta;
    cc_pb_init(&meta);
    char value[32];
    snprintf(value, sizeof value, "%d", eot_token_id);
    metadata(&meta, "eot_token_id", value);
    snprintf(value, sizeof value, "%d", m->config.text.max_positions);
    metadata(&meta, "context_length", value);
    int status = write_model(&g, "clip_text", &io,
                             "CLIP text tower (clipc export): input_ids (clip.tokenize, any length up to the "
                             "context) -> text_embeds (L2-normalised), text_features (projection)", &meta, path);
    graph_free(&g);
    return status;
}

int cc_onnx_export(const cc_clip_model *m, int eot_token_id, const char *out_dir) {
    if (cc_mkdir_p(out_dir) != 0) return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/vision.onnx", out_dir);
    if (cc_onnx_export_vision(m, path) != 0) return -1;
    snprintf(path, sizeof path, "%s/text.onnx", out_dir);
    return cc_onnx_export_text(m, eot_token_id, path);
}
