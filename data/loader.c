/* loader.c — the prefetching batch loader of dataset.h.
 *
 * The epoch is a sequence of items (pairs, in dataset or seeded random order) cut into batches. Worker
 * threads claim items one at a time from an atomic counter, in increasing order, and fill them into a
 * ring of `prefetch` batch slots: item i belongs to batch b = i / batch_size, which lives in slot
 * b % prefetch once the consumer has released batch b - prefetch. The consumer waits until every item
 * of its batch is done, drops the skipped ones, and hands the batch out. Because items are claimed in
 * order, the oldest unfinished batch always has a free slot, so the workers cannot deadlock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/webdataset.h"
#include "engine/util.h"

typedef enum { ITEM_OK = 0, ITEM_SKIPPED, ITEM_FAILED } item_status;

typedef struct batch_slot {
    int64_t batch;      /* the batch this slot is filling (or holds) */
    int n_items;        /* items of that batch */
    int n_done;
    cc_batch out;
    uint8_t *status;    /* [batch_size] item_status */
    char *error;        /* the first failure's message (strict mode) */
    char *skip_reason;  /* the first skipped item's message */
} batch_slot;

struct cc_loader {
    const cc_dataset *ds;
    cc_tokenizer *tok;
    cc_loader_config cfg;
    int64_t *order;       /* item -> pair index */
    int64_t n_items, n_batches;
    size_t image_floats;  /* floats per image */
    batch_slot *slots;
    int n_slots;
    atomic_llong next_item;
    int64_t next_batch;   /* the consumer's next batch */
    int64_t total_skipped;
    int have_current;     /* the consumer holds batch next_batch - 1 */
    int stop;
    pthread_mutex_t lock;
    pthread_cond_t slot_free, batch_done;
    pthread_t *threads;
    int n_threads;
};

void cc_loader_config_default(cc_loader_config *cfg, int batch_size) {
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_size = batch_size > 0 ? batch_size : 64;
    cfg->context = CC_CLIP_CONTEXT;
    cc_preprocess_config_default(&cfg->preprocess, CC_CLIP_IMAGE_SIZE);
    cfg->skip_unreadable = 1;
}

static int batch_size_of(const cc_loader *L, int64_t b) {
    int64_t first = b * L->cfg.batch_size, left = L->n_items - first;
    return (int)(left < L->cfg.batch_size ? left : L->cfg.batch_size);
}

/* Decodes, preprocesses and tokenizes item i into its slot position. */
static void process_item(cc_loader *L, batch_slot *slot, int64_t item, int pos) {
    int64_t pair = L->order[item];
    const cc_pair *p = &L->ds->pairs[pair];
    char path[4096];
    cc_dataset_image_path(L->ds, pair, path, sizeof path);
    float *image = slot->out.images + (size_t)pos * L->image_floats;
    item_status status = ITEM_OK;
    if (cc_dataset_preprocess_image(&L->cfg.preprocess, path, image) != 0) status = L->cfg.skip_unreadable ? ITEM_SKIPPED : ITEM_FAILED;
    if (status == ITEM_OK && L->tok) {
        int32_t *ids = slot->out.tokens + (size_t)pos * L->cfg.context;
        int eot;
        if (cc_tokenizer_encode_context(L->tok, p->caption, L->cfg.context, ids, &eot, NULL, NULL) < 0) {
            status = ITEM_FAILED;
            cc_prefix_error("caption of %s", path);
        } else {
            slot->out.eot_pos[pos] = eot;
        }
    }
    slot->out.pair_index[pos] = pair;
    slot->status[pos] = (uint8_t)status;
    if (status != ITEM_OK) {
        char **message = status == ITEM_FAILED ? &slot->error : &slot->skip_reason;
        pthread_mutex_lock(&L->lock);
        if (!*message) *message = cc_strdup(cc_last_error());
        pthread_mutex_unlock(&L->lock);
    }
}

static void *worker_main(void *arg) {
    cc_loader *L = arg;
    for (;;) {
        int64_t item = atomic_fetch_add(&L->next_item, 1);
        if (item >= L->n_items) break;
        int64_t b = item / L->cfg.batch_size;
        batch_slot *slot = &L->slots[b % L->n_slots];
        pthread_mutex_lock(&L->lock);
        while (slot->batch != b && !L->stop) pthread_cond_wait(&L->slot_free, &L->lock);
        int stop = L->stop;
        pthread_mutex_unlock(&L->lock);
        if (stop) break;
        process_item(L, slot, item, (int)(item % L->cfg.batch_size));
        pthread_mutex_lock(&L->lock);
        if (++slot->n_done == slot->n_items) pthread_cond_broadcast(&L->batch_done);
        pthread_mutex_unlock(&L->lock);
    }
    return NULL;
}

