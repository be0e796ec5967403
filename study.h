/* study.h - ablation studies: a spec (base configuration, axes, seeds, budget, phases),
   its grid of runs, each run trained with its files under runs/<study>/<run>/, resume
   after an interruption, and the study's report (table, CSV, JSON, SVG plots).

   USAGE
     #define ABLATE_IMPLEMENTATION   // in one .c file (or STUDY_IMPLEMENTATION with those of
     #include "study.h"              // train.h, dist.h, smollm.h, attn.h, ops.h and data.h)

     StudySpec s;
     char err[512];
     if (study_parse_file(&s, "mech.ini", err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(2); }
     StudyOptions o = {0};          // o.out = directory (default runs/<name>), o.resume = 1 to continue
     Gpu *gpu;
     if (study_open_device(s.device, &gpu, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
     int rc = study_run(&s, &o, gpu);           // runs, then writes and prints the report
     study_report("runs/mech", stdout);         // redraw table and plots from the stored files

   DEPENDS ON: train.h (smollm.h, attn.h, ops.h), data.h, ckpt.h (its implementation comes with
   study.h's). Builds CPU-only unless -DABLATE_CUDA (ops.h): then --device cuda needs gpu.h's
   implementation in the same program (ABLATE_IMPLEMENTATION gives it).
   LINKAGE: every public function is declared STUDYDEF (extern); define STUDY_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   SPEC FORMAT (INI-like; `#` or `;` starts a comment; keys may use - or _)
       name = mechanisms             # study name: runs/<name>/ (letters, digits, . _ -)
       seeds = 3                     # a count: 3 seeds counting up from `seed` (default 1337)
       # seed_list = 1, 7, 42        # or the seeds themselves (one seed: seed_list = 42); not both;
                                     #   a comma list in `seeds` is refused, naming seed_list
       steps = 300                   # budget per run: steps, or tokens = 2e6 (steps = tokens / (batch*seq*accum)),
       seconds = 600                 #   and/or a wall-clock cap in seconds (the schedule still spans `steps`)
       layers = 2                    # any run key below sets the base configuration
       d_model = 64
       [axes]                        # the grid: every combination of these lists, times the seeds
       attn = mha, gqa, mqa, identity
       norm = pre, post, sandwich
   or, instead of [axes], phases run one after another, each carrying the best value of the
   earlier phases forward (best = lowest mean final validation loss over seeds, or the highest
   mean tokens/s with `select = tokens_per_s`):
       [phase mechanism]
       attn = mha, gqa, mqa
       [phase norm]                  # runs norm = pre/post/sandwich with the best attn
       norm = pre, post, sandwich
   A phase that sets a carried key again sweeps it: the carried value of that key is dropped
   from its runs' axes and names (they show each key once, with the value the run trained with).
   A value in double quotes keeps its commas, blanks and comment characters: a data mix is
   one axis value, e.g.
       data = "web.bin:0.7,code.bin:0.3", web.bin, notes.txt
   and a base value may be quoted as a whole (data = "a.bin:0.7, b.bin:0.3"). An axis value is
   at most STUDY_VALUE_LEN - 1 = 159 characters; a spec whose longest assignment of a phase (its
   axes plus the values carried from earlier phases) could exceed STUDY_AXES_LEN - 1 characters
   is refused when it is read.
   A run identical to an earlier one (the same identity: configuration and seed) is not trained
   twice; the progress line says "same as" and names it.

   CHECKED WHOLE BEFORE THE FIRST RUN (study_check, called by study_run for a new study): every
   run of every phase is resolved with the checks a run makes before it reads data
   (study_run_config_check: smollm_check's shape rules, a synthetic task's sizes, on a GPU the
   kernels' support). A later phase runs with the values its earlier phases carry, unknown
   yet: it is checked with every value that could be carried (every combination of earlier
   axes that no later phase sets again). A refused spec creates no directory; the message
   names FILE:LINE (or the --flag) of the keys the problem names, the first refused run (its
   name and assignment, its phase), what is wrong and how many runs of the phase are refused:
     mech.ini:3 (d_model = 64): phase 'grid', run attn-mha_seed1337 (attn=mha): d_model 64 is
     not divisible by heads 9 (or give head_dim); 3 of the 3 configurations of phase 'grid' are
     refused (3 runs): nothing was run or written
   Data is not read before the start: a missing file or a text too short for seq still fails
   its runs only (status failed, the study goes on).

   RUN IDENTITY: the canonical text of the resolved configuration (every key of the table but
   save, attention options only when not 0, init_from, eval_mc and grad_reduce only when set
   (grad_reduce: bf16), in table
   order, as compact JSON: study_run_config_canonical) hashed with FNV-1a 64 (study_run_config_identity); config.json and summary.json carry it as "identity" (16 hex digits),
   config.json also "config_identity" (the same without the seed). A run's directory is
   CONFIG_seedN, CONFIG the axes made readable ("attn-mla_latent_dim-16"); a CONFIG longer than
   150 characters is cut, and a cut one or one that another configuration of the study would
   share (values that differ only in characters a directory cannot hold) ends in -<the first 8
   hex digits of the configuration identity>.

   RUN KEYS (base or axis; a zero or absent value takes the default). They are one table,
   study_run_key_at(0 .. study_run_key_count() - 1) (type, field, minimum, default, help; study_run_keys_help
   prints it); every key is an axis but seed (seeds go in `seeds`) and save.
     model:  attn (mha|gqa|mqa|swa|mla|mga|gdn|dsa|identity) kv_heads window qk_norm (0|1) norm (pre|post|sandwich)
             layers d_model heads ffn rope_theta resid_dropout (0 <= p < 1) attn_dropout (per mille)
             attn_layers (a per-layer schedule, attn.h; items joined by '+' in [axes], e.g.
             attn_layers = swa:256*3+gqa, mla) latent_dim q_latent_dim rope_dim v_head_dim (mla)
             mga_gate mga_faithful (0|1) conv_size chunk (gdn) topk topk_pct indexer_heads
             indexer_dim indexer_precision (1 fp32 2 bf16 3 fp16 4 fp8 5 int8 6 int4) indexer_fp32 dsa_warmup
             topk_start topk_ramp topk_schedule (1 fixed 2 linear 3 exponential 4 cosine 5 adaptive)
             topk_min topk_adapt_pct (adaptive k: attn/dsa.h) (dsa) global stride
             dilation pattern_block (sparse patterns on top of window)
     train:  seq batch grad_accum steps tokens seconds lr min_lr_ratio warmup weight_decay clip seed
             grad_reduce (fp32|bf16: data parallel's gradient sum, in the identity when bf16)
             grad_bucket_mb (data parallel: gradient buckets reduced during the backward; not in
             the identity)
             init_from (an `ablate export` directory of the same shapes: its weights replace the
             seeded init; the first tensor of another name or shape fails the run, named)
     data:   data (text file, shard, directory, mix; an axis too) val_frac eval_every eval_batches
             final_eval_tokens log_every checkpoint_every; task (mqar|copy|induction: a synthetic task instead of data, whose
             evaluations also report top-1 accuracy, val_acc) task_size task_vocab
             eval_mc (a multiple-choice JSONL, eval.h: the final weights' accuracy, final_mc_acc and
             final_mc_se, and an mc acc column; non-byte vocabularies use the tokenizer.json beside
             the data) save (a file; one named model.safetensors gets export.h's config.json,
             generation_config.json and tokenizer.json beside it, or in a study's run, DIR/RUN/hf)
             bench_decode (0|1: after training, batch-1 generation at seq: decode_tokens_per_s and
             decode_cache_bytes in summary.json, a decode tok/s column; not in the run identity)
   STUDY KEYS (base only): name seeds seed_list select device (cpu|cuda)
             keep_checkpoints (0|1: keep the last checkpoint and write DIR/RUN/model.safetensors,
             and DIR/RUN/hf, a Hugging Face model directory of it, export.h)
             gpus_per_run (N >= 1: each run data-parallel over N ranks, see GPUS PER RUN below;
             every run's batch must be a multiple of N)
   Errors name the file, the line, the key or value and what was expected. The study's name
   is a directory under runs/: "." and ".." are refused.

   COMMAND-LINE EQUIVALENT (study_from_args)
     ablate run --axes attn=mha,gqa,mqa norm=pre,post,sandwich --seeds 3 --steps 200 [--out DIR]
                [--seed-list 1,7,42 instead of --seeds] [--KEY VALUE for any key above]
     builds the same StudySpec; both forms save the spec as DIR/study.ini (its seeds as seed_list),
     which --resume reads.
     A quoted value reaches --axes only when the shell leaves the quotes alone:
       ablate run --axes 'data="web.bin:0.7,code.bin:0.3",web.bin' latent_dim=16,32 ...

   OUTPUTS (every file but metrics.jsonl is written to NAME.tmp, then renamed)
     DIR/study.ini                 the spec as run
     DIR/<run>/config.json         study, run, config, phase, axes, identity, config_identity,
                                   index, device, gpus_per_run (ranks per run: 1 one process),
                                   and "model": every key of the table as resolved
                                   (mechanism knobs included), then head_dim, vocab (the byte
                                   vocabulary: the data's is known only when it is read) and
                                   run_steps (the steps the budget gives)
     DIR/<run>/metrics.jsonl       one object per logged step (log_every, default 1; evaluated and
                                   last steps always): step, tokens, loss, lr, grad_norm,
                                   tokens_per_s, elapsed (training seconds), and val_loss, val_ppl
                                   (and val_bpb, bits per byte, when the tokenizer is known) when
                                   evaluated. Appended line by line; resume drops lines past
                                   the checkpoint (and a torn last line).
     DIR/<run>/summary.json        written when the run ends: status ok|failed|diverged and reason,
                                   final and best validation loss/perplexity/bits per byte
                                   (final_val_bpb, best_val_bpb; null: unknown tokenizer), the last
                                   evaluation's tokens and the standard error of its loss over
                                   windows (final_val_tokens, final_val_se), final_val_acc (synthetic
                                   tasks; else null), final_mc_acc and final_mc_se (eval_mc; else
                                   null), tokens/s, peak_bytes (peak memory: the device's
                                   on a GPU; on the CPU the resident memory the run added, the
                                   process's VmHWM during the run minus its resident set at the
                                   start and the code pages it first touched; a process's first
                                   run may count ~0.1 MB of one-off allocations; null where /proc
                                   cannot say), parameters by part, KV
                                   bytes per token, grad-norm mean/max, smoothness, wall time
   VALIDATION (data.h, EVALUATION): an evaluation takes eval_batches x batch windows spread evenly
   over the whole validation split, the same ones every time (the default 8 batches cost about
   8/3 training steps each); the last one covers the whole split, every target once, up to
   final_eval_tokens (spread evenly beyond it). The loss is total loss / scored tokens.
     DIR/results.json              {"configs": [...], "runs": [...]}: per configuration (in run
                                   order) runs, runs_ok, val_loss_mean/_sd/_ci95_lo/_ci95_hi, the
                                   same for val_bpb and val_acc (null but for synthetic tasks),
                                   val_ppl_mean, vs_best (best | significant | not significant |
                                   untested | no result), val_loss_diff_vs_best, welch_t,
                                   welch_df, welch_p, tokens_per_s_mean/_sd, peak_bytes (the mean
                                   over seeds; null: not measured), params_total,
                                   kv_bytes_per_token; per run its summary.json
     DIR/results.csv               one row per configuration (the same columns; the val_acc_*
                                   ones only when a run has an accuracy)
     DIR/runs.csv                  one row per run (the summaries; final_val_acc likewise)
     DIR/<plot>.svg                see study_report
   STATISTICS OVER SEEDS (study_report): each configuration's final validation loss (and bits
   per byte) over its ok seeds: mean, sample standard deviation (n - 1) and the 95% confidence
   interval of the mean, mean -+ t(0.975, n - 1) sd / sqrt(n) (Student's t quantile computed by
   bisection on the t distribution). The best configuration has the lowest mean loss (never one
   lucky seed); every other one is compared with it by Welch's two-sided t-test (unequal
   variances, Welch-Satterthwaite degrees of freedom; the t tail through the regularized
   incomplete beta function, a continued fraction): "significant" when p < 0.05. A configuration
   with fewer than 2 ok seeds (or against a best with fewer) is "untested"; a study with one
   seed per configuration says that all its differences are untested. The table prints
   mean ± sd, the CI, the difference from the best with p, the top-1 accuracy (mean ± sd) when
   a synthetic task is used, bpb when known, tok/s, peak memory ("-" where not measured).
   Every best-of line under it compares configurations by their means over seeds: best by
   loss, by accuracy (tasks), by throughput, by memory (mean peak; where no run measured one,
   the smallest KV cache); a lowest single run in another configuration than the best is
   named on its own line, never crowned.
   smoothness = mean |loss(t) - loss(t-1)| over consecutive logged steps (lower is smoother).

   FAULTS AND EXIT STATUS (study_run, ablate run): 0 (STUDY_OK) every run ok; 1
   (STUDY_RUNS_FAILED) some runs failed or diverged, earlier ones of a resumed study included; 2
   (STUDY_ERROR) the study could not run: usage or spec error, no device, DIR locked, a grid of
   more than STUDY_MAX_RUNS = 10000 runs without StudyOptions.allow_large (--allow-large; run
   counts saturate, never wrap), or a study file (study.ini, summary.json, results.*) not written.
   A failed write of metrics.jsonl (each line is flushed and checked) or config.json fails the
   run, with a reason naming the file. DIR/.lock ("pid host", linked into place whole) lets one
   study at a time write DIR: another is refused naming the holder; a lock whose process is gone
   on this host is taken over with a message; worker processes run under their parent's lock
   (and die with it). --resume refuses an empty or unreadable DIR/study.ini (study_parse_resume):
   it would otherwise parse as the defaults. A torn metrics line is reported by --resume and by
   study_report. Tests kill a study at named points with StudyOptions.kill_metrics/kill_summary
   (ablate run's hidden --test-kill metrics:N | summary:N).

   RESUME: a run is finished when its summary.json exists; it is skipped. Otherwise training
   restarts from the newest DIR/<run>/ckpt-<step>/ (model.safetensors + train.state with the
   AdamW moments, step, gradient-norm statistics, sampler RNG and position, token and time
   counters), written every checkpoint_every steps (default: at each evaluation) into a .tmp
   directory that is then renamed, so a kill leaves either the old or the new checkpoint.

   RESUME: a run is finished when its summary.json exists; it is skipped (and checkpoints left
   by a kill between its summary and the final prune are deleted). Otherwise training
   restarts from the newest DIR/<run>/ckpt-<step>/ that passes every check. A checkpoint
   holds model.safetensors, train.state (the AdamW moments, step, gradient-norm statistics,
   sampler RNG and position, token and time counters), run.json (study_run_config_canonical: the
   resolved configuration) and MANIFEST (ckpt.h: XXH64 hash and length of each file), written
   every checkpoint_every steps (default: at each evaluation) into a .tmp directory, the
   MANIFEST last, fsynced, then renamed; it is read back and checked (MANIFEST, the weights'
   header) before any older checkpoint is pruned, so a run always keeps a verified one.
   On resume a checkpoint is used when its MANIFEST matches, smollm_load and train_load_state
   accept its files and train.state's step equals its directory's; one that fails is renamed
   ckpt-<step>.bad (kept, never loaded) with a message on stderr and the one before it is
   tried, then a fresh start from step 0. A run whose configuration differs from the one in
   its newest intact checkpoint's run.json is refused before anything is recorded: the study
   stops with status 2 and a message naming the key and both values.
   A resumed run gives bit-identical losses, gradient norms and validation losses to an
   uninterrupted one: on the CPU (same thread count) and on the same GPU model (the GPU's
   numerics are bit-reproducible unless a caller sets Gpu.nondeterministic; tests/test_study
   and tools/gpu_repro.sh kill studies with SIGKILL and compare). Validation losses are
   written with 17 digits so that a resumed run reads its earlier ones back exactly. A run
   whose worker process keeps dying (a GPU out-of-memory abort) is given up after 3 tries
   within one invocation without checkpoint progress and recorded as failed; kills of earlier
   invocations do not count (tests/test_ckpt covers each of these).
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(STUDY_IMPLEMENTATION)
#define STUDY_IMPLEMENTATION
#endif
#ifndef STUDY_H
#define STUDY_H

/* linkage of every public function: extern, or static with STUDY_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef STUDYDEF
#if defined(STUDY_STATIC) || defined(ABLATE_STATIC)
#define STUDYDEF static
#else
#define STUDYDEF extern
#endif
#endif

/* setenv, kill, gethostname, open_memstream, M_PI: POSIX 2008 with the XSI option, asked for
   before the first system header so that the implementation builds under a strict -std=c99 too */
#if defined(STUDY_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 700
#endif
#include "train.h"
#include "data.h"
#include "ckpt.h"
#include "eval.h"
#include "export.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* one run's configuration (the strings point at storage that outlives the run) */
typedef struct {
    SmolConfig model;
    TrainConfig train;
    int batch, seq;
    double tokens, seconds;     /* budgets: 0 = none (then train.steps) */
    const char *data, *save;    /* NULL: the default text; NULL: no weights file */
    const char *init_from;      /* an exported directory (or safetensors file) to start from; NULL: seeded init */
    const char *eval_mc;        /* a multiple-choice file scored at the end (eval.h); NULL: none */
    const char *task;           /* a synthetic task (mqar, copy, induction) instead of data; NULL: none */
    int task_size, task_vocab;  /* its size (pairs / copy length; 0 = default) and vocabulary (0 = 256) */
    float val_frac;
    int eval_every, eval_batches, log_every, checkpoint_every;
    int sample_every, sample_tokens; /* samples.jsonl: a greedy continuation every N steps (0: none) */
    int bench_decode;           /* 1: after training, generation speed and decode cache bytes (study_decode_bench) */
    double final_eval_tokens;   /* the last evaluation's cap in tokens (0: STUDY_FINAL_EVAL_TOKENS) */
    int *kill_countdown;        /* not a run key: fault injection for tests (StudyOptions.kill_metrics),
                                   decremented per metrics line written, SIGKILL at 0; NULL: none */
    const char *die_at;         /* tests only (not a key): StudyOptions.die_at */
    struct DistComm *dist;      /* not a key: data parallel over dist->world ranks (train.h's DATA
                                   PARALLEL; every rank calls study_train with the same config);
                                   batch is the whole micro-batch, each rank trains batch / world
                                   rows of it; rank 0 alone evaluates, logs, writes metrics,
                                   checkpoints and `save`; NULL: one process */
} StudyRunConfig;

/* the last evaluation of a run covers the whole validation split up to this many tokens
   (windows spread evenly over the split beyond it) unless final_eval_tokens says otherwise */
#define STUDY_FINAL_EVAL_TOKENS 4194304.0

#define STUDY_MAX_AXES 16
#define STUDY_MAX_VALUES 32
#define STUDY_MAX_PHASES 8
#define STUDY_MAX_BASE 64
#define STUDY_MAX_SEEDS 64
#define STUDY_STR 512
#define STUDY_VALUE_LEN 160     /* an axis value (a data mix with its paths), NUL included */
/* an assignment "key=value key=\"v w\" ...": the values carried from earlier phases and this
   phase's axes. study_finish refuses a spec whose longest assignment would not fit */
#define STUDY_AXES_LEN 2048
#define STUDY_ID_LEN 160        /* a configuration's directory name: readable part + -<8 hex> */
#define STUDY_NAME_LEN 192      /* a run's: the configuration's + _seed<N> */

typedef struct {
    char key[32];
    int n;
    int line;                   /* the spec line that gave it (0: the command line) */
    char values[STUDY_MAX_VALUES][STUDY_VALUE_LEN];
} StudyAxis;
typedef struct { char name[64]; int n_axes; StudyAxis axes[STUDY_MAX_AXES]; } StudyPhase;

typedef struct {
    char name[64];
    char device[16];
    char source[256];           /* the spec's path for messages ("command line": --KEY flags) */
    int n_base;
    char base_keys[STUDY_MAX_BASE][32], base_values[STUDY_MAX_BASE][STUDY_STR];
    int base_lines[STUDY_MAX_BASE]; /* the spec line of each base key (0: the command line) */
    int n_seeds;
    uint64_t seeds[STUDY_MAX_SEEDS];
    int seeds_given;            /* 0: neither, 1: `seeds` (a count), 2: `seed_list` */
    int seeds_set, select_tps, keep_checkpoints;
    int gpus_per_run;           /* > 1: each run trains data-parallel over this many ranks (0, 1: one process) */
    int n_phases;               /* [axes] is one phase named "grid" */
    int has_axes_section, has_phase_section;
    StudyPhase phases[STUDY_MAX_PHASES];
} StudySpec;

#define STUDY_MAX_WORKER_ARGS 64
typedef struct {
    const char *out;            /* study directory; NULL: runs/<name> (or runs/<name>-2... if taken) */
    int resume;                 /* continue the study in `out` */
    int quiet;                  /* no progress lines */
    int workers;                /* > 1: each phase's runs are shared among this many processes */
    const char *gpus;           /* "0,1,...": one worker process per listed GPU (CUDA_VISIBLE_DEVICES) */
    /* more arguments for each worker's command line, e.g. ablate.c's --tune KEY=VALUE pairs:
       a worker is a fresh `ablate run --resume`, and settings that are not in the study's
       files reach it only this way (at most STUDY_MAX_WORKER_ARGS) */
    char *const *worker_args;
    int n_worker_args;
    int worker, phase_only;     /* internal, set by the parent: this process is worker `worker`
                                   (1-based) for phase `phase_only` and trains only its share */
    int worker_cuda;            /* internal (hidden --worker-cuda): a worker whose runs train over
                                   gpus_per_run GPU ranks; it opens no GPU itself (a forked CUDA
                                   context is unusable), each rank opens its own */
    /* data parallel on GPUs: called in each rank's process after it opens its GPU, e.g. ablate.c's
       tuning (--tune); NULL: none */
    void (*rank_gpu)(Gpu *gpu, void *ctx);
    void *rank_gpu_ctx;
    int allow_large;            /* run a grid of more than STUDY_MAX_RUNS runs */
    /* fault injection for tests (ablate run's hidden --test-kill): SIGKILL this process right
       after the kill_metrics-th line of metrics.jsonl is written by it (0: never), or right
       after the kill_summary-th summary.json (0: never) */
    int kill_metrics, kill_summary;
    const char *die_at;         /* tests only (hidden flag --test-die-at POINT[:STEP]): the process
                                   kills itself with SIGKILL at that point: run-start (a run's
                                   training is about to begin), checkpoint-written:STEP (checkpoint
                                   STEP verified, older ones not yet pruned), after-summary (a
                                   run's summary.json written, its checkpoints not yet pruned) */
} StudyOptions;

/* a study's exit status (study_run, ablate run) */
enum { STUDY_OK = 0, STUDY_RUNS_FAILED = 1, STUDY_ERROR = 2 };
/* a grid above this many runs is refused unless StudyOptions.allow_large (--allow-large) */
#define STUDY_MAX_RUNS 10000

/* one run of the grid */
typedef struct {
    StudyRunConfig cfg;
    char name[STUDY_NAME_LEN], config_id[STUDY_ID_LEN], phase[64];
    char axes[STUDY_AXES_LEN];  /* "attn=mha norm=pre" (a value with blanks in double quotes) */
    uint64_t seed;
    uint64_t identity, config_identity; /* study_run_config_identity with and without the seed */
} StudyRun;

/* what summary.json holds */
typedef struct {
    char name[STUDY_NAME_LEN], config_id[STUDY_ID_LEN], phase[64], axes[STUDY_AXES_LEN], status[16], reason[256];
    uint64_t identity;          /* the run's identity (study_run_config_identity, seed included); 0: unknown */
    int index, steps_done, steps;
    uint64_t seed;
    double tokens, final_loss, final_val_loss, final_val_ppl, best_val_loss, best_val_ppl;
    double final_val_acc;       /* synthetic tasks: top-1 accuracy at the last evaluation; else NAN */
    double final_mc_acc, final_mc_se; /* eval_mc: multiple-choice accuracy of the final weights and its
                                   standard error; else NAN */
    double decode_tokens_per_s, decode_cache_bytes; /* bench_decode: batch-1 decode tokens/s of the final
                                   weights at the run's seq and the decode caches' bytes per sequence
                                   (all layers, as allocated); else NAN */
    /* the last evaluation (the whole validation split up to final_eval_tokens): targets scored,
       standard error of its loss over windows, bits per byte (NAN: unknown tokenizer); and the
       bits per byte of the evaluation with the best loss */
    double final_val_tokens, final_val_se, final_val_bpb, best_val_bpb;
    int best_val_step;
    double tokens_per_s, peak_bytes, wall_seconds, train_seconds;
    double params_total, params_attention, params_ffn, params_embedding, params_norms, kv_bytes_per_token;
    /* the decode caches' measured bytes per token at the run's context (attn_decode_cache_bytes
       over the layers at seq, / seq; ops_real elements; 0 when a layer cannot decode) */
    double cache_bytes_per_token;
    double grad_norm_mean, grad_norm_max, smoothness;
} StudySummary;

/* ---- run configuration ----
   THE TABLE OF RUN KEYS (study_run_key_at): one entry per key of StudyRunConfig with its type, where it
   lives, its minimum, default and help. study_run_config_defaults, study_run_config_set, config.json, the
   run identity, the duplicate check ("same as") and study_run_keys_help all walk it: a key added to
   the table is a spec key, a --KEY of `ablate run`, an axis, part of config.json and of the
   identity at once. */
typedef enum { STUDY_RUN_KEY_INT, STUDY_RUN_KEY_NUM, STUDY_RUN_KEY_BOOL, STUDY_RUN_KEY_STR, STUDY_RUN_KEY_ENUM } StudyRunKeyType;
/* how the value is stored at its offset */
typedef enum { STUDY_RUN_AT_INT, STUDY_RUN_AT_FLOAT, STUDY_RUN_AT_DOUBLE, STUDY_RUN_AT_U64, STUDY_RUN_AT_PTR, STUDY_RUN_AT_CHARS } StudyRunKeyStore;
enum {
    STUDY_RUN_KEY_NO_AXIS = 1,        /* seed (seeds go in `seeds`) and save (one output file) */
    STUDY_RUN_KEY_NOT_IDENTITY = 2,   /* save: where the weights go, not what the run computes */
    STUDY_RUN_KEY_OFF_AT_ZERO = 4,    /* clip: 0 or less is stored as -1 (disabled) */
    STUDY_RUN_KEY_ABOVE_MIN = 8,      /* the value must exceed min (lr > 0), not merely reach it */
    STUDY_RUN_KEY_BELOW_MAX = 16,     /* the value must stay under max (val_frac < 1) */
    STUDY_RUN_KEY_ZERO_IS_NONE = 32,  /* weight_decay, min_lr_ratio: 0 is a real zero, stored as -1 because
                                   TrainConfig's 0 selects the default (train.h) */
    STUDY_RUN_KEY_ATTN_OPTION = 64,   /* an attention option (attn.h's table): in the run identity only when
                                   not 0 after resolving, so that a mechanism added later (and its
                                   options) leaves every earlier identity as it was */
    STUDY_RUN_KEY_IDENTITY_IF_SET = 128 /* init_from, eval_mc, resid_dropout, grad_reduce: in the run identity
                                   only when set (a string not empty, a number not 0, an enum not its
                                   value 0), so that the runs of
                                   studies made before the key existed keep theirs */
};
typedef struct {
    const char *name;           /* the one spelling, with _ (- is accepted on input) */
    StudyRunKeyType type;
    StudyRunKeyStore store;
    size_t offset, size;        /* offsetof and sizeof the field in StudyRunConfig */
    double min;                 /* int and number keys */
    const char *def;            /* study_run_config_defaults' value as text; NULL: 0 / none (help says
                                   what 0 resolves to) */
    const char *choices;        /* enum and fixed-set string keys: the accepted values, for messages */
    int (*parse)(const char *v, int *out);  /* enum keys: name -> value, 0 on success */
    const char *(*name_of)(int v);          /* enum keys: value -> name */
    int (*check)(const char *v, char *err, size_t errlen); /* string keys with a grammar; 0 = ok */
    const char *noun;           /* enum and fixed-set keys, for messages: "unknown attention 'x'" */
    const char *group;          /* model, train or data: for help */
    unsigned flags;             /* RUN_KEY_* */
    const char *help;
    double max;                 /* int and number keys: the largest value accepted (0: none). Every
                                   bound is a size the model, the data or the schedule can take
                                   without overflowing an int or a size_t product */
} StudyRunKey;

STUDYDEF int study_run_key_count(void);
STUDYDEF const StudyRunKey *study_run_key_at(int i);
STUDYDEF const StudyRunKey *study_run_key_find(const char *key);    /* - or _ spelling, leading -- allowed; NULL: unknown */
/* the key's value in c as text: an enum's name, a string as is ("" for none) */
STUDYDEF void study_run_key_format(const StudyRunKey *k, const StudyRunConfig *c, char *out, size_t n);
/* every key: "  --key VALUE  help (default ...)", grouped model / train / data */
STUDYDEF void study_run_keys_help(FILE *f);

STUDYDEF void study_run_config_defaults(StudyRunConfig *c);
/* set one key (- or _ spelling, leading -- allowed); the message names the key, the value and
   what was expected. A string value (data, save, task) is stored as the pointer: it must
   outlive c */
STUDYDEF int study_run_config_set(StudyRunConfig *c, const char *key, const char *value, char *err, size_t errlen);
/* the run identity: FNV-1a 64 of the canonical text of the resolved configuration (every key
   of the table but save, in table order, as compact JSON: study_run_config_canonical). with_seed 0
   leaves the seed out: the identity of the configuration, which its seeds share */
STUDYDEF uint64_t study_run_config_identity(const StudyRunConfig *c, int with_seed);
/* the canonical text itself (malloc'd; the caller frees) */
STUDYDEF char *study_run_config_canonical(const StudyRunConfig *c, int with_seed);
/* steps the budget gives (tokens budget converted) */
STUDYDEF int study_run_config_steps(const StudyRunConfig *c);
/* what a run checks before it reads data or allocates anything: the model's shape
   (smollm_check: smollm_resolve's rules, a dsa top-k against seq, on a GPU (gpu not NULL) the
   kernels' support) and a synthetic task's sizes. 0, or -1 with the message */
STUDYDEF int study_run_config_check(const StudyRunConfig *c, Gpu *gpu, char *err, size_t errlen);

/* ---- specs ---- */
STUDYDEF int study_parse_text(StudySpec *s, const char *text, const char *source, char *err, size_t errlen);
STUDYDEF int study_parse_file(StudySpec *s, const char *path, char *err, size_t errlen);
/* DIR/study.ini for --resume: -1 with a message naming the file when it cannot be read or holds
   no keys (an empty spec would be the defaults, not the study that was run) */
STUDYDEF int study_parse_resume(StudySpec *s, const char *dir, char *err, size_t errlen);
/* ablate run's flags (argv after "run"); *spec_path set when a spec file is named */
STUDYDEF int study_from_args(StudySpec *s, StudyOptions *o, int argc, char **argv, char *err, size_t errlen);
STUDYDEF void study_write_spec(const StudySpec *s, FILE *f);
/* set a key of the base section (a run key, or name/seeds/select/device/keep_checkpoints) */
STUDYDEF int study_set(StudySpec *s, const char *key, const char *value, char *err, size_t errlen);
/* the default study: MHA vs GQA vs MQA vs identity; tiny on the CPU, bigger on a GPU */
STUDYDEF void study_default(StudySpec *s, int on_gpu);

/* ---- grid ---- */
/* the base configuration with the study's base keys and `carried` ("key=value key=value") applied */
STUDYDEF int study_base_config(const StudySpec *s, const char *carried, StudyRunConfig *c, char *err, size_t errlen);
/* expand phase p (base + carried values) into runs: axes in order, first axis slowest, seeds
   innermost. Returns the count (at most max), or -1 with a message */
STUDYDEF int study_expand(const StudySpec *s, int p, const char *carried, StudyRun *out, int max, char *err, size_t errlen);
/* phase p's runs (its combinations times the seeds), INT_MAX when there are more */
STUDYDEF int study_phase_size(const StudySpec *s, int p);
/* of the runs of one phase (their summaries), the best configuration's axes ("attn=gqa") */
STUDYDEF int study_select(const StudySpec *s, const StudyRun *runs, const StudySummary *sums, int n, char *best_axes,
                          size_t len, char *err, size_t errlen);
/* every run of every phase checked (study_run_config_check) before anything is written; study_run
   calls it before it creates the study directory. A later phase runs with the values carried
   from the earlier ones, unknown yet: it is checked with every value that could be carried
   (every combination of the earlier phases' axes that no later phase sets again), up to
   STUDY_CHECK_MAX configurations in all. Returns 0 when every run resolves; -1 with a message
   that names the spec line (FILE:LINE, or the flag) of each key the problem names, the first
   refused run (its name and assignment, its phase), what is wrong and how many runs of that
   phase are refused; 1 when the study has more configurations than STUDY_CHECK_MAX (the
   message says how many were checked, all good) */
#define STUDY_CHECK_MAX 200000
STUDYDEF int study_check(const StudySpec *s, Gpu *gpu, char *err, size_t errlen);

/* ---- running ---- */
/* device: "cpu", "cuda" or NULL (a GPU when one works, else the CPU, after a line on stderr
   saying why not the GPU); *gpu = NULL is the CPU. -1 with a message naming gpu_init's reason
   (e.g. no NVIDIA driver library) when "cuda" was asked for and none works */
