/* attn.h - attention mechanisms as ablation axes: config, parameter layout and
   counts, KV-cache bytes and FLOPs per token, forward and backward.

   USAGE
     #define ATTN_IMPLEMENTATION     // in exactly one .c file (also define OPS_IMPLEMENTATION)
     #include "attn.h"

     AttnConfig c = {0};            // zero = defaults: GQA, SmolLM2-135M widths
     c.kind = ATTN_MQA; c.d_model = 64; c.n_heads = 4; c.window = 32;
     char err[256];
     if (attn_resolve(&c, err, sizeof err)) { fprintf(stderr, "%s\n", err); exit(1); }
     size_t np = attn_param_count(&c);

   MECHANISMS (causal always, except MGA's opt-in faithful mode)
     MHA       n_kv_heads = n_heads
     GQA       n_kv_heads divides n_heads; query head h reads kv head h / (n_heads / n_kv_heads)
     MQA       n_kv_heads = 1
     SWA       GQA with a sliding window (window must be > 0); a name for schedules
     MLA       DeepSeek-V2 multi-head latent attention (below)
     MGA       pikaia's multi-head genetic attention (below)
     GDN       Gated DeltaNet linear attention (attn_linear.h: equations, chunked and recurrent
               forms, fla's parameter names); options conv_size (default 4), chunk (64)
     DSA       DeepSeek-V3.2 sparse attention (attn_sparse.h: equations, kernels): GQA whose
               queries each attend only to their top-k causal keys, chosen by a lightning indexer
               I(t,s) = sum_j w(t,j) ReLU(q_I(t,j) . k_I(s)) (q_I, k_I from x through their own
               projections, with RoPE). Options topk (512) or topk_pct (a percent of the
               context), indexer_heads (4), indexer_dim (64), indexer_fp32. The indexer trains
               on KL(p || softmax(I)) over the selected keys, p the heads' mean attention
               (detached), averaged over the micro-batch's tokens, with its input detached
               (DeepSeek's sparse stage). Training stages (train.h: dsa_warmup, topk_start,
               topk_ramp): a dense warm-up (dense attention; the indexer learns toward the
               dense probabilities of the keys it selects) and a progressive k.
     IDENTITY  no token mixing: out = W_o (W_v x), a control for "how much does mixing buy"
   Options for MHA/GQA/MQA/SWA:
     window W > 0   sliding window: token i sees i-W+1..i (0 = full causal; MLA and MGA too)
     global=G, stride=S, dilation=R (pattern_block PB, default 128): fixed sparse patterns
                    added to the window W (ops.h: local+global, strided, dilated; the flash
                    kernels skip the key tiles no query of a block sees), e.g. swa:256:global=4
     qk_norm        RMSNorm over each head's q and k (one learnable [head_dim] scale for q and
                    one for k, shared by heads, as in Qwen3/OLMo-2-style QK-norm), before RoPE.

   PARAMETERS of one attention block (PyTorch [out, in] layout, Hugging Face names):
     q_proj [H*hd, d], k_proj [KV*hd, d], v_proj [KV*hd, d], o_proj [d, H*hd],
     q_norm [hd], k_norm [hd] (qk_norm only). IDENTITY: v_proj [H*hd, d], o_proj [d, H*hd].

   Forward: x -> q,k,v projections -> (QK-norm) -> RoPE on q,k -> causal attention -> o_proj.

   MLA (DeepSeek-V2, arXiv 2405.04434). Sizes: latent r = latent_dim (default d/2), query
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
   P must be 32, 64 or 128 (the flash kernel's head dims). The absorbed form is CPU only.

   MGA (pikaia, danube-ai/pikaia, pikaia/nn_components/mga.py: MultiHeadGeneticAttention
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

   PER-LAYER SCHEDULES (attn_schedule_*): a string of items separated by ',' or '+'
   ('+' inside study axes, where ',' separates values):
     schedule := item { (',' | '+') item }
     item     := name { ':' option } [ '*' count ]
     name     := mha | gqa | mqa | swa | mla | mga | gdn | dsa | identity
     option   := W (a bare integer: the window) | key '=' integer
     key      := window | kv | qk_norm | latent | q_latent | rope | v_dim | gate | faithful | conv | chunk
               | topk | topk_pct | iheads | idim | ifp32 | global | stride | dilation | pblock
   "swa:256*3,gqa" is three sliding-window layers (W = 256) then one GQA layer; the expanded
   pattern repeats over the depth (layer l takes item l mod length). Options not given come
   from the base config (the model's --window, --kv-heads, ...).
*/
#ifndef ATTN_H
#define ATTN_H

#include "ops.h"
#include "attn_linear.h"
#include "attn_sparse.h"
#include <stddef.h>

typedef enum { ATTN_DEFAULT = 0, ATTN_MHA, ATTN_GQA, ATTN_MQA, ATTN_IDENTITY, ATTN_SWA, ATTN_MLA, ATTN_MGA,
               ATTN_GDN, ATTN_DSA } AttnKind;
#define ATTN_KIND_LAST ATTN_DSA
/* for messages: every name attn_kind_parse takes */
#define ATTN_KIND_LIST "mha, gqa, mqa, swa, mla, mga, gdn, dsa or identity"
#define ATTN_MAX_PARAMS 16 /* parameter tensors of one block, at most (GDN: 13) */

typedef struct {
    AttnKind kind;      /* default GQA */
    int d_model;        /* default 576 */
    int n_heads;        /* default 9 */
    int n_kv_heads;     /* default: MHA n_heads, MQA 1, GQA n_heads/3 (else n_heads/2, else 1) */
    int head_dim;       /* default d_model / n_heads */
    int window;         /* 0 = full causal */
    int qk_norm;        /* 0/1 */
    /* fixed sparse patterns on top of the window (ops.h, AttnPattern; MHA/GQA/MQA/SWA) */
    int global_tokens;  /* the first G tokens: seen by every later query */
    int stride;         /* S: the last pattern_block keys of every S-token span: seen by all later */
    int dilation;       /* R >= 2: a second window of W*R keeping every R-th block of keys */
    int pattern_block;  /* the block of strided and dilated keys, default 128 (whole key tiles) */
    float rope_theta;   /* default 100000 */
    float norm_eps;     /* default 1e-5 */
    /* MLA (ignored by the others) */
    int latent_dim;     /* KV latent r, default d_model / 2 */
    int q_latent_dim;   /* query latent r_q, 0 = none (q_proj straight from x) */
    int rope_dim;       /* decoupled rotary part of the q.k head dim, default head_dim / 2 */
    int v_head_dim;     /* default head_dim */
    /* MGA (ignored by the others) */
    int mga_faithful;   /* 1: pikaia's whole-sequence normalization and centred gate conv (leaks) */
    int mga_gate;       /* 1: the conv + SiLU + sigmoid output gate */
    int mga_decomposed; /* 1: on the CPU too, run MGA as the GPU does (the O(T) decomposition
                           below) instead of the literal equations; the GPU always does */
    /* GDN (ignored by the others) */
    int conv_size;      /* short causal conv over time, default 4 */
    int chunk;          /* chunk of the chunked delta rule, default 64 */
    /* DSA (ignored by the others) */
    int topk;           /* keys per query, default 512 (all of them when the context is shorter) */
    int topk_pct;       /* > 0: k = this percent of the context T instead (at least 1) */
    int indexer_heads;  /* default 4 */
    int indexer_dim;    /* default 64 */
    int indexer_fp32;   /* 1: the indexer's scores in fp32 on the GPU (default bf16) */
    /* DSA's training stage, set between steps (smollm_set_dsa_stage; not resolved, not saved):
       dsa_dense 1: dense attention while the indexer learns (warm-up); topk_now > 0: fewer
       keys than topk (a progressive schedule; the buffers hold topk) */
    int dsa_dense, topk_now;
} AttnConfig;

/* one parameter tensor: name, place in the flat parameter buffer, shape */
typedef struct {
    char name[96];
    size_t offset, numel;
    int rows, cols;     /* cols = 0 for vectors */
    int is_norm;        /* norm scales: no weight decay unless asked, init to 1 */
    int is_embedding;
    int is_output_proj; /* o_proj / down_proj: init scaled by 1/sqrt(2 n_layers) */
} ParamSpec;

/* saved activations of one attention block (pointers into the model's arena) */
typedef struct {
    void *q, *k, *v;         /* after QK-norm and RoPE; IDENTITY uses v only ([N, H*hd]) */
    void *q_raw, *k_raw;     /* projections before QK-norm (qk_norm only) */
    real_t *q_rstd, *k_rstd; /* [N*H], [N*KV] (qk_norm only) */
    void *att;               /* attention output before o_proj [N, H*hd] */
    real_t *lse;             /* [B, H, T] */
    /* MLA: latents (q, k, v, att are [N, H, P] there, P = max(hd, dv)) */
    void *lat_q, *lat_qn, *lat_kv, *lat_kvn, *att_v;
    real_t *lat_q_rstd, *lat_kv_rstd;
    /* MGA gate: conv output, gate logits, gated output (q holds g) */
    void *conv, *gate, *gated;
    /* MGA decomposed: k holds u, q the scaled u, vrep v repeated to H heads (KV < H);
       per-row [N, H] norms, den, running sums of 1/den and fitness */
    void *vrep;
    real_t *mga_nrm, *mga_den, *mga_S, *mga_f;
    GdnActs gdn;             /* GDN: attn_linear.h */
    /* DSA: indexer query [N, HI*dI], key [N, dI] (both after RoPE), weights [N, HI];
       the selected key positions [N, k] (int32, in the real_t area) */
    void *iq, *ik, *iw;
    int *idx;
} AttnActs;

/* backward scratch, shared by all layers (MLA also uses kvf, lat_a, lat_b, kva) */
typedef struct {
    void *datt, *dq, *dk, *dv, *kvf, *lat_a, *lat_b, *kva;
    /* MGA decomposed: fp32 [N, H*hd] work buffers, fp32 [N, H] row buffers */
    real_t *mga_du, *mga_c, *mga_ru, *mga_ds, *mga_dden, *mga_sd;
    GdnScratch gdn;
    /* DSA: the target distribution [N, k] and KL per token [N] (fp32); indexer gradients */
    real_t *psum, *kl;
    void *diq, *dik, *diw;
} AttnScratch;

const char *attn_kind_name(AttnKind k);
int attn_kind_parse(const char *s, AttnKind *out);       /* 0 on success */
/* fill defaults and check; on error writes a message naming the bad value, returns -1 */
int attn_resolve(AttnConfig *c, char *err, size_t errlen);
/* parameter tensors of one block; offsets relative to the block; returns the count
   (out may be NULL to ask for the count) */
