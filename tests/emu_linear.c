/* emu_linear.c - attn/gdn.cu.h's CUDA kernels run on the CPU: an emulation of the CUDA
   execution model (one block at a time, its 256 threads as fibers, tests/emu_fiber.h;
   __syncthreads and __syncwarp as barriers; shuffles through per-warp slots; float atomics
   plain, one fiber running at a time;
   mma.sync m16n8k16 as a warp-collective function following PTX's fragment layouts), so
   the kernels' indexing, synchronization and fragment bookkeeping are checked against
   attn/gdn.h's CPU reference on a machine without a GPU. It proves nothing about timing,
   and a race the barriers happen to order may still hide; the device check
   (tests/gpu_linear_check.c) is the real test.

   make emucheck   (builds build/emu_linear_kernels.inc with tests/emu_linear_dump.c, then
                    this file twice: -DGDN_MMA=0 fp32 products, -DGDN_MMA=1 tensor cores)
   Bounds (relative L2 vs the fp32 reference on the same bf16 inputs): bf16 outputs 5e-3
   (their own rounding is ~2e-3), fp32 outputs 1e-4; with GDN_MMA=1 (bf16 operands inside the
   chunk) every delta-rule output 1.5e-2. Ends with "N passed, N failed".
   Head dims: 64; 32 and 48 (the same tile kernels, the head zero-padded to 64 inside them);
   72 and 128 (the wide-head kernels gdn_gen_fwd / gdn_gen_bwd, fp32: GDN_MMA=0's bounds, run in
   the GDN_MMA=0 build only; and the wide tiles gdn_*_w of tuning gdn_wtile, in both builds with
   their bounds, the backward repeated bit for bit); 136, 192 and 256 (the wide-head kernels in
   the GDN_MMA=0 build, and the tiles past 128 gdn_*_x of tuning gdn_wtile=2 in both, also run at
   72 for their loops at two blocks); the small ops at 64, 72 and 256.

   Determinism: the backward kernels and the small ops' weight gradients run a second time
   and every output is compared bit for bit with the first run ("repeat" lines: the number
   of differing bytes, which must be 0). Every launch runs its blocks, and each pass of a
   block its threads, in orders shuffled afresh, so the repeat adds in other orders than the
   first run and an order-dependent sum shows up here as it would on the GPU. Built with -DGDN_DET=0 (the shared-memory atomics that Gpu.nondeterministic
   selects) the repeat lines only report; the small ops run both of their forms (per-block
   partials + gdn_sum_parts, and atomicAdd) in every build. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn/gdn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "emu_fiber.h"

/* ---------------------------------------------------------------- the emulated CUDA runtime */
#pragma GCC diagnostic ignored "-Wunused-function" /* helpers only one GDN_MMA variant calls */
typedef unsigned short bf16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef struct { unsigned x, y, z; } Dim3;
typedef struct { float x, y; } float2;
typedef struct { float x, y, z, w; } float4;
static Dim3 threadIdx; /* the running fiber's */
static Dim3 blockIdx, blockDim = {256, 1, 1}, gridDim;
static float shfl_slot[8][32];
static u32 mma_a[8][32][4], mma_b[8][32][2];
/* dynamic shared memory (the backward needs 53,188 floats), aligned as the GPU's */
static float g_sm[60000] __attribute__((aligned(16)));

#define __global__
#define __device__ static
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __expf expf
static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline float __uint_as_float(u32 u) { float f; memcpy(&f, &u, 4); return f; }
static inline float2 make_float2(float a, float b) { float2 r = {a, b}; return r; }
static inline void __syncthreads(void) { emu_bar_wait(&emu_block_bar); }
static inline int warp_(void) { return threadIdx.x >> 5; }
static inline int lane_(void) { return threadIdx.x & 31; }
static inline void __syncwarp(void) { emu_bar_wait(&emu_warp_bar[warp_()]); }
/* every lane publishes its value, then reads its source lane's */
static float shfl_(float v, int src, int keep) {
    int w = warp_(), l = lane_();
    shfl_slot[w][l] = v;
    __syncwarp();
    float r = keep ? v : shfl_slot[w][src];
    __syncwarp();
    return r;
}
static float __shfl_xor_sync(unsigned m, float v, int o) { (void)m; return shfl_(v, lane_() ^ o, 0); }
static float __shfl_up_sync(unsigned m, float v, int o) { (void)m; return shfl_(v, lane_() - o, lane_() < o); }
static float __shfl_sync(unsigned m, float v, int src) { (void)m; return shfl_(v, src, 0); }
static float atomicAdd(float *p, float v) { /* one fiber runs at a time */
    float o = *p;
    *p = o + v;
    return o;
}
static float bf2f(bf16 x) { return __uint_as_float((u32)x << 16); }
static bf16 f2bf(float f) {
    u32 u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}
