/* cli.c — option parsing and generated --help for subcommands (see cli.h). */
#include "tools/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/clip.h"
#include "engine/util.h"

int cc_strlist_push(cc_strlist *list, const char *item) {
    if (list->count == list->cap) {
        int cap = list->cap ? list->cap * 2 : 8;
        const char **grown = cc_realloc(list->items, (size_t)cap * sizeof *grown, "string list");
        if (!grown) return -1;
        list->items = grown;
        list->cap = cap;
    }
    list->items[list->count++] = item;
    return 0;
}

void cc_strlist_free(cc_strlist *list) {
    free(list->items);
    memset(list, 0, sizeof *list);
}

static int threads_option = 0;

static const cc_option common_options[] = {
    {"--threads", CC_OPT_INT, NULL, "N", "worker threads (default: all cores)"},
    {"--quiet", CC_OPT_FLAG, &cc_quiet, NULL, "no progress output, only the final summary"},
    {"--help", CC_OPT_FLAG, NULL, NULL, "show this help"},
    {0},
};

void cc_print_help(const cc_command *cmd, const cc_option *options) {
    printf("usage: clipc %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->summary);
    for (int pass = 0; pass < 2; pass++) {
        const cc_option *table = pass == 0 ? options : common_options;
        for (const cc_option *opt = table; opt && opt->name; opt++) {
            char left[64];
            snprintf(left, sizeof left, "%s%s%s", opt->name, opt->metavar ? " " : "", opt->metavar ? opt->metavar : "");
            printf("  %-28s  %s\n", left, opt->help);
        }
    }
}

int cc_apply_precision(const cc_command *cmd, const char *name) {
    cc_precision precision;
    if (cc_precision_parse(name, &precision) != 0) {
        fprintf(stderr, "clipc %s: --precision: %s\n", cmd->name, cc_last_error());
        return -1;
    }
    if (cc_clip_set_default_precision(precision) != 0)
        fprintf(stderr, "clipc %s: warning: %s; running in f32\n", cmd->name, cc_last_error());
    return 0;
}

int cc_command_error(const cc_command *cmd, const char *message) {
    fprintf(stderr, "clipc %s: %s\n", cmd->name, message);
    return 1;
}

static int parse_value(const cc_command *cmd, const cc_option *opt, const char *value) {
    char *end;
    errno = 0;
    switch (opt->kind) {
    case CC_OPT_STRING: *(const char **)opt->dest = value; return 0;
    case CC_OPT_INT: {
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value) break;
        *(int64_t *)opt->dest = v;
        return 0;
    }
    case CC_OPT_FLOAT: { /* decimal only: strtod alone takes hex (0x10), inf and nan */
        double v = strtod(value, &end);
        if (errno || *end || end == value || value[strspn(value, "0123456789.eE+-")] || !isfinite(v)) break;
        *(double *)opt->dest = v;
        return 0;
    }
    case CC_OPT_LIST: return cc_strlist_push((cc_strlist *)opt->dest, value);
    case CC_OPT_FLAG: return 0;
    }
    fprintf(stderr, "clipc %s: %s expects %s, got '%s'\n", cmd->name, opt->name,
            opt->kind == CC_OPT_INT ? "an integer" : "a number", value);
    return -1;
}

int cc_parse_options(const cc_command *cmd, const cc_option *options, int argc, char **argv,
                     cc_strlist *positional) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cc_print_help(cmd, options);
            return 1;
        }
        if (strcmp(arg, "--threads") == 0) {
            if (i + 1 >= argc) goto missing_value;
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 0 || n > 4096) {
                fprintf(stderr, "clipc %s: --threads expects a count, got '%s'\n", cmd->name, argv[i]);
                return -1;
            }
            threads_option = (int)n;
            cc_set_threads(threads_option);
            continue;
        }
        if (strcmp(arg, "--quiet") == 0) {
            cc_quiet = 1;
            continue;
        }
        /* --name=value is accepted too */
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const cc_option *opt = NULL;
        for (const cc_option *o = options; o && o->name; o++)
            if (strlen(o->name) == name_len && strncmp(o->name, arg, name_len) == 0) opt = o;
        if (!opt) {
            if (arg[0] != '-' || arg[1] == 0) {
                if (positional) {
                    if (cc_strlist_push(positional, arg) != 0) return -1;
                    continue;
                }
                fprintf(stderr, "clipc %s: unexpected argument '%s' (see clipc %s --help)\n", cmd->name, arg, cmd->name);
                return -1;
            }
            fprintf(stderr, "clipc %s: unknown option %s (see clipc %s --help)\n", cmd->name, arg, cmd->name);
            return -1;
        }
        if (opt->kind == CC_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "clipc %s: %s takes no value\n", cmd->name, opt->name);
                return -1;
            }
            *(int *)opt->dest = 1;
            continue;
        }
        if (eq) {
            if (parse_value(cmd, opt, eq + 1) != 0) return -1;
        } else {
            if (i + 1 >= argc) goto missing_value;
            if (parse_value(cmd, opt, argv[++i]) != 0) return -1;
        }
        if (opt->kind == CC_OPT_LIST)
            while (i + 1 < argc && argv[i + 1][0] != '-')
                if (parse_value(cmd, opt, argv[++i]) != 0) return -1;
        continue;
    missing_value:
        fprintf(stderr, "clipc %s: %s needs a value\n", cmd->name, arg);
        return -1;
    }
    return 0;
}
