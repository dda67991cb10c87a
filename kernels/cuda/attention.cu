/* attention.cu — fused multi-head attention, flash style: scores live only in registers and
 * shared memory, never as a T x T matrix in global memory.
 *
 * Layout (engine/ops.c): q, k, v are [B, T, C] with unit stride along C and any row stride (views
 * of a fused QKV projection); head h is columns [h*D, (h+1)*D). Outputs and gradients are
 * contiguous [B, T, C]. The grid is (B*H, tiles of T).
 *
 * Two families, one for each precision mode of the backend:
 *  - f32 (exact; what the parity checks compare at 1e-5): 128 threads = 32 rows x 4 lanes; lane
 *    `sub` of a row owns head dims sub, sub+4, ...; K/V (or Q/dO) tiles of 32 rows are staged in
 *    shared memory; dot products are reduced over the 4 lanes with two shuffles; online softmax.
 *  - bf16 tensor cores: 4 warps x 16 rows = 64 rows per block; mma.sync.m16n8k16 with bf16
 *    operands and f32 accumulators (FlashAttention-2 scheme: the S accumulator fragments are
 *    re-packed in registers as the A operand of P·V). Tiles are converted f32 -> bf16 while
 *    staged; rows are padded by 8 bf16 so the fragment loads are free of bank conflicts.
 *
 * Backward, both families, in three passes without atomics (deterministic):
 *  1. stats: per query, lse = logsumexp of the scaled scores and delta = Σ_j P_ij (dO_i · v_j)
 *     (= dO_i · O_i), by one online pass over the keys;
 *  2. dQ: per query tile, dQ_i = scale Σ_j P_ij (dP_ij - delta_i) k_j with P recomputed;
 *  3. dK, dV: per key tile, over the query tiles, dV_j = Σ_i P_ij dO_i, dK_j = scale Σ_i dS_ij q_i.
 * The bf16 backward kernels take head dims up to 64 (register budget); 65..128 use the f32 ones.
 */
#include "kernels/cuda/kernels.cuh"

struct attn_params {
    const float *q, *k, *v, *dout;
    float *out, *dq, *dk, *dv;
    float *lse, *delta; /* backward scratch: [B*H*T] each */
    long long ldq, ldk, ldv;
    int B, T, C, H, D;
    float scale;
    int causal;
};

/* Row `t` of batch b, head h of a [B, T, *] tensor with row stride ld. */
CC_HD const float *head_row(const float *base, long long ld, const attn_params &p, int b, int h, int t) {
    return base + ((long long)b * p.T + t) * ld + (long long)h * p.D;
}

/* ======================= f32 (exact) kernels ======================= */

#define F32_THREADS 128
#define F32_ROWS 32 /* rows (queries or keys) per block */
#define F32_TILE 32 /* rows of the other side per shared-memory tile */

/* Stage rows [first, first+F32_TILE) of one head into tile[F32_TILE][DMAX] (zero padded). */
template <int DMAX>
CC_BODY void f32_stage(cc_simt_ctx &ctx, float *tile, const float *base, long long ld, const attn_params &p, int b,
                       int h, int first) {
    for (int idx = ctx.tid(); idx < F32_TILE * DMAX; idx += ctx.nthreads()) {
        int r = idx / DMAX, c = idx % DMAX, row = first + r;
        tile[idx] = (row < p.T && c < p.D) ? head_row(base, ld, p, b, h, row)[c] : 0.0f;
    }
}

/* Dot product of this lane's dims with a staged row, summed over the row's 4 lanes. */
template <int DPL>
CC_BODY float f32_dot(const cc_simt_ctx &ctx, const float (&mine)[DPL], const float *row, int sub) {
    float part = 0;
#pragma unroll
    for (int d = 0; d < DPL; d++) part += mine[d] * row[d * 4 + sub];
    part += ctx.shfl_xor(part, 1);
    part += ctx.shfl_xor(part, 2);
    return part;
}

template <int DPL>
CC_BODY void f32_load_mine(float (&dst)[DPL], const float *row, bool valid, int D, int sub) {
#pragma unroll
    for (int d = 0; d < DPL; d++) {
        int col = d * 4 + sub;
        dst[d] = (valid && col < D) ? row[col] : 0.0f;
    }
}

template <int DPL>
CC_BODY void f32_store_mine(float *row, const float (&src)[DPL], float factor, int D, int sub) {
#pragma unroll
    for (int d = 0; d < DPL; d++) {
        int col = d * 4 + sub;
        if (col < D) row[col] = src[d] * factor;
    }
}

/* Number of keys a block of query rows [q_first, q_first + rows) attends to. */
CC_HD int keys_needed(const attn_params &p, int q_first, int rows) {
    if (!p.causal) return p.T;
    int last = q_first + rows - 1 < p.T - 1 ? q_first + rows - 1 : p.T - 1;
    return last + 1;
}

template <int DMAX>
CC_BODY void f32_forward_body(cc_simt_ctx &ctx, const attn_params &p) {
    constexpr int DPL = DMAX / 4;
    float *ks = reinterpret_cast<float *>(ctx.smem());
    float *vs = ks + F32_TILE * DMAX;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H;
    int sub = ctx.tid() & 3, q_first = ctx.by() * F32_ROWS;
    int i = q_first + (ctx.tid() >> 2);
    bool valid = i < p.T;
    float q[DPL], o[DPL];
    f32_load_mine<DPL>(q, head_row(p.q, p.ldq, p, b, h, valid ? i : 0), valid, p.D, sub);
#pragma unroll
    for (int d = 0; d < DPL; d++) o[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    int n_keys = keys_needed(p, q_first, F32_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += F32_TILE) {
        ctx.sync();
        f32_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0);
        f32_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k0);
        ctx.sync();
        float s[F32_TILE];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < F32_TILE; j++) {
            float dot = f32_dot<DPL>(ctx, q, ks + j * DMAX, sub);
            int key = k0 + j;
            bool masked = key >= p.T || (p.causal && key > i);
            s[j] = masked ? -INFINITY : dot * p.scale;
            tile_max = fmaxf(tile_max, s[j]);
        }
        float m_new = fmaxf(m, tile_max);
        float base = m_new == -INFINITY ? 0.0f : m_new;
        float corr = expf(m - base);
        l *= corr;
