/* gemm.c — clipc's SGEMM: dispatch between the own kernel and OpenBLAS, the BLIS/GotoBLAS-style
 * blocked driver (pack a kc×nc block of B, pack an mc×kc block of A, loop over register tiles),
 * and threading. The instruction-set specific parts (micro-kernel, packing) live in
 * gemm_avx512.c, gemm_avx2.c and gemm_scalar.c behind cc_gemm_backend (gemm_internal.h).
 *
 * Notes from tuning on the development machine (AMD EPYC family 26 = Zen 5, 2 cores, 48 KiB L1d,
 * 1 MiB L2, 32 MiB L3; numbers in GFLOP/s; full tables: benchmarks/out/kernels_gemm.md):
 * - FMA peak measured with independent FMA chains in registers: 267–273 per core with zmm (two
 *   full-width 512-bit FMA pipes: Zen 5 does not split AVX-512 into 256-bit halves as Zen 4
 *   does), 134–137 with ymm. So the AVX-512 path matters twice over here.
 * - Register tile, in-L1 loop (kc = 128..512): 14×32 268, 12×32 267, 8×48 267, 6×64 267, 7×64
 *   253: every tile with >= 24 accumulators reaches peak once the loops are fully unrolled
 *   (without `#pragma GCC unroll` gcc -O2 kept the accumulators in memory: 78–119). 14×32 was
 *   kept: fewest B loads per FMA and the narrowest N edge (N = 50, 77 waste less).
 * - Software prefetch of A or B inside the micro-kernel: no gain (within noise), removed.
 * - Blocking: kc 192..512 × mc 84..504 all within ±3% on the ViT shapes (L2 feeds L1 fast
 *   enough on this core); kc = 384, mc = 168, nc = 3072 kept. Equal k blocks (K = 1600 as
 *   5 × 320, not 4 × 384 + 64).
 * - Packing was the main cost after the kernel: the transposing packs (A not transposed, B
 *   transposed — the forward X·Wᵀ) first ran at 5–6 floats/ns because gcc left the 16×16
 *   transpose in memory; unrolled, 10–12 floats/ns. Batch-1 (M = 50) X·Wᵀ went 180 -> 205.
 * - Small M (one A block): each B panel is packed right before its tiles use it (stays in
 *   L1/L2), and a B that is not transposed is read in place, no packing: M = 50 X·W 218 -> 252.
 * - A dot-product kernel for small-M X·Wᵀ (no B transposition) reached 216 in a prototype vs
 *   205 for the packed path: not worth a second kernel family.
 * - Threads: split M (packed B blocks shared by the team, 2 barriers per block) or N (each
 *   thread its own columns, fused packing when M fits one A block), chosen by a cost model;
 *   sharing B gained 1–5% on 2 threads over each thread packing all of B.
 * - AVX2 packing with 8×8 in-register transposes: AVX2 path 113–128 -> 128–134 on the ViT
 *   shapes (1 thread, OpenBLAS Haswell kernels 128–133), M = 50 X·Wᵀ 73–90 -> 117–121.
 * - Threads: a thread per >= 1 MFLOP (96³ is as fast on 1 thread as on 2, 112³ 1.3× on 2).
 * - Result (benchmarks/out/kernels_gemm.md, machine idle, best FMA peak reading 276 / 555):
 *   1 thread, ViT-B/32 shapes with M = 1600: own 228–255 (82–92% of peak), OpenBLAS SkylakeX
 *   234–250, OpenBLAS as configured here (OPENBLAS_CORETYPE=Haswell) 123–129; batch 1 (M = 50):
 *   own 199–250, SkylakeX 153–192. 2 threads, M = 1600: own 424–492, SkylakeX 421–489; M = 50:
 *   own 399–502, SkylakeX 268–329. Small single products (64³, 50×64×50) stay behind OpenBLAS
 *   SkylakeX's small-matrix kernel (0.7–0.9×), M = 1 (GEMV) far behind (0.33×).
 * - bf16 B (cc_sgemm_bf16b): +0–3% on M = 1600, +4–14% on M = 50 X·Wᵀ (half the bytes of B to
 *   read and transpose), 2–10% slower than the in-place float B on M = 50 X·W.
 */
#include "kernels/gemm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "engine/util.h"
#include "kernels/gemm_internal.h"

/* A thread is only worth starting for this many flops (an OpenMP fork/join costs a few µs;
 * measured: 96³ runs as fast on 1 thread as on 2, 112³ 1.3× faster on 2). */
#define MIN_FLOPS_PER_THREAD (1.0 * 1024 * 1024)
/* Packing one element costs about as much as this many flops (used to choose the thread grid). */
#define PACK_COST_FLOPS 32.0
/* Batched products below this many flops each run one per thread. */
#define BATCH_SMALL_FLOPS (16.0 * 1024 * 1024)

static cc_gemm_impl selected_impl = CC_GEMM_AUTO;
static const cc_gemm_backend *forced_backend = NULL;
static int blocking_kc = 0, blocking_mc = 0, blocking_nc = 0;

/* ---- selection -------------------------------------------------------------------------- */

static int cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

static int cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* The best SIMD back end this CPU runs, or NULL when it has neither. */
static const cc_gemm_backend *detected_backend(void) {
    if (cpu_has_avx512()) return &cc_gemm_backend_avx512;
    if (cpu_has_avx2()) return &cc_gemm_backend_avx2;
    return NULL;
}

/* The back end cc_sgemm uses now; NULL = OpenBLAS. */
static const cc_gemm_backend *active_backend(void) {
    if (selected_impl == CC_GEMM_OPENBLAS) return NULL;
    if (forced_backend) return forced_backend;
    const cc_gemm_backend *be = detected_backend();
    if (!be && selected_impl == CC_GEMM_OWN) return &cc_gemm_backend_scalar;
    return be;
}