static u32 pack2(float lo, float hi) { return (u32)f2bf(lo) | ((u32)f2bf(hi) << 16); }
static float warp_sum(float x) {
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
static float block_sum(float x) {
    static float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    x = warp_sum(x);
    __syncthreads();
    if (lane == 0) part[warp] = x;
    __syncthreads();
    x = lane < nwarp ? part[lane] : 0.0f;
    return warp_sum(x);
}
static float bf_half_(u32 v, int hi) { return bf2f((bf16)(hi ? v >> 16 : v & 0xffffu)); }
/* D[16x8] += A[16x16] B[16x8], PTX m16n8k16 .row.col bf16 fragments: lane l, g = l/4, c = l%4:
   A regs {(g, 2c..2c+1), (g+8, ..), (g, 2c+8..), (g+8, 2c+8..)}; B regs {(k 2c..2c+1, n g),
   (k 2c+8.., n g)}; D {(g, 2c), (g, 2c+1), (g+8, 2c), (g+8, 2c+1)}; low half = lower index */
static void mma_emu(float d[4], const u32 af[4], u32 b0, u32 b1) {
    int w = warp_(), l = lane_();
    for (int q = 0; q < 4; q++) mma_a[w][l][q] = af[q];
    mma_b[w][l][0] = b0;
    mma_b[w][l][1] = b1;
    __syncwarp();
    int g = l >> 2, c2 = 2 * (l & 3);
    for (int e = 0; e < 4; e++) {
        int r = g + 8 * (e >> 1), c = c2 + (e & 1);
        float s = 0;
        for (int k = 0; k < 16; k++) {
            int la = (r % 8) * 4 + (k % 8) / 2, ra = (r >= 8) + 2 * (k >= 8);
            int lb = c * 4 + (k % 8) / 2, rb = k >= 8;
            s += bf_half_(mma_a[w][la][ra], k & 1) * bf_half_(mma_b[w][lb][rb], k & 1);
        }
        d[e] += s;
    }
    __syncwarp();
}
/* an 8-byte shared-memory load (ld_pair): misaligned would fault on the GPU */
static float2 emu_ld2(const float *p) {
    if ((uintptr_t)p & 7) { fprintf(stderr, "emu: misaligned 8-byte shared load at %p\n", (const void *)p); abort(); }
    return *(const float2 *)p;
}
#define GRID_STRIDE(i, n) for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wincompatible-pointer-types"
#pragma GCC diagnostic ignored "-Wdiscarded-qualifiers"
#include "emu_linear_kernels.inc"
#pragma GCC diagnostic pop

/* run a grid: blocks one after another in a shuffled order, each block's 256 threads as fibers
   visited in shuffled orders (tests/emu_fiber.h; main seeds emu_fiber_seed), both afresh on
   every launch, so that a repeat adds in another order than the first run */
static void (*emu_body_)(void *);
static void *emu_bctx_;
static void emu_fiber_body_(void) { emu_body_(emu_bctx_); }
static void emu_grid3(unsigned gx, unsigned gy, unsigned gz, void (*body)(void *), void *ctx) {
    static unsigned long long launches;
    gridDim = (Dim3){gx, gy, gz};
    emu_body_ = body;
    emu_bctx_ = ctx;
    emu_fiber_grid(gx, gy, gz, 256, emu_fiber_seed + ++launches, &blockIdx.x, &blockIdx.y, &blockIdx.z, emu_fiber_body_,
                   &threadIdx.x, "emu_grid");
}
static void emu_grid(unsigned gx, unsigned gy, void (*body)(void *), void *ctx) { emu_grid3(gx, gy, 1, body, ctx); }

/* one body per kernel: the arguments travel in a struct */
typedef struct { bf16 *o; float *state, *hsave; const bf16 *q, *k, *v; int ld; const float *g, *beta; int T, H, D; float scale; float *sc; } FwdArgs;
static void fwd_body(void *p) { FwdArgs *a = p; gdn_fwd(a->o, a->state, a->hsave, a->q, a->k, a->v, a->ld, a->g, a->beta, a->T, a->H, a->D, a->scale); }
typedef struct { bf16 *dq, *dk, *dv; float *dg, *dbeta; const bf16 *dout; const float *hsave; const bf16 *q, *k, *v; int ld; const float *g, *beta; int T, H, D; float scale; float *sc; } BwdArgs;
static void bwd_body(void *p) {
    BwdArgs *a = p;
    gdn_bwd(a->dq, a->dk, a->dv, a->dg, a->dbeta, a->dout, a->hsave, a->q, a->k, a->v, a->ld, a->g, a->beta, a->T, a->H, a->D, a->scale);
}
/* the wide-head kernels (D > 64): the same arguments and their scratch */
static void gen_fwd_body(void *p) { FwdArgs *a = p; gdn_gen_fwd(a->o, a->state, a->hsave, a->q, a->k, a->v, a->ld, a->g, a->beta, a->T, a->H, a->D, a->scale, a->sc); }
static void gen_bwd_body(void *p) {
    BwdArgs *a = p;
    gdn_gen_bwd(a->dq, a->dk, a->dv, a->dg, a->dbeta, a->dout, a->hsave, a->q, a->k, a->v, a->ld, a->g, a->beta, a->T, a->H, a->D, a->scale, a->sc);
}

/* the chunk-parallel backward's kernels */
/* the chunk-parallel kernels' arguments; kind: 0 the 64-wide tiles, 1 those of a head 65..128
   wide (gdn_*_w), 2 those of one 129..256 wide (gdn_*_x; the same signatures) */
typedef struct { void *a[17]; int kind; } KArgs;
#define A(i, T) (*(T *)x->a[i])
#define PICK(name) (x->kind == 2 ? name##_x : x->kind ? name##_w : name)
static void prep_body(void *p) {
    KArgs *x = p;
    PICK(gdn_prep)(A(0, float *), A(1, bf16 *), A(2, bf16 *), A(3, bf16 *), A(4, int), A(5, bf16 *),
                                       A(6, float *), A(7, float *), A(8, int), A(9, int), A(10, int), A(11, float));
}
static void state_body(void *p) {
    KArgs *x = p;
    PICK(gdn_state)(A(0, float *), A(1, float *), A(2, bf16 *), A(3, int), A(4, float *),
                                         A(5, float *), A(6, int), A(7, int), A(8, int));
}
static void dstate_body(void *p) {
    KArgs *x = p;
    PICK(gdn_dstate)(A(0, float *), A(1, bf16 *), A(2, bf16 *), A(3, int), A(4, bf16 *),
                                           A(5, float *), A(6, float *), A(7, int), A(8, int), A(9, int), A(10, float));
}
static void local_body(void *p) {
    KArgs *x = p;
    PICK(gdn_bwd_local)(A(0, bf16 *), A(1, bf16 *), A(2, bf16 *), A(3, float *), A(4, float *),
                                                 A(5, bf16 *), A(6, float *), A(7, bf16 *), A(8, bf16 *), A(9, bf16 *),
                                                 A(10, int), A(11, float *), A(12, float *), A(13, int), A(14, int),
                                                 A(15, int), A(16, float));
}
static void out_body(void *p) {
    KArgs *x = p;
    PICK(gdn_out)(A(0, bf16 *), A(1, float *), A(2, bf16 *), A(3, bf16 *), A(4, int), A(5, float *),
                                     A(6, float *), A(7, int), A(8, int), A(9, int), A(10, float));
}
#undef A
#undef PICK

/* ---------------------------------------------------------------- checks */
static int n_pass, n_fail;
static void check(const char *what, double err, double tol) {
    int ok = isfinite(err) && err <= tol;
    printf("%s %-44s err %.3e (tol %.2g)\n", ok ? "PASS" : "FAIL", what, err, tol);
    fflush(stdout);
    if (ok) n_pass++; else n_fail++;
}
/* a repeated run's output against the first one's, bit for bit (bytes apart, ld elements a
   row of which the first cols are compared); must: a failure when they differ, else a report */
static void same_bits(const char *what, const void *a, const void *b, size_t esize, size_t rows, size_t cols,
                      size_t ld, int must) {
    size_t diff = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < cols * esize; i++)
            diff += ((const unsigned char *)a)[r * ld * esize + i] != ((const unsigned char *)b)[r * ld * esize + i];
    char name[96];
    snprintf(name, sizeof name, "repeat %s (bytes differing)", what);
    if (must) check(name, (double)diff, 0);
    else printf("info %-44s %zu (GDN_DET=0: order-dependent)\n", name, diff);
}
static double rel(const void *x, int is_bf16, const float *ref, size_t rows, size_t cols, size_t ld) {
    double num = 0, den = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * ld + c;
            double v = is_bf16 ? bf2f(((const bf16 *)x)[i]) : ((const float *)x)[i];
            if (!isfinite(v)) return NAN;
            num += (v - ref[i]) * (v - ref[i]);
            den += (double)ref[i] * ref[i];
        }
    return sqrt(num / (den > 0 ? den : 1));
}
static uint64_t rs = 88172645463325252ull;
static double urand(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0) + 1e-17; }
static double nrand(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }
static float *frand(size_t n) { /* bf16-exact random values */
    float *p = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++) p[i] = bf2f(f2bf((float)nrand()));
    return p;
}
static bf16 *to_bf16(const float *x, size_t n) {
    bf16 *p = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) p[i] = f2bf(x[i]);
    return p;
}
static bf16 *bf16_nan(size_t n) { bf16 *p = malloc(n * 2 + 2); memset(p, 0xff, n * 2 + 2); return p; }
static float *f32_nan(size_t n) { float *p = malloc(n * 4 + 4); memset(p, 0xff, n * 4 + 4); return p; }

