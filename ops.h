/* ops.h - the op set of the toolkit: a plain-C reference for every op
   (forward and backward) and the dispatch to the CUDA path.

   USAGE
     #define OPS_IMPLEMENTATION      // in exactly one .c file (or ABLATE_IMPLEMENTATION: every
     #include "ops.h"                // header's implementation)
     cc prog.c -lm                   // CPU only: no define, no CUDA library

   Every op takes a `Gpu *gpu` first. gpu == NULL runs the plain-C reference
   (the readable, teaching version and the oracle for every kernel);
   a non-NULL gpu (see gpu.h) runs the CUDA kernel on device pointers.

   DEPENDS ON: nothing (C99 and libm); gpu.h and attn/dense.cu.h in the CUDA build.
   BUILDS: the GPU is opt-in. Without a define every header builds CPU-only (as with
   ABLATE_NO_CUDA, still accepted): a gpu argument must be NULL and no CUDA library is needed.
   -DABLATE_CUDA builds the CUDA path (gpu.h says what to link). Defining both is an #error.
   LINKAGE: every public function is declared OPSDEF (extern); define OPS_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   SCALAR TYPES
     ops_real   the CPU reference's scalar: float by default. Tests compile the
              whole stack with -DABLATE_REAL=double for finite-difference
              gradient checks in double precision.
     On the GPU: activations and activation gradients are bf16, weights are
     passed to ops as a bf16 copy of the fp32 master weights, weight
     gradients and per-row statistics (rstd, lse, losses) are fp32 (ops_real).
     So activation pointers are `void *` (ops_real on the CPU, bf16 on the
     GPU); ops_act_size(gpu) gives the element size.

   LAYOUTS (row-major, N = B*T rows, row n is token t = n % T of sequence n / T)
     activations  [N, C]
     linear weight [OC, C] (PyTorch's [out, in]); y = x @ W^T
     q             [B, T, H, hd]     k, v [B, T, KV, hd]
     lse           [B, H, T]         (log-sum-exp of the scaled scores)
     RoPE          Llama "rotate half": pairs (i, i + hd/2),
                   angle = t * theta^(-2i/hd)

   Gradient conventions: weight gradients are always ACCUMULATED (+=) so that
   gradient accumulation over micro-batches is free. Activation gradients are
   written (=) unless an `accumulate` flag says +=.
*/
/* the GPU is opt-in: without ABLATE_CUDA the headers build as CPU-only code (ABLATE_NO_CUDA),
   so that a program of the CPU headers links with a C compiler and -lm alone. These lines
   (repeated in gpu.h, which the kernel headers include first) are the one place that decides;
   the other headers reach ops.h or gpu.h before they look at ABLATE_NO_CUDA. */
#if defined(ABLATE_CUDA) && defined(ABLATE_NO_CUDA)
#error "ABLATE_CUDA and ABLATE_NO_CUDA are both defined: define ABLATE_CUDA for the CUDA build, or neither for the CPU-only one"
#endif
#if !defined(ABLATE_CUDA) && !defined(ABLATE_NO_CUDA)
#define ABLATE_NO_CUDA
#endif

