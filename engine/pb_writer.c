/* pb_writer.c — Protocol Buffers wire-format encoder over segment lists (see pb_writer.h). */
#include "engine/pb_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

void cc_pb_init(cc_pb *pb) { memset(pb, 0, sizeof *pb); }

void cc_pb_free(cc_pb *pb) {
    for (int i = 0; i < pb->n_segments; i++) free(pb->segments[i].owned);
    free(pb->segments);
    memset(pb, 0, sizeof *pb);
}

int cc_pb_failed(const cc_pb *pb) { return pb->failed; }

static cc_pb_segment *new_segment(cc_pb *pb) {
    if (pb->n_segments == pb->cap_segments) {
        int cap = pb->cap_segments ? pb->cap_segments * 2 : 8;
        cc_pb_segment *grown = cc_realloc(pb->segments, (size_t)cap * sizeof *grown, "protobuf segments");
        if (!grown) {
            pb->failed = 1;
            return NULL;
        }
        pb->segments = grown;
        pb->cap_segments = cap;
    }
    cc_pb_segment *s = &pb->segments[pb->n_segments++];
    memset(s, 0, sizeof *s);
    return s;
}

/* Copies bytes to the end of the message (into the last owned segment when there is one). */
static void put(cc_pb *pb, const void *data, size_t len) {
    if (pb->failed || len == 0) return;
    cc_pb_segment *s = pb->n_segments ? &pb->segments[pb->n_segments - 1] : NULL;
    if (!s || !s->owned) s = new_segment(pb);
    if (!s) return;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        while (cap < s->len + len) cap *= 2;
        uint8_t *grown = cc_realloc(s->owned, cap, "protobuf bytes");
        if (!grown) {
            pb->failed = 1;
            return;
        }
        s->owned = grown;
        s->cap = cap;
    }
    memcpy(s->owned + s->len, data, len);
    s->len += len;
    pb->size += len;
}

static void put_varint(cc_pb *pb, uint64_t v) {
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) buf[n] |= 0x80;
        n++;
    } while (v);
    put(pb, buf, n);
}

static void put_tag(cc_pb *pb, int field, int wire) { put_varint(pb, ((uint64_t)field << 3) | (uint64_t)wire); }

void cc_pb_int(cc_pb *pb, int field, int64_t value) {
    put_tag(pb, field, WIRE_VARINT);
    put_varint(pb, (uint64_t)value);
}

void cc_pb_float(cc_pb *pb, int field, float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16), (uint8_t)(bits >> 24)};
    put_tag(pb, field, WIRE_FIXED32);
    put(pb, le, 4);
}

void cc_pb_bytes(cc_pb *pb, int field, const void *data, size_t len) {
    put_tag(pb, field, WIRE_LEN);
    put_varint(pb, len);
    put(pb, data, len);
}

void cc_pb_string(cc_pb *pb, int field, const char *s) { cc_pb_bytes(pb, field, s, strlen(s)); }

void cc_pb_bytes_ref(cc_pb *pb, int field, const void *data, size_t len) {
    put_tag(pb, field, WIRE_LEN);
    put_varint(pb, len);
    if (pb->failed || len == 0) return;
    cc_pb_segment *s = new_segment(pb);
    if (!s) return;
    s->borrowed = data;
    s->len = len;
    pb->size += len;
}

void cc_pb_append(cc_pb *pb, cc_pb *sub) {
    if (sub->failed) pb->failed = 1;
    for (int i = 0; i < sub->n_segments && !pb->failed; i++) {
        cc_pb_segment *s = new_segment(pb);
        if (!s) break;
        *s = sub->segments[i];
        sub->segments[i].owned = NULL; /* moved */
        pb->size += s->len;
    }
    cc_pb_free(sub);
}

void cc_pb_message(cc_pb *pb, int field, cc_pb *sub) {
    put_tag(pb, field, WIRE_LEN);
    put_varint(pb, sub->size);
    cc_pb_append(pb, sub);
}

int cc_pb_write(const cc_pb *pb, const char *path) {
    if (pb->failed) {
        cc_set_error("%s: out of memory while encoding", path);
        return -1;
    }
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) return -1;
    for (int i = 0; i < pb->n_segments; i++) {
        const cc_pb_segment *s = &pb->segments[i];
        if (fwrite(s->owned ? (const void *)s->owned : s->borrowed, 1, s->len, af.fp) != s->len) break;
    }
    return cc_atomic_commit(&af);
}