/* D <= 64: the tile kernels (the head padded to 64 inside them); D > 64: the wide-head
   kernels gdn_gen_fwd / gdn_gen_bwd (fp32 loops, the same bounds as GDN_MMA=0's) */
static void chunk_case(int B, int T, int H, int D) {
    const int HD = H * D, ld = 3 * HD, gen = D > 64;
    const size_t N = (size_t)B * T, ns = (size_t)B * H * D * D, nw = attn_gdn_block_ws_elems(B, T, H, D, 64);
    const float scale = (float)(1 / sqrt((double)D));
    const double tb = GDN_MMA && !gen ? 1.5e-2 : 5e-3, tf = GDN_MMA && !gen ? 1.5e-2 : 1e-4;
    printf("delta rule B=%d T=%d H=%d D=%d (%s)\n", B, T, H, D, gen ? "wide-head kernels" : GDN_MMA ? "GDN_MMA=1" : "GDN_MMA=0");
    float *qkv = frand(N * ld), *gd = malloc(N * H * 4), *be = malloc(N * H * 4), *dout = frand(N * HD);
    for (size_t n = 0; n < N; n++) /* unit q and k heads, bf16-exact */
        for (int h = 0; h < 2 * H; h++) {
            float *p = qkv + n * ld + (size_t)h * D;
            double ss = 0;
            for (int i = 0; i < D; i++) ss += (double)p[i] * p[i];
            for (int i = 0; i < D; i++) p[i] = bf2f(f2bf((float)(p[i] / sqrt(ss))));
        }
    /* even heads decay slowly (about e^-1 over a chunk: the state passed between chunks
       matters), odd heads fast (about e^-15: the in-chunk decay terms dominate) */
    for (size_t i = 0; i < N * H; i++) {
        gd[i] = (float)(-log1p(exp(nrand())) * (i % H % 2 ? 0.3 : 0.02));
        be[i] = (float)(1 / (1 + exp(-nrand())));
    }
    float *st0 = malloc(ns * 4), *st = malloc(ns * 4), *est = malloc(ns * 4);
    for (size_t i = 0; i < ns; i++) st0[i] = (float)(0.2 * nrand());
    memcpy(st, st0, ns * 4);
    memcpy(est, st0, ns * 4);
    float *o = calloc(N * HD, 4), *dqkv = calloc(N * ld, 4), *dg = calloc(N * H, 4), *db = calloc(N * H, 4), *ws = calloc(nw, 4);
    attn_gdn_chunk_forward(NULL, o, st, qkv, qkv + HD, qkv + 2 * HD, ld, gd, be, B, T, H, D, scale, 64);
    attn_gdn_chunk_backward(NULL, dqkv, dqkv + HD, dqkv + 2 * HD, dg, db, dout, qkv, qkv + HD, qkv + 2 * HD, ld, gd, be,
                          B, T, H, D, scale, 64, ws);
    bf16 *bq = to_bf16(qkv, N * ld), *bdo = to_bf16(dout, N * HD), *eo = bf16_nan(N * HD), *edq = bf16_nan(N * ld);
    float *edg = f32_nan(N * H), *edb = f32_nan(N * H), *ews = f32_nan(nw);
    float *sc = gen ? f32_nan((size_t)B * H * (15 * 64 * D + 6 * 64 * 64 + 3 * D * D + 8 * 64)) : NULL;
    void (*fwd)(void *) = gen ? gen_fwd_body : fwd_body, (*bwd)(void *) = gen ? gen_bwd_body : bwd_body;
    /* the wide-head kernels do not depend on GDN_MMA: the GDN_MMA=0 build runs them, the other
       only the tiles of heads up to 128 wide (below) */
    if (!(gen && GDN_MMA)) {
        FwdArgs fa = {eo, est, NULL, bq, bq + HD, bq + 2 * HD, ld, gd, be, T, H, D, scale, sc};
        emu_grid((unsigned)(B * H), 1, fwd, &fa);
        check("forward out", rel(eo, 1, o, 1, N * HD, 0), tb);
        check("forward final state", rel(est, 0, st, 1, ns, 0), tf);
        FwdArgs sa = {NULL, NULL, ews, bq, bq + HD, bq + 2 * HD, ld, gd, be, T, H, D, scale, sc};
        emu_grid((unsigned)(B * H), 1, fwd, &sa);
        /* (a padded head keeps 64 x 64 tiles, the reference D x D ones) */
        if (D >= 64) check("state pass (chunk initial states)", rel(ews, 0, ws, 1, (size_t)B * H * ((T + 63) / 64) * D * D, 0), tf);
        BwdArgs ba = {edq, edq + HD, edq + 2 * HD, edg, edb, bdo, ews, bq, bq + HD, bq + 2 * HD, ld, gd, be, T, H, D, scale, sc};
        emu_grid((unsigned)(B * H), 1, bwd, &ba);
        check("backward dq", rel(edq, 1, dqkv, N, HD, ld), tb);
        check("backward dk", rel(edq + HD, 1, dqkv + HD, N, HD, ld), tb);
        check("backward dv", rel(edq + 2 * HD, 1, dqkv + 2 * HD, N, HD, ld), tb);
        check("backward dg", rel(edg, 0, dg, 1, N * H, 0), tf);
        check("backward dbeta", rel(edb, 0, db, 1, N * H, 0), tf);
        {   /* the same backward again: every output bit for bit */
            bf16 *rdq = bf16_nan(N * ld);
            float *rdg = f32_nan(N * H), *rdb = f32_nan(N * H);
            BwdArgs ra = {rdq, rdq + HD, rdq + 2 * HD, rdg, rdb, bdo, ews, bq, bq + HD, bq + 2 * HD, ld, gd, be, T, H, D, scale, sc};
            emu_grid((unsigned)(B * H), 1, bwd, &ra);
            same_bits("backward dq dk dv", rdq, edq, 2, N, 3 * HD, ld, GDN_DET);
            same_bits("backward dg", rdg, edg, 4, 1, N * H, 0, GDN_DET);
            same_bits("backward dbeta", rdb, edb, 4, 1, N * H, 0, GDN_DET);
            free(rdq); free(rdg); free(rdb);
        }
    }
    /* the chunk-parallel kernels (tuning gdn_par=1) as gpu_gdn_forward / _backward launch them:
       prep, state, out, then the backward's prep, state, dstate, local. Up to D 64 the 64-wide
       tiles; from 65 to 128 the wide tiles (tuning gdn_wtile=1: gdn_*_w, the passes over the
       chunks and out a block per v-block); past 128 those of gdn_wtile=2 (gdn_*_x, likewise),
       which also run at D 72 here (two blocks, the second padded: the k-block loops at nb 2) */
    int kinds[2], nkind = 0;
    if (!gen) kinds[nkind++] = 0;
    if (gen && D <= 128) kinds[nkind++] = 1;
    if (D > 128 || D == 72) kinds[nkind++] = 2;
    for (int ki = 0; ki < nkind; ki++) {
        const int kind = kinds[ki], nb = (D + 63) / 64, nv = kind ? nb : 1, nc = (T + 63) / 64, BH = B * H;
        const int nh = (int)(nw / 6);
        const double pb = GDN_MMA ? 1.5e-2 : 5e-3, pf = GDN_MMA ? 1.5e-2 : 1e-4; /* (= tb, tf on the tiles) */
        const char *tag = kind == 2 ? "xtile" : kind ? "wtile" : "par";
        char name[96];
        /* the wide tiles' 64 x 64 tiles a (b, h, chunk) live in the Gpu's gdn scratch, not ws:
           15 (gdn_*_w), 3 nb + 2 nb^2 + 1 (gdn_*_x; gdn_par_slots_) */
        const size_t slots = kind == 2 ? (size_t)(3 * nb + 2 * nb * nb + 1) : 15;
        const size_t npw = kind ? slots * BH * nc * 64 * 64 : nw;
        float *pws = f32_nan(npw), *pst = malloc(ns * 4);
        bf16 *pdq = bf16_nan(N * ld), *q_ = bq, *k_ = bq + HD, *v_ = bq + 2 * HD, *nod = NULL;
        float *pdg = f32_nan(N * H), *pdb = f32_nan(N * H), *nost = NULL, fs = scale;
        int ld_ = ld, T_ = T, H_ = H, D_ = D;
        /* forward use first: no dout, the state in and out */
        memcpy(pst, st0, ns * 4);
        KArgs a1 = {{&pws, &q_, &k_, &v_, &ld_, &nod, &gd, &be, &T_, &H_, &D_, &fs}, kind};
        emu_grid((unsigned)nc, (unsigned)BH, prep_body, &a1);
        KArgs a2 = {{&pws, &pst, &k_, &ld_, &gd, &be, &T_, &H_, &D_}, kind};
        emu_grid((unsigned)BH, nv, state_body, &a2);
        snprintf(name, sizeof name, "%s: prep + state, final state", tag);
        check(name, rel(pst, 0, st, 1, ns, 0), pf);
        bf16 *po = bf16_nan(N * HD);
        KArgs a3 = {{&po, &pws, &q_, &k_, &ld_, &gd, &be, &T_, &H_, &D_, &fs}, kind};
        emu_grid3((unsigned)nc, (unsigned)BH, nv, out_body, &a3);
        snprintf(name, sizeof name, "%s: forward out", tag);
        check(name, rel(po, 1, o, 1, N * HD, 0), pb);
        free(po);
        /* the backward */
        KArgs b1 = {{&pws, &q_, &k_, &v_, &ld_, &bdo, &gd, &be, &T_, &H_, &D_, &fs}, kind};
        emu_grid((unsigned)nc, (unsigned)BH, prep_body, &b1);
        KArgs b2 = {{&pws, &nost, &k_, &ld_, &gd, &be, &T_, &H_, &D_}, kind};
        emu_grid((unsigned)BH, nv, state_body, &b2);
        if (D == 64) check("par: chunk initial states", rel(pws, 0, ws, 1, (size_t)nh, 0), pf);
        KArgs b3 = {{&pws, &q_, &k_, &ld_, &bdo, &gd, &be, &T_, &H_, &D_, &fs}, kind};
        emu_grid((unsigned)BH, nv, dstate_body, &b3);
        bf16 *dq_ = pdq, *dk_ = pdq + HD, *dv_ = pdq + 2 * HD;
        KArgs b4 = {{&dq_, &dk_, &dv_, &pdg, &pdb, &bdo, &pws, &q_, &k_, &v_, &ld_, &gd, &be, &T_, &H_, &D_, &fs}, kind};
        emu_grid((unsigned)nc, (unsigned)BH, local_body, &b4);
        static const char *const gname[] = {"dq", "dk", "dv"};
        for (int i = 0; i < 3; i++) {
            snprintf(name, sizeof name, "%s: backward %s", tag, gname[i]);
            check(name, rel(pdq + i * HD, 1, dqkv + i * HD, N, HD, ld), pb);
        }
        snprintf(name, sizeof name, "%s: backward dg", tag);
        check(name, rel(pdg, 0, dg, 1, N * H, 0), pf);
        snprintf(name, sizeof name, "%s: backward dbeta", tag);
        check(name, rel(pdb, 0, db, 1, N * H, 0), pf);
        {   /* the per-chunk backward again (the kernel with the cross-warp sums), bit for bit */
            bf16 *rdq = bf16_nan(N * ld), *rq_ = rdq, *rk_ = rdq + HD, *rv_ = rdq + 2 * HD;
            float *rdg = f32_nan(N * H), *rdb = f32_nan(N * H);
            KArgs r4 = {{&rq_, &rk_, &rv_, &rdg, &rdb, &bdo, &pws, &q_, &k_, &v_, &ld_, &gd, &be, &T_, &H_, &D_, &fs},
                        kind};
            emu_grid((unsigned)nc, (unsigned)BH, local_body, &r4);
            snprintf(name, sizeof name, "%s: backward dq dk dv", tag);
            same_bits(name, rdq, pdq, 2, N, 3 * HD, ld, GDN_DET);
            snprintf(name, sizeof name, "%s: backward dg", tag);
            same_bits(name, rdg, pdg, 4, 1, N * H, 0, GDN_DET);
            snprintf(name, sizeof name, "%s: backward dbeta", tag);
            same_bits(name, rdb, pdb, 4, 1, N * H, 0, GDN_DET);
            free(rdq); free(rdg); free(rdb);
        }
        free(pws); free(pst); free(pdq); free(pdg); free(pdb);
    }
    free(qkv); free(gd); free(be); free(dout); free(st0); free(st); free(est); free(o); free(dqkv); free(dg); free(db);
    free(ws); free(bq); free(bdo); free(eo); free(edq); free(edg); free(edb); free(ews); free(sc);
}

