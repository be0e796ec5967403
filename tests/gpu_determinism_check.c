/* tests/gpu_determinism_check.c - on a GPU machine: bit-reproducible training
   (Gpu.nondeterministic = 0, the default; see gpu.h REPRODUCIBILITY).

   1. The ops whose order-dependent reductions were replaced (embedding backward, RMSNorm
      dw, the gate conv's dw, sumsq): each run twice on the same inputs and compared
      bitwise, and against a reference (the embedding backward, a new algorithm: a double
      CPU sum; the others: their order-dependent variant, which sums the same partials).
      The embedding cases stress the sort: one token takes a third of the positions (runs
      across many tiles), a vocabulary above 65536 (a third radix digit), C % 8 != 0.
   2. Per mechanism (gqa, mha, mqa, swa, mla, mga with its gate, gdn, dsa with a dense
      warm-up and a real top-k, identity, a per-layer schedule, qk_norm, post-norm, gradient
      accumulation): the same configuration and seed trained twice from scratch, each on a
      fresh Gpu (gpu_init .. gpu_free_all, so GEMM plans are chosen anew; compiled kernels
      come from gpu.h's process-wide image cache), CUDA graphs on as in `ablate train`.
      Per-step loss and gradient norm, a validation loss and the final fp32 weights are
      compared bitwise (memcmp); a difference reports the first step that differs.
      Shapes: 2 layers, d_model 128, 2 heads of 64, batch 4 x seq 256, 6 steps, byte-level
      text (/usr/share/common-licenses/GPL-3, else generated words).
   3. For information only (never a failure): one mechanism with nondeterministic = 1.
   4. Timing (skipped with --no-timing): each replaced op, deterministic against
      nondeterministic, at the 135M shape (B 16 x T 2048, d 576, vocab 49152, 134.5M
      parameters), and the step's total at 61 RMSNorm backwards, one embedding backward
      and one sumsq.

   Usage: tests/gpu_determinism_check [--no-timing] [--timing-only] [MECH...]
     MECH: names of part 2's cases to run (default all). Ends with "N passed, N failed".
   Build: make tests/gpu_determinism_check (the CUDA flags of tests/gpu_*.c).
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h" /* f2bf, bf2d, xmalloc */

static int n_pass, n_fail;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-44s %s\n", ok ? "PASS" : "FAIL", name, detail);
    fflush(stdout);
}

static uint64_t det_rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float det_unif(uint64_t *s) { return (float)((det_rng(s) >> 40) * (1.0 / 16777216.0) * 2 - 1); }

