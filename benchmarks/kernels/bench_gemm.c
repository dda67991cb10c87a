/* bench_gemm.c — GFLOP/s of clipc's own SGEMM and of OpenBLAS on the ViT-B/32 and text-encoder
 * shapes (forward, and the transposed products of the backward pass), small and batched products
 * (attention), plus the machine's FMA peak.
 *
 *   bench_gemm [--threads N] [--impl own|own-bf16b|bf16|packed|packed-bf16|packed-int8|openblas] [--isa avx512|avx2|scalar]
 *              [--time SECONDS] [--only SUBSTRING | --index I] [--blocking KC,MC,NC] [--verify]
 *   bench_gemm --peak [--threads N]     FMA peak (independent FMA chains in registers), and the
 *                                       vdpbf16ps / vpdpbusd peaks where the CPU has AVX512_BF16 /
 *                                       AVX512_VNNI (a multiply and an add per element pair counted as 2 flops)
 * packed / packed-bf16 / packed-int8: B pre-packed once (cc_gemm_pack_b / _bf16 / _int8, as inference
 * packs weights); bf16: cc_sgemm_bf16 (B packed per call, as training runs); unbatched shapes only;
 * --verify compares with OpenBLAS on the same operands (bf16 and int8 carry their rounding, 1e-3..1e-2).
 *   bench_gemm --list                   the shapes, tab-separated (for the PyTorch peer); --index I
 *                                       picks line I (from 0) of this list
 *
 * Prints one tab-separated line per shape: name, M, N, K, ta, tb, batch, impl, GFLOP/s, and
 * with --verify the relative error against the other side (own vs OpenBLAS; OpenBLAS vs own), so
 * an OpenBLAS with another OPENBLAS_CORETYPE (read at load time) is checked in its own process.
 * Each implementation runs in its own process (run_gemm.sh), so no thread pool of one spins
 * while the other is timed. benchmarks/kernels/run_gemm.sh writes benchmarks/out/kernels_gemm.md.
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

#include "engine/util.h"
#include "kernels/gemm.h"

typedef struct shape {
    const char *name;
    int64_t M, N, K;
    int trans_a, trans_b;
    int64_t batch; /* > 1: cc_sgemm_batched over contiguous matrices (OpenBLAS: a loop) */
} shape;

/* ViT-B/32: width 768, MLP 3072, 50 tokens per image; batch 32 -> M = 1600, batch 1 -> M = 50.
 * Text encoder: width 512, MLP 2048, 77 tokens; batch 32 -> M = 2464. Weights as in PyTorch
 * ([out, in]), so forward is X·Wᵀ (tb=1); backward dX = dY·W (NN), dW = dYᵀ·X (ta=1). */
static const shape shapes[] = {
    {"vit qkv fwd", 1600, 2304, 768, 0, 1},
    {"vit proj fwd", 1600, 768, 768, 0, 1},
    {"vit fc1 fwd", 1600, 3072, 768, 0, 1},
    {"vit fc2 fwd", 1600, 768, 3072, 0, 1},
    {"vit proj fwd, W [in,out]", 1600, 768, 768, 0, 0},
    {"vit fc1 dX = dY·W", 1600, 768, 3072, 0, 0},
    {"vit fc2 dX = dY·W", 1600, 3072, 768, 0, 0},
    {"vit fc1 dW = dYᵀ·X", 3072, 768, 1600, 1, 0},
    {"vit proj dW = dYᵀ·X", 768, 768, 1600, 1, 0},
    {"vit b1 qkv fwd", 50, 2304, 768, 0, 1},
    {"vit b1 proj fwd", 50, 768, 768, 0, 1},
    {"vit b1 fc1 fwd", 50, 3072, 768, 0, 1},
    {"vit b1 fc2 fwd", 50, 768, 3072, 0, 1},
    {"vit b1 proj fwd, W [in,out]", 50, 768, 768, 0, 0},
    {"vit b1 fc2 fwd, W [in,out]", 50, 768, 3072, 0, 0},
    {"text qkv fwd", 2464, 1536, 512, 0, 1},
    {"text fc1 fwd", 2464, 2048, 512, 0, 1},
    {"text fc2 fwd", 2464, 512, 2048, 0, 1},
    {"text b1 qkv fwd", 77, 1536, 512, 0, 1},
    {"attn scores Q·Kᵀ x384", 50, 50, 64, 0, 1, 384},
    {"attn out P·V x384", 50, 64, 50, 0, 0, 384},
    {"small 64x64x64", 64, 64, 64, 0, 0},
    {"query 1x512x512", 1, 512, 512, 0, 1},
};

