/* data.h - the data layer: tokenizers, token shards, datasets and mixes, batch samplers,
   and synthetic tasks.

   USAGE
     #define DATA_IMPLEMENTATION     // in exactly one .c file (or ABLATE_IMPLEMENTATION)
     #include "data.h"

     DataSet ds;
     char err[512];
     if (data_open(&ds, "book.txt", 0.1f, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
     DataSampler s = {&ds, DATA_TRAIN, B, T, seed};          // seeded random windows of train
     data_next_batch(&s, tokens, targets);                // B*T ids, targets = ids shifted by one

   DEPENDS ON: data_unicode.h (its implementation's Unicode tables; all static); C99 and POSIX.
   LINKAGE: every public function is declared DATADEF (extern); define DATA_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   DATA SPECS (data_open): a text file (byte-level tokens, vocabulary 256), a token shard, a
   directory of shards, or a mix "a.bin:0.7,b.bin:0.3" of any of these (weights are normalized;
   every source must use the same vocabulary). A file is a shard when it starts with a shard
   magic number, else text. In a directory, every *.bin whose name contains "val" is validation
   and the others train; with no such file every shard is split like a single file.

   SPLIT: the last val_frac of a file's tokens is validation, the rest train. Windows never
   cross a part boundary, so no train window overlaps a validation window.

   SAMPLER: DATA_TRAIN draws windows at uniformly random offsets from a splitmix64 stream; in a
   mix each row first draws its source by weight. DATA_TRAIN_EPOCH visits every non-overlapping window of the train split once per epoch in a
   seeded order that is new each epoch (a Feistel permutation: no table is stored); cursor counts
   windows, so data_epoch() = cursor / windows per epoch; it ignores mix weights. DATA_VAL walks
   the rows of the whole-split evaluation below in order (cursor = row, wrapping): a pass of it
   predicts every validation target once. A sampler's whole state is {rng, cursor}: a checkpoint
   stores those two words and resumes at the exact position (data_sampler_state /
   data_sampler_restore).

   EVALUATION (DataEval): the TILING of a split cuts each of its parts (n tokens, n-1 targets)
   into windows of T+1 tokens at offsets k*T, plus, for a part's tail, one window aligned to the
   part's end whose targets already scored by the window before it are -1 (a part shorter than
   T+1 tokens gives one window padded with token 0 and targets -1). So the tiling predicts every
   target of the split exactly once (not a part's first token, which has no context). An
   evaluation of max_rows windows takes, of each source's tiling of W windows, m = min(W, its
   weight x max_rows) windows at positions floor((j + 1/2) W / m), j < m: spread evenly over the
   whole split, the same windows every time; m = W is the whole split. Rows go source by source;
   data_eval_batch fills B of them at a time and pads a last partial batch with rows whose
   targets are all -1. The reported loss is then total loss / total scored tokens.
   Evaluating a row costs what a forward pass of a training row costs (a third of a step), so
   ablate's intermediate evaluations of eval_batches (default 8) x batch rows cost about
   8/3 steps each, and the last one covers the whole split up to final_eval_tokens.

   BITS PER BYTE (DataBytes): the text bytes of each target token: 1 for byte-level text files;
   for shards, each id's length as data_tok_decode gives it, from the tokenizer.json in the
   shard's directory (ablate tokenize writes it there). No tokenizer there: unknown (NAN), with
   the reason in DataBytes.why; a guess would make byte-level and BPE runs look comparable when
   they are not. bpb = total loss / (ln 2 x total bytes), summed over a mix's sources.

   SHARDS: llm.c's .bin format: a header of 256 little-endian int32 (magic, version, token count;
   ablate also writes the vocabulary size in word 3, which llm.c ignores) then the tokens:
   magic 20240520 version 1 = uint16 tokens, magic 20240801 version 7 = uint32 tokens (used when
   the vocabulary is over 65536). Shards are memory-mapped. Truncated or foreign shards, empty
   files, token ids over a declared vocabulary and vocabularies (declared, or the largest id + 1
   where the header gives none) over DATA_MAX_VOCAB are refused with a message naming the file.

   INPUT FILES (data, shards, tokenizer.json) must be regular files: a device, FIFO or socket
   (/dev/zero, a named pipe) is refused before it is opened, since reading one may never end.

   TOKENIZERS: byte-level (token = byte value) and byte-level BPE loaded from a Hugging Face
   tokenizer.json (GPT-2 and SmolLM2 families: the GPT-2 pre-tokenization regex hand-written in C,
   optional Digits splitting, merges by rank, byte fallback, added/special tokens). Encode and
   decode round-trip any byte string (invalid UTF-8 bytes are pre-tokenized as single "other"
   characters). Unicode classes come from data_unicode.h (generated by tools/gen_unicode.py from
   Python's unicodedata, Unicode 14; Hugging Face's Oniguruma may know a few newer characters).
   data_tok_train learns merges from text and data_tok_save writes a tokenizer.json that Hugging
   Face tokenizers loads. A tokenizer caches encoded words, so one DataTokenizer is not for
   concurrent use from several threads.

   SYNTHETIC TASKS (DataTask): multi-query associative recall, copying and induction heads,
   generated on the fly from a seed; targets are -1 where not scored (the loss ignores them) and
   data_task_accuracy scores predictions.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(DATA_IMPLEMENTATION)
#define DATA_IMPLEMENTATION
#endif
#ifndef DATA_H
#define DATA_H

/* linkage of every public function: extern, or static with DATA_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef DATADEF
#if defined(DATA_STATIC) || defined(ABLATE_STATIC)
#define DATADEF static
#else
#define DATADEF extern
#endif
#endif

/* strdup, mmap: POSIX 2008, asked for before the first system header so that the
   implementation builds under a strict -std=c99 too (a file that includes a system header before
   this one, under -std=c99, defines _POSIX_C_SOURCE 200809L itself) */
#if defined(DATA_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DATA_BYTE_VOCAB 256
/* the largest vocabulary data_open accepts (a shard's header or its largest id + 1) and
   tokenizer training learns: 2^20, four times the largest tokenizers in use (256K). A larger
   one would build an embedding of billions of parameters from one damaged header word */
#define DATA_MAX_VOCAB 1048576
#define DATA_MAX_SOURCES 16
#define DATA_SHARD_MAGIC 20240520     /* llm.c GPT-2 shards: version 1, uint16 tokens */
#define DATA_SHARD_MAGIC32 20240801   /* llm.c Llama 3 shards: version 7, uint32 tokens */
#define DATA_SHARD_HEADER 1024        /* 256 int32 */

/* DATA_TRAIN_EPOCH: the train split in epoch order (see SAMPLER); DATA_ALL: both splits (an
   evaluation only) */
typedef enum { DATA_TRAIN = 0, DATA_VAL = 1, DATA_TRAIN_EPOCH = 2, DATA_ALL = 3 } DataSplit;

typedef struct {                /* a contiguous run of tokens of one split */
    const unsigned char *p;     /* width bytes per token, little-endian */
    size_t n;
    int width;                  /* 1 byte-level text, 2 uint16 shard, 4 uint32 shard */
    int split, source, file;
} DataPart;

typedef struct {
    char path[512];
    void *map;                  /* a mapped shard, or NULL */
    size_t map_len;
    unsigned char *buf;         /* a text file's bytes, or NULL */
    uint32_t max_id;
    int declared_vocab;         /* a shard header's vocabulary size, 0 if none */
} DataFile;

typedef struct {
    size_t n_tokens, n_train;   /* totals over all sources */
    int vocab_size;
    int n_parts, n_files, n_sources;
    DataPart *parts;
    DataFile *files;
    double weight[DATA_MAX_SOURCES];  /* normalized mix weights */
} DataSet;

typedef struct {
    const DataSet *ds;
    DataSplit split;
    int B, T;
    uint64_t rng;               /* seed; DATA_TRAIN advances it with every draw */
    size_t cursor;              /* DATA_VAL: walk position; DATA_TRAIN_EPOCH: windows taken */
} DataSampler;

/* text file, shard, directory of shards, or a mix "SPEC:W,SPEC:W" (see above); val_frac in (0,1) */
DATADEF int data_open(DataSet *ds, const char *spec, float val_frac, char *err, size_t errlen);
/* the historical name: the same as data_open */
DATADEF int data_open_text(DataSet *ds, const char *path, float val_frac, char *err, size_t errlen);
DATADEF void data_close(DataSet *ds);
/* does each split of each source hold at least one window of T+1 tokens? */
DATADEF int data_check_window(const DataSet *ds, int T, char *err, size_t errlen);
/* refuses token ids >= vocab, naming the file and the id */
DATADEF int data_check_vocab(const DataSet *ds, int vocab, char *err, size_t errlen);
DATADEF void data_next_batch(DataSampler *s, int *tokens, int *targets);
DATADEF size_t data_epoch(const DataSampler *s);
DATADEF size_t data_windows_per_epoch(const DataSet *ds, int T);
DATADEF void data_sampler_state(const DataSampler *s, uint64_t w[2]);
DATADEF void data_sampler_restore(DataSampler *s, const uint64_t w[2]);

/* ---- evaluation over a split (see EVALUATION, BITS PER BYTE) ---- */
typedef struct {
    int known;                           /* 1: every source's byte lengths are known */
    int vocab;
    unsigned *len[DATA_MAX_SOURCES];     /* bytes of each token id of a shard source; NULL: byte-level text */
    char why[600];                       /* !known: which source, and why */
} DataBytes;
/* byte lengths for every source of ds; 0 when all are known, 1 when not (b->why says why,
   bpb is then NAN); -1 out of memory */
DATADEF int data_bytes_open(DataBytes *b, const DataSet *ds);
DATADEF void data_bytes_close(DataBytes *b);
/* the text bytes of a row's scored targets (target >= 0) of one source; NAN when unknown */
DATADEF double data_bytes_row(const DataBytes *b, int source, const int *targets, int T);

typedef struct {
    const DataSet *ds;
    DataSplit split;                     /* DATA_VAL, DATA_TRAIN or DATA_ALL */
    int T, B;                            /* window length; rows per data_eval_batch */
    size_t n_rows;                       /* windows evaluated (rows) */
    size_t rows[DATA_MAX_SOURCES];       /* of them, each source's */
    size_t tiles[DATA_MAX_SOURCES];      /* windows of each source's whole-split tiling */
    size_t tokens;                       /* targets scored over all rows */
    int whole;                           /* 1: every target of the split is scored exactly once */
    size_t cursor;                       /* data_eval_batch: the next row */
    const DataBytes *bytes;              /* optional: row bytes for bits per byte */
} DataEval;
/* an evaluation of at most max_rows windows (0: the whole split) of T+1 tokens; B rows per
   batch. -1 with a message when the split holds no target */
DATADEF int data_eval_init(DataEval *e, const DataSet *ds, DataSplit split, int T, int B, size_t max_rows, char *err,
                           size_t errlen);
/* row r (< n_rows): T tokens and T targets (-1: not scored); returns its source */
DATADEF int data_eval_row(const DataEval *e, size_t r, int *tokens, int *targets);
/* batches of B rows from e->cursor (a train.h TrainEvalBatchFn): rows past n_rows are padding (targets
   -1, row_bytes 0); row_bytes (may be NULL) gets each row's text bytes, NAN when unknown */
DATADEF void data_eval_batch(void *eval, int *tokens, int *targets, double *row_bytes);
/* batches that cover the evaluation: ceil(n_rows / B) */
DATADEF size_t data_eval_batches(const DataEval *e);

/* ---- shards ---- */
/* checks a shard held in memory; fills width (2 or 4), token count and declared vocab (0 if
   none); name is used in messages */
DATADEF int data_shard_parse(const unsigned char *buf, size_t len, const char *name, int *width, size_t *n_tokens,
                             int *declared_vocab, char *err, size_t errlen);
/* writes ids as one shard: uint16 when vocab <= 65536, else uint32; written to PATH.tmp then renamed */
DATADEF int data_shard_write(const char *path, const int *ids, size_t n, int vocab, char *err, size_t errlen);

/* ---- tokenizers ---- */
DATADEF size_t data_byte_encode(const unsigned char *text, size_t n, int *ids);
DATADEF size_t data_byte_decode(const int *ids, size_t n, unsigned char *text);