/* n uniform bf16 values in [-1, 1): device copy, and their floats in *host (may be NULL) */
static void *dev_rand_bf16(Gpu *g, size_t n, uint64_t *s, float **host) {
    uint16_t *b = xmalloc(n * 2);
    if (host) *host = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        b[i] = f2bf(det_unif(s));
        if (host) (*host)[i] = (float)bf2d(b[i]);
    }
    void *d = gpu_alloc(g, n * 2);
    gpu_upload(g, d, b, n * 2);
    gpu_sync(g);
    free(b);
    return d;
}
static float *dev_rand_f32(Gpu *g, size_t n, uint64_t *s, float **host) {
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = det_unif(s);
    float *d = gpu_alloc(g, n * sizeof(float));
    gpu_upload(g, d, h, n * sizeof(float));
    gpu_sync(g);
    if (host) *host = h; else free(h);
    return d;
}
static float *download_f32(Gpu *g, const void *d, size_t n) {
    float *h = xmalloc(n * sizeof(float));
    gpu_download(g, h, d, n * sizeof(float));
    return h;
}
/* relative L2 distance of a from b */
static double rel(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return INFINITY;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static size_t count_diff(const float *a, const float *b, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += memcmp(a + i, b + i, sizeof(float)) != 0;
    return k;
}

/* ---------------------------------------------------------------- 1. the ops */

/* skew: 0 uniform, 1 a third of the positions on token 7, 2 a third on V-1 and a Zipf-like rest */
static void op_embed(Gpu *g, int N, int C, int V, int skew) {
    char name[96], d[200];
    snprintf(name, sizeof name, "embed_backward N=%d C=%d V=%d skew=%d", N, C, V, skew);
    uint64_t s = 1000 + (uint64_t)V;
    int *tok = xmalloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) {
        uint64_t r = det_rng(&s);
        if (skew && r % 3 == 0) tok[n] = skew == 1 ? 7 % V : V - 1;
        else if (skew == 2) tok[n] = (int)((double)V * pow(det_unif(&s) * 0.5 + 0.5, 4.0)) % V;
        else tok[n] = (int)(r % (uint64_t)V);
    }
    float *dout, *dw0;
    void *d_dout = dev_rand_bf16(g, (size_t)N * C, &s, &dout);
    float *d_dw = dev_rand_f32(g, (size_t)V * C, &s, &dw0);
    int *d_tok = gpu_alloc(g, sizeof(int) * N);
    gpu_upload(g, d_tok, tok, sizeof(int) * N);
    gpu_embed_backward(g, d_dw, d_dout, d_tok, N, C);
    float *a = download_f32(g, d_dw, (size_t)V * C);
    gpu_upload(g, d_dw, dw0, sizeof(float) * V * C);
    gpu_embed_backward(g, d_dw, d_dout, d_tok, N, C);
    float *b = download_f32(g, d_dw, (size_t)V * C);
    double *ref = calloc((size_t)V * C, sizeof(double));
    float *reff = xmalloc(sizeof(float) * V * C);
    for (size_t i = 0; i < (size_t)V * C; i++) ref[i] = dw0[i];
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) ref[(size_t)tok[n] * C + c] += dout[(size_t)n * C + c];
    for (size_t i = 0; i < (size_t)V * C; i++) reff[i] = (float)ref[i];
    double e = rel(a, reff, (size_t)V * C);
    int same = !memcmp(a, b, sizeof(float) * V * C);
    snprintf(d, sizeof d, "repeat %s, rel err vs double CPU %.1e", same ? "bitwise identical" : "DIFFERS", e);
    report(same && e <= 1e-5, name, d);
    free(tok); free(dout); free(dw0); free(a); free(b); free(ref); free(reff);
    gpu_free(g, d_dout); gpu_free(g, d_dw); gpu_free(g, d_tok);
}

static void op_rmsnorm(Gpu *g, int N, int C) {
    char name[96], d[200];
    snprintf(name, sizeof name, "rmsnorm_backward dw N=%d C=%d", N, C);
    uint64_t s = 77;
    void *x = dev_rand_bf16(g, (size_t)N * C, &s, NULL), *dy = dev_rand_bf16(g, (size_t)N * C, &s, NULL);
    void *w = dev_rand_bf16(g, (size_t)C, &s, NULL), *din = gpu_alloc(g, (size_t)N * C * 2);
    float *dw0, *dw = dev_rand_f32(g, (size_t)C, &s, &dw0), *rstd = dev_rand_f32(g, (size_t)N, &s, NULL);
    float *r[3];
    for (int k = 0; k < 3; k++) { /* deterministic twice, then the atomics */
        g->nondeterministic = k == 2;
        gpu_upload(g, dw, dw0, sizeof(float) * C);
        gpu_rmsnorm_backward(g, din, dw, dy, x, w, rstd, N, C, 0);
        r[k] = download_f32(g, dw, (size_t)C);
    }
    g->nondeterministic = 0;
    int same = !memcmp(r[0], r[1], sizeof(float) * C);
    double e = rel(r[0], r[2], (size_t)C);
    snprintf(d, sizeof d, "repeat %s, rel vs atomics %.1e", same ? "bitwise identical" : "DIFFERS", e);
    report(same && e <= 1e-5, name, d);
    for (int k = 0; k < 3; k++) free(r[k]);
    free(dw0);
    gpu_free(g, x); gpu_free(g, dy); gpu_free(g, w); gpu_free(g, din); gpu_free(g, dw); gpu_free(g, rstd);
}

