/* attn/dsa.h - DeepSeek-V3.2-style sparse attention (DSA): a lightning indexer picks,
   per query token, the top-k earlier positions, and attention runs over those alone.
   Ops with a plain-C reference (ops_real) and a CUDA path (attn/dsa.cu.h).

   A room of attn.h (the mechanism `dsa`: the dense family's projections with this core, the
   indexer, and its training stages) that also stands alone as an op library.

   USAGE
     #define OPS_IMPLEMENTATION          // ops.h's, in one .c file
     #define ATTN_DSA_IMPLEMENTATION     // in the same .c file (ATTN_IMPLEMENTATION implies it)
     #include "attn/dsa.h"
   Depends on: ops.h (gpu.h, attn/dense.cu.h and attn/dsa.cu.h in the CUDA build). Every op takes `Gpu *gpu` first: NULL runs the reference,
     non-NULL the kernels on device pointers (ops.h conventions: activations `void *`,
     ops_real on the CPU and bf16 on the GPU; statistics, probabilities and losses ops_real,
     which is float in every CUDA build).

   DEFINITION (per sequence b; t, s positions 0..T-1)
     Indexer. HI indexer heads of width dI per query token: q_I[t,j] (j < HI), one key per
     token shared by the heads: k_I[s] (dI), and per-head weights w[t,j]:
         I(t,s) = sum_j w[t,j] * ReLU(q_I[t,j] . k_I[s])            for s <= t
     (the caller applies any RoPE, 1/sqrt(dI) or HI^-1/2 scaling to q_I, k_I, w before;
     DeepSeek folds them into w). Selection: S_t = the k positions s <= t of largest
     I(t,s); all of 0..t when t + 1 <= k.
     TIES: a larger score wins; among equal scores the LOWER position wins. idx[b,t,:]
     lists S_t in ascending position order, then -1 in the unused slots (t + 1 < k). The
     CPU and GPU therefore produce identical rows whenever they see identical scores.
     The selection is shared by every attention head of the token (DeepSeek's MQA mode):
     the GPU kernels put the query heads of one token that share a kv head in the M
     dimension of one tensor-core tile (FlashMLA's sparse kernels do the same).

     Sparse attention. q [B,T,H,hd], k, v [B,T,KV,hd], head h reads kv head h/(H/KV):
         P[t,h,s] = exp(q[t,h] . k[s] / sqrt(hd) - lse[t,h])         for s in S_t
         out[t,h] = sum_{s in S_t} P[t,h,s] v[s],   lse[t,h] = log sum_{s in S_t} exp(...)
     idx entries < 0 are skipped wherever they are; valid entries must be distinct and
     causal (s <= t: the leak test relies on the selection, not on the op). With k >= T
     and idx = 0..t this is exactly op_attention_forward (tested).
     TWO GPU ORGANIZATIONS, chosen per call by cost (attn/dsa.cu.h, sparse_use_dense_):
     (1) dense tiles under the selection as a bitmask (Hopper, hd 64): the flash kernels of
     attn/dense.cu.h run every causal tile and mask each (query, key) by its bit, so they
     cost what dense causal attention costs whatever k is, with no gathers and no atomics;
     the KL target comes from a dense-tile kernel too (gpu_attention_select_probs: the
     heads' P summed in registers, stored at each selected key's rank), and so does the
     indexer's KL (gpu_attention_select_kl, with its own cost rule). They win when k is a
     large share of the context or the GQA group is narrow: the 135M model (9 heads on 3 kv
     heads, T 2048, k 512) trains 3x faster with them (65.0K -> 193.9K tok/s, H100).
     (2) per-token gathers of the selected keys (below), which pay off with DeepSeek's wide
     groups at long T (16 heads per kv head at T = 8192: 7.8 ms against 14.8 for the tiles).
     tuning.sparse_dense=0 / 1 forces (2) / (1); both are checked against the reference.
     Backward: dq, dk, dv (=). dk and dv are scattered (many queries select one key):
     the gathers add each (token, selected key) contribution into fp32 accumulators with
     red.global.add (after the heads of the token are already summed inside the block's
     mma, so one 64-wide row per (token, key, kv head)), then converts to bf16. We chose
     atomics over transposing the index list (per key, the queries that chose it): the
     transpose would gather every query head's q and dO per (query, key) pair (4 KB at
     H/KV = 16, hd 64, against 512 B of fp32 adds), and its per-key lists are badly
     unbalanced (early positions are chosen by nearly everyone). Those atomics are the
     order-dependent path (Gpu.nondeterministic = 1: fp32 summation order varies, ~1 ulp before
     the bf16 rounding); by default each pair's fp32 row is stored and the rows are added
     key-major in a fixed order instead, as are the KL's dk_I rows: the same bits every run
     (attn/dsa.cu.h, DETERMINISM, with its estimated cost). COST, to check on the
     device: each (token, selected key) pair adds 2*hd floats (dk, dv) and the KL backward
     dI floats (dk_I), all as fp32 reductions in L2: at B*T = 65536, k = 512, hd = dI = 64
     that is ~6.4e9 floats a step, which may well make the backward bound by L2 atomic
     throughput at H/KV = 16 (DeepSeek's H = 128 heads per token amortize the same adds
     8x better). If tests/gpu_sparse_check shows it, the candidate next step is a
     key-range pass for dk/dv/dk_I: a block owns a range of keys (their K, V and fp32
     accumulators in shared memory) and walks the tokens; idx rows are sorted, so a
     row's slots inside the range are contiguous (bounds found once by the query-major
     pass, which keeps dq). At k/T = 1/16 it reads about as many bytes of q/dO from L2
     as the forward gathers, trading the global fp32 adds for reads and shared adds.
     WHY NOT A PER-KEY TRANSPOSED dK/dV PASS (the CSR of queries per key), against the
     H100 numbers (B*T = 65536, k = 512, H = 16, KV = 1, hd 64: 33.5M (token, key) pairs,
     backward ~9.4 ms): gathering, per key, the q and dO rows of the queries that chose
     it moves 2 * H/KV * hd * 2 B = 4 KB per pair (137 GB) where the atomics move 512 B
     (17 GB); one key's queries are shared by no other key unless the selection is
     local. The key-RANGE pass above is the version that pays: a token's q/dO (4 KB)
     serves all its selected keys inside the range (k*R/t of them), so at R = 128 keys
     it reads ~8.6 GB (the forward's gather) and reduces in shared memory. Written as
     tuning.sparse_bwd=3 (measured slower on the H100, 2026-11-23: 32 ms where the default's
     sparse fwd+bwd took 7.8, docs/benchmarks.md; the default stays the atomics):
     (1) the query-major pass sparse_bwd keeps dq and psum, skips the dk/dv reductions
     and writes D = rowsum(dO O) [B,T,H] (fp32); (2) sparse_bwd_kv, grid (key ranges of
     64, token chunks of 256, B*KV): K, V of the range and fp32 dK, dV accumulators in
     shared memory; each warp walks its tokens t >= s0, finds the token's slots in the
     range by ballots over its sorted idx row, cp.async-loads q[t], dO[t] (the H/KV
     heads), and per tile of 16 of those keys (ldmatrix row addresses straight into the
     range's K/V rows: no copy) computes S^T = K Q^T, dP^T = V dO^T, P^T, dS^T as
     sparse_bwd does, then dV rows = P^T dO and dK rows = dS^T Q into the shared
     accumulators (shared fp32 atomics: warps may share keys); at the end one global
     red.v4 per accumulator element (the token chunks of a range meet there). Its index
     logic was emulated on the host against the per-pair sums (exact). Needs H/KV <= 16
     (else mode 1) and idx rows ascending with -1 after (what the select writes). Next
     steps if it pays: a per-token table of range bounds instead of the ballot scan
     (which re-reads up to the row's range position each time) and double-buffered
     q/dO. (The query-major pass skips its dV/dK products in this mode.)
     ABLATION MODES (GPU: Gpu.tuning's fields, GPU_TUNE_VARIANT(N) for mode N below, read per
     call; ablate --tune KEY=N; the defaults are bwd 2, kl 1, topk 2, measured fastest on the
     H100; 0 = the path described above; mode 9 is for tests only, not a --tune value):
       tuning.sparse_bwd=1  psum by plain stores when one block holds all heads of a token
       tuning.sparse_bwd=2  mode 1, and dk/dv staged in shared memory (over the group's
                            K/V rows once dQ is done), added as whole rows: a warp's
                            red.v4 covers 512 contiguous bytes instead of 16 rows x 32 B
       tuning.sparse_bwd=3  mode 1, and dk/dv by the key-range pass (above)
       tuning.sparse_bwd=9  mode 1 WITHOUT the dk/dv reductions: a timing diagnostic of
                            their cost (dk, dv come out zero; never train with it)
       tuning.sparse_kl=1   KL: dkI by red.v4 (half the reduction ops at dI = 64), a_j
                            cached in shared memory for the backward (no recomputation),
                            the scores a slot per lane (no warp sums) when K*HI*4 <= 64 KB
       tuning.sparse_topk=1 top-k: one block per row, match.any aggregation in the first
                            radix pass only (0: in every pass; the default, 2, takes a warp
                            per row, four rows a block, when T <= 4096; longer rows as 1)
       tuning.sparse_dense=0|1  the organization: per-token gathers / dense tiles under the
                            selection bitmask (0 in the field: by cost; the bwd modes are the gathers')
     tests/gpu_sparse_check checks both organizations, modes 1, 2, 3 and the KL/top-k modes against the same
     references as the default and times them (columns sfb1, sfb2, sfb3, sfb9, klb1, sel1).

     Indexer training (DeepSeek-V3.2's way, the only one provided): per token,
         p_t(s) = sum_h P[t,h,s] / sum_{s' in S_t} sum_h P[t,h,s']   (s in S_t)
         q_t(s) = softmax_{s in S_t} I(t,s)
         loss_t = KL(p_t || q_t) = sum_{s in S_t, p_t(s) > 0} p_t(s) (log p_t(s) - log q_t(s))
     p_t is detached: it comes from attn_dsa_attention_probs (recomputed from q, k, lse;
     or from attn_dsa_attention_backward's psum output, free there) and gives no gradient
     to q or k. The gradients go to q_I, k_I and w only, through
         dloss_t/dI(t,s) = q_t(s) - p_t(s).
     DeepSeek also detaches the indexer's input from the main model's graph (the indexer
     learns only from this loss); that wiring is the caller's. The dense warm-up stage
     (KL over all earlier tokens) is this loss with k >= T.

   PRECISION (GPU)
     Indexer products: ATTN_DSA_PREC_BF16 (default): q_I, k_I, w bf16 activations, q_I . k_I
     on bf16 tensor cores (mma.sync m16n8k16) with fp32 accumulation; ATTN_DSA_PREC_FP32:
     q_I, k_I, w are fp32 device arrays, products on CUDA cores in fp32 (slower; for
     ablating the indexer's precision); SPARSE_PREC_FP32_ACT: the same products from bf16
     activations converted on the device (the room's indexer_precision 1 on the GPU). Scores, softmax, the top-k select, lse, p and the
     KL loss are fp32 everywhere. SPARSE_PREC_FP16, _FP8 e4m3 (sm_90 and later only: the room
     refuses it elsewhere with a message), _INT8, _INT4: bf16 q_I, k_I quantized on the device
     exactly as op_indexer_quantize rounds them (attn/dsa.cu.h, idx_prep), the scores computed
     in fp32 from the quantized values (idx_scores_f32).
   PRECISION (CPU reference): the selection (attn_dsa_indexer_scores, attn_dsa_indexer_select) quantizes
     and dequantizes q_I and k_I first (op_indexer_quantize: fp16 and e4m3 rounding to nearest
     even, saturated at 65504 and 448; int8 / int4 with one scale per head's query row and per
     key, max|x| / 127 or / 7, in fp32 arithmetic so that a value at half the row's max rounds
     as the GPU rounds it) and computes the scores exactly from those values, so the top-k
     is the one the quantized indexer picks. fp32 and bf16 leave the ops_real activations as they
     are. The KL loss trains the unquantized q_I, k_I (the straight-through view: quantization
     only decides the selection). w stays unquantized (DeepSeek keeps the head weights wide).

   LIMITS (GPU): hd any multiple of 8 from 32 to 256 (the gathers' kernels run tiles of hd
     rounded up to 16, zero columns filled in shared memory and never loaded: hd 72 costs
     80-wide tiles; the dense-tile organization is Hopper's hd 64 only, so other widths always
     take the gathers; past 256 refused by attn_dsa_gpu_supported, ATTN_DSA_GPU_MAX_HD, the
     sparse kernels' shared memory being sized for 256); the CPU runs any width; dI in {8, 16, 32, 64, 128}
     (8 and 16 run the 32-wide kernels on zero-padded copies); HI <= 16 and HI*max(dI, 32) <= 1024; k <= SPARSE_MAX_TOPK (2048);
     H/KV <= 16 or a multiple of 16. T is a runtime argument (the score scratch is
     chunked, see attn/dsa.cu.h). k is a runtime argument: a ratio of the context
     is the caller's arithmetic.
*/
#ifndef ATTN_DSA_H
#define ATTN_DSA_H