typedef struct DataTokenizer DataTokenizer;
/* loads a Hugging Face tokenizer.json (BPE model); NULL and a message naming the file on error */
DATADEF DataTokenizer *data_tok_load(const char *path, char *err, size_t errlen);
DATADEF DataTokenizer *data_tok_load_mem(const char *json, size_t n, const char *name, char *err, size_t errlen);
DATADEF void data_tok_free(DataTokenizer *t);
DATADEF int data_tok_vocab(const DataTokenizer *t);
DATADEF int data_tok_id(const DataTokenizer *t, const char *token);   /* an added token's or a token's id, or -1 */
/* ids needs room for data_tok_max_ids(t, n) entries; returns the count */
DATADEF size_t data_tok_max_ids(const DataTokenizer *t, size_t n);
DATADEF size_t data_tok_encode(DataTokenizer *t, const unsigned char *text, size_t n, int *ids);
/* writes at most cap bytes; returns the decoded length, or (size_t)-1 for an unknown id */
DATADEF size_t data_tok_decode(const DataTokenizer *t, const int *ids, size_t n, unsigned char *out, size_t cap);
/* learns byte-level BPE merges from text until vocab tokens (256 bytes + merges + the special
   token <|endoftext|>); deterministic (ties: the smallest pair of ids) */
DATADEF DataTokenizer *data_tok_train(const unsigned char *text, size_t n, int vocab, char *err, size_t errlen);
DATADEF int data_tok_save(const DataTokenizer *t, const char *path, char *err, size_t errlen);

/* ---- synthetic tasks ---- */
typedef enum { DATA_TASK_MQAR = 0, DATA_TASK_COPY, DATA_TASK_INDUCTION } DataTaskKind;
typedef struct {
    DataTaskKind kind;
    int vocab, B, T;
    int n_pairs;                /* MQAR: key-value pairs per sequence (default T/4) */
    int copy_len;               /* COPY: length of the copied segment (default (T-1)/2) */
    uint64_t rng;
} DataTask;
/* name: mqar | copy | induction; size: pairs (mqar) or copy length (copy), 0 = default */
DATADEF int data_task_init(DataTask *t, const char *name, int vocab, int B, int T, int size, uint64_t seed, char *err,
                           size_t errlen);
/* a TrainBatchFn: fills B*T tokens and targets (-1 where not scored) */
DATADEF void data_task_batch(void *task, int *tokens, int *targets);
/* fraction of scored positions (target >= 0) where pred == target */
DATADEF double data_task_accuracy(const int *pred, const int *targets, size_t n);
/* the same from logits [n, V] (argmax) */
DATADEF double data_task_accuracy_logits(const float *logits, const int *targets, size_t n, int V);


#ifdef __cplusplus
}
#endif
#endif /* DATA_H */

/* ======================================================================= */
#ifdef DATA_IMPLEMENTATION
#ifndef DATA_IMPLEMENTATION_DONE
#define DATA_IMPLEMENTATION_DONE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "data_unicode.h"

static uint64_t data_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t data_hash64(uint64_t x) { return data_rand(&x); }
static double data_unit(uint64_t r) { return (double)(r >> 11) * (1.0 / 9007199254740992.0); }

DATADEF size_t data_byte_encode(const unsigned char *text, size_t n, int *ids) {
    for (size_t i = 0; i < n; i++) ids[i] = text[i];
    return n;
}

DATADEF size_t data_byte_decode(const int *ids, size_t n, unsigned char *text) {
    for (size_t i = 0; i < n; i++) text[i] = (unsigned char)ids[i];
    return n;
}

/* 0 when path is a regular file; else -1 and a message ("data file X: ..."). Checked with stat
   before any open: opening a FIFO blocks, and a device such as /dev/zero reads without end */
static int data_regular(const char *what, const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st)) { snprintf(err, errlen, "%s %s: cannot open", what, path); return -1; }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s is not a regular file (%s): refused, since reading it may not end", what, path,
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                 : S_ISBLK(st.st_mode) ? "a block device" : "a socket or other special file");
        return -1;
    }
    return 0;
}

/* whole file into memory; *n = 0 for an empty file (buffer still allocated) */
static unsigned char *data_read_file(const char *path, size_t *n, char *err, size_t errlen) {
    if (data_regular("data file", path, err, errlen)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "data file %s: cannot open", path); return NULL; }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (cap - len < 65536) {
            cap = cap ? 2 * cap : 1 << 20;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); snprintf(err, errlen, "data file %s: out of memory", path); return NULL; }
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); snprintf(err, errlen, "data file %s: read error", path); return NULL; }
    *n = len;
    return buf;
}

static uint32_t data_rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t data_part_tok(const DataPart *p, size_t i) {
    if (p->width == 1) return p->p[i];
    if (p->width == 2) return (uint32_t)p->p[2 * i] | (uint32_t)p->p[2 * i + 1] << 8;
    return data_rd32(p->p + 4 * i);
}

/* ======================= shards ======================= */

DATADEF int data_shard_parse(const unsigned char *buf, size_t len, const char *name, int *width, size_t *n_tokens,
                             int *declared_vocab, char *err, size_t errlen) {
    if (len == 0) { snprintf(err, errlen, "shard %s is empty", name); return -1; }
    if (len < DATA_SHARD_HEADER) {
        snprintf(err, errlen, "shard %s: truncated header (%zu of %d bytes)", name, len, DATA_SHARD_HEADER);
        return -1;
    }
    uint32_t magic = data_rd32(buf), version = data_rd32(buf + 4), count = data_rd32(buf + 8);
    uint32_t vocab = data_rd32(buf + 12);
    if (magic == DATA_SHARD_MAGIC && version == 1) *width = 2;
    else if (magic == DATA_SHARD_MAGIC32 && version == 7) *width = 4;
    else if (magic == DATA_SHARD_MAGIC || magic == DATA_SHARD_MAGIC32) {
        snprintf(err, errlen, "shard %s: unsupported version %u for magic %u (expected 1 for %d, 7 for %d)", name,
                 version, magic, DATA_SHARD_MAGIC, DATA_SHARD_MAGIC32);
        return -1;
    } else {
        snprintf(err, errlen, "shard %s: wrong magic %u (expected %d or %d): not a token shard", name, magic,
                 DATA_SHARD_MAGIC, DATA_SHARD_MAGIC32);
        return -1;
    }
    if (count > INT32_MAX) { snprintf(err, errlen, "shard %s: negative token count in header", name); return -1; }
    if (count == 0) { snprintf(err, errlen, "shard %s holds no tokens", name); return -1; }
    size_t body = len - DATA_SHARD_HEADER, need = (size_t)count * (size_t)*width;
    if (need > body) {
        snprintf(err, errlen, "shard %s: truncated: header says %u tokens but the file holds %zu", name, count,
                 body / (size_t)*width);
        return -1;
    }
    if (need < body) {
        snprintf(err, errlen, "shard %s: %zu bytes after its %u tokens (not a shard, or damaged)", name, body - need,
                 count);
        return -1;
    }
    if (vocab > (*width == 2 ? 65536u : (uint32_t)INT32_MAX)) {
        snprintf(err, errlen, "shard %s: header vocabulary %u does not fit its %d-byte tokens", name, vocab, *width);
        return -1;
    }
    *n_tokens = count;
    *declared_vocab = (int)vocab;
    return 0;
}

DATADEF int data_shard_write(const char *path, const int *ids, size_t n, int vocab, char *err, size_t errlen) {
    if (n == 0 || n > INT32_MAX) { snprintf(err, errlen, "shard %s: %zu tokens (need 1 to 2^31-1)", path, n); return -1; }
    int width = vocab <= 65536 ? 2 : 4;
    unsigned char hdr[DATA_SHARD_HEADER] = {0};
    uint32_t words[4] = {width == 2 ? DATA_SHARD_MAGIC : DATA_SHARD_MAGIC32, width == 2 ? 1u : 7u, (uint32_t)n,
                         (uint32_t)vocab};
    for (int w = 0; w < 4; w++)
        for (int b = 0; b < 4; b++) hdr[4 * w + b] = (unsigned char)(words[w] >> (8 * b));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "shard %s: cannot create", tmp); return -1; }
    int ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    unsigned char buf[8192];
    size_t k = 0;
    for (size_t i = 0; i < n && ok; i++) {
        if (ids[i] < 0 || ids[i] >= vocab) {
            fclose(f);
            remove(tmp);
            snprintf(err, errlen, "shard %s: token id %d at position %zu is outside the vocabulary %d", path, ids[i], i,
                     vocab);
            return -1;
        }
        for (int b = 0; b < width; b++) buf[k++] = (unsigned char)((uint32_t)ids[i] >> (8 * b));
        if (k + 4 > sizeof buf || i + 1 == n) { ok = fwrite(buf, 1, k, f) == k; k = 0; }
    }
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) { remove(tmp); snprintf(err, errlen, "shard %s: write failed", path); return -1; }
    return 0;
}

/* ======================= datasets ======================= */

static DataFile *data_add_file(DataSet *ds, const char *path) {
    DataFile *nf = realloc(ds->files, sizeof *nf * (ds->n_files + 1));
    if (!nf) return NULL;
    ds->files = nf;
    DataFile *f = &ds->files[ds->n_files++];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    return f;
}

static int data_add_part(DataSet *ds, const unsigned char *p, size_t n, int width, int split, int source) {
    if (n == 0) return 0;
    DataPart *np = realloc(ds->parts, sizeof *np * (ds->n_parts + 1));
    if (!np) return -1;
    ds->parts = np;
    DataPart part = {p, n, width, split, source, ds->n_files - 1};
    ds->parts[ds->n_parts++] = part;
    return 0;
}

/* a file's tokens as train + val parts (split = -1) or all of one split */
static int data_add_tokens(DataSet *ds, const unsigned char *p, size_t n, int width, int split, int source,
                           float val_frac) {
    if (split >= 0) return data_add_part(ds, p, n, width, split, source);
    size_t ntrain = n - (size_t)(n * (double)val_frac);
    return data_add_part(ds, p, ntrain, width, DATA_TRAIN, source) ||
           data_add_part(ds, p + ntrain * width, n - ntrain, width, DATA_VAL, source);
}

static int data_open_shard(DataSet *ds, const char *path, int split, int source, float val_frac, char *err,
                           size_t errlen) {
    if (data_regular("shard", path, err, errlen)) return -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, errlen, "shard %s: cannot open", path); return -1; }
    struct stat st;
    if (fstat(fd, &st)) { close(fd); snprintf(err, errlen, "shard %s: cannot stat", path); return -1; }
    size_t len = (size_t)st.st_size;
    if (len == 0) { close(fd); snprintf(err, errlen, "shard %s is empty", path); return -1; }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { snprintf(err, errlen, "shard %s: cannot map", path); return -1; }
    int width, vocab;
    size_t n;
    if (data_shard_parse(map, len, path, &width, &n, &vocab, err, errlen)) { munmap(map, len); return -1; }
    if (vocab > DATA_MAX_VOCAB) {
        munmap(map, len);
        snprintf(err, errlen, "shard %s: header vocabulary %d is over the limit %d (DATA_MAX_VOCAB)", path, vocab,
                 DATA_MAX_VOCAB);
        return -1;
    }
    DataFile *f = data_add_file(ds, path);
    if (!f) { munmap(map, len); snprintf(err, errlen, "shard %s: out of memory", path); return -1; }
    f->map = map;
    f->map_len = len;
    f->declared_vocab = vocab;
    DataPart whole = {(const unsigned char *)map + DATA_SHARD_HEADER, n, width, 0, 0, 0};
    uint32_t mx = 0; /* one pass: the largest id, checked against the header's vocabulary */
    for (size_t i = 0; i < n; i++) {
        uint32_t t = data_part_tok(&whole, i);
        if (t > mx) mx = t;
        if (vocab && t >= (uint32_t)vocab) {
            snprintf(err, errlen, "shard %s: token id %u at position %zu is over the vocabulary %d its header declares",
                     path, t, i, vocab);
            return -1;
        }
    }
    f->max_id = mx;
    if (!vocab && mx >= DATA_MAX_VOCAB) { /* no header vocabulary: the ids define it, and must be bounded too */
        snprintf(err, errlen, "shard %s: token id %u (its header declares no vocabulary) is over the limit %d "
                 "(DATA_MAX_VOCAB)", path, mx, DATA_MAX_VOCAB);
        return -1;
    }
    if (data_add_tokens(ds, whole.p, n, width, split, source, val_frac)) {
        snprintf(err, errlen, "shard %s: out of memory", path);
        return -1;
    }
    return 0;
}

/* a shard by its magic, or by its name: a .bin that is not a shard is refused, not read as text */
static int data_is_shard_file(const char *path) {
    size_t l = strlen(path);
    if (l >= 4 && !strcmp(path + l - 4, ".bin")) return 1;
    FILE *f = fopen(path, "rb");
    unsigned char b[4];
    int yes = f && fread(b, 1, 4, f) == 4 && (data_rd32(b) == DATA_SHARD_MAGIC || data_rd32(b) == DATA_SHARD_MAGIC32);
    if (f) fclose(f);
    return yes;
}

