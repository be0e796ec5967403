/* tests/test_decode.c - generation (attn.h's attn_decode_*, smollm.h's SmolGen) on the CPU, in
   double precision (built with -DABLATE_REAL=double -DABLATE_NO_CUDA; make test runs it).

   Checks, for every mechanism, option that changes the cache (windows past their wrap-around,
   patterns, QK-norm, MLA's query latent, MGA's gate, DSA's top-k smaller than the context), a
   mixed schedule and the three norm strategies, with random weights and tokens:
     prefill k tokens (in two chunks when k >= 4), then decode one token at a time: the logits at every position equal the
       full forward's (smollm_forward over the whole sequence) to 1e-9 relative (max |diff| /
       max |logit|), for 2 sequences at once
     the cache's real size: bounded by the window (swa, mla, mga) and by what a pattern can still
       see (local+global G + W, dilated W*R), constant in T (gdn), linear otherwise, and what attn_decode_cache_bytes says is what is allocated
     the GPU decode caches' sizes (the rooms' gpu_cache_bytes, gpu_scratch_bytes; plain C): rings
       under windows (mla, mga), constant in T (gdn), linear in T (dsa), ring + blocks (hier)
     hier's cache: the window's ring, one pooled row per complete block and the running block sum
     MLA with QK-norm: no absorbed form, so its CPU cache holds every head's normed key and value
       (the expanded form), and the GPU's every head's normed key and its value padded to head_dim
       (the dense room's layout)
     refusals: mga_faithful (reads the future), a step past the cache's capacity; smollm_gen_init: 0 sequences, a capacity past SMOLLM_MAX_SEQ, a layer that
       cannot decode (named by its index)
     the GPU forward prefills' fill map (mla, mla with qk_norm, mga, gdn, dsa; tuning.dec_prefill): every cache entry
       the decode steps appended after a prompt equals the forward activation the GPU prefill
       copies there (rings past their wrap, GDN's final state through AttnGdnActs.state, conv
       tails of prompts shorter than K-1), and the forward's output the decode's, to 1e-9
       (MGA's decomposed form 1e-6)
   the GPU decode interface's host side (which rooms have GPU slots, refused by name otherwise; the
   device caches' bf16 bytes; init without a GPU and GPU generation of a CPU model refused)
   and the sampler (smollm_sample): greedy = the first largest logit; top_k 1 and a tiny top_p
   are greedy; the same seed draws the same tokens; temperature 1 draws in proportion to the
   softmax (within 4 standard deviations over 20000 draws); top_k 2 never draws the third.
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define OPS_IMPLEMENTATION
#define ATTN_IMPLEMENTATION
#define SMOLLM_IMPLEMENTATION
#include "../smollm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h" /* report, random inputs */

/* the full forward's logits [B*T, V] (the tied LM head on m->xf) */
static ops_real *full_logits(SmolModel *m, const int *tok) {
    int N = m->B * m->T, d = m->cfg.d_model, V = m->cfg.vocab_size;
    if (smollm_forward(m, tok)) return NULL;
    ops_real *lg = zeros((size_t)N * V);
    op_matmul_forward(NULL, lg, m->xf, m->params + m->wte, N, d, V);
    return lg;
}

/* one model: base attention config + schedule + norm, prefill k then decode to T */
static void check_model(const char *name, AttnKind kind, const char *sched, SmolNormKind norm, int k,
                        void (*opts)(AttnConfig *)) {
    enum { B = 2, T = 13 };
    SmolConfig cfg = {0};
    cfg.vocab_size = 37; cfg.d_model = 24; cfg.n_layers = sched ? 6 : 2; cfg.n_heads = 4; cfg.ffn_dim = 32;
    cfg.norm = norm;
    cfg.seed = 7;
    cfg.attn.kind = kind;
    if (opts) opts(&cfg.attn);
    if (sched) snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "%s", sched);
    SmolModel m;
    char err[512], d[256];
    if (smollm_init(&m, &cfg, NULL, B, T, err, sizeof err)) { report(0, name, err); return; }
    /* random weights, norm scales away from 1 too: every tensor matters */
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.3 * nrand();
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (int)(urand() * cfg.vocab_size) % cfg.vocab_size;
    ops_real *ref = full_logits(&m, tok);
    SmolGen g;
    int V = cfg.vocab_size, ok = ref != NULL;
    double worst = 0, scale = 0;
    if (ok && smollm_gen_init(&g, &m, B, T, err, sizeof err)) { report(0, name, err); ok = 0; free(ref); smollm_free(&m); return; }
    /* a prompt of 4 or more tokens comes in two chunks (the second after the cache holds some) */
    int pre[B * T], k1 = k >= 4 ? k / 2 : k;
    for (int b = 0; b < B; b++) memcpy(pre + b * k1, tok + b * T, sizeof(int) * k1);
    if (k1 < k) {
        ok = ok && !smollm_prefill(&g, &m, pre, k1, err, sizeof err);
        for (int b = 0; ok && b < B; b++)
            for (int v = 0; v < V; v++) {
                double r = ref[((size_t)b * T + k1 - 1) * V + v], e = fabs(g.logits[(size_t)b * V + v] - r);
                if (e > worst) worst = e;
            }
        for (int b = 0; b < B; b++) memcpy(pre + b * (k - k1), tok + b * T + k1, sizeof(int) * (k - k1));
    }
    for (int t = k - 1; ok && t < T; t++) {
        if (t == k - 1) ok = !smollm_prefill(&g, &m, pre, k1 == k ? k : k - k1, err, sizeof err);
        else {
            int col[B];
            for (int b = 0; b < B; b++) col[b] = tok[b * T + t];
            ok = !smollm_decode_step(&g, &m, col, err, sizeof err);
        }
        for (int b = 0; ok && b < B; b++)
            for (int v = 0; v < V; v++) {
                double r = ref[((size_t)b * T + t) * V + v], e = fabs(g.logits[(size_t)b * V + v] - r);
                if (e > worst) worst = e;
                if (fabs(r) > scale) scale = fabs(r);
            }
    }
    if (!ok) report(0, name, err);
    else {
        snprintf(d, sizeof d, "rel %.1e, cache %zu bytes", worst / scale, g.cache_bytes);
        report(worst <= 1e-9 * scale && scale > 1e-3, name, d);
    }
    if (ref) smollm_gen_free(&g);
    free(ref);
    smollm_free(&m);
}

