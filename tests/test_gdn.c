/* tests/test_gdn.c - the Gated DeltaNet ops and block of attn/gdn.h on the CPU, in double
   precision (built with -DABLATE_REAL=double; make test runs it).

   Checks:
     recurrent == chunked form (outputs and final state, several chunk sizes, T not a
       multiple of the chunk, with and without an initial state): max |diff| <= 1e-10
     the recurrent form carried over two calls == one call over the whole sequence (generation)
     finite-difference gradients (central, h = 1e-5, L = sum(out * R) for a fixed random R;
       pass when |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|), as tests/run_tests.c):
       the chunked delta rule (dq, dk, dv, dg, dbeta; chunk 4 and 64 > T) and the whole
       block (dx and every one of the 13 weight tensors)
     no future leak: changing token t+1 of x leaves the block's outputs up to t unchanged
     parameter count and specs (offsets contiguous, fla's names)
     the GPU's accepted / refused head dims (attn_gdn_block_gpu_supported) and the workspace size
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn/gdn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "check.h" /* report, random inputs, check_grad */

/* random delta-rule inputs: q, k unit per head (as the block makes them), g <= 0, beta in (0,1) */
typedef struct { int B, T, H, D, ld, chunk; ops_real *q, *k, *v, *g, *beta, *R, *o; } Core;

static void unit_heads(ops_real *x, int N, int ld, int H, int D) {
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            ops_real *p = x + (size_t)n * ld + (size_t)h * D;
            double ss = 0;
            for (int i = 0; i < D; i++) ss += p[i] * p[i];
            for (int i = 0; i < D; i++) p[i] /= sqrt(ss);
        }
}

static void core_setup(Core *c, int B, int T, int H, int D, int ld, int chunk) {
    int N = B * T;
    c->B = B; c->T = T; c->H = H; c->D = D; c->ld = ld; c->chunk = chunk;
    c->q = rnd((size_t)N * ld, 1); c->k = rnd((size_t)N * ld, 1); c->v = rnd((size_t)N * ld, 1);
    unit_heads(c->q, N, ld, H, D);
    unit_heads(c->k, N, ld, H, D);
    c->g = rnd((size_t)N * H, 1); c->beta = rnd((size_t)N * H, 1);
    for (int i = 0; i < N * H; i++) {
        c->g[i] = -log1p(exp(c->g[i])) * 0.5;      /* -softplus: some strong, some weak decay */
        c->beta[i] = 1 / (1 + exp(-2 * c->beta[i]));
    }
    c->R = rnd((size_t)N * H * D, 1);
    c->o = zeros((size_t)N * H * D);
}
static void core_free(Core *c) { free(c->q); free(c->k); free(c->v); free(c->g); free(c->beta); free(c->R); free(c->o); }

static void test_forms(int T, int chunk, int with_state) {
    Core c;
    core_setup(&c, 2, T, 2, 8, 2 * 8 + 3, chunk);
    size_t no = (size_t)2 * T * 2 * 8, ns = (size_t)2 * 2 * 8 * 8;
    ops_real *o2 = zeros(no), *s1 = rnd(ns, 0.3), *s2 = malloc(sizeof(ops_real) * ns);
    memcpy(s2, s1, sizeof(ops_real) * ns);
    float scale = 1 / sqrt(8.0);
    attn_gdn_recurrent(NULL, c.o, with_state ? s1 : NULL, c.q, c.k, c.v, c.ld, c.g, c.beta, 2, T, 2, 8, scale);
    attn_gdn_chunk_forward(NULL, o2, with_state ? s2 : NULL, c.q, c.k, c.v, c.ld, c.g, c.beta, 2, T, 2, 8, scale, chunk);
    double e = max_abs_diff(c.o, o2, no), es = with_state ? max_abs_diff(s1, s2, ns) : 0;
    char name[96], d[96];
    snprintf(name, sizeof name, "gdn recurrent == chunked T=%d chunk=%d%s", T, chunk, with_state ? " state" : "");
    snprintf(d, sizeof d, "out %.1e state %.1e", e, es);
    report(e <= 1e-10 && es <= 1e-10 && dot(o2, o2, no) > 1e-3, name, d);
    free(o2); free(s1); free(s2); core_free(&c);
}

