/* tests/test_sparse.c - CPU tests of attn/dsa.h (DSA: lightning indexer, top-k,
   sparse attention, indexer KL), built in double (-DABLATE_REAL=double) so that the
   finite-difference checks are meaningful:
     g_num = (L(x+h) - L(x-h)) / 2h, h = 1e-5; L = sum(out * R) for a fixed random R;
     pass when |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|) on every checked element.
   Plus: top-k equals a full sort (ties: lower position first); the fused select equals
   scores + top-k; sparse attention with k >= T equals op_attention_forward/backward to
   1e-12; the backward's psum equals attn_dsa_attention_probs and sums to 1 per token;
   KL >= 0, = 0 when the indexer's softmax equals p, and the backward's loss equals the
   forward's; causality of indexer + sparse attention (changing token t+1 leaves outputs
   up to t unchanged); the indexer precisions (fp16 / e4m3 rounding, int8 / int4 per-row
   grids, the selection exact from the quantized values).
   Ends with "N passed, N failed" (make test counts it). */
#define OPS_IMPLEMENTATION
#define ATTN_DSA_IMPLEMENTATION
#include "../attn/dsa.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h" /* report, random inputs, check_grad */

/* ---- top-k against a full sort ---- */
typedef struct { double v; int i; } Pair;
static int pair_cmp(const void *a, const void *b) {
    const Pair *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i - y->i;
}
/* brute force: sort (score desc, position asc), keep topk, mark them; idx must list the
   marked positions ascending, then -1 */
static int topk_row_ok(const int *row, const ops_real *sc, int n, int topk) {
    Pair *p = malloc(sizeof *p * n);
    char *mark = calloc(n, 1);
    for (int s = 0; s < n; s++) { p[s].v = sc[s]; p[s].i = s; }
    qsort(p, n, sizeof *p, pair_cmp);
    int m = n < topk ? n : topk;
    for (int j = 0; j < m; j++) mark[p[j].i] = 1;
    int ok = 1, j = 0;
    for (int s = 0; s < n; s++)
        if (mark[s]) ok &= row[j++] == s;
    for (; j < topk; j++) ok &= row[j] == -1;
    free(p);
    free(mark);
    return ok;
}

static void test_topk(void) {
    int B = 2, T = 37, HI = 3, dI = 8;
    ops_real *qI = rnd((size_t)B * T * HI * dI, 1), *kI = rnd((size_t)B * T * dI, 1), *w = rnd((size_t)B * T * HI, 1);
    ops_real *sc = zeros((size_t)B * T * T);
    attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, ATTN_DSA_PREC_BF16);
    /* scores follow the definition, -inf above the diagonal */
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int s = 0; s < T; s++) {
                double ref = 0;
                for (int j = 0; j < HI; j++) {
                    double a = dot(qI + (((size_t)b * T + t) * HI + j) * dI, kI + ((size_t)b * T + s) * dI, dI);
                    ref += w[((size_t)b * T + t) * HI + j] * (a > 0 ? a : 0);
                }
                double got = sc[((size_t)b * T + t) * T + s];
                ok &= s > t ? isinf(got) && got < 0 : fabs(got - ref) < 1e-12;
            }
    report(ok, "indexer scores: sum_j w ReLU(qI.kI), -inf for s > t", NULL);

    int ks[] = {1, 5, 16, 37, 50};
    for (int c = 0; c < 5; c++) {
        int topk = ks[c];
        int *idx = malloc(sizeof(int) * B * T * topk), *idx2 = malloc(sizeof(int) * B * T * topk);
        attn_dsa_indexer_topk(NULL, idx, sc, B, T, topk);
        ok = 1;
        for (int n = 0; n < B * T; n++) ok &= topk_row_ok(idx + (size_t)n * topk, sc + (size_t)n * T, n % T + 1, topk);
        attn_dsa_indexer_select(NULL, idx2, qI, kI, w, B, T, HI, dI, topk, ATTN_DSA_PREC_BF16);
        int same = memcmp(idx, idx2, sizeof(int) * B * T * topk) == 0;
        char name[96];
        snprintf(name, sizeof name, "top-%d picks exactly the k largest (vs a sort)", topk);
        report(ok, name, NULL);
        snprintf(name, sizeof name, "top-%d: fused select equals scores + top-k", topk);
        report(same, name, NULL);
        free(idx); free(idx2);
    }
    /* ties: integer scores with many repeats; lower positions must win */
    {
        int topk = 6, n = 40;
        ops_real *row = zeros((size_t)n * n);
        for (int t = 0; t < n; t++)
            for (int s = 0; s < n; s++) row[(size_t)t * n + s] = s > t ? -INFINITY : (ops_real)(int)(urand() * 4);
        int *idx = malloc(sizeof(int) * n * topk);
        attn_dsa_indexer_topk(NULL, idx, row, 1, n, topk);
        ok = 1;
        for (int t = 0; t < n; t++) ok &= topk_row_ok(idx + (size_t)t * topk, row + (size_t)t * n, t + 1, topk);
        report(ok, "top-k ties: lower position wins, ascending order", NULL);
        free(row); free(idx);
    }
    free(qI); free(kI); free(w); free(sc);
}

