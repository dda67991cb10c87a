/* filter.c — text search filters (filter.h): the parser of "time>=...,id=1|2" and the allow-list over
 * the index's live ids it becomes. The parser reads at most len bytes and never trusts the text:
 * every number is range-checked, every clause named in its error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/util.h"
#include "index/filter.h"
#include "index/internal.h"

#define MAX_ABS_TIME 253402300799LL /* 9999-12-31T23:59:59Z */
#define MAX_CLAUSE 4096             /* bytes in one clause */
#define MAX_ALLOW_BITS (1LL << 32)  /* allow-lists cover ids below 2^32 */

int cc_parse_time(const char *text, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end != text && *end == 0 && !errno && text[0] != '+' && text[0] != ' ') {
        if (v < -MAX_ABS_TIME || v > MAX_ABS_TIME) return -1;
        *out = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%d", &tm);
    if (!rest) return -1;
    if (*rest == 'T' || *rest == ' ') {
        rest = strptime(rest + 1, "%H:%M:%S", &tm);
        if (!rest) return -1;
    }
    if (*rest == 'Z') rest++;
    if (*rest) return -1;
    time_t t = timegm(&tm);
    if (t < -MAX_ABS_TIME || t > MAX_ABS_TIME) return -1;
    *out = (int64_t)t;
    return 0;
}

static int compare_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "3|5|8" -> e->ids (sorted, unique); a second id clause intersects with the first */
static int parse_ids(const char *list, cc_filter_expr *e) {
    int64_t *ids = cc_malloc(CC_FILTER_MAX_IDS * sizeof *ids, "filter ids");
    if (!ids) return -1;
    int64_t n = 0;
    const char *p = list;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || (*end && *end != '|') || errno || v < 0 || *p == '+' || *p == ' ' || *p == '-') {
            cc_set_error("filter: bad id list 'id=%s' (ids are integers >= 0 separated by '|')", list);
            free(ids);
            return -1;
        }
        if (n == CC_FILTER_MAX_IDS) {
            cc_set_error("filter: more than %d ids in one id= list", CC_FILTER_MAX_IDS);
            free(ids);
            return -1;
        }
        ids[n++] = v;
        if (!*end) break;
        p = end + 1;
    }
    qsort(ids, (size_t)n, sizeof *ids, compare_i64);
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++)
        if (!u || ids[u - 1] != ids[i]) ids[u++] = ids[i];
    if (e->has_ids) { /* id=1|2,id=2|3 keeps 2 */
        int64_t m = 0;
        for (int64_t i = 0; i < u; i++)
            if (bsearch(&ids[i], e->ids, (size_t)e->n_ids, sizeof *ids, compare_i64)) ids[m++] = ids[i];
        u = m;
        free(e->ids);
    }
    e->ids = ids;
    e->n_ids = u;
    e->has_ids = 1;
    return 0;
}

/* One tag: trimmed of blanks, 1..CC_TAG_MAX_BYTES bytes, no separators or control characters. */
static int check_tag(const char *t, size_t n, const char *context) {
    if (n == 0) {
        cc_set_error("%s: empty tag", context);
        return -1;
    }
    if (n > CC_TAG_MAX_BYTES) {
        cc_set_error("%s: tag '%.40s...' is longer than %d bytes", context, t, CC_TAG_MAX_BYTES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c == 0x7f || strchr(",|=<>!", c)) {
            cc_set_error("%s: tag '%.*s' holds '%c' (tags cannot hold , | = < > ! or control characters)", context,
                         (int)(n > 40 ? 40 : n), t, c >= 0x20 && c != 0x7f ? c : '?');
            return -1;
        }
    }
    if (!cc_utf8_valid(t, n)) {
        cc_set_error("%s: tag is not valid UTF-8", context);
        return -1;
    }
    return 0;
}