STUDYDEF int study_open_device(const char *device, Gpu **gpu, char *err, size_t errlen);
STUDYDEF void study_close_device(Gpu *gpu);
/* generation speed of a model (ablate bench --only decode, the bench_decode key): B sequences of
   a prompt of `prompt` synthetic tokens, then `gen` greedy new tokens. On the GPU (m->gpu) the
   device path (SmolGpuGen: one CUDA graph per step; the first 2 steps, warm-up and capture, are
   not timed when gen >= 4); on the CPU the reference (SmolGen). Fills prefill and decode tokens/s
   (B tokens per step, each step ending with the tokens back on the host) and the decode caches'
   bytes per sequence as allocated for prompt + gen tokens; -1 with a message (a layer without a
   decode path on that device, memory); fused: the GPU steps took smollm.h's fused step
   (tuning dec_fused = 1 on a model it covers) */
typedef struct { double prefill_tps, decode_tps; size_t cache_bytes; int fused; } StudyDecodeBench;
STUDYDEF int study_decode_bench(const SmolModel *m, int B, int prompt, int gen, StudyDecodeBench *out, char *err,
                                size_t errlen);
STUDYDEF const char *study_default_data(void);
/* train one run. dir: its directory (NULL: no files, as ablate train); verbose: per-step lines.
   Returns 0 ok, 1 diverged, 2 failed (bad configuration or data); *out filled in every case.
   Data parallel (c->dist, dist.h): every rank calls it with the same configuration; batch is
   the whole micro-batch (a multiple of the rank count), each rank trains its slice; rank 0
   alone prints, evaluates, writes metrics, checkpoints (train_sync_state first, on every rank)
   and the save; every rank resumes from the newest checkpoint (one that fails a check fails
   the run: the ranks could not agree on setting it aside) */
STUDYDEF int study_train(const StudyRunConfig *c, const char *dir, Gpu *gpu, int verbose, StudySummary *out);
STUDYDEF int study_run(const StudySpec *s, const StudyOptions *o, Gpu *gpu);

/* GPUS PER RUN (the study key gpus_per_run = N, or --gpus-per-run N): each run of a phase trains
   data-parallel over N ranks (train.h's DATA PARALLEL, the code path of `ablate train --gpus`),
   its batch split over them. On a GPU the runs need --gpus LIST, whose length must be a multiple
   of N: the list is cut into groups of N in order (0,1,2,3 with N 2: 0,1 and 2,3), one worker
   process per group, each run of the worker on one rank per GPU of its group, gradients summed
   by NCCL. On the CPU (device cpu, or the CPU build) the ranks are N CPU processes over dist.h's
   shared-memory transport: the same training logic, which is what the CPU tests run; --gpus is
   then refused. N changes no run identity (N ranks compute what one process computes with
   the same global batch, up to the order of the sums) and config.json records it.
   study_gpu_groups checks the combination (the study's N, o->gpus, o->workers, the device) and
   returns the worker count (0: the runs train in this process), or -1 with err naming the bad
   values; study_gpu_group writes the k-th group (0-based) of a --gpus list. */
STUDYDEF int study_gpu_groups(const StudySpec *s, const StudyOptions *o, int on_cuda, char *err, size_t errlen);
STUDYDEF int study_gpu_group(const char *gpus, int per_run, int k, char *out, size_t n);
/* one run of c over `ranks` ranks (dist_spawn): GPU ranks (device index = rank, within the
   process's visible devices) when on_cuda, else CPU ranks; rank 0's summary in *out. Returns
   study_train's status (2 also when a rank could not start); a rank killed by a signal kills
   this process with SIGKILL, as a crash of a one-process run would */
STUDYDEF int study_train_ranks(const StudyRunConfig *c, const char *dir, int ranks, int on_cuda, const StudyOptions *o,
                               StudySummary *out);


/* ---- report ---- */
/* statistics over seeds: n values, their mean, sample standard deviation (n - 1) and the 95%
   confidence interval of the mean, mean -+ t(0.975, n - 1) sd / sqrt(n); sd and the interval
   are NAN below 2 values */
typedef struct { int n; double mean, sd, ci_lo, ci_hi; } StudyStat;
STUDYDEF StudyStat study_stat(const double *x, int n);
/* the regularized incomplete beta function I_x(a, b) (a continued fraction) */
STUDYDEF double study_ibeta(double a, double b, double x);
/* Student's t with df degrees of freedom (df > 0, not necessarily whole): the two-sided tail
   P(|T| > |t|), and the quantile q with P(T <= q) = p */
STUDYDEF double study_t_p2(double t, double df);
STUDYDEF double study_t_quantile(double p, double df);
/* Welch's two-sided t-test of equal means: p, with *t and *df (Welch-Satterthwaite) when
   wanted; NAN when either side has fewer than 2 values */
STUDYDEF double study_welch_p(const StudyStat *a, const StudyStat *b, double *t, double *df);
STUDYDEF int study_summary_read(const char *path, StudySummary *s);
/* results.json, results.csv (per configuration), runs.csv (per run), loss.svg (training and
   validation loss panels, the validation one over the second half of the steps: per
   configuration, in its own colour, the mean over its seeds and a band from the lowest to the
   highest of them; a legend), val_vs_throughput.svg and val_vs_memory.svg (per configuration
   one numbered point, mean validation loss with +-1 sd bars over seeds, and tokens/s +-1 sd;
   a key of the numbers beside the plot; the Pareto front outlined, and dashed when it has 2
   points or more), and when configurations differ in lr, lr.svg (final validation loss against
   lr on a log axis, a line per configuration family, i.e. its axes without lr, the best lr of
   each ringed) in dir, and the comparison table with the statistics over seeds on f (NULL:
   none), followed by each family's best lr when lr is an axis; 0 on success */
STUDYDEF int study_report(const char *dir, FILE *f);


#ifdef __cplusplus
}
#endif
#endif /* STUDY_H */

/* ======================================================================= */
#ifdef STUDY_IMPLEMENTATION
#ifndef STUDY_IMPLEMENTATION_DONE
#define STUDY_IMPLEMENTATION_DONE

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#define CKPT_IMPLEMENTATION /* checkpoints are study.h's: its implementation brings ckpt.h's */
/* and export.h's and eval.h's: the --save layout, init_from and eval_mc are run keys */
#define EXPORT_IMPLEMENTATION
#define EVAL_IMPLEMENTATION
#include "ckpt.h"
#include "export.h"
#include "eval.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- a growable string ---- */
/* oom: an append did not fit in memory; the text stays whole up to there, and the writers
   (study_write_text and the metrics lines) refuse a buffer so marked rather than save it cut */
typedef struct { char *p; size_t n, cap; int oom; } StrBuf;

static void sb_printf(StrBuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && b->n + (size_t)k < b->cap) { b->n += (size_t)k; return; }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)k + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
}

/* JSON number: null when not finite (JSON has no NaN); %.9g round-trips a float */
static void sb_num(StrBuf *b, const char *key, double v, int last) {
    if (isfinite(v)) sb_printf(b, "\"%s\": %.9g%s", key, v, last ? "" : ", ");
    else sb_printf(b, "\"%s\": null%s", key, last ? "" : ", ");
}

/* a double that must survive a write and a read bit for bit (%.17g round-trips): validation
   losses, which a resumed run reads back from metrics.jsonl into its summary and rewrites */
static void sb_num17(StrBuf *b, const char *key, double v, int last) {
    if (isfinite(v)) sb_printf(b, "\"%s\": %.17g%s", key, v, last ? "" : ", ");
    else sb_printf(b, "\"%s\": null%s", key, last ? "" : ", ");
}

static void sb_str(StrBuf *b, const char *key, const char *v, int last) {
    sb_printf(b, "\"%s\": \"", key);
    for (const char *c = v ? v : ""; *c; c++) {
        if (*c == '"' || *c == '\\') sb_printf(b, "\\%c", *c);
        else if ((unsigned char)*c < 0x20) sb_printf(b, "\\u%04x", *c);
        else sb_printf(b, "%c", *c);
    }
    sb_printf(b, "\"%s", last ? "" : ", ");
}

/* snprintf whose cut-off result is acceptable (paths and names are checked where used) */
static void study_fmt(char *out, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* ---- files ---- */
static int study_write_atomic(const char *path, const char *data, size_t n) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, n, f) == n;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path)) {
        int e = errno; /* the caller's message says why */
        remove(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* a regular file's text; NULL for anything else: a FIFO or device (ablate run /dev/zero) would
   block or read without end */
static char *study_read_all(const char *path, size_t *len) {
    struct stat st;
    if (stat(path, &st) || !S_ISREG(st.st_mode)) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    StrBuf b = {0};
    char chunk[65536];
    size_t k;
    sb_printf(&b, "%s", "");
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sb_printf(&b, "%.*s", (int)k, chunk);
    fclose(f);
    if (len) *len = b.n;
    return b.p;
}

static int study_mkdirs(const char *path) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(p, 0777) && errno != EEXIST) return -1;
            *c = '/';
        }
    return mkdir(p, 0777) && errno != EEXIST ? -1 : 0;
}

static int study_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* a checkpoint directory holds plain files only */
static void study_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
    closedir(d);
    rmdir(dir);
}

/* ---- reading our own flat JSON: the number or string after "key": ---- */
static const char *study_json_find(const char *text, const char *key) {
    char k[80];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(text, k);
    if (!p) return NULL;
    p += strlen(k);
    while (*p == ' ') p++;
    return p;
}

static double study_json_num(const char *text, const char *key) {
    const char *p = study_json_find(text, key);
    if (!p || !strncmp(p, "null", 4)) return NAN;
    return strtod(p, NULL);
}

static void study_json_str(const char *text, const char *key, char *out, size_t n) {
    const char *p = study_json_find(text, key);
    size_t k = 0;
    if (p && *p == '"')
        for (p++; *p && *p != '"' && k + 1 < n; p++) {
            if (*p == '\\' && p[1]) p++;
            out[k++] = *p;
        }
    out[k] = 0;
}

/* ---- run configuration: the table of run keys ---- */
static int rk_attn_parse(const char *v, int *out) {
    AttnKind k;
    if (attn_kind_parse(v, &k)) return -1;
    *out = (int)k;
    return 0;
}
static const char *rk_attn_name(int v) { return attn_kind_name((AttnKind)v); }
static int rk_norm_parse(const char *v, int *out) {
    SmolNormKind k;
    if (smollm_norm_kind_parse(v, &k)) return -1;
    *out = (int)k;
    return 0;
}
static const char *rk_norm_name(int v) { return smollm_norm_kind_name((SmolNormKind)v); }
static int rk_reduce_parse(const char *v, int *out) {
    if (!strcmp(v, "fp32")) *out = TRAIN_REDUCE_FP32;
    else if (!strcmp(v, "bf16")) *out = TRAIN_REDUCE_BF16;
    else return -1;
    return 0;
}
static const char *rk_reduce_name(int v) { return v == TRAIN_REDUCE_BF16 ? "bf16" : "fp32"; }
static int rk_schedule_check(const char *v, char *err, size_t errlen) {
    return attn_schedule_length(v, err, errlen) < 0 ? -1 : 0;
}

#define RK_FIELD_(f) offsetof(StudyRunConfig, f), sizeof(((StudyRunConfig *)0)->f)
/* plain keys: name, type, storage, field, minimum, default, group, flags, help */
#define RK_(name, type, store, f, min, max, def, group, flags, help) \
    {name, type, store, RK_FIELD_(f), min, def, NULL, NULL, NULL, NULL, NULL, group, flags, help, max}
/* integers: min <= v <= max */
#define RK_INT_(name, f, min, max, def, group, help) RK_(name, STUDY_RUN_KEY_INT, STUDY_RUN_AT_INT, f, min, max, def, group, 0, help)
/* numbers: min <= v <= max, or with STUDY_RUN_KEY_ABOVE_MIN / _BELOW_MAX in flags strict on that side */
#define RK_FLT_(name, f, min, max, flags, def, group, help) \
    RK_(name, STUDY_RUN_KEY_NUM, STUDY_RUN_AT_FLOAT, f, min, max, def, group, flags, help)
#define RK_DBL_(name, f, max, group, help) RK_(name, STUDY_RUN_KEY_NUM, STUDY_RUN_AT_DOUBLE, f, 0, max, NULL, group, 0, help)
#define RK_BOOL_(name, f, group, help) RK_(name, STUDY_RUN_KEY_BOOL, STUDY_RUN_AT_INT, f, 0, 0, NULL, group, 0, help)
/* the bounds of the table: sizes smollm.h takes (SMOLLM_MAX_*), counts an int holds with room
   for the products the trainer forms from them */
#define RK_WIDTH_ SMOLLM_MAX_WIDTH
#define RK_COUNT_ 1000000000
#define RK_TOKENS_ SMOLLM_MAX_SEQ

/* Order matters twice: it is the order of config.json and of the canonical text that the run
   identity hashes (a reordering changes every identity: append new keys where they belong and
   accept that old studies' identities change, or append at the end). */
static const StudyRunKey run_keys_[] = {
    /* model */
    {"attn", STUDY_RUN_KEY_ENUM, STUDY_RUN_AT_INT, RK_FIELD_(model.attn.kind), 0, NULL, ATTN_KIND_LIST, rk_attn_parse,
     rk_attn_name, NULL, "attention", "model", 0, "attention mechanism (default gqa)", 0},
    {"attn_layers", STUDY_RUN_KEY_STR, STUDY_RUN_AT_CHARS, RK_FIELD_(model.attn_layers), 0, NULL, NULL, NULL, NULL,
     rk_schedule_check, NULL, "model", 0,
     "per-layer schedule (attn.h), e.g. swa:256*3,gqa; in [axes] join items with '+'", 0},
    {"norm", STUDY_RUN_KEY_ENUM, STUDY_RUN_AT_INT, RK_FIELD_(model.norm), 0, NULL, "pre, post or sandwich", rk_norm_parse,
     rk_norm_name, NULL, "norm strategy", "model", 0, "normalization placement (default pre)", 0},
    RK_INT_("layers", model.n_layers, 1, SMOLLM_MAX_LAYERS, NULL, "model", "blocks (default 30)"),
    RK_INT_("d_model", model.d_model, 1, RK_WIDTH_, NULL, "model", "width (default 576)"),
    RK_INT_("heads", model.n_heads, 1, RK_WIDTH_, NULL, "model", "query heads; must divide d_model (default 9)"),
    RK_INT_("ffn", model.ffn_dim, 0, SMOLLM_MAX_FFN, NULL, "model", "SwiGLU hidden size (default 8/3 d_model rounded up to 64)"),
    RK_FLT_("rope_theta", model.rope_theta, 0, 1e12, STUDY_RUN_KEY_ABOVE_MIN, NULL, "model", "RoPE base (default 100000)"),
    RK_FLT_("resid_dropout", model.resid_dropout, 0, 1, STUDY_RUN_KEY_BELOW_MAX | STUDY_RUN_KEY_IDENTITY_IF_SET, NULL, "model",
            "dropout probability on each sublayer's output, training only (default 0: none)"),
    /* every attention option, generated from attn.h's option table (the rooms' ATTN_OPTIONS_*) */
#define RK_ATTN_ROW_(field, name, min, max, flags, help)                                                          \
    {name, ((flags) & ATTN_OPT_BOOL) ? STUDY_RUN_KEY_BOOL : STUDY_RUN_KEY_INT, STUDY_RUN_AT_INT, RK_FIELD_(model.attn.field), min,   \
     NULL, NULL, NULL, NULL, NULL, NULL, "attention", STUDY_RUN_KEY_ATTN_OPTION, help, max},
#define RK_ATTN_(room, field, name, min, max, flags, help) RK_ATTN_ROW_(field, name, min, max, flags, help)
#define RK_ATTN_ROOM_(E, name, room) ATTN_OPTIONS_##room(RK_ATTN_)
    ATTN_OPTIONS_common(RK_ATTN_ROW_)
    ATTN_REGISTRY(RK_ATTN_ROOM_, ATTN_NO_ROOM_)
#undef RK_ATTN_ROOM_
#undef RK_ATTN_
#undef RK_ATTN_ROW_
    /* training */
    RK_INT_("seq", seq, 1, RK_TOKENS_, "256", "train", "context length"),
    RK_INT_("batch", batch, 1, SMOLLM_MAX_BATCH, "8", "train", "sequences per micro-batch"),
    RK_INT_("grad_accum", train.grad_accum, 1, SMOLLM_MAX_BATCH, NULL, "train", "micro-batches per step (default 1)"),
    /* changes the results only over several ranks; in the identity when bf16, so that every
       run made before the key existed keeps its identity */
    {"grad_reduce", STUDY_RUN_KEY_ENUM, STUDY_RUN_AT_INT, RK_FIELD_(train.grad_reduce), 0, NULL, "fp32 or bf16",
     rk_reduce_parse, rk_reduce_name, NULL, "gradient reduction", "train", STUDY_RUN_KEY_IDENTITY_IF_SET,
     "data parallel (gpus_per_run, train --gpus): the precision of the ranks' gradient sum (default fp32; "
     "bf16 rounds each rank's gradients to bf16 and sums in bf16)", 0},
    /* how the sum is grouped, not what it is (train.h's GRADIENT BUCKETS): not in the identity */
    RK_FLT_("grad_bucket_mb", train.grad_bucket_mb, 0, 1e6, STUDY_RUN_KEY_NOT_IDENTITY, NULL, "train",
            "data parallel: reduce the gradients in buckets of this many MB while the backward runs, on a "
            "second stream on the GPU (default 0: one reduction after the backward)"),
    RK_INT_("steps", train.steps, 1, RK_COUNT_, "200", "train", "optimizer steps (unless tokens is given)"),
    RK_DBL_("tokens", tokens, 1e18, "train", "budget in tokens: steps = tokens / (batch seq grad_accum) (0: none)"),
    RK_DBL_("seconds", seconds, 1e9, "train", "wall-clock cap on training seconds (0: none)"),
    RK_FLT_("lr", train.lr, 0, 1e30, STUDY_RUN_KEY_ABOVE_MIN, NULL, "train", "peak learning rate (default 3e-3)"),
    RK_FLT_("min_lr_ratio", train.min_lr_ratio, 0, 1, STUDY_RUN_KEY_ZERO_IS_NONE, NULL, "train", "cosine floor as a fraction of lr (default 0.1; 0: decay to zero, written -1)"),
    RK_INT_("warmup", train.warmup, 0, RK_COUNT_, NULL, "train", "linear warm-up steps"),
    RK_FLT_("weight_decay", train.weight_decay, 0, 10, STUDY_RUN_KEY_ZERO_IS_NONE, NULL, "train", "AdamW decay on matrices (default 0.1; 0: none, written -1)"),
    RK_("clip", STUDY_RUN_KEY_NUM, STUDY_RUN_AT_FLOAT, train.clip, -1e30, 1e30, NULL, "train", STUDY_RUN_KEY_OFF_AT_ZERO,
        "global gradient-norm clip; 0 or less disables (default 1)"),
    RK_("seed", STUDY_RUN_KEY_INT, STUDY_RUN_AT_U64, model.seed, 0, 0, "1337", "train", STUDY_RUN_KEY_NO_AXIS,
        "weights and batch order (a study's seeds: `seeds`)"),
    /* data and evaluation */
    RK_("data", STUDY_RUN_KEY_STR, STUDY_RUN_AT_PTR, data, 0, 0, NULL, "data", 0,
        "text file, shard, directory or mix a.bin:0.7,b.bin:0.3 (default data/corpus.txt, else GPL-3)"),
    RK_FLT_("val_frac", val_frac, 0, 1, STUDY_RUN_KEY_ABOVE_MIN | STUDY_RUN_KEY_BELOW_MAX, "0.1", "data", "fraction held out for validation"),
    RK_INT_("eval_every", eval_every, 0, RK_COUNT_, NULL, "data", "validate every N steps (0: 10 times per run)"),
    RK_INT_("eval_batches", eval_batches, 1, 1000000, "8", "data", "validation batches per intermediate evaluation"),
    RK_DBL_("final_eval_tokens", final_eval_tokens, 1e15, "data",
            "the last evaluation's cap in tokens (0: 4194304, STUDY_FINAL_EVAL_TOKENS)"),
    RK_INT_("log_every", log_every, 1, RK_COUNT_, "1", "data", "metrics line every N steps"),
    RK_INT_("checkpoint_every", checkpoint_every, 0, RK_COUNT_, NULL, "data", "checkpoint every N steps (0: at each evaluation)"),
    /* samples are read, not computed from: not in the run identity */
    RK_("sample_every", STUDY_RUN_KEY_INT, STUDY_RUN_AT_INT, sample_every, 0, RK_COUNT_, NULL, "data", STUDY_RUN_KEY_NOT_IDENTITY,
        "every N steps and at the end, a greedy continuation of the validation split's first 16 tokens "
        "into the run's samples.jsonl (0: none)"),
    RK_("sample_tokens", STUDY_RUN_KEY_INT, STUDY_RUN_AT_INT, sample_tokens, 1, 4096, "32", "data", STUDY_RUN_KEY_NOT_IDENTITY,
        "new tokens per sample (sample_every)"),
    {"task", STUDY_RUN_KEY_STR, STUDY_RUN_AT_PTR, RK_FIELD_(task), 0, NULL, "mqar|copy|induction", NULL, NULL, NULL, "task",
     "data", 0, "a synthetic task instead of data (its evaluations report top-1 accuracy)", 0},
    RK_INT_("task_size", task_size, 0, RK_TOKENS_, NULL, "data", "pairs (mqar) or copied length (copy); 0 = default"),
    RK_INT_("task_vocab", task_vocab, 8, SMOLLM_MAX_VOCAB, NULL, "data", "the task's vocabulary (0: 256)"),
    RK_("save", STUDY_RUN_KEY_STR, STUDY_RUN_AT_PTR, save, 0, 0, NULL, "data", STUDY_RUN_KEY_NO_AXIS | STUDY_RUN_KEY_NOT_IDENTITY,
        "write the trained weights to this safetensors file (named model.safetensors: with config.json and tokenizer, export.h)"),
    RK_("eval_mc", STUDY_RUN_KEY_STR, STUDY_RUN_AT_PTR, eval_mc, 0, 0, NULL, "data", STUDY_RUN_KEY_IDENTITY_IF_SET,
        "multiple-choice JSONL (ablate mc-make) scored at the end: an accuracy column (eval.h)"),
    /* a measurement of the trained model, not of training: not in the run identity */
    RK_("bench_decode", STUDY_RUN_KEY_BOOL, STUDY_RUN_AT_INT, bench_decode, 0, 0, NULL, "data", STUDY_RUN_KEY_NOT_IDENTITY,
        "after training, batch-1 decode tokens/s at seq and the measured decode cache bytes into summary.json "
        "(decode_tokens_per_s, decode_cache_bytes) and a decode tok/s column (0: off)"),
    RK_("init_from", STUDY_RUN_KEY_STR, STUDY_RUN_AT_PTR, init_from, 0, 0, NULL, "train", STUDY_RUN_KEY_IDENTITY_IF_SET,
        "start from an exported model directory of the same shapes (ablate export) instead of the seeded init"),
};
#undef RK_BOOL_
#undef RK_DBL_
#undef RK_FLT_
#undef RK_INT_
#undef RK_
#undef RK_WIDTH_
#undef RK_COUNT_
#undef RK_TOKENS_
#undef RK_FIELD_

STUDYDEF int study_run_key_count(void) { return (int)(sizeof run_keys_ / sizeof *run_keys_); }
STUDYDEF const StudyRunKey *study_run_key_at(int i) { return i >= 0 && i < study_run_key_count() ? &run_keys_[i] : NULL; }

static void study_norm_key(const char *key, char *out, size_t n) {
    while (*key == '-') key++;
    size_t k = 0;
    for (; *key && k + 1 < n; key++) out[k++] = *key == '-' ? '_' : (char)tolower((unsigned char)*key);
    out[k] = 0;
}

STUDYDEF const StudyRunKey *study_run_key_find(const char *key) {
    char k[40];
    study_norm_key(key, k, sizeof k);
    for (int i = 0; i < study_run_key_count(); i++)
        if (!strcmp(run_keys_[i].name, k)) return &run_keys_[i];
    return NULL;
}

STUDYDEF void study_run_config_defaults(StudyRunConfig *c) {
    char err[128];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < study_run_key_count(); i++)
        if (run_keys_[i].def) study_run_config_set(c, run_keys_[i].name, run_keys_[i].def, err, sizeof err);
}

static int study_int(const char *key, const char *v, int min, int *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < min || x > INT_MAX) {
        snprintf(err, errlen, "%s expects an integer >= %d, got '%s'", key, min, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* a table key's range as text: "[1, 1048576]", "(0, 10]", "(0, 1)", ">= 0" */
static void study_range_text(const StudyRunKey *k, char *out, size_t n) {
    if (k->max == 0) snprintf(out, n, "%s %.10g", k->flags & STUDY_RUN_KEY_ABOVE_MIN ? ">" : ">=", k->min);
    else
        snprintf(out, n, "%s%.10g, %.10g%s", k->flags & STUDY_RUN_KEY_ABOVE_MIN ? "(" : "[", k->min, k->max,
                 k->flags & STUDY_RUN_KEY_BELOW_MAX ? ")" : "]");
}

/* an int key within the table's range; the text is parsed as a long long first, so that a
   value past INT_MAX is reported as too large rather than wrapped */
static int study_int_key(const StudyRunKey *k, const char *key, const char *v, int *out, char *err, size_t errlen) {
    char *end, range[64];
    errno = 0;
    long long x = strtoll(v, &end, 10);
    double max = k->max > 0 ? k->max : INT_MAX;
    int bad_text = errno == EINVAL || *end || end == v, low = !bad_text && x < (long long)k->min; /* LLONG_MIN too */
    if (bad_text || low || errno || x > (long long)max) {
        study_range_text(k, range, sizeof range);
        if (bad_text || low)
            snprintf(err, errlen, "%s expects an integer >= %.10g, got '%s' (allowed: %s)", key, k->min, v, range);
        else snprintf(err, errlen, "%s expects an integer <= %.10g, got '%s' (allowed: %s)", key, max, v, range);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* a number key within the table's range (strict where its flags say so) */
static int study_num_key(const StudyRunKey *k, const char *key, const char *v, double *out, char *err, size_t errlen) {
    char *end, range[64];
    errno = 0;
    double x = strtod(v, &end);
    int ok = !errno && !*end && end != v && isfinite(x);
    int low = ok && (k->flags & STUDY_RUN_KEY_ABOVE_MIN ? x <= k->min : x < k->min);
    int high = ok && k->max > 0 && (k->flags & STUDY_RUN_KEY_BELOW_MAX ? x >= k->max : x > k->max);
    if (!ok || low || high) {
        study_range_text(k, range, sizeof range);
        if (high)
            snprintf(err, errlen, "%s expects a number %s %.10g, got '%s' (allowed: %s)", key,
                     k->flags & STUDY_RUN_KEY_BELOW_MAX ? "<" : "<=", k->max, v, range);
        else
            snprintf(err, errlen, "%s expects a number %s %.10g, got '%s' (allowed: %s)", key,
                     k->flags & STUDY_RUN_KEY_ABOVE_MIN ? ">" : ">=", k->min, v, range);
        return -1;
    }
    *out = x;
    return 0;
}

static int study_bool(const char *key, const char *v, int *out, char *err, size_t errlen) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "yes")) { *out = 1; return 0; }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "no")) { *out = 0; return 0; }
    snprintf(err, errlen, "%s expects 0 or 1 (or true/false), got '%s'", key, v);
    return -1;
}

/* "a|b|c" as "a, b or c" (a list without '|' as it is) */
static void study_choices_text(const char *choices, char *out, size_t n) {
    size_t k = 0, items = 1;
    for (const char *p = choices; *p; p++) items += *p == '|';
    for (size_t item = 1; *choices && k + 1 < n; choices++) {
        if (*choices != '|') { out[k++] = *choices; continue; }
        item++;
        k += snprintf(out + k, n - k, "%s", item == items ? " or " : ", ");
        if (k >= n) k = n - 1;
    }
    out[k] = 0;
}

STUDYDEF int study_run_config_set(StudyRunConfig *c, const char *key, const char *v, char *err, size_t errlen) {
    const StudyRunKey *k = study_run_key_find(key);
    if (!k) {
        snprintf(err, errlen, "unknown key '%s' (expected a model, training or data key; see study.h)", key);
        return -1;
    }
    char *at = (char *)c + k->offset;
    int i = 0;
    double x = 0;
    switch (k->type) {
    case STUDY_RUN_KEY_INT:
        if (k->store == STUDY_RUN_AT_U64) { /* the seed: any 64-bit value */
            char *end;
            errno = 0;
            unsigned long long u = strtoull(v, &end, 10);
            if (errno || *end || end == v || strchr(v, '-')) {
                snprintf(err, errlen, "%s expects an integer >= 0, got '%s'", key, v);
                return -1;
            }
            uint64_t u64 = (uint64_t)u;
            memcpy(at, &u64, sizeof u64);
            return 0;
        }
        if (study_int_key(k, key, v, &i, err, errlen)) return -1;
        memcpy(at, &i, sizeof i);
        return 0;
    case STUDY_RUN_KEY_NUM:
        if (study_num_key(k, key, v, &x, err, errlen)) return -1;
        if ((k->flags & STUDY_RUN_KEY_OFF_AT_ZERO) && x <= 0) x = -1;
        if ((k->flags & STUDY_RUN_KEY_ZERO_IS_NONE) && x == 0) x = -1;
        if (k->store == STUDY_RUN_AT_FLOAT) {
            float f = (float)x;
            if (!isfinite(f)) { snprintf(err, errlen, "%s: %s is out of range", key, v); return -1; }
            memcpy(at, &f, sizeof f);
        } else memcpy(at, &x, sizeof x);
        return 0;
    case STUDY_RUN_KEY_BOOL:
        if (study_bool(key, v, &i, err, errlen)) return -1;
        memcpy(at, &i, sizeof i);
        return 0;
    case STUDY_RUN_KEY_ENUM:
        if (k->size != sizeof(int) || k->parse(v, &i)) {
            snprintf(err, errlen, "unknown %s '%s' for %s: expected %s", k->noun, v, key, k->choices);
            return -1;
        }
        memcpy(at, &i, sizeof i);
        return 0;
    case STUDY_RUN_KEY_STR:
        if (k->choices) { /* one of a fixed set "a|b|c" */
            size_t n = strlen(v);
            int found = 0;
            for (const char *p = k->choices; *p && !found; p += strcspn(p, "|"), p += *p == '|')
                found = strcspn(p, "|") == n && !strncmp(p, v, n);
            if (!found) {
                char want[256];
                study_choices_text(k->choices, want, sizeof want);
                snprintf(err, errlen, "unknown %s '%s': expected %s", k->noun, v, want);
                return -1;
            }
        }
        if (k->check && k->check(v, err, errlen)) return -1;
        if (k->store == STUDY_RUN_AT_CHARS) {
            if (strlen(v) >= k->size) { snprintf(err, errlen, "%s '%s' is too long (at most %zu characters)", key, v, k->size - 1); return -1; }
            memset(at, 0, k->size);
            memcpy(at, v, strlen(v));
        } else memcpy(at, &v, sizeof v); /* the caller's storage outlives c */
        return 0;
    }
    return -1;
}

/* a double as the shortest of %.15g / %.17g that reads back exactly */
static void study_dbl(char *out, size_t n, double x) {
    snprintf(out, n, "%.15g", x);
    if (strtod(out, NULL) != x) snprintf(out, n, "%.17g", x);
}

STUDYDEF void study_run_key_format(const StudyRunKey *k, const StudyRunConfig *c, char *out, size_t n) {
    const char *at = (const char *)c + k->offset;
    int i;
    float f;
    double d;
    uint64_t u;
    const char *str;
    switch (k->store) {
    case STUDY_RUN_AT_INT:
        memcpy(&i, at, sizeof i);
        if (k->type == STUDY_RUN_KEY_ENUM) snprintf(out, n, "%s", k->name_of(i));
        else snprintf(out, n, "%d", i);
        break;
    case STUDY_RUN_AT_FLOAT: /* the shortest text that reads back as the same float: lr 0.003, not 0.00300000003 */
        memcpy(&f, at, sizeof f);
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(out, n, "%.*g", prec, (double)f);
            if ((float)strtod(out, NULL) == f) break;
        }
        break;
    case STUDY_RUN_AT_DOUBLE: memcpy(&d, at, sizeof d); study_dbl(out, n, d); break;
    case STUDY_RUN_AT_U64: memcpy(&u, at, sizeof u); snprintf(out, n, "%llu", (unsigned long long)u); break;
    case STUDY_RUN_AT_PTR: memcpy(&str, at, sizeof str); snprintf(out, n, "%s", str ? str : ""); break;
    case STUDY_RUN_AT_CHARS: snprintf(out, n, "%.*s", (int)k->size, at); break;
    }
}