static int data_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int data_open_source(DataSet *ds, const char *path, int source, float val_frac, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st)) { snprintf(err, errlen, "data file %s: cannot open", path); return -1; }
    if (!S_ISDIR(st.st_mode) && data_regular("data file", path, err, errlen)) return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) { snprintf(err, errlen, "data directory %s: cannot open", path); return -1; }
        char **names = NULL;
        int n = 0, nval = 0, rc = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t l = strlen(e->d_name);
            if (l < 5 || strcmp(e->d_name + l - 4, ".bin")) continue;
            char **nn = realloc(names, sizeof *nn * (n + 1));
            if (!nn) break;
            names = nn;
            names[n++] = strdup(e->d_name);
            nval += strstr(e->d_name, "val") != NULL;
        }
        closedir(d);
        if (n == 0) { snprintf(err, errlen, "data directory %s holds no .bin shards", path); free(names); return -1; }
        if (nval == n) {
            snprintf(err, errlen, "data directory %s holds only validation shards (names with 'val')", path);
            rc = -1;
        }
        qsort(names, n, sizeof *names, data_cmp_str); /* the order must not depend on the file system */
        for (int i = 0; i < n && !rc; i++) {
            char full[1100];
            snprintf(full, sizeof full, "%.500s/%.500s", path, names[i]);
            int split = nval ? (strstr(names[i], "val") ? DATA_VAL : DATA_TRAIN) : -1;
            rc = data_open_shard(ds, full, split, source, val_frac, err, errlen);
        }
        for (int i = 0; i < n; i++) free(names[i]);
        free(names);
        return rc;
    }
    if (data_is_shard_file(path)) return data_open_shard(ds, path, -1, source, val_frac, err, errlen);
    size_t n;
    unsigned char *buf = data_read_file(path, &n, err, errlen);
    if (!buf) return -1;
    if (n == 0) { free(buf); snprintf(err, errlen, "data file %s is empty", path); return -1; }
    DataFile *f = data_add_file(ds, path);
    if (!f) { free(buf); snprintf(err, errlen, "data file %s: out of memory", path); return -1; }
    f->buf = buf;
    f->declared_vocab = DATA_BYTE_VOCAB;
    for (size_t i = 0; i < n; i++) if (buf[i] > f->max_id) f->max_id = buf[i];
    if (data_add_tokens(ds, buf, n, 1, -1, source, val_frac)) {
        snprintf(err, errlen, "data file %s: out of memory", path);
        return -1;
    }
    return 0;
}

DATADEF int data_open(DataSet *ds, const char *spec, float val_frac, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (!(val_frac > 0 && val_frac < 1)) {
        snprintf(err, errlen, "validation fraction %g must be in (0, 1)", val_frac);
        return -1;
    }
    /* a mix is a comma-separated list; each item may end in :WEIGHT */
    char items[DATA_MAX_SOURCES][600];
    double w[DATA_MAX_SOURCES];
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (n == DATA_MAX_SOURCES) { snprintf(err, errlen, "data mix %s: more than %d sources", spec, DATA_MAX_SOURCES); return -1; }
        if (l == 0 || l >= sizeof items[0]) { snprintf(err, errlen, "data mix %s: empty or overlong item", spec); return -1; }
        memcpy(items[n], p, l);
        items[n][l] = 0;
        w[n] = 1;
        char *colon = strrchr(items[n], ':');
        if (colon) {
            char *end;
            double v = strtod(colon + 1, &end);
            if (end != colon + 1 && !*end) {
                if (!(v > 0 && v < 1e30)) {
                    snprintf(err, errlen, "data mix %s: weight of %.*s must be > 0", spec, (int)(colon - items[n]), items[n]);
                    return -1;
                }
                w[n] = v;
                *colon = 0;
            }
        }
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += w[i];
    ds->n_sources = n;
    for (int i = 0; i < n; i++) {
        ds->weight[i] = w[i] / sum;
        int first = ds->n_files;
        if (data_open_source(ds, items[i], i, val_frac, err, errlen)) { data_close(ds); return -1; }
        /* one vocabulary for all: byte-level text (256) or the shards' declared/observed size */
        for (int f = first; f < ds->n_files; f++) {
            const DataFile *df = &ds->files[f];
            /* max_id < DATA_MAX_VOCAB here (data_open_shard), so the + 1 cannot wrap */
            int v = df->declared_vocab ? df->declared_vocab : (int)df->max_id + 1;
            if (ds->vocab_size && df->declared_vocab && ds->vocab_size != v && f > 0 && ds->files[0].declared_vocab) {
                snprintf(err, errlen, "data %s: vocabulary %d differs from %s's %d (mixed tokenizers?)", df->path, v,
                         ds->files[0].path, ds->vocab_size);
                data_close(ds);
                return -1;
            }
            if (v > ds->vocab_size) ds->vocab_size = v;
        }
    }
    for (int i = 0; i < ds->n_parts; i++) {
        ds->n_tokens += ds->parts[i].n;
        if (ds->parts[i].split == DATA_TRAIN) ds->n_train += ds->parts[i].n;
    }
    return 0;
}

DATADEF int data_open_text(DataSet *ds, const char *path, float val_frac, char *err, size_t errlen) {
    return data_open(ds, path, val_frac, err, errlen);
}

DATADEF void data_close(DataSet *ds) {
    for (int i = 0; i < ds->n_files; i++) {
        if (ds->files[i].map) munmap(ds->files[i].map, ds->files[i].map_len);
        free(ds->files[i].buf);
    }
    free(ds->files);
    free(ds->parts);
    memset(ds, 0, sizeof *ds);
}

/* start positions of T+1-token windows in the parts of one split (and one source, or -1) */
static size_t data_span(const DataSet *ds, int split, int source, int T) {
    size_t s = 0;
    for (int i = 0; i < ds->n_parts; i++) {
        const DataPart *p = &ds->parts[i];
        if (p->split == split && (source < 0 || p->source == source) && p->n > (size_t)T) s += p->n - T;
    }
    return s;
}

DATADEF int data_check_window(const DataSet *ds, int T, char *err, size_t errlen) {
    for (int s = 0; s < ds->n_sources; s++) {
        if (data_span(ds, DATA_TRAIN, s, T) && data_span(ds, DATA_VAL, s, T)) continue;
        size_t nt = 0, nv = 0;
        for (int i = 0; i < ds->n_parts; i++)
            if (ds->parts[i].source == s) *(ds->parts[i].split == DATA_TRAIN ? &nt : &nv) += ds->parts[i].n;
        const char *name = ds->n_files ? ds->files[0].path : "?";
        for (int i = 0; i < ds->n_parts; i++)
            if (ds->parts[i].source == s) { name = ds->files[ds->parts[i].file].path; break; }
        snprintf(err, errlen, "data %s has %zu train and %zu validation tokens; seq %d needs at least %lld in each part",
                 name, nt, nv, T, (long long)T + 1);
        return -1;
    }
    return 0;
}

DATADEF int data_check_vocab(const DataSet *ds, int vocab, char *err, size_t errlen) {
    for (int i = 0; i < ds->n_files; i++)
        if (ds->files[i].max_id >= (uint32_t)vocab) {
            snprintf(err, errlen, "data %s: token id %u is over the model's vocabulary %d", ds->files[i].path,
                     ds->files[i].max_id, vocab);
            return -1;
        }
    return 0;
}

/* the part and offset of start position r among a split's (source's) window starts */
static const DataPart *data_locate(const DataSet *ds, int split, int source, int T, size_t r, size_t *off) {
    for (int i = 0; i < ds->n_parts; i++) {
        const DataPart *p = &ds->parts[i];
        if (p->split != split || (source >= 0 && p->source != source) || p->n <= (size_t)T) continue;
        if (r < p->n - T) { *off = r; return p; }
        r -= p->n - T;
    }
    return NULL;
}

DATADEF size_t data_windows_per_epoch(const DataSet *ds, int T) {
    size_t w = 0;
    for (int i = 0; i < ds->n_parts; i++)
        if (ds->parts[i].split == DATA_TRAIN && ds->parts[i].n > (size_t)T) w += (ds->parts[i].n - 1) / T;
    return w;
}

DATADEF size_t data_epoch(const DataSampler *s) {
    size_t w = data_windows_per_epoch(s->ds, s->T);
    return s->split == DATA_TRAIN_EPOCH && w ? s->cursor / w : 0;
}

DATADEF void data_sampler_state(const DataSampler *s, uint64_t w[2]) { w[0] = s->rng; w[1] = s->cursor; }
DATADEF void data_sampler_restore(DataSampler *s, const uint64_t w[2]) { s->rng = w[0]; s->cursor = (size_t)w[1]; }

/* a bijection of [0, n) keyed by key: a 4-round Feistel network on the smallest even number of
   bits that covers n, walking the cycle until the value falls inside [0, n) */