/* ---- FMA peak: independent FMA chains in registers ---------------------------------------- */

#define PEAK_CHAINS 24 /* independent accumulators: enough to cover a 6-cycle latency on 2 pipes (12 was not for vdpbf16ps) */
#define AVX2_CHAINS 12 /* ymm: 16 registers */
__attribute__((target("avx512f,fma"), noinline)) static float fma_loop_avx512(int64_t iters) {
    __m512 acc[PEAK_CHAINS];
    const __m512 mul = _mm512_set1_ps(0.9999f), add = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], mul, add);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"), noinline)) static float fma_loop_avx2(int64_t iters) {
    __m256 acc[AVX2_CHAINS];
    const __m256 mul = _mm256_set1_ps(0.9999f), add = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < AVX2_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < AVX2_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
    }
    __m256 sum = acc[0];
    for (int i = 1; i < AVX2_CHAINS; i++) sum = _mm256_add_ps(sum, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, sum);
    return out[0];
}

__attribute__((target("avx512f,avx512bf16"), noinline)) static float dpbf16_loop(int64_t iters) {
    __m512 acc[PEAK_CHAINS];
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    }
    __m512 sum = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx512f,avx512vnni"), noinline)) static float dpbusd_loop(int64_t iters) {
    __v16si acc[PEAK_CHAINS]; /* vpdpbusd's own lane type: as __m512i gcc spills the chains */
    const __v16si a = (__v16si)_mm512_set1_epi32(0x01010101), b = (__v16si)_mm512_set1_epi32(0x01ff01ff);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = (__v16si)_mm512_set1_epi32(i);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = (__v16si)_mm512_dpbusd_epi32((__m512i)acc[i], (__m512i)a, (__m512i)b);
    }
    __m512i sum = (__m512i)acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) sum = _mm512_add_epi32(sum, (__m512i)acc[i]);
    return (float)_mm512_reduce_add_epi32(sum);
}

/* Best rate of three rounds of `loop` on n_threads threads, `ops` operations per chain step per
 * thread (FMA: 2 per lane; vdpbf16ps: 4 per 32-bit lane; vpdpbusd: 8 per lane). */
static double loop_peak(int n_threads, float (*loop)(int64_t), double ops) {
    const int64_t iters = 5 * 1000 * 1000;
    double best = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = cc_now();
        float sink = 0;
#pragma omp parallel num_threads(n_threads) reduction(+ : sink)
        sink += loop(iters);
        double dt = cc_now() - t0;
        double rate = (double)n_threads * iters * PEAK_CHAINS * ops / dt * 1e-9;
        if (rate > best && sink != 12345.0f) best = rate;
    }
    return best;
}

/* ---- timing ----------------------------------------------------------------------------- */

typedef enum { IMPL_OWN, IMPL_OWN_BF16B, IMPL_BF16, IMPL_PACKED, IMPL_PACKED_BF16, IMPL_PACKED_INT8, IMPL_OPENBLAS } impl_kind;
#define IS_PACKED(impl) ((impl) == IMPL_PACKED || (impl) == IMPL_PACKED_BF16 || (impl) == IMPL_PACKED_INT8)

typedef struct operands {
    const float *A, *B;
    const uint16_t *B16;
    const cc_gemm_packed *packed; /* IMPL_PACKED, IMPL_PACKED_BF16 */
    float *C;
    int64_t lda, ldb, stride_a, stride_b, stride_c;
} operands;

static void run_once(impl_kind impl, const shape *s, const operands *o) {
    if (IS_PACKED(impl)) {
        cc_sgemm_packed(s->trans_a, s->M, 1.0f, o->A, o->lda, o->packed, 0.0f, o->C, s->N);
    } else if (impl == IMPL_BF16) {
        cc_sgemm_bf16(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, o->A, o->lda, o->B, o->ldb, 0.0f, o->C, s->N);
    } else if (impl == IMPL_OWN_BF16B) {
        for (int64_t b = 0; b < s->batch; b++)
            cc_sgemm_bf16b(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, o->A + b * o->stride_a, o->lda,
                           o->B16 + b * o->stride_b, o->ldb, 0.0f, o->C + b * o->stride_c, s->N);
    } else if (impl == IMPL_OWN && s->batch > 1) {
        cc_sgemm_batched(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f, o->A, o->lda, o->stride_a, o->B, o->ldb,
                         o->stride_b, 0.0f, o->C, s->N, o->stride_c, s->batch);
    } else {
        for (int64_t b = 0; b < s->batch; b++)
            (impl == IMPL_OWN ? cc_sgemm : cc_sgemm_openblas)(s->trans_a, s->trans_b, s->M, s->N, s->K, 1.0f,
                                                               o->A + b * o->stride_a, o->lda, o->B + b * o->stride_b,
                                                               o->ldb, 0.0f, o->C + b * o->stride_c, s->N);
    }
}

