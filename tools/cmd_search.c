/* cmd_search.c — `clipc search`: one text or image query against an index built with a model (clipc index
 * build --model ...): text->image, image->image, image->text and text->text. Prints one line per result,
 * "RANK<TAB>SCORE<TAB>PATH-or-CAPTION", or with --json the server's result object (docs/SEARCH.md).
 * --index may be a shard manifest: every shard is searched and the top k merged (index/manifest.h);
 * the metadata (model, preprocessing) is shard 0's. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/util.h"
#include "index/filter.h"
#include "index/index.h"
#include "index/manifest.h"
#include "tools/commands.h"
#include "tools/serve_query.h"

#define MAX_SEARCH_K 1000 /* results one query may ask for */

static int run_search(int argc, char **argv);
const cc_command cmd_search = {
    "search", "--index FILE [--model DIR] (--text \"...\" | --image FILE) [--k 10] [--json] [options]",
    "Search an index built with --model by text or image; prints rank, score and path or caption.", run_search};

typedef struct search_args {
    const char *index, *model, *text, *image, *template_text, *long_text, *scales, *style, *filter;
    int64_t k, ef, nprobe, window_stride, now;
    double decay;
    int json;
} search_args;

/* What --index names: one index (n = 1, shards = &one) or the shards of a manifest. */
typedef struct search_target {
    cc_index *one;
    cc_shards sh;
    const cc_index *const *shards;
    int n;
} search_target;

static int target_open(const char *path, search_target *t) {
    memset(t, 0, sizeof *t);
    if (cc_manifest_is_manifest(path)) {
        if (cc_shards_open(path, &t->sh) != 0) return -1;
        t->shards = (const cc_index *const *)t->sh.idx;
        t->n = t->sh.m.n_shards;
        return 0;
    }
    if (!(t->one = cc_index_load(path))) return -1;
    t->shards = (const cc_index *const *)&t->one;
    t->n = 1;
    return 0;
}

static void target_close(search_target *t) {
    if (t->one) cc_index_free(t->one);
    else if (t->n) cc_shards_close(&t->sh);
}

static const cc_index *owner(const search_target *t, int64_t id) { return t->shards[id >= 0 ? id % t->n : 0]; }

/* app_search on every shard (each re-ranks its own candidates by time), then the k best merged. allow, when
 * not NULL, holds each shard's allow-list (built over that shard's ids). */
static int target_search(const search_target *t, const float *query, const app_search_options *o,
                         const cc_id_filter *allow, int64_t *ids, float *scores) {
    app_search_options so = *o;
    if (t->n == 1) {
        if (allow) so.params.filter = &allow[0];
        return app_search(t->shards[0], query, &so, ids, scores);
    }
    int64_t *sid = cc_malloc(sizeof(int64_t) * (size_t)t->n * (size_t)o->k, "shard results");
    float *ssc = cc_malloc(sizeof(float) * (size_t)t->n * (size_t)o->k, "shard results");
    const int64_t **lid = cc_calloc((size_t)t->n, sizeof *lid, "shard results");
    const float **lsc = cc_calloc((size_t)t->n, sizeof *lsc, "shard results");
    int *kl = cc_calloc((size_t)t->n, sizeof *kl, "shard results");
    int total = 0, rc = -1;
    if (!sid || !ssc || !lid || !lsc || !kl) goto done;
    for (int s = 0; s < t->n; s++) {
        lid[s] = sid + (size_t)s * (size_t)o->k;
        lsc[s] = ssc + (size_t)s * (size_t)o->k;
        if (cc_index_count(t->shards[s]) == 0) continue;
        if (allow) so.params.filter = &allow[s];
        kl[s] = app_search(t->shards[s], query, &so, sid + (size_t)s * (size_t)o->k, ssc + (size_t)s * (size_t)o->k);
        if (kl[s] < 0) goto done;
        total += kl[s];
    }
    if (total == 0 && allow) { /* nothing passes the filter */
        rc = 0;
        goto done;
    }
    if (total == 0) {
        cc_set_error("the index is empty");
        goto done;
    }
    rc = total < o->k ? total : o->k;
    cc_metric metric = o->decay > 0 ? CC_METRIC_IP : cc_index_metric(t->shards[0]);
    if (cc_topk_merge(t->n, lid, lsc, kl, 1, rc, metric, ids, scores) != 0) rc = -1;
done:
    free(sid); free(ssc); free(lid); free(lsc); free(kl);
    return rc;
}

