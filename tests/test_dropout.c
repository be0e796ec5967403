/* tests/test_dropout.c - dropout's ops (ops.h: op_attention_dropout_*, op_resid_dropout) and its
   study keys, on the CPU in double precision (built with -DABLATE_REAL=double; make test runs it).
   The whole model's checks (fixed-mask gradients of every parameter, masks reproducible and new
   each step, off at evaluation whatever the seed) are in tests/run_tests.c (test_resid_dropout).

   Checks:
     attention, p = 0.3, dense causal and a local+global pattern:
       expectation: the mean output over 400 streams (seeds) equals the output without dropout,
         every element within 5 standard errors (the per-element variance is known in closed
         form: sum_j P_j^2 V_j^2 p / (1 - p), over the streams' means)
       the kept fraction of P's entries over the causal triangle within 4 sigma of 1 - p
       reproducibility: the same (seed, step, micro, layer) gives the same bits; another step,
         micro, layer or seed another output; lse is P's (no dropout in it)
       fixed-mask gradients (dq, dk, dv; L = sum(out * R), central differences, h = 1e-5,
         |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|)), GQA (2 query heads per kv head)
       thresh 0 (p = 0) is exactly op_attention_pattern_*
     residual: op_resid_dropout's kept fraction within 4 sigma, kept elements scaled by
       1 / (1 - p) exactly, the mask the same on a second call (its own backward)
     generation: prefill and a decode step with attn_dropout equal those without it
     study keys: attn_dropout is a run key and a --attn-dropout flag (per mille), in the
       canonical config (config.json) and the identity when set, out of both at 0
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h" /* report, random inputs, check_grad */

enum { B_ = 2, T_ = 24, H_ = 4, KV_ = 2, HD_ = 8 };
#define NQ ((size_t)B_ * T_ * H_ * HD_)
#define NK ((size_t)B_ * T_ * KV_ * HD_)

typedef struct {
    ops_real *q, *k, *v, *R, *out, *lse;
    OpsPattern pat;
    OpsDropout d;
} Att;

static void att_forward(Att *a, const OpsDropout *d) {
    op_attention_dropout_forward(NULL, a->out, a->lse, a->q, a->k, a->v, B_, T_, H_, KV_, HD_, &a->pat, d);
}
static double att_loss(void *p) {
    Att *a = p;
    att_forward(a, &a->d);
    return dot(a->out, a->R, NQ);
}

static OpsDropout stream(unsigned long long seed, int step, int micro, int layer, double p) {
    OpsDropout d = {0};
    d.thresh = ops_drop_thresh(p);
    d.scale = (float)(1 / (1 - p));
    d.seed = seed; d.step = step; d.micro = micro; d.layer = layer;
    return d;
}

