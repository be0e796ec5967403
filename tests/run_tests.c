/* tests/run_tests.c - the CPU test suite (make test).

   Built in double precision (-DABLATE_REAL=double) so that
   finite-difference gradient checks are meaningful:
     numeric  g_num = (L(x+h) - L(x-h)) / 2h,  h = 1e-5, central differences,
     L = sum(out * R) for a fixed random R (so every output element matters),
     pass when |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|) on every checked element
     (double rounding gives ~1e-10 here; a wrong term gives >1e-3).
   Then equivalences (GQA with kv=heads == MHA, window >= T == full causal,
   causality: changing token t+1 leaves outputs up to t unchanged), seeded init,
   parameter counts, a training run on real text, validation over the whole split (against a
   brute-force pass, bits per byte, ablate eval), and the CLI's refusals.

   usage: tests/run_tests [path/to/ablate-cpu] [--count-from LOG]...
   (--count-from adds the totals of another checker's log, e.g. the NVRTC compile check)
   Ends with the line "N passed, N failed".
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../train.h"
#include "../data.h"
#include "../gpu.h" /* in the CPU build: GpuTuning's parser alone */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
#include <dlfcn.h>

static const char *ablate_bin = "./ablate-cpu";

#include "check.h" /* report, random inputs, check_grad */

/* ---- op-level checks ---- */

typedef struct { int N, C, OC; ops_real *in, *w, *R, *out; } MatmulCtx;
static double matmul_loss(void *p) {
    MatmulCtx *c = p;
    op_matmul_forward(NULL, c->out, c->in, c->w, c->N, c->C, c->OC);
    return dot(c->out, c->R, (size_t)c->N * c->OC);
}
static void test_matmul(void) {
    MatmulCtx c = {5, 7, 6, rnd(35, 1), rnd(42, 1), rnd(30, 1), zeros(30)};
    ops_real *din = zeros(35), *dw = zeros(42);
    op_matmul_backward(NULL, din, dw, c.R, c.in, c.w, c.N, c.C, c.OC, 0);
    check_grad("matmul: d input", matmul_loss, &c, c.in, din, 35, 100);
    check_grad("matmul: d weight", matmul_loss, &c, c.w, dw, 42, 100);
    /* accumulate flags: din += and dw += */
    ops_real *din2 = zeros(35), *dw2 = zeros(42);
    for (int i = 0; i < 35; i++) din2[i] = 1;
    for (int i = 0; i < 42; i++) dw2[i] = 2;
    op_matmul_backward(NULL, din2, dw2, c.R, c.in, c.w, c.N, c.C, c.OC, 1);
    int ok = 1;
    for (int i = 0; i < 35; i++) ok &= fabs(din2[i] - 1 - din[i]) < 1e-12;
    for (int i = 0; i < 42; i++) ok &= fabs(dw2[i] - 2 - dw[i]) < 1e-12;
    report(ok, "matmul: accumulate into din and dw", NULL);
    free(c.in); free(c.w); free(c.R); free(c.out); free(din); free(dw); free(din2); free(dw2);
}

typedef struct { int N, C, V; int *tok; ops_real *wte, *R, *out; } EmbedCtx;
static double embed_loss(void *p) {
    EmbedCtx *c = p;
    op_embed_forward(NULL, c->out, c->tok, c->wte, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}
static void test_embed(void) {
    int tok[6] = {3, 1, 3, 0, 4, 3};
    EmbedCtx c = {6, 5, 5, tok, rnd(25, 1), rnd(30, 1), zeros(30)};
    ops_real *dw = zeros(25);
    op_embed_backward(NULL, dw, c.R, tok, c.N, c.C);
    check_grad("embedding: d weight (repeated tokens)", embed_loss, &c, c.wte, dw, 25, 100);
    free(c.wte); free(c.R); free(c.out); free(dw);
}

typedef struct { int N, C; ops_real *in, *w, *R, *out, *rstd; } NormCtx;
static double norm_loss(void *p) {
    NormCtx *c = p;
    op_rmsnorm_forward(NULL, c->out, c->rstd, c->in, c->w, c->N, c->C, 1e-5f);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}
static void test_rmsnorm(void) {
    NormCtx c = {4, 9, rnd(36, 1), rnd(9, 1), rnd(36, 1), zeros(36), zeros(4)};
    norm_loss(&c);
    ops_real *din = zeros(36), *dw = zeros(9);
    op_rmsnorm_backward(NULL, din, dw, c.R, c.in, c.w, c.rstd, c.N, c.C, 0);
    check_grad("rmsnorm: d input", norm_loss, &c, c.in, din, 36, 100);
    check_grad("rmsnorm: d scale", norm_loss, &c, c.w, dw, 9, 100);
    /* the fused residual add + norm is the composition of the two */
    ops_real *b = rnd(36, 1), *sum = zeros(36), *out2 = zeros(36), *r2 = zeros(4), *sum_ref = zeros(36);
    op_add_rmsnorm_forward(NULL, sum, out2, r2, c.in, b, c.w, c.N, c.C, 1e-5f);
    op_add(NULL, sum_ref, c.in, b, 36);
    op_rmsnorm_forward(NULL, c.out, c.rstd, sum_ref, c.w, c.N, c.C, 1e-5f);
    report(!memcmp(sum, sum_ref, 36 * sizeof(ops_real)) && !memcmp(out2, c.out, 36 * sizeof(ops_real)) &&
           !memcmp(r2, c.rstd, 4 * sizeof(ops_real)), "add+rmsnorm fused = add then rmsnorm", NULL);
    free(b); free(sum); free(out2); free(r2); free(sum_ref);
    free(c.in); free(c.w); free(c.R); free(c.out); free(c.rstd); free(din); free(dw);
}

typedef struct { int N, T, nh, hd; ops_real *x, *R, *tmp; } RopeCtx;
static double rope_loss(void *p) {
    RopeCtx *c = p;
    size_t n = (size_t)c->N * c->nh * c->hd;
    memcpy(c->tmp, c->x, n * sizeof(ops_real));
    op_rope_forward(NULL, c->tmp, c->N, c->T, c->nh, c->hd, 10000.0f);
    return dot(c->tmp, c->R, n);
}
static void test_rope(void) {
    RopeCtx c = {6, 3, 2, 8, rnd(96, 1), rnd(96, 1), zeros(96)};
    ops_real *g = malloc(96 * sizeof(ops_real));
    memcpy(g, c.R, 96 * sizeof(ops_real));
    op_rope_backward(NULL, g, c.N, c.T, c.nh, c.hd, 10000.0f);
    check_grad("rope: d input", rope_loss, &c, c.x, g, 96, 100);
    /* position 0 is the identity rotation; the norm of every pair is kept */
    memcpy(c.tmp, c.x, 96 * sizeof(ops_real));
    op_rope_forward(NULL, c.tmp, c.N, c.T, c.nh, c.hd, 10000.0f);
    int ok = 1;
    for (int i = 0; i < 16; i++) ok &= c.tmp[i] == c.x[i];
    for (int n = 0; n < 6 * 2; n++)
        for (int i = 0; i < 4; i++) {
            ops_real *a = c.x + n * 8, *b = c.tmp + n * 8;
            ok &= fabs(a[i] * a[i] + a[i + 4] * a[i + 4] - b[i] * b[i] - b[i + 4] * b[i + 4]) < 1e-12;
        }
    report(ok, "rope: identity at t=0, rotations keep pair norms", NULL);
    free(c.x); free(c.R); free(c.tmp); free(g);
}

/* the fused q|k|v rows: split = columns then op_rope_forward; merge is split's gradient */
typedef struct { int N, T, H, KV, hd; ops_real *x, *Rq, *Rk, *Rv, *q, *k, *v; } QkvCtx;
static double qkv_loss(void *p) {
    QkvCtx *c = p;
    op_qkv_split(NULL, c->q, c->k, c->v, c->x, c->N, c->T, c->H, c->KV, c->hd, 10000.0f);
    size_t nq = (size_t)c->N * c->H * c->hd, nk = (size_t)c->N * c->KV * c->hd;
    return dot(c->q, c->Rq, nq) + dot(c->k, c->Rk, nk) + dot(c->v, c->Rv, nk);
}
static void test_qkv_split(void) {
    enum { N = 6, T = 3, H = 3, KV = 1, hd = 8, P = (H + 2 * KV) * hd };
    QkvCtx c = {N, T, H, KV, hd, rnd(N * P, 1), rnd(N * H * hd, 1), rnd(N * KV * hd, 1), rnd(N * KV * hd, 1),
                zeros(N * H * hd), zeros(N * KV * hd), zeros(N * KV * hd)};
    ops_real *g = zeros(N * P);
    op_qkv_merge(NULL, g, c.Rq, c.Rk, c.Rv, N, T, H, KV, hd, 10000.0f);
    check_grad("qkv_split: d fused rows (merge)", qkv_loss, &c, c.x, g, N * P, N * P);
    /* against the unfused path: each block's columns, then op_rope_forward on q and k */
    ops_real q2[N * H * hd], k2[N * KV * hd];
    for (int n = 0; n < N; n++) {
        memcpy(q2 + n * H * hd, c.x + n * P, sizeof(ops_real) * H * hd);
        memcpy(k2 + n * KV * hd, c.x + n * P + H * hd, sizeof(ops_real) * KV * hd);
    }
    op_rope_forward(NULL, q2, N, T, H, hd, 10000.0f);
    op_rope_forward(NULL, k2, N, T, KV, hd, 10000.0f);
    op_qkv_split(NULL, c.q, c.k, c.v, c.x, N, T, H, KV, hd, 10000.0f);
    int ok = !memcmp(q2, c.q, sizeof q2) && !memcmp(k2, c.k, sizeof k2);
    for (int n = 0; n < N; n++) ok &= !memcmp(c.v + n * KV * hd, c.x + n * P + (H + KV) * hd, sizeof(ops_real) * KV * hd);
    report(ok, "qkv_split = column blocks, then RoPE on q and k", NULL);
    free(c.x); free(c.Rq); free(c.Rk); free(c.Rv); free(c.q); free(c.k); free(c.v); free(g);
}

typedef struct { int N, F; ops_real *gu, *R, *out; } SwiCtx;
static double swiglu_loss(void *p) {
    SwiCtx *c = p;
    op_swiglu_forward(NULL, c->out, c->gu, c->N, c->F);
    return dot(c->out, c->R, (size_t)c->N * c->F);
}
static void test_swiglu(void) {
    SwiCtx c = {4, 5, rnd(40, 2), rnd(20, 1), zeros(20)};
    ops_real *dgu = zeros(40);
    ops_real *act = zeros(20);
    op_swiglu_backward(NULL, dgu, act, c.R, c.gu, c.N, c.F);
    check_grad("swiglu (fused gate|up rows): d gate, d up", swiglu_loss, &c, c.gu, dgu, 40, 100);
    swiglu_loss(&c);
    report(memcmp(act, c.out, 20 * sizeof(ops_real)) == 0, "swiglu backward: recomputed act = forward", NULL);
    free(act);
    free(c.gu); free(c.R); free(c.out); free(dgu);
}

typedef struct { int N, C, V; int *tgt; ops_real *h, *wte, *losses; } XentCtx;
static double xent_loss(void *p) {
    XentCtx *c = p;
    op_xent_forward(NULL, c->losses, NULL, c->h, c->wte, c->tgt, c->N, c->C, c->V);
    double s = 0;
    for (int i = 0; i < c->N; i++) s += c->losses[i];
    return 0.5 * s; /* dloss = 0.5 below */
}
static void test_xent(void) {
    int tgt[5] = {2, 0, -1, 6, 2};
    XentCtx c = {5, 4, 7, tgt, rnd(20, 1), rnd(28, 1), zeros(5)};
    ops_real *dh = zeros(20), *dw = zeros(28), *l2 = zeros(5);
    op_xent_backward(NULL, l2, dh, dw, c.h, c.wte, tgt, c.N, c.C, c.V, 0.5f);
    check_grad("cross-entropy (tied head): d hidden", xent_loss, &c, c.h, dh, 20, 100);
    check_grad("cross-entropy (tied head): d embedding", xent_loss, &c, c.wte, dw, 28, 100);
    xent_loss(&c);
    int ok = l2[2] == 0;
    for (int i = 0; i < 5; i++) ok &= fabs(l2[i] - c.losses[i]) < 1e-12;
    for (int j = 0; j < 4; j++) ok &= dh[2 * 4 + j] == 0;
    report(ok, "cross-entropy: fused = forward losses, ignored target", NULL);
    /* top-1 hits: a row's hit is 1 exactly when its target holds the largest logit */
    {
        ops_real corr[5], logit[7];
        int tg[5] = {0, 0, -1, 0, 0}, want[5];
        for (int n = 0; n < 5; n++) {
            int best = 0;
            for (int j = 0; j < 7; j++) {
                logit[j] = 0;
                for (int k = 0; k < 4; k++) logit[j] += c.h[n * 4 + k] * c.wte[j * 4 + k];
                if (logit[j] > logit[best]) best = j;
            }
            if (tg[n] >= 0) tg[n] = n % 2 ? best : (best + 1) % 7; /* odd rows hit, even rows miss */
            want[n] = tg[n] >= 0 && n % 2;
        }
        op_xent_forward(NULL, c.losses, corr, c.h, c.wte, tg, c.N, c.C, c.V);
        int okc = 1;
        for (int n = 0; n < 5; n++) okc &= corr[n] == want[n];
        report(okc, "cross-entropy: top-1 hits (accuracy)", NULL);
    }
    free(c.h); free(c.wte); free(c.losses); free(dh); free(dw); free(l2);
}

/* the attention core on its own */
typedef struct { int B, T, H, KV, hd, W; ops_real *q, *k, *v, *R, *out, *lse; } CoreCtx;
static double core_loss(void *p) {
    CoreCtx *c = p;
    op_attention_forward(NULL, c->out, c->lse, c->q, c->k, c->v, c->B, c->T, c->H, c->KV, c->hd, c->W);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->H * c->hd);
}
static void test_attention_core(int H, int KV, int W) {
    CoreCtx c = {2, 7, H, KV, 4, W, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = (size_t)c.B * c.T * H * c.hd, nk = (size_t)c.B * c.T * KV * c.hd;
    c.q = rnd(nq, 1); c.k = rnd(nk, 1); c.v = rnd(nk, 1); c.R = rnd(nq, 1);
    c.out = zeros(nq); c.lse = zeros((size_t)c.B * H * c.T);
    core_loss(&c);
    ops_real *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk);
    op_attention_backward(NULL, dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, c.B, c.T, H, KV, c.hd, W);
    char name[96];
    snprintf(name, sizeof name, "attention core H=%d KV=%d window=%d: dq", H, KV, W);
    check_grad(name, core_loss, &c, c.q, dq, nq, 120);
    snprintf(name, sizeof name, "attention core H=%d KV=%d window=%d: dk", H, KV, W);
    check_grad(name, core_loss, &c, c.k, dk, nk, 120);
    snprintf(name, sizeof name, "attention core H=%d KV=%d window=%d: dv", H, KV, W);
    check_grad(name, core_loss, &c, c.v, dv, nk, 120);
    free(c.q); free(c.k); free(c.v); free(c.R); free(c.out); free(c.lse); free(dq); free(dk); free(dv);
}

/* a whole attention block: projections, QK-norm, RoPE, core, output projection */
typedef struct {
    AttnConfig cfg; int B, T;
    ops_real *x, *w, *R, *out, *act, *stat, *scr;
    AttnActs a; AttnScratch s;
} BlockCtx;
static double block_loss(void *p) {
    BlockCtx *c = p;
    attn_forward(NULL, &c->cfg, c->w, &c->a, c->x, c->out, c->B, c->T);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->cfg.d_model);
}
/* any config (d_model 8 unless set); norm scales drawn around 1 so their gradients show */
static void block_setup_cfg(BlockCtx *c, AttnConfig cfg) {
    char err[256];
    memset(c, 0, sizeof *c);
    if (!cfg.d_model) cfg.d_model = 8;
    c->cfg = cfg;
    if (attn_resolve(&c->cfg, err, sizeof err)) { printf("setup: %s\n", err); exit(1); }
    c->B = 2; c->T = 6;
    size_t d = c->cfg.d_model, N = (size_t)c->B * c->T, ae, se, np = attn_param_count(&c->cfg);
    attn_act_sizes(&c->cfg, c->B, c->T, &ae, &se);
    c->x = rnd(N * d, 1); c->w = rnd(np, 0.5); c->R = rnd(N * d, 1); c->out = zeros(N * d);
    AttnParamSpec ps[ATTN_MAX_PARAMS];
    int n = attn_param_specs(&c->cfg, ps);
    for (int i = 0; i < n; i++)
        if (ps[i].is_norm) for (size_t j = 0; j < ps[i].numel; j++) c->w[ps[i].offset + j] = 1 + 0.3 * nrand();
    c->act = zeros(ae); c->stat = zeros(se); c->scr = zeros(attn_scratch_elems(&c->cfg, c->B, c->T));
    attn_acts_bind(&c->cfg, &c->a, NULL, c->act, c->stat, c->B, c->T);
    attn_scratch_bind(&c->cfg, &c->s, NULL, c->scr, c->B, c->T);
}
static void block_setup(BlockCtx *c, AttnKind kind, int H, int KV, int W, int qk) {
    AttnConfig cfg = {0};
    cfg.kind = kind; cfg.d_model = 8; cfg.n_heads = H; cfg.n_kv_heads = KV;
    cfg.head_dim = 4; cfg.window = W; cfg.qk_norm = qk; cfg.rope_theta = 100.0f;
    block_setup_cfg(c, cfg);
}
static void block_free(BlockCtx *c) { free(c->x); free(c->w); free(c->R); free(c->out); free(c->act); free(c->stat); free(c->scr); }

