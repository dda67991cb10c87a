/* crossentropy.cu — development file for cross-entropy (mean over rows of logsumexp - logit of the
 * label), forward and backward: the InfoNCE loss of CLIP is two of these over the similarity
 * matrix (see dev/common.cuh).
 *
 * Versions (forward):
 *   1  one thread per row, double sums (reads a row with one thread: slow for wide rows)
 *   2  one block per row, block reductions, per-row losses summed in a fixed order (production)
 * Backward: production (block per row; dlogits = softmax - onehot, times dloss / rows).
 * Memory-bound: the forward reads the logits once (production reads twice: max, then sum);
 * the backward reads them and writes dlogits.
 */
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/rowwise.cu"
#include "kernels/cuda/dev/common.cuh"

__global__ void ce_forward_v1(const float *logits, const int32_t *labels, double *row_loss, int64_t rows, int64_t cols) {
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float *row = logits + r * cols;
    float m = -INFINITY;
    for (int64_t c = 0; c < cols; c++) m = fmaxf(m, row[c]);
    double sum = 0;
    for (int64_t c = 0; c < cols; c++) sum += exp((double)row[c] - m);
    row_loss[r] = m + log(sum) - row[labels[r]];
}

static void run_shape(int64_t rows, int64_t cols, const dev_args &a) {
    printf("cross_entropy rows=%lld cols=%lld\n", (long long)rows, (long long)cols);
    int64_t n = rows * cols;
    std::vector<float> logits(n);
    fill_normal(logits, 51, 3.0f);
    std::vector<int32_t> labels(rows);
    for (int64_t r = 0; r < rows; r++) labels[r] = (int32_t)((r * 7919) % cols);
    std::vector<double> loss_ref(1, 0), grad_ref(n);
    const float dloss = 1.5f;
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, sum = 0;
        for (int64_t c = 0; c < cols; c++) m = std::max(m, (double)logits[r * cols + c]);
        for (int64_t c = 0; c < cols; c++) sum += exp(logits[r * cols + c] - m);
        double lse = m + log(sum);
        loss_ref[0] += (lse - logits[r * cols + labels[r]]) / rows;
        for (int64_t c = 0; c < cols; c++)
            grad_ref[r * cols + c] = (exp(logits[r * cols + c] - lse) - (c == labels[r])) * dloss / rows;
    }
    float *d_logits[ROTATE_COPIES], *d_loss = NULL, *d_grad = NULL;
    for (int c = 0; c < ROTATE_COPIES; c++) d_logits[c] = to_device(logits);
    int32_t *d_labels = to_device(labels);
    std::vector<float> dl(1, dloss);
    float *d_dloss = to_device(dl);
    void *scratch = NULL;
    cc_cuda_error_record *err = NULL;
    CHECK_CUDA(cudaMalloc(&d_loss, 4));
    CHECK_CUDA(cudaMalloc(&d_grad, n * 4));
    CHECK_CUDA(cudaMalloc(&scratch, cc_cuda_cross_entropy_scratch_bytes(rows)));
    CHECK_CUDA(cudaMalloc(&err, sizeof *err));
    CHECK_CUDA(cudaMemset(err, 0, sizeof *err));
    char what[96];
    for (int v = 1; v <= 2; v++) {
        if (a.version && a.version != v) continue;
        auto run = [&](int c) {
            if (v == 1) {
                ce_forward_v1<<<(unsigned)((rows + 127) / 128), 128>>>(d_logits[c], d_labels, (double *)scratch, rows, cols);
                ce_finish_params f = {(const double *)scratch, rows, d_loss};
                ce_finish_kernel<<<1, CE_THREADS, CE_THREADS / 32 * sizeof(double)>>>(f);
            } else {
                CHECK_CUDA(cc_cuda_cross_entropy_forward(0, d_logits[c], d_labels, d_loss, rows, cols, scratch, err));
            }
        };
        poison(d_loss, 1);
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "forward v%d", v);
        report_check(what, rel_error(to_host(d_loss, 1), loss_ref), 1e-6);
        report_bandwidth(what, time_ms(run), (double)n * 4, a);
    }
    auto run_back = [&](int c) {
        CHECK_CUDA(cc_cuda_cross_entropy_backward(0, d_dloss, d_logits[c], d_labels, d_grad, rows, cols, err));
    };
    poison(d_grad, n);
    run_back(0);
    CHECK_CUDA(cudaDeviceSynchronize());
    report_check("backward", rel_error(to_host(d_grad, n), grad_ref), 1e-5);
    report_bandwidth("backward", time_ms(run_back), (double)n * 8, a);
    cc_cuda_error_record rec;
    CHECK_CUDA(cudaMemcpy(&rec, err, sizeof rec, cudaMemcpyDeviceToHost));
    report_check("no label error recorded", rec.code != 0, 0);
    for (int c = 0; c < ROTATE_COPIES; c++) CHECK_CUDA(cudaFree(d_logits[c]));
    CHECK_CUDA(cudaFree(d_labels));
    CHECK_CUDA(cudaFree(d_dloss));
    CHECK_CUDA(cudaFree(d_loss));
    CHECK_CUDA(cudaFree(d_grad));
    CHECK_CUDA(cudaFree(scratch));
    CHECK_CUDA(cudaFree(err));
}

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    run_shape(4096, 4096, a); /* InfoNCE at batch 4096 */
    if (!a.quick) run_shape(256, 49408, a); /* vocabulary-wide rows */
    return finish();
}