static void assign_slot(cc_loader *L, batch_slot *slot, int64_t b) {
    slot->batch = b;
    slot->n_items = b < L->n_batches ? batch_size_of(L, b) : 0;
    slot->n_done = 0;
    free(slot->error);
    free(slot->skip_reason);
    slot->error = slot->skip_reason = NULL;
}

/* Data-parallel: the epoch's order keeps only this slice of every batch, and batches shrink to the
 * slice, so that the same global batches are cut the same way for any number of slices. */
static void keep_slice(cc_loader *L) {
    int64_t global = L->cfg.batch_size, local = global / L->cfg.slice_count, first = local * L->cfg.slice_index;
    for (int64_t b = 0; b < L->n_batches; b++)
        memmove(L->order + b * local, L->order + b * global + first, (size_t)local * sizeof(int64_t));
    L->cfg.batch_size = (int)local;
    L->n_items = L->n_batches * local;
}

cc_loader *cc_loader_create(const cc_dataset *ds, cc_tokenizer *tok, const cc_loader_config *cfg) {
    if (cfg->slice_count > 1 && (!cfg->drop_last || cfg->batch_size % cfg->slice_count != 0 || cfg->slice_index < 0 ||
                                 cfg->slice_index >= cfg->slice_count)) {
        cc_set_error("loader: slice %d of %d of batches of %d (needs drop_last and a batch divisible by the slices)",
                     cfg->slice_index, cfg->slice_count, cfg->batch_size);
        return NULL;
    }
    if (cfg->batch_size <= 0 || cfg->n_workers < 0 || cfg->prefetch < 0 || cfg->context < 0 || cfg->context == 1) {
        cc_set_error("loader: bad configuration (batch %d, workers %d, prefetch %d, context %d)", cfg->batch_size,
                     cfg->n_workers, cfg->prefetch, cfg->context);
        return NULL;
    }
    cc_loader *L = cc_calloc(1, sizeof *L, "loader");
    if (!L) return NULL;
    L->ds = ds;
    L->tok = tok;
    L->cfg = *cfg;
    if (L->cfg.context == 0) L->cfg.context = CC_CLIP_CONTEXT;
    if (L->cfg.n_workers == 0) L->cfg.n_workers = cc_get_threads();
    if (L->cfg.prefetch == 0) L->cfg.prefetch = 2 + L->cfg.n_workers / 2;
    pthread_mutex_init(&L->lock, NULL);
    pthread_cond_init(&L->slot_free, NULL);
    pthread_cond_init(&L->batch_done, NULL);
    L->n_items = ds->n_pairs;
    L->n_batches = L->cfg.drop_last ? L->n_items / L->cfg.batch_size : (L->n_items + L->cfg.batch_size - 1) / L->cfg.batch_size;
    if (L->cfg.drop_last) L->n_items = L->n_batches * L->cfg.batch_size;
    L->order = cc_malloc((size_t)(ds->n_pairs ? ds->n_pairs : 1) * sizeof(int64_t), "loader order");
    if (!L->order) goto fail;
    for (int64_t i = 0; i < ds->n_pairs; i++) L->order[i] = i;
    if (L->cfg.shuffle) {
        cc_rng rng;
        cc_rng_seed(&rng, L->cfg.seed);
        for (int64_t i = ds->n_pairs - 1; i > 0; i--) {
            int64_t j = (int64_t)cc_rng_below(&rng, (uint64_t)i + 1), tmp = L->order[i];
            L->order[i] = L->order[j];
            L->order[j] = tmp;
        }
    }
    if (L->cfg.slice_count > 1) keep_slice(L);
    L->image_floats = (size_t)3 * L->cfg.preprocess.crop_height * L->cfg.preprocess.crop_width;
    L->n_slots = L->cfg.prefetch;
    L->slots = cc_calloc((size_t)L->n_slots, sizeof(batch_slot), "loader slots");
    if (!L->slots) goto fail;
    int B = L->cfg.batch_size;
    if (L->cfg.start_batch < 0 || L->cfg.start_batch > L->n_batches) {
        cc_set_error("loader: start batch %lld outside the epoch's %lld batches", (long long)L->cfg.start_batch,
                     (long long)L->n_batches);
        goto fail;
    }
    for (int s = 0; s < L->n_slots; s++) {
        batch_slot *slot = &L->slots[s];
        size_t n_floats;
        if (!cc_mul_size(L->image_floats, (size_t)B, &n_floats)) {
            cc_set_error("loader: batch too large");
            goto fail;
        }
        slot->out.images = cc_malloc_aligned(n_floats * sizeof(float), "batch images");
        slot->out.tokens = cc_calloc((size_t)B * L->cfg.context, sizeof(int32_t), "batch tokens");
        slot->out.eot_pos = cc_calloc((size_t)B, sizeof(int32_t), "batch eot");
        slot->out.pair_index = cc_malloc((size_t)B * sizeof(int64_t), "batch pairs");
        slot->status = cc_malloc((size_t)B, "batch status");
        if (!slot->out.images || !slot->out.tokens || !slot->out.eot_pos || !slot->out.pair_index || !slot->status) goto fail;
    }
    /* batch b always lives in slot b % n_slots */
    for (int s = 0; s < L->n_slots; s++) {
        int64_t b = L->cfg.start_batch + s;
        assign_slot(L, &L->slots[b % L->n_slots], b);
    }
    L->next_batch = L->cfg.start_batch;
    atomic_init(&L->next_item, L->cfg.start_batch * (int64_t)B);
    L->threads = cc_malloc((size_t)L->cfg.n_workers * sizeof(pthread_t), "loader threads");
    if (!L->threads) goto fail;
    for (int t = 0; t < L->cfg.n_workers; t++) {
        if (pthread_create(&L->threads[t], NULL, worker_main, L) != 0) {
            cc_set_error("loader: cannot start worker thread %d", t);
            goto fail;
        }
        L->n_threads++;
    }
    return L;
fail:
    cc_loader_free(L);
    return NULL;
}

