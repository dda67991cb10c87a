/* backend_cpu.c — the CPU backend: host memory and one switch from op to kernel.
 * Kernels live in kernels/cpu_ops.c (and kernels/gemm.c for matmul); this file only unpacks a
 * node's shapes and strides into kernel arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/util.h"
#include "kernels/cpu_ops.h"
#include "kernels/gemm.h"

static void *cpu_alloc(cc_backend *be, size_t nbytes) {
    (void)be;
    return cc_malloc_aligned(nbytes, "CPU tensor memory");
}

static void cpu_free(cc_backend *be, void *ptr) {
    (void)be;
    cc_free_aligned(ptr);
}

static int cpu_copy(cc_backend *be, void *dst, const void *src, size_t nbytes) {
    (void)be;
    memmove(dst, src, nbytes);
    return 0;
}

static int cpu_zero(cc_backend *be, void *dst, size_t nbytes) {
    (void)be;
    memset(dst, 0, nbytes);
    return 0;
}

#define F(t) ((float *)(t)->data)
#define I(t) ((const int32_t *)(t)->data)

/* One operand of a batched matmul: the matrix for batch index b and how to read it. */
typedef struct {
    int64_t rows, cols; /* as stored */
    int64_t ld;         /* row stride of the stored matrix */
    int trans;          /* effective transpose flag for the GEMM call */
    int64_t batch_stride[2];
} matmul_operand;

static void describe_operand(const cc_tensor *t, int trans, matmul_operand *op) {
    int nd = t->ndim;
    if (t->stride[nd - 1] == 1) {
        op->ld = t->stride[nd - 2];
        op->trans = trans;
    } else { /* unit stride along the row dim: the stored matrix is the transpose */
        op->ld = t->stride[nd - 1];
        op->trans = !trans;
    }
    if (op->ld < 1) op->ld = 1;
    op->batch_stride[0] = nd >= 3 ? t->stride[nd - 3] : 0;
    op->batch_stride[1] = nd >= 4 ? t->stride[nd - 4] : 0;
}

static int compute_matmul(cc_tensor *node) {
    const cc_tensor *a = node->src[0], *b = node->src[1];
    int nd = node->ndim;
    int64_t M = node->shape[nd - 2], N = node->shape[nd - 1];
    int64_t K = node->iparams[0] ? a->shape[a->ndim - 2] : a->shape[a->ndim - 1];
    matmul_operand oa, ob;
    describe_operand(a, node->iparams[0], &oa);
    describe_operand(b, node->iparams[1], &ob);
    if (b->ndim == 2) ob.batch_stride[0] = ob.batch_stride[1] = 0; /* broadcast */
    /* a weight pre-packed for inference (cc_clip_prepack): x · Wᵀ reads the packed copy */
    const cc_gemm_packed *packed = b->packed;
    if (packed && (b->ndim != 2 || !ob.trans || ob.ld != K || cc_gemm_packed_k(packed) != K || cc_gemm_packed_n(packed) != N))
        packed = NULL;
    int64_t n0 = nd >= 4 ? node->shape[nd - 4] : 1, n1 = nd >= 3 ? node->shape[nd - 3] : 1;
    /* ldc = N: the result is contiguous */
    for (int64_t i0 = 0; i0 < n0; i0++)
        for (int64_t i1 = 0; i1 < n1; i1++) {
            const float *pa = F(a) + i0 * oa.batch_stride[1] + i1 * oa.batch_stride[0];
            const float *pb = F(b) + i0 * ob.batch_stride[1] + i1 * ob.batch_stride[0];
            float *pc = F(node) + (i0 * n1 + i1) * M * N;
            if (packed) cc_sgemm_packed(oa.trans, M, node->fparams[0], pa, oa.ld, packed, 0.0f, pc, N);
            else (node->iparams[2] ? cc_sgemm_bf16 : cc_sgemm)(oa.trans, ob.trans, M, N, K, node->fparams[0], pa, oa.ld,
                                                                  pb, ob.ld, 0.0f, pc, N);
        }
    return 0;
}

