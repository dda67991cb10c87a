/* cmd_index.c — the "clipc index ..." commands: build, add, remove, search, tune, info.
 * Vectors, ids, queries and results are .npy files; the index file format is in docs/FORMATS.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/util.h"
#include "index/index.h"
#include "tools/cli.h"
#include "tools/commands.h"

#define MAX_K 100000 /* largest k accepted on the command line */

/* ------------------------------------------------------------------ helpers */

/* Loads a 2-D float32 matrix; dim_expected 0 = any. */
static int load_matrix(const char *path, const char *what, int dim_expected, cc_npy *out) {
    if (cc_npy_read_f32(path, out) != 0) return -1;
    if (out->ndim != 2 || out->shape[0] < 0 || out->shape[1] < 1) {
        cc_set_error("%s: %s must be a 2-D array (rows x dimension), got %d dimension(s)", path, what, out->ndim);
        cc_npy_free(out);
        return -1;
    }
    if (dim_expected && out->shape[1] != dim_expected) {
        cc_set_error("%s: %s have dimension %lld, the index has %d", path, what, (long long)out->shape[1], dim_expected);
        cc_npy_free(out);
        return -1;
    }
    if (out->shape[1] > 65536) {
        cc_set_error("%s: dimension %lld is too large", path, (long long)out->shape[1]);
        cc_npy_free(out);
        return -1;
    }
    if (cc_check_finite(out->data, out->shape[0], (int)out->shape[1], what) != 0) {
        cc_prefix_error("%s", path);
        cc_npy_free(out);
        return -1;
    }
    return 0;
}

static int load_ids(const char *path, int64_t n_expected, cc_npy *out) {
    if (cc_npy_read_i64(path, out) != 0) return -1;
    if (out->ndim != 1 || out->shape[0] != n_expected) {
        cc_set_error("%s: ids must be a 1-D array of %lld entries (one per vector), got %lld", path,
                     (long long)n_expected, (long long)(out->ndim == 1 ? out->shape[0] : out->count));
        cc_npy_free(out);
        return -1;
    }
    return 0;
}

/* One text per line (UTF-8); returns n_expected pointers into *buf. Empty lines are empty texts. */
static const char **load_texts(const char *path, int64_t n_expected, char **buf) {
    size_t size;
    if (cc_read_file(path, buf, &size) != 0) return NULL;
    const char **texts = cc_malloc((size_t)(n_expected ? n_expected : 1) * sizeof(char *), "texts");
    if (!texts) return NULL;
    int64_t n = 0;
    char *p = *buf, *end = *buf + size;
    while (p < end && n < n_expected) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        if (stop > p && stop[-1] == '\r') stop[-1] = 0;
        *stop = 0;
        texts[n++] = p;
        p = nl ? nl + 1 : end;
    }
    if (n != n_expected || (p < end && strspn(p, "\r\n") != (size_t)(end - p))) {
        cc_set_error("%s: expected %lld lines (one text per vector), found %s%lld", path, (long long)n_expected,
                     n == n_expected ? "more than " : "", (long long)n);
        free(texts);
        return NULL;
    }
    return texts;
}

static int parse_metric(const char *text, cc_metric *out) {
    if (!text || !strcmp(text, "ip")) *out = CC_METRIC_IP;
    else if (!strcmp(text, "l2")) *out = CC_METRIC_L2;
    else {
        cc_set_error("--metric must be ip or l2, got '%s'", text);
        return -1;
    }
    return 0;
}

static void print_summary_line(const cc_index *idx, const char *path) {
    int64_t n = cc_index_count(idx);
    printf("%s: %s, %d-d, %s, %lld vectors, %.1f bytes/vector\n", path, cc_index_desc(idx), cc_index_dim(idx),
           cc_metric_name(cc_index_metric(idx)), (long long)n,
           n ? (double)cc_index_memory_bytes(idx) / (double)n : 0.0);
}

