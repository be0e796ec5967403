/* tests/test_data.c - the data layer (data.h): tokenizers, shards, datasets, mixes, samplers,
   synthetic tasks.

     cc -O2 -I. tests/test_data.c -o tests/test_data -lm
    tests/test_data [ABLATE]        (make test runs it; ABLATE, default ./ablate-cpu, runs the
                                     tokenize command, which lives in the driver)
     tests/test_data --dump DIR      writes the test tokenizer and text to DIR (see HF_IDS)

   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define DATA_IMPLEMENTATION
#include "../data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int n_pass, n_fail;
static char tmpdir[] = "/tmp/ablate_test_data_XXXXXX";
static const char *ablate_bin = "./ablate-cpu"; /* the tokenize command is the driver's, not data.h's */

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

static char *tpath(const char *name) {
    static char buf[8][600];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 600, "%s/%s", tmpdir, name);
    return p;
}

static double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(d, 1, n, f); fclose(f); }
}

/* ---- a corpus the test makes itself: English-like words from syllables, numbers, punctuation,
   contractions, accented and non-Latin letters, emoji and odd white space (seeded) ---- */
static size_t make_corpus(unsigned char *out, size_t cap, uint64_t seed) {
    static const char *syl[] = {"the", "an", "ing", "re", "con", "tion", "al", "er", "st", "pro", "ma", "ke",
                                "li", "ver", "ou", "gh", "ed", "es", "a", "i", "o"};
    static const char *other[] = {", ", ". ", "! ", "? ", "'s ", "'ll ", "n't ", "; ", ": ", " - ", "\n", "\n\n",
                                  "  ", "\t", " 1999 ", " 42", " 3.14 ", " café ", " naïve ", " Ελλάδα ", " Москва ",
                                  " 東京 ", " 😀 ", "\u00a0", " (x) ", " \"q\" ", "...", " ١٢٣ ", "'S ", " $5 "};
    size_t n = 0;
    uint64_t r = seed;
    while (n + 64 < cap) {
        uint64_t x = data_rand(&r);
        if (x % 5 == 0) {
            const char *o = other[(x >> 8) % (sizeof other / sizeof *other)];
            memcpy(out + n, o, strlen(o));
            n += strlen(o);
        } else {
            int k = 1 + (int)((x >> 16) % 3);
            if (n && out[n - 1] != ' ' && out[n - 1] != '\n') out[n++] = ' ';
            for (int i = 0; i < k; i++) {
                const char *s = syl[(data_rand(&r) >> 5) % (sizeof syl / sizeof *syl)];
                memcpy(out + n, s, strlen(s));
                n += strlen(s);
            }
            if ((x >> 30) % 7 == 0) out[n - 1] = (unsigned char)(out[n - 1] - 32); /* some capitals */
        }
    }
    return n;
}

/* the fixed text whose ids Hugging Face computed (HF_IDS) */
static const char *hf_text =
    "The contraction's result: we'll re-stake 1999 tokens (and 3.14 more)...\n\n"
    "  Café naïve Ελλάδα Москва 東京 😀 it'S   \t done!\n"
    "<|endoftext|>con tion-al  proing\u00a0\u3000x 12345 ١٢٣";

/* produced with: tests/test_data --dump /tmp/d && python3 tools/hf_encode.py /tmp/d/tok.json
   /tmp/d/text.txt (Hugging Face tokenizers 0.23.3 loading the tokenizer.json that
   data_tok_train + data_tok_save write for make_corpus(600000 bytes, seed 7), vocab 600) */
static const int HF_IDS[] = {
84, 104, 101, 286, 116, 114, 97, 99, 268, 369, 395, 260, 117, 108, 116, 58, 32, 119, 101, 371,
    298, 45, 277, 97, 274, 361, 32, 116, 111, 274, 110, 115, 331, 294, 100, 325, 46, 327, 32, 109,
    111, 276, 41, 347, 10, 10, 32, 32, 67, 333, 336, 323, 358, 318, 346, 338, 280, 116, 39, 83,
    399, 32, 9, 32, 100, 257, 101, 33, 10, 599, 272, 283, 45, 292, 32, 288, 270, 343, 227, 128,
    128, 120, 359, 50, 51, 52, 53, 367,
};

static DataTokenizer *trained;

