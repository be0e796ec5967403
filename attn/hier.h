/* attn/hier.h - multi-scale (hierarchical) attention: a sliding window at full resolution plus
   one mean-pooled key and value per earlier block of the context. A room of attn.h (include
   attn.h, not this file). Kernels: attn/hier.cu.h (the coarse branch, merged into the dense
   room's flash kernels' window branch) and attn/decode.cu.h (decoding: hier_pool, then the DSA
   room's list attention). It decodes from the window's ring, the pooled blocks and the running
   sum of the block being filled (attn_decode_* on the CPU, attn_gpu_decode_* on the GPU).

   MECHANISM (causal; W = window >= 1, P = hier_block, default 64; hd = head_dim)
     fine keys of query t     s in [t-W+1, t] (clipped at 0), as SWA
     coarse keys of query t   every complete block j of P positions that ends before the
                              window starts, (j+1)P - 1 < t-W+1, i.e. j < floor((t-W+1)/P):
                                kc_j = mean(k_s, s in [jP, jP+P)),  vc_j = mean(v_s, ...)
     out_t = softmax over fine and coarse keys of q_t.k / sqrt(hd), times the matching values.
   Positions between the last coarse block and the window (fewer than P of them) are seen by
   neither branch: a query sees the near past exactly, the far past as block averages and
   at most P-1 positions in between not at all, so that the keys a query sees are a fixed set
   of whole blocks (what a decoder can cache: below).
   GQA as the dense family: query head h reads kv head h / (heads / kv_heads).
   Pooling is of the keys AFTER RoPE (and QK-norm): a compressed key is the average of what the
   window would have seen at those positions, as a compressed branch over rotated keys does; it
   keeps one rotation per position so the coarse keys need no position encoding of their own.
   (NSA instead feeds keys with intra-block position encodings to a learned MLP.)

   This is the compressed branch of Native Sparse Attention (Yuan et al. 2025, arXiv
   2502.11089) with mean pooling in place of its learned compressor (blocks do not overlap:
   stride = P), plus its sliding-window branch, in one softmax and without NSA's gates or its
   selected-blocks branch.

   Options (common ones in attn.h: kv_heads as gqa's default, qk_norm, window, required >= 1):
     hier_block P   positions per coarse block (default 64)

   PARAMETERS (the dense family's names and layout): q_proj [H*hd, d], k_proj [KV*hd, d],
     v_proj [KV*hd, d], o_proj [d, H*hd], q_norm [hd], k_norm [hd] (qk_norm only).

   COSTS. kv_bytes_per_token is what the cache grows by per token in the long run: one pooled
   key and value per P tokens, 2*KV*hd*bytes / P (rounded up). On top, a decoder holds a fixed
   amount that does not grow with the context: the window's W keys and values and the running
   sum of the block being filled (so hier reports less per token than swa, whose figure counts
   every token's key and value). FLOPs per token: the projections, 4*H*hd per key seen (fine
   and coarse, averaged over the T positions) and the pooling (2*KV*hd).
*/
#ifndef ATTN_HIER_H
#define ATTN_HIER_H

/* X(room, field, name, min, max, flags, help) */
#define ATTN_OPTIONS_hier(X)                                                                                 \
    X(hier, hier_block, "hier_block", 0, ATTN_MAX_TOKENS, 0,                                                 \
      "hier: positions per coarse block, one mean-pooled key/value each past the window (default 64)")
/* the pooled keys and values, [B, T/P, KV, hd] each (the dense acts hold q, k, v, att, lse) */
#define ATTN_ACTS_hier void *hier_kc, *hier_vc;
/* their gradients, same shapes (room for fp32 on the GPU), and the GPU backward's rowsum(dO o) per
   (token, head), fp32 */
#define ATTN_SCRATCH_hier void *hier_dkc, *hier_dvc, *hier_D;

#endif /* ATTN_HIER_H */

