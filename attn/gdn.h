/* attn/gdn.h - Gated DeltaNet linear attention (Yang, Kautz, Hatamizadeh, "Gated Delta
   Networks: Improving Mamba2 with Delta Rule", arXiv 2412.06464): the delta-rule ops
   (recurrent form, chunked form forward and backward), the small ops around them, and a
   whole attention block (projections, short convolutions, gates, gated RMSNorm), each
   with a plain-C reference and a CUDA path (attn/gdn.cu.h).

   A room of attn.h (the mechanism `gdn`, options conv_size and chunk) that also stands alone as
   an op library.

   USAGE
     #define OPS_IMPLEMENTATION           // ops.h's, in one .c file
     #define ATTN_GDN_IMPLEMENTATION      // in the same .c file (ATTN_IMPLEMENTATION implies it)
     #include "attn/gdn.h"
   Depends on: ops.h (gpu.h and attn/gdn.cu.h in the CUDA build). gpu == NULL selects the CPU
   reference (ops_real: float, double in the tests), as in ops.h.

   THE DELTA RULE (per batch b and head h; state S in R^{dv x dk}, here dk = dv = D)
     S_t = alpha_t S_{t-1} (I - beta_t k_t k_t^T) + beta_t v_t k_t^T,      o_t = S_t q_t
   alpha_t = exp(g_t), g_t <= 0 the log decay; beta_t in (0, 1); q and k L2-normalized per
   head by the block, q scaled by `scale` (1/sqrt(D)) inside the op. S_0 = 0 unless a
   state is passed in. Equivalently, with the "pseudo value" u_t:
     u_t = beta_t (v_t - alpha_t S_{t-1} k_t),   S_t = alpha_t S_{t-1} + u_t k_t^T.
   The state is STORED TRANSPOSED, as flash-linear-attention's h: Hs = S^T, [D keys][D values],
   fp32, [B, H, D, D]; o_t = Hs^T q_t.

   CHUNKED FORM (training; chunk C = 64 by default; WY / UT-transform within a chunk).
   For a chunk of L <= C tokens with input state H0 = S^T at its start, rows r = 0..L-1,
   gamma_r = g_0 + .. + g_r (cumulative log decay inside the chunk), G_rj = exp(gamma_r - gamma_j):
     A~  = strict_lower((K K^T) o G)                  [L, L] (no beta; o: elementwise)
     T   = (I + diag(beta) A~)^-1                     unit lower triangular (forward substitution)
     W   = T diag(beta exp(gamma)) K,   U~ = T diag(beta) V
     U   = U~ - W H0                                  the pseudo values u_r of the chunk
     O   = diag(exp(gamma)) Q H0 + (lower_incl((Q K^T) o G)) U
     H_L = exp(gamma_{L-1}) H0 + K^T diag(exp(gamma_{L-1} - gamma)) U
   Only exponentials of non-positive numbers appear (no exp(-gamma)), so strong decay cannot
   overflow. The backward runs the chunks in reverse with dH (the gradient of a chunk's end
   state): it recomputes each chunk's state H0 (a forward pass over states, kept in a
   workspace `ws`), then differentiates the five lines above (see gdn_chunk_bwd_ below for
   every term); the log-decay gradient collects d/dgamma and is reverse-cumsummed to dg.

   LAYOUTS (N = B*T rows; row n is token n % T of sequence n / T)
     q, k, v, dq, dk, dv   [N, ld] rows, head h's D values at columns h*D..h*D+D-1
                           (ld >= H*D lets the block pass column views of one [N, 3HD] buffer)
     o, dout               [N, H*D]
     g, beta, dg, dbeta    [N, H] ops_real (fp32 on the GPU, like every per-row statistic)
     state                 [B, H, D, D] ops_real (Hs = S^T)
   GPU: activations bf16, g/beta/state fp32, chunk = 64 (the kernels' tile); D a multiple of 8
   from 32 to 256: D <= 64 runs the tensor-core tile kernels with the head zero-padded to 64
   inside them, 72..128 tensor-core tiles of two 64-wide blocks, past 128 tensor-core tiles of
   three or four 64-wide blocks (tuning gdn_wtile=0 or 1: the wide-head kernels there, fp32
   loops, correct but slower; attn/gdn.cu.h).

   THE BLOCK (as flash-linear-attention's GatedDeltaNet layer, use_short_conv = True,
   expand_v = 1, i.e. dk = dv = head_dim D; H heads; x [N, d_model])
     q, k, v = SiLU(causal depthwise conv, kernel K (conv_size, 4), of W_q x, W_k x, W_v x)
     q, k   <- per-head L2 normalization: x / sqrt(sum x^2 + 1e-6)      (fla's l2norm)
     g_t     = -exp(A_log) * softplus(W_a x + dt_bias)          [N, H]
     beta_t  = sigmoid(W_b x)                                    [N, H]
     o       = delta_rule(q, k, v, g, beta, scale = 1/sqrt(D))   [N, H*D]
     y       = RMSNorm_per_head(o) * o_norm * SiLU(W_g x)        (fla's FusedRMSNormGated)
     out     = W_o y                                             [N, d_model]
   The conv is causal: c_t = sum_{i<K} w[i] x_{t-K+1+i} (w[K-1] on the current token; before
   the sequence start x is 0), as PyTorch's Conv1d(padding=K-1) truncated to T.
   PARAMETERS (flat ops_real buffer, offsets from attn_gdn_block_param_specs, [out, in] layout, no biases
   except dt_bias; names are fla's under the layer prefix, e.g. model.layers.{i}.attn.q_proj):
     q_proj [H*D, d], k_proj [H*D, d], v_proj [H*D, d], g_proj [H*D, d], a_proj [H, d],
     b_proj [H, d]   -- contiguous in this order: one GEMM makes all six ([N, 4HD + 2H])
     o_proj [d, H*D]
     q_conv1d [H*D, K], k_conv1d [H*D, K], v_conv1d [H*D, K]  (Conv1d weight [C, 1, K] squeezed)
     o_norm [D], A_log [H], dt_bias [H]
   Init (attn_gdn_block_param_init_special, fla's GatedDeltaNet): A_log = log(U(0, 16)) (Mamba2: U(1, 16)); dt = exp(U(log 1e-3, log 1e-1))
   floored at 1e-4, dt_bias = softplus^-1(dt) = dt + log(-expm1(-dt)); o_norm = 1; the convs
   U(-1/sqrt(K), 1/sqrt(K)) (PyTorch's Conv1d default). The matrices are the caller's
   (normal, as for the other attention blocks; o_proj is the output projection).

   TESTS: tests/test_gdn.c (make test; double precision): recurrent == chunked to 1e-10 for
   several chunk sizes and T not a multiple of them, state carried across calls, central
   finite-difference gradchecks of the chunked delta rule (dq dk dv dg dbeta) and of the whole
   block (dx and all 13 weights), no future leak. tests/emu_linear.c (make emucheck): the CUDA
   kernels on a CPU emulation. tests/gpu_linear_check.c (make gpucheck): the kernels and the
   block on the device vs this reference, and timings next to dense attention.

   MEMORY: attn_gdn_block_act_sizes / attn_gdn_block_acts_bind carve the saved activations (AttnGdnActs) out of an
   activation-typed and a ops_real buffer; attn_gdn_block_scratch_sizes / attn_gdn_block_scratch_bind the backward's
   scratch (shareable by all layers) likewise. Both buffers must start 16-byte aligned (the
   sections inside are kept aligned: GEMM operands, the workspace's float4 reads). AttnGdnActs.state
   (NULL after acts_bind: each sequence starts from zero) makes the block's forward start from that
   [B, H, D, D] state and leave its final state there: the GPU prefill hands it to decoding.
*/
#ifndef ATTN_GDN_H
#define ATTN_GDN_H

/* linkage of every public function of attn.h and its rooms: extern, or static with ATTN_STATIC
   or ABLATE_STATIC (each .c file that defines the implementation then gets its own copy) */
#ifndef ATTNDEF
#if defined(ATTN_STATIC) || defined(ABLATE_STATIC)
#define ATTNDEF static
#else
#define ATTNDEF extern
#endif
#endif

/* the room's options and the fields it adds to AttnActs / AttnScratch (attn.h) */
#define ATTN_OPTIONS_gdn(X)                                                                                    \
    X(gdn, conv_size, "conv_size", 0, ATTN_MAX_TOKENS, 0, "gdn: short causal conv over time (default 4)")      \
    X(gdn, chunk, "chunk", 0, ATTN_MAX_TOKENS, 0, "gdn: chunk of the chunked delta rule (default 64)")
#define ATTN_ACTS_gdn AttnGdnActs gdn;
#define ATTN_SCRATCH_gdn AttnGdnScratch gdn;

#include "../ops.h"
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the delta rule ---- */
/* recurrent form: one token at a time (the generation path). state [B,H,D,D] is read as
   the initial state and overwritten by the final one; state == NULL starts from zero.
   (GPU: runs the chunked kernel, which gives the same result to rounding.) */
ATTNDEF void attn_gdn_recurrent(Gpu *gpu, void *o, ops_real *state, const void *q, const void *k, const void *v,
                      int ld, const ops_real *g, const ops_real *beta, int B, int T, int H, int D,
                      float scale);
/* chunked form, forward; state as above (NULL: zero start, final state not kept).
   GPU: the chunk is always 64 (`chunk` is the CPU's; every chunk size gives the same
   result up to rounding); D as attn_gdn_block_gpu_supported takes it. */
ATTNDEF void attn_gdn_chunk_forward(Gpu *gpu, void *o, ops_real *state, const void *q, const void *k,
                          const void *v, int ld, const ops_real *g, const ops_real *beta, int B, int T,
                          int H, int D, float scale, int chunk);