static int compute_attention(cc_tensor *node, int backward) {
    const cc_tensor *q = node->src[backward ? 1 : 0], *k = node->src[backward ? 2 : 1], *v = node->src[backward ? 3 : 2];
    cc_attention_shape shape = {
        .batch = q->shape[0], .seq = q->shape[1], .width = q->shape[2], .n_heads = node->iparams[0],
        .q_row_stride = q->stride[1], .k_row_stride = k->stride[1], .v_row_stride = v->stride[1],
        .scale = node->fparams[0], .causal = node->iparams[1],
    };
    if (!backward) {
        cc_cpu_attention_forward(&shape, F(q), F(k), F(v), F(node));
    } else {
        int64_t per = shape.batch * shape.seq * shape.width;
        cc_cpu_attention_backward(&shape, F(node->src[0]), F(q), F(k), F(v), F(node), F(node) + per, F(node) + 2 * per);
    }
    return 0;
}

static int cpu_compute_node(cc_backend *be, cc_tensor *node) {
    (void)be;
    cc_tensor *x = node->src[0], *y = node->src[1], *z = node->src[2];
    int64_t n = cc_nelements(node);
    int64_t width = node->ndim ? node->shape[node->ndim - 1] : 1;
    int64_t rows = width ? n / width : 0;
    switch (node->op) {
    case CC_OP_NONE:
    case CC_OP_VIEW: return 0;
    case CC_OP_CONT: cc_cpu_copy_strided(F(x), x->shape, x->stride, x->ndim, F(node)); return 0;
    case CC_OP_MATMUL: return compute_matmul(node);
    case CC_OP_ADD: cc_cpu_add(F(x), F(y), F(node), n, cc_nelements(y), node->fparams[0]); return 0;
    case CC_OP_MUL: cc_cpu_mul(F(x), F(y), F(node), n); return 0;
    case CC_OP_SCALE: cc_cpu_scale(F(x), F(node), n, node->fparams[0]); return 0;
    case CC_OP_MUL_SCALAR: cc_cpu_scale(F(x), F(node), n, F(y)[0]); return 0;
    case CC_OP_EXP: cc_cpu_exp(F(x), F(node), n); return 0;
    case CC_OP_FILL: cc_cpu_fill(F(node), n, node->fparams[0]); return 0;
    case CC_OP_CONCAT:
        memcpy(F(node), F(x), cc_nbytes(x));
        memcpy(F(node) + cc_nelements(x), F(y), cc_nbytes(y));
        return 0;
    case CC_OP_LAYERNORM: cc_cpu_layernorm_forward(F(x), F(y), F(z), F(node), rows, width, node->fparams[0]); return 0;
    case CC_OP_SOFTMAX:
        cc_cpu_softmax_forward(F(x), F(node), rows, width, node->fparams[0], node->iparams[0] ? width : 0);
        return 0;
    case CC_OP_ATTENTION: return compute_attention(node, 0);
    case CC_OP_ACT: cc_cpu_act_forward(F(x), F(node), n, (cc_act_kind)node->iparams[0]); return 0;
    case CC_OP_GET_ROWS: return cc_cpu_get_rows(F(x), I(y), F(node), y->shape[0], x->shape[1], x->shape[0]);
    case CC_OP_PATCHIFY:
        cc_cpu_patchify(F(x), F(node), x->shape[0], x->shape[1], x->shape[2], x->shape[3], node->iparams[0]);
        return 0;
    case CC_OP_PREPEND_ROW: cc_cpu_prepend_row(F(x), F(y), F(node), x->shape[0], x->shape[1], x->shape[2]); return 0;
    case CC_OP_L2NORM: cc_cpu_l2norm_forward(F(x), F(node), rows, width, node->fparams[0]); return 0;
    case CC_OP_CROSS_ENTROPY:
        if (cc_cpu_check_labels(I(y), x->shape[0], x->shape[1]) != 0) return -1;
        F(node)[0] = cc_cpu_cross_entropy_forward(F(x), I(y), x->shape[0], x->shape[1]);
        return 0;
    case CC_OP_SUM: F(node)[0] = (float)cc_cpu_sum(F(x), cc_nelements(x)); return 0;
    case CC_OP_SUM_TO: cc_cpu_sum_rows(F(x), F(node), cc_nelements(x) / n, n); return 0;
    case CC_OP_REPEAT: cc_cpu_repeat(F(x), F(node), n, cc_nelements(x)); return 0;
    case CC_OP_DOT: F(node)[0] = (float)cc_cpu_dot(F(x), F(y), cc_nelements(x)); return 0;
    case CC_OP_LAYERNORM_BACK_X:
        cc_cpu_layernorm_backward_x(F(x), F(y), F(z), F(node), rows, width, node->fparams[0]);
        return 0;
    case CC_OP_LAYERNORM_BACK_PARAMS: {
        int64_t in_width = y->shape[y->ndim - 1];
        cc_cpu_layernorm_backward_params(F(x), F(y), F(node), cc_nelements(y) / in_width, in_width, node->fparams[0]);
        return 0;
    }
    case CC_OP_SOFTMAX_BACK: cc_cpu_softmax_backward(F(x), F(y), F(node), rows, width, node->fparams[0]); return 0;
    case CC_OP_ATTENTION_BACK: return compute_attention(node, 1);
    case CC_OP_ACT_BACK: cc_cpu_act_backward(F(x), F(y), F(node), n, (cc_act_kind)node->iparams[0]); return 0;
    case CC_OP_GET_ROWS_BACK:
        return cc_cpu_get_rows_backward(F(x), I(y), F(node), y->shape[0], node->shape[1], node->shape[0]);
    case CC_OP_PATCHIFY_BACK:
        cc_cpu_patchify_backward(F(x), F(node), node->shape[0], node->shape[1], node->shape[2], node->shape[3],
                                 node->iparams[0]);
        return 0;
    case CC_OP_L2NORM_BACK: cc_cpu_l2norm_backward(F(x), F(y), F(node), rows, width, node->fparams[0]); return 0;
    case CC_OP_CROSS_ENTROPY_BACK:
        if (cc_cpu_check_labels(I(z), y->shape[0], y->shape[1]) != 0) return -1;
        cc_cpu_cross_entropy_backward(F(x)[0], F(y), I(z), F(node), y->shape[0], y->shape[1]);
        return 0;
    case CC_OP_VIEW_BACK:
        cc_cpu_slice_backward(F(x), F(node), node->shape, node->ndim, node->iparams[1], node->iparams[2],
                              x->shape[node->iparams[1]]);
        return 0;
    case CC_OP_ACCUMULATE: cc_cpu_accumulate(F(node), F(y), n); return 0;
    case CC_OP_SIGLIP_LOSS: {
        double loss;
        if (cc_cpu_siglip_forward(F(x), F(y), x->shape[0], x->shape[1], F(z)[0], F(z)[1], &loss) != 0) return -1;
        F(node)[0] = (float)loss;
        return 0;
    }
    case CC_OP_SIGLIP_LOSS_BACK: {
        const cc_tensor *img = y, *params = node->src[3];
        int64_t bd = cc_nelements(img);
        return cc_cpu_siglip_backward(F(x)[0], F(img), F(z), img->shape[0], img->shape[1], F(params)[0], F(params)[1],
                                      F(node), F(node) + bd, F(node) + 2 * bd);
    }
    case CC_OP_COUNT: break;
    }
    cc_set_error("CPU backend: op %s is not implemented", cc_op_name(node->op));
    return -1;
}

