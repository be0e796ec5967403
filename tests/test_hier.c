/* tests/test_hier.c - attn/hier.h (multi-scale attention: sliding window + mean-pooled blocks)
   on the CPU, in double precision (built with -DABLATE_REAL=double; make test
   runs it with ./ablate-cpu as its argument).

   Checks:
     finite-difference gradients of the whole block (central, h = 1e-5, L = sum(out * R) for a
       fixed random R; pass when |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|)): dx and
       every weight tensor, GQA with coarse keys present, with and without qk_norm
     causality: changing token t+1 of x leaves the outputs up to t unchanged, bit for bit
     equivalence: hier_block > T (no coarse key) equals swa with the same window and weights
       (out, dx, dw to 1e-12)
     a hand-computed case (T=5, W=2, P=2: the key lists written out below) against a naive
       softmax over the block's own q, k, v
     resolve (window required, hier_block default 64), the GPU's head dims, KV bytes, FLOPs
       (no coarse key: swa's plus the pooling), the schedule hier:window=8,gqa
     the model: ablate-cpu train --attn hier ... runs and its loss falls; so does a schedule
       hier:window=8,gqa
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h" /* report, random inputs, check_grad */

static const char *ablate_bin = "./ablate-cpu";

/* one block with its inputs, weights, activations and scratch */
typedef struct {
    AttnConfig cfg;
    int B, T;
    ops_real *x, *w, *R, *out, *act, *stat, *scr;
    AttnActs a;
    AttnScratch s;
} Block;

static AttnConfig hier_cfg(int H, int KV, int W, int P, int qk) {
    AttnConfig c = {0};
    c.kind = ATTN_HIER; c.d_model = 8; c.n_heads = H; c.n_kv_heads = KV; c.head_dim = 4;
    c.window = W; c.hier_block = P; c.qk_norm = qk; c.rope_theta = 100.0f;
    return c;
}

/* weights from seed (the same seed gives the same weights to configs of equal layout) */
static void block_setup(Block *b, AttnConfig cfg, int B, int T, uint64_t seed) {
    char err[256];
    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    if (attn_resolve(&b->cfg, err, sizeof err)) { printf("setup: %s\n", err); exit(1); }
    b->B = B; b->T = T;
    size_t N = (size_t)B * T, d = b->cfg.d_model, np = attn_param_count(&b->cfg), ae, se;
    check_rng = seed;
    b->x = rnd(N * d, 1); b->w = rnd(np, 0.5); b->R = rnd(N * d, 1); b->out = zeros(N * d);
    AttnParamSpec ps[ATTN_MAX_PARAMS];
    int n = attn_param_specs(&b->cfg, ps);
    for (int i = 0; i < n; i++) /* norm scales around 1 so their gradients show */
        if (ps[i].is_norm) for (size_t j = 0; j < ps[i].numel; j++) b->w[ps[i].offset + j] = 1 + 0.3 * nrand();
    attn_act_sizes(&b->cfg, B, T, &ae, &se);
    b->act = zeros(ae); b->stat = zeros(se); b->scr = zeros(attn_scratch_elems(&b->cfg, B, T));
    attn_acts_bind(&b->cfg, &b->a, NULL, b->act, b->stat, B, T);
    attn_scratch_bind(&b->cfg, &b->s, NULL, b->scr, B, T);
}
static void block_free(Block *b) { free(b->x); free(b->w); free(b->R); free(b->out); free(b->act); free(b->stat); free(b->scr); }

static double block_loss(void *p) {
    Block *b = p;
    if (attn_forward(NULL, &b->cfg, b->w, &b->a, b->x, b->out, b->B, b->T)) { printf("forward failed\n"); exit(1); }
    return dot(b->out, b->R, (size_t)b->B * b->T * b->cfg.d_model);
}
/* forward then backward of L = sum(out * R): dx, dw (zeroed first) */
static void block_grads(Block *b, ops_real *dx, ops_real *dw) {
    block_loss(b);
    memset(dw, 0, sizeof(ops_real) * attn_param_count(&b->cfg));
    if (attn_backward(NULL, &b->cfg, b->w, dw, &b->a, &b->s, b->x, b->R, dx, b->B, b->T)) {
        printf("backward failed\n");
        exit(1);
    }
}

