/* emu_decode.c - attn/decode.cu.h's CUDA kernels (the GPU decode of the MLA, MGA, GDN and DSA
   rooms) run on the CPU: an emulation of the CUDA execution model (one block at a time, its
   threads as fibers; __syncthreads and __syncwarp as barriers; shuffles and ballots through
   per-warp slots), so the kernels' indexing, barriers and arithmetic are checked on a machine
   without a GPU against host references written from the rooms' CPU decode (attn/mla.h,
   attn/mga.h, attn/gdn.h, attn/dsa.h), in double on the same bf16 inputs. It proves nothing about timing, and a race the barriers
   happen to order may still hide; tests/gpu_decode_rooms_check.c on the device is the real test.

   make emucheck   (builds build/emu_decode_kernels.inc with tests/emu_decode_dump.c, then this)
   Checks: dsa_iscore + dsa_select's list equals attn/dsa.h's sparse_topk_row_ exactly (k below,
   at and above the context; with exact ties in the scores, broken by lower position; indexer
   dims 8 to 128, several score blocks, k of 1 and n - 1); mla_append's rows and
   mla_attend's outputs over 14 positions (no window, and a window of 6 that wraps); mla_qkn's
   query, key and value (QK-norm's expanded form) in a ring that wraps and one that does not;
   mga_append
   and mga_attend over 12 positions (the running sum, a window of 5, GQA, the gate conv);
   gdn_conv and gdn_state over 7 steps (conv sizes 4, 2, 1); rope_rows with RMSNorm; dsa_attend
   over a position list (GQA); fill_rows (the prefill's cache writes) equal to put_rows step by step
   (a ring that wraps, one that does not) and to gdn_conv's tail (T below and above K - 1), bit for
   bit, and fp32 rows carried as 16-bit pairs; hier_pool's attention lists and block means over
   every step (a ring that wraps, one longer than the context, blocks of 1); sigmoid_mul (the
   MGA gate, a grid-stride loop over 3 blocks). Bounds: max |emulated - reference| <= 3e-2 (bf16 outputs of O(1)
   values; the attention outputs 2e-2). Ends with "N passed, N failed". */
#define _GNU_SOURCE /* sincosf */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"
#include "emu_cuda.h"
#include "emu_decode_kernels.inc"
static uint64_t rs = 88172645463325252ull;
static double ur(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr(void) { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static bf16 *rb(size_t n, double sd) { bf16 *p = malloc(2 * n); for (size_t i = 0; i < n; i++) p[i] = f2bf(sd * nr()); return p; }
static int np_, nf_;
static void rep(int ok, const char *what, double e) { printf("%s %-40s %.3e\n", ok ? "PASS" : "FAIL", what, e); ok ? np_++ : nf_++; }

/* ---- dsa_iscore + dsa_select */
typedef struct { int *list, *count; float *scores; bf16 *ikc, *iq, *iw; int *pos; int cap, HI, dI, topk; } SelA;
static void isc_body(void *p) { SelA *a = p; dsa_iscore(a->scores, a->ikc, a->iq, a->iw, a->pos, a->cap, a->HI, a->dI, a->topk); }
static void sel_body(void *p) { SelA *a = p; dsa_select(a->list, a->count, a->scores, a->pos, a->cap, a->topk); }
/* ties: every third row copies one of the first 9, so scores tie exactly (same row, same arithmetic) */
static void t_select(int cap, int HI, int dI, int pos, int topk, int ties) {
    int B = 2;
    SelA a = {malloc(4 * (size_t)B * cap), malloc(4 * B), malloc(4 * (size_t)B * cap), rb((size_t)B * cap * dI, 1),
              rb((size_t)B * HI * dI, 1), rb((size_t)B * HI, 1), &pos, cap, HI, dI, topk};
    if (ties) for (int b = 0; b < B; b++) for (int s = 3; s < cap; s += 3) memcpy(a.ikc + ((size_t)b * cap + s) * dI, a.ikc + ((size_t)b * cap + s % 9) * dI, 2 * (size_t)dI);
    emu_grid((cap + 255) / 256, B, 256, isc_body, &a);
    emu_grid(B, 1, 1024, sel_body, &a);
    int n = pos + 1, bad = 0;
    float *q = malloc(sizeof(float) * HI * dI), *w = malloc(sizeof(float) * HI), *ks = malloc(sizeof(float) * dI);
    float *row = malloc(sizeof(float) * n);
    int *idx = malloc(sizeof(int) * (topk > n ? topk : n));
    SparseScore_ *tmp = malloc(sizeof(SparseScore_) * n);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < HI * dI; i++) q[i] = bf2f(a.iq[b * HI * dI + i]);
        for (int i = 0; i < HI; i++) w[i] = bf2f(a.iw[b * HI + i]);
        for (int s = 0; s < n; s++) { for (int i = 0; i < dI; i++) ks[i] = bf2f(a.ikc[((size_t)b * cap + s) * dI + i]); row[s] = sparse_index_score_(q, ks, w, HI, dI); }
        sparse_topk_row_(idx, row, n, topk, tmp);
        int m = 0; for (int j = 0; j < topk; j++) if (idx[j] >= 0) { if (m >= a.count[b] || a.list[(size_t)b * cap + m] != idx[j]) bad++; m++; }
        if (m != a.count[b]) bad++;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "dsa_iscore+select HI %d dI %d n %d k %d ties %d", HI, dI, n, topk, ties);
    rep(!bad, msg, bad);
    free(a.list); free(a.count); free(a.scores); free(a.ikc); free(a.iq); free(a.iw);
    free(q); free(w); free(ks); free(row); free(idx); free(tmp);
}

