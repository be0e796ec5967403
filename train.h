/* train.h - training a SmolModel: AdamW with fp32 master weights, linear warmup +
   cosine decay to a floor, global-norm gradient clipping, gradient accumulation,
   gradient-norm statistics, and the evaluation loops (validation loss, perplexity; and
   train_evaluate: loss over scored tokens, its standard error over windows, bits per byte).

   USAGE
     #define ABLATE_IMPLEMENTATION   // in one .c file (or TRAIN_IMPLEMENTATION with those of
     #include "train.h"              // dist.h, smollm.h, attn.h and ops.h)

     TrainConfig tc = {0};          // zero = defaults (below)
     tc.steps = 200; tc.lr = 3e-3f;
     TrainState tr;
     if (train_init(&tr, &model, &tc)) { fputs("out of memory for the optimizer\n", stderr); exit(1); }
     for (int s = 0; s < tc.steps; s++) {
         TrainStats st = train_step(&tr, next_batch, my_data);   // next_batch fills tokens/targets
         printf("%d loss %.3f lr %.2e gnorm %.2f\n", st.step, st.loss, st.lr, st.grad_norm);
     }
     double val = train_eval(&tr, val_batch, my_data, 8);      // mean token loss; exp() = ppl

     // resume: the weights go through smollm_save/smollm_load; everything else that the
     // next step depends on (AdamW moments, step, gradient-norm statistics, and the caller's
     // words such as a sampler's RNG and position) through train_save_state/train_load_state
     uint64_t words[2] = {sampler.rng, sampler.cursor};
     train_save_state(&tr, words, 2, "run/train.state", err, sizeof err);
     ...
     train_load_state(&tr, words, 2, "run/train.state", err, sizeof err);   // same config required

   DEPENDS ON: smollm.h (attn.h, ops.h). Builds CPU-only unless -DABLATE_CUDA (ops.h).
   LINKAGE: every public function is declared TRAINDEF (extern); define TRAIN_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   DEFAULTS: lr 3e-3 peak, min_lr_ratio 0.1 (floor = 0.1 lr), warmup 0 steps, beta1 0.9,
   beta2 0.95, eps 1e-8, weight_decay 0.1 on matrices only (norm scales and embeddings
   are not decayed unless decay_all is set), clip 1.0 (global L2 norm; < 0 disables),
   grad_accum 1, grad_reduce fp32, grad_bucket_mb 0 (one bucket). A zero field selects its default, so a real zero is asked for with a negative
   value: weight_decay < 0 is no decay, min_lr_ratio < 0 a cosine down to 0.

   On the GPU, after one eager step, each micro-batch's forward+backward is captured once
   as a CUDA graph and replayed (launch overhead gone); the optimizer update stays eager
   since its learning rate changes every step. A batch whose loss scale differs (a
   different count of ignored targets) is re-captured; after 3 captures graphs are dropped.

   The loss of a step is the mean over all tokens of all micro-batches; gradients are
   of that mean. grad_norm is the global L2 norm before clipping.

   DATA PARALLEL (TrainConfig.dist, a DistComm of dist.h; NULL: one process). Every rank holds
   the whole model and runs the same calls. The model's B is the rank's share: a run of batch
   B over W ranks builds each rank's SmolModel with B / W rows; next_batch still fills the
   whole micro-batch of B rows (every rank draws it, so the samplers stay in step and a
   checkpoint's sampler state is every rank's), and rank r trains on rows [r B/W, (r+1) B/W).
   Each rank's loss scale is 1 / (its counted tokens x grad_accum x W); after the last
   micro-batch the gradients are summed over the ranks (all_reduce, rank order), so a W-rank
   step computes what a 1-rank step of batch B/W and grad_accum x W computes, up to the order
   in which the weight gradients are added (a 1-rank run adds micro-batch 2 into micro-batch
   1's sums; the ranks' sums are added afterwards): equal to ~1e-15 relative in the double
   build, ~1e-6 in float. The loss and the step's seconds are averaged over ranks (host
   doubles in rank order: every rank gets the same, so budgets stop every rank at one step).
   Optimizer state is sharded (ZeRO-1): with n parameters, s = n / W, rank r keeps the AdamW
   moments of [r s, (r+1) s) and of the tail [W s, n) (under W elements, updated by every rank
   alike) and updates only those weights; an all_gather of the fp32 weights (and on the GPU of
   their bf16 copy) then gives every rank the whole model. The gradient norm is taken over
   the whole summed gradient on every rank (the same value everywhere, the same sum as one
   rank).
   GRADIENT BUCKETS (grad_bucket_mb): with 0 (the default) the gradients are reduced in one
   call after the backward of the last micro-batch. With N > 0 the last micro-batch's backward
   hands each layer's gradients over as soon as they are final (smollm.h's grads_ready: they
   are contiguous in params, the final norm first, the last layer down to the first, the tied
   embedding last); adjacent ranges gather into a bucket, and a bucket of N MB or more (of
   ops_real gradients) is reduced at once, the rest after the backward. On the GPU the buckets
   go to NCCL on a second stream (gpu_comm_stream) that waits for the kernels queued so far,
   so the all-reduce of layer l runs while the backward of layers l-1..0 does; the update
   waits for the last one. grad_reduce bf16 rounds each bucket to bf16 on the main stream
   before it leaves and widens the whole sum back after the last. That micro-batch is not
   replayed as a CUDA graph (the collectives are queued eagerly). The CPU transport sums each
   bucket when it is handed over, and the backward waits for it (no overlap there).
   Every element is summed over the ranks in the same order as in one bucket, so the results
   equal the one-bucket reduction bit for bit on the CPU transport and with NCCL on 2 ranks
   (more ranks: NCCL's ring may order a sum differently for a different buffer length).
   Checkpoints hold the whole state: train_sync_state (collective) gathers the moments to
   rank 0, whose train_save_state writes them; train_load_state reads the whole file on every
   rank and keeps its slice, so a state saved by N ranks resumes on M.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(TRAIN_IMPLEMENTATION)
#define TRAIN_IMPLEMENTATION
#endif
#ifndef TRAIN_H
#define TRAIN_H

/* linkage of every public function: extern, or static with TRAIN_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef TRAINDEF
#if defined(TRAIN_STATIC) || defined(ABLATE_STATIC)
#define TRAINDEF static
#else
#define TRAINDEF extern
#endif
#endif

/* clock_gettime, fileno: POSIX 2008, asked for before the first system header so that the
   implementation builds under a strict -std=c99 too (a file that includes a system header before
   this one, under -std=c99, defines _POSIX_C_SOURCE 200809L itself) */
