/* main.c — the clipc command: finds the subcommand (one or two words: "embed", "index build")
 * in the table below and runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "tools/commands.h"

#define CLIPC_VERSION "0.1.0"

extern const cc_command cmd_version;
static int run_version(int argc, char **argv) {
    cc_option options[] = {{0}};
    int parsed = argc > 0 ? cc_parse_options(&cmd_version, options, argc, argv, NULL) : 0;
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    printf("clipc %s\n", CLIPC_VERSION);
    return 0;
}

const cc_command cmd_version = {"version", "", "Print the version.", run_version};

/* Every subcommand, in the order --help lists them. */
static const cc_command *const commands[] = {
    &cmd_embed,
    &cmd_train,
    &cmd_eval,
    &cmd_export,
    &cmd_info,
    &cmd_version,
    &cmd_tokenize,
    &cmd_preprocess,
    &cmd_synth,
    &cmd_tokenizer_learn,
    &cmd_shards,
    &cmd_index_build,
    &cmd_index_add,
    &cmd_index_remove,
    &cmd_index_search,
    &cmd_index_tune,
    &cmd_index_info,
    &cmd_search,
    &cmd_classify,
    &cmd_serve,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *out) {
    fprintf(out, "clipc %s — CLIP image-text retrieval engine\n\nusage: clipc COMMAND [options]\n\ncommands:\n",
            CLIPC_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-16s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nRun 'clipc COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return run_version(0, NULL);
    /* two-word commands first ("index build"), then one-word */
    for (int words = 2; words >= 1; words--) {
        if (argc < 1 + words) continue;
        char name[128];
        if (words == 2) snprintf(name, sizeof name, "%s %s", argv[1], argv[2]);
        else snprintf(name, sizeof name, "%s", argv[1]);
        for (size_t i = 0; i < N_COMMANDS; i++)
            if (!strcmp(commands[i]->name, name)) {
                argv[words] = (char *)commands[i]->name;
                return commands[i]->run(argc - words, argv + words);
            }
    }
    fprintf(stderr, "clipc: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
