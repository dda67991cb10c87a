/* test_data_tokenizer.c — the CLIP tokenizer against the golden cases (openai SimpleTokenizer output),
 * against a Python SimpleTokenizer (benchmarks/data/simple_tokenizer_ref.py) on random Unicode text,
 * the Hugging Face file layout, context/truncation/windows, decode, bad input, and BPE learning. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "engine/util.h"
#include "tests/test.h"

static const char *openai_vocab_path(void) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/clip/bpe_simple_vocab_16e6.txt.gz", test_shared_dir());
    return path;
}

static cc_tokenizer *load_openai(void) {
    cc_tokenizer *tok = cc_tokenizer_load_openai(openai_vocab_path());
    if (!tok) fprintf(stderr, "    %s\n", cc_last_error());
    return tok;
}

/* Undoes the golden file's escapes (\\ \t \n \r) in place; returns the length. */
static size_t unescape_golden(char *s) {
    size_t w = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            char c = s[++i];
            s[w++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        } else {
            s[w++] = s[i];
        }
    }
    s[w] = 0;
    return w;
}

typedef struct golden_case {
    char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
} golden_case;

/* Reads ../shared/golden/tokenizer_cases.tsv: "text<TAB>ids"; a line starting with '#' and without a
 * tab is a comment. */
static golden_case *read_golden(int *n_cases) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/tokenizer_cases.tsv", test_shared_dir());
    char *data;
    size_t size;
    *n_cases = 0;
    if (cc_read_file(path, &data, &size) != 0) return NULL;
    int cap = 8192, n = 0;
    golden_case *cases = calloc((size_t)cap, sizeof *cases);
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue; /* comment */
        *tab = 0;
        if (n == cap) cases = realloc(cases, (size_t)(cap *= 2) * sizeof *cases);
        golden_case *c = &cases[n++];
        c->text = strdup(line);
        c->len = unescape_golden(c->text);
        c->ids = malloc((strlen(tab + 1) / 2 + 2) * sizeof(int32_t));
        c->n_ids = 0;
        for (char *p = tab + 1; *p;) {
            char *end;
            long id = strtol(p, &end, 10);
            if (end == p) break;
            c->ids[c->n_ids++] = (int32_t)id;
            p = end;
        }
    }
    free(data);
    *n_cases = n;
    return cases;
}

static void free_golden(golden_case *cases, int n) {
    for (int i = 0; i < n; i++) {
        free(cases[i].text);
        free(cases[i].ids);
    }
    free(cases);
}

static int run_golden(cc_tokenizer *tok, golden_case *cases, int n_cases, int verbose) {
    int failures = 0;
    for (int i = 0; i < n_cases; i++) {
        cc_tokens tokens = {0};
        int rc = cc_tokenizer_encode(tok, cases[i].text, cases[i].len, &tokens, NULL);
        int same = rc == 0 && tokens.count == cases[i].n_ids &&
                   (tokens.count == 0 || memcmp(tokens.ids, cases[i].ids, (size_t)tokens.count * sizeof(int32_t)) == 0);
        if (!same && failures++ < 10 && verbose) {
            fprintf(stderr, "    golden mismatch for '%s': got", cases[i].text);
            for (int k = 0; k < tokens.count; k++) fprintf(stderr, " %d", tokens.ids[k]);
            fprintf(stderr, "; want");
            for (int k = 0; k < cases[i].n_ids; k++) fprintf(stderr, " %d", cases[i].ids[k]);
            fprintf(stderr, "\n");
        }
        cc_tokens_free(&tokens);
    }
    return failures;
}

TEST(tokenizer_matches_golden_cases) {
    int n_cases;
    golden_case *cases = read_golden(&n_cases);
    REQUIRE(cases, "%s", cc_last_error());
    CHECK(n_cases == 5295, "golden file has %d cases", n_cases);
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    CHECK(cc_tokenizer_vocab_size(tok) == 49408 && cc_tokenizer_sot(tok) == 49406 && cc_tokenizer_eot(tok) == 49407);
    /* twice: the second pass is served by the word cache */
    for (int pass = 0; pass < 2; pass++) {
        int failures = run_golden(tok, cases, n_cases, 1);
        CHECK(failures == 0, "pass %d: %d of %d golden cases differ", pass, failures, n_cases);
    }
    cc_tokenizer_free(tok);
    free_golden(cases, n_cases);
}

/* ---------------------------------------------------------------------------------------------- */
/* Random text against the Python SimpleTokenizer                                                 */
/* ---------------------------------------------------------------------------------------------- */

static void append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap) *cap = *cap ? *cap * 2 : 256;
        *buf = realloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
}

static void append_cp(char **buf, size_t *len, size_t *cap, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000) u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    append(buf, len, cap, u, n);
}

