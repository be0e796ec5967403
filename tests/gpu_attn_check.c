/* gpu_attn_check.c - the flash attention kernels (kernels_attn.cu.h) against
   ops.h's CPU reference in double precision, then timings.

   Build (device machine):
     cc -O2 -fopenmp -I. tests/gpu_attn_check.c -I/usr/local/cuda/include \
        -L/usr/local/cuda/lib64 -lnvrtc -lcuda -lcublasLt -lcublas -lm -o /tmp/gpu_attn_check
   Run:  /tmp/gpu_attn_check [--no-timing | --timing-only | --compile-only]
     --compile-only  no GPU: NVRTC-compile every specialization for sm_80 and sm_90

   Each case draws fresh random bf16 inputs, poisons every output with NaN, runs
   forward and backward on the GPU and compares with op_attention_forward/backward
   (gpu == NULL) computed in double on the same bf16-rounded inputs:
   relative L2 error <= 1e-2 for out, dq, dk, dv; max |lse - ref| <= 1e-4.
   On a compute capability 9.0 device every hd 64 case and timing runs on the mma.sync
   kernels (ABLATE_ATTN_WGMMA=0) and on the Hopper wgmma kernels (=3) with each of the
   backward's dQ reductions (ABLATE_ATTN_WBWD_DQ=0..4); the reference is computed once.
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <math.h>

/* the CPU reference in double, with no CUDA path (this file drives the GPU itself) */
#define ABLATE_REAL double
#define ABLATE_NO_CUDA
#define OPS_IMPLEMENTATION
#include "ops.h"
#undef ABLATE_NO_CUDA

#define GPU_IMPLEMENTATION
#include "gpu.h"
#include "kernels_attn.cu.h"