/* generation: two recurrent calls carrying the state == one call */
static void test_carry(void) {
    Core c;
    int T = 20, T1 = 7, H = 2, D = 8, ld = H * D;
    core_setup(&c, 1, T, H, D, ld, 64);
    ops_real *o2 = zeros((size_t)T * ld), *st = zeros((size_t)H * D * D);
    float scale = 1 / sqrt((double)D);
    attn_gdn_recurrent(NULL, c.o, NULL, c.q, c.k, c.v, ld, c.g, c.beta, 1, T, H, D, scale);
    attn_gdn_recurrent(NULL, o2, st, c.q, c.k, c.v, ld, c.g, c.beta, 1, T1, H, D, scale);
    size_t off = (size_t)T1 * ld;
    attn_gdn_chunk_forward(NULL, o2 + off, st, c.q + off, c.k + off, c.v + off, ld, c.g + T1 * H, c.beta + T1 * H,
                         1, T - T1, H, D, scale, 4);
    double e = max_abs_diff(c.o, o2, (size_t)T * ld);
    char d[64];
    snprintf(d, sizeof d, "max diff %.1e", e);
    report(e <= 1e-10, "gdn state carried across calls == one call", d);
    free(o2); free(st); core_free(&c);
}

static double core_loss(void *p) {
    Core *c = p;
    attn_gdn_chunk_forward(NULL, c->o, NULL, c->q, c->k, c->v, c->ld, c->g, c->beta, c->B, c->T, c->H, c->D,
                         1 / sqrt((double)c->D), c->chunk);
    return dot(c->o, c->R, (size_t)c->B * c->T * c->H * c->D);
}

static void test_core_grad(int T, int chunk) {
    Core c;
    int B = 2, H = 2, D = 4, ld = H * D + 1, N = B * T;
    core_setup(&c, B, T, H, D, ld, chunk);
    ops_real *dq = zeros((size_t)N * ld), *dk = zeros((size_t)N * ld), *dv = zeros((size_t)N * ld),
           *dg = zeros((size_t)N * H), *db = zeros((size_t)N * H), *ws = zeros(attn_gdn_block_ws_elems(B, T, H, D, chunk));
    attn_gdn_chunk_backward(NULL, dq, dk, dv, dg, db, c.R, c.q, c.k, c.v, ld, c.g, c.beta, B, T, H, D,
                          1 / sqrt((double)D), chunk, ws);
    char name[96];
    const char *nm[5] = {"dq", "dk", "dv", "dg", "dbeta"};
    ops_real *x[5] = {c.q, c.k, c.v, c.g, c.beta}, *gr[5] = {dq, dk, dv, dg, db};
    size_t n[5] = {(size_t)N * ld, (size_t)N * ld, (size_t)N * ld, (size_t)N * H, (size_t)N * H};
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "gdn chunked delta rule grad %s T=%d chunk=%d", nm[i], T, chunk);
        check_grad(name, core_loss, &c, x[i], gr[i], n[i], 60);
    }
    free(dq); free(dk); free(dv); free(dg); free(db); free(ws); core_free(&c);
}

/* ---- the block ---- */
typedef struct {
    AttnGdnDims d;
    int B, T;
    ops_real *x, *w, *R, *out, *act, *stat, *sact, *sstat;
    AttnGdnActs a;
    AttnGdnScratch s;
} Blk;