/* A random text that exercises every cleaning and pre-tokenisation rule. */
static char *random_text(cc_rng *rng, size_t *out_len) {
    static const char *const snippets[] = {
        "'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'d", "'D", "'x", "'", "''", "\xc5\xbf", "'\xc5\xbf",
        "<|startoftext|>", "<|EndOfText|>", "<|endoftext|", "<|start", "..<|endoftext|>", "x<|endoftext|>y",
        "&amp;", "&AMP;", "&amp", "&lt", "&gt;", "&quot;", "&#39;", "&#x27;", "&#X41;", "&#0;", "&#128;", "&#150;",
        "&#x110000;", "&#99999999999999999999999;", "&#;", "&#x;", "&#xZ", "&notin;", "&notit;", "&noti", "&Aacute",
        "&aacute;", "&nbsp;", "&amp;amp;", "&amp;lt;", "&;", "&#xD800;", "&#x1F600;", "&#65", "&#13;", "&#11;",
        "&ThisIsNotAnEntityAtAllAndItIsLongerThan32;", "&lt;b&gt;", "&ampx", "&&amp;", "& amp;", "&#x0041;",
        "\xce\xa3", "\xce\x9f\xce\x94\xce\x9f\xce\xa3.", "\xce\x91\xce\xa3'\xce\x92", "\xce\xa3\xce\xa3", " \xce\xa3 ",
        "A\xcc\x81\xce\xa3", "\xc4\xb0", "\xc3\x9f", "\xc7\x85", "\xca\xb0", "\xcc\x81", "\xef\xbb\xbf", "\xe2\x80\x8b",
        "\xe1\xa0\x8e", "\xe2\x80\xa8", "\xc2\xa0", "\xe3\x80\x80", "\xc2\x85", "\x1c", "\x1d\x1f", "\x0b", "\x0c",
        " \x1c ", "\t", "\n", "\r\n", "  ", " \t\n ", "\xe2\x80\x89",
        "\x80", "\xbf", "\xc0\x80", "\xc2", "\xe2\x82", "\xed\xa0\x80", "\xf5\x80\x80\x80", "\xf0\x9f\x98", "\xff", "\xf4\x90\x80\x80",
        "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "\xe6\x9d\xb1\xe4\xba\xac", "\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a",
        "\xd9\xa1\xd9\xa2", "\xe2\x85\xab", "\xc2\xb2", "\xef\xbd\x86", "1234", "3.14", "$100,000", "e-mail", "a_b",
        "DON'T", "rock'n'roll", "O'Neill's", "hello...world???", "#hashtag", "@user", "http://x.y/z?q=1&r=2", "\\",
    };
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "", 0);
    int n_parts = 1 + (int)cc_rng_below(rng, 14);
    for (int p = 0; p < n_parts; p++) {
        switch (cc_rng_below(rng, 6)) {
        case 0: { /* a word, random case */
            int n = 1 + (int)cc_rng_below(rng, 12);
            for (int i = 0; i < n; i++) {
                char c = (char)('a' + cc_rng_below(rng, 26));
                if (cc_rng_below(rng, 4) == 0) c = (char)(c - 32);
                append(&buf, &len, &cap, &c, 1);
            }
            break;
        }
        case 1:
        case 2: {
            const char *s = snippets[cc_rng_below(rng, sizeof snippets / sizeof snippets[0])];
            append(&buf, &len, &cap, s, strlen(s));
            break;
        }
        case 3: { /* any printable ASCII */
            char c = (char)(32 + cc_rng_below(rng, 95));
            append(&buf, &len, &cap, &c, 1);
            break;
        }
        case 4: { /* a code point from a random block (surrogates and noncharacters included) */
            static const uint32_t blocks[][2] = {{0x80, 0x2ff}, {0x370, 0x3ff}, {0x400, 0x4ff}, {0x590, 0x6ff},
                                                 {0x900, 0x97f}, {0x1e00, 0x1fff}, {0x2000, 0x206f}, {0x2100, 0x22ff},
                                                 {0x3000, 0x30ff}, {0x4e00, 0x4eff}, {0xac00, 0xacff}, {0xd800, 0xdfff},
                                                 {0xe000, 0xe0ff}, {0xfb00, 0xffff}, {0x10000, 0x1007f}, {0x1d400, 0x1d7ff},
                                                 {0x1f300, 0x1faff}, {0xe0000, 0xe007f}, {0x0, 0x1f}};
            int b = (int)cc_rng_below(rng, sizeof blocks / sizeof blocks[0]);
            uint32_t cp = blocks[b][0] + (uint32_t)cc_rng_below(rng, blocks[b][1] - blocks[b][0] + 1);
            if (cp == 0) cp = 1;
            append_cp(&buf, &len, &cap, cp); /* a surrogate gives invalid UTF-8 (ED A0..BF ..) on purpose */
            break;
        }
        default:
            append(&buf, &len, &cap, " ", 1);
        }
    }
    *out_len = len;
    return buf;
}

static void write_escaped(FILE *fp, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') fputs("\\\\", fp);
        else if (c == '\t') fputs("\\t", fp);
        else if (c == '\n') fputs("\\n", fp);
        else if (c == '\r') fputs("\\r", fp);
        else fputc(c, fp);
    }
}

