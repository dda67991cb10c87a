/* webdataset.h — WebDataset tar shards as a cc_dataset, and writing pairs into shards.
 *
 * A shard spec is a comma-separated list of patterns, each ending in ".tar", with brace ranges
 * "{000..099}" (zero padded when either end has a leading zero, as braceexpand / open_clip) and
 * brace lists "{a,b}". Reading indexes each shard's headers at open (bodies are seeked past; only
 * caption members are read) and groups consecutive members by key (the name up to the first dot of
 * its last path component, as WebDataset): a sample is an image (.jpg .jpeg .png .webp) plus a
 * caption (.txt, else .json with a string "caption" or "text"). Samples missing either, or whose
 * caption cannot be read, are skipped and counted; a shard whose headers go bad part-way keeps the
 * samples before the bad header. The skips are reported on stderr once, at the end of reading:
 *   warning: N samples skipped in FILE: reason
 *
 * Each pair's image "path" is a shard reference "SHARD@OFFSET+SIZE/MEMBER" (SHARD absolute): the
 * image bytes are read by offset from the shard (random access), so shuffling, splitting and the
 * loader's threads work as for image files; there is no sequential stream or shuffle buffer.
 */
#ifndef CLIPC_WEBDATASET_H
#define CLIPC_WEBDATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/preprocess.h"

#define CC_SHARD_MAX_PATHS 1000000 /* most shards one spec may expand to */

/* Whether a --data value is a shard spec (every comma-separated item ends in ".tar"). */
int cc_shard_spec_is(const char *spec);
/* Expands a spec into *paths (n of them; free each and the array with cc_shard_paths_free). */
int cc_shard_spec_expand(const char *spec, char ***paths, int64_t *n);
void cc_shard_paths_free(char **paths, int64_t n);

/* Reads every shard of spec into out (root ""); an error names the shard and what is wrong. */
int cc_dataset_read_shards(const char *spec, cc_dataset *out);

/* Parses a shard reference: 1 (shard path into shard, offset, size, member name pointer into ref),
 * 0 when ref is a plain path. */
int cc_shard_ref_parse(const char *ref, char *shard, size_t shard_size, uint64_t *offset, uint64_t *size,
                       const char **member);
/* The bytes of an image: a file, or a shard reference's member (caller frees *data). */
int cc_dataset_image_bytes(const char *path, char **data, size_t *size);
/* Loads and preprocesses an image named by a dataset path (file or shard reference). */
int cc_dataset_preprocess_image(const cc_preprocess_config *cfg, const char *path, float *out);

/* Writes ds as shards DIR/00000.tar, ... of per_shard samples each (keys 000000000, ...; the image
 * bytes unchanged with their extension, the caption as .txt), each atomically. The brace pattern
 * to read them back goes into pattern. */
int cc_shards_write(const cc_dataset *ds, const char *dir, int64_t per_shard, char *pattern, size_t pattern_size,
                    int64_t *n_shards);

#endif