static void test_bpe_train_and_hf(void) {
    size_t cap = 600000;
    unsigned char *text = malloc(cap);
    size_t n = make_corpus(text, cap, 7);
    char err[600];
    trained = data_tok_train(text, n, 600, err, sizeof err);
    report(trained && data_tok_vocab(trained) == 600, "bpe: train to vocabulary 600", trained ? "" : err);
    if (!trained) { free(text); return; }
    int ok = !data_tok_save(trained, tpath("tok.json"), err, sizeof err);
    DataTokenizer *back = ok ? data_tok_load(tpath("tok.json"), err, sizeof err) : NULL;
    report(back != NULL, "bpe: saved tokenizer.json loads", back ? "" : err);
    size_t tn = strlen(hf_text);
    int *a = malloc(sizeof(int) * (tn + 1)), *b = malloc(sizeof(int) * (tn + 1));
    size_t ka = data_tok_encode(trained, (const unsigned char *)hf_text, tn, a);
    if (back) {
        size_t kb = data_tok_encode(back, (const unsigned char *)hf_text, tn, b);
        report(ka == kb && !memcmp(a, b, ka * sizeof *a), "bpe: trained and reloaded encode alike", "");
        /* the whole corpus too, and the special token */
        int *c = malloc(sizeof(int) * (n + 1)), *d = malloc(sizeof(int) * (n + 1));
        size_t kc = data_tok_encode(trained, text, n, c), kd = data_tok_encode(back, text, n, d);
        char det[128];
        snprintf(det, sizeof det, "%zu bytes -> %zu tokens (%.2f bytes/token)", n, kc, (double)n / kc);
        report(kc == kd && !memcmp(c, d, kc * sizeof *c) && kc < n / 2, "bpe: corpus compresses, reload agrees", det);
        free(c);
        free(d);
        data_tok_free(back);
    }
    size_t nh = sizeof HF_IDS / sizeof *HF_IDS;
    size_t first = 0;
    while (first < ka && first < nh && a[first] == HF_IDS[first]) first++;
    char det[160];
    snprintf(det, sizeof det, "%zu ids, HF %zu; first difference at %zu", ka, nh, first);
    report(ka == nh && first == nh, "bpe: encode equals Hugging Face tokenizers", det);
    int eot = data_tok_id(trained, "<|endoftext|>"), has = 0;
    for (size_t i = 0; i < ka; i++) has |= a[i] == eot;
    report(eot == 599 && has, "bpe: <|endoftext|> is one special token", "");
    free(a);
    free(b);
    free(text);
}

static int roundtrip(DataTokenizer *t, const unsigned char *s, size_t n) {
    int *ids = malloc(sizeof(int) * data_tok_max_ids(t, n));
    unsigned char *back = malloc(n + 1);
    size_t k = data_tok_encode(t, s, n, ids);
    size_t m = data_tok_decode(t, ids, k, back, n);
    int ok = m == n && !memcmp(back, s, n);
    free(ids);
    free(back);
    return ok;
}

static void test_roundtrips(void) {
    if (!trained) return;
    uint64_t r = 11;
    int ok_bytes = 1, ok_utf8 = 1;
    unsigned char buf[4096];
    for (int trial = 0; trial < 300; trial++) {
        size_t n = 1 + data_rand(&r) % 1000;
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)data_rand(&r);
        ok_bytes &= roundtrip(trained, buf, n);
        size_t k = 0; /* random code points from every plane and class, as UTF-8 */
        while (k + 4 < sizeof buf && k < 2000) {
            uint64_t x = data_rand(&r);
            unsigned cp = x % 4 == 0 ? (unsigned)(x >> 8) % 128 : x % 4 == 1 ? 0x80 + (unsigned)(x >> 8) % 0x780
                        : x % 4 == 2 ? 0x800 + (unsigned)(x >> 8) % 0xF800 : 0x10000 + (unsigned)(x >> 8) % 0x100000;
            if (cp >= 0xD800 && cp < 0xE000) continue;
            k += data_utf8_put(buf + k, cp);
        }
        ok_utf8 &= roundtrip(trained, buf, k);
    }
    report(ok_bytes, "tokenizer: 300 random byte strings round-trip", "");
    report(ok_utf8, "tokenizer: 300 random UTF-8 strings round-trip", "");
    unsigned char b256[256];
    for (int i = 0; i < 256; i++) b256[i] = (unsigned char)i;
    int ids[256];
    unsigned char back[256];
    data_byte_encode(b256, 256, ids);
    data_byte_decode(ids, 256, back);
    report(!memcmp(back, b256, 256) && ids[200] == 200, "tokenizer: byte-level round trip", "");
}