static void blk_setup(Blk *b, int B, int T, int chunk) {
    memset(b, 0, sizeof *b);
    b->d = (AttnGdnDims){12, 2, 4, 4, chunk, 1e-5f};
    char err[128];
    if (attn_gdn_block_resolve(&b->d, err, sizeof err)) { printf("%s\n", err); exit(1); }
    b->B = B; b->T = T;
    size_t N = (size_t)B * T, np = attn_gdn_block_param_count(&b->d), ae, se;
    b->x = rnd(N * b->d.d_model, 1);
    b->w = rnd(np, 0.4);
    attn_gdn_block_param_init_special(&b->d, b->w, 7);
    /* move the specials off their init values a little so every term is exercised */
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(&b->d, p);
    for (int i = 0; i < GDN_N_PARAMS; i++)
        if (p[i].is_special)
            for (size_t j = 0; j < p[i].numel; j++) b->w[p[i].offset + j] += 0.3 * nrand();
    b->R = rnd(N * b->d.d_model, 1);
    b->out = zeros(N * b->d.d_model);
    attn_gdn_block_act_sizes(&b->d, B, T, &ae, &se);
    b->act = zeros(ae); b->stat = zeros(se);
    attn_gdn_block_acts_bind(&b->d, &b->a, NULL, b->act, b->stat, B, T);
    attn_gdn_block_scratch_sizes(&b->d, B, T, &ae, &se);
    b->sact = zeros(ae); b->sstat = zeros(se);
    attn_gdn_block_scratch_bind(&b->d, &b->s, NULL, b->sact, b->sstat, B, T);
}
static void blk_free(Blk *b) {
    free(b->x); free(b->w); free(b->R); free(b->out); free(b->act); free(b->stat); free(b->sact); free(b->sstat);
}
static double blk_loss(void *p) {
    Blk *b = p;
    attn_gdn_block_forward(NULL, &b->d, b->w, &b->a, b->x, b->out, b->B, b->T);
    return dot(b->out, b->R, (size_t)b->B * b->T * b->d.d_model);
}

static void test_block_grad(int T, int chunk) {
    Blk b;
    blk_setup(&b, 2, T, chunk);
    size_t N = (size_t)2 * T, np = attn_gdn_block_param_count(&b.d);
    ops_real *dw = zeros(np), *dx = zeros(N * b.d.d_model);
    blk_loss(&b);
    attn_gdn_block_backward(NULL, &b.d, b.w, dw, &b.a, &b.s, b.x, b.R, dx, b.B, b.T);
    char name[96];
    snprintf(name, sizeof name, "gdn block grad dx T=%d chunk=%d", T, chunk);
    check_grad(name, blk_loss, &b, b.x, dx, N * b.d.d_model, 80);
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(&b.d, p);
    for (int i = 0; i < GDN_N_PARAMS; i++) {
        snprintf(name, sizeof name, "gdn block grad %s T=%d chunk=%d", p[i].name, T, chunk);
        check_grad(name, blk_loss, &b, b.w + p[i].offset, dw + p[i].offset, p[i].numel, 40);
    }
    free(dw); free(dx); blk_free(&b);
}

/* changing token t+1 leaves outputs 0..t unchanged, and does change some output after */
static void test_block_causal(void) {
    Blk b;
    int T = 19;
    blk_setup(&b, 1, T, 4);
    int C = b.d.d_model;
    ops_real *ref = zeros((size_t)T * C);
    blk_loss(&b);
    memcpy(ref, b.out, sizeof(ops_real) * T * C);
    int ok = 1;
    double worst = 0;
    for (int t = 0; t + 1 < T; t += 3) {
        ops_real keep[64];
        for (int c = 0; c < C; c++) { keep[c] = b.x[(size_t)(t + 1) * C + c]; b.x[(size_t)(t + 1) * C + c] += 1.0; }
        blk_loss(&b);
        double before = max_abs_diff(ref, b.out, (size_t)(t + 1) * C);
        double after = max_abs_diff(ref + (size_t)(t + 1) * C, b.out + (size_t)(t + 1) * C, (size_t)(T - t - 1) * C);
        if (before > worst) worst = before;
        if (!(before == 0) || !(after > 1e-6)) ok = 0;
        for (int c = 0; c < C; c++) b.x[(size_t)(t + 1) * C + c] = keep[c];
    }
    char d[64];
    snprintf(d, sizeof d, "max change before t+1: %.1e", worst);
    report(ok, "gdn block leaks nothing from the future", d);
    free(ref); blk_free(&b);
}

/* the GPU's head dims: multiples of 8 from 32 to 256 run (up to 64 padded to the tile, above
   it the wide-head kernels); anything else is refused with the value and the range named */
