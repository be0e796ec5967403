/* emu_hier.c - attn/hier.cu.h's CUDA kernels (the multi-scale room's coarse branch) run on the
   CPU emulation of tests/emu_cuda.h, against the joint softmax computed directly in double.

   The GPU path splits one softmax over (window keys + pooled blocks) in two: the flash kernels
   do the window (out, lse of its keys alone), hier_coarse_fwd merges the blocks into that row;
   the backward runs the flash backward with the MERGED out and lse (its P is then each window
   key's share of the joint softmax) and the coarse kernels add the blocks' part. Here the
   window's side is computed in double exactly as the flash kernels define it (out_w, lse_w, and
   for the backward dq, dk, dv of the window keys with P = exp(S - lse) and D = rowsum(dO out)
   from the merged values), rounded to bf16 / fp32 as the device holds them; the emulated
   kernels do the rest; the result is compared with the joint softmax's forward and gradients,
   computed over all keys at once. So this checks the kernels and the decomposition both.

   make tests/emu_hier && ./tests/emu_hier    (also in make emucheck)
   Checks, per shape (head dims 40, 72 and 256: a lane's first, third and eighth value; GQA and
   MHA; a block longer than the sequence, where nothing is pooled):
     hier_pool: block means of the bf16 k, v within a bf16 rounding (4e-3 relative)
     hier_coarse_fwd: out within 2e-2 of the joint softmax's (max |diff| / max |ref|), lse 1e-4
       (absolute: its exp is the row's sum), the reference's pooled keys rounded to bf16 as the
       device's are (every lane's values: a lane reading lse_w after lane 0 wrote the merged one
       shows here)
     the backward: dq, dk, dv within 2e-2 (max |diff| / max |ref|) of the joint gradients
   Ends with "N passed, N failed". */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"
#include "emu_cuda.h"
#include "emu_hier_kernels.inc"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static double ur(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr(void) { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static bf16 *rb(size_t n, double sd) {
    bf16 *p = malloc(2 * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = f2bf((float)(sd * nr()));
    return p;
}
static int np_, nf_;
static void rep(int ok, const char *what, double e, double bound) {
    printf("%s %-64s %.3e (<= %.0e)\n", ok ? "PASS" : "FAIL", what, e, bound);
    ok ? np_++ : nf_++;
}
/* max |a - b| / max |b| over n */
static double rel(const double *a, const double *b, size_t n) {
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) { m = fmax(m, fabs(a[i] - b[i])); s = fmax(s, fabs(b[i])); }
    return isfinite(m) ? m / (s > 0 ? s : 1) : INFINITY;
}

typedef struct {
    bf16 *q, *k, *v, *kc, *vc, *att, *datt, *dq, *dk, *dv;
    float *lse, *dkc, *dvc, *D;
    int B, T, H, KV, hd, W, P, nb;
    float scale;
    u64 rows;
} Ctx;
static void pool_body(void *p) { Ctx *c = p; hier_pool(c->kc, c->vc, c->k, c->v, c->T, c->KV * c->hd, c->P, c->nb); }
static void fwd_body(void *p) {
    Ctx *c = p;
    hier_coarse_fwd(c->att, c->lse, c->q, c->kc, c->vc, c->T, c->H, c->KV, c->hd, c->W, c->P, c->nb, c->scale, c->rows);
}
static void dq_body(void *p) {
    Ctx *c = p;
    hier_coarse_dq(c->dq, c->D, c->datt, c->att, c->lse, c->q, c->kc, c->vc, c->T, c->H, c->KV, c->hd, c->W, c->P,
                   c->nb, c->scale, c->rows);
}
static void dkv_body(void *p) {
    Ctx *c = p;
    hier_coarse_dkv(c->dkc, c->dvc, c->D, c->datt, c->lse, c->q, c->kc, c->vc, c->T, c->H, c->KV, c->hd, c->W, c->P,
                    c->nb, c->scale);
}
static void spread_body(void *p) {
    Ctx *c = p;
    hier_spread(c->dk, c->dv, c->dkc, c->dvc, c->T, c->KV * c->hd, c->P, c->nb, c->B);
}