static void test_grad(int H, int KV, int W, int P, int qk, int T) {
    Block b;
    block_setup(&b, hier_cfg(H, KV, W, P, qk), 2, T, 11);
    size_t N = (size_t)b.B * T, d = b.cfg.d_model, np = attn_param_count(&b.cfg);
    ops_real *dx = zeros(N * d), *dw = zeros(np);
    block_grads(&b, dx, dw);
    char name[192];
    snprintf(name, sizeof name, "hier block grad dx H=%d KV=%d W=%d P=%d qk=%d T=%d", H, KV, W, P, qk, T);
    check_grad(name, block_loss, &b, b.x, dx, N * d, 200);
    AttnParamSpec ps[ATTN_MAX_PARAMS];
    int n = attn_param_specs(&b.cfg, ps);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "hier block grad %.95s W=%d P=%d qk=%d", ps[i].name, W, P, qk);
        check_grad(name, block_loss, &b, b.w + ps[i].offset, dw + ps[i].offset, ps[i].numel, 80);
    }
    free(dx); free(dw);
    block_free(&b);
}

/* changing token t+1 (every feature) never changes an output at or before t */
static void test_causal(void) {
    Block b;
    int T = 12, d = 8;
    block_setup(&b, hier_cfg(4, 2, 3, 2, 0), 1, T, 5);
    ops_real *ref = zeros((size_t)T * d);
    block_loss(&b);
    memcpy(ref, b.out, sizeof(ops_real) * T * d);
    int ok = 1, bad_t = -1;
    for (int t = 0; t + 1 < T; t++) {
        ops_real keep[8];
        memcpy(keep, b.x + (size_t)(t + 1) * d, sizeof keep);
        for (int i = 0; i < d; i++) b.x[(size_t)(t + 1) * d + i] += 1.5;
        block_loss(&b);
        for (size_t i = 0; i < (size_t)(t + 1) * d; i++)
            if (b.out[i] != ref[i]) { ok = 0; bad_t = t; }
        int moved = 0; /* and the change does reach t+1 (the check can fail) */
        for (int i = 0; i < d; i++) moved |= b.out[(size_t)(t + 1) * d + i] != ref[(size_t)(t + 1) * d + i];
        if (!moved) { ok = 0; bad_t = t; }
        memcpy(b.x + (size_t)(t + 1) * d, keep, sizeof keep);
    }
    char det[64];
    snprintf(det, sizeof det, bad_t < 0 ? "T=%d, every t" : "first bad t=%d", bad_t < 0 ? T : bad_t);
    report(ok, "hier block leaks nothing from the future (W=3, P=2)", det);
    free(ref);
    block_free(&b);
}

/* hier_block > T: no coarse key, so hier is swa with the same window (same weight layout) */
static void test_equals_swa(int qk) {
    int T = 9, W = 3;
    Block h, s;
    AttnConfig sc = hier_cfg(4, 2, W, 0, qk);
    sc.kind = ATTN_SWA;
    block_setup(&h, hier_cfg(4, 2, W, T + 1, qk), 2, T, 7);
    block_setup(&s, sc, 2, T, 7);
    size_t N = (size_t)2 * T, d = 8, np = attn_param_count(&h.cfg);
    ops_real *dxh = zeros(N * d), *dwh = zeros(np), *dxs = zeros(N * d), *dws = zeros(np);
    block_grads(&h, dxh, dwh);
    block_grads(&s, dxs, dws);
    double e = fmax(max_abs_diff(h.out, s.out, N * d), fmax(max_abs_diff(dxh, dxs, N * d), max_abs_diff(dwh, dws, np)));
    char name[96], det[64];
    snprintf(name, sizeof name, "hier with hier_block > T equals swa W=%d qk=%d (out, dx, dw)", W, qk);
    snprintf(det, sizeof det, "params %zu/%zu, max |diff| %.1e", np, attn_param_count(&s.cfg), e);
    report(np == attn_param_count(&s.cfg) && e <= 1e-12, name, det);
    free(dxh); free(dwh); free(dxs); free(dws);
    block_free(&h);
    block_free(&s);
}

/* T=5, W=2, P=2, written out by hand: query t sees the fine keys s in [t-1, t] and the coarse
   blocks j with 2j+1 < t-1, so
     t=0: 0           t=1: 0 1        t=2: 1 2
     t=3: 2 3 + block 0 (mean of 0, 1)
     t=4: 3 4 + block 0 (block 1 = {2, 3} ends at 3, not before the window's start 3)
   The reference is a naive softmax over the block's own q, k, v (after RoPE), then o_proj. */