/* the small kernels, each with its own little argument block */
typedef struct { void *a[14]; } Args;
#define A(i, T) (*(T *)x->a[i])
static void conv_fwd_body(void *p) { Args *x = p; gdn_conv_fwd(A(0, bf16 *), A(1, bf16 *), A(2, bf16 *), A(3, int), A(4, bf16 *), A(5, int), A(6, int), A(7, int), A(8, int)); }
static void conv_bwd_body(void *p) {
    Args *x = p;
    gdn_conv_bwd(A(0, bf16 *), A(1, int), A(2, float *), A(3, float *), A(4, bf16 *), A(5, bf16 *), A(6, bf16 *), A(7, bf16 *), A(8, int), A(9, int), A(10, int), A(11, int));
}
static void l2_fwd_body(void *p) { Args *x = p; gdn_l2norm_fwd(A(0, bf16 *), A(1, int), A(2, float *), A(3, int), A(4, int), A(5, int), A(6, float)); }
static void l2_bwd_body(void *p) { Args *x = p; gdn_l2norm_bwd(A(0, bf16 *), A(1, int), A(2, bf16 *), A(3, int), A(4, float *), A(5, int), A(6, int), A(7, int)); }
static void gates_fwd_body(void *p) { Args *x = p; gdn_gates_fwd(A(0, float *), A(1, float *), A(2, bf16 *), A(3, bf16 *), A(4, int), A(5, bf16 *), A(6, bf16 *), A(7, int), A(8, int)); }
static void gates_bwd_body(void *p) {
    Args *x = p;
    gdn_gates_bwd(A(0, bf16 *), A(1, bf16 *), A(2, int), A(3, float *), A(4, float *), A(5, float *), A(6, float *), A(7, float *), A(8, bf16 *), A(9, bf16 *), A(10, bf16 *), A(11, bf16 *), A(12, int), A(13, int));
}
static void gnorm_fwd_body(void *p) { Args *x = p; gdn_gnorm_fwd(A(0, bf16 *), A(1, float *), A(2, bf16 *), A(3, bf16 *), A(4, int), A(5, bf16 *), A(6, int), A(7, int), A(8, int), A(9, float)); }
static void gnorm_bwd_body(void *p) {
    Args *x = p;
    gdn_gnorm_bwd(A(0, bf16 *), A(1, bf16 *), A(2, int), A(3, float *), A(4, float *), A(5, bf16 *), A(6, bf16 *), A(7, bf16 *), A(8, bf16 *), A(9, float *), A(10, int), A(11, int), A(12, int));
}
static void sum_parts_body(void *p) {
    Args *x = p;
    gdn_sum_parts(A(0, float *), A(1, float *), A(2, int), A(3, float *), A(4, int), A(5, int));
}
#undef A