static void op_dwconv(Gpu *g, int B, int T, int C, int shift) {
    char name[96], d[200];
    snprintf(name, sizeof name, "dwconv3_silu_backward dw B=%d T=%d C=%d", B, T, C);
    uint64_t s = 91;
    size_t n = (size_t)B * T * C;
    void *x = dev_rand_bf16(g, n, &s, NULL), *du = dev_rand_bf16(g, n, &s, NULL), *w = dev_rand_bf16(g, (size_t)C * 3, &s, NULL);
    void *conv = gpu_alloc(g, n * 2), *dx = gpu_alloc(g, n * 2);
    gpu_dwconv3_silu_forward(g, conv, NULL, x, w, B, T, C, shift);
    float *dw0, *dw = dev_rand_f32(g, (size_t)C * 3, &s, &dw0);
    float *r[3];
    for (int k = 0; k < 3; k++) {
        g->nondeterministic = k == 2;
        gpu_upload(g, dw, dw0, sizeof(float) * C * 3);
        gpu_dwconv3_silu_backward(g, dx, dw, du, conv, x, w, B, T, C, shift, 0);
        r[k] = download_f32(g, dw, (size_t)C * 3);
    }
    g->nondeterministic = 0;
    int same = !memcmp(r[0], r[1], sizeof(float) * C * 3);
    double e = rel(r[0], r[2], (size_t)C * 3);
    snprintf(d, sizeof d, "repeat %s, rel vs atomics %.1e", same ? "bitwise identical" : "DIFFERS", e);
    report(same && e <= 1e-5, name, d);
    for (int k = 0; k < 3; k++) free(r[k]);
    free(dw0);
    gpu_free(g, x); gpu_free(g, du); gpu_free(g, w); gpu_free(g, conv); gpu_free(g, dx); gpu_free(g, dw);
}

static void op_sumsq(Gpu *g, size_t n, int offset) {
    char name[96], d[200];
    snprintf(name, sizeof name, "sumsq n=%zu%s", n, offset ? " (unaligned)" : "");
    uint64_t s = 5;
    float *h, *x = dev_rand_f32(g, n + 1, &s, &h), *out = gpu_alloc(g, sizeof(float));
    float r[3];
    for (int k = 0; k < 3; k++) {
        g->nondeterministic = k == 2;
        gpu_memset0(g, out, sizeof(float));
        gpu_sumsq(g, out, x + offset, n);
        gpu_download(g, &r[k], out, sizeof(float));
    }
    g->nondeterministic = 0;
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)h[i + offset] * h[i + offset];
    int same = !memcmp(&r[0], &r[1], sizeof(float));
    double e = fabs(r[0] - ref) / ref;
    snprintf(d, sizeof d, "repeat %s, rel err vs double %.1e (atomics %.1e)", same ? "bitwise identical" : "DIFFERS", e,
             fabs(r[2] - ref) / ref);
    report(same && e <= 1e-5, name, d);
    free(h);
    gpu_free(g, x); gpu_free(g, out);
}

/* ---------------------------------------------------------------- 2. training twice */

#define DC_B 4
#define DC_T 256
#define DC_STEPS 6

typedef struct {
    const char *name;
    AttnKind attn;
    int kv, window, qk_norm, mga_gate, topk, dsa_warmup, grad_accum;
    SmolNormKind norm;
    const char *schedule;
} Case;

typedef struct {
    float loss[DC_STEPS], gnorm[DC_STEPS];
    double val;
    float *weights;
    size_t n_params;
    int ok;
    char err[256];
} Trace;

typedef struct { const unsigned char *text; size_t n; uint64_t rng; } DataSampler;

static void next_batch(void *p, int *tok, int *tgt) {
    DataSampler *s = p;
    for (int b = 0; b < DC_B; b++) {
        size_t o = det_rng(&s->rng) % (s->n - DC_T - 1);
        for (int t = 0; t < DC_T; t++) {
            tok[b * DC_T + t] = s->text[o + t];
            tgt[b * DC_T + t] = s->text[o + t + 1];
        }
    }
}

static unsigned char *corpus;
static size_t corpus_n;

/* GPL-3 when present, else words from a seeded generator (either way the same every run) */
static void load_corpus(void) {
    FILE *f = fopen("/usr/share/common-licenses/GPL-3", "rb");
    if (f) {
        corpus = xmalloc(1 << 20);
        corpus_n = fread(corpus, 1, 1 << 20, f);
        fclose(f);
        if (corpus_n > 4 * DC_T) { printf("data: GPL-3, %zu bytes\n", corpus_n); return; }
        free(corpus);
    }
    static const char *words[] = {"the", "model", "of", "attention", "a", "kernel", "reduces", "sums", "in",
                                  "order", "every", "run", "gives", "same", "bits", "and", "loss", "step"};
    uint64_t s = 42;
    corpus_n = 200000;
    corpus = xmalloc(corpus_n);
    size_t k = 0;
    while (k < corpus_n) {
        const char *w = words[det_rng(&s) % (sizeof words / sizeof *words)];
        for (const char *c = w; *c && k < corpus_n; c++) corpus[k++] = (unsigned char)*c;
        if (k < corpus_n) corpus[k++] = det_rng(&s) % 9 == 0 ? '\n' : ' ';
    }
    printf("data: generated words, %zu bytes\n", corpus_n);
}