static void test_bad_tokenizers(void) {
    struct { const char *json, *want; } cases[] = {
        {"", "is empty"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}", "unexpected end of input"},
        {"[1, 2]", "not a JSON object"},
        {"{\"version\": \"1.0\"}", "no \"model\" object"},
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model type Unigram is not supported"},
        {"{\"normalizer\": {\"type\": \"NFC\"}, \"model\": {\"vocab\": {}, \"merges\": []}}", "normalizer NFC"},
        {"{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "the merged token is not in the vocabulary"},
        {"{\"model\": {\"vocab\": {\"a\": -3}, \"merges\": []}}", "id must be an integer"},
        {"{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", "no token for byte 0x00"},
        {"{\"model\": {\"vocab\": {\"a\\u12\": 0}, \"merges\": []}}", "bad \\u escape"},
        {"{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"vocab\": {}, \"merges\": []}}", "pre_tokenizer Whitespace"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[64], err[600] = "";
        snprintf(name, sizeof name, "bad%zu.json", i);
        write_file(tpath(name), cases[i].json, strlen(cases[i].json));
        DataTokenizer *t = data_tok_load(tpath(name), err, sizeof err);
        char title[100];
        snprintf(title, sizeof title, "tokenizer.json refused: %.40s", cases[i].want);
        report(!t && strstr(err, cases[i].want) && strstr(err, name), title, err);
        data_tok_free(t);
    }
}

/* ---- shards ---- */
static void put32(unsigned char *p, uint32_t v) { for (int b = 0; b < 4; b++) p[b] = (unsigned char)(v >> 8 * b); }

static void test_shards(void) {
    char err[600];
    int ids[5000];
    for (int i = 0; i < 5000; i++) ids[i] = (i * 7919) % 50257;
    int ok = !data_shard_write(tpath("a.bin"), ids, 5000, 50257, err, sizeof err);
    DataSet ds;
    ok = ok && !data_open(&ds, tpath("a.bin"), 0.1f, err, sizeof err);
    int same = ok && ds.n_tokens == 5000 && ds.n_train == 4500 && ds.vocab_size == 50257 && ds.parts[0].width == 2;
    for (int i = 0; same && i < 5000; i++) {
        const DataPart *p = &ds.parts[i < 4500 ? 0 : 1];
        same = (int)data_part_tok(p, i < 4500 ? i : i - 4500) == ids[i];
    }
    report(same, "shard: uint16 write/read round trip (vocab 50257)", ok ? "" : err);
    if (ok) {
        int bad = data_check_vocab(&ds, 32000, err, sizeof err);
        report(bad && strstr(err, "a.bin") && strstr(err, "over the model's vocabulary 32000"),
               "shard: token ids over the model's vocab refused", err);
        data_close(&ds);
    }
    for (int i = 0; i < 5000; i++) ids[i] = 60000 + i * 13;
    ok = !data_shard_write(tpath("b.bin"), ids, 5000, 200000, err, sizeof err) &&
         !data_open(&ds, tpath("b.bin"), 0.5f, err, sizeof err);
    same = ok && ds.parts[0].width == 4 && ds.vocab_size == 200000 && (int)data_part_tok(&ds.parts[1], 10) == ids[2510];
    report(same, "shard: uint32 variant for vocab 200000", ok ? "" : err);
    if (ok) data_close(&ds);

    /* refusals, each naming the file */
    unsigned char h[DATA_SHARD_HEADER + 20] = {0};
    struct { const char *name; size_t len; uint32_t magic, version, count, vocab; const char *want; } c[] = {
        {"empty.bin", 0, 0, 0, 0, 0, "is empty"},
        {"short.bin", 100, DATA_SHARD_MAGIC, 1, 10, 0, "truncated header"},
        {"magic.bin", sizeof h, 12345, 1, 10, 0, "wrong magic 12345"},
        {"version.bin", sizeof h, DATA_SHARD_MAGIC, 3, 10, 0, "unsupported version 3"},
        {"trunc.bin", sizeof h, DATA_SHARD_MAGIC, 1, 1000, 0, "header says 1000 tokens but the file holds 10"},
        {"extra.bin", sizeof h, DATA_SHARD_MAGIC, 1, 4, 0, "bytes after its 4 tokens"},
        {"none.bin", DATA_SHARD_HEADER, DATA_SHARD_MAGIC, 1, 0, 0, "holds no tokens"},
        {"overvocab.bin", sizeof h, DATA_SHARD_MAGIC, 1, 10, 100, "token id 300 at position 1 is over the vocabulary 100"},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        memset(h, 0, sizeof h);
        put32(h, c[i].magic); put32(h + 4, c[i].version); put32(h + 8, c[i].count); put32(h + 12, c[i].vocab);
        h[DATA_SHARD_HEADER + 2] = 300 & 255; h[DATA_SHARD_HEADER + 3] = 300 >> 8; /* token 1 = 300 */
        write_file(tpath(c[i].name), h, c[i].len);
        char e[600] = "";
        int rc = data_open(&ds, tpath(c[i].name), 0.1f, e, sizeof e);
        if (!rc) data_close(&ds);
        char title[100];
        snprintf(title, sizeof title, "shard refused: %s", c[i].name);
        report(rc && strstr(e, c[i].name) && strstr(e, c[i].want), title, e);
    }
}

/* ---- datasets, mixes and samplers ---- */
static void test_directory_and_cli(void) {
    char text[20000];
    for (int i = 0; i < 20000; i++) text[i] = (char)('a' + i % 26);
    write_file(tpath("t.txt"), text, sizeof text);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer byte --out %s --shard-tokens 8000 %s > /dev/null", ablate_bin,
             tpath("shards"), tpath("t.txt"));
    int rc = system(cmd);
    DataSet ds;
    char err[600];
    int ok = !rc && !data_open(&ds, tpath("shards"), 0.1f, err, sizeof err);
    char det[200];
    snprintf(det, sizeof det, "rc %d, %zu tokens, %zu train, %d files", rc, ok ? ds.n_tokens : 0, ok ? ds.n_train : 0,
             ok ? ds.n_files : 0);
    report(ok && ds.n_tokens == 20000 && ds.n_train == 18000 && ds.n_files == 4 && ds.vocab_size == 256,
           "tokenize CLI: byte shards, directory opens as train+val", det);
    if (ok) data_close(&ds);
    if (trained) { /* the same with the trained BPE: ids decode to the text */
        snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --out %s %s > /dev/null", ablate_bin, tpath("tok.json"),
                 tpath("bpe"), tpath("t.txt"));
        rc = system(cmd);
        ok = !rc && !data_open(&ds, tpath("bpe"), 0.1f, err, sizeof err);
        int good = ok && ds.vocab_size == 600;
        report(good, "tokenize CLI: BPE shards with the tokenizer's vocabulary", ok ? "" : err);
        if (ok) data_close(&ds);
    }
}

