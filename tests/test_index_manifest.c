/* test_index_manifest.c — sharded indexes (index/manifest.c): Flat in 3 shards returns exactly the
 * unsharded Flat's ids and scores, HNSW in shards keeps recall@10 within 0.005 of one HNSW, the
 * merge orders ties by id, and bad manifests are refused with the file named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "index/index.h"
#include "index/manifest.h"
#include "tests/test.h"
#include "tests/test_index_helpers.h"

/* Builds desc over x in n_shards shards (id i in shard i % n_shards), saves them and a manifest. */
static int build_sharded(const char *desc, const float *x, int64_t n, int d, cc_metric metric, int n_shards,
                         const char *manifest_path) {
    cc_manifest m = {.type = (char *)desc, .metric = metric, .dim = d, .model = "test", .n_shards = n_shards};
    char *files[8];
    int64_t counts[8];
    m.files = files;
    m.counts = counts;
    for (int s = 0; s < n_shards; s++) {
        cc_index *idx = cc_index_create(desc, d, metric);
        if (!idx) return -1;
        for (int64_t i = s; i < n; i += n_shards)
            if (cc_index_add_with_ids(idx, 1, x + i * d, &i) != 0) return -1;
        files[s] = malloc(32);
        snprintf(files[s], 32, "shard%d.idx", s);
        counts[s] = cc_index_count(idx);
        int rc = cc_index_save(idx, test_path(files[s]));
        cc_index_free(idx);
        if (rc) return -1;
    }
    int rc = cc_manifest_save(&m, manifest_path);
    for (int s = 0; s < n_shards; s++) free(files[s]);
    return rc;
}

TEST(index_manifest_flat_in_3_shards_equals_one_flat) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 24, k = 10;
    int64_t n = 700 + (int64_t)cc_rng_below(&rng, 300), nq = 40;
    for (int metric = CC_METRIC_IP; metric <= CC_METRIC_L2; metric++) {
        float *x = tix_clustered(&rng, n, d, 12, 1), *q = tix_clustered(&rng, nq, d, 12, 1);
        cc_index *one = cc_index_create("Flat", d, (cc_metric)metric);
        REQUIRE(one && cc_index_add(one, n, x) == 0);
        const char *mpath = test_path("flat.manifest");
        REQUIRE(build_sharded("Flat", x, n, d, (cc_metric)metric, 3, mpath) == 0, "%s", cc_last_error());
        cc_shards sh;
        REQUIRE(cc_shards_open(mpath, &sh) == 0, "%s", cc_last_error());
        CHECK(sh.m.n_shards == 3 && cc_shards_count(&sh) == n);
        int64_t ids1[40 * 10], ids3[40 * 10];
        float sc1[40 * 10], sc3[40 * 10];
        REQUIRE(cc_index_search(one, nq, q, k, ids1, sc1) == 0);
        REQUIRE(cc_shards_search(&sh, nq, q, k, NULL, ids3, sc3) == 0, "%s", cc_last_error());
        CHECK(memcmp(ids1, ids3, sizeof ids1) == 0, "metric %d: ids differ", metric);
        CHECK(memcmp(sc1, sc3, sizeof sc1) == 0, "metric %d: scores differ", metric);
        cc_shards_close(&sh);
        cc_index_free(one);
        free(x);
        free(q);
    }
}

TEST(index_manifest_hnsw_shards_keep_recall) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 32, k = 10;
    int64_t n = 3000, nq = 200;
    float *x = tix_clustered(&rng, n, d, 30, 1), *q = tix_clustered(&rng, nq, d, 30, 1);
    int64_t *truth = malloc(sizeof(int64_t) * (size_t)(nq * k)), *found = malloc(sizeof(int64_t) * (size_t)(nq * k));
    tix_brute_force(x, n, d, NULL, NULL, q, nq, k, CC_METRIC_IP, truth, NULL);
    cc_index *one = cc_index_create("HNSW16", d, CC_METRIC_IP);
    REQUIRE(one && cc_index_add(one, n, x) == 0);
    cc_search_params p = {.ef_search = 32};
    REQUIRE(cc_index_search_ex(one, nq, q, k, &p, found, NULL) == 0);
    double r1 = tix_recall(found, truth, nq, k);
    const char *mpath = test_path("hnsw.manifest");
    REQUIRE(build_sharded("HNSW16", x, n, d, CC_METRIC_IP, 3, mpath) == 0, "%s", cc_last_error());
    cc_shards sh;
    REQUIRE(cc_shards_open(mpath, &sh) == 0, "%s", cc_last_error());
    REQUIRE(cc_shards_search(&sh, nq, q, k, &p, found, NULL) == 0, "%s", cc_last_error());
    double r3 = tix_recall(found, truth, nq, k);
    CHECK(r3 >= r1 - 0.005, "recall@10: one HNSW %.4f, 3 shards %.4f", r1, r3);
    CHECK(r1 > 0.5, "recall@10 of one HNSW %.4f: the check would be vacuous", r1);
    cc_shards_close(&sh);
    cc_index_free(one);
    free(x); free(q); free(truth); free(found);
}

