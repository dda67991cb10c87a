/* fuzz_safetensors.c — libFuzzer target: a .safetensors file (header JSON + data) through cc_st_open,
 * then every tensor read as f32 and the metadata looked up. */
#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("model.safetensors", data, size);
    cc_safetensors st;
    if (cc_st_open(path, &st) != 0) return 0;
    for (int i = 0; i < st.n_entries; i++) {
        const cc_st_entry *e = &st.entries[i];
        if (e->is_index || e->nbytes > (16u << 20)) continue;
        int64_t count = 1;
        for (int d = 0; d < e->ndim; d++) count *= e->shape[d];
        float *dst = malloc((size_t)(count ? count : 1) * sizeof(float));
        if (dst) cc_st_read_f32(e, dst, count);
        free(dst);
        if (cc_st_find(&st, e->name) == NULL) abort(); /* every listed name must be found */
    }
    for (int i = 0; i < st.n_meta; i++)
        if (cc_st_metadata(&st, st.meta_keys[i]) == NULL) abort();
    cc_st_metadata(&st, "format");
    cc_st_close(&st);
    return 0;
}