/* linkage of every public function of attn.h and its rooms: extern, or static with ATTN_STATIC
   or ABLATE_STATIC (each .c file that defines the implementation then gets its own copy) */
#ifndef ATTNDEF
#if defined(ATTN_STATIC) || defined(ABLATE_STATIC)
#define ATTNDEF static
#else
#define ATTNDEF extern
#endif
#endif

/* the room's options (attn.h): the selection, the indexer's shape and precision, and the training
   stages (a dense warm-up, then k rising from topk_start to topk over topk_ramp steps, in
   multiples of 64: each change re-captures a CUDA graph). topk_schedule shapes the rise, with
   f = (step - dsa_warmup) / topk_ramp in [0, 1] and R = topk / topk_start:
     1 fixed        k = topk from the first step (topk_start ignored)
     2 linear       k = start + f (topk - start)                     (the default, 0)
     3 exponential  k = start R^f: the same factor every step
     4 cosine       k = start + (1 - cos(pi f)) / 2 (topk - start): slow, fast, slow
   each rounded down to a multiple of 64 (when >= 64), and
     5 adaptive     a k per query row from the entropy H_t of its indexer distribution
                    q_t(s) = softmax_{s <= t} I(t,s) over all its causal keys:
                      k_t = clamp(round(exp(H_t) * topk_adapt_pct / 100), topk_min, topk)
                    exp(H_t) is the perplexity, the effective number of keys the indexer
                    spreads its mass over: n for a uniform row of n keys, 1 for a one-hot row.
                    round = to nearest, halves up; topk_min (default 64) and topk_adapt_pct
                    (default 100) are read with this schedule only (set elsewhere: refused);
                    topk_start / topk_ramp are refused with it. Rows keep their k_t largest
                    scores, the other slots of the topk-wide idx row are -1.
   */
#define ATTN_OPTIONS_dsa(X)                                                                                        \
    X(dsa, topk, "topk", 0, ATTN_MAX_TOKENS, 0, "dsa: keys per query chosen by the indexer (default 512)")         \
    X(dsa, topk_pct, "topk_pct", 0, 100, 0, "dsa: instead, this percent of the context")                         \
    X(dsa, indexer_heads, "indexer_heads", 0, ATTN_MAX_WIDTH, 0, "dsa: indexer heads (default 4)")               \
    X(dsa, indexer_dim, "indexer_dim", 0, ATTN_MAX_WIDTH, 0, "dsa: indexer head dim (default 64)")               \
    X(dsa, indexer_precision, "indexer_precision", 0, 6, 0,                                                      \
      "dsa: indexer q, k precision: 1 fp32, 2 bf16 (default), 3 fp16, 4 fp8 e4m3 (GPU: Hopper), 5 int8, 6 int4")    \
    X(dsa, indexer_fp32, "indexer_fp32", 0, 1, ATTN_OPT_BOOL, "dsa: alias of indexer_precision = 1 (fp32)")      \
    X(dsa, dsa_warmup, "dsa_warmup", 0, ATTN_MAX_STEPS, 0, "dsa: steps of dense attention first")                \
    X(dsa, topk_start, "topk_start", 0, ATTN_MAX_TOKENS, 0, "dsa: k rises from this to topk (multiples of 64)") \
    X(dsa, topk_ramp, "topk_ramp", 0, ATTN_MAX_STEPS, 0, "dsa: over this many steps after the warm-up")          \
    X(dsa, topk_schedule, "topk_schedule", 0, 5, 0,                                                              \
      "dsa: k from topk_start to topk: 1 fixed, 2 linear (default), 3 exponential, 4 cosine; 5 adaptive (a k "  \
      "per query from the indexer's entropy: topk_min, topk_adapt_pct)")                                        \
    X(dsa, topk_min, "topk_min", 0, ATTN_MAX_TOKENS, 0, "dsa: adaptive k's floor (topk_schedule 5; default 64)") \
    X(dsa, topk_adapt_pct, "topk_adapt_pct", 0, 10000, 0,                                                        \
      "dsa: adaptive k = this percent of the indexer's perplexity (topk_schedule 5; default 100)")
/* the indexer's query [N, HI*dI], key [N, dI] (after RoPE) and weights [N, HI]; the selected
   key positions [N, k] (int32, in the ops_real area); the training stage (attn_at_step):
   dense warm-up, and the keys per query now (0: all of topk; the buffers hold topk) */
#define ATTN_ACTS_dsa void *iq, *ik, *iw; int *idx; int dsa_dense, dsa_topk_now;
/* the KL target [N, k] and KL per token [N] (fp32); the indexer's gradients */
#define ATTN_SCRATCH_dsa ops_real *psum, *kl; void *diq, *dik, *diw;

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SPARSE_MAX_TOPK 2048
/* the indexer's q, k precision (the ops' `prec`; the room's indexer_precision option numbers them
   1 fp32, 2 bf16, 3 fp16, 4 fp8, 5 int8, 6 int4, 0 = bf16) */
