/* tar.h — a reader of POSIX ustar / GNU tar archives (headers only: bodies are located, not read), and
 * a writer of plain ustar members. Used for WebDataset shards (data/webdataset.c).
 *
 * Every header is checked before it is used: the magic ("ustar\0" "00" or GNU's "ustar  \0"), the
 * checksum, the octal (or GNU base-256) size field, and the body against the file's size. Long names
 * come from GNU 'L' members and pax 'x' "path" records (pax "size" overrides the header's size);
 * names longer than CC_TAR_MAX_NAME are skipped with their member and counted. Only regular files
 * are returned; directories, links, pax globals and other types are skipped and counted.
 * The archive is read through a callback, so the same code walks a file (pread) or memory (fuzzing).
 */
#ifndef CLIPC_TAR_H
#define CLIPC_TAR_H

#include <stdint.h>
#include <stdio.h>

#define CC_TAR_BLOCK 512
#define CC_TAR_MAX_NAME 4096       /* longest member name kept (PATH_MAX); longer ones are skipped */
#define CC_TAR_MAX_PAX (1 << 20)   /* largest pax extended header read (bytes): they hold a few records */

/* Reads n bytes at offset into buf: 0, or -1 when they are not all there. */
typedef int (*cc_tar_read_fn)(void *ctx, uint64_t offset, void *buf, size_t n);

typedef struct cc_tar_member {
    char name[CC_TAR_MAX_NAME + 1];
    uint64_t header_offset;        /* of its (first) header */
    uint64_t offset, size;         /* of its body */
} cc_tar_member;

typedef struct cc_tar_reader {
    const char *name;              /* for errors */
    uint64_t file_size, pos;       /* pos: the next header */
    cc_tar_read_fn read;
    void *ctx;
    int done;
    int64_t n_long_names_skipped;  /* members skipped: name longer than CC_TAR_MAX_NAME */
    int64_t n_other_skipped;       /* directories, links, devices, pax globals, ... */
    /* from a GNU 'L' or pax 'x' member, for the next header */
    char long_name[CC_TAR_MAX_NAME + 1];
    int have_long_name, long_name_too_long;
    uint64_t pax_size;
    int have_pax_size;
} cc_tar_reader;

void cc_tar_reader_init(cc_tar_reader *r, const char *name, uint64_t file_size, cc_tar_read_fn read, void *ctx);
/* The next regular file: 1 and *m; 0 at the end of the archive (two zero blocks, one and the end of
 * the file, or the end of the file at a header boundary); -1 on a bad header (the error names the
 * file, the header's offset and what is wrong; the reader then stays at that header). */
int cc_tar_next(cc_tar_reader *r, cc_tar_member *m);

/* pread on an open file descriptor (ctx points to an int). */
int cc_tar_read_fd(void *ctx, uint64_t offset, void *buf, size_t n);

/* Appends a regular-file member (ustar header, body, zero padding) to fp; the name must fit the
 * ustar name field (at most 100 bytes). Then cc_tar_write_end writes the two zero blocks. */
int cc_tar_write_member(FILE *fp, const char *name, const void *data, uint64_t size);
int cc_tar_write_end(FILE *fp);

#endif
