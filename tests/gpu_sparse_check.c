/* gpu_sparse_check.c - the DSA kernels (attn/dsa.cu.h) against attn/dsa.h's CPU
   reference in double precision, then timings against dense causal flash attention.

   Build (device machine):  make tests/gpu_sparse_check   (or:)
     cc -O2 -fopenmp -I. tests/gpu_sparse_check.c -I/usr/local/cuda/include \
        -L/usr/local/cuda/lib64 -lnvrtc -lcublasLt -lcublas -ldl -lm -o /tmp/gpu_sparse_check
   Run:  tests/gpu_sparse_check [--no-timing | --timing-only | --repeat-only | --compile-only]
     --compile-only  no GPU: NVRTC-compile every specialization for sm_80 and sm_90

   Method: inputs are random bf16 values; the reference runs in double on exactly those
   values (gpu == NULL ops). Outputs written (=) are poisoned with NaN first. Bounds:
     indexer scores (fp32 from bf16 or fp32 inputs)   rel L2 1e-5, and -inf for s > t
     top-k                                            EXACT: the CPU select run on the
         GPU's own scores must give the same idx (same values, same tie rule); the fused
         select must equal scores + top-k bit for bit; against the double-precision
         scores, >= 99% of the selected positions agree (fp32 rounding at the margin)
     sparse attention out, dq, dk, dv (bf16)          rel L2 1e-2
     lse                                              max abs 2e-4
     p (psum of the backward, probs kernel; fp32)     rel L2 1e-3
     KL loss (fp32)                                   rel L2 1e-3
     dqI, dkI, dw (bf16)                              rel L2 1e-2
     sparse with k >= T vs the dense flash kernel     rel L2 1e-2 (out), 2e-4 (lse)
     a second forward gives the same bits             exact
   The reference checks run deterministic (Gpu.nondeterministic = 0, the default) for the
   default and both organizations, and order-dependent (= 1) for both organizations and the
   sparse_bwd / sparse_kl modes (which are the order-dependent path's).
   Bit-reproducibility ("repeat" lines): on bigger shapes (no CPU reference) one training
   step's sparse ops (forward, backward with psum, probs, KL forward and backward) run twice
   per organization, the scratch freed in between; deterministic: every output and gradient
   must be the same bits (memcmp), and within rel L2 1e-2 (bf16) / 1e-4 (fp32) of the
   order-dependent run (the stage chunks, head-block launches and wide groups against an
   independent summation). Order-dependent: an "info" line says which outputs differed
   between its two runs (expected: dk, dv, dkI, often psum/p; no verdict).
   Cases: T = 100, 1000 x k = 64, 512 x KV = 1, 4 (H = 16, hd 64, HI 4, dI 64), plus
   MHA (KV = 16: one head per block) and hd 32 / 128; head widths other than 32/64/128 (the
   ablation guide's 72, 96, 48 with 8, 6, 12 heads; 40 and 120, padded to 48 and 128, 40 with
   32 heads on one kv head; past 128: 192, 256 and 200 padded to 208, which attn/dsa.h's room
   takes once these pass), where the dense tiles do not apply (Hopper hd 64 only): forward,
   backward, probs, the sparse_bwd modes (3: the key-range pass, padded too) and k >= T
   against the dense flash kernel (any width). The indexer grid (grid_case): 1-4
   indexer heads x dims 8, 16, 32, 64 and 8 x 128 (scores, select, KL both organizations),
   each precision (fp32, fp16, fp8 e4m3 on Hopper, int8, int4) and the adaptive k on
   2 x 8, 1 x 16 and 4 x 64, with sparse attention over the adaptive rows (bounds there).
   Timing: B*T = 65536 tokens, H 16, KV 1, hd 64, k 512, HI 4, dI 64, T = 2048, 8192,
   16384: indexer (scores + top-k), sparse fwd, sparse fwd+bwd, indexer KL backward,
   and the dense causal flash forward and forward+backward of the same shape (the table
   is deterministic, the default, but for the modes' columns); then per shape a "det/nd"
   line: each organization's fwd+bwd and KL fwd+bwd deterministic against order-dependent,
   and which organization each cost rule picks in either setting.
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
#define ATTN_DSA_IMPLEMENTATION
#include "attn/dsa.h"
#undef ABLATE_NO_CUDA
#define ABLATE_CUDA

#define GPU_IMPLEMENTATION
#include "gpu.h"
#include "attn/dense.cu.h"
#include "attn/dsa.cu.h"

#include "gpu_test.h"

/* ---------------------------------------------------------------- host helpers */
static float *to_f32(const double *x, size_t n) {
    float *f = xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}
static double max_abs_err_f32(Gpu *g, const float *dev, const double *ref, size_t n) {
    float *h = xmalloc(n * 4);
    gpu_download(g, h, dev, n * 4);
    double mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)h[i] - ref[i]);
        if (!(e <= mx)) mx = e; /* NaN sticks */
    }
    free(h);
    return isfinite(mx) ? mx : -1;
}

static int n_pass, n_fail;
static void check(const char *what, double err, double tol) {
    int ok = err >= 0 && err <= tol;
    printf("  %-34s %s err %.3e (tol %.0e)\n", what, ok ? "ok  " : "FAIL", err, tol);
    if (ok) n_pass++; else n_fail++;
}

typedef struct { int B, T, H, KV, hd, topk, HI, dI; } Case;

