/* train.h - training a SmolModel: AdamW with fp32 master weights, linear warmup +
   cosine decay to a floor, global-norm gradient clipping, gradient accumulation,
   gradient-norm statistics, and the evaluation loop (validation loss, perplexity).

   USAGE
     #define TRAIN_IMPLEMENTATION    // with the other *_IMPLEMENTATION macros, in one .c file
     #include "train.h"

     TrainConfig tc = {0};          // zero = defaults (below)
     tc.steps = 200; tc.lr = 3e-3f;
     Trainer tr;
     train_init(&tr, &model, &tc);
     for (int s = 0; s < tc.steps; s++) {
         TrainStats st = train_step(&tr, next_batch, my_data);   // next_batch fills tokens/targets
         printf("%d loss %.3f lr %.2e gnorm %.2f\n", st.step, st.loss, st.lr, st.grad_norm);
     }
     double val = train_eval(&tr, val_batch, my_data, 8);      // mean token loss; exp() = ppl

   DEFAULTS: lr 3e-3 peak, min_lr_ratio 0.1 (floor = 0.1 lr), warmup 0 steps, beta1 0.9,
   beta2 0.95, eps 1e-8, weight_decay 0.1 on matrices only (norm scales and embeddings
   are not decayed unless decay_all is set), clip 1.0 (global L2 norm; < 0 disables),
   grad_accum 1.

   The loss of a step is the mean over all tokens of all micro-batches; gradients are
   of that mean. grad_norm is the global L2 norm before clipping.
*/
#ifndef TRAIN_H
#define TRAIN_H

#include "smollm.h"

typedef struct {
    float lr, min_lr_ratio;
    int warmup, steps;
    float beta1, beta2, eps, weight_decay;
    int decay_all;
    float clip;
    int grad_accum;
} TrainConfig;

typedef struct {
    int step;           /* 1-based index of the step just taken */
    float loss, lr, grad_norm;
    double seconds;     /* wall time of the step */
} TrainStats;

typedef struct {
    TrainConfig cfg;
    SmolModel *model;
    real_t *m, *v;      /* AdamW moments (backend memory) */
    real_t *gnorm_sq;   /* device scalar on the GPU */
    int step;
    /* running gradient-norm statistics */
    double gnorm_sum, gnorm_max;
    int gnorm_count;
} Trainer;

/* fills a micro-batch of B*T token ids and next-token targets (host arrays) */
typedef void (*BatchFn)(void *ctx, int *tokens, int *targets);

void train_config_resolve(TrainConfig *c);
float train_lr(const TrainConfig *c, int step); /* step counts from 0 */
void train_init(Trainer *t, SmolModel *m, const TrainConfig *c);
void train_free(Trainer *t);
TrainStats train_step(Trainer *t, BatchFn next_batch, void *ctx);
/* mean token loss over n_batches batches from next_batch (perplexity = exp of it) */
double train_eval(Trainer *t, BatchFn next_batch, void *ctx, int n_batches);
double train_now(void); /* monotonic seconds */

#endif /* TRAIN_H */

