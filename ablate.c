/* ablate.c - the reference driver: trains SmolLM2-style models with one attention
   mechanism / norm strategy per run and compares them.

     cc -O2 -DABLATE_CUDA ablate.c -o ablate -lnvrtc -lcublas -lcublasLt -ldl -lm     (GPU build)
     cc -O2 ablate.c -o ablate-cpu -lm                                              (CPU-only build)

   ablate                 the default study (attention mechanisms, built-in data)
   ablate run [SPEC|flags] a study from a spec file or --axes; --resume DIR continues one
   ablate report DIR      redraw a study's table and plots from its files
   ablate train [flags]   train one configuration; ablate train --help lists the flags;
                          --gpus 0,1 (--ranks N on the CPU) trains it data-parallel (dist.h)
   ablate eval CKPT --data SPEC  a saved checkpoint over a whole split: loss, its standard
                          error, perplexity, bits per byte, tokens (ablate eval --help)
   ablate eval CKPT --mc FILE.jsonl  multiple-choice accuracy (eval.h)
   ablate export CKPT --out DIR  a Hugging Face model directory (export.h)
   ablate mc-make TEXT --out FILE.jsonl  cloze items from a text's held-out part (eval.h)
   ablate bench           time training and the attention kernel; --gpus N: data-parallel scaling

   This file parses and dispatches; studies live in study.h, training in train.h.
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "study.h" /* its implementation brings export.h's and eval.h's */
#include "gpu.h" /* GpuTuning and its parser, in the CPU-only build too */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "ablate: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(2);
}

/* the flags that are not run keys (eval, bench): an integer in [min, max], parsed as a long
   long so that a value past INT_MAX is named as too large rather than wrapped */
static int parse_int(const char *flag, const char *s, int min, int max) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "ablate: %s expects an integer in [%d, %d], got '%s'\n", flag, min, max, s);
        exit(2);
    }
    return (int)v;
}

static void check_device(const char *v) {
    if (strcmp(v, "cpu") && strcmp(v, "cuda")) die("unknown device '%s'%s: expected cpu or cuda", v, "");
}

static float parse_float(const char *flag, const char *s) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s || !isfinite(v)) die("%s expects a number, got '%s'", flag, s);
    return v;
}

static void tune_help(void); /* the --tune keys, after each --help */

/* the attention options, from attn.h's option table (each room's), one line each */
static void attn_options_help(void) {
    printf("attention mechanisms (--attn, or items of --attn-layers): %s\n", ATTN_KIND_LIST);
    puts("attention options (--KEY N, spec key KEY, schedule item option KEY=N; 0 = the default):");
    for (int i = 0; i < attn_option_count(); i++) {
        const AttnOption *o = attn_option_at(i);
        char flag[48];
        snprintf(flag, sizeof flag, "--%s%s", o->name, (o->flags & ATTN_OPT_BOOL) ? "" : " N");
        for (char *q = flag + 2; *q; q++) if (*q == '_') *q = '-';
        printf("  %-22s %s [%s]\n", flag, o->help, o->room);
    }
}

static void train_usage(void) {
    puts("usage: ablate train [flags]\n"
         "Train one configuration and print a progress line per step.\n"
         "\n"
         "model (defaults: SmolLM2-135M shape; vocab comes from the tokenizer):\n"
         "  --attn NAME       a mechanism: mha, gqa, mqa, swa, mla, mga, gdn, dsa, identity, ... (default gqa;\n"
         "                    the list below names every one)\n"
         "  --attn-layers S   per-layer schedule, e.g. swa:256*3,gqa (repeats over the depth; grammar in attn.h)\n"
         "  (attention options: below)\n"
         "  --norm NAME       pre | post | sandwich (default pre)\n"
         "  --layers N        blocks (default 30)\n"
         "  --d-model N       width (default 576)\n"
         "  --heads N         query heads; must divide --d-model (default 9)\n"
         "  --ffn N           SwiGLU hidden size (default 8/3 d-model rounded up to 64)\n"
         "  --rope-theta X    RoPE base (default 100000)\n"
         "  --resid-dropout P dropout on each sublayer's output while training, 0 <= P < 1 (default 0)\n"
         "training:\n"
         "  --seq T           context length (default 256)\n"
         "  --batch B         sequences per micro-batch (default 8)\n"
         "  --grad-accum K    micro-batches per step (default 1)\n"
         "  --steps N         optimizer steps (default 200)\n"
         "  --lr X            peak learning rate (default 3e-3)\n"
         "  --min-lr-ratio X  cosine floor as a fraction of --lr (default 0.1)\n"
         "  --warmup N        linear warmup steps (default 0)\n"
         "  --weight-decay X  AdamW decay on matrices (default 0.1)\n"
         "  --clip X          global gradient-norm clip, 0 or less disables (default 1.0)\n"
         "  --seed N          weights and batch order (default 1337)\n"
         "data and output:\n"
         "  --data SPEC       a text file (byte-level tokens), a token shard (.bin), a directory of\n"
         "                    shards (*val*.bin validation) or a weighted mix a.bin:0.7,b.txt:0.3\n"
         "                    (default: data/corpus.txt, else /usr/share/common-licenses/GPL-3)\n"
         "  --val-frac X      fraction of the file held out for validation (default 0.1)\n"
         "  --eval-every N    validate every N steps (default: 10 times per run)\n"
         "  --eval-batches N  batches per evaluation, in windows spread evenly over the whole validation\n"
         "                    split (default 8, about 8/3 steps' time); the last evaluation covers the whole\n"
         "                    split, every target once (up to 4,194,304 tokens) and prints its standard error\n"
         "  --log-every N     progress line every N steps (default 1)\n"
         "  --device NAME     cpu | cuda (default cuda when a GPU is present)\n"
         "  --task NAME       a synthetic task instead of --data: mqar (multi-query associative\n"
         "                    recall), copy or induction; validation also reports top-1 accuracy\n"
         "  --task-size N     pairs per sequence (mqar) or copied length (copy); 0 = default\n"
         "  --task-vocab N    the task's vocabulary (default 256)\n"
         "  --save FILE       write the trained weights as safetensors\n"
         "  --KEY VALUE       any other run key of a study (ablate run --help lists them all)\n"
         "data parallel (one run over several processes; --batch is the whole micro-batch, split\n"
         "evenly over the ranks, so it must be a multiple of their count):\n"
         "  --gpus 0,1,...    one rank per listed GPU, gradients summed with NCCL (libnccl.so.2, opened\n"
         "                    at run time; CUDA build)\n"
         "  --ranks N         N ranks on the CPU over shared memory (the same training logic, for tests)\n"
         "  --grad-reduce P   fp32 (default) or bf16: the precision of the ranks' gradient sum (bf16:\n"
         "                    each rank's gradients rounded to bf16, summed in bf16, half the traffic)\n"
         "  --grad-bucket-mb X\n"
         "                    reduce the gradients in buckets of X MB as the backward produces them\n"
         "                    (on the GPU on a second stream, overlapping the backward; default 0:\n"
         "                    one reduction after the backward)\n"         "Every value is range-checked (ablate run --help prints each key's range).\n"
         "  -h, --help        this text");
    attn_options_help();
}

/* every valued flag but --device is a run key: study.h's table parses it and checks its range
   (one place for `ablate train`, `ablate run --KEY` and spec files) */
static void parse_train_flags(StudyRunConfig *o, const char **device, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { train_usage(); tune_help(); exit(0); }
        const StudyRunKey *bk = study_run_key_find(f); /* a yes/no key (--qk-norm) alone means 1 */
        if (bk && bk->type == STUDY_RUN_KEY_BOOL && !strncmp(f, "--", 2) &&
            (i + 1 >= argc || (strcmp(argv[i + 1], "0") && strcmp(argv[i + 1], "1")))) {
            char err[300];
            if (study_run_config_set(o, f, "1", err, sizeof err)) die("%s%s", err, "");
            continue;
        }
        if (strncmp(f, "--", 2)) die("unexpected argument '%s'%s (see ablate train --help)", f, "");
        if (i + 1 >= argc) die("%s needs a value%s", f, "");
        const char *v = argv[++i];
        if (!strcmp(f, "--device")) {
            check_device(v);
            *device = v;
            continue;
        }
        char err[300];
        if (study_run_config_set(o, f, v, err, sizeof err)) {
            if (!strncmp(err, "unknown key", 11)) die("unknown flag '%s'%s (see ablate train --help)", f, "");
            die("%s%s", err, "");
        }
    }
    if (o->train.warmup >= o->train.steps)
        fprintf(stderr, "ablate: warning: --warmup %d >= --steps %d: the run never leaves warmup\n",
                o->train.warmup, o->train.steps);
}

/* ---- GPU tuning: --tune KEY=VALUE (gpu.h's GpuTuning), any command, repeatable ---- */
#define TUNE_MAX 32
typedef struct {
    GpuTuning t;
    char *args[2 * TUNE_MAX]; /* the flags as given ("--tune", "KEY=VALUE", ..., "--kernel-cache", DIR),
                                 for study workers */
    int n_args;
    char kernel_cache[4096]; /* GpuTuning.kernel_cache points here; "" when off */
} Tune;

/* the kernel cache's default directory: $XDG_CACHE_HOME/ablate/kernels, else
   ~/.cache/ablate/kernels; "" (no disk cache) when neither variable is set */
static void kernel_cache_default(char *dir, size_t n) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg == '/') snprintf(dir, n, "%s/ablate/kernels", xdg); /* the XDG spec: relative paths are ignored */
    else if (home && *home) snprintf(dir, n, "%s/.cache/ablate/kernels", home);
    else dir[0] = 0;
}

/* the environment variables that tune nothing, and what does it instead: a user who still
   sets one is told, rather than silently getting the default */
static const char *const tune_old_env[][2] = {
    {"ABLATE_SYNC_CHECK", "--tune sync_check=1"},  {"ABLATE_XENT_CHUNK_MB", "--tune xent_chunk_mb=N"},
    {"ABLATE_ATTN_WGMMA", "--tune attn_wgmma=N"},  {"ABLATE_ATTN_WBWD_DQ", "--tune attn_wbwd_dq=N"},
    {"ABLATE_GDN_MMA", "--tune gdn_mma=N"},        {"ABLATE_GDN_PAR", "--tune gdn_par=N"},
    {"ABLATE_SPARSE_DENSE", "--tune sparse_dense=N"}, {"ABLATE_SPARSE_BWD", "--tune sparse_bwd=N"},
    {"ABLATE_SPARSE_KL", "--tune sparse_kl=N"},    {"ABLATE_SPARSE_TOPK", "--tune sparse_topk=N"},
    {"ABLATE_DATA", "--data FILE"},
};

/* takes every --tune KEY=VALUE and --kernel-cache DIR|off out of argv (so that each command's own
   parser never sees them) into tn; the NVRTC include path comes from $CUDA_HOME, the kernel
   cache's default from $XDG_CACHE_HOME or $HOME */