/* ---------------------------------------------------------------- one case */
static void run_case(Gpu *g, const Case *c) {
    const int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd, K = c->topk, HI = c->HI, dI = c->dI;
    const size_t N = (size_t)B * T, nq = N * H * hd, nk = N * KV * hd, nl = (size_t)B * H * T, nsc = N * T,
                 nqi = N * HI * dI, nki = N * dI, nw = N * HI, np = N * K;
    printf("case B=%d T=%d H=%d KV=%d hd=%d k=%d HI=%d dI=%d\n", B, T, H, KV, hd, K, HI, dI);
    uint16_t *qb, *kb, *vb, *gb, *qib, *kib, *wb;
    double *q, *k, *v, *dout, *qI, *kI, *w;
    rand_bf16(nq, 1.5, &qb, &q);
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);
    rand_bf16(nqi, 1.0, &qib, &qI);
    rand_bf16(nki, 1.0, &kib, &kI);
    rand_bf16(nw, 0.5, &wb, &w);
    void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2), *d_v = dev_upload(g, vb, nk * 2),
         *d_do = dev_upload(g, gb, nq * 2), *d_qI = dev_upload(g, qib, nqi * 2),
         *d_kI = dev_upload(g, kib, nki * 2), *d_w = dev_upload(g, wb, nw * 2);

    /* ---- indexer scores, bf16 and fp32 inputs ---- */
    double *sc = xmalloc(nsc * 8);
    attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, ATTN_DSA_PREC_BF16);
    float *d_sc = dev_poisoned(g, nsc * 4);
    float *hsc = xmalloc(nsc * 4);
    for (int prec = 0; prec < 2; prec++) {
        void *a = d_qI, *b = d_kI, *cw = d_w;
        if (prec == 1) { /* the same values as fp32 arrays */
            float *f1 = to_f32(qI, nqi), *f2 = to_f32(kI, nki), *f3 = to_f32(w, nw);
            a = dev_upload(g, f1, nqi * 4); b = dev_upload(g, f2, nki * 4); cw = dev_upload(g, f3, nw * 4);
            free(f1); free(f2); free(f3);
        }
        gpu_indexer_scores(g, d_sc, a, b, cw, B, T, HI, dI, prec);
        gpu_download(g, hsc, d_sc, nsc * 4);
        double num = 0, den = 0;
        int above_ok = 1;
        for (size_t i = 0; i < nsc; i++) {
            size_t t = (i / T) % T, s = i % T;
            if (s > t) { above_ok &= isinf(hsc[i]) && hsc[i] < 0; continue; }
            double e = hsc[i] - sc[i];
            num += isfinite(hsc[i]) ? e * e : INFINITY;
            den += sc[i] * sc[i];
        }
        double err = sqrt(num / (den > 0 ? den : 1));
        check(prec ? "indexer scores (fp32 inputs)" : "indexer scores (bf16 tensor cores)", isfinite(err) ? err : -1, 1e-5);
        check(prec ? "  -inf above the diagonal (fp32)" : "  -inf above the diagonal", above_ok ? 0 : 1, 0);
        if (prec == 1) { gpu_free(g, a); gpu_free(g, b); gpu_free(g, cw); }
    }
    /* the bf16 scores stay in d_sc / hsc for the top-k */
    gpu_indexer_scores(g, d_sc, d_qI, d_kI, d_w, B, T, HI, dI, ATTN_DSA_PREC_BF16);
    gpu_download(g, hsc, d_sc, nsc * 4);

    /* ---- top-k ---- */
    int *d_idx = dev_poisoned(g, np * 4), *d_idx2 = dev_poisoned(g, np * 4);
    int *idx = xmalloc(np * 4), *idx_ref = xmalloc(np * 4), *idx_dbl = xmalloc(np * 4);
    gpu_indexer_topk(g, d_idx, d_sc, B, T, K);
    gpu_indexer_select(g, d_idx2, d_qI, d_kI, d_w, B, T, HI, dI, K, ATTN_DSA_PREC_BF16);
    gpu_download(g, idx, d_idx, np * 4);
    {
        double *scd = xmalloc(nsc * 8);
        for (size_t i = 0; i < nsc; i++) scd[i] = hsc[i];
        attn_dsa_indexer_topk(NULL, idx_ref, scd, B, T, K);
        free(scd);
    }
    check("top-k = CPU select on the GPU scores", memcmp(idx, idx_ref, np * 4) ? 1 : 0, 0);
    {
        int *h2 = xmalloc(np * 4);
        gpu_download(g, h2, d_idx2, np * 4);
        check("fused select = scores + top-k", memcmp(idx, h2, np * 4) ? 1 : 0, 0);
        /* sparse_topk=0 (warp-aggregated histogram atomics in every pass; the default
           1 aggregates in the first pass only): same bits */
        int *e_idx = dev_poisoned(g, np * 4);
        g->tuning.sparse_topk = GPU_TUNE_VARIANT(0);
        gpu_indexer_topk(g, e_idx, d_sc, B, T, K);
        gpu_download(g, h2, e_idx, np * 4);
        check("sparse_topk=0: top-k = default", memcmp(idx, h2, np * 4) ? 1 : 0, 0);
        gpu_indexer_select(g, e_idx, d_qI, d_kI, d_w, B, T, HI, dI, K, ATTN_DSA_PREC_BF16);
        g->tuning.sparse_topk = 0;
        gpu_download(g, h2, e_idx, np * 4);
        check("sparse_topk=0: fused select = default", memcmp(idx, h2, np * 4) ? 1 : 0, 0);
        gpu_free(g, e_idx);
        free(h2);
    }
    {   /* against the double-precision selection: the same set up to the margin */
        attn_dsa_indexer_topk(NULL, idx_dbl, sc, B, T, K);
        size_t same = 0, total = 0;
        char *mark = xmalloc(T);
        for (size_t n = 0; n < N; n++) {
            memset(mark, 0, T);
            for (int j = 0; j < K; j++) if (idx_dbl[n * K + j] >= 0) { mark[idx_dbl[n * K + j]] = 1; total++; }
            for (int j = 0; j < K; j++) if (idx[n * K + j] >= 0 && mark[idx[n * K + j]]) same++;
        }
        free(mark);
        check("top-k vs double scores: share differing", total ? 1.0 - (double)same / total : 1, 1e-2);
    }

    /* ---- sparse attention (on the GPU's selection) ---- */
    double *out = xmalloc(nq * 8), *lse = xmalloc(nl * 8), *dq = xmalloc(nq * 8), *dk = xmalloc(nk * 8),
           *dv = xmalloc(nk * 8), *p = xmalloc(np * 8);
    attn_dsa_attention_forward(NULL, out, lse, q, k, v, idx, B, T, H, KV, hd, K);
    attn_dsa_attention_backward(NULL, dq, dk, dv, p, dout, out, lse, q, k, v, idx, B, T, H, KV, hd, K);
    void *d_o = dev_poisoned(g, nq * 2), *d_dq = dev_poisoned(g, nq * 2), *d_dk = dev_poisoned(g, nk * 2),
         *d_dv = dev_poisoned(g, nk * 2);
    float *d_lse = dev_poisoned(g, nl * 4), *d_ps = dev_poisoned(g, np * 4), *d_pr = dev_poisoned(g, np * 4);
    gpu_sparse_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T, H, KV, hd, K);
    gpu_sparse_attention_backward(g, d_dq, d_dk, d_dv, d_ps, d_do, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T, H, KV,
                                  hd, K);
    gpu_sparse_attention_probs(g, d_pr, d_q, d_k, d_lse, d_idx, B, T, H, KV, hd, K);
    gpu_sync(g);
    check("sparse out", rel_err(g, d_o, 1, out, nq), 1e-2);
    check("sparse lse (max abs)", max_abs_err_f32(g, d_lse, lse, nl), 2e-4);
    check("sparse dq", rel_err(g, d_dq, 1, dq, nq), 1e-2);
    check("sparse dk", rel_err(g, d_dk, 1, dk, nk), 1e-2);
    check("sparse dv", rel_err(g, d_dv, 1, dv, nk), 1e-2);
    check("p from the backward (psum)", rel_err(g, d_ps, 0, p, np), 1e-3);
    check("p from sparse_probs", rel_err(g, d_pr, 0, p, np), 1e-3);
    /* both organizations by name: the per-token gathers (sparse_dense=0) and the dense
       tiles under the selection bitmask (=1; Hopper and hd 64 only); the default above takes
       the one its cost rule picks */
    for (int dmn = 0; dmn < 4; dmn++) {
        const int dm = dmn & 1, nd = dmn >> 1; /* organization, Gpu.nondeterministic */
        if (dm == 1 && !gpu_attention_select_supported(g, hd)) continue;
        g->nondeterministic = nd;
        void *e_o = dev_poisoned(g, nq * 2), *e_dq = dev_poisoned(g, nq * 2), *e_dk = dev_poisoned(g, nk * 2),
             *e_dv = dev_poisoned(g, nk * 2);
        float *e_lse = dev_poisoned(g, nl * 4), *e_ps = dev_poisoned(g, np * 4), *e_pr = dev_poisoned(g, np * 4);
        g->tuning.sparse_dense = GPU_TUNE_VARIANT(dm ? 1 : 0);
        gpu_sparse_attention_forward(g, e_o, e_lse, d_q, d_k, d_v, d_idx, B, T, H, KV, hd, K);
        gpu_sparse_attention_backward(g, e_dq, e_dk, e_dv, e_ps, d_do, e_o, e_lse, d_q, d_k, d_v, d_idx, B, T, H,
                                      KV, hd, K);
        gpu_sparse_attention_probs(g, e_pr, d_q, d_k, e_lse, d_idx, B, T, H, KV, hd, K);
        g->tuning.sparse_dense = 0;
        g->nondeterministic = 0;
        gpu_sync(g);
        char name[64];
        const char *what[7] = {"out", "lse (max abs)", "dq", "dk", "dv", "psum", "p from sparse_probs"};
        double err[7] = {rel_err(g, e_o, 1, out, nq), max_abs_err_f32(g, e_lse, lse, nl), rel_err(g, e_dq, 1, dq, nq),
                         rel_err(g, e_dk, 1, dk, nk), rel_err(g, e_dv, 1, dv, nk), rel_err(g, e_ps, 0, p, np),
                         rel_err(g, e_pr, 0, p, np)};
        const double tol[7] = {1e-2, 2e-4, 1e-2, 1e-2, 1e-2, 1e-3, 1e-3};
        for (int c = 0; c < 7; c++) {
            snprintf(name, sizeof name, "sparse_dense=%d%s: %s", dm, nd ? " nondet" : "", what[c]);
            check(name, err[c], tol[c]);
        }
        gpu_free(g, e_o); gpu_free(g, e_dq); gpu_free(g, e_dk); gpu_free(g, e_dv); gpu_free(g, e_lse);
        gpu_free(g, e_ps); gpu_free(g, e_pr);
    }
    static const int bwd_modes[] = {0, 1, 3};
    for (int mi = 0; mi < 3; mi++) {
        const int mode = bwd_modes[mi];
        /* the default is sparse_bwd=2 (psum by plain stores where one block owns the
           token, dk/dv staged in shared memory and added as whole rows); =0 (dk/dv by fp32
           atomics per fragment), =1 (psum by plain stores only), =3 (dk/dv by the key-range
           pass sparse_bwd_kv; falls back to 1 when H/KV > 16) */
        void *e_dq = dev_poisoned(g, nq * 2), *e_dk = dev_poisoned(g, nk * 2), *e_dv = dev_poisoned(g, nk * 2);
        float *e_ps = dev_poisoned(g, np * 4);
        char name[64];
        g->tuning.sparse_bwd = GPU_TUNE_VARIANT(mode);
        g->tuning.sparse_dense = GPU_TUNE_VARIANT(0); /* the modes are the gathers' */
        g->nondeterministic = 1;               /* and the order-dependent path's */
        gpu_sparse_attention_backward(g, e_dq, e_dk, e_dv, e_ps, d_do, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T, H, KV,
                                      hd, K);
        g->nondeterministic = 0;
        g->tuning.sparse_bwd = 0;
        g->tuning.sparse_dense = 0;
        gpu_sync(g);
        snprintf(name, sizeof name, "sparse_bwd=%d: dq", mode);
        check(name, rel_err(g, e_dq, 1, dq, nq), 1e-2);
        snprintf(name, sizeof name, "sparse_bwd=%d: dk", mode);
        check(name, rel_err(g, e_dk, 1, dk, nk), 1e-2);
        snprintf(name, sizeof name, "sparse_bwd=%d: dv", mode);
        check(name, rel_err(g, e_dv, 1, dv, nk), 1e-2);
        snprintf(name, sizeof name, "sparse_bwd=%d: psum", mode);
        check(name, rel_err(g, e_ps, 0, p, np), 1e-3);
        gpu_free(g, e_dq); gpu_free(g, e_dk); gpu_free(g, e_dv); gpu_free(g, e_ps);
    }
    {   /* a second forward must give the same bits */
        uint16_t *a = xmalloc(nq * 2), *b2 = xmalloc(nq * 2);
        gpu_download(g, a, d_o, nq * 2);
        gpu_sparse_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T, H, KV, hd, K);
        gpu_download(g, b2, d_o, nq * 2);
        check("sparse forward repeatable", memcmp(a, b2, nq * 2) ? 1 : 0, 0);
        free(a); free(b2);
    }
    if (K >= T) { /* the full causal selection: the dense flash kernel must agree */
        void *d_o2 = dev_poisoned(g, nq * 2);
        float *d_l2 = dev_poisoned(g, nl * 4);
        gpu_attention_forward(g, d_o2, d_l2, d_q, d_k, d_v, B, T, H, KV, hd, 0);
        uint16_t *a = xmalloc(nq * 2);
        float *l2 = xmalloc(nl * 4);
        double *ad = xmalloc(nq * 8), *ld = xmalloc(nl * 8);
        gpu_download(g, a, d_o2, nq * 2);
        gpu_download(g, l2, d_l2, nl * 4);
        for (size_t i = 0; i < nq; i++) ad[i] = bf2d(a[i]);
        for (size_t i = 0; i < nl; i++) ld[i] = l2[i];
        check("k >= T: sparse out = dense flash out", rel_err(g, d_o, 1, ad, nq), 1e-2);
        check("k >= T: sparse lse = dense lse", max_abs_err_f32(g, d_lse, ld, nl), 2e-4);
        gpu_free(g, d_o2); gpu_free(g, d_l2);
        free(a); free(l2); free(ad); free(ld);
    }

    /* ---- indexer KL, against the reference p (the same target on both sides) ---- */
    if (HI * dI <= 1024) {
        double *loss = xmalloc(N * 8), *loss2 = xmalloc(N * 8), *dqI = xmalloc(nqi * 8), *dkI = xmalloc(nki * 8),
               *dw = xmalloc(nw * 8);
        const float dloss = 0.5f;
        attn_dsa_indexer_kl_forward(NULL, loss, p, qI, kI, w, idx, B, T, HI, dI, K);
        attn_dsa_indexer_kl_backward(NULL, loss2, dqI, dkI, dw, p, qI, kI, w, idx, B, T, HI, dI, K, dloss);
        float *pf = to_f32(p, np);
        float *d_p = dev_upload(g, pf, np * 4), *d_loss = dev_poisoned(g, N * 4), *d_loss2 = dev_poisoned(g, N * 4);
        void *d_dqI = dev_poisoned(g, nqi * 2), *d_dkI = dev_poisoned(g, nki * 2), *d_dw = dev_poisoned(g, nw * 2);
        gpu_indexer_kl_forward(g, d_loss, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K);
        gpu_indexer_kl_backward(g, d_loss2, d_dqI, d_dkI, d_dw, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K, dloss);
        check("KL loss (forward)", rel_err(g, d_loss, 0, loss, N), 1e-3);
        check("KL loss (backward)", rel_err(g, d_loss2, 0, loss, N), 1e-3);
        check("KL dqI", rel_err(g, d_dqI, 1, dqI, nqi), 1e-2);
        check("KL dkI", rel_err(g, d_dkI, 1, dkI, nki), 1e-2);
        check("KL dw", rel_err(g, d_dw, 1, dw, nw), 1e-2);
        /* both organizations by name: gathers (sparse_dense=0), dense tiles (=1; Hopper,
           dI 64, HI <= 8) */
        for (int dmn = 0; dmn < 4; dmn++) {
            const int dm = dmn & 1, nd = dmn >> 1; /* organization, Gpu.nondeterministic */
            if (dm == 1 && !gpu_attention_select_kl_supported(g, HI, dI)) continue;
            g->nondeterministic = nd;
            float *e_loss = dev_poisoned(g, N * 4), *e_lossf = dev_poisoned(g, N * 4);
            void *e_dqI = dev_poisoned(g, nqi * 2), *e_dkI = dev_poisoned(g, nki * 2), *e_dw = dev_poisoned(g, nw * 2);
            g->tuning.sparse_dense = GPU_TUNE_VARIANT(dm ? 1 : 0);
            gpu_indexer_kl_forward(g, e_lossf, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K);
            gpu_indexer_kl_backward(g, e_loss, e_dqI, e_dkI, e_dw, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K, dloss);
            g->tuning.sparse_dense = 0;
            g->nondeterministic = 0;
            char name[64];
            const char *what[5] = {"loss (forward)", "loss (backward)", "dqI", "dkI", "dw"};
            double err[5] = {rel_err(g, e_lossf, 0, loss, N), rel_err(g, e_loss, 0, loss, N),
                             rel_err(g, e_dqI, 1, dqI, nqi), rel_err(g, e_dkI, 1, dkI, nki), rel_err(g, e_dw, 1, dw, nw)};
            const double tol[5] = {1e-3, 1e-3, 1e-2, 1e-2, 1e-2};
            for (int c = 0; c < 5; c++) {
                snprintf(name, sizeof name, "sparse_dense=%d%s: KL %s", dm, nd ? " nondet" : "", what[c]);
                check(name, err[c], tol[c]);
            }
            gpu_free(g, e_loss); gpu_free(g, e_lossf); gpu_free(g, e_dqI); gpu_free(g, e_dkI); gpu_free(g, e_dw);
        }
        /* sparse_kl=0 (scalar dkI reductions, a_j recomputed, warp sums per slot; the
           default 1 is red.v4 dkI, cached a_j, lane-per-slot scores): the same tolerances
           (the scores are summed in another order: not the default's bits) */
        {
            float *e_loss = dev_poisoned(g, N * 4), *e_lossf = dev_poisoned(g, N * 4);
            void *e_dqI = dev_poisoned(g, nqi * 2), *e_dkI = dev_poisoned(g, nki * 2), *e_dw = dev_poisoned(g, nw * 2);
            g->tuning.sparse_kl = GPU_TUNE_VARIANT(0);
            g->tuning.sparse_dense = GPU_TUNE_VARIANT(0); /* the KL modes are the gathers' */
            g->nondeterministic = 1;               /* and the order-dependent path's */
            gpu_indexer_kl_forward(g, e_lossf, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K);
            gpu_indexer_kl_backward(g, e_loss, e_dqI, e_dkI, e_dw, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K, dloss);
            g->tuning.sparse_kl = 0;
            g->tuning.sparse_dense = 0;
            g->nondeterministic = 0;
            check("sparse_kl=0: loss (forward)", rel_err(g, e_lossf, 0, loss, N), 1e-3);
            check("sparse_kl=0: loss (backward)", rel_err(g, e_loss, 0, loss, N), 1e-3);
            check("sparse_kl=0: dqI", rel_err(g, e_dqI, 1, dqI, nqi), 1e-2);
            check("sparse_kl=0: dkI", rel_err(g, e_dkI, 1, dkI, nki), 1e-2);
            check("sparse_kl=0: dw", rel_err(g, e_dw, 1, dw, nw), 1e-2);
            gpu_free(g, e_loss); gpu_free(g, e_lossf); gpu_free(g, e_dqI); gpu_free(g, e_dkI); gpu_free(g, e_dw);
        }
        gpu_free(g, d_p); gpu_free(g, d_loss); gpu_free(g, d_loss2); gpu_free(g, d_dqI); gpu_free(g, d_dkI);
        gpu_free(g, d_dw);
        free(pf); free(loss); free(loss2); free(dqI); free(dkI); free(dw);
    }

    gpu_free(g, d_q); gpu_free(g, d_k); gpu_free(g, d_v); gpu_free(g, d_do); gpu_free(g, d_qI); gpu_free(g, d_kI);
    gpu_free(g, d_w); gpu_free(g, d_sc); gpu_free(g, d_idx); gpu_free(g, d_idx2); gpu_free(g, d_o);
    gpu_free(g, d_dq); gpu_free(g, d_dk); gpu_free(g, d_dv); gpu_free(g, d_lse); gpu_free(g, d_ps); gpu_free(g, d_pr);
    free(qb); free(kb); free(vb); free(gb); free(qib); free(kib); free(wb);
    free(q); free(k); free(v); free(dout); free(qI); free(kI); free(w);
    free(sc); free(hsc); free(idx); free(idx_ref); free(idx_dbl);
    free(out); free(lse); free(dq); free(dk); free(dv); free(p);
}

