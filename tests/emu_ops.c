/* emu_ops.c - kernels.cu.h's common training kernels run on the CPU emulation of CUDA
   (tests/emu_cuda.h: a block's threads as fibers, barriers real, shuffles and ballots through
   per-warp slots) against ops.h's CPU reference computed in double on the same bf16 inputs,
   launched with the grids gpu.h's launchers give them (small grids, so that the grid-stride
   loops wrap). It proves nothing about timing, and a race the barriers happen to order may still
   hide; tests/gpu_ops_check.c and tests/gpu_check.c on the device are the real tests.

   make tests/emu_ops && ./tests/emu_ops    (also in make emucheck)
   Kernels and cases:
     embed_forward (16-byte groups and not); the deterministic embedding backward (tok_max, the
       radix sort's hist / scan / scatter over 4 digits, embed_backward_runs and _carry) with
       runs of one token crossing tiles, token ids of one digit and of two, and again with the
       blocks in another order (the same bits); embed_backward (atomics)
     rmsnorm_forward, add_rmsnorm_forward (rows of 72 and 20 columns); rmsnorm_backward with its
       per-block partials and colsum_add (= and +=, repeated in another block order: the same
       bits) and with atomics
     qkv_split (split with RoPE, and theta 0; merge); rope on part of each head (forward, back)
     swiglu_forward / _backward (with act), add, xent_rows (a row without target, the gradient,
       the top-1 flag), sumsq with colsum_add and with atomics, adamw (4 at a time and not,
       clipped, hyper-parameters from memory), f32_to_bf16 / bf16_to_f32
     copy_cols (a scaled copy added in, a sum of column groups); MGA's mga_unit, mga_den,
       mga_query (forward and backward) and mga_unit_backward with and without a window, faithful
       or not, a zero row; time_cumsum (32 x 32 blocks; fp32 and bf16 input, both directions);
       dwconv3_silu both ways (the backward's 32 x 8 blocks over row slices, partials + colsum_add
       and atomics; = and +=), sigmoid_gate both ways; resid_dropout against the CPU's mask,
       dropout_next
   Bounds: bf16 outputs relative L2 5e-3 (their own rounding is ~2e-3), fp32 outputs 1e-5
   (sums in another order than the reference's), copies exact. Ends with "N passed, N failed". */
#define _GNU_SOURCE /* sincosf */
#define ABLATE_REAL double
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../ops.h"
#include "emu_cuda.h"

/* what kernels.cu.h uses beyond tests/emu_cuda.h's helpers (one fiber runs at a time: atomics are
   plain read-modify-writes; integer shuffles go through the float slots, exact for the counts
   and token ids here) */
typedef struct { float x, y, z, w; } float4;
typedef struct { u32 x, y; } uint2;
static inline uint2 make_uint2(u32 x, u32 y) { uint2 r = {x, y}; return r; }
static u32 pack2(float lo, float hi) { return (u32)f2bf(lo) | ((u32)f2bf(hi) << 16); } /* (the header's pre-sm_80 form) */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static float emu_atomic_add_f_(float *p, float v) { float o = *p; *p = o + v; return o; }
static int emu_atomic_add_i_(int *p, int v) { int o = *p; *p = o + v; return o; }
#define atomicAdd(p, v) _Generic((p), float *: emu_atomic_add_f_, int *: emu_atomic_add_i_)(p, v)
static int atomicMax(int *p, int v) { int o = *p; if (v > o) *p = v; return o; }
static float __shfl_up_sync(unsigned m, float v, int d) {
    (void)m; int w = warp_(), l = lane_();
    shfl_slot[w][l] = v; __syncwarp(); float r = l >= d ? shfl_slot[w][l - d] : v; __syncwarp(); return r;
}
static unsigned __match_any_sync(unsigned m, int x) {
    (void)m; int w = warp_(), l = lane_();
    bal_slot[w][l] = x; __syncwarp();
    unsigned r = 0; for (int i = 0; i < 32; i++) r |= (unsigned)(bal_slot[w][i] == x) << i;
    __syncwarp(); return r;
}
#include "emu_ops_kernels.inc"

/* ---------------------------------------------------------------- checks */
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double ur(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr(void) { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static int np_, nf_;
static void check(const char *what, double err, double tol) {
    int ok = isfinite(err) && err <= tol;
    printf("%s %-62s %.3e (tol %.1g)\n", ok ? "PASS" : "FAIL", what, err, tol);
    ok ? np_++ : nf_++;
}
/* relative L2 error of n values x (bf16 when bf, else float) against a double reference */
static double rel_of(const void *x, int bf, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (bf ? bf2f(((const bf16 *)x)[i]) : ((const float *)x)[i]) - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}
static double rel_bf(const bf16 *x, const double *ref, size_t n) { return rel_of(x, 1, ref, n); }
static double rel_f(const float *x, const double *ref, size_t n) { return rel_of(x, 0, ref, n); }
/* n random bf16 values (scale s), their double copy in *d */
static bf16 *rand_bf(size_t n, double s, double **d) {
    bf16 *b = malloc(n * 2 + 16);
    *d = malloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) { b[i] = f2bf((float)(s * nr())); (*d)[i] = bf2f(b[i]); }
    return b;
}
static double *to_d(const bf16 *b, size_t n) {
    double *d = malloc(n * sizeof(double) + 8);
    for (size_t i = 0; i < n; i++) d[i] = bf2f(b[i]);
    return d;
}
static size_t differing(const void *a, const void *b, size_t bytes) {
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) n += ((const unsigned char *)a)[i] != ((const unsigned char *)b)[i];
    return n;
}
/* 16-byte aligned buffers (the kernels' vec paths read 16 bytes at a time) */
static void *al16(size_t bytes) { return aligned_alloc(16, (bytes + 15) / 16 * 16); }

/* ---------------------------------------------------------------- the kernels' launches */
/* gpu_launch1d_'s grid, capped low so that the grid-stride loops take several turns */
static unsigned grid1d(size_t work) { size_t b = (work + 255) / 256; return (unsigned)(b < 1 ? 1 : b > 3 ? 3 : b); }

static struct { bf16 *out; const int *tok; const bf16 *wte; int N, C, vec; } a_emb;
static void b_emb(void *p) { (void)p; embed_forward(a_emb.out, a_emb.tok, a_emb.wte, a_emb.N, a_emb.C, a_emb.vec); }

static struct {
    float *dwte, *carry; const bf16 *dout; const int *tok; int *maxtok, *counts, *ord[2]; const int *src; int *dst;
    int N, C, M, shift, vec;
} a_eb;
static void b_tokmax(void *p) { (void)p; tok_max(a_eb.maxtok, a_eb.tok, a_eb.N); }
static void b_hist(void *p) { (void)p; radix_hist(a_eb.counts, a_eb.src, a_eb.tok, a_eb.maxtok, a_eb.N, a_eb.shift); }
static void b_scan(void *p) { (void)p; radix_scan(a_eb.counts, a_eb.maxtok, a_eb.M, a_eb.shift); }
static void b_scat(void *p) {
    (void)p;
    radix_scatter(a_eb.dst, a_eb.src, a_eb.tok, a_eb.counts, a_eb.maxtok, a_eb.N, a_eb.shift);
}
static void b_runs(void *p) {
    (void)p;
    embed_backward_runs(a_eb.dwte, a_eb.carry, a_eb.dout, a_eb.tok, a_eb.ord[1], a_eb.N, a_eb.C, a_eb.vec);
}
static void b_carry(void *p) { (void)p; embed_backward_carry(a_eb.dwte, a_eb.carry, a_eb.tok, a_eb.ord[1], a_eb.N, a_eb.C); }
static void b_eb_atomic(void *p) { (void)p; embed_backward(a_eb.dwte, a_eb.dout, a_eb.tok, a_eb.N, a_eb.C, a_eb.vec); }

