/* gpu_ops_check.c - every non-attention GPU op against the CPU reference of
   ops.h (op_xxx(NULL, ...)), on fresh random inputs, on the device machine.

   cc -O2 -I. tests/gpu_ops_check.c -o /tmp/g -I/usr/local/cuda/include \
      -L/usr/local/cuda/lib64 -lnvrtc -lcublasLt -lcublas -ldl -lm && /tmp/g

   Method: inputs are drawn in fp32 and rounded to bf16, so the GPU and the CPU
   reference see the same numbers; the error is then only the GPU's own (bf16
   outputs, fp32 accumulation order). Outputs that are written (=) are poisoned
   with NaN first, so an element a kernel forgets to write fails the check.
   Outputs that accumulate (+=) start from the same random values on both sides.
   Error: relative L2, ||gpu - ref|| / ||ref||. Bounds:
     bf16 outputs                              1e-2  (bf16 keeps 8 bits: ~4e-3 per element)
     fp32 outputs computed from exact inputs   1e-5  (fp32 summation order only)
     fp32 outputs fed by bf16 intermediates    1e-2  (xent dwte: bf16 logits/dlogits)
     copies and conversions                    0     (bit-exact)
   Ends with "N passed, N failed"; exit status 1 on any failure. A short timing
   table at realistic sizes follows the checks. */
#define GPU_IMPLEMENTATION
#include "gpu.h"
#include "attn/dense.cu.h"
#define OPS_IMPLEMENTATION
#include "ops.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Gpu G;
static int n_pass, n_fail;

/* ---- host helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
}

static uint16_t h_f2bf(float f) { /* round to nearest even, NaN kept */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float h_bf2f(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

static float *fvec(size_t n) { float *p = malloc(n * sizeof(float)); if (!p) abort(); return p; }

/* random fp32 values exactly representable in bf16 */
static float *rand_bf(size_t n, float scale) {
    float *p = fvec(n);
    for (size_t i = 0; i < n; i++) p[i] = h_bf2f(h_f2bf(frand() * scale));
    return p;
}

/* device copies */
static void *dev_bf(const float *x, size_t n) {
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = h_f2bf(x[i]);
    void *d = gpu_alloc(&G, n * 2);
    gpu_upload(&G, d, h, n * 2);
    free(h);
    return d;
}
static float *dev_f32(const float *x, size_t n) {
    float *d = gpu_alloc(&G, n * 4);
    gpu_upload(&G, d, x, n * 4);
    return d;
}
static void *dev_bytes(const void *x, size_t bytes) {
    void *d = gpu_alloc(&G, bytes);
    gpu_upload(&G, d, x, bytes);
    return d;
}
/* NaN-poisoned outputs */
static void *dev_poison_bf(size_t n) {
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = 0x7fc0;
    void *d = dev_bytes(h, n * 2);
    free(h);
    return d;
}
static float *dev_poison_f32(size_t n) {
    float *h = fvec(n);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = dev_f32(h, n);
    free(h);
    return d;
}
static float *get_bf(const void *d, size_t n) {
    uint16_t *h = malloc(n * 2);
    gpu_download(&G, h, d, n * 2);
    float *f = fvec(n);
    for (size_t i = 0; i < n; i++) f[i] = h_bf2f(h[i]);
    free(h);
    return f;
}
static float *get_f32(const void *d, size_t n) {
    float *f = fvec(n);
    gpu_download(&G, f, d, n * 4);
    return f;
}

/* relative L2 error; any non-finite GPU value where the reference is finite: inf */
static double relerr(const float *gpu, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(gpu[i]) && isfinite(ref[i])) return INFINITY;
        double d = (double)gpu[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void report(const char *op, const char *what, const char *shape, double err, double bound) {
    int ok = err <= bound;
    printf("%-5s %-20s %-10s %-34s rel.err %-10.3g bound %g\n", ok ? "ok" : "FAIL", op, what, shape, err, bound);
    if (ok) n_pass++; else n_fail++;
}

/* compare a device bf16 / fp32 result against a host reference, free it */
static void check_bf(const char *op, const char *what, const char *shape, const void *d, const float *ref,
                     size_t n, double bound) {
    float *g = get_bf(d, n);
    report(op, what, shape, relerr(g, ref, n), bound);
    free(g);
}
static void check_f32(const char *op, const char *what, const char *shape, const void *d, const float *ref,
                      size_t n, double bound) {
    float *g = get_f32(d, n);
    report(op, what, shape, relerr(g, ref, n), bound);
    free(g);
}

/* ---- the checks ---- */

static void t_embed(int N, int C, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d V=%d", N, C, V);
    float *wte = rand_bf((size_t)V * C, 1), *dout = rand_bf((size_t)N * C, 1);
    float *dw = rand_bf((size_t)V * C, 1), *out = fvec((size_t)N * C);
    int *tok = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) tok[n] = (int)((frand() + 1) * 0.5f * V) % V;
    void *d_wte = dev_bf(wte, (size_t)V * C), *d_dout = dev_bf(dout, (size_t)N * C);
    void *d_out = dev_poison_bf((size_t)N * C);
    int *d_tok = dev_bytes(tok, sizeof(int) * N);
    float *d_dw = dev_f32(dw, (size_t)V * C);
    gpu_embed_forward(&G, d_out, d_tok, d_wte, N, C);
    op_embed_forward(NULL, out, tok, wte, N, C);
    check_bf("embed_forward", "out", shape, d_out, out, (size_t)N * C, 0);
    gpu_embed_backward(&G, d_dw, d_dout, d_tok, N, C);
    op_embed_backward(NULL, dw, dout, tok, N, C);
    check_f32("embed_backward", "dwte+=", shape, d_dw, dw, (size_t)V * C, 1e-5);
    gpu_free(&G, d_wte); gpu_free(&G, d_dout); gpu_free(&G, d_out); gpu_free(&G, d_tok); gpu_free(&G, d_dw);
    free(wte); free(dout); free(dw); free(out); free(tok);
}

static void t_matmul(int N, int C, int OC) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d OC=%d", N, C, OC);
    size_t nin = (size_t)N * C, nout = (size_t)N * OC, nw = (size_t)OC * C;
    float *in = rand_bf(nin, 1), *w = rand_bf(nw, 0.1f), *dout = rand_bf(nout, 1);
    float *out = fvec(nout), *din = rand_bf(nin, 1), *dw = rand_bf(nw, 1);
    void *d_in = dev_bf(in, nin), *d_w = dev_bf(w, nw), *d_dout = dev_bf(dout, nout);
    void *d_out = dev_poison_bf(nout), *d_din = dev_poison_bf(nin);
    float *d_dw = dev_f32(dw, nw);
    gpu_matmul_forward(&G, d_out, d_in, d_w, N, C, OC);
    op_matmul_forward(NULL, out, in, w, N, C, OC);
    check_bf("matmul_forward", "out", shape, d_out, out, nout, 1e-2);
    /* din written (=), dw accumulated */
    gpu_matmul_backward(&G, d_din, d_dw, d_dout, d_in, d_w, N, C, OC, 0);
    op_matmul_backward(NULL, din, dw, dout, in, w, N, C, OC, 0);
    check_bf("matmul_backward", "din=", shape, d_din, din, nin, 1e-2);
    check_f32("matmul_backward", "dw+=", shape, d_dw, dw, nw, 1e-5);
    /* din accumulated: start both sides from the same bf16 values */
    float *din0 = rand_bf(nin, 1);
    void *d_din2 = dev_bf(din0, nin);
    gpu_matmul_backward(&G, d_din2, NULL, d_dout, d_in, d_w, N, C, OC, 1);
    float *dwscratch = fvec(nw);
    memset(dwscratch, 0, nw * 4);
    op_matmul_backward(NULL, din0, dwscratch, dout, in, w, N, C, OC, 1);
    check_bf("matmul_backward", "din+=", shape, d_din2, din0, nin, 1e-2);
    gpu_free(&G, d_in); gpu_free(&G, d_w); gpu_free(&G, d_dout); gpu_free(&G, d_out);
    gpu_free(&G, d_din); gpu_free(&G, d_dw); gpu_free(&G, d_din2);
    free(in); free(w); free(dout); free(out); free(din); free(dw); free(din0); free(dwscratch);
}

