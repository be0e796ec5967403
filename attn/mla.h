/* attn/mla.h - multi-head latent attention (DeepSeek-V2, arXiv 2405.04434). A room of attn.h
   (include attn.h, not this file). Runs on the flash core of attn/dense.cu.h through ops.h.

   Sizes: latent r = latent_dim (default d/2), query
   latent r_q = q_latent_dim (0 = no query latent), q.k head dim hd = head_dim (default d/H)
   = nope + rope with rope = rope_dim (default hd/2, even), v head dim dv = v_head_dim
   (default hd). (DeepSeek's qk_nope_head_dim = hd - rope, qk_rope_head_dim = rope,
   kv_lora_rank = r, q_lora_rank = r_q.) Per token x:
     q      = W_qb RMSNorm(W_qa x)   (r_q > 0)  or  W_q x;  per head q_h = [q_nope_h | q_pe_h]
     [c|kr] = W_kva x                c: latent [r], kr: one rotary key [rope] shared by all heads
     cn     = RMSNorm(c)             the KV cache holds cn and RoPE(kr): (r + rope) per token
     [k_nope_h | v_h] = W_kvb,h cn   per head [nope], [dv]
     k_h    = [k_nope_h | RoPE(kr)],  q_h = [q_nope_h | RoPE(q_pe_h)]
     o_h    = softmax_s(q_h . k_h,s / sqrt(hd)) v_h,s;   out = W_o [o_1 .. o_H]
   Parameter names (DeepSeek-V2 in Hugging Face): q_a_proj [r_q, d], q_a_layernorm [r_q],
   q_b_proj [H*hd, r_q] (or q_proj [H*hd, d] without the query latent),
   kv_a_proj_with_mqa [r + rope, d], kv_a_layernorm [r], kv_b_proj [H*(nope + dv), r],
   o_proj [d, H*dv]. Training runs the attention core with H heads of width P = max(hd, dv):
   the narrower of q/k and v is zero-padded (q scaled by sqrt(P/hd) when q/k are padded, so
   the core's 1/sqrt(P) is 1/sqrt(hd)), and o_h is sliced back to dv. The absorbed inference
   form (attn_mla_absorbed_forward) never forms k or v: q~_h = W_UK,h^T q_nope_h scores
   against cn directly, and W_o,h W_UV,h maps the attended latent to the output; it equals
   the training form (tested to 1e-10 in double). The training form runs on the GPU too
   (generic ops: op_copy_cols / op_sum_cols gather and scatter the column blocks,
   op_rope_part_* rotates the rotary part of each head in place); there the core's width
   P = max(head_dim, v_head_dim) must be a multiple of 8 from 32 to 256 (the flash kernels'
   widths). The absorbed form serves decoding: the
   CPU's (attn_mla_absorbed_forward, the decode slots) and the GPU's (attn/decode.cu.h).
   Options: latent_dim, q_latent_dim, rope_dim, v_head_dim (below); window as for every
   mechanism.
   QK-NORM. DeepSeek's latent norms are always here: the KV latent's (kv_a_layernorm) in every
   MLA, the query latent's (q_a_layernorm) whenever q_latent_dim > 0. They do not bound the
   logits (the up-projections rescale freely), which is what QK-norm is for; so qk_norm = 1
   adds what it adds to the dense mechanisms, one RMSNorm over each head's whole q and k with
   learned [hd] scales q_norm, k_norm (shared by the heads):
     q_h <- RMSNorm_q([q_nope_h | RoPE(q_pe_h)]),  k_h <- RMSNorm_k([k_nope_h | RoPE(kr)])
   applied after the rotation (the rotary key is shared and rotated once; the rotation keeps
   each pair's norm, so only the scales' pairing differs from norming before it). It needs
   v_head_dim <= head_dim (q and k unpadded in the core), and has no absorbed form (the norm
   needs each head's key): attn_mla_absorbed_forward returns -1 for it, the CPU decoder caches
   every head's normed key and value (attn_mla_decode_expanded: H (qk + v) per position where
   the absorbed form keeps r + rope), and the GPU decoder does the same in the dense room's cache
   layout and kernels (attn_mla_gpu_decode_expanded: H 2 qk per position, the values padded).
*/
#ifndef ATTN_MLA_H
#define ATTN_MLA_H

#define ATTN_OPTIONS_mla(X)                                                                                   \
    X(mla, latent_dim, "latent_dim", 0, ATTN_MAX_WIDTH, 0, "mla: KV latent (default d_model/2)")             \
    X(mla, q_latent_dim, "q_latent_dim", 0, ATTN_MAX_WIDTH, 0, "mla: query latent (0: none)")                \
    X(mla, rope_dim, "rope_dim", 0, ATTN_MAX_WIDTH, 0, "mla: rotary part of the q.k head dim (default head_dim/2)") \
    X(mla, v_head_dim, "v_head_dim", 0, ATTN_MAX_WIDTH, 0, "mla: value head dim (default head_dim)")
/* the latents (q, k, v, att are [N, H, P] here, P = max(hd, dv)); att_v: o_proj's input when
   dv < P */
#define ATTN_ACTS_mla void *lat_q, *lat_qn, *lat_kv, *lat_kvn, *att_v; ops_real *lat_q_rstd, *lat_kv_rstd;
/* kvf: o_proj's input gradient, then kv_b's output gradient; lat_a, lat_b: latent gradients;
   kva: kv_a's output gradient */
#define ATTN_SCRATCH_mla void *kvf, *lat_a, *lat_b, *kva;

#endif /* ATTN_MLA_H */

#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_MLA_DONE)
#define ATTN_MLA_DONE

/* MLA widths: q.k head dim, its non-rotary part, v head dim, and the core's padded width */
typedef struct { int qk, nope, rope, v, P, r, rq; } MlaDims;
static MlaDims mla_dims(const AttnConfig *c) {
    MlaDims m = {c->head_dim, c->head_dim - c->rope_dim, c->rope_dim, c->v_head_dim, 0,
                 c->latent_dim, c->q_latent_dim};
    m.P = m.qk > m.v ? m.qk : m.v;
    return m;
}