static unsigned round32(size_t n, unsigned cap) {
    size_t t = (n + 31) / 32 * 32;
    return (unsigned)(t < 32 ? 32 : t > cap ? cap : t);
}
/* gpu_embed_backward's deterministic sequence: the sort, the runs, the carries */
static void embed_backward_det(float *dwte, const bf16 *dout, const int *tok, int N, int C, int vec) {
    const int P = (N + RADIX_TILE - 1) / RADIX_TILE, R = (N + EMB_TILE - 1) / EMB_TILE;
    int *ords = malloc(sizeof(int) * 2 * (size_t)N), maxtok = 0, *counts = malloc(sizeof(int) * 256 * (size_t)P);
    float *carry = malloc(sizeof(float) * (size_t)R * C);
    a_eb.dwte = dwte, a_eb.carry = carry, a_eb.dout = dout, a_eb.tok = tok, a_eb.maxtok = &maxtok;
    a_eb.counts = counts, a_eb.ord[0] = ords, a_eb.ord[1] = ords + N, a_eb.N = N, a_eb.C = C, a_eb.M = 256 * P;
    a_eb.vec = vec;
    emu_grid(grid1d((size_t)N), 1, 256, b_tokmax, NULL);
    for (int pass = 0; pass < 4; pass++) {
        a_eb.shift = 8 * pass;
        a_eb.src = pass ? a_eb.ord[(pass - 1) & 1] : NULL;
        a_eb.dst = a_eb.ord[pass & 1];
        emu_grid((unsigned)P, 1, RADIX_TILE, b_hist, NULL);
        emu_grid(1, 1, 1024, b_scan, NULL);
        emu_grid((unsigned)P, 1, RADIX_TILE, b_scat, NULL);
    }
    emu_grid((unsigned)R, 1, round32(((size_t)C + 7) / 8, 256), b_runs, NULL);
    emu_grid((unsigned)R, 1, round32((size_t)C, 256), b_carry, NULL);
    free(ords); free(counts); free(carry);
}

static struct {
    bf16 *out, *sum, *din; float *rstd, *dw, *part; const bf16 *in, *a, *b, *w, *dout; const float *rs;
    int N, C, acc, vec; float eps;
} a_rn;
static void b_rn_fwd(void *p) { (void)p; rmsnorm_forward(a_rn.out, a_rn.rstd, a_rn.in, a_rn.w, a_rn.N, a_rn.C, a_rn.eps, a_rn.vec); }
static void b_arn_fwd(void *p) {
    (void)p;
    add_rmsnorm_forward(a_rn.sum, a_rn.out, a_rn.rstd, a_rn.a, a_rn.b, a_rn.w, a_rn.N, a_rn.C, a_rn.eps, a_rn.vec);
}
static void b_rn_bwd(void *p) {
    (void)p;
    rmsnorm_backward(a_rn.din, a_rn.dw, a_rn.part, a_rn.dout, a_rn.in, a_rn.w, a_rn.rs, a_rn.N, a_rn.C, a_rn.acc, a_rn.vec);
}
static struct { float *dst; const float *part; int rows, cols; } a_cs;
static void b_colsum(void *p) { (void)p; colsum_add(a_cs.dst, a_cs.part, a_cs.rows, a_cs.cols); }
/* gpu_colsum_add_'s launch: 32 columns a block of 32 x 32 threads */
static void colsum(float *dst, const float *part, int rows, int cols) {
    a_cs.dst = dst, a_cs.part = part, a_cs.rows = rows, a_cs.cols = cols;
    emu_grid2d((unsigned)((cols + 31) / 32), 1, 32, 32, b_colsum, NULL);
}

static struct { bf16 *q, *k, *v, *qkv, *x; int N, T, H, KV, hd, nh, ld, merge; float theta, sign; } a_qk;
static void b_qkv(void *p) {
    (void)p;
    qkv_split(a_qk.q, a_qk.k, a_qk.v, a_qk.qkv, a_qk.N, a_qk.T, a_qk.H, a_qk.KV, a_qk.hd, a_qk.theta, a_qk.merge);
}
static void b_rope(void *p) { (void)p; rope(a_qk.x, a_qk.N, a_qk.T, a_qk.nh, a_qk.ld, a_qk.hd, a_qk.theta, a_qk.sign); }

static struct { bf16 *out, *dgu, *act; const bf16 *gu, *dout, *a, *b; u64 N, F, n; int vec; } a_sw;
static void b_sw_fwd(void *p) { (void)p; swiglu_forward(a_sw.out, a_sw.gu, a_sw.gu + a_sw.F, a_sw.N, a_sw.F, 2 * a_sw.F, a_sw.vec); }
static void b_sw_bwd(void *p) {
    (void)p;
    swiglu_backward(a_sw.dgu, a_sw.dgu + a_sw.F, a_sw.act, a_sw.dout, a_sw.gu, a_sw.gu + a_sw.F, a_sw.N, a_sw.F,
                    2 * a_sw.F, a_sw.vec);
}
static void b_add(void *p) { (void)p; add(a_sw.out, a_sw.a, a_sw.b, a_sw.n, a_sw.vec); }

static struct { bf16 *logits; float *losses, *correct; const int *tgt; int V, grad, vec; float dloss; } a_xe;
static void b_xent(void *p) {
    (void)p;
    xent_rows(a_xe.logits, (u64)a_xe.V, a_xe.losses, a_xe.correct, a_xe.tgt, a_xe.V, a_xe.dloss, a_xe.grad, a_xe.vec);
}

static struct {
    float *out, *part, *p, *m, *v; bf16 *pb; const float *x, *g, *gn, *hyper; u64 n; int vec;
    float lr, b1, b2, eps, wd, bc1, bc2, clip;
} a_op;
static void b_sumsq(void *p) { (void)p; sumsq(a_op.out, a_op.part, a_op.x, a_op.n, a_op.vec); }
static void b_adamw(void *p) {
    (void)p;
    adamw(a_op.p, a_op.pb, a_op.g, a_op.m, a_op.v, a_op.n, a_op.lr, a_op.b1, a_op.b2, a_op.eps, a_op.wd, a_op.bc1,
          a_op.bc2, a_op.gn, a_op.clip, a_op.hyper, a_op.vec);
}
static void b_f2b(void *p) { (void)p; f32_to_bf16(a_op.pb, a_op.x, a_op.n); }
static void b_b2f(void *p) { (void)p; bf16_to_f32(a_op.p, a_op.pb, a_op.n); }