static void o_swa3(AttnConfig *c) { c->window = 3; }
static void o_swa3_qk(AttnConfig *c) { c->window = 3; c->qk_norm = 1; c->n_kv_heads = 2; }
static void o_global(AttnConfig *c) { c->window = 2; c->global_tokens = 2; }
static void o_global_dil(AttnConfig *c) { c->window = 2; c->global_tokens = 1; c->dilation = 3; c->pattern_block = 1; }
static void o_stride(AttnConfig *c) { c->window = 2; c->stride = 4; c->pattern_block = 2; }
static void o_dilation(AttnConfig *c) { c->window = 2; c->dilation = 2; c->pattern_block = 2; }
static void o_mla_q(AttnConfig *c) { c->q_latent_dim = 8; c->window = 4; c->v_head_dim = 4; }
static void o_mla_qk(AttnConfig *c) { c->qk_norm = 1; c->window = 4; }
static void o_mla_qk_full(AttnConfig *c) { c->qk_norm = 1; c->q_latent_dim = 8; }
static void o_mla_qk_v4(AttnConfig *c) { c->qk_norm = 1; c->q_latent_dim = 8; c->v_head_dim = 4; }
static void o_mga_gate(AttnConfig *c) { c->mga_gate = 1; c->window = 4; c->n_kv_heads = 2; }
static void o_dsa(AttnConfig *c) { c->topk = 4; c->indexer_heads = 2; c->indexer_dim = 4; }
/* adaptive k (topk_schedule 5): each row's k from its indexer entropy, at most 6 */
static void o_dsa_adapt(AttnConfig *c) {
    c->topk = 6; c->indexer_heads = 2; c->indexer_dim = 4; c->topk_schedule = 5; c->topk_min = 1; c->topk_adapt_pct = 40;
}
static void o_gdn(AttnConfig *c) { c->conv_size = 3; }
static void o_hier(AttnConfig *c) { c->window = 3; c->hier_block = 2; }
static void o_hier_qk(AttnConfig *c) { c->window = 2; c->hier_block = 3; c->n_kv_heads = 2; c->qk_norm = 1; }
static void o_mga_gate1(AttnConfig *c) { c->mga_gate = 1; }

/* the GPU decode caches' sizes (the rooms' gpu_cache_bytes / gpu_scratch_bytes: plain C, so
   checked here without a GPU): bf16 rows, fp32 state; a ring under a window; GDN constant in T */
