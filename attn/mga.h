/* attn/mga.h - multi-head genetic attention (pikaia). A room of attn.h (include attn.h, not this
   file). The O(T) decomposed form runs on the flash core of attn/dense.cu.h and ops.h's op_mga_*.

   (pikaia, danube-ai/pikaia, pikaia/nn_components/mga.py: MultiHeadGeneticAttention
   with its GeneticFitness core). Per head h (H heads of width hd, value heads KV dividing H,
   head h reads value head h / (H/KV)), g = W_g x, v = W_v x, no RoPE (as in pikaia):
     corr_ij = g_i . g_j / (|g_i| |g_j| + 1e-8)        for j in V_i (causal, window), else 0
     c_ij    = (1 + corr_ij) / 2                        (masked entries become 1/2)
     m_i     = mean of c_i. over L_i columns            gene means
     den_i   = m_i + 1/2,   S_i = sum over k in P_i of 1/den_k
     f_i     = 1 / (den_i S_i)                          gene fitness (sums to 1 over P)
     a_ij    = softmax over j in V_i of f_i c_ij;        o_i = sum_j a_ij v_j
     faithful (mga_faithful = 1, pikaia): L_i = T, P_i = all positions 0..T-1: the
               normalization S sums over the whole sequence, so f_i, hence row i, depends
               on future tokens (the leak test shows it).
     causal default: L_i = i + 1 (the prefix 0..i), P_i = 0..i (prefix sums of 1/den):
               row i sees only tokens 0..i, and a prefix gives the same outputs run alone.
   Optional gate (mga_gate = 1; pikaia's use_gated_deltanet):
     u = SiLU(depthwise conv1d, kernel 3, over time of x);  o <- o * sigmoid(W_gate u)
     faithful: centred kernel (x_{t-1}, x_t, x_{t+1}, PyTorch padding=1) sees t+1;
     causal default: left-padded (x_{t-2}, x_{t-1}, x_t).
   Then out = W_o o. Names: g_proj [H*hd, d] (pikaia w_g), v_proj [KV*hd, d] (w_v),
   o_proj [d, H*hd] (out_proj), gate_conv [d, 3] (conv1d.weight [d,1,3]), gate_proj
   [H*hd, d]. Deliberate differences from pikaia: no biases (as everywhere here), dropout
   and its MLA-compression variant are left out, and window W means keys i-W+1..i as for
   the other mechanisms (pikaia's window_size w sees i-w..i, i.e. W = w + 1; W = 0 is
   full causal). The 1/T of the faithful mean and the tiny f_i (about 1/T) make pikaia's
   attention nearly uniform; we keep that, it is the mechanism under study.
   On the GPU (and on the CPU with mga_decomposed = 1) MGA runs in O(T) memory through a
   flash attention core. With u_t = g_t / |g_t|, corr_ij = u_i . u_j (the 1e-8 of the
   literal form is dropped: a relative change below 1e-8), and since a constant per row
   does not change a softmax, a_ij = softmax_j(f_i/2 u_i . u_j): the core runs with
   q_i = f_i/2 sqrt(hd) u_i, k_j = u_j (its 1/sqrt(hd) cancels). The gene means need only
   the running sum C_t = sum_{s<=t} u_s: sum_{j in V_i} corr_ij = u_i . (C_i - C_{i-W}), and
   S is a running sum of 1/den, so f costs O(T hd) per head; the backward runs the same
   sums in reverse (ops.h, op_mga_*). Value heads KV < H are repeated to H heads for the
   core. The gate goes through op_dwconv3_silu_* and op_sigmoid_gate_*.
   Options: mga_gate, mga_faithful, mga_decomposed (below); kv_heads (value heads) and window as
   for every mechanism. qk_norm is refused. attn_dropout drops the core's probabilities a_ij (the
   dense room's mask); training with it runs the decomposed form on the CPU too (evaluation,
   without dropout, keeps the form mga_decomposed chooses).
*/
#ifndef ATTN_MGA_H
#define ATTN_MGA_H

#define ATTN_OPTIONS_mga(X)                                                                                          \
    X(mga, mga_gate, "mga_gate", 0, 1, ATTN_OPT_BOOL, "mga: the conv + SiLU output gate")                            \
    X(mga, mga_faithful, "mga_faithful", 0, 1, ATTN_OPT_BOOL, "mga: pikaia's non-causal normalization (leaks the future)") \
    X(mga, mga_decomposed, "mga_decomposed", 0, 1, ATTN_OPT_BOOL,                                                    \
      "mga: on the CPU too, the O(T) decomposition the GPU runs (default: the literal equations)")
/* the gate: conv output, gate logits, gated output (q holds g); decomposed: k holds u, q the
   scaled u, vrep v repeated to H heads (KV < H); per-row [N, H] norms, den, running sums of
   1/den and fitness */
#define ATTN_ACTS_mga void *conv, *gate, *gated, *vrep; ops_real *mga_nrm, *mga_den, *mga_S, *mga_f;
/* decomposed: fp32 [N, H*hd] work buffers and fp32 [N, H] row buffers; the gate's gradients
   (dgated, dgate [N, H*hd]; u recomputed and du [N, d]) */
#define ATTN_SCRATCH_mga                                                                                   \
    ops_real *mga_du, *mga_c, *mga_ru, *mga_ds, *mga_dden, *mga_sd;                                          \
    void *mga_dgated, *mga_dgate, *mga_u, *mga_dux;

#endif /* ATTN_MGA_H */

#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_MGA_DONE)
#define ATTN_MGA_DONE

