/* dataset.h — image-caption pairs: readers for COCO captions JSON, Karpathy split JSON and open_clip
 * style TSV/CSV files; seeded shuffling; a train/val split by image; and a loader whose worker threads
 * decode, preprocess and tokenize batches ahead of the consumer.
 *
 * Formats:
 *   COCO      captions_*.json: {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}
 *             one pair per annotation, image path = file_name (relative to the image root)
 *   Karpathy  dataset_coco.json: {"images": [{"filepath", "filename", "split", "sentences": [{"raw"}]}]}
 *             one pair per sentence, image path = filepath/filename; a split filter keeps e.g.
 *             "train,restval"
 *   TSV/CSV   a header row naming the columns; the image and caption columns are chosen by name
 *             (open_clip's --csv-img-key / --csv-caption-key; default "image"/"caption", then
 *             "filepath"/"title"); separator tab, or comma for *.csv; RFC 4180 quoting ("" inside
 *             quotes, separators and newlines inside quoted fields).
 *   shards    WebDataset tar shards, "dir/{00000..00099}.tar" (brace ranges, comma lists of patterns;
 *             data/webdataset.h): image paths are shard references read by offset
 * Captions with invalid UTF-8 are repaired (U+FFFD, as Python's errors="replace") and counted.
 * Errors name the file and the line (and column for JSON).
 */
#ifndef CLIPC_DATASET_H
#define CLIPC_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/preprocess.h"
#include "data/tokenizer.h"

typedef struct cc_pair {
    const char *image;    /* path relative to the dataset root (or absolute) */
    const char *caption;
    int64_t image_index;  /* the distinct image this pair shows: pairs of one image share it */
} cc_pair;

typedef struct cc_string_block cc_string_block;

typedef struct cc_dataset {
    cc_pair *pairs;
    int64_t n_pairs, cap_pairs;
    int64_t n_images;          /* distinct image paths */
    char *root;                /* directory image paths are relative to ("" = the current one) */
    int64_t n_invalid_utf8;    /* invalid UTF-8 sequences repaired in captions while reading */
    int64_t n_skipped_samples; /* WebDataset shards: samples skipped while reading (data/webdataset.h) */
    cc_string_block *strings;  /* storage of the paths and captions */
    void *image_map;           /* internal: image path -> image_index */
} cc_dataset;

typedef enum { CC_DATASET_AUTO = 0, CC_DATASET_COCO, CC_DATASET_KARPATHY, CC_DATASET_CSV } cc_dataset_format;

typedef struct cc_dataset_options {
    cc_dataset_format format;  /* AUTO: .json -> COCO or Karpathy by content, else TSV/CSV */
    const char *image_root;    /* NULL: the directory of the dataset file */
    const char *split;         /* Karpathy: comma-separated splits to keep (NULL = all) */
    const char *img_key;       /* TSV/CSV column names (NULL = defaults above) */
    const char *caption_key;
    char separator;            /* TSV/CSV: 0 = tab, or ',' for *.csv */
} cc_dataset_options;

int cc_dataset_read(const char *path, const cc_dataset_options *options, cc_dataset *out);
void cc_dataset_free(cc_dataset *ds);

/* Full path of pair i's image (root joined with the relative path) into buf. */
const char *cc_dataset_image_path(const cc_dataset *ds, int64_t i, char *buf, size_t size);
/* Adds a pair (strings are copied). */
int cc_dataset_add(cc_dataset *ds, const char *image, const char *caption);

/* An empty dataset whose image paths are relative to root (NULL or "" = the current directory). */
int cc_dataset_init_empty(cc_dataset *ds, const char *root);
/* One pair per distinct image (data/dataset_views.c): for each image one of its captions, drawn
 * uniformly with a cc_rng seeded with seed (the same seed gives the same choice); pairs keep the
 * order of the chosen ones in ds, so a dataset with one caption per image comes back unchanged. */
int cc_dataset_sample_captions(const cc_dataset *ds, uint64_t seed, cc_dataset *out);

/* Deterministic Fisher-Yates shuffle of the pairs (cc_rng seeded with seed). */
void cc_dataset_shuffle(cc_dataset *ds, uint64_t seed);
/* Splits by image: a seeded random val_fraction of the distinct images (at least one when
 * val_fraction > 0 and there are 2+ images) goes to val with all its pairs; no image is in both. */
int cc_dataset_split(const cc_dataset *ds, double val_fraction, uint64_t seed, cc_dataset *train, cc_dataset *val);

/* ---------------------------------------------------------------------------------------------- */
/* Batch loader                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

typedef struct cc_loader_config {
    int batch_size;
    int n_workers;             /* decoding threads (0 = cc_get_threads()) */
    int prefetch;              /* batches in flight ahead of the consumer (0 = 2 + n_workers / 2) */
    int context;               /* token ids per caption (0 = 77) */
    cc_preprocess_config preprocess;
    int skip_unreadable;       /* 1 (training): skip and count unreadable images; 0: stop with an error */
    int drop_last;             /* 1: no final partial batch */
    int shuffle;               /* 1: visit the pairs in a seeded random order */
    int64_t start_batch;       /* first batch to produce (resuming mid-epoch); earlier ones are not loaded */
    uint64_t seed;
    int slice_count;           /* > 1 (data-parallel ranks): batch_size is the global batch; only the contiguous */
    int slice_index;           /* slice_index-th 1/slice_count of each batch is loaded (needs drop_last) */
} cc_loader_config;

void cc_loader_config_default(cc_loader_config *cfg, int batch_size);

typedef struct cc_batch {
    int n;                     /* pairs in this batch: batch_size, fewer at the end or when skipped */
    int image_size;            /* S: images are [n][3][S][S] (crop_height x crop_width in general) */
    int context;
    float *images;             /* [n][3][crop_height][crop_width] */
    int32_t *tokens;           /* [n][context], sot ... eot, zero padded, truncated to fit */
    int32_t *eot_pos;          /* [n] position of eot in each row */
    int64_t *pair_index;       /* [n] index of each pair in the dataset */
    int n_skipped;             /* unreadable images skipped in this batch (skip_unreadable mode) */
    const char *skip_reason;   /* the first skipped image's error (names the file), or NULL */
    int64_t index;             /* batch number in the epoch */
} cc_batch;

typedef struct cc_loader cc_loader;

/* Starts the workers on one epoch over ds (which must outlive the loader). tok may be NULL (then no
 * tokens are produced). */
cc_loader *cc_loader_create(const cc_dataset *ds, cc_tokenizer *tok, const cc_loader_config *cfg);
/* Waits for the next batch. Returns 1 and *batch (valid until the next call), 0 at the end of the
 * epoch, -1 on error (strict mode: the message names the unreadable file). */
int cc_loader_next(cc_loader *loader, cc_batch **batch);
int64_t cc_loader_n_batches(const cc_loader *loader);
int64_t cc_loader_total_skipped(const cc_loader *loader);
void cc_loader_free(cc_loader *loader);

#endif
