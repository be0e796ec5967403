/* tests/fuzz_data.c - libFuzzer target for data.h's parsers.
     clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz_data.c -o tests/fuzz_data
     FUZZ_TARGET=json ./tests/fuzz_data CORPUS_DIR     tokenizer.json loading, then encode/decode
     FUZZ_TARGET=shard ./tests/fuzz_data CORPUS_DIR    shard header and token parsing
   (`make fuzz` runs both for FUZZ_SECONDS each.) A tokenizer that loads must round-trip the
   input bytes through encode and decode; anything else must be refused with a message. */
#define DATA_IMPLEMENTATION
#include "data.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_json(const uint8_t *d, size_t n) {
    char err[512];
    DataTokenizer *t = data_tok_load_mem((const char *)d, n, "fuzz.json", err, sizeof err);
    if (!t) {
        if (!err[0]) abort(); /* a refusal always says why */
        return;
    }
    /* the input itself as text: encode, decode, compare */
    int *ids = malloc(sizeof(int) * data_tok_max_ids(t, n));
    size_t k = data_tok_encode(t, d, n, ids);
    unsigned char *back = malloc(n + 1);
    size_t m = data_tok_decode(t, ids, k, back, n);
    if (m != n || memcmp(back, d, n)) abort();
    free(back);
    free(ids);
    data_tok_free(t);
}

static void fuzz_shard(const uint8_t *d, size_t n) {
    char err[512];
    int width, vocab;
    size_t count;
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

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static int shard = -1;
    if (shard < 0) shard = getenv("FUZZ_TARGET") && !strcmp(getenv("FUZZ_TARGET"), "shard");
    if (shard) fuzz_shard(d, n);
    else fuzz_json(d, n);
    return 0;
}