static void test_mix_and_sampler(void) {
    char err[600];
    int a[30000], b[30000];
    for (int i = 0; i < 30000; i++) { a[i] = i % 100; b[i] = 100 + i % 100; }
    data_shard_write(tpath("ma.bin"), a, 30000, 256, err, sizeof err);
    data_shard_write(tpath("mb.bin"), b, 30000, 256, err, sizeof err);
    char spec[1400];
    snprintf(spec, sizeof spec, "%s:0.7,%s:0.3", tpath("ma.bin"), tpath("mb.bin"));
    DataSet ds;
    if (data_open(&ds, spec, 0.1f, err, sizeof err)) { report(0, "mix: open", err); return; }
    int B = 50, T = 16, rows_a = 0, rows = 0;
    int *tok = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    int *tok2 = malloc(sizeof(int) * B * T), *tgt2 = malloc(sizeof(int) * B * T);
    DataSampler s = {&ds, DATA_TRAIN, B, T, 123, 0}, s2 = {&ds, DATA_TRAIN, B, T, 123, 0};
    int same = 1;
    for (int it = 0; it < 200; it++) {
        data_next_batch(&s, tok, tgt);
        data_next_batch(&s2, tok2, tgt2);
        same &= !memcmp(tok, tok2, sizeof(int) * B * T);
        for (int r = 0; r < B; r++) { rows++; rows_a += tok[r * T] < 100; }
    }
    char det[100];
    snprintf(det, sizeof det, "source a: %.4f of %d rows (want 0.7 +- 0.015)", (double)rows_a / rows, rows);
    report(fabs((double)rows_a / rows - 0.7) < 0.015, "mix: proportions within tolerance", det);
    report(same, "mix: the same seed gives the same batches", "");
    data_close(&ds);

    /* train/val never overlap: token = position (uint32 shard), windows stay in their split */
    int N = 40000;
    int *pos = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) pos[i] = i;
    data_shard_write(tpath("pos.bin"), pos, N, 70000, err, sizeof err);
    free(pos);
    data_open(&ds, tpath("pos.bin"), 0.25f, err, sizeof err);
    int ntrain = (int)ds.n_train, clean = 1;
    DataSampler tr = {&ds, DATA_TRAIN, B, T, 5, 0}, va = {&ds, DATA_VAL, B, T, 0, 0};
    for (int it = 0; it < 100; it++) {
        data_next_batch(&tr, tok, tgt);
        for (int r = 0; r < B; r++) clean &= tok[r * T] >= 0 && tgt[r * T + T - 1] < ntrain && tgt[r * T] == tok[r * T] + 1;
        data_next_batch(&va, tok, tgt);
        for (int r = 0; r < B; r++) clean &= tok[r * T] >= ntrain && tgt[r * T + T - 1] < N;
    }
    report(clean && ntrain == 30000, "sampler: train and validation windows never overlap", "");

    /* epoch order: every window once per epoch, a new order each epoch, resumable */
    size_t W = data_windows_per_epoch(&ds, T);
    char *seen = calloc(W, 1);
    int *order1 = malloc(sizeof(int) * W);
    DataSampler ep = {&ds, DATA_TRAIN_EPOCH, 1, T, 77, 0};
    int once = 1, differs = 0;
    for (size_t i = 0; i < W; i++) {
        data_next_batch(&ep, tok, tgt);
        int w = tok[0] / T;
        once &= tok[0] % T == 0 && w < (int)W && !seen[w];
        seen[w] = 1;
        order1[i] = w;
    }
    size_t e1 = data_epoch(&ep);
    for (size_t i = 0; i < W; i++) { data_next_batch(&ep, tok, tgt); differs += tok[0] / T != order1[i]; }
    snprintf(det, sizeof det, "%zu windows; epoch 2 differs at %d positions", W, differs);
    report(once && e1 == 1 && data_epoch(&ep) == 2 && differs > (int)W / 2, "sampler: epoch order visits each window once", det);
    /* resume: the state after 37 batches restores into a fresh sampler */
    DataSampler x = {&ds, DATA_TRAIN_EPOCH, 4, T, 9, 0}, y = {&ds, DATA_TRAIN, 4, T, 9, 0};
    int resumed = 1;
    for (int kind = 0; kind < 2; kind++) {
        DataSampler *p = kind ? &y : &x;
        for (int i = 0; i < 37; i++) data_next_batch(p, tok, tgt);
        uint64_t st[2];
        data_sampler_state(p, st);
        DataSampler q = {&ds, p->split, 4, T, 0, 0};
        data_sampler_restore(&q, st);
        for (int i = 0; i < 5; i++) {
            data_next_batch(p, tok, tgt);
            data_next_batch(&q, tok2, tgt2);
            resumed &= !memcmp(tok, tok2, sizeof(int) * 4 * T);
        }
    }
    report(resumed, "sampler: resumes at the exact position (random and epoch)", "");
    free(seen); free(order1);
    data_close(&ds);
    free(tok); free(tgt); free(tok2); free(tgt2);
}

