/* fuzz_common.h — helpers shared by the libFuzzer targets in tests/fuzz/ (see tests/fuzz/README.md).
 *
 * Most loaders take a path: fuzz_file() writes the input to a per-process file in /dev/shm (or
 * $TMPDIR when /dev/shm is missing) and returns its path; the directory is removed at exit.
 * fuzz_split() cuts an input into parts at a separator line, for targets that read several files. */
#ifndef CLIPC_FUZZ_COMMON_H
#define CLIPC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

/* Keeps OpenMP and OpenBLAS on one thread: the fuzzer is one process per core. */
static void fuzz_single_thread(void) {
    setenv("OMP_NUM_THREADS", "1", 0);
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
}

static char fuzz_dir_path[256];

static void fuzz_dir_remove(void) {
    if (!fuzz_dir_path[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path);
    if (system(cmd) != 0) { /* nothing more to do */ }
}

/* The per-process directory (created on first use). */
static const char *fuzz_dir(void) {
    if (fuzz_dir_path[0]) return fuzz_dir_path;
    struct stat st;
    const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/clipc-fuzz-%ld", base ? base : "/tmp", (long)getpid());
    mkdir(fuzz_dir_path, 0700);
    atexit(fuzz_dir_remove);
    return fuzz_dir_path;
}

/* Writes data to fuzz_dir()/name; returns the path (a static buffer per call site's slot 0..7). */
static const char *fuzz_file_slot(int slot, const char *name, const void *data, size_t size) {
    static char paths[8][512];
    char *path = paths[slot & 7];
    snprintf(path, sizeof paths[0], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
#define fuzz_file(name, data, size) fuzz_file_slot(0, name, data, size)

/* Splits data at each occurrence of sep (which is dropped) into at most max_parts parts. Returns the
 * number of parts; the last part runs to the end. */
typedef struct fuzz_part {
    const uint8_t *data;
    size_t size;
} fuzz_part;

static int fuzz_split(const uint8_t *data, size_t size, const char *sep, fuzz_part *parts, int max_parts) {
    size_t sep_len = strlen(sep);
    int n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < max_parts - 1) {
        const uint8_t *hit = (size_t)(end - p) >= sep_len ? memmem(p, (size_t)(end - p), sep, sep_len) : NULL;
        if (!hit) break;
        parts[n++] = (fuzz_part){p, (size_t)(hit - p)};
        p = hit + sep_len;
    }
    parts[n++] = (fuzz_part){p, (size_t)(end - p)};
    return n;
}

/* A NUL-terminated copy (malloc'd). */
static char *fuzz_strndup(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Index files (docs/FORMATS.md, "Index file") carry a CRC-32 per section, of the section table and of
 * the header, and the file size: a mutated file nearly always fails those checks first. This writes
 * into a copy of the input the CRCs and size that make it pass them, so that the checks behind
 * (sizes, offsets, structure) see the mutations. Returns the malloc'd copy. */
static void fuzz_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t fuzz_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t *fuzz_index_fix_crcs(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (size < 128 || memcmp(copy, "CLIPCIDX", 8) != 0) return copy;
    uint32_t n_sections = (uint32_t)copy[48] | (uint32_t)copy[49] << 8 | (uint32_t)copy[50] << 16 | (uint32_t)copy[51] << 24;
    if (n_sections > 32) n_sections = 32;
    for (uint32_t i = 0; i < n_sections && 128 + 32 * (size_t)(i + 1) <= size; i++) {
        uint8_t *entry = copy + 128 + 32 * (size_t)i;
        uint64_t offset = fuzz_get_u64(entry + 8), length = fuzz_get_u64(entry + 16);
        if (offset <= size && length <= size - offset)
            fuzz_put_u32(entry + 24, (uint32_t)crc32(0, copy + offset, (uInt)length));
    }
    for (int i = 0; i < 8; i++) copy[56 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    if (128 + 32 * (size_t)n_sections <= size)
        fuzz_put_u32(copy + 120, (uint32_t)crc32(0, copy + 128, (uInt)(32 * n_sections)));
    fuzz_put_u32(copy + 124, (uint32_t)crc32(0, copy, 124));
    return copy;
}

#endif
