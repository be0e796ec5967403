/* attn/dense.h - the dense softmax family: MHA, GQA, MQA, SWA, with fixed sparse patterns and
   QK-norm. A room of attn.h (include attn.h, not this file); kernels: attn/dense.cu.h (the flash
   core, through ops.h's op_attention_*).

   MECHANISMS (causal)
     MHA       kv_heads = heads (Vaswani et al. 2017)
     GQA       kv_heads divides heads; query head h reads kv head h / (heads / kv_heads)
               (Ainslie et al. 2023, arXiv 2305.13245); default kv_heads heads/3, else /2, else 1
     MQA       kv_heads = 1 (Shazeer 2019, arXiv 1911.02150)
     SWA       GQA with a sliding window (window must be > 0; Beltagy et al. 2020, 2004.05150)
   Options (common ones in attn.h: kv_heads, qk_norm, window, attn_dropout):
     attn_dropout N dropout on P = softmax(QK^T) in training, p = N / 1000: out = (P * M / (1 - p)) V,
                    M from ops.h's hash (ops_drop_key, ops_drop_bits), drawn again in the backward;
                    lse is P's, so the backward's D = rowsum(dO * O) holds unchanged
     window W > 0   sliding window: token i sees i-W+1..i (0 = full causal)
     global=G, stride=S, dilation=R (pattern_block PB, default 128): fixed sparse patterns
                    added to the window W (ops.h: local+global, strided, dilated; the flash
                    kernels skip the key tiles no query of a block sees), e.g. swa:256:global=4
     qk_norm        RMSNorm over each head's q and k (one learnable [head_dim] scale for q and
                    one for k, shared by heads, as in Qwen3/OLMo-2-style QK-norm), before RoPE.

   PARAMETERS (PyTorch [out, in] layout, Hugging Face names):
     q_proj [H*hd, d], k_proj [KV*hd, d], v_proj [KV*hd, d], o_proj [d, H*hd],
     q_norm [hd], k_norm [hd] (qk_norm only).
   Forward: x -> q,k,v projections -> (QK-norm) -> RoPE on q,k -> causal attention -> o_proj.
   The projection and its backward (attn_dense_project*) are shared with DSA (attn/dsa.h), which
   is this family with a different core.
   GPU: head_dim a multiple of 8 from 32 to 256 (attn_gpu_width_check, shared with MLA and MGA;
   attn/dense.cu.h pads other widths to 16- or 32-column tiles inside the kernels; the Hopper
   wgmma kernels run head_dim 64, every other width the mma.sync ones).
   Decoding: a cache of K and V per slot (attn_dense_dec_ring: a ring of W under a window, G + a
   ring under local+global, W*R dilated, every position strided), fp32 on the CPU, bf16 on the GPU
   (attn/decode.cu.h's split-K step over the same slots).
*/
#ifndef ATTN_DENSE_H
#define ATTN_DENSE_H

/* X(room, field, name, min, max, flags, help) */
#define ATTN_OPTIONS_dense(X)                                                                                       \
    X(dense, global_tokens, "global", 0, ATTN_MAX_TOKENS, 0, "with window: the first G tokens seen by every query")  \
    X(dense, stride, "stride", 0, ATTN_MAX_TOKENS, 0, "with window: the last pattern_block keys of every S tokens") \
    X(dense, dilation, "dilation", 0, ATTN_MAX_TOKENS, 0, "with window: a second window of W*R keeping every R-th block") \
    X(dense, pattern_block, "pattern_block", 0, ATTN_MAX_TOKENS, 0, "keys per strided/dilated block (default 128)")
/* QK-norm: the projections before the norm and the norms' 1/rms ([N*H], [N*KV]) */
#define ATTN_ACTS_dense void *q_raw, *k_raw; ops_real *q_rstd, *k_rstd;
#define ATTN_SCRATCH_dense

#endif /* ATTN_DENSE_H */

#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_DENSE_DONE)
#define ATTN_DENSE_DONE

#ifndef ABLATE_NO_CUDA
#include "../gpu.h"
#include "decode.cu.h" /* the GPU decode kernels */
#endif

/* the config's sparse pattern on its window; 0 when it has none (plain window or dense) */
static int attn_pattern_of(const AttnConfig *c, OpsPattern *p) {
    OpsPattern q = {c->window, c->global_tokens, c->stride, c->dilation, c->pattern_block};
    *p = q;
    return c->global_tokens || c->stride || c->dilation;
}