/* one training run on a fresh Gpu; nondet sets Gpu.nondeterministic */
static void train_once(const Case *c, int nondet, Trace *tr) {
    memset(tr, 0, sizeof *tr);
    Gpu gpu;
    if (gpu_init(&gpu, 0)) { snprintf(tr->err, sizeof tr->err, "gpu_init failed: %.200s", gpu.err); return; }
    gpu.nondeterministic = nondet;
    SmolConfig cfg = {0};
    cfg.vocab_size = 256; cfg.d_model = 128; cfg.n_layers = 2; cfg.n_heads = 2; cfg.seed = 1234;
    cfg.attn.kind = c->attn; cfg.attn.n_kv_heads = c->kv; cfg.attn.window = c->window; cfg.attn.qk_norm = c->qk_norm;
    cfg.attn.mga_gate = c->mga_gate; cfg.attn.topk = c->topk; cfg.norm = c->norm;
    if (c->attn == ATTN_MLA) { cfg.attn.head_dim = 64; cfg.attn.rope_dim = 32; cfg.attn.v_head_dim = 64; cfg.attn.latent_dim = 64; }
    if (c->schedule) snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "%s", c->schedule);
    SmolModel m;
    if (smollm_init(&m, &cfg, &gpu, DC_B, DC_T, tr->err, sizeof tr->err)) { gpu_free_all(&gpu); return; }
    TrainConfig tc = {0};
    tc.steps = DC_STEPS; tc.lr = 3e-3f; tc.warmup = 2; cfg.attn.dsa_warmup = c->dsa_warmup; tc.grad_accum = c->grad_accum;
    TrainState t;
    train_init(&t, &m, &tc);
    DataSampler s = {corpus, corpus_n, 2024};
    for (int k = 0; k < DC_STEPS; k++) {
        TrainStats st = train_step(&t, next_batch, &s);
        tr->loss[k] = st.loss;
        tr->gnorm[k] = st.grad_norm;
    }
    DataSampler v = {corpus, corpus_n, 99};
    int *tok = xmalloc(sizeof(int) * DC_B * DC_T), *tgt = xmalloc(sizeof(int) * DC_B * DC_T), count = 0;
    next_batch(&v, tok, tgt);
    tr->val = smollm_eval(&m, tok, tgt, &count);
    free(tok); free(tgt);
    tr->n_params = m.n_params;
    tr->weights = xmalloc(m.n_params * sizeof(float));
    gpu_download(&gpu, tr->weights, m.params, m.n_params * sizeof(float));
    tr->ok = 1;
    train_free(&t);
    smollm_free(&m);
    gpu_free_all(&gpu);
}

/* "" when a and b are bitwise identical, else what differs first */
static void compare(const Trace *a, const Trace *b, char *d, size_t dn) {
    for (int k = 0; k < DC_STEPS; k++) {
        if (memcmp(&a->loss[k], &b->loss[k], sizeof(float))) {
            snprintf(d, dn, "first difference at step %d: loss %.9g vs %.9g", k + 1, a->loss[k], b->loss[k]);
            return;
        }
        if (memcmp(&a->gnorm[k], &b->gnorm[k], sizeof(float))) {
            snprintf(d, dn, "first difference at step %d: grad norm %.9g vs %.9g", k + 1, a->gnorm[k], b->gnorm[k]);
            return;
        }
    }
    if (memcmp(&a->val, &b->val, sizeof(double))) {
        snprintf(d, dn, "steps identical; validation loss %.12g vs %.12g", a->val, b->val);
        return;
    }
    size_t nd = count_diff(a->weights, b->weights, a->n_params);
    if (nd) {
        snprintf(d, dn, "losses identical; final weights differ in %zu of %zu", nd, a->n_params);
        return;
    }
    d[0] = 0;
}

static void run_case(const Case *c) {
    Trace a, b;
    char d[300], name[96];
    double t0 = train_now();
    train_once(c, 0, &a);
    train_once(c, 0, &b);
    snprintf(name, sizeof name, "train twice: %s", c->name);
    if (!a.ok || !b.ok) {
        report(0, name, a.ok ? b.err : a.err);
    } else {
        compare(&a, &b, d, sizeof d);
        char ok[200];
        if (!d[0]) {
            snprintf(ok, sizeof ok, "identical (%d steps, loss %.4f -> %.4f, val %.4f, %zu weights; %.1f s)", DC_STEPS,
                     a.loss[0], a.loss[DC_STEPS - 1], a.val / (DC_B * DC_T), a.n_params, train_now() - t0);
            report(1, name, ok);
        } else {
            report(0, name, d);
        }
    }
    free(a.weights);
    free(b.weights);
}

