/* json_reader.c — the JSON pull parser of json_reader.h (RFC 8259, strict: no comments, no trailing
 * commas, no NaN). */
#include "data/json_reader.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer_internal.h"
#include "engine/util.h"

void json_init(json_reader *r, const char *text, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    r->text = r->at = text;
    r->end = text + len;
    r->name = name;
}

void json_free(json_reader *r) {
    free(r->scratch);
    r->scratch = NULL;
}

int json_error(json_reader *r, const char *what) {
    if (r->failed) return -1;
    r->failed = 1;
    int line = 1;
    const char *line_start = r->text;
    for (const char *p = r->text; p < r->at && p < r->end; p++)
        if (*p == '\n') {
            line++;
            line_start = p + 1;
        }
    const char *p = r->at;
    while (p < r->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    cc_set_error("%s: malformed JSON at line %d, column %d (byte %zu): %s%s", r->name, line, (int)(r->at - line_start) + 1,
                 (size_t)(r->at - r->text), p >= r->end && !strstr(what, "end of file") ? "unexpected end of file, " : "", what);
    return -1;
}

static void skip_space(json_reader *r) {
    while (r->at < r->end && (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' || *r->at == '\r')) r->at++;
}

json_type json_peek(json_reader *r) {
    skip_space(r);
    if (r->failed || r->at >= r->end) return JSON_BAD;
    switch (*r->at) {
    case '{': return JSON_OBJECT;
    case '[': return JSON_ARRAY;
    case '"': return JSON_STRING;
    case 't':
    case 'f': return JSON_BOOL;
    case 'n': return JSON_NULL;
    default: return (*r->at == '-' || (*r->at >= '0' && *r->at <= '9')) ? JSON_NUMBER : JSON_BAD;
    }
}

static int expect(json_reader *r, char c, const char *what) {
    skip_space(r);
    if (r->at >= r->end || *r->at != c) return json_error(r, r->at >= r->end ? "unexpected end of file" : what);
    r->at++;
    return 0;
}

int json_object_begin(json_reader *r) { return expect(r, '{', "expected an object"); }
int json_array_begin(json_reader *r) { return expect(r, '[', "expected an array"); }

/* After '{' / '[' or a member: '}' / ']' ends, ',' continues (not right after the opening). */
static int next_member(json_reader *r, char close) {
    skip_space(r);
    if (r->failed) return -1;
    if (r->at >= r->end) return json_error(r, "unexpected end of file");
    /* right after the opening bracket when the previous significant character is that bracket (a
     * finished value ends with '"', '}', ']', a digit or a letter, never with '{' or '[') */
    const char *p = r->at - 1;
    while (p > r->text && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p--;
    int first = *p == (close == '}' ? '{' : '[');
    if (*r->at == close) {
        r->at++;
        return 0;
    }
    if (!first) {
        if (*r->at != ',') return json_error(r, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        r->at++;
        skip_space(r);
        if (r->at < r->end && *r->at == close) return json_error(r, "trailing comma");
    }
    return 1;
}

int json_object_next(json_reader *r, const char **key) {
    int rc = next_member(r, '}');
    if (rc != 1) return rc;
    if (json_peek(r) != JSON_STRING) return json_error(r, "expected a string key");
    if (json_string(r, key, NULL) != 0) return -1;
    if (expect(r, ':', "expected ':' after the key") != 0) return -1;
    return 1;
}

int json_array_next(json_reader *r) { return next_member(r, ']'); }

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

int json_string(json_reader *r, const char **out, size_t *len) {
    if (expect(r, '"', "expected a string") != 0) return -1;
    const char *start = r->at;
    /* find the closing quote first: the decoded text is never longer than the raw one, except that a
     * raw invalid byte becomes a 3-byte U+FFFD */
    const char *p = start;
    while (p < r->end && *p != '"') p += *p == '\\' && p + 1 < r->end ? 2 : 1;
    if (p >= r->end) {
        r->at = start - 1;
        return json_error(r, "unterminated string");
    }
    size_t raw_len = (size_t)(p - start), need = 3 * raw_len + 1;
    if (need > r->scratch_cap) {
        char *grown = cc_realloc(r->scratch, need, "JSON string");
        if (!grown) return -1;
        r->scratch = grown;
        r->scratch_cap = need;
    }
    char *w = r->scratch;
    const char *q = start;
    while (q < p) {
        unsigned char c = (unsigned char)*q;
        if (c == '\\') {
            char e = q[1];
            q += 2;
            switch (e) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '/': *w++ = '/'; break;
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            case 'u': {
                uint32_t cp, low;
                if (p - q < 4 || hex4(q, &cp) != 0) {
                    r->at = q - 2;
                    return json_error(r, "bad \\u escape");
                }
                q += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && p - q >= 6 && q[0] == '\\' && q[1] == 'u' && hex4(q + 2, &low) == 0 &&
                    low >= 0xdc00 && low <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    q += 6;
                } else if (cp >= 0xd800 && cp <= 0xdfff) {
                    cp = 0xfffd; /* a lone surrogate */
                    r->invalid_utf8++;
                }
                w += cc_utf8_encode(cp, w);
                break;
            }
            default:
                r->at = q - 2;
                return json_error(r, "bad escape in string");
            }
        } else if (c < 0x20) {
            r->at = q;
            return json_error(r, "control character in string");
        } else if (c < 0x80) {
            *w++ = (char)c;
            q++;
        } else {
            /* a run of non-ASCII bytes: copied when valid UTF-8, repaired otherwise */
            const char *run = q;
            while (q < p && (unsigned char)*q >= 0x80) q++;
            w += cc_utf8_repair(run, (size_t)(q - run), w, &r->invalid_utf8);
        }
    }
    *w = 0;
    r->at = p + 1;
    *out = r->scratch;
    if (len) *len = (size_t)(w - r->scratch);
    return 0;
}

int json_number(json_reader *r, double *out) {
    if (json_peek(r) != JSON_NUMBER) return json_error(r, "expected a number");
    const char *p = r->at;
    /* the JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (*p == '-') p++;
    if (p < r->end && *p == '0') p++;
    else if (p < r->end && *p >= '1' && *p <= '9')
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    else return json_error(r, "bad number");
    if (p < r->end && *p == '.') {
        p++;
        if (p >= r->end || *p < '0' || *p > '9') return json_error(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < r->end && (*p == '+' || *p == '-')) p++;
        if (p >= r->end || *p < '0' || *p > '9') return json_error(r, "bad number");
        while (p < r->end && *p >= '0' && *p <= '9') p++;
    }
    char buf[64];
    size_t n = (size_t)(p - r->at);
    if (n >= sizeof buf) return json_error(r, "number too long");
    memcpy(buf, r->at, n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    r->at = p;
    return 0;
}

int json_int64(json_reader *r, int64_t *out) {
    double v;
    const char *start = (skip_space(r), r->at);
    if (json_number(r, &v) != 0) return -1;
    if (v != floor(v) || fabs(v) > 9007199254740992.0) {
        r->at = start;
        return json_error(r, "expected an integer");
    }
    *out = (int64_t)v;
    return 0;
}

static int literal(json_reader *r, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->at) < n || memcmp(r->at, word, n) != 0) return json_error(r, "bad literal");
    r->at += n;
    return 0;
}

int json_skip(json_reader *r) {
    int depth = 0;
    char stack[JSON_MAX_DEPTH];
    for (;;) {
        json_type type = json_peek(r);
        switch (type) {
        case JSON_STRING: {
            const char *s;
            if (json_string(r, &s, NULL) != 0) return -1;
            break;
        }
        case JSON_NUMBER: {
            double v;
            if (json_number(r, &v) != 0) return -1;
            break;
        }
        case JSON_BOOL:
            if (literal(r, *r->at == 't' ? "true" : "false") != 0) return -1;
            break;
        case JSON_NULL:
            if (literal(r, "null") != 0) return -1;
            break;
        case JSON_ARRAY:
        case JSON_OBJECT:
            if (depth == JSON_MAX_DEPTH) return json_error(r, "nesting too deep");
            stack[depth++] = type == JSON_ARRAY ? ']' : '}';
            r->at++;
            break;
        default: return json_error(r, r->at >= r->end ? "unexpected end of file" : "expected a value");
        }
        /* close finished containers, then position at the next value */
        for (;;) {
            if (depth == 0) return 0;
            int rc = next_member(r, stack[depth - 1]);
            if (rc < 0) return -1;
            if (rc == 0) {
                depth--;
                continue;
            }
            if (stack[depth - 1] == '}') {
                const char *key;
                if (json_peek(r) != JSON_STRING) return json_error(r, "expected a string key");
                if (json_string(r, &key, NULL) != 0 || expect(r, ':', "expected ':' after the key") != 0) return -1;
            }
            break;
        }
    }
}

int json_end(json_reader *r) {
    skip_space(r);
    if (r->failed) return -1;
    if (r->at != r->end) return json_error(r, "unexpected data after the JSON value");
    return 0;
}