STUDYDEF void study_run_keys_help(FILE *f) {
    const char *groups[] = {"model", "train", "data"}, *titles[] = {"model", "training", "data and evaluation"};
    for (int g = 0; g < 3; g++) {
        fprintf(f, "%s:\n", titles[g]);
        for (int i = 0; i < study_run_key_count(); i++) {
            const StudyRunKey *k = &run_keys_[i];
            if (strcmp(k->group, groups[g])) continue;
            char flag[48];
            snprintf(flag, sizeof flag, "--%s", k->name);
            for (char *c = flag + 2; *c; c++) if (*c == '_') *c = '-';
            const char *what = k->type == STUDY_RUN_KEY_INT ? "N" : k->type == STUDY_RUN_KEY_NUM ? "X" : k->type == STUDY_RUN_KEY_BOOL ? "0|1"
                                                                                                 : "S";
            fprintf(f, "  %-20s %-3s %s", flag, what, k->help);
            if (k->def) fprintf(f, " (default %s)", k->def);
            if ((k->type == STUDY_RUN_KEY_INT || k->type == STUDY_RUN_KEY_NUM) && k->store != STUDY_RUN_AT_U64 && !(k->flags & STUDY_RUN_KEY_OFF_AT_ZERO)) {
                char range[64];
                study_range_text(k, range, sizeof range);
                fprintf(f, " %s", range);
            }
            if (k->choices) {
                char want[256];
                study_choices_text(k->choices, want, sizeof want);
                fprintf(f, ": %s", want);
            }
            if (k->flags & STUDY_RUN_KEY_NO_AXIS) fprintf(f, " [not an axis]");
            fprintf(f, "\n");
        }
    }
}

STUDYDEF int study_run_config_steps(const StudyRunConfig *c) {
    if (c->tokens > 0) {
        double per = (double)c->batch * c->seq * (c->train.grad_accum ? c->train.grad_accum : 1);
        double s = ceil(c->tokens / per);
        return s < 1 ? 1 : s > INT_MAX ? INT_MAX : (int)s;
    }
    return c->train.steps;
}

STUDYDEF int study_run_config_check(const StudyRunConfig *c, Gpu *gpu, char *err, size_t errlen) {
    SmolConfig mc = c->model;
    int task_vocab = c->task_vocab ? c->task_vocab : 256;
    /* the byte vocabulary: a tokenized data set's is known only once it is read */
    mc.vocab_size = c->task ? task_vocab : DATA_BYTE_VOCAB;
    if (smollm_check(&mc, gpu, c->batch, c->seq, err, errlen)) return -1;
    if ((c->sample_every > 0 && !c->task) || c->bench_decode) { /* they generate: every layer must decode */
        int layer;
        char e2[400];
        if (smollm_decode_check(&mc, 0, &layer, e2, sizeof e2) && layer >= 0) {
            snprintf(err, errlen, "%s generates (layer %d): %s", c->bench_decode ? "bench_decode" : "sample_every",
                     layer, e2);
            return -1;
        }
    }
    DataTask t; /* holds no memory: a task's sizes are checked by setting one up */
    if (c->task && data_task_init(&t, c->task, task_vocab, c->batch, c->seq, c->task_size, 0, err, errlen)) return -1;
    return 0;
}

/* the configuration with its defaults resolved where they resolve without data: the model's
   shape (byte vocabulary), the optimizer's, the default text, the last evaluation's cap */
static void run_config_resolved(const StudyRunConfig *c, StudyRunConfig *r) {
    char err[256];
    *r = *c;
    if (!r->model.vocab_size) r->model.vocab_size = DATA_BYTE_VOCAB;
    if (smollm_resolve(&r->model, err, sizeof err)) r->model = c->model; /* a bad shape: as given */
    train_config_resolve(&r->train);
    if (!r->data && !r->task) r->data = study_default_data();
    if (!(r->final_eval_tokens > 0)) r->final_eval_tokens = STUDY_FINAL_EVAL_TOKENS;
}

/* every key of the table (not save with canon, nor seed without with_seed), compact JSON */
static void run_config_keys_json(StrBuf *b, const StudyRunConfig *r, int canon, int with_seed) {
    sb_printf(b, "{");
    int first = 1;
    for (int i = 0; i < study_run_key_count(); i++) {
        const StudyRunKey *k = &run_keys_[i];
        if (canon && (k->flags & STUDY_RUN_KEY_NOT_IDENTITY)) continue;
        if (!with_seed && k->store == STUDY_RUN_AT_U64) continue;
        char v[512];
        study_run_key_format(k, r, v, sizeof v);
        if (canon && (k->flags & STUDY_RUN_KEY_ATTN_OPTION) && !strcmp(v, "0")) continue;
        if (canon && (k->flags & STUDY_RUN_KEY_IDENTITY_IF_SET) &&
            (!v[0] || (k->type == STUDY_RUN_KEY_NUM && !strcmp(v, "0")) ||
             (k->type == STUDY_RUN_KEY_ENUM && !strcmp(v, k->name_of(0)))))
            continue;
        if (!first) sb_printf(b, ", ");
        first = 0;
        if (k->type == STUDY_RUN_KEY_STR || k->type == STUDY_RUN_KEY_ENUM) sb_str(b, k->name, v, 1);
        else sb_printf(b, "\"%s\": %s", k->name, v);
    }
    sb_printf(b, "}");
}

STUDYDEF char *study_run_config_canonical(const StudyRunConfig *c, int with_seed) {
    StudyRunConfig r;
    run_config_resolved(c, &r);
    StrBuf b = {0};
    run_config_keys_json(&b, &r, 1, with_seed);
    return b.p;
}

STUDYDEF uint64_t study_run_config_identity(const StudyRunConfig *c, int with_seed) {
    char *t = study_run_config_canonical(c, with_seed);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    free(t);
    return h;
}

/* config.json's "model": every key of the table as resolved, then what follows from them */
static void run_config_json(StrBuf *b, const StudyRunConfig *c) {
    StudyRunConfig r;
    run_config_resolved(c, &r);
    run_config_keys_json(b, &r, 0, 1);
    b->n--; /* reopen the object for the derived values */
    sb_printf(b, ", \"head_dim\": %d, \"vocab\": %d, \"run_steps\": %d}", r.model.attn.head_dim, r.model.vocab_size,
              study_run_config_steps(c));
}

/* ---- specs ---- */
static char *study_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static int study_is_study_key(const char *k) {
    return !strcmp(k, "name") || !strcmp(k, "seeds") || !strcmp(k, "seed_list") || !strcmp(k, "select") ||
           !strcmp(k, "device") || !strcmp(k, "keep_checkpoints") || !strcmp(k, "gpus_per_run");
}

static void study_init(StudySpec *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "study");
    snprintf(s->source, sizeof s->source, "command line");
    s->n_seeds = 1;
}

STUDYDEF int study_set(StudySpec *s, const char *key, const char *value, char *err, size_t errlen);
#define study_set_base study_set
/* a key of the base section */
STUDYDEF int study_set(StudySpec *s, const char *key, const char *value, char *err, size_t errlen) {
    char k[40];
    study_norm_key(key, k, sizeof k);
    if (!strcmp(k, "name")) {
        if (!*value || strlen(value) >= sizeof s->name) {
            snprintf(err, errlen, "name '%s': expected 1 to %zu characters", value, sizeof s->name - 1);
            return -1;
        }
        for (const char *c = value; *c; c++)
            if (!isalnum((unsigned char)*c) && !strchr("._-", *c)) {
                snprintf(err, errlen, "name '%s': expected letters, digits, '.', '_' or '-' only", value);
                return -1;
            }
        /* runs/NAME must be a directory of its own under runs/: "." is runs/ itself, ".." its parent */
        if (!strcmp(value, ".") || !strcmp(value, "..")) {
            snprintf(err, errlen, "name '%s': expected a directory name under runs/, not '.' or '..'", value);
            return -1;
        }
        snprintf(s->name, sizeof s->name, "%s", value);
        return 0;
    }
    /* `seeds` is always a count and `seed_list` always a list: "seeds = 1338" read as either
       a count or a seed was ambiguous */
    if (!strcmp(k, "seeds") || !strcmp(k, "seed_list")) {
        int list = !strcmp(k, "seed_list");
        if (s->seeds_given && s->seeds_given != 1 + list) {
            snprintf(err, errlen, "%s = %s: seeds (a count from `seed`) and seed_list (the seeds themselves) are both "
                                  "given: expected one of them", key, value);
            return -1;
        }
        if (!list) {
            int x;
            if (strchr(value, ',')) {
                snprintf(err, errlen, "seeds = %s: seeds is a count (N seeds from `seed`); a list of seeds goes in "
                                      "seed_list = %s (--seed-list %s)", value, value, value);
                return -1;
            }
            if (study_int(key, value, 1, &x, err, errlen)) return -1;
            if (x > STUDY_MAX_SEEDS) {
                snprintf(err, errlen, "seeds = %d: expected at most %d seeds (seeds is a count; the one seed %d is "
                                      "seed_list = %d)", x, STUDY_MAX_SEEDS, x, x);
                return -1;
            }
            s->n_seeds = x;
            s->seeds_set = 0; /* study_finish counts them up from `seed` */
            s->seeds_given = 1;
            return 0;
        }
        char buf[STUDY_STR];
        if (strlen(value) >= sizeof buf) { snprintf(err, errlen, "seed_list: expected at most %zu characters", sizeof buf - 1); return -1; }
        snprintf(buf, sizeof buf, "%s", value);
        int n = 0;
        for (char *tok = buf, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next) *next++ = 0;
            char *t = study_trim(tok), *end;
            errno = 0;
            unsigned long long x = strtoull(t, &end, 10);
            if (errno || *end || end == t || strchr(t, '-')) {
                snprintf(err, errlen, "seed_list = %s: expected seeds (integers >= 0) separated by commas, got '%s'",
                         value, t);
                return -1;
            }
            for (int i = 0; i < n; i++)
                if (s->seeds[i] == x) { snprintf(err, errlen, "seed_list = %s: seed %llu is listed twice", value, x); return -1; }
            if (n == STUDY_MAX_SEEDS) { snprintf(err, errlen, "seed_list: expected at most %d seeds", STUDY_MAX_SEEDS); return -1; }
            s->seeds[n++] = (uint64_t)x;
        }
        s->n_seeds = n;
        s->seeds_set = 1;
        s->seeds_given = 2;
        return 0;
    }
    if (!strcmp(k, "select")) {
        if (strcmp(value, "val_loss") && strcmp(value, "tokens_per_s")) {
            snprintf(err, errlen, "select '%s': expected val_loss or tokens_per_s", value);
            return -1;
        }
        s->select_tps = !strcmp(value, "tokens_per_s");
        return 0;
    }
    if (!strcmp(k, "device")) {
        if (strcmp(value, "cpu") && strcmp(value, "cuda")) {
            snprintf(err, errlen, "unknown device '%s': expected cpu or cuda", value);
            return -1;
        }
        snprintf(s->device, sizeof s->device, "%s", value);
        return 0;
    }
    if (!strcmp(k, "keep_checkpoints")) return study_bool(key, value, &s->keep_checkpoints, err, errlen);
    if (!strcmp(k, "gpus_per_run")) {
        int x;
        if (study_int(key, value, 1, &x, err, errlen)) return -1;
        if (x > DIST_MAX_WORLD) {
            snprintf(err, errlen, "gpus_per_run = %d: expected 1 to %d ranks per run", x, DIST_MAX_WORLD);
            return -1;
        }
        s->gpus_per_run = x;
        return 0;
    }
    /* a run key: check it now, apply it per run later */
    StudyRunConfig scratch;
    study_run_config_defaults(&scratch);
    if (study_run_config_set(&scratch, key, value, err, errlen)) return -1;
    /* study.ini writes the value back, in double quotes when it holds a comment character: a
       double quote inside it would end that quoting early (and the resumed study would read
       another value) */
    if (strchr(value, '"')) {
        snprintf(err, errlen, "key '%s': the value %s holds a double quote: expected none inside a value (a whole "
                 "value may be quoted: %s = \"v\")", k, value, k);
        return -1;
    }
    for (int i = 0; i < s->n_base; i++)
        if (!strcmp(s->base_keys[i], k)) {
            snprintf(err, errlen, "key '%s' is set twice", key);
            return -1;
        }
    if (s->n_base == STUDY_MAX_BASE || strlen(value) >= STUDY_STR) {
        snprintf(err, errlen, "key '%s': too many keys or value too long (max %d keys, %d chars)", key,
                 STUDY_MAX_BASE, STUDY_STR - 1);
        return -1;
    }
    study_fmt(s->base_keys[s->n_base], sizeof s->base_keys[0], "%s", k);
    snprintf(s->base_values[s->n_base], sizeof s->base_values[0], "%s", value);
    s->n_base++;
    return 0;
}

/* the next item of a comma-separated list, a value in double quotes keeping its commas:
   *p advances past the item and its comma; the item, unquoted and trimmed, goes to out.
   Returns 1 for an item, 0 at the end, -1 with a message (unbalanced quote, overlong item) */
static int study_next_item(const char **p, char *out, size_t n, char *err, size_t errlen) {
    const char *s = *p;
    if (!s) return 0;
    while (isspace((unsigned char)*s)) s++;
    size_t k = 0;
    int quoted = *s == '"';
    if (quoted) {
        const char *close = strchr(s + 1, '"');
        if (!close) { snprintf(err, errlen, "unbalanced double quote in %s", s); return -1; }
        k = (size_t)(close - s - 1);
        if (k >= n) { snprintf(err, errlen, "value %.*s... is longer than %zu characters", 40, s + 1, n - 1); return -1; }
        memcpy(out, s + 1, k);
        out[k] = 0;
        s = close + 1;
        while (isspace((unsigned char)*s)) s++;
        if (*s && *s != ',') { snprintf(err, errlen, "unexpected '%c' after the quoted value \"%s\"", *s, out); return -1; }
    } else {
        size_t len = strcspn(s, ",");
        while (len && isspace((unsigned char)s[len - 1])) len--;
        if (memchr(s, '"', len)) { snprintf(err, errlen, "a double quote inside the value %.*s: quote a whole value", (int)len, s); return -1; }
        if (len >= n) { snprintf(err, errlen, "value %.*s... is longer than %zu characters", 40, s, n - 1); return -1; }
        memcpy(out, s, len);
        out[len] = 0;
        s += strcspn(s, ",");
    }
    *p = *s == ',' ? s + 1 : NULL;
    return 1;
}

/* a value as it is written in a list or an assignment: in double quotes when it holds a
   separator (comma, blank), a comment character or a list bracket */
static void study_quote_value(char *out, size_t n, const char *v) {
    if (strpbrk(v, ",#; \t[]")) snprintf(out, n, "\"%s\"", v);
    else snprintf(out, n, "%s", v);
}

/* an axis "key = v1, v2, ..." of phase p; a value in double quotes may hold commas */
static int study_add_axis(StudySpec *s, int p, const char *key, const char *list, char *err, size_t errlen) {
    char k[40], e[300];
    study_norm_key(key, k, sizeof k);
    StudyPhase *ph = &s->phases[p];
    const StudyRunKey *rk = study_run_key_find(k);
    if (study_is_study_key(k) || (rk && (rk->flags & STUDY_RUN_KEY_NO_AXIS))) {
        snprintf(err, errlen, "'%s' cannot be an axis (axes vary run keys; seeds go in `seeds` or `seed_list`)", key);
        return -1;
    }
    for (int i = 0; i < ph->n_axes; i++)
        if (!strcmp(ph->axes[i].key, k)) { snprintf(err, errlen, "axis '%s' is given twice", key); return -1; }
    if (ph->n_axes == STUDY_MAX_AXES) { snprintf(err, errlen, "axis '%s': at most %d axes", key, STUDY_MAX_AXES); return -1; }
    StudyAxis *a = &ph->axes[ph->n_axes];
    memset(a, 0, sizeof *a);
    study_fmt(a->key, sizeof a->key, "%s", k);
    char buf[STUDY_MAX_VALUES * STUDY_VALUE_LEN];
    if (strlen(list) >= sizeof buf) { snprintf(err, errlen, "axis '%s': the list is too long", key); return -1; }
    snprintf(buf, sizeof buf, "%s", list);
    char *body = study_trim(buf);
    size_t bl = strlen(body);
    if (bl >= 2 && body[0] == '[' && body[bl - 1] == ']') { body[bl - 1] = 0; body = study_trim(body + 1); }
    if (!*body) { snprintf(err, errlen, "axis '%s' is empty: expected a list like a, b, c", key); return -1; }
    const char *cur = body;
    char v[STUDY_VALUE_LEN + 1];
    int got;
    while ((got = study_next_item(&cur, v, sizeof v, e, sizeof e)) == 1) {
        if (!*v) { snprintf(err, errlen, "axis '%s' has an empty value in '%s'", key, list); return -1; }
        if (a->n == STUDY_MAX_VALUES || strlen(v) >= sizeof a->values[0]) {
            snprintf(err, errlen, "axis '%s': at most %d values of at most %zu characters", key, STUDY_MAX_VALUES,
                     sizeof a->values[0] - 1);
            return -1;
        }
        StudyRunConfig scratch;
        study_run_config_defaults(&scratch);
        if (study_run_config_set(&scratch, key, v, err, errlen)) return -1;
        for (int j = 0; j < a->n; j++)
            if (!strcmp(a->values[j], v)) { snprintf(err, errlen, "axis '%s' lists '%s' twice", key, v); return -1; }
        memcpy(a->values[a->n++], v, strlen(v) + 1); /* fits: checked above */
    }
    if (got < 0) { snprintf(err, errlen, "axis '%s': %s", key, e); return -1; }
    ph->n_axes++;
    return 0;
}

static int study_add_phase(StudySpec *s, const char *name, char *err, size_t errlen) {
    if (s->n_phases == STUDY_MAX_PHASES) { snprintf(err, errlen, "at most %d phases", STUDY_MAX_PHASES); return -1; }
    for (int i = 0; i < s->n_phases; i++)
        if (!strcmp(s->phases[i].name, name)) { snprintf(err, errlen, "phase '%s' is given twice", name); return -1; }
    StudyPhase *ph = &s->phases[s->n_phases++];
    memset(ph, 0, sizeof *ph);
    snprintf(ph->name, sizeof ph->name, "%s", name);
    return 0;
}

static int study_finish(StudySpec *s, const char *source, char *err, size_t errlen) {
    for (int p = 0; p < s->n_phases; p++)
        if (s->phases[p].n_axes == 0) {
            if (s->has_phase_section) snprintf(err, errlen, "%s: [phase %s] has no axes", source, s->phases[p].name);
            else snprintf(err, errlen, "%s: [axes] is empty: expected lines like attn = mha, gqa", source);
            return -1;
        }
    if (s->n_phases == 0) study_add_phase(s, "grid", err, errlen); /* no axes: one run per seed */
    /* the longest assignment of each phase (the values carried from every earlier phase, then
       its own axes) must fit a run's axes string: refuse now rather than cut it later */
    size_t worst = 0;
    for (int p = 0; p < s->n_phases; p++)
        for (int a = 0; a < s->phases[p].n_axes; a++) {
            const StudyAxis *ax = &s->phases[p].axes[a];
            size_t longest = 0;
            for (int v = 0; v < ax->n; v++) {
                size_t l = strlen(ax->values[v]) + 2; /* maybe quoted */
                if (l > longest) longest = l;
            }
            worst += strlen(ax->key) + 2 + longest; /* "key=value " */
            if (worst >= STUDY_AXES_LEN) {
                snprintf(err, errlen, "%s: phase '%s': the axes up to '%s' (with the values carried from earlier "
                                      "phases) may need %zu characters, more than %d: shorten the values or use fewer axes",
                         source, s->phases[p].name, ax->key, worst, STUDY_AXES_LEN - 1);
                return -1;
            }
        }
    if (!s->seeds_set) { /* N seeds counting up from the base seed */
        StudyRunConfig c;
        if (study_base_config(s, "", &c, err, errlen)) return -1;
        for (int i = 0; i < s->n_seeds; i++) s->seeds[i] = c.model.seed + (uint64_t)i;
        s->seeds_set = 1;
    }
    return 0;
}

STUDYDEF int study_parse_text(StudySpec *s, const char *text, const char *source, char *err, size_t errlen) {
    study_init(s);
    snprintf(s->source, sizeof s->source, "%s", source);
    char e[400];
    int lineno = 0, section = 0; /* 0 base, 1 [axes], 2 [phase] */
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[8192]; /* an axis of 32 quoted values of STUDY_VALUE_LEN fits */
        lineno++;
        if (n >= sizeof line) { snprintf(err, errlen, "%s:%d: line longer than %zu characters", source, lineno, sizeof line - 1); return -1; }
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (nl ? 1 : 0);
        int quoted = 0; /* a comment starts at # or ; at the start or after a blank, outside "..." */
        for (char *c = line; *c; c++) {
            quoted ^= *c == '"';
            if (!quoted && (*c == '#' || *c == ';') && (c == line || isspace((unsigned char)c[-1]))) { *c = 0; break; }
        }
        char *l = study_trim(line);
        if (!*l) continue;
        if (*l == '[') {
            char *close = strchr(l, ']');
            if (!close || study_trim(close + 1)[0]) {
                snprintf(err, errlen, "%s:%d: bad section header '%s': expected [axes] or [phase NAME]", source, lineno, l);
                return -1;
            }
            *close = 0;
            char *sec = study_trim(l + 1);
            if (!strcmp(sec, "axes")) {
                if (s->has_axes_section || s->has_phase_section) {
                    snprintf(err, errlen, "%s:%d: [axes] %s", source, lineno,
                             s->has_axes_section ? "is given twice" : "cannot be mixed with [phase] sections");
                    return -1;
                }
                s->has_axes_section = 1;
                section = 1;
                if (study_add_phase(s, "grid", e, sizeof e)) { snprintf(err, errlen, "%s:%d: %s", source, lineno, e); return -1; }
            } else if (!strncmp(sec, "phase", 5) && isspace((unsigned char)sec[5])) {
                char *name = study_trim(sec + 5);
                if (s->has_axes_section) {
                    snprintf(err, errlen, "%s:%d: [phase %s] cannot be mixed with [axes]", source, lineno, name);
                    return -1;
                }
                for (const char *c = name; *c; c++)
                    if (!isalnum((unsigned char)*c) && !strchr("._-", *c)) {
                        snprintf(err, errlen, "%s:%d: phase name '%s': expected letters, digits, '.', '_' or '-'", source, lineno, name);
                        return -1;
                    }
                s->has_phase_section = 1;
                section = 2;
                if (study_add_phase(s, name, e, sizeof e)) { snprintf(err, errlen, "%s:%d: %s", source, lineno, e); return -1; }
            } else {
                snprintf(err, errlen, "%s:%d: unknown section [%s]: expected [axes] or [phase NAME]", source, lineno, sec);
                return -1;
            }
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) { snprintf(err, errlen, "%s:%d: expected key = value, got '%s'", source, lineno, l); return -1; }
        *eq = 0;
        char *key = study_trim(l), *value = study_trim(eq + 1);
        if (!*key) { snprintf(err, errlen, "%s:%d: missing key before '='", source, lineno); return -1; }
        size_t vl = strlen(value); /* a base value may be quoted as a whole: data = "a.bin:0.7, b.bin:0.3" */
        if (section == 0 && vl >= 2 && value[0] == '"' && value[vl - 1] == '"' && !memchr(value + 1, '"', vl - 2)) {
            value[vl - 1] = 0;
            value++;
        }
        int n_base = s->n_base;
        int rc = section == 0 ? (*value ? study_set_base(s, key, value, e, sizeof e)
                                        : (snprintf(e, sizeof e, "key '%s' has no value", key), -1))
                              : study_add_axis(s, s->n_phases - 1, key, value, e, sizeof e);
        if (rc) { snprintf(err, errlen, "%s:%d: %s", source, lineno, e); return -1; }
        /* where each key was set, for study_check's messages */
        if (section == 0 && s->n_base > n_base) s->base_lines[n_base] = lineno;
        else if (section) s->phases[s->n_phases - 1].axes[s->phases[s->n_phases - 1].n_axes - 1].line = lineno;
    }
    return study_finish(s, source, err, errlen);
}

STUDYDEF int study_parse_file(StudySpec *s, const char *path, char *err, size_t errlen) {
    char *text = study_read_all(path, NULL);
    if (!text) { snprintf(err, errlen, "cannot read study spec %s (a missing or non-regular file)", path); return -1; }
    int rc = study_parse_text(s, text, path, err, errlen);
    free(text);
    return rc;
}

STUDYDEF int study_parse_resume(StudySpec *s, const char *dir, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/study.ini", dir);
    char *text = study_read_all(path, NULL);
    if (!text) {
        study_fmt(err, errlen, "--resume %s: cannot read %s: %s", dir, path, strerror(errno));
        return -1;
    }
    /* an empty spec parses as the defaults (the 135M model): never what a study was run with */
    int any = 0;
    for (const char *c = text; *c && !any; c++) {
        if (*c == '#' || *c == ';') c += strcspn(c, "\n");
        else any = !isspace((unsigned char)*c);
        if (!*c) break;
    }
    int rc = -1;
    if (!any)
        study_fmt(err, errlen, "--resume %s: %s is empty (no keys): expected the spec the study was started with",
                  dir, path);
    else rc = study_parse_text(s, text, path, err, errlen);
    free(text);
    return rc;
}

STUDYDEF void study_write_spec(const StudySpec *s, FILE *f) {
    fprintf(f, "# ablate study spec (see study.h)\nname = %s\n", s->name);
    fprintf(f, "seed_list = "); /* the seeds themselves: --resume runs exactly these */
    for (int i = 0; i < s->n_seeds; i++) fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)s->seeds[i]);
    fprintf(f, "\n");
    if (s->select_tps) fprintf(f, "select = tokens_per_s\n");
    if (s->device[0]) fprintf(f, "device = %s\n", s->device);
    if (s->keep_checkpoints) fprintf(f, "keep_checkpoints = 1\n");
    if (s->gpus_per_run > 1) fprintf(f, "gpus_per_run = %d\n", s->gpus_per_run);
    for (int i = 0; i < s->n_base; i++) /* quoted when it holds a comment character */
        fprintf(f, strpbrk(s->base_values[i], "#;") ? "%s = \"%s\"\n" : "%s = %s\n", s->base_keys[i], s->base_values[i]);
    for (int p = 0; p < s->n_phases; p++) {
        const StudyPhase *ph = &s->phases[p];
        if (s->has_phase_section) fprintf(f, "[phase %s]\n", ph->name);
        else if (ph->n_axes) fprintf(f, "[axes]\n");
        for (int a = 0; a < ph->n_axes; a++) {
            fprintf(f, "%s = ", ph->axes[a].key);
            for (int v = 0; v < ph->axes[a].n; v++) {
                char q[STUDY_VALUE_LEN + 3];
                study_quote_value(q, sizeof q, ph->axes[a].values[v]);
                fprintf(f, "%s%s", v ? ", " : "", q);
            }
            fprintf(f, "\n");
        }
    }
}

STUDYDEF int study_from_args(StudySpec *s, StudyOptions *o, int argc, char **argv, char *err, size_t errlen) {
    study_init(s);
    char e[400];
    const char *spec = NULL;
    int axes_phase = -1;
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--resume") || !strcmp(f, "--out")) {
            if (i + 1 >= argc) { snprintf(err, errlen, "%s needs a directory", f); return -1; }
            o->out = argv[++i];
            if (!strcmp(f, "--resume")) o->resume = 1;
            continue;
        }
        if (!strcmp(f, "--quiet")) { o->quiet = 1; continue; }
        if (!strcmp(f, "--allow-large")) { o->allow_large = 1; continue; }
        if (!strcmp(f, "--test-kill")) { /* hidden: fault injection for tests/test_faults */
            if (i + 1 >= argc) { snprintf(err, errlen, "--test-kill needs metrics:N or summary:N"); return -1; }
            const char *v = argv[++i];
            char *end;
            long x = strtol(strchr(v, ':') ? strchr(v, ':') + 1 : "", &end, 10);
            int is_m = !strncmp(v, "metrics:", 8), is_s = !strncmp(v, "summary:", 8);
            if ((!is_m && !is_s) || *end || x < 1 || x > INT_MAX) {
                snprintf(err, errlen, "--test-kill '%s': expected metrics:N or summary:N with N >= 1", v);
                return -1;
            }
            *(is_m ? &o->kill_metrics : &o->kill_summary) = (int)x;
            continue;
        }
        if (!strcmp(f, "--worker-cuda")) { o->worker_cuda = 1; continue; } /* hidden: set by the parent */
        if (!strcmp(f, "--test-die-at")) { /* hidden: the tests' stand-in for a kill at a named point */
            if (i + 1 >= argc) { snprintf(err, errlen, "%s needs a point", f); return -1; }
            o->die_at = argv[++i];
            continue;
        }
        if (!strcmp(f, "--gpus") || !strcmp(f, "--workers") || !strcmp(f, "--worker") || !strcmp(f, "--phase-only")) {
            if (i + 1 >= argc) { snprintf(err, errlen, "%s needs a value", f); return -1; }
            const char *v = argv[++i];
            char *end;
            long x = strtol(v, &end, 10);
            if (!strcmp(f, "--gpus")) { /* a list of device indices: one worker each */
                o->gpus = v;
                o->workers = 1;
                for (const char *c = v; *c; c++) {
                    if (*c == ',') o->workers++;
                    else if (!isdigit((unsigned char)*c)) {
                        snprintf(err, errlen, "--gpus '%s': expected device indices separated by commas, e.g. 0,1,2,3", v);
                        return -1;
                    }
                }
                continue;
            }
            if (*end || end == v || x < (strcmp(f, "--phase-only") ? 1 : 0) || x > 1024) {
                snprintf(err, errlen, "%s expects a small integer (%s), got '%s'", f,
                         strcmp(f, "--phase-only") ? ">= 1" : ">= 0", v);
                return -1;
            }
            if (!strcmp(f, "--workers")) o->workers = (int)x;
            else if (!strcmp(f, "--worker")) o->worker = (int)x;
            else o->phase_only = (int)x;
            continue;
        }
        if (!strcmp(f, "--axes")) {
            if (axes_phase < 0) {
                s->has_axes_section = 1;
                study_add_phase(s, "grid", e, sizeof e);
                axes_phase = s->n_phases - 1;
            }
            int any = 0;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                const char *a = argv[++i];
                const char *eq = strchr(a, '=');
                if (!eq) { snprintf(err, errlen, "--axes %s: expected KEY=V1,V2,...", a); return -1; }
                char key[64];
                snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
                if (study_add_axis(s, axes_phase, key, eq + 1, e, sizeof e)) { snprintf(err, errlen, "--axes %s: %s", a, e); return -1; }
                any = 1;
            }
            if (!any) { snprintf(err, errlen, "--axes needs at least one KEY=V1,V2,..."); return -1; }
            continue;
        }
        if (strncmp(f, "--", 2)) {
            if (spec) { snprintf(err, errlen, "unexpected argument '%s' (one spec file only)", f); return -1; }
            spec = f;
            continue;
        }
        if (i + 1 >= argc) { snprintf(err, errlen, "%s needs a value", f); return -1; }
        const char *v = argv[++i];
        if (study_set_base(s, f, v, e, sizeof e)) { snprintf(err, errlen, "%s", e); return -1; }
    }
    if (spec) {
        if (s->n_phases || s->n_base) {
            snprintf(err, errlen, "a spec file (%s) and --axes or run keys cannot be combined: put them in the file", spec);
            return -1;
        }
        return study_parse_file(s, spec, err, errlen);
    }
    if (o->resume) {
        if (s->n_phases || s->n_base) {
            snprintf(err, errlen, "--resume %s takes the study from %s/study.ini: no --axes or run keys", o->out, o->out);
            return -1;
        }
        return study_parse_resume(s, o->out, err, errlen);
    }
    return study_finish(s, "command line", err, errlen);
}

STUDYDEF void study_default(StudySpec *s, int on_gpu) {
    char e[256];
    study_init(s);
    snprintf(s->name, sizeof s->name, "default");
    /* Sized so that the answer is right, not just quick. On the CPU, at 100 steps of 8 x 64
       tokens a model without any token mixing (identity) still wins: a bigram model learns
       faster than attention starts to pay. At lr 3e-3 standard attention's seeds spread by 0.2
       (some stall); at 2e-3, 400 steps of 4 x 64 tokens, every attention mechanism beats
       identity by 0.18-0.23 with seeds within 0.03, so 3 seeds make it significant (Welch's
       test in the table; docs/benchmarks.md has the table). The last evaluation scores
       final_eval_tokens spread over the validation split: a standard error well below the
       seeds' spread for a small share of the run. */
    const char *cpu[][2] = {{"layers", "2"}, {"d_model", "64"}, {"heads", "4"}, {"seq", "64"}, {"batch", "4"},
                            {"steps", "400"}, {"lr", "2e-3"}, {"warmup", "30"}, {"eval_batches", "2"},
                            {"final_eval_tokens", "32768"}};
    /* on a GPU 300 steps of 16 x 512 tokens trained in about a second: 1000 steps of 32 x 512
       (16M tokens per run), checkpoints every 500 steps instead of at every evaluation */
    const char *gpu[][2] = {{"layers", "4"}, {"d_model", "576"}, {"heads", "9"}, {"seq", "512"}, {"batch", "32"},
                            {"steps", "1000"}, {"lr", "2e-3"}, {"warmup", "100"}, {"eval_batches", "8"},
                            {"final_eval_tokens", "1048576"}, {"checkpoint_every", "500"}};
    for (int i = 0; i < (on_gpu ? 11 : 10); i++) study_set_base(s, (on_gpu ? gpu : cpu)[i][0], (on_gpu ? gpu : cpu)[i][1], e, sizeof e);
    study_set_base(s, "seeds", "3", e, sizeof e);
    s->has_axes_section = 1;
    study_add_phase(s, "grid", e, sizeof e);
    study_add_axis(s, 0, "attn", "mha, gqa, mqa, mla, identity", e, sizeof e);
    snprintf(s->device, sizeof s->device, "%s", on_gpu ? "cuda" : "cpu"); /* --resume runs it where it ran */
    study_finish(s, "default study", e, sizeof e);
}