#pragma unroll
        for (int d = 0; d < DPL; d++) o[d] *= corr;
#pragma unroll
        for (int j = 0; j < F32_TILE; j++) {
            float pj = expf(s[j] - base);
            l += pj;
#pragma unroll
            for (int d = 0; d < DPL; d++) o[d] += pj * vs[j * DMAX + d * 4 + sub];
        }
        m = m_new;
    }
    if (valid) f32_store_mine<DPL>(p.out + ((long long)b * p.T + i) * p.C + (long long)h * p.D, o, 1.0f / l, p.D, sub);
}

/* Backward pass 1: lse and delta per query. */
template <int DMAX>
CC_BODY void f32_stats_body(cc_simt_ctx &ctx, const attn_params &p) {
    constexpr int DPL = DMAX / 4;
    float *ks = reinterpret_cast<float *>(ctx.smem());
    float *vs = ks + F32_TILE * DMAX;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H;
    int sub = ctx.tid() & 3, q_first = ctx.by() * F32_ROWS;
    int i = q_first + (ctx.tid() >> 2);
    bool valid = i < p.T;
    float q[DPL], dout[DPL];
    f32_load_mine<DPL>(q, head_row(p.q, p.ldq, p, b, h, valid ? i : 0), valid, p.D, sub);
    f32_load_mine<DPL>(dout, head_row(p.dout, p.C, p, b, h, valid ? i : 0), valid, p.D, sub);
    float m = -INFINITY, l = 0.0f, acc = 0.0f;
    int n_keys = keys_needed(p, q_first, F32_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += F32_TILE) {
        ctx.sync();
        f32_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0);
        f32_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k0);
        ctx.sync();
        float s[F32_TILE], dp[F32_TILE];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < F32_TILE; j++) {
            float dot = f32_dot<DPL>(ctx, q, ks + j * DMAX, sub);
            dp[j] = f32_dot<DPL>(ctx, dout, vs + j * DMAX, sub);
            int key = k0 + j;
            bool masked = key >= p.T || (p.causal && key > i);
            s[j] = masked ? -INFINITY : dot * p.scale;
            tile_max = fmaxf(tile_max, s[j]);
        }
        float m_new = fmaxf(m, tile_max);
        float base = m_new == -INFINITY ? 0.0f : m_new;
        float corr = expf(m - base);
        l *= corr;
        acc *= corr;
#pragma unroll
        for (int j = 0; j < F32_TILE; j++) {
            float pj = expf(s[j] - base);
            l += pj;
            acc += pj * dp[j];
        }
        m = m_new;
    }
    if (valid && sub == 0) {
        long long at = (long long)ctx.bx() * p.T + i;
        p.lse[at] = m + logf(l);
        p.delta[at] = acc / l;
    }
}

/* Backward pass 2: dQ per query. */
template <int DMAX>
CC_BODY void f32_dq_body(cc_simt_ctx &ctx, const attn_params &p) {
    constexpr int DPL = DMAX / 4;
    float *ks = reinterpret_cast<float *>(ctx.smem());
    float *vs = ks + F32_TILE * DMAX;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H;
    int sub = ctx.tid() & 3, q_first = ctx.by() * F32_ROWS;
    int i = q_first + (ctx.tid() >> 2);
    bool valid = i < p.T;
    float q[DPL], dout[DPL], dq[DPL];
    f32_load_mine<DPL>(q, head_row(p.q, p.ldq, p, b, h, valid ? i : 0), valid, p.D, sub);
    f32_load_mine<DPL>(dout, head_row(p.dout, p.C, p, b, h, valid ? i : 0), valid, p.D, sub);
#pragma unroll
    for (int d = 0; d < DPL; d++) dq[d] = 0.0f;
    long long at = (long long)ctx.bx() * p.T + (valid ? i : 0);
    float lse = valid ? p.lse[at] : 0.0f, delta = valid ? p.delta[at] : 0.0f;
    int n_keys = keys_needed(p, q_first, F32_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += F32_TILE) {
        ctx.sync();
        f32_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0);
        f32_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k0);
        ctx.sync();
#pragma unroll 4
        for (int j = 0; j < F32_TILE; j++) {
            float dot = f32_dot<DPL>(ctx, q, ks + j * DMAX, sub);
            float dp = f32_dot<DPL>(ctx, dout, vs + j * DMAX, sub);
            int key = k0 + j;
            bool masked = key >= p.T || (p.causal && key > i);
            float pj = masked ? 0.0f : expf(dot * p.scale - lse);
            float ds = pj * (dp - delta);
#pragma unroll
            for (int d = 0; d < DPL; d++) dq[d] += ds * ks[j * DMAX + d * 4 + sub];
        }
    }
    if (valid) f32_store_mine<DPL>(p.dq + ((long long)b * p.T + i) * p.C + (long long)h * p.D, dq, p.scale, p.D, sub);
}

