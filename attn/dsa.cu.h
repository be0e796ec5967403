/* attn/dsa.cu.h - CUDA kernels of attn/dsa.h (DSA: lightning indexer, top-k
   select, sparse attention forward/backward, indexer KL), bf16 tensor cores via
   mma.sync m16n8k16 + ldmatrix + cp.async (sm_80 and later), compiled by NVRTC.

   USAGE
     #include "gpu.h"
     #include "attn/dsa.cu.h"   // declarations; definitions with GPU_IMPLEMENTATION
     (attn/dsa.h includes it and dispatches its ops here when gpu != NULL)
   DEPENDS ON: gpu.h (included first; it decides the build). Declarations only with
   -DABLATE_CUDA; GPUDEF linkage and extern "C" as in gpu.h.

   API (device pointers; attn/dsa.h gives the semantics; bf16 activations, fp32
   scores / lse / p / loss; idx int32 [B,T,topk])
     gpu_indexer_scores(g, scores, qI, kI, w, B, T, HI, dI, prec)     scores [B,T,T]
     gpu_indexer_topk(g, idx, scores, B, T, topk)
     gpu_indexer_select(g, idx, qI, kI, w, B, T, HI, dI, topk, prec)   scores in a chunked scratch
     gpu_indexer_select_adaptive(g, idx, qI, kI, w, B, T, HI, dI, topk, prec, kmin, pct)
                                    the same, each row trimmed to its adaptive k (pct 0: fixed)
     gpu_sparse_attention_forward(g, out, lse, q, k, v, idx, B, T, H, KV, hd, topk)
     gpu_sparse_attention_backward(g, dq, dk, dv, psum, dout, out, lse, q, k, v, idx, ...)
     gpu_sparse_attention_probs(g, p, q, k, lse, idx, B, T, H, KV, hd, topk)
     gpu_indexer_kl_forward(g, loss, p, qI, kI, w, idx, B, T, HI, dI, topk)
     gpu_indexer_kl_backward(g, loss, dqI, dkI, dw, p, qI, kI, w, idx, B, T, HI, dI, topk, dloss)
     gpu_sparse_release(g)          frees this file's scratch early (gpu_free_all frees it too)
     sparse_kernels_compile_check(arch)   NVRTC-compiles the specializations for arch, and
                                    checks that each module holds its part's kernels (below)
   CPU EMULATION: tests/emu_sparse.cc runs the attention kernels (SPARSE_PART 1) on a CPU
     emulation of CUDA (tests/emu_cuda_cxx.h) against sparse attention in double, and the
     indexer's score kernels, the top-k kernels and sparse_mask against the CPU's scores and
     selection rule, idx_adapt against the adaptive-k rule, idx_prep's quantizers bit for bit
     against op_indexer_quantize's rule, and the KL (idx_kl with idx_dk_reduce, key_combine)
     against its loss and gradients (make emucheck, in CI).
   MODULES: the source compiles as three modules (SPARSE_PART, one -D option), each holding a
     third of the kernels, which gpu_kernel_prewarm compiles in parallel: 0 the shared ones
     (top-k, the mask, fill, the indexer's prep, unpad and adapt; options SPARSE_COMMON_OPTS),
     1 the attention (sparse_attn_opts_), 2 the indexer's scores and KL (sparse_index_opts_).
     sparse_part_kernels_ lists each part's kernels; tools/kernel_parts.py checks that every
     launcher asks with its kernel's part's options. NVRTC for sm_90 on a 2-core EPYC
     (build/nvrtc_times dsa; docs/benchmarks.md, 2026-12-04): 1.73 + 1.74 + 1.72 s when each
     module held every kernel, 0.51 + 0.75 + 0.55 s split; the kernels' PTX is the same.
   Limits: hd a multiple of 8 from 32 to 256 (HEAD WIDTHS below; attn/dsa.h's room takes up to
   128, the widths checked on a GPU), dI in {8, 16, 32, 64,
   128}; 1 <= HI <= 16 and
   HI*max(dI, 32) <= 1024 (the bf16 score kernel keeps a 64-row query tile of all heads in
   shared memory); 1 <= topk <= 2048; H/KV <= 16 or a multiple of 16; every bf16 tensor
   16-byte aligned; prec 3 (fp8 e4m3) on sm_90 or later (elsewhere: a message and abort).

   DESIGN
   Indexer scores (idx_scores_bf16): one block per 64 query rows of one sequence, 4 warps
     of 16 rows; key tiles of 64 stream through shared memory (cp.async, double-buffered,
     tiles above the diagonal never loaded). For each indexer head j the warp computes
     S_j = qI_j kI^T on the tensor cores (16 x 64, fp32) and folds w_j ReLU(S_j) into an
     fp32 accumulator; the tile is stored as fp32 scores. The scores are materialized for
     a chunk of query rows at a time (SPARSE_SCORE_BUDGET bytes of scratch, whole
     sequences when T*T*4 fits, else ranges of rows): T*T/2 floats per sequence are
     written once and read once by the select. ATTN_DSA_PREC_FP32: idx_scores_f32, same
     tiling on CUDA cores (fp32 qI, kI, w).
   Indexer dims 8 and 16, precisions fp16 / fp8 / int8 / int4 (sparse_index_prep_): idx_prep
     (a warp per row) writes copies of qI and kI into a second scratch (sparse_prep): padded
     with zero columns to 32 (the DI = 32 kernels: a zero column adds 0 to every q . k and
     its gradient is never read back), and for the quantized precisions rounded exactly as
     op_indexer_quantize does (idx_round_float: frexp / rint / saturation in fp32, the same
     values as the reference; int8 / int4: a scale per row, max|x| / 127 or / 7, IEEE
     divisions) and stored fp32 with w, so idx_scores_f32 computes the scores of the
     quantized values in fp32. The KL (gpu_indexer_kl_*) trains the unquantized inputs; at
     dI 8 / 16 it runs at DI = 32 on padded copies and idx_unpad cuts dqI, dkI back. Cost
     (not measured): a 32-wide indexer's products plus one pass over qI and kI.
   Adaptive k (idx_adapt, after the top-k of each chunk of scores): a block per row sums
     the entropy of softmax over the row's causal scores (double sums), takes its k_t
     (attn/dsa.h's rule) and, if k_t is below the row's selected count, finds the k_t-th
     largest orderable key among the selected slots by a 32-step bitwise count, keeps the
     slots above it and the earliest slots equal to it (the lower positions: the ties
     rule) and compacts them in order (warp ballots), -1 after. The sparse attention and
     the KL skip the -1 slots already, so nothing else changes for a per-row k.
   Top-k (idx_topk): one block of 256 threads per query row; the row (t+1 scores) is
     copied to shared memory when T*4 <= SPARSE_TOPK_CACHE bytes. A 4-pass radix select
     (8 bits per pass; a 256-bin shared histogram with warp-aggregated atomics, since
     the scores crowd a few exponent bins; a warp scan of it) finds the k-th largest
     orderable key and how many keys equal to it are taken; an ordered compaction (warp
     ballots + a scan over the warps' contiguous segments) writes the selected positions
     in ascending order, ties going to the lower positions: exactly the CPU rule.
     Rows up to SPARSE_TOPK_WARP_T (4096) take idx_topk_warp instead: a warp per row, four
     rows a block, the same select with warp-private histogram and row cache (no block
     barriers) and one in-order ballot sweep as the compaction (H100, select at 16 x 2048
     with HI 4: 0.491 -> 0.414 ms).
   Dense tiles instead (tuning.sparse_dense, by default when cheaper; see sparse_use_dense_):
     sparse_mask turns idx into a bitmask [B][T][ceil(T/128)*4] u32 (a warp per row,
     shared-memory atomicOr, 8 MB at 16 x 2048; with the per-tile prefix counts the KL's
     key-major pass needs) and attn/dense.cu.h's SELMASK kernels run the attention, the KL
     target and (sparse_kl_use_dense_) the indexer's KL over it; the mask is rebuilt by each call (cheap), so
     the ops stay stateless.
   Sparse attention (sparse_fwd, sparse_bwd, sparse_probs): one block of 4 warps per
     (token, HB query heads sharing a kv head), HB = min(H/KV, 16): the heads fill the
     M dimension of the mma tiles (rows past HB are zero padding: with H/KV < 16 part of
     every tile is wasted, the price of one shared selection per token). The selected
     slots are cut into groups of 16 (a tile of 64 slots per round of the 4 warps); each
     warp gathers its groups' K and V rows into its own double-buffered shared memory by
     cp.async from the idx list and needs no block barrier in its loop. Groups of unused
     slots (-1) are skipped.
     Forward: S = Q K^T (16 heads x 16 keys), online softmax per warp over its groups
       (split-K), O += P V; the 4 warps' (max, sum, O) are merged at the end.
     Backward: S^T = K Q^T and dP^T = V dO^T (16 keys x 16 heads), P^T = exp(S^T - lse),
       dS^T = P^T (dP^T - D), D = rowsum(dO O) computed in the block. dV rows = P^T dO and
       dK rows = dS^T Q come out complete for the token (the mma sums the heads) and are
       added with red.global.add.v4 (sm_90; scalar atomics before) into fp32 accumulators,
       converted to bf16 after (why atomics rather than a transposed index list:
       attn/dsa.h) when Gpu.nondeterministic = 1; by default they are stored per pair and
       reduced key-major in a fixed order (DETERMINISM below). dQ = dS K
       stays in registers over the warp's groups (dS^T goes through a 16x16 warp tile to
       become an A fragment); the warps' partials are merged in shared memory. Optionally
       the same pass emits psum = (1/H) sum_h P per slot, the KL target.
   HEAD WIDTHS (sparse_fwd, sparse_bwd, sparse_bwd_kv, sparse_probs): HD is the width in
     memory (strides, loads, stores touch only its columns); HDP, the mma tiles' and shared-
     memory rows' width, is HD rounded up to 16 (sparse_hdp_: 40 -> 48, 72 -> 80, 120 -> 128).
     The cp.async that fills a row zero-fills its chunks HD..HDP-1 (src-size 0: no read), every
     time, since the staged backward reuses the K/V buffers as fp32 scratch; zero columns add
     0 to q.k and give zero output columns, which are not stored (dK/dV's last 8-column slab is
     skipped when it is padding). The scale stays 1/sqrt(HD) (the host passes it). Cost: the
     mma work of HDP, plus one zero-filling cp.async per padded row chunk (not measured).
     key_reduce's rows stay HD wide (RKEYS*HD/4 not a multiple of its threads at HD = 8 mod
     16: the last round runs part of the block). Up to 256: the fwd block's four K/V slices
     take 4 * 4 * 16 * (HDP + 8) * 2 bytes (132 KiB at 256; the fwd 148 KiB in all at k 2048,
     the bwd 160 KiB), and ptxas fits them without spills (sm_90, HD 256: sparse_fwd 240
     registers, sparse_bwd 238, sparse_kv_reduce 247; tests/nvrtc_compile compiles them).
     sparse_bwd_kv (tuning.sparse_bwd 3, order-dependent only) needs 264 KiB at 256: past the
     opt-in the backward takes mode 1 instead. Widths past 128 are checked on the CPU emulation
     of the kernels (tests/emu_sparse.cc: forward, both backwards and the probs at hd 200 and
     256, with 64 and 72) and against the CPU reference on the GPU (tests/gpu_sparse_check at
     192, 200 and 256).
   Indexer KL (idx_kl): one block per token, 4 warps; a warp takes one selected slot at a
     time, lanes over the dI dims (warp sums for qI_j . kI); block reductions for the lse
     of the scores, the renormalized p and the loss; the backward adds each slot's dkI
     row into an fp32 accumulator (red.global.add; by default stored per pair instead, see
     DETERMINISM), keeps dqI and dw in registers, merged over the warps.

   DETERMINISM (Gpu.nondeterministic == 0, the default: the same bits every run on one GPU).
     Order-free already: the indexer scores (no atomics), the top-k (integer shared-memory
     counts only), sparse_mask (integer atomicOr), the forward (the warps merged in a fixed
     order), dq (likewise), the KL's loss, dqI and dw (block sums and fixed-order merges).
     Made so here (each was an fp32 atomic whose order varies):
     - dK, dV of the gathers' backward and dkI of the KL: the query-major passes STORE each
       (token, slot) pair's fp32 row in a stage (sparse_bwd flags 16, through the mode-2
       staging; idx_kl flags 8) and key_reduce (sparse_kv_reduce, idx_dk_reduce) adds them
       key-major: a block per 64 keys of a sequence walks the tokens in ascending order,
       finds each token's run of slots inside its range (idx rows ascend with -1 after, as
       the select writes them: a pivot ballot and a count inside one stride), and one thread
       owns each accumulator element. The stage holds a chunk of tokens (SPARSE_STAGE_BUDGET,
       512 MB: 2048 tokens at k 512, hd 64; 4096 for the KL at dI 64), chunks reduced in turn.
       Key ranges alone are too few blocks (32 for a chunk of one sequence at T = 2048), so a
       chunk's tokens are split in up to 32 runs (sparse_reduce_splits_), each summed from
       zero into its own partial, and key_combine adds the partials in run order.
       The rows are the order-dependent path's, so the sums differ from it only by order.
     - psum (sparse_bwd) and sparse_probs when a token's heads span several blocks (KV > 1
       or H/KV > 16): one head block per launch with plain adds; stream order fixes the sum
       (one block per token: the single add onto zero was exact already).
     - tuning.sparse_bwd and tuning.sparse_kl's dkI red.v4 are the nondeterministic = 1
       path's (mode 3's key-range pass adds with shared atomics across warps and meets its
       token chunks with global reds: not order-free either); the default ignores them.
     The dense-tile organization is attn/dense.cu.h's (its dQ and KL determinism is there).
     COST, ESTIMATED (no GPU has run it yet): the stage is written and read back, fp32: 512 B
     per (token, head block, key) for dK/dV, 4*dI B for dkI, where the red.v4s moved the same
     bytes once, mostly within L2. At 8 x 8192, H 16, KV 1, k 512: 2 x 17 GB and 2 x 8.6 GB
     of HBM traffic, sfb0 7.8 -> ~16 ms, klb0 5.0 -> ~9.4 ms (plus key_reduce's searches,
     ~0.5 ms). The cost rules use their own ratios when deterministic (SPARSE_DENSE_RATIO_DET,
     SPARSE_KL_DENSE_RATIO_DET): at the 135M shape (16 x 2048, 9 heads on 3, k 512) the tiles
     are taken either way, so DSA's deterministic cost there is the tiles'; at T = 8192 with
     16 heads per kv head the deterministic rules take the tiles for both ops (the gathers
     ~16 / ~9.4 ms against ~15 / 8.2), at T = 16384 the gathers. tests/gpu_sparse_check
     prints a "det/nd ms" line per shape to calibrate both ratios. Possible next steps if the
     stage dominates: bf16 stage rows (half the traffic, sums of rounded terms) or a smaller
     budget that stays in L2.

   ABLATION MODES (Gpu.tuning, read per call; ablate --tune KEY=N; attn/dsa.h lists them): tuning.sparse_dense
     = 0 (gathers) / 1 (dense tiles under the bitmask, Hopper and hd 64); with
     Gpu.nondeterministic = 1 only (the default is DETERMINISM's path): tuning.sparse_bwd
     = 1 (psum stores), 2 (dk/dv staged, whole-row red.v4), 3 (dk/dv by the key-range
     kernel sparse_bwd_kv: shared-memory reductions, see attn/dsa.h), 9 (no dk/dv
     reductions: timing diagnostic only); tuning.sparse_kl = 1 (red.v4 dkI, a_j cache,
     lane-per-slot scores); tuning.sparse_topk = 1 (the block-per-row top-k, match.any in the
     first pass only; 0: in every pass; default 2: a warp per row when T <= 4096).
     Defaults (unset), the variants measured fastest on the H100 (2026-11-23,
     tests/gpu_sparse_check 433 passed, T = 8192): BWD 2 (7.8 ms fwd+bwd vs 11.2 for the
     per-fragment atomics, 0; 3 measured 32 ms), KL 1 (5.1 vs 10.5 ms), TOPK 1 (selection
     3.6 vs 3.9 ms). 0 selects each original path (the one described above).

   SCRATCH (gpu_alloc, grown on demand, kept in the Gpu (sparse_scratch); freed by
     gpu_free_all or, earlier, gpu_sparse_release): the selection bitmask of the dense-tile
     path (B*T*ceil(T/128)*16 bytes), the score chunk of
     gpu_indexer_select (<= SPARSE_SCORE_BUDGET), the backward's fp32 dk/dv accumulators
     (8*B*T*KV*hd bytes; mode 3 adds D, 4*B*T*H bytes; deterministic: the stage, <=
     SPARSE_STAGE_BUDGET), the KL backward's fp32 dkI accumulator (4*B*T*dI bytes;
     deterministic: its stage, <= SPARSE_STAGE_BUDGET).

   The default paths ran on the H100 (tests/gpu_sparse_check: 224 passed, 2026-11-23); the
   tuning.sparse_* modes have not; the deterministic path (2026-12-03) has run on no GPU yet.
   Written and NVRTC/ptxas-compiled for sm_80 and sm_90 (sm_90 registers then: scores 126,
   top-k 32, fwd 94, bwd 96, probs 32, KL 40 at the default sizes, no spills; ptxas 13.0 on
   2026-12-03: bwd 124, KL 60, sparse_kv_reduce 64 (hd 128: 124, 2 blocks an SM),
   idx_dk_reduce 59, key_combine 38; no spills on sm_80; on sm_90 sparse_kv_reduce at hd 32
   and 64 spills 8-16 bytes, ptxas's own choice far under the register limit, in a pass bound
   by its stage reads). Head widths (ptxas 13.0, sm_90, GROUP 4, 2026-12-03; fwd / bwd /
   probs registers): hd 72 on 80-wide tiles 124 / 168 / 62, 96 141 / 168 (4 bytes spilled) /
   56, 120 on 128-wide tiles 142 / 195 / 40 against 150 / 140 / 48 at 128, and 40 on 48-wide
   tiles (GROUP 32) 78 / 127 / 48; no other spills. None of these widths has run on a GPU yet.
   tests/gpu_sparse_check.c checks each kernel against the CPU reference
   and times them (make gpucheck). Expected costs at B*T = 65536, k = 512, H = 16, KV = 1:
   the forward gathers 256 B of K/V per (token, key) pair, ~8.6 GB from L2; the backward
   the same plus 512 B of fp32 reductions per pair, which may bound it (attn/dsa.h).

   SOURCE CONVENTIONS: those of kernels.cu.h (one C string literal per CUDA line,
   KSRC_LINE, raw-bit bf16, no headers but gpu.h's in-memory ablate_common.cuh and ablate_mma.cuh).
*/
#ifndef KERNELS_SPARSE_CU_H
#define KERNELS_SPARSE_CU_H

#include "../gpu.h" /* first: it settles ABLATE_NO_CUDA (the GPU is opt-in) */
#include "dense.cu.h" /* the dense-tile organization: gpu_attention_select_* */
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

GPUDEF void gpu_indexer_scores(Gpu *gpu, float *scores, const void *qI, const void *kI, const void *w,
                               int B, int T, int HI, int dI, int prec);
GPUDEF void gpu_indexer_topk(Gpu *gpu, int *idx, const float *scores, int B, int T, int topk);
GPUDEF void gpu_indexer_select(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                               int B, int T, int HI, int dI, int topk, int prec);
GPUDEF void gpu_indexer_select_adaptive(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                                        int B, int T, int HI, int dI, int topk, int prec, int kmin, int pct);
GPUDEF void gpu_sparse_attention_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                         const void *v, const int *idx, int B, int T, int H, int KV, int hd,
                                         int topk);
GPUDEF void gpu_sparse_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *psum,
                                          const void *dout, const void *out, const float *lse,
                                          const void *q, const void *k, const void *v, const int *idx,
                                          int B, int T, int H, int KV, int hd, int topk);
GPUDEF void gpu_sparse_attention_probs(Gpu *gpu, float *p, const void *q, const void *k, const float *lse,
                                       const int *idx, int B, int T, int H, int KV, int hd, int topk);
GPUDEF void gpu_indexer_kl_forward(Gpu *gpu, float *loss, const float *p, const void *qI, const void *kI,
                                   const void *w, const int *idx, int B, int T, int HI, int dI, int topk);
GPUDEF void gpu_indexer_kl_backward(Gpu *gpu, float *loss, void *dqI, void *dkI, void *dw, const float *p,
                                    const void *qI, const void *kI, const void *w, const int *idx,
                                    int B, int T, int HI, int dI, int topk, float dloss);
GPUDEF void gpu_sparse_release(Gpu *gpu);
/* the modules (gpu_kernel_prewarm's specs) the calls above ask for with H query heads on KV,
   head dim hd and an indexer of HI heads of dI, the dense-tile variants' included, into out (at
   most max); returns how many there are. Built with the calls' own option builders */
GPUDEF int gpu_sparse_kernels(const Gpu *gpu, int H, int KV, int hd, int HI, int dI, GpuKernelSpec *out, int max);
GPUDEF int sparse_kernels_compile_check(const char *arch);
#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* KERNELS_SPARSE_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(KERNELS_SPARSE_IMPLEMENTATION_DONE)
#define KERNELS_SPARSE_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

#ifndef KSRC_LINE
#define KSRC_STR_(x) #x
#define KSRC_STR(x) KSRC_STR_(x)
#define KSRC_LINE(file) "#line " KSRC_STR(__LINE__) " \"" file "\"\n"
#endif

#ifndef SPARSE_SCORE_BUDGET
#define SPARSE_SCORE_BUDGET ((size_t)512 << 20) /* bytes of fp32 scores per select chunk */
#endif
#ifndef SPARSE_TOPK_CACHE
#define SPARSE_TOPK_CACHE (160 * 1024)          /* a row up to this many bytes is cached in smem */
#endif
#define SPARSE_MAX_TOPK_ 2048
/* the options of the source's module of shared kernels (SPARSE_PART 0) */
#define SPARSE_COMMON_OPTS "-DSPARSE_PART=0"
#ifndef SPARSE_KL_ACACHE
#define SPARSE_KL_ACACHE (64 * 1024)             /* bytes of the KL backward's a_j cache */
#endif