/* 3. information only */
static void run_nondet(const Case *c) {
    Trace a, b;
    char d[300];
    train_once(c, 1, &a);
    train_once(c, 1, &b);
    if (a.ok && b.ok) compare(&a, &b, d, sizeof d);
    else snprintf(d, sizeof d, "could not run: %s", a.ok ? b.err : a.err);
    printf("INFO nondeterministic = 1, %s, trained twice: %s\n", c->name, d[0] ? d : "identical this time");
    free(a.weights);
    free(b.weights);
}

/* ---------------------------------------------------------------- 4. timing */

static double time_ms(Gpu *g, int reps, void (*fn)(Gpu *, void *), void *ctx) {
    fn(g, ctx); /* compile, size scratch */
    gpu_sync(g);
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
    for (int r = 0; r < reps; r++) fn(g, ctx);
    CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
    CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
    float ms = 0;
    CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms, e0, e1));
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    return ms / reps;
}

typedef struct {
    int N, C, V;
    void *x, *dy, *w, *din, *dout16;
    float *dw, *rstd, *dwte, *grads, *ss;
    int *tok;
    size_t n_params;
} TimeCtx;

static void t_embed(Gpu *g, void *p) { TimeCtx *c = p; gpu_embed_backward(g, c->dwte, c->dout16, c->tok, c->N, c->C); }
static void t_rms(Gpu *g, void *p) {
    TimeCtx *c = p;
    gpu_rmsnorm_backward(g, c->din, c->dw, c->dy, c->x, c->w, c->rstd, c->N, c->C, 0);
}
static void t_sumsq(Gpu *g, void *p) { TimeCtx *c = p; gpu_sumsq(g, c->ss, c->grads, c->n_params); }
static void t_conv(Gpu *g, void *p) {
    TimeCtx *c = p;
    gpu_dwconv3_silu_backward(g, c->din, c->dw, c->dy, c->x, c->x, c->w, 16, 2048, c->C, 2, 0);
}

static void run_timing(void) {
    Gpu gpu;
    if (gpu_init(&gpu, 0)) { report(0, "timing: gpu_init", gpu.err); return; }
    Gpu *g = &gpu;
    TimeCtx c;
    memset(&c, 0, sizeof c);
    c.N = 16 * 2048; c.C = 576; c.V = 49152;
    uint64_t s = 3;
    size_t n = (size_t)c.N * c.C;
    c.x = dev_rand_bf16(g, n, &s, NULL);
    c.dy = dev_rand_bf16(g, n, &s, NULL);
    c.dout16 = c.dy;
    c.w = dev_rand_bf16(g, (size_t)c.C * 3, &s, NULL);
    c.din = gpu_alloc(g, n * 2);
    c.dw = dev_rand_f32(g, (size_t)c.C * 3, &s, NULL);
    c.rstd = dev_rand_f32(g, (size_t)c.N, &s, NULL);
    c.dwte = gpu_alloc(g, sizeof(float) * c.V * c.C);
    gpu_memset0(g, c.dwte, sizeof(float) * c.V * c.C);
    /* tokens: Zipf-like over the vocabulary (frequent ids repeat, as in BPE text) */
    int *tok = xmalloc(sizeof(int) * c.N);
    for (int i = 0; i < c.N; i++) tok[i] = (int)(c.V * pow(det_unif(&s) * 0.5 + 0.5, 6.0)) % c.V;
    c.tok = gpu_alloc(g, sizeof(int) * c.N);
    gpu_upload(g, c.tok, tok, sizeof(int) * c.N);
    free(tok);
    c.n_params = (size_t)134515008; /* SmolLM2-135M */
    c.grads = gpu_alloc(g, c.n_params * sizeof(float));
    gpu_memset0(g, c.grads, c.n_params * sizeof(float));
    c.ss = gpu_alloc(g, sizeof(float));
    struct { const char *name; void (*fn)(Gpu *, void *); int per_step; } ops[] = {
        {"embed_backward B16xT2048 C576 V49152", t_embed, 1},
        {"rmsnorm_backward N32768 C576", t_rms, 61},
        {"sumsq 134.5M", t_sumsq, 1},
        {"dwconv3_silu_backward N32768 C576", t_conv, 0},
    };
    double step_det = 0, step_nd = 0;
    printf("timing (ms per call; 135M shapes)                deterministic  atomics  per step\n");
    for (int i = 0; i < 4; i++) {
        gpu.nondeterministic = 0;
        double d = time_ms(g, 20, ops[i].fn, &c);
        gpu.nondeterministic = 1;
        double a = time_ms(g, 20, ops[i].fn, &c);
        gpu.nondeterministic = 0;
        printf("  %-46s %10.4f %9.4f   x%d\n", ops[i].name, d, a, ops[i].per_step);
        step_det += d * ops[i].per_step;
        step_nd += a * ops[i].per_step;
    }
    printf("  135M step (61 RMSNorm bwd + embed bwd + sumsq): %.3f ms deterministic, %.3f ms atomics, +%.3f ms\n",
           step_det, step_nd, step_det - step_nd);
    gpu_free_all(&gpu);
}