/* ---------------------------------------------------------------- host bf16 */
static uint16_t f2bf(double x) {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even (inputs are finite) */
    return (uint16_t)(u >> 16);
}
static double bf2d(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64*, uniform in (0, 1) */
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return ((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0) + 1e-17;
}
static double nrand(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }

/* n random bf16 values with std sd: the bits in *bits, their exact doubles in *vals */
static void rand_bf16(size_t n, double sd, uint16_t **bits, double **vals) {
    *bits = malloc(n * 2);
    *vals = malloc(n * sizeof(double));
    if (!*bits || !*vals) { fprintf(stderr, "out of host memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) { (*bits)[i] = f2bf(sd * nrand()); (*vals)[i] = bf2d((*bits)[i]); }
}

static void *dev_upload(Gpu *g, const void *h, size_t bytes) {
    void *d = gpu_alloc(g, bytes);
    gpu_upload(g, d, h, bytes);
    return d;
}

/* a device buffer full of 0xFF bytes: NaN as bf16 and as fp32 */
static void *dev_poisoned(Gpu *g, size_t bytes) {
    void *h = malloc(bytes);
    memset(h, 0xFF, bytes);
    void *d = dev_upload(g, h, bytes);
    free(h);
    return d;
}

/* relative L2 error of a bf16 device result against a double reference; -1 if any non-finite */
static double rel_err_bf16(Gpu *g, const void *dev, const double *ref, size_t n) {
    uint16_t *h = malloc(n * 2);
    gpu_download(g, h, dev, n * 2);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = bf2d(h[i]);
        if (!isfinite(x)) { free(h); return -1; }
        num += (x - ref[i]) * (x - ref[i]);
        den += ref[i] * ref[i];
    }
    free(h);
    return sqrt(num / (den > 0 ? den : 1));
}

typedef struct { int B, T, H, KV, hd, window; } Case;

static int n_pass, n_fail;

static void check(const char *what, const Case *c, double err, double tol) {
    int ok = err >= 0 && err <= tol;
    printf("  %-4s %s err %.3e (tol %.0e)\n", what, ok ? "ok  " : "FAIL", err, tol);
    if (ok) n_pass++; else n_fail++;
    (void)c;
}

/* the kernel paths: ABLATE_ATTN_WGMMA, ABLATE_ATTN_WBWD_DQ ("" = the default) */
static const char *paths[][2] = {{"0", ""}, {"3", "0"}, {"3", "1"}, {"3", "2"}, {"3", "3"}, {"3", "4"}};
static void set_path(int p) {
    setenv("ABLATE_ATTN_WGMMA", paths[p][0], 1);
    setenv("ABLATE_ATTN_WBWD_DQ", paths[p][1], 1);
}

static void run_case(Gpu *g, const Case *c, int npaths) {
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
    op_attention_forward(NULL, out, lse, q, k, v, B, T, H, KV, hd, W);
    op_attention_backward(NULL, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, W);

    for (int p = 0; p < npaths; p++) {
    set_path(p);
    printf("[ABLATE_ATTN_WGMMA=%s ABLATE_ATTN_WBWD_DQ=%s] case B=%d T=%d H=%d KV=%d hd=%d window=%d\n",
           paths[p][0], paths[p][1], B, T, H, KV, hd, W);
    /* GPU */
    void *d_q = dev_upload(g, qb, nq * 2), *d_k = dev_upload(g, kb, nk * 2),
         *d_v = dev_upload(g, vb, nk * 2), *d_do = dev_upload(g, gb, nq * 2);
    void *d_o = dev_poisoned(g, nq * 2), *d_dq = dev_poisoned(g, nq * 2), *d_dk = dev_poisoned(g, nk * 2),
         *d_dv = dev_poisoned(g, nk * 2);
    float *d_lse = dev_poisoned(g, nl * 4);
    gpu_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, W);
    gpu_attention_backward(g, d_dq, d_dk, d_dv, d_do, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, W);
    gpu_sync(g);

    check("out", c, rel_err_bf16(g, d_o, out, nq), 1e-2);
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
    check("dq", c, rel_err_bf16(g, d_dq, dq, nq), 1e-2);
    check("dk", c, rel_err_bf16(g, d_dk, dk, nk), 1e-2);
    check("dv", c, rel_err_bf16(g, d_dv, dv, nk), 1e-2);

    /* a second forward must give the same bits (a moving result would be a race) */
    {
        uint16_t *a = malloc(nq * 2), *b = malloc(nq * 2);
        gpu_download(g, a, d_o, nq * 2);
        gpu_attention_forward(g, d_o, d_lse, d_q, d_k, d_v, B, T, H, KV, hd, W);
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

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* median milliseconds of `reps` timed runs of fwd (bwd = 0) or fwd+bwd (bwd = 1) */
static float time_ms(Gpu *g, const Case *c, int bwd, int reps, void **bufs) {
    CUevent e0, e1;
    CU_CHECK(cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float *ms = malloc(sizeof(float) * reps);
    for (int r = -3; r < reps; r++) { /* 3 warm-ups */
        CU_CHECK(cuEventRecord(e0, g->stream));
        gpu_attention_forward(g, bufs[4], bufs[5], bufs[0], bufs[1], bufs[2], c->B, c->T, c->H, c->KV,
                              c->hd, c->window);
        if (bwd)
            gpu_attention_backward(g, bufs[6], bufs[7], bufs[8], bufs[3], bufs[4], bufs[5], bufs[0], bufs[1],
                                   bufs[2], c->B, c->T, c->H, c->KV, c->hd, c->window);
        CU_CHECK(cuEventRecord(e1, g->stream));
        CU_CHECK(cuEventSynchronize(e1));
        if (r >= 0) CU_CHECK(cuEventElapsedTime(&ms[r], e0, e1));
    }
    qsort(ms, reps, sizeof(float), cmp_float);
    float med = ms[reps / 2];
    free(ms);
    CU_CHECK(cuEventDestroy(e0));
    CU_CHECK(cuEventDestroy(e1));
    return med;
}

static void run_timing(Gpu *g, const Case *c) {
    size_t nq = (size_t)c->B * c->T * c->H * c->hd, nk = (size_t)c->B * c->T * c->KV * c->hd;
    size_t nl = (size_t)c->B * c->H * c->T;
    uint16_t *qb, *kb, *vb, *gb;
    double *q, *k, *v, *dout;
    rand_bf16(nq, 1.5, &qb, &q);
    rand_bf16(nk, 1.0, &kb, &k);
    rand_bf16(nk, 1.0, &vb, &v);
    rand_bf16(nq, 1.0, &gb, &dout);
    void *bufs[9] = {dev_upload(g, qb, nq * 2), dev_upload(g, kb, nk * 2), dev_upload(g, vb, nk * 2),
                     dev_upload(g, gb, nq * 2), gpu_alloc(g, nq * 2), gpu_alloc(g, nl * 4),
                     gpu_alloc(g, nq * 2), gpu_alloc(g, nk * 2), gpu_alloc(g, nk * 2)};
    double flops = 4.0 * c->B * c->H * (double)c->T * c->T * c->hd / 2; /* causal half */
    if (c->window > 0 && c->window < c->T) /* a window sees about W keys per query */
        flops = 4.0 * c->B * c->H * (double)c->T * c->window * c->hd;
    int reps = c->T >= 8192 ? 20 : 50;
    float f = time_ms(g, c, 0, reps, bufs), fb = time_ms(g, c, 1, reps, bufs);
    printf("%5d %3d %3d %3d %4d %6d | %9.3f %8.1f | %9.3f %8.1f | %8.1f\n", c->T, c->B, c->H, c->KV, c->hd,
           c->window, f, flops / (f * 1e-3) / 1e12, fb, 3.5 * flops / (fb * 1e-3) / 1e12,
           2.5 * flops / ((fb - f) * 1e-3) / 1e12);
    for (int i = 0; i < 9; i++) gpu_free(g, bufs[i]);
    free(qb); free(kb); free(vb); free(gb); free(q); free(k); free(v); free(dout);
}

int main(int argc, char **argv) {
    int timing = 1, checks = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-timing")) timing = 0;
        else if (!strcmp(argv[i], "--timing-only")) checks = 0;
        else if (!strcmp(argv[i], "--compile-only")) {
            int f = attn_kernels_compile_check("sm_80") + attn_kernels_compile_check("sm_90");
            printf("compile check: %d failures\n", f);
            return f != 0;
        } else { fprintf(stderr, "usage: %s [--no-timing | --timing-only | --compile-only]\n", argv[0]); return 2; }
    }
    Gpu g;
    if (gpu_init(&g, 0) != 0) { fprintf(stderr, "no GPU\n"); return 1; }

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
    };
    /* the kernel paths to exercise: the mma.sync kernels, and on sm_90 the wgmma ones */
    int hopper = g.cc_major == 9 && g.cc_minor == 0;
    const int npaths = (int)(sizeof paths / sizeof paths[0]);
    for (size_t i = 0; checks && i < sizeof cases / sizeof cases[0]; i++)
        run_case(&g, &cases[i], hopper && cases[i].hd == 64 ? npaths : 1);

    if (timing) {
        printf("\ntiming on the device: median ms; TFLOP/s with fwd = 4*B*H*T*T*hd/2 (causal), "
               "bwd = 2.5 fwd\n");
        printf("%7s %5s %3s %3s %3s %4s %6s | %9s %8s | %9s %8s | %8s\n", "wgmma/dq", "T", "B", "H", "KV", "hd", "window",
               "fwd ms", "TFLOP/s", "f+b ms", "TFLOP/s", "bwd TF/s");
        static const Case tcases[] = {
            {32, 512, 16, 16, 64, 0}, {8, 2048, 16, 16, 64, 0}, {2, 8192, 16, 16, 64, 0},
            {16, 2048, 9, 3, 64, 0},  /* SmolLM2-135M-like GQA */
            {8, 2048, 16, 16, 64, 256}, /* sliding window: FLOPs counted as 4*B*H*T*W*hd */
            {8, 2048, 8, 8, 128, 0},
        };
        for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++)
            for (int p = 0; p < (hopper && tcases[i].hd == 64 ? npaths : 1); p++) {
                set_path(p);
                printf("%4s/%-2s ", paths[p][0], paths[p][1]);
                run_timing(&g, &tcases[i]);
            }
    }
    gpu_attention_release(&g);
    gpu_free_all(&g);
    printf("\n%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
