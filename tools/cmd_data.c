/* cmd_data.c — the data subcommands: tokenize, preprocess, synth, tokenizer-learn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/npy.h"
#include "data/preprocess.h"
#include "data/synth.h"
#include "data/tokenizer.h"
#include "engine/util.h"
#include "tools/commands.h"

/* ---------------------------------------------------------------------------------------------- */
/* clipc tokenize                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

static int run_tokenize(int argc, char **argv);
const cc_command cmd_tokenize = {
    "tokenize", "(--vocab FILE | --model DIR) [--context 77] [--special] [--decode] < lines",
    "Print the CLIP token ids of each line of stdin (or, with --decode, the text of each line of ids).", run_tokenize};

static int run_tokenize(int argc, char **argv) {
    const char *vocab = NULL, *model = NULL;
    int64_t context = CC_CLIP_CONTEXT;
    int special = 0, decode = 0;
    const cc_option options[] = {
        {"--vocab", CC_OPT_STRING, &vocab, "FILE", "bpe_simple_vocab_16e6.txt.gz, or a Hugging Face vocab.json"},
        {"--model", CC_OPT_STRING, &model, "DIR", "model directory with vocab.json + merges.txt (or the .gz)"},
        {"--context", CC_OPT_INT, &context, "N", "truncate to N ids with start/end tokens, as CLIP does (0: no limit)"},
        {"--special", CC_OPT_FLAG, &special, NULL, "include the <|startoftext|> and <|endoftext|> ids"},
        {"--decode", CC_OPT_FLAG, &decode, NULL, "read lines of ids, print their text"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_tokenize, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!vocab == !model) {
        fprintf(stderr, "clipc tokenize: give exactly one of --vocab FILE or --model DIR\n");
        return 2;
    }
    if (context != 0 && (context < 2 || context > 1 << 20)) {
        fprintf(stderr, "clipc tokenize: --context must be 0 or 2..%d\n", 1 << 20);
        return 2;
    }
    cc_tokenizer *tok = vocab ? cc_tokenizer_load(vocab) : cc_tokenizer_load_dir(model);
    if (!tok) return cc_command_error(&cmd_tokenize, cc_last_error());
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    cc_tokens tokens = {0};
    cc_text_stats stats = {0};
    int64_t line_no = 0;
    int rc = 0;
    while ((len = getline(&line, &line_cap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (decode) {
            tokens.count = 0;
            for (char *p = line, *end; *p; p = end) {
                long id = strtol(p, &end, 10);
                if (end == p) {
                    if (*p == ' ' || *p == '\t' || *p == '\r') {
                        end = p + 1;
                        continue;
                    }
                    fprintf(stderr, "clipc tokenize: stdin line %lld: not a token id: '%s'\n", (long long)line_no, p);
                    rc = 1;
                    goto done;
                }
                if (cc_tokens_push(&tokens, (int32_t)id) != 0) goto fail;
            }
            size_t text_len;
            char *text = cc_tokenizer_decode(tok, tokens.ids, tokens.count, &text_len);
            if (!text) {
                cc_prefix_error("stdin line %lld", (long long)line_no);
                goto fail;
            }
            fwrite(text, 1, text_len, stdout);
            fputc('\n', stdout);
            free(text);
            continue;
        }
        tokens.count = 0;
        if (cc_tokenizer_encode(tok, line, (size_t)len, &tokens, &stats) != 0) {
            cc_prefix_error("stdin line %lld", (long long)line_no);
            goto fail;
        }
        if (len == 0) { /* an empty line gives an empty line */
            fputc('\n', stdout);
            continue;
        }
        int n = tokens.count;
        if (context > 0 && n > context - 2) n = (int)context - 2; /* what clip.tokenize(truncate=True) keeps */
        if (special) printf("%d%s", cc_tokenizer_sot(tok), n ? " " : "");
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", tokens.ids[i]);
        if (special) printf(" %d", cc_tokenizer_eot(tok));
        fputc('\n', stdout);
    }
    if (stats.invalid_utf8 && !cc_quiet)
        fprintf(stderr, "clipc tokenize: replaced %lld invalid UTF-8 sequences with U+FFFD\n", (long long)stats.invalid_utf8);
    goto done;
fail:
    rc = cc_command_error(&cmd_tokenize, cc_last_error());
done:
    if (fflush(stdout) != 0 && rc == 0) rc = cc_command_error(&cmd_tokenize, "cannot write to stdout");
    free(line);
    cc_tokens_free(&tokens);
    cc_tokenizer_free(tok);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* clipc preprocess                                                                               */