static int attn_mga_resolve(AttnConfig *c, char *err, size_t errlen) {
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads; /* pikaia's default: as many value heads as genetic heads */
    if (c->qk_norm) {
        snprintf(err, errlen, "qk_norm is not defined for attn mga (expected mha, gqa, mqa or swa)");
        return -1;
    }
    return 0;
}

static int attn_mga_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    return attn_gpu_width_check("mga", "head_dim", c->head_dim, err, errlen);
}

static int attn_mga_param_specs(const AttnConfig *c, AttnParamSpec *p) {
    size_t off = 0;
    int n = 0, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    attn_spec_set(&p[n++], "g_proj.weight", &off, qd, d);
    attn_spec_set(&p[n++], "v_proj.weight", &off, kvd, d);
    attn_spec_set(&p[n++], "o_proj.weight", &off, d, qd);
    p[n - 1].is_output_proj = 1;
    if (c->mga_gate) {
        attn_spec_set(&p[n++], "gate_conv.weight", &off, d, 3);
        attn_spec_set(&p[n++], "gate_proj.weight", &off, qd, d);
    }
    return n;
}

/* g is query and key at once, so g of every head plus the values (the running prefix sum of
   1/den is one scalar per head and sequence, not per token) */
static size_t attn_mga_kv_bytes(const AttnConfig *c, int bytes_per_elem) {
    return (size_t)(c->n_heads + c->n_kv_heads) * c->head_dim * bytes_per_elem;
}

static double attn_mga_flops(const AttnConfig *c, int T) { /* G G^T and PV */
    return 2.0 * (double)attn_param_count(c) + 4.0 * c->n_heads * c->head_dim * attn_dense_mean_keys(c, T);
}

/* one function lays out the activations, run with base 0 to measure; q and att adjacent: the
   decomposed forward keeps its fp32 C there */
static void attn_mga_layout(const AttnConfig *c, AttnActs *a, char **cur, char **sc, size_t es, int B, int T) {
    size_t N = (size_t)B * T, H = c->n_heads, d = c->d_model, rs = sizeof(ops_real);
        size_t qd = H * c->head_dim;
        a->q = attn_carve(cur, N * qd, es);
        a->att = attn_carve(cur, N * qd, es);
        a->v = attn_carve(cur, N * c->n_kv_heads * c->head_dim, es);
        /* the decomposed form's (the GPU's, or mga_decomposed); small beside the rest */
        a->k = attn_carve(cur, N * qd, es);
        if (c->n_kv_heads < c->n_heads) a->vrep = attn_carve(cur, N * qd, es);
        a->lse = attn_carve(sc, (size_t)B * H * T, rs);
        a->mga_nrm = attn_carve(sc, N * H, rs);
        a->mga_den = attn_carve(sc, N * H, rs);
        a->mga_S = attn_carve(sc, N * H, rs);
        a->mga_f = attn_carve(sc, N * H, rs);
        if (c->mga_gate) {
            a->conv = attn_carve(cur, N * d, es);
            a->gate = attn_carve(cur, N * qd, es);
            a->gated = attn_carve(cur, N * qd, es);
        }
}

static void attn_mga_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    AttnActs a;
    char *cur = NULL, *sc = NULL;
    attn_mga_layout(c, &a, &cur, &sc, 1, B, T);
    *act_elems = (size_t)cur;
    *stat_elems = (size_t)sc / sizeof(ops_real);
}

static void attn_mga_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                               int B, int T) {
    attn_mga_layout(c, a, &act_mem, &stat_mem, ops_act_size(gpu), B, T);
}

/* MGA decomposed: datt, dq, dk, dv [N, H*hd] activations, then fp32 du, c, ru [N, H*hd]
   and ds, dden, sd [N, H], carved in bytes (an fp32 takes at most two activation elements) */
static void mga_scratch_layout(const AttnConfig *c, AttnScratch *s, char *cur, size_t es, int B, int T) {
    size_t N = (size_t)B * T, nh = N * c->n_heads, nhd = nh * c->head_dim, f = sizeof(ops_real);
    s->datt = attn_carve(&cur, nhd, es);
    s->dq = attn_carve(&cur, nhd, es);
    s->dk = attn_carve(&cur, nhd, es);
    s->dv = attn_carve(&cur, nhd, es);
    s->mga_du = (ops_real *)(void *)attn_carve(&cur, nhd, f);
    s->mga_c = (ops_real *)(void *)attn_carve(&cur, nhd, f);
    s->mga_ru = (ops_real *)(void *)attn_carve(&cur, nhd, f);
    s->mga_ds = (ops_real *)(void *)attn_carve(&cur, nh, f);
    s->mga_dden = (ops_real *)(void *)attn_carve(&cur, nh, f);
    s->mga_sd = (ops_real *)(void *)attn_carve(&cur, nh, f);
    if (c->mga_gate) { /* dgated, dgate [N, H*hd]; u (recomputed), du [N, d] */
        s->mga_dgated = attn_carve(&cur, nhd, es);
        s->mga_dgate = attn_carve(&cur, nhd, es);
        s->mga_u = attn_carve(&cur, N * c->d_model, es);
        s->mga_dux = attn_carve(&cur, N * c->d_model, es);
    }
}


/* the literal MGA (CPU) takes its backward scratch from malloc */
static size_t attn_mga_scratch_elems(const AttnConfig *c, int B, int T) {
    size_t nh = (size_t)B * T * c->n_heads, nhd = nh * c->head_dim;
    return 4 * nhd + 2 * (3 * nhd + 3 * nh) + (c->mga_gate ? 2 * nhd + 2 * (size_t)B * T * c->d_model : 0);
}