/* ---- grid ---- */
/* the next "key=value" of an assignment (a value in double quotes may hold blanks): 1, 0 at
   the end, -1 with a message */
static int study_next_assign(const char **p, char *key, size_t kn, char *val, size_t vn, char *err, size_t errlen) {
    const char *s = *p;
    while (isspace((unsigned char)*s)) s++;
    if (!*s) return 0;
    size_t kl = strcspn(s, "= \t");
    if (s[kl] != '=' || !kl || kl >= kn) {
        snprintf(err, errlen, "bad assignment '%.80s': expected key=value", s);
        return -1;
    }
    memcpy(key, s, kl);
    key[kl] = 0;
    s += kl + 1;
    size_t vl;
    const char *v = s;
    if (*s == '"') {
        const char *close = strchr(s + 1, '"');
        if (!close) { snprintf(err, errlen, "unbalanced double quote in the assignment of %s", key); return -1; }
        v = s + 1;
        vl = (size_t)(close - v);
        s = close + 1;
    } else {
        vl = strcspn(s, " \t");
        s += vl;
    }
    if (vl >= vn) { snprintf(err, errlen, "the value of %s is longer than %zu characters", key, vn - 1); return -1; }
    memcpy(val, v, vl);
    val[vl] = 0;
    *p = s;
    return 1;
}

/* where a string value of key lives in the StudySpec (a base value or an axis value), so that a
   run's configuration can point at it for as long as the StudySpec lives; NULL: nowhere */
static const char *study_intern(const StudySpec *s, const char *key, const char *v) {
    char k[40];
    study_norm_key(key, k, sizeof k);
    for (int i = 0; i < s->n_base; i++)
        if (!strcmp(s->base_keys[i], k) && !strcmp(s->base_values[i], v)) return s->base_values[i];
    for (int p = 0; p < s->n_phases; p++)
        for (int a = 0; a < s->phases[p].n_axes; a++)
            if (!strcmp(s->phases[p].axes[a].key, k))
                for (int j = 0; j < s->phases[p].axes[a].n; j++)
                    if (!strcmp(s->phases[p].axes[a].values[j], v)) return s->phases[p].axes[a].values[j];
    return NULL;
}

STUDYDEF int study_base_config(const StudySpec *s, const char *carried, StudyRunConfig *c, char *err, size_t errlen) {
    study_run_config_defaults(c);
    for (int i = 0; i < s->n_base; i++)
        if (study_run_config_set(c, s->base_keys[i], s->base_values[i], err, errlen)) return -1;
    /* carried: "key=value key=\"v w\""; string values (data, task) must outlive this call, so
       they point at the StudySpec's own copy */
    const char *p = carried ? carried : "";
    char key[40], val[STUDY_VALUE_LEN + 1];
    int got;
    while ((got = study_next_assign(&p, key, sizeof key, val, sizeof val, err, errlen)) == 1) {
        const StudyRunKey *k = study_run_key_find(key);
        const char *v = val;
        if (k && k->store == STUDY_RUN_AT_PTR && !(v = study_intern(s, key, val))) {
            snprintf(err, errlen, "%s = %s is neither a base value nor an axis value of this study", key, val);
            return -1;
        }
        if (study_run_config_set(c, key, v, err, errlen)) return -1;
    }
    return got;
}

STUDYDEF int study_phase_size(const StudySpec *s, int p) {
    long long n = s->n_seeds; /* up to 64 x 32^16: saturate rather than wrap */
    for (int a = 0; a < s->phases[p].n_axes; a++) {
        n *= s->phases[p].axes[a].n;
        if (n >= INT_MAX) return INT_MAX;
    }
    return (int)n;
}

/* directory-safe: letters, digits, '.', '+', '-'; anything else becomes '-' */
static void study_safe(char *dst, size_t n, const char *src) {
    size_t k = 0;
    for (; *src && k + 1 < n; src++) dst[k++] = (isalnum((unsigned char)*src) || strchr(".+-", *src)) ? *src : '-';
    dst[k] = 0;
}

/* a configuration's directory name from its assignment, readable: "attn-mla_latent_dim-16".
   Returns 1 when it had to be cut (the caller then makes it unique with study_id_suffix) */
static int study_readable_id(const char *assign, char *id, size_t n) {
    const size_t room = n - 10; /* for -<8 hex> */
    StrBuf b = {0};
    const char *p = assign;
    char key[40], val[STUDY_VALUE_LEN + 1], safe[STUDY_VALUE_LEN + 1], e[200];
    while (study_next_assign(&p, key, sizeof key, val, sizeof val, e, sizeof e) == 1) {
        study_safe(safe, sizeof safe, val);
        sb_printf(&b, "%s%s-%s", b.n ? "_" : "", key, safe);
    }
    int cut = b.n > room;
    if (b.n) snprintf(id, n, "%.*s", (int)(cut ? room : b.n), b.p);
    else snprintf(id, n, "base"); /* no axes: "base_seed1337", not "_seed1337" */
    free(b.p);
    return cut;
}

/* id-<8 hex of the configuration identity>: two configurations never share a directory */
static void study_id_suffix(StudyRun *r) {
    char tail[16];
    snprintf(tail, sizeof tail, "-%08llx", (unsigned long long)(r->config_identity >> 32));
    size_t l = strlen(r->config_id), tl = strlen(tail);
    if (l >= tl && !strcmp(r->config_id + l - tl, tail)) return; /* already */
    if (l + tl >= sizeof r->config_id) l = sizeof r->config_id - 1 - tl;
    memcpy(r->config_id + l, tail, tl + 1);
    snprintf(r->name, sizeof r->name, "%s_seed%llu", r->config_id, (unsigned long long)r->seed);
}

/* appends "key=value" (the value quoted when it needs it) to the assignment a of length al:
   the new length, >= n when it did not fit */
static size_t study_assign_add(char *a, size_t n, size_t al, const char *key, const char *v) {
    char q[STUDY_VALUE_LEN + 3];
    if (al >= n) return al;
    study_quote_value(q, sizeof q, v);
    return al + (size_t)snprintf(a + al, n - al, "%s%s=%s", al ? " " : "", key, q);
}

STUDYDEF int study_expand(const StudySpec *s, int p, const char *carried, StudyRun *out, int max, char *err, size_t errlen) {
    const StudyPhase *ph = &s->phases[p];
    int total = study_phase_size(s, p), idx[STUDY_MAX_AXES] = {0};
    if (total > max) { snprintf(err, errlen, "phase '%s' has %d runs, more than %d", ph->name, total, max); return -1; }
    char *cut = calloc(total > 0 ? (size_t)total : 1, 1);
    if (!cut) { snprintf(err, errlen, "out of memory"); return -1; }
    int n = 0;
    for (int combo = 0; combo < total / s->n_seeds; combo++) {
        /* the combination's digits, last axis fastest */
        int r = combo;
        for (int a = ph->n_axes - 1; a >= 0; a--) { idx[a] = r % ph->axes[a].n; r /= ph->axes[a].n; }
        /* carried values first, less the keys this phase sets again (the run takes the phase's
           value, so its name and axes must not also show the carried one), then this phase's axes */
        char assign[STUDY_AXES_LEN], key[40], val[STUDY_VALUE_LEN + 1];
        size_t al = 0;
        assign[0] = 0;
        const char *cp = carried ? carried : "";
        int got;
        while ((got = study_next_assign(&cp, key, sizeof key, val, sizeof val, err, errlen)) == 1) {
            int again = 0;
            for (int a = 0; a < ph->n_axes && !again; a++) again = !strcmp(ph->axes[a].key, key);
            if (!again) al = study_assign_add(assign, sizeof assign, al, key, val);
        }
        if (got < 0) { free(cut); return -1; }
        for (int a = 0; a < ph->n_axes; a++)
            al = study_assign_add(assign, sizeof assign, al, ph->axes[a].key, ph->axes[a].values[idx[a]]);
        if (al >= sizeof assign) { /* study_finish refuses such specs: this is a last guard */
            snprintf(err, errlen, "phase '%s': the assignment '%.60s...' is longer than %d characters", ph->name,
                     assign, STUDY_AXES_LEN - 1);
            free(cut);
            return -1;
        }
        char id[STUDY_ID_LEN];
        int was_cut = study_readable_id(assign, id, sizeof id);
        for (int k = 0; k < s->n_seeds; k++) {
            StudyRun *run = &out[n];
            cut[n++] = (char)was_cut;
            memset(run, 0, sizeof *run);
            if (study_base_config(s, assign, &run->cfg, err, errlen)) { free(cut); return -1; }
            run->cfg.model.seed = s->seeds[k];
            run->seed = s->seeds[k];
            run->identity = study_run_config_identity(&run->cfg, 1);
            run->config_identity = study_run_config_identity(&run->cfg, 0);
            snprintf(run->axes, sizeof run->axes, "%s", assign);
            snprintf(run->config_id, sizeof run->config_id, "%s", id);
            snprintf(run->phase, sizeof run->phase, "%s", ph->name);
            snprintf(run->name, sizeof run->name, "%s_seed%llu", id, (unsigned long long)run->seed);
        }
    }
    /* a cut name, or one that another configuration of this phase shares (values that differ
       only in characters a directory name cannot hold), gets the identity's hex */
    for (int i = 0; i < n; i++) {
        int clash = cut[i];
        for (int j = 0; j < n && !clash; j++)
            clash = !strcmp(out[i].config_id, out[j].config_id) && out[i].config_identity != out[j].config_identity;
        cut[i] = (char)clash;
    }
    for (int i = 0; i < n; i++)
        if (cut[i]) study_id_suffix(&out[i]);
    free(cut);
    return n;
}

STUDYDEF int study_select(const StudySpec *s, const StudyRun *runs, const StudySummary *sums, int n, char *best_axes,
                          size_t len, char *err, size_t errlen) {
    double best = NAN;
    int best_i = -1;
    for (int i = 0; i < n; i++) {
        int first = 1;
        for (int j = 0; j < i; j++) if (!strcmp(runs[j].config_id, runs[i].config_id)) first = 0;
        if (!first) continue;
        double sum = 0;
        int cnt = 0;
        for (int j = i; j < n; j++) {
            if (strcmp(runs[j].config_id, runs[i].config_id) || strcmp(sums[j].status, "ok")) continue;
            double v = s->select_tps ? sums[j].tokens_per_s : sums[j].final_val_loss;
            if (isfinite(v)) { sum += v; cnt++; }
        }
        if (!cnt) continue;
        double m = sum / cnt;
        if (best_i < 0 || (s->select_tps ? m > best : m < best)) { best = m; best_i = i; }
    }
    if (best_i < 0) {
        snprintf(err, errlen, "no run of phase '%s' finished with a finite %s: nothing to carry forward",
                 n ? runs[0].phase : "?", s->select_tps ? "tokens/s" : "validation loss");
        return -1;
    }
    snprintf(best_axes, len, "%s", runs[best_i].axes);
    return 0;
}

/* does the message name this key ("heads 9", "kv_heads = 3"): the key as a whole word */
static int study_names_key(const char *msg, const char *key) {
    size_t n = strlen(key);
    for (const char *p = strstr(msg, key); p; p = strstr(p + 1, key)) {
        int before = p > msg && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after) return 1;
    }
    return 0;
}

/* "mech.ini:3 (d_model = 64)" or "--d-model 64" for a key set on the command line */
static void study_where(StrBuf *b, const StudySpec *s, int line, const char *key, const char *value, int axis) {
    if (b->n) sb_printf(b, ", ");
    if (line > 0) sb_printf(b, "%s:%d (%s = %s)", s->source, line, key, value);
    else if (axis) sb_printf(b, "%s (--axes %s=%s)", s->source, key, value);
    else {
        sb_printf(b, "%s (--", s->source);
        for (const char *c = key; *c; c++) sb_printf(b, "%c", *c == '_' ? '-' : *c);
        sb_printf(b, " %s)", value);
    }
}

STUDYDEF int study_check(const StudySpec *s, Gpu *gpu, char *err, size_t errlen) {
    long checked = 0;
    for (int p = 0; p < s->n_phases; p++) {
        /* the axes of phases 0..p in order: their assignment is what a run of phase p gets
           (the carried values, then its own). An earlier axis whose key a later phase sets
           again is overridden: its first value stands for all of them */
        int ph_of[STUDY_MAX_PHASES * STUDY_MAX_AXES], ax_of[STUDY_MAX_PHASES * STUDY_MAX_AXES];
        int varies[STUDY_MAX_PHASES * STUDY_MAX_AXES], idx[STUDY_MAX_PHASES * STUDY_MAX_AXES];
        int na = 0;
        double combos = 1;
        for (int q = 0; q <= p; q++)
            for (int a = 0; a < s->phases[q].n_axes; a++) {
                int over = 0;
                for (int q2 = q + 1; q2 <= p && !over; q2++)
                    for (int a2 = 0; a2 < s->phases[q2].n_axes; a2++)
                        over |= !strcmp(s->phases[q2].axes[a2].key, s->phases[q].axes[a].key);
                ph_of[na] = q;
                ax_of[na] = a;
                varies[na] = !over;
                idx[na] = 0;
                if (!over) combos *= s->phases[q].axes[a].n;
                na++;
            }
        if (checked + combos > STUDY_CHECK_MAX) {
            snprintf(err, errlen, "%s: phase '%s' could run %.0f configurations%s, more than the %d checked before "
                                  "the start: %ld configurations checked, all good; the rest are checked as they run",
                     s->source, s->phases[p].name, combos, p ? " with the values carried from earlier phases" : "",
                     STUDY_CHECK_MAX, checked);
            return 1;
        }
        int bad = 0, first[STUDY_MAX_PHASES * STUDY_MAX_AXES];
        char first_assign[STUDY_AXES_LEN] = "", first_err[512] = "";
        for (long c = 0; c < (long)combos; c++, checked++) {
            char assign[STUDY_AXES_LEN], e[512];
            size_t al = 0;
            assign[0] = 0;
            for (int i = 0; i < na; i++) {
                const StudyAxis *ax = &s->phases[ph_of[i]].axes[ax_of[i]];
                al = study_assign_add(assign, sizeof assign, al, ax->key, ax->values[idx[i]]);
            }
            StudyRunConfig rc;
            int ok = 0;
            if (al >= sizeof assign) snprintf(e, sizeof e, "the assignment is longer than %d characters", STUDY_AXES_LEN - 1);
            else ok = !study_base_config(s, assign, &rc, e, sizeof e) && !study_run_config_check(&rc, gpu, e, sizeof e);
            if (ok && s->gpus_per_run > 1 && rc.batch % s->gpus_per_run) {
                snprintf(e, sizeof e, "batch %d cannot be split over gpus_per_run = %d ranks: expected a multiple of %d",
                         rc.batch, s->gpus_per_run, s->gpus_per_run);
                ok = 0;
            }
            if (!ok && !bad++) { /* the first refused run, described below */
                memcpy(first, idx, sizeof first);
                snprintf(first_assign, sizeof first_assign, "%s", assign);
                snprintf(first_err, sizeof first_err, "%s", e);
            }
            for (int i = na - 1; i >= 0; i--) /* the next combination, last axis fastest */
                if (varies[i]) {
                    if (++idx[i] < s->phases[ph_of[i]].axes[ax_of[i]].n) break;
                    idx[i] = 0;
                }
        }
        if (!bad) continue;
        /* where the keys the message names were set: a base key unless an axis of the run sets
           it again; when the message names no axis but only some combinations fail, the run's
           axes (the values that differ) are named too */
        StrBuf w = {0};
        int axes_named = 0;
        for (int i = 0; i < s->n_base; i++)
            if (study_names_key(first_err, s->base_keys[i])) {
                int axis_too = 0;
                for (int k = 0; k < na; k++)
                    axis_too |= varies[k] && !strcmp(s->phases[ph_of[k]].axes[ax_of[k]].key, s->base_keys[i]);
                if (!axis_too) study_where(&w, s, s->base_lines[i], s->base_keys[i], s->base_values[i], 0);
            }
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < na; k++) {
                const StudyAxis *ax = &s->phases[ph_of[k]].axes[ax_of[k]];
                int named = study_names_key(first_err, ax->key);
                if (varies[k] && (pass ? !axes_named && bad < combos && !named : named)) {
                    study_where(&w, s, ax->line, ax->key, ax->values[first[k]], 1);
                    axes_named |= !pass;
                }
            }
        if (!w.n) sb_printf(&w, "%s", s->source);
        char id[STUDY_ID_LEN];
        study_readable_id(first_assign, id, sizeof id);
        study_fmt(err, errlen, "%s: phase '%s', run %s_seed%llu (%s): %s; %d of the %.0f configurations %s '%s'%s %s "
                               "refused (%d run%s): nothing was run or written", w.p, s->phases[p].name, id,
                  (unsigned long long)s->seeds[0], first_assign[0] ? first_assign : "the base configuration", first_err,
                  bad, combos, p ? "that phase" : "of phase", s->phases[p].name,
                  p ? " could run with the values carried from earlier phases" : "", bad == 1 ? "is" : "are",
                  bad * s->n_seeds,
                  bad * s->n_seeds == 1 ? "" : "s");
        free(w.p);
        return -1;
    }
    return 0;
}

/* ---- devices and data ---- */
STUDYDEF int study_open_device(const char *device, Gpu **gpu, char *err, size_t errlen) {
    int want_cuda = device && !strcmp(device, "cuda");
    *gpu = NULL;
    if (device && *device && strcmp(device, "cpu") && !want_cuda) {
        snprintf(err, errlen, "unknown device '%s': expected cpu or cuda", device);
        return -1;
    }
    if (device && !strcmp(device, "cpu")) return 0;
#ifndef ABLATE_NO_CUDA
    Gpu *g = calloc(1, sizeof *g);
    if (g && gpu_init(g, 0) == 0) { *gpu = g; return 0; }
    char why[sizeof g->err];
    snprintf(why, sizeof why, "%s", g ? g->err : "out of host memory");
    free(g);
    if (want_cuda) {
        snprintf(err, errlen, "--device cuda: no usable GPU: %s. Use --device cpu, or the CPU build ablate-cpu", why);
        return -1;
    }
    /* no device asked for: the CPU, saying why not the GPU */
    fprintf(stderr, "gpu: no usable GPU, running on the CPU: %s\n", why);
#else
    if (want_cuda) {
        snprintf(err, errlen, "--device cuda: this is the CPU-only build (built without -DABLATE_CUDA)");
        return -1;
    }
#endif
    (void)err; (void)errlen;
    return 0;
}

STUDYDEF void study_close_device(Gpu *gpu) {
#ifndef ABLATE_NO_CUDA
    if (gpu) { gpu_free_all(gpu); free(gpu); }
#else
    (void)gpu;
#endif
}

STUDYDEF int study_decode_bench(const SmolModel *m, int B, int prompt, int gen, StudyDecodeBench *out, char *err,
                                size_t errlen) {
    int V = m->cfg.vocab_size, cap = prompt + gen, rc = 0, warm = gen >= 4 ? 2 : 0;
    memset(out, 0, sizeof *out);
    if (B < 1 || prompt < 1 || gen < 1) {
        snprintf(err, errlen, "decode bench of %d sequences, prompt %d, %d new tokens: expected all >= 1", B, prompt,
                 gen);
        return -1;
    }
    int *tok = malloc(sizeof(int) * (size_t)B * prompt);
    if (!tok) {
        snprintf(err, errlen, "decode bench: out of host memory for %d x %d prompt tokens", B, prompt);
        return -1;
    }
    for (size_t i = 0; i < (size_t)B * prompt; i++) tok[i] = (int)((i * 7919 + 13) % (size_t)V);
    double t0, t1, t2, t3;
    if (m->gpu) {
        SmolGpuGen g;
        SmolSampler greedy = {0};
        if (smollm_gpu_gen_init(&g, m, B, cap, &greedy, 1, 0, err, errlen)) { free(tok); return -1; }
        t0 = train_now();
        rc = smollm_gpu_prefill(&g, m, tok, prompt, err, errlen);
        t1 = train_now();
        for (int s = 0; s < warm && !rc; s++) rc = smollm_gpu_decode_step(&g, m, err, errlen);
        t2 = train_now();
        for (int s = warm; s < gen && !rc; s++) rc = smollm_gpu_decode_step(&g, m, err, errlen);
        t3 = train_now();
        out->cache_bytes = g.cache_bytes / B;
        out->fused = g.fused;
        smollm_gpu_gen_free(&g, m);
    } else {
        SmolGen g;
        if (smollm_gen_init(&g, m, B, cap, err, errlen)) { free(tok); return -1; }
        t0 = train_now();
        rc = smollm_prefill(&g, m, tok, prompt, err, errlen);
        t1 = t2 = train_now();
        warm = 0;
        for (int s = 0; s < gen && !rc; s++) {
            for (int b = 0; b < B; b++) tok[b] = smollm_sample(g.logits + (size_t)b * V, V, NULL, NULL);
            rc = smollm_decode_step(&g, m, tok, err, errlen);
        }
        t3 = train_now();
        out->cache_bytes = g.cache_bytes / B;
        out->fused = 0;
        smollm_gen_free(&g);
    }
    free(tok);
    if (rc) return -1;
    out->prefill_tps = (double)B * prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9);
    out->decode_tps = (double)B * (gen - warm) / (t3 - t2 > 0 ? t3 - t2 : 1e-9);
    return 0;
}

/* text files found on any Debian-like system, used when no data is given */
STUDYDEF const char *study_default_data(void) {
    static const char *paths[] = {"data/corpus.txt", "/usr/share/common-licenses/GPL-3"};
    for (int i = 0; i < 2; i++)
        if (study_exists(paths[i])) return paths[i];
    return NULL;
}

/* says once which data the study trains on: the default text is found, not given, and a user
   should see whether it is the built-in corpus or the small fallback */
static void study_print_data(const StudySpec *s) {
    const char *data = NULL, *task = NULL;
    for (int i = 0; i < s->n_base; i++) {
        if (!strcmp(s->base_keys[i], "data")) data = s->base_values[i];
        if (!strcmp(s->base_keys[i], "task")) task = s->base_values[i];
    }
    for (int p = 0; p < s->n_phases; p++)
        for (int a = 0; a < s->phases[p].n_axes; a++)
            if (!strcmp(s->phases[p].axes[a].key, "data") || !strcmp(s->phases[p].axes[a].key, "task")) {
                printf("data: an axis of the study (%s)\n", s->phases[p].axes[a].key);
                return;
            }
    if (task && *task) { printf("data: the synthetic task %s, generated from each run's seed\n", task); return; }
    const char *d = data && *data ? data : study_default_data();
    if (!d) return; /* every run fails with the message of study_train */
    struct stat st;
    if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) printf("data: %s (a directory of token shards)\n", d);
    else if (stat(d, &st) == 0)
        printf("data: %s (%.2f MB)%s\n", d, (double)st.st_size / 1e6,
               data && *data ? "" : strcmp(d, "data/corpus.txt") ? ": the fallback text (data/corpus.txt is missing: "
                                                                   "`make corpus` gets the built-in corpus)"
                                                                 : ": the built-in corpus (the King James Bible)");
    else printf("data: %s\n", d); /* a mix: data_open describes it at each run */
}

/* ---- one run ---- */
typedef struct {
    int step;
    double tokens, loss, lr, grad_norm, tokens_per_s, elapsed, val_loss;
    double val_acc;             /* synthetic tasks: top-1 accuracy on the scored tokens; else NAN */
    double val_bpb;             /* bits per byte of the evaluation; NAN: unknown or not evaluated */
} StudyRow;

typedef struct { StudyRow *r; int n, cap; } StudyRows;

/* 0, or -1 when the table cannot grow (it keeps its rows) */
static int study_rows_push(StudyRows *rs, StudyRow r) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 256;
        StudyRow *p = realloc(rs->r, cap * sizeof *p);
        if (!p) return -1;
        rs->r = p;
        rs->cap = cap;
    }
    rs->r[rs->n++] = r;
    return 0;
}

static void study_row_json(StrBuf *b, const StudyRow *r) {
    sb_printf(b, "{\"step\": %d, ", r->step);
    sb_num(b, "tokens", r->tokens, 0);
    sb_num(b, "loss", r->loss, 0);
    sb_num(b, "lr", r->lr, 0);
    sb_num(b, "grad_norm", r->grad_norm, 0);
    sb_num(b, "tokens_per_s", r->tokens_per_s, 0);
    sb_num(b, "elapsed", r->elapsed, !isfinite(r->val_loss));
    if (isfinite(r->val_loss)) {
        sb_num17(b, "val_loss", r->val_loss, 0);
        sb_num(b, "val_ppl", exp(r->val_loss), !isfinite(r->val_acc) && !isfinite(r->val_bpb));
        if (isfinite(r->val_bpb)) sb_num17(b, "val_bpb", r->val_bpb, !isfinite(r->val_acc));
        if (isfinite(r->val_acc)) sb_num(b, "val_acc", r->val_acc, 1);
    }
    sb_printf(b, "}\n");
}

/* metrics.jsonl rows with step <= max_step. A line cut short (a kill or a full disk while it
   was written: no newline, or no closing brace) is dropped; returns how many were, so that the
   reader can say so; -1 when memory for the rows runs out (rs keeps those read) */
static int study_rows_read(const char *path, int max_step, StudyRows *rs) {
    char *text = study_read_all(path, NULL);
    int torn = 0;
    if (!text) return 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) { torn++; break; } /* unterminated: torn */
        *nl = 0;
        if (!strchr(line, '}')) torn++;
        else {
            StudyRow r;
            r.step = (int)study_json_num(line, "step");
            r.tokens = study_json_num(line, "tokens");
            r.loss = study_json_num(line, "loss");
            r.lr = study_json_num(line, "lr");
            r.grad_norm = study_json_num(line, "grad_norm");
            r.tokens_per_s = study_json_num(line, "tokens_per_s");
            r.elapsed = study_json_num(line, "elapsed");
            r.val_loss = study_json_num(line, "val_loss");
            r.val_acc = study_json_num(line, "val_acc");
            r.val_bpb = study_json_num(line, "val_bpb");
            if (r.step <= max_step && study_rows_push(rs, r)) { free(text); return -1; }
        }
        line = nl + 1;
    }
    free(text);
    return torn;
}

static void study_summary_json(StrBuf *b, const StudySummary *s) {
    sb_printf(b, "{");
    sb_str(b, "name", s->name, 0);
    sb_str(b, "config", s->config_id, 0);
    sb_str(b, "phase", s->phase, 0);
    sb_str(b, "axes", s->axes, 0);
    sb_printf(b, "\"identity\": \"%016llx\", ", (unsigned long long)s->identity);
    sb_printf(b, "\"index\": %d, \"seed\": %llu, ", s->index, (unsigned long long)s->seed);
    sb_str(b, "status", s->status, 0);
    sb_str(b, "reason", s->reason, 0);
    sb_printf(b, "\"steps_done\": %d, \"steps\": %d, \"best_val_step\": %d, ", s->steps_done, s->steps, s->best_val_step);
    sb_num(b, "tokens", s->tokens, 0);
    sb_num(b, "final_loss", s->final_loss, 0);
    sb_num(b, "final_val_loss", s->final_val_loss, 0);
    sb_num(b, "final_val_ppl", s->final_val_ppl, 0);
    sb_num(b, "best_val_loss", s->best_val_loss, 0);
    sb_num(b, "best_val_ppl", s->best_val_ppl, 0);
    sb_num(b, "final_val_acc", s->final_val_acc, 0);
    sb_num(b, "final_mc_acc", s->final_mc_acc, 0);
    sb_num(b, "final_mc_se", s->final_mc_se, 0);
    sb_num(b, "decode_tokens_per_s", s->decode_tokens_per_s, 0);
    sb_num(b, "decode_cache_bytes", s->decode_cache_bytes, 0);
    sb_num(b, "final_val_tokens", s->final_val_tokens, 0);
    sb_num(b, "final_val_se", s->final_val_se, 0);
    sb_num(b, "final_val_bpb", s->final_val_bpb, 0);
    sb_num(b, "best_val_bpb", s->best_val_bpb, 0);
    sb_num(b, "tokens_per_s", s->tokens_per_s, 0);
    sb_num(b, "peak_bytes", s->peak_bytes, 0);
    sb_num(b, "params_total", s->params_total, 0);
    sb_num(b, "params_attention", s->params_attention, 0);
    sb_num(b, "params_ffn", s->params_ffn, 0);
    sb_num(b, "params_embedding", s->params_embedding, 0);
    sb_num(b, "params_norms", s->params_norms, 0);
    sb_num(b, "kv_bytes_per_token", s->kv_bytes_per_token, 0);
    sb_num(b, "cache_bytes_per_token", s->cache_bytes_per_token, 0);
    sb_num(b, "grad_norm_mean", s->grad_norm_mean, 0);
    sb_num(b, "grad_norm_max", s->grad_norm_max, 0);
    sb_num(b, "smoothness", s->smoothness, 0);
    sb_num(b, "train_seconds", s->train_seconds, 0);
    sb_num(b, "wall_seconds", s->wall_seconds, 1);
    sb_printf(b, "}");
}

STUDYDEF int study_summary_read(const char *path, StudySummary *s) {
    char *t = study_read_all(path, NULL);
    memset(s, 0, sizeof *s);
    if (!t) return -1;
    study_json_str(t, "name", s->name, sizeof s->name);
    study_json_str(t, "config", s->config_id, sizeof s->config_id);
    study_json_str(t, "phase", s->phase, sizeof s->phase);
    study_json_str(t, "axes", s->axes, sizeof s->axes);
    char hex[20];
    study_json_str(t, "identity", hex, sizeof hex);
    s->identity = strtoull(hex, NULL, 16);
    study_json_str(t, "status", s->status, sizeof s->status);
    study_json_str(t, "reason", s->reason, sizeof s->reason);
    s->index = (int)study_json_num(t, "index");
    s->seed = (uint64_t)study_json_num(t, "seed");
    s->steps_done = (int)study_json_num(t, "steps_done");
    s->steps = (int)study_json_num(t, "steps");
    s->best_val_step = (int)study_json_num(t, "best_val_step");
#define F_(k) s->k = study_json_num(t, #k);
    F_(tokens) F_(final_loss) F_(final_val_loss) F_(final_val_ppl) F_(best_val_loss) F_(best_val_ppl) F_(final_val_acc)
    F_(final_mc_acc) F_(final_mc_se) F_(decode_tokens_per_s) F_(decode_cache_bytes)
    F_(final_val_tokens) F_(final_val_se) F_(final_val_bpb) F_(best_val_bpb)
    F_(tokens_per_s) F_(peak_bytes) F_(params_total) F_(params_attention) F_(params_ffn) F_(params_embedding)
    F_(params_norms) F_(kv_bytes_per_token) F_(cache_bytes_per_token) F_(grad_norm_mean) F_(grad_norm_max) F_(smoothness)
    F_(train_seconds) F_(wall_seconds)
#undef F_
    free(t);
    return s->status[0] ? 0 : -1;
}

static void study_batch(void *ctx, int *tokens, int *targets) { data_next_batch(ctx, tokens, targets); }

/* a TrainBatchFn of whole micro-batches served as `parts` batches of rows / parts rows each
   (rank 0's evaluation of a data-parallel run, whose model holds a rank's share of the rows) */
typedef struct { TrainBatchFn fn; void *ctx; int *tok, *tgt; int rows_part, T, parts, next; } StudySplitBatch_;
static void study_split_batch(void *ctx, int *tokens, int *targets) {
    StudySplitBatch_ *b = ctx;
    if (b->next == 0) b->fn(b->ctx, b->tok, b->tgt);
    size_t n = (size_t)b->rows_part * b->T, off = (size_t)b->next * n;
    memcpy(tokens, b->tok + off, n * sizeof(int));
    memcpy(targets, b->tgt + off, n * sizeof(int));
    b->next = (b->next + 1) % b->parts;
}

/* the tests' kill at a named point (StudyOptions.die_at: "POINT" or "POINT:STEP") */
static void study_die_at(const char *die_at, const char *point, int step) {
    size_t k = strlen(point);
    if (!die_at || strncmp(die_at, point, k) || (die_at[k] && (die_at[k] != ':' || atoi(die_at + k + 1) != step))) return;
    fflush(stdout);
    fflush(stderr);
    raise(SIGKILL);
}

/* a checkpoint directory's step: "ckpt-" and 8 digits exactly (ckpt-N.tmp, ckpt-N.bad: no) */
static int study_ckpt_step(const char *name) {
    int step = 0, k = 0;
    return strlen(name) == 13 && sscanf(name, "ckpt-%8d%n", &step, &k) == 1 && k == 13 && step > 0 ? step : 0;
}

/* the steps of a run's checkpoint directories, newest first (at most max); ckpt-N.tmp
   directories, writes that were cut off, are removed */
static int study_list_ckpts(const char *dir, int *steps, int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char stale[64][300];
    int n_stale = 0;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        int step = study_ckpt_step(e->d_name);
        if (step && n < max) steps[n++] = step;
        else if (!strncmp(e->d_name, "ckpt-", 5) && len > 4 && !strcmp(e->d_name + len - 4, ".tmp") && n_stale < 64)
            snprintf(stale[n_stale++], sizeof stale[0], "%s", e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n_stale; i++) {
        char p[4096];
        study_fmt(p, sizeof p, "%s/%s", dir, stale[i]);
        study_remove_dir(p);
    }
    for (int a = 1; a < n; a++) /* newest first */
        for (int b = a; b > 0 && steps[b] > steps[b - 1]; b--) { int x = steps[b]; steps[b] = steps[b - 1]; steps[b - 1] = x; }
    return n;
}

