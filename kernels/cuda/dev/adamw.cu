/* adamw.cu — development file for the AdamW update and the global sum of squares (grad norm)
 * (see dev/common.cuh).
 *
 * Versions:
 *   1  one launch per parameter tensor (what a per-tensor optimizer loop does)
 *   2  one fused launch over all tensors (production: blockIdx.y = tensor)
 * The parameter set is ViT-B/32-sized (the 12 blocks' weights and biases, ~85M floats).
 * Memory-bound: per element AdamW reads param, grad, m, v and writes param, m, v: 28 bytes; the sum
 * of squares reads 4 bytes.
 */
#include "kernels/cuda/adamw.cu"
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/dev/common.cuh"

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    /* ViT-B/32 transformer tensors: per block ln1(2x768), qkv(2304x768 + 2304), proj(768x768 + 768),
     * ln2(2x768), fc1(3072x768 + 3072), fc2(768x3072 + 768) */
    std::vector<int64_t> sizes;
    int layers = a.quick ? 3 : 12;
    for (int l = 0; l < layers; l++) {
        int64_t block[] = {768, 768, 2304 * 768, 2304, 768 * 768, 768, 768, 768, 3072 * 768, 3072, 768 * 3072, 768};
        for (int64_t s : block) sizes.push_back(s);
    }
    int count = (int)sizes.size();
    int64_t total = 0, max_n = 0;
    for (int64_t s : sizes) {
        total += s;
        max_n = std::max(max_n, s);
    }
    printf("adamw: %d tensors, %.1fM parameters\n", count, total / 1e6);
    std::vector<float> p(total), g(total), m(total), v(total);
    fill_normal(p, 41, 0.02f);
    fill_normal(g, 42, 0.01f);
    fill_normal(m, 43, 0.001f);
    fill_normal(v, 44, 1e-5f, 2e-5f);
    for (auto &x : v) x = fabsf(x);
    /* reference: 1 step, double */
    const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.98f, eps = 1e-6f, wd = 0.1f, grad_scale = 0.7f;
    const int64_t step = 5;
    float bias1 = 1.0f - powf(beta1, (float)step), bias2 = 1.0f - powf(beta2, (float)step);
    std::vector<double> p_ref(total);
    double sumsq_ref = 0;
    for (int64_t i = 0; i < total; i++) {
        double gg = (double)g[i] * grad_scale;
        double mm = beta1 * (double)m[i] + (1 - beta1) * gg, vv = beta2 * (double)v[i] + (1 - beta2) * gg * gg;
        p_ref[i] = p[i] * (1.0 - (double)lr * wd) - (lr / bias1) * mm / (sqrt(vv / bias2) + eps);
        sumsq_ref += (double)g[i] * g[i];
    }
    float *d_p = to_device(p), *d_g = to_device(g), *d_m = to_device(m), *d_v = to_device(v);
    float *d_p0 = to_device(p), *d_m0 = to_device(m), *d_v0 = to_device(v);
    std::vector<cc_cuda_adamw_entry> entries(count);
    std::vector<cc_cuda_sumsq_entry> sq(count);
    int64_t offset = 0;
    for (int i = 0; i < count; i++) {
        cc_cuda_adamw_entry &e = entries[i];
        memset(&e, 0, sizeof e);
        e.param = d_p + offset;
        e.grad = d_g + offset;
        e.m = d_m + offset;
        e.v = d_v + offset;
        e.n = sizes[i];
        e.beta1 = beta1;
        e.beta2 = beta2;
        e.eps = eps;
        e.grad_scale = grad_scale;
        e.bias2 = bias2;
        e.step_size = lr / bias1;
        e.decay = 1.0f - lr * wd;
        sq[i].x = d_g + offset;
        sq[i].n = sizes[i];
        offset += sizes[i];
    }
    cc_cuda_adamw_entry *d_entries = to_device(entries);
    cc_cuda_sumsq_entry *d_sq = to_device(sq);
    auto restore = [&]() {
        CHECK_CUDA(cudaMemcpy(d_p, d_p0, total * 4, cudaMemcpyDeviceToDevice));
        CHECK_CUDA(cudaMemcpy(d_m, d_m0, total * 4, cudaMemcpyDeviceToDevice));
        CHECK_CUDA(cudaMemcpy(d_v, d_v0, total * 4, cudaMemcpyDeviceToDevice));
    };
    char what[96];
    for (int ver = 1; ver <= 2; ver++) {
        if (a.version && a.version != ver) continue;
        auto run = [&](int) {
            if (ver == 1)
                for (int i = 0; i < count; i++) CHECK_CUDA(cc_cuda_adamw(0, d_entries + i, 1, sizes[i]));
            else CHECK_CUDA(cc_cuda_adamw(0, d_entries, count, max_n));
        };
        restore();
        run(0);
        CHECK_CUDA(cudaDeviceSynchronize());
        snprintf(what, sizeof what, "adamw v%d (%s)", ver, ver == 1 ? "per tensor" : "fused");
        report_check(what, rel_error(to_host(d_p, total), p_ref), 1e-6);
        report_bandwidth(what, time_ms(run), (double)total * 28, a); /* repeated steps: timing only */
    }
    void *scratch = NULL;
    double *d_out = NULL;
    CHECK_CUDA(cudaMalloc(&scratch, cc_cuda_sumsq_scratch_bytes(count)));
    CHECK_CUDA(cudaMalloc(&d_out, sizeof(double)));
    auto run_sq = [&](int) { CHECK_CUDA(cc_cuda_sum_squares(0, d_sq, count, d_out, scratch)); };
    run_sq(0);
    double got = 0;
    CHECK_CUDA(cudaMemcpy(&got, d_out, sizeof got, cudaMemcpyDeviceToHost));
    report_check("sum of squares (fused)", fabs(got - sumsq_ref) / sumsq_ref, 1e-9);
    report_bandwidth("sum of squares (fused)", time_ms(run_sq), (double)total * 4, a);
    return finish();
}
