/* fuzz_manifest.c — libFuzzer target: the shard manifest parser (index/manifest.c), and the save /
 * reload round trip of whatever it accepts. */
#include "index/manifest.h"
#include "tests/fuzz/fuzz_common.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cc_manifest m;
    if (cc_manifest_parse((const char *)data, size, "fuzz.manifest", &m) != 0) return 0;
    const char *path = fuzz_file("out.manifest", (const uint8_t *)"", 0);
    cc_manifest back;
    if (cc_manifest_save(&m, path) != 0 || cc_manifest_load(path, &back) != 0) abort();
    if (back.n_shards != m.n_shards || back.dim != m.dim || strcmp(back.type, m.type) != 0) abort();
    for (int s = 0; s < m.n_shards; s++)
        if (strcmp(back.files[s], m.files[s]) != 0 || back.counts[s] != m.counts[s]) abort();
    cc_manifest_free(&back);
    cc_manifest_free(&m);
    return 0;
}