static int attn_mla_resolve(AttnConfig *c, char *err, size_t errlen) {
    c->n_kv_heads = c->n_heads; /* keys and values come per head from the shared latent */
    if (c->latent_dim == 0) c->latent_dim = c->d_model / 2 > 0 ? c->d_model / 2 : 1;
    if (c->rope_dim == 0) c->rope_dim = (c->head_dim / 2) & ~1;
    if (c->v_head_dim == 0) c->v_head_dim = c->head_dim;
    if (c->latent_dim < 1 || c->q_latent_dim < 0 || c->v_head_dim < 1) {
        snprintf(err, errlen, "mla latent %d, q_latent %d, v_dim %d: expected latent >= 1, "
                 "q_latent >= 0 (0 = none), v_dim >= 1", c->latent_dim, c->q_latent_dim, c->v_head_dim);
        return -1;
    }
    if (c->rope_dim < 2 || c->rope_dim % 2 || c->rope_dim >= c->head_dim) {
        snprintf(err, errlen, "mla rope_dim %d must be even, >= 2 and < head_dim %d "
                 "(head_dim = nope + rope)", c->rope_dim, c->head_dim);
        return -1;
    }
    if (c->qk_norm && c->v_head_dim > c->head_dim) {
        snprintf(err, errlen, "mla qk_norm needs v_head_dim %d <= head_dim %d (the normed q and k unpadded)",
                 c->v_head_dim, c->head_dim);
        return -1;
    }
    return 0;
}

static int attn_mla_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    MlaDims m = mla_dims(c);
    /* the core runs at P = max(qk, v): the narrower is zero-padded to it */
    char what[64];
    snprintf(what, sizeof what, "max(head_dim %d, v_head_dim %d) =", m.qk, m.v);
    return attn_gpu_width_check("mla", what, m.P, err, errlen);
}

static int attn_mla_param_specs(const AttnConfig *c, AttnParamSpec *p) { /* DeepSeek-V2's module order */
    size_t off = 0;
    int n = 0, d = c->d_model, H = c->n_heads;
    MlaDims m = mla_dims(c);
    if (m.rq > 0) {
        attn_spec_set(&p[n++], "q_a_proj.weight", &off, m.rq, d);
        attn_spec_set(&p[n++], "q_a_layernorm.weight", &off, m.rq, 0);
        attn_spec_set(&p[n++], "q_b_proj.weight", &off, H * m.qk, m.rq);
    } else {
        attn_spec_set(&p[n++], "q_proj.weight", &off, H * m.qk, d);
    }
    attn_spec_set(&p[n++], "kv_a_proj_with_mqa.weight", &off, m.r + m.rope, d);
    attn_spec_set(&p[n++], "kv_a_layernorm.weight", &off, m.r, 0);
    attn_spec_set(&p[n++], "kv_b_proj.weight", &off, H * (m.nope + m.v), m.r);
    attn_spec_set(&p[n++], "o_proj.weight", &off, d, H * m.v);
    p[n - 1].is_output_proj = 1;
    if (c->qk_norm) {
        attn_spec_set(&p[n++], "q_norm.weight", &off, m.qk, 0);
        attn_spec_set(&p[n++], "k_norm.weight", &off, m.qk, 0);
    }
    return n;
}

/* the cache holds the normed latent and the one rotary key; the absorbed form needs nothing else */
static size_t attn_mla_kv_bytes(const AttnConfig *c, int bytes_per_elem) {
    return (size_t)(c->latent_dim + c->rope_dim) * bytes_per_elem;
}

static double attn_mla_flops(const AttnConfig *c, int T) {
    MlaDims m = mla_dims(c);
    return 2.0 * (double)attn_param_count(c) + 2.0 * c->n_heads * (m.qk + m.v) * attn_dense_mean_keys(c, T);
}

/* one function lays out the activations, run with base 0 to measure */
static void attn_mla_layout(const AttnConfig *c, AttnActs *a, char **cur, char **sc, size_t es, int B, int T) {
    size_t N = (size_t)B * T, H = c->n_heads, rs = sizeof(ops_real);
    MlaDims m = mla_dims(c);
    a->q = attn_carve(cur, N * H * m.P, es);
    a->k = attn_carve(cur, N * H * m.P, es);
    a->v = attn_carve(cur, N * H * m.P, es);
    /* att and att_v (contiguous) double as the forward's scratch before the core runs:
       the unpadded query, the kv_a output, the kv_b output (mla_forward) */
    size_t fs = H * m.qk, kw = H * (m.nope + m.v), av = H * m.v;
    if ((size_t)(m.r + m.rope) > fs) fs = m.r + m.rope;
    if (kw > fs) fs = kw;
    if (fs > H * m.P + av) av = fs - H * m.P;
    a->att = attn_carve(cur, N * H * m.P, es);
    a->att_v = attn_carve(cur, N * av, es);
    a->lse = attn_carve(sc, (size_t)B * H * T, rs);
    if (m.rq) {
        a->lat_q = attn_carve(cur, N * m.rq, es);
        a->lat_qn = attn_carve(cur, N * m.rq, es);
        a->lat_q_rstd = attn_carve(sc, N, rs);
    }
    a->lat_kv = attn_carve(cur, N * m.r, es);
    a->lat_kvn = attn_carve(cur, N * m.r, es);
    a->lat_kv_rstd = attn_carve(sc, N, rs);
    if (c->qk_norm) { /* q, k before their norm (P = qk here) */
        a->q_raw = attn_carve(cur, N * H * m.P, es);
        a->k_raw = attn_carve(cur, N * H * m.P, es);
        a->q_rstd = attn_carve(sc, N * H, rs);
        a->k_rstd = attn_carve(sc, N * H, rs);
    }
}

static void attn_mla_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    AttnActs a;
    char *cur = NULL, *sc = NULL;
    attn_mla_layout(c, &a, &cur, &sc, 1, B, T);
    *act_elems = (size_t)cur;
    *stat_elems = (size_t)sc / sizeof(ops_real);
}

static void attn_mla_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                               int B, int T) {
    attn_mla_layout(c, a, &act_mem, &stat_mem, ops_act_size(gpu), B, T);
}

/* MLA's backward scratch: datt, dq, dk, dv [N, H, P]; kvf [N, H*(nope + v)] (o_proj's
   input gradient, then kv_b's output gradient); lat_a, lat_b [N, max(r, r_q)] (latent
   gradients); kva [N, r + rope] (kv_a's output gradient). Base 0 measures it. */
static void mla_scratch_layout(const AttnConfig *c, AttnScratch *s, char *cur, size_t es, int B, int T) {
    MlaDims m = mla_dims(c);
    size_t N = (size_t)B * T, NH = N * c->n_heads, rl = m.r > m.rq ? m.r : m.rq;
    s->datt = attn_carve(&cur, NH * m.P, es);
    s->dq = attn_carve(&cur, NH * m.P, es);
    s->dk = attn_carve(&cur, NH * m.P, es);
    s->dv = attn_carve(&cur, NH * m.P, es);
    s->kvf = attn_carve(&cur, NH * (m.nope + m.v), es);
    s->lat_a = attn_carve(&cur, N * rl, es);
    s->lat_b = attn_carve(&cur, N * rl, es);
    s->kva = attn_carve(&cur, N * (m.r + m.rope), es);
}