static void take_tune_flags(int *argc, char **argv, Tune *tn) {
    int n = 0;
    char *kc = NULL; /* --kernel-cache's value (kept here: argv's slots are reused below) */
    for (int i = 0; i < *argc; i++) {
        if (!strcmp(argv[i], "--kernel-cache")) {
            if (i + 1 >= *argc || !argv[i + 1][0])
                die("--kernel-cache needs a directory or 'off'%s%s (see ablate --help)", "", "");
            kc = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--tune")) { argv[n++] = argv[i]; continue; }
        if (i + 1 >= *argc) die("--tune needs KEY=VALUE%s%s (see ablate --help)", "", "");
        char err[400];
        if (gpu_tuning_set(&tn->t, argv[i + 1], err, sizeof err)) die("--tune: %s%s", err, "");
        /* two slots stay for --kernel-cache: study workers take 2 * TUNE_MAX flags (STUDY_MAX_WORKER_ARGS) */
        if (tn->n_args + 2 > 2 * TUNE_MAX - 2) die("--tune given more than %s times%s", "31", "");
        tn->args[tn->n_args++] = argv[i];
        tn->args[tn->n_args++] = argv[++i];
    }
    *argc = n;
    argv[n] = NULL;
    const char *home = getenv("CUDA_HOME");
    if (home && *home) tn->t.cuda_home = home;
    if (!kc) kernel_cache_default(tn->kernel_cache, sizeof tn->kernel_cache);
    else if (strcmp(kc, "off")) {
        if (strlen(kc) >= sizeof tn->kernel_cache - 100) /* gpu.h adds a 70-character file name */
            die("--kernel-cache: the directory '%.100s...' is too long (at most 3995 characters)%s", kc, "");
        snprintf(tn->kernel_cache, sizeof tn->kernel_cache, "%s", kc);
    }
    if (kc) { /* study workers get the same choice */
        tn->args[tn->n_args++] = "--kernel-cache";
        tn->args[tn->n_args++] = kc;
    }
    tn->t.kernel_cache = tn->kernel_cache[0] ? tn->kernel_cache : NULL;
    for (size_t k = 0; k < sizeof tune_old_env / sizeof *tune_old_env; k++)
        if (getenv(tune_old_env[k][0]))
            fprintf(stderr, "ablate: warning: the environment variable %s is not read: use %s\n", tune_old_env[k][0],
                    tune_old_env[k][1]);
}

static void tune_help(void) {
    puts("GPU tuning (kernel variants for A/B runs; ignored on the CPU), --tune KEY=VALUE, repeatable:");
    for (int k = 0; gpu_tuning_keys[k][0]; k++) printf("  %-20s %s\n", gpu_tuning_keys[k][0], gpu_tuning_keys[k][1]);
    puts("  (the ABLATE_* environment variables are not read; $CUDA_HOME names the CUDA toolkit\n"
         "  whose headers the kernels are compiled with)\n"
         "--kernel-cache DIR|off: where compiled GPU kernels are kept between runs (default\n"
         "  $XDG_CACHE_HOME/ablate/kernels, else ~/.cache/ablate/kernels); off compiles them in every process");
}

/* the tuning onto an opened device (NULL: the CPU, nothing to tune) */
static void apply_tuning(Gpu *gpu, const Tune *tn) {
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu->tuning = tn->t;
#else
    (void)gpu; (void)tn;
#endif
}

/* the backend: a GPU when asked or available, else the CPU (NULL) */
static Gpu *open_device(const char *device, const Tune *tn) {
    char err[256];
    Gpu *gpu;
    if (study_open_device(device, &gpu, err, sizeof err)) { fprintf(stderr, "ablate: %s\n", err); exit(1); }
    apply_tuning(gpu, tn);
    return gpu;
}

/* ---- data-parallel training: dist.h's dist_spawn forks one rank per GPU (--gpus) or per
   CPU process (--ranks); each rank runs study_train with its DistComm (fork without exec:
   the parsed configuration is inherited; the GPU is opened in the rank, never in the parent) */
typedef struct {
    const StudyRunConfig *o;
    const Tune *tn;
    const int *gpus;  /* NULL: CPU ranks */
    int die_rank;     /* tests (hidden --test-die-rank R): rank R kills itself before training; -1: none */
} TrainRanks;

static int train_rank(DistComm *c, void *ctx) {
    const TrainRanks *x = ctx;
    StudyRunConfig o = *x->o;
    Gpu *gpu = NULL;
    if (c->rank == x->die_rank) raise(SIGKILL);
#ifndef ABLATE_NO_CUDA
    if (x->gpus) {
        gpu = calloc(1, sizeof *gpu);
        if (!gpu || gpu_init(gpu, x->gpus[c->rank])) {
            fprintf(stderr, "ablate: rank %d: GPU %d cannot be used: %s (--gpus lists device indices, 0 to the "
                            "machine's GPU count - 1)\n", c->rank, x->gpus[c->rank], gpu ? gpu->err : "out of host memory");
            free(gpu);
            return 2;
        }
        apply_tuning(gpu, x->tn);
        if (dist_nccl_init(c, gpu->stream)) {
            fprintf(stderr, "ablate: %s\n", c->err);
            study_close_device(gpu);
            return 2;
        }
    }
#else
    (void)x->tn;
#endif
    o.dist = c;
    StudySummary sum = {0};
    int rc = study_train(&o, NULL, gpu, c->rank == 0, &sum);
    if (rc == 2) fprintf(stderr, "ablate: rank %d: %s\n", c->rank, sum.reason);
    dist_nccl_close(c);
    study_close_device(gpu);
    return rc;
}

/* takes --gpus LIST, --ranks N and the hidden --test-die-rank R out of argv: the world size
   (0: neither flag) */
static int take_dist_flags(int *argc, char **argv, int *gpus, int *die_rank) {
    int n = 0, world = 0, have_gpus = 0;
    for (int i = 0; i < *argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--gpus") && strcmp(f, "--ranks") && strcmp(f, "--test-die-rank")) { argv[n++] = argv[i]; continue; }
        if (i + 1 >= *argc) die("%s needs a value%s", f, "");
        const char *v = argv[++i];
        if (!strcmp(f, "--test-die-rank")) { *die_rank = parse_int(f, v, 0, DIST_MAX_WORLD - 1); continue; }
        if (world) die("--gpus and --ranks are given together or twice (%s %s): one of them, once", f, v);
        if (!strcmp(f, "--ranks")) world = parse_int(f, v, 1, DIST_MAX_WORLD);
        else {
            char err[300];
            world = dist_parse_gpus(v, gpus, DIST_MAX_WORLD, err, sizeof err);
            if (world < 0) die("%s%s", err, "");
            have_gpus = 1;
        }
    }
    *argc = n;
    argv[n] = NULL;
    return have_gpus ? -world : world;
}

static int cmd_train(int argc, char **argv, const Tune *tn) {
    StudyRunConfig o;
    const char *device = NULL;
    int gpus[DIST_MAX_WORLD], die_rank = -1;
    int world = take_dist_flags(&argc, argv, gpus, &die_rank), on_gpus = world < 0;
    if (on_gpus) world = -world;
    study_run_config_defaults(&o);
    parse_train_flags(&o, &device, argc, argv);
    if (world) {
        char err[300];
        SmolConfig check = o.model;
        check.vocab_size = DATA_BYTE_VOCAB;
        if (smollm_resolve(&check, err, sizeof err)) { fprintf(stderr, "ablate: %s\n", err); return 2; }
        if (o.batch % world) {
            fprintf(stderr, "ablate: --batch %d cannot be split over %d ranks: expected a multiple of %d\n", o.batch,
                    world, world);
            return 2;
        }
#ifdef ABLATE_NO_CUDA
        if (on_gpus) {
            fprintf(stderr, "ablate: --gpus: this is the CPU-only build (built without -DABLATE_CUDA); --ranks N "
                            "trains over N CPU processes\n");
            return 2;
        }
#else
        if (on_gpus && device && strcmp(device, "cuda")) die("--gpus with --device %s%s: --gpus trains on GPUs", device, "");
        if (!on_gpus && device && !strcmp(device, "cuda")) die("--ranks with --device cuda%s%s: use --gpus LIST", "", "");
        /* NCCL's NVLink multicast is not supported on the machines this runs on; the ranks
           inherit the environment, and NCCL reads it at ncclCommInitRank */
        if (on_gpus) setenv("NCCL_NVLS_ENABLE", "0", 1);
#endif
        TrainRanks x = {&o, tn, on_gpus ? gpus : NULL, die_rank};
        int rc = dist_spawn(world, train_rank, &x, err, sizeof err);
        if (rc) fprintf(stderr, "ablate: train: %s\n", err);
        return rc < 0 ? 2 : rc;
    }
    char err[256];
    SmolConfig check = o.model; /* refuse bad shapes before reading any data or opening a GPU */
    check.vocab_size = DATA_BYTE_VOCAB;
    if (smollm_resolve(&check, err, sizeof err)) { fprintf(stderr, "ablate: %s\n", err); return 2; }
    Gpu *gpu = open_device(device, tn);
    /* the defaults are SmolLM2-135M's: say so before hours of CPU time go into them */
    double approx = 12.0 * check.n_layers * (double)check.d_model * check.d_model;
    if (!gpu && approx > 2e7)
        fprintf(stderr, "ablate: warning: training %d layers of d_model %d (the defaults are SmolLM2-135M's) on "
                        "the CPU, slowly; for a quick look: --layers 2 --d-model 64 --heads 4 --seq 64 --batch 8\n",
                check.n_layers, check.d_model);
    StudySummary sum = {0};
    int rc = study_train(&o, NULL, gpu, 1, &sum);
    if (rc == 2) fprintf(stderr, "ablate: %s\n", sum.reason);
    study_close_device(gpu);
    return rc;
}

static void eval_usage(void) {
    puts("usage: ablate eval CKPT --data SPEC [--split val|train|all] [--batch B] [--seq T] [--val-frac X]\n"
         "                       [--max-tokens N] [--device cpu|cuda] [--json]\n"
         "       ablate eval CKPT --mc FILE.jsonl [--tokenizer tokenizer.json] [--batch B] [--seq T] [--json]\n"
         "Evaluates a saved checkpoint over a whole split of SPEC, every target once (windows at offsets\n"
         "k*T in each part, a part's tail in one window aligned to its end; see data.h, EVALUATION), and\n"
         "prints the loss (total loss / tokens, nats per token), its standard error over windows,\n"
         "perplexity, bits per byte and the tokens evaluated. This is what a run's last evaluation\n"
         "computes (its final_val_loss, for a validation split within its final_eval_tokens cap).\n"
         "  CKPT            a model.safetensors written by --save or keep_checkpoints, or a run's ckpt-*/\n"
         "                  directory; it carries its model configuration (checkpoints written before\n"
         "                  ablate recorded it are refused). A directory's files must match its MANIFEST\n"
         "                  (XXH64 hash and length of each); the weights' header must list exactly the\n"
         "                  model's F32 tensors, back to back, and every weight must be finite\n"
         "  --data SPEC     text file, shard, directory of shards or a mix a:0.7,b:0.3; its vocabulary\n"
         "                  must be the checkpoint's\n"
         "  --split S       val (default), train, or all (both)\n"
         "  --seq T         window length (default: the sequence length the checkpoint was trained at)\n"
         "  --batch B       windows per forward pass (default: the checkpoint's training batch, which\n"
         "                  gives a run's own numbers bit for bit on the GPU too)\n"
         "  --val-frac X    the validation fraction that defines the split (default 0.1, as in training)\n"
         "  --max-tokens N  at most N tokens, in windows spread evenly over the split (default: all)\n"
         "  --device NAME   cpu | cuda (default cuda when a GPU is present)\n"
         "  --json          one JSON object on stdout instead of the text\n"
         "  --mc FILE       multiple-choice accuracy instead of a loss (no --data): JSON lines {\"ctx\": ...,\n"
         "                  \"endings\": [...], \"label\": N} (HellaSwag's layout; ablate mc-make writes them);\n"
         "                  an ending's score is its mean token loss after the context, the lowest wins;\n"
         "                  accuracy and its standard error sqrt(acc (1-acc) / items) (eval.h)\n"
         "  --tokenizer F   the tokenizer.json that encodes the items (default: byte-level, vocabulary 256)\n"
         "Bits per byte: loss / ln 2 for byte-level text; for shards, total loss / (ln 2 x the bytes of\n"
         "the evaluated tokens) with each token's length from the tokenizer.json beside them (ablate\n"
         "tokenize writes it there); without one, null and a note on stderr.\n"
         "Exit status: 0 evaluated; 1 failed while evaluating (device, memory); 2 bad flags, or a\n"
         "checkpoint or data that cannot be used (missing, no configuration, other vocabulary, a file\n"
         "that does not match its MANIFEST or header).");
}

/* ablate eval --mc: multiple-choice accuracy of a loaded model (eval.h) */
static int eval_mc_print(SmolModel *m, const char *path, const char *mc, const char *tokenizer, int json) {
    char err[1024];
    EvalMcSet set;
    DataTokenizer *tok = NULL;
    if (tokenizer && !(tok = data_tok_load(tokenizer, err, sizeof err))) { fprintf(stderr, "ablate eval: %s\n", err); return 2; }
    if (tok && data_tok_vocab(tok) > m->cfg.vocab_size) {
        fprintf(stderr, "ablate eval: tokenizer %s has %d tokens, the checkpoint's vocabulary is %d\n", tokenizer,
                data_tok_vocab(tok), m->cfg.vocab_size);
        data_tok_free(tok);
        return 2;
    }
    if (!tok && m->cfg.vocab_size != DATA_BYTE_VOCAB) {
        fprintf(stderr, "ablate eval: checkpoint %s has vocabulary %d, not byte-level (256): give --tokenizer\n", path,
                m->cfg.vocab_size);
        return 2;
    }
    if (eval_mc_load(mc, &set, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); data_tok_free(tok); return 2; }
    EvalMcResult r;
    int rc = eval_mc_score(m, &set, tok, &r, NULL, err, sizeof err);
    if (rc) fprintf(stderr, "ablate eval: %s\n", err);
    else if (json)
        printf("{\"checkpoint\": \"%s\", \"mc\": \"%s\", \"items\": %d, \"correct\": %d, \"acc\": %.9g, "
               "\"se\": %.9g}\n", path, mc, r.n, r.correct, r.acc, r.se);
    else
        printf("%s on %s: accuracy %.4f +- %.4f (standard error) | %d of %d right | score: mean token loss of the "
               "ending\n", path, mc, r.acc, r.se, r.correct, r.n);
    eval_mc_free(&set);
    data_tok_free(tok);
    return rc ? 1 : 0;
}

/* the hidden --greedy-check N: the reference greedy continuation of --prompt (byte-level text),
   its ids on one line, for make hfcheck; not a generator (eval.h) */
static int eval_greedy_print(SmolModel *m, const char *prompt, int steps) {
    char err[512];
    int n = (int)strlen(prompt), *ids = malloc(sizeof(int) * (size_t)(n + 1)), *out = malloc(sizeof(int) * (size_t)steps);
    if (!ids || !out) { free(ids); free(out); fprintf(stderr, "ablate eval: out of memory\n"); return 1; }
    for (int i = 0; i < n; i++) ids[i] = (unsigned char)prompt[i];
    int rc = eval_greedy_reference(m, ids, n, steps, out, err, sizeof err);
    if (rc) fprintf(stderr, "ablate eval: %s\n", err);
    else {
        printf("greedy");
        for (int i = 0; i < steps; i++) printf(" %d", out[i]);
        printf("\n");
    }
    free(ids);
    free(out);
    return rc ? 2 : 0;
}

/* ablate eval: a checkpoint over a whole split */
static int cmd_eval(int argc, char **argv, const Tune *tn) {
    const char *ckpt = NULL, *data = NULL, *device = NULL, *mc = NULL, *tokenizer = NULL, *prompt = NULL;
    DataSplit split = DATA_VAL;
    int B = 0, T = 0, json = 0, greedy = 0;
    float val_frac = 0.1f;
    double max_tokens = 0;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { eval_usage(); return 0; }
        if (!strcmp(f, "--json")) { json = 1; continue; }
        if (strncmp(f, "--", 2)) {
            if (ckpt) die("eval: one checkpoint expected, got '%s' after '%s' (see ablate eval --help)", f, ckpt);
            ckpt = f;
            continue;
        }
        if (i + 1 >= argc) die("%s needs a value%s", f, "");
        const char *v = argv[++i];
        if (!strcmp(f, "--data")) data = v;
        else if (!strcmp(f, "--mc")) mc = v;
        else if (!strcmp(f, "--tokenizer")) tokenizer = v;
        else if (!strcmp(f, "--greedy-check")) greedy = parse_int(f, v, 1, SMOLLM_MAX_SEQ);
        else if (!strcmp(f, "--prompt")) prompt = v;
        else if (!strcmp(f, "--split")) {
            if (!strcmp(v, "val")) split = DATA_VAL;
            else if (!strcmp(v, "train")) split = DATA_TRAIN;
            else if (!strcmp(v, "all")) split = DATA_ALL;
            else die("unknown split '%s'%s: expected val, train or all", v, "");
        } else if (!strcmp(f, "--batch")) B = parse_int(f, v, 1, SMOLLM_MAX_BATCH);
        else if (!strcmp(f, "--seq")) T = parse_int(f, v, 1, SMOLLM_MAX_SEQ);
        else if (!strcmp(f, "--val-frac")) {
            val_frac = parse_float(f, v);
            if (!(val_frac > 0 && val_frac < 1)) die("--val-frac expects a number in (0, 1), got '%s'%s", v, "");
        } else if (!strcmp(f, "--max-tokens")) {
            max_tokens = parse_float(f, v);
            if (!(max_tokens >= 1)) die("--max-tokens expects a count >= 1, got '%s'%s", v, "");
        } else if (!strcmp(f, "--device")) {
            check_device(v);
            device = v;
        } else die("unknown flag '%s'%s (see ablate eval --help)", f, "");
    }
    if (!ckpt) die("eval: no checkpoint given%s%s (usage: ablate eval CKPT --data SPEC; see --help)", "", "");
    if (greedy && !prompt) die("eval: --greedy-check needs --prompt TEXT%s%s", "", "");
    if (!data && !mc && !greedy) die("eval: --data SPEC or --mc FILE is required%s%s (the text, shards or mix to evaluate on)", "", "");
    if (data && (mc || greedy)) die("eval: --data and --mc%s%s are separate evaluations: give one", "", "");
    char path[4200], err[1024];
    struct stat st;
    if (!stat(ckpt, &st) && S_ISDIR(st.st_mode)) { /* a run's checkpoint: its MANIFEST vouches for its files */
        if (ckpt_manifest_verify(ckpt, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); return 2; }
        snprintf(path, sizeof path, "%s/model.safetensors", ckpt);
    } else snprintf(path, sizeof path, "%s", ckpt);
    SmolConfig cfg;
    int ck_batch = 0, ck_seq = 0;
    if (smollm_read_config(path, &cfg, &ck_batch, &ck_seq, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); return 2; }
    if (!T) T = ck_seq;
    if (!B) B = ck_batch ? ck_batch : 8;
    if (!T) { fprintf(stderr, "ablate eval: %s does not record its sequence length: give --seq\n", path); return 2; }
    if (mc || greedy) {
        if (greedy) { B = 1; T = (int)strlen(prompt) + greedy - 1; }
        Gpu *gpu = greedy ? NULL : open_device(device, tn);
        SmolModel m;
        int rc;
        if (smollm_init(&m, &cfg, gpu, B, T, err, sizeof err)) { fprintf(stderr, "ablate eval: %s: %s\n", path, err); rc = 2; }
        else {
            if (smollm_load(&m, path, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); rc = 2; }
            else rc = greedy ? eval_greedy_print(&m, prompt, greedy) : eval_mc_print(&m, path, mc, tokenizer, json);
            smollm_free(&m);
        }
        study_close_device(gpu);
        return rc;
    }
    DataSet ds;
    if (data_open(&ds, data, val_frac, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); return 2; }
    if (ds.vocab_size != cfg.vocab_size) {
        fprintf(stderr, "ablate eval: checkpoint %s has vocabulary %d but data %s has vocabulary %d (another "
                "tokenizer?)\n", path, cfg.vocab_size, data, ds.vocab_size);
        data_close(&ds);
        return 2;
    }
    DataEval ev;
    double rows = max_tokens > 0 ? floor(max_tokens / T) : 0;
    if (data_eval_init(&ev, &ds, split, T, B, max_tokens > 0 ? (rows >= 1 ? (size_t)rows : 1) : 0, err, sizeof err)) {
        fprintf(stderr, "ablate eval: %s\n", err);
        data_close(&ds);
        return 2;
    }
    DataBytes bytes;
    int bk = data_bytes_open(&bytes, &ds);
    if (bk < 0) { fprintf(stderr, "ablate eval: out of memory\n"); data_close(&ds); return 1; }
    if (bk) fprintf(stderr, "ablate eval: bits per byte unknown (null): %s\n", bytes.why);
    ev.bytes = &bytes;
    Gpu *gpu = open_device(device, tn);
    SmolModel m;
    int rc = 0;
    if (smollm_init(&m, &cfg, gpu, B, T, err, sizeof err)) {
        fprintf(stderr, "ablate eval: %s: %s\n", path, err);
        rc = 2;
    } else {
        TrainEval te;
        if (smollm_load(&m, path, err, sizeof err)) { fprintf(stderr, "ablate eval: %s\n", err); rc = 2; }
        else if (train_evaluate(&m, data_eval_batch, &ev, data_eval_batches(&ev), 0, &te)) {
            fprintf(stderr, "ablate eval: out of memory\n");
            rc = 1;
        } else {
            const char *sp = split == DATA_VAL ? "val" : split == DATA_TRAIN ? "train" : "all";
            char bpb[32] = "null", nbytes[32] = "null";
            if (isfinite(te.bpb)) snprintf(bpb, sizeof bpb, "%.9g", te.bpb);
            if (isfinite(te.bytes)) snprintf(nbytes, sizeof nbytes, "%.0f", te.bytes);
            if (json) {
                printf("{\"checkpoint\": \"%s\", \"split\": \"%s\", \"seq\": %d, \"loss\": %.9g, \"se\": %.9g, "
                       "\"ppl\": %.9g, \"bpb\": %s, \"tokens\": %.0f, \"windows\": %.0f, \"bytes\": %s, "
                       "\"whole_split\": %s}\n", path, sp, T, te.loss, isfinite(te.se) ? te.se : 0, exp(te.loss), bpb,
                       te.tokens, te.windows, nbytes, ev.whole ? "true" : "false");
            } else {
                printf("checkpoint %s: %s attention, layers %d, d_model %d, vocabulary %d\n", path,
                       cfg.attn_layers[0] ? cfg.attn_layers : attn_kind_name(m.cfg.attn.kind), m.cfg.n_layers,
                       m.cfg.d_model, m.cfg.vocab_size);
                printf("data %s, %s split: %.0f tokens in %.0f windows of %d (%s)\n", data, sp, te.tokens, te.windows,
                       T, ev.whole ? "every target once" : "spread evenly over the split");
                if (isfinite(te.bpb)) snprintf(bpb, sizeof bpb, "%.4f", te.bpb);
                printf("loss %.6f +- %.6f (standard error over windows) | ppl %.3f | bpb %s | tokens %.0f\n", te.loss,
                       te.se, exp(te.loss), isfinite(te.bpb) ? bpb : "null (unknown tokenizer)", te.tokens);
            }
        }
        smollm_free(&m);
    }
    data_bytes_close(&bytes);
    data_close(&ds);
    study_close_device(gpu);
    return rc;
}

