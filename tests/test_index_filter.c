/* test_index_filter.c — search filters as text (index/filter.h): the parser's accepted forms and its
 * errors, the allow-list against the items' timestamps and ids, and filtered search: Flat exactly
 * equals brute force over the filtered set; HNSW and IVF keep recall@10 >= 0.95 at selectivities of
 * 1%, 10% and 50% of 10000 items (the filter is applied during the traversal and scan, not after). For
 * HNSW the 1% and 10% cases (<= 4096 ids) take index.c's exact scan of the allowed ids and 50% the
 * graph; IVF-Flat keeps no float rows outside its lists, so all three probe lists (IVF-PQ with re-ranking: 50%). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/filter.h"
#include "tests/test.h"
#include "tests/test_index_helpers.h"

static int parses(const char *text, cc_filter_expr *e) { return cc_filter_parse(text, strlen(text), e) == 0; }

TEST(filter_parse_forms) {
    cc_filter_expr e;
    REQUIRE(parses("time>=2024-01-01,time<2024-07-01T12:00:00Z", &e), "%s", cc_last_error());
    CHECK(e.has_time && e.time_lo == 1704067200LL && e.time_hi == 1719835200LL - 1 && !e.has_ids);
    cc_filter_expr_free(&e);
    REQUIRE(parses("time>100,time<=200", &e), "%s", cc_last_error());
    CHECK(e.time_lo == 101 && e.time_hi == 200);
    cc_filter_expr_free(&e);
    REQUIRE(parses("time=-5", &e), "%s", cc_last_error());
    CHECK(e.time_lo == -5 && e.time_hi == -5);
    cc_filter_expr_free(&e);
    REQUIRE(parses("id=8|3|5|3,id=5|8|13", &e), "%s", cc_last_error()); /* sorted, unique, intersected */
    CHECK(e.has_ids && e.n_ids == 2 && e.ids[0] == 5 && e.ids[1] == 8, "%lld ids", (long long)e.n_ids);
    cc_filter_expr_free(&e);
    const char exact[] = "id=7,time>=1xxxx"; /* only the first 4 bytes are the expression */
    REQUIRE(cc_filter_parse(exact, 4, &e) == 0, "%s", cc_last_error());
    CHECK(e.n_ids == 1 && e.ids[0] == 7 && !e.has_time);
    cc_filter_expr_free(&e);
}

TEST(filter_parse_errors_name_the_clause) {
    const char *bad[][2] = {{"", "empty"},
                            {"time>=2024-01-01,", "empty clause"},
                            {"tag=", "tag="},
                            {"tag=a||b", "tag=a||b"},
                            {"tag=a<b", "tag=a<b"},
                            {"colour=red", "colour=red"},
                            {"time~5", "time~5"},
                            {"time>=2024-13-01", "time>=2024-13-01"},
                            {"time<99999999999999", "time<99999999999999"},
                            {"time>=0x10", "time>=0x10"},
                            {"id=1|-2", "id=1|-2"},
                            {"id=1||2", "id=1||2"},
                            {"id=", "id="},
                            {"id=99999999999999999999", "id="}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cc_filter_expr e;
        CHECK(!parses(bad[i][0], &e), "accepted '%s'", bad[i][0]);
        CHECK(strstr(cc_last_error(), "filter") && strstr(cc_last_error(), bad[i][1]), "'%s': error '%s'", bad[i][0],
              cc_last_error());
    }
    char *big = malloc(CC_FILTER_MAX_TEXT + 2);
    memset(big, '1', CC_FILTER_MAX_TEXT + 1);
    big[CC_FILTER_MAX_TEXT + 1] = 0;
    memcpy(big, "id=", 3);
    cc_filter_expr e;
    CHECK(!parses(big, &e), "accepted a %d-byte filter", CC_FILTER_MAX_TEXT + 1);
    free(big);
    const char nul[] = "id=1\0,id=2";
    CHECK(cc_filter_parse(nul, sizeof nul - 1, &e) != 0 && strstr(cc_last_error(), "NUL"), "%s", cc_last_error());
}

/* n items, timestamps 0..n-1 days from t0 shuffled, every 7th without timestamp; returns the data */
typedef struct filtered_set {
    int64_t n, nq;
    int d;
    float *x, *q;
    int64_t *stamps;
} filtered_set;

static const int64_t T0 = 1700000000LL;

static void make_set(cc_rng *rng, filtered_set *s, int64_t n, int d) {
    s->n = n;
    s->d = d;
    s->nq = 40;
    s->x = tix_clustered(rng, n, d, 40, 1);
    s->q = tix_clustered(rng, s->nq, d, 40, 1);
    s->stamps = malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) s->stamps[i] = T0 + 86400LL * (int64_t)cc_rng_below(rng, 1000);
    for (int64_t i = 0; i < n; i += 7) s->stamps[i] = INT64_MIN; /* no timestamp */
}

