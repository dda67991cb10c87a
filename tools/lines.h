/* lines.h — reading a text file as lines (image lists, caption files) for the CLI. */
#ifndef CLIPC_LINES_H
#define CLIPC_LINES_H

#include <stdint.h>

typedef struct cc_lines {
    char *data;      /* the file, with line ends replaced by NULs */
    char **lines;    /* pointers into data */
    int64_t count;
} cc_lines;

/* Reads every line (without its "\n" or "\r\n"). skip_empty drops blank lines. */
int cc_lines_read(const char *path, int skip_empty, cc_lines *out);
void cc_lines_free(cc_lines *lines);

#endif
