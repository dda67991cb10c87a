/* tensor.h — the tensor record shared by the graph, the ops and the backends.
 *
 * A tensor is a shape (up to 4 dims, outermost first as in PyTorch), element strides, a dtype and a
 * data pointer that lives in some backend's memory (host memory for the CPU backend, device memory
 * for CUDA). The same record is a node of the computation graph: `op` and `src` say how it is
 * computed; leaves (op CC_OP_NONE) are parameters, inputs or constants whose data is set from
 * outside. Building an op only fills in this record; no arithmetic runs until a backend executes
 * the graph (see graph.h).
 */
#ifndef CLIPC_TENSOR_H
#define CLIPC_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define CC_MAX_DIMS 4
#define CC_MAX_SRC 4
#define CC_MAX_IPARAMS 8
#define CC_MAX_FPARAMS 4
#define CC_NAME_MAX 96

typedef enum cc_dtype { CC_F32 = 0, CC_F16, CC_BF16, CC_I32 } cc_dtype;

/* Every operation the graph knows. Forward ops first, then the ones only backward creates. */
typedef enum cc_op {
    CC_OP_NONE = 0,  /* leaf: parameter, input or constant */
    CC_OP_VIEW,      /* reshape / permute / slice sharing src[0]'s memory; no compute */
    CC_OP_CONT,      /* copy a strided view into contiguous memory */
    CC_OP_MATMUL,    /* batched op(A)·op(B)*alpha; ip: trans_a, trans_b, bf16; fp: alpha */
    CC_OP_ADD,       /* a + beta*b, b broadcast over leading dims of a; fp: beta */
    CC_OP_MUL,       /* a * b elementwise, same shape */
    CC_OP_SCALE,     /* x * c (constant); fp: c */
    CC_OP_MUL_SCALAR,/* x * s[0] where s is a 1-element tensor */
    CC_OP_EXP,       /* exp(x) */
    CC_OP_LAYERNORM, /* rows: (x-mean)/sqrt(var+eps)*gamma+beta; fp: eps */
    CC_OP_SOFTMAX,   /* rows: softmax(x*scale) with optional causal mask; ip: causal; fp: scale */
    CC_OP_ATTENTION, /* fused multi-head attention on [B,T,C] q,k,v; ip: n_heads, causal; fp: scale */
    CC_OP_ACT,       /* activation; ip: cc_act kind */
    CC_OP_GET_ROWS,  /* table[ids]: [V,C] x int32[N] -> [N,C] */
    CC_OP_PATCHIFY,  /* [B,Cin,H,W] -> [B,(H/P)*(W/P),Cin*P*P]; ip: patch */
    CC_OP_PREPEND_ROW, /* [B,N,C] with row [C] -> [B,N+1,C] (class token) */
    CC_OP_L2NORM,    /* rows / max(||row||, eps); fp: eps */
    CC_OP_CROSS_ENTROPY, /* mean over rows of -log softmax(logits)[label]; -> [1] */
    CC_OP_SUM,       /* sum of all elements -> [1] */
    CC_OP_SUM_TO,    /* sum over leading dims down to the trailing shape of the result */
    CC_OP_REPEAT,    /* broadcast src (trailing shape or [1]) up to the result's shape */
    CC_OP_DOT,       /* sum(a*b) -> [1] */
    CC_OP_FILL,      /* every element = fp[0] (seeds backward with d loss = 1) */
    CC_OP_CONCAT,    /* [a; b] along dim 0 (rows of the outermost dim) */
    /* created by backward */
    CC_OP_LAYERNORM_BACK_X,      /* (dy, x, gamma) -> dx */
    CC_OP_LAYERNORM_BACK_PARAMS, /* (dy, x) -> [2,C]: dgamma, dbeta */
    CC_OP_SOFTMAX_BACK,          /* (dy, y) -> dx; ip: causal (unused), fp: scale */
    CC_OP_ATTENTION_BACK,        /* (dout, q, k, v) -> [3,B,T,C]: dq, dk, dv */
    CC_OP_ACT_BACK,              /* (dy, x) -> dx; ip: kind */
    CC_OP_GET_ROWS_BACK,         /* (dy, ids) -> [V,C] scatter-add */
    CC_OP_PATCHIFY_BACK,         /* (dpatches) -> [B,Cin,H,W] */
    CC_OP_L2NORM_BACK,           /* (dy, x) -> dx; fp: eps */
    CC_OP_CROSS_ENTROPY_BACK,    /* (dloss[1], logits, labels) -> dlogits */
    CC_OP_VIEW_BACK,             /* (dy) -> zeros(src shape) with dy added into the view's region */
    CC_OP_ACCUMULATE,            /* dst += src, in place into src[0]'s memory (grad accumulation) */
    CC_OP_SIGLIP_LOSS,           /* (img [B,D], txt [B,D], params [2] = (t', b)) -> [1]: SigLIP's pairwise
                                    sigmoid loss, computed in blocks of rows (train/loss.h) */
    CC_OP_SIGLIP_LOSS_BACK,      /* (dloss[1], img, txt, params) -> [2*B*D + 2]: dimg, dtxt, dt', db */
    CC_OP_COUNT
} cc_op;

