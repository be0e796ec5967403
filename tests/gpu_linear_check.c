/* gpu_linear_check.c - the Gated DeltaNet kernels (attn/gdn.cu.h) against attn/gdn.h's
   CPU reference, then timings next to dense causal flash attention.

   Build and run (device machine):   make tests/gpu_linear_check && ./tests/gpu_linear_check
     [--no-timing | --wide-only | --timing-only | --heads-timing | --determinism-only | --compile-only]
     (--compile-only: no GPU, NVRTC only; --determinism-only: the section below alone;
     --wide-only: the gdn_wtile=2 checks past 128 alone, cases and block)

   The reference runs in fp32 (ops_real = float, gpu == NULL) on the same bf16-rounded inputs and
   weights. Every GPU output is first poisoned with NaN. Each check prints the relative L2 error
   ||gpu - ref|| / ||ref|| and its bound; a non-finite value fails. Bounds (bf16 outputs carry
   ~2e-3 relative rounding by themselves):
     delta rule, products on fp32 FMAs (tuning gdn_mma=0): out 5e-3, final state 1e-4,
       dq dk dv 5e-3, dg dbeta (fp32 outputs) 2e-3
     delta rule, tensor cores (default): operands rounded to bf16 inside the chunk, so
       out and state 1.5e-2, dq dk dv 2e-2, dg dbeta 5e-2, each raised to 2 s where the output's
       condition s is above half of it (core_condition: the reference's largest relative change
       over two reruns with q, k, v, dout multiplied elementwise by 1 + u 2^-8; such a check
       prints "[2 s]"). One token's out is beta (q.k) v: with q and k nearly orthogonal, rounding
       moves q.k by many times 2^-8 of itself (the D 200, T 1 case: |q.k| = ||q o k|| / 65)
     small ops (conv, L2 norm, gates, gated RMSNorm): bf16 outputs 5e-3, fp32 outputs 1e-4,
       weight gradients (fp32 sums of bf16 products) 5e-3
     the whole block (d 128, H 2, D 64): out 2e-2, dx 3e-2, each weight gradient 5e-2
       (gpu_check.c's bounds for a whole attention block)
   Head dims: the delta rule at D 64 and at 32, 40, 48 (padded to the 64-wide tile inside the
   kernels: the bounds above) and 72, 96, 128, 256 (the wide-head kernels, tuning gdn_wtile=0 and
   past 128: fp32 products, so the fp32 bounds whatever gdn_mma says), then 72, 80, 96, 128 on the
   wide tiles (gdn_wtile=1, the default: both gdn_mma products and their bounds), 136, 192, 200,
   256 on the tiles past 128 (gdn_wtile=2, likewise) with a d 512 block of 2 heads of 256, and the
   guide's d 576 block with 8 heads of 72 on the wide-head kernels (the blocks below take the tiles);
   the small ops at D 64, 72, 256; blocks at d 128 with 2
   heads of 64 and 4 of 32, and the ablation guide's d 576 with 8 heads of 72, 6 of 96, 12 of 48.
   Determinism (after the checks): with Gpu.nondeterministic = 0 (the default) the delta rule
   (forward + backward, 135M shape B 16 x T 2048, H 9, both tuning.gdn_par organizations), the
   small ops' backward passes (conv, gates, gated RMSNorm at the same N) and a whole block
   (d 576, H 9, B 4 x T 1024, both organizations) each run twice; every output is compared
   byte for byte ("repeat NAME ... err" = bytes differing, tolerance 0). The same cases then
   run with nondeterministic = 1 and only report "info N of M bytes differ" (expected nonzero
   for dg / dbeta and the weight gradients: the atomics' order). A block that differs while
   the kernels' cases repeat points at the GEMMs (ops.h / gpu.h), not at this file's kernels.
   Then the cost table: the delta rule's forward+backward at the timing shapes and a whole
   block at B 16 x T 2048, median ms with nondeterministic 0 and 1 and the difference in %.
   Timing (median of 5 after 2 warm-ups, cuEvent): B*T = 65536 tokens, H 16, D 64,
   T = 2048, 8192, 16384: the delta rule's forward and forward+backward, dense causal
   gpu_attention_forward/backward of the same shape, and the ratio dense / delta; then the
   delta rule by head dim (T 2048, B 32, H = 1024 / D, D 32 .. 256), and with the wide tiles
   where they apply (D 72 .. 128).
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn/gdn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_pass, n_fail;

static void check(const char *what, double err, double tol) {
    int ok = isfinite(err) && err >= 0 && err <= tol;
    printf("  %-34s %s err %.3e (tol %.2g)\n", what, ok ? "ok  " : "FAIL", err, tol);
    fflush(stdout);
    if (ok) n_pass++; else n_fail++;
}

/* ---------------------------------------------------------------- host bf16, random */
#include "gpu_test.h"
static float bf2f(uint16_t h) { return (float)bf2d(h); }

static float *fnew(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) { fprintf(stderr, "out of host memory\n"); exit(1); }
    return p;
}
static float *frand(size_t n, double sd) {
    float *p = fnew(n);
    for (size_t i = 0; i < n; i++) p[i] = (float)(sd * nrand());
    return p;
}
/* round a host array to bf16 values in place (the reference then sees exactly the GPU's inputs) */
static void round_bf16(float *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = bf2f(f2bf(p[i])); }

static void *up_bf16(Gpu *g, const float *h, size_t n) {
    uint16_t *b = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) b[i] = f2bf(h[i]);
    void *d = gpu_alloc(g, n * 2 + 16);
    gpu_upload(g, d, b, n * 2);
    free(b);
    return d;
}
static float *up_f32(Gpu *g, const float *h, size_t n) {
    float *d = gpu_alloc(g, n * 4 + 16);
    gpu_upload(g, d, h, n * 4);
    return d;
}
static void *dev_nan(Gpu *g, size_t bytes) {
    void *h = malloc(bytes + 16);
    memset(h, 0xFF, bytes + 16);
    void *d = gpu_alloc(g, bytes + 16);
    gpu_upload(g, d, h, bytes + 16);
    free(h);
    return d;
}

/* relative L2 error of rows `rows` of `cols` (row stride ld) of host array h (bf16 or fp32)
   against ref; NAN where a value is not finite */
static double rel_strided_host(const void *h, int is_bf16, const float *ref, size_t rows, size_t cols, size_t ld) {
    double num = 0, den = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * ld + c;
            double x = is_bf16 ? bf2f(((const uint16_t *)h)[i]) : ((const float *)h)[i];
            if (!isfinite(x)) return NAN;
            num += (x - ref[i]) * (x - ref[i]);
            den += (double)ref[i] * ref[i];
        }
    return sqrt(num / (den > 0 ? den : 1));
}
/* the same of a device array */
static double rel_err_strided(Gpu *g, const void *dev, int is_bf16, const float *ref, size_t rows, size_t cols,
                              size_t ld) {
    size_t n = rows ? (rows - 1) * ld + cols : 0; /* the last row ends at its last column */
    void *h = malloc(n * (is_bf16 ? 2 : 4) + 4);
    gpu_download(g, h, dev, n * (is_bf16 ? 2 : 4));
    double e = rel_strided_host(h, is_bf16, ref, rows, cols, ld);
    free(h);
    return e;
}
static double rel_errf(Gpu *g, const void *dev, int is_bf16, const float *ref, size_t n) {
    return rel_err_strided(g, dev, is_bf16, ref, 1, n, n);
}

static int mma_mode(const Gpu *g) { return gdn_mma_mode_(g); }

/* ---------------------------------------------------------------- the delta rule */