static uint64_t data_permute(uint64_t i, uint64_t n, uint64_t key) {
    int bits = 2;
    while ((1ull << bits) < n) bits += 2;
    int h = bits / 2;
    uint64_t mask = (1ull << h) - 1;
    do {
        uint64_t l = i >> h, r = i & mask;
        for (int round = 0; round < 4; round++) {
            uint64_t f = data_hash64(r ^ (key + 0x632BE59BD9B4E019ull * (uint64_t)(round + 1))) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        i = l << h | r;
    } while (i >= n);
    return i;
}

/* the window-th non-overlapping train window (offsets k*T within each part) */
static const DataPart *data_epoch_window(const DataSet *ds, int T, size_t window, size_t *off) {
    for (int i = 0; i < ds->n_parts; i++) {
        const DataPart *p = &ds->parts[i];
        if (p->split != DATA_TRAIN || p->n <= (size_t)T) continue;
        size_t k = (p->n - 1) / T;
        if (window < k) { *off = window * T; return p; }
        window -= k;
    }
    return NULL;
}

static int data_pick_source(const DataSet *ds, double u) {
    double c = 0;
    for (int s = 0; s < ds->n_sources; s++) {
        c += ds->weight[s];
        if (u < c) return s;
    }
    return ds->n_sources - 1;
}

DATADEF void data_next_batch(DataSampler *s, int *tokens, int *targets) {
    const DataSet *ds = s->ds;
    int T = s->T;
    for (int b = 0; b < s->B; b++) {
        const DataPart *p = NULL;
        size_t off = 0;
        if (s->split == DATA_TRAIN_EPOCH) {
            size_t w = data_windows_per_epoch(ds, T);
            size_t epoch = s->cursor / w, idx = s->cursor % w;
            s->cursor++;
            p = data_epoch_window(ds, T, data_permute(idx, w, data_hash64(s->rng ^ (uint64_t)epoch * 0x9E37u)), &off);
        } else if (s->split == DATA_TRAIN) {
            int src = -1;
            if (ds->n_sources > 1) src = data_pick_source(ds, data_unit(data_rand(&s->rng)));
            size_t span = data_span(ds, DATA_TRAIN, src, T);
            p = data_locate(ds, DATA_TRAIN, src, T, data_rand(&s->rng) % span, &off);
        } else { /* the rows of the whole-split evaluation in order; cursor is the row */
            DataEval e;
            char err[16];
            int *tk = tokens + (size_t)b * T, *tg = targets + (size_t)b * T;
            if (data_eval_init(&e, ds, DATA_VAL, T, 1, 0, err, sizeof err)) { /* no validation target */
                for (int t = 0; t < T; t++) { tk[t] = 0; tg[t] = -1; }
            } else {
                data_eval_row(&e, s->cursor++ % e.n_rows, tk, tg);
            }
            continue;
        }
        for (int t = 0; t < T; t++) {
            tokens[(size_t)b * T + t] = (int)data_part_tok(p, off + t);
            targets[(size_t)b * T + t] = (int)data_part_tok(p, off + t + 1);
        }
    }
}

/* ======================= evaluation ======================= */

static int data_in_split(const DataPart *p, DataSplit split) { return split == DATA_ALL || p->split == (int)split; }

/* windows of a part's tiling: ceil((n - 1) / T) */
static size_t data_tiles(const DataPart *p, int T) { return p->n >= 2 ? (p->n - 2) / (size_t)T + 1 : 0; }

/* window w of a source's tiling: its part, its first token's offset and the first row position
   it scores (the targets before lo were scored by the window before it) */
static const DataPart *data_tile(const DataSet *ds, DataSplit split, int source, int T, size_t w, size_t *off,
                                 int *lo) {
    for (int i = 0; i < ds->n_parts; i++) {
        const DataPart *p = &ds->parts[i];
        if (!data_in_split(p, split) || p->source != source) continue;
        size_t k = data_tiles(p, T), full = (p->n - 1) / (size_t)T;
        if (w >= k) { w -= k; continue; }
        *off = 0;
        *lo = 0;
        if (w < full) *off = w * (size_t)T;
        else if (full) { /* the tail, aligned to the part's end */
            *off = p->n - 1 - (size_t)T;
            *lo = (int)((size_t)T - (p->n - 1 - full * (size_t)T));
        } /* else a part shorter than a window: one padded window at 0 */
        return p;
    }
    return NULL;
}

/* targets a window scores: row positions lo..T-1 that fall inside the part */
static size_t data_tile_scored(const DataPart *p, size_t off, int lo, int T) {
    size_t end = p->n - 1 - off < (size_t)T ? p->n - 1 - off : (size_t)T;
    return end - (size_t)lo;
}

/* the window of source s for its row j of m, spread over its W tiles: floor((j + 1/2) W / m) */
static size_t data_spread(size_t j, size_t m, size_t W) {
    if (m >= W) return j;
    if (W < ((size_t)1 << 31)) return (size_t)(((uint64_t)(2 * j + 1) * W) / (2 * (uint64_t)m));
    size_t w = (size_t)(((double)j + 0.5) * ((double)W / (double)m)); /* huge splits: double is exact enough */
    return w < W ? w : W - 1;
}

/* row r: its source, part, offset and first scored position */
static const DataPart *data_eval_locate(const DataEval *e, size_t r, int *source, size_t *off, int *lo) {
    int s = 0;
    while (s < e->ds->n_sources - 1 && r >= e->rows[s]) r -= e->rows[s++];
    *source = s;
    return data_tile(e->ds, e->split, s, e->T, data_spread(r, e->rows[s], e->tiles[s]), off, lo);
}

DATADEF int data_eval_init(DataEval *e, const DataSet *ds, DataSplit split, int T, int B, size_t max_rows, char *err,
                           size_t errlen) {
    memset(e, 0, sizeof *e);
    e->ds = ds;
    e->split = split;
    e->T = T;
    e->B = B > 0 ? B : 1;
    const char *name = split == DATA_VAL ? "validation" : split == DATA_TRAIN ? "train" : "whole";
    if (T < 1 || (split != DATA_VAL && split != DATA_TRAIN && split != DATA_ALL)) {
        snprintf(err, errlen, "evaluation: split %d and seq %d (expected train, val or all, seq >= 1)", (int)split, T);
        return -1;
    }
    int whole = 1;
    for (int s = 0; s < ds->n_sources; s++) {
        size_t W = 0;
        for (int i = 0; i < ds->n_parts; i++)
            if (data_in_split(&ds->parts[i], split) && ds->parts[i].source == s) W += data_tiles(&ds->parts[i], T);
        size_t m = W;
        if (max_rows) { /* a source's share by its weight, at least one window */
            double want = floor(ds->weight[s] * (double)max_rows + 0.5);
            if (want < 1) want = 1;
            if (want < (double)W) m = (size_t)want;
        }
        e->tiles[s] = W;
        e->rows[s] = m;
        e->n_rows += m;
        whole &= m == W;
    }
    if (!e->n_rows) {
        snprintf(err, errlen, "data %s: the %s split holds no target to evaluate", ds->n_files ? ds->files[0].path : "?",
                 name);
        return -1;
    }
    e->whole = whole;
    if (whole) { /* every target of every part of the split */
        for (int i = 0; i < ds->n_parts; i++)
            if (data_in_split(&ds->parts[i], split) && ds->parts[i].n >= 2) e->tokens += ds->parts[i].n - 1;
    } else {
        for (size_t r = 0; r < e->n_rows; r++) {
            int s, lo;
            size_t off;
            const DataPart *p = data_eval_locate(e, r, &s, &off, &lo);
            e->tokens += data_tile_scored(p, off, lo, T);
        }
    }
    return 0;
}

DATADEF int data_eval_row(const DataEval *e, size_t r, int *tokens, int *targets) {
    int s, lo, T = e->T;
    size_t off;
    const DataPart *p = data_eval_locate(e, r, &s, &off, &lo);
    for (int t = 0; t < T; t++) {
        size_t i = off + (size_t)t;
        tokens[t] = i < p->n ? (int)data_part_tok(p, i) : 0; /* padding: after the part, causal models ignore it */
        targets[t] = t >= lo && i + 1 < p->n ? (int)data_part_tok(p, i + 1) : -1;
    }
    return s;
}

DATADEF void data_eval_batch(void *eval, int *tokens, int *targets, double *row_bytes) {
    DataEval *e = eval;
    int T = e->T;
    for (int b = 0; b < e->B; b++) {
        size_t r = e->cursor++;
        int *tk = tokens + (size_t)b * T, *tg = targets + (size_t)b * T;
        if (r < e->n_rows) {
            int s = data_eval_row(e, r, tk, tg);
            if (row_bytes) row_bytes[b] = e->bytes ? data_bytes_row(e->bytes, s, tg, T) : NAN;
        } else { /* padding rows of a last partial batch */
            for (int t = 0; t < T; t++) { tk[t] = 0; tg[t] = -1; }
            if (row_bytes) row_bytes[b] = 0;
        }
    }
}

DATADEF size_t data_eval_batches(const DataEval *e) { return (e->n_rows + (size_t)e->B - 1) / (size_t)e->B; }

DATADEF int data_bytes_open(DataBytes *b, const DataSet *ds) {
    memset(b, 0, sizeof *b);
    b->known = 1;
    b->vocab = ds->vocab_size;
    for (int s = 0; s < ds->n_sources; s++) {
        const DataFile *f = NULL;
        uint32_t max_id = 0;
        for (int i = 0; i < ds->n_parts; i++)
            if (ds->parts[i].source == s) {
                const DataFile *fi = &ds->files[ds->parts[i].file];
                if (!f) f = fi;
                if (fi->max_id > max_id) max_id = fi->max_id;
            }
        if (!f || f->buf) continue; /* byte-level text: a token is a byte */
        char dir[512], path[600], e2[600];
        snprintf(dir, sizeof dir, "%s", f->path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        struct stat st;
        if (stat(path, &st)) {
            if (b->known) snprintf(b->why, sizeof b->why, "no %.280s beside the shards of %.280s", path, f->path);
            b->known = 0;
            continue;
        }
        DataTokenizer *t = data_tok_load(path, e2, sizeof e2);
        if (!t || data_tok_vocab(t) <= (int)max_id) {
            if (b->known && t)
                snprintf(b->why, sizeof b->why, "%.280s has %d tokens but %.280s holds id %u", path, data_tok_vocab(t), f->path,
                         max_id);
            else if (b->known) snprintf(b->why, sizeof b->why, "%s", e2);
            b->known = 0;
            data_tok_free(t);
            continue;
        }
        b->len[s] = malloc(sizeof(unsigned) * (ds->vocab_size > 0 ? ds->vocab_size : 1));
        if (!b->len[s]) { data_tok_free(t); data_bytes_close(b); return -1; }
        for (int id = 0; id < ds->vocab_size; id++) {
            unsigned char one[1];
            size_t l = data_tok_decode(t, &id, 1, one, 0); /* cap 0: only the length */
            b->len[s][id] = l == (size_t)-1 ? 0 : (unsigned)l;
        }
        data_tok_free(t);
    }
    return b->known ? 0 : 1;
}

DATADEF void data_bytes_close(DataBytes *b) {
    for (int s = 0; s < DATA_MAX_SOURCES; s++) free(b->len[s]);
    memset(b, 0, sizeof *b);
}

DATADEF double data_bytes_row(const DataBytes *b, int source, const int *targets, int T) {
    if (!b->known) return NAN;
    double n = 0;
    for (int t = 0; t < T; t++) {
        int id = targets[t];
        if (id < 0) continue;
        n += !b->len[source] ? 1 : id < b->vocab ? b->len[source][id] : 0;
    }
    return n;
}

/* ======================= JSON ======================= */
/* a small DOM: nodes in one array, linked by index; strings decoded into one arena */
enum { DJ_NULL, DJ_FALSE, DJ_TRUE, DJ_NUM, DJ_STR, DJ_ARR, DJ_OBJ };
typedef struct { int type, child, next, n; size_t key, klen, s, slen; double num; } DataJNode;
typedef struct {
    DataJNode *nodes;
    int n, cap;
    char *arena;
    size_t alen;
    const char *src;
    size_t len, pos;
    int depth;
    char *err;
    size_t errlen;
    const char *name;
} DataJson;

static int dj_fail(DataJson *j, const char *what) {
    int line = 1;
    for (size_t i = 0; i < j->pos && i < j->len; i++) line += j->src[i] == '\n';
    snprintf(j->err, j->errlen, "%s: line %d: %s", j->name, line, what);
    return -1;
}
static void dj_ws(DataJson *j) {
    while (j->pos < j->len && (j->src[j->pos] == ' ' || j->src[j->pos] == '\n' || j->src[j->pos] == '\r' ||
                               j->src[j->pos] == '\t'))
        j->pos++;
}
static int dj_new(DataJson *j, int type) {
    if (j->n == j->cap) {
        int nc = j->cap ? 2 * j->cap : 1024;
        DataJNode *nn = realloc(j->nodes, sizeof *nn * nc);
        if (!nn) return -1;
        j->nodes = nn;
        j->cap = nc;
    }
    DataJNode z = {type, -1, -1, 0, 0, 0, 0, 0, 0};
    j->nodes[j->n] = z;
    return j->n++;
}
static int dj_hex4(DataJson *j, unsigned *v) {
    if (j->pos + 4 > j->len) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->src[j->pos++];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}
static size_t data_utf8_put(unsigned char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12); o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18); o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 63)); o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}
/* a string at pos (the opening quote): decoded into the arena */
static int dj_string(DataJson *j, size_t *off, size_t *slen) {
    j->pos++;
    *off = j->alen;
    for (;;) {
        if (j->pos >= j->len) return dj_fail(j, "unterminated string");
        unsigned char c = (unsigned char)j->src[j->pos++];
        if (c == '"') break;
        if (c < 0x20) return dj_fail(j, "control character in string");
        if (c != '\\') { j->arena[j->alen++] = (char)c; continue; }
        if (j->pos >= j->len) return dj_fail(j, "unterminated string");
        c = (unsigned char)j->src[j->pos++];
        char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '/' ? '/' : c == 'b' ? '\b' : c == 'f' ? '\f'
               : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : 0;
        if (e) { j->arena[j->alen++] = e; continue; }
        if (c != 'u') return dj_fail(j, "bad escape in string");
        unsigned cp, lo;
        if (dj_hex4(j, &cp)) return dj_fail(j, "bad \\u escape");
        if (cp >= 0xDC00 && cp < 0xE000) return dj_fail(j, "lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (j->pos + 2 > j->len || j->src[j->pos] != '\\' || j->src[j->pos + 1] != 'u')
                return dj_fail(j, "lone high surrogate in \\u escape");
            j->pos += 2;
            if (dj_hex4(j, &lo) || lo < 0xDC00 || lo >= 0xE000) return dj_fail(j, "bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        j->alen += data_utf8_put((unsigned char *)j->arena + j->alen, cp);
    }
    *slen = j->alen - *off;
    j->arena[j->alen++] = 0;
    return 0;
}
static int dj_value(DataJson *j);
static int dj_value(DataJson *j) {
    dj_ws(j);
    if (j->pos >= j->len) return dj_fail(j, "unexpected end of input");
    char c = j->src[j->pos];
    if (c == '{' || c == '[') {
        if (++j->depth > 64) return dj_fail(j, "nesting deeper than 64");
        int obj = c == '{', me = dj_new(j, obj ? DJ_OBJ : DJ_ARR), last = -1;
        if (me < 0) return dj_fail(j, "out of memory");
        j->pos++;
        dj_ws(j);
        if (j->pos < j->len && j->src[j->pos] == (obj ? '}' : ']')) { j->pos++; j->depth--; return me; }
        for (;;) {
            size_t key = 0, klen = 0;
            if (obj) {
                dj_ws(j);
                if (j->pos >= j->len || j->src[j->pos] != '"') return dj_fail(j, "expected a string key");
                if (dj_string(j, &key, &klen)) return -1;
                dj_ws(j);
                if (j->pos >= j->len || j->src[j->pos] != ':') return dj_fail(j, "expected ':'");
                j->pos++;
            }
            int kid = dj_value(j);
            if (kid < 0) return -1;
            j->nodes[kid].key = key;
            j->nodes[kid].klen = klen;
            if (last < 0) j->nodes[me].child = kid;
            else j->nodes[last].next = kid;
            last = kid;
            j->nodes[me].n++;
            dj_ws(j);
            if (j->pos >= j->len) return dj_fail(j, "unexpected end of input");
            c = j->src[j->pos++];
            if (c == ',') continue;
            if (c == (obj ? '}' : ']')) break;
            return dj_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        j->depth--;
        return me;
    }
    if (c == '"') {
        int me = dj_new(j, DJ_STR);
        if (me < 0) return dj_fail(j, "out of memory");
        size_t off, l;
        if (dj_string(j, &off, &l)) return -1;
        j->nodes[me].s = off;
        j->nodes[me].slen = l;
        return me;
    }
    static const char *words[] = {"null", "false", "true"};
    for (int w = 0; w < 3; w++) {
        size_t l = strlen(words[w]);
        if (j->len - j->pos >= l && !memcmp(j->src + j->pos, words[w], l)) {
            j->pos += l;
            int me = dj_new(j, DJ_NULL + w);
            return me < 0 ? dj_fail(j, "out of memory") : me;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t l = 0;
        while (j->pos < j->len && l < sizeof buf - 1 && j->src[j->pos] && strchr("+-0123456789.eE", j->src[j->pos]))
            buf[l++] = j->src[j->pos++];
        buf[l] = 0;
        char *end;
        double v = strtod(buf, &end);
        if (*end || l == 0) return dj_fail(j, "bad number");
        int me = dj_new(j, DJ_NUM);
        if (me < 0) return dj_fail(j, "out of memory");
        j->nodes[me].num = v;
        return me;
    }
    return dj_fail(j, "unexpected character");
}
static void dj_free(DataJson *j) { free(j->nodes); free(j->arena); }
static int dj_parse(DataJson *j, const char *s, size_t n, const char *name, char *err, size_t errlen) {
    memset(j, 0, sizeof *j);
    j->src = s; j->len = n; j->err = err; j->errlen = errlen; j->name = name;
    j->arena = malloc(n + 1); /* decoded strings are never longer than their source, plus one NUL each */
    if (!j->arena) { snprintf(err, errlen, "%s: out of memory", name); return -1; }
    int root = dj_value(j);
    if (root < 0) return -1;
    dj_ws(j);
    if (j->pos != j->len) return dj_fail(j, "text after the JSON value");
    return root;
}
/* member of an object by key, or -1 */
static int dj_get(const DataJson *j, int obj, const char *key) {
    if (obj < 0 || j->nodes[obj].type != DJ_OBJ) return -1;
    size_t kl = strlen(key);
    for (int k = j->nodes[obj].child; k >= 0; k = j->nodes[k].next)
        if (j->nodes[k].klen == kl && !memcmp(j->arena + j->nodes[k].key, key, kl)) return k;
    return -1;
}
static int dj_is(const DataJson *j, int node, int type) { return node >= 0 && j->nodes[node].type == type; }
static const char *dj_str(const DataJson *j, int node) { return j->arena + j->nodes[node].s; }
static int dj_bool(const DataJson *j, int obj, const char *key, int dflt) {
    int k = dj_get(j, obj, key);
    return dj_is(j, k, DJ_TRUE) ? 1 : dj_is(j, k, DJ_FALSE) ? 0 : dflt;
}

/* ======================= Unicode and pre-tokenization ======================= */

static int data_uni_class_of(unsigned cp) {
    if (cp < 128) {
        if (cp == ' ' || (cp >= 9 && cp <= 13)) return 3;
        if ((cp | 32) >= 'a' && (cp | 32) <= 'z') return 1;
        if (cp >= '0' && cp <= '9') return 2;
        return 0;
    }
    int lo = 0, hi = DATA_UNI_RUNS - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (data_uni_start[mid] <= cp) lo = mid;
        else hi = mid - 1;
    }
    return data_uni_class[lo] - '0';
}

/* the character at s[i]: its class (0 other, 1 letter, 2 number, 3 space) and byte length;
   an invalid UTF-8 byte is one "other" character */
static int data_uchar(const unsigned char *s, size_t n, size_t i, int *len) {
    unsigned c = s[i], cp, need;
    if (c < 0x80) { *len = 1; return data_uni_class_of(c); }
    if (c >= 0xC2 && c < 0xE0) { need = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c < 0xF0) { need = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c < 0xF5) { need = 3; cp = c & 0x07; }
    else { *len = 1; return 0; }
    if (i + need >= n) { *len = 1; return 0; }
    for (unsigned k = 1; k <= need; k++) {
        if ((s[i + k] & 0xC0) != 0x80) { *len = 1; return 0; }
        cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *len = 1;
        return 0;
    }
    *len = (int)need + 1;
    return data_uni_class_of(cp);
}

static size_t data_run(const unsigned char *s, size_t n, size_t i, int cls) {
    int l;
    while (i < n && data_uchar(s, n, i, &l) == cls) i += l;
    return i;
}

/* the end of the pre-token starting at s[i] under GPT-2's pattern
   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
   tried in that order, as a backtracking regex engine would */
static size_t data_pretok_end(const unsigned char *s, size_t n, size_t i) {
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    int l, c = data_uchar(s, n, i, &l);
    if (s[i] == ' ' && i + 1 < n) {
        int l1, c1 = data_uchar(s, n, i + 1, &l1);
        if (c1 != 3) return data_run(s, n, i + 1, c1);
    }
    if (c != 3) return data_run(s, n, i, c);
    size_t j = i, last = i; /* whitespace: all of it at the end, else all but the last character */
    while (j < n && data_uchar(s, n, j, &l) == 3) { last = j; j += l; }
    if (j == n || last == i) return j;
    return last;
}

/* GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves, the others get
   U+0100 upwards in byte order */
static void data_byte_map(unsigned fwd[256]) {
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        fwd[b] = keep ? (unsigned)b : 256u + (unsigned)k++;
    }
}

/* ======================= hash maps ======================= */
static uint64_t data_fnv(const unsigned char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}
typedef struct { const unsigned char **key; int *klen, *val; size_t cap, n; } DataStrMap;
static int dsm_grow(DataStrMap *m);
static int *dsm_slot(DataStrMap *m, const unsigned char *k, int kl, int insert) {
    if (insert && (m->n + 1) * 2 > m->cap && dsm_grow(m)) return NULL;
    if (!m->cap) return NULL;
    size_t i = data_fnv(k, kl) & (m->cap - 1);
    while (m->key[i]) {
        if (m->klen[i] == kl && !memcmp(m->key[i], k, kl)) return &m->val[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) return NULL;
    unsigned char *own = malloc(kl ? kl : 1); /* the map owns a copy: callers' buffers come and go */
    if (!own) return NULL;
    memcpy(own, k, kl);
    m->key[i] = own;
    m->klen[i] = kl;
    m->val[i] = -1;
    m->n++;
    return &m->val[i];
}
static int dsm_grow(DataStrMap *m) {
    DataStrMap b = {0};
    b.cap = m->cap ? 2 * m->cap : 1024;
    b.key = calloc(b.cap, sizeof *b.key);
    b.klen = calloc(b.cap, sizeof *b.klen);
    b.val = calloc(b.cap, sizeof *b.val);
    if (!b.key || !b.klen || !b.val) { free(b.key); free(b.klen); free(b.val); return -1; }
    for (size_t i = 0; i < m->cap; i++) { /* move the owned keys */
        if (!m->key[i]) continue;
        size_t j = data_fnv(m->key[i], m->klen[i]) & (b.cap - 1);
        while (b.key[j]) j = (j + 1) & (b.cap - 1);
        b.key[j] = m->key[i]; b.klen[j] = m->klen[i]; b.val[j] = m->val[i];
    }
    b.n = m->n;
    free(m->key); free(m->klen); free(m->val);
    *m = b;
    return 0;
}
static void dsm_free(DataStrMap *m) {
    for (size_t i = 0; i < m->cap; i++) free((void *)m->key[i]);
    free(m->key); free(m->klen); free(m->val); memset(m, 0, sizeof *m); }

/* pairs of ids -> a 64-bit value; key 0 is the empty slot, so keys are stored + 1 */
typedef struct { uint64_t *key, *val; size_t cap, n; } DataPairMap;
static uint64_t *dpm_slot(DataPairMap *m, uint64_t k, int insert);
static int dpm_grow(DataPairMap *m) {
    DataPairMap b = {0};
    b.cap = m->cap ? 2 * m->cap : 1024;
    b.key = calloc(b.cap, sizeof *b.key);
    b.val = calloc(b.cap, sizeof *b.val);
    if (!b.key || !b.val) { free(b.key); free(b.val); return -1; }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) *dpm_slot(&b, m->key[i] - 1, 1) = m->val[i];
    free(m->key); free(m->val);
    *m = b;
    return 0;
}
static uint64_t *dpm_slot(DataPairMap *m, uint64_t k, int insert) {
    if (insert && (m->n + 1) * 2 > m->cap && dpm_grow(m)) return NULL;
    if (!m->cap) return NULL;
    size_t i = data_hash64(k) & (m->cap - 1);
    while (m->key[i]) {
        if (m->key[i] == k + 1) return &m->val[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) return NULL;
    m->key[i] = k + 1;
    m->val[i] = 0;
    m->n++;
    return &m->val[i];
}
static void dpm_free(DataPairMap *m) { free(m->key); free(m->val); memset(m, 0, sizeof *m); }
static uint64_t data_pair(int a, int b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* ======================= byte-level BPE ======================= */

#define DATA_CACHE_SLOTS 65536
#define DATA_CACHE_WORD 24
typedef struct { unsigned char len, nids; unsigned char w[DATA_CACHE_WORD]; int ids[DATA_CACHE_WORD]; } DataCacheSlot;

typedef struct { unsigned char *s; int len, id, special; } DataAdded;

struct DataTokenizer {
    int n_vocab;                /* ids are < n_vocab */
    unsigned char **tok;        /* id -> bytes (NULL for an unused id) */
    int *tok_len;
    DataStrMap vocab;           /* model tokens: bytes -> id */
    int byte_id[256];
    DataPairMap merges;         /* (a, b) -> rank << 32 | merged id */
    int n_merges;
    int (*merge_list)[2];       /* in rank order, for saving */
    DataAdded *added;
    int n_added;
    unsigned char added_first[256];
    int digits;                 /* 0: no Digits pre-tokenizer, 1: individual digits, 2: runs of digits */
    int use_regex, add_prefix_space, ignore_merges;
    DataCacheSlot *cache;
    /* scratch for one word */
    int *sym, *prev, *next, cap;
    uint64_t *heap;
    int nheap, heapcap;
};

DATADEF void data_tok_free(DataTokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) free(t->tok[i]);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].s);
    free(t->tok); free(t->tok_len); free(t->added); free(t->merge_list); free(t->cache);
    free(t->sym); free(t->prev); free(t->next); free(t->heap);
    dsm_free(&t->vocab);
    dpm_free(&t->merges);
    free(t);
}

DATADEF int data_tok_vocab(const DataTokenizer *t) { return t->n_vocab; }

DATADEF int data_tok_id(const DataTokenizer *t, const char *token) {
    int l = (int)strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == l && !memcmp(t->added[i].s, token, l)) return t->added[i].id;
    int *v = dsm_slot((DataStrMap *)&t->vocab, (const unsigned char *)token, l, 0);
    return v ? *v : -1;
}

