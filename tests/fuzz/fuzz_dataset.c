/* fuzz_dataset.c — libFuzzer target: dataset files (data/dataset.c). The first byte picks the reader
 * (its value mod 4, so the seeds start with '0'..'3'): 0 a .json read as COCO or Karpathy by content,
 * 1 a Karpathy .json with the split filter "train,restval", 2 a .tsv, 3 a .csv (RFC 4180 quoting).
 * Read pairs are then joined with the root, split by image and shuffled. */
#include "data/dataset.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 4;
    static const char *const names[] = {"captions.json", "dataset_coco.json", "pairs.tsv", "pairs.csv"};
    const char *path = fuzz_file(names[mode], data + 1, size - 1);
    cc_dataset_options o = {0};
    if (mode == 1) {
        o.format = CC_DATASET_KARPATHY;
        o.split = "train,restval";
    }
    o.image_root = "/images";
    cc_dataset ds;
    if (cc_dataset_read(path, &o, &ds) != 0) return 0;
    char buf[256];
    for (int64_t i = 0; i < ds.n_pairs; i++) {
        if (!ds.pairs[i].image || !ds.pairs[i].caption) abort();
        if (ds.pairs[i].image_index < 0 || ds.pairs[i].image_index >= ds.n_images) abort();
        cc_dataset_image_path(&ds, i, buf, sizeof buf);
    }
    cc_dataset train, val;
    if (cc_dataset_split(&ds, 0.3, 7, &train, &val) == 0) {
        if (train.n_pairs + val.n_pairs != ds.n_pairs) abort();
        cc_dataset_free(&train);
        cc_dataset_free(&val);
    }
    cc_dataset_shuffle(&ds, 11);
    cc_dataset_free(&ds);
    return 0;
}
