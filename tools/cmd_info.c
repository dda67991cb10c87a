/* cmd_info.c — `clipc info --model DIR`: the model's configuration and parameter counts. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/clip.h"
#include "engine/util.h"
#include "tools/commands.h"

static const char *act_label(cc_act_kind act) {
    return act == CC_ACT_QUICK_GELU ? "quick_gelu" : act == CC_ACT_GELU_ERF ? "gelu (erf)" : "gelu (tanh)";
}

static void print_tower(const char *label, const cc_clip_tower_config *t, int is_text, int64_t n_params) {
    printf("%s tower: %d layers, width %d, %d heads (head dim %d), MLP %d, %s, layernorm eps %g\n", label, t->num_layers,
           t->hidden_size, t->num_heads, t->hidden_size / t->num_heads, t->intermediate_size, act_label(t->act),
           (double)t->layer_norm_eps);
    if (is_text)
        printf("  vocabulary %d tokens, context %d\n", t->vocab_size, t->max_positions);
    else
        printf("  image %dx%d, patch %d (%d patches + class token), %d channels\n", t->image_size, t->image_size,
               t->patch_size, (t->image_size / t->patch_size) * (t->image_size / t->patch_size), t->num_channels);
    printf("  parameters: %.2f M\n", (double)n_params / 1e6);
}

static int run_info(int argc, char **argv);
const cc_command cmd_info = {"info", "--model DIR", "Print a model's configuration and parameter counts.", run_info};

static int run_info(int argc, char **argv) {
    const char *model_dir = NULL;
    cc_option options[] = {
        {"--model", CC_OPT_STRING, &model_dir, "DIR", "Hugging Face CLIP model directory (config.json + safetensors)"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_info, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!model_dir) return cc_command_error(&cmd_info, "--model DIR is required") + 1;
    cc_clip_model *m = cc_clip_load(model_dir, NULL);
    if (!m) return cc_command_error(&cmd_info, cc_last_error());
    const cc_clip_config *c = &m->config;
    printf("model: %s\n", model_dir);
    print_tower("vision", &c->vision, 0, m->n_vision_params);
    print_tower("text", &c->text, 1, m->n_text_params);
    float scale = ((float *)m->logit_scale->data)[0];
    int64_t total = m->n_vision_params + m->n_text_params + 1;
    printf("projection dim %d, logit scale %.4f (temperature 1/%.2f)\n", c->projection_dim, (double)scale,
           (double)expf(scale));
    printf("total parameters: %.2f M (%.1f MB as f32)\n", (double)total / 1e6, (double)total * 4 / 1e6);
    cc_clip_free(m);
    return 0;
}