enum { ATTN_DSA_PREC_BF16 = 0, ATTN_DSA_PREC_FP32 = 1, SPARSE_PREC_FP16, SPARSE_PREC_FP8, SPARSE_PREC_INT8,
       SPARSE_PREC_INT4, SPARSE_PREC_FP32_ACT };
/* SPARSE_PREC_FP32_ACT: fp32 products of q_I, k_I, w given as ACTIVATIONS (bf16 on the GPU,
   converted to fp32 there; ATTN_DSA_PREC_FP32 on the GPU takes fp32 arrays): what the room
   passes for indexer_precision 1 on the GPU. The CPU treats it as ATTN_DSA_PREC_FP32. */
/* x [rows, dim] rounded in place to what precision prec holds: fp16 (round to nearest even,
   +-65504 saturated), fp8 e4m3 (3 mantissa bits, subnormals from 2^-9, +-448 saturated), int8 /
   int4 (per row, in fp32 arithmetic: scale = max|x| / 127 or / 7, x = scale * rint(x / scale), ties
   to even, each operation rounded to fp32 as the GPU's idx_prep does); fp32 and bf16 leave
   x as it is (the CPU's activations are the reference's precision). CPU only (ops_real). */
ATTNDEF void op_indexer_quantize(ops_real *x, size_t rows, int dim, int prec);

/* ---- indexer ---- */
/* scores [B,T,T] (ops_real): I(t,s) for s <= t, -inf for s > t. Materializes T*T per
   sequence: for tests and small T; training uses attn_dsa_indexer_select. */
ATTNDEF void attn_dsa_indexer_scores(Gpu *gpu, ops_real *scores, const void *qI, const void *kI, const void *w,
                       int B, int T, int HI, int dI, int prec);
/* The four ops below return 0, or -1 when the CPU path runs out of host memory for its
   O(T) row buffers (nothing written then). */
/* idx [B,T,topk] from scores [B,T,T]: the selection rule above */
ATTNDEF int attn_dsa_indexer_topk(Gpu *gpu, int *idx, const ops_real *scores, int B, int T, int topk);
/* scores + top-k in one op; on the GPU the scores live in a bounded scratch, a chunk of
   query rows at a time */
ATTNDEF int attn_dsa_indexer_select(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                      int B, int T, int HI, int dI, int topk, int prec);

/* the adaptive k of one row of n >= 1 causal scores (topk_schedule 5, the ROOM's rule above):
   clamp(round(exp(H) * pct / 100), kmin, kmax), H the entropy of softmax(row); kmin is
   clamped to kmax. *perp (may be NULL) receives exp(H). CPU only, double arithmetic. */
ATTNDEF int attn_dsa_adaptive_k(const ops_real *row, int n, int kmin, int kmax, int pct, double *perp);
/* attn_dsa_indexer_select with the adaptive k: row t keeps its attn_dsa_adaptive_k(scores of
   0..t, kmin, topk, pct) largest scores (ascending positions, then -1 up to topk); the entropy
   is that of the scores the selection sees (quantized per prec). pct = 0 is the fixed k. */
ATTNDEF int attn_dsa_indexer_select_adaptive(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                      int B, int T, int HI, int dI, int topk, int prec, int kmin, int pct);

/* ---- sparse attention over idx [B,T,topk] ---- */
ATTNDEF void attn_dsa_attention_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                 const void *v, const int *idx, int B, int T, int H, int KV, int hd,
                                 int topk);
/* dq, dk, dv written (=). psum (may be NULL) receives p [B,T,topk] = (1/H) sum_h P[t,h,idx]
   (0 in unused slots): the KL target, free here since P is recomputed anyway */
ATTNDEF void attn_dsa_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, ops_real *psum,
                                  const void *dout, const void *out, const ops_real *lse,
                                  const void *q, const void *k, const void *v, const int *idx,
                                  int B, int T, int H, int KV, int hd, int topk);
/* p [B,T,topk] = (1/H) sum_h exp(q[t,h] . k[idx] / sqrt(hd) - lse[t,h]); 0 in unused slots */
ATTNDEF void attn_dsa_attention_probs(Gpu *gpu, ops_real *p, const void *q, const void *k, const ops_real *lse,
                               const int *idx, int B, int T, int H, int KV, int hd, int topk);

/* ---- indexer KL loss (per token, ops_real) against a detached target p [B,T,topk] ---- */
ATTNDEF int attn_dsa_indexer_kl_forward(Gpu *gpu, ops_real *loss, const ops_real *p, const void *qI, const void *kI,
                          const void *w, const int *idx, int B, int T, int HI, int dI, int topk);
/* loss as above, and the gradients of dloss * sum(loss): dqI [B,T,HI,dI], dkI [B,T,dI],
   dw [B,T,HI], all written (=) */
ATTNDEF int attn_dsa_indexer_kl_backward(Gpu *gpu, ops_real *loss, void *dqI, void *dkI, void *dw, const ops_real *p,
                           const void *qI, const void *kI, const void *w, const int *idx,
                           int B, int T, int HI, int dI, int topk, float dloss);


#ifdef __cplusplus
}
#endif
#endif /* ATTN_DSA_H */

/* ======================================================================= */
#if defined(ATTN_DSA_IMPLEMENTATION) || defined(ATTN_IMPLEMENTATION)
#ifndef ATTN_DSA_IMPLEMENTATION_DONE
#define ATTN_DSA_IMPLEMENTATION_DONE

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ABLATE_NO_CUDA
#include "../gpu.h"
#include "dsa.cu.h"
#endif
/* OPS_GPU, OPS_GPU_INT (the kernel when gpu != NULL, then return), OMP_, OPS_OMP_MIN_WORK: ops.h's kit */

#define SR_(p) ((ops_real *)(p))
#define SCR_(p) ((const ops_real *)(p))

/* I(t,s) for one query row qt [HI*dI] with weights wt [HI] and one key ks [dI] */
static ops_real sparse_index_score_(const ops_real *qt, const ops_real *ks, const ops_real *wt, int HI, int dI) {
    ops_real acc = 0;
    for (int j = 0; j < HI; j++) {
        ops_real a = 0;
        for (int i = 0; i < dI; i++) a += qt[(size_t)j * dI + i] * ks[i];
        if (a > 0) acc += wt[j] * a;
    }
    return acc;
}

/* x rounded to a binary float format of m mantissa bits, normals down to 2^emin, |x| <= max */
static ops_real sparse_round_float_(ops_real x, int m, int emin, ops_real max) {
    if (x == 0 || x != x) return x;
    int e;
    frexp(x, &e); /* |x| in [2^(e-1), 2^e) */
    int lead = e - 1 < emin ? emin : e - 1;
    ops_real ulp = ldexp(1.0, lead - m), r = rint(x / ulp) * ulp; /* rint: nearest, ties to even */
    return r > max ? max : r < -max ? -max : r;
}

ATTNDEF void op_indexer_quantize(ops_real *x, size_t rows, int dim, int prec) {
    for (size_t r = 0; r < rows; r++) {
        ops_real *row = x + r * dim;
        if (prec == SPARSE_PREC_FP16 || prec == SPARSE_PREC_FP8) {
            for (int i = 0; i < dim; i++)
                row[i] = prec == SPARSE_PREC_FP16 ? sparse_round_float_(row[i], 10, -14, 65504)
                                                  : sparse_round_float_(row[i], 3, -6, 448);
            continue;
        }
        if (prec != SPARSE_PREC_INT8 && prec != SPARSE_PREC_INT4) return; /* fp32, bf16: as is */
        /* in fp32 arithmetic, as the GPU's idx_prep: an element at exactly half the row's max
           is a tie (7 * 0.5 = 3.5, 127 * 0.5 = 63.5), and whether it rounds up or down depends on
           which way max / levels was rounded; double and fp32 round it differently, so the
           reference fixes the fp32 rule (volatile: no wider intermediates) */
        volatile float levels = prec == SPARSE_PREC_INT8 ? 127.f : 7.f, fmx = 0.f;
        for (int i = 0; i < dim; i++) {
            float a = fabsf((float)row[i]);
            fmx = a > fmx ? a : fmx;
        }
        if (fmx == 0.f) continue;
        volatile float scale = fmx / levels;
        for (int i = 0; i < dim; i++) {
            volatile float r = (float)row[i] / scale;
            float qv = rintf(r);
            volatile float v = scale * (qv > levels ? levels : qv < -levels ? -levels : qv);
            row[i] = v;
        }
    }
}

/* the indexer's q [B*T, HI*dI] and k [B*T, dI] as prec holds them: the inputs themselves for
   fp32 / bf16 (*owned 0), else quantized copies (*owned 1: the caller frees them); -1 out of memory */