static void attn_mga_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    mga_scratch_layout(c, s, mem, ops_act_size(gpu), B, T);
}

/* MGA's per-(b, h) statistics: norms, den_i, S_i and the gene fitness f_i (equations above) */
#define MGA_EPS 1e-8
static void mga_stats(const AttnConfig *c, const ops_real *g, int b, int h, int T, ops_real *nrm, ops_real *den,
                      ops_real *S, ops_real *f) {
    int H = c->n_heads, hd = c->head_dim;
#define MGA_G(t) (g + (((size_t)b * T + (t)) * H + h) * hd)
    for (int t = 0; t < T; t++) {
        ops_real ss = 0;
        for (int i = 0; i < hd; i++) ss += MGA_G(t)[i] * MGA_G(t)[i];
        nrm[t] = sqrt(ss);
    }
    ops_real acc = 0;
    for (int i = 0; i < T; i++) {
        ops_real rowsum = 0;
        for (int j = attn_first_key(i, c->window); j <= i; j++) {
            ops_real dd = 0;
            for (int e = 0; e < hd; e++) dd += MGA_G(i)[e] * MGA_G(j)[e];
            rowsum += dd / (nrm[i] * nrm[j] + MGA_EPS);
        }
        den[i] = 1 + rowsum / (2.0 * (c->mga_faithful ? T : i + 1));
        acc += 1 / den[i];
        S[i] = acc; /* causal: prefix sums */
    }
    for (int i = 0; i < T; i++) {
        if (c->mga_faithful) S[i] = acc; /* pikaia: one sum over the whole sequence */
        f[i] = 1 / (den[i] * S[i]);
    }
}

/* row i of one head: correlations cr[j] and attention p[j] for j in s0..i */
static void mga_row(const AttnConfig *c, const ops_real *g, int b, int h, int T, int i, const ops_real *nrm,
                    const ops_real *f, ops_real *cr, ops_real *p) {
    int H = c->n_heads, hd = c->head_dim, s0 = attn_first_key(i, c->window);
    ops_real mx = -INFINITY, sum = 0;
    for (int j = s0; j <= i; j++) {
        ops_real dd = 0;
        for (int e = 0; e < hd; e++) dd += MGA_G(i)[e] * MGA_G(j)[e];
        cr[j] = dd / (nrm[i] * nrm[j] + MGA_EPS);
        p[j] = f[i] * (1 + cr[j]) / 2;
        if (p[j] > mx) mx = p[j];
    }
    for (int j = s0; j <= i; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
    for (int j = s0; j <= i; j++) p[j] /= sum;
}

static int mga_core_forward(const AttnConfig *c, ops_real *out, const ops_real *g, const ops_real *v, int B, int T) {
    int H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, group = H / KV;
    ops_real *nrm = attn_tmp(T), *den = attn_tmp(T), *S = attn_tmp(T), *f = attn_tmp(T), *cr = attn_tmp(T), *p = attn_tmp(T);
    int rc = !nrm || !den || !S || !f || !cr || !p ? -1 : 0;
    if (!rc)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            mga_stats(c, g, b, h, T, nrm, den, S, f);
            for (int i = 0; i < T; i++) {
                mga_row(c, g, b, h, T, i, nrm, f, cr, p);
                ops_real *o = out + (((size_t)b * T + i) * H + h) * hd;
                memset(o, 0, hd * sizeof(ops_real));
                for (int j = attn_first_key(i, c->window); j <= i; j++) {
                    const ops_real *vj = v + (((size_t)b * T + j) * KV + h / group) * hd;
                    for (int e = 0; e < hd; e++) o[e] += p[j] * vj[e];
                }
            }
        }
    free(nrm); free(den); free(S); free(f); free(cr); free(p);
    return rc;
}

/* Backward by the chain rule through the equations above (s_ij = f_i c_ij):
   ds = p (dp - D); df_i = sum_j ds_ij c_ij; dS_i = -df_i f_i / S_i; d(1/den_k) = sum of dS_i
   over the i whose S_i includes k; dden_i = -df_i f_i / den_i - d(1/den_i) / den_i^2;
   dcorr_ij = ds_ij f_i / 2 + dden_i / (2 L_i); then through corr = g_i.g_j / (n_i n_j + eps). */