static int cpu_adamw(cc_backend *be, const cc_adamw_args *args) {
    (void)be;
    float bias1 = 1.0f - powf(args->beta1, (float)args->step);
    float bias2 = 1.0f - powf(args->beta2, (float)args->step);
    float step_size = args->lr / bias1;
    float decay = 1.0f - args->lr * args->weight_decay;
    const float *grad = args->grad;
    float *param = args->param, *m = args->m, *v = args->v;
#pragma omp parallel for simd if (args->n > 32768)
    for (int64_t i = 0; i < args->n; i++) {
        float g = grad[i] * args->grad_scale;
        m[i] = args->beta1 * m[i] + (1.0f - args->beta1) * g;
        v[i] = args->beta2 * v[i] + (1.0f - args->beta2) * g * g;
        float denom = sqrtf(v[i] / bias2) + args->eps;
        param[i] = param[i] * decay - step_size * m[i] / denom;
    }
    return 0;
}

static int cpu_sum_squares(cc_backend *be, const float *x, int64_t n, double *out) {
    (void)be;
    *out = cc_cpu_dot(x, x, n);
    return 0;
}

static cc_backend cpu_backend = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .compute_node = cpu_compute_node,
    .adamw = cpu_adamw,
    .sum_squares = cpu_sum_squares,
};

cc_backend *cc_backend_cpu(void) { return &cpu_backend; }

cc_backend *cc_backend_by_name(const char *name) {
    if (!name || !strcmp(name, "cpu")) return cc_backend_cpu();
#ifdef CLIPC_CUDA
    if (!strcmp(name, "cuda")) return cc_backend_cuda_create(0);
#endif
    if (!strcmp(name, "cuda")) {
        cc_set_error("this clipc was built without CUDA (rebuild with make CUDA=1)");
        return NULL;
    }
    cc_set_error("unknown device '%s' (use cpu or cuda)", name);
    return NULL;
}