/* newest checkpoint directory of a run: its step, or 0 */
static int study_latest_ckpt(const char *dir, char *path, size_t n) {
    int steps[64];
    int k = study_list_ckpts(dir, steps, 64);
    if (k) study_fmt(path, n, "%s/ckpt-%08d", dir, steps[0]);
    return k ? steps[0] : 0;
}

/* every ckpt-NNNNNNNN directory but `keep` (0: all); set-aside ckpt-N.bad ones stay */
static void study_prune_ckpts(const char *dir, int keep) {
    int steps[64];
    int n = study_list_ckpts(dir, steps, 64);
    for (int i = 0; i < n; i++)
        if (steps[i] != keep) {
            char p[4096];
            study_fmt(p, sizeof p, "%s/ckpt-%08d", dir, steps[i]);
            study_remove_dir(p);
        }
}

/* a checkpoint that failed its checks is renamed ckpt-N.bad (kept to be looked at, never
   loaded again: a later checkpoint of the same step can take its name) */
static void study_set_aside(const char *ck, char *out, size_t n) {
    study_fmt(out, n, "%s.bad", ck);
    study_remove_dir(out);
    if (rename(ck, out)) study_remove_dir(ck);
}

/* the first key whose value differs between two canonical configurations (study_run_config_canonical:
   {"key": value, ...} with string values quoted); 0 and the key and both values, or -1 if equal */
static int study_config_diff(const char *now, const char *then, char *key, size_t kn, char *v_now, char *v_then,
                             size_t vn) {
    const char *a = now, *b = then;
    for (;;) {
        char ka[64] = "", kb[64] = "", va[STUDY_STR] = "", vb[STUDY_STR] = "";
        const char *pa[2] = {a, b};
        char *keys[2] = {ka, kb}, *vals[2] = {va, vb};
        for (int s = 0; s < 2; s++) { /* the next "key": value of each */
            const char *p = strchr(pa[s], '"');
            if (!p) { pa[s] = pa[s] + strlen(pa[s]); continue; }
            const char *q = strchr(p + 1, '"');
            if (!q) { pa[s] = pa[s] + strlen(pa[s]); continue; }
            snprintf(keys[s], 64, "%.*s", (int)(q - p - 1), p + 1);
            p = q + 1;
            while (*p == ':' || *p == ' ') p++;
            const char *v = p;
            if (*p == '"') {
                for (p++; *p && *p != '"'; p++)
                    if (*p == '\\' && p[1]) p++;
                if (*p) p++;
            } else
                while (*p && *p != ',' && *p != '}') p++;
            snprintf(vals[s], STUDY_STR, "%.*s", (int)(p - v), v);
            pa[s] = p;
        }
        a = pa[0];
        b = pa[1];
        if (!ka[0] && !kb[0]) return -1;
        if (strcmp(ka, kb) || strcmp(va, vb)) {
            snprintf(key, kn, "%s", ka[0] ? ka : kb);
            snprintf(v_now, vn, "%s", strcmp(ka, kb) && ka[0] && kb[0] ? "(another key order)" : ka[0] ? va : "(none)");
            snprintf(v_then, vn, "%s", strcmp(ka, kb) && ka[0] && kb[0] ? "(another key order)" : kb[0] ? vb : "(none)");
            return 0;
        }
    }
}

/* a run may continue from its checkpoints only under the configuration that wrote them: the
   newest checkpoint that passes its MANIFEST holds it (run.json); 0, or -1 naming the key */
static int study_resume_config_check(const char *rdir, const StudyRunConfig *c, char *err, size_t errlen) {
    int steps[64];
    int n = study_list_ckpts(rdir, steps, 64);
    for (int i = 0; i < n; i++) {
        char ck[4300], p[4400], e2[512];
        study_fmt(ck, sizeof ck, "%s/ckpt-%08d", rdir, steps[i]);
        if (ckpt_manifest_verify(ck, e2, sizeof e2)) continue; /* study_train sets it aside */
        study_fmt(p, sizeof p, "%s/run.json", ck);
        char *then = study_read_all(p, NULL), *now = study_run_config_canonical(c, 1);
        char key[64], vn[STUDY_STR], vt[STUDY_STR];
        int diff = then && now && study_config_diff(now, then, key, sizeof key, vn, vt, sizeof vn) == 0;
        if (diff)
            study_fmt(err, errlen, "cannot resume %s: %s is %s in the study's configuration but %s in its checkpoint %s "
                      "(a checkpoint continues only the configuration that wrote it: restore %s = %s in study.ini, "
                      "or start a new study)", rdir, key, vn, vt, ck, key, vt);
        free(then);
        free(now);
        return diff ? -1 : 0;
    }
    return 0;
}