/* chunked form, backward of a zero-initial-state forward: dq, dk, dv (row stride ld),
   dg, dbeta written (=). ws: attn_gdn_block_ws_elems(B, T, H, D, chunk) ops_real of workspace. */
ATTNDEF void attn_gdn_chunk_backward(Gpu *gpu, void *dq, void *dk, void *dv, ops_real *dg, ops_real *dbeta,
                           const void *dout, const void *q, const void *k, const void *v, int ld,
                           const ops_real *g, const ops_real *beta, int B, int T, int H, int D,
                           float scale, int chunk, ops_real *ws);
ATTNDEF size_t attn_gdn_block_ws_elems(int B, int T, int H, int D, int chunk);

/* ---- the small ops of the block ---- */
/* causal depthwise conv (kernel K) + SiLU over Ch channels: in [N, in_ld] (first Ch columns),
   w [Ch, K]; pre [N, Ch] = conv, out [N, Ch] = silu(pre) */
ATTNDEF void attn_gdn_conv_silu_forward(Gpu *gpu, void *pre, void *out, const void *in, int in_ld,
                              const void *w, int N, int T, int Ch, int K);
/* din [N, in_ld] first Ch columns written (=); dw [Ch, K] += */
ATTNDEF void attn_gdn_conv_silu_backward(Gpu *gpu, void *din, int in_ld, ops_real *dw, const void *dout,
                               const void *pre, const void *in, const void *w, int N, int T,
                               int Ch, int K);
/* per-head L2 norm, in place on x [N, ld] (nh heads of D from column 0): x <- x * rn,
   rn [N, nh] = 1/sqrt(sum x^2 + eps) */
ATTNDEF void attn_gdn_l2norm_forward(Gpu *gpu, void *x, int ld, ops_real *rn, int N, int nh, int D, float eps);
/* in place on dy [N, ld]: dx = rn (dy - y (y . dy)), y the normalized x */
ATTNDEF void attn_gdn_l2norm_backward(Gpu *gpu, void *dy, int ld, const void *y, int y_ld, const ops_real *rn,
                            int N, int nh, int D);
/* gates: a, b are column views (row stride ld) of [N, H] logits;
   g = -exp(A_log) softplus(a + dt_bias), beta = sigmoid(b) */
ATTNDEF void attn_gdn_gates_forward(Gpu *gpu, ops_real *g, ops_real *beta, const void *a, const void *b, int ld,
                          const void *A_log, const void *dt_bias, int N, int H);
/* da, db (row stride ld) written (=); dA_log, ddt_bias += */
ATTNDEF void attn_gdn_gates_backward(Gpu *gpu, void *da, void *db, int ld, ops_real *dA_log, ops_real *ddt_bias,
                           const ops_real *dg, const ops_real *dbeta, const void *a, const void *b,
                           const void *A_log, const void *dt_bias, int N, int H);
/* gated RMSNorm per head: y = o * rstd * w * silu(gate); o, y [N, H*D]; gate [N, gate_ld];
   w [D]; rstd [N, H] */
ATTNDEF void attn_gdn_gated_rmsnorm_forward(Gpu *gpu, void *y, ops_real *rstd, const void *o, const void *gate,
                                  int gate_ld, const void *w, int N, int H, int D, float eps);
/* dout written into do_ (=) and dgate (=, row stride gate_ld); dw += */
ATTNDEF void attn_gdn_gated_rmsnorm_backward(Gpu *gpu, void *do_, void *dgate, int gate_ld, ops_real *dw,
                                   const void *dy, const void *o, const void *gate, const void *w,
                                   const ops_real *rstd, int N, int H, int D);

/* ---- the block ---- */
typedef struct {
    int d_model, n_heads, head_dim; /* head_dim = dk = dv (GPU: multiples of 8, 32..256) */
    int conv_size;                  /* short conv kernel, default 4 */
    int chunk;                      /* chunk of the chunked form, default 64 (GPU: 64) */
    float norm_eps;                 /* gated RMSNorm eps, default 1e-5 */
} AttnGdnDims;

/* one parameter tensor: offset and shape in the block's flat buffer */
typedef struct {
    const char *name;   /* fla's name: "q_proj", ... */
    size_t offset, numel;
    int rows, cols;     /* cols = 0 for vectors */
    int is_norm;        /* o_norm: init 1, no weight decay */
    int is_output_proj; /* o_proj */
    int is_special;     /* convs, A_log, dt_bias, o_norm: attn_gdn_block_param_init_special sets them */
    int no_weight_decay;/* A_log, dt_bias (fla's _no_weight_decay), o_norm */
} AttnGdnParamSpec;
#define GDN_N_PARAMS 13

/* fill zero fields with defaults and check; 0 on success, else -1 with a message */
ATTNDEF int attn_gdn_block_resolve(AttnGdnDims *d, char *err, size_t errlen);
/* the head dims the GPU kernels run: multiples of 8 in [ATTN_GDN_GPU_DMIN, ATTN_GDN_GPU_DMAX]
   (up to 64 padded to the tensor-core kernels' 64-wide tile, to 128 two 64-wide tiles, above
   128 three or four; attn/gdn.cu.h) */
#define ATTN_GDN_GPU_DMIN 32
#define ATTN_GDN_GPU_DMAX 256
/* 0 when the GPU kernels run these dims (head_dim as above, conv_size <= 8), else -1 with a message */
ATTNDEF int attn_gdn_block_gpu_supported(const AttnGdnDims *d, char *err, size_t errlen);
/* the 13 tensors (out may be NULL); returns the count */
ATTNDEF int attn_gdn_block_param_specs(const AttnGdnDims *d, AttnGdnParamSpec *out);
ATTNDEF size_t attn_gdn_block_param_count(const AttnGdnDims *d);
/* fla's init of the convs, A_log, dt_bias and o_norm (the matrices are left alone) */
ATTNDEF void attn_gdn_block_param_init_special(const AttnGdnDims *d, ops_real *w, unsigned long long seed);
/* forward FLOPs per token (matmuls + the chunked delta rule), and state bytes per layer
   and sequence for generation (the "KV cache" of a linear attention: constant in T) */
ATTNDEF double attn_gdn_block_flops_per_token(const AttnGdnDims *d);
ATTNDEF size_t attn_gdn_block_state_bytes(const AttnGdnDims *d);

/* saved activations (pointers into the caller's memory) */
typedef struct {
    void *proj;     /* [N, 4HD+2H]: W_q x | W_k x | W_v x | W_g x | W_a x | W_b x */
    void *cpre;     /* [N, 3HD] conv outputs before SiLU */
    void *qkv;      /* [N, 3HD] q, k (L2-normalized), v: the delta rule's inputs */
    void *o;        /* [N, HD] delta rule output */
    void *y;        /* [N, HD] gated RMSNorm output (o_proj's input) */
    ops_real *qk_rn;  /* [N, 2H] 1/|q|, 1/|k| per head */
    ops_real *g, *beta, *o_rstd; /* [N, H] each */
    /* [B, H, D, D] or NULL (acts_bind's): the delta rule's initial state in and its final state
       out (attn_gdn_chunk_forward's state), for a prefill that hands the state to decoding */
    ops_real *state;
} AttnGdnActs;
typedef struct {
    void *dproj, *dqkv, *do_, *dy; /* [N, 4HD+2H], [N, 3HD], [N, HD], [N, HD] */
    ops_real *dg, *dbeta;            /* [N, H] */
    ops_real *ws;                    /* attn_gdn_block_ws_elems */
} AttnGdnScratch;
ATTNDEF void attn_gdn_block_act_sizes(const AttnGdnDims *d, int B, int T, size_t *act_elems, size_t *stat_elems);
ATTNDEF void attn_gdn_block_acts_bind(const AttnGdnDims *d, AttnGdnActs *a, const Gpu *gpu, void *act_mem, ops_real *stat_mem,
                   int B, int T);
ATTNDEF void attn_gdn_block_scratch_sizes(const AttnGdnDims *d, int B, int T, size_t *act_elems, size_t *stat_elems);
ATTNDEF void attn_gdn_block_scratch_bind(const AttnGdnDims *d, AttnGdnScratch *s, const Gpu *gpu, void *act_mem,
                      ops_real *stat_mem, int B, int T);

/* w: the block's compute weights (act type: ops_real on the CPU, bf16 on the GPU);
   x, out [N, d_model]; out written */
ATTNDEF void attn_gdn_block_forward(Gpu *gpu, const AttnGdnDims *d, const void *w, AttnGdnActs *a, const void *x,
                       void *out, int B, int T);
/* dw += (ops_real, fp32 on the GPU, layout of w); dx [N, d_model] written (=) */
ATTNDEF void attn_gdn_block_backward(Gpu *gpu, const AttnGdnDims *d, const void *w, ops_real *dw, AttnGdnActs *a,
                        AttnGdnScratch *s, const void *x, const void *dout, void *dx, int B, int T);


#ifdef __cplusplus
}
#endif
#endif /* ATTN_GDN_H */

/* ======================================================================= */
#if defined(ATTN_GDN_IMPLEMENTATION) || defined(ATTN_IMPLEMENTATION)
#ifndef ATTN_GDN_IMPLEMENTATION_DONE
#define ATTN_GDN_IMPLEMENTATION_DONE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ABLATE_NO_CUDA
#include "../gpu.h"
#include "gdn.cu.h"
#endif
/* OPS_GPU (the kernel when gpu != NULL, then return), OMP_, OPS_OMP_MIN_WORK: ops.h's kit */

#define GR(p) ((ops_real *)(p))
#define GCR(p) ((const ops_real *)(p))

/* ---------------------------------------------------------------- the delta rule */