static void t_rmsnorm(int N, int C) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d", N, C);
    size_t n = (size_t)N * C;
    float *in = rand_bf(n, 2), *w = rand_bf(C, 1), *dout = rand_bf(n, 1);
    float *out = fvec(n), *rstd = fvec(N), *din = fvec(n), *dw = rand_bf(C, 1);
    void *d_in = dev_bf(in, n), *d_w = dev_bf(w, C), *d_dout = dev_bf(dout, n);
    void *d_out = dev_poison_bf(n), *d_din = dev_poison_bf(n);
    float *d_rstd = dev_poison_f32(N), *d_dw = dev_f32(dw, C);
    gpu_rmsnorm_forward(&G, d_out, d_rstd, d_in, d_w, N, C, 1e-5f);
    op_rmsnorm_forward(NULL, out, rstd, in, w, N, C, 1e-5f);
    check_bf("rmsnorm_forward", "out", shape, d_out, out, n, 1e-2);
    check_f32("rmsnorm_forward", "rstd", shape, d_rstd, rstd, N, 1e-5);
    /* backward from the reference rstd on both sides (the GPU's is checked above) */
    float *d_rstd_ref = dev_f32(rstd, N);
    gpu_rmsnorm_backward(&G, d_din, d_dw, d_dout, d_in, d_w, d_rstd_ref, N, C, 0);
    op_rmsnorm_backward(NULL, din, dw, dout, in, w, rstd, N, C, 0);
    check_bf("rmsnorm_backward", "din=", shape, d_din, din, n, 1e-2);
    check_f32("rmsnorm_backward", "dw+=", shape, d_dw, dw, C, 1e-5);
    float *din0 = rand_bf(n, 1);
    void *d_din2 = dev_bf(din0, n);
    gpu_rmsnorm_backward(&G, d_din2, d_dw, d_dout, d_in, d_w, d_rstd_ref, N, C, 1);
    op_rmsnorm_backward(NULL, din0, dw, dout, in, w, rstd, N, C, 1);
    check_bf("rmsnorm_backward", "din+=", shape, d_din2, din0, n, 1e-2);
    /* residual add fused with the norm: sum = in + dout, out = norm(sum) */
    float *sum = fvec(n), *out2 = fvec(n), *rstd2 = fvec(N);
    void *d_sum = dev_poison_bf(n), *d_out2 = dev_poison_bf(n);
    float *d_rstd2 = dev_poison_f32(N);
    gpu_add_rmsnorm_forward(&G, d_sum, d_out2, d_rstd2, d_in, d_dout, d_w, N, C, 1e-5f);
    op_add_rmsnorm_forward(NULL, sum, out2, rstd2, in, dout, w, N, C, 1e-5f);
    check_bf("add_rmsnorm_forward", "sum", shape, d_sum, sum, n, 1e-2);
    check_bf("add_rmsnorm_forward", "out", shape, d_out2, out2, n, 1e-2);
    check_f32("add_rmsnorm_forward", "rstd", shape, d_rstd2, rstd2, N, 1e-2); /* from the bf16-rounded sum */
    gpu_free(&G, d_sum); gpu_free(&G, d_out2); gpu_free(&G, d_rstd2);
    free(sum); free(out2); free(rstd2);
    gpu_free(&G, d_in); gpu_free(&G, d_w); gpu_free(&G, d_dout); gpu_free(&G, d_out); gpu_free(&G, d_din);
    gpu_free(&G, d_rstd); gpu_free(&G, d_dw); gpu_free(&G, d_rstd_ref); gpu_free(&G, d_din2);
    free(in); free(w); free(dout); free(out); free(rstd); free(din); free(dw); free(din0);
}

static void t_rope(int N, int T, int nh, int hd, float theta) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d T=%d nh=%d hd=%d th=%g", N, T, nh, hd, theta);
    size_t n = (size_t)N * nh * hd;
    float *x = rand_bf(n, 1), *y = fvec(n);
    memcpy(y, x, n * 4);
    void *d = dev_bf(x, n);
    gpu_rope_forward(&G, d, N, T, nh, hd, theta);
    op_rope_forward(NULL, y, N, T, nh, hd, theta);
    check_bf("rope_forward", "x", shape, d, y, n, 1e-2);
    /* backward: feed both sides the same bf16 input (x), not the rotated one */
    void *d2 = dev_bf(x, n);
    memcpy(y, x, n * 4);
    gpu_rope_backward(&G, d2, N, T, nh, hd, theta);
    op_rope_backward(NULL, y, N, T, nh, hd, theta);
    check_bf("rope_backward", "dx", shape, d2, y, n, 1e-2);
    /* forward then backward is the identity up to two bf16 roundings */
    gpu_rope_forward(&G, d2, N, T, nh, hd, theta);
    check_bf("rope_bwd(fwd(x))", "x", shape, d2, x, n, 1e-2);
    gpu_free(&G, d); gpu_free(&G, d2);
    free(x); free(y);
}