/* ---- mla */
typedef struct { bf16 *cache, *kva, *gamma; int *pos; int S, r, rope; float eps, theta; } MlaApA;
static void mlaap_body(void *p) { MlaApA *a = p; mla_append(a->cache, a->kva, a->gamma, a->pos, a->S, a->r, a->rope, a->eps, a->theta); }
/* splits of CH = 4 rows (the GPU's are 64 or more), so that the merge of several is checked */
typedef struct { bf16 *ol; float *part, *p; bf16 *cache, *qf, *wkvb; int *pos; int S, window, r, rope, nope, v; float scale, theta; int CH, NS; } MlaAtA;
static void mlaat_body(void *p) { MlaAtA *a = p; mla_attend(a->part, a->p, a->cache, a->qf, a->wkvb, a->pos, a->S, a->window, a->r, a->rope, a->nope, a->v, a->scale, a->theta, a->CH); }
static void mlamg_body(void *p) { MlaAtA *a = p; mla_merge(a->ol, a->part, a->wkvb, a->pos, a->window, a->r, a->nope, a->v, a->CH, a->NS); }
static void t_mla(int window) {
    int B = 2, H = 2, r = 16, rope = 8, nope = 8, v = 12, cap = 20, S = window && window < cap ? window : cap, R = r + rope, kw = nope + v, qk = nope + rope, P = 14;
    bf16 *cache = calloc(2, (size_t)B * S * R), *gamma = rb(r, 0.3), *wkvb = rb((size_t)H * kw * r, 0.25);
    for (int i = 0; i < r; i++) gamma[i] = f2bf(1 + bf2f(gamma[i]));
    double *hc = calloc(sizeof(double), (size_t)B * cap * R); /* host: every position's row */
    double worst = 0, wc = 0;
    for (int pos = 0; pos < P; pos++) {
        bf16 *kva = rb((size_t)B * R, 1), *qf = rb((size_t)B * H * qk, 1), *ol = malloc(2 * B * H * v);
        MlaApA ap = {cache, kva, gamma, &pos, S, r, rope, 1e-6f, 10000.f};
        emu_grid(B, 1, 256, mlaap_body, &ap);
        for (int b = 0; b < B; b++) {
            double ss = 0, *row = hc + ((size_t)b * cap + pos) * R;
            for (int j = 0; j < r; j++) ss += (double)bf2f(kva[b * R + j]) * bf2f(kva[b * R + j]);
            double rsd = 1 / sqrt(ss / r + 1e-6);
            for (int j = 0; j < r; j++) row[j] = bf2f(kva[b * R + j]) * rsd * bf2f(gamma[j]);
            ops_real t[64]; for (int j = 0; j < rope; j++) t[j] = bf2f(kva[b * R + r + j]);
            attn_rope_at(t, 1, rope, rope, 10000.f, pos);
            for (int j = 0; j < rope; j++) row[r + j] = t[j];
            for (int j = 0; j < R; j++) { double e = fabs(bf2f(cache[((size_t)b * S + pos % S) * R + j]) - row[j]); if (e > wc) wc = e; }
        }
        int CH = 4, NS = (S + CH - 1) / CH;
        float *pp = malloc(4 * (size_t)B * H * S), *part = malloc(4 * (size_t)B * H * NS * (r + 2));
        MlaAtA at = {ol, part, pp, cache, qf, wkvb, &pos, S, window, r, rope, nope, v, 1 / sqrtf(qk), 10000.f, CH, NS};
        emu_grid3(H, B, NS, 256, mlaat_body, &at);
        emu_grid(H, B, 256, mlamg_body, &at);
        int s0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0, n = pos - s0 + 1;
        for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) {
            double qe[64] = {0}, sc[64], mx = -1e300, sum = 0, lo[64] = {0};
            const bf16 *q = qf + ((size_t)b * H + h) * qk;
            for (int j = 0; j < r; j++) for (int i = 0; i < nope; i++) qe[j] += bf2f(q[i]) * bf2f(wkvb[((size_t)h * kw + i) * r + j]);
            ops_real t[64]; for (int j = 0; j < rope; j++) t[j] = bf2f(q[nope + j]);
            attn_rope_at(t, 1, rope, rope, 10000.f, pos);
            for (int j = 0; j < rope; j++) qe[r + j] = t[j];
            for (int j = 0; j < n; j++) { double *row = hc + ((size_t)b * cap + s0 + j) * R, d = 0; for (int e = 0; e < R; e++) d += qe[e] * row[e]; sc[j] = d / sqrt(qk); if (sc[j] > mx) mx = sc[j]; }
            for (int j = 0; j < n; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
            for (int j = 0; j < n; j++) for (int e = 0; e < r; e++) lo[e] += sc[j] / sum * hc[((size_t)b * cap + s0 + j) * R + e];
            for (int e = 0; e < v; e++) {
                double o = 0; for (int j = 0; j < r; j++) o += lo[j] * bf2f(wkvb[((size_t)h * kw + nope + e) * r + j]);
                double err = fabs(bf2f(ol[((size_t)b * H + h) * v + e]) - o); if (err > worst) worst = err;
            }
        }
        free(kva); free(qf); free(ol); free(pp); free(part);
    }
    char w[80]; snprintf(w, sizeof w, "mla append (window %d)", window); rep(wc < 3e-2, w, wc);
    snprintf(w, sizeof w, "mla attend (window %d)", window); rep(worst < 3e-2, w, worst);
}