/* one (b, h) sequence: strided views of its inputs and output */
typedef struct {
    const ops_real *q, *k, *v, *g, *beta; /* q/k/v rows ld apart; g/beta rows H apart */
    ops_real *o;                           /* rows HD apart */
    size_t ld, ldo, ldg;
    int T, D;
    ops_real scale;
} GdnSeq;

static GdnSeq gdn_seq_(const void *q, const void *k, const void *v, int ld, const ops_real *g,
                       const ops_real *beta, void *o, int b, int h, int T, int H, int D, float scale) {
    GdnSeq s;
    size_t row = (size_t)b * T;
    s.q = GCR(q) + row * ld + (size_t)h * D;
    s.k = GCR(k) + row * ld + (size_t)h * D;
    s.v = GCR(v) + row * ld + (size_t)h * D;
    s.g = g + row * H + h;
    s.beta = beta + row * H + h;
    s.o = o ? GR(o) + row * H * D + (size_t)h * D : NULL;
    s.ld = ld; s.ldo = (size_t)H * D; s.ldg = H;
    s.T = T; s.D = D; s.scale = scale;
    return s;
}

/* Hs = S^T [D][D]: column j of S is row j of... we keep Hs[i][j] = S[j][i] (i key, j value) */
static void gdn_recurrent_seq_(const GdnSeq *s, ops_real *Hs) {
    int D = s->D;
    ops_real *pred = malloc(sizeof(ops_real) * D);
    for (int t = 0; t < s->T; t++) {
        const ops_real *q = s->q + t * s->ld, *k = s->k + t * s->ld, *v = s->v + t * s->ld;
        ops_real a = exp(s->g[t * s->ldg]), b = s->beta[t * s->ldg];
        for (int j = 0; j < D; j++) { /* pred = S k */
            ops_real acc = 0;
            for (int i = 0; i < D; i++) acc += Hs[i * D + j] * k[i];
            pred[j] = acc;
        }
        for (int j = 0; j < D; j++) pred[j] = b * (v[j] - a * pred[j]); /* u_t */
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) Hs[i * D + j] = a * Hs[i * D + j] + k[i] * pred[j];
        ops_real *o = s->o + t * s->ldo;
        for (int j = 0; j < D; j++) {
            ops_real acc = 0;
            for (int i = 0; i < D; i++) acc += Hs[i * D + j] * q[i];
            o[j] = acc * s->scale;
        }
    }
    free(pred);
}

ATTNDEF void attn_gdn_recurrent(Gpu *gpu, void *o, ops_real *state, const void *q, const void *k, const void *v,
                      int ld, const ops_real *g, const ops_real *beta, int B, int T, int H, int D,
                      float scale) {
    OPS_GPU(gpu_gdn_forward(gpu, o, state, q, k, v, ld, g, beta, B, T, H, D, scale));
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * D * D * 4 > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            GdnSeq s = gdn_seq_(q, k, v, ld, g, beta, o, b, h, T, H, D, scale);
            ops_real *Hs = state ? state + ((size_t)b * H + h) * D * D : calloc((size_t)D * D, sizeof(ops_real));
            gdn_recurrent_seq_(&s, Hs);
            if (!state) free(Hs);
        }
}

/* C[M,N] (= or +=) alpha op(A) op(B); A is [M,K] row-major (ta: [K,M]), B [K,N] (tb: [N,K]) */
static void gdn_mm_(ops_real *C, const ops_real *A, int ta, const ops_real *B, int tb, int M, int K, int N,
                    ops_real alpha, int accumulate) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            ops_real acc = 0;
            for (int p = 0; p < K; p++)
                acc += (ta ? A[p * M + i] : A[i * K + p]) * (tb ? B[j * K + p] : B[p * N + j]);
            C[i * N + j] = (accumulate ? C[i * N + j] : 0) + alpha * acc;
        }
}

/* the quantities of one chunk (rows t0..t0+L-1), see the top of the file */
typedef struct {
    int L, D;
    ops_real *K, *Q, *V;        /* [L, D]; Q scaled */
    ops_real *gam, *bet;        /* [L] cumulative log decay, beta */
    ops_real *At, *Tm, *P;      /* [L, L]: A~, T, lower_incl((Q K^T) o G) */
    ops_real *W, *U;            /* [L, D] */
} GdnChunk;

static void gdn_chunk_alloc_(GdnChunk *c, int C, int D) {
    size_t ld = (size_t)C * D, ll = (size_t)C * C;
    ops_real *m = malloc(sizeof(ops_real) * (5 * ld + 3 * ll + 2 * (size_t)C));
    c->K = m; c->Q = m + ld; c->V = m + 2 * ld; c->W = m + 3 * ld; c->U = m + 4 * ld;
    c->At = m + 5 * ld; c->Tm = c->At + ll; c->P = c->Tm + ll;
    c->gam = c->P + ll; c->bet = c->gam + C;
    c->D = D;
}

static void gdn_chunk_prep_(GdnChunk *c, const GdnSeq *s, int t0, int L, const ops_real *H0) {
    int D = s->D;
    c->L = L;
    ops_real cum = 0;
    for (int r = 0; r < L; r++) {
        int t = t0 + r;
        for (int i = 0; i < D; i++) {
            c->K[r * D + i] = s->k[t * s->ld + i];
            c->Q[r * D + i] = s->q[t * s->ld + i] * s->scale;
            c->V[r * D + i] = s->v[t * s->ld + i];
        }
        cum += s->g[t * s->ldg];
        c->gam[r] = cum;
        c->bet[r] = s->beta[t * s->ldg];
    }
    /* A~ and P from K K^T and Q K^T with the decay G_rj = exp(gamma_r - gamma_j), j <= r */
    gdn_mm_(c->At, c->K, 0, c->K, 1, L, D, L, 1, 0);
    gdn_mm_(c->P, c->Q, 0, c->K, 1, L, D, L, 1, 0);
    for (int r = 0; r < L; r++)
        for (int j = 0; j < L; j++) {
            ops_real G = j <= r ? exp(c->gam[r] - c->gam[j]) : 0;
            c->At[r * L + j] *= j < r ? G : 0;
            c->P[r * L + j] *= G;
        }
    /* T = (I + diag(beta) A~)^-1 by forward substitution, column by column */
    for (int col = 0; col < L; col++)
        for (int r = 0; r < L; r++) {
            ops_real acc = 0;
            for (int j = col; j < r; j++) acc += c->At[r * L + j] * c->Tm[j * L + col];
            c->Tm[r * L + col] = (r == col) - (r > col ? c->bet[r] * acc : 0);
        }
    /* W = T diag(beta e^gamma) K;  U = T diag(beta) V - W H0 */
    for (int r = 0; r < L; r++)
        for (int i = 0; i < D; i++) {
            ops_real w = 0, u = 0;
            for (int j = 0; j <= r; j++) {
                ops_real t = c->Tm[r * L + j] * c->bet[j];
                w += t * exp(c->gam[j]) * c->K[j * D + i];
                u += t * c->V[j * D + i];
            }
            c->W[r * D + i] = w;
            c->U[r * D + i] = u;
        }
    gdn_mm_(c->U, c->W, 0, H0, 0, L, D, D, -1, 1);
}

/* output rows of the chunk and the state after it (H0 -> H0 updated in place) */
static void gdn_chunk_out_(const GdnChunk *c, const GdnSeq *s, int t0, ops_real *H0) {
    int L = c->L, D = c->D;
    for (int r = 0; r < L; r++) {
        ops_real *o = s->o ? s->o + (t0 + r) * s->ldo : NULL;
        if (!o) break;
        ops_real eg = exp(c->gam[r]);
        for (int j = 0; j < D; j++) {
            ops_real a = 0, b = 0;
            for (int i = 0; i < D; i++) a += c->Q[r * D + i] * H0[i * D + j];
            for (int m = 0; m <= r; m++) b += c->P[r * L + m] * c->U[m * D + j];
            o[j] = eg * a + b;
        }
    }
    ops_real gl = c->gam[L - 1], el = exp(gl);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            ops_real acc = 0;
            for (int m = 0; m < L; m++) acc += c->K[m * D + i] * exp(gl - c->gam[m]) * c->U[m * D + j];
            H0[i * D + j] = el * H0[i * D + j] + acc;
        }
}

/* forward over one sequence; h_save (may be NULL) receives each chunk's initial state */
static void gdn_chunk_fwd_seq_(const GdnSeq *s, ops_real *Hs, ops_real *h_save, int C) {
    GdnChunk c;
    gdn_chunk_alloc_(&c, C, s->D);
    size_t DD = (size_t)s->D * s->D;
    for (int t0 = 0, ci = 0; t0 < s->T; t0 += C, ci++) {
        int L = s->T - t0 < C ? s->T - t0 : C;
        if (h_save) memcpy(h_save + ci * DD, Hs, sizeof(ops_real) * DD);
        gdn_chunk_prep_(&c, s, t0, L, Hs);
        gdn_chunk_out_(&c, s, t0, Hs);
    }
    free(c.K);
}

/* the CPU keeps each chunk's initial state (one D x D tile a chunk); the GPU's chunk-parallel
   backward six (attn/gdn.cu.h: H, W, U, dU, dH, T) of its 64 x 64 tiles, which a head
   narrower than 64 still fills (padded inside the kernels), hence max(D, 64) */
ATTNDEF size_t attn_gdn_block_ws_elems(int B, int T, int H, int D, int chunk) {
    size_t nc = (size_t)(T + chunk - 1) / chunk, P = D < 64 ? 64 : (size_t)D;
    return 6 * (size_t)B * H * nc * P * P;
}

