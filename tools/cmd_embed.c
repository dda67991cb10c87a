/* cmd_embed.c — `clipc embed`: images or captions to an .npy of embeddings, rows in input order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/npy.h"
#include "engine/progress.h"
#include "engine/session.h"
#include "engine/util.h"
#include "tools/commands.h"
#include "tools/lines.h"

static int run_embed(int argc, char **argv);
const cc_command cmd_embed = {
    "embed", "--model DIR (--images LIST | --image FILE... | --texts FILE | --text \"...\"...) --out OUT.npy",
    "Embed images or captions with a CLIP model; writes float32 [N, projection_dim], L2-normalised.", run_embed};

typedef struct embed_args {
    const char *model_dir, *images_list, *texts_file, *out, *device, *long_text, *style;
    cc_strlist images, texts;
    int64_t batch, window_stride;
    int no_normalize, skip_bad, fast_decode;
} embed_args;

/* OUT.npy -> OUT.kept.npy */
static void kept_path(const char *out, char *buf, size_t size) {
    size_t len = strlen(out);
    if (len > 4 && !strcmp(out + len - 4, ".npy")) len -= 4;
    snprintf(buf, size, "%.*s.kept.npy", (int)len, out);
}

static int embed_images(cc_session *s, const embed_args *a, const char *const *paths, int64_t n) {
    int64_t dim = s->model->config.projection_dim, n_kept = 0;
    float *out = cc_malloc((size_t)(n * dim) * sizeof(float), "embeddings");
    int64_t *kept = cc_malloc((size_t)n * sizeof(int64_t), "kept rows");
    if (!out || !kept) {
        free(out);
        free(kept);
        return cc_command_error(&cmd_embed, cc_last_error());
    }
    cc_progress progress;
    cc_progress_start(&progress, "embed", n, "img");
    cc_image_embed_options o = {.batch = (int)a->batch, .normalize = !a->no_normalize, .skip_bad = a->skip_bad,
                                .progress = &progress};
    double start = cc_now();
    int status = cc_session_embed_image_files(s, paths, n, &o, out, kept, &n_kept);
    cc_progress_finish(&progress);
    if (status == 0) {
        int64_t shape[2] = {n_kept, dim};
        status = cc_npy_write_f32(a->out, 2, shape, out);
    }
    if (status == 0 && n_kept < n) {
        char path[4096];
        kept_path(a->out, path, sizeof path);
        status = cc_npy_write_i64(path, 1, &n_kept, kept);
        fprintf(stderr, "clipc embed: skipped %lld unreadable image(s); the input row of each output row is in %s\n",
                (long long)(n - n_kept), path);
    }
    double seconds = cc_now() - start;
    free(out);
    free(kept);
    if (status != 0) return cc_command_error(&cmd_embed, cc_last_error());
    printf("embedded %lld images in %.1f s (%.1f img/s) -> %s [%lld, %lld]\n", (long long)n_kept, seconds,
           seconds > 0 ? (double)n_kept / seconds : 0.0, a->out, (long long)n_kept, (long long)dim);
    return 0;
}

static int embed_texts(cc_session *s, const embed_args *a, const char *const *texts, int64_t n) {
    int64_t dim = s->model->config.projection_dim, n_truncated = 0;
    float *out = cc_malloc((size_t)(n * dim) * sizeof(float), "embeddings");
    if (!out) return cc_command_error(&cmd_embed, cc_last_error());
    cc_progress progress;
    cc_progress_start(&progress, "embed", n, "captions");
    cc_text_options o = {.long_text = a->long_text && !strcmp(a->long_text, "window") ? CC_LONG_TEXT_WINDOW : CC_LONG_TEXT_TRUNCATE,
                         .window_stride = (int)a->window_stride, .batch = (int)a->batch, .normalize = !a->no_normalize,
                         .progress = &progress};
    double start = cc_now();
    int status = cc_session_embed_texts(s, texts, n, &o, out, &n_truncated);
    cc_progress_finish(&progress);
    if (status == 0) {
        int64_t shape[2] = {n, dim};
        status = cc_npy_write_f32(a->out, 2, shape, out);
    }
    free(out);
    if (status != 0) return cc_command_error(&cmd_embed, cc_last_error());
    double seconds = cc_now() - start;
    if (n_truncated)
        fprintf(stderr, "clipc embed: %lld caption(s) longer than the context were truncated (--long-text window averages windows instead)\n",
                (long long)n_truncated);
    printf("embedded %lld captions in %.2f s (%.0f captions/s) -> %s [%lld, %lld]\n", (long long)n, seconds,
           seconds > 0 ? (double)n / seconds : 0.0, a->out, (long long)n, (long long)dim);
    return 0;
}