static size_t attn_mla_scratch_elems(const AttnConfig *c, int B, int T) {
    AttnScratch s;
    mla_scratch_layout(c, &s, NULL, 1, B, T);
    return (size_t)(char *)s.kva + (size_t)B * T * (c->latent_dim + c->rope_dim);
}

static void attn_mla_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    mla_scratch_layout(c, s, mem, ops_act_size(gpu), B, T);
}

/* the query before RoPE, qf [N, H*qk], through the query latent when there is one */
static void mla_query(Gpu *gpu, const AttnConfig *c, const void *w, const void *x, void *qf, void *lat_q,
                      void *lat_qn, ops_real *lat_q_rstd, int N) {
    MlaDims m = mla_dims(c);
    int H = c->n_heads, d = c->d_model;
    if (m.rq) {
        op_matmul_forward(gpu, lat_q, x, attn_wat(gpu, w, attn_spec_off(c, "q_a_proj.weight")), N, d, m.rq);
        op_rmsnorm_forward(gpu, lat_qn, lat_q_rstd, lat_q, attn_wat(gpu, w, attn_spec_off(c, "q_a_layernorm.weight")), N, m.rq,
                           c->norm_eps);
        op_matmul_forward(gpu, qf, lat_qn, attn_wat(gpu, w, attn_spec_off(c, "q_b_proj.weight")), N, m.rq, H * m.qk);
    } else {
        op_matmul_forward(gpu, qf, x, attn_wat(gpu, w, attn_spec_off(c, "q_proj.weight")), N, d, H * m.qk);
    }
}

/* the latent path: kva [N, r + rope] = W_kva x; lat [N, r] its latent columns, latn =
   RMSNorm(lat); the shared rotary key is rotated in place in kva's last rope columns */
static void mla_latent(Gpu *gpu, const AttnConfig *c, const void *w, const void *x, void *kva, void *lat,
                       void *latn, ops_real *lat_rstd, int N, int T) {
    MlaDims m = mla_dims(c);
    op_matmul_forward(gpu, kva, x, attn_wat(gpu, w, attn_spec_off(c, "kv_a_proj_with_mqa.weight")), N, c->d_model, m.r + m.rope);
    op_copy_cols(gpu, lat, m.r, kva, m.r + m.rope, N, m.r, 1, 0);
    op_rmsnorm_forward(gpu, latn, lat_rstd, lat, attn_wat(gpu, w, attn_spec_off(c, "kv_a_layernorm.weight")), N, m.r, c->norm_eps);
    op_rope_part_forward(gpu, attn_act_at(gpu, kva, m.r), N, T, 1, m.r + m.rope, m.rope, c->rope_theta);
}

/* o_proj's input: att itself when v fills the core's width, else its first v columns */
static void *mla_o_in(const AttnConfig *c, AttnActs *a) { MlaDims m = mla_dims(c); return m.v == m.P ? a->att : a->att_v; }

/* The training form on either path. q, k, v are [N, H, P]; att and att_v (contiguous, sized
   in attn_ext_layout) hold the temporaries until the core overwrites att. */
static void mla_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                        int B, int T) {
    MlaDims m = mla_dims(c);
    int N = B * T, H = c->n_heads, kw = m.nope + m.v;
    size_t NH = (size_t)N * H, es = ops_act_size(gpu);
    void *tmp = a->att, *q = c->qk_norm ? a->q_raw : a->q, *k = c->qk_norm ? a->k_raw : a->k, *v = a->v;
    double qs = sqrt((double)m.P / m.qk); /* with q/k zero-padded to P: the core's 1/sqrt(P) becomes 1/sqrt(qk) */
    if (m.qk < m.P) { ops_zero(gpu, q, NH * m.P * es); ops_zero(gpu, k, NH * m.P * es); }
    if (m.v < m.P) ops_zero(gpu, v, NH * m.P * es);
    /* query: [q_nope | q_pe] per head, scaled, then its rotary part rotated in place */
    if (m.qk == m.P) {
        mla_query(gpu, c, w, x, q, a->lat_q, a->lat_qn, a->lat_q_rstd, N);
    } else {
        mla_query(gpu, c, w, x, tmp, a->lat_q, a->lat_qn, a->lat_q_rstd, N);
        op_copy_cols(gpu, q, m.P, tmp, m.qk, NH, m.qk, qs, 0);
    }
    op_rope_part_forward(gpu, attn_act_at(gpu, q, m.nope), N, T, H, m.P, m.rope, c->rope_theta);
    /* the latent, and the one rotary key copied into every head's key */
    mla_latent(gpu, c, w, x, tmp, a->lat_kv, a->lat_kvn, a->lat_kv_rstd, N, T);
    for (int h = 0; h < H; h++)
        op_copy_cols(gpu, attn_act_at(gpu, k, (size_t)h * m.P + m.nope), (size_t)H * m.P, attn_act_at(gpu, tmp, m.r),
                     m.r + m.rope, N, m.rope, 1, 0);
    /* per-head k_nope and v from the normed latent */
    op_matmul_forward(gpu, tmp, a->lat_kvn, attn_wat(gpu, w, attn_spec_off(c, "kv_b_proj.weight")), N, m.r, H * kw);
    op_copy_cols(gpu, k, m.P, tmp, kw, NH, m.nope, 1, 0);
    op_copy_cols(gpu, v, m.P, attn_act_at(gpu, tmp, m.nope), kw, NH, m.v, 1, 0);
    if (c->qk_norm) { /* each head's rotated q and k, one RMSNorm row each */
        op_rmsnorm_forward(gpu, a->q, a->q_rstd, q, attn_wat(gpu, w, attn_spec_off(c, "q_norm.weight")), (int)NH, m.P,
                           c->norm_eps);
        op_rmsnorm_forward(gpu, a->k, a->k_rstd, k, attn_wat(gpu, w, attn_spec_off(c, "k_norm.weight")), (int)NH, m.P,
                           c->norm_eps);
        q = a->q;
        k = a->k;
    }
    attn_softmax_core_forward(gpu, c, a, a->att, q, k, v, B, T, H, H, m.P); /* window, attn_dropout */
    if (m.v < m.P) op_copy_cols(gpu, a->att_v, m.v, a->att, m.P, NH, m.v, 1, 0);
    op_matmul_forward(gpu, out, mla_o_in(c, a), attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, H * m.v, c->d_model);
}

