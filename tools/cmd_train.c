/* cmd_train.c — `clipc train`: fine-tune a CLIP model or train one from scratch on image–caption
 * pairs, with validation recall, logs, curves, atomic checkpoints and exact resume; then the final
 * model in Hugging Face layout in OUT/model.
 *
 * OUT/ layout: checkpoints/step_NNNNNNN.safetensors + checkpoints/latest, model/ (HF), tokenizer/,
 * val.tsv (held-out pairs), train_log.jsonl (one JSON object per evaluation), curves.png; with --lora,
 * lora/ (adapter_model.safetensors + adapter_config.json, PEFT's layout; rewritten at each checkpoint).
 *
 * Several captions per image (COCO has 5): each epoch trains on one caption per image, drawn with a
 * seed of (--seed, epoch) so that --resume draws the same ones (--every-caption: every caption is a
 * pair, as before); validation recall ranks all captions (CLIP_benchmark, train/eval.h).
 *
 * Data-parallel (`mpirun -np N clipc train`, docs/DISTRIBUTED.md): --batch is the global batch; rank r
 * loads the r-th 1/N of each one, the trainer all-gathers features and sums gradients, and every rank
 * holds the same weights (checked every REPLICA_CHECK_EVERY steps). Rank 0 alone evaluates, prints
 * and writes files. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image.h"
#include "engine/clip.h"
#include "engine/comm.h"
#include "engine/progress.h"
#include "engine/util.h"
#include "kernels/gemm.h"
#include "tools/commands.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/export.h"
#include "train/plot.h"
#include "train/trainer.h"
#include "train/zeroshot.h"

#define MAX_BAD_BATCHES 3      /* consecutive NaN/Inf batches before training stops */
#define KEEP_CHECKPOINTS 2     /* older step checkpoints are deleted */
#define MAX_LOG_POINTS 100000  /* evaluations kept for the curves */
#define REPLICA_CHECK_EVERY 50 /* steps between comparisons of the ranks' weight checksums */

static volatile sig_atomic_t interrupted = 0;
static int interrupted_everywhere = 0; /* data-parallel: `interrupted` of any rank, as of the last step */
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Whether to stop: distributed, all ranks decide together after each step. */
static int stopping(void) { return cc_comm_is_distributed() ? interrupted_everywhere : interrupted; }

typedef struct train_args {
    const char *model_dir, *arch, *data, *images_root, *out, *val_data, *vocab, *device, *split, *val_split_name;
    const char *img_key, *caption_key, *loss_log, *loss, *zeroshot_data, *templates, *style;
    double val_split, lr, wd, modal_reg, max_grad_norm;
    int64_t epochs, steps, batch, warmup, seed, save_every, eval_every, accum_freq, grad_accum, merges, workers;
    int resume, lock_image, lock_text, adapter, checkpoint_activations, every_caption;
    int64_t lora;            /* LoRA rank (0 = off) */
    double lora_alpha;       /* 0: the rank (scale 1) */
    const char *lora_targets;
    unsigned lora_bits;      /* --lora-targets parsed */
    const char *precision; /* f32 or bf16 products */
} train_args;

/* The points of the curves: one per evaluation. */
typedef struct curve_log {
    int n;
    double step[MAX_LOG_POINTS / 100], train_loss[MAX_LOG_POINTS / 100], val_loss[MAX_LOG_POINTS / 100];
    double r1[MAX_LOG_POINTS / 100], r5[MAX_LOG_POINTS / 100], i2t1[MAX_LOG_POINTS / 100];
    double zs1[MAX_LOG_POINTS / 100], zs5[MAX_LOG_POINTS / 100]; /* zero-shot top-1 / top-5 */
} curve_log;

typedef struct run {
    train_args *a;
    char out[4096];
    cc_dataset train, val;
    cc_dataset val_loss_pairs;  /* one caption per validation image (a contrastive batch with two captions of one
                                   image would count one as a negative); unless --every-caption */
    cc_dataset epoch_pairs;     /* this epoch's pairs: one sampled caption per image (unless --every-caption) */
    int64_t epoch_pairs_of;     /* the epoch epoch_pairs was drawn for (-1: none yet) */
    cc_zeroshot_set zeroshot;   /* --zeroshot-data */
    char **templates;           /* --templates (NULL: the defaults) */
    int64_t n_templates;
    cc_tokenizer *tok;
    cc_clip_model *model;
    cc_backend *backend;
    cc_preprocess_config pre;
    cc_trainer tr;
    int trainer_ready;
    cc_train_state state;
    int64_t steps_per_epoch, total_steps;
    double train_loss_sum, step_loss_sum;
    int64_t train_loss_count, step_loss_count;
    curve_log *curves;
    double start_time;
    int64_t images_seen;
} run;

/* Distributed, a failing rank ends the job (the others would wait for it forever), naming itself. */
static int fail(const char *message) {
    if (cc_comm_is_distributed()) {
        char text[4200];
        snprintf(text, sizeof text, "train: %s", message);
        cc_comm_abort(text);
    }
    fprintf(stderr, "clipc train: %s\n", message);
    return 1;
}

static int is_writer(void) { return cc_comm_rank() == 0; }

/* ---- evaluation and logs ---- */

static int trainer_images(void *ctx, const float *pixels, int64_t n, float *out) {
    return cc_trainer_image_features(ctx, pixels, n, out);
}

static int trainer_texts(void *ctx, const int32_t *ids, const int32_t *eot, int64_t n, float *out) {
    return cc_trainer_text_features(ctx, ids, eot, n, out);
}

/* Mean training loss (InfoNCE or SigLIP) over the validation pairs in batches (same batch size as
 * training): one caption per image unless --every-caption. */
static int validation_loss(run *r, double *loss_out) {
    cc_loader_config cfg;
    cc_loader_config_default(&cfg, (int)r->a->batch);
    cfg.preprocess = r->pre;
    cfg.context = r->model->config.text.max_positions;
    cfg.skip_unreadable = 1;
    cfg.n_workers = (int)r->a->workers;
    cc_loader *loader = cc_loader_create(r->a->every_caption ? &r->val : &r->val_loss_pairs, r->tok, &cfg);
    if (!loader) return -1;
    double sum = 0;
    int64_t count = 0;
    cc_batch *b;
    int got, status = 0;
    while ((got = cc_loader_next(loader, &b)) == 1) {
        if (b->n < 2) continue; /* a contrastive loss needs two pairs */
        cc_train_batch batch = {b->images, b->tokens, b->eot_pos, b->n};
        float loss;
        if (cc_trainer_loss(&r->tr, &batch, &loss) != 0) {
            status = -1;
            break;
        }
        sum += (double)loss * b->n;
        count += b->n;
    }
    if (got < 0) status = -1;
    cc_loader_free(loader);
    *loss_out = count ? sum / (double)count : NAN;
    return status;
}

