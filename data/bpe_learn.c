/* bpe_learn.c — learning a CLIP-style byte-level BPE vocabulary from captions (cc_bpe_learn in
 * tokenizer.h), for models trained from scratch where no CLIP vocabulary is at hand.
 *
 * The captions go through the tokenizer's own cleaning and pre-tokenisation; each distinct piece is a
 * word with a count, spelled as byte symbols with "</w>" on the last one. Then, n_merges times: the
 * adjacent pair with the highest total count (ties: the smaller left id, then the smaller right id) is
 * merged everywhere. Pair counts are kept up to date incrementally: each pair remembers the words it
 * occurs in, and only those words are rewritten when it is merged; a max-heap with lazy entries finds
 * the best pair. A pair whose merged string already exists as a token (the same string reached by
 * another merge) is skipped, so that the vocabulary keeps the CLIP layout of one new id per merge.
 */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "engine/util.h"

#define MIN_PAIR_COUNT 2 /* a pair seen only once is not worth a token */

typedef struct word {
    int32_t *sym;
    int n;
    int64_t count;
    int stamp; /* the merge step that last rewrote it (so a word is rewritten once per step) */
} word;

typedef struct pair_stat {
    int32_t left, right;
    int64_t count;
    int *words; /* words that contained the pair at some point (may be stale, may repeat) */
    int n_words, cap_words;
    int banned;
} pair_stat;

typedef struct heap_entry {
    int64_t count;
    int32_t left, right;
} heap_entry;

typedef struct learner {
    word *words;
    int n_words;
    pair_stat *pairs;
    int n_pairs, cap_pairs;
    int *slots; /* open addressing: pair key -> index in pairs + 1 */
    size_t n_slots;
    heap_entry *heap;
    int n_heap, cap_heap;
    int *changed; /* pairs whose count changed in the current step */
    int n_changed, cap_changed;
} learner;