static void mla_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                         const void *x, const void *dout, void *dx, int B, int T) {
    MlaDims m = mla_dims(c);
    int N = B * T, H = c->n_heads, d = c->d_model, kw = m.nope + m.v;
    size_t NH = (size_t)N * H, es = ops_act_size(gpu), oo = attn_spec_off(c, "o_proj.weight");
    size_t okvb = attn_spec_off(c, "kv_b_proj.weight");
    size_t okva = attn_spec_off(c, "kv_a_proj_with_mqa.weight"), okvn = attn_spec_off(c, "kv_a_layernorm.weight");
    double qs = sqrt((double)m.P / m.qk);
    void *datt = s->datt, *dq = s->dq, *dk = s->dk, *dv = s->dv, *kvf = s->kvf, *dkva = s->kva;
    if (m.v == m.P) {
        op_matmul_backward(gpu, datt, dw + oo, dout, mla_o_in(c, a), attn_wat(gpu, w, oo), N, H * m.v, d, 0);
    } else { /* the padding columns get no gradient */
        op_matmul_backward(gpu, kvf, dw + oo, dout, mla_o_in(c, a), attn_wat(gpu, w, oo), N, H * m.v, d, 0);
        ops_zero(gpu, datt, NH * m.P * es);
        op_copy_cols(gpu, datt, m.P, kvf, m.v, NH, m.v, 1, 0);
    }
    attn_softmax_core_backward(gpu, c, a, dq, dk, dv, datt, a->att, a->q, a->k, a->v, B, T, H, H, m.P);
    if (c->qk_norm) { /* through the norms: dq's into datt (free now: P = qk), then dk's into dq */
        size_t oqn = attn_spec_off(c, "q_norm.weight"), okn = attn_spec_off(c, "k_norm.weight");
        op_rmsnorm_backward(gpu, datt, dw + oqn, dq, a->q_raw, attn_wat(gpu, w, oqn), a->q_rstd, (int)NH, m.P, 0);
        op_rmsnorm_backward(gpu, dq, dw + okn, dk, a->k_raw, attn_wat(gpu, w, okn), a->k_rstd, (int)NH, m.P, 0);
        void *t = dq;
        dq = datt;
        dk = t;
    }
    /* query: dqf [N, H*qk] (dq itself when qk fills P), the rotary part through the inverse rotation */
    void *dqf = dq;
    if (m.qk < m.P) { dqf = datt; op_copy_cols(gpu, dqf, m.qk, dq, m.P, NH, m.qk, qs, 0); }
    op_rope_part_backward(gpu, attn_act_at(gpu, dqf, m.nope), N, T, H, m.qk, m.rope, c->rope_theta);
    /* keys and values: per-head parts to kv_b_proj, the shared rotary key summed over heads */
    op_copy_cols(gpu, kvf, kw, dk, m.P, NH, m.nope, 1, 0);
    op_copy_cols(gpu, attn_act_at(gpu, kvf, m.nope), kw, dv, m.P, NH, m.v, 1, 0);
    op_sum_cols(gpu, attn_act_at(gpu, dkva, m.r), m.r + m.rope, attn_act_at(gpu, dk, m.nope), (size_t)H * m.P, m.P, H, N, m.rope);
    op_rope_part_backward(gpu, attn_act_at(gpu, dkva, m.r), N, T, 1, m.r + m.rope, m.rope, c->rope_theta);
    op_matmul_backward(gpu, s->lat_a, dw + okvb, kvf, a->lat_kvn, attn_wat(gpu, w, okvb), N, m.r, H * kw, 0);
    op_rmsnorm_backward(gpu, s->lat_b, dw + okvn, s->lat_a, a->lat_kv, attn_wat(gpu, w, okvn), a->lat_kv_rstd, N, m.r, 0);
    op_copy_cols(gpu, dkva, m.r + m.rope, s->lat_b, m.r, N, m.r, 1, 0);
    op_matmul_backward(gpu, dx, dw + okva, dkva, x, attn_wat(gpu, w, okva), N, d, m.r + m.rope, 0);
    if (m.rq) {
        size_t oqa = attn_spec_off(c, "q_a_proj.weight"), oqn = attn_spec_off(c, "q_a_layernorm.weight"), oqb = attn_spec_off(c, "q_b_proj.weight");
        op_matmul_backward(gpu, s->lat_a, dw + oqb, dqf, a->lat_qn, attn_wat(gpu, w, oqb), N, m.rq, H * m.qk, 0);
        op_rmsnorm_backward(gpu, s->lat_b, dw + oqn, s->lat_a, a->lat_q, attn_wat(gpu, w, oqn), a->lat_q_rstd, N, m.rq, 0);
        op_matmul_backward(gpu, dx, dw + oqa, s->lat_b, x, attn_wat(gpu, w, oqa), N, d, m.rq, 1);
    } else {
        size_t oq = attn_spec_off(c, "q_proj.weight");
        op_matmul_backward(gpu, dx, dw + oq, dqf, x, attn_wat(gpu, w, oq), N, d, H * m.qk, 1);
    }
}

/* The absorbed form, as an inference kernel would run it: per head, the key up-projection
   W_UK,h [nope, r] moves to the query (q~ = W_UK,h^T q_nope, scored against the cached
   latent), and the value up-projection W_UV,h [dv, r] moves into the output projection
   (W_o,h W_UV,h [d, r] applied to the attended latent). Nothing per head is cached. */