ATTNDEF void attn_gdn_chunk_forward(Gpu *gpu, void *o, ops_real *state, const void *q, const void *k,
                          const void *v, int ld, const ops_real *g, const ops_real *beta, int B, int T,
                          int H, int D, float scale, int chunk) {
    OPS_GPU(gpu_gdn_forward(gpu, o, state, q, k, v, ld, g, beta, B, T, H, D, scale));
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * D * (D + chunk) * 6 > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            GdnSeq s = gdn_seq_(q, k, v, ld, g, beta, o, b, h, T, H, D, scale);
            ops_real *Hs = state ? state + ((size_t)b * H + h) * D * D : calloc((size_t)D * D, sizeof(ops_real));
            gdn_chunk_fwd_seq_(&s, Hs, NULL, chunk);
            if (!state) free(Hs);
        }
}

/* the gradient outputs of one sequence (views like GdnSeq) */
typedef struct { ops_real *dq, *dk, *dv, *dg, *dbeta; const ops_real *dout; } GdnGrad;

/* Backward of one chunk. In: H0 (its initial state), dH (gradient of its end state),
   dO rows. Out: dq, dk, dv, dg, dbeta of its rows (=), dH <- gradient of H0.
   Terms by forward line (rows r, j; e_r = exp(gamma_r), d_j = exp(gamma_{L-1} - gamma_j)):
   (e) H_L = e_{L-1} H0 + sum_j d_j k_j u_j^T:
       dU_j = d_j (K dH)_j;  dK_j += d_j (U dH^T)_j;  dH0 = e_{L-1} dH;
       dgamma_{L-1} += e_{L-1} <H0, dH> + sum_j s_j,  dgamma_j -= s_j,  s_j = dU_j . U_j
   (d) O = diag(e) Q H0 + P U,  P = lower_incl((Q K^T) o G):
       dQ_r += e_r (dO H0^T)_r;  dgamma_r += e_r (Q H0)_r . dO_r;  dH0 += Q^T diag(e) dO;
       dU += P^T dO;  dP = lower_incl(dO U^T): dgamma_r += sum_j dP o P, dgamma_j -= sum_r dP o P;
       dD = dP o G:  dQ += dD K,  dK += dD^T Q
   (c) U = U~ - W H0:  dW = -dU H0^T;  dH0 -= W^T dU
   (b) W = T X, X = diag(beta e) K;  U~ = T Y, Y = diag(beta) V:
       dX = T^T dW, dY = T^T dU;  dK += diag(beta e) dX;  dV = diag(beta) dY;
       dbeta_r += e_r K_r . dX_r + V_r . dY_r;  dgamma_r += beta_r e_r K_r . dX_r;
       dT = dW X^T + dU Y^T
   (a) T = (I + M)^-1, M = diag(beta) A~:  dM = strict_lower(-T^T dT T^T);
       dbeta_r += sum_j dM_rj A~_rj;  with a_rj = beta_r dM_rj A~_rj: dgamma_r += sum_j a_rj,
       dgamma_j -= sum_r a_rj;  dKK = beta_r dM_rj G_rj:  dK += dKK K + dKK^T K
   Finally dg_i = sum_{r >= i} dgamma_r (gamma is the cumsum of g) and dq = scale dQ. */
static void gdn_chunk_bwd_(GdnChunk *c, const GdnSeq *s, const GdnGrad *gr, int t0, const ops_real *H0,
                           ops_real *dH, ops_real *tmp) {
    int L = c->L, D = c->D;
    size_t LD = (size_t)L * D, LL = (size_t)L * L, DD = (size_t)D * D;
    ops_real *dU = tmp, *dQ = dU + LD, *dK = dQ + LD, *dW = dK + LD, *dO = dW + LD, *X = dO + LD,
           *Y = X + LD, *dX = Y + LD, *dY = dX + LD, *dP = dY + LD, *dT = dP + LL, *tm = dT + LL,
           *dH0 = tm + LL + LD, *dgam = dH0 + DD; /* tm holds [L, L] or [L, D] */
    ops_real gl = c->gam[L - 1], el = exp(gl);
    for (int r = 0; r < L; r++) {
        dgam[r] = 0;
        for (int j = 0; j < D; j++) dO[r * D + j] = gr->dout[(t0 + r) * s->ldo + j];
    }
    /* (e) */
    gdn_mm_(dU, c->K, 0, dH, 0, L, D, D, 1, 0);
    gdn_mm_(dK, c->U, 0, dH, 1, L, D, D, 1, 0);
    for (int j = 0; j < L; j++) {
        ops_real dj = exp(gl - c->gam[j]), sj = 0;
        for (int i = 0; i < D; i++) {
            dU[j * D + i] *= dj;
            dK[j * D + i] *= dj;
            sj += dU[j * D + i] * c->U[j * D + i];
        }
        dgam[L - 1] += sj;
        dgam[j] -= sj;
    }
    ops_real hdh = 0;
    for (size_t i = 0; i < DD; i++) { hdh += H0[i] * dH[i]; dH0[i] = el * dH[i]; }
    dgam[L - 1] += el * hdh;
    /* (d) */
    gdn_mm_(dQ, dO, 0, H0, 1, L, D, D, 1, 0);
    gdn_mm_(tm, c->Q, 0, H0, 0, L, D, D, 1, 0); /* Q H0 (tm holds L*D here) */
    for (int r = 0; r < L; r++) {
        ops_real er = exp(c->gam[r]), qd = 0;
        for (int i = 0; i < D; i++) {
            dQ[r * D + i] *= er;
            qd += tm[r * D + i] * dO[r * D + i];
            X[r * D + i] = er * dO[r * D + i]; /* diag(e) dO, for dH0 */
        }
        dgam[r] += er * qd;
    }
    gdn_mm_(dH0, c->Q, 1, X, 0, D, L, D, 1, 1);
    gdn_mm_(dU, c->P, 1, dO, 0, L, L, D, 1, 1);
    gdn_mm_(dP, dO, 0, c->U, 1, L, D, L, 1, 0);
    for (int r = 0; r < L; r++)
        for (int j = 0; j < L; j++) {
            if (j > r) { dP[r * L + j] = 0; continue; }
            ops_real pp = dP[r * L + j] * c->P[r * L + j];
            dgam[r] += pp;
            dgam[j] -= pp;
            dP[r * L + j] *= exp(c->gam[r] - c->gam[j]); /* now dD */
        }
    gdn_mm_(dQ, dP, 0, c->K, 0, L, L, D, 1, 1);
    gdn_mm_(dK, dP, 1, c->Q, 0, L, L, D, 1, 1);
    /* (c) */
    gdn_mm_(dW, dU, 0, H0, 1, L, D, D, -1, 0);
    gdn_mm_(dH0, c->W, 1, dU, 0, D, L, D, -1, 1);
    /* (b) */
    for (int r = 0; r < L; r++) {
        ops_real be = c->bet[r] * exp(c->gam[r]);
        for (int i = 0; i < D; i++) { X[r * D + i] = be * c->K[r * D + i]; Y[r * D + i] = c->bet[r] * c->V[r * D + i]; }
    }
    gdn_mm_(dX, c->Tm, 1, dW, 0, L, L, D, 1, 0);
    gdn_mm_(dY, c->Tm, 1, dU, 0, L, L, D, 1, 0);
    for (int r = 0; r < L; r++) {
        ops_real er = exp(c->gam[r]), b = c->bet[r], kx = 0, vy = 0;
        for (int i = 0; i < D; i++) {
            kx += c->K[r * D + i] * dX[r * D + i];
            vy += c->V[r * D + i] * dY[r * D + i];
            dK[r * D + i] += b * er * dX[r * D + i];
            gr->dv[(t0 + r) * s->ld + i] = b * dY[r * D + i];
        }
        gr->dbeta[(t0 + r) * s->ldg] = er * kx + vy;
        dgam[r] += b * er * kx;
    }
    gdn_mm_(dT, dW, 0, X, 1, L, D, L, 1, 0);
    gdn_mm_(dT, dU, 0, Y, 1, L, D, L, 1, 1);
    /* (a) dM = -T^T dT T^T, kept strictly lower; then it becomes dKK in place */
    gdn_mm_(tm, dT, 0, c->Tm, 1, L, L, L, 1, 0);
    gdn_mm_(dP, c->Tm, 1, tm, 0, L, L, L, -1, 0);
    for (int r = 0; r < L; r++)
        for (int j = 0; j < L; j++) {
            if (j >= r) { dP[r * L + j] = 0; continue; }
            ops_real dm = dP[r * L + j], a = c->At[r * L + j];
            gr->dbeta[(t0 + r) * s->ldg] += dm * a;
            ops_real ar = c->bet[r] * dm * a;
            dgam[r] += ar;
            dgam[j] -= ar;
            dP[r * L + j] = c->bet[r] * dm * exp(c->gam[r] - c->gam[j]);
        }
    gdn_mm_(dK, dP, 0, c->K, 0, L, L, D, 1, 1);
    gdn_mm_(dK, dP, 1, c->K, 0, L, L, D, 1, 1);
    /* write out */
    ops_real acc = 0;
    for (int r = L - 1; r >= 0; r--) {
        acc += dgam[r];
        gr->dg[(t0 + r) * s->ldg] = acc;
        for (int i = 0; i < D; i++) {
            gr->dq[(t0 + r) * s->ld + i] = s->scale * dQ[r * D + i];
            gr->dk[(t0 + r) * s->ld + i] = dK[r * D + i];
        }
    }
    memcpy(dH, dH0, sizeof(ops_real) * DD);
}