static void generate_usage(void) {
    puts("usage: ablate generate CKPT [--prompt TEXT | --prompt-file FILE] [--tokens N] [--temperature X]\n"
         "                           [--top-k K] [--top-p P] [--seed S] [--batch B] [--tokenizer FILE]\n"
         "                           [--device cpu|cuda] [--eager]\n"
         "Continues a prompt with a saved checkpoint, printing the prompt and then each new token as it\n"
         "comes. On the GPU (the CUDA build, when a GPU is usable) every layer decodes from its device\n"
         "cache (attn.h's attn_gpu_decode_*), the LM head and the sampler run on the device and one\n"
         "decode step is one CUDA graph; on the CPU, the reference (attn_decode_*). Stops after N new\n"
         "tokens or at the tokenizer's end-of-text token (<|endoftext|>, not printed), whichever first.\n"
         "  CKPT            a model.safetensors or a run's ckpt-*/ directory (checked as ablate eval does)\n"
         "  --prompt TEXT   the text to continue; --prompt-file FILE reads it from a file. Empty (the\n"
         "                  default): generation starts from the end-of-text token (a newline for the\n"
         "                  byte-level tokenizer, which has none). A prompt longer than the checkpoint's\n"
         "                  training context keeps its last tokens up to that length (a note on stderr)\n"
         "  --tokens N      new tokens per sequence (default 64)\n"
         "  --temperature X 0 (default) = greedy: the same text every time; > 0 samples from\n"
         "                  softmax(logits / X)\n"
         "  --top-k K       sample among the K most likely tokens only (default 0: all)\n"
         "  --top-p P       then among the fewest whose probability reaches P (default 1: all)\n"
         "  --seed S        the sampler's seed (default 1): the same seed gives the same text\n"
         "  --batch B       B sequences from the same prompt at once, each with its own random stream\n"
         "                  (from S and b); printed one after the other when all are done\n"
         "  --tokenizer F   the tokenizer.json the checkpoint's data was made with (ablate tokenize puts\n"
         "                  one beside its shards); default: byte-level, for a vocabulary of 256\n"
         "  --device D      cpu: the CPU reference; cuda: the GPU (an error without one). Default: the GPU\n"
         "                  when one is usable, else the CPU (saying why on stderr); a configuration the\n"
         "                  GPU cannot decode (a shape its kernels do not take) also runs on the CPU\n"
         "                  then, saying so. With --device cuda it is refused by name.\n"
         "                  The GPU samples on the device: the same seed gives the same text there, not\n"
         "                  the CPU's draws; greedy picks the largest of the GPU's (bf16-model) logits\n"
         "  --eager         GPU: run each decode step's kernels one by one, not as a CUDA graph (debugging)\n"
         "On stderr: prompt tokens, new tokens, prefill and decode tokens/s and the decode caches' bytes.\n"
         "Exit status: 0 generated; 1 failed while generating (memory); 2 bad flags, checkpoint or\n"
         "tokenizer, or a mechanism without a decode path (the message names the layer).");
}

static double gen_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* one token's text through the tokenizer (NULL: byte-level) into out; its length */
static size_t gen_piece(const DataTokenizer *tok, int id, unsigned char *out, size_t cap) {
    if (!tok) { out[0] = (unsigned char)id; return 1; }
    size_t n = data_tok_decode(tok, &id, 1, out, cap);
    return n == (size_t)-1 || n > cap ? 0 : n;
}

/* ablate generate: a checkpoint continues a prompt */
static int cmd_generate(int argc, char **argv, const Tune *tune) {
    const char *ckpt = NULL, *prompt = NULL, *prompt_file = NULL, *tok_path = NULL, *device = NULL;
    int n_new = 64, B = 1, eager = 0;
    SmolSampler sp = {0};
    unsigned long long seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { generate_usage(); return 0; }
        if (!strcmp(f, "--eager")) { eager = 1; continue; }
        if (strncmp(f, "--", 2)) {
            if (ckpt) die("generate: one checkpoint expected, got '%s' after '%s' (see ablate generate --help)", f, ckpt);
            ckpt = f;
            continue;
        }
        if (i + 1 >= argc) die("%s needs a value%s", f, "");
        const char *v = argv[++i];
        if (!strcmp(f, "--prompt")) prompt = v;
        else if (!strcmp(f, "--prompt-file")) prompt_file = v;
        else if (!strcmp(f, "--tokens")) n_new = parse_int(f, v, 1, SMOLLM_MAX_SEQ);
        else if (!strcmp(f, "--batch")) B = parse_int(f, v, 1, SMOLLM_MAX_BATCH);
        else if (!strcmp(f, "--top-k")) sp.top_k = parse_int(f, v, 0, SMOLLM_MAX_VOCAB);
        else if (!strcmp(f, "--seed")) seed = (unsigned long long)parse_int(f, v, 0, INT_MAX);
        else if (!strcmp(f, "--tokenizer")) tok_path = v;
        else if (!strcmp(f, "--temperature")) {
            sp.temperature = parse_float(f, v);
            if (sp.temperature < 0) die("--temperature expects a number >= 0 (0: greedy), got '%s'%s", v, "");
        } else if (!strcmp(f, "--top-p")) {
            sp.top_p = parse_float(f, v);
            if (!(sp.top_p > 0 && sp.top_p <= 1)) die("--top-p expects a number in (0, 1], got '%s'%s", v, "");
        } else if (!strcmp(f, "--device")) check_device(device = v);
        else die("unknown flag '%s'%s (see ablate generate --help)", f, "");
    }
    if (!ckpt) die("generate: no checkpoint given%s%s (usage: ablate generate CKPT --prompt TEXT; see --help)", "", "");
    if (prompt && prompt_file) die("generate: --prompt and --prompt-file '%s' both given%s: expected one", prompt_file, "");
    char path[4200], err[1024];
    struct stat st;
    if (!stat(ckpt, &st) && S_ISDIR(st.st_mode)) {
        if (ckpt_manifest_verify(ckpt, err, sizeof err)) { fprintf(stderr, "ablate generate: %s\n", err); return 2; }
        snprintf(path, sizeof path, "%s/model.safetensors", ckpt);
    } else snprintf(path, sizeof path, "%s", ckpt);
    SmolConfig cfg;
    int ck_seq = 0;
    if (smollm_read_config(path, &cfg, NULL, &ck_seq, err, sizeof err)) { fprintf(stderr, "ablate generate: %s\n", err); return 2; }
    DataTokenizer *tok = NULL;
    if (tok_path) {
        if (!(tok = data_tok_load(tok_path, err, sizeof err))) { fprintf(stderr, "ablate generate: %s\n", err); return 2; }
        if (data_tok_vocab(tok) != cfg.vocab_size) {
            fprintf(stderr, "ablate generate: tokenizer %s has vocabulary %d but checkpoint %s has %d (another "
                    "tokenizer?)\n", tok_path, data_tok_vocab(tok), path, cfg.vocab_size);
            data_tok_free(tok);
            return 2;
        }
    } else if (cfg.vocab_size != 256) {
        fprintf(stderr, "ablate generate: checkpoint %s has vocabulary %d, not the byte-level 256: give --tokenizer "
                "tokenizer.json (the one its shards were made with)\n", path, cfg.vocab_size);
        return 2;
    }
    int eot = tok ? data_tok_id(tok, "<|endoftext|>") : -1;
    /* the prompt's text and ids */
    unsigned char *text = NULL;
    size_t tn = 0;
    if (prompt_file) {
        FILE *f = fopen(prompt_file, "rb");
        if (!f) { fprintf(stderr, "ablate generate: cannot read --prompt-file %s: %s\n", prompt_file, strerror(errno)); data_tok_free(tok); return 2; }
        size_t cap = 0;
        for (;;) {
            if (tn + 4096 > cap) {
                unsigned char *nt = realloc(text, cap = 2 * cap + 4096);
                if (!nt) { fclose(f); free(text); data_tok_free(tok); fprintf(stderr, "ablate generate: out of memory\n"); return 1; }
                text = nt;
            }
            size_t r = fread(text + tn, 1, cap - tn, f);
            tn += r;
            if (!r) break;
        }
        fclose(f);
    } else if (prompt) {
        tn = strlen(prompt);
        text = (unsigned char *)strdup(prompt);
    }
    size_t max_ids = tok ? data_tok_max_ids(tok, tn) : tn + 1;
    int *ids = malloc(sizeof(int) * (max_ids + 1));
    if (!ids) { free(text); data_tok_free(tok); fprintf(stderr, "ablate generate: out of memory\n"); return 1; }
    size_t np = tn ? (tok ? data_tok_encode(tok, text, tn, ids) : data_byte_encode(text, tn, ids)) : 0;
    if (np == 0) { ids[0] = eot >= 0 ? eot : '\n'; np = 1; } /* empty: from the end of a text */
    size_t first = 0;
    if (ck_seq > 0 && np > (size_t)ck_seq) {
        first = np - ck_seq;
        fprintf(stderr, "ablate generate: the prompt's %zu tokens exceed the checkpoint's context %d: kept the last %d\n",
                np, ck_seq, ck_seq);
        np = ck_seq;
    }
    if (np + n_new > SMOLLM_MAX_SEQ) die("generate: prompt and --tokens past %s%s tokens", "1048576", "");
    SmolModel m;
    SmolGen g;
    int rc = 0, T = (int)np;
    int *pre = malloc(sizeof(int) * B * T), *col = malloc(sizeof(int) * B), *done = calloc(B, sizeof(int));
    uint64_t *rng = malloc(sizeof(uint64_t) * B);
    int **outs = calloc(B, sizeof(int *)), *n_out = calloc(B, sizeof(int));
    for (int b = 0; outs && b < B; b++) outs[b] = malloc(sizeof(int) * n_new);
    if (!pre || !col || !done || !rng || !outs || !n_out || (B && !outs[B - 1])) {
        fprintf(stderr, "ablate generate: out of memory\n");
        return 1;
    }
#ifndef ABLATE_NO_CUDA
    if (!device) { /* no device asked for: a configuration the GPU cannot decode runs on the CPU, saying why */
        int layer;
        char why[512] = "";
        if (smollm_decode_check(&cfg, 1, &layer, why, sizeof why)) {
            fprintf(stderr, "ablate generate: generating on the CPU: %s\n", why);
            device = "cpu";
        }
    }
#endif
    Gpu *gpu = open_device(device, tune); /* no GPU and no --device cuda: the CPU, saying why */
    SmolGpuGen gg;
    memset(&g, 0, sizeof g);
    memset(&gg, 0, sizeof gg);
    if (smollm_init(&m, &cfg, gpu, 1, 1, err, sizeof err)) { fprintf(stderr, "ablate generate: %s: %s\n", path, err); return 2; }
    if (smollm_load(&m, path, err, sizeof err)) { fprintf(stderr, "ablate generate: %s\n", err); smollm_free(&m); return 2; }
    if (gpu ? smollm_gpu_gen_init(&gg, &m, B, T + n_new, &sp, seed, eager, err, sizeof err)
            : smollm_gen_init(&g, &m, B, T + n_new, err, sizeof err)) {
        fprintf(stderr, "ablate generate: %s: %s\n", path, err);
        smollm_free(&m);
        return 2;
    }
    unsigned char piece[256];
    for (size_t i = 0; B == 1 && i < np; i++) { /* the prompt, as the model sees it */
        size_t n = gen_piece(tok, ids[first + i], piece, sizeof piece);
        if (ids[first + i] != eot) fwrite(piece, 1, n, stdout);
    }
    fflush(stdout);
    for (int b = 0; b < B; b++) {
        memcpy(pre + (size_t)b * T, ids + first, sizeof(int) * T);
        /* splitmix64's finalizer on (seed, b): streams that do not overlap (seed + b alone would
           give sequence b sequence 0's stream shifted by b draws) */
        uint64_t z = seed + (uint64_t)(b + 1) * 0xD1B54A32D192ED03ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        rng[b] = z ^ (z >> 31);
    }
    double t0 = gen_now();
    if (gpu ? smollm_gpu_prefill(&gg, &m, pre, T, err, sizeof err) : smollm_prefill(&g, &m, pre, T, err, sizeof err)) {
        fprintf(stderr, "ablate generate: %s\n", err);
        rc = 1;
    }
    double t1 = gen_now();
    int steps = 0, live = B;
    for (int s = 0; !rc && s < n_new && live; s++) {
        for (int b = 0; b < B; b++) {
            /* the GPU sampled on the device (gg.tokens); the CPU samples here from g.logits */
            col[b] = done[b] ? (eot >= 0 ? eot : 0)
                   : gpu   ? gg.tokens[b]
                           : smollm_sample(g.logits + (size_t)b * cfg.vocab_size, cfg.vocab_size, &sp, &rng[b]);
            if (done[b]) continue;
            if (col[b] == eot) { done[b] = 1; live--; continue; }
            outs[b][n_out[b]++] = col[b];
            if (B == 1) {
                fwrite(piece, 1, gen_piece(tok, col[b], piece, sizeof piece), stdout);
                fflush(stdout);
            }
        }
        if (!live || s + 1 == n_new) break; /* the last token needs no forward pass */
        /* the GPU feeds its own sampled tokens (those of finished sequences are ignored) */
        if (gpu ? smollm_gpu_decode_step(&gg, &m, err, sizeof err) : smollm_decode_step(&g, &m, col, err, sizeof err)) {
            fprintf(stderr, "ablate generate: %s\n", err);
            rc = 1;
        }
        steps++;
    }
    double t2 = gen_now();
    if (B == 1) printf("\n");
    for (int b = 0; B > 1 && b < B; b++) {
        printf("--- sequence %d ---\n", b);
        for (size_t i = 0; i < np; i++)
            if (ids[first + i] != eot) fwrite(piece, 1, gen_piece(tok, ids[first + i], piece, sizeof piece), stdout);
        for (int i = 0; i < n_out[b]; i++) fwrite(piece, 1, gen_piece(tok, outs[b][i], piece, sizeof piece), stdout);
        printf("\n");
    }
    int total = 0;
    for (int b = 0; b < B; b++) total += n_out[b];
    fprintf(stderr, "generate: %s attention, %d sequence%s: prompt %d tokens, %d new | prefill %.0f tokens/s, decode "
            "%.0f tokens/s (%s) | decode cache %zu bytes (%zu per sequence)\n",
            cfg.attn_layers[0] ? cfg.attn_layers : attn_kind_name(m.cfg.attn.kind), B, B == 1 ? "" : "s", T, total,
            (double)B * T / (t1 - t0 > 0 ? t1 - t0 : 1e-9), (double)B * steps / (t2 - t1 > 0 ? t2 - t1 : 1e-9),
            gpu ? (eager ? (gg.fused ? "GPU, fused step, eager" : "GPU, eager")
                         : (gg.fused ? "GPU, fused step, CUDA graph" : "GPU, CUDA graph"))
                : "CPU",
            gpu ? gg.cache_bytes : g.cache_bytes,
            (gpu ? gg.cache_bytes : g.cache_bytes) / B);
    if (gpu) smollm_gpu_gen_free(&gg, &m);
    else smollm_gen_free(&g);
    smollm_free(&m);
    study_close_device(gpu);
    for (int b = 0; b < B; b++) free(outs[b]);
    free(outs); free(n_out); free(pre); free(col); free(done); free(rng); free(ids); free(text);
    data_tok_free(tok);
    return rc;
}