#if defined(TRAIN_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "dist.h" /* first: its implementation asks for the system headers' fork and mmap parts */
#include "smollm.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { TRAIN_REDUCE_FP32 = 0, TRAIN_REDUCE_BF16 = 1 }; /* TrainConfig.grad_reduce */

typedef struct {
    float lr, min_lr_ratio;
    int warmup, steps;
    float beta1, beta2, eps, weight_decay;
    int decay_all;
    float clip;
    int grad_accum;
    int no_cuda_graphs; /* GPU: replay each micro-batch's forward+backward as a CUDA graph unless set */
    struct DistComm *dist; /* data parallel over dist->world ranks (see DATA PARALLEL); NULL: one process.
                              Not saved in the train state: any rank count may resume it */
    int grad_reduce;       /* TRAIN_REDUCE_FP32 (0, the default) or TRAIN_REDUCE_BF16: the precision in
                              which the ranks' gradients are summed (DATA PARALLEL); no effect on one process */
    float grad_bucket_mb;  /* > 0: the last micro-batch's gradients are reduced over the ranks in
                              buckets of this many MB (2^20 bytes; a fraction is allowed, e.g. 1e-9:
                              a bucket per layer) while its backward runs (GRADIENT BUCKETS);
                              0: once, after the backward. No effect on one process */
    /* a mechanism's schedule during training (DSA's dense warm-up and k ramp) is an option of
       the mechanism (attn.h), applied at each step through smollm_at_step */
} TrainConfig;

typedef struct {
    int step;           /* 1-based index of the step just taken */
    float loss, lr, grad_norm;
    double seconds;     /* wall time of the step */
    int failed;         /* 1: out of host memory in the forward or backward; the step was not taken.
                           2: a collective failed (cfg.dist->err says why); the ranks disagree now */
} TrainStats;

typedef struct {
    TrainConfig cfg;
    SmolModel *model;
    ops_real *m, *v;      /* AdamW moments (backend memory): of this rank's shard, then the tail */
    size_t shard_lo, shard_n, tail_lo; /* the shard [lo, lo + n) and the tail [tail_lo, n_params);
                                          one process: 0, n_params, n_params */
    void *grad_bf16;      /* grad_reduce bf16 with ranks: the bf16 gradients summed over the ranks
                             (backend memory, n_params uint16 elements); else NULL */
    ops_real *synced;     /* rank 0 after train_sync_state: the whole m and v (host) for train_save_state */
    ops_real *gnorm_sq;   /* device scalar on the GPU */
    int step;
    int local_steps;    /* steps taken by this TrainState itself: CUDA graphs wait for one eager step,
                           which a resumed TrainState (step restored by train_load_state) has not taken */
    /* running gradient-norm statistics */
    double gnorm_sum, gnorm_max;
    int gnorm_count;
    /* CUDA graphs (GPU only): one micro-batch's forward+backward, and the update */
    void *update_graph;
    ops_real *hyper;      /* device {lr, bias_corr1, bias_corr2} read by the update graph */
    void *graph;
    float graph_dloss;  /* the loss scale baked into the graph */
    int graph_captures;
    int graph_eager;    /* 1: run the next micro-batch eagerly (new kernels may grow their scratch,
                           which cannot happen inside a capture) */
    /* GRADIENT BUCKETS: the gathered range [bucket_lo, bucket_hi) not yet reduced, and whether
       a reduction failed */
    size_t bucket_lo, bucket_hi;
    int bucket_failed;
} TrainState;

/* fills a micro-batch of B*T token ids and next-token targets (host arrays) */
typedef void (*TrainBatchFn)(void *ctx, int *tokens, int *targets);

TRAINDEF void train_config_resolve(TrainConfig *c);
TRAINDEF float train_lr(const TrainConfig *c, int step); /* step counts from 0 */
/* 0, or -1 when host memory for the optimizer state (2 x the parameters) runs out: nothing is
   left allocated, and the caller names the failure (it knows the model's size) */
TRAINDEF int train_init(TrainState *t, SmolModel *m, const TrainConfig *c);
TRAINDEF void train_free(TrainState *t);
TRAINDEF TrainStats train_step(TrainState *t, TrainBatchFn next_batch, void *ctx);
/* mean token loss over n_batches batches from next_batch (perplexity = exp of it) */
TRAINDEF double train_eval(TrainState *t, TrainBatchFn next_batch, void *ctx, int n_batches);
/* the same, and *accuracy = top-1 accuracy over the scored tokens (the synthetic tasks' metric) */
TRAINDEF double train_eval_acc(TrainState *t, TrainBatchFn next_batch, void *ctx, int n_batches, double *accuracy);

/* An evaluation with the numbers a comparison needs. TrainEvalBatchFn fills B*T tokens and targets
   (-1: not scored; a row with none is padding) and, when row_bytes is not NULL, each row's text
   bytes of its scored targets (NAN: unknown); data.h's data_eval_batch is one. */