static int run_embed(int argc, char **argv) {
    embed_args a = {.batch = 0};
    const char *precision = NULL;
    cc_option options[] = {
        {"--model", CC_OPT_STRING, &a.model_dir, "DIR", "Hugging Face CLIP model directory"},
        {"--images", CC_OPT_STRING, &a.images_list, "LIST", "file with one image path per line"},
        {"--image", CC_OPT_LIST, &a.images, "FILE...", "image file(s) to embed"},
        {"--texts", CC_OPT_STRING, &a.texts_file, "FILE", "file with one caption per line"},
        {"--text", CC_OPT_LIST, &a.texts, "\"...\"", "caption(s) to embed"},
        {"--out", CC_OPT_STRING, &a.out, "OUT.npy", "output: float32 [N, projection_dim]"},
        {"--batch", CC_OPT_INT, &a.batch, "N", "items per forward pass (default 32 images / 64 captions)"},
        {"--no-normalize", CC_OPT_FLAG, &a.no_normalize, NULL, "write the projections without L2 normalisation"},
        {"--skip-bad", CC_OPT_FLAG, &a.skip_bad, NULL, "skip unreadable images (warns; OUT.kept.npy lists kept rows)"},
        {"--fast-decode", CC_OPT_FLAG, &a.fast_decode, NULL, "decode large JPEGs with DCT scaling (faster, not PIL-exact)"},
        {"--style", CC_OPT_STRING, &a.style, "NAME", CC_STYLE_HELP},
        {"--long-text", CC_OPT_STRING, &a.long_text, "MODE", "captions longer than the context: truncate (default) or window"},
        {"--window-stride", CC_OPT_INT, &a.window_stride, "N", "window mode: tokens between window starts (default 75)"},
        {"--device", CC_OPT_STRING, &a.device, "DEV", "cpu (default) or cuda"},
        {"--precision", CC_OPT_STRING, &precision, "P", CC_PRECISION_HELP},
        {0},
    };
    int parsed = cc_parse_options(&cmd_embed, options, argc, argv, NULL);
    int exit_code = parsed > 0 ? 0 : 2;
    if (parsed != 0 || cc_apply_precision(&cmd_embed, precision) != 0) goto done;
    int n_sources = (a.images_list != NULL) + (a.images.count > 0) + (a.texts_file != NULL) + (a.texts.count > 0);
    if (!a.model_dir || !a.out || n_sources != 1) {
        fprintf(stderr, "clipc embed: need --model, --out and exactly one of --images, --image, --texts, --text\n");
        goto done;
    }
    if (a.long_text && strcmp(a.long_text, "truncate") && strcmp(a.long_text, "window")) {
        fprintf(stderr, "clipc embed: --long-text must be truncate or window\n");
        goto done;
    }
    cc_preprocess_style style = CC_PREPROCESS_OPENAI;
    if (a.style && cc_preprocess_style_parse(a.style, &style) != 0) {
        fprintf(stderr, "clipc embed: %s\n", cc_last_error());
        goto done;
    }
    cc_session s;
    if (cc_session_open(&s, a.model_dir, a.device) != 0) {
        exit_code = cc_command_error(&cmd_embed, cc_last_error());
        goto done;
    }
    s.preprocess.fast_decode = a.fast_decode;
    s.preprocess.style = style;
    cc_lines lines = {0};
    if (a.images_list || a.texts_file) {
        const char *file = a.images_list ? a.images_list : a.texts_file;
        if (cc_lines_read(file, a.images_list != NULL, &lines) != 0) {
            exit_code = cc_command_error(&cmd_embed, cc_last_error());
        } else if (lines.count == 0) {
            fprintf(stderr, "clipc embed: %s: no %s in the file\n", file, a.images_list ? "image paths" : "captions");
            exit_code = 1;
        } else {
            exit_code = a.images_list ? embed_images(&s, &a, (const char *const *)lines.lines, lines.count)
                                      : embed_texts(&s, &a, (const char *const *)lines.lines, lines.count);
        }
    } else if (a.images.count) {
        exit_code = embed_images(&s, &a, a.images.items, a.images.count);
    } else {
        exit_code = embed_texts(&s, &a, a.texts.items, a.texts.count);
    }
    cc_lines_free(&lines);
    cc_session_close(&s);
done:
    cc_strlist_free(&a.images);
    cc_strlist_free(&a.texts);
    return exit_code;
}