/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it). attn.h and its rooms (attn/dense.h, attn/gdn.h, ...)
   include ops.h first, so their macro is set here (ATTN_IMPLEMENTATION implies the rooms'). */
#ifdef ABLATE_IMPLEMENTATION
#ifndef OPS_IMPLEMENTATION
#define OPS_IMPLEMENTATION
#endif
#ifndef ATTN_IMPLEMENTATION
#define ATTN_IMPLEMENTATION
#endif
#endif
#ifndef OPS_H
#define OPS_H

/* linkage of every public function: extern, or static with OPS_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef OPSDEF
#if defined(OPS_STATIC) || defined(ABLATE_STATIC)
#define OPSDEF static
#else
#define OPSDEF extern
#endif
#endif

/* clock_gettime: POSIX 2008, asked for before the first system header so that the
   implementation builds under a strict -std=c99 too (a file that includes a system header before
   this one, under -std=c99, defines _POSIX_C_SOURCE 200809L itself) */
#if defined(OPS_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ABLATE_REAL
#define ABLATE_REAL float
#endif
typedef ABLATE_REAL ops_real;

#ifndef ABLATE_GPU_TYPEDEF
#define ABLATE_GPU_TYPEDEF
typedef struct Gpu Gpu; /* gpu.h; NULL selects the CPU reference */
#endif

/* element size of activations for this backend (sizeof(ops_real) or 2 for bf16) */
OPSDEF size_t ops_act_size(const Gpu *gpu);

/* ---- per-op profile (GPU): each op synchronizes before and after, so the
   table is GPU time per op; it slows the run, use it to see where time goes ---- */
typedef struct { char name[48]; double seconds; long calls; } OpsProfileEntry;
typedef struct { OpsProfileEntry e[64]; int n; } OpsProfile;  /* matmuls: one entry per shape */
OPSDEF void ops_profile_start(Gpu *gpu, OpsProfile *p);   /* p zeroed by the caller */
OPSDEF void ops_profile_stop(Gpu *gpu);
OPSDEF void ops_profile_print(const OpsProfile *p, double steps);

/* ---- memory on the op's backend (calloc/free on the CPU) ---- */
OPSDEF void *ops_alloc(Gpu *gpu, size_t bytes);           /* zero-filled; NULL when host memory runs out */
OPSDEF void ops_free(Gpu *gpu, void *p);
OPSDEF void ops_zero(Gpu *gpu, void *p, size_t bytes);
OPSDEF void ops_to_host(Gpu *gpu, void *dst, const void *src, size_t bytes);
OPSDEF void ops_to_device(Gpu *gpu, void *dst, const void *src, size_t bytes);
OPSDEF void ops_copy(Gpu *gpu, void *dst, const void *src, size_t bytes); /* device to device (CPU: memmove) */
/* the compute copy of the master weights: bf16 on the GPU; on the CPU the
   model uses the master weights directly, so this is a no-op there */
OPSDEF void ops_weights_to_compute(Gpu *gpu, void *dst, const ops_real *src, size_t n);

/* ---- embedding: out[n,:] = wte[tok[n],:] ---- */
OPSDEF void op_embed_forward(Gpu *gpu, void *out, const int *tok, const void *wte, int N, int C);
OPSDEF void op_embed_backward(Gpu *gpu, ops_real *dwte, const void *dout, const int *tok, int N, int C);

/* ---- linear (no bias): out[N,OC] = in[N,C] @ w[OC,C]^T ---- */
OPSDEF void op_matmul_forward(Gpu *gpu, void *out, const void *in, const void *w, int N, int C, int OC);
/* din (= or +=) dout @ w  (skipped when din == NULL);  dw += dout^T @ in (skipped when dw == NULL) */
OPSDEF void op_matmul_backward(Gpu *gpu, void *din, ops_real *dw, const void *dout, const void *in,
                               const void *w, int N, int C, int OC, int accumulate_din);

/* ---- RMSNorm with learnable scale: out = in * rstd * w, rstd = 1/sqrt(mean(in^2)+eps) ---- */
OPSDEF void op_rmsnorm_forward(Gpu *gpu, void *out, ops_real *rstd, const void *in, const void *w,
                               int N, int C, float eps);
/* the residual add and the norm after it, in one pass: sum = a + b, out = RMSNorm(sum) */
OPSDEF void op_add_rmsnorm_forward(Gpu *gpu, void *sum, void *out, ops_real *rstd, const void *a, const void *b,
                                   const void *w, int N, int C, float eps);
/* din (= or +=), dw += */
OPSDEF void op_rmsnorm_backward(Gpu *gpu, void *din, ops_real *dw, const void *dout, const void *in,
                                const void *w, const ops_real *rstd, int N, int C, int accumulate_din);

/* ---- RoPE, in place on x[N, nh, hd], position = n % T ---- */
OPSDEF void op_rope_forward(Gpu *gpu, void *x, int N, int T, int nh, int hd, float theta);
/* the gradient of a rotation is the inverse rotation: in place on dx */
OPSDEF void op_rope_backward(Gpu *gpu, void *dx, int N, int T, int nh, int hd, float theta);
/* RoPE on a part of each head: x points at the first rotated element of head 0 of row 0;
   heads are ld elements apart (rows nh*ld apart), and the rd elements from there rotate
   as a head of width rd would (pairs (i, i + rd/2), angle = t * theta^(-2i/rd)). The
   other elements of each head are untouched. op_rope_forward is ld = rd = hd. */
OPSDEF void op_rope_part_forward(Gpu *gpu, void *x, int N, int T, int nh, int ld, int rd, float theta);
OPSDEF void op_rope_part_backward(Gpu *gpu, void *dx, int N, int T, int nh, int ld, int rd, float theta);

/* ---- one GEMM for the q, k and v projections: its rows qkv [N, (H + 2 KV) hd] (q heads,
   then k heads, then v heads) split into q [N, H, hd], k and v [N, KV, hd], with q and k
   rotated as op_rope_forward does (theta 0: copied as they are). op_qkv_merge is its
   gradient: dq and dk rotated back (op_rope_backward), dv as it is, into dqkv's rows. ---- */
OPSDEF void op_qkv_split(Gpu *gpu, void *q, void *k, void *v, const void *qkv, int N, int T, int H, int KV,
                         int hd, float theta);
OPSDEF void op_qkv_merge(Gpu *gpu, void *dqkv, const void *dq, const void *dk, const void *dv, int N, int T,
                         int H, int KV, int hd, float theta);
/* the fused rows' buffer on the GPU: at least `bytes`, kept by the Gpu between calls */
OPSDEF void *ops_qkv_scratch(Gpu *gpu, size_t bytes);

/* ---- column blocks between strided row-major views (gather / scatter of the parts of a
   row): dst[i*dst_ld + j] (= or +=) scale * src[i*src_ld + j], i < rows, j < cols.
   Its gradient is the same copy the other way: dsrc block (+)= scale * ddst block. ---- */
OPSDEF void op_copy_cols(Gpu *gpu, void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t rows,
                         int cols, double scale, int accumulate);
/* a sum of `groups` column blocks, group g starting g*group_ld elements into each source
   row: dst[i*dst_ld + j] = sum_g src[i*src_ld + g*group_ld + j] (summed in fp32 on the
   GPU). The gradient of a block broadcast to every group (e.g. one key shared by heads). */
OPSDEF void op_sum_cols(Gpu *gpu, void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t group_ld,
                        int groups, size_t rows, int cols);

/* ---- MGA's O(T) decomposition (attn.h, MGA on the GPU). Rows are (n, h): a vector of
   width hd at act[(n*H + h)*hd]; per-row scalars are ops_real [N, H]; fp32 work buffers
   [N, H*hd] are ops_real. u_t = g_t / |g_t| makes MGA's correlation u_i . u_j, so with
   C_t = sum_{s<=t} u_s every gene mean is u_i . (C_i - C_{i-W}) and the attention is
   softmax_j(f_i/2 u_i . u_j): a flash attention core with q = f/2 sqrt(hd) u, k = u. ---- */
/* nrm = |g| per row, u = g / nrm (0 for a zero row) */
OPSDEF void op_mga_unit_forward(Gpu *gpu, void *u, ops_real *nrm, const void *g, size_t rows, int hd);
/* inclusive running sum over time of in [B, T, C] (an activation when in_is_act, else
   ops_real): out[b,t,c] = sum over t' <= t (reverse: t' >= t) of in[b,t',c], in fp32 */
OPSDEF void op_time_cumsum(Gpu *gpu, ops_real *out, const void *in, int in_is_act, int B, int T, int C, int reverse);
/* den = 1 + u_i . (C_i - C_{i-W}) / (2L) (L = i + 1, or T when faithful), rinv = 1/den */
OPSDEF void op_mga_den_forward(Gpu *gpu, ops_real *den, ops_real *rinv, const void *u, const ops_real *C, int B, int T,
                               int H, int hd, int window, int faithful);
/* f = 1 / (den S) (S = running sum of 1/den; faithful: its last value), q = f/2 sqrt(hd) u */
OPSDEF void op_mga_query_forward(Gpu *gpu, void *q, ops_real *f, const void *u, const ops_real *den, const ops_real *S,
                                 int B, int T, int H, int hd, int faithful);
/* from the core's dq, dk: du = f/2 sqrt(hd) dq + dk, dS = -df f/S, dden = -df f/den with
   df = sqrt(hd)/2 dq . u */
OPSDEF void op_mga_query_backward(Gpu *gpu, ops_real *du, ops_real *dS, ops_real *dden, const void *dq, const void *dk,
                                  const void *u, const ops_real *f, const ops_real *den, const ops_real *S, int B, int T,
                                  int H, int hd, int faithful);
/* Sd = reverse running sum of dS (faithful: its first value); r = (dden - Sd/den^2)/(2L);
   du += r (C_i - C_{i-W}); ru = r u (the part of du that reaches earlier tokens) */
OPSDEF void op_mga_den_backward(Gpu *gpu, ops_real *du, ops_real *ru, const void *u, const ops_real *C, const ops_real *den,
                                const ops_real *dden, const ops_real *Sd, int B, int T, int H, int hd, int window,
                                int faithful);
/* du_j += Rev_j - Rev_{j+W} (Rev = reverse running sum of ru), then through u = g/|g|:
   dg = (du - u (u . du)) / nrm */
OPSDEF void op_mga_unit_backward(Gpu *gpu, void *dg, const ops_real *du, const ops_real *Rev, const void *u,
                                 const ops_real *nrm, int B, int T, int H, int hd, int window);
/* MGA's gate: a depthwise conv over time with 3 taps, then SiLU. conv[n, c] = sum_k
   w[c*3 + k] x[n + k - shift, c] over taps inside the sequence (shift 2: causal, taps t-2..t;
   shift 1: centred); u = SiLU(conv) (u may be NULL). w is a weight ([C, 3]). */
OPSDEF void op_dwconv3_silu_forward(Gpu *gpu, void *conv, void *u, const void *x, const void *w, int B, int T, int C,
                                    int shift);
/* from du: dz = du SiLU'(conv); dw[c*3 + k] += sum_n dz[n, c] x[n + k - shift, c];
   dx (+=) the taps' transpose of dz (written when accumulate is 0) */
OPSDEF void op_dwconv3_silu_backward(Gpu *gpu, void *dx, ops_real *dw, const void *du, const void *conv, const void *x,
                                     const void *w, int B, int T, int C, int shift, int accumulate);
/* out = a * sigmoid(gate); backward: da = dout sigmoid(gate), dgate = dout a s (1 - s) */
OPSDEF void op_sigmoid_gate_forward(Gpu *gpu, void *out, const void *a, const void *gate, size_t n);
OPSDEF void op_sigmoid_gate_backward(Gpu *gpu, void *da, void *dgate, const void *dout, const void *a, const void *gate,
                                     size_t n);

/* ---- SwiGLU on one fused gate/up GEMM output: gu [N, 2F] holds gate in the first F
   columns of each row and up in the last F; out [N, F] = silu(gate) * up ---- */
OPSDEF void op_swiglu_forward(Gpu *gpu, void *out, const void *gu, int N, int F);
/* dgu [N, 2F] written (=); when act != NULL it also recomputes act [N, F] = silu(gate) * up
   in the same pass (the model does not keep act: the down projection's weight gradient
   takes it from here) */
OPSDEF void op_swiglu_backward(Gpu *gpu, void *dgu, void *act, const void *dout, const void *gu, int N, int F);

/* ---- residual: out = a + b (out may alias a or b) ---- */
OPSDEF void op_add(Gpu *gpu, void *out, const void *a, const void *b, size_t n);

/* ---- causal scaled-dot-product attention, GQA by head grouping ----
   head h reads kv head h / (H/KV); window W > 0: query t sees keys t-W+1..t;
   W == 0: all keys 0..t. scale = 1/sqrt(hd). */
OPSDEF void op_attention_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                 const void *v, int B, int T, int H, int KV, int hd, int window);
/* dq, dk, dv are written (=) */
OPSDEF void op_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                  const void *out, const ops_real *lse, const void *q, const void *k,
                                  const void *v, int B, int T, int H, int KV, int hd, int window);

/* ---- fixed sparse attention patterns: the same attention under a sparser causal mask ----
   Query t sees key s <= t when any of these holds (d = t - s; PB = p->block, or
   OPS_PATTERN_BLOCK = 128 when it is 0):
     local     W == 0 (dense causal: every s <= t), or d < W              window   = W
     global    s < G                                                      global   = G
     strided   S > 0 and s % S >= S - PB                                  stride   = S
     dilated   R >= 2 and d < W*R and (s / PB) % R == R - 1               dilation = R
   The zero pattern is dense causal and {W} is op_attention_forward's sliding window; the
   other fields add keys to the window, so with W == 0 (or W >= T) they change nothing.
   - local+global (Longformer's global prefix; StreamingLLM's attention sinks): the first
     G tokens are seen by every later query. G >= T is dense.
   - strided (Sparse Transformer's "fixed" pattern with whole blocks as summaries): the last
     PB keys of every S-token span are seen by every later query. PB = 1 gives the
     classic s % S == S - 1 (every S-th token); the default PB = 128 makes a summary one
     whole key tile of every kernel (sm_80: 64-key tiles, Hopper: 128-key tiles, backward:
     128-key blocks), so tiles are wholly in or out and the kernels skip the others instead
     of masking 63 keys of 64. S <= PB is dense.
   - dilated (a two-level hierarchical window): past the dense window, a second window of
     W*R positions keeps every R-th block of PB keys: about W more keys, over R times the
     span. The kept blocks sit at fixed positions (block index = R-1 mod R), not relative to
     the query, so with PB = 128 every tile is wholly in or out (but the one at the span's far
     edge), and the queries that see a key form one contiguous range (as for every pattern
     here: the backward's loop over the query tiles of a key block needs exactly that).
     R = 1 adds nothing.
   Fields combine (the mask is the union). TILES the flash kernels visit per query block of
   BM = 128 rows starting at row m, key tiles of BN (64, or 128 on Hopper), roughly:
     dense (m+BM)/BN;  local (W+BM)/BN + 1;  global: local + G/BN;  strided: local + (m/S)*PB/BN;
     dilated: local + W*(R-1)/(R*BN). ops_pattern_tiles counts them exactly; a key tile
   no query of the block sees is never loaded (forward and backward), one partly seen is
   masked element-wise. In the backward a key block holding global or summary keys loops
   over every later query tile (T/64 of them): with few heads and long T these blocks, not
   the total work, can set the backward's time. */
