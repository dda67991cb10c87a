/* cmd_shards.c — `clipc shards`: writes a dataset (TSV/CSV, COCO, Karpathy, or shards) as WebDataset
 * tar shards (data/webdataset.h) and prints the brace pattern that reads them back. */
#include <stdio.h>
#include <stdlib.h>

#include "data/dataset.h"
#include "data/webdataset.h"
#include "engine/util.h"
#include "tools/commands.h"

static int run_shards(int argc, char **argv);
const cc_command cmd_shards = {
    "shards", "--data PAIRS --out DIR [--per-shard 10000]",
    "Write image-caption pairs as WebDataset tar shards DIR/00000.tar, ... (image bytes unchanged, caption as .txt).",
    run_shards};

static int run_shards(int argc, char **argv) {
    const char *data = NULL, *out = NULL, *root = NULL, *split = NULL, *img_key = NULL, *caption_key = NULL;
    int64_t per_shard = 10000;
    const cc_option options[] = {
        {"--data", CC_OPT_STRING, &data, "FILE", "pairs: TSV/CSV, COCO or Karpathy JSON, or shards 'dir/{0..9}.tar'"},
        {"--out", CC_OPT_STRING, &out, "DIR", "output directory (created)"},
        {"--per-shard", CC_OPT_INT, &per_shard, "N", "samples per shard (default 10000)"},
        {"--images-root", CC_OPT_STRING, &root, "DIR", "directory image paths are relative to"},
        {"--split", CC_OPT_STRING, &split, "NAMES", "Karpathy JSON: splits to keep"},
        {"--csv-img-key", CC_OPT_STRING, &img_key, "NAME", "TSV/CSV image column"},
        {"--csv-caption-key", CC_OPT_STRING, &caption_key, "NAME", "TSV/CSV caption column"},
        {0},
    };
    int parsed = cc_parse_options(&cmd_shards, options, argc, argv, NULL);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (!data || !out || per_shard < 1) {
        fprintf(stderr, "clipc shards: --data, --out and --per-shard N >= 1 are required\n");
        return 2;
    }
    cc_dataset_options o = {.image_root = root, .split = split, .img_key = img_key, .caption_key = caption_key};
    cc_dataset ds;
    if (cc_dataset_read(data, &o, &ds) != 0) return cc_command_error(&cmd_shards, cc_last_error());
    char pattern[4200];
    int64_t n_shards = 0;
    double start = cc_now();
    int rc = cc_shards_write(&ds, out, per_shard, pattern, sizeof pattern, &n_shards);
    int64_t n_pairs = ds.n_pairs;
    cc_dataset_free(&ds);
    if (rc != 0) return cc_command_error(&cmd_shards, cc_last_error());
    fprintf(stderr, "clipc shards: wrote %lld samples in %lld shard%s in %.1f s\n", (long long)n_pairs,
            (long long)n_shards, n_shards == 1 ? "" : "s", cc_now() - start);
    printf("--data '%s'\n", pattern);
    return 0;
}