/* the conv alone: slabs of CONV_ROWS rows that cut sequences, a sequence boundary inside a
   slab, a partial block of channels, conv sizes 1..8 */
static void conv_case(int B, int T, int Ch, int K) {
    int N = B * T, ld = Ch + 6; /* the input is a column view */
    printf("conv N=%d T=%d Ch=%d K=%d\n", N, T, Ch, K);
    float *in = frand((size_t)N * ld), *w = frand((size_t)Ch * K), *dout = frand((size_t)N * Ch);
    float *pre = calloc((size_t)N * Ch, 4), *post = calloc((size_t)N * Ch, 4), *din = calloc((size_t)N * ld, 4),
          *dw = calloc((size_t)Ch * K, 4), *edw = calloc((size_t)Ch * K, 4);
    attn_gdn_conv_silu_forward(NULL, pre, post, in, ld, w, N, T, Ch, K);
    bf16 *bin = to_bf16(in, (size_t)N * ld), *bw = to_bf16(w, (size_t)Ch * K), *bdo = to_bf16(dout, (size_t)N * Ch);
    bf16 *epre = bf16_nan((size_t)N * Ch), *epost = bf16_nan((size_t)N * Ch), *edin = bf16_nan((size_t)N * ld);
    unsigned gx = (unsigned)(Ch + 255) / 256, gy = (unsigned)(N + CONV_ROWS - 1) / CONV_ROWS;
    Args a0 = {{&epre, &epost, &bin, &ld, &bw, &N, &T, &Ch, &K}};
    emu_grid(gx, gy, conv_fwd_body, &a0);
    check("conv pre", rel(epre, 1, pre, 1, (size_t)N * Ch, 0), 5e-3);
    check("conv silu", rel(epost, 1, post, 1, (size_t)N * Ch, 0), 5e-3);
    for (size_t i = 0; i < (size_t)N * Ch; i++) pre[i] = bf2f(epre[i]);
    /* dw is accumulated into (+=): start it from values of its own */
    int n = Ch * K, np = (int)gy;
    for (int i = 0; i < n; i++) dw[i] = edw[i] = (float)nrand();
    float *dw0 = malloc((size_t)n * 4), *part = f32_nan((size_t)np * n), *nopart = NULL, *nodst = NULL;
    memcpy(dw0, dw, (size_t)n * 4);
    attn_gdn_conv_silu_backward(NULL, din, ld, dw, dout, pre, in, w, N, T, Ch, K);
    /* the default form: per-slab partials, then gdn_sum_parts */
    Args a1 = {{&edin, &ld, &edw, &part, &bdo, &epre, &bin, &bw, &N, &T, &Ch, &K}}, s1 = {{&edw, &nodst, &n, &part, &n, &np}};
    emu_grid(gx, gy, conv_bwd_body, &a1);
    emu_grid((unsigned)(n + 31) / 32, 1, sum_parts_body, &s1);
    check("conv backward dx", rel(edin, 1, din, N, Ch, ld), 5e-3);
    check("conv backward dw", rel(edw, 0, dw, 1, (size_t)n, 0), 1e-4);
    /* again, bit for bit; then the atomicAdd form (Gpu.nondeterministic) */
    bf16 *rdin = bf16_nan((size_t)N * ld);
    float *rdw = malloc((size_t)n * 4), *adw = malloc((size_t)n * 4);
    memcpy(rdw, dw0, (size_t)n * 4);
    memcpy(adw, dw0, (size_t)n * 4);
    Args a2 = {{&rdin, &ld, &rdw, &part, &bdo, &epre, &bin, &bw, &N, &T, &Ch, &K}}, s2 = {{&rdw, &nodst, &n, &part, &n, &np}};
    emu_grid(gx, gy, conv_bwd_body, &a2);
    emu_grid((unsigned)(n + 31) / 32, 1, sum_parts_body, &s2);
    same_bits("conv backward dx", rdin, edin, 2, N, Ch, ld, 1);
    same_bits("conv backward dw", rdw, edw, 4, 1, n, 0, 1);
    Args a3 = {{&rdin, &ld, &adw, &nopart, &bdo, &epre, &bin, &bw, &N, &T, &Ch, &K}};
    emu_grid(gx, gy, conv_bwd_body, &a3);
    check("conv backward dw (atomicAdd form)", rel(adw, 0, dw, 1, (size_t)n, 0), 1e-4);
    free(in); free(w); free(dout); free(pre); free(post); free(din); free(dw); free(edw);
    free(bin); free(bw); free(bdo); free(epre); free(epost); free(edin);
    free(dw0); free(part); free(rdin); free(rdw); free(adw);
}