static struct { bf16 *dst; const bf16 *src; u64 dld, sld, gld, rows; int groups, cols, acc, vec; float scale; } a_cc;
static void b_copy(void *p) {
    (void)p;
    copy_cols(a_cc.dst, a_cc.dld, a_cc.src, a_cc.sld, a_cc.gld, a_cc.groups, a_cc.rows, a_cc.cols, a_cc.scale, a_cc.acc,
              a_cc.vec);
}

/* MGA's row kernels (a warp a row, 8 rows a block) and the running sum over time */
static struct {
    bf16 *u, *q, *dg; float *nrm, *den, *rinv, *f, *du, *dS, *dden, *ru, *out; const bf16 *g, *uu, *dq, *dk;
    const float *C, *S, *Sd, *Rev, *fin; const void *in;
    int B, T, H, hd, window, faithful, in_bf16, reverse; u64 rows;
} a_mg;
static void b_mg_unit(void *p) { (void)p; mga_unit_forward(a_mg.u, a_mg.nrm, a_mg.g, a_mg.rows, a_mg.hd); }
static void b_mg_cum(void *p) { (void)p; time_cumsum(a_mg.out, a_mg.in, a_mg.in_bf16, a_mg.T, a_mg.hd, a_mg.reverse); }
static void b_mg_den(void *p) {
    (void)p;
    mga_den_forward(a_mg.den, a_mg.rinv, a_mg.uu, a_mg.C, a_mg.B, a_mg.T, a_mg.H, a_mg.hd, a_mg.window, a_mg.faithful);
}
static void b_mg_q(void *p) {
    (void)p;
    mga_query_forward(a_mg.q, a_mg.f, a_mg.uu, a_mg.fin, a_mg.S, a_mg.B, a_mg.T, a_mg.H, a_mg.hd, a_mg.faithful);
}
static void b_mg_qb(void *p) {
    (void)p;
    mga_query_backward(a_mg.du, a_mg.dS, a_mg.dden, a_mg.dq, a_mg.dk, a_mg.uu, a_mg.f, a_mg.den, a_mg.S, a_mg.B, a_mg.T,
                       a_mg.H, a_mg.hd, a_mg.faithful);
}
static void b_mg_db(void *p) {
    (void)p;
    mga_den_backward(a_mg.du, a_mg.ru, a_mg.uu, a_mg.C, a_mg.den, a_mg.dden, a_mg.Sd, a_mg.B, a_mg.T, a_mg.H, a_mg.hd,
                     a_mg.window, a_mg.faithful);
}
static void b_mg_ub(void *p) {
    (void)p;
    mga_unit_backward(a_mg.dg, a_mg.du, a_mg.Rev, a_mg.uu, a_mg.nrm, a_mg.B, a_mg.T, a_mg.H, a_mg.hd, a_mg.window);
}

static struct {
    bf16 *conv, *u, *dx, *out, *da, *dgate; float *dw, *part; const bf16 *x, *w, *du, *cv, *a, *gate, *dout;
    u64 N, n; int T, C, shift, acc;
} a_cv;
static void b_cv_fwd(void *p) { (void)p; dwconv3_silu_forward(a_cv.conv, a_cv.u, a_cv.x, a_cv.w, a_cv.N, a_cv.T, a_cv.C, a_cv.shift); }
static void b_cv_bwd(void *p) {
    (void)p;
    dwconv3_silu_backward(a_cv.dx, a_cv.dw, a_cv.part, a_cv.du, a_cv.cv, a_cv.x, a_cv.w, a_cv.N, a_cv.T, a_cv.C,
                          a_cv.shift, a_cv.acc);
}
static void b_sg_fwd(void *p) { (void)p; sigmoid_gate_forward(a_cv.out, a_cv.a, a_cv.gate, a_cv.n); }
static void b_sg_bwd(void *p) { (void)p; sigmoid_gate_backward(a_cv.da, a_cv.dgate, a_cv.dout, a_cv.a, a_cv.gate, a_cv.n); }

static struct { bf16 *x; u64 n, seed, thr; const int *ctr; int layer, branch; float keep; } a_dr;
static void b_drop_next(void *p) { (void)p; dropout_next((int *)a_dr.ctr); }
static void b_drop(void *p) { (void)p; resid_dropout(a_dr.x, a_dr.n, a_dr.ctr, a_dr.seed, a_dr.layer, a_dr.branch, a_dr.thr, a_dr.keep); }

/* ---------------------------------------------------------------- cases */
static void t_embed(int N, int C, int V) {
    char name[96];
    const int vec = C % 8 == 0;
    int *tok = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) /* runs of one token (crossing the sort's tiles), and scattered ids */
        tok[n] = n % 97 < 60 ? (n / 45) % V : (int)(ur() * V);
    double *wd, *dd;
    bf16 *wte = rand_bf((size_t)V * C, 1, &wd), *dout = rand_bf((size_t)N * C, 1, &dd);
    bf16 *out = al16((size_t)N * C * 2);
    double *ref = malloc(sizeof(double) * N * C);
    op_embed_forward(NULL, ref, tok, wd, N, C);
    a_emb.out = out, a_emb.tok = tok, a_emb.wte = wte, a_emb.N = N, a_emb.C = C, a_emb.vec = vec;
    emu_grid(grid1d((size_t)N * ((C + 7) / 8)), 1, 256, b_emb, NULL);
    double *got = to_d(out, (size_t)N * C), worst = 0;
    for (size_t i = 0; i < (size_t)N * C; i++) worst = fmax(worst, fabs(got[i] - ref[i]));
    snprintf(name, sizeof name, "embed_forward N %d C %d (vec %d): rows copied exactly", N, C, vec);
    check(name, worst, 0);
    /* the backward adds into dwte: start it from values of its own */
    double *dref = malloc(sizeof(double) * V * C);
    float *dw = malloc(sizeof(float) * V * C), *dw0 = malloc(sizeof(float) * V * C), *dw2 = malloc(sizeof(float) * V * C);
    for (size_t i = 0; i < (size_t)V * C; i++) dw0[i] = (float)nr(), dref[i] = dw0[i];
    op_embed_backward(NULL, dref, dd, tok, N, C);
    memcpy(dw, dw0, sizeof(float) * V * C);
    embed_backward_det(dw, dout, tok, N, C, vec);
    snprintf(name, sizeof name, "embed backward, sorted runs: N %d C %d V %d", N, C, V);
    check(name, rel_f(dw, dref, (size_t)V * C), 1e-5);
    memcpy(dw2, dw0, sizeof(float) * V * C);
    emu_block_shuffle = 0x5DEECE66Dull; /* every launch's blocks in another order */
    embed_backward_det(dw2, dout, tok, N, C, vec);
    emu_block_shuffle = 0;
    check("  the same in another block order (bytes differing)", (double)differing(dw, dw2, sizeof(float) * V * C), 0);
    memcpy(dw2, dw0, sizeof(float) * V * C);
    a_eb.dwte = dw2, a_eb.dout = dout, a_eb.tok = tok, a_eb.N = N, a_eb.C = C, a_eb.vec = vec;
    emu_grid(grid1d((size_t)N * ((C + 7) / 8)), 1, 256, b_eb_atomic, NULL);
    check("  embed_backward (atomics)", rel_f(dw2, dref, (size_t)V * C), 1e-5);
    free(tok); free(wte); free(wd); free(dout); free(dd); free(out); free(ref); free(got); free(dref);
    free(dw); free(dw0); free(dw2);
}