/* Escapes \\ \t \n \r; *out_len (may be NULL) gets the length (the text may hold NUL bytes). */
static char *escaped_copy_n(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(2 * n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            *w++ = '\\';
            *w++ = c == '\\' ? '\\' : c == '\t' ? 't' : c == '\n' ? 'n' : 'r';
        } else {
            *w++ = c;
        }
    }
    *w = 0;
    if (out_len) *out_len = (size_t)(w - out);
    return out;
}

static char *escaped_copy(const char *s) { return escaped_copy_n(s, strlen(s), NULL); }

/* Splits a buffer into lines without stopping at NUL bytes (decoded byte tokens may contain NUL). */
typedef struct line_reader {
    char *data;
    size_t size, pos;
} line_reader;

static int next_line(line_reader *r, char **line, size_t *len) {
    if (r->pos >= r->size) return 0;
    char *start = r->data + r->pos, *eol = memchr(start, '\n', r->size - r->pos);
    *line = start;
    *len = eol ? (size_t)(eol - start) : r->size - r->pos;
    r->pos += *len + 1;
    return 1;
}

TEST_SLOW(tokenizer_matches_python_on_random_text) {
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    enum { N_TEXTS = 2500 };
    char **texts = calloc(N_TEXTS, sizeof(char *));
    size_t *lens = calloc(N_TEXTS, sizeof(size_t));
    FILE *fp = fopen(test_path("texts.txt"), "wb");
    REQUIRE(fp);
    for (int i = 0; i < N_TEXTS; i++) {
        texts[i] = random_text(&rng, &lens[i]);
        write_escaped(fp, texts[i], lens[i]);
        fputc('\n', fp);
    }
    fclose(fp);
    REQUIRE(test_python("tokenizer_ref.py", "roundtrip", openai_vocab_path(), test_path("texts.txt"), test_path("py.txt"), NULL) == 0);
    line_reader reader = {0};
    REQUIRE(cc_read_file(test_path("py.txt"), &reader.data, &reader.size) == 0);
    char *line;
    size_t line_len;
    int mismatches = 0, decode_mismatches = 0, path_mismatches = 0, checked = 0;
    int64_t invalid_total = 0, total_tokens = 0;
    for (int i = 0; i < N_TEXTS && next_line(&reader, &line, &line_len); i++) {
        char *tab = memchr(line, '\t', line_len);
        REQUIRE(tab, "python output line %d has no tab", i);
        *tab = 0;
        size_t want_decoded_len = line_len - (size_t)(tab + 1 - line);
        cc_tokens ours = {0};
        cc_text_stats stats = {0};
        REQUIRE(cc_tokenizer_encode(tok, texts[i], lens[i], &ours, &stats) == 0, "%s", cc_last_error());
        invalid_total += stats.invalid_utf8;
        total_tokens += ours.count;
        char ids_text[65536];
        size_t w = 0;
        ids_text[0] = 0;
        for (int k = 0; k < ours.count && w + 16 < sizeof ids_text; k++)
            w += (size_t)snprintf(ids_text + w, sizeof ids_text - w, k ? " %d" : "%d", ours.ids[k]);
        if (strcmp(ids_text, line) != 0 && mismatches++ < 5) {
            char *shown = escaped_copy(texts[i]);
            fprintf(stderr, "    text '%s'\n      ours:   %s\n      python: %s\n", shown, ids_text, line);
            free(shown);
        }
        /* the three internal paths (fused ASCII / clean then scan / PCRE2) agree */
        for (int force = 1; force <= 2; force++) {
            cc_tokens other = {0};
            REQUIRE(cc_tokenizer_encode_ex(tok, texts[i], lens[i], &other, NULL, force) == 0);
            if (other.count != ours.count || (ours.count && memcmp(other.ids, ours.ids, (size_t)ours.count * sizeof(int32_t)) != 0))
                path_mismatches++;
            cc_tokens_free(&other);
        }
        size_t decoded_len;
        char *decoded = cc_tokenizer_decode(tok, ours.ids, ours.count, &decoded_len);
        REQUIRE(decoded, "%s", cc_last_error());
        size_t escaped_len;
        char *decoded_escaped = escaped_copy_n(decoded, decoded_len, &escaped_len);
        if ((escaped_len != want_decoded_len || memcmp(decoded_escaped, tab + 1, want_decoded_len) != 0) &&
            decode_mismatches++ < 5)
            fprintf(stderr, "    decode: ours '%s' python '%.*s'\n", decoded_escaped, (int)want_decoded_len, tab + 1);
        free(decoded);
        free(decoded_escaped);
        cc_tokens_free(&ours);
        checked++;
    }
    CHECK(checked == N_TEXTS, "python gave %d lines for %d texts", checked, N_TEXTS);
    CHECK(mismatches == 0, "%d of %d random texts encode differently from the Python SimpleTokenizer", mismatches, checked);
    CHECK(decode_mismatches == 0, "%d decodes differ", decode_mismatches);
    CHECK(path_mismatches == 0, "%d texts differ between the internal encode paths", path_mismatches);
    CHECK(invalid_total > 0, "the random texts should contain invalid UTF-8");
    CHECK(total_tokens > 8 * N_TEXTS, "only %lld tokens", (long long)total_tokens);
    fprintf(stderr, "    %d texts, %lld tokens, %lld invalid UTF-8 sequences: all equal to Python\n", checked,
            (long long)total_tokens, (long long)invalid_total);
    free(reader.data);
    for (int i = 0; i < N_TEXTS; i++) free(texts[i]);
    free(texts);
    free(lens);
    cc_tokenizer_free(tok);
}