static double bd(bf16 x) { return bf2f(x); }

static void t_case(int B, int T, int H, int KV, int hd, int W, int P) {
    const int G = H / KV, kvd = KV * hd, nb = T / P;
    const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * kvd, npool = (size_t)B * (nb ? nb : 1) * kvd;
    const double scale = 1 / sqrt((double)hd);
    char what[128];
    bf16 *q = rb(nq, 1), *k = rb(nk, 1), *v = rb(nk, 1), *datt = rb(nq, 1);
    /* the joint softmax in double: keys = pooled blocks j < nc(t) (means of the bf16 k, v) + window */
    double *kcd = calloc(npool, 8), *vcd = calloc(npool, 8);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nb; j++)
            for (int e = 0; e < kvd; e++) {
                double sk = 0, sv = 0;
                for (int s = j * P; s < (j + 1) * P; s++) {
                    sk += bd(k[((size_t)b * T + s) * kvd + e]);
                    sv += bd(v[((size_t)b * T + s) * kvd + e]);
                }
                kcd[((size_t)b * nb + j) * kvd + e] = sk / P;
                vcd[((size_t)b * nb + j) * kvd + e] = sv / P;
            }
    /* the pool is checked against the exact means; the softmax reference takes them rounded to
       bf16, as the device holds every activation (else lse differs by the rounding, ~1e-3) */
    double *kce = malloc(8 * npool), *vce = malloc(8 * npool);
    memcpy(kce, kcd, 8 * npool);
    memcpy(vce, vcd, 8 * npool);
    for (size_t i = 0; i < npool; i++) { kcd[i] = bf2f(f2bf((float)kcd[i])); vcd[i] = bf2f(f2bf((float)vcd[i])); }
    double *out = calloc(nq, 8), *lse = calloc((size_t)B * H * T, 8), *dq = calloc(nq, 8), *dk = calloc(nk, 8),
           *dv = calloc(nk, 8), *outw = calloc(nq, 8), *lsew = calloc((size_t)B * H * T, 8);
    double *dqw = calloc(nq, 8), *dkw = calloc(nk, 8), *dvw = calloc(nk, 8), *dkc = calloc(npool, 8), *dvc = calloc(npool, 8);
    int maxk = W + nb + 1;
    const double **ks = malloc(sizeof *ks * maxk), **vs = malloc(sizeof *vs * maxk);
    double *pj = malloc(8 * maxk), *kb = malloc(8 * (size_t)maxk * hd), *vb = malloc(8 * (size_t)maxk * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int kh = h / G, nc = t - W + 1 > 0 ? (t - W + 1) / P : 0, s0 = t - W + 1 > 0 ? t - W + 1 : 0, n = 0;
                size_t row = ((size_t)b * T + t) * H + h;
                for (int j = 0; j < nc; j++, n++) { /* coarse keys as doubles */
                    ks[n] = kcd + ((size_t)b * nb + j) * kvd + (size_t)kh * hd;
                    vs[n] = vcd + ((size_t)b * nb + j) * kvd + (size_t)kh * hd;
                }
                for (int s = s0; s <= t; s++, n++) { /* window keys, copied to doubles */
                    for (int i = 0; i < hd; i++) {
                        kb[(size_t)n * hd + i] = bd(k[((size_t)b * T + s) * kvd + (size_t)kh * hd + i]);
                        vb[(size_t)n * hd + i] = bd(v[((size_t)b * T + s) * kvd + (size_t)kh * hd + i]);
                    }
                    ks[n] = kb + (size_t)n * hd;
                    vs[n] = vb + (size_t)n * hd;
                }
                /* joint and window-only softmax */
                double mx = -INFINITY, mw = -INFINITY;
                for (int j = 0; j < n; j++) {
                    double a = 0;
                    for (int i = 0; i < hd; i++) a += bd(q[row * hd + i]) * ks[j][i];
                    pj[j] = a * scale;
                    mx = fmax(mx, pj[j]);
                    if (j >= nc) mw = fmax(mw, pj[j]);
                }
                double sum = 0, sw = 0;
                for (int j = 0; j < n; j++) { sum += exp(pj[j] - mx); if (j >= nc) sw += exp(pj[j] - mw); }
                double L = mx + log(sum), Lw = mw + log(sw);
                lse[((size_t)b * H + h) * T + t] = L;
                lsew[((size_t)b * H + h) * T + t] = Lw;
                for (int i = 0; i < hd; i++) {
                    double o = 0, ow = 0;
                    for (int j = 0; j < n; j++) {
                        o += exp(pj[j] - L) * vs[j][i];
                        if (j >= nc) ow += exp(pj[j] - Lw) * vs[j][i];
                    }
                    out[row * hd + i] = o;
                    outw[row * hd + i] = ow;
                }
                /* gradients: the joint softmax's (the reference), and the window keys' share as the
                   flash backward computes it from the merged out and lse (what the kernels get) */
                double Dr = 0;
                for (int i = 0; i < hd; i++) Dr += bd(datt[row * hd + i]) * out[row * hd + i];
                for (int j = 0; j < n; j++) {
                    double p = exp(pj[j] - L), dp = 0;
                    for (int i = 0; i < hd; i++) dp += bd(datt[row * hd + i]) * vs[j][i];
                    double ds = p * (dp - Dr) * scale;
                    int s = j - nc + s0;
                    for (int i = 0; i < hd; i++) {
                        double g = ds * ks[j][i];
                        dq[row * hd + i] += g;
                        if (j >= nc) dqw[row * hd + i] += g;
                        double gk = ds * bd(q[row * hd + i]), gv = p * bd(datt[row * hd + i]);
                        if (j < nc) {
                            size_t co = ((size_t)b * nb + j) * kvd + (size_t)kh * hd + i;
                            dkc[co] += gk;
                            dvc[co] += gv;
                        } else {
                            size_t ko = ((size_t)b * T + s) * kvd + (size_t)kh * hd + i;
                            dk[ko] += gk; dv[ko] += gv;
                            dkw[ko] += gk; dvw[ko] += gv;
                        }
                    }
                }
            }
    for (int b = 0; b < B; b++) /* the mean's backward into the reference */
        for (int j = 0; j < nb; j++)
            for (int s = j * P; s < (j + 1) * P; s++)
                for (int e = 0; e < kvd; e++) {
                    dk[((size_t)b * T + s) * kvd + e] += dkc[((size_t)b * nb + j) * kvd + e] / P;
                    dv[((size_t)b * T + s) * kvd + e] += dvc[((size_t)b * nb + j) * kvd + e] / P;
                }
    /* the device's state after the flash forward: bf16 out_w, fp32 lse_w */
    Ctx c = {q, k, v, calloc(npool, 2), calloc(npool, 2), malloc(2 * nq), datt, malloc(2 * nq), malloc(2 * nk),
             malloc(2 * nk), malloc(4 * (size_t)B * H * T), calloc(2 * npool, 4), calloc(2 * npool, 4),
             malloc(4 * (size_t)B * T * H), B, T, H, KV, hd, W, P, nb, (float)scale, (u64)B * T * H};
    for (size_t i = 0; i < nq; i++) c.att[i] = f2bf((float)outw[i]);
    for (size_t i = 0; i < (size_t)B * H * T; i++) c.lse[i] = (float)lsew[i];
    if (nb > 0) emu_grid(nb, B, 256, pool_body, &c);
    double *got = malloc(8 * (nq > 2 * npool ? nq : 2 * npool)), *want = malloc(8 * (nq > 2 * npool ? nq : 2 * npool));
    snprintf(what, sizeof what, "B %d T %d H %d KV %d hd %d W %d P %d", B, T, H, KV, hd, W, P);
    if (nb > 0) {
        for (size_t i = 0; i < npool; i++) {
            got[i] = bd(c.kc[i]); want[i] = kce[i];
            got[npool + i] = bd(c.vc[i]); want[npool + i] = vce[i];
        }
        char w2[160];
        snprintf(w2, sizeof w2, "hier_pool: %s", what);
        double e = rel(got, want, 2 * npool);
        rep(e <= 4e-3, w2, e, 4e-3);
    }
    emu_grid((unsigned)((c.rows + 3) / 4), 1, 128, fwd_body, &c);
    for (size_t i = 0; i < nq; i++) got[i] = bd(c.att[i]);
    char w2[160];
    snprintf(w2, sizeof w2, "forward out: %s", what);
    double e = rel(got, out, nq);
    rep(e <= 2e-2, w2, e, 2e-2);
    double el = 0;
    for (size_t i = 0; i < (size_t)B * H * T; i++) el = fmax(el, fabs(c.lse[i] - lse[i]));
    snprintf(w2, sizeof w2, "forward lse: %s", what);
    rep(el <= 1e-4, w2, el, 1e-4);
    /* the backward, from the window's share in bf16 (the flash backward's output) */
    for (size_t i = 0; i < nq; i++) c.dq[i] = f2bf((float)dqw[i]);
    for (size_t i = 0; i < nk; i++) { c.dk[i] = f2bf((float)dkw[i]); c.dv[i] = f2bf((float)dvw[i]); }
    emu_grid((unsigned)((c.rows + 3) / 4), 1, 128, dq_body, &c);
    if (nb > 0) {
        emu_grid3(nb, KV, B, 128, dkv_body, &c);
        size_t n = (size_t)B * nb * P * kvd;
        emu_grid((unsigned)((n + 255) / 256), 1, 256, spread_body, &c);
    }
    for (size_t i = 0; i < nq; i++) got[i] = bd(c.dq[i]);
    e = rel(got, dq, nq);
    snprintf(w2, sizeof w2, "backward dq: %s", what);
    rep(e <= 2e-2, w2, e, 2e-2);
    for (size_t i = 0; i < nk; i++) got[i] = bd(c.dk[i]);
    e = rel(got, dk, nk);
    snprintf(w2, sizeof w2, "backward dk: %s", what);
    rep(e <= 2e-2, w2, e, 2e-2);
    for (size_t i = 0; i < nk; i++) got[i] = bd(c.dv[i]);
    e = rel(got, dv, nk);
    snprintf(w2, sizeof w2, "backward dv: %s", what);
    rep(e <= 2e-2, w2, e, 2e-2);
    free(q); free(k); free(v); free(datt); free(kcd); free(vcd); free(kce); free(vce); free(out); free(lse); free(dq); free(dk); free(dv);
    free(outw); free(lsew); free(dqw); free(dkw); free(dvw); free(dkc); free(dvc); free(ks); free(vs); free(pj);
    free(kb); free(vb); free(got); free(want);
    free(c.kc); free(c.vc); free(c.att); free(c.dq); free(c.dk); free(c.dv); free(c.lse); free(c.dkc); free(c.dvc);
    free(c.D);
}

int main(void) {
    t_case(2, 37, 4, 2, 40, 6, 5);   /* GQA, 6 blocks, a tail of 2 positions past the last block */
    t_case(1, 29, 2, 2, 72, 4, 3);   /* MHA, hd 72 (lanes past the width hold nothing) */
    t_case(1, 20, 2, 1, 256, 5, 4);  /* hd 256: all eight values per lane */
    t_case(2, 12, 2, 1, 40, 3, 16);  /* a block longer than the sequence: the window alone */
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ ? 1 : 0;
}