#ifndef OPS_PATTERN_BLOCK
#define OPS_PATTERN_BLOCK 128
#endif
#ifndef ABLATE_OPS_PATTERN_TYPEDEF
#define ABLATE_OPS_PATTERN_TYPEDEF
typedef struct { int window, global, stride, dilation, block; } OpsPattern; /* all >= 0; zero: dense causal */
#endif
OPSDEF void op_attention_pattern_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                         const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p);
OPSDEF void op_attention_pattern_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const ops_real *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p);
/* ---- dropout on the attention probabilities (training only) ----
   P' = P * M / (1 - p), M[i,j] = 0 with probability p, drawn from a counter-based hash so that no
   mask is stored (the backward draws it again) and a resumed run draws the same ones: the stream
   of one (seed, step, micro-batch forward, layer, batch row b, query head h) is
   key = ops_drop_key(...), and element (query row t, key column s) is dropped when
   ops_drop_bits(key, t, s) < thresh, thresh = ops_drop_thresh(p) = floor(p * 2^32).
   The GPU kernels (attn/dense.cu.h) hash the same way, bit for bit (tests/gpu_attn_check.c).
   The softmax statistics (lse) are those of P: the backward's D = rowsum(dO * O) holds as it is. */
#ifndef ABLATE_OPS_DROPOUT_TYPEDEF
#define ABLATE_OPS_DROPOUT_TYPEDEF
typedef struct {
    unsigned thresh;          /* 0: no dropout */
    float scale;              /* 1 / (1 - p) */
    unsigned long long seed;
    int layer;
    int step, micro;          /* CPU: the training step and this forward's number within it */
    const int *d_ctr;         /* GPU: device ints {step, micro}, read by the kernels when they run
                                 (a CUDA graph replays with the current values) */
} OpsDropout;
#endif
static inline unsigned long long ops_drop_mix64(unsigned long long z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline unsigned long long ops_drop_key(unsigned long long seed, int step, int micro, int layer, int b, int h) {
    unsigned long long z = ops_drop_mix64(seed + 0x9E3779B97F4A7C15ull * ((unsigned long long)(unsigned)layer + 1));
    z = ops_drop_mix64(z ^ ((unsigned long long)(unsigned)step << 32 | (unsigned)micro));
    return ops_drop_mix64(z ^ ((unsigned long long)(unsigned)b << 32 | (unsigned)h));
}
static inline unsigned ops_drop_fmix32(unsigned x) { /* murmur3's finalizer */
    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; return x ^ (x >> 16);
}
static inline unsigned ops_drop_bits(unsigned long long key, int t, int s) {
    unsigned x = ops_drop_fmix32((unsigned)key ^ (unsigned)t * 0x9E3779B1u);
    return ops_drop_fmix32(x ^ ((unsigned)(key >> 32) + (unsigned)s * 0x85EBCA77u));
}
static inline unsigned ops_drop_thresh(double p) { return p <= 0 ? 0u : (unsigned)(p * 4294967296.0); }
/* residual dropout (smollm.h's resid_dropout): element i of branch (0 attention, 1 FFN) of layer
   d->layer is dropped when ops_resid_drop_u(...) < p, u = splitmix64 of the key's fields in
   [0, 1) on 53 bits; kept elements are scaled by 1 / (1 - p). In place on x [n]; the same call
   on a gradient is the backward (the mask is its own transpose). CPU: d->step, d->micro; GPU:
   the device counters d->d_ctr (gpu_resid_dropout draws the same mask bit for bit) */
static inline double ops_resid_drop_u(unsigned long long seed, int step, int micro, int l, int branch, size_t i) {
    unsigned long long z = seed * 0x9E3779B97F4A7C15ull ^ ((unsigned long long)(unsigned)step << 32 | (unsigned)micro);
    z ^= ((unsigned long long)(unsigned)l << 40 | (unsigned long long)(unsigned)branch << 39) + i * 0xD1B54A32D192ED03ull;
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
OPSDEF void op_resid_dropout(Gpu *gpu, void *x, size_t n, float p, const OpsDropout *d, int branch);
/* the next training forward's masks on the GPU: d_ctr[1] += 1 on the device (a captured step
   counts too); nothing on the CPU, whose counters are the caller's */
OPSDEF void op_dropout_next(Gpu *gpu, int *d_ctr);
/* op_attention_pattern_* with dropout d on P (d NULL or d->thresh 0: exactly those ops) */
OPSDEF void op_attention_dropout_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                         const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                         const OpsDropout *d);
OPSDEF void op_attention_dropout_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const ops_real *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                          const OpsDropout *d);
/* the mask: 1 when query t sees key s */
OPSDEF int ops_pattern_visible(const OpsPattern *p, int t, int s);
/* over the rectangle of queries r0..r1 and keys n0..n1 (0 <= r0 <= r1, 0 <= n0 <= n1):
   _any: 1 when some query sees some key (exact: a kernel skips the tile when 0);
   _all: 1 only when every query sees every key (may say 0 wrongly: the tile gets masked) */
OPSDEF int ops_pattern_tile_any(const OpsPattern *p, int r0, int r1, int n0, int n1);
OPSDEF int ops_pattern_tile_all(const OpsPattern *p, int r0, int r1, int n0, int n1);
/* the queries that see some key of n0..n1 (< T) are exactly n0..ops_pattern_last_query */
OPSDEF int ops_pattern_last_query(const OpsPattern *p, int n0, int n1, int T);
/* tiles a kernel visits for length T: forward, query blocks of bm rows x key tiles of bn;
   backward, key blocks of bn x query tiles of bm. *causal: what dense causal visits */
OPSDEF void ops_pattern_tiles(const OpsPattern *p, int T, int bm, int bn, long *visited, long *causal);
OPSDEF void ops_pattern_tiles_bwd(const OpsPattern *p, int T, int bn, int bm, long *visited, long *causal);
/* 1 when the pattern's mask for length T is dense causal; 2 when it is a plain window */
OPSDEF int ops_pattern_kind(const OpsPattern *p, int T);
/* keys a query sees, averaged over t = 0..T-1 (exact; for FLOP counts) */
OPSDEF double ops_pattern_mean_keys(const OpsPattern *p, int T);

/* ---- tied LM head + softmax cross-entropy, fused: logits = h @ wte^T never
   stored whole. losses[n] = -log softmax(logits[n])[targets[n]];
   a target < 0 is ignored (loss 0, no gradient). ---- */
/* correct (may be NULL): 1 where the target's logit is the row's largest (a top-1 hit),
   0 elsewhere and on ignored rows: the accuracy of the synthetic tasks */
OPSDEF void op_xent_forward(Gpu *gpu, ops_real *losses, ops_real *correct, const void *h, const void *wte,
                            const int *targets, int N, int C, int V);
/* forward and backward at once: losses as above, dh = dloss * dL/dh (=),
   dwte += dloss * dL/dwte, where L = sum of losses. */
OPSDEF void op_xent_backward(Gpu *gpu, ops_real *losses, void *dh, ops_real *dwte, const void *h,
                             const void *wte, const int *targets, int N, int C, int V, float dloss);



/* ---- the kit of an op library built on these ops (ops.h itself, attn/gdn.h, attn/dsa.h):
   OPS_GPU(call) runs the kernel call and returns when gpu != NULL, timed by the per-op profile
   (OPS_GPU_INT: the same in ops that return 0 or -1); the CPU reference follows it. OMP_(pragma)
   parallelizes a CPU loop when built with -fopenmp, silent otherwise; every parallel loop writes
   disjoint rows, so results do not depend on the thread count. Below OPS_OMP_MIN_WORK
   multiply-adds an op runs on one thread: starting a team costs more, and with the cores busy
   elsewhere idle OpenMP threads spin and slow everything down. ---- */
#ifndef ABLATE_NO_CUDA
OPSDEF double ops_prof_begin_(Gpu *gpu);
OPSDEF void ops_prof_end_(Gpu *gpu, const char *name, double t0);
#define OPS_GPU_NAMED(call, name) do { if (gpu) { double t0_ = ops_prof_begin_(gpu); call; ops_prof_end_(gpu, name, t0_); return; } } while (0)
#define OPS_GPU_INT(call) do { if (gpu) { double t0_ = ops_prof_begin_(gpu); call; ops_prof_end_(gpu, __func__, t0_); return 0; } } while (0)
#else
#define OPS_GPU_NAMED(call, name) do { (void)gpu; } while (0)
#define OPS_GPU_INT(call) do { (void)gpu; } while (0)
#endif
#define OPS_GPU(call) OPS_GPU_NAMED(call, __func__)
#define OPS_OMP_MIN_WORK 2e6
#ifndef OMP_
#ifdef _OPENMP
#define OMP_(x) _Pragma(#x)
#else
#define OMP_(x)
#endif
#endif