/* ---- the indexer's precision (CPU reference) ---- */
/* x on the grid of a float format with m mantissa bits, normals from 2^emin: x / ulp whole */
static int on_float_grid(double x, int m, int emin) {
    if (x == 0) return 1;
    int e;
    frexp(x, &e);
    double ulp = ldexp(1.0, (e - 1 < emin ? emin : e - 1) - m);
    return x / ulp == floor(x / ulp);
}

static void test_precision(void) {
    /* known roundings: fp16 keeps 10 mantissa bits, e4m3 3 and saturates at 448 */
    ops_real v[6] = {1 + 1.0 / 1024 + 1.0 / 4096, 1 + 3.0 / 2048, 1000, 1.0625, 500, 3e-3};
    ops_real h[6], e[6];
    memcpy(h, v, sizeof v);
    memcpy(e, v, sizeof v);
    op_indexer_quantize(h, 1, 6, SPARSE_PREC_FP16);
    op_indexer_quantize(e, 1, 6, SPARSE_PREC_FP8);
    char d[200];
    snprintf(d, sizeof d, "fp16 %.10g %.10g %g; e4m3 %g %g %g", h[0], h[1], h[2], e[3], e[4], e[5]);
    report(h[0] == 1 + 1.0 / 1024 && h[1] == 1 + 2.0 / 1024 /* tie to even */ && h[2] == 1000 &&
           e[3] == 1 /* 1.0625: halfway between 1 and 1.125, to the even mantissa */ && e[4] == 448 &&
           e[5] == 4.0 / 1024 /* subnormal, steps of 2^-9: 1.536 steps -> 2 */,
           "indexer precision: fp16 / e4m3 round to nearest even, e4m3 saturates at 448", d);
    /* every value lands on its format's grid; int8/int4 rows on a grid of max|x|/127 (/7) */
    int n = 64, dim = 16, ok = 1;
    ops_real *x = rnd((size_t)n * dim, 3), *y = zeros((size_t)n * dim);
    int precs[] = {SPARSE_PREC_FP16, SPARSE_PREC_FP8, SPARSE_PREC_INT8, SPARSE_PREC_INT4};
    double worst[4] = {0};
    for (int p = 0; p < 4; p++) {
        memcpy(y, x, sizeof(ops_real) * n * dim);
        op_indexer_quantize(y, n, dim, precs[p]);
        for (int r = 0; r < n; r++) {
            double mx = 0;
            for (int i = 0; i < dim; i++) mx = fmax(mx, fabs(x[r * dim + i]));
            double levels = precs[p] == SPARSE_PREC_INT8 ? 127 : 7;
            for (int i = 0; i < dim; i++) {
                double a = x[r * dim + i], b = y[r * dim + i], err = fabs(a - b);
                if (precs[p] == SPARSE_PREC_FP16) ok &= on_float_grid(b, 10, -14) && err <= fabs(a) / 2048 + 1e-300;
                else if (precs[p] == SPARSE_PREC_FP8) ok &= on_float_grid(b, 3, -6) && err <= fmax(fabs(a) / 16, 1.0 / 1024);
                else {
                    float fs = (float)mx / (float)levels; /* the fp32 scale op_indexer_quantize uses */
                    double qv = b / fs;
                    /* fp32 products: q on its integer up to a few fp32 ulps */
                    ok &= fabs(qv - rint(qv)) < 1e-6 * fmax(1, fabs(qv)) && fabs(qv) <= levels * (1 + 1e-6) &&
                          err <= mx / levels / 2 * (1 + 1e-6);
                }
                worst[p] = fmax(worst[p], err / mx);
            }
        }
    }
    /* ties: x = max/2 is 3.5 (int4) or 63.5 (int8) steps, exactly; which way it rounds hangs on
       how max / levels was rounded. The reference must round as the GPU does, in fp32: find
       maxima where fp32 and double disagree and check the fp32 answer is the one given. */
    int ties = 0, tie_ok = 1;
    for (int m = 128; m < 256 && ties < 8; m++) {
        for (int lv = 0; lv < 2; lv++) {
            double mx = m / 64.0, levels = lv ? 127 : 7;
            float fs = (float)mx / (float)levels;
            volatile float fr = (float)(mx / 2) / fs;
            double q32 = rintf(fr), q64 = rint((mx / 2) / (mx / levels));
            if (q32 == q64) continue;
            ops_real row[4] = {mx, mx / 2, -mx / 2, 0};
            op_indexer_quantize(row, 1, 4, lv ? SPARSE_PREC_INT8 : SPARSE_PREC_INT4);
            volatile float want = fs * (float)q32;
            tie_ok &= row[1] == (double)want && row[2] == -(double)want;
            ties++;
        }
    }
    snprintf(d, sizeof d, "%d maxima where fp32 and double round max/2 apart", ties);
    report(ties > 0 && tie_ok, "indexer precision: int8/int4 ties at half the row max round in fp32, as the GPU", d);
    /* rounding twice changes nothing (the selection and a re-quantized copy agree) */
    memcpy(y, x, sizeof(ops_real) * n * dim);
    op_indexer_quantize(y, n, dim, SPARSE_PREC_INT4);
    ops_real *z = zeros((size_t)n * dim);
    memcpy(z, y, sizeof(ops_real) * n * dim);
    op_indexer_quantize(z, n, dim, SPARSE_PREC_INT4);
    ok &= memcmp(y, z, sizeof(ops_real) * n * dim) == 0;
    snprintf(d, sizeof d, "max err / row max: fp16 %.1e e4m3 %.1e int8 %.1e int4 %.1e", worst[0], worst[1], worst[2],
             worst[3]);
    report(ok && worst[3] > worst[2] && worst[2] > worst[0], "indexer precision: values on their grid, error within half a step",
           d);
    /* the selection at each precision is the exact top-k of the scores of the quantized q, k */
    int B = 1, T = 29, HI = 2, dI = 8, topk = 5;
    ops_real *qI = rnd((size_t)B * T * HI * dI, 1), *kI = rnd((size_t)B * T * dI, 1), *w = rnd((size_t)B * T * HI, 1);
    ops_real *sc = zeros((size_t)B * T * T), *sq = zeros((size_t)B * T * T);
    ops_real *qq = zeros((size_t)B * T * HI * dI), *kq = zeros((size_t)B * T * dI);
    int *idx = malloc(sizeof(int) * B * T * topk), *differs = calloc(6, sizeof(int));
    ok = 1;
    for (int p = 0; p < 6; p++) {
        memcpy(qq, qI, sizeof(ops_real) * B * T * HI * dI);
        memcpy(kq, kI, sizeof(ops_real) * B * T * dI);
        op_indexer_quantize(qq, (size_t)B * T * HI, dI, p);
        op_indexer_quantize(kq, (size_t)B * T, dI, p);
        attn_dsa_indexer_scores(NULL, sq, qq, kq, w, B, T, HI, dI, ATTN_DSA_PREC_FP32); /* exact, from the quantized */
        attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, p);
        ok &= memcmp(sc, sq, sizeof(ops_real) * B * T * T) == 0;
        attn_dsa_indexer_select(NULL, idx, qI, kI, w, B, T, HI, dI, topk, p);
        for (int t = 0; t < B * T; t++) ok &= topk_row_ok(idx + (size_t)t * topk, sq + (size_t)t * T, t % T + 1, topk);
        attn_dsa_indexer_scores(NULL, sq, qI, kI, w, B, T, HI, dI, ATTN_DSA_PREC_FP32);
        for (size_t i = 0; i < (size_t)B * T * T; i++) differs[p] |= sc[i] != sq[i] && !isinf(sq[i]);
    }
    snprintf(d, sizeof d, "scores differ from fp32: bf16 %d fp32 %d fp16 %d fp8 %d int8 %d int4 %d", differs[0],
             differs[1], differs[2], differs[3], differs[4], differs[5]);
    report(ok && !differs[0] && !differs[1] && differs[2] && differs[3] && differs[4] && differs[5],
           "indexer precision: scores and top-k computed exactly from the quantized q, k", d);
    free(x); free(y); free(z); free(qI); free(kI); free(w); free(sc); free(sq); free(qq); free(kq); free(idx); free(differs);
}