ATTNDEF void attn_gdn_chunk_backward(Gpu *gpu, void *dq, void *dk, void *dv, ops_real *dg, ops_real *dbeta,
                           const void *dout, const void *q, const void *k, const void *v, int ld,
                           const ops_real *g, const ops_real *beta, int B, int T, int H, int D,
                           float scale, int chunk, ops_real *ws) {
    OPS_GPU(gpu_gdn_backward(gpu, dq, dk, dv, dg, dbeta, dout, q, k, v, ld, g, beta, B, T, H, D, scale, ws));
    int C = chunk, nc = (T + C - 1) / C;
    size_t DD = (size_t)D * D;
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * D * (D + C) * 20 > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            GdnSeq s = gdn_seq_(q, k, v, ld, g, beta, NULL, b, h, T, H, D, scale);
            s.ldo = (size_t)H * D;
            size_t row = (size_t)b * T;
            GdnGrad gr = {GR(dq) + row * ld + (size_t)h * D, GR(dk) + row * ld + (size_t)h * D,
                          GR(dv) + row * ld + (size_t)h * D, dg + row * H + h, dbeta + row * H + h,
                          GCR(dout) + row * H * D + (size_t)h * D};
            ops_real *hsave = ws + ((size_t)b * H + h) * nc * DD;
            ops_real *Hs = calloc(DD, sizeof(ops_real)), *dH = calloc(DD, sizeof(ops_real));
            gdn_chunk_fwd_seq_(&s, Hs, hsave, C); /* the chunks' initial states */
            GdnChunk c;
            gdn_chunk_alloc_(&c, C, D);
            ops_real *tmp = malloc(sizeof(ops_real) * (11 * (size_t)C * D + 3 * (size_t)C * C + DD + C));
            for (int ci = nc - 1; ci >= 0; ci--) {
                int t0 = ci * C, L = T - t0 < C ? T - t0 : C;
                gdn_chunk_prep_(&c, &s, t0, L, hsave + ci * DD);
                gdn_chunk_bwd_(&c, &s, &gr, t0, hsave + ci * DD, dH, tmp);
            }
            free(tmp); free(c.K); free(Hs); free(dH);
        }
}

/* ---------------------------------------------------------------- small ops */

static ops_real gdn_sigmoid_(ops_real x) { return 1 / (1 + exp(-x)); }
static ops_real gdn_softplus_(ops_real x) { return x > 20 ? x : log1p(exp(x)); }

ATTNDEF void attn_gdn_conv_silu_forward(Gpu *gpu, void *pre, void *out, const void *in, int in_ld,
                              const void *w, int N, int T, int Ch, int K) {
    OPS_GPU(gpu_gdn_conv_silu_forward(gpu, pre, out, in, in_ld, w, N, T, Ch, K));
    for (int n = 0; n < N; n++) {
        int t = n % T;
        for (int c = 0; c < Ch; c++) {
            ops_real acc = 0;
            for (int i = 0; i < K; i++) {
                int s = t - K + 1 + i;
                if (s >= 0) acc += GCR(w)[(size_t)c * K + i] * GCR(in)[(size_t)(n - t + s) * in_ld + c];
            }
            GR(pre)[(size_t)n * Ch + c] = acc;
            GR(out)[(size_t)n * Ch + c] = acc * gdn_sigmoid_(acc);
        }
    }
}

/* dpre_t = dout_t silu'(pre_t); din_s = sum_i w[i] dpre_{s+K-1-i} (same sequence);
   dw[i] += sum_t dpre_t x_{t-K+1+i} */
ATTNDEF void attn_gdn_conv_silu_backward(Gpu *gpu, void *din, int in_ld, ops_real *dw, const void *dout,
                               const void *pre, const void *in, const void *w, int N, int T,
                               int Ch, int K) {
    OPS_GPU(gpu_gdn_conv_silu_backward(gpu, din, in_ld, dw, dout, pre, in, w, N, T, Ch, K));
    ops_real *dp = malloc(sizeof(ops_real) * (size_t)N * Ch);
    for (size_t i = 0; i < (size_t)N * Ch; i++) {
        ops_real p = GCR(pre)[i], sg = gdn_sigmoid_(p);
        dp[i] = GCR(dout)[i] * sg * (1 + p * (1 - sg));
    }
    for (int n = 0; n < N; n++) {
        int t = n % T;
        for (int c = 0; c < Ch; c++) {
            ops_real acc = 0;
            for (int i = 0; i < K; i++) {
                int u = t + K - 1 - i; /* the output that reads x_t through tap i */
                if (u < T) acc += GCR(w)[(size_t)c * K + i] * dp[(size_t)(n - t + u) * Ch + c];
                int s = t - K + 1 + i;
                if (s >= 0) dw[(size_t)c * K + i] += dp[(size_t)n * Ch + c] * GCR(in)[(size_t)(n - t + s) * in_ld + c];
            }
            GR(din)[(size_t)n * in_ld + c] = acc;
        }
    }
    free(dp);
}

ATTNDEF void attn_gdn_l2norm_forward(Gpu *gpu, void *x, int ld, ops_real *rn, int N, int nh, int D, float eps) {
    OPS_GPU(gpu_gdn_l2norm_forward(gpu, x, ld, rn, N, nh, D, eps));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            ops_real *p = GR(x) + (size_t)n * ld + (size_t)h * D, ss = 0;
            for (int i = 0; i < D; i++) ss += p[i] * p[i];
            ops_real r = 1 / sqrt(ss + eps);
            rn[(size_t)n * nh + h] = r;
            for (int i = 0; i < D; i++) p[i] *= r;
        }
}

ATTNDEF void attn_gdn_l2norm_backward(Gpu *gpu, void *dy, int ld, const void *y, int y_ld, const ops_real *rn,
                            int N, int nh, int D) {
    OPS_GPU(gpu_gdn_l2norm_backward(gpu, dy, ld, y, y_ld, rn, N, nh, D));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < nh; h++) {
            ops_real *d = GR(dy) + (size_t)n * ld + (size_t)h * D, dot = 0;
            const ops_real *p = GCR(y) + (size_t)n * y_ld + (size_t)h * D;
            for (int i = 0; i < D; i++) dot += p[i] * d[i];
            ops_real r = rn[(size_t)n * nh + h];
            for (int i = 0; i < D; i++) d[i] = r * (d[i] - p[i] * dot);
        }
}

ATTNDEF void attn_gdn_gates_forward(Gpu *gpu, ops_real *g, ops_real *beta, const void *a, const void *b, int ld,
                          const void *A_log, const void *dt_bias, int N, int H) {
    OPS_GPU(gpu_gdn_gates_forward(gpu, g, beta, a, b, ld, A_log, dt_bias, N, H));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            size_t i = (size_t)n * ld + h;
            g[(size_t)n * H + h] = -exp(GCR(A_log)[h]) * gdn_softplus_(GCR(a)[i] + GCR(dt_bias)[h]);
            beta[(size_t)n * H + h] = gdn_sigmoid_(GCR(b)[i]);
        }
}

/* g = -e^A sp(a + dt): dg/dA = g, dg/da = dg/ddt = -e^A sigmoid(a + dt); beta' = beta (1 - beta) */
ATTNDEF void attn_gdn_gates_backward(Gpu *gpu, void *da, void *db, int ld, ops_real *dA_log, ops_real *ddt_bias,
                           const ops_real *dg, const ops_real *dbeta, const void *a, const void *b,
                           const void *A_log, const void *dt_bias, int N, int H) {
    OPS_GPU(gpu_gdn_gates_backward(gpu, da, db, ld, dA_log, ddt_bias, dg, dbeta, a, b, A_log, dt_bias, N, H));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            size_t i = (size_t)n * ld + h, j = (size_t)n * H + h;
            ops_real ea = exp(GCR(A_log)[h]), z = GCR(a)[i] + GCR(dt_bias)[h];
            ops_real gv = -ea * gdn_softplus_(z), dz = dg[j] * -ea * gdn_sigmoid_(z);
            dA_log[h] += dg[j] * gv;
            ddt_bias[h] += dz;
            GR(da)[i] = dz;
            ops_real be = gdn_sigmoid_(GCR(b)[i]);
            GR(db)[i] = dbeta[j] * be * (1 - be);
        }
}

ATTNDEF void attn_gdn_gated_rmsnorm_forward(Gpu *gpu, void *y, ops_real *rstd, const void *o, const void *gate,
                                  int gate_ld, const void *w, int N, int H, int D, float eps) {
    OPS_GPU(gpu_gdn_gated_rmsnorm_forward(gpu, y, rstd, o, gate, gate_ld, w, N, H, D, eps));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const ops_real *x = GCR(o) + ((size_t)n * H + h) * D, *z = GCR(gate) + (size_t)n * gate_ld + (size_t)h * D;
            ops_real *out = GR(y) + ((size_t)n * H + h) * D, ss = 0;
            for (int i = 0; i < D; i++) ss += x[i] * x[i];
            ops_real r = 1 / sqrt(ss / D + eps);
            rstd[(size_t)n * H + h] = r;
            for (int i = 0; i < D; i++) out[i] = x[i] * r * GCR(w)[i] * z[i] * gdn_sigmoid_(z[i]);
        }
}

/* y = n w s, n = x r, s = silu(z): dz = dy n w silu'(z); dn = dy s, then RMSNorm's backward:
   dx = r (w dn) - x r^3 mean(x w dn), dw += dn x r */
ATTNDEF void attn_gdn_gated_rmsnorm_backward(Gpu *gpu, void *do_, void *dgate, int gate_ld, ops_real *dw,
                                   const void *dy, const void *o, const void *gate, const void *w,
                                   const ops_real *rstd, int N, int H, int D) {
    OPS_GPU(gpu_gdn_gated_rmsnorm_backward(gpu, do_, dgate, gate_ld, dw, dy, o, gate, w, rstd, N, H, D));
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            size_t io = ((size_t)n * H + h) * D, ig = (size_t)n * gate_ld + (size_t)h * D;
            const ops_real *x = GCR(o) + io, *z = GCR(gate) + ig, *d = GCR(dy) + io, *wv = GCR(w);
            ops_real r = rstd[(size_t)n * H + h], dot = 0;
            for (int i = 0; i < D; i++) {
                ops_real sg = gdn_sigmoid_(z[i]), dn = d[i] * z[i] * sg;
                GR(dgate)[ig + i] = d[i] * x[i] * r * wv[i] * sg * (1 + z[i] * (1 - sg));
                dot += x[i] * wv[i] * dn;
                dw[i] += dn * x[i] * r;
            }
            dot /= D;
            for (int i = 0; i < D; i++) {
                ops_real dn = d[i] * z[i] * gdn_sigmoid_(z[i]);
                GR(do_)[io + i] = r * wv[i] * dn - x[i] * r * r * r * dot;
            }
        }
}

