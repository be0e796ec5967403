/* tests/gpu_decode_rooms_check.c - on a GPU machine: the GPU decode of the MLA, MGA, Gated
   DeltaNet and DSA rooms (attn/decode.cu.h, the rooms' gpu_decode slots) against the CPU decode
   (attn_decode_step, the reference tests/test_decode.c holds equal to the full forward).

   Build: make tests/gpu_decode_rooms_check     Run: ./tests/gpu_decode_rooms_check [--no-graph]
     --compile-only  no GPU: NVRTC-compiles attn/decode.cu.h for sm_80 and sm_90 and checks that
                     every case's config resolves and is one the GPU decode takes

   Per case (a room and options: MLA with and without the query latent, v_head_dim != head_dim,
   a window that wraps; MGA with and without its gate, a window; GDN conv sizes 4, 2 and 1; DSA
   with top-k below and above the context, GQA): random bf16-representable weights in the
   block's attn_param_specs layout (matrices N(0, 1/cols), norm scales 1 +- 0.1, then
   attn_param_init_special: GDN's conv, A_log, dt_bias), bf16 inputs N(0, 1), B = 2 sequences;
   the same weights and inputs go to the CPU (fp32 ops_real) and the GPU (bf16 activations).
   A prefill (attn_gpu_decode_prefill) of pre tokens, then decode steps (attn_gpu_decode_step) up
   to 48 positions: the first two eager, the others replays of one captured CUDA graph of a step
   (the position lives on the device: a replay must land at the right position), unless
   --no-graph. Each case runs four ways (case lines "[tokenwise 8]", "[forward 8]", "[forward 24]",
   "[forward 1]"): the prefill one decode step per token (tuning.dec_prefill = 0), then the
   room's training forward with its fill kernels (dec_prefill = 1, the default) over prompts of 8, 24
   (windows of 16 wrap inside the prompt; past the conv tails and DSA's top 8) and 1 token; a
   case whose attn_gpu_prefill_whole disagrees with the setting fails. The same bound for all.
   Bound: per token, max |gpu - cpu| <= max(3e-2 * max |cpu|, 2 s) over the token's d outputs (bf16
   activations and caches; the CPU keeps everything in fp32), where s is the token's measured
   condition: the largest change of its outputs when the CPU reference runs again on weights and
   inputs each multiplied by 1 + u 2^-8 (u uniform in [-1, 1]; two such runs, the larger change).
   The relative term alone is too tight where a token's outputs are small by cancellation: Gated
   DeltaNet's first token is beta (q.k) v through an RMSNorm whose eps dominates when v is small,
   so it scales with q.k, and when q and k (unit vectors of 64) are nearly orthogonal, bf16's
   rounding of q and k moves q.k by a large fraction of itself. s is that effect, measured per
   token, and 2 s is below the relative term wherever the output is not ill-conditioned (on the
   H200, on the token each case printed as its worst, 2 s was 3% to 70% of the relative term, and
   the two Gated DeltaNet first tokens that failed that term alone had errors of 1.3 s and 1.0 s:
   36% and 8% of their max |cpu|, with s 2.9% and 8% of it). The case line prints the worst
   token's ratio of error to bound, its error relative to its max |cpu| and its s.
   DSA: a selection flips under bf16 when two indexer scores nearly tie, so the check computes
   the CPU indexer's scores itself and compares only the tokens whose k-th and (k+1)-th largest
   scores differ by >= 1e-2 of the largest |score| (the count compared is printed; fewer than half
   compared fails the case: the check would see too little).
   Ends with "N passed, N failed"; exit status 1 on any failure. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_test.h"

enum { B = 2, T = 48 }; /* positions per sequence: a prefill of pre tokens, then T - pre steps */
#define TOL 3e-2
#define DSA_GAP 1e-2

static int n_pass, n_fail, use_graph = 1, dry = 0;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-44s %s\n", ok ? "PASS" : "FAIL", name, detail);
    fflush(stdout);
}

/* random weights in the block's layout, rounded to bf16 (CPU copy and device bits) */
static float *make_weights(const AttnConfig *c, uint16_t **bits, size_t *np) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    int n = attn_param_specs(c, p);
    *np = attn_param_count(c);
    float *w = xmalloc(sizeof(float) * *np);
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < p[i].numel; j++)
            w[p[i].offset + j] = p[i].is_norm ? 1 + 0.1 * nrand() : nrand() / sqrt((double)p[i].cols);
    attn_param_init_special(c, w, 11);
    *bits = xmalloc(2 * *np);
    for (size_t i = 0; i < *np; i++) { (*bits)[i] = f2bf(w[i]); w[i] = (float)bf2d((*bits)[i]); }
    return w;
}