#ifdef __cplusplus
}
#endif
#endif /* OPS_H */

/* ======================================================================= */
#ifdef OPS_IMPLEMENTATION
#ifndef OPS_IMPLEMENTATION_DONE
#define OPS_IMPLEMENTATION_DONE

#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <stdio.h>

#ifndef ABLATE_NO_CUDA
#include "gpu.h"
#include "attn/dense.cu.h"
#endif
#ifndef ABLATE_NO_CUDA
static int ops_profiling_(const Gpu *gpu) { return gpu && gpu->profile; }
#else
static int ops_profiling_(const Gpu *gpu) { (void)gpu; return 0; }
#endif


OPSDEF size_t ops_act_size(const Gpu *gpu) { return gpu ? 2 : sizeof(ops_real); }

#ifndef ABLATE_NO_CUDA
#include <time.h>
static double ops_now_(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
OPSDEF double ops_prof_begin_(Gpu *gpu) {
    if (!gpu->profile) return 0;
    gpu_sync(gpu);
    return ops_now_();
}
OPSDEF void ops_prof_end_(Gpu *gpu, const char *name, double t0) {
    OpsProfile *p = gpu->profile;
    if (!p) return;
    gpu_sync(gpu);
    double dt = ops_now_() - t0;
    int i = 0;
    while (i < p->n && strncmp(p->e[i].name, name, sizeof p->e[i].name - 1)) i++;
    if (i == p->n) {
        if (p->n == (int)(sizeof p->e / sizeof p->e[0])) return;
        snprintf(p->e[p->n++].name, sizeof p->e[0].name, "%s", name);
    }
    p->e[i].seconds += dt;
    p->e[i].calls++;
}
OPSDEF void ops_profile_start(Gpu *gpu, OpsProfile *p) { if (gpu) gpu->profile = p; }
OPSDEF void ops_profile_stop(Gpu *gpu) { if (gpu) gpu->profile = NULL; }
#else
OPSDEF void ops_profile_start(Gpu *gpu, OpsProfile *p) { (void)gpu; (void)p; }
OPSDEF void ops_profile_stop(Gpu *gpu) { (void)gpu; }
#endif

OPSDEF void ops_profile_print(const OpsProfile *p, double steps) {
    double total = 0;
    for (int i = 0; i < p->n; i++) total += p->e[i].seconds;
    printf("%-40s %10s %8s %7s\n", "op (GPU time per step; matmul: in x out)", "ms", "calls", "share");
    for (int i = 0; i < p->n; i++)
        printf("%-40s %10.3f %8.0f %6.1f%%\n", p->e[i].name, 1e3 * p->e[i].seconds / steps,
               p->e[i].calls / steps, 100 * p->e[i].seconds / (total > 0 ? total : 1));
    printf("%-40s %10.3f\n", "total", 1e3 * total / steps);
}

OPSDEF void *ops_alloc(Gpu *gpu, size_t bytes) {
#ifndef ABLATE_NO_CUDA
    if (gpu) { void *p = gpu_alloc(gpu, bytes); gpu_memset0(gpu, p, bytes); return p; }
#endif
    (void)gpu;
    return calloc(1, bytes ? bytes : 1); /* NULL: the caller names what it was for */
}

OPSDEF void ops_free(Gpu *gpu, void *p) {
    OPS_GPU(gpu_free(gpu, p));
    free(p);
}

OPSDEF void ops_zero(Gpu *gpu, void *p, size_t bytes) {
    OPS_GPU(gpu_memset0(gpu, p, bytes));
    memset(p, 0, bytes);
}

OPSDEF void ops_to_host(Gpu *gpu, void *dst, const void *src, size_t bytes) {
    OPS_GPU(gpu_download(gpu, dst, src, bytes));
    memcpy(dst, src, bytes);
}

OPSDEF void ops_to_device(Gpu *gpu, void *dst, const void *src, size_t bytes) {
    OPS_GPU(gpu_upload(gpu, dst, src, bytes));
    memcpy(dst, src, bytes);
}

OPSDEF void ops_copy(Gpu *gpu, void *dst, const void *src, size_t bytes) {
    OPS_GPU(gpu_copy(gpu, dst, src, bytes));
    memmove(dst, src, bytes);
}

OPSDEF void ops_weights_to_compute(Gpu *gpu, void *dst, const ops_real *src, size_t n) {
    OPS_GPU(gpu_f32_to_bf16(gpu, dst, src, n));
    if (dst != (const void *)src) memcpy(dst, src, n * sizeof(ops_real));
}

/* CPU views of the untyped activation pointers */
#define R(p) ((ops_real *)(p))
#define CR(p) ((const ops_real *)(p))

OPSDEF void op_embed_forward(Gpu *gpu, void *out, const int *tok, const void *wte, int N, int C) {
    OPS_GPU(gpu_embed_forward(gpu, out, tok, wte, N, C));
    for (int n = 0; n < N; n++)
        memcpy(R(out) + (size_t)n * C, CR(wte) + (size_t)tok[n] * C, sizeof(ops_real) * C);
}

OPSDEF void op_embed_backward(Gpu *gpu, ops_real *dwte, const void *dout, const int *tok, int N, int C) {
    OPS_GPU(gpu_embed_backward(gpu, dwte, dout, tok, N, C));
    for (int n = 0; n < N; n++) {
        ops_real *d = dwte + (size_t)tok[n] * C;
        const ops_real *g = CR(dout) + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}

OPSDEF void op_matmul_forward(Gpu *gpu, void *out, const void *in, const void *w, int N, int C, int OC) {
    char pname_[48] = "";
    if (ops_profiling_(gpu)) snprintf(pname_, sizeof pname_, "op_matmul_forward %dx%d", C, OC);
    OPS_GPU_NAMED(gpu_matmul_forward(gpu, out, in, w, N, C, OC), pname_);
    /* rows in parallel; the inner dot product is contiguous in both operands */
    OMP_(omp parallel for if ((double)N * OC * C > OPS_OMP_MIN_WORK))
    for (int n = 0; n < N; n++) {
        const ops_real *x = CR(in) + (size_t)n * C;
        ops_real *y = R(out) + (size_t)n * OC;
        for (int o = 0; o < OC; o++) {
            const ops_real *wr = CR(w) + (size_t)o * C;
            ops_real acc = 0;
            for (int c = 0; c < C; c++) acc += x[c] * wr[c];
            y[o] = acc;
        }
    }
}

OPSDEF void op_matmul_backward(Gpu *gpu, void *din, ops_real *dw, const void *dout, const void *in,
                               const void *w, int N, int C, int OC, int accumulate_din) {
    char pname_[48] = "";
    if (ops_profiling_(gpu))
        snprintf(pname_, sizeof pname_, "op_matmul_backward %dx%d%s%s", C, OC, din ? " din" : "",
                 dw ? " dw" : "");
    OPS_GPU_NAMED(gpu_matmul_backward(gpu, din, dw, dout, in, w, N, C, OC, accumulate_din), pname_);
    if (din) {
        OMP_(omp parallel for if ((double)N * OC * C > OPS_OMP_MIN_WORK))
        for (int n = 0; n < N; n++) {
            ops_real *dx = R(din) + (size_t)n * C;
            const ops_real *g = CR(dout) + (size_t)n * OC;
            if (!accumulate_din) memset(dx, 0, sizeof(ops_real) * C);
            for (int o = 0; o < OC; o++) {
                const ops_real *wr = CR(w) + (size_t)o * C;
                ops_real go = g[o];
                for (int c = 0; c < C; c++) dx[c] += go * wr[c];
            }
        }
    }
    if (!dw) return;
    OMP_(omp parallel for if ((double)N * OC * C > OPS_OMP_MIN_WORK))
    for (int o = 0; o < OC; o++) {
        ops_real *dwr = dw + (size_t)o * C;
        for (int n = 0; n < N; n++) {
            ops_real go = CR(dout)[(size_t)n * OC + o];
            const ops_real *x = CR(in) + (size_t)n * C;
            for (int c = 0; c < C; c++) dwr[c] += go * x[c];
        }
    }
}

OPSDEF void op_rmsnorm_forward(Gpu *gpu, void *out, ops_real *rstd, const void *in, const void *w,
                               int N, int C, float eps) {
    OPS_GPU(gpu_rmsnorm_forward(gpu, out, rstd, in, w, N, C, eps));
    for (int n = 0; n < N; n++) {
        const ops_real *x = CR(in) + (size_t)n * C;
        ops_real *y = R(out) + (size_t)n * C;
        ops_real ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        ops_real r = 1 / sqrt(ss / C + eps);
        rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * CR(w)[c];
    }
}

OPSDEF void op_add_rmsnorm_forward(Gpu *gpu, void *sum, void *out, ops_real *rstd, const void *a, const void *b,
                                   const void *w, int N, int C, float eps) {
    OPS_GPU(gpu_add_rmsnorm_forward(gpu, sum, out, rstd, a, b, w, N, C, eps));
    op_add(NULL, sum, a, b, (size_t)N * C);
    op_rmsnorm_forward(NULL, out, rstd, sum, w, N, C, eps);
}

/* y = x r w with r = (mean(x^2)+eps)^-1/2:
   dx = r (w dy) - x r^3 mean(x (w dy)),  dw += dy x r */
OPSDEF void op_rmsnorm_backward(Gpu *gpu, void *din, ops_real *dw, const void *dout, const void *in,
                                const void *w, const ops_real *rstd, int N, int C, int accumulate_din) {
    OPS_GPU(gpu_rmsnorm_backward(gpu, din, dw, dout, in, w, rstd, N, C, accumulate_din));
    for (int n = 0; n < N; n++) {
        const ops_real *x = CR(in) + (size_t)n * C, *dy = CR(dout) + (size_t)n * C;
        ops_real *dx = R(din) + (size_t)n * C, r = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += x[c] * CR(w)[c] * dy[c];
        dot /= C;
        for (int c = 0; c < C; c++) {
            ops_real g = r * CR(w)[c] * dy[c] - x[c] * r * r * r * dot;
            dx[c] = accumulate_din ? dx[c] + g : g;
            dw[c] += dy[c] * x[c] * r;
        }
    }
}

/* rotate pairs (i, i+hd/2) of every head (heads ld apart) by +angle (sign=1) or -angle (sign=-1) */
/* rows row_ld apart, nh heads ld apart in each */
static void rope_rotate_rows_cpu(ops_real *x, size_t row_ld, int N, int T, int nh, int ld, int hd, float theta,
                                 int sign) {
    int half = hd / 2;
    for (int n = 0; n < N; n++) {
        int t = n % T;
        for (int i = 0; i < half; i++) {
            double ang = t * pow((double)theta, -2.0 * i / hd);
            ops_real c = cos(ang), s = sign * sin(ang);
            for (int h = 0; h < nh; h++) {
                ops_real *p = x + (size_t)n * row_ld + (size_t)h * ld;
                ops_real a = p[i], b = p[i + half];
                p[i] = a * c - b * s;
                p[i + half] = b * c + a * s;
            }
        }
    }
}

static void rope_rotate_cpu(ops_real *x, int N, int T, int nh, int ld, int hd, float theta, int sign) {
    rope_rotate_rows_cpu(x, (size_t)nh * ld, N, T, nh, ld, hd, theta, sign);
}

OPSDEF void op_rope_forward(Gpu *gpu, void *x, int N, int T, int nh, int hd, float theta) {
    OPS_GPU(gpu_rope_forward(gpu, x, N, T, nh, hd, theta));
    rope_rotate_cpu(R(x), N, T, nh, hd, hd, theta, 1);
}

OPSDEF void op_rope_backward(Gpu *gpu, void *dx, int N, int T, int nh, int hd, float theta) {
    OPS_GPU(gpu_rope_backward(gpu, dx, N, T, nh, hd, theta));
    rope_rotate_cpu(R(dx), N, T, nh, hd, hd, theta, -1);
}

OPSDEF void op_rope_part_forward(Gpu *gpu, void *x, int N, int T, int nh, int ld, int rd, float theta) {
    OPS_GPU(gpu_rope_part(gpu, x, N, T, nh, ld, rd, theta, 1.0f));
    rope_rotate_cpu(R(x), N, T, nh, ld, rd, theta, 1);
}

OPSDEF void op_rope_part_backward(Gpu *gpu, void *dx, int N, int T, int nh, int ld, int rd, float theta) {
    OPS_GPU(gpu_rope_part(gpu, dx, N, T, nh, ld, rd, theta, -1.0f));
    rope_rotate_cpu(R(dx), N, T, nh, ld, rd, theta, -1);
}

/* heads of the fused rows <-> the separate buffers (dir 0: fused -> separate) */
static void qkv_copy_cpu(ops_real *q, ops_real *k, ops_real *v, ops_real *qkv, int N, int H, int KV, int hd, int dir) {
    size_t P = (size_t)(H + 2 * KV) * hd;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H + 2 * KV; h++) {
            ops_real *sep = h < H ? q + ((size_t)n * H + h) * hd
                        : h < H + KV ? k + ((size_t)n * KV + (h - H)) * hd : v + ((size_t)n * KV + (h - H - KV)) * hd;
            ops_real *fused = qkv + n * P + (size_t)h * hd;
            memcpy(dir ? fused : sep, dir ? sep : fused, sizeof(ops_real) * hd);
        }
}

OPSDEF void op_qkv_split(Gpu *gpu, void *q, void *k, void *v, const void *qkv, int N, int T, int H, int KV,
                         int hd, float theta) {
    OPS_GPU(gpu_qkv_split(gpu, q, k, v, (void *)qkv, N, T, H, KV, hd, theta, 0));
    qkv_copy_cpu(R(q), R(k), R(v), (ops_real *)CR(qkv), N, H, KV, hd, 0);
    if (theta > 0) {
        rope_rotate_cpu(R(q), N, T, H, hd, hd, theta, 1);
        rope_rotate_cpu(R(k), N, T, KV, hd, hd, theta, 1);
    }
}

OPSDEF void op_qkv_merge(Gpu *gpu, void *dqkv, const void *dq, const void *dk, const void *dv, int N, int T,
                         int H, int KV, int hd, float theta) {
    OPS_GPU(gpu_qkv_split(gpu, (void *)dq, (void *)dk, (void *)dv, dqkv, N, T, H, KV, hd, theta, 1));
    qkv_copy_cpu((ops_real *)CR(dq), (ops_real *)CR(dk), (ops_real *)CR(dv), R(dqkv), N, H, KV, hd, 1);
    if (theta > 0) /* rotate back in the fused rows: the q heads and the k heads after them */
        rope_rotate_rows_cpu(R(dqkv), (size_t)(H + 2 * KV) * hd, N, T, H + KV, hd, hd, theta, -1);
}

OPSDEF void *ops_qkv_scratch(Gpu *gpu, size_t bytes) {
#ifndef ABLATE_NO_CUDA
    if (gpu) return gpu_scratch(gpu, &gpu->qkv_scratch, &gpu->qkv_scratch_bytes, bytes);
#endif
    (void)gpu; (void)bytes;
    fprintf(stderr, "ops_qkv_scratch: the fused q|k|v buffer is a GPU buffer (no Gpu given)\n");
    abort();
}

OPSDEF void op_copy_cols(Gpu *gpu, void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t rows,
                         int cols, double scale, int accumulate) {
    OPS_GPU(gpu_copy_cols(gpu, dst, dst_ld, src, src_ld, 0, 1, rows, cols, (float)scale, accumulate));
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            ops_real v = (ops_real)scale * CR(src)[i * src_ld + j], *d = R(dst) + i * dst_ld + j;
            *d = accumulate ? *d + v : v;
        }
}