static int sparse_indexer_inputs_(const ops_real **qq, const ops_real **kq, int *owned, const void *qI,
                                  const void *kI, size_t N, int HI, int dI, int prec) {
    *qq = qI;
    *kq = kI;
    *owned = prec != ATTN_DSA_PREC_BF16 && prec != ATTN_DSA_PREC_FP32 && prec != SPARSE_PREC_FP32_ACT;
    if (!*owned) return 0;
    ops_real *q = malloc(sizeof(ops_real) * N * HI * dI), *k = malloc(sizeof(ops_real) * N * dI);
    if (!q || !k) { free(q); free(k); return -1; }
    memcpy(q, qI, sizeof(ops_real) * N * HI * dI);
    memcpy(k, kI, sizeof(ops_real) * N * dI);
    op_indexer_quantize(q, N * HI, dI, prec); /* a scale per head's query row */
    op_indexer_quantize(k, N, dI, prec);      /* and per key */
    *qq = q;
    *kq = k;
    return 0;
}

ATTNDEF void attn_dsa_indexer_scores(Gpu *gpu, ops_real *scores, const void *qI, const void *kI, const void *w,
                       int B, int T, int HI, int dI, int prec) {
    OPS_GPU(gpu_indexer_scores(gpu, scores, qI, kI, w, B, T, HI, dI, prec));
    const ops_real *qq, *kq;
    int owned;
    if (sparse_indexer_inputs_(&qq, &kq, &owned, qI, kI, (size_t)B * T, HI, dI, prec)) {
        for (size_t i = 0; i < (size_t)B * T * T; i++) scores[i] = NAN; /* out of memory: no scores */
        return;
    }
    qI = qq;
    kI = kq;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            ops_real *row = scores + n * T;
            for (int s = 0; s < T; s++)
                row[s] = s > t ? -INFINITY
                               : sparse_index_score_(SCR_(qI) + n * HI * dI, SCR_(kI) + ((size_t)b * T + s) * dI,
                                                     SCR_(w) + n * HI, HI, dI);
        }
    if (owned) { free((void *)qq); free((void *)kq); }
}

typedef struct { ops_real v; int i; } SparseScore_;
/* larger score first; among equal scores the lower position first */
static int sparse_score_cmp_(const void *a, const void *b) {
    const SparseScore_ *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}
static int sparse_int_cmp_(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* one row: the n = t+1 scores row[0..t] -> out[topk] (ascending positions, then -1);
   tmp holds n entries */
static void sparse_topk_row_(int *out, const ops_real *row, int n, int topk, SparseScore_ *tmp) {
    if (n <= topk) {
        for (int i = 0; i < topk; i++) out[i] = i < n ? i : -1;
        return;
    }
    for (int s = 0; s < n; s++) { tmp[s].v = row[s]; tmp[s].i = s; }
    qsort(tmp, n, sizeof *tmp, sparse_score_cmp_);
    for (int i = 0; i < topk; i++) out[i] = tmp[i].i;
    qsort(out, topk, sizeof *out, sparse_int_cmp_);
}

ATTNDEF int attn_dsa_indexer_topk(Gpu *gpu, int *idx, const ops_real *scores, int B, int T, int topk) {
    OPS_GPU_INT(gpu_indexer_topk(gpu, idx, scores, B, T, topk));
    SparseScore_ *tmp = malloc(sizeof *tmp * T);
    if (!tmp) return -1;
    for (size_t n = 0; n < (size_t)B * T; n++)
        sparse_topk_row_(idx + n * topk, scores + n * T, (int)(n % T) + 1, topk, tmp);
    free(tmp);
    return 0;
}

ATTNDEF int attn_dsa_adaptive_k(const ops_real *row, int n, int kmin, int kmax, int pct, double *perp) {
    double mx = -INFINITY, z = 0, m1 = 0;
    for (int s = 0; s < n; s++) mx = row[s] > mx ? row[s] : mx;
    for (int s = 0; s < n; s++) {
        double e = exp((double)row[s] - mx);
        z += e;
        m1 += e * ((double)row[s] - mx);
    }
    double H = log(z) - m1 / z, p = exp(H), k = floor(p * pct / 100.0 + 0.5); /* H >= 0 up to rounding */
    if (perp) *perp = p;
    if (kmin > kmax) kmin = kmax;
    return k < kmin ? kmin : k > kmax ? kmax : (int)k;
}

ATTNDEF int attn_dsa_indexer_select(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                      int B, int T, int HI, int dI, int topk, int prec) {
    return attn_dsa_indexer_select_adaptive(gpu, idx, qI, kI, w, B, T, HI, dI, topk, prec, 0, 0);
}

ATTNDEF int attn_dsa_indexer_select_adaptive(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                      int B, int T, int HI, int dI, int topk, int prec, int kmin, int pct) {
    OPS_GPU_INT(gpu_indexer_select_adaptive(gpu, idx, qI, kI, w, B, T, HI, dI, topk, prec, kmin, pct));
    const ops_real *qq, *kq;
    int owned;
    if (sparse_indexer_inputs_(&qq, &kq, &owned, qI, kI, (size_t)B * T, HI, dI, prec)) return -1;
    qI = qq;
    kI = kq;
    /* one row of scores at a time: O(T) memory */
    ops_real *row = malloc(sizeof(ops_real) * T);
    SparseScore_ *tmp = malloc(sizeof *tmp * T);
    if (!row || !tmp) { free(row); free(tmp); if (owned) { free((void *)qq); free((void *)kq); } return -1; }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            for (int s = 0; s <= t; s++)
                row[s] = sparse_index_score_(SCR_(qI) + n * HI * dI, SCR_(kI) + ((size_t)b * T + s) * dI,
                                             SCR_(w) + n * HI, HI, dI);
            int k = pct > 0 ? attn_dsa_adaptive_k(row, t + 1, kmin, topk, pct, NULL) : topk;
            sparse_topk_row_(idx + n * topk, row, t + 1, k, tmp);
            for (int j = k; j < topk; j++) idx[n * topk + j] = -1;
        }
    free(row);
    free(tmp);
    if (owned) { free((void *)qq); free((void *)kq); }
    return 0;
}

/* scaled score q . k / sqrt(hd) of query row (b,t,h) and key position s */
static ops_real sparse_qk_(const ops_real *q, const ops_real *k, int b, int t, int h, int s, int T, int H,
                         int KV, int hd, ops_real scale) {
    const ops_real *qt = q + (((size_t)b * T + t) * H + h) * hd;
    const ops_real *ks = k + (((size_t)b * T + s) * KV + h / (H / KV)) * hd;
    ops_real d = 0;
    for (int i = 0; i < hd; i++) d += qt[i] * ks[i];
    return d * scale;
}

ATTNDEF void attn_dsa_attention_forward(Gpu *gpu, void *out, ops_real *lse, const void *q, const void *k,
                                 const void *v, const int *idx, int B, int T, int H, int KV, int hd,
                                 int topk) {
    OPS_GPU(gpu_sparse_attention_forward(gpu, out, lse, q, k, v, idx, B, T, H, KV, hd, topk));
    int group = H / KV;
    ops_real scale = 1 / sqrt((ops_real)hd);
    OMP_(omp parallel if ((double)B * H * T * topk * hd > OPS_OMP_MIN_WORK))
    {
        ops_real *p = malloc(sizeof(ops_real) * topk);
        OMP_(omp for collapse(2))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int t = 0; t < T; t++) {
                    const int *it = idx + ((size_t)b * T + t) * topk;
                    ops_real *ot = SR_(out) + (((size_t)b * T + t) * H + h) * hd, mx = -INFINITY, sum = 0;
                    for (int j = 0; j < topk; j++) {
                        p[j] = it[j] < 0 ? -INFINITY : sparse_qk_(SCR_(q), SCR_(k), b, t, h, it[j], T, H, KV, hd, scale);
                        if (p[j] > mx) mx = p[j];
                    }
                    for (int i = 0; i < hd; i++) ot[i] = 0;
                    for (int j = 0; j < topk; j++) {
                        if (it[j] < 0) continue;
                        p[j] = exp(p[j] - mx);
                        sum += p[j];
                        const ops_real *vs = SCR_(v) + (((size_t)b * T + it[j]) * KV + h / group) * hd;
                        for (int i = 0; i < hd; i++) ot[i] += p[j] * vs[i];
                    }
                    for (int i = 0; i < hd; i++) ot[i] /= sum;
                    lse[((size_t)b * H + h) * T + t] = mx + log(sum);
                }
        free(p);
    }
}

/* P = exp(S - lse); dV = P^T dO; dP = dO V^T; dS = P (dP - D), D = rowsum(dO * O);
   dQ = scale dS K; dK = scale dS^T Q: the dense backward restricted to the selected
   keys. Parallel over (b, kv head): the heads of a group share dk, dv rows. */