#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_HIER_DONE)
#define ATTN_HIER_DONE

#ifdef _OPENMP
#define ATTN_HIER_OMP_(x) _Pragma(#x)
#else
#define ATTN_HIER_OMP_(x)
#endif

static int attn_hier_resolve(AttnConfig *c, char *err, size_t errlen) {
    if (attn_dense_resolve(c, err, errlen)) return -1; /* kv_heads: gqa's default */
    if (c->window < 1) {
        snprintf(err, errlen, "attn hier needs a window >= 1 (hier:W or --window W), got %d", c->window);
        return -1;
    }
    if (c->hier_block == 0) c->hier_block = 64;
    return 0;
}

#ifndef ABLATE_NO_CUDA
#include "hier.cu.h"
#endif

/* the window branch runs the flash kernels: their head widths */
static int attn_hier_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    return attn_gpu_width_check("hier", "head_dim", c->head_dim, err, errlen);
}

static size_t attn_hier_kv_bytes(const AttnConfig *c, int bytes_per_elem) {
    size_t pair = (size_t)2 * c->n_kv_heads * c->head_dim * bytes_per_elem;
    return (pair + c->hier_block - 1) / c->hier_block;
}

/* coarse keys query t sees: the complete blocks ending before its window starts */
static int attn_hier_coarse(int t, int W, int P) { return t - W + 1 > 0 ? (t - W + 1) / P : 0; }

static double attn_hier_flops(const AttnConfig *c, int T) {
    double keys = 0;
    for (int t = 0; t < T; t++) keys += (t + 1 < c->window ? t + 1 : c->window) + attn_hier_coarse(t, c->window, c->hier_block);
    return 2.0 * (double)attn_param_count(c) + 4.0 * c->n_heads * c->head_dim * keys / (T > 0 ? T : 1) +
           2.0 * c->n_kv_heads * c->head_dim;
}

static size_t attn_hier_pooled(const AttnConfig *c, int B, int T) {
    return (size_t)B * (T / c->hier_block) * c->n_kv_heads * c->head_dim;
}

static void attn_hier_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    attn_dense_act_sizes(c, B, T, act_elems, stat_elems);
    *act_elems += 2 * attn_hier_pooled(c, B, T);
}

static void attn_hier_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                                int B, int T) {
    size_t es = ops_act_size(gpu);
    attn_dense_carve(c, a, es, &act_mem, &stat_mem, B, T);
    a->hier_kc = attn_carve(&act_mem, attn_hier_pooled(c, B, T), es);
    a->hier_vc = attn_carve(&act_mem, attn_hier_pooled(c, B, T), es);
}

/* dkc, dvc at twice the pooled count of elements (fp32 on the GPU, whose elements are bf16), D
   at 2 N H (fp32 [N, H]) */
static size_t attn_hier_scratch_elems(const AttnConfig *c, int B, int T) {
    return attn_dense_scratch_elems(c, B, T) + 4 * attn_hier_pooled(c, B, T) + 2 * (size_t)B * T * c->n_heads;
}

static void attn_hier_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    size_t es = ops_act_size(gpu);
    attn_dense_scratch_carve(c, s, es, &mem, B, T);
    s->hier_dkc = attn_carve(&mem, 2 * attn_hier_pooled(c, B, T), es);
    s->hier_dvc = attn_carve(&mem, 2 * attn_hier_pooled(c, B, T), es);
    s->hier_D = attn_carve(&mem, 2 * (size_t)B * T * c->n_heads, es);
}

/* the keys query t sees, as pointers into k/v ([N, KV*hd]) and kc/vc ([B, nb, KV, hd]):
   coarse blocks first, then the window; returns the count */
typedef struct { const ops_real *q, *k, *v, *kc, *vc; int T, H, KV, hd, W, P, nb; } AttnHierView;

