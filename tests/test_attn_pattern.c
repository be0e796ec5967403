/* tests/test_attn_pattern.c - the fixed sparse attention patterns of ops.h (OpsPattern,
   op_attention_pattern_forward/backward) on the CPU, in double precision.

   Built with -DABLATE_REAL=double (Makefile); it also forces double itself, so a plain
   `cc -I. tests/test_attn_pattern.c -lm` checks the same thing.
   - the mask: ops_pattern_visible against the documented formulas written out again here;
   - the kernels' tile logic (host twins of the device code): ops_pattern_tile_any exact and
     ops_pattern_tile_all sound on every rectangle of small sequences; the queries that see a
     key range are exactly n0..ops_pattern_last_query (one range: what the backward needs);
     ops_pattern_tiles against a brute-force count;
   - the op: forward against a naive masked softmax over the full score matrix (relative error
     <= 1e-12), gradient checks by central differences (h = 1e-5, pass when
     |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|), as tests/run_tests.c), no future leak
     (changing tokens > t leaves outputs <= t bit-identical), the mask respected (changing key
     s changes exactly the outputs of the queries that see s), patterns whose parameters make
     them dense equal dense causal bit for bit, and the old window API equals {window}.
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#ifndef ABLATE_REAL
#define ABLATE_REAL double
#endif
#define OPS_IMPLEMENTATION
#include "ops.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-66s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return ((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void) { return sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }
static ops_real *rnd(size_t n) {
    ops_real *p = malloc(sizeof(ops_real) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = nrand();
    return p;
}
static ops_real *zeros(size_t n) { return calloc(n ? n : 1, sizeof(ops_real)); }

static const char *pat_str(const OpsPattern *p) {
    static char buf[96];
    snprintf(buf, sizeof buf, "W=%d G=%d S=%d R=%d PB=%d", p->window, p->global, p->stride, p->dilation, p->block);
    return buf;
}

/* the documented mask, written out again from ops.h's table (block indices, no helpers) */
static int doc_visible(const OpsPattern *p, int t, int s) {
    int PB = p->block > 0 ? p->block : OPS_PATTERN_BLOCK, d = t - s;
    if (s > t) return 0;
    int local = p->window == 0 || d < p->window;
    int global = s < p->global;
    int strided = p->stride > 0 && s % p->stride >= p->stride - PB;
    int dilated = p->dilation >= 2 && d < p->window * p->dilation && (s / PB) % p->dilation == p->dilation - 1;
    return local || global || strided || dilated;
}

/* small patterns, block sizes 1..5 so that every case fits in a short sequence */
static const OpsPattern small_pats[] = {
    {0, 0, 0, 0, 1}, {3, 0, 0, 0, 2},          /* dense, window */
    {3, 2, 0, 0, 2}, {2, 5, 0, 0, 1},          /* local + global */
    {3, 0, 7, 0, 2}, {2, 0, 5, 0, 1}, {4, 0, 9, 0, 3}, /* strided (s % S == S-1 for PB 1) */
    {3, 0, 0, 3, 2}, {2, 0, 0, 2, 3}, {4, 0, 0, 4, 1}, /* dilated */
    {2, 1, 8, 3, 2}, {3, 2, 6, 2, 1},          /* combined */
    {5, 0, 0, 2, 4}, {1, 0, 4, 0, 5},          /* PB >= S: dense; tiny window */
};
#define N_SMALL ((int)(sizeof small_pats / sizeof small_pats[0]))

static void test_mask(void) {
    int bad = 0, checked = 0;
    for (int i = 0; i < N_SMALL; i++)
        for (int t = 0; t < 60; t++)
            for (int s = 0; s < 60; s++, checked++) bad += ops_pattern_visible(&small_pats[i], t, s) != doc_visible(&small_pats[i], t, s);
    /* the default block, at the sizes the kernels see */
    OpsPattern big[] = {{256, 64, 1024, 0, 0}, {512, 0, 0, 4, 0}, {100, 30, 300, 3, 0}};
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < 3000; t += 7)
            for (int s = 0; s < 3000; s += 3, checked++) bad += ops_pattern_visible(&big[i], t, s) != doc_visible(&big[i], t, s);
    char d[64];
    snprintf(d, sizeof d, "%d of %d (t, s) differ", bad, checked);
    report(bad == 0, "mask: ops_pattern_visible = the documented formulas", d);
    /* classic strided, PB = 1: every S-th token */
    OpsPattern cl = {2, 0, 4, 0, 1};
    int ok = 1;
    for (int s = 0; s < 20; s++) ok &= ops_pattern_visible(&cl, 30, s) == (s % 4 == 3);
    report(ok, "mask: stride S with block 1 is s % S == S - 1 past the window", NULL);
}

