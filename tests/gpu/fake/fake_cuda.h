/* fake_cuda.h — a host stand-in for the parts of the CUDA runtime, cuBLAS and cuBLASLt that
 * clipc's CUDA backend uses, plus the SIMT emulator that runs kernel bodies (see
 * kernels/cuda/simt.cuh). Compiled with a plain C++ compiler and -DCC_FAKE_CUDA, the backend and
 * every kernel run on the CPU: "device memory" is host memory (poisoned with NaN bytes when
 * allocated), a stream executes its work at once unless it is being captured into a graph,
 * kernels run thread by thread as fibers with real barrier and warp-collective semantics, and
 * GEMMs are reference loops. The fake checks what the real libraries would reject (leading
 * dimensions, calls that are illegal during stream capture, copies outside an allocation,
 * divergent barriers) and reports it as an error, so CI catches those bugs without a GPU.
 *
 * It is a test double: tests/gpu/check_ops built against it compares the CUDA backend with the
 * CPU backend in `make test`. Nothing here is linked into clipc itself.
 */
#ifndef CLIPC_TESTS_GPU_FAKE_CUDA_H
#define CLIPC_TESTS_GPU_FAKE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include <functional>

/* ---- vector types ---- */
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) uint2 {
    unsigned x, y;
};
inline float4 make_float4(float x, float y, float z, float w) {
    float4 v;
    v.x = x;
    v.y = y;
    v.z = z;
    v.w = w;
    return v;
}

/* ---- runtime ---- */
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorUnknown = 999,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
    cudaDevAttrL2CacheSize = 38,
};
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

typedef struct cc_fake_stream *cudaStream_t;
typedef struct cc_fake_event *cudaEvent_t;
typedef struct cc_fake_graph *cudaGraph_t;
typedef struct cc_fake_graph *cudaGraphExec_t;

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor, multiProcessorCount;
};
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMalloc(void **ptr, size_t size);
cudaError_t cudaFree(void *ptr);
cudaError_t cudaMallocHost(void **ptr, size_t size);
cudaError_t cudaFreeHost(void *ptr);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void *dst, int value, size_t count, cudaStream_t stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

/* ---- SIMT emulator ---- */
struct cc_fake_block;

struct cc_simt_ctx {
    cc_fake_block *block;
    int t, bx_, by_, bz_, nbx_, nby_, nthreads_;
    int tid() const { return t; }
    int lane() const { return t & 31; }
    int warp() const { return t >> 5; }
    int nthreads() const { return nthreads_; }
    int bx() const { return bx_; }
    int by() const { return by_; }
    int bz() const { return bz_; }
    int nbx() const { return nbx_; }
    int nby() const { return nby_; }
    void sync() const;
    float shfl_xor(float v, int mask) const;
    double shfl_xor(double v, int mask) const;
    int shfl_xor(int v, int mask) const;
    void mma_bf16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) const;
    unsigned char *smem() const;
};

inline void cc_atomic_add(float *p, float v) { *p += v; } /* fibers of one OS thread: no races */
inline int cc_atomic_claim(int *p, int value) {
    if (*p != 0) return 0;
    *p = value;
    return 1;
}

/* Runs (or, while `stream` is being captured, records) a grid of the body. */
cudaError_t cc_fake_launch(unsigned gx, unsigned gy, unsigned gz, unsigned block, size_t smem, cudaStream_t stream,
                           std::function<void(cc_simt_ctx &)> body);
/* The message of the last emulator failure (divergent barrier, bad launch configuration, ...). */
const char *cc_fake_last_message(void);
/* Counters for tests: kernel launches run, graph launches, captures ended. */
struct cc_fake_counters {
    long kernels, graph_launches, captures;
};
cc_fake_counters cc_fake_get_counters(void);
/* Device memory limit of the fake (bytes), for out-of-memory tests. */
void cc_fake_set_memory_limit(size_t bytes);

#endif