/* Backward pass 3: dK, dV per key, looping over query tiles. */
template <int DMAX>
CC_BODY void f32_dkdv_body(cc_simt_ctx &ctx, const attn_params &p) {
    constexpr int DPL = DMAX / 4;
    float *qs = reinterpret_cast<float *>(ctx.smem());
    float *dos = qs + F32_TILE * DMAX;
    float *lse_s = dos + F32_TILE * DMAX;
    float *delta_s = lse_s + F32_TILE;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H;
    int sub = ctx.tid() & 3, k_first = ctx.by() * F32_ROWS;
    int j = k_first + (ctx.tid() >> 2);
    bool valid = j < p.T;
    float kr[DPL], vr[DPL], dk[DPL], dv[DPL];
    f32_load_mine<DPL>(kr, head_row(p.k, p.ldk, p, b, h, valid ? j : 0), valid, p.D, sub);
    f32_load_mine<DPL>(vr, head_row(p.v, p.ldv, p, b, h, valid ? j : 0), valid, p.D, sub);
#pragma unroll
    for (int d = 0; d < DPL; d++) dk[d] = dv[d] = 0.0f;
    /* queries before the block's first key see none of its keys under the causal mask */
    int q_start = p.causal ? (k_first / F32_TILE) * F32_TILE : 0;
    for (int q0 = q_start; q0 < p.T; q0 += F32_TILE) {
        ctx.sync();
        f32_stage<DMAX>(ctx, qs, p.q, p.ldq, p, b, h, q0);
        f32_stage<DMAX>(ctx, dos, p.dout, p.C, p, b, h, q0);
        if (ctx.tid() < F32_TILE) {
            int qi = q0 + ctx.tid();
            long long at = (long long)ctx.bx() * p.T + qi;
            lse_s[ctx.tid()] = qi < p.T ? p.lse[at] : 0.0f;
            delta_s[ctx.tid()] = qi < p.T ? p.delta[at] : 0.0f;
        }
        ctx.sync();
#pragma unroll 4
        for (int r = 0; r < F32_TILE; r++) {
            int i = q0 + r;
            float dot = f32_dot<DPL>(ctx, kr, qs + r * DMAX, sub);
            float dp = f32_dot<DPL>(ctx, vr, dos + r * DMAX, sub);
            bool masked = i >= p.T || (p.causal && i < j);
            float pij = masked ? 0.0f : expf(dot * p.scale - lse_s[r]);
            float ds = pij * (dp - delta_s[r]);
#pragma unroll
            for (int d = 0; d < DPL; d++) {
                dv[d] += pij * dos[r * DMAX + d * 4 + sub];
                dk[d] += ds * qs[r * DMAX + d * 4 + sub];
            }
        }
    }
    if (valid) {
        long long row = ((long long)b * p.T + j) * p.C + (long long)h * p.D;
        f32_store_mine<DPL>(p.dk + row, dk, p.scale, p.D, sub);
        f32_store_mine<DPL>(p.dv + row, dv, 1.0f, p.D, sub);
    }
}

/* ======================= bf16 tensor-core kernels ======================= */

#define MMA_THREADS 128 /* 4 warps */
#define MMA_ROWS 64     /* rows per block: 16 per warp */
#define MMA_TILE 64     /* rows of the other side per tile */
#define MMA_PAD 8       /* bf16 of padding per staged row */

template <int DMAX>
struct mma_shape {
    static const int pitch = DMAX + MMA_PAD;      /* staged row-major tiles: [64][pitch] */
    static const int tpitch = MMA_TILE + MMA_PAD; /* staged transposed tiles: [DMAX][tpitch] */
    static const int ksteps = DMAX / 16;          /* k-steps of 16 over the head dim */
    static const int dtiles = DMAX / 8;           /* n-tiles of 8 over the head dim */
    static const int ntiles = MMA_TILE / 8;       /* n-tiles of 8 over a tile of rows */
    static const size_t tile_bytes = (size_t)MMA_TILE * pitch * 2;
    static const size_t ttile_bytes = (size_t)DMAX * tpitch * 2;
};

/* Two consecutive bf16 in shared memory as one 32-bit register. */
CC_BODY uint32_t ld_pair(const uint16_t *p) {
#ifdef __CUDA_ARCH__
    return *reinterpret_cast<const uint32_t *>(p);
#else
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#endif
}

/* Stage rows [first, first+64) of one head as bf16: row-major [64][pitch] (transposed == false)
 * or transposed [DMAX][tpitch]. Rows past T and columns past D are zero. */
template <int DMAX>
CC_BODY void mma_stage(cc_simt_ctx &ctx, uint16_t *dst, const float *base, long long ld, const attn_params &p, int b,
                       int h, int first, bool transposed) {
    typedef mma_shape<DMAX> S;
    for (int idx = ctx.tid(); idx < MMA_TILE * DMAX; idx += ctx.nthreads()) {
        int r = idx / DMAX, c = idx % DMAX, row = first + r;
        float v = (row < p.T && c < p.D) ? head_row(base, ld, p, b, h, row)[c] : 0.0f;
        if (transposed) dst[c * S::tpitch + r] = cc_bf16_bits(v);
        else dst[r * S::pitch + c] = cc_bf16_bits(v);
    }
}