typedef void (*TrainEvalBatchFn)(void *ctx, int *tokens, int *targets, double *row_bytes);
typedef struct {
    double loss;        /* total loss / scored tokens (nats per token; perplexity = exp(loss)) */
    double sum;         /* total loss, nats */
    double tokens;      /* scored targets */
    double windows;     /* rows with a scored target */
    /* standard error of `loss` with the windows as the sampled units (a ratio estimator, since
       windows may score different counts): sqrt(sum_i (s_i - loss n_i)^2 / (w (w - 1))) / (tokens / w)
       for window sums s_i over n_i tokens; NAN under 2 windows. It says how far the loss of
       another sample of as many windows of such text would fall, not an error of the split's own
       loss, which a whole-split evaluation computes exactly */
    double se;
    double bytes;       /* text bytes of the scored targets; NAN when unknown */
    double bpb;         /* bits per byte = sum / (ln 2 * bytes); NAN when unknown */
    double accuracy;    /* top-1 accuracy over the scored tokens when asked for, else NAN */
} TrainEval;
/* forward passes over n_batches batches of next (no TrainState needed: ablate eval has none);
   0, or -1 when out of memory */
TRAINDEF int train_evaluate(SmolModel *m, TrainEvalBatchFn next, void *ctx, size_t n_batches, int want_accuracy, TrainEval *out);
TRAINDEF double train_now(void); /* monotonic seconds */

/* Resume state, one file written atomically (path.tmp, then rename):
     a text header "ablate-train-state 1", then "key value" lines (step, n_params, real_bytes,
     the schedule: steps lr min_lr_ratio warmup grad_accum, gnorm_sum gnorm_max gnorm_count,
     user N w1..wN), floats in C99 hex (%a) so they round-trip exactly, a line "data", then
     the raw AdamW moments m and v (n_params ops_real each, host byte order).
   user: up to TRAIN_STATE_USER caller words saved and restored verbatim (a sampler's RNG and
   position, token counters...). train_load_state refuses a file whose parameter count, scalar
   size, schedule or number of user words differs from this trainer's (the message names
   both values), since resuming under another schedule would not give the same losses; it
   also refuses a step outside 0..steps, a gnorm_count above the step, non-finite moments or
   a negative second moment, and a file cut short or with bytes after the moments. The
   TrainState is changed only when everything passed. train_save_state fsyncs before the rename. */
#define TRAIN_STATE_USER 16
TRAINDEF int train_save_state(const TrainState *t, const uint64_t *user, int n_user, const char *path, char *err,
                              size_t errlen);
TRAINDEF int train_load_state(TrainState *t, uint64_t *user, int n_user, const char *path, char *err, size_t errlen);
/* data parallel: every rank calls it before rank 0's train_save_state (which then writes the
   gathered state; the other ranks write nothing). 0, or -1 with err (a collective failed, or
   rank 0 ran out of host memory: every rank learns it) */
TRAINDEF int train_sync_state(TrainState *t, char *err, size_t errlen);


#ifdef __cplusplus
}
#endif
#endif /* TRAIN_H */

/* ======================================================================= */
#ifdef TRAIN_IMPLEMENTATION
#ifndef TRAIN_IMPLEMENTATION_DONE
#define TRAIN_IMPLEMENTATION_DONE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

TRAINDEF double train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* wall clock is fine at step granularity */
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

TRAINDEF void train_config_resolve(TrainConfig *c) {
    if (c->lr == 0) c->lr = 3e-3f;
    if (c->min_lr_ratio == 0) c->min_lr_ratio = 0.1f;
    if (c->steps == 0) c->steps = 1000;
    if (c->beta1 == 0) c->beta1 = 0.9f;
    if (c->beta2 == 0) c->beta2 = 0.95f;
    if (c->eps == 0) c->eps = 1e-8f;
    if (c->weight_decay == 0) c->weight_decay = 0.1f;
    if (c->clip == 0) c->clip = 1.0f;
    if (c->grad_accum == 0) c->grad_accum = 1;
}

TRAINDEF float train_lr(const TrainConfig *c, int step) {
    if (step < c->warmup) return c->lr * (step + 1) / c->warmup;
    float floor = c->lr * fmaxf(c->min_lr_ratio, 0.0f);
    int decay = c->steps - c->warmup;
    if (decay <= 1) return c->lr;
    float p = (float)(step - c->warmup) / (decay - 1);
    if (p > 1) p = 1;
    return floor + 0.5f * (c->lr - floor) * (1 + cosf(3.14159265f * p));
}

TRAINDEF int train_init(TrainState *t, SmolModel *m, const TrainConfig *c) {
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    train_config_resolve(&t->cfg);
    t->model = m;
    DistComm *d = t->cfg.dist;
    size_t n = m->n_params, W = d ? (size_t)d->world : 1, s = n / W;
    t->shard_lo = d ? (size_t)d->rank * s : 0;
    t->shard_n = s;
    t->tail_lo = W * s;
    size_t local = s + (n - t->tail_lo);
    t->m = ops_alloc(m->gpu, local * sizeof(ops_real));
    t->v = ops_alloc(m->gpu, local * sizeof(ops_real));
    t->gnorm_sq = ops_alloc(m->gpu, sizeof(ops_real));
    t->hyper = ops_alloc(m->gpu, 4 * sizeof(ops_real));
    if (d && t->cfg.grad_reduce == TRAIN_REDUCE_BF16 && !(t->grad_bf16 = ops_alloc(m->gpu, n * 2))) {
        train_free(t);
        return -1;
    }
    if (!t->m || !t->v || !t->gnorm_sq || !t->hyper) {
        train_free(t);
        return -1;
    }
    return 0;
}

TRAINDEF void train_free(TrainState *t) {
    Gpu *g = t->model->gpu;
#ifndef ABLATE_NO_CUDA
    gpu_graph_free((CUgraphExec)t->graph);
    gpu_graph_free((CUgraphExec)t->update_graph);
#endif
    ops_free(g, t->hyper);
    ops_free(g, t->m);
    ops_free(g, t->v);
    ops_free(g, t->gnorm_sq);
    ops_free(g, t->grad_bf16);
    free(t->synced);
    memset(t, 0, sizeof *t);
}

/* weight decay of tensor i: matrices only, unless decay_all */
static float train_decay_(const TrainState *t, int i) {
    const AttnParamSpec *p = &t->model->specs[i];
    return (p->is_norm || p->is_embedding) && !t->cfg.decay_all ? 0.0f : fmaxf(t->cfg.weight_decay, 0.0f);
}