/* ------------------------------------------------------------------ build */

static int run_build(int argc, char **argv);
const cc_command cmd_index_build = {
    "index build", "--type DESC --vectors X.npy --out FILE [options]",
    "Build an index (Flat, IVF<n>,Flat, IVF<n>,PQ<M>[,RFlat], PQ<M>, HNSW<M>) from vectors.", run_build};

static int run_build(int argc, char **argv) {
    const char *type = NULL, *vectors = NULL, *ids_path = NULL, *metric_name = NULL, *out = NULL, *texts_path = NULL;
    const char *model = NULL;
    int64_t ef_construction = 0, train_size = 0, seed = -1;
    cc_option options[] = {
        {"--type", CC_OPT_STRING, &type, "DESC", "index type, faiss factory style (e.g. HNSW32, IVF1024,PQ64)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "float32 vectors, rows x dimension"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 id per vector (default 0, 1, 2, ...)"},
        {"--texts", CC_OPT_STRING, &texts_path, "FILE", "one UTF-8 text (path or caption) per vector, per line"},
        {"--metric", CC_OPT_STRING, &metric_name, "ip|l2", "inner product (default) or squared L2"},
        {"--ef-construction", CC_OPT_INT, &ef_construction, "N", "HNSW build breadth (default 200)"},
        {"--train-size", CC_OPT_INT, &train_size, "N", "vectors used to train IVF/PQ (default: all)"},
        {"--seed", CC_OPT_INT, &seed, "N", "seed for training samples and HNSW levels"},
        {"--model", CC_OPT_STRING, &model, "NAME", "model name stored in the index metadata"},
        {"--out", CC_OPT_STRING, &out, "FILE", "index file to write"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_build, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!type || !vectors || !out) {
        fprintf(stderr, "clipc index build: --type, --vectors and --out are required\n");
        return 2;
    }
    cc_metric metric;
    if (parse_metric(metric_name, &metric) != 0) return cc_command_error(&cmd_index_build, cc_last_error());
    cc_npy x = {0}, ids = {0};
    char *text_buf = NULL;
    const char **texts = NULL;
    cc_index *idx = NULL;
    int status = 1;
    if (load_matrix(vectors, "vectors", 0, &x) != 0) goto fail;
    int64_t n = x.shape[0];
    int d = (int)x.shape[1];
    if (n == 0) {
        cc_set_error("%s: no vectors", vectors);
        goto fail;
    }
    if (ids_path && load_ids(ids_path, n, &ids) != 0) goto fail;
    if (texts_path && !(texts = load_texts(texts_path, n, &text_buf))) goto fail;
    if (!(idx = cc_index_create(type, d, metric))) goto fail;
    if (ef_construction && cc_index_set_param(idx, "efConstruction", ef_construction) < 0) goto fail;
    if (seed >= 0 && cc_index_set_param(idx, "seed", seed) < 0) goto fail;
    if (model && cc_index_set_meta(idx, "model", model) != 0) goto fail;
    double t0 = cc_now();
    if (!cc_index_is_trained(idx)) {
        int64_t n_train = train_size > 0 && train_size < n ? train_size : n;
        /* an evenly spread subset when asked for fewer */
        float *train = x.data;
        float *subset = NULL;
        if (n_train < n) {
            subset = cc_malloc((size_t)n_train * d * sizeof(float), "training subset");
            if (!subset) goto fail;
            for (int64_t i = 0; i < n_train; i++) memcpy(subset + i * d, (float *)x.data + (i * n / n_train) * d, (size_t)d * 4);
            train = subset;
        }
        int trc = cc_index_train(idx, n_train, train);
        free(subset);
        if (trc != 0) goto fail;
    }
    double t1 = cc_now();
    if (cc_index_add_items(idx, n, x.data, ids_path ? ids.data : NULL, texts, NULL) != 0) goto fail;
    double t2 = cc_now();
    if (cc_index_save(idx, out) != 0) goto fail;
    int64_t bytes = cc_index_memory_bytes(idx);
    printf("built %s (%d-d, %s) from %lld vectors in %.2f s (train %.2f s, add %.2f s) at %.0f vectors/s, "
           "%.1f bytes/vector -> %s\n",
           cc_index_desc(idx), d, cc_metric_name(metric), (long long)n, t2 - t0, t1 - t0, t2 - t1,
           (double)n / (t2 - t0 > 0 ? t2 - t0 : 1e-9), (double)bytes / (double)n, out);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_build, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&x);
    if (ids_path) cc_npy_free(&ids);
    free(texts);
    free(text_buf);
    return status;
}

