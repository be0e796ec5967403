/* gpu_test.h - host helpers shared by the GPU check programs that compare with a double
   CPU reference (tests/gpu_attn_check.c, tests/gpu_sparse_check.c; gpu_linear_check.c takes the
   bf16, random and median helpers): bf16 bits <-> double,
   a seeded normal generator, random bf16 tensors with their exact values, device buffers
   uploaded or poisoned with NaN, the relative L2 error of a device result, and a float
   comparator for medians. DEPENDS ON: gpu.h (GPU_IMPLEMENTATION, -DABLATE_CUDA), included before it; everything is
   static. */
#ifndef TESTS_GPU_TEST_H
#define TESTS_GPU_TEST_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* xorshift64* on the generator *st, uniform in (0, 1) */
static double urand_at(uint64_t *st) {
    *st ^= *st >> 12; *st ^= *st << 25; *st ^= *st >> 27;
    return ((*st * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0) + 1e-17;
}
static uint64_t rng_state = 0x9E3779B97F4A7C15ull; /* the shared generator */
static double urand(void) { return urand_at(&rng_state); }
static double nrand(void) { return sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()); }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of host memory\n"); exit(1); }
    return p;
}
/* n random bf16 values with std sd: the bits in *bits, their exact doubles in *vals */
static void rand_bf16(size_t n, double sd, uint16_t **bits, double **vals) {
    *bits = xmalloc(n * 2);
    *vals = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) { (*bits)[i] = f2bf(sd * nrand()); (*vals)[i] = bf2d((*bits)[i]); }
}

static void *dev_upload(Gpu *g, const void *h, size_t bytes) {
    void *d = gpu_alloc(g, bytes);
    gpu_upload(g, d, h, bytes);
    return d;
}
/* a device buffer of 0xFF bytes: NaN as bf16 and fp32, -1 as int */
static void *dev_poisoned(Gpu *g, size_t bytes) {
    void *h = xmalloc(bytes);
    memset(h, 0xFF, bytes);
    void *d = dev_upload(g, h, bytes);
    free(h);
    return d;
}

/* relative L2 error of a device result (bf16 or fp32) against a double reference; -1 if
   anything is not finite */
static double rel_err(Gpu *g, const void *dev, int is_bf16, const double *ref, size_t n) {
    void *h = xmalloc(n * 4);
    gpu_download(g, h, dev, n * (is_bf16 ? 2 : 4));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x = is_bf16 ? bf2d(((uint16_t *)h)[i]) : ((float *)h)[i];
        if (!isfinite(x)) { free(h); return -1; }
        num += (x - ref[i]) * (x - ref[i]);
        den += ref[i] * ref[i];
    }
    free(h);
    return sqrt(num / (den > 0 ? den : 1));
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
#endif /* TESTS_GPU_TEST_H */