static int attn_hier_keys(const AttnHierView *m, int b, int kh, int t, const ops_real **ks, const ops_real **vs,
                          int *coarse_j, int *fine_s) {
    int n = 0, nc = attn_hier_coarse(t, m->W, m->P);
    for (int j = 0; j < nc; j++, n++) {
        size_t o = (((size_t)b * m->nb + j) * m->KV + kh) * m->hd;
        ks[n] = m->kc + o; vs[n] = m->vc + o; coarse_j[n] = j; fine_s[n] = -1;
    }
    for (int s = attn_first_key(t, m->W); s <= t; s++, n++) {
        size_t o = (((size_t)b * m->T + s) * m->KV + kh) * m->hd;
        ks[n] = m->k + o; vs[n] = m->v + o; coarse_j[n] = -1; fine_s[n] = s;
    }
    return n;
}

/* kc, vc = block means of k, v (complete blocks only) */
static void attn_hier_pool(const AttnHierView *m, int B, ops_real *kc, ops_real *vc) {
    int kvd = m->KV * m->hd;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < m->nb; j++) {
            ops_real *kd = kc + ((size_t)b * m->nb + j) * kvd, *vd = vc + ((size_t)b * m->nb + j) * kvd;
            for (int i = 0; i < kvd; i++) kd[i] = vd[i] = 0;
            for (int s = j * m->P; s < (j + 1) * m->P; s++) {
                const ops_real *kr = m->k + ((size_t)b * m->T + s) * kvd, *vr = m->v + ((size_t)b * m->T + s) * kvd;
                for (int i = 0; i < kvd; i++) { kd[i] += kr[i]; vd[i] += vr[i]; }
            }
            for (int i = 0; i < kvd; i++) { kd[i] /= m->P; vd[i] /= m->P; }
        }
}

static int attn_hier_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                             int B, int T) {
    int N = B * T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, group = H / KV;
    attn_dense_project(gpu, c, w, a, x, B, T);
#ifndef ABLATE_NO_CUDA
    if (gpu) { /* the window on the flash kernels, then the coarse branch merged into its rows */
        op_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, c->window);
        gpu_hier_pool(gpu, a->hier_kc, a->hier_vc, a->k, a->v, B, T, KV, hd, c->hier_block);
        gpu_hier_coarse_forward(gpu, a->att, (float *)(void *)a->lse, a->q, a->hier_kc, a->hier_vc, B, T, H, KV, hd,
                                c->window, c->hier_block);
        op_matmul_forward(gpu, out, a->att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, H * hd,
                          c->d_model);
        return 0;
    }
#endif
    AttnHierView m = {a->q, a->k, a->v, a->hier_kc, a->hier_vc, T, H, KV, hd, c->window, c->hier_block,
                      T / c->hier_block};
    attn_hier_pool(&m, B, a->hier_kc, a->hier_vc);
    int maxk = (c->window < T ? c->window : T) + m.nb, fail = 0;
    ops_real scale = 1 / sqrt((ops_real)hd), *att = a->att, *lse = a->lse;
    ATTN_HIER_OMP_(omp parallel if ((double)B * H * T * maxk * hd > 2e6) reduction(| : fail))
    {
        const ops_real **ks = malloc(sizeof *ks * maxk), **vs = malloc(sizeof *vs * maxk);
        int *cj = malloc(sizeof(int) * maxk), *fs = malloc(sizeof(int) * maxk);
        ops_real *p = malloc(sizeof(ops_real) * maxk);
        if (!ks || !vs || !cj || !fs || !p) fail = 1;
        ATTN_HIER_OMP_(omp for collapse(2))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                if (fail) continue;
                for (int t = 0; t < T; t++) {
                    const ops_real *qt = m.q + (((size_t)b * T + t) * H + h) * hd;
                    ops_real *ot = att + (((size_t)b * T + t) * H + h) * hd, mx = -INFINITY, sum = 0;
                    int n = attn_hier_keys(&m, b, h / group, t, ks, vs, cj, fs);
                    for (int j = 0; j < n; j++) {
                        ops_real d = 0;
                        for (int i = 0; i < hd; i++) d += qt[i] * ks[j][i];
                        p[j] = d * scale;
                        if (p[j] > mx) mx = p[j];
                    }
                    for (int j = 0; j < n; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                    for (int i = 0; i < hd; i++) ot[i] = 0;
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < hd; i++) ot[i] += p[j] / sum * vs[j][i];
                    lse[((size_t)b * H + h) * T + t] = mx + log(sum);
                }
            }
        free(ks); free(vs); free(cj); free(fs); free(p);
    }
    if (fail) return -1;
    op_matmul_forward(gpu, out, a->att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, H * hd, c->d_model);
    return 0;
}