/* ------------------------------------------------------------------ add / remove */

static int run_add(int argc, char **argv);
const cc_command cmd_index_add = {"index add", "--index FILE --vectors X.npy [--ids IDS.npy] [--texts FILE]",
                                  "Add vectors (and their texts) to an existing index file.", run_add};

static int run_add(int argc, char **argv) {
    const char *index_path = NULL, *vectors = NULL, *ids_path = NULL, *texts_path = NULL, *out = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "float32 vectors to add"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 id per vector (default: after the largest id)"},
        {"--texts", CC_OPT_STRING, &texts_path, "FILE", "one UTF-8 text per vector, per line"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the result here instead"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_add, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !vectors) {
        fprintf(stderr, "clipc index add: --index and --vectors are required\n");
        return 2;
    }
    cc_npy x = {0}, ids = {0};
    char *text_buf = NULL;
    const char **texts = NULL;
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (load_matrix(vectors, "vectors", cc_index_dim(idx), &x) != 0) goto fail;
    if (ids_path && load_ids(ids_path, x.shape[0], &ids) != 0) goto fail;
    if (texts_path && !(texts = load_texts(texts_path, x.shape[0], &text_buf))) goto fail;
    double t0 = cc_now();
    if (cc_index_add_items(idx, x.shape[0], x.data, ids_path ? ids.data : NULL, texts, NULL) != 0) goto fail;
    if (cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("added %lld vectors in %.2f s; ", (long long)x.shape[0], cc_now() - t0);
    print_summary_line(idx, out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_add, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&x);
    if (ids_path) cc_npy_free(&ids);
    free(texts);
    free(text_buf);
    return status;
}

static int run_remove(int argc, char **argv);
const cc_command cmd_index_remove = {"index remove", "--index FILE --ids IDS.npy", "Remove ids from an index file.",
                                     run_remove};

static int run_remove(int argc, char **argv) {
    const char *index_path = NULL, *ids_path = NULL, *out = NULL;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out)"},
        {"--ids", CC_OPT_STRING, &ids_path, "IDS.npy", "int64 ids to remove"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the result here instead"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_remove, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !ids_path) {
        fprintf(stderr, "clipc index remove: --index and --ids are required\n");
        return 2;
    }
    cc_npy ids = {0};
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (cc_npy_read_i64(ids_path, &ids) != 0) goto fail;
    int64_t removed = cc_index_remove(idx, ids.count, ids.data);
    if (removed < 0 || cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("removed %lld of %lld ids; ", (long long)removed, (long long)ids.count);
    print_summary_line(idx, out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_remove, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&ids);
    return status;
}

/* ------------------------------------------------------------------ search */

static double recall_at_k(const int64_t *found, int64_t nq, int k, const cc_npy *gt) {
    int64_t hits = 0, total = 0;
    int gt_k = (int)gt->shape[1];
    for (int64_t i = 0; i < nq; i++)
        for (int b = 0; b < k; b++) {
            int64_t want = ((const int64_t *)gt->data)[i * gt_k + b];
            if (want < 0) continue;
            total++;
            for (int a = 0; a < k; a++)
                if (found[i * k + a] == want) {
                    hits++;
                    break;
                }
        }
    return total ? (double)hits / (double)total : 1.0;
}

static int run_search(int argc, char **argv);
const cc_command cmd_index_search = {
    "index search", "--index FILE --queries Q.npy --k K --out I.npy [options]",
    "Search an index; prints queries/s and, with --gt, recall@k.", run_search};

static int run_search(int argc, char **argv) {
    const char *index_path = NULL, *queries = NULL, *out = NULL, *scores_path = NULL, *gt_path = NULL;
    int64_t k = 10, nprobe = 0, ef = 0, rerank = 0, repeat = 1;
    int no_crc = 0;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file"},
        {"--queries", CC_OPT_STRING, &queries, "Q.npy", "float32 queries, rows x dimension"},
        {"--k", CC_OPT_INT, &k, "K", "neighbours per query (default 10)"},
        {"--out", CC_OPT_STRING, &out, "I.npy", "int64 ids, queries x k (-1 where none)"},
        {"--scores", CC_OPT_STRING, &scores_path, "S.npy", "float32 scores: inner product or squared L2"},
        {"--nprobe", CC_OPT_INT, &nprobe, "N", "IVF lists visited (default: the index's, tuned or 8)"},
        {"--ef", CC_OPT_INT, &ef, "N", "HNSW efSearch (default: the index's, tuned or 64)"},
        {"--rerank", CC_OPT_INT, &rerank, "R", "RFlat: re-score k*R PQ candidates exactly (default 4)"},
        {"--gt", CC_OPT_STRING, &gt_path, "GT.npy", "exact neighbour ids (queries x >=k) to report recall@k"},
        {"--repeat", CC_OPT_INT, &repeat, "N", "run the search N times, report the fastest (default 1)"},
        {"--no-crc", CC_OPT_FLAG, &no_crc, NULL, "skip the CRC check of the index file when loading"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_search, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !queries || !out) {
        fprintf(stderr, "clipc index search: --index, --queries and --out are required\n");
        return 2;
    }
    if (k < 1 || k > MAX_K || nprobe < 0 || ef < 0 || rerank < 0 || repeat < 1) {
        fprintf(stderr, "clipc index search: --k, --nprobe, --ef, --rerank and --repeat must be positive\n");
        return 2;
    }
    cc_npy q = {0}, gt = {0};
    int64_t *ids = NULL;
    float *scores = NULL;
    int status = 1;
    double t_load = cc_now();
    cc_index *idx = cc_index_load_flags(index_path, no_crc ? CC_INDEX_LOAD_NO_CRC : 0);
    if (!idx) goto fail;
    t_load = cc_now() - t_load;
    if (load_matrix(queries, "queries", cc_index_dim(idx), &q) != 0) goto fail;
    int64_t nq = q.shape[0];
    if (k > cc_index_count(idx)) {
        cc_set_error("k = %lld is larger than the index (%lld vectors)", (long long)k, (long long)cc_index_count(idx));
        goto fail;
    }
    if (gt_path) {
        if (cc_npy_read_i64(gt_path, &gt) != 0) goto fail;
        if (gt.ndim != 2 || gt.shape[0] != nq || gt.shape[1] < k) {
            cc_set_error("%s: ground truth must be %lld x >=%lld ids", gt_path, (long long)nq, (long long)k);
            goto fail;
        }
    }
    cc_search_params params = {0};
    int nlist = (int)cc_index_get_param(idx, "nlist");
    if (nprobe) {
        if (cc_index_get_param(idx, "nprobe") < 0) fprintf(stderr, "note: --nprobe does not apply to %s, ignored\n", cc_index_desc(idx));
        else if (nlist > 0 && nprobe > nlist) {
            fprintf(stderr, "note: --nprobe %lld is more than nlist = %d; using %d\n", (long long)nprobe, nlist, nlist);
            nprobe = nlist;
        }
        params.nprobe = (int)(nprobe > 1 << 30 ? 1 << 30 : nprobe);
    }
    if (ef) {
        if (cc_index_get_param(idx, "efSearch") < 0) fprintf(stderr, "note: --ef does not apply to %s, ignored\n", cc_index_desc(idx));
        params.ef_search = (int)(ef > 1 << 20 ? 1 << 20 : ef);
    }
    if (rerank) {
        if (cc_index_get_param(idx, "rerank") < 0) fprintf(stderr, "note: --rerank does not apply to %s, ignored\n", cc_index_desc(idx));
        params.rerank = (int)(rerank > 1024 ? 1024 : rerank);
    }
    ids = cc_malloc((size_t)nq * (size_t)k * sizeof(int64_t), "result ids");
    scores = cc_malloc((size_t)nq * (size_t)k * sizeof(float), "result scores");
    if (!ids || !scores) goto fail;
    double best = INFINITY;
    for (int64_t r = 0; r < repeat; r++) {
        double t0 = cc_now();
        if (cc_index_search_ex(idx, nq, q.data, (int)k, &params, ids, scores) != 0) goto fail;
        double t = cc_now() - t0;
        if (t < best) best = t;
    }
    int64_t shape[2] = {nq, k};
    if (cc_npy_write_i64(out, 2, shape, ids) != 0) goto fail;
    if (scores_path && cc_npy_write_f32(scores_path, 2, shape, scores) != 0) goto fail;
    printf("searched %lld queries (k=%lld) in %.4f s: %.1f queries/s", (long long)nq, (long long)k, best,
           (double)nq / (best > 0 ? best : 1e-9));
    if (gt_path) printf(", recall@%lld %.4f", (long long)k, recall_at_k(ids, nq, (int)k, &gt));
    printf(" [%s; load %.3f s]\n", cc_index_desc(idx), t_load);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_search, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&q);
    if (gt_path) cc_npy_free(&gt);
    free(ids);
    free(scores);
    return status;
}

