/* emu_fused.c - attn/decode_fused.cu.h's CUDA kernels (the fused small-batch decode step) run on
   the CPU emulation of tests/emu_cuda.h, against plain C references in double on the same bf16
   inputs. It proves nothing about timing, and a race the barriers happen to order may still
   hide; tests/gpu_decode_check.c (dec_fused=1) on the device is the real test.

   make tests/emu_fused && ./tests/emu_fused    (also in make emucheck)
   Checks:
     fz_gemv, every mode, at odd sizes (C not a multiple of 8: the scalar weight path; B over 8:
     two row tiles, the last partial; OC and F not multiples of the column tile) and aligned ones
     (the 16-byte path; C over UNROLL * 256 = 1536: a second pass of weight loads):
       RMSNorm prologue + bf16 out + residual: max |emu - ref| / max(1, |ref|) <= 8e-3 (2 bf16 ulps)
       fp32 out (the LM head): max |emu - ref| <= 3e-3 (a normalized input rounding the other way)
       SwiGLU: <= 8e-3 relative, as the first
     fz_attend (B 2; GQA, MHA at a head size that is no power of two; QK-norm; 1, 2 and 3 chunks of 128 slots; a ring
     with global slots; a strided pattern): the token's rotated key and value in its slot
     (<= 2e-2), the output against softmax(q k / sqrt(hd)) v over the slots the pattern shows
     (ops.h's ops_pattern_visible on the position each slot holds) (<= 2e-2), the chunk counters
     back at 0, and a second run of the same step, its blocks in another order, equal bit for
     bit (the merge does not depend on which block finishes last).
   Ends with "N passed, N failed". */
#define _GNU_SOURCE /* sincosf */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"
#include "emu_cuda.h"
#include "emu_fused_kernels.inc"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double ur(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr(void) { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static bf16 *rb(size_t n, double sd, double mean) {
    bf16 *p = malloc(2 * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = f2bf((float)(mean + sd * nr()));
    return p;
}
static double bfr(double x) { return bf2f(f2bf((float)x)); } /* rounded to bf16 */
static int np_, nf_;
static void rep(int ok, const char *what, double e, double bound) {
    printf("%s %-64s %.3e (<= %.0e)\n", ok ? "PASS" : "FAIL", what, e, bound);
    ok ? np_++ : nf_++;
}

/* ---- fz_gemv */
typedef struct { void *out; bf16 *x, *w, *nw, *res; int B, C, OC, F, mode, vec; float eps; } GemvA;
static void gemv_body(void *p) {
    GemvA *a = p;
    fz_gemv(a->out, a->x, a->w, a->nw, a->res, a->B, a->C, a->OC, a->F, a->mode, a->vec, a->eps);
}
/* mode 0 (norm, res as given), 1 (fp32), 2 (SwiGLU, OC = 2F) */
static void t_gemv(int mode, int B, int C, int OC, int norm, int resid) {
    float eps = 1e-5f;
    int F = mode == 2 ? OC / 2 : 0;
    bf16 *x = rb((size_t)B * C, 1, 0), *w = rb((size_t)OC * C, 1 / sqrt(C), 0), *nw = norm ? rb(C, 0.2, 1) : NULL;
    bf16 *res = resid ? rb((size_t)B * OC, 1, 0) : NULL;
    int ocols = mode == 2 ? F : OC;
    void *out = calloc((size_t)B * ocols, 4);
    GemvA a = {out, x, w, nw, res, B, C, OC, F, mode, C % 8 == 0, eps};
    emu_grid(mode == 2 ? (F + 3) / 4 : (OC + 7) / 8, (B + 7) / 8, 256, gemv_body, &a);
    double worst = 0, *xn = malloc(sizeof(double) * C), *y = malloc(sizeof(double) * OC);
    for (int b = 0; b < B; b++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)bf2f(x[b * C + c]) * bf2f(x[b * C + c]);
        double r = 1 / sqrt(ss / C + eps);
        for (int c = 0; c < C; c++) xn[c] = norm ? bfr(bf2f(x[b * C + c]) * r * bf2f(nw[c])) : bf2f(x[b * C + c]);
        for (int o = 0; o < OC; o++) {
            double acc = 0;
            for (int c = 0; c < C; c++) acc += xn[c] * bf2f(w[(size_t)o * C + c]);
            y[o] = acc;
        }
        for (int o = 0; o < ocols; o++) {
            double ref, got;
            if (mode == 1) {
                ref = y[o];
                got = ((float *)out)[(size_t)b * OC + o];
            } else if (mode == 2) {
                double g = bfr(y[o]), u = bfr(y[F + o]);
                ref = g / (1 + exp(-g)) * u;
                got = bf2f(((bf16 *)out)[(size_t)b * F + o]);
            } else {
                ref = bfr(y[o]) + (res ? bf2f(res[(size_t)b * OC + o]) : 0);
                got = bf2f(((bf16 *)out)[(size_t)b * OC + o]);
            }
            double e = fabs(got - ref) / (mode == 1 ? 1 : fmax(1, fabs(ref)));
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    }
    char what[120];
    static const char *mn[] = {"bf16", "fp32 (LM head)", "SwiGLU"};
    snprintf(what, sizeof what, "fz_gemv %s B %d C %d OC %d%s%s", mn[mode], B, C, OC, norm ? " +norm" : "",
             resid ? " +res" : "");
    double bound = mode == 1 ? 3e-3 : 8e-3;
    rep(worst <= bound, what, worst, bound);
    free(x); free(w); free(nw); free(res); free(out); free(xn); free(y);
}

