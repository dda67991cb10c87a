/* filter.h — search filters written as text, as `--filter` and the server's `filter=` take them:
 *
 *   time>=2024-01-01,time<2024-07-01T12:00:00Z,id=3|5|8,tag=cat|dog
 *
 * Clauses are joined by ',' and must all hold. `time` compares the item's timestamp (from `--meta`;
 * unix seconds or an ISO 8601 UTC date) with >=, >, <=, < or =; items without a timestamp never
 * match a time clause. `id=A|B|...` keeps the listed ids. `tag=A|B|...` keeps items carrying at
 * least one of the tags (exact, case-sensitive); two tag clauses must both hold. The expression becomes an allow-list over
 * the index's ids (cc_id_filter), which Flat, IVF and HNSW apply during the scan or graph traversal.
 */
#ifndef CLIPC_INDEX_FILTER_H
#define CLIPC_INDEX_FILTER_H

#include <stdint.h>

#include "index/index.h"

#define CC_FILTER_MAX_TEXT 65536 /* longest filter expression accepted (bytes) */
#define CC_FILTER_MAX_IDS 4096   /* ids in one `id=` list */
#define CC_TAG_MAX_BYTES 128     /* bytes in one tag */
#define CC_TAGS_MAX_PER_ITEM 64  /* tags on one item (and names in one `tag=` clause) */
#define CC_FILTER_MAX_TAG_CLAUSES 16

typedef struct cc_filter_tags {
    char **names; /* any of these */
    int n;
} cc_filter_tags;

typedef struct cc_filter_expr {
    int has_time;
    int64_t time_lo, time_hi; /* inclusive bounds when has_time */
    int64_t *ids;             /* sorted, no duplicates; NULL when there is no id clause */
    int64_t n_ids;
    int has_ids;
    cc_filter_tags *tag_groups; /* every group must match */
    int n_tag_groups;
} cc_filter_expr;

/* An item's tag list in its stored form: tags separated by ',' (blanks around each dropped, repeats
 * dropped, order kept), each 1..CC_TAG_MAX_BYTES bytes of UTF-8 without ',', '|', '=', '<', '>', '!'
 * or control characters. *out is malloc'd, or NULL when the list is empty. 0 or -1 (error names the
 * bad tag). */
int cc_tags_normalize(const char *text, char **out);
/* 1 when the stored list `tags` ("cat,dog") holds the tag name[0..len). */
int cc_tags_contain(const char *tags, const char *name, size_t len);

/* Unix seconds ("1714560000") or an ISO 8601 UTC date ("2024-05-01", "2024-05-01T12:30:00Z"), within
 * years 0..9999 (so ages never overflow). 0 or -1. */
int cc_parse_time(const char *text, int64_t *out);

/* Parses an expression (len bytes, need not be NUL-terminated); errors name the clause. */
int cc_filter_parse(const char *text, size_t len, cc_filter_expr *out);
void cc_filter_expr_free(cc_filter_expr *e);

/* The allow-list of the index's live ids that satisfy e. out->words is malloc'd (free it with
 * cc_filter_free_allow); *n_allowed receives the number of ids allowed. */
int cc_filter_build(const cc_index *index, const cc_filter_expr *e, cc_id_filter *out, int64_t *n_allowed);
void cc_filter_free_allow(cc_id_filter *allow);

#endif