static void small_ops(int D) {
    int B = 2, T = 21, N = B * T, H = 2, HD = H * D, P = 4 * HD + 2 * H, Ch = 3 * HD, nh = 2 * H;
    float eps6 = 1e-6f, eps5 = 1e-5f;
    printf("small ops N=%d H=%d D=%d\n", N, H, D);
    float *proj = frand((size_t)N * P), *dpost = frand((size_t)N * Ch), *wn = frand(D),
          *alog = frand(H), *dtb = frand(H);
    bf16 *bproj = to_bf16(proj, (size_t)N * P),
         *bwn = to_bf16(wn, D), *balog = to_bf16(alog, H), *bdtb = to_bf16(dtb, H);
    /* L2 norm */
    float *x = malloc((size_t)N * P * 4), *rn = calloc((size_t)N * nh, 4), *ern = calloc((size_t)N * nh, 4);
    memcpy(x, proj, (size_t)N * P * 4);
    attn_gdn_l2norm_forward(NULL, x, P, rn, N, nh, D, 1e-6f);
    bf16 *ex = to_bf16(proj, (size_t)N * P);
    Args a3 = {{&ex, &P, &ern, &N, &nh, &D, &eps6}};
    emu_grid((unsigned)(N * nh * 32 + 255) / 256, 1, l2_fwd_body, &a3);
    check("l2norm y", rel(ex, 1, x, N, 2 * HD, P), 5e-3);
    check("l2norm 1/|x|", rel(ern, 0, rn, 1, (size_t)N * nh, 0), 1e-4);
    for (size_t i = 0; i < (size_t)N * P; i++) x[i] = bf2f(ex[i]);
    float *dy = malloc((size_t)N * Ch * 4);
    memcpy(dy, dpost, (size_t)N * Ch * 4);
    attn_gdn_l2norm_backward(NULL, dy, Ch, x, P, rn, N, nh, D);
    bf16 *edy = to_bf16(dpost, (size_t)N * Ch);
    Args a4 = {{&edy, &Ch, &ex, &P, &ern, &N, &nh, &D}};
    emu_grid((unsigned)(N * nh * 32 + 255) / 256, 1, l2_bwd_body, &a4);
    check("l2norm backward", rel(edy, 1, dy, N, 2 * HD, Ch), 5e-3);
    /* gates */
    float *gg = calloc((size_t)N * H, 4), *bb = calloc((size_t)N * H, 4), *dgg = frand((size_t)N * H), *dbb = frand((size_t)N * H),
          *dab = calloc((size_t)N * P, 4), *dA = calloc(H, 4), *ddt = calloc(H, 4), *egg = calloc((size_t)N * H, 4),
          *ebb = calloc((size_t)N * H, 4), *edA = calloc(H, 4), *eddt = calloc(H, 4);
    attn_gdn_gates_forward(NULL, gg, bb, proj + 4 * HD, proj + 4 * HD + H, P, alog, dtb, N, H);
    bf16 *pa = bproj + 4 * HD, *pb = bproj + 4 * HD + H;
    Args a5 = {{&egg, &ebb, &pa, &pb, &P, &balog, &bdtb, &N, &H}};
    emu_grid(1, 1, gates_fwd_body, &a5);
    check("gates g", rel(egg, 0, gg, 1, (size_t)N * H, 0), 1e-4);
    check("gates beta", rel(ebb, 0, bb, 1, (size_t)N * H, 0), 1e-4);
    attn_gdn_gates_backward(NULL, dab + 4 * HD, dab + 4 * HD + H, P, dA, ddt, dgg, dbb, proj + 4 * HD, proj + 4 * HD + H,
                          alog, dtb, N, H);
    bf16 *edab = bf16_nan((size_t)N * P), *eda = edab + 4 * HD, *edb = edab + 4 * HD + H;
    /* two blocks a head (the GPU uses up to 64): partials [2][2H], then gdn_sum_parts into
       dA_log (i < H) and ddt_bias (i >= H) */
    int gbx = 2, H2 = 2 * H;
    float *gpart = f32_nan((size_t)gbx * H2), *nopart = NULL, *nodst = NULL;
    Args a6 = {{&eda, &edb, &P, &edA, &eddt, &gpart, &dgg, &dbb, &pa, &pb, &balog, &bdtb, &N, &H}};
    Args s6 = {{&edA, &eddt, &H, &gpart, &H2, &gbx}};
    emu_grid((unsigned)gbx, (unsigned)H, gates_bwd_body, &a6);
    emu_grid(1, 1, sum_parts_body, &s6);
    check("gates backward da", rel(eda, 1, dab + 4 * HD, N, H, P), 5e-3);
    check("gates backward db", rel(edb, 1, dab + 4 * HD + H, N, H, P), 5e-3);
    check("gates backward dA_log", rel(edA, 0, dA, 1, H, 0), 1e-4);
    check("gates backward ddt_bias", rel(eddt, 0, ddt, 1, H, 0), 1e-4);
    {   /* again, bit for bit; then the atomicAdd form */
        float *rA = calloc(H, 4), *rdt = calloc(H, 4);
        Args r6 = {{&eda, &edb, &P, &rA, &rdt, &gpart, &dgg, &dbb, &pa, &pb, &balog, &bdtb, &N, &H}};
        Args rs6 = {{&rA, &rdt, &H, &gpart, &H2, &gbx}};
        emu_grid((unsigned)gbx, (unsigned)H, gates_bwd_body, &r6);
        emu_grid(1, 1, sum_parts_body, &rs6);
        same_bits("gates backward dA_log", rA, edA, 4, 1, H, 0, 1);
        same_bits("gates backward ddt_bias", rdt, eddt, 4, 1, H, 0, 1);
        memset(rA, 0, H * 4);
        memset(rdt, 0, H * 4);
        Args t6 = {{&eda, &edb, &P, &rA, &rdt, &nopart, &dgg, &dbb, &pa, &pb, &balog, &bdtb, &N, &H}};
        emu_grid((unsigned)gbx, (unsigned)H, gates_bwd_body, &t6);
        check("gates backward dA_log (atomicAdd form)", rel(rA, 0, dA, 1, H, 0), 1e-4);
        check("gates backward ddt_bias (atomicAdd form)", rel(rdt, 0, ddt, 1, H, 0), 1e-4);
        free(rA); free(rdt); free(gpart);
    }
    /* gated RMSNorm */
    float *o = frand((size_t)N * HD), *y = calloc((size_t)N * HD, 4), *rstd = calloc((size_t)N * H, 4), *dgo = frand((size_t)N * HD),
          *erstd = calloc((size_t)N * H, 4);
    attn_gdn_gated_rmsnorm_forward(NULL, y, rstd, o, proj + 3 * HD, P, wn, N, H, D, 1e-5f);
    bf16 *bo = to_bf16(o, (size_t)N * HD), *ey = bf16_nan((size_t)N * HD), *gate = bproj + 3 * HD;
    Args a7 = {{&ey, &erstd, &bo, &gate, &P, &bwn, &N, &H, &D, &eps5}};
    emu_grid((unsigned)(N * H * 32 + 255) / 256, 1, gnorm_fwd_body, &a7);
    check("gated rmsnorm y", rel(ey, 1, y, 1, (size_t)N * HD, 0), 5e-3);
    check("gated rmsnorm rstd", rel(erstd, 0, rstd, 1, (size_t)N * H, 0), 1e-4);
    float *dO = calloc((size_t)N * HD, 4), *dgate = calloc((size_t)N * P, 4), *dwn = calloc(D, 4), *edwn = calloc(D, 4);
    attn_gdn_gated_rmsnorm_backward(NULL, dO, dgate + 3 * HD, P, dwn, dgo, o, proj + 3 * HD, wn, rstd, N, H, D);
    bf16 *bdgo = to_bf16(dgo, (size_t)N * HD), *edO = bf16_nan((size_t)N * HD), *edg = bf16_nan((size_t)N * P), *edg3 = edg + 3 * HD;
    int nb = 3;
    float *npart = f32_nan((size_t)nb * D);
    Args a8 = {{&edO, &edg3, &P, &edwn, &npart, &bdgo, &bo, &gate, &bwn, &erstd, &N, &H, &D}};
    Args s8 = {{&edwn, &nodst, &D, &npart, &D, &nb}};
    emu_grid((unsigned)nb, 1, gnorm_bwd_body, &a8);
    emu_grid((unsigned)(D + 31) / 32, 1, sum_parts_body, &s8);
    check("gated rmsnorm backward do", rel(edO, 1, dO, 1, (size_t)N * HD, 0), 5e-3);
    check("gated rmsnorm backward dgate", rel(edg3, 1, dgate + 3 * HD, N, HD, P), 5e-3);
    check("gated rmsnorm backward dw", rel(edwn, 0, dwn, 1, D, 0), 1e-4);
    {   /* again, bit for bit; then the atomicAdd form */
        float *rw = calloc(D, 4);
        bf16 *rO = bf16_nan((size_t)N * HD);
        Args r8 = {{&rO, &edg3, &P, &rw, &npart, &bdgo, &bo, &gate, &bwn, &erstd, &N, &H, &D}};
        Args rs8 = {{&rw, &nodst, &D, &npart, &D, &nb}};
        emu_grid((unsigned)nb, 1, gnorm_bwd_body, &r8);
        emu_grid((unsigned)(D + 31) / 32, 1, sum_parts_body, &rs8);
        same_bits("gated rmsnorm backward do", rO, edO, 2, 1, (size_t)N * HD, 0, 1);
        same_bits("gated rmsnorm backward dw", rw, edwn, 4, 1, D, 0, 1);
        memset(rw, 0, D * 4);
        Args t8 = {{&rO, &edg3, &P, &rw, &nopart, &bdgo, &bo, &gate, &bwn, &erstd, &N, &H, &D}};
        emu_grid((unsigned)nb, 1, gnorm_bwd_body, &t8);
        check("gated rmsnorm backward dw (atomicAdd form)", rel(rw, 0, dwn, 1, D, 0), 1e-4);
        free(rw); free(rO); free(npart);
    }
    /* the process ends right after: the host buffers are left to the OS */
}