ATTNDEF int attn_mla_absorbed_forward(const AttnConfig *c, const ops_real *w, const ops_real *x, ops_real *out, int B, int T) {
    if (c->qk_norm) return -1; /* no absorbed form: the norm needs each head's key */
    MlaDims m = mla_dims(c);
    int N = B * T, H = c->n_heads, d = c->d_model, kw = m.nope + m.v;
    const ops_real *wkvb = w + attn_spec_off(c, "kv_b_proj.weight"), *wo = w + attn_spec_off(c, "o_proj.weight");
    ops_real *qf = attn_tmp((size_t)N * H * m.qk), *qpe = attn_tmp((size_t)N * H * m.rope);
    ops_real *lq = attn_tmp((size_t)N * m.rq), *lqn = attn_tmp((size_t)N * m.rq), *lqr = attn_tmp(N);
    ops_real *lat = attn_tmp((size_t)N * m.r), *cn = attn_tmp((size_t)N * m.r), *lr = attn_tmp(N);
    ops_real *kva = attn_tmp((size_t)N * (m.r + m.rope)), *qa = attn_tmp((size_t)N * H * m.r);
    ops_real *wouv = attn_tmp((size_t)d * H * m.r), *ol = attn_tmp((size_t)N * H * m.r), *p = attn_tmp(T);
    int rc = !qf || !qpe || !lq || !lqn || !lqr || !lat || !cn || !lr || !kva || !qa || !wouv || !ol || !p ? -1 : 0;
    if (rc) goto end;
    ops_real *kpe = kva + m.r;
    mla_query(NULL, c, w, x, qf, lq, lqn, lqr, N);
    op_copy_cols(NULL, qpe, m.rope, qf + m.nope, m.qk, (size_t)N * H, m.rope, 1, 0);
    op_rope_forward(NULL, qpe, N, T, H, m.rope, c->rope_theta);
    mla_latent(NULL, c, w, x, kva, lat, cn, lr, N, T); /* the cache: cn and kpe (rows r + rope apart) */
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < m.nope; i++) {
                ops_real qn = qf[((size_t)n * H + h) * m.qk + i];
                const ops_real *uk = wkvb + ((size_t)h * kw + i) * m.r;
                ops_real *dst = qa + ((size_t)n * H + h) * m.r;
                for (int j = 0; j < m.r; j++) dst[j] += qn * uk[j];
            }
    for (int o = 0; o < d; o++)
        for (int h = 0; h < H; h++)
            for (int e = 0; e < m.v; e++) {
                ops_real wv = wo[(size_t)o * H * m.v + h * m.v + e];
                const ops_real *uv = wkvb + ((size_t)h * kw + m.nope + e) * m.r;
                ops_real *dst = wouv + (size_t)o * H * m.r + (size_t)h * m.r;
                for (int j = 0; j < m.r; j++) dst[j] += wv * uv[j];
            }
    ops_real scale = 1 / sqrt((ops_real)m.qk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                size_t n = (size_t)b * T + t;
                const ops_real *qt = qa + (n * H + h) * m.r, *qp = qpe + (n * H + h) * m.rope;
                int s0 = attn_first_key(t, c->window);
                ops_real mx = -INFINITY, sum = 0;
                for (int s = s0; s <= t; s++) {
                    size_t ns = (size_t)b * T + s;
                    ops_real sc = 0;
                    for (int j = 0; j < m.r; j++) sc += qt[j] * cn[ns * m.r + j];
                    for (int j = 0; j < m.rope; j++) sc += qp[j] * kpe[ns * (m.r + m.rope) + j];
                    p[s] = sc * scale;
                    if (p[s] > mx) mx = p[s];
                }
                for (int s = s0; s <= t; s++) { p[s] = exp(p[s] - mx); sum += p[s]; }
                ops_real *dst = ol + (n * H + h) * m.r;
                for (int s = s0; s <= t; s++)
                    for (int j = 0; j < m.r; j++) dst[j] += p[s] / sum * cn[((size_t)b * T + s) * m.r + j];
            }
    op_matmul_forward(NULL, out, ol, wouv, N, H * m.r, d);
end:
    free(qf); free(qpe); free(lq); free(lqn); free(lqr); free(lat); free(cn); free(lr); free(kva);
    free(qa); free(wouv); free(ol); free(p);
    return rc;
}

static int attn_mla_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                            int B, int T) {
    mla_forward(gpu, c, w, a, x, out, B, T);
    return 0;
}

static int attn_mla_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                             const void *x, const void *dout, void *dx, int B, int T) {
    mla_backward(gpu, c, w, dw, a, s, x, dout, dx, B, T);
    return 0;
}

/* ---- decoding in the absorbed form: per position the normed latent and the rotated shared key
   [cn | kpe] (r + rope; a ring of W under a window); derived: W_o,h W_UV,h [d, H*r], made on the
   first step. The query [q~_h | RoPE(q_pe_h)] scores the cached row as it is, whose first r
   elements are also the value. ---- */
static size_t attn_mla_cache_bytes(const AttnConfig *c, int T) {
    if (c->qk_norm) /* attn_mla_decode_expanded's keys and values */
        return (size_t)attn_dec_slots(c->window, T) * c->n_heads * (mla_dims(c).qk + mla_dims(c).v) * sizeof(ops_real);
    return (size_t)attn_dec_slots(c->window, T) * (c->latent_dim + c->rope_dim) * sizeof(ops_real);
}

/* With qk_norm there is no absorbed form (the norm needs each head's whole key), so the CPU
   decodes in the expanded form: per position every head's normed key [k_nope | RoPE(kr)] (qk)
   and value (v), a ring of W under a window, [B][S][H (qk + v)]. A step computes the token's
   query, latent and rotary key as the forward does (the norms after the rotation), appends its
   keys and values and attends over the cached ones per head: O(T) per token, the forward's
   arithmetic. */
