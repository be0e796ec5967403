/* tests/gpu_decode_check.c - on a GPU machine: generation on the GPU (attn.h's attn_gpu_decode_*,
   smollm.h's SmolGpuGen) against the CPU reference (attn_decode_*, SmolGen) on the same
   bf16-representable weights and inputs.

   (a) layer level, every mechanism (and the dense room's window, patterns and QK-norm): a
       prefill of 12 tokens then 40 decode steps for 2 sequences (a window of 8 wraps several
       times); the GPU's out at every position against attn_decode_* in float:
       max |gpu - cpu| <= 2e-2 * max |cpu| (bf16 activations and cache, fp32 accumulation).
       A mechanism attn_gpu_decode_supported refuses prints a SKIP line with its message.
   (b) model level, 2 layers (gqa; (c) the schedule "gqa,swa:6"; a pattern layer): the GPU's
       logits after the prefill and after each of 16 greedy steps against the CPU's fed the same
       tokens (max |diff| <= 3e-2 * max |logit|); every GPU token is the first largest of the
       GPU's own logits; the CPU's greedy choice agrees with it except on near-ties (the CPU's
       margin below the tolerance); the CUDA graph replay gives the eager run's tokens and
       logits bit for bit, greedy and sampled (temperature 1, top-k 20, top-p 0.9); top-k 1
       sampling is greedy. Each model case runs twice: the step of separate kernels (tuning
       dec_fused=0) and the fused step (dec_fused=1, smollm.h's THE FUSED STEP; the case checks
       that init took it), the same bounds; then the fused step at batch 11 (two row tiles of its
       GEMV) and both steps with QK-norm at batch 3.
   (d) the fused step at the SmolLM2-135M shape, batch 1 and 32, against the unfused step on the
       GPU (logits of 8 steps fed the same tokens within 3e-2 of the largest); each step with
       tuning dec_pdl=1 (programmatic dependent launch), captured and eager, gives the same logits
       bit for bit as with plain launches.
   (e) the rooms' prefill both ways: every mechanism of (a), MLA and MGA under a window of 8 (it
       wraps inside the 12-token prompt), MLA with QK-norm (its expanded cache) with and without
       that window and the models "mla,gdn", "mga,dsa", "mla:6,mga:6" (the
       unfused step) run with tuning.dec_prefill 0 (a decode step per prompt token) and 1 (the
       room's training forward, then fill kernels write the cache: lines marked dec_prefill=1,
       the default), the same bounds.
   Ends with "N passed, N failed". make tests/gpu_decode_check builds it (GPU_CHECKS). */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../smollm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name, detail);
    fflush(stdout);
}

static uint64_t rs = 0x243F6A8885A308D3ull;
static double nrand(void) { /* splitmix64 -> Box-Muller */
    uint64_t a = (rs += 0x9E3779B97F4A7C15ull), b = (rs += 0x9E3779B97F4A7C15ull);
    a = (a ^ (a >> 31)) * 0xBF58476D1CE4E5B9ull; a ^= a >> 29;
    b = (b ^ (b >> 31)) * 0xBF58476D1CE4E5B9ull; b ^= b >> 29;
    double u = ((a >> 11) + 1) * (1.0 / 9007199254740994.0), v = (b >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}
static uint16_t f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float bf2f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void *xcalloc(size_t n, size_t s) {
    void *p = calloc(n ? n : 1, s);
    if (!p) { fprintf(stderr, "gpu_decode_check: out of host memory\n"); exit(1); }
    return p;
}
/* values rounded to bf16 in place (both sides then hold the same numbers) */
static void round_bf16(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = bf2f(f2bf(x[i])); }
static void *upload_bf16(Gpu *g, const float *x, size_t n) {
    uint16_t *h = xcalloc(n, 2);
    for (size_t i = 0; i < n; i++) h[i] = f2bf(x[i]);
    void *d = gpu_alloc(g, n * 2);
    gpu_upload(g, d, h, n * 2);
    free(h);
    return d;
}
static void download_bf16(Gpu *g, float *x, const void *d, size_t n) {
    uint16_t *h = xcalloc(n, 2);
    gpu_download(g, h, d, n * 2);
    for (size_t i = 0; i < n; i++) x[i] = bf2f(h[i]);
    free(h);
}
/* max |a - ref| / max |ref|; 1e30 when a is not finite */
static double max_rel(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) return 1e30;
        double e = fabs((double)a[i] - ref[i]);
        if (e > num) num = e;
        if (fabs(ref[i]) > den) den = fabs(ref[i]);
    }
    return num / (den > 0 ? den : 1);
}