/* brute force over the rectangle */
static void rect_truth(const OpsPattern *p, int r0, int r1, int n0, int n1, int *any, int *all) {
    *any = 0; *all = 1;
    for (int t = r0; t <= r1; t++)
        for (int s = n0; s <= n1; s++) {
            int v = ops_pattern_visible(p, t, s);
            *any |= v; *all &= v;
        }
}

static void test_tiles(void) {
    long any_bad = 0, all_bad = 0, all_hits = 0, rects = 0, lq_bad = 0, cnt_bad = 0;
    const int T = 40;
    for (int i = 0; i < N_SMALL; i++) {
        const OpsPattern *p = &small_pats[i];
        for (int r0 = 0; r0 < T; r0++)
            for (int r1 = r0; r1 < T && r1 < r0 + 9; r1++)
                for (int n0 = 0; n0 < T; n0++)
                    for (int n1 = n0; n1 < T && n1 < n0 + 9; n1++) {
                        int any, all;
                        rect_truth(p, r0, r1, n0, n1, &any, &all);
                        int a = ops_pattern_tile_any(p, r0, r1, n0, n1), l = ops_pattern_tile_all(p, r0, r1, n0, n1);
                        any_bad += a != any;
                        all_bad += l && !all;   /* may miss, may never claim wrongly */
                        all_hits += l;
                        rects++;
                    }
        /* the queries that see some key of n0..n1: exactly n0..last */
        for (int n0 = 0; n0 < T; n0++)
            for (int n1 = n0; n1 < T && n1 < n0 + 9; n1++) {
                int last = ops_pattern_last_query(p, n0, n1, T);
                for (int t = 0; t < T; t++) {
                    int sees = 0;
                    for (int s = n0; s <= n1; s++) sees |= ops_pattern_visible(p, t, s);
                    lq_bad += sees != (t >= n0 && t <= last);
                }
            }
        /* tile counts, forward and backward, against brute force */
        for (int bm = 2; bm <= 7; bm += 5)
            for (int bn = 3; bn <= 4; bn++) {
                long v, c, bv = 0, bc = 0, wv, wc, bwv = 0, bwc = 0;
                ops_pattern_tiles(p, T, bm, bn, &v, &c);
                for (int m0 = 0; m0 < T; m0 += bm)
                    for (int n0 = 0; n0 < T; n0 += bn) {
                        int any, all, r1 = m0 + bm - 1 < T ? m0 + bm - 1 : T - 1, n1 = n0 + bn - 1 < T ? n0 + bn - 1 : T - 1;
                        OpsPattern dense = {0, 0, 0, 0, 0};
                        rect_truth(p, m0, r1, n0, n1, &any, &all);
                        bv += any;
                        rect_truth(&dense, m0, r1, n0, n1, &any, &all);
                        bc += any;
                    }
                ops_pattern_tiles_bwd(p, T, bn, bm, &wv, &wc);
                for (int n0 = 0; n0 < T; n0 += bn)
                    for (int m0 = 0; m0 < T; m0 += bm) {
                        int any, all, r1 = m0 + bm - 1 < T ? m0 + bm - 1 : T - 1, n1 = n0 + bn - 1 < T ? n0 + bn - 1 : T - 1;
                        OpsPattern dense = {0, 0, 0, 0, 0};
                        rect_truth(p, m0, r1, n0, n1, &any, &all);
                        bwv += any;
                        rect_truth(&dense, m0, r1, n0, n1, &any, &all);
                        bwc += any;
                    }
                cnt_bad += v != bv || c != bc || wv != bwv || wc != bwc;
            }
    }
    char d[96];
    snprintf(d, sizeof d, "%ld wrong of %ld rectangles", any_bad, rects);
    report(any_bad == 0, "tiles: ops_pattern_tile_any is exact", d);
    snprintf(d, sizeof d, "%ld wrong claims, %ld rectangles claimed whole", all_bad, all_hits);
    report(all_bad == 0 && all_hits > 0, "tiles: ops_pattern_tile_all never claims a masked pair", d);
    snprintf(d, sizeof d, "%ld (range, query) pairs wrong", lq_bad);
    report(lq_bad == 0, "tiles: the queries seeing n0..n1 are exactly n0..last_query", d);
    snprintf(d, sizeof d, "%ld (pattern, tiling) counts wrong", cnt_bad);
    report(cnt_bad == 0, "tiles: ops_pattern_tiles / _bwd = brute-force counts", d);

    /* the same claims at the kernels' real sizes: default block, 64/128 tiles */
    OpsPattern big[] = {{256, 64, 1024, 0, 0}, {512, 0, 0, 4, 0}, {100, 30, 300, 3, 0}, {128, 16, 384, 2, 0},
                         {64, 0, 200, 0, 48}, {100, 0, 0, 3, 40}};
    long bad = 0, n = 0;
    const int TB = 1500;
    for (int i = 0; i < 6; i++) {
        const OpsPattern *p = &big[i];
        for (int m0 = 0; m0 < TB; m0 += 128)
            for (int bn = 64; bn <= 128; bn += 64)
                for (int n0 = 0; n0 < TB; n0 += bn) {
                    int r1 = m0 + 127 < TB ? m0 + 127 : TB - 1, n1 = n0 + bn - 1 < TB ? n0 + bn - 1 : TB - 1, any, all;
                    rect_truth(p, m0, r1, n0, n1, &any, &all);
                    bad += ops_pattern_tile_any(p, m0, r1, n0, n1) != any;
                    bad += ops_pattern_tile_all(p, m0, r1, n0, n1) && !all;
                    n++;
                }
        for (int n0 = 0; n0 < TB; n0 += 128) {
            int n1 = n0 + 127 < TB ? n0 + 127 : TB - 1, last = ops_pattern_last_query(p, n0, n1, TB);
            for (int t = 0; t < TB; t += 5) {
                int sees = 0;
                for (int s = n0; s <= n1 && !sees; s++) sees = ops_pattern_visible(p, t, s);
                bad += sees != (t >= n0 && t <= last);
            }
        }
    }
    snprintf(d, sizeof d, "%ld wrong in %ld tiles and the backward's ranges", bad, n);
    report(bad == 0, "tiles: exact at T=1500 with 64/128-key tiles and block 128, 48, 40", d);

    /* with the default block, a summary or dilated tile past the window is wholly in or out,
       but for the dilated span's edge (d < W*R is per element) */
    OpsPattern st = {256, 0, 1024, 4, 0};
    long partial = 0, edge = 0;
    for (int m0 = 0; m0 < 4096; m0 += 128)
        for (int bn = 64; bn <= 128; bn += 64)
            for (int n0 = 0; n0 + bn - 1 < m0 - 256 + 1; n0 += bn) { /* below the diagonal, past the window */
                int any, all;
                rect_truth(&st, m0, m0 + 127, n0, n0 + bn - 1, &any, &all);
                int at_edge = m0 - (n0 + bn - 1) < 256 * 4 && m0 + 127 - n0 >= 256 * 4;
                partial += any && !all && !at_edge;
                edge += any && !all && at_edge;
            }
    snprintf(d, sizeof d, "%ld partly seen tiles (+%ld at the span's edge)", partial, edge);
    report(partial == 0, "tiles: block 128 stride/dilation tiles are all-or-nothing", d);

    /* mean keys per query (for FLOP counts) against a count of every pair */
    OpsPattern mk[] = {{0, 0, 0, 0, 0}, {256, 0, 0, 0, 0}, {256, 64, 1024, 0, 0}, {100, 30, 300, 3, 0},
                        {64, 0, 200, 0, 48}, {3, 2, 7, 3, 2}};
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        const int TM = 1100;
        long seen = 0;
        for (int t = 0; t < TM; t++)
            for (int s = 0; s <= t; s++) seen += ops_pattern_visible(&mk[i], t, s);
        worst = fmax(worst, fabs(ops_pattern_mean_keys(&mk[i], TM) - (double)seen / TM));
    }
    snprintf(d, sizeof d, "max |difference| %.1e keys", worst);
    report(worst < 1e-9, "tiles: ops_pattern_mean_keys = the count of every pair", d);
}