static void block_grad(BlockCtx *c, const char *label) {
    size_t N = (size_t)c->B * c->T, d = c->cfg.d_model, np = attn_param_count(&c->cfg);
    block_loss(c);
    ops_real *dx = zeros(N * d), *dw = zeros(np);
    attn_backward(NULL, &c->cfg, c->w, dw, &c->a, &c->s, c->x, c->R, dx, c->B, c->T);
    char name[128];
    snprintf(name, sizeof name, "%s: dx", label);
    check_grad(name, block_loss, c, c->x, dx, N * d, 150);
    snprintf(name, sizeof name, "%s: dW", label);
    check_grad(name, block_loss, c, c->w, dw, np, 300);
    free(dx); free(dw);
}

static void test_attention_block(AttnKind kind, int H, int KV, int W, int qk) {
    BlockCtx c;
    block_setup(&c, kind, H, KV, W, qk);
    char name[96];
    snprintf(name, sizeof name, "attn block %s H=%d KV=%d W=%d qk_norm=%d", attn_kind_name(kind), H, c.cfg.n_kv_heads, W, qk);
    block_grad(&c, name);
    block_free(&c);
}

/* GQA with kv_heads = heads is MHA; a window of at least T is full attention */
static void test_attention_equivalences(void) {
    BlockCtx a, b;
    block_setup(&a, ATTN_MHA, 2, 0, 0, 0);
    block_setup(&b, ATTN_GQA, 2, 2, 0, 0);
    size_t n = (size_t)a.B * a.T * 8;
    memcpy(b.w, a.w, attn_param_count(&a.cfg) * sizeof(ops_real));
    memcpy(b.x, a.x, n * sizeof(ops_real));
    int ok = attn_param_count(&a.cfg) == attn_param_count(&b.cfg);
    block_loss(&a);
    block_loss(&b);
    ok &= memcmp(a.out, b.out, n * sizeof(ops_real)) == 0;
    report(ok, "GQA with kv_heads = heads equals MHA exactly", NULL);
    block_free(&b);
    for (int W = a.T; W <= a.T + 3; W += 3) {
        block_setup(&b, ATTN_MHA, 2, 0, W, 0);
        memcpy(b.w, a.w, attn_param_count(&a.cfg) * sizeof(ops_real));
        memcpy(b.x, a.x, n * sizeof(ops_real));
        block_loss(&b);
        char name[96];
        snprintf(name, sizeof name, "sliding window W=%d >= T=%d equals full causal", W, a.T);
        report(memcmp(a.out, b.out, n * sizeof(ops_real)) == 0, name, NULL);
        block_free(&b);
    }
    block_free(&a);
}

/* changing the input at positions t+1.. must leave outputs 0..t untouched (expect_leak = 1:
   the opposite, for mechanisms documented as non-causal) */
static void test_causality_cfg(AttnConfig cfg, const char *label, int expect_leak) {
    BlockCtx c;
    block_setup_cfg(&c, cfg);
    size_t d = c.cfg.d_model, n = (size_t)c.B * c.T * d;
    block_loss(&c);
    ops_real *ref = malloc(n * sizeof(ops_real));
    memcpy(ref, c.out, n * sizeof(ops_real));
    int same = 1, changed = 1, t = 3;
    for (int b = 0; b < c.B; b++)
        for (int s = t + 1; s < c.T; s++)
            for (size_t i = 0; i < d; i++) c.x[((size_t)b * c.T + s) * d + i] += 1.0;
    block_loss(&c);
    for (int b = 0; b < c.B; b++) {
        size_t o = (size_t)b * c.T * d;
        same &= memcmp(ref + o, c.out + o, (t + 1) * d * sizeof(ops_real)) == 0;
        changed &= memcmp(ref + o + (t + 1) * d, c.out + o + (t + 1) * d, d * sizeof(ops_real)) != 0;
    }
    char name[128];
    snprintf(name, sizeof name, expect_leak ? "leaks the future, as documented: %s" : "no future leak: %s", label);
    report(changed && (expect_leak ? !same : same), name, NULL);
    free(ref);
    block_free(&c);
}

static void test_causality(AttnKind kind, int KV, int W, int qk) {
    AttnConfig cfg = {0};
    cfg.kind = kind; cfg.n_heads = 2; cfg.n_kv_heads = KV; cfg.head_dim = 4; cfg.window = W;
    cfg.qk_norm = qk; cfg.rope_theta = 100.0f;
    char label[96];
    snprintf(label, sizeof label, "%s W=%d qk_norm=%d", attn_kind_name(kind), W, qk);
    test_causality_cfg(cfg, label, 0);
}

/* ---- MLA ---- */
static AttnConfig mla_cfg(int rq, int vdim, int W) {
    AttnConfig c = {0};
    c.kind = ATTN_MLA; c.d_model = 8; c.n_heads = 2; c.head_dim = 4; c.rope_dim = 2;
    c.latent_dim = 5; c.q_latent_dim = rq; c.v_head_dim = vdim; c.window = W; c.rope_theta = 100.0f;
    return c;
}

static void test_mla(void) {
    /* v narrower than q.k (v padded), wider (q and k padded, q rescaled), equal; with and without
       the query latent; with a window */
    int cases[][3] = {{0, 3, 0}, {3, 3, 0}, {0, 6, 0}, {3, 6, 3}, {3, 4, 0}};
    for (int i = 0; i < 5; i++) {
        BlockCtx c;
        block_setup_cfg(&c, mla_cfg(cases[i][0], cases[i][1], cases[i][2]));
        char name[96];
        snprintf(name, sizeof name, "attn block mla q_latent=%d v_dim=%d (qk 4) W=%d", cases[i][0], cases[i][1], cases[i][2]);
        block_grad(&c, name);
        /* the absorbed inference form gives the same outputs */
        size_t n = (size_t)c.B * c.T * c.cfg.d_model;
        ops_real *out2 = zeros(n);
        block_loss(&c);
        attn_mla_absorbed_forward(&c.cfg, c.w, c.x, out2, c.B, c.T);
        double worst = 0;
        for (size_t j = 0; j < n; j++) worst = fmax(worst, fabs(out2[j] - c.out[j]));
        char d[64];
        snprintf(d, sizeof d, "max |diff| %.1e", worst);
        snprintf(name, sizeof name, "mla absorbed form = training form (q_latent=%d v_dim=%d W=%d)", cases[i][0], cases[i][1], cases[i][2]);
        report(worst <= 1e-10, name, d);
        free(out2);
        block_free(&c);
    }
    test_causality_cfg(mla_cfg(0, 3, 0), "mla", 0);
    test_causality_cfg(mla_cfg(3, 6, 2), "mla q_latent=3 v_dim=6 W=2", 0);
    {   /* qk_norm: per-head RMSNorm of the rotated q and k; gradients (the norm scales
           included), causality, the two scale vectors, and a refusal when v is wider than q.k. On a
           stream of its own: the checks after this one keep the inputs they always drew */
        uint64_t saved_rng = check_rng;
        check_rng = 0x9E3779B97F4A7C15ull;
        int qcases[][3] = {{0, 4, 0}, {3, 3, 2}};
        for (int i = 0; i < 2; i++) {
            AttnConfig qc = mla_cfg(qcases[i][0], qcases[i][1], qcases[i][2]);
            qc.qk_norm = 1;
            BlockCtx c;
            block_setup_cfg(&c, qc);
            char name[96];
            snprintf(name, sizeof name, "attn block mla qk_norm q_latent=%d v_dim=%d W=%d", qcases[i][0], qcases[i][1],
                     qcases[i][2]);
            block_grad(&c, name);
            ops_real *o2 = zeros((size_t)c.B * c.T * c.cfg.d_model);
            report(attn_mla_absorbed_forward(&c.cfg, c.w, c.x, o2, c.B, c.T) == -1,
                   "mla qk_norm: no absorbed form (-1)", "");
            free(o2);
            block_free(&c);
        }
        AttnConfig qc = mla_cfg(0, 3, 0), plain = qc;
        qc.qk_norm = 1;
        test_causality_cfg(qc, "mla qk_norm", 0);
        char e2[256] = "";
        attn_resolve(&qc, e2, sizeof e2);
        attn_resolve(&plain, e2, sizeof e2);
        AttnParamSpec ps[ATTN_MAX_PARAMS];
        int np = attn_param_specs(&qc, ps);
        report(attn_param_count(&qc) == attn_param_count(&plain) + 8 && !strcmp(ps[np - 1].name, "k_norm.weight") &&
               ps[np - 1].is_norm && !strcmp(ps[np - 2].name, "q_norm.weight"),
               "mla qk_norm adds q_norm, k_norm [head_dim] scales", "");
        AttnConfig wide = mla_cfg(0, 6, 0);
        wide.qk_norm = 1;
        report(attn_resolve(&wide, e2, sizeof e2) && strstr(e2, "v_head_dim 6 <= head_dim 4"),
               "mla qk_norm refuses v_head_dim > head_dim, naming both", e2);
        check_rng = saved_rng;
    }

    /* parameter count and KV bytes at the SmolLM2-135M shape: q_proj 9*64*576, kv_a 320*576,
       kv_a_layernorm 288, kv_b 9*(32+64)*288, o_proj 576*576; cache (288 + 32) bf16 */
    AttnConfig a = {0};
    char err[256];
    a.kind = ATTN_MLA;
    attn_resolve(&a, err, sizeof err);
    size_t want = 9 * 64 * 576 + 320 * 576 + 288 + 9 * 96 * 288 + 576 * 576;
    AttnConfig aq = a;
    aq.q_latent_dim = 96; /* q_a 96*576, q_a_layernorm 96, q_b 576*96 instead of q_proj */
    size_t want_q = want - 9 * 64 * 576 + 96 * 576 + 96 + 576 * 96;
    char d[160];
    snprintf(d, sizeof d, "params %zu (want %zu), with q latent %zu (want %zu), kv %zu B/token",
             attn_param_count(&a), want, attn_param_count(&aq), want_q, attn_kv_bytes_per_token(&a, 2));
    report(a.latent_dim == 288 && a.rope_dim == 32 && a.v_head_dim == 64 && attn_param_count(&a) == want &&
           attn_param_count(&aq) == want_q && attn_kv_bytes_per_token(&a, 2) == 640 &&
           attn_kv_bytes_per_token(&aq, 2) == 640, "mla at SmolLM2-135M shape: params, KV bytes", d);
    AttnConfig bad = mla_cfg(0, 3, 0);
    bad.rope_dim = 3;
    report(attn_resolve(&bad, err, sizeof err) == -1 && strstr(err, "rope_dim 3 must be even"), "mla refuses an odd rope_dim", err);
}

/* ---- MGA ---- */
static AttnConfig mga_cfg(int H, int KV, int W, int gate, int faithful) {
    AttnConfig c = {0};
    c.kind = ATTN_MGA; c.d_model = 8; c.n_heads = H; c.n_kv_heads = KV; c.head_dim = 4;
    c.window = W; c.mga_gate = gate; c.mga_faithful = faithful;
    return c;
}

static void test_mga(void) {
    int cases[][5] = {{2, 0, 0, 0, 0}, {2, 1, 0, 1, 0}, {4, 2, 3, 1, 0}, {2, 0, 0, 0, 1}, {2, 1, 3, 1, 1}};
    for (int i = 0; i < 5; i++) {
        BlockCtx c;
        int *k = cases[i];
        block_setup_cfg(&c, mga_cfg(k[0], k[1], k[2], k[3], k[4]));
        char name[96];
        snprintf(name, sizeof name, "attn block mga H=%d KV=%d W=%d gate=%d faithful=%d", k[0], c.cfg.n_kv_heads, k[2], k[3], k[4]);
        block_grad(&c, name);
        block_free(&c);
    }
    test_causality_cfg(mga_cfg(2, 0, 0, 0, 0), "mga (causal default)", 0);
    test_causality_cfg(mga_cfg(2, 1, 3, 1, 0), "mga (causal default) KV=1 W=3 gate", 0);
    test_causality_cfg(mga_cfg(2, 0, 0, 0, 1), "mga faithful (whole-sequence fitness)", 1);
    /* the gate's centred conv alone leaks too: with a window of 1 every row attends only to
       itself (its fitness no longer matters), so only the conv can carry t+1 */
    test_causality_cfg(mga_cfg(2, 0, 1, 1, 1), "mga faithful W=1 (centred gate conv)", 1);
    /* prefix statistics: the causal outputs for tokens 0..3 of a 6-token sequence are those of
       the 4-token sequence alone (the faithful ones are not: its 1/T and S see the whole) */
    for (int faithful = 0; faithful <= 1; faithful++) {
        BlockCtx a, b;
        block_setup_cfg(&a, mga_cfg(2, 1, 0, 1, faithful));
        block_setup_cfg(&b, mga_cfg(2, 1, 0, 1, faithful));
        size_t d = 8, np = attn_param_count(&a.cfg);
        int T2 = 4;
        memcpy(b.w, a.w, np * sizeof(ops_real));
        b.T = T2;
        attn_acts_bind(&b.cfg, &b.a, NULL, b.act, b.stat, b.B, b.T);
        for (int s = 0; s < a.B; s++)
            memcpy(b.x + (size_t)s * T2 * d, a.x + (size_t)s * a.T * d, T2 * d * sizeof(ops_real));
        block_loss(&a);
        attn_forward(NULL, &b.cfg, b.w, &b.a, b.x, b.out, b.B, b.T);
        double worst = 0;
        for (int s = 0; s < a.B; s++)
            for (size_t i = 0; i < T2 * d; i++)
                worst = fmax(worst, fabs(a.out[(size_t)s * a.T * d + i] - b.out[(size_t)s * T2 * d + i]));
        char dd[96];
        snprintf(dd, sizeof dd, "max |diff| %.1e", worst);
        report(faithful ? worst > 1e-6 : worst <= 1e-12,
               faithful ? "mga faithful: a prefix's outputs change with the sequence length"
                        : "mga causal (gate on): a prefix's outputs equal the prefix run alone", dd);
        block_free(&a);
        block_free(&b);
    }
}

/* MGA's O(T) decomposition (the GPU's path) against the literal equations: same outputs
   and gradients up to the 1e-8 the decomposition drops from the correlation, and its own
   finite-difference gradients */
static void test_mga_decomposed(void) {
    int cases[][5] = {{2, 0, 0, 0, 0}, {4, 2, 3, 0, 0}, {2, 1, 0, 1, 0}, {4, 1, 2, 1, 0}, /* H, KV, W, faithful, gate */
                      {2, 0, 0, 0, 1}, {4, 2, 3, 1, 1}};
    for (int i = 0; i < 6; i++) {
        int *k = cases[i];
        BlockCtx a, b;
        AttnConfig ca = mga_cfg(k[0], k[1], k[2], k[4], k[3]), cb = ca;
        cb.mga_decomposed = 1;
        block_setup_cfg(&a, ca);
        block_setup_cfg(&b, cb);
        size_t N = (size_t)a.B * a.T, d = 8, np = attn_param_count(&a.cfg);
        memcpy(b.w, a.w, np * sizeof(ops_real));
        memcpy(b.x, a.x, N * d * sizeof(ops_real));
        memcpy(b.R, a.R, N * d * sizeof(ops_real));
        double la = block_loss(&a), lb = block_loss(&b), worst = max_abs_diff(a.out, b.out, N * d);
        ops_real *dxa = zeros(N * d), *dwa = zeros(np), *dxb = zeros(N * d), *dwb = zeros(np);
        attn_backward(NULL, &a.cfg, a.w, dwa, &a.a, &a.s, a.x, a.R, dxa, a.B, a.T);
        attn_backward(NULL, &b.cfg, b.w, dwb, &b.a, &b.s, b.x, b.R, dxb, b.B, b.T);
        double gw = 0, gx = 0;
        for (size_t j = 0; j < N * d; j++) gx = fmax(gx, fabs(dxa[j] - dxb[j]));
        for (size_t j = 0; j < np; j++) gw = fmax(gw, fabs(dwa[j] - dwb[j]));
        char name[96], dd[128];
        snprintf(name, sizeof name, "mga decomposed = literal H=%d KV=%d W=%d faithful=%d gate=%d", k[0],
                 b.cfg.n_kv_heads, k[2], k[3], k[4]);
        snprintf(dd, sizeof dd, "out %.1e, dx %.1e, dW %.1e (loss %.6f)", worst, gx, gw, lb);
        report(worst <= 1e-6 && gx <= 1e-6 && gw <= 1e-6 && fabs(la - lb) <= 1e-6, name, dd);
        snprintf(name, sizeof name, "attn block mga decomposed H=%d KV=%d W=%d faithful=%d gate=%d", k[0],
                 b.cfg.n_kv_heads, k[2], k[3], k[4]);
        block_grad(&b, name);
        free(dxa); free(dwa); free(dxb); free(dwb);
        block_free(&a);
        block_free(&b);
    }
    AttnConfig c = mga_cfg(2, 0, 0, 0, 0);
    c.mga_decomposed = 1;
    test_causality_cfg(c, "mga decomposed (causal default)", 0);
}