static void test_gpu_supported(void) {
    static const int yes[] = {32, 40, 48, 56, 64, 72, 96, 128, 136, 256}, no[] = {8, 16, 24, 30, 36, 66, 100, 264, 512};
    AttnGdnDims d = {576, 8, 72, 4, 64, 1e-5f};
    char e[160], bad[256] = "";
    int ok = 1;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        d.head_dim = yes[i];
        if (attn_gdn_block_gpu_supported(&d, e, sizeof e)) { ok = 0; snprintf(bad, sizeof bad, "refused %d: %s", yes[i], e); }
    }
    report(ok, "gdn GPU takes head dims 32..256 in steps of 8 (the guide's 72, 96, 48; 64; 128; 256)", bad);
    ok = 1;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        char want[16];
        d.head_dim = no[i];
        snprintf(want, sizeof want, "got %d", no[i]);
        e[0] = 0;
        if (!attn_gdn_block_gpu_supported(&d, e, sizeof e) || !strstr(e, want) || !strstr(e, "multiple of 8") ||
            !strstr(e, "from 32 to 256")) {
            ok = 0;
            snprintf(bad, sizeof bad, "head_dim %d: '%s'", no[i], e);
        }
    }
    report(ok, "gdn GPU refuses other head dims, naming the value and what runs", ok ? e : bad);
    d.head_dim = 72;
    d.conv_size = 9;
    e[0] = 0;
    ok = attn_gdn_block_gpu_supported(&d, e, sizeof e) && strstr(e, "conv_size <= 8") && strstr(e, "got 9");
    report(ok, "gdn GPU refuses conv_size 9, naming it", e);
    /* the workspace covers the GPU's padded 64 x 64 tiles for a narrow head */
    report(attn_gdn_block_ws_elems(2, 130, 3, 32, 64) == (size_t)6 * 2 * 3 * 3 * 64 * 64 &&
               attn_gdn_block_ws_elems(2, 130, 3, 72, 64) == (size_t)6 * 2 * 3 * 3 * 72 * 72,
           "gdn workspace: max(D, 64)^2 per chunk and tile", NULL);
}

static void test_specs(void) {
    AttnGdnDims d = {576, 9, 64, 4, 64, 1e-5f};
    AttnGdnParamSpec p[GDN_N_PARAMS];
    int n = attn_gdn_block_param_specs(&d, p), ok = n == GDN_N_PARAMS;
    size_t off = 0;
    for (int i = 0; i < n; i++) { ok &= p[i].offset == off; off += p[i].numel; }
    size_t HD = 9 * 64, want = 4 * HD * 576 + 2 * 9 * 576 + 576 * HD + 3 * HD * 4 + 64 + 2 * 9;
    ok &= attn_gdn_block_param_count(&d) == want && !strcmp(p[0].name, "q_proj") && !strcmp(p[12].name, "dt_bias");
    ok &= p[11].no_weight_decay && p[12].no_weight_decay && p[10].is_norm && !p[0].no_weight_decay && p[6].is_output_proj;
    char det[64];
    snprintf(det, sizeof det, "%zu params", attn_gdn_block_param_count(&d));
    report(ok, "gdn param specs (contiguous, flags), count", det);
    test_gpu_supported();
    /* the delta rule with beta = 0 and g = 0 keeps the state: o = 0 from a zero start */
    Core c;
    core_setup(&c, 1, 9, 1, 4, 4, 4);
    for (int i = 0; i < 9; i++) { c.beta[i] = 0; c.g[i] = 0; }
    attn_gdn_chunk_forward(NULL, c.o, NULL, c.q, c.k, c.v, 4, c.g, c.beta, 1, 9, 1, 4, 0.5f, 4);
    report(dot(c.o, c.o, 36) == 0, "gdn beta = 0 writes nothing", NULL);
    core_free(&c);
}

int main(void) {
    check_rng = 0x1234567; /* this program's stream since it was written */
    int Ts[] = {37, 64, 5}, chunks[] = {64, 16, 7, 1, 5};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++) test_forms(Ts[i], chunks[j], (i + j) & 1);
    test_forms(37, 8, 1);
    test_carry();
    test_core_grad(11, 4);
    test_core_grad(9, 64);
    test_block_grad(10, 4);
    test_block_grad(7, 64);
    test_block_causal();
    test_specs();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
