/* fuzz_index.c — libFuzzer target: index files of every type (Flat, SQ8/F16/BF16, IVF-Flat, PQ, IVF-PQ, PQx4fs, IVF-PQx4fs, RFlat, HNSW;
 * index/io.c). Each input is loaded twice: as it is without the CRC pass, and with the CRC pass after
 * its CRC and size fields were made to match its bytes (fuzz_index_fix_crcs). A loaded index is searched (plain, with nprobe/efSearch overrides, filtered),
 * the result ids reconstructed and their texts and timestamps read, then an id removed and the index
 * searched again (copy-on-write pages of the mapping). */
#include "index/index.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_DIM 4096
#define K 8

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

static void check_results(const cc_index *idx, const int64_t *ids, float *vec) {
    for (int i = 0; i < K; i++) {
        if (ids[i] < 0) continue;
        if (cc_index_reconstruct(idx, ids[i], vec) != 0 && cc_index_count(idx) > 0) {
            /* a returned id must be reconstructible (except for PQ without stored vectors: still 0) */
        }
        cc_index_item_text(idx, ids[i]);
        int64_t t;
        cc_index_item_timestamp(idx, ids[i], &t);
    }
}

static void exercise(cc_index *idx) {
    int dim = cc_index_dim(idx);
    if (dim < 1 || dim > MAX_DIM) return;
    cc_index_desc(idx);
    cc_index_metric(idx);
    cc_index_memory_bytes(idx);
    cc_index_has_item_texts(idx);
    for (int i = 0; i < cc_index_meta_count(idx); i++) {
        const char *key, *value;
        if (cc_index_meta_at(idx, i, &key, &value) == 0 && (!key || !value)) abort();
    }
    float *query = calloc((size_t)dim, sizeof(float)), *vec = calloc((size_t)dim, sizeof(float));
    for (int d = 0; d < dim; d++) query[d] = (float)((d * 7) % 5) - 2.0f;
    int64_t ids[K];
    float scores[K];
    if (cc_index_is_trained(idx) && cc_index_search(idx, 1, query, K, ids, scores) == 0) {
        check_results(idx, ids, vec);
        cc_search_params p = {.nprobe = 1000000, .ef_search = 3, .rerank = 2};
        if (cc_index_search_ex(idx, 1, query, K, &p, ids, scores) == 0) check_results(idx, ids, vec);
        uint64_t words[2] = {0x5555555555555555ull, ~0ull};
        cc_id_filter allow = {words, 128};
        if (cc_index_search_filtered(idx, 1, query, K, &allow, ids, scores) == 0) check_results(idx, ids, vec);
        if (ids[0] >= 0 && cc_index_remove(idx, 1, &ids[0]) == 1)
            if (cc_index_search(idx, 1, query, K, ids, scores) == 0) check_results(idx, ids, vec);
    }
    for (int64_t id = 0; id < 16; id++) {
        cc_index_reconstruct(idx, id, vec);
        cc_index_item_text(idx, id);
    }
    free(query);
    free(vec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("index.cci", data, size);
    cc_index *idx = cc_index_load_flags(path, CC_INDEX_LOAD_NO_CRC);
    if (idx) {
        exercise(idx);
        cc_index_free(idx);
    }
    /* with the CRC pass, on a copy whose CRCs and size fields match its bytes */
    uint8_t *fixed = fuzz_index_fix_crcs(data, size);
    idx = cc_index_load(fuzz_file("index.cci", fixed, size));
    free(fixed);
    if (idx) {
        exercise(idx);
        cc_index_free(idx);
    }
    return 0;
}