/* gpus_per_run on GPUs: each rank's process tunes the GPU it opened */
static void tune_rank_gpu(Gpu *gpu, void *tn) { apply_tuning(gpu, tn); }

static int run_study(const StudySpec *s, StudyOptions *so, const Tune *tn) {
    Gpu *gpu = NULL;
    char err[256];
    so->rank_gpu = tune_rank_gpu;
    so->rank_gpu_ctx = (void *)tn;
    /* NCCL's NVLink multicast is not supported on the machines this runs on (the ranks inherit
       the environment; NCCL reads it at ncclCommInitRank) */
    if (s->gpus_per_run > 1) setenv("NCCL_NVLS_ENABLE", "0", 1);
    /* a worker whose runs train over GPU ranks opens no GPU: its ranks are forked, and a forked
       CUDA context is unusable */
    if (!so->worker_cuda && study_open_device(s->device[0] ? s->device : NULL, &gpu, err, sizeof err)) {
        fprintf(stderr, "ablate: %s\n", err);
        return STUDY_ERROR; /* the study did not start: not a run that failed */
    }
    apply_tuning(gpu, tn);
    so->worker_args = tn->args; /* worker processes tune their GPUs alike */
    so->n_worker_args = tn->n_args;
    int rc = study_run(s, so, gpu);
    study_close_device(gpu);
    return rc;
}

/* the default study: each attention mechanism under one budget, one table */
static int cmd_default_study(int argc, char **argv, const Tune *tn) {
    const char *device = NULL, *data = NULL;
    StudyOptions so = {0};
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: ablate [--device cpu|cuda] [--data FILE] [--out DIR | --resume DIR] [--workers N]\n"
                 "Runs the default study: MHA, GQA, MQA, MLA and identity attention, 3 seeds each, same\n"
                 "budget, same data, then prints a comparison table (mean, std and 95% CI over seeds, Welch's\n"
                 "test against the best) and writes runs/default/ (see ablate run --help).\n"
                 "On the CPU a tiny model (2 layers, d_model 64, 400 steps of 4 x 64 tokens; about 2.5\n"
                 "minutes on 2 cores, one worker process per core unless --workers N); on a GPU a 4-layer\n"
                 "d_model 576 model (1000 steps of 32 x 512 tokens; a few minutes).");
            return 0;
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc) check_device(device = argv[++i]);
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) so.out = argv[++i];
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc) { so.out = argv[++i]; so.resume = 1; }
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            char *end;
            long w = strtol(argv[++i], &end, 10);
            if (*end || w < 1 || w > 64) die("--workers '%s': expected a count from 1 to 64%s", argv[i], "");
            so.workers = (int)w;
        } else die("unknown argument '%s'%s (see ablate --help)", argv[i], "");
    char err[600];
    StudySpec s;
    if (so.resume) {
        if (study_parse_resume(&s, so.out, err, sizeof err)) { fprintf(stderr, "ablate: %s\n", err); return 2; }
        return run_study(&s, &so, tn);
    }
    Gpu *gpu = open_device(device, tn); /* the study's size depends on it */
    study_default(&s, gpu != NULL);
    /* on the CPU one process per core: a tiny model gains little from threads, and two runs side
       by side finish the grid almost twice as fast as one run on two threads */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!gpu && !so.workers && ncpu > 1) so.workers = ncpu < 8 ? (int)ncpu : 8;
    if (data && study_set(&s, "data", data, err, sizeof err)) { fprintf(stderr, "ablate: %s\n", err); return 2; }
    so.worker_args = tn->args;
    so.n_worker_args = tn->n_args;
    int rc = study_run(&s, &so, gpu);
    study_close_device(gpu);
    return rc;
}

static int cmd_run(int argc, char **argv, const Tune *tn) {
    int help = argc == 0; /* a bare `ablate run` would train the full 135M model: show the usage */
    for (int i = 0; i < argc; i++) help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
    if (help) {
        puts("usage: ablate run SPEC.ini [--out DIR]\n"
             "       ablate run --axes KEY=V1,V2,... [KEY=V1,...] [--seeds N | --seed-list S1,S2,...]\n"
             "                  [--steps N | --tokens N]\n"
             "                  [--seconds S] [--name NAME] [--out DIR] [--KEY VALUE ...]\n"
             "       ablate run --resume DIR\n"
             "       (any form) [--gpus 0,1,...] [--gpus-per-run N] [--workers N] [--allow-large] [--quiet]\n"
             "Trains every combination of the axes' values (times the seeds) under one budget and\n"
             "writes DIR (default runs/NAME) as described in study.h: per run config.json,\n"
             "metrics.jsonl, summary.json; per study results.json (configs and runs), results.csv (per\n"
             "configuration), runs.csv (per run) and SVG plots, and a table with, per configuration,\n"
             "the mean, std and 95% CI over seeds and Welch's test against the best. --resume skips\n"
             "finished runs and continues an interrupted one from its last checkpoint. Every run of\n"
             "every phase is resolved before the first one starts (a later phase with every value the\n"
             "earlier ones could carry): a bad shape is refused with the spec line and the run, and\n"
             "nothing is written. A synthetic task (--task) adds accuracy columns. KEY is any run\n"
             "key below, as an axis (KEY=V1,V2; a value with commas, such as a data mix, in double\n"
             "quotes) or as --KEY VALUE for every run, e.g. --layers 2 --d-model 64 --attn gqa --device cpu.\n"
             "--gpus 0,1,2,3 shares each phase's runs among one process per listed GPU; --workers N\n"
             "does the same with N processes (on the CPU, or on one GPU). --gpus-per-run N (the study\n"
             "key gpus_per_run) trains each run data-parallel over N of the listed GPUs (the list cut\n"
             "into groups of N, one group per run at a time; on the CPU, over N CPU processes).\n"
             "A grid of more than 10000\n"
             "runs is refused unless --allow-large. One study at a time writes DIR: DIR/.lock names the\n"
             "process running it (a lock whose process is gone is taken over).\n"
             "Exit status: 0 every run ok; 1 some runs failed or diverged (their summary.json says\n"
             "why; a run whose files could not be written is failed); 2 the study could not run: a usage,\n"
             "spec or device error, DIR locked by another study, or a study file it could not write.\n"
             "Study keys: name, seeds (a count: N seeds from --seed, default 1337), seed_list (the seeds\n"
             "themselves: 1, 7, 42; one seed: 42), select (val_loss | tokens_per_s),\n"
             "device (cpu | cuda), keep_checkpoints (0|1), gpus_per_run (N).\nRun keys:");
        study_run_keys_help(stdout);
        return argc == 0 ? 2 : 0;
    }
    StudySpec s;
    StudyOptions so = {0};
    char err[600];
    if (study_from_args(&s, &so, argc, argv, err, sizeof err)) { fprintf(stderr, "ablate run: %s\n", err); return 2; }
    return run_study(&s, &so, tn);
}

static int cmd_report(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        puts("usage: ablate report DIR\nRedraws a study's table, results.json, results.csv and SVG plots from\n"
             "DIR/RUN/summary.json and DIR/RUN/metrics.jsonl.");
        int help = argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"));
        return help ? 0 : 2;
    }
    return study_report(argv[0], stdout) ? 2 : 0;
}

/* ---- ablate bench: training throughput and the attention kernel alone ---- */

static void random_batch(void *ctx, int *tokens, int *targets) {
    int *shape = ctx; /* {N, vocab, seed} */
    uint64_t st = (uint64_t)shape[2]++ * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < shape[0]; i++) {
        tokens[i] = (int)(splitmix64(&st) % (uint64_t)shape[1]);
        targets[i] = (int)(splitmix64(&st) % (uint64_t)shape[1]);
    }
}

/* dense bf16 tensor-core peak used for MFU (H100 SXM datasheet) */
#define BENCH_PEAK_TFLOPS 989.0

static void bench_training(Gpu *gpu, const char *label, SmolConfig mc, int B, int T, int steps, int profile) {
    char err[256];
    SmolModel m;
#ifndef ABLATE_NO_CUDA
    if (gpu) memset(&gpu->jit, 0, sizeof gpu->jit); /* this line's own compiles and cache hits */
#endif
    double t0 = train_now();
    if (smollm_init(&m, &mc, gpu, B, T, err, sizeof err)) { fprintf(stderr, "ablate bench: %s\n", err); exit(2); }
    TrainConfig tc = {0};
    tc.steps = steps + 2;
    TrainState tr;
    if (train_init(&tr, &m, &tc)) {
        fprintf(stderr, "ablate bench: out of memory for the optimizer state of %zu parameters\n", m.n_params);
        exit(2);
    }
    int shape[3] = {B * T, m.cfg.vocab_size, 1}; /* resolved: 0 means the default */
    TrainStats first = train_step(&tr, random_batch, shape);
    double first_s = train_now() - t0;
#ifndef ABLATE_NO_CUDA
    GpuJitStats jit = {0}; /* up to the end of the first step */
    if (gpu) jit = gpu->jit;
#endif
    train_step(&tr, random_batch, shape);
    double ts = 0;
    for (int s = 0; s < steps; s++) ts += train_step(&tr, random_batch, shape).seconds;
    double tps = (double)B * T * steps / ts;
    double tflops = smollm_train_flops_per_token(&m, T) * tps / 1e12;
    size_t peak = 0;
#ifndef ABLATE_NO_CUDA
    if (gpu) peak = gpu->peak_bytes;
#endif
    if (gpu)
        printf("%-40s %10.0f %9.1f %8.1f%% %9.2f %10.1f %8.2f\n", label, tps, tflops, 100 * tflops / BENCH_PEAK_TFLOPS,
               peak / 1e9, 1e3 * ts / steps, first_s);
#ifndef ABLATE_NO_CUDA
    /* what the first step's time holds: NVRTC, or the disk cache's loads (--kernel-cache) */
    if (gpu)
        printf("  first step %.2f s: kernel modules %d compiled (NVRTC %.2f s), %d from the disk cache (%.2f s), "
               "%d already in memory; cache %s\n", first_s, jit.compiled, jit.compile_s, jit.from_disk, jit.load_s,
               jit.from_memory, gpu->tuning.kernel_cache ? gpu->tuning.kernel_cache : "off");
#endif
    else /* the CPU has no tensor-core peak to take an MFU of, and no device memory */
        printf("%-40s %10.0f %9.3f %9s %9s %10.1f %8.2f\n", label, tps, tflops, "-", "-", 1e3 * ts / steps, first_s);
    (void)first;
    if (profile) { /* one more step, op by op */
        OpsProfile prof;
        memset(&prof, 0, sizeof prof);
        ops_profile_start(gpu, &prof);
        train_step(&tr, random_batch, shape);
        ops_profile_stop(gpu);
        ops_profile_print(&prof, 1);
    }
    train_free(&tr);
    smollm_free(&m);
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu->peak_bytes = gpu->bytes_in_use; /* each line reports its own peak */
#endif
}

/* random bf16 (GPU) / ops_real (CPU) activations in [-0.5, 0.5) * scale */
static void *bench_rand_act(Gpu *gpu, size_t n, double scale, uint64_t seed) {
    ops_real *host = malloc(n * sizeof(ops_real));
    if (!host) die("bench: out of host memory%s%s", "", "");
    for (size_t i = 0; i < n; i++) host[i] = (ops_real)(scale * ((double)(splitmix64(&seed) >> 11) / 9007199254740992.0 - 0.5));
    void *d = ops_alloc(gpu, n * ops_act_size(gpu));
    if (gpu) {
        ops_real *tmp = ops_alloc(gpu, n * sizeof(ops_real));
        ops_to_device(gpu, tmp, host, n * sizeof(ops_real));
        ops_weights_to_compute(gpu, d, tmp, n);
        ops_free(gpu, tmp);
    } else {
        memcpy(d, host, n * sizeof(ops_real));
    }
    free(host);
    return d;
}
static ops_real *bench_fill_real(Gpu *gpu, size_t n, double lo, double hi, uint64_t seed) {
    ops_real *host = malloc(n * sizeof(ops_real)), *d = ops_alloc(gpu, n * sizeof(ops_real));
    if (!host) die("bench: out of host memory%s%s", "", "");
    for (size_t i = 0; i < n; i++) host[i] = (ops_real)(lo + (hi - lo) * ((double)(splitmix64(&seed) >> 11) / 9007199254740992.0));
    ops_to_device(gpu, d, host, n * sizeof(ops_real));
    free(host);
    return d;
}
static double bench_sync_now(Gpu *gpu) {
    (void)gpu;
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu_sync(gpu);
#endif
    return train_now();
}

/* causal attention FLOPs of one forward (QK^T and PV over half the scores); forward +
   backward counts 3.5x this (the backward recomputes the scores: 2.5 forwards) */
static double bench_attn_flops(int B, int H, int T, int hd) { return 4.0 * B * H * (double)T * T * hd / 2; }

/* hd: any width attn_gpu_width_ok takes on the GPU; TFLOP/s counts the real hd, so a width the
   kernels pad (attn/dense.cu.h: hd 72 runs 80-wide tiles) shows its padding as a lower rate */
static void bench_attention(Gpu *gpu, int T, int hd, int reps) {
    int H = 16, B = gpu ? (65536 / T > 0 ? 65536 / T : 1) : 2;
    size_t nq = (size_t)B * T * H * hd, es = ops_act_size(gpu);
    /* random inputs: timing zeros can flatter a kernel */
    void *q = bench_rand_act(gpu, nq, 1, 42), *k = bench_rand_act(gpu, nq, 1, 43), *v = bench_rand_act(gpu, nq, 1, 44);
    void *dout = bench_rand_act(gpu, nq, 1, 45);
    void *o = ops_alloc(gpu, nq * es), *dq = ops_alloc(gpu, nq * es);
    void *dk = ops_alloc(gpu, nq * es), *dv = ops_alloc(gpu, nq * es);
    ops_real *lse = ops_alloc(gpu, (size_t)B * H * T * sizeof(ops_real));
    double flops = bench_attn_flops(B, H, T, hd);
    op_attention_forward(gpu, o, lse, q, k, v, B, T, H, H, hd, 0); /* warm-up (JIT) */
    op_attention_backward(gpu, dq, dk, dv, dout, o, lse, q, k, v, B, T, H, H, hd, 0);
    double t0 = bench_sync_now(gpu);
    for (int r = 0; r < reps; r++) op_attention_forward(gpu, o, lse, q, k, v, B, T, H, H, hd, 0);
    double tf = (bench_sync_now(gpu) - t0) / reps;
    t0 = bench_sync_now(gpu);
    for (int r = 0; r < reps; r++) {
        op_attention_forward(gpu, o, lse, q, k, v, B, T, H, H, hd, 0);
        op_attention_backward(gpu, dq, dk, dv, dout, o, lse, q, k, v, B, T, H, H, hd, 0);
    }
    double tfb = (bench_sync_now(gpu) - t0) / reps;
    /* which kernels ran: Hopper's wgmma ones or the portable mma.sync ones, per pass */
    int wg = 0;
#ifndef ABLATE_NO_CUDA
    if (gpu) wg = gpu_attention_wgmma_passes(gpu, hd);
#endif
    static const char *const kernels[4] = {"mma.sync", "mma.sync fwd, wgmma bwd", "wgmma fwd, mma.sync bwd", "wgmma"};
    const char *kern = gpu ? kernels[wg & 3] : "cpu";
    printf("attention hd%-3d causal B=%-3d H=%d T=%-5d  fwd %8.3f ms %6.1f TFLOP/s | fwd+bwd %8.3f ms %6.1f TFLOP/s  (%s)\n",
           hd, B, H, T, tf * 1e3, flops / tf / 1e12, tfb * 1e3, 3.5 * flops / tfb / 1e12, kern);
    void *all[] = {q, k, v, o, dout, dq, dk, dv, lse};
    for (int i = 0; i < 9; i++) ops_free(gpu, all[i]);
}