/* ---------------------------------------------------------------- main */

static const Case cases[] = {
    {"gqa", ATTN_GQA, 1, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"mha", ATTN_MHA, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"mqa", ATTN_MQA, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"swa", ATTN_SWA, 0, 64, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"mla", ATTN_MLA, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"mga", ATTN_MGA, 0, 0, 0, 1, 0, 0, 0, SMOLLM_NORM_SANDWICH, NULL},
    {"gdn", ATTN_GDN, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"dsa", ATTN_DSA, 1, 0, 0, 0, 64, 2, 0, SMOLLM_NORM_PRE, NULL},
    {"identity", ATTN_IDENTITY, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"schedule", ATTN_DEFAULT, 0, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_PRE, "swa:64,gdn"},
    {"qk_norm", ATTN_GQA, 1, 0, 1, 0, 0, 0, 0, SMOLLM_NORM_PRE, NULL},
    {"post-norm", ATTN_GQA, 1, 0, 0, 0, 0, 0, 0, SMOLLM_NORM_POST, NULL},
    {"grad_accum", ATTN_GQA, 1, 0, 0, 0, 0, 0, 2, SMOLLM_NORM_PRE, NULL},
};

int main(int argc, char **argv) {
    int timing = 1, checks = 1, n_only = 0;
    const char *only[32];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-timing")) timing = 0;
        else if (!strcmp(argv[i], "--timing-only")) checks = 0;
        else if (argv[i][0] != '-' && n_only < 32) only[n_only++] = argv[i];
        else { fprintf(stderr, "usage: %s [--no-timing] [--timing-only] [MECH...]\n", argv[0]); return 2; }
    }
    Gpu gpu;
    if (gpu_init(&gpu, 0)) { fprintf(stderr, "gpu_determinism_check: no usable GPU: %s\n", gpu.err); return 1; }
    printf("device: compute capability %d.%d, %d SMs; Gpu.nondeterministic after gpu_init: %d\n", gpu.cc_major,
           gpu.cc_minor, gpu.sm_count, gpu.nondeterministic);
    if (checks) {
        report(gpu.nondeterministic == 0, "gpu_init: deterministic by default", "");
        op_embed(&gpu, 1000, 576, 300, 0);
        op_embed(&gpu, 32768, 576, 49152, 1);
        op_embed(&gpu, 20000, 64, 70000, 2);  /* a third radix digit */
        op_embed(&gpu, 3333, 100, 1000, 2);   /* C % 8 != 0: the scalar loads */
        op_rmsnorm(&gpu, 32768, 576);
        op_rmsnorm(&gpu, 4 * 256 * 2, 64);    /* qk_norm's rows of one head */
        op_dwconv(&gpu, 4, 256, 128, 2);
        op_dwconv(&gpu, 16, 2048, 576, 1);
        op_sumsq(&gpu, (size_t)10000003, 0);
        op_sumsq(&gpu, (size_t)777777, 1);
    }
    gpu_free_all(&gpu);
    if (checks) {
        load_corpus();
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            int run = n_only == 0;
            for (int k = 0; k < n_only; k++) run |= !strcmp(only[k], cases[i].name);
            if (run) run_case(&cases[i]);
        }
        run_nondet(&cases[0]);
    }
    if (timing) run_timing();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