/* ---------------------------------------------------------------- kernels */
static const char SPARSE_KERNELS_SRC[] =
KSRC_LINE("attn/dsa.cu.h") "// DSA sparse attention and lightning indexer kernels, bf16 tensor cores (mma.sync\n"
"// m16n8k16, ldmatrix, cp.async; sm_80 and later). Host code and the design notes are\n"
"// in this header's top comment. Compile-time parameters (host -D options):\n"
"//   HD     attention head dim: a multiple of 8, 32..256 (strides, loads and stores)\n"
"//   HDP    the register tiles' and shared-memory rows' width: HD rounded up to a\n"
"//          multiple of 16 (default HD). Columns HD..HDP-1 are zero-filled by the\n"
"//          cp.async that loads each row (src-size 0: never read from memory), so they\n"
"//          add 0 to every q.k and give zero output columns, which are never stored\n"
"//   HB     query heads per attention block (<= 16), all reading one kv head; the\n"
"//          block's 16-row M tile holds them (rows >= HB are zero padding)\n"
"//   GROUP  query heads per kv head (H / KV)\n"
"//   DI, HI indexer head dim (32, 64, 128) and indexer heads (<= 16)\n"
"// Layouts: q, out, dout [B,T,H,HD]; k, v [B,T,KV,HD]; lse [B,H,T] fp32; idx [B,T,K]\n"
"// int32 (positions in the sequence, -1 = unused slot); qI [B,T,HI,DI], kI [B,T,DI],\n"
"// w [B,T,HI]; p [B,T,K] fp32. bf16 is raw 16-bit (ablate_common.cuh).\n"
"//\n"
"// mma.m16n8k16 fragments (g = lane/4, t = lane%4), as in attn/dense.cu.h:\n"
"//   A 16x16: a0 (row g, cols 2t,2t+1) a1 (row g+8) a2 (row g, cols 2t+8,+9) a3 (row g+8, cols 2t+8,+9)\n"
"//   C 16x8 : c0,c1 (row g, cols 2t,2t+1)  c2,c3 (row g+8)\n"
"#include \"ablate_common.cuh\"\n"
"\n"
"#ifndef HD\n"
"#define HD 64\n"
"#endif\n"
"#ifndef HDP\n"
"#define HDP HD\n"
"#endif\n"
"#if HD % 8 != 0 || HDP % 16 != 0 || HDP < HD || HDP - HD >= 16 || HDP > 256\n"
"#error \"HD must be a multiple of 8 and HDP = HD rounded up to 16, at most 256\"\n"
"#endif\n"
"#ifndef HB\n"
"#define HB 16\n"
"#endif\n"
"#ifndef GROUP\n"
"#define GROUP 16\n"
"#endif\n"
"#ifndef DI\n"
"#define DI 64\n"
"#endif\n"
"#ifndef HI\n"
"#define HI 4\n"
"#endif\n"
"// SPARSE_PART: the kernels this module holds. The launchers compile the source as three\n"
"// modules, each with a third of the kernels (a third of the NVRTC time, the three in\n"
"// parallel): 0 the shared ones (top-k, the mask, fill, the indexer's prep, unpad and adapt),\n"
"// 1 the attention (HD, HDP, HB, GROUP), 2 the indexer's scores and KL (DI, HI). Undefined:\n"
"// all of them.\n"
"#ifndef SPARSE_PART\n"
"#define SPARSE_PART (-1)\n"
"#endif\n"
"#define SP_PART(p) (SPARSE_PART < 0 || SPARSE_PART == (p))\n"
"#if HB > 16 || GROUP % HB != 0\n"
"#error \"HB must be <= 16 and divide GROUP\"\n"
"#endif\n"
"\n"
"#define LOG2E 1.4426950408889634f\n"
"#define LN2 0.6931471805599453f\n"
"#define FULL 0xffffffffu\n"
"\n"
"// ---------------------------------------------------------------- helpers\n"
"#include \"ablate_mma.cuh\"           // cp.async, ldmatrix, mma.sync, bf16x2, ex2\n"
"// fp32 reductions into global memory (vector forms on sm_90)\n"
"__device__ __forceinline__ void red_add2(float *p, float a, float b) {\n"
"#if __CUDA_ARCH__ >= 900\n"
"    asm volatile(\"red.global.add.v2.f32 [%0], {%1, %2};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b) : \"memory\");\n"
"#else\n"
"    atomicAdd(p, a);\n"
"    atomicAdd(p + 1, b);\n"
"#endif\n"
"}\n"
"__device__ __forceinline__ void red_add4(float *p, float a, float b, float c, float d) {\n"
"#if __CUDA_ARCH__ >= 900\n"
"    asm volatile(\"red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b), \"f\"(c), \"f\"(d) : \"memory\");\n"
"#else\n"
"    atomicAdd(p, a);\n"
"    atomicAdd(p + 1, b);\n"
"    atomicAdd(p + 2, c);\n"
"    atomicAdd(p + 3, d);\n"
"#endif\n"
"}\n"
"// Add one 16x8 C tile (rows = keys A (g) and B (g + 8), 8 columns from col0) times `scale`\n"
"// into rows rowA / rowB of a fp32 accumulator with ONE red.v4 per lane: lanes t, t^1 swap\n"
"// halves so even lanes hold 4 adjacent columns of key A, odd lanes of key B (the lane\n"
"// whose key is an unused slot adds nothing; every lane takes part in the shuffles).\n"
"__device__ __forceinline__ void red_tile(float *rowA, float *rowB, bool okA, bool okB, const float c[4],\n"
"                                         int col0, int t4, float scale) {\n"
"    const bool odd = t4 & 1;\n"
"    const float s0 = odd ? c[0] : c[2], s1 = odd ? c[1] : c[3];\n"
"    const float r0 = __shfl_xor_sync(FULL, s0, 1), r1 = __shfl_xor_sync(FULL, s1, 1);\n"
"    const float x0 = odd ? r0 : c[0], x1 = odd ? r1 : c[1], x2 = odd ? c[2] : r0, x3 = odd ? c[3] : r1;\n"
"    const int col = col0 + 2 * (t4 & 2);\n"
"    if (odd ? okB : okA)\n"
"        red_add4((odd ? rowB : rowA) + col, x0 * scale, x1 * scale, x2 * scale, x3 * scale);\n"
"}\n"
"// the orderable key of a float: larger float <=> larger unsigned key\n"
"__device__ __forceinline__ u32 fkey(float f) {\n"
"    u32 u = __float_as_uint(f + 0.0f);  // -0 -> +0: the CPU compares them equal\n"
"    return u ^ ((u >> 31) ? 0xffffffffu : 0x80000000u);\n"
"}\n"
"\n"
"// ================================================================ indexer scores\n"
"// scores (fp32) of a chunk of query rows: sequences b0.., rows q0..q0+R-1 of each; row r\n"
"// of sequence b0+bi is stored at scores + (bi*R + r - q0) * T. Only key tiles up to the\n"
"// diagonal are written; inside the diagonal tile, keys s > t get -inf.\n"
"// grid (ceil(R/64), sequences in the chunk), 4 warps of 16 query rows; key tiles of 64\n"
"// double-buffered by cp.async. Per warp and tile, for each indexer head j:\n"
"// S_j = qI_j K^T on the tensor cores, then acc += w_j * ReLU(S_j) in registers.\n"
"#define IX_BM 64\n"
"#define IX_BN 64\n"
"#define LQI (HI * DI + 8)   // smem row stride of the query tile: all HI heads of a row\n"
"#define LKI (DI + 8)        // smem row stride of a key tile (+16 B: conflict-free ldmatrix)\n"
"\n"
"__device__ __forceinline__ void idx_load_keys(bf16 *s, const bf16 *kb, int n0, int T) {\n"
"    const int CH = DI / 8;\n"
"    for (int i = threadIdx.x; i < IX_BN * CH; i += 128) {\n"
"        int r = i / CH, c = i % CH, row = n0 + r;\n"
"        bool ok = row < T;\n"
"        cp_async16(s + r * LKI + c * 8, kb + (long)(ok ? row : 0) * DI + c * 8, ok);\n"
"    }\n"
"}\n"
"\n"
"#if SP_PART(2)\n"
"extern \"C\" __global__ void __launch_bounds__(128)\n"
"idx_scores_bf16(float *scores, const bf16 *qI, const bf16 *kI, const bf16 *w, int T, int b0, int q0, int R) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    bf16 *sQ = (bf16 *)smem_raw;                  // [IX_BM][LQI]\n"
"    bf16 *sK = sQ + IX_BM * LQI;                  // [2][IX_BN][LKI]\n"
"    float *sW = (float *)(sK + 2 * IX_BN * LKI);  // [IX_BM][HI]\n"
"    const int bi = blockIdx.y, b = b0 + bi;\n"
"    // the last row blocks (most key tiles) are scheduled first\n"
"    const int m0 = q0 + (gridDim.x - 1 - blockIdx.x) * IX_BM;\n"
"    const int mend = min(T, q0 + R);\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const bf16 *qb = qI + (long)b * T * HI * DI;\n"
"    const bf16 *kb = kI + (long)b * T * DI;\n"
"\n"
"    const int QCH = HI * DI / 8;\n"
"    for (int i = threadIdx.x; i < IX_BM * QCH; i += 128) {\n"
"        int r = i / QCH, c = i % QCH, row = m0 + r;\n"
"        bool ok = row < mend;\n"
"        cp_async16(sQ + r * LQI + c * 8, qb + (long)(ok ? row : 0) * HI * DI + c * 8, ok);\n"
"    }\n"
"    for (int i = threadIdx.x; i < IX_BM * HI; i += 128) {\n"
"        int r = i / HI, row = m0 + r;\n"
"        sW[i] = row < mend ? bf2f(w[((long)b * T + row) * HI + i % HI]) : 0.f;\n"
"    }\n"
"    idx_load_keys(sK, kb, 0, T);\n"
"    cp_async_commit();\n"
"\n"
"    const int r0 = m0 + warp * 16;\n"
"    const int jhi = (min(mend, m0 + IX_BM) - 1) / IX_BN;\n"
"    const bool vec2 = (T & 1) == 0;\n"
"    for (int j = 0; j <= jhi; j++) {\n"
"        const int buf = j & 1;\n"
"        if (j < jhi) {\n"
"            idx_load_keys(sK + (buf ^ 1) * IX_BN * LKI, kb, (j + 1) * IX_BN, T);\n"
"            cp_async_commit();\n"
"            cp_async_wait<1>();\n"
"        } else {\n"
"            cp_async_wait<0>();\n"
"        }\n"
"        __syncthreads();\n"
"        const int n0 = j * IX_BN;\n"
"        if (n0 <= r0 + 15 && r0 < mend) {\n"
"            const bf16 *Kt = sK + buf * IX_BN * LKI;\n"
"            float acc[IX_BN / 8][4];\n"
"#pragma unroll\n"
"            for (int i = 0; i < IX_BN / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;\n"
"#pragma unroll 1\n"
"            for (int hh = 0; hh < HI; hh++) {\n"
"                float s[IX_BN / 8][4];\n"
"#pragma unroll\n"
"                for (int i = 0; i < IX_BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;\n"
"#pragma unroll\n"
"                for (int kk = 0; kk < DI / 16; kk++) {\n"
"                    unsigned a[4];\n"
"                    ldsm_x4(a, sQ + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LQI + hh * DI + kk * 16 + (lane >> 4) * 8);\n"
"#pragma unroll\n"
"                    for (int nn = 0; nn < IX_BN / 16; nn++) {\n"
"                        unsigned bfr[4];\n"
"                        ldsm_x4(bfr, Kt + (nn * 16 + (lane & 7) + (lane >> 4) * 8) * LKI + kk * 16 + ((lane >> 3) & 1) * 8);\n"
"                        mma(s[2 * nn], a, bfr[0], bfr[1]);\n"
"                        mma(s[2 * nn + 1], a, bfr[2], bfr[3]);\n"
"                    }\n"
"                }\n"
"                const float w0 = sW[(warp * 16 + g) * HI + hh], w1 = sW[(warp * 16 + g + 8) * HI + hh];\n"
"#pragma unroll\n"
"                for (int i = 0; i < IX_BN / 8; i++) {\n"
"                    acc[i][0] += w0 * fmaxf(s[i][0], 0.f);\n"
"                    acc[i][1] += w0 * fmaxf(s[i][1], 0.f);\n"
"                    acc[i][2] += w1 * fmaxf(s[i][2], 0.f);\n"
"                    acc[i][3] += w1 * fmaxf(s[i][3], 0.f);\n"
"                }\n"
"            }\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                const int row = r0 + g + 8 * r;\n"
"                if (row >= mend) continue;\n"
"                float *dst = scores + ((long)bi * R + row - q0) * T;\n"
"#pragma unroll\n"
"                for (int i = 0; i < IX_BN / 8; i++) {\n"
"                    const int col = n0 + i * 8 + 2 * t4;\n"
"                    float x0 = col > row ? NEG_INF : acc[i][2 * r], x1 = col + 1 > row ? NEG_INF : acc[i][2 * r + 1];\n"
"                    if (vec2 && col + 1 < T) *(float2 *)(dst + col) = make_float2(x0, x1);\n"
"                    else {\n"
"                        if (col < T) dst[col] = x0;\n"
"                        if (col + 1 < T) dst[col + 1] = x1;\n"
"                    }\n"
"                }\n"
"            }\n"
"        }\n"
"        __syncthreads();  // the next prefetch overwrites this tile's buffer\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// The same scores from fp32 qI, kI, w on CUDA cores (ATTN_DSA_PREC_FP32). Same grid; 256\n"
"// threads, each computing 4 query rows x 4 keys of the 64x64 tile, one head at a time.\n"
"#define LF (DI + 1)\n"
"#if SP_PART(2)\n"
"extern \"C\" __global__ void __launch_bounds__(256)\n"
"idx_scores_f32(float *scores, const float *qI, const float *kI, const float *w, int T, int b0, int q0, int R) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    float *sQ = (float *)smem_raw;   // [IX_BM][LF]   one head of the query rows\n"
"    float *sK = sQ + IX_BM * LF;     // [IX_BN][LF]\n"
"    const int bi = blockIdx.y, b = b0 + bi;\n"
"    const int m0 = q0 + (gridDim.x - 1 - blockIdx.x) * IX_BM;\n"
"    const int mend = min(T, q0 + R);\n"
"    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;  // keys tx + 16 j, rows ty + 16 i\n"
"    const int jhi = (min(mend, m0 + IX_BM) - 1) / IX_BN;\n"
"    for (int j = 0; j <= jhi; j++) {\n"
"        const int n0 = j * IX_BN;\n"
"        float acc[4][4];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;\n"
"        __syncthreads();\n"
"        for (int i = threadIdx.x; i < IX_BN * DI; i += 256) {\n"
"            int r = i / DI, c = i % DI, row = n0 + r;\n"
"            sK[r * LF + c] = row < T ? kI[((long)b * T + row) * DI + c] : 0.f;\n"
"        }\n"
"        for (int hh = 0; hh < HI; hh++) {\n"
"            __syncthreads();\n"
"            for (int i = threadIdx.x; i < IX_BM * DI; i += 256) {\n"
"                int r = i / DI, c = i % DI, row = m0 + r;\n"
"                sQ[r * LF + c] = row < mend ? qI[(((long)b * T + row) * HI + hh) * DI + c] : 0.f;\n"
"            }\n"
"            __syncthreads();\n"
"            float s[4][4];\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;\n"
"            for (int c = 0; c < DI; c++) {\n"
"                float qv[4], kv[4];\n"
"#pragma unroll\n"
"                for (int i = 0; i < 4; i++) { qv[i] = sQ[(ty + 16 * i) * LF + c]; kv[i] = sK[(tx + 16 * i) * LF + c]; }\n"
"#pragma unroll\n"
"                for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 4; e++) s[i][e] = fmaf(qv[i], kv[e], s[i][e]);\n"
"            }\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++) {\n"
"                const int row = m0 + ty + 16 * i;\n"
"                const float wv = row < mend ? w[((long)b * T + row) * HI + hh] : 0.f;\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) acc[i][e] += wv * fmaxf(s[i][e], 0.f);\n"
"            }\n"
"        }\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++) {\n"
"            const int row = m0 + ty + 16 * i;\n"
"            if (row >= mend) continue;\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                const int col = n0 + tx + 16 * e;\n"
"                if (col < T) scores[((long)bi * R + row - q0) * T + col] = col > row ? NEG_INF : acc[i][e];\n"
"            }\n"
"        }\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// ================================================================ top-k select\n"
"// One block per query row t: the k largest of scores[0..t] by a 4-pass radix select\n"
"// (8 bits a pass, from the top) on the orderable keys, then an ordered compaction:\n"
"// everything above the threshold key, and of the keys equal to it the lowest positions\n"
"// first, written in ascending position order (ties: lower position wins; the CPU\n"
"// reference does the same). cache != 0: the row is first copied to shared memory.\n"
"#define TK_THREADS 256\n"
"#define TK_WARPS (TK_THREADS / 32)\n"
"// one radix pass's histogram: the keys of v[0..n) under `prefix` (on the bits of himask) by\n"
"// digit (key >> shift) & 255; this thread takes i = first, first + step, ... (every lane of a\n"
"// warp runs the same trips). aggr: lanes sharing a bin add once (the first pass's keys crowd\n"
"// a few exponent bins, where plain shared atomics would serialize)\n"
"__device__ __forceinline__ void tk_hist(int *hist, const float *v, int n, int first, int step, u32 prefix,\n"
"                                        u32 himask, int shift, bool aggr, int lane) {\n"
"    for (int i0 = 0; i0 < n; i0 += step) {\n"
"        const int i = i0 + first;\n"
"        const u32 key = i < n ? fkey(v[i]) : 0u;\n"
"        const bool in = i < n && (key & himask) == prefix;\n"
"        const int bin = in ? (int)((key >> shift) & 255) : -1;\n"
"        if (aggr) {\n"
"            const unsigned same = __match_any_sync(FULL, bin);\n"
"            if (in && lane == __ffs(same) - 1) atomicAdd(&hist[bin], __popc(same));\n"
"        } else if (in) {\n"
"            atomicAdd(&hist[bin], 1);\n"
"        }\n"
"    }\n"
"}\n"
"// a whole warp, after the pass: lane L owns digits 255-8L down to 248-8L, counts accumulate\n"
"// from the top digit; the one lane whose digits hold the need-th largest key returns true\n"
"// with *np = the prefix extended by that digit and *nn = how many keys of it are still needed\n"
"__device__ __forceinline__ bool tk_digit(const int *hist, int lane, u32 prefix, int need, int shift, u32 *np,\n"
"                                         int *nn) {\n"
"    int c[8], tot = 0;\n"
"#pragma unroll\n"
"    for (int e = 0; e < 8; e++) { c[e] = hist[255 - 8 * lane - e]; tot += c[e]; }\n"
"    int incl = tot;\n"
"#pragma unroll\n"
"    for (int o = 1; o < 32; o <<= 1) {\n"
"        const int y = __shfl_up_sync(FULL, incl, o);\n"
"        if (lane >= o) incl += y;\n"
"    }\n"
"    int cum = incl - tot;\n"
"    if (cum >= need || incl < need) return false;\n"
"#pragma unroll\n"
"    for (int e = 0; e < 8; e++) {\n"
"        if (cum + c[e] >= need) {\n"
"            *np = prefix | ((u32)(255 - 8 * lane - e) << shift);\n"
"            *nn = need - cum;\n"
"            break;\n"
"        }\n"
"        cum += c[e];\n"
"    }\n"
"    return true;\n"
"}\n"
"// a warp's in-order sweep of v[s0..s1): the selected positions (keys above thr, and keys equal\n"
"// to it while fewer than `need` equal ones came first; eqr of them lie before s0) go to\n"
"// out[pos..] in ascending order\n"
"__device__ __forceinline__ void tk_write(int *out, const float *v, int s0, int s1, u32 thr, int need, int eqr,\n"
"                                         int pos, int lane) {\n"
"    const unsigned lt = (1u << lane) - 1u;\n"
"    for (int i0 = s0; i0 < s1; i0 += 32) {\n"
"        const int i = i0 + lane;\n"
"        const u32 key = i < s1 ? fkey(v[i]) : 0u;\n"
"        const unsigned be = __ballot_sync(FULL, i < s1 && key == thr);\n"
"        const bool sel = i < s1 && (key > thr || (key == thr && eqr + __popc(be & lt) < need));\n"
"        const unsigned bs = __ballot_sync(FULL, sel);\n"
"        if (sel) out[pos + __popc(bs & lt)] = i;\n"
"        pos += __popc(bs);\n"
"        eqr += __popc(be);\n"
"    }\n"
"}\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void __launch_bounds__(TK_THREADS)\n"
"idx_topk(int *idx, const float *scores, int T, int b0, int q0, int R, int K, int cache, int aggr_passes) {\n"
"    extern __shared__ __align__(16) float srow[];\n"
"    __shared__ int hist[256];\n"
"    __shared__ u32 s_prefix;\n"
"    __shared__ int s_need;\n"
"    __shared__ int wsum[TK_WARPS];\n"
"    const int bi = blockIdx.y, b = b0 + bi;\n"
"    const int t = q0 + (gridDim.x - 1 - blockIdx.x);  // longest rows first\n"
"    if (t >= T) return;\n"
"    int *out = idx + ((long)b * T + t) * K;\n"
"    const int n = t + 1;\n"
"    if (n <= K) {\n"
"        for (int i = threadIdx.x; i < K; i += TK_THREADS) out[i] = i < n ? i : -1;\n"
"        return;\n"
"    }\n"
"    const float *v = scores + ((long)bi * R + t - q0) * T;\n"
"    if (cache) {\n"
"        for (int i = threadIdx.x; i < n; i += TK_THREADS) srow[i] = v[i];\n"
"        v = srow;\n"
"    }\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    u32 prefix = 0;\n"
"    int need = K;\n"
"    for (int pass = 0; pass < 4; pass++) {\n"
"        const int shift = 24 - 8 * pass;\n"
"        const u32 himask = pass == 0 ? 0u : 0xffffffffu << (shift + 8);\n"
"        for (int i = threadIdx.x; i < 256; i += TK_THREADS) hist[i] = 0;\n"
"        __syncthreads();\n"
"        // warp-aggregated: the lanes that share a bin add once (scores cluster in a few\n"
"        // exponent bins in the first pass; plain atomics would serialize on them). Passes\n"
"        // >= aggr_passes use plain shared atomics by the `in` lanes only: past the first\n"
"        // pass few elements match the prefix and they spread over the bins, so the\n"
"        // match.any (issued for every element) may cost more than it saves\n"
"        // (ABLATE_SPARSE_TOPK=1 sets aggr_passes = 1; the counts are the same either way)\n"
"        tk_hist(hist, v, n, threadIdx.x, TK_THREADS, prefix, himask, shift, pass < aggr_passes, lane);\n"
"        __syncthreads();\n"
"        if (warp == 0) {\n"
"            u32 np;\n"
"            int nn;\n"
"            if (tk_digit(hist, lane, prefix, need, shift, &np, &nn)) {  // exactly one lane\n"
"                s_prefix = np;\n"
"                s_need = nn;\n"
"            }\n"
"        }\n"
"        __syncthreads();\n"
"        prefix = s_prefix;\n"
"        need = s_need;\n"
"    }\n"
"    // prefix: the k-th largest key; need: how many keys equal to it are taken.\n"
"    // Ordered compaction: warp w scans the contiguous segment [w*seg, w*seg+seg).\n"
"    const u32 thr = prefix;\n"
"    const int seg = (n + TK_WARPS - 1) / TK_WARPS, s0 = warp * seg, s1 = min(n, s0 + seg);\n"
"    const unsigned lt = (1u << lane) - 1u;\n"
"    int ceq = 0;\n"
"    for (int i0 = s0; i0 < s1; i0 += 32) {\n"
"        const int i = i0 + lane;\n"
"        ceq += __popc(__ballot_sync(FULL, i < s1 && fkey(v[i]) == thr));\n"
"    }\n"
"    if (lane == 0) wsum[warp] = ceq;\n"
"    __syncthreads();\n"
"    int eq_before = 0;\n"
"    for (int x = 0; x < warp; x++) eq_before += wsum[x];\n"
"    __syncthreads();\n"
"    int csel = 0, eqr = eq_before;\n"
"    for (int i0 = s0; i0 < s1; i0 += 32) {\n"
"        const int i = i0 + lane;\n"
"        const u32 key = i < s1 ? fkey(v[i]) : 0u;\n"
"        const unsigned be = __ballot_sync(FULL, i < s1 && key == thr);\n"
"        const bool sel = i < s1 && (key > thr || (key == thr && eqr + __popc(be & lt) < need));\n"
"        csel += __popc(__ballot_sync(FULL, sel));\n"
"        eqr += __popc(be);\n"
"    }\n"
"    if (lane == 0) wsum[warp] = csel;\n"
"    __syncthreads();\n"
"    int pos = 0;\n"
"    for (int x = 0; x < warp; x++) pos += wsum[x];\n"
"    tk_write(out, v, s0, s1, thr, need, eq_before, pos, lane);\n"
"}\n"
"#endif\n"
"\n"
"// Rows of up to SPARSE_TOPK_WARP_T scores: one warp per row, TKW_WARPS rows a block, the same\n"
"// radix select and ties rule without block barriers (a warp's histogram and row cache are its\n"
"// own), and a single in-order sweep for the compaction. Many light rows in flight instead of\n"
"// one 256-thread block per row, whose barriers dominated at T = 2048.\n"
"#define TKW_WARPS 4\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void __launch_bounds__(TKW_WARPS * 32)\n"
"idx_topk_warp(int *idx, const float *scores, int T, int b0, int q0, int R, int K) {\n"
"    extern __shared__ __align__(16) float swrow[];  // [TKW_WARPS][T]\n"
"    __shared__ int whist[TKW_WARPS][256];\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    const int bi = blockIdx.y, b = b0 + bi;\n"
"    const int t = q0 + R - 1 - (blockIdx.x * TKW_WARPS + warp);  // longest rows first\n"
"    if (t < q0 || t >= T) return;\n"
"    int *out = idx + ((long)b * T + t) * K;\n"
"    const int n = t + 1;\n"
"    if (n <= K) {\n"
"        for (int i = lane; i < K; i += 32) out[i] = i < n ? i : -1;\n"
"        return;\n"
"    }\n"
"    float *v = swrow + (long)warp * T;\n"
"    const float *src = scores + ((long)bi * R + t - q0) * T;\n"
"    for (int i = lane; i < n; i += 32) v[i] = src[i];\n"
"    int *hist = whist[warp];\n"
"    u32 prefix = 0u;\n"
"    int need = K;\n"
"    for (int pass = 0; pass < 4; pass++) {\n"
"        const int shift = 24 - 8 * pass;\n"
"        const u32 himask = pass == 0 ? 0u : 0xffffffffu << (shift + 8);\n"
"        for (int i = lane; i < 256; i += 32) hist[i] = 0;\n"
"        __syncwarp();\n"
"        tk_hist(hist, v, n, lane, 32, prefix, himask, shift, pass == 0, lane);\n"
"        __syncwarp();\n"
"        u32 np = 0u;\n"
"        int nn = 0;\n"
"        const bool found = tk_digit(hist, lane, prefix, need, shift, &np, &nn);  // exactly one lane\n"
"        const int from = __ffs(__ballot_sync(FULL, found)) - 1;\n"
"        prefix = __shfl_sync(FULL, np, from);\n"
"        need = __shfl_sync(FULL, nn, from);\n"
"        __syncwarp();  // every lane has read hist before the next pass clears it\n"
"    }\n"
"    // prefix: the k-th largest key; need: how many keys equal to it are taken, lowest first\n"
"    tk_write(out, v, 0, n, prefix, need, 0, 0, lane);\n"
"}\n"
"#endif\n"
"\n"
"// ================================================================ sparse attention\n"
"// One block per (token, chunk of HB query heads sharing a kv head); SA_WARPS warps. The\n"
"// selected slots are cut into groups of 16; warp w takes groups w, w+SA_WARPS, ... (so a\n"
"// tile of 16*SA_WARPS = 64 slots is gathered per round), gathering each group's K and V\n"
"// rows into its own double-buffered shared memory by cp.async (no block barriers in the\n"
"// loop). The M dimension of every mma is the block's heads: S = Q K^T is 16 heads x 16\n"
"// keys. Groups whose 16 slots are all unused (-1) are skipped.\n"
"#define SA_WARPS 4\n"
"#define LDS (HDP + 8)   // smem row stride (elements)\n"
"#define SA_SLICE (4 * 16 * LDS)   // bf16 per warp: [2 buffers][K, V][16 rows][LDS]\n"
"\n"
"// the first group >= from (stepping SA_WARPS) with a used slot; NG if none\n"
"__device__ __forceinline__ int sa_next_group(const int *sIdx, int from, int K, int lane) {\n"
"    const int NG = (K + 15) >> 4;\n"
"    for (int x = from; x < NG; x += SA_WARPS) {\n"
"        const int sl = x * 16 + (lane & 15);\n"
"        if (__any_sync(FULL, sl < K && sIdx[sl] >= 0)) return x;\n"
"    }\n"
"    return NG;\n"
"}\n"
"// gather the 16 rows of group x (row = position sIdx[slot] of base, stride elements apart)\n"
"// (16-byte chunks past HD: the padding, zero-filled without a read, every time: the staged\n"
"// backward reuses the buffers as fp32 scratch)\n"
"__device__ __forceinline__ void sa_gather(bf16 *dst, const bf16 *base, long stride, const int *sIdx, int x, int K, int lane) {\n"
"    const int CH = HDP / 8;\n"
"#pragma unroll\n"
"    for (int i = lane; i < 16 * CH; i += 32) {\n"
"        const int r = i / CH, c = i % CH, sl = x * 16 + r;\n"
"        const int s = sl < K ? sIdx[sl] : -1;\n"
"        const bool real = HDP == HD || c < HD / 8;\n"
"        cp_async16(dst + r * LDS + c * 8, base + (long)(s >= 0 ? s : 0) * stride + (real ? c * 8 : 0), s >= 0 && real);\n"
"    }\n"
"}\n"
"// group x's K and V rows into a warp's buffer (K at dst, V 16 rows after), one cp.async group\n"
"__device__ __forceinline__ void sa_gather_kv(bf16 *dst, const bf16 *kb, const bf16 *vb, long ks, const int *sIdx,\n"
"                                             int x, int K, int lane) {\n"
"    sa_gather(dst, kb, ks, sIdx, x, K, lane);\n"
"    sa_gather(dst + 16 * LDS, vb, ks, sIdx, x, K, lane);\n"
"    cp_async_commit();\n"
"}\n"
"// a warp's step through its groups, double-buffered: the group after cur starts loading into\n"
"// the other buffer, then cur's K and V (buffer buf) are waited for. Returns that next group\n"
"// (NG = (K + 15) / 16 when none is left).\n"
"__device__ __forceinline__ int sa_advance_kv(bf16 *slice, int buf, const bf16 *kb, const bf16 *vb, long ks,\n"
"                                             const int *sIdx, int cur, int K, int lane) {\n"
"    const int nxt = sa_next_group(sIdx, cur + SA_WARPS, K, lane);\n"
"    if (nxt < ((K + 15) >> 4)) {\n"
"        sa_gather_kv(slice + (buf ^ 1) * 2 * 16 * LDS, kb, vb, ks, sIdx, nxt, K, lane);\n"
"        cp_async_wait<1>();\n"
"    } else {\n"
"        cp_async_wait<0>();\n"
"    }\n"
"    __syncwarp();\n"
"    return nxt;\n"
"}\n"
"// 16 rows of HD bf16 from g (rows `stride` apart) into smem, rows >= nrows and columns\n"
"// HD..HDP-1 zero\n"
"__device__ __forceinline__ void sa_load16(bf16 *s, const bf16 *g, long stride, int nrows) {\n"
"    const int CH = HDP / 8;\n"
"    for (int i = threadIdx.x; i < 16 * CH; i += SA_WARPS * 32) {\n"
"        const int r = i / CH, c = i % CH;\n"
"        const bool real = HDP == HD || c < HD / 8;\n"
"        cp_async16(s + r * LDS + c * 8, g + (long)(r < nrows ? r : 0) * stride + (real ? c * 8 : 0), r < nrows && real);\n"
"    }\n"
"}\n"
"\n"
"// grid (B*T, H/HB), block SA_WARPS warps. Each warp keeps its own online-softmax state\n"
"// (max, sum, O) over its groups; the warps' states are merged at the end (split-K).\n"
"#if SP_PART(1)\n"
"extern \"C\" __global__ void __launch_bounds__(SA_WARPS * 32)\n"
"sparse_fwd(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const int *idx,\n"
"           int T, int H, int K, float scale_log2) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    bf16 *sQ = (bf16 *)smem_raw;                    // [16][LDS]\n"
"    bf16 *sKV = sQ + 16 * LDS;                      // [SA_WARPS][SA_SLICE]\n"
"    int *sIdx = (int *)(sKV + SA_WARPS * SA_SLICE); // [K]\n"
"    const long n = blockIdx.x;                      // token b*T + t\n"
"    const int b = (int)(n / T), t = (int)(n % T), h0 = blockIdx.y * HB, kvh = h0 / GROUP, KVn = H / GROUP;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long ks = (long)KVn * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD, *vb = v + (long)b * T * ks + kvh * HD;\n"
"\n"
"\n"
"    for (int i = threadIdx.x; i < K; i += SA_WARPS * 32) sIdx[i] = idx[n * K + i];\n"
"    sa_load16(sQ, q + (n * H + h0) * HD, HD, HB);\n"
"    cp_async_commit();\n"
"    cp_async_wait<0>();\n"
"    __syncthreads();\n"
"\n"
"    unsigned qf[HDP / 16][4];\n"
"#pragma unroll\n"
"    for (int kk = 0; kk < HDP / 16; kk++)\n"
"        ldsm_x4(qf[kk], sQ + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + kk * 16 + (lane >> 4) * 8);\n"
"    float o[HDP / 8][4];\n"
"#pragma unroll\n"
"    for (int i = 0; i < HDP / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;\n"
"    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};  // log2 units; lrow partial per thread\n"
"\n"
"    bf16 *slice = sKV + warp * SA_SLICE;\n"
"    const int NG = (K + 15) >> 4;\n"
"    int cur = sa_next_group(sIdx, warp, K, lane), buf = 0;\n"
"    if (cur < NG) sa_gather_kv(slice, kb, vb, ks, sIdx, cur, K, lane);\n"
"    while (cur < NG) {\n"
"        const int nxt = sa_advance_kv(slice, buf, kb, vb, ks, sIdx, cur, K, lane);\n"
"        const bf16 *Kt = slice + buf * 2 * 16 * LDS, *Vt = Kt + 16 * LDS;\n"
"        float s[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < HDP / 16; kk++) {\n"
"            unsigned bfr[4];\n"
"            ldsm_x4(bfr, Kt + ((lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);\n"
"            mma(s[0], qf[kk], bfr[0], bfr[1]);\n"
"            mma(s[1], qf[kk], bfr[2], bfr[3]);\n"
"        }\n"
"        // unused slots are -inf (their rows were zero-filled)\n"
"#pragma unroll\n"
"        for (int i = 0; i < 2; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                const int sl = cur * 16 + i * 8 + 2 * t4 + (e & 1);\n"
"                if (sl >= K || sIdx[sl] < 0) s[i][e] = NEG_INF;\n"
"            }\n"
"#pragma unroll\n"
"        for (int r = 0; r < 2; r++) {\n"
"            float mx = fmaxf(fmaxf(s[0][2 * r], s[0][2 * r + 1]), fmaxf(s[1][2 * r], s[1][2 * r + 1]));\n"
"            mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 1));\n"
"            mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 2));\n"
"            const float mnew = fmaxf(mrow[r], mx * scale_log2);\n"
"            const float muse = mnew == NEG_INF ? 0.f : mnew;\n"
"            const float alpha = fast_exp2(mrow[r] - muse);\n"
"            mrow[r] = mnew;\n"
"            float sum = 0.f;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 2; i++) {\n"
"                s[i][2 * r] = fast_exp2(fmaf(s[i][2 * r], scale_log2, -muse));\n"
"                s[i][2 * r + 1] = fast_exp2(fmaf(s[i][2 * r + 1], scale_log2, -muse));\n"
"                sum += s[i][2 * r] + s[i][2 * r + 1];\n"
"            }\n"
"            lrow[r] = lrow[r] * alpha + sum;\n"
"#pragma unroll\n"
"            for (int i = 0; i < HDP / 8; i++) { o[i][2 * r] *= alpha; o[i][2 * r + 1] *= alpha; }\n"
"        }\n"
"        const unsigned a[4] = {pack2(s[0][0], s[0][1]), pack2(s[0][2], s[0][3]), pack2(s[1][0], s[1][1]),\n"
"                               pack2(s[1][2], s[1][3])};\n"
"#pragma unroll\n"
"        for (int dn = 0; dn < HDP / 16; dn++) {\n"
"            unsigned bfr[4];\n"
"            ldsm_x4_t(bfr, Vt + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dn * 16 + (lane >> 4) * 8);\n"
"            mma(o[2 * dn], a, bfr[0], bfr[1]);\n"
"            mma(o[2 * dn + 1], a, bfr[2], bfr[3]);\n"
"        }\n"
"        __syncwarp();  // the next prefetch overwrites this buffer\n"
"        cur = nxt;\n"
"        buf ^= 1;\n"
"    }\n"
"\n"
"    // merge the warps: each writes (max, sum, O) into its own slice, then all combine (the\n"
"    // real columns only: [16][HD])\n"
"    float *sO = (float *)slice;          // [16][HD]\n"
"    float *sM = sO + 16 * HD, *sL = sM + 16;\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        float l = lrow[r];\n"
"        l += __shfl_xor_sync(FULL, l, 1);\n"
"        l += __shfl_xor_sync(FULL, l, 2);\n"
"        const int row = g + 8 * r;\n"
"        if (t4 == 0) { sM[row] = mrow[r]; sL[row] = l; }\n"
"#pragma unroll\n"
"        for (int i = 0; i < HD / 8; i++)\n"
"            *(float2 *)(sO + row * HD + i * 8 + 2 * t4) = make_float2(o[i][2 * r], o[i][2 * r + 1]);\n"
"    }\n"
"    __syncthreads();\n"
"    for (int i = threadIdx.x; i < HB * (HD / 2); i += SA_WARPS * 32) {\n"
"        const int row = i / (HD / 2), d = 2 * (i % (HD / 2));\n"
"        float M = NEG_INF;\n"
"#pragma unroll\n"
"        for (int x = 0; x < SA_WARPS; x++) M = fmaxf(M, ((float *)(sKV + x * SA_SLICE))[16 * HD + row]);\n"
"        float L = 0.f, o0 = 0.f, o1 = 0.f;\n"
"#pragma unroll\n"
"        for (int x = 0; x < SA_WARPS; x++) {\n"
"            const float *wO = (const float *)(sKV + x * SA_SLICE);\n"
"            const float mw = wO[16 * HD + row];\n"
"            const float f = mw == NEG_INF ? 0.f : fast_exp2(mw - M);\n"
"            L += f * wO[16 * HD + 16 + row];\n"
"            o0 += f * wO[row * HD + d];\n"
"            o1 += f * wO[row * HD + d + 1];\n"
"        }\n"
"        const float inv = L > 0.f ? 1.f / L : 0.f;\n"
"        *(u32 *)(out + (n * H + h0 + row) * HD + d) = pack2(o0 * inv, o1 * inv);\n"
"        if (d == 0) lse[((long)b * H + h0 + row) * T + t] = L > 0.f ? (M + __log2f(L)) * LN2 : NEG_INF;\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// Backward. Same blocks and groups. Per group of 16 keys a warp computes the transposed\n"
"// scores S^T = K Q^T and dP^T = V dO^T (16 keys x 16 heads), P^T = exp(S^T - lse),\n"
"// dS^T = P^T (dP^T - D), then\n"
"//   dV rows = P^T dO and dK rows = scale dS^T Q: complete for this token (the heads are\n"
"//     summed by the mma), added to fp32 accumulators with red.global.add.v4 (red_tile);\n"
"//   dQ += dS K: dS^T goes through a warp-private 16x16 tile to become an A fragment;\n"
"//     each warp sums its groups in registers, the warps are merged at the end.\n"
"// psum != NULL: psum[t, slot] += (1/H) sum_h P (fp32 atomics; the host zeroes it).\n"
"// flags (host: ABLATE_SPARSE_BWD, see gpu_sparse_attention_backward): bit 0: psum by\n"
"// plain stores (only when one block covers all heads of the token, gridDim.y == 1);\n"
"// bit 1: no dk/dv reductions at all (TIMING DIAGNOSTIC ONLY: dk, dv come out zero);\n"
"// bit 2: dk/dv staged through shared memory and added as whole rows (see below);\n"
"// bit 3: write D = rowsum(dO O) to Dg [B*T, H] (the key-range pass sparse_bwd_kv needs it);\n"
"// bit 4 (with bit 2; the deterministic backward): each (token, slot) pair's dK and dV rows\n"
"// are STORED to the stages stk, stv [gridDim.x tokens][K][HD] instead of added, for key_reduce;\n"
"// bit 5: psum by plain adds (this launch is its only writer; launches are stream-ordered).\n"
"// Token n0 + blockIdx.x, heads from (y0 + blockIdx.y) * HB: the host may launch a chunk of\n"
"// tokens, or one head block at a time.\n"
"#define LDQ 24   // stride of the dS^T tile (bf16)\n"
"#if SP_PART(1)\n"
"extern \"C\" __global__ void __launch_bounds__(SA_WARPS * 32)\n"
"sparse_bwd(bf16 *dq, float *dkacc, float *dvacc, float *psum, const bf16 *dout, const bf16 *out,\n"
"           const float *lse, const bf16 *q, const bf16 *k, const bf16 *v, const int *idx,\n"
"           int T, int H, int K, float scale, float scale_log2, float invH, int flags, float *Dg,\n"
"           long n0, int y0, float *stk, float *stv) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    bf16 *sQ = (bf16 *)smem_raw;                    // [16][LDS]\n"
"    bf16 *sdO = sQ + 16 * LDS;                      // [16][LDS]\n"
"    bf16 *sKV = sdO + 16 * LDS;                     // [SA_WARPS][SA_SLICE]\n"
"    bf16 *sdS = sKV + SA_WARPS * SA_SLICE;          // [SA_WARPS][16][LDQ]\n"
"    float *sL = (float *)(sdS + SA_WARPS * 16 * LDQ); // [16] lse * log2(e), +inf on padding rows\n"
"    float *sD = sL + 16;                            // [16] rowsum(dO * O)\n"
"    int *sIdx = (int *)(sD + 16);                   // [K]\n"
"    const long n = n0 + blockIdx.x;\n"
"    const int b = (int)(n / T), t = (int)(n % T), h0 = (y0 + blockIdx.y) * HB, kvh = h0 / GROUP, KVn = H / GROUP;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long ks = (long)KVn * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD, *vb = v + (long)b * T * ks + kvh * HD;\n"
"\n"
"    for (int i = threadIdx.x; i < K; i += SA_WARPS * 32) sIdx[i] = idx[n * K + i];\n"
"    sa_load16(sQ, q + (n * H + h0) * HD, HD, HB);\n"
"    sa_load16(sdO, dout + (n * H + h0) * HD, HD, HB);\n"
"    cp_async_commit();\n"
"    {   // D = rowsum(dO * O): 8 threads per head row\n"
"        const int r = threadIdx.x >> 3, c0 = threadIdx.x & 7;\n"
"        float d = 0.f;\n"
"        if (r < HB) {\n"
"            const bf16 *orow = out + (n * H + h0 + r) * HD, *grow = dout + (n * H + h0 + r) * HD;\n"
"            for (int c = c0; c < HD / 8; c += 8) {\n"
"                float fo[8], fg[8];\n"
"                load8(orow, c * 8, HD, 1, fo);\n"
"                load8(grow, c * 8, HD, 1, fg);\n"
"#pragma unroll\n"
"                for (int e = 0; e < 8; e++) d += fo[e] * fg[e];\n"
"            }\n"
"        }\n"
"        d += __shfl_xor_sync(FULL, d, 1);\n"
"        d += __shfl_xor_sync(FULL, d, 2);\n"
"        d += __shfl_xor_sync(FULL, d, 4);\n"
"        if (c0 == 0 && r < 16) {\n"
"            sD[r] = d;\n"
"            if ((flags & 8) && r < HB) Dg[n * H + h0 + r] = d;  // for sparse_bwd_kv\n"
"            sL[r] = r < HB ? lse[((long)b * H + h0 + r) * T + t] * LOG2E : __int_as_float(0x7f800000);\n"
"        }\n"
"    }\n"
"    cp_async_wait<0>();\n"
"    __syncthreads();\n"
"\n"
"    float dqa[HDP / 8][4];\n"
"#pragma unroll\n"
"    for (int i = 0; i < HDP / 8; i++) dqa[i][0] = dqa[i][1] = dqa[i][2] = dqa[i][3] = 0.f;\n"
"    bf16 *slice = sKV + warp * SA_SLICE, *wdS = sdS + warp * 16 * LDQ;\n"
"    const int NG = (K + 15) >> 4;\n"
"    int cur = sa_next_group(sIdx, warp, K, lane), buf = 0;\n"
"    if (cur < NG) sa_gather_kv(slice, kb, vb, ks, sIdx, cur, K, lane);\n"
"    while (cur < NG) {\n"
"        const int nxt = sa_advance_kv(slice, buf, kb, vb, ks, sIdx, cur, K, lane);\n"
"        const bf16 *Kt = slice + buf * 2 * 16 * LDS, *Vt = Kt + 16 * LDS;\n"
"        // S^T = K Q^T, dP^T = V dO^T: rows = the group's 16 keys, cols = 16 heads\n"
"        float st[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"        float dpt[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < HDP / 16; kk++) {\n"
"            unsigned ak[4], av[4], bq[4], bo[4];\n"
"            const int aoff = ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + kk * 16 + (lane >> 4) * 8;\n"
"            const int boff = ((lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8;\n"
"            ldsm_x4(ak, Kt + aoff);\n"
"            ldsm_x4(av, Vt + aoff);\n"
"            ldsm_x4(bq, sQ + boff);\n"
"            ldsm_x4(bo, sdO + boff);\n"
"            mma(st[0], ak, bq[0], bq[1]);\n"
"            mma(st[1], ak, bq[2], bq[3]);\n"
"            mma(dpt[0], av, bo[0], bo[1]);\n"
"            mma(dpt[1], av, bo[2], bo[3]);\n"
"        }\n"
"        // P^T and dS^T; keys g (e < 2) and g + 8 (e >= 2), heads i*8 + 2*t4 + (e & 1)\n"
"        const int slA = cur * 16 + g, slB = slA + 8;\n"
"        const int sA = slA < K ? sIdx[slA] : -1, sB = slB < K ? sIdx[slB] : -1;\n"
"        float pa = 0.f, pb = 0.f;  // this thread's share of sum_h P for keys g, g + 8\n"
"#pragma unroll\n"
"        for (int i = 0; i < 2; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                const int hcol = i * 8 + 2 * t4 + (e & 1);\n"
"                const bool ok = (e < 2 ? sA : sB) >= 0;\n"
"                const float p = ok ? fast_exp2(fmaf(st[i][e], scale_log2, -sL[hcol])) : 0.f;\n"
"                st[i][e] = p;\n"
"                dpt[i][e] = p * (dpt[i][e] - sD[hcol]);\n"
"                if (e < 2) pa += p; else pb += p;\n"
"            }\n"
"        if (psum) {\n"
"            pa += __shfl_xor_sync(FULL, pa, 1);\n"
"            pa += __shfl_xor_sync(FULL, pa, 2);\n"
"            pb += __shfl_xor_sync(FULL, pb, 1);\n"
"            pb += __shfl_xor_sync(FULL, pb, 2);\n"
"            if (t4 == 0 && (flags & 1)) {  // this block owns the slot: no other adder\n"
"                if (sA >= 0) psum[n * K + slA] = pa * invH;\n"
"                if (sB >= 0) psum[n * K + slB] = pb * invH;\n"
"            } else if (t4 == 0 && (flags & 32)) {  // the only adder of this launch\n"
"                if (sA >= 0) psum[n * K + slA] += pa * invH;\n"
"                if (sB >= 0) psum[n * K + slB] += pb * invH;\n"
"            } else if (t4 == 0) {\n"
"                if (sA >= 0) atomicAdd(psum + n * K + slA, pa * invH);\n"
"                if (sB >= 0) atomicAdd(psum + n * K + slB, pb * invH);\n"
"            }\n"
"        }\n"
"        const unsigned ap[4] = {pack2(st[0][0], st[0][1]), pack2(st[0][2], st[0][3]), pack2(st[1][0], st[1][1]),\n"
"                                pack2(st[1][2], st[1][3])};\n"
"        const unsigned as[4] = {pack2(dpt[0][0], dpt[0][1]), pack2(dpt[0][2], dpt[0][3]),\n"
"                                pack2(dpt[1][0], dpt[1][1]), pack2(dpt[1][2], dpt[1][3])};\n"
"        // dS^T to the warp's tile (rows keys, cols heads) for the dQ product\n"
"        *(unsigned *)(wdS + g * LDQ + 2 * t4) = as[0];\n"
"        *(unsigned *)(wdS + (g + 8) * LDQ + 2 * t4) = as[1];\n"
"        *(unsigned *)(wdS + g * LDQ + 8 + 2 * t4) = as[2];\n"
"        *(unsigned *)(wdS + (g + 8) * LDQ + 8 + 2 * t4) = as[3];\n"
"        // dV rows = P^T dO, dK rows = dS^T Q (k = heads), one 16-column slab at a time\n"
"        const long oA = ((long)(b * T + (sA >= 0 ? sA : 0)) * KVn + kvh) * HD;\n"
"        const long oB = ((long)(b * T + (sB >= 0 ? sB : 0)) * KVn + kvh) * HD;\n"
"#pragma unroll\n"
"        for (int dn = 0; dn < HDP / 16 && !(flags & 12); dn++) {  // (4: staged below; 8: sparse_bwd_kv)\n"
"            unsigned bo[4], bq[4];\n"
"            const int boff = ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dn * 16 + (lane >> 4) * 8;\n"
"            ldsm_x4_t(bo, sdO + boff);\n"
"            ldsm_x4_t(bq, sQ + boff);\n"
"            float dv0[4] = {0.f, 0.f, 0.f, 0.f}, dv1[4] = {0.f, 0.f, 0.f, 0.f};\n"
"            float dk0[4] = {0.f, 0.f, 0.f, 0.f}, dk1[4] = {0.f, 0.f, 0.f, 0.f};\n"
"            mma(dv0, ap, bo[0], bo[1]);\n"
"            mma(dv1, ap, bo[2], bo[3]);\n"
"            mma(dk0, as, bq[0], bq[1]);\n"
"            mma(dk1, as, bq[2], bq[3]);\n"
"            if (!(flags & 2)) {\n"
"                red_tile(dvacc + oA, dvacc + oB, sA >= 0, sB >= 0, dv0, dn * 16, t4, 1.f);\n"
"                red_tile(dkacc + oA, dkacc + oB, sA >= 0, sB >= 0, dk0, dn * 16, t4, scale);\n"
"                if (HDP == HD || dn * 16 + 8 < HD) {  // the upper 8 columns of the last slab may be padding\n"
"                    red_tile(dvacc + oA, dvacc + oB, sA >= 0, sB >= 0, dv1, dn * 16 + 8, t4, 1.f);\n"
"                    red_tile(dkacc + oA, dkacc + oB, sA >= 0, sB >= 0, dk1, dn * 16 + 8, t4, scale);\n"
"                }\n"
"            }\n"
"        }\n"
"        __syncwarp();  // dS^T tile written\n"
"        {   // dQ (16 heads x HD) += dS K: A = dS read transposed out of dS^T; B = K (k = keys)\n"
"            unsigned a[4];\n"
"            ldsm_x4_t(a, wdS + ((lane & 7) + (lane >> 4) * 8) * LDQ + ((lane >> 3) & 1) * 8);\n"
"#pragma unroll\n"
"            for (int dn = 0; dn < HDP / 16; dn++) {\n"
"                unsigned bk[4];\n"
"                ldsm_x4_t(bk, Kt + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dn * 16 + (lane >> 4) * 8);\n"
"                mma(dqa[2 * dn], a, bk[0], bk[1]);\n"
"                mma(dqa[2 * dn + 1], a, bk[2], bk[3]);\n"
"            }\n"
"        }\n"
"        if (flags & 4) {\n"
"            // Staged dV, dK (ABLATE_SPARSE_BWD=2): dQ is done, so this group's K and V rows\n"
"            // are free; each 16 x HDP fp32 matrix goes there ([16][LDS] floats; the gathers\n"
"            // zero-fill the padding columns again before the buffer's next use), then the\n"
"            // warp adds whole rows with red.v4, consecutive lanes on consecutive 16 bytes\n"
"            // (a warp op covers 512 contiguous bytes: 4 full lines, where the fragment\n"
"            // order above touches 16 rows x 32 bytes per op).\n"
"            __syncwarp();\n"
"            float *stg = (float *)Kt;\n"
"#pragma unroll\n"
"            for (int m = 0; m < 2; m++) {  // m = 0: dV = P^T dO; m = 1: dK = scale dS^T Q\n"
"#pragma unroll\n"
"                for (int dn = 0; dn < HDP / 16; dn++) {\n"
"                    unsigned bb[4];\n"
"                    ldsm_x4_t(bb, (m ? sQ : sdO) + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dn * 16 + (lane >> 4) * 8);\n"
"                    float c0[4] = {0.f, 0.f, 0.f, 0.f}, c1[4] = {0.f, 0.f, 0.f, 0.f};\n"
"                    mma(c0, m ? as : ap, bb[0], bb[1]);\n"
"                    mma(c1, m ? as : ap, bb[2], bb[3]);\n"
"                    const int col = dn * 16 + 2 * t4;\n"
"                    *(float2 *)(stg + g * LDS + col) = make_float2(c0[0], c0[1]);\n"
"                    *(float2 *)(stg + (g + 8) * LDS + col) = make_float2(c0[2], c0[3]);\n"
"                    *(float2 *)(stg + g * LDS + col + 8) = make_float2(c1[0], c1[1]);\n"
"                    *(float2 *)(stg + (g + 8) * LDS + col + 8) = make_float2(c1[2], c1[3]);\n"
"                }\n"
"                __syncwarp();\n"
"                float *acc = m ? dkacc : dvacc, *st = m ? stk : stv;\n"
"                const float sc = m ? scale : 1.f;\n"
"#pragma unroll\n"
"                for (int i = lane; i < 16 * (HD / 4); i += 32) {\n"
"                    const int r = i / (HD / 4), c = (i % (HD / 4)) * 4, sl = cur * 16 + r;\n"
"                    const int s = sl < K ? sIdx[sl] : -1;\n"
"                    if (s >= 0) {\n"
"                        const float4 x = *(const float4 *)(stg + r * LDS + c);\n"
"                        if (flags & 16)  // deterministic: the pair's own row of the stage\n"
"                            *(float4 *)(st + ((long)blockIdx.x * K + sl) * HD + c) =\n"
"                                make_float4(x.x * sc, x.y * sc, x.z * sc, x.w * sc);\n"
"                        else\n"
"                            red_add4(acc + ((long)(b * T + s) * KVn + kvh) * HD + c, x.x * sc, x.y * sc, x.z * sc, x.w * sc);\n"
"                    }\n"
"                }\n"
"                __syncwarp();  // dK overwrites the staging; then the next prefetch\n"
"            }\n"
"        }\n"
"        __syncwarp();  // the next group overwrites this buffer and the dS^T tile\n"
"        cur = nxt;\n"
"        buf ^= 1;\n"
"    }\n"
"\n"
"    // merge the warps' dQ partials (each in its own slice; the HD real columns), scale, write bf16\n"
"    float *sO = (float *)slice;\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++)\n"
"#pragma unroll\n"
"        for (int i = 0; i < HD / 8; i++)\n"
"            *(float2 *)(sO + (g + 8 * r) * HD + i * 8 + 2 * t4) = make_float2(dqa[i][2 * r], dqa[i][2 * r + 1]);\n"
"    __syncthreads();\n"
"    for (int i = threadIdx.x; i < HB * (HD / 2); i += SA_WARPS * 32) {\n"
"        const int row = i / (HD / 2), d = 2 * (i % (HD / 2));\n"
"        float x0 = 0.f, x1 = 0.f;\n"
"#pragma unroll\n"
"        for (int x = 0; x < SA_WARPS; x++) {\n"
"            const float *wO = (const float *)(sKV + x * SA_SLICE);\n"
"            x0 += wO[row * HD + d];\n"
"            x1 += wO[row * HD + d + 1];\n"
"        }\n"
"        *(u32 *)(dq + (n * H + h0 + row) * HD + d) = pack2(x0 * scale, x1 * scale);\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// ---------------------------------------------------------------- key-range dK, dV\n"
"// ABLATE_SPARSE_BWD=3: dK, dV without global atomics per pair. grid (ceil(T/KR) key\n"
"// ranges, ceil(T/KTC) token chunks, B*KV), SA_WARPS warps; needs HB == GROUP (all query\n"
"// heads of the kv head in one tile). The block loads K, V of its KR keys and keeps fp32\n"
"// dK, dV accumulators for them in shared memory; each warp walks the chunk's tokens t >= s0\n"
"// (t = first + warp, += SA_WARPS): the slots of t inside the range (a contiguous run of\n"
"// the sorted idx row, found by ballots), its q, dO rows (HB heads), lse and D (written by\n"
"// sparse_bwd with flags & 8); per tile of 16 such keys S^T = K Q^T, dP^T = V dO^T (A\n"
"// fragments by ldmatrix straight from the range's rows), P^T, dS^T as in sparse_bwd, then\n"
"// dV rows = P^T dO and dK rows = scale dS^T Q added with shared atomics (warps share\n"
"// keys). At the end one global red per accumulator element (token chunks meet there).\n"
"#define KR 64\n"
"#define KTC 256\n"
"#define LDA (HDP + 4)  // fp32 accumulator row stride\n"
"#if SP_PART(1)\n"
"extern \"C\" __global__ void __launch_bounds__(SA_WARPS * 32)\n"
"sparse_bwd_kv(float *dkacc, float *dvacc, const float *Dg, const bf16 *dout, const float *lse,\n"
"              const bf16 *q, const bf16 *k, const bf16 *v, const int *idx, int T, int H, int K,\n"
"              float scale, float scale_log2) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    bf16 *sK = (bf16 *)smem_raw;                       // [KR][LDS]\n"
"    bf16 *sV = sK + KR * LDS;                          // [KR][LDS]\n"
"    bf16 *sW = sV + KR * LDS;                          // [SA_WARPS][2][16][LDS] q, dO per warp\n"
"    float *sdK = (float *)(sW + SA_WARPS * 2 * 16 * LDS); // [KR][LDA]\n"
"    float *sdV = sdK + KR * LDA;                       // [KR][LDA]\n"
"    float *sLD = sdV + KR * LDA;                       // [SA_WARPS][32] lse*log2e (16), D (16)\n"
"    int *sSel = (int *)(sLD + SA_WARPS * 32);          // [SA_WARPS][KR] local key rows\n"
"    const int s0 = blockIdx.x * KR, c0 = blockIdx.y * KTC;\n"
"    const int tbeg = max(s0, c0), tend = min(T, c0 + KTC);\n"
"    if (tbeg >= tend) return;                          // causal: no token of the chunk sees the range\n"
"    const int KVn = H / GROUP, b = blockIdx.z / KVn, kvh = blockIdx.z % KVn, h0 = kvh * GROUP;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long ks = (long)KVn * HD;\n"
"    const int nrows = min(KR, T - s0);\n"
"    {\n"
"        const int CH = HDP / 8;  // chunks past HD: zero-filled padding, not read\n"
"        const bf16 *kb = k + ((long)b * T + s0) * ks + kvh * HD, *vb = v + ((long)b * T + s0) * ks + kvh * HD;\n"
"        for (int i = threadIdx.x; i < KR * CH; i += SA_WARPS * 32) {\n"
"            const int r = i / CH, c = i % CH;\n"
"            const bool real = HDP == HD || c < HD / 8;\n"
"            const long o = (long)(r < nrows ? r : 0) * ks + (real ? c * 8 : 0);\n"
"            cp_async16(sK + r * LDS + c * 8, kb + o, r < nrows && real);\n"
"            cp_async16(sV + r * LDS + c * 8, vb + o, r < nrows && real);\n"
"        }\n"
"        cp_async_commit();\n"
"        for (int i = threadIdx.x; i < 2 * KR * LDA; i += SA_WARPS * 32) sdK[i] = 0.f;\n"
"        cp_async_wait<0>();\n"
"        __syncthreads();\n"
"    }\n"
"    bf16 *wQ = sW + warp * 2 * 16 * LDS, *wO = wQ + 16 * LDS;\n"
"    float *wL = sLD + warp * 32, *wD = wL + 16;\n"
"    int *wSel = sSel + warp * KR;\n"
"    for (int t = tbeg + warp; t < tend; t += SA_WARPS) {\n"
"        const long n = (long)b * T + t;\n"
"        // the slots of t with s0 <= idx < s0 + KR (sorted row, -1 after the used slots)\n"
"        int cnt = 0;\n"
"        for (int j0 = 0; j0 < K; j0 += 32) {\n"
"            const int j = j0 + lane;\n"
"            const int sidx = j < K ? idx[n * K + j] : -1;\n"
"            const bool in = sidx >= s0 && sidx < s0 + KR;\n"
"            const unsigned m = __ballot_sync(FULL, in);\n"
"            if (in) wSel[cnt + __popc(m & ((1u << lane) - 1u))] = sidx - s0;\n"
"            cnt += __popc(m);\n"
"            if (__any_sync(FULL, sidx < 0 || sidx >= s0 + KR)) break;  // nothing further\n"
"        }\n"
"        if (cnt == 0) continue;\n"
"        {   // q, dO rows of the HB heads (rows >= HB zero), lse * log2e (+inf padding), D\n"
"            const int CH = HDP / 8;\n"
"            for (int i = lane; i < 16 * CH; i += 32) {\n"
"                const int r = i / CH, c = i % CH;\n"
"                const bool real = HDP == HD || c < HD / 8;\n"
"                const long off = (n * H + h0 + (r < HB ? r : 0)) * HD + (real ? c * 8 : 0);\n"
"                cp_async16(wQ + r * LDS + c * 8, q + off, r < HB && real);\n"
"                cp_async16(wO + r * LDS + c * 8, dout + off, r < HB && real);\n"
"            }\n"
"            cp_async_commit();\n"
"            if (lane < 16) {\n"
"                wL[lane] = lane < HB ? lse[((long)b * H + h0 + lane) * T + t] * LOG2E : __int_as_float(0x7f800000);\n"
"                wD[lane] = lane < HB ? Dg[n * H + h0 + lane] : 0.f;\n"
"            }\n"
"            cp_async_wait<0>();\n"
"            __syncwarp();\n"
"        }\n"
"        for (int x0 = 0; x0 < cnt; x0 += 16) {\n"
"            // A fragments from the range's rows: row r of the tile = local key wSel[x0 + r]\n"
"            const int ra = x0 + (lane & 7) + ((lane >> 3) & 1) * 8;\n"
"            const int rowA = ra < cnt ? wSel[ra] : 0;\n"
"            float st[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"            float dpt[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < HDP / 16; kk++) {\n"
"                unsigned ak[4], av[4], bq[4], bo[4];\n"
"                const int acol = kk * 16 + (lane >> 4) * 8;\n"
"                const int boff = ((lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8;\n"
"                ldsm_x4(ak, sK + rowA * LDS + acol);\n"
"                ldsm_x4(av, sV + rowA * LDS + acol);\n"
"                ldsm_x4(bq, wQ + boff);\n"
"                ldsm_x4(bo, wO + boff);\n"
"                mma(st[0], ak, bq[0], bq[1]);\n"
"                mma(st[1], ak, bq[2], bq[3]);\n"
"                mma(dpt[0], av, bo[0], bo[1]);\n"
"                mma(dpt[1], av, bo[2], bo[3]);\n"
"            }\n"
"            // tile rows g (e < 2) and g + 8 (e >= 2); heads i*8 + 2*t4 + (e & 1)\n"
"            const bool okA = x0 + g < cnt, okB = x0 + g + 8 < cnt;\n"
"            const int lA = okA ? wSel[x0 + g] : 0, lB = okB ? wSel[x0 + g + 8] : 0;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 2; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    const int hcol = i * 8 + 2 * t4 + (e & 1);\n"
"                    const bool ok = e < 2 ? okA : okB;\n"
"                    const float p = ok ? fast_exp2(fmaf(st[i][e], scale_log2, -wL[hcol])) : 0.f;\n"
"                    st[i][e] = p;\n"
"                    dpt[i][e] = p * (dpt[i][e] - wD[hcol]);\n"
"                }\n"
"            const unsigned ap[4] = {pack2(st[0][0], st[0][1]), pack2(st[0][2], st[0][3]), pack2(st[1][0], st[1][1]),\n"
"                                    pack2(st[1][2], st[1][3])};\n"
"            const unsigned as[4] = {pack2(dpt[0][0], dpt[0][1]), pack2(dpt[0][2], dpt[0][3]),\n"
"                                    pack2(dpt[1][0], dpt[1][1]), pack2(dpt[1][2], dpt[1][3])};\n"
"#pragma unroll\n"
"            for (int dn = 0; dn < HDP / 16; dn++) {\n"
"                unsigned bo[4], bq[4];\n"
"                const int boff = ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dn * 16 + (lane >> 4) * 8;\n"
"                ldsm_x4_t(bo, wO + boff);\n"
"                ldsm_x4_t(bq, wQ + boff);\n"
"                float dv0[4] = {0.f, 0.f, 0.f, 0.f}, dv1[4] = {0.f, 0.f, 0.f, 0.f};\n"
"                float dk0[4] = {0.f, 0.f, 0.f, 0.f}, dk1[4] = {0.f, 0.f, 0.f, 0.f};\n"
"                mma(dv0, ap, bo[0], bo[1]);\n"
"                mma(dv1, ap, bo[2], bo[3]);\n"
"                mma(dk0, as, bq[0], bq[1]);\n"
"                mma(dk1, as, bq[2], bq[3]);\n"
"                const int col = dn * 16 + 2 * t4;\n"
"                if (okA) {\n"
"                    float *rv = sdV + lA * LDA + col, *rk = sdK + lA * LDA + col;\n"
"                    atomicAdd(rv, dv0[0]); atomicAdd(rv + 1, dv0[1]); atomicAdd(rv + 8, dv1[0]); atomicAdd(rv + 9, dv1[1]);\n"
"                    atomicAdd(rk, dk0[0] * scale); atomicAdd(rk + 1, dk0[1] * scale);\n"
"                    atomicAdd(rk + 8, dk1[0] * scale); atomicAdd(rk + 9, dk1[1] * scale);\n"
"                }\n"
"                if (okB) {\n"
"                    float *rv = sdV + lB * LDA + col, *rk = sdK + lB * LDA + col;\n"
"                    atomicAdd(rv, dv0[2]); atomicAdd(rv + 1, dv0[3]); atomicAdd(rv + 8, dv1[2]); atomicAdd(rv + 9, dv1[3]);\n"
"                    atomicAdd(rk, dk0[2] * scale); atomicAdd(rk + 1, dk0[3] * scale);\n"
"                    atomicAdd(rk + 8, dk1[2] * scale); atomicAdd(rk + 9, dk1[3] * scale);\n"
"                }\n"
"            }\n"
"        }\n"
"        __syncwarp();  // the next token overwrites wQ, wO, wL, wD, wSel\n"
"    }\n"
"    __syncthreads();\n"
"    // one global red per accumulator element of the range's valid rows\n"
"    for (int i = threadIdx.x; i < nrows * (HD / 4); i += SA_WARPS * 32) {\n"
"        const int r = i / (HD / 4), c = (i % (HD / 4)) * 4;\n"
"        const long o = (((long)b * T + s0 + r) * KVn + kvh) * HD + c;\n"
"        const float4 x = *(const float4 *)(sdK + r * LDA + c), y = *(const float4 *)(sdV + r * LDA + c);\n"
"        if (x.x != 0.f || x.y != 0.f || x.z != 0.f || x.w != 0.f) red_add4(dkacc + o, x.x, x.y, x.z, x.w);\n"
"        if (y.x != 0.f || y.y != 0.f || y.z != 0.f || y.w != 0.f) red_add4(dvacc + o, y.x, y.y, y.z, y.w);\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// ---------------------------------------------------------------- key-major reduction\n"
"// The deterministic backward (Gpu.nondeterministic == 0). The query-major passes STORE each\n"
"// (token, slot) pair's fp32 row (sparse_bwd's dK and dV rows, idx_kl's dkI row) to a stage\n"
"// [tokens of the chunk][K][RW] instead of adding it into the key's accumulator; this pass\n"
"// adds them key-major in a fixed order. grid (ceil(T/RKEYS) key ranges, sequences of the\n"
"// chunk), RK_THREADS threads. A block owns RKEYS consecutive keys of one sequence (and kv\n"
"// head kvh of nkv): each thread owns float4 columns of the range's accumulator rows, loads\n"
"// them, walks the chunk's tokens t >= s0 in ascending order, RK_TB at a time, and adds the\n"
"// staged row of every (t, slot) that selected one of its keys; then stores them. A token's\n"
"// slots inside the range are one contiguous run of its idx row (ascending, -1 after: what\n"
"// the select writes), which a warp finds by a pivot ballot and a count inside one stride.\n"
"// Each accumulator element is summed by one thread in (chunk, launch, token) order: the\n"
"// same bits every run, whatever the scheduling. part != NULL (more blocks than key ranges\n"
"// alone would give): gridDim.z splits the chunk's tokens of a sequence into equal runs; the\n"
"// block sums its run from zero into its own partial part[z][y][T][NM*RW] (zeros when its\n"
"// run misses the range), and key_combine adds the partials to the accumulators in z order.\n"
"#define RKEYS 64\n"
"#define RK_THREADS 256\n"
"#define RK_TB 32\n"
"template <int RW, int NM>\n"
"__device__ __forceinline__ void key_reduce(float *acc0, float *acc1, const float *st0, const float *st1,\n"
"                                           const int *idx, int T, int K, long n0, long n1, int nkv, int kvh,\n"
"                                           float *part) {\n"
"    __shared__ int slot[RK_TB][RKEYS];  // slot of (token tb + tt, key s0 + r), -1 if not selected\n"
"    // a thread owns PER float4 columns; when RKEYS * RW / 4 is not a multiple of RK_THREADS\n"
"    // (head dims 40, 56, 72, ...: RW = 8 mod 16) the last round leaves threads idle (EXTRA)\n"
"    constexpr int C4 = RW / 4, PER = (RKEYS * C4 + RK_THREADS - 1) / RK_THREADS;\n"
"    constexpr bool EXTRA = PER * RK_THREADS != RKEYS * C4;\n"
"    const int b = (int)(n0 / T) + blockIdx.y;\n"
"    const long base = (long)b * T;\n"
"    const int tlo = n0 > base ? (int)(n0 - base) : 0, thi = n1 - base < T ? (int)(n1 - base) : T;\n"
"    const int s0 = blockIdx.x * RKEYS;\n"
"    if (s0 >= thi) return;  // causal: no token of the chunk selects these keys\n"
"    int ta = max(s0, tlo), tz = thi;  // this block's tokens\n"
"    if (part) {\n"
"        const int L = (thi - tlo + (int)gridDim.z - 1) / (int)gridDim.z, za = tlo + (int)blockIdx.z * L;\n"
"        ta = max(s0, za);\n"
"        tz = min(thi, za + L);\n"
"    }\n"
"    float *pz = part ? part + ((long)blockIdx.z * gridDim.y + blockIdx.y) * T * (NM * RW) : 0;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    float4 a[NM][PER];\n"
"#pragma unroll\n"
"    for (int m = 0; m < PER; m++) {\n"
"        const int e = threadIdx.x + m * RK_THREADS, r = e / C4, c = (e % C4) * 4, s = s0 + r;\n"
"        const long o = ((base + s) * nkv + kvh) * RW + c;\n"
"        const bool ld = s < T && !part && !(EXTRA && e >= RKEYS * C4);\n"
"        a[0][m] = ld ? *(const float4 *)(acc0 + o) : make_float4(0.f, 0.f, 0.f, 0.f);\n"
"        if (NM > 1) a[NM - 1][m] = ld ? *(const float4 *)(acc1 + o) : make_float4(0.f, 0.f, 0.f, 0.f);\n"
"    }\n"
"    const int stride = (K + 31) >> 5;  // pivots row[lane * stride]\n"
"    for (int tb = ta; tb < tz; tb += RK_TB) {\n"
"        for (int i = threadIdx.x; i < RK_TB * RKEYS; i += RK_THREADS) (&slot[0][0])[i] = -1;\n"
"        __syncthreads();\n"
"        for (int tt = warp; tt < RK_TB && tb + tt < tz; tt += RK_THREADS / 32) {\n"
"            const int *row = idx + (base + tb + tt) * K;\n"
"            // lb = the first slot whose key is >= s0 (unsigned: -1 counts as past every key)\n"
"            const int jp = lane * stride;\n"
"            const int nb = __popc(__ballot_sync(FULL, jp < K && (unsigned)row[jp] < (unsigned)s0));\n"
"            int lb = 0;\n"
"            if (nb > 0) {  // lb in ((nb-1)*stride, nb*stride]: count the stride's keys below s0\n"
"                const int j0 = (nb - 1) * stride + 1, j1 = min(K, nb * stride);\n"
"                lb = j0;\n"
"                for (int jj = j0; jj < j1; jj += 32) {\n"
"                    const int j = jj + lane;\n"
"                    lb += __popc(__ballot_sync(FULL, j < j1 && (unsigned)row[j] < (unsigned)s0));\n"
"                }\n"
"            }\n"
"            // the run from lb while the keys stay inside the range\n"
"            for (int jj = lb; jj < K; jj += 32) {\n"
"                const int j = jj + lane;\n"
"                const unsigned s = j < K ? (unsigned)row[j] : 0xffffffffu;\n"
"                const bool in = s < (unsigned)(s0 + RKEYS);\n"
"                if (in) slot[tt][s - s0] = j;\n"
"                if (!__all_sync(FULL, in)) break;\n"
"            }\n"
"        }\n"
"        __syncthreads();\n"
"        const int nt = min(RK_TB, tz - tb);\n"
"#pragma unroll 4\n"
"        for (int tt = 0; tt < nt; tt++) {\n"
"            const long prow = (base + tb + tt - n0) * K;  // the token's rows of the stage\n"
"#pragma unroll\n"
"            for (int m = 0; m < PER; m++) {\n"
"                const int e = threadIdx.x + m * RK_THREADS, r = e / C4, c = (e % C4) * 4;\n"
"                if (EXTRA && e >= RKEYS * C4) continue;\n"
"                const int j = slot[tt][r];\n"
"                if (j >= 0) {\n"
"                    const float4 x = *(const float4 *)(st0 + (prow + j) * RW + c);\n"
"                    a[0][m].x += x.x; a[0][m].y += x.y; a[0][m].z += x.z; a[0][m].w += x.w;\n"
"                    if (NM > 1) {\n"
"                        const float4 y = *(const float4 *)(st1 + (prow + j) * RW + c);\n"
"                        a[NM - 1][m].x += y.x; a[NM - 1][m].y += y.y; a[NM - 1][m].z += y.z; a[NM - 1][m].w += y.w;\n"
"                    }\n"
"                }\n"
"            }\n"
"        }\n"
"        __syncthreads();  // the next batch clears slot\n"
"    }\n"
"#pragma unroll\n"
"    for (int m = 0; m < PER; m++) {\n"
"        const int e = threadIdx.x + m * RK_THREADS, r = e / C4, c = (e % C4) * 4, s = s0 + r;\n"
"        if (s >= T || (EXTRA && e >= RKEYS * C4)) continue;\n"
"        if (part) {\n"
"            *(float4 *)(pz + (long)s * (NM * RW) + c) = a[0][m];\n"
"            if (NM > 1) *(float4 *)(pz + (long)s * (NM * RW) + RW + c) = a[NM - 1][m];\n"
"            continue;\n"
"        }\n"
"        const long o = ((base + s) * nkv + kvh) * RW + c;\n"
"        *(float4 *)(acc0 + o) = a[0][m];\n"
"        if (NM > 1) *(float4 *)(acc1 + o) = a[NM - 1][m];\n"
"    }\n"
"}\n"
"// dK, dV of kv head kvh (accumulators [B*T][KVn][HD]) from sparse_bwd's stages\n"
"#if SP_PART(1)\n"
"extern \"C\" __global__ void __launch_bounds__(RK_THREADS)\n"
"sparse_kv_reduce(float *dkacc, float *dvacc, const float *stk, const float *stv, const int *idx, int T, int K,\n"
"                 long n0, long n1, int nkv, int kvh, float *part) {\n"
"    key_reduce<HD, 2>(dkacc, dvacc, stk, stv, idx, T, K, n0, n1, nkv, kvh, part);\n"
"}\n"
"#endif\n"
"// dkI (accumulator [B*T][DI]) from idx_kl's stage\n"
"#if SP_PART(2)\n"
"extern \"C\" __global__ void __launch_bounds__(RK_THREADS)\n"
"idx_dk_reduce(float *dkacc, const float *st, const int *idx, int T, int K, long n0, long n1, float *part) {\n"
"    key_reduce<DI, 1>(dkacc, dkacc, st, st, idx, T, K, n0, n1, 1, 0, part);\n"
"}\n"
"#endif\n"
"// acc += the nsplit partials of key_reduce, in z order, for the keys s < thi of the nseq\n"
"// sequences of the chunk [n0, n1) (acc0, acc1: the nm accumulators of width rw, kv head kvh\n"
"// of nkv); a thread per float4\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void key_combine(float *acc0, float *acc1, const float *part, int T, long n0, long n1, int nkv,\n"
"                                       int kvh, int nsplit, int nseq, int rw, int nm) {\n"
"    const int w4 = nm * rw / 4;\n"
"    GRID_STRIDE(i, (u64)nseq * T * w4) {\n"
"        const int c4 = (int)(i % w4);\n"
"        const long st = (long)(i / w4);\n"
"        const int bl = (int)(st / T), s = (int)(st % T);\n"
"        const long base = (n0 / T + bl) * (long)T;\n"
"        if ((long)s >= n1 - base) continue;  // no token of the chunk reaches key s\n"
"        const int mi = c4 / (rw / 4), c = (c4 % (rw / 4)) * 4;\n"
"        float *acc = (mi ? acc1 : acc0) + ((base + s) * nkv + kvh) * rw + c;\n"
"        float4 x = *(const float4 *)acc;\n"
"        for (int z = 0; z < nsplit; z++) {\n"
"            const float4 y = *(const float4 *)(part + (((long)z * nseq + bl) * T + s) * (nm * rw) + mi * rw + c);\n"
"            x.x += y.x; x.y += y.y; x.z += y.z; x.w += y.w;\n"
"        }\n"
"        *(float4 *)acc = x;\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// p[t, slot] += (1/H) sum over the block's heads of exp(q.k scale - lse): the first half\n"
"// of sparse_bwd (S^T = K Q^T, P^T) with only K gathered. The host zeroes p. Heads from\n"
"// (y0 + blockIdx.y) * HB; add != 0: plain adds (the deterministic path launches one head\n"
"// block at a time, so each launch is a slot's only writer), else fp32 atomics.\n"
"#if SP_PART(1)\n"
"extern \"C\" __global__ void __launch_bounds__(SA_WARPS * 32)\n"
"sparse_probs(float *p, const float *lse, const bf16 *q, const bf16 *k, const int *idx,\n"
"             int T, int H, int K, float scale_log2, float invH, int y0, int add) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    bf16 *sQ = (bf16 *)smem_raw;                    // [16][LDS]\n"
"    bf16 *sKV = sQ + 16 * LDS;                      // [SA_WARPS][SA_SLICE] (K rows only)\n"
"    float *sL = (float *)(sKV + SA_WARPS * SA_SLICE);\n"
"    int *sIdx = (int *)(sL + 16);\n"
"    const long n = blockIdx.x;\n"
"    const int b = (int)(n / T), t = (int)(n % T), h0 = (y0 + blockIdx.y) * HB, kvh = h0 / GROUP, KVn = H / GROUP;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long ks = (long)KVn * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD;\n"
"\n"
"    for (int i = threadIdx.x; i < K; i += SA_WARPS * 32) sIdx[i] = idx[n * K + i];\n"
"    if (threadIdx.x < 16)\n"
"        sL[threadIdx.x] = threadIdx.x < HB ? lse[((long)b * H + h0 + threadIdx.x) * T + t] * LOG2E\n"
"                                           : __int_as_float(0x7f800000);\n"
"    sa_load16(sQ, q + (n * H + h0) * HD, HD, HB);\n"
"    cp_async_commit();\n"
"    cp_async_wait<0>();\n"
"    __syncthreads();\n"
"\n"
"    bf16 *slice = sKV + warp * SA_SLICE;\n"
"    const int NG = (K + 15) >> 4;\n"
"    int cur = sa_next_group(sIdx, warp, K, lane), buf = 0;\n"
"    if (cur < NG) { sa_gather(slice, kb, ks, sIdx, cur, K, lane); cp_async_commit(); }\n"
"    while (cur < NG) {\n"
"        const int nxt = sa_next_group(sIdx, cur + SA_WARPS, K, lane);\n"
"        if (nxt < NG) {\n"
"            sa_gather(slice + (buf ^ 1) * 16 * LDS, kb, ks, sIdx, nxt, K, lane);\n"
"            cp_async_commit();\n"
"            cp_async_wait<1>();\n"
"        } else {\n"
"            cp_async_wait<0>();\n"
"        }\n"
"        __syncwarp();\n"
"        const bf16 *Kt = slice + buf * 16 * LDS;\n"
"        float st[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < HDP / 16; kk++) {\n"
"            unsigned ak[4], bq[4];\n"
"            ldsm_x4(ak, Kt + ((lane & 7) + ((lane >> 3) & 1) * 8) * LDS + kk * 16 + (lane >> 4) * 8);\n"
"            ldsm_x4(bq, sQ + ((lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);\n"
"            mma(st[0], ak, bq[0], bq[1]);\n"
"            mma(st[1], ak, bq[2], bq[3]);\n"
"        }\n"
"        const int slA = cur * 16 + g, slB = slA + 8;\n"
"        const bool okA = slA < K && sIdx[slA] >= 0, okB = slB < K && sIdx[slB] >= 0;\n"
"        float pa = 0.f, pb = 0.f;\n"
"#pragma unroll\n"
"        for (int i = 0; i < 2; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                const float pv = fast_exp2(fmaf(st[i][e], scale_log2, -sL[i * 8 + 2 * t4 + (e & 1)]));\n"
"                if (e < 2) pa += pv; else pb += pv;\n"
"            }\n"
"        pa += __shfl_xor_sync(FULL, pa, 1);\n"
"        pa += __shfl_xor_sync(FULL, pa, 2);\n"
"        pb += __shfl_xor_sync(FULL, pb, 1);\n"
"        pb += __shfl_xor_sync(FULL, pb, 2);\n"
"        if (t4 == 0 && add) {\n"
"            if (okA) p[n * K + slA] += pa * invH;\n"
"            if (okB) p[n * K + slB] += pb * invH;\n"
"        } else if (t4 == 0) {\n"
"            if (okA) atomicAdd(p + n * K + slA, pa * invH);\n"
"            if (okB) atomicAdd(p + n * K + slB, pb * invH);\n"
"        }\n"
"        __syncwarp();\n"
"        cur = nxt;\n"
"        buf ^= 1;\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// ================================================================ indexer KL\n"
"// One block per token, KL_WARPS warps. A warp handles one selected slot at a time with\n"
"// its lanes over the DI dims (DPL = DI/32 each): a_j = qI_j . kI[s] by warp sums.\n"
"//   forward: I = sum_j w_j ReLU(a_j); lse of I over the slots; loss = sum p^ (log p^ - I + lse)\n"
"//   backward (dloss != 0 and dqI != NULL): g = dloss (softmax(I) - p^) per slot, then\n"
"//     dw_j += g ReLU(a_j); dqI_j += g w_j [a_j > 0] kI[s] (registers, merged over warps);\n"
"//     dkI[s] += g sum_j w_j [a_j > 0] qI_j (fp32 red.global.add into dkacc).\n"
"// flags (host: ABLATE_SPARSE_KL=1): bit 0: dkI by red.v4 (4 floats per lane op, half\n"
"//   or a quarter of the ops of the v2/scalar form at DI = 64 / 32: the lanes of a v4\n"
"//   collect their neighbours' dims by shuffles); bit 1: the forward pass caches every\n"
"//   a_j in shared memory (sA [K][HI]) and the backward reads it back instead of\n"
"//   recomputing the dot products and warp sums (the same values, bit for bit); bit 2\n"
"//   (host: only with bit 1): the scores phase takes a slot per lane (the HI*DI dot\n"
"//   products by one lane, qI from shared memory by broadcast) instead of a slot per\n"
"//   warp with a warp sum per head (fp32 sums in another order: not the same bits); bit 3\n"
"//   (the deterministic backward, instead of bit 0): each slot's dkI row is STORED to the\n"
"//   stage [gridDim.x tokens][K][DI] for key_reduce. Token n0 + blockIdx.x.\n"
"#define KL_WARPS 4\n"
"#define DPL (DI / 32)\n"
"#if SP_PART(2)\n"
"extern \"C\" __global__ void __launch_bounds__(KL_WARPS * 32)\n"
"idx_kl(float *loss, bf16 *dqI, float *dkacc, bf16 *dw, const float *p, const bf16 *qI, const bf16 *kI,\n"
"       const bf16 *w, const int *idx, int T, int K, float dloss, int flags, long n0, float *stage) {\n"
"    extern __shared__ __align__(16) unsigned char smem_raw[];\n"
"    float *sQ = (float *)smem_raw;         // [HI][DI]\n"
"    float *sW = sQ + HI * DI;              // [HI]\n"
"    float *sI = sW + HI;                   // [K] scores, then dloss/dI\n"
"    float *sP = sI + K;                    // [K] p^ (p renormalized)\n"
"    float *sR = sP + K;                    // [KL_WARPS][HI][DI + 1] dqI partials\n"
"    int *sIdx = (int *)(sR + KL_WARPS * HI * (DI + 1));  // [K]\n"
"    float *sA = (float *)(sIdx + K);       // [K][HI] a_j per slot (flags & 2 only)\n"
"    const bool acache = (flags & 2) != 0;\n"
"    const long n = n0 + blockIdx.x;\n"
"    const int b = (int)(n / T);\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    const bool bwd = dqI != 0;\n"
"\n"
"    for (int i = threadIdx.x; i < HI * DI; i += KL_WARPS * 32) sQ[i] = bf2f(qI[n * HI * DI + i]);\n"
"    for (int i = threadIdx.x; i < HI; i += KL_WARPS * 32) sW[i] = bf2f(w[n * HI + i]);\n"
"    for (int i = threadIdx.x; i < K; i += KL_WARPS * 32) { sIdx[i] = idx[n * K + i]; sP[i] = p[n * K + i]; }\n"
"    __syncthreads();\n"
"\n"
"    // scores of the selected keys\n"
"    if (flags & 4) {  // a lane per slot: no warp sums (qI reads are smem broadcasts)\n"
"        for (int j = warp * 32 + lane; j - lane < K; j += KL_WARPS * 32) {\n"
"            const int s = j < K ? sIdx[j] : -1;\n"
"            if (s < 0) { if (j < K) sI[j] = NEG_INF; continue; }\n"
"            const bf16 *kr = kI + ((long)b * T + s) * DI;\n"
"            float acc[HI];\n"
"#pragma unroll\n"
"            for (int h = 0; h < HI; h++) acc[h] = 0.f;\n"
"#pragma unroll 2\n"
"            for (int d0 = 0; d0 < DI; d0 += 8) {\n"
"                float kv[8];\n"
"                load8(kr, d0, DI, 1, kv);\n"
"#pragma unroll\n"
"                for (int h = 0; h < HI; h++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 8; e++) acc[h] = fmaf(sQ[h * DI + d0 + e], kv[e], acc[h]);\n"
"            }\n"
"            float I = 0.f;\n"
"#pragma unroll\n"
"            for (int h = 0; h < HI; h++) {\n"
"                sA[j * HI + h] = acc[h];  // (the host sets bit 2 only with the cache)\n"
"                I += sW[h] * fmaxf(acc[h], 0.f);\n"
"            }\n"
"            sI[j] = I;\n"
"        }\n"
"    } else\n"
"    for (int j = warp; j < K; j += KL_WARPS) {\n"
"        const int s = sIdx[j];\n"
"        if (s < 0) { if (lane == 0) sI[j] = NEG_INF; continue; }\n"
"        const bf16 *kr = kI + ((long)b * T + s) * DI + lane * DPL;\n"
"        float kv[DPL], I = 0.f;\n"
"#pragma unroll\n"
"        for (int e = 0; e < DPL; e++) kv[e] = bf2f(kr[e]);\n"
"#pragma unroll\n"
"        for (int h = 0; h < HI; h++) {\n"
"            float a = 0.f;\n"
"#pragma unroll\n"
"            for (int e = 0; e < DPL; e++) a += sQ[h * DI + lane * DPL + e] * kv[e];\n"
"            a = warp_sum(a);\n"
"            if (acache && lane == 0) sA[j * HI + h] = a;\n"
"            I += sW[h] * fmaxf(a, 0.f);\n"
"        }\n"
"        if (lane == 0) sI[j] = I;\n"
"    }\n"
"    __syncthreads();\n"
"    float mx = NEG_INF, ps = 0.f;\n"
"    for (int j = threadIdx.x; j < K; j += KL_WARPS * 32)\n"
"        if (sIdx[j] >= 0) { mx = fmaxf(mx, sI[j]); ps += sP[j]; }\n"
"    mx = block_max(mx);\n"
"    ps = block_sum(ps);\n"
"    float se = 0.f;\n"
"    for (int j = threadIdx.x; j < K; j += KL_WARPS * 32)\n"
"        if (sIdx[j] >= 0) se += __expf(sI[j] - mx);\n"
"    se = block_sum(se);\n"
"    const float lseI = mx + __logf(se);\n"
"    float l = 0.f;\n"
"    for (int j = threadIdx.x; j < K; j += KL_WARPS * 32) {\n"
"        const float ph = sIdx[j] >= 0 && ps > 0.f ? sP[j] / ps : 0.f;\n"
"        if (ph > 0.f) l += ph * (__logf(ph) - (sI[j] - lseI));\n"
"        if (bwd) sI[j] = sIdx[j] >= 0 ? dloss * (__expf(sI[j] - lseI) - ph) : 0.f;\n"
"    }\n"
"    l = block_sum(l);   // (its barriers also publish the gradients in sI)\n"
"    if (threadIdx.x == 0) loss[n] = l;\n"
"    if (!bwd) return;\n"
"\n"
"    float dqp[HI][DPL], dwp[HI];\n"
"#pragma unroll\n"
"    for (int h = 0; h < HI; h++) {\n"
"        dwp[h] = 0.f;\n"
"#pragma unroll\n"
"        for (int e = 0; e < DPL; e++) dqp[h][e] = 0.f;\n"
"    }\n"
"    for (int j = warp; j < K; j += KL_WARPS) {\n"
"        const int s = sIdx[j];\n"
"        if (s < 0) continue;\n"
"        const float gj = sI[j];\n"
"        const bf16 *kr = kI + ((long)b * T + s) * DI + lane * DPL;\n"
"        float kv[DPL], dk[DPL];\n"
"#pragma unroll\n"
"        for (int e = 0; e < DPL; e++) { kv[e] = bf2f(kr[e]); dk[e] = 0.f; }\n"
"#pragma unroll\n"
"        for (int h = 0; h < HI; h++) {\n"
"            float a = 0.f;\n"
"            if (acache) a = sA[j * HI + h];  // (warp-uniform branch)\n"
"            else {\n"
"#pragma unroll\n"
"                for (int e = 0; e < DPL; e++) a += sQ[h * DI + lane * DPL + e] * kv[e];\n"
"                a = warp_sum(a);\n"
"            }\n"
"            if (a > 0.f) {\n"
"                dwp[h] += gj * a;\n"
"                const float c = gj * sW[h];\n"
"#pragma unroll\n"
"                for (int e = 0; e < DPL; e++) {\n"
"                    dqp[h][e] += c * kv[e];\n"
"                    dk[e] += c * sQ[h * DI + lane * DPL + e];\n"
"                }\n"
"            }\n"
"        }\n"
"        float *dst = dkacc + ((long)b * T + s) * DI + lane * DPL;\n"
"        if (flags & 8) {  // deterministic: the pair's own row of the stage, plain stores\n"
"            float *sr = stage + ((long)blockIdx.x * K + j) * DI + lane * DPL;\n"
"#pragma unroll\n"
"            for (int e = 0; e < DPL; e++) sr[e] = dk[e];\n"
"        } else if (flags & 1) {  // red.v4: lane L adds dims 4*(L*DPL/4) .. +3 (16-byte aligned)\n"
"#if DPL == 4\n"
"            red_add4(dst, dk[0], dk[1], dk[2], dk[3]);\n"
"#elif DPL == 2\n"
"            const float x2 = __shfl_down_sync(FULL, dk[0], 1), x3 = __shfl_down_sync(FULL, dk[1], 1);\n"
"            if (!(lane & 1)) red_add4(dst, dk[0], dk[1], x2, x3);\n"
"#else\n"
"            const float x1 = __shfl_down_sync(FULL, dk[0], 1), x2 = __shfl_down_sync(FULL, dk[0], 2);\n"
"            const float x3 = __shfl_down_sync(FULL, dk[0], 3);\n"
"            if (!(lane & 3)) red_add4(dst, dk[0], x1, x2, x3);\n"
"#endif\n"
"        } else {\n"
"#if DPL == 1\n"
"            atomicAdd(dst, dk[0]);\n"
"#else\n"
"#pragma unroll\n"
"            for (int e = 0; e < DPL; e += 2) red_add2(dst + e, dk[e], dk[e + 1]);\n"
"#endif\n"
"        }\n"
"    }\n"
"    // merge the warps' dqI and dw partials\n"
"    float *mine = sR + warp * HI * (DI + 1);\n"
"#pragma unroll\n"
"    for (int h = 0; h < HI; h++) {\n"
"#pragma unroll\n"
"        for (int e = 0; e < DPL; e++) mine[h * (DI + 1) + lane * DPL + e] = dqp[h][e];\n"
"        if (lane == 0) mine[h * (DI + 1) + DI] = dwp[h];\n"
"    }\n"
"    __syncthreads();\n"
"    for (int i = threadIdx.x; i < HI * (DI + 1); i += KL_WARPS * 32) {\n"
"        float x = 0.f;\n"
"#pragma unroll\n"
"        for (int wv = 0; wv < KL_WARPS; wv++) x += sR[wv * HI * (DI + 1) + i];\n"
"        const int h = i / (DI + 1), d = i % (DI + 1);\n"
"        if (d < DI) dqI[(n * HI + h) * DI + d] = f2bf(x);\n"
"        else dw[n * HI + h] = f2bf(x);\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// the selection as a bitmask (attn/dense.cu.h's SELMASK layout): one warp per row (b, t) of\n"
"// W words, blockDim.x / 32 rows a block; bit s % 32 of word s / 32 set for each selected s\n"
"// (slots < 0 are unused); prefix (if not NULL) [row][W / 4]: the row's selected keys left of\n"
"// each 128-key tile (a warp scan over the tiles' counts)\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void sparse_mask(unsigned *mask, int *prefix, const int *idx, int topk, int W, u64 rows) {\n"
"    extern __shared__ unsigned smask[];\n"
"    const int wv = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    const u64 row = (u64)blockIdx.x * (blockDim.x >> 5) + wv;\n"
"    if (row >= rows) return;\n"
"    unsigned *sw = smask + wv * W;\n"
"    for (int i = lane; i < W; i += 32) sw[i] = 0u;\n"
"    __syncwarp();\n"
"    const int *ir = idx + row * topk;\n"
"    for (int j = lane; j < topk; j += 32) {\n"
"        const int s = ir[j];\n"
"        if (s >= 0) atomicOr(&sw[s >> 5], 1u << (s & 31));\n"
"    }\n"
"    __syncwarp();\n"
"    for (int i = lane; i < W; i += 32) mask[row * W + i] = sw[i];\n"
"    if (!prefix) return;\n"
"    int carry = 0;\n"
"    for (int j0 = 0; j0 < W / 4; j0 += 32) {\n"
"        const int j = j0 + lane;\n"
"        const int c = j < W / 4 ? __popc(sw[4 * j]) + __popc(sw[4 * j + 1]) + __popc(sw[4 * j + 2]) + __popc(sw[4 * j + 3]) : 0;\n"
"        int x = c;  // inclusive warp scan\n"
"#pragma unroll\n"
"        for (int o = 1; o < 32; o <<= 1) {\n"
"            const int y = __shfl_up_sync(0xffffffffu, x, o);\n"
"            if (lane >= o) x += y;\n"
"        }\n"
"        if (j < W / 4) prefix[row * (W / 4) + j] = carry + x - c;\n"
"        carry += __shfl_sync(0xffffffffu, x, 31);\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// p[0..n) = x (the -inf of the scores above the diagonal)\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void fill_f32(float *p, float x, u64 n) {\n"
"    GRID_STRIDE(i, n) p[i] = x;\n"
"}\n"
"#endif\n"
"\n"
"// ================================================================ indexer inputs, adaptive k\n"
"// The quantizers of op_indexer_quantize (attn/dsa.h), bit for bit in fp32: x on the grid of a\n"
"// binary float of m mantissa bits with normals down to 2^emin (round to nearest even, then\n"
"// saturated at +-mx). x * 2^(m - lead) is exact (a power of two), as the CPU's x / ulp.\n"
"__device__ __forceinline__ float idx_round_float(float x, int m, int emin, float mx) {\n"
"    if (x == 0.f || x != x) return x;\n"
"    int e;\n"
"    frexpf(x, &e);\n"
"    const int lead = e - 1 < emin ? emin : e - 1;\n"
"    const float r = rintf(x * ldexpf(1.f, m - lead)) * ldexpf(1.f, lead - m);\n"
"    return fminf(fmaxf(r, -mx), mx);\n"
"}\n"
"// prec (the ops' numbering): 2 fp16, 3 fp8 e4m3, 4 int8, 5 int4 (rowmax = max|x| of the row:\n"
"// scale = rowmax / 127 or / 7, IEEE divisions as the CPU's); 0, 1 leave x as it is\n"
"__device__ __forceinline__ float idx_quant(float x, int prec, float rowmax) {\n"
"    if (prec == 2) return idx_round_float(x, 10, -14, 65504.f);\n"
"    if (prec == 3) return idx_round_float(x, 3, -6, 448.f);\n"
"    if ((prec != 4 && prec != 5) || rowmax == 0.f) return x;\n"
"    const float levels = prec == 4 ? 127.f : 7.f, scale = __fdiv_rn(rowmax, levels);\n"
"    const float q = fminf(fmaxf(rintf(__fdiv_rn(x, scale)), -levels), levels);\n"
"    return __fmul_rn(scale, q);\n"
"}\n"
"// rows of din values (bf16, or fp32 when in_f32) -> rows of dout >= din (zeros after din:\n"
"// indexer dims 8 and 16 run the DI = 32 kernels on such copies), quantized per prec with one\n"
"// scale per row, stored fp32 (out_f32) or bf16. A warp per row, din, dout <= 128.\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void __launch_bounds__(256)\n"
"idx_prep(void *out, const void *in, u64 rows, int din, int dout, int prec, int in_f32, int out_f32) {\n"
"    const int lane = threadIdx.x & 31;\n"
"    const u64 r = (u64)blockIdx.x * 8 + (threadIdx.x >> 5);\n"
"    if (r >= rows) return;  // per warp: the shuffles below see whole warps\n"
"    float x[4], mx = 0.f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++) {\n"
"        const int c = lane + 32 * i;\n"
"        x[i] = c >= din ? 0.f : in_f32 ? ((const float *)in)[r * din + c] : bf2f(((const bf16 *)in)[r * din + c]);\n"
"        mx = fmaxf(mx, fabsf(x[i]));\n"
"    }\n"
"#pragma unroll\n"
"    for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, o));\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++) {\n"
"        const int c = lane + 32 * i;\n"
"        if (c >= dout) continue;\n"
"        const float v = c < din ? idx_quant(x[i], prec, mx) : 0.f;\n"
"        if (out_f32) ((float *)out)[r * dout + c] = v;\n"
"        else ((bf16 *)out)[r * dout + c] = f2bf(v);\n"
"    }\n"
"}\n"
"#endif\n"
"// the first din columns of rows of dpad bf16 values (the padded KL gradients back to dI)\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void idx_unpad(bf16 *out, const bf16 *in, u64 rows, int din, int dpad) {\n"
"    GRID_STRIDE(i, rows * din) out[i] = in[(i / din) * dpad + i % din];\n"
"}\n"
"#endif\n"
"// Adaptive k (topk_schedule 5, attn/dsa.h): after idx_topk / idx_topk_warp over the same\n"
"// chunk, row t keeps the k_t = clamp(round(exp(H_t) * pct / 100), kmin, K) largest scores of\n"
"// its K selected slots (H_t the entropy of softmax over its t + 1 causal scores; sums in\n"
"// double as the CPU's), still ascending, -1 after. The k_t-th largest key comes from a\n"
"// bitwise search over the slots' orderable keys (32 counting passes); among keys equal to it\n"
"// the lower positions (= the earlier slots) are kept, as the ties rule says. One block of\n"
"// AK_THREADS per row; shared memory: the row's K positions and keys.\n"
"#define AK_THREADS 256\n"
"#if SP_PART(0)\n"
"extern \"C\" __global__ void __launch_bounds__(AK_THREADS)\n"
"idx_adapt(int *idx, const float *scores, int T, int b0, int q0, int R, int K, int kmin, int pct) {\n"
"    extern __shared__ __align__(16) int sak[];\n"
"    int *spos = sak;                      // [K]\n"
"    u32 *skey = (u32 *)(sak + K);         // [K]\n"
"    __shared__ double sred[2][AK_THREADS / 32];\n"
"    __shared__ float smax[AK_THREADS / 32];\n"
"    __shared__ int scnt, swarp[AK_THREADS / 32];\n"
"    const int bi = blockIdx.y, b = b0 + bi, t = q0 + blockIdx.x;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    if (t >= T) return;\n"
"    const int n = t + 1, have = n < K ? n : K;\n"
"    const float *v = scores + ((long)bi * R + t - q0) * T;\n"
"    int *out = idx + ((long)b * T + t) * K;\n"
"    // the entropy: H = log Z - sum_s e_s (I_s - m) / Z, e_s = exp(I_s - m)\n"
"    float m = NEG_INF;\n"
"    for (int s = threadIdx.x; s < n; s += AK_THREADS) m = fmaxf(m, v[s]);\n"
"#pragma unroll\n"
"    for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(FULL, m, o));\n"
"    if (lane == 0) smax[warp] = m;\n"
"    __syncthreads();\n"
"    m = smax[0];\n"
"    for (int i = 1; i < AK_THREADS / 32; i++) m = fmaxf(m, smax[i]);\n"
"    double z = 0, m1 = 0;\n"
"    for (int s = threadIdx.x; s < n; s += AK_THREADS) {\n"
"        const double d = (double)v[s] - (double)m, e = exp(d);\n"
"        z += e;\n"
"        m1 += e * d;\n"
"    }\n"
"#pragma unroll\n"
"    for (int o = 16; o; o >>= 1) { z += __shfl_xor_sync(FULL, z, o); m1 += __shfl_xor_sync(FULL, m1, o); }\n"
"    if (lane == 0) { sred[0][warp] = z; sred[1][warp] = m1; }\n"
"    __syncthreads();\n"
"    z = 0; m1 = 0;\n"
"    for (int i = 0; i < AK_THREADS / 32; i++) { z += sred[0][i]; m1 += sred[1][i]; }\n"
"    const double kk = floor(exp(log(z) - m1 / z) * pct / 100.0 + 0.5);\n"
"    const int lo = kmin < K ? kmin : K;\n"
"    const int k = kk < lo ? lo : kk > K ? K : (int)kk;\n"
"    if (k >= have) return;  // every selected slot stays\n"
"    for (int j = threadIdx.x; j < have; j += AK_THREADS) {\n"
"        const int s = out[j];\n"
"        spos[j] = s;\n"
"        skey[j] = fkey(v[s]);\n"
"    }\n"
"    // the largest thr with #{key >= thr} >= k, bit by bit from the top\n"
"    u32 thr = 0;\n"
"    for (int bit = 31; bit >= 0; bit--) {\n"
"        const u32 cand = thr | (1u << bit);\n"
"        if (threadIdx.x == 0) scnt = 0;\n"
"        __syncthreads();\n"
"        int c = 0;\n"
"        for (int j = threadIdx.x; j < have; j += AK_THREADS) c += skey[j] >= cand;\n"
"        if (c) atomicAdd(&scnt, c);\n"
"        __syncthreads();\n"
"        if (scnt >= k) thr = cand;\n"
"        __syncthreads();  // scnt is reset next pass\n"
"    }\n"
"    int gt = 0;\n"
"    if (threadIdx.x == 0) scnt = 0;\n"
"    __syncthreads();\n"
"    for (int j = threadIdx.x; j < have; j += AK_THREADS) gt += skey[j] > thr;\n"
"    if (gt) atomicAdd(&scnt, gt);\n"
"    __syncthreads();\n"
"    const int need = k - scnt;  // keys equal to thr to keep, the earliest slots first\n"
"    // two block scans per chunk of AK_THREADS slots: the equal keys' rank, then the kept slots'\n"
"    int eqbase = 0, outbase = 0;\n"
"    for (int j0 = 0; j0 < have; j0 += AK_THREADS) {\n"
"        const int j = j0 + threadIdx.x;\n"
"        const u32 key = j < have ? skey[j] : 0u;\n"
"        const bool eq = j < have && key == thr;\n"
"        u32 bal = __ballot_sync(FULL, eq);\n"
"        __syncthreads();\n"
"        if (lane == 0) swarp[warp] = __popc(bal);\n"
"        __syncthreads();\n"
"        int before = eqbase, total = 0;\n"
"        for (int i = 0; i < AK_THREADS / 32; i++) { before += i < warp ? swarp[i] : 0; total += swarp[i]; }\n"
"        before += __popc(bal & ((1u << lane) - 1u));\n"
"        const bool keep = j < have && (key > thr || (eq && before < need));\n"
"        eqbase += total;\n"
"        bal = __ballot_sync(FULL, keep);\n"
"        __syncthreads();\n"
"        if (lane == 0) swarp[warp] = __popc(bal);\n"
"        __syncthreads();\n"
"        int pos = outbase;\n"
"        total = 0;\n"
"        for (int i = 0; i < AK_THREADS / 32; i++) { pos += i < warp ? swarp[i] : 0; total += swarp[i]; }\n"
"        pos += __popc(bal & ((1u << lane) - 1u));\n"
"        if (keep) out[pos] = spos[j];\n"
"        outbase += total;\n"
"    }\n"
"    for (int j = k + threadIdx.x; j < K; j += AK_THREADS) out[j] = -1;\n"
"}\n"
"#endif\n";

/* ---------------------------------------------------------------- host */
/* tile constants mirrored from the source */
#define SPARSE_IX_BM 64
#define SPARSE_SA_WARPS 4
#define SPARSE_LDQ 24
#define SPARSE_KR 64   /* keys per block of sparse_bwd_kv (KR) */
#define SPARSE_KTC 256 /* tokens per block of sparse_bwd_kv (KTC) */
#define SPARSE_RKEYS 64      /* keys per block of key_reduce (RKEYS) */
#define SPARSE_RK_THREADS 256 /* its threads (RK_THREADS) */

/* The deterministic backward (Gpu.nondeterministic == 0) stores every (token, slot) pair's
   fp32 dK/dV (or dkI) row and reduces them key-major (key_reduce); the stage holds a chunk of
   tokens at a time, at most this many bytes (the chunks are reduced in order). */
#ifndef SPARSE_STAGE_BUDGET
#define SPARSE_STAGE_BUDGET ((size_t)512 << 20)
#endif
/* tokens per stage chunk for rows of row_bytes each (at least 1, at most all of them) */
static size_t sparse_stage_rows_(size_t row_bytes, size_t rows) {
    size_t r = SPARSE_STAGE_BUDGET / row_bytes;
    if (r < 1) r = 1;
    return r < rows ? r : rows;
}
/* key_reduce's token splits for the chunk [n0, n1) (*nseq: the sequences it touches): a
   block per range of SPARSE_RKEYS keys and sequence gives too few blocks to fill the GPU
   (32 for a chunk of one sequence at T = 2048), so each sequence's tokens are split in up to
   SPARSE_RK_SPLITS runs of >= SPARSE_RK_MIN_TOKENS, aiming at SPARSE_RK_BLOCKS blocks */
#define SPARSE_RK_BLOCKS 2048
#define SPARSE_RK_MIN_TOKENS 128
#define SPARSE_RK_SPLITS 32
static int sparse_reduce_splits_(int T, long n0, long n1, int *nseq) {
    *nseq = (int)((n1 - 1) / T - n0 / T + 1);
    long blocks = (long)((T + SPARSE_RKEYS - 1) / SPARSE_RKEYS) * *nseq;
    long s = (SPARSE_RK_BLOCKS + blocks - 1) / blocks, most = (n1 - n0) / *nseq / SPARSE_RK_MIN_TOKENS;
    if (s > most) s = most;
    if (s > SPARSE_RK_SPLITS) s = SPARSE_RK_SPLITS;
    return s < 1 ? 1 : (int)s;
}
/* floats of key_reduce's partials (width floats a key) for the largest of the chunks of
   `chunk` tokens out of rows */
static size_t sparse_reduce_part_floats_(int T, size_t rows, size_t chunk, int width) {
    size_t most = 0;
    for (size_t c0 = 0; c0 < rows; c0 += chunk) {
        int nseq, ns = sparse_reduce_splits_(T, (long)c0, (long)(c0 + chunk < rows ? c0 + chunk : rows), &nseq);
        size_t f = ns > 1 ? (size_t)ns * nseq * T * width : 0;
        if (f > most) most = f;
    }
    return most;
}
/* key_reduce f over the stage chunk [n0, n1) with its arguments rargs, whose last points at
   *partp (set here: part when the tokens are split, else NULL); then key_combine adds the
   partials into acc0 / acc1 (nm accumulators of rw floats a key, kv head kvh of nkv) */
static void sparse_reduce_launch_(Gpu *g, CUfunction f, void **rargs, float **partp, float *part, float *acc0,
                                  float *acc1, int T, long n0, long n1, int nkv, int kvh, int rw, int nm) {
    int nseq, ns = sparse_reduce_splits_(T, n0, n1, &nseq);
    *partp = ns > 1 ? part : NULL;
    gpu_launch(g, f, (unsigned)((T + SPARSE_RKEYS - 1) / SPARSE_RKEYS), (unsigned)nseq, (unsigned)ns,
               SPARSE_RK_THREADS, 1, 1, 0, rargs);
    if (ns == 1) return;
    CUfunction fc = gpu_kernel(g, SPARSE_KERNELS_SRC, "key_combine", SPARSE_COMMON_OPTS);
    size_t n = (size_t)nseq * T * nm * rw / 4, blocks = (n + 255) / 256, cap = (size_t)g->sm_count * 16;
    void *cargs[] = {&acc0, &acc1, &part, &T, &n0, &n1, &nkv, &kvh, &ns, &nseq, &rw, &nm};
    gpu_launch(g, fc, (unsigned)(blocks < cap ? blocks : cap), 1, 1, 256, 1, 1, 0, cargs);
}

/* the scratch lives in the Gpu (sparse_scratch), grown on demand; gpu_free_all frees it
   with every other allocation, and gpu_sparse_release frees it early */
static void *sparse_scratch_get_(Gpu *g, size_t bytes) {
    return gpu_scratch(g, &g->sparse_scratch, &g->sparse_scratch_bytes, bytes);
}

GPUDEF void gpu_sparse_release(Gpu *g) {
    gpu_scratch_release(g, &g->sparse_scratch, &g->sparse_scratch_bytes);
    gpu_scratch_release(g, &g->sparse_prep, &g->sparse_prep_bytes);
}
/* the indexer's padded / quantized input copies (and the KL's padded gradients): a second
   buffer, since the select's scores and the KL's accumulators use sparse_scratch meanwhile */
static void *sparse_prep_get_(Gpu *g, size_t bytes) {
    return gpu_scratch(g, &g->sparse_prep, &g->sparse_prep_bytes, bytes);
}

/* the kernel variants of the select, gpu_sparse_attention_backward and gpu_indexer_kl_backward
   are g->tuning's sparse_* fields (gpu_tuned: dflt when 0), read on every call so a test can
   change them between calls. The defaults are the variants measured fastest on the H100
   (tests/gpu_sparse_check, 2026-11-23): bwd 2, kl 1, topk 2. */

static int sparse_dim_ok_(int d) { return d == 32 || d == 64 || d == 128; }
/* attention head dims: any multiple of 8 from 32 to 256, the kernels' tiles HDP wide (hd
   rounded up to 16: 40 -> 48, 72 -> 80; the padding columns are zero-filled in shared memory,
   never read from memory). Past 128 the block's per-warp K/V slices and fp32 tiles would need
   more shared memory and registers than these 4-warp blocks have (the dense tiles' kernels
   split wide heads differently): the room refuses them (attn_dsa_gpu_supported). */
#define SPARSE_MAX_HD 256
static int sparse_hd_ok_(int hd) { return hd >= 32 && hd <= SPARSE_MAX_HD && hd % 8 == 0; }
static int sparse_hdp_(int hd) { return (hd + 15) / 16 * 16; }
/* indexer dims: 8 and 16 too, run by the DI = 32 kernels on copies padded with zero columns
   (sparse_index_prep_); dI < 32 costs a 32-wide indexer's products (the lead measures it) */
static int sparse_idim_ok_(int d) { return d == 8 || d == 16 || sparse_dim_ok_(d); }
static int sparse_dpad_(int d) { return d < 32 ? 32 : d; }

/* query heads per attention block: the whole GQA group up to 16 */
static int sparse_hb_(int group) { return group <= 16 ? group : 16; }

static void sparse_check_attn_(const char *who, int B, int T, int H, int KV, int hd, int topk) {
    int group = KV > 0 ? H / KV : 0;
    if (B < 1 || T < 1 || H < 1 || KV < 1 || H % KV != 0 || !sparse_hd_ok_(hd) || topk < 1 ||
        topk > SPARSE_MAX_TOPK_ || (group > 16 && group % 16 != 0)) {
        fprintf(stderr, "%s: unsupported shape B=%d T=%d H=%d KV=%d hd=%d topk=%d (need H %% KV == 0, "
                        "H/KV <= 16 or a multiple of 16, hd a multiple of 8 in 32..256, 1 <= topk <= %d)\n",
                who, B, T, H, KV, hd, topk, SPARSE_MAX_TOPK_);
        abort();
    }
}

static void sparse_check_index_(const char *who, int B, int T, int HI, int dI, int topk) {
    if (B < 1 || T < 1 || HI < 1 || HI > 16 || HI * sparse_dpad_(dI) > 1024 || !sparse_idim_ok_(dI) || topk < 1 ||
        topk > SPARSE_MAX_TOPK_) {
        fprintf(stderr, "%s: unsupported indexer shape B=%d T=%d HI=%d dI=%d topk=%d (need dI in "
                        "{8, 16, 32, 64, 128}, 1 <= HI <= 16, HI*max(dI, 32) <= 1024, 1 <= topk <= %d)\n",
                who, B, T, HI, dI, topk, SPARSE_MAX_TOPK_);
        abort();
    }
}

/* the source's three modules (SPARSE_PART): the attention's and the indexer's options have
   their builders */
static void sparse_attn_opts_(char *buf, size_t n, int hd, int group) {
    int len = snprintf(buf, n, "-DSPARSE_PART=1 -DHD=%d -DHB=%d -DGROUP=%d", hd, sparse_hb_(group), group);
    /* only when padded: the unpadded widths keep their options, hence their cached modules */
    if (sparse_hdp_(hd) != hd && len > 0 && (size_t)len < n) snprintf(buf + len, n - len, " -DHDP=%d", sparse_hdp_(hd));
}
static void sparse_index_opts_(char *buf, size_t n, int HI, int dI) {
    snprintf(buf, n, "-DSPARSE_PART=2 -DDI=%d -DHI=%d", dI, HI);
}

GPUDEF int gpu_sparse_kernels(const Gpu *gpu, int H, int KV, int hd, int HI, int dI, GpuKernelSpec *out, int max) {
    char opt[GPU_KERNEL_OPTIONS_MAX];
    int n = gpu_kernel_spec_add(out, max, 0, SPARSE_KERNELS_SRC, SPARSE_COMMON_OPTS); /* top-k, the mask, ... */
    sparse_attn_opts_(opt, sizeof opt, hd, H / KV);
    n = gpu_kernel_spec_add(out, max, n, SPARSE_KERNELS_SRC, opt);
    sparse_index_opts_(opt, sizeof opt, HI, dI);
    n = gpu_kernel_spec_add(out, max, n, SPARSE_KERNELS_SRC, opt);
    /* the dense tiles under the selection mask (chosen per call by cost on Hopper) */
    int k = n < max ? n : max;
    if (hd == 64) n += gpu_attention_select_kernels(gpu, H, KV, dI == 64 ? HI : 0, out + k, max - k);
    return n;
}

/* shared memory of each kernel (bytes), mirroring the carve-ups in the source; rows are the
   padded width HDP (sparse_hdp_) + 8 */
static unsigned sparse_sa_slice_bytes_(int hd) { return (unsigned)(4 * 16 * (sparse_hdp_(hd) + 8) * 2); }
static unsigned sparse_fwd_smem_(int hd, int topk) {
    return (unsigned)(16 * (sparse_hdp_(hd) + 8) * 2 + SPARSE_SA_WARPS * sparse_sa_slice_bytes_(hd) + 4 * topk);
}
static unsigned sparse_bwd_smem_(int hd, int topk) {
    return (unsigned)(2 * 16 * (sparse_hdp_(hd) + 8) * 2 + SPARSE_SA_WARPS * sparse_sa_slice_bytes_(hd) +
                      SPARSE_SA_WARPS * 16 * SPARSE_LDQ * 2 + 32 * 4 + 4 * topk);
}
/* sparse_bwd_kv: K, V of the range, q/dO per warp, fp32 dK/dV [KR][hd + 4], lse/D and
   the slot lists per warp */
static unsigned sparse_bwd_kv_smem_(int hd) {
    int p = sparse_hdp_(hd);
    return (unsigned)(2 * SPARSE_KR * (p + 8) * 2 + SPARSE_SA_WARPS * 2 * 16 * (p + 8) * 2 +
                      2 * SPARSE_KR * (p + 4) * 4 + SPARSE_SA_WARPS * 32 * 4 + SPARSE_SA_WARPS * SPARSE_KR * 4);
}
static unsigned sparse_probs_smem_(int hd, int topk) {
    return (unsigned)(16 * (sparse_hdp_(hd) + 8) * 2 + SPARSE_SA_WARPS * sparse_sa_slice_bytes_(hd) + 16 * 4 + 4 * topk);
}
static unsigned sparse_scores_smem_(int HI, int dI, int prec) {
    if (prec == 1) return (unsigned)(2 * 64 * (dI + 1) * 4);
    return (unsigned)(SPARSE_IX_BM * (HI * dI + 8) * 2 + 2 * 64 * (dI + 8) * 2 + SPARSE_IX_BM * HI * 4);
}
static unsigned sparse_kl_smem_(int HI, int dI, int topk, int acache) {
    return (unsigned)(4 * (HI * dI + HI + 2 * topk + 4 * HI * (dI + 1)) + 4 * topk + (acache ? 4 * HI * topk : 0));
}

/* scores of sequences b0..b0+nb-1, query rows q0..q0+R-1 (q0 + R <= T), into
   scores[(bi*R + t - q0) * T + s] */
static void sparse_scores_launch_(Gpu *g, float *scores, const void *qI, const void *kI, const void *w,
                                  int T, int HI, int dI, int prec, int b0, int nb, int q0, int R) {
    char opt[128];
    sparse_index_opts_(opt, sizeof opt, HI, dI);
    CUfunction f = gpu_kernel(g, SPARSE_KERNELS_SRC, prec == 1 ? "idx_scores_f32" : "idx_scores_bf16", opt);
    void *args[] = {&scores, &qI, &kI, &w, &T, &b0, &q0, &R};
    gpu_launch(g, f, (unsigned)((R + SPARSE_IX_BM - 1) / SPARSE_IX_BM), (unsigned)nb, 1, prec == 1 ? 256 : 128,
               1, 1, sparse_scores_smem_(HI, dI, prec), args);
}

/* rows of up to this many scores take idx_topk_warp (a warp per row, TKW_WARPS = 4 rows a
   block, each caching its row in shared memory); longer rows the block-per-row idx_topk.
   tuning.sparse_topk=0|1 keeps the block kernel (its two aggregation variants) for A/B runs. */
#define SPARSE_TOPK_WARP_T 4096
static void sparse_topk_launch_(Gpu *g, int *idx, const float *scores, int T, int topk, int b0, int nb,
                                int q0, int R) {
    if (T <= SPARSE_TOPK_WARP_T && gpu_tuned(g->tuning.sparse_topk, 2) == 2) {
        CUfunction fw = gpu_kernel(g, SPARSE_KERNELS_SRC, "idx_topk_warp", SPARSE_COMMON_OPTS);
        void *wargs[] = {&idx, &scores, &T, &b0, &q0, &R, &topk};
        gpu_launch(g, fw, (unsigned)((R + 3) / 4), (unsigned)nb, 1, 128, 1, 1, (unsigned)(4 * T * 4), wargs);
        return;
    }
    CUfunction f = gpu_kernel(g, SPARSE_KERNELS_SRC, "idx_topk", SPARSE_COMMON_OPTS);
    int cache = (size_t)T * 4 <= SPARSE_TOPK_CACHE;
    int aggr_passes = gpu_tuned(g->tuning.sparse_topk, 1) == 0 ? 4 : 1;
    void *args[] = {&idx, &scores, &T, &b0, &q0, &R, &topk, &cache, &aggr_passes};
    gpu_launch(g, f, (unsigned)R, (unsigned)nb, 1, 256, 1, 1, cache ? (unsigned)(T * 4) : 0, args);
}

/* the ops' prec numbers (attn/dsa.h's ATTN_DSA_PREC_* and SPARSE_PREC_*; this header also
   compiles without it, in tests/nvrtc_compile) */
enum { SPARSE_KP_BF16 = 0, SPARSE_KP_FP32 = 1, SPARSE_KP_FP16 = 2, SPARSE_KP_FP8 = 3, SPARSE_KP_INT8 = 4,
       SPARSE_KP_INT4 = 5, SPARSE_KP_FP32_ACT = 6 /* fp32 products of bf16 activations */ };

/* idx_prep: rows of din -> rows of dout (zero columns after din), quantized per prec */
static void sparse_prep_launch_(Gpu *g, void *out, const void *in, size_t rows, int din, int dout, int prec,
                                int in_f32, int out_f32) {
    uint64_t r = rows;
    void *args[] = {&out, &in, &r, &din, &dout, &prec, &in_f32, &out_f32};
    gpu_launch(g, gpu_kernel(g, SPARSE_KERNELS_SRC, "idx_prep", SPARSE_COMMON_OPTS), (unsigned)((rows + 7) / 8), 1, 1, 256, 1, 1,
               0, args);
}

/* the inputs the score kernels read: as given for bf16 / fp32 at dI >= 32; else copies in the
   prep buffer: padded to 32 columns (dI 8, 16; zero columns add nothing to q . k), and for
   fp16 / fp8 / int8 / int4 (prec 2..5, bf16 inputs) quantized as op_indexer_quantize does,
   one scale per head's query row and per key, stored fp32 with w for idx_scores_f32: the
   scores are fp32 products of the quantized values, exactly what the CPU reference computes
   up to summation order; prec 6 (SPARSE_KP_FP32_ACT): bf16 inputs converted to fp32 as they
   are. Returns the kernels' prec (0 bf16, 1 fp32), *dk their DI. */
static int sparse_index_prep_(Gpu *g, const void **qI, const void **kI, const void **w, int B, int T, int HI,
                              int dI, int prec, int *dk) {
    *dk = dI;
    if ((prec == SPARSE_KP_BF16 || prec == SPARSE_KP_FP32) && dI >= 32) return prec == SPARSE_KP_FP32;
    if (prec == SPARSE_KP_FP8 && g->cc_major < 9) {
        fprintf(stderr, "gpu_indexer_select: prec %d (fp8 e4m3) runs on Hopper (sm_90) or later, this GPU is "
                        "sm_%d%d: use fp16, int8 or int4\n", prec, g->cc_major, g->cc_minor);
        abort();
    }
    /* quant: bf16 inputs into fp32 kernels, w converted too (prec 2..6) */
    int dp = sparse_dpad_(dI), f32 = prec != SPARSE_KP_BF16, quant = prec >= SPARSE_KP_FP16;
    size_t N = (size_t)B * T, es = f32 ? 4 : 2, nq = N * HI * dp * es, nk = N * dp * es;
    char *buf = (char *)sparse_prep_get_(g, nq + nk + (quant ? N * HI * 4 : 0));
    sparse_prep_launch_(g, buf, *qI, N * HI, dI, dp, prec, prec == SPARSE_KP_FP32, f32);
    sparse_prep_launch_(g, buf + nq, *kI, N, dI, dp, prec, prec == SPARSE_KP_FP32, f32);
    if (quant) { /* w stays wide, unquantized (as on the CPU): fp32 for idx_scores_f32 */
        sparse_prep_launch_(g, buf + nq + nk, *w, N, HI, HI, SPARSE_KP_BF16, 0, 1);
        *w = buf + nq + nk;
    }
    *qI = buf;
    *kI = buf + nq;
    *dk = dp;
    return f32;
}

GPUDEF void gpu_indexer_scores(Gpu *gpu, float *scores, const void *qI, const void *kI, const void *w,
                               int B, int T, int HI, int dI, int prec) {
    sparse_check_index_("gpu_indexer_scores", B, T, HI, dI, 1);
    const void *ptrs[] = {qI, kI};
    gpu_require_aligned16("gpu_indexer_scores", ptrs, prec == 1 ? 0 : 2);
    prec = sparse_index_prep_(gpu, &qI, &kI, &w, B, T, HI, dI, prec, &dI);
    /* tiles above the diagonal are never written: they are -inf */
    {
        float ninf = -INFINITY;
        size_t n = (size_t)B * T * T, blocks = (n + 255) / 256, cap = (size_t)gpu->sm_count * 32;
        void *args[] = {&scores, &ninf, &n};
        gpu_launch(gpu, gpu_kernel(gpu, SPARSE_KERNELS_SRC, "fill_f32", SPARSE_COMMON_OPTS), (unsigned)(blocks < cap ? blocks : cap),
                   1, 1, 256, 1, 1, 0, args);
    }
    sparse_scores_launch_(gpu, scores, qI, kI, w, T, HI, dI, prec, 0, B, 0, T);
}

GPUDEF void gpu_indexer_topk(Gpu *gpu, int *idx, const float *scores, int B, int T, int topk) {
    sparse_check_index_("gpu_indexer_topk", B, T, 1, 64, topk);
    sparse_topk_launch_(gpu, idx, scores, T, topk, 0, B, 0, T);
}

/* rows of scores per chunk: whole sequences while T*T*4 fits the budget, else ranges of
   rows (a multiple of 64) of one sequence */
GPUDEF void gpu_indexer_select(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                               int B, int T, int HI, int dI, int topk, int prec) {
    gpu_indexer_select_adaptive(gpu, idx, qI, kI, w, B, T, HI, dI, topk, prec, 0, 0);
}

/* idx_adapt over the chunk the last sparse_topk_launch_ selected from (pct 0: nothing) */
static void sparse_adapt_launch_(Gpu *g, int *idx, const float *scores, int T, int topk, int kmin, int pct, int b0,
                                 int nb, int q0, int R) {
    if (pct <= 0) return;
    void *args[] = {&idx, &scores, &T, &b0, &q0, &R, &topk, &kmin, &pct};
    gpu_launch(g, gpu_kernel(g, SPARSE_KERNELS_SRC, "idx_adapt", SPARSE_COMMON_OPTS), (unsigned)R, (unsigned)nb, 1, 256, 1, 1,
               (unsigned)(8 * topk), args);
}

GPUDEF void gpu_indexer_select_adaptive(Gpu *gpu, int *idx, const void *qI, const void *kI, const void *w,
                                        int B, int T, int HI, int dI, int topk, int prec, int kmin, int pct) {
    sparse_check_index_("gpu_indexer_select", B, T, HI, dI, topk);
    const void *ptrs[] = {qI, kI};
    gpu_require_aligned16("gpu_indexer_select", ptrs, prec == 1 ? 0 : 2);
    prec = sparse_index_prep_(gpu, &qI, &kI, &w, B, T, HI, dI, prec, &dI);
    size_t row_bytes = (size_t)T * 4, seq_bytes = row_bytes * T;
    if (seq_bytes <= SPARSE_SCORE_BUDGET) {
        int nb = (int)(SPARSE_SCORE_BUDGET / seq_bytes);
        if (nb > B) nb = B;
        float *sc = (float *)sparse_scratch_get_(gpu, (size_t)nb * seq_bytes);
        for (int b0 = 0; b0 < B; b0 += nb) {
            int n = B - b0 < nb ? B - b0 : nb;
            sparse_scores_launch_(gpu, sc, qI, kI, w, T, HI, dI, prec, b0, n, 0, T);
            sparse_topk_launch_(gpu, idx, sc, T, topk, b0, n, 0, T);
            sparse_adapt_launch_(gpu, idx, sc, T, topk, kmin, pct, b0, n, 0, T);
        }
        return;
    }
    int R = (int)(SPARSE_SCORE_BUDGET / row_bytes) / 64 * 64;
    if (R < 64) R = 64;
    float *sc = (float *)sparse_scratch_get_(gpu, (size_t)R * row_bytes);
    for (int b = 0; b < B; b++)
        for (int q0 = 0; q0 < T; q0 += R) {
            int r = T - q0 < R ? T - q0 : R;
            sparse_scores_launch_(gpu, sc, qI, kI, w, T, HI, dI, prec, b, 1, q0, r);
            sparse_topk_launch_(gpu, idx, sc, T, topk, b, 1, q0, r);
            sparse_adapt_launch_(gpu, idx, sc, T, topk, kmin, pct, b, 1, q0, r);
        }
}

/* Two ways to run the attention over the selection. The gathers (sparse_fwd, sparse_bwd)
   cost per (token, kv head, selected key) and pay fp32 reductions for dK/dV; the dense tiles
   under the selection bitmask (attn/dense.cu.h's gpu_attention_select_*, Hopper and hd 64)
   cost per (token, query head, causal key) as dense flash attention does, whatever k is.
   On the H100 (tests/gpu_sparse_check, 2026-11-23, k 512) the gathers' fwd+bwd cost per
   (token, kv head, key) was about SPARSE_DENSE_RATIO times dense attention's per (token,
   head, key), so the dense tiles are taken when topk * SPARSE_DENSE_RATIO >= (H/KV) * T/2:
   at T = 2048 with the 135M model's 3 heads per kv head they are many times cheaper; the
   gathers pay with DeepSeek's wide groups at long T (16 heads per kv head, T = 8192).
   tuning.sparse_dense=0 / 1 forces the gathers / the dense tiles (where supported).
   Deterministic (Gpu.nondeterministic == 0, the default) the gathers' backward stores 512 B
   per (token, head block, key) pair and reads them back key-major instead of the red.v4s:
   ESTIMATED (not measured) ~2x their fwd+bwd at 8 x 8192, H 16, KV 1 (7.8 -> ~16 ms, against
   ~15-16 ms for the deterministic tiles), hence SPARSE_DENSE_RATIO_DET: the tiles from
   T = 8192 down at k 512 and 16 heads per kv head, the gathers from T = 16384. To calibrate
   with tests/gpu_sparse_check's det/nondet timing lines. */
#ifndef SPARSE_DENSE_RATIO
#define SPARSE_DENSE_RATIO 88
#endif
#ifndef SPARSE_DENSE_RATIO_DET
#define SPARSE_DENSE_RATIO_DET 160
#endif
static int sparse_use_dense_(const Gpu *g, int T, int H, int KV, int hd, int topk) {
    if (!gpu_attention_select_supported(g, hd)) return 0;
    int m = gpu_tuned(g->tuning.sparse_dense, -1);
    if (m >= 0) return m != 0;
    int kk = topk < T ? topk : T;
    double ratio = g->nondeterministic ? SPARSE_DENSE_RATIO : SPARSE_DENSE_RATIO_DET;
    return (double)kk * ratio >= (double)(H / KV) * T / 2;
}
/* the selection bitmask of idx, at the start of the sparse scratch; with prefix != NULL also
   the per-tile prefix counts, and `extra` floats after them (*extra) */
static unsigned *sparse_mask_build_(Gpu *g, const int *idx, int B, int T, int topk, int **prefix, float **extra,
                                    size_t n_extra) {
    int W = gpu_attention_select_words(T);
    size_t rows = (size_t)B * T, n_mask = rows * W, n_pre = prefix ? rows * (W / 4) : 0;
    unsigned *mask = (unsigned *)sparse_scratch_get_(g, (n_mask + n_pre + n_extra) * 4);
    int *pre = prefix ? (int *)(mask + n_mask) : NULL;
    if (prefix) *prefix = pre;
    if (extra) *extra = (float *)(mask + n_mask + n_pre);
    CUfunction f = gpu_kernel(g, SPARSE_KERNELS_SRC, "sparse_mask", SPARSE_COMMON_OPTS);
    /* a warp per row; up to 8 rows a block, fewer when a row's words are many */
    unsigned rpb = (unsigned)(W <= 1024 ? 8 : W <= 4096 ? 2 : 1);
    void *args[] = {&mask, &pre, &idx, &topk, &W, &rows};
    gpu_launch(g, f, (unsigned)((rows + rpb - 1) / rpb), 1, 1, 32 * rpb, 1, 1, (unsigned)W * 4 * rpb, args);
    return mask;
}

/* The indexer KL the same two ways: per-token gathers with fp32 dkI reductions (idx_kl), or
   dense tiles under the bitmask (attn/dense.cu.h's gpu_attention_select_kl: three passes
   that recompute the scores on the tensor cores, key-major for dkI, no atomics). The gathers
   cost per selected pair, the tiles per causal pair: tiles when topk * SPARSE_KL_DENSE_RATIO
   >= T / 2 and there are enough rows to fill the GPU (one block per 64 query rows against one
   per token). H100 (tests/gpu_sparse_check klb0 / klbD, HI 4, dI 64, k 512, ms fwd+bwd):
   16 x 2048 2.26 / 1.54, 32 x 2048 4.48 / 2.93, 8 x 8192 5.01 / 8.21, 4 x 16384 5.16 / 13.5;
   at 4 x 512 (2048 rows) the tiles were slower (1.01 against 0.59 ms a step for 4 layers).
   tuning.sparse_dense forces both ops' organization. Deterministic (the default) the gathers
   store each pair's dkI row (256 B at dI 64) and read it back key-major instead of the
   red.v4s: ESTIMATED (not measured) 5.0 -> ~9.4 ms at 8 x 8192, so SPARSE_KL_DENSE_RATIO_DET
   puts the switch at T = 8192 for k 512 (the tiles: 8.2 ms there, no atomics; the gathers
   from T = 16384, 5.2 -> ~10 against 13.5). */
#ifndef SPARSE_KL_DENSE_RATIO
#define SPARSE_KL_DENSE_RATIO 3
#endif
#ifndef SPARSE_KL_DENSE_RATIO_DET
#define SPARSE_KL_DENSE_RATIO_DET 8
#endif
#define SPARSE_KL_DENSE_MIN_ROWS 16384
static int sparse_kl_use_dense_(const Gpu *g, int B, int T, int HI, int dI, int topk) {
    if (!gpu_attention_select_kl_supported(g, HI, dI)) return 0;
    int m = gpu_tuned(g->tuning.sparse_dense, -1);
    if (m >= 0) return m != 0;
    int kk = topk < T ? topk : T;
    double ratio = g->nondeterministic ? SPARSE_KL_DENSE_RATIO : SPARSE_KL_DENSE_RATIO_DET;
    return (double)kk * ratio >= (double)T / 2 && (long)B * T >= SPARSE_KL_DENSE_MIN_ROWS;
}

GPUDEF void gpu_sparse_attention_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                         const void *v, const int *idx, int B, int T, int H, int KV, int hd,
                                         int topk) {
    sparse_check_attn_("gpu_sparse_attention_forward", B, T, H, KV, hd, topk);
    const void *ptrs[] = {out, q, k, v};
    gpu_require_aligned16("gpu_sparse_attention_forward", ptrs, 4);
    if (sparse_use_dense_(gpu, T, H, KV, hd, topk)) {
        unsigned *mask = sparse_mask_build_(gpu, idx, B, T, topk, NULL, NULL, 0);
        gpu_attention_select_forward(gpu, out, lse, q, k, v, mask, B, T, H, KV, hd);
        return;
    }
    char opt[128];
    sparse_attn_opts_(opt, sizeof opt, hd, H / KV);
    CUfunction f = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "sparse_fwd", opt);
    float scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd));
    void *args[] = {&out, &lse, &q, &k, &v, &idx, &T, &H, &topk, &scale_log2};
    gpu_launch(gpu, f, (unsigned)B * (unsigned)T, (unsigned)(H / sparse_hb_(H / KV)), 1, 32 * SPARSE_SA_WARPS, 1, 1,
               sparse_fwd_smem_(hd, topk), args);
}

