/* tests/check.h - what the CPU test programs share: PASS/FAIL lines and their count, a
   seeded random stream, small vector helpers and the finite-difference gradient check.
   DEPENDS ON: ops.h (ops_real), included before it; one test program includes it, every name is
   static.

   check_grad(name, f, ctx, x, grad, n, max_checks): up to max_checks elements of x, spread
   over it, each moved by +-h (h = 1e-5) with the loss f re-evaluated: pass when
   |g_ana - g_num| <= 1e-6 * max(1, |g_ana|, |g_num|) everywhere (meaningful in the double
   build, -DABLATE_REAL=double). */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int n_pass, n_fail;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

/* (static inline: a test that uses only report() gets no unused-function warnings) */
/* xorshift64*: uniform in [0, 1); a test may reseed check_rng */
static uint64_t check_rng = 0x2545F4914F6CDD1Dull;
static inline double urand(void) {
    check_rng ^= check_rng >> 12; check_rng ^= check_rng << 25; check_rng ^= check_rng >> 27;
    return ((check_rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static inline double nrand(void) { return sqrt(-2 * log(urand() + 1e-300)) * cos(6.283185307179586 * urand()); }
static inline ops_real *rnd(size_t n, double sd) {
    ops_real *p = malloc(sizeof(ops_real) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = sd * nrand();
    return p;
}
static inline ops_real *zeros(size_t n) { return calloc(n ? n : 1, sizeof(ops_real)); }
static inline double dot(const ops_real *a, const ops_real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static inline double max_abs_diff(const ops_real *a, const ops_real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

typedef double (*LossFn)(void *ctx);
static inline void check_grad(const char *name, LossFn f, void *ctx, ops_real *x, const ops_real *grad, size_t n, int max_checks) {
    const double h = 1e-5, tol = 1e-6;
    double worst = 0;
    size_t step = n > (size_t)max_checks ? n / max_checks : 1;
    int ok = 1;
    for (size_t i = 0; i < n; i += step) {
        size_t j = (i + (size_t)(urand() * step)) % n;
        ops_real keep = x[j];
        x[j] = keep + h;
        double lp = f(ctx);
        x[j] = keep - h;
        double lm = f(ctx);
        x[j] = keep;
        double num = (lp - lm) / (2 * h), ana = grad[j];
        double err = fabs(num - ana) / fmax(1.0, fmax(fabs(num), fabs(ana)));
        if (err > worst) worst = err;
        if (!(err <= tol)) ok = 0;
    }
    char d[64];
    snprintf(d, sizeof d, "max err %.1e", worst);
    report(ok, name, d);
}

#endif /* TESTS_CHECK_H */
