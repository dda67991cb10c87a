/* tokenizer_internal.h — internal to data/: the pieces of tokenizer.c that BPE learning (bpe_learn.c)
 * and the tests reuse: hashing, a string -> int32 map, UTF-8 repair, GPT-2's byte alphabet, the
 * pre-tokeniser and the BPE core. */
#ifndef CLIPC_TOKENIZER_INTERNAL_H
#define CLIPC_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

uint64_t cc_hash_bytes(const void *data, size_t len);

typedef struct cc_strmap_slot {
    char *key; /* NUL-terminated copy; NULL = empty slot */
    size_t len;
    uint64_t hash;
    int32_t value;
} cc_strmap_slot;

typedef struct cc_strmap {
    cc_strmap_slot *slots;
    size_t cap, count;
} cc_strmap;

int cc_strmap_init(cc_strmap *map, size_t expected);
void cc_strmap_free(cc_strmap *map);
int32_t *cc_strmap_get(const cc_strmap *map, const char *key, size_t len);
int cc_strmap_put(cc_strmap *map, const char *key, size_t len, int32_t value);
/* The map's own NUL-terminated copy of key (stable until the map is freed), or NULL. */
const char *cc_strmap_key(const cc_strmap *map, const char *key, size_t len);

/* CPython's UTF-8 decoding with errors="replace" (U+FFFD per maximal invalid subsequence, counted in
 * *n_invalid, which may be NULL); out holds len code points. */
size_t cc_utf8_decode_replace(const uint8_t *s, size_t len, uint32_t *out, int64_t *n_invalid);
/* The same, re-encoded as UTF-8: out holds 3 * len bytes. Returns the length. */
size_t cc_utf8_repair(const char *in, size_t len, char *out, int64_t *n_invalid);
/* One code point as UTF-8 (1-4 bytes); returns the length. */
size_t cc_utf8_encode(uint32_t cp, char *out);

void cc_bytes_to_unicode(uint32_t byte_unicode[256], uint8_t byte_order[256]);
/* out must hold 2 * n + 5 bytes. */
size_t cc_bytes_to_token_string(const uint32_t byte_unicode[256], const uint8_t *s, size_t n, int end_of_word,
                                char *out);

/* Pieces of a cleaned text, in order; the callback returns 0 to go on, non-zero to stop with -1.
 * Pure-ASCII text takes the hand-written scanner unless force_pcre2. */
int cc_for_each_piece(const char *text, size_t len, int (*piece)(void *ctx, const char *s, size_t n), void *ctx);
int cc_for_each_piece_ex(const char *text, size_t len, int (*piece)(void *ctx, const char *s, size_t n), void *ctx,
                         int force_pcre2);
int cc_next_piece_ascii(const char *s, size_t len, size_t pos, size_t *start, size_t *end);

/* cc_tokenizer_encode, with force_general = 1 to skip the fused ASCII path (clean, then pieces) and 2 to
 * also pre-tokenise with PCRE2 — the tests hold all three paths to each other. */
int cc_tokenizer_encode_ex(cc_tokenizer *tok, const char *text, size_t len, cc_tokens *out, cc_text_stats *stats,
                           int force_general);

/* BPE of n symbols in place; returns the new count (-1 when out of memory). AUTO takes openai's
 * quadratic loop for short pieces and the O(n log n) heap version for long ones. */
typedef enum { CC_BPE_AUTO = 0, CC_BPE_SIMPLE, CC_BPE_HEAP } cc_bpe_method;
int cc_tokenizer_bpe(const cc_tokenizer *tok, int32_t *sym, int n, cc_bpe_method method);
/* The id of byte b as a word-internal / end-of-word symbol. */
int32_t cc_tokenizer_byte_id(const cc_tokenizer *tok, uint8_t b, int end_of_word);

#endif