TEST_SLOW(tokenizer_decodes_random_ids_like_python) {
    /* arbitrary id sequences split multi-byte characters: the U+FFFD replacement must match Python's */
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    cc_rng rng;
    cc_rng_seed(&rng, test_seed() ^ 0xdec0de);
    enum { N_LINES = 400 };
    int32_t ids[N_LINES][24];
    int counts[N_LINES];
    FILE *fp = fopen(test_path("ids.txt"), "w");
    REQUIRE(fp);
    for (int i = 0; i < N_LINES; i++) {
        counts[i] = 1 + (int)cc_rng_below(&rng, 24);
        for (int k = 0; k < counts[i]; k++) {
            /* mostly byte tokens (0..511) so that UTF-8 is often cut, some merges and specials */
            uint64_t kind = cc_rng_below(&rng, 10);
            ids[i][k] = kind < 6 ? (int32_t)cc_rng_below(&rng, 512) : kind < 9 ? (int32_t)cc_rng_below(&rng, 49406) : 49406 + (int32_t)cc_rng_below(&rng, 2);
            fprintf(fp, k ? " %d" : "%d", ids[i][k]);
        }
        fputc('\n', fp);
    }
    fclose(fp);
    REQUIRE(test_python("tokenizer_ref.py", "decode", openai_vocab_path(), test_path("ids.txt"), test_path("py.txt"), NULL) == 0);
    line_reader reader = {0};
    REQUIRE(cc_read_file(test_path("py.txt"), &reader.data, &reader.size) == 0);
    int mismatches = 0, checked = 0, with_nul = 0;
    char *want;
    size_t want_len;
    for (int i = 0; i < N_LINES && next_line(&reader, &want, &want_len); i++) {
        size_t decoded_len;
        char *decoded = cc_tokenizer_decode(tok, ids[i], counts[i], &decoded_len);
        REQUIRE(decoded, "%s", cc_last_error());
        with_nul += strlen(decoded) != decoded_len;
        size_t escaped_len;
        char *escaped = escaped_copy_n(decoded, decoded_len, &escaped_len);
        if ((escaped_len != want_len || memcmp(escaped, want, want_len) != 0) && mismatches++ < 5)
            fprintf(stderr, "    ours '%s' python '%.*s'\n", escaped, (int)want_len, want);
        free(escaped);
        free(decoded);
        checked++;
    }
    CHECK(checked == N_LINES && mismatches == 0, "%d of %d decodes differ from Python", mismatches, checked);
    CHECK(with_nul > 0, "some decodes should contain NUL bytes");
    free(reader.data);
    /* ids out of range are an error naming the id */
    int32_t bad[2] = {320, 49408};
    CHECK(cc_tokenizer_decode(tok, bad, 2, NULL) == NULL && strstr(cc_last_error(), "49408"), "%s", cc_last_error());
    cc_tokenizer_free(tok);
}

TEST_SLOW(tokenizer_reads_hugging_face_files) {
    /* vocab.json + merges.txt written by Python from the same vocabulary give the same ids */
    const char *dir = test_path("hf");
    REQUIRE(test_python("tokenizer_ref.py", "hf-files", openai_vocab_path(), dir, NULL) == 0);
    cc_tokenizer *hf = cc_tokenizer_load_dir(dir);
    REQUIRE(hf, "%s", cc_last_error());
    CHECK(cc_tokenizer_vocab_size(hf) == 49408 && cc_tokenizer_n_merges(hf) == CC_CLIP_OPENAI_MERGES);
    CHECK(cc_tokenizer_sot(hf) == 49406 && cc_tokenizer_eot(hf) == 49407);
    int n_cases;
    golden_case *cases = read_golden(&n_cases);
    REQUIRE(cases);
    CHECK(run_golden(hf, cases, n_cases, 1) == 0, "HF-format vocabulary differs on golden cases");
    free_golden(cases, n_cases);
    /* the generic loader takes the directory, the vocab.json path, or the .gz */
    char vocab_path[1024];
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    cc_tokenizer *by_json = cc_tokenizer_load(vocab_path), *by_gz = cc_tokenizer_load(openai_vocab_path());
    CHECK(by_json && by_gz, "%s", cc_last_error());
    if (by_json && by_gz) CHECK(cc_tokenizer_vocab_size(by_json) == cc_tokenizer_vocab_size(by_gz));
    cc_tokenizer_free(by_json);
    cc_tokenizer_free(by_gz);
    cc_tokenizer_free(hf);
}