static void t_rmsnorm(int N, int C) {
    char name[96];
    const int vec = C % 8 == 0;
    const float eps = 1e-5f;
    double *xd, *bd, *wd, *gd;
    bf16 *x = rand_bf((size_t)N * C, 1, &xd), *b = rand_bf((size_t)N * C, 1, &bd), *w = rand_bf(C, 1, &wd);
    bf16 *dy = rand_bf((size_t)N * C, 1, &gd);
    bf16 *out = al16((size_t)N * C * 2), *sum = al16((size_t)N * C * 2);
    float *rstd = malloc(sizeof(float) * N);
    double *ref = malloc(sizeof(double) * N * C), *rref = malloc(sizeof(double) * N), *sref = malloc(sizeof(double) * N * C);
    a_rn.out = out, a_rn.sum = sum, a_rn.rstd = rstd, a_rn.in = x, a_rn.a = x, a_rn.b = b, a_rn.w = w;
    a_rn.N = N, a_rn.C = C, a_rn.eps = eps, a_rn.vec = vec;
    op_rmsnorm_forward(NULL, ref, rref, xd, wd, N, C, eps);
    emu_grid((unsigned)((N + 7) / 8), 1, 256, b_rn_fwd, NULL);
    snprintf(name, sizeof name, "rmsnorm_forward N %d C %d (vec %d): out", N, C, vec);
    check(name, rel_bf(out, ref, (size_t)N * C), 5e-3);
    check("  rstd", rel_f(rstd, rref, N), 1e-5);
    /* the fused residual add: the norm of the bf16-rounded sum */
    op_add_rmsnorm_forward(NULL, sref, ref, rref, xd, bd, wd, N, C, eps);
    emu_grid((unsigned)((N + 7) / 8), 1, 256, b_arn_fwd, NULL);
    double *sumd = to_d(sum, (size_t)N * C);
    op_rmsnorm_forward(NULL, ref, rref, sumd, wd, N, C, eps); /* (of the sum as stored) */
    snprintf(name, sizeof name, "add_rmsnorm_forward N %d C %d: sum", N, C);
    check(name, rel_bf(sum, sref, (size_t)N * C), 5e-3);
    check("  out (of the rounded sum)", rel_bf(out, ref, (size_t)N * C), 5e-3);
    check("  rstd", rel_f(rstd, rref, N), 1e-5);
    /* backward, at the reference's rstd: din (= and +=), dw += through per-block partials */
    float *rs32 = malloc(sizeof(float) * N);
    for (int n = 0; n < N; n++) rs32[n] = (float)rref[n];
    double *rsd = malloc(sizeof(double) * N);
    for (int n = 0; n < N; n++) rsd[n] = rs32[n];
    const unsigned blocks = 3; /* (gpu.h caps the grid: warps walk several rows each) */
    for (int acc = 0; acc < 2; acc++) {
        double *d0d;
        bf16 *din = rand_bf((size_t)N * C, 1, &d0d), *din2 = al16((size_t)N * C * 2);
        memcpy(din2, din, (size_t)N * C * 2);
        double *dwr = malloc(sizeof(double) * C);
        float *dw = malloc(sizeof(float) * C), *dw2 = malloc(sizeof(float) * C), *part = malloc(sizeof(float) * blocks * C);
        for (int c = 0; c < C; c++) dw[c] = dw2[c] = (float)nr(), dwr[c] = dw[c];
        op_rmsnorm_backward(NULL, d0d, dwr, gd, xd, wd, rsd, N, C, acc);
        a_rn.din = din, a_rn.dw = dw, a_rn.part = part, a_rn.dout = dy, a_rn.rs = rs32, a_rn.acc = acc;
        emu_grid(blocks, 1, 256, b_rn_bwd, NULL);
        colsum(dw, part, (int)blocks, C);
        snprintf(name, sizeof name, "rmsnorm_backward N %d C %d acc %d: din", N, C, acc);
        check(name, rel_bf(din, d0d, (size_t)N * C), 5e-3);
        check("  dw (partials + colsum_add)", rel_f(dw, dwr, C), 1e-5);
        /* again in another block order: the same bits; then the atomics' form */
        float *dw3 = malloc(sizeof(float) * C);
        memcpy(dw3, dw2, sizeof(float) * C);
        a_rn.din = din2, a_rn.dw = dw3;
        emu_block_shuffle = 0x2545F4914F6CDD1Dull;
        emu_grid(blocks, 1, 256, b_rn_bwd, NULL);
        colsum(dw3, part, (int)blocks, C);
        emu_block_shuffle = 0;
        check("  the same in another block order (bytes differing)",
              (double)(differing(dw, dw3, sizeof(float) * C) + differing(din, din2, (size_t)N * C * 2)), 0);
        a_rn.part = NULL, a_rn.dw = dw2, a_rn.din = din2, a_rn.acc = 0;
        emu_grid(blocks, 1, 256, b_rn_bwd, NULL);
        check("  dw (atomics)", rel_f(dw2, dwr, C), 1e-5);
        free(din); free(din2); free(d0d); free(dwr); free(dw); free(dw2); free(dw3); free(part);
    }
    free(x); free(b); free(w); free(dy); free(xd); free(bd); free(wd); free(gd); free(out); free(sum); free(rstd);
    free(ref); free(rref); free(sref); free(sumd); free(rs32); free(rsd);
}

static void t_qkv(int B, int T, int H, int KV, int hd, float theta) {
    char name[96];
    const int N = B * T, NH = H + 2 * KV, P = NH * hd, groups = (NH + QKV_GROUP - 1) / QKV_GROUP;
    double *fd;
    bf16 *qkv = rand_bf((size_t)N * P, 1, &fd);
    bf16 *q = malloc((size_t)N * H * hd * 2), *k = malloc((size_t)N * KV * hd * 2), *v = malloc((size_t)N * KV * hd * 2);
    double *qr = malloc(sizeof(double) * N * H * hd), *kr = malloc(sizeof(double) * N * KV * hd),
           *vr = malloc(sizeof(double) * N * KV * hd), *mr = malloc(sizeof(double) * N * P);
    op_qkv_split(NULL, qr, kr, vr, fd, N, T, H, KV, hd, theta);
    a_qk.q = q, a_qk.k = k, a_qk.v = v, a_qk.qkv = qkv, a_qk.N = N, a_qk.T = T, a_qk.H = H, a_qk.KV = KV;
    a_qk.hd = hd, a_qk.theta = theta, a_qk.merge = 0;
    emu_grid(grid1d((size_t)N * groups * (hd / 2)), 1, 256, b_qkv, NULL);
    snprintf(name, sizeof name, "qkv_split N %d H %d KV %d hd %d theta %g: q", N, H, KV, hd, theta);
    check(name, rel_bf(q, qr, (size_t)N * H * hd), theta > 0 ? 5e-3 : 0);
    check("  k", rel_bf(k, kr, (size_t)N * KV * hd), theta > 0 ? 5e-3 : 0);
    check("  v (copied)", rel_bf(v, vr, (size_t)N * KV * hd), 0);
    /* merge: the gradients back into the fused rows, rotated back */
    double *dq = to_d(q, (size_t)N * H * hd), *dk = to_d(k, (size_t)N * KV * hd), *dv = to_d(v, (size_t)N * KV * hd);
    op_qkv_merge(NULL, mr, dq, dk, dv, N, T, H, KV, hd, theta);
    memset(qkv, 0xff, (size_t)N * P * 2);
    a_qk.merge = 1;
    emu_grid(grid1d((size_t)N * groups * (hd / 2)), 1, 256, b_qkv, NULL);
    check("  merge (the gradient into the fused rows)", rel_bf(qkv, mr, (size_t)N * P), theta > 0 ? 5e-3 : 0);
    free(qkv); free(fd); free(q); free(k); free(v); free(qr); free(kr); free(vr); free(mr); free(dq); free(dk); free(dv);
}