/* the parts of the flat parameter range [a, b) that this rank updates (its shard, the tail):
   up to 2 pieces [lo[i], hi[i]) whose moments sit at loc[i] of t->m and t->v */
static int train_pieces_(const TrainState *t, size_t a, size_t b, size_t lo[2], size_t hi[2], size_t loc[2]) {
    int k = 0;
    size_t s0 = t->shard_lo, s1 = t->shard_lo + t->shard_n, n = t->model->n_params;
    size_t x = a > s0 ? a : s0, y = b < s1 ? b : s1;
    if (x < y) { lo[k] = x; hi[k] = y; loc[k] = x - s0; k++; }
    x = a > t->tail_lo ? a : t->tail_lo;
    y = b < n ? b : n;
    if (x < y) { lo[k] = x; hi[k] = y; loc[k] = t->shard_n + (x - t->tail_lo); k++; }
    return k;
}

/* global L2 norm of the gradients, then AdamW on every tensor with its own decay (this rank's
   pieces of it when data-parallel) */
static float train_update(TrainState *t, float lr) {
    SmolModel *M = t->model;
    const TrainConfig *c = &t->cfg;
    float b1c = 1 - powf(c->beta1, (float)t->step), b2c = 1 - powf(c->beta2, (float)t->step);
    double gnorm;
#ifndef ABLATE_NO_CUDA
    if (M->gpu) {
        Gpu *g = M->gpu;
        float hyper[4] = {lr, b1c, b2c, 0};
        gpu_upload(g, t->hyper, hyper, sizeof hyper);
        /* captured once after the first step, then replayed: the schedule is read from t->hyper */
        int graphs = !c->no_cuda_graphs && !g->profile && !g->tuning.sync_check;
        if (graphs && t->update_graph) {
            gpu_graph_launch(g, (CUgraphExec)t->update_graph);
        } else {
            if (graphs && t->local_steps > 1) gpu_graph_begin(g);
            gpu_memset0(g, t->gnorm_sq, sizeof(float));
            gpu_sumsq(g, t->gnorm_sq, M->grads, M->n_params);
            /* one launch per run of adjacent tensors with the same decay, not one per tensor */
            for (int i = 0, j; i < M->n_specs; i = j) {
                float wd = train_decay_(t, i);
                size_t off = M->specs[i].offset, n = M->specs[i].numel;
                for (j = i + 1; j < M->n_specs && train_decay_(t, j) == wd && M->specs[j].offset == off + n; j++)
                    n += M->specs[j].numel;
                size_t lo[2], hi[2], loc[2];
                for (int k = 0, np = train_pieces_(t, off, off + n, lo, hi, loc); k < np; k++)
                    gpu_adamw(g, M->params + lo[k], (char *)M->wc + lo[k] * 2, M->grads + lo[k], t->m + loc[k],
                              t->v + loc[k], hi[k] - lo[k], lr, c->beta1, c->beta2, c->eps, wd, b1c, b2c, t->gnorm_sq,
                              c->clip > 0 ? c->clip : 0, t->hyper);
            }
            if (graphs && t->local_steps > 1) {
                t->update_graph = gpu_graph_end(g);
                gpu_graph_launch(g, (CUgraphExec)t->update_graph);
            }
        }
        float ss;
        gpu_download(M->gpu, &ss, t->gnorm_sq, sizeof ss); /* only for reporting */
        return sqrtf(ss);
    }
#endif
    double ss = 0;
    for (size_t i = 0; i < M->n_params; i++) ss += (double)M->grads[i] * M->grads[i];
    gnorm = sqrt(ss);
    double scale = (c->clip > 0 && gnorm > c->clip) ? c->clip / gnorm : 1.0;
    for (int i = 0; i < M->n_specs; i++) {
        const AttnParamSpec *p = &M->specs[i];
        ops_real wd = train_decay_(t, i);
        size_t lo[2], hi[2], loc[2];
        for (int k = 0, np = train_pieces_(t, p->offset, p->offset + p->numel, lo, hi, loc); k < np; k++) {
            ops_real *w = M->params + lo[k], *g = M->grads + lo[k];
            ops_real *m = t->m + loc[k], *v = t->v + loc[k];
            for (size_t j = 0; j < hi[k] - lo[k]; j++) {
                ops_real gj = g[j] * scale;
                m[j] = c->beta1 * m[j] + (1 - c->beta1) * gj;
                v[j] = c->beta2 * v[j] + (1 - c->beta2) * gj * gj;
                w[j] -= lr * wd * w[j]; /* decoupled weight decay */
                w[j] -= lr * (m[j] / b1c) / (sqrt(v[j] / b2c) + c->eps);
            }
        }
    }
    return (float)gnorm;
}

/* a deliberate change of the step's kernels (DSA's stage): capture again, not counted. The next
   micro-batch runs eagerly first even when no graph was captured yet: the new kernels may grow
   their scratch (a larger k), which a capture cannot allocate */
static void train_drop_graph(TrainState *t) {
    t->graph_eager = 1;
    if (!t->graph) return;
#ifndef ABLATE_NO_CUDA
    gpu_graph_free((CUgraphExec)t->graph);
#endif
    t->graph = NULL;
    t->graph_captures--; /* the next capture replaces this one */
}

/* runs the micro-batch as a CUDA graph when it can; 0: the caller runs it eagerly */
static int train_graph_step(TrainState *t, float dloss) {
#ifndef ABLATE_NO_CUDA
    Gpu *g = t->model->gpu;
    /* not on the CPU, not while profiling or sync-checking (they synchronize inside ops),
       not before one eager step has JIT-compiled kernels and sized scratch buffers */
    if (t->graph_eager) { t->graph_eager = 0; return 0; }
    if (!g || t->cfg.no_cuda_graphs || g->profile || g->tuning.sync_check || t->local_steps < 1 || t->graph_captures > 3)
        return 0;
    if (!t->graph || t->graph_dloss != dloss) {
        if (t->graph_captures == 3) { t->graph_captures++; return 0; } /* the scale keeps changing */
        gpu_graph_free((CUgraphExec)t->graph);
        gpu_graph_begin(g);
        /* on the GPU neither allocates host memory: they do not fail here */
        (void)smollm_forward_device(t->model);
        (void)smollm_backward_device(t->model, dloss);
        t->graph = gpu_graph_end(g);
        t->graph_dloss = dloss;
        t->graph_captures++;
    }
    gpu_graph_launch(g, (CUgraphExec)t->graph);
    return 1;
#else
    (void)t; (void)dloss;
    return 0;
#endif
}