static int write_curves(run *r) {
    curve_log *c = r->curves;
    if (c->n == 0) return 0;
    cc_plot_panel panels[2] = {
        {.title = "loss", .x_label = "step", .n_series = 2,
         .series = {{"train", c->step, c->train_loss, c->n, {31, 119, 180}}, {"val", c->step, c->val_loss, c->n, {214, 39, 40}}}},
        {.title = "val recall", .x_label = "step", .n_series = 3,
         .series = {{"t2i R@1", c->step, c->r1, c->n, {44, 160, 44}},
                    {"t2i R@5", c->step, c->r5, c->n, {148, 103, 189}},
                    {"i2t R@1", c->step, c->i2t1, c->n, {255, 127, 14}}}},
    };
    cc_plot_panel zeroshot_panel = {.title = "zero-shot accuracy", .x_label = "step", .n_series = 2,
                                    .series = {{"top-1", c->step, c->zs1, c->n, {44, 160, 44}},
                                               {"top-5", c->step, c->zs5, c->n, {148, 103, 189}}}};
    cc_plot_panel all[3] = {panels[0], panels[1], zeroshot_panel};
    int width, height;
    uint8_t *rgb = cc_plot_render(all, r->a->zeroshot_data ? 3 : 2, 480, 320, &width, &height);
    if (!rgb) return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/curves.png", r->out);
    int status = cc_image_write_png(path, rgb, width, height, 3);
    free(rgb);
    return status;
}

static int evaluate_and_log(run *r, const char *when) {
    if (!is_writer()) return 0; /* data-parallel: rank 0 evaluates while the others wait */
    cc_embedder e = {&r->tr, r->model->config.projection_dim, r->model->config.text.max_positions, trainer_images,
                     trainer_texts};
    cc_evaluate_options o = {.batch = (int)r->a->batch, .n_workers = (int)r->a->workers, .preprocess = r->pre, .label = "eval"};
    cc_recall recall;
    double val_loss;
    int64_t skipped = 0;
    if (cc_evaluate_retrieval(&r->val, r->tok, &e, &o, &recall, &skipped) != 0 || validation_loss(r, &val_loss) != 0)
        return -1;
    cc_zeroshot_result zs = {0};
    char zs_json[320] = "";
    if (r->a->zeroshot_data) {
        cc_evaluate_options zo = o;
        zo.label = "zero-shot";
        if (cc_zeroshot_evaluate(&r->zeroshot, r->tok, &e, &zo, (const char *const *)r->templates, r->n_templates, &zs) != 0)
            return -1;
        char *json = cc_zeroshot_json(&zs, r->templates ? r->n_templates : cc_zeroshot_n_default_templates);
        if (!json) return -1;
        snprintf(zs_json, sizeof zs_json, ", \"zeroshot\": %s", json);
        free(json);
    }
    double train_loss = r->train_loss_count ? r->train_loss_sum / (double)r->train_loss_count : NAN;
    double elapsed = cc_now() - r->start_time;
    /* JSON has no NaN: a loss that could not be computed (no batch of two readable pairs) is null */
    char train_text[32], val_text[32];
    snprintf(train_text, sizeof train_text, isfinite(train_loss) ? "%.5f" : "null", train_loss);
    snprintf(val_text, sizeof val_text, isfinite(val_loss) ? "%.5f" : "null", val_loss);
    float scale = 0, bias = 0;
    if (cc_tensor_download(r->model->logit_scale, &scale) != 0) return -1;
    if (r->model->logit_bias && cc_tensor_download(r->model->logit_bias, &bias) != 0) return -1;
    char bias_json[64] = "";
    if (r->model->logit_bias) snprintf(bias_json, sizeof bias_json, ", \"logit_bias\": %.4f", (double)bias);
    char *recall_json = cc_recall_json(&recall);
    char line[4096];
    snprintf(line, sizeof line,
             "{\"step\": %lld, \"epoch\": %lld, \"when\": \"%s\", \"train_loss\": %s, \"val_loss\": %s, \"val\": %s, "
             "\"lr\": %.3g, \"logit_scale\": %.4f%s, \"images_per_s\": %.1f, \"elapsed_s\": %.1f, \"skipped_images\": %lld, "
             "\"val_skipped_images\": %lld%s}\n",
             (long long)r->state.step, (long long)r->state.epoch, when, train_text, val_text, recall_json ? recall_json : "{}",
             (double)cc_adamw_lr_at(&r->tr.opt.config, r->state.step), (double)scale, bias_json,
             elapsed > 0 ? (double)r->images_seen / elapsed : 0.0, elapsed, (long long)r->state.skipped_images,
             (long long)skipped, zs_json);
    free(recall_json);
    char path[4200];
    snprintf(path, sizeof path, "%s/train_log.jsonl", r->out);
    FILE *fp = fopen(path, "a");
    if (!fp || fputs(line, fp) == EOF || fclose(fp) != 0) {
        cc_set_error("%s: cannot append: %s", path, strerror(errno));
        return -1;
    }
    printf("[%s] step %lld  train loss %s  val loss %s  text->image R@1/5/10 %.3f/%.3f/%.3f  image->text %.3f/%.3f/%.3f"
           "  (all %lld captions of %lld images)\n",
           when, (long long)r->state.step, train_text, val_text, recall.text_to_image[0], recall.text_to_image[1],
           recall.text_to_image[2], recall.image_to_text[0], recall.image_to_text[1], recall.image_to_text[2],
           (long long)recall.n_texts, (long long)recall.n_images);
    if (r->a->zeroshot_data)
        printf("[%s] step %lld  zero-shot top-1 %.3f  top-5 %.3f  (%lld images, %lld classes)\n", when,
               (long long)r->state.step, zs.top1, zs.top5, (long long)zs.n_images, (long long)zs.n_classes);
    if (skipped) fprintf(stderr, "clipc train: %lld unreadable validation images skipped\n", (long long)skipped);
    fflush(stdout);
    curve_log *c = r->curves;
    if (c->n < MAX_LOG_POINTS / 100) {
        c->step[c->n] = (double)r->state.step;
        c->train_loss[c->n] = train_loss;
        c->val_loss[c->n] = val_loss;
        c->r1[c->n] = recall.text_to_image[0];
        c->r5[c->n] = recall.text_to_image[1];
        c->i2t1[c->n] = recall.image_to_text[0];
        c->zs1[c->n] = zs.top1;
        c->zs5[c->n] = zs.top5;
        c->n++;
    }
    r->train_loss_sum = 0;
    r->train_loss_count = 0;
    return write_curves(r);
}