static void t_rope(int B, int T, int nh, int ld, int rd, float theta) {
    char name[96];
    const int N = B * T;
    double *xd;
    bf16 *x = rand_bf((size_t)N * nh * ld, 1, &xd);
    a_qk.x = x, a_qk.N = N, a_qk.T = T, a_qk.nh = nh, a_qk.ld = ld, a_qk.hd = rd, a_qk.theta = theta;
    for (int back = 0; back < 2; back++) {
        if (back) op_rope_part_backward(NULL, xd, N, T, nh, ld, rd, theta);
        else op_rope_part_forward(NULL, xd, N, T, nh, ld, rd, theta);
        a_qk.sign = back ? -1.0f : 1.0f;
        emu_grid(grid1d((size_t)N * (rd / 2)), 1, 256, b_rope, NULL);
        snprintf(name, sizeof name, "rope N %d heads %d of %d, first %d rotated, %s", N, nh, ld, rd,
                 back ? "back (after forward)" : "forward");
        check(name, rel_bf(x, xd, (size_t)N * nh * ld), 5e-3);
        for (size_t i = 0; i < (size_t)N * nh * ld; i++) xd[i] = bf2f(x[i]); /* the next pass from the same bits */
    }
    free(x); free(xd);
}

static void t_swiglu(int N, int F) {
    char name[96];
    const int vec = F % 8 == 0;
    double *gud, *dod;
    bf16 *gu = rand_bf((size_t)N * 2 * F, 2, &gud), *dout = rand_bf((size_t)N * F, 1, &dod);
    bf16 *out = al16((size_t)N * F * 2), *dgu = al16((size_t)N * 2 * F * 2), *act = al16((size_t)N * F * 2);
    double *r = malloc(sizeof(double) * N * F), *dr = malloc(sizeof(double) * N * 2 * F), *ar = malloc(sizeof(double) * N * F);
    op_swiglu_forward(NULL, r, gud, N, F);
    op_swiglu_backward(NULL, dr, ar, dod, gud, N, F);
    a_sw.out = out, a_sw.dgu = dgu, a_sw.act = act, a_sw.gu = gu, a_sw.dout = dout, a_sw.N = N, a_sw.F = F, a_sw.vec = vec;
    emu_grid(grid1d((size_t)N * ((F + 7) / 8)), 1, 256, b_sw_fwd, NULL);
    snprintf(name, sizeof name, "swiglu_forward N %d F %d (vec %d)", N, F, vec);
    check(name, rel_bf(out, r, (size_t)N * F), 5e-3);
    emu_grid(grid1d((size_t)N * ((F + 7) / 8)), 1, 256, b_sw_bwd, NULL);
    check("  swiglu_backward dgate | dup", rel_bf(dgu, dr, (size_t)N * 2 * F), 5e-3);
    check("  swiglu_backward act (recomputed)", rel_bf(act, ar, (size_t)N * F), 5e-3);
    /* the residual add on the same buffers */
    size_t n = (size_t)N * F;
    double *s = malloc(sizeof(double) * n);
    op_add(NULL, s, gud, dod, n);
    a_sw.out = out, a_sw.a = gu, a_sw.b = dout, a_sw.n = n;
    emu_grid(grid1d((n + 7) / 8), 1, 256, b_add, NULL);
    snprintf(name, sizeof name, "add n %zu (vec %d)", n, vec);
    check(name, rel_bf(out, s, n), 5e-3);
    free(gu); free(gud); free(dout); free(dod); free(out); free(dgu); free(act); free(r); free(dr); free(ar); free(s);
}

/* softmax cross-entropy rows against logsumexp in double; a row without target has loss 0 and
   a zero gradient */
static void t_xent(int rows, int V) {
    char name[96];
    const int vec = V % 8 == 0;
    const float dloss = 0.25f;
    double *ld_;
    bf16 *lg = rand_bf((size_t)rows * V, 3, &ld_);
    int *tgt = malloc(sizeof(int) * rows);
    for (int r = 0; r < rows; r++) tgt[r] = r == 1 ? -1 : (int)(ur() * V);
    int top = 2 % rows; /* one row whose target is its maximum: the top-1 flag */
    for (int c = 0; c < V; c++)
        if (ld_[(size_t)top * V + c] > ld_[(size_t)top * V + tgt[top]]) tgt[top] = c;
    float *loss = malloc(sizeof(float) * rows), *corr = malloc(sizeof(float) * rows);
    double *lref = malloc(sizeof(double) * rows), *cref = malloc(sizeof(double) * rows),
           *gref = malloc(sizeof(double) * rows * V);
    for (int r = 0; r < rows; r++) {
        const double *x = ld_ + (size_t)r * V;
        double m = -INFINITY, s = 0;
        for (int c = 0; c < V; c++) m = fmax(m, x[c]);
        for (int c = 0; c < V; c++) s += exp(x[c] - m);
        double lse = m + log(s);
        lref[r] = tgt[r] >= 0 ? lse - x[tgt[r]] : 0;
        cref[r] = tgt[r] >= 0 && x[tgt[r]] >= m;
        for (int c = 0; c < V; c++) gref[(size_t)r * V + c] = tgt[r] >= 0 ? dloss * (exp(x[c] - lse) - (c == tgt[r])) : 0;
    }
    a_xe.logits = lg, a_xe.losses = loss, a_xe.correct = corr, a_xe.tgt = tgt, a_xe.V = V, a_xe.dloss = dloss;
    a_xe.vec = vec, a_xe.grad = 1;
    emu_grid((unsigned)rows, 1, 512, b_xent, NULL);
    snprintf(name, sizeof name, "xent_rows rows %d V %d (vec %d): losses", rows, V, vec);
    check(name, rel_f(loss, lref, rows), 1e-5);
    double wrong = 0;
    for (int r = 0; r < rows; r++) wrong += corr[r] != cref[r];
    check("  top-1 flags (rows differing)", wrong, 0);
    check("  gradient rows (softmax - onehot) * dloss", rel_bf(lg, gref, (size_t)rows * V), 5e-3);
    free(ld_); free(lg); free(tgt); free(loss); free(corr); free(lref); free(cref); free(gref);
}

