/* tar.c — the ustar / GNU tar reader and writer of tar.h.
 *
 * Header layout (POSIX.1-1988 ustar; offsets in the 512-byte block):
 *   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]  136 mtime[12]  148 chksum[8]
 *   156 typeflag  157 linkname[100]  257 magic[6]  263 version[2]  265 uname[32]  297 gname[32]
 *   329 devmajor[8]  337 devminor[8]  345 prefix[155] (ustar only; GNU keeps other fields there)
 * Numbers are octal text ending in NUL or space; GNU writes sizes >= 8 GiB in base-256 (high bit set).
 * The checksum is the sum of the header's bytes with the chksum field read as eight spaces.
 */
#include "data/tar.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/util.h"

#define MAX_MEMBER_SIZE (UINT64_C(1) << 62) /* keeps offset arithmetic far from overflow */

void cc_tar_reader_init(cc_tar_reader *r, const char *name, uint64_t file_size, cc_tar_read_fn read, void *ctx) {
    memset(r, 0, sizeof *r);
    r->name = name;
    r->file_size = file_size;
    r->read = read;
    r->ctx = ctx;
}

int cc_tar_read_fd(void *ctx, uint64_t offset, void *buf, size_t n) {
    int fd = *(int *)ctx;
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(fd, (char *)buf + done, n - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Header fields                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* An octal field: optional leading spaces, 1+ octal digits, then only NUL or space. 0 or -1. */
static int parse_octal(const uint8_t *field, size_t width, uint64_t *out) {
    size_t i = 0;
    while (i < width && field[i] == ' ') i++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < width && field[i] >= '0' && field[i] <= '7'; i++, digits++) {
        if (v > (UINT64_MAX >> 3)) return -1;
        v = v * 8 + (uint64_t)(field[i] - '0');
    }
    if (digits == 0) return -1;
    for (; i < width; i++)
        if (field[i] != 0 && field[i] != ' ') return -1;
    *out = v;
    return 0;
}

/* The size field: octal, or GNU base-256 (first byte 0x80, big-endian value in the rest). */
static int parse_size(const uint8_t *field, uint64_t *out) {
    if (field[0] == 0x80) {
        uint64_t v = 0;
        for (int i = 1; i < 12; i++) {
            if (v > (UINT64_MAX >> 8)) return -1;
            v = (v << 8) | field[i];
        }
        *out = v;
        return 0;
    }
    return parse_octal(field, 12, out);
}

static void header_checksums(const uint8_t *h, uint64_t *sum_unsigned, int64_t *sum_signed) {
    uint64_t u = 0;
    int64_t s = 0;
    for (int i = 0; i < CC_TAR_BLOCK; i++) {
        int in_field = i >= 148 && i < 156;
        u += in_field ? ' ' : h[i];
        s += in_field ? ' ' : (int8_t)h[i];
    }
    *sum_unsigned = u;
    *sum_signed = s;
}

static int is_zero_block(const uint8_t *h) {
    for (int i = 0; i < CC_TAR_BLOCK; i++)
        if (h[i]) return 0;
    return 1;
}

/* Copies a field of at most width bytes, up to its first NUL. */
static size_t copy_field(char *out, const uint8_t *field, size_t width) {
    size_t n = strnlen((const char *)field, width);
    memcpy(out, field, n);
    out[n] = 0;
    return n;
}

static int header_error(cc_tar_reader *r, const char *what) {
    cc_set_error("%s: tar header at offset %llu: %s", r->name, (unsigned long long)r->pos, what);
    return -1;
}

/* Checks magic, checksum and size; *ustar says whether the prefix field is a name prefix. */
static int check_header(cc_tar_reader *r, const uint8_t *h, uint64_t *size, int *ustar) {
    char what[160];
    *ustar = memcmp(h + 257, "ustar\0", 6) == 0;
    int gnu = memcmp(h + 257, "ustar  \0", 8) == 0;
    if (!*ustar && !gnu) return header_error(r, "no ustar or GNU tar magic (not a tar file, or a pre-POSIX one)");
    uint64_t stored, sum_u;
    int64_t sum_s;
    if (parse_octal(h + 148, 8, &stored) != 0) return header_error(r, "the checksum field is not octal");
    header_checksums(h, &sum_u, &sum_s);
    if (stored != sum_u && (int64_t)stored != sum_s) {
        snprintf(what, sizeof what, "bad checksum (stored %llu, computed %llu)", (unsigned long long)stored,
                 (unsigned long long)sum_u);
        return header_error(r, what);
    }
    if (parse_size(h + 124, size) != 0) return header_error(r, "the size field is not octal");
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Long names: GNU 'L' and pax 'x'                                                                */
/* ---------------------------------------------------------------------------------------------- */

static void set_long_name(cc_tar_reader *r, const char *name, size_t len) {
    r->have_long_name = 1;
    r->long_name_too_long = len > CC_TAR_MAX_NAME;
    if (r->long_name_too_long) len = 0;
    memcpy(r->long_name, name, len);
    r->long_name[len] = 0;
}

/* A GNU 'L' body: the name, NUL-terminated (the first NUL ends it). */
static int read_gnu_long_name(cc_tar_reader *r, uint64_t offset, uint64_t size) {
    if (size > CC_TAR_MAX_NAME + 1) {
        r->have_long_name = 1;
        r->long_name_too_long = 1;
        r->long_name[0] = 0;
        return 0;
    }
    char buf[CC_TAR_MAX_NAME + 2];
    if (r->read(r->ctx, offset, buf, (size_t)size) != 0) return header_error(r, "cannot read the GNU long name");
    buf[size] = 0;
    set_long_name(r, buf, strlen(buf));
    return 0;
}

/* One pax record "LEN key=value\n" at p (left bytes): applies path/size; returns its length or -1. */
static long pax_record(cc_tar_reader *r, const char *p, size_t left) {
    size_t len = 0, i = 0;
    while (i < left && i < 12 && p[i] >= '0' && p[i] <= '9') len = len * 10 + (size_t)(p[i++] - '0');
    if (i == 0 || i >= left || p[i] != ' ' || len <= i + 1 || len > left || p[len - 1] != '\n') return -1;
    const char *key = p + i + 1, *end = p + len - 1;
    const char *eq = memchr(key, '=', (size_t)(end - key));
    if (!eq) return -1;
    size_t key_len = (size_t)(eq - key), value_len = (size_t)(end - eq - 1);
    const char *value = eq + 1;
    if (key_len == 4 && memcmp(key, "path", 4) == 0) {
        set_long_name(r, value, strnlen(value, value_len));
    } else if (key_len == 4 && memcmp(key, "size", 4) == 0) {
        uint64_t v = 0;
        if (value_len == 0 || value_len > 19) return -1;
        for (size_t k = 0; k < value_len; k++) {
            if (value[k] < '0' || value[k] > '9') return -1;
            v = v * 10 + (uint64_t)(value[k] - '0');
        }
        r->pax_size = v;
        r->have_pax_size = 1;
    }
    return (long)len;
}

static int read_pax(cc_tar_reader *r, uint64_t offset, uint64_t size) {
    if (size > CC_TAR_MAX_PAX) return header_error(r, "pax extended header larger than 1 MiB");
    char *body = cc_malloc((size_t)size + 1, "pax header");
    if (!body) return -1;
    int rc = r->read(r->ctx, offset, body, (size_t)size) == 0 ? 0 : header_error(r, "cannot read the pax header");
    for (size_t at = 0; rc == 0 && at < size;) {
        if (body[at] == 0) break; /* zero padding after the records */
        long len = pax_record(r, body + at, (size_t)size - at);
        if (len < 0) rc = header_error(r, "malformed pax record (not \"LEN key=value\\n\")");
        else at += (size_t)len;
    }
    free(body);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Walking the archive                                                                            */
/* ---------------------------------------------------------------------------------------------- */

static void clear_pending(cc_tar_reader *r) {
    r->have_long_name = r->long_name_too_long = r->have_pax_size = 0;
    r->long_name[0] = 0;
}

/* The member's full name from a pending long name, else the ustar prefix + name. */
static void member_name(cc_tar_reader *r, const uint8_t *h, int ustar, cc_tar_member *m) {
    if (r->have_long_name) {
        memcpy(m->name, r->long_name, strlen(r->long_name) + 1);
        return;
    }
    size_t n = 0;
    if (ustar && h[345]) {
        n = copy_field(m->name, h + 345, 155);
        m->name[n++] = '/';
    }
    copy_field(m->name + n, h, 100);
}

int cc_tar_next(cc_tar_reader *r, cc_tar_member *m) {
    for (;;) {
        if (r->done || r->pos == r->file_size) return 0;
        uint8_t h[CC_TAR_BLOCK];
        if (r->pos > r->file_size || r->file_size - r->pos < CC_TAR_BLOCK || r->read(r->ctx, r->pos, h, sizeof h) != 0)
            return header_error(r, r->pos == 0 ? "the file is shorter than one tar header (not a tar file)"
                                               : "truncated (the file ends inside the header)");
        if (is_zero_block(h)) { /* end of archive */
            r->done = 1;
            return 0;
        }
        uint64_t size;
        int ustar;
        if (check_header(r, h, &size, &ustar) != 0) return -1;
        char type = (char)h[156];
        if (r->have_pax_size && type != 'x' && type != 'L') size = r->pax_size;
        uint64_t body = r->pos + CC_TAR_BLOCK;
        if (size > MAX_MEMBER_SIZE || size > r->file_size - body) {
            char what[200];
            snprintf(what, sizeof what, "member size %llu runs past the end of the file (%llu bytes)",
                     (unsigned long long)size, (unsigned long long)r->file_size);
            return header_error(r, what);
        }
        if (type == 'L' || type == 'x') {
            if ((type == 'L' ? read_gnu_long_name(r, body, size) : read_pax(r, body, size)) != 0) return -1;
        }
        uint64_t header_offset = r->pos;
        r->pos = body + (size + CC_TAR_BLOCK - 1) / CC_TAR_BLOCK * CC_TAR_BLOCK;
        if (type == 'L' || type == 'x') continue; /* applies to the next header */
        int regular = type == '0' || type == 0 || type == '7';
        if (!regular || r->long_name_too_long) {
            if (regular) r->n_long_names_skipped++;
            else r->n_other_skipped++;
            clear_pending(r);
            continue;
        }
        member_name(r, h, ustar, m);
        clear_pending(r);
        m->header_offset = header_offset;
        m->offset = body;
        m->size = size;
        return 1;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void put_octal(uint8_t *field, size_t width, uint64_t v) {
    /* width - 1 digits, zero padded, then NUL */
    for (size_t i = width - 1; i-- > 0; v >>= 3) field[i] = (uint8_t)('0' + (v & 7));
    field[width - 1] = 0;
}

int cc_tar_write_member(FILE *fp, const char *name, const void *data, uint64_t size) {
    size_t len = strlen(name);
    if (len == 0 || len > 100) {
        cc_set_error("tar: member name '%s' does not fit a ustar header (1..100 bytes)", name);
        return -1;
    }
    if (size >= (UINT64_C(1) << 33)) {
        cc_set_error("tar: member %s is %llu bytes, over the 8 GiB of a ustar size field", name, (unsigned long long)size);
        return -1;
    }
    uint8_t h[CC_TAR_BLOCK];
    memset(h, 0, sizeof h);
    memcpy(h, name, len);
    put_octal(h + 100, 8, 0644);
    put_octal(h + 108, 8, 0);
    put_octal(h + 116, 8, 0);
    put_octal(h + 124, 12, size);
    put_octal(h + 136, 12, 0);
    h[156] = '0';
    memcpy(h + 257, "ustar\0" "00", 8);
    uint64_t sum;
    int64_t unused;
    header_checksums(h, &sum, &unused);
    put_octal(h + 148, 7, sum); /* six digits, NUL, then a space */
    h[155] = ' ';
    static const uint8_t zeros[CC_TAR_BLOCK];
    size_t pad = (size_t)((CC_TAR_BLOCK - size % CC_TAR_BLOCK) % CC_TAR_BLOCK);
    if (fwrite(h, 1, sizeof h, fp) != sizeof h || (size && fwrite(data, 1, (size_t)size, fp) != size) ||
        (pad && fwrite(zeros, 1, pad, fp) != pad)) {
        cc_set_error("tar: cannot write member %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int cc_tar_write_end(FILE *fp) {
    static const uint8_t zeros[2 * CC_TAR_BLOCK];
    if (fwrite(zeros, 1, sizeof zeros, fp) != sizeof zeros) {
        cc_set_error("tar: cannot write the end of the archive: %s", strerror(errno));
        return -1;
    }
    return 0;
}