int attn_param_specs(const AttnConfig *c, ParamSpec *out);
size_t attn_param_count(const AttnConfig *c);
/* bytes of KV cache one token adds to one layer, at bytes_per_elem per element */
size_t attn_kv_bytes_per_token(const AttnConfig *c, int bytes_per_elem);
/* forward FLOPs per token of one block at context T (matmuls + scores + mixing) */
double attn_flops_per_token(const AttnConfig *c, int T);
/* 0 when the GPU path runs this config, else -1 with a message (the flash kernel's head
   dims 32, 64, 128: MLA's core width max(head_dim, v_head_dim), MGA's head_dim; GDN: head_dim
   64; DSA: the sparse kernels' limits, attn_sparse.h) */
int attn_gpu_supported(const AttnConfig *c, char *err, size_t errlen);
/* MLA's inference form (CPU): up-projections absorbed into the query and the output,
   attention over the cached latent; same out [N, d] as attn_forward */
int attn_mla_absorbed_forward(const AttnConfig *c, const real_t *w, const real_t *x, real_t *out,
                              int B, int T); /* -1: out of host memory */
/* after the generic init (normal matrices, norm scales 1): the tensors a mechanism
   initializes its own way (GDN: convs, A_log, dt_bias); w is the block's fp32 weights */
void attn_param_init_special(const AttnConfig *c, real_t *w, unsigned long long seed);
/* DSA: keys each query attends to at context T (the buffers' size); attn_topk_now: at the
   current stage (topk_now, at most attn_topk) */
int attn_topk(const AttnConfig *c, int T);
int attn_topk_now(const AttnConfig *c, int T);
/* recurrent state bytes per sequence of one layer (GDN: constant in T; 0 for the others,
   whose cache grows per token: attn_kv_bytes_per_token) */
size_t attn_state_bytes(const AttnConfig *c);

/* schedules (grammar above). attn_schedule_length: items after expansion, or -1 with a
   message. attn_schedule_apply: overlay the item of `layer` onto *c (the base config);
   0 on success, else -1 with a message naming the bad item. Neither resolves *c. */
int attn_schedule_length(const char *sched, char *err, size_t errlen);
int attn_schedule_apply(const char *sched, int layer, AttnConfig *c, char *err, size_t errlen);

/* activation memory of one block: elements of activation type and of real_t */
void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems);
/* carve AttnActs out of the given memory (sizes from attn_act_sizes) */
void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem,
                    real_t *stat_mem, int B, int T);
size_t attn_scratch_elems(const AttnConfig *c, int B, int T);
void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T);

/* w: the block's compute weights (act type); out [N, d] written */
int attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x,
                 void *out, int B, int T);
/* dw: the block's weight gradients (accumulated); dx [N, d] written (=). Both return 0, or -1
   when the CPU path runs out of host memory for its temporaries (MGA, DSA's indexer) or the
   config is one the GPU does not run (a caller that skipped attn_gpu_supported): nothing is
   reported, the caller names the layer */
int attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a,
                  AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T);

#endif /* ATTN_H */

/* ======================================================================= */
#ifdef ATTN_IMPLEMENTATION
#ifndef ATTN_IMPLEMENTATION_DONE
#define ATTN_IMPLEMENTATION_DONE

/* the mechanisms kept in their own headers are implemented with this one */
#ifndef ATTN_LINEAR_IMPLEMENTATION
#define ATTN_LINEAR_IMPLEMENTATION
#endif
#include "attn_linear.h"

#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <stdint.h>
#include <math.h>

static const char *attn_names[] = {"default", "mha", "gqa", "mqa", "identity", "swa", "mla", "mga", "gdn", "dsa"};

/* the config's sparse pattern on its window; 0 when it has none (plain window or dense) */
static int attn_pattern_of(const AttnConfig *c, AttnPattern *p) {
    AttnPattern q = {c->window, c->global_tokens, c->stride, c->dilation, c->pattern_block};
    *p = q;
    return c->global_tokens || c->stride || c->dilation;
}

int attn_topk(const AttnConfig *c, int T) {
    long k = c->topk_pct > 0 ? (long)T * c->topk_pct / 100 : c->topk;
    if (k < 1) k = 1;
    return (int)(k < T ? k : T);
}
int attn_topk_now(const AttnConfig *c, int T) {
    int k = attn_topk(c, T);
    return c->topk_now > 0 && c->topk_now < k ? c->topk_now : k;
}

static GdnDims gdn_dims(const AttnConfig *c) {
    GdnDims g = {c->d_model, c->n_heads, c->head_dim, c->conv_size, c->chunk, c->norm_eps};
    return g;
}

const char *attn_kind_name(AttnKind k) {
    return (k >= 0 && k <= ATTN_KIND_LAST) ? attn_names[k] : "?";
}

int attn_kind_parse(const char *s, AttnKind *out) {
    for (int i = 1; i <= ATTN_KIND_LAST; i++)
        if (strcmp(s, attn_names[i]) == 0) { *out = (AttnKind)i; return 0; }
    return -1;
}

int attn_resolve(AttnConfig *c, char *err, size_t errlen) {
    if (c->kind == ATTN_DEFAULT) c->kind = ATTN_GQA;
    if (c->d_model == 0) c->d_model = 576;
    if (c->n_heads == 0) c->n_heads = 9;
    if (c->rope_theta == 0) c->rope_theta = 100000.0f;
    if (c->norm_eps == 0) c->norm_eps = 1e-5f;
    if (c->d_model < 1 || c->n_heads < 1) {
        snprintf(err, errlen, "d_model %d and heads %d must be positive", c->d_model, c->n_heads);
        return -1;
    }
    if (c->head_dim == 0) {
        if (c->d_model % c->n_heads) {
            snprintf(err, errlen, "d_model %d is not divisible by heads %d (or give head_dim)",
                     c->d_model, c->n_heads);
            return -1;
        }
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->head_dim < 2 || c->head_dim % 2) {
        snprintf(err, errlen, "head_dim %d must be even and >= 2 (RoPE rotates pairs)", c->head_dim);
        return -1;
    }
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
    case ATTN_DSA: /* GQA whose queries each attend to their top-k keys (by the indexer) */
        if (c->window) {
            snprintf(err, errlen, "attn dsa takes no window (got %d): the indexer picks the keys", c->window);
            return -1;
        }
        if (c->topk == 0) c->topk = 512;
        if (c->indexer_heads == 0) c->indexer_heads = 4;
        if (c->indexer_dim == 0) c->indexer_dim = 64;
        if (c->topk < 1 || c->topk > SPARSE_MAX_TOPK || c->topk_pct < 0 || c->topk_pct > 100 ||
            c->indexer_heads < 1 || c->indexer_heads > 16 || c->indexer_dim < 2 || c->indexer_dim % 2) {
            snprintf(err, errlen, "attn dsa: topk %d (1..%d), topk_pct %d (0..100), indexer heads %d (1..16), "
                     "indexer dim %d (even): out of range", c->topk, SPARSE_MAX_TOPK, c->topk_pct,
                     c->indexer_heads, c->indexer_dim);
            return -1;
        }
        /* fall through */ /* kv heads as GQA */
    case ATTN_SWA: /* GQA with a window (checked below) */
    case ATTN_GQA:
        if (c->n_kv_heads == 0) /* SmolLM2's ratio of 3 where it divides, else 2, else MQA */
            c->n_kv_heads = c->n_heads % 3 == 0 ? c->n_heads / 3 : c->n_heads % 2 == 0 ? c->n_heads / 2 : 1;
        break;
    case ATTN_IDENTITY:
    case ATTN_MLA: /* keys and values come per head from the shared latent */
        c->n_kv_heads = c->n_heads;
        break;
    case ATTN_MGA: /* pikaia's default: as many value heads as genetic heads */
        if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
        break;
    case ATTN_GDN: { /* per-head recurrent state: no KV heads, no window, no RoPE */
        if (c->window || c->qk_norm) {
            snprintf(err, errlen, "attn gdn takes no window (%d) or qk_norm (%d): its state already forgets "
                     "(gates) and q, k are L2-normalized", c->window, c->qk_norm);
            return -1;
        }
        c->n_kv_heads = c->n_heads;
        GdnDims g = gdn_dims(c);
        if (gdn_resolve(&g, err, errlen)) return -1;
        c->conv_size = g.conv_size;
        c->chunk = g.chunk;
        break;
    }
    default:
        snprintf(err, errlen, "unknown attention kind %d", (int)c->kind);
        return -1;
    }
    if (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads) {
        snprintf(err, errlen, "heads %d is not divisible by kv_heads %d", c->n_heads, c->n_kv_heads);
        return -1;
    }
    if (c->window < 0) {
        snprintf(err, errlen, "window %d must be >= 1 (or 0 for full causal attention)", c->window);
        return -1;
    }
    if ((c->global_tokens || c->stride || c->dilation || c->pattern_block) &&
        (c->kind == ATTN_MLA || c->kind == ATTN_MGA || c->kind == ATTN_IDENTITY || c->kind == ATTN_DSA ||
         c->kind == ATTN_GDN || c->window < 1 || c->global_tokens < 0 || c->stride < 0 || c->dilation < 0 ||
         c->pattern_block < 0)) {
        snprintf(err, errlen, "sparse pattern (global %d, stride %d, dilation %d, block %d) on attn %s with window %d: "
                 "patterns add keys to a sliding window of mha, gqa, mqa or swa (window >= 1), all values >= 0",
                 c->global_tokens, c->stride, c->dilation, c->pattern_block, attn_kind_name(c->kind), c->window);
        return -1;
    }
    if (c->kind == ATTN_SWA && c->window < 1) {
        snprintf(err, errlen, "attn swa needs a window >= 1 (swa:W or --window W), got %d", c->window);
        return -1;
    }
    if (c->qk_norm && (c->kind == ATTN_MLA || c->kind == ATTN_MGA)) {
        snprintf(err, errlen, "qk_norm is not defined for attn %s (expected mha, gqa, mqa or swa)",
                 attn_kind_name(c->kind));
        return -1;
    }
    if (c->kind == ATTN_MLA) {
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
    }
    return 0;
}