int64_t cc_loader_n_batches(const cc_loader *L) { return L->n_batches; }
int64_t cc_loader_total_skipped(const cc_loader *L) { return L->total_skipped; }

/* Moves the kept items of a finished slot to the front. */
static void compact(cc_loader *L, batch_slot *slot) {
    cc_batch *out = &slot->out;
    int kept = 0, skipped = 0;
    for (int i = 0; i < slot->n_items; i++) {
        if (slot->status[i] != ITEM_OK) {
            skipped++;
            continue;
        }
        if (kept != i) {
            memcpy(out->images + (size_t)kept * L->image_floats, out->images + (size_t)i * L->image_floats,
                   L->image_floats * sizeof(float));
            memcpy(out->tokens + (size_t)kept * L->cfg.context, out->tokens + (size_t)i * L->cfg.context,
                   (size_t)L->cfg.context * sizeof(int32_t));
            out->eot_pos[kept] = out->eot_pos[i];
            out->pair_index[kept] = out->pair_index[i];
        }
        kept++;
    }
    out->n = kept;
    out->n_skipped = skipped;
    out->skip_reason = slot->skip_reason;
    out->index = slot->batch;
    out->image_size = L->cfg.preprocess.crop_height;
    out->context = L->cfg.context;
}

int cc_loader_next(cc_loader *L, cc_batch **batch) {
    *batch = NULL;
    pthread_mutex_lock(&L->lock);
    if (L->have_current) { /* give the previous batch's slot to batch + n_slots */
        int64_t previous = L->next_batch - 1;
        assign_slot(L, &L->slots[previous % L->n_slots], previous + L->n_slots);
        L->have_current = 0;
        pthread_cond_broadcast(&L->slot_free);
    }
    if (L->next_batch >= L->n_batches) {
        pthread_mutex_unlock(&L->lock);
        return 0;
    }
    int64_t b = L->next_batch;
    batch_slot *slot = &L->slots[b % L->n_slots];
    while (slot->batch != b || slot->n_done < slot->n_items) pthread_cond_wait(&L->batch_done, &L->lock);
    pthread_mutex_unlock(&L->lock);
    if (slot->error) {
        cc_set_error("%s", slot->error);
        return -1;
    }
    compact(L, slot);
    L->total_skipped += slot->out.n_skipped;
    L->next_batch++;
    L->have_current = 1;
    *batch = &slot->out;
    return 1;
}

void cc_loader_free(cc_loader *L) {
    if (!L) return;
    pthread_mutex_lock(&L->lock);
    L->stop = 1;
    pthread_cond_broadcast(&L->slot_free);
    pthread_mutex_unlock(&L->lock);
    for (int t = 0; t < L->n_threads; t++) pthread_join(L->threads[t], NULL);
    free(L->threads);
    if (L->slots)
        for (int s = 0; s < L->n_slots; s++) {
            cc_free_aligned(L->slots[s].out.images);
            free(L->slots[s].out.tokens);
            free(L->slots[s].out.eot_pos);
            free(L->slots[s].out.pair_index);
            free(L->slots[s].status);
            free(L->slots[s].error);
            free(L->slots[s].skip_reason);
        }
    free(L->slots);
    free(L->order);
    pthread_mutex_destroy(&L->lock);
    pthread_cond_destroy(&L->slot_free);
    pthread_cond_destroy(&L->batch_done);
    free(L);
}