/* the fused q|k|v rows split into q, k, v (rotated), and the gradient merged back */
static void t_qkv_split(int N, int T, int H, int KV, int hd, float theta) {
    char shape[80];
    snprintf(shape, sizeof shape, "N=%d T=%d H=%d KV=%d hd=%d th=%g", N, T, H, KV, hd, theta);
    size_t P = (size_t)(H + 2 * KV) * hd, nf = (size_t)N * P, nq = (size_t)N * H * hd, nk = (size_t)N * KV * hd;
    float *x = rand_bf(nf, 1), *q = fvec(nq), *k = fvec(nk), *v = fvec(nk), *back = fvec(nf);
    void *d_x = dev_bf(x, nf), *d_q = dev_poison_bf(nq), *d_k = dev_poison_bf(nk), *d_v = dev_poison_bf(nk);
    void *d_back = dev_poison_bf(nf);
    gpu_qkv_split(&G, d_q, d_k, d_v, d_x, N, T, H, KV, hd, theta, 0);
    op_qkv_split(NULL, q, k, v, x, N, T, H, KV, hd, theta);
    check_bf("qkv_split", "q", shape, d_q, q, nq, 1e-2);
    check_bf("qkv_split", "k", shape, d_k, k, nk, 1e-2);
    check_bf("qkv_split", "v", shape, d_v, v, nk, 1e-6); /* copied: exact */
    /* merge from fresh bf16 inputs on both sides */
    float *dq = rand_bf(nq, 1), *dk = rand_bf(nk, 1), *dv = rand_bf(nk, 1);
    void *d_dq = dev_bf(dq, nq), *d_dk = dev_bf(dk, nk), *d_dv = dev_bf(dv, nk);
    gpu_qkv_split(&G, d_dq, d_dk, d_dv, d_back, N, T, H, KV, hd, theta, 1);
    op_qkv_merge(NULL, back, dq, dk, dv, N, T, H, KV, hd, theta);
    check_bf("qkv_merge", "dqkv", shape, d_back, back, nf, 1e-2);
    /* merge(split(x)) = x up to two bf16 roundings (a rotation's gradient is its inverse) */
    gpu_qkv_split(&G, d_q, d_k, d_v, d_back, N, T, H, KV, hd, theta, 1);
    check_bf("qkv_merge(split(x))", "x", shape, d_back, x, nf, 1e-2);
    gpu_free(&G, d_x); gpu_free(&G, d_q); gpu_free(&G, d_k); gpu_free(&G, d_v); gpu_free(&G, d_back);
    gpu_free(&G, d_dq); gpu_free(&G, d_dk); gpu_free(&G, d_dv);
    free(x); free(q); free(k); free(v); free(back); free(dq); free(dk); free(dv);
}

/* RoPE on part of each head (MLA's rotary slice): heads ld apart, rd rotated from offset off */
static void t_rope_part(int N, int T, int nh, int ld, int off, int rd) {
    char shape[80];
    snprintf(shape, sizeof shape, "N=%d nh=%d ld=%d off=%d rd=%d", N, nh, ld, off, rd);
    size_t n = (size_t)N * nh * ld;
    float *x = rand_bf(n, 1), *y = fvec(n);
    for (int sign = 1; sign >= -1; sign -= 2) {
        memcpy(y, x, n * 4);
        void *d = dev_bf(x, n);
        gpu_rope_part(&G, (uint16_t *)d + off, N, T, nh, ld, rd, 10000.0f, (float)sign);
        if (sign > 0) op_rope_part_forward(NULL, y + off, N, T, nh, ld, rd, 10000.0f);
        else op_rope_part_backward(NULL, y + off, N, T, nh, ld, rd, 10000.0f);
        /* the untouched columns must be bit-identical: the bound is relative over all of x */
        check_bf(sign > 0 ? "rope_part_forward" : "rope_part_backward", "x", shape, d, y, n, 1e-2);
        gpu_free(&G, d);
    }
    free(x); free(y);
}

/* column-block gather/scatter (copy_cols) and the group sum (sum_cols) */
static void t_copy_cols(size_t rows, int cols, size_t sld, size_t dld, int groups, size_t gld, float scale, int acc) {
    char shape[96];
    snprintf(shape, sizeof shape, "rows=%zu cols=%d ld %zu->%zu g=%d gld=%zu s=%g acc=%d", rows, cols, sld, dld,
             groups, gld, scale, acc);
    size_t ns = rows * sld + (size_t)groups * gld, nd = rows * dld;
    float *src = rand_bf(ns, 1), *dst = rand_bf(nd, 1);
    void *ds = dev_bf(src, ns), *dd = dev_bf(dst, nd);
    gpu_copy_cols(&G, dd, dld, ds, sld, gld, groups, rows, cols, scale, acc);
    if (groups == 1) op_copy_cols(NULL, dst, dld, src, sld, rows, cols, scale, acc);
    else op_sum_cols(NULL, dst, dld, src, sld, gld, groups, rows, cols);
    check_bf(groups == 1 ? "copy_cols" : "sum_cols", "dst", shape, dd, dst, nd, 1e-2);
    gpu_free(&G, ds); gpu_free(&G, dd);
    free(src); free(dst);
}

/* MGA's decomposition, op by op: each GPU op against the CPU op fed the GPU's own inputs
   (the previous GPU outputs, downloaded), so errors do not compound */
