/* fuzz_embedding_cache.c — libFuzzer target: the embedding cache of `clipc index build/add`
 * (INDEX.cache, a Flat index file whose item texts are the cache keys; tools/cmd_index.c). The tool's
 * file is compiled into this target (its cache functions are static), and the fuzzed file is opened
 * (its CRC and size fields first made to match its bytes) with the stamp the seeds were written with, looked up by key and path, and merged into a new cache
 * as `index build` does. */
#include "tools/cmd_index.c"
#include "tests/fuzz/fuzz_common.h"

#define SEED_DIM 4

static cache_stamp stamp = {.model = "/models/tiny", .model_files = "10:20,30:40", .kind = "images", .scales = "",
                            .long_text = ""};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *fixed = fuzz_index_fix_crcs(data, size); /* else mutations stop at the CRC checks */
    const char *path = fuzz_file_slot(0, "index.cache", fixed, size);
    free(fixed);
    char out_path[600];
    snprintf(out_path, sizeof out_path, "%s.new", path);
    for (int kind = 0; kind < 2; kind++) {
        snprintf(stamp.kind, sizeof stamp.kind, "%s", kind ? "texts" : "images");
        emb_cache c;
        /* the model's dimension: the seeds' (tests/fuzz/gen_seeds.c); a cache of another is ignored */
        if (cache_open(&c, path, &stamp, SEED_DIM) != 0 || !c.idx) continue;
        int dim = cc_index_dim(c.idx);
        if (dim >= 1 && dim <= 4096) {
            float *row = calloc((size_t)dim, sizeof(float));
            for (int64_t i = 0; i < c.n; i++) {
                int64_t id = cache_find(&c, c.by_key[i].key);
                if (id < 0 || cc_index_reconstruct(c.idx, id, row) != 0) {
                    /* a key listed in the cache must be found and its vector readable */
                    if (id < 0) abort();
                }
            }
            /* one new entry merged with the old ones, as a build that embedded one more file */
            char *keys[1] = {"1 2 /images/new.jpg"};
            cache_write(out_path, &stamp, dim, 1, keys, row, &c);
            free(row);
        }
        cache_free(&c);
    }
    return 0;
}