/* DSA: with top-k >= T every causal key is selected, so the block is GQA plus an indexer
   whose loss does not depend on it (its gradients come from the KL term only) */
static AttnConfig dsa_cfg(int topk, int KV) {
    AttnConfig c = {0};
    c.kind = ATTN_DSA; c.d_model = 8; c.n_heads = 4; c.n_kv_heads = KV; c.head_dim = 4; c.rope_theta = 100.0f;
    c.topk = topk; c.indexer_heads = 2; c.indexer_dim = 4;
    return c;
}
/* the GPU's head widths (attn/dense.h attn_gpu_width_check): multiples of 8 from 32 to 256 for
   the flash-kernel rooms, MLA on max(head_dim, v_head_dim); a refusal names the value and the
   widths that would run */
static void test_gpu_widths(void) {
    static const int yes[] = {32, 40, 48, 64, 72, 96, 128, 136, 192, 256};
    static const int no[] = {24, 30, 36, 68, 100, 264, 512};
    static const char *near[] = {"32 would run", "32 would run", "32 or 40", "64 or 72", "96 or 104",
                                 "256 would run", "256 would run"};
    static const AttnKind kinds[] = {ATTN_MHA, ATTN_GQA, ATTN_MGA, ATTN_MLA};
    for (int ki = 0; ki < 4; ki++) {
        int ok = 1;
        char e[256] = "", bad[300] = "";
        for (int i = 0; i < (int)(sizeof yes / sizeof yes[0]); i++) {
            AttnConfig c = {0};
            c.kind = kinds[ki]; c.n_heads = 4; c.n_kv_heads = kinds[ki] == ATTN_MHA ? 4 : 2;
            c.head_dim = yes[i]; c.d_model = 4 * yes[i]; c.rope_theta = 1e4f; c.latent_dim = 64;
            if (attn_resolve(&c, e, sizeof e) || attn_gpu_supported(&c, e, sizeof e)) {
                ok = 0;
                snprintf(bad, sizeof bad, "hd %d refused: %s", yes[i], e);
            }
        }
        for (int i = 0; i < (int)(sizeof no / sizeof no[0]); i++) {
            AttnConfig c = {0};
            char want[16];
            c.kind = kinds[ki]; c.n_heads = 4; c.n_kv_heads = kinds[ki] == ATTN_MHA ? 4 : 2;
            c.head_dim = no[i]; c.d_model = 4 * no[i]; c.rope_theta = 1e4f; c.latent_dim = 64;
            snprintf(want, sizeof want, " %d ", no[i]);
            e[0] = 0;
            if (attn_resolve(&c, e, sizeof e)) { ok = 0; snprintf(bad, sizeof bad, "hd %d: resolve: %s", no[i], e); }
            else if (!attn_gpu_supported(&c, e, sizeof e) || !strstr(e, want) || !strstr(e, near[i]) ||
                     !strstr(e, "multiple of 8 from 32 to 256")) {
                ok = 0;
                snprintf(bad, sizeof bad, "hd %d: accepted or unclear: '%s'", no[i], e);
            }
        }
        char what[96];
        snprintf(what, sizeof what, "%s on the GPU: head dims 32..256 step 8 accepted, others refused naming "
                 "the value and what runs", attn_kind_name(kinds[ki]));
        report(ok, what, bad);
    }
    {   /* MLA: q.k and v widths differ; the core's width is the larger */
        AttnConfig c = {0};
        char e[256] = "", e2[256] = "";
        c.kind = ATTN_MLA; c.n_heads = 8; c.n_kv_heads = 8; c.d_model = 576; c.head_dim = 72; c.v_head_dim = 64;
        c.rope_theta = 1e4f; c.latent_dim = 144;
        int ok = !attn_resolve(&c, e, sizeof e) && !attn_gpu_supported(&c, e, sizeof e);
        c.v_head_dim = 96;
        ok &= !attn_gpu_supported(&c, e, sizeof e);
        c.v_head_dim = 300;
        ok &= attn_gpu_supported(&c, e2, sizeof e2) && strstr(e2, "v_head_dim 300") && strstr(e2, "256 would run");
        report(ok, "mla on the GPU: qk 72 with v 64 and v 96 accepted, v 300 refused naming it", e[0] ? e : e2);
    }
    {   /* DSA: the sparse kernels stop at 256 (attn/dsa.cu.h, HEAD WIDTHS); a refusal names the
           value, the rule, the nearest width that runs and the CPU */
        static const int dyes[] = {32, 40, 48, 56, 64, 72, 80, 96, 104, 112, 120, 128, 136, 192, 200, 256};
        static const int dno[] = {24, 36, 68, 100, 260, 264, 512};
        static const char *dnear[] = {"32 would run", "32 or 40", "64 or 72", "96 or 104", "256 would run",
                                      "256 would run", "256 would run"};
        int ok = 1;
        char e[512] = "", bad[600] = "";
        for (int i = 0; i < (int)(sizeof dyes / sizeof dyes[0]); i++) {
            AttnConfig c = dsa_cfg(64, 2);
            c.head_dim = dyes[i]; c.d_model = 4 * dyes[i]; c.indexer_dim = 64;
            if (attn_resolve(&c, e, sizeof e) || attn_gpu_supported(&c, e, sizeof e)) {
                ok = 0;
                snprintf(bad, sizeof bad, "hd %d refused: %s", dyes[i], e);
            }
        }
        for (int i = 0; i < (int)(sizeof dno / sizeof dno[0]); i++) {
            AttnConfig c = dsa_cfg(64, 2);
            char want[24];
            c.head_dim = dno[i]; c.d_model = 4 * dno[i]; c.indexer_dim = 64;
            snprintf(want, sizeof want, "head_dim %d ", dno[i]);
            e[0] = 0;
            if (attn_resolve(&c, e, sizeof e)) { ok = 0; snprintf(bad, sizeof bad, "hd %d: resolve: %s", dno[i], e); }
            else if (!attn_gpu_supported(&c, e, sizeof e) || !strstr(e, want) || !strstr(e, dnear[i]) ||
                     !strstr(e, "multiple of 8 from 32 to 256") || !strstr(e, "--device cpu")) {
                ok = 0;
                snprintf(bad, sizeof bad, "hd %d: accepted or unclear: '%s'", dno[i], e);
            }
        }
        report(ok, "dsa on the GPU: head dims 32..256 step 8 accepted (72, 96, 48: the guide's), past 256 and "
               "non-multiples of 8 refused naming the value, what runs and the CPU", bad);
    }
}
static void test_dsa(void) {
    for (int KV = 1; KV <= 2; KV++) {
        BlockCtx c, g;
        block_setup_cfg(&c, dsa_cfg(6, KV)); /* T = 6: everything selected */
        AttnConfig gc = dsa_cfg(6, KV);
        gc.kind = ATTN_GQA;
        block_setup_cfg(&g, gc);
        size_t N = (size_t)c.B * c.T, d = 8, np = attn_param_count(&c.cfg), ngqa = attn_param_count(&g.cfg);
        memcpy(g.w, c.w, ngqa * sizeof(ops_real)); /* the indexer's tensors come after GQA's */
        memcpy(g.x, c.x, N * d * sizeof(ops_real));
        block_loss(&c);
        block_loss(&g);
        double worst = max_abs_diff(c.out, g.out, N * d);
        char name[96], dd[96];
        snprintf(dd, sizeof dd, "max |diff| %.1e", worst);
        snprintf(name, sizeof name, "dsa with topk >= T equals gqa (KV=%d)", KV);
        report(worst <= 1e-12, name, dd);
        ops_real *dx = zeros(N * d), *dw = zeros(np);
        block_loss(&c);
        attn_backward(NULL, &c.cfg, c.w, dw, &c.a, &c.s, c.x, c.R, dx, c.B, c.T);
        snprintf(name, sizeof name, "attn block dsa topk>=T KV=%d: dx", KV);
        check_grad(name, block_loss, &c, c.x, dx, N * d, 150);
        snprintf(name, sizeof name, "attn block dsa topk>=T KV=%d: dW (attention)", KV);
        check_grad(name, block_loss, &c, c.w, dw, ngqa, 300);
        double gi = 0;
        for (size_t i = ngqa; i < np; i++) gi += fabs(dw[i]);
        snprintf(dd, sizeof dd, "sum |dW| over the indexer %.2e", gi);
        snprintf(name, sizeof name, "dsa KV=%d: the indexer learns (from its KL term)", KV);
        report(gi > 1e-8 && isfinite(gi), name, dd);
        free(dx); free(dw);
        block_free(&c);
        block_free(&g);
    }
    test_causality_cfg(dsa_cfg(2, 1), "dsa topk=2", 0);
    {   /* the dense warm-up: GQA's outputs and attention gradients with a real top-k (2 of 6),
           the indexer still learning */
        BlockCtx c, g;
        block_setup_cfg(&c, dsa_cfg(2, 1));
        c.a.dsa_dense = 1; /* the stage, as attn_at_step sets it during the warm-up */
        AttnConfig gc = dsa_cfg(2, 1);
        gc.kind = ATTN_GQA;
        block_setup_cfg(&g, gc);
        size_t N = (size_t)c.B * c.T, d = 8, np = attn_param_count(&c.cfg), ngqa = attn_param_count(&g.cfg);
        memcpy(g.w, c.w, ngqa * sizeof(ops_real));
        memcpy(g.x, c.x, N * d * sizeof(ops_real));
        memcpy(g.R, c.R, N * d * sizeof(ops_real));
        ops_real *dxc = zeros(N * d), *dwc = zeros(np), *dxg = zeros(N * d), *dwg = zeros(ngqa);
        block_loss(&c);
        block_loss(&g);
        attn_backward(NULL, &c.cfg, c.w, dwc, &c.a, &c.s, c.x, c.R, dxc, c.B, c.T);
        attn_backward(NULL, &g.cfg, g.w, dwg, &g.a, &g.s, g.x, g.R, dxg, g.B, g.T);
        double e = 0, gi = 0;
        for (size_t i = 0; i < N * d; i++) e = fmax(e, fabs(c.out[i] - g.out[i]) + fabs(dxc[i] - dxg[i]));
        for (size_t i = 0; i < ngqa; i++) e = fmax(e, fabs(dwc[i] - dwg[i]));
        for (size_t i = ngqa; i < np; i++) gi += fabs(dwc[i]);
        char dd[96];
        snprintf(dd, sizeof dd, "max |diff| %.1e, indexer sum |dW| %.2e", e, gi);
        report(e <= 1e-12 && gi > 1e-8, "dsa dense warm-up (topk 2 of 6) = gqa; the indexer learns", dd);
        free(dxc); free(dwc); free(dxg); free(dwg);
        block_free(&c);
        block_free(&g);
    }
    {   /* the stage schedule (the room's at_step): warm-up, then k from 100 to 512 over 4 steps in
           multiples of 64; a change is reported (a CUDA graph is then re-captured) */
        AttnConfig sc = dsa_cfg(512, 1);
        sc.dsa_warmup = 2; sc.topk_start = 100; sc.topk_ramp = 4;
        char e2[256];
        attn_resolve(&sc, e2, sizeof e2);
        AttnActs st;
        memset(&st, 0, sizeof st);
        int want_dense[] = {1, 1, 0, 0, 0, 0, 0, 0}, want_k[] = {64, 64, 64, 192, 256, 384, 0, 0};
        int want_changed[] = {1, 0, 1, 1, 1, 1, 1, 0}, ok = 1;
        char dd[160] = "";
        size_t l = 0;
        for (int s2 = 0; s2 < 8; s2++) {
            int changed = attn_at_step(&sc, &st, s2, 2048);
            ok &= st.dsa_dense == want_dense[s2] && st.dsa_topk_now == want_k[s2] && changed == want_changed[s2];
            l += snprintf(dd + l, sizeof dd - l, "%s%d", st.dsa_dense ? "D" : "", st.dsa_topk_now);
            if (s2 < 7) l += snprintf(dd + l, sizeof dd - l, ",");
        }
        report(ok, "dsa stages: dense warm-up, then k rises in multiples of 64 to the configured k", dd);
    }
    {   /* topk_schedule: k at each step of a 10-step ramp from 64 to 1024 against each rule's
           formula (then down to a multiple of 64); the rules differ, rise monotonically, and
           fixed (1) is all of topk from step 0 */
        const char *names[] = {"", "fixed", "linear", "exponential", "cosine"};
        int ok = 1, seq[5][11];
        char dd[400] = "";
        size_t l = 0;
        for (int sch = 1; sch <= 4; sch++) {
            AttnConfig sc = dsa_cfg(1024, 1);
            sc.topk_start = 64; sc.topk_ramp = 10; sc.topk_schedule = sch;
            char e2[256];
            ok &= attn_resolve(&sc, e2, sizeof e2) == 0;
            AttnActs st;
            memset(&st, 0, sizeof st);
            l += snprintf(dd + l, sizeof dd - l, "%s%s:", sch > 1 ? " " : "", names[sch]);
            for (int s2 = 0; s2 <= 10; s2++) {
                attn_at_step(&sc, &st, s2, 2048);
                double f = s2 / 10.0, g = sch == 2 ? f : sch == 3 ? (pow(16, f) - 1) / 15 : (1 - cos(M_PI * f)) / 2;
                int want = (int)(64 + g * 960 + 1e-9) / 64 * 64;
                if (sch == 1 || want >= 1024) want = 0; /* 0: all of topk */
                seq[sch][s2] = st.dsa_topk_now;
                ok &= st.dsa_topk_now == want && (s2 == 0 || sch == 1 || seq[sch][s2] == 0 || seq[sch][s2] >= seq[sch][s2 - 1]);
                if (s2 % 2 == 0) l += snprintf(dd + l, sizeof dd - l, "%s%d", s2 ? "," : "", st.dsa_topk_now);
            }
        }
        ok &= memcmp(seq[2], seq[3], sizeof seq[2]) && memcmp(seq[2], seq[4], sizeof seq[2]) &&
              memcmp(seq[3], seq[4], sizeof seq[3]);
        report(ok, "dsa topk_schedule: fixed, linear, exponential, cosine follow their formulas", dd);
        AttnConfig both = dsa_cfg(64, 1);
        both.indexer_fp32 = 1; both.indexer_precision = 5;
        char e2[256] = "";
        report(attn_resolve(&both, e2, sizeof e2) && strstr(e2, "indexer_precision is 5"),
               "dsa refuses indexer_fp32 = 1 beside another indexer_precision, naming both", e2);
        /* the GPU runs every precision (fp8 is refused at run time off Hopper) and indexer dims
           8, 16, 32, 64, 128; other dims are refused naming the set */
        int gpu_yes = 1;
        for (int pr = 1; pr <= 6; pr++)
            for (int di = 8; di <= 128; di *= 2) {
                AttnConfig q = dsa_cfg(64, 1);
                q.head_dim = 32; q.d_model = 128; q.indexer_dim = di; q.indexer_heads = 4; q.indexer_precision = pr;
                gpu_yes &= attn_resolve(&q, e2, sizeof e2) == 0 && attn_gpu_supported(&q, e2, sizeof e2) == 0;
            }
        AttnConfig q = dsa_cfg(64, 1);
        q.head_dim = 32; q.d_model = 128; q.indexer_dim = 24;
        attn_resolve(&q, e2, sizeof e2);
        int gpu_no = attn_gpu_supported(&q, e2, sizeof e2) != 0 && strstr(e2, "indexer_dim in {8, 16, 32, 64, 128}") &&
                     strstr(e2, "24");
        report(gpu_no && gpu_yes, "dsa on the GPU: every indexer precision and dims 8..128 accepted, dim 24 refused", e2);
    }
    {   /* topk_schedule 5 (adaptive): defaults topk_min 64, topk_adapt_pct 100; no ramp (the stage
           keeps all of topk: the rows pick their own k); the adaptive keys need schedule 5 and the
           ramp keys are refused beside it, each message naming the values */
        AttnConfig a5 = dsa_cfg(512, 1);
        a5.topk_schedule = 5;
        char e2[256] = "";
        int ok = attn_resolve(&a5, e2, sizeof e2) == 0 && a5.topk_min == 64 && a5.topk_adapt_pct == 100;
        AttnActs st;
        memset(&st, 0, sizeof st);
        for (int s2 = 0; s2 < 4; s2++) { attn_at_step(&a5, &st, s2, 2048); ok &= st.dsa_topk_now == 0; }
        AttnConfig r1 = dsa_cfg(512, 1);
        r1.topk_min = 16;
        int ref1 = attn_resolve(&r1, e2, sizeof e2) != 0 && strstr(e2, "topk_min (16)") && strstr(e2, "topk_schedule 5");
        char e3[256] = "";
        AttnConfig r2 = dsa_cfg(512, 1);
        r2.topk_schedule = 5; r2.topk_start = 64; r2.topk_ramp = 10;
        int ref2 = attn_resolve(&r2, e3, sizeof e3) != 0 && strstr(e3, "topk_start (64)") && strstr(e3, "topk_ramp (10)");
        report(ok && ref1 && ref2, "dsa topk_schedule 5: defaults, no ramp, adaptive keys need it, ramp keys refused",
               e3);
    }
    {   /* topk_pct: every ratio of the fixed-ratio sweep 5..90 gives floor(pct * T / 100) */
        int ok = 1;
        for (int p2 = 5; p2 <= 90; p2 += 5) {
            AttnConfig pc = dsa_cfg(0, 1);
            pc.topk_pct = p2;
            char e2[256];
            ok &= attn_resolve(&pc, e2, sizeof e2) == 0 && attn_topk(&pc, 2000) == 20 * p2;
        }
        report(ok, "dsa topk_pct 5..90: k = pct of the context", "");
    }
    AttnConfig pct = dsa_cfg(0, 1);
    pct.topk_pct = 50;
    char err[256] = "";
    attn_resolve(&pct, err, sizeof err);
    report(attn_topk(&pct, 2048) == 1024 && attn_topk(&pct, 1) == 1, "dsa topk_pct: k = pct of the context, >= 1", "");
    AttnConfig bad = dsa_cfg(4096, 1);
    int refused = attn_resolve(&bad, err, sizeof err) != 0 && strstr(err, "topk 4096");
    report(refused, "dsa refuses topk 4096, naming it", err);
}