/* ---------------------------------------------------------------- bit-reproducibility */
static void *dev_rand(Gpu *g, size_t n, double sd) {
    uint16_t *bits;
    double *vals;
    rand_bf16(n, sd, &bits, &vals);
    void *d = dev_upload(g, bits, n * 2);
    free(bits);
    free(vals);
    return d;
}

enum { R_OUT, R_LSE, R_DQ, R_DK, R_DV, R_PSUM, R_PROBS, R_LOSSF, R_LOSSB, R_DQI, R_DKI, R_DW, R_N };
static const char *const r_name[R_N] = {"out", "lse", "dq", "dk", "dv", "psum", "p (probs)", "KL loss (fwd)",
                                        "KL loss (bwd)", "dqI", "dkI", "dw"};
static const int r_bf16[R_N] = {1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};

/* rel L2 of a against b (host copies, bf16 or fp32); -1 on a non-finite value */
static double rel_err_host(const void *a, const void *b, int is_bf16, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = is_bf16 ? bf2d(((const uint16_t *)a)[i]) : ((const float *)a)[i];
        double y = is_bf16 ? bf2d(((const uint16_t *)b)[i]) : ((const float *)b)[i];
        if (!isfinite(x) || !isfinite(y)) return -1;
        num += (x - y) * (x - y);
        den += y * y;
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* one training step's sparse ops (the attention by organization dm, the KL by kdm: the value
   of sparse_dense) into poisoned buffers, downloaded to h[i] (bytes[i]); in = q, k, v,
   dout, qI, kI, w, idx. The KL's target is the backward's psum, as in training. */