/* patterns add keys to a window of this family; attn_resolve asks it of every kind */
static int attn_dense_pattern_check(const AttnConfig *c, char *err, size_t errlen) {
    if (!c->global_tokens && !c->stride && !c->dilation && !c->pattern_block) return 0;
    const AttnMech *m = attn_mech(c->kind);
    if (strcmp(m->room, "dense") || c->window < 1) {
        snprintf(err, errlen, "sparse pattern (global %d, stride %d, dilation %d, block %d) on attn %s with window %d: "
                 "patterns add keys to a sliding window of mha, gqa, mqa or swa (window >= 1), all values >= 0",
                 c->global_tokens, c->stride, c->dilation, c->pattern_block, attn_kind_name(c->kind), c->window);
        return -1;
    }
    return 0;
}

static int attn_dense_resolve(AttnConfig *c, char *err, size_t errlen) {
    switch (c->kind) {
    case ATTN_MHA:
        if (c->n_kv_heads && c->n_kv_heads != c->n_heads) {
            snprintf(err, errlen, "attn mha needs kv_heads = heads (%d), got %d", c->n_heads, c->n_kv_heads);
            return -1;
        }
        c->n_kv_heads = c->n_heads;
        break;
    case ATTN_MQA:
        if (c->n_kv_heads && c->n_kv_heads != 1) {
            snprintf(err, errlen, "attn mqa needs kv_heads = 1, got %d", c->n_kv_heads);
            return -1;
        }
        c->n_kv_heads = 1;
        break;
    default: /* GQA, SWA (and DSA, which resolves its kv heads here) */
        if (c->n_kv_heads == 0) /* SmolLM2's ratio of 3 where it divides, else 2, else MQA */
            c->n_kv_heads = c->n_heads % 3 == 0 ? c->n_heads / 3 : c->n_heads % 2 == 0 ? c->n_heads / 2 : 1;
        break;
    }
    if (c->kind == ATTN_SWA && c->window < 1) {
        snprintf(err, errlen, "attn swa needs a window >= 1 (swa:W or --window W), got %d", c->window);
        return -1;
    }
    return 0;
}

/* the flash kernels' head widths (attn/dense.cu.h): multiples of 8 from 32 to 256 (padded
   inside the kernels to tiles of 16 or 32 columns); the rooms built on them share this */
#define ATTN_GPU_WIDTH_MIN 32
#define ATTN_GPU_WIDTH_MAX 256
static int attn_gpu_width_ok(int w) { return w >= ATTN_GPU_WIDTH_MIN && w <= ATTN_GPU_WIDTH_MAX && w % 8 == 0; }
/* the nearest widths the GPU runs, for a refusal's "what would run" */
static void attn_gpu_width_near(int w, int *lo, int *hi) {
    *lo = w / 8 * 8 < ATTN_GPU_WIDTH_MIN ? 0 : w / 8 * 8 > ATTN_GPU_WIDTH_MAX ? ATTN_GPU_WIDTH_MAX : w / 8 * 8;
    *hi = (w + 7) / 8 * 8 < ATTN_GPU_WIDTH_MIN ? ATTN_GPU_WIDTH_MIN : (w + 7) / 8 * 8 > ATTN_GPU_WIDTH_MAX ? 0
                                                                                                 : (w + 7) / 8 * 8;
}
/* a refusal naming the width, the rule, and the nearest widths that run */
static int attn_gpu_width_check(const char *room, const char *what, int w, char *err, size_t errlen) {
    int lo, hi;
    if (attn_gpu_width_ok(w)) return 0;
    attn_gpu_width_near(w, &lo, &hi);
    char near[64] = "";
    if (lo && hi && lo != hi) snprintf(near, sizeof near, "%d or %d", lo, hi);
    else snprintf(near, sizeof near, "%d", lo ? lo : hi);
    snprintf(err, errlen, "attn %s on the GPU needs %s %d to be a multiple of 8 from %d to %d (the flash kernels' "
             "widths; %s would run): use --device cpu or change the width", room, what, w, ATTN_GPU_WIDTH_MIN,
             ATTN_GPU_WIDTH_MAX, near);
    return -1;
}

static int attn_dense_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    return attn_gpu_width_check(attn_kind_name(c->kind), "head_dim", c->head_dim, err, errlen);
}

