/* tests/dist_common.h - what the data-parallel checks share (tests/test_dist.c on CPU ranks,
   tests/gpu_dist_check.c on GPUs): reading a run's losses back and comparing two runs.
   DEPENDS ON: tests/check.h (report), included before it; every name is static.

   losses(dir, val, out, max): the training losses of DIR/metrics.jsonl in step order (key "loss":
     a float, TrainStats), or with val the validation losses (doubles, evaluated steps only); the
     count.
   compare(name, a, b, want, tol_train, tol_val, last_val): two PASS/FAIL lines: the training
     losses of runs a and b (want steps each) within tol_train relative (they are floats: the same
     double loss of two runs may round to neighbouring floats), the validation losses (doubles of
     the weights) within tol_val; last_val: only the last evaluation (the earlier ones of runs of
     another batch take other windows). */
#ifndef TESTS_DIST_COMMON_H
#define TESTS_DIST_COMMON_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int losses(const char *dir, int val, double *out, int max) {
    char p[512], line[4096];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f && n < max && fgets(line, sizeof line, f)) {
        const char *k = strstr(line, val ? "\"val_loss\":" : "\"loss\":");
        if (k) out[n++] = strtod(k + (val ? 11 : 7), NULL);
    }
    if (f) fclose(f);
    return n;
}

static void compare(const char *name, const char *a, const char *b, int want, double tol_train, double tol_val,
                    int last_val) {
    for (int val = 0; val < 2; val++) {
        double la[64], lb[64], worst = 0, tol = val ? tol_val : tol_train;
        int na = losses(a, val, la, 64), nb = losses(b, val, lb, 64);
        int ok = val ? na == nb && na >= 1 : na == want && nb == want;
        for (int i = val && last_val && na ? na - 1 : 0; i < na && i < nb; i++) {
            double d = fabs(la[i] - lb[i]) / fmax(fabs(la[i]), 1e-300);
            if (!(d <= worst)) worst = d;
        }
        ok = ok && worst <= tol;
        char detail[160], full[200];
        snprintf(detail, sizeof detail, "(%d and %d %s, largest relative difference %.3g, tolerance %g)", na, nb,
                 val ? "evaluations" : "steps", worst, tol);
        snprintf(full, sizeof full, "%s: %s", name, val ? "val loss" : "train loss");
        report(ok, full, detail);
    }
}

#endif /* TESTS_DIST_COMMON_H */