/* MLA widths: q.k head dim, its non-rotary part, v head dim, and the core's padded width */
typedef struct { int qk, nope, rope, v, P, r, rq; } MlaDims;
static MlaDims mla_dims(const AttnConfig *c) {
    MlaDims m = {c->head_dim, c->head_dim - c->rope_dim, c->rope_dim, c->v_head_dim, 0,
                 c->latent_dim, c->q_latent_dim};
    m.P = m.qk > m.v ? m.qk : m.v;
    return m;
}

int attn_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        return gdn_gpu_supported(&g, err, errlen);
    }
    if (c->kind == ATTN_DSA) {
        int hd = c->head_dim, dI = c->indexer_dim, g = c->n_heads / c->n_kv_heads;
        if ((hd != 32 && hd != 64 && hd != 128) || (dI != 32 && dI != 64 && dI != 128) ||
            c->indexer_heads * dI > 1024 || (g > 16 && g % 16)) {
            snprintf(err, errlen, "attn dsa on the GPU needs head_dim and indexer_dim in {32, 64, 128}, "
                     "indexer heads x dim <= 1024 and heads/kv_heads <= 16 or a multiple of 16 (got %d, %d, %d, %d)",
                     hd, dI, c->indexer_heads * dI, g);
            return -1;
        }
        return 0;
    }
    if (c->kind == ATTN_MLA) {
        MlaDims m = mla_dims(c);
        if (m.P != 32 && m.P != 64 && m.P != 128) {
            snprintf(err, errlen, "attn mla on the GPU needs max(head_dim %d, v_dim %d) in {32, 64, 128} "
                     "(the flash kernel's head dims): use --device cpu or change the widths", m.qk, m.v);
            return -1;
        }
        return 0;
    }
    if (c->kind == ATTN_MGA && c->head_dim != 32 && c->head_dim != 64 && c->head_dim != 128) {
        snprintf(err, errlen, "attn mga on the GPU needs head_dim in {32, 64, 128} (the flash kernel's), got %d",
                 c->head_dim);
        return -1;
    }
    return 0;
}

static void spec_set(ParamSpec *p, const char *name, size_t *off, int rows, int cols) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = *off;
    p->rows = rows;
    p->cols = cols;
    p->numel = (size_t)rows * (cols ? cols : 1);
    p->is_norm = cols == 0;
    p->is_embedding = 0;
    p->is_output_proj = 0;
    *off += p->numel;
}

int attn_param_specs(const AttnConfig *c, ParamSpec *out) {
    ParamSpec tmp[ATTN_MAX_PARAMS];
    ParamSpec *p = out ? out : tmp;
    size_t off = 0;
    int n = 0, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    if (c->kind == ATTN_MLA) { /* DeepSeek-V2's module order */
        MlaDims m = mla_dims(c);
        int H = c->n_heads;
        if (m.rq > 0) {
            spec_set(&p[n++], "q_a_proj.weight", &off, m.rq, d);
            spec_set(&p[n++], "q_a_layernorm.weight", &off, m.rq, 0);
            spec_set(&p[n++], "q_b_proj.weight", &off, H * m.qk, m.rq);
        } else {
            spec_set(&p[n++], "q_proj.weight", &off, H * m.qk, d);
        }
        spec_set(&p[n++], "kv_a_proj_with_mqa.weight", &off, m.r + m.rope, d);
        spec_set(&p[n++], "kv_a_layernorm.weight", &off, m.r, 0);
        spec_set(&p[n++], "kv_b_proj.weight", &off, H * (m.nope + m.v), m.r);
        spec_set(&p[n++], "o_proj.weight", &off, d, H * m.v);
        p[n - 1].is_output_proj = 1;
        return n;
    }
    if (c->kind == ATTN_GDN) { /* fla's names; A_log and dt_bias are bare parameters */
        GdnDims g = gdn_dims(c);
        GdnParamSpec gp[GDN_N_PARAMS];
        int k = gdn_param_specs(&g, gp);
        for (int i = 0; i < k; i++) {
            char name[96];
            int bare = !strcmp(gp[i].name, "A_log") || !strcmp(gp[i].name, "dt_bias");
            snprintf(name, sizeof name, bare ? "%s" : "%s.weight", gp[i].name);
            spec_set(&p[n], name, &off, gp[i].rows, gp[i].cols);
            p[n].offset = gp[i].offset; /* the block's own layout (same order, so equal) */
            p[n].is_output_proj = gp[i].is_output_proj;
            n++;
        }
        return n;
    }
    if (c->kind == ATTN_MGA) {
        spec_set(&p[n++], "g_proj.weight", &off, qd, d);
        spec_set(&p[n++], "v_proj.weight", &off, kvd, d);
        spec_set(&p[n++], "o_proj.weight", &off, d, qd);
        p[n - 1].is_output_proj = 1;
        if (c->mga_gate) {
            spec_set(&p[n++], "gate_conv.weight", &off, d, 3);
            spec_set(&p[n++], "gate_proj.weight", &off, qd, d);
        }
        return n;
    }
    if (c->kind == ATTN_IDENTITY) {
        spec_set(&p[n++], "v_proj.weight", &off, qd, d);
        spec_set(&p[n++], "o_proj.weight", &off, d, qd);
        p[n - 1].is_output_proj = 1;
        return n;
    }
    spec_set(&p[n++], "q_proj.weight", &off, qd, d);
    spec_set(&p[n++], "k_proj.weight", &off, kvd, d);
    spec_set(&p[n++], "v_proj.weight", &off, kvd, d);
    spec_set(&p[n++], "o_proj.weight", &off, d, qd);
    p[n - 1].is_output_proj = 1;
    if (c->qk_norm) {
        spec_set(&p[n++], "q_norm.weight", &off, c->head_dim, 0);
        spec_set(&p[n++], "k_norm.weight", &off, c->head_dim, 0);
    }
    if (c->kind == ATTN_DSA) { /* the lightning indexer (DeepSeek-V3.2's wq_b, wk, weights_proj) */
        spec_set(&p[n++], "indexer.q_proj.weight", &off, c->indexer_heads * c->indexer_dim, d);
        spec_set(&p[n++], "indexer.k_proj.weight", &off, c->indexer_dim, d);
        spec_set(&p[n++], "indexer.w_proj.weight", &off, c->indexer_heads, d);
    }
    return n;
}

/* offset of the named tensor within the block (every caller asks for one that exists) */
static size_t spec_off(const AttnConfig *c, const char *name) {
    ParamSpec p[ATTN_MAX_PARAMS];
    int n = attn_param_specs(c, p);
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].name, name)) return p[i].offset;
    fprintf(stderr, "attn: no tensor %s in attn %s\n", name, attn_kind_name(c->kind));
    abort();
}

size_t attn_param_count(const AttnConfig *c) {
    ParamSpec p[ATTN_MAX_PARAMS];
    int n = attn_param_specs(c, p);
    return p[n - 1].offset + p[n - 1].numel;
}

size_t attn_kv_bytes_per_token(const AttnConfig *c, int bytes_per_elem) {
    if (c->kind == ATTN_IDENTITY || c->kind == ATTN_GDN) return 0; /* GDN: attn_state_bytes */
    /* MLA caches the normed latent and the one rotary key; the absorbed form needs nothing else */
    if (c->kind == ATTN_MLA) return (size_t)(c->latent_dim + c->rope_dim) * bytes_per_elem;
    /* MGA: g is query and key at once, so g of every head plus the values (the running
       prefix sum of 1/den is one scalar per head and sequence, not per token) */
    if (c->kind == ATTN_MGA) return (size_t)(c->n_heads + c->n_kv_heads) * c->head_dim * bytes_per_elem;
    return (size_t)2 * c->n_kv_heads * c->head_dim * bytes_per_elem;
}

size_t attn_state_bytes(const AttnConfig *c) {
    if (c->kind != ATTN_GDN) return 0;
    GdnDims g = gdn_dims(c);
    return gdn_state_bytes(&g);
}

void attn_param_init_special(const AttnConfig *c, real_t *w, unsigned long long seed) {
    if (c->kind != ATTN_GDN) return;
    GdnDims g = gdn_dims(c);
    gdn_param_init_special(&g, w, seed);
}

double attn_flops_per_token(const AttnConfig *c, int T) {
    if (c->kind == ATTN_GDN) { /* linear in T: no context term */
        GdnDims g = gdn_dims(c);
        return gdn_flops_per_token(&g);
    }
    double proj = 2.0 * (double)attn_param_count(c);
    if (c->kind == ATTN_IDENTITY) return proj;
    /* average keys per query under the causal (and window) mask */
    double keys = (T + 1) / 2.0;
    if (c->window > 0 && c->window < T) {
        double W = c->window; /* first W queries see t+1 keys, the rest W */
        keys = (W * (W + 1) / 2 + (T - W) * W) / T;
    }
    AttnPattern pat;
    if (attn_pattern_of(c, &pat)) keys = attn_pattern_mean_keys(&pat, T); /* the pattern's mask, counted */
    if (c->kind == ATTN_MLA) {
        MlaDims m = mla_dims(c);
        return proj + 2.0 * c->n_heads * (m.qk + m.v) * keys;
    }
    if (c->kind == ATTN_DSA) { /* k keys per query (at most the causal ones), plus the indexer's scores */
        double k = attn_topk(c, T) < keys ? attn_topk(c, T) : keys;
        return proj + 4.0 * c->n_heads * c->head_dim * k + 2.0 * c->indexer_heads * (c->indexer_dim + 1) * (T + 1) / 2.0;
    }
    return proj + 4.0 * c->n_heads * c->head_dim * keys; /* QK^T and PV (MGA: G G^T and PV) */
}

/* take n elements of size es from a moving cursor */
static void *carve(char **cur, size_t n, size_t es) { void *p = *cur; *cur += n * es; return p; }