static int attn_mla_decode_expanded(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x,
                                    ops_real *out) {
    MlaDims m = mla_dims(c);
    int B = kc->B, H = c->n_heads, d = c->d_model, kw = m.nope + m.v, R = m.r + m.rope, pos = kc->pos;
    int S = attn_dec_slots(c->window, kc->cap), s0 = attn_first_key(pos, c->window), n = pos - s0 + 1;
    size_t row = (size_t)H * (m.qk + m.v); /* a cached position: H keys, then H values */
    ops_real *qf = attn_tmp((size_t)B * H * m.qk), *qn = attn_tmp((size_t)B * H * m.qk), *lq = attn_tmp((size_t)B * m.rq);
    ops_real *lqn = attn_tmp((size_t)B * m.rq), *lqr = attn_tmp(B), *kva = attn_tmp((size_t)B * R);
    ops_real *lat = attn_tmp((size_t)B * m.r), *lr = attn_tmp(B), *cn = attn_tmp((size_t)B * m.r);
    ops_real *kvb = attn_tmp((size_t)B * H * kw), *kr = attn_tmp((size_t)H * m.qk), *rs = attn_tmp((size_t)B * H);
    ops_real *ol = attn_tmp((size_t)B * H * m.v), *p = attn_tmp(n);
    const ops_real **ks = malloc(sizeof *ks * n), **vs = malloc(sizeof *vs * n);
    int rc = qf && qn && lq && lqn && lqr && kva && lat && lr && cn && kvb && kr && rs && ol && p && ks && vs ? 0 : -1;
    if (!rc) {
        mla_query(NULL, c, w, x, qf, lq, lqn, lqr, B);
        for (int i = 0; i < B * H; i++) attn_rope_at(qf + (size_t)i * m.qk + m.nope, 1, m.rope, m.rope, c->rope_theta, pos);
        op_rmsnorm_forward(NULL, qn, rs, qf, w + attn_spec_off(c, "q_norm.weight"), B * H, m.qk, c->norm_eps);
        op_matmul_forward(NULL, kva, x, w + attn_spec_off(c, "kv_a_proj_with_mqa.weight"), B, d, R);
        op_copy_cols(NULL, lat, m.r, kva, R, B, m.r, 1, 0);
        op_rmsnorm_forward(NULL, cn, lr, lat, w + attn_spec_off(c, "kv_a_layernorm.weight"), B, m.r, c->norm_eps);
        op_matmul_forward(NULL, kvb, cn, w + attn_spec_off(c, "kv_b_proj.weight"), B, m.r, H * kw);
        for (int b = 0; b < B; b++) {
            ops_real *slot = (ops_real *)kc->mem + ((size_t)b * S + pos % S) * row;
            ops_real *kpe = kva + (size_t)b * R + m.r;
            attn_rope_at(kpe, 1, m.rope, m.rope, c->rope_theta, pos);
            for (int h = 0; h < H; h++) { /* [k_nope_h | the shared rotary key], v_h */
                memcpy(kr + (size_t)h * m.qk, kvb + ((size_t)b * H + h) * kw, sizeof(ops_real) * m.nope);
                memcpy(kr + (size_t)h * m.qk + m.nope, kpe, sizeof(ops_real) * m.rope);
                memcpy(slot + (size_t)H * m.qk + (size_t)h * m.v, kvb + ((size_t)b * H + h) * kw + m.nope,
                       sizeof(ops_real) * m.v);
            }
            op_rmsnorm_forward(NULL, slot, rs + (size_t)b * H, kr, w + attn_spec_off(c, "k_norm.weight"), H, m.qk,
                               c->norm_eps);
        }
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                for (int j = 0; j < n; j++) {
                    const ops_real *r0 = (const ops_real *)kc->mem + ((size_t)b * S + (s0 + j) % S) * row;
                    ks[j] = r0 + (size_t)h * m.qk;
                    vs[j] = r0 + (size_t)H * m.qk + (size_t)h * m.v;
                }
                attn_dec_attend(ol + ((size_t)b * H + h) * m.v, qn + ((size_t)b * H + h) * m.qk, ks, vs, n, m.qk, m.v,
                                1 / sqrt((ops_real)m.qk), p);
            }
        op_matmul_forward(NULL, out, ol, w + attn_spec_off(c, "o_proj.weight"), B, H * m.v, d);
    }
    free(qf); free(qn); free(lq); free(lqn); free(lqr); free(kva); free(lat); free(lr); free(cn); free(kvb); free(kr);
    free(rs); free(ol); free(p); free(ks); free(vs);
    return rc;
}