/* ---- whole model ---- */
typedef struct { SmolModel m; int *tok, *tgt; } ModelCtx;
static double model_loss(void *p) {
    ModelCtx *c = p;
    return smollm_eval(&c->m, c->tok, c->tgt, NULL);
}
/* residual dropout: a training forward at a fixed (step, forward) has a fixed mask; its loss in
   double from the per-token losses the backward leaves */
static double model_loss_dropout(void *p) {
    ModelCtx *c = p;
    c->m.dropout_on = 1; c->m.dropout_step = 5; c->m.dropout_micro = 0;
    smollm_forward(&c->m, c->tok);
    ops_real *keep = malloc(sizeof(ops_real) * c->m.n_params); /* the backward adds to grads: keep them */
    memcpy(keep, c->m.grads, sizeof(ops_real) * c->m.n_params);
    smollm_backward(&c->m, c->tgt, 1.0f);
    memcpy(c->m.grads, keep, sizeof(ops_real) * c->m.n_params);
    free(keep);
    double sum = 0; /* the sum over tokens, as smollm_eval's (dloss 1 is its gradient) */
    for (int i = 0; i < c->m.B * c->m.T; i++)
        if (c->tgt[i] >= 0) sum += c->m.host_losses[i];
    return sum;
}
static void test_resid_dropout(void) {
    uint64_t saved_rng = check_rng; /* a stream of its own: later checks keep their inputs */
    check_rng = 0x5851F42D4C957F2Dull;
    /* the mask: P(drop) = p, independent of the key's parts */
    int drops = 0, n = 200000;
    for (int i = 0; i < n; i++) drops += ops_resid_drop_u(7, i % 3, i % 5, i % 2, i % 7, (size_t)i) < 0.1;
    double z = (drops - 0.1 * n) / sqrt(n * 0.1 * 0.9);
    char d[160];
    snprintf(d, sizeof d, "%d of %d dropped (z = %.2f)", drops, n, z);
    report(fabs(z) < 4, "resid_dropout: each element dropped with probability p", d);
    /* resid_dropout alone (pre, post), attn_dropout alone, both with a window (sandwich) */
    /* then attn_dropout with MLA and MGA (the dense room's softmax core inside them) */
    SmolNormKind norms[] = {SMOLLM_NORM_PRE, SMOLLM_NORM_POST, SMOLLM_NORM_PRE, SMOLLM_NORM_SANDWICH, SMOLLM_NORM_PRE,
                            SMOLLM_NORM_PRE};
    float resid[] = {0.3f, 0.3f, 0, 0.2f, 0, 0};
    int attn_pm[] = {0, 0, 300, 200, 300, 300}, window[] = {0, 0, 0, 3, 0, 4};
    AttnKind kinds[] = {ATTN_GQA, ATTN_GQA, ATTN_GQA, ATTN_GQA, ATTN_MLA, ATTN_MGA};
    for (int k = 0; k < 6; k++) {
        SmolConfig cfg = {0};
        cfg.vocab_size = 11; cfg.d_model = 8; cfg.n_layers = 2; cfg.n_heads = 2; cfg.ffn_dim = 12;
        cfg.norm = norms[k]; cfg.attn.kind = kinds[k]; cfg.attn.n_kv_heads = kinds[k] == ATTN_GQA ? 1 : 0;
        cfg.seed = 7; cfg.init_std = 0.3f;
        cfg.resid_dropout = resid[k];
        cfg.attn.attn_dropout = attn_pm[k];
        cfg.attn.window = window[k];
        ModelCtx c;
        char err[256];
        if (smollm_init(&c.m, &cfg, NULL, 2, 5, err, sizeof err)) { report(0, "resid_dropout model init", err); continue; }
        int tok[10], tgt[10];
        for (int i = 0; i < 10; i++) { tok[i] = (int)(urand() * 11); tgt[i] = (int)(urand() * 11); }
        c.tok = tok; c.tgt = tgt;
        ops_zero(NULL, c.m.grads, c.m.n_params * sizeof(ops_real));
        double l1 = model_loss_dropout(&c);
        smollm_backward(&c.m, tgt, 1.0f); /* the analytic gradient at that mask */
        char name[160];
        char what[64];
        snprintf(what, sizeof what, "%s resid_dropout %g attn_dropout %d W=%d", attn_kind_name(kinds[k]), (double)resid[k],
                 attn_pm[k], window[k]);
        snprintf(name, sizeof name, "model %s-norm %s (fixed mask): all params", smollm_norm_kind_name(norms[k]), what);
        check_grad(name, model_loss_dropout, &c, c.m.params, c.m.grads, c.m.n_params, 400);
        /* the same step and forward: the same loss; the next step: another mask; evaluation:
           no dropout (the loss of the same weights with resid_dropout 0) */
        double l2 = model_loss_dropout(&c);
        smollm_at_step(&c.m, 6);
        smollm_forward(&c.m, tok);
        smollm_backward(&c.m, tgt, 0.0f);
        double l3 = 0;
        for (int i = 0; i < 10; i++) l3 += tgt[i] >= 0 ? c.m.host_losses[i] : 0;
        double ev = smollm_eval(&c.m, tok, tgt, NULL);
        c.m.cfg.resid_dropout = 0;
        for (int l = 0; l < c.m.cfg.n_layers; l++) c.m.layers[l].attn.attn_dropout = 0;
        double ev0 = smollm_eval(&c.m, tok, tgt, NULL);
        c.m.cfg.seed = 12345; /* the masks' seed (the weights stay): evaluation does not read it */
        double ev1 = smollm_eval(&c.m, tok, tgt, NULL);
        snprintf(d, sizeof d, "loss %.6f again %.6f, next step %.6f, eval %.6f (p = 0: %.6f, other seed %.6f)", l1, l2,
                 l3, ev, ev0, ev1);
        snprintf(name, sizeof name, "%s %s-norm: reproducible masks, new per step, off at eval", what,
                 smollm_norm_kind_name(norms[k]));
        report(l1 == l2 && l3 != l1 && ev == ev0 && ev == ev1 && ev != l1, name, d);
        smollm_free(&c.m);
    }
    SmolConfig bad = {0};
    bad.resid_dropout = 1.0f;
    char err[256] = "";
    report(smollm_resolve(&bad, err, sizeof err) && strstr(err, "resid_dropout 1 must be in [0, 1)"),
           "resid_dropout 1 refused, naming the range", err);
    /* attn_dropout: per mille in [0, 999]; only the dense room's core drops probabilities */
    AttnConfig ac = {0};
    ac.d_model = 16; ac.n_heads = 2; ac.attn_dropout = 1000;
    report(attn_resolve(&ac, err, sizeof err) && strstr(err, "attn_dropout 1000 is out of range (expected 0..999)"),
           "attn_dropout 1000 refused, naming the range", err);
    AttnKind others[] = {ATTN_GDN, ATTN_DSA, ATTN_HIER, ATTN_IDENTITY};
    int named = 1;
    for (int i = 0; i < 4; i++) {
        AttnConfig o = {0};
        o.kind = others[i]; o.d_model = 16; o.n_heads = 2; o.attn_dropout = 100;
        o.window = others[i] == ATTN_HIER ? 4 : 0; /* hier needs one */
        char e2[256] = "", want[64];
        snprintf(want, sizeof want, "attn_dropout 100: %s has no dropout", attn_kind_name(others[i]));
        named &= attn_resolve(&o, e2, sizeof e2) && strstr(e2, want) && strstr(e2, "mha, gqa, mqa, swa, mla and mga run any");
        if (i == 0) snprintf(err, sizeof err, "%s", e2);
    }
    report(named, "attn_dropout refused by gdn, dsa, hier, identity, naming what runs", err);
    check_rng = saved_rng;
}

static void test_model_grad_sched(SmolNormKind norm, AttnKind attn, int W, int qk, const char *sched) {
    SmolConfig cfg = {0};
    if (sched) snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "%s", sched);
    cfg.vocab_size = 11; cfg.d_model = 8; cfg.n_layers = 2; cfg.n_heads = 2; cfg.ffn_dim = 12;
    cfg.norm = norm; cfg.attn.kind = attn; cfg.attn.window = W; cfg.attn.qk_norm = qk; cfg.seed = 7;
    cfg.attn.n_kv_heads = attn == ATTN_GQA ? 1 : 0;
    cfg.init_std = 0.3f; /* large weights: every path carries gradient */
    ModelCtx c;
    char err[256];
    if (smollm_init(&c.m, &cfg, NULL, 2, 5, err, sizeof err)) { report(0, "model init", err); return; }
    /* perturb norm scales away from 1 so their gradients are exercised */
    for (int i = 0; i < c.m.n_specs; i++)
        if (c.m.specs[i].is_norm)
            for (size_t j = 0; j < c.m.specs[i].numel; j++) c.m.params[c.m.specs[i].offset + j] = 1 + 0.3 * nrand();
    int tok[10], tgt[10];
    for (int i = 0; i < 10; i++) { tok[i] = (int)(urand() * 11); tgt[i] = (int)(urand() * 11); }
    tgt[3] = -1;
    c.tok = tok; c.tgt = tgt;
    ops_zero(NULL, c.m.grads, c.m.n_params * sizeof(ops_real));
    smollm_step(&c.m, tok, tgt, 1.0f);
    char name[96];
    if (sched) snprintf(name, sizeof name, "model %s-norm attn-layers %s: all params", smollm_norm_kind_name(norm), sched);
    else snprintf(name, sizeof name, "model %s-norm %s W=%d qk_norm=%d: all params", smollm_norm_kind_name(norm), attn_kind_name(attn), W, qk);
    check_grad(name, model_loss, &c, c.m.params, c.m.grads, c.m.n_params, 400);
    smollm_free(&c.m);
}
static void test_model_grad(SmolNormKind norm, AttnKind attn, int W, int qk) { test_model_grad_sched(norm, attn, W, qk, NULL); }

/* ---- the option table (attn.h): one spelling per option, each in range, each a field ---- */
static void test_option_table(void) {
    int ok = attn_option_count() > 20, uniq = 1, fields = 1;
    for (int i = 0; i < attn_option_count(); i++) {
        const AttnOption *o = attn_option_at(i);
        for (int j = 0; j < i; j++) uniq &= strcmp(o->name, attn_option_at(j)->name) != 0;
        fields &= o->offset + sizeof(int) <= sizeof(AttnConfig) && o->min <= o->max && o->help && *o->help;
        ok &= attn_option_find(o->name) == o;
    }
    report(ok && uniq && fields, "attention options: unique names, each an AttnConfig field with a range and help", "");
    AttnConfig c = {0};
    char err[256] = "";
    c.kind = ATTN_MLA; c.d_model = 16; c.n_heads = 2; c.latent_dim = -3;
    report(attn_resolve(&c, err, sizeof err) == -1 && strstr(err, "latent_dim -3 is out of range"),
           "attn_resolve refuses an option out of its table's range, naming it", err);
    AttnConfig d = {0};
    d.kind = ATTN_MLA; d.d_model = 16; d.n_heads = 2;
    report(attn_option_set(&d, attn_option_find("latent_dim"), "8", err, sizeof err) == 0 && d.latent_dim == 8 &&
           attn_option_set(&d, attn_option_find("mga_gate"), "2", err, sizeof err) == -1 && strstr(err, "0 or 1"),
           "attn_option_set: parses into the field, checks the range", err);
}

/* ---- per-layer schedules ---- */
static void test_schedules(void) {
    char err[256] = "";
    AttnConfig a = {0};
    int ok = attn_schedule_length("swa:256*3,gqa", err, sizeof err) == 4 &&
             attn_schedule_length("mla:latent_dim=32:q_latent_dim=16+mga:mga_gate=1*2+identity", err, sizeof err) == 4;
    ok &= attn_schedule_apply("swa:256*3,gqa", 6, &a, err, sizeof err) == 0 && a.kind == ATTN_SWA && a.window == 256;
    ok &= attn_schedule_apply("swa:256*3,gqa", 7, &a, err, sizeof err) == 0 && a.kind == ATTN_GQA && a.window == 256;
    report(ok, "schedule: lengths, items cycle over the depth, options overlay the base", err);
    struct { const char *s, *msg; } bad[] = {
        {"swa:256*0", "repetition '0' must be an integer 1..1048576"},
        {"gqa,,mqa", "empty item at offset 4"},
        {"flash*2", "unknown mechanism 'flash'"},
        {"gqa:kv_heads=two", "kv_heads expects an integer 0..65536, got 'two'"},
        {"gqa:kv=2", "option 'kv' is now spelled 'kv_heads'"},
        {"mla:latent_dim=99999999", "latent_dim expects an integer 0..65536"},
        {"gqa:heads=3", "unknown option 'heads'"},
        {"", "attn-layers is empty"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof *bad); i++) {
        char name[96];
        err[0] = 0;
        snprintf(name, sizeof name, "schedule refuses '%s'", bad[i].s);
        report(attn_schedule_length(bad[i].s, err, sizeof err) == -1 && strstr(err, bad[i].msg), name, err);
    }
    SmolConfig cfg = {0};
    cfg.vocab_size = 50; cfg.d_model = 64; cfg.n_layers = 8; cfg.n_heads = 4;
    snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "swa*2,mla");
    report(smollm_resolve(&cfg, err, sizeof err) == -1 && strstr(err, "layer 0 (swa): attn swa needs a window"),
           "schedule: swa without a window is refused, naming the layer", err);

    /* a hybrid model: per-layer kinds, and parameters and KV bytes add up layer by layer */
    snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "swa:16*3,gqa:kv_heads=1,mla:latent_dim=24,mga:mga_gate=1");
    SmolModel m;
    memset(&m, 0, sizeof m);
    m.cfg = cfg;
    if (smollm_resolve(&m.cfg, err, sizeof err)) { report(0, "schedule: resolve", err); return; }
    smol_layout(&m);
    AttnKind want[] = {ATTN_SWA, ATTN_SWA, ATTN_SWA, ATTN_GQA, ATTN_MLA, ATTN_MGA, ATTN_SWA, ATTN_SWA};
    size_t attn_params = 0, kv = 0;
    ok = 1;
    for (int l = 0; l < 8; l++) {
        AttnConfig x = {0};
        x.kind = want[l]; x.d_model = 64; x.n_heads = 4;
        if (l < 3 || l > 5) x.window = 16;
        if (l == 3) x.n_kv_heads = 1;
        if (l == 4) x.latent_dim = 24;
        if (l == 5) x.mga_gate = 1;
        attn_resolve(&x, err, sizeof err);
        attn_params += attn_param_count(&x);
        kv += attn_kv_bytes_per_token(&x, 2);
        ok &= m.layers[l].attn.kind == want[l] && m.layers[l].attn.window == x.window &&
              m.layers[l].attn.n_kv_heads == x.n_kv_heads;
    }
    SmolParamCounts pc = smollm_param_counts(&m);
    char d[160];
    snprintf(d, sizeof d, "attention params %zu (want %zu), KV %zu B/token (want %zu)", pc.attention, attn_params,
             smollm_kv_bytes_per_token(&m), kv);
    report(ok && pc.attention == attn_params && smollm_kv_bytes_per_token(&m) == kv &&
           kv == 2 * (5 * 2 * 2 * 16 + 2 * 1 * 16 + (24 + 8) + (4 + 4) * 16),
           "schedule swa:16*3,gqa:kv_heads=1,mla,mga over 8 layers: kinds, params, KV bytes add up", d);
    free(m.layers); free(m.specs);
}