/* MLA and MGA lay out their activations in one function, run with base 0 to measure */
static void attn_ext_layout(const AttnConfig *c, AttnActs *a, char **cur, char **sc, size_t es, int B, int T) {
    size_t N = (size_t)B * T, H = c->n_heads, d = c->d_model, rs = sizeof(real_t);
    if (c->kind == ATTN_MLA) {
        MlaDims m = mla_dims(c);
        a->q = carve(cur, N * H * m.P, es);
        a->k = carve(cur, N * H * m.P, es);
        a->v = carve(cur, N * H * m.P, es);
        /* att and att_v (contiguous) double as the forward's scratch before the core runs:
           the unpadded query, the kv_a output, the kv_b output (mla_forward) */
        size_t fs = H * m.qk, kw = H * (m.nope + m.v), av = H * m.v;
        if ((size_t)(m.r + m.rope) > fs) fs = m.r + m.rope;
        if (kw > fs) fs = kw;
        if (fs > H * m.P + av) av = fs - H * m.P;
        a->att = carve(cur, N * H * m.P, es);
        a->att_v = carve(cur, N * av, es);
        a->lse = carve(sc, (size_t)B * H * T, rs);
        if (m.rq) {
            a->lat_q = carve(cur, N * m.rq, es);
            a->lat_qn = carve(cur, N * m.rq, es);
            a->lat_q_rstd = carve(sc, N, rs);
        }
        a->lat_kv = carve(cur, N * m.r, es);
        a->lat_kvn = carve(cur, N * m.r, es);
        a->lat_kv_rstd = carve(sc, N, rs);
    } else { /* MGA; q and att adjacent: the decomposed forward keeps its fp32 C there */
        size_t qd = H * c->head_dim;
        a->q = carve(cur, N * qd, es);
        a->att = carve(cur, N * qd, es);
        a->v = carve(cur, N * c->n_kv_heads * c->head_dim, es);
        /* the decomposed form's (the GPU's, or mga_decomposed); small beside the rest */
        a->k = carve(cur, N * qd, es);
        if (c->n_kv_heads < c->n_heads) a->vrep = carve(cur, N * qd, es);
        a->lse = carve(sc, (size_t)B * H * T, rs);
        a->mga_nrm = carve(sc, N * H, rs);
        a->mga_den = carve(sc, N * H, rs);
        a->mga_S = carve(sc, N * H, rs);
        a->mga_f = carve(sc, N * H, rs);
        if (c->mga_gate) {
            a->conv = carve(cur, N * d, es);
            a->gate = carve(cur, N * qd, es);
            a->gated = carve(cur, N * qd, es);
        }
    }
}

void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        gdn_act_sizes(&g, B, T, act_elems, stat_elems);
        return;
    }
    if (c->kind == ATTN_MLA || c->kind == ATTN_MGA) {
        AttnActs a;
        char *cur = NULL, *sc = NULL;
        attn_ext_layout(c, &a, &cur, &sc, 1, B, T);
        *act_elems = (size_t)cur;
        *stat_elems = (size_t)sc / sizeof(real_t);
        return;
    }
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    if (c->kind == ATTN_IDENTITY) { *act_elems = N * qd; *stat_elems = 0; return; }
    *act_elems = N * (qd + 2 * kvd + qd);
    *stat_elems = (size_t)B * c->n_heads * T;
    if (c->qk_norm) {
        *act_elems += N * (qd + kvd);
        *stat_elems += N * (c->n_heads + c->n_kv_heads);
    }
    if (c->kind == ATTN_DSA) {
        *act_elems += N * ((size_t)c->indexer_heads * c->indexer_dim + c->indexer_dim + c->indexer_heads);
        *stat_elems += N * (size_t)attn_topk(c, T);
    }
}

void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem,
                    real_t *stat_mem, int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    char *cur = act_mem, *sc = (char *)stat_mem;
    memset(a, 0, sizeof *a);
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        gdn_acts_bind(&g, &a->gdn, gpu, act_mem, stat_mem, B, T);
        return;
    }
    if (c->kind == ATTN_MLA || c->kind == ATTN_MGA) { attn_ext_layout(c, a, &cur, &sc, es, B, T); return; }
    if (c->kind == ATTN_IDENTITY) { a->v = a->att = carve(&cur, N * qd, es); return; }
    a->q = carve(&cur, N * qd, es);
    a->k = carve(&cur, N * kvd, es);
    a->v = carve(&cur, N * kvd, es);
    a->att = carve(&cur, N * qd, es);
    a->lse = carve(&sc, (size_t)B * c->n_heads * T, sizeof(real_t));
    if (c->qk_norm) {
        a->q_raw = carve(&cur, N * qd, es);
        a->k_raw = carve(&cur, N * kvd, es);
        a->q_rstd = carve(&sc, N * c->n_heads, sizeof(real_t));
        a->k_rstd = carve(&sc, N * c->n_kv_heads, sizeof(real_t));
    }
    if (c->kind == ATTN_DSA) {
        a->iq = carve(&cur, N * c->indexer_heads * c->indexer_dim, es);
        a->ik = carve(&cur, N * c->indexer_dim, es);
        a->iw = carve(&cur, N * c->indexer_heads, es);
        a->idx = (int *)(void *)carve(&sc, N * attn_topk(c, T), sizeof(real_t)); /* an int per real_t slot */
    }
}

/* MLA's backward scratch: datt, dq, dk, dv [N, H, P]; kvf [N, H*(nope + v)] (o_proj's
   input gradient, then kv_b's output gradient); lat_a, lat_b [N, max(r, r_q)] (latent
   gradients); kva [N, r + rope] (kv_a's output gradient). Base 0 measures it. */
static void mla_scratch_layout(const AttnConfig *c, AttnScratch *s, char *cur, size_t es, int B, int T) {
    MlaDims m = mla_dims(c);
    size_t N = (size_t)B * T, NH = N * c->n_heads, rl = m.r > m.rq ? m.r : m.rq;
    s->datt = carve(&cur, NH * m.P, es);
    s->dq = carve(&cur, NH * m.P, es);
    s->dk = carve(&cur, NH * m.P, es);
    s->dv = carve(&cur, NH * m.P, es);
    s->kvf = carve(&cur, NH * (m.nope + m.v), es);
    s->lat_a = carve(&cur, N * rl, es);
    s->lat_b = carve(&cur, N * rl, es);
    s->kva = carve(&cur, N * (m.r + m.rope), es);
}

/* MGA decomposed: datt, dq, dk, dv [N, H*hd] activations, then fp32 du, c, ru [N, H*hd]
   and ds, dden, sd [N, H], carved in bytes (an fp32 takes at most two activation elements) */
static void mga_scratch_layout(const AttnConfig *c, AttnScratch *s, char *cur, size_t es, int B, int T) {
    size_t N = (size_t)B * T, nh = N * c->n_heads, nhd = nh * c->head_dim, f = sizeof(real_t);
    s->datt = carve(&cur, nhd, es);
    s->dq = carve(&cur, nhd, es);
    s->dk = carve(&cur, nhd, es);
    s->dv = carve(&cur, nhd, es);
    s->mga_du = (real_t *)(void *)carve(&cur, nhd, f);
    s->mga_c = (real_t *)(void *)carve(&cur, nhd, f);
    s->mga_ru = (real_t *)(void *)carve(&cur, nhd, f);
    s->mga_ds = (real_t *)(void *)carve(&cur, nh, f);
    s->mga_dden = (real_t *)(void *)carve(&cur, nh, f);
    s->mga_sd = (real_t *)(void *)carve(&cur, nh, f);
    if (c->mga_gate) { /* dgated, dgate [N, H*hd]; u (recomputed), du [N, d] */
        s->kva = carve(&cur, nhd, es);
        s->kvf = carve(&cur, nhd, es);
        s->lat_a = carve(&cur, N * c->d_model, es);
        s->lat_b = carve(&cur, N * c->d_model, es);
    }
}

/* the literal MGA (CPU) takes its backward scratch from malloc */
size_t attn_scratch_elems(const AttnConfig *c, int B, int T) {
    if (c->kind == ATTN_GDN) { /* its real_t part after the activations, 2 elements per fp32 */
        GdnDims g = gdn_dims(c);
        size_t ae, se;
        gdn_scratch_sizes(&g, B, T, &ae, &se);
        return ae + 2 * se + 8; /* + alignment of the real_t part */
    }
    if (c->kind == ATTN_MGA) {
        size_t nh = (size_t)B * T * c->n_heads, nhd = nh * c->head_dim;
        return 4 * nhd + 2 * (3 * nhd + 3 * nh) + (c->mga_gate ? 2 * nhd + 2 * (size_t)B * T * c->d_model : 0);
    }
    if (c->kind == ATTN_MLA) {
        AttnScratch s;
        mla_scratch_layout(c, &s, NULL, 1, B, T);
        return (size_t)(char *)s.kva + (size_t)B * T * (c->latent_dim + c->rope_dim);
    }
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t dsa = 0;
    if (c->kind == ATTN_DSA) /* indexer gradients, then fp32 psum [N, k] and kl [N] (2 elements per fp32) */
        dsa = N * ((size_t)c->indexer_heads * c->indexer_dim + c->indexer_dim + c->indexer_heads) +
              2 * (N * attn_topk(c, T) + N) + 8;
    return N * (2 * qd + 2 * kvd) + dsa;
}

void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    char *cur = mem;
    memset(s, 0, sizeof *s);
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        size_t ae, se;
        gdn_scratch_sizes(&g, B, T, &ae, &se);
        uintptr_t st = ((uintptr_t)((char *)mem + ae * es) + 15) & ~(uintptr_t)15;
        gdn_scratch_bind(&g, &s->gdn, gpu, mem, (real_t *)st, B, T);
        return;
    }
    if (c->kind == ATTN_MLA) { mla_scratch_layout(c, s, mem, es, B, T); return; }
    if (c->kind == ATTN_MGA) { mga_scratch_layout(c, s, mem, es, B, T); return; }
    s->datt = carve(&cur, N * qd, es);
    s->dq = carve(&cur, N * qd, es);
    s->dk = carve(&cur, N * kvd, es);
    s->dv = carve(&cur, N * kvd, es);
    if (c->kind == ATTN_DSA) {
        s->diq = carve(&cur, N * c->indexer_heads * c->indexer_dim, es);
        s->dik = carve(&cur, N * c->indexer_dim, es);
        s->diw = carve(&cur, N * c->indexer_heads, es);
        cur = (char *)(((uintptr_t)cur + 15) & ~(uintptr_t)15);
        s->psum = (real_t *)(void *)carve(&cur, N * attn_topk(c, T), sizeof(real_t));
        s->kl = (real_t *)(void *)carve(&cur, N, sizeof(real_t));
    }
}

/* ---- per-layer schedules ---- */

/* parses "123" fully into *v; 0 on success */
static int sched_int(const char *s, int *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (end == s || *end || x < 0 || x > 1 << 30) return -1;
    *v = (int)x;
    return 0;
}

/* one item "name:opt:opt*count" (NUL-terminated copy): applies name and options to *c when
   c != NULL, gives the repetition in *count */