/* ======================================================================= */
#ifdef TRAIN_IMPLEMENTATION
#ifndef TRAIN_IMPLEMENTATION_DONE
#define TRAIN_IMPLEMENTATION_DONE

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double train_now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11; wall clock is fine at step granularity */
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void train_config_resolve(TrainConfig *c) {
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

float train_lr(const TrainConfig *c, int step) {
    if (step < c->warmup) return c->lr * (step + 1) / c->warmup;
    float floor = c->lr * c->min_lr_ratio;
    int decay = c->steps - c->warmup;
    if (decay <= 1) return c->lr;
    float p = (float)(step - c->warmup) / (decay - 1);
    if (p > 1) p = 1;
    return floor + 0.5f * (c->lr - floor) * (1 + cosf(3.14159265f * p));
}

void train_init(Trainer *t, SmolModel *m, const TrainConfig *c) {
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    train_config_resolve(&t->cfg);
    t->model = m;
    t->m = ops_alloc(m->gpu, m->n_params * sizeof(real_t));
    t->v = ops_alloc(m->gpu, m->n_params * sizeof(real_t));
    t->gnorm_sq = ops_alloc(m->gpu, sizeof(real_t));
}

void train_free(Trainer *t) {
    Gpu *g = t->model->gpu;
    ops_free(g, t->m);
    ops_free(g, t->v);
    ops_free(g, t->gnorm_sq);
    memset(t, 0, sizeof *t);
}

/* global L2 norm of the gradients, then AdamW on every tensor with its own decay */
static float train_update(Trainer *t, float lr) {
    SmolModel *M = t->model;
    const TrainConfig *c = &t->cfg;
    float b1c = 1 - powf(c->beta1, (float)t->step), b2c = 1 - powf(c->beta2, (float)t->step);
    double gnorm;
#ifndef ABLATE_NO_CUDA
    if (M->gpu) {
        gpu_memset0(M->gpu, t->gnorm_sq, sizeof(float));
        gpu_sumsq(M->gpu, t->gnorm_sq, M->grads, M->n_params);
        for (int i = 0; i < M->n_specs; i++) {
            const ParamSpec *p = &M->specs[i];
            float wd = (p->is_norm || p->is_embedding) && !c->decay_all ? 0 : c->weight_decay;
            gpu_adamw(M->gpu, M->params + p->offset, (char *)M->wc + p->offset * 2, M->grads + p->offset,
                      t->m + p->offset, t->v + p->offset, p->numel, lr, c->beta1, c->beta2, c->eps, wd,
                      b1c, b2c, t->gnorm_sq, c->clip > 0 ? c->clip : 0);
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
        const ParamSpec *p = &M->specs[i];
        real_t wd = (p->is_norm || p->is_embedding) && !c->decay_all ? 0 : c->weight_decay;
        real_t *w = M->params + p->offset, *g = M->grads + p->offset;
        real_t *m = t->m + p->offset, *v = t->v + p->offset;
        for (size_t j = 0; j < p->numel; j++) {
            real_t gj = g[j] * scale;
            m[j] = c->beta1 * m[j] + (1 - c->beta1) * gj;
            v[j] = c->beta2 * v[j] + (1 - c->beta2) * gj * gj;
            w[j] -= lr * wd * w[j]; /* decoupled weight decay */
            w[j] -= lr * (m[j] / b1c) / (sqrt(v[j] / b2c) + c->eps);
        }
    }
    return (float)gnorm;
}

TrainStats train_step(Trainer *t, BatchFn next_batch, void *ctx) {
    SmolModel *M = t->model;
    int N = M->B * M->T, A = t->cfg.grad_accum;
    int *tok = malloc(sizeof(int) * N), *tgt = malloc(sizeof(int) * N);
    TrainStats st = {0};
    double t0 = train_now(), loss = 0;
    ops_zero(M->gpu, M->grads, M->n_params * sizeof(real_t));
    for (int a = 0; a < A; a++) {
        next_batch(ctx, tok, tgt);
        int count = 0;
        for (int n = 0; n < N; n++) count += tgt[n] >= 0;
        /* gradient of the mean over all counted tokens of all micro-batches */
        loss += smollm_step(M, tok, tgt, count ? 1.0f / ((float)count * A) : 0.0f);
    }
    st.lr = train_lr(&t->cfg, t->step);
    t->step++;
    st.step = t->step;
    st.grad_norm = train_update(t, st.lr); /* on the GPU it also refreshes the bf16 copy */
    st.loss = (float)(loss / A);
    st.seconds = train_now() - t0;
    t->gnorm_sum += st.grad_norm;
    t->gnorm_count++;
    if (st.grad_norm > t->gnorm_max) t->gnorm_max = st.grad_norm;
    free(tok);
    free(tgt);
    return st;
}

double train_eval(Trainer *t, BatchFn next_batch, void *ctx, int n_batches) {
    SmolModel *M = t->model;
    int N = M->B * M->T;
    int *tok = malloc(sizeof(int) * N), *tgt = malloc(sizeof(int) * N);
    double sum = 0;
    long count = 0;
    for (int b = 0; b < n_batches; b++) {
        int c = 0;
        next_batch(ctx, tok, tgt);
        sum += smollm_eval(M, tok, tgt, &c);
        count += c;
    }
    free(tok);
    free(tgt);
    return count ? sum / count : 0;
}

#endif /* TRAIN_IMPLEMENTATION_DONE */
#endif /* TRAIN_IMPLEMENTATION */