/* ---- mla_qkn (MLA with QK-norm: the expanded form in the dense cache). Every head's query and
   [k_nope | shared rotary key] rotated over the rotary columns at pos, then RMSNormed with its
   scale (attn_mla_decode_expanded's order), against double; the key and the value (padded with
   zeros to qk) in slot pos % S, every other slot untouched */
typedef struct { float *q; bf16 *cache, *qf, *kvb, *kva, *qw, *kw; int *pos; int S, qk, v, r, rope; float eps, theta; } QknA;
static void qkn_body(void *p) {
    QknA *a = p;
    mla_qkn(a->q, a->cache, a->qf, a->kvb, a->kva, a->qw, a->kw, a->pos, a->S, a->qk, a->v, a->r, a->rope, a->eps, a->theta);
}
static void t_mla_qkn(int S, int pos, int v) {
    int B = 2, H = 3, qk = 24, rope = 8, nope = qk - rope, r = 12, R = r + rope, kwid = nope + v;
    size_t kvd = (size_t)H * qk, cn = (size_t)B * S * 2 * kvd;
    bf16 *qf = rb((size_t)B * H * qk, 1), *kvb = rb((size_t)B * H * kwid, 1), *kva = rb((size_t)B * R, 1);
    bf16 *qw = rb(qk, 0.3), *kw = rb(qk, 0.3), *cache = rb(cn, 1), *before = malloc(2 * cn);
    for (int j = 0; j < qk; j++) { qw[j] = f2bf(1 + bf2f(qw[j])); kw[j] = f2bf(1 + bf2f(kw[j])); }
    memcpy(before, cache, 2 * cn);
    float *q = malloc(4 * (size_t)B * H * qk);
    QknA a = {q, cache, qf, kvb, kva, qw, kw, &pos, S, qk, v, r, rope, 1e-6f, 10000.f};
    emu_grid(H, B, 128, qkn_body, &a);
    double wq = 0, wk = 0;
    int vbad = 0, other = 0;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H; h++) {
            ops_real x[2][64];
            for (int j = 0; j < qk; j++) {
                x[0][j] = bf2f(qf[((size_t)b * H + h) * qk + j]);
                x[1][j] = bf2f(j < nope ? kvb[((size_t)b * H + h) * kwid + j] : kva[(size_t)b * R + r + j - nope]);
            }
            const bf16 *slot = cache + ((size_t)b * S + pos % S) * 2 * kvd + (size_t)h * qk;
            for (int t = 0; t < 2; t++) {
                attn_rope_at(x[t] + nope, 1, rope, rope, 10000.f, pos);
                double ss = 0;
                for (int j = 0; j < qk; j++) ss += (double)x[t][j] * x[t][j];
                double rsd = 1 / sqrt(ss / qk + 1e-6);
                for (int j = 0; j < qk; j++) {
                    double ref = x[t][j] * rsd * bf2f(t ? kw[j] : qw[j]);
                    double e = fabs((t ? bf2f(slot[j]) : q[((size_t)b * H + h) * qk + j]) - ref);
                    if (t && e > wk) wk = e;
                    if (!t && e > wq) wq = e;
                }
            }
            for (int j = 0; j < qk; j++) /* the value: kvb's bits, then zeros */
                vbad += slot[kvd + j] != (j < v ? kvb[((size_t)b * H + h) * kwid + nope + j] : f2bf(0.0f));
        }
        for (int s2 = 0; s2 < S; s2++)
            if (s2 != pos % S)
                other += memcmp(cache + ((size_t)b * S + s2) * 2 * kvd, before + ((size_t)b * S + s2) * 2 * kvd, 4 * kvd) != 0;
    }
    char w[96];
    snprintf(w, sizeof w, "mla_qkn q (fp32; S %d pos %d v %d)", S, pos, v);
    rep(wq < 1e-4, w, wq);
    snprintf(w, sizeof w, "mla_qkn k in slot pos %% S (S %d pos %d)", S, pos);
    rep(wk < 3e-2, w, wk);
    snprintf(w, sizeof w, "mla_qkn v bits, zero padding, other slots untouched (v %d)", v);
    rep(!vbad && !other, w, vbad + other);
    free(qf); free(kvb); free(kva); free(qw); free(kw); free(cache); free(before); free(q);
}