ATTNDEF void attn_dsa_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, ops_real *psum,
                                  const void *dout, const void *out, const ops_real *lse,
                                  const void *q, const void *k, const void *v, const int *idx,
                                  int B, int T, int H, int KV, int hd, int topk) {
    OPS_GPU(gpu_sparse_attention_backward(gpu, dq, dk, dv, psum, dout, out, lse, q, k, v, idx,
                                             B, T, H, KV, hd, topk));
    int group = H / KV;
    ops_real scale = 1 / sqrt((ops_real)hd);
    memset(dq, 0, sizeof(ops_real) * (size_t)B * T * H * hd);
    memset(dk, 0, sizeof(ops_real) * (size_t)B * T * KV * hd);
    memset(dv, 0, sizeof(ops_real) * (size_t)B * T * KV * hd);
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * topk * hd > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int kh = 0; kh < KV; kh++)
            for (int h = kh * group; h < (kh + 1) * group; h++)
                for (int t = 0; t < T; t++) {
                    size_t qi = (((size_t)b * T + t) * H + h) * hd;
                    const ops_real *qt = SCR_(q) + qi, *dot = SCR_(dout) + qi, *ot = SCR_(out) + qi;
                    const int *it = idx + ((size_t)b * T + t) * topk;
                    ops_real *dqt = SR_(dq) + qi, L = lse[((size_t)b * H + h) * T + t], D = 0;
                    for (int i = 0; i < hd; i++) D += dot[i] * ot[i];
                    for (int j = 0; j < topk; j++) {
                        if (it[j] < 0) continue;
                        size_t ki = (((size_t)b * T + it[j]) * KV + kh) * hd;
                        const ops_real *ks = SCR_(k) + ki, *vs = SCR_(v) + ki;
                        ops_real sc = 0, dp = 0;
                        for (int i = 0; i < hd; i++) { sc += qt[i] * ks[i]; dp += dot[i] * vs[i]; }
                        ops_real p = exp(sc * scale - L), ds = p * (dp - D) * scale;
                        ops_real *dks = SR_(dk) + ki, *dvs = SR_(dv) + ki;
                        for (int i = 0; i < hd; i++) {
                            dvs[i] += p * dot[i];
                            dqt[i] += ds * ks[i];
                            dks[i] += ds * qt[i];
                        }
                    }
                }
    if (psum) attn_dsa_attention_probs(NULL, psum, q, k, lse, idx, B, T, H, KV, hd, topk);
}

ATTNDEF void attn_dsa_attention_probs(Gpu *gpu, ops_real *p, const void *q, const void *k, const ops_real *lse,
                               const int *idx, int B, int T, int H, int KV, int hd, int topk) {
    OPS_GPU(gpu_sparse_attention_probs(gpu, p, q, k, lse, idx, B, T, H, KV, hd, topk));
    ops_real scale = 1 / sqrt((ops_real)hd);
    OMP_(omp parallel for collapse(2) if ((double)B * H * T * topk * hd > OPS_OMP_MIN_WORK))
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const int *it = idx + ((size_t)b * T + t) * topk;
            ops_real *pt = p + ((size_t)b * T + t) * topk;
            for (int j = 0; j < topk; j++) {
                ops_real acc = 0;
                for (int h = 0; it[j] >= 0 && h < H; h++)
                    acc += exp(sparse_qk_(SCR_(q), SCR_(k), b, t, h, it[j], T, H, KV, hd, scale) -
                               lse[((size_t)b * H + h) * T + t]);
                pt[j] = acc / H;
            }
        }
}

/* The KL of one token: fills I[j] (the indexer scores of the selected keys) and ph[j]
   (p renormalized over the valid slots), returns the loss and the indexer's lse */
static ops_real sparse_kl_token_(ops_real *I, ops_real *ph, ops_real *lseI, const ops_real *pt, const ops_real *qt,
                               const ops_real *kI, const ops_real *wt, const int *it, int HI, int dI, int topk) {
    ops_real mx = -INFINITY, sum = 0, psum = 0, loss = 0;
    for (int j = 0; j < topk; j++) {
        if (it[j] < 0) continue;
        I[j] = sparse_index_score_(qt, kI + (size_t)it[j] * dI, wt, HI, dI);
        if (I[j] > mx) mx = I[j];
        psum += pt[j];
    }
    for (int j = 0; j < topk; j++)
        if (it[j] >= 0) sum += exp(I[j] - mx);
    *lseI = mx + log(sum);
    for (int j = 0; j < topk; j++) {
        ph[j] = it[j] < 0 || psum <= 0 ? 0 : pt[j] / psum;
        if (ph[j] > 0) loss += ph[j] * (log(ph[j]) - (I[j] - *lseI));
    }
    return loss;
}

ATTNDEF int attn_dsa_indexer_kl_forward(Gpu *gpu, ops_real *loss, const ops_real *p, const void *qI, const void *kI,
                          const void *w, const int *idx, int B, int T, int HI, int dI, int topk) {
    OPS_GPU_INT(gpu_indexer_kl_forward(gpu, loss, p, qI, kI, w, idx, B, T, HI, dI, topk));
    ops_real *I = malloc(sizeof(ops_real) * 2 * topk), lseI;
    if (!I) return -1;
    ops_real *ph = I + topk;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            loss[n] = sparse_kl_token_(I, ph, &lseI, p + n * topk, SCR_(qI) + n * HI * dI,
                                       SCR_(kI) + (size_t)b * T * dI, SCR_(w) + n * HI, idx + n * topk,
                                       HI, dI, topk);
        }
    free(I);
    return 0;
}

/* dloss_t/dI_j = softmax_j(I) - ph_j; then through I = sum_h w_h ReLU(a_h), a_h = qI_h . kI:
   dw_h += g relu(a_h); dqI_h += g w_h [a_h > 0] kI; dkI += g w_h [a_h > 0] qI_h */
ATTNDEF int attn_dsa_indexer_kl_backward(Gpu *gpu, ops_real *loss, void *dqI, void *dkI, void *dw, const ops_real *p,
                           const void *qI, const void *kI, const void *w, const int *idx,
                           int B, int T, int HI, int dI, int topk, float dloss) {
    OPS_GPU_INT(gpu_indexer_kl_backward(gpu, loss, dqI, dkI, dw, p, qI, kI, w, idx, B, T, HI, dI, topk, dloss));
    ops_real *I = malloc(sizeof(ops_real) * 2 * topk), lseI;
    if (!I) return -1;
    ops_real *ph = I + topk;
    memset(dqI, 0, sizeof(ops_real) * (size_t)B * T * HI * dI);
    memset(dkI, 0, sizeof(ops_real) * (size_t)B * T * dI);
    memset(dw, 0, sizeof(ops_real) * (size_t)B * T * HI);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            const ops_real *qt = SCR_(qI) + n * HI * dI, *wt = SCR_(w) + n * HI;
            const int *it = idx + n * topk;
            loss[n] = sparse_kl_token_(I, ph, &lseI, p + n * topk, qt, SCR_(kI) + (size_t)b * T * dI, wt, it,
                                       HI, dI, topk);
            for (int j = 0; j < topk; j++) {
                if (it[j] < 0) continue;
                ops_real g = dloss * (exp(I[j] - lseI) - ph[j]);
                const ops_real *ks = SCR_(kI) + ((size_t)b * T + it[j]) * dI;
                ops_real *dks = SR_(dkI) + ((size_t)b * T + it[j]) * dI;
                for (int h = 0; h < HI; h++) {
                    const ops_real *qh = qt + (size_t)h * dI;
                    ops_real a = 0;
                    for (int i = 0; i < dI; i++) a += qh[i] * ks[i];
                    if (a <= 0) continue;
                    SR_(dw)[n * HI + h] += g * a;
                    ops_real c = g * wt[h], *dqh = SR_(dqI) + (n * HI + h) * dI;
                    for (int i = 0; i < dI; i++) { dqh[i] += c * ks[i]; dks[i] += c * qh[i]; }
                }
            }
        }
    free(I);
    return 0;
}

#undef SR_
#undef SCR_
#endif /* ATTN_DSA_IMPLEMENTATION_DONE */
#endif /* ATTN_DSA_IMPLEMENTATION */

/* ======================================================================= */
/* the room of attn.h: GQA (attn/dense.h's projections) whose queries each attend only to their
   top-k causal keys, chosen by the lightning indexer
     I(t,s) = sum_j w(t,j) ReLU(q_I(t,j) . k_I(s))   (q_I, k_I from x through their own
   projections, with RoPE). The indexer trains on KL(p || softmax(I)) over the selected keys, p
   the heads' mean attention (detached), averaged over the micro-batch's tokens, with its input
   detached (DeepSeek's sparse stage). Training stages (dsa_warmup, topk_start, topk_ramp): a
   dense warm-up (dense attention; the indexer learns toward the dense probabilities of the keys
   it selects) and a progressive k, the room's state between steps (attn_at_step).
   Parameters: the dense family's, then indexer.q_proj [HI*dI, d], indexer.k_proj [dI, d],
   indexer.w_proj [HI, d] (DeepSeek-V3.2's wq_b, wk, weights_proj). */
#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_DSA_ROOM_DONE)
#define ATTN_DSA_ROOM_DONE

ATTNDEF int attn_topk(const AttnConfig *c, int T) {
    long k = c->topk_pct > 0 ? (long)T * c->topk_pct / 100 : c->topk;
    if (k < 1) k = 1;
    return (int)(k < T ? k : T);
}