/* fp8 e4m3 and fp16 against values worked out by hand (3 / 10 mantissa bits, ties to even,
   e4m3 normals from 2^-6 and subnormals in steps of 2^-9, saturation at +-448) */
static void test_fp8_table(void) {
    static const double tab[][3] = {
        /* x, e4m3, fp16 */
        {0.1, 0.1015625 /* 1.6 * 2^-4: 12.8/8 -> 13/8 */, 0.0999755859375 /* 1638.4/1024 -> 1638 */},
        {-0.3, -0.3125 /* 1.2 * 2^-2: 9.6/8 -> 10/8 */, -0.300048828125 /* 1228.8 -> 1229 */},
        {448, 448, 448},
        {500, 448 /* saturated: 1.953 * 2^8 would round to 512 */, 500},
        {-1000, -448, -1000},
        {240, 240 /* 1.875 * 2^7, exact */, 240},
        {0.015625, 0.015625 /* 2^-6, the smallest normal */, 0.015625},
        {0.001953125, 0.001953125 /* 2^-9, the smallest subnormal */, 0.001953125},
        {0.0009765625, 0 /* 2^-10: half a step, ties to even (0) */, 0.0009765625},
        {0.00146484375, 0.001953125 /* 0.75 steps -> 1 */, 0.00146484375},
        {0.0048828125, 0.00390625 /* 2.5 steps of 2^-9: ties to even, 2 */, 0.0048828125},
    };
    int n = (int)(sizeof tab / sizeof tab[0]), ok = 1;
    char d[160] = "";
    for (int i = 0; i < n; i++) {
        ops_real e = (ops_real)tab[i][0], h = (ops_real)tab[i][0];
        op_indexer_quantize(&e, 1, 1, SPARSE_PREC_FP8);
        op_indexer_quantize(&h, 1, 1, SPARSE_PREC_FP16);
        if ((double)e != tab[i][1] || (double)h != tab[i][2]) {
            if (ok) snprintf(d, sizeof d, "x %g: e4m3 %.10g (want %.10g), fp16 %.12g (want %.12g)", tab[i][0], (double)e,
                             tab[i][1], (double)h, tab[i][2]);
            ok = 0;
        }
    }
    report(ok, "indexer precision: e4m3 / fp16 of 0.1, -0.3, 448, 500, subnormals match the hand table", d[0] ? d : NULL);
}