static void test_attention(const OpsPattern *pat, const char *what) {
    const double p = 0.3;
    Att a = {rnd(NQ, 1), rnd(NK, 1), rnd(NK, 1), rnd(NQ, 1), zeros(NQ), zeros((size_t)B_ * H_ * T_), *pat, {0}};
    ops_real *ref = zeros(NQ), *lse0 = zeros((size_t)B_ * H_ * T_), *mean = zeros(NQ), *var = zeros(NQ);
    char name[160], d[200];
    /* no dropout; and the closed-form variance of one stream's output element:
       out_i = sum_j P_ij m_ij V_j / (1 - p), Var = sum_j P_ij^2 V_j^2 p / (1 - p) */
    op_attention_pattern_forward(NULL, ref, lse0, a.q, a.k, a.v, B_, T_, H_, KV_, HD_, pat);
    for (int b = 0; b < B_; b++)
        for (int h = 0; h < H_; h++)
            for (int t = 0; t < T_; t++) {
                const ops_real *qt = a.q + (((size_t)b * T_ + t) * H_ + h) * HD_;
                ops_real L = lse0[((size_t)b * H_ + h) * T_ + t];
                for (int s = 0; s <= t; s++) {
                    if (!ops_pattern_visible(pat, t, s)) continue;
                    const ops_real *ks = a.k + (((size_t)b * T_ + s) * KV_ + h / (H_ / KV_)) * HD_;
                    const ops_real *vs = a.v + (((size_t)b * T_ + s) * KV_ + h / (H_ / KV_)) * HD_;
                    double sc = 0;
                    for (int i = 0; i < HD_; i++) sc += qt[i] * ks[i];
                    double P = exp(sc / sqrt((double)HD_) - L);
                    for (int i = 0; i < HD_; i++)
                        var[(((size_t)b * T_ + t) * H_ + h) * HD_ + i] += P * P * vs[i] * vs[i] * p / (1 - p);
                }
            }
    /* expectation over streams */
    const int S = 400;
    for (int sd = 0; sd < S; sd++) {
        OpsDropout dr = stream(1000 + sd, 3, 1, 2, p);
        att_forward(&a, &dr);
        for (size_t i = 0; i < NQ; i++) mean[i] += a.out[i] / S;
    }
    double worst = 0;
    for (size_t i = 0; i < NQ; i++) {
        double se = sqrt(var[i] / S);
        double z = se > 0 ? fabs(mean[i] - ref[i]) / se : (fabs(mean[i] - ref[i]) > 1e-12 ? INFINITY : 0);
        if (z > worst) worst = z;
    }
    snprintf(d, sizeof d, "largest |mean - out| %.2f standard errors over %zu elements", worst, NQ);
    snprintf(name, sizeof name, "attn dropout %s: mean over %d seeds = the output without", what, S);
    report(worst < 5, name, d);
    /* kept fraction over the causal triangle of many streams (the mask does not depend on the
       pattern: checked once) */
    long kept = 0, n = 0;
    for (int sd = 0; sd < 20; sd++) {
        OpsDropout dr = stream(77 + sd, 1, 1, 0, p);
        for (int b = 0; b < B_; b++)
            for (int h = 0; h < H_; h++) {
                unsigned long long key = ops_drop_key(dr.seed, dr.step, dr.micro, dr.layer, b, h);
                for (int t = 0; t < T_; t++)
                    for (int s = 0; s <= t; s++) { kept += ops_drop_bits(key, t, s) >= dr.thresh; n++; }
            }
    }
    double z = (kept - (1 - p) * n) / sqrt(n * p * (1 - p));
    snprintf(d, sizeof d, "%ld of %ld kept (z = %.2f)", kept, n, z);
    if (!pat->window) report(fabs(z) < 4, "attn dropout: kept fraction within 4 sigma of 1 - p", d);
    /* reproducibility */
    ops_real *o1 = zeros(NQ), *o2 = zeros(NQ);
    OpsDropout base = stream(5, 7, 2, 1, p);
    att_forward(&a, &base);
    memcpy(o1, a.out, sizeof(ops_real) * NQ);
    int lse_same = !memcmp(a.lse, lse0, sizeof(ops_real) * B_ * H_ * T_);
    att_forward(&a, &base);
    int same = !memcmp(o1, a.out, sizeof(ops_real) * NQ);
    int differ = 1;
    OpsDropout other[4] = {base, base, base, base};
    other[0].step++; other[1].micro++; other[2].layer++; other[3].seed++;
    for (int i = 0; i < 4; i++) {
        att_forward(&a, &other[i]);
        memcpy(o2, a.out, sizeof(ops_real) * NQ);
        differ &= memcmp(o1, o2, sizeof(ops_real) * NQ) != 0;
    }
    snprintf(name, sizeof name, "attn dropout %s: same stream same bits, another differs, lse is P's", what);
    report(same && differ && lse_same, name, NULL);
    /* p = 0: the plain op */
    OpsDropout zero = stream(5, 7, 2, 1, 0);
    att_forward(&a, &zero);
    snprintf(name, sizeof name, "attn dropout %s: thresh 0 is the op without dropout", what);
    report(!memcmp(a.out, ref, sizeof(ops_real) * NQ), name, NULL);
    /* gradients at a fixed mask */
    a.d = base;
    ops_real *dq = zeros(NQ), *dk = zeros(NK), *dv = zeros(NK);
    att_forward(&a, &a.d);
    op_attention_dropout_backward(NULL, dq, dk, dv, a.R, a.out, a.lse, a.q, a.k, a.v, B_, T_, H_, KV_, HD_, &a.pat,
                                  &a.d);
    snprintf(name, sizeof name, "attn dropout %s fixed mask: dq", what);
    check_grad(name, att_loss, &a, a.q, dq, NQ, 200);
    snprintf(name, sizeof name, "attn dropout %s fixed mask: dk", what);
    check_grad(name, att_loss, &a, a.k, dk, NK, 200);
    snprintf(name, sizeof name, "attn dropout %s fixed mask: dv", what);
    check_grad(name, att_loss, &a, a.v, dv, NK, 200);
    free(dq); free(dk); free(dv); free(o1); free(o2);
    free(a.q); free(a.k); free(a.v); free(a.R); free(a.out); free(a.lse);
    free(ref); free(lse0); free(mean); free(var);
}