/* ---- mga */
typedef struct { void *cache; bf16 *u, *g, *v, *x, *wc; int *pos; int S, H, KV, hd, d, gate; } MgaApA;
static void mgaap_body(void *p) { MgaApA *a = p; mga_append(a->cache, a->u, a->g, a->v, a->x, a->wc, a->pos, a->S, a->H, a->KV, a->hd, a->d, a->gate); }
/* splits of CH = 3 rows, so that the sum of cosines and the merge span several */
typedef struct { bf16 *att; float *part, *psum, *p; void *cache; int *pos; int S, KV, hd, d, window; float eps; int CH, NS; } MgaAtA;
static void mgasc_body(void *p) { MgaAtA *a = p; mga_scores(a->psum, a->p, a->cache, a->pos, a->S, a->KV, a->hd, a->d, a->window, a->eps, a->CH); }
static void mgaat_body(void *p) { MgaAtA *a = p; mga_attend(a->part, a->psum, a->p, a->cache, a->pos, a->S, a->KV, a->hd, a->d, a->window, a->CH); }
static void mgamg_body(void *p) { MgaAtA *a = p; mga_merge(a->att, a->part, a->psum, a->cache, a->pos, a->S, a->KV, a->hd, a->d, a->window, a->CH, a->NS); }
static void t_mga(int window) {
    AttnConfig c = {0}; c.kind = ATTN_MGA; c.d_model = 16; c.n_heads = 4; c.head_dim = 8; c.n_kv_heads = 2; c.window = window; c.mga_gate = 1;
    char err[200]; if (attn_resolve(&c, err, sizeof err)) { puts(err); nf_++; return; }
    int B = 2, H = 4, KV = 2, hd = 8, d = 16, cap = 16, P = 12, S = window && window < cap ? window : cap, qd = H * hd, kvd = KV * hd;
    size_t sb = attn_mech(ATTN_MGA)->gpu_cache_bytes(&c, cap);
    void *cache = calloc(1, B * sb);
    bf16 *wc = rb(3 * d, 0.5);
    double *hg = calloc(8, (size_t)B * cap * qd), *hv = calloc(8, (size_t)B * cap * kvd), run[2][4] = {{0}}, tail[2][2][16] = {{{0}}};
    double worst = 0, wu = 0;
    for (int pos = 0; pos < P; pos++) {
        bf16 *g = rb((size_t)B * qd, 1), *v = rb((size_t)B * kvd, 1), *x = rb((size_t)B * d, 1), *u = malloc(2 * B * d), *att = malloc(2 * B * qd);
        float *pp = malloc(4 * (size_t)B * H * S);
        MgaApA ap = {cache, u, g, v, x, wc, &pos, S, H, KV, hd, d, 1};
        emu_grid(B, 1, 256, mgaap_body, &ap);
        int CH = 3, NS = (S + CH - 1) / CH;
        float *part = malloc(4 * (size_t)B * H * NS * (hd + 3));
        MgaAtA at = {att, part, part + (size_t)B * H * NS * (hd + 2), pp, cache, &pos, S, KV, hd, d, window, 1e-8f, CH, NS};
        emu_grid3(H, B, NS, 256, mgasc_body, &at);
        emu_grid3(H, B, NS, 256, mgaat_body, &at);
        emu_grid(H, B, 256, mgamg_body, &at);
        int s0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0, n = pos - s0 + 1;
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < qd; i++) hg[((size_t)b * cap + pos) * qd + i] = bf2f(g[b * qd + i]);
            for (int i = 0; i < kvd; i++) hv[((size_t)b * cap + pos) * kvd + i] = bf2f(v[b * kvd + i]);
            for (int h = 0; h < H; h++) {
                double *gi = hg + ((size_t)b * cap + pos) * qd + h * hd, ni = 0, cr[64], rowsum = 0, pr[64], mx = -1e300, sum = 0;
                for (int e = 0; e < hd; e++) ni += gi[e] * gi[e];
                ni = sqrt(ni);
                for (int j = 0; j < n; j++) {
                    double *gj = hg + ((size_t)b * cap + s0 + j) * qd + h * hd, nj = 0, dd = 0;
                    for (int e = 0; e < hd; e++) { nj += gj[e] * gj[e]; dd += gi[e] * gj[e]; }
                    cr[j] = dd / (ni * sqrt(nj) + 1e-8); rowsum += cr[j];
                }
                double den = 1 + rowsum / (2.0 * (pos + 1));
                run[b][h] += 1 / den;
                double f = 1 / (den * run[b][h]);
                for (int j = 0; j < n; j++) { pr[j] = f * (1 + cr[j]) / 2; if (pr[j] > mx) mx = pr[j]; }
                for (int j = 0; j < n; j++) { pr[j] = exp(pr[j] - mx); sum += pr[j]; }
                for (int e = 0; e < hd; e++) {
                    double o = 0; for (int j = 0; j < n; j++) o += pr[j] / sum * hv[((size_t)b * cap + s0 + j) * kvd + (h / (H / KV)) * hd + e];
                    double er = fabs(bf2f(att[b * qd + h * hd + e]) - o); if (er > worst) worst = er;
                }
            }
            for (int ch = 0; ch < d; ch++) {
                double xt = bf2f(x[b * d + ch]), acc = bf2f(wc[ch * 3]) * tail[b][0][ch] + bf2f(wc[ch * 3 + 1]) * tail[b][1][ch] + bf2f(wc[ch * 3 + 2]) * xt;
                double uu = acc / (1 + exp(-acc)), er = fabs(bf2f(u[b * d + ch]) - uu); if (er > wu) wu = er;
                tail[b][0][ch] = tail[b][1][ch]; tail[b][1][ch] = xt;
            }
        }
        free(g); free(v); free(x); free(u); free(att); free(pp); free(part);
    }
    char w[80]; snprintf(w, sizeof w, "mga attend (window %d)", window); rep(worst < 2e-2, w, worst);
    snprintf(w, sizeof w, "mga gate conv (window %d)", window); rep(wu < 2e-2, w, wu);
}

