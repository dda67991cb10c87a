/* attention.cu — development file for fused multi-head attention, forward and backward (see
 * dev/common.cuh and kernels/cuda/attention.cu).
 *
 * Versions (forward):
 *   1  materialised scores: S = scale·QKᵀ written to global memory (B·H·T² floats), the production
 *      softmax over its rows, then O = P·V; one thread per element. The baseline flash avoids.
 *   2  flash, exact f32 (production f32 path): 32 queries x 4 lanes per block, K/V tiles in smem
 *   3  flash, bf16 tensor cores (production bf16 path): mma.sync m16n8k16, f32 accumulation
 * Backward: 2 f32 flash (stats, dQ, dK/dV passes), 3 bf16 tensor cores (head dims <= 64).
 *
 * Validation against a double-precision CPU reference on fresh random inputs (all heads for the
 * small shapes, head (0, 0) for the long ones): f32 versions 1e-5, bf16 2e-2.
 * FLOPs (the FlashAttention convention): forward 4·B·H·T²·D, backward 2.5x that, halved when
 * causal; reported as TFLOP/s and as a share of the bf16 (or f32) GEMM ceiling measured by
 * benchmarks/cuda/ceilings in the same run.
 */
#include "kernels/cuda/attention.cu"
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/rowwise.cu"
#include "kernels/cuda/dev/common.cuh"

struct shape {
    const char *name;
    int B, T, H, D, causal, fused; /* fused: q, k, v are column slices of one [B, T, 3C] buffer */
    int all_heads;                 /* validate every head (else head 0 of batch 0) */
};

/* Reference of one (b, h): out, and dq/dk/dv for the upstream gradient dout. */
static void reference_head(const std::vector<float> &qkv, int64_t ld, int64_t q_off, int64_t k_off, int64_t v_off,
                           const std::vector<float> &dout, const shape &s, int b, int h, std::vector<double> &out,
                           std::vector<double> &dq, std::vector<double> &dk, std::vector<double> &dv) {
    int T = s.T, D = s.D;
    int64_t C = (int64_t)s.H * D;
    double scale = 1.0 / sqrt((double)D);
    auto at = [&](int64_t off, int t, int d) { return (double)qkv[off + ((int64_t)b * T + t) * ld + (int64_t)h * D + d]; };
    auto g = [&](int t, int d) { return (double)dout[((int64_t)b * T + t) * C + (int64_t)h * D + d]; };
    out.assign((size_t)T * D, 0);
    dq.assign((size_t)T * D, 0);
    dk.assign((size_t)T * D, 0);
    dv.assign((size_t)T * D, 0);
    std::vector<double> p(T), dp(T);
    for (int i = 0; i < T; i++) {
        int n = s.causal ? i + 1 : T;
        double m = -INFINITY, sum = 0, row_dot = 0;
        for (int j = 0; j < n; j++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += at(q_off, i, d) * at(k_off, j, d);
            p[j] = dot * scale;
            m = std::max(m, p[j]);
        }
        for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - m));
        for (int j = 0; j < n; j++) {
            p[j] /= sum;
            double dot = 0;
            for (int d = 0; d < D; d++) {
                out[(size_t)i * D + d] += p[j] * at(v_off, j, d);
                dot += g(i, d) * at(v_off, j, d);
            }
            dp[j] = dot;
            row_dot += p[j] * dot;
        }
        for (int j = 0; j < n; j++) {
            double ds = p[j] * (dp[j] - row_dot) * scale;
            for (int d = 0; d < D; d++) {
                dv[(size_t)j * D + d] += p[j] * g(i, d);
                dq[(size_t)i * D + d] += ds * at(k_off, j, d);
                dk[(size_t)j * D + d] += ds * at(q_off, i, d);
            }
        }
    }
}

/* ---- version 1: materialised scores ---- */
__global__ void scores_v1(const float *q, const float *k, float *s, long long ld, int B, int T, int H, int D, float scale) {
    int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, total = (int64_t)B * H * T * T;
    if (idx >= total) return;
    int j = (int)(idx % T), i = (int)(idx / T % T), h = (int)(idx / ((int64_t)T * T) % H), b = (int)(idx / ((int64_t)T * T * H));
    const float *qi = q + ((int64_t)b * T + i) * ld + (int64_t)h * D, *kj = k + ((int64_t)b * T + j) * ld + (int64_t)h * D;
    float dot = 0;
    for (int d = 0; d < D; d++) dot += qi[d] * kj[d];
    s[idx] = dot * scale;
}