/* ---------------------------------------------------------------- the block */

ATTNDEF int attn_gdn_block_resolve(AttnGdnDims *d, char *err, size_t errlen) {
    if (d->d_model <= 0) { snprintf(err, errlen, "gdn: d_model must be > 0 (got %d)", d->d_model); return -1; }
    if (d->n_heads <= 0) { snprintf(err, errlen, "gdn: n_heads must be > 0 (got %d)", d->n_heads); return -1; }
    if (!d->head_dim) d->head_dim = d->d_model / d->n_heads;
    if (!d->conv_size) d->conv_size = 4;
    if (!d->chunk) d->chunk = 64;
    if (!(d->norm_eps > 0)) d->norm_eps = 1e-5f;
    if (d->head_dim <= 0 || d->conv_size <= 0 || d->chunk <= 0) {
        snprintf(err, errlen, "gdn: head_dim %d, conv_size %d, chunk %d must be > 0", d->head_dim,
                 d->conv_size, d->chunk);
        return -1;
    }
    return 0;
}

ATTNDEF int attn_gdn_block_gpu_supported(const AttnGdnDims *d, char *err, size_t errlen) {
    int D = d->head_dim;
    if (D < ATTN_GDN_GPU_DMIN || D > ATTN_GDN_GPU_DMAX || D % 8) {
        snprintf(err, errlen, "gdn: the GPU kernels take a head_dim that is a multiple of 8 from %d to %d "
                 "(got %d)", ATTN_GDN_GPU_DMIN, ATTN_GDN_GPU_DMAX, D);
        return -1;
    }
    if (d->conv_size > 8) {
        snprintf(err, errlen, "gdn: the GPU kernels take conv_size <= 8 (got %d)", d->conv_size);
        return -1;
    }
    return 0;
}

ATTNDEF int attn_gdn_block_param_specs(const AttnGdnDims *d, AttnGdnParamSpec *out) {
    int C = d->d_model, H = d->n_heads, D = d->head_dim, K = d->conv_size, HD = H * D;
    struct { const char *name; int rows, cols, norm, oproj, special; } t[GDN_N_PARAMS] = {
        {"q_proj", HD, C, 0, 0, 0}, {"k_proj", HD, C, 0, 0, 0}, {"v_proj", HD, C, 0, 0, 0},
        {"g_proj", HD, C, 0, 0, 0}, {"a_proj", H, C, 0, 0, 0},  {"b_proj", H, C, 0, 0, 0},
        {"o_proj", C, HD, 0, 1, 0}, {"q_conv1d", HD, K, 0, 0, 1}, {"k_conv1d", HD, K, 0, 0, 1},
        {"v_conv1d", HD, K, 0, 0, 1}, {"o_norm", D, 0, 1, 0, 1}, {"A_log", H, 0, 0, 0, 1},
        {"dt_bias", H, 0, 0, 0, 1}};
    size_t off = 0;
    for (int i = 0; i < GDN_N_PARAMS; i++) {
        size_t numel = (size_t)t[i].rows * (t[i].cols ? t[i].cols : 1);
        if (out)
            out[i] = (AttnGdnParamSpec){t[i].name, off, numel, t[i].rows, t[i].cols, t[i].norm, t[i].oproj,
                                    t[i].special, t[i].norm || i >= GDN_N_PARAMS - 2};
        off += numel;
    }
    return GDN_N_PARAMS;
}

ATTNDEF size_t attn_gdn_block_param_count(const AttnGdnDims *d) {
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(d, p);
    return p[GDN_N_PARAMS - 1].offset + p[GDN_N_PARAMS - 1].numel;
}