/* ---- gdn */
typedef struct { bf16 *qkv, *tails, *proj, *w; int B, P, C, K; } GcA;
static void gc_body(void *p) { GcA *a = p; gdn_conv(a->qkv, a->tails, a->proj, a->w, a->B, a->P, a->C, a->K); }
typedef struct { bf16 *o; float *state; bf16 *qkv; float *g, *beta; int D; float scale; } GsA;
static void gs_body(void *p) { GsA *a = p; gdn_state(a->o, a->state, a->qkv, a->g, a->beta, a->D, a->scale); }
static void t_gdn(int K) {
    int B = 2, H = 2, D = 32, HD = H * D, C = 3 * HD, P = C + 5, Tn = 7;
    bf16 *w = rb((size_t)C * K, 0.5), *tails = calloc(2, (size_t)B * (K > 1 ? K - 1 : 1) * C);
    float *state = calloc(4, (size_t)B * H * D * D);
    double *hin = calloc(8, (size_t)B * Tn * C), *hs = calloc(8, (size_t)B * H * D * D);
    double wcv = 0, wo = 0;
    for (int t = 0; t < Tn; t++) {
        bf16 *proj = rb((size_t)B * P, 1), *qkv = malloc(2 * (size_t)B * C), *o = malloc(2 * (size_t)B * HD);
        GcA ca = {qkv, tails, proj, w, B, P, C, K};
        emu_grid((B * C + 255) / 256, 1, 256, gc_body, &ca);
        for (int b = 0; b < B; b++) for (int c = 0; c < C; c++) {
            hin[((size_t)b * Tn + t) * C + c] = bf2f(proj[b * P + c]);
            double acc = 0; for (int i = 0; i < K; i++) { int s = t - K + 1 + i; if (s >= 0) acc += bf2f(w[c * K + i]) * hin[((size_t)b * Tn + s) * C + c]; }
            double y = acc / (1 + exp(-acc)), er = fabs(bf2f(qkv[b * C + c]) - y); if (er > wcv) wcv = er;
        }
        /* l2norm q, k heads on the bf16 conv outputs (the GPU's l2norm op), rounded to bf16 */
        for (int b = 0; b < B; b++) for (int h = 0; h < 2 * H; h++) {
            double ss = 0; for (int i = 0; i < D; i++) { double x = bf2f(qkv[b * C + h * D + i]); ss += x * x; }
            for (int i = 0; i < D; i++) qkv[b * C + h * D + i] = f2bf(bf2f(qkv[b * C + h * D + i]) / sqrt(ss + 1e-6));
        }
        float g[4], be[4]; for (int i = 0; i < B * H; i++) { g[i] = -0.3f * (float)ur(); be[i] = (float)ur(); }
        GsA sa = {o, state, qkv, g, be, D, 1 / sqrtf(D)};
        emu_grid(H, B, D, gs_body, &sa);
        for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) {
            double *S = hs + ((size_t)b * H + h) * D * D, a = exp(g[b * H + h]), bb = be[b * H + h], pred[64], q[64], k[64];
            for (int i = 0; i < D; i++) { q[i] = bf2f(qkv[b * C + h * D + i]); k[i] = bf2f(qkv[b * C + HD + h * D + i]); }
            for (int j = 0; j < D; j++) { double acc = 0; for (int i = 0; i < D; i++) acc += S[i * D + j] * k[i]; pred[j] = bb * (bf2f(qkv[b * C + 2 * HD + h * D + j]) - a * acc); }
            for (int i = 0; i < D; i++) for (int j = 0; j < D; j++) S[i * D + j] = a * S[i * D + j] + k[i] * pred[j];
            for (int j = 0; j < D; j++) { double acc = 0; for (int i = 0; i < D; i++) acc += S[i * D + j] * q[i]; double er = fabs(bf2f(o[b * HD + h * D + j]) - acc / sqrt(D)); if (er > wo) wo = er; }
        }
        free(proj); free(qkv); free(o);
    }
    char w2[80]; snprintf(w2, sizeof w2, "gdn conv K %d", K); rep(wcv < 2e-2, w2, wcv);
    snprintf(w2, sizeof w2, "gdn state K %d", K); rep(wo < 2e-2, w2, wo);
}