OPSDEF void op_sum_cols(Gpu *gpu, void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t group_ld,
                        int groups, size_t rows, int cols) {
    OPS_GPU(gpu_copy_cols(gpu, dst, dst_ld, src, src_ld, group_ld, groups, rows, cols, 1.0f, 0));
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            ops_real acc = 0;
            for (int g = 0; g < groups; g++) acc += CR(src)[i * src_ld + (size_t)g * group_ld + j];
            R(dst)[i * dst_ld + j] = acc;
        }
}

/* ---- MGA's O(T) decomposition ---- */
OPSDEF void op_mga_unit_forward(Gpu *gpu, void *u, ops_real *nrm, const void *g, size_t rows, int hd) {
    OPS_GPU(gpu_mga_unit_forward(gpu, u, nrm, g, rows, hd));
    for (size_t r = 0; r < rows; r++) {
        const ops_real *x = CR(g) + r * hd;
        ops_real ss = 0;
        for (int e = 0; e < hd; e++) ss += x[e] * x[e];
        nrm[r] = sqrt(ss);
        for (int e = 0; e < hd; e++) R(u)[r * hd + e] = nrm[r] > 0 ? x[e] / nrm[r] : 0;
    }
}

OPSDEF void op_time_cumsum(Gpu *gpu, ops_real *out, const void *in, int in_is_act, int B, int T, int C, int reverse) {
    OPS_GPU(gpu_time_cumsum(gpu, out, in, in_is_act, B, T, C, reverse));
    (void)in_is_act; /* on the CPU activations are ops_real too */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            ops_real acc = 0;
            for (int k = 0; k < T; k++) {
                size_t i = ((size_t)b * T + (reverse ? T - 1 - k : k)) * C + c;
                acc += CR(in)[i];
                out[i] = acc;
            }
        }
}

/* C_i - C_{i-W}: the sum of u over row i's keys (all of 0..i without a window) */
static ops_real mga_window_sum(const ops_real *C, size_t row, size_t back, int has_back, int e, size_t ld) {
    return C[row * ld + e] - (has_back ? C[(row - back) * ld + e] : 0);
}

