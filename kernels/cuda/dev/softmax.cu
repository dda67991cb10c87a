/* softmax.cu — development file for the row softmax with optional causal mask (see dev/common.cuh).
 *
 * Versions:
 *   1  one thread per row, three passes (max, sum, write)
 *   2  one warp per row, shuffle reductions (production)
 * Backward: production (warp per row). Rows are attention-score rows: width T, causal period T.
 * Memory-bound: floor = (read x + write y) / copy bandwidth.
 */
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/rowwise.cu"
#include "kernels/cuda/dev/common.cuh"

static void reference(const std::vector<float> &x, const std::vector<float> &dy, int64_t rows, int64_t width, float scale,
                      int64_t period, std::vector<double> &y, std::vector<double> &dx) {
    y.assign(rows * width, 0);
    dx.assign(rows * width, 0);
    for (int64_t r = 0; r < rows; r++) {
        int64_t valid = period ? r % period + 1 : width;
        if (valid > width) valid = width;
        double m = -INFINITY, sum = 0, dot = 0;
        for (int64_t i = 0; i < valid; i++) m = std::max(m, (double)x[r * width + i] * scale);
        for (int64_t i = 0; i < valid; i++) sum += exp((double)x[r * width + i] * scale - m);
        for (int64_t i = 0; i < valid; i++) y[r * width + i] = exp((double)x[r * width + i] * scale - m) / sum;
        for (int64_t i = 0; i < width; i++) dot += dy[r * width + i] * y[r * width + i];
        for (int64_t i = 0; i < width; i++) dx[r * width + i] = scale * y[r * width + i] * (dy[r * width + i] - dot);
    }
}

__global__ void softmax_v1(const float *x, float *y, int64_t rows, int64_t width, float scale, int64_t period) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    int64_t valid = period ? r % period + 1 : width;
    if (valid > width) valid = width;
    const float *xr = x + r * width;
    float m = -INFINITY, sum = 0;
    for (int64_t i = 0; i < valid; i++) m = fmaxf(m, xr[i] * scale);
    for (int64_t i = 0; i < valid; i++) sum += expf(xr[i] * scale - m);
    for (int64_t i = 0; i < width; i++) y[r * width + i] = i < valid ? expf(xr[i] * scale - m) / sum : 0.0f;
}

static void run_shape(int64_t rows, int64_t width, int causal, const dev_args &a) {
    printf("softmax rows=%lld width=%lld causal=%d\n", (long long)rows, (long long)width, causal);
    int64_t n = rows * width, period = causal ? width : 0;
    float scale = 0.125f;
    std::vector<float> x(n), dy(n);
    fill_normal(x, 11, 4.0f);
    fill_normal(dy, 12);
    std::vector<double> y_ref, dx_ref;
    reference(x, dy, rows, width, scale, period, y_ref, dx_ref);
    float *d_x[ROTATE_COPIES], *d_y = NULL, *d_dy = to_device(dy), *d_dx = NULL;
    for (int c = 0; c < ROTATE_COPIES; c++) d_x[c] = to_device(x);
    CHECK_CUDA(cudaMalloc(&d_y, n * 4));
    CHECK_CUDA(cudaMalloc(&d_dx, n * 4));
    char what[96];
    for (int v = 1; v <= 2; v++) {
        if (a.version && a.version != v) continue;
        auto run = [&](int c) {
            if (v == 1) softmax_v1<<<(unsigned)((rows + 127) / 128), 128>>>(d_x[c], d_y, rows, width, scale, period);
            else CHECK_CUDA(cc_cuda_softmax_forward(0, d_x[c], d_y, rows, width, scale, period));
        };
        poison(d_y, n);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "forward v%d T=%lld%s", v, (long long)width, causal ? " causal" : "");
        report_check(what, rel_error(to_host(d_y, n), y_ref), 1e-5);
        report_bandwidth(what, time_ms(run), (double)n * 8, a);
    }
    /* backward needs the forward's y */
    CHECK_CUDA(cc_cuda_softmax_forward(0, d_x[0], d_y, rows, width, scale, period));
    auto run_back = [&](int c) { CHECK_CUDA(cc_cuda_softmax_backward(0, d_dy, d_y, d_dx, rows, width, scale)); };
    poison(d_dx, n);
    run_back(0);
    CHECK_CUDA(cudaDeviceSynchronize());
    snprintf(what, sizeof what, "backward T=%lld%s", (long long)width, causal ? " causal" : "");
    report_check(what, rel_error(to_host(d_dx, n), dx_ref), 1e-5);
    report_bandwidth(what, time_ms(run_back), (double)n * 12, a);
    for (int c = 0; c < ROTATE_COPIES; c++) CHECK_CUDA(cudaFree(d_x[c]));
    CHECK_CUDA(cudaFree(d_y));
    CHECK_CUDA(cudaFree(d_dy));
    CHECK_CUDA(cudaFree(d_dx));
}

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    run_shape(256 * 12 * 50, 50, 0, a); /* ViT-B/32 scores at batch 256 */
    run_shape(64 * 8 * 77, 77, 1, a);   /* text tower, causal */
    if (!a.quick) run_shape(16 * 1024, 1024, 1, a);
    return finish();
}