/* the gradients [a, b) summed over the ranks in place: in ops_real (fp32 on the GPU), or with
   grad_reduce bf16 each rank's rounded to bf16 (round to nearest even), summed as bf16 (NCCL:
   a bf16 all-reduce; the CPU transport: widened, summed in fp32 in rank order, rounded once)
   and widened back. The CPU build rounds through float (the double build's doubles too), so
   both builds run the numerics of the GPU's bf16 reduction. On the GPU the sum is queued: with
   overlap on the comm stream after what the main stream has queued (GRADIENT BUCKETS), else on
   the main stream; there train_reduce_done_ widens the bf16 sums */
static int train_reduce_range_(TrainState *t, size_t a, size_t b, int overlap) {
    SmolModel *M = t->model;
    DistComm *d = t->cfg.dist;
    size_t n = b - a;
    if (!n) return 0;
#ifndef ABLATE_NO_CUDA
    if (M->gpu) {
        Gpu *g = M->gpu;
        void *buf = (float *)M->grads + a;
        DistType ty = DIST_F32;
        if (t->grad_bf16) {
            buf = (uint16_t *)t->grad_bf16 + a;
            ty = DIST_BF16;
            gpu_f32_to_bf16(g, buf, (const float *)M->grads + a, n);
        }
        if (!overlap) return d->all_reduce(d, buf, n, ty);
        gpu_comm_after_main(g);
        void *main_stream = dist_nccl_set_stream(d, gpu_comm_stream(g));
        int rc = d->all_reduce(d, buf, n, ty);
        dist_nccl_set_stream(d, main_stream);
        return rc;
    }
#endif
    (void)overlap;
    if (!t->grad_bf16) return d->all_reduce(d, M->grads + a, n, sizeof(ops_real) == 8 ? DIST_F64 : DIST_F32);
    uint16_t *bf = (uint16_t *)t->grad_bf16 + a;
    for (size_t i = 0; i < n; i++) bf[i] = dist_bf16((float)M->grads[a + i]);
    if (d->all_reduce(d, bf, n, DIST_BF16)) return -1;
    for (size_t i = 0; i < n; i++) M->grads[a + i] = (ops_real)dist_f32(bf[i]);
    return 0;
}

/* GRADIENT BUCKETS on: data parallel with grad_bucket_mb > 0 */
static int train_bucketed_(const TrainState *t) { return t->cfg.dist && t->cfg.grad_bucket_mb > 0; }

/* after the last range (and after a failed one, so that nothing of the step still runs when
   the next one zeroes the gradients): on the GPU the main stream waits for the comm stream's
   sums (with buckets) and the bf16 sums come back to fp32 (the CPU widened each range already) */
static void train_reduce_done_(TrainState *t) {
#ifndef ABLATE_NO_CUDA
    SmolModel *M = t->model;
    if (M->gpu) {
        if (train_bucketed_(t)) gpu_main_after_comm(M->gpu);
        if (t->grad_bf16) gpu_bf16_to_f32(M->gpu, (float *)M->grads, t->grad_bf16, M->n_params);
    }
#else
    (void)t;
#endif
}

/* GRADIENT BUCKETS: the gathered bucket to its reduction */
static int train_bucket_flush_(TrainState *t) {
    size_t a = t->bucket_lo, b = t->bucket_hi;
    t->bucket_lo = t->bucket_hi = 0;
    if (train_reduce_range_(t, a, b, 1)) {
        t->bucket_failed = 1;
        return -1;
    }
    return 0;
}

/* smollm.h's grads_ready during the last micro-batch's backward: the ranges come highest
   first, so a bucket grows downwards; a range not adjacent to the bucket (never, with smollm's
   layout) flushes the bucket first */
static int train_grads_ready_(void *ctx, size_t lo, size_t n) {
    TrainState *t = ctx;
    if (t->bucket_hi > t->bucket_lo && lo + n != t->bucket_lo && train_bucket_flush_(t)) return -1;
    if (t->bucket_hi == t->bucket_lo) t->bucket_hi = lo + n;
    t->bucket_lo = lo;
    if ((double)((t->bucket_hi - t->bucket_lo) * sizeof(ops_real)) >= t->cfg.grad_bucket_mb * 1048576.0)
        return train_bucket_flush_(t);
    return 0;
}