/* sets gpu->tuning.gdn_par to v (a raw field value: -1 leaves it) and returns its value before
   (0 on the CPU, which has one organization) */
static int bench_gdn_par(Gpu *gpu, int v) {
#ifndef ABLATE_NO_CUDA
    if (!gpu) return 0;
    int old = gpu->tuning.gdn_par;
    if (v >= 0) gpu->tuning.gdn_par = v;
    return old;
#else
    (void)gpu; (void)v;
    return 0;
#endif
}

/* the attention cores' inputs, outputs and scratch at one shape (device memory on the GPU) */
typedef struct {
    int B, T, H, KV, hd;    /* KV: the kv heads of k and v, and of the dense and pattern cores */
    int dsa_kv, HI, dI, k;  /* DSA: its kv heads (<= KV), the indexer's heads and dim, the top k */
    void *q, *kk, *v, *dout, *o, *dq, *dk, *dv, *iq, *ik, *iw;
    ops_real *lse, *psum, *gd, *beta, *dg, *db, *ws; /* gd .. ws: GDN's gates and scratch */
    int *idx;
} BenchCores;

enum { BENCH_DENSE, BENCH_DSA, BENCH_DSA_SELECT, BENCH_GDN, BENCH_PATTERN };

/* c's buffers for its shape: random inputs from seed + 1 on (timing zeros can flatter a kernel),
   GDN's gates and scratch too when gdn is set */
static void bench_cores_alloc(Gpu *gpu, BenchCores *c, int gdn, uint64_t seed) {
    size_t N = (size_t)c->B * c->T, nq = N * c->H * c->hd, nk = N * c->KV * c->hd;
    c->q = bench_rand_act(gpu, nq, 1, seed + 1), c->kk = bench_rand_act(gpu, nk, 1, seed + 2);
    c->v = bench_rand_act(gpu, nk, 1, seed + 3), c->dout = bench_rand_act(gpu, nq, 1, seed + 4);
    c->o = bench_rand_act(gpu, nq, 0, seed + 5), c->dq = bench_rand_act(gpu, nq, 0, seed + 6);
    c->dk = bench_rand_act(gpu, nk, 0, seed + 7), c->dv = bench_rand_act(gpu, nk, 0, seed + 8);
    c->lse = bench_fill_real(gpu, N * c->H, 0, 0, seed + 9);
    c->iq = bench_rand_act(gpu, N * c->HI * c->dI, 1, seed + 10), c->ik = bench_rand_act(gpu, N * c->dI, 1, seed + 11);
    c->iw = bench_rand_act(gpu, N * c->HI, 1, seed + 12);
    c->idx = ops_alloc(gpu, N * c->k * sizeof(int));
    c->psum = ops_alloc(gpu, N * c->k * sizeof(ops_real));
    if (!gdn) return;
    c->gd = bench_fill_real(gpu, N * c->H, -0.1, -0.01, seed + 13);
    c->beta = bench_fill_real(gpu, N * c->H, 0.2, 0.8, seed + 14);
    c->dg = ops_alloc(gpu, N * c->H * sizeof(ops_real)), c->db = ops_alloc(gpu, N * c->H * sizeof(ops_real));
    c->ws = ops_alloc(gpu, attn_gdn_block_ws_elems(c->B, c->T, c->H, c->hd, 64) * sizeof(ops_real));
}

static void bench_cores_free(Gpu *gpu, BenchCores *c) {
    void *all[] = {c->q, c->kk, c->v, c->dout, c->o, c->dq, c->dk, c->dv, c->lse, c->iq, c->ik, c->iw, c->idx,
                   c->psum, c->gd, c->beta, c->dg, c->db, c->ws};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) ops_free(gpu, all[i]);
}

/* one call of a core (pass 0: forward, 1: forward + backward; BENCH_DSA_SELECT: the selection
   alone either way); p: BENCH_PATTERN's pattern */
static void bench_core_call(Gpu *gpu, const BenchCores *c, int core, const OpsPattern *p, int pass) {
    int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd;
    if (core == BENCH_DENSE) {
        op_attention_forward(gpu, c->o, c->lse, c->q, c->kk, c->v, B, T, H, KV, hd, 0);
        if (pass) op_attention_backward(gpu, c->dq, c->dk, c->dv, c->dout, c->o, c->lse, c->q, c->kk, c->v, B, T, H, KV,
                                        hd, 0);
    } else if (core == BENCH_DSA || core == BENCH_DSA_SELECT) {
        attn_dsa_indexer_select(gpu, c->idx, c->iq, c->ik, c->iw, B, T, c->HI, c->dI, c->k, ATTN_DSA_PREC_BF16);
        if (core == BENCH_DSA_SELECT) return;
        attn_dsa_attention_forward(gpu, c->o, c->lse, c->q, c->kk, c->v, c->idx, B, T, H, c->dsa_kv, hd, c->k);
        if (pass) attn_dsa_attention_backward(gpu, c->dq, c->dk, c->dv, c->psum, c->dout, c->o, c->lse, c->q, c->kk,
                                              c->v, c->idx, B, T, H, c->dsa_kv, hd, c->k);
    } else if (core == BENCH_GDN) {
        float scale = (float)(1 / sqrt((double)hd));
        attn_gdn_chunk_forward(gpu, c->o, NULL, c->q, c->kk, c->v, H * hd, c->gd, c->beta, B, T, H, hd, scale, 64);
        if (pass) attn_gdn_chunk_backward(gpu, c->dq, c->dk, c->dv, c->dg, c->db, c->dout, c->q, c->kk, c->v, H * hd,
                                          c->gd, c->beta, B, T, H, hd, scale, 64, c->ws);
    } else {
        op_attention_pattern_forward(gpu, c->o, c->lse, c->q, c->kk, c->v, B, T, H, KV, hd, p);
        if (pass) op_attention_pattern_backward(gpu, c->dq, c->dk, c->dv, c->dout, c->o, c->lse, c->q, c->kk, c->v, B,
                                                T, H, KV, hd, p);
    }
}

/* ms per call of a core: one warm-up call (the JIT, scratch), then reps calls between syncs */
static double bench_core_ms(Gpu *gpu, const BenchCores *c, int core, const OpsPattern *p, int pass, int reps) {
    bench_core_call(gpu, c, core, p, pass);
    double t0 = bench_sync_now(gpu);
    for (int r = 0; r < reps; r++) bench_core_call(gpu, c, core, p, pass);
    return (bench_sync_now(gpu) - t0) / reps * 1e3;
}

/* The attention alternatives against dense causal flash attention, as cores (no projections):
   B*T = 65536 tokens, 16 heads of 64; DSA in DeepSeek's MQA mode (KV = 1, indexer 4 x 64,
   top-512, selection included); GDN's chunked delta rule, both organizations of its kernels
   (chunk-parallel, the default; one block per sequence and head, --tune gdn_par=0); the fixed
   patterns on W = 512. */
static void bench_mechanisms(Gpu *gpu) {
    int Ts[] = {2048, 8192, 16384}, nT = gpu ? 3 : 1, H = 16, hd = 64, HI = 4, dI = 64, topk = 512;
    printf("\nattention cores, ms per call (fwd | fwd+bwd), B*T = %d, H = %d, hd = %d; x = dense f+b / this f+b\n",
           gpu ? 65536 : 256, H, hd);
    printf("%6s | %-17s | %-17s | %-17s | %-17s | %-17s | %-17s | %-17s\n", "T", "dense causal", "dsa top-512",
           "gdn chunk-par", "W512+global64", "W512+stride2048", "W512+dilation4", "gdn 1 block/seq");
    /* the columns' cores; 3 to 5 take pats[m - 3] */
    const int cores[7] = {BENCH_DENSE, BENCH_DSA, BENCH_GDN, BENCH_PATTERN, BENCH_PATTERN, BENCH_PATTERN, BENCH_GDN};
    OpsPattern pats[3] = {{512, 64, 0, 0, 0}, {512, 0, 2048, 0, 0}, {512, 0, 0, 4, 0}};
    for (int it = 0; it < nT; it++) {
        int T = gpu ? Ts[it] : 128, reps = gpu ? (T >= 8192 ? 5 : 10) : 1;
        BenchCores c = {0};
        c.B = (gpu ? 65536 : 256) / T, c.T = T, c.H = c.KV = H, c.hd = hd;
        c.dsa_kv = 1, c.HI = HI, c.dI = dI, c.k = topk < T ? topk : T;
        bench_cores_alloc(gpu, &c, 1, 0);
        double tf[7], tb[7];
        /* columns 2 and 6: GDN's chunk-parallel kernels (the default) and the one-block-per-
           sequence ones (tuning.gdn_par, read per call; the user's own setting is restored after) */
        int par_saved = bench_gdn_par(gpu, -1);
        for (int m = 0; m < 7; m++) {
            if (m == 2 || m == 6) bench_gdn_par(gpu, GPU_TUNE_VARIANT(m == 2 ? 1 : 0));
            const OpsPattern *p = cores[m] == BENCH_PATTERN ? &pats[m - 3] : NULL;
            tf[m] = bench_core_ms(gpu, &c, cores[m], p, 0, reps);
            tb[m] = bench_core_ms(gpu, &c, cores[m], p, 1, reps);
        }
        bench_gdn_par(gpu, par_saved);
        printf("%6d |", T);
        for (int m = 0; m < 7; m++) printf(" %7.2f %7.2f  |", tf[m], tb[m]);
        printf("\n%6s | %-17s|", "", "");
        for (int m = 1; m < 7; m++) printf(" x %-15.2f|", tb[0] / tb[m]);
        printf("\n");
        bench_cores_free(gpu, &c);
    }
}

/* Gated DeltaNet's delta rule by head dim at about 1024 channels (H = 1024 / D), T 2048 (CPU:
   128), B*T = 65536 (CPU: 256): on the GPU up to 64 the tensor-core tiles (narrower heads padded
   inside them), 72..128 the wide tiles (two 64-wide blocks), above 128 three or four blocks
   (tuning gdn_wtile; with --tune gdn_wtile=0 the slower fp32 wide-head kernels; attn/gdn.cu.h);
   the last column names the kernels that ran */
static void bench_gdn_heads(Gpu *gpu) {
    static const int Ds[] = {32, 48, 64, 72, 96, 128, 192, 256};
    int T = gpu ? 2048 : 128, B = (gpu ? 65536 : 256) / T, N = B * T, reps = gpu ? 5 : 1;
    printf("\ngdn delta rule by head dim: T = %d, B = %d, H = 1024 / D; ms per call (fwd | fwd+bwd)\n%4s %4s | %-15s | %s\n",
           T, B, "D", "H", "gdn", "kernels");
    for (size_t i = 0; i < sizeof Ds / sizeof *Ds; i++) {
        int D = Ds[i], H = 1024 / D;
        size_t n = (size_t)N * H * D;
        BenchCores c = {0};
        c.B = B, c.T = T, c.H = c.KV = H, c.hd = D;
        size_t nh = (size_t)N * H;
        c.q = bench_rand_act(gpu, n, 1, 41), c.kk = bench_rand_act(gpu, n, 1, 42), c.v = bench_rand_act(gpu, n, 1, 43);
        c.dout = bench_rand_act(gpu, n, 1, 44), c.o = bench_rand_act(gpu, n, 0, 45);
        c.dq = bench_rand_act(gpu, n, 0, 46), c.dk = bench_rand_act(gpu, n, 0, 47);
        c.dv = bench_rand_act(gpu, n, 0, 48);
        c.gd = bench_fill_real(gpu, nh, -0.1, -0.01, 49), c.beta = bench_fill_real(gpu, nh, 0.2, 0.8, 50);
        c.dg = ops_alloc(gpu, nh * sizeof(ops_real)), c.db = ops_alloc(gpu, nh * sizeof(ops_real));
        c.ws = ops_alloc(gpu, attn_gdn_block_ws_elems(B, T, H, D, 64) * sizeof(ops_real));
        double tf = bench_core_ms(gpu, &c, BENCH_GDN, NULL, 0, reps);
        double tb = bench_core_ms(gpu, &c, BENCH_GDN, NULL, 1, reps);
        const char *path = "CPU reference";
#ifndef ABLATE_NO_CUDA
        if (gpu) {
            const int wt = gdn_wtile_(gpu, D, B * H);
            path = D <= 64 ? "64-wide tiles" : wt == 2 ? "wide tiles past 128" : wt ? "wide tiles"
                 : "fp32 wide-head kernels";
        }
#endif
        printf("%4d %4d | %7.2f %7.2f | %s\n", D, H, tf, tb, path);
        fflush(stdout);
        bench_cores_free(gpu, &c);
    }
}

/* DSA where DeepSeek-V3.2 uses it: T = 32768, k = 2048, 16 query heads on 1 KV head and on 4, an
   indexer of 4 heads x 64 in bf16, selection included, against dense causal attention with the
   same heads at the same T (B = 2: 65536 tokens). GPU only (the CPU would take hours). */
static void bench_dsa_long(Gpu *gpu) {
    int T = 32768, B = 2, H = 16, hd = 64, HI = 4, dI = 64, k = 2048, reps = 3, kvs[] = {1, 4};
    printf("\nDSA at long context: T = %d, B = %d, %d query heads of %d, top-%d, indexer %d x %d bf16; ms per call "
           "(fwd | fwd+bwd); x = dense f+b / dsa f+b\n%-8s | %-17s | %-17s | %s\n", T, B, H, hd, k, HI, dI, "kv heads",
           "dense causal", "dsa (+selection)", "x");
    /* the selection alone (column 2): where DSA's time goes */
    const int cores[3] = {BENCH_DENSE, BENCH_DSA, BENCH_DSA_SELECT};
    for (int ki = 0; ki < 2; ki++) {
        BenchCores c = {0};
        c.B = B, c.T = T, c.H = H, c.KV = c.dsa_kv = kvs[ki], c.hd = hd, c.HI = HI, c.dI = dI, c.k = k;
        bench_cores_alloc(gpu, &c, 0, 20);
        double tf[3], tb[3];
        for (int m = 0; m < 3; m++) {
            tf[m] = bench_core_ms(gpu, &c, cores[m], NULL, 0, reps);
            tb[m] = bench_core_ms(gpu, &c, cores[m], NULL, 1, reps);
        }
        printf("%-8d | %7.2f %7.2f   | %7.2f %7.2f   | %.2f   (of which selection %.2f ms)\n", c.KV, tf[0], tb[0],
               tf[1], tb[1], tb[0] / tb[1], tf[2]);
        bench_cores_free(gpu, &c);
    }
}

/* --dry-run: the GPU bench's shapes and FLOP counts, one `key=value` line each, without a
   device. tools/peers.py --dry-run prints the same lines for the PyTorch side, so a CPU test can
   check that both sides time the same work and count it the same way. */
/* --head-dims LIST: the attention micro-benchmark's head dims (at most 16), each checked against
   what the device runs (the GPU: attn_gpu_width_check; the CPU: even, 2..256) */