GPUDEF void gpu_sparse_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *psum,
                                          const void *dout, const void *out, const float *lse,
                                          const void *q, const void *k, const void *v, const int *idx,
                                          int B, int T, int H, int KV, int hd, int topk) {
    sparse_check_attn_("gpu_sparse_attention_backward", B, T, H, KV, hd, topk);
    const void *ptrs[] = {dq, dk, dv, dout, out, q, k, v};
    gpu_require_aligned16("gpu_sparse_attention_backward", ptrs, 8);
    if (sparse_use_dense_(gpu, T, H, KV, hd, topk)) {
        unsigned *mask = sparse_mask_build_(gpu, idx, B, T, topk, NULL, NULL, 0);
        gpu_attention_select_backward(gpu, dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, H, KV, hd);
        if (psum && H <= ATTN_SELECT_PROBS_MAX_H)
            gpu_attention_select_probs(gpu, psum, q, k, lse, mask, B, T, H, KV, hd, topk);
        else if (psum)
            gpu_sparse_attention_probs(gpu, psum, q, k, lse, idx, B, T, H, KV, hd, topk);
        return;
    }
    size_t nk = (size_t)B * T * KV * hd, nD = (size_t)B * T * H, rows = (size_t)B * T;
    const int det = !gpu->nondeterministic, HB = sparse_hb_(H / KV), NY = H / HB;
    /* the tuning.sparse_bwd variants are the order-dependent path's (nondeterministic = 1) */
    int mode = det ? 2 : gpu_tuned(gpu->tuning.sparse_bwd, 2);
    if (mode == 3 && HB != H / KV) mode = 1; /* the key-range pass needs HB == H/KV */
    if (mode == 3 && sparse_bwd_kv_smem_(hd) > gpu->smem_optin) mode = 1; /* and hd <= 128 (its fp32 tiles) */
    /* deterministic: the stages of a chunk of tokens, one head block's dK and dV rows per pair */
    size_t chunk = det ? sparse_stage_rows_((size_t)topk * hd * 8, rows) : 0, nst = chunk * topk * hd;
    size_t npart = det ? sparse_reduce_part_floats_(T, rows, chunk, 2 * hd) : 0;
    float *dkacc = (float *)sparse_scratch_get_(gpu, (2 * nk + (mode == 3 ? nD : 0) + 2 * nst + npart) * 4),
          *dvacc = dkacc + nk;
    float *Dg = mode == 3 ? dvacc + nk : NULL;
    float *stk = det ? dvacc + nk : NULL, *stv = det ? stk + nst : NULL, *part = det ? stv + nst : NULL;
    gpu_memset0(gpu, dkacc, 2 * nk * 4);
    if (psum) gpu_memset0(gpu, psum, (size_t)B * T * topk * 4);
    char opt[128];
    sparse_attn_opts_(opt, sizeof opt, hd, H / KV);
    CUfunction f = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "sparse_bwd", opt);
    float scale = (float)(1.0 / sqrt((double)hd)), scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd));
    float invH = 1.0f / H;
    long n0 = 0;
    int y0 = 0;
    if (det) {
        /* chunk by chunk, one head block (y) at a time: sparse_bwd stores each pair's dK, dV
           rows (flags 16) and psum by stores or plain adds (1 / 32: every launch is its slots'
           only writer); sparse_kv_reduce adds the rows key-major into the kv head's fp32
           accumulators. Stream order fixes the order of everything: the same bits every run. */
        int flags = 4 | 16 | (NY == 1 ? 1 : 32);
        CUfunction fr = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "sparse_kv_reduce", opt);
        for (size_t c0 = 0; c0 < rows; c0 += chunk) {
            long n1 = (long)(c0 + chunk < rows ? c0 + chunk : rows);
            n0 = (long)c0;
            for (y0 = 0; y0 < NY; y0++) {
                int kvh = y0 * HB / (H / KV);
                void *args[] = {&dq, &dkacc, &dvacc, &psum, &dout, &out, &lse, &q, &k, &v, &idx, &T, &H, &topk,
                                &scale, &scale_log2, &invH, &flags, &Dg, &n0, &y0, &stk, &stv};
                gpu_launch(gpu, f, (unsigned)(n1 - n0), 1, 1, 32 * SPARSE_SA_WARPS, 1, 1, sparse_bwd_smem_(hd, topk),
                           args);
                float *pv = NULL;
                void *rargs[] = {&dkacc, &dvacc, &stk, &stv, &idx, &T, &topk, &n0, &n1, &KV, &kvh, &pv};
                sparse_reduce_launch_(gpu, fr, rargs, &pv, part, dkacc, dvacc, T, n0, n1, KV, kvh, hd, 2);
            }
        }
        gpu_f32_to_bf16(gpu, dk, dkacc, nk);
        gpu_f32_to_bf16(gpu, dv, dvacc, nk);
        return;
    }
    /* tuning.sparse_bwd (order-dependent fp32 atomics, Gpu.nondeterministic = 1 only):
       1 = psum by plain stores (when one block holds all heads of a
       token); 2 = that and dk/dv staged in shared memory, added as whole rows; 3 = mode 1
       with dk/dv from the key-range pass sparse_bwd_kv (shared-memory reductions; needs
       H/KV <= 16 and idx rows ascending with -1 after, as the select writes them);
       9 = mode 1 without any dk/dv reductions (a timing diagnostic: dk, dv come out ZERO) */
    int flags = mode >= 1 && NY == 1 ? 1 : 0;
    if (mode == 2) flags |= 4;
    if (mode == 3) flags |= 2 | 8;
    if (mode == 9) flags |= 2;
    void *args[] = {&dq, &dkacc, &dvacc, &psum, &dout, &out, &lse, &q, &k, &v, &idx, &T, &H, &topk,
                    &scale, &scale_log2, &invH, &flags, &Dg, &n0, &y0, &stk, &stv};
    gpu_launch(gpu, f, (unsigned)B * (unsigned)T, (unsigned)NY, 1, 32 * SPARSE_SA_WARPS, 1, 1,
               sparse_bwd_smem_(hd, topk), args);
    if (mode == 3) {
        CUfunction fk = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "sparse_bwd_kv", opt);
        void *kargs[] = {&dkacc, &dvacc, &Dg, &dout, &lse, &q, &k, &v, &idx, &T, &H, &topk, &scale, &scale_log2};
        gpu_launch(gpu, fk, (unsigned)((T + SPARSE_KR - 1) / SPARSE_KR), (unsigned)((T + SPARSE_KTC - 1) / SPARSE_KTC),
                   (unsigned)(B * KV), 32 * SPARSE_SA_WARPS, 1, 1, sparse_bwd_kv_smem_(hd), kargs);
    }
    gpu_f32_to_bf16(gpu, dk, dkacc, nk);
    gpu_f32_to_bf16(gpu, dv, dvacc, nk);
}

