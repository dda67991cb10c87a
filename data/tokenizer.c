/* tokenizer.c — the CLIP BPE tokenizer: text cleaning exactly as Python does it (UTF-8 repair,
 * html.unescape, whitespace, str.lower), PCRE2 pre-tokenisation, byte-level BPE in token-id space with a
 * locked word cache, vocabulary loading (openai .gz, Hugging Face vocab.json + merges.txt), encode to a
 * fixed context, sliding windows and decode. BPE learning is in bpe_learn.c. See tokenizer.h.
 */
#include "data/tokenizer.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <utf8proc.h>
#include <zlib.h>

#include "data/tokenizer_internal.h"
#include "engine/util.h"

#include "data/tokenizer_tables.inc"

#define MAX_VOCAB_FILE (256 << 20) /* largest vocabulary file read (bytes, after gunzip) */
#define MAX_VOCAB_SIZE (1 << 24)   /* ids above this in a vocab.json are refused */
#define CACHE_SHARDS 64            /* word cache: independent locked shards */
#define CACHE_SHARD_SLOTS 4096     /* entries per shard before it is cleared (power of two) */
#define CACHE_MAX_WORD 64          /* longer pieces are not cached (rare, and cheap to skip) */
#define BPE_SIMPLE_MAX 64          /* up to this many symbols: the quadratic loop; beyond, a heap */

static const char SOT_TEXT[] = "<|startoftext|>";
static const char EOT_TEXT[] = "<|endoftext|>";

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers: hashing, growable buffers                                                       */
/* ---------------------------------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

uint64_t cc_hash_bytes(const void *data, size_t len) {
    /* 8 bytes per step, then a strong final mix: fast on the short keys (words) hashed here */
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        uint64_t chunk;
        memcpy(&chunk, p, 8);
        h = (h ^ chunk) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len) { /* 1..7 bytes: two overlapping 4-byte reads, or three single bytes */
        uint64_t chunk;
        if (len >= 4) {
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + len - 4, 4);
            chunk = a | (uint64_t)b << 32;
        } else {
            chunk = p[0] | (uint64_t)p[len / 2] << 8 | (uint64_t)p[len - 1] << 16;
        }
        h = (h ^ chunk) * 0x94d049bb133111ebull;
    }
    return mix64(h);
}

static inline uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Makes room for `extra` more ids. */
static int tokens_reserve(cc_tokens *tokens, int extra) {
    if (tokens->count + extra <= tokens->cap) return 0;
    int cap = tokens->cap ? tokens->cap : 64;
    while (cap < tokens->count + extra) cap *= 2;
    int32_t *grown = cc_realloc(tokens->ids, (size_t)cap * sizeof(int32_t), "token ids");
    if (!grown) return -1;
    tokens->ids = grown;
    tokens->cap = cap;
    return 0;
}

int cc_tokens_push(cc_tokens *tokens, int32_t id) {
    if (tokens->count == tokens->cap) {
        int cap = tokens->cap ? tokens->cap * 2 : 64;
        int32_t *grown = cc_realloc(tokens->ids, (size_t)cap * sizeof(int32_t), "token ids");
        if (!grown) return -1;
        tokens->ids = grown;
        tokens->cap = cap;
    }
    tokens->ids[tokens->count++] = id;
    return 0;
}

void cc_tokens_free(cc_tokens *tokens) {
    free(tokens->ids);
    memset(tokens, 0, sizeof *tokens);
}

/* --- string -> int32 map (vocabulary), open addressing ---------------------------------------- */

int cc_strmap_init(cc_strmap *map, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    memset(map, 0, sizeof *map);
    map->slots = cc_calloc(cap, sizeof *map->slots, "string map");
    if (!map->slots) return -1;
    map->cap = cap;
    return 0;
}

void cc_strmap_free(cc_strmap *map) {
    if (map->slots)
        for (size_t i = 0; i < map->cap; i++) free(map->slots[i].key);
    free(map->slots);
    memset(map, 0, sizeof *map);
}

static cc_strmap_slot *strmap_find(const cc_strmap *map, const char *key, size_t len, uint64_t hash) {
    size_t mask = map->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        cc_strmap_slot *slot = &map->slots[i];
        if (!slot->key || (slot->hash == hash && slot->len == len && memcmp(slot->key, key, len) == 0)) return slot;
    }
}

int32_t *cc_strmap_get(const cc_strmap *map, const char *key, size_t len) {
    cc_strmap_slot *slot = strmap_find(map, key, len, cc_hash_bytes(key, len));
    return slot->key ? &slot->value : NULL;
}

const char *cc_strmap_key(const cc_strmap *map, const char *key, size_t len) {
    return strmap_find(map, key, len, cc_hash_bytes(key, len))->key;
}

