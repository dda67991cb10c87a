/* fuzz_tokenizer_files.c — libFuzzer target: the tokenizer's vocabulary files.
 *   input with a line "--merges.txt--": vocab.json (before it) + merges.txt (after), Hugging Face layout;
 *   otherwise: openai's bpe_simple_vocab_16e6.txt(.gz) — gzip (by its magic) or plain text.
 * A loaded tokenizer encodes and decodes a few fixed texts. */

#include "data/tokenizer.h"
#include "tests/fuzz/fuzz_common.h"

#define MERGES_SEPARATOR "\n--merges.txt--\n"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_single_thread();
    return 0;
}

static void exercise(cc_tokenizer *tok) {
    static const char *const texts[] = {"a photo of a cat", "Hello, World! 123 <|endoftext|>", "caf\xc3\xa9 \xe2\x9c\x93 'll",
                                        "\xff\xfe broken", ""};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t ids[CC_CLIP_CONTEXT];
        int eot;
        int n = cc_tokenizer_encode_context(tok, texts[i], CC_CLIP_CONTEXT, ids, &eot, NULL, NULL);
        if (n > 0) {
            size_t len;
            free(cc_tokenizer_decode(tok, ids, n, &len));
        }
    }
    cc_tokenizer_vocab_size(tok);
    cc_tokenizer_sot(tok);
    cc_tokenizer_eot(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_part parts[2];
    cc_tokenizer *tok;
    if (fuzz_split(data, size, MERGES_SEPARATOR, parts, 2) == 2) {
        const char *vocab = fuzz_file_slot(0, "vocab.json", parts[0].data, parts[0].size);
        const char *merges = fuzz_file_slot(1, "merges.txt", parts[1].data, parts[1].size);
        tok = cc_tokenizer_load_hf(vocab, merges);
    } else {
        tok = cc_tokenizer_load_openai(fuzz_file("bpe_simple_vocab_16e6.txt.gz", data, size));
    }
    if (tok) {
        exercise(tok);
        cc_tokenizer_free(tok);
    }
    return 0;
}