/* ---- the op ---- */
typedef struct { int B, T, H, KV, hd; OpsPattern p; ops_real *q, *k, *v, *R, *out, *lse; } Ctx;

static size_t nq_(const Ctx *c) { return (size_t)c->B * c->T * c->H * c->hd; }
static size_t nk_(const Ctx *c) { return (size_t)c->B * c->T * c->KV * c->hd; }
static void ctx_init(Ctx *c, int B, int T, int H, int KV, int hd, OpsPattern p) {
    c->B = B; c->T = T; c->H = H; c->KV = KV; c->hd = hd; c->p = p;
    c->q = rnd(nq_(c)); c->k = rnd(nk_(c)); c->v = rnd(nk_(c)); c->R = rnd(nq_(c));
    c->out = zeros(nq_(c)); c->lse = zeros((size_t)B * H * T);
}
static void ctx_free(Ctx *c) { free(c->q); free(c->k); free(c->v); free(c->R); free(c->out); free(c->lse); }
static double ctx_loss(Ctx *c) {
    op_attention_pattern_forward(NULL, c->out, c->lse, c->q, c->k, c->v, c->B, c->T, c->H, c->KV, c->hd, &c->p);
    double s = 0;
    for (size_t i = 0; i < nq_(c); i++) s += c->out[i] * c->R[i];
    return s;
}