static void test_resid(void) {
    const size_t n = 100000;
    const float p = 0.25f;
    ops_real *x = zeros(n), *y = zeros(n);
    for (size_t i = 0; i < n; i++) x[i] = y[i] = 1 + (double)i / n;
    OpsDropout d = {0};
    d.seed = 42; d.step = 3; d.micro = 1; d.layer = 2;
    op_resid_dropout(NULL, x, n, p, &d, 1);
    long kept = 0;
    int scaled = 1;
    ops_real keep = 1 / (1 - (ops_real)p);
    for (size_t i = 0; i < n; i++) {
        int dropped = ops_resid_drop_u(d.seed, d.step, d.micro, d.layer, 1, i) < p;
        kept += !dropped;
        scaled &= dropped ? x[i] == 0 : x[i] == y[i] * keep;
    }
    double z = (kept - (1 - p) * (double)n) / sqrt(n * p * (1 - p));
    char dd[120];
    snprintf(dd, sizeof dd, "%ld of %zu kept (z = %.2f)", kept, n, z);
    report(fabs(z) < 4 && scaled, "resid dropout: kept fraction within 4 sigma, kept scaled by 1/(1-p)", dd);
    memcpy(y, x, sizeof(ops_real) * n);
    op_resid_dropout(NULL, y, n, p, &d, 1); /* the backward's call: the same mask again */
    int again = 1;
    for (size_t i = 0; i < n; i++) again &= x[i] == 0 ? y[i] == 0 : y[i] == x[i] * keep;
    d.micro = 2;
    memcpy(y, x, sizeof(ops_real) * n);
    op_resid_dropout(NULL, y, n, p, &d, 1);
    long zeros_other = 0, zeros_same = 0;
    for (size_t i = 0; i < n; i++) { zeros_other += y[i] == 0; zeros_same += x[i] == 0; }
    report(again && zeros_other != zeros_same, "resid dropout: the same mask on a second call, another per forward",
           NULL);
    free(x); free(y);
}

static void test_keys(void) {
    StudyRunConfig a, b;
    char err[256] = "";
    study_run_config_defaults(&a);
    b = a;
    int set = !study_run_config_set(&b, "--attn-dropout", "100", err, sizeof err) && b.model.attn.attn_dropout == 100;
    char *ca = study_run_config_canonical(&a, 1), *cb = study_run_config_canonical(&b, 1);
    int ids = study_run_config_identity(&a, 1) != study_run_config_identity(&b, 1);
    report(set && ids && !strstr(ca, "attn_dropout") && strstr(cb, "\"attn_dropout\": 100"),
           "study key attn_dropout: set per mille, in config and identity, out of both at 0", cb);
    free(ca); free(cb);
    StudyRunConfig c = a;
    int refused = study_run_config_set(&c, "attn_dropout", "1000", err, sizeof err) != 0 && strstr(err, "attn_dropout");
    report(refused, "study key attn_dropout 1000 refused, naming it", err);
}

/* generation runs without dropout: prefill then a decode step of a model with attn_dropout equal
   those of the same weights without it, bit for bit */
static void test_generation(void) {
    AttnConfig c = {0}, c0;
    char err[256] = "";
    c.d_model = 32; c.n_heads = 4; c.n_kv_heads = 2; c.attn_dropout = 300;
    c0 = c;
    c0.attn_dropout = 0;
    int ok = !attn_resolve(&c, err, sizeof err) && !attn_resolve(&c0, err, sizeof err);
    size_t np = attn_param_count(&c);
    const int B = 2, T = 9;
    ops_real *w = rnd(np, 0.2), *x = rnd((size_t)B * (T + 1) * 32, 1), *o = zeros((size_t)B * T * 32),
             *o0 = zeros((size_t)B * T * 32), *s = zeros((size_t)B * 32), *s0 = zeros((size_t)B * 32);
    AttnCache k, k0;
    ok = ok && !attn_decode_init(&k, &c, B, T + 1, err, sizeof err) && !attn_decode_init(&k0, &c0, B, T + 1, err, sizeof err);
    ok = ok && !attn_decode_prefill(&k, w, x, o, T, err, sizeof err) && !attn_decode_prefill(&k0, w, x, o0, T, err, sizeof err);
    k.pos = k0.pos = T;
    ok = ok && !attn_decode_step(&k, w, x + (size_t)B * T * 32, s, err, sizeof err) &&
         !attn_decode_step(&k0, w, x + (size_t)B * T * 32, s0, err, sizeof err);
    ok = ok && !memcmp(o, o0, sizeof(ops_real) * B * T * 32) && !memcmp(s, s0, sizeof(ops_real) * B * 32);
    report(ok, "attn_dropout off in generation: prefill and a step = those without it", err);
    attn_decode_free(&k); attn_decode_free(&k0);
    free(w); free(x); free(o); free(o0); free(s); free(s0);
}

int main(void) {
    OpsPattern dense = {0, 0, 0, 0, 0}, lg = {6, 3, 0, 0, 0};
    test_attention(&dense, "causal");
    test_attention(&lg, "local+global W=6 G=3");
    test_resid();
    test_keys();
    test_generation();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