/* ---------------------------------------------------------------------------------------------- */
/* Context, truncation, windows                                                                   */
/* ---------------------------------------------------------------------------------------------- */

TEST(tokenizer_fixed_context_and_truncation) {
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    int32_t ids[CC_CLIP_CONTEXT];
    int eot_pos = -1, truncated = -1;
    int n = cc_tokenizer_encode_context(tok, "A photo of a DOG.", CC_CLIP_CONTEXT, ids, &eot_pos, &truncated, NULL);
    /* golden: 320 1125 539 320 1929 269 */
    static const int32_t want[] = {49406, 320, 1125, 539, 320, 1929, 269, 49407};
    CHECK(n == 8 && eot_pos == 7 && truncated == 0, "n %d eot %d truncated %d", n, eot_pos, truncated);
    CHECK(memcmp(ids, want, sizeof want) == 0);
    for (int i = 8; i < CC_CLIP_CONTEXT; i++) CHECK(ids[i] == 0, "padding at %d is %d", i, ids[i]);
    /* the empty text: sot, eot */
    n = cc_tokenizer_encode_context(tok, "   ", CC_CLIP_CONTEXT, ids, &eot_pos, &truncated, NULL);
    CHECK(n == 2 && ids[0] == 49406 && ids[1] == 49407 && ids[2] == 0 && eot_pos == 1);
    /* a long text is cut so that eot stays last */
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    char text[4096] = "";
    int n_words = 100 + (int)cc_rng_below(&rng, 100);
    static const char *const words[] = {"red", "circle", "above", "a", "large", "blue", "square", "photograph", "of"};
    for (int i = 0; i < n_words; i++) {
        strcat(text, words[cc_rng_below(&rng, 9)]);
        strcat(text, " ");
    }
    cc_tokens all = {0};
    REQUIRE(cc_tokenizer_encode(tok, text, strlen(text), &all, NULL) == 0);
    REQUIRE(all.count > 75, "%d tokens", all.count);
    n = cc_tokenizer_encode_context(tok, text, CC_CLIP_CONTEXT, ids, &eot_pos, &truncated, NULL);
    CHECK(n == CC_CLIP_CONTEXT && eot_pos == 76 && truncated == 1 && ids[0] == 49406 && ids[76] == 49407);
    CHECK(memcmp(ids + 1, all.ids, 75 * sizeof(int32_t)) == 0, "the first 75 tokens are kept");
    /* sliding windows: 75 tokens each, covering every token, the last one ending at the end */
    int stride = 10 + (int)cc_rng_below(&rng, 66);
    int32_t *windows;
    int *eots;
    int n_windows = cc_tokenizer_encode_windows(tok, text, CC_CLIP_CONTEXT, stride, &windows, &eots, NULL);
    REQUIRE(n_windows >= 2, "%d windows", n_windows);
    int expected_windows = 0;
    for (int start = 0; start + 75 < all.count; start += stride) expected_windows++;
    expected_windows++;
    CHECK(n_windows == expected_windows, "%d windows, want %d (tokens %d, stride %d)", n_windows, expected_windows,
          all.count, stride);
    for (int w = 0; w < n_windows; w++) {
        const int32_t *row = windows + (size_t)w * CC_CLIP_CONTEXT;
        int start = w + 1 < n_windows ? w * stride : all.count - 75;
        CHECK(row[0] == 49406 && row[76] == 49407 && eots[w] == 76, "window %d", w);
        CHECK(memcmp(row + 1, all.ids + start, 75 * sizeof(int32_t)) == 0, "window %d content", w);
    }
    free(windows);
    free(eots);
    /* a short text gives one window equal to the fixed-context encoding */
    n_windows = cc_tokenizer_encode_windows(tok, "a red circle", CC_CLIP_CONTEXT, 50, &windows, NULL, NULL);
    cc_tokenizer_encode_context(tok, "a red circle", CC_CLIP_CONTEXT, ids, NULL, NULL, NULL);
    CHECK(n_windows == 1 && memcmp(windows, ids, sizeof ids) == 0);
    free(windows);
    /* bad arguments */
    CHECK(cc_tokenizer_encode_windows(tok, text, CC_CLIP_CONTEXT, 0, &windows, NULL, NULL) < 0);
    CHECK(cc_tokenizer_encode_windows(tok, text, CC_CLIP_CONTEXT, 76, &windows, NULL, NULL) < 0);
    CHECK(cc_tokenizer_encode_context(tok, text, 1, ids, NULL, NULL, NULL) < 0);
    cc_tokens_free(&all);
    cc_tokenizer_free(tok);
}

/* ---------------------------------------------------------------------------------------------- */
/* BPE paths, long input, threads, bad input                                                      */
/* ---------------------------------------------------------------------------------------------- */