static void check_gpu_cache_sizes(void) {
    char err[256];
    AttnConfig m = {0}, mw, g = {0}, a = {0}, aw, s = {0};
    m.kind = ATTN_MLA; m.d_model = 24; m.n_heads = 4;
    attn_resolve(&m, err, sizeof err);
    mw = m; mw.window = 8;
    const AttnMech *mm = attn_mech(ATTN_MLA);
    size_t mrow = 2 * (size_t)(m.latent_dim + m.rope_dim);
    report(mm->gpu_cache_bytes(&m, 10) == 10 * mrow && mm->gpu_cache_bytes(&mw, 1000) == 8 * mrow &&
           mm->gpu_cache_bytes(&mw, 5) == 5 * mrow && mm->gpu_scratch_bytes(&mw, 2, 1000) == mm->gpu_scratch_bytes(&mw, 2, 8),
           "mla GPU cache: bf16 latent + rotary key per token, a ring of W under a window", NULL);
    /* with qk_norm (head_dim 64, v 48): every head's normed key and its value padded to 64 per
       position (the dense room's layout), a ring of W; the scratch, like the others', bounded by W */
    AttnConfig mq = {0}, mqw;
    mq.kind = ATTN_MLA; mq.d_model = 128; mq.n_heads = 2; mq.qk_norm = 1; mq.v_head_dim = 48;
    int rq = attn_resolve(&mq, err, sizeof err);
    mqw = mq; mqw.window = 16;
    report(rq == 0 && mm->gpu_cache_bytes(&mq, 40) == (size_t)40 * 2 * 2 * 64 * 2 &&
               mm->gpu_cache_bytes(&mqw, 40) == (size_t)16 * 2 * 2 * 64 * 2 &&
               mm->gpu_scratch_bytes(&mqw, 2, 1000) == mm->gpu_scratch_bytes(&mqw, 2, 16) &&
               mm->gpu_scratch_bytes(&mq, 2, 1000) > mm->gpu_scratch_bytes(&mq, 2, 16),
           "mla qk_norm GPU cache: every head's normed k and padded v per token (bf16), a ring of W", rq ? err : NULL);
    AttnConfig hg = {0}; /* hier: ring rows + one row per block, bf16 [k | v]; fp32 running sums */
    hg.kind = ATTN_HIER; hg.d_model = 24; hg.n_heads = 4; hg.window = 3; hg.hier_block = 4;
    attn_resolve(&hg, err, sizeof err);
    size_t hkv = (size_t)hg.n_kv_heads * hg.head_dim;
    const AttnMech *hm = attn_mech(ATTN_HIER);
    snprintf(err, sizeof err, "%zu and %zu bytes at T 8 and 40", hm->gpu_cache_bytes(&hg, 8), hm->gpu_cache_bytes(&hg, 40));
    report(hm->gpu_cache_bytes(&hg, 8) == (3 + 2) * 2 * hkv * 2 + 2 * hkv * 4 &&
               hm->gpu_cache_bytes(&hg, 40) == (3 + 10) * 2 * hkv * 2 + 2 * hkv * 4,
           "hier GPU cache: the window's ring, a row per block (bf16), the running sums (fp32)", err);
    g.kind = ATTN_GDN; g.d_model = 24; g.n_heads = 4; g.conv_size = 3;
    attn_resolve(&g, err, sizeof err);
    const AttnMech *gm = attn_mech(ATTN_GDN);
    size_t HD = (size_t)g.n_heads * g.head_dim;
    report(gm->gpu_cache_bytes(&g, 5) == gm->gpu_cache_bytes(&g, 50000) &&
           gm->gpu_cache_bytes(&g, 5) == HD * g.head_dim * 4 + 2 * 3 * HD * 2 &&
           gm->gpu_scratch_bytes(&g, 2, 5) == gm->gpu_scratch_bytes(&g, 2, 50000),
           "gdn GPU cache: fp32 state + bf16 conv tail, constant in T (scratch too)", NULL);
    a.kind = ATTN_MGA; a.d_model = 24; a.n_heads = 4;
    attn_resolve(&a, err, sizeof err);
    aw = a; aw.window = 8;
    const AttnMech *am = attn_mech(ATTN_MGA);
    report(am->gpu_cache_bytes(&aw, 1000) == am->gpu_cache_bytes(&aw, 8) &&
           am->gpu_cache_bytes(&a, 1000) > am->gpu_cache_bytes(&a, 8) && am->gpu_cache_bytes(&a, 7) % 16 == 0 &&
           am->gpu_cache_bytes(&a, 1000) - am->gpu_cache_bytes(&a, 8) >= 992 * (size_t)(a.n_heads * 4 + 2 * (a.n_heads + a.n_kv_heads) * a.head_dim) - 16 &&
           am->gpu_scratch_bytes(&aw, 2, 1000) == am->gpu_scratch_bytes(&aw, 2, 8),
           "mga GPU cache: per-position g, |g|, v (a ring under a window), 16-byte aligned", NULL);
    s.kind = ATTN_DSA; s.d_model = 24; s.n_heads = 4; s.topk = 4;
    attn_resolve(&s, err, sizeof err);
    const AttnMech *sm = attn_mech(ATTN_DSA);
    report(sm->gpu_cache_bytes(&s, 100) == 100 * (size_t)(2 * s.n_kv_heads * s.head_dim + s.indexer_dim) * 2,
           "dsa GPU cache: bf16 K, V and indexer key of every position", NULL);
}

/* ---- the GPU forward prefills' fill map (attn/mla.h, mga.h, gdn.h, dsa.h: attn_*_gpu_prefill), on
   the CPU: after a prompt of T tokens, every cache entry the decode steps appended equals the
   training forward's activation the GPU prefill copies into it (the same indices: the last S
   positions of a ring at t % S, MLA's latent and head 0's rotary key columns, MGA's |g| and prefix
   sum at the last position, GDN's final state handed out by the chunked forward (AttnGdnActs.state)
   and the projection's last K-1 rows, DSA's K, V and indexer keys); the CPU cache's layout stands
   for the GPU's. MGA's forward is the decomposed one the GPU runs, which drops the literal form's
   1e-8 (a relative change below 1e-8): its bound is 1e-6, the others' 1e-9. */