static double gdn_urand_(unsigned long long *s) { /* splitmix64 -> [0, 1) */
    unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

ATTNDEF void attn_gdn_block_param_init_special(const AttnGdnDims *d, ops_real *w, unsigned long long seed) {
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(d, p);
    for (int i = 0; i < GDN_N_PARAMS; i++) {
        ops_real *x = w + p[i].offset;
        if (!strcmp(p[i].name, "o_norm")) for (size_t j = 0; j < p[i].numel; j++) x[j] = 1;
        else if (!strcmp(p[i].name, "A_log")) for (size_t j = 0; j < p[i].numel; j++) x[j] = log(16 * (1 - gdn_urand_(&seed))); /* U(0, 16] */
        else if (!strcmp(p[i].name, "dt_bias"))
            for (size_t j = 0; j < p[i].numel; j++) {
                double dt = exp(log(1e-3) + gdn_urand_(&seed) * (log(1e-1) - log(1e-3)));
                if (dt < 1e-4) dt = 1e-4;
                x[j] = dt + log(-expm1(-dt));
            }
        else if (p[i].is_special) { /* the convs */
            double bound = 1 / sqrt((double)d->conv_size);
            for (size_t j = 0; j < p[i].numel; j++) x[j] = bound * (2 * gdn_urand_(&seed) - 1);
        }
    }
}

ATTNDEF double attn_gdn_block_flops_per_token(const AttnGdnDims *d) {
    double C = d->d_model, H = d->n_heads, D = d->head_dim, L = d->chunk;
    double proj = 2 * C * (4 * H * D + 2 * H) + 2 * H * D * C;
    /* per chunk of L: K K^T, Q K^T (2 L^2 D each), T's substitution (L^3/3), W and U~ (2 L^2 D
       each), W H0, Q H0, K^T U (2 L D^2 each), P U (2 L^2 D): per token divide by L */
    double core = H * (10 * L * D + L * L / 3 + 6 * D * D);
    return proj + core;
}

ATTNDEF size_t attn_gdn_block_state_bytes(const AttnGdnDims *d) {
    size_t HD = (size_t)d->n_heads * d->head_dim;
    /* the fp32 delta-rule state and the convs' last K-1 inputs (act type, counted as 4 bytes) */
    return 4 * (HD * d->head_dim + 3 * HD * (size_t)(d->conv_size - 1));
}

/* act sections are rounded up to 8 elements (16 bytes in bf16) so every view stays aligned */
static size_t gdn_round8_(size_t n) { return (n + 7) & ~(size_t)7; }

ATTNDEF void attn_gdn_block_act_sizes(const AttnGdnDims *d, int B, int T, size_t *act_elems, size_t *stat_elems) {
    size_t N = (size_t)B * T, H = d->n_heads, HD = H * d->head_dim;
    *act_elems = gdn_round8_(N * (4 * HD + 2 * H)) + 2 * gdn_round8_(N * 3 * HD) + 2 * gdn_round8_(N * HD);
    *stat_elems = N * (2 * H + 3 * H);
}

ATTNDEF void attn_gdn_block_acts_bind(const AttnGdnDims *d, AttnGdnActs *a, const Gpu *gpu, void *act_mem, ops_real *stat_mem,
                   int B, int T) {
    size_t N = (size_t)B * T, H = d->n_heads, HD = H * d->head_dim, es = ops_act_size(gpu);
    char *p = act_mem;
    a->proj = p; p += es * gdn_round8_(N * (4 * HD + 2 * H));
    a->cpre = p; p += es * gdn_round8_(N * 3 * HD);
    a->qkv = p; p += es * gdn_round8_(N * 3 * HD);
    a->o = p; p += es * gdn_round8_(N * HD);
    a->y = p;
    a->qk_rn = stat_mem;
    a->g = stat_mem + N * 2 * H;
    a->beta = a->g + N * H;
    a->o_rstd = a->beta + N * H;
    a->state = NULL; /* training starts each sequence from zero and keeps no final state */
}

ATTNDEF void attn_gdn_block_scratch_sizes(const AttnGdnDims *d, int B, int T, size_t *act_elems, size_t *stat_elems) {
    size_t N = (size_t)B * T, H = d->n_heads, HD = H * d->head_dim;
    *act_elems = gdn_round8_(N * (4 * HD + 2 * H)) + gdn_round8_(N * 3 * HD) + 2 * gdn_round8_(N * HD);
    /* ws starts 16-byte aligned (the GPU reads it as float4) when stat_mem is */
    *stat_elems = ((N * 2 * H + 3) & ~(size_t)3) + attn_gdn_block_ws_elems(B, T, (int)H, d->head_dim, d->chunk);
}

ATTNDEF void attn_gdn_block_scratch_bind(const AttnGdnDims *d, AttnGdnScratch *s, const Gpu *gpu, void *act_mem,
                      ops_real *stat_mem, int B, int T) {
    size_t N = (size_t)B * T, H = d->n_heads, HD = H * d->head_dim, es = ops_act_size(gpu);
    char *p = act_mem;
    s->dproj = p; p += es * gdn_round8_(N * (4 * HD + 2 * H));
    s->dqkv = p; p += es * gdn_round8_(N * 3 * HD);
    s->do_ = p; p += es * gdn_round8_(N * HD);
    s->dy = p;
    s->dg = stat_mem;
    s->dbeta = stat_mem + N * H;
    s->ws = stat_mem + ((2 * N * H + 3) & ~(size_t)3);
}

/* the block's weight views (element offsets from attn_gdn_block_param_specs, in the act type's units) */
typedef struct { const char *proj, *oproj, *conv, *onorm, *alog, *dtb; size_t dproj, doproj, dconv, donorm, dalog, ddtb; } GdnW;
static GdnW gdn_w_(const AttnGdnDims *d, const void *w, const Gpu *gpu) {
    AttnGdnParamSpec p[GDN_N_PARAMS];
    attn_gdn_block_param_specs(d, p);
    size_t es = ops_act_size(gpu);
    const char *b = w;
    GdnW v = {b + es * p[0].offset, b + es * p[6].offset, b + es * p[7].offset, b + es * p[10].offset,
              b + es * p[11].offset, b + es * p[12].offset, p[0].offset, p[6].offset, p[7].offset,
              p[10].offset, p[11].offset, p[12].offset};
    return v;
}

ATTNDEF void attn_gdn_block_forward(Gpu *gpu, const AttnGdnDims *d, const void *w, AttnGdnActs *a, const void *x,
                       void *out, int B, int T) {
    int N = B * T, C = d->d_model, H = d->n_heads, D = d->head_dim, HD = H * D, P = 4 * HD + 2 * H;
    size_t es = ops_act_size(gpu);
    GdnW wv = gdn_w_(d, w, gpu);
    char *proj = a->proj, *qkv = a->qkv;
    op_matmul_forward(gpu, a->proj, x, wv.proj, N, C, P);
    attn_gdn_conv_silu_forward(gpu, a->cpre, a->qkv, a->proj, P, wv.conv, N, T, 3 * HD, d->conv_size);
    attn_gdn_l2norm_forward(gpu, a->qkv, 3 * HD, a->qk_rn, N, 2 * H, D, 1e-6f);
    attn_gdn_gates_forward(gpu, a->g, a->beta, proj + es * 4 * HD, proj + es * (4 * HD + H), P, wv.alog,
                         wv.dtb, N, H);
    attn_gdn_chunk_forward(gpu, a->o, a->state, qkv, qkv + es * HD, qkv + es * 2 * HD, 3 * HD, a->g, a->beta,
                         B, T, H, D, (float)(1 / sqrt((double)D)), d->chunk);
    attn_gdn_gated_rmsnorm_forward(gpu, a->y, a->o_rstd, a->o, proj + es * 3 * HD, P, wv.onorm, N, H, D,
                                 d->norm_eps);
    op_matmul_forward(gpu, out, a->y, wv.oproj, N, HD, C);
}

ATTNDEF void attn_gdn_block_backward(Gpu *gpu, const AttnGdnDims *d, const void *w, ops_real *dw, AttnGdnActs *a,
                        AttnGdnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, C = d->d_model, H = d->n_heads, D = d->head_dim, HD = H * D, P = 4 * HD + 2 * H;
    size_t es = ops_act_size(gpu);
    GdnW wv = gdn_w_(d, w, gpu);
    char *proj = a->proj, *qkv = a->qkv, *dproj = s->dproj, *dqkv = s->dqkv;
    op_matmul_backward(gpu, s->dy, dw + wv.doproj, dout, a->y, wv.oproj, N, HD, C, 0);
    attn_gdn_gated_rmsnorm_backward(gpu, s->do_, dproj + es * 3 * HD, P, dw + wv.donorm, s->dy, a->o,
                                  proj + es * 3 * HD, wv.onorm, a->o_rstd, N, H, D);
    attn_gdn_chunk_backward(gpu, dqkv, dqkv + es * HD, dqkv + es * 2 * HD, s->dg, s->dbeta, s->do_, qkv,
                          qkv + es * HD, qkv + es * 2 * HD, 3 * HD, a->g, a->beta, B, T, H, D,
                          (float)(1 / sqrt((double)D)), d->chunk, s->ws);
    attn_gdn_gates_backward(gpu, dproj + es * 4 * HD, dproj + es * (4 * HD + H), P, dw + wv.dalog,
                          dw + wv.ddtb, s->dg, s->dbeta, proj + es * 4 * HD, proj + es * (4 * HD + H),
                          wv.alog, wv.dtb, N, H);
    attn_gdn_l2norm_backward(gpu, s->dqkv, 3 * HD, a->qkv, 3 * HD, a->qk_rn, N, 2 * H, D);
    attn_gdn_conv_silu_backward(gpu, s->dproj, P, dw + wv.dconv, s->dqkv, a->cpre, a->proj, wv.conv, N, T,
                              3 * HD, d->conv_size);
    op_matmul_backward(gpu, dx, dw + wv.dproj, s->dproj, x, wv.proj, N, C, P, 0);
}

#undef GR
#undef GCR
#endif /* ATTN_GDN_IMPLEMENTATION_DONE */
#endif /* ATTN_GDN_IMPLEMENTATION */

/* ======================================================================= */
/* the room of attn.h: the block above as the mechanism `gdn` */
#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_GDN_ROOM_DONE)
#define ATTN_GDN_ROOM_DONE

static AttnGdnDims gdn_dims(const AttnConfig *c) {
    AttnGdnDims g = {c->d_model, c->n_heads, c->head_dim, c->conv_size, c->chunk, c->norm_eps};
    return g;
}

static int attn_gdn_resolve(AttnConfig *c, char *err, size_t errlen) {
    /* per-head recurrent state: no KV heads, no window, no RoPE */
    if (c->window || c->qk_norm) {
        snprintf(err, errlen, "attn gdn takes no window (%d) or qk_norm (%d): its state already forgets "
                 "(gates) and q, k are L2-normalized", c->window, c->qk_norm);
        return -1;
    }
    c->n_kv_heads = c->n_heads;
    AttnGdnDims g = gdn_dims(c);
    if (attn_gdn_block_resolve(&g, err, errlen)) return -1;
    c->conv_size = g.conv_size;
    c->chunk = g.chunk;
    return 0;
}

static int attn_gdn_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    AttnGdnDims g = gdn_dims(c);
    return attn_gdn_block_gpu_supported(&g, err, errlen);
}

static int attn_gdn_param_specs(const AttnConfig *c, AttnParamSpec *p) { /* fla's names; A_log and dt_bias are bare */
    AttnGdnDims g = gdn_dims(c);
    AttnGdnParamSpec gp[GDN_N_PARAMS];
    size_t off = 0;
    int k = attn_gdn_block_param_specs(&g, gp);
    for (int i = 0; i < k; i++) {
        char name[96];
        int bare = !strcmp(gp[i].name, "A_log") || !strcmp(gp[i].name, "dt_bias");
        snprintf(name, sizeof name, bare ? "%s" : "%s.weight", gp[i].name);
        attn_spec_set(&p[i], name, &off, gp[i].rows, gp[i].cols);
        p[i].offset = gp[i].offset; /* the block's own layout (same order, so equal) */
        p[i].is_output_proj = gp[i].is_output_proj;
    }
    return k;
}

static size_t attn_gdn_state_bytes(const AttnConfig *c) {
    AttnGdnDims g = gdn_dims(c);
    return attn_gdn_block_state_bytes(&g);
}

static double attn_gdn_flops(const AttnConfig *c, int T) { /* linear in T: no context term */
    AttnGdnDims g = gdn_dims(c);
    (void)T;
    return attn_gdn_block_flops_per_token(&g);
}

static void attn_gdn_init_special(const AttnConfig *c, ops_real *w, unsigned long long seed) {
    AttnGdnDims g = gdn_dims(c);
    attn_gdn_block_param_init_special(&g, w, seed);
}

static void attn_gdn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    AttnGdnDims g = gdn_dims(c);
    attn_gdn_block_act_sizes(&g, B, T, act_elems, stat_elems);
}

static void attn_gdn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                               int B, int T) {
    AttnGdnDims g = gdn_dims(c);
    attn_gdn_block_acts_bind(&g, &a->gdn, gpu, act_mem, (ops_real *)(void *)stat_mem, B, T);
}

static size_t attn_gdn_scratch_elems(const AttnConfig *c, int B, int T) {
    /* its ops_real part after the activations, 2 elements per fp32 */
    AttnGdnDims g = gdn_dims(c);
    size_t ae, se;
    attn_gdn_block_scratch_sizes(&g, B, T, &ae, &se);
    return ae + 2 * se + 8; /* + alignment of the ops_real part */
}

static void attn_gdn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    AttnGdnDims g = gdn_dims(c);
    size_t ae, se;
    attn_gdn_block_scratch_sizes(&g, B, T, &ae, &se);
    uintptr_t st = ((uintptr_t)(mem + ae * ops_act_size(gpu)) + 15) & ~(uintptr_t)15;
    attn_gdn_block_scratch_bind(&g, &s->gdn, gpu, mem, (ops_real *)st, B, T);
}

static int attn_gdn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                            int B, int T) {
    AttnGdnDims g = gdn_dims(c);
    attn_gdn_block_forward(gpu, &g, w, &a->gdn, x, out, B, T);
    return 0;
}

static int attn_gdn_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                             const void *x, const void *dout, void *dx, int B, int T) {
    AttnGdnDims g = gdn_dims(c);
    attn_gdn_block_backward(gpu, &g, w, dw, &a->gdn, &s->gdn, x, dout, dx, B, T);
    return 0;
}

/* ---- decoding: the recurrent state [B][H, D, D] (attn_gdn_recurrent's layout), then each
   sequence's short-conv tail [K-1][3HD] (the last K-1 rows of the conv's input): constant in T ---- */
static size_t attn_gdn_cache_bytes(const AttnConfig *c, int T) {
    (void)T;
    size_t HD = (size_t)c->n_heads * c->head_dim;
    return (HD * c->head_dim + (size_t)(c->conv_size - 1) * 3 * HD) * sizeof(ops_real);
}