/* ---- (a) one layer ---- */

typedef struct { const char *name; AttnKind kind; int window, global, stride, dilation, block, qk_norm; } LayerCase;

/* whole: tuning.dec_prefill (the rooms' forward prefills; the dense room's always is) */
static void check_layer(Gpu *gpu, const LayerCase *lc, int whole) {
    enum { B = 2, T0 = 12, STEPS = 40, D = 128, H = 4 };
    const int cap = T0 + STEPS;
    char name[96], err[512], detail[160];
    snprintf(name, sizeof name, "layer %s: prefill %d + %d steps%s", lc->name, T0, STEPS,
             whole ? " dec_prefill=1" : "");
    gpu->tuning.dec_prefill = GPU_TUNE_VARIANT(whole);
    AttnConfig c = {0};
    c.kind = lc->kind; c.d_model = D; c.n_heads = H; c.window = lc->window; c.global_tokens = lc->global;
    c.stride = lc->stride; c.dilation = lc->dilation; c.pattern_block = lc->block; c.qk_norm = lc->qk_norm;
    /* DSA: k above the context, so near-ties in random indexer scores cannot pick different keys
       on the two sides (the selection itself: tests/gpu_decode_rooms_check, which compares only
       tokens without near-ties); hier needs a window */
    if (c.kind == ATTN_DSA) { c.topk = 64; c.indexer_heads = 2; c.indexer_dim = 32; }
    if (c.kind == ATTN_HIER) c.window = 8;
    if (attn_resolve(&c, err, sizeof err)) { report(0, name, err); return; }
    if (attn_gpu_decode_supported(&c, err, sizeof err)) {
        printf("SKIP %-58s %s\n", name, err);
        return;
    }
    AttnParamSpec sp[ATTN_MAX_PARAMS];
    int ns = attn_param_specs(&c, sp);
    size_t np = attn_param_count(&c);
    float *w = xcalloc(np, sizeof(float));
    for (size_t i = 0; i < np; i++) w[i] = (float)(nrand() / sqrt((double)D));
    for (int i = 0; i < ns; i++)
        if (sp[i].is_norm)
            for (size_t j = 0; j < sp[i].numel; j++) w[sp[i].offset + j] = (float)(1 + 0.1 * nrand());
    attn_param_init_special(&c, w, 7);
    round_bf16(w, np);
    size_t nx = (size_t)B * cap * D;
    float *x = xcalloc(nx, sizeof(float)), *ref = xcalloc(nx, sizeof(float)), *got = xcalloc(nx, sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = (float)nrand();
    round_bf16(x, nx);
    /* x is [B][cap][d]: the prompt is each sequence's first T0 rows, packed [B][T0][d] */
    float *xp = xcalloc((size_t)B * T0 * D, sizeof(float)), *op = xcalloc((size_t)B * T0 * D, sizeof(float));
    float *xt = xcalloc((size_t)B * D, sizeof(float)), *ot = xcalloc((size_t)B * D, sizeof(float));
    for (int b = 0; b < B; b++) memcpy(xp + (size_t)b * T0 * D, x + (size_t)b * cap * D, sizeof(float) * T0 * D);
    /* the CPU reference */
    AttnCache kc;
    int rc = attn_decode_init(&kc, &c, B, cap, err, sizeof err);
    if (!rc) rc = attn_decode_prefill(&kc, w, xp, op, T0, err, sizeof err);
    for (int b = 0; b < B && !rc; b++)
        memcpy(ref + (size_t)b * cap * D, op + (size_t)b * T0 * D, sizeof(float) * T0 * D);
    for (int t = T0; t < cap && !rc; t++) {
        for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * D, x + ((size_t)b * cap + t) * D, sizeof(float) * D);
        rc = attn_decode_step(&kc, w, xt, ot, err, sizeof err);
        for (int b = 0; b < B; b++) memcpy(ref + ((size_t)b * cap + t) * D, ot + (size_t)b * D, sizeof(float) * D);
    }
    attn_decode_free(&kc);
    if (rc) { report(0, name, err); goto out; }
    /* the GPU */
    void *dw = upload_bf16(gpu, w, np), *dxp = upload_bf16(gpu, xp, (size_t)B * T0 * D);
    void *dop = gpu_alloc(gpu, (size_t)B * T0 * D * 2), *dxt = gpu_alloc(gpu, (size_t)B * D * 2);
    void *dot = gpu_alloc(gpu, (size_t)B * D * 2);
    int *dpos = gpu_alloc(gpu, 16);
    AttnGpuCache kg;
    rc = attn_gpu_decode_init(gpu, &kg, &c, dw, B, cap, dpos, err, sizeof err);
    if (!rc) rc = attn_gpu_decode_prefill(gpu, &kg, dw, dxp, dop, T0, err, sizeof err);
    if (!rc) {
        download_bf16(gpu, op, dop, (size_t)B * T0 * D);
        for (int b = 0; b < B; b++)
            memcpy(got + (size_t)b * cap * D, op + (size_t)b * T0 * D, sizeof(float) * T0 * D);
    }
    for (int t = T0; t < cap && !rc; t++) {
        for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * D, x + ((size_t)b * cap + t) * D, sizeof(float) * D);
        uint16_t hb[B * D];
        for (int i = 0; i < B * D; i++) hb[i] = f2bf(xt[i]);
        gpu_upload(gpu, dxt, hb, sizeof hb);
        rc = attn_gpu_decode_step(gpu, &kg, dw, dxt, dot, err, sizeof err);
        if (rc) break;
        int next = t + 1; /* the caller advances the position (smollm's step does it on the device) */
        gpu_upload(gpu, dpos, &next, sizeof next);
        kg.pos = next;
        download_bf16(gpu, ot, dot, (size_t)B * D);
        for (int b = 0; b < B; b++) memcpy(got + ((size_t)b * cap + t) * D, ot + (size_t)b * D, sizeof(float) * D);
    }
    if (rc) report(0, name, err);
    else {
        double e = 0;
        for (int t = 0; t < cap; t++) { /* the worst position, each scaled by its own max */
            for (int b = 0; b < B; b++) {
                double ei = max_rel(got + ((size_t)b * cap + t) * D, ref + ((size_t)b * cap + t) * D, D);
                if (ei > e) e = ei;
            }
        }
        snprintf(detail, sizeof detail, "worst max|diff|/max|ref| %.2e (<= 2e-2), cache %zu B/seq", e,
                 attn_gpu_decode_cache_bytes(&c, cap));
        report(e <= 2e-2, name, detail);
    }
    attn_gpu_decode_free(gpu, &kg);
    gpu_free(gpu, dw); gpu_free(gpu, dxp); gpu_free(gpu, dop); gpu_free(gpu, dxt); gpu_free(gpu, dot);
    gpu_free(gpu, dpos);