static int print_results(const search_args *a, const search_target *t, const int64_t *ids, const float *scores,
                         int n) {
    if (a->json) {
        cJSON *root = app_results_json_shards(t->shards, t->n, ids, scores, n);
        cJSON *query = cJSON_CreateObject();
        if (a->text) cJSON_AddStringToObject(query, "text", a->text);
        else cJSON_AddStringToObject(query, "image", a->image);
        if (a->filter) cJSON_AddStringToObject(query, "filter", a->filter);
        cJSON_AddItemToObject(root, "query", query);
        cJSON_AddNumberToObject(root, "k", (double)a->k);
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text) {
            cc_set_error("out of memory printing the results");
            return -1;
        }
        printf("%s\n", text);
        free(text);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        const char *item = cc_index_item_text(owner(t, ids[i]), ids[i]);
        if (item) printf("%d\t%.4f\t%s\n", i + 1, scores[i], item);
        else printf("%d\t%.4f\tid %lld\n", i + 1, scores[i], (long long)ids[i]);
    }
    return 0;
}

static int search(const search_args *a) {
    search_target t;
    if (target_open(a->index, &t) != 0) return -1;
    const cc_index *idx = t.shards[0]; /* the metadata */
    app_model am = {0};
    float *query = NULL;
    int64_t *ids = NULL;
    float *scores = NULL;
    int rc = -1;
    cc_filter_expr filter = {0};
    cc_id_filter *allow = cc_calloc((size_t)t.n, sizeof *allow, "filters"); /* one allow-list per shard */
    if (!allow) goto done;
    if (a->filter) {
        if (cc_filter_parse(a->filter, strlen(a->filter), &filter) != 0) goto done;
        for (int s = 0; s < t.n; s++) {
            int64_t n_allowed = 0;
            if (cc_filter_build(t.shards[s], &filter, &allow[s], &n_allowed) != 0) goto done;
        }
    }
    const char *model_dir = app_index_model_dir(idx, a->model);
    if (!model_dir) goto done;
    const char *scales = a->scales ? a->scales : cc_index_get_meta(idx, APP_META_SCALES);
    cc_preprocess_style style;
    if (app_index_style(idx, a->style, &style) != 0) goto done;
    if (app_model_open(&am, model_dir, a->image ? scales : NULL) != 0) goto done;
    am.session.preprocess.style = style;
    if (app_check_dims(&am, idx, a->index) != 0) goto done;
    int64_t stride = a->window_stride;
    const char *long_text = a->long_text ? a->long_text : cc_index_get_meta(idx, APP_META_LONG_TEXT);
    if (long_text && !strncmp(long_text, "window", 6)) am.long_text = CC_LONG_TEXT_WINDOW;
    am.window_stride = (int)stride;
    query = cc_malloc((size_t)am.dim * sizeof(float), "query");
    ids = cc_malloc((size_t)a->k * sizeof(int64_t), "results");
    scores = cc_malloc((size_t)a->k * sizeof(float), "results");
    if (!query || !ids || !scores) goto done;
    if (a->text) {
        int64_t truncated = 0;
        if (app_embed_texts(&am, &a->text, 1, a->template_text, NULL, query, &truncated) != 0) goto done;
        if (truncated && !cc_quiet)
            fprintf(stderr, "note: the query is longer than the model's context and was truncated (--long-text window "
                            "averages windows)\n");
    } else {
        cc_image img;
        if (cc_image_load(a->image, &img) != 0) goto done;
        rc = app_embed_image(&am, &img, query);
        cc_image_free(&img);
        if (rc != 0) {
            cc_prefix_error("%s", a->image);
            goto done;
        }
        rc = -1;
    }
    app_search_options o = {.k = (int)a->k, .decay = a->decay, .now = a->now ? a->now : (int64_t)time(NULL)};
    o.params.ef_search = (int)a->ef;
    o.params.nprobe = (int)a->nprobe;
    int n = target_search(&t, query, &o, a->filter ? allow : NULL, ids, scores);
    if (n < 0) goto done;
    rc = print_results(a, &t, ids, scores, n);
done:
    if (allow)
        for (int s = 0; s < t.n; s++) cc_filter_free_allow(&allow[s]);
    free(allow);
    cc_filter_expr_free(&filter);
    free(query);
    free(ids);
    free(scores);
    app_model_close(&am);
    target_close(&t);
    return rc;
}