static void check_grad(const char *name, Ctx *c, ops_real *x, const ops_real *g, size_t n) {
    const double h = 1e-5, tol = 1e-6;
    double worst = 0;
    int ok = 1;
    for (size_t j = 0; j < n; j++) {
        ops_real keep = x[j];
        x[j] = keep + h;
        double lp = ctx_loss(c);
        x[j] = keep - h;
        double lm = ctx_loss(c);
        x[j] = keep;
        double num = (lp - lm) / (2 * h), err = fabs(num - g[j]) / fmax(1.0, fmax(fabs(num), fabs(g[j])));
        if (err > worst) worst = err;
        if (!(err <= tol)) ok = 0;
    }
    char d[48];
    snprintf(d, sizeof d, "max err %.1e", worst);
    report(ok, name, d);
}

static void test_gradcheck(OpsPattern p, int H, int KV) {
    Ctx c;
    ctx_init(&c, 2, 17, H, KV, 4, p);
    ctx_loss(&c);
    ops_real *dq = zeros(nq_(&c)), *dk = zeros(nk_(&c)), *dv = zeros(nk_(&c));
    op_attention_pattern_backward(NULL, dq, dk, dv, c.R, c.out, c.lse, c.q, c.k, c.v, c.B, c.T, H, KV, c.hd, &c.p);
    char name[192];
    snprintf(name, sizeof name, "gradcheck %s H=%d KV=%d: dq", pat_str(&p), H, KV);
    check_grad(name, &c, c.q, dq, nq_(&c));
    snprintf(name, sizeof name, "gradcheck %s H=%d KV=%d: dk", pat_str(&p), H, KV);
    check_grad(name, &c, c.k, dk, nk_(&c));
    snprintf(name, sizeof name, "gradcheck %s H=%d KV=%d: dv", pat_str(&p), H, KV);
    check_grad(name, &c, c.v, dv, nk_(&c));
    free(dq); free(dk); free(dv);
    ctx_free(&c);
}

/* the forward against softmax over the full masked score matrix */
static void test_naive(OpsPattern p) {
    Ctx c;
    ctx_init(&c, 1, 37, 4, 2, 8, p);
    ctx_loss(&c);
    int T = c.T, H = c.H, hd = c.hd, KV = c.KV;
    double num = 0, den = 0, lerr = 0, *sc = malloc(sizeof(double) * T);
    for (int h = 0; h < H; h++)
        for (int t = 0; t < T; t++) {
            const ops_real *qt = c.q + ((size_t)t * H + h) * hd;
            double mx = -INFINITY, sum = 0;
            for (int s = 0; s < T; s++) {
                const ops_real *ks = c.k + ((size_t)s * KV + h / (H / KV)) * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += qt[i] * ks[i];
                sc[s] = doc_visible(&p, t, s) ? d / sqrt((double)hd) : -INFINITY;
                if (sc[s] > mx) mx = sc[s];
            }
            for (int s = 0; s < T; s++) sum += exp(sc[s] - mx);
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int s = 0; s < T; s++) o += exp(sc[s] - mx) / sum * c.v[((size_t)s * KV + h / (H / KV)) * hd + i];
                double got = c.out[((size_t)t * H + h) * hd + i];
                num += (got - o) * (got - o);
                den += o * o;
            }
            lerr = fmax(lerr, fabs(c.lse[(size_t)h * T + t] - (mx + log(sum))));
        }
    char name[192], d[64];
    snprintf(name, sizeof name, "forward = naive masked softmax: %s", pat_str(&p));
    snprintf(d, sizeof d, "rel err %.1e, lse err %.1e", sqrt(num / den), lerr);
    report(sqrt(num / den) <= 1e-12 && lerr <= 1e-12, name, d);
    free(sc);
    ctx_free(&c);
}

