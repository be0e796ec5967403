/* tests/test_inputs.c - bounded inputs: every reproducer of a crash, hang or silently accepted
   value that input once caused, refused now with a message naming the value (make test).

   Unit checks of the run-key table's ranges (study_run_config_set), smollm.h's size limits and
   data.h's vocabulary and file checks, then the same through the CLI (./ablate-cpu, or the
   path given as the first argument), each command under `timeout` so that a regression to a
   hang fails instead of blocking the suite. Ends with "N passed, N failed". */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h" /* report(), n_pass, n_fail */

static const char *ablate_bin = "./ablate-cpu";
#define SMALL "--layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 2 --eval-batches 1 --device cpu"

/* a uint32 shard (llm.c version 7) with header vocabulary `vocab` and n tokens, every 7th one
   `odd`, the others i % 100 */
static void write_shard32(const char *path, uint32_t vocab, size_t n, uint32_t odd) {
    uint32_t hdr[256] = {20240801, 7, (uint32_t)n, vocab};
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(hdr, sizeof hdr, 1, f);
    for (size_t i = 0; i < n; i++) {
        uint32_t t = i % 7 == 0 ? odd : (uint32_t)(i % 100);
        fwrite(&t, 4, 1, f);
    }
    fclose(f);
}

/* study_run_config_set(key, value) refused with a message holding want */
static void expect_key_refused(const char *key, const char *value, const char *want) {
    StudyRunConfig c;
    study_run_config_defaults(&c);
    char err[300] = "", name[120];
    int rc = study_run_config_set(&c, key, value, err, sizeof err);
    snprintf(name, sizeof name, "key %s = %s refused", key, value);
    report(rc != 0 && strstr(err, want) != NULL, name, err);
}

static void expect_key_accepted(const char *key, const char *value) {
    StudyRunConfig c;
    study_run_config_defaults(&c);
    char err[300] = "", name[120];
    snprintf(name, sizeof name, "key %s = %s accepted", key, value);
    report(study_run_config_set(&c, key, value, err, sizeof err) == 0, name, err);
}

static void test_key_ranges(void) {
    expect_key_refused("lr", "-1", "lr expects a number > 0, got '-1' (allowed: (0, 1e+30])");
    expect_key_refused("lr", "0", "lr expects a number > 0, got '0'");
    expect_key_refused("weight_decay", "-1", "weight_decay expects a number >= 0, got '-1'");
    expect_key_refused("min_lr_ratio", "2", "min_lr_ratio expects a number <= 1, got '2' (allowed: [0, 1])");
    expect_key_refused("min_lr_ratio", "-0.5", "min_lr_ratio expects a number >= 0, got '-0.5'");
    { /* 0 is a real zero, not the default: no decay at all, a cosine down to 0 */
        StudyRunConfig c;
        study_run_config_defaults(&c);
        char err[300] = "";
        int ok = !study_run_config_set(&c, "weight_decay", "0", err, sizeof err) &&
                 !study_run_config_set(&c, "min_lr_ratio", "0", err, sizeof err) && !study_run_config_set(&c, "lr", "0.01", err, sizeof err) &&
                 !study_run_config_set(&c, "steps", "100", err, sizeof err);
        TrainConfig t = c.train;
        train_config_resolve(&t);
        report(ok && t.weight_decay < 0 && train_lr(&t, 99) < 1e-6f && train_lr(&t, 0) > 0.009f,
               "keys weight_decay = 0 and min_lr_ratio = 0 mean none and a floor of 0 (not the defaults)", err);
    }
    expect_key_refused("rope_theta", "-1", "rope_theta expects a number > 0, got '-1'");
    expect_key_refused("val_frac", "1", "val_frac expects a number < 1, got '1' (allowed: (0, 1))");
    expect_key_refused("seq", "2147483647", "seq expects an integer <= 1048576, got '2147483647' (allowed: [1, 1048576])");
    expect_key_refused("d_model", "2147483647", "d_model expects an integer <= 65536");
    expect_key_refused("layers", "200000000", "layers expects an integer <= 1024, got '200000000'");
    /* past the range of a long long: too large, not wrapped or called "not a number" */
    expect_key_refused("steps", "99999999999999999999", "steps expects an integer <= 1000000000");
    expect_key_refused("steps", "-99999999999999999999", "steps expects an integer >= 1");
    expect_key_refused("batch", "0", "batch expects an integer >= 1, got '0' (allowed: [1, 65536])");
    expect_key_refused("topk_pct", "101", "topk_pct expects an integer <= 100");
    expect_key_refused("task_vocab", "50000000", "task_vocab expects an integer <= 1048576");
    expect_key_refused("tokens", "-5", "tokens expects a number >= 0");
    expect_key_accepted("lr", "0.01");
    expect_key_accepted("min_lr_ratio", "1");
    expect_key_accepted("weight_decay", "1e-9");
    expect_key_accepted("seq", "1048576");
    expect_key_accepted("clip", "-1");
    expect_key_accepted("window", "0");
    /* every int and number key of the table has a range (an upper bound but the seed's) */
    int unbounded = 0;
    char which[200] = "";
    for (int i = 0; i < study_run_key_count(); i++) {
        const StudyRunKey *k = study_run_key_at(i);
        if ((k->type == STUDY_RUN_KEY_INT || k->type == STUDY_RUN_KEY_NUM) && k->store != STUDY_RUN_AT_U64 && !(k->max > 0)) {
            unbounded++;
            snprintf(which, sizeof which, "%s", k->name);
        }
    }
    report(!unbounded, "keys: every int and number key has a maximum", which);
}