/* P = exp(S - lse); dV = P^T dO; dS = P (dO V^T - rowsum(dO * O)); dQ = scale dS K;
   dK = scale dS^T Q; a coarse key's gradient spreads evenly (1/P) over its block. Loops run
   per (b, kv head): the heads of a GQA group share dK, dV and the pooled gradients. */
static int attn_hier_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                              const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, group = H / KV, kvd = KV * hd;
    size_t oo = attn_spec_off(c, "o_proj.weight");
    op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, attn_wat(gpu, w, oo), N, H * hd, c->d_model, 0);
#ifndef ABLATE_NO_CUDA
    if (gpu) { /* the window's flash backward on the merged o and lse is its exact share; then the coarse keys' */
        op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd,
                              c->window);
        gpu_hier_coarse_backward(gpu, s->dq, s->dk, s->dv, (float *)s->hier_dkc, (float *)s->hier_dvc, (float *)s->hier_D,
                                 s->datt, a->att, (const float *)(const void *)a->lse, a->q, a->hier_kc, a->hier_vc, B,
                                 T, H, KV, hd, c->window, c->hier_block);
        attn_dense_project_backward(gpu, c, w, dw, a, s, x, dx, B, T);
        return 0;
    }
#endif
    AttnHierView m = {a->q, a->k, a->v, a->hier_kc, a->hier_vc, T, H, KV, hd, c->window, c->hier_block,
                      T / c->hier_block};
    ops_real *dq = s->dq, *dk = s->dk, *dv = s->dv, *dkc = s->hier_dkc, *dvc = s->hier_dvc;
    const ops_real *datt = s->datt, *att = a->att, *lse = a->lse;
    memset(dq, 0, sizeof(ops_real) * (size_t)N * H * hd);
    memset(dk, 0, sizeof(ops_real) * (size_t)N * kvd);
    memset(dv, 0, sizeof(ops_real) * (size_t)N * kvd);
    memset(dkc, 0, sizeof(ops_real) * attn_hier_pooled(c, B, T));
    memset(dvc, 0, sizeof(ops_real) * attn_hier_pooled(c, B, T));
    int maxk = (c->window < T ? c->window : T) + m.nb, fail = 0;
    ops_real scale = 1 / sqrt((ops_real)hd);
    ATTN_HIER_OMP_(omp parallel if ((double)B * H * T * maxk * hd > 2e6) reduction(| : fail))
    {
        const ops_real **ks = malloc(sizeof *ks * maxk), **vs = malloc(sizeof *vs * maxk);
        int *cj = malloc(sizeof(int) * maxk), *fs = malloc(sizeof(int) * maxk);
        if (!ks || !vs || !cj || !fs) fail = 1;
        ATTN_HIER_OMP_(omp for collapse(2))
        for (int b = 0; b < B; b++)
            for (int kh = 0; kh < KV; kh++) {
                if (fail) continue;
                for (int h = kh * group; h < (kh + 1) * group; h++)
                    for (int t = 0; t < T; t++) {
                        size_t qo = (((size_t)b * T + t) * H + h) * hd;
                        const ops_real *qt = m.q + qo, *go = datt + qo, *ot = att + qo;
                        ops_real L = lse[((size_t)b * H + h) * T + t], D = 0;
                        for (int i = 0; i < hd; i++) D += go[i] * ot[i];
                        int n = attn_hier_keys(&m, b, kh, t, ks, vs, cj, fs);
                        for (int j = 0; j < n; j++) {
                            ops_real sc = 0, dp = 0;
                            for (int i = 0; i < hd; i++) { sc += qt[i] * ks[j][i]; dp += go[i] * vs[j][i]; }
                            ops_real pj = exp(sc * scale - L), ds = pj * (dp - D) * scale;
                            size_t ko = cj[j] >= 0 ? (((size_t)b * m.nb + cj[j]) * KV + kh) * hd
                                                   : (((size_t)b * T + fs[j]) * KV + kh) * hd;
                            ops_real *gk = (cj[j] >= 0 ? dkc : dk) + ko, *gv = (cj[j] >= 0 ? dvc : dv) + ko;
                            for (int i = 0; i < hd; i++) {
                                dq[qo + i] += ds * ks[j][i];
                                gk[i] += ds * qt[i];
                                gv[i] += pj * go[i];
                            }
                        }
                    }
                for (int j = 0; j < m.nb; j++) /* the mean's backward: each position gets 1/P */
                    for (int sp = j * m.P; sp < (j + 1) * m.P; sp++) {
                        size_t ko = (((size_t)b * T + sp) * KV + kh) * hd, co = (((size_t)b * m.nb + j) * KV + kh) * hd;
                        for (int i = 0; i < hd; i++) {
                            dk[ko + i] += dkc[co + i] / m.P;
                            dv[ko + i] += dvc[co + i] / m.P;
                        }
                    }
            }
        free(ks); free(vs); free(cj); free(fs);
    }
    if (fail) return -1;
    attn_dense_project_backward(gpu, c, w, dw, a, s, x, dx, B, T);
    return 0;
}