/* q, k, v, o (and the QK-norm scales); DSA appends its indexer after these */
static int attn_dense_param_specs(const AttnConfig *c, AttnParamSpec *p) {
    size_t off = 0;
    int n = 0, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    attn_spec_set(&p[n++], "q_proj.weight", &off, qd, d);
    attn_spec_set(&p[n++], "k_proj.weight", &off, kvd, d);
    attn_spec_set(&p[n++], "v_proj.weight", &off, kvd, d);
    attn_spec_set(&p[n++], "o_proj.weight", &off, d, qd);
    p[n - 1].is_output_proj = 1;
    if (c->qk_norm) {
        attn_spec_set(&p[n++], "q_norm.weight", &off, c->head_dim, 0);
        attn_spec_set(&p[n++], "k_norm.weight", &off, c->head_dim, 0);
    }
    return n;
}

static size_t attn_dense_kv_bytes(const AttnConfig *c, int bytes_per_elem) {
    return (size_t)2 * c->n_kv_heads * c->head_dim * bytes_per_elem;
}

/* average keys per query under the causal mask, the window and the pattern */
static double attn_dense_mean_keys(const AttnConfig *c, int T) {
    double keys = (T + 1) / 2.0;
    if (c->window > 0 && c->window < T) {
        double W = c->window; /* first W queries see t+1 keys, the rest W */
        keys = (W * (W + 1) / 2 + (T - W) * W) / T;
    }
    OpsPattern pat;
    if (attn_pattern_of(c, &pat)) keys = ops_pattern_mean_keys(&pat, T); /* the pattern's mask, counted */
    return keys;
}

static double attn_dense_flops(const AttnConfig *c, int T) {
    return 2.0 * (double)attn_param_count(c) + 4.0 * c->n_heads * c->head_dim * attn_dense_mean_keys(c, T);
}

static void attn_dense_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    *act_elems = N * (qd + 2 * kvd + qd);
    *stat_elems = (size_t)B * c->n_heads * T;
    if (c->qk_norm) {
        *act_elems += N * (qd + kvd);
        *stat_elems += N * (c->n_heads + c->n_kv_heads);
    }
}

/* q, k, v, att, lse (and QK-norm's); advances the cursors (DSA carves its own after them) */
static void attn_dense_carve(const AttnConfig *c, AttnActs *a, size_t es, char **cur, char **sc, int B, int T) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    a->q = attn_carve(cur, N * qd, es);
    a->k = attn_carve(cur, N * kvd, es);
    a->v = attn_carve(cur, N * kvd, es);
    a->att = attn_carve(cur, N * qd, es);
    a->lse = attn_carve(sc, (size_t)B * c->n_heads * T, sizeof(ops_real));
    if (c->qk_norm) {
        a->q_raw = attn_carve(cur, N * qd, es);
        a->k_raw = attn_carve(cur, N * kvd, es);
        a->q_rstd = attn_carve(sc, N * c->n_heads, sizeof(ops_real));
        a->k_rstd = attn_carve(sc, N * c->n_kv_heads, sizeof(ops_real));
    }
}

static void attn_dense_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                                 int B, int T) {
    attn_dense_carve(c, a, ops_act_size(gpu), &act_mem, &stat_mem, B, T);
}

static size_t attn_dense_scratch_elems(const AttnConfig *c, int B, int T) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    return N * (2 * qd + 2 * kvd);
}

/* datt, dq, dk, dv; advances the cursor */
static void attn_dense_scratch_carve(const AttnConfig *c, AttnScratch *s, size_t es, char **cur, int B, int T) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    s->datt = attn_carve(cur, N * qd, es);
    s->dq = attn_carve(cur, N * qd, es);
    s->dk = attn_carve(cur, N * kvd, es);
    s->dv = attn_carve(cur, N * kvd, es);
}

static void attn_dense_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    attn_dense_scratch_carve(c, s, ops_act_size(gpu), &mem, B, T);
}

/* the GPU computes q, k, v with one GEMM into a fused buffer (ops_qkv_scratch) and splits
   it; the CPU reference keeps three (no scratch to hold), and QK-norm keeps three too (its
   norms sit between the projection and the rotation) */
static int attn_qkv_fused(const Gpu *gpu, const AttnConfig *c) { return gpu != NULL && !c->qk_norm; }

