/* filter.h — search filters written as text, as `--filter` and the server's `filter=` take them:
 *
 *   time>=2024-01-01,time<2024-07-01T12:00:00Z,id=3|5|8
 *
 * Clauses are joined by ',' and must all hold. `time` compares the item's timestamp (from `--meta`;
 * unix seconds or an ISO 8601 UTC date) with >=, >, <=, < or =; items without a timestamp never
 * match a time clause. `id=A|B|...` keeps the listed ids. The expression becomes an allow-list over
 * the index's ids (cc_id_filter), which Flat, IVF and HNSW apply during the scan or graph traversal.
 */
#ifndef CLIPC_INDEX_FILTER_H
#define CLIPC_INDEX_FILTER_H

#include <stdint.h>

#include "index/index.h"

#define CC_FILTER_MAX_TEXT 65536 /* longest filter expression accepted (bytes) */
#define CC_FILTER_MAX_IDS 4096   /* ids in one `id=` list */

typedef struct cc_filter_expr {
    int has_time;
    int64_t time_lo, time_hi; /* inclusive bounds when has_time */
    int64_t *ids;             /* sorted, no duplicates; NULL when there is no id clause */
    int64_t n_ids;
    int has_ids;
} cc_filter_expr;

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