static void test_model_limits(void) {
    char err[300] = "";
    SmolConfig c = {0};
    c.vocab_size = 50000000; c.d_model = 16; c.n_layers = 1; c.n_heads = 2;
    report(smollm_resolve(&c, err, sizeof err) && strstr(err, "vocab_size 50000000 is over the limit 1048576"),
           "smollm_resolve: vocabulary over SMOLLM_MAX_VOCAB", err);
    SmolConfig c2 = {0};
    c2.vocab_size = 256; c2.d_model = 16; c2.n_layers = 200000000; c2.n_heads = 2;
    report(smollm_resolve(&c2, err, sizeof err) && strstr(err, "layers 200000000 is over the limit 1024"),
           "smollm_resolve: layers over SMOLLM_MAX_LAYERS", err);
    SmolConfig c3 = {0};
    c3.vocab_size = 256; c3.d_model = INT_MAX; c3.n_layers = 1; c3.n_heads = 1;
    report(smollm_resolve(&c3, err, sizeof err) && strstr(err, "d_model 2147483647 must be in [1, 65536]"),
           "smollm_resolve: d_model 2^31-1 (the ffn default overflowed)", err);
    SmolConfig c4 = {0};
    c4.vocab_size = 256; c4.d_model = 16; c4.n_layers = 1; c4.n_heads = 2; c4.rope_theta = -1;
    report(smollm_resolve(&c4, err, sizeof err) && strstr(err, "rope_theta -1"), "smollm_resolve: rope_theta -1", err);
    SmolConfig c5 = {0};
    c5.vocab_size = 256; c5.d_model = 16; c5.n_layers = 1; c5.n_heads = 2;
    SmolModel m;
    report(smollm_init(&m, &c5, NULL, 65536, 65536, err, sizeof err) && strstr(err, "batch 65536 and seq 65536"),
           "smollm_init: batch x seq past the ops' int indices", err);
    int ok = !smollm_init(&m, &c5, NULL, 2, 8, err, sizeof err);
    report(ok && m.n_params > 0 && m.layers && m.specs, "smollm_init: a small model still builds", err);
    if (ok) smollm_free(&m);
}