out:
    free(w); free(x); free(ref); free(got); free(xp); free(op); free(xt); free(ot);
}

/* ---- (b), (c) the model ---- */

static int first_max(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* fused: the steps with tuning dec_fused = 1 (smollm.h's fused step) or 2 (the persistent
   step), which init must take (the persistent one falls back to the fused one where the layers'
   heads differ: falls_back). A prompt of long_prompt tokens (0: 10) */
static int long_prompt, falls_back;
static void check_model_as(Gpu *gpu, const char *label0, const char *sched, int window_base, int B, int qk,
                           int fused) {
    enum { STEPS = 16, V = 256 };
    int T0 = long_prompt ? long_prompt : 10;
    char err[512], name[160], detail[200], label[100];
    snprintf(label, sizeof label, "%s%s B %d%s%s", label0, qk ? " qk_norm" : "", B,
             fused == 2 ? " persistent" : fused ? " fused" : "", long_prompt ? " long prompt" : "");
    SmolConfig cfg = {0};
    cfg.vocab_size = V; cfg.d_model = 128; cfg.n_layers = 2; cfg.n_heads = 4; cfg.ffn_dim = 256;
    cfg.attn.kind = ATTN_GQA;
    cfg.attn.window = window_base;
    cfg.attn.qk_norm = qk;
    gpu->tuning.dec_fused = fused;
    if (sched) snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "%s", sched);
    SmolModel cm, gm;
    if (smollm_init(&cm, &cfg, NULL, 1, 1, err, sizeof err)) { report(0, label, err); return; }
    if (smollm_init(&gm, &cfg, gpu, 1, 1, err, sizeof err)) { report(0, label, err); smollm_free(&cm); return; }
    round_bf16(cm.params, cm.n_params);
    gpu_upload(gpu, gm.params, cm.params, cm.n_params * sizeof(float));
    smollm_sync_weights(&gm);
    int prompt[B * T0];
    for (int i = 0; i < B * T0; i++) prompt[i] = (i * 37 + 11) % V;
    SmolGen cg;
    SmolGpuGen eg, rg; /* eager, graph */
    SmolSampler greedy = {0};
    if (smollm_gen_init(&cg, &cm, B, T0 + STEPS + 1, err, sizeof err) ||
        smollm_gpu_gen_init(&eg, &gm, B, T0 + STEPS + 1, &greedy, 1, 1, err, sizeof err) ||
        smollm_gpu_gen_init(&rg, &gm, B, T0 + STEPS + 1, &greedy, 1, 0, err, sizeof err)) {
        snprintf(name, sizeof name, "model %s: init", label);
        if (strstr(err, "no GPU decode kernels")) printf("SKIP %-58s %s\n", name, err);
        else report(0, name, err);
        smollm_free(&cm); smollm_free(&gm);
        gpu->tuning.dec_fused = 0;
        return;
    }
    int want = fused == 2 && falls_back ? 1 : fused;
    snprintf(name, sizeof name, "model %s: %s step taken", label,
             want == 2 ? "the persistent" : want ? "the fused" : "the unfused");
    snprintf(detail, sizeof detail, "dec_fused=%d%s; took %d", fused, fused ? " and a dense pre-norm model" : "", eg.fused);
    report(eg.fused == want && rg.fused == want, name, detail);
    float *lg = xcalloc((size_t)B * V, sizeof(float)), *lr = xcalloc((size_t)B * V, sizeof(float));
    double worst = 0;
    int argmax_ok = 1, greedy_ok = 1, graph_same = 1, rc = 0;
    rc |= smollm_prefill(&cg, &cm, prompt, T0, err, sizeof err);
    rc |= smollm_gpu_prefill(&eg, &gm, prompt, T0, err, sizeof err);
    rc |= smollm_gpu_prefill(&rg, &gm, prompt, T0, err, sizeof err);
    for (int s = 0; s <= STEPS && !rc; s++) {
        gpu_download(gpu, lg, eg.logits, sizeof(float) * B * V);
        gpu_download(gpu, lr, rg.logits, sizeof(float) * B * V);
        if (memcmp(lg, lr, sizeof(float) * B * V) || memcmp(eg.tokens, rg.tokens, sizeof(int) * B)) graph_same = 0;
        double e = max_rel(lg, cg.logits, (size_t)B * V);
        if (e > worst) worst = e;
        for (int b = 0; b < B; b++) {
            int tg = eg.tokens[b];
            if (tg != first_max(lg + (size_t)b * V, V)) argmax_ok = 0;
            int tc = first_max(cg.logits + (size_t)b * V, V);
            double mx = fabs(cg.logits[(size_t)b * V + tc]);
            if (tc != tg && cg.logits[(size_t)b * V + tc] - cg.logits[(size_t)b * V + tg] > 3e-2 * (mx > 1 ? mx : 1))
                greedy_ok = 0; /* a real disagreement, not a near-tie under bf16 */
        }
        if (s == STEPS) break;
        rc |= smollm_decode_step(&cg, &cm, eg.tokens, err, sizeof err); /* the CPU fed the GPU's tokens */
        rc |= smollm_gpu_decode_step(&eg, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&rg, &gm, err, sizeof err);
    }
    if (rc) {
        snprintf(name, sizeof name, "model %s", label);
        report(0, name, err);
    } else {
        snprintf(name, sizeof name, "model %s: logits, prefill + %d steps", label, STEPS);
        snprintf(detail, sizeof detail, "worst max|diff|/max|logit| %.2e (<= 3e-2)", worst);
        report(worst <= 3e-2, name, detail);
        snprintf(name, sizeof name, "model %s: GPU greedy = argmax of GPU logits", label);
        report(argmax_ok, name, "");
        snprintf(name, sizeof name, "model %s: CPU greedy agrees (but near-ties)", label);
        report(greedy_ok, name, "");
        snprintf(name, sizeof name, "model %s: CUDA graph replay == eager", label);
        report(graph_same, name, "tokens and logits bitwise");
    }
    smollm_gpu_gen_free(&eg, &gm);
    smollm_gpu_gen_free(&rg, &gm);
    smollm_gen_free(&cg);
    /* sampled: graph == eager token for token; top-k 1 == greedy */
    SmolSampler samp = {1.0f, 20, 0.9f}, top1 = {1.0f, 1, 0};
    int same = 1, top1_greedy = 1;
    rc = smollm_gpu_gen_init(&eg, &gm, B, T0 + STEPS + 1, &samp, 42, 1, err, sizeof err);
    rc |= smollm_gpu_gen_init(&rg, &gm, B, T0 + STEPS + 1, &samp, 42, 0, err, sizeof err);
    SmolGpuGen kg;
    rc |= smollm_gpu_gen_init(&kg, &gm, B, T0 + STEPS + 1, &top1, 42, 0, err, sizeof err);
    if (!rc) {
        rc |= smollm_gpu_prefill(&eg, &gm, prompt, T0, err, sizeof err);
        rc |= smollm_gpu_prefill(&rg, &gm, prompt, T0, err, sizeof err);
        rc |= smollm_gpu_prefill(&kg, &gm, prompt, T0, err, sizeof err);
    }
    for (int s = 0; s < STEPS && !rc; s++) {
        if (memcmp(eg.tokens, rg.tokens, sizeof(int) * B)) same = 0;
        gpu_download(gpu, lg, kg.logits, sizeof(float) * B * V);
        for (int b = 0; b < B; b++)
            if (kg.tokens[b] != first_max(lg + (size_t)b * V, V)) top1_greedy = 0;
        rc |= smollm_gpu_decode_step(&eg, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&rg, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&kg, &gm, err, sizeof err);
    }
    snprintf(name, sizeof name, "model %s: sampled, graph == eager (seed 42)", label);
    report(!rc && same, name, rc ? err : "temperature 1, top-k 20, top-p 0.9");
    snprintf(name, sizeof name, "model %s: top-k 1 sampling is greedy", label);
    report(!rc && top1_greedy, name, rc ? err : "");
    smollm_gpu_gen_free(&eg, &gm);
    smollm_gpu_gen_free(&rg, &gm);
    smollm_gpu_gen_free(&kg, &gm);
    free(lg); free(lr);
    smollm_free(&cm);
    smollm_free(&gm);
    gpu->tuning.dec_fused = 0;
}