/* x -> q, k, v (QK-norm, RoPE) into a->q, a->k, a->v */
static void attn_dense_project(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, int B,
                               int T) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (attn_qkv_fused(gpu, c)) {
        /* q_proj, k_proj, v_proj are consecutive [out, in] blocks: one [(H + 2 KV) hd, d]
           weight, one GEMM (x read once, one launch), then one pass splits and rotates */
        int P = (H + 2 * KV) * hd;
        void *qkv = ops_qkv_scratch(gpu, (size_t)N * P * ops_act_size(gpu));
        op_matmul_forward(gpu, qkv, x, attn_wat(gpu, w, p[0].offset), N, d, P);
        op_qkv_split(gpu, a->q, a->k, a->v, qkv, N, T, H, KV, hd, c->rope_theta);
        return;
    }
    void *q = c->qk_norm ? a->q_raw : a->q, *k = c->qk_norm ? a->k_raw : a->k;
    op_matmul_forward(gpu, q, x, attn_wat(gpu, w, p[0].offset), N, d, H * hd);
    op_matmul_forward(gpu, k, x, attn_wat(gpu, w, p[1].offset), N, d, KV * hd);
    op_matmul_forward(gpu, a->v, x, attn_wat(gpu, w, p[2].offset), N, d, KV * hd);
    if (c->qk_norm) { /* each head's vector is one RMSNorm row of length hd */
        op_rmsnorm_forward(gpu, a->q, a->q_rstd, a->q_raw, attn_wat(gpu, w, p[4].offset), N * H, hd, c->norm_eps);
        op_rmsnorm_forward(gpu, a->k, a->k_rstd, a->k_raw, attn_wat(gpu, w, p[5].offset), N * KV, hd, c->norm_eps);
    }
    op_rope_forward(gpu, a->q, N, T, H, hd, c->rope_theta);
    op_rope_forward(gpu, a->k, N, T, KV, hd, c->rope_theta);
}

/* from s->dq, s->dk, s->dv (the core's gradients) to dx (=) and the projections' dw */
static void attn_dense_project_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a,
                                        AttnScratch *s, const void *x, void *dx, int B, int T) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (attn_qkv_fused(gpu, c)) { /* the forward's fused projection, backward */
        int P = (H + 2 * KV) * hd;
        void *dqkv = ops_qkv_scratch(gpu, (size_t)N * P * ops_act_size(gpu));
        op_qkv_merge(gpu, dqkv, s->dq, s->dk, s->dv, N, T, H, KV, hd, c->rope_theta);
        op_matmul_backward(gpu, dx, dw + p[0].offset, dqkv, x, attn_wat(gpu, w, p[0].offset), N, d, P, 0);
        return;
    }
    op_rope_backward(gpu, s->dq, N, T, H, hd, c->rope_theta);
    op_rope_backward(gpu, s->dk, N, T, KV, hd, c->rope_theta);
    /* v first: its gradient buffer then serves as scratch for k's QK-norm backward */
    op_matmul_backward(gpu, dx, dw + p[2].offset, s->dv, x, attn_wat(gpu, w, p[2].offset), N, d, KV * hd, 0);
    void *dq = s->dq, *dk = s->dk;
    if (c->qk_norm) {
        op_rmsnorm_backward(gpu, s->datt, dw + p[4].offset, s->dq, a->q_raw, attn_wat(gpu, w, p[4].offset),
                            a->q_rstd, N * H, hd, 0);
        op_rmsnorm_backward(gpu, s->dv, dw + p[5].offset, s->dk, a->k_raw, attn_wat(gpu, w, p[5].offset),
                            a->k_rstd, N * KV, hd, 0);
        dq = s->datt;
        dk = s->dv;
    }
    op_matmul_backward(gpu, dx, dw + p[0].offset, dq, x, attn_wat(gpu, w, p[0].offset), N, d, H * hd, 1);
    op_matmul_backward(gpu, dx, dw + p[1].offset, dk, x, attn_wat(gpu, w, p[1].offset), N, d, KV * hd, 1);
}

/* attn_dropout's mask for this forward: NULL when off (evaluation, generation, or p 0) */
static const OpsDropout *attn_dense_dropout(const AttnConfig *c, AttnActs *a) {
    if (!a->drop_on || c->attn_dropout <= 0) return NULL;
    a->drop.thresh = ops_drop_thresh(c->attn_dropout / 1000.0);
    a->drop.scale = 1000.0f / (float)(1000 - c->attn_dropout);
    return &a->drop;
}

