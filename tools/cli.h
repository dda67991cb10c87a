/* cli.h — option tables for clipc's subcommands.
 *
 * Each subcommand declares a table of cc_option and calls cc_parse_options(); --help output is
 * generated from the same table, so help text and parsing cannot drift apart. Multi-valued options
 * (e.g. --image A --image B, or --image A B) collect into a cc_strlist. */
#ifndef CLIPC_CLI_H
#define CLIPC_CLI_H

#include <stdint.h>

typedef enum {
    CC_OPT_FLAG,   /* int, set to 1 */
    CC_OPT_STRING, /* const char * */
    CC_OPT_INT,    /* int64_t */
    CC_OPT_FLOAT,  /* double */
    CC_OPT_LIST,   /* cc_strlist: repeatable, and takes every following non-option word */
} cc_option_kind;

typedef struct cc_strlist {
    int count;
    int cap;
    const char **items;
} cc_strlist;
int cc_strlist_push(cc_strlist *list, const char *item);
void cc_strlist_free(cc_strlist *list);

typedef struct cc_option {
    const char *name;    /* "--model" */
    cc_option_kind kind;
    void *dest;
    const char *metavar; /* "DIR"; NULL for flags */
    const char *help;
} cc_option;

typedef struct cc_command {
    const char *name;    /* "embed" or "index build" */
    const char *usage;   /* one-line synopsis after "clipc NAME " */
    const char *summary; /* one sentence */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cc_command;

/* Parses argv[1..] against the table. Returns 0 on success, 1 when --help was printed (caller
 * exits 0), -1 on error (message printed, caller exits 2). Every command also accepts --quiet and
 * --threads N (applied immediately). Positional words are rejected unless positional != NULL, in
 * which case they are collected there. */
int cc_parse_options(const cc_command *cmd, const cc_option *options, int argc, char **argv,
                     cc_strlist *positional);
void cc_print_help(const cc_command *cmd, const cc_option *options);

/* --precision NAME of the embedding commands: sets the precision of the models the command loads.
 * A bad name: message, returns -1 (exit 2). A CPU without the instructions: a warning, f32, 0. */
#define CC_PRECISION_HELP "f32 (default), bf16 (CPUs with AVX512_BF16) or int8 (AVX512_VNNI): faster weight products, cosine to f32 >= 0.999 (bf16), ~0.99 (int8)"
int cc_apply_precision(const cc_command *cmd, const char *name);

/* Prints "clipc NAME: <message>" to stderr; returns 1 (the exit status for runtime errors). */
/* The help of every command's --style option. */
#define CC_STYLE_HELP "image preprocessing: openai (clip.load's transform, default) or hf (transformers' CLIPImageProcessor)"

int cc_command_error(const cc_command *cmd, const char *message);

#endif