static int mga_core_backward(const AttnConfig *c, ops_real *dg, ops_real *dv, const ops_real *dout,
                             const ops_real *g, const ops_real *v, int B, int T) {
    int H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, group = H / KV;
    ops_real *nrm = attn_tmp(T), *den = attn_tmp(T), *S = attn_tmp(T), *f = attn_tmp(T), *cr = attn_tmp(T);
    ops_real *p = attn_tmp(T), *dp = attn_tmp(T), *df = attn_tmp(T), *dden = attn_tmp(T), *dn = attn_tmp(T);
    int rc = !nrm || !den || !S || !f || !cr || !p || !dp || !df || !dden || !dn ? -1 : 0;
    if (rc) goto end;
    memset(dg, 0, sizeof(ops_real) * (size_t)B * T * H * hd);
    memset(dv, 0, sizeof(ops_real) * (size_t)B * T * KV * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            mga_stats(c, g, b, h, T, nrm, den, S, f);
            for (int pass = 0; pass < 2; pass++) { /* 0: df and dv; 1: dcorr into dg (needs every df) */
                if (pass == 1) {
                    ops_real tot = 0, suffix = 0;
                    for (int i = 0; i < T; i++) tot += -df[i] * f[i] / S[i];
                    for (int i = T - 1; i >= 0; i--) {
                        suffix += -df[i] * f[i] / S[i];
                        ops_real dr = c->mga_faithful ? tot : suffix;
                        dden[i] = -df[i] * f[i] / den[i] - dr / (den[i] * den[i]);
                    }
                    memset(dn, 0, T * sizeof(ops_real));
                }
                for (int i = 0; i < T; i++) {
                    int s0 = attn_first_key(i, c->window);
                    const ops_real *doi = dout + (((size_t)b * T + i) * H + h) * hd;
                    mga_row(c, g, b, h, T, i, nrm, f, cr, p);
                    ops_real D = 0;
                    for (int j = s0; j <= i; j++) {
                        const ops_real *vj = v + (((size_t)b * T + j) * KV + kh) * hd;
                        dp[j] = 0;
                        for (int e = 0; e < hd; e++) dp[j] += doi[e] * vj[e];
                        D += p[j] * dp[j];
                    }
                    if (pass == 0) df[i] = 0;
                    ops_real L = c->mga_faithful ? T : i + 1;
                    for (int j = s0; j <= i; j++) {
                        ops_real ds = p[j] * (dp[j] - D);
                        if (pass == 0) {
                            df[i] += ds * (1 + cr[j]) / 2;
                            ops_real *dvj = dv + (((size_t)b * T + j) * KV + kh) * hd;
                            for (int e = 0; e < hd; e++) dvj[e] += p[j] * doi[e];
                            continue;
                        }
                        ops_real dcorr = ds * f[i] / 2 + dden[i] / (2 * L);
                        ops_real q = nrm[i] * nrm[j] + MGA_EPS, dD = dcorr / q, dq = -dcorr * cr[j] / q;
                        ops_real *dgi = dg + (((size_t)b * T + i) * H + h) * hd, *dgj = dg + (((size_t)b * T + j) * H + h) * hd;
                        for (int e = 0; e < hd; e++) { dgi[e] += dD * MGA_G(j)[e]; dgj[e] += dD * MGA_G(i)[e]; }
                        dn[i] += dq * nrm[j];
                        dn[j] += dq * nrm[i];
                    }
                }
            }
            for (int t = 0; t < T; t++) /* through n_t = |g_t| */
                if (nrm[t] > 0) {
                    ops_real *dgt = dg + (((size_t)b * T + t) * H + h) * hd;
                    for (int e = 0; e < hd; e++) dgt[e] += dn[t] * MGA_G(t)[e] / nrm[t];
                }
        }
#undef MGA_G
end:
    free(nrm); free(den); free(S); free(f); free(cr); free(p); free(dp); free(df); free(dden); free(dn);
    return rc;
}

/* depthwise kernel-3 conv over time: causal taps t-2..t, faithful (centred) t-1..t+1 */
static int mga_conv_shift(const AttnConfig *c) { return c->mga_faithful ? 1 : 2; }

static int mga_forward(const AttnConfig *c, const ops_real *w, AttnActs *a, const ops_real *x, ops_real *out, int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    op_matmul_forward(NULL, a->q, x, w + attn_spec_off(c, "g_proj.weight"), N, d, qd);
    op_matmul_forward(NULL, a->v, x, w + attn_spec_off(c, "v_proj.weight"), N, d, kvd);
    if (mga_core_forward(c, a->att, a->q, a->v, B, T)) return -1;
    const ops_real *o_in = a->att;
    if (c->mga_gate) {
        const ops_real *wc = w + attn_spec_off(c, "gate_conv.weight");
        ops_real *conv = a->conv, *u = attn_tmp((size_t)N * d);
        if (!u) return -1;
        int sh = mga_conv_shift(c);
        for (int n = 0; n < N; n++) {
            int t = n % T;
            for (int ch = 0; ch < d; ch++) {
                ops_real acc = 0;
                for (int k = 0; k < 3; k++)
                    if (t + k - sh >= 0 && t + k - sh < T) acc += wc[ch * 3 + k] * x[(size_t)(n + k - sh) * d + ch];
                conv[(size_t)n * d + ch] = acc;
                u[(size_t)n * d + ch] = acc / (1 + exp(-acc)); /* SiLU */
            }
        }
        op_matmul_forward(NULL, a->gate, u, w + attn_spec_off(c, "gate_proj.weight"), N, d, qd);
        ops_real *att = a->att, *gate = a->gate, *gated = a->gated;
        for (size_t i = 0; i < (size_t)N * qd; i++) gated[i] = att[i] / (1 + exp(-gate[i]));
        o_in = a->gated;
        free(u);
    }
    op_matmul_forward(NULL, out, o_in, w + attn_spec_off(c, "o_proj.weight"), N, qd, d);
    return 0;
}