/* The softmax attention core, shared with the rooms built around it (MLA, MGA): out = softmax(q
   k^T) v under c's window or pattern, with attn_dropout on P in training (ops.h's op_attention_*;
   one op for the window and the pattern when dropping). q, k, v of H, KV heads of width hd. */
static void attn_softmax_core_forward(Gpu *gpu, const AttnConfig *c, AttnActs *a, void *att, const void *q,
                                      const void *k, const void *v, int B, int T, int H, int KV, int hd) {
    OpsPattern pat;
    const OpsDropout *drop = attn_dense_dropout(c, a);
    if (drop) {
        if (!attn_pattern_of(c, &pat)) pat = (OpsPattern){c->window, 0, 0, 0, 0};
        op_attention_dropout_forward(gpu, att, a->lse, q, k, v, B, T, H, KV, hd, &pat, drop);
    } else if (attn_pattern_of(c, &pat))
        op_attention_pattern_forward(gpu, att, a->lse, q, k, v, B, T, H, KV, hd, &pat);
    else
        op_attention_forward(gpu, att, a->lse, q, k, v, B, T, H, KV, hd, c->window);
}

/* its backward: the forward's mask drawn again (att and a->lse the forward's) */
static void attn_softmax_core_backward(Gpu *gpu, const AttnConfig *c, AttnActs *a, void *dq, void *dk, void *dv,
                                       const void *datt, const void *att, const void *q, const void *k, const void *v,
                                       int B, int T, int H, int KV, int hd) {
    OpsPattern pat;
    const OpsDropout *drop = attn_dense_dropout(c, a);
    if (drop) {
        if (!attn_pattern_of(c, &pat)) pat = (OpsPattern){c->window, 0, 0, 0, 0};
        op_attention_dropout_backward(gpu, dq, dk, dv, datt, att, a->lse, q, k, v, B, T, H, KV, hd, &pat, drop);
    } else if (attn_pattern_of(c, &pat))
        op_attention_pattern_backward(gpu, dq, dk, dv, datt, att, a->lse, q, k, v, B, T, H, KV, hd, &pat);
    else
        op_attention_backward(gpu, dq, dk, dv, datt, att, a->lse, q, k, v, B, T, H, KV, hd, c->window);
}

static int attn_dense_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                              int B, int T) {
    int N = B * T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    attn_dense_project(gpu, c, w, a, x, B, T);
    attn_softmax_core_forward(gpu, c, a, a->att, a->q, a->k, a->v, B, T, H, KV, hd);
    op_matmul_forward(gpu, out, a->att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, H * hd, c->d_model);
    return 0;
}

static int attn_dense_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                               const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    size_t oo = attn_spec_off(c, "o_proj.weight");
    op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, attn_wat(gpu, w, oo), N, H * hd, c->d_model, 0);
    attn_softmax_core_backward(gpu, c, a, s->dq, s->dk, s->dv, s->datt, a->att, a->q, a->k, a->v, B, T, H, KV, hd);
    attn_dense_project_backward(gpu, c, w, dw, a, s, x, dx, B, T);
    return 0;
}

/* ---- decoding: K and V of the KV heads per position; a ring of W under a plain window ---- */

/* What a pattern can still see: the first G positions for ever, and the last W (dilated: W*R)
   positions; strided keys recur through the whole prefix, so a stride keeps every position. The
   cache holds G slots then a ring of the recent span (slots() of them in all). */
static int attn_dense_dec_ring(const AttnConfig *c, int cap, int *G) {
    OpsPattern pat;
    *G = 0;
    if (!attn_pattern_of(c, &pat)) return attn_dec_slots(c->window, cap);
    if (c->stride > 0) return cap;
    long span = (long)c->window * (c->dilation >= 2 ? c->dilation : 1);
    if (c->global_tokens + span >= cap) return cap;
    *G = c->global_tokens;
    return (int)span;
}
static int attn_dense_dec_slots(const AttnConfig *c, int cap) {
    int G, ring = attn_dense_dec_ring(c, cap, &G);
    return G + ring;
}
/* the slot of position p */
static int attn_dense_dec_slot(const AttnConfig *c, int cap, int p) {
    int G, ring = attn_dense_dec_ring(c, cap, &G);
    return p < G ? p : G + (p - G) % ring;
}

static size_t attn_dense_cache_bytes(const AttnConfig *c, int T) {
    return (size_t)attn_dense_dec_slots(c, T) * 2 * c->n_kv_heads * c->head_dim * sizeof(ops_real);
}

