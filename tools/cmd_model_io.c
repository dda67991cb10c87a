/* cmd_model_io.c — `clipc eval` (retrieval recall of a model on a dataset, CLIP_benchmark / COCO
 * protocol, and zero-shot top-1/top-5 on labelled images, as JSON) and `clipc export` (a training
 * checkpoint to a Hugging Face model directory, or a model or checkpoint to ONNX: vision.onnx +
 * text.onnx, engine/onnx_export.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "engine/onnx_export.h"
#include "engine/session.h"
#include "engine/util.h"
#include "tools/commands.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/export.h"
#include "train/zeroshot.h"
#include "kernels/gemm.h"

static int model_images(void *ctx, const float *pixels, int64_t n, float *out) {
    return cc_clip_embed_images(ctx, pixels, n, out, 1);
}

static int model_texts(void *ctx, const int32_t *ids, const int32_t *eot, int64_t n, float *out) {
    return cc_clip_embed_texts(ctx, ids, eot, n, out, 1);
}

static int run_eval(int argc, char **argv);
const cc_command cmd_eval = {"eval", "--model DIR (--data FILE | --zeroshot-data FILE) [--images-root DIR] [options]",
                             "Retrieval recall R@1/5/10 both ways over all captions, and/or zero-shot top-1/top-5; JSON.",
                             run_eval};

/* Zero-shot top-1/top-5 on --zeroshot-data as the JSON object of key "zeroshot" (malloc'd). */
static char *zeroshot_json(cc_session *s, const cc_embedder *e, const cc_evaluate_options *o, const char *data,
                           const char *root, const char *templates_path) {
    cc_zeroshot_set z;
    char **templates = NULL;
    int64_t n_templates = 0;
    char *json = NULL;
    if (cc_zeroshot_read(data, root, &z) != 0) return NULL;
    if (!templates_path || cc_zeroshot_read_templates(templates_path, &templates, &n_templates) == 0) {
        cc_zeroshot_result result;
        if (cc_zeroshot_evaluate(&z, s->tokenizer, e, o, (const char *const *)templates, n_templates, &result) == 0) {
            json = cc_zeroshot_json(&result, templates ? n_templates : cc_zeroshot_n_default_templates);
            if (result.n_skipped)
                fprintf(stderr, "clipc eval: %lld unreadable zero-shot images skipped\n", (long long)result.n_skipped);
        }
    }
    cc_zeroshot_free_strings(templates, n_templates);
    cc_zeroshot_free(&z);
    return json;
}

