/* kmeans.h — k-means clustering for the IVF coarse quantiser and the PQ codebooks, and the
 * "m nearest centroids of each query" step of IVF search/add, both with GEMM assignment
 * (cc_sgemm over blocks of points). */
#ifndef CLIPC_INDEX_KMEANS_H
#define CLIPC_INDEX_KMEANS_H

#include <stdint.h>

typedef enum { CC_KMEANS_INIT_AUTO = 0, CC_KMEANS_INIT_RANDOM, CC_KMEANS_INIT_PLUSPLUS } cc_kmeans_init;

typedef struct cc_kmeans_params {
    int niter;                   /* Lloyd iterations (default 25) */
    int ip;                      /* assign by largest inner product and keep centroids unit norm
                                    (spherical k-means, for inner-product indexes) */
    int max_points_per_centroid; /* train on at most k * this points, sampled (default 256; 0 = all) */
    uint64_t seed;
    cc_kmeans_init init;         /* AUTO: k-means++ when cheap enough, else random distinct points */
    const char *progress;        /* label for a progress line over the iterations (NULL: none) */
} cc_kmeans_params;

void cc_kmeans_default_params(cc_kmeans_params *p);

/* Clusters n points of dimension d into k centroids (out: k*d floats). Needs n >= k. Empty
 * clusters are repaired by splitting a large one. *out_objective (may be NULL) receives the mean
 * squared distance (L2) or mean inner product (ip) to the assigned centroid at the last iteration. */
int cc_kmeans(const float *x, int64_t n, int d, int k, const cc_kmeans_params *p, float *centroids,
              double *out_objective);

/* For each of nq points, the m best centroids (best first): by inner product when ip, else by
 * smallest squared L2 (then out_sims holds minus the squared distance). centroid_norms (k squared
 * norms) is needed for L2 and ignored for ip. Runs GEMM over blocks and selection over threads. */
int cc_nearest_centroids(const float *x, int64_t nq, int d, const float *centroids,
                         const float *centroid_norms, int k, int ip, int m, int32_t *out_ids,
                         float *out_sims);

#endif