/* ------------------------------------------------------------------ tune */

static int run_tune(int argc, char **argv);
const cc_command cmd_index_tune = {
    "index tune", "--index FILE --queries Q.npy --target-recall R [options]",
    "Pick the smallest nprobe / efSearch reaching a recall@k against exact search; store it in the index.",
    run_tune};

static int run_tune(int argc, char **argv) {
    const char *index_path = NULL, *queries = NULL, *vectors = NULL, *out = NULL;
    double target = 0;
    int64_t k = 10, sample = 1000;
    cc_option options[] = {
        {"--index", CC_OPT_STRING, &index_path, "FILE", "index file (rewritten atomically unless --out)"},
        {"--queries", CC_OPT_STRING, &queries, "Q.npy", "sample queries, rows x dimension"},
        {"--target-recall", CC_OPT_FLOAT, &target, "R", "recall@k to reach, e.g. 0.95"},
        {"--k", CC_OPT_INT, &k, "K", "k of recall@k (default 10)"},
        {"--sample", CC_OPT_INT, &sample, "N", "queries used at most (default 1000)"},
        {"--vectors", CC_OPT_STRING, &vectors, "X.npy", "original vectors (PQ without RFlat: for exact neighbours)"},
        {"--out", CC_OPT_STRING, &out, "FILE", "write the tuned index here instead"},
        {0},
    };
    int rc = cc_parse_options(&cmd_index_tune, options, argc, argv, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!index_path || !queries || !(target > 0 && target <= 1) || k < 1 || k > MAX_K || sample < 1) {
        fprintf(stderr, "clipc index tune: --index, --queries and --target-recall in (0, 1] are required\n");
        return 2;
    }
    cc_npy q = {0}, x = {0};
    int status = 1;
    cc_index *idx = cc_index_load(index_path);
    if (!idx) goto fail;
    if (load_matrix(queries, "queries", cc_index_dim(idx), &q) != 0) goto fail;
    if (vectors && load_matrix(vectors, "vectors", cc_index_dim(idx), &x) != 0) goto fail;
    int64_t nq = q.shape[0] < sample ? q.shape[0] : sample;
    if (nq < 1) {
        cc_set_error("%s: no queries", queries);
        goto fail;
    }
    cc_tune_result res;
    double t0 = cc_now();
    if (cc_index_tune(idx, nq, q.data, (int)k, target, vectors ? x.data : NULL, vectors ? x.shape[0] : 0, &res) != 0)
        goto fail;
    if (cc_index_save(idx, out ? out : index_path) != 0) goto fail;
    printf("tuned %s in %.1f s on %lld queries: ", cc_index_desc(idx), cc_now() - t0, (long long)nq);
    if (res.ef_search) printf("efSearch %d", res.ef_search);
    if (res.nprobe) printf("nprobe %d", res.nprobe);
    if (res.rerank) printf(", rerank %d", res.rerank);
    printf(" gives recall@%lld %.4f at %.0f queries/s%s -> %s\n", (long long)k, res.recall, res.queries_per_s,
           res.reached ? "" : " (target NOT reached at the largest setting)", out ? out : index_path);
    status = 0;
    goto done;
fail:
    cc_command_error(&cmd_index_tune, cc_last_error());
done:
    cc_index_free(idx);
    cc_npy_free(&q);
    if (vectors) cc_npy_free(&x);
    return status;
}