/* The condition of the reference's outputs under tensor-core products: the kernels round their
   intermediate operands to bf16 (relative 2^-8 at most), so an output that is a small
   difference of large terms moves by far more than 2^-8 of itself (a single token's out is
   beta (q.k) v: with q and k nearly orthogonal its relative error is that of q.k, which
   rounding k's terms can move by 2^-8 ||q o k|| / |q.k|). s[i]: the largest relative change of
   output i (out, final state, out from a zero state, dq, dk, dv, dg, dbeta) over 2 reruns of the
   CPU reference with q, k, v and dout each multiplied elementwise by 1 + u 2^-8, u uniform in
   (-1, 1), from a generator of its own (the shared one's draws stay those of every case).
   ref[i]: the unperturbed output i (dq, dk, dv: column views of one [N, 3HD] array). */
static void core_condition(const float *qkv, const float *dout, const float *gd, const float *beta, const float *st0,
                           int B, int T, int H, int D, float scale, const float *ref[8], double s[8]) {
    const int HD = H * D, ld = 3 * HD;
    const size_t N = (size_t)B * T, ns = (size_t)B * H * D * D;
    float *pq = fnew(N * ld), *pd = fnew(N * HD), *o = fnew(N * HD), *st = fnew(ns), *o0 = fnew(N * HD);
    float *dqkv = fnew(N * ld), *dg = fnew(N * H), *db = fnew(N * H), *ws = fnew(attn_gdn_block_ws_elems(B, T, H, D, 64));
    uint64_t rs = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 8; i++) s[i] = 0;
    for (int rep = 0; rep < 2; rep++) {
        for (size_t i = 0; i < N * ld; i++) pq[i] = qkv[i] * (float)(1 + (2 * urand_at(&rs) - 1) / 256);
        for (size_t i = 0; i < N * HD; i++) pd[i] = dout[i] * (float)(1 + (2 * urand_at(&rs) - 1) / 256);
        memcpy(st, st0, ns * 4);
        attn_gdn_chunk_forward(NULL, o, st, pq, pq + HD, pq + 2 * HD, ld, gd, beta, B, T, H, D, scale, 64);
        attn_gdn_chunk_forward(NULL, o0, NULL, pq, pq + HD, pq + 2 * HD, ld, gd, beta, B, T, H, D, scale, 64);
        attn_gdn_chunk_backward(NULL, dqkv, dqkv + HD, dqkv + 2 * HD, dg, db, pd, pq, pq + HD, pq + 2 * HD, ld, gd, beta,
                                B, T, H, D, scale, 64, ws);
        /* each output as rows x cols at row stride ld */
        const struct { const float *got; size_t rows, cols, ld; } out[8] = {
            {o, 1, N * HD, N * HD}, {st, 1, ns, ns}, {o0, 1, N * HD, N * HD}, {dqkv, N, HD, ld},
            {dqkv + HD, N, HD, ld}, {dqkv + 2 * HD, N, HD, ld}, {dg, 1, N * H, N * H}, {db, 1, N * H, N * H}};
        for (int i = 0; i < 8; i++) {
            double c = rel_strided_host(out[i].got, 0, ref[i], out[i].rows, out[i].cols, out[i].ld);
            if (c > s[i]) s[i] = c;
        }
    }
    free(pq); free(pd); free(o); free(st); free(o0); free(dqkv); free(dg); free(db); free(ws);
}
/* check with bound max(tol, 2 s): s the output's condition (core_condition); says when 2 s set it */
static void check_cond(const char *what, double err, double tol, double s) {
    if (2 * s <= tol) { check(what, err, tol); return; }
    char name[96];
    snprintf(name, sizeof name, "%s [2 s]", what);
    check(name, err, 2 * s);
    printf("    (ill-conditioned: the reference moves by s = %.3g under 2^-8 input noise, above tol %.2g / 2)\n", s, tol);
}

typedef struct { int B, T, H, D; } CoreCase;

static void unit_heads(float *x, size_t N, int ld, int H, int D) {
    for (size_t n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            float *p = x + n * ld + (size_t)h * D;
            double ss = 0;
            for (int i = 0; i < D; i++) ss += (double)p[i] * p[i];
            for (int i = 0; i < D; i++) p[i] = (float)(p[i] / sqrt(ss));
        }
}

static void core_case(Gpu *g, const CoreCase *c) {
    const int B = c->B, T = c->T, H = c->H, D = c->D, HD = H * D, ld = 3 * HD;
    const size_t N = (size_t)B * T;
    const float scale = 1 / sqrtf((float)D);
    /* D > 64 runs the wide-head kernels (fp32 products whatever gdn_mma says), or with
       tuning.gdn_wtile the wide tiles (gdn_*_w up to 128, gdn_*_x past it: gdn_mma's products) */
    const int wt = gdn_wtile_(g, D, B * H);
    int mma = mma_mode(g) && (D <= 64 || wt);
    printf("delta rule B=%d T=%d H=%d D=%d (q/k/v as column views, ld %d), %s products%s\n", B, T, H, D, ld,
           mma ? "tensor-core" : "fp32", wt == 2 ? ", wide tiles past 128" : wt ? ", wide tiles" : D > 64 ? ", wide-head kernels" : D < 64 ? ", padded to the 64 tile" : "");
    /* q | k | v in one [N, 3HD] buffer, as the block passes them */
    float *qkv = frand(N * ld, 1), *gd = fnew(N * H), *beta = fnew(N * H), *dout = frand(N * HD, 1);
    unit_heads(qkv, N, ld, H, D);
    unit_heads(qkv + HD, N, ld, H, D);
    round_bf16(qkv, N * ld);
    round_bf16(dout, N * HD);
    for (size_t i = 0; i < N * H; i++) {
        /* even heads decay slowly (about e^-1 over a chunk: the state passed between chunks
           matters), odd heads fast (about e^-15: the in-chunk decay terms dominate) */
        gd[i] = (float)(-log1p(exp(nrand())) * (i % H % 2 ? 0.3 : 0.02));
        beta[i] = (float)(1 / (1 + exp(-nrand())));
    }
    size_t ns = (size_t)B * H * D * D;
    float *st0 = frand(ns, 0.2);
    /* reference */
    float *o = fnew(N * HD), *st = fnew(ns), *dqkv = fnew(N * ld), *dg = fnew(N * H), *db = fnew(N * H);
    float *ws = fnew(attn_gdn_block_ws_elems(B, T, H, D, 64));
    memcpy(st, st0, ns * 4);
    attn_gdn_chunk_forward(NULL, o, st, qkv, qkv + HD, qkv + 2 * HD, ld, gd, beta, B, T, H, D, scale, 64);
    float *o0 = fnew(N * HD); /* zero initial state: the backward's forward */
    attn_gdn_chunk_forward(NULL, o0, NULL, qkv, qkv + HD, qkv + 2 * HD, ld, gd, beta, B, T, H, D, scale, 64);
    attn_gdn_chunk_backward(NULL, dqkv, dqkv + HD, dqkv + 2 * HD, dg, db, dout, qkv, qkv + HD, qkv + 2 * HD, ld,
                          gd, beta, B, T, H, D, scale, 64, ws);
    /* GPU */
    void *d_qkv = up_bf16(g, qkv, N * ld), *d_do = up_bf16(g, dout, N * HD);
    float *d_g = up_f32(g, gd, N * H), *d_b = up_f32(g, beta, N * H), *d_st = up_f32(g, st0, ns);
    void *d_o = dev_nan(g, N * HD * 2), *d_dqkv = dev_nan(g, N * ld * 2);
    float *d_dg = dev_nan(g, N * H * 4), *d_db = dev_nan(g, N * H * 4);
    float *d_ws = dev_nan(g, attn_gdn_block_ws_elems(B, T, H, D, 64) * 4);
    char *q = d_qkv, *dq = d_dqkv;
    attn_gdn_chunk_forward(g, d_o, d_st, q, q + 2 * HD, q + 4 * HD, ld, d_g, d_b, B, T, H, D, scale, 64);
    gpu_sync(g);
    double to = mma ? 1.5e-2 : 5e-3, ts = mma ? 1.5e-2 : 1e-4, tg = mma ? 2e-2 : 5e-3, tgb = mma ? 5e-2 : 2e-3;
    /* tensor-core products: each bound at least twice the output's condition (core_condition);
       fp32 products round no operand, so their bounds stand alone */
    double s[8] = {0};
    if (mma) {
        const float *ref[8] = {o, st, o0, dqkv, dqkv + HD, dqkv + 2 * HD, dg, db};
        core_condition(qkv, dout, gd, beta, st0, B, T, H, D, scale, ref, s);
    }
    check_cond("out (initial state given)", rel_errf(g, d_o, 1, o, N * HD), to, s[0]);
    check_cond("final state", rel_errf(g, d_st, 0, st, ns), ts, s[1]);
    attn_gdn_recurrent(g, d_o, NULL, q, q + 2 * HD, q + 4 * HD, ld, d_g, d_b, B, T, H, D, scale);
    check_cond("out (zero state, recurrent entry)", rel_errf(g, d_o, 1, o0, N * HD), to, s[2]);
    attn_gdn_chunk_backward(g, dq, dq + 2 * HD, dq + 4 * HD, d_dg, d_db, d_do, q, q + 2 * HD, q + 4 * HD, ld, d_g,
                          d_b, B, T, H, D, scale, 64, d_ws);
    gpu_sync(g);
    check_cond("dq", rel_err_strided(g, d_dqkv, 1, dqkv, N, HD, ld), tg, s[3]);
    check_cond("dk", rel_err_strided(g, dq + 2 * HD, 1, dqkv + HD, N, HD, ld), tg, s[4]);
    check_cond("dv", rel_err_strided(g, dq + 4 * HD, 1, dqkv + 2 * HD, N, HD, ld), tg, s[5]);
    check_cond("dg", rel_errf(g, d_dg, 0, dg, N * H), tgb, s[6]);
    check_cond("dbeta", rel_errf(g, d_db, 0, db, N * H), tgb, s[7]);
    gpu_free(g, d_qkv); gpu_free(g, d_do); gpu_free(g, d_g); gpu_free(g, d_b); gpu_free(g, d_st);
    gpu_free(g, d_o); gpu_free(g, d_dqkv); gpu_free(g, d_dg); gpu_free(g, d_db); gpu_free(g, d_ws);
    free(qkv); free(gd); free(beta); free(dout); free(st0); free(o); free(st); free(dqkv); free(dg); free(db);
    free(ws); free(o0);
}