/* A fragments (16 rows of this warp, all k-steps) from a row-major staged tile. */
template <int DMAX>
CC_BODY void mma_load_a(const cc_simt_ctx &ctx, uint32_t (&a)[DMAX / 16][4], const uint16_t *tile) {
    typedef mma_shape<DMAX> S;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
    const uint16_t *r0 = tile + (ctx.warp() * 16 + g) * S::pitch + 2 * t;
    const uint16_t *r1 = r0 + 8 * S::pitch;
#pragma unroll
    for (int ks = 0; ks < S::ksteps; ks++) {
        a[ks][0] = ld_pair(r0 + ks * 16);
        a[ks][1] = ld_pair(r1 + ks * 16);
        a[ks][2] = ld_pair(r0 + ks * 16 + 8);
        a[ks][3] = ld_pair(r1 + ks * 16 + 8);
    }
}

/* acc[nt] (16 x 8 per n-tile, NT tiles) = A(16 x DMAX) · B where B[k][n] = tile[n][k] (a row-major
 * staged tile read "as transposed": the score product X·Yᵀ). */
template <int DMAX, int NT>
CC_BODY void mma_xyt(const cc_simt_ctx &ctx, float (&acc)[NT][4], const uint32_t (&a)[DMAX / 16][4],
                     const uint16_t *tile) {
    typedef mma_shape<DMAX> S;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
        const uint16_t *row = tile + (nt * 8 + g) * S::pitch + 2 * t;
#pragma unroll
        for (int ks = 0; ks < S::ksteps; ks++) ctx.mma_bf16(acc[nt], a[ks], ld_pair(row + ks * 16), ld_pair(row + ks * 16 + 8));
    }
}

/* out[dt] (16 x DMAX) += P(16 x 64) · Y(64 x DMAX), P given as score-layout accumulators (packed
 * to bf16 A fragments here), Y staged transposed: B[k=row][n=dim] = ttile[dim][row]. */
template <int DMAX>
CC_BODY void mma_pv(const cc_simt_ctx &ctx, float (&out)[DMAX / 8][4], const float (&pm)[MMA_TILE / 8][4],
                    const uint16_t *ttile) {
    typedef mma_shape<DMAX> S;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
#pragma unroll
    for (int kk = 0; kk < MMA_TILE / 16; kk++) {
        uint32_t a[4];
        a[0] = cc_pack_bf16x2(pm[2 * kk][0], pm[2 * kk][1]);
        a[1] = cc_pack_bf16x2(pm[2 * kk][2], pm[2 * kk][3]);
        a[2] = cc_pack_bf16x2(pm[2 * kk + 1][0], pm[2 * kk + 1][1]);
        a[3] = cc_pack_bf16x2(pm[2 * kk + 1][2], pm[2 * kk + 1][3]);
#pragma unroll
        for (int dt = 0; dt < S::dtiles; dt++) {
            const uint16_t *col = ttile + (dt * 8 + g) * S::tpitch + kk * 16 + 2 * t;
            ctx.mma_bf16(out[dt], a, ld_pair(col), ld_pair(col + 8));
        }
    }
}

CC_BODY float quad_max(const cc_simt_ctx &ctx, float v) {
    v = fmaxf(v, ctx.shfl_xor(v, 1));
    return fmaxf(v, ctx.shfl_xor(v, 2));
}

CC_BODY float quad_sum(const cc_simt_ctx &ctx, float v) {
    v += ctx.shfl_xor(v, 1);
    return v + ctx.shfl_xor(v, 2);
}

/* Scale and mask a 16 x 64 score tile in accumulator layout. rows[0..1]: this thread's query (or
 * key, when transposed_scores) indices for accumulator elements 0-1 and 2-3. */
CC_BODY void mma_mask_scores(const cc_simt_ctx &ctx, float (&s)[MMA_TILE / 8][4], const attn_params &p, int row0,
                             int col_first) {
    int t = ctx.lane() & 3;
#pragma unroll
    for (int nt = 0; nt < MMA_TILE / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int query = row0 + (e >= 2 ? 8 : 0), key = col_first + nt * 8 + 2 * t + (e & 1);
            bool masked = key >= p.T || (p.causal && key > query);
            s[nt][e] = masked ? -INFINITY : s[nt][e] * p.scale;
        }
}

template <int DMAX>
CC_BODY void mma_forward_body(cc_simt_ctx &ctx, const attn_params &p) {
    typedef mma_shape<DMAX> S;
    uint16_t *qs = reinterpret_cast<uint16_t *>(ctx.smem());
    uint16_t *ks = qs + MMA_TILE * S::pitch;
    uint16_t *vt = ks + MMA_TILE * S::pitch;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H, q_first = ctx.by() * MMA_ROWS;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
    int row0 = q_first + ctx.warp() * 16 + g; /* this thread's queries: row0, row0 + 8 */
    mma_stage<DMAX>(ctx, qs, p.q, p.ldq, p, b, h, q_first, false);
    ctx.sync();
    uint32_t qa[S::ksteps][4];
    mma_load_a<DMAX>(ctx, qa, qs);
    float o[S::dtiles][4];
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    int n_keys = keys_needed(p, q_first, MMA_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += MMA_TILE) {
        ctx.sync();
        mma_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0, false);
        mma_stage<DMAX>(ctx, vt, p.v, p.ldv, p, b, h, k0, true);
        ctx.sync();
        float s[S::ntiles][4];
        mma_xyt<DMAX, S::ntiles>(ctx, s, qa, ks);
        mma_mask_scores(ctx, s, p, row0, k0);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < S::ntiles; nt++) {
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        float mn0 = fmaxf(m0, quad_max(ctx, mx0)), mn1 = fmaxf(m1, quad_max(ctx, mx1));
        float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
        float c0 = expf(m0 - base0), c1 = expf(m1 - base1);
        l0 *= c0;
        l1 *= c1;
#pragma unroll
        for (int dt = 0; dt < S::dtiles; dt++) {
            o[dt][0] *= c0;
            o[dt][1] *= c0;
            o[dt][2] *= c1;
            o[dt][3] *= c1;
        }
#pragma unroll
        for (int nt = 0; nt < S::ntiles; nt++) {
            s[nt][0] = expf(s[nt][0] - base0);
            s[nt][1] = expf(s[nt][1] - base0);
            s[nt][2] = expf(s[nt][2] - base1);
            s[nt][3] = expf(s[nt][3] - base1);
            l0 += s[nt][0] + s[nt][1];
            l1 += s[nt][2] + s[nt][3];
        }
        m0 = mn0;
        m1 = mn1;
        mma_pv<DMAX>(ctx, o, s, vt);
    }
    l0 = quad_sum(ctx, l0);
    l1 = quad_sum(ctx, l1);
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int query = row0 + (e >= 2 ? 8 : 0), col = dt * 8 + 2 * t + (e & 1);
            if (query < p.T && col < p.D)
                p.out[((long long)b * p.T + query) * p.C + (long long)h * p.D + col] = o[dt][e] / (e >= 2 ? l1 : l0);
        }
}

