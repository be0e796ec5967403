/* gpu_attn_check.c - the flash attention kernels (attn/dense.cu.h) against
   ops.h's CPU reference in double precision, then timings.

   Build (device machine):
     cc -O2 -fopenmp -I. tests/gpu_attn_check.c -I/usr/local/cuda/include \
        -L/usr/local/cuda/lib64 -lnvrtc -lcublasLt -lcublas -ldl -lm -o /tmp/gpu_attn_check
   Run:  /tmp/gpu_attn_check [--no-timing | --timing-only | --timing-table | --repro-only | --dropout-only
                               | --compile-only] [--wide-only]
         (--timing-table: the main timing table alone, every path by head width;
          --wide-only: only the head widths other than 64 that attn_wgmma=3 takes to the Hopper
          kernels (32..128), window and pattern cases, no dropout or repro; with --timing-table
          the table's rows at widths other than 64;
          --dropout-only: the attn_dropout cases, then the bit-reproducibility checks)
     --compile-only  no GPU: NVRTC-compile every specialization for sm_80 and sm_90

   Each case draws fresh random bf16 inputs, poisons every output with NaN, runs
   forward and backward on the GPU and compares with op_attention_forward/backward
   (gpu == NULL) computed in double on the same bf16-rounded inputs:
   relative L2 error <= 1e-2 for out, dq, dk, dv; max |lse - ref| <= 1e-4.
   Every case runs the mma.sync kernels (tuning attn_wgmma variant 0) with the fixed-order dQ
   (Gpu.nondeterministic 0, "det") and with the order-dependent atomics ("nd"); on a compute
   capability 9.0 device every hd 64 case and timing also runs the Hopper wgmma kernels (=3),
   det and with each of the backward's order-dependent dQ reductions (tuning attn_wbwd_dq=
   0..4, which only apply to nd), and every other width from 32 to 128 runs them det and nd
   with attn_wbwd_dq=3; the reference is computed once.
   Bit-reproducibility (after the reference cases; also with --repro-only): large shapes
   (causal GQA T 2048, window, a sparse pattern, hd 128 and hd 32, on mma.sync and on Hopper
   (det), the selection mask on Hopper) run forward once and backward
   three times per path: "det" paths must give bitwise identical dq, dk, dv every time
   (FAIL otherwise); "nd" paths print whether dq moved (information: it usually does, which
   shows the comparison can see a moving result). The timing then prints, per shape, the
   backward in ms with nd and det dQ side by side and det's cost in percent.
   Sparse patterns (ops.h OpsPattern: local+global, strided, dilated, combined; the list
   ATTN_CHECK_PATTERNS of attn/dense.cu.h, which the NVRTC check compiles) run the same
   way through gpu_attention_pattern_forward/backward against op_attention_pattern_*, with
   the same bounds; their T are not multiples of the tiles. Before any GPU work (also with
   --compile-only) the host's reduction of a pattern to kernel parameters is checked to
   keep the mask. The timing ends with a pattern table at T = 2048, 8192, 16384 (B*T =
   16384, H 16, hd 64): fwd and fwd+bwd ms, their ratio to dense causal, the fraction of
   dense causal's tiles each pass visits, and the fraction of causal (t, s) pairs seen.
   Head widths: every case list holds hd 32, 64, 128 and the padded or split widths 40, 72,
   96, 136, 192, 256 (attn/dense.cu.h HEAD WIDTHS), window and pattern cases among them.
   attn_dropout (run_dropout_case): forward and backward vs op_attention_dropout_* on the same
   stream (hd 32, 64, 128, padded 72 and split 192, GQA, a window, a pattern; the Hopper setting
   falls back to mma.sync) within the same bounds, and the mask bit for bit against ops_drop_bits.
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <math.h>

/* the CPU reference in double, with no CUDA path (this file drives the GPU itself) */
#define ABLATE_REAL double
#undef ABLATE_CUDA /* the make rule's -DABLATE_CUDA: back on below, for gpu.h */
#define OPS_IMPLEMENTATION
#include "ops.h"
#undef ABLATE_NO_CUDA
#define ABLATE_CUDA

#define GPU_IMPLEMENTATION
#include "gpu.h"
#include "attn/dense.cu.h"

#include "gpu_test.h"

typedef struct { int B, T, H, KV, hd, window; } Case;

static int n_pass, n_fail;

static void check(const char *what, const Case *c, double err, double tol) {
    int ok = err >= 0 && err <= tol;
    printf("  %-4s %s err %.3e (tol %.0e)\n", what, ok ? "ok  " : "FAIL", err, tol);
    if (ok) n_pass++; else n_fail++;
    (void)c;
}

/* the kernel paths: Gpu.tuning's attn_wgmma and attn_wbwd_dq variants ("" = the default), and
   Gpu.nondeterministic ("1": the order-dependent dQ atomics, "0": the fixed-order dQ).
   The first two run everywhere (mma.sync), the rest on Hopper with hd 64; at the other widths
   (multiples of 8 from 32 to 128) the first four (case_paths), whose dQ variants 2 (fixed
   order) and 3 are the two the Hopper backward takes there. */
static const char *paths[][3] = {{"0", "", "0"},  {"0", "", "1"},  {"3", "", "0"}, {"3", "3", "1"},
                                 {"3", "1", "1"}, {"3", "2", "1"}, {"3", "0", "1"}, {"3", "4", "1"}};
