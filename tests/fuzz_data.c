/* tests/fuzz_data.c - libFuzzer target for data.h's parsers.
     clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz_data.c -o tests/fuzz_data
     ./tests/fuzz_data CORPUS_DIR -ignore_remaining_args=1 target=json   tokenizer.json loading, then encode/decode
     ./tests/fuzz_data CORPUS_DIR -ignore_remaining_args=1 target=shard   shard header and token parsing, then the
                                                       input as a file through data_open (vocabulary)
   (`make fuzz` runs both for FUZZ_SECONDS each.) A tokenizer that loads must round-trip the
   input bytes through encode and decode (with
   add_prefix_space: the input with spaces inserted); anything else must be refused with a message. */
#define DATA_IMPLEMENTATION
#include "data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fuzz_json(const uint8_t *d, size_t n) {
    char err[512];
    DataTokenizer *t = data_tok_load_mem((const char *)d, n, "fuzz.json", err, sizeof err);
    if (!t) {
        if (!err[0]) abort(); /* a refusal always says why */
        return;
    }
    /* the input itself as text: encode, decode, compare. A ByteLevel pre-tokenizer with
       add_prefix_space puts a space before each piece that does not start with one, and the
       ByteLevel decoder keeps it (as Hugging Face's does): then the decoded text is the input
       with spaces inserted, and nothing else */
    size_t cap = data_tok_max_ids(t, n);
    int *ids = malloc(sizeof(int) * cap);
    size_t k = data_tok_encode(t, d, n, ids);
    unsigned char *back = malloc(cap);
    size_t m = data_tok_decode(t, ids, k, back, cap);
    if (!t->add_prefix_space) {
        if (m != n || memcmp(back, d, n)) abort();
    } else {
        if (m > cap) abort();
        size_t j = 0;
        for (size_t i = 0; i < m; i++) {
            if (j < n && back[i] == d[j]) j++;
            else if (back[i] != ' ') abort();
        }
        if (j != n) abort();
    }
    free(back);
    free(ids);
    data_tok_free(t);
}

/* the input as a shard file through data_open: the header parse, the id scan and the
   vocabulary it derives (the path where a vocabulary of 0 with id 0xffffffff once wrapped to 0).
   A dataset that opens must hold every id under its vocabulary, and that vocabulary must be
   within DATA_MAX_VOCAB; a refusal must say why */
static void fuzz_shard_open(const uint8_t *d, size_t n) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/fuzz_shard_%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
    DataSet ds;
    char err[512] = "";
    if (data_open(&ds, path, 0.1f, err, sizeof err)) {
        if (!err[0]) abort();
        return;
    }
    if (ds.vocab_size < 1 || ds.vocab_size > DATA_MAX_VOCAB) abort();
    for (int i = 0; i < ds.n_files; i++)
        if (ds.files[i].max_id >= (uint32_t)ds.vocab_size) abort();
    if (data_check_vocab(&ds, ds.vocab_size, err, sizeof err)) abort();
    for (int i = 0; i < ds.n_parts; i++) /* every id of every part, as the sampler reads them */
        for (size_t j = 0; j < ds.parts[i].n; j++)
            if (data_part_tok(&ds.parts[i], j) >= (uint32_t)ds.vocab_size) abort();
    data_close(&ds);
}

static void fuzz_shard(const uint8_t *d, size_t n) {
    char err[512];
    int width, vocab;
    size_t count;
    fuzz_shard_open(d, n);
    if (data_shard_parse(d, n, "fuzz.bin", &width, &count, &vocab, err, sizeof err)) {
        if (!err[0]) abort();
        return;
    }
    DataPart p = {d + DATA_SHARD_HEADER, count, width, 0, 0, 0};
    uint32_t mx = 0;
    for (size_t i = 0; i < count; i++) { uint32_t v = data_part_tok(&p, i); if (v > mx) mx = v; }
    if (vocab && width == 2 && vocab > 65536) abort();
    (void)mx;
}

/* the target comes as an argument after libFuzzer's -ignore_remaining_args=1: "target=json|shard" */
static int shard;
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++) shard |= !strcmp((*argv)[i], "target=shard");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (shard) fuzz_shard(d, n);
    else fuzz_json(d, n);
    return 0;
}