int main(void) {
    emu_fiber_seed = 0x2545F4914F6CDD1Dull; /* every launch's threads and blocks in shuffled orders */
    chunk_case(2, 193, 2, 64); /* three full chunks and a tail of 1 */
    chunk_case(1, 64, 1, 64);  /* exactly one chunk */
    chunk_case(3, 1, 1, 64);   /* one token */
    chunk_case(1, 130, 2, 32); /* narrower heads, padded to the tile inside the kernels */
    chunk_case(2, 70, 1, 48);
    chunk_case(1, 130, 2, 72); /* the wide-head kernels (GDN_MMA=0) and the wide tiles */
    chunk_case(1, 70, 1, 128);
    chunk_case(1, 130, 1, 136); /* past 128: gdn_*_x at three blocks (the third padded) and four */
    chunk_case(1, 70, 2, 192);
    chunk_case(1, 70, 1, 256);
    if (!GDN_MMA) { /* they do not depend on GDN_MMA */
        small_ops(64);
        small_ops(72);
        small_ops(256);
        conv_case(2, 21, 384, 4);  /* the block's q|k|v channels at small_ops' shape */
        conv_case(2, 150, 300, 4); /* slabs 0-127, 128-255, 256-299; sequences 0-149, 150-299 */
        conv_case(3, 50, 40, 8);
        conv_case(1, 300, 33, 1);
        conv_case(5, 2, 20, 3);    /* sequences shorter than the conv */
    }
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