#define NPATHS_MMA 2
/* the paths a case of head dim hd runs: 2 and 3 (attn_wgmma=3) take the Hopper kernels there */
static int case_paths(Gpu *g, int hd) {
    const int saved = g->tuning.attn_wgmma; /* the widths attn_wgmma=3 takes to the Hopper kernels */
    g->tuning.attn_wgmma = GPU_TUNE_VARIANT(3);
    const int hopper = gpu_attention_wgmma_passes(g, hd) == 3;
    g->tuning.attn_wgmma = saved;
    if (!hopper) return NPATHS_MMA;
    return hd == 64 ? (int)(sizeof paths / sizeof paths[0]) : 4;
}
/* a tuning field from a variant number in text ("": 0, the default) */
static int tune_variant(const char *s) { return *s ? GPU_TUNE_VARIANT(atoi(s)) : 0; }
static void set_path(Gpu *g, int p) {
    g->tuning.attn_wgmma = tune_variant(paths[p][0]);
    g->tuning.attn_wbwd_dq = tune_variant(paths[p][1]);
    g->nondeterministic = atoi(paths[p][2]);
}
static const char *path_name(int p) { return paths[p][2][0] == '1' ? "nd" : "det"; }

/* P == NULL: the window API (gpu_attention_forward with c->window); else the pattern API */
static void run_case(Gpu *g, const Case *c, const OpsPattern *P, int npaths) {
    int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd, W = c->window;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    uint16_t *qb, *kb, *vb, *gb;
    double *q, *k, *v, *dout;
    rand_bf16(nq, 1.5, &qb, &q); /* a wider q makes the softmax peakier than uniform */
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);

    /* reference */
    double *out = malloc(nq * 8), *lse = malloc(nl * 8), *dq = malloc(nq * 8), *dk = malloc(nk * 8),
           *dv = malloc(nk * 8);
    if (P) {
        op_attention_pattern_forward(NULL, out, lse, q, k, v, B, T, H, KV, hd, P);
        op_attention_pattern_backward(NULL, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, P);
    } else {
        op_attention_forward(NULL, out, lse, q, k, v, B, T, H, KV, hd, W);
        op_attention_backward(NULL, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, W);
    }

    for (int p = 0; p < npaths; p++) {
    set_path(g, p);
    printf("[attn_wgmma=%s attn_wbwd_dq=%s %s] case B=%d T=%d H=%d KV=%d hd=%d window=%d",
           paths[p][0], paths[p][1], path_name(p), B, T, H, KV, hd, P ? P->window : W);
    if (P) printf(" global=%d stride=%d dilation=%d block=%d", P->global, P->stride, P->dilation, P->block);
    printf("\n");
    /* GPU */
    void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2),
         *d_v = dev_upload(g, vb, nk * 2), *d_do = dev_upload(g, gb, nq * 2);
    void *d_o = dev_poisoned(g, nq * 2), *d_dq = dev_poisoned(g, nq * 2), *d_dk = dev_poisoned(g, nk * 2),
         *d_dv = dev_poisoned(g, nk * 2);
    float *d_lse = dev_poisoned(g, nl * 4);
    if (P) {
        gpu_attention_pattern_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, P);
        gpu_attention_pattern_backward(g, d_dq, d_dk, d_dv, d_do, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, P);
    } else {
        gpu_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, W);
        gpu_attention_backward(g, d_dq, d_dk, d_dv, d_do, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, W);
    }
    gpu_sync(g);

    check("out", c, rel_err(g, d_o, 1, out, nq), 1e-2);
    {
        float *hl = malloc(nl * 4);
        gpu_download(g, hl, d_lse, nl * 4);
        double mx = 0;
        for (size_t i = 0; i < nl; i++) {
            double e = fabs((double)hl[i] - lse[i]);
            if (!(e <= mx)) mx = e; /* NaN sticks */
        }
        free(hl);
        check("lse", c, isfinite(mx) ? mx : -1, 1e-4);
    }
    check("dq", c, rel_err(g, d_dq, 1, dq, nq), 1e-2);
    check("dk", c, rel_err(g, d_dk, 1, dk, nk), 1e-2);
    check("dv", c, rel_err(g, d_dv, 1, dv, nk), 1e-2);

    /* a second forward must give the same bits (a moving result would be a race) */
    {
        uint16_t *a = malloc(nq * 2), *b = malloc(nq * 2);
        gpu_download(g, a, d_o, nq * 2);
        gpu_attention_pattern_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, P ? P : &(OpsPattern){W, 0, 0, 0, 0});
        gpu_download(g, b, d_o, nq * 2);
        check("rep", c, memcmp(a, b, nq * 2) ? 1.0 : 0.0, 0);
        free(a); free(b);
    }

    gpu_free(g, d_q); gpu_free(g, d_k); gpu_free(g, d_v); gpu_free(g, d_do); gpu_free(g, d_o);
    gpu_free(g, d_dq); gpu_free(g, d_dk); gpu_free(g, d_dv); gpu_free(g, d_lse);
    }
    free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
    free(out); free(lse); free(dq); free(dk); free(dv);
}

/* attn_dropout (gpu_attention_dropout_*, the mma.sync kernels on every device) against
   op_attention_dropout_* on the same stream: the CPU's {step, micro} ints, the GPU's the same
   values in device memory. Paths: det and nd, and on Hopper the wgmma setting (3), which must
   fall back to the mma.sync kernels. Bounds as run_case. Then the mask itself, exactly: with
   q = 0 (P uniform, 1/(t+1)) and V the identity (T = hd, v[s] = e_s) out[t][s] is 0 where the
   mask drops (t, s) and scale/(t+1) where it keeps it: every (b, h, t, s <= t) compared with
   ops_drop_bits. */