/* ---- decoding: the window's keys and values in the dense room's ring (attn_dense_dec_project
   appends each rotated k, v), then per sequence the pooled key and value of every complete block
   and the running sums of the block being filled: [B][ring][k | v], then [B][cap/P + 1][k | v]
   (the last row is the running sum). A block's mean is its sum over its positions in order,
   divided by P, as attn_hier_pool computes it, so the decoder's coarse keys are the forward's. */
static int attn_hier_dec_blocks(const AttnConfig *c, int cap) { return cap / c->hier_block + 1; }

static size_t attn_hier_cache_bytes(const AttnConfig *c, int T) {
    return (size_t)(attn_dense_dec_slots(c, T) + attn_hier_dec_blocks(c, T)) * 2 * c->n_kv_heads * c->head_dim *
           sizeof(ops_real);
}

static int attn_hier_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    int B = kc->B, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, kvd = KV * hd, pos = kc->pos;
    int P = c->hier_block, W = c->window, S = attn_dense_dec_slots(c, kc->cap), NB = attn_hier_dec_blocks(c, kc->cap);
    int nc = attn_hier_coarse(pos, W, P), first = attn_first_key(pos, W), n = nc + pos - first + 1;
    ops_real *q = attn_tmp((size_t)B * H * hd), *kt = attn_tmp((size_t)B * kvd), *vt = attn_tmp((size_t)B * kvd);
    ops_real *att = attn_tmp((size_t)B * H * hd), *p = attn_tmp(n);
    const ops_real **ks = malloc(sizeof *ks * n), **vs = malloc(sizeof *vs * n);
    int rc = q && kt && vt && att && p && ks && vs ? 0 : -1;
    if (!rc) {
        attn_dense_dec_project(c, w, kc, x, q, kt, vt); /* q rotated; k, v into the ring */
        ops_real *pooled = (ops_real *)kc->mem + (size_t)B * S * 2 * kvd;
        for (int b = 0; b < B; b++) {
            ops_real *blk = pooled + (size_t)b * NB * 2 * kvd, *run = blk + (size_t)(NB - 1) * 2 * kvd;
            for (int i = 0; i < kvd; i++) {
                run[i] += kt[(size_t)b * kvd + i];
                run[kvd + i] += vt[(size_t)b * kvd + i];
            }
            if (pos % P == P - 1) { /* block pos / P is complete: its mean, and a fresh sum */
                ops_real *mean = blk + (size_t)(pos / P) * 2 * kvd;
                for (int i = 0; i < 2 * kvd; i++) {
                    mean[i] = run[i] / P;
                    run[i] = 0;
                }
            }
            for (int h = 0; h < H; h++) { /* coarse keys first, then the window (the forward's order) */
                int g = h / (H / KV), j = 0;
                for (int cb = 0; cb < nc; cb++, j++) {
                    ks[j] = blk + (size_t)cb * 2 * kvd + (size_t)g * hd;
                    vs[j] = ks[j] + kvd;
                }
                for (int sp = first; sp <= pos; sp++, j++) {
                    const ops_real *slot =
                        (const ops_real *)kc->mem + ((size_t)b * S + attn_dense_dec_slot(c, kc->cap, sp)) * 2 * kvd;
                    ks[j] = slot + (size_t)g * hd;
                    vs[j] = slot + kvd + (size_t)g * hd;
                }
                attn_dec_attend(att + ((size_t)b * H + h) * hd, q + ((size_t)b * H + h) * hd, ks, vs, n, hd, hd,
                                1 / sqrt((ops_real)hd), p);
            }
        }
        op_matmul_forward(NULL, out, att, w + attn_spec_off(c, "o_proj.weight"), B, H * hd, c->d_model);
    }
    free(q); free(kt); free(vt); free(att); free(p); free(ks); free(vs);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h's kernels around the ops' matmuls): per sequence the window's
   ring (W slots) and one row per block (cap / P), bf16 [k | v] rows, the layout of the DSA room's
   cache so that its list attention serves; after all sequences, the fp32 running sums of the
   blocks being filled [B][2 kvd]. A step: q, k, v by matmul; QK-norm and RoPE at the device
   position; k, v into ring slot pos % W; hier_pool (the running sum, a finished block's mean, the
   list of rows to attend); the list attention; o_proj. The prompt: one step per token. ---- */