static void test_hand(void) {
    static const int fine[5][2] = {{0, -1}, {0, 1}, {1, 2}, {2, 3}, {3, 4}};
    static const int coarse[5] = {0, 0, 0, 1, 1}; /* block 0 or nothing */
    int T = 5, H = 2, KV = 1, hd = 4, d = 8;
    Block b;
    block_setup(&b, hier_cfg(H, KV, 2, 2, 0), 1, T, 3);
    block_loss(&b);
    const ops_real *q = b.a.q, *k = b.a.k, *v = b.a.v;
    ops_real att[5 * 2 * 4], ref[5 * 8];
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            ops_real keys[3][4], vals[3][4], sc[3], mx = -1e300, sum = 0;
            int n = 0;
            if (coarse[t]) {
                for (int i = 0; i < hd; i++) {
                    keys[n][i] = (k[0 * hd + i] + k[1 * hd + i]) / 2;
                    vals[n][i] = (v[0 * hd + i] + v[1 * hd + i]) / 2;
                }
                n++;
            }
            for (int f = 0; f < 2; f++)
                if (fine[t][f] >= 0) {
                    memcpy(keys[n], k + fine[t][f] * hd, sizeof keys[n]);
                    memcpy(vals[n], v + fine[t][f] * hd, sizeof vals[n]);
                    n++;
                }
            for (int j = 0; j < n; j++) {
                sc[j] = 0;
                for (int i = 0; i < hd; i++) sc[j] += q[(t * H + h) * hd + i] * keys[j][i];
                sc[j] /= sqrt(hd);
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = 0; j < n; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
            for (int i = 0; i < hd; i++) {
                att[(t * H + h) * hd + i] = 0;
                for (int j = 0; j < n; j++) att[(t * H + h) * hd + i] += sc[j] / sum * vals[j][i];
            }
        }
    const ops_real *wo = b.w + attn_spec_off(&b.cfg, "o_proj.weight"); /* [d, H*hd] */
    for (int t = 0; t < T; t++)
        for (int o = 0; o < d; o++) {
            ref[t * d + o] = 0;
            for (int i = 0; i < H * hd; i++) ref[t * d + o] += wo[o * H * hd + i] * att[t * H * hd + i];
        }
    double ea = max_abs_diff(att, b.a.att, (size_t)T * H * hd), eo = max_abs_diff(ref, b.out, (size_t)T * d);
    /* the coarse key must matter: without it, t=3's output would differ */
    double kc_diff = max_abs_diff(b.a.hier_kc, (ops_real[4]){(k[0] + k[4]) / 2, (k[1] + k[5]) / 2, (k[2] + k[6]) / 2,
                                                           (k[3] + k[7]) / 2}, 4);
    char det[96];
    snprintf(det, sizeof det, "att %.1e, out %.1e, pooled key %.1e", ea, eo, kc_diff);
    report(ea <= 1e-12 && eo <= 1e-12 && kc_diff <= 1e-15, "hier T=5 W=2 P=2 against the hand-written key lists", det);
    block_free(&b);
}

