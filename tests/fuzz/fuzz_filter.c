/* fuzz_filter.c — libFuzzer target: a search filter expression (index/filter.h) parsed as given (not
 * NUL-terminated), and when it parses, built into an allow-list over a small index with timestamps
 * and tags and searched; every allowed id must satisfy the expression. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/filter.h"
#include "tests/fuzz/fuzz_common.h"

#define N_ITEMS 64
#define DIM 4

static cc_index *index_for_fuzz;
static int64_t stamps[N_ITEMS];
static const char *tag_lists[N_ITEMS];
static const char *const tag_names[] = {"cat", "dog", "pet", "a b", "\xc3\xa9t\xc3\xa9"};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    float x[N_ITEMS * DIM];
    for (int i = 0; i < N_ITEMS * DIM; i++) x[i] = (float)((i * 37) % 17) - 8.0f;
    for (int i = 0; i < N_ITEMS; i++) stamps[i] = i % 5 == 0 ? INT64_MIN : 1700000000LL + 86400LL * (i - 20);
    static char tag_text[N_ITEMS][64];
    for (int i = 0; i < N_ITEMS; i++) { /* item i carries tag j when bit j of i % 32 is set */
        tag_text[i][0] = 0;
        for (int j = 0; j < 5; j++)
            if ((i % 32) >> j & 1) snprintf(tag_text[i] + strlen(tag_text[i]), 64 - strlen(tag_text[i]), "%s%s",
                                            tag_text[i][0] ? "," : "", tag_names[j]);
        tag_lists[i] = tag_text[i][0] ? tag_text[i] : NULL;
    }
    index_for_fuzz = cc_index_create("Flat", DIM, CC_METRIC_IP);
    if (!index_for_fuzz || cc_index_add_items_tagged(index_for_fuzz, N_ITEMS, x, NULL, NULL, stamps, tag_lists) != 0)
        abort();
    int64_t gone[] = {3, 40};
    if (cc_index_remove(index_for_fuzz, 2, gone) != 2) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1); /* exactly size bytes: the parser must not read past them */
    if (!copy) return 0;
    memcpy(copy, data, size);
    cc_filter_expr e;
    if (cc_filter_parse(copy, size, &e) == 0) {
        cc_id_filter allow;
        int64_t n_allowed;
        if (cc_filter_build(index_for_fuzz, &e, &allow, &n_allowed) == 0) {
            int64_t counted = 0;
            for (int64_t id = 0; id < allow.n_bits; id++) {
                if (!((allow.words[id >> 6] >> (id & 63)) & 1)) continue;
                counted++;
                if (id == 3 || id == 40) abort(); /* removed */
                if (e.has_time && (stamps[id] == INT64_MIN || stamps[id] < e.time_lo || stamps[id] > e.time_hi)) abort();
                for (int g = 0; g < e.n_tag_groups; g++) { /* each group: one of its names is on the item */
                    int any = 0;
                    for (int j = 0; j < e.tag_groups[g].n; j++)
                        for (int t = 0; t < 5; t++)
                            any |= ((id % 32) >> t & 1) && !strcmp(e.tag_groups[g].names[j], tag_names[t]);
                    if (!any) abort();
                }
            }
            if (counted != n_allowed) abort();
            int64_t ids[8];
            float scores[8];
            cc_search_params p = {.filter = &allow};
            float q[DIM] = {1, -1, 0.5f, 2};
            if (cc_index_search_ex(index_for_fuzz, 1, q, 8, &p, ids, scores) != 0) abort();
            for (int i = 0; i < 8; i++)
                if (ids[i] >= 0 && !((allow.words[ids[i] >> 6] >> (ids[i] & 63)) & 1)) abort();
            cc_filter_free_allow(&allow);
        }
        cc_filter_expr_free(&e);
    }
    free(copy);
    return 0;
}