static int attn_gdn_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    AttnGdnDims g = gdn_dims(c);
    int B = kc->B, C = g.d_model, H = g.n_heads, D = g.head_dim, HD = H * D, P = 4 * HD + 2 * H, K = g.conv_size;
    GdnW wv = gdn_w_(&g, w, NULL);
    ops_real *state = kc->mem, *tails = state + (size_t)B * HD * D;
    ops_real *proj = attn_tmp((size_t)B * P), *win = attn_tmp((size_t)K * 3 * HD), *pre = attn_tmp((size_t)K * 3 * HD);
    ops_real *cout = attn_tmp((size_t)K * 3 * HD), *qkv = attn_tmp((size_t)B * 3 * HD), *rn = attn_tmp((size_t)B * 2 * H);
    ops_real *gg = attn_tmp((size_t)B * H), *beta = attn_tmp((size_t)B * H), *o = attn_tmp((size_t)B * HD);
    ops_real *y = attn_tmp((size_t)B * HD), *rs = attn_tmp((size_t)B * H);
    int rc = proj && win && pre && cout && qkv && rn && gg && beta && o && y && rs ? 0 : -1;
    if (!rc) {
        size_t row = (size_t)3 * HD;
        op_matmul_forward(NULL, proj, x, wv.proj, B, C, P);
        for (int b = 0; b < B; b++) { /* the conv over [tail | new row]: its last output is this token's */
            ops_real *tail = tails + (size_t)b * (K - 1) * row;
            memcpy(win, tail, sizeof(ops_real) * (K - 1) * row);
            memcpy(win + (K - 1) * row, proj + (size_t)b * P, sizeof(ops_real) * row);
            attn_gdn_conv_silu_forward(NULL, pre, cout, win, (int)row, wv.conv, K, K, (int)row, K);
            memcpy(qkv + b * row, cout + (K - 1) * row, sizeof(ops_real) * row);
            memcpy(tail, win + row, sizeof(ops_real) * (K - 1) * row);
        }
        attn_gdn_l2norm_forward(NULL, qkv, 3 * HD, rn, B, 2 * H, D, 1e-6f);
        attn_gdn_gates_forward(NULL, gg, beta, proj + 4 * HD, proj + 4 * HD + H, P, wv.alog, wv.dtb, B, H);
        attn_gdn_recurrent(NULL, o, state, qkv, qkv + HD, qkv + 2 * HD, 3 * HD, gg, beta, B, 1, H, D,
                         (float)(1 / sqrt((double)D)));
        attn_gdn_gated_rmsnorm_forward(NULL, y, rs, o, proj + 3 * HD, P, wv.onorm, B, H, D, g.norm_eps);
        op_matmul_forward(NULL, out, y, wv.oproj, B, HD, C);
    }
    free(proj); free(win); free(pre); free(cout); free(qkv); free(rn); free(gg); free(beta); free(o); free(y); free(rs);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h and the block's small GPU ops). The cache: every sequence's
   state [B][H, D, D] in fp32, then every sequence's conv tail [B][K-1][3HD] in bf16: constant in
   T. A step: the projection (matmul, N = B); the conv over [tail | new row] + SiLU, shifting the
   tail; the per-head L2 norm and the gates (the training kernels, N = B); one block per (b, h)
   for the delta-rule update and readout (a thread per state column); the gated RMSNorm (training
   kernel); o_proj. The prompt: attn_gdn_gpu_prefill below (only with tuning.dec_prefill = 1: attn.h's
   attn_gpu_prefill_whole says why; else one step per token). ---- */
static size_t attn_gdn_gpu_cache_bytes(const AttnConfig *c, int T) {
    (void)T;
    size_t HD = (size_t)c->n_heads * c->head_dim;
    return HD * c->head_dim * 4 + (size_t)(c->conv_size - 1) * 3 * HD * 2;
}

typedef struct { void *proj, *qkv, *o, *y; float *rn, *g, *beta, *rs; } GdnDecScratch;
static GdnDecScratch gdn_dec_scratch(const AttnConfig *c, void *base, int B, size_t *bytes) {
    size_t H = (size_t)c->n_heads, HD = H * c->head_dim, P = 4 * HD + 2 * H;
    char *cur = base;
    GdnDecScratch s;
    s.proj = attn_dec_take(&cur, 2 * B * P);
    s.qkv = attn_dec_take(&cur, 2 * B * 3 * HD);
    s.o = attn_dec_take(&cur, 2 * B * HD);
    s.y = attn_dec_take(&cur, 2 * B * HD);
    s.rn = attn_dec_take(&cur, 4 * B * 2 * H);
    s.g = attn_dec_take(&cur, 4 * B * H);
    s.beta = attn_dec_take(&cur, 4 * B * H);
    s.rs = attn_dec_take(&cur, 4 * B * H);
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

static size_t attn_gdn_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t n;
    (void)cap;
    gdn_dec_scratch(c, NULL, B, &n);
    return n;
}

#ifndef ABLATE_NO_CUDA
#include "decode.cu.h"
static int attn_gdn_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                               void *out) {
    AttnGdnDims g = gdn_dims(c);
    int B = k->B, C = g.d_model, H = g.n_heads, D = g.head_dim, HD = H * D, P = 4 * HD + 2 * H, K = g.conv_size;
    size_t es = ops_act_size(gpu);
    if (D > 1024 || K < 1) return -1; /* the state kernel's thread per column */
    GdnW wv = gdn_w_(&g, w, gpu);
    GdnDecScratch s = gdn_dec_scratch(c, k->scratch, B, NULL);
    float *state = k->mem;
    void *tails = (char *)k->mem + (size_t)B * HD * D * 4;
    const char *proj = s.proj;
    op_matmul_forward(gpu, s.proj, x, wv.proj, B, C, P);
    gpu_dec_gdn_conv(gpu, s.qkv, tails, s.proj, wv.conv, B, P, 3 * HD, K);
    attn_gdn_l2norm_forward(gpu, s.qkv, 3 * HD, (ops_real *)s.rn, B, 2 * H, D, 1e-6f);
    attn_gdn_gates_forward(gpu, (ops_real *)s.g, (ops_real *)s.beta, proj + es * 4 * HD, proj + es * (4 * HD + H), P,
                           wv.alog, wv.dtb, B, H);
    gpu_dec_gdn_state(gpu, s.o, state, s.qkv, s.g, s.beta, B, H, D, (float)(1 / sqrt((double)D)));
    attn_gdn_gated_rmsnorm_forward(gpu, s.y, (ops_real *)s.rs, s.o, proj + es * 3 * HD, P, wv.onorm, B, H, D,
                                   g.norm_eps);
    op_matmul_forward(gpu, out, s.y, wv.oproj, B, HD, C);
    return 0;
}
#define ATTN_GDN_GPU_DECODE attn_gdn_gpu_decode
#else
#define ATTN_GDN_GPU_DECODE NULL
#endif

/* the prompt at once (attn.h's attn_gpu_prefill_whole: tuning.dec_prefill): the training forward
   (the chunked delta rule) over the prompt, whose output is the prefill's, handing its final state
   straight into the cache's (zeroed at init: the zero initial state training starts from); the
   conv tail is the projection's last K - 1 rows (q | k | v columns), zero before position 0 */
static int attn_gdn_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                void *out, int T) {
#ifndef ABLATE_NO_CUDA
    AttnGdnDims g = gdn_dims(c);
    int B = k->B, H = g.n_heads, D = g.head_dim, HD = H * D, P = 4 * HD + 2 * H, K = g.conv_size;
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, c, B, T, &pf);
    pf.a.gdn.state = (ops_real *)k->mem; /* [B][H, D, D] fp32: the cache's first part */
    /* the chunked forward with fp32 products (tuning gdn_mma variant 0), not the tensor cores':
       the state it hands to decoding then carries fp32 rounding, as the decode step's does (the
       bf16 products leave it within 1.5e-2 of the reference, tests/gpu_linear_check). On the
       H200 this took gpu_decode_check's GDN layer from 2.24e-2 to 1.78e-2 (bound 2e-2); the
       rooms check's conv_size 1 case stayed at 4.2e-2 either way (attn.h's
       attn_gpu_prefill_whole) */
    int mma = gpu->tuning.gdn_mma;
    gpu->tuning.gdn_mma = GPU_TUNE_VARIANT(0);
    int rc = attn_forward(gpu, c, w, &pf.a, x, out, B, T);
    gpu->tuning.gdn_mma = mma;
    if (!rc)
        gpu_dec_fill_rows(gpu, (char *)k->mem + (size_t)B * HD * D * 4, pf.a.gdn.proj, B, T, K - 1, 3 * HD, (size_t)P,
                          (size_t)(K - 1) * 3 * HD, (size_t)3 * HD, 0);
    attn_gpu_prefill_end(gpu, &pf);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1; /* the CPU-only build has no GPU */
#endif
}

/* the delta rule's module for gpu_kernel_prewarm */
static int attn_gdn_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                 int max) {
    (void)B; (void)T;
#ifndef ABLATE_NO_CUDA
    return gpu_gdn_kernels(gpu, c->head_dim, out, max);
#else
    (void)gpu; (void)c; (void)out; (void)max;
    return 0;
#endif
}

static const AttnMech attn_room_gdn = {
    "gdn", attn_gdn_resolve, attn_gdn_gpu_supported, attn_gdn_param_specs, NULL, attn_gdn_state_bytes,
    attn_gdn_flops, attn_gdn_init_special, attn_gdn_act_sizes, attn_gdn_acts_bind, attn_gdn_scratch_elems,
    attn_gdn_scratch_bind, attn_gdn_forward, attn_gdn_backward, NULL, attn_gdn_cache_bytes, attn_gdn_decode, NULL,
    attn_gdn_gpu_cache_bytes, attn_gdn_gpu_scratch_bytes, NULL, ATTN_GDN_GPU_DECODE, attn_gdn_gpu_prefill,
    attn_gdn_gpu_kernels,
};

#endif /* ATTN_GDN_ROOM_DONE */