/* a token string from tokenizer.json as bytes: each character through the inverse byte map;
   a token with a character outside the map is kept as its UTF-8 text */
static int data_unmap_token(const char *s, size_t n, const int inv[324], unsigned char *out) {
    size_t i = 0;
    int k = 0;
    while (i < n) {
        int l;
        unsigned cp;
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) { cp = c; l = 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < n) { cp = (c & 0x1Fu) << 6 | (s[i + 1] & 0x3F); l = 2; }
        else { cp = 0xFFFFFFFF; l = 1; }
        if (cp >= 324 || inv[cp] < 0) { memcpy(out, s, n); return (int)n; }
        out[k++] = (unsigned char)inv[cp];
        i += l;
    }
    return k;
}

static int data_tok_set(DataTokenizer *t, int id, const unsigned char *b, int len) {
    if (id >= t->n_vocab) {
        int nv = id + 1 > 2 * t->n_vocab ? id + 1 : 2 * t->n_vocab;
        unsigned char **nt = realloc(t->tok, sizeof *nt * nv);
        if (!nt) return -1;
        t->tok = nt;
        int *nl = realloc(t->tok_len, sizeof *nl * nv);
        if (!nl) return -1;
        t->tok_len = nl;
        for (int i = t->n_vocab; i < nv; i++) { t->tok[i] = NULL; t->tok_len[i] = 0; }
        t->n_vocab = nv;
    }
    free(t->tok[id]);
    t->tok[id] = malloc(len + 1);
    if (!t->tok[id]) return -1;
    memcpy(t->tok[id], b, len);
    t->tok[id][len] = 0;
    t->tok_len[id] = len;
    return 0;
}