static double fill_err(double worst, double got, double want) {
    double e = fabs(got - want) / (fabs(want) > 1 ? fabs(want) : 1);
    return e > worst ? e : worst;
}

static void check_fill_map(const char *name, AttnKind kind, void (*opts)(AttnConfig *), int T, int cap) {
    enum { B = 2 };
    char err[256], d[160];
    AttnConfig c = {0};
    c.kind = kind; c.d_model = 24; c.n_heads = 4;
    if (opts) opts(&c);
    if (attn_resolve(&c, err, sizeof err)) { report(0, name, err); return; }
    int dm = c.d_model, H = c.n_heads, hd = c.head_dim;
    size_t np = attn_param_count(&c), N = (size_t)B * T, ae, se;
    ops_real *w = rnd(np, 0.3), *x = rnd(N * dm, 1), *out = zeros(N * dm), *ref = zeros(N * dm);
    attn_param_init_special(&c, w, 5);
    AttnCache kc;
    if (attn_decode_init(&kc, &c, B, cap, err, sizeof err) || attn_decode_prefill(&kc, w, x, ref, T, err, sizeof err)) {
        report(0, name, err);
        free(w); free(x); free(out); free(ref);
        return;
    }
    AttnConfig cf = c;
    cf.mga_decomposed = 1; /* the GPU's MGA forward */
    attn_act_sizes(&cf, B, T, &ae, &se);
    ops_real *am = zeros(ae), *sm = zeros(se), *st = NULL;
    AttnActs a;
    attn_acts_bind(&cf, &a, NULL, am, sm, B, T);
    if (kind == ATTN_GDN) a.gdn.state = st = zeros((size_t)B * H * hd * hd);
    int rc = attn_forward(NULL, &cf, w, &a, x, out, B, T);
    double worst = 0, tol = kind == ATTN_MGA ? 1e-6 : 1e-9;
    const ops_real *mem = kc.mem;
    for (size_t i = 0; i < N * dm; i++) worst = fill_err(worst, out[i], ref[i]); /* the prefill's output */
    for (int b = 0; b < B && !rc; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            if (kind == ATTN_MLA && c.qk_norm) { /* the expanded cache: H keys then H values a position; the
                                                    GPU's prefill copies a.k and a.v (v zero-padded to qk) */
                int S = attn_dec_slots(c.window, cap), v = c.v_head_dim;
                if (t < T - S) continue;
                const ops_real *row = mem + ((size_t)b * S + t % S) * H * (hd + v);
                const ops_real *ak = (const ops_real *)a.k + n * H * hd, *av = (const ops_real *)a.v + n * H * hd;
                for (int h = 0; h < H; h++)
                    for (int j = 0; j < hd; j++) {
                        worst = fill_err(worst, row[h * hd + j], ak[h * hd + j]);
                        worst = fill_err(worst, j < v ? row[H * hd + h * v + j] : 0, av[h * hd + j]);
                    }
            } else if (kind == ATTN_MLA) {
                int r = c.latent_dim, rope = c.rope_dim, R = r + rope, S = attn_dec_slots(c.window, cap);
                int nope = hd - rope, P = hd > c.v_head_dim ? hd : c.v_head_dim;
                if (t < T - S) continue;
                const ops_real *row = mem + ((size_t)b * S + t % S) * R;
                for (int j = 0; j < r; j++) worst = fill_err(worst, row[j], ((ops_real *)a.lat_kvn)[n * r + j]);
                for (int j = 0; j < rope; j++) worst = fill_err(worst, row[r + j], ((ops_real *)a.k)[n * H * P + nope + j]);
            } else if (kind == ATTN_MGA) {
                int S = attn_dec_slots(c.window, cap), qd = H * hd, kvd = c.n_kv_heads * hd;
                size_t R = (size_t)qd + H + kvd, seq = (size_t)S * R + H + 2 * (size_t)dm;
                const ops_real *base = mem + b * seq, *run = base + (size_t)S * R, *tail = run + H;
                if (t == T - 1)
                    for (int h = 0; h < H; h++) worst = fill_err(worst, run[h], a.mga_S[n * H + h]);
                if (c.mga_gate && t >= T - 2)
                    for (int e = 0; e < dm; e++) worst = fill_err(worst, tail[(t - (T - 2)) * dm + e], x[n * dm + e]);
                if (t < T - S) continue;
                const ops_real *slot = base + (size_t)(t % S) * R;
                for (int h = 0; h < H; h++) worst = fill_err(worst, slot[qd + h], a.mga_nrm[n * H + h]);
                for (int e = 0; e < kvd; e++) worst = fill_err(worst, slot[qd + H + e], ((ops_real *)a.v)[n * kvd + e]);
            } else if (kind == ATTN_GDN) {
                int HD = H * hd, K = c.conv_size, P = 4 * HD + 2 * H;
                const ops_real *tails = mem + (size_t)B * HD * hd + (size_t)b * (K - 1) * 3 * HD;
                if (t == 0 && T < K - 1) /* the tail's rows before position 0 stay zero */
                    for (int i = 0; i < (K - 1 - T) * 3 * HD; i++) worst = fill_err(worst, tails[i], 0);
                if (t >= T - (K - 1))
                    for (int e = 0; e < 3 * HD; e++)
                        worst = fill_err(worst, tails[(size_t)(t - (T - (K - 1))) * 3 * HD + e], ((ops_real *)a.gdn.proj)[n * P + e]);
            } else if (kind == ATTN_DSA) {
                int kvd = c.n_kv_heads * hd, dI = c.indexer_dim;
                const ops_real *slot = mem + ((size_t)b * cap + t) * 2 * kvd;
                const ops_real *ik = mem + (size_t)B * cap * 2 * kvd + ((size_t)b * cap + t) * dI;
                for (int e = 0; e < kvd; e++) {
                    worst = fill_err(worst, slot[e], ((ops_real *)a.k)[n * kvd + e]);
                    worst = fill_err(worst, slot[kvd + e], ((ops_real *)a.v)[n * kvd + e]);
                }
                for (int e = 0; e < dI; e++) worst = fill_err(worst, ik[e], ((ops_real *)a.ik)[n * dI + e]);
            }
        }
    if (kind == ATTN_GDN && !rc)
        for (size_t i = 0; i < (size_t)B * H * hd * hd; i++) worst = fill_err(worst, mem[i], st[i]);
    snprintf(d, sizeof d, "T %d cap %d: worst rel %.1e (<= %.0e)", T, cap, worst, tol);
    report(!rc && worst <= tol, name, d);
    attn_decode_free(&kc);
    free(w); free(x); free(out); free(ref); free(am); free(sm); free(st);
}