/* ---- rope_rows, put_rows, dsa_attend */
typedef struct { bf16 *x, *w; int *pos; int width, rd; float eps, theta; } RrA;
static void rr_body(void *p) { RrA *a = p; rope_rows(a->x, a->w, a->pos, a->width, a->rd, a->eps, a->theta); }
/* splits of CH = 2 list rows, so that the merge of several is checked */
typedef struct { bf16 *att; float *part, *p; bf16 *kvc, *q; int *list, *count; int KV, hd, cap, CH, NS; } DaA;
static void da_body(void *p) { DaA *a = p; dsa_attend(a->part, a->p, a->kvc, a->q, a->list, a->count, a->KV, a->hd, a->cap, a->CH); }
static void dm_body(void *p) { DaA *a = p; dsa_merge(a->att, a->part, a->count, a->hd, a->CH, a->NS); }
static void t_rows(void) {
    int rows = 3, W = 32, pos = 9; bf16 *x = rb(rows * W, 1), *x0 = malloc(2 * rows * W), *w = rb(W, 0.2);
    memcpy(x0, x, 2 * rows * W);
    RrA a = {x, w, &pos, W, W, 1e-6f, 10000.f}; emu_grid(rows, 1, 128, rr_body, &a);
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        ops_real t[32]; double ss = 0; for (int e = 0; e < W; e++) ss += (double)bf2f(x0[r * W + e]) * bf2f(x0[r * W + e]);
        for (int e = 0; e < W; e++) t[e] = bf2f(x0[r * W + e]) / sqrt(ss / W + 1e-6) * bf2f(w[e]);
        attn_rope_at(t, 1, W, W, 10000.f, pos);
        for (int e = 0; e < W; e++) { double er = fabs(bf2f(x[r * W + e]) - t[e]); if (er > worst) worst = er; }
    }
    rep(worst < 3e-2, "rope_rows with RMSNorm", worst);
    int B = 2, H = 4, KV = 2, hd = 8, cap = 10, kvd = KV * hd; int list[20] = {0, 2, 5, 7, 0, 0, 0, 0, 0, 0, 1, 3, 4, 0, 0, 0, 0, 0, 0, 0}, count[2] = {4, 3};
    bf16 *kvc = rb((size_t)B * cap * 2 * kvd, 1), *q = rb(B * H * hd, 1), *att = malloc(2 * B * H * hd); float *pp = malloc(4 * B * H * cap);
    int CH = 2, NS = (cap + CH - 1) / CH;
    float *part = malloc(4 * (size_t)B * H * NS * (hd + 2));
    DaA da = {att, part, pp, kvc, q, list, count, KV, hd, cap, CH, NS};
    emu_grid3(H, B, NS, 256, da_body, &da);
    emu_grid(H, B, 256, dm_body, &da);
    worst = 0;
    for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) {
        double sc[10], mx = -1e300, sum = 0; int g = h / (H / KV);
        for (int j = 0; j < count[b]; j++) { int s = list[b * cap + j]; double d = 0; for (int e = 0; e < hd; e++) d += bf2f(q[(b * H + h) * hd + e]) * bf2f(kvc[((size_t)b * cap + s) * 2 * kvd + g * hd + e]); sc[j] = d / sqrt(hd); if (sc[j] > mx) mx = sc[j]; }
        for (int j = 0; j < count[b]; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
        for (int e = 0; e < hd; e++) { double o = 0; for (int j = 0; j < count[b]; j++) o += sc[j] / sum * bf2f(kvc[((size_t)b * cap + list[b * cap + j]) * 2 * kvd + kvd + g * hd + e]); double er = fabs(bf2f(att[(b * H + h) * hd + e]) - o); if (er > worst) worst = er; }
    }
    rep(worst < 2e-2, "dsa_attend over a list (GQA)", worst);
}

