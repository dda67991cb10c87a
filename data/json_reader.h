/* json_reader.h — internal to data/: a pull parser over a JSON text in memory, for the dataset files
 * (COCO captions, Karpathy splits) which can be 100+ MB: nothing is built but what the caller keeps.
 * Every error names the file, line and column. Nesting is limited (JSON_MAX_DEPTH) and values are
 * skipped without recursion, so hostile input cannot exhaust the stack.
 */
#ifndef CLIPC_JSON_READER_H
#define CLIPC_JSON_READER_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 512

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT, JSON_BAD } json_type;

typedef struct json_reader {
    const char *text, *end, *at;
    const char *name;   /* file name for errors */
    char *scratch;      /* the last string read (decoded, NUL-terminated) */
    size_t scratch_cap;
    int64_t invalid_utf8; /* invalid UTF-8 sequences replaced in strings read */
    int failed;
} json_reader;

void json_init(json_reader *r, const char *text, size_t len, const char *name);
void json_free(json_reader *r);
/* Sets "NAME: malformed JSON at line L, column C: WHAT" (once; later errors keep the first). */
int json_error(json_reader *r, const char *what);

json_type json_peek(json_reader *r);
/* Objects: json_object_begin, then while json_object_next(r, &key) reads a key (valid until the next
 * string read) and the caller reads or skips its value. Returns 1 for a key, 0 at '}', -1 on error. */
int json_object_begin(json_reader *r);
int json_object_next(json_reader *r, const char **key);
/* Arrays likewise: 1 = an element follows, 0 = ']', -1 = error. */
int json_array_begin(json_reader *r);
int json_array_next(json_reader *r);
/* A string (escapes decoded, \u0000 kept, invalid UTF-8 and lone surrogates as U+FFFD and counted);
 * *len may be NULL. The result lives in r->scratch until the next string read. */
int json_string(json_reader *r, const char **out, size_t *len);
/* A number as a double, or as an integer (which must be integral and within int64). */
int json_number(json_reader *r, double *out);
int json_int64(json_reader *r, int64_t *out);
int json_skip(json_reader *r);
/* After the top-level value: only whitespace may remain. */
int json_end(json_reader *r);

#endif