static void repro_step(Gpu *g, const Case *c, void *const in[8], int dm, int kdm, void *h[R_N],
                       const size_t bytes[R_N]) {
    void *d[R_N];
    for (int i = 0; i < R_N; i++) d[i] = dev_poisoned(g, bytes[i]);
    const int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd, K = c->topk, HI = c->HI, dI = c->dI;
    const int *idx = (const int *)in[7];
    g->tuning.sparse_dense = GPU_TUNE_VARIANT(dm ? 1 : 0);
    gpu_sparse_attention_forward(g, d[R_OUT], (float *)d[R_LSE], in[0], in[1], in[2], idx, B, T, H, KV, hd, K);
    gpu_sparse_attention_backward(g, d[R_DQ], d[R_DK], d[R_DV], (float *)d[R_PSUM], in[3], d[R_OUT], (float *)d[R_LSE],
                                  in[0], in[1], in[2], idx, B, T, H, KV, hd, K);
    gpu_sparse_attention_probs(g, (float *)d[R_PROBS], in[0], in[1], (float *)d[R_LSE], idx, B, T, H, KV, hd, K);
    g->tuning.sparse_dense = GPU_TUNE_VARIANT(kdm ? 1 : 0);
    gpu_indexer_kl_forward(g, (float *)d[R_LOSSF], (float *)d[R_PSUM], in[4], in[5], in[6], idx, B, T, HI, dI, K);
    gpu_indexer_kl_backward(g, (float *)d[R_LOSSB], d[R_DQI], d[R_DKI], d[R_DW], (float *)d[R_PSUM], in[4], in[5],
                            in[6], idx, B, T, HI, dI, K, 0.5f);
    g->tuning.sparse_dense = 0;
    gpu_sync(g);
    for (int i = 0; i < R_N; i++) {
        gpu_download(g, h[i], d[i], bytes[i]);
        gpu_free(g, d[i]);
    }
}

/* Deterministic (the default): two runs give the same bits, per organization; and they agree
   with the order-dependent path within rounding. Order-dependent: which outputs differed
   between its two runs (information only: atomics may happen to land in the same order). */