static void t_mga(int B, int T, int H, int hd, int W, int fa) {
    char shape[80];
    snprintf(shape, sizeof shape, "B=%d T=%d H=%d hd=%d W=%d fa=%d", B, T, H, hd, W, fa);
    size_t N = (size_t)B * T, nh = N * H, n = nh * hd;
    float *g = rand_bf(n, 1), *u = fvec(n), *nrm = fvec(nh), *C = fvec(n), *den = fvec(nh), *rinv = fvec(nh);
    float *S = fvec(nh), *q = fvec(n), *f = fvec(nh), *du = fvec(n), *dS = fvec(nh), *dden = fvec(nh);
    float *ru = fvec(n), *dg = fvec(n);
    void *d_g = dev_bf(g, n), *d_u = dev_poison_bf(n), *d_q = dev_poison_bf(n), *d_dg = dev_poison_bf(n);
    float *d_nrm = dev_poison_f32(nh), *d_C = dev_poison_f32(n), *d_den = dev_poison_f32(nh);
    float *d_rinv = dev_poison_f32(nh), *d_S = dev_poison_f32(nh), *d_f = dev_poison_f32(nh);
    float *d_du = dev_poison_f32(n), *d_dS = dev_poison_f32(nh), *d_dden = dev_poison_f32(nh);
    float *d_ru = dev_poison_f32(n), *d_Sd = dev_poison_f32(nh), *d_rev = dev_poison_f32(n);
    gpu_mga_unit_forward(&G, d_u, d_nrm, d_g, nh, hd);
    op_mga_unit_forward(NULL, u, nrm, g, nh, hd);
    check_bf("mga_unit_forward", "u", shape, d_u, u, n, 1e-2);
    check_f32("mga_unit_forward", "nrm", shape, d_nrm, nrm, nh, 1e-4);
    float *ug = get_bf(d_u, n);
    gpu_time_cumsum(&G, d_C, d_u, 1, B, T, H * hd, 0);
    op_time_cumsum(NULL, C, ug, 1, B, T, H * hd, 0);
    check_f32("time_cumsum", "C (bf16 in)", shape, d_C, C, n, 1e-4);
    float *Cg = get_f32(d_C, n);
    gpu_mga_den_forward(&G, d_den, d_rinv, d_u, d_C, B, T, H, hd, W, fa);
    op_mga_den_forward(NULL, den, rinv, ug, Cg, B, T, H, hd, W, fa);
    check_f32("mga_den_forward", "den", shape, d_den, den, nh, 1e-4);
    float *rg = get_f32(d_rinv, nh);
    gpu_time_cumsum(&G, d_S, d_rinv, 0, B, T, H, 0);
    op_time_cumsum(NULL, S, rg, 0, B, T, H, 0);
    check_f32("time_cumsum", "S (fp32 in)", shape, d_S, S, nh, 1e-5);
    float *Sg = get_f32(d_S, nh), *deng = get_f32(d_den, nh);
    gpu_mga_query_forward(&G, d_q, d_f, d_u, d_den, d_S, B, T, H, hd, fa);
    op_mga_query_forward(NULL, q, f, ug, deng, Sg, B, T, H, hd, fa);
    check_bf("mga_query_forward", "q", shape, d_q, q, n, 1e-2);
    check_f32("mga_query_forward", "f", shape, d_f, f, nh, 1e-5);
    float *fg = get_f32(d_f, nh), *dq = rand_bf(n, 1), *dk = rand_bf(n, 1);
    void *d_dq = dev_bf(dq, n), *d_dk = dev_bf(dk, n);
    gpu_mga_query_backward(&G, d_du, d_dS, d_dden, d_dq, d_dk, d_u, d_f, d_den, d_S, B, T, H, hd, fa);
    op_mga_query_backward(NULL, du, dS, dden, dq, dk, ug, fg, deng, Sg, B, T, H, hd, fa);
    check_f32("mga_query_backward", "du", shape, d_du, du, n, 1e-5);
    check_f32("mga_query_backward", "dS", shape, d_dS, dS, nh, 1e-4);
    check_f32("mga_query_backward", "dden", shape, d_dden, dden, nh, 1e-4);
    float *dSg = get_f32(d_dS, nh), *Sd = fvec(nh);
    gpu_time_cumsum(&G, d_Sd, d_dS, 0, B, T, H, 1);
    op_time_cumsum(NULL, Sd, dSg, 0, B, T, H, 1);
    check_f32("time_cumsum", "Sd (reverse)", shape, d_Sd, Sd, nh, 1e-4);
    float *dug = get_f32(d_du, n), *ddg = get_f32(d_dden, nh), *Sdg = get_f32(d_Sd, nh);
    memcpy(du, dug, n * 4);
    gpu_mga_den_backward(&G, d_du, d_ru, d_u, d_C, d_den, d_dden, d_Sd, B, T, H, hd, W, fa);
    op_mga_den_backward(NULL, du, ru, ug, Cg, deng, ddg, Sdg, B, T, H, hd, W, fa);
    check_f32("mga_den_backward", "du", shape, d_du, du, n, 1e-4);
    check_f32("mga_den_backward", "ru", shape, d_ru, ru, n, 1e-4);
    float *rug = get_f32(d_ru, n), *rev = fvec(n), *dug2 = get_f32(d_du, n);
    gpu_time_cumsum(&G, d_rev, d_ru, 0, B, T, H * hd, 1);
    op_time_cumsum(NULL, rev, rug, 0, B, T, H * hd, 1);
    check_f32("time_cumsum", "Rev (reverse)", shape, d_rev, rev, n, 1e-4);
    float *revg = get_f32(d_rev, n), *nrmg = get_f32(d_nrm, nh);
    gpu_mga_unit_backward(&G, d_dg, d_du, d_rev, d_u, d_nrm, B, T, H, hd, W);
    op_mga_unit_backward(NULL, dg, dug2, revg, ug, nrmg, B, T, H, hd, W);
    check_bf("mga_unit_backward", "dg", shape, d_dg, dg, n, 1e-2);
    void *dev[] = {d_g, d_u, d_q, d_dg, d_nrm, d_C, d_den, d_rinv, d_S, d_f, d_du, d_dS, d_dden, d_ru, d_Sd, d_rev,
                   d_dq, d_dk};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) gpu_free(&G, dev[i]);
    float *host[] = {g, u, nrm, C, den, rinv, S, q, f, du, dS, dden, ru, dg, ug, Cg, rg, Sg, deng, fg, dq, dk, dSg, Sd,
                     dug, ddg, Sdg, rug, rev, dug2, revg, nrmg};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
}