/* Sets key -> value (overwriting, as a Python dict does). */
int cc_strmap_put(cc_strmap *map, const char *key, size_t len, int32_t value) {
    if ((map->count + 1) * 2 > map->cap) {
        cc_strmap bigger;
        if (cc_strmap_init(&bigger, map->cap) != 0) return -1;
        for (size_t i = 0; i < map->cap; i++) {
            cc_strmap_slot *old = &map->slots[i];
            if (!old->key) continue;
            *strmap_find(&bigger, old->key, old->len, old->hash) = *old;
        }
        bigger.count = map->count;
        free(map->slots);
        *map = bigger;
    }
    uint64_t hash = cc_hash_bytes(key, len);
    cc_strmap_slot *slot = strmap_find(map, key, len, hash);
    if (!slot->key) {
        char *copy = cc_malloc(len + 1, "string map key");
        if (!copy) return -1;
        memcpy(copy, key, len);
        copy[len] = 0;
        slot->key = copy;
        slot->len = len;
        slot->hash = hash;
        map->count++;
    }
    slot->value = value;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/* The next code point of s[*i..len) for CPython's UTF-8 decoder with errors="replace": a maximal
 * invalid subsequence (a bad lead byte, or a lead byte with the valid continuation bytes that follow
 * it) becomes one U+FFFD and counts in *n_invalid. Advances *i. */
static uint32_t utf8_next(const uint8_t *s, size_t len, size_t *i, int64_t *n_invalid) {
    uint8_t c = s[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    int need;
    uint32_t cp;
    uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        cp = c & 0x0f;
        if (c == 0xe0) lo = 0xa0; /* no overlong forms */
        if (c == 0xed) hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        cp = c & 0x07;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        (*i)++;
        if (n_invalid) (*n_invalid)++;
        return 0xfffd;
    }
    size_t j = 1;
    for (; j <= (size_t)need; j++) {
        if (*i + j >= len) break;
        uint8_t cc = s[*i + j];
        if (cc < (j == 1 ? lo : 0x80) || cc > (j == 1 ? hi : 0xbf)) break;
        cp = cp << 6 | (cc & 0x3f);
    }
    *i += j;
    if (j <= (size_t)need) {
        if (n_invalid) (*n_invalid)++;
        return 0xfffd;
    }
    return cp;
}

size_t cc_utf8_decode_replace(const uint8_t *s, size_t len, uint32_t *out, int64_t *n_invalid) {
    size_t n = 0;
    for (size_t i = 0; i < len;) out[n++] = utf8_next(s, len, &i, n_invalid);
    return n;
}

size_t cc_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t cc_utf8_repair(const char *in, size_t len, char *out, int64_t *n_invalid) {
    size_t w = 0;
    for (size_t i = 0; i < len;) w += cc_utf8_encode(utf8_next((const uint8_t *)in, len, &i, n_invalid), out + w);
    return w;
}

/* ---------------------------------------------------------------------------------------------- */
/* Cleaning: html.unescape, whitespace, lower                                                     */
/* ---------------------------------------------------------------------------------------------- */

/* Python's str.isspace: what str.strip() removes (basic_clean and whitespace_clean strip the text). */
static inline int py_isspace(uint32_t c) {
    if (c <= 0x20) return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The `regex` module's \s (Unicode White_Space), which whitespace_clean's re.sub(r'\s+', ' ') uses
 * (openai imports regex as re): the same as str.isspace but without U+001C..U+001F. */
static inline int regex_isspace(uint32_t c) { return py_isspace(c) && !(c >= 0x1c && c <= 0x1f); }

static int in_ranges(const uint32_t (*ranges)[2], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < ranges[mid][0]) hi = mid;
        else if (c > ranges[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
static int case_ignorable(uint32_t c) { return in_ranges(CASE_IGNORABLE_RANGES, N_ELEMS(CASE_IGNORABLE_RANGES), c); }
static int cased(uint32_t c) { return in_ranges(CASED_RANGES, N_ELEMS(CASED_RANGES), c); }

/* Named reference lookup: the entity whose name is exactly name[0..len), or NULL. */
static const struct html_entity *find_entity(const char *name, size_t len) {
    size_t lo = 0, hi = N_ELEMS(HTML_ENTITIES);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *candidate = HTML_ENTITIES[mid].name;
        int cmp = strncmp(candidate, name, len);
        if (cmp == 0) cmp = candidate[len] ? 1 : 0;
        if (cmp == 0) return &HTML_ENTITIES[mid];
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex_digit(uint32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* The code points a numeric reference stands for (html._replace_charref); returns how many (0 or 1). */
static int numeric_charref(uint64_t num, int overflow, uint32_t *out) {
    if (!overflow)
        for (size_t i = 0; i < N_ELEMS(HTML_CHARREF_FIX); i++)
            if (HTML_CHARREF_FIX[i][0] == num) {
                *out = HTML_CHARREF_FIX[i][1];
                return 1;
            }
    if (overflow || (num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) {
        *out = 0xfffd;
        return 1;
    }
    for (size_t i = 0; i < N_ELEMS(HTML_CHARREF_DROP); i++)
        if (HTML_CHARREF_DROP[i] == num) return 0;
    *out = (uint32_t)num;
    return 1;
}

/* One html.unescape pass over in[0..n) into out (which must hold n code points: unescaping never
 * lengthens — the longest replacement, two code points, comes from a reference of >= 3).
 * The pattern: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) */
static size_t html_unescape(const uint32_t *in, size_t n, uint32_t *out) {
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (in[i] != '&' || i + 1 >= n) {
            out[w++] = in[i++];
            continue;
        }
        size_t j = i + 1;
        if (in[j] == '#') {
            int hex = j + 1 < n && (in[j + 1] == 'x' || in[j + 1] == 'X');
            size_t k = j + 1 + (size_t)hex, digits_start = k;
            uint64_t num = 0;
            int overflow = 0;
            while (k < n && (hex ? is_hex_digit(in[k]) : is_ascii_digit(in[k]))) {
                uint32_t c = in[k];
                uint32_t d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                if (num > (UINT64_C(1) << 40)) overflow = 1; /* far beyond 0x10FFFF: the value no longer matters */
                else num = num * (hex ? 16 : 10) + d;
                k++;
            }
            if (k == digits_start) { /* "&#" without digits: not a reference; '#' cannot start a name */
                out[w++] = in[i++];
                continue;
            }
            if (k < n && in[k] == ';') k++;
            uint32_t cp;
            if (numeric_charref(num, overflow, &cp)) out[w++] = cp;
            i = k;
            continue;
        }
        /* named: up to 32 code points that are not \t \n \f space < & # ; then an optional ';' */
        size_t k = j;
        while (k < n && k - j < 32) {
            uint32_t c = in[k];
            if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
            k++;
        }
        if (k == j) {
            out[w++] = in[i++];
            continue;
        }
        if (k < n && in[k] == ';') k++;
        /* the name as bytes; a non-ASCII code point can never be part of an entity name */
        char name[40];
        size_t len = k - j;
        /* (nor can NUL: kept as it is, it would end the name early for strncmp in find_entity) */
        for (size_t m = 0; m < len; m++) name[m] = in[j + m] > 0 && in[j + m] < 0x80 ? (char)in[j + m] : '\x01';
        const struct html_entity *entity = find_entity(name, len);
        size_t used = len;
        if (!entity) /* the longest prefix (at least 2) that is an entity; the rest is kept */
            for (used = len - 1; used >= 2; used--)
                if ((entity = find_entity(name, used))) break;
        if (entity) {
            out[w++] = entity->cp[0];
            if (entity->cp[1]) out[w++] = entity->cp[1];
            for (size_t m = used; m < len; m++) out[w++] = in[j + m];
        } else {
            for (size_t m = i; m < k; m++) out[w++] = in[m];
        }
        i = k;
    }
    return w;
}

/* Python's str.lower() of the code point at in[i], with the Final_Sigma context; returns the count
 * written to out (1 or 2). */
static int py_lower(const uint32_t *in, size_t n, size_t i, uint32_t *out) {
    uint32_t c = in[i];
    if (c < 0x80) {
        out[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        return 1;
    }
    if (c == 0x130) { /* İ -> i + combining dot above (SpecialCasing) */
        out[0] = 'i';
        out[1] = 0x307;
        return 2;
    }
    if (c == 0x3a3) { /* Σ: final form after a cased letter unless a cased letter follows */
        size_t j = i;
        while (j > 0 && case_ignorable(in[j - 1])) j--;
        int final = j > 0 && cased(in[j - 1]);
        if (final) {
            size_t k = i + 1;
            while (k < n && case_ignorable(in[k])) k++;
            final = k == n || !cased(in[k]);
        }
        out[0] = final ? 0x3c2 : 0x3c3;
        return 1;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}

/* Classes of bytes < 0x80 for the ASCII fast paths (cleaning and the hand-written pre-tokeniser). */
enum { CLASS_LETTER = 1, CLASS_DIGIT = 2, CLASS_REGEX_SPACE = 4, CLASS_PY_SPACE = 8, CLASS_SLOW = 16 };
static const uint8_t ASCII_CLASS[256] = {
    /* 0x09-0x0d: both spaces; 0x1c-0x1f: str.isspace only; 0x20: both */
    [0x09] = 12, [0x0a] = 12, [0x0b] = 12, [0x0c] = 12, [0x0d] = 12, [0x1c] = 8, [0x1d] = 8, [0x1e] = 8, [0x1f] = 8,
    [' '] = 12, ['&'] = CLASS_SLOW,
    ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2, ['8'] = 2, ['9'] = 2,
#define L2(a, b) [a] = 1, [b] = 1
    L2('a', 'A'), L2('b', 'B'), L2('c', 'C'), L2('d', 'D'), L2('e', 'E'), L2('f', 'F'), L2('g', 'G'), L2('h', 'H'),
    L2('i', 'I'), L2('j', 'J'), L2('k', 'K'), L2('l', 'L'), L2('m', 'M'), L2('n', 'N'), L2('o', 'O'), L2('p', 'P'),
    L2('q', 'Q'), L2('r', 'R'), L2('s', 'S'), L2('t', 'T'), L2('u', 'U'), L2('v', 'V'), L2('w', 'W'), L2('x', 'X'),
    L2('y', 'Y'), L2('z', 'Z'),
#undef L2
#define S16(b) [b] = 16, [b + 1] = 16, [b + 2] = 16, [b + 3] = 16, [b + 4] = 16, [b + 5] = 16, [b + 6] = 16, [b + 7] = 16, \
               [b + 8] = 16, [b + 9] = 16, [b + 10] = 16, [b + 11] = 16, [b + 12] = 16, [b + 13] = 16, [b + 14] = 16, [b + 15] = 16
    S16(0x80), S16(0x90), S16(0xa0), S16(0xb0), S16(0xc0), S16(0xd0), S16(0xe0), S16(0xf0),
#undef S16
};

/* basic_clean + whitespace_clean on code points or bytes: strip str.isspace characters at both ends,
 * then turn each inner run of regex \s characters into one space. (Stripping first means the collapse
 * cannot leave a space at either end, so the second strip has nothing to do.) */
#define CLEAN_WHITESPACE(T, in, n, out, w)                                       \
    do {                                                                         \
        size_t first_ = 0, last_ = (n);                                          \
        while (first_ < last_ && py_isspace((uint32_t)(T)(in)[first_])) first_++; \
        while (last_ > first_ && py_isspace((uint32_t)(T)(in)[last_ - 1])) last_--; \
        for (size_t i_ = first_; i_ < last_;) {                                  \
            if (regex_isspace((uint32_t)(T)(in)[i_])) {                          \
                while (i_ < last_ && regex_isspace((uint32_t)(T)(in)[i_])) i_++; \
                (out)[(w)++] = ' ';                                              \
            } else {                                                             \
                (out)[(w)++] = (in)[i_++];                                       \
            }                                                                    \
        }                                                                        \
    } while (0)

/* basic_clean + whitespace_clean on code points: strip str.isspace characters at both ends, then turn
 * each inner run of regex \s characters into one space. (Stripping first means the collapse cannot
 * leave a space at either end, so whitespace_clean's own strip has nothing left to do.) */
static size_t clean_whitespace(const uint32_t *in, size_t n, uint32_t *out) {
    size_t first = 0, last = n, w = 0;
    while (first < last && py_isspace(in[first])) first++;
    while (last > first && py_isspace(in[last - 1])) last--;
    for (size_t i = first; i < last;) {
        if (regex_isspace(in[i])) {
            while (i < last && regex_isspace(in[i])) i++;
            out[w++] = ' ';
        } else {
            out[w++] = in[i++];
        }
    }
    return w;
}

/* The ASCII-only fast path of cc_clip_clean_text (no '&', no byte >= 0x80): whitespace, then lower. */
static size_t clean_ascii(const char *text, size_t len, char *out) {
    size_t first = 0, last = len, w = 0;
    const unsigned char *in = (const unsigned char *)text;
    while (first < last && (ASCII_CLASS[in[first]] & CLASS_PY_SPACE)) first++;
    while (last > first && (ASCII_CLASS[in[last - 1]] & CLASS_PY_SPACE)) last--;
    for (size_t i = first; i < last;) {
        unsigned char c = in[i];
        if (ASCII_CLASS[c] & CLASS_REGEX_SPACE) {
            while (i < last && (ASCII_CLASS[in[i]] & CLASS_REGEX_SPACE)) i++;
            out[w++] = ' ';
        } else {
            out[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
        }
    }
    return w;
}

static int needs_full_clean(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (ASCII_CLASS[(unsigned char)text[i]] & CLASS_SLOW) return 1;
    return 0;
}

/* The full path on code points. `out` receives at most 3 bytes per input byte (a 1-byte U+FFFD
 * replacement becomes 3 bytes; unescaping and lowering never grow more than that — İ, 2 bytes,
 * becomes 3 bytes). Returns the output length, or (size_t)-1 when out of memory. */
static size_t clean_full(const char *text, size_t len, char *out, int64_t *n_invalid) {
    uint32_t *a = cc_malloc((len + 1) * sizeof(uint32_t), "text"), *b = cc_malloc((len + 1) * sizeof(uint32_t), "text");
    if (!a || !b) {
        free(a);
        free(b);
        return (size_t)-1;
    }
    size_t n = cc_utf8_decode_replace((const uint8_t *)text, len, a, n_invalid);
    int has_amp = memchr(text, '&', len) != NULL;
    if (has_amp) {
        n = html_unescape(a, n, b);
        n = html_unescape(b, n, a);
    }
    size_t m = clean_whitespace(a, n, b);
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
        uint32_t lowered[2];
        int count = py_lower(b, m, i, lowered);
        for (int k = 0; k < count; k++) w += cc_utf8_encode(lowered[k], out + w);
    }
    free(a);
    free(b);
    return w;
}

/* Cleans into a caller buffer of at least 3 * len + 4 bytes; returns the length or (size_t)-1. */
static size_t clean_into(const char *text, size_t len, char *out, cc_text_stats *stats) {
    if (!needs_full_clean(text, len)) return clean_ascii(text, len, out);
    int64_t invalid = 0;
    size_t w = clean_full(text, len, out, &invalid);
    if (stats) stats->invalid_utf8 += invalid;
    return w;
}

char *cc_clip_clean_text(const char *text, size_t len, size_t *out_len, cc_text_stats *stats) {
    if (len > CC_TOKENIZER_MAX_TEXT) {
        cc_set_error("text of %zu bytes is longer than the limit of %d", len, CC_TOKENIZER_MAX_TEXT);
        return NULL;
    }
    char *out = cc_malloc(3 * len + 4, "cleaned text");
    if (!out) return NULL;
    size_t w = clean_into(text, len, out, stats);
    if (w == (size_t)-1) {
        free(out);
        return NULL;
    }
    out[w] = 0;
    if (out_len) *out_len = w;
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* Pre-tokenisation                                                                               */
/* ---------------------------------------------------------------------------------------------- */

/* The openai pattern, with \s spelled out as the `regex` module's Unicode \s (the text is cleaned, so
 * only ' ' can occur, but the class keeps the pattern's meaning independent of that). */
static const char PIECE_PATTERN[] =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "[^\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
    "\\p{L}\\p{N}]+";

static pcre2_code *piece_regex;
static pthread_once_t piece_regex_once = PTHREAD_ONCE_INIT;
static char piece_regex_error[256];

static void compile_piece_regex(void) {
    int error_code;
    PCRE2_SIZE error_offset;
    piece_regex = pcre2_compile((PCRE2_SPTR)PIECE_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS,
                                &error_code, &error_offset, NULL);
    if (!piece_regex) {
        PCRE2_UCHAR message[200];
        pcre2_get_error_message(error_code, message, sizeof message);
        snprintf(piece_regex_error, sizeof piece_regex_error, "PCRE2 cannot compile the CLIP pattern at %zu: %s",
                 (size_t)error_offset, (char *)message);
        return;
    }
    pcre2_jit_compile(piece_regex, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
}

static pthread_key_t match_data_key;
static pthread_once_t match_data_once = PTHREAD_ONCE_INIT;
static void free_match_data(void *md) { pcre2_match_data_free(md); }
static void create_match_data_key(void) { pthread_key_create(&match_data_key, free_match_data); }

static pcre2_match_data *thread_match_data(void) {
    pthread_once(&match_data_once, create_match_data_key);
    pcre2_match_data *md = pthread_getspecific(match_data_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (!md) {
            cc_set_error("out of memory creating PCRE2 match data");
            return NULL;
        }
        pthread_setspecific(match_data_key, md);
    }
    return md;
}

static inline int ascii_letter(unsigned char c) { return ASCII_CLASS[c] & CLASS_LETTER; }
static inline int ascii_digit(unsigned char c) { return ASCII_CLASS[c] & CLASS_DIGIT; }
static inline int ascii_space(unsigned char c) { return ASCII_CLASS[c] & CLASS_REGEX_SPACE; }

/* Length of a caseless match of the lowercase ASCII `word` at s[0..len), or 0. */
static size_t match_caseless(const char *s, size_t len, const char *word) {
    size_t n = strlen(word);
    if (n > len) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]) != (unsigned char)word[i]) return 0;
    return n;
}

/* The pattern on pure-ASCII text, alternative by alternative. Returns 1 and the piece [*start, *end)
 * found at or after `pos`, or 0 when no piece remains. */
int cc_next_piece_ascii(const char *s, size_t len, size_t pos, size_t *start, size_t *end) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    while (pos < len && ascii_space((unsigned char)s[pos])) pos++;
    if (pos >= len) return 0;
    unsigned char c = (unsigned char)s[pos];
    size_t n = 0;
    *start = pos;
    if (c == '<' && ((n = match_caseless(s + pos, len - pos, SOT_TEXT)) || (n = match_caseless(s + pos, len - pos, EOT_TEXT)))) {
        *end = pos + n;
        return 1;
    }
    if (c == '\'')
        for (size_t k = 0; k < N_ELEMS(contractions); k++)
            if ((n = match_caseless(s + pos, len - pos, contractions[k]))) {
                *end = pos + n;
                return 1;
            }
    size_t e = pos + 1;
    if (ascii_letter(c)) {
        while (e < len && ascii_letter((unsigned char)s[e])) e++;
    } else if (!ascii_digit(c)) {
        while (e < len && !ascii_letter((unsigned char)s[e]) && !ascii_digit((unsigned char)s[e]) && !ascii_space((unsigned char)s[e])) e++;
    }
    *end = e;
    return 1;
}

int cc_for_each_piece(const char *text, size_t len, int (*piece)(void *ctx, const char *s, size_t n), void *ctx) {
    return cc_for_each_piece_ex(text, len, piece, ctx, 0);
}

int cc_for_each_piece_ex(const char *text, size_t len, int (*piece)(void *ctx, const char *s, size_t n), void *ctx,
                         int force_pcre2) {
    int ascii = !force_pcre2;
    for (size_t i = 0; i < len && ascii; i++) ascii = (unsigned char)text[i] < 0x80;
    size_t pos = 0, start, end;
    if (ascii) {
        while (cc_next_piece_ascii(text, len, pos, &start, &end)) {
            if (piece(ctx, text + start, end - start) != 0) return -1;
            pos = end;
        }
        return 0;
    }
    pthread_once(&piece_regex_once, compile_piece_regex);
    if (!piece_regex) {
        cc_set_error("%s", piece_regex_error);
        return -1;
    }
    pcre2_match_data *md = thread_match_data();
    if (!md) return -1;
    while (pos < len) {
        int rc = pcre2_match(piece_regex, (PCRE2_SPTR)text, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR message[200];
            pcre2_get_error_message(rc, message, sizeof message);
            cc_set_error("pre-tokenisation failed: %s", (char *)message);
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= pos && ov[0] == ov[1]) break; /* cannot happen: no alternative matches empty */
        if (piece(ctx, text + ov[0], ov[1] - ov[0]) != 0) return -1;
        pos = ov[1];
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Vocabulary                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

/* GPT-2's bytes_to_unicode: byte_unicode[b] is the code point standing for byte b, and
 * byte_order[i] the byte with vocabulary id i (printable bytes first, then the rest). */
void cc_bytes_to_unicode(uint32_t byte_unicode[256], uint8_t byte_order[256]) {
    int n = 0, extra = 0;
    for (int b = '!'; b <= '~'; b++) byte_order[n++] = (uint8_t)b;
    for (int b = 0xa1; b <= 0xac; b++) byte_order[n++] = (uint8_t)b;
    for (int b = 0xae; b <= 0xff; b++) byte_order[n++] = (uint8_t)b;
    int printable[256] = {0};
    for (int i = 0; i < n; i++) printable[byte_order[i]] = 1;
    for (int b = 0; b < 256; b++) {
        if (printable[b]) byte_unicode[b] = (uint32_t)b;
        else {
            byte_order[n++] = (uint8_t)b;
            byte_unicode[b] = 256u + (uint32_t)extra++;
        }
    }
}

/* The vocabulary string of the bytes s[0..n) (+ "</w>"): each byte as its unicode stand-in, UTF-8. */
size_t cc_bytes_to_token_string(const uint32_t byte_unicode[256], const uint8_t *s, size_t n, int end_of_word,
                                char *out) {
    size_t w = 0;
    for (size_t i = 0; i < n; i++) w += cc_utf8_encode(byte_unicode[s[i]], out + w);
    if (end_of_word) {
        memcpy(out + w, "</w>", 4);
        w += 4;
    }
    out[w] = 0;
    return w;
}

typedef struct merge_slot {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank, merged;
} merge_slot;

typedef struct cache_entry {
    uint64_t hash;
    uint32_t offset;  /* into the shard arena: key bytes then ids */
    uint16_t key_len, n_ids;
} cache_entry;

typedef struct cache_shard {
    atomic_flag lock;     /* a spinlock: the critical sections are a probe and a copy */
    cache_entry *slots;   /* CACHE_SHARD_SLOTS */
    int count;
    uint8_t *arena;
    size_t arena_len, arena_cap;
} cache_shard;

struct cc_tokenizer {
    int vocab_size, n_merges;
    int32_t sot, eot;
    int32_t byte_id[256], byte_end_id[256]; /* the ids of byte b, and of b + "</w>" */
    merge_slot *merges;                      /* pair -> (rank, merged id), open addressing */
    size_t merges_cap;
    char *decoded;                           /* the bytes of every token, concatenated */
    uint32_t *decoded_off;                   /* [vocab_size + 1]; a missing id has length 0 and missing = 1 */
    uint8_t *missing;
    cache_shard shards[CACHE_SHARDS];
};

int cc_tokenizer_vocab_size(const cc_tokenizer *tok) { return tok->vocab_size; }
int32_t cc_tokenizer_sot(const cc_tokenizer *tok) { return tok->sot; }
int32_t cc_tokenizer_eot(const cc_tokenizer *tok) { return tok->eot; }
int cc_tokenizer_n_merges(const cc_tokenizer *tok) { return tok->n_merges; }
int32_t cc_tokenizer_byte_id(const cc_tokenizer *tok, uint8_t b, int end_of_word) {
    return end_of_word ? tok->byte_end_id[b] : tok->byte_id[b];
}

static inline uint64_t pair_key(int32_t left, int32_t right) { return ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1; }

static const merge_slot *find_merge(const cc_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = pair_key(left, right);
    size_t mask = tok->merges_cap - 1;
    for (size_t i = hash_u64(key) & mask;; i = (i + 1) & mask) {
        const merge_slot *slot = &tok->merges[i];
        if (slot->key == key) return slot;
        if (slot->key == 0) return NULL;
    }
}

void cc_tokenizer_free(cc_tokenizer *tok) {
    if (!tok) return;
    for (int s = 0; s < CACHE_SHARDS; s++) {
        free(tok->shards[s].slots);
        free(tok->shards[s].arena);
    }
    free(tok->merges);
    free(tok->decoded);
    free(tok->decoded_off);
    free(tok->missing);
    free(tok);
}

/* Builds the tokenizer from a vocabulary (string -> id, with id_strings[id] the string of each id, NULL
 * for holes) and merges as (left string, right string) pairs in rank order. `source` names the files. */
static cc_tokenizer *build_tokenizer(const cc_strmap *vocab, char *const *id_strings, int vocab_size,
                                     char *const *merge_left, char *const *merge_right, int n_merges, const char *source) {
    cc_tokenizer *tok = cc_calloc(1, sizeof *tok, "tokenizer");
    if (!tok) return NULL;
    for (int s = 0; s < CACHE_SHARDS; s++) atomic_flag_clear(&tok->shards[s].lock);
    tok->vocab_size = vocab_size;
    tok->n_merges = n_merges;
    uint32_t byte_unicode[256];
    uint8_t byte_order[256];
    cc_bytes_to_unicode(byte_unicode, byte_order);
    char buf[64];
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        for (int end = 0; end < 2; end++) {
            size_t n = cc_bytes_to_token_string(byte_unicode, &byte, 1, end, buf);
            int32_t *id = cc_strmap_get(vocab, buf, n);
            if (!id) {
                cc_set_error("%s: the vocabulary lacks the byte token '%s' (byte 0x%02x)", source, buf, b);
                goto fail;
            }
            (end ? tok->byte_end_id : tok->byte_id)[b] = *id;
        }
    }
    int32_t *sot = cc_strmap_get(vocab, SOT_TEXT, strlen(SOT_TEXT)), *eot = cc_strmap_get(vocab, EOT_TEXT, strlen(EOT_TEXT));
    if (!sot || !eot) {
        cc_set_error("%s: the vocabulary lacks %s", source, !sot ? SOT_TEXT : EOT_TEXT);
        goto fail;
    }
    tok->sot = *sot;
    tok->eot = *eot;

    tok->merges_cap = 16;
    while (tok->merges_cap < (size_t)n_merges * 2 + 2) tok->merges_cap *= 2;
    tok->merges = cc_calloc(tok->merges_cap, sizeof(merge_slot), "merge table");
    if (!tok->merges) goto fail;
    for (int r = 0; r < n_merges; r++) {
        size_t left_len = strlen(merge_left[r]), right_len = strlen(merge_right[r]);
        char *joined = cc_malloc(left_len + right_len + 1, "merge");
        if (!joined) goto fail;
        memcpy(joined, merge_left[r], left_len);
        memcpy(joined + left_len, merge_right[r], right_len + 1);
        int32_t *left = cc_strmap_get(vocab, merge_left[r], left_len);
        int32_t *right = cc_strmap_get(vocab, merge_right[r], right_len);
        int32_t *merged = cc_strmap_get(vocab, joined, left_len + right_len);
        if (!left || !right || !merged) {
            cc_set_error("%s: merge %d ('%s %s'): %s is not in the vocabulary", source, r + 1, merge_left[r],
                         merge_right[r], !left ? "the left token" : !right ? "the right token" : "the merged token");
            free(joined);
            goto fail;
        }
        free(joined);
        uint64_t key = pair_key(*left, *right);
        size_t mask = tok->merges_cap - 1, i = hash_u64(key) & mask;
        while (tok->merges[i].key && tok->merges[i].key != key) i = (i + 1) & mask;
        /* a repeated pair takes its last rank, as dict(zip(merges, range(len(merges)))) does */
        tok->merges[i] = (merge_slot){key, r, *merged};
    }

    /* the bytes each id decodes to: stand-in code points back to bytes, other characters as UTF-8 */
    uint32_t unicode_byte[512];
    memset(unicode_byte, 0xff, sizeof unicode_byte);
    for (int b = 0; b < 256; b++) unicode_byte[byte_unicode[b]] = (uint32_t)b;
    /* at most 3 bytes per key byte: an invalid byte becomes U+FFFD, 3 bytes in UTF-8 */
    size_t total = 0;
    for (int id = 0; id < vocab_size; id++) total += id_strings[id] ? 3 * strlen(id_strings[id]) : 0;
    if (total > UINT32_MAX) {
        cc_set_error("%s: the vocabulary's tokens are too long (%zu bytes decoded)", source, total);
        goto fail;
    }
    tok->decoded = cc_malloc(total + 1, "token bytes");
    tok->decoded_off = cc_malloc(((size_t)vocab_size + 1) * sizeof(uint32_t), "token offsets");
    tok->missing = cc_calloc((size_t)vocab_size + 1, 1, "token flags");
    if (!tok->decoded || !tok->decoded_off || !tok->missing) goto fail;
    size_t w = 0;
    for (int id = 0; id < vocab_size; id++) {
        tok->decoded_off[id] = (uint32_t)w;
        const char *s = id_strings[id];
        if (!s) {
            tok->missing[id] = 1;
            continue;
        }
        size_t len = strlen(s);
        uint32_t *cps = cc_malloc((len + 1) * sizeof(uint32_t), "token");
        if (!cps) goto fail;
        size_t n = cc_utf8_decode_replace((const uint8_t *)s, len, cps, NULL);
        int special = strcmp(s, SOT_TEXT) == 0 || strcmp(s, EOT_TEXT) == 0;
        for (size_t k = 0; k < n; k++) {
            if (!special && cps[k] < 512 && unicode_byte[cps[k]] != 0xffffffffu) tok->decoded[w++] = (char)unicode_byte[cps[k]];
            else w += cc_utf8_encode(cps[k], tok->decoded + w);
        }
        free(cps);
    }
    tok->decoded_off[vocab_size] = (uint32_t)w;
    for (int s = 0; s < CACHE_SHARDS; s++) {
        tok->shards[s].slots = cc_calloc(CACHE_SHARD_SLOTS, sizeof(cache_entry), "word cache");
        if (!tok->shards[s].slots) goto fail;
    }
    return tok;
fail:
    cc_tokenizer_free(tok);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* BPE                                                                                            */
/* ---------------------------------------------------------------------------------------------- */

/* openai's loop: find the lowest-ranked adjacent pair, merge all its occurrences left to right,
 * repeat. Quadratic, fine for words. */
static int bpe_simple(const cc_tokenizer *tok, int32_t *sym, int n) {
    while (n > 1) {
        int32_t best_rank = INT32_MAX, left = 0, right = 0, merged = 0;
        for (int i = 0; i + 1 < n; i++) {
            const merge_slot *m = find_merge(tok, sym[i], sym[i + 1]);
            if (m && m->rank < best_rank) {
                best_rank = m->rank;
                left = sym[i];
                right = sym[i + 1];
                merged = m->merged;
            }
        }
        if (best_rank == INT32_MAX) break;
        int w = 0;
        for (int i = 0; i < n;) {
            if (i + 1 < n && sym[i] == left && sym[i + 1] == right) {
                sym[w++] = merged;
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        n = w;
    }
    return n;
}

/* The same result in O(n log n) for long pieces: a linked list of symbols and a min-heap of
 * (rank, position) pairs, stale entries skipped when popped. Identical to bpe_simple whenever a merge
 * never creates a pair of lower rank than its own (true of every trained vocabulary). */
typedef struct heap_item {
    int32_t rank;
    int pos;                 /* the left symbol's original position */
    int32_t left, right;
} heap_item;

static int heap_less(const heap_item *a, const heap_item *b) { return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos; }

static void heap_push(heap_item *heap, int *n, heap_item item) {
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!heap_less(&item, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = item;
}

static heap_item heap_pop(heap_item *heap, int *n) {
    heap_item top = heap[0], last = heap[--(*n)];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && heap_less(&heap[child + 1], &heap[child])) child++;
        if (!heap_less(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = last;
    return top;
}

static int bpe_heap(const cc_tokenizer *tok, int32_t *sym, int n) {
    int *next = cc_malloc((size_t)n * sizeof(int), "bpe"), *prev = cc_malloc((size_t)n * sizeof(int), "bpe");
    heap_item *heap = cc_malloc((size_t)(3 * n + 4) * sizeof(heap_item), "bpe"); /* n - 1 + 2 per merge */
    if (!next || !prev || !heap) {
        free(next);
        free(prev);
        free(heap);
        return -1;
    }
    int n_heap = 0;
    for (int i = 0; i < n; i++) {
        next[i] = i + 1 < n ? i + 1 : -1;
        prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++) {
        const merge_slot *m = find_merge(tok, sym[i], sym[i + 1]);
        if (m) heap_push(heap, &n_heap, (heap_item){m->rank, i, sym[i], sym[i + 1]});
    }
    while (n_heap > 0) {
        heap_item top = heap_pop(heap, &n_heap);
        int i = top.pos, j = next[i];
        if (sym[i] != top.left || j < 0 || sym[j] != top.right || prev[i] == -2) continue; /* stale */
        sym[i] = find_merge(tok, top.left, top.right)->merged;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        prev[j] = -2; /* removed */
        if (prev[i] >= 0) {
            const merge_slot *m = find_merge(tok, sym[prev[i]], sym[i]);
            if (m) heap_push(heap, &n_heap, (heap_item){m->rank, prev[i], sym[prev[i]], sym[i]});
        }
        if (next[i] >= 0) {
            const merge_slot *m = find_merge(tok, sym[i], sym[next[i]]);
            if (m) heap_push(heap, &n_heap, (heap_item){m->rank, i, sym[i], sym[next[i]]});
        }
    }
    int w = 0;
    for (int i = 0; i >= 0; i = next[i]) sym[w++] = sym[i];
    free(next);
    free(prev);
    free(heap);
    return w;
}

int cc_tokenizer_bpe(const cc_tokenizer *tok, int32_t *sym, int n, cc_bpe_method method) {
    if (method == CC_BPE_SIMPLE || (method == CC_BPE_AUTO && n <= BPE_SIMPLE_MAX)) return bpe_simple(tok, sym, n);
    return bpe_heap(tok, sym, n);
}

/* --- word cache ------------------------------------------------------------------------------- */

#define CACHE_ARENA_MAX (4u << 20) /* bytes per shard before it is cleared */

static inline void shard_lock(cache_shard *shard) {
    while (atomic_flag_test_and_set_explicit(&shard->lock, memory_order_acquire)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}
static inline void shard_unlock(cache_shard *shard) { atomic_flag_clear_explicit(&shard->lock, memory_order_release); }

static int cache_lookup(cc_tokenizer *tok, const char *word, size_t len, uint64_t hash, cc_tokens *out) {
    cache_shard *shard = &tok->shards[hash % CACHE_SHARDS];
    shard_lock(shard);
    for (size_t i = (hash >> 8) & (CACHE_SHARD_SLOTS - 1);; i = (i + 1) & (CACHE_SHARD_SLOTS - 1)) {
        cache_entry *e = &shard->slots[i];
        if (e->n_ids == 0) break;
        if (e->hash == hash && e->key_len == len && memcmp(shard->arena + e->offset, word, len) == 0) {
            int32_t ids[CACHE_MAX_WORD];
            int n_ids = e->n_ids;
            memcpy(ids, shard->arena + e->offset + ((len + 3) & ~(size_t)3), (size_t)n_ids * sizeof(int32_t));
            shard_unlock(shard);
            if (tokens_reserve(out, n_ids) != 0) return -1;
            memcpy(out->ids + out->count, ids, (size_t)n_ids * sizeof(int32_t));
            out->count += n_ids;
            return 1;
        }
    }
    shard_unlock(shard);
    return 0;
}

static void cache_store(cc_tokenizer *tok, const char *word, size_t len, uint64_t hash, const int32_t *ids, int n_ids) {
    cache_shard *shard = &tok->shards[hash % CACHE_SHARDS];
    size_t key_space = (len + 3) & ~(size_t)3, need = key_space + (size_t)n_ids * sizeof(int32_t);
    shard_lock(shard);
    if (shard->count * 2 >= CACHE_SHARD_SLOTS || shard->arena_len + need > CACHE_ARENA_MAX) {
        memset(shard->slots, 0, CACHE_SHARD_SLOTS * sizeof(cache_entry)); /* full: start over */
        shard->count = 0;
        shard->arena_len = 0;
    }
    if (shard->arena_len + need > shard->arena_cap) {
        size_t cap = shard->arena_cap ? shard->arena_cap * 2 : 16384;
        while (cap < shard->arena_len + need) cap *= 2;
        uint8_t *grown = realloc(shard->arena, cap);
        if (!grown) {
            shard_unlock(shard);
            return; /* caching is optional */
        }
        shard->arena = grown;
        shard->arena_cap = cap;
    }
    size_t i = (hash >> 8) & (CACHE_SHARD_SLOTS - 1);
    while (shard->slots[i].n_ids) {
        cache_entry *e = &shard->slots[i];
        if (e->hash == hash && e->key_len == len && memcmp(shard->arena + e->offset, word, len) == 0) {
            shard_unlock(shard); /* another thread stored it meanwhile */
            return;
        }
        i = (i + 1) & (CACHE_SHARD_SLOTS - 1);
    }
    memcpy(shard->arena + shard->arena_len, word, len);
    memcpy(shard->arena + shard->arena_len + key_space, ids, (size_t)n_ids * sizeof(int32_t));
    shard->slots[i] = (cache_entry){hash, (uint32_t)shard->arena_len, (uint16_t)len, (uint16_t)n_ids};
    shard->arena_len += need;
    shard->count++;
    shard_unlock(shard);
}

typedef struct encode_ctx {
    cc_tokenizer *tok;
    cc_tokens *out;
    int32_t *scratch;
    int scratch_cap;
} encode_ctx;

/* Encodes one piece (its cleaned UTF-8 bytes) and appends the ids. */
static int encode_piece(void *arg, const char *s, size_t n) {
    encode_ctx *ctx = arg;
    cc_tokenizer *tok = ctx->tok;
    if (n == sizeof SOT_TEXT - 1 && memcmp(s, SOT_TEXT, n) == 0) return cc_tokens_push(ctx->out, tok->sot);
    if (n == sizeof EOT_TEXT - 1 && memcmp(s, EOT_TEXT, n) == 0) return cc_tokens_push(ctx->out, tok->eot);
    uint64_t hash = 0;
    if (n <= CACHE_MAX_WORD) {
        hash = cc_hash_bytes(s, n);
        int hit = cache_lookup(tok, s, n, hash, ctx->out);
        if (hit) return hit < 0 ? -1 : 0;
    }
    if ((int)n > ctx->scratch_cap) {
        int cap = (int)n + 64;
        int32_t *grown = cc_realloc(ctx->scratch, (size_t)cap * sizeof(int32_t), "bpe symbols");
        if (!grown) return -1;
        ctx->scratch = grown;
        ctx->scratch_cap = cap;
    }
    int32_t *sym = ctx->scratch;
    for (size_t i = 0; i + 1 < n; i++) sym[i] = tok->byte_id[(uint8_t)s[i]];
    sym[n - 1] = tok->byte_end_id[(uint8_t)s[n - 1]];
    int count = cc_tokenizer_bpe(tok, sym, (int)n, CC_BPE_AUTO);
    if (count < 0) return -1;
    for (int i = 0; i < count; i++)
        if (cc_tokens_push(ctx->out, sym[i]) != 0) return -1;
    if (n <= CACHE_MAX_WORD) cache_store(tok, s, n, hash, sym, count);
    return 0;
}

/* Encodes a text that is pure ASCII without '&' in one pass over the raw bytes: stripping, whitespace
 * runs, lowercasing and the pre-tokeniser's alternatives are applied as the pieces are found (the same
 * pieces as cleaning first and then scanning; the tests hold both paths to the references). */
static int encode_ascii(cc_tokenizer *tok, const char *text, size_t len, cc_tokens *out) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    const unsigned char *in = (const unsigned char *)text;
    size_t first = 0, last = len;
    while (first < last && (ASCII_CLASS[in[first]] & CLASS_PY_SPACE)) first++;
    while (last > first && (ASCII_CLASS[in[last - 1]] & CLASS_PY_SPACE)) last--;
    encode_ctx ctx = {tok, out, NULL, 0};
    char lowered[CACHE_MAX_WORD];
    int rc = 0;
    for (size_t pos = first; pos < last && rc == 0;) {
        unsigned char c = in[pos];
        int cls = ASCII_CLASS[c];
        if (cls & CLASS_REGEX_SPACE) {
            pos++;
            continue;
        }
        size_t n = 0;
        if (c == '<' && ((n = match_caseless(text + pos, last - pos, SOT_TEXT)) || (n = match_caseless(text + pos, last - pos, EOT_TEXT)))) {
            rc = cc_tokens_push(out, n == sizeof SOT_TEXT - 1 ? tok->sot : tok->eot);
            pos += n;
            continue;
        }
        if (c == '\'')
            for (size_t k = 0; k < N_ELEMS(contractions) && !n; k++) n = match_caseless(text + pos, last - pos, contractions[k]);
        if (!n) {
            size_t e = pos + 1;
            if (cls & CLASS_LETTER) {
                while (e < last && (ASCII_CLASS[in[e]] & CLASS_LETTER)) e++;
            } else if (!(cls & CLASS_DIGIT)) {
                while (e < last && !(ASCII_CLASS[in[e]] & (CLASS_LETTER | CLASS_DIGIT | CLASS_REGEX_SPACE))) e++;
            }
            n = e - pos;
        }
        if (n == 1) { /* a single byte is its own end-of-word token */
            rc = cc_tokens_push(out, tok->byte_end_id[c >= 'A' && c <= 'Z' ? c + 32 : c]);
        } else if (n <= CACHE_MAX_WORD) {
            for (size_t k = 0; k < n; k++) {
                unsigned char b = in[pos + k];
                lowered[k] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
            }
            rc = encode_piece(&ctx, lowered, n);
        } else {
            char *copy = cc_malloc(n, "piece");
            if (!copy) rc = -1;
            else {
                for (size_t k = 0; k < n; k++) copy[k] = (char)(in[pos + k] >= 'A' && in[pos + k] <= 'Z' ? in[pos + k] + 32 : in[pos + k]);
                rc = encode_piece(&ctx, copy, n);
                free(copy);
            }
        }
        pos += n;
    }
    free(ctx.scratch);
    return rc;
}

int cc_tokenizer_encode(cc_tokenizer *tok, const char *text, size_t len, cc_tokens *out, cc_text_stats *stats) {
    return cc_tokenizer_encode_ex(tok, text, len, out, stats, 0);
}

int cc_tokenizer_encode_ex(cc_tokenizer *tok, const char *text, size_t len, cc_tokens *out, cc_text_stats *stats,
                           int force_general) {
    if (len > CC_TOKENIZER_MAX_TEXT) {
        cc_set_error("text of %zu bytes is longer than the limit of %d", len, CC_TOKENIZER_MAX_TEXT);
        return -1;
    }
    if (!force_general && !needs_full_clean(text, len)) return encode_ascii(tok, text, len, out);
    /* short texts (captions) are cleaned on the stack */
    char stack_buf[4096];
    size_t need = 3 * len + 4;
    char *clean = need <= sizeof stack_buf ? stack_buf : cc_malloc(need, "cleaned text");
    if (!clean) return -1;
    size_t n = clean_into(text, len, clean, stats);
    int rc = -1;
    if (n != (size_t)-1) {
        encode_ctx ctx = {tok, out, NULL, 0};
        rc = cc_for_each_piece_ex(clean, n, encode_piece, &ctx, force_general > 1);
        free(ctx.scratch);
    }
    if (clean != stack_buf) free(clean);
    return rc;
}

int cc_tokenizer_encode_context(cc_tokenizer *tok, const char *text, int context, int32_t *ids, int *eot_pos,
                                int *truncated, cc_text_stats *stats) {
    if (context < 2) {
        cc_set_error("context length must be at least 2, got %d", context);
        return -1;
    }
    cc_tokens tokens = {0};
    if (cc_tokenizer_encode(tok, text, strlen(text), &tokens, stats) != 0) {
        cc_tokens_free(&tokens);
        return -1;
    }
    int keep = tokens.count < context - 2 ? tokens.count : context - 2;
    memset(ids, 0, (size_t)context * sizeof(int32_t));
    ids[0] = tok->sot;
    if (keep) memcpy(ids + 1, tokens.ids, (size_t)keep * sizeof(int32_t));
    ids[keep + 1] = tok->eot;
    if (eot_pos) *eot_pos = keep + 1;
    if (truncated) *truncated = keep < tokens.count;
    cc_tokens_free(&tokens);
    return keep + 2;
}

int cc_tokenizer_encode_windows(cc_tokenizer *tok, const char *text, int context, int stride, int32_t **out_ids,
                                int **eot_pos, cc_text_stats *stats) {
    *out_ids = NULL;
    if (eot_pos) *eot_pos = NULL;
    int width = context - 2;
    if (context < 3 || stride < 1 || stride > width) {
        cc_set_error("sliding windows: need context >= 3 and 1 <= stride <= context - 2 (got context %d, stride %d)",
                     context, stride);
        return -1;
    }
    cc_tokens tokens = {0};
    if (cc_tokenizer_encode(tok, text, strlen(text), &tokens, stats) != 0) {
        cc_tokens_free(&tokens);
        return -1;
    }
    int n = tokens.count;
    /* starts: 0, stride, 2 * stride, ... while the window ends before n, then one ending at n */
    int *starts = cc_malloc(((size_t)n / (size_t)stride + 2) * sizeof(int), "windows");
    if (!starts) {
        cc_tokens_free(&tokens);
        return -1;
    }
    int n_windows = 0;
    if (n <= width) {
        starts[n_windows++] = 0;
    } else {
        for (int start = 0; start + width < n; start += stride) starts[n_windows++] = start;
        starts[n_windows++] = n - width;
    }
    int32_t *ids = cc_calloc((size_t)n_windows * context, sizeof(int32_t), "window ids");
    int *eots = eot_pos ? cc_malloc((size_t)n_windows * sizeof(int), "window eot") : NULL;
    if (!ids || (eot_pos && !eots)) {
        free(ids);
        free(eots);
        free(starts);
        cc_tokens_free(&tokens);
        return -1;
    }
    for (int w = 0; w < n_windows; w++) {
        int32_t *row = ids + (size_t)w * context;
        int count = n - starts[w] < width ? n - starts[w] : width;
        row[0] = tok->sot;
        if (count) memcpy(row + 1, tokens.ids + starts[w], (size_t)count * sizeof(int32_t));
        row[count + 1] = tok->eot;
        if (eots) eots[w] = count + 1;
    }
    free(starts);
    cc_tokens_free(&tokens);
    *out_ids = ids;
    if (eot_pos) *eot_pos = eots;
    return n_windows;
}

char *cc_tokenizer_decode(const cc_tokenizer *tok, const int32_t *ids, int n, size_t *out_len) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size || tok->missing[ids[i]]) {
            cc_set_error("decode: token id %d at position %d is not in the vocabulary (size %d)", ids[i], i,
                         tok->vocab_size);
            return NULL;
        }
        total += tok->decoded_off[ids[i] + 1] - tok->decoded_off[ids[i]];
    }
    char *bytes = cc_malloc(total + 1, "decoded text");
    uint32_t *cps = cc_malloc((total + 1) * sizeof(uint32_t), "decoded text");
    char *text = cc_malloc(3 * total + 1, "decoded text");
    if (!bytes || !cps || !text) {
        free(bytes);
        free(cps);
        free(text);
        return NULL;
    }
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        uint32_t off = tok->decoded_off[ids[i]], len = tok->decoded_off[ids[i] + 1] - off;
        memcpy(bytes + w, tok->decoded + off, len);
        w += len;
    }
    size_t n_cps = cc_utf8_decode_replace((const uint8_t *)bytes, w, cps, NULL);
    size_t t = 0;
    for (size_t i = 0; i < n_cps; i++) {
        if (cps[i] == '<' && i + 3 < n_cps && cps[i + 1] == '/' && cps[i + 2] == 'w' && cps[i + 3] == '>') {
            text[t++] = ' ';
            i += 3;
            continue;
        }
        t += cc_utf8_encode(cps[i], text + t);
    }
    text[t] = 0;
    if (out_len) *out_len = t;
    free(bytes);
    free(cps);
    return text;
}

/* ---------------------------------------------------------------------------------------------- */
/* Loading                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* Reads a whole file, gunzipping it when it starts with the gzip magic. */
static int read_maybe_gzip(const char *path, char **out, size_t *out_size) {
    char *raw;
    size_t raw_size;
    if (cc_read_file(path, &raw, &raw_size) != 0) return -1;
    if (raw_size < 2 || (unsigned char)raw[0] != 0x1f || (unsigned char)raw[1] != 0x8b) {
        *out = raw;
        *out_size = raw_size;
        return 0;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        free(raw);
        cc_set_error("%s: cannot start gunzip", path);
        return -1;
    }
    size_t cap = raw_size * 4 + 1024, len = 0;
    char *buf = cc_malloc(cap + 1, path);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    zs.next_in = (Bytef *)raw;
    zs.avail_in = (uInt)raw_size;
    while (rc == Z_OK) {
        if (len == cap) {
            if (cap >= MAX_VOCAB_FILE) {
                rc = Z_BUF_ERROR;
                break;
            }
            cap *= 2;
            char *grown = cc_realloc(buf, cap + 1, path);
            if (!grown) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = grown;
        }
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
    }
    inflateEnd(&zs);
    free(raw);
    if (rc != Z_STREAM_END) {
        free(buf);
        cc_set_error("%s: %s", path,
                     rc == Z_BUF_ERROR && len >= MAX_VOCAB_FILE ? "gunzipped size above the limit"
                     : rc == Z_MEM_ERROR ? "out of memory while gunzipping" : "corrupt or truncated gzip data");
        return -1;
    }
    buf[len] = 0;
    *out = buf;
    *out_size = len;
    return 0;
}

typedef struct merge_list {
    char **left, **right;
    int count, cap;
} merge_list;

static void merge_list_free(merge_list *m) {
    for (int i = 0; i < m->count; i++) {
        free(m->left[i]);
        free(m->right[i]);
    }
    free(m->left);
    free(m->right);
    memset(m, 0, sizeof *m);
}

/* Parses merge lines ("A B") from text. Skips a first line starting with "#version" (and, for the
 * openai file, its header line), blank lines; at most max_merges. Errors name the line. */
static int parse_merges(const char *path, char *text, size_t size, int skip_first_line, int max_merges, merge_list *out) {
    memset(out, 0, sizeof *out);
    int line_no = 0;
    char *p = text, *end = text + size;
    while (p < end && out->count < max_merges) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        line_no++;
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r') len--;
        char *line = p;
        p = eol + 1;
        if ((line_no == 1 && skip_first_line) || len == 0 || (line_no == 1 && len >= 8 && memcmp(line, "#version", 8) == 0))
            continue;
        char *space = memchr(line, ' ', len);
        if (!space || space == line || space + 1 == line + len || memchr(space + 1, ' ', (size_t)(line + len - space - 1))) {
            cc_set_error("%s:%d: a merge line must be two tokens separated by one space", path, line_no);
            merge_list_free(out);
            return -1;
        }
        if (out->count == out->cap) {
            int cap = out->cap ? out->cap * 2 : 1024;
            char **l = cc_realloc(out->left, (size_t)cap * sizeof(char *), "merges");
            if (l) out->left = l;
            char **r = l ? cc_realloc(out->right, (size_t)cap * sizeof(char *), "merges") : NULL;
            if (!l || !r) {
                merge_list_free(out);
                return -1;
            }
            out->right = r;
            out->cap = cap;
        }
        size_t left_len = (size_t)(space - line), right_len = len - left_len - 1;
        char *left = cc_malloc(left_len + 1, "merge"), *right = cc_malloc(right_len + 1, "merge");
        if (!left || !right) {
            free(left);
            free(right);
            merge_list_free(out);
            return -1;
        }
        memcpy(left, line, left_len);
        left[left_len] = 0;
        memcpy(right, space + 1, right_len);
        right[right_len] = 0;
        out->left[out->count] = left;
        out->right[out->count] = right;
        out->count++;
    }
    return 0;
}

cc_tokenizer *cc_tokenizer_load_openai(const char *gz_path) {
    char *text;
    size_t size;
    if (read_maybe_gzip(gz_path, &text, &size) != 0) return NULL;
    merge_list merges;
    cc_tokenizer *tok = NULL;
    cc_strmap vocab = {0};
    char **id_strings = NULL;
    int vocab_size = 0;
    if (parse_merges(gz_path, text, size, 1, CC_CLIP_OPENAI_MERGES, &merges) != 0) {
        free(text);
        return NULL;
    }
    free(text);
    if (merges.count == 0) {
        cc_set_error("%s: no merges found", gz_path);
        goto done;
    }
    /* vocab = byte symbols, the same + </w>, one per merge, sot, eot (openai's SimpleTokenizer) */
    vocab_size = 512 + merges.count + 2;
    id_strings = cc_calloc((size_t)vocab_size, sizeof(char *), "vocabulary");
    if (!id_strings || cc_strmap_init(&vocab, (size_t)vocab_size) != 0) goto done;
    uint32_t byte_unicode[256];
    uint8_t byte_order[256];
    cc_bytes_to_unicode(byte_unicode, byte_order);
    char buf[16];
    for (int i = 0; i < 512; i++) {
        cc_bytes_to_token_string(byte_unicode, &byte_order[i % 256], 1, i >= 256, buf);
        if (!(id_strings[i] = cc_strdup(buf))) goto done;
    }
    for (int r = 0; r < merges.count; r++) {
        size_t l = strlen(merges.left[r]), rl = strlen(merges.right[r]);
        char *joined = cc_malloc(l + rl + 1, "vocabulary");
        if (!joined) goto done;
        memcpy(joined, merges.left[r], l);
        memcpy(joined + l, merges.right[r], rl + 1);
        id_strings[512 + r] = joined;
    }
    if (!(id_strings[vocab_size - 2] = cc_strdup(SOT_TEXT)) || !(id_strings[vocab_size - 1] = cc_strdup(EOT_TEXT))) goto done;
    for (int id = 0; id < vocab_size; id++)
        if (cc_strmap_put(&vocab, id_strings[id], strlen(id_strings[id]), id) != 0) goto done;
    /* a string appearing twice keeps its last id (dict(zip(vocab, range(len(vocab))))); the earlier
     * id then has no decoder entry, as in Python */
    for (int id = 0; id < vocab_size; id++)
        if (*cc_strmap_get(&vocab, id_strings[id], strlen(id_strings[id])) != id) {
            free(id_strings[id]);
            id_strings[id] = NULL;
        }
    tok = build_tokenizer(&vocab, id_strings, vocab_size, merges.left, merges.right, merges.count, gz_path);
done:
    if (id_strings)
        for (int id = 0; id < vocab_size; id++) free(id_strings[id]);
    free(id_strings);
    cc_strmap_free(&vocab);
    merge_list_free(&merges);
    return tok;
}

cc_tokenizer *cc_tokenizer_load_hf(const char *vocab_json, const char *merges_txt) {
    char *text = NULL;
    size_t size;
    cc_tokenizer *tok = NULL;
    cc_strmap vocab = {0};
    char **id_strings = NULL;
    int vocab_size = 0;
    merge_list merges = {0};
    cJSON *root = NULL;
    if (cc_read_file(vocab_json, &text, &size) != 0) return NULL;
    const char *parse_end = NULL;
    root = cJSON_ParseWithLengthOpts(text, size, &parse_end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t offset = parse_end && parse_end >= text ? (size_t)(parse_end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < offset && i < size; i++) line += text[i] == '\n';
        cc_set_error("%s: malformed JSON near line %d (byte %zu); expected an object token -> id", vocab_json, line, offset);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(root);
    if (cc_strmap_init(&vocab, (size_t)n_entries) != 0) goto done;
    for (const cJSON *item = root->child; item; item = item->next) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble >= MAX_VOCAB_SIZE ||
            item->valuedouble != (int)item->valuedouble) {
            cc_set_error("%s: the id of token '%s' is not an integer in 0..%d", vocab_json, item->string, MAX_VOCAB_SIZE - 1);
            goto done;
        }
        int id = (int)item->valuedouble;
        if (id + 1 > vocab_size) vocab_size = id + 1;
        if (cc_strmap_put(&vocab, item->string, strlen(item->string), id) != 0) goto done;
    }
    id_strings = cc_calloc((size_t)vocab_size + 1, sizeof(char *), "vocabulary");
    if (!id_strings) goto done;
    for (const cJSON *item = root->child; item; item = item->next) {
        int id = (int)item->valuedouble;
        if (id_strings[id]) {
            cc_set_error("%s: id %d is given to two tokens ('%s' and '%s')", vocab_json, id, id_strings[id], item->string);
            goto done;
        }
        if (!(id_strings[id] = cc_strdup(item->string))) goto done;
    }
    free(text);
    text = NULL;
    if (read_maybe_gzip(merges_txt, &text, &size) != 0) goto done;
    if (parse_merges(merges_txt, text, size, 0, INT_MAX, &merges) != 0) goto done;
    tok = build_tokenizer(&vocab, id_strings, vocab_size, merges.left, merges.right, merges.count, merges_txt);
done:
    if (id_strings)
        for (int id = 0; id < vocab_size; id++) free(id_strings[id]);
    free(id_strings);
    cJSON_Delete(root);
    free(text);
    cc_strmap_free(&vocab);
    merge_list_free(&merges);
    return tok;
}

static int is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

cc_tokenizer *cc_tokenizer_load_dir(const char *dir) {
    char vocab[4096], merges[4096], gz[4096];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    snprintf(gz, sizeof gz, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
    if (cc_file_exists(vocab) && cc_file_exists(merges)) return cc_tokenizer_load_hf(vocab, merges);
    if (cc_file_exists(gz)) return cc_tokenizer_load_openai(gz);
    cc_set_error("%s: no tokenizer files (vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz)", dir);
    return NULL;
}

cc_tokenizer *cc_tokenizer_load(const char *path) {
    if (is_directory(path)) return cc_tokenizer_load_dir(path);
    size_t len = strlen(path);
    if (len >= 5 && strcmp(path + len - 5, ".json") == 0) {
        char merges[4096];
        const char *slash = strrchr(path, '/');
        snprintf(merges, sizeof merges, "%.*smerges.txt", slash ? (int)(slash - path + 1) : 0, path);
        return cc_tokenizer_load_hf(path, merges);
    }
    return cc_tokenizer_load_openai(path);
}