/* ---------------------------------------------------------------- the small ops */
static void small_ops(Gpu *g, int D) {
    const int B = 2, T = 77, N = B * T, H = 3, HD = H * D, P = 4 * HD + 2 * H, K = 4;
    printf("small ops N=%d H=%d D=%d\n", N, H, D);
    float *proj = frand((size_t)N * P, 1), *wc = frand((size_t)3 * HD * K, 0.5), *dpost = frand((size_t)N * 3 * HD, 1);
    float *wn = frand(D, 0.3), *alog = frand(H, 0.5), *dtb = frand(H, 0.5);
    for (int i = 0; i < D; i++) wn[i] += 1;
    round_bf16(proj, (size_t)N * P); round_bf16(wc, (size_t)3 * HD * K); round_bf16(dpost, (size_t)N * 3 * HD);
    round_bf16(wn, D); round_bf16(alog, H); round_bf16(dtb, H);
    void *d_proj = up_bf16(g, proj, (size_t)N * P), *d_wc = up_bf16(g, wc, (size_t)3 * HD * K);
    void *d_dpost = up_bf16(g, dpost, (size_t)N * 3 * HD), *d_wn = up_bf16(g, wn, D);
    void *d_alog = up_bf16(g, alog, H), *d_dtb = up_bf16(g, dtb, H);
    char *pj = d_proj;

    /* conv + SiLU */
    float *pre = fnew((size_t)N * 3 * HD), *post = fnew((size_t)N * 3 * HD), *din = fnew((size_t)N * P),
          *dwc = fnew((size_t)3 * HD * K);
    attn_gdn_conv_silu_forward(NULL, pre, post, proj, P, wc, N, T, 3 * HD, K);
    void *d_pre = dev_nan(g, (size_t)N * 3 * HD * 2), *d_post = dev_nan(g, (size_t)N * 3 * HD * 2);
    attn_gdn_conv_silu_forward(g, d_pre, d_post, d_proj, P, d_wc, N, T, 3 * HD, K);
    check("conv pre", rel_errf(g, d_pre, 1, pre, (size_t)N * 3 * HD), 5e-3);
    check("conv silu", rel_errf(g, d_post, 1, post, (size_t)N * 3 * HD), 5e-3);
    /* the backward reads the GPU's bf16 pre: give the reference the same */
    uint16_t *hb = malloc((size_t)N * 3 * HD * 2);
    gpu_download(g, hb, d_pre, (size_t)N * 3 * HD * 2);
    for (size_t i = 0; i < (size_t)N * 3 * HD; i++) pre[i] = bf2f(hb[i]);
    free(hb);
    attn_gdn_conv_silu_backward(NULL, din, P, dwc, dpost, pre, proj, wc, N, T, 3 * HD, K);
    void *d_din = dev_nan(g, (size_t)N * P * 2);
    float *d_dwc = up_f32(g, fnew((size_t)3 * HD * K), (size_t)3 * HD * K);
    attn_gdn_conv_silu_backward(g, d_din, P, d_dwc, d_dpost, d_pre, d_proj, d_wc, N, T, 3 * HD, K);
    check("conv backward dx", rel_err_strided(g, d_din, 1, din, N, 3 * HD, P), 5e-3);
    check("conv backward dw", rel_errf(g, d_dwc, 0, dwc, (size_t)3 * HD * K), 5e-3);

    /* L2 norm (in place on a copy of proj's first 2HD columns, row stride P) */
    float *x = malloc(sizeof(float) * N * P), *rn = fnew((size_t)N * 2 * H);
    memcpy(x, proj, sizeof(float) * N * P);
    attn_gdn_l2norm_forward(NULL, x, P, rn, N, 2 * H, D, 1e-6f);
    void *d_x = up_bf16(g, proj, (size_t)N * P);
    float *d_rn = dev_nan(g, (size_t)N * 2 * H * 4);
    attn_gdn_l2norm_forward(g, d_x, P, d_rn, N, 2 * H, D, 1e-6f);
    check("l2norm y", rel_err_strided(g, d_x, 1, x, N, 2 * HD, P), 5e-3);
    check("l2norm 1/|x|", rel_errf(g, d_rn, 0, rn, (size_t)N * 2 * H), 1e-4);
    /* backward with the GPU's y as the reference's y */
    hb = malloc((size_t)N * P * 2);
    gpu_download(g, hb, d_x, (size_t)N * P * 2);
    for (size_t i = 0; i < (size_t)N * P; i++) x[i] = bf2f(hb[i]);
    free(hb);
    float *dy = malloc(sizeof(float) * N * 3 * HD);
    memcpy(dy, dpost, sizeof(float) * N * 3 * HD);
    attn_gdn_l2norm_backward(NULL, dy, 3 * HD, x, P, rn, N, 2 * H, D);
    void *d_dy = up_bf16(g, dpost, (size_t)N * 3 * HD);
    attn_gdn_l2norm_backward(g, d_dy, 3 * HD, d_x, P, d_rn, N, 2 * H, D);
    check("l2norm backward", rel_err_strided(g, d_dy, 1, dy, N, 2 * HD, 3 * HD), 5e-3);

    /* gates */
    float *gg = fnew((size_t)N * H), *bb = fnew((size_t)N * H), *dgg = frand((size_t)N * H, 1),
          *dbb = frand((size_t)N * H, 1), *dab = fnew((size_t)N * P), *dA = fnew(H), *ddt = fnew(H);
    attn_gdn_gates_forward(NULL, gg, bb, proj + 4 * HD, proj + 4 * HD + H, P, alog, dtb, N, H);
    float *d_gg = dev_nan(g, (size_t)N * H * 4), *d_bb = dev_nan(g, (size_t)N * H * 4);
    attn_gdn_gates_forward(g, d_gg, d_bb, pj + 2 * 4 * HD, pj + 2 * (4 * HD + H), P, d_alog, d_dtb, N, H);
    check("gates g", rel_errf(g, d_gg, 0, gg, (size_t)N * H), 1e-4);
    check("gates beta", rel_errf(g, d_bb, 0, bb, (size_t)N * H), 1e-4);
    attn_gdn_gates_backward(NULL, dab + 4 * HD, dab + 4 * HD + H, P, dA, ddt, dgg, dbb, proj + 4 * HD,
                          proj + 4 * HD + H, alog, dtb, N, H);
    void *d_dab = dev_nan(g, (size_t)N * P * 2);
    float *d_dgg = up_f32(g, dgg, (size_t)N * H), *d_dbb = up_f32(g, dbb, (size_t)N * H);
    float *d_dA = up_f32(g, fnew(H), H), *d_ddt = up_f32(g, fnew(H), H);
    char *dab_ = d_dab;
    attn_gdn_gates_backward(g, dab_ + 2 * 4 * HD, dab_ + 2 * (4 * HD + H), P, d_dA, d_ddt, d_dgg, d_dbb,
                          pj + 2 * 4 * HD, pj + 2 * (4 * HD + H), d_alog, d_dtb, N, H);
    check("gates backward da", rel_err_strided(g, dab_ + 2 * 4 * HD, 1, dab + 4 * HD, N, H, P), 5e-3);
    check("gates backward db", rel_err_strided(g, dab_ + 2 * (4 * HD + H), 1, dab + 4 * HD + H, N, H, P), 5e-3);
    check("gates backward dA_log", rel_errf(g, d_dA, 0, dA, H), 1e-4);
    check("gates backward ddt_bias", rel_errf(g, d_ddt, 0, ddt, H), 1e-4);

    /* gated RMSNorm: o = proj's first HD columns copied dense, gate = proj's g columns */
    float *o = fnew((size_t)N * HD), *y = fnew((size_t)N * HD), *rstd = fnew((size_t)N * H), *dgo = frand((size_t)N * HD, 1);
    round_bf16(dgo, (size_t)N * HD);
    for (int n = 0; n < N; n++) memcpy(o + (size_t)n * HD, proj + (size_t)n * P + HD, sizeof(float) * HD);
    attn_gdn_gated_rmsnorm_forward(NULL, y, rstd, o, proj + 3 * HD, P, wn, N, H, D, 1e-5f);
    void *d_o = up_bf16(g, o, (size_t)N * HD), *d_y = dev_nan(g, (size_t)N * HD * 2);
    float *d_rstd = dev_nan(g, (size_t)N * H * 4);
    attn_gdn_gated_rmsnorm_forward(g, d_y, d_rstd, d_o, pj + 2 * 3 * HD, P, d_wn, N, H, D, 1e-5f);
    check("gated rmsnorm y", rel_errf(g, d_y, 1, y, (size_t)N * HD), 5e-3);
    check("gated rmsnorm rstd", rel_errf(g, d_rstd, 0, rstd, (size_t)N * H), 1e-4);
    float *dO = fnew((size_t)N * HD), *dgate = fnew((size_t)N * P), *dwn = fnew(D);
    attn_gdn_gated_rmsnorm_backward(NULL, dO, dgate + 3 * HD, P, dwn, dgo, o, proj + 3 * HD, wn, rstd, N, H, D);
    void *d_dgo = up_bf16(g, dgo, (size_t)N * HD), *d_dO = dev_nan(g, (size_t)N * HD * 2),
         *d_dgate = dev_nan(g, (size_t)N * P * 2);
    float *d_dwn = up_f32(g, fnew(D), D);
    char *dgt = d_dgate;
    attn_gdn_gated_rmsnorm_backward(g, d_dO, dgt + 2 * 3 * HD, P, d_dwn, d_dgo, d_o, pj + 2 * 3 * HD, d_wn, d_rstd,
                                  N, H, D);
    check("gated rmsnorm backward do", rel_errf(g, d_dO, 1, dO, (size_t)N * HD), 5e-3);
    check("gated rmsnorm backward dgate", rel_err_strided(g, dgt + 2 * 3 * HD, 1, dgate + 3 * HD, N, HD, P), 5e-3);
    check("gated rmsnorm backward dw", rel_errf(g, d_dwn, 0, dwn, D), 5e-3);
    gpu_sync(g);
    /* host buffers only: the device ones go with gpu_free_all at the end */
    free(proj); free(wc); free(dpost); free(wn); free(alog); free(dtb); free(pre); free(post); free(din); free(dwc);
    free(x); free(rn); free(dy); free(gg); free(bb); free(dgg); free(dbb); free(dab); free(dA); free(ddt);
    free(o); free(y); free(rstd); free(dgo); free(dO); free(dgate); free(dwn);
}