static void t_optim(size_t n) {
    char name[96];
    float *x = al16(n * 4), *part = malloc(4 * 3), out = 0, out2 = 0;
    double ss = 0;
    for (size_t i = 0; i < n; i++) x[i] = (float)nr(), ss += (double)x[i] * x[i];
    for (int vec = 0; vec < 2; vec++) {
        const unsigned blocks = 3;
        out = 0;
        a_op.out = &out, a_op.part = part, a_op.x = x, a_op.n = n, a_op.vec = vec;
        emu_grid(blocks, 1, 256, b_sumsq, NULL);
        colsum(&out, part, (int)blocks, 1);
        snprintf(name, sizeof name, "sumsq n %zu (vec %d) + colsum_add", n, vec);
        check(name, fabs(out - ss) / ss, 1e-6);
    }
    a_op.part = NULL, a_op.out = &out2;
    emu_grid(3, 1, 256, b_sumsq, NULL);
    check("  sumsq (atomics)", fabs(out2 - ss) / ss, 1e-6);
    /* AdamW: decoupled decay, bias corrections, the gradient clipped by clip / ||g|| */
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, bc1 = 0.271f, bc2 = 0.143f, clip = 1.0f;
    for (int form = 0; form < 3; form++) { /* 0: 4 at a time; 1: one at a time; 2: 4 at a time, hyper from memory */
        const int vec = form != 1;
        float *p = al16(n * 4), *m = al16(n * 4), *v = al16(n * 4), *g = al16(n * 4), gn = (float)(4 * ss);
        float hyper[4] = {lr, bc1, bc2, 0};
        bf16 *pb = al16(n * 2);
        double *pr = malloc(sizeof(double) * n), *mr = malloc(sizeof(double) * n), *vr = malloc(sizeof(double) * n);
        const double scale = clip / sqrt((double)gn);
        for (size_t i = 0; i < n; i++) {
            p[i] = (float)nr(), m[i] = (float)(0.1 * nr()), v[i] = (float)(0.01 * ur()), g[i] = 2 * x[i];
            double gi = g[i] * scale, mi = b1 * (double)m[i] + (1 - b1) * gi, vi = b2 * (double)v[i] + (1 - b2) * gi * gi;
            double pi = p[i] - (double)lr * wd * p[i];
            pr[i] = pi - lr * (mi / bc1) / (sqrt(vi / bc2) + eps), mr[i] = mi, vr[i] = vi;
        }
        a_op.p = p, a_op.pb = pb, a_op.g = g, a_op.m = m, a_op.v = v, a_op.n = n, a_op.vec = vec, a_op.gn = &gn;
        a_op.clip = clip, a_op.b1 = b1, a_op.b2 = b2, a_op.eps = eps, a_op.wd = wd;
        a_op.hyper = form == 2 ? hyper : NULL;
        a_op.lr = form == 2 ? 0 : lr, a_op.bc1 = form == 2 ? 0 : bc1, a_op.bc2 = form == 2 ? 0 : bc2;
        emu_grid(grid1d(vec ? n / 4 + 3 : n), 1, 256, b_adamw, NULL);
        snprintf(name, sizeof name, "adamw n %zu (%s), clipped: params", n,
                 form == 0 ? "vec" : form == 1 ? "scalar" : "vec, lr and corrections from memory");
        check(name, rel_f(p, pr, n), 1e-6);
        check("  first moments", rel_f(m, mr, n), 1e-6);
        check("  second moments", rel_f(v, vr, n), 1e-6);
        double bad = 0;
        for (size_t i = 0; i < n; i++) bad += pb[i] != f2bf(p[i]);
        check("  bf16 copy of the params (elements differing)", bad, 0);
        free(p); free(m); free(v); free(g); free(pb); free(pr); free(mr); free(vr);
    }
    /* fp32 <-> bf16 */
    bf16 *b = al16(n * 2);
    float *back = al16(n * 4);
    a_op.pb = b, a_op.x = x, a_op.p = back, a_op.n = n;
    emu_grid(grid1d(n), 1, 256, b_f2b, NULL);
    emu_grid(grid1d(n), 1, 256, b_b2f, NULL);
    double bad = 0;
    for (size_t i = 0; i < n; i++) bad += b[i] != f2bf(x[i]) || back[i] != bf2f(b[i]);
    snprintf(name, sizeof name, "f32_to_bf16, bf16_to_f32 n %zu (elements differing)", n);
    check(name, bad, 0);
    free(x); free(part); free(b); free(back);
}

/* strided column blocks: a scaled copy added into dst, and a sum of groups (vec: rows 16-byte aligned) */
static void t_copy_cols(size_t rows, int cols, int vec) {
    char name[96];
    const size_t sld = 3 * (size_t)cols + (vec ? 0 : 3), dld = (size_t)cols + (vec ? 8 : 1), gld = (size_t)cols;
    double *sd, *dd;
    bf16 *src = rand_bf(rows * sld, 1, &sd), *dst = rand_bf(rows * dld, 1, &dd);
    op_copy_cols(NULL, dd, dld, sd, sld, rows, cols, 0.5, 1);
    a_cc.dst = dst, a_cc.src = src, a_cc.dld = dld, a_cc.sld = sld, a_cc.gld = gld, a_cc.groups = 1, a_cc.rows = rows;
    a_cc.cols = cols, a_cc.scale = 0.5f, a_cc.acc = 1, a_cc.vec = vec;
    emu_grid(grid1d(rows * ((cols + 7) / 8)), 1, 256, b_copy, NULL);
    snprintf(name, sizeof name, "copy_cols rows %zu cols %d (vec %d), scale 0.5, +=", rows, cols, vec);
    check(name, rel_bf(dst, dd, rows * dld), 5e-3);
    op_sum_cols(NULL, dd, dld, sd, sld, gld, 3, rows, cols);
    for (size_t i = 0; i < rows; i++) /* (the columns past cols are not written by either) */
        for (size_t j = cols; j < dld; j++) dd[i * dld + j] = bf2f(dst[i * dld + j]);
    a_cc.groups = 3, a_cc.scale = 1, a_cc.acc = 0;
    emu_grid(grid1d(rows * ((cols + 7) / 8)), 1, 256, b_copy, NULL);
    check("  the sum of 3 column groups", rel_bf(dst, dd, rows * dld), 5e-3);
    free(src); free(sd); free(dst); free(dd);
}

/* MGA's kernels, each on the same inputs as ops.h's reference (not chained: each one's
   inputs are drawn afresh, positive where the op divides) */