TEST(tokenizer_bpe_heap_equals_simple) {
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    static const char alphabet[] = "aeiourstlnmcdph'.!-";
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + (int)cc_rng_below(&rng, trial < 300 ? 40 : 400);
        int32_t a[400], b[400];
        for (int i = 0; i < n; i++) {
            uint8_t byte = cc_rng_below(&rng, 8) ? (uint8_t)alphabet[cc_rng_below(&rng, sizeof alphabet - 1)] : (uint8_t)cc_rng_below(&rng, 256);
            a[i] = b[i] = cc_tokenizer_byte_id(tok, byte, i + 1 == n);
        }
        int na = cc_tokenizer_bpe(tok, a, n, CC_BPE_SIMPLE), nb = cc_tokenizer_bpe(tok, b, n, CC_BPE_HEAP);
        CHECK(na == nb && memcmp(a, b, (size_t)na * sizeof(int32_t)) == 0, "trial %d (n %d): %d vs %d symbols", trial, n, na, nb);
    }
    cc_tokenizer_free(tok);
}

TEST(tokenizer_handles_huge_pieces_and_bad_utf8) {
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    /* one 300 KB piece of punctuation, and one of letters: the heap BPE keeps this fast */
    size_t n = 300000;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++) text[i] = "!?.,;"[i % 5];
    text[n] = 0;
    double start = cc_now();
    cc_tokens tokens = {0};
    CHECK(cc_tokenizer_encode(tok, text, n, &tokens, NULL) == 0, "%s", cc_last_error());
    CHECK(tokens.count > 0 && tokens.count <= (int)n);
    char *decoded = cc_tokenizer_decode(tok, tokens.ids, tokens.count, NULL);
    REQUIRE(decoded);
    CHECK(strlen(decoded) == n + 1 && memcmp(decoded, text, n) == 0 && decoded[n] == ' ', "the piece round-trips");
    free(decoded);
    for (size_t i = 0; i < n; i++) text[i] = "photograph"[i % 10];
    tokens.count = 0;
    CHECK(cc_tokenizer_encode(tok, text, n, &tokens, NULL) == 0);
    CHECK(tokens.count > 0 && tokens.count < (int)n / 2, "%d tokens for %zu letters", tokens.count, n);
    CHECK(cc_now() - start < 5.0, "huge pieces took %.1f s", cc_now() - start);
    /* invalid UTF-8 is replaced and counted, never fatal */
    const char bad[] = "caf\xc3 \xff\xfe ok \xe2\x82 \xed\xa0\x80 end\xf0\x9f";
    cc_text_stats stats = {0};
    tokens.count = 0;
    CHECK(cc_tokenizer_encode(tok, bad, sizeof bad - 1, &tokens, &stats) == 0);
    CHECK(stats.invalid_utf8 == 8, "counted %lld invalid sequences", (long long)stats.invalid_utf8);
    size_t clean_len;
    char *clean = cc_clip_clean_text(bad, sizeof bad - 1, &clean_len, NULL);
    REQUIRE(clean);
    CHECK(strcmp(clean, "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd ok \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end\xef\xbf\xbd") == 0,
          "cleaned '%s'", clean);
    free(clean);
    /* an embedded NUL is just a character */
    tokens.count = 0;
    CHECK(cc_tokenizer_encode(tok, "a\0b", 3, &tokens, NULL) == 0 && tokens.count == 3);
    cc_tokens_free(&tokens);
    free(text);
    cc_tokenizer_free(tok);
}

typedef struct thread_job {
    cc_tokenizer *tok;
    golden_case *cases;
    int n_cases, offset, failures;
} thread_job;

static void *encode_thread(void *arg) {
    thread_job *job = arg;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < job->n_cases; k++) {
            int i = (k + job->offset) % job->n_cases;
            cc_tokens tokens = {0};
            if (cc_tokenizer_encode(job->tok, job->cases[i].text, job->cases[i].len, &tokens, NULL) != 0 ||
                tokens.count != job->cases[i].n_ids ||
                (tokens.count && memcmp(tokens.ids, job->cases[i].ids, (size_t)tokens.count * sizeof(int32_t)) != 0))
                job->failures++;
            cc_tokens_free(&tokens);
        }
    return NULL;
}

TEST(tokenizer_is_thread_safe) {
    cc_tokenizer *tok = load_openai();
    REQUIRE(tok);
    int n_cases;
    golden_case *cases = read_golden(&n_cases);
    REQUIRE(cases);
    int n_used = n_cases > 2000 ? 2000 : n_cases; /* enough for the ASan run */
    enum { N_THREADS = 4 };
    pthread_t threads[N_THREADS];
    thread_job jobs[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        jobs[t] = (thread_job){tok, cases, n_used, t * n_used / N_THREADS, 0};
        pthread_create(&threads[t], NULL, encode_thread, &jobs[t]);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(threads[t], NULL);
        CHECK(jobs[t].failures == 0, "thread %d: %d wrong encodings", t, jobs[t].failures);
    }
    free_golden(cases, n_cases);
    cc_tokenizer_free(tok);
}

