/* test_pb_writer.c — tests of engine/pb_writer (the protobuf encoder behind ONNX export): the
 * documented wire-format examples, and random messages decoded back by an independent reader. */
#include <stdlib.h>
#include <string.h>

#include "engine/pb_writer.h"
#include "engine/util.h"
#include "tests/test.h"

/* Encodes pb by writing it to a file and reading it back. */
static uint8_t *encoded(const cc_pb *pb, size_t *size) {
    const char *path = test_path("msg.pb");
    if (cc_pb_write(pb, path) != 0) return NULL;
    char *data;
    if (cc_read_file(path, &data, size) != 0) return NULL;
    return (uint8_t *)data;
}

TEST(pb_writer_wire_format_examples) {
    /* protobuf's encoding guide: field 1 = 150 -> 08 96 01; field 2 = "testing" -> 12 07 74 65 73 74 69 6e 67;
     * field 3 = message{field 1 = 150} -> 1a 03 08 96 01; -1 as int64 takes ten bytes */
    cc_pb pb, sub;
    cc_pb_init(&pb);
    cc_pb_init(&sub);
    cc_pb_int(&pb, 1, 150);
    cc_pb_string(&pb, 2, "testing");
    cc_pb_int(&sub, 1, 150);
    cc_pb_message(&pb, 3, &sub);
    cc_pb_int(&pb, 4, -1);
    cc_pb_float(&pb, 5, 1.0f);
    static const uint8_t want[] = {0x08, 0x96, 0x01, 0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g', 0x1a, 0x03,
                                   0x08, 0x96, 0x01, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0x01, 0x2d, 0x00, 0x00, 0x80, 0x3f};
    size_t size = 0;
    uint8_t *got = encoded(&pb, &size);
    REQUIRE(got, "%s", cc_last_error());
    CHECK(size == sizeof want && pb.size == sizeof want, "size %zu, want %zu", size, sizeof want);
    for (size_t i = 0; i < size && i < sizeof want; i++) CHECK(got[i] == want[i], "byte %zu: %02x, want %02x", i, got[i], want[i]);
    free(got);
    cc_pb_free(&pb);
}

/* ---- an independent reader: varints and length-delimited fields */
static int read_varint(const uint8_t *p, size_t size, size_t *at, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70 && *at < size; shift += 7) {
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

TEST(pb_writer_random_messages_decode) {
    cc_rng rng;
    cc_rng_seed(&rng, test_seed());
    enum { N = 200 };
    int64_t values[N];
    float *blob = malloc(1000 * sizeof(float));
    for (int i = 0; i < 1000; i++) blob[i] = cc_rng_normal(&rng);
    cc_pb pb;
    cc_pb_init(&pb);
    /* entries: field (i % 3) + 1: 1 = int, 2 = borrowed bytes of a blob slice, 3 = nested {1: int} */
    size_t offsets[N], lengths[N];
    for (int i = 0; i < N; i++) {
        values[i] = (int64_t)(cc_rng_u64(&rng) >> (cc_rng_below(&rng, 64)));
        if (cc_rng_below(&rng, 4) == 0) values[i] = -values[i];
        offsets[i] = cc_rng_below(&rng, 500);
        lengths[i] = cc_rng_below(&rng, 500) * sizeof(float);
        if (i % 3 == 0) cc_pb_int(&pb, 1, values[i]);
        else if (i % 3 == 1) cc_pb_bytes_ref(&pb, 2, blob + offsets[i], lengths[i]);
        else {
            cc_pb sub;
            cc_pb_init(&sub);
            cc_pb_int(&sub, 1, values[i]);
            cc_pb_message(&pb, 3, &sub);
        }
    }
    size_t size = 0;
    uint8_t *p = encoded(&pb, &size);
    REQUIRE(p, "%s", cc_last_error());
    CHECK(size == pb.size);
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        uint64_t tag = 0, v = 0;
        REQUIRE(read_varint(p, size, &at, &tag) == 0, "entry %d: truncated tag", i);
        int field = (int)(tag >> 3), wire = (int)(tag & 7);
        REQUIRE(field == i % 3 + 1, "entry %d: field %d", i, field);
        if (field == 1) {
            CHECK(wire == 0 && read_varint(p, size, &at, &v) == 0 && (int64_t)v == values[i], "entry %d", i);
        } else {
            REQUIRE(wire == 2 && read_varint(p, size, &at, &v) == 0 && at + v <= size, "entry %d: length", i);
            if (field == 2) {
                CHECK(v == lengths[i] && !memcmp(p + at, blob + offsets[i], lengths[i]), "entry %d: bytes", i);
            } else {
                size_t inner = at;
                uint64_t t = 0, x = 0;
                CHECK(read_varint(p, at + v, &inner, &t) == 0 && t == 8, "entry %d: nested tag", i);
                CHECK(read_varint(p, at + v, &inner, &x) == 0 && (int64_t)x == values[i] && inner == at + v,
                      "entry %d: nested value", i);
            }
            at += v;
        }
    }
    CHECK(at == size, "%zu of %zu bytes decoded", at, size);
    free(p);
    free(blob);
    cc_pb_free(&pb);
}