/* words the train state carries for the run loop (doubles by their bits) */
enum { W_RNG, W_CURSOR, W_TOKENS, W_TRAIN_S, W_WALL_S, W_COUNT };
static uint64_t study_dbits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
static double study_bitsd(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* DIR/ckpt-STEP: written into ckpt-STEP.tmp (model.safetensors, train.state, run.json: the
   canonical configuration, then MANIFEST last), renamed, then read back and checked (MANIFEST
   and the weights' header) before any older checkpoint is pruned: a run always has a verified
   checkpoint on disk once it has made one */
static int study_checkpoint(const char *dir, int step, SmolModel *m, TrainState *tr, const uint64_t *w,
                            const StudyRunConfig *c, char *err, size_t errlen) {
    char tmp[4096], fin[4096], p[4200];
    snprintf(fin, sizeof fin, "%s/ckpt-%08d", dir, step);
    study_fmt(tmp, sizeof tmp, "%s.tmp", fin);
    study_remove_dir(tmp);
    if (study_mkdirs(tmp)) { study_fmt(err, errlen, "cannot create %s", tmp); return -1; }
    snprintf(p, sizeof p, "%s/model.safetensors", tmp);
    if (smollm_save(m, p, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/train.state", tmp);
    if (train_save_state(tr, w, W_COUNT, p, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/run.json", tmp);
    char *canon = study_run_config_canonical(c, 1);
    int bad = !canon || study_write_atomic(p, canon, strlen(canon));
    free(canon);
    if (bad) { study_fmt(err, errlen, "cannot write %s", p); return -1; }
    if (ckpt_manifest_write(tmp, err, errlen)) return -1;
    study_remove_dir(fin); /* a set-aside checkpoint's step, written again */
    if (rename(tmp, fin) || ckpt_fsync_path(dir)) { study_fmt(err, errlen, "cannot rename %s to %s", tmp, fin); return -1; }
    snprintf(p, sizeof p, "%s/model.safetensors", fin);
    if (ckpt_manifest_verify(fin, err, errlen) || smollm_verify(m, p, err, errlen)) {
        char bad_dir[4200], e2[700];
        study_set_aside(fin, bad_dir, sizeof bad_dir);
        study_fmt(e2, sizeof e2, "%s (read back after writing; set aside as %s, the older checkpoints kept)", err, bad_dir);
        study_fmt(err, errlen, "%s", e2);
        return -1;
    }
    study_die_at(c->die_at, "checkpoint-written", step);
    study_prune_ckpts(dir, step);
    return 0;
}

/* ---- the CPU's peak memory: Linux keeps a process's peak resident set (VmHWM in
   /proc/self/status) and resets it to the current one when "5" is written to
   /proc/self/clear_refs. A run's peak is the high-water mark during the run minus the resident
   set at its start, less the file pages (RssFile: the program's code, first touched by the
   first run of a process, and still resident at its end) that the run brought in ---- */
static double study_status_kb(const char *field) { /* NAN: unknown */
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = NAN;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') { kb = strtod(line + n + 1, NULL); break; }
    if (f) fclose(f);
    return kb;
}

/* the resident set now (bytes) with the high-water mark reset to it, and *file its file pages;
   NAN: cannot measure */
static double study_rss_start(double *file) {
#ifdef __GLIBC__
    malloc_trim(0); /* memory an earlier run freed but the allocator kept would hide this run's */
#endif
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return NAN;
    int ok = fputs("5", f) >= 0;
    ok = fclose(f) == 0 && ok;
    *file = study_status_kb("RssFile") * 1024;
    return ok ? study_status_kb("VmRSS") * 1024 : NAN;
}

/* the peak since study_rss_start above its start (bytes); NAN: not measured */
static double study_rss_peak(double start, double file0) {
    double code = study_status_kb("RssFile") * 1024 - file0; /* NAN (an old kernel): none */
    double peak = study_status_kb("VmHWM") * 1024 - start - (code > 0 ? code : 0);
    return peak > 0 ? peak : NAN;
}

static void study_fail(StudySummary *o, const char *status, const char *fmt, const char *a) {
    study_fmt(o->status, sizeof o->status, "%s", status);
    study_fmt(o->reason, sizeof o->reason, fmt, a);
}

/* save's directory must exist and be writable before training starts, not after it ends */
static int study_check_save(const char *path, char *err, size_t errlen) {
    char dir[4096];
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (!*path || (slash && !slash[1]) || (!stat(path, &st) && S_ISDIR(st.st_mode))) {
        snprintf(err, errlen, "save '%.200s' names a directory: expected a file such as model.safetensors", path);
        return -1;
    }
    if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK)) {
        snprintf(err, errlen, "save '%.200s': the directory %.200s %s", path, dir,
                 stat(dir, &st) ? "does not exist" : !S_ISDIR(st.st_mode) ? "is not a directory" : "is not writable");
        return -1;
    }
    return 0;
}

/* the tokenizer.json beside a run's data (the first source of a mix), as ablate tokenize leaves
   it: 0 and its path, or -1 (byte-level text, or none there) */
static int study_data_tokenizer(const StudyRunConfig *c, char *out, size_t cap) {
    char src[4096];
    struct stat st;
    if (!c->data || c->task) return -1;
    snprintf(src, sizeof src, "%s", c->data);
    char *comma = strchr(src, ','), *colon;
    if (comma) *comma = 0;
    if ((colon = strrchr(src, ':')) && strspn(colon + 1, "0123456789.eE+-") == strlen(colon + 1)) *colon = 0;
    if (!stat(src, &st) && S_ISDIR(st.st_mode)) snprintf(out, cap, "%s/tokenizer.json", src);
    else {
        char *slash = strrchr(src, '/');
        if (slash) { *slash = 0; snprintf(out, cap, "%s/tokenizer.json", src); }
        else snprintf(out, cap, "tokenizer.json");
    }
    return !stat(out, &st) && S_ISREG(st.st_mode) ? 0 : -1;
}

/* init_from: the exported weights over the seeded ones; smollm_load names the first tensor
   whose name, dtype or shape differs */
static int study_init_from(SmolModel *m, const char *init_path, StudySummary *o, int verbose) {
    char err[1024];
    if (smollm_load(m, init_path, err, sizeof err)) {
        study_fail(o, "failed", "init_from: %s (the run's model and the exported one must have the same shapes)", err);
        return -1;
    }
    if (verbose) printf("init: weights from %s\n", init_path);
    return 0;
}

/* bench_decode: batch-1 generation at the run's context (a prompt of seq - gen tokens, gen new:
   32, or seq / 2 for a short seq) into the summary; a mechanism without a decode path on this
   device leaves null and says why (the run stays ok: it trained) */
static void study_bench_decode_run(SmolModel *m, const StudyRunConfig *c, StudySummary *o, int verbose) {
    int gen = c->seq >= 64 ? 32 : c->seq / 2;
    StudyDecodeBench r;
    char err[512];
    if (gen < 1 || study_decode_bench(m, 1, c->seq - gen, gen, &r, err, sizeof err)) {
        fprintf(stderr, "ablate: bench_decode: %s: no decode figures (null)\n",
                gen < 1 ? "seq below 2 leaves no room for a prompt and a new token" : err);
        return;
    }
    o->decode_tokens_per_s = r.decode_tps;
    o->decode_cache_bytes = (double)r.cache_bytes;
    if (verbose)
        printf("decode (batch 1, context %d): %.0f tokens/s, cache %zu bytes per sequence\n", c->seq, r.decode_tps,
               r.cache_bytes);
}

/* eval_mc: the final weights' multiple-choice accuracy (eval.h) into the summary */
static void study_eval_mc(SmolModel *m, const StudyRunConfig *c, StudySummary *o, int verbose) {
    char err[1024], tp[4200];
    EvalMcSet set;
    DataTokenizer *tok = NULL;
    if (m->cfg.vocab_size != DATA_BYTE_VOCAB) {
        if (study_data_tokenizer(c, tp, sizeof tp) || !(tok = data_tok_load(tp, err, sizeof err))) {
            fprintf(stderr, "ablate: eval_mc %s: vocabulary %d is not byte-level and no tokenizer.json is beside the "
                    "data %s: no accuracy (null)\n", c->eval_mc, m->cfg.vocab_size, c->data ? c->data : "(default)");
            return;
        }
    }
    if (eval_mc_load(c->eval_mc, &set, err, sizeof err)) {
        fprintf(stderr, "ablate: eval_mc: %s: no accuracy (null)\n", err);
        data_tok_free(tok);
        return;
    }
    EvalMcResult r;
    if (eval_mc_score(m, &set, tok, &r, NULL, err, sizeof err))
        fprintf(stderr, "ablate: eval_mc %s: %s: no accuracy (null)\n", c->eval_mc, err);
    else {
        o->final_mc_acc = r.acc;
        o->final_mc_se = r.se;
        if (verbose) printf("multiple choice (%s, %d items): accuracy %.4f +- %.4f\n", c->eval_mc, r.n, r.acc, r.se);
    }
    eval_mc_free(&set);
    data_tok_free(tok);
}

/* ---- samples (sample_every) ---- */

/* JSON string of bytes: valid UTF-8 sequences as they are, any other byte as U+FFFD (a
   byte-level model may emit half a character) */
static void study_json_bytes(StrBuf *b, const unsigned char *p, size_t n) {
    sb_printf(b, "\"");
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] >> 6) == 2;
        if (!ok) { sb_printf(b, "\\ufffd"); i++; continue; }
        if (c == '"' || c == '\\') sb_printf(b, "\\%c", c);
        else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_printf(b, "%.*s", (int)len, (const char *)p + i);
        i += len;
    }
    sb_printf(b, "\"");
}

/* the tokenizer that turns ids back into text: the tokenizer.json beside the first shard, NULL
   for byte-level text (*bytes = 1) or when none is found (*bytes = 0: ids are written) */
static DataTokenizer *study_sample_tokenizer(const DataSet *ds, int *bytes) {
    *bytes = 0;
    if (ds->n_parts < 1) return NULL;
    const DataFile *f = &ds->files[ds->parts[0].file];
    if (f->buf) { *bytes = 1; return NULL; }
    char dir[512], path[600], err[600];
    snprintf(dir, sizeof dir, "%s", f->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    struct stat st;
    DataTokenizer *t = stat(path, &st) ? NULL : data_tok_load(path, err, sizeof err);
    if (t && data_tok_vocab(t) != ds->vocab_size) { data_tok_free(t); t = NULL; }
    return t;
}

/* one line {"step", "prompt", "text"} appended to path: greedy decoding (smollm.h's SmolGen) of
   the validation split's first 16 tokens, on a CPU copy of the weights (the GPU decode path is
   not there yet); -1 with a message (the caller fails the run) */
static int study_sample(const SmolModel *m, Gpu *gpu, const DataSet *ds, int n_new, int step, const char *path,
                        char *err, size_t errlen) {
    enum { P = 16 };
    int prompt[P], tg[P], np = 0, bytes, rc = -1;
    DataEval ev;
    char e2[256];
    if (!data_eval_init(&ev, ds, DATA_VAL, P, 1, 1, e2, sizeof e2)) {
        data_eval_row(&ev, 0, prompt, tg);
        np = P;
    } else {
        prompt[0] = 0; /* a split too short for 16 tokens: from token 0 */
        np = 1;
    }
    DataTokenizer *tok = study_sample_tokenizer(ds, &bytes);
    int eot = tok ? data_tok_id(tok, "<|endoftext|>") : -1;
    SmolModel cm;
    SmolGen g = {0};
    int *out = malloc(sizeof(int) * (P + n_new)), n = 0;
    unsigned char *txt = NULL;
    StrBuf b = {0};
    if (!out || smollm_init(&cm, &m->cfg, NULL, 1, 1, err, errlen)) {
        if (!out) snprintf(err, errlen, "sample at step %d: out of host memory", step);
        free(out);
        data_tok_free(tok);
        return -1;
    }
    ops_to_host(gpu, cm.params, m->params, m->n_params * sizeof(ops_real));
    if (smollm_gen_init(&g, &cm, 1, np + n_new, err, errlen) || smollm_prefill(&g, &cm, prompt, np, err, errlen)) goto end;
    for (int s = 0; s < n_new; s++) {
        int t = smollm_sample(g.logits, cm.cfg.vocab_size, NULL, NULL);
        if (t == eot) break;
        out[n++] = t;
        if (s + 1 < n_new && smollm_decode_step(&g, &cm, &t, err, errlen)) goto end;
    }
    sb_printf(&b, "{\"step\": %d, ", step);
    for (int part = 0; part < 2; part++) {
        const int *ids = part ? out : prompt;
        int k = part ? n : np;
        sb_printf(&b, part ? ", \"text\": " : "\"prompt\": ");
        if (tok || bytes) {
            size_t cap = (size_t)k * 64 + 1, len = 0;
            txt = realloc(txt, cap);
            if (!txt) { snprintf(err, errlen, "sample at step %d: out of host memory", step); goto end; }
            for (int i = 0; i < k; i++) {
                if (bytes) txt[len++] = (unsigned char)ids[i];
                else {
                    size_t l = data_tok_decode(tok, &ids[i], 1, txt + len, cap - len);
                    if (l != (size_t)-1 && l <= cap - len) len += l;
                }
            }
            study_json_bytes(&b, txt, len);
        } else { /* no tokenizer: the ids */
            sb_printf(&b, "[");
            for (int i = 0; i < k; i++) sb_printf(&b, "%s%d", i ? ", " : "", ids[i]);
            sb_printf(&b, "]");
        }
    }
    sb_printf(&b, "}\n");
    FILE *f = b.oom ? NULL : fopen(path, "ab");
    if (!f || fwrite(b.p, 1, b.n, f) != b.n || fclose(f)) {
        if (f) fclose(f);
        snprintf(err, errlen, "cannot write %.300s: %s", path, b.oom ? "out of memory composing it" : strerror(errno));
        goto end;
    }
    rc = 0;
end:
    free(b.p);
    free(txt);
    free(out);
    smollm_gen_free(&g);
    smollm_free(&cm);
    data_tok_free(tok);
    return rc;
}

STUDYDEF int study_train(const StudyRunConfig *c, const char *dir, Gpu *gpu, int verbose, StudySummary *o) {
    char err[512];
    double t_start = train_now();
    StudySummary keep = *o; /* the caller's names */
    memset(o, 0, sizeof *o);
    memcpy(o->name, keep.name, sizeof o->name);
    memcpy(o->config_id, keep.config_id, sizeof o->config_id);
    memcpy(o->phase, keep.phase, sizeof o->phase);
    memcpy(o->axes, keep.axes, sizeof o->axes);
    o->index = keep.index;
    o->seed = c->model.seed;
    o->final_loss = o->final_val_loss = o->final_val_ppl = o->best_val_loss = o->best_val_ppl = NAN;
    o->final_val_acc = o->final_val_tokens = o->final_val_se = o->final_val_bpb = o->best_val_bpb = NAN;
    o->final_mc_acc = o->final_mc_se = NAN;
    o->decode_tokens_per_s = o->decode_cache_bytes = NAN;
    o->smoothness = o->grad_norm_mean = o->grad_norm_max = o->tokens_per_s = NAN;
    o->steps = study_run_config_steps(c);
    /* refuse bad shapes before reading any data */
    if (study_run_config_check(c, gpu, err, sizeof err)) { study_fail(o, "failed", "%s", err); return 2; }
    int world = c->dist ? c->dist->world : 1, writer = !c->dist || c->dist->rank == 0;
    int share = c->batch / world; /* this rank's rows of each micro-batch */
    if (c->batch % world) {
        study_fmt(err, sizeof err, "batch %d cannot be split over %d ranks: expected a multiple of %d", c->batch, world, world);
        study_fail(o, "failed", "%s", err);
        return 2;
    }
    if (!writer) verbose = 0; /* rank 0 speaks for the run */
    if (c->save && study_check_save(c->save, err, sizeof err)) { study_fail(o, "failed", "%s", err); return 2; }
    char init_path[4200];
    if (c->init_from && export_init_path(c->init_from, init_path, sizeof init_path, err, sizeof err)) {
        study_fail(o, "failed", "%s", err);
        return 2;
    }
    EvalMcSet mcset; /* read once before training, so that a bad file costs no run; scored at the end */
    if (c->eval_mc) {
        if (eval_mc_load(c->eval_mc, &mcset, err, sizeof err)) { study_fail(o, "failed", "eval_mc: %s", err); return 2; }
        eval_mc_free(&mcset);
    }
    double file0 = NAN, rss0 = gpu ? NAN : study_rss_start(&file0); /* the data and the model count as the run's */
    SmolConfig mc;
    DataSet ds;
    memset(&ds, 0, sizeof ds);
    DataTask task_train, task_val;
    const char *path = c->task ? "(synthetic task)" : c->data ? c->data : study_default_data();
    if (c->task) { /* the train and validation streams differ only in their seed */
        int V = c->task_vocab ? c->task_vocab : 256;
        if (data_task_init(&task_train, c->task, V, c->batch, c->seq, c->task_size, c->model.seed * 7919 + 17, err,
                           sizeof err) ||
            data_task_init(&task_val, c->task, V, c->batch, c->seq, c->task_size, 0x5EEDull, err, sizeof err)) {
            study_fail(o, "failed", "%s", err);
            return 2;
        }
        ds.vocab_size = V;
        if (verbose) printf("data: synthetic task %s, vocab %d, seq %d\n", c->task, V, c->seq);
    } else if (!path) {
        study_fail(o, "failed", "%sno data given and no default text found (data/corpus.txt, "
                                "/usr/share/common-licenses/GPL-3)", "");
        return 2;
    } else {
        if (data_open_text(&ds, path, c->val_frac, err, sizeof err) || data_check_window(&ds, c->seq, err, sizeof err)) {
            study_fail(o, "failed", "%s", err);
            return 2;
        }
        if (verbose)
            printf("data: %s, %zu tokens (%zu train, %zu validation), vocabulary %d\n", path, ds.n_tokens, ds.n_train,
                   ds.n_tokens - ds.n_train, ds.vocab_size);
    }
    mc = c->model;
    mc.vocab_size = ds.vocab_size;
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu->peak_bytes = gpu->bytes_in_use; /* this run's own peak */
#endif
    SmolModel m;
    if (smollm_init(&m, &mc, gpu, share, c->seq, err, sizeof err)) {
        data_close(&ds);
        study_fail(o, "failed", "%s", err);
        return 2;
    }
    TrainConfig tc = c->train;
    tc.steps = o->steps;
    tc.dist = c->dist;
    TrainState tr;
    if (train_init(&tr, &m, &tc)) {
        snprintf(err, sizeof err, "out of memory for the optimizer state of %zu parameters", m.n_params);
        smollm_free(&m);
        data_close(&ds);
        study_fail(o, "failed", "%s", err);
        return 2;
    }
    if (c->init_from && study_init_from(&m, init_path, o, verbose)) {
        train_free(&tr);
        smollm_free(&m);
        data_close(&ds);
        return 2;
    }
    SmolParamCounts pc = smollm_param_counts(&m);
    o->params_total = pc.total;
    o->params_attention = pc.attention;
    o->params_ffn = pc.ffn;
    o->params_embedding = pc.embedding;
    o->params_norms = pc.norms;
    o->kv_bytes_per_token = smollm_kv_bytes_per_token(&m);
    o->cache_bytes_per_token = (double)smollm_cache_bytes(&m, c->seq) / c->seq;
    if (verbose)
        printf("model: %s%s attention (%d heads, %d kv heads, head dim %d%s%s), %s norm, %d layers, d_model %d, "
               "ffn %d, vocab %d\nparams: %zu total = %zu attention + %zu ffn + %zu embedding + %zu norms; "
               "KV cache %zu bytes/token (bf16)\ndevice: %s, batch %d x seq %d x accum %d, %d steps\n",
               m.cfg.attn_layers[0] ? "per-layer " : "", m.cfg.attn_layers[0] ? m.cfg.attn_layers : attn_kind_name(m.cfg.attn.kind),
               m.cfg.n_heads, m.cfg.attn.n_kv_heads, m.cfg.attn.head_dim,
               m.cfg.attn.window ? ", window" : "", m.cfg.attn.qk_norm ? ", qk-norm" : "", smollm_norm_kind_name(m.cfg.norm),
               m.cfg.n_layers, m.cfg.d_model, m.cfg.ffn_dim, m.cfg.vocab_size, pc.total, pc.attention, pc.ffn,
               pc.embedding, pc.norms, (size_t)o->kv_bytes_per_token, gpu ? "cuda" : "cpu", c->batch, c->seq,
               tr.cfg.grad_accum, tr.cfg.steps);
    if (verbose && c->dist)
        printf("data parallel: %d ranks x %d rows of each micro-batch; optimizer state sharded\n", world, share);
    DataSampler ts = {&ds, DATA_TRAIN, c->batch, c->seq, mc.seed * 7919 + 17, 0};
    DataBytes bytes; /* for bits per byte: the tokenizer beside the data (none for a task) */
    if (data_bytes_open(&bytes, &ds) == 1 && !c->task) {
        static int said; /* once per process, not once per run of a study */
        if (writer && !said++) fprintf(stderr, "ablate: bits per byte unknown (reported as null): %s\n", bytes.why);
    }
    TrainEval final_ev;
    memset(&final_ev, 0, sizeof final_ev);
    int final_whole = 0;
    int steps = tr.cfg.steps;
    int eval_every = c->eval_every ? c->eval_every : (steps >= 10 ? steps / 10 : 1);
    int ckpt_every = c->checkpoint_every ? c->checkpoint_every : eval_every;
    double tokens = 0, train_s = 0, wall_before = 0;
    StudyRows rows = {0};
    char mpath[4096], ckpt[4096];
    FILE *mf = NULL;
    int rc = 0;
    if (dir) {
        snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", dir);
        /* continue from the newest checkpoint that passes every check; one that does not is set
           aside (ckpt-N.bad) with a message and the one before it is tried, then a fresh start */
        int cks[64], n_ck = study_list_ckpts(dir, cks, 64), step0 = 0, touched = 0;
        uint64_t w[W_COUNT];
        for (int k = 0; k < n_ck && !step0; k++) {
            char p[4200], aside[4300];
            snprintf(ckpt, sizeof ckpt, "%s/ckpt-%08d", dir, cks[k]);
            int bad = ckpt_manifest_verify(ckpt, err, sizeof err);
            snprintf(p, sizeof p, "%s/model.safetensors", ckpt);
            bad = bad || (touched = 1, smollm_load(&m, p, err, sizeof err));
            snprintf(p, sizeof p, "%s/train.state", ckpt);
            bad = bad || train_load_state(&tr, w, W_COUNT, p, err, sizeof err);
            if (!bad && tr.step != cks[k]) {
                study_fmt(err, sizeof err, "%s says step %d, but its directory is step %d", p, tr.step, cks[k]);
                bad = 1;
            }
            if (!bad) {
                step0 = cks[k];
                if (k && writer) fprintf(stderr, "ablate: %s resumes from %s (step %d)\n", dir, ckpt, step0);
                break;
            }
            if (c->dist) { /* rank 0 renames; every rank must agree on which checkpoint it resumed */
                study_fail(o, "failed", "checkpoint: %s (data-parallel runs do not set checkpoints aside)", err);
                rc = 2;
                goto done;
            }
            study_set_aside(ckpt, aside, sizeof aside);
            fprintf(stderr, "ablate: checkpoint %s is unusable: %s; set aside as %s; ", ckpt, err, aside);
            if (k + 1 < n_ck) fprintf(stderr, "falling back to the one before it, ckpt-%08d\n", cks[k + 1]);
            else fprintf(stderr, "no older checkpoint: the run starts again from step 0\n");
        }
        if (!step0 && touched) { /* a refused checkpoint may have loaded part of itself: start clean */
            train_free(&tr);
            smollm_free(&m);
            if (smollm_init(&m, &mc, gpu, share, c->seq, err, sizeof err)) {
                study_fail(o, "failed", "%s", err);
                rc = 2;
                data_bytes_close(&bytes);
                data_close(&ds);
                return rc;
            }
            if (train_init(&tr, &m, &tc)) {
                snprintf(err, sizeof err, "out of memory for the optimizer state of %zu parameters", m.n_params);
                study_fail(o, "failed", "%s", err);
                smollm_free(&m);
                data_bytes_close(&bytes);
                data_close(&ds);
                return 2;
            }
            if (c->init_from && study_init_from(&m, init_path, o, verbose)) {
                train_free(&tr);
                smollm_free(&m);
                data_bytes_close(&bytes);
                data_close(&ds);
                return 2;
            }
        }
        if (step0) {
            ts.rng = w[W_RNG];
            task_train.rng = w[W_RNG];
            ts.cursor = (size_t)w[W_CURSOR];
            tokens = study_bitsd(w[W_TOKENS]);
            train_s = study_bitsd(w[W_TRAIN_S]);
            wall_before = study_bitsd(w[W_WALL_S]);
            int torn = study_rows_read(mpath, step0, &rows);
            if (torn < 0) {
                char why[4300];
                snprintf(why, sizeof why, "out of memory reading the metrics %s", mpath);
                study_fail(o, "failed", "%s", why);
                rc = 2;
                goto done;
            }
            if (torn)
                fprintf(stderr, "ablate: %s: a torn line (cut short by a kill or a full disk) dropped; the "
                                "metrics are rewritten from the checkpoint at step %d\n", mpath, step0);
        }
        /* rewrite the metrics up to the checkpoint, then append (rank 0's file) */
        if (!writer) goto training;
        StrBuf b = {0};
        sb_printf(&b, "%s", "");
        for (int i = 0; i < rows.n; i++) study_row_json(&b, &rows.r[i]);
        int oom = b.oom, bad = oom || study_write_atomic(mpath, b.p, b.n);
        free(b.p);
        mf = bad ? NULL : fopen(mpath, "ab");
        if (!mf) {
            char why[4300];
            snprintf(why, sizeof why, "cannot write %s: %s", mpath, oom ? "out of memory composing it" : strerror(errno));
            study_fail(o, "failed", "%s", why);
            rc = 2;
            goto done;
        }
    }
training:
    for (int s = tr.step; s < steps; s++) {
        TrainStats st = c->task ? train_step(&tr, data_task_batch, &task_train) : train_step(&tr, study_batch, &ts);
        if (st.failed) {
            char why[400];
            if (st.failed == 2) snprintf(why, sizeof why, "step %d: %s", st.step, c->dist->err);
            else snprintf(why, sizeof why, "step %d: out of host memory in the forward or backward pass", st.step + 1);
            study_fail(o, "failed", "%s", why);
            rc = 2;
            break;
        }
        double step_tokens = (double)c->batch * c->seq * tr.cfg.grad_accum;
        tokens += step_tokens;
        train_s += st.seconds;
        StudyRow r = {st.step, tokens, st.loss, st.lr, st.grad_norm, step_tokens / st.seconds, train_s, NAN, NAN, NAN};
        int last = st.step == steps, time_up = c->seconds > 0 && train_s >= c->seconds;
        if (!isfinite(st.loss)) {
            char why[96];
            snprintf(why, sizeof why, "step %d: loss is %g", st.step, st.loss);
            study_fail(o, "diverged", "%s", why);
            if (verbose) fprintf(stderr, "ablate: %s, training diverged\n", why);
            rc = 1;
        } else if (writer && (st.step % eval_every == 0 || last || time_up)) {
            if (c->task) { /* the same validation sequences at every evaluation */
                DataTask tv = task_val;
                StudySplitBatch_ sb = {data_task_batch, &tv, malloc(sizeof(int) * c->batch * c->seq),
                                       malloc(sizeof(int) * c->batch * c->seq), share, c->seq, world, 0};
                if (!sb.tok || !sb.tgt) {
                    study_fail(o, "failed", "validation: %s", "out of memory");
                    rc = 2;
                } else if (world > 1)
                    r.val_loss = train_eval_acc(&tr, study_split_batch, &sb, c->eval_batches * world, &r.val_acc);
                else
                    r.val_loss = train_eval_acc(&tr, data_task_batch, &tv, c->eval_batches, &r.val_acc);
                free(sb.tok);
                free(sb.tgt);
            } else { /* windows spread over the whole split; the last evaluation: all of it, up to a cap */
                int final = last || time_up;
                double cap = c->final_eval_tokens > 0 ? c->final_eval_tokens : STUDY_FINAL_EVAL_TOKENS;
                double want = final ? floor(cap / c->seq) : (double)c->eval_batches * c->batch;
                DataEval ev;
                TrainEval te;
                if (data_eval_init(&ev, &ds, DATA_VAL, c->seq, share, want >= 1 ? (size_t)want : 1, err, sizeof err) ||
                    (ev.bytes = &bytes, train_evaluate(&m, data_eval_batch, &ev, data_eval_batches(&ev), 0, &te))) {
                    study_fail(o, "failed", "validation: %s", ev.n_rows ? "out of memory" : err);
                    rc = 2;
                } else {
                    r.val_loss = te.loss;
                    r.val_bpb = te.bpb;
                    if (final) final_ev = te;
                    if (final) final_whole = ev.whole;
                }
            }
        }
        if (!rc && dir && writer && c->sample_every > 0 && !c->task && (st.step % c->sample_every == 0 || last || time_up)) {
            char spath[4200];
            snprintf(spath, sizeof spath, "%s/samples.jsonl", dir);
            if (study_sample(&m, gpu, &ds, c->sample_tokens, st.step, spath, err, sizeof err)) {
                study_fail(o, "failed", "sample: %s", err);
                rc = 2;
            }
        }
        int logged = st.step % c->log_every == 0 || last || time_up || rc || isfinite(r.val_loss);
        if (logged && study_rows_push(&rows, r)) {
            char why[96];
            snprintf(why, sizeof why, "step %d: out of memory for the metrics table", st.step);
            study_fail(o, "failed", "%s", why);
            rc = 2;
            break;
        }
        if (mf && logged) { /* a line that does not reach the disk (a full disk) fails the run */
            StrBuf b = {0};
            study_row_json(&b, &r);
            int oom = b.oom, wrote = !oom && fwrite(b.p, 1, b.n, mf) == b.n && fflush(mf) == 0;
            free(b.p);
            if (!wrote) {
                char why[4300];
                snprintf(why, sizeof why, "cannot write %s (step %d): %s", mpath, st.step,
                         oom ? "out of memory composing the line" : strerror(errno));
                study_fail(o, "failed", "%s", why);
                rc = 2;
                break;
            }
            if (c->kill_countdown && --*c->kill_countdown == 0) kill(getpid(), SIGKILL);
        }
        if (verbose && !rc && (st.step % c->log_every == 0 || last))
            printf("step %5d/%d | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | %.1f ms\n", st.step, steps,
                   st.loss, st.lr, st.grad_norm, r.tokens_per_s, st.seconds * 1e3);
        if (verbose && isfinite(r.val_acc))
            printf("step %5d | val loss %.4f | val ppl %.2f | val acc %.4f\n", st.step, r.val_loss, exp(r.val_loss),
                   r.val_acc);
        else if (verbose && isfinite(r.val_loss))
            printf("step %5d | val loss %.4f | val ppl %.2f | val bpb %.4f\n", st.step, r.val_loss, exp(r.val_loss),
                   r.val_bpb);
        if (verbose && final_ev.windows > 0 && (last || time_up))
            printf("validation (%s, %.0f tokens in %.0f windows): loss %.6f +- %.6f (standard error) | ppl %.3f | "
                   "bpb %.4f\n", final_whole ? "the whole split" : "windows spread over the split", final_ev.tokens,
                   final_ev.windows, final_ev.loss, final_ev.se, exp(final_ev.loss), final_ev.bpb);
        if (rc) break;
        if (time_up && !last) {
            snprintf(o->reason, sizeof o->reason, "time budget of %g s reached at step %d of %d", c->seconds, st.step, steps);
            break;
        }
        if (dir && !last && st.step % ckpt_every == 0) {
            uint64_t w[W_COUNT] = {c->task ? task_train.rng : ts.rng, ts.cursor, study_dbits(tokens), study_dbits(train_s),
                                   study_dbits(wall_before + train_now() - t_start)};
            /* data parallel: every rank hands its moments to rank 0, which writes them */
            if (train_sync_state(&tr, err, sizeof err)) {
                study_fail(o, "failed", "checkpoint: %s", err);
                rc = 2;
                break;
            }
            if (writer && study_checkpoint(dir, st.step, &m, &tr, w, c, err, sizeof err))
                fprintf(stderr, "ablate: checkpoint of %s: %s (training goes on)\n", dir, err);
        }
    }
    if (!rc) snprintf(o->status, sizeof o->status, "ok");
    /* the summary, from the rows (so a resumed run counts its earlier steps too) */
    o->tokens = tokens;
    o->train_seconds = train_s;
    o->tokens_per_s = train_s > 0 ? tokens / train_s : NAN;
    o->grad_norm_mean = tr.gnorm_count ? tr.gnorm_sum / tr.gnorm_count : NAN;
    o->grad_norm_max = tr.gnorm_max;
    if (rows.n) {
        o->steps_done = rows.r[rows.n - 1].step;
        o->final_loss = rows.r[rows.n - 1].loss;
        double dsum = 0;
        int dn = 0;
        for (int i = 0; i < rows.n; i++) {
            const StudyRow *r = &rows.r[i];
            if (i && isfinite(r->loss) && isfinite(rows.r[i - 1].loss)) { dsum += fabs(r->loss - rows.r[i - 1].loss); dn++; }
            if (isfinite(r->val_loss)) {
                o->final_val_loss = r->val_loss;
                o->final_val_bpb = r->val_bpb;
                o->final_val_acc = r->val_acc;
                if (!(r->val_loss >= o->best_val_loss)) {
                    o->best_val_loss = r->val_loss;
                    o->best_val_step = r->step;
                    o->best_val_bpb = r->val_bpb;
                }
            }
        }
        o->smoothness = dn ? dsum / dn : NAN;
        o->final_val_ppl = exp(o->final_val_loss);
        if (final_ev.windows > 0) { /* evaluated by this process (a resumed run too: its last step is here) */
            o->final_val_tokens = final_ev.tokens;
            o->final_val_se = final_ev.se;
        }
        o->best_val_ppl = exp(o->best_val_loss);
    }
#ifndef ABLATE_NO_CUDA
    if (gpu) o->peak_bytes = gpu->peak_bytes;
#endif
    if (!gpu) o->peak_bytes = study_rss_peak(rss0, file0);
    if (verbose && !rc) {
        printf("done: %.0f tokens in %.1f s, %.0f tok/s, grad norm mean %.3f max %.3f", tokens,
               train_now() - t_start, o->tokens_per_s, o->grad_norm_mean, o->grad_norm_max);
        if (o->peak_bytes > 0) printf(", peak %s memory %.1f MB", gpu ? "device" : "resident", o->peak_bytes / 1048576.0);
        printf("\n");
    }
    if (c->save && writer) {
        if (smollm_save(&m, c->save, err, sizeof err)) { /* the weights asked for are lost: not a success */
            study_fail(o, "failed", "%s", err);
            rc = 2;
        } else {
            /* a model.safetensors gets what transformers needs beside it (export.h); in a study's
               run directory, whose config.json is the run's, the export goes to DIR/RUN/hf */
            const char *base = strrchr(c->save, '/');
            base = base ? base + 1 : c->save;
            if (!strcmp(base, "model.safetensors")) {
                char d[4200], tp[4200], note[1024], e2[1024];
                snprintf(d, sizeof d, "%.*s", base > c->save ? (int)(base - c->save - 1) : 1, base > c->save ? c->save : ".");
                int have_tok = m.cfg.vocab_size != DATA_BYTE_VOCAB && !study_data_tokenizer(c, tp, sizeof tp);
                int bad;
                if (dir) {
                    study_fmt(d, sizeof d, "%s/hf", dir);
                    bad = export_dir(c->save, d, have_tok ? tp : NULL, note, sizeof note, e2, sizeof e2);
                } else bad = export_sidecars(d, &m.cfg, c->seq, have_tok ? tp : NULL, note, sizeof note, e2, sizeof e2);
                if (bad) {
                    study_fail(o, "failed", "%s", e2);
                    rc = 2;
                } else if (note[0] && verbose) printf("%s\n", note);
            }
            if (verbose) printf("saved %s\n", c->save);
        }
    }
    if (c->eval_mc && !rc && writer) study_eval_mc(&m, c, o, verbose);
    if (c->bench_decode && !rc && writer) study_bench_decode_run(&m, c, o, verbose);
done:
    o->wall_seconds = wall_before + train_now() - t_start;
    if (mf && fclose(mf) && !rc) {
        char why[4300];
        snprintf(why, sizeof why, "cannot write %s (closing it): %s", mpath, strerror(errno));
        study_fail(o, "failed", "%s", why);
        rc = 2;
    }
    free(rows.r);
    train_free(&tr);
    smollm_free(&m);
    data_bytes_close(&bytes);
    data_close(&ds);
    return rc;
}

/* ---- a study ---- */
static void study_fmt_time(char *out, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(out, n, "?");
    else if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

/* A run that kills its worker process (a GPU out-of-memory abort, a crash) would be retried
   by every round of workers. DIR/RUN/attempts holds "tries checkpoint-step session"; after 3
   tries within one invocation of the study (session: the pid of the process that started the
   workers) that made no checkpoint progress the run is recorded as failed instead. Deaths
   under earlier invocations (a user's kill, a machine that went down) do not count: a later
   --resume gives the run a fresh chance, from its checkpoint or from scratch. */
static int study_attempt(const char *rdir, long session, char *reason, size_t n) {
    char p[4300], ck[4300];
    study_fmt(p, sizeof p, "%s/attempts", rdir);
    int tries = 0, last = -1;
    long was = -1;
    FILE *f = fopen(p, "r");
    if (f) {
        if (fscanf(f, "%d %d %ld", &tries, &last, &was) != 3) tries = 0;
        fclose(f);
    }
    int step = study_latest_ckpt(rdir, ck, sizeof ck);
    if (step != last || was != session) tries = 0;
    if (tries >= 3) {
        snprintf(reason, n, "the process died %d times in this run with no checkpoint past step %d "
                            "(out of memory or a crash); not retried", tries, step);
        return -1;
    }
    char text[64];
    int k = snprintf(text, sizeof text, "%d %d %ld\n", tries + 1, step, session);
    if (study_write_atomic(p, text, (size_t)k)) /* the run can still train; its deaths go uncounted */
        fprintf(stderr, "ablate: cannot write %s: %s\n", p, strerror(errno));
    return 0;
}

static int study_write_text(const char *path, const StrBuf *b) {
    if (b->oom) {
        fprintf(stderr, "ablate: out of memory composing %s (%zu bytes so far): not written\n", path, b->n);
        return -1;
    }
    if (study_write_atomic(path, b->p ? b->p : "", b->n) == 0) return 0;
    fprintf(stderr, "ablate: cannot write %s: %s\n", path, strerror(errno));
    return -1;
}

/* ---- one study per directory: DIR/.lock ----
   "pid host\n" of the process running the study, made whole in a temporary file and linked to
   DIR/.lock (link fails when the lock exists, and the lock never appears half written). The
   worker processes of a study run under their parent's lock. A lock whose process is gone (on
   this host: a kill -9, a crash) is stale and taken over; one of another host is never
   guessed about. 0: locked; -1 with a message naming the holder */
static int study_lock_read(const char *lock, long *pid, char *host, size_t hn) {
    char *t = study_read_all(lock, NULL), fmt[32];
    if (!t) return -1;
    snprintf(fmt, sizeof fmt, "%%ld %%%zus", hn - 1);
    int ok = sscanf(t, fmt, pid, host) == 2 && *pid > 0;
    free(t);
    return ok ? 0 : -1;
}

static int study_lock(const char *dir, char *err, size_t errlen) {
    char lock[4200], tmp[4300], me[256] = "", host[256];
    if (errlen) err[0] = 0;
    if (gethostname(me, sizeof me - 1)) snprintf(me, sizeof me, "unknown");
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    snprintf(tmp, sizeof tmp, "%s/.lock.%ld", dir, (long)getpid());
    char text[300];
    int k = snprintf(text, sizeof text, "%ld %s\n", (long)getpid(), me);
    if (study_write_atomic(tmp, text, (size_t)k)) {
        study_fmt(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    for (int tries = 0; tries < 3; tries++) {
        if (link(tmp, lock) == 0) { remove(tmp); return 0; }
        int e = errno;
        long pid = 0;
        if (e != EEXIST) {
            study_fmt(err, errlen, "cannot create the lock %s: %s", lock, strerror(e));
            break;
        }
        if (study_lock_read(lock, &pid, host, sizeof host)) {
            if (!study_exists(lock)) continue; /* released meanwhile */
            study_fmt(err, errlen, "%s exists but does not hold 'PID HOST': remove it if no study runs in %s", lock, dir);
            break;
        }
        if (strcmp(host, me) || kill((pid_t)pid, 0) == 0 || errno != ESRCH) {
            study_fmt(err, errlen, "%s is being run by process %ld on %s (lock %s): wait for it to end, or remove the lock "
                                  "if that process is gone", dir, pid, host, lock);
            break;
        }
        fprintf(stderr, "ablate: %s: process %ld on %s is gone; taking over its stale lock\n", lock, pid, host);
        remove(lock);
    }
    remove(tmp);
    if (!err[0]) study_fmt(err, errlen, "cannot take the lock %s", lock);
    return -1;
}

static void study_unlock(const char *dir) {
    char lock[4200], host[256];
    long pid = 0;
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    if (study_lock_read(lock, &pid, host, sizeof host) == 0 && pid == (long)getpid()) remove(lock);
}

/* a worker runs under its parent's lock: refuse a --worker whose parent does not hold it */
static int study_lock_check_parent(const char *dir, char *err, size_t errlen) {
    char lock[4200], host[256];
    long pid = 0;
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    if (study_lock_read(lock, &pid, host, sizeof host) == 0 && pid == (long)getppid()) return 0;
    study_fmt(err, errlen, "worker of %s: the lock %s is not held by this worker's parent (process %ld): "
                          "workers are started by ablate run --workers/--gpus", dir, lock, (long)getppid());
    return -1;
}

/* ---- gpus_per_run: data-parallel runs (GPUS PER RUN) ---- */
STUDYDEF int study_gpu_group(const char *gpus, int per_run, int k, char *out, size_t n) {
    int per = per_run > 1 ? per_run : 1, items = 0;
    size_t start = 0;
    if (n) out[0] = 0;
    if (k < 0) return -1;
    for (size_t i = 0;; i++) { /* items k per .. (k + 1) per - 1 of the comma-separated list */
        if (gpus[i] && gpus[i] != ',') continue;
        if (++items == k * per) start = i + 1;
        if (items == (k + 1) * per) {
            if (i - start + 1 > n) return -1;
            snprintf(out, n, "%.*s", (int)(i - start), gpus + start);
            return 0;
        }
        if (!gpus[i]) return -1; /* fewer items than the group needs */
    }
}

STUDYDEF int study_gpu_groups(const StudySpec *s, const StudyOptions *o, int on_cuda, char *err, size_t errlen) {
    int N = s->gpus_per_run;
    if (N <= 1) return o->workers;
    if (!on_cuda) {
        if (o->gpus) {
            snprintf(err, errlen, "gpus_per_run = %d with --gpus %s on the CPU: the CPU trains each run over %d CPU "
                                  "processes (no GPUs); --gpus is for device cuda", N, o->gpus, N);
            return -1;
        }
        return o->workers;
    }
    if (!o->gpus) {
        snprintf(err, errlen, "gpus_per_run = %d on a GPU needs --gpus LIST of a multiple of %d GPUs (each run takes a "
                              "group of %d of them)", N, N, N);
        return -1;
    }
    if (o->workers % N) {
        snprintf(err, errlen, "--gpus %s lists %d GPU%s: expected a multiple of gpus_per_run = %d (each run takes a group "
                              "of %d)", o->gpus, o->workers, o->workers == 1 ? "" : "s", N, N);
        return -1;
    }
    return o->workers / N;
}

typedef struct {
    StudySummary sum;   /* rank 0's */
    int kill_countdown; /* the test hook's count, carried over the ranks' processes */
    char why[512];      /* a rank that could not start says why */
} StudyRanksShared_;
typedef struct {
    const StudyRunConfig *c;
    const char *dir;
    int on_cuda;
    const StudyOptions *o;
    StudyRanksShared_ *sh;
} StudyRanks_;

static int study_rank_(DistComm *d, void *ctx) {
    StudyRanks_ *x = ctx;
    StudyRunConfig c = *x->c;
    Gpu *gpu = NULL;
    c.dist = d;
    c.kill_countdown = x->c->kill_countdown ? &x->sh->kill_countdown : NULL;
    if (x->on_cuda) {
#ifndef ABLATE_NO_CUDA
        gpu = calloc(1, sizeof *gpu);
        if (!gpu || gpu_init(gpu, d->rank)) {
            study_fmt(x->sh->why, sizeof x->sh->why, "rank %d: GPU %d (of the worker's group) cannot be used: %s", d->rank,
                      d->rank, gpu ? gpu->err : "out of host memory");
            free(gpu);
            return 2;
        }
        if (x->o && x->o->rank_gpu) x->o->rank_gpu(gpu, x->o->rank_gpu_ctx);
        if (dist_nccl_init(d, gpu->stream)) {
            study_fmt(x->sh->why, sizeof x->sh->why, "%s", d->err);
            study_close_device(gpu);
            return 2;
        }
#else
        study_fmt(x->sh->why, sizeof x->sh->why, "GPU ranks in the CPU-only build");
        return 2;
#endif
    }
    StudySummary sm = {0};
    int rc = study_train(&c, x->dir, gpu, 0, &sm);
    if (d->rank == 0) x->sh->sum = sm;
    dist_nccl_close(d);
    study_close_device(gpu);
    /* a diverged or failed run is an outcome rank 0's summary records, not a rank's failure:
       every rank ends with 0 so that dist_spawn stops none of them early */
    (void)rc;
    return 0;
}

STUDYDEF int study_train_ranks(const StudyRunConfig *c, const char *dir, int ranks, int on_cuda, const StudyOptions *o,
                               StudySummary *out) {
    char err[300];
    StudyRanksShared_ *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(out, 0, sizeof *out);
    snprintf(out->status, sizeof out->status, "failed");
    if (sh == MAP_FAILED) {
        study_fmt(out->reason, sizeof out->reason, "cannot map shared memory for the %d ranks' summary", ranks);
        return 2;
    }
    memset(sh, 0, sizeof *sh);
    sh->kill_countdown = c->kill_countdown ? *c->kill_countdown : 0;
    StudyRanks_ x = {c, dir, on_cuda, o, sh};
    int rc = dist_spawn(ranks, study_rank_, &x, err, sizeof err);
    if (c->kill_countdown) *c->kill_countdown = sh->kill_countdown;
    if (rc >= 128) { /* a rank's process died (a crash, an out-of-memory kill, a test's SIGKILL) */
        fprintf(stderr, "ablate: %s\n", err);
        fflush(stderr);
        kill(getpid(), SIGKILL);
    }
    if (rc) study_fmt(out->reason, sizeof out->reason, "%s%s%s", err, sh->why[0] ? ": " : "", sh->why);
    else {
        *out = sh->sum;
        rc = !strcmp(out->status, "ok") ? 0 : !strcmp(out->status, "diverged") ? 1 : 2;
    }
    munmap(sh, sizeof *sh);
    return rc;
}

/* runs phase p's runs in o->workers processes of this same program (each a `run --resume DIR
   --worker k --phase-only p`, on its own GPU when o->gpus lists them) and waits for them;
   returns how many workers failed */
static int study_spawn_workers(const StudyOptions *o, int n, const char *dir, int p, int per_run, int cuda_ranks) {
    pid_t pids[1024];
    int failed = 0;
    for (int k = 1; k <= n; k++) {
        char dev[400] = "";
        if (o->gpus) study_gpu_group(o->gpus, per_run, k - 1, dev, sizeof dev); /* the k-th entry, or group */
        fflush(stdout);
        pids[k - 1] = fork();
        if (pids[k - 1] == 0) {
            char ks[16], ns[16], ps[16];
            snprintf(ks, sizeof ks, "%d", k);
            snprintf(ns, sizeof ns, "%d", n);
            snprintf(ps, sizeof ps, "%d", p);
            /* the one environment variable set here: a process-level device selection for the
               child about to exec, not a setting read by this library. The worker then sees its
               GPU as device 0, for gpu_init and for the CUDA runtime inside cuBLASLt alike */
            if (dev[0]) setenv("CUDA_VISIBLE_DEVICES", dev, 1);
#ifdef __linux__
            /* a worker does not outlive its parent (a kill -9): it would go on writing a directory
               whose lock a --resume may take over */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
            char *args[13 + STUDY_MAX_WORKER_ARGS + 1] = {"ablate", "run", "--resume", (char *)dir, "--workers", ns,
                                                          "--worker", ks, "--phase-only", ps};
            int na = 10;
            for (int a = 0; a < o->n_worker_args && a < STUDY_MAX_WORKER_ARGS; a++) args[na++] = o->worker_args[a];
            if (o->die_at) { args[na++] = "--test-die-at"; args[na++] = (char *)o->die_at; }
            if (cuda_ranks) args[na++] = "--worker-cuda";
            args[na] = NULL;
            execv("/proc/self/exe", args);
            fprintf(stderr, "ablate: cannot start worker %d: %s\n", k, strerror(errno));
            _exit(127);
        }
        if (pids[k - 1] < 0) { fprintf(stderr, "ablate: cannot fork worker %d\n", k); failed++; }
    }
    for (int k = 0; k < n; k++) {
        int st = 0;
        if (pids[k] > 0 && (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
            fprintf(stderr, "ablate: worker %d of phase %d ended badly (%s %d)\n", k + 1, p,
                    WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            failed++;
        }
    }
    return failed;
}

static int study_run_locked(const StudySpec *s, const StudyOptions *o, Gpu *gpu, const char *dir);

STUDYDEF int study_run(const StudySpec *s, const StudyOptions *o, Gpu *gpu) {
    char dir[4096], err[4600], path[4300];
    /* a new study is checked whole before anything is written: a bad shape found at run time
       failed every run of its phase and left a directory that blocked the rerun. A resumed
       study was checked when it started; workers are started by a checked parent */
    if (!o->worker && study_gpu_groups(s, o, gpu != NULL, err, sizeof err) < 0) {
        fprintf(stderr, "ablate: %s\n", err);
        return 2;
    }
    if (!o->resume && !o->worker) {
        int bad = study_check(s, gpu, err, sizeof err);
        if (bad < 0) { fprintf(stderr, "ablate: %s\n", err); return 2; }
        if (bad > 0 && !o->quiet) fprintf(stderr, "ablate: note: %s\n", err);
    }
    if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
    else snprintf(dir, sizeof dir, "runs/%s", s->name);
    if (!o->resume && !o->out) /* never overwrite an earlier study: runs/NAME-2, -3... */
        for (int k = 2; study_exists(dir); k++) snprintf(dir, sizeof dir, "runs/%s-%d", s->name, k);
    else if (!o->resume && study_exists(dir)) {
        snprintf(path, sizeof path, "%s/study.ini", dir);
        if (study_exists(path)) {
            fprintf(stderr, "ablate: %s already holds a study: continue it with --resume %s, or pick another --out\n",
                    dir, dir);
            return 2;
        }
    }
    if (o->resume && !study_exists(dir)) { fprintf(stderr, "ablate: --resume %s: no such directory\n", dir); return 2; }
    /* refuse a grid that would take days or more memory than there is before writing anything */
    long long total = 0;
    for (int p = 0; p < s->n_phases; p++) total += study_phase_size(s, p);
    if (total >= INT_MAX || (total > STUDY_MAX_RUNS && !o->allow_large)) {
        char many[32];
        if (total >= INT_MAX) snprintf(many, sizeof many, "more than %d", INT_MAX - 1);
        else snprintf(many, sizeof many, "%lld", total);
        fprintf(stderr, "ablate: study %s has %s runs (the product of its axes' value counts and the seeds), more than "
                        "%d%s\n", s->name, many, total >= INT_MAX ? INT_MAX - 1 : STUDY_MAX_RUNS,
                total >= INT_MAX ? "" : ": use fewer values or seeds, or --allow-large to run it anyway");
        return STUDY_ERROR;
    }
    if (study_mkdirs(dir)) { fprintf(stderr, "ablate: cannot create %s: %s\n", dir, strerror(errno)); return 2; }
    if (o->worker ? study_lock_check_parent(dir, err, sizeof err) : study_lock(dir, err, sizeof err)) {
        fprintf(stderr, "ablate: %s\n", err);
        return STUDY_ERROR;
    }
    int rc = study_run_locked(s, o, gpu, dir);
    if (!o->worker) study_unlock(dir);
    return rc;
}

static int study_run_locked(const StudySpec *s, const StudyOptions *o, Gpu *gpu, const char *dir) {
    char err[600], path[4300];
    /* the spec as run, so that --resume re-reads exactly this. Worker processes read it and
       never write it: several of them writing through the same temporary file raced */
    snprintf(path, sizeof path, "%s/study.ini", dir);
    if (!o->worker) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        study_write_spec(s, mem);
        fclose(mem);
        int bad = study_write_atomic(path, text, len);
        free(text);
        if (bad) { fprintf(stderr, "ablate: cannot write %s: %s\n", path, strerror(errno)); return 2; }
    }
    int total = 0; /* study_run checked the sum */
    for (int p = 0; p < s->n_phases; p++) total += study_phase_size(s, p);
    if (!o->quiet && !o->worker && s->gpus_per_run > 1) /* then the line says how the ranks are laid out */
        printf("study %s: %d runs (%d phase%s, %d seed%s) in %s on %s, each run data-parallel over %d %s%s\n", s->name,
               total, s->n_phases, s->n_phases == 1 ? "" : "s", s->n_seeds, s->n_seeds == 1 ? "" : "s", dir,
               gpu ? "cuda" : "cpu", s->gpus_per_run, gpu ? "GPUs" : "CPU processes",
               o->workers > 1 ? (o->gpus ? " (one worker per group of the listed GPUs)" : " (several workers)") : "");
    else if (!o->quiet && !o->worker)
        printf("study %s: %d runs (%d phase%s, %d seed%s) in %s on %s%s\n", s->name, total, s->n_phases,
               s->n_phases == 1 ? "" : "s", s->n_seeds, s->n_seeds == 1 ? "" : "s", dir, gpu ? "cuda" : "cpu",
               o->workers > 1 ? (o->gpus ? ", one worker per GPU" : ", several workers") : "");
    if (!o->quiet && !o->worker) study_print_data(s);
    int resume = o->resume, quiet_done = o->worker > 0; /* a worker does not list finished runs */
    StudyRun *all = calloc(total, sizeof *all);
    StudyRun *runs = calloc(total, sizeof *runs);
    StudySummary *sums = calloc(total, sizeof *sums);
    if (!all || !runs || !sums) {
        fprintf(stderr, "ablate: out of memory for the %d runs of study %s\n", total, s->name);
        free(all), free(runs), free(sums);
        return STUDY_ERROR;
    }
    int kill_lines = o->kill_metrics, summaries = 0; /* test hooks */
    char carried[STUDY_AXES_LEN] = "";
    int done = 0, trained = 0, n_all = 0, rc = 0, failures = 0;
    double t0 = train_now();
    for (int p = 0; p < s->n_phases && !rc; p++) {
        int n = study_expand(s, p, carried, runs, total, err, sizeof err);
        if (n < 0) { fprintf(stderr, "ablate: %s\n", err); rc = 2; break; }
        if (s->n_phases > 1 && !o->quiet && !o->worker)
            printf("phase %s%s%s\n", s->phases[p].name, *carried ? ": carrying " : "", carried);
        /* Worker processes train the phase and this one reads their files. On a GPU there is
           always at least one: a run that dies (an out-of-memory abort, a crash) takes only its
           worker down. Workers are started again while one ends badly; a run that has killed
           its process 3 times is recorded as failed (study_attempt) and the others go on. */
        int per_run = s->gpus_per_run > 1 ? s->gpus_per_run : 1;
        int workers = o->workers > 0 ? o->workers : gpu ? 1 : 0;
        if (per_run > 1 && o->gpus && !o->worker) workers = o->workers / per_run; /* study_gpu_groups checked it */
#ifdef _OPENMP
        /* CPU workers split the cores instead of each starting a thread per core: oversubscribed
           threads wait on each other at every barrier of every op */
        if (o->worker && !gpu && !o->worker_cuda) {
            int t = omp_get_num_procs() / (o->workers > 0 ? o->workers : 1);
            omp_set_num_threads(t > 0 ? t : 1);
        }
#endif
        if (workers >= 1 && !o->worker) {
            if (!o->quiet && workers > 1) printf("phase %d: %d runs over %d workers\n", p, n, workers);
            /* each bad round either finishes runs or counts one more death of a run (3 make it
               failed), so 3 n + 1 rounds always suffice */
            for (int round = 0; round < 3 * n + 1 && study_spawn_workers(o, workers, dir, p, per_run, per_run > 1 && gpu) > 0; round++)
                if (!o->quiet) printf("phase %d: starting the workers again for the runs left\n", p);
            resume = 1;
            quiet_done = 1; /* the workers printed those runs */
        }
        int mine_only = o->worker && p == o->phase_only;
        for (int i = 0; i < n; i++) {
            StudyRun *r = &runs[i];
            /* the same identity (configuration and seed) earlier in the study: reuse that run */
            const char *reuse = NULL;
            for (int j = 0; j < n_all && !reuse; j++)
                if (all[j].identity == r->identity) reuse = all[j].name;
            /* a different configuration of an earlier phase with the same readable name: this
               one's name gets its identity's hex (study_expand does so within a phase) */
            for (int j = 0; j < n_all && !reuse; j++)
                if (!strcmp(all[j].config_id, r->config_id) && all[j].config_identity != r->config_identity)
                    study_id_suffix(r);
            StrBuf a = {0};
            run_config_json(&a, &r->cfg);
            char rdir[4300];
            snprintf(rdir, sizeof rdir, "%s/%s", dir, reuse ? reuse : r->name);
            study_fmt(path, sizeof path, "%s/summary.json", rdir);
            done++;
            if (!reuse) all[n_all++] = *r; /* before any skip, so that resume dedupes as a fresh run does */
            StudySummary *sm = &sums[i];
            if (mine_only && i % (o->workers > 0 ? o->workers : 1) != o->worker - 1) continue; /* another worker's */
            if (reuse || (resume && study_summary_read(path, sm) == 0)) {
                if (reuse) study_summary_read(path, sm);
                else failures += strcmp(sm->status, "ok") != 0; /* the exit status counts every run */
                if (!o->quiet && !quiet_done)
                    printf("[%*d/%d] %-36s %s: val %.4f (%s)\n", total >= 10 ? 2 : 1, done, total, r->name,
                           reuse ? "same as" : "done earlier", sm->final_val_loss, reuse ? reuse : sm->status);
                /* a process killed between summary.json and the final prune left checkpoints */
                if (!reuse && !s->keep_checkpoints) study_prune_ckpts(rdir, 0);
                free(a.p);
                continue;
            }
            if (study_mkdirs(rdir)) { fprintf(stderr, "ablate: cannot create %s\n", rdir); rc = 2; free(a.p); break; }
            /* config.json */
            StrBuf b = {0};
            sb_printf(&b, "{");
            sb_str(&b, "study", s->name, 0);
            sb_str(&b, "run", r->name, 0);
            sb_str(&b, "config", r->config_id, 0);
            sb_str(&b, "phase", r->phase, 0);
            sb_str(&b, "axes", r->axes, 0);
            sb_printf(&b, "\"identity\": \"%016llx\", \"config_identity\": \"%016llx\", ",
                      (unsigned long long)r->identity, (unsigned long long)r->config_identity);
            /* gpus_per_run: how the run was trained, not what it computes (not in the identity) */
            sb_printf(&b, "\"index\": %d, \"device\": \"%s\", \"gpus_per_run\": %d, \"model\": %s}\n", done - 1,
                      gpu || o->worker_cuda ? "cuda" : "cpu", per_run, a.p);
            study_fmt(path, sizeof path, "%s/config.json", rdir);
            int no_config = study_write_text(path, &b);
            free(b.p);
            free(a.p);
            memset(sm, 0, sizeof *sm);
            snprintf(sm->name, sizeof sm->name, "%s", r->name);
            snprintf(sm->config_id, sizeof sm->config_id, "%s", r->config_id);
            snprintf(sm->phase, sizeof sm->phase, "%s", r->phase);
            snprintf(sm->axes, sizeof sm->axes, "%s", r->axes);
            sm->identity = r->identity;
            sm->index = done - 1;
            double r0 = train_now();
            char weights[4400];
            if (s->keep_checkpoints) { /* and the final weights */
                study_fmt(weights, sizeof weights, "%s/model.safetensors", rdir);
                r->cfg.save = weights;
            }
            r->cfg.kill_countdown = kill_lines > 0 ? &kill_lines : NULL;
            r->cfg.die_at = o->die_at;
            if (study_resume_config_check(rdir, &r->cfg, err, sizeof err)) { /* before anything is recorded */
                fprintf(stderr, "ablate: %s\n", err);
                rc = 2;
                break;
            }
            if (no_config) { /* a run without its config.json is not one the report can trust */
                snprintf(sm->status, sizeof sm->status, "failed");
                study_fmt(sm->reason, sizeof sm->reason, "cannot write %s/config.json", rdir);
            } else if (study_attempt(rdir, o->worker ? (long)getppid() : (long)getpid(), sm->reason, sizeof sm->reason))
                snprintf(sm->status, sizeof sm->status, "failed");
            else if (quiet_done && !o->worker) { /* workers ran this phase: never retrain a run that killed them here */
                snprintf(sm->status, sizeof sm->status, "failed");
                snprintf(sm->reason, sizeof sm->reason, "its worker process died (an out-of-memory abort or a crash: "
                                                        "see the messages above)");
            } else {
                study_die_at(o->die_at, "run-start", 0);
                if (per_run > 1) study_train_ranks(&r->cfg, rdir, per_run, o->worker_cuda, o, sm);
                else study_train(&r->cfg, rdir, gpu, 0, sm);
            }
            sm->identity = r->identity; /* study_train keeps the names only */
            study_fmt(path, sizeof path, "%s/attempts", rdir);
            remove(path);
            trained++;
            failures += strcmp(sm->status, "ok") != 0;
            b = (StrBuf){0};
            study_summary_json(&b, sm);
            sb_printf(&b, "\n");
            study_fmt(path, sizeof path, "%s/summary.json", rdir);
            if (study_write_text(path, &b)) { /* the run would be trained again by --resume: stop here */
                free(b.p);
                rc = STUDY_ERROR;
                break;
            }
            free(b.p);
            if (++summaries == o->kill_summary) kill(getpid(), SIGKILL);
            study_die_at(o->die_at, "after-summary", 0);
            if (!s->keep_checkpoints) study_prune_ckpts(rdir, 0);
            double el = train_now() - t0, per = el / trained;
            char eta[32], elapsed[32];
            study_fmt_time(eta, sizeof eta, per * (total - done));
            study_fmt_time(elapsed, sizeof elapsed, el);
            if (!o->quiet) {
                char q[64] = "-"; /* a failed run has no loss to show */
                if (strcmp(sm->status, "failed") && isfinite(sm->final_val_loss))
                    snprintf(q, sizeof q, "val %.4f ppl %7.2f  %7.0f tok/s", sm->final_val_loss, sm->final_val_ppl,
                             sm->tokens_per_s);
                printf("[%*d/%d] %-36s %-8s %-38s %5.1f s | elapsed %s, ETA %s\n", total >= 10 ? 2 : 1, done, total,
                       r->name, sm->status, q, train_now() - r0, elapsed, eta);
                if (strcmp(sm->status, "ok")) printf("        %s: %s\n", sm->status, sm->reason);
            }
        }
        if (rc) break;
        if (mine_only) break; /* a worker's share is done: the parent selects and reports */
        if (p + 1 < s->n_phases) {
            char best[STUDY_AXES_LEN];
            if (study_select(s, runs, sums, n, best, sizeof best, err, sizeof err)) {
                fprintf(stderr, "ablate: %s\n", err);
                rc = 1;
                break;
            }
            snprintf(carried, sizeof carried, "%s", best);
            if (!o->quiet) printf("phase %s: best %s\n", s->phases[p].name, best);
        }
    }
    free(all);
    free(runs);
    free(sums);
    if (rc == STUDY_ERROR || o->worker) return rc;
    if (!o->quiet) printf("\n");
    if (study_report(dir, o->quiet ? NULL : stdout)) return STUDY_ERROR;
    if (failures)
        fprintf(o->quiet ? stderr : stdout, "%d run%s did not finish ok (see their summary.json)\n", failures,
                failures == 1 ? "" : "s");
    return rc ? rc : failures ? STUDY_RUNS_FAILED : STUDY_OK;
}

/* ---- statistics over seeds ---- */
STUDYDEF StudyStat study_stat(const double *x, int n) {
    StudyStat s = {n, NAN, NAN, NAN, NAN};
    if (n < 1) return s;
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) sum += x[i];
    s.mean = sum / n;
    if (n < 2) return s;
    for (int i = 0; i < n; i++) sq += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = sqrt(sq / (n - 1));
    double h = study_t_quantile(0.975, n - 1) * s.sd / sqrt((double)n);
    s.ci_lo = s.mean - h;
    s.ci_hi = s.mean + h;
    return s;
}

/* the continued fraction of I_x(a, b) (evaluated bottom-up by Lentz's method): converges fast
   for x < (a + 1) / (a + b + 2); study_ibeta uses the symmetry I_x(a,b) = 1 - I_(1-x)(b,a) above */
static double study_betacf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double f = d;
    for (int m = 1; m <= 500; m++) {
        for (int odd = 0; odd < 2; odd++) { /* the even term m(b-m)x/..., then the odd -(a+m)(a+b+m)x/... */
            double num = odd ? -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1))
                             : m * (b - m) * x / ((a + 2.0 * m - 1) * (a + 2.0 * m));
            d = 1 + num * d;
            if (fabs(d) < tiny) d = tiny;
            c = 1 + num / c;
            if (fabs(c) < tiny) c = tiny;
            d = 1 / d;
            f *= d * c;
            if (odd && fabs(d * c - 1) < 1e-15) return f;
        }
    }
    return f; /* not converged in 500 terms: only for extreme a, b (df in the millions) */
}

STUDYDEF double study_ibeta(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || isnan(x)) return NAN;
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * study_betacf(a, b, x) / a;
    return 1 - front * study_betacf(b, a, 1 - x) / b;
}

STUDYDEF double study_t_p2(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return 0;
    return study_ibeta(df / 2, 0.5, df / (df + t * t)); /* P(|T| > |t|) */
}

STUDYDEF double study_t_quantile(double p, double df) {
    if (!(p > 0 && p < 1) || !(df > 0)) return NAN;
    if (p == 0.5) return 0;
    double tail = 2 * (p > 0.5 ? 1 - p : p); /* the two-sided tail at the answer */
    double lo = 0, hi = 1;
    while (study_t_p2(hi, df) > tail && hi < 1e300) { lo = hi; hi *= 2; }
    for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) { /* P(|T| > q) falls as q grows */
        double mid = 0.5 * (lo + hi);
        if (study_t_p2(mid, df) > tail) lo = mid;
        else hi = mid;
    }
    double q = 0.5 * (lo + hi);
    return p > 0.5 ? q : -q;
}