/* ---- checkpoints ---- */

/* OUT/lora: the LoRA pairs alone, as PEFT saves an adapter (adapter_model.safetensors, adapter_config.json). */
static int save_lora(run *r) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/lora", r->out);
    return cc_lora_save(&r->tr.lora, dir);
}

static int save_checkpoint(run *r) {
    if (!is_writer()) return 0;
    char dir[4200], path[4300], latest[4300], name[64];
    snprintf(dir, sizeof dir, "%s/checkpoints", r->out);
    if (cc_mkdir_p(dir) != 0) return -1;
    snprintf(name, sizeof name, "step_%07lld.safetensors", (long long)r->state.step);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (cc_checkpoint_save(path, &r->tr, &r->state) != 0) return -1;
    if (r->tr.lora.n_pairs && save_lora(r) != 0) return -1;
    snprintf(latest, sizeof latest, "%s/latest", dir);
    char text[128];
    snprintf(text, sizeof text, "%s\n", name);
    if (cc_write_file_atomic(latest, text, strlen(text)) != 0) return -1;
    /* keep the newest few */
    int64_t old_step = r->state.step - KEEP_CHECKPOINTS * (r->a->save_every > 0 ? r->a->save_every : 1);
    for (int64_t s = old_step; s >= 0 && s > old_step - 4 * (r->a->save_every > 0 ? r->a->save_every : 1); s--) {
        snprintf(path, sizeof path, "%s/step_%07lld.safetensors", dir, (long long)s);
        unlink(path);
    }
    return 0;
}

static int latest_checkpoint(const char *out, char *path, size_t size) {
    char latest[4200], *name;
    size_t len;
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", out);
    if (cc_read_file(latest, &name, &len) != 0) return -1;
    while (len > 0 && (name[len - 1] == '\n' || name[len - 1] == '\r')) name[--len] = 0;
    snprintf(path, size, "%s/checkpoints/%s", out, name);
    free(name);
    return 0;
}

/* ---- setup ---- */

/* Training pairs per epoch: one per image, or every caption with --every-caption. */
static int64_t pairs_per_epoch(const run *r) { return r->a->every_caption ? r->train.n_pairs : r->train.n_images; }

/* Seed of the caption drawn per image in an epoch (epoch -1: the validation loss's fixed draw). */
static uint64_t caption_seed(const run *r, int64_t epoch) {
    return ((uint64_t)r->a->seed * 1000003u + (uint64_t)(epoch + 1)) ^ 0x9e3779b97f4a7c15ull;
}

/* The pairs of the current epoch: the dataset itself with --every-caption, else one caption per
 * image drawn for (seed, epoch), the same on resume. */
static const cc_dataset *epoch_dataset(run *r) {
    if (r->a->every_caption) return &r->train;
    if (r->epoch_pairs_of != r->state.epoch || !r->epoch_pairs.pairs) {
        cc_dataset_free(&r->epoch_pairs);
        r->epoch_pairs_of = -1;
        if (cc_dataset_sample_captions(&r->train, caption_seed(r, r->state.epoch), &r->epoch_pairs) != 0) return NULL;
        r->epoch_pairs_of = r->state.epoch;
    }
    return &r->epoch_pairs;
}

static int read_data(run *r) {
    train_args *a = r->a;
    cc_dataset_options opt = {.image_root = a->images_root, .split = a->split, .img_key = a->img_key,
                              .caption_key = a->caption_key};
    cc_dataset all;
    if (cc_dataset_read(a->data, &opt, &all) != 0) return -1;
    if (a->val_data) {
        cc_dataset_options vopt = opt;
        vopt.split = a->val_split_name;
        r->train = all;
        if (cc_dataset_read(a->val_data, &vopt, &r->val) != 0) return -1;
    } else {
        int status = cc_dataset_split(&all, a->val_split, (uint64_t)a->seed, &r->train, &r->val);
        cc_dataset_free(&all);
        if (status != 0) return -1;
    }
    if (pairs_per_epoch(r) < a->batch) {
        cc_set_error("%s: %lld training %s, fewer than one batch of %lld", a->data, (long long)pairs_per_epoch(r),
                     a->every_caption ? "pairs" : "images", (long long)a->batch);
        return -1;
    }
    if (!a->every_caption && cc_dataset_sample_captions(&r->val, caption_seed(r, -1), &r->val_loss_pairs) != 0) return -1;
    /* --images-root belongs to --data: zero-shot paths are relative to their own file */
    if (a->zeroshot_data && cc_zeroshot_read(a->zeroshot_data, NULL, &r->zeroshot) != 0) return -1;
    if (a->templates && cc_zeroshot_read_templates(a->templates, &r->templates, &r->n_templates) != 0) return -1;
    if (r->val.n_pairs < 2) {
        cc_set_error("the validation set has %lld pairs; give --val-data or a larger --val-split", (long long)r->val.n_pairs);
        return -1;
    }
    return 0;
}

