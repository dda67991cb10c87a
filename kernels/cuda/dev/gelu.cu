/* gelu.cu — development file for the activations GELU (tanh), GELU (erf) and QuickGELU, forward
 * and backward (see dev/common.cuh).
 *
 * Versions:
 *   1  one element per thread, grid-stride (the production kernel's scalar fallback)
 *   2  four elements per thread with 16-byte loads and stores (production path when aligned)
 * Memory-bound: forward reads x and writes y (8 bytes/element), backward reads dy and x, writes
 * dx (12 bytes/element); the floor is bytes / copy bandwidth.
 */
#include "kernels/cuda/elementwise.cu"
#include "kernels/cuda/dev/common.cuh"

static double ref_forward(int kind, double x) {
    switch (kind) {
    case CC_ACT_GELU_TANH: return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case CC_ACT_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    default: return x / (1 + exp(-1.702 * x));
    }
}

static double ref_grad(int kind, double x) { /* central difference of the double reference */
    double h = 1e-5;
    return (ref_forward(kind, x + h) - ref_forward(kind, x - h)) / (2 * h);
}

static void run_kind(int kind, int64_t n, const dev_args &a) {
    static const char *names[3] = {"gelu_tanh", "gelu_erf", "quick_gelu"};
    printf("%s n=%lld\n", names[kind], (long long)n);
    std::vector<float> x(n), dy(n);
    fill_normal(x, 21 + kind, 2.0f);
    fill_normal(dy, 31 + kind);
    std::vector<double> y_ref(n), dx_ref(n);
    for (int64_t i = 0; i < n; i++) {
        y_ref[i] = ref_forward(kind, x[i]);
        dx_ref[i] = dy[i] * ref_grad(kind, x[i]);
    }
    float *d_x[ROTATE_COPIES], *d_dy = to_device(dy), *d_out = NULL;
    for (int c = 0; c < ROTATE_COPIES; c++) d_x[c] = to_device(x);
    CHECK_CUDA(cudaMalloc(&d_out, n * 4));
    char what[96];
    for (int v = 1; v <= 2; v++) {
        if (a.version && a.version != v) continue;
        for (int backward = 0; backward < 2; backward++) {
            map_params p = map_make_params(backward ? MAP_ACT_BACKWARD : MAP_ACT_FORWARD, NULL, d_x[0], d_out, n);
            p.act = kind;
            auto run = [&](int c) {
                map_params q = p;
                if (backward) {
                    q.a = d_dy;
                    q.b = d_x[c];
                } else {
                    q.a = d_x[c];
                }
                if (v == 1) map_kernel<<<grid_for(n), MAP_THREADS>>>(q);
                else map4_kernel<<<grid_for(n / 4), MAP_THREADS>>>(q);
            };
            poison(d_out, n);
            run(0);
            CHECK_CUDA(cudaDeviceSynchronize());
            snprintf(what, sizeof what, "%s %s v%d", names[kind], backward ? "backward" : "forward", v);
            report_check(what, rel_error(to_host(d_out, n), backward ? dx_ref : y_ref), 1e-5);
            report_bandwidth(what, time_ms(run), (double)n * (backward ? 12 : 8), a);
        }
    }
    for (int c = 0; c < ROTATE_COPIES; c++) CHECK_CUDA(cudaFree(d_x[c]));
    CHECK_CUDA(cudaFree(d_dy));
    CHECK_CUDA(cudaFree(d_out));
}

int main(int argc, char **argv) {
    dev_args a = parse_args(argc, argv);
    init_device();
    int64_t n = a.quick ? (int64_t)256 * 50 * 3072 / 4 : (int64_t)256 * 50 * 3072; /* ViT-B/32 MLP hidden, batch 256 */
    for (int kind = 0; kind < 3; kind++) run_kind(kind, n, a);
    return finish();
}