/* keys per query at the current stage (at most attn_topk) */
static int attn_dsa_topk_now(const AttnConfig *c, const AttnActs *a, int T) {
    int k = attn_topk(c, T);
    return a->dsa_topk_now > 0 && a->dsa_topk_now < k ? a->dsa_topk_now : k;
}

static int attn_dsa_resolve(AttnConfig *c, char *err, size_t errlen) {
    if (c->window) {
        snprintf(err, errlen, "attn dsa takes no window (got %d): the indexer picks the keys", c->window);
        return -1;
    }
    /* indexer_fp32 = 1 is the older spelling of indexer_precision = 1; 0 in either stays 0 (the
       default: bf16 precision, a linear k schedule), so runs that never set them keep their identity */
    if (c->indexer_fp32 && c->indexer_precision > 1) {
        snprintf(err, errlen, "attn dsa: indexer_fp32 = 1 means indexer_precision = 1 (fp32), but "
                 "indexer_precision is %d: give one of them", c->indexer_precision);
        return -1;
    }
    if (c->topk_schedule == 5 && (c->topk_start || c->topk_ramp)) {
        snprintf(err, errlen, "attn dsa: topk_schedule 5 (adaptive) picks each row's k from the indexer's "
                 "entropy, so topk_start (%d) and topk_ramp (%d) must stay 0", c->topk_start, c->topk_ramp);
        return -1;
    }
    if (c->topk_schedule != 5 && (c->topk_min || c->topk_adapt_pct)) {
        snprintf(err, errlen, "attn dsa: topk_min (%d) and topk_adapt_pct (%d) shape the adaptive k: they need "
                 "topk_schedule 5 (got %d)", c->topk_min, c->topk_adapt_pct, c->topk_schedule);
        return -1;
    }
    if (c->topk_schedule == 5 && c->topk_min == 0) c->topk_min = 64;
    if (c->topk_schedule == 5 && c->topk_adapt_pct == 0) c->topk_adapt_pct = 100;
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
    return attn_dense_resolve(c, err, errlen); /* kv heads as GQA */
}

/* indexer_precision (1..6; 0 = bf16) -> the ops' SPARSE_PREC_* */
static int attn_dsa_prec(const AttnConfig *c) {
    static const int prec[] = {ATTN_DSA_PREC_BF16, ATTN_DSA_PREC_FP32, ATTN_DSA_PREC_BF16, SPARSE_PREC_FP16,
                               SPARSE_PREC_FP8,  SPARSE_PREC_INT8, SPARSE_PREC_INT4};
    int v = c->indexer_fp32 ? 1 : c->indexer_precision;
    return v >= 0 && v <= 6 ? prec[v] : ATTN_DSA_PREC_BF16;
}

/* the widest head the GPU path takes: attn/dsa.cu.h's SPARSE_MAX_HD (tests/gpu_sparse_check
   runs 192, 200 and 256 against the CPU reference) */
#define ATTN_DSA_GPU_MAX_HD 256

static int attn_dsa_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    int hd = c->head_dim, dI = c->indexer_dim, g = c->n_heads / c->n_kv_heads;
    const int mx = ATTN_DSA_GPU_MAX_HD;
    /* widths that are not a multiple of 16 run padded tiles */
    if (hd < 32 || hd > mx || hd % 8) {
        int lo = hd < 32 ? 32 : hd > mx ? mx : hd / 8 * 8, hi = hd < 32 ? 32 : hd > mx ? mx : (hd + 7) / 8 * 8;
        char near[32];
        if (lo != hi) snprintf(near, sizeof near, "%d or %d", lo, hi);
        else snprintf(near, sizeof near, "%d", lo);
        snprintf(err, errlen, "attn dsa on the GPU needs head_dim %d to be a multiple of 8 from 32 to %d (the "
                 "sparse kernels' shared memory is sized for that; %s would run): "
                 "use --device cpu or change the width (d_model / heads)", hd, mx, near);
        return -1;
    }
    if ((dI != 8 && dI != 16 && dI != 32 && dI != 64 && dI != 128) ||
        c->indexer_heads * (dI < 32 ? 32 : dI) > 1024 || (g > 16 && g % 16)) {
        snprintf(err, errlen, "attn dsa on the GPU needs indexer_dim in {8, 16, 32, 64, 128}, indexer heads x "
                 "max(dim, 32) <= 1024 and heads/kv_heads <= 16 or a multiple of 16 (got %d, %d, %d)", dI,
                 c->indexer_heads * (dI < 32 ? 32 : dI), g);
        return -1;
    }
    return 0;
}

static int attn_dsa_param_specs(const AttnConfig *c, AttnParamSpec *p) {
    int n = attn_dense_param_specs(c, p), d = c->d_model;
    size_t off = p[n - 1].offset + p[n - 1].numel;
    attn_spec_set(&p[n++], "indexer.q_proj.weight", &off, c->indexer_heads * c->indexer_dim, d);
    attn_spec_set(&p[n++], "indexer.k_proj.weight", &off, c->indexer_dim, d);
    attn_spec_set(&p[n++], "indexer.w_proj.weight", &off, c->indexer_heads, d);
    return n;
}

static double attn_dsa_flops(const AttnConfig *c, int T) {
    /* k keys per query (at most the causal ones), plus the indexer's scores */
    double keys = attn_dense_mean_keys(c, T), k = attn_topk(c, T) < keys ? attn_topk(c, T) : keys;
    return 2.0 * (double)attn_param_count(c) + 4.0 * c->n_heads * c->head_dim * k +
           2.0 * c->indexer_heads * (c->indexer_dim + 1) * (T + 1) / 2.0;
}

static void attn_dsa_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    size_t N = (size_t)B * T;
    attn_dense_act_sizes(c, B, T, act_elems, stat_elems);
    *act_elems += N * ((size_t)c->indexer_heads * c->indexer_dim + c->indexer_dim + c->indexer_heads);
    *stat_elems += N * (size_t)attn_topk(c, T);
}

static void attn_dsa_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                               int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    attn_dense_carve(c, a, es, &act_mem, &stat_mem, B, T);
    a->iq = attn_carve(&act_mem, N * c->indexer_heads * c->indexer_dim, es);
    a->ik = attn_carve(&act_mem, N * c->indexer_dim, es);
    a->iw = attn_carve(&act_mem, N * c->indexer_heads, es);
    a->idx = (int *)attn_carve(&stat_mem, N * attn_topk(c, T), sizeof(ops_real)); /* an int per ops_real slot */
}

static size_t attn_dsa_scratch_elems(const AttnConfig *c, int B, int T) {
    size_t N = (size_t)B * T;
    /* indexer gradients, then fp32 psum [N, k] and kl [N] (2 elements per fp32) */
    return attn_dense_scratch_elems(c, B, T) +
           N * ((size_t)c->indexer_heads * c->indexer_dim + c->indexer_dim + c->indexer_heads) +
           2 * (N * attn_topk(c, T) + N) + 8;
}

static void attn_dsa_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *cur, int B, int T) {
    size_t es = ops_act_size(gpu), N = (size_t)B * T;
    attn_dense_scratch_carve(c, s, es, &cur, B, T);
    s->diq = attn_carve(&cur, N * c->indexer_heads * c->indexer_dim, es);
    s->dik = attn_carve(&cur, N * c->indexer_dim, es);
    s->diw = attn_carve(&cur, N * c->indexer_heads, es);
    cur = (char *)(((uintptr_t)cur + 15) & ~(uintptr_t)15);
    s->psum = (ops_real *)attn_carve(&cur, N * attn_topk(c, T), sizeof(ops_real));
    s->kl = (ops_real *)attn_carve(&cur, N, sizeof(ops_real));
}

/* the share g in [0, 1] of the way from topk_start to topk after f = (step - warm-up) / ramp
   of the ramp: linear g = f; exponential: k grows geometrically, k = start (topk/start)^f, so
   g = ((topk/start)^f - 1) / (topk/start - 1); cosine g = (1 - cos(pi f)) / 2 */
static double attn_dsa_ramp(int schedule, double f, double start, double end) {
    if (schedule == 3) return (pow(end / start, f) - 1) / (end / start - 1);
    if (schedule == 4) return (1 - cos(3.14159265358979323846 * f)) / 2;
    return f;
}

/* the stage of 0-based step s: dense warm-up, then k rising in multiples of 64 (0 = all) */
static int attn_dsa_at_step(const AttnConfig *c, AttnActs *a, int step, int T) {
    int k_cfg = attn_topk(c, T), dense = step < c->dsa_warmup, k = 0;
    if (c->topk_schedule != 1 && c->topk_schedule != 5 && c->topk_start > 0 && c->topk_start < k_cfg) {
        int r = step - c->dsa_warmup;
        double f = c->topk_ramp > 0 ? (r < 0 ? 0 : r >= c->topk_ramp ? 1 : (double)r / c->topk_ramp) : 1;
        f = attn_dsa_ramp(c->topk_schedule, f, c->topk_start, k_cfg);
        int kk = c->topk_start + (int)(f * (k_cfg - c->topk_start) + 1e-9);
        kk = kk >= 64 ? kk / 64 * 64 : kk;
        k = kk >= k_cfg ? 0 : kk;
    }
    int changed = a->dsa_dense != dense || a->dsa_topk_now != k;
    a->dsa_dense = dense;
    a->dsa_topk_now = k;
    return changed;
}