static int sched_item(char *item, AttnConfig *c, int *count, char *err, size_t errlen) {
    char whole[128];
    snprintf(whole, sizeof whole, "%s", item);
    *count = 1;
    char *star = strchr(item, '*');
    if (star) {
        *star = 0;
        if (sched_int(star + 1, count) || *count < 1) {
            snprintf(err, errlen, "attn-layers item '%s': repetition '%s' must be an integer >= 1", whole, star + 1);
            return -1;
        }
    }
    char *opt = strchr(item, ':');
    if (opt) *opt++ = 0;
    AttnKind k;
    if (attn_kind_parse(item, &k)) {
        snprintf(err, errlen, "attn-layers item '%s': unknown mechanism '%s' (expected " ATTN_KIND_LIST ")",
                 whole, item);
        return -1;
    }
    AttnConfig tmp = c ? *c : (AttnConfig){0};
    tmp.kind = k;
    while (opt) {
        char *next = strchr(opt, ':');
        if (next) *next++ = 0;
        char *eq = strchr(opt, '=');
        const char *key = "window", *val = opt;
        if (eq) { *eq = 0; key = opt; val = eq + 1; }
        int v, *dst = !strcmp(key, "window") ? &tmp.window : !strcmp(key, "kv") ? &tmp.n_kv_heads
                    : !strcmp(key, "qk_norm") ? &tmp.qk_norm : !strcmp(key, "latent") ? &tmp.latent_dim
                    : !strcmp(key, "q_latent") ? &tmp.q_latent_dim : !strcmp(key, "rope") ? &tmp.rope_dim
                    : !strcmp(key, "v_dim") ? &tmp.v_head_dim : !strcmp(key, "gate") ? &tmp.mga_gate
                    : !strcmp(key, "faithful") ? &tmp.mga_faithful : !strcmp(key, "conv") ? &tmp.conv_size
                    : !strcmp(key, "chunk") ? &tmp.chunk : !strcmp(key, "topk") ? &tmp.topk
                    : !strcmp(key, "topk_pct") ? &tmp.topk_pct : !strcmp(key, "iheads") ? &tmp.indexer_heads
                    : !strcmp(key, "idim") ? &tmp.indexer_dim : !strcmp(key, "ifp32") ? &tmp.indexer_fp32
                    : !strcmp(key, "global") ? &tmp.global_tokens : !strcmp(key, "stride") ? &tmp.stride
                    : !strcmp(key, "dilation") ? &tmp.dilation : !strcmp(key, "pblock") ? &tmp.pattern_block : NULL;
        if (!dst) {
            snprintf(err, errlen, "attn-layers item '%s': unknown option '%s' (expected a window or one of "
                     "window, kv, qk_norm, latent, q_latent, rope, v_dim, gate, faithful, conv, chunk, topk, topk_pct, "
                     "iheads, idim, ifp32, global, stride, dilation, pblock =N)", whole, key);
            return -1;
        }
        if (sched_int(val, &v)) {
            snprintf(err, errlen, "attn-layers item '%s': option %s expects an integer >= 0, got '%s'", whole, key, val);
            return -1;
        }
        *dst = v;
        opt = next;
    }
    if (c) *c = tmp;
    return 0;
}

/* walks the items; stops at the one covering expanded index `want` (applied to c) or counts them */
static int sched_walk(const char *sched, int want, AttnConfig *c, char *err, size_t errlen) {
    int total = 0;
    const char *s = sched;
    if (!s || !*s) { snprintf(err, errlen, "attn-layers is empty: expected e.g. swa:256*3,gqa"); return -1; }
    for (;;) {
        size_t len = strcspn(s, ",+");
        char item[128];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "attn-layers '%s': %s item at offset %d", sched, len ? "too long an" : "empty",
                     (int)(s - sched));
            return -1;
        }
        memcpy(item, s, len);
        item[len] = 0;
        int count;
        if (sched_item(item, NULL, &count, err, errlen)) return -1;
        if (want >= total && want < total + count) {
            memcpy(item, s, len);
            item[len] = 0;
            return sched_item(item, c, &count, err, errlen);
        }
        total += count;
        if (!s[len]) break;
        s += len + 1;
    }
    return total;
}

int attn_schedule_length(const char *sched, char *err, size_t errlen) { return sched_walk(sched, -1, NULL, err, errlen); }

int attn_schedule_apply(const char *sched, int layer, AttnConfig *c, char *err, size_t errlen) {
    int n = attn_schedule_length(sched, err, errlen);
    if (n < 0) return -1;
    return sched_walk(sched, layer % n, c, err, errlen) < 0 ? -1 : 0;
}

/* element offset -> pointer, for weights stored in activation precision */
static const void *wat(const Gpu *gpu, const void *base, size_t off) {
    return (const char *)base + off * ops_act_size(gpu);
}


/* ---- MLA (both paths, through the ops) and MGA (the CPU path: real_t pointers; the GPU
   refuses it in attn_gpu_supported) ---- */

/* zeroed host scratch of the CPU paths; NULL when memory runs out (the caller frees what it got
   and returns -1) */
static real_t *attn_tmp(size_t n) { return calloc(n ? n : 1, sizeof(real_t)); }


static int first_key(int t, int window) { return (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0; }

/* element offset -> writable pointer, for activations */
static void *act_at(const Gpu *gpu, void *base, size_t off) { return (char *)base + off * ops_act_size(gpu); }

/* the query before RoPE, qf [N, H*qk], through the query latent when there is one */
static void mla_query(Gpu *gpu, const AttnConfig *c, const void *w, const void *x, void *qf, void *lat_q,
                      void *lat_qn, real_t *lat_q_rstd, int N) {
    MlaDims m = mla_dims(c);
    int H = c->n_heads, d = c->d_model;
    if (m.rq) {
        op_matmul_forward(gpu, lat_q, x, wat(gpu, w, spec_off(c, "q_a_proj.weight")), N, d, m.rq);
        op_rmsnorm_forward(gpu, lat_qn, lat_q_rstd, lat_q, wat(gpu, w, spec_off(c, "q_a_layernorm.weight")), N, m.rq,
                           c->norm_eps);
        op_matmul_forward(gpu, qf, lat_qn, wat(gpu, w, spec_off(c, "q_b_proj.weight")), N, m.rq, H * m.qk);
    } else {
        op_matmul_forward(gpu, qf, x, wat(gpu, w, spec_off(c, "q_proj.weight")), N, d, H * m.qk);
    }
}

/* the latent path: kva [N, r + rope] = W_kva x; lat [N, r] its latent columns, latn =
   RMSNorm(lat); the shared rotary key is rotated in place in kva's last rope columns */
static void mla_latent(Gpu *gpu, const AttnConfig *c, const void *w, const void *x, void *kva, void *lat,
                       void *latn, real_t *lat_rstd, int N, int T) {
    MlaDims m = mla_dims(c);
    op_matmul_forward(gpu, kva, x, wat(gpu, w, spec_off(c, "kv_a_proj_with_mqa.weight")), N, c->d_model, m.r + m.rope);
    op_copy_cols(gpu, lat, m.r, kva, m.r + m.rope, N, m.r, 1, 0);
    op_rmsnorm_forward(gpu, latn, lat_rstd, lat, wat(gpu, w, spec_off(c, "kv_a_layernorm.weight")), N, m.r, c->norm_eps);
    op_rope_part_forward(gpu, act_at(gpu, kva, m.r), N, T, 1, m.r + m.rope, m.rope, c->rope_theta);
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
    void *tmp = a->att, *q = a->q, *k = a->k, *v = a->v;
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
    op_rope_part_forward(gpu, act_at(gpu, q, m.nope), N, T, H, m.P, m.rope, c->rope_theta);
    /* the latent, and the one rotary key copied into every head's key */
    mla_latent(gpu, c, w, x, tmp, a->lat_kv, a->lat_kvn, a->lat_kv_rstd, N, T);
    for (int h = 0; h < H; h++)
        op_copy_cols(gpu, act_at(gpu, k, (size_t)h * m.P + m.nope), (size_t)H * m.P, act_at(gpu, tmp, m.r),
                     m.r + m.rope, N, m.rope, 1, 0);
    /* per-head k_nope and v from the normed latent */
    op_matmul_forward(gpu, tmp, a->lat_kvn, wat(gpu, w, spec_off(c, "kv_b_proj.weight")), N, m.r, H * kw);
    op_copy_cols(gpu, k, m.P, tmp, kw, NH, m.nope, 1, 0);
    op_copy_cols(gpu, v, m.P, act_at(gpu, tmp, m.nope), kw, NH, m.v, 1, 0);
    op_attention_forward(gpu, a->att, a->lse, q, k, v, B, T, H, H, m.P, c->window);
    if (m.v < m.P) op_copy_cols(gpu, a->att_v, m.v, a->att, m.P, NH, m.v, 1, 0);
    op_matmul_forward(gpu, out, mla_o_in(c, a), wat(gpu, w, spec_off(c, "o_proj.weight")), N, H * m.v, c->d_model);
}

static void mla_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a, AttnScratch *s,
                         const void *x, const void *dout, void *dx, int B, int T) {
    MlaDims m = mla_dims(c);
    int N = B * T, H = c->n_heads, d = c->d_model, kw = m.nope + m.v;
    size_t NH = (size_t)N * H, es = ops_act_size(gpu), oo = spec_off(c, "o_proj.weight");
    size_t okvb = spec_off(c, "kv_b_proj.weight");
    size_t okva = spec_off(c, "kv_a_proj_with_mqa.weight"), okvn = spec_off(c, "kv_a_layernorm.weight");
    double qs = sqrt((double)m.P / m.qk);
    void *datt = s->datt, *dq = s->dq, *dk = s->dk, *dv = s->dv, *kvf = s->kvf, *dkva = s->kva;
    if (m.v == m.P) {
        op_matmul_backward(gpu, datt, dw + oo, dout, mla_o_in(c, a), wat(gpu, w, oo), N, H * m.v, d, 0);
    } else { /* the padding columns get no gradient */
        op_matmul_backward(gpu, kvf, dw + oo, dout, mla_o_in(c, a), wat(gpu, w, oo), N, H * m.v, d, 0);
        ops_zero(gpu, datt, NH * m.P * es);
        op_copy_cols(gpu, datt, m.P, kvf, m.v, NH, m.v, 1, 0);
    }
    op_attention_backward(gpu, dq, dk, dv, datt, a->att, a->lse, a->q, a->k, a->v, B, T, H, H, m.P, c->window);
    /* query: dqf [N, H*qk] (dq itself when qk fills P), the rotary part through the inverse rotation */
    void *dqf = dq;
    if (m.qk < m.P) { dqf = datt; op_copy_cols(gpu, dqf, m.qk, dq, m.P, NH, m.qk, qs, 0); }
    op_rope_part_backward(gpu, act_at(gpu, dqf, m.nope), N, T, H, m.qk, m.rope, c->rope_theta);
    /* keys and values: per-head parts to kv_b_proj, the shared rotary key summed over heads */
    op_copy_cols(gpu, kvf, kw, dk, m.P, NH, m.nope, 1, 0);
    op_copy_cols(gpu, act_at(gpu, kvf, m.nope), kw, dv, m.P, NH, m.v, 1, 0);
    op_sum_cols(gpu, act_at(gpu, dkva, m.r), m.r + m.rope, act_at(gpu, dk, m.nope), (size_t)H * m.P, m.P, H, N, m.rope);
    op_rope_part_backward(gpu, act_at(gpu, dkva, m.r), N, T, 1, m.r + m.rope, m.rope, c->rope_theta);
    op_matmul_backward(gpu, s->lat_a, dw + okvb, kvf, a->lat_kvn, wat(gpu, w, okvb), N, m.r, H * kw, 0);
    op_rmsnorm_backward(gpu, s->lat_b, dw + okvn, s->lat_a, a->lat_kv, wat(gpu, w, okvn), a->lat_kv_rstd, N, m.r, 0);
    op_copy_cols(gpu, dkva, m.r + m.rope, s->lat_b, m.r, N, m.r, 1, 0);
    op_matmul_backward(gpu, dx, dw + okva, dkva, x, wat(gpu, w, okva), N, d, m.r + m.rope, 0);
    if (m.rq) {
        size_t oqa = spec_off(c, "q_a_proj.weight"), oqn = spec_off(c, "q_a_layernorm.weight"), oqb = spec_off(c, "q_b_proj.weight");
        op_matmul_backward(gpu, s->lat_a, dw + oqb, dqf, a->lat_qn, wat(gpu, w, oqb), N, m.rq, H * m.qk, 0);
        op_rmsnorm_backward(gpu, s->lat_b, dw + oqn, s->lat_a, a->lat_q, wat(gpu, w, oqn), a->lat_q_rstd, N, m.rq, 0);
        op_matmul_backward(gpu, dx, dw + oqa, s->lat_b, x, wat(gpu, w, oqa), N, d, m.rq, 1);
    } else {
        size_t oq = spec_off(c, "q_proj.weight");
        op_matmul_backward(gpu, dx, dw + oq, dqf, x, wat(gpu, w, oq), N, d, H * m.qk, 1);
    }
}

