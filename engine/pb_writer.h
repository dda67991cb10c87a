/* pb_writer.h — a small Protocol Buffers encoder (wire format only: varints, 32-bit floats,
 * length-delimited fields), enough to write ONNX files (engine/onnx_export.c).
 *
 * A message is a list of segments: bytes it owns, or bytes it only points to (large tensors are
 * never copied). A nested message is encoded into its own cc_pb and then appended to its parent
 * with cc_pb_message, which moves the segments over: lengths are known without a second pass.
 * Out of memory is sticky: every later call does nothing, and cc_pb_failed / cc_pb_write report it.
 */
#ifndef CLIPC_PB_WRITER_H
#define CLIPC_PB_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cc_pb_segment {
    uint8_t *owned;     /* bytes owned by the segment (growable), or NULL */
    const void *borrowed;
    size_t len, cap;
} cc_pb_segment;

typedef struct cc_pb {
    cc_pb_segment *segments;
    int n_segments, cap_segments;
    size_t size; /* encoded bytes so far */
    int failed;
} cc_pb;

void cc_pb_init(cc_pb *pb);
void cc_pb_free(cc_pb *pb);
int cc_pb_failed(const cc_pb *pb);

/* Scalar fields (wire type 0: int32/int64/enum/bool; negative values take 10 bytes, as protobuf). */
void cc_pb_int(cc_pb *pb, int field, int64_t value);
/* float (wire type 5). */
void cc_pb_float(cc_pb *pb, int field, float value);
/* Length-delimited: bytes copied / a NUL-terminated string copied / bytes referenced, which must
 * stay valid until the message is written or freed. */
void cc_pb_bytes(cc_pb *pb, int field, const void *data, size_t len);
void cc_pb_string(cc_pb *pb, int field, const char *s);
void cc_pb_bytes_ref(cc_pb *pb, int field, const void *data, size_t len);
/* Appends sub as field `field` of pb; sub is emptied (and may be reused or freed). */
void cc_pb_message(cc_pb *pb, int field, cc_pb *sub);

/* Appends sub's encoded fields as they are (no tag: for repeated fields gathered separately). */
void cc_pb_append(cc_pb *pb, cc_pb *sub);

/* Writes the encoded message to path atomically (temp file + rename). Errors name the file. */
int cc_pb_write(const cc_pb *pb, const char *path);

#endif