/* ---- adaptive k (topk_schedule 5) ---- */
static void test_adaptive_k(void) {
    char d[200];
    ops_real row[40];
    double perp;
    /* uniform over n keys: perplexity n, k = n (within [kmin, kmax]) */
    for (int s = 0; s < 40; s++) row[s] = 0.37;
    int ku = attn_dsa_adaptive_k(row, 20, 4, 32, 100, &perp);
    int kc = attn_dsa_adaptive_k(row, 40, 4, 32, 100, NULL); /* 40 > kmax: clamped */
    int kh = attn_dsa_adaptive_k(row, 20, 4, 32, 50, NULL);  /* half the perplexity */
    /* one-hot (one score far above the rest): perplexity 1, k = kmin */
    for (int s = 0; s < 40; s++) row[s] = s == 7 ? 80 : 0;
    int k1 = attn_dsa_adaptive_k(row, 40, 4, 32, 100, NULL);
    int k1b = attn_dsa_adaptive_k(row, 40, 64, 32, 100, NULL); /* kmin above kmax: kmax */
    /* two equal peaks: perplexity 2; mass on 8 of 16 equally: 8 */
    for (int s = 0; s < 40; s++) row[s] = s == 3 || s == 9 ? 60 : 0;
    int k2 = attn_dsa_adaptive_k(row, 40, 1, 32, 100, NULL);
    for (int s = 0; s < 16; s++) row[s] = s % 2 ? 70 : 0;
    int k8 = attn_dsa_adaptive_k(row, 16, 1, 32, 100, NULL);
    snprintf(d, sizeof d, "uniform 20: %d (perp %.6f), clamped %d, 50%% %d; one-hot %d, %d; 2 peaks %d; 8 of 16 %d", ku, perp,
             kc, kh, k1, k1b, k2, k8);
    report(ku == 20 && fabs(perp - 20) < 1e-9 && kc == 32 && kh == 10 && k1 == 4 && k1b == 32 && k2 == 2 && k8 == 8,
           "adaptive k: uniform over n -> n, one-hot -> topk_min, clamps and percent", d);

    /* the select keeps each row's k_t best of the fixed selection, ascending, then -1 */
    int B = 2, T = 37, HI = 2, dI = 8, topk = 12, kmin = 3, pct = 150, ok = 1, varied = 0, kprev = -1;
    ops_real *qI = rnd((size_t)B * T * HI * dI, 2), *kI = rnd((size_t)B * T * dI, 2), *w = rnd((size_t)B * T * HI, 1);
    ops_real *sc = zeros((size_t)B * T * T);
    int *ia = malloc(sizeof(int) * B * T * topk), *ir = malloc(sizeof(int) * B * T * topk);
    for (int p = 0; p < 6; p++) {
        attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, p);
        attn_dsa_indexer_select_adaptive(NULL, ia, qI, kI, w, B, T, HI, dI, topk, p, kmin, pct);
        for (int n = 0; n < B * T; n++) {
            int t = n % T, k = attn_dsa_adaptive_k(sc + (size_t)n * T, t + 1, kmin, topk, pct, NULL);
            int kk = k < t + 1 ? k : t + 1, cnt = 0;
            const int *row = ia + (size_t)n * topk;
            for (int j = 0; j < topk; j++) cnt += row[j] >= 0;
            for (int j = cnt; j < topk; j++) ok &= row[j] == -1;
            ok &= cnt == kk && topk_row_ok(row, sc + (size_t)n * T, t + 1, k);
            if (t >= topk && kprev >= 0 && k != kprev) varied = 1;
            if (t >= topk) kprev = k;
        }
    }
    /* SPARSE_PREC_FP32_ACT (the room's fp32 on the GPU) is fp32 on the CPU: the same scores */
    {
        ops_real *s1 = zeros((size_t)B * T * T);
        attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, ATTN_DSA_PREC_FP32);
        attn_dsa_indexer_scores(NULL, s1, qI, kI, w, B, T, HI, dI, SPARSE_PREC_FP32_ACT);
        report(memcmp(sc, s1, sizeof(ops_real) * B * T * T) == 0, "indexer precision: fp32 of activations = fp32 (CPU)",
               NULL);
        free(s1);
    }
    /* pct 0 is the fixed k */
    attn_dsa_indexer_select_adaptive(NULL, ia, qI, kI, w, B, T, HI, dI, topk, 0, kmin, 0);
    attn_dsa_indexer_select(NULL, ir, qI, kI, w, B, T, HI, dI, topk, 0);
    ok &= memcmp(ia, ir, sizeof(int) * B * T * topk) == 0;
    report(ok && varied, "adaptive select: row t keeps its k_t top scores (every precision), -1 after; pct 0 = fixed",
           NULL);
    free(qI); free(kI); free(w); free(sc); free(ia); free(ir);
}