/* the three steps: the separate kernels, the fused ones, the persistent kernel */
static void check_model(Gpu *gpu, const char *label, const char *sched, int window_base) {
    check_model_as(gpu, label, sched, window_base, 2, 0, 0);
    check_model_as(gpu, label, sched, window_base, 2, 0, 1);
    check_model_as(gpu, label, sched, window_base, 2, 0, 2);
}

/* (e) a model of the other rooms with tuning.dec_prefill = whole (the unfused step: the fused one
   takes dense pre-norm models only) */
static void check_model_prefill(Gpu *gpu, const char *sched, int whole) {
    char label[80];
    snprintf(label, sizeof label, "%s%s", sched, whole ? " dec_prefill=1" : "");
    gpu->tuning.dec_prefill = GPU_TUNE_VARIANT(whole); /* read by every layer's attn_gpu_decode_prefill */
    check_model_as(gpu, label, sched, 0, 2, 0, 0);
    gpu->tuning.dec_prefill = 0; /* the default */
}

/* (d) the fused step at the SmolLM2-135M shape (30 layers, d 576, 9 heads of 64, 3 KV heads, ffn
   1536, vocab 49152; random weights) against the step of separate kernels on the GPU: after a
   prompt of 40 tokens, 8 greedy steps fed the same tokens (the unfused run's), logits within
   3e-2 of the largest (two bf16 paths, different summation orders). The CPU reference of this
   size would take minutes; (b) and (c) hold both steps to it at the small shape. */
