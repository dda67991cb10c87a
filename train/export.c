/* export.c — Hugging Face model directories (see export.h). */
#include "train/export.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Writes the model files into dir (which exists). */
static int write_model_files(const cc_clip_model *m, const cc_preprocess_config *pre, const char *tokenizer_dir,
                             const char *dir, cc_dtype dtype) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (cc_clip_save_weights(m, path, dtype) != 0) return -1;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (cc_clip_config_save(&m->config, path) != 0) return -1;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    if (cc_preprocess_config_save(pre, path) != 0) return -1;
    return tokenizer_dir && tokenizer_dir[0] ? cc_copy_tokenizer_files(tokenizer_dir, dir) : 0;
}

/* Removes the files of a flat directory we made, then the directory. */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* Moves every file of the finished temporary directory into out_dir (each rename atomic; files of
 * out_dir that the export does not write are kept). */
static int move_files_into(const char *tmp, const char *out_dir) {
    DIR *d = opendir(tmp);
    if (!d) {
        cc_set_error("%s: cannot list: %s", tmp, strerror(errno));
        return -1;
    }
    int status = 0;
    struct dirent *e;
    char from[4400], to[4400];
    while (status == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(from, sizeof from, "%s/%s", tmp, e->d_name);
        snprintf(to, sizeof to, "%s/%s", out_dir, e->d_name);
        if (rename(from, to) != 0) {
            cc_set_error("%s: cannot move into place: %s", to, strerror(errno));
            status = -1;
        }
    }
    closedir(d);
    return status;
}

int cc_export_model_dir(const cc_clip_model *m, const cc_preprocess_config *pre, const char *tokenizer_dir,
                        const char *out_dir, cc_dtype dtype) {
    /* everything is written to OUT.tmp.PID first: a failure leaves OUT as it was */
    char tmp[4200];
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    if (len == 0 || len + 32 > sizeof tmp) {
        cc_set_error("export: bad output directory '%s'", out_dir);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%.*s.tmp.%ld", (int)len, out_dir, (long)getpid());
    char parent[4200];
    snprintf(parent, sizeof parent, "%.*s", (int)len, out_dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (cc_mkdir_p(parent) != 0) return -1;
    }
    remove_flat_dir(tmp); /* a leftover of an earlier run with this pid */
    if (mkdir(tmp, 0777) != 0) {
        cc_set_error("%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_model_files(m, pre, tokenizer_dir, tmp, dtype) != 0) {
        cc_prefix_error("export to %s", out_dir);
        remove_flat_dir(tmp);
        return -1;
    }
    struct stat st;
    int status;
    if (stat(out_dir, &st) != 0) {
        status = rename(tmp, out_dir) == 0 ? 0 : -1;
        if (status) cc_set_error("%s: cannot move %s into place: %s", out_dir, tmp, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        cc_set_error("%s: exists and is not a directory", out_dir);
        status = -1;
    } else {
        status = move_files_into(tmp, out_dir);
    }
    remove_flat_dir(tmp);
    return status;
}