static int attn_mla_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    if (c->qk_norm) return attn_mla_decode_expanded(c, w, kc, x, out);
    MlaDims m = mla_dims(c);
    int B = kc->B, H = c->n_heads, d = c->d_model, kw = m.nope + m.v, R = m.r + m.rope, pos = kc->pos;
    int S = attn_dec_slots(c->window, kc->cap), s0 = attn_first_key(pos, c->window), n = pos - s0 + 1;
    const ops_real *wkvb = w + attn_spec_off(c, "kv_b_proj.weight"), *wo = w + attn_spec_off(c, "o_proj.weight");
    if (!kc->derived) {
        ops_real *wouv = kc->derived = attn_tmp((size_t)d * H * m.r);
        if (!wouv) return -1;
        for (int o = 0; o < d; o++)
            for (int h = 0; h < H; h++)
                for (int e = 0; e < m.v; e++) {
                    ops_real wv = wo[(size_t)o * H * m.v + h * m.v + e];
                    const ops_real *uv = wkvb + ((size_t)h * kw + m.nope + e) * m.r;
                    ops_real *dst = wouv + (size_t)o * H * m.r + (size_t)h * m.r;
                    for (int j = 0; j < m.r; j++) dst[j] += wv * uv[j];
                }
    }
    ops_real *qf = attn_tmp((size_t)B * H * m.qk), *lq = attn_tmp((size_t)B * m.rq), *lqn = attn_tmp((size_t)B * m.rq);
    ops_real *lqr = attn_tmp(B), *kva = attn_tmp((size_t)B * R), *lat = attn_tmp((size_t)B * m.r), *lr = attn_tmp(B);
    ops_real *cn = attn_tmp((size_t)B * m.r), *qe = attn_tmp(R), *ol = attn_tmp((size_t)B * H * m.r), *p = attn_tmp(n);
    const ops_real **ks = malloc(sizeof *ks * n);
    int rc = qf && lq && lqn && lqr && kva && lat && lr && cn && qe && ol && p && ks ? 0 : -1;
    if (!rc) {
        mla_query(NULL, c, w, x, qf, lq, lqn, lqr, B);
        op_matmul_forward(NULL, kva, x, w + attn_spec_off(c, "kv_a_proj_with_mqa.weight"), B, d, R);
        op_copy_cols(NULL, lat, m.r, kva, R, B, m.r, 1, 0);
        op_rmsnorm_forward(NULL, cn, lr, lat, w + attn_spec_off(c, "kv_a_layernorm.weight"), B, m.r, c->norm_eps);
        for (int b = 0; b < B; b++) {
            ops_real *slot = (ops_real *)kc->mem + ((size_t)b * S + pos % S) * R;
            memcpy(slot, cn + (size_t)b * m.r, sizeof(ops_real) * m.r);
            memcpy(slot + m.r, kva + (size_t)b * R + m.r, sizeof(ops_real) * m.rope);
            attn_rope_at(slot + m.r, 1, m.rope, m.rope, c->rope_theta, pos);
            for (int j = 0; j < n; j++) ks[j] = (const ops_real *)kc->mem + ((size_t)b * S + (s0 + j) % S) * R;
            for (int h = 0; h < H; h++) {
                const ops_real *qh = qf + ((size_t)b * H + h) * m.qk;
                for (int j = 0; j < m.r; j++) qe[j] = 0;
                for (int i = 0; i < m.nope; i++) { /* q~ = W_UK,h^T q_nope */
                    const ops_real *uk = wkvb + ((size_t)h * kw + i) * m.r;
                    for (int j = 0; j < m.r; j++) qe[j] += qh[i] * uk[j];
                }
                memcpy(qe + m.r, qh + m.nope, sizeof(ops_real) * m.rope);
                attn_rope_at(qe + m.r, 1, m.rope, m.rope, c->rope_theta, pos);
                attn_dec_attend(ol + ((size_t)b * H + h) * m.r, qe, ks, ks, n, R, m.r, 1 / sqrt((ops_real)m.qk), p);
            }
        }
        op_matmul_forward(NULL, out, ol, kc->derived, B, H * m.r, d);
    }
    free(qf); free(lq); free(lqn); free(lqr); free(kva); free(lat); free(lr); free(cn); free(qe); free(ol); free(p);
    free(ks);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h's kernels around the ops' matmuls; attn.h's GPU DECODING).
   The cache: per sequence S = attn_dec_slots(window, cap) rows [cn | RoPE(kr)] in bf16 (the CPU's
   layout). A step: the query (mla_query: matmuls, the query latent's norm), kva = W_kva x, the
   append (norm, rotation at the device position), then one block per (b, h): the absorbed query
   q~ = W_UK,h^T q_nope, scores over the cached rows, softmax, the attended latent and W_UV,h of it;
   o_proj last. W_o W_UV is never formed: applying W_UV,h per head after the sum is the same product
   and reads fewer bytes than the absorbed [d, H*r] matrix whenever v < r, so gpu_decode_init has
   nothing to derive. The prompt: attn_mla_gpu_prefill below (by default; tuning.dec_prefill = 0:
   one step per token). ---- */

static size_t attn_mla_gpu_cache_bytes(const AttnConfig *c, int T) {
    if (c->qk_norm) return attn_dense_gpu_cache_bytes(c, T); /* the expanded form's keys and values (below) */
    return (size_t)attn_dec_slots(c->window, T) * (c->latent_dim + c->rope_dim) * 2;
}

/* ---- QK-norm on the GPU: the expanded form (attn_mla_decode_expanded) in the dense room's cache
   layout and kernels. With qk_norm, v <= qk = P, so each head's normed key [k_nope | RoPE(kr)] and
   its value zero-padded to qk fill a dense cache of H kv heads of width qk: [B][S][2][H qk] bf16,
   slot pos % S (the dense ring of a plain window: G 0, ring S). A step is the training forward's
   arithmetic for one token: the query (mla_query), the latent, its norm and kv_b through the
   forward's ops; then one kernel per (b, h) (gpu_dec_mla_qkn) rotates the query's and the key's
   [k_nope | the shared rotary key] rotary columns at the device position, RMSNorms both (q_norm,
   k_norm; in fp32, where the forward rounds to bf16 between the steps) and puts the key and the
   padded value into the slot; the dense split-K attention (gpu_dec_attend: scale 1/sqrt(qk), as
   the core's with P = qk); the first v columns of each head's output to o_proj. The prompt: the
   training forward, then its normed k and padded v into the slots (gpu_dec_fill, as the dense
   room's prefill). The dense room's shape (attn_dense_gpu_dshape) and step scratch serve as they
   are: to them c is H kv heads (MLA resolves n_kv_heads = n_heads) of width head_dim = qk, with
   no pattern (MLA refuses one). ---- */
typedef struct { void *q, *lq, *lqn, *kva, *lat, *cn, *kvb, *att, *ol; float *q32, *lqr, *lr, *part; } MlaXDecScratch;
static MlaXDecScratch mla_xdec_scratch(const AttnConfig *c, void *base, int B, int cap, size_t *bytes) {
    MlaDims m = mla_dims(c);
    size_t NH = (size_t)B * c->n_heads, off[4];
    char *cur = base;
    MlaXDecScratch s;
    /* the dense room's step scratch for the attention (c is H kv heads of width qk to it): its
       fp32 query, output and split-K partials; its fused projection's rows hold the query */
    char *dense = attn_dec_take(&cur, attn_dense_gpu_scratch_parts(c, B, cap, off));
    s.q = dense + off[0];
    s.q32 = (float *)(void *)(dense + off[1]);
    s.att = dense + off[2];
    s.part = (float *)(void *)(dense + off[3]);
    s.lq = attn_dec_take(&cur, 2 * (size_t)B * (m.rq ? m.rq : 1));
    s.lqn = attn_dec_take(&cur, 2 * (size_t)B * (m.rq ? m.rq : 1));
    s.lqr = attn_dec_take(&cur, 4 * (size_t)B);
    s.kva = attn_dec_take(&cur, 2 * (size_t)B * (m.r + m.rope));
    s.lat = attn_dec_take(&cur, 2 * (size_t)B * m.r);
    s.cn = attn_dec_take(&cur, 2 * (size_t)B * m.r);
    s.lr = attn_dec_take(&cur, 4 * (size_t)B);
    s.kvb = attn_dec_take(&cur, 2 * NH * (m.nope + m.v));
    s.ol = attn_dec_take(&cur, 2 * NH * m.v);
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

typedef struct { void *qf, *lq, *lqn, *kva, *ol; float *lqr, *p; } MlaDecScratch;
static MlaDecScratch mla_dec_scratch(const AttnConfig *c, void *base, int B, int cap, size_t *bytes) {
    MlaDims m = mla_dims(c);
    size_t H = (size_t)c->n_heads, S = (size_t)attn_dec_slots(c->window, cap);
    char *cur = base;
    MlaDecScratch s;
    s.qf = attn_dec_take(&cur, 2 * B * H * m.qk);
    s.lq = attn_dec_take(&cur, 2 * (size_t)B * (m.rq ? m.rq : 1));
    s.lqn = attn_dec_take(&cur, 2 * (size_t)B * (m.rq ? m.rq : 1));
    s.kva = attn_dec_take(&cur, 2 * (size_t)B * (m.r + m.rope));
    s.ol = attn_dec_take(&cur, 2 * B * H * m.v);
    s.lqr = attn_dec_take(&cur, 4 * (size_t)B);
    s.p = attn_dec_take(&cur, 4 * gpu_dec_split_floats(B, (int)H, (int)S, m.r));
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

static size_t attn_mla_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t n;
    if (c->qk_norm) mla_xdec_scratch(c, NULL, B, cap, &n);
    else mla_dec_scratch(c, NULL, B, cap, &n);
    return n;
}

#ifndef ABLATE_NO_CUDA
#include "decode.cu.h"
static int attn_mla_gpu_decode_expanded(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                        void *out) {
    MlaDims m = mla_dims(c);
    int B = k->B, H = c->n_heads, NH = B * H, R = m.r + m.rope, kw = m.nope + m.v, d = c->d_model;
    GpuDecShape sh = attn_dense_gpu_dshape(c, k->cap); /* H kv heads of width qk, the ring of a window */
    MlaXDecScratch s = mla_xdec_scratch(c, k->scratch, B, k->cap, NULL);
    mla_query(gpu, c, w, x, s.q, s.lq, s.lqn, (ops_real *)s.lqr, B);
    /* the latent, its norm, every head's k_nope and v */
    op_matmul_forward(gpu, s.kva, x, attn_wat(gpu, w, attn_spec_off(c, "kv_a_proj_with_mqa.weight")), B, d, R);
    op_copy_cols(gpu, s.lat, m.r, s.kva, R, B, m.r, 1, 0);
    op_rmsnorm_forward(gpu, s.cn, (ops_real *)s.lr, s.lat, attn_wat(gpu, w, attn_spec_off(c, "kv_a_layernorm.weight")), B,
                       m.r, c->norm_eps);
    op_matmul_forward(gpu, s.kvb, s.cn, attn_wat(gpu, w, attn_spec_off(c, "kv_b_proj.weight")), B, m.r, H * kw);
    /* rotation and norm of each head's q and k; k and v into the slot */
    gpu_dec_mla_qkn(gpu, s.q32, k->mem, s.q, s.kvb, s.kva, attn_wat(gpu, w, attn_spec_off(c, "q_norm.weight")),
                    attn_wat(gpu, w, attn_spec_off(c, "k_norm.weight")), k->d_pos, B, H, sh.S, m.qk, m.v, m.r, m.rope,
                    c->norm_eps, c->rope_theta);
    gpu_dec_attend(gpu, &sh, s.att, s.q32, k->mem, s.part, k->d_pos, B);
    void *oin = s.att;
    if (m.v < m.qk) {
        op_copy_cols(gpu, s.ol, m.v, s.att, m.qk, NH, m.v, 1, 0);
        oin = s.ol;
    }
    op_matmul_forward(gpu, out, oin, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), B, H * m.v, d);
    return 0;
}

static int attn_mla_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                               void *out) {
    if (c->qk_norm) return attn_mla_gpu_decode_expanded(gpu, c, w, k, x, out);
    MlaDims m = mla_dims(c);
    int B = k->B, H = c->n_heads, S = attn_dec_slots(c->window, k->cap);
    MlaDecScratch s = mla_dec_scratch(c, k->scratch, B, k->cap, NULL);
    if (2 * m.r + m.rope > 12 * 1024) return -1; /* the attend kernel's shared memory (48 KB) */
    mla_query(gpu, c, w, x, s.qf, s.lq, s.lqn, (ops_real *)s.lqr, B);
    op_matmul_forward(gpu, s.kva, x, attn_wat(gpu, w, attn_spec_off(c, "kv_a_proj_with_mqa.weight")), B, c->d_model,
                      m.r + m.rope);
    gpu_dec_mla_append(gpu, k->mem, s.kva, attn_wat(gpu, w, attn_spec_off(c, "kv_a_layernorm.weight")), k->d_pos, B, S,
                       m.r, m.rope, c->norm_eps, c->rope_theta);
    gpu_dec_mla_attend(gpu, s.ol, s.p, k->mem, s.qf, attn_wat(gpu, w, attn_spec_off(c, "kv_b_proj.weight")), k->d_pos,
                       B, H, S, c->window, m.r, m.rope, m.nope, m.v, (float)(1 / sqrt((double)m.qk)), c->rope_theta);
    op_matmul_forward(gpu, out, s.ol, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), B, H * m.v, c->d_model);
    return 0;
}
#define ATTN_MLA_GPU_DECODE attn_mla_gpu_decode
#else
#define ATTN_MLA_GPU_DECODE NULL
#endif