/* the new token's q [B, H*hd] and its k, v written into the cache (DSA shares it); the cache is
   [B][slots][k | v] with KV*hd each */
static void attn_dense_dec_project(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *q,
                                   ops_real *kt, ops_real *vt) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    attn_param_specs(c, p);
    int B = kc->B, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, kvd = KV * hd;
    int S = attn_dense_dec_slots(c, kc->cap), pos = kc->pos;
    op_matmul_forward(NULL, q, x, w + p[0].offset, B, d, H * hd);
    op_matmul_forward(NULL, kt, x, w + p[1].offset, B, d, kvd);
    op_matmul_forward(NULL, vt, x, w + p[2].offset, B, d, kvd);
    if (c->qk_norm) { /* in place: RMSNorm reads each row before writing it */
        ops_real *rs = attn_tmp((size_t)B * H);
        if (rs) {
            op_rmsnorm_forward(NULL, q, rs, q, w + p[4].offset, B * H, hd, c->norm_eps);
            op_rmsnorm_forward(NULL, kt, rs, kt, w + p[5].offset, B * KV, hd, c->norm_eps);
        }
        free(rs);
    }
    for (int b = 0; b < B; b++) {
        attn_rope_at(q + (size_t)b * H * hd, H, hd, hd, c->rope_theta, pos);
        attn_rope_at(kt + (size_t)b * kvd, KV, hd, hd, c->rope_theta, pos);
        ops_real *slot = (ops_real *)kc->mem + ((size_t)b * S + attn_dense_dec_slot(c, kc->cap, pos)) * 2 * kvd;
        memcpy(slot, kt + (size_t)b * kvd, sizeof(ops_real) * kvd);
        memcpy(slot + kvd, vt + (size_t)b * kvd, sizeof(ops_real) * kvd);
    }
}

/* att [B, H*hd]: head h of sequence b over the cached positions pos_list[0..n) */
static void attn_dense_dec_attend(const AttnConfig *c, AttnCache *kc, const ops_real *q, ops_real *att, int b,
                                  const int *pos_list, int n, const ops_real **ks, const ops_real **vs, ops_real *p) {
    int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, kvd = KV * hd, S = attn_dense_dec_slots(c, kc->cap);
    for (int h = 0; h < H; h++) {
        int g = h / (H / KV);
        for (int j = 0; j < n; j++) {
            const ops_real *slot = (const ops_real *)kc->mem + ((size_t)b * S + attn_dense_dec_slot(c, kc->cap, pos_list[j])) * 2 * kvd;
            ks[j] = slot + (size_t)g * hd;
            vs[j] = slot + kvd + (size_t)g * hd;
        }
        attn_dec_attend(att + ((size_t)b * H + h) * hd, q + ((size_t)b * H + h) * hd, ks, vs, n, hd, hd,
                        1 / sqrt((ops_real)hd), p);
    }
}

static int attn_dense_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    int B = kc->B, H = c->n_heads, hd = c->head_dim, kvd = c->n_kv_heads * hd, pos = kc->pos, n = 0;
    ops_real *q = attn_tmp((size_t)B * H * hd), *kt = attn_tmp((size_t)B * kvd), *vt = attn_tmp((size_t)B * kvd);
    ops_real *att = attn_tmp((size_t)B * H * hd), *p = attn_tmp(pos + 1);
    int *pl = malloc(sizeof(int) * (pos + 1));
    const ops_real **ks = malloc(sizeof *ks * (pos + 1)), **vs = malloc(sizeof *vs * (pos + 1));
    int rc = q && kt && vt && att && p && pl && ks && vs ? 0 : -1;
    if (!rc) {
        OpsPattern pat;
        int patterned = attn_pattern_of(c, &pat);
        for (int s = patterned ? 0 : attn_first_key(pos, c->window); s <= pos; s++)
            if (!patterned || ops_pattern_visible(&pat, pos, s)) pl[n++] = s;
        attn_dense_dec_project(c, w, kc, x, q, kt, vt);
        for (int b = 0; b < B; b++) attn_dense_dec_attend(c, kc, q, att, b, pl, n, ks, vs, p);
        op_matmul_forward(NULL, out, att, w + attn_spec_off(c, "o_proj.weight"), B, H * hd, c->d_model);
    }
    free(q); free(kt); free(vt); free(att); free(p); free(pl); free(ks); free(vs);
    return rc;
}