/* DSA: 1 where token t of sequence b has a clear top-k margin in the CPU indexer's scores */
static void dsa_margins(const AttnConfig *c, const float *w, const float *x, int *clear) {
    int d = c->d_model, HI = c->indexer_heads, dI = c->indexer_dim, k = attn_topk(c, T);
    float *iq = xmalloc(sizeof(float) * HI * dI), *ik = xmalloc(sizeof(float) * (size_t)T * dI);
    float *iw = xmalloc(sizeof(float) * HI), *sc = xmalloc(sizeof(float) * T);
    for (int b = 0; b < B; b++) {
        const float *xb = x + (size_t)b * T * d;
        op_matmul_forward(NULL, ik, xb, w + attn_spec_off(c, "indexer.k_proj.weight"), T, d, dI);
        for (int s = 0; s < T; s++) attn_rope_at(ik + (size_t)s * dI, 1, dI, dI, c->rope_theta, s);
        for (int t = 0; t < T; t++) {
            int n = t + 1;
            clear[b * T + t] = 1;
            if (n <= k) continue; /* every position: nothing to choose */
            op_matmul_forward(NULL, iq, xb + (size_t)t * d, w + attn_spec_off(c, "indexer.q_proj.weight"), 1, d, HI * dI);
            op_matmul_forward(NULL, iw, xb + (size_t)t * d, w + attn_spec_off(c, "indexer.w_proj.weight"), 1, d, HI);
            attn_rope_at(iq, HI, dI, dI, c->rope_theta, t);
            float mx = 0;
            for (int s = 0; s < n; s++) {
                sc[s] = sparse_index_score_(iq, ik + (size_t)s * dI, iw, HI, dI);
                if (fabsf(sc[s]) > mx) mx = fabsf(sc[s]);
            }
            /* the k-th and (k+1)-th largest: partial selection by repeated maxima */
            float kth = 0, next = 0;
            for (int r = 0; r <= k; r++) {
                int best = -1;
                for (int s = 0; s < n; s++)
                    if (sc[s] > -INFINITY && (best < 0 || sc[s] > sc[best])) best = s;
                if (r == k - 1) kth = sc[best];
                if (r == k) next = sc[best];
                sc[best] = -INFINITY;
            }
            clear[b * T + t] = kth - next >= DSA_GAP * (mx > 0 ? mx : 1);
        }
    }
    free(iq); free(ik); free(iw); free(sc);
}

/* the worst token so far by ratio = max |gpu - ref| / max(TOL max |ref|, COND_K s) (infinite after
   a non-finite output): where it was (sequence, position), its error relative to its max |ref|
   (e), its max |ref| and its s, beside the sum of every compared token's max |ref|: a failure's
   line then says whether it sits on a token of small outputs; n_cond counts the tokens that
   passed only through the condition term */
typedef struct { int b, t, n_cond; double ratio, e, mr, s, sum_mr; } TokWorst;
#define COND_K 2.0

/* the tokens (b, t) with mask 1 (NULL: all) in [t0, t1) into tw; cond holds each token's s */
static void token_err(const uint16_t *got, int ld_got, const float *ref, const float *cond, int t0, int t1, int d,
                      const int *mask, int *compared, TokWorst *tw) {
    for (int b = 0; b < B; b++)
        for (int t = t0; t < t1; t++) {
            if (mask && !mask[b * T + t]) continue;
            const float *r = ref + ((size_t)b * T + t) * d;
            const uint16_t *g = got + ((size_t)b * ld_got + (t - t0)) * d;
            double mr = 0, md = 0, s = cond[b * T + t];
            for (int i = 0; i < d; i++) {
                double gv = bf2d(g[i]);
                if (!isfinite(gv)) { tw->ratio = tw->e = INFINITY; tw->b = b; tw->t = t; return; }
                if (fabs(r[i]) > mr) mr = fabs(r[i]);
                if (fabs(gv - r[i]) > md) md = fabs(gv - r[i]);
            }
            double bound = fmax(TOL * mr, COND_K * s);
            double ratio = md / (bound > 0 ? bound : 1e-30);
            if (md > TOL * mr && ratio <= 1) tw->n_cond++;
            if (ratio > tw->ratio) {
                tw->ratio = ratio; tw->b = b; tw->t = t; tw->mr = mr; tw->s = s;
                tw->e = md / (mr > 0 ? mr : 1);
            }
            tw->sum_mr += mr;
            (*compared)++;
        }
}