TRAINDEF TrainStats train_step(TrainState *t, TrainBatchFn next_batch, void *ctx) {
    SmolModel *M = t->model;
    DistComm *d = t->cfg.dist;
    int N = M->B * M->T, A = t->cfg.grad_accum, W = d ? d->world : 1, rank = d ? d->rank : 0;
    /* the mechanisms' state for this step (DSA's warm-up and k schedule): a change makes the
       captured graph stale */
    if (smollm_at_step(M, t->step)) train_drop_graph(t);
    /* the whole micro-batch (all ranks' rows); this rank's rows start at tok + rank N */
    int *tok_all = malloc(sizeof(int) * (size_t)N * W), *tgt_all = malloc(sizeof(int) * (size_t)N * W);
    int *tok = tok_all ? tok_all + (size_t)rank * N : NULL, *tgt = tgt_all ? tgt_all + (size_t)rank * N : NULL;
    TrainStats st = {0};
    double t0 = train_now(), loss = 0;
    int oom = !tok_all || !tgt_all;
    if (d && d->sum_host) { /* one rank out of memory: every rank skips the step together */
        double bad = oom;
        if (d->sum_host(d, &bad, 1)) goto comm_failed;
        oom = bad > 0;
    }
    if (oom) goto failed;
    ops_zero(M->gpu, M->grads, M->n_params * sizeof(ops_real));
    int bucketed = train_bucketed_(t);
    t->bucket_lo = t->bucket_hi = 0;
    t->bucket_failed = 0;
    for (int a = 0; a < A; a++) {
        next_batch(ctx, tok_all, tgt_all);
        int count = 0;
        for (int n = 0; n < N; n++) count += tgt[n] >= 0;
        /* gradient of the mean over all counted tokens of all micro-batches (of all ranks:
           the ranks' gradients are summed below) */
        float dloss = count ? 1.0f / ((float)count * (A * W)) : 0.0f;
        smollm_set_batch(M, tok, tgt);
        /* the last micro-batch hands its gradients to the buckets as its backward goes */
        M->grads_ready = bucketed && a + 1 == A ? train_grads_ready_ : NULL;
        M->grads_ready_ctx = t;
        int graphed = !M->grads_ready && train_graph_step(t, dloss);
        if (!graphed && (smollm_forward_device(M) || smollm_backward_device(M, dloss))) {
            M->grads_ready = NULL;
            train_reduce_done_(t); /* nothing of this step left running on the comm stream */
            if (t->bucket_failed) goto comm_failed;
            goto failed;
        }
        M->grads_ready = NULL;
        /* on the GPU the last micro-batch's loss is read after the update is queued:
           one wait for the device per step instead of two */
        if (a + 1 < A || !M->gpu || d) loss += smollm_read_loss(M, tgt);
    }
    DistType rt = sizeof(ops_real) == 8 ? DIST_F64 : DIST_F32;
    if (d) { /* the buckets' rest, or the whole gradient in one */
        int rc = bucketed ? train_bucket_flush_(t) : train_reduce_range_(t, 0, M->n_params, 0);
        train_reduce_done_(t);
        if (rc) goto comm_failed;
    }
    st.lr = train_lr(&t->cfg, t->step);
    t->step++;
    t->local_steps++;
    st.step = t->step;
    st.grad_norm = train_update(t, st.lr); /* on the GPU it also refreshes the bf16 copy */
    if (d) { /* every rank's slice of the new weights to every rank (the tail is everyone's already) */
        size_t lo = t->shard_lo, s = t->shard_n;
        if (d->all_gather(d, M->params + lo, M->params, s, rt)) goto comm_failed;
        if (M->wc != (void *)M->params &&
            d->all_gather(d, (char *)M->wc + lo * ops_act_size(M->gpu), M->wc, s, DIST_BF16))
            goto comm_failed;
    }
    if (M->gpu && !d) loss += smollm_read_loss(M, tgt);
    st.seconds = train_now() - t0;
    if (d) { /* the step's loss and seconds: the ranks' mean, the same bits on every rank */
        double x[2] = {loss, st.seconds};
        if (d->sum_host(d, x, 2)) goto comm_failed;
        loss = x[0] / W;
        st.seconds = x[1] / W;
    }
    st.loss = (float)(loss / A);
    t->gnorm_sum += st.grad_norm;
    t->gnorm_count++;
    if (st.grad_norm > t->gnorm_max) t->gnorm_max = st.grad_norm;
    free(tok_all);
    free(tgt_all);
    return st;
comm_failed:
    st.failed = 1; /* becomes 2 below */
failed: /* no update: the weights and the step count stay as they were */
    st.failed++;
    free(tok_all);
    free(tgt_all);
    st.step = t->step;
    st.loss = NAN;
    st.seconds = train_now() - t0;
    return st;
}

TRAINDEF double train_eval(TrainState *t, TrainBatchFn next_batch, void *ctx, int n_batches) {
    return train_eval_acc(t, next_batch, ctx, n_batches, NULL);
}

/* a TrainBatchFn seen as an TrainEvalBatchFn (its rows' bytes stay unknown) */
typedef struct { TrainBatchFn fn; void *ctx; } TrainBatchAdapter_;
static void train_batch_adapter_(void *a, int *tokens, int *targets, double *row_bytes) {
    TrainBatchAdapter_ *x = a;
    (void)row_bytes;
    x->fn(x->ctx, tokens, targets);
}

/* train_evaluate's loop, with train_eval's contract: 0 when nothing was scored */
TRAINDEF double train_eval_acc(TrainState *t, TrainBatchFn next_batch, void *ctx, int n_batches, double *accuracy) {
    TrainBatchAdapter_ a = {next_batch, ctx};
    TrainEval e;
    if (train_evaluate(t->model, train_batch_adapter_, &a, n_batches > 0 ? (size_t)n_batches : 0, accuracy != NULL, &e))
        return NAN; /* out of memory */
    if (accuracy) *accuracy = e.tokens ? e.accuracy : 0;
    return e.tokens ? e.loss : 0;
}