static void test_init_and_counts(void) {
    SmolConfig cfg = {0};
    cfg.vocab_size = 50; cfg.d_model = 16; cfg.n_layers = 2; cfg.n_heads = 2; cfg.seed = 3;
    SmolModel a, b, c;
    char err[256];
    smollm_init(&a, &cfg, NULL, 1, 4, err, sizeof err);
    smollm_init(&b, &cfg, NULL, 1, 4, err, sizeof err);
    cfg.seed = 4;
    smollm_init(&c, &cfg, NULL, 1, 4, err, sizeof err);
    report(memcmp(a.params, b.params, a.n_params * sizeof(ops_real)) == 0 &&
           memcmp(a.params, c.params, a.n_params * sizeof(ops_real)) != 0,
           "init: same seed same weights bit for bit, other seed differs", NULL);
    smollm_free(&a); smollm_free(&b); smollm_free(&c);

    /* SmolLM2-135M: 134,515,008 parameters (Hugging Face's count), 23,040 KV bytes/token in bf16 */
    SmolConfig big = {0};
    SmolModel m;
    memset(&m, 0, sizeof m);
    m.cfg = big;
    smollm_resolve(&m.cfg, err, sizeof err);
    smol_layout(&m);
    SmolParamCounts pc = smollm_param_counts(&m);
    size_t kv = smollm_kv_bytes_per_token(&m);
    char d[160];
    snprintf(d, sizeof d, "total %zu attn %zu ffn %zu emb %zu norms %zu kv %zu", pc.total, pc.attention, pc.ffn, pc.embedding, pc.norms, kv);
    report(pc.total == 134515008 && pc.embedding == 28311552 && pc.attention == 30 * 884736 &&
           pc.ffn == 30 * 2654208 && pc.norms == 61 * 576 && kv == 23040,
           "SmolLM2-135M defaults: parameter counts by part, KV bytes", d);
    /* the FLOP count `ablate bench` and tools/peers.py share: 3 x (LM head + 30 x (2 x attn params +
       4 x 9 heads x 64 x (2048 + 1) / 2 mean keys + SwiGLU)), worked by hand */
    double f = smollm_config_train_flops_per_token(&m.cfg, 2048);
    snprintf(d, sizeof d, "%.0f", f);
    report(f == 3.0 * (2.0 * 576 * 49152 + 30 * (2.0 * 884736 + 4.0 * 9 * 64 * 2049 / 2 + 6.0 * 576 * 1536)),
           "SmolLM2-135M: training FLOPs per token at T 2048 without a model", d);
    free(m.layers); free(m.specs);
    /* without a model and with one, the same count, for every kind of layer a schedule mixes */
    SmolConfig mix = {0};
    mix.vocab_size = 50; mix.d_model = 16; mix.n_layers = 4; mix.n_heads = 2;
    snprintf(mix.attn_layers, sizeof mix.attn_layers, "gdn,mla,swa:4,mqa");
    if (smollm_init(&a, &mix, NULL, 1, 8, err, sizeof err)) { report(0, "flops: mixed model init", err); return; }
    double fm = smollm_train_flops_per_token(&a, 8), fc = smollm_config_train_flops_per_token(&a.cfg, 8);
    snprintf(d, sizeof d, "model %.0f config %.0f", fm, fc);
    report(fm == fc && fm > 0, "training FLOPs per token: config form = model form (gdn, mla, swa, mqa layers)", d);
    smollm_free(&a);
}

/* ---- training on real text ---- */
typedef struct { DataSampler s; } BatchCtx;
static void next_batch(void *p, int *tok, int *tgt) { data_next_batch(&((BatchCtx *)p)->s, tok, tgt); }

static void test_training(const char *path, int steps) {
    DataSet ds;
    char err[512];
    if (data_open_text(&ds, path, 0.1f, err, sizeof err)) { report(0, "training: open data", err); return; }
    SmolConfig cfg = {0};
    cfg.vocab_size = 256; cfg.d_model = 64; cfg.n_layers = 2; cfg.n_heads = 4; cfg.seed = 1;
    SmolModel m;
    smollm_init(&m, &cfg, NULL, 8, 64, err, sizeof err);
    TrainConfig tc = {0};
    tc.steps = steps; tc.warmup = 10; tc.lr = 3e-3f;
    TrainState tr;
    train_init(&tr, &m, &tc);
    BatchCtx tb = {{&ds, DATA_TRAIN, 8, 64, 99, 0}};
    BatchCtx vb = {{&ds, DATA_VAL, 8, 64, 0, 0}};
    double v0 = train_eval(&tr, next_batch, &vb, 4);
    int finite = 1;
    for (int s = 0; s < steps; s++) {
        TrainStats st = train_step(&tr, next_batch, &tb);
        finite &= isfinite(st.loss) && isfinite(st.grad_norm);
    }
    vb.s.cursor = 0;
    double v1 = train_eval(&tr, next_batch, &vb, 4);
    char d[128];
    snprintf(d, sizeof d, "val loss %.3f -> %.3f in %d steps (need < %.3f)", v0, v1, steps, 0.6 * v0);
    report(finite && v1 < 0.6 * v0, "training: 2-layer d=64 model learns real text", d);
    train_free(&tr);
    smollm_free(&m);
    data_close(&ds);
}

/* ---- validation over the whole split (issue 14) ---- */

/* brute force, apart from data.h's tiling: each byte-level part of `split` (of one source, or
   all with -1) cut by hand into windows at 0, T, 2T...; the last one moved back to end at the
   part's end, scoring only targets no earlier window scored; one row per model call (B = 1) */
static double brute_force(SmolModel *m1, const DataSet *ds, int split, int source, int T, double *count) {
    int *tok = malloc(sizeof(int) * T), *tgt = malloc(sizeof(int) * T);
    double sum = 0;
    *count = 0;
    for (int i = 0; i < ds->n_parts; i++) {
        const DataPart *p = &ds->parts[i];
        if (p->split != split || (source >= 0 && p->source != source)) continue;
        size_t done = 0; /* targets up to this position are scored */
        for (size_t start = 0; done < p->n - 1; start += T) {
            size_t off = start + T + 1 <= p->n ? start : p->n - 1 - T;
            for (int t = 0; t < T; t++) {
                tok[t] = p->p[off + t];
                tgt[t] = off + t + 1 > done ? p->p[off + t + 1] : -1;
            }
            int c;
            sum += smollm_eval(m1, tok, tgt, &c);
            *count += c;
            done = off + T;
        }
    }
    free(tok);
    free(tgt);
    return sum;
}

/* text: the validation quarter opens with a long repetitive stretch, then varied text */
static void write_split_text(const char *path, size_t n) {
    const char *rep = "the cat sat on the mat. ";
    char *t = malloc(n);
    uint64_t r = 12345;
    size_t val0 = n - n / 4;
    for (size_t i = 0; i < n; i++) {
        int varied = i >= val0 ? i >= val0 + (n / 4) * 2 / 5 : (i / 1500) % 2; /* train: both kinds */
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = varied ? (char)('a' + (r >> 33) % 26) : rep[i % 24];
    }
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(t, 1, n, f); fclose(f); }
    free(t);
}

static void eval_next(void *p, int *tok, int *tgt) { data_next_batch(p, tok, tgt); }

static void test_whole_split_eval(void) {
    char err[512], d[256];
    const char *path = "/tmp/ablate_test_split.txt";
    write_split_text(path, 40000);
    DataSet ds;
    if (data_open(&ds, path, 0.25f, err, sizeof err)) { report(0, "whole split: open", err); return; }
    int B = 8, T = 32;
    SmolConfig cfg = {0};
    cfg.vocab_size = 256; cfg.d_model = 32; cfg.n_layers = 2; cfg.n_heads = 4; cfg.seed = 3;
    SmolModel m, m1;
    smollm_init(&m, &cfg, NULL, B, T, err, sizeof err);
    smollm_init(&m1, &cfg, NULL, 1, T, err, sizeof err);
    TrainConfig tc = {0};
    tc.steps = 60; tc.lr = 1e-2f;
    TrainState tr;
    train_init(&tr, &m, &tc);
    DataSampler ts = {&ds, DATA_TRAIN, B, T, 7, 0};
    for (int s = 0; s < tc.steps; s++) train_step(&tr, eval_next, &ts);
    memcpy(m1.params, m.params, m.n_params * sizeof(ops_real)); /* the same weights, one row per call */
    /* what a run reports at its end: DataEval over the whole split, train_evaluate */
    DataEval ev;
    DataBytes by;
    TrainEval te;
    data_eval_init(&ev, &ds, DATA_VAL, T, B, 0, err, sizeof err);
    data_bytes_open(&by, &ds);
    ev.bytes = &by;
    train_evaluate(&m, data_eval_batch, &ev, data_eval_batches(&ev), 0, &te);
    double cnt, bf = brute_force(&m1, &ds, DATA_VAL, -1, T, &cnt);
    double want = bf / cnt;
    snprintf(d, sizeof d, "loss %.12f, brute force %.12f over %.0f tokens (reported %.0f)", te.loss, want, cnt, te.tokens);
    report(fabs(te.loss - want) < 1e-9 && te.tokens == cnt && cnt == 9999 && ev.whole,
           "whole split: the final loss = a brute-force pass over every target", d);
    /* the old scheme: the first eval_batches x batch consecutive windows (here 1 x 8) */
    double first = 0;
    int fc = 0, *tok = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    const DataPart *vp = NULL;
    for (int i = 0; i < ds.n_parts; i++) if (ds.parts[i].split == DATA_VAL) vp = &ds.parts[i];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) { tok[b * T + t] = vp->p[b * T + t]; tgt[b * T + t] = vp->p[b * T + t + 1]; }
    first = smollm_eval(&m, tok, tgt, &fc) / fc;
    snprintf(d, sizeof d, "first 8 windows %.3f vs whole split %.3f", first, te.loss);
    report(te.loss - first > 0.5, "whole split: the first-windows scheme would fail it (far lower)", d);
    /* the same windows at every evaluation: a budget of 8 rows twice, the same bits */
    TrainEval e1, e2;
    DataEval b1, b2;
    data_eval_init(&b1, &ds, DATA_VAL, T, B, 8, err, sizeof err);
    data_eval_init(&b2, &ds, DATA_VAL, T, B, 8, err, sizeof err);
    train_evaluate(&m, data_eval_batch, &b1, data_eval_batches(&b1), 0, &e1);
    train_evaluate(&m, data_eval_batch, &b2, data_eval_batches(&b2), 0, &e2);
    snprintf(d, sizeof d, "8 spread windows: %.6f and %.6f (whole %.6f, first 8 %.6f)", e1.loss, e2.loss, te.loss, first);
    report(e1.loss == e2.loss && e1.tokens == 8 * T && fabs(e1.loss - te.loss) < fabs(first - te.loss),
           "whole split: a budget's windows are the same each time, spread", d);
    /* bits per byte of byte-level text: loss / ln 2; the standard error over windows */
    snprintf(d, sizeof d, "bpb %.9f, loss/ln2 %.9f, se %.5f over %.0f windows", te.bpb, te.loss / log(2.0), te.se, te.windows);
    report(fabs(te.bpb - te.loss / log(2.0)) < 1e-12 && te.se > 0 && te.se < 0.5 && te.windows == 313,
           "whole split: byte text bpb = loss / ln 2; a standard error", d);
    data_bytes_close(&by);
    data_close(&ds);

    /* a mix of the text and GPL-3: the sum over both sources' targets */
    char spec[600];
    snprintf(spec, sizeof spec, "%s:0.7,/usr/share/common-licenses/GPL-3:0.3", path);
    if (!data_open(&ds, spec, 0.25f, err, sizeof err)) {
        data_eval_init(&ev, &ds, DATA_VAL, T, B, 0, err, sizeof err);
        train_evaluate(&m, data_eval_batch, &ev, data_eval_batches(&ev), 0, &te);
        double c0, c1, s0 = brute_force(&m1, &ds, DATA_VAL, 0, T, &c0), s1 = brute_force(&m1, &ds, DATA_VAL, 1, T, &c1);
        snprintf(d, sizeof d, "loss %.12f vs %.12f, %.0f tokens", te.loss, (s0 + s1) / (c0 + c1), te.tokens);
        report(fabs(te.loss - (s0 + s1) / (c0 + c1)) < 1e-9 && te.tokens == c0 + c1,
               "whole split: a mix's evaluation sums over its sources", d);
        data_close(&ds);
    } else report(0, "whole split: mix", err);

    /* BPE shards with their tokenizer.json: bpb = loss * tokens / (ln 2 * bytes), bytes decoded apart */
    unsigned char *text = malloc(40000);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, 40000, f) : 0;
    if (f) fclose(f);
    DataTokenizer *tk = data_tok_train(text, n, 300, err, sizeof err);
    char tokp[] = "/tmp/ablate_test_tok.json", dir[] = "/tmp/ablate_test_bpe";
    int ok = tk && !data_tok_save(tk, tokp, err, sizeof err);
    char cmd[2000]; /* the tokenize command is the driver's (the binary under test), not data.h's */
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --out %s %s > /dev/null", ablate_bin, tokp, dir, path);
    ok = ok && !system(cmd) && !data_open(&ds, dir, 0.1f, err, sizeof err);
    if (ok) {
        SmolConfig c3 = cfg;
        c3.vocab_size = ds.vocab_size;
        SmolModel m3;
        smollm_init(&m3, &c3, NULL, B, T, err, sizeof err);
        data_eval_init(&ev, &ds, DATA_VAL, T, B, 0, err, sizeof err);
        int k = data_bytes_open(&by, &ds);
        ev.bytes = &by;
        train_evaluate(&m3, data_eval_batch, &ev, data_eval_batches(&ev), 0, &te);
        double bytes = 0;
        for (int i = 0; i < ds.n_parts; i++) { /* every target of the split: all but a part's first token */
            const DataPart *p = &ds.parts[i];
            if (p->split != DATA_VAL) continue;
            int *ids = malloc(sizeof(int) * p->n);
            for (size_t j = 0; j < p->n; j++) ids[j] = (int)data_part_tok(p, j);
            unsigned char *out = malloc(8 * p->n);
            bytes += (double)data_tok_decode(tk, ids + 1, p->n - 1, out, 8 * p->n);
            free(ids);
            free(out);
        }
        double want_bpb = te.loss * te.tokens / (log(2.0) * bytes);
        snprintf(d, sizeof d, "bpb %.9f, by hand %.9f (%.0f bytes, %.0f tokens)", te.bpb, want_bpb, bytes, te.tokens);
        report(k == 0 && fabs(te.bpb - want_bpb) < 1e-9 && bytes > te.tokens,
               "whole split: BPE shards' bpb from their tokenizer.json", d);
        data_bytes_close(&by);
        smollm_free(&m3);
        data_close(&ds);
    } else report(0, "whole split: BPE shards", err);
    data_tok_free(tk);
    free(text); free(tok); free(tgt);
    train_free(&tr);
    smollm_free(&m);
    smollm_free(&m1);
}

/* runs `BIN ARGS`, its stdout and stderr into out (the rest is read and dropped, so that a
   long --help ends normally, not on SIGPIPE); returns the exit status */