static int mga_backward(const AttnConfig *c, const ops_real *w, ops_real *dw, AttnActs *a, const ops_real *x,
                        const ops_real *dout, ops_real *dx, int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t oo = attn_spec_off(c, "o_proj.weight"), og = attn_spec_off(c, "g_proj.weight"), ov = attn_spec_off(c, "v_proj.weight");
    /* every temporary first, so that running out of memory leaves dw and dx untouched */
    ops_real *dgated = attn_tmp((size_t)N * qd), *datt = dgated, *dxc = NULL, *dgate = NULL, *u = NULL, *du = NULL;
    ops_real *dg = attn_tmp((size_t)N * qd), *dv = attn_tmp((size_t)N * kvd);
    int rc = 0;
    if (c->mga_gate) {
        dgate = attn_tmp((size_t)N * qd), u = attn_tmp((size_t)N * d), du = attn_tmp((size_t)N * d);
        datt = attn_tmp((size_t)N * qd);
        dxc = attn_tmp((size_t)N * d);
        rc = !dgate || !u || !du || !datt || !dxc ? -1 : 0;
    }
    if (rc || !dgated || !dg || !dv) { rc = -1; goto end; }
    op_matmul_backward(NULL, dgated, dw + oo, dout, c->mga_gate ? a->gated : a->att, w + oo, N, qd, d, 0);
    if (c->mga_gate) {
        size_t oc = attn_spec_off(c, "gate_conv.weight"), op = attn_spec_off(c, "gate_proj.weight");
        const ops_real *att = a->att, *gate = a->gate, *conv = a->conv;
        for (size_t i = 0; i < (size_t)N * qd; i++) {
            ops_real s = 1 / (1 + exp(-gate[i]));
            datt[i] = dgated[i] * s;
            dgate[i] = dgated[i] * att[i] * s * (1 - s);
        }
        for (size_t i = 0; i < (size_t)N * d; i++) u[i] = conv[i] / (1 + exp(-conv[i]));
        op_matmul_backward(NULL, du, dw + op, dgate, u, w + op, N, d, qd, 0);
        int sh = mga_conv_shift(c);
        for (int n = 0; n < N; n++) {
            int t = n % T;
            for (int ch = 0; ch < d; ch++) {
                ops_real z = conv[(size_t)n * d + ch], s = 1 / (1 + exp(-z));
                ops_real dz = du[(size_t)n * d + ch] * s * (1 + z * (1 - s)); /* SiLU' */
                for (int k = 0; k < 3; k++)
                    if (t + k - sh >= 0 && t + k - sh < T) {
                        size_t src = (size_t)(n + k - sh) * d + ch;
                        dw[oc + ch * 3 + k] += dz * x[src];
                        dxc[src] += dz * w[oc + ch * 3 + k];
                    }
            }
        }
    }
    if ((rc = mga_core_backward(c, dg, dv, datt, a->q, a->v, B, T))) goto end;
    op_matmul_backward(NULL, dx, dw + ov, dv, x, w + ov, N, d, kvd, 0);
    op_matmul_backward(NULL, dx, dw + og, dg, x, w + og, N, d, qd, 1);
    if (dxc) for (size_t i = 0; i < (size_t)N * d; i++) dx[i] += dxc[i];
end:
    if (datt != dgated) free(datt);
    free(dgated); free(dxc); free(dg); free(dv); free(dgate); free(u); free(du);
    return rc;
}

/* MGA through the O(T) decomposition (header doc; ops.h op_mga_*): the GPU's path, and the
   CPU's with mga_decomposed. */
static int mga_conv_shift(const AttnConfig *c);
static void mga_dec_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                            int B, int T) {
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, W = c->window;
    int qd = H * hd, kvd = KV * hd, fa = c->mga_faithful;
    ops_real *C = a->q, *rinv = a->mga_f; /* C spans q and att (adjacent, 2 activations = one fp32 per element) */
    op_matmul_forward(gpu, a->k, x, attn_wat(gpu, w, attn_spec_off(c, "g_proj.weight")), N, d, qd);
    op_matmul_forward(gpu, a->v, x, attn_wat(gpu, w, attn_spec_off(c, "v_proj.weight")), N, d, kvd);
    op_mga_unit_forward(gpu, a->k, a->mga_nrm, a->k, (size_t)N * H, hd); /* in place: k = u */
    op_time_cumsum(gpu, C, a->k, 1, B, T, qd, 0);
    op_mga_den_forward(gpu, a->mga_den, rinv, a->k, C, B, T, H, hd, W, fa);
    op_time_cumsum(gpu, a->mga_S, rinv, 0, B, T, H, 0);
    op_mga_query_forward(gpu, a->q, a->mga_f, a->k, a->mga_den, a->mga_S, B, T, H, hd, fa);
    const void *v = a->v;
    if (KV < H) { /* each query head's value head, repeated: the core takes K and V per head alike */
        for (int h = 0; h < H; h++)
            op_copy_cols(gpu, attn_act_at(gpu, a->vrep, (size_t)h * hd), qd, attn_act_at(gpu, a->v, (size_t)(h / (H / KV)) * hd),
                         kvd, N, hd, 1, 0);
        v = a->vrep;
    }
    attn_softmax_core_forward(gpu, c, a, a->att, a->q, a->k, v, B, T, H, H, hd); /* window W, attn_dropout */
    const void *o_in = a->att;
    if (c->mga_gate) { /* u = SiLU(conv(x)) lives in out until o_proj overwrites it */
        op_dwconv3_silu_forward(gpu, a->conv, out, x, attn_wat(gpu, w, attn_spec_off(c, "gate_conv.weight")), B, T, d,
                                mga_conv_shift(c));
        op_matmul_forward(gpu, a->gate, out, attn_wat(gpu, w, attn_spec_off(c, "gate_proj.weight")), N, d, qd);
        op_sigmoid_gate_forward(gpu, a->gated, a->att, a->gate, (size_t)N * qd);
        o_in = a->gated;
    }
    op_matmul_forward(gpu, out, o_in, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, qd, d);
}