/* ---- evaluation windows (DataEval) and bits per byte (DataBytes) ---- */
static int file_equal(const char *a, const char *b) {
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    int same = f && g, x, y;
    while (same && ((x = fgetc(f)) != EOF) | ((y = fgetc(g)) != EOF)) same = x == y;
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}

static void test_eval_windows(void) {
    char err[600], det[200];
    /* token = position: every validation target scored exactly once by the whole-split rows */
    int N = 40000, T = 16;
    int *pos = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) pos[i] = i;
    data_shard_write(tpath("epos.bin"), pos, N, 70000, err, sizeof err);
    DataSet ds;
    if (data_open(&ds, tpath("epos.bin"), 0.25f, err, sizeof err)) { report(0, "eval: open", err); free(pos); return; }
    DataEval e;
    int rc = data_eval_init(&e, &ds, DATA_VAL, T, 4, 0, err, sizeof err);
    int *seen = calloc(N, sizeof(int)), tok[64], tgt[64], consistent = 1;
    for (size_t r = 0; !rc && r < e.n_rows; r++) {
        data_eval_row(&e, r, tok, tgt);
        for (int t = 0; t < T; t++)
            if (tgt[t] >= 0) { seen[tgt[t]]++; consistent &= tgt[t] == tok[t] + 1; }
    }
    int once = 1;
    for (int i = 0; i < N; i++) once &= seen[i] == (i > 30000); /* 30000 opens the split: context only */
    snprintf(det, sizeof det, "%zu rows (624 + a tail of 15), %zu tokens, whole %d", e.n_rows, e.tokens, e.whole);
    report(!rc && once && consistent && e.whole && e.tokens == 9999 && e.n_rows == 625,
           "eval: the whole-split tiling scores every target once", det);
    /* the DATA_VAL sampler walks the same rows */
    DataSampler vs = {&ds, DATA_VAL, 1, T, 0, 0};
    int same = 1;
    for (size_t r = 0; r < e.n_rows; r++) {
        int t2[64], g2[64];
        data_next_batch(&vs, tok, tgt);
        data_eval_row(&e, r, t2, g2);
        same &= !memcmp(tok, t2, sizeof(int) * T) && !memcmp(tgt, g2, sizeof(int) * T);
    }
    report(same, "eval: a DATA_VAL sampler pass is the whole-split evaluation", "");

    /* a budget: windows spread evenly over the split, the same each time, padding after the last */
    DataEval b1, b2;
    data_eval_init(&b1, &ds, DATA_VAL, T, 4, 10, err, sizeof err);
    data_eval_init(&b2, &ds, DATA_VAL, T, 4, 10, err, sizeof err);
    int starts[10], spread = b1.n_rows == 10 && !b1.whole, equal = 1;
    for (int r = 0; r < 10 && spread; r++) {
        int t2[64], g2[64];
        data_eval_row(&b1, r, tok, tgt);
        data_eval_row(&b2, r, t2, g2);
        equal &= !memcmp(tok, t2, sizeof tok[0] * T) && !memcmp(tgt, g2, sizeof tgt[0] * T);
        starts[r] = tok[0] - 30000;
    }
    double gap = 10000.0 / 10; /* the split's length over the rows */
    for (int r = 0; r < 10 && spread; r++) spread &= fabs(starts[r] - (r + 0.5) * gap) <= T;
    snprintf(det, sizeof det, "starts %d %d ... %d, %zu tokens", starts[0], starts[1], starts[9], b1.tokens);
    report(spread && equal && b1.tokens == 160, "eval: a budget of 10 windows spreads them over the split", det);
    int *btok = malloc(sizeof(int) * 4 * T), *btgt = malloc(sizeof(int) * 4 * T);
    double rb[4];
    size_t nb = data_eval_batches(&b1);
    for (size_t i = 0; i < nb; i++) data_eval_batch(&b1, btok, btgt, rb);
    int pad = 1;
    for (int t = 2 * T; t < 4 * T; t++) pad &= btgt[t] == -1;
    for (int t = 0; t < 2 * T; t++) pad &= btgt[t] >= 0;
    report(nb == 3 && pad && rb[2] == 0 && rb[3] == 0 && isnan(rb[0]),
           "eval: the last partial batch is padded with rows of -1 targets", "");
    data_close(&ds);

    /* a mix: each source's share of the windows by weight; the whole split: all of both */
    int a[5000], bb[3000];
    for (int i = 0; i < 5000; i++) a[i] = i % 100;
    for (int i = 0; i < 3000; i++) bb[i] = 100 + i % 100;
    data_shard_write(tpath("ea.bin"), a, 5000, 256, err, sizeof err);
    data_shard_write(tpath("eb.bin"), bb, 3000, 256, err, sizeof err);
    char spec[1400];
    snprintf(spec, sizeof spec, "%s:0.7,%s:0.3", tpath("ea.bin"), tpath("eb.bin"));
    if (!data_open(&ds, spec, 0.2f, err, sizeof err)) {
        data_eval_init(&e, &ds, DATA_VAL, T, 4, 20, err, sizeof err);
        int from_a = 0;
        for (size_t r = 0; r < e.n_rows; r++) from_a += data_eval_row(&e, r, tok, tgt) == 0 && tok[0] < 100;
        DataEval w;
        data_eval_init(&w, &ds, DATA_VAL, T, 4, 0, err, sizeof err);
        snprintf(det, sizeof det, "%zu rows, %d from a; whole: %zu tokens (want 999 + 599)", e.n_rows, from_a, w.tokens);
        report(e.rows[0] == 14 && e.rows[1] == 6 && from_a == 14 && w.whole && w.tokens == 999 + 599,
               "eval: a mix gives each source its weight's share", det);
        data_close(&ds);
    } else report(0, "eval: mix", err);

    /* a part shorter than a window: one row padded after it */
    mkdir(tpath("short"), 0755);
    data_shard_write(tpath("short/train_0.bin"), a, 200, 256, err, sizeof err);
    data_shard_write(tpath("short/val_0.bin"), a + 1000, 5, 256, err, sizeof err);
    data_shard_write(tpath("short/val_1.bin"), a + 2000, 40, 256, err, sizeof err);
    if (!data_open(&ds, tpath("short"), 0.1f, err, sizeof err)) {
        data_eval_init(&e, &ds, DATA_VAL, T, 4, 0, err, sizeof err);
        data_eval_row(&e, 0, tok, tgt);
        int ok = e.n_rows == 1 + 3 && e.tokens == 4 + 39 && tgt[3] == a[1004] && tgt[4] == -1 && tok[5] == 0;
        snprintf(det, sizeof det, "%zu rows, %zu tokens", e.n_rows, e.tokens);
        report(ok, "eval: a part shorter than a window is scored, padded", det);
        DataBytes by;
        int k = data_bytes_open(&by, &ds);
        report(k == 1 && strstr(by.why, "tokenizer.json") && isnan(data_bytes_row(&by, 0, tgt, T)),
               "bytes: shards without a tokenizer.json: unknown, saying why", by.why);
        data_bytes_close(&by);
        data_close(&ds);
    } else report(0, "eval: short parts", err);

    /* bits per byte inputs: byte text (1 a token), byte shards and BPE shards from ablate tokenize */
    write_file(tpath("e.txt"), "hello world, hello bytes", 24);
    if (!data_open(&ds, tpath("e.txt"), 0.5f, err, sizeof err)) {
        DataBytes by;
        int k = data_bytes_open(&by, &ds);
        int tg[4] = {104, -1, 32, 255};
        report(k == 0 && data_bytes_row(&by, 0, tg, 4) == 3, "bytes: byte-level text counts a byte a token", "");
        data_bytes_close(&by);
        data_close(&ds);
    }
    if (!data_open(&ds, tpath("shards"), 0.1f, err, sizeof err)) { /* tokenize --tokenizer byte wrote one */
        DataBytes by;
        int k = data_bytes_open(&by, &ds), tg[3] = {97, 98, -1};
        report(k == 0 && data_bytes_row(&by, 0, tg, 3) == 2, "bytes: byte shards carry a byte-level tokenizer.json",
               by.why);
        data_bytes_close(&by);
        data_close(&ds);
    }
    if (trained && !data_open(&ds, tpath("bpe"), 0.1f, err, sizeof err)) {
        /* the whole validation split's bytes = the decoded text of its targets, computed apart */
        DataBytes by;
        int k = data_bytes_open(&by, &ds);
        data_eval_init(&e, &ds, DATA_VAL, T, 4, 0, err, sizeof err);
        double bytes = 0;
        for (size_t r = 0; r < e.n_rows; r++) {
            int s = data_eval_row(&e, r, tok, tgt);
            bytes += data_bytes_row(&by, s, tgt, T);
        }
        size_t want = 0;
        for (int i = 0; i < ds.n_parts; i++) {
            const DataPart *p = &ds.parts[i];
            if (p->split != DATA_VAL) continue;
            int *ids = malloc(sizeof(int) * p->n);
            for (size_t j = 0; j < p->n; j++) ids[j] = (int)data_part_tok(p, j);
            unsigned char one[1];
            want += data_tok_decode(trained, ids + 1, p->n - 1, one, 0); /* the first token is context only */
            free(ids);
        }
        snprintf(det, sizeof det, "%.0f bytes, decoded apart %zu", bytes, want);
        report(k == 0 && bytes == (double)want && want > e.tokens,
               "bytes: BPE shards: the evaluated tokens' decoded length", det);
        report(file_equal(tpath("tok.json"), tpath("bpe/tokenizer.json")),
               "tokenize CLI: DIR/tokenizer.json is a copy of the tokenizer used", "");
        data_bytes_close(&by);
        data_close(&ds);
    }
    free(seen); free(pos); free(btok); free(btgt);
}