void cc_gemm_set_impl(cc_gemm_impl impl) { selected_impl = impl; }
cc_gemm_impl cc_gemm_get_impl(void) { return selected_impl; }

const char *cc_gemm_impl_name(void) {
    const cc_gemm_backend *be = active_backend();
    if (!be) return "openblas";
    if (be == &cc_gemm_backend_avx512) return "own-avx512";
    if (be == &cc_gemm_backend_avx2) return "own-avx2";
    return "own-scalar";
}

int cc_gemm_force_isa(const char *isa) {
    if (!isa || !strcmp(isa, "auto")) {
        forced_backend = NULL;
        return 0;
    }
    if (!strcmp(isa, "avx512")) {
        if (!cpu_has_avx512()) goto unsupported;
        forced_backend = &cc_gemm_backend_avx512;
    } else if (!strcmp(isa, "avx2")) {
        if (!cpu_has_avx2()) goto unsupported;
        forced_backend = &cc_gemm_backend_avx2;
    } else if (!strcmp(isa, "scalar")) {
        forced_backend = &cc_gemm_backend_scalar;
    } else {
        cc_set_error("gemm: unknown instruction set '%s' (expected avx512, avx2, scalar or auto)", isa);
        return -1;
    }
    return 0;
unsupported:
    cc_set_error("gemm: this CPU does not support %s", isa);
    return -1;
}

void cc_gemm_set_blocking(int kc, int mc, int nc) {
    blocking_kc = kc;
    blocking_mc = mc;
    blocking_nc = nc;
}

/* ---- OpenBLAS --------------------------------------------------------------------------- */

void cc_sgemm_openblas(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                       int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (blasint)M, (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C,
                (blasint)ldc);
}

/* ---- the blocked driver ----------------------------------------------------------------- */

typedef struct gemm_problem {
    const cc_gemm_backend *be;
    int kc, mc, nc; /* blocking in use (mc a multiple of mr, nc of nr) */
    int trans_a, trans_b;
    int64_t M, N, K;
    float alpha, beta;
    const float *A;
    int64_t lda;
    const float *B;      /* float B, or NULL when B16 is used */
    const uint16_t *B16; /* bf16 B */
    int64_t ldb;
    float *C;
    int64_t ldc;
} gemm_problem;

/* Packing buffers, 64-byte aligned, grown on demand and kept for the next call: each thread's
 * own, and the B block the calling thread shares with its team. They hang off a thread-local
 * pointer for speed and off a pthread key whose destructor frees them when the thread exits
 * (OpenMP pool threads live as long as the process; other threads may not). */
typedef struct pack_buffer {
    float *data;
    size_t capacity; /* floats */
} pack_buffer;
typedef struct thread_buffers {
    pack_buffer own, shared_b, shared_a; /* shared_a: A of a bf16/int8 product, packed once for the team */
} thread_buffers;
static _Thread_local thread_buffers *this_thread_buffers = NULL;
static pthread_key_t buffers_key;
static pthread_once_t buffers_key_once = PTHREAD_ONCE_INIT;
static int buffers_key_ok = 0;

static void free_thread_buffers(void *ptr) {
    thread_buffers *buffers = ptr;
    cc_free_aligned(buffers->own.data);
    cc_free_aligned(buffers->shared_b.data);
    cc_free_aligned(buffers->shared_a.data);
    free(buffers);
}

static void create_buffers_key(void) { buffers_key_ok = pthread_key_create(&buffers_key, free_thread_buffers) == 0; }

/* This thread's buffers (NULL when out of memory). */
static thread_buffers *get_thread_buffers(void) {
    if (!this_thread_buffers) {
        pthread_once(&buffers_key_once, create_buffers_key);
        thread_buffers *buffers = cc_calloc(1, sizeof *buffers, "gemm packing buffers");
        if (!buffers) return NULL;
        if (buffers_key_ok) pthread_setspecific(buffers_key, buffers);
        this_thread_buffers = buffers;
    }
    return this_thread_buffers;
}

/* At least n_floats of this thread's buffer `which` (0 = own, 1 = shared B, 2 = shared A); NULL
 * when out of memory. The contents are not kept when it grows. */
static float *thread_buffer(int which, size_t n_floats) {
    thread_buffers *buffers = get_thread_buffers();
    if (!buffers) return NULL;
    pack_buffer *buf = which == 2 ? &buffers->shared_a : which ? &buffers->shared_b : &buffers->own;
    if (n_floats < 16) n_floats = 16; /* never a zero-size request */
    if (n_floats > buf->capacity) {
        cc_free_aligned(buf->data);
        buf->data = cc_malloc_aligned(n_floats * sizeof(float), "gemm packing buffer");
        buf->capacity = buf->data ? n_floats : 0;
    }
    return buf->data;
}

static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Floats of a packed A block for m rows, and of a packed B block for n columns. */
static int64_t packed_a_floats(const gemm_problem *p, int64_t m) {
    return round_up(round_up(min64(p->mc, m), p->be->mr) * min64(p->kc, p->K), 16);
}
static int64_t packed_b_floats(const gemm_problem *p, int64_t n) {
    return round_up(min64(p->nc, n), p->be->nr) * min64(p->kc, p->K);
}

static void pack_b_block(const gemm_problem *p, int64_t k0, int64_t kc, int64_t j0, int64_t n, float *dst) {
    if (p->B16) p->be->pack_b_bf16(p->trans_b, p->B16, p->ldb, k0, kc, j0, n, dst);
    else p->be->pack_b(p->trans_b, p->B, p->ldb, k0, kc, j0, n, dst);
}