/* MGA's gate ops: the 3-tap depthwise conv + SiLU and the sigmoid gate, forward and backward */
static void t_mga_gate(int B, int T, int C, int shift) {
    char shape[64];
    snprintf(shape, sizeof shape, "B=%d T=%d C=%d shift=%d", B, T, C, shift);
    size_t n = (size_t)B * T * C;
    float *x = rand_bf(n, 1), *w = rand_bf((size_t)C * 3, 1), *du = rand_bf(n, 1), *dx0 = rand_bf(n, 1);
    float *conv = fvec(n), *u = fvec(n), *dx = fvec(n), *dw = calloc((size_t)C * 3, 4);
    void *d_x = dev_bf(x, n), *d_w = dev_bf(w, (size_t)C * 3), *d_du = dev_bf(du, n), *d_dx = dev_bf(dx0, n);
    void *d_conv = dev_poison_bf(n), *d_u = dev_poison_bf(n);
    float *d_dw = dev_f32(dw, (size_t)C * 3);
    gpu_dwconv3_silu_forward(&G, d_conv, d_u, d_x, d_w, B, T, C, shift);
    op_dwconv3_silu_forward(NULL, conv, u, x, w, B, T, C, shift);
    check_bf("dwconv3_silu_fwd", "conv", shape, d_conv, conv, n, 1e-2);
    check_bf("dwconv3_silu_fwd", "u", shape, d_u, u, n, 1e-2);
    float *cg = get_bf(d_conv, n);
    memcpy(dx, dx0, n * 4);
    gpu_dwconv3_silu_backward(&G, d_dx, d_dw, d_du, d_conv, d_x, d_w, B, T, C, shift, 1);
    op_dwconv3_silu_backward(NULL, dx, dw, du, cg, x, w, B, T, C, shift, 1);
    check_bf("dwconv3_silu_bwd", "dx (+=)", shape, d_dx, dx, n, 1e-2);
    check_f32("dwconv3_silu_bwd", "dw", shape, d_dw, dw, (size_t)C * 3, 1e-4);
    /* the gate: a * sigmoid(g), over the same buffers */
    float *out = fvec(n), *da = fvec(n), *dg = fvec(n);
    void *d_out = dev_poison_bf(n), *d_da = dev_poison_bf(n), *d_dg = dev_poison_bf(n);
    gpu_sigmoid_gate_forward(&G, d_out, d_x, d_du, n);
    op_sigmoid_gate_forward(NULL, out, x, du, n);
    check_bf("sigmoid_gate_fwd", "out", shape, d_out, out, n, 1e-2);
    gpu_sigmoid_gate_backward(&G, d_da, d_dg, d_dx, d_x, d_du, n);
    float *dxg = get_bf(d_dx, n);
    op_sigmoid_gate_backward(NULL, da, dg, dxg, x, du, n);
    check_bf("sigmoid_gate_bwd", "da", shape, d_da, da, n, 1e-2);
    check_bf("sigmoid_gate_bwd", "dgate", shape, d_dg, dg, n, 1e-2);
    void *dev[] = {d_x, d_w, d_du, d_dx, d_conv, d_u, d_dw, d_out, d_da, d_dg};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) gpu_free(&G, dev[i]);
    float *host[] = {x, w, du, dx0, conv, u, dx, dw, cg, out, da, dg, dxg};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) free(host[i]);
}

static void t_swiglu_add(int N, int F) {
    char shape[64];
    size_t n = (size_t)N * F;
    snprintf(shape, sizeof shape, "N=%d F=%d", N, F);
    /* swiglu on the fused gate|up rows gu [N, 2F] */
    float *gu = rand_bf(2 * n, 4), *ref = fvec(n), *dref = fvec(2 * n);
    void *d_gu = dev_bf(gu, 2 * n), *d_o = dev_poison_bf(n), *d_dgu = dev_poison_bf(2 * n);
    float *g = rand_bf(n, 4), *u = rand_bf(n, 2), *dout = rand_bf(n, 1);
    float *out = fvec(n), *dg = fvec(n), *du = fvec(n);
    void *d_g = dev_bf(g, n), *d_u = dev_bf(u, n), *d_dout = dev_bf(dout, n);
    void *d_out = dev_poison_bf(n), *d_dg = dev_poison_bf(n), *d_du = dev_poison_bf(n);
    gpu_swiglu_forward(&G, d_o, d_gu, N, F);
    op_swiglu_forward(NULL, ref, gu, N, F);
    check_bf("swiglu_forward", "out", shape, d_o, ref, n, 1e-2);
    void *d_act = dev_poison_bf(n);
    gpu_swiglu_backward(&G, d_dgu, d_act, d_dout, d_gu, N, F);
    op_swiglu_backward(NULL, dref, NULL, dout, gu, N, F);
    check_bf("swiglu_backward", "dgu", shape, d_dgu, dref, 2 * n, 1e-2);
    check_bf("swiglu_backward", "act (recomputed)", shape, d_act, ref, n, 1e-2);
    gpu_free(&G, d_act);
    gpu_free(&G, d_gu); gpu_free(&G, d_o); gpu_free(&G, d_dgu);
    free(gu); free(ref); free(dref);
    /* add, out aliasing a (the residual stream is updated in place) */
    gpu_add(&G, d_g, d_g, d_u, n);
    op_add(NULL, out, g, u, n);
    check_bf("add", "out=a+b", shape, d_g, out, n, 1e-2);
    /* unaligned pointers take the scalar path */
    void *d_out2 = dev_poison_bf(n);
    gpu_add(&G, (char *)d_out2 + 2, (char *)d_u + 2, (char *)d_dout + 2, n - 1);
    op_add(NULL, out, u + 1, dout + 1, n - 1);
    check_bf("add (unaligned)", "out", shape, (char *)d_out2 + 2, out, n - 1, 1e-2);
    gpu_free(&G, d_g); gpu_free(&G, d_u); gpu_free(&G, d_dout); gpu_free(&G, d_out);
    gpu_free(&G, d_dg); gpu_free(&G, d_du); gpu_free(&G, d_out2);
    free(g); free(u); free(dout); free(out); free(dg); free(du);
}

/* residual dropout: gpu_resid_dropout's mask is op_resid_dropout's bit for bit (the zeros
   where the CPU drops, compared one by one: bound 0 mismatches), the kept values scaled alike
   (1e-2); the step and micro-batch come from device memory, and gpu_dropout_next counts there */
static void t_resid_dropout(size_t n, float p, int layer, int branch) {
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu p=%g l=%d br=%d", n, (double)p, layer, branch);
    float *x = fvec(n), *ref = fvec(n);
    for (size_t i = 0; i < n; i++) x[i] = ref[i] = h_bf2f(h_f2bf(0.5f + fabsf(frand()))); /* none 0 */
    int ctr[2] = {9, 2};
    int *d_ctr = dev_bytes(ctr, sizeof ctr);
    void *d_x = dev_bf(x, n);
    OpsDropout d = {0};
    d.seed = 1337; d.layer = layer; d.step = ctr[0]; d.micro = ctr[1];
    op_resid_dropout(NULL, ref, n, p, &d, branch);
    gpu_resid_dropout(&G, d_x, n, p, d.seed, d_ctr, layer, branch);
    float *g = get_bf(d_x, n);
    long mism = 0, dropped = 0;
    for (size_t i = 0; i < n; i++) { mism += (g[i] == 0) != (ref[i] == 0); dropped += ref[i] == 0; }
    report("resid_dropout", "mask (mismatches)", shape, (double)mism, 0);
    report("resid_dropout", "kept x/(1-p)", shape, relerr(g, ref, n), 1e-2);
    printf("      %ld of %zu dropped\n", dropped, n);
    gpu_dropout_next(&G, d_ctr);
    int after[2];
    gpu_download(&G, after, d_ctr, sizeof after);
    report("dropout_next", "{9, 2} -> {9, 3}", shape, after[0] == 9 && after[1] == 3 ? 0 : 1, 0);
    free(g); free(x); free(ref);
    gpu_free(&G, d_x); gpu_free(&G, d_ctr);
}