OPSDEF void op_mga_den_forward(Gpu *gpu, ops_real *den, ops_real *rinv, const void *u, const ops_real *C, int B, int T,
                               int H, int hd, int window, int faithful) {
    OPS_GPU(gpu_mga_den_forward(gpu, den, rinv, u, C, B, T, H, hd, window, faithful));
    size_t ld = (size_t)H * hd;
    for (size_t n = 0; n < (size_t)B * T; n++) {
        int t = (int)(n % T), back = window > 0 && t - window >= 0;
        for (int h = 0; h < H; h++) {
            ops_real dot = 0;
            for (int e = 0; e < hd; e++)
                dot += CR(u)[n * ld + (size_t)h * hd + e] * mga_window_sum(C + (size_t)h * hd, n, window, back, e, ld);
            den[n * H + h] = 1 + dot / (2.0 * (faithful ? T : t + 1));
            rinv[n * H + h] = 1 / den[n * H + h];
        }
    }
}

OPSDEF void op_mga_query_forward(Gpu *gpu, void *q, ops_real *f, const void *u, const ops_real *den, const ops_real *S,
                                 int B, int T, int H, int hd, int faithful) {
    OPS_GPU(gpu_mga_query_forward(gpu, q, f, u, den, S, B, T, H, hd, faithful));
    ops_real sq = sqrt((ops_real)hd);
    for (size_t n = 0; n < (size_t)B * T; n++)
        for (int h = 0; h < H; h++) {
            size_t i = n * H + h, last = ((n / T) * T + T - 1) * H + h;
            f[i] = 1 / (den[i] * S[faithful ? last : i]);
            for (int e = 0; e < hd; e++) R(q)[i * hd + e] = f[i] / 2 * sq * CR(u)[i * hd + e];
        }
}

OPSDEF void op_mga_query_backward(Gpu *gpu, ops_real *du, ops_real *dS, ops_real *dden, const void *dq, const void *dk,
                                  const void *u, const ops_real *f, const ops_real *den, const ops_real *S, int B, int T,
                                  int H, int hd, int faithful) {
    OPS_GPU(gpu_mga_query_backward(gpu, du, dS, dden, dq, dk, u, f, den, S, B, T, H, hd, faithful));
    ops_real sq = sqrt((ops_real)hd);
    for (size_t n = 0; n < (size_t)B * T; n++)
        for (int h = 0; h < H; h++) {
            size_t i = n * H + h, last = ((n / T) * T + T - 1) * H + h;
            ops_real df = 0;
            for (int e = 0; e < hd; e++) {
                size_t k = i * hd + e;
                df += CR(dq)[k] * CR(u)[k];
                du[k] = f[i] / 2 * sq * CR(dq)[k] + CR(dk)[k];
            }
            df *= sq / 2;
            dS[i] = -df * f[i] / S[faithful ? last : i];
            dden[i] = -df * f[i] / den[i];
        }
}

OPSDEF void op_mga_den_backward(Gpu *gpu, ops_real *du, ops_real *ru, const void *u, const ops_real *C, const ops_real *den,
                                const ops_real *dden, const ops_real *Sd, int B, int T, int H, int hd, int window,
                                int faithful) {
    OPS_GPU(gpu_mga_den_backward(gpu, du, ru, u, C, den, dden, Sd, B, T, H, hd, window, faithful));
    size_t ld = (size_t)H * hd;
    for (size_t n = 0; n < (size_t)B * T; n++) {
        int t = (int)(n % T), back = window > 0 && t - window >= 0;
        for (int h = 0; h < H; h++) {
            size_t i = n * H + h, first = (n / T) * T * H + h;
            ops_real r = (dden[i] - Sd[faithful ? first : i] / (den[i] * den[i])) / (2.0 * (faithful ? T : t + 1));
            for (int e = 0; e < hd; e++) {
                size_t k = n * ld + (size_t)h * hd + e;
                du[k] += r * mga_window_sum(C + (size_t)h * hd, n, window, back, e, ld);
                ru[k] = r * CR(u)[k];
            }
        }
    }
}

OPSDEF void op_mga_unit_backward(Gpu *gpu, void *dg, const ops_real *du, const ops_real *Rev, const void *u,
                                 const ops_real *nrm, int B, int T, int H, int hd, int window) {
    OPS_GPU(gpu_mga_unit_backward(gpu, dg, du, Rev, u, nrm, B, T, H, hd, window));
    size_t ld = (size_t)H * hd;
    for (size_t n = 0; n < (size_t)B * T; n++) {
        int t = (int)(n % T), ahead = window > 0 && t + window < T;
        for (int h = 0; h < H; h++) {
            size_t o = n * ld + (size_t)h * hd;
            ops_real dot = 0;
            for (int e = 0; e < hd; e++) {
                ops_real d = du[o + e] + Rev[o + e] - (ahead ? Rev[o + (size_t)window * ld + e] : 0);
                R(dg)[o + e] = d; /* staged: the projection below needs every element */
                dot += d * CR(u)[o + e];
            }
            ops_real nr = nrm[n * H + h];
            for (int e = 0; e < hd; e++)
                R(dg)[o + e] = nr > 0 ? (CR(dg)[o + e] - CR(u)[o + e] * dot) / nr : 0;
        }
    }
}

OPSDEF void op_dwconv3_silu_forward(Gpu *gpu, void *conv, void *u, const void *x, const void *w, int B, int T, int C,
                                    int shift) {
    OPS_GPU(gpu_dwconv3_silu_forward(gpu, conv, u, x, w, B, T, C, shift));
    for (size_t n = 0; n < (size_t)B * T; n++) {
        int t = (int)(n % T);
        for (int c = 0; c < C; c++) {
            ops_real acc = 0;
            for (int k = 0; k < 3; k++)
                if (t + k - shift >= 0 && t + k - shift < T) acc += CR(w)[c * 3 + k] * CR(x)[(n + k - shift) * C + c];
            R(conv)[n * C + c] = acc;
            if (u) R(u)[n * C + c] = acc / (1 + exp(-acc));
        }
    }
}

OPSDEF void op_dwconv3_silu_backward(Gpu *gpu, void *dx, ops_real *dw, const void *du, const void *conv, const void *x,
                                     const void *w, int B, int T, int C, int shift, int accumulate) {
    OPS_GPU(gpu_dwconv3_silu_backward(gpu, dx, dw, du, conv, x, w, B, T, C, shift, accumulate));
    size_t N = (size_t)B * T;
    if (!accumulate) memset(dx, 0, N * C * sizeof(ops_real));
    for (size_t n = 0; n < N; n++) {
        int t = (int)(n % T);
        for (int c = 0; c < C; c++) {
            ops_real z = CR(conv)[n * C + c], s = 1 / (1 + exp(-z)), dz = CR(du)[n * C + c] * s * (1 + z * (1 - s));
            for (int k = 0; k < 3; k++)
                if (t + k - shift >= 0 && t + k - shift < T) {
                    size_t src = (n + k - shift) * C + c;
                    dw[c * 3 + k] += dz * CR(x)[src];
                    R(dx)[src] += dz * CR(w)[c * 3 + k];
                }
        }
    }
}

OPSDEF void op_sigmoid_gate_forward(Gpu *gpu, void *out, const void *a, const void *gate, size_t n) {
    OPS_GPU(gpu_sigmoid_gate_forward(gpu, out, a, gate, n));
    for (size_t i = 0; i < n; i++) R(out)[i] = CR(a)[i] / (1 + exp(-CR(gate)[i]));
}

OPSDEF void op_sigmoid_gate_backward(Gpu *gpu, void *da, void *dgate, const void *dout, const void *a, const void *gate,
                                     size_t n) {
    OPS_GPU(gpu_sigmoid_gate_backward(gpu, da, dgate, dout, a, gate, n));
    for (size_t i = 0; i < n; i++) {
        ops_real s = 1 / (1 + exp(-CR(gate)[i])), g = CR(dout)[i];
        R(dgate)[i] = g * CR(a)[i] * s * (1 - s);
        R(da)[i] = g * s;
    }
}

OPSDEF void op_swiglu_forward(Gpu *gpu, void *out, const void *gu, int N, int F) {
    OPS_GPU(gpu_swiglu_forward(gpu, out, gu, N, F));
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            ops_real g = CR(gu)[(size_t)n * 2 * F + f], u = CR(gu)[(size_t)n * 2 * F + F + f];
            R(out)[(size_t)n * F + f] = g * (1 / (1 + exp(-g))) * u; /* as the backward recomputes it */
        }
}

/* silu(g) = g s(g); silu'(g) = s(g) (1 + g (1 - s(g))) */
OPSDEF void op_swiglu_backward(Gpu *gpu, void *dgu, void *act, const void *dout, const void *gu, int N, int F) {
    OPS_GPU(gpu_swiglu_backward(gpu, dgu, act, dout, gu, N, F));
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            size_t i = (size_t)n * 2 * F + f;
            ops_real g = CR(gu)[i], u = CR(gu)[i + F], s = 1 / (1 + exp(-g)), d = CR(dout)[(size_t)n * F + f];
            R(dgu)[i] = d * u * s * (1 + g * (1 - s));
            R(dgu)[i + F] = d * g * s;
            if (act) R(act)[(size_t)n * F + f] = g * s * u;
        }
}