static int run_eval(int argc, char **argv) {
    const char *model_dir = NULL, *data = NULL, *root = NULL, *split = NULL, *device = NULL, *img_key = NULL,
               *caption_key = NULL, *zeroshot_data = NULL, *templates = NULL, *style_name = NULL;
    int64_t batch = 32;
    cc_option options[] = {
        {"--model", CC_OPT_STRING, &model_dir, "DIR", "Hugging Face CLIP model directory"},
        {"--data", CC_OPT_STRING, &data, "FILE", "pairs: COCO captions JSON, Karpathy JSON, TSV/CSV, or WebDataset shards 'dir/{0..9}.tar'"},
        {"--images-root", CC_OPT_STRING, &root, "DIR", "directory image paths are relative to"},
        {"--split", CC_OPT_STRING, &split, "NAMES", "Karpathy JSON: splits to evaluate (e.g. test)"},
        {"--csv-img-key", CC_OPT_STRING, &img_key, "NAME", "TSV/CSV image column"},
        {"--csv-caption-key", CC_OPT_STRING, &caption_key, "NAME", "TSV/CSV caption column"},
        {"--zeroshot-data", CC_OPT_STRING, &zeroshot_data, "FILE",
         "zero-shot top-1/top-5 on lines \"image<TAB>label\" (paths relative to --images-root or FILE's dir)"},
        {"--templates", CC_OPT_STRING, &templates, "FILE", "zero-shot prompt templates with {} (default: classify's 22)"},
        {"--batch", CC_OPT_INT, &batch, "N", "items per forward pass (default 32)"},
        {"--device", CC_OPT_STRING, &device, "DEV", "cpu (default) or cuda"},
        {"--style", CC_OPT_STRING, &style_name, "NAME", CC_STYLE_HELP},
        {0},
    };
    int parsed = cc_parse_options(&cmd_eval, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!model_dir || (!data && !zeroshot_data))
        return cc_command_error(&cmd_eval, "--model and --data or --zeroshot-data are required") + 1;
    if (templates && !zeroshot_data) return cc_command_error(&cmd_eval, "--templates needs --zeroshot-data") + 1;
    cc_preprocess_style style = CC_PREPROCESS_OPENAI;
    if (style_name && cc_preprocess_style_parse(style_name, &style) != 0) return cc_command_error(&cmd_eval, cc_last_error()) + 1;
    cc_dataset ds = {0};
    cc_dataset_options dopt = {.image_root = root, .split = split, .img_key = img_key, .caption_key = caption_key};
    if (data && cc_dataset_read(data, &dopt, &ds) != 0) return cc_command_error(&cmd_eval, cc_last_error());
    cc_session s;
    if (cc_session_open(&s, model_dir, device) != 0) {
        cc_dataset_free(&ds);
        return cc_command_error(&cmd_eval, cc_last_error());
    }
    cc_embedder e = {s.model, s.model->config.projection_dim, s.model->config.text.max_positions, model_images,
                     model_texts};
    s.preprocess.style = style;
    cc_evaluate_options o = {.batch = (int)batch, .preprocess = s.preprocess, .label = "eval"};
    cc_recall recall;
    int64_t skipped = 0;
    int status = data ? cc_evaluate_retrieval(&ds, s.tokenizer, &e, &o, &recall, &skipped) : 0;
    char *retrieval = status == 0 && data ? cc_recall_json(&recall) : NULL;
    char *zeroshot = NULL;
    if (status == 0 && zeroshot_data) {
        o.label = "zero-shot";
        zeroshot = zeroshot_json(&s, &e, &o, zeroshot_data, root, templates);
        if (!zeroshot) status = -1;
    }
    if (status == 0 && data && !retrieval) status = -1;
    if (status == 0) {
        /* one object: the retrieval keys, then "zeroshot" */
        if (retrieval) retrieval[strlen(retrieval) - 1] = 0; /* drop the closing brace */
        printf("%s%s%s%s%s\n", retrieval ? retrieval : "{", zeroshot ? (retrieval ? ", " : "") : "",
               zeroshot ? "\"zeroshot\": " : "", zeroshot ? zeroshot : "", "}");
        if (skipped) fprintf(stderr, "clipc eval: %lld unreadable images skipped with their captions\n", (long long)skipped);
    }
    free(retrieval);
    free(zeroshot);
    cc_session_close(&s);
    cc_dataset_free(&ds);
    return status == 0 ? 0 : cc_command_error(&cmd_eval, cc_last_error());
}

static int run_export(int argc, char **argv);
const cc_command cmd_export = {"export", "(--checkpoint CKPT | --model DIR) --out DIR [--format hf|onnx] [--dtype f32|f16|bf16]",
                               "Write a training checkpoint as a Hugging Face CLIP model directory (adapters and LoRA pairs "
                               "merged into the weights), or a checkpoint or model as ONNX (OUT/vision.onnx, OUT/text.onnx).",
                               run_export};

/* projection ← adapter · projection */
static int fold_adapter(cc_tensor *projection, const float *adapter) {
    int64_t dim = projection->shape[0], width = projection->shape[1];
    float *merged = cc_malloc(cc_nbytes(projection), "projection");
    if (!merged) return -1;
    cc_sgemm(0, 0, dim, width, dim, 1.0f, adapter, dim, projection->data, width, 0.0f, merged, width);
    memcpy(projection->data, merged, cc_nbytes(projection));
    free(merged);
    return 0;
}

/* The id the ONNX text graph pools at: the tokenizer's end-of-text (where clipc pools), else the
 * config's eos_token_id. The tokenizer files are copied next to the .onnx files when found. */
static int onnx_eot_id(const cc_clip_model *m, const char *tokenizer_path, int explicit_path, const char *out,
                       int *eot) {
    cc_tokenizer *tok = tokenizer_path && *tokenizer_path ? cc_tokenizer_load(tokenizer_path) : NULL;
    if (!tok && explicit_path) return -1; /* --tokenizer given but unreadable: its error */
    if (tok) {
        *eot = cc_tokenizer_eot(tok);
        cc_tokenizer_free(tok);
        return cc_mkdir_p(out) == 0 ? cc_copy_tokenizer_files(tokenizer_path, out) : -1;
    }
    if (m->config.text.eos_token_id >= 0) {
        *eot = m->config.text.eos_token_id;
        return 0;
    }
    cc_set_error("no tokenizer found (%s) and config.json has no text_config.eos_token_id: the text graph would not "
                 "know where captions end (give --tokenizer)", tokenizer_path ? tokenizer_path : "none given");
    return -1;
}