static void check_cache_sizes(void) {
    AttnConfig c = {0};
    char err[256];
    c.kind = ATTN_SWA; c.d_model = 24; c.n_heads = 4; c.window = 8;
    attn_resolve(&c, err, sizeof err);
    report(attn_decode_cache_bytes(&c, 1000) == attn_decode_cache_bytes(&c, 8) &&
           attn_decode_cache_bytes(&c, 8) == 8 * 2 * c.n_kv_heads * c.head_dim * sizeof(ops_real),
           "swa cache: a ring of W positions (T = 1000 takes what T = 8 takes)", NULL);
    AttnConfig pg = c, pd = c, ps = c;
    pg.global_tokens = 4;
    pd.dilation = 3; pd.pattern_block = 2;
    ps.stride = 16;
    size_t row = 2 * c.n_kv_heads * c.head_dim * sizeof(ops_real);
    report(attn_decode_cache_bytes(&pg, 1000) == 12 * row && attn_decode_cache_bytes(&pd, 1000) == 24 * row &&
           attn_decode_cache_bytes(&ps, 1000) == 1000 * row && attn_decode_cache_bytes(&pg, 10) == 10 * row,
           "pattern caches: G + W (global), W*R (dilated), all (strided), at most T", NULL);
    AttnConfig m = {0};
    m.kind = ATTN_MLA; m.d_model = 24; m.n_heads = 4;
    attn_resolve(&m, err, sizeof err);
    report(attn_decode_cache_bytes(&m, 10) == 10 * (size_t)(m.latent_dim + m.rope_dim) * sizeof(ops_real),
           "mla cache: latent + rotary key per token", NULL);
    AttnConfig g = {0};
    g.kind = ATTN_GDN; g.d_model = 24; g.n_heads = 4;
    attn_resolve(&g, err, sizeof err);
    report(attn_decode_cache_bytes(&g, 5) == attn_decode_cache_bytes(&g, 50000) && attn_decode_cache_bytes(&g, 5) > 0,
           "gdn cache: constant in T", NULL);
    AttnCache k;
    report(!attn_decode_init(&k, &c, 3, 20, err, sizeof err) && k.bytes == 3 * attn_decode_cache_bytes(&c, 20),
           "attn_decode_init allocates B x cache_bytes", err);
    ops_real x[3 * 24] = {0}, out[3 * 24];
    k.pos = 20;
    int rc = attn_decode_step(&k, NULL, x, out, err, sizeof err);
    report(rc == -1 && strstr(err, "position 20") && strstr(err, "20 positions"), "a step past the cache is refused", err);
    attn_decode_free(&k);
    AttnConfig hi = {0}; /* hier: the window's ring, cap/P + 1 block rows (the last a running sum) */
    hi.kind = ATTN_HIER; hi.d_model = 24; hi.n_heads = 4; hi.window = 3; hi.hier_block = 4;
    attn_resolve(&hi, err, sizeof err);
    size_t hrow = (size_t)2 * hi.n_kv_heads * hi.head_dim * sizeof(ops_real);
    snprintf(err, sizeof err, "%zu and %zu bytes at T 8 and 40", attn_decode_cache_bytes(&hi, 8), attn_decode_cache_bytes(&hi, 40));
    report(attn_decode_cache_bytes(&hi, 8) == (3 + 3) * hrow && attn_decode_cache_bytes(&hi, 40) == (3 + 11) * hrow,
           "hier cache: window ring + one pooled row per block + the running sum", err);
    AttnConfig f = {0};
    f.kind = ATTN_MGA; f.d_model = 24; f.n_heads = 4; f.mga_faithful = 1;
    attn_resolve(&f, err, sizeof err);
    rc = attn_decode_supported(&f, err, sizeof err);
    report(rc == -1 && strstr(err, "mga_faithful"), "mga_faithful cannot decode (it reads the future)", err);
    AttnConfig mq = {0};
    mq.kind = ATTN_MLA; mq.d_model = 24; mq.n_heads = 4; mq.qk_norm = 1;
    attn_resolve(&mq, err, sizeof err);
    report(attn_decode_supported(&mq, err, sizeof err) == 0 &&
               attn_decode_cache_bytes(&mq, 8) == 8 * 4 * (6 + 6) * sizeof(ops_real), /* 4 heads: k 6, v 6 */
           "mla with qk_norm decodes on the CPU (every head's normed k and v cached)", err);
}