static void run_dropout_case(Gpu *g, const Case *c, const OpsPattern *P, int hopper) {
    int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd;
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    OpsPattern dense = {c->window, 0, 0, 0, 0};
    if (!P) P = &dense;
    OpsDropout d = {ops_drop_thresh(0.2), 1.25f, 1234567, 3, 11, 2, NULL};
    int ctr[2] = {d.step, d.micro};
    uint16_t *qb, *kb, *vb, *gb;
    double *q, *k, *v, *dout;
    rand_bf16(nq, 1.5, &qb, &q);
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);
    double *out = malloc(nq * 8), *lse = malloc(nl * 8), *dq = malloc(nq * 8), *dk = malloc(nk * 8),
           *dv = malloc(nk * 8);
    op_attention_dropout_forward(NULL, out, lse, q, k, v, B, T, H, KV, hd, P, &d);
    op_attention_dropout_backward(NULL, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, P, &d);
    for (int p = 0; p < (hopper && hd == 64 ? 3 : 2); p++) {
        set_path(g, p);
        printf("[dropout 0.2 attn_wgmma=%s %s] case B=%d T=%d H=%d KV=%d hd=%d window=%d global=%d stride=%d "
               "dilation=%d\n", paths[p][0], path_name(p), B, T, H, KV, hd, P->window, P->global, P->stride, P->dilation);
        void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2), *d_v = dev_upload(g, vb, nk * 2),
             *d_do = dev_upload(g, gb, nq * 2), *d_ctr = dev_upload(g, ctr, sizeof ctr);
        void *d_o = dev_poisoned(g, nq * 2), *d_dq = dev_poisoned(g, nq * 2), *d_dk = dev_poisoned(g, nk * 2),
             *d_dv = dev_poisoned(g, nk * 2);
        float *d_lse = dev_poisoned(g, nl * 4);
        OpsDropout gd = d;
        gd.step = gd.micro = -1; /* the kernels must read the device's */
        gd.d_ctr = d_ctr;
        gpu_attention_dropout_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, P, &gd);
        gpu_attention_dropout_backward(g, d_dq, d_dk, d_dv, d_do, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, P, &gd);
        gpu_sync(g);
        check("out", c, rel_err(g, d_o, 1, out, nq), 1e-2);
        check("dq", c, rel_err(g, d_dq, 1, dq, nq), 1e-2);
        check("dk", c, rel_err(g, d_dk, 1, dk, nk), 1e-2);
        check("dv", c, rel_err(g, d_dv, 1, dv, nk), 1e-2);
        gpu_free(g, d_q); gpu_free(g, d_k); gpu_free(g, d_v); gpu_free(g, d_do); gpu_free(g, d_ctr);
        gpu_free(g, d_o); gpu_free(g, d_dq); gpu_free(g, d_dk); gpu_free(g, d_dv); gpu_free(g, d_lse);
    }
    free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
    free(out); free(lse); free(dq); free(dk); free(dv);
    /* the mask, exactly (T = hd, causal, MHA) */
    {
        int Tm = hd;
        size_t n = (size_t)B * Tm * H * hd;
        uint16_t *zb = xmalloc(n * 2), *vi = xmalloc(n * 2), *o = xmalloc(n * 2);
        memset(zb, 0, n * 2);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < Tm; t++)
                for (int h = 0; h < H; h++)
                    for (int i = 0; i < hd; i++) vi[(((size_t)b * Tm + t) * H + h) * hd + i] = f2bf(i == t ? 1.0 : 0.0);
        set_path(g, 0);
        void *d_z = dev_upload(g, zb, n * 2), *d_vi = dev_upload(g, vi, n * 2), *d_ctr = dev_upload(g, ctr, sizeof ctr);
        void *d_o = dev_poisoned(g, n * 2);
        float *d_lse = dev_poisoned(g, (size_t)B * H * Tm * 4);
        OpsDropout gd = d;
        gd.d_ctr = d_ctr;
        OpsPattern causal = {0, 0, 0, 0, 0};
        gpu_attention_dropout_forward(g, d_o, d_lse, d_z, d_z, d_vi, B, Tm, H, H, hd, &causal, &gd);
        gpu_download(g, o, d_o, n * 2);
        long bad = 0, kept = 0, all = 0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                unsigned long long key = ops_drop_key(d.seed, d.step, d.micro, d.layer, b, h);
                for (int t = 0; t < Tm; t++)
                    for (int s = 0; s < hd; s++) {
                        double x = bf2d(o[(((size_t)b * Tm + t) * H + h) * hd + s]);
                        int keep = s <= t && ops_drop_bits(key, t, s) >= d.thresh;
                        double want = keep ? 1.25 / (t + 1) : 0;
                        bad += !(fabs(x - want) <= 1e-2 * want); /* NaN counts */
                        kept += keep;
                        all += s <= t;
                    }
            }
        printf("[dropout mask] B=%d T=%d H=%d hd=%d: %ld of %ld causal entries kept, %ld outputs off the CPU's mask\n",
               B, Tm, H, hd, kept, all, bad);
        check("mask", c, (double)bad, 0);
        gpu_free(g, d_z); gpu_free(g, d_vi); gpu_free(g, d_ctr); gpu_free(g, d_o); gpu_free(g, d_lse);
        free(zb); free(vi); free(o);
    }
}

/* a random selection bitmask for gpu_attention_select_*: row t keeps key t and each earlier
   key with probability 1/4 (a top-k's scattered selection) */
static unsigned *rand_selmask(int B, int T) {
    const int W = gpu_attention_select_words(T);
    unsigned *m = xmalloc((size_t)B * T * W * 4);
    memset(m, 0, (size_t)B * T * W * 4);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            unsigned *row = m + ((size_t)b * T + t) * W;
            for (int s = 0; s <= t; s++)
                if (s == t || urand() < 0.25) row[s / 32] |= 1u << (s % 32);
        }
    return m;
}

/* Bit-reproducibility of the backward on path p: forward once, backward three times into
   NaN-poisoned outputs; a det path must give the same dq, dk, dv bits every time. An nd path
   only reports whether dq moved. P: a sparse pattern (NULL: c->window); sel: the selection
   bitmask kernels instead (Hopper). */