static int run_bin(const char *bin, const char *args, char *out, size_t cap) {
    char cmd[2048], rest[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, cap - 1, p) : 0;
    out[n] = 0;
    while (p && fread(rest, 1, sizeof rest, p) > 0) {}
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* runs `ablate ARGS` (the binary under test) */
static int run_cli(const char *args, char *out, size_t cap) { return run_bin(ablate_bin, args, out, cap); }

/* GpuTuning (gpu.h): gpu_tuning_set fills the fields that the kernels read (0 stays the default),
   refuses unknown keys and values naming them; ablate --tune maps onto it, lists the keys in
   each --help, reaches a study's worker processes, and warns of the environment variables
   that no longer tune anything */
/* attn_gpu_prefill_whole (attn.h): which GPU prefill runs. The dense room's forward always; the
   mla, mga, dsa and identity rooms' forward by default (tuning.dec_prefill's variant 1) and
   their token-by-token prefill with variant 0 (--tune dec_prefill=0); gdn's forward only with
   variant 1 asked for; never MLA with QK-norm (its
   absorbed decode has none) nor DSA with more keys per query at the cache's length than its
   forward takes */
static void test_prefill_choice(void) {
    GpuTuning off = {0}, on = {0};
    off.dec_prefill = GPU_TUNE_VARIANT(0);
    on.dec_prefill = GPU_TUNE_VARIANT(1);
    const char *names[] = {"mha", "gqa", "swa", "mla", "mga", "gdn", "dsa", "identity"};
    int want_off[] = {1, 1, 1, 0, 0, 0, 0, 0}, want_on[] = {1, 1, 1, 1, 1, 1, 1, 1}, ok = 1;
    int want_default[] = {1, 1, 1, 1, 1, 0, 1, 1}; /* gdn: only when asked for */
    char err[300] = "", got[200] = "";
    for (int i = 0; i < 8; i++) {
        AttnConfig c = {0};
        c.d_model = 128;
        c.n_heads = 2;
        if (attn_kind_parse(names[i], &c.kind) || (c.kind == ATTN_SWA && (c.window = 16, 0)) ||
            attn_resolve(&c, err, sizeof err)) {
            ok = 0;
            break;
        }
        GpuTuning dflt = {0};
        int a = attn_gpu_prefill_whole(&off, &c, 4096), b = attn_gpu_prefill_whole(&on, &c, 4096),
            n = attn_gpu_prefill_whole(NULL, &c, 4096), z = attn_gpu_prefill_whole(&dflt, &c, 4096);
        size_t l = strlen(got);
        snprintf(got + l, sizeof got - l, "%s %d%d%d%d ", names[i], n, z, a, b);
        ok &= a == want_off[i] && b == want_on[i] && n == want_default[i] && z == want_default[i];
    }
    report(ok, "prefill choice: dense always, mla mga dsa identity unless dec_prefill=0, gdn with =1", got[0] ? got : err);
    AttnConfig m = {0};
    m.kind = ATTN_MLA; m.d_model = 128; m.n_heads = 2; m.qk_norm = 1;
    AttnConfig d = {0};
    d.kind = ATTN_DSA; d.d_model = 128; d.n_heads = 2; d.topk_pct = 25; /* k = 25% of the cache's length */
    ok = !attn_resolve(&m, err, sizeof err) && !attn_resolve(&d, err, sizeof err) &&
         attn_gpu_prefill_whole(&on, &m, 64) && attn_gpu_prefill_whole(&on, &d, 8192) &&
         !attn_gpu_prefill_whole(&on, &d, 8196);
    report(ok, "prefill choice: mla qk_norm forward (its expanded cache), dsa k > SPARSE_MAX_TOPK at cap tokenwise", err);
}

static void test_tuning(void) {
    GpuTuning t = {0};
    char err[400] = "";
    report(gpu_tuned(t.gdn_par, 1) == 1 && gpu_tuned(t.sparse_dense, -1) == -1 && !t.sync_check &&
               !t.xent_chunk_bytes && !t.cuda_home, "tuning: zero-initialised is every default", "");
    int ok = !gpu_tuning_set(&t, "gdn_par=0", err, sizeof err) && t.gdn_par == GPU_TUNE_VARIANT(0) &&
             gpu_tuned(t.gdn_par, 1) == 0 && !gpu_tuning_set(&t, "sparse_topk=2", err, sizeof err) &&
             gpu_tuned(t.sparse_topk, 1) == 2 && !gpu_tuning_set(&t, "xent_chunk_mb=64", err, sizeof err) &&
             t.xent_chunk_bytes == (size_t)64 << 20 && !gpu_tuning_set(&t, "sync_check=1", err, sizeof err) &&
             t.sync_check == 1 && !gpu_tuning_set(&t, "attn_wgmma=0", err, sizeof err) &&
             gpu_tuned(t.attn_wgmma, 3) == 0 && !t.dec_fused && !gpu_tuning_set(&t, "dec_fused=1", err, sizeof err) &&
             t.dec_fused == 1 && !gpu_tuning_set(&t, "dec_fused=2", err, sizeof err) && t.dec_fused == 2 && !t.dec_pdl && !gpu_tuning_set(&t, "dec_pdl=1", err, sizeof err) && t.dec_pdl == 1;
    report(ok, "tuning: KEY=VALUE sets the field (variant N, MB, switch)", err);
    int all = 1;
    for (int k = 0; gpu_tuning_keys[k][0]; k++) { /* each listed key takes the value 1 */
        char kv[64];
        snprintf(kv, sizeof kv, "%.*s=1", (int)strcspn(gpu_tuning_keys[k][0], "="), gpu_tuning_keys[k][0]);
        all &= !gpu_tuning_set(&t, kv, err, sizeof err);
    }
    report(all, "tuning: every key of the --help table parses", err);
    GpuTuning un = {0};
    int named = gpu_tuning_set(&un, "bogus=1", err, sizeof err) == -1;
    for (int k = 0; named && gpu_tuning_keys[k][0]; k++) { /* the refusal lists every key */
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)strcspn(gpu_tuning_keys[k][0], "="), gpu_tuning_keys[k][0]);
        named = strstr(err, key) != NULL;
    }
    report(named, "tuning: an unknown key's message lists every key of the --help table", err);
    GpuTuning dp = {0};
    ok = !gpu_tuning_set(&dp, "dec_prefill=1", err, sizeof err) && dp.dec_prefill == GPU_TUNE_VARIANT(1) &&
         !gpu_tuning_set(&dp, "dec_prefill=0", err, sizeof err) && dp.dec_prefill == GPU_TUNE_VARIANT(0) &&
         gpu_tuning_set(&dp, "dec_prefill=2", err, sizeof err) == -1 && strstr(err, "dec_prefill") &&
         strstr(err, "[0, 1]");
    report(ok, "tuning: dec_prefill is variant 0|1 (zero-initialised: the default, 1)", err);
    GpuTuning wt = {0};
    ok = gpu_tuned(wt.gdn_wtile, 2) == 2 && !gpu_tuning_set(&wt, "gdn_wtile=1", err, sizeof err) &&
         gpu_tuned(wt.gdn_wtile, 2) == 1 && !gpu_tuning_set(&wt, "gdn_wtile=0", err, sizeof err) &&
         gpu_tuned(wt.gdn_wtile, 2) == 0 && gpu_tuning_set(&wt, "gdn_wtile=3", err, sizeof err) == -1 &&
         strstr(err, "gdn_wtile") && strstr(err, "[0, 2]");
    report(ok, "tuning: gdn_wtile is variant 0..2 (2: GDN's tiles past 128; zero-initialised: the default, 2)", err);
    struct { const char *kv, *want1, *want2; } bad[] = {
        {"bogus=1", "unknown tuning key 'bogus'", "gdn_par"},  {"attn_wgmma=4", "attn_wgmma", "[0, 3]"},
        {"gdn_par", "gdn_par", "got ''"},                      {"sparse_bwd=1x", "sparse_bwd", "'1x'"},
        {"xent_chunk_mb=0", "xent_chunk_mb", "[1, 65536]"},    {"sync_check=-1", "sync_check", "[0, 1]"},
        {"dec_fused=3", "dec_fused", "[0, 2]"},                {"dec_pdl=2", "dec_pdl", "[0, 1]"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        GpuTuning u = {0};
        err[0] = 0;
        int rc = gpu_tuning_set(&u, bad[i].kv, err, sizeof err);
        char name[96];
        snprintf(name, sizeof name, "tuning: '%s' is refused, naming it", bad[i].kv);
        report(rc == -1 && strstr(err, bad[i].want1) && strstr(err, bad[i].want2) &&
                   !memcmp(&u, &(GpuTuning){0}, sizeof u), name, err);
    }
    char out[8192];
    int rc = run_cli("bench --tune bogus=1 --device cpu --only attn", out, sizeof out);
    report(rc == 2 && strstr(out, "--tune: unknown tuning key 'bogus'"), "--tune: an unknown key exits 2 naming it", out);
    rc = run_cli("train --tune gdn_par=2 --device cpu", out, sizeof out);
    report(rc == 2 && strstr(out, "gdn_par") && strstr(out, "[0, 1]") && strstr(out, "'2'"),
           "--tune: a value out of range exits 2 naming it and the range", out);
    rc = run_cli("bench --device cpu --tune", out, sizeof out);
    report(rc == 2 && strstr(out, "--tune needs KEY=VALUE"), "--tune: a missing KEY=VALUE is refused", out);
    const char *helps[] = {"--help", "bench --help", "train --help"};
    for (int i = 0; i < 3; i++) {
        rc = run_cli(helps[i], out, sizeof out);
        char name[64];
        snprintf(name, sizeof name, "--tune keys listed by ablate %s", helps[i]);
        report(rc == 0 && strstr(out, "--tune KEY=VALUE") && strstr(out, "gdn_par=0|1") &&
                   strstr(out, "sparse_topk=0..2") && !strstr(out, "ABLATE_GDN_PAR="), name, "");
    }
    rc = run_cli("bench --device cpu --only attn --tune gdn_par=0 --tune sparse_dense=1", out, sizeof out);
    report(rc == 0 && strstr(out, "attention"), "--tune: accepted (twice) by bench on the CPU", out);
    char bin[600];
    snprintf(bin, sizeof bin, "env ABLATE_GDN_PAR=0 ABLATE_DATA=x %s", ablate_bin);
    rc = run_bin(bin, "bench --device cpu --only attn", out, sizeof out);
    report(rc == 0 && strstr(out, "ABLATE_GDN_PAR is not read: use --tune gdn_par=N") &&
               strstr(out, "ABLATE_DATA is not read: use --data FILE"),
           "--tune: an old environment variable gets a warning naming the flag", out);
    /* a study's worker processes are fresh `ablate run --resume`: --tune must reach them */
    rc = run_cli("run --axes attn=mha,mqa --steps 3 --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 "
                 "--eval-batches 1 --data /usr/share/common-licenses/GPL-3 --device cpu --workers 2 --quiet "
                 "--tune gdn_par=0 --out /tmp/ablate_test_tune_workers; rc=$?; "
                 "ls /tmp/ablate_test_tune_workers/*/summary.json | wc -l; rm -rf /tmp/ablate_test_tune_workers; exit $rc",
                 out, sizeof out);
    report(rc == 0 && strstr(out, "2\n"), "--tune: a study with --workers 2 runs with it (workers get the flags)", out);
    /* --kernel-cache DIR|off: taken anywhere on the line like --tune, and passed to workers */
    rc = run_cli("bench --device cpu --kernel-cache", out, sizeof out);
    report(rc == 2 && strstr(out, "--kernel-cache needs a directory or 'off'"), "--kernel-cache: a missing DIR is refused",
           out);
    rc = run_cli("--help", out, sizeof out);
    report(rc == 0 && strstr(out, "--kernel-cache DIR|off") && strstr(out, "~/.cache/ablate/kernels"),
           "--kernel-cache: listed by ablate --help with its default", "");
    rc = run_cli("--kernel-cache off bench --device cpu --only attn --kernel-cache /tmp/ablate_test_kc", out, sizeof out);
    report(rc == 0 && strstr(out, "attention"), "--kernel-cache: accepted before and after the command", out);
    rc = run_cli("run --axes attn=mha,mqa --steps 3 --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 "
                 "--eval-batches 1 --data /usr/share/common-licenses/GPL-3 --device cpu --workers 2 --quiet "
                 "--kernel-cache /tmp/ablate_test_kc --tune gdn_par=0 --out /tmp/ablate_test_kc_workers; rc=$?; "
                 "ls /tmp/ablate_test_kc_workers/*/summary.json | wc -l; rm -rf /tmp/ablate_test_kc_workers; exit $rc",
                 out, sizeof out);
    report(rc == 0 && strstr(out, "2\n"), "--kernel-cache: a study's workers accept it", out);
}

/* The GPU build, ./ablate beside the CPU build under test (make builds both where a CUDA
   toolkit is installed): it loads the NVIDIA driver library only when it opens the GPU, so
   its help works on any machine, and on one without the driver a GPU command fails with
   one line naming the library, while the default device falls back to the CPU. */
static void test_gpu_build_without_driver(void) {
    char gpu_bin[512], out[8192], d[600];
    size_t n = strlen(ablate_bin);
    if (n < 4 || strcmp(ablate_bin + n - 4, "-cpu") || n - 4 >= sizeof gpu_bin) {
        printf("skip: GPU build checks (the binary under test, %s, is not named ...-cpu)\n", ablate_bin);
        return;
    }
    snprintf(gpu_bin, sizeof gpu_bin, "%.*s", (int)(n - 4), ablate_bin);
    if (access(gpu_bin, X_OK) != 0) {
        printf("skip: GPU build checks (%s is not built: no CUDA toolkit here?)\n", gpu_bin);
        return;
    }
    static const char *helps[][2] = {{"--help", "usage: ablate"}, {"train --help", "--kv-heads"},
                                     {"run --help", "usage: ablate run"}, {"eval --help", "usage: ablate eval"},
                                     {"bench --help", "usage: ablate bench"}};
    for (int i = 0; i < 5; i++) {
        int rc = run_bin(gpu_bin, helps[i][0], out, sizeof out);
        char name[128];
        snprintf(name, sizeof name, "GPU build: ablate %s", helps[i][0]);
        int ok = rc == 0 && strstr(out, helps[i][1]) != NULL;
        snprintf(d, sizeof d, "rc %d: %.*s", rc, ok ? (int)strcspn(out, "\n") : 500, out); /* all of it on failure */
        report(ok, name, d);
    }
    /* the same two names the GPU build tries */
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        dlclose(lib);
        printf("skip: GPU build without a driver (a CUDA driver library loads on this machine)\n");
        return;
    }
    int rc = run_bin(gpu_bin, "train --device cuda --steps 1", out, sizeof out);
    char *nl = strchr(out, '\n');
    int one_line = nl && nl[1] == 0;
    snprintf(d, sizeof d, "rc %d: %.500s", rc, out);
    report(rc == 1 && one_line && !strncmp(out, "ablate: --device cuda: ", 23) &&
           strstr(out, "the NVIDIA driver library libcuda.so.1 could not be loaded (") &&
           strstr(out, "Use --device cpu, or the CPU build ablate-cpu"),
           "GPU build without a driver: --device cuda fails in one line naming libcuda.so.1", d);
    rc = run_bin(gpu_bin, "train --layers 1 --d-model 16 --heads 2 --seq 8 --batch 2 --steps 1 "
                 "--data /usr/share/common-licenses/GPL-3", out, sizeof out);
    snprintf(d, sizeof d, "rc %d: %.500s", rc, out);
    report(rc == 0 && strstr(out, "gpu: no usable GPU, running on the CPU: the NVIDIA driver library libcuda.so.1") &&
           strstr(out, "device: cpu") && strstr(out, "step     1/1"),
           "GPU build without a driver: the default device trains on the CPU", d);
}

/* the new tokens of `ablate generate` (its stderr line "..., N new |"), -1 if absent */
static int gen_new_tokens(const char *out) {
    const char *p = strstr(out, " new | prefill");
    while (p && p > out && p[-1] >= '0' && p[-1] <= '9') p--;
    return p ? atoi(p) : -1;
}

/* ablate generate: greedy is deterministic, sampling reproducible by --seed, --tokens, --batch,
   the stop at end-of-text, and its refusals */
