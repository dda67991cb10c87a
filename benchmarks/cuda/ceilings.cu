/* ceilings.cu — the two measured ceilings every CUDA kernel is judged against (METHOD.md), and the
 * GEMM variants that decide the bf16 mode's design, on the machine at hand.
 *
 *   ceilings [--quick]
 *
 * Copy bandwidth: a large device-to-device cudaMemcpy and a float4 copy kernel, bytes read + bytes
 * written over the median time. GEMM rate: cuBLAS on random data (never zeros) at 8192^3 for
 * bf16 -> bf16, bf16 -> f32 (the backend's bf16 mode), f32 with CUBLAS_COMPUTE_32F (no TF32, the
 * f32 mode), TF32 and CUBLAS_COMPUTE_32F_FAST_16BF on f32 operands; then the same variants at the
 * ViT-B/32 batch-256 shapes (M = 12800 tokens). The last line is machine-readable:
 *   CEILINGS copy_gbs=... bf16_tflops=... f32_tflops=...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define CHECK_CUDA(call)                                                                                    \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess) {                                                                            \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));   \
            exit(1);                                                                                        \
        }                                                                                                   \
    } while (0)
#define CHECK_BLAS(call)                                                                                    \
    do {                                                                                                    \
        cublasStatus_t s_ = (call);                                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                                  \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cublasGetStatusString(s_)); \
            exit(1);                                                                                        \
        }                                                                                                   \
    } while (0)

__global__ void fill_random(float *x, size_t n, unsigned seed) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        x[i] = (float)(h & 0xffff) / 32768.0f - 1.0f;
    }
}

__global__ void to_bf16(const float *x, __nv_bfloat16 *y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16(x[i]);
}

__global__ void copy4(const float4 *__restrict__ src, float4 *__restrict__ dst, size_t n4) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) dst[i] = src[i];
}

template <typename F>
static double median_ms(F run, int reps) {
    cudaEvent_t a, b;
    CHECK_CUDA(cudaEventCreate(&a));
    CHECK_CUDA(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) run();
    CHECK_CUDA(cudaDeviceSynchronize());
    std::vector<float> ms(reps);
    for (int i = 0; i < reps; i++) {
        CHECK_CUDA(cudaEventRecord(a));
        run();
        CHECK_CUDA(cudaEventRecord(b));
        CHECK_CUDA(cudaEventSynchronize(b));
        CHECK_CUDA(cudaGetLastError());
        CHECK_CUDA(cudaEventElapsedTime(&ms[i], a, b));
    }
    std::sort(ms.begin(), ms.end());
    CHECK_CUDA(cudaEventDestroy(a));
    CHECK_CUDA(cudaEventDestroy(b));
    return ms[reps / 2];
}

struct gemm_variant {
    const char *name;
    cudaDataType ab, c;
    cublasComputeType_t compute;
};

/* TFLOP/s of C[m,n] = A[m,k] B[k,n] (column-major, no transposes) for one variant. */
static double gemm_tflops(cublasHandle_t h, const gemm_variant &v, int m, int n, int k, void *A, void *B, void *C) {
    float alpha = 1.0f, beta = 0.0f;
    double ms = median_ms(
        [&]() {
            CHECK_BLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, A, v.ab, m, B, v.ab, k, &beta, C, v.c, m,
                                    v.compute, CUBLAS_GEMM_DEFAULT));
        },
        10);
    return 2.0 * m * n * k / (ms * 1e-3) / 1e12;
}

