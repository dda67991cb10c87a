/* lines.c — see lines.h. */
#include "tools/lines.h"

#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

int cc_lines_read(const char *path, int skip_empty, cc_lines *out) {
    memset(out, 0, sizeof *out);
    size_t size;
    if (cc_read_file(path, &out->data, &size) != 0) return -1;
    int64_t cap = 1;
    for (size_t i = 0; i < size; i++) cap += out->data[i] == '\n';
    out->lines = cc_malloc((size_t)cap * sizeof *out->lines, path);
    if (!out->lines) {
        cc_lines_free(out);
        return -1;
    }
    char *at = out->data, *end = out->data + size;
    while (at < end) {
        char *nl = memchr(at, '\n', (size_t)(end - at));
        char *line_end = nl ? nl : end;
        if (line_end > at && line_end[-1] == '\r') line_end--;
        *line_end = 0;
        if (!skip_empty || line_end > at) out->lines[out->count++] = at;
        if (!nl) break;
        at = nl + 1;
    }
    return 0;
}

void cc_lines_free(cc_lines *lines) {
    free(lines->data);
    free(lines->lines);
    memset(lines, 0, sizeof *lines);
}