static void test_generate_cli(void) {
    static char o1[65536], o2[65536];
    char a[1024], d[400];
    const char *ck = "/tmp/ablate_test_gen.safetensors";
    snprintf(a, sizeof a, "train --layers 2 --d-model 16 --heads 2 --seq 24 --batch 3 --steps 6 --attn-layers swa:4,mla "
             "--data /usr/share/common-licenses/GPL-3 --device cpu --save %s", ck);
    int rc = run_cli(a, o1, sizeof o1);
    report(rc == 0, "generate: a byte-level checkpoint to generate from", rc ? o1 : "");
    snprintf(a, sizeof a, "generate %s --prompt 'The licenses' --tokens 12 2>&1", ck);
    int r1 = run_cli(a, o1, sizeof o1), r2 = run_cli(a, o2, sizeof o2);
    char *s1 = strstr(o1, "generate: "), *s2 = strstr(o2, "generate: "); /* the text before the timings */
    snprintf(d, sizeof d, "rc %d/%d: %.300s", r1, r2, o1);
    report(!r1 && !r2 && s1 && s2 && s1 - o1 == s2 - o2 && !strncmp(o1, o2, s1 - o1) && !strncmp(o1, "The licenses", 12) && gen_new_tokens(o1) == 12 &&
           strstr(o1, "swa:4,mla attention, 1 sequence: prompt 12 tokens"), "generate: greedy, deterministic, --tokens 12", d);
    snprintf(a, sizeof a, "generate %s --prompt 'The' --tokens 30 --temperature 1 --top-k 50 --top-p 0.95 --seed 5 2>/dev/null | cat", ck);
    r1 = run_cli(a, o1, sizeof o1);
    r2 = run_cli(a, o2, sizeof o2);
    snprintf(a, sizeof a, "generate %s --prompt 'The' --tokens 30 --temperature 1 --top-k 50 --top-p 0.95 --seed 6 2>/dev/null | cat", ck);
    static char o3[65536];
    int r3 = run_cli(a, o3, sizeof o3);
    snprintf(d, sizeof d, "%.100s | %.100s", o1, o3);
    report(!r1 && !r2 && !r3 && !strcmp(o1, o2) && strcmp(o1, o3), "generate: sampling reproducible by --seed, another seed differs", d);
    snprintf(a, sizeof a, "generate %s --prompt 'The' --tokens 5 --batch 3 2>&1", ck); /* greedy: no NUL byte in the text */
    r1 = run_cli(a, o1, sizeof o1);
    report(!r1 && strstr(o1, "--- sequence 0 ---\nThe") && strstr(o1, "--- sequence 2 ---\nThe") && strstr(o1, "3 sequences") &&
           gen_new_tokens(o1) == 15, "generate: --batch 3", o1);
    /* a prompt past the checkpoint's context (24) keeps its last 24 tokens */
    snprintf(a, sizeof a, "generate %s --prompt 'abcdefghijklmnopqrstuvwxyz0123456789' --tokens 2 2>&1", ck);
    r1 = run_cli(a, o1, sizeof o1);
    report(!r1 && strstr(o1, "the prompt's 36 tokens exceed the checkpoint's context 24: kept the last 24") &&
           strstr(o1, "prompt 24 tokens"), "generate: a prompt past the context is truncated to its end", o1);
    snprintf(a, sizeof a, "generate %s --device cuda", ck);
    r1 = run_cli(a, o1, sizeof o1);
    report(r1 != 0 && strstr(o1, "--device cuda: this is the CPU-only build"),
           "generate: --device cuda on the CPU-only build is refused, saying why", o1);
    snprintf(a, sizeof a, "generate %s --device gpu", ck);
    r1 = run_cli(a, o1, sizeof o1);
    report(r1 == 2 && strstr(o1, "unknown device 'gpu'") && strstr(o1, "expected cpu or cuda"),
           "generate: an unknown --device is refused", o1);
    /* --eager (the GPU's debugging switch) is accepted everywhere; the CPU's text is the same */
    snprintf(a, sizeof a, "generate %s --prompt 'The licenses' --tokens 12 --device cpu --eager 2>/dev/null | cat", ck);
    r1 = run_cli(a, o2, sizeof o2);
    snprintf(a, sizeof a, "generate %s --prompt 'The licenses' --tokens 12 --device cpu 2>/dev/null | cat", ck);
    r2 = run_cli(a, o1, sizeof o1);
    report(!r1 && !r2 && !strcmp(o1, o2) && !strncmp(o1, "The licenses", 12), "generate: --eager accepted, same text on the CPU", o2);
    r1 = run_cli("generate --prompt x", o1, sizeof o1);
    report(r1 == 2 && strstr(o1, "no checkpoint given"), "generate: no checkpoint is a usage error", o1);
    /* BPE: a checkpoint whose greedy choice is the end-of-text token stops at once. Its residual
       dimension 0 is the embedding's (o_proj and down_proj write nothing there) and positive, the
       final norm keeps dimension 0 only, and <|endoftext|> has the largest embedding there. */
    const char *txt = "/tmp/ablate_test_gen_bpe.txt", *tj = "/tmp/ablate_test_gen_tok.json";
    FILE *f = fopen(txt, "w");
    for (int i = 0; f && i < 200; i++) fprintf(f, "the cat sat on the mat %d times. ", i);
    if (f) fclose(f);
    snprintf(a, sizeof a, "tokenizer train --vocab 300 --out %s %s", tj, txt);
    rc = run_cli(a, o1, sizeof o1);
    char err[512];
    DataTokenizer *tok = rc ? NULL : data_tok_load(tj, err, sizeof err);
    int eot = tok ? data_tok_id(tok, "<|endoftext|>") : -1;
    SmolConfig cfg = {0};
    cfg.vocab_size = tok ? data_tok_vocab(tok) : 300; cfg.d_model = 16; cfg.n_layers = 2; cfg.n_heads = 2; cfg.ffn_dim = 32;
    cfg.attn.kind = ATTN_GDN;
    SmolModel m;
    const char *bck = "/tmp/ablate_test_gen_bpe.safetensors";
    int ok = tok && eot >= 0 && !smollm_init(&m, &cfg, NULL, 1, 16, err, sizeof err);
    if (ok) {
        int dm = cfg.d_model;
        for (int v = 0; v < cfg.vocab_size; v++) m.params[m.wte + (size_t)v * dm] = v == eot ? 6 : 5;
        for (int i = 0; i < dm; i++) m.params[m.final_norm + i] = i == 0;
        for (int i = 0; i < m.n_specs; i++)
            if (strstr(m.specs[i].name, "o_proj") || strstr(m.specs[i].name, "down_proj"))
                for (int c = 0; c < m.specs[i].cols; c++) m.params[m.specs[i].offset + c] = 0; /* row 0 */
        ok = !smollm_save(&m, bck, err, sizeof err);
        smollm_free(&m);
    }
    snprintf(a, sizeof a, "generate %s --tokenizer %s --prompt 'the cat' --tokens 10 2>&1", bck, tj);
    r1 = ok ? run_cli(a, o1, sizeof o1) : -1;
    snprintf(d, sizeof d, "rc %d eot %d: %.300s", r1, eot, ok ? o1 : err);
    report(!r1 && gen_new_tokens(o1) == 0 && !strncmp(o1, "the cat\n", 8) && !strstr(o1, "endoftext"),
           "generate: stops at the BPE tokenizer's end-of-text token", d);
    snprintf(a, sizeof a, "generate %s --tokenizer %s --tokens 3 2>&1", bck, tj);
    r1 = ok ? run_cli(a, o1, sizeof o1) : -1;
    report(!r1 && strstr(o1, "prompt 1 tokens"), "generate: an empty prompt starts from the end-of-text token", o1);
    snprintf(a, sizeof a, "generate %s --prompt x 2>&1", bck);
    r1 = ok ? run_cli(a, o1, sizeof o1) : -1;
    report(r1 == 2 && strstr(o1, "not the byte-level 256: give --tokenizer"),
           "generate: a BPE checkpoint without --tokenizer is refused", o1);
    data_tok_free(tok);
    /* a study's sample_every: samples.jsonl (step, prompt, text) at steps 2 and 4; the summary's
       measured decode cache bytes per token (gdn: its constant state over the context of 24); the
       run identity without sample_every is the same */
    if (system("rm -rf /tmp/ablate_test_samples /tmp/ablate_test_samples0")) {}
    const char *base = "run --axes attn=gdn --steps 4 --layers 1 --d-model 16 --heads 2 --seq 24 --batch 3 "
                       "--data /usr/share/common-licenses/GPL-3 --device cpu --quiet";
    snprintf(a, sizeof a, "%s --sample-every 2 --sample-tokens 5 --out /tmp/ablate_test_samples", base);
    r1 = run_cli(a, o1, sizeof o1);
    snprintf(a, sizeof a, "%s --out /tmp/ablate_test_samples0", base);
    r2 = run_cli(a, o2, sizeof o2);
    run_bin("", "cat /tmp/ablate_test_samples/attn-gdn_seed1337/samples.jsonl; echo; grep -o '\"identity\": \"[0-9a-f]*\"' "
            "/tmp/ablate_test_samples/*/config.json /tmp/ablate_test_samples0/*/config.json | cut -d: -f2-; "
            "grep -o '\"cache_bytes_per_token\": [0-9.]*' /tmp/ablate_test_samples/*/summary.json", o1, sizeof o1);
    AttnConfig ga = {0};
    ga.kind = ATTN_GDN; ga.d_model = 16; ga.n_heads = 2;
    attn_resolve(&ga, err, sizeof err);
    char want[96], *id1 = strstr(o1, "\"identity\""), *id2 = id1 ? strstr(id1 + 1, "\"identity\"") : NULL;
    snprintf(want, sizeof want, "\"cache_bytes_per_token\": %.9g", 
             (double)attn_decode_cache_bytes(&ga, 24) / sizeof(ops_real) * sizeof(float) / 24); /* ablate-cpu: float */
    report(!r1 && !r2 && strstr(o1, "{\"step\": 2, \"prompt\": \"") && strstr(o1, "{\"step\": 4, \"prompt\": \"") &&
           strstr(o1, "\"text\": \"") && strstr(o1, want) && id1 && id2 && !strncmp(id1, id2, 32),
           "study: sample_every writes samples.jsonl; summary's cache_bytes_per_token; identity unchanged", o1);
    /* bench_decode = 1: the summary's decode tokens/s and measured cache bytes (gdn: its state at
       seq 24), a decode tok/s column, the run identity unchanged (a measurement, not training) */
    if (system("rm -rf /tmp/ablate_test_bdec")) {}
    snprintf(a, sizeof a, "%s --bench-decode 1 --out /tmp/ablate_test_bdec", base);
    r1 = run_cli(a, o2, sizeof o2);
    int table = !run_cli("report /tmp/ablate_test_bdec", o2, sizeof o2) && strstr(o2, "decode tok/s") != NULL;
    run_bin("", "grep -o '\"decode_[a-z_]*\": [0-9.e+]*' /tmp/ablate_test_bdec/*/summary.json; grep -o "
            "'\"bench_decode\": [0-9]' /tmp/ablate_test_bdec/*/config.json; grep -o '\"identity\": \"[0-9a-f]*\"' "
            "/tmp/ablate_test_bdec/*/config.json /tmp/ablate_test_samples0/*/config.json | cut -d: -f2-", o1, sizeof o1);
    snprintf(want, sizeof want, "\"decode_cache_bytes\": %.9g",
             (double)attn_decode_cache_bytes(&ga, 24) / sizeof(ops_real) * sizeof(float)); /* ablate-cpu: float */
    id1 = strstr(o1, "\"identity\"");
    id2 = id1 ? strstr(id1 + 1, "\"identity\"") : NULL;
    report(!r1 && table && strstr(o1, "\"decode_tokens_per_s\": ") && strstr(o1, want) &&
           strstr(o1, "\"bench_decode\": 1") && id1 && id2 && !strncmp(id1, id2, 30), /* "identity": "16 hex" */
           "study: bench_decode records decode tokens/s and cache bytes; a column; identity unchanged", o1);
    /* a run that generates (sample_every, bench_decode) with a layer that cannot decode is refused
       before training, naming the layer and why */
    if (system("rm -rf /tmp/ablate_test_nodec")) {}
    r1 = run_cli("run --axes attn=mga --mga-faithful 1 --steps 2 --layers 1 --d-model 16 --heads 2 --seq 24 --batch 3 "
                 "--data /usr/share/common-licenses/GPL-3 --device cpu --quiet --sample-every 1 "
                 "--out /tmp/ablate_test_nodec", o1, sizeof o1);
    report(r1 == 2 && strstr(o1, "sample_every generates (layer 0)") && strstr(o1, "mga_faithful") &&
               system("test -e /tmp/ablate_test_nodec") != 0,
           "study: sample_every with an attention that cannot decode (faithful mga) is refused up front", o1);
}

/* ablate eval on a checkpoint of ablate train --save gives the run's final validation loss */
static void test_eval_cli(void) {
    static char out[65536], out2[65536];
    char a[1024], d[300];
    const char *text = "/tmp/ablate_test_split.txt", *ck = "/tmp/ablate_test_eval.safetensors";
    snprintf(a, sizeof a, "train --layers 1 --d-model 16 --heads 2 --seq 24 --batch 3 --steps 12 --eval-batches 1 "
             "--data %s --val-frac 0.25 --device cpu --save %s", text, ck);
    int rc = run_cli(a, out, sizeof out);
    char *v = strstr(out, "validation (the whole split");
    char *l = v ? strstr(v, "): loss ") : NULL;
    snprintf(a, sizeof a, "eval %s --data %s --val-frac 0.25 --device cpu", ck, text);
    int rc2 = run_cli(a, out2, sizeof out2);
    char *l2 = strstr(out2, "\nloss ");
    double x = l ? atof(l + 8) : NAN, y = l2 ? atof(l2 + 6) : NAN;
    snprintf(d, sizeof d, "rc %d/%d, train %.6f, eval %.6f", rc, rc2, x, y);
    report(!rc && !rc2 && l && l2 && x == y && strstr(out2, "9999 tokens") && strstr(out2, "every target once"),
           "ablate eval reproduces ablate train's final val loss", d);
    snprintf(a, sizeof a, "eval %s --data %s --val-frac 0.25 --device cpu --json", ck, text);
    rc = run_cli(a, out2, sizeof out2);
    report(!rc && strstr(out2, "\"tokens\": 9999") && strstr(out2, "\"whole_split\": true") && strstr(out2, "\"bpb\": "),
           "ablate eval --json", out2);
    /* a vocabulary of 300 tokens against a checkpoint of 256: refused, naming both */
    int ids[400];
    for (int i = 0; i < 400; i++) ids[i] = i % 300;
    char err[256];
    data_shard_write("/tmp/ablate_test_v300.bin", ids, 400, 300, err, sizeof err);
    snprintf(a, sizeof a, "eval %s --data /tmp/ablate_test_v300.bin --device cpu", ck);
    rc = run_cli(a, out2, sizeof out2);
    report(rc == 2 && strstr(out2, "has vocabulary 256 but data /tmp/ablate_test_v300.bin has vocabulary 300"),
           "ablate eval refuses another vocabulary", out2);
    /* a safetensors file without ablate's configuration metadata */
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"}}      ";
    uint64_t hl = strlen(hdr);
    FILE *f = fopen("/tmp/ablate_test_noconfig.safetensors", "wb");
    if (f) { fwrite(&hl, 8, 1, f); fwrite(hdr, 1, hl, f); fclose(f); }
    snprintf(a, sizeof a, "eval /tmp/ablate_test_noconfig.safetensors --data %s --device cpu", text);
    rc = run_cli(a, out2, sizeof out2);
    report(rc == 2 && strstr(out2, "carries no model configuration"), "ablate eval refuses a checkpoint without its config",
           out2);
    rc = run_cli("eval --data x", out2, sizeof out2);
    report(rc == 2 && strstr(out2, "no checkpoint given"), "ablate eval without a checkpoint: usage error", out2);
    snprintf(a, sizeof a, "eval %s --data %s --split test", ck, text);
    rc = run_cli(a, out2, sizeof out2);
    report(rc == 2 && strstr(out2, "unknown split 'test': expected val, train or all"), "ablate eval --split test refused",
           out2);
    /* a study's summary.json: the final evaluation's tokens, standard error and bits per byte */
    snprintf(a, sizeof a, "run --axes attn=mha --steps 3 --layers 1 --d-model 16 --heads 2 --seq 24 --batch 3 "
             "--data %s --val-frac 0.25 --device cpu --out /tmp/ablate_test_evalstudy", text);
    if (system("rm -rf /tmp/ablate_test_evalstudy")) {}
    rc = run_cli(a, out, sizeof out);
    run_cli("report /tmp/ablate_test_evalstudy >/dev/null; cat /tmp/ablate_test_evalstudy/*/summary.json", out2,
            sizeof out2);
    char *sum = strstr(out2, "\"final_val_tokens\": 9999");
    report(!rc && sum && strstr(out2, "\"final_val_se\": 0.") && strstr(out2, "\"final_val_bpb\": ") &&
           !strstr(out2, "\"final_val_bpb\": null") && strstr(out2, "\"best_val_bpb\": "),
           "summary.json: final_val_tokens, final_val_se, final/best val bpb", sum ? "" : out2);
    run_cli("report /tmp/ablate_test_evalstudy >/dev/null; cat /tmp/ablate_test_evalstudy/*/metrics.jsonl", out2,
            sizeof out2);
    report(strstr(out2, "\"val_bpb\": ") != NULL, "metrics.jsonl rows carry val_bpb", "");
    /* export: a Hugging Face directory; eval --mc on it and on a bad file */
    snprintf(a, sizeof a, "export %s --out /tmp/ablate_test_hf", ck);
    rc = run_cli(a, out2, sizeof out2);
    FILE *cj = fopen("/tmp/ablate_test_hf/config.json", "r"), *tj = fopen("/tmp/ablate_test_hf/tokenizer.json", "r");
    report(!rc && strstr(out2, "as LlamaForCausalLM") && cj && tj, "ablate export: a Llama directory", out2);
    if (cj) fclose(cj);
    if (tj) fclose(tj);
    f = fopen("/tmp/ablate_test_mc.jsonl", "w");
    if (f) {
        fputs("{\"ctx\": \"In the beginning\", \"endings\": [\" God\", \" zq\"], \"label\": 0}\n"
              "{\"ctx\": \"and the earth\", \"endings\": [\" was\", \" xx\", \" qq\"], \"label\": 0}\n", f);
        fclose(f);
    }
    rc = run_cli("eval /tmp/ablate_test_hf/model.safetensors --mc /tmp/ablate_test_mc.jsonl --device cpu --json", out2,
                 sizeof out2);
    report(!rc && strstr(out2, "\"items\": 2") && strstr(out2, "\"acc\": ") && strstr(out2, "\"se\": "),
           "ablate eval --mc on an export: accuracy and standard error", out2);
    f = fopen("/tmp/ablate_test_mc.jsonl", "w");
    if (f) { fputs("{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 0}\n{\"ctx\": 3}\n", f); fclose(f); }
    snprintf(a, sizeof a, "eval %s --mc /tmp/ablate_test_mc.jsonl --device cpu", ck);
    rc = run_cli(a, out2, sizeof out2);
    report(rc == 2 && strstr(out2, "/tmp/ablate_test_mc.jsonl line 2: expected \"ctx\" a string"),
           "ablate eval --mc refuses a bad line, naming it", out2);
    if (system("rm -rf /tmp/ablate_test_hf")) {}
    remove("/tmp/ablate_test_mc.jsonl");
    if (system("rm -rf /tmp/ablate_test_evalstudy /tmp/ablate_test_bpe")) {}
    remove(ck); remove("/tmp/ablate_test_v300.bin"); remove("/tmp/ablate_test_noconfig.safetensors");
    remove("/tmp/ablate_test_tok.json");
}