static void mga_dec_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a,
                             AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, W = c->window;
    int qd = H * hd, kvd = KV * hd, fa = c->mga_faithful;
    size_t oo = attn_spec_off(c, "o_proj.weight"), og = attn_spec_off(c, "g_proj.weight"), ov = attn_spec_off(c, "v_proj.weight");
    size_t oc = c->mga_gate ? attn_spec_off(c, "gate_conv.weight") : 0, op = c->mga_gate ? attn_spec_off(c, "gate_proj.weight") : 0;
    if (c->mga_gate) { /* dgated -> datt and dgate; dgate -> du through gate_proj (u recomputed) */
        op_matmul_backward(gpu, s->mga_dgated, dw + oo, dout, a->gated, attn_wat(gpu, w, oo), N, qd, d, 0);
        op_sigmoid_gate_backward(gpu, s->datt, s->mga_dgate, s->mga_dgated, a->att, a->gate, (size_t)N * qd);
        op_dwconv3_silu_forward(gpu, s->mga_dgated, s->mga_u, x, attn_wat(gpu, w, oc), B, T, d, mga_conv_shift(c));
        op_matmul_backward(gpu, s->mga_dux, dw + op, s->mga_dgate, s->mga_u, attn_wat(gpu, w, op), N, d, qd, 0);
    } else {
        op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, attn_wat(gpu, w, oo), N, qd, d, 0);
    }
    attn_softmax_core_backward(gpu, c, a, s->dq, s->dk, s->dv, s->datt, a->att, a->q, a->k, KV < H ? a->vrep : a->v,
                               B, T, H, H, hd);
    /* through q = f/2 sqrt(hd) u and f = 1/(den S) */
    op_mga_query_backward(gpu, s->mga_du, s->mga_ds, s->mga_dden, s->dq, s->dk, a->k, a->mga_f, a->mga_den,
                          a->mga_S, B, T, H, hd, fa);
    op_time_cumsum(gpu, s->mga_sd, s->mga_ds, 0, B, T, H, 1);
    /* through den = 1 + u_i . (C_i - C_{i-W}) / (2L): C recomputed, then the reverse sum of r u */
    op_time_cumsum(gpu, s->mga_c, a->k, 1, B, T, qd, 0);
    op_mga_den_backward(gpu, s->mga_du, s->mga_ru, a->k, s->mga_c, a->mga_den, s->mga_dden, s->mga_sd, B, T, H,
                        hd, W, fa);
    op_time_cumsum(gpu, s->mga_c, s->mga_ru, 0, B, T, qd, 1);
    op_mga_unit_backward(gpu, s->datt, s->mga_du, s->mga_c, a->k, a->mga_nrm, B, T, H, hd, W); /* datt = dg */
    void *dv = s->dv;
    if (KV < H) { /* the repeated value heads' gradients summed back into their value head */
        int group = H / KV;
        for (int k = 0; k < KV; k++)
            op_sum_cols(gpu, attn_act_at(gpu, s->dq, (size_t)k * hd), kvd, attn_act_at(gpu, s->dv, (size_t)k * group * hd), qd,
                        hd, group, N, hd);
        dv = s->dq;
    }
    op_matmul_backward(gpu, dx, dw + ov, dv, x, attn_wat(gpu, w, ov), N, d, kvd, 0);
    op_matmul_backward(gpu, dx, dw + og, s->datt, x, attn_wat(gpu, w, og), N, d, qd, 1);
    if (c->mga_gate)
        op_dwconv3_silu_backward(gpu, dx, dw + oc, s->mga_dux, a->conv, x, attn_wat(gpu, w, oc), B, T, d, mga_conv_shift(c), 1);
}

/* the decomposed form on the GPU, when asked for, and whenever attn_dropout is on (its mask is on
   the softmax core's P, which only the decomposed form has) */
static int mga_use_decomposed(const Gpu *gpu, const AttnConfig *c, const AttnActs *a) {
    return gpu || c->mga_decomposed || (a->drop_on && c->attn_dropout > 0);
}

static int attn_mga_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                            int B, int T) {
    if (mga_use_decomposed(gpu, c, a)) {
        mga_dec_forward(gpu, c, w, a, x, out, B, T);
        return 0;
    }
    return mga_forward(c, w, a, x, out, B, T);
}

static int attn_mga_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                             const void *x, const void *dout, void *dx, int B, int T) {
    if (mga_use_decomposed(gpu, c, a)) {
        mga_dec_backward(gpu, c, w, dw, a, s, x, dout, dx, B, T);
        return 0;
    }
    return mga_backward(c, w, dw, a, x, dout, dx, B, T);
}

/* ---- decoding (the causal form): per position g [H*hd], |g| per head [H] and v [KV*hd] (a ring of
   W under a window); per sequence the running sum S of 1/den per head [H] and the gate conv's
   tail: the last 2 rows of x [2, d] ---- */
static size_t mga_dec_row(const AttnConfig *c) {
    return (size_t)c->n_heads * c->head_dim + c->n_heads + (size_t)c->n_kv_heads * c->head_dim;
}

static size_t attn_mga_cache_bytes(const AttnConfig *c, int T) {
    return ((size_t)attn_dec_slots(c->window, T) * mga_dec_row(c) + c->n_heads + 2 * (size_t)c->d_model) *
           sizeof(ops_real);
}