/* ---- sparse attention ---- */
typedef struct {
    int B, T, H, KV, hd, topk;
    int *idx;
    ops_real *q, *k, *v, *out, *lse, *R;
} SaCtx;

static double sa_loss(void *p) {
    SaCtx *c = p;
    attn_dsa_attention_forward(NULL, c->out, c->lse, c->q, c->k, c->v, c->idx, c->B, c->T, c->H, c->KV,
                                c->hd, c->topk);
    return dot(c->out, c->R, (size_t)c->B * c->T * c->H * c->hd);
}

/* random causal selections: each row picks min(t+1, topk) distinct positions <= t, in a
   shuffled order with the -1 slots spread among them (the op must not care) */
static int *random_idx(int B, int T, int topk) {
    int *idx = malloc(sizeof(int) * B * T * topk), *perm = malloc(sizeof(int) * T);
    for (int n = 0; n < B * T; n++) {
        int t = n % T, m = t + 1 < topk ? t + 1 : topk;
        for (int s = 0; s <= t; s++) perm[s] = s;
        for (int s = 0; s < m; s++) { int r = s + (int)(urand() * (t + 1 - s)); int x = perm[s]; perm[s] = perm[r]; perm[r] = x; }
        int *row = idx + (size_t)n * topk;
        for (int j = 0; j < topk; j++) row[j] = j < m ? perm[j] : -1;
        for (int j = topk - 1; j > 0; j--) { int r = (int)(urand() * (j + 1)); int x = row[j]; row[j] = row[r]; row[r] = x; }
    }
    free(perm);
    return idx;
}

static void test_sparse_attention(int H, int KV, int topk) {
    SaCtx c = {2, 9, H, KV, 4, topk, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = (size_t)c.B * c.T * H * c.hd, nk = (size_t)c.B * c.T * KV * c.hd;
    c.idx = random_idx(c.B, c.T, topk);
    c.q = rnd(nq, 1); c.k = rnd(nk, 1); c.v = rnd(nk, 1); c.R = rnd(nq, 1);
    c.out = zeros(nq); c.lse = zeros((size_t)c.B * H * c.T);
    ops_real *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk), *ps = zeros((size_t)c.B * c.T * topk),
           *pr = zeros((size_t)c.B * c.T * topk);
    sa_loss(&c);
    attn_dsa_attention_backward(NULL, dq, dk, dv, ps, c.R, c.out, c.lse, c.q, c.k, c.v, c.idx, c.B, c.T, H, KV,
                                 c.hd, topk);
    char name[96];
    snprintf(name, sizeof name, "sparse attention H=%d KV=%d k=%d: dq", H, KV, topk);
    check_grad(name, sa_loss, &c, c.q, dq, nq, 60);
    snprintf(name, sizeof name, "sparse attention H=%d KV=%d k=%d: dk", H, KV, topk);
    check_grad(name, sa_loss, &c, c.k, dk, nk, 60);
    snprintf(name, sizeof name, "sparse attention H=%d KV=%d k=%d: dv", H, KV, topk);
    check_grad(name, sa_loss, &c, c.v, dv, nk, 60);
    /* psum = probs, and a distribution over the valid slots */
    sa_loss(&c);
    attn_dsa_attention_probs(NULL, pr, c.q, c.k, c.lse, c.idx, c.B, c.T, H, KV, c.hd, topk);
    int ok = max_abs_diff(ps, pr, (size_t)c.B * c.T * topk) < 1e-14;
    for (int n = 0; n < c.B * c.T; n++) {
        double s = 0;
        for (int j = 0; j < topk; j++) {
            s += pr[(size_t)n * topk + j];
            if (c.idx[(size_t)n * topk + j] < 0) ok &= pr[(size_t)n * topk + j] == 0;
        }
        ok &= fabs(s - 1) < 1e-12;
    }
    snprintf(name, sizeof name, "sparse attention H=%d KV=%d k=%d: psum = probs, sums to 1", H, KV, topk);
    report(ok, name, NULL);
    free(c.idx); free(c.q); free(c.k); free(c.v); free(c.R); free(c.out); free(c.lse);
    free(dq); free(dk); free(dv); free(ps); free(pr);
}