static void repro_case(Gpu *g, const Case *c, const OpsPattern *P, int sel, int p) {
    const int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd;
    const OpsPattern Pw = P ? *P : (OpsPattern){c->window, 0, 0, 0, 0};
    size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    uint16_t *qb, *kb, *vb, *gb;
    double *q, *k, *v, *dout;
    rand_bf16(nq, 1.5, &qb, &q);
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);
    set_path(g, p);
    printf("[attn_wgmma=%s %s] repro B=%d T=%d H=%d KV=%d hd=%d", paths[p][0], path_name(p), B, T, H, KV, hd);
    if (sel) printf(" selection mask\n");
    else printf(" window=%d global=%d stride=%d dilation=%d block=%d\n", Pw.window, Pw.global, Pw.stride,
                Pw.dilation, Pw.block);
    void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2), *d_v = dev_upload(g, vb, nk * 2),
         *d_do = dev_upload(g, gb, nq * 2), *d_o = gpu_alloc(g, nq * 2), *d_mask = NULL;
    float *d_lse = gpu_alloc(g, nl * 4);
    if (sel) {
        unsigned *m = rand_selmask(B, T);
        d_mask = dev_upload(g, m, (size_t)B * T * gpu_attention_select_words(T) * 4);
        free(m);
        gpu_attention_select_forward(g, d_o, d_lse, d_q, d_k, d_v, d_mask, B, T, H, KV, hd);
    } else {
        gpu_attention_pattern_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, &Pw);
    }
    size_t n[3] = {nq, nk, nk};
    uint16_t *first[3], *now = xmalloc(nq * 2);
    int moved[3] = {0, 0, 0};
    for (int r = 0; r < 3; r++) {
        void *d[3] = {dev_poisoned(g, nq * 2), dev_poisoned(g, nk * 2), dev_poisoned(g, nk * 2)};
        if (sel)
            gpu_attention_select_backward(g, d[0], d[1], d[2], d_do, d_o, d_lse, d_q, d_k, d_v, d_mask, B, T, H, KV, hd);
        else
            gpu_attention_pattern_backward(g, d[0], d[1], d[2], d_do, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, &Pw);
        for (int i = 0; i < 3; i++) {
            uint16_t *h = r == 0 ? (first[i] = xmalloc(n[i] * 2)) : now;
            gpu_download(g, h, d[i], n[i] * 2);
            if (r > 0) moved[i] |= memcmp(first[i], now, n[i] * 2) != 0;
            gpu_free(g, d[i]);
        }
    }
    /* the first run is finite (a NaN left from the poison would also repeat) */
    int finite = 1;
    for (int j = 0; j < 3; j++)
        for (size_t i = 0; i < n[j]; i++) finite &= isfinite(bf2d(first[j][i])) != 0;
    static const char *names[3] = {"dq", "dk", "dv"};
    if (paths[p][2][0] == '1') {
        printf("  info nd: dq %s, dk %s, dv %s over 3 backward runs\n", moved[0] ? "moved" : "same",
               moved[1] ? "moved" : "same", moved[2] ? "moved" : "same");
    } else {
        for (int i = 0; i < 3; i++) {
            printf("  %-4s %s bitwise identical over 3 backward runs\n", names[i], moved[i] ? "FAIL" : "ok  ");
            if (moved[i]) n_fail++; else n_pass++;
        }
        printf("  all  %s finite (dq, dk, dv)\n", finite ? "ok  " : "FAIL");
        if (finite) n_pass++; else n_fail++;
    }
    for (int i = 0; i < 3; i++) free(first[i]);
    free(now);
    gpu_free(g, d_q); gpu_free(g, d_k); gpu_free(g, d_v); gpu_free(g, d_do); gpu_free(g, d_o); gpu_free(g, d_lse);
    if (d_mask) gpu_free(g, d_mask);
    free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
}

/* the shapes of the bit-reproducibility check (sel: the selection mask, Hopper only) */
static const struct { Case c; OpsPattern p; int pattern, sel; const char *name; } repro_cases[] = {
    {{4, 2048, 9, 3, 64, 0}, {0}, 0, 0, "causal GQA"},
    {{4, 2048, 16, 16, 64, 256}, {0}, 0, 0, "window 256"},
    {{4, 2048, 9, 3, 64, 256}, {256, 64, 512, 2, 0}, 1, 0, "pattern: window+global+strided+dilated"},
    {{4, 2048, 8, 8, 128, 0}, {0}, 0, 0, "hd 128 (mma.sync)"},
    {{4, 1024, 6, 2, 32, 64}, {0}, 0, 0, "hd 32 window (mma.sync)"},
    {{4, 1024, 8, 4, 72, 0}, {0}, 0, 0, "hd 72 (padded to 80, mma.sync)"},
    {{2, 1024, 4, 2, 256, 0}, {0}, 0, 0, "hd 256 (dK/dV column split, mma.sync)"},
    {{4, 2048, 9, 3, 64, 0}, {0}, 0, 1, "selection mask"},
};
static void run_repro(Gpu *g, int hopper) {
    printf("\nbit-reproducibility of the backward (det must repeat bitwise; nd for information)\n");
    for (size_t i = 0; i < sizeof repro_cases / sizeof repro_cases[0]; i++) {
        const Case *c = &repro_cases[i].c;
        if (repro_cases[i].sel && !(hopper && gpu_attention_select_supported(g, c->hd))) continue;
        printf("-- %s\n", repro_cases[i].name);
        const OpsPattern *P = repro_cases[i].pattern ? &repro_cases[i].p : NULL;
        if (repro_cases[i].sel) { /* the selection kernels are the Hopper ones whatever the path */
            repro_case(g, c, NULL, 1, 2);
            repro_case(g, c, NULL, 1, 5);
            continue;
        }
        for (int p = 0; p < NPATHS_MMA; p++) repro_case(g, c, P, 0, p);
        if (hopper && c->hd == 64) { repro_case(g, c, P, 0, 2); repro_case(g, c, P, 0, 5); }
        else if (case_paths(g, c->hd) > NPATHS_MMA) repro_case(g, c, P, 0, 2); /* the 64-column halves */
    }
}