static inline uint64_t pair_hash(int32_t left, int32_t right) {
    uint64_t x = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static int grow_slots(learner *L) {
    size_t n_slots = L->n_slots ? L->n_slots * 2 : 4096;
    int *slots = cc_calloc(n_slots, sizeof(int), "pair table");
    if (!slots) return -1;
    for (int i = 0; i < L->n_pairs; i++) {
        size_t s = pair_hash(L->pairs[i].left, L->pairs[i].right) & (n_slots - 1);
        while (slots[s]) s = (s + 1) & (n_slots - 1);
        slots[s] = i + 1;
    }
    free(L->slots);
    L->slots = slots;
    L->n_slots = n_slots;
    return 0;
}

/* The pair's stat, created when `create`; NULL when absent (or out of memory with create). */
static pair_stat *get_pair(learner *L, int32_t left, int32_t right, int create) {
    if (create && (L->n_slots == 0 || (size_t)(L->n_pairs + 1) * 2 > L->n_slots) && grow_slots(L) != 0) return NULL;
    if (L->n_slots == 0) return NULL;
    size_t s = pair_hash(left, right) & (L->n_slots - 1);
    while (L->slots[s]) {
        pair_stat *p = &L->pairs[L->slots[s] - 1];
        if (p->left == left && p->right == right) return p;
        s = (s + 1) & (L->n_slots - 1);
    }
    if (!create) return NULL;
    if (L->n_pairs == L->cap_pairs) {
        int cap = L->cap_pairs ? L->cap_pairs * 2 : 4096;
        pair_stat *grown = cc_realloc(L->pairs, (size_t)cap * sizeof(pair_stat), "pair stats");
        if (!grown) return NULL;
        L->pairs = grown;
        L->cap_pairs = cap;
    }
    pair_stat *p = &L->pairs[L->n_pairs];
    memset(p, 0, sizeof *p);
    p->left = left;
    p->right = right;
    L->slots[s] = ++L->n_pairs;
    return p;
}

static int heap_before(const heap_entry *a, const heap_entry *b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

static int heap_push(learner *L, heap_entry e) {
    if (L->n_heap == L->cap_heap) {
        int cap = L->cap_heap ? L->cap_heap * 2 : 4096;
        heap_entry *grown = cc_realloc(L->heap, (size_t)cap * sizeof(heap_entry), "pair heap");
        if (!grown) return -1;
        L->heap = grown;
        L->cap_heap = cap;
    }
    int i = L->n_heap++;
    while (i > 0 && heap_before(&e, &L->heap[(i - 1) / 2])) {
        L->heap[i] = L->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    L->heap[i] = e;
    return 0;
}

static heap_entry heap_pop(learner *L) {
    heap_entry top = L->heap[0], last = L->heap[--L->n_heap];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= L->n_heap) break;
        if (child + 1 < L->n_heap && heap_before(&L->heap[child + 1], &L->heap[child])) child++;
        if (!heap_before(&L->heap[child], &last)) break;
        L->heap[i] = L->heap[child];
        i = child;
    }
    L->heap[i] = last;
    return top;
}

static int note_word(pair_stat *p, int w) {
    if (p->n_words && p->words[p->n_words - 1] == w) return 0;
    if (p->n_words == p->cap_words) {
        int cap = p->cap_words ? p->cap_words * 2 : 4;
        int *grown = cc_realloc(p->words, (size_t)cap * sizeof(int), "pair words");
        if (!grown) return -1;
        p->words = grown;
        p->cap_words = cap;
    }
    p->words[p->n_words++] = w;
    return 0;
}

static int note_changed(learner *L, pair_stat *p) {
    if (L->n_changed == L->cap_changed) {
        int cap = L->cap_changed ? L->cap_changed * 2 : 1024;
        int *grown = cc_realloc(L->changed, (size_t)cap * sizeof(int), "changed pairs");
        if (!grown) return -1;
        L->changed = grown;
        L->cap_changed = cap;
    }
    L->changed[L->n_changed++] = (int)(p - L->pairs);
    return 0;
}

/* Adds sign * count of word w to every adjacent pair of it. */
static int count_word_pairs(learner *L, int w, int sign) {
    word *wd = &L->words[w];
    for (int i = 0; i + 1 < wd->n; i++) {
        pair_stat *p = get_pair(L, wd->sym[i], wd->sym[i + 1], 1);
        if (!p) return -1;
        p->count += sign * wd->count;
        if (sign > 0 && note_word(p, w) != 0) return -1;
        if (note_changed(L, p) != 0) return -1;
    }
    return 0;
}

typedef struct piece_collector {
    cc_strmap *index;
    learner *L;
    int cap_words;
    uint8_t rank_of_byte[256]; /* ids 0..255: the bytes in bytes_to_unicode order */
} piece_collector;

static int collect_piece(void *arg, const char *s, size_t n) {
    piece_collector *pc = arg;
    if ((n == 15 && memcmp(s, "<|startoftext|>", 15) == 0) || (n == 13 && memcmp(s, "<|endoftext|>", 13) == 0)) return 0;
    int32_t *found = cc_strmap_get(pc->index, s, n);
    if (found) {
        pc->L->words[*found].count++;
        return 0;
    }
    learner *L = pc->L;
    if (L->n_words == pc->cap_words) {
        int cap = pc->cap_words ? pc->cap_words * 2 : 1024;
        word *grown = cc_realloc(L->words, (size_t)cap * sizeof(word), "words");
        if (!grown) return -1;
        L->words = grown;
        pc->cap_words = cap;
    }
    word *w = &L->words[L->n_words];
    w->sym = cc_malloc(n * sizeof(int32_t), "word");
    if (!w->sym) return -1;
    /* 256..511: the same bytes ending a word */
    for (size_t i = 0; i < n; i++) w->sym[i] = pc->rank_of_byte[(uint8_t)s[i]] + (i + 1 == n ? 256 : 0);
    w->n = (int)n;
    w->count = 1;
    w->stamp = -1;
    if (cc_strmap_put(pc->index, s, n, L->n_words) != 0) return -1;
    L->n_words++;
    return 0;
}

static int word_has_pair(const word *w, int32_t left, int32_t right) {
    for (int i = 0; i + 1 < w->n; i++)
        if (w->sym[i] == left && w->sym[i + 1] == right) return 1;
    return 0;
}

/* Merges every (left, right) in word w, left to right. */
static void merge_in_word(word *w, int32_t left, int32_t right, int32_t merged) {
    int out = 0;
    for (int i = 0; i < w->n;) {
        if (i + 1 < w->n && w->sym[i] == left && w->sym[i + 1] == right) {
            w->sym[out++] = merged;
            i += 2;
        } else {
            w->sym[out++] = w->sym[i++];
        }
    }
    w->n = out;
}

/* JSON string body: escapes quote, backslash and control characters; UTF-8 passes through. */
static void write_json_string(FILE *fp, const char *s) {
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    fputc('"', fp);
}

static int write_vocab(const char *dir, char **token_strings, int n_tokens, const int32_t (*merges)[2], int n_merges) {
    char path[4096];
    cc_atomic_file af;
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    if (cc_atomic_open(&af, path) != 0) return -1;
    fputc('{', af.fp);
    for (int id = 0; id < n_tokens; id++) {
        if (id) fputc(',', af.fp);
        write_json_string(af.fp, token_strings[id]);
        fprintf(af.fp, ":%d", id);
    }
    fputs("}\n", af.fp);
    if (cc_atomic_commit(&af) != 0) return -1;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    if (cc_atomic_open(&af, path) != 0) return -1;
    fputs("#version: 0.2\n", af.fp);
    for (int m = 0; m < n_merges; m++) fprintf(af.fp, "%s %s\n", token_strings[merges[m][0]], token_strings[merges[m][1]]);
    return cc_atomic_commit(&af);
}

int cc_bpe_learn(const char *const *texts, int64_t n_texts, int n_merges, const char *out_dir) {
    if (n_merges < 0 || n_merges > CC_CLIP_OPENAI_MERGES) {
        cc_set_error("bpe learn: the number of merges must be 0..%d (Hugging Face's CLIPTokenizer reads no more), got %d",
                     CC_CLIP_OPENAI_MERGES, n_merges);
        return -1;
    }
    learner L;
    memset(&L, 0, sizeof L);
    cc_strmap pieces = {0}, existing = {0};
    char **token_strings = NULL;
    int32_t (*merges)[2] = NULL;
    int n_tokens = 0, learned = -1;
    piece_collector pc = {&pieces, &L, 0, {0}};
    uint32_t byte_unicode[256];
    uint8_t byte_order[256];
    cc_bytes_to_unicode(byte_unicode, byte_order);
    for (int i = 0; i < 256; i++) pc.rank_of_byte[byte_order[i]] = (uint8_t)i;
    if (cc_strmap_init(&pieces, 1024) != 0 || cc_strmap_init(&existing, 1024) != 0) goto done;
    for (int64_t t = 0; t < n_texts; t++) {
        size_t clean_len;
        char *clean = cc_clip_clean_text(texts[t], strlen(texts[t]), &clean_len, NULL);
        if (!clean) goto done;
        int rc = cc_for_each_piece(clean, clean_len, collect_piece, &pc);
        free(clean);
        if (rc != 0) goto done;
    }
    token_strings = cc_calloc((size_t)512 + n_merges + 2, sizeof(char *), "tokens");
    merges = cc_malloc(((size_t)n_merges + 1) * sizeof *merges, "merges");
    if (!token_strings || !merges) goto done;
    char buf[16];
    for (int id = 0; id < 512; id++) {
        size_t n = cc_bytes_to_token_string(byte_unicode, &byte_order[id % 256], 1, id >= 256, buf);
        if (!(token_strings[id] = cc_strdup(buf)) || cc_strmap_put(&existing, buf, n, id) != 0) goto done;
    }
    n_tokens = 512;
    for (int w = 0; w < L.n_words; w++)
        if (count_word_pairs(&L, w, +1) != 0) goto done;
    for (int i = 0; i < L.n_pairs; i++)
        if (heap_push(&L, (heap_entry){L.pairs[i].count, L.pairs[i].left, L.pairs[i].right}) != 0) goto done;
    L.n_changed = 0;
    int n_learned = 0;
    while (n_learned < n_merges && L.n_heap > 0) {
        heap_entry top = heap_pop(&L);
        pair_stat *p = get_pair(&L, top.left, top.right, 0);
        if (!p || p->banned || p->count != top.count) continue; /* stale entry */
        if (p->count < MIN_PAIR_COUNT) break;
        size_t left_len = strlen(token_strings[p->left]), right_len = strlen(token_strings[p->right]);
        char *joined = cc_malloc(left_len + right_len + 1, "token");
        if (!joined) goto done;
        memcpy(joined, token_strings[p->left], left_len);
        memcpy(joined + left_len, token_strings[p->right], right_len + 1);
        if (cc_strmap_get(&existing, joined, left_len + right_len)) {
            free(joined);
            p->banned = 1;
            continue;
        }
        int32_t merged = n_tokens;
        token_strings[n_tokens++] = joined;
        if (cc_strmap_put(&existing, joined, left_len + right_len, merged) != 0) goto done;
        merges[n_learned][0] = p->left;
        merges[n_learned][1] = p->right;
        int32_t left = p->left, right = p->right;
        /* rewrite the words holding the pair; the pair array may grow, so copy its word list first */
        int n_words = p->n_words;
        int *words = cc_malloc((size_t)(n_words ? n_words : 1) * sizeof(int), "pair words");
        if (!words) goto done;
        memcpy(words, p->words, (size_t)n_words * sizeof(int));
        L.n_changed = 0;
        for (int k = 0; k < n_words; k++) {
            int w = words[k];
            if (L.words[w].stamp == n_learned) continue;
            L.words[w].stamp = n_learned;
            if (!word_has_pair(&L.words[w], left, right)) continue; /* a stale entry of the list */
            /* take the word's pairs out, merge, put the new pairs in */
            if (count_word_pairs(&L, w, -1) != 0) {
                free(words);
                goto done;
            }
            merge_in_word(&L.words[w], left, right, merged);
            if (count_word_pairs(&L, w, +1) != 0) {
                free(words);
                goto done;
            }
        }
        free(words);
        for (int k = 0; k < L.n_changed; k++) {
            pair_stat *changed = &L.pairs[L.changed[k]];
            if (changed->count > 0 && heap_push(&L, (heap_entry){changed->count, changed->left, changed->right}) != 0) goto done;
        }
        n_learned++;
    }
    if (!(token_strings[n_tokens++] = cc_strdup("<|startoftext|>")) || !(token_strings[n_tokens++] = cc_strdup("<|endoftext|>")))
        goto done;
    if (cc_mkdir_p(out_dir) != 0 || write_vocab(out_dir, token_strings, n_tokens, (const int32_t(*)[2])merges, n_learned) != 0)
        goto done;
    learned = n_learned;
done:
    for (int w = 0; w < L.n_words; w++) free(L.words[w].sym);
    free(L.words);
    for (int i = 0; i < L.n_pairs; i++) free(L.pairs[i].words);
    free(L.pairs);
    free(L.slots);
    free(L.heap);
    free(L.changed);
    if (token_strings)
        for (int i = 0; i < n_tokens; i++) free(token_strings[i]);
    free(token_strings);
    free(merges);
    cc_strmap_free(&pieces);
    cc_strmap_free(&existing);
    return learned;
}