static int make_model(run *r) {
    train_args *a = r->a;
    char tok_dir[4200];
    snprintf(tok_dir, sizeof tok_dir, "%s/tokenizer", r->out);
    if (cc_mkdir_p(tok_dir) != 0) return -1;
    /* absolute, so that --resume and export work from any working directory */
    char abs_dir[PATH_MAX];
    if (!realpath(tok_dir, abs_dir) || strlen(abs_dir) >= sizeof r->state.tokenizer_dir) {
        cc_set_error("%s: cannot resolve the tokenizer directory (or its path is too long)", tok_dir);
        return -1;
    }
    snprintf(r->state.tokenizer_dir, sizeof r->state.tokenizer_dir, "%s", abs_dir);
    if (a->model_dir) {
        r->model = cc_clip_load(a->model_dir, r->backend);
        if (!r->model) return -1;
        r->tok = cc_tokenizer_load_dir(a->model_dir);
        if (!r->tok || (is_writer() && cc_copy_tokenizer_files(a->model_dir, tok_dir) != 0)) return -1;
        cc_preprocess_config_default(&r->pre, r->model->config.vision.image_size);
        char path[4200];
        snprintf(path, sizeof path, "%s/preprocessor_config.json", a->model_dir);
        if (cc_file_exists(path) && cc_preprocess_config_load(path, &r->pre) != 0) return -1;
        return 0;
    }
    cc_clip_config cfg;
    const char *arch = a->arch ? a->arch : "tiny";
    size_t len = strlen(arch);
    if (len > 5 && !strcmp(arch + len - 5, ".json")) {
        if (cc_clip_config_load(arch, &cfg) != 0) return -1;
    } else if (cc_clip_config_builtin(arch, &cfg) != 0) {
        return -1;
    }
    if (a->vocab) {
        r->tok = cc_tokenizer_load(a->vocab);
        if (!r->tok || (is_writer() && cc_copy_tokenizer_files(a->vocab, tok_dir) != 0)) return -1;
    } else if (!is_writer()) {
        /* data-parallel: rank 0 learns the vocabulary, the others read it once it is written */
        cc_comm_barrier();
        r->tok = cc_tokenizer_load_dir(tok_dir);
        if (!r->tok) return -1;
    } else {
        /* a vocabulary learned from the training captions */
        const char **captions = cc_malloc((size_t)r->train.n_pairs * sizeof *captions, "captions");
        if (!captions) return -1;
        for (int64_t i = 0; i < r->train.n_pairs; i++) captions[i] = r->train.pairs[i].caption;
        int learned = cc_bpe_learn(captions, r->train.n_pairs, (int)a->merges, tok_dir);
        free(captions);
        if (learned < 0) return -1;
        r->tok = cc_tokenizer_load_dir(tok_dir);
        if (!r->tok) return -1;
        cc_comm_barrier();
        if (!cc_quiet) printf("learned a BPE vocabulary of %d tokens (%d merges) -> %s\n", cc_tokenizer_vocab_size(r->tok), learned, tok_dir);
    }
    cfg.text.vocab_size = cc_tokenizer_vocab_size(r->tok);
    r->model = cc_clip_new(&cfg, r->backend);
    if (!r->model || cc_clip_init_random(r->model, (uint64_t)a->seed) != 0) return -1;
    cc_preprocess_config_default(&r->pre, cfg.vision.image_size);
    return 0;
}

static int write_val_tsv(run *r) {
    if (!is_writer()) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/val.tsv", r->out);
    cc_atomic_file af;
    if (cc_atomic_open(&af, path) != 0) return -1;
    fprintf(af.fp, "image\tcaption\n");
    char image[4096];
    for (int64_t i = 0; i < r->val.n_pairs; i++) {
        cc_dataset_image_path(&r->val, i, image, sizeof image);
        fprintf(af.fp, "%s\t", image);
        for (const char *c = r->val.pairs[i].caption; *c; c++) fputc(*c == '\t' || *c == '\n' ? ' ' : *c, af.fp);
        fputc('\n', af.fp);
    }
    return cc_atomic_commit(&af);
}

static void describe_config(run *r, char *buf, size_t size) {
    train_args *a = r->a;
    snprintf(buf, size,
             "{\"data\": \"%s\", \"batch\": %lld, \"lr\": %g, \"wd\": %g, \"warmup\": %lld, \"total_steps\": %lld, "
             "\"accum_freq\": %lld, \"grad_accum\": %lld, \"modal_reg\": %g, \"lock_image\": %d, \"lock_text\": %d, "
             "\"adapter\": %d, \"lora\": %lld, \"seed\": %lld, \"loss\": \"%s\", \"every_caption\": %d}",
             a->data, (long long)a->batch, a->lr, a->wd, (long long)a->warmup, (long long)r->total_steps,
             (long long)a->accum_freq, (long long)a->grad_accum, a->modal_reg, a->lock_image, a->lock_text, a->adapter,
             (long long)a->lora, (long long)a->seed, a->loss, a->every_caption);
}

/* On resume: the LoRA settings of the checkpoint, taken when --lora is not given, else checked. */
static int adopt_lora(train_args *a, const char *checkpoint) {
    cc_lora_config saved;
    if (cc_checkpoint_lora_config(checkpoint, &saved) != 0) return -1;
    if (saved.rank == 0 && a->lora == 0) return 0;
    if (saved.rank == 0) {
        cc_set_error("%s was trained without --lora; resume it without --lora", checkpoint);
        return -1;
    }
    if (a->lora == 0) {
        a->lora = saved.rank;
        a->lora_alpha = saved.alpha;
        a->lora_bits = saved.targets;
    }
    float alpha = a->lora_alpha > 0 ? (float)a->lora_alpha : (float)a->lora;
    if (a->lora != saved.rank || alpha != saved.alpha || a->lora_bits != saved.targets ||
        saved.text != !a->lock_text || saved.vision != !a->lock_image) {
        char targets[128];
        cc_lora_targets_str(saved.targets, targets, sizeof targets);
        cc_set_error("%s was trained with --lora %d --lora-alpha %g --lora-targets %s%s%s; resume it with the same "
                     "(or no) LoRA options and locked towers", checkpoint, saved.rank, (double)saved.alpha, targets,
                     saved.text ? "" : " --lock-text", saved.vision ? "" : " --lock-image");
        return -1;
    }
    return 0;
}

static int start_trainer(run *r) {
    train_args *a = r->a;
    cc_trainer_config tc;
    cc_trainer_config_default(&tc);
    tc.adamw.lr = (float)a->lr;
    tc.adamw.weight_decay = (float)a->wd;
    tc.adamw.max_grad_norm = (float)a->max_grad_norm;
    tc.adamw.warmup_steps = a->warmup;
    tc.adamw.total_steps = r->total_steps;
    tc.accum_freq = (int)a->accum_freq;
    tc.modal_reg = (float)a->modal_reg;
    tc.lock_image = a->lock_image;
    tc.lock_text = a->lock_text;
    tc.adapter = a->adapter;
    tc.lora = (cc_lora_config){.rank = (int)a->lora, .alpha = a->lora_alpha > 0 ? (float)a->lora_alpha : (float)a->lora,
                               .targets = a->lora_bits, .seed = (uint64_t)a->seed};
    tc.checkpoint_activations = a->checkpoint_activations;
    tc.bf16_matmul = a->precision && !strcmp(a->precision, "bf16") && cc_gemm_has_bf16();
    tc.loss = !strcmp(a->loss, "siglip") ? CC_LOSS_SIGLIP : CC_LOSS_CLIP;
    if (cc_trainer_init(&r->tr, r->model, &tc) != 0) return -1;
    r->trainer_ready = 1;
    describe_config(r, r->state.train_config, sizeof r->state.train_config);
    return 0;
}

/* ---- the loop ---- */