/* change token j's key and value: exactly the queries that see j change; change every
   token > t (q, k, v): nothing <= t changes */
static void test_mask_respected(OpsPattern p) {
    Ctx c;
    ctx_init(&c, 1, 40, 2, 1, 4, p);
    int T = c.T, H = c.H, hd = c.hd;
    size_t row = (size_t)H * hd;
    ctx_loss(&c);
    ops_real *ref = malloc(sizeof(ops_real) * nq_(&c));
    memcpy(ref, c.out, sizeof(ops_real) * nq_(&c));
    int wrong = 0;
    for (int j = 0; j < T; j++) {
        ops_real keep[2][64]; /* restored exactly: (x + 0.5) - 0.5 need not be x */
        for (int i = 0; i < hd; i++) {
            keep[0][i] = c.k[(size_t)j * hd + i]; keep[1][i] = c.v[(size_t)j * hd + i];
            c.k[(size_t)j * hd + i] += 0.5; c.v[(size_t)j * hd + i] += 0.5;
        }
        ctx_loss(&c);
        for (int t = 0; t < T; t++) {
            int changed = memcmp(ref + t * row, c.out + t * row, sizeof(ops_real) * row) != 0;
            wrong += changed != ops_pattern_visible(&p, t, j);
        }
        for (int i = 0; i < hd; i++) { c.k[(size_t)j * hd + i] = keep[0][i]; c.v[(size_t)j * hd + i] = keep[1][i]; }
    }
    char name[192], d[64];
    snprintf(name, sizeof name, "mask respected (key j changes exactly its viewers): %s", pat_str(&p));
    snprintf(d, sizeof d, "%d of %d (t, j) wrong", wrong, T * T);
    report(wrong == 0, name, d);

    int leaks = 0;
    for (int t = 0; t < T - 1; t += 3) {
        Ctx d2 = c;
        d2.q = malloc(sizeof(ops_real) * nq_(&c)); d2.k = malloc(sizeof(ops_real) * nk_(&c)); d2.v = malloc(sizeof(ops_real) * nk_(&c));
        d2.out = zeros(nq_(&c)); d2.lse = zeros((size_t)H * T);
        memcpy(d2.q, c.q, sizeof(ops_real) * nq_(&c)); memcpy(d2.k, c.k, sizeof(ops_real) * nk_(&c)); memcpy(d2.v, c.v, sizeof(ops_real) * nk_(&c));
        for (size_t i = (size_t)(t + 1) * row; i < nq_(&c); i++) d2.q[i] += 1.0;
        for (size_t i = (size_t)(t + 1) * hd; i < nk_(&c); i++) { d2.k[i] -= 1.0; d2.v[i] += 2.0; }
        ctx_loss(&d2);
        leaks += memcmp(ref, d2.out, sizeof(ops_real) * (t + 1) * row) != 0;
        free(d2.q); free(d2.k); free(d2.v); free(d2.out); free(d2.lse);
    }
    snprintf(name, sizeof name, "no future leak: %s", pat_str(&p));
    report(leaks == 0, name, leaks ? "outputs <= t changed" : NULL);
    free(ref);
    ctx_free(&c);
}