static int bench_head_dims(const char *list, int gpu, int *hds) {
    char buf[256];
    int n = 0;
    if ((size_t)snprintf(buf, sizeof buf, "%s", list) >= sizeof buf) die("bench --head-dims '%s' is too long%s", list, "");
    for (char *save = NULL, *s = strtok_r(buf, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        char err[256];
        if (n == 16) die("bench --head-dims '%s': at most 16 head dims%s", list, "");
        int hd = parse_int("--head-dims", s, 2, 256);
        if (hd % 2) die("bench --head-dims: %s must be even (RoPE rotates pairs)%s", s, "");
        if (gpu && attn_gpu_width_check("dense", "head dim", hd, err, sizeof err)) die("bench --head-dims: %s%s", err, "");
        hds[n++] = hd;
    }
    if (n == 0) die("bench --head-dims '%s': no head dim given%s", list, "");
    return n;
}

static void bench_dry_run(const char *attns, const int *hds, int nhd) {
    char list[256];
    snprintf(list, sizeof list, "%s", attns);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        for (int part = 0; part < 2; part++) {
            SmolConfig c = {0};
            char err[256];
            if (attn_kind_parse(name, &c.attn.kind))
                die("bench --attn: unknown mechanism '%s' (expected %s)", name, ATTN_KIND_LIST);
            if (c.attn.kind == ATTN_SWA) c.attn.window = 256;
            if (part) c.n_layers = 4;
            if (smollm_resolve(&c, err, sizeof err)) die("bench: %s%s", err, "");
            int B = part ? 4 : 16, T = part ? 512 : 2048;
            AttnConfig a = smollm_layer_attn(&c, 0);
            attn_resolve(&a, err, sizeof err);
            printf("train part=%s attn=%s layers=%d d=%d heads=%d kv_heads=%d ffn=%d vocab=%d theta=%.0f B=%d T=%d "
                   "flop_per_token=%.0f\n", part ? "b" : "a", name, c.n_layers, c.d_model, c.n_heads, a.n_kv_heads,
                   c.ffn_dim, c.vocab_size, (double)c.rope_theta, B, T, smollm_config_train_flops_per_token(&c, T));
        }
    }
    int Ts[] = {512, 2048, 8192}, H = 16, hd = 64;
    for (int j = 0; j < nhd; j++)
        for (int i = 0; i < 3; i++) {
            int B = 65536 / Ts[i];
            double f = bench_attn_flops(B, H, Ts[i], hds[j]);
            printf("attn hd=%d B=%d H=%d T=%d fwd_flop=%.0f fwdbwd_flop=%.0f\n", hds[j], B, H, Ts[i], f, 3.5 * f);
        }
    int Tm[] = {2048, 8192, 16384};
    for (int i = 0; i < 3; i++)
        printf("gdn B=%d H=%d T=%d hd=%d chunk=64 scale=0.125 g=[-0.1,-0.01) beta=[0.2,0.8)\n", 65536 / Tm[i], H, Tm[i],
               hd);
}

/* Generation on the CPU reference, per mechanism at a small shape (vocab 256, d_model 64, 4
   layers, 4 heads): prefill tokens/s (the prompt through the decode step, token by token),
   decode tokens/s over `gen` (64) new tokens, and the decode caches' measured bytes per sequence
   (all layers, ops_real elements: attn_decode_cache_bytes, what is allocated) and per token of
   context (the CPU; bench_decode_gpu is the GPU's). */
static void bench_decode(void) {
    static const char *mechs[] = {"mha", "gqa", "mqa", "swa", "mla", "mga", "gdn", "dsa", "hier", "identity"};
    int ctxs[] = {128, 512}, batches[] = {1, 8}, gen = 64;
    printf("\ndecode (CPU reference): 4 layers, d_model 64, 4 heads, vocab 256; swa W = 64, "
           "dsa top-64, hier W = 64 with blocks of 64\n%-9s %5s %6s %14s %14s %16s %12s\n", "mechanism", "batch", "ctx", "prefill tok/s",
           "decode tok/s", "cache B/seq", "B/token");
    for (size_t mi = 0; mi < sizeof mechs / sizeof *mechs; mi++)
        for (int ci = 0; ci < 2; ci++)
            for (int bi = 0; bi < 2; bi++) {
                SmolConfig cfg = {0};
                cfg.vocab_size = 256; cfg.d_model = 64; cfg.n_layers = 4; cfg.n_heads = 4;
                attn_kind_parse(mechs[mi], &cfg.attn.kind);
                if (cfg.attn.kind == ATTN_SWA || cfg.attn.kind == ATTN_HIER) cfg.attn.window = 64;
                if (cfg.attn.kind == ATTN_DSA) cfg.attn.topk = 64;
                int B = batches[bi], T = ctxs[ci];
                SmolModel m;
                SmolGen g;
                char err[512];
                if (smollm_init(&m, &cfg, NULL, 1, 1, err, sizeof err)) die("bench decode: %s%s", err, "");
                if (smollm_gen_init(&g, &m, B, T + gen, err, sizeof err)) die("bench decode: %s%s", err, "");
                int *tok = malloc(sizeof(int) * B * T);
                if (!tok) die("bench decode: out of host memory%s%s", "", "");
                for (int i = 0; i < B * T; i++) tok[i] = (i * 7919 + 13) % 256;
                double t0 = train_now();
                if (smollm_prefill(&g, &m, tok, T, err, sizeof err)) die("bench decode: %s%s", err, "");
                double t1 = train_now();
                for (int s = 0; s < gen; s++) {
                    for (int b = 0; b < B; b++) tok[b] = smollm_sample(g.logits + (size_t)b * 256, 256, NULL, NULL);
                    if (smollm_decode_step(&g, &m, tok, err, sizeof err)) die("bench decode: %s%s", err, "");
                }
                double t2 = train_now();
                size_t per_seq = smollm_cache_bytes(&m, T + gen);
                printf("%-9s %5d %6d %14.0f %14.0f %16zu %12.1f\n", mechs[mi], B, T, B * T / (t1 - t0),
                       B * gen / (t2 - t1), per_seq, (double)per_seq / (T + gen));
                free(tok);
                smollm_gen_free(&g);
                smollm_free(&m);
            }
}

/* one row of the GPU decode table: a fresh model of cfg (random weights), study_decode_bench */
static void bench_decode_gpu_row(Gpu *gpu, const char *label, const SmolConfig *cfg, int B, int ctx, int gen) {
    SmolModel m;
    StudyDecodeBench r;
    char err[512];
    if (smollm_init(&m, cfg, gpu, 1, 1, err, sizeof err)) die("bench decode: %s%s", err, "");
    char name[64]; /* the label, marked when the steps took the fused or persistent kernels (tuning dec_fused) */
    if (study_decode_bench(&m, B, ctx - gen, gen, &r, err, sizeof err))
        printf("%-22s %5d %6d  failed: %s\n", label, B, ctx, err);
    else
        printf("%-22s %5d %6d %14.0f %14.0f %16zu %12.1f\n",
               (snprintf(name, sizeof name, "%s%s", label, r.fused == 2 ? " persistent" : r.fused ? " fused" : ""), name),
               B, ctx, r.prefill_tps,
               r.decode_tps, r.cache_bytes, (double)r.cache_bytes / ctx);
    fflush(stdout);
    smollm_free(&m);
}

/* Generation on the GPU: per mechanism of bench_decode's list at the SmolLM2-135M shape (30
   layers, d_model 576, 9 heads, ffn 1536, vocab 49152; random weights), batch 1 and 32, contexts
   512, 4096, 32768 (prompt = context - 32 new tokens, greedy), after the anchor rows (each batch
   with the step of separate kernels, then with the fused step: tuning dec_fused 0 and 1, then
   batch 1 and 8 with the persistent step, dec_fused 2; the mechanism rows take the caller's
   dec_fused, "fused" or "persistent" marking a row whose steps took it). A
   mechanism without GPU decode kernels prints its refusal once. */
static void bench_decode_gpu(Gpu *gpu) {
    static const char *mechs[] = {"mha", "gqa", "mqa", "swa", "mla", "mga", "gdn", "dsa", "hier", "identity"};
    int ctxs[] = {512, 4096, 32768}, batches[] = {1, 32}, gen = 32;
    printf("\ndecode (GPU): SmolLM2-135M shape (30 layers, d_model 576, 9 heads, ffn 1536, vocab 49152), random "
           "weights, greedy; context = prompt + %d new tokens (decode timed over the last %d, after warm-up and "
           "graph capture); swa and hier W = 1024 (hier: blocks of 64), dsa top-2048\n%-22s %5s %6s %14s %14s %16s %12s\n", gen, gen - 2, "mechanism",
           "batch", "ctx", "prefill tok/s", "decode tok/s", "cache B/seq", "B/token");
    /* first, the anchor: SmolLM2-135M GQA (3 KV heads), prompt 512, 256 new tokens */
    SmolConfig anchor = {0};
    anchor.vocab_size = 49152;
    anchor.attn.kind = ATTN_GQA;
    anchor.attn.n_kv_heads = 3;
    printf("anchor: SmolLM2-135M GQA, prompt 512 + 256 new tokens (ctx 768): the step of separate kernels, then "
           "the fused step (tuning dec_fused=1), then the persistent step at batch 1 and 8 (dec_fused=2); the "
           "mechanism rows below take --tune's dec_fused\n");
#ifndef ABLATE_NO_CUDA
    int user_fused = gpu->tuning.dec_fused;
    for (int f = 0; f < 2; f++) {
        gpu->tuning.dec_fused = f;
        for (int bi = 0; bi < 2; bi++) bench_decode_gpu_row(gpu, "anchor 135M gqa", &anchor, batches[bi], 768, 256);
    }
    gpu->tuning.dec_fused = 2; /* the persistent step: batches of at most PZ_MAX_B */
    bench_decode_gpu_row(gpu, "anchor 135M gqa", &anchor, 1, 768, 256);
    bench_decode_gpu_row(gpu, "anchor 135M gqa", &anchor, PZ_MAX_B, 768, 256);
    gpu->tuning.dec_fused = user_fused;
#else
    (void)anchor; /* the CPU build never calls this (no GPU) */
#endif
#ifndef ABLATE_NO_CUDA
    const GpuTuning *tune = &gpu->tuning; /* --tune dec_prefill: the rooms' forward prefills or not */
#else
    const GpuTuning *tune = NULL;
#endif
    for (size_t mi = 0; mi < sizeof mechs / sizeof *mechs; mi++) {
        SmolConfig cfg = {0};
        cfg.vocab_size = 49152;
        attn_kind_parse(mechs[mi], &cfg.attn.kind);
        if (cfg.attn.kind == ATTN_SWA || cfg.attn.kind == ATTN_HIER) cfg.attn.window = 1024;
        if (cfg.attn.kind == ATTN_DSA) cfg.attn.topk = 2048;
        SmolConfig probe = cfg;
        char err[512];
        int refused = smollm_resolve(&probe, err, sizeof err), tokenwise = 0;
        for (int l = 0; l < probe.n_layers && !refused; l++) {
            AttnConfig a = smollm_layer_attn(&probe, l);
            refused = attn_resolve(&a, err, sizeof err) || attn_gpu_decode_supported(&a, err, sizeof err);
            if (!refused && !attn_gpu_prefill_whole(tune, &a, ctxs[2])) tokenwise = 1;
        }
        if (refused) {
            printf("%-22s skipped: %s\n", mechs[mi], err);
            continue;
        }
        /* a room whose prefill is not its forward (attn_gpu_prefill_whole: gdn unless --tune
           dec_prefill=1, hier, dsa with k past the forward's limit, every room under --tune
           dec_prefill=0) fills its cache one decode step per prompt token: the longer contexts
           would time that loop for minutes, so they are left out */
        if (tokenwise)
            printf("%-22s (prefill one decode step per prompt token: context 512 only)\n", mechs[mi]);
        for (int ci = 0; ci < (tokenwise ? 1 : 3); ci++)
            for (int bi = 0; bi < 2; bi++) bench_decode_gpu_row(gpu, mechs[mi], &cfg, batches[bi], ctxs[ci], gen);
    }
}

/* ---- ablate bench --gpus N: data-parallel scaling of the (a) shape (SmolLM2-135M, 16 x 2048
   per GPU): 1, 2, 4, ... N ranks (dist_spawn, NCCL), each timing `steps` steps after 2 warm-up
   ones; rank 0 hands tokens/s (all ranks' tokens / mean step time) to the parent through a
   shared page. Scaling efficiency = tok/s on W GPUs / (W x tok/s on 1). Each W runs twice: the
   gradients summed once after the backward, and in 25 MB buckets during it (train.h's GRADIENT
   BUCKETS, PyTorch DDP's default bucket size) */
typedef struct { const Tune *tn; int steps; float bucket_mb; double *tps; char *why; /* 1024 bytes */ } BenchDp;

static int bench_dp_rank(DistComm *c, void *ctx) {
    BenchDp *x = ctx;
#ifndef ABLATE_NO_CUDA
    Gpu *gpu = calloc(1, sizeof *gpu);
    if (!gpu || gpu_init(gpu, c->rank)) {
        snprintf(x->why, 1024, "rank %d: GPU %d cannot be used: %s", c->rank, c->rank, gpu ? gpu->err : "out of host memory");
        return 2;
    }
    apply_tuning(gpu, x->tn);
    if (dist_nccl_init(c, gpu->stream)) { snprintf(x->why, 1024, "%s", c->err); return 2; }
    SmolConfig mc = {0}; /* zero: the SmolLM2-135M shape */
    int B = 16, T = 2048;
    char err[256];
    SmolModel m;
    if (smollm_init(&m, &mc, gpu, B, T, err, sizeof err)) { snprintf(x->why, 1024, "rank %d: %s", c->rank, err); return 2; }
    TrainConfig tc = {0};
    tc.steps = x->steps + 2;
    tc.dist = c;
    tc.grad_bucket_mb = x->bucket_mb;
    TrainState tr;
    if (train_init(&tr, &m, &tc)) { snprintf(x->why, 1024, "rank %d: out of memory for the optimizer", c->rank); return 2; }
    int shape[3] = {B * c->world * T, m.cfg.vocab_size, 1}; /* the whole micro-batch of all ranks */
    double ts = 0;
    for (int s = 0; s < x->steps + 2; s++) {
        TrainStats st = train_step(&tr, random_batch, shape);
        if (st.failed) { snprintf(x->why, 1024, "rank %d: step %d failed: %s", c->rank, s + 1, c->err); return 2; }
        if (s >= 2) ts += st.seconds; /* the mean over ranks (train.h): every rank agrees */
    }
    if (c->rank == 0) *x->tps = (double)B * c->world * T * x->steps / ts;
    train_free(&tr);
    smollm_free(&m);
    dist_nccl_close(c);
    study_close_device(gpu);
    return 0;
#else
    (void)c; (void)x;
    return 2;
#endif
}

static int bench_dp(int gpus, int steps, const Tune *tn) {
#ifdef ABLATE_NO_CUDA
    (void)gpus; (void)steps; (void)tn;
    (void)bench_dp_rank;
    fprintf(stderr, "ablate bench --gpus: this is the CPU-only build (built without -DABLATE_CUDA)\n");
    return 2;
#else
    /* a shared page: the ranks are forked processes */
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) { fprintf(stderr, "ablate bench: cannot map a shared page: %s\n", strerror(errno)); return 2; }
    setenv("NCCL_NVLS_ENABLE", "0", 1); /* NVLink multicast: not supported on the machines here */
    printf("data-parallel training, (a) SmolLM2-135M shape, 16 x 2048 tokens per GPU, %d timed steps\n", steps);
    printf("%5s %-22s %12s %12s %11s\n", "GPUs", "gradient sum", "tok/s", "tok/s/GPU", "efficiency");
    double one[2] = {0, 0};
    int rc = 0;
    for (int w = 1; w <= gpus && !rc; w = w * 2 > gpus && w < gpus ? gpus : w * 2)
        for (int k = 0; k < 2 && !rc; k++) {
            BenchDp x = {tn, steps, k ? 25.0f : 0.0f, (double *)page, page + 64};
            char err[300];
            *x.tps = 0;
            x.why[0] = 0;
            if (dist_spawn(w, bench_dp_rank, &x, err, sizeof err)) {
                fprintf(stderr, "ablate bench --gpus: %s%s%s\n", err, x.why[0] ? ": " : "", x.why);
                rc = 2;
                break;
            }
            if (w == 1) one[k] = *x.tps;
            printf("%5d %-22s %12.0f %12.0f %10.1f%%\n", w, k ? "25 MB buckets, overlap" : "after the backward",
                   *x.tps, *x.tps / w, 100 * *x.tps / (w * one[k]));
            fflush(stdout);
        }
    munmap(page, 4096);
    return rc;
#endif
}