/* Best GFLOP/s of three rounds of at least `seconds`/3 each. */
static double time_impl(impl_kind impl, const shape *s, const operands *o, double seconds) {
    double flops = 2.0 * (double)s->M * (double)s->N * (double)s->K * (double)s->batch, best = 0;
    run_once(impl, s, o); /* warm-up: packing buffers, thread pool */
    for (int round = 0; round < 3; round++) {
        int64_t calls = 0;
        double t0 = cc_now(), dt;
        do {
            run_once(impl, s, o);
            calls++;
            dt = cc_now() - t0;
        } while (dt < seconds / 3);
        double gflops = flops * (double)calls / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

static double rel_error(const float *a, const float *b, int64_t n) {
    double max_diff = 0, max_ref = 0;
    for (int64_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        if (!(diff <= max_diff)) max_diff = diff; /* NaN counts */
        if (fabs((double)b[i]) > max_ref) max_ref = fabs((double)b[i]);
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

static uint16_t to_bf16(float x) { /* round to nearest even */
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

/* Times one shape; returns -1 on allocation failure. */
static int bench_shape(const shape *s, impl_kind impl, const char *impl_name, double seconds, int verify, cc_rng *rng) {
    operands o = {.lda = s->trans_a ? s->M : s->K, .ldb = s->trans_b ? s->K : s->N, .stride_a = s->M * s->K,
                  .stride_b = s->K * s->N, .stride_c = s->M * s->N};
    int64_t n_a = o.stride_a * s->batch, n_b = o.stride_b * s->batch, n_c = o.stride_c * s->batch;
    float *A = cc_malloc_aligned((size_t)n_a * sizeof(float), "A");
    float *B = cc_malloc_aligned((size_t)n_b * sizeof(float), "B");
    uint16_t *B16 = cc_malloc_aligned((size_t)n_b * sizeof(uint16_t), "B bf16");
    float *C = cc_malloc_aligned((size_t)n_c * sizeof(float), "C");
    float *C_other = cc_malloc_aligned((size_t)n_c * sizeof(float), "C");
    int rc = -1;
    cc_gemm_packed *packed = NULL;
    if (!A || !B || !B16 || !C || !C_other) goto done;
    for (int64_t i = 0; i < n_a; i++) A[i] = (float)cc_rng_uniform(rng) - 0.5f;
    for (int64_t i = 0; i < n_b; i++) { /* bf16-exact values, so both B forms hold the same numbers */
        B16[i] = to_bf16((float)cc_rng_uniform(rng) - 0.5f);
        uint32_t bits = (uint32_t)B16[i] << 16;
        memcpy(&B[i], &bits, sizeof bits);
    }
    o.A = A;
    o.B = B;
    o.B16 = B16;
    o.C = C;
    if (IS_PACKED(impl)) {
        packed = (impl == IMPL_PACKED        ? cc_gemm_pack_b
                  : impl == IMPL_PACKED_BF16 ? cc_gemm_pack_b_bf16
                                             : cc_gemm_pack_b_int8)(s->trans_b, s->K, s->N, B, o.ldb);
        if (!packed) goto done;
        o.packed = packed;
    }
    double gflops = time_impl(impl, s, &o, seconds), err = -1;
    if (verify) { /* a fresh call of each side, compared */
        run_once(impl, s, &o);
        operands other = o;
        other.C = C_other;
        run_once(impl == IMPL_OPENBLAS ? IMPL_OWN : IMPL_OPENBLAS, s, &other);
        err = rel_error(C, C_other, n_c);
    }
    printf("%s\t%lld\t%lld\t%lld\t%d\t%d\t%lld\t%s\t%.1f\t%.2g\n", s->name, (long long)s->M, (long long)s->N,
           (long long)s->K, s->trans_a, s->trans_b, (long long)s->batch, impl_name, gflops, err);
    fflush(stdout);
    rc = 0;
done:
    cc_gemm_packed_free(packed);
    cc_free_aligned(A);
    cc_free_aligned(B);
    cc_free_aligned(B16);
    cc_free_aligned(C);
    cc_free_aligned(C_other);
    return rc;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_gemm [--threads N] [--impl own|own-bf16b|bf16|packed|packed-bf16|packed-int8|openblas] [--isa avx512|avx2|scalar]\n"
                    "                  [--time SECONDS] [--only SUBSTRING | --index I] [--blocking KC,MC,NC] [--verify]\n"
                    "       bench_gemm --peak [--threads N]\n"
                    "       bench_gemm --list\n");
    exit(2);
}

int main(int argc, char **argv) {
    int n_threads = 1, peak = 0, verify = 0, list = 0;
    impl_kind impl = IMPL_OWN;
    double seconds = 0.6;
    const char *only = NULL;
    int only_index = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--impl") && i + 1 < argc) {
            const char *name = argv[++i];
            if (!strcmp(name, "own")) impl = IMPL_OWN;
            else if (!strcmp(name, "own-bf16b")) impl = IMPL_OWN_BF16B;
            else if (!strcmp(name, "packed")) impl = IMPL_PACKED;
            else if (!strcmp(name, "packed-bf16")) impl = IMPL_PACKED_BF16;
            else if (!strcmp(name, "packed-int8")) impl = IMPL_PACKED_INT8;
            else if (!strcmp(name, "bf16")) impl = IMPL_BF16;
            else if (!strcmp(name, "openblas")) impl = IMPL_OPENBLAS;
            else usage();
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (cc_gemm_force_isa(argv[++i]) != 0) {
                fprintf(stderr, "bench_gemm: %s\n", cc_last_error());
                return 1;
            }
        } else if (!strcmp(argv[i], "--time") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--index") && i + 1 < argc) only_index = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--blocking") && i + 1 < argc) {
            int kc = 0, mc = 0, nc = 0;
            if (sscanf(argv[++i], "%d,%d,%d", &kc, &mc, &nc) != 3) usage();
            cc_gemm_set_blocking(kc, mc, nc);
        } else if (!strcmp(argv[i], "--peak")) peak = 1;
        else if (!strcmp(argv[i], "--verify")) verify = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else usage();
    }
    if (n_threads < 1) usage();
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    if (list) {
        for (int i = 0; i < n_shapes; i++)
            printf("%s\t%lld\t%lld\t%lld\t%d\t%d\t%lld\n", shapes[i].name, (long long)shapes[i].M,
                   (long long)shapes[i].N, (long long)shapes[i].K, shapes[i].trans_a, shapes[i].trans_b,
                   (long long)(shapes[i].batch > 1 ? shapes[i].batch : 1));
        return 0;
    }
    cc_set_threads(n_threads);
    if (peak) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) printf("peak\tavx512\t%d\t%.1f\n", n_threads, loop_peak(n_threads, fma_loop_avx512, 32));
        if (__builtin_cpu_supports("avx2"))
            printf("peak\tavx2\t%d\t%.1f\n", n_threads, loop_peak(n_threads, fma_loop_avx2, 16.0 * AVX2_CHAINS / PEAK_CHAINS));
        if (cc_gemm_has_bf16()) printf("peak\tavx512-bf16\t%d\t%.1f\n", n_threads, loop_peak(n_threads, dpbf16_loop, 64));
        if (cc_gemm_has_int8()) printf("peak\tavx512-vnni-int8\t%d\t%.1f\n", n_threads, loop_peak(n_threads, dpbusd_loop, 128));
        return 0;
    }
    cc_gemm_set_impl(CC_GEMM_OWN);
    const char *impl_name = impl == IMPL_OPENBLAS ? "openblas" : cc_gemm_impl_name();
    char bf16_name[64];
    if (impl != IMPL_OWN && impl != IMPL_OPENBLAS) {
        snprintf(bf16_name, sizeof bf16_name, "%s-%s", cc_gemm_impl_name(),
                 impl == IMPL_OWN_BF16B     ? "bf16b"
                 : impl == IMPL_BF16        ? "bf16"
                 : impl == IMPL_PACKED      ? "packed"
                 : impl == IMPL_PACKED_BF16 ? "packed-bf16"
                                            : "packed-int8");
        impl_name = bf16_name;
    }
    cc_rng rng;
    cc_rng_seed(&rng, 42);
    for (int i = 0; i < n_shapes; i++) {
        shape s = shapes[i];
        if (s.batch < 1) s.batch = 1;
        if ((IS_PACKED(impl) || impl == IMPL_BF16) && s.batch > 1) continue;
        if ((only && !strstr(s.name, only)) || (only_index >= 0 && i != only_index)) continue;
        if (bench_shape(&s, impl, impl_name, seconds, verify, &rng) != 0) {
            fprintf(stderr, "bench_gemm: %s\n", cc_last_error());
            return 1;
        }
    }
    return 0;
}
