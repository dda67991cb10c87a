/* fuzz_tar.c — libFuzzer target: tar archives and WebDataset shards (data/tar.c, data/webdataset.c).
 * The first byte picks the input (its value mod 2, so the seeds start with '0' or '1'):
 *   0 a tar archive: walked from memory by cc_tar_next (every member must lie inside the input), then
 *     read from a file as a shard (cc_dataset_read on "*.tar"), every sample's image bytes read back;
 *   1 a shard spec ("dir/{000..012}.tar,x.tar"): expanded, each path checked to end in ".tar". */
#include "data/dataset.h"
#include "data/tar.h"
#include "data/webdataset.h"
#include "tests/fuzz/fuzz_common.h"

typedef struct mem {
    const uint8_t *data;
    size_t size;
} mem;

static int mem_read(void *ctx, uint64_t offset, void *buf, size_t n) {
    mem *m = ctx;
    if (offset > m->size || m->size - offset < n) return -1;
    memcpy(buf, m->data + offset, n);
    return 0;
}

static void walk_memory(const uint8_t *data, size_t size) {
    mem m = {data, size};
    cc_tar_reader r;
    cc_tar_reader_init(&r, "fuzz.tar", size, mem_read, &m);
    static cc_tar_member member;
    int got;
    while ((got = cc_tar_next(&r, &member)) == 1) {
        if (member.offset > size || member.size > size - member.offset) abort();
        if (strlen(member.name) > CC_TAR_MAX_NAME) abort();
    }
}

static void read_shard(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("shard.tar", data, size);
    cc_dataset ds;
    if (cc_dataset_read(path, NULL, &ds) != 0) return;
    for (int64_t i = 0; i < ds.n_pairs; i++) {
        char *bytes;
        size_t n;
        if (cc_dataset_image_bytes(ds.pairs[i].image, &bytes, &n) != 0) abort(); /* indexed, so readable */
        if (n > size) abort();
        free(bytes);
    }
    cc_dataset_free(&ds);
}

static void expand_spec(const uint8_t *data, size_t size) {
    if (size > 256) return;
    char spec[257];
    memcpy(spec, data, size);
    spec[size] = 0;
    char **paths;
    int64_t n;
    if (cc_shard_spec_expand(spec, &paths, &n) != 0) return;
    for (int64_t i = 0; i < n; i++)
        if (cc_shard_spec_is(spec) && strlen(paths[i]) < 4) abort();
    cc_shard_paths_free(paths, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] % 2 == 0) {
        walk_memory(data + 1, size - 1);
        read_shard(data + 1, size - 1);
    } else {
        expand_spec(data + 1, size - 1);
    }
    return 0;
}