static void t_xent(int N, int C, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d C=%d V=%d", N, C, V);
    float *h = rand_bf((size_t)N * C, 1), *wte = rand_bf((size_t)V * C, 0.1f);
    int *tgt = malloc(sizeof(int) * N), valid = 0;
    for (int n = 0; n < N; n++) {
        tgt[n] = n % 7 == 3 ? -1 : (int)((frand() + 1) * 0.5f * V) % V; /* some ignored rows */
        valid += tgt[n] >= 0;
    }
    float dloss = 1.0f / valid;
    float *loss = fvec(N), *loss2 = fvec(N), *dh = fvec((size_t)N * C), *dwte = rand_bf((size_t)V * C, 0.01f);
    void *d_h = dev_bf(h, (size_t)N * C), *d_wte = dev_bf(wte, (size_t)V * C);
    int *d_tgt = dev_bytes(tgt, sizeof(int) * N);
    float *d_loss = dev_poison_f32(N), *d_loss2 = dev_poison_f32(N), *d_dwte = dev_f32(dwte, (size_t)V * C);
    void *d_dh = dev_poison_bf((size_t)N * C);
    gpu_xent_forward(&G, d_loss, NULL, d_h, d_wte, d_tgt, N, C, V);
    op_xent_forward(NULL, loss, NULL, h, wte, tgt, N, C, V);
    check_f32("xent_forward", "losses", shape, d_loss, loss, N, 1e-2);
    /* top-1 hits: every third row's target is made its argmax (on the reference's logits), so
       both outcomes occur; rows whose best two logits are within bf16 rounding may disagree */
    {
        int *tgt2 = malloc(sizeof(int) * N), mismatch = 0, hits = 0;
        float *corr = fvec(N), *gcorr = fvec(N);
        for (int n = 0; n < N; n++) {
            tgt2[n] = tgt[n];
            if (n % 3 == 0) {
                double best = -1e30;
                for (int j = 0; j < V; j++) {
                    double d = 0;
                    for (int c = 0; c < C; c++) d += (double)h[(size_t)n * C + c] * wte[(size_t)j * C + c];
                    if (d > best) { best = d; tgt2[n] = j; }
                }
            }
        }
        int *d_tgt2 = dev_bytes(tgt2, sizeof(int) * N);
        float *d_corr = dev_poison_f32(N);
        gpu_xent_forward(&G, d_loss, d_corr, d_h, d_wte, d_tgt2, N, C, V);
        op_xent_forward(NULL, loss, corr, h, wte, tgt2, N, C, V);
        gpu_download(&G, gcorr, d_corr, sizeof(float) * N);
        for (int n = 0; n < N; n++) { mismatch += gcorr[n] != corr[n]; hits += corr[n] == 1.0f; }
        /* reported as the fraction of rows that disagree (bound 2%); too few hits fails */
        report("xent_forward", "top-1 hits", shape, hits >= N / 4 ? (double)mismatch / N : 1.0, 0.02);
        gpu_free(&G, d_tgt2); gpu_free(&G, d_corr);
        free(tgt2); free(corr); free(gcorr);
    }
    gpu_xent_backward(&G, d_loss2, d_dh, d_dwte, d_h, d_wte, d_tgt, N, C, V, dloss);
    op_xent_backward(NULL, loss2, dh, dwte, h, wte, tgt, N, C, V, dloss);
    check_f32("xent_backward", "losses", shape, d_loss2, loss2, N, 1e-2);
    check_bf("xent_backward", "dh", shape, d_dh, dh, (size_t)N * C, 1e-2);
    check_f32("xent_backward", "dwte+=", shape, d_dwte, dwte, (size_t)V * C, 1e-2);
    gpu_free(&G, d_h); gpu_free(&G, d_wte); gpu_free(&G, d_tgt); gpu_free(&G, d_loss);
    gpu_free(&G, d_loss2); gpu_free(&G, d_dwte); gpu_free(&G, d_dh);
    free(h); free(wte); free(tgt); free(loss); free(loss2); free(dh); free(dwte);
}