TEST(index_manifest_merge_breaks_ties_by_id) {
    int64_t a[3] = {7, 2, -1}, b[3] = {3, 1, 9};
    float sa[3] = {0.9f, 0.5f, -1e30f}, sb[3] = {0.9f, 0.5f, 0.1f};
    const int64_t *ids[2] = {a, b};
    const float *sc[2] = {sa, sb};
    int kl[2] = {3, 3};
    int64_t out[5];
    float os[5];
    REQUIRE(cc_topk_merge(2, ids, sc, kl, 1, 5, CC_METRIC_IP, out, os) == 0);
    int64_t want[5] = {3, 7, 1, 2, 9};
    CHECK(memcmp(out, want, sizeof want) == 0, "got %lld %lld %lld %lld %lld", (long long)out[0], (long long)out[1],
          (long long)out[2], (long long)out[3], (long long)out[4]);
    CHECK(cc_manifest_shard_of(10, 3) == 1);
}

TEST(index_manifest_bad_files_are_refused) {
    const char *bad[] = {
        "",
        "{",
        "[]",
        "{\"clipc_manifest\": 2, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"cos\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 0, \"model\": \"\", \"shards\": [{\"file\": \"a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": []}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"../a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"/a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"a\", \"count\": -1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"a\"}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"shards\": [{\"file\": \"a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"extra\": 1, \"shards\": [{\"file\": \"a\", \"count\": 1}]}",
        "{\"clipc_manifest\": 1, \"type\": \"Flat\", \"metric\": \"ip\", \"dim\": 4, \"model\": \"\", \"shards\": [{\"file\": \"a\", \"count\": 1}]} x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = test_path("bad.manifest");
        FILE *fp = fopen(p, "wb");
        REQUIRE(fp);
        fputs(bad[i], fp);
        fclose(fp);
        cc_manifest m;
        CHECK(cc_manifest_load(p, &m) == -1, "case %zu accepted", i);
        CHECK(strstr(cc_last_error(), "bad.manifest") != NULL, "case %zu: error %s", i, cc_last_error());
    }
    /* a good manifest whose shard is missing, and one whose shard disagrees with it */
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    float *x = tix_clustered(&rng, 30, 4, 3, 1);
    const char *mpath = test_path("m.manifest");
    REQUIRE(build_sharded("Flat", x, 30, 4, CC_METRIC_IP, 2, mpath) == 0);
    cc_manifest m;
    REQUIRE(cc_manifest_load(mpath, &m) == 0, "%s", cc_last_error());
    m.counts[1] += 1;
    REQUIRE(cc_manifest_save(&m, mpath) == 0);
    cc_shards sh;
    CHECK(cc_shards_open(mpath, &sh) == -1 && strstr(cc_last_error(), "does not match"), "%s", cc_last_error());
    free(m.files[0]);
    m.files[0] = strdup("missing.idx");
    REQUIRE(cc_manifest_save(&m, mpath) == 0);
    CHECK(cc_shards_open(mpath, &sh) == -1 && strstr(cc_last_error(), "missing.idx"), "%s", cc_last_error());
    cc_manifest_free(&m);
    free(x);
}

/* Names of the files in the test directory, sorted, joined by spaces. */
static void list_dir(char *out, size_t size) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s'", test_tmpdir());
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, size - 1, p) : 0;
    out[n] = 0;
    if (p) pclose(p);
}