/* All register tiles of C[ic:ic+mc, jc:jc+nc] for one k block of kc, from a packed A block and
 * a packed B block. */
static void block_tiles(const gemm_problem *p, int64_t ic, int64_t mc, const float *packed_a, int64_t jc, int64_t nc,
                        const float *packed_b, int64_t kc, float beta) {
    const int mr = p->be->mr, nr = p->be->nr;
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int n = (int)min64(nr, nc - jr);
        float *c_col = p->C + ic * p->ldc + jc + jr;
        for (int64_t ir = 0; ir < mc; ir += mr)
            p->be->micro((int)min64(mr, mc - ir), n, kc, packed_a + ir * kc, packed_b + jr * kc, nr,
                         c_col + ir * p->ldc, p->ldc, p->alpha, beta);
    }
}

/* C[m0:m1, n0:n1] of the product by one thread, with its own packing buffer `buf`. */
static void gemm_region(const gemm_problem *p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *buf) {
    const int mr = p->be->mr, nr = p->be->nr;
    float *packed_a = buf, *packed_b = buf + packed_a_floats(p, m1 - m0);
    /* When all rows fit one A block, each B panel is packed right before its tiles use it and
     * stays in L1/L2 (no trip of the packed block through L3); a B that is not transposed is
     * read in place, its rows are already contiguous along n. */
    int fused = m1 - m0 <= p->mc;
    int in_place_b = fused && !p->trans_b && p->B;
    for (int64_t jc = n0; jc < n1; jc += p->nc) {
        int64_t nc = min64(p->nc, n1 - jc);
        for (int64_t pc = 0; pc < p->K; pc += p->kc) {
            int64_t kc = min64(p->kc, p->K - pc);
            float beta = pc == 0 ? p->beta : 1.0f;
            if (!fused) {
                pack_b_block(p, pc, kc, jc, nc, packed_b);
                for (int64_t ic = m0; ic < m1; ic += p->mc) {
                    int64_t mc = min64(p->mc, m1 - ic);
                    p->be->pack_a(p->trans_a, p->A, p->lda, ic, mc, pc, kc, packed_a);
                    block_tiles(p, ic, mc, packed_a, jc, nc, packed_b, kc, beta);
                }
                continue;
            }
            p->be->pack_a(p->trans_a, p->A, p->lda, m0, m1 - m0, pc, kc, packed_a);
            for (int64_t jr = 0; jr < nc; jr += nr) {
                int n = (int)min64(nr, nc - jr);
                const float *bp = packed_b;
                int64_t ldbp = nr;
                if (in_place_b) {
                    bp = p->B + pc * p->ldb + jc + jr;
                    ldbp = p->ldb;
                } else {
                    pack_b_block(p, pc, kc, jc + jr, n, packed_b);
                }
                float *c_col = p->C + m0 * p->ldc + jc + jr;
                for (int64_t ir = 0; ir < m1 - m0; ir += mr)
                    p->be->micro((int)min64(mr, m1 - m0 - ir), n, kc, packed_a + ir * kc, bp, ldbp, c_col + ir * p->ldc,
                                 p->ldc, p->alpha, beta);
            }
        }
    }
}

/* Rows [m0, m1) of C by one thread of a team that splits only M: the team packs each B block
 * together into `shared_b` (each thread a share of its panels), then every thread multiplies
 * its rows with it. Every thread, even one with no rows, passes the same barriers. */
static void gemm_rows_shared_b(const gemm_problem *p, int64_t m0, int64_t m1, float *packed_a, float *shared_b,
                               int tid, int team) {
    const int nr = p->be->nr;
    for (int64_t jc = 0; jc < p->N; jc += p->nc) {
        int64_t nc = min64(p->nc, p->N - jc);
        int64_t panels = (nc + nr - 1) / nr, first = panels * tid / team, last = panels * (tid + 1) / team;
        for (int64_t pc = 0; pc < p->K; pc += p->kc) {
            int64_t kc = min64(p->kc, p->K - pc);
            float beta = pc == 0 ? p->beta : 1.0f;
            if (last > first)
                pack_b_block(p, pc, kc, jc + first * nr, min64(nc, last * nr) - first * nr, shared_b + first * nr * kc);
#pragma omp barrier
            for (int64_t ic = m0; ic < m1; ic += p->mc) {
                int64_t mc = min64(p->mc, m1 - ic);
                p->be->pack_a(p->trans_a, p->A, p->lda, ic, mc, pc, kc, packed_a);
                block_tiles(p, ic, mc, packed_a, jc, nc, shared_b, kc, beta);
            }
#pragma omp barrier /* before the next block overwrites shared_b */
        }
    }
}

/* C = beta*C (alpha == 0 or K == 0); beta == 0 writes zeros without reading C. */
static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < M; i++) {
        float *row = C + i * ldc;
        if (beta == 0.0f) memset(row, 0, (size_t)N * sizeof(float));
        else
            for (int64_t j = 0; j < N; j++) row[j] *= beta;
    }
}

/* Thread grid: t_m × t_n threads, chosen to minimise the busiest thread's compute plus packing
 * (splitting N makes each thread pack all of its A rows; B blocks are shared when only M is
 * split, else each thread packs all of its B columns). */