/* the prompt at once (attn.h's attn_gpu_prefill_whole: tuning.dec_prefill): the training forward
   over the prompt, whose output is the prefill's, then its normed latent (lat_kvn) and the rotated
   shared key (head 0's rotary columns of k: every head holds the same copy) into the rows
   [cn | kpe] the decode step appends, the last S positions of a ring; with qk_norm its normed keys
   and padded values into the expanded cache */
static int attn_mla_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                void *out, int T) {
#ifndef ABLATE_NO_CUDA
    MlaDims m = mla_dims(c);
    int B = k->B, R = m.r + m.rope, S = attn_dec_slots(c->window, k->cap);
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, c, B, T, &pf);
    int rc = attn_forward(gpu, c, w, &pf.a, x, out, B, T);
    if (!rc && c->qk_norm) { /* the expanded cache: the normed keys and the padded values (P = qk) */
        GpuDecShape sh = attn_dense_gpu_dshape(c, k->cap);
        gpu_dec_fill(gpu, &sh, k->mem, pf.a.k, pf.a.v, B, T);
    } else if (!rc) {
        gpu_dec_fill_rows(gpu, k->mem, pf.a.lat_kvn, B, T, S, m.r, (size_t)m.r, (size_t)S * R, (size_t)R, 1);
        gpu_dec_fill_rows(gpu, (char *)k->mem + 2 * (size_t)m.r, attn_act_at(gpu, pf.a.k, m.nope), B, T, S, m.rope,
                          (size_t)c->n_heads * m.P, (size_t)S * R, (size_t)R, 1);
    }
    attn_gpu_prefill_end(gpu, &pf);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1; /* the CPU-only build has no GPU */
#endif
}

/* the softmax core's modules at the padded width P (mla_forward: H heads, one kv head each) */
static int attn_mla_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                int max) {
    (void)B;
    return attn_softmax_core_kernels(gpu, c, T, c->n_heads, c->n_heads, mla_dims(c).P, out, max);
}

static const AttnMech attn_room_mla = {
    "mla", attn_mla_resolve, attn_mla_gpu_supported, attn_mla_param_specs, attn_mla_kv_bytes, NULL, attn_mla_flops,
    NULL, attn_mla_act_sizes, attn_mla_acts_bind, attn_mla_scratch_elems, attn_mla_scratch_bind, attn_mla_forward,
    attn_mla_backward, NULL, attn_mla_cache_bytes, attn_mla_decode, NULL,
    attn_mla_gpu_cache_bytes, attn_mla_gpu_scratch_bytes, NULL, ATTN_MLA_GPU_DECODE, attn_mla_gpu_prefill,
    attn_mla_gpu_kernels,
};

#endif /* ATTN_MLA_DONE */