/* k >= T with the full causal selection is dense causal attention */
static void test_sparse_equals_dense(int H, int KV, int topk) {
    int B = 2, T = 11, hd = 8;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    ops_real *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *g = rnd(nq, 1);
    ops_real *o1 = zeros(nq), *o2 = zeros(nq), *l1 = zeros(nl), *l2 = zeros(nl);
    ops_real *dq1 = zeros(nq), *dq2 = zeros(nq), *dk1 = zeros(nk), *dk2 = zeros(nk), *dv1 = zeros(nk), *dv2 = zeros(nk);
    ops_real *sc = zeros((size_t)B * T * T), *qI = rnd((size_t)B * T * 2 * 4, 1), *kI = rnd((size_t)B * T * 4, 1),
           *w = rnd((size_t)B * T * 2, 1);
    int *idx = malloc(sizeof(int) * B * T * topk);
    /* the indexer's own selection, which for k >= T must be everything */
    attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, 2, 4, ATTN_DSA_PREC_BF16);
    attn_dsa_indexer_topk(NULL, idx, sc, B, T, topk);
    op_attention_forward(NULL, o1, l1, q, k, v, B, T, H, KV, hd, 0);
    attn_dsa_attention_forward(NULL, o2, l2, q, k, v, idx, B, T, H, KV, hd, topk);
    op_attention_backward(NULL, dq1, dk1, dv1, g, o1, l1, q, k, v, B, T, H, KV, hd, 0);
    attn_dsa_attention_backward(NULL, dq2, dk2, dv2, NULL, g, o2, l2, q, k, v, idx, B, T, H, KV, hd, topk);
    double e = fmax(fmax(max_abs_diff(o1, o2, nq), max_abs_diff(l1, l2, nl)),
                    fmax(max_abs_diff(dq1, dq2, nq), fmax(max_abs_diff(dk1, dk2, nk), max_abs_diff(dv1, dv2, nk))));
    char name[96], d[64];
    snprintf(name, sizeof name, "sparse k=%d >= T=%d equals dense causal (H=%d KV=%d)", topk, T, H, KV);
    snprintf(d, sizeof d, "max diff %.1e", e);
    report(e < 1e-12, name, d);
    free(q); free(k); free(v); free(g); free(o1); free(o2); free(l1); free(l2);
    free(dq1); free(dq2); free(dk1); free(dk2); free(dv1); free(dv2); free(sc); free(qI); free(kI); free(w); free(idx);
}

/* ---- indexer KL ---- */
typedef struct {
    int B, T, HI, dI, topk;
    int *idx;
    ops_real *p, *qI, *kI, *w, *loss, *R;
} KlCtx;

static double kl_loss(void *p) {
    KlCtx *c = p;
    attn_dsa_indexer_kl_forward(NULL, c->loss, c->p, c->qI, c->kI, c->w, c->idx, c->B, c->T, c->HI, c->dI, c->topk);
    return dot(c->loss, c->R, (size_t)c->B * c->T);
}

static void test_kl(int topk) {
    KlCtx c = {2, 10, 3, 5, topk, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t N = (size_t)c.B * c.T, nq = N * c.HI * c.dI, nk = N * c.dI, nw = N * c.HI;
    c.qI = rnd(nq, 1); c.kI = rnd(nk, 1); c.w = rnd(nw, 1); c.loss = zeros(N);
    c.R = rnd(N, 1);
    /* the selection from the indexer itself, p from a real sparse attention */
    c.idx = malloc(sizeof(int) * N * topk);
    attn_dsa_indexer_select(NULL, c.idx, c.qI, c.kI, c.w, c.B, c.T, c.HI, c.dI, topk, ATTN_DSA_PREC_BF16);
    {
        int H = 4, KV = 2, hd = 4;
        ops_real *q = rnd(N * H * hd, 1), *k = rnd(N * KV * hd, 1), *v = rnd(N * KV * hd, 1), *o = zeros(N * H * hd),
               *l = zeros(N * H);
        c.p = zeros(N * topk);
        attn_dsa_attention_forward(NULL, o, l, q, k, v, c.idx, c.B, c.T, H, KV, hd, topk);
        attn_dsa_attention_probs(NULL, c.p, q, k, l, c.idx, c.B, c.T, H, KV, hd, topk);
        free(q); free(k); free(v); free(o); free(l);
    }
    ops_real *dq = zeros(nq), *dk = zeros(nk), *dw = zeros(nw), *loss2 = zeros(N);
    double f = kl_loss(&c);
    (void)f;
    /* the backward takes one scalar dloss: check sum(loss) * 0.75 (exact in float)
    */
    for (size_t n = 0; n < N; n++) c.R[n] = 0.75;
    attn_dsa_indexer_kl_backward(NULL, loss2, dq, dk, dw, c.p, c.qI, c.kI, c.w, c.idx, c.B, c.T, c.HI, c.dI, topk, 0.75f);
    kl_loss(&c);
    int ok = max_abs_diff(c.loss, loss2, N) < 1e-14;
    for (size_t n = 0; n < N; n++) ok &= c.loss[n] >= -1e-15;
    char name[96];
    snprintf(name, sizeof name, "indexer KL k=%d: loss >= 0, backward's loss = forward's", topk);
    report(ok, name, NULL);
    snprintf(name, sizeof name, "indexer KL k=%d: d qI", topk);
    check_grad(name, kl_loss, &c, c.qI, dq, nq, 80);
    snprintf(name, sizeof name, "indexer KL k=%d: d kI", topk);
    check_grad(name, kl_loss, &c, c.kI, dk, nk, 80);
    snprintf(name, sizeof name, "indexer KL k=%d: d w", topk);
    check_grad(name, kl_loss, &c, c.w, dw, nw, 80);
    /* p = the indexer's own softmax: KL = 0 */
    {
        ops_real *I = zeros(topk);
        for (size_t n = 0; n < N; n++) {
            int b = (int)(n / c.T);
            const int *it = c.idx + n * topk;
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < topk; j++)
                if (it[j] >= 0) {
                    I[j] = 0;
                    for (int h = 0; h < c.HI; h++) {
                        double a = dot(c.qI + (n * c.HI + h) * c.dI, c.kI + ((size_t)b * c.T + it[j]) * c.dI, c.dI);
                        I[j] += c.w[n * c.HI + h] * (a > 0 ? a : 0);
                    }
                    if (I[j] > mx) mx = I[j];
                }
            for (int j = 0; j < topk; j++) if (it[j] >= 0) s += exp(I[j] - mx);
            for (int j = 0; j < topk; j++) c.p[n * topk + j] = it[j] >= 0 ? 3 * exp(I[j] - mx) / s : 0; /* unnormalized */
        }
        kl_loss(&c);
        double mx = 0;
        for (size_t n = 0; n < N; n++) mx = fmax(mx, fabs(c.loss[n]));
        snprintf(name, sizeof name, "indexer KL k=%d: zero when softmax(I) = p (p renormalized)", topk);
        report(mx < 1e-13, name, NULL);
        free(I);
    }
    free(c.idx); free(c.p); free(c.qI); free(c.kI); free(c.w); free(c.loss); free(c.R);
    free(dq); free(dk); free(dw); free(loss2);
}

