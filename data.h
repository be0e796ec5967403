/* data.h - data for training: a byte-level tokenizer over text files, a
   train/validation split, and a seeded random-window batch sampler.

   USAGE
     #define DATA_IMPLEMENTATION     // in exactly one .c file
     #include "data.h"

     Dataset ds;
     char err[256];
     if (data_open_text(&ds, "book.txt", 0.1f, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
     Sampler s = {&ds, DATA_TRAIN, B, T, seed};          // seeded random windows of train
     data_next_batch(&s, tokens, targets);                // B*T ids, targets = ids shifted by one

   TOKENIZER: byte-level, vocabulary 256: token = byte value. Round-trips any byte string.
   SPLIT: the last val_frac of the tokens is validation, the rest train; windows never cross
   the boundary, so no train window overlaps a validation window.
   SAMPLER: DATA_TRAIN draws windows at uniformly random offsets from a splitmix64 stream
   (the same seed gives the same batches); DATA_VAL walks the validation tokens in
   consecutive windows, so every evaluation sees the same text.
*/
#ifndef DATA_H
#define DATA_H

#include <stddef.h>
#include <stdint.h>

#define DATA_BYTE_VOCAB 256

typedef struct {
    int *tokens;
    size_t n_tokens, n_train;   /* tokens [0, n_train) train, [n_train, n_tokens) validation */
    int vocab_size;
} Dataset;

typedef enum { DATA_TRAIN = 0, DATA_VAL = 1 } DataSplit;

typedef struct {
    const Dataset *ds;
    DataSplit split;
    int B, T;
    uint64_t rng;               /* seed; advanced by every draw */
    size_t cursor;              /* DATA_VAL: next window */
} Sampler;

/* read a text file as bytes; refuses missing, empty or too-short files with a message
   naming the file; val_frac in (0, 1) */
int data_open_text(Dataset *ds, const char *path, float val_frac, char *err, size_t errlen);
void data_close(Dataset *ds);
/* does each split hold at least one window of T+1 tokens? message names the sizes */
int data_check_window(const Dataset *ds, int T, char *err, size_t errlen);
void data_next_batch(Sampler *s, int *tokens, int *targets);
/* byte-level tokenizer */
size_t data_byte_encode(const unsigned char *text, size_t n, int *ids);
size_t data_byte_decode(const int *ids, size_t n, unsigned char *text);

#endif /* DATA_H */

/* ======================================================================= */
#ifdef DATA_IMPLEMENTATION
#ifndef DATA_IMPLEMENTATION_DONE
#define DATA_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t data_byte_encode(const unsigned char *text, size_t n, int *ids) {
    for (size_t i = 0; i < n; i++) ids[i] = text[i];
    return n;
}

size_t data_byte_decode(const int *ids, size_t n, unsigned char *text) {
    for (size_t i = 0; i < n; i++) text[i] = (unsigned char)ids[i];
    return n;
}

int data_open_text(Dataset *ds, const char *path, float val_frac, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (!(val_frac > 0 && val_frac < 1)) {
        snprintf(err, errlen, "validation fraction %g must be in (0, 1)", val_frac);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "data file %s: cannot open", path); return -1; }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (cap - n < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); snprintf(err, errlen, "data file %s: out of memory", path); return -1; }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); snprintf(err, errlen, "data file %s: read error", path); return -1; }
    if (n == 0) { free(buf); snprintf(err, errlen, "data file %s is empty", path); return -1; }
    ds->tokens = malloc(sizeof(int) * n);
    if (!ds->tokens) { free(buf); snprintf(err, errlen, "data file %s: out of memory", path); return -1; }
    ds->n_tokens = data_byte_encode(buf, n, ds->tokens);
    free(buf);
    ds->n_train = ds->n_tokens - (size_t)(ds->n_tokens * (double)val_frac);
    ds->vocab_size = DATA_BYTE_VOCAB;
    return 0;
}

void data_close(Dataset *ds) {
    free(ds->tokens);
    memset(ds, 0, sizeof *ds);
}

int data_check_window(const Dataset *ds, int T, char *err, size_t errlen) {
    size_t nval = ds->n_tokens - ds->n_train;
    if (ds->n_train < (size_t)T + 1 || nval < (size_t)T + 1) {
        snprintf(err, errlen, "data has %zu train and %zu validation tokens; seq %d needs at least %d in each",
                 ds->n_train, nval, T, T + 1);
        return -1;
    }
    return 0;
}

static uint64_t data_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void data_next_batch(Sampler *s, int *tokens, int *targets) {
    const Dataset *ds = s->ds;
    size_t base = s->split == DATA_TRAIN ? 0 : ds->n_train;
    size_t len = s->split == DATA_TRAIN ? ds->n_train : ds->n_tokens - ds->n_train;
    size_t span = len - s->T; /* window start range: needs T+1 tokens */
    for (int b = 0; b < s->B; b++) {
        size_t start;
        if (s->split == DATA_TRAIN) {
            start = data_rand(&s->rng) % span;
        } else {
            if (s->cursor + s->T + 1 > len) s->cursor = 0;
            start = s->cursor;
            s->cursor += s->T;
        }
        const int *src = ds->tokens + base + start;
        memcpy(tokens + (size_t)b * s->T, src, sizeof(int) * s->T);
        memcpy(targets + (size_t)b * s->T, src + 1, sizeof(int) * s->T);
    }
}

#endif /* DATA_IMPLEMENTATION_DONE */
#endif /* DATA_IMPLEMENTATION */
