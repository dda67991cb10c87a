/* fuzz_meta_tsv.c — libFuzzer target: the --meta FILE.tsv of `clipc index build/add`
 * ("KEY<TAB>TIME[<TAB>TAGS]" lines, TIME unix seconds or an ISO 8601 date; tools/cmd_index.c, compiled in here for
 * its static parser), applied to a fixed set of caption items. */
#include "tools/cmd_index.c"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("meta.tsv", data, size);
    char *texts[4] = {"a cat", "a dog", "two birds", ""};
    int64_t timestamps[4];
    char *tags[4] = {0};
    for (int i = 0; i < 4; i++) timestamps[i] = NO_TIMESTAMP;
    item_set set = {.n = 4, .texts = texts, .keys = texts, .timestamps = timestamps, .tags = tags};
    apply_meta(path, 0, &set);
    for (int i = 0; i < 4; i++) free(tags[i]);
    /* the time parser alone, on the input as one field */
    if (size < 256) {
        char *field = fuzz_strndup(data, size);
        int64_t t;
        cc_parse_time(field, &t);
        free(field);
    }
    return 0;
}
