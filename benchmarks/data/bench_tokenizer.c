/* bench_tokenizer.c — tokens/s of clipc's CLIP tokenizer on the lines of a text file (one thread).
 * usage: bench_tokenizer VOCAB FILE REPEATS [--cold]
 * Lines are unescaped like simple_tokenizer_ref.py's ("\\\\", "\\t", "\\n", "\\r"). Warm (default): one
 * untimed pass fills the word cache (the Python peer is warmed the same way), then REPEATS timed passes.
 * --cold: a single timed pass on a freshly loaded tokenizer (every word a cache miss the first time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "engine/util.h"

static size_t unescape(char *s) {
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

int main(int argc, char **argv) {
    int cold = argc == 5 && !strcmp(argv[4], "--cold");
    if (argc != 4 && !cold) {
        fprintf(stderr, "usage: %s VOCAB FILE REPEATS [--cold]\n", argv[0]);
        return 2;
    }
    cc_tokenizer *tok = cc_tokenizer_load(argv[1]);
    if (!tok) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    char *data;
    size_t size;
    if (cc_read_file(argv[2], &data, &size) != 0) {
        fprintf(stderr, "%s\n", cc_last_error());
        return 1;
    }
    int repeats = cold ? 1 : atoi(argv[3]);
    int n_lines = 0, cap = 1024;
    char **lines = malloc((size_t)cap * sizeof(char *));
    size_t *lens = malloc((size_t)cap * sizeof(size_t));
    for (char *p = data; p < data + size;) {
        char *eol = memchr(p, '\n', (size_t)(data + size - p));
        if (!eol) eol = data + size;
        *eol = 0;
        if (n_lines == cap) {
            cap *= 2;
            lines = realloc(lines, (size_t)cap * sizeof(char *));
            lens = realloc(lens, (size_t)cap * sizeof(size_t));
        }
        lens[n_lines] = unescape(p);
        lines[n_lines++] = p;
        p = eol + 1;
    }
    cc_tokens tokens = {0};
    for (int i = 0; i < n_lines && !cold; i++) {
        tokens.count = 0;
        cc_tokenizer_encode(tok, lines[i], lens[i], &tokens, NULL);
    }
    long long n_tokens = 0;
    double start = cc_now();
    for (int r = 0; r < repeats; r++)
        for (int i = 0; i < n_lines; i++) {
            tokens.count = 0;
            if (cc_tokenizer_encode(tok, lines[i], lens[i], &tokens, NULL) != 0) {
                fprintf(stderr, "%s\n", cc_last_error());
                return 1;
            }
            n_tokens += tokens.count;
        }
    double seconds = cc_now() - start;
    printf("%lld tokens in %.3f s: %.0f tokens/s\n", n_tokens, seconds, (double)n_tokens / seconds);
    cc_tokens_free(&tokens);
    cc_tokenizer_free(tok);
    free(lines);
    free(lens);
    free(data);
    return 0;
}