static void repro_case(Gpu *g, const Case *c) {
    const size_t N = (size_t)c->B * c->T;
    printf("repeat B=%d T=%d H=%d KV=%d hd=%d k=%d HI=%d dI=%d\n", c->B, c->T, c->H, c->KV, c->hd, c->topk, c->HI,
           c->dI);
    void *in[8] = {dev_rand(g, N * c->H * c->hd, 1.5), dev_rand(g, N * c->KV * c->hd, 1),
                   dev_rand(g, N * c->KV * c->hd, 1),  dev_rand(g, N * c->H * c->hd, 1),
                   dev_rand(g, N * c->HI * c->dI, 1),  dev_rand(g, N * c->dI, 1),
                   dev_rand(g, N * c->HI, 0.5),        gpu_alloc(g, N * c->topk * 4)};
    gpu_indexer_select(g, (int *)in[7], in[4], in[5], in[6], c->B, c->T, c->HI, c->dI, c->topk, ATTN_DSA_PREC_BF16);
    const size_t nq = N * c->H * c->hd, nk = N * c->KV * c->hd, np = N * c->topk;
    const size_t bytes[R_N] = {nq * 2, (size_t)c->B * c->H * c->T * 4, nq * 2, nk * 2, nk * 2, np * 4, np * 4, N * 4,
                               N * 4, N * c->HI * c->dI * 2, N * c->dI * 2, N * c->HI * 2};
    void *h[3][R_N]; /* deterministic run 1, run 2; order-dependent */
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < R_N; i++) h[r][i] = xmalloc(bytes[i]);
    void *h2[R_N];
    for (int i = 0; i < R_N; i++) h2[i] = xmalloc(bytes[i]);
    for (int dm = 0; dm < 2; dm++) {
        if (dm == 1 && !gpu_attention_select_supported(g, c->hd)) continue;
        const int kdm = dm && gpu_attention_select_kl_supported(g, c->HI, c->dI);
        char org[48], name[96];
        snprintf(org, sizeof org, "%s/%s", dm ? "tiles" : "gathers", kdm ? "tiles" : "gathers");
        g->nondeterministic = 0;
        repro_step(g, c, in, dm, kdm, h[0], bytes);
        gpu_sparse_release(g); /* the second run on fresh scratch */
        repro_step(g, c, in, dm, kdm, h[1], bytes);
        g->nondeterministic = 1;
        repro_step(g, c, in, dm, kdm, h[2], bytes);
        repro_step(g, c, in, dm, kdm, h2, bytes);
        g->nondeterministic = 0;
        char differ[256] = "";
        for (int i = 0; i < R_N; i++) {
            snprintf(name, sizeof name, "repeat %s: %s bits", org, r_name[i]);
            check(name, memcmp(h[0][i], h[1][i], bytes[i]) ? 1 : 0, 0);
            size_t n = bytes[i] / (r_bf16[i] ? 2 : 4);
            snprintf(name, sizeof name, "repeat %s: %s det vs nondet", org, r_name[i]);
            check(name, rel_err_host(h[0][i], h[2][i], r_bf16[i], n), r_bf16[i] ? 1e-2 : 1e-4);
            if (memcmp(h[2][i], h2[i], bytes[i]))
                snprintf(differ + strlen(differ), sizeof differ - strlen(differ), " %s,", r_name[i]);
        }
        printf("  info %s: the order-dependent path's two runs differed in:%s\n", org, differ[0] ? differ : " nothing");
    }
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < R_N; i++) free(h[r][i]);
    for (int i = 0; i < R_N; i++) free(h2[i]);
    for (int i = 0; i < 8; i++) gpu_free(g, in[i]);
    gpu_sparse_release(g);
}

/* ---------------------------------------------------------------- timing */
typedef struct {
    Case c;
    void *q, *k, *v, *dout, *out, *dq, *dk, *dv, *qI, *kI, *w, *dqI, *dkI, *dw;
    float *lse, *p, *loss;
    int *idx;
} Bench;

enum { T_SELECT, T_SFWD, T_SFB, T_KLB, T_DFWD, T_DFB };

static void bench_once(Gpu *g, Bench *b, int what) {
    const Case *c = &b->c;
    switch (what) {
    case T_SELECT:
        gpu_indexer_select(g, b->idx, b->qI, b->kI, b->w, c->B, c->T, c->HI, c->dI, c->topk, ATTN_DSA_PREC_BF16);
        break;
    case T_SFB:
    case T_SFWD:
        gpu_sparse_attention_forward(g, b->out, b->lse, b->q, b->k, b->v, b->idx, c->B, c->T, c->H, c->KV, c->hd, c->topk);
        if (what == T_SFB)
            gpu_sparse_attention_backward(g, b->dq, b->dk, b->dv, b->p, b->dout, b->out, b->lse, b->q, b->k, b->v,
                                          b->idx, c->B, c->T, c->H, c->KV, c->hd, c->topk);
        break;
    case T_KLB:
        gpu_indexer_kl_backward(g, b->loss, b->dqI, b->dkI, b->dw, b->p, b->qI, b->kI, b->w, b->idx, c->B, c->T,
                                c->HI, c->dI, c->topk, 1.0f);
        break;
    case T_DFB:
    case T_DFWD:
        gpu_attention_forward(g, b->out, b->lse, b->q, b->k, b->v, c->B, c->T, c->H, c->KV, c->hd, 0);
        if (what == T_DFB)
            gpu_attention_backward(g, b->dq, b->dk, b->dv, b->dout, b->out, b->lse, b->q, b->k, b->v, c->B, c->T,
                                   c->H, c->KV, c->hd, 0);
        break;
    }
}