STUDYDEF double study_welch_p(const StudyStat *a, const StudyStat *b, double *t, double *df) {
    if (t) *t = NAN;
    if (df) *df = NAN;
    if (a->n < 2 || b->n < 2 || !isfinite(a->sd) || !isfinite(b->sd)) return NAN;
    double va = a->sd * a->sd / a->n, vb = b->sd * b->sd / b->n, diff = a->mean - b->mean;
    if (va + vb == 0) { /* no spread on either side: equal means or certainly different ones */
        if (t) *t = diff == 0 ? 0 : diff > 0 ? INFINITY : -INFINITY;
        if (df) *df = a->n + b->n - 2;
        return diff == 0 ? 1 : 0;
    }
    double tt = diff / sqrt(va + vb);
    double d = (va + vb) * (va + vb) / (va * va / (a->n - 1) + vb * vb / (b->n - 1)); /* Welch-Satterthwaite */
    if (t) *t = tt;
    if (df) *df = d;
    return study_t_p2(tt, d);
}

/* ---- report: table, results.json/csv, SVG plots ---- */
enum { STUDY_BEST, STUDY_SIGNIFICANT, STUDY_NOT_SIGNIFICANT, STUDY_UNTESTED, STUDY_NO_RESULT };
static const char *study_verdicts[] = {"best", "significant", "not significant", "untested", "no result"};

typedef struct {
    const char *id;
    int first, n, n_ok;
    StudyStat loss, bpb, tps;   /* final validation loss, bits per byte, tokens/s over the ok seeds */
    StudyStat acc;              /* synthetic tasks: final top-1 accuracy over the ok seeds */
    StudyStat mc;               /* eval_mc: multiple-choice accuracy over the ok seeds */
    StudyStat dec;              /* bench_decode: decode tokens/s over the ok seeds */
    double ppl;                 /* mean final validation perplexity */
    double peak, kv, params;    /* peak: the mean over the ok seeds that measured one (0: none did) */
    double diff, p, t, df;      /* against the best configuration: mean loss difference, Welch's test */
    int verdict;                /* STUDY_BEST ... */
} StudyGroup;

static int study_cmp_index(const void *a, const void *b) {
    const StudySummary *x = a, *y = b;
    return x->index != y->index ? (x->index > y->index) - (x->index < y->index) : strcmp(x->name, y->name);
}

static double get_loss(const StudySummary *s) { return s->final_val_loss; }
static double get_ppl(const StudySummary *s) { return s->final_val_ppl; }
static double get_tps(const StudySummary *s) { return s->tokens_per_s; }
static double get_bpb(const StudySummary *s) { return s->final_val_bpb; }
static double get_acc(const StudySummary *s) { return s->final_val_acc; }
static double get_mc(const StudySummary *s) { return s->final_mc_acc; }
static double get_dec(const StudySummary *s) { return s->decode_tokens_per_s; }
static double get_peak(const StudySummary *s) { return s->peak_bytes > 0 ? s->peak_bytes : NAN; }

/* the statistics of one value over a configuration's ok runs that have it */
static StudyStat study_group_stat(const StudySummary *s, int n, const char *id, double (*get)(const StudySummary *)) {
    double *x = malloc((n > 0 ? (size_t)n : 1) * sizeof *x);
    int k = 0;
    for (int i = 0; x && i < n; i++)
        if (!strcmp(s[i].config_id, id) && !strcmp(s[i].status, "ok") && isfinite(get(&s[i]))) x[k++] = get(&s[i]);
    StudyStat st = study_stat(x, k);
    free(x);
    return st;
}

/* --- SVG ---
   Text widths are estimated at 0.6 em a character (a sans-serif font averages less), and the
   canvas, margins, legends and point labels are laid out from that estimate so that no text
   is cut off or drawn over another (tests/test_plots.c checks the rendered files the same way).
   One colour per configuration, the same in every plot; past ten configurations the colours
   repeat with a dash pattern. */
static const char *study_colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
static const char *study_dashes[] = {"", "7 3", "2 2", "9 3 2 3"};

static const char *svg_color(int i) { return study_colors[i % 10]; }
static const char *svg_dash(int i) { return study_dashes[(i / 10) % 4]; }

enum { SVG_START, SVG_MIDDLE, SVG_END };
typedef struct { double x0, y0, x1, y1; } SvgBox;
typedef struct { double x0, x1, y0, y1; int left, top, w, h; int logx; /* x is log10: the caller labels it */ } SvgFrame;

static double svg_x(const SvgFrame *f, double x) { return f->left + (x - f->x0) / (f->x1 - f->x0) * f->w; }
static double svg_y(const SvgFrame *f, double y) { return f->top + f->h - (y - f->y0) / (f->y1 - f->y0) * f->h; }

static double svg_text_w(const char *s, double fs) {
    int chars = 0;
    for (; *s; s++) chars += ((unsigned char)*s & 0xC0) != 0x80; /* UTF-8: count lead bytes */
    return chars * fs * 0.6;
}

static int svg_hit(SvgBox a, SvgBox b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

static void svg_escape(StrBuf *b, const char *s) {
    for (; *s; s++)
        if (*s == '<') sb_printf(b, "&lt;");
        else if (*s == '>') sb_printf(b, "&gt;");
        else if (*s == '&') sb_printf(b, "&amp;");
        else sb_printf(b, "%c", *s);
}

/* <text>; attrs: more attributes (or "") */
static void svg_text(StrBuf *b, double x, double y, double fs, int anchor, const char *attrs, const char *s) {
    sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%g\"%s%s %s>", x, y, fs,
              anchor == SVG_START ? "" : " text-anchor=",
              anchor == SVG_START ? "" : anchor == SVG_MIDDLE ? "\"middle\"" : "\"end\"", attrs);
    svg_escape(b, s);
    sb_printf(b, "</text>\n");
}

/* the title (15 px) and a smaller line under it that says how to read the plot */
enum { SVG_TITLE_Y = 22, SVG_SUB_Y = 40 };
static double svg_head_w(const char *title, const char *sub) {
    double a = svg_text_w(title, 15), c = sub ? svg_text_w(sub, 11) : 0;
    return 24 + (a > c ? a : c);
}

static void svg_head(StrBuf *b, double W, double H, const char *title, const char *sub) {
    sb_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n",
              W, H, W, H, W, H);
    svg_text(b, 12, SVG_TITLE_Y, 15, SVG_START, "", title);
    if (sub) svg_text(b, 12, SVG_SUB_Y, 11, SVG_START, "fill=\"#444\"", sub);
}

/* a data range padded by 5% on each side (a flat one first widened by 5%, or by 1 at 0) */
static void svg_range(double *lo, double *hi) {
    if (!isfinite(*lo) || !isfinite(*hi)) { *lo = 0; *hi = 1; }
    if (!(*hi > *lo)) { double d = *lo ? fabs(*lo) * 0.05 : 1; *lo -= d; *hi += d; }
    double p = (*hi - *lo) * 0.05;
    *lo -= p;
    *hi += p;
}

static double svg_step(double range) {
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* the k-th tick label of [lo, hi]: 0 when there is none */
static int svg_tick(double lo, double hi, int k, double *t, char *label, size_t n) {
    double s = svg_step(hi - lo), v = (ceil(lo / s) + k) * s;
    if (v > hi) return 0;
    *t = v;
    snprintf(label, n, "%g", fabs(v) < s * 1e-6 ? 0 : v);
    return 1;
}

/* the widest y tick label: the left margin holds it and the axis title */
static double svg_ytick_w(double lo, double hi) {
    double t, w = 0;
    char l[40];
    for (int k = 0; svg_tick(lo, hi, k, &t, l, sizeof l); k++)
        if (svg_text_w(l, 12) > w) w = svg_text_w(l, 12);
    return w;
}
/* the left margin for a y axis of [lo, hi] (padded) with a rotated title */
static int svg_left(double lo, double hi) { return (int)ceil(svg_ytick_w(lo, hi)) + 36; }

/* the frame, grid, tick labels, the x title under it, the y title rotated at its left (yl NULL:
   none) and a panel title above it (panel NULL: none) */
static void svg_axes(StrBuf *b, const SvgFrame *f, const char *panel, const char *xl, const char *yl) {
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", f->left, f->top,
              f->w, f->h);
    double t;
    char l[40];
    for (int k = 0; !f->logx && svg_tick(f->x0, f->x1, k, &t, l, sizeof l); k++) {
        double X = svg_x(f, t);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n", X, f->top, X, f->top + f->h);
        svg_text(b, X, f->top + f->h + 18, 12, SVG_MIDDLE, "", l);
    }
    for (int k = 0; svg_tick(f->y0, f->y1, k, &t, l, sizeof l); k++) {
        double Y = svg_y(f, t);
        sb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", f->left, Y, f->left + f->w, Y);
        svg_text(b, f->left - 6, Y + 4, 12, SVG_END, "", l);
    }
    if (panel) svg_text(b, f->left, f->top - 8, 12, SVG_START, "font-weight=\"bold\"", panel);
    svg_text(b, f->left + f->w / 2.0, f->top + f->h + 38, 12, SVG_MIDDLE, "", xl);
    if (yl) {
        double x = f->left - 6 - svg_ytick_w(f->y0, f->y1) - 8, y = f->top + f->h / 2.0;
        char rot[64];
        snprintf(rot, sizeof rot, "transform=\"rotate(-90 %.1f %.1f)\"", x, y);
        svg_text(b, x, y, 12, SVG_MIDDLE, rot, yl);
    }
}

/* a configuration's name in the plots: its axes ("attn=gqa norm=pre") when they tell it apart
   from every other configuration, else its directory name */
static const char *study_group_name(const StudySummary *s, const StudyGroup *g, int ng, int i) {
    const char *a = s[g[i].first].axes;
    if (!a[0]) return g[i].id;
    for (int j = 0; j < ng; j++)
        if (j != i && !strcmp(a, s[g[j].first].axes)) return g[i].id;
    return a;
}

/* a configuration's curve: at each step that any of its ok runs logged, the mean, min and max
   over those runs of the training loss (val 0) or the validation loss (val 1) */
typedef struct { int step, n; double mean, lo, hi; } StudyPoint;

static int study_cmp_point(const void *a, const void *b) {
    const StudyPoint *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

static int study_curve(const StudySummary *s, const StudyRows *rows, int n, const char *id, int val, StudyPoint **out) {
    int cap = 0, k = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].config_id, id) && !strcmp(s[i].status, "ok")) cap += rows[i].n;
    StudyPoint *pts = malloc((cap ? (size_t)cap : 1) * sizeof *pts);
    for (int i = 0; pts && i < n; i++) {
        if (strcmp(s[i].config_id, id) || strcmp(s[i].status, "ok")) continue;
        for (int j = 0; j < rows[i].n; j++) {
            double v = val ? rows[i].r[j].val_loss : rows[i].r[j].loss;
            if (isfinite(v)) pts[k++] = (StudyPoint){rows[i].r[j].step, 1, v, v, v};
        }
    }
    if (!pts) { *out = NULL; return 0; }
    qsort(pts, k, sizeof *pts, study_cmp_point);
    int m = 0; /* merge the runs' values of one step: the sum in mean until the end */
    for (int i = 0; i < k; i++) {
        if (m && pts[m - 1].step == pts[i].step) {
            StudyPoint *q = &pts[m - 1];
            q->n++;
            q->mean += pts[i].mean;
            if (pts[i].lo < q->lo) q->lo = pts[i].lo;
            if (pts[i].hi > q->hi) q->hi = pts[i].hi;
        } else pts[m++] = pts[i];
    }
    for (int i = 0; i < m; i++) pts[i].mean /= pts[i].n;
    *out = pts;
    return m;
}

/* two panels, training and validation loss against the step: per configuration the mean over
   its seeds (a line; dots at the evaluations) and a band from the lowest to the highest of its
   seeds, and a legend beside them. The y axes leave out the first 10% of the steps, and the
   validation panel shows only the second half: the first steps' losses (about ln vocab) would
   flatten the differences that matter; the lines leave the frame at its top */
static void study_plot_loss(const char *dir, const StudySummary *s, int n, const StudyGroup *g, int ng) {
    StudyRows *rows = calloc(n, sizeof *rows);
    StudyPoint **curves = calloc(2 * (size_t)ng + 1, sizeof *curves);
    int *lens = calloc(2 * (size_t)ng + 1, sizeof *lens);
    if (!rows || !curves || !lens) { free(rows); free(curves); free(lens); return; }
    for (int i = 0; i < n; i++) {
        char p[4500];
        snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, s[i].name);
        int torn = study_rows_read(p, INT_MAX, &rows[i]);
        if (torn < 0) fprintf(stderr, "ablate report: %s: out of memory reading it: its curve is cut short\n", p);
        else if (torn)
            fprintf(stderr, "ablate report: %s: a torn line (cut short by a kill or a full disk) is left out%s\n", p,
                    strcmp(s[i].status, "ok") ? "" : " although the run says ok: its metrics are incomplete");
    }
    double x1 = 1;
    for (int c = 0; c < 2 * ng; c++) {
        lens[c] = study_curve(s, rows, n, g[c / 2].id, c % 2, &curves[c]);
        for (int k = 0; k < lens[c]; k++)
            if (curves[c][k].step > x1) x1 = curves[c][k].step;
    }
    /* the validation panel shows the second half of the steps, where the configurations part,
       when it holds 2 evaluations or more */
    double from[2] = {0.1 * x1, 0.5 * x1};
    int late = 0;
    for (int gi = 0; gi < ng; gi++)
        for (int k = 0; k < lens[2 * gi + 1]; k++) late += curves[2 * gi + 1][k].step >= from[1];
    if (late < 2 * ng) from[1] = 0.1 * x1;
    double y0[2] = {INFINITY, INFINITY}, y1[2] = {-INFINITY, -INFINITY};
    for (int pass = 0; pass < 2; pass++) /* pass 1: every step, when none is in the range */
        for (int c = 0; c < 2 * ng; c++)
            for (int k = 0; k < lens[c]; k++) {
                const StudyPoint *q = &curves[c][k];
                if (pass == 0 && q->step < from[c % 2]) continue;
                if (pass == 1 && isfinite(y0[c % 2])) continue;
                if (q->lo < y0[c % 2]) y0[c % 2] = q->lo;
                if (q->hi > y1[c % 2]) y1[c % 2] = q->hi;
            }
    int seeds = -1; /* the seeds of every configuration, when they agree; else -2 */
    for (int gi = 0; gi < ng; gi++) seeds = seeds == -1 || seeds == g[gi].n_ok ? g[gi].n_ok : -2;
    char sub[200];
    if (seeds >= 0)
        snprintf(sub, sizeof sub, "line: mean over %d seed%s (dots: evaluations); band: min-max over seeds; "
                 "the y axes fit the steps shown past the first 10%%", seeds, seeds == 1 ? "" : "s");
    else
        snprintf(sub, sizeof sub, "line: mean over the seeds in the legend (dots: evaluations); band: min-max over seeds; "
                 "the y axes fit the steps shown past the first 10%%");
    const int top = 70, pw = 340, ph = 300;
    SvgFrame f[2];
    int left = 0;
    for (int val = 0; val < 2; val++) {
        f[val] = (SvgFrame){0, x1, y0[val], y1[val], 0, top, pw, ph, 0};
        svg_range(&f[val].x0, &f[val].x1);
        f[val].x0 = from[val] > 0.1 * x1 ? from[val] : 0; /* no padding below the first step shown */
        svg_range(&f[val].y0, &f[val].y1);
        left += svg_left(f[val].y0, f[val].y1) - (val ? 10 : 0);
        f[val].left = left;
        left += pw;
    }
    /* the legend: a line sample and the name (with its seeds when they differ) */
    char (*names)[STUDY_AXES_LEN + 32] = calloc(ng ? (size_t)ng : 1, sizeof *names);
    double lw = 0, lx = left + 24;
    for (int gi = 0; names && gi < ng; gi++) {
        const char *nm = study_group_name(s, g, ng, gi);
        if (seeds >= 0) snprintf(names[gi], sizeof names[gi], "%s", nm);
        else snprintf(names[gi], sizeof names[gi], "%s (%d seed%s)", nm, g[gi].n_ok, g[gi].n_ok == 1 ? "" : "s");
        if (svg_text_w(names[gi], 12) > lw) lw = svg_text_w(names[gi], 12);
    }
    const char *title = "Training and validation loss";
    double W = lx + 30 + lw + 12, H = top + ph + 50;
    if (W < svg_head_w(title, sub)) W = svg_head_w(title, sub);
    if (H < top + 18.0 * ng + 4) H = top + 18.0 * ng + 4;
    StrBuf b = {0};
    svg_head(&b, ceil(W), ceil(H), title, sub);
    for (int val = 0; val < 2; val++) {
        const SvgFrame *fr = &f[val];
        svg_axes(&b, fr, !val ? "training loss" : fr->x0 > 0 ? "validation loss, second half of the steps" : "validation loss",
                 "step", val ? NULL : "loss (nats/token)");
        sb_printf(&b, "<clipPath id=\"frame%d\"><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></clipPath>\n"
                      "<g clip-path=\"url(#frame%d)\">\n", val, fr->left, fr->top, fr->w, fr->h, val);
        for (int gi = 0; gi < ng; gi++) { /* every band under every line */
            const StudyPoint *c = curves[2 * gi + val];
            int nc = lens[2 * gi + val];
            if (g[gi].n_ok < 2 || !nc) continue;
            sb_printf(&b, "<polygon class=\"band\" fill=\"%s\" fill-opacity=\"0.12\" stroke=\"none\" points=\"", svg_color(gi));
            for (int k = 0; k < nc; k++) sb_printf(&b, "%.1f,%.1f ", svg_x(fr, c[k].step), svg_y(fr, c[k].hi));
            for (int k = nc - 1; k >= 0; k--) sb_printf(&b, "%.1f,%.1f ", svg_x(fr, c[k].step), svg_y(fr, c[k].lo));
            sb_printf(&b, "\"/>\n");
        }
        for (int gi = 0; gi < ng; gi++) {
            const StudyPoint *c = curves[2 * gi + val];
            int nc = lens[2 * gi + val];
            if (!nc) continue;
            sb_printf(&b, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" "
                          "stroke-dasharray=\"%s\" points=\"", val ? "val" : "train", svg_color(gi), svg_dash(gi));
            for (int k = 0; k < nc; k++) sb_printf(&b, "%.1f,%.1f ", svg_x(fr, c[k].step), svg_y(fr, c[k].mean));
            sb_printf(&b, "\"/>\n");
            for (int k = 0; val && k < nc; k++)
                sb_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", svg_x(fr, c[k].step),
                          svg_y(fr, c[k].mean), svg_color(gi));
        }
        sb_printf(&b, "</g>\n");
    }
    for (int gi = 0; names && gi < ng; gi++) {
        double y = top + 10 + 18.0 * gi;
        sb_printf(&b, "<line class=\"legend\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"2\" stroke-dasharray=\"%s\"/>\n", lx, y - 4, lx + 24, y - 4, svg_color(gi), svg_dash(gi));
        svg_text(&b, lx + 30, y, 12, SVG_START, "", names[gi]);
    }
    sb_printf(&b, "</svg>\n");
    char p[4200];
    snprintf(p, sizeof p, "%s/loss.svg", dir);
    study_write_text(p, &b);
    free(b.p);
    free(names);
    for (int i = 0; i < n; i++) free(rows[i].r);
    for (int c = 0; c < 2 * ng; c++) free(curves[c]);
    free(rows);
    free(curves);
    free(lens);
}

/* where a point's label goes: the nearest place around (X, Y), inside the frame, that covers
   no label placed before (hard) and, if one is found near enough, no marker or error bar
   (soft). Candidates ring the point at growing distances, right and left first */
static SvgBox svg_place(const SvgFrame *f, double X, double Y, double w, double h, const SvgBox *hard, int nh,
                        const SvgBox *soft, int ns) {
    static const double dist[] = {5, 9, 14, 20, 28, 38, 50, 65, 85, 110, 140, 180, 230};
    static const double ang[] = {0, 180, 35, -35, 145, -145, 90, -90, 60, -60, 120, -120};
    const int nd = sizeof dist / sizeof *dist, na = sizeof ang / sizeof *ang;
    for (int pass = 0; pass < 2; pass++)
        for (int d = 0; d < nd; d++) {
            if (pass == 0 && dist[d] > 40) break; /* past this a label crosses a bar rather than stray */
            for (int a = 0; a < na; a++) {
                double c = cos(ang[a] * M_PI / 180), sn = sin(ang[a] * M_PI / 180);
                double cx = X + c * (dist[d] + w / 2), cy = Y - sn * (dist[d] + h / 2);
                SvgBox bx = {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2};
                if (bx.x0 < f->left + 2 || bx.x1 > f->left + f->w - 2 || bx.y0 < f->top + 2 || bx.y1 > f->top + f->h - 2)
                    continue;
                int bad = 0;
                for (int i = 0; i < nh && !bad; i++) bad = svg_hit(bx, hard[i]);
                for (int i = 0; pass == 0 && i < ns && !bad; i++) bad = svg_hit(bx, soft[i]);
                if (!bad) return bx;
            }
        }
    return (SvgBox){X - w / 2, Y - h / 2, X + w / 2, Y + h / 2}; /* nowhere free: on the point */
}

/* validation loss (mean over seeds, with +-1 sd bars over seeds) of each configuration against
   x (with +-1 sd bars when xsd is given), one numbered point per configuration and a key of the
   numbers beside the plot; the Pareto front (no other point is at least as good on both and
   better on one) outlined, and dashed when it has 2 points or more. more_x_better: throughput */
static void study_plot_pareto(const char *dir, const char *file, const char *title, const char *xl,
                              const StudySummary *s, const StudyGroup *g, int ng, const double *xs, const double *xsd,
                              int more_x_better) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    double *ex = calloc(ng ? (size_t)ng : 1, sizeof *ex), *ey = calloc(ng ? (size_t)ng : 1, sizeof *ey);
    int *ok = calloc(ng ? (size_t)ng : 1, sizeof *ok), *front = calloc(ng ? (size_t)ng : 1, sizeof *front), nf = 0;
    SvgBox *hard = calloc(ng ? (size_t)ng : 1, sizeof *hard), *soft = calloc(3 * (size_t)ng + 1, sizeof *soft);
    if (!ex || !ey || !ok || !front || !hard || !soft) goto done;
    for (int i = 0; i < ng; i++) {
        ok[i] = isfinite(xs[i]) && isfinite(g[i].loss.mean);
        if (!ok[i]) continue;
        ex[i] = xsd && isfinite(xsd[i]) ? xsd[i] : 0;
        ey[i] = isfinite(g[i].loss.sd) ? g[i].loss.sd : 0;
        if (xs[i] - ex[i] < x0) x0 = xs[i] - ex[i];
        if (xs[i] + ex[i] > x1) x1 = xs[i] + ex[i];
        if (g[i].loss.mean - ey[i] < y0) y0 = g[i].loss.mean - ey[i];
        if (g[i].loss.mean + ey[i] > y1) y1 = g[i].loss.mean + ey[i];
    }
    for (int i = 0; i < ng; i++) {
        if (!ok[i]) continue;
        int dominated = 0;
        for (int j = 0; j < ng && !dominated; j++) {
            if (j == i || !ok[j]) continue;
            double xi = more_x_better ? -xs[i] : xs[i], xj = more_x_better ? -xs[j] : xs[j];
            dominated = xj <= xi && g[j].loss.mean <= g[i].loss.mean && (xj < xi || g[j].loss.mean < g[i].loss.mean);
        }
        if (!dominated) front[nf++] = i;
    }
    for (int a = 1; a < nf; a++) /* by x, for the line */
        for (int c = a; c > 0 && xs[front[c]] < xs[front[c - 1]]; c--) { int t = front[c]; front[c] = front[c - 1]; front[c - 1] = t; }
    int any_x = 0;
    for (int i = 0; i < ng; i++) any_x |= ok[i] && ex[i] > 0;
    char full[200], sub[300];
    if (nf >= 2) snprintf(full, sizeof full, "%s (Pareto front dashed)", title);
    else snprintf(full, sizeof full, "%s", title);
    snprintf(sub, sizeof sub, "point: mean over seeds; bars: ±1 sd over seeds%s; %s", any_x ? " on both axes" : "",
             nf >= 2   ? "outlined: on the Pareto front (no configuration is better on both axes)"
             : nf == 1 ? "outlined: the best on both axes (the only point of the Pareto front)"
                       : "no configuration has a result");
    svg_range(&x0, &x1);
    svg_range(&y0, &y1);
    const int top = 56, pw = 520, ph = 340;
    SvgFrame f = {x0, x1, y0, y1, svg_left(y0, y1), top, pw, ph, 0};
    /* points at the same x (a KV cache size) set side by side, 10 px apart, so that their
       bars stay apart */
    double *dx = calloc(ng ? (size_t)ng : 1, sizeof *dx);
    int dodged = 0;
    for (int i = 0; dx && i < ng; i++) {
        int same = 0, rank = 0;
        for (int j = 0; ok[i] && j < ng; j++)
            if (ok[j] && xs[j] == xs[i]) { same++; rank += j < i; }
        if (same > 1) { dx[i] = (rank - (same - 1) / 2.0) * 10; dodged = 1; }
    }
    if (!dx) goto done;
    if (dodged && strlen(sub) + 40 < sizeof sub) strcat(sub, "; equal x side by side");
    /* the key: marker, number, name */
    double kx = f.left + pw + 24, kw = 0;
    char num[16];
    snprintf(num, sizeof num, "%d", ng);
    double nw = svg_text_w(num, 12); /* the numbers right-aligned in a column, the names after */
    for (int i = 0; i < ng; i++) {
        char t[STUDY_AXES_LEN + 40];
        snprintf(t, sizeof t, "%s%s", study_group_name(s, g, ng, i), ok[i] ? "" : " (no result)");
        if (svg_text_w(t, 12) > kw) kw = svg_text_w(t, 12);
    }
    double W = kx + 16 + nw + 6 + kw + 12, H = top + ph + 50;
    if (W < svg_head_w(full, sub)) W = svg_head_w(full, sub);
    if (H < top + 18.0 * ng + 4) H = top + 18.0 * ng + 4;
    StrBuf b = {0};
    svg_head(&b, ceil(W), ceil(H), full, sub);
    svg_axes(&b, &f, NULL, xl, "validation loss");
    for (int i = 0; i < ng; i++) { /* error bars, with caps */
        if (!ok[i]) continue;
        double X = svg_x(&f, xs[i]) + dx[i], Y = svg_y(&f, g[i].loss.mean);
        double ya = svg_y(&f, g[i].loss.mean + ey[i]), yb = svg_y(&f, g[i].loss.mean - ey[i]);
        double xa = svg_x(&f, xs[i] - ex[i]) + dx[i], xb = svg_x(&f, xs[i] + ex[i]) + dx[i];
        sb_printf(&b, "<g class=\"errbar\" stroke=\"%s\" stroke-width=\"1.3\">", svg_color(i));
        if (ey[i] > 0)
            sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                          "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                      X, ya, X, yb, X - 4, ya, X + 4, ya, X - 4, yb, X + 4, yb);
        if (ex[i] > 0)
            sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                          "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
                      xa, Y, xb, Y, xa, Y - 4, xa, Y + 4, xb, Y - 4, xb, Y + 4);
        sb_printf(&b, "</g>\n");
        soft[3 * i] = (SvgBox){X - 4, ya, X + 4, yb};
        soft[3 * i + 1] = (SvgBox){xa, Y - 4, xb, Y + 4};
        soft[3 * i + 2] = (SvgBox){X - 7, Y - 7, X + 7, Y + 7};
    }
    if (nf >= 2) {
        sb_printf(&b, "<polyline class=\"pareto\" fill=\"none\" stroke=\"#444\" stroke-dasharray=\"5 4\" points=\"");
        for (int k = 0; k < nf; k++)
            sb_printf(&b, "%.1f,%.1f ", svg_x(&f, xs[front[k]]) + dx[front[k]], svg_y(&f, g[front[k]].loss.mean));
        sb_printf(&b, "\"/>\n");
    }
    int nh = 0;
    for (int i = 0; i < ng; i++) {
        int on = 0;
        for (int k = 0; k < nf; k++) on |= front[k] == i;
        double ky = top + 10 + 18.0 * i;
        sb_printf(&b, "<circle class=\"key\" cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" stroke=\"#000\" stroke-width=\"%d\"/>\n",
                  kx + 5, ky - 4, svg_color(i), on ? 2 : 0);
        char t[STUDY_AXES_LEN + 40];
        snprintf(num, sizeof num, "%d", i + 1);
        svg_text(&b, kx + 16 + nw, ky, 12, SVG_END, "", num);
        snprintf(t, sizeof t, "%s%s", study_group_name(s, g, ng, i), ok[i] ? "" : " (no result)");
        svg_text(&b, kx + 16 + nw + 6, ky, 12, SVG_START, "", t);
        if (!ok[i]) continue;
        double X = svg_x(&f, xs[i]) + dx[i], Y = svg_y(&f, g[i].loss.mean);
        sb_printf(&b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" stroke=\"#000\" stroke-width=\"%d\"/>\n",
                  X, Y, on ? 6 : 5, svg_color(i), on ? 2 : 0);
    }
    for (int i = 0; i < ng; i++) { /* labels last: over every marker and bar */
        if (!ok[i]) continue;
        double X = svg_x(&f, xs[i]) + dx[i], Y = svg_y(&f, g[i].loss.mean);
        snprintf(num, sizeof num, "%d", i + 1);
        double w = svg_text_w(num, 11), h = 11;
        SvgBox bx = svg_place(&f, X, Y, w, h, hard, nh, soft, 3 * ng);
        hard[nh++] = bx;
        double cx = (bx.x0 + bx.x1) / 2, cy = (bx.y0 + bx.y1) / 2;
        if (hypot(cx - X, cy - Y) > 9 + w) { /* displaced: a leader line to the nearest point of its box */
            double lx = X < bx.x0 ? bx.x0 : X > bx.x1 ? bx.x1 : X, ly = Y < bx.y0 ? bx.y0 : Y > bx.y1 ? bx.y1 : Y;
            double d = hypot(lx - X, ly - Y); /* from the marker's edge */
            sb_printf(&b, "<line class=\"leader\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
                          "stroke-width=\"0.8\"/>\n", X + (lx - X) * 6 / d, Y + (ly - Y) * 6 / d, lx, ly);
        }
        svg_text(&b, cx, cy + 0.3 * h, 11, SVG_MIDDLE, "class=\"label\" font-weight=\"bold\"", num);
    }
    sb_printf(&b, "</svg>\n");
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    study_write_text(p, &b);
    free(b.p);
    free(dx);