static void t_optim(size_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "n=%zu", n);
    float *p = fvec(n), *gr = fvec(n), *m = fvec(n), *v = fvec(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = frand(); gr[i] = frand() * 0.01f; m[i] = frand() * 0.01f; v[i] = fabsf(frand()) * 1e-4f;
    }
    float *d_p = dev_f32(p, n), *d_g = dev_f32(gr, n), *d_m = dev_f32(m, n), *d_v = dev_f32(v, n);
    float *d_ss = gpu_alloc(&G, 4);
    void *d_pb = dev_poison_bf(n);
    /* sum of squares against a double reference */
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)gr[i] * gr[i];
    float ssf = (float)ss;
    gpu_memset0(&G, d_ss, 4);
    gpu_sumsq(&G, d_ss, d_g, n);
    check_f32("sumsq", "sum", shape, d_ss, &ssf, 1, 1e-5);
    /* unaligned start: the scalar path */
    double ss1 = ss - (double)gr[0] * gr[0];
    float ss1f = (float)ss1;
    gpu_memset0(&G, d_ss, 4);
    gpu_sumsq(&G, d_ss, d_g + 1, n - 1);
    check_f32("sumsq (unaligned)", "sum", shape, d_ss, &ss1f, 1, 1e-5);
    gpu_memset0(&G, d_ss, 4);
    gpu_sumsq(&G, d_ss, d_g, n);
    /* AdamW with clipping active: clip below the norm */
    float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, clip = (float)sqrt(ss) * 0.5f;
    float bc1 = 1 - powf(b1, 3), bc2 = 1 - powf(b2, 3);
    gpu_adamw(&G, d_p, d_pb, d_g, d_m, d_v, n, lr, b1, b2, eps, wd, bc1, bc2, d_ss, clip, NULL);
    double scale = clip / sqrt(ss);
    for (size_t i = 0; i < n; i++) {
        float g = (float)(gr[i] * scale);
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= lr * wd * p[i];
        p[i] -= lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
    }
    check_f32("adamw", "param", shape, d_p, p, n, 1e-5);
    check_f32("adamw", "m", shape, d_m, m, n, 1e-5);
    check_f32("adamw", "v", shape, d_v, v, n, 1e-5);
    check_bf("adamw", "param_bf16", shape, d_pb, p, n, 1e-2);
    /* unaligned (scalar path), no bf16 copy, no clipping */
    gpu_adamw(&G, d_p + 1, NULL, d_g + 1, d_m + 1, d_v + 1, n - 1, lr, b1, b2, eps, wd, bc1, bc2, NULL, 0, NULL);
    for (size_t i = 1; i < n; i++) {
        float g = gr[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= lr * wd * p[i];
        p[i] -= lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
    }
    check_f32("adamw (unaligned)", "param", shape, d_p, p, n, 1e-5);
    check_f32("adamw (unaligned)", "v", shape, d_v, v, n, 1e-5);
    /* schedule values from device memory (what a CUDA graph of the update uses); the
       arguments are deliberately wrong and must be ignored */
    float hyper[3] = {2e-3f, 1 - powf(b1, 4), 1 - powf(b2, 4)};
    float *d_hyper = dev_f32(hyper, 3);
    gpu_adamw(&G, d_p, NULL, d_g, d_m, d_v, n, 99.0f, b1, b2, eps, wd, 7.0f, 7.0f, NULL, 0, d_hyper);
    for (size_t i = 0; i < n; i++) {
        float g = gr[i];
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= hyper[0] * wd * p[i];
        p[i] -= hyper[0] * (m[i] / hyper[1]) / (sqrtf(v[i] / hyper[2]) + eps);
    }
    check_f32("adamw (device lr, bias corrections)", "param", shape, d_p, p, n, 1e-5);
    gpu_free(&G, d_hyper);
    /* fp32 -> bf16 conversion: bit-exact, specials and ties included */
    float *x = fvec(n);
    for (size_t i = 0; i < n; i++) x[i] = frand() * 100;
    uint32_t specials[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x3f808000u, 0x3f818000u, 0x00000001u,
                           0x80000000u, 0x7f7fffffu};
    for (size_t i = 0; i < sizeof specials / 4 && i < n; i++) memcpy(&x[i], &specials[i], 4);
    float *d_x = dev_f32(x, n);
    gpu_f32_to_bf16(&G, d_pb, d_x, n);
    uint16_t *hb = malloc(n * 2);
    gpu_download(&G, hb, d_pb, n * 2);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t want = h_f2bf(x[i]);
        int both_nan = (want & 0x7fff) > 0x7f80 && (hb[i] & 0x7fff) > 0x7f80;
        bad += hb[i] != want && !both_nan;
    }
    report("f32_to_bf16", "bits", shape, (double)bad, 0);
    gpu_free(&G, d_p); gpu_free(&G, d_g); gpu_free(&G, d_m); gpu_free(&G, d_v); gpu_free(&G, d_ss);
    gpu_free(&G, d_pb); gpu_free(&G, d_x);
    free(p); free(gr); free(m); free(v); free(x); free(hb);
}

/* ---- timing at realistic sizes (SmolLM2-135M: C=576, F=1536, V=49152) ---- */

typedef struct { CUevent a, b; } Timer;
static void t_start(Timer *t) {
    CU_CHECK(gpu_cu()->cuEventCreate(&t->a, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&t->b, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventRecord(t->a, G.stream));
}
static double t_stop_ms(Timer *t, int iters) {
    float ms;
    CU_CHECK(gpu_cu()->cuEventRecord(t->b, G.stream));
    CU_CHECK(gpu_cu()->cuEventSynchronize(t->b));
    CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms, t->a, t->b));
    CU_CHECK(gpu_cu()->cuEventDestroy(t->a));
    CU_CHECK(gpu_cu()->cuEventDestroy(t->b));
    return ms / iters;
}
#define BENCH(label, iters, unit_amount, unit, call)                                      \
    do {                                                                                  \
        call; /* warm-up: compiles and picks the GEMM plan */                             \
        Timer tm_;                                                                        \
        t_start(&tm_);                                                                    \
        for (int it_ = 0; it_ < (iters); it_++) { call; }                                 \
        double ms_ = t_stop_ms(&tm_, (iters));                                            \
        printf("  %-44s %8.3f ms  %8.1f %s\n", label, ms_, (unit_amount) / (ms_ * 1e-3), unit); \
    } while (0)