/* after the vocabulary is in place: the one-byte tokens, the real vocabulary size */
static int data_tok_finish(DataTokenizer *t, int byte_fallback, const char *name, char *err, size_t errlen) {
    int nv = 0;
    for (int i = 0; i < t->n_vocab; i++) if (t->tok[i]) nv = i + 1;
    t->n_vocab = nv;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        int *v = dsm_slot(&t->vocab, &c, 1, 0);
        t->byte_id[b] = v ? *v : -1;
        if (t->byte_id[b] < 0 && byte_fallback) {
            char fb[8];
            snprintf(fb, sizeof fb, "<0x%02X>", b);
            t->byte_id[b] = data_tok_id(t, fb);
        }
        if (t->byte_id[b] < 0) {
            snprintf(err, errlen, "tokenizer %s: no token for byte 0x%02X (not byte-level, and no byte fallback)",
                     name, b);
            return -1;
        }
    }
    memset(t->added_first, 0, sizeof t->added_first);
    for (int i = 0; i < t->n_added; i++) t->added_first[t->added[i].s[0]] = 1;
    return 0;
}

static int data_tok_add_merge(DataTokenizer *t, int a, int b, int id) {
    uint64_t *v = dpm_slot(&t->merges, data_pair(a, b), 1);
    if (!v) return -1;
    if (*v) return 0; /* a repeated merge keeps its first (best) rank */
    *v = (uint64_t)t->n_merges << 32 | (uint32_t)id;
    if ((t->n_merges & (t->n_merges - 1)) == 0) {
        int (*nm)[2] = realloc(t->merge_list, sizeof *nm * (t->n_merges ? 2 * t->n_merges : 1));
        if (!nm) return -1;
        t->merge_list = nm;
    }
    t->merge_list[t->n_merges][0] = a;
    t->merge_list[t->n_merges][1] = b;
    t->n_merges++;
    return 0;
}

DATADEF DataTokenizer *data_tok_load_mem(const char *json, size_t n, const char *name, char *err, size_t errlen) {
    DataJson j;
    DataTokenizer *t = calloc(1, sizeof *t);
    unsigned char *buf = NULL;
    if (!t) { snprintf(err, errlen, "tokenizer %s: out of memory", name); return NULL; }
    char msg[300];
    int root = dj_parse(&j, json, n, name, err, errlen);
    if (root < 0) goto fail_quiet;
#define DT_FAIL(...) do { snprintf(msg, sizeof msg, __VA_ARGS__); snprintf(err, errlen, "tokenizer %s: %s", name, msg); goto fail_quiet; } while (0)
    if (!dj_is(&j, root, DJ_OBJ)) DT_FAIL("not a JSON object");
    int model = dj_get(&j, root, "model");
    if (!dj_is(&j, model, DJ_OBJ)) DT_FAIL("no \"model\" object");
    int type = dj_get(&j, model, "type");
    if (type >= 0 && (!dj_is(&j, type, DJ_STR) || strcmp(dj_str(&j, type), "BPE")))
        DT_FAIL("model type %s is not supported (only BPE)", dj_is(&j, type, DJ_STR) ? dj_str(&j, type) : "?");
    int norm = dj_get(&j, root, "normalizer");
    if (norm >= 0 && !dj_is(&j, norm, DJ_NULL)) {
        int nt = dj_get(&j, norm, "type");
        DT_FAIL("normalizer %s is not supported (only null)", dj_is(&j, nt, DJ_STR) ? dj_str(&j, nt) : "?");
    }
    if (dj_is(&j, dj_get(&j, model, "continuing_subword_prefix"), DJ_STR) ||
        dj_is(&j, dj_get(&j, model, "end_of_word_suffix"), DJ_STR))
        DT_FAIL("continuing_subword_prefix / end_of_word_suffix are not supported");
    /* pre-tokenizer: null, ByteLevel, Digits, or a Sequence of those */
    int pre = dj_get(&j, root, "pre_tokenizer");
    int list[8], nlist = 0;
    if (dj_is(&j, pre, DJ_OBJ)) {
        int pt = dj_get(&j, pre, "type");
        if (dj_is(&j, pt, DJ_STR) && !strcmp(dj_str(&j, pt), "Sequence")) {
            int arr = dj_get(&j, pre, "pretokenizers");
            if (!dj_is(&j, arr, DJ_ARR)) DT_FAIL("Sequence pre_tokenizer without a \"pretokenizers\" array");
            for (int k = j.nodes[arr].child; k >= 0 && nlist < 8; k = j.nodes[k].next) list[nlist++] = k;
        } else list[nlist++] = pre;
    } else if (pre >= 0 && !dj_is(&j, pre, DJ_NULL)) DT_FAIL("\"pre_tokenizer\" is not an object");
    for (int i = 0; i < nlist; i++) {
        int pt = dj_get(&j, list[i], "type");
        const char *ty = dj_is(&j, pt, DJ_STR) ? dj_str(&j, pt) : "?";
        if (!strcmp(ty, "ByteLevel") && i == nlist - 1) {
            t->use_regex = dj_bool(&j, list[i], "use_regex", 1);
            t->add_prefix_space = dj_bool(&j, list[i], "add_prefix_space", 0);
        } else if (!strcmp(ty, "Digits") && i == 0 && nlist > 1) {
            t->digits = dj_bool(&j, list[i], "individual_digits", 0) ? 1 : 2;
        } else {
            DT_FAIL("pre_tokenizer %s is not supported here (ByteLevel, optionally after Digits)", ty);
        }
    }
    t->ignore_merges = dj_bool(&j, model, "ignore_merges", 0);
    int byte_fallback = dj_bool(&j, model, "byte_fallback", 0);
    int inv[324];
    unsigned fwd[256];
    data_byte_map(fwd);
    for (int i = 0; i < 324; i++) inv[i] = -1;
    for (int b = 0; b < 256; b++) inv[fwd[b]] = b;
    int vocab = dj_get(&j, model, "vocab");
    if (!dj_is(&j, vocab, DJ_OBJ)) DT_FAIL("model has no \"vocab\" object");
    buf = malloc(n + 1);
    if (!buf) DT_FAIL("out of memory");
    for (int k = j.nodes[vocab].child; k >= 0; k = j.nodes[k].next) {
        double id = j.nodes[k].num;
        const char *key = j.arena + j.nodes[k].key;
        if (!dj_is(&j, k, DJ_NUM) || id < 0 || id >= (1 << 24) || id != (int)id)
            DT_FAIL("vocab entry \"%.40s\": id must be an integer in [0, 2^24)", key);
        if (j.nodes[k].klen == 0) DT_FAIL("vocab has an empty token");
        int len = data_unmap_token(key, j.nodes[k].klen, inv, buf);
        if ((int)id < t->n_vocab && t->tok[(int)id]) DT_FAIL("vocab: id %d is given to two tokens (\"%.40s\")", (int)id, key);
        if (data_tok_set(t, (int)id, buf, len)) DT_FAIL("out of memory");
        int *slot = dsm_slot(&t->vocab, t->tok[(int)id], len, 1);
        if (!slot) DT_FAIL("out of memory");
        if (*slot < 0) *slot = (int)id;
    }
    int added = dj_get(&j, root, "added_tokens");
    if (added >= 0 && !dj_is(&j, added, DJ_ARR) && !dj_is(&j, added, DJ_NULL)) DT_FAIL("\"added_tokens\" is not an array");
    if (dj_is(&j, added, DJ_ARR)) {
        t->added = calloc(j.nodes[added].n + 1, sizeof *t->added);
        if (!t->added) DT_FAIL("out of memory");
        for (int k = j.nodes[added].child; k >= 0; k = j.nodes[k].next) {
            int id = dj_get(&j, k, "id"), content = dj_get(&j, k, "content");
            if (!dj_is(&j, id, DJ_NUM) || !dj_is(&j, content, DJ_STR) || j.nodes[id].num < 0 ||
                j.nodes[id].num >= (1 << 24) || j.nodes[content].slen == 0)
                DT_FAIL("added token %d: needs an integer \"id\" and a non-empty \"content\"", t->n_added);
            DataAdded *a = &t->added[t->n_added++];
            a->len = (int)j.nodes[content].slen;
            a->s = malloc(a->len + 1);
            if (!a->s) DT_FAIL("out of memory");
            memcpy(a->s, dj_str(&j, content), a->len + 1);
            a->id = (int)j.nodes[id].num;
            a->special = dj_bool(&j, k, "special", 0);
            if (a->id < t->n_vocab && t->tok[a->id] &&
                (t->tok_len[a->id] != a->len || memcmp(t->tok[a->id], a->s, a->len)))
                DT_FAIL("added token \"%.40s\" has id %d, which the vocabulary gives to another token", a->s, a->id);
            if (data_tok_set(t, a->id, a->s, a->len)) DT_FAIL("out of memory");
        }
    }
    int merges = dj_get(&j, model, "merges");
    if (!dj_is(&j, merges, DJ_ARR)) DT_FAIL("model has no \"merges\" array");
    int rank = 0;
    for (int k = j.nodes[merges].child; k >= 0; k = j.nodes[k].next, rank++) {
        const char *pa, *pb;
        size_t la, lb;
        if (dj_is(&j, k, DJ_STR)) { /* "a b" */
            pa = dj_str(&j, k);
            const char *sp = memchr(pa, ' ', j.nodes[k].slen);
            if (!sp || memchr(sp + 1, ' ', j.nodes[k].slen - (sp + 1 - pa)))
                DT_FAIL("merge %d \"%.40s\" is not two tokens separated by one space", rank, pa);
            la = sp - pa;
            pb = sp + 1;
            lb = j.nodes[k].slen - la - 1;
        } else if (dj_is(&j, k, DJ_ARR) && j.nodes[k].n == 2 && dj_is(&j, j.nodes[k].child, DJ_STR) &&
                   dj_is(&j, j.nodes[j.nodes[k].child].next, DJ_STR)) { /* ["a", "b"] */
            int c0 = j.nodes[k].child, c1 = j.nodes[c0].next;
            pa = dj_str(&j, c0); la = j.nodes[c0].slen;
            pb = dj_str(&j, c1); lb = j.nodes[c1].slen;
        } else DT_FAIL("merge %d is neither \"a b\" nor [\"a\", \"b\"]", rank);
        int l1 = data_unmap_token(pa, la, inv, buf);
        int l2 = data_unmap_token(pb, lb, inv, buf + l1);
        int *ia = dsm_slot(&t->vocab, buf, l1, 0), *ib = dsm_slot(&t->vocab, buf + l1, l2, 0);
        int *im = dsm_slot(&t->vocab, buf, l1 + l2, 0);
        if (!ia || !ib || !im)
            DT_FAIL("merge %d \"%.30s\" + \"%.30s\": %s is not in the vocabulary", rank, pa, pb,
                    !ia ? "the first token" : !ib ? "the second token" : "the merged token");
        if (data_tok_add_merge(t, *ia, *ib, *im)) DT_FAIL("out of memory");
    }
    if (data_tok_finish(t, byte_fallback, name, err, errlen)) goto fail_quiet;
#undef DT_FAIL
    free(buf);
    dj_free(&j);
    return t;
fail_quiet:
    free(buf);
    dj_free(&j);
    data_tok_free(t);
    return NULL;
}

DATADEF DataTokenizer *data_tok_load(const char *path, char *err, size_t errlen) {
    size_t n;
    unsigned char *buf = data_read_file(path, &n, err, errlen);
    if (!buf) { /* the reason, under the tokenizer's name */
        char why[400];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "tokenizer %s", !strncmp(why, "data file ", 10) ? why + 10 : why);
        return NULL;
    }
    if (n == 0) { free(buf); snprintf(err, errlen, "tokenizer %s is empty", path); return NULL; }
    DataTokenizer *t = data_tok_load_mem((const char *)buf, n, path, err, errlen);
    free(buf);
    return t;
}

static int data_tok_scratch(DataTokenizer *t, int n) {
    if (n <= t->cap) return 0;
    int c = n > 2 * t->cap ? n : 2 * t->cap;
    int *a = realloc(t->sym, sizeof *a * c), *b = a ? realloc(t->prev, sizeof *b * c) : NULL;
    if (a) t->sym = a;
    if (b) t->prev = b;
    int *d = b ? realloc(t->next, sizeof *d * c) : NULL;
    if (d) t->next = d;
    uint64_t *h = d ? realloc(t->heap, sizeof *h * (3 * (size_t)c + 4)) : NULL; /* pushes <= 3n */
    if (!h) return -1;
    t->heap = h;
    t->cap = c;
    return 0;
}

/* min-heap of (rank << 32 | left position): the lowest rank first, the leftmost on ties */
static void data_heap_push(DataTokenizer *t, uint64_t v) {
    int i = t->nheap++;
    while (i > 0 && t->heap[(i - 1) / 2] > v) { t->heap[i] = t->heap[(i - 1) / 2]; i = (i - 1) / 2; }
    t->heap[i] = v;
}
static uint64_t data_heap_pop(DataTokenizer *t) {
    uint64_t top = t->heap[0], v = t->heap[--t->nheap];
    int i = 0, n = t->nheap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && t->heap[c + 1] < t->heap[c]) c++;
        if (t->heap[c] >= v) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n) t->heap[i] = v;
    return top;
}
static void data_bpe_push(DataTokenizer *t, int i) {
    if (i < 0 || t->next[i] < 0) return;
    uint64_t *m = dpm_slot(&t->merges, data_pair(t->sym[i], t->sym[t->next[i]]), 0);
    if (m) data_heap_push(t, (*m >> 32) << 32 | (uint32_t)i);
}