static int append_loss(const char *path, int64_t step, double loss) {
    if (!is_writer()) return 0;
    FILE *fp = fopen(path, "a");
    if (!fp || fprintf(fp, "%lld %.7g\n", (long long)step, loss) < 0 || fclose(fp) != 0) {
        cc_set_error("%s: cannot append: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* On resume: drops the --loss-log lines of steps after the checkpoint's (a run that went on past
 * its last checkpoint logged them; they are trained again), so that each step appears once. */
static int trim_loss_log(const char *path, int64_t step) {
    if (!is_writer() || !cc_file_exists(path)) return 0;
    char *text;
    size_t size;
    if (cc_read_file(path, &text, &size) != 0) return -1;
    char *kept = cc_malloc(size + 1, "loss log");
    if (!kept) {
        free(text);
        return -1;
    }
    size_t w = 0;
    for (size_t i = 0; i < size;) {
        size_t end = i;
        while (end < size && text[end] != '\n') end++;
        long long line_step = strtoll(text + i, NULL, 10);
        if (line_step <= step) {
            memcpy(kept + w, text + i, end - i);
            w += end - i;
            kept[w++] = '\n';
        }
        i = end + 1;
    }
    int status = w == size ? 0 : cc_write_file_atomic(path, kept, w);
    free(text);
    free(kept);
    return status;
}

/* Data-parallel: all ranks compare a checksum of their weights and moments; a rank that differs
 * from rank 0 stops the job, named. */
static int check_replicas(run *r) {
    if (!cc_comm_is_distributed()) return 0;
    uint64_t mine, all[cc_comm_size()];
    if (cc_trainer_state_hash(&r->tr, &mine) != 0) return -1;
    cc_comm_allgather_u64(mine, all);
    for (int k = 1; k < cc_comm_size(); k++)
        if (all[k] != all[0]) {
            if (!is_writer()) cc_comm_barrier(); /* rank 0 ends the job */
            char text[256];
            snprintf(text, sizeof text, "train: after step %lld the weights of rank %d differ from rank 0's (checksum %016llx vs %016llx)",
                     (long long)r->state.step, k, (unsigned long long)all[k], (unsigned long long)all[0]);
            cc_comm_abort(text);
        }
    return 0;
}

/* The global batch this step: every rank's pairs and skipped images summed; *usable = 0 when some
 * rank's slice is empty or not a multiple of --accum-freq, or fewer than two pairs in all (then every
 * rank skips the batch). */
static int64_t global_batch(const run *r, const cc_batch *b, int64_t *skipped, int *usable) {
    int n_ranks = cc_comm_size();
    int64_t n[n_ranks], s[n_ranks], total = 0, K = r->a->accum_freq;
    cc_comm_allgather_i64(b->n, n);
    cc_comm_allgather_i64(b->n_skipped, s);
    *skipped = 0;
    *usable = 1;
    for (int k = 0; k < n_ranks; k++) {
        total += n[k];
        *skipped += s[k];
        if ((n_ranks > 1 && n[k] == 0) || (K > 1 && n[k] % K != 0)) *usable = 0;
    }
    if (total < 2) *usable = 0;
    return total;
}

static int train_loop(run *r) {
    train_args *a = r->a;
    cc_progress progress;
    cc_progress_start(&progress, "train", r->total_steps, "steps");
    progress.done = r->state.step;
    int bad_in_row = 0, status = 0, accumulated = 0;
    double window_start = cc_now();
    int64_t window_images = 0;
    while (r->state.step < r->total_steps && !stopping() && status == 0) {
        cc_loader_config cfg;
        cc_loader_config_default(&cfg, (int)a->batch);
        cfg.preprocess = r->pre;
        cfg.context = r->model->config.text.max_positions;
        cfg.skip_unreadable = 1;
        cfg.drop_last = 1;
        cfg.shuffle = 1;
        cfg.seed = (uint64_t)a->seed * 1000003u + (uint64_t)r->state.epoch;
        cfg.n_workers = (int)a->workers;
        cfg.start_batch = r->state.batch_in_epoch;
        cfg.slice_count = cc_comm_size();
        cfg.slice_index = cc_comm_rank();
        const cc_dataset *pairs = epoch_dataset(r);
        cc_loader *loader = pairs ? cc_loader_create(pairs, r->tok, &cfg) : NULL;
        if (!loader) return -1;
        cc_batch *b;
        int got = 0;
        while (r->state.step < r->total_steps && !stopping() && (got = cc_loader_next(loader, &b)) == 1) {
            r->state.batch_in_epoch++;
            int64_t n_skipped, n_pairs;
            int usable;
            n_pairs = global_batch(r, b, &n_skipped, &usable);
            if (b->n_skipped && r->state.skipped_images < 5 && b->skip_reason)
                fprintf(stderr, "%sclipc train: skipping unreadable image: %s\n", progress.enabled ? "\r\033[K" : "",
                        b->skip_reason);
            r->state.skipped_images += n_skipped;
            if (!usable) continue;
            cc_train_batch batch = {b->images, b->tokens, b->eot_pos, b->n};
            float loss;
            if (cc_trainer_accumulate(&r->tr, &batch, &loss) != 0) {
                status = -1;
                break;
            }
            double norm = 0;
            if (isfinite(loss)) cc_adamw_grad_norm(&r->tr.opt, 1.0f, &norm);
            /* data-parallel: one rank's non-finite gradient makes every rank skip the batch */
            if (cc_comm_any(!isfinite(loss) || !isfinite(norm))) {
                fprintf(stderr, "%sclipc train: step %lld: %s loss or gradient (loss %g); batch skipped\n",
                        progress.enabled ? "\r\033[K" : "", (long long)r->state.step, isfinite(loss) ? "non-finite" : "NaN/Inf", (double)loss);
                cc_trainer_zero_grad(&r->tr);
                accumulated = 0;
                r->step_loss_sum = 0;
                r->step_loss_count = 0;
                if (++bad_in_row >= MAX_BAD_BATCHES) {
                    cc_set_error("%d batches in a row had NaN/Inf losses or gradients; stopping (the last good checkpoint is kept)",
                                 MAX_BAD_BATCHES);
                    status = -1;
                    break;
                }
                continue;
            }
            bad_in_row = 0;
            r->train_loss_sum += loss;
            r->train_loss_count++;
            r->step_loss_sum += loss;
            r->step_loss_count++;
            r->images_seen += n_pairs;
            window_images += n_pairs;
            if (++accumulated < a->grad_accum) continue;
            accumulated = 0;
            if (cc_trainer_apply(&r->tr, 1.0f / (float)a->grad_accum, NULL) != 0) {
                status = -1;
                break;
            }
            r->state.step++;
            if (a->loss_log && append_loss(a->loss_log, r->state.step, r->step_loss_sum / (double)r->step_loss_count) != 0) {
                status = -1;
                break;
            }
            r->step_loss_sum = 0;
            r->step_loss_count = 0;
            if (r->state.step % REPLICA_CHECK_EVERY == 0 && check_replicas(r) != 0) {
                status = -1;
                break;
            }
            /* a Ctrl-C seen by any rank stops all of them after the same step */
            if (cc_comm_is_distributed()) interrupted_everywhere = cc_comm_any(interrupted);
            double now = cc_now();
            cc_progress_set_extra(&progress, "loss %.3f  %.0f img/s", (double)loss,
                                  now > window_start ? (double)window_images / (now - window_start) : 0.0);
            cc_progress_update(&progress, r->state.step);
            if (a->eval_every > 0 && r->state.step % a->eval_every == 0 && r->state.step < r->total_steps) {
                cc_progress_finish(&progress);
                if (evaluate_and_log(r, "eval") != 0) status = -1;
            }
            if (status == 0 && a->save_every > 0 && r->state.step % a->save_every == 0 && save_checkpoint(r) != 0)
                status = -1;
        }
        if (status == 0 && got < 0) status = -1;
        int epoch_done = status == 0 && !stopping() && r->state.batch_in_epoch >= cc_loader_n_batches(loader);
        cc_loader_free(loader);
        if (epoch_done) {
            r->state.epoch++;
            r->state.batch_in_epoch = 0;
            if (a->epochs > 0 && r->state.step < r->total_steps && a->eval_every == 0) {
                cc_progress_finish(&progress);
                if (evaluate_and_log(r, "epoch") != 0) status = -1;
            }
        }
    }
    cc_progress_finish(&progress);
    return status;
}

static int export_final(run *r) {
    if (!is_writer()) return 0;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/model", r->out);
    if (r->tr.lora.n_pairs && save_lora(r) != 0) return -1; /* before the pairs are merged (and zeroed) */
    if (cc_trainer_merge_adapters(&r->tr) != 0) return -1;
    return cc_export_model_dir(r->model, &r->pre, r->state.tokenizer_dir, dir, CC_F32);
}

static int run_train(int argc, char **argv);
static int train_main(train_args *a);
const cc_command cmd_train = {
    "train",
    "(--model DIR | --arch tiny|b32|CONFIG.json) --data FILE [--images-root DIR] --out DIR [options]",
    "Fine-tune CLIP (or train one from scratch) on image-caption pairs; saves checkpoints and OUT/model.", run_train};

static int run_train(int argc, char **argv) {
    train_args a = {.val_split = 0.05, .lr = 5e-4, .wd = 0.2, .max_grad_norm = 1.0, .batch = 64, .seed = 1,
                    .accum_freq = 1, .grad_accum = 1, .merges = 2000, .epochs = 0, .steps = 0, .eval_every = 0,
                    .warmup = -1, .lora = -1};
    cc_option options[] = {
        {"--model", CC_OPT_STRING, &a.model_dir, "DIR", "start from this Hugging Face CLIP model (fine-tuning)"},
        {"--arch", CC_OPT_STRING, &a.arch, "NAME", "train from scratch: tiny, b32, or a config.json (default tiny)"},
        {"--data", CC_OPT_STRING, &a.data, "FILE", "pairs: COCO captions JSON, Karpathy JSON, TSV/CSV with a header, or WebDataset shards 'shards/{00000..00099}.tar' (see clipc shards)"},
        {"--images-root", CC_OPT_STRING, &a.images_root, "DIR", "directory image paths are relative to (default: the data file's; not used for shards)"},
        {"--out", CC_OPT_STRING, &a.out, "DIR", "output directory (checkpoints, model, logs)"},
        {"--val-data", CC_OPT_STRING, &a.val_data, "FILE", "validation pairs (default: --val-split of --data)"},
        {"--val-split", CC_OPT_FLOAT, &a.val_split, "F", "fraction of the images held out for validation (default 0.05)"},
        {"--split", CC_OPT_STRING, &a.split, "NAMES", "Karpathy JSON: splits to train on, e.g. train,restval"},
        {"--val-split-name", CC_OPT_STRING, &a.val_split_name, "NAMES", "Karpathy JSON: splits of --val-data, e.g. val"},
        {"--csv-img-key", CC_OPT_STRING, &a.img_key, "NAME", "TSV/CSV image column (default image)"},
        {"--csv-caption-key", CC_OPT_STRING, &a.caption_key, "NAME", "TSV/CSV caption column (default caption)"},
        {"--epochs", CC_OPT_INT, &a.epochs, "N", "passes over the training pairs"},
        {"--steps", CC_OPT_INT, &a.steps, "N", "optimizer steps (instead of --epochs)"},
        {"--batch", CC_OPT_INT, &a.batch, "B", "pairs per batch (default 64; under mpirun the global batch, split over the ranks)"},
        {"--lr", CC_OPT_FLOAT, &a.lr, "LR", "peak learning rate (default 5e-4)"},
        {"--wd", CC_OPT_FLOAT, &a.wd, "WD", "AdamW weight decay on weight matrices (default 0.2)"},
        {"--warmup", CC_OPT_INT, &a.warmup, "N", "linear warmup steps, then cosine decay (default 5% of the steps)"},
        {"--max-grad-norm", CC_OPT_FLOAT, &a.max_grad_norm, "X", "clip the global gradient norm (default 1; 0 = off)"},
        {"--accum-freq", CC_OPT_INT, &a.accum_freq, "K", "split each batch into K micro-batches (open_clip; same loss)"},
        {"--grad-accum", CC_OPT_INT, &a.grad_accum, "N", "batches whose gradients are summed per optimizer step"},
        {"--loss", CC_OPT_STRING, &a.loss, "clip|siglip",
         "CLIP's InfoNCE (default) or SigLIP's pairwise sigmoid loss (adds a learnable logit_bias)"},
        {"--every-caption", CC_OPT_FLAG, &a.every_caption, NULL,
         "train on every caption each epoch (default: one caption per image, drawn per epoch)"},
        {"--zeroshot-data", CC_OPT_STRING, &a.zeroshot_data, "FILE",
         "also evaluate zero-shot top-1/top-5 on lines \"image<TAB>label\" (paths relative to FILE's directory)"},
        {"--templates", CC_OPT_STRING, &a.templates, "FILE", "zero-shot prompt templates with {} (default: clipc's 22)"},
        {"--modal-reg", CC_OPT_FLOAT, &a.modal_reg, "L", "modal-alignment regulariser weight (default 0)"},
        {"--lock-image", CC_OPT_FLAG, &a.lock_image, NULL, "freeze the image tower (LiT)"},
        {"--lock-text", CC_OPT_FLAG, &a.lock_text, NULL, "freeze the text tower"},
        {"--adapter", CC_OPT_FLAG, &a.adapter, NULL, "train only a linear adapter after each tower (merged on export)"},
        {"--lora", CC_OPT_INT, &a.lora, "R", "train only rank-R LoRA updates of the unlocked towers' blocks (PEFT names in OUT/lora; merged on export)"},
        {"--lora-alpha", CC_OPT_FLOAT, &a.lora_alpha, "A", "LoRA alpha: each update is (alpha/R)·B·A (default R, a scale of 1)"},
        {"--lora-targets", CC_OPT_STRING, &a.lora_targets, "LIST", "LoRA matrices: q,k,v,qkv,out,fc1,fc2,mlp,all (default q,v: PEFT's usual q_proj,v_proj)"},
        {"--checkpoint-activations", CC_OPT_FLAG, &a.checkpoint_activations, NULL,
         "recompute each transformer block in backward: less memory, ~1/3 more compute"},
        {"--vocab", CC_OPT_STRING, &a.vocab, "PATH", "from scratch: tokenizer files (default: learn BPE from the captions)"},
        {"--merges", CC_OPT_INT, &a.merges, "N", "from scratch: BPE merges to learn (default 2000)"},
        {"--seed", CC_OPT_INT, &a.seed, "S", "seed of initialisation, split and data order (default 1)"},
        {"--save-every", CC_OPT_INT, &a.save_every, "N", "checkpoint every N steps (default: each eval, and at the end)"},
        {"--eval-every", CC_OPT_INT, &a.eval_every, "N", "evaluate every N steps (default: every epoch)"},
        {"--resume", CC_OPT_FLAG, &a.resume, NULL, "continue from OUT/checkpoints/latest"},
        {"--loss-log", CC_OPT_STRING, &a.loss_log, "FILE", "append \"step loss\" per optimizer step to FILE"},
        {"--workers", CC_OPT_INT, &a.workers, "N", "image decoding threads (default: cores)"},
        {"--style", CC_OPT_STRING, &a.style, "NAME", CC_STYLE_HELP},
        {"--device", CC_OPT_STRING, &a.device, "DEV", "cpu (default) or cuda"},
        {"--precision", CC_OPT_STRING, &a.precision, "P", "products in f32 (default) or bf16 (CPUs with AVX512_BF16; float weights, AdamW and loss)"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_train, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (cc_comm_init(NULL, NULL) != 0) return fail(cc_last_error()), 2;
    int exit_code = train_main(&a);
    cc_comm_finalize();
    return exit_code;
}

/* Everything after option parsing (between MPI's init and finalize when data-parallel). */
static int train_main(train_args *args) {
    train_args a = *args;
    if (a.batch % cc_comm_size() != 0) {
        char text[256];
        snprintf(text, sizeof text, "--batch %lld (the global batch) is not a multiple of the %d ranks", (long long)a.batch,
                 cc_comm_size());
        return fail(text), 2;
    }
    if (a.accum_freq > 1 && (a.batch / cc_comm_size()) % a.accum_freq != 0) {
        char text[256];
        snprintf(text, sizeof text, "each rank's slice of --batch (%lld / %d ranks) is not a multiple of --accum-freq %lld",
                 (long long)a.batch, cc_comm_size(), (long long)a.accum_freq);
        return fail(text), 2;
    }
    if (!is_writer()) cc_quiet = 1; /* rank 0 alone prints progress and results */
    if (a.precision && strcmp(a.precision, "f32") && strcmp(a.precision, "bf16"))
        return fail("--precision must be f32 or bf16"), 2;
    if (a.precision && !strcmp(a.precision, "bf16") && !cc_gemm_has_bf16())
        fprintf(stderr, "clipc train: warning: bf16 needs a CPU with AVX512_BF16 instructions, which this one lacks; "
                        "running in f32\n");
    if (!a.data || !a.out) return fail("--data and --out are required"), 2;
    if (a.model_dir && a.arch) return fail("give --model (fine-tune) or --arch (from scratch), not both"), 2;
    if (a.batch < 2 || a.accum_freq < 1 || a.grad_accum < 1 || a.batch % a.accum_freq != 0)
        return fail("--batch must be >= 2 and a multiple of --accum-freq; --grad-accum >= 1"), 2;
    if (a.epochs > 0 && a.steps > 0) return fail("give --epochs or --steps, not both"), 2;
    if (a.epochs <= 0 && a.steps <= 0) a.epochs = 1;
    if (a.loss && strcmp(a.loss, "clip") != 0 && strcmp(a.loss, "siglip") != 0)
        return fail("--loss must be clip or siglip"), 2;
    if (a.templates && !a.zeroshot_data) return fail("--templates needs --zeroshot-data"), 2;
    if (a.lora != -1 && a.lora < 1) {
        char text[128];
        snprintf(text, sizeof text, "--lora: the rank must be at least 1 (got %lld)", (long long)a.lora);
        return fail(text), 2;
    }
    if (a.lora == -1 && (a.lora_alpha != 0 || a.lora_targets)) return fail("--lora-alpha and --lora-targets need --lora R"), 2;
    if (a.lora == -1) a.lora = 0;
    if (a.lora > 0 && a.adapter) return fail("--adapter and --lora are two ways of fine-tuning: give one"), 2;
    if (a.lora_alpha < 0 || !isfinite(a.lora_alpha)) return fail("--lora-alpha must be a positive number"), 2;
    unsigned lora_targets = CC_LORA_DEFAULT_TARGETS;
    if (a.lora_targets && cc_lora_parse_targets(a.lora_targets, &lora_targets) != 0) return fail(cc_last_error()), 2;
    a.lora_bits = lora_targets;
    if (a.lora > 0 && a.lock_image && a.lock_text) return fail("--lora with both --lock-image and --lock-text leaves nothing to train"), 2;
    cc_preprocess_style style = CC_PREPROCESS_OPENAI;
    if (a.style && cc_preprocess_style_parse(a.style, &style) != 0) return fail(cc_last_error()), 2;
    run r = {.a = &a, .epoch_pairs_of = -1};
    snprintf(r.out, sizeof r.out, "%s", a.out);
    r.curves = cc_calloc(1, sizeof *r.curves, "curves");
    int status = r.curves && cc_mkdir_p(a.out) == 0 ? 0 : -1;
    r.backend = status == 0 ? cc_backend_by_name(a.device) : NULL;
    if (!r.backend) status = -1;
    if (status == 0) status = read_data(&r);
    char resume_path[4400] = "";
    int resuming = a.resume && status == 0 && latest_checkpoint(a.out, resume_path, sizeof resume_path) == 0;
    if (a.resume && status == 0 && !resuming) fprintf(stderr, "clipc train: no checkpoint in %s/checkpoints; starting fresh\n", a.out);
    if (status == 0 && resuming) {
        r.model = cc_checkpoint_load_model(resume_path, r.backend, &r.state, NULL, NULL);
        r.tok = r.model ? cc_tokenizer_load_dir(r.state.tokenizer_dir) : NULL;
        const char *saved_loss = strstr(r.state.train_config, "\"loss\": \"siglip\"") ? "siglip" : "clip";
        if (r.model && !a.loss) a.loss = saved_loss;
        if (r.model && strcmp(a.loss, saved_loss) != 0) {
            cc_set_error("%s was trained with --loss %s; resume it with the same loss", resume_path, saved_loss);
            status = -1;
        }
        if (status == 0 && r.model && adopt_lora(&a, resume_path) != 0) status = -1;
        if (!r.model || !r.tok) status = -1;
        else cc_preprocess_config_default(&r.pre, r.model->config.vision.image_size);
        char path[4200];
        snprintf(path, sizeof path, "%s/model/preprocessor_config.json", a.out);
        if (a.model_dir) {
            snprintf(path, sizeof path, "%s/preprocessor_config.json", a.model_dir);
            if (status == 0 && cc_file_exists(path) && cc_preprocess_config_load(path, &r.pre) != 0) status = -1;
        }
    } else if (status == 0) {
        status = make_model(&r);
        r.state.seed = (uint64_t)a.seed;
    }
    if (!a.loss) a.loss = "clip";
    if (status == 0) r.pre.style = style;
    if (status == 0) {
        r.steps_per_epoch = pairs_per_epoch(&r) / a.batch / a.grad_accum;
        if (r.steps_per_epoch < 1) r.steps_per_epoch = 1;
        r.total_steps = a.steps > 0 ? a.steps : a.epochs * r.steps_per_epoch;
        if (a.warmup < 0) a.warmup = r.total_steps / 20;
        if (a.save_every <= 0) a.save_every = a.eval_every > 0 ? a.eval_every : r.steps_per_epoch;
        status = start_trainer(&r);
    }
    if (status == 0 && resuming) {
        status = cc_checkpoint_restore_trainer(resume_path, &r.tr);
        if (status == 0 && a.loss_log) status = trim_loss_log(a.loss_log, r.state.step);
        if (status == 0 && !cc_quiet)
            printf("resuming from %s (step %lld, epoch %lld, batch %lld)\n", resume_path, (long long)r.state.step,
                   (long long)r.state.epoch, (long long)r.state.batch_in_epoch);
    }
    if (status == 0) status = write_val_tsv(&r);
    if (status == 0 && !cc_quiet)
        printf("training %s (%s loss): %lld train pairs (%lld images%s), %lld val pairs (%lld images); %lld steps of %lld "
               "(%lld per epoch); %.2f M trainable parameters; %d threads\n",
               a.model_dir ? a.model_dir : (a.arch ? a.arch : "tiny"), a.loss, (long long)r.train.n_pairs,
               (long long)r.train.n_images,
               !a.every_caption && r.train.n_pairs > r.train.n_images ? ", one caption per image per epoch" : "", (long long)r.val.n_pairs, (long long)r.val.n_images, (long long)r.total_steps,
               (long long)a.batch, (long long)r.steps_per_epoch, (double)r.tr.n_trainable / 1e6, cc_get_threads());
    if (status == 0 && !cc_quiet) {
        char targets[128] = "";
        cc_lora_targets_str(r.tr.config.lora.targets, targets, sizeof targets);
        if (r.tr.lora.n_pairs)
            printf("LoRA rank %d, alpha %g (scale %g) on %s of the %s tower%s: %d pairs, ", r.tr.config.lora.rank,
                   (double)r.tr.config.lora.alpha, (double)(r.tr.config.lora.alpha / (float)r.tr.config.lora.rank),
                   targets, r.tr.config.lora.text && r.tr.config.lora.vision ? "text and vision" : r.tr.config.lora.text ? "text" : "vision",
                   r.tr.config.lora.text && r.tr.config.lora.vision ? "s" : "", r.tr.lora.n_pairs);
        printf("%lld trainable parameters (%.3f%% of %lld), %lld frozen; optimizer state %.2f MB (AdamW moments) + "
               "%.2f MB (gradients)\n",
               (long long)r.tr.n_trainable, 100.0 * (double)r.tr.n_trainable / (double)(r.tr.n_trainable + r.tr.n_frozen),
               (long long)(r.tr.n_trainable + r.tr.n_frozen), (long long)r.tr.n_frozen,
               (double)cc_trainer_moment_bytes(&r.tr) / 1e6, (double)cc_trainer_gradient_bytes(&r.tr) / 1e6);
    }
    r.start_time = cc_now();
    if (status == 0) status = check_replicas(&r);
    if (status == 0 && !resuming) status = evaluate_and_log(&r, "start");
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    if (status == 0) status = train_loop(&r);
    sigaction(SIGINT, &old_sa, NULL);
    if (r.trainer_ready && (status == 0 || stopping())) {
        if (save_checkpoint(&r) != 0) status = -1;
        else if (stopping() && is_writer()) fprintf(stderr, "\nclipc train: interrupted; checkpoint saved at step %lld (resume with --resume)\n",
                                      (long long)r.state.step);
    }
    if (status == 0 && !stopping() && r.state.step % REPLICA_CHECK_EVERY != 0) status = check_replicas(&r);
    if (status == 0 && !stopping()) status = evaluate_and_log(&r, "end");
    size_t peak_activations = cc_trainer_peak_activation_bytes(&r.tr); /* before merging drops the graphs */
    if (status == 0 && !stopping()) status = export_final(&r);
    double seconds = cc_now() - r.start_time;
    if (status == 0 && !stopping() && is_writer())
        printf("done: %lld steps in %.0f s (%.1f img/s); peak activations %.0f MB; %lld unreadable images skipped; "
               "model -> %s/model\n",
               (long long)r.state.step, seconds, seconds > 0 ? (double)r.images_seen / seconds : 0.0,
               (double)peak_activations / 1e6, (long long)r.state.skipped_images, a.out);
    int exit_code = status != 0 ? fail(cc_last_error()) : stopping() ? 130 : 0;
    if (r.trainer_ready && getenv("CLIPC_PROFILE")) cc_trainer_print_profile(&r.tr, stderr);
    if (r.trainer_ready) cc_trainer_free(&r.tr);
    cc_clip_free(r.model);
    cc_tokenizer_free(r.tok);
    cc_dataset_free(&r.train);
    cc_dataset_free(&r.val);
    cc_dataset_free(&r.val_loss_pairs);
    cc_dataset_free(&r.epoch_pairs);
    cc_zeroshot_free(&r.zeroshot);
    cc_zeroshot_free_strings(r.templates, r.n_templates);
    free(r.curves);
    return exit_code;
}