/* Backward pass 1 (bf16): lse and delta per query. */
template <int DMAX>
CC_BODY void mma_stats_body(cc_simt_ctx &ctx, const attn_params &p) {
    typedef mma_shape<DMAX> S;
    uint16_t *qs = reinterpret_cast<uint16_t *>(ctx.smem());
    uint16_t *dos = qs + MMA_TILE * S::pitch;
    uint16_t *ks = dos + MMA_TILE * S::pitch;
    uint16_t *vs = ks + MMA_TILE * S::pitch;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H, q_first = ctx.by() * MMA_ROWS;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
    int row0 = q_first + ctx.warp() * 16 + g;
    mma_stage<DMAX>(ctx, qs, p.q, p.ldq, p, b, h, q_first, false);
    mma_stage<DMAX>(ctx, dos, p.dout, p.C, p, b, h, q_first, false);
    ctx.sync();
    uint32_t qa[S::ksteps][4], da[S::ksteps][4];
    mma_load_a<DMAX>(ctx, qa, qs);
    mma_load_a<DMAX>(ctx, da, dos);
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f, acc0 = 0.0f, acc1 = 0.0f;
    int n_keys = keys_needed(p, q_first, MMA_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += MMA_TILE) {
        ctx.sync();
        mma_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0, false);
        mma_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k0, false);
        ctx.sync();
        float s[S::ntiles][4], dp[S::ntiles][4];
        mma_xyt<DMAX, S::ntiles>(ctx, s, qa, ks);
        mma_xyt<DMAX, S::ntiles>(ctx, dp, da, vs);
        mma_mask_scores(ctx, s, p, row0, k0);
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < S::ntiles; nt++) {
            mx0 = fmaxf(mx0, fmaxf(s[nt][0], s[nt][1]));
            mx1 = fmaxf(mx1, fmaxf(s[nt][2], s[nt][3]));
        }
        float mn0 = fmaxf(m0, quad_max(ctx, mx0)), mn1 = fmaxf(m1, quad_max(ctx, mx1));
        float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
        float c0 = expf(m0 - base0), c1 = expf(m1 - base1);
        l0 *= c0;
        acc0 *= c0;
        l1 *= c1;
        acc1 *= c1;
#pragma unroll
        for (int nt = 0; nt < S::ntiles; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float pe = expf(s[nt][e] - (e >= 2 ? base1 : base0));
                if (e >= 2) {
                    l1 += pe;
                    acc1 += pe * dp[nt][e];
                } else {
                    l0 += pe;
                    acc0 += pe * dp[nt][e];
                }
            }
        m0 = mn0;
        m1 = mn1;
    }
    l0 = quad_sum(ctx, l0);
    l1 = quad_sum(ctx, l1);
    acc0 = quad_sum(ctx, acc0);
    acc1 = quad_sum(ctx, acc1);
    if (t == 0) {
        long long at = (long long)ctx.bx() * p.T;
        if (row0 < p.T) {
            p.lse[at + row0] = m0 + logf(l0);
            p.delta[at + row0] = acc0 / l0;
        }
        if (row0 + 8 < p.T) {
            p.lse[at + row0 + 8] = m1 + logf(l1);
            p.delta[at + row0 + 8] = acc1 / l1;
        }
    }
}

/* P (probabilities) and dS from score-layout tiles, in place: s <- P, dp <- P∘(dP − delta). */
CC_BODY void mma_probs_and_ds(float (&s)[MMA_TILE / 8][4], float (&dp)[MMA_TILE / 8][4], float lse0, float lse1,
                              float delta0, float delta1) {
#pragma unroll
    for (int nt = 0; nt < MMA_TILE / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float pe = s[nt][e] == -INFINITY ? 0.0f : expf(s[nt][e] - (e >= 2 ? lse1 : lse0));
            dp[nt][e] = pe * (dp[nt][e] - (e >= 2 ? delta1 : delta0));
            s[nt][e] = pe;
        }
}