/* median milliseconds of `reps` timed runs of fwd (bwd = 0) or fwd+bwd (bwd = 1) */
static float time_ms(Gpu *g, const Case *c, const OpsPattern *pat, int bwd, int reps, void **bufs) {
    const OpsPattern P = pat ? *pat : (OpsPattern){c->window, 0, 0, 0, 0};
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float *ms = malloc(sizeof(float) * reps);
    for (int r = -3; r < reps; r++) { /* 3 warm-ups */
        CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
        gpu_attention_pattern_forward(g, bufs[4], bufs[5], bufs[0], bufs[1], bufs[2], c->B, c->T, c->H, c->KV,
                                      c->hd, &P);
        if (bwd)
            gpu_attention_pattern_backward(g, bufs[6], bufs[7], bufs[8], bufs[3], bufs[4], bufs[5], bufs[0],
                                           bufs[1], bufs[2], c->B, c->T, c->H, c->KV, c->hd, &P);
        CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
        CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
        if (r >= 0) CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms[r], e0, e1));
    }
    qsort(ms, reps, sizeof(float), cmp_float);
    float med = ms[reps / 2];
    free(ms);
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    return med;
}

/* device buffers for timing case c: q k v dout out lse dq dk dv (random q, k, v, dout) */
static void timing_bufs(Gpu *g, const Case *c, void **bufs) {
    size_t nq = (size_t)c->B * c->T * c->H * c->hd, nk = (size_t)c->B * c->T * c->KV * c->hd;
    size_t nl = (size_t)c->B * c->H * c->T;
    uint16_t *qb, *kb, *vb, *gb;
    double *q, *k, *v, *dout;
    rand_bf16(nq, 1.5, &qb, &q);
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);
    void *b[9] = {dev_upload(g, qb, nq * 2), dev_upload(g, kb, nk * 2), dev_upload(g, vb, nk * 2),
                  dev_upload(g, gb, nq * 2), gpu_alloc(g, nq * 2), gpu_alloc(g, nl * 4),
                  gpu_alloc(g, nq * 2), gpu_alloc(g, nk * 2), gpu_alloc(g, nk * 2)};
    memcpy(bufs, b, sizeof b);
    free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
}

static void run_timing(Gpu *g, const Case *c) {
    void *bufs[9];
    timing_bufs(g, c, bufs);
    double flops = 4.0 * c->B * c->H * (double)c->T * c->T * c->hd / 2; /* causal half */
    if (c->window > 0 && c->window < c->T) /* a window sees about W keys per query */
        flops = 4.0 * c->B * c->H * (double)c->T * c->window * c->hd;
    int reps = c->T >= 8192 ? 20 : 50;
    float f = time_ms(g, c, NULL, 0, reps, bufs), fb = time_ms(g, c, NULL, 1, reps, bufs);
    printf("%5d %3d %3d %3d %4d %6d | %9.3f %8.1f | %9.3f %8.1f | %8.1f\n", c->T, c->B, c->H, c->KV, c->hd,
           c->window, f, flops / (f * 1e-3) / 1e12, fb, 3.5 * flops / (fb * 1e-3) / 1e12,
           2.5 * flops / ((fb - f) * 1e-3) / 1e12);
    fflush(stdout);
    for (int i = 0; i < 9; i++) gpu_free(g, bufs[i]);
}

/* median ms of the selection-mask forward (bwd = 0) or forward + backward (1) */
static float time_sel_ms(Gpu *g, const Case *c, int bwd, int reps, void **bufs, const unsigned *mask) {
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float *ms = xmalloc(sizeof(float) * reps);
    for (int r = -3; r < reps; r++) {
        CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
        gpu_attention_select_forward(g, bufs[4], bufs[5], bufs[0], bufs[1], bufs[2], mask, c->B, c->T, c->H, c->KV, c->hd);
        if (bwd)
            gpu_attention_select_backward(g, bufs[6], bufs[7], bufs[8], bufs[3], bufs[4], bufs[5], bufs[0], bufs[1],
                                          bufs[2], mask, c->B, c->T, c->H, c->KV, c->hd);
        CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
        CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
        if (r >= 0) CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms[r], e0, e1));
    }
    qsort(ms, reps, sizeof(float), cmp_float);
    float med = ms[reps / 2];
    free(ms);
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    return med;
}

/* what the fixed-order dQ costs: per shape and kernel family, backward ms (f+b - fwd, medians)
   with the order-dependent dQ (nd: today's fastest, attn_wbwd_dq default) and with the
   fixed order (det), and det's cost in percent of nd */
