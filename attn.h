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

   MECHANISMS (causal always)
     MHA       n_kv_heads = n_heads
     GQA       n_kv_heads divides n_heads; query head h reads kv head h / (n_heads / n_kv_heads)
     MQA       n_kv_heads = 1
     IDENTITY  no token mixing: out = W_o (W_v x), a control for "how much does mixing buy"
   Options for MHA/GQA/MQA:
     window W > 0   sliding window: token i sees i-W+1..i (0 = full causal)
     qk_norm        RMSNorm over each head's q and k (one learnable [head_dim] scale for q and
                    one for k, shared by heads, as in Qwen3/OLMo-2-style QK-norm), before RoPE.

   PARAMETERS of one attention block (PyTorch [out, in] layout, Hugging Face names):
     q_proj [H*hd, d], k_proj [KV*hd, d], v_proj [KV*hd, d], o_proj [d, H*hd],
     q_norm [hd], k_norm [hd] (qk_norm only). IDENTITY: v_proj [H*hd, d], o_proj [d, H*hd].

   Forward: x -> q,k,v projections -> (QK-norm) -> RoPE on q,k -> causal attention -> o_proj.
*/
#ifndef ATTN_H
#define ATTN_H

#include "ops.h"
#include <stddef.h>

typedef enum { ATTN_DEFAULT = 0, ATTN_MHA, ATTN_GQA, ATTN_MQA, ATTN_IDENTITY } AttnKind;

typedef struct {
    AttnKind kind;      /* default GQA */
    int d_model;        /* default 576 */
    int n_heads;        /* default 9 */
    int n_kv_heads;     /* default: MHA n_heads, MQA 1, GQA n_heads/3 (else n_heads/2, else 1) */
    int head_dim;       /* default d_model / n_heads */
    int window;         /* 0 = full causal */
    int qk_norm;        /* 0/1 */
    float rope_theta;   /* default 100000 */
    float norm_eps;     /* default 1e-5 */
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
} AttnActs;

/* backward scratch, shared by all layers */
typedef struct { void *datt, *dq, *dk, *dv; } AttnScratch;

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

/* activation memory of one block: elements of activation type and of real_t */
void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems);
/* carve AttnActs out of the given memory (sizes from attn_act_sizes) */
void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem,
                    real_t *stat_mem, int B, int T);
size_t attn_scratch_elems(const AttnConfig *c, int B, int T);
void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T);

/* w: the block's compute weights (act type); out [N, d] written */
void attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x,
                  void *out, int B, int T);
/* dw: the block's weight gradients (accumulated); dx [N, d] written (=) */
void attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a,
                   AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T);

#endif /* ATTN_H */

/* ======================================================================= */
#ifdef ATTN_IMPLEMENTATION
#ifndef ATTN_IMPLEMENTATION_DONE
#define ATTN_IMPLEMENTATION_DONE

#include <stdio.h>
#include <string.h>

static const char *attn_names[] = {"default", "mha", "gqa", "mqa", "identity"};

const char *attn_kind_name(AttnKind k) {
    return (k >= 0 && k <= ATTN_IDENTITY) ? attn_names[k] : "?";
}

int attn_kind_parse(const char *s, AttnKind *out) {
    for (int i = 1; i <= ATTN_IDENTITY; i++)
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
    case ATTN_GQA:
        if (c->n_kv_heads == 0) /* SmolLM2's ratio of 3 where it divides, else 2, else MQA */
            c->n_kv_heads = c->n_heads % 3 == 0 ? c->n_heads / 3 : c->n_heads % 2 == 0 ? c->n_heads / 2 : 1;
        break;
    case ATTN_IDENTITY:
        c->n_kv_heads = c->n_heads;
        break;
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
    ParamSpec tmp[8];
    ParamSpec *p = out ? out : tmp;
    size_t off = 0;
    int n = 0, d = c->d_model, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
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
    return n;
}

size_t attn_param_count(const AttnConfig *c) {
    ParamSpec p[8];
    int n = attn_param_specs(c, p);
    return p[n - 1].offset + p[n - 1].numel;
}

size_t attn_kv_bytes_per_token(const AttnConfig *c, int bytes_per_elem) {
    if (c->kind == ATTN_IDENTITY) return 0;
    return (size_t)2 * c->n_kv_heads * c->head_dim * bytes_per_elem;
}

double attn_flops_per_token(const AttnConfig *c, int T) {
    double proj = 2.0 * (double)attn_param_count(c);
    if (c->kind == ATTN_IDENTITY) return proj;
    /* average keys per query under the causal (and window) mask */
    double keys = (T + 1) / 2.0;
    if (c->window > 0 && c->window < T) {
        double W = c->window; /* first W queries see t+1 keys, the rest W */
        keys = (W * (W + 1) / 2 + (T - W) * W) / T;
    }
    return proj + 4.0 * c->n_heads * c->head_dim * keys; /* QK^T and PV */
}

void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    if (c->kind == ATTN_IDENTITY) { *act_elems = N * qd; *stat_elems = 0; return; }
    *act_elems = N * (qd + 2 * kvd + qd);
    *stat_elems = (size_t)B * c->n_heads * T;
    if (c->qk_norm) {
        *act_elems += N * (qd + kvd);
        *stat_elems += N * (c->n_heads + c->n_kv_heads);
    }
}

/* take n elements of size es from a moving cursor */
static void *carve(char **cur, size_t n, size_t es) { void *p = *cur; *cur += n * es; return p; }

void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem,
                    real_t *stat_mem, int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    char *cur = act_mem, *sc = (char *)stat_mem;
    memset(a, 0, sizeof *a);
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
}

size_t attn_scratch_elems(const AttnConfig *c, int B, int T) {
    size_t N = (size_t)B * T, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    return N * (2 * qd + 2 * kvd);
}

void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    char *cur = mem;
    s->datt = carve(&cur, N * qd, es);
    s->dq = carve(&cur, N * qd, es);
    s->dk = carve(&cur, N * kvd, es);
    s->dv = carve(&cur, N * kvd, es);
}

/* element offset -> pointer, for weights stored in activation precision */
static const void *wat(const Gpu *gpu, const void *base, size_t off) {
    return (const char *)base + off * ops_act_size(gpu);
}

void attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x,
                  void *out, int B, int T) {
    ParamSpec p[8];
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (c->kind == ATTN_IDENTITY) {
        op_matmul_forward(gpu, a->v, x, wat(gpu, w, p[0].offset), N, d, H * hd);
        op_matmul_forward(gpu, out, a->att, wat(gpu, w, p[1].offset), N, H * hd, d);
        return;
    }
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
    op_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, c->window);
    op_matmul_forward(gpu, out, a->att, wat(gpu, w, p[3].offset), N, H * hd, d);
}

void attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, real_t *dw, AttnActs *a,
                   AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    ParamSpec p[8];
    attn_param_specs(c, p);
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    if (c->kind == ATTN_IDENTITY) {
        op_matmul_backward(gpu, s->datt, dw + p[1].offset, dout, a->att, wat(gpu, w, p[1].offset), N, H * hd, d, 0);
        op_matmul_backward(gpu, dx, dw + p[0].offset, s->datt, x, wat(gpu, w, p[0].offset), N, d, H * hd, 0);
        return;
    }
    op_matmul_backward(gpu, s->datt, dw + p[3].offset, dout, a->att, wat(gpu, w, p[3].offset), N, H * hd, d, 0);
    op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v,
                          B, T, H, KV, hd, c->window);
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
}

#endif /* ATTN_IMPLEMENTATION_DONE */
#endif /* ATTN_IMPLEMENTATION */