/* smollm_gen_init's refusals before it allocates (smollm.h's smol_gen_check, which GPU generation
   shares): B and cap out of range, a layer that cannot decode named by its index */
static void check_gen_refusals(void) {
    SmolConfig cfg = {0};
    cfg.vocab_size = 32; cfg.d_model = 24; cfg.n_layers = 2; cfg.n_heads = 4; cfg.ffn_dim = 32;
    cfg.attn.kind = ATTN_GQA;
    cfg.attn.mga_faithful = 1; /* layer 1's mga reads the future: it cannot decode */
    snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "gqa,mga");
    SmolModel m;
    SmolGen g;
    char err[512];
    if (smollm_init(&m, &cfg, NULL, 1, 8, err, sizeof err)) { report(0, "generation refusals", err); return; }
    int rc = smollm_gen_init(&g, &m, 0, 8, err, sizeof err);
    report(rc == -1 && strstr(err, "generation of 0 sequences x 8 tokens: expected 1.."),
           "generation of 0 sequences is refused", err);
    rc = smollm_gen_init(&g, &m, 1, SMOLLM_MAX_SEQ + 1, err, sizeof err);
    report(rc == -1 && strstr(err, "tokens: expected 1..") && g.layers == NULL,
           "generation past SMOLLM_MAX_SEQ tokens is refused, nothing allocated", err);
    rc = smollm_gen_init(&g, &m, 1, 8, err, sizeof err);
    report(rc == -1 && strstr(err, "layer 1: attn mga with mga_faithful 1"),
           "a layer that cannot decode is refused by index", err);
    smollm_free(&m);
}

/* the GPU decode interface's host side (no GPU here): which rooms have GPU decode kernels, the
   device cache's bytes (bf16, the CPU cache's slots), and the refusals that need no device */