/* ------------------------------------------------------------------ info */

static int run_info(int argc, char **argv);
const cc_command cmd_index_info = {"index info", "FILE", "Describe an index file: type, counts, parameters, metadata.",
                                   run_info};

static int run_info(int argc, char **argv) {
    cc_strlist files = {0};
    cc_option options[] = {{0}};
    int rc = cc_parse_options(&cmd_index_info, options, argc, argv, &files);
    if (rc) {
        cc_strlist_free(&files);
        return rc > 0 ? 0 : 2;
    }
    if (files.count != 1) {
        fprintf(stderr, "clipc index info: expected one index file\n");
        cc_strlist_free(&files);
        return 2;
    }
    const char *path = files.items[0];
    double t0 = cc_now();
    cc_index *idx = cc_index_load(path);
    if (!idx) {
        cc_strlist_free(&files);
        return cc_command_error(&cmd_index_info, cc_last_error());
    }
    printf("file:        %s (loaded and checked in %.3f s)\n", path, cc_now() - t0);
    printf("type:        %s\n", cc_index_desc(idx));
    printf("dimension:   %d\n", cc_index_dim(idx));
    printf("metric:      %s\n", cc_metric_name(cc_index_metric(idx)));
    printf("vectors:     %lld\n", (long long)cc_index_count(idx));
    printf("trained:     %s\n", cc_index_is_trained(idx) ? "yes" : "no");
    int64_t n = cc_index_count(idx);
    printf("memory:      %.1f MB (%.1f bytes/vector)\n", (double)cc_index_memory_bytes(idx) / 1e6,
           n ? (double)cc_index_memory_bytes(idx) / (double)n : 0.0);
    static const char *params[] = {"nlist", "M", "nbits", "nprobe", "rerank", "efConstruction", "efSearch", "seed"};
    printf("parameters: ");
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        int64_t v = cc_index_get_param(idx, params[i]);
        if (v >= 0) printf(" %s=%lld", params[i], (long long)v);
    }
    printf("\nitem texts:  %s\n", cc_index_has_item_texts(idx) ? "yes" : "no");
    int n_meta = cc_index_meta_count(idx);
    if (n_meta) printf("metadata:\n");
    for (int i = 0; i < n_meta; i++) {
        const char *key, *value;
        cc_index_meta_at(idx, i, &key, &value);
        printf("  %s = %s\n", key, value);
    }
    cc_index_free(idx);
    cc_strlist_free(&files);
    return 0;
}