/* The absorbed form, as an inference kernel would run it: per head, the key up-projection
   W_UK,h [nope, r] moves to the query (q~ = W_UK,h^T q_nope, scored against the cached
   latent), and the value up-projection W_UV,h [dv, r] moves into the output projection
   (W_o,h W_UV,h [d, r] applied to the attended latent). Nothing per head is cached. */
int attn_mla_absorbed_forward(const AttnConfig *c, const real_t *w, const real_t *x, real_t *out, int B, int T) {
    MlaDims m = mla_dims(c);
    int N = B * T, H = c->n_heads, d = c->d_model, kw = m.nope + m.v;
    const real_t *wkvb = w + spec_off(c, "kv_b_proj.weight"), *wo = w + spec_off(c, "o_proj.weight");
    real_t *qf = attn_tmp((size_t)N * H * m.qk), *qpe = attn_tmp((size_t)N * H * m.rope);
    real_t *lq = attn_tmp((size_t)N * m.rq), *lqn = attn_tmp((size_t)N * m.rq), *lqr = attn_tmp(N);
    real_t *lat = attn_tmp((size_t)N * m.r), *cn = attn_tmp((size_t)N * m.r), *lr = attn_tmp(N);
    real_t *kva = attn_tmp((size_t)N * (m.r + m.rope)), *qa = attn_tmp((size_t)N * H * m.r);
    real_t *wouv = attn_tmp((size_t)d * H * m.r), *ol = attn_tmp((size_t)N * H * m.r), *p = attn_tmp(T);
    int rc = !qf || !qpe || !lq || !lqn || !lqr || !lat || !cn || !lr || !kva || !qa || !wouv || !ol || !p ? -1 : 0;
    if (rc) goto end;
    real_t *kpe = kva + m.r;
    mla_query(NULL, c, w, x, qf, lq, lqn, lqr, N);
    op_copy_cols(NULL, qpe, m.rope, qf + m.nope, m.qk, (size_t)N * H, m.rope, 1, 0);
    op_rope_forward(NULL, qpe, N, T, H, m.rope, c->rope_theta);
    mla_latent(NULL, c, w, x, kva, lat, cn, lr, N, T); /* the cache: cn and kpe (rows r + rope apart) */
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < m.nope; i++) {
                real_t qn = qf[((size_t)n * H + h) * m.qk + i];
                const real_t *uk = wkvb + ((size_t)h * kw + i) * m.r;
                real_t *dst = qa + ((size_t)n * H + h) * m.r;
                for (int j = 0; j < m.r; j++) dst[j] += qn * uk[j];
            }
    for (int o = 0; o < d; o++)
        for (int h = 0; h < H; h++)
            for (int e = 0; e < m.v; e++) {
                real_t wv = wo[(size_t)o * H * m.v + h * m.v + e];
                const real_t *uv = wkvb + ((size_t)h * kw + m.nope + e) * m.r;
                real_t *dst = wouv + (size_t)o * H * m.r + (size_t)h * m.r;
                for (int j = 0; j < m.r; j++) dst[j] += wv * uv[j];
            }
    real_t scale = 1 / sqrt((real_t)m.qk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                size_t n = (size_t)b * T + t;
                const real_t *qt = qa + (n * H + h) * m.r, *qp = qpe + (n * H + h) * m.rope;
                int s0 = first_key(t, c->window);
                real_t mx = -INFINITY, sum = 0;
                for (int s = s0; s <= t; s++) {
                    size_t ns = (size_t)b * T + s;
                    real_t sc = 0;
                    for (int j = 0; j < m.r; j++) sc += qt[j] * cn[ns * m.r + j];
                    for (int j = 0; j < m.rope; j++) sc += qp[j] * kpe[ns * (m.r + m.rope) + j];
                    p[s] = sc * scale;
                    if (p[s] > mx) mx = p[s];
                }
                for (int s = s0; s <= t; s++) { p[s] = exp(p[s] - mx); sum += p[s]; }
                real_t *dst = ol + (n * H + h) * m.r;
                for (int s = s0; s <= t; s++)
                    for (int j = 0; j < m.r; j++) dst[j] += p[s] / sum * cn[((size_t)b * T + s) * m.r + j];
            }
    op_matmul_forward(NULL, out, ol, wouv, N, H * m.r, d);
end:
    free(qf); free(qpe); free(lq); free(lqn); free(lqr); free(lat); free(cn); free(lr); free(kva);
    free(qa); free(wouv); free(ol); free(p);
    return rc;
}