/* ---- fill_rows (the rooms' GPU prefill): one launch over T positions leaves the cache as the
   decode kernels leave it after T steps, bit for bit: put_rows at pos 0..T-1 (a ring of S slots,
   column views on both sides) and gdn_conv's tail after T steps (the last K-1 rows, zero before
   position 0); an fp32 row travels as 16-bit pairs */
typedef struct { unsigned short *dst; const unsigned short *src; int T, S, width; u64 src_ld, seq, slot_ld; int ring; } FrA;
static void fr_body(void *p) { FrA *a = p; fill_rows(a->dst, a->src, a->T, a->S, a->width, a->src_ld, a->seq, a->slot_ld, a->ring); }
typedef struct { bf16 *cache, *src; int *pos; int width, S; u64 seq, slot, col; } PrA;
static void pr_body(void *p) { PrA *a = p; put_rows(a->cache, a->src, a->pos, a->width, a->S, a->seq, a->slot, a->col); }
static void t_fill_ring(int T, int S) {
    int B = 2, width = 6, src_ld = 9, col = 2, slot = 8;
    u64 seq = (u64)S * slot + 3;
    bf16 *src = rb((size_t)B * T * src_ld, 1), *a = calloc(2, B * seq), *f = calloc(2, B * seq), *row = malloc(2 * B * width);
    for (int t = 0; t < T; t++) { /* the decode steps: row t of each sequence, then put_rows at pos t */
        for (int b = 0; b < B; b++) memcpy(row + b * width, src + ((size_t)b * T + t) * src_ld + 1, 2 * width);
        PrA pa = {a, row, &t, width, S, seq, (u64)slot, (u64)col};
        emu_grid(B, 1, 128, pr_body, &pa);
    }
    FrA fa = {f + col, src + 1, T, S, width, (u64)src_ld, seq, (u64)slot, 1};
    emu_grid(T, B, 128, fr_body, &fa);
    int diff = 0;
    for (u64 i = 0; i < B * seq; i++) diff += a[i] != f[i];
    char w[80]; snprintf(w, sizeof w, "fill_rows ring == put_rows x %d (S %d)", T, S); rep(!diff, w, diff);
    free(src); free(a); free(f); free(row);
}
static void t_fill_tail(int T, int K) {
    int B = 2, C = 12, P = C + 3;
    bf16 *proj = rb((size_t)B * T * P, 1), *w = rb((size_t)C * K, 0.5), *tails = calloc(2, (size_t)B * (K - 1) * C);
    bf16 *f = calloc(2, (size_t)B * (K - 1) * C), *step = malloc(2 * (size_t)B * P), *qkv = malloc(2 * (size_t)B * C);
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) memcpy(step + (size_t)b * P, proj + ((size_t)b * T + t) * P, 2 * P);
        GcA ca = {qkv, tails, step, w, B, P, C, K};
        emu_grid((B * C + 255) / 256, 1, 256, gc_body, &ca);
    }
    FrA fa = {f, proj, T, K - 1, C, (u64)P, (u64)(K - 1) * C, (u64)C, 0};
    emu_grid(T, B, 128, fr_body, &fa);
    int diff = 0;
    for (size_t i = 0; i < (size_t)B * (K - 1) * C; i++) diff += tails[i] != f[i];
    char nm[80]; snprintf(nm, sizeof nm, "fill_rows tail == gdn_conv x %d (K %d)", T, K); rep(!diff, nm, diff);
    free(proj); free(w); free(tails); free(f); free(step); free(qkv);
}
static void t_fill_f32(void) { /* MGA's running sum: the last row of [B][T][H] fp32 into [B][seq] */
    int B = 2, T = 5, H = 3;
    u64 seq = 10; /* in 16-bit units */
    float src[2 * 5 * 3], dst[2 * 5] = {0};
    for (int i = 0; i < B * T * H; i++) src[i] = (float)nr();
    FrA fa = {(unsigned short *)dst, (const unsigned short *)src, T, 1, 2 * H, 2 * (u64)H, seq, 0, 0};
    emu_grid(T, B, 128, fr_body, &fa);
    int diff = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) diff += memcmp(&dst[b * 5 + h], &src[(b * T + T - 1) * H + h], 4) != 0;
    rep(!diff, "fill_rows fp32 pairs: the last row", diff);
}

