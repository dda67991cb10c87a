/* test_data_views.c — one sampled caption per image (cc_dataset_sample_captions): one pair per image
 * with one of its own captions, the same for the same seed, every caption drawn over many seeds, and
 * a dataset with one caption per image unchanged. */
#include <stdio.h>
#include <string.h>

#include "data/dataset.h"
#include "engine/util.h"
#include "tests/test.h"

TEST(dataset_sample_captions_one_per_image) {
    cc_dataset ds = {0};
    char image[32], caption[32];
    /* image k has k % 4 + 1 captions "k.c", interleaved with the other images' */
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 10; k++) {
            if (c > k % 4) continue;
            snprintf(image, sizeof image, "img%d.png", k);
            snprintf(caption, sizeof caption, "%d.%d", k, c);
            REQUIRE(cc_dataset_add(&ds, image, caption) == 0, "%s", cc_last_error());
        }
    REQUIRE(ds.n_images == 10 && ds.n_pairs == 23);
    int seen[10][4] = {{0}};
    uint64_t base = test_seed();
    for (int draw = 0; draw < 200; draw++) {
        cc_dataset one, again;
        REQUIRE(cc_dataset_sample_captions(&ds, base + (uint64_t)draw, &one) == 0, "%s", cc_last_error());
        REQUIRE(one.n_pairs == 10 && one.n_images == 10, "%lld pairs", (long long)one.n_pairs);
        int covered[10] = {0};
        for (int64_t p = 0; p < one.n_pairs; p++) {
            int k, c;
            REQUIRE(sscanf(one.pairs[p].image, "img%d.png", &k) == 1 && sscanf(one.pairs[p].caption, "%d.%d", &k, &c) == 2);
            CHECK(strcmp(one.pairs[p].image, (snprintf(image, sizeof image, "img%d.png", k), image)) == 0,
                  "caption %s paired with %s", one.pairs[p].caption, one.pairs[p].image);
            covered[k]++;
            seen[k][c]++;
        }
        for (int k = 0; k < 10; k++) CHECK(covered[k] == 1, "image %d appears %d times", k, covered[k]);
        if (draw == 0) {
            REQUIRE(cc_dataset_sample_captions(&ds, base, &again) == 0);
            for (int64_t p = 0; p < one.n_pairs; p++)
                CHECK(!strcmp(one.pairs[p].caption, again.pairs[p].caption), "same seed, another draw");
            cc_dataset_free(&again);
        }
        cc_dataset_free(&one);
    }
    for (int k = 0; k < 10; k++)
        for (int c = 0; c <= k % 4; c++) CHECK(seen[k][c] > 0, "caption %d of image %d never drawn in 200 epochs", c, k);
    /* one caption per image: the same pairs in the same order */
    cc_dataset single = {0}, view;
    for (int k = 0; k < 5; k++) {
        snprintf(image, sizeof image, "i%d", k);
        snprintf(caption, sizeof caption, "c%d", k);
        REQUIRE(cc_dataset_add(&single, image, caption) == 0);
    }
    REQUIRE(cc_dataset_sample_captions(&single, base, &view) == 0);
    REQUIRE(view.n_pairs == 5);
    for (int k = 0; k < 5; k++) CHECK(!strcmp(view.pairs[k].caption, single.pairs[k].caption));
    cc_dataset_free(&view);
    cc_dataset_free(&single);
    cc_dataset_free(&ds);
}