/* MGA's per-(b, h) statistics: norms, den_i, S_i and the gene fitness f_i (equations above) */
#define MGA_EPS 1e-8
static void mga_stats(const AttnConfig *c, const real_t *g, int b, int h, int T, real_t *nrm, real_t *den,
                      real_t *S, real_t *f) {
    int H = c->n_heads, hd = c->head_dim;
#define MGA_G(t) (g + (((size_t)b * T + (t)) * H + h) * hd)
    for (int t = 0; t < T; t++) {
        real_t ss = 0;
        for (int i = 0; i < hd; i++) ss += MGA_G(t)[i] * MGA_G(t)[i];
        nrm[t] = sqrt(ss);
    }
    real_t acc = 0;
    for (int i = 0; i < T; i++) {
        real_t rowsum = 0;
        for (int j = first_key(i, c->window); j <= i; j++) {
            real_t dd = 0;
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
static void mga_row(const AttnConfig *c, const real_t *g, int b, int h, int T, int i, const real_t *nrm,
                    const real_t *f, real_t *cr, real_t *p) {
    int H = c->n_heads, hd = c->head_dim, s0 = first_key(i, c->window);
    real_t mx = -INFINITY, sum = 0;
    for (int j = s0; j <= i; j++) {
        real_t dd = 0;
        for (int e = 0; e < hd; e++) dd += MGA_G(i)[e] * MGA_G(j)[e];
        cr[j] = dd / (nrm[i] * nrm[j] + MGA_EPS);
        p[j] = f[i] * (1 + cr[j]) / 2;
        if (p[j] > mx) mx = p[j];
    }
    for (int j = s0; j <= i; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
    for (int j = s0; j <= i; j++) p[j] /= sum;
}

static int mga_core_forward(const AttnConfig *c, real_t *out, const real_t *g, const real_t *v, int B, int T) {
    int H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, group = H / KV;
    real_t *nrm = attn_tmp(T), *den = attn_tmp(T), *S = attn_tmp(T), *f = attn_tmp(T), *cr = attn_tmp(T), *p = attn_tmp(T);
    int rc = !nrm || !den || !S || !f || !cr || !p ? -1 : 0;
    if (!rc)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            mga_stats(c, g, b, h, T, nrm, den, S, f);
            for (int i = 0; i < T; i++) {
                mga_row(c, g, b, h, T, i, nrm, f, cr, p);
                real_t *o = out + (((size_t)b * T + i) * H + h) * hd;
                memset(o, 0, hd * sizeof(real_t));
                for (int j = first_key(i, c->window); j <= i; j++) {
                    const real_t *vj = v + (((size_t)b * T + j) * KV + h / group) * hd;
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
static int mga_core_backward(const AttnConfig *c, real_t *dg, real_t *dv, const real_t *dout,
                             const real_t *g, const real_t *v, int B, int T) {
    int H = c->n_heads, hd = c->head_dim, KV = c->n_kv_heads, group = H / KV;
    real_t *nrm = attn_tmp(T), *den = attn_tmp(T), *S = attn_tmp(T), *f = attn_tmp(T), *cr = attn_tmp(T);
    real_t *p = attn_tmp(T), *dp = attn_tmp(T), *df = attn_tmp(T), *dden = attn_tmp(T), *dn = attn_tmp(T);
    int rc = !nrm || !den || !S || !f || !cr || !p || !dp || !df || !dden || !dn ? -1 : 0;
    if (rc) goto end;
    memset(dg, 0, sizeof(real_t) * (size_t)B * T * H * hd);
    memset(dv, 0, sizeof(real_t) * (size_t)B * T * KV * hd);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / group;
            mga_stats(c, g, b, h, T, nrm, den, S, f);
            for (int pass = 0; pass < 2; pass++) { /* 0: df and dv; 1: dcorr into dg (needs every df) */
                if (pass == 1) {
                    real_t tot = 0, suffix = 0;
                    for (int i = 0; i < T; i++) tot += -df[i] * f[i] / S[i];
                    for (int i = T - 1; i >= 0; i--) {
                        suffix += -df[i] * f[i] / S[i];
                        real_t dr = c->mga_faithful ? tot : suffix;
                        dden[i] = -df[i] * f[i] / den[i] - dr / (den[i] * den[i]);
                    }
                    memset(dn, 0, T * sizeof(real_t));
                }
                for (int i = 0; i < T; i++) {
                    int s0 = first_key(i, c->window);
                    const real_t *doi = dout + (((size_t)b * T + i) * H + h) * hd;
                    mga_row(c, g, b, h, T, i, nrm, f, cr, p);
                    real_t D = 0;
                    for (int j = s0; j <= i; j++) {
                        const real_t *vj = v + (((size_t)b * T + j) * KV + kh) * hd;
                        dp[j] = 0;
                        for (int e = 0; e < hd; e++) dp[j] += doi[e] * vj[e];
                        D += p[j] * dp[j];
                    }
                    if (pass == 0) df[i] = 0;
                    real_t L = c->mga_faithful ? T : i + 1;
                    for (int j = s0; j <= i; j++) {
                        real_t ds = p[j] * (dp[j] - D);
                        if (pass == 0) {
                            df[i] += ds * (1 + cr[j]) / 2;
                            real_t *dvj = dv + (((size_t)b * T + j) * KV + kh) * hd;
                            for (int e = 0; e < hd; e++) dvj[e] += p[j] * doi[e];
                            continue;
                        }
                        real_t dcorr = ds * f[i] / 2 + dden[i] / (2 * L);
                        real_t q = nrm[i] * nrm[j] + MGA_EPS, dD = dcorr / q, dq = -dcorr * cr[j] / q;
                        real_t *dgi = dg + (((size_t)b * T + i) * H + h) * hd, *dgj = dg + (((size_t)b * T + j) * H + h) * hd;
                        for (int e = 0; e < hd; e++) { dgi[e] += dD * MGA_G(j)[e]; dgj[e] += dD * MGA_G(i)[e]; }
                        dn[i] += dq * nrm[j];
                        dn[j] += dq * nrm[i];
                    }
                }
            }
            for (int t = 0; t < T; t++) /* through n_t = |g_t| */
                if (nrm[t] > 0) {
                    real_t *dgt = dg + (((size_t)b * T + t) * H + h) * hd;
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

static int mga_forward(const AttnConfig *c, const real_t *w, AttnActs *a, const real_t *x, real_t *out, int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    op_matmul_forward(NULL, a->q, x, w + spec_off(c, "g_proj.weight"), N, d, qd);
    op_matmul_forward(NULL, a->v, x, w + spec_off(c, "v_proj.weight"), N, d, kvd);
    if (mga_core_forward(c, a->att, a->q, a->v, B, T)) return -1;
    const real_t *o_in = a->att;
    if (c->mga_gate) {
        const real_t *wc = w + spec_off(c, "gate_conv.weight");
        real_t *conv = a->conv, *u = attn_tmp((size_t)N * d);
        if (!u) return -1;
        int sh = mga_conv_shift(c);
        for (int n = 0; n < N; n++) {
            int t = n % T;
            for (int ch = 0; ch < d; ch++) {
                real_t acc = 0;
                for (int k = 0; k < 3; k++)
                    if (t + k - sh >= 0 && t + k - sh < T) acc += wc[ch * 3 + k] * x[(size_t)(n + k - sh) * d + ch];
                conv[(size_t)n * d + ch] = acc;
                u[(size_t)n * d + ch] = acc / (1 + exp(-acc)); /* SiLU */
            }
        }
        op_matmul_forward(NULL, a->gate, u, w + spec_off(c, "gate_proj.weight"), N, d, qd);
        real_t *att = a->att, *gate = a->gate, *gated = a->gated;
        for (size_t i = 0; i < (size_t)N * qd; i++) gated[i] = att[i] / (1 + exp(-gate[i]));
        o_in = a->gated;
        free(u);
    }
    op_matmul_forward(NULL, out, o_in, w + spec_off(c, "o_proj.weight"), N, qd, d);
    return 0;
}

static int mga_backward(const AttnConfig *c, const real_t *w, real_t *dw, AttnActs *a, const real_t *x,
                        const real_t *dout, real_t *dx, int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    size_t oo = spec_off(c, "o_proj.weight"), og = spec_off(c, "g_proj.weight"), ov = spec_off(c, "v_proj.weight");
    /* every temporary first, so that running out of memory leaves dw and dx untouched */
    real_t *dgated = attn_tmp((size_t)N * qd), *datt = dgated, *dxc = NULL, *dgate = NULL, *u = NULL, *du = NULL;
    real_t *dg = attn_tmp((size_t)N * qd), *dv = attn_tmp((size_t)N * kvd);
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
        size_t oc = spec_off(c, "gate_conv.weight"), op = spec_off(c, "gate_proj.weight");
        const real_t *att = a->att, *gate = a->gate, *conv = a->conv;
        for (size_t i = 0; i < (size_t)N * qd; i++) {
            real_t s = 1 / (1 + exp(-gate[i]));
            datt[i] = dgated[i] * s;
            dgate[i] = dgated[i] * att[i] * s * (1 - s);
        }
        for (size_t i = 0; i < (size_t)N * d; i++) u[i] = conv[i] / (1 + exp(-conv[i]));
        op_matmul_backward(NULL, du, dw + op, dgate, u, w + op, N, d, qd, 0);
        int sh = mga_conv_shift(c);
        for (int n = 0; n < N; n++) {
            int t = n % T;
            for (int ch = 0; ch < d; ch++) {
                real_t z = conv[(size_t)n * d + ch], s = 1 / (1 + exp(-z));
                real_t dz = du[(size_t)n * d + ch] * s * (1 + z * (1 - s)); /* SiLU' */
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
    real_t *C = a->q, *rinv = a->mga_f; /* C spans q and att (adjacent, 2 activations = one fp32 per element) */
    op_matmul_forward(gpu, a->k, x, wat(gpu, w, spec_off(c, "g_proj.weight")), N, d, qd);
    op_matmul_forward(gpu, a->v, x, wat(gpu, w, spec_off(c, "v_proj.weight")), N, d, kvd);
    op_mga_unit_forward(gpu, a->k, a->mga_nrm, a->k, (size_t)N * H, hd); /* in place: k = u */
    op_time_cumsum(gpu, C, a->k, 1, B, T, qd, 0);
    op_mga_den_forward(gpu, a->mga_den, rinv, a->k, C, B, T, H, hd, W, fa);
    op_time_cumsum(gpu, a->mga_S, rinv, 0, B, T, H, 0);
    op_mga_query_forward(gpu, a->q, a->mga_f, a->k, a->mga_den, a->mga_S, B, T, H, hd, fa);
    const void *v = a->v;
    if (KV < H) { /* each query head's value head, repeated: the core takes K and V per head alike */
        for (int h = 0; h < H; h++)
            op_copy_cols(gpu, act_at(gpu, a->vrep, (size_t)h * hd), qd, act_at(gpu, a->v, (size_t)(h / (H / KV)) * hd),
                         kvd, N, hd, 1, 0);
        v = a->vrep;
    }
    op_attention_forward(gpu, a->att, a->lse, a->q, a->k, v, B, T, H, H, hd, W);
    const void *o_in = a->att;
    if (c->mga_gate) { /* u = SiLU(conv(x)) lives in out until o_proj overwrites it */
        op_dwconv3_silu_forward(gpu, a->conv, out, x, wat(gpu, w, spec_off(c, "gate_conv.weight")), B, T, d,
                                mga_conv_shift(c));
        op_matmul_forward(gpu, a->gate, out, wat(gpu, w, spec_off(c, "gate_proj.weight")), N, d, qd);
        op_sigmoid_gate_forward(gpu, a->gated, a->att, a->gate, (size_t)N * qd);
        o_in = a->gated;
    }
    op_matmul_forward(gpu, out, o_in, wat(gpu, w, spec_off(c, "o_proj.weight")), N, qd, d);
}

static void mga_dec_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a,
                             AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, W = c->window;
    int qd = H * hd, kvd = KV * hd, fa = c->mga_faithful;
    size_t oo = spec_off(c, "o_proj.weight"), og = spec_off(c, "g_proj.weight"), ov = spec_off(c, "v_proj.weight");
    size_t oc = c->mga_gate ? spec_off(c, "gate_conv.weight") : 0, op = c->mga_gate ? spec_off(c, "gate_proj.weight") : 0;
    if (c->mga_gate) { /* dgated -> datt and dgate; dgate -> du through gate_proj (u recomputed) */
        op_matmul_backward(gpu, s->kva, dw + oo, dout, a->gated, wat(gpu, w, oo), N, qd, d, 0);
        op_sigmoid_gate_backward(gpu, s->datt, s->kvf, s->kva, a->att, a->gate, (size_t)N * qd);
        op_dwconv3_silu_forward(gpu, s->kva, s->lat_a, x, wat(gpu, w, oc), B, T, d, mga_conv_shift(c));
        op_matmul_backward(gpu, s->lat_b, dw + op, s->kvf, s->lat_a, wat(gpu, w, op), N, d, qd, 0);
    } else {
        op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, wat(gpu, w, oo), N, qd, d, 0);
    }
    op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, KV < H ? a->vrep : a->v,
                          B, T, H, H, hd, W);
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
            op_sum_cols(gpu, act_at(gpu, s->dq, (size_t)k * hd), kvd, act_at(gpu, s->dv, (size_t)k * group * hd), qd,
                        hd, group, N, hd);
        dv = s->dq;
    }
    op_matmul_backward(gpu, dx, dw + ov, dv, x, wat(gpu, w, ov), N, d, kvd, 0);
    op_matmul_backward(gpu, dx, dw + og, s->datt, x, wat(gpu, w, og), N, d, qd, 1);
    if (c->mga_gate)
        op_dwconv3_silu_backward(gpu, dx, dw + oc, s->lat_b, a->conv, x, wat(gpu, w, oc), B, T, d, mga_conv_shift(c), 1);
}

/* the GPU computes q, k, v with one GEMM into a fused buffer (ops_qkv_scratch) and splits
   it; the CPU reference keeps three (no scratch to hold), and QK-norm keeps three too (its
   norms sit between the projection and the rotation) */
static int attn_qkv_fused(const Gpu *gpu, const AttnConfig *c) { return gpu != NULL && !c->qk_norm; }

/* MGA is CPU-only (and MLA has GPU limits): a GPU call here is a caller that skipped
   attn_gpu_supported; -1 then (attn_forward and attn_backward return it, computing nothing) */
static int attn_require_cpu(const Gpu *gpu, const AttnConfig *c) {
    char err[256];
    return gpu && attn_gpu_supported(c, err, sizeof err) ? -1 : 0;
}

int attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x,
                 void *out, int B, int T) {
    if ((c->kind == ATTN_MLA || c->kind == ATTN_MGA) && attn_require_cpu(gpu, c)) return -1;
    if (c->kind == ATTN_MLA) { mla_forward(gpu, c, w, a, x, out, B, T); return 0; }
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        gdn_block_forward(gpu, &g, w, &a->gdn, x, out, B, T);
        return 0;
    }
    if (c->kind == ATTN_MGA && (gpu || c->mga_decomposed)) {
        mga_dec_forward(gpu, c, w, a, x, out, B, T);
        return 0;
    }
    if (c->kind == ATTN_MGA) return mga_forward(c, w, a, x, out, B, T);
    ParamSpec p[ATTN_MAX_PARAMS];
    AttnPattern pat;
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (c->kind == ATTN_IDENTITY) {
        op_matmul_forward(gpu, a->v, x, wat(gpu, w, p[0].offset), N, d, H * hd);
        op_matmul_forward(gpu, out, a->att, wat(gpu, w, p[1].offset), N, H * hd, d);
        return 0;
    }
    if (attn_qkv_fused(gpu, c)) {
        /* q_proj, k_proj, v_proj are consecutive [out, in] blocks: one [(H + 2 KV) hd, d]
           weight, one GEMM (x read once, one launch), then one pass splits and rotates */
        int P = (H + 2 * KV) * hd;
        void *qkv = ops_qkv_scratch(gpu, (size_t)N * P * ops_act_size(gpu));
        op_matmul_forward(gpu, qkv, x, wat(gpu, w, p[0].offset), N, d, P);
        op_qkv_split(gpu, a->q, a->k, a->v, qkv, N, T, H, KV, hd, c->rope_theta);
    } else {
        void *q = c->qk_norm ? a->q_raw : a->q, *k = c->qk_norm ? a->k_raw : a->k;
        op_matmul_forward(gpu, q, x, wat(gpu, w, p[0].offset), N, d, H * hd);
        op_matmul_forward(gpu, k, x, wat(gpu, w, p[1].offset), N, d, KV * hd);
        op_matmul_forward(gpu, a->v, x, wat(gpu, w, p[2].offset), N, d, KV * hd);
        if (c->qk_norm) { /* each head's vector is one RMSNorm row of length hd */
            op_rmsnorm_forward(gpu, a->q, a->q_rstd, a->q_raw, wat(gpu, w, p[4].offset), N * H, hd, c->norm_eps);
            op_rmsnorm_forward(gpu, a->k, a->k_rstd, a->k_raw, wat(gpu, w, p[5].offset), N * KV, hd, c->norm_eps);
        }
        op_rope_forward(gpu, a->q, N, T, H, hd, c->rope_theta);
        op_rope_forward(gpu, a->k, N, T, KV, hd, c->rope_theta);
    }
    if (c->kind == ATTN_DSA) { /* the indexer picks each query's keys; attention over those only */
        int HI = c->indexer_heads, dI = c->indexer_dim, k = attn_topk_now(c, T);
        op_matmul_forward(gpu, a->iq, x, wat(gpu, w, spec_off(c, "indexer.q_proj.weight")), N, d, HI * dI);
        op_matmul_forward(gpu, a->ik, x, wat(gpu, w, spec_off(c, "indexer.k_proj.weight")), N, d, dI);
        op_matmul_forward(gpu, a->iw, x, wat(gpu, w, spec_off(c, "indexer.w_proj.weight")), N, d, HI);
        op_rope_forward(gpu, a->iq, N, T, HI, dI, c->rope_theta);
        op_rope_forward(gpu, a->ik, N, T, 1, dI, c->rope_theta);
        if (op_indexer_select(gpu, a->idx, a->iq, a->ik, a->iw, B, T, HI, dI, k,
                              c->indexer_fp32 ? SPARSE_PREC_FP32 : SPARSE_PREC_BF16))
            return -1;
        if (c->dsa_dense) /* warm-up: dense attention; the selection only feeds the indexer's KL */
            op_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, 0);
        else
            op_sparse_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, a->idx, B, T, H, KV, hd, k);
    } else if (attn_pattern_of(c, &pat)) {
        op_attention_pattern_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, &pat);
    } else {
        op_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, c->window);
    }
    op_matmul_forward(gpu, out, a->att, wat(gpu, w, p[3].offset), N, H * hd, d);
    return 0;
}

int attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a,
                  AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    if ((c->kind == ATTN_MLA || c->kind == ATTN_MGA) && attn_require_cpu(gpu, c)) return -1;
    if (c->kind == ATTN_MLA) { mla_backward(gpu, c, w, dw, a, s, x, dout, dx, B, T); return 0; }
    if (c->kind == ATTN_GDN) {
        GdnDims g = gdn_dims(c);
        gdn_block_backward(gpu, &g, w, dw, &a->gdn, &s->gdn, x, dout, dx, B, T);
        return 0;
    }
    if (c->kind == ATTN_MGA && (gpu || c->mga_decomposed)) {
        mga_dec_backward(gpu, c, w, dw, a, s, x, dout, dx, B, T);
        return 0;
    }
    if (c->kind == ATTN_MGA) return mga_backward(c, w, dw, a, x, dout, dx, B, T);
    ParamSpec p[ATTN_MAX_PARAMS];
    AttnPattern pat;
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (c->kind == ATTN_IDENTITY) {
        op_matmul_backward(gpu, s->datt, dw + p[1].offset, dout, a->att, wat(gpu, w, p[1].offset), N, H * hd, d, 0);
        op_matmul_backward(gpu, dx, dw + p[0].offset, s->datt, x, wat(gpu, w, p[0].offset), N, d, H * hd, 0);
        return 0;
    }
    op_matmul_backward(gpu, s->datt, dw + p[3].offset, dout, a->att, wat(gpu, w, p[3].offset), N, H * hd, d, 0);
    if (c->kind == ATTN_DSA) {
        int HI = c->indexer_heads, dI = c->indexer_dim, k = attn_topk_now(c, T);
        if (c->dsa_dense) { /* warm-up: p = the dense attention's probabilities on the selected keys */
            op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v,
                                  B, T, H, KV, hd, 0);
            op_sparse_attention_probs(gpu, s->psum, a->q, a->k, a->lse, a->idx, B, T, H, KV, hd, k);
        } else {
            op_sparse_attention_backward(gpu, s->dq, s->dk, s->dv, s->psum, s->datt, a->att, a->lse, a->q, a->k,
                                         a->v, a->idx, B, T, H, KV, hd, k);
        }
        /* the indexer learns from KL(p || softmax(I)) over the selected keys, p = the heads'
           mean attention (detached); its input is detached too: no gradient reaches x */
        if (op_indexer_kl_backward(gpu, s->kl, s->diq, s->dik, s->diw, s->psum, a->iq, a->ik, a->iw, a->idx, B, T, HI,
                                   dI, k, 1.0f / N))
            return -1;
        op_rope_backward(gpu, s->diq, N, T, HI, dI, c->rope_theta);
        op_rope_backward(gpu, s->dik, N, T, 1, dI, c->rope_theta);
        size_t oq = spec_off(c, "indexer.q_proj.weight"), ok = spec_off(c, "indexer.k_proj.weight");
        size_t ow = spec_off(c, "indexer.w_proj.weight");
        op_matmul_backward(gpu, NULL, dw + oq, s->diq, x, wat(gpu, w, oq), N, d, HI * dI, 0);
        op_matmul_backward(gpu, NULL, dw + ok, s->dik, x, wat(gpu, w, ok), N, d, dI, 0);
        op_matmul_backward(gpu, NULL, dw + ow, s->diw, x, wat(gpu, w, ow), N, d, HI, 0);
    } else if (attn_pattern_of(c, &pat)) {
        op_attention_pattern_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v,
                                      B, T, H, KV, hd, &pat);
    } else {
        op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v,
                              B, T, H, KV, hd, c->window);
    }
    if (attn_qkv_fused(gpu, c)) { /* the forward's fused projection, backward */
        int P = (H + 2 * KV) * hd;
        void *dqkv = ops_qkv_scratch(gpu, (size_t)N * P * ops_act_size(gpu));
        op_qkv_merge(gpu, dqkv, s->dq, s->dk, s->dv, N, T, H, KV, hd, c->rope_theta);
        op_matmul_backward(gpu, dx, dw + p[0].offset, dqkv, x, wat(gpu, w, p[0].offset), N, d, P, 0);
        return 0;
    }
    op_rope_backward(gpu, s->dq, N, T, H, hd, c->rope_theta);
    op_rope_backward(gpu, s->dk, N, T, KV, hd, c->rope_theta);
    /* v first: its gradient buffer then serves as scratch for k's QK-norm backward */
    op_matmul_backward(gpu, dx, dw + p[2].offset, s->dv, x, wat(gpu, w, p[2].offset), N, d, KV * hd, 0);
    void *dq = s->dq, *dk = s->dk;
    if (c->qk_norm) {
        op_rmsnorm_backward(gpu, s->datt, dw + p[4].offset, s->dq, a->q_raw, wat(gpu, w, p[4].offset),
                            a->q_rstd, N * H, hd, 0);
        op_rmsnorm_backward(gpu, s->dv, dw + p[5].offset, s->dk, a->k_raw, wat(gpu, w, p[5].offset),
                            a->k_rstd, N * KV, hd, 0);
        dq = s->datt;
        dk = s->dv;
    }
    op_matmul_backward(gpu, dx, dw + p[0].offset, dq, x, wat(gpu, w, p[0].offset), N, d, H * hd, 1);
    op_matmul_backward(gpu, dx, dw + p[1].offset, dk, x, wat(gpu, w, p[1].offset), N, d, KV * hd, 1);
    return 0;
}

#endif /* ATTN_IMPLEMENTATION_DONE */
#endif /* ATTN_IMPLEMENTATION */