static void test_config(void) {
    char err[256] = "";
    AttnConfig c = hier_cfg(4, 2, 0, 0, 0);
    int rc = attn_resolve(&c, err, sizeof err);
    report(rc == -1 && strstr(err, "window >= 1") && strstr(err, "got 0"), "hier without a window is refused", err);

    c = hier_cfg(4, 2, 16, 0, 0);
    c.n_kv_heads = 0;
    rc = attn_resolve(&c, err, sizeof err);
    char det[128];
    snprintf(det, sizeof det, "rc %d, hier_block %d, kv_heads %d", rc, c.hier_block, c.n_kv_heads);
    report(rc == 0 && c.hier_block == 64 && c.n_kv_heads == 2, "hier defaults: hier_block 64, kv_heads as gqa", det);

    err[0] = 0;
    rc = attn_gpu_supported(&c, err, sizeof err); /* head dim 4: not a width of the flash kernels */
    report(rc == -1 && strstr(err, "hier") && strstr(err, "head_dim 4") && strstr(err, "--device cpu"),
           "hier: the GPU refuses a head dim its window kernels lack, naming the way out", err);
    AttnConfig g64 = hier_cfg(4, 2, 16, 0, 0);
    g64.head_dim = 64; /* 4 heads of 64 */
    err[0] = 0;
    rc = attn_resolve(&g64, err, sizeof err) || attn_gpu_supported(&g64, err, sizeof err);
    report(rc == 0, "hier: the GPU takes head dim 64 (the window on the flash kernels, attn/hier.cu.h the rest)", err);

    /* 2 (k and v) * KV 2 * hd 4 * 2 bytes = 32 per token in a plain cache; one pooled pair per 64 */
    size_t kv = attn_kv_bytes_per_token(&c, 2);
    c.hier_block = 5;
    size_t kv5 = attn_kv_bytes_per_token(&c, 2);
    snprintf(det, sizeof det, "P=64: %zu, P=5: %zu", kv, kv5);
    report(kv == 1 && kv5 == 7, "hier KV bytes per token: 2*KV*hd*bytes / P, rounded up", det);

    /* no coarse key (P > T): swa's FLOPs plus the pooling's 2*KV*hd */
    AttnConfig s = hier_cfg(4, 2, 16, 0, 0), h = hier_cfg(4, 2, 16, 1000, 0);
    s.kind = ATTN_SWA;
    attn_resolve(&s, err, sizeof err);
    attn_resolve(&h, err, sizeof err);
    double fs = attn_flops_per_token(&s, 256), fh = attn_flops_per_token(&h, 256);
    /* P = 16 at T = 256: t sees min(t+1, 16) fine keys and floor((t-15)/16) coarse ones */
    h.hier_block = 16;
    double coarse = 0;
    for (int t = 15; t < 256; t++) coarse += (t - 15) / 16;
    double f16 = attn_flops_per_token(&h, 256), want16 = fh + 4.0 * 4 * 4 * coarse / 256;
    snprintf(det, sizeof det, "swa %.1f, hier P>T %.1f, P=16 %.1f (want %.1f)", fs, fh, f16, want16);
    report(fabs(fh - fs - 2 * 2 * 4) < 1e-9 && fabs(f16 - want16) < 1e-9, "hier FLOPs: swa's + pooling + coarse keys", det);

    AttnConfig base = hier_cfg(4, 2, 32, 4, 0), l0, l1;
    base.kind = ATTN_GQA;
    l0 = l1 = base;
    int r0 = attn_schedule_apply("hier:window=8,gqa", 0, &l0, err, sizeof err);
    int r1 = attn_schedule_apply("hier:window=8,gqa", 1, &l1, err, sizeof err);
    int r2 = attn_schedule_apply("hier:8:hier_block=3", 0, &c, err, sizeof err);
    snprintf(det, sizeof det, "layer 0 %s W=%d P=%d, layer 1 %s W=%d", attn_kind_name(l0.kind), l0.window,
             l0.hier_block, attn_kind_name(l1.kind), l1.window);
    report(r0 == 0 && r1 == 0 && r2 == 0 && l0.kind == ATTN_HIER && l0.window == 8 && l0.hier_block == 4 &&
               l1.kind == ATTN_GQA && l1.window == 32 && c.hier_block == 3,
           "schedule hier:window=8,gqa (and hier_block=) applies", det);
}

/* the first and last step's training loss of an ablate-cpu train run (-1: not found) */
static int train_losses(const char *args, double *first, double *last, char *tail, size_t cap) {
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "%s train %s 2>&1", ablate_bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    *first = *last = -1;
    tail[0] = 0;
    while (fgets(line, sizeof line, p)) {
        const char *l = strstr(line, "| loss ");
        if (!strncmp(line, "step", 4) && l && strchr(line, '/')) {
            double v = atof(l + 7);
            if (*first < 0) *first = v;
            *last = v;
        }
        snprintf(tail, cap, "%s", line);
    }
    int rc = pclose(p);
    tail[strcspn(tail, "\n")] = 0;
    return rc == 0 && *first > 0 ? 0 : -1;
}

static void test_model(void) {
    static const char *runs[][2] = {
        {"--attn hier --window 16 --layers 2 --d-model 32 --heads 2 --seq 64 --steps 20",
         "ablate-cpu train --attn hier --window 16: loss falls"},
        {"--attn-layers hier:window=8,gqa --hier-block 8 --layers 2 --d-model 32 --heads 2 --seq 64 --steps 20",
         "ablate-cpu train --attn-layers hier:window=8,gqa: loss falls"},
    };
    for (int i = 0; i < 2; i++) {
        double first, last;
        char tail[512], det[600];
        int rc = train_losses(runs[i][0], &first, &last, tail, sizeof tail);
        if (rc) snprintf(det, sizeof det, "failed: %s", tail);
        else snprintf(det, sizeof det, "loss %.4f -> %.4f", first, last);
        report(rc == 0 && last < first - 0.5, runs[i][1], det);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) ablate_bin = argv[1];
    test_grad(4, 2, 3, 2, 0, 11); /* coarse keys from t = 4 on; T not a multiple of P */
    test_grad(4, 1, 2, 3, 1, 10); /* MQA-like grouping, qk_norm, P = 3 */
    test_grad(2, 2, 1, 1, 0, 6);  /* W = 1, P = 1: every earlier position is its own coarse key */
    test_causal();
    test_equals_swa(0);
    test_equals_swa(1);
    test_hand();
    test_config();
    test_model();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