static void free_set(filtered_set *s) { free(s->x), free(s->q), free(s->stamps); }

/* recall@k of idx under "time<T" keeping about keep of the items, against brute force over the same set;
 * exact: the returned ids and scores must equal brute force */
static double filtered_recall(cc_index *idx, const filtered_set *s, double keep, int ef, int exact) {
    int k = 10;
    char text[64];
    snprintf(text, sizeof text, "time<%lld", (long long)(T0 + (int64_t)(keep * 1000) * 86400LL));
    cc_filter_expr e;
    cc_id_filter allow;
    int64_t n_allowed;
    if (cc_filter_parse(text, strlen(text), &e) != 0 || cc_filter_build(idx, &e, &allow, &n_allowed) != 0) {
        CHECK(0, "%s: %s", text, cc_last_error());
        return 0;
    }
    unsigned char *ok = calloc((size_t)s->n, 1);
    int64_t want = 0;
    for (int64_t i = 0; i < s->n; i++)
        if (s->stamps[i] != INT64_MIN && s->stamps[i] < T0 + (int64_t)(keep * 1000) * 86400LL) ok[i] = 1, want++;
    CHECK(n_allowed == want, "%s: %lld allowed, %lld expected", text, (long long)n_allowed, (long long)want);
    int64_t *got = malloc(sizeof(int64_t) * (size_t)(s->nq * k)), *truth = malloc(sizeof(int64_t) * (size_t)(s->nq * k));
    float *scores = malloc(sizeof(float) * (size_t)(s->nq * k));
    double *truth_scores = malloc(sizeof(double) * (size_t)(s->nq * k));
    cc_search_params p = {.ef_search = ef, .nprobe = 16, .filter = &allow};
    CHECK(cc_index_search_ex(idx, s->nq, s->q, k, &p, got, scores) == 0, "%s", cc_last_error());
    for (int64_t i = 0; i < s->nq * k; i++) CHECK(got[i] == -1 || ok[got[i]], "%s: id %lld returned", text, (long long)got[i]);
    tix_brute_force(s->x, s->n, s->d, NULL, ok, s->q, s->nq, k, CC_METRIC_IP, truth, truth_scores);
    if (exact)
        for (int64_t i = 0; i < s->nq * k; i++)
            CHECK(got[i] == truth[i] && (got[i] < 0 || fabs(scores[i] - truth_scores[i]) <= 1e-5),
                  "%s: result %lld id %lld (%g), brute force %lld (%g)", text, (long long)i, (long long)got[i], scores[i],
                  (long long)truth[i], truth_scores[i]);
    double r = tix_recall(got, truth, s->nq, k);
    free(ok), free(got), free(truth), free(scores), free(truth_scores);
    cc_filter_free_allow(&allow);
    cc_filter_expr_free(&e);
    return r;
}

TEST(filter_flat_equals_brute_force_over_filtered_set) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    filtered_set s;
    make_set(&rng, &s, 3000, 16);
    cc_index *idx = cc_index_create("Flat", s.d, CC_METRIC_IP);
    REQUIRE(idx && cc_index_add_items(idx, s.n, s.x, NULL, NULL, s.stamps) == 0, "%s", cc_last_error());
    const double keep[] = {0.01, 0.1, 0.5};
    for (int i = 0; i < 3; i++) filtered_recall(idx, &s, keep[i], 0, 1);
    cc_index_free(idx);
    free_set(&s);
}

TEST(filter_hnsw_and_ivf_keep_recall_at_every_selectivity) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    filtered_set s;
    make_set(&rng, &s, 10000, 16);
    const char *types[] = {"HNSW16", "IVF64,Flat", "IVF64,PQ8,RFlat"};
    const double keep[] = {0.01, 0.1, 0.5};
    for (int t = 0; t < 3; t++) {
        cc_index *idx = cc_index_create(types[t], s.d, CC_METRIC_IP);
        REQUIRE(idx, "%s", cc_last_error());
        REQUIRE(cc_index_train(idx, s.n, s.x) == 0 && cc_index_add_items(idx, s.n, s.x, NULL, NULL, s.stamps) == 0, "%s",
                cc_last_error());
        for (int i = 0; i < 3; i++) {
            double r = filtered_recall(idx, &s, keep[i], 200, 0);
            CHECK(r >= 0.95, "%s keeping %.0f%%: recall@10 %.4f", types[t], 100 * keep[i], r);
        }
        cc_index_free(idx);
    }
    free_set(&s);
}