/* the anchor's model (SmolLM2-135M GQA, 3 KV heads, random weights) on the GPU and B prompts of
   T0 tokens: 0, or -1 with the failure reported under name */
static int anchor_model(Gpu *gpu, SmolModel *gm, int B, int T0, int **prompt, const char *name) {
    char err[512];
    SmolConfig cfg = {0};
    cfg.vocab_size = 49152;
    cfg.attn.kind = ATTN_GQA;
    cfg.attn.n_kv_heads = 3;
    if (smollm_init(gm, &cfg, gpu, 1, 1, err, sizeof err)) { report(0, name, err); return -1; }
    *prompt = xcalloc((size_t)B * T0, sizeof(int));
    for (int i = 0; i < B * T0; i++) (*prompt)[i] = (i * 7919 + 13) % gm->cfg.vocab_size;
    return 0;
}

static void check_fused_shape(Gpu *gpu, int B) {
    enum { T0 = 40, STEPS = 8 };
    char err[512], name[120], detail[160];
    SmolModel gm;
    int *prompt, rc = 0;
    snprintf(name, sizeof name, "135M shape B %d: fused step = unfused step (logits, %d steps)", B, STEPS);
    if (anchor_model(gpu, &gm, B, T0, &prompt, name)) return;
    int V = gm.cfg.vocab_size;
    SmolGpuGen ug, fg, pg[4]; /* pg: by programmatic dependent launch, fused (graph, eager), unfused (graph, eager) */
    SmolSampler greedy = {0};
    gpu->tuning.dec_fused = 0;
    rc |= smollm_gpu_gen_init(&ug, &gm, B, T0 + STEPS + 1, &greedy, 1, 0, err, sizeof err);
    gpu->tuning.dec_fused = 1;
    rc |= smollm_gpu_gen_init(&fg, &gm, B, T0 + STEPS + 1, &greedy, 1, 0, err, sizeof err);
    for (int e = 0; e < 4; e++) {
        gpu->tuning.dec_fused = e < 2;
        rc |= smollm_gpu_gen_init(&pg[e], &gm, B, T0 + STEPS + 1, &greedy, 1, e % 2, err, sizeof err);
    }
    gpu->tuning.dec_fused = 0;
    if (rc) { report(0, name, err); smollm_free(&gm); free(prompt); return; }
    float *lu = xcalloc((size_t)B * V, sizeof(float)), *lf = xcalloc((size_t)B * V, sizeof(float));
    float *lp = xcalloc((size_t)B * V, sizeof(float));
    double worst = 0;
    int pdl_same = 1;
    rc |= smollm_gpu_prefill(&ug, &gm, prompt, T0, err, sizeof err);
    rc |= smollm_gpu_prefill(&fg, &gm, prompt, T0, err, sizeof err);
    for (int e = 0; e < 4; e++) rc |= smollm_gpu_prefill(&pg[e], &gm, prompt, T0, err, sizeof err);
    for (int s = 0; s < STEPS && !rc; s++) {
        rc |= smollm_gpu_set_tokens(&fg, &gm, ug.tokens, err, sizeof err);
        for (int e = 0; e < 4; e++) rc |= smollm_gpu_set_tokens(&pg[e], &gm, ug.tokens, err, sizeof err);
        rc |= smollm_gpu_decode_step(&ug, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&fg, &gm, err, sizeof err);
        gpu_download(gpu, lu, ug.logits, sizeof(float) * B * V);
        gpu_download(gpu, lf, fg.logits, sizeof(float) * B * V);
        double e = max_rel(lf, lu, (size_t)B * V);
        if (e > worst) worst = e;
        /* the launches change, not the arithmetic: the same bits (a kernel reading its input
           before the kernel ahead wrote it would not give them) */
        for (int k = 0; k < 4 && !rc; k++) {
            gpu->tuning.dec_pdl = 1; /* read at each launch and at the graph's capture */
            rc |= smollm_gpu_decode_step(&pg[k], &gm, err, sizeof err);
            gpu->tuning.dec_pdl = 0;
            gpu_download(gpu, lp, pg[k].logits, sizeof(float) * B * V);
            if (memcmp(lp, k < 2 ? lf : lu, sizeof(float) * B * V)) pdl_same = 0;
        }
    }
    snprintf(detail, sizeof detail, "fused taken %d; worst max|diff|/max|logit| %.2e (<= 3e-2)", fg.fused, worst);
    report(!rc && fg.fused && worst <= 3e-2, name, rc ? err : detail);
    snprintf(name, sizeof name, "135M shape B %d: both steps, dec_pdl=1 (graph, eager) = dec_pdl=0, bit for bit", B);
    snprintf(detail, sizeof detail, "%s", gpu->cc_major >= 9 ? "programmatic dependent launch" :
             "compute capability below 9.0: plain launches");
    report(!rc && pg[0].fused && pg[1].fused && !pg[2].fused && !pg[3].fused && pdl_same, name, rc ? err : detail);
    smollm_gpu_gen_free(&ug, &gm);
    smollm_gpu_gen_free(&fg, &gm);
    for (int e = 0; e < 4; e++) smollm_gpu_gen_free(&pg[e], &gm);
    smollm_free(&gm);
    free(prompt); free(lu); free(lf); free(lp);
}