/* ---- the CLI refuses bad input with a message naming the value ---- */
static void test_cli(const char *args, int want_rc, const char *want_msg) {
    char cmd[1024], out[4096] = "";
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", ablate_bin, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    char rest[4096]; /* drain the rest, so that a long --help ends normally, not on SIGPIPE */
    while (p && fread(rest, 1, sizeof rest, p) > 0) {}
    int st = p ? pclose(p) : -1, rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int ok = rc == want_rc && strstr(out, want_msg) != NULL;
    char name[160], d[200];
    snprintf(name, sizeof name, "cli: %.50s", args);
    snprintf(d, sizeof d, "rc %d, %s", rc, ok ? want_msg : out);
    report(ok, name, d);
}

/* the last whole "N passed, N failed" line of a log in *p, *q; 0 when found. A line that only
   starts with a number (a progress line, a compiler log) is not one: both numbers must match */
static int log_counts(const char *path, int *p, int *q) {
    FILE *f = fopen(path, "r");
    char line[1024];
    *p = *q = -1;
    while (f && fgets(line, sizeof line, f)) {
        int a, b;
        if (sscanf(line, "%d passed, %d failed", &a, &b) == 2) *p = a, *q = b;
    }
    if (f) fclose(f);
    return *p < 0 || *q < 0;
}

/* a log as tests/nvrtc_compile writes it (progress lines between the results) still counts */
static void test_log_counts(void) {
    char path[] = "/tmp/ablate_test_logXXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) { report(0, "log counts: temp file", path); return; }
    fputs("[1/2] sm_80 kernels.cu.h ...\n      ptx 508151 bytes\nok    sm_80    kernels.cu.h 4 s\n"
          "3 passed, 1 failed\n[2/2] sm_90 kernels.cu.h ...\n      ... still compiling kernels.cu.h for sm_90: 20 s\n"
          "12 registers\n7 passed, 2 failed\n"
          "40 bytes stack frame, 0 bytes spill stores\n", f);
    fclose(f);
    int p, q, rc = log_counts(path, &p, &q);
    char d[80];
    snprintf(d, sizeof d, "got %d passed, %d failed (want 7, 2)", p, q);
    report(!rc && p == 7 && q == 2, "--count-from: the last whole count line, progress lines ignored", d);
    f = fopen(path, "w");
    if (f) { fputs("[1/8] sm_80 attn/dense.cu.h ...\n", f); fclose(f); }
    report(log_counts(path, &p, &q) != 0, "--count-from: a log without a count line is an error", "");
    remove(path);
}

/* fold another checker's "N passed, N failed" (e.g. the NVRTC compile check) into ours */
static void add_counts_from(const char *path) {
    int p, q;
    if (log_counts(path, &p, &q)) {
        char d[600];
        snprintf(d, sizeof d, "%s has no \"N passed, N failed\" line (did the checker crash?)", path);
        report(0, "external check log", d);
        return;
    }
    n_pass += p;
    n_fail += q;
    printf("(from %s: %d passed, %d failed)\n", path, p, q);
}

/* The CLI checks write fixed paths under /tmp (/tmp/ablate_test_*): two suites at once on one
   machine would delete each other's files. A lock held for the whole run makes a second suite
   wait for the first instead. */
static void tests_lock(void) {
    int fd = open("/tmp/ablate_test.lock", O_RDWR | O_CREAT, 0666);
    if (fd < 0) return; /* no lock to take: run anyway */
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        printf("another run_tests holds /tmp/ablate_test.lock: waiting for it\n");
        fflush(stdout);
        if (flock(fd, LOCK_EX)) perror("run_tests: flock /tmp/ablate_test.lock");
    }
    /* fd stays open: the lock lives until the process exits */
}

int main(int argc, char **argv) {
    tests_lock();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count-from") && i + 1 < argc) add_counts_from(argv[++i]);
        else ablate_bin = argv[i];
    }
    printf("gradient checks in %s precision\n", sizeof(ops_real) == 8 ? "double" : "single");
    test_log_counts();
    test_tuning();
    test_prefill_choice();
    test_matmul();
    test_embed();
    test_rmsnorm();
    test_rope();
    test_qkv_split();
    test_swiglu();
    test_xent();
    test_attention_core(2, 2, 0);
    test_attention_core(4, 2, 0);
    test_attention_core(3, 1, 0);
    test_attention_core(4, 2, 3);
    test_attention_core(2, 1, 1);
    AttnKind kinds[] = {ATTN_MHA, ATTN_GQA, ATTN_MQA};
    for (int k = 0; k < 3; k++)
        for (int W = 0; W <= 3; W += 3)
            for (int qk = 0; qk <= 1; qk++) test_attention_block(kinds[k], 4, kinds[k] == ATTN_GQA ? 2 : 0, W, qk);
    test_attention_block(ATTN_IDENTITY, 2, 0, 0, 0);
    test_attention_equivalences();
    test_causality(ATTN_MHA, 0, 0, 0);
    test_causality(ATTN_GQA, 1, 2, 1);
    test_causality(ATTN_MQA, 0, 0, 1);
    test_causality(ATTN_IDENTITY, 0, 0, 0);
    test_causality(ATTN_SWA, 1, 2, 0);
    test_mla();
    test_mga();
    test_mga_decomposed();
    test_dsa();
    test_gpu_widths();
    test_resid_dropout();
    {   /* fixed sparse patterns on the window: gradients, and a leak check */
        AttnConfig p = {0};
        p.kind = ATTN_GQA; p.d_model = 8; p.n_heads = 2; p.n_kv_heads = 1; p.head_dim = 4; p.window = 2;
        p.global_tokens = 1; p.stride = 3; p.pattern_block = 1;
        BlockCtx c;
        block_setup_cfg(&c, p);
        block_grad(&c, "attn block gqa W=2 global=1 stride=3 pblock=1");
        block_free(&c);
        AttnConfig q = p;
        q.global_tokens = 0; q.stride = 0; q.dilation = 2;
        block_setup_cfg(&c, q);
        block_grad(&c, "attn block gqa W=2 dilation=2 pblock=1");
        block_free(&c);
        test_causality_cfg(p, "gqa W=2 global=1 stride=3", 0);
        char err[256] = "";
        AttnConfig bad = p;
        bad.window = 0;
        report(attn_resolve(&bad, err, sizeof err) != 0 && strstr(err, "window 0"), "a pattern without a window is refused",
               err);
    }
    SmolNormKind norms[] = {SMOLLM_NORM_PRE, SMOLLM_NORM_POST, SMOLLM_NORM_SANDWICH};
    for (int n = 0; n < 3; n++) test_model_grad(norms[n], ATTN_GQA, 0, 0);
    test_model_grad(SMOLLM_NORM_PRE, ATTN_MHA, 3, 1);
    test_model_grad(SMOLLM_NORM_POST, ATTN_MQA, 0, 1);
    test_model_grad(SMOLLM_NORM_SANDWICH, ATTN_IDENTITY, 0, 0);
    test_model_grad(SMOLLM_NORM_PRE, ATTN_MLA, 0, 0);
    test_model_grad(SMOLLM_NORM_PRE, ATTN_MGA, 0, 0);
    test_model_grad_sched(SMOLLM_NORM_SANDWICH, ATTN_DEFAULT, 0, 0, "mla:q_latent_dim=3:rope_dim=2,mga:mga_gate=1");
    test_model_grad(SMOLLM_NORM_PRE, ATTN_GDN, 0, 0);
    test_model_grad_sched(SMOLLM_NORM_POST, ATTN_DEFAULT, 0, 0, "gdn:conv_size=3:chunk=2,gqa");
    {
        AttnConfig g = {0};
        g.kind = ATTN_GDN; g.d_model = 8; g.n_heads = 2; g.chunk = 4;
        test_causality_cfg(g, "gdn (chunk 4)", 0);
        char err[256] = "";
        AttnConfig bad = g;
        bad.window = 16;
        int refused = attn_resolve(&bad, err, sizeof err) != 0 && strstr(err, "window (16)");
        report(refused, "gdn refuses a window, naming it", err);
        AttnConfig r = g;
        attn_resolve(&r, err, sizeof err);
        report(attn_kv_bytes_per_token(&r, 2) == 0 && attn_state_bytes(&r) > 0,
               "gdn: no per-token KV cache, a constant state", "");
    }
    test_model_grad_sched(SMOLLM_NORM_PRE, ATTN_DEFAULT, 0, 0, "swa:2+mha");
    test_option_table();
    test_schedules();
    test_init_and_counts();
    test_training("/usr/share/common-licenses/GPL-3", 150);
    test_whole_split_eval();
    test_eval_cli();
    test_generate_cli();
    remove("/tmp/ablate_test_split.txt");

    /* CLI refusals */
    char empty[] = "/tmp/ablate_test_emptyXXXXXX";
    int fd = mkstemp(empty);
    if (fd >= 0) close(fd);
    const char *tiny = "--layers 1 --d-model 16 --heads 2 --seq 8 --batch 2 --steps 1";
    char a[512];
    /* the GPU is opt-in: a build without -DABLATE_CUDA says so */
    test_cli("train --device cuda --steps 1", 1, "--device cuda: this is the CPU-only build (built without -DABLATE_CUDA)");
    test_cli("export", 2, "usage: ablate export CKPT --out DIR");
    test_cli("export /nonexistent.safetensors --out /tmp/ablate_test_x", 2, "cannot open checkpoint /nonexistent.safetensors");
    test_cli("mc-make /nonexistent.txt --out /tmp/ablate_test_x.jsonl", 2, "cannot open text '/nonexistent.txt'");
    test_cli("mc-make --help", 0, "not a standard benchmark");
    test_cli("mc-make x.txt --out y --endings 1", 2, "--endings expects an integer in [2, 16], got '1'");
    test_cli("eval x.safetensors", 2, "--data SPEC or --mc FILE is required");
    test_cli("eval x.safetensors --data a --mc b", 2, "--data and --mc are separate evaluations");
    test_cli("train --heads 6 --kv-heads 4 --d-model 48", 2, "heads 6 is not divisible by kv_heads 4");
    test_cli("train --d-model 64 --heads 5", 2, "d_model 64 is not divisible by heads 5");
    test_cli("train --window -1", 2, "--window expects an integer >= 0, got '-1'");
    test_cli("train --attn flash", 2, "unknown attention 'flash'");
    test_cli("train --norm middle", 2, "unknown norm strategy 'middle'");
    test_cli("train --steps many", 2, "--steps expects an integer >= 1, got 'many'");
    test_cli("train --lr fast", 2, "--lr expects a number > 0, got 'fast'");
    test_cli("train --bogus 1", 2, "unknown flag '--bogus'");
    test_cli("train --attn mqa --kv-heads 3", 2, "attn mqa needs kv_heads = 1, got 3");
    snprintf(a, sizeof a, "train %s --data /nonexistent/corpus.txt", tiny);
    test_cli(a, 2, "data file /nonexistent/corpus.txt: cannot open");
    snprintf(a, sizeof a, "train %s --data %s", tiny, empty);
    test_cli(a, 2, "is empty");
    snprintf(a, sizeof a, "train %s --data /usr/share/common-licenses/GPL-3 --device cpu --seq 100000", tiny);
    test_cli(a, 2, "seq 100000 needs at least 100001");
    test_cli("train --attn-layers swa*2,gqa", 2, "layer 0 (swa): attn swa needs a window >= 1");
    test_cli("train --attn-layers gqa:wide", 2, "window expects an integer 0..1048576, got 'wide'");
    snprintf(a, sizeof a, "train %s --layers 2 --attn-layers mla:q_latent_dim=4+mga:mga_gate=1 --data /usr/share/common-licenses/GPL-3 --device cpu", tiny);
    test_cli(a, 0, "step     1/1");
    test_cli("train --task recall", 2, "unknown task 'recall': expected mqar, copy or induction");
    test_cli("train --attn dsa --window 8", 2, "attn dsa takes no window (got 8)");
    /* its own text, long enough for seq 8192 in both splits (the GPL-3 fallback is not), so that
       the refusal checked is the top-k one whether data/corpus.txt exists or not */
    char longtext[] = "/tmp/ablate_test_longXXXXXX";
    int lfd = mkstemp(longtext);
    if (lfd >= 0) close(lfd);
    write_split_text(longtext, 200000);
    snprintf(a, sizeof a, "train --attn dsa --topk-pct 50 --seq 8192 --layers 1 --d-model 16 --heads 2 --steps 1 "
             "--data %s", longtext);
    test_cli(a, 2, "top-k 4096 (topk_pct 50 of seq 8192) is more than the 2048");
    test_cli("train --task copy --resid-dropout 1.5 --layers 1 --d-model 16 --heads 2 --steps 1 --seq 16 --batch 2", 2,
             "--resid-dropout expects a number < 1, got '1.5'");
    test_cli("train --task copy --resid-dropout 0.1 --attn dsa --topk 4 --indexer-precision 6 --topk-start 2 "
             "--topk-ramp 2 --topk-schedule 4 --layers 1 --d-model 16 --heads 2 --steps 3 --seq 16 --batch 2", 0, "done:");
    remove(longtext);
    test_cli("train --attn gdn --qk-norm", 2, "attn gdn takes no window (0) or qk_norm (1)");
    test_cli("train --window 16 --global -1", 2, "--global expects an integer >= 0, got '-1'");
    test_cli("train --stride 256", 2, "patterns add keys to a sliding window");
    test_cli("train --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 4 --eval-batches 1 --attn dsa "
             "--topk 4 --indexer-heads 2 --indexer-dim 8 --dsa-warmup 1 --topk-start 2 --topk-ramp 2 --device cpu",
             0, "step     4/4");
    test_cli("train --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 3 --eval-batches 1 --attn dsa "
             "--topk 8 --indexer-heads 2 --indexer-dim 8 --topk-schedule 5 --topk-min 2 --topk-adapt-pct 50 "
             "--indexer-precision 4 --device cpu", 0, "step     3/3");
    test_cli("train --attn dsa --topk-min 8 --steps 1", 2, "topk_min (8) and topk_adapt_pct (0) shape the adaptive k");
    test_cli("train --layers 2 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 2 --eval-batches 1 "
             "--attn-layers gdn:conv_size=3,swa:4:global=2:stride=8:pattern_block=2 --device cpu", 0, "step     2/2");
    test_cli("train --task induction --layers 1 --d-model 16 --heads 2 --seq 32 --batch 2 --steps 2 --device cpu",
             0, "val acc");
    /* ablate run checks the whole spec first: nothing is written for a broken one */
    if (system("rm -rf /tmp/ablate_test_badspec")) {}
    test_cli("run --axes heads=4,5 --d-model 32 --layers 1 --steps 1 --out /tmp/ablate_test_badspec", 2,
             "command line (--d-model 32), command line (--axes heads=5): phase 'grid', run heads-5_seed1337 (heads=5): "
             "d_model 32 is not divisible by heads 5");
    struct stat bst;
    report(stat("/tmp/ablate_test_badspec", &bst) != 0, "cli: a refused study leaves no directory", "");
    test_cli("run --axes attn=mha --seeds 1,7", 2, "a list of seeds goes in seed_list = 1,7 (--seed-list 1,7)");
    test_cli("run --help", 0, "--seed-list");
    snprintf(a, sizeof a, "train %s --data /usr/share/common-licenses/GPL-3 --device cpu", tiny);
    test_cli(a, 0, "peak resident memory");
    test_cli("train --help", 0, "--kv-heads");
    test_cli("--help", 0, "usage: ablate");
    /* bench --dry-run: the GPU shapes and FLOP counts, no device (tests/peers_dryrun.sh compares
       them with tools/peers.py's) */
    test_cli("bench --dry-run", 0, "B=16 T=2048 flop_per_token=1019319552");
    test_cli("bench --dry-run", 0, "attn hd=64 B=8 H=16 T=8192 fwd_flop=1099511627776 fwdbwd_flop=3848290697216");
    test_cli("bench --dry-run --attn gqa,bogus", 2, "unknown mechanism 'bogus'");
    test_cli("bench --dry-run --attn-layers gdn", 2, "--attn-layers 'gdn' is not counted");
    /* --head-dims: a row per width, FLOPs on the real width; the GPU's refusal names the width
       and the nearest that run */
    test_cli("bench --dry-run --head-dims 64,72", 0, "attn hd=72 B=32 H=16 T=2048 fwd_flop=309237645312");
    test_cli("bench --dry-run --head-dims 256", 0, "attn hd=256 B=8 H=16 T=8192 fwd_flop=4398046511104");
    test_cli("bench --dry-run --head-dims 64,36", 2, "head dim 36 to be a multiple of 8 from 32 to 256 "
             "(the flash kernels' widths; 32 or 40 would run)");
    test_cli("bench --dry-run --head-dims 264", 2, "--head-dims");
    test_gpu_build_without_driver();
    snprintf(a, sizeof a, "train %s --data /usr/share/common-licenses/GPL-3 --device cpu", tiny);
    test_cli(a, 0, "step     1/1");
    remove(empty);

    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