TEST(filter_ids_time_and_removed_items) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    filtered_set s;
    make_set(&rng, &s, 200, 8);
    int64_t *ids = malloc((size_t)s.n * sizeof(int64_t));
    for (int64_t i = 0; i < s.n; i++) ids[i] = 1000 + 3 * i; /* ids of the caller's choosing */
    cc_index *idx = cc_index_create("HNSW16", s.d, CC_METRIC_IP);
    REQUIRE(idx && cc_index_add_items(idx, s.n, s.x, ids, NULL, s.stamps) == 0, "%s", cc_last_error());
    int64_t gone = 1000 + 3 * 5;
    REQUIRE(cc_index_remove(idx, 1, &gone) == 1);
    char text[128];
    snprintf(text, sizeof text, "id=%lld|%lld|%lld|%lld|7", (long long)ids[1], (long long)ids[5], (long long)ids[7],
             (long long)ids[9]); /* ids[7] has no timestamp (7 % 7 == 0); 7 is not an id */
    cc_filter_expr e;
    REQUIRE(cc_filter_parse(text, strlen(text), &e) == 0, "%s", cc_last_error());
    cc_id_filter allow;
    int64_t n_allowed;
    REQUIRE(cc_filter_build(idx, &e, &allow, &n_allowed) == 0, "%s", cc_last_error());
    CHECK(n_allowed == 3, "%lld allowed (ids 1, 7, 9 live; 5 removed)", (long long)n_allowed);
    cc_filter_free_allow(&allow);
    cc_filter_expr_free(&e);
    strcat(text, ",time>=1");
    REQUIRE(cc_filter_parse(text, strlen(text), &e) == 0, "%s", cc_last_error());
    REQUIRE(cc_filter_build(idx, &e, &allow, &n_allowed) == 0, "%s", cc_last_error());
    CHECK(n_allowed == 2, "%lld allowed (id 7 has no timestamp)", (long long)n_allowed);
    int64_t got[10];
    float scores[10];
    cc_search_params p = {.filter = &allow};
    REQUIRE(cc_index_search_ex(idx, 1, s.q, 10, &p, got, scores) == 0, "%s", cc_last_error());
    int found = 0;
    for (int i = 0; i < 10; i++) {
        CHECK(got[i] == -1 || got[i] == ids[1] || got[i] == ids[9], "id %lld returned", (long long)got[i]);
        found += got[i] >= 0;
    }
    CHECK(found == 2, "%d results", found);
    cc_filter_free_allow(&allow);
    cc_filter_expr_free(&e);
    cc_index_free(idx);
    free(ids);
    free_set(&s);
}

/* item i's tags, as a user might write them in --meta: "even" (i % 2 == 0), "three", "five"; spaces and
 * a repeat that normalisation drops; NULL for every 11th */
static const char *raw_tags(int64_t i, char *buf, size_t size) {
    if (i % 11 == 0) return NULL;
    snprintf(buf, size, "%s%s%s%s", i % 2 == 0 ? " even ," : "", i % 3 == 0 ? "three," : "", i % 5 == 0 ? "five, even" : "",
             "");
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == ',' || buf[n - 1] == ' ')) buf[--n] = 0;
    return buf;
}

static int has_tag(int64_t i, const char *tag) {
    if (i % 11 == 0) return 0;
    if (!strcmp(tag, "even")) return i % 2 == 0 || i % 5 == 0;
    if (!strcmp(tag, "three")) return i % 3 == 0;
    if (!strcmp(tag, "five")) return i % 5 == 0;
    return 0;
}

static int64_t allowed_count(const cc_index *idx, const char *text) {
    cc_filter_expr e;
    cc_id_filter allow;
    int64_t n = -1;
    if (cc_filter_parse(text, strlen(text), &e) == 0 && cc_filter_build(idx, &e, &allow, &n) == 0) cc_filter_free_allow(&allow);
    else CHECK(0, "%s: %s", text, cc_last_error());
    cc_filter_expr_free(&e);
    return n;
}