/* ---------------------------------------------------------------------------------------------- */

static int run_preprocess(int argc, char **argv);
const cc_command cmd_preprocess = {
    "preprocess", "--image FILE [--size 224 | --model DIR] --out X.npy",
    "Decode and CLIP-preprocess one image into a float32 [3, S, S] .npy.", run_preprocess};

static int run_preprocess(int argc, char **argv) {
    const char *image = NULL, *model = NULL, *out = NULL, *style = "openai";
    int64_t size = 0;
    int fast = 0, u8 = 0;
    const cc_option options[] = {
        {"--image", CC_OPT_STRING, &image, "FILE", "image file (JPEG, PNG, WebP, GIF, BMP or TIFF)"},
        {"--size", CC_OPT_INT, &size, "S", "shorter side after resize and crop size (default 224)"},
        {"--model", CC_OPT_STRING, &model, "DIR", "take size, crop and mean/std from DIR/preprocessor_config.json"},
        {"--out", CC_OPT_STRING, &out, "X.npy", "output: float32 [3, S, S]"},
        {"--style", CC_OPT_STRING, &style, "NAME", CC_STYLE_HELP},
        {"--fast-decode", CC_OPT_FLAG, &fast, NULL, "JPEG DCT scaling for large images (faster, not exact)"},
        {"--uint8", CC_OPT_FLAG, &u8, NULL, "write the 8-bit resized crop [S, S, 3] instead"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_preprocess, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!image || !out) {
        fprintf(stderr, "clipc preprocess: --image and --out are required\n");
        return 2;
    }
    if (size && model) {
        fprintf(stderr, "clipc preprocess: give --size or --model, not both\n");
        return 2;
    }
    cc_preprocess_config cfg;
    cc_preprocess_config_default(&cfg, (int)(size > 0 && size <= CC_PREPROCESS_MAX_SIZE ? size : 0));
    if (size < 0 || size > CC_PREPROCESS_MAX_SIZE) {
        fprintf(stderr, "clipc preprocess: --size must be 1..%d\n", CC_PREPROCESS_MAX_SIZE);
        return 2;
    }
    if (cc_preprocess_style_parse(style, &cfg.style) != 0) {
        fprintf(stderr, "clipc preprocess: --style: %s\n", cc_last_error());
        return 2;
    }
    cfg.fast_decode = fast;
    if (model && cc_preprocess_config_load(model, &cfg) != 0) return cc_command_error(&cmd_preprocess, cc_last_error());
    size_t n = (size_t)3 * cfg.crop_height * cfg.crop_width;
    int rc;
    if (u8) {
        uint8_t *pixels = cc_malloc(n, "image");
        cc_image img;
        cc_image_options image_options = {0};
        image_options.fast_min_side = fast ? cfg.size : 0;
        rc = pixels ? cc_image_load_ex(image, &image_options, &img) : -1;
        if (rc == 0) {
            rc = cc_preprocess_image_u8(&cfg, &img, pixels);
            cc_image_free(&img);
        }
        int64_t shape[3] = {cfg.crop_height, cfg.crop_width, 3};
        if (rc == 0) rc = cc_npy_write(out, CC_NPY_U8, 3, shape, pixels);
        free(pixels);
    } else {
        float *tensor = cc_malloc(n * sizeof(float), "image tensor");
        rc = tensor ? cc_preprocess_file(&cfg, image, tensor) : -1;
        int64_t shape[3] = {3, cfg.crop_height, cfg.crop_width};
        if (rc == 0) rc = cc_npy_write_f32(out, 3, shape, tensor);
        free(tensor);
    }
    if (rc != 0) return cc_command_error(&cmd_preprocess, cc_last_error());
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* clipc synth                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

static int run_synth(int argc, char **argv);
const cc_command cmd_synth = {
    "synth", "--out DIR --count N [--seed S] [--size 64] [--jpeg] [--coco] [--karpathy]",
    "Write N synthetic shape images and DIR/pairs.tsv (image<TAB>caption), deterministic for a seed.", run_synth};

static int run_synth(int argc, char **argv) {
    const char *out = NULL;
    cc_synth_options o;
    cc_synth_options_default(&o);
    int64_t count = 0, seed = (int64_t)o.seed, size = o.size, quality = o.quality;
    int jpeg = 0, coco = 0, karpathy = 0;
    const cc_option options[] = {
        {"--out", CC_OPT_STRING, &out, "DIR", "output directory (images/ and pairs.tsv)"},
        {"--count", CC_OPT_INT, &count, "N", "number of images"},
        {"--seed", CC_OPT_INT, &seed, "S", "random seed (default 1)"},
        {"--size", CC_OPT_INT, &size, "PX", "image side in pixels (default 64)"},
        {"--jpeg", CC_OPT_FLAG, &jpeg, NULL, "write JPEG files instead of PNG"},
        {"--quality", CC_OPT_INT, &quality, "Q", "JPEG quality (default 90)"},
        {"--coco", CC_OPT_FLAG, &coco, NULL, "also write DIR/captions_coco.json (COCO captions layout, 2 captions per image)"},
        {"--karpathy", CC_OPT_FLAG, &karpathy, NULL, "also write DIR/dataset_karpathy.json (Karpathy split layout)"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_synth, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!out || count <= 0) {
        fprintf(stderr, "clipc synth: --out DIR and --count N (> 0) are required\n");
        return 2;
    }
    if (size < 8 || size > 4096 || quality < 1 || quality > 100 || count > 100000000) {
        fprintf(stderr, "clipc synth: --size must be 8..4096, --quality 1..100, --count at most 1e8\n");
        return 2;
    }
    o.count = count;
    o.seed = (uint64_t)seed;
    o.size = (int)size;
    o.jpeg = jpeg;
    o.quality = (int)quality;
    o.write_coco = coco;
    o.write_karpathy = karpathy;
    double start = cc_now();
    if (cc_synth_write(out, &o) != 0) return cc_command_error(&cmd_synth, cc_last_error());
    if (!cc_quiet)
        fprintf(stderr, "clipc synth: wrote %lld %dx%d images and %s/pairs.tsv in %.1f s\n", (long long)count, o.size, o.size,
                out, cc_now() - start);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* clipc tokenizer-learn                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static int run_tokenizer_learn(int argc, char **argv);
const cc_command cmd_tokenizer_learn = {
    "tokenizer-learn", "--data PAIRS --merges N --out DIR",
    "Learn a CLIP-style byte-level BPE from a dataset's captions; writes DIR/vocab.json + merges.txt.",
    run_tokenizer_learn};

static int run_tokenizer_learn(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *img_key = NULL, *caption_key = NULL;
    int64_t merges = 0;
    const cc_option options[] = {
        {"--data", CC_OPT_STRING, &data, "FILE", "pairs.tsv / .csv, COCO captions or Karpathy .json"},
        {"--merges", CC_OPT_INT, &merges, "N", "number of merges to learn (at most 48894)"},
        {"--out", CC_OPT_STRING, &out, "DIR", "output directory"},
        {"--csv-img-key", CC_OPT_STRING, &img_key, "NAME", "TSV/CSV image column (default image, then filepath)"},
        {"--csv-caption-key", CC_OPT_STRING, &caption_key, "NAME", "TSV/CSV caption column (default caption, then title)"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_tokenizer_learn, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!data || !out || merges <= 0 || merges > CC_CLIP_OPENAI_MERGES) {
        fprintf(stderr, "clipc tokenizer-learn: --data, --out and --merges N (1..%d) are required\n", CC_CLIP_OPENAI_MERGES);
        return 2;
    }
    cc_dataset_options dataset_options = {0};
    dataset_options.img_key = img_key;
    dataset_options.caption_key = caption_key;
    cc_dataset ds;
    if (cc_dataset_read(data, &dataset_options, &ds) != 0) return cc_command_error(&cmd_tokenizer_learn, cc_last_error());
    const char **captions = cc_malloc((size_t)ds.n_pairs * sizeof(char *), "captions");
    if (!captions) {
        cc_dataset_free(&ds);
        return cc_command_error(&cmd_tokenizer_learn, cc_last_error());
    }
    for (int64_t i = 0; i < ds.n_pairs; i++) captions[i] = ds.pairs[i].caption;
    int learned = cc_bpe_learn(captions, ds.n_pairs, (int)merges, out);
    free(captions);
    int64_t n_pairs = ds.n_pairs;
    cc_dataset_free(&ds);
    if (learned < 0) return cc_command_error(&cmd_tokenizer_learn, cc_last_error());
    if (!cc_quiet)
        fprintf(stderr, "clipc tokenizer-learn: %d merges from %lld captions (vocabulary %d) -> %s/vocab.json, %s/merges.txt\n",
                learned, (long long)n_pairs, 512 + learned + 2, out, out);
    return 0;
}