/* one pre-token to ids; returns the count */
static int data_bpe_word(DataTokenizer *t, const unsigned char *w, int n, int *ids) {
    if (t->ignore_merges) {
        int *v = dsm_slot(&t->vocab, w, n, 0);
        if (v) { ids[0] = *v; return 1; }
    }
    DataCacheSlot *slot = NULL;
    if (n <= DATA_CACHE_WORD && t->cache) {
        slot = &t->cache[data_fnv(w, n) & (DATA_CACHE_SLOTS - 1)];
        if (slot->len == n && !memcmp(slot->w, w, n)) {
            memcpy(ids, slot->ids, sizeof *ids * slot->nids);
            return slot->nids;
        }
    }
    if (data_tok_scratch(t, n)) { /* out of memory: bytes alone still round-trip */
        for (int i = 0; i < n; i++) ids[i] = t->byte_id[w[i]];
        return n;
    }
    t->nheap = 0;
    for (int i = 0; i < n; i++) { t->sym[i] = t->byte_id[w[i]]; t->prev[i] = i - 1; t->next[i] = i + 1 < n ? i + 1 : -1; }
    for (int i = 0; i + 1 < n; i++) data_bpe_push(t, i);
    while (t->nheap) {
        uint64_t top = data_heap_pop(t);
        int i = (int)(uint32_t)top, r = t->next[i];
        if (t->sym[i] < 0 || r < 0) continue;
        uint64_t *m = dpm_slot(&t->merges, data_pair(t->sym[i], t->sym[r]), 0);
        if (!m || (*m >> 32) != top >> 32) continue; /* stale: a neighbour changed since the push */
        t->sym[i] = (int)(uint32_t)*m;
        t->sym[r] = -1;
        t->next[i] = t->next[r];
        if (t->next[r] >= 0) t->prev[t->next[r]] = i;
        data_bpe_push(t, t->prev[i]);
        data_bpe_push(t, i);
    }
    int k = 0;
    for (int i = 0; i >= 0; i = t->next[i]) ids[k++] = t->sym[i];
    if (slot) {
        slot->len = (unsigned char)n;
        slot->nids = (unsigned char)k;
        memcpy(slot->w, w, n);
        memcpy(slot->ids, ids, sizeof *ids * k);
    }
    return k;
}

/* a stretch of text with no added tokens: Digits split, then the regex, then BPE */
static size_t data_encode_plain(DataTokenizer *t, const unsigned char *s, size_t n, int *ids) {
    size_t k = 0, i = 0;
    while (i < n) {
        size_t pe = n; /* the piece the Digits pre-tokenizer leaves */
        if (t->digits) {
            int l, c = data_uchar(s, n, i, &l);
            if (c == 2) pe = t->digits == 1 ? i + l : data_run(s, n, i, 2);
            else for (pe = i; pe < n && data_uchar(s, n, pe, &l) != 2; pe += l) {}
        }
        if (t->add_prefix_space && s[i] != ' ') { /* ByteLevel's option applies to every piece */
            unsigned char *tmp = malloc(pe - i + 1);
            if (tmp) {
                tmp[0] = ' ';
                memcpy(tmp + 1, s + i, pe - i);
                int keep = t->add_prefix_space;
                t->add_prefix_space = 0;
                int dg = t->digits;
                t->digits = 0; /* already split */
                k += data_encode_plain(t, tmp, pe - i + 1, ids + k);
                t->add_prefix_space = keep;
                t->digits = dg;
                free(tmp);
                i = pe;
                continue;
            }
        }
        while (i < pe) {
            size_t e = t->use_regex ? data_pretok_end(s, pe, i) : pe;
            size_t len = e - i;
            while (len > 0) { /* a pre-token longer than INT_MAX/4 is cut, never expected */
                int chunk = len > (1u << 28) ? 1 << 28 : (int)len;
                k += data_bpe_word(t, s + i, chunk, ids + k);
                i += chunk;
                len -= chunk;
            }
        }
    }
    return k;
}

/* at most one token per byte, plus one per piece given a prefix space */
DATADEF size_t data_tok_max_ids(const DataTokenizer *t, size_t n) { return t->add_prefix_space ? 2 * n + 1 : n + 1; }

DATADEF size_t data_tok_encode(DataTokenizer *t, const unsigned char *text, size_t n, int *ids) {
    if (!t->cache) t->cache = calloc(DATA_CACHE_SLOTS, sizeof *t->cache);
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        int hit = -1;
        if (i < n && t->added_first[text[i]])
            for (int a = 0; a < t->n_added; a++) /* the longest added token here */
                if ((size_t)t->added[a].len <= n - i && !memcmp(text + i, t->added[a].s, t->added[a].len) &&
                    (hit < 0 || t->added[a].len > t->added[hit].len))
                    hit = a;
        if (hit < 0 && i < n) continue;
        if (i > start) k += data_encode_plain(t, text + start, i - start, ids + k);
        if (hit >= 0) { ids[k++] = t->added[hit].id; i += t->added[hit].len - 1; start = i + 1; }
    }
    return k;
}

DATADEF size_t data_tok_decode(const DataTokenizer *t, const int *ids, size_t n, unsigned char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab || !t->tok[ids[i]]) return (size_t)-1;
        int l = t->tok_len[ids[i]];
        if (k + l <= cap) memcpy(out + k, t->tok[ids[i]], l);
        else if (k < cap) memcpy(out + k, t->tok[ids[i]], cap - k);
        k += l;
    }
    return k;
}

/* ---- saving: tokenizer.json in the form Hugging Face tokenizers writes ---- */
static void data_json_token(FILE *f, const unsigned char *b, int len, int mapped) {
    unsigned fwd[256];
    data_byte_map(fwd);
    fputc('"', f);
    for (int i = 0; i < len; i++) {
        unsigned cp = mapped ? fwd[b[i]] : b[i];
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
        else if (cp < 0x20) fprintf(f, "\\u%04x", cp);
        else if (!mapped) fputc((int)cp, f);
        else { unsigned char u[4]; fwrite(u, 1, data_utf8_put(u, cp), f); }
    }
    fputc('"', f);
}

DATADEF int data_tok_save(const DataTokenizer *t, const char *path, char *err, size_t errlen) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { snprintf(err, errlen, "tokenizer %s: cannot create", tmp); return -1; }
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (int i = 0; i < t->n_added; i++) {
        fprintf(f, "%s\n    {\"id\": %d, \"content\": ", i ? "," : "", t->added[i].id);
        data_json_token(f, t->added[i].s, t->added[i].len, 0);
        fprintf(f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
                   "\"special\": %s}", t->added[i].special ? "true" : "false");
    }
    fprintf(f, "\n  ],\n  \"normalizer\": null,\n  \"pre_tokenizer\": ");
    const char *bl = "{\"type\": \"ByteLevel\", \"add_prefix_space\": %s, \"trim_offsets\": true, \"use_regex\": %s}";
    if (t->digits)
        fprintf(f, "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": %s}, ",
                t->digits == 1 ? "true" : "false");
    fprintf(f, bl, t->add_prefix_space ? "true" : "false", t->use_regex ? "true" : "false");
    if (t->digits) fprintf(f, "]}");
    fprintf(f, ",\n  \"post_processor\": null,\n  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
               "\"trim_offsets\": true, \"use_regex\": true},\n  \"model\": {\n    \"type\": \"BPE\", \"dropout\": null, "
               "\"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, "
               "\"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": %s,\n    \"vocab\": {",
            t->ignore_merges ? "true" : "false");
    int first = 1;
    for (int i = 0; i < t->n_vocab; i++) {
        int special = 0;
        for (int a = 0; a < t->n_added; a++) special |= t->added[a].id == i;
        if (!t->tok[i]) continue;
        fprintf(f, "%s\n      ", first ? "" : ",");
        data_json_token(f, t->tok[i], t->tok_len[i], !special);
        fprintf(f, ": %d", i);
        first = 0;
    }
    fprintf(f, "\n    },\n    \"merges\": [");
    for (int m = 0; m < t->n_merges; m++) {
        fprintf(f, "%s\n      [", m ? "," : "");
        data_json_token(f, t->tok[t->merge_list[m][0]], t->tok_len[t->merge_list[m][0]], 1);
        fprintf(f, ", ");
        data_json_token(f, t->tok[t->merge_list[m][1]], t->tok_len[t->merge_list[m][1]], 1);
        fprintf(f, "]");
    }
    fprintf(f, "\n    ]\n  }\n}\n");
    int ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) { remove(tmp); snprintf(err, errlen, "tokenizer %s: write failed", path); return -1; }
    return 0;
}

/* ---- training ---- */
typedef struct { int *sym; int n; int64_t count; } DataTrainWord;
typedef struct { int a, b; int64_t count; int *where; int nwhere, capwhere; } DataTrainPair;
typedef struct {
    DataTrainPair *pairs;
    int npairs, cappairs;
    DataPairMap index;          /* (a, b) -> pair index */
    uint64_t *heap;             /* entries: pair index; ordered by (count desc, a, b) */
    int nheap, capheap;
    int64_t *heapcount;         /* the count each heap entry was pushed with */
} DataTrainer;

static int data_cmp_int(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }

static int dtr_pair(DataTrainer *tr, int a, int b) {
    uint64_t *v = dpm_slot(&tr->index, data_pair(a, b), 1);
    if (!v) return -1;
    if (*v) return (int)(*v - 1);
    if (tr->npairs == tr->cappairs) {
        int nc = tr->cappairs ? 2 * tr->cappairs : 1024;
        DataTrainPair *np = realloc(tr->pairs, sizeof *np * nc);
        if (!np) return -1;
        tr->pairs = np;
        tr->cappairs = nc;
    }
    DataTrainPair p = {a, b, 0, NULL, 0, 0};
    tr->pairs[tr->npairs] = p;
    *v = (uint64_t)++tr->npairs;
    return tr->npairs - 1;
}
static int dtr_add(DataTrainer *tr, int a, int b, int64_t c, int word) {
    int p = dtr_pair(tr, a, b);
    if (p < 0) return -1;
    DataTrainPair *q = &tr->pairs[p];
    q->count += c;
    if (word >= 0 && c > 0 && (q->nwhere == 0 || q->where[q->nwhere - 1] != word)) {
        if (q->nwhere == q->capwhere) {
            int nc = q->capwhere ? 2 * q->capwhere : 4;
            int *nw = realloc(q->where, sizeof *nw * nc);
            if (!nw) return -1;
            q->where = nw;
            q->capwhere = nc;
        }
        q->where[q->nwhere++] = word;
    }
    return p;
}
/* does heap entry x come before y? higher count, then the smaller pair */
static int dtr_before(const DataTrainer *tr, int x, int y) {
    int64_t cx = tr->heapcount[x], cy = tr->heapcount[y];
    if (cx != cy) return cx > cy;
    const DataTrainPair *px = &tr->pairs[tr->heap[x]], *py = &tr->pairs[tr->heap[y]];
    return px->a != py->a ? px->a < py->a : px->b < py->b;
}
static void dtr_swap(DataTrainer *tr, int x, int y) {
    uint64_t h = tr->heap[x]; tr->heap[x] = tr->heap[y]; tr->heap[y] = h;
    int64_t c = tr->heapcount[x]; tr->heapcount[x] = tr->heapcount[y]; tr->heapcount[y] = c;
}
static int dtr_push(DataTrainer *tr, int p) {
    if (tr->nheap == tr->capheap) {
        int nc = tr->capheap ? 2 * tr->capheap : 1024;
        uint64_t *nh = realloc(tr->heap, sizeof *nh * nc);
        int64_t *ncnt = nh ? realloc(tr->heapcount, sizeof *ncnt * nc) : NULL;
        if (nh) tr->heap = nh;
        if (!ncnt) return -1;
        tr->heapcount = ncnt;
        tr->capheap = nc;
    }
    int i = tr->nheap++;
    tr->heap[i] = (uint64_t)p;
    tr->heapcount[i] = tr->pairs[p].count;
    while (i > 0 && dtr_before(tr, i, (i - 1) / 2)) { dtr_swap(tr, i, (i - 1) / 2); i = (i - 1) / 2; }
    return 0;
}
static int dtr_pop(DataTrainer *tr, int64_t *count) {
    int p = (int)tr->heap[0];
    *count = tr->heapcount[0];
    dtr_swap(tr, 0, --tr->nheap);
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= tr->nheap) break;
        if (c + 1 < tr->nheap && dtr_before(tr, c + 1, c)) c++;
        if (!dtr_before(tr, c, i)) break;
        dtr_swap(tr, c, i);
        i = c;
    }
    return p;
}

