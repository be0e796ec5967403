/* tests/fuzz_ckpt.c - libFuzzer target for checkpoint loading.
     clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz_ckpt.c -o tests/fuzz_ckpt -lm
     ./tests/fuzz_ckpt CORPUS -ignore_remaining_args=1 target=safetensors model.safetensors: its configuration
                                                        (smollm_read_config), then, for a small
                                                        model, smollm_load's header checks
     ./tests/fuzz_ckpt CORPUS -ignore_remaining_args=1 target=state train.state of the tiny model below
     ./tests/fuzz_ckpt CORPUS -ignore_remaining_args=1 target=manifest ckpt=DIR
                                                        a MANIFEST over a copy of checkpoint DIR
   (`make fuzz` runs each for FUZZ_SECONDS, seeded from a tiny run's checkpoint.) Whatever the
   bytes, a loader either accepts them or refuses them with a message; a crash, a leak or
   undefined behaviour fails the target. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "study.h"

static char scratch[256];   /* a per-process directory for the input as a file */
static int target = -1;     /* 0 safetensors, 1 state, 2 manifest */
static SmolModel tiny;      /* the state target's model and trainer */
static TrainState tiny_tr;

static void write_file(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
}

/* the Makefile's seed run: --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 4 */
static void init_tiny(void) {
    StudyRunConfig rc;
    char err[512];
    study_run_config_defaults(&rc);
    const char *kv[][2] = {{"layers", "1"}, {"d_model", "16"}, {"heads", "2"}, {"seq", "16"}, {"batch", "2"}, {"steps", "4"}};
    for (int i = 0; i < 6; i++)
        if (study_run_config_set(&rc, kv[i][0], kv[i][1], err, sizeof err)) { fprintf(stderr, "%s\n", err); abort(); }
    SmolConfig mc = rc.model;
    mc.vocab_size = 256;
    if (smollm_init(&tiny, &mc, NULL, rc.batch, rc.seq, err, sizeof err)) { fprintf(stderr, "%s\n", err); abort(); }
    TrainConfig tc = rc.train;
    tc.steps = study_run_config_steps(&rc);
    train_init(&tiny_tr, &tiny, &tc);
}

/* the target and the checkpoint to copy come as arguments after libFuzzer's
   -ignore_remaining_args=1: "target=safetensors|state|manifest" and "ckpt=DIR" */
static const char *arg_target, *arg_ckpt;
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    for (int i = 1; i < *argc; i++) {
        const char *a = (*argv)[i];
        if (!strncmp(a, "target=", 7)) arg_target = a + 7;
        if (!strncmp(a, "ckpt=", 5)) arg_ckpt = a + 5;
    }
    return 0;
}

static void setup(void) {
    const char *t = arg_target;
    target = t && !strcmp(t, "state") ? 1 : t && !strcmp(t, "manifest") ? 2 : 0;
    snprintf(scratch, sizeof scratch, "build/fuzz/scratch-%d", (int)getpid());
    if (study_mkdirs(scratch)) abort();
    if (target == 1) init_tiny();
    if (target == 2) { /* a copy of the checkpoint's files; the input becomes its MANIFEST */
        const char *ck = arg_ckpt;
        const char *names[] = {"model.safetensors", "train.state", "run.json"};
        for (int i = 0; i < 3 && ck; i++) {
            char a[4200], b[4200];
            size_t n;
            snprintf(a, sizeof a, "%s/%s", ck, names[i]);
            snprintf(b, sizeof b, "%s/%s", scratch, names[i]);
            char *d = study_read_all(a, &n);
            if (!d) { fprintf(stderr, "fuzz_ckpt: cannot read %s (ckpt=DIR: a checkpoint directory)\n", a); abort(); }
            write_file(b, (const uint8_t *)d, n);
            free(d);
        }
    }
}

static void fuzz_safetensors(const uint8_t *d, size_t n) {
    char path[300], err[1024] = "";
    snprintf(path, sizeof path, "%s/model.safetensors", scratch);
    write_file(path, d, n);
    SmolConfig cfg;
    int B = 0, T = 0;
    if (smollm_read_config(path, &cfg, &B, &T, err, sizeof err)) {
        if (!err[0]) abort(); /* a refusal always says why */
        return;
    }
    /* a model small enough to build in a moment (the header checks do not depend on size) */
    SmolConfig r = cfg;
    if (smollm_resolve(&r, err, sizeof err) || r.vocab_size > 512 || r.d_model > 64 || r.n_layers > 2 ||
        r.ffn_dim > 256 || r.n_heads > 8 || r.attn.latent_dim > 64 || r.attn.q_latent_dim > 64 || r.attn.indexer_heads > 4 ||
        r.attn.indexer_dim > 64 || r.attn.head_dim > 64)
        return;
    SmolModel m;
    if (smollm_init(&m, &cfg, NULL, 1, 8, err, sizeof err)) return;
    err[0] = 0;
    if (smollm_load(&m, path, err, sizeof err) && !err[0]) abort();
    smollm_free(&m);
}

static void fuzz_state(const uint8_t *d, size_t n) {
    char path[300], err[1024] = "";
    uint64_t w[W_COUNT];
    snprintf(path, sizeof path, "%s/train.state", scratch);
    write_file(path, d, n);
    if (train_load_state(&tiny_tr, w, W_COUNT, path, err, sizeof err)) {
        if (!err[0]) abort();
        return;
    }
    if (tiny_tr.step < 0 || tiny_tr.step > tiny_tr.cfg.steps) abort(); /* accepted: within the schedule */
}

static void fuzz_manifest(const uint8_t *d, size_t n) {
    char path[300], err[1024] = "";
    CkptEntry e[CKPT_MAX_FILES];
    int k = ckpt_manifest_parse((const char *)d, n, "fuzz", e, CKPT_MAX_FILES, err, sizeof err);
    if (k < 0 && !err[0]) abort();
    for (int i = 0; i < k; i++) /* an accepted name never leaves the directory */
        if (strchr(e[i].name, '/') || !strcmp(e[i].name, "..")) abort();
    snprintf(path, sizeof path, "%s/MANIFEST", scratch);
    write_file(path, d, n);
    err[0] = 0;
    if (ckpt_manifest_verify(scratch, err, sizeof err) && !err[0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (target < 0) setup();
    if (target == 0) fuzz_safetensors(d, n);
    else if (target == 1) fuzz_state(d, n);
    else fuzz_manifest(d, n);
    return 0;
}