static double *rand_pos(float *f, size_t n, double lo) {
    double *d = malloc(sizeof(double) * n + 8);
    for (size_t i = 0; i < n; i++) f[i] = (float)(lo + ur()), d[i] = f[i];
    return d;
}
static double *rand_f(float *f, size_t n) {
    double *d = malloc(sizeof(double) * n + 8);
    for (size_t i = 0; i < n; i++) f[i] = (float)nr(), d[i] = f[i];
    return d;
}
static void t_mga(int B, int T, int H, int hd, int window, int faithful) {
    char name[112];
    const size_t R = (size_t)B * T * H, n = R * hd;
    const unsigned blocks = (unsigned)((R + 7) / 8);
    double *gd, *dqd, *dkd;
    bf16 *g = rand_bf(n, 1, &gd), *dq = rand_bf(n, 1, &dqd), *dk = rand_bf(n, 1, &dkd);
    for (int e = 0; e < hd; e++) g[3 * hd + e] = 0, gd[3 * hd + e] = 0; /* a zero row: u = 0 there */
    bf16 *u = al16(n * 2), *q = al16(n * 2), *dg = al16(n * 2);
    float *nrm = malloc(4 * R), *C = malloc(4 * n), *den = malloc(4 * R), *rinv = malloc(4 * R), *S = malloc(4 * R),
          *f = malloc(4 * R), *du = malloc(4 * n), *dS = malloc(4 * R), *dden = malloc(4 * R), *Sd = malloc(4 * R),
          *ru = malloc(4 * n), *Rev = malloc(4 * n), *cs = malloc(4 * n);
    double *ur_ = malloc(sizeof(double) * n), *nr_ = malloc(sizeof(double) * R), *r1 = malloc(sizeof(double) * n),
           *r2 = malloc(sizeof(double) * R), *r3 = malloc(sizeof(double) * R), *r4 = malloc(sizeof(double) * n);
    snprintf(name, sizeof name, "mga B %d T %d H %d hd %d window %d faithful %d: ", B, T, H, hd, window, faithful);
    const size_t pre = strlen(name);
#define MGA_NAME(s) (snprintf(name + pre, sizeof name - pre, "%s", s), name)
    op_mga_unit_forward(NULL, ur_, nr_, gd, R, hd);
    a_mg.u = u, a_mg.nrm = nrm, a_mg.g = g, a_mg.rows = R, a_mg.hd = hd;
    emu_grid(blocks, 1, 256, b_mg_unit, NULL);
    check(MGA_NAME("unit u"), rel_bf(u, ur_, n), 5e-3);
    check(MGA_NAME("unit |g|"), rel_f(nrm, nr_, R), 1e-5);
    double *ud = to_d(u, n); /* the kernels below read u as stored */
    double *Cd = rand_f(C, n), *dend = rand_pos(den, R, 0.5), *Sdd = rand_pos(S, R, 1.0);
    a_mg.uu = u, a_mg.C = C, a_mg.den = den, a_mg.rinv = rinv, a_mg.B = B, a_mg.T = T, a_mg.H = H;
    a_mg.window = window, a_mg.faithful = faithful;
    op_mga_den_forward(NULL, r2, r3, ud, Cd, B, T, H, hd, window, faithful);
    emu_grid(blocks, 1, 256, b_mg_den, NULL);
    check(MGA_NAME("den"), rel_f(den, r2, R), 1e-5);
    check(MGA_NAME("1 / den"), rel_f(rinv, r3, R), 1e-5);
    free(dend);
    dend = rand_pos(den, R, 0.5);
    op_mga_query_forward(NULL, r1, r2, ud, dend, Sdd, B, T, H, hd, faithful);
    a_mg.q = q, a_mg.f = f, a_mg.fin = den, a_mg.S = S;
    emu_grid(blocks, 1, 256, b_mg_q, NULL);
    check(MGA_NAME("query q"), rel_bf(q, r1, n), 5e-3);
    check(MGA_NAME("query f"), rel_f(f, r2, R), 1e-5);
    double *fd = malloc(sizeof(double) * R);
    for (size_t i = 0; i < R; i++) fd[i] = f[i];
    op_mga_query_backward(NULL, r1, r2, r3, dqd, dkd, ud, fd, dend, Sdd, B, T, H, hd, faithful);
    a_mg.du = du, a_mg.dS = dS, a_mg.dden = dden, a_mg.dq = dq, a_mg.dk = dk;
    emu_grid(blocks, 1, 256, b_mg_qb, NULL);
    check(MGA_NAME("query backward du"), rel_f(du, r1, n), 1e-5);
    check(MGA_NAME("query backward dS"), rel_f(dS, r2, R), 1e-5);
    check(MGA_NAME("query backward dden"), rel_f(dden, r3, R), 1e-5);
    double *dud = rand_f(du, n), *ddend = rand_f(dden, R), *Sddd = rand_f(Sd, R);
    memcpy(r1, dud, sizeof(double) * n);
    op_mga_den_backward(NULL, r1, r4, ud, Cd, dend, ddend, Sddd, B, T, H, hd, window, faithful);
    a_mg.ru = ru, a_mg.Sd = Sd;
    emu_grid(blocks, 1, 256, b_mg_db, NULL);
    check(MGA_NAME("den backward du (+=)"), rel_f(du, r1, n), 1e-5);
    check(MGA_NAME("den backward ru"), rel_f(ru, r4, n), 1e-5);
    double *Revd = rand_f(Rev, n), *nrmd = malloc(sizeof(double) * R);
    free(dud);
    dud = rand_f(du, n);
    for (size_t i = 0; i < R; i++) nrmd[i] = nrm[i];
    op_mga_unit_backward(NULL, r1, dud, Revd, ud, nrmd, B, T, H, hd, window);
    a_mg.dg = dg, a_mg.Rev = Rev;
    emu_grid(blocks, 1, 256, b_mg_ub, NULL);
    check(MGA_NAME("unit backward dg"), rel_bf(dg, r1, n), 5e-3);
    /* the running sum over time (the op's C and Rev), fp32 and bf16 input, both directions */
    for (int form = 0; form < 4; form++) {
        const int in_bf16 = form & 1, reverse = form >> 1;
        op_time_cumsum(NULL, r1, in_bf16 ? (const void *)ud : (const void *)Cd, in_bf16, B, T, H * hd, reverse);
        a_mg.out = cs, a_mg.in = in_bf16 ? (const void *)u : (const void *)C, a_mg.in_bf16 = in_bf16;
        a_mg.reverse = reverse, a_mg.T = T, a_mg.hd = H * hd; /* (hd carries the op's C) */
        emu_grid2d((unsigned)((H * hd + 31) / 32), (unsigned)B, 32, 32, b_mg_cum, NULL);
        char what[64];
        snprintf(what, sizeof what, "time_cumsum (%s input%s)", in_bf16 ? "bf16" : "fp32", reverse ? ", reverse" : "");
        check(MGA_NAME(what), rel_f(cs, r1, n), 1e-5);
        a_mg.hd = hd;
    }
#undef MGA_NAME
    free(g); free(gd); free(dq); free(dqd); free(dk); free(dkd); free(u); free(q); free(dg); free(nrm); free(C);
    free(den); free(rinv); free(S); free(f); free(du); free(dS); free(dden); free(Sd); free(ru); free(Rev); free(cs);
    free(ur_); free(nr_); free(r1); free(r2); free(r3); free(r4); free(ud); free(Cd); free(dend); free(Sdd); free(fd);
    free(dud); free(ddend); free(Sddd); free(Revd); free(nrmd);
}

/* MGA's gate: the 3-tap conv + SiLU both ways (the backward on 32 x 8 blocks over row slices,
   dw through per-slice partials and colsum_add, or atomics), and out = a sigmoid(gate) */