static int cmd_bench(int argc, char **argv, const Tune *tn) {
    const char *device = NULL, *only = NULL, *attns = "gqa", *sched = NULL, *head_dims = "64";
    int steps = 5, profile = 0, nondet = 0, dry = 0, dp_gpus = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--gpus") && i + 1 < argc) { /* data-parallel scaling: its own table */
            dp_gpus = parse_int("--gpus", argv[++i], 1, DIST_MAX_WORLD);
            continue;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: ablate bench [--device cpu|cuda] [--only train|attn|mech|decode] [--steps N] [--profile]\n"
                 "                    [--attn NAME[,NAME..]] [--attn-layers SCHEDULE] [--head-dims HD[,HD..]]\n"
                 "                    [--nondeterministic] [--dry-run]\n"
                 "Times training of (a) the SmolLM2-135M shape (30 layers, GQA 3 KV heads, batch 16 x seq 2048)\n"
                 "and (b) a small configuration (4 layers, seq 512, batch 4, same width), printing tokens/s,\n"
                 "model TFLOP/s, MFU against 989 TFLOP/s (H100 dense bf16), peak device memory, step time and\n"
                 "the time to the end of the first step (JIT included; a line below each says how much was\n"
                 "compiling and how many kernel modules were compiled, loaded from --kernel-cache or already\n"
                 "in memory); then the attention kernel alone\n"
                 "(head dim 64, causal, T = 512, 2048, 8192), forward and forward+backward, one row per\n"
                 "--head-dims width (default 64; on the GPU multiples of 8 from 32 to 256: widths that are\n"
                 "not a multiple of 16 run padded tiles, and TFLOP/s counts the real head dim, so the padding\n"
                 "shows as cost); then the\n"
                 "alternatives as cores against dense causal attention at T = 2048, 8192, 16384 (mech):\n"
                 "DSA top-512 with its indexer, Gated DeltaNet's chunked delta rule (both kernel\n"
                 "organizations: the default chunk-parallel one and --tune gdn_par=0's), the fixed patterns;\n"
                 "Gated DeltaNet's delta rule by head dim (32 to 256 at about 1024 channels, each row naming\n"
                 "the kernels that ran; --tune gdn_wtile=0 times the fp32 ones);\n"
                 "on the GPU also DSA at T = 32768 with k = 2048 (1 and 4 KV heads) against dense.\n"
                 "Then generation per mechanism (decode): prefill and decode tokens/s and the decode caches'\n"
                 "measured bytes per sequence and per token; on the GPU at the SmolLM2-135M shape, batch 1 and\n"
                 "32, contexts 512, 4096 and 32768 (a mechanism without GPU decode kernels is listed as\n"
                 "skipped, with the reason), after the anchor rows (135M GQA, prompt 512 + 256 new tokens;\n"
                 "each batch with the step of separate kernels and with the fused one, --tune dec_fused=1's,\n"
                 "marked \"fused\", then batch 1 and 8 with the persistent one, dec_fused=2's, marked\n"
                 "\"persistent\"; the mechanism rows take --tune's dec_fused, default 0);\n"
                 "on the CPU the reference at a small shape (batch 1 and 8, contexts 128 and 512).\n"
                 "On the CPU the shapes shrink (they would take hours). --profile adds, per training\n"
                 "configuration, one step timed op by op (GPU time per op).\n"
                 "--attn times the training shapes once per mechanism (default gqa; e.g. --attn gqa,mla\n"
                 "compares them in one run); --attn-layers times one per-layer schedule instead.\n"
                 "GPU numerics are bit-reproducible by default (fixed-order reductions, GEMM algorithms\n"
                 "chosen without timing); --nondeterministic times the faster order-dependent variants\n"
                 "(fp32 atomics, timed GEMM choice) instead, to measure what reproducibility costs.\n"
                 "--dry-run times nothing and opens no device: it prints the GPU shapes and the FLOP\n"
                 "counts behind TFLOP/s, one key=value line each (tools/peers.py --dry-run prints the\n"
                 "same lines for the PyTorch side of the comparison, tools/bench_peers.sh).\n"
                 "--gpus N times data-parallel training of (a) alone, 16 x 2048 tokens per GPU, on 1, 2,\n"
                 "4, ... N GPUs (one rank each, NCCL): tokens/s, per GPU, and the scaling efficiency\n"
                 "(tokens/s on W GPUs / (W x tokens/s on 1)), each W with the gradients summed after the\n"
                 "backward and in 25 MB buckets during it (--grad-bucket-mb); CUDA build.");
            tune_help();
            return 0;
        }
        if (!strcmp(argv[i], "--device") && i + 1 < argc) check_device(device = argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            only = argv[++i];
            if (strcmp(only, "train") && strcmp(only, "attn") && strcmp(only, "mech") && strcmp(only, "decode"))
                die("bench --only: unknown part '%s'%s: expected train, attn, mech or decode", only, "");
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = parse_int("--steps", argv[++i], 1, 1000000);
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--nondeterministic")) nondet = 1;
        else if (!strcmp(argv[i], "--dry-run")) dry = 1;
        else if (!strcmp(argv[i], "--attn") && i + 1 < argc) attns = argv[++i];
        else if (!strcmp(argv[i], "--attn-layers") && i + 1 < argc) sched = argv[++i];
        else if (!strcmp(argv[i], "--head-dims") && i + 1 < argc) head_dims = argv[++i];
        else die("unknown argument '%s'%s (see ablate bench --help)", argv[i], "");
    }
    if (dp_gpus) return bench_dp(dp_gpus, steps, tn);
    int hds[16], nhd = bench_head_dims(head_dims, dry || (device && strcmp(device, "cpu")), hds);
    if (dry) {
        if (sched) die("bench --dry-run: --attn-layers '%s' is not counted%s: name mechanisms with --attn", sched, "");
        bench_dry_run(attns, hds, nhd);
        return 0;
    }
    Gpu *gpu = open_device(device, tn);
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu->nondeterministic = nondet;
#endif
    if (gpu) printf("numerics: %s\n", nondet ? "nondeterministic (order-dependent fp32 atomics, timed GEMM choice)"
                                             : "bit-reproducible (the default)");
    if (!only || !strcmp(only, "train")) {
        printf("%-40s %10s %9s %9s %9s %10s %8s\n", "training", "tok/s", "TFLOP/s", "MFU", "peak GB", "step ms",
               "1st s");
        /* one pass per mechanism of --attn (or one for the --attn-layers schedule) */
        char list[256];
        snprintf(list, sizeof list, "%s", sched ? "schedule" : attns);
        for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
            SmolConfig big = {0}, small = {0};
            char what[64], la[96], lb[96], err[256];
            if (sched) {
                if ((size_t)snprintf(big.attn_layers, sizeof big.attn_layers, "%s", sched) >= sizeof big.attn_layers)
                    die("--attn-layers '%s' is too long (at most %s characters)", sched, "255");
                snprintf(small.attn_layers, sizeof small.attn_layers, "%s", sched);
                snprintf(what, sizeof what, "%.40s", sched);
            } else {
                if (attn_kind_parse(name, &big.attn.kind))
                    die("bench --attn: unknown mechanism '%s' (expected %s)", name, ATTN_KIND_LIST);
                small.attn.kind = big.attn.kind;
                if (big.attn.kind == ATTN_SWA) big.attn.window = small.attn.window = 256; /* swa needs a window */
                snprintf(what, sizeof what, "%s", name);
            }
            SmolConfig probe = big;
            if (smollm_resolve(&probe, err, sizeof err)) die("bench: %s%s", err, "");
            if (gpu) {
                for (int l = 0; l < probe.n_layers; l++) {
                    AttnConfig a = smollm_layer_attn(&probe, l);
                    attn_resolve(&a, err, sizeof err);
                    if (attn_gpu_supported(&a, err, sizeof err)) die("bench: %s%s", err, "");
                }
                small.n_layers = 4;
                snprintf(la, sizeof la, "(a) 135M %s, 16 x 2048", what);
                snprintf(lb, sizeof lb, "(b) 4 layers %s, 4 x 512", what);
                bench_training(gpu, la, big, 16, 2048, steps, profile);
                bench_training(gpu, lb, small, 4, 512, steps * 4, profile);
            } else {
                small.vocab_size = 256; small.n_layers = 2; small.d_model = 64; small.n_heads = 4;
                snprintf(lb, sizeof lb, "(cpu) 2 layers d64 %s, 8 x 64", what);
                bench_training(gpu, lb, small, 8, 64, steps, 0);
            }
        }
    }
    if (!only || !strcmp(only, "attn")) {
        int Ts[] = {512, 2048, 8192};
        if (gpu) bench_head_dims(head_dims, 1, hds); /* the device is known now: its rule */
        for (int j = 0; j < nhd; j++)
            for (int i = 0; i < (gpu ? 3 : 1); i++) bench_attention(gpu, gpu ? Ts[i] : 128, hds[j], gpu ? 20 : 1);
    }
    if (!only || !strcmp(only, "mech")) {
        bench_mechanisms(gpu);
        bench_gdn_heads(gpu);
        if (gpu) bench_dsa_long(gpu);
    }
    if (!only || !strcmp(only, "decode")) {
        if (gpu) bench_decode_gpu(gpu);
        else bench_decode();
    }
    return 0;
}

/* ---- ablate tokenize, ablate tokenizer: the data commands (argv[0] is the command); they use
   data.h's internals (data_read_file, data_regular), visible here as the implementation is in
   this file ---- */

static double tok_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void tok_progress(const char *what, double done, double total, double t0) {
    if (!isatty(2)) return; /* a bar is for people; logs get the summary line */
    double el = tok_now() - t0, frac = total > 0 ? done / total : 1;
    int w = 30, k = (int)(frac * w);
    char bar[40];
    for (int i = 0; i < w; i++) bar[i] = i < k ? '#' : '.';
    bar[w] = 0;
    double rate = el > 0 ? done / el / 1e6 : 0;
    fprintf(stderr, "\r%s [%s] %5.1f%% %7.2f MB/s, ETA %4.0fs ", what, bar, 100 * frac, rate,
            rate > 0 ? (total - done) / 1e6 / rate : 0);
    fflush(stderr);
}

/* can text be cut before buf[e] without changing its pre-tokens? yes after a lone newline
   between two non-space characters: the newline is a pre-token of its own either way */
static int tok_safe_cut(const unsigned char *buf, size_t e) {
    return buf[e - 1] == '\n' && buf[e - 2] > ' ' && buf[e - 2] < 0x80 && buf[e] > ' ' && buf[e] < 0x80;
}

/* the tokenizer named on the command line: "byte" or a tokenizer.json */
static DataTokenizer *tok_tokenizer_open(const char *name, int *byte_level, char *err, size_t errlen) {
    *byte_level = !strcmp(name, "byte");
    return *byte_level ? NULL : data_tok_load(name, err, errlen);
}

/* DIR/tokenizer.json: a byte copy of the tokenizer used (src), or for byte-level tokens a
   tokenizer.json of the 256 bytes and no merges (plus <|endoftext|>, which byte shards never
   hold), so that ids decode to their bytes; written to dst.tmp, then renamed */
static int tok_copy_tokenizer(const char *src, const char *dst, char *err, size_t errlen) {
    struct stat a, b;
    if (src && !stat(src, &a) && !stat(dst, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return 0; /* itself */
    if (!src) {
        DataTokenizer *t = data_tok_train((const unsigned char *)"", 0, 257, err, errlen);
        int rc = !t || data_tok_save(t, dst, err, errlen) ? -1 : 0;
        data_tok_free(t);
        return rc;
    }
    size_t n;
    unsigned char *buf = data_read_file(src, &n, err, errlen);
    if (!buf) return -1;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(buf, 1, n, f) == n;
    ok = (f && fclose(f) == 0) && ok;
    free(buf);
    if (!ok || rename(tmp, dst)) {
        remove(tmp);
        snprintf(err, errlen, "cannot write %.500s", dst);
        return -1;
    }
    return 0;
}

/* a number flag of the data commands in [lo, hi] ((lo, hi) when open; whole when integer); 0 ok,
   else -1 and a message naming the flag, the value and the range on stderr */
static int tok_num(const char *cmd, const char *flag, const char *v, double lo, double hi, int open, int integer,
                        double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    int in = open ? x > lo && x < hi : x >= lo && x <= hi;
    if (errno || end == v || *end || !in || (integer && x != floor(x))) {
        fprintf(stderr, "ablate %s: %s expects %s in %s%.10g, %.10g%s, got '%s'\n", cmd, flag,
                integer ? "an integer" : "a number", open ? "(" : "[", lo, hi, open ? ")" : "]", v);
        return -1;
    }
    *out = x;
    return 0;
}

/* the .bin shards already in DIR: *count of them, the first name in first */
static int tok_old_shards(const char *dir, char *first, size_t n) {
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *e;
    first[0] = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".bin")) continue;
        if (!count++) snprintf(first, n, "%s", e->d_name);
    }
    if (d) closedir(d);
    return count;
}

/* removes DIR's *.bin shards (tokenize --force): --data DIR reads every one of them */
static int tok_remove_shards(const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".bin")) continue;
        char path[1100];
        snprintf(path, sizeof path, "%.500s/%.500s", dir, e->d_name);
        if (remove(path)) { snprintf(err, errlen, "cannot remove the old shard %.500s", path); rc = -1; break; }
    }
    if (d) closedir(d);
    return rc;
}