DATADEF DataTokenizer *data_tok_train(const unsigned char *text, size_t n, int vocab, char *err, size_t errlen) {
    if (vocab < 257 || vocab > DATA_MAX_VOCAB) {
        snprintf(err, errlen, "tokenizer training: vocabulary %d must be in [257, %d] (256 bytes + 1 special; "
                 "DATA_MAX_VOCAB)", vocab, DATA_MAX_VOCAB);
        return NULL;
    }
    DataTokenizer *t = calloc(1, sizeof *t);
    if (!t) { snprintf(err, errlen, "tokenizer training: out of memory"); return NULL; }
    t->use_regex = 1;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        data_tok_set(t, b, &c, 1);
        *dsm_slot(&t->vocab, t->tok[b], 1, 1) = b;
    }
    /* count the pre-tokens (words) */
    DataStrMap words = {0};
    DataTrainWord *w = NULL;
    int nw = 0, capw = 0, next_id = 256, oom = 0;
    for (size_t i = 0; i < n && !oom;) {
        size_t e = data_pretok_end(text, n, i);
        int l = e - i > (1u << 20) ? 1 << 20 : (int)(e - i);
        int *slot = dsm_slot(&words, text + i, l, 1);
        if (!slot) { oom = 1; break; }
        if (*slot < 0) {
            if (nw == capw) {
                capw = capw ? 2 * capw : 4096;
                DataTrainWord *nww = realloc(w, sizeof *nww * capw);
                if (!nww) { oom = 1; break; }
                w = nww;
            }
            w[nw].sym = malloc(sizeof(int) * l);
            if (!w[nw].sym) { oom = 1; break; }
            for (int k = 0; k < l; k++) w[nw].sym[k] = text[i + k];
            w[nw].n = l;
            w[nw].count = 0;
            *slot = nw++;
        }
        w[*slot].count++;
        i += l;
    }
    dsm_free(&words);
    DataTrainer tr = {0};
    for (int i = 0; i < nw && !oom; i++)
        for (int k = 0; k + 1 < w[i].n && !oom; k++) oom = dtr_add(&tr, w[i].sym[k], w[i].sym[k + 1], w[i].count, i) < 0;
    for (int p = 0; p < tr.npairs && !oom; p++) oom = dtr_push(&tr, p) != 0;
    int *seen = calloc(nw + 1, sizeof *seen), *newp = NULL, nnew = 0, capnew = 0, *buf = NULL, capbuf = 0;
    if (!seen) oom = 1;
    int stamp = 0;
    while (!oom && next_id < vocab - 1 && tr.nheap) {
        int64_t c;
        int p = dtr_pop(&tr, &c);
        if (c != tr.pairs[p].count) { /* stale: requeue with the current count */
            if (tr.pairs[p].count > 0) oom = dtr_push(&tr, p) != 0;
            continue;
        }
        if (c < 2) break; /* merging a pair seen once learns nothing */
        int a = tr.pairs[p].a, b = tr.pairs[p].b;
        unsigned char *merged = malloc(t->tok_len[a] + t->tok_len[b]);
        if (!merged) { oom = 1; break; }
        memcpy(merged, t->tok[a], t->tok_len[a]);
        memcpy(merged + t->tok_len[a], t->tok[b], t->tok_len[b]);
        int ml = t->tok_len[a] + t->tok_len[b];
        int *have = dsm_slot(&t->vocab, merged, ml, 0), id;
        if (have) id = *have;
        else {
            id = next_id++;
            int *slot = data_tok_set(t, id, merged, ml) ? NULL : dsm_slot(&t->vocab, merged, ml, 1);
            if (!slot) { free(merged); oom = 1; break; }
            *slot = id;
        }
        free(merged);
        if (data_tok_add_merge(t, a, b, id)) { oom = 1; break; }
        /* rewrite every word holding the pair: remove its old pairs, add its new ones */
        stamp++;
        nnew = 0;
        int nwhere = tr.pairs[p].nwhere;
        for (int k = 0; k < nwhere && !oom; k++) {
            int wi = tr.pairs[p].where[k];
            if (seen[wi] == stamp) continue;
            seen[wi] = stamp;
            DataTrainWord *wd = &w[wi];
            if (wd->n > capbuf) {
                capbuf = 2 * wd->n;
                int *nb = realloc(buf, sizeof *nb * capbuf);
                if (!nb) { oom = 1; break; }
                buf = nb;
            }
            int m = 0, hit = 0;
            for (int s = 0; s < wd->n; s++) {
                if (s + 1 < wd->n && wd->sym[s] == a && wd->sym[s + 1] == b) { buf[m++] = id; s++; hit = 1; }
                else buf[m++] = wd->sym[s];
            }
            if (!hit) continue;
            for (int s = 0; s + 1 < wd->n && !oom; s++) oom = dtr_add(&tr, wd->sym[s], wd->sym[s + 1], -wd->count, -1) < 0;
            for (int s = 0; s + 1 < m && !oom; s++) {
                int q = dtr_add(&tr, buf[s], buf[s + 1], wd->count, wi);
                if (q < 0) { oom = 1; break; }
                if (buf[s] == id || buf[s + 1] == id) {
                    if (nnew == capnew) {
                        capnew = capnew ? 2 * capnew : 256;
                        int *nn = realloc(newp, sizeof *nn * capnew);
                        if (!nn) { oom = 1; break; }
                        newp = nn;
                    }
                    newp[nnew++] = q;
                }
            }
            memcpy(wd->sym, buf, sizeof *buf * m);
            wd->n = m;
        }
        /* a pair made of the new token enters the queue once, with its total count */
        qsort(newp, nnew, sizeof *newp, data_cmp_int);
        for (int k = 0; k < nnew && !oom; k++)
            if (tr.pairs[newp[k]].count > 0 && (k == 0 || newp[k] != newp[k - 1])) oom = dtr_push(&tr, newp[k]) != 0;
    }
    for (int i = 0; i < nw; i++) free(w[i].sym);
    for (int p = 0; p < tr.npairs; p++) free(tr.pairs[p].where);
    free(w); free(tr.pairs); free(tr.heap); free(tr.heapcount); free(seen); free(newp); free(buf);
    dpm_free(&tr.index);
    /* the end-of-text token, as in GPT-2 */
    t->added = calloc(1, sizeof *t->added);
    if (!oom && t->added) {
        t->added[0].s = (unsigned char *)strdup("<|endoftext|>");
        t->added[0].len = 13;
        t->added[0].id = next_id;
        t->added[0].special = 1;
        t->n_added = 1;
        oom = !t->added[0].s || data_tok_set(t, next_id, t->added[0].s, 13);
    }
    if (oom || data_tok_finish(t, 0, "(trained)", err, errlen)) {
        if (oom) snprintf(err, errlen, "tokenizer training: out of memory");
        data_tok_free(t);
        return NULL;
    }
    return t;
}

/* ======================= synthetic tasks ======================= */

DATADEF int data_task_init(DataTask *t, const char *name, int vocab, int B, int T, int size, uint64_t seed, char *err,
                           size_t errlen) {
    memset(t, 0, sizeof *t);
    if (!strcmp(name, "mqar")) t->kind = DATA_TASK_MQAR;
    else if (!strcmp(name, "copy")) t->kind = DATA_TASK_COPY;
    else if (!strcmp(name, "induction")) t->kind = DATA_TASK_INDUCTION;
    else { snprintf(err, errlen, "unknown task '%s' (expected mqar, copy or induction)", name); return -1; }
    t->vocab = vocab; t->B = B; t->T = T; t->rng = seed;
    if (B < 1 || T < 4 || vocab < 8) {
        snprintf(err, errlen, "task %s: needs batch >= 1, seq >= 4 and vocab >= 8 (got %d, %d, %d)", name, B, T, vocab);
        return -1;
    }
    if (t->kind == DATA_TASK_MQAR) {
        t->n_pairs = size ? size : T / 4;
        /* keys and values come from separate halves of the vocabulary; keys are distinct */
        if (t->n_pairs < 1 || 4 * t->n_pairs > T + 1 || t->n_pairs > (vocab - 1) / 2) {
            snprintf(err, errlen, "task mqar: %d pairs need 1 <= pairs <= (seq+1)/4 = %d and <= (vocab-1)/2 = %d",
                     t->n_pairs, (T + 1) / 4, (vocab - 1) / 2);
            return -1;
        }
    } else if (t->kind == DATA_TASK_COPY) {
        t->copy_len = size ? size : (T - 1) / 2;
        if (t->copy_len < 1 || 2 * t->copy_len + 1 > T + 1) {
            snprintf(err, errlen, "task copy: length %d needs 1 <= length <= seq/2 = %d", t->copy_len, T / 2);
            return -1;
        }
    }
    return 0;
}

/* one sequence of T+1 tokens and its T targets (-1 = not scored) */
static void data_task_row(DataTask *t, int *s, int *tgt) {
    int T = t->T, V = t->vocab;
    for (int i = 0; i <= T; i++) s[i] = 0;
    for (int i = 0; i < T; i++) tgt[i] = -1;
    if (t->kind == DATA_TASK_MQAR) {
        /* k1 v1 ... kN vN, then queries "k v" for keys drawn from the context; token 0 pads.
           Keys are 1..K, values K+1..V-1 with K = (V-1)/2 */
        int K = (V - 1) / 2, N = t->n_pairs, keys[4096], vals[4096];
        int nk = N < 4096 ? N : 4096;
        for (int i = 0; i < nk; i++) { /* distinct keys: a partial Fisher-Yates over 1..K by rejection */
            int k, dup;
            do {
                k = 1 + (int)(data_rand(&t->rng) % (uint64_t)K);
                dup = 0;
                for (int q = 0; q < i && !dup; q++) dup = keys[q] == k;
            } while (dup);
            keys[i] = k;
            vals[i] = K + 1 + (int)(data_rand(&t->rng) % (uint64_t)(V - 1 - K));
            s[2 * i] = keys[i];
            s[2 * i + 1] = vals[i];
        }
        for (int p = 2 * nk; p + 1 <= T; p += 2) {
            int q = (int)(data_rand(&t->rng) % (uint64_t)nk);
            s[p] = keys[q];
            s[p + 1] = vals[q];
            tgt[p] = vals[q];
        }
    } else if (t->kind == DATA_TASK_COPY) {
        /* x1..xL SEP x1..xL pad...: SEP = 1, content 2..V-1; the copy is scored */
        int L = t->copy_len;
        for (int i = 0; i < L; i++) s[i] = 2 + (int)(data_rand(&t->rng) % (uint64_t)(V - 2));
        s[L] = 1;
        for (int i = 0; i < L; i++) { s[L + 1 + i] = s[i]; tgt[L + i] = s[i]; }
    } else {
        /* random tokens 2..V-1; the trigger 1 appears twice: after its first occurrence comes b,
           and the sequence ends with the trigger, whose target is b */
        for (int i = 0; i <= T; i++) s[i] = 2 + (int)(data_rand(&t->rng) % (uint64_t)(V - 2));
        int p = (int)(data_rand(&t->rng) % (uint64_t)(T - 2));
        s[p] = 1;
        s[T - 1] = 1;
        s[T] = s[p + 1];
        tgt[T - 1] = s[p + 1];
    }
}

DATADEF void data_task_batch(void *task, int *tokens, int *targets) {
    DataTask *t = task;
    int *s = malloc(sizeof(int) * (t->T + 1));
    if (!s) return;
    for (int b = 0; b < t->B; b++) {
        data_task_row(t, s, targets + (size_t)b * t->T);
        memcpy(tokens + (size_t)b * t->T, s, sizeof(int) * t->T);
    }
    free(s);
}

DATADEF double data_task_accuracy(const int *pred, const int *targets, size_t n) {
    size_t hit = 0, scored = 0;
    for (size_t i = 0; i < n; i++)
        if (targets[i] >= 0) { scored++; hit += pred[i] == targets[i]; }
    return scored ? (double)hit / scored : 0.0;
}

DATADEF double data_task_accuracy_logits(const float *logits, const int *targets, size_t n, int V) {
    size_t hit = 0, scored = 0;
    for (size_t i = 0; i < n; i++) {
        if (targets[i] < 0) continue;
        const float *l = logits + i * (size_t)V;
        int best = 0;
        for (int v = 1; v < V; v++) if (l[v] > l[best]) best = v;
        scored++;
        hit += best == targets[i];
    }
    return scored ? (double)hit / scored : 0.0;
}

#endif /* DATA_IMPLEMENTATION_DONE */
#endif /* DATA_IMPLEMENTATION */