static void det_cost(Gpu *g, int hopper) {
    static const struct { Case c; OpsPattern p; int pattern, sel; const char *name; } cs[] = {
        {{16, 2048, 9, 3, 64, 0}, {0}, 0, 0, "135M: causal GQA 9/3"},
        {{8, 2048, 16, 16, 64, 0}, {0}, 0, 0, "causal MHA"},
        {{2, 8192, 16, 16, 64, 0}, {0}, 0, 0, "causal MHA T 8192"},
        {{32, 512, 16, 16, 64, 0}, {0}, 0, 0, "causal MHA T 512"},
        {{8, 2048, 16, 16, 64, 256}, {0}, 0, 0, "window 256"},
        {{8, 2048, 16, 16, 64, 512}, {512, 128, 0, 0, 0}, 1, 0, "local+global W512 G128"},
        {{8, 2048, 16, 16, 64, 512}, {512, 0, 0, 4, 0}, 1, 0, "dilated W512 R4"},
        {{8, 2048, 8, 8, 128, 0}, {0}, 0, 0, "hd 128"},
        {{16, 2048, 9, 3, 64, 0}, {0}, 0, 1, "selection mask (p 1/4)"},
    };
    printf("\ncost of the fixed-order dQ: backward ms (f+b - fwd, medians), nd -> det\n");
    printf("%-26s %5s %3s %3s %3s %4s | %-7s | %8s %8s %7s\n", "shape", "T", "B", "H", "KV", "hd", "kernels",
           "nd ms", "det ms", "cost");
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        const Case *c = &cs[i].c;
        if (cs[i].sel && !(hopper && gpu_attention_select_supported(g, c->hd))) continue;
        void *bufs[9];
        timing_bufs(g, c, bufs);
        void *d_mask = NULL;
        if (cs[i].sel) {
            unsigned *m = rand_selmask(c->B, c->T);
            d_mask = dev_upload(g, m, (size_t)c->B * c->T * gpu_attention_select_words(c->T) * 4);
            free(m);
        }
        const int reps = c->T >= 8192 ? 20 : 50;
        for (int wg = (hopper && c->hd == 64 ? 1 : 0); wg >= 0; wg--) {
            if (cs[i].sel && !wg) break;
            float bw[2];
            for (int det = 0; det < 2; det++) {
                set_path(g, wg ? (det ? 2 : 5) : (det ? 0 : 1));
                g->tuning.attn_wbwd_dq = 0; /* nd: the default order-dependent dQ */
                const OpsPattern *P = cs[i].pattern ? &cs[i].p : NULL;
                float f = cs[i].sel ? time_sel_ms(g, c, 0, reps, bufs, d_mask) : time_ms(g, c, P, 0, reps, bufs);
                float fb = cs[i].sel ? time_sel_ms(g, c, 1, reps, bufs, d_mask) : time_ms(g, c, P, 1, reps, bufs);
                bw[det] = fb - f;
            }
            printf("%-26s %5d %3d %3d %3d %4d | %-7s | %8.3f %8.3f %+6.1f%%\n", cs[i].name, c->T, c->B, c->H, c->KV,
                   c->hd, wg ? "wgmma" : "mma", bw[0], bw[1], 100.0 * (bw[1] - bw[0]) / bw[0]);
        }
        for (int j = 0; j < 9; j++) gpu_free(g, bufs[j]);
        if (d_mask) gpu_free(g, d_mask);
    }
}

/* the pattern table: T 2048, 8192, 16384, B*T = 16384, H 16, hd 64; per pattern fwd and
   fwd+bwd ms (median), their ratio to dense causal's, the fraction of dense causal's tiles
   the forward (128 rows x 64 keys on mma.sync, 128 x 128 on wgmma) and the backward (128
   keys x 64 queries) visit, and the fraction of causal (t, s) pairs the mask keeps */
static void pattern_timing(Gpu *g, int hopper) {
    static const struct { const char *name; OpsPattern p; } pats[] = {
        {"dense causal", {0, 0, 0, 0, 0}},
        {"local W=512", {512, 0, 0, 0, 0}},
        {"local+global W=512 G=128", {512, 128, 0, 0, 0}},
        {"strided W=512 S=1024", {512, 0, 1024, 0, 0}},
        {"dilated W=512 R=4", {512, 0, 0, 4, 0}},
        {"all W=512 G=64 S=2048 R=4", {512, 64, 2048, 4, 0}},
    };
    static const int Ts[] = {2048, 8192, 16384};
    const int npat = (int)(sizeof pats / sizeof pats[0]);
    printf("\nsparse patterns: B*T = 16384, H 16, hd 64; ratios to dense causal at the same T and path;\n"
           "tiles = fraction of dense causal's tiles visited (fwd, bwd); pairs = fraction of causal (t, s) seen;\n"
           "TF/s counts only the seen pairs (fwd 4*B*H*hd*pairs, f+b 3.5x that)\n");
    printf("%-5s %5s %-26s | %8s %6s %6s | %8s %6s %6s | %6s %6s | %6s\n", "wgmma", "T", "pattern", "fwd ms", "ratio",
           "TF/s", "f+b ms", "ratio", "TF/s", "fwd t", "bwd t", "pairs");
    for (int ti = 0; ti < 3; ti++) {
        const int T = Ts[ti];
        Case c = {16384 / T, T, 16, 16, 64, 0};
        void *bufs[9];
        timing_bufs(g, &c, bufs);
        double pairs[8], flops[8];
        for (int i = 0; i < npat; i++) {
            double seen = ops_pattern_mean_keys(&pats[i].p, T) * T;
            pairs[i] = seen / (0.5 * T * (T + 1.0));
            flops[i] = 4.0 * c.B * c.H * c.hd * seen;
        }
        for (int path = 0; path < (hopper ? 2 : 1); path++) {
            g->tuning.attn_wgmma = GPU_TUNE_VARIANT(hopper && path == 0 ? 3 : 0);
            g->tuning.attn_wbwd_dq = 0;
            g->nondeterministic = 0; /* the default: the fixed-order dQ */
            const int bn = hopper && path == 0 ? 128 : 64;
            float f0 = 0, fb0 = 0;
            for (int i = 0; i < npat; i++) {
                int reps = T >= 8192 ? 20 : 50;
                float f = time_ms(g, &c, &pats[i].p, 0, reps, bufs), fb = time_ms(g, &c, &pats[i].p, 1, reps, bufs);
                if (i == 0) { f0 = f; fb0 = fb; }
                long fv, fc, bv, bc;
                ops_pattern_tiles(&pats[i].p, T, 128, bn, &fv, &fc);
                ops_pattern_tiles_bwd(&pats[i].p, T, 128, 64, &bv, &bc);
                printf("%-5s %5d %-26s | %8.3f %6.3f %6.1f | %8.3f %6.3f %6.1f | %6.3f %6.3f | %6.3f\n",
                       hopper && path == 0 ? "3" : "0", T, pats[i].name, f, f / f0, flops[i] / (f * 1e9), fb,
                       fb / fb0, 3.5 * flops[i] / (fb * 1e9), (double)fv / fc, (double)bv / bc, pairs[i]);
            }
        }
        for (int i = 0; i < 9; i++) gpu_free(g, bufs[i]);
    }
}