/* ---------------------------------------------------------------- the block */
static void block_check(Gpu *g, int d_model, int H, int D, int B, int T) {
    AttnGdnDims d = {d_model, H, D, 4, 64, 1e-5f};
    char err[128];
    if (attn_gdn_block_resolve(&d, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    const size_t N = (size_t)B * T, np = attn_gdn_block_param_count(&d), C = d.d_model;
    printf("block d=%d H=%d D=%d B=%d T=%d (%zu params)\n", d.d_model, d.n_heads, d.head_dim, B, T, np);
    float *w = frand(np, 0.08), *x = frand(N * C, 1), *dout = frand(N * C, 1);
    attn_gdn_block_param_init_special(&d, w, 3);
    round_bf16(w, np); round_bf16(x, N * C); round_bf16(dout, N * C);
    /* reference */
    size_t ae, se, sae, sse;
    attn_gdn_block_act_sizes(&d, B, T, &ae, &se);
    attn_gdn_block_scratch_sizes(&d, B, T, &sae, &sse);
    float *act = fnew(ae), *stat = fnew(se), *sact = fnew(sae), *sstat = fnew(sse), *out = fnew(N * C),
          *dx = fnew(N * C), *dw = fnew(np);
    AttnGdnActs a;
    AttnGdnScratch s;
    attn_gdn_block_acts_bind(&d, &a, NULL, act, stat, B, T);
    attn_gdn_block_scratch_bind(&d, &s, NULL, sact, sstat, B, T);
    attn_gdn_block_forward(NULL, &d, w, &a, x, out, B, T);
    attn_gdn_block_backward(NULL, &d, w, dw, &a, &s, x, dout, dx, B, T);
    /* GPU */
    void *d_w = up_bf16(g, w, np), *d_x = up_bf16(g, x, N * C), *d_do = up_bf16(g, dout, N * C);
    void *d_act = dev_nan(g, ae * 2), *d_sact = dev_nan(g, sae * 2), *d_out = dev_nan(g, N * C * 2),
         *d_dx = dev_nan(g, N * C * 2);
    float *d_stat = dev_nan(g, se * 4), *d_sstat = dev_nan(g, sse * 4), *d_dw = up_f32(g, fnew(np), np);
    AttnGdnActs ga;
    AttnGdnScratch gs;
    attn_gdn_block_acts_bind(&d, &ga, g, d_act, d_stat, B, T);
    attn_gdn_block_scratch_bind(&d, &gs, g, d_sact, d_sstat, B, T);
    attn_gdn_block_forward(g, &d, d_w, &ga, d_x, d_out, B, T);
    attn_gdn_block_backward(g, &d, d_w, d_dw, &ga, &gs, d_x, d_do, d_dx, B, T);
    gpu_sync(g);
    check("block out", rel_errf(g, d_out, 1, out, N * C), 2e-2);
    check("block dx", rel_errf(g, d_dx, 1, dx, N * C), 3e-2);
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(&d, p);
    for (int i = 0; i < GDN_N_PARAMS; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "block d%s", p[i].name);
        check(nm, rel_errf(g, d_dw + p[i].offset, 0, dw + p[i].offset, p[i].numel), 5e-2);
    }
    gpu_free(g, d_w); gpu_free(g, d_x); gpu_free(g, d_do); gpu_free(g, d_act); gpu_free(g, d_sact);
    gpu_free(g, d_out); gpu_free(g, d_dx); gpu_free(g, d_stat); gpu_free(g, d_sstat); gpu_free(g, d_dw);
    free(w); free(x); free(dout); free(act); free(stat); free(sact); free(sstat); free(out); free(dx); free(dw);
}

/* ---------------------------------------------------------------- determinism */
/* Gpu.nondeterministic == 0 (the default) promises bit-identical results run after run: each
   case below runs twice and every output is compared byte for byte ("repeat" lines: bytes
   differing, which must be 0). Outputs accumulated into (+=) are zeroed before each run, the
   others poisoned (0xFF bytes) so a run cannot pass by leaving the previous one's values in
   place. With nondeterministic = 1 the same cases only report how many bytes differed: the
   atomics' order usually changes something there, which shows the comparison has teeth. */
typedef struct { const char *name; void *dev; size_t bytes; int accum; } RepOut;

static void repeat_check(Gpu *g, const char *what, void (*run)(Gpu *, void *), void *ctx, const RepOut *outs, int n) {
    unsigned char *first[16];
    int must = !g->nondeterministic;
    printf("repeat %s (nondeterministic = %d)\n", what, g->nondeterministic);
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < n; i++)
            CU_CHECK(gpu_cu()->cuMemsetD8Async((CUdeviceptr)(uintptr_t)outs[i].dev, outs[i].accum ? 0 : 0xFF, outs[i].bytes,
                                     g->stream));
        run(g, ctx);
        gpu_sync(g);
        for (int i = 0; i < n; i++) {
            unsigned char *h = malloc(outs[i].bytes + 1);
            gpu_download(g, h, outs[i].dev, outs[i].bytes);
            if (r == 0) { first[i] = h; continue; }
            size_t diff = 0;
            for (size_t b = 0; b < outs[i].bytes; b++) diff += h[b] != first[i][b];
            char nm[80];
            snprintf(nm, sizeof nm, "repeat %s", outs[i].name);
            if (must) check(nm, (double)diff, 0);
            else printf("  %-34s info %zu of %zu bytes differ\n", nm, diff, outs[i].bytes);
            free(h);
            free(first[i]);
        }
    }
    fflush(stdout);
}