static void test_data_limits(void) {
    char err[512] = "";
    DataSet ds;
    write_shard32("/tmp/ablate_inputs_v0.bin", 0, 5000, 0xffffffffu);
    report(data_open(&ds, "/tmp/ablate_inputs_v0.bin", 0.1f, err, sizeof err) &&
               strstr(err, "token id 4294967295 (its header declares no vocabulary) is over the limit 1048576"),
           "data_open: vocabulary 0 with id 0xffffffff (wrapped to 0 before)", err);
    write_shard32("/tmp/ablate_inputs_v50m.bin", 50000000, 5000, 1);
    report(data_open(&ds, "/tmp/ablate_inputs_v50m.bin", 0.1f, err, sizeof err) &&
               strstr(err, "header vocabulary 50000000 is over the limit 1048576"),
           "data_open: header vocabulary 50,000,000", err);
    write_shard32("/tmp/ablate_inputs_v0ok.bin", 0, 5000, 299);
    int rc = data_open(&ds, "/tmp/ablate_inputs_v0ok.bin", 0.1f, err, sizeof err);
    char d[80];
    snprintf(d, sizeof d, "rc %d, vocabulary %d", rc, rc ? -1 : ds.vocab_size);
    report(!rc && ds.vocab_size == 300, "data_open: no header vocabulary: largest id + 1", d);
    if (!rc) {
        report(data_check_window(&ds, INT_MAX, err, sizeof err) && strstr(err, "needs at least 2147483648"),
               "data_check_window: seq 2^31-1 names 2^31 (wrapped to -2^31 before)", err);
        data_close(&ds);
    }
    report(data_open(&ds, "/dev/zero", 0.1f, err, sizeof err) && strstr(err, "is not a regular file (a character device)"),
           "data_open: /dev/zero refused before reading", err);
    remove("/tmp/ablate_inputs_fifo");
    if (mkfifo("/tmp/ablate_inputs_fifo", 0600) == 0) {
        report(data_open(&ds, "/tmp/ablate_inputs_fifo", 0.1f, err, sizeof err) && strstr(err, "(a FIFO)"),
               "data_open: a FIFO refused before opening it", err);
        DataTokenizer *t = data_tok_load("/tmp/ablate_inputs_fifo", err, sizeof err);
        report(!t && strstr(err, "tokenizer /tmp/ablate_inputs_fifo is not a regular file"),
               "data_tok_load: a FIFO refused before opening it", err);
    } else report(0, "mkfifo", "/tmp/ablate_inputs_fifo");
    mkdir("/tmp/ablate_inputs_dir", 0755);
    write_shard32("/tmp/ablate_inputs_dir/train_000000.bin", 0, 5000, 0xffffffffu);
    report(data_open(&ds, "/tmp/ablate_inputs_dir", 0.1f, err, sizeof err) && strstr(err, "is over the limit"),
           "data_open: a directory's shard with a wrapping id", err);
    if (system("rm -rf /tmp/ablate_inputs_dir")) {}
    DataTokenizer *t = data_tok_train((const unsigned char *)"ab", 2, DATA_MAX_VOCAB + 1, err, sizeof err);
    report(!t && strstr(err, "vocabulary 1048577 must be in [257, 1048576]"), "data_tok_train: vocabulary over the limit",
           err);
}