/* the host's reduction of a pattern to kernel parameters (attn_pattern_for_) must keep the
   mask: the kernels' mask (pat_visible of the NVRTC sources, with DSPAN; the plain window
   when the reduction is not sparse) equals the pattern's on every (t, s), and the reduction
   is sparse exactly when ops.h's ops_pattern_kind says the mask is neither dense nor a window */
static int kernel_mask(const AttnPatK *k, int t, int s) {
    int d = t - s;
    if (d < 0) return 0;
    if (!attn_pat_sparse_(k)) return k->window == 0 || d < k->window;
    if (d < k->window || s < k->global) return 1;
    if (k->stride > 0 && s % k->stride >= k->stride - k->block) return 1;
    return k->dilation > 1 && d < k->span && s % (k->dilation * k->block) >= (k->dilation - 1) * k->block;
}
static void check_pattern_reduction(void) {
    static const int Ts[] = {1, 5, 100, 127, 128, 129, 300, 700, 1000};
    static const OpsPattern ps[] = {
        {0, 0, 0, 0, 0}, {16, 0, 0, 0, 0}, {128, 64, 0, 0, 0}, {100, 200, 0, 0, 0}, {100, 1000, 0, 0, 0},
        {256, 0, 512, 0, 0}, {64, 0, 200, 0, 48}, {64, 0, 100, 0, 0}, {64, 0, 129, 0, 0}, {64, 0, 1000, 0, 0},
        {128, 0, 0, 4, 0}, {100, 0, 0, 3, 40}, {300, 0, 0, 4, 0}, {64, 0, 0, 1, 0}, {64, 0, 0, 9, 0},
        {128, 16, 384, 2, 0}, {5, 3, 7, 3, 2}, {1, 0, 0, 2, 1}, {700, 5, 300, 2, 0},
    };
    long bad = 0, n = 0;
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (size_t j = 0; j < sizeof Ts / sizeof Ts[0]; j++) {
            const int T = Ts[j];
            const AttnPatK k = attn_pattern_for_(&ps[i], T);
            for (int t = 0; t < T; t++)
                for (int s = 0; s <= t; s++, n++) bad += ops_pattern_visible(&ps[i], t, s) != kernel_mask(&k, t, s);
            bad += attn_pat_sparse_(&k) != (ops_pattern_kind(&ps[i], T) == 0);
        }
    int ok = bad == 0;
    printf("%s pattern -> kernel parameters keeps the mask: %ld of %ld checks differ\n", ok ? "ok  " : "FAIL", bad, n);
    if (ok) n_pass++; else n_fail++;
}

int main(int argc, char **argv) {
    int timing = 1, checks = 1, dense = 1, repro = 1, table_only = 0, wide_only = 0;
    check_pattern_reduction();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-timing")) timing = 0;
        else if (!strcmp(argv[i], "--timing-only")) checks = repro = 0;
        else if (!strcmp(argv[i], "--timing-table")) checks = repro = 0, table_only = 1;
        else if (!strcmp(argv[i], "--repro-only")) checks = timing = 0;
        else if (!strcmp(argv[i], "--dropout-only")) dense = timing = 0; /* the dropout cases, then repro */
        else if (!strcmp(argv[i], "--wide-only")) wide_only = 1, repro = 0; /* the Hopper kernels at hd != 64 */
        else if (!strcmp(argv[i], "--compile-only")) {
            int f = attn_kernels_compile_check("sm_80") + attn_kernels_compile_check("sm_90");
            printf("compile check: %d failures\n", f);
            return f != 0 || n_fail != 0;
        } else {
            fprintf(stderr, "usage: %s [--no-timing | --timing-only | --timing-table | --repro-only | --dropout-only | --compile-only] [--wide-only]\n", argv[0]);
            return 2;
        }
    }
    Gpu g;
    if (gpu_init(&g, 0) != 0) { fprintf(stderr, "gpu_attn_check: no usable GPU: %s\n", g.err); return 1; }

    static const Case cases[] = {
        {2, 128, 2, 2, 64, 0},    /* MHA, T a multiple of the tiles */
        {1, 257, 9, 3, 64, 0},    /* GQA, tail of 1 */
        {2, 100, 4, 1, 64, 0},    /* MQA */
        {1, 257, 9, 3, 64, 16},   /* GQA, sliding window */
        {2, 100, 2, 2, 64, 16},   /* MHA, window */
        {1, 100, 3, 3, 64, 200},  /* window >= T: full causal */
        {3, 5, 3, 3, 64, 0},      /* tiny T */
        {1, 1000, 3, 3, 64, 16},  /* many skipped tiles */
        {1, 700, 4, 1, 64, 0},    /* MQA, longer: a GQA group of 4 in the backward */
        {1, 700, 9, 3, 64, 0},    /* SmolLM2-like GQA, tail of 60 */
        {2, 257, 4, 1, 64, 100},  /* MQA, window across tiles */
        {1, 1000, 2, 2, 64, 300}, /* MHA, wide window, tail */
        {2, 100, 2, 2, 32, 0},    /* hd 32 */
        {1, 257, 9, 3, 32, 16},
        {1, 257, 2, 2, 128, 0},   /* hd 128 */
        {1, 200, 9, 3, 128, 16},
        /* padded widths (HD < HDP: zero columns in smem; ragged dQ column groups) */
        {2, 100, 2, 2, 40, 0},    /* hd 40 in 48-wide tiles */
        {1, 257, 9, 3, 72, 0},    /* hd 72 (the 576 / 8 heads shape) in 80-wide tiles */
        {1, 300, 8, 2, 72, 64},
        {1, 257, 6, 2, 96, 0},    /* hd 96: unpadded, ragged dQ groups */
        {2, 150, 4, 4, 96, 32},
        {1, 257, 4, 2, 136, 0},   /* hd 136 in 160-wide tiles: the dK/dV column split */
        {1, 257, 6, 3, 192, 16},  /* hd 192: split, unpadded */
        {1, 300, 4, 1, 256, 0},   /* hd 256: split, 4-warp forward */
        {2, 100, 2, 2, 256, 40},
    };
    /* the kernel paths to exercise: the mma.sync kernels, and on sm_90 the wgmma ones */
    int hopper = g.cc_major == 9 && g.cc_minor == 0;
    /* wide_only: a case runs only where its width reaches the Hopper kernels and is not 64 */