/* Backward pass 2 (bf16): dQ per query tile. */
template <int DMAX>
CC_BODY void mma_dq_body(cc_simt_ctx &ctx, const attn_params &p) {
    typedef mma_shape<DMAX> S;
    uint16_t *qs = reinterpret_cast<uint16_t *>(ctx.smem());
    uint16_t *dos = qs + MMA_TILE * S::pitch;
    uint16_t *ks = dos + MMA_TILE * S::pitch;
    uint16_t *vs = ks + MMA_TILE * S::pitch;
    uint16_t *kt = vs + MMA_TILE * S::pitch;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H, q_first = ctx.by() * MMA_ROWS;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
    int row0 = q_first + ctx.warp() * 16 + g;
    mma_stage<DMAX>(ctx, qs, p.q, p.ldq, p, b, h, q_first, false);
    mma_stage<DMAX>(ctx, dos, p.dout, p.C, p, b, h, q_first, false);
    ctx.sync();
    uint32_t qa[S::ksteps][4], da[S::ksteps][4];
    mma_load_a<DMAX>(ctx, qa, qs);
    mma_load_a<DMAX>(ctx, da, dos);
    long long at = (long long)ctx.bx() * p.T;
    float lse0 = row0 < p.T ? p.lse[at + row0] : 0.0f, delta0 = row0 < p.T ? p.delta[at + row0] : 0.0f;
    float lse1 = row0 + 8 < p.T ? p.lse[at + row0 + 8] : 0.0f, delta1 = row0 + 8 < p.T ? p.delta[at + row0 + 8] : 0.0f;
    float dq[S::dtiles][4];
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.0f;
    int n_keys = keys_needed(p, q_first, MMA_ROWS);
    for (int k0 = 0; k0 < n_keys; k0 += MMA_TILE) {
        ctx.sync();
        mma_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k0, false);
        mma_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k0, false);
        mma_stage<DMAX>(ctx, kt, p.k, p.ldk, p, b, h, k0, true);
        ctx.sync();
        float s[S::ntiles][4], dp[S::ntiles][4];
        mma_xyt<DMAX, S::ntiles>(ctx, s, qa, ks);
        mma_xyt<DMAX, S::ntiles>(ctx, dp, da, vs);
        mma_mask_scores(ctx, s, p, row0, k0);
        mma_probs_and_ds(s, dp, lse0, lse1, delta0, delta1);
        mma_pv<DMAX>(ctx, dq, dp, kt); /* dQ += dS · K */
    }
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int query = row0 + (e >= 2 ? 8 : 0), col = dt * 8 + 2 * t + (e & 1);
            if (query < p.T && col < p.D)
                p.dq[((long long)b * p.T + query) * p.C + (long long)h * p.D + col] = dq[dt][e] * p.scale;
        }
}

/* Backward pass 3 (bf16): dK, dV per key tile; scores computed transposed (rows = keys). */
template <int DMAX>
CC_BODY void mma_dkdv_body(cc_simt_ctx &ctx, const attn_params &p) {
    typedef mma_shape<DMAX> S;
    uint16_t *ks = reinterpret_cast<uint16_t *>(ctx.smem());
    uint16_t *vs = ks + MMA_TILE * S::pitch;
    uint16_t *qs = vs + MMA_TILE * S::pitch;
    uint16_t *dos = qs + MMA_TILE * S::pitch;
    uint16_t *qt = dos + MMA_TILE * S::pitch;
    uint16_t *dot = qt + DMAX * S::tpitch;
    float *lse_s = reinterpret_cast<float *>(dot + DMAX * S::tpitch);
    float *delta_s = lse_s + MMA_TILE;
    int b = ctx.bx() / p.H, h = ctx.bx() % p.H, k_first = ctx.by() * MMA_ROWS;
    int g = ctx.lane() >> 2, t = ctx.lane() & 3;
    int key0 = k_first + ctx.warp() * 16 + g; /* this thread's keys: key0, key0 + 8 */
    mma_stage<DMAX>(ctx, ks, p.k, p.ldk, p, b, h, k_first, false);
    mma_stage<DMAX>(ctx, vs, p.v, p.ldv, p, b, h, k_first, false);
    ctx.sync();
    uint32_t ka[S::ksteps][4], va[S::ksteps][4];
    mma_load_a<DMAX>(ctx, ka, ks);
    mma_load_a<DMAX>(ctx, va, vs);
    float dk[S::dtiles][4], dv[S::dtiles][4];
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[dt][e] = dv[dt][e] = 0.0f;
    int q_start = p.causal ? (k_first / MMA_TILE) * MMA_TILE : 0;
    long long at = (long long)ctx.bx() * p.T;
    for (int q0 = q_start; q0 < p.T; q0 += MMA_TILE) {
        ctx.sync();
        mma_stage<DMAX>(ctx, qs, p.q, p.ldq, p, b, h, q0, false);
        mma_stage<DMAX>(ctx, dos, p.dout, p.C, p, b, h, q0, false);
        mma_stage<DMAX>(ctx, qt, p.q, p.ldq, p, b, h, q0, true);
        mma_stage<DMAX>(ctx, dot, p.dout, p.C, p, b, h, q0, true);
        for (int r = ctx.tid(); r < MMA_TILE; r += ctx.nthreads()) {
            lse_s[r] = q0 + r < p.T ? p.lse[at + q0 + r] : 0.0f;
            delta_s[r] = q0 + r < p.T ? p.delta[at + q0 + r] : 0.0f;
        }
        ctx.sync();
        float st[S::ntiles][4], dpt[S::ntiles][4]; /* [key][query] */
        mma_xyt<DMAX, S::ntiles>(ctx, st, ka, qs);
        mma_xyt<DMAX, S::ntiles>(ctx, dpt, va, dos);
#pragma unroll
        for (int nt = 0; nt < S::ntiles; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = key0 + (e >= 2 ? 8 : 0), local = nt * 8 + 2 * t + (e & 1), query = q0 + local;
                bool masked = query >= p.T || (p.causal && query < key);
                float pe = masked ? 0.0f : expf(st[nt][e] * p.scale - lse_s[local]);
                dpt[nt][e] = pe * (dpt[nt][e] - delta_s[local]);
                st[nt][e] = pe;
            }
        mma_pv<DMAX>(ctx, dv, st, dot); /* dV += Pᵀ · dO */
        mma_pv<DMAX>(ctx, dk, dpt, qt); /* dK += dSᵀ · Q */
    }
#pragma unroll
    for (int dt = 0; dt < S::dtiles; dt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int key = key0 + (e >= 2 ? 8 : 0), col = dt * 8 + 2 * t + (e & 1);
            if (key < p.T && col < p.D) {
                long long at_out = ((long long)b * p.T + key) * p.C + (long long)h * p.D + col;
                p.dk[at_out] = dk[dt][e] * p.scale;
                p.dv[at_out] = dv[dt][e];
            }
        }
}