/* the CPU reference (prefill pre tokens, then one token at a time) of B sequences of T tokens x
   into ref; nonzero with err set on failure */
static int cpu_reference(const AttnConfig *c, const float *w, const float *x, int pre, float *ref, char *err,
                         size_t errsz) {
    int d = c->d_model;
    AttnCache kc;
    float *xt = xmalloc(sizeof(float) * B * d), *ot = xmalloc(sizeof(float) * B * d);
    float *xp = xmalloc(sizeof(float) * B * pre * d), *op = xmalloc(sizeof(float) * B * pre * d);
    int ok = !attn_decode_init(&kc, c, B, T, err, errsz);
    for (int b = 0; b < B && ok; b++) memcpy(xp + (size_t)b * pre * d, x + (size_t)b * T * d, sizeof(float) * pre * d);
    ok = ok && !attn_decode_prefill(&kc, w, xp, op, pre, err, errsz);
    for (int b = 0; b < B && ok; b++) memcpy(ref + (size_t)b * T * d, op + (size_t)b * pre * d, sizeof(float) * pre * d);
    for (int t = pre; t < T && ok; t++) {
        for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * d, x + ((size_t)b * T + t) * d, sizeof(float) * d);
        ok = !attn_decode_step(&kc, w, xt, ot, err, errsz);
        for (int b = 0; b < B && ok; b++) memcpy(ref + ((size_t)b * T + t) * d, ot + (size_t)b * d, sizeof(float) * d);
    }
    attn_decode_free(&kc);
    free(xt); free(ot); free(xp); free(op);
    return !ok;
}

/* each token's condition s (see the header): the CPU reference again on weights and inputs
   multiplied by 1 + u 2^-8, twice, the largest change of the token's outputs. Its own generator,
   so that the cases' weights and inputs stay those of the shared one. */
static int token_condition(const AttnConfig *c, const float *w, size_t np, const float *x, int pre, const float *ref,
                           float *cond, char *err, size_t errsz) {
    int d = c->d_model;
    size_t nx = (size_t)B * T * d;
    float *wp = xmalloc(sizeof(float) * np), *xp = xmalloc(sizeof(float) * nx), *rp = xmalloc(sizeof(float) * nx);
    uint64_t st = 0x2545F4914F6CDD1Dull;
    int rc = 0;
    for (int i = 0; i < B * T; i++) cond[i] = 0;
    for (int rep = 0; rep < 2 && !rc; rep++) {
        for (size_t i = 0; i < np + nx; i++) {
            double u = 2 * urand_at(&st) - 1;
            float m = (float)(1 + u * (1.0 / 256));
            if (i < np) wp[i] = w[i] * m;
            else xp[i - np] = x[i - np] * m;
        }
        rc = cpu_reference(c, wp, xp, pre, rp, err, errsz);
        for (int i = 0; i < B * T && !rc; i++)
            for (int j = 0; j < d; j++) {
                float dv = fabsf(rp[(size_t)i * d + j] - ref[(size_t)i * d + j]);
                if (dv > cond[i]) cond[i] = dv;
            }
    }
    free(wp); free(xp); free(rp);
    return rc;
}