TEST(index_manifest_build_add_remove_commit) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    int d = 8, k = 5;
    int64_t n = 90, nq = 6;
    float *x = tix_clustered(&rng, n + 10, d, 4, 1), *q = tix_clustered(&rng, nq, d, 4, 1);
    cc_index *one = cc_index_create("Flat", d, CC_METRIC_IP);
    REQUIRE(one && cc_index_add(one, n, x) == 0);
    const char *mpath = test_path("s.manifest");
    cc_shard_spec spec = {"Flat", d, CC_METRIC_IP, 3, 0, -1, NULL};
    REQUIRE(cc_shards_build(mpath, &spec, n, x, NULL, NULL, NULL, NULL) == 0, "%s", cc_last_error());
    char before[4096], after[4096], text_before[4096], text_after[4096];
    cc_shards sh;
    REQUIRE(cc_shards_open(mpath, &sh) == 0, "%s", cc_last_error());
    CHECK(sh.m.counts[0] == 30 && sh.m.counts[1] == 30 && sh.m.counts[2] == 30);
    CHECK(cc_shards_next_id(&sh) == n);
    /* a failing add (id 4 is already in shard 1) leaves every file as it was */
    list_dir(before, sizeof before);
    FILE *fp = fopen(mpath, "rb");
    size_t tb = fread(text_before, 1, sizeof text_before - 1, fp);
    fclose(fp);
    int64_t dup[2] = {200, 4};
    CHECK(cc_shards_add(&sh, mpath, 2, x + n * d, dup, NULL, NULL, NULL) == -1, "duplicate id accepted");
    CHECK(strstr(cc_last_error(), "shard 1") != NULL, "%s", cc_last_error());
    list_dir(after, sizeof after);
    fp = fopen(mpath, "rb");
    size_t ta = fread(text_after, 1, sizeof text_after - 1, fp);
    fclose(fp);
    CHECK(strcmp(before, after) == 0, "files changed: [%s] -> [%s]", before, after);
    CHECK(ta == tb && memcmp(text_before, text_after, ta) == 0, "manifest changed by a failed add");
    cc_shards_close(&sh);
    /* add 10 (automatic ids 90..99) and remove 3, in both; the sharded search equals the one index */
    REQUIRE(cc_shards_open(mpath, &sh) == 0, "%s", cc_last_error());
    REQUIRE(cc_shards_add(&sh, mpath, 10, x + n * d, NULL, NULL, NULL, NULL) == 0, "%s", cc_last_error());
    REQUIRE(cc_index_add(one, 10, x + n * d) == 0);
    int64_t rm[4] = {1, 95, 96, 5000};
    CHECK(cc_shards_remove(&sh, mpath, 4, rm) == 3, "%s", cc_last_error());
    CHECK(cc_index_remove(one, 4, rm) == 3);
    cc_shards_close(&sh);
    REQUIRE(cc_shards_open(mpath, &sh) == 0, "%s", cc_last_error());
    /* 90..99: shards 0 1 2 0 1 2 0 1 2 0 -> +4 +3 +3; removed 1 (shard 1), 95 (2), 96 (0) */
    CHECK(sh.m.counts[0] == 33 && sh.m.counts[1] == 32 && sh.m.counts[2] == 32, "counts %lld %lld %lld",
          (long long)sh.m.counts[0], (long long)sh.m.counts[1], (long long)sh.m.counts[2]);
    int64_t ids1[6 * 5], ids3[6 * 5];
    float sc1[6 * 5], sc3[6 * 5];
    REQUIRE(cc_index_search(one, nq, q, k, ids1, sc1) == 0);
    REQUIRE(cc_shards_search(&sh, nq, q, k, NULL, ids3, sc3) == 0, "%s", cc_last_error());
    CHECK(memcmp(ids1, ids3, sizeof ids1) == 0 && memcmp(sc1, sc3, sizeof sc1) == 0, "sharded search differs");
    cc_shards_close(&sh);
    /* only the manifest's own files remain: 3 shards, replaced ones deleted */
    list_dir(after, sizeof after);
    CHECK(!strcmp(after, "s.manifest\ns.manifest.shard0\ns.manifest.shard1\ns.manifest.shard2\n"), "files: %s", after);
    cc_index_free(one);
    free(x);
    free(q);
}