/* ---- synthetic tasks ---- */
static void test_tasks(void) {
    char err[300];
    DataTask t;
    int B = 8, T = 64, V = 64;
    int *tok = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T), *pred = malloc(sizeof(int) * B * T);
    /* MQAR: every scored query key appears earlier in the context, followed by the target */
    int ok = !data_task_init(&t, "mqar", V, B, T, 8, 1, err, sizeof err);
    int good = ok, scored = 0;
    if (ok) {
        data_task_batch(&t, tok, tgt);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < T; i++) {
                const int *s = tok + b * T, *g = tgt + b * T;
                if (g[i] < 0) continue;
                scored++;
                int found = 0;
                for (int j = 0; j < 16; j += 2) found |= s[j] == s[i] && s[j + 1] == g[i];
                good &= found && i >= 16;
            }
    }
    char det[100];
    snprintf(det, sizeof det, "%d scored positions in %d x %d", scored, B, T);
    report(good && scored == B * 24, "task mqar: queries answered by the context", ok ? det : err);
    ok = !data_task_init(&t, "copy", V, B, T, 20, 2, err, sizeof err);
    good = ok;
    if (ok) {
        data_task_batch(&t, tok, tgt);
        for (int b = 0; b < B; b++) {
            const int *s = tok + b * T, *g = tgt + b * T;
            good &= s[20] == 1;
            for (int i = 0; i < 20; i++) good &= g[20 + i] == s[i];
            for (int i = 40; i < T; i++) good &= g[i] == -1;
        }
    }
    report(good, "task copy: the second copy is scored", ok ? "" : err);
    ok = !data_task_init(&t, "induction", V, B, T, 0, 3, err, sizeof err);
    good = ok;
    if (ok) {
        data_task_batch(&t, tok, tgt);
        for (int b = 0; b < B; b++) {
            const int *s = tok + b * T, *g = tgt + b * T;
            int p = -1, n1 = 0;
            for (int i = 0; i < T; i++) if (s[i] == 1) { n1++; if (p < 0) p = i; }
            good &= n1 == 2 && s[T - 1] == 1 && g[T - 1] == s[p + 1];
            for (int i = 0; i < T - 1; i++) good &= g[i] == -1;
        }
        for (int i = 0; i < B * T; i++) pred[i] = tgt[i] >= 0 ? tgt[i] : 0;
        pred[T - 1]++; /* one wrong answer of 8 */
    }
    double acc = ok ? data_task_accuracy(pred, tgt, (size_t)B * T) : 0;
    float logits[3 * 4] = {0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9};
    int lt[3] = {1, 2, -1};
    double accl = data_task_accuracy_logits(logits, lt, 3, 4);
    snprintf(det, sizeof det, "accuracy %.3f (want 0.875), from logits %.2f (want 0.5)", acc, accl);
    report(good && fabs(acc - 0.875) < 1e-9 && fabs(accl - 0.5) < 1e-9, "task induction: trigger -> its successor; accuracy", det);
    report(data_task_init(&t, "mqar", V, B, T, 40, 1, err, sizeof err) && strstr(err, "pairs"),
           "task: an impossible size is refused", err);
    free(tok); free(tgt); free(pred);
}

