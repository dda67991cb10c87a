/* export.c — Hugging Face model directories (see export.h). */
#include "train/export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/util.h"

static int copy_file(const char *from, const char *to) {
    char *data;
    size_t size;
    if (cc_read_file(from, &data, &size) != 0) return -1;
    int status = cc_write_file_atomic(to, data, size);
    free(data);
    return status;
}

static int copy_into(const char *from, const char *dst_dir, const char *name) {
    char to[4096];
    snprintf(to, sizeof to, "%s/%s", dst_dir, name);
    if (!strcmp(from, to)) return 0;
    return copy_file(from, to);
}

int cc_copy_tokenizer_files(const char *src, const char *dst_dir) {
    static const char *const names[] = {"vocab.json", "merges.txt", "bpe_simple_vocab_16e6.txt.gz"};
    struct stat st;
    if (stat(src, &st) != 0) {
        cc_set_error("%s: tokenizer files not found", src);
        return -1;
    }
    char dir[4096], path[4200];
    if (S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", src);
    } else {
        size_t len = strlen(src);
        if (len > 3 && !strcmp(src + len - 3, ".gz")) return copy_into(src, dst_dir, "bpe_simple_vocab_16e6.txt.gz");
        snprintf(dir, sizeof dir, "%s", src); /* vocab.json: its directory holds merges.txt */
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    int copied = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!cc_file_exists(path)) continue;
        if (copy_into(path, dst_dir, names[i]) != 0) return -1;
        copied++;
    }
    if (!copied) {
        cc_set_error("%s: no vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz", src);
        return -1;
    }
    return 0;
}

int cc_export_model_dir(const cc_clip_model *m, const cc_preprocess_config *pre, const char *tokenizer_dir,
                        const char *out_dir, cc_dtype dtype) {
    char path[4200];
    if (cc_mkdir_p(out_dir) != 0) return -1;
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (cc_clip_save_weights(m, path, dtype) != 0) return -1;
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    if (cc_clip_config_save(&m->config, path) != 0) return -1;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", out_dir);
    if (cc_preprocess_config_save(pre, path) != 0) return -1;
    return tokenizer_dir && tokenizer_dir[0] ? cc_copy_tokenizer_files(tokenizer_dir, out_dir) : 0;
}