TEST(tokenizer_rejects_bad_vocabulary_files) {
    CHECK(cc_tokenizer_load(test_path("missing.txt.gz")) == NULL && strstr(cc_last_error(), "missing.txt.gz"));
    /* a gzip stream cut in half */
    char *gz;
    size_t gz_size;
    REQUIRE(cc_read_file(openai_vocab_path(), &gz, &gz_size) == 0);
    REQUIRE(cc_write_file_atomic(test_path("cut.txt.gz"), gz, gz_size / 2) == 0);
    free(gz);
    CHECK(cc_tokenizer_load_openai(test_path("cut.txt.gz")) == NULL && strstr(cc_last_error(), "truncated"), "%s", cc_last_error());
    /* HF files: malformed JSON names the line; a merge line with three tokens names its line */
    const char *dir = test_path("bad");
    cc_mkdir_p(dir);
    char vocab[1024], merges[1024];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    const char broken_json[] = "{\n\"a\": 1,\n\"b\": ,\n}";
    REQUIRE(cc_write_file_atomic(vocab, broken_json, sizeof broken_json - 1) == 0);
    REQUIRE(cc_write_file_atomic(merges, "#version: 0.2\n", 14) == 0);
    CHECK(cc_tokenizer_load_dir(dir) == NULL && strstr(cc_last_error(), "line 3"), "%s", cc_last_error());
    const char small_json[] = "{\"a\": 0, \"b\": 1}";
    REQUIRE(cc_write_file_atomic(vocab, small_json, sizeof small_json - 1) == 0);
    CHECK(cc_tokenizer_load_dir(dir) == NULL && strstr(cc_last_error(), "byte token"), "%s", cc_last_error());
    const char bad_merges[] = "#version: 0.2\na b\nc d e\n";
    REQUIRE(cc_write_file_atomic(merges, bad_merges, sizeof bad_merges - 1) == 0);
    CHECK(cc_tokenizer_load_hf(vocab, merges) == NULL);
    CHECK(cc_tokenizer_load_dir(test_path("nothing-here")) == NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* BPE learning                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* Captions from a small grammar, plus some noise (punctuation, digits, non-ASCII, HTML). */
static char **grammar_captions(uint64_t seed, int n) {
    static const char *const sizes[] = {"small", "large", "tiny", "big"};
    static const char *const colours[] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
    static const char *const shapes[] = {"circle", "square", "triangle", "star", "hexagon", "cross"};
    static const char *const relations[] = {"above", "below", "to the left of", "to the right of"};
    static const char *const extras[] = {"", ".", "!", " 2x", " &amp; more", " caf\xc3\xa9", " \xe2\x98\x85", " (again)", "'s"};
    cc_rng rng;
    cc_rng_seed(&rng, seed);
    char **out = malloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "A %s %s %s %s a %s %s %s on a %s background%s", sizes[cc_rng_below(&rng, 4)],
                 colours[cc_rng_below(&rng, 8)], shapes[cc_rng_below(&rng, 6)], relations[cc_rng_below(&rng, 4)],
                 sizes[cc_rng_below(&rng, 4)], colours[cc_rng_below(&rng, 8)], shapes[cc_rng_below(&rng, 6)],
                 colours[cc_rng_below(&rng, 8)], extras[cc_rng_below(&rng, 9)]);
        out[i] = strdup(buf);
    }
    return out;
}

/* What decode(encode(text)) must give for any byte-level vocabulary: the pieces joined by spaces
 * (each piece's last token carries "</w>"), special tokens without one. */
static int append_piece(void *ctx, const char *s, size_t n) {
    char *out = ctx;
    strncat(out, s, n);
    if (!(n == 15 && memcmp(s, "<|startoftext|>", 15) == 0) && !(n == 13 && memcmp(s, "<|endoftext|>", 13) == 0)) strcat(out, " ");
    return 0;
}

