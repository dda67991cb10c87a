/* tokenizer.h — the CLIP byte-level BPE tokenizer (openai/CLIP's SimpleTokenizer, ftfy as identity).
 *
 * Encoding a text:
 *   1. invalid UTF-8 is replaced by U+FFFD (one per maximal invalid subsequence, as Python's
 *      bytes.decode(errors="replace")) and counted;
 *   2. html.unescape twice (HTML5 named and numeric references, exactly Python's rules);
 *   3. leading/trailing whitespace (str.isspace) is stripped and each inner run of regex \s (Unicode
 *      White_Space: str.isspace without U+001C..U+001F, as openai's `import regex as re` gives) becomes
 *      one space;
 *   4. lowercase with Python's str.lower() (full Unicode, incl. İ -> i̇ and the final-sigma rule);
 *   5. pre-tokenisation with PCRE2 (UTF + UCP, caseless) and the pattern
 *        <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      (pure-ASCII text takes an equivalent hand-written scanner);
 *   6. each piece: its UTF-8 bytes as byte tokens, the last one with "</w>", then BPE merges by rank;
 *      the two special-token pieces map straight to their ids.
 * Vocabulary layout (openai and Hugging Face): ids 0..255 the byte symbols in GPT-2's bytes_to_unicode
 * order, 256..511 the same with "</w>", then one id per merge, then <|startoftext|>, <|endoftext|>.
 *
 * A cc_tokenizer is immutable after loading except for its word cache, which is locked: every function
 * may be called from several threads at once.
 */
#ifndef CLIPC_TOKENIZER_H
#define CLIPC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define CC_CLIP_CONTEXT 77          /* CLIP's text context: <sot> + 75 tokens + <eot> */
#define CC_CLIP_OPENAI_MERGES 48894 /* merges of the openai vocabulary used: 49152 - 256 - 2 */
#define CC_TOKENIZER_MAX_TEXT (64 << 20) /* longest text accepted by encode (bytes) */

typedef struct cc_tokenizer cc_tokenizer;

/* openai's bpe_simple_vocab_16e6.txt.gz (first line a header, the first 48894 merges are used). */
cc_tokenizer *cc_tokenizer_load_openai(const char *gz_path);
/* Hugging Face vocab.json (token -> id) + merges.txt (optional "#version" first line). */
cc_tokenizer *cc_tokenizer_load_hf(const char *vocab_json, const char *merges_txt);
/* A model directory: vocab.json + merges.txt, else bpe_simple_vocab_16e6.txt.gz. */
cc_tokenizer *cc_tokenizer_load_dir(const char *dir);
/* Any of the above: a directory, a .gz file, or a vocab.json (merges.txt next to it). */
cc_tokenizer *cc_tokenizer_load(const char *path);
void cc_tokenizer_free(cc_tokenizer *tok);

int cc_tokenizer_vocab_size(const cc_tokenizer *tok);
int32_t cc_tokenizer_sot(const cc_tokenizer *tok); /* <|startoftext|> */
int32_t cc_tokenizer_eot(const cc_tokenizer *tok); /* <|endoftext|> */
int cc_tokenizer_n_merges(const cc_tokenizer *tok);

/* A growable list of token ids. */
typedef struct cc_tokens {
    int32_t *ids;
    int count, cap;
} cc_tokens;
int cc_tokens_push(cc_tokens *tokens, int32_t id);
void cc_tokens_free(cc_tokens *tokens);

/* Counters of what the cleaning had to repair (may be NULL). */
typedef struct cc_text_stats {
    int64_t invalid_utf8; /* invalid UTF-8 sequences replaced by U+FFFD */
} cc_text_stats;

/* Appends the ids of `text` (len bytes, need not be NUL-terminated) to `out`, without start/end
 * tokens. Returns 0, or -1 on error (out of memory, text longer than CC_TOKENIZER_MAX_TEXT). */
int cc_tokenizer_encode(cc_tokenizer *tok, const char *text, size_t len, cc_tokens *out, cc_text_stats *stats);

/* clip.tokenize(text, context, truncate=True): ids[0] = sot, then the tokens, then eot, zero padding.
 * When too long, the tokens are cut so that eot stays the last id (ids[context - 1]).
 * Returns the number of real ids (sot..eot inclusive), or -1; *eot_pos (may be NULL) gets its
 * position, *truncated (may be NULL) whether tokens were dropped. */
int cc_tokenizer_encode_context(cc_tokenizer *tok, const char *text, int context, int32_t *ids, int *eot_pos,
                                int *truncated, cc_text_stats *stats);

/* Sliding windows over a long text, for averaging the embeddings of a long caption: the content
 * tokens t[0..n) are cut into windows of (context - 2) tokens starting at 0, stride, 2*stride, ...,
 * plus a last window ending at n when the strided ones do not reach it; each window gets sot/eot and
 * zero padding. A text that fits gives one window. *out_ids is malloc'd [n_windows][context];
 * eot_pos (may be NULL) gets a malloc'd [n_windows] array. Returns the number of windows, or -1. */
int cc_tokenizer_encode_windows(cc_tokenizer *tok, const char *text, int context, int stride, int32_t **out_ids,
                                int **eot_pos, cc_text_stats *stats);

/* Text of the ids (malloc'd, NUL-terminated; *out_len, may be NULL, gets the length, as byte tokens
 * can decode to NUL), as SimpleTokenizer.decode: token bytes joined, decoded as UTF-8 with U+FFFD for
 * invalid sequences, "</w>" replaced by a space. Ids out of range are an error. Padding zeros are NOT
 * skipped (pass the real count). */
char *cc_tokenizer_decode(const cc_tokenizer *tok, const int32_t *ids, int n, size_t *out_len);

/* The cleaned text (steps 1-4 above), malloc'd UTF-8; for tests and tools. */
char *cc_clip_clean_text(const char *text, size_t len, size_t *out_len, cc_text_stats *stats);

/* Learns a byte-level CLIP BPE vocabulary from captions: the same cleaning and pre-tokenisation,
 * counts of the pieces, then `n_merges` times the most frequent adjacent pair is merged (ties broken
 * by the smaller pair of token ids, so the result is deterministic). Writes DIR/vocab.json and
 * DIR/merges.txt in the Hugging Face layout (merges.txt starts with "#version: 0.2"). Stops early when
 * no pair occurs twice. Returns the number of merges learned, or -1. */
int cc_bpe_learn(const char *const *texts, int64_t n_texts, int n_merges, const char *out_dir);

#endif