OPSDEF void op_add(Gpu *gpu, void *out, const void *a, const void *b, size_t n) {
    OPS_GPU(gpu_add(gpu, out, a, b, n));
    for (size_t i = 0; i < n; i++) R(out)[i] = CR(a)[i] + CR(b)[i];
}

/* ---- attention patterns (the masks documented with OpsPattern) ---- */
static long attn_pb_(const OpsPattern *p) { return p->block > 0 ? p->block : OPS_PATTERN_BLOCK; }
static long attn_lmin_(long a, long b) { return a < b ? a : b; }
static long attn_lmax_(long a, long b) { return a > b ? a : b; }
/* keys in runs of L at the end of every period P: s % P >= P - L (every key when P <= L).
   The first such key >= x, and the last one <= x (< 0: none); x >= 0 */
static long attn_run_first_(long x, long P, long L) { long r = x % P; return r >= P - L ? x : x - r + P - L; }
static long attn_run_last_(long x, long P, long L) { long r = x % P; return r >= P - L ? x : x - r - 1; }

OPSDEF int ops_pattern_visible(const OpsPattern *p, int t, int s) {
    long d = (long)t - s, W = p->window, pb = attn_pb_(p);
    if (s < 0 || d < 0) return 0;
    if (W <= 0 || d < W) return 1;
    if (s < p->global) return 1;
    if (p->stride > 0 && s % p->stride >= p->stride - pb) return 1;
    if (p->dilation >= 2 && d < W * p->dilation && (s / pb) % p->dilation == p->dilation - 1) return 1;
    return 0;
}

OPSDEF int ops_pattern_tile_any(const OpsPattern *p, int r0, int r1, int n0, int n1) {
    long W = p->window, pb = attn_pb_(p), e = attn_lmin_(n1, r1);
    if (n0 > r1) return 0;                              /* wholly above the diagonal */
    if (W <= 0 || (long)r0 - n1 < W) return 1;          /* differences r0-n1..r1-n0 meet 0..W-1 */
    if (n0 < p->global) return 1;                       /* key n0 is seen by query r1 */
    if (p->stride > 0 && attn_run_first_(n0, p->stride, pb) <= e) return 1;
    if (p->dilation >= 2) {                             /* a kept key s > r0 - W*R, s <= e */
        long lo = attn_lmax_(n0, r0 - W * p->dilation + 1);
        if (lo <= e && attn_run_first_(lo, p->dilation * pb, pb) <= e) return 1;
    }
    return 0;
}

OPSDEF int ops_pattern_tile_all(const OpsPattern *p, int r0, int r1, int n0, int n1) {
    long W = p->window, pb = attn_pb_(p);
    if (n1 > r0) return 0;                              /* crosses the diagonal */
    if (W <= 0 || (long)r1 - n0 < W) return 1;
    if (n1 < p->global) return 1;
    /* every key a summary key: the first key >= n0 outside the runs lies past n1 */
    if (p->stride > 0) {
        long P = p->stride, r = n0 % P;
        if (P <= pb || (r >= P - pb && n0 - r + P > n1)) return 1;
    }
    if (p->dilation >= 2 && (long)r1 - n0 < W * p->dilation) {
        long P = p->dilation * pb, r = n0 % P;
        if (r >= P - pb && n0 - r + P > n1) return 1;
    }
    return 0;
}

OPSDEF int ops_pattern_last_query(const OpsPattern *p, int n0, int n1, int T) {
    long W = p->window, pb = attn_pb_(p), e;
    if (W <= 0 || n0 < p->global) return T - 1;
    if (p->stride > 0 && attn_run_first_(n0, p->stride, pb) <= n1) return T - 1;
    e = (long)n1 + W - 1;
    if (p->dilation >= 2) {
        long s = attn_run_last_(n1, p->dilation * pb, pb);
        if (s >= n0) e = attn_lmax_(e, s + W * p->dilation - 1);
    }
    return (int)attn_lmin_(e, T - 1);
}

OPSDEF void ops_pattern_tiles(const OpsPattern *p, int T, int bm, int bn, long *visited, long *causal) {
    *visited = *causal = 0;
    for (int m0 = 0; m0 < T; m0 += bm) {
        int r1 = (int)attn_lmin_(T - 1, m0 + bm - 1);
        for (int n0 = 0; n0 <= r1; n0 += bn) {
            ++*causal;
            *visited += ops_pattern_tile_any(p, m0, r1, n0, (int)attn_lmin_(T - 1, n0 + bn - 1));
        }
    }
}

OPSDEF void ops_pattern_tiles_bwd(const OpsPattern *p, int T, int bn, int bm, long *visited, long *causal) {
    *visited = *causal = 0;
    for (int n0 = 0; n0 < T; n0 += bn) {
        int last = ops_pattern_last_query(p, n0, (int)attn_lmin_(T - 1, n0 + bn - 1), T);
        *causal += (T - 1) / bm - n0 / bm + 1;
        *visited += last / bm - n0 / bm + 1;
    }
}

OPSDEF double ops_pattern_mean_keys(const OpsPattern *p, int T) {
    long pb = attn_pb_(p);
    double total = 0;
    for (int t = 0; t < T; t++) /* by blocks of pb keys: whole ones at once, the few partial ones by key */
        for (long n0 = 0; n0 <= t; n0 += pb) {
            int n1 = (int)attn_lmin_(n0 + pb - 1, t);
            if (ops_pattern_tile_all(p, t, t, (int)n0, n1)) total += n1 - n0 + 1;
            else if (ops_pattern_tile_any(p, t, t, (int)n0, n1))
                for (int s = (int)n0; s <= n1; s++) total += ops_pattern_visible(p, t, s);
        }
    return T > 0 ? total / T : 0;
}

OPSDEF int ops_pattern_kind(const OpsPattern *p, int T) {
    long W = p->window, pb = attn_pb_(p);
    if (W <= 0 || W >= T || p->global >= T || (p->stride > 0 && p->stride <= pb)) return 1;
    int stride = p->stride > 0 && p->stride - pb < T;         /* a summary key exists below T */
    int dil = p->dilation >= 2 && (p->dilation - 1) * pb < T; /* a kept block starts below T */
    return p->global > 0 || stride || dil ? 0 : 2;
}

/* the keys query t sees, in increasing order; returns their number. plain: the mask is
   the window w (0: dense), keys t-w+1..t, as op_attention_forward has always looped */
static int attn_keys_(const OpsPattern *p, int plain, int w, int t, int *idx) {
    int n = 0;
    if (plain) {
        for (int s = (w > 0 && t - w + 1 > 0) ? t - w + 1 : 0; s <= t; s++) idx[n++] = s;
    } else {
        for (int s = 0; s <= t; s++)
            if (ops_pattern_visible(p, t, s)) idx[n++] = s;
    }
    return n;
}

/* The reference keeps one row of scores at a time: O(T) memory per query,
   the same online-softmax bookkeeping (max, log-sum-exp) the flash kernel keeps. */
static void attention_forward_cpu_(void *out, ops_real *lse, const void *q, const void *k, const void *v,
                                   int B, int T, int H, int KV, int hd, const OpsPattern *pat, const OpsDropout *dr) {
    int group = H / KV, kind = ops_pattern_kind(pat, T), plain = kind != 0, w = kind == 2 ? pat->window : 0;
    ops_real scale = 1 / sqrt((ops_real)hd);
    OMP_(omp parallel if ((double)B * H * T * T * hd > OPS_OMP_MIN_WORK))
    {
        ops_real *p = malloc(sizeof(ops_real) * T);
        int *idx = malloc(sizeof(int) * T);
        OMP_(omp for collapse(2))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                int kh = h / group;
                unsigned long long dkey = dr ? ops_drop_key(dr->seed, dr->step, dr->micro, dr->layer, b, h) : 0;
                for (int t = 0; t < T; t++) {
                    const ops_real *qt = CR(q) + (((size_t)b * T + t) * H + h) * hd;
                    ops_real *ot = R(out) + (((size_t)b * T + t) * H + h) * hd;
                    int n = attn_keys_(pat, plain, w, t, idx);
                    ops_real mx = -INFINITY, sum = 0;
                    for (int j = 0; j < n; j++) {
                        const ops_real *ks = CR(k) + (((size_t)b * T + idx[j]) * KV + kh) * hd;
                        ops_real d = 0;
                        for (int i = 0; i < hd; i++) d += qt[i] * ks[i];
                        p[j] = d * scale;
                        if (p[j] > mx) mx = p[j];
                    }
                    for (int j = 0; j < n; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                    for (int i = 0; i < hd; i++) ot[i] = 0;
                    for (int j = 0; j < n; j++) {
                        const ops_real *vs = CR(v) + (((size_t)b * T + idx[j]) * KV + kh) * hd;
                        ops_real w = p[j] / sum;
                        if (dr) w = ops_drop_bits(dkey, t, idx[j]) < dr->thresh ? 0 : w * (ops_real)dr->scale;
                        for (int i = 0; i < hd; i++) ot[i] += w * vs[i];
                    }
                    lse[((size_t)b * H + h) * T + t] = mx + log(sum);
                }
            }
        free(p);
        free(idx);
    }
}