/* ---- fz_attend */
typedef struct {
    bf16 *qkv, *att, *cache; float *part; int *cnt; bf16 *qn, *kn; int *pos;
    int H, KV, hd, S, G, ring, W, glob, stride, dil, pb; float scale, theta, eps;
} AttA;
static void att_body(void *p) {
    AttA *a = p;
    fz_attend(a->qkv, a->att, a->cache, a->part, a->cnt, a->qn, a->kn, a->pos, a->H, a->KV, a->hd, a->S, a->G,
              a->ring, a->W, a->glob, a->stride, a->dil, a->pb, a->scale, a->theta, a->eps);
}
/* head x [hd] (bf16) -> QK-norm (nw, bf16-rounded as the kernel) and RoPE at p, in double */
static void ref_rot(double *y, const bf16 *x, const bf16 *nw, int hd, float eps, float theta, int p) {
    double ss = 0;
    for (int i = 0; i < hd; i++) ss += (double)bf2f(x[i]) * bf2f(x[i]);
    double r = 1 / sqrt(ss / hd + eps);
    ops_real t[256];
    for (int i = 0; i < hd; i++) t[i] = nw ? bfr(bf2f(x[i]) * r * bf2f(nw[i])) : bf2f(x[i]);
    attn_rope_at(t, 1, hd, hd, theta, p);
    for (int i = 0; i < hd; i++) y[i] = t[i];
}
static void t_attend(const char *label, int H, int KV, int hd, int G, int ring, OpsPattern pat, int qk, int p) {
    enum { B = 2, CH = 128 };
    int S = G + ring, NC = (S + CH - 1) / CH, kvd = KV * hd, row = (H + 2 * KV) * hd;
    float eps = 1e-6f, theta = 10000.f;
    bf16 *cache = rb((size_t)B * S * 2 * kvd, 1, 0), *qkv = rb((size_t)B * row, 1, 0);
    bf16 *qn = qk ? rb(hd, 0.2, 1) : NULL, *kn = qk ? rb(hd, 0.2, 1) : NULL;
    bf16 *att = calloc((size_t)B * H * hd, 2), *att2 = calloc((size_t)B * H * hd, 2);
    float *part = calloc((size_t)B * H * NC * (hd + 2), 4);
    int *cnt = calloc((size_t)B * KV, sizeof(int)), *held = malloc(sizeof(int) * S);
    for (int s = 0; s < S; s++) held[s] = -1;
    for (int t = 0; t < p; t++) held[t < G ? t : G + (t - G) % ring] = t; /* the positions appended before p */
    int sp = p < G ? p : G + (p - G) % ring;
    held[sp] = p;
    AttA a = {qkv, att, cache, part, cnt, qn, kn, &p, H, KV, hd, S, G, ring, pat.window, pat.global, pat.stride,
              pat.dilation, pat.block > 0 ? pat.block : 128, 1 / sqrtf((float)hd), theta, eps};
    emu_grid(B * KV, NC, CH, att_body, &a);
    double wk = 0, wo = 0;
    int cnt_zero = 1;
    for (int i = 0; i < B * KV; i++) cnt_zero &= cnt[i] == 0;
    for (int b = 0; b < B; b++) {
        const bf16 *r = qkv + (size_t)b * row;
        bf16 *slot = cache + ((size_t)b * S + sp) * 2 * kvd;
        for (int kh = 0; kh < KV; kh++) { /* the token's key and value in its slot */
            double k[256];
            ref_rot(k, r + (size_t)(H + kh) * hd, kn, hd, eps, theta, p);
            for (int i = 0; i < hd; i++) {
                wk = fmax(wk, fabs(bf2f(slot[kh * hd + i]) - k[i]));
                wk = fmax(wk, fabs(bf2f(slot[kvd + kh * hd + i]) - bf2f(r[(size_t)(H + KV + kh) * hd + i])));
            }
        }
        for (int h = 0; h < H; h++) {
            int kh = h / (H / KV);
            double q[256], *sc = malloc(sizeof(double) * S), mx = -INFINITY, sum = 0;
            ref_rot(q, r + (size_t)h * hd, qn, hd, eps, theta, p);
            for (int s = 0; s < S; s++) {
                sc[s] = -INFINITY;
                if (held[s] < 0 || !ops_pattern_visible(&pat, p, held[s])) continue;
                const bf16 *k = cache + ((size_t)b * S + s) * 2 * kvd + kh * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += q[i] * bf2f(k[i]);
                sc[s] = d / sqrt(hd);
                mx = fmax(mx, sc[s]);
            }
            for (int s = 0; s < S; s++) { sc[s] = sc[s] == -INFINITY ? 0 : exp(sc[s] - mx); sum += sc[s]; }
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int s = 0; s < S; s++)
                    if (sc[s] > 0) o += sc[s] / sum * bf2f(cache[((size_t)b * S + s) * 2 * kvd + kvd + kh * hd + i]);
                double e = fabs(bf2f(att[((size_t)b * H + h) * hd + i]) - o);
                wo = isnan(e) ? INFINITY : fmax(wo, e);
            }
            free(sc);
        }
    }
    a.att = att2; /* the same step again (the slot rewritten with the same values), the blocks in
                     another order: another block finishes last and merges */
    emu_block_shuffle = 0x9E3779B97F4A7C15ull + (unsigned)p;
    emu_grid(B * KV, NC, CH, att_body, &a);
    emu_block_shuffle = 0;
    char what[160];
    snprintf(what, sizeof what, "fz_attend %s p %d: key, value in slot %d", label, p, sp);
    rep(wk <= 2e-2, what, wk, 2e-2);
    snprintf(what, sizeof what, "fz_attend %s p %d: output (%d chunk%s)", label, p, (p < S ? p : S - 1) / CH + 1,
             (p < S ? p : S - 1) / CH ? "s" : "");
    rep(wo <= 2e-2, what, wo, 2e-2);
    snprintf(what, sizeof what, "fz_attend %s p %d: counters reset, rerun bitwise equal", label, p);
    int same = cnt_zero && !memcmp(att, att2, (size_t)B * H * hd * 2);
    rep(same, what, same ? 0 : 1, 0);
    free(cache); free(qkv); free(qn); free(kn); free(att); free(att2); free(part); free(cnt); free(held);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    t_gemv(0, 3, 40, 27, 1, 1);     /* odd C: scalar weights; partial column tile */
    t_gemv(0, 11, 64, 24, 1, 1);    /* two row tiles, the last of 3 rows; 16-byte loads */
    t_gemv(0, 1, 1544, 9, 0, 1);    /* C past 1536: a second pass of weight loads; no norm */
    t_gemv(0, 2, 16, 8, 0, 0);      /* plain */
    t_gemv(1, 9, 48, 21, 1, 0);     /* fp32 out with the final norm (the LM head) */
    t_gemv(2, 5, 56, 26, 1, 0);     /* SwiGLU, F 13: a partial tile of gate|up pairs */
    t_gemv(2, 10, 21, 8, 0, 0);     /* SwiGLU, odd C, two row tiles */
    OpsPattern causal = {0}, ring = {6, 2, 0, 0, 0}, strided = {4, 0, 8, 0, 2};
    t_attend("gqa H 4 KV 2 hd 8", 4, 2, 8, 0, 300, causal, 0, 5);
    t_attend("gqa H 4 KV 2 hd 8 qk-norm", 4, 2, 8, 0, 300, causal, 1, 260);
    t_attend("mha H 3 KV 3 hd 24", 3, 3, 24, 0, 140, causal, 0, 130);
    t_attend("gqa W 6 + 2 global (ring)", 4, 2, 8, 2, 6, ring, 1, 20);
    t_attend("gqa strided W 4 S 8 block 2", 4, 1, 8, 0, 200, strided, 0, 150);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