static int run_search(int argc, char **argv) {
    search_args a = {.k = 10};
    const char *precision = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &a.index, "FILE", "index built with clipc index build --model (or its shard manifest)"},
        {"--model", CC_OPT_STRING, &a.model, "DIR", "model directory (default: the one recorded in the index)"},
        {"--text", CC_OPT_STRING, &a.text, "\"...\"", "text query"},
        {"--image", CC_OPT_STRING, &a.image, "FILE", "image query (JPEG, PNG, WebP, GIF, BMP or TIFF)"},
        {"--style", CC_OPT_STRING, &a.style, "NAME", "image query preprocessing: openai or hf (default: the index's, else openai)"},
        {"--k", CC_OPT_INT, &a.k, "K", "results (default 10, at most 1000)"},
        {"--json", CC_OPT_FLAG, &a.json, NULL, "print {\"results\": [{rank, score, id, path|caption}]} as JSON"},
        {"--template", CC_OPT_STRING, &a.template_text, "\"... {} ...\"", "text query template, e.g. \"a photo of {}\""},
        {"--long-text", CC_OPT_STRING, &a.long_text, "MODE", "text query longer than the context: truncate or window (default: as the index was built)"},
        {"--window-stride", CC_OPT_INT, &a.window_stride, "N", "window mode: tokens between window starts"},
        {"--multiscale", CC_OPT_STRING, &a.scales, "S1,S2", "image query: average features at these sizes (default: the index's)"},
        {"--decay", CC_OPT_FLOAT, &a.decay, "ALPHA", "re-rank 3k candidates by score * exp(-ALPHA * age in days)"},
        {"--filter", CC_OPT_STRING, &a.filter, "EXPR", "only items matching, e.g. 'time>=2024-01-01,time<2025-01-01', 'id=3|5' or 'tag=cat|dog' (docs/SEARCH.md)"},
        {"--now", CC_OPT_INT, &a.now, "UNIX_S", "the time ages are measured from (default: now)"},
        {"--ef", CC_OPT_INT, &a.ef, "N", "HNSW efSearch (default: the index's)"},
        {"--nprobe", CC_OPT_INT, &a.nprobe, "N", "IVF lists visited (default: the index's)"},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int rc = cc_parse_options(&cmd_search, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (cc_apply_precision(&cmd_search, precision) != 0) return 2;
    if (!a.index || (a.text != NULL) == (a.image != NULL)) {
        fprintf(stderr, "clipc search: need --index and one of --text or --image\n");
        return 2;
    }
    if (a.k < 1 || a.k > MAX_SEARCH_K) {
        fprintf(stderr, "clipc search: --k must be between 1 and %d, got %lld\n", MAX_SEARCH_K, (long long)a.k);
        return 2;
    }
    if (!(a.decay >= 0 && a.decay < 1e6) || a.ef < 0 || a.ef > (1 << 20) || a.nprobe < 0 || a.nprobe > (1 << 20) ||
        a.window_stride < 0 || a.window_stride > 1000) {
        fprintf(stderr, "clipc search: --decay, --ef, --nprobe and --window-stride must be non-negative and sane\n");
        return 2;
    }
    if (a.long_text && strcmp(a.long_text, "truncate") && strcmp(a.long_text, "window")) {
        fprintf(stderr, "clipc search: --long-text must be truncate or window\n");
        return 2;
    }
    if (a.text && !*a.text) {
        fprintf(stderr, "clipc search: the --text query is empty\n");
        return 2;
    }
    if (search(&a) != 0) return cc_command_error(&cmd_search, cc_last_error());
    return 0;
}