GPUDEF void gpu_sparse_attention_probs(Gpu *gpu, float *p, const void *q, const void *k, const float *lse,
                                       const int *idx, int B, int T, int H, int KV, int hd, int topk) {
    sparse_check_attn_("gpu_sparse_attention_probs", B, T, H, KV, hd, topk);
    const void *ptrs[] = {q, k};
    gpu_require_aligned16("gpu_sparse_attention_probs", ptrs, 2);
    if (H <= ATTN_SELECT_PROBS_MAX_H && sparse_use_dense_(gpu, T, H, KV, hd, topk)) {
        unsigned *mask = sparse_mask_build_(gpu, idx, B, T, topk, NULL, NULL, 0);
        gpu_attention_select_probs(gpu, p, q, k, lse, mask, B, T, H, KV, hd, topk);
        return;
    }
    gpu_memset0(gpu, p, (size_t)B * T * topk * 4);
    char opt[128];
    sparse_attn_opts_(opt, sizeof opt, hd, H / KV);
    CUfunction f = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "sparse_probs", opt);
    float scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd)), invH = 1.0f / H;
    int NY = H / sparse_hb_(H / KV), y0 = 0, add = 0;
    if (!gpu->nondeterministic && NY > 1) {
        /* deterministic: one head block per launch, plain adds in stream order (with one
           block per token the single atomic add onto zero is exact: nothing to order) */
        add = 1;
        for (y0 = 0; y0 < NY; y0++) {
            void *args[] = {&p, &lse, &q, &k, &idx, &T, &H, &topk, &scale_log2, &invH, &y0, &add};
            gpu_launch(gpu, f, (unsigned)B * (unsigned)T, 1, 1, 32 * SPARSE_SA_WARPS, 1, 1, sparse_probs_smem_(hd, topk),
                       args);
        }
        return;
    }
    void *args[] = {&p, &lse, &q, &k, &idx, &T, &H, &topk, &scale_log2, &invH, &y0, &add};
    gpu_launch(gpu, f, (unsigned)B * (unsigned)T, (unsigned)NY, 1, 32 * SPARSE_SA_WARPS, 1, 1,
               sparse_probs_smem_(hd, topk), args);
}

