/* test_data_tar.c — the tar reader (data/tar.c) on archives written by Python's tarfile (GNU, pax and
 * ustar formats, long names; tests/reference/tar_ref.py) and on broken headers; WebDataset shards
 * (data/webdataset.c): spec expansion, grouping by key, skipped samples, and the writer read back. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/tar.h"
#include "data/webdataset.h"
#include "engine/util.h"
#include "tests/test.h"

/* ---- reading an archive from memory ---- */

typedef struct mem {
    const uint8_t *data;
    size_t size;
} mem;

static int mem_read(void *ctx, uint64_t offset, void *buf, size_t n) {
    mem *m = ctx;
    if (offset > m->size || m->size - offset < n) return -1;
    memcpy(buf, m->data + offset, n);
    return 0;
}

/* Lists the regular files of an archive as "offset size name\n" lines; -1 on a bad header. */
static int list_members(const uint8_t *data, size_t size, char *out, size_t out_size, cc_tar_reader *r) {
    static mem m;
    m = (mem){data, size};
    cc_tar_reader_init(r, "t.tar", size, mem_read, &m);
    cc_tar_member *member = malloc(sizeof *member);
    out[0] = 0;
    int got;
    while ((got = cc_tar_next(r, member)) == 1)
        snprintf(out + strlen(out), out_size - strlen(out), "%llu %llu %s\n", (unsigned long long)member->offset,
                 (unsigned long long)member->size, member->name);
    free(member);
    return got;
}

TEST_SLOW(tar_reads_python_tarfile_gnu_pax_and_ustar) {
    REQUIRE(test_python("tar_ref.py", test_tmpdir(), NULL) == 0);
    static const char *const formats[] = {"gnu", "pax", "ustar"};
    for (int f = 0; f < 3; f++) {
        char path[512], *tar, *want;
        size_t tar_size, want_size;
        snprintf(path, sizeof path, "%s/%s.tar", test_tmpdir(), formats[f]);
        REQUIRE(cc_read_file(path, &tar, &tar_size) == 0, "%s", cc_last_error());
        snprintf(path, sizeof path, "%s/%s.members", test_tmpdir(), formats[f]);
        REQUIRE(cc_read_file(path, &want, &want_size) == 0, "%s", cc_last_error());
        char got[8192];
        cc_tar_reader r;
        CHECK(list_members((const uint8_t *)tar, tar_size, got, sizeof got, &r) == 0, "%s: %s", formats[f], cc_last_error());
        CHECK(strcmp(got, want) == 0, "%s: members\n%s\nwant\n%s", formats[f], got, want);
        CHECK(r.n_other_skipped == 2, "%s: %lld non-files skipped, want 2 (a directory, a symlink)", formats[f],
              (long long)r.n_other_skipped);
        free(tar);
        free(want);
    }
}

/* ---- archives built here: one member, then the header broken in one way ---- */

static size_t build_tar(uint8_t *buf, size_t cap, const char *name, const char *body) {
    char path[512];
    snprintf(path, sizeof path, "%s/one.tar", test_tmpdir());
    FILE *fp = fopen(path, "wb");
    if (!fp || cc_tar_write_member(fp, name, body, strlen(body)) != 0 || cc_tar_write_end(fp) != 0) return 0;
    fclose(fp);
    char *data;
    size_t size;
    if (cc_read_file(path, &data, &size) != 0 || size > cap) return 0;
    memcpy(buf, data, size);
    free(data);
    return size;
}

