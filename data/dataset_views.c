/* dataset_views.c — datasets derived from another: one sampled caption per image (see dataset.h). */
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "engine/util.h"

int cc_dataset_sample_captions(const cc_dataset *ds, uint64_t seed, cc_dataset *out) {
    int64_t n_images = ds->n_images;
    int64_t *count = cc_calloc((size_t)(n_images ? n_images : 1), sizeof(int64_t), "caption sampling");
    int64_t *chosen = cc_malloc((size_t)(n_images ? n_images : 1) * sizeof(int64_t), "caption sampling");
    int status = count && chosen && cc_dataset_init_empty(out, ds->root) == 0 ? 0 : -1;
    if (status == 0) {
        for (int64_t p = 0; p < ds->n_pairs; p++) count[ds->pairs[p].image_index]++;
        cc_rng rng;
        cc_rng_seed(&rng, seed);
        for (int64_t i = 0; i < n_images; i++) chosen[i] = count[i] > 1 ? (int64_t)cc_rng_below(&rng, (uint64_t)count[i]) : 0;
        /* count[i] becomes the number of image i's captions seen so far */
        memset(count, 0, (size_t)(n_images ? n_images : 1) * sizeof(int64_t));
        for (int64_t p = 0; p < ds->n_pairs && status == 0; p++) {
            const cc_pair *pair = &ds->pairs[p];
            if (count[pair->image_index]++ == chosen[pair->image_index])
                status = cc_dataset_add(out, pair->image, pair->caption);
        }
        if (status != 0) cc_dataset_free(out);
    }
    free(count);
    free(chosen);
    return status;
}