TRAINDEF int train_evaluate(SmolModel *m, TrainEvalBatchFn next, void *ctx, size_t n_batches, int want_accuracy, TrainEval *out) {
    int B = m->B, N = m->B * m->T, oom = 0;
    int *tok = malloc(sizeof(int) * N), *tgt = malloc(sizeof(int) * N), *rc = malloc(sizeof(int) * B);
    double *rl = malloc(sizeof(double) * B), *rb = malloc(sizeof(double) * B);
    size_t cap = 1024, w = 0;
    double *ws = malloc(sizeof(double) * cap), *wn = malloc(sizeof(double) * cap); /* per window: sum, count */
    double sum = 0, count = 0, bytes = 0, hits = 0;
    memset(out, 0, sizeof *out);
    oom = !tok || !tgt || !rc || !rl || !rb || !ws || !wn;
    for (size_t i = 0; i < n_batches && !oom; i++) {
        double h = 0;
        for (int r = 0; r < B; r++) rb[r] = NAN; /* a callback that does not know bytes leaves them unknown */
        next(ctx, tok, tgt, rb);
        sum += smollm_eval_rows(m, tok, tgt, rl, rc, want_accuracy ? &h : NULL);
        hits += h;
        for (int b = 0; b < B; b++) {
            if (!rc[b]) continue; /* padding */
            if (w == cap) {
                double *a = realloc(ws, sizeof(double) * 2 * cap), *c = a ? realloc(wn, sizeof(double) * 2 * cap) : NULL;
                if (a) ws = a;
                if (c) wn = c;
                if (!a || !c) { oom = 1; break; }
                cap *= 2;
            }
            ws[w] = rl[b];
            wn[w++] = rc[b];
            count += rc[b];
            bytes += rb[b];
        }
    }
    out->sum = sum;
    out->tokens = count;
    out->windows = (double)w;
    out->loss = count ? sum / count : NAN;
    double dev = 0;
    for (size_t i = 0; i < w; i++) dev += (ws[i] - out->loss * wn[i]) * (ws[i] - out->loss * wn[i]);
    out->se = w >= 2 ? sqrt(dev / ((double)w * (w - 1))) / (count / w) : NAN;
    out->bytes = bytes; /* a NAN row makes it NAN */
    out->bpb = isfinite(bytes) && bytes > 0 ? sum / (log(2.0) * bytes) : NAN;
    out->accuracy = want_accuracy && count ? hits / count : NAN;
    free(tok); free(tgt); free(rc); free(rl); free(rb); free(ws); free(wn);
    return oom ? -1 : 0;
}

/* the whole m and v (host, 2 n_params; rank 0 passes it, the others NULL) from the ranks'
   slices: a gather over the ranks (data parallel only) */
static int train_gather_moments_(TrainState *t, ops_real *host, char *err, size_t errlen) {
    SmolModel *M = t->model;
    DistComm *d = t->cfg.dist;
    size_t n = M->n_params, s = t->shard_n, tail = n - t->tail_lo;
    DistType rt = sizeof(ops_real) == 8 ? DIST_F64 : DIST_F32;
    ops_real *all = ops_alloc(M->gpu, (t->tail_lo ? t->tail_lo : 1) * sizeof(ops_real));
    double bad = !all; /* every rank learns that one cannot take part */
    int rc = d->sum_host(d, &bad, 1) ? -1 : bad ? -2 : 0;
    for (int k = 0; k < 2 && !rc; k++) {
        ops_real *local = k ? t->v : t->m, *out = host ? host + k * n : NULL;
        if (d->all_gather(d, local, all, s, rt)) rc = -1;
        else if (out) {
            ops_to_host(M->gpu, out, all, t->tail_lo * sizeof(ops_real));
            ops_to_host(M->gpu, out + t->tail_lo, local + s, tail * sizeof(ops_real)); /* every rank's alike */
        }
    }
    if (rc == -1) snprintf(err, errlen, "train state: %s", d->err);
    if (rc == -2) snprintf(err, errlen, "train state: a rank is out of memory for the %zu-element gather buffer", t->tail_lo);
    ops_free(M->gpu, all);
    return rc ? -1 : 0;
}

TRAINDEF int train_sync_state(TrainState *t, char *err, size_t errlen) {
    DistComm *d = t->cfg.dist;
    if (!d) return 0;
    free(t->synced);
    t->synced = NULL;
    if (d->rank == 0) t->synced = malloc(2 * t->model->n_params * sizeof(ops_real));
    /* every rank goes through the gather (whose first step tells every rank about this one) */
    if (d->rank == 0 && !t->synced) {
        double bad = 1;
        d->sum_host(d, &bad, 1);
        snprintf(err, errlen, "train state: out of host memory for %zu moments on rank 0", 2 * t->model->n_params);
        return -1;
    }
    if (train_gather_moments_(t, t->synced, err, errlen)) {
        free(t->synced);
        t->synced = NULL;
        return -1;
    }
    return 0;
}