static int attn_hier_gpu_rows(const AttnConfig *c, int cap) {
    return attn_dense_dec_slots(c, cap) + cap / c->hier_block;
}

static size_t attn_hier_gpu_cache_bytes(const AttnConfig *c, int T) {
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim;
    return (size_t)attn_hier_gpu_rows(c, T) * 2 * kvd * 2 + 2 * kvd * 4;
}

typedef struct { void *q, *kt, *vt, *att; float *p; int *list, *count; } HierDecScratch;
static HierDecScratch hier_dec_scratch(const AttnConfig *c, void *base, int B, int cap, size_t *bytes) {
    size_t H = (size_t)c->n_heads, hd = (size_t)c->head_dim, kvd = (size_t)c->n_kv_heads * hd;
    size_t rows = (size_t)attn_hier_gpu_rows(c, cap);
    char *cur = base;
    HierDecScratch s;
    s.q = attn_dec_take(&cur, 2 * B * H * hd);
    s.kt = attn_dec_take(&cur, 2 * B * kvd);
    s.vt = attn_dec_take(&cur, 2 * B * kvd);
    s.att = attn_dec_take(&cur, 2 * B * H * hd);
    s.p = attn_dec_take(&cur, 4 * gpu_dec_split_floats(B, (int)H, (int)rows, c->head_dim));
    s.list = attn_dec_take(&cur, 4 * B * rows);
    s.count = attn_dec_take(&cur, 4 * (size_t)B);
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

static size_t attn_hier_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t n;
    hier_dec_scratch(c, NULL, B, cap, &n);
    return n;
}

