/* layernorm.cu — development file for layernorm forward and backward (see dev/common.cuh).
 *
 * Versions (forward):
 *   1  one thread per row: simple, loads not coalesced (consecutive threads read rows apart)
 *   2  one warp per row, the row re-read for mean, variance and output (production generic path)
 *   3  one warp per row, the row held in registers as float4 (production path for widths <= 1024)
 * Backward: 1 one thread per row (dx); 2 production dx (warp per row, registers when possible);
 * dgamma/dbeta: production (row statistics, then deterministic column partial sums).
 * Memory-bound: the floor is (read x + write y) / copy bandwidth; backward reads x, dy, writes dx.
 */
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/rowwise.cu"
#include "kernels/cuda/dev/common.cuh"

/* ---- CPU reference (double) ---- */
static void reference(const std::vector<float> &x, const std::vector<float> &gamma, const std::vector<float> &beta,
                      const std::vector<float> &dy, int64_t rows, int64_t width, std::vector<double> &y,
                      std::vector<double> &dx, std::vector<double> &dparams) {
    y.assign(rows * width, 0);
    dx.assign(rows * width, 0);
    dparams.assign(2 * width, 0);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = &x[r * width], *dyr = &dy[r * width];
        double mean = 0, var = 0;
        for (int64_t i = 0; i < width; i++) mean += xr[i];
        mean /= width;
        for (int64_t i = 0; i < width; i++) var += (xr[i] - mean) * (xr[i] - mean);
        double rstd = 1.0 / sqrt(var / width + 1e-5);
        double sum_g = 0, sum_gx = 0;
        for (int64_t i = 0; i < width; i++) {
            double xhat = (xr[i] - mean) * rstd, g = (double)dyr[i] * gamma[i];
            y[r * width + i] = xhat * gamma[i] + beta[i];
            sum_g += g;
            sum_gx += g * xhat;
            dparams[i] += dyr[i] * xhat;
            dparams[width + i] += dyr[i];
        }
        for (int64_t i = 0; i < width; i++) {
            double xhat = (xr[i] - mean) * rstd;
            dx[r * width + i] = rstd * ((double)dyr[i] * gamma[i] - sum_g / width - xhat * sum_gx / width);
        }
    }
}

/* ---- version 1: one thread per row ---- */
__global__ void ln_forward_v1(const float *x, const float *gamma, const float *beta, float *y, int64_t rows, int64_t width) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float *xr = x + r * width;
    float mean = 0, var = 0;
    for (int64_t i = 0; i < width; i++) mean += xr[i];
    mean /= width;
    for (int64_t i = 0; i < width; i++) var += (xr[i] - mean) * (xr[i] - mean);
    float rstd = 1.0f / sqrtf(var / width + 1e-5f);
    for (int64_t i = 0; i < width; i++) y[r * width + i] = (xr[i] - mean) * rstd * gamma[i] + beta[i];
}

__global__ void ln_backward_v1(const float *dy, const float *x, const float *gamma, float *dx, int64_t rows, int64_t width) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float *xr = x + r * width, *dyr = dy + r * width;
    float mean = 0, var = 0;
    for (int64_t i = 0; i < width; i++) mean += xr[i];
    mean /= width;
    for (int64_t i = 0; i < width; i++) var += (xr[i] - mean) * (xr[i] - mean);
    float rstd = 1.0f / sqrtf(var / width + 1e-5f), sum_g = 0, sum_gx = 0;
    for (int64_t i = 0; i < width; i++) {
        float g = dyr[i] * gamma[i];
        sum_g += g;
        sum_gx += g * (xr[i] - mean) * rstd;
    }
    for (int64_t i = 0; i < width; i++)
        dx[r * width + i] = rstd * (dyr[i] * gamma[i] - sum_g / width - (xr[i] - mean) * rstd * sum_gx / width);
}