static int export_onnx(cc_clip_model *m, const char *tokenizer_path, int explicit_path, const char *out,
                       const char *source) {
    int eot = 0;
    if (onnx_eot_id(m, tokenizer_path, explicit_path, out, &eot) != 0 || cc_onnx_export(m, eot, out) != 0)
        return cc_command_error(&cmd_export, cc_last_error());
    printf("exported %s -> %s/vision.onnx, %s/text.onnx (opset 17, f32, end-of-text id %d)\n", source, out, out, eot);
    return 0;
}

static int run_export(int argc, char **argv) {
    const char *checkpoint = NULL, *model_dir = NULL, *out = NULL, *dtype_name = "f32", *tokenizer = NULL,
               *format = "hf";
    cc_option options[] = {
        {"--checkpoint", CC_OPT_STRING, &checkpoint, "CKPT", "checkpoint file (OUT/checkpoints/step_*.safetensors)"},
        {"--model", CC_OPT_STRING, &model_dir, "DIR", "model directory (with --format onnx)"},
        {"--out", CC_OPT_STRING, &out, "DIR", "output directory"},
        {"--format", CC_OPT_STRING, &format, "FMT", "hf (default: a Hugging Face model directory) or onnx"},
        {"--dtype", CC_OPT_STRING, &dtype_name, "TYPE", "hf weights as f32 (default), f16 or bf16 (onnx: always f32)"},
        {"--tokenizer", CC_OPT_STRING, &tokenizer, "DIR", "tokenizer files (default: the checkpoint's or the model's)"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_export, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    int onnx = !strcmp(format, "onnx");
    if (!onnx && strcmp(format, "hf")) return cc_command_error(&cmd_export, "--format must be hf or onnx") + 1;
    if (!out || !checkpoint == !model_dir)
        return cc_command_error(&cmd_export, "--out and one of --checkpoint or --model are required") + 1;
    if (model_dir && !onnx) return cc_command_error(&cmd_export, "--model is already a model directory: use it with --format onnx") + 1;
    cc_dtype dtype = !strcmp(dtype_name, "f32") ? CC_F32 : !strcmp(dtype_name, "f16") ? CC_F16 : !strcmp(dtype_name, "bf16") ? CC_BF16 : CC_I32;
    if (dtype == CC_I32) return cc_command_error(&cmd_export, "--dtype must be f32, f16 or bf16") + 1;
    if (onnx && dtype != CC_F32) return cc_command_error(&cmd_export, "ONNX export writes f32 weights only") + 1;
    if (model_dir) {
        cc_clip_model *m = cc_clip_load(model_dir, NULL);
        if (!m) return cc_command_error(&cmd_export, cc_last_error());
        int status = export_onnx(m, tokenizer ? tokenizer : model_dir, tokenizer != NULL, out, model_dir);
        cc_clip_free(m);
        return status;
    }
    cc_train_state state;
    float *image_adapter = NULL, *text_adapter = NULL;
    cc_clip_model *m = cc_checkpoint_load_model(checkpoint, NULL, &state, &image_adapter, &text_adapter);
    if (!m) return cc_command_error(&cmd_export, cc_last_error());
    int status = cc_checkpoint_merge_lora(checkpoint, m); /* LoRA pairs folded in: a plain CLIPModel */
    if (status == 0 && image_adapter) status = fold_adapter(m->visual_projection, image_adapter);
    if (status == 0 && text_adapter) status = fold_adapter(m->text_projection, text_adapter);
    cc_free_aligned(image_adapter);
    cc_free_aligned(text_adapter);
    if (status == 0 && onnx) {
        int rc = export_onnx(m, tokenizer ? tokenizer : state.tokenizer_dir, tokenizer != NULL, out, checkpoint);
        cc_clip_free(m);
        return rc;
    }
    cc_preprocess_config pre;
    cc_preprocess_config_default(&pre, m->config.vision.image_size);
    if (status == 0) status = cc_export_model_dir(m, &pre, tokenizer ? tokenizer : state.tokenizer_dir, out, dtype);
    cc_clip_free(m);
    if (status != 0) return cc_command_error(&cmd_export, cc_last_error());
    printf("exported step %lld of %s -> %s (%s weights)\n", (long long)state.step, checkpoint, out, dtype_name);
    return 0;
}