static int attn_mga_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    int B = kc->B, d = c->d_model, H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, group = H / KV;
    int qd = H * hd, kvd = KV * hd, pos = kc->pos, S = attn_dec_slots(c->window, kc->cap);
    int s0 = attn_first_key(pos, c->window), n = pos - s0 + 1;
    size_t R = mga_dec_row(c), seq = (size_t)S * R + H + 2 * (size_t)d;
    ops_real *g = attn_tmp((size_t)B * qd), *v = attn_tmp((size_t)B * kvd), *att = attn_tmp((size_t)B * qd);
    ops_real *u = attn_tmp((size_t)B * d), *gate = attn_tmp((size_t)B * qd), *cr = attn_tmp(n), *p = attn_tmp(n);
    int rc = g && v && att && u && gate && cr && p ? 0 : -1;
    if (!rc) {
        op_matmul_forward(NULL, g, x, w + attn_spec_off(c, "g_proj.weight"), B, d, qd);
        op_matmul_forward(NULL, v, x, w + attn_spec_off(c, "v_proj.weight"), B, d, kvd);
        for (int b = 0; b < B; b++) {
            ops_real *base = (ops_real *)kc->mem + b * seq, *slot = base + (size_t)(pos % S) * R;
            ops_real *run = base + (size_t)S * R, *tail = run + H;
            memcpy(slot, g + (size_t)b * qd, sizeof(ops_real) * qd);
            memcpy(slot + qd + H, v + (size_t)b * kvd, sizeof(ops_real) * kvd);
            for (int h = 0; h < H; h++) {
                ops_real ss = 0;
                for (int e = 0; e < hd; e++) ss += slot[h * hd + e] * slot[h * hd + e];
                slot[qd + h] = sqrt(ss);
            }
            for (int h = 0; h < H; h++) { /* mga_stats and mga_row for row pos, from the cache */
                const ops_real *gi = slot + (size_t)h * hd;
                ops_real ni = slot[qd + h], rowsum = 0, mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    const ops_real *sj = base + (size_t)((s0 + j) % S) * R, *gj = sj + (size_t)h * hd;
                    ops_real dd = 0;
                    for (int e = 0; e < hd; e++) dd += gi[e] * gj[e];
                    cr[j] = dd / (ni * sj[qd + h] + MGA_EPS);
                    rowsum += cr[j];
                }
                ops_real den = 1 + rowsum / (2.0 * (pos + 1));
                run[h] += 1 / den;
                ops_real f = 1 / (den * run[h]);
                for (int j = 0; j < n; j++) {
                    p[j] = f * (1 + cr[j]) / 2;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < n; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                ops_real *o = att + ((size_t)b * H + h) * hd;
                for (int e = 0; e < hd; e++) o[e] = 0;
                for (int j = 0; j < n; j++) {
                    const ops_real *vj = base + (size_t)((s0 + j) % S) * R + qd + H + (size_t)(h / group) * hd;
                    for (int e = 0; e < hd; e++) o[e] += p[j] / sum * vj[e];
                }
            }
            if (c->mga_gate) { /* causal conv taps x_{t-2}, x_{t-1}, x_t; the tail starts at zero */
                const ops_real *wc = w + attn_spec_off(c, "gate_conv.weight"), *xt = x + (size_t)b * d;
                for (int ch = 0; ch < d; ch++) {
                    ops_real acc = wc[ch * 3] * tail[ch] + wc[ch * 3 + 1] * tail[d + ch] + wc[ch * 3 + 2] * xt[ch];
                    u[(size_t)b * d + ch] = acc / (1 + exp(-acc));
                }
                memcpy(tail, tail + d, sizeof(ops_real) * d);
                memcpy(tail + d, xt, sizeof(ops_real) * d);
            }
        }
        if (c->mga_gate) {
            op_matmul_forward(NULL, gate, u, w + attn_spec_off(c, "gate_proj.weight"), B, d, qd);
            for (size_t i = 0; i < (size_t)B * qd; i++) att[i] = att[i] / (1 + exp(-gate[i]));
        }
        op_matmul_forward(NULL, out, att, w + attn_spec_off(c, "o_proj.weight"), B, qd, d);
    }
    free(g); free(v); free(att); free(u); free(gate); free(cr); free(p);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h). The cache per sequence (16-byte aligned): the running
   sum S [H] and |g| [slots][H] in fp32, then g [slots][H*hd] and v [slots][KV*hd] in bf16 (a ring
   of W under a window) and the gate conv's tail [2][d] bf16 (the CPU's quantities; fp32 for the
   ones a sum runs through). A step: g, v by matmul; the append (and the gate conv); one block
   per (b, h) for the cosine row, S, the softmax and the mix; the gate's matmul and sigmoid; o_proj.
   The prompt: attn_mga_gpu_prefill below (by default; tuning.dec_prefill = 0: one step per token). ---- */
static size_t attn_mga_gpu_cache_bytes(const AttnConfig *c, int T) {
    size_t S = (size_t)attn_dec_slots(c->window, T), H = (size_t)c->n_heads;
    size_t fl = H * (1 + S), bs = S * (H + c->n_kv_heads) * c->head_dim + 2 * (size_t)c->d_model;
    return (fl * 4 + bs * 2 + 15) / 16 * 16; /* attn/decode.cu.h's mga_seq */
}

typedef struct { void *g, *v, *u, *att, *gate; float *p; } MgaDecScratch;
static MgaDecScratch mga_dec_scratch(const AttnConfig *c, void *base, int B, int cap, size_t *bytes) {
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    char *cur = base;
    MgaDecScratch s;
    s.g = attn_dec_take(&cur, 2 * B * qd);
    s.v = attn_dec_take(&cur, 2 * B * kvd);
    s.u = attn_dec_take(&cur, 2 * (size_t)B * c->d_model);
    s.att = attn_dec_take(&cur, 2 * B * qd);
    s.gate = attn_dec_take(&cur, 2 * B * qd);
    s.p = attn_dec_take(&cur, 4 * gpu_dec_split_floats(B, c->n_heads, attn_dec_slots(c->window, cap), c->head_dim + 1));
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

static size_t attn_mga_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t n;
    mga_dec_scratch(c, NULL, B, cap, &n);
    return n;
}