/* median milliseconds of reps timed runs (after 2 warm-ups) */
static float time_ms(Gpu *g, Bench *b, int what, int reps) {
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float *ms = xmalloc(sizeof(float) * reps);
    for (int r = -2; r < reps; r++) {
        CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
        bench_once(g, b, what);
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

static void run_timing(Gpu *g, const Case *c) {
    Bench b;
    memset(&b, 0, sizeof b);
    b.c = *c;
    size_t N = (size_t)c->B * c->T, nq = N * c->H * c->hd, nk = N * c->KV * c->hd;
    b.q = dev_rand(g, nq, 1.5); b.k = dev_rand(g, nk, 1); b.v = dev_rand(g, nk, 1); b.dout = dev_rand(g, nq, 1);
    b.qI = dev_rand(g, N * c->HI * c->dI, 1); b.kI = dev_rand(g, N * c->dI, 1); b.w = dev_rand(g, N * c->HI, 0.5);
    b.out = gpu_alloc(g, nq * 2); b.dq = gpu_alloc(g, nq * 2); b.dk = gpu_alloc(g, nk * 2); b.dv = gpu_alloc(g, nk * 2);
    b.dqI = gpu_alloc(g, N * c->HI * c->dI * 2); b.dkI = gpu_alloc(g, N * c->dI * 2); b.dw = gpu_alloc(g, N * c->HI * 2);
    b.lse = gpu_alloc(g, (size_t)c->B * c->H * c->T * 4); b.p = gpu_alloc(g, N * c->topk * 4);
    b.loss = gpu_alloc(g, N * 4); b.idx = gpu_alloc(g, N * c->topk * 4);
    int reps = 10;
    /* the selection first: the sparse ops run on a real top-k, p on a real backward */
    float sel = time_ms(g, &b, T_SELECT, reps);
    float sf = time_ms(g, &b, T_SFWD, reps), sfb = time_ms(g, &b, T_SFB, reps);
    float klb = time_ms(g, &b, T_KLB, reps);
    float df = time_ms(g, &b, T_DFWD, reps), dfb = time_ms(g, &b, T_DFB, reps);
    float sparse_total = sel + sfb;
    /* the two organizations by name: gathers (sf0, sfb0), dense tiles under the mask (sfD, sfbD) */
    float sf0, sfb0, sfD = -1, sfbD = -1, klb0, klbD = -1;
    g->tuning.sparse_dense = GPU_TUNE_VARIANT(0);
    sf0 = time_ms(g, &b, T_SFWD, reps);
    sfb0 = time_ms(g, &b, T_SFB, reps);
    klb0 = time_ms(g, &b, T_KLB, reps);
    if (gpu_attention_select_supported(g, c->hd)) {
        g->tuning.sparse_dense = GPU_TUNE_VARIANT(1);
        sfD = time_ms(g, &b, T_SFWD, reps);
        sfbD = time_ms(g, &b, T_SFB, reps);
    }
    if (gpu_attention_select_kl_supported(g, c->HI, c->dI)) {
        g->tuning.sparse_dense = GPU_TUNE_VARIANT(1);
        klbD = time_ms(g, &b, T_KLB, reps);
    }
    /* deterministic (the default, above) against order-dependent, each organization:
       [0] the rule's pick, [1] gathers, [2] tiles; sfb then klb, det then nondet */
    float dn[3][2][2];
    for (int o = 0; o < 3; o++)
        for (int nd = 0; nd < 2; nd++) {
            g->nondeterministic = nd;
            if (o == 0) g->tuning.sparse_dense = 0;
            else g->tuning.sparse_dense = GPU_TUNE_VARIANT(o == 1 ? 0 : 1);
            const int att_ok = o < 2 || gpu_attention_select_supported(g, c->hd);
            const int kl_ok = o < 2 || gpu_attention_select_kl_supported(g, c->HI, c->dI);
            dn[o][0][nd] = att_ok ? time_ms(g, &b, T_SFB, reps) : -1;
            dn[o][1][nd] = kl_ok ? time_ms(g, &b, T_KLB, reps) : -1;
        }
    g->tuning.sparse_dense = 0;
    int pick[2][2]; /* [nd][attention, KL]: 1 = the tiles */
    for (int nd = 0; nd < 2; nd++) {
        g->nondeterministic = nd;
        pick[nd][0] = sparse_use_dense_(g, c->T, c->H, c->KV, c->hd, c->topk);
        pick[nd][1] = sparse_kl_use_dense_(g, c->B, c->T, c->HI, c->dI, c->topk);
    }
    /* the ablation modes (of the gathers, order-dependent): sparse_bwd=1 (psum stores),
       =9 (no dk/dv reductions: a diagnostic of their cost, wrong dk/dv), sparse_kl=1 */
    g->nondeterministic = 1;
    g->tuning.sparse_dense = GPU_TUNE_VARIANT(0);
    g->tuning.sparse_bwd = GPU_TUNE_VARIANT(1);
    float sfb1 = time_ms(g, &b, T_SFB, reps);
    g->tuning.sparse_bwd = GPU_TUNE_VARIANT(2);
    float sfb2 = time_ms(g, &b, T_SFB, reps);
    g->tuning.sparse_bwd = GPU_TUNE_VARIANT(3);
    float sfb3 = time_ms(g, &b, T_SFB, reps);
    g->tuning.sparse_bwd = GPU_TUNE_VARIANT(9);
    float sfb9 = time_ms(g, &b, T_SFB, reps);
    g->tuning.sparse_bwd = 0;
    g->tuning.sparse_kl = GPU_TUNE_VARIANT(1);
    float klb1 = time_ms(g, &b, T_KLB, reps);
    g->tuning.sparse_kl = 0;
    g->tuning.sparse_dense = 0;
    g->nondeterministic = 0;
    g->tuning.sparse_topk = GPU_TUNE_VARIANT(1);
    float sel1 = time_ms(g, &b, T_SELECT, reps);
    g->tuning.sparse_topk = 0;
    printf("%6d %3d %3d %3d %5d | %8.3f %8.3f %8.3f %8.3f | %8.3f %8.3f | %6.2fx %6.2fx | %8.3f %8.3f %8.3f %8.3f | "
           "%8.3f %8.3f | %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f\n",
           c->T, c->B, c->H, c->KV, c->topk, sel, sf, sfb, klb, df, dfb, df / (sel + sf), dfb / sparse_total, sf0, sfb0,
           sfD, sfbD, klb0, klbD, sfb1, sfb2, sfb3, sfb9, klb1, sel1);
    printf("    det/nd ms: sfb %.3f/%.3f (%+.1f%%)  sfb0 %.3f/%.3f  sfbD %.3f/%.3f | klb %.3f/%.3f (%+.1f%%)  "
           "klb0 %.3f/%.3f  klbD %.3f/%.3f | rule picks: det %s/%s, nd %s/%s\n",
           dn[0][0][0], dn[0][0][1], 100.0 * (dn[0][0][0] / dn[0][0][1] - 1), dn[1][0][0], dn[1][0][1], dn[2][0][0],
           dn[2][0][1], dn[0][1][0], dn[0][1][1], 100.0 * (dn[0][1][0] / dn[0][1][1] - 1), dn[1][1][0], dn[1][1][1],
           dn[2][1][0], dn[2][1][1], pick[0][0] ? "tiles" : "gathers", pick[0][1] ? "tiles" : "gathers",
           pick[1][0] ? "tiles" : "gathers", pick[1][1] ? "tiles" : "gathers");
    void *bufs[] = {b.q, b.k, b.v, b.dout, b.out, b.dq, b.dk, b.dv, b.qI, b.kI, b.w, b.dqI, b.dkI, b.dw, b.lse, b.p,
                    b.loss, b.idx};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    gpu_sparse_release(g);
}

/* ---------------------------------------------------------------- the indexer grid */
/* 1-4 indexer heads x dims 8, 16, 32, 64 (and 8 x 128): scores, the select and the KL against
   the reference at bf16 (the tensor cores; dI 8 / 16 on zero-padded copies), then each
   precision (fp32 inputs; fp16, fp8 e4m3 (Hopper), int8, int4 quantized per row) and the
   adaptive k (topk_schedule 5) on two shapes. Bounds: scores rel L2 1e-5 at every precision
   (the quantized values are the same on both sides: the reference quantizes in fp32 arithmetic
   as idx_prep does, so a value at half its row's max, a tie, rounds the same way); the select EXACTLY the CPU's top-k (adaptive:
   each row's k from the CPU rule) on the GPU's own scores, and >= 99% of the positions of
   the reference's own selection; KL loss 1e-3, dqI dkI dw 1e-2 (rel L2); sparse attention on
   the adaptive selection (-1 slots inside rows) out, dq, dk, dv 1e-2. */
static void grid_case(Gpu *g, int HI, int dI, int full) {
    const int B = 2, T = 200, K = 40, H = 4, KV = 1, hd = 64;
    const size_t N = (size_t)B * T, nsc = N * T, nqi = N * HI * dI, nki = N * dI, nw = N * HI, np = N * K;
    printf("indexer grid HI=%d dI=%d (B=%d T=%d k=%d)\n", HI, dI, B, T, K);
    uint16_t *qib, *kib, *wb;
    double *qI, *kI, *w;
    rand_bf16(nqi, 1.0, &qib, &qI);
    rand_bf16(nki, 1.0, &kib, &kI);
    rand_bf16(nw, 0.5, &wb, &w);
    void *d_qI = dev_upload(g, qib, nqi * 2), *d_kI = dev_upload(g, kib, nki * 2), *d_w = dev_upload(g, wb, nw * 2);
    double *sc = xmalloc(nsc * 8), *scd = xmalloc(nsc * 8);
    float *d_sc = dev_poisoned(g, nsc * 4), *hsc = xmalloc(nsc * 4);
    int *d_idx = dev_poisoned(g, np * 4), *idx = xmalloc(np * 4), *idx_ref = xmalloc(np * 4);
    SparseScore_ *tmp = xmalloc(sizeof *tmp * T);
    static const char *pname[] = {"bf16", "fp32", "fp16", "fp8 e4m3", "int8", "int4", "fp32 of bf16 acts"};
    char name[96];
    for (int prec = 0; prec <= SPARSE_PREC_FP32_ACT; prec++) {
        if (!full && prec > 0) break;
        if (prec == SPARSE_PREC_FP8 && g->cc_major < 9) {
            printf("  (fp8 e4m3: Hopper only, this GPU is sm_%d%d: skipped)\n", g->cc_major, g->cc_minor);
            continue;
        }
        for (int adapt = 0; adapt < (full ? 2 : 1); adapt++) {
            const int kmin = 4, pct = adapt ? 80 : 0;
            const void *a = d_qI, *b = d_kI, *cw = d_w;
            if (prec == ATTN_DSA_PREC_FP32) { /* the same values as fp32 arrays */
                float *f1 = to_f32(qI, nqi), *f2 = to_f32(kI, nki), *f3 = to_f32(w, nw);
                a = dev_upload(g, f1, nqi * 4); b = dev_upload(g, f2, nki * 4); cw = dev_upload(g, f3, nw * 4);
                free(f1); free(f2); free(f3);
            }
            attn_dsa_indexer_scores(NULL, sc, qI, kI, w, B, T, HI, dI, prec);
            gpu_indexer_scores(g, d_sc, a, b, cw, B, T, HI, dI, prec);
            gpu_indexer_select_adaptive(g, d_idx, a, b, cw, B, T, HI, dI, K, prec, kmin, pct);
            gpu_download(g, hsc, d_sc, nsc * 4);
            gpu_download(g, idx, d_idx, np * 4);
            if (!adapt) {
                double num = 0, den = 0;
                for (size_t i = 0; i < nsc; i++) {
                    size_t t = (i / T) % T, s = i % T;
                    if (s > t) { num += isinf(hsc[i]) && hsc[i] < 0 ? 0 : INFINITY; continue; }
                    double e = hsc[i] - sc[i];
                    num += isfinite(hsc[i]) ? e * e : INFINITY;
                    den += sc[i] * sc[i];
                }
                double err = sqrt(num / (den > 0 ? den : 1));
                snprintf(name, sizeof name, "%s scores", pname[prec]);
                check(name, isfinite(err) ? err : -1, 1e-5);
            }
            /* the CPU rule on the GPU's own scores: the same rows exactly */
            for (size_t i = 0; i < nsc; i++) scd[i] = hsc[i];
            for (size_t n = 0; n < N; n++) {
                int t = (int)(n % T), kk = pct ? attn_dsa_adaptive_k(scd + n * T, t + 1, kmin, K, pct, NULL) : K;
                sparse_topk_row_(idx_ref + n * K, scd + n * T, t + 1, kk, tmp);
                for (int j = kk; j < K; j++) idx_ref[n * K + j] = -1;
            }
            snprintf(name, sizeof name, "%s %s = CPU rule on its scores", pname[prec], adapt ? "adaptive select" : "select");
            check(name, memcmp(idx, idx_ref, np * 4) ? 1 : 0, 0);
            /* against the reference's own selection (its scores in double) */
            if (attn_dsa_indexer_select_adaptive(NULL, idx_ref, qI, kI, w, B, T, HI, dI, K, prec, kmin, pct) == 0) {
                size_t same = 0, total = 0;
                char *mark = xmalloc(T);
                for (size_t n = 0; n < N; n++) {
                    memset(mark, 0, T);
                    for (int j = 0; j < K; j++) if (idx_ref[n * K + j] >= 0) { mark[idx_ref[n * K + j]] = 1; total++; }
                    for (int j = 0; j < K; j++) if (idx[n * K + j] >= 0 && mark[idx[n * K + j]]) same++;
                }
                free(mark);
                snprintf(name, sizeof name, "%s %s vs reference: share differing", pname[prec], adapt ? "adaptive" : "select");
                check(name, total ? 1.0 - (double)same / total : 1, 1e-2);
            }
            if (prec == ATTN_DSA_PREC_FP32) { gpu_free(g, (void *)a); gpu_free(g, (void *)b); gpu_free(g, (void *)cw); }
            if (adapt && prec == ATTN_DSA_PREC_BF16) { /* sparse attention over rows of varying k */
                size_t nq = N * H * hd, nk = N * KV * hd, nl = (size_t)B * H * T;
                uint16_t *qb, *kb, *vb, *gb;
                double *q, *k, *v, *dout;
                rand_bf16(nq, 1.5, &qb, &q); rand_bf16(nk, 1.0, &kb, &k); rand_bf16(nk, 1.0, &vb, &v);
                rand_bf16(nq, 1.0, &gb, &dout);
                double *out = xmalloc(nq * 8), *lse = xmalloc(nl * 8), *dq = xmalloc(nq * 8), *dk = xmalloc(nk * 8),
                       *dv = xmalloc(nk * 8);
                attn_dsa_attention_forward(NULL, out, lse, q, k, v, idx, B, T, H, KV, hd, K);
                attn_dsa_attention_backward(NULL, dq, dk, dv, NULL, dout, out, lse, q, k, v, idx, B, T, H, KV, hd, K);
                void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2), *d_v = dev_upload(g, vb, nk * 2),
                     *d_do = dev_upload(g, gb, nq * 2);
                for (int dm = 0; dm < 2; dm++) {
                    if (dm == 1 && !gpu_attention_select_supported(g, hd)) continue;
                    void *d_o = dev_poisoned(g, nq * 2), *d_dq = dev_poisoned(g, nq * 2), *d_dk = dev_poisoned(g, nk * 2),
                         *d_dv = dev_poisoned(g, nk * 2);
                    float *d_lse = dev_poisoned(g, nl * 4);
                    g->tuning.sparse_dense = GPU_TUNE_VARIANT(dm);
                    gpu_sparse_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T, H, KV, hd, K);
                    gpu_sparse_attention_backward(g, d_dq, d_dk, d_dv, NULL, d_do, d_o, d_lse, d_q, d_k, d_v, d_idx, B, T,
                                                  H, KV, hd, K);
                    g->tuning.sparse_dense = 0;
                    gpu_sync(g);
                    const char *what[4] = {"out", "dq", "dk", "dv"};
                    double err[4] = {rel_err(g, d_o, 1, out, nq), rel_err(g, d_dq, 1, dq, nq), rel_err(g, d_dk, 1, dk, nk),
                                     rel_err(g, d_dv, 1, dv, nk)};
                    for (int c = 0; c < 4; c++) {
                        snprintf(name, sizeof name, "adaptive k sparse_dense=%d: %s", dm, what[c]);
                        check(name, err[c], 1e-2);
                    }
                    gpu_free(g, d_o); gpu_free(g, d_dq); gpu_free(g, d_dk); gpu_free(g, d_dv); gpu_free(g, d_lse);
                }
                gpu_free(g, d_q); gpu_free(g, d_k); gpu_free(g, d_v); gpu_free(g, d_do);
                free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
                free(out); free(lse); free(dq); free(dk); free(dv);
            }
        }
    }
    /* the KL (unquantized bf16 q_I, k_I) on the bf16 selection, p a random distribution over it */
    gpu_indexer_select(g, d_idx, d_qI, d_kI, d_w, B, T, HI, dI, K, ATTN_DSA_PREC_BF16);
    gpu_download(g, idx, d_idx, np * 4);
    double *p = xmalloc(np * 8), *loss = xmalloc(N * 8), *loss2 = xmalloc(N * 8), *dqI = xmalloc(nqi * 8),
           *dkI = xmalloc(nki * 8), *dw = xmalloc(nw * 8);
    for (size_t n = 0; n < N; n++) {
        double s = 0;
        for (int j = 0; j < K; j++) s += p[n * K + j] = idx[n * K + j] >= 0 ? 0.05 + urand() : 0;
        for (int j = 0; j < K; j++) p[n * K + j] /= s;
    }
    const float dloss = 0.5f;
    attn_dsa_indexer_kl_forward(NULL, loss, p, qI, kI, w, idx, B, T, HI, dI, K);
    attn_dsa_indexer_kl_backward(NULL, loss2, dqI, dkI, dw, p, qI, kI, w, idx, B, T, HI, dI, K, dloss);
    float *pf = to_f32(p, np);
    float *d_p = dev_upload(g, pf, np * 4);
    for (int dmn = 0; dmn < 4; dmn++) {
        const int dm = dmn & 1, nd = dmn >> 1;
        if (dm == 1 && !gpu_attention_select_kl_supported(g, HI, dI < 32 ? 32 : dI)) continue;
        float *e_lossf = dev_poisoned(g, N * 4), *e_loss = dev_poisoned(g, N * 4);
        void *e_dqI = dev_poisoned(g, nqi * 2), *e_dkI = dev_poisoned(g, nki * 2), *e_dw = dev_poisoned(g, nw * 2);
        g->nondeterministic = nd;
        g->tuning.sparse_dense = GPU_TUNE_VARIANT(dm);
        gpu_indexer_kl_forward(g, e_lossf, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K);
        gpu_indexer_kl_backward(g, e_loss, e_dqI, e_dkI, e_dw, d_p, d_qI, d_kI, d_w, d_idx, B, T, HI, dI, K, dloss);
        g->tuning.sparse_dense = 0;
        g->nondeterministic = 0;
        const char *what[5] = {"loss (forward)", "loss (backward)", "dqI", "dkI", "dw"};
        double err[5] = {rel_err(g, e_lossf, 0, loss, N), rel_err(g, e_loss, 0, loss, N), rel_err(g, e_dqI, 1, dqI, nqi),
                         rel_err(g, e_dkI, 1, dkI, nki), rel_err(g, e_dw, 1, dw, nw)};
        const double tol[5] = {1e-3, 1e-3, 1e-2, 1e-2, 1e-2};
        for (int c = 0; c < 5; c++) {
            snprintf(name, sizeof name, "KL sparse_dense=%d%s: %s", dm, nd ? " nondet" : "", what[c]);
            check(name, err[c], tol[c]);
        }
        gpu_free(g, e_lossf); gpu_free(g, e_loss); gpu_free(g, e_dqI); gpu_free(g, e_dkI); gpu_free(g, e_dw);
    }
    gpu_free(g, d_p); gpu_free(g, d_qI); gpu_free(g, d_kI); gpu_free(g, d_w); gpu_free(g, d_sc); gpu_free(g, d_idx);
    free(pf); free(p); free(loss); free(loss2); free(dqI); free(dkI); free(dw);
    free(qib); free(kib); free(wb); free(qI); free(kI); free(w); free(sc); free(scd); free(hsc); free(idx);
    free(idx_ref); free(tmp);
}