/* the prompt through the training forward (attn_forward: the flash core over all T tokens),
   then its rotated K and V rows into the cache (a ring keeps the last ones) */
static int attn_dense_prefill(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out,
                              int T) {
    int B = kc->B, kvd = c->n_kv_heads * c->head_dim, S = attn_dense_dec_slots(c, kc->cap);
    size_t ae, se;
    attn_act_sizes(c, B, T, &ae, &se);
    ops_real *am = attn_tmp(ae), *sm = attn_tmp(se);
    AttnActs a;
    int rc = am && sm ? 0 : -1;
    if (!rc) {
        attn_acts_bind(c, &a, NULL, am, sm, B, T);
        rc = attn_forward(NULL, c, w, &a, x, out, B, T);
    }
    for (int b = 0; b < B && !rc; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            ops_real *slot = (ops_real *)kc->mem + ((size_t)b * S + attn_dense_dec_slot(c, kc->cap, t)) * 2 * kvd;
            memcpy(slot, (const ops_real *)a.k + n * kvd, sizeof(ops_real) * kvd);
            memcpy(slot + kvd, (const ops_real *)a.v + n * kvd, sizeof(ops_real) * kvd);
        }
    free(am);
    free(sm);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h's kernels): the same slots in bf16, [B][S][k | v] ---- */

/* the kernels' view of the cache and of the mask */
static void attn_dense_gpu_shape(const AttnConfig *c, int cap, int *S, int *G, int *ring, int *pb) {
    *ring = attn_dense_dec_ring(c, cap, G);
    *S = *G + *ring;
    *pb = c->pattern_block > 0 ? c->pattern_block : 128; /* ops.h's default block */
}

static size_t attn_dense_gpu_cache_bytes(const AttnConfig *c, int T) {
    return (size_t)attn_dense_dec_slots(c, T) * 2 * c->n_kv_heads * c->head_dim * 2; /* bf16 */
}

static size_t attn_dense_gpu_align(size_t n) { return (n + 255) & ~(size_t)255; }

/* the step's scratch: fused q|k|v [B, (H + 2 KV) hd] bf16, q [B, H*hd] fp32, att [B, H*hd] bf16,
   then the split-K partials [B][H][chunks][hd + 2] fp32 */
static size_t attn_dense_gpu_scratch_parts(const AttnConfig *c, int B, int cap, size_t off[4]) {
    int S, G, ring, pb, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    attn_dense_gpu_shape(c, cap, &S, &G, &ring, &pb);
    size_t chunks = ((size_t)S + 127) / 128; /* attn/decode.cu.h's DEC_CHUNK */
    size_t sz[4] = {(size_t)B * (H + 2 * KV) * hd * 2, (size_t)B * H * hd * 4, (size_t)B * H * hd * 2,
                    (size_t)B * H * chunks * (hd + 2) * 4};
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        off[i] = total;
        total += attn_dense_gpu_align(sz[i]);
    }
    return total;
}

static size_t attn_dense_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t off[4];
    return attn_dense_gpu_scratch_parts(c, B, cap, off);
}

#ifndef ABLATE_NO_CUDA
static GpuDecShape attn_dense_gpu_dshape(const AttnConfig *c, int cap) {
    GpuDecShape sh;
    memset(&sh, 0, sizeof sh);
    sh.H = c->n_heads;
    sh.KV = c->n_kv_heads;
    sh.hd = c->head_dim;
    attn_dense_gpu_shape(c, cap, &sh.S, &sh.G, &sh.ring, &sh.block);
    sh.window = c->window;
    sh.global = c->global_tokens;
    sh.stride = c->stride;
    sh.dilation = c->dilation;
    sh.theta = c->rope_theta;
    sh.eps = c->norm_eps;
    return sh;
}
#endif

/* one token: the fused projection (one GEMM, N = B), QK-norm and RoPE at *d_pos with k, v into
   the slot, split-K attention over the filled slots, o_proj. All queued; nothing read back. */