static void t_conv(int B, int T, int C, int shift) {
    char name[96];
    const size_t N = (size_t)B * T, n = N * C;
    double *xd, *wd, *dud, *dxd;
    bf16 *x = rand_bf(n, 1, &xd), *w = rand_bf((size_t)C * 3, 1, &wd), *du = rand_bf(n, 1, &dud);
    bf16 *conv = al16(n * 2), *u = al16(n * 2);
    double *cr = malloc(sizeof(double) * n), *ur2 = malloc(sizeof(double) * n);
    op_dwconv3_silu_forward(NULL, cr, ur2, xd, wd, B, T, C, shift);
    a_cv.conv = conv, a_cv.u = u, a_cv.x = x, a_cv.w = w, a_cv.N = N, a_cv.T = T, a_cv.C = C, a_cv.shift = shift;
    emu_grid(grid1d(n), 1, 256, b_cv_fwd, NULL);
    snprintf(name, sizeof name, "dwconv3_silu_forward B %d T %d C %d shift %d: conv", B, T, C, shift);
    check(name, rel_bf(conv, cr, n), 5e-3);
    check("  silu", rel_bf(u, ur2, n), 5e-3);
    double *convd = to_d(conv, n);
    const unsigned gy = 2; /* (gpu.h: one slice per 256 rows, at most 1024) */
    for (int acc = 0; acc < 2; acc++) {
        bf16 *dx = rand_bf(n, 1, &dxd), *dx2 = al16(n * 2);
        memcpy(dx2, dx, n * 2);
        double *dwr = malloc(sizeof(double) * 3 * C);
        float *dw = malloc(sizeof(float) * 3 * C), *dw2 = malloc(sizeof(float) * 3 * C), *part = malloc(sizeof(float) * gy * 3 * C);
        for (int i = 0; i < 3 * C; i++) dw[i] = dw2[i] = (float)nr(), dwr[i] = dw[i];
        op_dwconv3_silu_backward(NULL, dxd, dwr, dud, convd, xd, wd, B, T, C, shift, acc);
        a_cv.dx = dx, a_cv.dw = dw, a_cv.part = part, a_cv.du = du, a_cv.cv = conv, a_cv.acc = acc;
        emu_grid2d((unsigned)((C + 31) / 32), gy, 32, 8, b_cv_bwd, NULL);
        colsum(dw, part, (int)gy, 3 * C);
        snprintf(name, sizeof name, "dwconv3_silu_backward acc %d: dx", acc);
        check(name, rel_bf(dx, dxd, n), 5e-3);
        check("  dw (per-slice partials + colsum_add)", rel_f(dw, dwr, 3 * (size_t)C), 1e-5);
        a_cv.dx = dx2, a_cv.dw = dw2, a_cv.part = NULL;
        emu_grid2d((unsigned)((C + 31) / 32), gy, 32, 8, b_cv_bwd, NULL);
        check("  dw (atomics)", rel_f(dw2, dwr, 3 * (size_t)C), 1e-5);
        free(dx); free(dx2); free(dxd); free(dwr); free(dw); free(dw2); free(part);
    }
    /* the sigmoid gate on the same buffers: out = x sigmoid(du) */
    double *r1 = malloc(sizeof(double) * n), *r2 = malloc(sizeof(double) * n);
    op_sigmoid_gate_forward(NULL, r1, xd, dud, n);
    a_cv.out = conv, a_cv.a = x, a_cv.gate = du, a_cv.n = n;
    emu_grid(grid1d(n), 1, 256, b_sg_fwd, NULL);
    check("sigmoid_gate_forward", rel_bf(conv, r1, n), 5e-3);
    op_sigmoid_gate_backward(NULL, r1, r2, wd, xd, dud, 3 * (size_t)C); /* dout: the first 3C of w's draw */
    a_cv.da = conv, a_cv.dgate = u, a_cv.dout = w, a_cv.n = 3 * (size_t)C;
    emu_grid(grid1d(3 * (size_t)C), 1, 256, b_sg_bwd, NULL);
    check("sigmoid_gate_backward da", rel_bf(conv, r1, 3 * (size_t)C), 5e-3);
    check("sigmoid_gate_backward dgate", rel_bf(u, r2, 3 * (size_t)C), 5e-3);
    free(x); free(xd); free(w); free(wd); free(du); free(dud); free(conv); free(u); free(cr); free(ur2); free(convd);
    free(r1); free(r2);
}

/* residual dropout: the CPU's mask bit for bit (ops_resid_drop_u on the same key fields) */
static void t_dropout(size_t n, float p) {
    char name[96];
    double *xd;
    bf16 *x = rand_bf(n, 1, &xd);
    int ctr[2] = {5, 2};
    OpsDropout d = {0};
    d.seed = 0x1234567ull, d.layer = 3, d.step = ctr[0], d.micro = ctr[1];
    op_resid_dropout(NULL, xd, n, p, &d, 1);
    a_dr.x = x, a_dr.n = n, a_dr.ctr = ctr, a_dr.seed = d.seed, a_dr.layer = d.layer, a_dr.branch = 1;
    a_dr.thr = (u64)ceil((double)p * 9007199254740992.0), a_dr.keep = 1.0f / (1.0f - p);
    emu_grid(grid1d(n), 1, 256, b_drop, NULL);
    double other = 0, dropped = 0;
    for (size_t i = 0; i < n; i++) other += (x[i] == 0) != (xd[i] == 0), dropped += xd[i] == 0;
    snprintf(name, sizeof name, "resid_dropout n %zu p %.2f: mask (elements differing; %.0f dropped)", n, p, dropped);
    check(name, other + (dropped < 0.2 * p * n), 0);
    check("  kept elements scaled by 1 / (1 - p)", rel_bf(x, xd, n), 5e-3);
    emu_grid(2, 1, 64, b_drop_next, NULL); /* dropout_next: the micro-batch counter once, whatever the grid */
    check("dropout_next: ctr[1] + 1 (2 blocks of 64 threads)", fabs(ctr[1] - 3.0) + fabs(ctr[0] - 5.0), 0);
    free(x); free(xd);
}

int main(void) {
    emu_fiber_seed = 0x853C49E6748FEA9Bull; /* each block's threads in shuffled orders */
    t_embed(2100, 40, 300); /* three sort tiles, 66 run tiles; ids of two digits */
    t_embed(70, 20, 200);   /* ids of one digit (three idle passes), 20 columns: no 16-byte groups */
    t_rmsnorm(50, 72);
    t_rmsnorm(19, 20);
    t_qkv(2, 13, 3, 1, 16, 10000.0f);
    t_qkv(1, 9, 4, 2, 8, 0.0f);
    t_rope(2, 11, 2, 24, 16, 500.0f);
    t_swiglu(9, 40);
    t_swiglu(7, 20);
    t_xent(5, 1003);
    t_xent(3, 1024);
    t_optim(1003);
    t_copy_cols(7, 20, 0);
    t_copy_cols(5, 24, 1);
    t_mga(2, 11, 2, 40, 0, 0);
    t_mga(2, 11, 2, 40, 4, 1);
    t_mga(1, 75, 1, 70, 3, 0); /* a running sum of 32 segments of 3 steps, 70 columns */
    t_conv(2, 9, 40, 2);
    t_conv(1, 300, 20, 1); /* rows walked by two slices of 8 row groups */
    t_dropout(1000, 0.3f);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ ? 1 : 0;
}