typedef enum cc_act { CC_ACT_GELU_TANH = 0, CC_ACT_GELU_ERF, CC_ACT_QUICK_GELU } cc_act_kind;

/* Flags on a tensor. */
enum {
    CC_FLAG_PARAM = 1 << 0,      /* trainable parameter (a leaf whose gradient backward computes) */
    CC_FLAG_INPUT = 1 << 1,      /* leaf whose data the graph allocates and the caller fills */
    CC_FLAG_OUTPUT = 1 << 2,     /* kept alive until the end of compute; read by the caller */
    CC_FLAG_NEEDS_GRAD = 1 << 3, /* depends on a parameter that needs a gradient */
    CC_FLAG_EXTERNAL = 1 << 4,   /* data is owned outside the graph (params, accumulators) */
};

typedef struct cc_tensor {
    cc_dtype dtype;
    int ndim;
    int64_t shape[CC_MAX_DIMS];  /* outermost first */
    int64_t stride[CC_MAX_DIMS]; /* in elements */
    void *data;                  /* backend memory; NULL until planned or set */

    cc_op op;
    struct cc_tensor *src[CC_MAX_SRC];
    int32_t iparams[CC_MAX_IPARAMS];
    float fparams[CC_MAX_FPARAMS];
    int flags;
    struct cc_tensor *grad;      /* set by backward on tensors that need a gradient */
    struct cc_tensor *grad_acc;  /* optional persistent accumulator: backward adds the grad into it */
    struct cc_tensor *after;     /* ordering only: run after this node (its memory is not read) */
    void *packed;                /* CPU inference: a cc_gemm_packed copy of this weight as op(B) = Wᵀ (owned) */
    int64_t view_offset;         /* CC_OP_VIEW: element offset into src[0] */
    char name[CC_NAME_MAX];

    /* graph bookkeeping (graph.c) */
    int order;                   /* position in the graph's execution order; -1 if not in a graph */
    int last_use;                /* last node index that reads this tensor's memory */
    int64_t plan_offset;         /* byte offset in the graph arena; -1 if not arena-allocated */
    struct cc_backend *backend;  /* whose memory `data` is in (NULL = host memory) */
    void *owned_data;            /* standalone tensors: memory freed with the tensor (on `backend`) */
} cc_tensor;

size_t cc_dtype_size(cc_dtype dtype);
const char *cc_dtype_name(cc_dtype dtype);
const char *cc_op_name(cc_op op);

int64_t cc_nelements(const cc_tensor *t);
size_t cc_nbytes(const cc_tensor *t);       /* of a contiguous tensor of this shape */
int64_t cc_nrows(const cc_tensor *t);       /* product of all but the last dim */
int cc_is_contiguous(const cc_tensor *t);
int cc_same_shape(const cc_tensor *a, const cc_tensor *b);
/* Fills stride[] for a contiguous layout. */
void cc_set_contiguous_strides(cc_tensor *t);
/* "[3, 37, 65]" into buf; returns buf. */
const char *cc_shape_str(const cc_tensor *t, char *buf, size_t size);

/* Standalone tensors (parameters, persistent buffers): the record is malloc'd; data is allocated
 * on `backend` (NULL = host malloc) or set by the caller (mmap'd weights). */
cc_tensor *cc_tensor_new(cc_dtype dtype, int ndim, const int64_t *shape, const char *name);
int cc_tensor_alloc(cc_tensor *t, struct cc_backend *backend); /* NULL backend = host */
void cc_tensor_free(cc_tensor *t);
void cc_tensor_set_name(cc_tensor *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* f16 / bf16 conversions (round to nearest even). */
uint16_t cc_f32_to_f16(float x);
float cc_f16_to_f32(uint16_t h);
uint16_t cc_f32_to_bf16(float x);
float cc_bf16_to_f32(uint16_t h);
void cc_convert_to_f32(cc_dtype src_dtype, const void *src, float *dst, int64_t count);
void cc_convert_from_f32(cc_dtype dst_dtype, const float *src, void *dst, int64_t count);

#endif