/* ---- hier_pool (hier's decode): T steps of a token's k, v into ring slot pos % W, then
   hier_pool: every step's list is the complete blocks before the window (rows W + j) then the
   window's slots, in order; every finished block's row is the mean of its P tokens' rows (within
   a bf16 rounding of the mean in double) */
typedef struct { bf16 *cache; float *run; int *list, *count, *pos; int rows, ring, kvd, W, P; } HpA;
static void hp_body(void *p) {
    HpA *a = p;
    hier_pool(a->cache, a->run, a->list, a->count, a->pos, a->rows, a->ring, a->kvd, a->W, a->P);
}
static void t_hier(int T, int W, int P) {
    int B = 2, kvd = 12, ring = W < T ? W : T, rows = ring + T / P;
    bf16 *tok = rb((size_t)B * T * 2 * kvd, 1), *cache = calloc(2, (size_t)B * rows * 2 * kvd);
    float *run = calloc(4, (size_t)B * 2 * kvd);
    int *list = calloc(sizeof(int), (size_t)B * rows), count[2], lists_ok = 1;
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            memcpy(cache + ((size_t)b * rows + t % ring) * 2 * kvd, tok + ((size_t)b * T + t) * 2 * kvd, 4 * kvd);
        HpA a = {cache, run, list, count, &t, rows, ring, kvd, W, P};
        emu_grid(B, 1, 256, hp_body, &a);
        int nc = t - W + 1 > 0 ? (t - W + 1) / P : 0, first = t - W + 1 > 0 ? t - W + 1 : 0;
        for (int b = 0; b < B; b++) {
            lists_ok &= count[b] == nc + t - first + 1;
            for (int j = 0; j < nc; j++) lists_ok &= list[b * rows + j] == ring + j;
            for (int s = first; s <= t; s++) lists_ok &= list[b * rows + nc + s - first] == s % ring;
        }
    }
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < T / P; j++)
            for (int e = 0; e < 2 * kvd; e++) {
                double m = 0;
                for (int s = j * P; s < (j + 1) * P; s++) m += bf2f(tok[((size_t)b * T + s) * 2 * kvd + e]);
                m /= P;
                worst = fmax(worst, fabs(bf2f(cache[((size_t)b * rows + ring + j) * 2 * kvd + e]) - m) / fmax(1, fabs(m)));
            }
    char w[96];
    snprintf(w, sizeof w, "hier_pool lists, T %d W %d P %d", T, W, P);
    rep(lists_ok, w, !lists_ok);
    snprintf(w, sizeof w, "hier_pool block means, T %d W %d P %d", T, W, P);
    rep(worst <= 4e-3, w, worst);
    free(tok); free(cache); free(run); free(list);
}

/* a *= sigmoid(z) in place, each product rounded to bf16 once */
typedef struct { bf16 *a; const bf16 *z; int n; } SmA;
static void sm_body(void *p) { SmA *a = p; sigmoid_mul(a->a, a->z, a->n); }
static void t_sigmoid_mul(int n) {
    bf16 *a = rb((size_t)n, 1), *z = rb((size_t)n, 2), *a0 = malloc(2 * (size_t)n);
    memcpy(a0, a, 2 * (size_t)n);
    SmA x = {a, z, n};
    emu_grid(3, 1, 256, sm_body, &x);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double want = bf2f(a0[i]) / (1 + exp(-(double)bf2f(z[i])));
        worst = fmax(worst, fabs(bf2f(a[i]) - want));
    }
    rep(worst <= 3e-2, "sigmoid_mul (n 2000, 3 blocks)", worst);
    free(a); free(z); free(a0);
}

int main(void) {
    t_select(80, 2, 8, 40, 10, 1); t_select(80, 2, 8, 79, 33, 1); t_select(80, 2, 8, 5, 10, 0);
    t_select(80, 2, 8, 9, 10, 1);
    /* several score blocks, warps' ranges of 64 rows, L = 8 and 16 lanes a key, k at 1 and n - 1 */
    t_select(1500, 4, 64, 1400, 300, 1); t_select(700, 3, 128, 650, 1, 0); t_select(700, 1, 16, 699, 699, 1);
    t_mla(0); t_mla(6);
    t_mla_qkn(5, 7, 16); t_mla_qkn(10, 3, 24);
    t_mga(0); t_mga(5);
    t_gdn(4); t_gdn(2); t_gdn(1);
    t_rows();
    t_fill_ring(13, 5); t_fill_ring(7, 10); t_fill_ring(5, 5);
    t_fill_tail(6, 4); t_fill_tail(2, 4); t_fill_tail(1, 2);
    t_fill_f32();
    t_hier(23, 4, 3); t_hier(10, 16, 4); t_hier(12, 5, 1);
    t_sigmoid_mul(2000);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