/* adaptive k, end to end: the loss recomputes the selection (select_adaptive) from the
   indexer inputs at every evaluation, so the finite differences cross the selection exactly as
   training does; the analytic gradients are the sparse attention's and the KL's over that
   selection. The per-row k is piecewise constant: the check is valid away from a switch, and
   every evaluation's selection is compared with the base one (a switch would fail the test). */
typedef struct {
    int B, T, H, KV, hd, HI, dI, topk, kmin, pct, switched;
    int *idx, *idx0;
    ops_real *q, *k, *v, *qI, *kI, *w, *p, *out, *lse, *loss, *R;
} AdCtx;

static double ad_loss(void *pv) {
    AdCtx *c = pv;
    size_t N = (size_t)c->B * c->T;
    attn_dsa_indexer_select_adaptive(NULL, c->idx, c->qI, c->kI, c->w, c->B, c->T, c->HI, c->dI, c->topk,
                                     ATTN_DSA_PREC_BF16, c->kmin, c->pct);
    if (c->idx0 && memcmp(c->idx, c->idx0, sizeof(int) * N * c->topk)) c->switched++;
    attn_dsa_attention_forward(NULL, c->out, c->lse, c->q, c->k, c->v, c->idx, c->B, c->T, c->H, c->KV, c->hd, c->topk);
    attn_dsa_indexer_kl_forward(NULL, c->loss, c->p, c->qI, c->kI, c->w, c->idx, c->B, c->T, c->HI, c->dI, c->topk);
    double l = dot(c->out, c->R, N * c->H * c->hd);
    for (size_t n = 0; n < N; n++) l += 0.5 * c->loss[n];
    return l;
}

