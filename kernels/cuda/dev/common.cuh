/* common.cuh — shared plumbing of the kernel development files in kernels/cuda/dev/ (llm.c style:
 * each file holds a CPU reference, numbered kernel versions, validation of every version on fresh
 * random inputs, and a benchmark).
 *
 *   dev/<op> [version] [--copy-gbs X] [--bf16-tflops Y] [--f32-tflops Z] [--quick]
 *
 * Validation: max|gpu - ref| / max|ref| against a CPU reference in double, with the output buffer
 * poisoned (NaN) before each run so unwritten elements fail. Timing: CUDA events around each
 * launch, after warm-up, rotating between several input copies so repeated runs do not just hit
 * the L2 cache; the median of the runs is reported. The ceilings (from benchmarks/cuda/ceilings,
 * measured on the same machine in the same run) turn times into "% of copy bandwidth" or "% of
 * bf16 tensor peak". Every CUDA call is checked; any failure exits non-zero with the call named.
 */
#ifndef CLIPC_DEV_COMMON_CUH
#define CLIPC_DEV_COMMON_CUH

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include <cuda_runtime.h>

#define CHECK_CUDA(call)                                                                                    \
    do {                                                                                                    \
        cudaError_t err_ = (call);                                                                          \
        if (err_ != cudaSuccess) {                                                                          \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            exit(1);                                                                                        \
        }                                                                                                   \
    } while (0)

#define TIMED_RUNS 20
#define WARMUP_RUNS 3
#define ROTATE_COPIES 4 /* input copies cycled through while timing */

struct dev_args {
    int version; /* 0 = all */
    double copy_gbs, bf16_tflops, f32_tflops;
    int quick;
};

static inline dev_args parse_args(int argc, char **argv) {
    dev_args a = {0, 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--copy-gbs") && i + 1 < argc) a.copy_gbs = atof(argv[++i]);
        else if (!strcmp(argv[i], "--bf16-tflops") && i + 1 < argc) a.bf16_tflops = atof(argv[++i]);
        else if (!strcmp(argv[i], "--f32-tflops") && i + 1 < argc) a.f32_tflops = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) a.quick = 1;
        else if (argv[i][0] != '-') a.version = atoi(argv[i]);
        else {
            fprintf(stderr, "usage: %s [version] [--copy-gbs X] [--bf16-tflops Y] [--f32-tflops Z] [--quick]\n", argv[0]);
            exit(2);
        }
    }
    return a;
}

static inline void init_device(void) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        fprintf(stderr, "no usable CUDA device: %s\n", cudaGetErrorString(e));
        exit(1);
    }
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount);
    cc_cuda_set_grid_cap((unsigned)prop.multiProcessorCount * 8);
}

/* Deterministic pseudo-random normal numbers (xorshift + Box-Muller), seeded per call site. */
static inline void fill_normal(std::vector<float> &v, unsigned long long seed, float scale = 1.0f, float offset = 0.0f) {
    unsigned long long s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < v.size(); i += 2) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u1 = ((s >> 11) + 1.0) / 9007199254740993.0;
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double u2 = (s >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        v[i] = offset + scale * (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < v.size()) v[i + 1] = offset + scale * (float)(r * sin(6.283185307179586 * u2));
    }
}

template <typename T>
static T *to_device(const std::vector<T> &host) {
    T *d = NULL;
    CHECK_CUDA(cudaMalloc(&d, host.size() * sizeof(T) + 16));
    CHECK_CUDA(cudaMemcpy(d, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static std::vector<T> to_host(const T *d, size_t n) {
    std::vector<T> h(n);
    CHECK_CUDA(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

static inline void poison(float *d, size_t n) { CHECK_CUDA(cudaMemset(d, 0xff, n * sizeof(float))); }

/* max|got - ref| / max|ref|; NaN anywhere = infinity. */
static inline double rel_error(const std::vector<float> &got, const std::vector<double> &ref) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        diff = std::max(diff, fabs(got[i] - ref[i]));
        scale = std::max(scale, fabs(ref[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static int n_failed_checks;

static inline void report_check(const char *what, double err, double tol) {
    int ok = err <= tol;
    if (!ok) n_failed_checks++;
    printf("  %-44s rel err %.2e (tol %.0e) %s\n", what, err, tol, ok ? "ok" : "FAIL");
}

/* Median milliseconds of `run(copy)` over TIMED_RUNS launches, copies rotating. */
template <typename F>
static double time_ms(F run) {
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    for (int i = 0; i < WARMUP_RUNS; i++) run(i % ROTATE_COPIES);
    CHECK_CUDA(cudaGetLastError());
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> ms(TIMED_RUNS);
    for (int i = 0; i < TIMED_RUNS; i++) {
        CHECK_CUDA(cudaEventRecord(start));
        run(i % ROTATE_COPIES);
        CHECK_CUDA(cudaEventRecord(stop));
        CHECK_CUDA(cudaEventSynchronize(stop));
        CHECK_CUDA(cudaGetLastError());
        CHECK_CUDA(cudaEventElapsedTime(&ms[i], start, stop));
    }
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    std::sort(ms.begin(), ms.end());
    return ms[TIMED_RUNS / 2];
}

/* "1.234 ms  2512 GB/s (84% of copy)" */
static inline void report_bandwidth(const char *what, double ms, double bytes, const dev_args &a) {
    double gbs = bytes / (ms * 1e-3) / 1e9;
    printf("  %-44s %8.4f ms %8.0f GB/s", what, ms, gbs);
    if (a.copy_gbs > 0) printf("  (%3.0f%% of copy)", 100.0 * gbs / a.copy_gbs);
    printf("\n");
    printf("RESULT %s ms=%.5f gbs=%.1f pct_copy=%.1f\n", what, ms, gbs, a.copy_gbs > 0 ? 100.0 * gbs / a.copy_gbs : 0.0);
}

static inline void report_flops(const char *what, double ms, double flops, double ceiling_tflops, const char *ceiling_name) {
    double tflops = flops / (ms * 1e-3) / 1e12;
    printf("  %-44s %8.4f ms %8.1f TFLOP/s", what, ms, tflops);
    if (ceiling_tflops > 0) printf("  (%3.0f%% of %s)", 100.0 * tflops / ceiling_tflops, ceiling_name);
    printf("\n");
    printf("RESULT %s ms=%.5f tflops=%.2f pct_%s=%.1f\n", what, ms, tflops, ceiling_name,
           ceiling_tflops > 0 ? 100.0 * tflops / ceiling_tflops : 0.0);
}

static inline int finish(void) {
    printf(n_failed_checks ? "%d validation check(s) FAILED\n" : "all validation checks passed\n", n_failed_checks);
    return n_failed_checks ? 1 : 0;
}

#endif