#define WIDE_SKIP(hd) (wide_only && ((hd) == 64 || case_paths(&g, (hd)) == NPATHS_MMA))
    for (size_t i = 0; checks && dense && i < sizeof cases / sizeof cases[0]; i++)
        if (!WIDE_SKIP(cases[i].hd)) run_case(&g, &cases[i], NULL, case_paths(&g, cases[i].hd));
    /* the sparse patterns (the specializations the NVRTC check compiles) */
    static const int pcases[][8] = {ATTN_CHECK_PATTERNS};
    for (size_t i = 0; checks && dense && i < sizeof pcases / sizeof pcases[0]; i++) {
        const int *p = pcases[i], group = p[1], KV = group == 1 ? 2 : group == 3 ? 3 : 1;
        Case c = {p[2] <= 700 ? 2 : 1, p[2], group * KV, KV, p[0], p[3]};
        OpsPattern pat = {p[3], p[4], p[5], p[6], p[7]};
        if (!WIDE_SKIP(c.hd)) run_case(&g, &c, &pat, case_paths(&g, c.hd));
    }
    /* patterns that reduce to dense causal or a plain window on the GPU (S <= block, G >= T) */
    static const Case dcases[] = {{1, 300, 2, 2, 64, 64}, {2, 200, 4, 2, 64, 16}, {1, 300, 3, 3, 64, 64},
                                  {1, 500, 2, 2, 64, 64}};
    static const OpsPattern dpats[] = {
        {64, 0, 100, 0, 0}, {16, 200, 0, 0, 0},
        {64, 0, 0, 3, 0}, /* a kept block (256..299) only the window reaches: sparse kernel, window mask */
        {64, 0, 0, 1, 0}, /* dilation 1: the window */
    };
    for (size_t i = 0; checks && dense && !wide_only && i < sizeof dcases / sizeof dcases[0]; i++)
        run_case(&g, &dcases[i], &dpats[i], NPATHS_MMA);
    /* attn_dropout: hd 64 and 128 (and 32, padded 72, split 192), GQA, a window, a sparse pattern */
    static const Case drcases[] = {{2, 257, 9, 3, 64, 0}, {1, 200, 4, 2, 64, 16}, {2, 100, 2, 2, 128, 0},
                                   {1, 257, 9, 3, 128, 16}, {1, 300, 4, 2, 32, 0}, {1, 200, 8, 4, 72, 0},
                                   {1, 150, 4, 2, 192, 16}};
    for (size_t i = 0; checks && !wide_only && i < sizeof drcases / sizeof drcases[0]; i++)
        run_dropout_case(&g, &drcases[i], NULL, hopper);
    if (checks && !wide_only) {
        const int *p = pcases[6]; /* "all at once" */
        Case c = {1, p[2], p[1] * 3, 3, p[0], p[3]};
        OpsPattern pat = {p[3], p[4], p[5], p[6], p[7]};
        run_dropout_case(&g, &c, &pat, hopper);
    }
    if (repro) run_repro(&g, hopper);

    if (timing) {
        printf("\ntiming on the device: median ms; TFLOP/s with fwd = 4*B*H*T*T*hd/2 (causal), "
               "bwd = 2.5 fwd\n");
        printf("%-9s %5s %3s %3s %3s %4s %6s | %9s %8s | %9s %8s | %8s\n", "wg/dq/det", "T", "B", "H", "KV", "hd", "window",
               "fwd ms", "TFLOP/s", "f+b ms", "TFLOP/s", "bwd TF/s");
        static const Case tcases[] = {
            {32, 512, 16, 16, 64, 0}, {8, 2048, 16, 16, 64, 0}, {2, 8192, 16, 16, 64, 0},
            {16, 2048, 9, 3, 64, 0},  /* SmolLM2-135M-like GQA */
            {8, 2048, 16, 16, 64, 256}, /* sliding window: FLOPs counted as 4*B*H*T*W*hd */
            {8, 2048, 8, 8, 128, 0},
            /* the padded widths: TFLOP/s on the real hd, so the padding shows as cost */
            {8, 2048, 8, 4, 72, 0}, {8, 2048, 8, 8, 96, 0}, {8, 2048, 8, 8, 192, 0}, {8, 2048, 8, 8, 256, 0},
            {16, 2048, 16, 16, 32, 0}, {16, 2048, 16, 16, 40, 0}, {16, 2048, 16, 16, 48, 0}, {16, 2048, 16, 16, 56, 0},
            {8, 2048, 8, 8, 80, 0}, {8, 2048, 8, 8, 112, 0}, {2, 8192, 16, 16, 128, 0},
        };
        for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) {
            if (wide_only && tcases[i].hd == 64) continue;
            for (int p = 0; p < case_paths(&g, tcases[i].hd); p++) {
                set_path(&g, p);
                char tag[32];
                snprintf(tag, sizeof tag, "%s/%s/%s", paths[p][0], paths[p][1][0] ? paths[p][1] : "-", path_name(p));
                printf("%-9s ", tag);
                run_timing(&g, &tcases[i]);
            }
        }
    }
    if (timing && !table_only) det_cost(&g, hopper);
    if (timing && !table_only) pattern_timing(&g, hopper);
    gpu_attention_release(&g);
    gpu_free_all(&g);
    printf("\n%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