static void run_indexer_grid(Gpu *g) {
    static const int dims[] = {8, 16, 32, 64};
    for (int HI = 1; HI <= 4; HI++)
        for (int i = 0; i < 4; i++)
            grid_case(g, HI, dims[i], (HI == 2 && dims[i] == 8) || (HI == 4 && dims[i] == 64) || (HI == 1 && dims[i] == 16));
    grid_case(g, 8, 128, 0);
}

int main(int argc, char **argv) {
    int timing = 1, checks = 1, repeats = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-timing")) timing = 0;
        else if (!strcmp(argv[i], "--timing-only")) checks = repeats = 0;
        else if (!strcmp(argv[i], "--repeat-only")) checks = timing = 0;
        else if (!strcmp(argv[i], "--compile-only")) {
            int f = sparse_kernels_compile_check("sm_80") + sparse_kernels_compile_check("sm_90");
            printf("compile check: %d failures\n", f);
            return f != 0;
        } else {
            fprintf(stderr, "usage: %s [--no-timing | --timing-only | --repeat-only | --compile-only]\n", argv[0]);
            return 2;
        }
    }
    Gpu g;
    if (gpu_init(&g, 0) != 0) { fprintf(stderr, "gpu_sparse_check: no usable GPU: %s\n", g.err); return 1; }

    static const Case cases[] = {
        /* B, T, H, KV, hd, topk, HI, dI */
        {2, 100, 16, 1, 64, 64, 4, 64},   {2, 100, 16, 4, 64, 64, 4, 64},
        {2, 100, 16, 1, 64, 512, 4, 64},  {2, 100, 16, 4, 64, 512, 4, 64},  /* k >= T: = dense */
        {1, 1000, 16, 1, 64, 64, 4, 64},  {1, 1000, 16, 4, 64, 64, 4, 64},
        {1, 1000, 16, 1, 64, 512, 4, 64}, {1, 1000, 16, 4, 64, 512, 4, 64},
        {2, 100, 16, 16, 64, 64, 4, 64},  /* MHA: one head per block */
        {1, 300, 8, 2, 32, 100, 2, 32},   /* hd 32, dI 32, k not a multiple of 16 */
        {1, 300, 4, 1, 128, 37, 8, 128},  /* hd 128, dI 128 */
        /* head widths past {32, 64, 128}: tiles of hd rounded up to 16 (zero columns in shared
           memory), or unpadded at 48 / 96 */
        {1, 300, 8, 2, 72, 100, 2, 32},   /* the guide's d_model 576 / 8 heads: hd 72 (tiles 80) */
        {2, 100, 8, 4, 72, 512, 4, 32},   /* hd 72, k >= T: = the dense flash kernel at hd 72 */
        {1, 300, 6, 2, 96, 64, 4, 64},    /* 6 heads: hd 96 */
        {1, 300, 12, 4, 48, 37, 4, 64},   /* 12 heads: hd 48 */
        {1, 200, 32, 1, 40, 50, 1, 32},   /* hd 40 (tiles 48), head blocks one by one (H/KV 32) */
        {1, 200, 8, 1, 120, 64, 2, 32},   /* hd 120 (tiles 128), MQA */
        /* past 128 (the kernels take up to 256; attn/dsa.h's room waits for these cases) */
        {1, 200, 8, 2, 192, 64, 2, 32},   /* hd 192 */
        {1, 200, 4, 1, 256, 37, 4, 64},   /* hd 256, MQA, k not a multiple of 16 */
        {2, 100, 4, 4, 200, 512, 2, 32},  /* hd 200 (tiles 208), MHA, k >= T: = the dense flash kernel */
    };
    for (size_t i = 0; checks && i < sizeof cases / sizeof cases[0]; i++) run_case(&g, &cases[i]);
    if (checks) run_indexer_grid(&g);

    /* bit-reproducibility on bigger shapes: several stage chunks (2048 tokens of 512 slots
       at hd 64), head blocks launched one by one (KV > 1, H/KV > 16), chunk edges inside a
       sequence, the 135M model's attention shape, hd / dI 32 and 128 */
    static const Case rcases[] = {
        /* B, T, H, KV, hd, topk, HI, dI */
        {2, 1000, 16, 1, 64, 64, 4, 64},  {2, 2048, 16, 1, 64, 512, 4, 64}, {2, 2048, 9, 3, 64, 512, 4, 64},
        {1, 8192, 16, 1, 64, 512, 4, 64}, {1, 4096, 64, 1, 64, 512, 4, 64}, {1, 3000, 16, 4, 64, 512, 4, 64},
        {2, 1000, 8, 2, 32, 100, 2, 32},  {1, 2000, 4, 1, 128, 37, 8, 128},
        {2, 2048, 8, 2, 72, 512, 4, 64},  {1, 2000, 12, 4, 48, 100, 2, 16}, /* hd 72 (padded), 48 */
        {1, 2048, 8, 2, 256, 512, 4, 64}, /* hd 256 */
    };
    for (size_t i = 0; repeats && i < sizeof rcases / sizeof rcases[0]; i++) repro_case(&g, &rcases[i]);

    if (timing) {
        printf("\ntiming on the device: median ms; sel = indexer scores + top-k; sf / sfb = sparse fwd / "
               "fwd+bwd (bwd emits p);\nklb = indexer KL fwd+bwd; df / dfb = dense causal flash fwd / fwd+bwd; "
               "speedups: df/(sel+sf), dfb/(sel+sfb);\nsf0 / sfb0 = the gathers (sparse_dense=0), "
               "sfD / sfbD = dense tiles under the selection mask (=1; -1: not on this GPU), the default picks by cost;\n"
               "klb0 / klbD = the KL the same two ways;\n"
               "modes (of the gathers): sfb1 / sfb2 / sfb3 = sfb with sparse_bwd=1 / 2 / 3, sfb9 = with "
               "sparse_bwd=9 (NO dk/dv reductions: their cost = sfb - sfb9), klb1 = klb with "
               "sparse_kl=1, sel1 = sel with sparse_topk=1\n");
        printf("%6s %3s %3s %3s %5s | %8s %8s %8s %8s | %8s %8s | %7s %7s | %8s %8s %8s %8s %8s %8s | %8s %8s %8s %8s %8s %8s\n",
               "T", "B", "H", "KV", "k", "sel", "sf", "sfb", "klb", "df", "dfb", "fwd", "f+b", "sf0", "sfb0", "sfD", "sfbD",
               "klb0", "klbD",
               "sfb1", "sfb2", "sfb3", "sfb9", "klb1", "sel1");
        static const Case tcases[] = {
            {32, 2048, 16, 1, 64, 512, 4, 64}, {8, 8192, 16, 1, 64, 512, 4, 64}, {4, 16384, 16, 1, 64, 512, 4, 64},
            {8, 8192, 16, 4, 64, 512, 4, 64},  /* GQA: 4 heads per block */
            {16, 2048, 9, 3, 64, 512, 4, 64},  /* the 135M model's attention */
            {2, 8192, 64, 1, 64, 512, 4, 64},  /* DeepSeek's wide MQA group (64 heads) */
            {16, 2048, 8, 2, 72, 512, 4, 64},  /* the guide's hd 72 (tiles 80; the gathers only) */
            {16, 2048, 8, 2, 64, 512, 4, 64},  /* the same at hd 64: sf0 / sfb0 against the row above
                                                  give the cost of hd 72's padded tiles */
        };
        for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) run_timing(&g, &tcases[i]);
    }
    gpu_sparse_release(&g);
    gpu_attention_release(&g);
    gpu_free_all(&g);
    printf("\n%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