static void test_adaptive_grad(void) {
    AdCtx c = {0};
    c.B = 2; c.T = 24; c.H = 4; c.KV = 2; c.hd = 4; c.HI = 2; c.dI = 4; c.topk = 10; c.kmin = 2; c.pct = 60;
    size_t N = (size_t)c.B * c.T, nq = N * c.H * c.hd, nk = N * c.KV * c.hd, nqi = N * c.HI * c.dI, nki = N * c.dI;
    c.q = rnd(nq, 1); c.k = rnd(nk, 1); c.v = rnd(nk, 1); c.R = rnd(nq, 1);
    c.qI = rnd(nqi, 2); c.kI = rnd(nki, 2); c.w = rnd(N * c.HI, 1);
    c.out = zeros(nq); c.lse = zeros(N * c.H); c.loss = zeros(N); c.p = zeros(N * c.topk);
    c.idx = malloc(sizeof(int) * N * c.topk);
    c.idx0 = malloc(sizeof(int) * N * c.topk);
    /* the base selection and its detached target p */
    attn_dsa_indexer_select_adaptive(NULL, c.idx0, c.qI, c.kI, c.w, c.B, c.T, c.HI, c.dI, c.topk, ATTN_DSA_PREC_BF16,
                                     c.kmin, c.pct);
    int kmn = c.topk, kmx = 0;
    for (size_t n = 0; n < N; n++) {
        int cnt = 0;
        for (int j = 0; j < c.topk; j++) cnt += c.idx0[n * c.topk + j] >= 0;
        if ((int)(n % c.T) >= c.topk) { kmn = cnt < kmn ? cnt : kmn; kmx = cnt > kmx ? cnt : kmx; }
    }
    attn_dsa_attention_forward(NULL, c.out, c.lse, c.q, c.k, c.v, c.idx0, c.B, c.T, c.H, c.KV, c.hd, c.topk);
    attn_dsa_attention_probs(NULL, c.p, c.q, c.k, c.lse, c.idx0, c.B, c.T, c.H, c.KV, c.hd, c.topk);
    ops_real *dout = zeros(nq), *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk), *l2 = zeros(N);
    ops_real *dqI = zeros(nqi), *dkI = zeros(nki), *dw = zeros(N * c.HI);
    memcpy(dout, c.R, sizeof(ops_real) * nq);
    attn_dsa_attention_backward(NULL, dq, dk, dv, NULL, dout, c.out, c.lse, c.q, c.k, c.v, c.idx0, c.B, c.T, c.H, c.KV,
                                c.hd, c.topk);
    attn_dsa_indexer_kl_backward(NULL, l2, dqI, dkI, dw, c.p, c.qI, c.kI, c.w, c.idx0, c.B, c.T, c.HI, c.dI, c.topk, 0.5f);
    char d[96];
    snprintf(d, sizeof d, "k per row %d..%d of %d", kmn, kmx, c.topk);
    report(kmn < kmx, "adaptive grad: the rows' k differ at the check point", d);
    check_grad("adaptive k: d q", ad_loss, &c, c.q, dq, nq, 60);
    check_grad("adaptive k: d k", ad_loss, &c, c.k, dk, nk, 60);
    check_grad("adaptive k: d v", ad_loss, &c, c.v, dv, nk, 60);
    check_grad("adaptive k: d qI (KL)", ad_loss, &c, c.qI, dqI, nqi, 60);
    check_grad("adaptive k: d kI (KL)", ad_loss, &c, c.kI, dkI, nki, 60);
    check_grad("adaptive k: d w (KL)", ad_loss, &c, c.w, dw, N * c.HI, 60);
    snprintf(d, sizeof d, "%d evaluations changed the selection", c.switched);
    report(c.switched == 0, "adaptive grad: no k switch or reselection near the check point", d);
    free(c.q); free(c.k); free(c.v); free(c.R); free(c.qI); free(c.kI); free(c.w); free(c.out); free(c.lse);
    free(c.loss); free(c.p); free(c.idx); free(c.idx0); free(dout); free(dq); free(dk); free(dv); free(l2);
    free(dqI); free(dkI); free(dw);
}

/* indexer + top-k + sparse attention: changing token t+1 (its q, k, v and indexer
   inputs) leaves every output at positions <= t unchanged */
static void test_causality(void) {
    int B = 1, T = 12, H = 2, KV = 1, hd = 4, HI = 2, dI = 4, topk = 4;
    size_t nq = (size_t)T * H * hd, nk = (size_t)T * KV * hd;
    ops_real *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *qI = rnd((size_t)T * HI * dI, 1),
           *kI = rnd((size_t)T * dI, 1), *w = rnd((size_t)T * HI, 1);
    ops_real *o1 = zeros(nq), *o2 = zeros(nq), *l = zeros((size_t)H * T);
    int *idx = malloc(sizeof(int) * T * topk);
    int ok = 1;
    for (int t = 0; t + 1 < T; t++) {
        attn_dsa_indexer_select(NULL, idx, qI, kI, w, B, T, HI, dI, topk, ATTN_DSA_PREC_BF16);
        attn_dsa_attention_forward(NULL, o1, l, q, k, v, idx, B, T, H, KV, hd, topk);
        int u = t + 1;
        for (int i = 0; i < H * hd; i++) q[(size_t)u * H * hd + i] += 1.0;
        for (int i = 0; i < hd; i++) { k[(size_t)u * hd + i] -= 2.0; v[(size_t)u * hd + i] += 3.0; kI[(size_t)u * dI + i] += 5.0; }
        for (int i = 0; i < HI * dI; i++) qI[(size_t)u * HI * dI + i] *= -1;
        attn_dsa_indexer_select(NULL, idx, qI, kI, w, B, T, HI, dI, topk, ATTN_DSA_PREC_BF16);
        attn_dsa_attention_forward(NULL, o2, l, q, k, v, idx, B, T, H, KV, hd, topk);
        ok &= memcmp(o1, o2, sizeof(ops_real) * (size_t)(t + 1) * H * hd) == 0;
        ok &= memcmp(o1, o2, sizeof(ops_real) * nq) != 0; /* the change does reach later tokens */
    }
    report(ok, "DSA causality: token t+1 never changes outputs <= t", NULL);
    free(q); free(k); free(v); free(qI); free(kI); free(w); free(o1); free(o2); free(l); free(idx);
}

int main(void) {
    printf("attn/dsa.h CPU tests in %s precision\n", sizeof(ops_real) == 8 ? "double" : "single");
    test_topk();
    test_precision();
    test_sparse_equals_dense(4, 2, 11);
    test_sparse_equals_dense(3, 1, 64);
    test_sparse_equals_dense(2, 2, 11);
    test_sparse_attention(4, 2, 3);
    test_sparse_attention(2, 2, 5);
    test_sparse_attention(4, 1, 1);
    test_sparse_attention(3, 3, 9);
    test_kl(3);
    test_kl(10);
    test_causality();
    test_fp8_table();
    test_adaptive_k();
    test_adaptive_grad();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