static int attn_dense_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                 void *out) {
#ifndef ABLATE_NO_CUDA
    AttnParamSpec p[ATTN_MAX_PARAMS];
    attn_param_specs(c, p);
    int B = k->B, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    size_t off[4];
    attn_dense_gpu_scratch_parts(c, B, k->cap, off);
    char *sc = (char *)k->scratch;
    void *qkv = sc + off[0], *att = sc + off[2];
    float *q = (float *)(void *)(sc + off[1]), *part = (float *)(void *)(sc + off[3]);
    GpuDecShape sh = attn_dense_gpu_dshape(c, k->cap);
    op_matmul_forward(gpu, qkv, x, attn_wat(gpu, w, p[0].offset), B, d, (H + 2 * KV) * hd);
    gpu_dec_qkv(gpu, &sh, qkv, q, k->mem, c->qk_norm ? attn_wat(gpu, w, p[4].offset) : NULL,
                c->qk_norm ? attn_wat(gpu, w, p[5].offset) : NULL, k->d_pos, B);
    gpu_dec_attend(gpu, &sh, att, q, k->mem, part, k->d_pos, B);
    op_matmul_forward(gpu, out, att, attn_wat(gpu, w, p[3].offset), B, H * hd, d);
    return 0;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out;
    return -1; /* the CPU-only build has no GPU */
#endif
}

/* the prompt through the training forward (the flash kernels) on activations allocated here,
   then the rotated k, v rows into their slots */
static int attn_dense_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                  void *out, int T) {
#ifndef ABLATE_NO_CUDA
    int B = k->B;
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, c, B, T, &pf);
    int rc = attn_forward(gpu, c, w, &pf.a, x, out, B, T);
    if (!rc) {
        GpuDecShape sh = attn_dense_gpu_dshape(c, k->cap);
        gpu_dec_fill(gpu, &sh, k->mem, pf.a.k, pf.a.v, B, T);
    }
    attn_gpu_prefill_end(gpu, &pf);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1;
#endif
}

#ifndef ABLATE_NO_CUDA
ATTNDEF int attn_gpu_decode_dense(const Gpu *gpu, const AttnGpuCache *k, const void *w, AttnGpuDenseStep *out) {
    const AttnConfig *c = &k->c;
    const AttnMech *m = attn_mech(c->kind);
    if (!m || strcmp(m->room, "dense")) return -1;
    AttnParamSpec p[ATTN_MAX_PARAMS];
    attn_param_specs(c, p);
    out->sh = attn_dense_gpu_dshape(c, k->cap);
    out->wqkv = attn_wat(gpu, w, p[0].offset);
    out->wo = attn_wat(gpu, w, p[3].offset);
    out->qn = c->qk_norm ? attn_wat(gpu, w, p[4].offset) : NULL;
    out->kn = c->qk_norm ? attn_wat(gpu, w, p[5].offset) : NULL;
    return 0;
}
#endif

/* the attention kernels' modules for gpu_kernel_prewarm: the pattern or window's */
/* the modules the softmax core (attn_softmax_core_forward / _backward) compiles for H, KV heads
   of width hd under c's window or pattern, for gpu_kernel_prewarm: the dense room's list, and
   MLA's and MGA's, which run the same core */
static int attn_softmax_core_kernels(const Gpu *gpu, const AttnConfig *c, int T, int H, int KV, int hd,
                                     struct GpuKernelSpec *out, int max) {
#ifndef ABLATE_NO_CUDA
    OpsPattern pat;
    if (!attn_pattern_of(c, &pat)) {
        memset(&pat, 0, sizeof pat);
        pat.window = c->window;
    }
    return gpu_attention_kernels(gpu, T, H, KV, hd, &pat, out, max);
#else
    (void)gpu; (void)c; (void)T; (void)H; (void)KV; (void)hd; (void)out; (void)max;
    return 0;
#endif
}

static int attn_dense_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                 int max) {
    (void)B;
    return attn_softmax_core_kernels(gpu, c, T, c->n_heads, c->n_kv_heads, c->head_dim, out, max);
}

static const AttnMech attn_room_dense = {
    "dense", attn_dense_resolve, attn_dense_gpu_supported, attn_dense_param_specs, attn_dense_kv_bytes, NULL, attn_dense_flops, NULL,
    attn_dense_act_sizes, attn_dense_acts_bind, attn_dense_scratch_elems, attn_dense_scratch_bind,
    attn_dense_forward, attn_dense_backward, NULL, attn_dense_cache_bytes, attn_dense_decode, attn_dense_prefill,
    attn_dense_gpu_cache_bytes, attn_dense_gpu_scratch_bytes, NULL, attn_dense_gpu_decode, attn_dense_gpu_prefill,
    attn_dense_gpu_kernels,
};

#endif /* ATTN_DENSE_DONE */