/* runs `timeout 60 ablate ARGS`; rc and the output's check */
static void cli(const char *args, int want_rc, const char *want) {
    char cmd[2048], out[8192] = "", rest[4096];
    snprintf(cmd, sizeof cmd, "timeout 60 %s %s 2>&1", ablate_bin, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    while (p && fread(rest, 1, sizeof rest, p) > 0) {}
    int st = p ? pclose(p) : -1, rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int ok = rc == want_rc && strstr(out, want) != NULL;
    char name[160], d[300];
    size_t la = strlen(args); /* the tail: the shared flags come first, the case last */
    snprintf(name, sizeof name, "cli: %s%s", la > 70 ? "..." : "", args + (la > 70 ? la - 70 : 0));
    const char *last = out + (n > 200 ? n - 200 : 0);
    snprintf(d, sizeof d, "rc %d, %s", rc, ok ? want : last);
    report(ok, name, d);
}

static void test_cli(void) {
    /* 1: layers 200000000 segfaulted in smol_layout */
    cli("train " SMALL " --layers 200000000", 2, "--layers expects an integer <= 1024, got '200000000'");
    /* 2: the wrapping vocabulary overflowed the embedding (exit 139) */
    cli("train " SMALL " --data /tmp/ablate_inputs_v0.bin", 2, "over the limit 1048576 (DATA_MAX_VOCAB)");
    /* 3: hangs */
    cli("train " SMALL " --data /dev/zero", 2, "data file /dev/zero is not a regular file");
    cli("train " SMALL " --data /dev/urandom", 2, "data file /dev/urandom is not a regular file");
    cli("train " SMALL " --data /tmp/ablate_inputs_fifo", 2, "is not a regular file (a FIFO)");
    cli("tokenizer train --vocab 300 --out /tmp/ablate_inputs_tok.json /dev/zero", 2, "/dev/zero is not a regular file");
    cli("tokenize --tokenizer /tmp/ablate_inputs_fifo --out /tmp/ablate_inputs_tk /usr/share/common-licenses/GPL-3", 2,
        "tokenizer /tmp/ablate_inputs_fifo is not a regular file");
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk /dev/zero", 2, "/dev/zero is not a regular file");
    cli("run /tmp/ablate_inputs_fifo", 2, "cannot read study spec /tmp/ablate_inputs_fifo");
    /* 4: an 800M-parameter model from one header word */
    cli("train " SMALL " --data /tmp/ablate_inputs_v50m.bin", 2, "header vocabulary 50000000 is over the limit 1048576");
    /* 5: accepted although meaningless */
    cli("train " SMALL " --lr -1", 2, "--lr expects a number > 0, got '-1'");
    cli("train " SMALL " --weight-decay -1", 2, "--weight-decay expects a number >= 0, got '-1'");
    cli("train " SMALL " --weight-decay 0 --min-lr-ratio 0", 0, "done:");
    cli("train " SMALL " --min-lr-ratio 2", 2, "--min-lr-ratio expects a number <= 1, got '2'");
    cli("train " SMALL " --rope-theta -1", 2, "--rope-theta expects a number > 0, got '-1'");
    cli("train " SMALL " --device tpu", 2, "unknown device 'tpu': expected cpu or cuda");
    cli("--device tpu", 2, "unknown device 'tpu': expected cpu or cuda");
    cli("bench --device tpu", 2, "unknown device 'tpu': expected cpu or cuda");
    cli("bench --only foo", 2, "bench --only: unknown part 'foo': expected train, attn, mech or decode");
    cli("bench --steps 0", 2, "--steps expects an integer in [1, 1000000], got '0'");
    cli("run --axes attn=mha --device tpu", 2, "unknown device 'tpu'");
    cli("run --axes attn=mha --lr -1", 2, "lr expects a number > 0");
    cli("train " SMALL " --save /nonexistent/x", 2, "save '/nonexistent/x': the directory /nonexistent does not exist");
    cli("train " SMALL " --save /tmp", 2, "save '/tmp' names a directory");
    cli("train " SMALL " --seq 2147483647", 2, "--seq expects an integer <= 1048576, got '2147483647'");
    cli("train " SMALL " --d-model 2147483647", 2, "--d-model expects an integer <= 65536, got '2147483647'");
    cli("eval x --data y --seq 2147483647", 2, "--seq expects an integer in [1, 1048576], got '2147483647'");
    cli("tokenizer train --vocab 99999999999 --out /tmp/ablate_inputs_tok.json /usr/share/common-licenses/GPL-3", 2,
        "--vocab expects an integer in [257, 1048576], got '99999999999'");
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk --val-frac 1.5 /usr/share/common-licenses/GPL-3", 2,
        "--val-frac expects a number in (0, 1), got '1.5'");
    FILE *f = fopen("/tmp/ablate_inputs_1.txt", "wb");
    if (f) { fputc('x', f); fclose(f); }
    if (system("rm -rf /tmp/ablate_inputs_tk")) {}
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk /tmp/ablate_inputs_1.txt", 2,
        "data file /tmp/ablate_inputs_1.txt gives 1 token(s); a train and a validation part need at least 2");
    /* a 2-byte file: one train and one validation token, never an empty validation split */
    f = fopen("/tmp/ablate_inputs_2.txt", "wb");
    if (f) { fputs("xy", f); fclose(f); }
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk /tmp/ablate_inputs_2.txt", 0, "1 validation tokens");
    /* 6: old shards in the output directory */
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk /usr/share/common-licenses/GPL-3", 2,
        "already holds 2 .bin shard(s)");
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk --shard-tokens 20000 --force "
        "/usr/share/common-licenses/GPL-3", 0, "2 train shard(s), 3514 validation tokens");
    cli("tokenize --tokenizer byte --out /tmp/ablate_inputs_tk --force /usr/share/common-licenses/GPL-3", 0,
        "1 train shard(s)");
    /* --force removed train_000001.bin of the run before: the directory is the new shards alone */
    struct stat st;
    report(stat("/tmp/ablate_inputs_tk/train_000001.bin", &st) != 0 && stat("/tmp/ablate_inputs_tk/train_000000.bin", &st) == 0,
           "tokenize --force: no shard of the earlier run is left", NULL);
    cli("train " SMALL " --data /tmp/ablate_inputs_tk", 0, "31635 train, 3514 validation");
    /* in range: the same flags train */
    cli("train " SMALL " --lr 0.01 --min-lr-ratio 1 --weight-decay 0.05 --rope-theta 10000 --window 0", 0, "done:");
}

int main(int argc, char **argv) {
    if (argc > 1) ablate_bin = argv[1];
    test_key_ranges();
    test_model_limits();
    test_data_limits();
    test_cli();
    remove("/tmp/ablate_inputs_v0.bin"); remove("/tmp/ablate_inputs_v50m.bin"); remove("/tmp/ablate_inputs_v0ok.bin");
    remove("/tmp/ablate_inputs_fifo"); remove("/tmp/ablate_inputs_1.txt"); remove("/tmp/ablate_inputs_2.txt");
    remove("/tmp/ablate_inputs_tok.json");
    if (system("rm -rf /tmp/ablate_inputs_tk")) {}
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