TEST(bpe_learn_is_deterministic_and_round_trips) {
    int n = 600;
    char **captions = grammar_captions(test_seed(), n);
    const char *dir_a = test_path("vocab_a"), *dir_b = test_path("vocab_b");
    int merges_a = cc_bpe_learn((const char *const *)captions, n, 400, dir_a);
    int merges_b = cc_bpe_learn((const char *const *)captions, n, 400, dir_b);
    REQUIRE(merges_a > 50, "learned %d merges: %s", merges_a, cc_last_error());
    CHECK(merges_a == merges_b);
    int files_differ = test_system("cmp -s '%s/vocab.json' '%s/vocab.json' && cmp -s '%s/merges.txt' '%s/merges.txt'",
                                   dir_a, dir_b, dir_a, dir_b);
    CHECK(files_differ == 0, "two runs give different files");
    char path[1024];
    snprintf(path, sizeof path, "%s/merges.txt", dir_a);
    char *merges_text;
    REQUIRE(cc_read_file(path, &merges_text, NULL) == 0);
    CHECK(strncmp(merges_text, "#version: 0.2\n", 14) == 0, "merges.txt starts with the #version line");
    free(merges_text);
    cc_tokenizer *tok = cc_tokenizer_load_dir(dir_a);
    REQUIRE(tok, "%s", cc_last_error());
    CHECK(cc_tokenizer_vocab_size(tok) == 512 + merges_a + 2, "vocab %d", cc_tokenizer_vocab_size(tok));
    CHECK(cc_tokenizer_sot(tok) == 512 + merges_a && cc_tokenizer_eot(tok) == 513 + merges_a);
    int64_t n_bytes = 0, n_tokens = 0;
    for (int i = 0; i < n; i++) {
        cc_tokens tokens = {0};
        REQUIRE(cc_tokenizer_encode(tok, captions[i], strlen(captions[i]), &tokens, NULL) == 0);
        char *decoded = cc_tokenizer_decode(tok, tokens.ids, tokens.count, NULL);
        REQUIRE(decoded);
        size_t clean_len;
        char *clean = cc_clip_clean_text(captions[i], strlen(captions[i]), &clean_len, NULL);
        char expected[2048] = "";
        cc_for_each_piece(clean, clean_len, append_piece, expected);
        CHECK(strcmp(decoded, expected) == 0, "'%s' decodes to '%s'", captions[i], decoded);
        n_bytes += (int64_t)clean_len;
        n_tokens += tokens.count;
        free(clean);
        free(decoded);
        cc_tokens_free(&tokens);
    }
    /* the grammar's words become single tokens: far fewer tokens than bytes */
    CHECK(n_tokens * 3 < n_bytes, "%lld tokens for %lld bytes", (long long)n_tokens, (long long)n_bytes);
    /* new text (unseen words, emoji) still encodes and round-trips: it is byte-level */
    const char *unseen = "zebra \xf0\x9f\xa6\x93 qwerty";
    cc_tokens tokens = {0};
    REQUIRE(cc_tokenizer_encode(tok, unseen, strlen(unseen), &tokens, NULL) == 0);
    char *decoded = cc_tokenizer_decode(tok, tokens.ids, tokens.count, NULL);
    CHECK(decoded && strcmp(decoded, "zebra \xf0\x9f\xa6\x93 qwerty ") == 0, "'%s'", decoded);
    free(decoded);
    cc_tokens_free(&tokens);
    cc_tokenizer_free(tok);
    /* bad arguments */
    CHECK(cc_bpe_learn((const char *const *)captions, n, CC_CLIP_OPENAI_MERGES + 1, dir_a) < 0);
    for (int i = 0; i < n; i++) free(captions[i]);
    free(captions);
}

TEST_SLOW(bpe_learned_vocabulary_reads_like_hugging_face) {
    /* the learned files, read the way HF's slow CLIPTokenizer reads them, give our ids */
    int n = 400;
    char **captions = grammar_captions(test_seed() + 1, n);
    const char *dir = test_path("vocab");
    REQUIRE(cc_bpe_learn((const char *const *)captions, n, 250, dir) > 0, "%s", cc_last_error());
    FILE *fp = fopen(test_path("texts.txt"), "wb");
    for (int i = 0; i < n; i++) {
        write_escaped(fp, captions[i], strlen(captions[i]));
        fputc('\n', fp);
    }
    fclose(fp);
    REQUIRE(test_python("tokenizer_ref.py", "hf-encode", dir, test_path("texts.txt"), test_path("py.txt"), NULL) == 0);
    cc_tokenizer *tok = cc_tokenizer_load_dir(dir);
    REQUIRE(tok);
    line_reader reader = {0};
    REQUIRE(cc_read_file(test_path("py.txt"), &reader.data, &reader.size) == 0);
    char *line;
    size_t line_len;
    int mismatches = 0, checked = 0;
    for (int i = 0; i < n && next_line(&reader, &line, &line_len); i++, checked++) {
        cc_tokens tokens = {0};
        REQUIRE(cc_tokenizer_encode(tok, captions[i], strlen(captions[i]), &tokens, NULL) == 0);
        char ids_text[4096] = "";
        size_t w = 0;
        for (int k = 0; k < tokens.count; k++) w += (size_t)snprintf(ids_text + w, sizeof ids_text - w, k ? " %d" : "%d", tokens.ids[k]);
        if ((w != line_len || memcmp(ids_text, line, w) != 0) && mismatches++ < 3)
            fprintf(stderr, "    '%s': ours %s, python %.*s\n", captions[i], ids_text, (int)line_len, line);
        cc_tokens_free(&tokens);
    }
    CHECK(checked == n && mismatches == 0, "%d of %d differ", mismatches, checked);
    free(reader.data);
    cc_tokenizer_free(tok);
    for (int i = 0; i < n; i++) free(captions[i]);
    free(captions);
}
