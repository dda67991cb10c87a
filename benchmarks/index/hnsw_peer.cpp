// hnsw_peer.cpp — clipc's HNSW against hnswlib (the reference implementation, header-only, built
// from its public source with the same -O3 -march=native) on the same data, in the same run: one
// thread, M = 16, efConstruction = 200, inner product on unit vectors. For each efSearch the
// recall@10 against exact search and the queries per second (one query per call) of both; then
// the speed ratio at the smallest efSearch reaching recall 0.95 and 0.99 for each.
//
// build and run: benchmarks/index/run_hnsw_peer.sh (HNSWLIB_DIR names the hnswlib checkout)
// usage: hnsw_peer [--n N] [--dim D] [--queries Q]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "hnswlib/hnswlib.h"

extern "C" {
#include "engine/util.h"
#include "index/index.h"
}

static const int K = 10;
static const int M = 16, EF_CONSTRUCTION = 200;
static const int EFS[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
static const int N_EFS = sizeof EFS / sizeof EFS[0];
static const float NOISE = 1.5f; // noise norm / centre norm: neighbours are not just cluster mates
static const int REPEATS = 3;    // timings: best of

// Clustered unit vectors (a few hundred centres plus noise), like embeddings more than uniform noise.
static std::vector<float> make_rows(cc_rng *rng, int64_t n, int d, const std::vector<float> &centres, int n_centres) {
    std::vector<float> x((size_t)n * d);
    for (int64_t i = 0; i < n; i++) {
        int c = (int)cc_rng_below(rng, (uint64_t)n_centres);
        double norm = 0;
        for (int j = 0; j < d; j++) {
            float v = centres[(size_t)c * d + j] + NOISE * cc_rng_normal(rng) / std::sqrt((float)d);
            x[(size_t)i * d + j] = v;
            norm += (double)v * v;
        }
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] = (float)(x[(size_t)i * d + j] / std::sqrt(norm));
    }
    return x;
}

static double recall(const std::vector<int64_t> &found, const std::vector<int64_t> &truth, int64_t nq) {
    int64_t hits = 0;
    for (int64_t i = 0; i < nq; i++)
        for (int a = 0; a < K; a++)
            for (int b = 0; b < K; b++)
                if (found[i * K + a] == truth[i * K + b]) hits++;
    return (double)hits / (double)(nq * K);
}

int main(int argc, char **argv) {
    int64_t n = 20000, nq = 500;
    int d = 128;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim")) d = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--queries")) nq = atoll(argv[i + 1]);
    }
    cc_set_threads(1);
    cc_rng rng;
    cc_rng_seed(&rng, 42);
    int n_centres = 200;
    std::vector<float> centres((size_t)n_centres * d);
    for (auto &v : centres) v = cc_rng_normal(&rng) / std::sqrt((float)d);
    std::vector<float> x = make_rows(&rng, n, d, centres, n_centres), q = make_rows(&rng, nq, d, centres, n_centres);

    // exact neighbours
    std::vector<int64_t> truth((size_t)nq * K), found((size_t)nq * K);
    cc_index *flat = cc_index_create("Flat", d, CC_METRIC_IP);
    if (!flat || cc_index_add(flat, n, x.data()) != 0 || cc_index_search(flat, nq, q.data(), K, truth.data(), NULL) != 0) {
        fprintf(stderr, "hnsw_peer: %s\n", cc_last_error());
        return 1;
    }
    cc_index_free(flat);

    // builds, one thread each
    double t0 = cc_now();
    char desc[32];
    snprintf(desc, sizeof desc, "HNSW%d", M);
    cc_index *ours = cc_index_create(desc, d, CC_METRIC_IP);
    if (!ours || cc_index_set_param(ours, "efConstruction", EF_CONSTRUCTION) != 0 || cc_index_add(ours, n, x.data()) != 0) {
        fprintf(stderr, "hnsw_peer: %s\n", cc_last_error());
        return 1;
    }
    double ours_build = cc_now() - t0;
    t0 = cc_now();
    hnswlib::InnerProductSpace space(d);
    hnswlib::HierarchicalNSW<float> peer(&space, (size_t)n, M, EF_CONSTRUCTION, 42);
    for (int64_t i = 0; i < n; i++) peer.addPoint(x.data() + (size_t)i * d, (size_t)i);
    double peer_build = cc_now() - t0;

    printf("HNSW%d (efConstruction %d) vs hnswlib, %lld x %d unit vectors (200 clusters, noise 1.5x), inner product, %lld queries,\n"
           "one thread, one query per call, best of 3 alternating runs; both measured in this run on this (shared) machine\n\n",
           M, EF_CONSTRUCTION, (long long)n, d, (long long)nq);
    printf("build: clipc %.2f s, hnswlib %.2f s (hnswlib / clipc = %.2f)\n\n", ours_build, peer_build,
           peer_build / ours_build);
    printf("| efSearch | clipc recall@10 | clipc q/s | hnswlib recall@10 | hnswlib q/s |\n|---|---|---|---|---|\n");
    double ours_rec[N_EFS], ours_qps[N_EFS], peer_rec[N_EFS], peer_qps[N_EFS];
    for (int e = 0; e < N_EFS; e++) {
        cc_search_params p = {};
        p.ef_search = EFS[e];
        ours_qps[e] = peer_qps[e] = 0;
        for (int r = 0; r < REPEATS; r++) { // alternating, so that load changes hit both alike
            t0 = cc_now();
            for (int64_t i = 0; i < nq; i++)
                if (cc_index_search_ex(ours, 1, q.data() + (size_t)i * d, K, &p, found.data() + i * K, NULL) != 0) {
                    fprintf(stderr, "hnsw_peer: %s\n", cc_last_error());
                    return 1;
                }
            ours_qps[e] = std::fmax(ours_qps[e], (double)nq / (cc_now() - t0));
            ours_rec[e] = recall(found, truth, nq);
            peer.setEf((size_t)EFS[e]);
            t0 = cc_now();
            for (int64_t i = 0; i < nq; i++) {
                auto res = peer.searchKnn(q.data() + (size_t)i * d, K);
                for (int j = K - 1; j >= 0 && !res.empty(); j--) {
                    found[i * K + j] = (int64_t)res.top().second;
                    res.pop();
                }
            }
            peer_qps[e] = std::fmax(peer_qps[e], (double)nq / (cc_now() - t0));
            peer_rec[e] = recall(found, truth, nq);
        }
        printf("| %d | %.3f | %.0f | %.3f | %.0f |\n", EFS[e], ours_rec[e], ours_qps[e], peer_rec[e], peer_qps[e]);
    }
    printf("\n| target recall@10 | clipc efSearch | clipc q/s | hnswlib efSearch | hnswlib q/s | clipc / hnswlib |\n"
           "|---|---|---|---|---|---|\n");
    const double targets[] = {0.95, 0.99};
    for (double target : targets) {
        int a = -1, b = -1;
        for (int e = N_EFS - 1; e >= 0; e--) {
            if (ours_rec[e] >= target) a = e;
            if (peer_rec[e] >= target) b = e;
        }
        if (a < 0 || b < 0) {
            printf("| %.2f | %s | | %s | | not reached |\n", target, a < 0 ? "-" : "ok", b < 0 ? "-" : "ok");
            continue;
        }
        printf("| %.2f | %d | %.0f | %d | %.0f | %.2f |\n", target, EFS[a], ours_qps[a], EFS[b], peer_qps[b],
               ours_qps[a] / peer_qps[b]);
    }
    cc_index_free(ours);
    return 0;
}