__global__ void pv_v1(const float *p, const float *v, float *out, long long ld, int B, int T, int H, int D) {
    int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, total = (int64_t)B * T * H * D;
    if (idx >= total) return;
    int d = (int)(idx % D), h = (int)(idx / D % H), i = (int)(idx / ((int64_t)D * H) % T), b = (int)(idx / ((int64_t)D * H * T));
    const float *pi = p + (((int64_t)b * H + h) * T + i) * T;
    float acc = 0;
    for (int j = 0; j < T; j++) acc += pi[j] * v[((int64_t)b * T + j) * ld + (int64_t)h * D + d];
    out[idx] = acc;
}

static void compare_heads(const char *what, const shape &s, const std::vector<float> &got_all,
                          const std::vector<std::vector<double> > &ref, double tol) {
    int64_t C = (int64_t)s.H * s.D;
    std::vector<float> got;
    std::vector<double> want;
    int n_heads = s.all_heads ? s.B * s.H : 1;
    for (int bh = 0; bh < n_heads; bh++) {
        int b = bh / s.H, h = bh % s.H;
        for (int t = 0; t < s.T; t++)
            for (int d = 0; d < s.D; d++) {
                got.push_back(got_all[((int64_t)b * s.T + t) * C + (int64_t)h * s.D + d]);
                want.push_back(ref[(size_t)bh][(size_t)t * s.D + d]);
            }
    }
    report_check(what, rel_error(got, want), tol);
}

