/* fuzz_npy.c — libFuzzer target: a .npy file read as stored, as float32 and as int64. */
#include "data/npy.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("array.npy", data, size);
    cc_npy arr;
    if (cc_npy_read(path, &arr) == 0) {
        int64_t count = 1;
        for (int d = 0; d < arr.ndim; d++) count *= arr.shape[d];
        if (count != arr.count) abort();
        /* touch every byte the reader claims to hold */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)arr.count * cc_npy_dtype_size(arr.dtype); i++) sum += ((uint8_t *)arr.data)[i];
        cc_npy_free(&arr);
    }
    if (cc_npy_read_f32(path, &arr) == 0) cc_npy_free(&arr);
    if (cc_npy_read_i64(path, &arr) == 0) cc_npy_free(&arr);
    return 0;
}