/* (d) the persistent step at the SmolLM2-135M shape against the step of separate kernels (as
   check_fused_shape, the same bound), and its captured graph against eager launches, bitwise */
static void check_persist_shape(Gpu *gpu, int B) {
    enum { T0 = 40, STEPS = 8 };
    char err[512], name[120], detail[160];
    SmolModel gm;
    int *prompt, rc = 0;
    snprintf(name, sizeof name, "135M shape B %d: persistent step = unfused step (logits, %d steps)", B, STEPS);
    if (anchor_model(gpu, &gm, B, T0, &prompt, name)) return;
    int V = gm.cfg.vocab_size;
    SmolGpuGen ug, pg, pe; /* unfused (graph), persistent (graph), persistent (eager) */
    SmolSampler greedy = {0};
    gpu->tuning.dec_fused = 0;
    rc |= smollm_gpu_gen_init(&ug, &gm, B, T0 + STEPS + 1, &greedy, 1, 0, err, sizeof err);
    gpu->tuning.dec_fused = 2;
    rc |= smollm_gpu_gen_init(&pg, &gm, B, T0 + STEPS + 1, &greedy, 1, 0, err, sizeof err);
    rc |= smollm_gpu_gen_init(&pe, &gm, B, T0 + STEPS + 1, &greedy, 1, 1, err, sizeof err);
    gpu->tuning.dec_fused = 0;
    if (rc) { report(0, name, err); smollm_free(&gm); free(prompt); return; }
    float *lu = xcalloc((size_t)B * V, sizeof(float)), *lp = xcalloc((size_t)B * V, sizeof(float));
    float *le = xcalloc((size_t)B * V, sizeof(float));
    double worst = 0;
    int same = 1;
    rc |= smollm_gpu_prefill(&ug, &gm, prompt, T0, err, sizeof err);
    rc |= smollm_gpu_prefill(&pg, &gm, prompt, T0, err, sizeof err);
    rc |= smollm_gpu_prefill(&pe, &gm, prompt, T0, err, sizeof err);
    for (int s = 0; s < STEPS && !rc; s++) {
        rc |= smollm_gpu_set_tokens(&pg, &gm, ug.tokens, err, sizeof err);
        rc |= smollm_gpu_set_tokens(&pe, &gm, ug.tokens, err, sizeof err);
        rc |= smollm_gpu_decode_step(&ug, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&pg, &gm, err, sizeof err);
        rc |= smollm_gpu_decode_step(&pe, &gm, err, sizeof err);
        gpu_download(gpu, lu, ug.logits, sizeof(float) * B * V);
        gpu_download(gpu, lp, pg.logits, sizeof(float) * B * V);
        gpu_download(gpu, le, pe.logits, sizeof(float) * B * V);
        double e = max_rel(lp, lu, (size_t)B * V);
        if (e > worst) worst = e;
        if (memcmp(lp, le, sizeof(float) * B * V)) same = 0;
    }
    snprintf(detail, sizeof detail, "persistent taken %d; worst max|diff|/max|logit| %.2e (<= 3e-2)", pg.fused, worst);
    report(!rc && pg.fused == 2 && pe.fused == 2 && worst <= 3e-2, name, rc ? err : detail);
    snprintf(name, sizeof name, "135M shape B %d: persistent step, graph = eager, bit for bit", B);
    report(!rc && same, name, rc ? err : "logits of every step");
    smollm_gpu_gen_free(&ug, &gm);
    smollm_gpu_gen_free(&pg, &gm);
    smollm_gpu_gen_free(&pe, &gm);
    smollm_free(&gm);
    free(prompt); free(lu); free(lp); free(le);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    Gpu gpu;
    if (gpu_init(&gpu, 0)) { fprintf(stderr, "gpu_decode_check: no usable GPU: %s\n", gpu.err); return 1; }
    /* (a) every mechanism by its registered name, then the dense room's options */
    for (int k = 1; k <= ATTN_KIND_LAST; k++) {
        LayerCase lc = {attn_kind_name((AttnKind)k), (AttnKind)k, k == ATTN_SWA ? 8 : 0, 0, 0, 0, 0, 0};
        check_layer(&gpu, &lc, 0);
        check_layer(&gpu, &lc, 1);
    }
    /* the rooms' forward prefills past a window's wrap (MLA, MGA with W = 8 < the prompt's 12) */
    static const LayerCase wrap[] = {{"mla W=8", ATTN_MLA, 8, 0, 0, 0, 0, 0}, {"mga W=8", ATTN_MGA, 8, 0, 0, 0, 0, 0},
                                     {"mla W=8 qk_norm (expanded)", ATTN_MLA, 8, 0, 0, 0, 0, 1},
                                     {"mla qk_norm (expanded)", ATTN_MLA, 0, 0, 0, 0, 0, 1}};
    for (size_t i = 0; i < sizeof wrap / sizeof *wrap; i++) {
        check_layer(&gpu, &wrap[i], 0);
        check_layer(&gpu, &wrap[i], 1);
    }
    static const LayerCase dense[] = {
        {"gqa W=8 qk_norm", ATTN_GQA, 8, 0, 0, 0, 0, 1},
        {"mqa W=60 (past cap: no ring)", ATTN_MQA, 60, 0, 0, 0, 0, 0},
        {"mha local+global W=8 G=4", ATTN_MHA, 8, 4, 0, 0, 0, 0},
        {"gqa dilated W=4 R=3 block 2", ATTN_GQA, 4, 0, 0, 3, 2, 0},
        {"gqa strided W=6 S=8 block 2", ATTN_GQA, 6, 0, 8, 0, 2, 0},
        {"swa W=5 G=2 R=2 block 3", ATTN_SWA, 5, 2, 0, 2, 3, 0},
    };
    for (size_t i = 0; i < sizeof dense / sizeof *dense; i++) check_layer(&gpu, &dense[i], 0);
    /* (b) the model; (c) schedules mixing dense, window and patterned layers */
    check_model(&gpu, "gqa", NULL, 0);
    check_model(&gpu, "gqa,swa:6", "gqa,swa:6", 0);
    falls_back = 1; /* gqa's 2 kv heads beside mha's 4: the persistent step takes one shape */
    check_model(&gpu, "gqa,mha:5:global=2", "gqa,mha:5:global=2", 0);
    falls_back = 0;
    /* the fused step at more than one row tile of its GEMV (8 rows) and with QK-norm */
    check_model_as(&gpu, "gqa", NULL, 0, 11, 0, 1);
    check_model_as(&gpu, "gqa", NULL, 0, 3, 1, 0);
    check_model_as(&gpu, "gqa", NULL, 0, 3, 1, 1);
    /* the persistent step with QK-norm, at its largest batch, and over more positions than one
       round of 32 slots per split (T0 10 + 16 steps stays under it: 40 + 16 does not) */
    check_model_as(&gpu, "gqa", NULL, 0, 3, 1, 2);
    check_model_as(&gpu, "gqa", NULL, 0, 8, 0, 2);
    long_prompt = 1100; /* past 1024 cached slots the persistent step's splits take rounds of 32 */
    check_model_as(&gpu, "gqa", NULL, 0, 2, 0, 2);
    check_model_as(&gpu, "gqa", NULL, 0, 2, 0, 1);
    long_prompt = 0;
    /* (d) the fused step at the anchor's shape, batch 1 and 32 (4 row tiles); the persistent
       step at batch 1 and 8 */
    check_fused_shape(&gpu, 1);
    check_fused_shape(&gpu, 32);
    check_persist_shape(&gpu, 1);
    check_persist_shape(&gpu, 8);
    /* (e) the other rooms in a model, with either prefill */
    static const char *rooms[] = {"mla,gdn", "mga,dsa", "mla:6,mga:6"};
    for (size_t i = 0; i < sizeof rooms / sizeof *rooms; i++)
        for (int whole = 0; whole < 2; whole++) check_model_prefill(&gpu, rooms[i], whole);
    gpu_free_all(&gpu);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
