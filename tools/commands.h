/* commands.h — the subcommands of the clipc binary; each lives in tools/cmd_<name>.c. */
#ifndef CLIPC_COMMANDS_H
#define CLIPC_COMMANDS_H

#include "tools/cli.h"

extern const cc_command cmd_version;
extern const cc_command cmd_info;
extern const cc_command cmd_eval;
extern const cc_command cmd_export;
extern const cc_command cmd_train;
extern const cc_command cmd_embed;
extern const cc_command cmd_tokenize;
extern const cc_command cmd_preprocess;
extern const cc_command cmd_synth;
extern const cc_command cmd_tokenizer_learn;
extern const cc_command cmd_shards;
extern const cc_command cmd_index_build;
extern const cc_command cmd_index_add;
extern const cc_command cmd_index_remove;
extern const cc_command cmd_index_search;
extern const cc_command cmd_index_tune;
extern const cc_command cmd_index_info;
extern const cc_command cmd_search;
extern const cc_command cmd_classify;
extern const cc_command cmd_serve;

#endif