#ifndef ABLATE_NO_CUDA
static int attn_hier_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                void *out) {
    int B = k->B, cap = k->cap, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, kvd = KV * hd;
    int ring = attn_dense_dec_slots(c, cap), rows = attn_hier_gpu_rows(c, cap);
    HierDecScratch s = hier_dec_scratch(c, k->scratch, B, cap, NULL);
    const void *qn = c->qk_norm ? attn_wat(gpu, w, attn_spec_off(c, "q_norm.weight")) : NULL;
    const void *kn = c->qk_norm ? attn_wat(gpu, w, attn_spec_off(c, "k_norm.weight")) : NULL;
    float *run = (float *)(void *)((char *)k->mem + (size_t)B * rows * 2 * kvd * 2);
    size_t seq = (size_t)rows * 2 * kvd;
    op_matmul_forward(gpu, s.q, x, attn_wat(gpu, w, attn_spec_off(c, "q_proj.weight")), B, d, H * hd);
    op_matmul_forward(gpu, s.kt, x, attn_wat(gpu, w, attn_spec_off(c, "k_proj.weight")), B, d, kvd);
    op_matmul_forward(gpu, s.vt, x, attn_wat(gpu, w, attn_spec_off(c, "v_proj.weight")), B, d, kvd);
    gpu_dec_rope_rows(gpu, s.q, qn, k->d_pos, B * H, hd, hd, c->norm_eps, c->rope_theta);
    gpu_dec_rope_rows(gpu, s.kt, kn, k->d_pos, B * KV, hd, hd, c->norm_eps, c->rope_theta);
    gpu_dec_put_rows(gpu, k->mem, s.kt, k->d_pos, B, kvd, ring, seq, 2 * (size_t)kvd, 0);
    gpu_dec_put_rows(gpu, k->mem, s.vt, k->d_pos, B, kvd, ring, seq, 2 * (size_t)kvd, kvd);
    gpu_dec_hier_pool(gpu, k->mem, run, s.list, s.count, k->d_pos, B, rows, ring, kvd, c->window, c->hier_block);
    gpu_dec_dsa_attend(gpu, s.att, s.p, k->mem, s.q, s.list, s.count, B, H, KV, hd, rows);
    op_matmul_forward(gpu, out, s.att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), B, H * hd, d);
    return 0;
}
#define ATTN_HIER_GPU_DECODE attn_hier_gpu_decode
#else
#define ATTN_HIER_GPU_DECODE NULL
#endif

/* the modules a training step compiles, for the parallel warm-up: the flash kernels under the
   window (attn_hier_forward's op_attention_forward: the softmax core's list, since patterns are
   refused outside the dense room) and the coarse branch's */
static int attn_hier_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                 int max) {
    (void)B;
    int n = attn_softmax_core_kernels(gpu, c, T, c->n_heads, c->n_kv_heads, c->head_dim, out, max);
#ifndef ABLATE_NO_CUDA
    int k = n < max ? n : max;
    n += gpu_hier_kernels(out + k, max - k);
#endif
    return n;
}

static const AttnMech attn_room_hier = {
    "hier", attn_hier_resolve, attn_hier_gpu_supported, attn_dense_param_specs, attn_hier_kv_bytes, NULL,
    attn_hier_flops, NULL, attn_hier_act_sizes, attn_hier_acts_bind, attn_hier_scratch_elems, attn_hier_scratch_bind,
    attn_hier_forward, attn_hier_backward, NULL,
    attn_hier_cache_bytes, attn_hier_decode, NULL, /* the prompt: one decode step per token */
    attn_hier_gpu_cache_bytes, attn_hier_gpu_scratch_bytes, NULL, ATTN_HIER_GPU_DECODE, NULL,
    attn_hier_gpu_kernels,
};

#endif /* ATTN_HIER_DONE */