/* idx_kl over the tokens n0 .. n0 + nrows - 1; stage != NULL (the deterministic backward):
   each pair's dkI row is stored there (flags 8) instead of added into dkacc */
static void sparse_kl_launch_(Gpu *g, float *loss, void *dqI, float *dkacc, void *dw, const float *p,
                              const void *qI, const void *kI, const void *w, const int *idx, int T,
                              int HI, int dI, int topk, float dloss, long n0, size_t nrows, float *stage) {
    char opt[128];
    sparse_index_opts_(opt, sizeof opt, HI, dI);
    CUfunction f = gpu_kernel(g, SPARSE_KERNELS_SRC, "idx_kl", opt);
    /* tuning.sparse_kl=1: red.v4 for dkI (backward), and when the a_j cache fits in
       SPARSE_KL_ACACHE bytes, the cache and the lane-per-slot scores (both passes; they change
       the bits against 0 but not from run to run) */
    int flags = 0;
    if (gpu_tuned(g->tuning.sparse_kl, 1) == 1)
        flags = (dqI ? 1 : 0) | ((size_t)4 * HI * topk <= SPARSE_KL_ACACHE ? 2 | 4 : 0);
    if ((uintptr_t)kI & 15) flags &= ~4; /* the lane-per-slot loads are 16-byte vectors */
    if (stage) flags = (flags & ~1) | 8;
    void *args[] = {&loss, &dqI, &dkacc, &dw, &p, &qI, &kI, &w, &idx, &T, &topk, &dloss, &flags, &n0, &stage};
    gpu_launch(g, f, (unsigned)nrows, 1, 1, 128, 1, 1, sparse_kl_smem_(HI, dI, topk, flags & 2), args);
}