#ifndef ABLATE_NO_CUDA
static int attn_mga_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                               void *out) {
    int B = k->B, d = c->d_model, H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, qd = H * hd;
    int S = attn_dec_slots(c->window, k->cap);
    MgaDecScratch s = mga_dec_scratch(c, k->scratch, B, k->cap, NULL);
    op_matmul_forward(gpu, s.g, x, attn_wat(gpu, w, attn_spec_off(c, "g_proj.weight")), B, d, qd);
    op_matmul_forward(gpu, s.v, x, attn_wat(gpu, w, attn_spec_off(c, "v_proj.weight")), B, d, KV * hd);
    const void *wc = c->mga_gate ? attn_wat(gpu, w, attn_spec_off(c, "gate_conv.weight")) : w;
    gpu_dec_mga_append(gpu, k->mem, s.u, s.g, s.v, x, wc, k->d_pos, B, S, H, KV, hd, d, c->mga_gate);
    gpu_dec_mga_attend(gpu, s.att, s.p, k->mem, k->d_pos, B, S, H, KV, hd, d, c->window, (float)MGA_EPS);
    if (c->mga_gate) {
        op_matmul_forward(gpu, s.gate, s.u, attn_wat(gpu, w, attn_spec_off(c, "gate_proj.weight")), B, d, qd);
        gpu_dec_sigmoid_mul(gpu, s.att, s.gate, B * qd);
    }
    op_matmul_forward(gpu, out, s.att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), B, qd, d);
    return 0;
}
#define ATTN_MGA_GPU_DECODE attn_mga_gpu_decode
#else
#define ATTN_MGA_GPU_DECODE NULL
#endif

/* the prompt at once (attn.h's attn_gpu_prefill_whole: tuning.dec_prefill): the training forward
   (the O(T) decomposition) over the prompt, whose output is the prefill's; then the slots the
   decode step appends: g (the forward keeps only u = g/|g|, so g is projected once more), v and
   |g| (the forward's mga_nrm, fp32) of the last S positions; the running sum S of 1/den is the
   forward's prefix sum at the last position; with the gate, the conv tail is x's last 2 rows */
static int attn_mga_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                void *out, int T) {
#ifndef ABLATE_NO_CUDA
    int B = k->B, d = c->d_model, H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, qd = H * hd, kvd = KV * hd;
    int S = attn_dec_slots(c->window, k->cap);
    /* attn/decode.cu.h's mga_seq, in 16-bit units: run [H] | gn [S][H] fp32, g [S][qd] | v [S][kvd] |
       tail [2][d] bf16 */
    size_t fl = (size_t)H * (1 + S), seq = attn_mga_gpu_cache_bytes(c, k->cap) / 2;
    char *mem = k->mem, *gc = mem + fl * 4, *vc = gc + (size_t)S * qd * 2, *tail = vc + (size_t)S * kvd * 2;
    void *g = ops_alloc(gpu, (size_t)B * T * qd * ops_act_size(gpu) + 16);
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, c, B, T, &pf);
    int rc = attn_forward(gpu, c, w, &pf.a, x, out, B, T);
    const AttnActs a = pf.a;
    if (!rc) {
        op_matmul_forward(gpu, g, x, attn_wat(gpu, w, attn_spec_off(c, "g_proj.weight")), B * T, d, qd);
        gpu_dec_fill_rows(gpu, gc, g, B, T, S, qd, (size_t)qd, seq, (size_t)qd, 1);
        gpu_dec_fill_rows(gpu, vc, a.v, B, T, S, kvd, (size_t)kvd, seq, (size_t)kvd, 1);
        gpu_dec_fill_rows(gpu, mem + (size_t)H * 4, a.mga_nrm, B, T, S, 2 * H, 2 * (size_t)H, seq, 2 * (size_t)H, 1);
        gpu_dec_fill_rows(gpu, mem, a.mga_S, B, T, 1, 2 * H, 2 * (size_t)H, seq, 0, 0); /* row T-1 only */
        if (c->mga_gate) gpu_dec_fill_rows(gpu, tail, x, B, T, 2, d, (size_t)d, seq, (size_t)d, 0);
    }
    attn_gpu_prefill_end(gpu, &pf);
    ops_free(gpu, g);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1; /* the CPU-only build has no GPU */
#endif
}

/* the softmax core's modules (the forward's core: H heads, one kv head each, width hd) */
static int attn_mga_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                int max) {
    (void)B;
    return attn_softmax_core_kernels(gpu, c, T, c->n_heads, c->n_heads, c->head_dim, out, max);
}

static const AttnMech attn_room_mga = {
    "mga", attn_mga_resolve, attn_mga_gpu_supported, attn_mga_param_specs, attn_mga_kv_bytes, NULL, attn_mga_flops,
    NULL, attn_mga_act_sizes, attn_mga_acts_bind, attn_mga_scratch_elems, attn_mga_scratch_bind, attn_mga_forward,
    attn_mga_backward, NULL, attn_mga_cache_bytes, attn_mga_decode, NULL,
    attn_mga_gpu_cache_bytes, attn_mga_gpu_scratch_bytes, NULL, ATTN_MGA_GPU_DECODE, attn_mga_gpu_prefill,
    attn_mga_gpu_kernels,
};

#endif /* ATTN_MGA_DONE */