static void fix_checksum(uint8_t *h) {
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* Expects a bad-header error that names the file and says `what`. */
static void expect_bad(const uint8_t *data, size_t size, const char *what, const char *label) {
    char got[1024];
    cc_tar_reader r;
    int rc = list_members(data, size, got, sizeof got, &r);
    CHECK(rc == -1, "%s: read gave %d, want an error", label, rc);
    if (rc == -1) CHECK(strstr(cc_last_error(), "t.tar") && strstr(cc_last_error(), what), "%s: error '%s' lacks '%s'", label,
                        cc_last_error(), what);
}

TEST(tar_writer_output_reads_back) {
    uint8_t buf[8192];
    size_t n = build_tar(buf, sizeof buf, "000000007.txt", "hello");
    REQUIRE(n == 512 + 512 + 1024);
    char got[1024];
    cc_tar_reader r;
    CHECK(list_members(buf, n, got, sizeof got, &r) == 0, "%s", cc_last_error());
    CHECK(strcmp(got, "512 5 000000007.txt\n") == 0, "%s", got);
    /* the end-of-file at a header boundary also ends the archive (no zero blocks) */
    CHECK(list_members(buf, 1024, got, sizeof got, &r) == 0 && strcmp(got, "512 5 000000007.txt\n") == 0, "%s", got);
}

TEST(tar_rejects_bad_headers) {
    uint8_t good[8192], bad[8192];
    size_t n = build_tar(good, sizeof good, "a.txt", "some caption text");
    REQUIRE(n > 0, "%s", cc_last_error());
    memcpy(bad, good, n);
    bad[0] ^= 1; /* the name changes, the stored checksum does not */
    expect_bad(bad, n, "bad checksum", "checksum");
    memcpy(bad, good, n);
    memcpy(bad + 124, "00000000999", 11);
    fix_checksum(bad);
    expect_bad(bad, n, "size field is not octal", "non-octal size");
    memcpy(bad, good, n);
    memcpy(bad + 124, "0000x000021", 11);
    fix_checksum(bad);
    expect_bad(bad, n, "size field is not octal", "letter in size");
    memcpy(bad, good, n);
    memcpy(bad + 124, "77777777777", 11);
    fix_checksum(bad);
    expect_bad(bad, n, "runs past the end of the file", "size beyond file");
    memcpy(bad, good, n);
    memcpy(bad + 257, "ustaR", 5);
    fix_checksum(bad);
    expect_bad(bad, n, "magic", "magic");
    memcpy(bad, good, n);
    memcpy(bad + 148, "12345z7 ", 8);
    expect_bad(bad, n, "checksum field is not octal", "non-octal checksum");
    expect_bad(good, 520, "runs past the end of the file", "truncated body");
    expect_bad(good, 300, "not a tar file", "shorter than a header");
    expect_bad(good, 1024 + 300, "truncated", "truncated header");
    /* the second header truncated: the first member is still returned, then the error */
    char got[1024];
    cc_tar_reader r;
    CHECK(list_members(good, 1024 + 100, got, sizeof got, &r) == -1 && strstr(got, "a.txt"), "%s", got);
}

TEST(tar_pax_and_gnu_long_names_from_bytes) {
    /* a pax header with a path record and a size record, then a member whose header says size 0 */
    uint8_t buf[8192];
    memset(buf, 0, sizeof buf);
    char name[300];
    memset(name, 'q', 250);
    strcpy(name + 250, ".txt");
    char records[512];
    int len = 0;
    char rec[400];
    snprintf(rec, sizeof rec, " path=%s\n", name);
    int rl = (int)strlen(rec) + 3; /* three digits */
    len += snprintf(records + len, sizeof records - len, "%d%s", rl, rec);
    len += snprintf(records + len, sizeof records - len, "10 size=5\n");
    size_t n = build_tar(buf, sizeof buf, "PaxHeader", records);
    REQUIRE(n > 0);
    buf[156] = 'x';
    fix_checksum(buf);
    size_t body_blocks = ((size_t)len + 511) / 512;
    uint8_t *second = buf + 512 + body_blocks * 512;
    uint8_t tmp[2048];
    size_t m = build_tar(tmp, sizeof tmp, "short.txt", "");
    REQUIRE(m > 0);
    memcpy(second, tmp, 512);
    memcpy(second + 512, "hello", 5);
    memset(second + 1024, 0, 1024);
    size_t total = (size_t)(second - buf) + 2048;
    char got[2048];
    cc_tar_reader r;
    CHECK(list_members(buf, total, got, sizeof got, &r) == 0, "%s", cc_last_error());
    char want[600];
    snprintf(want, sizeof want, "%zu 5 %s\n", (size_t)(second - buf) + 512, name);
    CHECK(strcmp(got, want) == 0, "got %s want %s", got, want);
    /* a malformed record is an error */
    memcpy(buf + 512, "9x", 2);
    CHECK(list_members(buf, total, got, sizeof got, &r) == -1 && strstr(cc_last_error(), "pax"), "%s", cc_last_error());
}

/* ---- shard specs ---- */

static void check_expand(const char *spec, int64_t want_n, const char *first, const char *last) {
    char **paths;
    int64_t n;
    if (cc_shard_spec_expand(spec, &paths, &n) != 0) {
        test_fail_at(__FILE__, __LINE__, "%s: %s", spec, cc_last_error());
        return;
    }
    CHECK(n == want_n, "%s: %lld paths", spec, (long long)n);
    if (n == want_n) {
        CHECK(strcmp(paths[0], first) == 0, "%s: first %s", spec, paths[0]);
        CHECK(strcmp(paths[n - 1], last) == 0, "%s: last %s", spec, paths[n - 1]);
    }
    cc_shard_paths_free(paths, n);
}

TEST(shard_spec_brace_ranges_and_lists) {
    check_expand("s/{00000..00099}.tar", 100, "s/00000.tar", "s/00099.tar");
    check_expand("s/{8..10}.tar", 3, "s/8.tar", "s/10.tar");
    check_expand("s/{0..1}.tar", 2, "s/0.tar", "s/1.tar");
    check_expand("a/{0..1}-{00..02}.tar,b/x.tar", 7, "a/0-00.tar", "b/x.tar");
    check_expand("{a,b}/{0..1}.tar", 4, "a/0.tar", "b/1.tar");
    CHECK(cc_shard_spec_is("s/{0..3}.tar,t.tar") && cc_shard_spec_is("x.tar"));
    CHECK(!cc_shard_spec_is("pairs.tsv") && !cc_shard_spec_is("a.tar,b.tsv") && !cc_shard_spec_is(""));
    static const char *const bad[] = {"s/{3..1}.tar", "s/{0..x}.tar", "s/{0..1.tar", "s/{{0..1}}.tar", "a.tar,,b.tar",
                                      "s/{0..9999999}.tar"};
    for (int i = 0; i < 6; i++) {
        char **paths;
        int64_t n;
        CHECK(cc_shard_spec_expand(bad[i], &paths, &n) != 0, "%s expanded", bad[i]);
        CHECK(strstr(cc_last_error(), "shard spec"), "%s: %s", bad[i], cc_last_error());
    }
}

/* ---- shards as a dataset ---- */

static void add_file(FILE *fp, const char *name, const char *body) {
    if (cc_tar_write_member(fp, name, body, strlen(body)) != 0) test_fail_at(__FILE__, __LINE__, "%s", cc_last_error());
}

TEST(shards_group_by_key_and_count_skips) {
    char path[512];
    snprintf(path, sizeof path, "%s/s0.tar", test_tmpdir());
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    add_file(fp, "a.jpg", "JPEGBYTES");
    add_file(fp, "a.txt", "first caption\n");
    add_file(fp, "dir/b.png", "PNG");
    add_file(fp, "dir/b.json", "{\"text\": \"from json\"}");
    add_file(fp, "c.webp", "W");                 /* no caption */
    add_file(fp, "d.txt", "no image");           /* no image */
    add_file(fp, "e.jpeg", "E");
    add_file(fp, "e.json", "[1, 2]");            /* json without caption */
    add_file(fp, "f.seg.png", "F");              /* key "f", extension "seg.png": not an image */
    add_file(fp, "f.txt", "caption of f");
    add_file(fp, "g.PNG", "G");
    add_file(fp, "g.json", "{\"caption\": \"json caption\"}");
    add_file(fp, "g.txt", "txt wins");
    cc_tar_write_end(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/s{0..0}.tar", test_tmpdir());
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 3, "%lld pairs", (long long)ds.n_pairs);
    CHECK(ds.n_skipped_samples == 4, "%lld skipped", (long long)ds.n_skipped_samples);
    if (ds.n_pairs == 3) {
        CHECK(strcmp(ds.pairs[0].caption, "first caption") == 0, "%s", ds.pairs[0].caption);
        CHECK(strcmp(ds.pairs[1].caption, "from json") == 0, "%s", ds.pairs[1].caption);
        CHECK(strcmp(ds.pairs[2].caption, "txt wins") == 0, "%s", ds.pairs[2].caption);
        char *bytes;
        size_t n;
        REQUIRE(cc_dataset_image_bytes(ds.pairs[0].image, &bytes, &n) == 0, "%s", cc_last_error());
        CHECK(n == 9 && memcmp(bytes, "JPEGBYTES", 9) == 0);
        free(bytes);
        REQUIRE(cc_dataset_image_bytes(ds.pairs[1].image, &bytes, &n) == 0, "%s", cc_last_error());
        CHECK(n == 3 && memcmp(bytes, "PNG", 3) == 0);
        CHECK(strstr(ds.pairs[1].image, "/dir/b.png") != NULL, "%s", ds.pairs[1].image);
        free(bytes);
    }
    cc_dataset_free(&ds);
}

TEST(shards_bad_shard_is_an_error_naming_it) {
    char path[512];
    snprintf(path, sizeof path, "%s/notatar.tar", test_tmpdir());
    char text[2048];
    memset(text, 'x', sizeof text);
    REQUIRE(cc_write_file_atomic(path, text, sizeof text) == 0);
    cc_dataset ds;
    CHECK(cc_dataset_read(path, NULL, &ds) != 0);
    CHECK(strstr(cc_last_error(), "notatar.tar") && strstr(cc_last_error(), "magic"), "%s", cc_last_error());
    snprintf(path, sizeof path, "%s/missing{0..1}.tar", test_tmpdir());
    CHECK(cc_dataset_read(path, NULL, &ds) != 0 && strstr(cc_last_error(), "missing0.tar"), "%s", cc_last_error());
}

TEST(shards_corrupt_later_header_keeps_earlier_samples) {
    char path[512];
    snprintf(path, sizeof path, "%s/c.tar", test_tmpdir());
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp);
    add_file(fp, "a.png", "A");
    add_file(fp, "a.txt", "kept");
    add_file(fp, "b.png", "B");
    add_file(fp, "b.txt", "lost");
    cc_tar_write_end(fp);
    fclose(fp);
    /* break the checksum of the third header (b.png at 2048) */
    int fd = open(path, O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, "Z", 1, 2048) == 1);
    close(fd);
    cc_dataset ds;
    REQUIRE(cc_dataset_read(path, NULL, &ds) == 0, "%s", cc_last_error());
    CHECK(ds.n_pairs == 1 && strcmp(ds.pairs[0].caption, "kept") == 0);
    cc_dataset_free(&ds);
}