static void bench(void) {
    int N = 16384, C = 576, F = 1536, V = 49152;
    size_t big = (size_t)N * F;
    void *a = gpu_alloc(&G, big * 2), *b = gpu_alloc(&G, big * 2), *c = gpu_alloc(&G, big * 2);
    void *w = gpu_alloc(&G, (size_t)V * C * 2);
    float *dw = gpu_alloc(&G, (size_t)V * C * 4), *st = gpu_alloc(&G, (size_t)N * 4);
    int *tgt = gpu_alloc(&G, sizeof(int) * N);
    gpu_memset0(&G, a, big * 2); gpu_memset0(&G, b, big * 2); gpu_memset0(&G, c, big * 2);
    gpu_memset0(&G, w, (size_t)V * C * 2); gpu_memset0(&G, dw, (size_t)V * C * 4);
    gpu_memset0(&G, tgt, sizeof(int) * N);
    printf("\ntiming (N=%d tokens, C=%d, F=%d, V=%d)\n", N, C, F, V);
    double fl = 2.0 * N * C * F;
    BENCH("matmul_forward  [N,C]x[F,C]^T", 20, fl / 1e12, "TFLOP/s", gpu_matmul_forward(&G, a, b, w, N, C, F));
    BENCH("matmul_backward din+dw", 20, 2 * fl / 1e12, "TFLOP/s",
          gpu_matmul_backward(&G, b, dw, a, c, w, N, C, F, 0));
    double nb = (double)N * C * 2;
    BENCH("rmsnorm_forward", 50, 2 * nb / 1e9, "GB/s", gpu_rmsnorm_forward(&G, a, st, b, w, N, C, 1e-5f));
    BENCH("rmsnorm_backward", 50, 3 * nb / 1e9, "GB/s", gpu_rmsnorm_backward(&G, a, dw, b, c, w, st, N, C, 0));
    BENCH("rope_forward (9 heads x 64)", 50, 2 * (double)N * 576 * 2 / 1e9, "GB/s",
          gpu_rope_forward(&G, a, N, 2048, 9, 64, 10000.0f));
    BENCH("qkv_split (9 + 2 x 3 heads x 64)", 50, 2 * (double)N * 960 * 2 / 1e9, "GB/s",
          gpu_qkv_split(&G, b, c, (char *)c + (size_t)N * 192 * 2, a, N, 2048, 9, 3, 64, 10000.0f, 0));
    BENCH("swiglu_forward [N,F/2]", 50, 1.5 * (double)big * 2 / 1e9, "GB/s", gpu_swiglu_forward(&G, a, b, N, F / 2));
    BENCH("swiglu_backward [N,F/2]", 50, 2.5 * (double)big * 2 / 1e9, "GB/s",
          gpu_swiglu_backward(&G, a, NULL, c, b, N, F / 2));
    BENCH("add [N,C]", 50, 3 * nb / 1e9, "GB/s", gpu_add(&G, a, a, b, (size_t)N * C));
    BENCH("embed_forward", 50, 2 * nb / 1e9, "GB/s", gpu_embed_forward(&G, a, tgt, w, N, C));
    double xf = 2.0 * N * C * V;
    BENCH("xent_forward (logits GEMM + rows)", 5, xf / 1e12, "TFLOP/s",
          gpu_xent_forward(&G, st, NULL, b, w, tgt, N, C, V));
    BENCH("xent_backward (fused fwd+bwd, 3 GEMMs)", 5, 3 * xf / 1e12, "TFLOP/s",
          gpu_xent_backward(&G, st, a, dw, b, w, tgt, N, C, V, 1.0f / N));
    size_t np = (size_t)135 << 20;
    gpu_free(&G, a); gpu_free(&G, b); gpu_free(&G, c);
    float *p = gpu_alloc(&G, np * 4), *g = gpu_alloc(&G, np * 4), *m = gpu_alloc(&G, np * 4),
          *v = gpu_alloc(&G, np * 4), *ss = gpu_alloc(&G, 4);
    void *pb = gpu_alloc(&G, np * 2);
    gpu_memset0(&G, p, np * 4); gpu_memset0(&G, g, np * 4); gpu_memset0(&G, m, np * 4);
    gpu_memset0(&G, v, np * 4); gpu_memset0(&G, ss, 4);
    BENCH("sumsq (135M fp32)", 10, (double)np * 4 / 1e9, "GB/s", gpu_sumsq(&G, ss, g, np));
    BENCH("adamw (135M params, bf16 copy)", 10, (double)np * 22 / 1e9, "GB/s",
          gpu_adamw(&G, p, pb, g, m, v, np, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.5f, ss, 1.0f, NULL));
    printf("  peak device memory %.2f GiB (this test)\n", G.peak_bytes / 1073741824.0);
}

int main(int argc, char **argv) {
    if (gpu_init(&G, 0) != 0) { fprintf(stderr, "gpu_ops_check: no usable GPU: %s\n", G.err); return 2; }
    G.tuning.xent_chunk_bytes = (size_t)1 << 20; /* small chunks in the checks: exercise the chunk loop */
    printf("device: sm_%d%d, %d SMs, NVRTC target %s\n\n", G.cc_major, G.cc_minor, G.sm_count, G.arch);
    t_embed(1000, 576, 300);
    t_embed(333, 100, 50);      /* C % 8 != 0: scalar path */
    t_matmul(512, 576, 1536);
    t_matmul(300, 1536, 576);
    t_matmul(77, 100, 200);     /* odd sizes, unaligned leading dimensions */
    t_rmsnorm(1000, 576);
    t_rmsnorm(4000, 64);        /* QK-norm rows */
    t_rmsnorm(123, 100);
    t_rmsnorm(64, 2304);        /* > 48 KiB of shared memory: the opt-in path */
    t_rmsnorm(1, 1024);         /* one row (a decode step) */
    t_rmsnorm(3, 1032);         /* a width past 4 passes of 256 columns */
    t_rope(2 * 256, 256, 9, 64, 10000.0f);
    t_rope(2048, 2048, 3, 64, 100000.0f);
    t_rope(64, 32, 4, 32, 10000.0f);
    t_rope_part(300, 100, 9, 96, 64, 32);  /* MLA q: rotary last 32 of 96 */
    t_qkv_split(2 * 256, 256, 9, 3, 64, 100000.0f); /* the 135M shape's heads */
    t_qkv_split(300, 100, 4, 4, 32, 10000.0f);       /* MHA, a partial last sequence */
    t_qkv_split(130, 65, 8, 1, 128, 0.0f);           /* MQA, no rotation: a plain split */
    t_qkv_split(50, 10, 2, 1, 12, 10000.0f);         /* hd/2 = 6: element by element */
    t_rope_part(300, 100, 1, 288, 256, 32); /* MLA kv_a: one shared rotary key after the latent */
    t_rope_part(77, 77, 3, 40, 24, 16);
    t_copy_cols(1000, 64, 96, 64, 1, 0, 1.0f, 0);     /* 16-byte path */
    t_copy_cols(1000, 48, 96, 64, 1, 0, 1.41421f, 1); /* scaled, accumulated */
    t_copy_cols(333, 13, 29, 17, 1, 0, 0.5f, 0);      /* odd: the scalar path */
    t_copy_cols(500, 32, 9 * 64, 288, 9, 64, 1.0f, 0);  /* MLA: rotary key gradient summed over 9 heads */
    t_copy_cols(100, 5, 50, 7, 3, 11, 1.0f, 0);
    t_mga(2, 300, 3, 64, 0, 0);
    t_mga(2, 77, 2, 32, 16, 0);   /* window, T not a multiple of the 32 scan segments */
    t_mga(1, 1000, 4, 64, 0, 1);  /* faithful */
    t_mga_gate(2, 300, 576, 2);   /* causal taps */
    t_mga_gate(3, 77, 100, 1);    /* centred taps, odd sizes */
    t_swiglu_add(1001, 999); /* F % 8 != 0: the scalar path */
    t_xent(300, 576, 4096);     /* 1 MiB chunks: 128 rows each, last chunk partial */
    t_xent(100, 64, 1001);      /* V % 8 != 0: scalar path */
    t_optim(1000003);
    t_resid_dropout(1000003, 0.1f, 3, 1);
    t_resid_dropout(4097, 0.5f, 0, 0);
    printf("\n%d passed, %d failed\n", n_pass, n_fail);
    G.tuning.xent_chunk_bytes = 0; /* the default for timing */
    if (!(argc > 1 && strcmp(argv[1], "--no-bench") == 0)) bench();
    gpu_free_all(&G);
    return n_fail ? 1 : 0;
}