static void run_shape(const shape &s, const dev_args &a) {
    int64_t C = (int64_t)s.H * s.D, rows = (int64_t)s.B * s.T;
    int64_t ld = s.fused ? 3 * C : C;
    printf("attention %s: B=%d T=%d H=%d D=%d%s%s\n", s.name, s.B, s.T, s.H, s.D, s.causal ? " causal" : "",
           s.fused ? " (q,k,v slices of fused QKV)" : "");
    /* one buffer holds q, k, v: either interleaved per row (fused) or three consecutive blocks */
    std::vector<float> qkv((size_t)(rows * 3 * C)), dout((size_t)(rows * C));
    fill_normal(qkv, 61);
    fill_normal(dout, 62);
    int64_t q_off = 0, k_off = s.fused ? C : rows * C, v_off = s.fused ? 2 * C : 2 * rows * C;
    int n_ref = s.all_heads ? s.B * s.H : 1;
    std::vector<std::vector<double> > out_ref(n_ref), dq_ref(n_ref), dk_ref(n_ref), dv_ref(n_ref);
    for (int bh = 0; bh < n_ref; bh++)
        reference_head(qkv, ld, q_off, k_off, v_off, dout, s, bh / s.H, bh % s.H, out_ref[bh], dq_ref[bh], dk_ref[bh],
                       dv_ref[bh]);
    float *d_qkv[ROTATE_COPIES];
    for (int c = 0; c < ROTATE_COPIES; c++) d_qkv[c] = to_device(qkv);
    float *d_dout = to_device(dout), *d_out = NULL, *d_grads = NULL, *d_scores = NULL;
    CHECK_CUDA(cudaMalloc(&d_out, rows * C * 4));
    CHECK_CUDA(cudaMalloc(&d_grads, 3 * rows * C * 4));
    cc_cuda_attention_shape sh = {s.B, s.T, (int)C, s.H, ld, ld, ld, (float)(1.0 / sqrt((double)s.D)), s.causal};
    void *scratch = NULL;
    CHECK_CUDA(cudaMalloc(&scratch, cc_cuda_attention_scratch_bytes(&sh)));
    int64_t n_scores = (int64_t)s.B * s.H * s.T * s.T;
    bool v1_fits = n_scores * 4 <= ((int64_t)4 << 30);
    if (v1_fits) CHECK_CUDA(cudaMalloc(&d_scores, n_scores * 4));
    double fwd_flops = 4.0 * s.B * s.H * (double)s.T * s.T * s.D * (s.causal ? 0.5 : 1.0);
    char what[128];
    for (int v = 1; v <= 3; v++) {
        if ((a.version && a.version != v) || (v == 1 && !v1_fits)) continue;
        auto run = [&](int c) {
            const float *q = d_qkv[c] + q_off, *k = d_qkv[c] + k_off, *vv = d_qkv[c] + v_off;
            if (v == 1) {
                scores_v1<<<(unsigned)((n_scores + 255) / 256), 256>>>(q, k, d_scores, ld, s.B, s.T, s.H, s.D, sh.scale);
                CHECK_CUDA(cc_cuda_softmax_forward(0, d_scores, d_scores, (int64_t)s.B * s.H * s.T, s.T, 1.0f, s.causal ? s.T : 0));
                pv_v1<<<(unsigned)((rows * C + 255) / 256), 256>>>(d_scores, vv, d_out, ld, s.B, s.T, s.H, s.D);
            } else {
                CHECK_CUDA(cc_cuda_attention_forward(0, &sh, q, k, vv, d_out, v == 3));
            }
        };
        poison(d_out, rows * C);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "%s forward v%d (%s)", s.name, v, v == 1 ? "materialised" : cc_cuda_attention_variant(&sh, v == 3, 0));
        compare_heads(what, s, to_host(d_out, rows * C), out_ref, v == 3 ? 2e-2 : 1e-5);
        report_flops(what, time_ms(run), fwd_flops, v == 3 ? a.bf16_tflops : a.f32_tflops, v == 3 ? "bf16_peak" : "f32_peak");
    }
    for (int v = 2; v <= 3; v++) {
        if (a.version && a.version != v) continue;
        auto run = [&](int c) {
            const float *q = d_qkv[c] + q_off, *k = d_qkv[c] + k_off, *vv = d_qkv[c] + v_off;
            CHECK_CUDA(cc_cuda_attention_backward(0, &sh, d_dout, q, k, vv, d_grads, d_grads + rows * C, d_grads + 2 * rows * C,
                                                  scratch, v == 3));
        };
        poison(d_grads, 3 * rows * C);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        std::vector<float> grads = to_host(d_grads, 3 * rows * C);
        const char *variant = cc_cuda_attention_variant(&sh, v == 3, 1);
        double tol = strstr(variant, "bf16") ? 2e-2 : 1e-5;
        const char *names[3] = {"dq", "dk", "dv"};
        std::vector<std::vector<double> > *refs[3] = {&dq_ref, &dk_ref, &dv_ref};
        for (int gi = 0; gi < 3; gi++) {
            std::vector<float> part(grads.begin() + gi * rows * C, grads.begin() + (gi + 1) * rows * C);
            snprintf(what, sizeof what, "%s backward v%d %s (%s)", s.name, v, names[gi], variant);
            compare_heads(what, s, part, *refs[gi], tol);
        }
        snprintf(what, sizeof what, "%s backward v%d (%s)", s.name, v, variant);
        report_flops(what, time_ms(run), 2.5 * fwd_flops, v == 3 ? a.bf16_tflops : a.f32_tflops, v == 3 ? "bf16_peak" : "f32_peak");
    }
    for (int c = 0; c < ROTATE_COPIES; c++) CHECK_CUDA(cudaFree(d_qkv[c]));
    CHECK_CUDA(cudaFree(d_dout));
    CHECK_CUDA(cudaFree(d_out));
    CHECK_CUDA(cudaFree(d_grads));
    CHECK_CUDA(cudaFree(scratch));
    if (d_scores) CHECK_CUDA(cudaFree(d_scores));
}

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    CHECK_CUDA(cc_cuda_prepare_kernels());
    shape small = {"odd", 3, 37, 4, 12, 1, 0, 1};
    shape vit = {"vit-b32", 256, 50, 12, 64, 0, 1, 0};
    shape text = {"text", 256, 77, 8, 64, 1, 1, 0};
    shape longer = {"long-t2048", 8, 2048, 16, 64, 0, 0, 0};
    shape longer_causal = {"long-t4096-causal", 4, 4096, 16, 64, 1, 0, 0};
    run_shape(small, a);
    run_shape(vit, a);
    run_shape(text, a);
    if (a.quick) {
        longer.B = 2;
        run_shape(longer, a);
    } else {
        run_shape(longer, a);
        run_shape(longer_causal, a);
    }
    return finish();
}