/* ---- speed: encoding the default corpus on one core ---- */
static void test_speed(void) {
    if (!trained) return;
    const char *path = access("data/corpus.txt", R_OK) == 0 ? "data/corpus.txt" : "/usr/share/common-licenses/GPL-3";
    size_t n;
    char err[300];
    unsigned char *buf = data_read_file(path, &n, err, sizeof err);
    if (!buf) { report(0, "tokenizer speed", err); return; }
    int *ids = malloc(sizeof(int) * (n + 1));
    DataTokenizer *t = data_tok_load(tpath("tok.json"), err, sizeof err); /* a cold cache */
    double t0 = test_now();
    size_t k = t ? data_tok_encode(t, buf, n, ids) : 0;
    double el = test_now() - t0;
    double mbmin = n / 1e6 / el * 60;
    char det[160];
    snprintf(det, sizeof det, "%s: %.2f MB -> %zu tokens in %.3f s = %.0f MB/min", path, n / 1e6, k, el, mbmin);
    report(t && mbmin > 30, "tokenizer: encodes tens of MB per minute on one core", det);
    data_tok_free(t);
    free(ids);
    free(buf);
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    if (argc == 3 && !strcmp(argv[1], "--dump")) { /* the inputs of HF_IDS */
        size_t cap = 600000;
        unsigned char *text = malloc(cap);
        char err[300];
        DataTokenizer *t = data_tok_train(text, make_corpus(text, cap, 7), 600, err, sizeof err);
        mkdir(argv[2], 0755);
        char p[600];
        snprintf(p, sizeof p, "%s/tok.json", argv[2]);
        if (!t || data_tok_save(t, p, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
        snprintf(p, sizeof p, "%s/text.txt", argv[2]);
        write_file(p, hf_text, strlen(hf_text));
        return 0;
    }
    if (argc == 2) ablate_bin = argv[1];
    test_bpe_train_and_hf();
    test_roundtrips();
    test_bad_tokenizers();
    test_shards();
    test_directory_and_cli();
    test_mix_and_sampler();
    test_eval_windows();
    test_tasks();
    test_speed();
    data_tok_free(trained);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