static int attn_dsa_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                            int B, int T) {
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    int HI = c->indexer_heads, dI = c->indexer_dim, k = attn_dsa_topk_now(c, a, T);
    attn_dense_project(gpu, c, w, a, x, B, T);
    /* the indexer picks each query's keys; attention over those only */
    op_matmul_forward(gpu, a->iq, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.q_proj.weight")), N, d, HI * dI);
    op_matmul_forward(gpu, a->ik, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.k_proj.weight")), N, d, dI);
    op_matmul_forward(gpu, a->iw, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.w_proj.weight")), N, d, HI);
    op_rope_forward(gpu, a->iq, N, T, HI, dI, c->rope_theta);
    op_rope_forward(gpu, a->ik, N, T, 1, dI, c->rope_theta);
#ifndef ABLATE_NO_CUDA
    if (gpu && attn_dsa_prec(c) == SPARSE_PREC_FP8 && gpu->cc_major < 9) {
        /* e4m3 is Hopper's format: elsewhere an fp8 ablation would not measure fp8 hardware */
        fprintf(stderr, "attn dsa: indexer_precision 4 (fp8 e4m3) runs on Hopper (sm_90) or later; this GPU is "
                "sm_%d%d: use 3 (fp16), 5 (int8) or 6 (int4), or the CPU\n", gpu->cc_major, gpu->cc_minor);
        return -1;
    }
#endif
    /* topk_schedule 5: each row's k from its indexer entropy (pct 0: the fixed k) */
    /* fp32 products on the GPU: of the bf16 activations, converted there (not fp32 arrays) */
    int prec = gpu && attn_dsa_prec(c) == ATTN_DSA_PREC_FP32 ? SPARSE_PREC_FP32_ACT : attn_dsa_prec(c);
    if (attn_dsa_indexer_select_adaptive(gpu, a->idx, a->iq, a->ik, a->iw, B, T, HI, dI, k, prec,
                                         c->topk_min, c->topk_schedule == 5 ? c->topk_adapt_pct : 0))
        return -1;
    if (a->dsa_dense) /* warm-up: dense attention; the selection only feeds the indexer's KL */
        op_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, B, T, H, KV, hd, 0);
    else
        attn_dsa_attention_forward(gpu, a->att, a->lse, a->q, a->k, a->v, a->idx, B, T, H, KV, hd, k);
    op_matmul_forward(gpu, out, a->att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), N, H * hd, d);
    return 0;
}

static int attn_dsa_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                             const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    int HI = c->indexer_heads, dI = c->indexer_dim, k = attn_dsa_topk_now(c, a, T);
    size_t oo = attn_spec_off(c, "o_proj.weight");
    op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, attn_wat(gpu, w, oo), N, H * hd, d, 0);
    if (a->dsa_dense) { /* warm-up: p = the dense attention's probabilities on the selected keys */
        op_attention_backward(gpu, s->dq, s->dk, s->dv, s->datt, a->att, a->lse, a->q, a->k, a->v,
                              B, T, H, KV, hd, 0);
        attn_dsa_attention_probs(gpu, s->psum, a->q, a->k, a->lse, a->idx, B, T, H, KV, hd, k);
    } else {
        attn_dsa_attention_backward(gpu, s->dq, s->dk, s->dv, s->psum, s->datt, a->att, a->lse, a->q, a->k,
                                     a->v, a->idx, B, T, H, KV, hd, k);
    }
    /* the indexer learns from KL(p || softmax(I)) over the selected keys, p = the heads'
       mean attention (detached); its input is detached too: no gradient reaches x */
    if (attn_dsa_indexer_kl_backward(gpu, s->kl, s->diq, s->dik, s->diw, s->psum, a->iq, a->ik, a->iw, a->idx, B, T, HI,
                               dI, k, 1.0f / N))
        return -1;
    op_rope_backward(gpu, s->diq, N, T, HI, dI, c->rope_theta);
    op_rope_backward(gpu, s->dik, N, T, 1, dI, c->rope_theta);
    size_t oq = attn_spec_off(c, "indexer.q_proj.weight"), ok = attn_spec_off(c, "indexer.k_proj.weight");
    size_t ow = attn_spec_off(c, "indexer.w_proj.weight");
    op_matmul_backward(gpu, NULL, dw + oq, s->diq, x, attn_wat(gpu, w, oq), N, d, HI * dI, 0);
    op_matmul_backward(gpu, NULL, dw + ok, s->dik, x, attn_wat(gpu, w, ok), N, d, dI, 0);
    op_matmul_backward(gpu, NULL, dw + ow, s->diw, x, attn_wat(gpu, w, ow), N, d, HI, 0);
    attn_dense_project_backward(gpu, c, w, dw, a, s, x, dx, B, T);
    return 0;
}

/* ---- decoding: the dense family's K, V of every position, then the indexer's keys [B][cap][dI];
   each step scores the whole cache, keeps the top k (attn_topk at the cache's length) and attends
   to those only ---- */
static size_t attn_dsa_cache_bytes(const AttnConfig *c, int T) {
    return (size_t)T * (2 * c->n_kv_heads * c->head_dim + c->indexer_dim) * sizeof(ops_real);
}

static int attn_dsa_decode(const AttnConfig *c, const ops_real *w, AttnCache *kc, const ops_real *x, ops_real *out) {
    int B = kc->B, d = c->d_model, H = c->n_heads, hd = c->head_dim, kvd = c->n_kv_heads * hd, pos = kc->pos;
    int HI = c->indexer_heads, dI = c->indexer_dim, k = attn_topk(c, kc->cap), n = pos + 1;
    ops_real *ikc = (ops_real *)kc->mem + (size_t)B * kc->cap * 2 * kvd; /* the indexer's key cache */
    ops_real *q = attn_tmp((size_t)B * H * hd), *kt = attn_tmp((size_t)B * kvd), *vt = attn_tmp((size_t)B * kvd);
    ops_real *att = attn_tmp((size_t)B * H * hd), *iq = attn_tmp((size_t)B * HI * dI), *ik = attn_tmp((size_t)B * dI);
    ops_real *iw = attn_tmp((size_t)B * HI), *row = attn_tmp(n), *p = attn_tmp(k);
    int *idx = malloc(sizeof(int) * k), *pl = malloc(sizeof(int) * k);
    SparseScore_ *tmp = malloc(sizeof *tmp * n);
    const ops_real **ks = malloc(sizeof *ks * k), **vs = malloc(sizeof *vs * k);
    int rc = q && kt && vt && att && iq && ik && iw && row && p && idx && pl && tmp && ks && vs ? 0 : -1;
    if (!rc) {
        attn_dense_dec_project(c, w, kc, x, q, kt, vt);
        op_matmul_forward(NULL, iq, x, w + attn_spec_off(c, "indexer.q_proj.weight"), B, d, HI * dI);
        op_matmul_forward(NULL, ik, x, w + attn_spec_off(c, "indexer.k_proj.weight"), B, d, dI);
        op_matmul_forward(NULL, iw, x, w + attn_spec_off(c, "indexer.w_proj.weight"), B, d, HI);
        for (int b = 0; b < B; b++) {
            ops_real *ikb = ikc + (size_t)b * kc->cap * dI;
            attn_rope_at(iq + (size_t)b * HI * dI, HI, dI, dI, c->rope_theta, pos);
            memcpy(ikb + (size_t)pos * dI, ik + (size_t)b * dI, sizeof(ops_real) * dI);
            attn_rope_at(ikb + (size_t)pos * dI, 1, dI, dI, c->rope_theta, pos);
            for (int s = 0; s < n; s++)
                row[s] = sparse_index_score_(iq + (size_t)b * HI * dI, ikb + (size_t)s * dI, iw + (size_t)b * HI, HI, dI);
            int kr = c->topk_schedule == 5 ? attn_dsa_adaptive_k(row, n, c->topk_min, k, c->topk_adapt_pct, NULL) : k;
            sparse_topk_row_(idx, row, n, kr, tmp);
            int m = 0;
            for (int j = 0; j < kr; j++)
                if (idx[j] >= 0) pl[m++] = idx[j];
            attn_dense_dec_attend(c, kc, q, att, b, pl, m, ks, vs, p);
        }
        op_matmul_forward(NULL, out, att, w + attn_spec_off(c, "o_proj.weight"), B, H * hd, d);
    }
    free(q); free(kt); free(vt); free(att); free(iq); free(ik); free(iw); free(row); free(p); free(idx); free(pl);
    free(tmp); free(ks); free(vs);
    return rc;
}