static void check_gpu_host(void) {
    char err[512];
    int agree = 1;
    for (int k = 1; k <= ATTN_KIND_LAST; k++) {
        AttnConfig c = {0};
        c.kind = (AttnKind)k; c.d_model = 128; c.n_heads = 4;
        if (k == ATTN_SWA || k == ATTN_HIER) c.window = 4; /* they need one */
        if (attn_resolve(&c, err, sizeof err)) { agree = 0; continue; }
        const AttnMech *m = attn_mech(c.kind);
        int want = m->decode && m->gpu_decode && m->gpu_cache_bytes, rc = attn_gpu_decode_supported(&c, err, sizeof err);
        char name[48];
        snprintf(name, sizeof name, "attn %s ", attn_kind_name(c.kind));
        if (want ? rc != 0 : (rc != -1 || !strstr(err, name))) agree = 0; /* refused by its name */
        if (!want && attn_gpu_decode_cache_bytes(&c, 8) != 0) agree = 0;
    }
    report(agree, "GPU decode: supported exactly where a room has the slots; refusals name the attn", NULL);
    const int kinds[] = {ATTN_MHA, ATTN_GQA, ATTN_MQA, ATTN_SWA, ATTN_IDENTITY};
    int dense_ok = 1;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        AttnConfig c = {0};
        c.kind = (AttnKind)kinds[i]; c.d_model = 128; c.n_heads = 4;
        if (c.kind == ATTN_SWA) c.window = 4;
        attn_resolve(&c, err, sizeof err);
        dense_ok &= attn_gpu_decode_supported(&c, err, sizeof err) == 0;
    }
    report(dense_ok, "GPU decode: mha, gqa, mqa, swa, identity have GPU kernels", NULL);
    /* bytes: bf16 K and V of the KV heads per slot; a window's ring, local+global G + W, none for identity */
    AttnConfig w = {0}, g = {0}, d = {0}, id = {0};
    w.kind = ATTN_SWA; w.d_model = 128; w.n_heads = 4; w.window = 4;
    g.kind = ATTN_MHA; g.d_model = 128; g.n_heads = 4; g.window = 4; g.global_tokens = 2;
    d.kind = ATTN_GQA; d.d_model = 128; d.n_heads = 4;
    id.kind = ATTN_IDENTITY; id.d_model = 128; id.n_heads = 4;
    attn_resolve(&w, err, sizeof err); attn_resolve(&g, err, sizeof err);
    attn_resolve(&d, err, sizeof err); attn_resolve(&id, err, sizeof err);
    size_t kv = (size_t)2 * 2 * w.head_dim; /* k and v, bf16, per kv head */
    char det[160];
    snprintf(det, sizeof det, "swa %zu, local+global %zu, gqa %zu, identity %zu", attn_gpu_decode_cache_bytes(&w, 40),
             attn_gpu_decode_cache_bytes(&g, 40), attn_gpu_decode_cache_bytes(&d, 40), attn_gpu_decode_cache_bytes(&id, 40));
    report(attn_gpu_decode_cache_bytes(&w, 40) == 4 * kv * w.n_kv_heads &&
           attn_gpu_decode_cache_bytes(&g, 40) == 6 * kv * g.n_kv_heads &&
           attn_gpu_decode_cache_bytes(&d, 40) == 40 * kv * d.n_kv_heads && attn_gpu_decode_cache_bytes(&id, 40) == 0,
           "GPU cache bytes: bf16 slots (ring W, G + W, all, none)", det);
    AttnGpuCache kg;
    int rc = attn_gpu_decode_init(NULL, &kg, &d, NULL, 1, 8, NULL, err, sizeof err);
    report(rc == -1 && strstr(err, "expected a GPU"), "GPU decode init without a GPU is refused", err);
    SmolConfig cfg = {0};
    cfg.vocab_size = 32; cfg.d_model = 128; cfg.n_layers = 1; cfg.n_heads = 4; cfg.ffn_dim = 32;
    SmolModel m;
    SmolGpuGen gg;
    rc = smollm_init(&m, &cfg, NULL, 1, 1, err, sizeof err);
    if (!rc) rc = smollm_gpu_gen_init(&gg, &m, 1, 8, NULL, 1, 0, err, sizeof err) == -1 ? 0 : 1;
    report(!rc && strstr(err, "needs a model on the GPU"), "GPU generation of a CPU model is refused", err);
    report(smollm_gpu_cache_bytes(&m, 40) == attn_gpu_decode_cache_bytes(&m.layers[0].attn, 40) &&
           smollm_gpu_cache_bytes(&m, 40) > 0, "smollm_gpu_cache_bytes sums the layers'", NULL);
    smollm_free(&m);
}

static void check_sampler(void) {
    ops_real lg[5] = {0.1, 2.0, -1.0, 2.0, 1.9};
    uint64_t r1 = 42, r2 = 42;
    SmolSampler greedy = {0}, k1 = {1.0f, 1, 0}, p0 = {1.0f, 0, 1e-6f}, hot = {0.8f, 3, 0.9f};
    report(smollm_sample(lg, 5, &greedy, &r1) == 1, "greedy: the first largest logit", NULL);
    report(smollm_sample(lg, 5, &k1, &r1) == 1 && smollm_sample(lg, 5, &p0, &r1) == 1, "top_k 1 and tiny top_p are greedy", NULL);
    int same = 1;
    r1 = r2 = 1234;
    for (int i = 0; i < 200; i++) same &= smollm_sample(lg, 5, &hot, &r1) == smollm_sample(lg, 5, &hot, &r2);
    report(same, "the same seed draws the same tokens", NULL);
    ops_real two[3] = {0, log(3.0), -5};
    SmolSampler t1 = {1.0f, 0, 0}, k2 = {1.0f, 2, 0};
    int n1 = 0, third = 0, N = 20000;
    double p1 = 3 / (4 + exp(-5.0));
    for (int i = 0; i < N; i++) {
        n1 += smollm_sample(two, 3, &t1, &r1) == 1;
        third += smollm_sample(two, 3, &k2, &r1) == 2;
    }
    char d[96];
    snprintf(d, sizeof d, "%.4f vs %.4f", (double)n1 / N, p1);
    report(fabs((double)n1 / N - p1) < 4 * sqrt(p1 * (1 - p1) / N), "temperature 1 draws in proportion to softmax", d);
    report(third == 0, "top_k 2 never draws the third", NULL);
}