static void check_case(Gpu *g, const char *room, AttnConfig c, int pre, int whole) {
    char err[512], detail[320], name[96];
    snprintf(name, sizeof name, "%s [%s %d]", room, whole ? "forward" : "tokenwise", pre);
    if (attn_resolve(&c, err, sizeof err) || attn_gpu_decode_supported(&c, err, sizeof err)) {
        report(0, name, err);
        return;
    }
#ifndef ABLATE_NO_CUDA
    g->tuning.dec_prefill = GPU_TUNE_VARIANT(whole); /* attn_gpu_decode_prefill reads it */
#endif
    GpuTuning tune = {0};
    tune.dec_prefill = GPU_TUNE_VARIANT(whole);
    if (attn_gpu_prefill_whole(&tune, &c, T) != whole) { /* else the case would not test what it names */
        snprintf(detail, sizeof detail, "attn_gpu_prefill_whole says %d with dec_prefill %d (expected %d)",
                 attn_gpu_prefill_whole(&tune, &c, T), whole, whole);
        report(0, name, detail);
        return;
    }
    if (dry) { /* --compile-only: the case's config is one the GPU decode takes */
        snprintf(detail, sizeof detail, "config accepted; cache %zu B/seq at T %d, scratch %zu B at B %d",
                 attn_gpu_decode_cache_bytes(&c, T), T, attn_mech(c.kind)->gpu_scratch_bytes(&c, B, T), B);
        report(1, name, detail);
        return;
    }
    int d = c.d_model;
    size_t np;
    uint16_t *wbits;
    float *w = make_weights(&c, &wbits, &np);
    uint16_t *xbits;
    double *xv;
    rand_bf16((size_t)B * T * d, 1.0, &xbits, &xv);
    float *x = xmalloc(sizeof(float) * B * T * d), *ref = xmalloc(sizeof(float) * B * T * d);
    for (size_t i = 0; i < (size_t)B * T * d; i++) x[i] = (float)xv[i];

    /* the CPU reference: prefill pre, then one token at a time; then each token's condition */
    float *cond = xmalloc(sizeof(float) * B * T);
    int ok = !cpu_reference(&c, w, x, pre, ref, err, sizeof err) &&
             !token_condition(&c, w, np, x, pre, ref, cond, err, sizeof err);
    if (!ok) {
        report(0, name, err);
        goto done;
    }
    int *mask = NULL;
    if (c.kind == ATTN_DSA) {
        mask = xmalloc(sizeof(int) * B * T);
        dsa_margins(&c, w, x, mask);
    }

    /* the GPU: the same weights and inputs in bf16 */
    uint16_t *xpb = xmalloc(2 * (size_t)B * pre * d), *got = xmalloc(2 * (size_t)B * pre * d);
    for (int b = 0; b < B; b++) memcpy(xpb + (size_t)b * pre * d, xbits + (size_t)b * T * d, 2 * (size_t)pre * d);
    void *dw = dev_upload(g, wbits, 2 * np), *dxp = dev_upload(g, xpb, 2 * (size_t)B * pre * d);
    void *dop = dev_poisoned(g, 2 * (size_t)B * pre * d), *dxt = gpu_alloc(g, 2 * (size_t)B * d);
    void *dot = dev_poisoned(g, 2 * (size_t)B * d);
    int *dpos = gpu_alloc(g, sizeof(int));
    AttnGpuCache k;
    if (attn_gpu_decode_init(g, &k, &c, dw, B, T, dpos, err, sizeof err) ||
        attn_gpu_decode_prefill(g, &k, dw, dxp, dop, pre, err, sizeof err)) {
        report(0, name, err);
        goto gpu_done;
    }
    gpu_download(g, got, dop, 2 * (size_t)B * pre * d);
    int compared = 0, replayed = 0;
    TokWorst tw = {0};
    token_err(got, pre, ref, cond, 0, pre, d, mask, &compared, &tw);
    uint16_t *xtb = xmalloc(2 * (size_t)B * d);
    CUgraphExec graph = NULL;
    for (int t = pre; t < T; t++) {
        for (int b = 0; b < B; b++) memcpy(xtb + (size_t)b * d, xbits + ((size_t)b * T + t) * d, 2 * (size_t)d);
        gpu_upload(g, dxt, xtb, 2 * (size_t)B * d);
        if (use_graph && t >= pre + 2) { /* eager twice (kernels compiled, plans chosen), then replays */
            if (!graph) {
                gpu_graph_begin(g);
                ok = !attn_gpu_decode_step(g, &k, dw, dxt, dot, err, sizeof err);
                graph = gpu_graph_end(g);
                if (!ok) break;
            }
            gpu_graph_launch(g, graph);
            replayed++;
        } else if (attn_gpu_decode_step(g, &k, dw, dxt, dot, err, sizeof err)) {
            ok = 0;
            break;
        }
        gpu_download(g, got, dot, 2 * (size_t)B * d);
        token_err(got, 1, ref, cond, t, t + 1, d, mask, &compared, &tw);
        k.pos = t + 1; /* the caller advances both positions */
        gpu_upload(g, dpos, &k.pos, sizeof(int));
    }
    if (graph) gpu_graph_free(graph);
    if (!ok) {
        report(0, name, err);
    } else {
        int need = mask ? B * T / 2 : B * T;
        snprintf(detail, sizeof detail, "worst error/bound %.2f over %d of %d tokens (%d within only by s), %d graph "
                 "replays, cache %zu B/seq; worst at b %d t %d: error %.2e of max|ref| %.2g (mean %.2g), s %.2g",
                 tw.ratio, compared, B * T, tw.n_cond, replayed, attn_gpu_decode_cache_bytes(&c, T), tw.b, tw.t, tw.e,
                 tw.mr, compared ? tw.sum_mr / compared : 0.0, tw.s);
        report(tw.ratio <= 1 && compared >= need, name, detail);
    }
    free(xtb);
    attn_gpu_decode_free(g, &k);
gpu_done:
    gpu_free(g, dw); gpu_free(g, dxp); gpu_free(g, dop); gpu_free(g, dxt); gpu_free(g, dot); gpu_free(g, dpos);
    free(xpb); free(got); free(mask);
done:
    free(w); free(wbits); free(xbits); free(xv); free(x); free(ref); free(cond);
}