/* ---- GPU decoding (attn/decode.cu.h). The cache: the CPU's layout in bf16: K, V of every position
   [B][cap][2 * kvd], then the indexer's keys [B][cap][dI]. A step: q, k, v and the indexer's q, k,
   w by matmul; QK-norm and RoPE at the device position; K, V and the indexer key into slot pos; one
   block per sequence scores the cached indexer keys (fp32 products of the bf16 q and keys: the
   indexer's inputs on the GPU at indexer_precision 1 and 2 alike), takes the top k (k =
   attn_topk(c, cap), as the CPU's decode; equal scores by lower position, the CPU's rule exactly)
   into an ascending list; one block per (b, h) attends to the listed positions; o_proj. The prompt:
   attn_dsa_gpu_prefill below (by default; tuning.dec_prefill = 0: one step per token). ---- */
static size_t attn_dsa_gpu_cache_bytes(const AttnConfig *c, int T) {
    return (size_t)T * (2 * c->n_kv_heads * c->head_dim + c->indexer_dim) * 2;
}

typedef struct { void *q, *kt, *vt, *iq, *ik, *iw, *att; float *scores, *p; int *list, *count; } DsaDecScratch;
static DsaDecScratch dsa_dec_scratch(const AttnConfig *c, void *base, int B, int cap, size_t *bytes) {
    size_t H = (size_t)c->n_heads, hd = (size_t)c->head_dim, kvd = (size_t)c->n_kv_heads * hd;
    size_t HI = (size_t)c->indexer_heads, dI = (size_t)c->indexer_dim;
    char *cur = base;
    DsaDecScratch s;
    s.q = attn_dec_take(&cur, 2 * B * H * hd);
    s.kt = attn_dec_take(&cur, 2 * B * kvd);
    s.vt = attn_dec_take(&cur, 2 * B * kvd);
    s.iq = attn_dec_take(&cur, 2 * B * HI * dI);
    s.ik = attn_dec_take(&cur, 2 * B * dI);
    s.iw = attn_dec_take(&cur, 2 * B * HI);
    s.att = attn_dec_take(&cur, 2 * B * H * hd);
    s.scores = attn_dec_take(&cur, 4 * (size_t)B * cap);
    s.p = attn_dec_take(&cur, 4 * gpu_dec_split_floats(B, (int)H, cap, c->head_dim));
    s.list = attn_dec_take(&cur, 4 * (size_t)B * cap);
    s.count = attn_dec_take(&cur, 4 * (size_t)B);
    if (bytes) *bytes = (size_t)(cur - (char *)base);
    return s;
}

static size_t attn_dsa_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    size_t n;
    dsa_dec_scratch(c, NULL, B, cap, &n);
    return n;
}

#ifndef ABLATE_NO_CUDA
#include "decode.cu.h"
static int attn_dsa_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                               void *out) {
    int B = k->B, cap = k->cap, d = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, kvd = KV * hd;
    int HI = c->indexer_heads, dI = c->indexer_dim;
    DsaDecScratch s = dsa_dec_scratch(c, k->scratch, B, cap, NULL);
    const void *qn = c->qk_norm ? attn_wat(gpu, w, attn_spec_off(c, "q_norm.weight")) : NULL;
    const void *kn = c->qk_norm ? attn_wat(gpu, w, attn_spec_off(c, "k_norm.weight")) : NULL;
    char *ikc = (char *)k->mem + (size_t)B * cap * 2 * kvd * 2;
    op_matmul_forward(gpu, s.q, x, attn_wat(gpu, w, attn_spec_off(c, "q_proj.weight")), B, d, H * hd);
    op_matmul_forward(gpu, s.kt, x, attn_wat(gpu, w, attn_spec_off(c, "k_proj.weight")), B, d, kvd);
    op_matmul_forward(gpu, s.vt, x, attn_wat(gpu, w, attn_spec_off(c, "v_proj.weight")), B, d, kvd);
    gpu_dec_rope_rows(gpu, s.q, qn, k->d_pos, B * H, hd, hd, c->norm_eps, c->rope_theta);
    gpu_dec_rope_rows(gpu, s.kt, kn, k->d_pos, B * KV, hd, hd, c->norm_eps, c->rope_theta);
    gpu_dec_put_rows(gpu, k->mem, s.kt, k->d_pos, B, kvd, cap, (size_t)cap * 2 * kvd, 2 * (size_t)kvd, 0);
    gpu_dec_put_rows(gpu, k->mem, s.vt, k->d_pos, B, kvd, cap, (size_t)cap * 2 * kvd, 2 * (size_t)kvd, kvd);
    op_matmul_forward(gpu, s.iq, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.q_proj.weight")), B, d, HI * dI);
    op_matmul_forward(gpu, s.ik, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.k_proj.weight")), B, d, dI);
    op_matmul_forward(gpu, s.iw, x, attn_wat(gpu, w, attn_spec_off(c, "indexer.w_proj.weight")), B, d, HI);
    gpu_dec_rope_rows(gpu, s.iq, NULL, k->d_pos, B * HI, dI, dI, c->norm_eps, c->rope_theta);
    gpu_dec_rope_rows(gpu, s.ik, NULL, k->d_pos, B, dI, dI, c->norm_eps, c->rope_theta);
    gpu_dec_put_rows(gpu, ikc, s.ik, k->d_pos, B, dI, cap, (size_t)cap * dI, dI, 0);
    gpu_dec_dsa_select(gpu, s.list, s.count, s.scores, ikc, s.iq, s.iw, k->d_pos, B, cap, HI, dI, attn_topk(c, cap));
    gpu_dec_dsa_attend(gpu, s.att, s.p, k->mem, s.q, s.list, s.count, B, H, KV, hd, cap);
    op_matmul_forward(gpu, out, s.att, attn_wat(gpu, w, attn_spec_off(c, "o_proj.weight")), B, H * hd, d);
    return 0;
}
#define ATTN_DSA_GPU_DECODE attn_dsa_gpu_decode
#else
#define ATTN_DSA_GPU_DECODE NULL
#endif

/* the prompt at once (attn.h's attn_gpu_prefill_whole: tuning.dec_prefill): the training forward
   over the prompt, whose output is the prefill's, run with the decode step's selection: k =
   attn_topk(c, cap) (topk_pct resolved at the cache's length, as attn_dsa_decode does), the
   indexer's products in fp32 of the bf16 activations (what dsa_select computes), and no training
   stage (acts_bind leaves no dense warm-up and no k ramp). Then its rotated (QK-normed) K, V and
   indexer keys into the cache, every position. */
static int attn_dsa_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                void *out, int T) {
#ifndef ABLATE_NO_CUDA
    int B = k->B, cap = k->cap, kvd = c->n_kv_heads * c->head_dim, dI = c->indexer_dim;
    AttnConfig cd = *c;
    cd.topk = attn_topk(c, cap);
    cd.topk_pct = 0;
    cd.indexer_precision = 1;
    cd.indexer_fp32 = 0;
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, &cd, B, T, &pf);
    int rc = attn_forward(gpu, &cd, w, &pf.a, x, out, B, T);
    const AttnActs a = pf.a;
    if (!rc) {
        size_t seq = (size_t)cap * 2 * kvd;
        gpu_dec_fill_rows(gpu, k->mem, a.k, B, T, cap, kvd, (size_t)kvd, seq, 2 * (size_t)kvd, 1);
        gpu_dec_fill_rows(gpu, (char *)k->mem + 2 * (size_t)kvd, a.v, B, T, cap, kvd, (size_t)kvd, seq,
                          2 * (size_t)kvd, 1);
        gpu_dec_fill_rows(gpu, (char *)k->mem + (size_t)B * seq * 2, a.ik, B, T, cap, dI, (size_t)dI,
                          (size_t)cap * dI, (size_t)dI, 1);
    }
    attn_gpu_prefill_end(gpu, &pf);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1; /* the CPU-only build has no GPU */
#endif
}

/* the sparse kernels' modules for gpu_kernel_prewarm, and dense attention's during a warm-up */
static int attn_dsa_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                                 int max) {
    (void)B;
#ifndef ABLATE_NO_CUDA
    int n = gpu_sparse_kernels(gpu, c->n_heads, c->n_kv_heads, c->head_dim, c->indexer_heads, c->indexer_dim, out, max);
    if (c->dsa_warmup > 0) {
        int k = n < max ? n : max;
        n += gpu_attention_kernels(gpu, T, c->n_heads, c->n_kv_heads, c->head_dim, NULL, out + k, max - k);
    }
    return n;
#else
    (void)gpu; (void)c; (void)T; (void)out; (void)max;
    return 0;
#endif
}

static const AttnMech attn_room_dsa = {
    "dsa", attn_dsa_resolve, attn_dsa_gpu_supported, attn_dsa_param_specs, attn_dense_kv_bytes, NULL,
    attn_dsa_flops, NULL, attn_dsa_act_sizes, attn_dsa_acts_bind, attn_dsa_scratch_elems, attn_dsa_scratch_bind,
    attn_dsa_forward, attn_dsa_backward, attn_dsa_at_step, attn_dsa_cache_bytes, attn_dsa_decode, NULL,
    attn_dsa_gpu_cache_bytes, attn_dsa_gpu_scratch_bytes, NULL, ATTN_DSA_GPU_DECODE, attn_dsa_gpu_prefill,
    attn_dsa_gpu_kernels,
};

#endif /* ATTN_DSA_ROOM_DONE */