int main(void) {
    check_rng = 0x5eed0de;
    check_model("decode == forward: mha", ATTN_MHA, NULL, SMOLLM_NORM_PRE, 4, NULL);
    check_model("decode == forward: gqa, prefill 1", ATTN_GQA, NULL, SMOLLM_NORM_PRE, 1, NULL);
    check_model("decode == forward: mqa, prefill 13 (all)", ATTN_MQA, NULL, SMOLLM_NORM_PRE, 13, NULL);
    check_model("decode == forward: swa W=3 (ring wraps)", ATTN_SWA, NULL, SMOLLM_NORM_PRE, 5, o_swa3);
    check_model("decode == forward: swa W=3 + qk_norm, post-norm", ATTN_SWA, NULL, SMOLLM_NORM_POST, 2, o_swa3_qk);
    check_model("decode == forward: local+global pattern", ATTN_SWA, NULL, SMOLLM_NORM_PRE, 3, o_global);
    check_model("decode == forward: strided pattern", ATTN_SWA, NULL, SMOLLM_NORM_PRE, 3, o_stride);
    check_model("decode == forward: dilated pattern", ATTN_SWA, NULL, SMOLLM_NORM_PRE, 3, o_dilation);
    check_model("decode == forward: global + dilated pattern", ATTN_SWA, NULL, SMOLLM_NORM_PRE, 3, o_global_dil);
    check_model("decode == forward: identity", ATTN_IDENTITY, NULL, SMOLLM_NORM_PRE, 3, NULL);
    check_model("decode == forward: mla (absorbed)", ATTN_MLA, NULL, SMOLLM_NORM_PRE, 3, NULL);
    check_model("decode == forward: mla q_latent, W=4, v_dim 4, sandwich", ATTN_MLA, NULL, SMOLLM_NORM_SANDWICH, 2, o_mla_q);
    check_model("decode == forward: mla qk_norm (expanded cache), W=4", ATTN_MLA, NULL, SMOLLM_NORM_PRE, 5, o_mla_qk);
    check_model("decode == forward: mla qk_norm, q_latent, no window", ATTN_MLA, NULL, SMOLLM_NORM_PRE, 3, o_mla_qk_full);
    check_model("decode == forward: mga", ATTN_MGA, NULL, SMOLLM_NORM_PRE, 3, NULL);
    check_model("decode == forward: mga gate, W=4, kv 2", ATTN_MGA, NULL, SMOLLM_NORM_PRE, 6, o_mga_gate);
    check_model("decode == forward: gdn", ATTN_GDN, NULL, SMOLLM_NORM_PRE, 3, NULL);
    check_model("decode == forward: gdn conv 3, prefill 1", ATTN_GDN, NULL, SMOLLM_NORM_PRE, 1, o_gdn);
    check_model("decode == forward: dsa top-4 of 13 (k changes)", ATTN_DSA, NULL, SMOLLM_NORM_PRE, 2, o_dsa);
    check_model("decode == forward: dsa adaptive k (topk_schedule 5)", ATTN_DSA, NULL, SMOLLM_NORM_PRE, 2, o_dsa_adapt);
    check_model("decode == forward: hier W=3 P=2 (blocks pooled as they fill)", ATTN_HIER, NULL, SMOLLM_NORM_PRE, 3, o_hier);
    check_model("decode == forward: hier W=2 P=3 kv 2 qk_norm, prefill 5", ATTN_HIER, NULL, SMOLLM_NORM_POST, 5, o_hier_qk);
    check_model("decode == forward: schedule swa:3,gdn,mla,dsa:topk=3,mga,identity", ATTN_GQA,
                "swa:3,gdn,mla,dsa:topk=3,mga,identity", SMOLLM_NORM_PRE, 4, NULL);
    check_fill_map("prefill fill map: mla W=4 (the ring wraps)", ATTN_MLA, o_mla_q, 7, 12);
    check_fill_map("prefill fill map: mla", ATTN_MLA, NULL, 5, 9);
    check_fill_map("prefill fill map: mla qk_norm W=4 (the ring wraps)", ATTN_MLA, o_mla_qk, 7, 12);
    check_fill_map("prefill fill map: mla qk_norm v 4, q_latent", ATTN_MLA, o_mla_qk_v4, 5, 9);
    check_fill_map("prefill fill map: mga gate W=4 kv 2", ATTN_MGA, o_mga_gate, 7, 12);
    check_fill_map("prefill fill map: mga, prompt 1", ATTN_MGA, o_mga_gate1, 1, 9);
    check_fill_map("prefill fill map: gdn conv 3", ATTN_GDN, o_gdn, 6, 9);
    check_fill_map("prefill fill map: gdn conv 4, prompt 2 (< K-1)", ATTN_GDN, NULL, 2, 9);
    check_fill_map("prefill fill map: dsa top-4", ATTN_DSA, o_dsa, 7, 11);
    check_cache_sizes();
    check_gen_refusals();
    check_gpu_host();
    check_gpu_cache_sizes();
    check_sampler();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