static void sparse_kl_forward_(Gpu *gpu, float *loss, const float *p, const void *qI, const void *kI,
                               const void *w, const int *idx, int B, int T, int HI, int dI, int topk) {
    if (sparse_kl_use_dense_(gpu, B, T, HI, dI, topk)) {
        unsigned *mask = sparse_mask_build_(gpu, idx, B, T, topk, NULL, NULL, 0);
        gpu_attention_select_kl(gpu, loss, NULL, NULL, NULL, NULL, NULL, p, qI, kI, w, mask, NULL, B, T, HI, topk, 0.0f);
        return;
    }
    sparse_kl_launch_(gpu, loss, NULL, NULL, NULL, p, qI, kI, w, idx, T, HI, dI, topk, 0.0f, 0, (size_t)B * T, NULL);
}

static void sparse_kl_backward_(Gpu *gpu, float *loss, void *dqI, void *dkI, void *dw, const float *p,
                                const void *qI, const void *kI, const void *w, const int *idx,
                                int B, int T, int HI, int dI, int topk, float dloss) {
    if (sparse_kl_use_dense_(gpu, B, T, HI, dI, topk)) {
        int *prefix;
        float *st;
        size_t rows = (size_t)B * T;
        unsigned *mask = sparse_mask_build_(gpu, idx, B, T, topk, &prefix, &st, 2 * rows);
        gpu_attention_select_kl(gpu, loss, dqI, dkI, dw, st, st + rows, p, qI, kI, w, mask, prefix, B, T, HI, topk,
                                dloss);
        return;
    }
    size_t nk = (size_t)B * T * dI, rows = (size_t)B * T;
    if (!gpu->nondeterministic) {
        /* deterministic: a chunk of tokens at a time, idx_kl stores each pair's dkI row in the
           stage and idx_dk_reduce adds them key-major, chunks in order (dqI, dw and the loss
           are the block's own, merged in a fixed order already) */
        size_t chunk = sparse_stage_rows_((size_t)topk * dI * 4, rows);
        size_t npart = sparse_reduce_part_floats_(T, rows, chunk, dI);
        float *dkacc = (float *)sparse_scratch_get_(gpu, (nk + chunk * topk * dI + npart) * 4), *stage = dkacc + nk;
        float *part = stage + chunk * topk * dI;
        gpu_memset0(gpu, dkacc, nk * 4);
        char opt[128];
        sparse_index_opts_(opt, sizeof opt, HI, dI);
        CUfunction fr = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "idx_dk_reduce", opt);
        for (size_t c0 = 0; c0 < rows; c0 += chunk) {
            long n0 = (long)c0, n1 = (long)(c0 + chunk < rows ? c0 + chunk : rows);
            sparse_kl_launch_(gpu, loss, dqI, dkacc, dw, p, qI, kI, w, idx, T, HI, dI, topk, dloss, n0,
                              (size_t)(n1 - n0), stage);
            float *pv = NULL;
            void *rargs[] = {&dkacc, &stage, &idx, &T, &topk, &n0, &n1, &pv};
            sparse_reduce_launch_(gpu, fr, rargs, &pv, part, dkacc, dkacc, T, n0, n1, 1, 0, dI, 1);
        }
        gpu_f32_to_bf16(gpu, dkI, dkacc, nk);
        return;
    }
    float *dkacc = (float *)sparse_scratch_get_(gpu, nk * 4);
    gpu_memset0(gpu, dkacc, nk * 4);
    sparse_kl_launch_(gpu, loss, dqI, dkacc, dw, p, qI, kI, w, idx, T, HI, dI, topk, dloss, 0, rows, NULL);
    gpu_f32_to_bf16(gpu, dkI, dkacc, nk);
}

