/* factory.c — index descriptions in faiss's factory style ("Flat", "IVF1024,PQ64,RFlat",
 * "IVF256,PQ32x4fs", "HNSW32") -> the type's table of functions and its parameters (cc_index_spec), and the
 * canonical spelling stored in files. One entry per family in factory_entries: a new index type
 * adds its parser there and its cc_index_ops table in its own file; nothing else changes.
 * index.h lists the accepted descriptions. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "engine/util.h"
#include "index/internal.h"
#include "index/sq.h"

#define MAX_IVF_NLIST (1 << 20) /* largest nlist accepted */
#define MAX_PQ_M 256            /* sub-quantisers: 8-bit sums of M bytes must fit uint16 */
#define MIN_HNSW_M 2
#define MAX_HNSW_M 256          /* level-0 degree is 2*M */
#define MAX_TOKENS 4            /* comma-separated parts of a description */

/* A description split at its commas. */
typedef struct desc_tokens {
    const char *desc;
    const char *tok[MAX_TOKENS];
    size_t len[MAX_TOKENS];
    int n;
} desc_tokens;

static int token_is(const desc_tokens *t, int i, const char *text) {
    return i < t->n && t->len[i] == strlen(text) && strncmp(t->tok[i], text, t->len[i]) == 0;
}

/* Reads "<prefix><number>" that fills the whole token: 0 on success, -1 when the token does not
 * have that form, -2 when the number is outside lo..hi. */
static int parse_prefixed(const desc_tokens *t, int i, const char *prefix, int lo, int hi, int *out,
                          const char **rest) {
    if (i >= t->n) return -1;
    const char *tok = t->tok[i];
    size_t len = t->len[i], plen = strlen(prefix);
    if (len <= plen || strncmp(tok, prefix, plen) != 0 || !isdigit((unsigned char)tok[plen])) return -1;
    long v = 0;
    size_t pos = plen;
    while (pos < len && isdigit((unsigned char)tok[pos])) {
        v = v * 10 + (tok[pos] - '0');
        if (v > hi) return -2;
        pos++;
    }
    if (v < lo) return -2;
    *out = (int)v;
    if (rest) *rest = tok + pos;
    else if (pos != len) return -1;
    return 0;
}

/* "PQ<M>[x8]" or "PQ<M>x4fs" at token i: 0, -1 (not that form) or -2 (that form, wrong values; error set). */
static int parse_pq_token(const desc_tokens *t, int i, cc_index_spec *spec) {
    const char *rest;
    int rc = parse_prefixed(t, i, "PQ", 1, MAX_PQ_M, &spec->pq_m, &rest);
    if (rc == -2) {
        cc_set_error("index type '%s': PQ needs 1..%d sub-quantisers", t->desc, MAX_PQ_M);
        return -2;
    }
    if (rc != 0) return -1;
    spec->pq_nbits = 8;
    size_t left = t->len[i] - (size_t)(rest - t->tok[i]);
    if (left == 0) return 0;
    if (left == 4 && strncmp(rest, "x4fs", 4) == 0) { /* 4-bit fast-scan codes (fastscan.c) */
        if (spec->pq_m % 2 != 0) {
            cc_set_error("index type '%s': fast-scan PQ needs an even M, not %d", t->desc, spec->pq_m);
            return -2;
        }
        spec->pq_nbits = 4;
        return 0;
    }
    if (rest[0] != 'x' || left < 2) return -1;
    int nbits = 0;
    for (size_t c = 1; c < left; c++) {
        if (!isdigit((unsigned char)rest[c])) return -1;
        nbits = nbits * 10 + (rest[c] - '0');
        if (nbits > 64) break;
    }
    if (nbits != 8) {
        cc_set_error("index type '%s': PQ codes are 8-bit (PQ%dx8) or 4-bit fast-scan (PQ%dx4fs), not %d bits",
                     t->desc, spec->pq_m, spec->pq_m, nbits);
        return -2;
    }
    return 0;
}

/* ------------------------------------------------------------------ one parser per family
 * Each returns 1 (the description is of this family: spec and canonical name filled), 0 (not of
 * this family), -1 (malformed: the generic "unknown index type" message follows) or -2 (of this
 * family, with a wrong value: the parser set the error). */

static int parse_flat(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size) {
    if (t->n != 1 || !token_is(t, 0, "Flat")) return 0;
    spec->ops = &cc_flat_ops;
    snprintf(canon, size, "Flat");
    return 1;
}

/* Scalar-quantised storage: "[Flat,]SQ8|F16|BF16[,RFlat]". */
static int parse_flat_sq(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size) {
    static const cc_sq_kind kinds[] = {CC_SQ_8, CC_SQ_F16, CC_SQ_BF16};
    int i = token_is(t, 0, "Flat") ? 1 : 0;
    for (size_t c = 0; c < sizeof kinds / sizeof kinds[0]; c++) {
        if (!token_is(t, i, cc_sq_name(kinds[c]))) continue;
        spec->storage = kinds[c];
        int next = i + 1;
        if (token_is(t, next, "RFlat")) spec->refine = 1, next++;
        if (next != t->n) return -1;
        spec->ops = &cc_flat_sq_ops;
        snprintf(canon, size, "%s%s", cc_sq_name(kinds[c]), spec->refine ? ",RFlat" : "");
        return 1;
    }
    return 0;
}