static void trim(const char **s, size_t *n) {
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

int cc_tags_contain(const char *tags, const char *name, size_t len) {
    for (const char *p = tags; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && !memcmp(p, name, len)) return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

int cc_tags_normalize(const char *text, char **out) {
    *out = NULL;
    size_t len = strlen(text);
    char *buf = cc_malloc(len + 1, "tags");
    if (!buf) return -1;
    size_t at = 0;
    int count = 0;
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        const char *t = p;
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        trim(&t, &n);
        if (n || comma || p != text) { /* "a,,b" and "a," are errors; "" (or blanks) is no tags */
            if (check_tag(t, n, "tags") != 0) {
                free(buf);
                return -1;
            }
            buf[at] = 0;
            if (!cc_tags_contain(buf, t, n)) {
                if (++count > CC_TAGS_MAX_PER_ITEM) {
                    cc_set_error("tags: more than %d tags on one item", CC_TAGS_MAX_PER_ITEM);
                    free(buf);
                    return -1;
                }
                if (at) buf[at++] = ',';
                memcpy(buf + at, t, n);
                at += n;
            }
        }
        if (!comma) break;
        p = comma + 1;
    }
    buf[at] = 0;
    if (!at) {
        free(buf);
        return 0;
    }
    *out = buf;
    return 0;
}

/* "cat|dog" -> one more tag group */
static int parse_tags(const char *list, const char *clause, cc_filter_expr *e) {
    if (e->n_tag_groups == CC_FILTER_MAX_TAG_CLAUSES) {
        cc_set_error("filter: more than %d tag clauses", CC_FILTER_MAX_TAG_CLAUSES);
        return -1;
    }
    cc_filter_tags *groups = realloc(e->tag_groups, sizeof *groups * (size_t)(e->n_tag_groups + 1));
    if (!groups) {
        cc_set_error("out of memory");
        return -1;
    }
    e->tag_groups = groups;
    cc_filter_tags *g = &groups[e->n_tag_groups++];
    g->n = 0;
    g->names = cc_calloc(CC_TAGS_MAX_PER_ITEM, sizeof *g->names, "filter tags");
    if (!g->names) return -1;
    for (const char *p = list;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (check_tag(p, n, "filter") != 0) {
            cc_prefix_error("'%s'", clause);
            return -1;
        }
        if (g->n == CC_TAGS_MAX_PER_ITEM) {
            cc_set_error("filter: more than %d tags in '%.60s'", CC_TAGS_MAX_PER_ITEM, clause);
            return -1;
        }
        if (!(g->names[g->n] = cc_malloc(n + 1, "filter tag"))) return -1;
        memcpy(g->names[g->n], p, n);
        g->names[g->n++][n] = 0;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

/* "time>=T" and friends: narrows [time_lo, time_hi] */
static int parse_time_clause(const char *op_and_value, const char *clause, cc_filter_expr *e) {
    static const char *const ops[] = {">=", "<=", ">", "<", "="}; /* two-character operators first */
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(ops[i]);
        if (strncmp(op_and_value, ops[i], n)) continue;
        int64_t t;
        if (cc_parse_time(op_and_value + n, &t) != 0) {
            cc_set_error("filter: bad time in '%s' (unix seconds or YYYY-MM-DD[THH:MM:SS][Z], years up to 9999)", clause);
            return -1;
        }
        int64_t lo = t, hi = t;
        if (i == 0) hi = INT64_MAX;
        else if (i == 1) lo = INT64_MIN;
        else if (i == 2) lo = t + 1, hi = INT64_MAX; /* t is within ±MAX_ABS_TIME: no overflow */
        else if (i == 3) lo = INT64_MIN, hi = t - 1;
        if (!e->has_time) e->time_lo = INT64_MIN, e->time_hi = INT64_MAX;
        if (lo > e->time_lo) e->time_lo = lo;
        if (hi < e->time_hi) e->time_hi = hi;
        e->has_time = 1;
        return 0;
    }
    cc_set_error("filter: '%s' needs one of >=, >, <=, <, = after 'time'", clause);
    return -1;
}

static int parse_clause(const char *clause, cc_filter_expr *e) {
    if (!strncmp(clause, "time", 4)) return parse_time_clause(clause + 4, clause, e);
    if (!strncmp(clause, "id=", 3)) return parse_ids(clause + 3, e);
    if (!strncmp(clause, "tag=", 4)) return parse_tags(clause + 4, clause, e);
    cc_set_error("filter: unknown clause '%s' (expected time>=T, time<T, ..., id=A|B or tag=A|B)", clause);
    return -1;
}

int cc_filter_parse(const char *text, size_t len, cc_filter_expr *out) {
    memset(out, 0, sizeof *out);
    if (len > CC_FILTER_MAX_TEXT) {
        cc_set_error("filter: longer than %d bytes", CC_FILTER_MAX_TEXT);
        return -1;
    }
    if (memchr(text, 0, len)) {
        cc_set_error("filter: contains a NUL byte");
        return -1;
    }
    char clause[MAX_CLAUSE + 1];
    size_t at = 0;
    int n_clauses = 0;
    while (at <= len) {
        const char *start = text + at;
        const char *comma = memchr(start, ',', len - at);
        size_t n = comma ? (size_t)(comma - start) : len - at;
        if (n == 0 || n > MAX_CLAUSE) {
            cc_set_error(n ? "filter: a clause is longer than %d bytes" : "filter: empty clause (two commas, or a comma at an end)",
                         MAX_CLAUSE);
            cc_filter_expr_free(out);
            return -1;
        }
        memcpy(clause, start, n);
        clause[n] = 0;
        if (parse_clause(clause, out) != 0) {
            cc_filter_expr_free(out);
            return -1;
        }
        n_clauses++;
        at += n + 1;
        if (!comma) break;
    }
    if (!n_clauses) {
        cc_set_error("filter: empty");
        return -1;
    }
    return 0;
}

void cc_filter_expr_free(cc_filter_expr *e) {
    free(e->ids);
    for (int i = 0; i < e->n_tag_groups; i++) {
        for (int j = 0; e->tag_groups[i].names && j < e->tag_groups[i].n; j++) free(e->tag_groups[i].names[j]);
        free(e->tag_groups[i].names);
    }
    free(e->tag_groups);
    memset(e, 0, sizeof *e);
}

static int slot_matches(const cc_index *idx, const cc_filter_expr *e, int64_t slot, int64_t label) {
    if (e->has_time) {
        int64_t t = idx->item_time.size ? ((const int64_t *)idx->item_time.ptr)[slot] : CC_INDEX_NO_TIMESTAMP;
        if (t == CC_INDEX_NO_TIMESTAMP || t < e->time_lo || t > e->time_hi) return 0;
    }
    if (e->has_ids && !bsearch(&label, e->ids, (size_t)e->n_ids, sizeof label, compare_i64)) return 0;
    if (e->n_tag_groups) {
        const uint64_t *te = idx->item_tags.size ? (const uint64_t *)idx->item_tags.ptr : NULL;
        if (!te || te[2 * slot] == UINT64_MAX) return 0;
        const char *tags = (const char *)idx->tag_pool.ptr + te[2 * slot];
        for (int g = 0; g < e->n_tag_groups; g++) {
            int any = 0;
            for (int j = 0; j < e->tag_groups[g].n && !any; j++)
                any = cc_tags_contain(tags, e->tag_groups[g].names[j], strlen(e->tag_groups[g].names[j]));
            if (!any) return 0;
        }
    }
    return 1;
}

int cc_filter_build(const cc_index *idx, const cc_filter_expr *e, cc_id_filter *out, int64_t *n_allowed) {
    out->words = NULL;
    out->n_bits = 0;
    *n_allowed = 0;
    int64_t max_label = -1;
    for (int64_t s = 0; s < idx->n_slots; s++)
        if (!cc_slot_removed(idx, s)) {
            int64_t label = cc_slot_label(idx, s);
            if (label > max_label) max_label = label;
        }
    if (max_label >= MAX_ALLOW_BITS) {
        cc_set_error("filter: the index holds id %lld; filters cover ids below 2^32", (long long)max_label);
        return -1;
    }
    int64_t n_bits = max_label + 1;
    uint64_t *words = cc_calloc(CC_BITMAP_WORDS(n_bits) + 1, sizeof *words, "filter allow-list");
    if (!words) return -1;
    int64_t allowed = 0;
    for (int64_t s = 0; s < idx->n_slots; s++) {
        if (cc_slot_removed(idx, s)) continue;
        int64_t label = cc_slot_label(idx, s);
        if (label < 0 || !slot_matches(idx, e, s, label)) continue;
        words[label >> 6] |= 1ull << (label & 63);
        allowed++;
    }
    out->words = words;
    out->n_bits = n_bits;
    *n_allowed = allowed;
    return 0;
}

void cc_filter_free_allow(cc_id_filter *allow) {
    free((void *)allow->words);
    allow->words = NULL;
    allow->n_bits = 0;
}