/* The KL trains the unquantized q_I, k_I (bf16 activations; the precision only decides the
   selection). dI 8 / 16: the DI = 32 kernels on zero-padded copies (the padded columns give
   products of zero and gradients nobody reads), the gradients cut back to dI columns. */
GPUDEF void gpu_indexer_kl_forward(Gpu *gpu, float *loss, const float *p, const void *qI, const void *kI,
                                   const void *w, const int *idx, int B, int T, int HI, int dI, int topk) {
    sparse_check_index_("gpu_indexer_kl_forward", B, T, HI, dI, topk);
    if (dI >= 32) {
        sparse_kl_forward_(gpu, loss, p, qI, kI, w, idx, B, T, HI, dI, topk);
        return;
    }
    size_t N = (size_t)B * T, nq = N * HI * 32 * 2;
    char *buf = (char *)sparse_prep_get_(gpu, nq + N * 32 * 2);
    sparse_prep_launch_(gpu, buf, qI, N * HI, dI, 32, SPARSE_KP_BF16, 0, 0);
    sparse_prep_launch_(gpu, buf + nq, kI, N, dI, 32, SPARSE_KP_BF16, 0, 0);
    sparse_kl_forward_(gpu, loss, p, buf, buf + nq, w, idx, B, T, HI, 32, topk);
}