TEST(filter_tags_match_normalise_and_survive_save) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    filtered_set s;
    make_set(&rng, &s, 600, 8);
    char (*bufs)[64] = malloc((size_t)s.n * sizeof *bufs);
    const char **tags = malloc((size_t)s.n * sizeof *tags);
    int64_t *ids = malloc((size_t)s.n * sizeof(int64_t));
    for (int64_t i = 0; i < s.n; i++) tags[i] = raw_tags(i, bufs[i], sizeof bufs[i]), ids[i] = 5000 + i;
    const char *types[] = {"Flat", "HNSW16"};
    for (int t = 0; t < 2; t++) {
        cc_index *idx = cc_index_create(types[t], s.d, CC_METRIC_IP);
        REQUIRE(idx && cc_index_add_items_tagged(idx, s.n, s.x, ids, NULL, s.stamps, tags) == 0, "%s", cc_last_error());
        const char *t30 = cc_index_item_tags(idx, 5000 + 30), *t7 = cc_index_item_tags(idx, 5000 + 7);
        CHECK(t30 && !strcmp(t30, "even,three,five"), "item 30's tags '%s'", t30 ? t30 : "(none)");
        CHECK(!t7 && !cc_index_item_tags(idx, 5000 + 22) && !cc_index_item_tags(idx, 4), "items without tags have some");
        for (int round = 0; round < 2; round++) {
            int64_t want_three = 0, want_union = 0, want_both = 0, want_time = 0;
            for (int64_t i = 0; i < s.n; i++) {
                if (round && i == 30) continue; /* removed below */
                want_three += has_tag(i, "three");
                want_union += has_tag(i, "three") || has_tag(i, "five");
                want_both += has_tag(i, "even") && has_tag(i, "three");
                want_time += has_tag(i, "five") && s.stamps[i] != INT64_MIN && s.stamps[i] < T0 + 500 * 86400LL;
            }
            CHECK(allowed_count(idx, "tag=three") == want_three, "%s: tag=three", types[t]);
            CHECK(allowed_count(idx, "tag=three|five") == want_union, "%s: tag=three|five", types[t]);
            CHECK(allowed_count(idx, "tag=even,tag=three") == want_both, "%s: tag=even,tag=three", types[t]);
            char text[64];
            snprintf(text, sizeof text, "tag=five,time<%lld", (long long)(T0 + 500 * 86400LL));
            CHECK(allowed_count(idx, text) == want_time, "%s: %s", types[t], text);
            CHECK(allowed_count(idx, "tag=Three") == 0 && allowed_count(idx, "tag=thre") == 0, "%s: inexact tag matched", types[t]);
            if (round) break;
            /* filtered search returns only tagged items; then remove one, save, load and count again */
            cc_filter_expr e;
            cc_id_filter allow;
            int64_t n_allowed;
            REQUIRE(cc_filter_parse("tag=five", 8, &e) == 0 && cc_filter_build(idx, &e, &allow, &n_allowed) == 0, "%s",
                    cc_last_error());
            int64_t got[10];
            cc_search_params p = {.ef_search = 200, .filter = &allow};
            REQUIRE(cc_index_search_ex(idx, 1, s.q, 10, &p, got, NULL) == 0, "%s", cc_last_error());
            for (int i = 0; i < 10; i++) CHECK(got[i] >= 5000 && has_tag(got[i] - 5000, "five"), "id %lld returned", (long long)got[i]);
            cc_filter_free_allow(&allow);
            cc_filter_expr_free(&e);
            int64_t gone = 5000 + 30;
            REQUIRE(cc_index_remove(idx, 1, &gone) == 1);
            REQUIRE(cc_index_save(idx, test_path("tags.idx")) == 0, "%s", cc_last_error());
            cc_index_free(idx);
            REQUIRE((idx = cc_index_load(test_path("tags.idx"))) != NULL, "%s", cc_last_error());
            CHECK(cc_index_has_item_tags(idx) && !cc_index_item_tags(idx, 5000 + 30), "%s: tags after load", types[t]);
            const char *t60 = cc_index_item_tags(idx, 5000 + 60);
            CHECK(t60 && !strcmp(t60, "even,three,five"), "%s: item 60's tags after load '%s'", types[t], t60 ? t60 : "(none)");
        }
        /* a bad tag list fails the add and changes nothing */
        const char *bad[] = {"ok", "a|b"};
        int64_t more[] = {90000, 90001};
        int64_t before = cc_index_count(idx);
        CHECK(cc_index_add_items_tagged(idx, 2, s.x, more, NULL, NULL, bad) != 0 && strstr(cc_last_error(), "row 1") &&
                  strstr(cc_last_error(), "a|b"),
              "%s: bad tags: %s", types[t], cc_last_error());
        CHECK(cc_index_count(idx) == before, "%s: a failed add changed the count", types[t]);
        cc_index_free(idx);
    }
    char *out;
    CHECK(cc_tags_normalize(" a , b,a,  c ", &out) == 0 && out && !strcmp(out, "a,b,c"), "normalised '%s'", out ? out : "");
    free(out);
    CHECK(cc_tags_normalize("  ", &out) == 0 && !out, "blank is no tags");
    const char *bad_lists[] = {"a,,b", "a,", "x=y", "tab\there", "\xff"};
    for (int i = 0; i < 5; i++) CHECK(cc_tags_normalize(bad_lists[i], &out) != 0, "accepted '%s'", bad_lists[i]);
    free(bufs), free(tags), free(ids);
    free_set(&s);
}