/* the delta rule alone: forward (initial state given) + backward */
typedef struct {
    int B, T, H;
    void *qkv, *dout, *o, *dqkv;
    float *g, *beta, *st, *st0, *dg, *db, *ws;
} RepCore;
static void rep_core_run(Gpu *g, void *p) {
    RepCore *c = p;
    const int D = 64, HD = c->H * D, ld = 3 * HD;
    const float scale = 0.125f;
    char *q = c->qkv, *dq = c->dqkv;
    gpu_upload(g, c->st, c->st0, (size_t)c->B * c->H * D * D * 4); /* the state is read and written */
    gpu_gdn_forward(g, c->o, c->st, q, q + 2 * HD, q + 4 * HD, ld, c->g, c->beta, c->B, c->T, c->H, D, scale);
    gpu_gdn_backward(g, dq, dq + 2 * HD, dq + 4 * HD, c->dg, c->db, c->dout, q, q + 2 * HD, q + 4 * HD, ld, c->g,
                     c->beta, c->B, c->T, c->H, D, scale, c->ws);
}
static void repeat_core(Gpu *g, int B, int T, int H) {
    const int D = 64, HD = H * D, ld = 3 * HD;
    const size_t N = (size_t)B * T, ns = (size_t)B * H * D * D;
    RepCore c = {B, T, H, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    float *qkv = frand(N * ld, 1), *dout = frand(N * HD, 1), *gd = fnew(N * H), *be = fnew(N * H);
    unit_heads(qkv, N, ld, H, D);
    unit_heads(qkv + HD, N, ld, H, D);
    for (size_t i = 0; i < N * H; i++) {
        gd[i] = (float)(-log1p(exp(nrand())) * (i % H % 2 ? 0.3 : 0.02));
        be[i] = (float)(1 / (1 + exp(-nrand())));
    }
    c.st0 = frand(ns, 0.2);
    c.qkv = up_bf16(g, qkv, N * ld); c.dout = up_bf16(g, dout, N * HD);
    c.g = up_f32(g, gd, N * H); c.beta = up_f32(g, be, N * H);
    c.st = gpu_alloc(g, ns * 4); c.o = gpu_alloc(g, N * HD * 2); c.dqkv = gpu_alloc(g, N * ld * 2);
    c.dg = gpu_alloc(g, N * H * 4); c.db = gpu_alloc(g, N * H * 4);
    c.ws = gpu_alloc(g, attn_gdn_block_ws_elems(B, T, H, D, 64) * 4);
    RepOut outs[] = {{"out", c.o, N * HD * 2, 0},       {"final state", c.st, ns * 4, 0},
                     {"dq|dk|dv", c.dqkv, N * ld * 2, 0}, {"dg", c.dg, N * H * 4, 0},
                     {"dbeta", c.db, N * H * 4, 0}};
    char what[96];
    snprintf(what, sizeof what, "delta rule B=%d T=%d H=%d, gdn_par=%d", B, T, H, gdn_par_mode_(g));
    repeat_check(g, what, rep_core_run, &c, outs, 5);
    void *bufs[] = {c.qkv, c.dout, c.g, c.beta, c.st, c.o, c.dqkv, c.dg, c.db, c.ws};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    free(qkv); free(dout); free(gd); free(be); free(c.st0);
}

/* the small ops' backward passes (the weight gradients that used to atomicAdd across blocks) */
typedef struct {
    int N, T, H, D, P, K;
    void *proj, *wc, *pre, *dpost, *din, *dab, *dgo, *o, *wn, *alog, *dtb, *dO, *dgate;
    float *dwc, *dgg, *dbb, *dA, *ddt, *rstd, *dwn;
} RepSmall;
static void rep_small_run(Gpu *g, void *p) {
    RepSmall *c = p;
    const int HD = c->H * c->D, P = c->P;
    char *pj = c->proj, *dab = c->dab, *dgt = c->dgate;
    gpu_gdn_conv_silu_backward(g, c->din, P, c->dwc, c->dpost, c->pre, c->proj, c->wc, c->N, c->T, 3 * HD, c->K);
    gpu_gdn_gates_backward(g, dab + 2 * 4 * HD, dab + 2 * (4 * HD + c->H), P, c->dA, c->ddt, c->dgg, c->dbb,
                           pj + 2 * 4 * HD, pj + 2 * (4 * HD + c->H), c->alog, c->dtb, c->N, c->H);
    gpu_gdn_gated_rmsnorm_backward(g, c->dO, dgt + 2 * 3 * HD, P, c->dwn, c->dgo, c->o, pj + 2 * 3 * HD, c->wn,
                                   c->rstd, c->N, c->H, c->D);
}
static void repeat_small(Gpu *g, int B, int T, int H) {
    const int D = 64, HD = H * D, P = 4 * HD + 2 * H, K = 4;
    const size_t N = (size_t)B * T;
    RepSmall c;
    memset(&c, 0, sizeof c);
    c.N = (int)N; c.T = T; c.H = H; c.D = D; c.P = P; c.K = K;
    float *h = frand(N * P, 1);
    c.proj = up_bf16(g, h, N * P);
    free(h);
    h = frand((size_t)3 * HD * K, 0.5); c.wc = up_bf16(g, h, (size_t)3 * HD * K); free(h);
    h = frand(N * 3 * HD, 1); c.pre = up_bf16(g, h, N * 3 * HD); free(h);
    h = frand(N * 3 * HD, 1); c.dpost = up_bf16(g, h, N * 3 * HD); free(h);
    h = frand(N * HD, 1); c.o = up_bf16(g, h, N * HD); free(h);
    h = frand(N * HD, 1); c.dgo = up_bf16(g, h, N * HD); free(h);
    h = frand(N * H, 1); c.dgg = up_f32(g, h, N * H); free(h);
    h = frand(N * H, 1); c.dbb = up_f32(g, h, N * H); free(h);
    h = frand(N * H, 0.3);
    for (size_t i = 0; i < N * H; i++) h[i] = 1.f + fabsf(h[i]);
    c.rstd = up_f32(g, h, N * H);
    free(h);
    h = frand(D, 0.3); c.wn = up_bf16(g, h, D); free(h);
    h = frand(H, 0.5); c.alog = up_bf16(g, h, H); c.dtb = up_bf16(g, h, H); free(h);
    c.din = gpu_alloc(g, N * P * 2); c.dab = gpu_alloc(g, N * P * 2); c.dgate = gpu_alloc(g, N * P * 2);
    c.dO = gpu_alloc(g, N * HD * 2);
    c.dwc = gpu_alloc(g, (size_t)3 * HD * K * 4); c.dA = gpu_alloc(g, H * 4); c.ddt = gpu_alloc(g, H * 4);
    c.dwn = gpu_alloc(g, D * 4);
    /* din, dab, dgate: only their op's columns are written; poisoned whole, compared whole */
    RepOut outs[] = {{"conv dx", c.din, N * P * 2, 0},        {"conv dw", c.dwc, (size_t)3 * HD * K * 4, 1},
                     {"gates da|db", c.dab, N * P * 2, 0},     {"gates dA_log", c.dA, (size_t)H * 4, 1},
                     {"gates ddt_bias", c.ddt, (size_t)H * 4, 1}, {"gated rmsnorm do", c.dO, N * HD * 2, 0},
                     {"gated rmsnorm dgate", c.dgate, N * P * 2, 0}, {"gated rmsnorm dw", c.dwn, (size_t)D * 4, 1}};
    char what[96];
    snprintf(what, sizeof what, "small ops' backward N=%zu H=%d", N, H);
    repeat_check(g, what, rep_small_run, &c, outs, 8);
    void *bufs[] = {c.proj, c.wc, c.pre, c.dpost, c.o, c.dgo, c.dgg, c.dbb, c.rstd, c.wn, c.alog, c.dtb,
                    c.din, c.dab, c.dgate, c.dO, c.dwc, c.dA, c.ddt, c.dwn};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
}

/* the whole block (its projections go through ops.h's GEMMs too, so a difference here that
   the two cases above do not show lies outside this file's kernels) */
typedef struct {
    AttnGdnDims d;
    int B, T;
    void *w, *x, *dout, *out, *dx;
    float *dw;
    AttnGdnActs a;
    AttnGdnScratch s;
} RepBlock;
static void rep_block_run(Gpu *g, void *p) {
    RepBlock *c = p;
    attn_gdn_block_forward(g, &c->d, c->w, &c->a, c->x, c->out, c->B, c->T);
    attn_gdn_block_backward(g, &c->d, c->w, c->dw, &c->a, &c->s, c->x, c->dout, c->dx, c->B, c->T);
}
static void repeat_block(Gpu *g, int C, int H, int B, int T) {
    RepBlock c;
    memset(&c, 0, sizeof c);
    AttnGdnDims d = {C, H, 64, 4, 64, 1e-5f};
    char err[128];
    if (attn_gdn_block_resolve(&d, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    c.d = d; c.B = B; c.T = T;
    const size_t N = (size_t)B * T, np = attn_gdn_block_param_count(&d);
    float *w = frand(np, 0.05), *x = frand(N * C, 1), *dout = frand(N * C, 1);
    attn_gdn_block_param_init_special(&d, w, 5);
    size_t ae, se, sae, sse;
    attn_gdn_block_act_sizes(&d, B, T, &ae, &se);
    attn_gdn_block_scratch_sizes(&d, B, T, &sae, &sse);
    c.w = up_bf16(g, w, np); c.x = up_bf16(g, x, N * C); c.dout = up_bf16(g, dout, N * C);
    void *act = gpu_alloc(g, ae * 2), *sact = gpu_alloc(g, sae * 2);
    float *stat = gpu_alloc(g, se * 4 + 4), *sstat = gpu_alloc(g, sse * 4 + 4);
    c.out = gpu_alloc(g, N * C * 2); c.dx = gpu_alloc(g, N * C * 2); c.dw = gpu_alloc(g, np * 4);
    attn_gdn_block_acts_bind(&d, &c.a, g, act, stat, B, T);
    attn_gdn_block_scratch_bind(&d, &c.s, g, sact, sstat, B, T);
    RepOut outs[] = {{"block out", c.out, N * C * 2, 0}, {"block dx", c.dx, N * C * 2, 0},
                     {"block dw (every parameter)", c.dw, np * 4, 1}};
    char what[96];
    snprintf(what, sizeof what, "block d=%d H=%d B=%d T=%d, gdn_par=%d", C, H, B, T, gdn_par_mode_(g));
    repeat_check(g, what, rep_block_run, &c, outs, 3);
    void *bufs[] = {c.w, c.x, c.dout, act, sact, stat, sstat, c.out, c.dx, c.dw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    free(w); free(x); free(dout);
}

/* every repeat case under the current Gpu.nondeterministic, both delta-rule organizations;
   the shapes of the 135M GDN model (d 576, H 9, hd 64; B 16 x T 2048 for the kernels) */
static void repeat_all(Gpu *g) {
    for (int par = 1; par >= 0; par--) {
        g->tuning.gdn_par = GPU_TUNE_VARIANT(par);
        repeat_core(g, 16, 2048, 9);
        repeat_block(g, 576, 9, 4, 1024);
    }
    g->tuning.gdn_par = 0;
    repeat_small(g, 16, 2048, 9);
}

/* ---------------------------------------------------------------- timing */
typedef struct { int B, T, H, D; void *q, *k, *v, *o, *dout, *dq, *dk, *dv; float *gd, *beta, *dg, *db, *ws, *lse; } TBufs;

/* what: 0 delta forward, 1 delta forward+backward, 2 dense forward, 3 dense forward+backward */
static void run_once(Gpu *g, const TBufs *t, int what) {
    int B = t->B, T = t->T, H = t->H, D = t->D, ld = H * D;
    float scale = 1 / sqrtf((float)D);
    if (what <= 1) {
        gpu_gdn_forward(g, t->o, NULL, t->q, t->k, t->v, ld, t->gd, t->beta, B, T, H, D, scale);
        if (what == 1)
            gpu_gdn_backward(g, t->dq, t->dk, t->dv, t->dg, t->db, t->dout, t->q, t->k, t->v, ld, t->gd, t->beta,
                             B, T, H, D, scale, t->ws);
    } else {
        gpu_attention_forward(g, t->o, t->lse, t->q, t->k, t->v, B, T, H, H, D, 0);
        if (what == 3)
            gpu_attention_backward(g, t->dq, t->dk, t->dv, t->dout, t->o, t->lse, t->q, t->k, t->v, B, T, H, H, D, 0);
    }
}

static float time_ms(Gpu *g, const TBufs *t, int what) {
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float ms[5];
    for (int r = -2; r < 5; r++) {
        CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
        run_once(g, t, what);
        CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
        CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
        if (r >= 0) CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms[r], e0, e1));
    }
    qsort(ms, 5, sizeof(float), cmp_float);
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    return ms[2];
}

/* B*T = 65536 tokens, H heads of D (timing, det_timing: H 16, D 64) */
static void tbufs_make_hd(Gpu *g, TBufs *tp, int T, int H, int D) {
    TBufs t;
    memset(&t, 0, sizeof t);
    t.B = 65536 / T; t.T = T; t.H = H; t.D = D;
    size_t N = 65536, n = N * H * D;
    float *h = frand(n, 1);
    unit_heads(h, N, H * D, H, D);
    t.q = up_bf16(g, h, n); t.k = up_bf16(g, h, n);
    free(h);
    h = frand(n, 1);
    t.v = up_bf16(g, h, n); t.dout = up_bf16(g, h, n);
    free(h);
    t.o = gpu_alloc(g, n * 2); t.dq = gpu_alloc(g, n * 2); t.dk = gpu_alloc(g, n * 2); t.dv = gpu_alloc(g, n * 2);
    float *gh = fnew(N * H), *bh = fnew(N * H);
    for (size_t i = 0; i < N * H; i++) { gh[i] = (float)(-0.05 * urand()); bh[i] = (float)(0.2 + 0.6 * urand()); }
    t.gd = up_f32(g, gh, N * H); t.beta = up_f32(g, bh, N * H);
    free(gh); free(bh);
    t.dg = gpu_alloc(g, N * H * 4); t.db = gpu_alloc(g, N * H * 4); t.lse = gpu_alloc(g, N * H * 4);
    t.ws = gpu_alloc(g, attn_gdn_block_ws_elems(t.B, T, H, D, 64) * 4);
    *tp = t;
}
static void tbufs_make(Gpu *g, TBufs *tp, int T) { tbufs_make_hd(g, tp, T, 16, 64); }
static void tbufs_free(Gpu *g, TBufs *t) {
    void *bufs[] = {t->q, t->k, t->v, t->o, t->dout, t->dq, t->dk, t->dv, t->gd, t->beta, t->dg, t->db, t->ws, t->lse};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
}

static void timing(Gpu *g, int T) {
    TBufs t;
    tbufs_make(g, &t, T);
    float lf = time_ms(g, &t, 0), lfb = time_ms(g, &t, 1), df = time_ms(g, &t, 2), dfb = time_ms(g, &t, 3);
    printf("%6d %3d %3d | %9.3f %9.3f | %9.3f %9.3f | %6.2fx %6.2fx\n", T, t.B, 16, lf, lfb, df, dfb, df / lf,
           dfb / lfb);
    fflush(stdout);
    tbufs_free(g, &t);
}

/* the delta rule's cost by head dim at T 2048 (B 32), about 1024 channels (H = 1024 / D):
   D <= 64 the padded tensor-core tiles; D > 64 the wide-head fp32 kernels (gdn_wtile=0) and the
   wide tiles (up to 128 the default, past it gdn_wtile=2) */
static void timing_heads(Gpu *g) {
    static const int Ds[] = {32, 48, 64, 72, 96, 128, 192, 256};
    printf("\ndelta rule by head dim (median ms; T 2048, B 32, H = 1024 / D; tiles: the 64-wide tiles up to 64, "
           "the wide tiles to 128 (gdn_wtile=1, the default) and past it (gdn_wtile=2); fp32: the wide-head kernels "
           "(gdn_wtile=0); -: not run)\n%4s %3s | %9s %9s | %9s %9s\n", "D", "H", "tiles fwd", "tiles f+b", "fp32 fwd",
           "fp32 f+b");
    for (size_t i = 0; i < sizeof Ds / sizeof Ds[0]; i++) {
        TBufs t;
        tbufs_make_hd(g, &t, 2048, 1024 / Ds[i], Ds[i]);
        char c[4][16];
        for (int k = 0; k < 4; k++) snprintf(c[k], sizeof c[k], "-");
        g->tuning.gdn_wtile = GPU_TUNE_VARIANT(Ds[i] > 128 ? 2 : 1);
        if (Ds[i] <= 64 || gdn_wtile_(g, Ds[i], t.B * t.H))
            for (int k = 0; k < 2; k++) snprintf(c[k], sizeof c[k], "%.3f", time_ms(g, &t, k));
        g->tuning.gdn_wtile = GPU_TUNE_VARIANT(0);
        if (Ds[i] > 64)
            for (int k = 0; k < 2; k++) snprintf(c[2 + k], sizeof c[k], "%.3f", time_ms(g, &t, k));
        g->tuning.gdn_wtile = 0;
        printf("%4d %3d | %9s %9s | %9s %9s\n", Ds[i], t.H, c[0], c[1], c[2], c[3]);
        fflush(stdout);
        tbufs_free(g, &t);
    }
}

/* the price of determinism: the delta rule's forward+backward (B*T = 65536, H 16) with
   Gpu.nondeterministic 0 and 1, side by side */
static void det_timing(Gpu *g, int T) {
    TBufs t;
    tbufs_make(g, &t, T);
    g->nondeterministic = 0;
    float det = time_ms(g, &t, 1);
    g->nondeterministic = 1;
    float nd = time_ms(g, &t, 1);
    g->nondeterministic = 0;
    printf("%-28s %6d %3d | %9.3f %9.3f | %+6.2f%%\n", "gdn core f+b", T, t.B, det, nd, 100.0 * (det - nd) / nd);
    fflush(stdout);
    tbufs_free(g, &t);
}
/* the same for a whole GDN block's forward+backward (projections, conv, norms, gates, the
   delta rule: one layer of a training step) at the 135M model's shape, d 576, H 9 */
static void det_timing_block(Gpu *g, int B, int T) {
    RepBlock c;
    memset(&c, 0, sizeof c);
    AttnGdnDims d = {576, 9, 64, 4, 64, 1e-5f};
    char err[128];
    if (attn_gdn_block_resolve(&d, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
    c.d = d; c.B = B; c.T = T;
    const size_t N = (size_t)B * T, np = attn_gdn_block_param_count(&d), C = (size_t)d.d_model;
    float *w = frand(np, 0.05), *x = frand(N * C, 1);
    attn_gdn_block_param_init_special(&d, w, 5);
    size_t ae, se, sae, sse;
    attn_gdn_block_act_sizes(&d, B, T, &ae, &se);
    attn_gdn_block_scratch_sizes(&d, B, T, &sae, &sse);
    c.w = up_bf16(g, w, np); c.x = up_bf16(g, x, N * C); c.dout = up_bf16(g, x, N * C);
    void *act = gpu_alloc(g, ae * 2), *sact = gpu_alloc(g, sae * 2);
    float *stat = gpu_alloc(g, se * 4 + 4), *sstat = gpu_alloc(g, sse * 4 + 4);
    c.out = gpu_alloc(g, N * C * 2); c.dx = gpu_alloc(g, N * C * 2); c.dw = gpu_alloc(g, np * 4);
    gpu_memset0(g, c.dw, np * 4);
    attn_gdn_block_acts_bind(&d, &c.a, g, act, stat, B, T);
    attn_gdn_block_scratch_bind(&d, &c.s, g, sact, sstat, B, T);
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float med[2];
    for (int nd = 0; nd < 2; nd++) {
        g->nondeterministic = nd;
        float ms[5];
        for (int r = -2; r < 5; r++) {
            CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
            rep_block_run(g, &c);
            CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
            CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
            if (r >= 0) CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms[r], e0, e1));
        }
        qsort(ms, 5, sizeof(float), cmp_float);
        med[nd] = ms[2];
    }
    g->nondeterministic = 0;
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    printf("%-28s %6d %3d | %9.3f %9.3f | %+6.2f%%\n", "gdn block f+b (d 576, H 9)", T, B, med[0], med[1],
           100.0 * (med[0] - med[1]) / med[1]);
    fflush(stdout);
    void *bufs[] = {c.w, c.x, c.dout, act, sact, stat, sstat, c.out, c.dx, c.dw};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu_free(g, bufs[i]);
    free(w); free(x);
}

/* the determinism section: repeats (must match bit for bit), the same under
   nondeterministic = 1 (reported), then the cost */
static void determinism(Gpu *g, int with_timing) {
    printf("\n[determinism: Gpu.nondeterministic = 0 must repeat bit for bit]\n");
    g->nondeterministic = 0;
    repeat_all(g);
    printf("\n[the same with Gpu.nondeterministic = 1: reported only]\n");
    g->nondeterministic = 1;
    repeat_all(g);
    g->nondeterministic = 0;
    if (!with_timing) return;
    printf("\ncost of determinism (median ms of 5; det = nondeterministic 0, nondet = 1)\n");
    printf("%-28s %6s %3s | %9s %9s | %7s\n", "", "T", "B", "det", "nondet", "det/nd-1");
    int Ts[] = {2048, 8192, 16384};
    for (int i = 0; i < 3; i++) det_timing(g, Ts[i]);
    det_timing_block(g, 16, 2048);
}

int main(int argc, char **argv) {
    int do_timing = 1, checks = 1, det = 1, heads_only = 0, wide_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-timing")) do_timing = 0;
        else if (!strcmp(argv[i], "--wide-only")) det = do_timing = 0, wide_only = 1; /* gdn_wtile=2's checks */
        else if (!strcmp(argv[i], "--heads-timing")) checks = det = do_timing = 0, heads_only = 1;
        else if (!strcmp(argv[i], "--timing-only")) checks = 0, det = 0;
        else if (!strcmp(argv[i], "--determinism-only")) checks = 0, do_timing = 0;
        else if (!strcmp(argv[i], "--compile-only")) {
            int f = gdn_kernels_compile_check("sm_80") + gdn_kernels_compile_check("sm_90");
            printf("compile check: %d failures\n", f);
            return f != 0;
        } else {
            fprintf(stderr, "usage: %s [--no-timing | --wide-only | --timing-only | --heads-timing | --determinism-only | --compile-only]\n",
                    argv[0]);
            return 2;
        }
    }
    Gpu g;
    if (gpu_init(&g, 0) != 0) { fprintf(stderr, "gpu_linear_check: no usable GPU: %s\n", g.err); return 1; }
    if (checks && !wide_only) {
        static const CoreCase cases[] = {{2, 200, 3, 64}, {1, 64, 2, 64}, {3, 1, 1, 64}, {1, 1000, 2, 64},
                                         /* head dims padded to the 64 tile inside the kernels */
                                         {2, 200, 3, 32}, {1, 130, 2, 48}, {1, 1, 1, 40},
                                         /* the wide-head kernels (gdn_wtile=0 below, and past 128) */
                                         {2, 200, 3, 72}, {1, 130, 2, 96}, {1, 200, 2, 128}, {1, 70, 1, 256}};
        /* both backward organizations (tuning.gdn_par: one block per sequence / chunk-parallel),
           each with both product kinds */
        g.tuning.gdn_wtile = GPU_TUNE_VARIANT(0);
        for (int par = 0; par < 2; par++)
            for (int mode = 0; mode < 2; mode++) {
                g.tuning.gdn_mma = GPU_TUNE_VARIANT(mode);
                g.tuning.gdn_par = GPU_TUNE_VARIANT(par);
                printf("[gdn_mma=%d gdn_par=%d]\n", mode, par);
                for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) core_case(&g, &cases[i]);
            }
        /* the tiles of heads 65..128 wide (tuning gdn_wtile=1, the default), both product kinds */
        static const CoreCase wcases[] = {{2, 200, 3, 72}, {1, 130, 2, 96}, {1, 200, 2, 128}, {1, 1000, 1, 128},
                                          {1, 1, 1, 80}};
        g.tuning.gdn_par = 0;
        g.tuning.gdn_wtile = 0; /* the default: the tiles */
        for (int mode = 0; mode < 2; mode++) {
            g.tuning.gdn_mma = GPU_TUNE_VARIANT(mode);
            printf("[gdn_mma=%d gdn_wtile=1]\n", mode);
            for (size_t i = 0; i < sizeof wcases / sizeof wcases[0]; i++) core_case(&g, &wcases[i]);
        }
    }
    if (checks) {
        /* the tiles of heads 129..256 wide (tuning gdn_wtile=2), both product kinds: three
           k-blocks (the third padded), three, four (T 1000: 16 chunks), and a block of two */
        static const CoreCase xcases[] = {{1, 200, 2, 136}, {2, 130, 3, 192}, {1, 1, 1, 200}, {1, 200, 2, 256},
                                          {1, 1000, 1, 256}};
        g.tuning.gdn_wtile = GPU_TUNE_VARIANT(2);
        for (int mode = 0; mode < 2; mode++) {
            g.tuning.gdn_mma = GPU_TUNE_VARIANT(mode);
            printf("[gdn_mma=%d gdn_wtile=2]\n", mode);
            for (size_t i = 0; i < sizeof xcases / sizeof xcases[0]; i++) core_case(&g, &xcases[i]);
        }
        g.tuning.gdn_mma = 0;
        block_check(&g, 512, 2, 256, 2, 130);
        g.tuning.gdn_wtile = 0;
    }
    if (checks && !wide_only) {
        printf("[gdn_wtile=0]\n");
        g.tuning.gdn_wtile = GPU_TUNE_VARIANT(0);
        block_check(&g, 576, 8, 72, 2, 130);  /* the guide's baseline on the wide-head kernels */
        g.tuning.gdn_wtile = 0;
        g.tuning.gdn_mma = 0;
        g.tuning.gdn_par = 0;
        small_ops(&g, 64);
        small_ops(&g, 72);
        small_ops(&g, 256);
        block_check(&g, 128, 2, 64, 2, 100);
        block_check(&g, 128, 2, 64, 1, 300);
        block_check(&g, 128, 4, 32, 2, 100);  /* a padded head */
        block_check(&g, 576, 8, 72, 2, 130);  /* the ablation guide's baseline: d 576, 8 heads */
        block_check(&g, 576, 6, 96, 1, 100);  /* its phase-5 head counts: 6, 12 */
        block_check(&g, 576, 12, 48, 1, 100);
        g.tuning.gdn_par = GPU_TUNE_VARIANT(0);
        printf("[gdn_par=0]\n");
        block_check(&g, 128, 2, 64, 2, 100);
        block_check(&g, 128, 4, 32, 2, 100);
        g.tuning.gdn_par = 0;
    }
    if (det) determinism(&g, do_timing);
    if (do_timing) {
        g.tuning.gdn_mma = 0;
        printf("\ntiming (median ms; B*T = 65536, H 16, D 64; dense = causal flash attention, same shape)\n");
        printf("%6s %3s %3s | %9s %9s | %9s %9s | %7s %7s\n", "T", "B", "H", "gdn fwd", "gdn f+b", "attn fwd",
               "attn f+b", "fwd x", "f+b x");
        int Ts[] = {2048, 8192, 16384};
        for (int i = 0; i < 3; i++) timing(&g, Ts[i]);
        g.tuning.gdn_par = GPU_TUNE_VARIANT(0);
        printf("the same with gdn_par=0 (one block per sequence and head)\n");
        for (int i = 0; i < 3; i++) timing(&g, Ts[i]);
        g.tuning.gdn_par = 0;
        g.tuning.gdn_mma = GPU_TUNE_VARIANT(0);
        printf("the same with gdn_mma=0 (fp32 products)\n");
        for (int i = 0; i < 3; i++) timing(&g, Ts[i]);
        g.tuning.gdn_mma = 0;
        timing_heads(&g);
    }
    if (heads_only) timing_heads(&g);
    gpu_attention_release(&g);
    gpu_free_all(&g);
    printf("\n%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