GPUDEF void gpu_indexer_kl_backward(Gpu *gpu, float *loss, void *dqI, void *dkI, void *dw, const float *p,
                                    const void *qI, const void *kI, const void *w, const int *idx,
                                    int B, int T, int HI, int dI, int topk, float dloss) {
    sparse_check_index_("gpu_indexer_kl_backward", B, T, HI, dI, topk);
    if (dI >= 32) {
        sparse_kl_backward_(gpu, loss, dqI, dkI, dw, p, qI, kI, w, idx, B, T, HI, dI, topk, dloss);
        return;
    }
    size_t N = (size_t)B * T, nq = N * HI * 32 * 2, nk = N * 32 * 2;
    char *buf = (char *)sparse_prep_get_(gpu, 2 * (nq + nk));
    char *pq = buf, *pk = buf + nq, *gq = pk + nk, *gk = gq + nq;
    sparse_prep_launch_(gpu, pq, qI, N * HI, dI, 32, SPARSE_KP_BF16, 0, 0);
    sparse_prep_launch_(gpu, pk, kI, N, dI, 32, SPARSE_KP_BF16, 0, 0);
    sparse_kl_backward_(gpu, loss, gq, gk, dw, p, pq, pk, w, idx, B, T, HI, 32, topk, dloss);
    CUfunction fu = gpu_kernel(gpu, SPARSE_KERNELS_SRC, "idx_unpad", SPARSE_COMMON_OPTS);
    int dpad = 32;
    for (int part = 0; part < 2; part++) {
        void *dst = part ? dkI : dqI, *src = part ? gk : gq;
        uint64_t rows = part ? N : N * HI, n = rows * dI, blocks = (n + 255) / 256, cap = (uint64_t)gpu->sm_count * 32;
        void *args[] = {&dst, &src, &rows, &dI, &dpad};
        gpu_launch(gpu, fu, (unsigned)(blocks < cap ? blocks : cap), 1, 1, 256, 1, 1, 0, args);
    }
}

/* the specializations tests/gpu_sparse_check.c uses, plus the limits:
   {hd, group, dI, HI}; attention and indexer options are compiled separately */
static const int sparse_check_specs_[][4] = {
    {64, 16, 64, 4}, {64, 4, 32, 1}, {32, 1, 128, 8}, {128, 32, 64, 16},
    /* padded head dims (HDP = hd rounded up to 16) and unpadded non-powers of two */
    {72, 4, 32, 2}, {48, 3, 32, 2}, {96, 2, 64, 4}, {40, 32, 32, 1}, {120, 1, 64, 4}, {112, 16, 32, 4},
    /* past 128: ptxas must fit them (registers, no spills beyond its limit) */
    {192, 4, 64, 4}, {256, 1, 64, 4}, {200, 16, 32, 2},
};

/* the kernels of each module (SPARSE_PART 0, 1, 2), as the launchers ask for them */
static const char *const sparse_part_kernels_[3][9] = {
    {"idx_topk", "idx_topk_warp", "key_combine", "sparse_mask", "fill_f32", "idx_prep", "idx_unpad", "idx_adapt", NULL},
    {"sparse_fwd", "sparse_bwd", "sparse_bwd_kv", "sparse_kv_reduce", "sparse_probs", NULL},
    {"idx_scores_bf16", "idx_scores_f32", "idx_kl", "idx_dk_reduce", NULL},
};

/* 0 when the PTX of module `part` (options opt) holds exactly sparse_part_kernels_[part] */
static int sparse_part_check_(const char *arch, int part, const char *opt) {
    char *ptx = NULL, *log = NULL;
    if (gpu_compile_ptx(SPARSE_KERNELS_SRC, opt, arch, &ptx, &log) != 0) {
        fprintf(stderr, "sparse_kernels_compile_check: %s \"%s\" failed:\n%s\n", arch, opt, log ? log : "");
        free(log);
        return 1;
    }
    int want = 0, bad = 0;
    for (int i = 0; sparse_part_kernels_[part][i]; i++) {
        want++;
        char pat[64];
        snprintf(pat, sizeof pat, ".entry %s(", sparse_part_kernels_[part][i]);
        if (!strstr(ptx, pat)) fprintf(stderr, "sparse_kernels_compile_check: %s \"%s\" lacks %s\n", arch, opt, pat + 7), bad++;
    }
    const int entries = gpu_ptx_entries(ptx);
    if (entries != want) {
        fprintf(stderr, "sparse_kernels_compile_check: %s \"%s\" holds %d kernels, expected the %d of its part\n",
                arch, opt, entries, want);
        bad++;
    }
    free(ptx); free(log);
    return bad != 0;
}

GPUDEF int sparse_kernels_compile_check(const char *arch) {
    int fails = sparse_part_check_(arch, 0, SPARSE_COMMON_OPTS);
    { /* each module holds its part's kernels only, and the three parts are the whole source's */
        char opt[160], *ptx = NULL, *log = NULL;
        sparse_attn_opts_(opt, sizeof opt, 64, 4);
        fails += sparse_part_check_(arch, 1, opt);
        sparse_index_opts_(opt, sizeof opt, 4, 64);
        fails += sparse_part_check_(arch, 2, opt);
        int all = 0, parts = 0;
        if (gpu_compile_ptx(SPARSE_KERNELS_SRC, "", arch, &ptx, &log) == 0) all = gpu_ptx_entries(ptx);
        for (int p = 0; p < 3; p++)
            for (int i = 0; sparse_part_kernels_[p][i]; i++) parts++;
        if (all != parts) {
            fprintf(stderr, "sparse_kernels_compile_check: %s: the whole source has %d kernels, the parts %d\n", arch,
                    all, parts);
            fails++;
        }
        free(ptx); free(log);
    }
    for (size_t i = 0; i < sizeof sparse_check_specs_ / sizeof sparse_check_specs_[0]; i++)
        for (int part = 0; part < 2; part++) {
            char opt[160], *log = NULL;
            if (part == 0) sparse_attn_opts_(opt, sizeof opt, sparse_check_specs_[i][0], sparse_check_specs_[i][1]);
            else sparse_index_opts_(opt, sizeof opt, sparse_check_specs_[i][3], sparse_check_specs_[i][2]);
            if (gpu_compile_ptx(SPARSE_KERNELS_SRC, opt, arch, NULL, &log) != 0) {
                fprintf(stderr, "sparse_kernels_compile_check: %s \"%s\" failed:\n%s\n", arch, opt, log ? log : "");
                fails++;
            } else if (log && log[0]) {
                fprintf(stderr, "sparse_kernels_compile_check: %s \"%s\" log:\n%s\n", arch, opt, log);
            }
            free(log);
        }
    return fails;
}

#endif /* GPU_IMPLEMENTATION && !ABLATE_NO_CUDA */