int main(int argc, char **argv) {
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, %d SMs, %.1f GiB, L2 %d MB\n", prop.name, prop.multiProcessorCount,
           prop.totalGlobalMem / 1073741824.0, prop.l2CacheSize >> 20);
    /* copy bandwidth: 2 GiB buffers (far above L2) */
    size_t bytes = (size_t)2 << 30, n = bytes / 4;
    float *src, *dst;
    CHECK_CUDA(cudaMalloc(&src, bytes));
    CHECK_CUDA(cudaMalloc(&dst, bytes));
    fill_random<<<1024, 256>>>(src, n, 1);
    CHECK_CUDA(cudaGetLastError());
    double ms_memcpy = median_ms([&]() { CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); }, 10);
    double ms_kernel = median_ms(
        [&]() {
            copy4<<<prop.multiProcessorCount * 8, 256>>>((const float4 *)src, (float4 *)dst, n / 4);
        },
        10);
    double gbs_memcpy = 2.0 * bytes / (ms_memcpy * 1e-3) / 1e9, gbs_kernel = 2.0 * bytes / (ms_kernel * 1e-3) / 1e9;
    printf("| ceiling | value |\n|---|---|\n");
    printf("| device-to-device cudaMemcpy (read + write) | %.0f GB/s |\n", gbs_memcpy);
    printf("| float4 copy kernel (read + write) | %.0f GB/s |\n", gbs_kernel);
    CHECK_CUDA(cudaFree(src));
    CHECK_CUDA(cudaFree(dst));
    /* GEMMs on random data */
    cublasHandle_t h;
    CHECK_BLAS(cublasCreate(&h));
    int big = quick ? 4096 : 8192;
    size_t max_elems = (size_t)big * big;
    float *A32, *B32, *C32;
    __nv_bfloat16 *A16, *B16, *C16;
    CHECK_CUDA(cudaMalloc(&A32, max_elems * 4));
    CHECK_CUDA(cudaMalloc(&B32, max_elems * 4));
    CHECK_CUDA(cudaMalloc(&C32, max_elems * 4));
    CHECK_CUDA(cudaMalloc(&A16, max_elems * 2));
    CHECK_CUDA(cudaMalloc(&B16, max_elems * 2));
    CHECK_CUDA(cudaMalloc(&C16, max_elems * 2));
    fill_random<<<1024, 256>>>(A32, max_elems, 2);
    fill_random<<<1024, 256>>>(B32, max_elems, 3);
    to_bf16<<<1024, 256>>>(A32, A16, max_elems);
    to_bf16<<<1024, 256>>>(B32, B16, max_elems);
    CHECK_CUDA(cudaGetLastError());
    const gemm_variant variants[] = {
        {"bf16 x bf16 -> bf16", CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F},
        {"bf16 x bf16 -> f32 (bf16 mode)", CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F},
        {"f32 FAST_16BF (f32 operands)", CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_16BF},
        {"f32 TF32", CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32},
        {"f32 (no TF32, f32 mode)", CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F},
    };
    double peak_bf16 = 0, peak_f32 = 0;
    for (const gemm_variant &v : variants) {
        bool is16 = v.ab == CUDA_R_16BF;
        void *A = is16 ? (void *)A16 : (void *)A32, *B = is16 ? (void *)B16 : (void *)B32;
        void *C = v.c == CUDA_R_16BF ? (void *)C16 : (void *)C32;
        double t = gemm_tflops(h, v, big, big, big, A, B, C);
        printf("| GEMM %d^3 %s | %.1f TFLOP/s |\n", big, v.name, t);
        if (v.ab == CUDA_R_16BF && v.c == CUDA_R_16BF) peak_bf16 = t;
        if (v.compute == CUBLAS_COMPUTE_32F && v.ab == CUDA_R_32F) peak_f32 = t;
    }
    /* ViT-B/32 at batch 256: tokens x width -> hidden (fc1) and the qkv projection */
    const int shapes[][3] = {{3072, 12800, 768}, {2304, 12800, 768}, {768, 12800, 3072}};
    const char *shape_names[] = {"fc1 12800x768 -> 3072", "qkv 12800x768 -> 2304", "fc2 12800x3072 -> 768"};
    for (int s = 0; s < 3; s++)
        for (const gemm_variant &v : variants) {
            if (v.compute == CUBLAS_COMPUTE_32F_FAST_TF32 || (v.ab == CUDA_R_16BF && v.c == CUDA_R_16BF)) continue;
            bool is16 = v.ab == CUDA_R_16BF;
            void *A = is16 ? (void *)A16 : (void *)A32, *B = is16 ? (void *)B16 : (void *)B32;
            double t = gemm_tflops(h, v, shapes[s][0], shapes[s][1], shapes[s][2], A, B, C32);
            printf("| GEMM %s %s | %.1f TFLOP/s |\n", shape_names[s], v.name, t);
        }
    printf("CEILINGS copy_gbs=%.1f bf16_tflops=%.1f f32_tflops=%.1f\n", std::max(gbs_memcpy, gbs_kernel), peak_bf16, peak_f32);
    CHECK_BLAS(cublasDestroy(h));
    return 0;
}