done:
    free(ex);
    free(ey);
    free(ok);
    free(front);
    free(hard);
    free(soft);
}

/* ---- the learning-rate view: a study whose configurations differ in lr ----
   A configuration's lr is the "lr=V" item of its axes; the rest of its axes name its family
   (the configuration the lr sweep is about). study_lr_view prints each family's best lr (the
   lowest mean final validation loss) and draws lr.svg: validation loss against lr on a log
   axis, one line per family through the means over seeds, with ±1 sd bars, the best lr of
   each ringed. Nothing when no configuration has an lr axis value. */
typedef struct { char family[STUDY_AXES_LEN]; int n, best; int g[64]; double lr[64]; } StudyLrFamily;

/* the lr in axes (NAN: none) and the axes without it in family */
static double study_axes_lr(const char *axes, char *family, size_t fn) {
    double lr = NAN;
    size_t fl = 0;
    family[0] = 0;
    for (const char *p = axes; *p;) {
        while (*p == ' ') p++;
        const char *e = p;
        int quoted = 0;
        while (*e && (quoted || *e != ' ')) { if (*e == '"') quoted = !quoted; e++; }
        if (e == p) break;
        if (!strncmp(p, "lr=", 3)) lr = strtod(p + 3, NULL);
        else if (fl + (size_t)(e - p) + 2 < fn) fl += snprintf(family + fl, fn - fl, "%s%.*s", fl ? " " : "", (int)(e - p), p);
        p = e;
    }
    if (!family[0]) snprintf(family, fn, "(one configuration)");
    return lr;
}

/* the lr a run trained with, from its config.json in dir (NAN: unreadable) */
static double study_run_lr(const char *dir, const char *name) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
    char *t = study_read_all(path, NULL);
    double lr = t ? study_json_num(t, "lr") : NAN;
    free(t);
    return lr;
}

/* families with their configurations sorted by lr; returns how many (0: no lr axis). A
   configuration without an lr axis value joins the family of its axes at the lr it trained
   with (its config.json in dir): a phase's lr sweep whose value equals an earlier phase's run
   (the same configuration, not trained twice) keeps that point. Families with one lr are
   dropped: a single lr is no sweep */
static int study_lr_families(const char *dir, const StudySummary *s, const StudyGroup *g, int ng, StudyLrFamily *fam,
                             int maxf) {
    int nf = 0, any = 0;
    for (int i = 0; i < ng; i++) {
        char family[STUDY_AXES_LEN];
        any |= study_axes_lr(s[g[i].first].axes, family, sizeof family) > 0;
    }
    if (!any) return 0;
    for (int i = 0; i < ng; i++) {
        char family[STUDY_AXES_LEN];
        double lr = study_axes_lr(s[g[i].first].axes, family, sizeof family);
        if (!(lr > 0)) lr = study_run_lr(dir, s[g[i].first].name);
        if (!(lr > 0)) continue;
        int f = 0;
        while (f < nf && strcmp(fam[f].family, family)) f++;
        if (f == nf) {
            if (nf == maxf) continue;
            memset(&fam[nf], 0, sizeof fam[nf]);
            snprintf(fam[nf].family, sizeof fam[nf].family, "%s", family);
            fam[nf++].best = -1;
        }
        StudyLrFamily *F = &fam[f];
        if (F->n == 64) continue;
        int k = F->n++;
        for (; k > 0 && F->lr[k - 1] > lr; k--) { F->lr[k] = F->lr[k - 1]; F->g[k] = F->g[k - 1]; }
        F->lr[k] = lr;
        F->g[k] = i;
    }
    int kept = 0;
    for (int f = 0; f < nf; f++)
        if (fam[f].n >= 2) {
            if (kept != f) fam[kept] = fam[f];
            kept++;
        }
    nf = kept;
    for (int f = 0; f < nf; f++)
        for (int k = 0; k < fam[f].n; k++) {
            const StudyGroup *q = &g[fam[f].g[k]];
            if (isfinite(q->loss.mean) && (fam[f].best < 0 || q->loss.mean < g[fam[f].g[fam[f].best]].loss.mean))
                fam[f].best = k;
        }
    return nf;
}

static void study_lr_view(const char *dir, FILE *out, const StudySummary *s, const StudyGroup *g, int ng) {
    enum { MAXF = 32 };
    StudyLrFamily *fam = calloc(MAXF, sizeof *fam);
    int nf = fam ? study_lr_families(dir, s, g, ng, fam, MAXF) : 0;
    if (!nf) { free(fam); return; }
    if (out) {
        fprintf(out, "best lr per configuration (lowest mean final val loss; lr.svg plots them all):\n");
        for (int f = 0; f < nf; f++) {
            const StudyLrFamily *F = &fam[f];
            if (F->best < 0) { fprintf(out, "  %s: no result\n", F->family); continue; }
            const StudyGroup *q = &g[F->g[F->best]];
            fprintf(out, "  %s: lr %g (val loss %.4f over %d seed%s; tried", F->family, F->lr[F->best], q->loss.mean,
                    q->loss.n, q->loss.n == 1 ? "" : "s");
            for (int k = 0; k < F->n; k++) fprintf(out, " %g", F->lr[k]);
            fprintf(out, ")%s\n", F->best == 0 || F->best == F->n - 1 ? " - at the edge of the sweep" : "");
        }
    }
    /* the frame: x = log10(lr) */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int f = 0; f < nf; f++)
        for (int k = 0; k < fam[f].n; k++) {
            const StudyGroup *q = &g[fam[f].g[k]];
            double lx = log10(fam[f].lr[k]), sd = isfinite(q->loss.sd) ? q->loss.sd : 0;
            if (lx < x0) x0 = lx;
            if (lx > x1) x1 = lx;
            if (!isfinite(q->loss.mean)) continue;
            if (q->loss.mean - sd < y0) y0 = q->loss.mean - sd;
            if (q->loss.mean + sd > y1) y1 = q->loss.mean + sd;
        }
    if (!(y0 <= y1)) { y0 = 0; y1 = 1; }
    double pad = x1 > x0 ? (x1 - x0) * 0.06 : 0.5;
    x0 -= pad;
    x1 += pad;
    svg_range(&y0, &y1);
    const char *title = "Validation loss vs learning rate", *sub = "line: one configuration; point: mean over seeds, bars ±1 sd; ringed: its best lr";
    const int top = 56, pw = 520, ph = 340;
    SvgFrame fr = {x0, x1, y0, y1, svg_left(y0, y1), top, pw, ph, 1};
    double kx = fr.left + pw + 24, kw = 0;
    for (int f = 0; f < nf; f++)
        if (svg_text_w(fam[f].family, 12) > kw) kw = svg_text_w(fam[f].family, 12);
    double W = kx + 30 + kw + 12, H = top + ph + 50;
    if (W < svg_head_w(title, sub)) W = svg_head_w(title, sub);
    if (H < top + 18.0 * nf + 4) H = top + 18.0 * nf + 4;
    StrBuf b = {0};
    svg_head(&b, ceil(W), ceil(H), title, sub);
    /* the frame and y axis from svg_axes; x ticks here: decades and their 2 and 5 multiples */
    fr.logx = 1;
    svg_axes(&b, &fr, NULL, "learning rate (log scale)", "final validation loss");
    for (int e = (int)floor(x0); e <= (int)ceil(x1); e++)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            double t = e + log10((double)m);
            if (t < x0 || t > x1) continue;
            double X = svg_x(&fr, t);
            char l[32];
            snprintf(l, sizeof l, "%g", m * pow(10, e));
            sb_printf(&b, "<line class=\"xtick\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n", X, fr.top,
                      X, fr.top + fr.h);
            svg_text(&b, X, fr.top + fr.h + 18, 12, SVG_MIDDLE, "class=\"xlabel\"", l);
        }
    for (int f = 0; f < nf; f++) {
        const StudyLrFamily *F = &fam[f];
        sb_printf(&b, "<polyline class=\"lrline\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" stroke-dasharray=\"%s\" points=\"",
                  svg_color(f), svg_dash(f));
        for (int k = 0; k < F->n; k++)
            if (isfinite(g[F->g[k]].loss.mean))
                sb_printf(&b, "%.1f,%.1f ", svg_x(&fr, log10(F->lr[k])), svg_y(&fr, g[F->g[k]].loss.mean));
        sb_printf(&b, "\"/>\n");
        for (int k = 0; k < F->n; k++) {
            const StudyGroup *q = &g[F->g[k]];
            if (!isfinite(q->loss.mean)) continue;
            double X = svg_x(&fr, log10(F->lr[k])), Y = svg_y(&fr, q->loss.mean);
            if (isfinite(q->loss.sd) && q->loss.sd > 0) {
                double ya = svg_y(&fr, q->loss.mean + q->loss.sd), yb = svg_y(&fr, q->loss.mean - q->loss.sd);
                sb_printf(&b, "<line class=\"errbar\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", X, ya,
                          X, yb, svg_color(f));
            }
            sb_printf(&b, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" stroke=\"#000\" stroke-width=\"%d\"/>\n",
                      k == F->best ? "best" : "point", X, Y, k == F->best ? 6 : 4, svg_color(f), k == F->best ? 2 : 0);
        }
        double ky = top + 10 + 18.0 * f;
        sb_printf(&b, "<line class=\"key\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" "
                      "stroke-dasharray=\"%s\"/>\n", kx, ky - 4, kx + 22, ky - 4, svg_color(f), svg_dash(f));
        svg_text(&b, kx + 30, ky, 12, SVG_START, "", F->family);
    }
    sb_printf(&b, "</svg>\n");
    char p[4200];
    snprintf(p, sizeof p, "%s/lr.svg", dir);
    study_write_text(p, &b);
    free(b.p);
    free(fam);
}

/* a configuration's statistics as a JSON object (results.json's "configs") */
static void study_stat_json(StrBuf *b, const char *name, const StudyStat *st) {
    char k[64];
    snprintf(k, sizeof k, "%s_mean", name); sb_num(b, k, st->mean, 0);
    snprintf(k, sizeof k, "%s_sd", name); sb_num(b, k, st->sd, 0);
    snprintf(k, sizeof k, "%s_ci95_lo", name); sb_num(b, k, st->ci_lo, 0);
    snprintf(k, sizeof k, "%s_ci95_hi", name); sb_num(b, k, st->ci_hi, 0);
}

static void study_group_json(StrBuf *b, const StudyGroup *g, const StudySummary *first) {
    sb_printf(b, "{");
    sb_str(b, "config", g->id, 0);
    sb_str(b, "phase", first->phase, 0);
    sb_str(b, "axes", first->axes, 0);
    sb_printf(b, "\"runs\": %d, \"runs_ok\": %d, ", g->n, g->n_ok);
    study_stat_json(b, "val_loss", &g->loss);
    study_stat_json(b, "val_bpb", &g->bpb);
    study_stat_json(b, "val_acc", &g->acc);
    study_stat_json(b, "mc_acc", &g->mc);
    sb_num(b, "val_ppl_mean", g->ppl, 0);
    sb_str(b, "vs_best", study_verdicts[g->verdict], 0);
    sb_num(b, "val_loss_diff_vs_best", g->diff, 0);
    sb_num(b, "welch_t", g->t, 0);
    sb_num(b, "welch_df", g->df, 0);
    sb_num(b, "welch_p", g->p, 0);
    sb_num(b, "tokens_per_s_mean", g->tps.mean, 0);
    sb_num(b, "tokens_per_s_sd", g->tps.sd, 0);
    sb_num(b, "peak_bytes", g->peak > 0 ? g->peak : NAN, 0); /* null: not measured */
    sb_num(b, "params_total", g->params, 0);
    sb_num(b, "kv_bytes_per_token", g->kv, 1);
    sb_printf(b, "}");
}

/* a number for the CSV: empty when not finite */
static void study_csv_num(StrBuf *b, double v, const char *fmt) {
    if (isfinite(v)) sb_printf(b, fmt, v);
    sb_printf(b, ",");
}

/* s in a column of width characters (not bytes: "±" is two), right- or left-aligned */
static void study_col(FILE *f, const char *s, int width, int left) {
    int chars = 0;
    for (const char *c = s; *c; c++) chars += ((unsigned char)*c & 0xC0) != 0x80;
    if (left) fprintf(f, "%s", s);
    for (int i = chars; i < width; i++) fputc(' ', f);
    if (!left && chars >= width) fputc(' ', f); /* a value wider than its column still stands apart */
    if (!left) fprintf(f, "%s", s);
}

/* "1.2345 ± 0.0123" or "1.2345 ± -" (one seed) */
static void study_pm(char *out, size_t n, const StudyStat *st, int prec) {
    if (isfinite(st->sd)) snprintf(out, n, "%.*f ± %.*f", prec, st->mean, prec, st->sd);
    else snprintf(out, n, "%.*f ± -", prec, st->mean);
}

STUDYDEF int study_report(const char *dir, FILE *out) {
    DIR *d = opendir(dir);
    if (!d) { fprintf(stderr, "ablate report: cannot open directory %s\n", dir); return -1; }
    int n = 0, cap = 16;
    StudySummary *s = malloc(cap * sizeof *s);
    struct dirent *e;
    while (s && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4500];
        snprintf(p, sizeof p, "%s/%s/summary.json", dir, e->d_name);
        if (n == cap) {
            StudySummary *ns = realloc(s, (cap *= 2) * sizeof *s);
            if (!ns) { free(s); s = NULL; break; }
            s = ns;
        }
        if (study_summary_read(p, &s[n]) == 0) {
            study_fmt(s[n].name, sizeof s[n].name, "%s", e->d_name); /* the directory is the run */
            n++;
        }
    }
    closedir(d);
    if (!s) { fprintf(stderr, "ablate report: out of memory\n"); return -1; }
    if (!n) {
        fprintf(stderr, "ablate report: no finished runs (DIR/RUN/summary.json) in %s\n", dir);
        free(s);
        return -1;
    }
    qsort(s, n, sizeof *s, study_cmp_index);
    /* configurations in run order, their statistics over ok seeds */
    StudyGroup *g = calloc(n, sizeof *g);
    int ng = 0;
    for (int i = 0; g && i < n; i++) {
        int k = 0;
        while (k < ng && strcmp(g[k].id, s[i].config_id)) k++;
        if (k == ng) { g[ng].id = s[i].config_id; g[ng].first = i; ng++; }
        g[k].n++;
        g[k].n_ok += !strcmp(s[i].status, "ok");
    }
    if (!g) { free(s); fprintf(stderr, "ablate report: out of memory\n"); return -1; }
    int best = -1, any_bpb = 0, any_acc = 0, any_mc = 0, any_dec = 0, any_peak = 0, max_seeds = 0;
    for (int k = 0; k < ng; k++) {
        g[k].loss = study_group_stat(s, n, g[k].id, get_loss);
        g[k].bpb = study_group_stat(s, n, g[k].id, get_bpb);
        g[k].acc = study_group_stat(s, n, g[k].id, get_acc);
        g[k].mc = study_group_stat(s, n, g[k].id, get_mc);
        g[k].dec = study_group_stat(s, n, g[k].id, get_dec);
        g[k].tps = study_group_stat(s, n, g[k].id, get_tps);
        g[k].ppl = study_group_stat(s, n, g[k].id, get_ppl).mean;
        const StudySummary *f = &s[g[k].first];
        g[k].kv = f->kv_bytes_per_token;
        g[k].params = f->params_total;
        StudyStat pk = study_group_stat(s, n, g[k].id, get_peak);
        g[k].peak = pk.n ? pk.mean : 0;
        any_bpb |= g[k].bpb.n > 0;
        any_acc |= g[k].acc.n > 0;
        any_mc |= g[k].mc.n > 0;
        any_dec |= g[k].dec.n > 0;
        any_peak |= g[k].peak > 0;
        if (g[k].loss.n > max_seeds) max_seeds = g[k].loss.n;
        if (g[k].loss.n && (best < 0 || g[k].loss.mean < g[best].loss.mean)) best = k;
    }
    /* every configuration against the best (lowest mean final validation loss): Welch's t-test */
    int n_tested = 0, n_within = 0;
    for (int k = 0; k < ng; k++) {
        StudyGroup *q = &g[k];
        q->diff = q->p = q->t = q->df = NAN;
        if (!q->loss.n) { q->verdict = STUDY_NO_RESULT; continue; }
        if (k == best) { q->verdict = STUDY_BEST; q->diff = 0; continue; }
        q->diff = q->loss.mean - g[best].loss.mean;
        q->p = study_welch_p(&q->loss, &g[best].loss, &q->t, &q->df);
        if (isnan(q->p)) { q->verdict = STUDY_UNTESTED; continue; }
        n_tested++;
        q->verdict = q->p < 0.05 ? STUDY_SIGNIFICANT : STUDY_NOT_SIGNIFICANT;
        n_within += q->verdict == STUDY_NOT_SIGNIFICANT;
    }
    /* results.json: {"configs": [...], "runs": [...]}; results.csv a row per configuration;
       runs.csv a row per run */
    StrBuf j = {0}, c = {0}, r = {0};
    sb_printf(&j, "{\"configs\": [\n");
    for (int k = 0; k < ng; k++) {
        sb_printf(&j, "  ");
        study_group_json(&j, &g[k], &s[g[k].first]);
        sb_printf(&j, "%s\n", k + 1 < ng ? "," : "");
    }
    sb_printf(&j, "],\n\"runs\": [\n");
    /* a synthetic task's accuracy columns only where a run has one: a text study's files keep their columns */
    sb_printf(&c, "config,phase,axes,runs,runs_ok,val_loss_mean,val_loss_sd,val_loss_ci95_lo,val_loss_ci95_hi,vs_best,"
                  "val_loss_diff_vs_best,welch_p,val_bpb_mean,val_bpb_sd,val_bpb_ci95_lo,val_bpb_ci95_hi,%sval_ppl_mean,"
                  "tokens_per_s_mean,tokens_per_s_sd,peak_bytes,params_total,kv_bytes_per_token%s\n",
              any_acc ? "val_acc_mean,val_acc_sd,val_acc_ci95_lo,val_acc_ci95_hi," : "",
              any_mc ? ",mc_acc_mean,mc_acc_sd" : "");
    for (int k = 0; k < ng; k++) {
        const StudyGroup *q = &g[k];
        char axes[STUDY_AXES_LEN];
        snprintf(axes, sizeof axes, "%s", s[q->first].axes);
        for (char *a = axes; *a; a++) if (*a == '"') *a = '\''; /* CSV quoting: no inner quotes */
        sb_printf(&c, "%s,%s,\"%s\",%d,%d,", q->id, s[q->first].phase, axes, q->n, q->n_ok);
        const StudyStat *st[3] = {&q->loss, &q->bpb, &q->acc};
        for (int m = 0; m < 2 + any_acc; m++) {
            study_csv_num(&c, st[m]->mean, "%.9g");
            study_csv_num(&c, st[m]->sd, "%.9g");
            study_csv_num(&c, st[m]->ci_lo, "%.9g");
            study_csv_num(&c, st[m]->ci_hi, "%.9g");
            if (m == 0) {
                sb_printf(&c, "%s,", study_verdicts[q->verdict]);
                study_csv_num(&c, q->diff, "%.9g");
                study_csv_num(&c, q->p, "%.6g");
            }
        }
        study_csv_num(&c, q->ppl, "%.9g");
        study_csv_num(&c, q->tps.mean, "%.6g");
        study_csv_num(&c, q->tps.sd, "%.6g");
        study_csv_num(&c, q->peak > 0 ? q->peak : NAN, "%.0f");
        study_csv_num(&c, q->params, "%.0f");
        if (isfinite(q->kv)) sb_printf(&c, "%.0f", q->kv);
        if (any_mc) {
            sb_printf(&c, ",");
            study_csv_num(&c, q->mc.mean, "%.9g");
            if (isfinite(q->mc.sd)) sb_printf(&c, "%.9g", q->mc.sd);
        }
        sb_printf(&c, "\n");
    }
    sb_printf(&r, "run,config,phase,axes,identity,seed,status,steps_done,tokens,final_loss,final_val_loss,final_val_ppl,"
                  "best_val_loss,best_val_ppl,final_val_bpb,best_val_bpb,%sfinal_val_tokens,final_val_se,tokens_per_s,"
                  "peak_bytes,params_total,params_attention,params_ffn,params_embedding,params_norms,"
                  "kv_bytes_per_token,grad_norm_mean,grad_norm_max,smoothness,train_seconds,wall_seconds,reason%s\n",
              any_acc ? "final_val_acc," : "", any_mc ? ",final_mc_acc,final_mc_se" : "");
    for (int i = 0; i < n; i++) {
        const StudySummary *x = &s[i];
        sb_printf(&j, "  ");
        study_summary_json(&j, x);
        sb_printf(&j, "%s\n", i + 1 < n ? "," : "");
        char reason[256], axes[STUDY_AXES_LEN];
        snprintf(reason, sizeof reason, "%s", x->reason);
        snprintf(axes, sizeof axes, "%s", x->axes);
        for (char *q = reason; *q; q++) if (*q == '"') *q = '\'';
        for (char *q = axes; *q; q++) if (*q == '"') *q = '\'';
        sb_printf(&r, "%s,%s,%s,\"%s\",%016llx,%llu,%s,%d,%.0f,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,",
                  x->name, x->config_id, x->phase, axes, (unsigned long long)x->identity, (unsigned long long)x->seed,
                  x->status, x->steps_done, x->tokens, x->final_loss, x->final_val_loss, x->final_val_ppl,
                  x->best_val_loss, x->best_val_ppl, x->final_val_bpb, x->best_val_bpb);
        if (any_acc) study_csv_num(&r, x->final_val_acc, "%.9g");
        sb_printf(&r, "%.0f,%.9g,%.6g,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.6g,%.6g,%.6g,%.3f,%.3f,\"%s\"\n", x->final_val_tokens,
                  x->final_val_se, x->tokens_per_s, x->peak_bytes, x->params_total, x->params_attention, x->params_ffn,
                  x->params_embedding, x->params_norms, x->kv_bytes_per_token, x->grad_norm_mean, x->grad_norm_max,
                  x->smoothness, x->train_seconds, x->wall_seconds, reason);
        if (any_mc) { /* after the line's reason: replace its newline */
            if (r.n && r.p && r.p[r.n - 1] == '\n') r.n--;
            sb_printf(&r, ",");
            study_csv_num(&r, x->final_mc_acc, "%.9g");
            if (isfinite(x->final_mc_se)) sb_printf(&r, "%.9g", x->final_mc_se);
            sb_printf(&r, "\n");
        }
    }
    sb_printf(&j, "]}\n");
    char p[4200];
    int bad = 0;
    snprintf(p, sizeof p, "%s/results.json", dir);
    bad |= study_write_text(p, &j);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    bad |= study_write_text(p, &c);
    snprintf(p, sizeof p, "%s/runs.csv", dir);
    bad |= study_write_text(p, &r);
    free(j.p);
    free(c.p);
    free(r.p);
    /* the table */
    if (out) {
        study_col(out, "configuration", 34, 1);
        study_col(out, "runs", 6, 0);
        study_col(out, "val loss (mean ± sd)", 21, 0);
        study_col(out, "95% CI", 19, 0);
        study_col(out, "  vs best (Welch)", 24, 1);
        if (any_acc) study_col(out, "val acc (mean ± sd)", 20, 0);
        if (any_mc) study_col(out, "mc acc (mean ± sd)", 20, 0);
        if (any_bpb) study_col(out, "val bpb", 18, 0);
        study_col(out, "val ppl", 10, 0);
        study_col(out, "tok/s", 18, 0);
        study_col(out, "peak MB", 9, 0);
        study_col(out, "params", 11, 0);
        study_col(out, "KV B/tok", 9, 0);
        if (any_dec) study_col(out, "decode tok/s", 14, 0);
        fputc('\n', out);
        for (int k = 0; k < ng; k++) {
            const StudyGroup *q = &g[k];
            char runs[32], col[96];
            if (q->n_ok == q->n) snprintf(runs, sizeof runs, "%d", q->n);
            else snprintf(runs, sizeof runs, "%d/%d ok", q->n_ok, q->n);
            study_col(out, q->id, 34, 1);
            study_col(out, runs, 6, 0);
            if (!q->loss.n) { /* nothing to average: say why instead */
                const StudySummary *f = &s[q->first];
                fprintf(out, "  (%s: %s)\n", f->status, q->n_ok ? "no finite val loss" : f->reason);
                continue;
            }
            study_pm(col, sizeof col, &q->loss, 4);
            study_col(out, col, 21, 0);
            if (isfinite(q->loss.ci_lo)) snprintf(col, sizeof col, "[%.4f, %.4f]", q->loss.ci_lo, q->loss.ci_hi);
            else snprintf(col, sizeof col, "n/a (1 seed)");
            study_col(out, col, 19, 0);
            if (q->verdict == STUDY_BEST) snprintf(col, sizeof col, "  best");
            else if (q->verdict == STUDY_UNTESTED) snprintf(col, sizeof col, "  %+.4f untested", q->diff);
            else snprintf(col, sizeof col, "  %+.4f p=%.3f %s", q->diff, q->p, q->verdict == STUDY_SIGNIFICANT ? "sig" : "n.s.");
            study_col(out, col, 24, 1);
            if (any_acc) {
                if (q->acc.n) study_pm(col, sizeof col, &q->acc, 4);
                else snprintf(col, sizeof col, "-");
                study_col(out, col, 20, 0);
            }
            if (any_mc) {
                if (q->mc.n) study_pm(col, sizeof col, &q->mc, 4);
                else snprintf(col, sizeof col, "-");
                study_col(out, col, 20, 0);
            }
            if (any_bpb) {
                if (q->bpb.n) study_pm(col, sizeof col, &q->bpb, 4);
                else snprintf(col, sizeof col, "-");
                study_col(out, col, 18, 0);
            }
            snprintf(col, sizeof col, "%.2f", q->ppl);
            study_col(out, col, 10, 0);
            if (isfinite(q->tps.sd)) snprintf(col, sizeof col, "%.0f ± %.0f", q->tps.mean, q->tps.sd);
            else snprintf(col, sizeof col, "%.0f", q->tps.mean);
            study_col(out, col, 18, 0);
            if (q->peak > 0) snprintf(col, sizeof col, "%.1f", q->peak / 1048576.0);
            else snprintf(col, sizeof col, "-"); /* not measured */
            study_col(out, col, 9, 0);
            snprintf(col, sizeof col, "%.0f", q->params);
            study_col(out, col, 11, 0);
            snprintf(col, sizeof col, "%.0f", q->kv);
            study_col(out, col, 9, 0);
            if (any_dec) {
                if (q->dec.n) snprintf(col, sizeof col, "%.0f", q->dec.mean);
                else snprintf(col, sizeof col, "-");
                study_col(out, col, 14, 0);
            }
            fputc('\n', out);
        }
        if (best >= 0) {
            const StudyGroup *q = &g[best];
            fprintf(out, "best by loss:       %s (mean val loss %.4f over %d seed%s", q->id, q->loss.mean, q->loss.n,
                    q->loss.n == 1 ? "" : "s");
            if (n_tested) fprintf(out, "; %d of the %d configurations tested against it %s not significantly worse",
                                  n_within, n_tested, n_within == 1 ? "is" : "are");
            fprintf(out, ")\n");
            /* a lucky seed of another configuration is worth naming, never crowning */
            int lo = -1;
            for (int i = 0; i < n; i++)
                if (!strcmp(s[i].status, "ok") && isfinite(s[i].final_val_loss) &&
                    (lo < 0 || s[i].final_val_loss < s[lo].final_val_loss))
                    lo = i;
            if (lo >= 0 && strcmp(s[lo].config_id, q->id))
                fprintf(out, "lowest single run:  %s (val loss %.4f; its configuration's mean is %.4f)\n", s[lo].name,
                        s[lo].final_val_loss, study_group_stat(s, n, s[lo].config_id, get_loss).mean);
        }
        int bt = -1, bm = -1, ba = -1;
        for (int k = 0; k < ng; k++) {
            if (!g[k].n_ok) continue;
            if (g[k].acc.n && (ba < 0 || g[k].acc.mean > g[ba].acc.mean)) ba = k;
            if (isfinite(g[k].tps.mean) && (bt < 0 || g[k].tps.mean > g[bt].tps.mean)) bt = k;
            /* memory: the mean peak memory where measured, else KV-cache bytes per token */
            if (any_peak ? g[k].peak > 0 && (bm < 0 || g[k].peak < g[bm].peak ||
                                             (g[k].peak == g[bm].peak && g[k].kv < g[bm].kv))
                         : isfinite(g[k].kv) && (bm < 0 || g[k].kv < g[bm].kv))
                bm = k;
        }
        if (ba >= 0)
            fprintf(out, "best by accuracy:   %s (mean val acc %.4f over %d seed%s)\n", g[ba].id, g[ba].acc.mean,
                    g[ba].acc.n, g[ba].acc.n == 1 ? "" : "s");
        if (bt >= 0)
            fprintf(out, "best by throughput: %s (mean %.0f tok/s over %d seed%s)\n", g[bt].id, g[bt].tps.mean,
                    g[bt].tps.n, g[bt].tps.n == 1 ? "" : "s");
        if (bm >= 0 && any_peak) /* device memory on a GPU, the resident memory a run added on the CPU */
            fprintf(out, "best by memory:     %s (mean peak %.1f MB, KV %.0f B/token)\n", g[bm].id,
                    g[bm].peak / 1048576.0, g[bm].kv);
        else if (bm >= 0)
            fprintf(out, "smallest KV cache:  %s (%.0f B/token; no run measured its peak memory)\n", g[bm].id, g[bm].kv);
        if (max_seeds < 2)
            fprintf(out, "one seed per configuration: the differences between configurations are untested "
                         "(seeds = 3 or more gives each a confidence interval and a t-test)\n");
        else
            fprintf(out, "vs best: difference of the mean final val loss from the best configuration's and Welch's "
                         "two-sided t-test over seeds (sig: p < 0.05; untested: fewer than 2 ok seeds); 95%% CI: "
                         "Student t over seeds\n");
        fprintf(out, "files: %s/results.json, results.csv (per configuration), runs.csv (per run), loss.svg, "
                     "val_vs_throughput.svg, val_vs_memory.svg\n", dir);
    }
    /* the plots */
    study_plot_loss(dir, s, n, g, ng);
    double *xs = calloc(ng, sizeof *xs), *xsd = calloc(ng, sizeof *xsd);
    for (int k = 0; xs && xsd && k < ng; k++) { xs[k] = g[k].tps.mean; xsd[k] = g[k].tps.sd; }
    if (xs && xsd) study_plot_pareto(dir, "val_vs_throughput.svg", "Validation loss vs throughput",
                                     "training tokens/s", s, g, ng, xs, xsd, 1);
    for (int k = 0; xs && k < ng; k++) xs[k] = any_peak ? g[k].peak / 1048576.0 : g[k].kv;
    if (xs) study_plot_pareto(dir, "val_vs_memory.svg", "Validation loss vs memory",
                              any_peak ? "peak memory (MB, mean over seeds)"
                                       : "KV-cache bytes per token (no peak memory measured)",
                              s, g, ng, xs, NULL, 0);
    free(xsd);
    free(xs);
    study_lr_view(dir, out, s, g, ng);
    free(g);
    free(s);
    return bad ? -1 : 0;
}

#endif /* STUDY_IMPLEMENTATION_DONE */
#endif /* STUDY_IMPLEMENTATION */