static void run_shape(int64_t rows, int64_t width, const dev_args &a) {
    printf("layernorm rows=%lld width=%lld\n", (long long)rows, (long long)width);
    int64_t n = rows * width;
    std::vector<float> x(n), gamma(width), beta(width), dy(n);
    fill_normal(x, 1, 2.0f, 0.5f);
    fill_normal(gamma, 2, 0.3f, 1.0f);
    fill_normal(beta, 3);
    fill_normal(dy, 4);
    std::vector<double> y_ref, dx_ref, dparams_ref;
    reference(x, gamma, beta, dy, rows, width, y_ref, dx_ref, dparams_ref);
    float *dx_in[ROTATE_COPIES];
    for (int c = 0; c < ROTATE_COPIES; c++) dx_in[c] = to_device(x);
    float *d_gamma = to_device(gamma), *d_beta = to_device(beta), *d_dy = to_device(dy), *d_out = NULL, *d_params = NULL;
    void *scratch = NULL;
    CHECK_CUDA(cudaMalloc(&d_out, n * 4));
    CHECK_CUDA(cudaMalloc(&d_params, 2 * width * 4));
    CHECK_CUDA(cudaMalloc(&scratch, cc_cuda_layernorm_params_scratch_bytes(rows, width)));
    unsigned blocks_thread = (unsigned)((rows + 127) / 128);
    ln_params p = make_ln(NULL, d_gamma, d_beta, NULL, d_out, rows, width, 1e-5f);
    char what[96];
    for (int v = 1; v <= 3; v++) {
        if (a.version && a.version != v) continue;
        auto run = [&](int c) {
            ln_params q = p;
            q.x = dx_in[c];
            if (v == 1) ln_forward_v1<<<blocks_thread, 128>>>(dx_in[c], d_gamma, d_beta, d_out, rows, width);
            else if (v == 2) ln_forward_kernel<<<row_blocks(rows), ROW_THREADS>>>(q);
            else CHECK_CUDA(cc_cuda_layernorm_forward(0, dx_in[c], d_gamma, d_beta, d_out, rows, width, 1e-5f));
        };
        poison(d_out, n);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "forward v%d", v);
        report_check(what, rel_error(to_host(d_out, n), y_ref), 1e-5);
        report_bandwidth(what, time_ms(run), (double)n * 8 + width * 8, a);
    }
    for (int v = 1; v <= 2; v++) {
        if (a.version && a.version != v) continue;
        auto run = [&](int c) {
            if (v == 1) ln_backward_v1<<<blocks_thread, 128>>>(d_dy, dx_in[c], d_gamma, d_out, rows, width);
            else CHECK_CUDA(cc_cuda_layernorm_backward_x(0, d_dy, dx_in[c], d_gamma, d_out, rows, width, 1e-5f));
        };
        poison(d_out, n);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "backward dx v%d", v);
        report_check(what, rel_error(to_host(d_out, n), dx_ref), 1e-5);
        report_bandwidth(what, time_ms(run), (double)n * 12 + width * 4, a);
    }
    auto run_params = [&](int c) {
        CHECK_CUDA(cc_cuda_layernorm_backward_params(0, d_dy, dx_in[c], d_params, rows, width, 1e-5f, scratch));
    };
    poison(d_params, 2 * width);
    run_params(0);
    CHECK_CUDA(cudaDeviceSynchronize());
    report_check("backward dgamma/dbeta", rel_error(to_host(d_params, 2 * width), dparams_ref), 1e-5);
    report_bandwidth("backward dgamma/dbeta", time_ms(run_params), (double)n * 8, a);
    for (int c = 0; c < ROTATE_COPIES; c++) CHECK_CUDA(cudaFree(dx_in[c]));
    CHECK_CUDA(cudaFree(d_gamma));
    CHECK_CUDA(cudaFree(d_beta));
    CHECK_CUDA(cudaFree(d_dy));
    CHECK_CUDA(cudaFree(d_out));
    CHECK_CUDA(cudaFree(d_params));
    CHECK_CUDA(cudaFree(scratch));
}

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    run_shape(256 * 50, 768, a); /* ViT-B/32 activations at batch 256 */
    if (!a.quick) {
        run_shape(256 * 77, 512, a); /* text tower */
        run_shape(4096, 1100, a);    /* odd width: generic path */
    }
    return finish();
}