TRAINDEF int train_save_state(const TrainState *t, const uint64_t *user, int n_user, const char *path, char *err,
                              size_t errlen) {
    const SmolModel *M = t->model;
    const TrainConfig *c = &t->cfg;
    if (n_user < 0 || n_user > TRAIN_STATE_USER) {
        snprintf(err, errlen, "train state: %d user words, expected 0..%d", n_user, TRAIN_STATE_USER);
        return -1;
    }
    size_t n = M->n_params;
    ops_real *host;
    if (t->cfg.dist) { /* the moments train_sync_state gathered: rank 0 writes them */
        if (t->cfg.dist->rank != 0) return 0;
        if (!t->synced) {
            snprintf(err, errlen, "train state %s: the moments were not gathered (train_sync_state on every rank first)", path);
            return -1;
        }
        host = t->synced; /* kept (freed by the next train_sync_state or train_free) */
    } else {
        host = malloc(2 * n * sizeof(ops_real));
        if (!host) { snprintf(err, errlen, "train state %s: out of memory", path); return -1; }
        ops_to_host(M->gpu, host, t->m, n * sizeof(ops_real));
        ops_to_host(M->gpu, host + n, t->v, n * sizeof(ops_real));
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL;
    if (ok) {
        fprintf(f, "ablate-train-state 1\nstep %d\nn_params %zu\nreal_bytes %zu\n", t->step, n, sizeof(ops_real));
        fprintf(f, "steps %d\nlr %a\nmin_lr_ratio %a\nwarmup %d\ngrad_accum %d\n", c->steps, c->lr,
                c->min_lr_ratio, c->warmup, c->grad_accum);
        fprintf(f, "gnorm_sum %a\ngnorm_max %a\ngnorm_count %d\nuser %d", t->gnorm_sum, t->gnorm_max,
                t->gnorm_count, n_user);
        for (int i = 0; i < n_user; i++) fprintf(f, " %llu", (unsigned long long)user[i]);
        fprintf(f, "\ndata\n");
        ok = fwrite(host, sizeof(ops_real), 2 * n, f) == 2 * n;
        ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0; /* on disk before the rename that publishes it */
        ok = (fclose(f) == 0) && ok;
    }
    if (host != t->synced) free(host);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write train state %s", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

/* reads "key value" where value is parsed by fmt; a missing or different key is an error */
static int train_state_field(FILE *f, const char *key, const char *fmt, void *out) {
    char k[32];
    if (fscanf(f, "%31s", k) != 1 || strcmp(k, key)) return -1;
    return fscanf(f, fmt, out) == 1 ? 0 : -1;
}

TRAINDEF int train_load_state(TrainState *t, uint64_t *user, int n_user, const char *path, char *err, size_t errlen) {
    SmolModel *M = t->model;
    const TrainConfig *c = &t->cfg;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open train state %s", path); return -1; }
    char magic[32];
    int version = 0, step = 0, steps = 0, warmup = 0, accum = 0, gcount = 0, nu = -1;
    size_t n = 0, rb = 0;
    float lr = 0, minr = 0;
    double gsum = 0, gmax = 0;
    int bad = fscanf(f, "%31s %d", magic, &version) != 2 || strcmp(magic, "ablate-train-state") || version != 1;
    bad = bad || train_state_field(f, "step", "%d", &step) || train_state_field(f, "n_params", "%zu", &n) ||
          train_state_field(f, "real_bytes", "%zu", &rb) || train_state_field(f, "steps", "%d", &steps) ||
          train_state_field(f, "lr", "%a", &lr) || train_state_field(f, "min_lr_ratio", "%a", &minr) ||
          train_state_field(f, "warmup", "%d", &warmup) || train_state_field(f, "grad_accum", "%d", &accum) ||
          train_state_field(f, "gnorm_sum", "%la", &gsum) || train_state_field(f, "gnorm_max", "%la", &gmax) ||
          train_state_field(f, "gnorm_count", "%d", &gcount) || train_state_field(f, "user", "%d", &nu);
    if (bad) { fclose(f); snprintf(err, errlen, "%s: not an ablate train state (bad header)", path); return -1; }
    const char *what = NULL;
    char have[64] = "", want[64] = "";
#define TRAIN_STATE_CHECK_(cond, name, fmt, a, b) \
    if (!what && (cond)) { what = name; snprintf(have, sizeof have, fmt, a); snprintf(want, sizeof want, fmt, b); }
    TRAIN_STATE_CHECK_(n != M->n_params, "n_params", "%zu", n, M->n_params)
    TRAIN_STATE_CHECK_(rb != sizeof(ops_real), "real_bytes", "%zu", rb, sizeof(ops_real))
    TRAIN_STATE_CHECK_(steps != c->steps, "steps", "%d", steps, c->steps)
    TRAIN_STATE_CHECK_(lr != c->lr, "lr", "%g", lr, c->lr)
    TRAIN_STATE_CHECK_(minr != c->min_lr_ratio, "min_lr_ratio", "%g", minr, c->min_lr_ratio)
    TRAIN_STATE_CHECK_(warmup != c->warmup, "warmup", "%d", warmup, c->warmup)
    TRAIN_STATE_CHECK_(accum != c->grad_accum, "grad_accum", "%d", accum, c->grad_accum)
    TRAIN_STATE_CHECK_(nu != n_user, "user words", "%d", nu, n_user)
    TRAIN_STATE_CHECK_(step < 0 || step > c->steps, "step", "%d", step, c->steps) /* want: at most steps */
    TRAIN_STATE_CHECK_(gcount < 0 || gcount > step, "gnorm_count", "%d", gcount, step)
    TRAIN_STATE_CHECK_(!(gsum >= 0 && gmax >= 0 && isfinite(gsum) && isfinite(gmax)), "gnorm_sum",
                       "%g", gsum, 0.0) /* want: finite, >= 0 */
#undef TRAIN_STATE_CHECK_
    if (what) {
        fclose(f);
        snprintf(err, errlen, "%s: %s is %s in the file but %s%s in this run", path, what, have,
                 !strcmp(what, "step") ? "at most " : !strcmp(what, "gnorm_count") ? "at most the step, " :
                 !strcmp(what, "gnorm_sum") ? "finite and >= " : "", want);
        return -1;
    }
    for (int i = 0; i < n_user && !bad; i++) {
        unsigned long long u;
        bad = fscanf(f, "%llu", &u) != 1;
        user[i] = u;
    }
    char tag[8] = "";
    bad = bad || fscanf(f, "%7s", tag) != 1 || strcmp(tag, "data") || fgetc(f) != '\n';
    ops_real *host = bad ? NULL : malloc(2 * n * sizeof(ops_real));
    bad = bad || !host || fread(host, sizeof(ops_real), 2 * n, f) != 2 * n;
    int extra = !bad && fgetc(f) != EOF;
    fclose(f);
    if (bad || extra) {
        free(host);
        snprintf(err, errlen, "%s: %s train state (expected %zu moments of %zu bytes after the header)", path,
                 extra ? "extended" : "truncated", 2 * n, sizeof(ops_real));
        return -1;
    }
    for (size_t i = 0; i < 2 * n; i++) /* AdamW's moments: finite, the second one never negative */
        if (!isfinite(host[i]) || (i >= n && host[i] < 0)) {
            snprintf(err, errlen, "%s: moment %s[%zu] is %g, expected a finite value%s", path, i < n ? "m" : "v",
                     i % n, (double)host[i], i < n ? "" : " >= 0");
            free(host);
            return -1;
        }
    /* this rank's slices of the whole state (one process: all of it) */
    for (int k = 0; k < 2; k++) {
        ops_real *local = k ? t->v : t->m;
        const ops_real *whole = host + k * n;
        ops_to_device(M->gpu, local, whole + t->shard_lo, t->shard_n * sizeof(ops_real));
        ops_to_device(M->gpu, local + t->shard_n, whole + t->tail_lo, (n - t->tail_lo) * sizeof(ops_real));
    }
    free(host);
    t->step = step;
    t->gnorm_sum = gsum;
    t->gnorm_max = gmax;
    t->gnorm_count = gcount;
    return 0;
}

#endif /* TRAIN_IMPLEMENTATION_DONE */
#endif /* TRAIN_IMPLEMENTATION */