TEST(shards_writer_round_trip) {
    cc_dataset ds;
    REQUIRE(cc_dataset_init_empty(&ds, test_tmpdir()) == 0);
    static const char *const images[] = {"x.png", "y.JPG", "z.webp"};
    for (int i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "image %d bytes", i);
        REQUIRE(cc_write_file_atomic(test_path(images[i]), body, strlen(body)) == 0);
    }
    CHECK(cc_dataset_add(&ds, "x.png", "cap x") == 0 && cc_dataset_add(&ds, "y.JPG", "cap y") == 0 &&
          cc_dataset_add(&ds, "z.webp", "cap z") == 0 && cc_dataset_add(&ds, "x.png", "cap x again") == 0);
    char dir[512], pattern[1024];
    snprintf(dir, sizeof dir, "%s/shards", test_tmpdir());
    int64_t n_shards;
    REQUIRE(cc_shards_write(&ds, dir, 3, pattern, sizeof pattern, &n_shards) == 0, "%s", cc_last_error());
    CHECK(n_shards == 2 && strstr(pattern, "/shards/{00000..00001}.tar"), "%lld %s", (long long)n_shards, pattern);
    cc_dataset back;
    REQUIRE(cc_dataset_read(pattern, NULL, &back) == 0, "%s", cc_last_error());
    REQUIRE(back.n_pairs == 4, "%lld", (long long)back.n_pairs);
    for (int i = 0; i < 4; i++) {
        CHECK(strcmp(back.pairs[i].caption, ds.pairs[i].caption) == 0, "%s", back.pairs[i].caption);
        char *a, *b, path[4096];
        size_t na, nb;
        REQUIRE(cc_dataset_image_bytes(cc_dataset_image_path(&ds, i, path, sizeof path), &a, &na) == 0);
        REQUIRE(cc_dataset_image_bytes(back.pairs[i].image, &b, &nb) == 0, "%s", cc_last_error());
        CHECK(na == nb && memcmp(a, b, na) == 0, "pair %d bytes differ", i);
        free(a);
        free(b);
    }
    CHECK(strstr(back.pairs[1].image, "/000000001.jpg"), "%s", back.pairs[1].image);
    cc_dataset_free(&back);
    /* an image type shards do not hold is an error naming the file */
    CHECK(cc_dataset_add(&ds, "w.bmp", "bmp") == 0);
    CHECK(cc_shards_write(&ds, dir, 10, pattern, sizeof pattern, &n_shards) != 0 && strstr(cc_last_error(), "w.bmp"),
          "%s", cc_last_error());
    cc_dataset_free(&ds);
}