static void choose_grid(const gemm_problem *p, int n_threads, int *t_m, int *t_n) {
    int64_t panels_m = (p->M + p->be->mr - 1) / p->be->mr, panels_n = (p->N + p->be->nr - 1) / p->be->nr;
    double best = INFINITY;
    *t_m = 1;
    *t_n = n_threads;
    /* all rows fit one A block: split N, each thread runs the fused path on its columns */
    if (p->M <= p->mc && panels_n >= n_threads) return;
    for (int tm = 1; tm <= n_threads; tm++) {
        if (n_threads % tm) continue;
        int tn = n_threads / tm;
        if (tm > panels_m || tn > panels_n) continue;
        double rows = (double)((panels_m + tm - 1) / tm * p->be->mr);
        double cols = (double)((panels_n + tn - 1) / tn * p->be->nr);
        double b_packed = tn == 1 ? cols / tm : cols;
        double cost = 2.0 * rows * cols * (double)p->K + PACK_COST_FLOPS * (rows + b_packed) * (double)p->K;
        if (cost < best) {
            best = cost;
            *t_m = tm;
            *t_n = tn;
        }
    }
}

/* Start of part `part` of `parts` when `total` items are split in whole panels of `panel`. */
static int64_t split_point(int64_t total, int64_t panel, int part, int parts) {
    int64_t panels = (total + panel - 1) / panel;
    int64_t at = panels * part / parts * panel;
    return at < total ? at : total;
}

static int threads_for(const gemm_problem *p) {
    int n_threads = cc_get_threads();
    if (omp_in_parallel()) return 1; /* called from a parallel region: no nested teams */
    double flops = 2.0 * (double)p->M * (double)p->N * (double)p->K;
    double useful = flops / MIN_FLOPS_PER_THREAD;
    if (useful < n_threads) n_threads = useful < 1 ? 1 : (int)useful;
    return n_threads;
}

/* The k block for depth K: equal blocks of at most kc (K = 1600 runs as 5 × 320 rather than
 * 4 × 384 + 64). Pre-packed matrices are laid out with the same blocks. */
static int64_t k_block(const cc_gemm_backend *be, int64_t K) {
    int64_t kc_max = blocking_kc > 0 ? blocking_kc : be->kc, k_blocks = (K + kc_max - 1) / kc_max;
    return k_blocks > 0 ? (K + k_blocks - 1) / k_blocks : kc_max;
}

/* Rows of A packed per block (a multiple of the register tile). */
static int64_t m_block(const cc_gemm_backend *be) { return round_up(blocking_mc > 0 ? blocking_mc : be->mc, be->mr); }

/* Runs the problem with the own kernel. Returns -1 (C untouched) when a packing buffer could
 * not be allocated. */
static int gemm_own(gemm_problem *p) {
    const cc_gemm_backend *be = p->be;
    p->kc = (int)k_block(be, p->K);
    p->mc = (int)m_block(be);
    p->nc = (int)round_up(blocking_nc > 0 ? blocking_nc : be->nc, be->nr);
    if (p->alpha == 0.0f || p->K <= 0) {
        scale_c(p->M, p->N, p->beta, p->C, p->ldc);
        return 0;
    }
    int n_threads = threads_for(p);
    if (n_threads == 1) {
        float *buf = thread_buffer(0, (size_t)(packed_a_floats(p, p->M) + packed_b_floats(p, p->N)));
        if (!buf) return -1;
        gemm_region(p, 0, p->M, 0, p->N, buf);
        return 0;
    }
    int t_m, t_n;
    choose_grid(p, n_threads, &t_m, &t_n);
    float *shared_b = NULL;
    if (t_n == 1 && !(shared_b = thread_buffer(1, (size_t)packed_b_floats(p, p->N)))) return -1;
    int failed = 0;
#pragma omp parallel num_threads(t_m * t_n) shared(failed)
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        /* the runtime may give fewer threads than asked: then re-split for the team we got */
        int grid_m = team == t_m * t_n ? t_m : (shared_b ? team : 1);
        int grid_n = team / grid_m;
        int part_m = tid / grid_n, part_n = tid % grid_n;
        int64_t m0 = split_point(p->M, be->mr, part_m, grid_m), m1 = split_point(p->M, be->mr, part_m + 1, grid_m);
        int64_t n0 = split_point(p->N, be->nr, part_n, grid_n), n1 = split_point(p->N, be->nr, part_n + 1, grid_n);
        size_t need = (size_t)packed_a_floats(p, m1 - m0) + (shared_b ? 0 : (size_t)packed_b_floats(p, n1 - n0));
        float *buf = thread_buffer(0, need);
        if (!buf) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        int any_failed;
#pragma omp atomic read
        any_failed = failed;
        if (!any_failed) {
            if (shared_b) gemm_rows_shared_b(p, m0, m1, buf, shared_b, tid, team);
            else if (m1 > m0 && n1 > n0) gemm_region(p, m0, m1, n0, n1, buf);
        }
    }
    return failed ? -1 : 0;
}

/* BLAS's argument rules (row-major). Returns -1 with cc_last_error naming the bad one; the
 * product is then not computed and C not touched, as BLAS does. */
static int check_args(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                      int64_t ldc) {
    int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
    if (M < 0 || N < 0 || K < 0) {
        cc_set_error("gemm: negative size M=%lld N=%lld K=%lld", (long long)M, (long long)N, (long long)K);
        return -1;
    }
    if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < (N > 1 ? N : 1)) {
        cc_set_error("gemm: row stride too small: lda=%lld (A has %lld columns), ldb=%lld (B has %lld), "
                     "ldc=%lld (C has %lld)", (long long)lda, (long long)a_cols, (long long)ldb, (long long)b_cols,
                     (long long)ldc, (long long)N);
        return -1;
    }
    return 0;
}

void cc_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (check_args(trans_a, trans_b, M, N, K, lda, ldb, ldc) != 0 || M == 0 || N == 0) return;
    const cc_gemm_backend *be = active_backend();
    if (be) {
        gemm_problem p = {.be = be, .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
                          .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B = B, .ldb = ldb, .C = C, .ldc = ldc};
        if (gemm_own(&p) == 0) return;
        /* out of memory for packing buffers: OpenBLAS needs less */
    }
    cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- bf16 B ----------------------------------------------------------------------------- */