/* P = exp(S - lse); dV = P^T dO; dP = dO V^T; dS = P (dP - D), D = rowsum(dO * O);
   dQ = scale dS K; dK = scale dS^T Q. Loops run per (b, kv head) so that the
   heads of a GQA group accumulate into their shared dK, dV without races. */
static void attention_backward_cpu_(void *dq, void *dk, void *dv, const void *dout, const void *out,
                                    const ops_real *lse, const void *q, const void *k, const void *v,
                                    int B, int T, int H, int KV, int hd, const OpsPattern *pat,
                                    const OpsDropout *dr) {
    int group = H / KV, kind = ops_pattern_kind(pat, T), plain = kind != 0, w = kind == 2 ? pat->window : 0;
    ops_real scale = 1 / sqrt((ops_real)hd);
    memset(dq, 0, sizeof(ops_real) * (size_t)B * T * H * hd);
    memset(dk, 0, sizeof(ops_real) * (size_t)B * T * KV * hd);
    memset(dv, 0, sizeof(ops_real) * (size_t)B * T * KV * hd);
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * T * hd > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KV; kh++) {
            int *idx = malloc(sizeof(int) * T);
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                unsigned long long dkey = dr ? ops_drop_key(dr->seed, dr->step, dr->micro, dr->layer, b, h) : 0;
                for (int t = 0; t < T; t++) {
                    size_t qi = (((size_t)b * T + t) * H + h) * hd;
                    const ops_real *qt = CR(q) + qi, *dot = CR(dout) + qi, *ot = CR(out) + qi;
                    ops_real *dqt = R(dq) + qi;
                    ops_real L = lse[((size_t)b * H + h) * T + t], D = 0;
                    for (int i = 0; i < hd; i++) D += dot[i] * ot[i];
                    int n = attn_keys_(pat, plain, w, t, idx);
                    for (int j = 0; j < n; j++) {
                        size_t ki = (((size_t)b * T + idx[j]) * KV + kh) * hd;
                        const ops_real *ks = CR(k) + ki, *vs = CR(v) + ki;
                        ops_real sc = 0, dp = 0;
                        for (int i = 0; i < hd; i++) { sc += qt[i] * ks[i]; dp += dot[i] * vs[i]; }
                        ops_real p = exp(sc * scale - L), pd = p; /* pd: the P that met V (dropped) */
                        if (dr) { /* dP' = dO V^T reaches P through the same mask */
                            ops_real m = ops_drop_bits(dkey, t, idx[j]) < dr->thresh ? 0 : (ops_real)dr->scale;
                            pd = p * m;
                            dp *= m;
                        }
                        ops_real ds = p * (dp - D) * scale;
                        ops_real *dks = R(dk) + ki, *dvs = R(dv) + ki;
                        for (int i = 0; i < hd; i++) {
                            dvs[i] += pd * dot[i];
                            dqt[i] += ds * ks[i];
                            dks[i] += ds * qt[i];
                        }
                    }
                }
            }
            free(idx);
        }
}

OPSDEF void op_attention_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                 const void *v, int B, int T, int H, int KV, int hd, int window) {
    OPS_GPU(gpu_attention_forward(gpu, out, lse, q, k, v, B, T, H, KV, hd, window));
    OpsPattern p = {window, 0, 0, 0, 0};
    attention_forward_cpu_(out, lse, q, k, v, B, T, H, KV, hd, &p, NULL);
}

OPSDEF void op_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                  const void *out, const ops_real *lse, const void *q, const void *k,
                                  const void *v, int B, int T, int H, int KV, int hd, int window) {
    OPS_GPU(gpu_attention_backward(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, window));
    OpsPattern p = {window, 0, 0, 0, 0};
    attention_backward_cpu_(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, &p, NULL);
}

OPSDEF void op_attention_pattern_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                         const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p) {
    OPS_GPU(gpu_attention_pattern_forward(gpu, out, lse, q, k, v, B, T, H, KV, hd, p));
    attention_forward_cpu_(out, lse, q, k, v, B, T, H, KV, hd, p, NULL);
}

OPSDEF void op_attention_pattern_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const ops_real *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p) {
    OPS_GPU(gpu_attention_pattern_backward(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p));
    attention_backward_cpu_(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p, NULL);
}

OPSDEF void op_resid_dropout(Gpu *gpu, void *x, size_t n, float p, const OpsDropout *d, int branch) {
    OPS_GPU(gpu_resid_dropout(gpu, x, n, p, d->seed, d->d_ctr, d->layer, branch));
    ops_real *v = x, pr = p, keep = 1 / (1 - pr);
    for (size_t i = 0; i < n; i++)
        v[i] = ops_resid_drop_u(d->seed, d->step, d->micro, d->layer, branch, i) < pr ? 0 : v[i] * keep;
}

OPSDEF void op_dropout_next(Gpu *gpu, int *d_ctr) {
    OPS_GPU(gpu_dropout_next(gpu, d_ctr));
    (void)d_ctr;
}

OPSDEF void op_attention_dropout_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                         const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                         const OpsDropout *d) {
    if (d && !d->thresh) d = NULL;
    OPS_GPU(gpu_attention_dropout_forward(gpu, out, lse, q, k, v, B, T, H, KV, hd, p, d));
    attention_forward_cpu_(out, lse, q, k, v, B, T, H, KV, hd, p, d);
}

OPSDEF void op_attention_dropout_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const ops_real *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                          const OpsDropout *d) {
    if (d && !d->thresh) d = NULL;
    OPS_GPU(gpu_attention_dropout_backward(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p, d));
    attention_backward_cpu_(dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p, d);
}

/* one row: logits, log-sum-exp, loss; optionally the softmax gradient in place */
static ops_real xent_row_cpu(ops_real *logits, const ops_real *x, const ops_real *wte, int target, int C, int V) {
    ops_real mx = -INFINITY, sum = 0;
    for (int j = 0; j < V; j++) {
        const ops_real *wr = wte + (size_t)j * C;
        ops_real d = 0;
        for (int c = 0; c < C; c++) d += x[c] * wr[c];
        logits[j] = d;
        if (d > mx) mx = d;
    }
    for (int j = 0; j < V; j++) sum += exp(logits[j] - mx);
    return mx + log(sum) - logits[target];
}

OPSDEF void op_xent_forward(Gpu *gpu, ops_real *losses, ops_real *correct, const void *h, const void *wte,
                            const int *targets, int N, int C, int V) {
    OPS_GPU(gpu_xent_forward(gpu, losses, correct, h, wte, targets, N, C, V));
    OMP_(omp parallel if ((double)N * V * C > OPS_OMP_MIN_WORK))
    {
        ops_real *logits = malloc(sizeof(ops_real) * V);
        OMP_(omp for)
        for (int n = 0; n < N; n++) {
            int t = targets[n];
            losses[n] = t < 0 ? 0 : xent_row_cpu(logits, CR(h) + (size_t)n * C, CR(wte), t, C, V);
            if (correct) {
                int hit = t >= 0;
                for (int j = 0; hit && j < V; j++) hit = logits[j] <= logits[t];
                correct[n] = hit;
            }
        }
        free(logits);
    }
}

OPSDEF void op_xent_backward(Gpu *gpu, ops_real *losses, void *dh, ops_real *dwte, const void *h,
                             const void *wte, const int *targets, int N, int C, int V, float dloss) {
    OPS_GPU(gpu_xent_backward(gpu, losses, dh, dwte, h, wte, targets, N, C, V, dloss));
    ops_real *logits = malloc(sizeof(ops_real) * V);
    for (int n = 0; n < N; n++) {
        const ops_real *x = CR(h) + (size_t)n * C;
        ops_real *dx = R(dh) + (size_t)n * C;
        memset(dx, 0, sizeof(ops_real) * C);
        if (targets[n] < 0) { losses[n] = 0; continue; }
        losses[n] = xent_row_cpu(logits, x, CR(wte), targets[n], C, V);
        ops_real lse = losses[n] + logits[targets[n]];
        for (int j = 0; j < V; j++) {
            /* dlogit_j = dloss (softmax_j - [j == target]) */
            ops_real g = dloss * (exp(logits[j] - lse) - (j == targets[n]));
            const ops_real *wr = CR(wte) + (size_t)j * C;
            ops_real *dwr = dwte + (size_t)j * C;
            for (int c = 0; c < C; c++) { dx[c] += g * wr[c]; dwr[c] += g * x[c]; }
        }
    }
    free(logits);
}

#undef R
#undef CR
#endif /* OPS_IMPLEMENTATION_DONE */
#endif /* OPS_IMPLEMENTATION */