/* patterns whose parameters make them dense (or a plain window) give the same bits */
static void test_equivalences(void) {
    const int T = 23;
    struct { OpsPattern p; int window; const char *what; } eq[] = {
        {{4, T, 0, 0, 2}, 0, "global G >= T is dense causal"},
        {{4, 30, 0, 0, 0}, 0, "global G > T is dense causal"},
        {{4, 0, 3, 0, 3}, 0, "stride S <= block is dense causal"},
        {{4, 0, 100, 0, 0}, 0, "stride S <= block 128 is dense causal"},
        {{T, 3, 7, 2, 2}, 0, "window W >= T with global, stride, dilation is dense causal"},
        {{0, 3, 7, 3, 2}, 0, "window 0 with global, stride, dilation is dense causal"},
        {{5, 0, 0, 1, 2}, 5, "dilation 1 is the plain window"},
        {{5, 0, 0, 0, 2}, 5, "{window} is the plain window"},
        {{5, 0, 200, 0, 0}, 5, "a stride whose first summary is past T is the plain window"},
        {{5, 0, 0, 3, 0}, 5, "a dilation whose first kept block is past T is the plain window"},
        {{5, 0, 0, 0, 0}, 5, "op_attention_forward(window) = pattern {window}"},
    };
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) {
        Ctx c;
        ctx_init(&c, 2, T, 4, 2, 4, eq[i].p);
        ctx_loss(&c);
        ops_real *o2 = zeros(nq_(&c)), *l2 = zeros((size_t)2 * 4 * T);
        op_attention_forward(NULL, o2, l2, c.q, c.k, c.v, 2, T, 4, 2, 4, eq[i].window);
        int same = !memcmp(o2, c.out, sizeof(ops_real) * nq_(&c)) && !memcmp(l2, c.lse, sizeof(ops_real) * 2 * 4 * T);
        /* and the backward */
        ops_real *a[3], *b[3];
        for (int j = 0; j < 3; j++) { a[j] = zeros(nq_(&c)); b[j] = zeros(nq_(&c)); }
        op_attention_pattern_backward(NULL, a[0], a[1], a[2], c.R, c.out, c.lse, c.q, c.k, c.v, 2, T, 4, 2, 4, &c.p);
        op_attention_backward(NULL, b[0], b[1], b[2], c.R, o2, l2, c.q, c.k, c.v, 2, T, 4, 2, 4, eq[i].window);
        same &= !memcmp(a[0], b[0], sizeof(ops_real) * nq_(&c)) && !memcmp(a[1], b[1], sizeof(ops_real) * nk_(&c)) &&
                !memcmp(a[2], b[2], sizeof(ops_real) * nk_(&c));
        int kind = ops_pattern_kind(&c.p, T);
        char name[192], d[32];
        snprintf(name, sizeof name, "%s (%s)", eq[i].what, pat_str(&eq[i].p));
        snprintf(d, sizeof d, "kind %d", kind);
        report(same && kind == (eq[i].window ? 2 : 1), name, d);
        for (int j = 0; j < 3; j++) { free(a[j]); free(b[j]); }
        free(o2); free(l2);
        ctx_free(&c);
    }
    /* and a sparse one is not dense: the checks above can fail */
    OpsPattern sp = {3, 1, 0, 0, 0};
    Ctx c;
    ctx_init(&c, 1, T, 2, 2, 4, sp);
    ctx_loss(&c);
    ops_real *o2 = zeros(nq_(&c)), *l2 = zeros((size_t)2 * T);
    op_attention_forward(NULL, o2, l2, c.q, c.k, c.v, 1, T, 2, 2, 4, 0);
    report(memcmp(o2, c.out, sizeof(ops_real) * nq_(&c)) != 0 && ops_pattern_kind(&sp, T) == 0,
           "a sparse pattern (W=3 G=1) differs from dense causal", NULL);
    free(o2); free(l2);
    ctx_free(&c);
}

int main(void) {
    printf("attention patterns, CPU reference in %s precision\n", sizeof(ops_real) == 8 ? "double" : "single");
    test_mask();
    test_tiles();
    OpsPattern grad_pats[] = {
        {3, 2, 0, 0, 2},      /* local + global */
        {2, 0, 5, 0, 1},      /* strided, every 5th token */
        {3, 0, 8, 0, 2},      /* strided, 2-key summaries */
        {2, 0, 0, 3, 2},      /* dilated */
        {2, 1, 7, 2, 2},      /* all at once */
    };
    for (int i = 0; i < 5; i++) test_gradcheck(grad_pats[i], i % 2 ? 2 : 3, 1);
    test_gradcheck(grad_pats[4], 4, 2);
    for (int i = 0; i < 5; i++) test_naive(grad_pats[i]);
    OpsPattern n128 = {9, 4, 0, 0, 0};
    test_naive(n128);
    for (int i = 0; i < 5; i++) test_mask_respected(grad_pats[i]);
    test_equivalences();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