/* OpenBLAS fallback for bf16 B: widen B to a temporary float matrix. */
static void sgemm_bf16b_openblas(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                                 const float *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                                 int64_t ldc) {
    int64_t rows = trans_b ? N : K, cols = trans_b ? K : N;
    float *wide = cc_malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(float), "gemm bf16 B");
    if (!wide) return; /* cc_last_error says out of memory; C is untouched */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            uint32_t bits = (uint32_t)B[r * ldb + c] << 16;
            memcpy(&wide[r * cols + c], &bits, sizeof bits);
        }
    cc_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, wide, cols, beta, C, ldc);
    free(wide);
}

void cc_sgemm_bf16b(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (check_args(trans_a, trans_b, M, N, K, lda, ldb, ldc) != 0 || M == 0 || N == 0) return;
    const cc_gemm_backend *be = active_backend();
    if (be) {
        gemm_problem p = {.be = be, .trans_a = trans_a, .trans_b = trans_b, .M = M, .N = N, .K = K,
                          .alpha = alpha, .beta = beta, .A = A, .lda = lda, .B16 = B, .ldb = ldb, .C = C, .ldc = ldc};
        if (gemm_own(&p) == 0) return;
    }
    sgemm_bf16b_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- pre-packed B ----------------------------------------------------------------------- */

/* Layout: for each k block (kc rows, equal blocks as gemm_own chooses them), all N columns as
 * ceil(N/nr) panels of kc×nr floats, zero-padded; k block b starts at b * panels * nr * kc. */
/* A bf16 matrix (be16 set) has the same blocks and panels, of ceil(kc/2) uint32 pairs per panel
 * row (gemm_bf16.c), in data16; k block b starts at b * panels * nr * (kc/2) (kc is even). */
/* An int8 matrix (be8 set): blocks of ceil(kc/4) uint32 quads per panel row in data8 (kc a
 * multiple of 4), the column sums of each block's codes in colsum8 (block b at b * panels * nr),
 * and the column scales in scale8 (panels * nr, zero past N). */
struct cc_gemm_packed {
    const cc_gemm_backend *be;        /* the back end whose layout this is (float) */
    const cc_gemm_bf16_backend *be16; /* or the bf16 one */
    const cc_gemm_int8_backend *be8;  /* or the int8 one */
    int64_t K, N, kc, panels;
    float *data;
    uint32_t *data16;
    uint32_t *data8;
    int32_t *colsum8;
    float *scale8;
};

int64_t cc_gemm_packed_k(const cc_gemm_packed *packed) { return packed->K; }
int64_t cc_gemm_packed_n(const cc_gemm_packed *packed) { return packed->N; }
int cc_gemm_packed_is_bf16(const cc_gemm_packed *packed) { return packed->be16 != NULL; }
int cc_gemm_packed_is_int8(const cc_gemm_packed *packed) { return packed->be8 != NULL; }
size_t cc_gemm_packed_bytes(const cc_gemm_packed *packed) {
    if (packed->be8)
        return (size_t)packed->panels * (size_t)packed->be8->nr * (size_t)((packed->K + packed->kc - 1) / packed->kc) *
               (size_t)(packed->kc / 4) * sizeof(uint32_t);
    if (packed->be16) /* every k block padded to whole pairs */
        return (size_t)packed->panels * (size_t)packed->be16->nr * (size_t)((packed->K + packed->kc - 1) / packed->kc) *
               (size_t)(packed->kc / 2) * sizeof(uint32_t);
    return (size_t)packed->panels * (size_t)packed->be->nr * (size_t)packed->K * sizeof(float);
}

void cc_gemm_packed_free(cc_gemm_packed *packed) {
    if (!packed) return;
    cc_free_aligned(packed->data);
    cc_free_aligned(packed->data16);
    cc_free_aligned(packed->data8);
    cc_free_aligned(packed->colsum8);
    cc_free_aligned(packed->scale8);
    free(packed);
}

/* The sizes of a matrix to pack; -1 with cc_last_error when they describe none. */
static int check_pack_args(int trans_b, int64_t K, int64_t N, int64_t ldb) {
    if (K > 0 && N > 0 && ldb >= (trans_b ? K : N)) return 0;
    cc_set_error("gemm: cannot pack a %lld x %lld matrix with row stride %lld", (long long)K, (long long)N, (long long)ldb);
    return -1;
}

cc_gemm_packed *cc_gemm_pack_b(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb) {
    const cc_gemm_backend *be = active_backend();
    if (!be) {
        cc_set_error("gemm: pre-packing needs the own kernel (OpenBLAS is selected)");
        return NULL;
    }
    if (check_pack_args(trans_b, K, N, ldb) != 0) return NULL;
    cc_gemm_packed *packed = cc_calloc(1, sizeof *packed, "packed matrix");
    if (!packed) return NULL;
    *packed = (cc_gemm_packed){.be = be, .K = K, .N = N, .kc = k_block(be, K),
                               .panels = (N + be->nr - 1) / be->nr};
    packed->data = cc_malloc_aligned(cc_gemm_packed_bytes(packed), "packed matrix");
    if (!packed->data) {
        free(packed);
        return NULL;
    }
    int64_t block_floats = packed->panels * be->nr * packed->kc;
    for (int64_t pc = 0, b = 0; pc < K; pc += packed->kc, b++)
        be->pack_b(trans_b, B, ldb, pc, min64(packed->kc, K - pc), 0, N, packed->data + b * block_floats);
    return packed;
}

/* Columns in panels [panel0, panel1) of C by one thread: A packed block by block into `buf`,
 * B panels read in place from the packed matrix. */
static void packed_region(int trans_a, int64_t M, float alpha, const float *A, int64_t lda, const cc_gemm_packed *B,
                          float beta, float *C, int64_t ldc, int64_t panel0, int64_t panel1, int64_t mc, float *buf) {
    const cc_gemm_backend *be = B->be;
    const int mr = be->mr, nr = be->nr;
    int64_t block_floats = B->panels * nr * B->kc;
    for (int64_t pc = 0, b = 0; pc < B->K; pc += B->kc, b++) {
        int64_t kc = min64(B->kc, B->K - pc);
        float block_beta = pc == 0 ? beta : 1.0f;
        const float *block = B->data + b * block_floats;
        for (int64_t ic = 0; ic < M; ic += mc) {
            int64_t m = min64(mc, M - ic);
            be->pack_a(trans_a, A, lda, ic, m, pc, kc, buf);
            for (int64_t panel = panel0; panel < panel1; panel++) {
                int64_t j = panel * nr;
                int n = (int)min64(nr, B->N - j);
                const float *bp = block + panel * nr * kc; /* panels of this k block's kc rows */
                for (int64_t ir = 0; ir < m; ir += mr)
                    be->micro((int)min64(mr, m - ir), n, kc, buf + ir * kc, bp, nr, C + (ic + ir) * ldc + j, ldc, alpha,
                              block_beta);
            }
        }
    }
}

/* ---- pre-packed bf16 B ------------------------------------------------------------------ */

/* CLIPC_NO_BF16 set: behave as a CPU without the instructions (tests of the fallback). */
int cc_gemm_has_bf16(void) { return cc_gemm_cpu_has_bf16() && !getenv("CLIPC_NO_BF16"); }

/* The k block of a bf16 matrix of depth K: equal blocks of at most be->kc, each whole pairs. */
static int64_t bf16_k_block(const cc_gemm_bf16_backend *be, int64_t K) {
    int64_t k_blocks = (K + be->kc - 1) / be->kc;
    return round_up((K + k_blocks - 1) / k_blocks, 2);
}

cc_gemm_packed *cc_gemm_pack_b_bf16(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb) {
    const cc_gemm_bf16_backend *be = &cc_gemm_bf16_avx512;
    if (!cc_gemm_has_bf16()) {
        cc_set_error("gemm: this CPU has no AVX512_BF16 instructions (bf16 products need them)");
        return NULL;
    }
    if (check_pack_args(trans_b, K, N, ldb) != 0) return NULL;
    cc_gemm_packed *packed = cc_calloc(1, sizeof *packed, "packed matrix");
    if (!packed) return NULL;
    *packed = (cc_gemm_packed){.be16 = be, .K = K, .N = N, .kc = bf16_k_block(be, K), .panels = (N + be->nr - 1) / be->nr};
    packed->data16 = cc_malloc_aligned(cc_gemm_packed_bytes(packed), "packed matrix");
    if (!packed->data16) {
        free(packed);
        return NULL;
    }
    int64_t block_pairs = packed->panels * be->nr * (packed->kc / 2);
    for (int64_t pc = 0, b = 0; pc < K; pc += packed->kc, b++)
        be->pack_b(trans_b, B, ldb, pc, min64(packed->kc, K - pc), 0, N, packed->data16 + b * block_pairs);
    return packed;
}

static void sgemm_packed_low(int trans_a, int64_t M, float alpha, const float *A, int64_t lda,
                             const cc_gemm_packed *B, float beta, float *C, int64_t ldc);

/* Threads for a low-precision product running `speedup` times the float rate (the float rule:
 * a thread per MIN_FLOPS_PER_THREAD of float work), at most one per panel of B. */
static int low_precision_threads(int64_t M, const cc_gemm_packed *B, double speedup) {
    double float_work = 2.0 * (double)M * (double)B->N * (double)B->K / speedup / MIN_FLOPS_PER_THREAD;
    int n_threads = omp_in_parallel() ? 1 : cc_get_threads();
    if (float_work < n_threads) n_threads = float_work < 1 ? 1 : (int)float_work;
    if (n_threads > B->panels) n_threads = (int)B->panels;
    return n_threads;
}

void cc_sgemm_bf16(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (check_args(trans_a, trans_b, M, N, K, lda, ldb, ldc) != 0 || M == 0 || N == 0) return;
    if (!cc_gemm_has_bf16() || K == 0 || alpha == 0.0f) {
        cc_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const cc_gemm_bf16_backend *be = &cc_gemm_bf16_avx512;
    cc_gemm_packed packed = {.be16 = be, .K = K, .N = N, .kc = bf16_k_block(be, K), .panels = (N + be->nr - 1) / be->nr};
    /* B packed into the calling thread's shared-B buffer (no float product runs meanwhile) */
    size_t words = cc_gemm_packed_bytes(&packed) / sizeof(uint32_t);
    packed.data16 = (uint32_t *)thread_buffer(1, words);
    if (!packed.data16) { /* out of memory: the float product needs less */
        cc_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int64_t k_blocks = (K + packed.kc - 1) / packed.kc, jobs = k_blocks * packed.panels;
    int64_t block_pairs = packed.panels * be->nr * (packed.kc / 2);
    int n_threads = omp_in_parallel() ? 1 : cc_get_threads();
    if ((double)K * (double)N < 65536.0 * n_threads) n_threads = 1; /* small B: not worth a team */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t job = 0; job < jobs; job++) {
        int64_t b = job / packed.panels, panel = job % packed.panels, pc = b * packed.kc, kc = min64(packed.kc, K - pc);
        int64_t j0 = panel * be->nr;
        be->pack_b(trans_b, B, ldb, pc, kc, j0, min64(be->nr, N - j0),
                   packed.data16 + b * block_pairs + panel * be->nr * ((kc + 1) / 2));
    }
    sgemm_packed_low(trans_a, M, alpha, A, lda, &packed, beta, C, ldc);
}

/* ---- pre-packed int8 B ------------------------------------------------------------------ */

/* CLIPC_NO_INT8 set: behave as a CPU without the instructions (tests of the fallback). */
int cc_gemm_has_int8(void) { return cc_gemm_cpu_has_int8() && !getenv("CLIPC_NO_INT8"); }

/* Scale (max |x| / 127) of `count` values `stride` apart, and its inverse (0 for all zeros). */
static void int8_scale(const float *x, int64_t count, int64_t stride, float *scale, float *inv_scale) {
    float largest = 0;
    if (stride == 1) largest = cc_gemm_int8_avx512.absmax(x, count);
    else
        for (int64_t i = 0; i < count; i++) {
            float v = fabsf(x[i * stride]);
            if (!(v <= largest)) largest = v; /* NaN sticks (fmaxf would drop it) */
            if (isnan(largest)) break;
        }
    *scale = isfinite(largest) ? largest / 127.0f : NAN; /* NaN or Inf in: NaN out, as a float product */
    *inv_scale = largest > 0 && isfinite(largest) ? 127.0f / largest : 0.0f;
}

cc_gemm_packed *cc_gemm_pack_b_int8(int trans_b, int64_t K, int64_t N, const float *B, int64_t ldb) {
    const cc_gemm_int8_backend *be = &cc_gemm_int8_avx512;
    if (!cc_gemm_has_int8()) {
        cc_set_error("gemm: this CPU has no AVX512_VNNI instructions (int8 products need them)");
        return NULL;
    }
    if (check_pack_args(trans_b, K, N, ldb) != 0) return NULL;
    for (int64_t i = 0; i < (trans_b ? N : K); i++)
        for (int64_t j = 0; j < (trans_b ? K : N); j++)
            if (!isfinite(B[i * ldb + j])) {
                cc_set_error("gemm: cannot quantize a matrix holding NaN or Inf to int8");
                return NULL;
            }
    cc_gemm_packed *packed = cc_calloc(1, sizeof *packed, "packed matrix");
    if (!packed) return NULL;
    int64_t k_blocks = (K + be->kc - 1) / be->kc;
    *packed = (cc_gemm_packed){.be8 = be, .K = K, .N = N, .kc = round_up((K + k_blocks - 1) / k_blocks, 4),
                               .panels = (N + be->nr - 1) / be->nr};
    k_blocks = (K + packed->kc - 1) / packed->kc;
    int64_t columns = packed->panels * be->nr;
    packed->data8 = cc_malloc_aligned(cc_gemm_packed_bytes(packed), "packed matrix");
    packed->colsum8 = cc_malloc_aligned((size_t)(k_blocks * columns) * sizeof(int32_t), "packed matrix");
    packed->scale8 = cc_malloc_aligned((size_t)columns * sizeof(float), "packed matrix");
    float *inv_scale = cc_malloc((size_t)columns * sizeof(float), "packed matrix");
    if (!packed->data8 || !packed->colsum8 || !packed->scale8 || !inv_scale) {
        free(inv_scale);
        cc_gemm_packed_free(packed);
        return NULL;
    }
    for (int64_t j = 0; j < columns; j++) {
        packed->scale8[j] = inv_scale[j] = 0.0f;
        if (j < N) /* column j of op(B): row j of B when transposed */
            int8_scale(trans_b ? B + j * ldb : B + j, K, trans_b ? 1 : ldb, &packed->scale8[j], &inv_scale[j]);
    }
    int64_t block_quads = columns * (packed->kc / 4);
    for (int64_t pc = 0, b = 0; pc < K; pc += packed->kc, b++)
        be->pack_b(trans_b, B, ldb, pc, min64(packed->kc, K - pc), 0, N, inv_scale, packed->data8 + b * block_quads,
                   packed->colsum8 + b * columns);
    free(inv_scale);
    return packed;
}

/* bf16 and int8 products pack A once for the whole team (its packing is a larger share of the
 * time than in the float product, which packs per thread): k block b, row panel p at
 * b * a_block + p * mr * units, where units = pairs (quads) of a full k block; then each thread
 * multiplies its panels of B with every row, A block by A block (mc rows stay in L2). */
static void sgemm_packed_low(int trans_a, int64_t M, float alpha, const float *A, int64_t lda,
                             const cc_gemm_packed *B, float beta, float *C, int64_t ldc) {
    const cc_gemm_int8_backend *be8 = B->be8;
    const cc_gemm_bf16_backend *be16 = B->be16;
    const int mr = be8 ? be8->mr : be16->mr, nr = be8 ? be8->nr : be16->nr, per_word = be8 ? 4 : 2;
    int64_t units = B->kc / per_word, k_blocks = (B->K + B->kc - 1) / B->kc, row_panels = (M + mr - 1) / mr;
    int64_t a_block = row_panels * mr * units, columns = B->panels * nr, b_block = columns * units;
    int64_t mc = round_up(be8 ? be8->mc : be16->mc, mr);
    /* packed A, then (int8) the scale and inverse scale of each row */
    uint32_t *packed_a = (uint32_t *)thread_buffer(2, (size_t)(k_blocks * a_block + (be8 ? 2 * M : 0)));
    if (!packed_a) return; /* cc_last_error: out of memory; C untouched */
    float *a_scale = (float *)(packed_a + k_blocks * a_block), *a_inv_scale = a_scale + M;
    int n_threads = low_precision_threads(M, B, per_word);
#pragma omp parallel num_threads(n_threads)
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        if (be8) {
            for (int64_t i = tid; i < M; i += team) /* row i of op(A) */
                int8_scale(trans_a ? A + i : A + i * lda, B->K, trans_a ? lda : 1, &a_scale[i], &a_inv_scale[i]);
#pragma omp barrier
        }
        for (int64_t job = tid; job < k_blocks * row_panels; job += team) {
            int64_t b = job / row_panels, p = job % row_panels, pc = b * B->kc, kc = min64(B->kc, B->K - pc);
            uint32_t *dst = packed_a + b * a_block + p * mr * units;
            if (be8) be8->pack_a(trans_a, A, lda, p * mr, min64(mr, M - p * mr), pc, kc, a_inv_scale + p * mr, dst);
            else be16->pack_a(trans_a, A, lda, p * mr, min64(mr, M - p * mr), pc, kc, dst);
        }
#pragma omp barrier
        int64_t panel0 = B->panels * tid / team, panel1 = B->panels * (tid + 1) / team;
        for (int64_t b = 0; b < k_blocks; b++) {
            int64_t pc = b * B->kc, words = (min64(B->kc, B->K - pc) + per_word - 1) / per_word;
            float block_beta = pc == 0 ? beta : 1.0f;
            const uint32_t *a_blk = packed_a + b * a_block, *b_blk = (be8 ? B->data8 : B->data16) + b * b_block;
            const int32_t *colsum = be8 ? B->colsum8 + b * columns : NULL;
            for (int64_t ic = 0; ic < M; ic += mc) {
                int64_t m = min64(mc, M - ic);
                for (int64_t panel = panel0; panel < panel1; panel++) {
                    int64_t j = panel * nr;
                    int n = (int)min64(nr, B->N - j);
                    for (int64_t ir = 0; ir < m; ir += mr) {
                        int rows = (int)min64(mr, m - ir);
                        const uint32_t *ap = a_blk + (ic + ir) * units, *bp = b_blk + panel * nr * words;
                        float *c = C + (ic + ir) * ldc + j;
                        if (be8)
                            be8->micro(rows, n, words, ap, bp, colsum + j, B->scale8 + j, a_scale + ic + ir, c, ldc, alpha,
                                       block_beta);
                        else be16->micro(rows, n, words, ap, bp, c, ldc, alpha, block_beta);
                    }
                }
            }
        }
    }
}

void cc_sgemm_packed(int trans_a, int64_t M, float alpha, const float *A, int64_t lda, const cc_gemm_packed *B,
                     float beta, float *C, int64_t ldc) {
    int64_t K = B->K, N = B->N;
    if (check_args(trans_a, 0, M, N, K, lda, N, ldc) != 0 || M == 0) return;
    if (alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    if (B->be16 || B->be8) {
        sgemm_packed_low(trans_a, M, alpha, A, lda, B, beta, C, ldc);
        return;
    }
    const cc_gemm_backend *be = B->be;
    /* the sizes and blocking of this product, for the helpers the unpacked path uses */
    gemm_problem shape = {.be = be, .M = M, .N = N, .K = K, .kc = (int)B->kc,
                          .mc = (int)m_block(be)};
    int64_t mc = shape.mc;
    int n_threads = threads_for(&shape);
    if (n_threads > B->panels) n_threads = (int)B->panels;
    size_t a_floats = (size_t)packed_a_floats(&shape, M);
    unsigned char missed[255] = {0}; /* threads that got no A buffer: their columns are redone below */
    if (n_threads > 255) n_threads = 255;
#pragma omp parallel num_threads(n_threads)
    {
        int tid = omp_get_thread_num(), team = omp_get_num_threads();
        float *buf = thread_buffer(0, a_floats);
        int64_t panel0 = B->panels * tid / team, panel1 = B->panels * (tid + 1) / team;
        if (buf) packed_region(trans_a, M, alpha, A, lda, B, beta, C, ldc, panel0, panel1, mc, buf);
        else missed[tid] = (unsigned char)team;
    }
    for (int tid = 0; tid < n_threads; tid++) {
        if (!missed[tid]) continue;
        int team = missed[tid];
        float *buf = thread_buffer(0, a_floats);
        if (!buf) return; /* cc_last_error: out of memory */
        packed_region(trans_a, M, alpha, A, lda, B, beta, C, ldc, B->panels * tid / team, B->panels * (tid + 1) / team, mc,
                      buf);
    }
}

/* ---- batched ---------------------------------------------------------------------------- */

void cc_sgemm_batched(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                      int64_t lda, int64_t stride_a, const float *B, int64_t ldb, int64_t stride_b, float beta,
                      float *C, int64_t ldc, int64_t stride_c, int64_t batch) {
    if (check_args(trans_a, trans_b, M, N, K, lda, ldb, ldc) != 0 || M == 0 || N == 0 || batch <= 0) return;
    const cc_gemm_backend *be = active_backend();
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int n_threads = omp_in_parallel() ? 1 : cc_get_threads();
    if (be && n_threads > 1 && batch > 1 && flops < BATCH_SMALL_FLOPS) {
        /* one product per thread; cc_sgemm sees omp_in_parallel() and stays single-threaded */
        int64_t n_teams = batch < n_threads ? batch : n_threads;
#pragma omp parallel for num_threads((int)n_teams) schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; b++)
            cc_sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                     C + b * stride_c, ldc);
        return;
    }
    for (int64_t b = 0; b < batch; b++)
        cc_sgemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta,
                 C + b * stride_c, ldc);
}