/* ======================= kernels and launchers ======================= */

#ifdef CC_DEVICE_BUILD
template <int DMAX>
__global__ void __launch_bounds__(F32_THREADS) f32_forward_kernel(attn_params p) {
    cc_simt_ctx ctx;
    f32_forward_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(F32_THREADS) f32_stats_kernel(attn_params p) {
    cc_simt_ctx ctx;
    f32_stats_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(F32_THREADS) f32_dq_kernel(attn_params p) {
    cc_simt_ctx ctx;
    f32_dq_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(F32_THREADS) f32_dkdv_kernel(attn_params p) {
    cc_simt_ctx ctx;
    f32_dkdv_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(MMA_THREADS) mma_forward_kernel(attn_params p) {
    cc_simt_ctx ctx;
    mma_forward_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(MMA_THREADS) mma_stats_kernel(attn_params p) {
    cc_simt_ctx ctx;
    mma_stats_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(MMA_THREADS) mma_dq_kernel(attn_params p) {
    cc_simt_ctx ctx;
    mma_dq_body<DMAX>(ctx, p);
}
template <int DMAX>
__global__ void __launch_bounds__(MMA_THREADS) mma_dkdv_kernel(attn_params p) {
    cc_simt_ctx ctx;
    mma_dkdv_body<DMAX>(ctx, p);
}
#endif

#define MMA_BACKWARD_MAX_HEAD_DIM 64

static int dmax_for(int head_dim) { return head_dim <= 16 ? 16 : head_dim <= 32 ? 32 : head_dim <= 64 ? 64 : 128; }

static attn_params attn_make_params(const cc_cuda_attention_shape *s, const float *q, const float *k, const float *v) {
    attn_params p;
    memset(&p, 0, sizeof p);
    p.q = q;
    p.k = k;
    p.v = v;
    p.ldq = s->q_row_stride;
    p.ldk = s->k_row_stride;
    p.ldv = s->v_row_stride;
    p.B = s->batch;
    p.T = s->seq;
    p.C = s->width;
    p.H = s->n_heads;
    p.D = s->n_heads > 0 ? s->width / s->n_heads : 0;
    p.scale = s->scale;
    p.causal = s->causal;
    return p;
}

static size_t f32_smem(int dmax, int backward_dkdv) {
    return (size_t)2 * F32_TILE * dmax * sizeof(float) + (backward_dkdv ? 2 * F32_TILE * sizeof(float) : 0);
}

/* Shared memory of the bf16 kernels: staged row-major and transposed tiles (+ lse/delta). */
template <int DMAX>
static size_t mma_smem(int row_tiles, int transposed_tiles, int with_stats) {
    return row_tiles * mma_shape<DMAX>::tile_bytes + transposed_tiles * mma_shape<DMAX>::ttile_bytes +
           (with_stats ? 2 * MMA_TILE * sizeof(float) : 0);
}

template <int DMAX>
static cudaError_t launch_f32_forward(cudaStream_t st, const attn_params &p) {
    cc_launch_cfg cfg = cc_cfg((unsigned)(p.B * p.H), cc_div_up(p.T, F32_ROWS), F32_THREADS, f32_smem(DMAX, 0));
    return CC_LAUNCH(cfg, st, f32_forward_kernel<DMAX>, f32_forward_body<DMAX>, p);
}

template <int DMAX>
static cudaError_t launch_f32_backward(cudaStream_t st, const attn_params &p) {
    cc_launch_cfg cfg = cc_cfg((unsigned)(p.B * p.H), cc_div_up(p.T, F32_ROWS), F32_THREADS, f32_smem(DMAX, 0));
    cudaError_t e = CC_LAUNCH(cfg, st, f32_stats_kernel<DMAX>, f32_stats_body<DMAX>, p);
    if (e != cudaSuccess) return e;
    e = CC_LAUNCH(cfg, st, f32_dq_kernel<DMAX>, f32_dq_body<DMAX>, p);
    if (e != cudaSuccess) return e;
    cfg.smem = f32_smem(DMAX, 1);
    return CC_LAUNCH(cfg, st, f32_dkdv_kernel<DMAX>, f32_dkdv_body<DMAX>, p);
}

template <int DMAX>
static cudaError_t launch_mma_forward(cudaStream_t st, const attn_params &p) {
    size_t smem = mma_smem<DMAX>(2, 1, 0);
    cc_launch_cfg cfg = cc_cfg((unsigned)(p.B * p.H), cc_div_up(p.T, MMA_ROWS), MMA_THREADS, smem);
    return CC_LAUNCH(cfg, st, mma_forward_kernel<DMAX>, mma_forward_body<DMAX>, p);
}

template <int DMAX>
static cudaError_t launch_mma_backward(cudaStream_t st, const attn_params &p) {
    cc_launch_cfg cfg = cc_cfg((unsigned)(p.B * p.H), cc_div_up(p.T, MMA_ROWS), MMA_THREADS, mma_smem<DMAX>(4, 0, 0));
    cudaError_t e = CC_LAUNCH(cfg, st, mma_stats_kernel<DMAX>, mma_stats_body<DMAX>, p);
    if (e != cudaSuccess) return e;
    cfg.smem = mma_smem<DMAX>(4, 1, 0);
    e = CC_LAUNCH(cfg, st, mma_dq_kernel<DMAX>, mma_dq_body<DMAX>, p);
    if (e != cudaSuccess) return e;
    cfg.smem = mma_smem<DMAX>(4, 2, 1);
    return CC_LAUNCH(cfg, st, mma_dkdv_kernel<DMAX>, mma_dkdv_body<DMAX>, p);
}

/* Raise the dynamic shared memory limit of the kernels that need more than 48 KB. */
template <int DMAX>
static cudaError_t allow_mma_smem(void) {
    cudaError_t e = CC_ALLOW_SMEM(mma_forward_kernel<DMAX>, mma_smem<DMAX>(2, 1, 0));
    if (e == cudaSuccess) e = CC_ALLOW_SMEM(mma_stats_kernel<DMAX>, mma_smem<DMAX>(4, 0, 0));
    if (e == cudaSuccess) e = CC_ALLOW_SMEM(mma_dq_kernel<DMAX>, mma_smem<DMAX>(4, 1, 0));
    if (e == cudaSuccess) e = CC_ALLOW_SMEM(mma_dkdv_kernel<DMAX>, mma_smem<DMAX>(4, 2, 1));
    return e;
}

cudaError_t cc_cuda_prepare_kernels(void) {
    cudaError_t e = allow_mma_smem<16>();
    if (e == cudaSuccess) e = allow_mma_smem<32>();
    if (e == cudaSuccess) e = allow_mma_smem<64>();
    if (e == cudaSuccess) e = CC_ALLOW_SMEM(mma_forward_kernel<128>, mma_smem<128>(2, 1, 0));
    return e;
}

static int shape_ok(const cc_cuda_attention_shape *s) {
    return s->batch > 0 && s->seq > 0 && s->n_heads > 0 && s->width % s->n_heads == 0 &&
           s->width / s->n_heads <= CC_CUDA_ATTENTION_MAX_HEAD_DIM && (long long)s->batch * s->n_heads <= 0x7fffffffLL &&
           (s->seq + F32_ROWS - 1) / F32_ROWS <= (int)CC_MAX_GRID_Y;
}

cudaError_t cc_cuda_attention_forward(cudaStream_t st, const cc_cuda_attention_shape *s, const float *q,
                                      const float *k, const float *v, float *out, int use_bf16) {
    if (!shape_ok(s)) return cudaErrorInvalidValue;
    attn_params p = attn_make_params(s, q, k, v);
    p.out = out;
    switch (dmax_for(p.D) * (use_bf16 ? -1 : 1)) {
    case 16: return launch_f32_forward<16>(st, p);
    case 32: return launch_f32_forward<32>(st, p);
    case 64: return launch_f32_forward<64>(st, p);
    case 128: return launch_f32_forward<128>(st, p);
    case -16: return launch_mma_forward<16>(st, p);
    case -32: return launch_mma_forward<32>(st, p);
    case -64: return launch_mma_forward<64>(st, p);
    default: return launch_mma_forward<128>(st, p);
    }
}

size_t cc_cuda_attention_scratch_bytes(const cc_cuda_attention_shape *s) {
    return (size_t)2 * (size_t)s->batch * (size_t)s->n_heads * (size_t)s->seq * sizeof(float);
}

cudaError_t cc_cuda_attention_backward(cudaStream_t st, const cc_cuda_attention_shape *s, const float *dout,
                                       const float *q, const float *k, const float *v, float *dq, float *dk, float *dv,
                                       void *scratch, int use_bf16) {
    if (!shape_ok(s)) return cudaErrorInvalidValue;
    attn_params p = attn_make_params(s, q, k, v);
    p.dout = dout;
    p.dq = dq;
    p.dk = dk;
    p.dv = dv;
    p.lse = static_cast<float *>(scratch);
    p.delta = p.lse + (size_t)s->batch * s->n_heads * s->seq;
    int dmax = dmax_for(p.D);
    if (use_bf16 && dmax <= MMA_BACKWARD_MAX_HEAD_DIM) {
        switch (dmax) {
        case 16: return launch_mma_backward<16>(st, p);
        case 32: return launch_mma_backward<32>(st, p);
        default: return launch_mma_backward<64>(st, p);
        }
    }
    switch (dmax) {
    case 16: return launch_f32_backward<16>(st, p);
    case 32: return launch_f32_backward<32>(st, p);
    case 64: return launch_f32_backward<64>(st, p);
    default: return launch_f32_backward<128>(st, p);
    }
}

const char *cc_cuda_attention_variant(const cc_cuda_attention_shape *s, int use_bf16, int backward) {
    static const char *names[2][4] = {{"f32-d16", "f32-d32", "f32-d64", "f32-d128"},
                                      {"bf16-mma-d16", "bf16-mma-d32", "bf16-mma-d64", "bf16-mma-d128"}};
    int dmax = dmax_for(s->n_heads > 0 ? s->width / s->n_heads : 0);
    int idx = dmax == 16 ? 0 : dmax == 32 ? 1 : dmax == 64 ? 2 : 3;
    int mma = use_bf16 && (!backward || dmax <= MMA_BACKWARD_MAX_HEAD_DIM);
    return names[mma][idx];
}