/* the shared shape: d 128, 2 heads of 64 (the rooms' GPU limits: head dims 32, 64 or 128) */
static AttnConfig base(AttnKind kind) {
    AttnConfig c = {0};
    c.kind = kind;
    c.d_model = 128;
    c.n_heads = 2;
    return c;
}

/* one case four ways: the prefill one decode step per token (the default), then the room's
   training forward with fill kernels (tuning.dec_prefill = 1) over a prompt of 8 tokens, of 24
   (windows of 16 wrap inside the prompt; past the conv tails and DSA's top 8) and of 1 */
static void run_case(Gpu *g, const char *room, AttnConfig c) {
    check_case(g, room, c, 8, 0);
    check_case(g, room, c, 8, 1);
    check_case(g, room, c, 24, 1);
    check_case(g, room, c, 1, 1);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-graph")) use_graph = 0;
        else if (!strcmp(argv[i], "--compile-only")) dry = 1;
        else {
            fprintf(stderr, "usage: %s [--no-graph | --compile-only]  (got '%s')\n", argv[0], argv[i]);
            return 2;
        }
    }
    Gpu g;
    memset(&g, 0, sizeof g);
    if (dry) { /* no GPU: the kernels compile for both targets and every case's config is accepted */
        report(!gpu_decode_kernels_compile_check("sm_80"), "attn/decode.cu.h compiles for sm_80", "");
        report(!gpu_decode_kernels_compile_check("sm_90"), "attn/decode.cu.h compiles for sm_90", "");
    } else if (gpu_init(&g, 0) != 0) {
        fprintf(stderr, "gpu_decode_rooms_check: no usable GPU: %s\n", g.err);
        return 1;
    }
    AttnConfig c;
    c = base(ATTN_MLA); run_case(&g, "mla", c);
    c = base(ATTN_MLA); c.q_latent_dim = 48; run_case(&g, "mla q_latent 48", c);
    c = base(ATTN_MLA); c.v_head_dim = 32; c.latent_dim = 96; run_case(&g, "mla v_head_dim 32 latent 96", c);
    c = base(ATTN_MLA); c.window = 16; c.q_latent_dim = 32; run_case(&g, "mla window 16 (ring wraps)", c);
    /* QK-norm: the expanded form in the dense room's cache and kernels (attn/mla.h) */
    c = base(ATTN_MLA); c.qk_norm = 1; run_case(&g, "mla qk_norm", c);
    c = base(ATTN_MLA); c.qk_norm = 1; c.v_head_dim = 32; c.q_latent_dim = 32; c.window = 16;
    run_case(&g, "mla qk_norm v_head_dim 32 q_latent 32 window 16", c);
    c = base(ATTN_MGA); run_case(&g, "mga", c);
    c = base(ATTN_MGA); c.mga_gate = 1; run_case(&g, "mga gate", c);
    c = base(ATTN_MGA); c.mga_gate = 1; c.window = 16; run_case(&g, "mga gate window 16", c);
    c = base(ATTN_MGA); c.n_heads = 4; c.head_dim = 32; c.n_kv_heads = 2; run_case(&g, "mga 4 heads kv 2", c);
    c = base(ATTN_GDN); run_case(&g, "gdn conv 4", c);
    c = base(ATTN_GDN); c.conv_size = 2; run_case(&g, "gdn conv 2", c);
    c = base(ATTN_GDN); c.conv_size = 1; run_case(&g, "gdn conv 1", c);
    c = base(ATTN_DSA); c.topk = 8; c.indexer_heads = 2; c.indexer_dim = 32; run_case(&g, "dsa topk 8", c);
    c = base(ATTN_DSA); c.topk = 64; c.indexer_heads = 2; c.indexer_dim = 32; run_case(&g, "dsa topk 64 > context", c);
    c = base(ATTN_DSA); c.n_heads = 4; c.head_dim = 32; c.n_kv_heads = 1; c.topk_pct = 25; c.indexer_heads = 4;
    c.indexer_dim = 64; c.qk_norm = 1; run_case(&g, "dsa topk 25% gqa qk_norm", c);
    if (!dry) gpu_free_all(&g);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