static int parse_hnsw(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size) {
    int rc = parse_prefixed(t, 0, "HNSW", MIN_HNSW_M, MAX_HNSW_M, &spec->hnsw_m, NULL);
    if (rc == -1) return strncmp(t->tok[0], "HNSW", 4) == 0 ? -1 : 0;
    if (rc == -2) {
        cc_set_error("index type '%s': HNSW M must be %d..%d", t->desc, MIN_HNSW_M, MAX_HNSW_M);
        return -2;
    }
    if (t->n == 2 && !token_is(t, 1, "Flat")) {
        cc_set_error("index type '%s': HNSW stores raw vectors only (HNSW%d or HNSW%d,Flat)", t->desc, spec->hnsw_m,
                     spec->hnsw_m);
        return -2;
    }
    if (t->n > 2) return -1;
    spec->ops = &cc_hnsw_ops;
    snprintf(canon, size, "HNSW%d", spec->hnsw_m);
    return 1;
}

/* "PQ<M>[x8|x4fs][,RFlat]" from token i on; canonical text appended at canon + len. -1 / -2 as the
 * family parsers. */
static int parse_pq_tail(const desc_tokens *t, int i, cc_index_spec *spec, char *canon, size_t size, int len) {
    int rc = parse_pq_token(t, i, spec);
    if (rc != 0) return rc;
    i++;
    if (token_is(t, i, "RFlat")) {
        spec->refine = 1;
        i++;
    }
    if (i != t->n) return -1;
    int fastscan = spec->pq_nbits == 4;
    spec->ops = fastscan ? &cc_fastscan_ops : &cc_ivf_ops;
    if (fastscan && !spec->by_residual) spec->nlist = 0; /* exhaustive: no coarse quantiser */
    snprintf(canon + len, size - (size_t)len, "PQ%d%s%s", spec->pq_m, fastscan ? "x4fs" : "",
             spec->refine ? ",RFlat" : "");
    return 1;
}

static int parse_ivf(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size) {
    int rc = parse_prefixed(t, 0, "IVF", 1, MAX_IVF_NLIST, &spec->nlist, NULL);
    if (rc == -1) return strncmp(t->tok[0], "IVF", 3) == 0 ? -1 : 0;
    if (rc == -2) {
        cc_set_error("index type '%s': IVF needs 1..%d lists", t->desc, MAX_IVF_NLIST);
        return -2;
    }
    spec->by_residual = 1;
    int len = snprintf(canon, size, "IVF%d,", spec->nlist);
    if (t->n == 2 && token_is(t, 1, "Flat")) {
        spec->ops = &cc_ivf_ops;
        snprintf(canon + len, size - (size_t)len, "Flat");
        return 1;
    }
    return parse_pq_tail(t, 1, spec, canon, size, len);
}

/* PQ alone: one inverted list without a coarse quantiser. */
static int parse_pq(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size) {
    if (strncmp(t->tok[0], "PQ", 2) != 0) return 0;
    spec->nlist = 1;
    spec->by_residual = 0;
    return parse_pq_tail(t, 0, spec, canon, size, 0);
}

typedef struct factory_entry {
    const char *syntax; /* forms accepted, for the "unknown index type" message */
    int (*parse)(const desc_tokens *t, cc_index_spec *spec, char *canon, size_t size);
} factory_entry;

static const factory_entry factory_entries[] = {
    {"Flat", parse_flat},
    {"[Flat,]SQ8|F16|BF16[,RFlat]", parse_flat_sq},
    {"IVF<nlist>,Flat, IVF<nlist>,PQ<M>[x8|x4fs][,RFlat]", parse_ivf},
    {"PQ<M>[x8|x4fs][,RFlat]", parse_pq},
    {"HNSW<M>[,Flat]", parse_hnsw},
};
#define N_FACTORY_ENTRIES ((int)(sizeof factory_entries / sizeof factory_entries[0]))

static void unknown_type_error(const char *desc) {
    char forms[512];
    int len = 0;
    for (int i = 0; i < N_FACTORY_ENTRIES && (size_t)len < sizeof forms; i++)
        len += snprintf(forms + len, sizeof forms - (size_t)len, "%s%s", i ? ", " : "", factory_entries[i].syntax);
    cc_set_error("unknown index type '%s' (expected %s)", desc, forms);
}

static int split_desc(const char *desc, desc_tokens *t) {
    memset(t, 0, sizeof *t);
    t->desc = desc;
    for (const char *s = desc;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (t->n == MAX_TOKENS || len == 0) return -1;
        t->tok[t->n] = s;
        t->len[t->n++] = len;
        if (!comma) return 0;
        s = comma + 1;
    }
}

/* Description -> spec and canonical name; the error names the description. */
static int parse_desc(const char *desc, cc_index_spec *spec, char *canon, size_t size) {
    desc_tokens t;
    if (split_desc(desc, &t) == 0)
        for (int i = 0; i < N_FACTORY_ENTRIES; i++) {
            memset(spec, 0, sizeof *spec);
            int rc = factory_entries[i].parse(&t, spec, canon, size);
            if (rc == 1) return 0;
            if (rc == -2) return -1;
            if (rc == -1) break;
        }
    unknown_type_error(desc);
    return -1;
}

int cc_index_setup_type(cc_index *idx, const char *desc) {
    cc_index_spec spec;
    char canon[CC_INDEX_DESC_MAX];
    if (parse_desc(desc, &spec, canon, sizeof canon) != 0) return -1;
    idx->ops = spec.ops;
    snprintf(idx->desc, sizeof idx->desc, "%s", canon);
    idx->trained = spec.ops->train == NULL;
    return spec.ops->init(idx, &spec);
}