static int tok_tokenize(int argc, char **argv) {
    const char *tok = NULL, *out = NULL;
    double val_frac = 0.1;
    long shard = 100000000;
    int nfiles = 0, force = 0;
    double x;
    char **files = calloc(argc + 1, sizeof *files), err[600];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: ablate tokenize --tokenizer T --out DIR [--val-frac X] [--shard-tokens N] [--force] FILES...\n"
                 "Tokenizes text files with T (a tokenizer.json, or 'byte' for byte-level) into llm.c-format\n"
                 "shards DIR/train_NNNNNN.bin and DIR/val_000000.bin (the last X of every file, default 0.1),\n"
                 "each file ending with <|endoftext|> when the tokenizer has it; shards hold at most N\n"
                 "tokens (default 100M). Copies T to DIR/tokenizer.json (for 'byte', writes a byte-level one),\n"
                 "so the shards carry their tokenizer (bits per byte need it). --data DIR then trains on them.\n"
                 "Every file gives at least one validation token (a file of fewer than 2 tokens is refused).\n"
                 "A DIR that already holds .bin shards is refused (--data DIR would train on old and new\n"
                 "together); --force removes them first. FILES must be regular files.");
            free(files);
            return 0;
        }
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--val-frac") && i + 1 < argc) {
            if (tok_num("tokenize", "--val-frac", argv[++i], 0, 1, 1, 0, &val_frac)) { free(files); return 2; }
        } else if (!strcmp(argv[i], "--shard-tokens") && i + 1 < argc) {
            if (tok_num("tokenize", "--shard-tokens", argv[++i], 1, INT32_MAX, 0, 1, &x)) { free(files); return 2; }
            shard = (long)x;
        } else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] == '-') { fprintf(stderr, "ablate tokenize: unknown flag '%s' (see --help)\n", argv[i]); free(files); return 2; }
        else files[nfiles++] = argv[i];
    }
    if (!tok || !out || !nfiles || !(val_frac > 0 && val_frac < 1) || shard < 1 || shard > INT32_MAX) {
        fprintf(stderr, "ablate tokenize: needs --tokenizer, --out and FILES; --val-frac in (0,1), --shard-tokens >= 1\n");
        free(files);
        return 2;
    }
    int byte_level, rc = 0;
    DataTokenizer *t = tok_tokenizer_open(tok, &byte_level, err, sizeof err);
    if (!t && !byte_level) { fprintf(stderr, "ablate tokenize: %s\n", err); free(files); return 2; }
    int vocab = byte_level ? DATA_BYTE_VOCAB : data_tok_vocab(t), eot = byte_level ? -1 : data_tok_id(t, "<|endoftext|>");
    double total = 0, done = 0, t0 = tok_now();
    for (int i = 0; i < nfiles; i++) { /* every input checked before anything is written */
        struct stat st;
        if (data_regular("data file", files[i], err, sizeof err) || stat(files[i], &st)) {
            fprintf(stderr, "ablate tokenize: %s\n", err);
            rc = 2;
            goto end;
        }
        total += (double)st.st_size;
    }
    char old[256];
    int n_old = tok_old_shards(out, old, sizeof old);
    if (n_old && !force) {
        fprintf(stderr, "ablate tokenize: %s already holds %d .bin shard(s) (%s, ...): --data %s would mix them with "
                "the new ones; remove them or pass --force to have tokenize remove them\n", out, n_old, old, out);
        rc = 2;
        goto end;
    }
    if (n_old && tok_remove_shards(out, err, sizeof err)) { fprintf(stderr, "ablate tokenize: %s\n", err); rc = 2; goto end; }
    mkdir(out, 0755);
    int *train = NULL, *val = NULL;
    size_t ntrain = 0, nval = 0, captrain = 0, capval = 0;
    int nshard = 0;
    for (int i = 0; i < nfiles && !rc; i++) {
        size_t n;
        unsigned char *buf = data_read_file(files[i], &n, err, sizeof err);
        if (!buf) { fprintf(stderr, "ablate tokenize: %s\n", err); rc = 2; break; }
        if (n == 0) { fprintf(stderr, "ablate tokenize: data file %s is empty\n", files[i]); free(buf); rc = 2; break; }
        int *ids = malloc(sizeof(int) * (byte_level ? n + 1 : data_tok_max_ids(t, n)));
        size_t k = 0;
        if (!ids) { free(buf); rc = 2; break; }
        for (size_t off = 0; off < n;) { /* in 1 MB blocks, for the progress bar */
            size_t e = off + (1 << 20) < n ? off + (1 << 20) : n;
            while (e < n && e > off + 2 && !tok_safe_cut(buf, e)) e--;
            if (e < n && !tok_safe_cut(buf, e)) e = n; /* no safe cut: the rest in one piece */
            k += byte_level ? data_byte_encode(buf + off, e - off, ids + k) : data_tok_encode(t, buf + off, e - off, ids + k);
            done += (double)(e - off);
            off = e;
            tok_progress("tokenize", done, total, t0);
        }
        if (eot >= 0) ids[k++] = eot;
        free(buf);
        if (k < 2) { /* no split of one token gives both a train and a validation part */
            fprintf(stderr, "ablate tokenize: data file %s gives %zu token(s); a train and a validation part need "
                    "at least 2\n", files[i], k);
            free(ids);
            rc = 2;
            break;
        }
        size_t nv = (size_t)(k * val_frac), nt;
        if (nv < 1) nv = 1; /* every file keeps a validation tail, however short */
        nt = k - nv;
        if (ntrain + nt > captrain) { captrain = 2 * (ntrain + nt); int *p = realloc(train, sizeof *p * captrain); if (!p) { rc = 2; free(ids); break; } train = p; }
        if (nval + nv > capval) { capval = 2 * (nval + nv) + 1; int *p = realloc(val, sizeof *p * capval); if (!p) { rc = 2; free(ids); break; } val = p; }
        if (nt) memcpy(train + ntrain, ids, sizeof(int) * nt);
        memcpy(val + nval, ids + nt, sizeof(int) * nv);
        ntrain += nt;
        nval += nv;
        free(ids);
        while (ntrain >= (size_t)shard) { /* full shards as they fill */
            char path[1024];
            snprintf(path, sizeof path, "%s/train_%06d.bin", out, nshard++);
            if (data_shard_write(path, train, shard, vocab, err, sizeof err)) { fprintf(stderr, "\nablate tokenize: %s\n", err); rc = 2; break; }
            memmove(train, train + shard, sizeof(int) * (ntrain - shard));
            ntrain -= shard;
        }
    }
    if (isatty(2)) fprintf(stderr, "\n");
    if (!rc && ntrain) {
        char path[1024];
        snprintf(path, sizeof path, "%s/train_%06d.bin", out, nshard++);
        if (data_shard_write(path, train, ntrain, vocab, err, sizeof err)) { fprintf(stderr, "ablate tokenize: %s\n", err); rc = 2; }
    }
    if (!rc && nval) {
        char path[1024];
        snprintf(path, sizeof path, "%s/val_000000.bin", out);
        if (data_shard_write(path, val, nval, vocab, err, sizeof err)) { fprintf(stderr, "ablate tokenize: %s\n", err); rc = 2; }
    }
    if (!rc) { /* the shards carry their tokenizer: bits per byte and decoding read it there */
        char path[1024];
        snprintf(path, sizeof path, "%s/tokenizer.json", out);
        if (tok_copy_tokenizer(byte_level ? NULL : tok, path, err, sizeof err)) {
            fprintf(stderr, "ablate tokenize: %s\n", err);
            rc = 1;
        }
    }
    if (!rc) {
        double el = tok_now() - t0;
        printf("%s: %d train shard(s), %zu validation tokens, vocabulary %d; %.1f MB in %.1f s (%.0f MB/min)\n", out,
               nshard, nval, vocab, total / 1e6, el, el > 0 ? total / 1e6 / el * 60 : 0);
    }
    free(train);
    free(val);
end:
    data_tok_free(t);
    free(files);
    return rc;
}

static int tok_tokenizer(int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "train")) {
        int vocab = 0, nfiles = 0;
        const char *out = NULL;
        char **files = calloc(argc + 1, sizeof *files), err[600];
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--vocab") && i + 1 < argc) {
                double x;
                if (tok_num("tokenizer train", "--vocab", argv[++i], 257, DATA_MAX_VOCAB, 0, 1, &x)) { free(files); return 2; }
                vocab = (int)x;
            }
            else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
            else if (argv[i][0] == '-') { fprintf(stderr, "ablate tokenizer train: unknown flag '%s'\n", argv[i]); free(files); return 2; }
            else files[nfiles++] = argv[i];
        }
        if (!vocab || !out || !nfiles) {
            fprintf(stderr, "usage: ablate tokenizer train --vocab N --out tok.json FILES...\n");
            free(files);
            return 2;
        }
        unsigned char *all = NULL;
        size_t n = 0;
        for (int i = 0; i < nfiles; i++) {
            size_t l;
            unsigned char *b = data_read_file(files[i], &l, err, sizeof err);
            unsigned char *na = b ? realloc(all, n + l + 1) : NULL;
            if (!na) { fprintf(stderr, "ablate tokenizer train: %s\n", b ? "out of memory" : err); free(b); free(all); free(files); return 2; }
            all = na;
            memcpy(all + n, b, l);
            n += l;
            free(b);
        }
        free(files);
        double t0 = tok_now();
        DataTokenizer *t = data_tok_train(all, n, vocab, err, sizeof err);
        free(all);
        if (!t || data_tok_save(t, out, err, sizeof err)) {
            fprintf(stderr, "ablate tokenizer train: %s\n", err);
            data_tok_free(t);
            return 2;
        }
        printf("%s: vocabulary %d (%d merges) from %.1f MB in %.1f s\n", out, data_tok_vocab(t), t->n_merges, n / 1e6,
               tok_now() - t0);
        data_tok_free(t);
        return 0;
    }
    if (!strcmp(sub, "encode") || !strcmp(sub, "bench")) {
        if (argc != 4) { fprintf(stderr, "usage: ablate tokenizer %s tok.json FILE\n", sub); return 2; }
        char err[600];
        DataTokenizer *t = data_tok_load(argv[2], err, sizeof err);
        if (!t) { fprintf(stderr, "ablate tokenizer: %s\n", err); return 2; }
        size_t n;
        unsigned char *buf = data_read_file(argv[3], &n, err, sizeof err);
        int *ids = buf ? malloc(sizeof(int) * data_tok_max_ids(t, n)) : NULL;
        if (!ids) { fprintf(stderr, "ablate tokenizer: %s\n", buf ? "out of memory" : err); free(buf); data_tok_free(t); return 2; }
        double t0 = tok_now();
        size_t k = data_tok_encode(t, buf, n, ids);
        double el = tok_now() - t0;
        int rc = 0;
        if (!strcmp(sub, "encode")) {
            for (size_t i = 0; i < k; i++) printf("%d%c", ids[i], i + 1 == k ? '\n' : ' ');
        } else {
            unsigned char *back = malloc(n + 1);
            size_t m = back ? data_tok_decode(t, ids, k, back, n) : 0;
            int same = back && m == n && !memcmp(back, buf, n);
            printf("%s: %.2f MB -> %zu tokens (%.2f bytes/token) in %.2f s: %.1f MB/min on one core; round trip %s\n",
                   argv[3], n / 1e6, k, k ? (double)n / k : 0, el, el > 0 ? n / 1e6 / el * 60 : 0, same ? "ok" : "FAILED");
            rc = !same;
            free(back);
        }
        free(ids);
        free(buf);
        data_tok_free(t);
        return rc;
    }
    puts("usage: ablate tokenizer train --vocab N --out tok.json FILES...   learn byte-level BPE merges\n"
         "       ablate tokenizer encode tok.json FILE                      print the token ids of FILE\n"
         "       ablate tokenizer bench tok.json FILE                       encoding speed and round trip");
    return !strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help") ? 0 : 2;
}

static int cmd_data(int argc, char **argv) {
    if (!strcmp(argv[0], "tokenize")) return tok_tokenize(argc, argv);
    if (!strcmp(argv[0], "tokenizer")) return tok_tokenizer(argc, argv);
    fprintf(stderr, "ablate: unknown data command '%s'\n", argv[0]);
    return 2;
}

/* ablate export CKPT --out DIR: a Hugging Face model directory (export.h) */
static int cmd_export(int argc, char **argv) {
    const char *ckpt = NULL, *out = NULL, *tokenizer = NULL;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            puts("usage: ablate export CKPT --out DIR [--tokenizer tokenizer.json]\n"
                 "Writes DIR/model.safetensors (the checkpoint's fp32 weights, Hugging Face names, tied embeddings),\n"
                 "config.json, generation_config.json and tokenizer.json, which transformers' AutoModelForCausalLM\n"
                 "and AutoTokenizer load: LlamaForCausalLM (pre-norm MHA/GQA/MQA), MistralForCausalLM (with a\n"
                 "window), Qwen3ForCausalLM (with qk_norm). Other models get our own architecture name,\n"
                 "AblateForCausalLM, with every field and tensor documented in config.json, and a line saying so.\n"
                 "  CKPT         a model.safetensors or a run's ckpt-*/ directory (checked against its MANIFEST)\n"
                 "  --tokenizer  the tokenizer.json the data was tokenized with (default: the byte-level one for\n"
                 "               vocabulary 256, which maps byte b to id b)\n"
                 "--init-from DIR (ablate train, init_from in a study) starts training from such a directory.");
            return 0;
        }
        if (strncmp(f, "--", 2)) {
            if (ckpt) die("export: one checkpoint expected, got '%s' after '%s'", f, ckpt);
            ckpt = f;
            continue;
        }
        if (i + 1 >= argc) die("%s needs a value%s", f, "");
        if (!strcmp(f, "--out")) out = argv[++i];
        else if (!strcmp(f, "--tokenizer")) tokenizer = argv[++i];
        else die("unknown flag '%s'%s (see ablate export --help)", f, "");
    }
    if (!ckpt || !out) die("export: usage: ablate export CKPT --out DIR%s%s", "", "");
    char path[4200], err[1024], note[1024];
    struct stat st;
    if (!stat(ckpt, &st) && S_ISDIR(st.st_mode)) {
        if (ckpt_manifest_verify(ckpt, err, sizeof err)) { fprintf(stderr, "ablate export: %s\n", err); return 2; }
        snprintf(path, sizeof path, "%s/model.safetensors", ckpt);
    } else snprintf(path, sizeof path, "%s", ckpt);
    if (export_dir(path, out, tokenizer, note, sizeof note, err, sizeof err)) {
        fprintf(stderr, "ablate export: %s\n", err);
        return 2;
    }
    if (note[0]) fprintf(stderr, "ablate export: %s\n", note);
    SmolConfig cfg;
    smollm_read_config(path, &cfg, NULL, NULL, err, sizeof err);
    smollm_resolve(&cfg, err, sizeof err);
    ExportShape sh = export_shape(&cfg, 0);
    printf("exported %s to %s as %s\n", path, out, export_arch_name(export_arch(&sh, note, sizeof note)));
    return 0;
}

/* ablate mc-make TEXT --out FILE: cloze items from the held-out part of a text (eval.h) */
static int cmd_mc_make(int argc, char **argv) {
    const char *text = NULL, *out = NULL;
    EvalMcMake c = {0};
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            puts("usage: ablate mc-make TEXT --out FILE.jsonl [--items N] [--endings K] [--context BYTES] [--seed S]\n"
                 "                      [--val-frac X]\n"
                 "Cloze items for ablate eval --mc and a study's eval_mc, from the held-out part of TEXT only (its\n"
                 "last X bytes, X = --val-frac, default 0.1: the validation split training leaves out): a sentence's\n"
                 "first half after up to BYTES (256) of the text before it, its true second half against K-1 (3)\n"
                 "second halves of other sentences, in a seeded order (--seed, default 0): the same inputs give\n"
                 "the same file. N items (default 500). A proxy on a study's own text, not a standard benchmark.");
            return 0;
        }
        if (strncmp(f, "--", 2)) {
            if (text) die("mc-make: one text expected, got '%s' after '%s'", f, text);
            text = f;
            continue;
        }
        if (i + 1 >= argc) die("%s needs a value%s", f, "");
        const char *v = argv[++i];
        if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--items")) c.items = parse_int(f, v, 1, 10000000);
        else if (!strcmp(f, "--endings")) c.endings = parse_int(f, v, 2, EVAL_MC_MAX_ENDINGS);
        else if (!strcmp(f, "--context")) c.context_bytes = parse_int(f, v, 1, 1 << 20);
        else if (!strcmp(f, "--seed")) c.seed = (uint64_t)parse_int(f, v, 0, INT_MAX);
        else if (!strcmp(f, "--val-frac")) {
            c.val_frac = parse_float(f, v);
            if (!(c.val_frac > 0 && c.val_frac < 1)) die("--val-frac expects a number in (0, 1), got '%s'%s", v, "");
        } else die("unknown flag '%s'%s (see ablate mc-make --help)", f, "");
    }
    if (!text || !out) die("mc-make: usage: ablate mc-make TEXT --out FILE.jsonl%s%s", "", "");
    FILE *in = fopen(text, "rb");
    if (!in) die("mc-make: cannot open text '%s'%s", text, "");
    size_t cap = 1 << 20, n = 0, k;
    unsigned char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, in)) > 0)
        if ((n += k) == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    fclose(in);
    if (!buf) { fprintf(stderr, "ablate mc-make: out of memory\n"); return 1; }
    char tmp[4200], err[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "wb");
    if (!f) { free(buf); die("mc-make: cannot create '%s'%s", tmp, ""); }
    int written = 0, rc = eval_mc_make(buf, n, &c, f, &written, err, sizeof err);
    free(buf);
    if (fclose(f) || rc || rename(tmp, out)) {
        remove(tmp);
        fprintf(stderr, "ablate mc-make: %s\n", rc ? err : "cannot write the output");
        return 2;
    }
    printf("%d items to %s (from the held-out part of %s; a proxy, not a standard benchmark)\n", written, out, text);
    return 0;
}

static void usage(void) {
    puts("usage: ablate [command] [flags]\n"
         "  (no command)   run the default study: attention mechanisms compared on built-in data\n"
         "  run            run a study from a spec file or --axes, or --resume one (ablate run --help)\n"
         "  report DIR     redraw a study's table and plots from its files\n"
         "  train          train one configuration (ablate train --help)\n"
         "  eval CKPT      evaluate a checkpoint over a whole split: loss, ppl, bits per byte (ablate eval --help)\n"
         "  generate CKPT  continue a prompt with a checkpoint, greedy or sampled (ablate generate --help)\n"
         "  export CKPT    a Hugging Face model directory: weights, config.json, tokenizer (ablate export --help)\n"
         "  mc-make TEXT   multiple-choice cloze items from a text's held-out part (ablate mc-make --help)\n"
         "  bench          time training and the attention kernel (ablate bench --help)\n"
         "  tokenize       text files -> token shards (ablate tokenize --help)\n"
         "  tokenizer      train / apply a byte-level BPE tokenizer (ablate tokenizer --help)\n"
         "  help           this text\n"
         "GPU numerics are bit-reproducible: the same configuration and seed give the same bits on the\n"
         "same GPU model, run after run and across a kill and --resume.");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    Tune tn = {0};
    take_tune_flags(&argc, argv, &tn);
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) { usage(); tune_help(); return 0; }
        return cmd_default_study(argc - 1, argv + 1, &tn);
    }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 2, argv + 2, &tn);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 2, argv + 2, &tn);
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc - 2, argv + 2, &tn);
    if (!strcmp(argv[1], "bench")) return cmd_bench(argc - 2, argv + 2, &tn);
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2, &tn);
    if (!strcmp(argv[1], "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(argv[1], "tokenize") || !strcmp(argv[1], "tokenizer")) return cmd_data(argc - 1, argv + 1);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 2, argv + 2);
    if (!strcmp(argv[1], "mc-make")) return cmd_mc_make(argc - 2, argv + 2);
    if (!strcmp(argv[1], "help")) { usage(); tune_help(); return 0; }
    fprintf(stderr, "ablate: unknown command '%s' (expected run, report, train, eval, generate, export, mc-make, bench or help; see ablate --help)\n", argv[1]);
    return 2;
}
