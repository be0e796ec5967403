/* attn/dense.cu.h - flash attention forward and backward on bf16 tensor cores
   (mma.sync m16n8k16, ldmatrix, cp.async double buffering; sm_80 and later), and on
   a compute capability 9.0 GPU with hd 64, Hopper kernels on wgmma (sm_90a).

   USAGE
     #include "gpu.h"
     #include "attn/dense.cu.h"   // declarations; the definitions come with
                                    // GPU_IMPLEMENTATION (in gpu.h's one .c file)
   DEPENDS ON: gpu.h (included first; it decides the build). Declarations only with
   -DABLATE_CUDA; GPUDEF linkage and extern "C" as in gpu.h.

   API (device pointers; bf16 activations, fp32 lse; ops.h semantics)
     gpu_attention_forward(g, out, lse, q, k, v, B, T, H, KV, hd, window)
     gpu_attention_backward(g, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, window)
       q, out, dout, dq [B,T,H,hd]; k, v, dk, dv [B,T,KV,hd]; lse [B,H,T] (natural log);
       head h reads kv head h / (H/KV); causal; window W > 0: query t sees keys
       t-W+1..t (W >= T is the same as 0, full causal); scale 1/sqrt(hd).
       dq, dk, dv are written (=). hd: a multiple of 8 from 32 to 256 (HEAD WIDTHS below).
     gpu_attention_pattern_forward(g, out, lse, q, k, v, B, T, H, KV, hd, &pattern)
     gpu_attention_pattern_backward(g, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, &pattern)
       the same under a fixed sparse mask (ops.h's OpsPattern: window + global prefix,
       strided summaries, dilated second window); the two above are these with {window}.
     gpu_attention_dropout_forward(g, out, lse, q, k, v, B, T, H, KV, hd, &pattern, &drop)
     gpu_attention_dropout_backward(g, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, &pattern, &drop)
       the pattern ops with dropout on P (ops.h's OpsDropout: attn_dropout's mask, hashed in the
       kernels from (seed, step, micro, layer, b, h, t, s), again in the backward, none stored;
       step and micro read from device memory, drop.d_ctr, so a CUDA graph replays with fresh
       masks). lse stays P's. Compiled with -DATTN_DROPOUT=1 (small #if blocks at P and dP/dS);
       always the mma.sync kernels: on Hopper the wgmma path has no dropout and is skipped.
     gpu_attention_select_forward(g, out, lse, q, k, v, mask, B, T, H, KV, hd)
     gpu_attention_select_backward(g, dq, dk, dv, dout, out, lse, q, k, v, mask, B, T, H, KV, hd)
     gpu_attention_select_probs(g, p, q, k, lse, mask, B, T, H, KV, hd, topk)
       the same under a per-(query, key) selection bitmask (DSA's top-k run as dense tiles;
       Hopper and hd 64 only: gpu_attention_select_supported), and the selection's head-
       averaged probabilities at each selected key's rank (the KL target, H <= 16).
     gpu_attention_select_kl(g, loss, dqI, dkI, dw, lseI, invP, p, qI, kI, w, mask, prefix, B, T, HI, topk, dloss)
       DSA's indexer KL (attn/dsa.h semantics) over the same bitmask; dI 64, HI <= 4.
     attn_kernels_compile_check(arch)  NVRTC-compiles every specialization the tests
       use for arch ("sm_80", "sm_90"); no GPU needed. Returns the number of failures.
     gpu_attention_release(g)  frees the backward's scratch buffer.

   DESIGN (FlashAttention-2's organization, written from scratch)
     Forward: one block per (b, h, 128 query rows), 8 warps of 16 rows each. K/V tiles
       of 64 keys stream through shared memory, double-buffered by cp.async; S = QK^T
       and O += PV on mma.sync with fp32 accumulators; online softmax in fp32 with
       exp2 and the log2(e)-prescaled scale. Tiles wholly above the diagonal or
       wholly left of the window are never loaded (loop bounds); masking runs only
       on tiles that cross the diagonal, the window edge or the end of the sequence.
     Backward: (1) preprocess D = rowsum(dO * O) and zero an fp32 dQ accumulator;
       (2) one block per (b, kv head, 128 keys), each warp owning 16 keys, looping
       over every query head of the GQA group and every query tile that sees the
       keys: it recomputes P^T from lse, accumulates dK and dV in registers (no
       atomics, deterministic), and adds its share of dQ = dS K into the fp32
       accumulator with fp32 atomics (red.global.add; .v2 on sm_90); (3) convert the
       accumulator to bf16 dq. By default the key blocks take turns on each dQ tile
       (FIXED-ORDER dQ below), so dq is bitwise reproducible; with Gpu.nondeterministic
       they add as they come (the order varies run to run, ~1 ulp of fp32).
     Warps whose 16 rows (forward) or 16 keys (backward) see nothing of a tile skip it.
     Specialized at compile time (NVRTC -D): HD, GROUP (= H/KV), WINDOW, tile sizes.
   HEAD WIDTHS (mma.sync kernels): HD is the width in memory (strides, loads, stores touch
     only its columns); HDP, the register tiles' and shared memory rows' width, is HD
     rounded up to a multiple of 16 (to 32 past 128: attn_hdp_). Columns HD..HDP-1 are
     zeroed in shared memory once and never loaded, so they add nothing to QK^T and give
     zero (unstored) output columns: the cost of a padded width is that of HDP (hd 72 runs
     80-wide tiles). hd 32, 64, 128 are unpadded (their code and PTX are those of the
     unpadded kernels). Past HDP 128 the forward block is 4 warps with 32-key tiles and
     the backward's two warps share 16 keys, each accumulating half the dK, dV columns
     (both compute S^T, dP^T). ptxas sm_80 (GROUP 3, DQ_DET): forward 152 registers at hd
     72, 172 at 96, 255 at 192, 255 and a 40-byte spill at 256; backward 173 at 72, 219
     at 96, 218 at 192, 247 at 256, no spills. The Hopper (wgmma) kernels take any width
     from 32 to 128 (64-column halves, below); by default both passes at 40..128 and the
     forward at 32 (attn_wgmma_mode_); every other width and pass takes these kernels.
     K/V are read at kv head h/GROUP directly: GQA/MQA never materialize copies.
     Resources (ptxas, sm_90, hd 64): forward 128 registers, 2 blocks of 8 warps per SM;
     backward 219 registers, 1 block of 8 warps per SM; no spills.

   MEASURED (H100 80GB HBM3, tests/gpu_attn_check.c, hd 64, causal, H 16, B*T 16384):
     T 2048: forward 0.27 ms = 257 TFLOP/s, forward+backward 1.20 ms = 201 TFLOP/s
     (FLOPs: forward 4*B*H*T*T*hd/2, backward 2.5x forward). Tried and slower: 4-warp
     forward blocks (-7%), 4-warp backward blocks (-13% f+b), 128-key forward tiles
     (spill), backward grid with a head's key blocks adjacent (-3%, tail imbalance).

   HOPPER (ATTN_WGMMA_SRC; compute capability 9.0 and hd 64, any GROUP/WINDOW/T; by
     default also both passes at the other widths 40..128 and the forward at 32, below):
     compiled for sm_90a (the options carry --gpu-architecture=sm_90a, which gpu.h lets
     replace the device's default target). Operands sit in shared memory as 128-byte-
     swizzled [rows][64] bf16 tiles (cp.async loads) read by wgmma through matrix
     descriptors; P and dS go from accumulators to register A operands.
     Forward attn_fwd_wg: 2 warpgroups of 64 query rows, key tiles of 128 double-buffered;
       S = Q K^T (m64n128k16), online softmax as above, O += P V (m64n64k16, V MN-major);
       2 blocks per SM (128 registers; ptxas spills 12 bytes, still the fastest variant).
     Backward attn_bwd_dkdv_wg: 128 keys a block, warpgroup w owning keys 64w..64w+63,
       query tiles of 64: S^T = K Q^T and dP^T = V dO^T (m64n64k16, separate commit
       groups so the exponentials overlap dP^T), dV += P^T dO and dK += dS^T Q with P^T,
       dS^T from registers, dS^T to shared memory, dQ tile [64 q][32 dims of w] = dS K
       over the block's 128 keys (A = dS^T MN-major, B = a transposed copy of K made once
       per block). The dQ reduction was the bottleneck (removed, wrong results, timing
       only: 35-45% faster). Default (ATTN_WBWD_DQ_BULK 2, FlashAttention-3's way): the
       fp32 accumulator is tiled, [B][H][Tp][64] (Tp = T rounded up to 64; 16-byte
       chunks swizzled by row % 8), so a 64x64 dQ tile is one contiguous 16 KB region;
       it is staged in shared memory and thread 0 adds it with ONE cp.reduce.async.bulk
       .add.f32 of 16 KB while the next tile runs (attn_bwd_pre_wg zeroes, and
       attn_bwd_dq_convert_wg converts, that layout). 184 registers, 1 block (8 warps)
       per SM, no spills. Alternatives, correct but slower (H100, T 2048 B 16 H 9 KV 3,
       backward TFLOP/s; default 2 = 277-279): 0 red.global.add.v4.f32 from registers
       into [B,T,H,64] (239-242, the previous default); 1 one 256-byte bulk add per row
       (215); 3 the tiled layout with coalesced red.v4 out of shared memory (257); 4 as
       2 plus the block making a tile's last add (per-tile counter) converts it, no
       convert pass (169: thread 0 waits for the bulk add's completion and two gpu-scope
       fences every iteration, stalling the block at the barrier).
     With the fixed-order dQ (the default, below) the Hopper backward is variant 2 with
     turns; tuning.attn_wbwd_dq applies only with Gpu.nondeterministic.
     tuning.attn_wgmma=0..3 (bit 0 backward, bit 1 forward) overrides the default
     (ATTN_WGMMA_DEFAULT 3: both) for A/B runs; other GPUs always take the mma.sync kernels.
     Other head widths (HD a multiple of 8 from 32 to 128, -DHD; by default the forward at
     every one and the backward from 40 up, ATTN_WGMMA_FWD_WIDTH / _BWD_WIDTH; see the
     backward's notes): the head as WNH = ceil(HD/64) 64-column halves,
     each a swizzled tile of its own; S = Q K^T sums ceil(HD/16) k16 steps (step kk in half
     kk/4), O += P V is one m64n64 per half (o[32 * half]); columns past HD are zero-filled
     by cp.async's src-size 0 (never loaded) and never stored. At WNH 2 the block takes 164
     KB of shared memory and one block per SM (ptxas sm_90a, HD 128: 201 registers, no
     spills). By default at every width 32..128 (ATTN_WGMMA_FWD_WIDTH); tuning.attn_wgmma
     set explicitly chooses per pass. MEASURED (H200, tests/gpu_attn_check
     --timing-table, T 2048 B 8, forward ms mma.sync -> wgmma, TFLOP/s on the real width):
     hd 128 H 8: 0.293 -> 0.213 (235 -> 323); hd 96: 0.237 -> 0.199 (218 -> 259); hd 72
     (KV 4): 0.214 -> 0.209 (181 -> 185); hd 32 (B 16 H 16): 0.361 -> 0.337 (190 -> 204).
     MEASURED (H100 80GB HBM3, tests/gpu_attn_check.c, hd 64, causal; TFLOP/s,
     mma.sync -> wgmma with red.v4 dQ (WB_DQ_BULK 0) -> wgmma with the tiled bulk dQ (2)):
       T 512  B 32 H 16:        forward 168 -> 184, backward 111 -> 113 -> 115
       T 2048 B 8 H 16:         forward 257 -> 341, backward 186 -> 204 -> 210, f+b 201 -> 231 -> 236
       T 8192 B 2 H 16:         forward 290 -> 411, backward 225 -> 287 -> 331, f+b 240 -> 314 -> 350
       T 2048 B 16 H 9 KV 3:    forward 256 -> 349, backward 197 -> 241 -> 278, f+b 211 -> 264 -> 295
                                (f+b 1.02 -> 0.92 ms)
       T 2048 window 256:       forward 156 -> 186, backward 108 -> 113 -> 117

   FIXED-ORDER dQ (DQ_DET 1: Gpu.nondeterministic == 0, the default; both backward kernels,
     every specialization: window, pattern, SELMASK; FlashAttention-3's deterministic mode
     in idea, organized differently). The atomics stay (an ordered fp32 add is deterministic);
     what is fixed is the order in which the key blocks add into each dQ tile (64 query rows
     of one (b, h); 32 with hd 128 on mma.sync): ascending key block. An int turn counter per
     tile, zeroed by the preprocess: key block y waits (one thread, ld.acquire.gpu spin, then
     a barrier) until the counter equals its rank, the number of key blocks below y that add
     into the tile (dq_rank: y - the window's first such block; with a pattern, whose adders
     have gaps, a warp counts them 32 blocks a step), adds, and after a barrier one thread
     increments the counter with red.release.gpu. The wait graph only points down, to lower
     key blocks, which have lower linear block indices (grid (B*KV, key blocks), x fastest),
     so every awaited block was launched earlier and is running or done: no deadlock, and the
     grid keeps its heaviest-first order (reversing it, FA3's way for causal, measured by a
     list-scheduling model at 16 x 2048 GQA 9/3 as a 15% longer tail).
     To keep turns from stalling, each block walks its query tiles from the last down, the
     group's heads inner (BWD_H/BWD_M, WB_H/WB_M; head-major ascending as before otherwise):
     in causal attention every key block of a (b, kv head) then reaches each tile at the same
     iteration, and with a window a lower block reaches it earlier, so a block waits only
     behind a block launched at the same moment (the first wave), about one iteration, once.
     Hopper: thread 0 issues tile i's 16 KB bulk add (cp.reduce.async.bulk) in iteration i+1
     after its turn (then fence.proxy.async.global), and hands tile i on at the top of
     iteration i+2 (cp.async.bulk.wait_group 0, fence.proxy.async.global, release), where it
     has no loads in flight for the release to wait for: no stall on the add's completion
     (variant 4's cost). mma.sync: warp 0 hands the previous tile on (its red.adds preceded
     this iteration's first barrier) and waits for this tile's turn just before the dS^T
     barrier; the adds follow that barrier. Patterns whose far-reaching key blocks (global,
     summaries) add into tiles that nearer blocks reach first make those blocks wait for the
     far block to come down to them; correct, but slower than causal (see the check's table).
     Registers (ptxas, sm_90a / sm_90, no spills either way): Hopper backward GQA 184 -> 185,
     window 188 -> 197, pattern 196 -> 197, SELMASK 186 -> 184; mma.sync hd 64 219 -> 232,
     hd 128 window 247 -> 246. The order-dependent variants compile from the same text
     (DQ_DET only under #if; PTX identical outside line info). tests/gpu_attn_check.c checks
     det dq, dk, dv bitwise over repeated runs and prints det's cost against nd.
   CPU EMULATION: tests/emu_flash.cc runs the mma.sync kernels (forward, the DQ_DET backward)
     on a CPU emulation of CUDA (tests/emu_cuda_cxx.h) against attention in double, at head
     dims 40 to 256 with windows and patterns (make emucheck, in CI); the wgmma ones are not
     emulated.

   SELECTION MASK (SELMASK 1, Hopper kernels only): the mask is data, not a formula: a
     bitmask [B][T][ceil(T/128)*4] u32 shared by the heads (attn/dsa.cu.h builds it
     from DSA's idx). Every causal tile is visited (a random top-k leaves no 64 x 128 tile
     empty); the forward stages each key tile's 128 x 4 mask words next to K/V by cp.async,
     the backward a query tile's 64 x 4 words next to lse and D, and each thread masks its
     accumulator elements from them (forward 128 registers as the dense one, backward 186
     against 184, no new spills). attn_sel_probs_wg: one warpgroup per 64 query rows with all H <= 16 Q
     tiles resident, key tiles per kv head, sum_h exp(S - lse) in registers, each selected
     pair stored at its rank (popc of the mask words before it). H100 (tests/
     gpu_sparse_check, 2026-11-23), fwd+bwd with the KL target: 1.28 ms at 16 x 2048, 9
     heads on 3 kv heads, k 512 (the gathers: 11.05 ms); 4.68 ms at 32 x 2048, 16 heads on
     1 (gathers 7.63); 14.8 ms at 8 x 8192 (gathers 7.74, dense causal 11.2).
     The indexer KL (KL_HI > 0): attn_sel_kl_stats_wg (per row: lse of I over the selection,
     1/P, the loss; one warpgroup per 64 rows, every head's qI tile resident),
     attn_sel_kl_dq_wg (each 128-key tile in two halves: the heads' scores once for I and g,
     then per head again for G = g w [a > 0] as a register A operand of dqI += G kI; all
     heads' dqI stay in registers, 255 with 24 bytes spilled) and attn_sel_kl_dk_wg (key-
     major: two warpgroups of 64 keys walk the query tiles, S^T per head, g^T with each
     pair's rank from sparse_mask's per-tile prefix counts, dkI += G^T qI; no atomics). H100,
     fwd+bwd, HI 4: 1.54 ms at 16 x 2048 (gathers 2.26), 8.21 at 8 x 8192 (gathers 5.01).
     The KL module (-DKL_HI) holds these three kernels only, not the attention's: NVRTC for
     sm_90a on a 2-core EPYC 1.31 s instead of 1.88 (build/nvrtc_times dsa; the longest of DSA's
     modules either way).

   SPARSE PATTERNS (OpsPattern; the masks are ops.h's): specialized like WINDOW, by -D
     GLOBAL, STRIDE, DILATION, DSPAN (= window * dilation, capped at T) and PBLOCK, passed
     only when they change the mask for this T (attn_pattern_for_), so the dense and
     window-only kernels are compiled from the very same text as before (checked: identical
     PTX for the mma.sync kernels, byte-identical sm_90a cubins for the wgmma ones).
     Forward: a query block starts at the first key tile one of its rows sees and jumps
     from seen tile to seen tile (pat_next_tile: the least of each part's next seen tile,
     O(1) integer work), prefetching the next seen tile; a warp (warpgroup
     on Hopper) whose rows see nothing of a tile skips it; a tile its rows see only in part
     is masked element-wise (pat_all decides, pat_visible masks). Backward: the queries
     that see a key block always form one range n0..pat_last_query (every key sees its
     window; the other parts start inside the block), so a key block loops over exactly
     the query tiles that see it, as the window version does; warps skip as above. With
     the default PBLOCK 128 every summary / dilated tile is wholly in or out in every
     kernel (sm_80 forward 64-key tiles, Hopper forward 128-key tiles, backward 128-key
     blocks); only the diagonal, the window edge, the global prefix's end and the dilated
     span's edge are masked. Measured tile fractions and times: tests/gpu_attn_check.c.

   SCRATCH: the backward needs 4*(B*H*T + B*H*Tp*hd + B*H*ceil(T/32)) bytes (D, the fp32 dQ
     accumulator with T rounded up to 64, and the per-tile counters of WB_DQ_BULK 4 and of
     the fixed-order dQ). It is
     allocated with gpu_alloc on first use, grown when a call needs more, and kept in
     the Gpu (attn_scratch); gpu_attention_release frees it.

   SOURCE CONVENTIONS: those of kernels.cu.h (one C string literal per CUDA line,
   KSRC_LINE so NVRTC errors cite this file's line numbers, raw-bit bf16, no headers but gpu.h's
   in-memory ones: ablate_pattern.cuh, ablate_mma.cuh).
*/
#ifndef KERNELS_ATTN_CU_H
#define KERNELS_ATTN_CU_H

#include "../gpu.h" /* first: it settles ABLATE_NO_CUDA (the GPU is opt-in) */
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

GPUDEF void gpu_attention_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                  const void *v, int B, int T, int H, int KV, int hd, int window);
GPUDEF void gpu_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                   const void *out, const float *lse, const void *q, const void *k,
                                   const void *v, int B, int T, int H, int KV, int hd, int window);
GPUDEF void gpu_attention_release(Gpu *gpu);
GPUDEF int attn_kernels_compile_check(const char *arch);

/* attention under a selection bitmask (DSA's top-k as a mask over dense tiles; Hopper,
   hd 64: gpu_attention_select_supported). mask [B][T][gpu_attention_select_words(T)] u32:
   bit s % 32 of word s / 32 of row t set when query t sees key s (only s <= t; every row
   sees at least one key), shared by all heads. */
GPUDEF int gpu_attention_select_supported(const Gpu *gpu, int hd);
/* which passes of plain (window / pattern, no dropout) attention at head dim hd take the
   Hopper wgmma kernels on this GPU and tuning: bit 0 the backward, bit 1 the forward; the
   others run the mma.sync kernels (for a benchmark's label: what it timed) */
GPUDEF int gpu_attention_wgmma_passes(const Gpu *gpu, int hd);
/* the same for the selection-mask kernels (gpu_attention_select_*, DSA's dense tiles; Hopper
   only: none elsewhere), with an indexer of HI heads for the KL kernels (0: none) */
GPUDEF int gpu_attention_select_kernels(const Gpu *gpu, int H, int KV, int HI, GpuKernelSpec *out, int max);
GPUDEF int gpu_attention_select_words(int T);
GPUDEF void gpu_attention_select_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                         const void *v, const unsigned *mask, int B, int T, int H, int KV, int hd);
GPUDEF void gpu_attention_select_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const float *lse, const void *q, const void *k,
                                          const void *v, const unsigned *mask, int B, int T, int H, int KV, int hd);
/* p [B,T,topk] = (1/H) sum_h exp(q_h . k_s / sqrt(hd) - lse[b,h,t]) at the rank of each key s
   among row t's selected keys, 0 past the selection (DSA's KL target; H <= 16) */
#define ATTN_SELECT_PROBS_MAX_H 16
GPUDEF void gpu_attention_select_probs(Gpu *gpu, float *p, const void *q, const void *k, const float *lse,
                                       const unsigned *mask, int B, int T, int H, int KV, int hd, int topk);
/* DSA's indexer KL over the selection as dense tiles (attn/dsa.h's op_indexer_kl_*
   semantics; dI 64, HI <= ATTN_SELECT_KL_MAX_HI, Hopper: gpu_attention_select_kl_supported).
   Forward (dqI == NULL): loss [B*T]. Backward: also dqI, dkI, dw (bf16, written), which
   needs prefix [B][T][ceil(T/128)] (the row's selected keys left of each 128-key tile) and
   fp32 scratch lseI, invP [B*T]. */
#define ATTN_SELECT_KL_MAX_HI 4 /* the dQ pass keeps 32 registers of accumulators a head */
GPUDEF int gpu_attention_select_kl_supported(const Gpu *gpu, int HI, int dI);
GPUDEF void gpu_attention_select_kl(Gpu *gpu, float *loss, void *dqI, void *dkI, void *dw, float *lseI, float *invP,
                                    const float *p, const void *qI, const void *kI, const void *w, const unsigned *mask,
                                    const int *prefix, int B, int T, int HI, int topk, float dloss);

/* fixed sparse patterns (the masks are documented in ops.h); the two above are these
   with {window}. p == NULL is dense causal. */
#ifndef OPS_PATTERN_BLOCK
#define OPS_PATTERN_BLOCK 128
#endif
#ifndef ABLATE_OPS_PATTERN_TYPEDEF
#define ABLATE_OPS_PATTERN_TYPEDEF
typedef struct { int window, global, stride, dilation, block; } OpsPattern; /* as in ops.h */
#endif
/* the modules (gpu_kernel_prewarm's specs) that gpu_attention_pattern_forward and _backward
   (p NULL: dense causal) ask for at this shape on gpu, into out (at most max); returns how many
   there are. Built with the calls' own option builders, so the list follows them */
GPUDEF int gpu_attention_kernels(const Gpu *gpu, int T, int H, int KV, int hd, const OpsPattern *p,
                                 GpuKernelSpec *out, int max);
GPUDEF void gpu_attention_pattern_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p);
#ifndef ABLATE_OPS_DROPOUT_TYPEDEF
#define ABLATE_OPS_DROPOUT_TYPEDEF
typedef struct { /* ops.h's OpsDropout: the mask of attn_dropout (ops.h says how it is drawn) */
    unsigned thresh;
    float scale;
    unsigned long long seed;
    int layer;
    int step, micro;
    const int *d_ctr;
} OpsDropout;
#endif
/* gpu_attention_pattern_* with dropout d on P (ops.h: op_attention_dropout_*; d->d_ctr the
   device {step, micro}); d NULL: exactly those. Runs the mma.sync kernels (sm_80+) at any
   compute capability: the Hopper wgmma kernels have no dropout */
GPUDEF void gpu_attention_dropout_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                          const OpsDropout *d);
GPUDEF void gpu_attention_dropout_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                           const void *out, const float *lse, const void *q, const void *k,
                                           const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                           const OpsDropout *d);
GPUDEF void gpu_attention_pattern_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                           const void *out, const float *lse, const void *q, const void *k,
                                           const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p);
#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* KERNELS_ATTN_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(KERNELS_ATTN_IMPLEMENTATION_DONE)
#define KERNELS_ATTN_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef KSRC_LINE
#define KSRC_STR_(x) #x
#define KSRC_STR(x) KSRC_STR_(x)
#define KSRC_LINE(file) "#line " KSRC_STR(__LINE__) " \"" file "\"\n"
#endif

/* tile sizes, passed to the kernels as -D options so host and device agree */
#ifndef ATTN_FWD_WARPS
#define ATTN_FWD_WARPS 8                     /* forward block: 16*8 = 128 query rows */
#endif
#ifndef ATTN_FWD_BN
#define ATTN_FWD_BN 64                       /* keys per forward tile */
#endif
#ifndef ATTN_BWD_WARPS
#define ATTN_BWD_WARPS 8                     /* backward block: 16*8 = 128 keys */
#endif
#define ATTN_BWD_BM(hd) ((hd) > 64 ? 32 : 64) /* query rows per backward tile */

/* The fixed-order dQ (DQ_DET 1, both backward kernels; g->nondeterministic == 0): device
   helpers spliced into both sources after ablate_pattern.cuh. Only compiled with -DDQ_DET=1,
   so the order-dependent variants are generated from the same text as before. */
#define ATTN_DQ_ORDER_SRC \
KSRC_LINE("attn/dense.cu.h") "#ifndef DQ_DET\n" \
"#define DQ_DET 0\n" \
"#endif\n" \
"#if DQ_DET\n" \
"// The key blocks that add into one dQ tile of (b, h) take turns in ascending key-block\n" \
"// order through an int counter per tile (zeroed by the preprocess): block y waits until\n" \
"// the counter reaches its rank (the number of adders below it), adds, then increments it.\n" \
"// Lower blocks have lower linear indices, so they were launched first: every awaited\n" \
"// block is running or done (no deadlock).\n" \
"__device__ __forceinline__ void dq_sem_wait(const int *sem, int rank) {\n" \
"    int v;\n" \
"    do {\n" \
"        asm volatile(\"ld.acquire.gpu.global.s32 %0, [%1];\\n\" : \"=r\"(v) : \"l\"(sem) : \"memory\");\n" \
"    } while (v < rank);\n" \
"}\n" \
"// after a barrier that follows the block's adds: release them to the next block in line\n" \
"__device__ __forceinline__ void dq_sem_signal(int *sem) {\n" \
"    asm volatile(\"red.release.gpu.global.add.s32 [%0], 1;\\n\" :: \"l\"(sem) : \"memory\");\n" \
"}\n" \
"// rank of key block y (BN keys) among the key blocks whose queries reach query tile mt\n" \
"// (BM rows; see ilo, last_q in the kernels): the adders below y. With a pattern the set has\n" \
"// gaps (global, summary, dilated blocks), counted 32 blocks a step: all 32 lanes call it.\n" \
"template <int BM, int BN>\n" \
"__device__ __forceinline__ int dq_rank(int y, int mt, int T) {\n" \
"#if PATTERN\n" \
"    int c = 0;\n" \
"    for (int y0 = 0; y0 < y; y0 += 32) {\n" \
"        const int y2 = y0 + (threadIdx.x & 31);\n" \
"        const bool adds = y2 < y && pat_last_query(BN * y2, min(T - 1, BN * y2 + BN - 1), T) >= BM * mt;\n" \
"        c += __popc(__ballot_sync(0xffffffffu, adds));\n" \
"    }\n" \
"    return c;\n" \
"#else\n" \
"    // block y2 reaches row BM mt when BN y2 + BN - 1 + WINDOW - 1 >= BM mt\n" \
"    int ylo = 0;\n" \
"    if (WINDOW > 0) { const int x = BM * mt - (BN - 2) - WINDOW; ylo = x > 0 ? (x + BN - 1) / BN : 0; }\n" \
"    return y - ylo;\n" \
"#endif\n" \
"}\n" \
"#endif\n"

/* ---------------------------------------------------------------- kernels */
static const char ATTN_KERNELS_SRC[] =
KSRC_LINE("attn/dense.cu.h") "// Flash attention (forward, backward) on bf16 tensor cores, sm_80+.\n"
"// Compile-time parameters (from the host's -D options):\n"
"//   HD      head dim (a multiple of 8, 32..256): the width in memory\n"
"//   HDP     padded tile width (a multiple of 16 >= HD; default HD): register tiles and smem\n"
"//           rows; columns HD..HDP-1 are zeros in smem, never loaded or stored\n"
"//   GROUP   query heads per kv head (H / KV)\n"
"//   WINDOW  0: full causal; W > 0: query t sees keys t-W+1..t\n"
"//   GLOBAL, STRIDE, DILATION, DSPAN, PBLOCK: a sparse pattern on top of WINDOW (below)\n"
"//   ATTN_DROPOUT  1: dropout on P (attn_dropout; the kernels take its arguments last)\n"
"// Layouts: q, out, dout [B,T,H,HD]; k, v [B,T,KV,HD]; lse, D [B,H,T] fp32.\n"
"// bf16 travels as raw 16-bit patterns (unsigned short): no system headers under NVRTC.\n"
"//\n"
"// Fragment layouts of mma.m16n8k16 (g = lane/4, t = lane%4):\n"
"//   A 16x16: a0 (row g, cols 2t,2t+1)  a1 (row g+8, same)  a2 (row g, cols 2t+8,+9)  a3 (row g+8, cols 2t+8,+9)\n"
"//   B 16x8 : b0 (k 2t,2t+1; col g)     b1 (k 2t+8,2t+9; col g)\n"
"//   C 16x8 : c0,c1 (row g, cols 2t,2t+1)  c2,c3 (row g+8, cols 2t,2t+1)\n"
"// A C tile pair (keys 16j..16j+15) repacked to bf16 is exactly an A fragment,\n"
"// which is why P and dS never leave registers on their way into the next mma.\n"
"\n"
"#ifndef HD\n"
"#define HD 64\n"
"#endif\n"
"#ifndef HDP\n"
"#define HDP HD\n"
"#endif\n"
"#ifndef GROUP\n"
"#define GROUP 1\n"
"#endif\n"
"#ifndef WINDOW\n"
"#define WINDOW 0\n"
"#endif\n"
"#include \"ablate_pattern.cuh\"       // the sparse patterns (ops.h, OpsPattern): parameters, tile helpers\n"
ATTN_DQ_ORDER_SRC KSRC_LINE("attn/dense.cu.h") "\n"
"typedef unsigned short bf16;\n"
"\n"
"#define LDS (HDP + 8)             // smem row stride (elements): +16 B makes ldmatrix rows hit distinct banks\n"
"\n"
"// forward tiling: each warp owns 16 query rows; a block FWD_WARPS*16 rows; keys in tiles of FWD_BN\n"
"#ifndef FWD_WARPS\n"
"#define FWD_WARPS 8\n"
"#endif\n"
"#define FWD_BM (16 * FWD_WARPS)\n"
"#if HDP <= 64\n"
"#define FWD_MINB (16 / FWD_WARPS) // 512 threads per SM: caps registers at 128 (no spills at HD 64)\n"
"#else\n"
"#define FWD_MINB 1\n"
"#endif\n"
"#ifndef FWD_BN\n"
"#define FWD_BN 64\n"
"#endif\n"
"\n"
"// backward tiling: each warp owns 16 keys of the block's BWD_BN keys; query tiles of BWD_BM rows\n"
"#ifndef BWD_WARPS\n"
"#define BWD_WARPS 8\n"
"#endif\n"
"// past HDP 128 two warps share 16 keys, each accumulating dK, dV for half the columns\n"
"// (S^T and dP^T computed by both): 2 x HDP accumulators would not fit in 255 registers\n"
"#if HDP > 128\n"
"#define DKV_SPLIT 2\n"
"#else\n"
"#define DKV_SPLIT 1\n"
"#endif\n"
"#define DKV_W (HDP / DKV_SPLIT)    // dK, dV columns per warp\n"
"#define BWD_BN (16 * BWD_WARPS / DKV_SPLIT)\n"
"#if HDP > 64\n"
"#define BWD_BM 32                 // keeps S, dP, dK, dV accumulators inside 255 registers\n"
"#else\n"
"#define BWD_BM 64\n"
"#endif\n"
"#define LDQ (BWD_BM + 8)          // row stride of the dS^T tile in smem\n"
"#define DQ_RG (BWD_BM / 16)       // dQ phase: row groups of 16 query rows ...\n"
"#define DQ_CG (BWD_WARPS / DQ_RG) // ... times column groups of DQ_DW dims = all warps\n"
"#define DQ_NT (HDP / 16)          // 16-column tiles of dQ, DQ_TPW a column group (the last\n"
"#define DQ_TPW ((DQ_NT + DQ_CG - 1) / DQ_CG) // groups may have fewer, or none)\n"
"#define DQ_DW (16 * DQ_TPW)\n"
"#define DQ_EVEN (DQ_NT % DQ_CG == 0 && HD == HDP) // every tile of every group real: no guards\n"
"\n"
"#define NEG_INF __int_as_float(0xff800000u)\n"
"#define LOG2E 1.4426950408889634f\n"
"#define LN2 0.6931471805599453f\n"
"\n"
"// ---------------------------------------------------------------- helpers\n"
"\n"
"#include \"ablate_mma.cuh\"           // cp.async, ldmatrix, mma.sync, bf16x2, ex2\n"
"// fp32 reduction into global memory, two adjacent floats at once on sm_90\n"
"__device__ __forceinline__ void red_add2(float *p, float a, float b) {\n"
"#if __CUDA_ARCH__ >= 900\n"
"    asm volatile(\"red.global.add.v2.f32 [%0], {%1, %2};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b) : \"memory\");\n"
"#else\n"
"    asm volatile(\"red.global.add.f32 [%0], %1;\\n\" :: \"l\"(p), \"f\"(a) : \"memory\");\n"
"    asm volatile(\"red.global.add.f32 [%0], %1;\\n\" :: \"l\"(p + 1), \"f\"(b) : \"memory\");\n"
"#endif\n"
"}\n"
"\n"
"#ifndef ATTN_DROPOUT\n"
"#define ATTN_DROPOUT 0\n"
"#endif\n"
"#if ATTN_DROPOUT\n"
"// attn_dropout's mask, bit for bit ops.h's ops_drop_key / ops_drop_bits: element (query row t,\n"
"// key s) of the stream of (seed, step, micro, layer, b, h) is dropped when its bits < dthresh\n"
"__device__ __forceinline__ unsigned long long drop_mix64(unsigned long long z) {\n"
"    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;\n"
"    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;\n"
"    return z ^ (z >> 31);\n"
"}\n"
"__device__ __forceinline__ unsigned long long drop_key(unsigned long long seed, int step, int micro, int layer,\n"
"                                                       int b, int h) {\n"
"    unsigned long long z = drop_mix64(seed + 0x9E3779B97F4A7C15ull * ((unsigned long long)(unsigned)layer + 1));\n"
"    z = drop_mix64(z ^ ((unsigned long long)(unsigned)step << 32 | (unsigned)micro));\n"
"    return drop_mix64(z ^ ((unsigned long long)(unsigned)b << 32 | (unsigned)h));\n"
"}\n"
"__device__ __forceinline__ unsigned drop_fmix32(unsigned x) {\n"
"    x ^= x >> 16; x *= 0x85EBCA6Bu; x ^= x >> 13; x *= 0xC2B2AE35u; return x ^ (x >> 16);\n"
"}\n"
"__device__ __forceinline__ unsigned drop_bits(unsigned long long key, int t, int s) {\n"
"    unsigned x = drop_fmix32((unsigned)key ^ (unsigned)t * 0x9E3779B1u);\n"
"    return drop_fmix32(x ^ ((unsigned)(key >> 32) + (unsigned)s * 0x85EBCA77u));\n"
"}\n"
"#endif\n"
"\n"
"// copy ROWS rows of HD bf16 (row r at g + (row0 + r) * gstride) into smem with stride LDS;\n"
"// rows at or past T are zero-filled\n"
"template <int ROWS, int NTHREADS>\n"
"__device__ __forceinline__ void load_rows(bf16 *s, const bf16 *g, long gstride, int row0, int T) {\n"
"    const int CH = HD / 8;  // 16-byte chunks per row\n"
"#pragma unroll\n"
"    for (int it = 0; it < (ROWS * CH + NTHREADS - 1) / NTHREADS; it++) {\n"
"        int i = it * NTHREADS + threadIdx.x;\n"
"        if ((ROWS * CH) % NTHREADS == 0 || i < ROWS * CH) {\n"
"            int r = i / CH, c = i % CH, row = row0 + r;\n"
"            bool ok = row < T;\n"
"            cp_async16(s + r * LDS + c * 8, g + (ok ? row : 0) * gstride + c * 8, ok);\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// zero the padding columns HD..HDP-1 of ROWS smem rows once: load_rows never writes them\n"
"template <int ROWS, int NTHREADS>\n"
"__device__ __forceinline__ void zero_pad(bf16 *s) {\n"
"#if HDP > HD\n"
"    const int PC = (HDP - HD) / 8;  // 16-byte chunks of padding per row\n"
"    for (int i = threadIdx.x; i < ROWS * PC; i += NTHREADS)\n"
"        *(uint4 *)(s + (i / PC) * LDS + HD + (i % PC) * 8) = make_uint4(0u, 0u, 0u, 0u);\n"
"#endif\n"
"}\n"
"\n"
"// ---------------------------------------------------------------- forward\n"
"// grid (B*H, ceil(T/FWD_BM)); block FWD_WARPS warps. The heaviest query blocks\n"
"// (last rows: most keys under the causal mask) are scheduled first.\n"
"extern \"C\" __global__ void __launch_bounds__(FWD_WARPS * 32, FWD_MINB)\n"
"attn_fwd(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"         int T, int H, float scale_log2\n"
"#if ATTN_DROPOUT\n"
"         , const int *dctr, unsigned long long dseed, int dlayer, unsigned dthresh, float dscale\n"
"#endif\n"
"         ) {\n"
"    extern __shared__ __align__(16) bf16 smem[];\n"
"    bf16 *sQ = smem;                  // [FWD_BM][LDS]\n"
"    bf16 *sK = sQ + FWD_BM * LDS;     // [2][FWD_BN][LDS]\n"
"    bf16 *sV = sK + 2 * FWD_BN * LDS; // [2][FWD_BN][LDS]\n"
"\n"
"    const int KV = H / GROUP;\n"
"    const int b = blockIdx.x / H, h = blockIdx.x % H, kvh = h / GROUP;\n"
"    const int m0 = (gridDim.y - 1 - blockIdx.y) * FWD_BM;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long qs = (long)H * HD, ks = (long)KV * HD;  // row strides\n"
"    const bf16 *qb = q + (long)b * T * qs + h * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD;\n"
"    const bf16 *vb = v + (long)b * T * ks + kvh * HD;\n"
"#if ATTN_DROPOUT\n"
"    const unsigned long long dkey = drop_key(dseed, dctr[0], dctr[1], dlayer, b, h);  // step, micro: device\n"
"#endif\n"
"\n"
"    // key tiles this block needs: causal upper bound, window lower bound; with a pattern\n"
"    // the first tile some row sees, and the loop steps from seen tile to seen tile\n"
"    const int jhi = min(T - 1, m0 + FWD_BM - 1) / FWD_BN;\n"
"    int jlo = 0;\n"
"#if PATTERN\n"
"    const int rlast = min(T - 1, m0 + FWD_BM - 1);\n"
"    jlo = pat_next_tile<FWD_BN>(0, jhi, m0, rlast);\n"
"#else\n"
"    if (WINDOW > 0 && m0 - WINDOW + 1 > 0) jlo = (m0 - WINDOW + 1) / FWD_BN;\n"
"#endif\n"
"\n"
"    zero_pad<FWD_BM + 4 * FWD_BN, FWD_WARPS * 32>(smem);  // sQ, sK, sV are contiguous\n"
"    load_rows<FWD_BM, FWD_WARPS * 32>(sQ, qb, qs, m0, T);\n"
"    load_rows<FWD_BN, FWD_WARPS * 32>(sK, kb, ks, jlo * FWD_BN, T);\n"
"    load_rows<FWD_BN, FWD_WARPS * 32>(sV, vb, ks, jlo * FWD_BN, T);\n"
"    cp_async_commit();\n"
"\n"
"    const int r0 = m0 + warp * 16;  // this warp's first query row\n"
"    unsigned qf[HDP / 16][4];       // Q as A fragments, loaded once\n"
"    float o[HDP / 8][4];\n"
"#pragma unroll\n"
"    for (int i = 0; i < HDP / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;\n"
"    float mrow[2] = {NEG_INF, NEG_INF};  // running max, in log2 units (score * scale * log2e)\n"
"    float lrow[2] = {0.f, 0.f};              // running sum, partial over this thread's columns\n"
"\n"
"#if PATTERN\n"
"    for (int j = jlo, jn, buf = 0; j <= jhi; j = jn, buf ^= 1) {\n"
"        jn = pat_next_tile<FWD_BN>(j + 1, jhi, m0, rlast);\n"
"#else\n"
"    for (int j = jlo; j <= jhi; j++) {\n"
"        const int buf = (j - jlo) & 1, jn = j + 1;\n"
"#endif\n"
"        if (jn <= jhi) {  // prefetch the next K/V tile into the other buffer\n"
"            load_rows<FWD_BN, FWD_WARPS * 32>(sK + (buf ^ 1) * FWD_BN * LDS, kb, ks, jn * FWD_BN, T);\n"
"            load_rows<FWD_BN, FWD_WARPS * 32>(sV + (buf ^ 1) * FWD_BN * LDS, vb, ks, jn * FWD_BN, T);\n"
"            cp_async_commit();\n"
"            cp_async_wait<1>();\n"
"        } else {\n"
"            cp_async_wait<0>();\n"
"        }\n"
"        __syncthreads();\n"
"        if (j == jlo) {\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < HDP / 16; kk++)\n"
"                ldsm_x4(qf[kk], sQ + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS\n"
"                                   + kk * 16 + (lane >> 4) * 8);\n"
"        }\n"
"        const int n0 = j * FWD_BN;\n"
"        // a warp whose 16 rows see none of this tile's keys skips it (barriers stay outside)\n"
"#if PATTERN\n"
"        bool skip = r0 >= T || !pat_any(r0, min(T - 1, r0 + 15), n0, min(T - 1, n0 + FWD_BN - 1));\n"
"#else\n"
"        bool skip = n0 > r0 + 15 || (WINDOW > 0 && n0 + FWD_BN - 1 < r0 - WINDOW + 1);\n"
"#endif\n"
"        if (!skip) {\n"
"            const bf16 *Kt = sK + buf * FWD_BN * LDS, *Vt = sV + buf * FWD_BN * LDS;\n"
"            // S = Q K^T for 16 rows x FWD_BN keys\n"
"            float s[FWD_BN / 8][4];\n"
"#pragma unroll\n"
"            for (int i = 0; i < FWD_BN / 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < HDP / 16; kk++) {\n"
"#pragma unroll\n"
"                for (int nn = 0; nn < FWD_BN / 16; nn++) {\n"
"                    unsigned bfr[4];  // keys nn*16..+15, dims kk*16..+15: two B fragments\n"
"                    ldsm_x4(bfr, Kt + (nn * 16 + (lane & 7) + (lane >> 4) * 8) * LDS\n"
"                                    + kk * 16 + ((lane >> 3) & 1) * 8);\n"
"                    mma(s[2 * nn], qf[kk], bfr[0], bfr[1]);\n"
"                    mma(s[2 * nn + 1], qf[kk], bfr[2], bfr[3]);\n"
"                }\n"
"            }\n"
"            // mask only tiles that cross the diagonal, the window edge or the sequence end\n"
"            // (or, with a pattern, any tile not wholly seen by the warp's rows)\n"
"#if PATTERN\n"
"            bool need_mask = !pat_all(r0, r0 + 15, n0, n0 + FWD_BN - 1);\n"
"#else\n"
"            bool need_mask = n0 + FWD_BN - 1 > r0 || (WINDOW > 0 && n0 < r0 + 15 - WINDOW + 1);\n"
"#endif\n"
"            if (need_mask) {\n"
"#if PATTERN\n"
"                unsigned seen, dil;\n"
"                pat_col_bits<FWD_BN / 8>(n0, t4, &seen, &dil);\n"
"#endif\n"
"#pragma unroll\n"
"                for (int i = 0; i < FWD_BN / 8; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 4; e++) {\n"
"                        int row = r0 + g + (e >> 1) * 8, col = n0 + i * 8 + 2 * t4 + (e & 1);\n"
"#if PATTERN\n"
"                        if (!pat_visible_bits(row - col, 2 * i + (e & 1), seen, dil)) s[i][e] = NEG_INF;\n"
"#else\n"
"                        if (MASKED(row, col)) s[i][e] = NEG_INF;\n"
"#endif\n"
"                    }\n"
"            }\n"
"            // online softmax: rescale the running state by exp2(m_old - m_new)\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                float mx = NEG_INF;\n"
"#pragma unroll\n"
"                for (int i = 0; i < FWD_BN / 8; i++) mx = fmaxf(mx, fmaxf(s[i][2 * r], s[i][2 * r + 1]));\n"
"                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));\n"
"                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
"                float mnew = fmaxf(mrow[r], mx * scale_log2);\n"
"                // a row with nothing visible yet keeps max -inf: use 0 so exp2 gives 0, not NaN\n"
"                float muse = mnew == NEG_INF ? 0.f : mnew;\n"
"                float alpha = fast_exp2(mrow[r] - muse);\n"
"                mrow[r] = mnew;\n"
"                float sum = 0.f;\n"
"#pragma unroll\n"
"                for (int i = 0; i < FWD_BN / 8; i++) {\n"
"                    s[i][2 * r] = fast_exp2(fmaf(s[i][2 * r], scale_log2, -muse));\n"
"                    s[i][2 * r + 1] = fast_exp2(fmaf(s[i][2 * r + 1], scale_log2, -muse));\n"
"                    sum += s[i][2 * r] + s[i][2 * r + 1];\n"
"                }\n"
"                lrow[r] = lrow[r] * alpha + sum;\n"
"#pragma unroll\n"
"                for (int i = 0; i < HDP / 8; i++) { o[i][2 * r] *= alpha; o[i][2 * r + 1] *= alpha; }\n"
"            }\n"
"#if ATTN_DROPOUT\n"
"            // dropout on P after its row sums (lse is P's): dropped entries leave O; the kept\n"
"            // ones are scaled by dscale in the epilogue\n"
"#pragma unroll\n"
"            for (int i = 0; i < FWD_BN / 8; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++)\n"
"                    if (drop_bits(dkey, r0 + g + (e >> 1) * 8, n0 + i * 8 + 2 * t4 + (e & 1)) < dthresh) s[i][e] = 0.f;\n"
"#endif\n"
"            // O += P V: P goes from C fragments straight to A fragments\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < FWD_BN / 16; kk++) {\n"
"                unsigned a[4] = {pack_bf16(s[2 * kk][0], s[2 * kk][1]), pack_bf16(s[2 * kk][2], s[2 * kk][3]),\n"
"                                 pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),\n"
"                                 pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};\n"
"#pragma unroll\n"
"                for (int dn = 0; dn < HDP / 16; dn++) {\n"
"                    unsigned bfr[4];  // V[keys kk*16..][dims dn*16..], transposed into B fragments\n"
"                    ldsm_x4_t(bfr, Vt + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS\n"
"                                      + dn * 16 + (lane >> 4) * 8);\n"
"                    mma(o[2 * dn], a, bfr[0], bfr[1]);\n"
"                    mma(o[2 * dn + 1], a, bfr[2], bfr[3]);\n"
"                }\n"
"            }\n"
"        }\n"
"        __syncthreads();  // the next iteration's prefetch overwrites this tile's buffer\n"
"    }\n"
"\n"
"    // epilogue: finish the row sums across the quad, normalize, write out and lse\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        float l = lrow[r];\n"
"        l += __shfl_xor_sync(0xffffffffu, l, 1);\n"
"        l += __shfl_xor_sync(0xffffffffu, l, 2);\n"
"        int row = r0 + g + r * 8;\n"
"        if (row < T) {\n"
"            float inv = 1.f / l;\n"
"#if ATTN_DROPOUT\n"
"            inv *= dscale;  // the kept probabilities' 1 / (1 - p)\n"
"#endif\n"
"            bf16 *orow = out + ((long)b * T + row) * qs + h * HD;\n"
"#pragma unroll\n"
"            for (int i = 0; i < HD / 8; i++)\n"
"                *(unsigned *)(orow + i * 8 + 2 * t4) = pack_bf16(o[i][2 * r] * inv, o[i][2 * r + 1] * inv);\n"
"            if (t4 == 0) lse[((long)b * H + h) * T + row] = (mrow[r] + __log2f(l)) * LN2;\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// ---------------------------------------------------------------- backward\n"
"// Preprocess: D[b,h,t] = sum_i dO*O (fp32), and zero the fp32 dQ accumulator.\n"
"// PRE_TPR threads per (b,t,h) row (HD/8 rounded up to a power of two: the shuffle sum), 16-byte loads.\n"
"#define PRE_TPR (HD <= 32 ? 4 : HD <= 64 ? 8 : HD <= 128 ? 16 : 32)\n"
"// DQ_DET: also zero the per-(b, h, BWD_BM-row tile) turn counters of the fixed-order dQ.\n"
"extern \"C\" __global__ void attn_bwd_pre(float *Dsum, float *dqacc, const bf16 *out, const bf16 *dout,\n"
"                                        int T, int H, long rows\n"
"#if DQ_DET\n"
"                                        , int *dqcnt\n"
"#endif\n"
"                                        ) {\n"
"    const int TPR = PRE_TPR;\n"
"    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;\n"
"    long row = i / TPR;\n"
"    int c = (int)(i % TPR);\n"
"    float d = 0.f;\n"
"    if (row < rows && (PRE_TPR == HD / 8 || c < HD / 8)) {\n"
"        uint4 o4 = *(const uint4 *)(out + row * HD + c * 8);\n"
"        uint4 g4 = *(const uint4 *)(dout + row * HD + c * 8);\n"
"        unsigned ov[4] = {o4.x, o4.y, o4.z, o4.w}, gv[4] = {g4.x, g4.y, g4.z, g4.w};\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) d += bf16_lo(ov[e]) * bf16_lo(gv[e]) + bf16_hi(ov[e]) * bf16_hi(gv[e]);\n"
"        float4 z = make_float4(0.f, 0.f, 0.f, 0.f);\n"
"        *(float4 *)(dqacc + row * HD + c * 8) = z;\n"
"        *(float4 *)(dqacc + row * HD + c * 8 + 4) = z;\n"
"#if DQ_DET\n"
"        const long t_ = (row / H) % T;\n"
"        if (c == 0 && t_ % BWD_BM == 0)\n"
"            dqcnt[((row / H / T) * H + row % H) * ((T + BWD_BM - 1) / BWD_BM) + t_ / BWD_BM] = 0;\n"
"#endif\n"
"    }\n"
"#pragma unroll\n"
"    for (int off = TPR / 2; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);\n"
"    if (row < rows && c == 0) {\n"
"        long bt = row / H;\n"
"        int h = (int)(row % H);\n"
"        long b = bt / T, t = bt % T;\n"
"        Dsum[(b * H + h) * T + t] = d;\n"
"    }\n"
"}\n"
"\n"
"// dK, dV for one block of BWD_BN keys of one (b, kv head), looping over every query\n"
"// head of the GQA group and every query tile that sees these keys, so dK/dV sum in\n"
"// registers without atomics. Each warp owns 16 keys and computes the transposed\n"
"// scores S^T = K Q^T, so P^T and dS^T come out as A fragments for dV += P^T dO and\n"
"// dK += dS^T Q. dQ += dS K needs a sum over all the block's keys: dS^T goes through\n"
"// shared memory, and the partial dQ tile is reduced into an fp32 buffer with atomics.\n"
"// grid (B*KV, ceil(T/BWD_BN)), block BWD_WARPS warps; low key blocks (most work) first.\n"
"// DQ_DET: the key blocks add into a dQ tile in a fixed order (dq_rank, dq_sem_wait); the\n"
"// query tiles run from the last down with the group's heads inner (BWD_H, BWD_M), so in\n"
"// causal attention the blocks of a (b, kv head) reach each tile at the same iteration and a\n"
"// lower block is never behind a higher one for long (a window: lower blocks arrive first).\n"
"extern \"C\" __global__ void __launch_bounds__(BWD_WARPS * 32)\n"
"attn_bwd_dkdv(bf16 *dk, bf16 *dv, float *dqacc, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"              const bf16 *dout, const float *lse, const float *Dsum, int T, int H,\n"
"              float scale, float scale_log2\n"
"#if DQ_DET\n"
"              , bf16 *dq_unused, int *dqcnt\n"
"#endif\n"
"#if ATTN_DROPOUT\n"
"              , const int *dctr, unsigned long long dseed, int dlayer, unsigned dthresh, float dscale\n"
"#endif\n"
"              ) {\n"
"    extern __shared__ __align__(16) bf16 smem[];\n"
"    bf16 *sK = smem;                    // [BWD_BN][LDS]\n"
"    bf16 *sV = sK + BWD_BN * LDS;       // [BWD_BN][LDS]\n"
"    bf16 *sQ = sV + BWD_BN * LDS;       // [2][BWD_BM][LDS]\n"
"    bf16 *sdO = sQ + 2 * BWD_BM * LDS;  // [2][BWD_BM][LDS]\n"
"    bf16 *sdS = sdO + 2 * BWD_BM * LDS; // [BWD_BN][LDQ]  dS^T, keys x queries\n"
"    float *sL = (float *)(sdS + BWD_BN * LDQ);  // [2][BWD_BM] lse of the tile's rows\n"
"    float *sD = sL + 2 * BWD_BM;                // [2][BWD_BM] D of the tile's rows\n"
"\n"
"    const int NT = BWD_WARPS * 32;\n"
"    const int KV = H / GROUP;\n"
"    const int b = blockIdx.x / KV, kvh = blockIdx.x % KV;\n"
"    const int n0 = blockIdx.y * BWD_BN;\n"
"    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long qs = (long)H * HD, ks = (long)KV * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD;\n"
"    const bf16 *vb = v + (long)b * T * ks + kvh * HD;\n"
"\n"
"    // query tiles that see keys n0..n0+BWD_BN-1: from the diagonal to the window's end\n"
"    // (a pattern: to the last query that sees one of them; every tile between sees some)\n"
"    const int ilo = n0 / BWD_BM;\n"
"#if PATTERN\n"
"    const int last_q = pat_last_query(n0, min(T - 1, n0 + BWD_BN - 1), T);\n"
"#else\n"
"    const int last_q = WINDOW > 0 ? min(T - 1, n0 + BWD_BN - 1 + WINDOW - 1) : T - 1;\n"
"#endif\n"
"    const int nq = last_q / BWD_BM - ilo + 1;\n"
"    const int iters = GROUP * nq;\n"
"#if DQ_DET\n"
"#define BWD_H(it) (kvh * GROUP + (it) % GROUP)\n"
"#define BWD_M(it) ((ilo + nq - 1 - (it) / GROUP) * BWD_BM)\n"
"    const int ntm = (T + BWD_BM - 1) / BWD_BM;  // turn counters per (b, h)\n"
"#else\n"
"#define BWD_H(it) (kvh * GROUP + (it) / nq)\n"
"#define BWD_M(it) ((ilo + (it) % nq) * BWD_BM)\n"
"#endif\n"
"\n"
"    zero_pad<2 * BWD_BN + 4 * BWD_BM, NT>(smem);  // sK, sV, sQ, sdO are contiguous\n"
"    load_rows<BWD_BN, NT>(sK, kb, ks, n0, T);\n"
"    load_rows<BWD_BN, NT>(sV, vb, ks, n0, T);\n"
"\n"
"    // stage iteration `it` (query head, query tile) into buffer `buf`\n"
"#define BWD_LOAD(it, buf)                                                                   \\\n"
"    do {                                                                                    \\\n"
"        int h_ = BWD_H(it), m_ = BWD_M(it);                                                 \\\n"
"        long qoff_ = (long)b * T * qs + h_ * HD;                                            \\\n"
"        load_rows<BWD_BM, NT>(sQ + (buf) * BWD_BM * LDS, q + qoff_, qs, m_, T);             \\\n"
"        load_rows<BWD_BM, NT>(sdO + (buf) * BWD_BM * LDS, dout + qoff_, qs, m_, T);         \\\n"
"        if (threadIdx.x < BWD_BM) {                                                         \\\n"
"            int row_ = m_ + threadIdx.x;                                                    \\\n"
"            bool ok_ = row_ < T;                                                            \\\n"
"            long li_ = ((long)b * H + h_) * T + (ok_ ? row_ : 0);                           \\\n"
"            cp_async4(sL + (buf) * BWD_BM + threadIdx.x, lse + li_, ok_);                   \\\n"
"            cp_async4(sD + (buf) * BWD_BM + threadIdx.x, Dsum + li_, ok_);                  \\\n"
"        }                                                                                   \\\n"
"        cp_async_commit();                                                                  \\\n"
"    } while (0)\n"
"\n"
"    BWD_LOAD(0, 0);\n"
"\n"
"    float dka[DKV_W / 8][4], dva[DKV_W / 8][4];\n"
"#pragma unroll\n"
"    for (int i = 0; i < DKV_W / 8; i++)\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) dka[i][e] = dva[i][e] = 0.f;\n"
"\n"
"    const int kw = warp / DKV_SPLIT * 16;  // this warp's first key, local to the block\n"
"    const int dc0 = warp % DKV_SPLIT * DKV_W;  // its first dK, dV column\n"
"    for (int it = 0; it < iters; it++) {\n"
"        const int buf = it & 1;\n"
"        const int h = BWD_H(it), m0 = BWD_M(it);\n"
"        // buffer buf^1 was last read before the previous iteration's second barrier\n"
"        if (it + 1 < iters) { BWD_LOAD(it + 1, buf ^ 1); cp_async_wait<1>(); }\n"
"        else cp_async_wait<0>();\n"
"        __syncthreads();\n"
"        const bf16 *Qt = sQ + buf * BWD_BM * LDS, *dOt = sdO + buf * BWD_BM * LDS;\n"
"        const float *Lt = sL + buf * BWD_BM, *Dt = sD + buf * BWD_BM;\n"
"\n"
"        // a warp whose 16 keys no query of this tile sees (above the diagonal, or past\n"
"        // the window) only writes zeros for its rows of dS^T\n"
"#if PATTERN\n"
"        const bool skip = n0 + kw >= T || !pat_any(m0, min(T - 1, m0 + BWD_BM - 1), n0 + kw, min(T - 1, n0 + kw + 15));\n"
"#else\n"
"        const bool skip = m0 + BWD_BM - 1 < n0 + kw || (WINDOW > 0 && m0 > n0 + kw + 15 + WINDOW - 1);\n"
"#endif\n"
"        if (skip) {\n"
"            const int WORDS = 16 * BWD_BM / 2;  // bf16 pairs in this warp's 16 rows\n"
"#pragma unroll\n"
"            for (int i = lane; i < WORDS; i += 32)\n"
"                *(unsigned *)(sdS + (kw + i / (BWD_BM / 2)) * LDQ + 2 * (i % (BWD_BM / 2))) = 0u;\n"
"        } else {\n"
"        // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys x BWD_BM queries\n"
"        float st[BWD_BM / 8][4], dpt[BWD_BM / 8][4];\n"
"#pragma unroll\n"
"        for (int i = 0; i < BWD_BM / 8; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) st[i][e] = dpt[i][e] = 0.f;\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < HDP / 16; kk++) {\n"
"            unsigned ak[4], av[4];\n"
"            int aoff = (kw + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS + kk * 16 + (lane >> 4) * 8;\n"
"            ldsm_x4(ak, sK + aoff);\n"
"            ldsm_x4(av, sV + aoff);\n"
"#pragma unroll\n"
"            for (int nn = 0; nn < BWD_BM / 16; nn++) {\n"
"                int boff = (nn * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + kk * 16 + ((lane >> 3) & 1) * 8;\n"
"                unsigned bq[4], bo[4];\n"
"                ldsm_x4(bq, Qt + boff);\n"
"                ldsm_x4(bo, dOt + boff);\n"
"                mma(st[2 * nn], ak, bq[0], bq[1]);\n"
"                mma(st[2 * nn + 1], ak, bq[2], bq[3]);\n"
"                mma(dpt[2 * nn], av, bo[0], bo[1]);\n"
"                mma(dpt[2 * nn + 1], av, bo[2], bo[3]);\n"
"            }\n"
"        }\n"
"\n"
"        // P^T = exp(S^T scale - lse[q]); dS^T = P^T (dP^T - D[q]); masked entries are 0\n"
"        const int key0 = n0 + kw + g;  // keys key0 (e < 2) and key0 + 8 (e >= 2)\n"
"#if ATTN_DROPOUT\n"
"        const unsigned long long dkey = drop_key(dseed, dctr[0], dctr[1], dlayer, b, h);  // the forward's mask\n"
"#endif\n"
"#if PATTERN\n"
"        bool need_mask = !pat_all(m0, m0 + BWD_BM - 1, n0 + kw, n0 + kw + 15);\n"
"#else\n"
"        bool need_mask = m0 < n0 + kw + 15 || (WINDOW > 0 && n0 + kw < m0 + BWD_BM - WINDOW);\n"
"#endif\n"
"#pragma unroll\n"
"        for (int i = 0; i < BWD_BM / 8; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                int ql = i * 8 + 2 * t4 + (e & 1);\n"
"                float p = fast_exp2(fmaf(st[i][e], scale_log2, -Lt[ql] * LOG2E));\n"
"                if (need_mask) {\n"
"                    int key = key0 + (e >> 1) * 8, qr = m0 + ql;\n"
"                    if (MASKED(qr, key)) p = 0.f;\n"
"                }\n"
"#if ATTN_DROPOUT\n"
"                // dP' = dO V^T reaches P through the mask m (0 or dscale); dV takes P' = P m\n"
"                const float dm = drop_bits(dkey, m0 + ql, key0 + (e >> 1) * 8) < dthresh ? 0.f : dscale;\n"
"                dpt[i][e] *= dm;\n"
"#endif\n"
"                st[i][e] = p;\n"
"                dpt[i][e] = p * (dpt[i][e] - Dt[ql]);\n"
"#if ATTN_DROPOUT\n"
"                st[i][e] = p * dm;\n"
"#endif\n"
"            }\n"
"\n"
"        // dV += P^T dO, dK += dS^T Q (the scale is applied to dK at the end)\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < BWD_BM / 16; kk++) {\n"
"            unsigned ap[4] = {pack_bf16(st[2 * kk][0], st[2 * kk][1]), pack_bf16(st[2 * kk][2], st[2 * kk][3]),\n"
"                              pack_bf16(st[2 * kk + 1][0], st[2 * kk + 1][1]),\n"
"                              pack_bf16(st[2 * kk + 1][2], st[2 * kk + 1][3])};\n"
"            unsigned as[4] = {pack_bf16(dpt[2 * kk][0], dpt[2 * kk][1]), pack_bf16(dpt[2 * kk][2], dpt[2 * kk][3]),\n"
"                              pack_bf16(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]),\n"
"                              pack_bf16(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3])};\n"
"            // dS^T to smem for the dQ product (rows = keys, cols = queries)\n"
"            *(unsigned *)(sdS + (kw + g) * LDQ + kk * 16 + 2 * t4) = as[0];\n"
"            *(unsigned *)(sdS + (kw + g + 8) * LDQ + kk * 16 + 2 * t4) = as[1];\n"
"            *(unsigned *)(sdS + (kw + g) * LDQ + kk * 16 + 8 + 2 * t4) = as[2];\n"
"            *(unsigned *)(sdS + (kw + g + 8) * LDQ + kk * 16 + 8 + 2 * t4) = as[3];\n"
"#pragma unroll\n"
"            for (int dn = 0; dn < DKV_W / 16; dn++) {\n"
"                int boff = (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS + dc0 + dn * 16 + (lane >> 4) * 8;\n"
"                unsigned bo[4], bq[4];\n"
"                ldsm_x4_t(bo, dOt + boff);\n"
"                ldsm_x4_t(bq, Qt + boff);\n"
"                mma(dva[2 * dn], ap, bo[0], bo[1]);\n"
"                mma(dva[2 * dn + 1], ap, bo[2], bo[3]);\n"
"                mma(dka[2 * dn], as, bq[0], bq[1]);\n"
"                mma(dka[2 * dn + 1], as, bq[2], bq[3]);\n"
"            }\n"
"        }\n"
"        }\n"
"#if DQ_DET\n"
"        if (warp == 0) {  // hand the previous tile on (its adds preceded this iteration's first\n"
"                          // barrier), then wait for this tile's turn\n"
"            const int rank = dq_rank<BWD_BM, BWD_BN>(blockIdx.y, m0 / BWD_BM, T);\n"
"            if (lane == 0) {\n"
"                if (it > 0) dq_sem_signal(dqcnt + ((long)b * H + BWD_H(it - 1)) * ntm + BWD_M(it - 1) / BWD_BM);\n"
"                dq_sem_wait(dqcnt + ((long)b * H + h) * ntm + m0 / BWD_BM, rank);\n"
"            }\n"
"        }\n"
"#endif\n"
"        __syncthreads();  // dS^T complete\n"
"\n"
"        // dQ[m0.., dims] += scale * dS K: warp owns 16 query rows x DQ_DW dims, sums over all keys\n"
"        {\n"
"            const int rg = warp % DQ_RG, cg = warp / DQ_RG;\n"
"            float acc[DQ_DW / 8][4];\n"
"#pragma unroll\n"
"            for (int i = 0; i < DQ_DW / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.f;\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < BWD_BN / 16; kk++) {\n"
"                unsigned a[4];  // dS (queries x keys) read transposed out of dS^T\n"
"                ldsm_x4_t(a, sdS + (kk * 16 + (lane & 7) + (lane >> 4) * 8) * LDQ + rg * 16 + ((lane >> 3) & 1) * 8);\n"
"#pragma unroll\n"
"                for (int dn = 0; dn < DQ_DW / 16; dn++) {\n"
"                    if (!DQ_EVEN && cg * DQ_TPW + dn >= DQ_NT) continue;  // past the last tile\n"
"                    unsigned bk[4];\n"
"                    ldsm_x4_t(bk, sK + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LDS\n"
"                                     + cg * DQ_DW + dn * 16 + (lane >> 4) * 8);\n"
"                    mma(acc[2 * dn], a, bk[0], bk[1]);\n"
"                    mma(acc[2 * dn + 1], a, bk[2], bk[3]);\n"
"                }\n"
"            }\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                int row = m0 + rg * 16 + g + r * 8;\n"
"                if (row < T) {\n"
"                    float *dst = dqacc + ((long)b * T + row) * qs + h * HD + cg * DQ_DW + 2 * t4;\n"
"#pragma unroll\n"
"                    for (int i = 0; i < DQ_DW / 8; i++)\n"
"                        if (DQ_EVEN || cg * DQ_DW + i * 8 < HD)\n"
"                        red_add2(dst + i * 8, acc[i][2 * r] * scale, acc[i][2 * r + 1] * scale);\n"
"                }\n"
"            }\n"
"        }\n"
"    }\n"
"#undef BWD_LOAD\n"
"#if DQ_DET\n"
"    __syncthreads();  // the last tile's adds are done: hand it on\n"
"    if (threadIdx.x == 0) dq_sem_signal(dqcnt + ((long)b * H + BWD_H(iters - 1)) * ntm + BWD_M(iters - 1) / BWD_BM);\n"
"#endif\n"
"#undef BWD_H\n"
"#undef BWD_M\n"
"\n"
"    // write this warp's 16 rows of dK (scaled) and dV\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        int key = n0 + kw + g + r * 8;\n"
"        if (key < T) {\n"
"            bf16 *dkr = dk + ((long)b * T + key) * ks + kvh * HD;\n"
"            bf16 *dvr = dv + ((long)b * T + key) * ks + kvh * HD;\n"
"#pragma unroll\n"
"            for (int i = 0; i < DKV_W / 8; i++) {\n"
"                if (HD < HDP && dc0 + i * 8 >= HD) continue;  // padding columns\n"
"                *(unsigned *)(dkr + dc0 + i * 8 + 2 * t4) = pack_bf16(dka[i][2 * r] * scale, dka[i][2 * r + 1] * scale);\n"
"                *(unsigned *)(dvr + dc0 + i * 8 + 2 * t4) = pack_bf16(dva[i][2 * r], dva[i][2 * r + 1]);\n"
"            }\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// dq (bf16) = dqacc (fp32, already scaled); 8 elements per thread\n"
"extern \"C\" __global__ void attn_bwd_dq_convert(bf16 *dq, const float *dqacc, long n8) {\n"
"    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;\n"
"    if (i >= n8) return;\n"
"    float4 a = *(const float4 *)(dqacc + i * 8), c = *(const float4 *)(dqacc + i * 8 + 4);\n"
"    uint4 r = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(c.x, c.y), pack_bf16(c.z, c.w));\n"
"    *(uint4 *)(dq + i * 8) = r;\n"
"}\n";

/* ---------------------------------------------------------------- Hopper kernels
   sm_90a only (wgmma), hd 64: compiled with --gpu-architecture=sm_90a (gpu.h lets an
   explicit architecture in the options replace the device's default target). */
#ifndef ATTN_WFWD_BN
#define ATTN_WFWD_BN 128  /* keys per forward tile (64: 106 registers, no spill, 5% slower) */
#endif
#ifndef ATTN_WBWD_DQ_BULK
#define ATTN_WBWD_DQ_BULK 2 /* backward dQ: 0 red.global.add.v4 per thread into [B,T,H,64];
                               1 one bulk-copy-engine reduce per 256-byte row (12% slower than 0);
                               2 a tiled [B,H,T,64] accumulator, one 16 KB bulk reduce per tile;
                               3 the tiled accumulator, coalesced red.v4 from shared memory;
                               4 as 2, and the block making a tile's last add converts it.
                               Gpu.tuning.attn_wbwd_dq (variant 0..4) overrides. */
#endif
#ifndef ATTN_WFWD_WG
#define ATTN_WFWD_WG 2    /* forward warpgroups per block, 64 query rows each (3: 25% slower) */
#endif
static const char ATTN_WGMMA_SRC[] =
KSRC_LINE("attn/dense.cu.h") "// Flash attention forward and backward for Hopper (sm_90a): wgmma.mma_async with\n"
"// operands in 128-byte-swizzled shared memory (cp.async loads), hd 32..128. Same\n"
"// layouts and semantics as ATTN_KERNELS_SRC, whose attn_bwd_pre and attn_bwd_dq_convert\n"
"// run around attn_bwd_dkdv_wg. Compile-time parameters: GROUP, WINDOW and the pattern's\n"
"// GLOBAL, STRIDE, DILATION, DSPAN, PBLOCK (as there).\n"
"//\n"
"// Shared-memory tiles: [rows][64] bf16, 128 bytes a row, 8-row atoms of 1024 bytes,\n"
"// 16-byte chunk c of row r stored at chunk c ^ (r % 8) (the SWIZZLE_128B pattern),\n"
"// every tile 1024-byte aligned. Read as a K-major operand (rows = M or N, the 64\n"
"// columns = K), a k16 step advances the descriptor's start by 32 bytes; read as an\n"
"// MN-major operand (rows = K, columns = M or N, exactly 64 of them), a k16 step\n"
"// advances by 16 rows = 2048 bytes.\n"
"// wgmma accumulator layout (m64nN, per warp w of the warpgroup, g = lane/4, t = lane%4):\n"
"//   d[4i+0], d[4i+1]: row 16w+g, cols 8i+2t, 8i+2t+1;  d[4i+2], d[4i+3]: row 16w+g+8\n"
"// (the mma.sync C layout per 8 columns), so columns 16kk..16kk+15 repacked to bf16 are\n"
"// an A fragment: {d[8kk],d[8kk+1]}, {d[8kk+2],d[8kk+3]}, {d[8kk+4],d[8kk+5]}, {d[8kk+6],d[8kk+7]}.\n"
"// Any wgmma inside a branch that depends on the warpgroup index makes ptxas serialize\n"
"// them all (C7520), and an accumulator read whose completion ptxas cannot prove (e.g.\n"
"// a wait_group N > 0 across loop iterations) does too (C7514): keep both out.\n"
"\n"
"#ifndef GROUP\n"
"#define GROUP 1\n"
"#endif\n"
"#ifndef WINDOW\n"
"#define WINDOW 0\n"
"#endif\n"
"#include \"ablate_pattern.cuh\"       // the sparse patterns (ops.h, OpsPattern): parameters, tile helpers\n"
ATTN_DQ_ORDER_SRC KSRC_LINE("attn/dense.cu.h") "#ifndef HD\n"
"#define HD 64\n"
"#endif\n"
"// HD: any multiple of 8 from 32 to 128 (the selection-mask kernels: 64). The head is WNH\n"
"// 64-column halves, columns past HD zero-filled in shared memory, never loaded or stored;\n"
"// S sums over WKS k16 steps, the ones that reach column HD.\n"
"#if HD % 8 || HD < 32 || HD > 128\n"
"#error \"the Hopper kernels take HD a multiple of 8 from 32 to 128\"\n"
"#endif\n"
"#define WNH ((HD + 63) / 64)\n"
"#define WKS ((HD + 15) / 16)\n"
"// SELMASK 1: a per-(query, key) selection bitmask as the mask (DSA's top-k run as dense\n"
"// tiles): selmask [B][T][SELW(T)] words, bit s % 32 of word s / 32 of row t set when query\n"
"// t sees key s (never above the diagonal); rows padded to whole 128-key tiles\n"
"#ifndef SELMASK\n"
"#define SELMASK 0\n"
"#endif\n"
"#define SELW(T) ((((T) + 127) / 128) * 4)\n"
"#if SELMASK && HD != 64\n"
"#error \"the selection-mask kernels take HD 64 only\"\n"
"#endif\n"
"\n"
"typedef unsigned short bf16;\n"
"typedef unsigned long long u64;\n"
"\n"
"#define NEG_INF __int_as_float(0xff800000u)\n"
"#define LOG2E 1.4426950408889634f\n"
"#define LN2 0.6931471805599453f\n"
"\n"
"// ---------------------------------------------------------------- helpers\n"
"#include \"ablate_mma.cuh\"           // cp.async, ldmatrix, mma.sync, bf16x2, ex2\n"
"__device__ __forceinline__ void red_add2(float *p, float a, float b) {\n"
"    asm volatile(\"red.global.add.v2.f32 [%0], {%1, %2};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b) : \"memory\");\n"
"}\n"
"// cp_async16 to a shared address already computed (the swizzled tiles' byte addresses)\n"
"__device__ __forceinline__ void cp_async16(unsigned dst, const void *src, bool valid) {\n"
"    asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" :: \"r\"(dst), \"l\"(src), \"r\"(valid ? 16 : 0));\n"
"}\n"
"__device__ __forceinline__ void red_add4(float *p, float a, float b, float c, float d) {\n"
"    asm volatile(\"red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b), \"f\"(c), \"f\"(d) : \"memory\");\n"
"}\n"
"// element offset of (row r, column c) in a swizzled [rows][64] tile\n"
"__device__ __forceinline__ int swz(int r, int c) { return r * 64 + ((((c >> 3) ^ r) & 7) << 3) + (c & 7); }\n"
"\n"
"// copy ROWS rows of 64 bf16 (row r at g + (row0 + r) * gstride, columns col0..col0+63)\n"
"// into swizzled smem at byte address s; rows at or past T and columns at or past HD are\n"
"// zero-filled (never loaded)\n"
"template <int ROWS, int NTHREADS>\n"
"__device__ __forceinline__ void load_sw(unsigned s, const bf16 *g, long gstride, int row0, int T, int col0 = 0) {\n"
"#pragma unroll\n"
"    for (int it = 0; it < (ROWS * 8 + NTHREADS - 1) / NTHREADS; it++) {\n"
"        int i = it * NTHREADS + threadIdx.x, r = i >> 3, c = i & 7, row = row0 + r;\n"
"        if ((ROWS * 8) % NTHREADS == 0 || i < ROWS * 8) {\n"
"            bool ok = row < T && (HD % 64 == 0 || col0 + c * 8 < HD);\n"
"            cp_async16(s + r * 128 + ((c ^ r) & 7) * 16, g + (ok ? (long)row * gstride + col0 + c * 8 : 0), ok);\n"
"        }\n"
"    }\n"
"}\n"
"// the WNH column halves of ROWS rows, half hh at s + hh * ROWS * 128\n"
"template <int ROWS, int NTHREADS>\n"
"__device__ __forceinline__ void load_swh(unsigned s, const bf16 *g, long gstride, int row0, int T) {\n"
"#pragma unroll\n"
"    for (int hh = 0; hh < WNH; hh++) load_sw<ROWS, NTHREADS>(s + hh * ROWS * 128, g, gstride, row0, T, hh * 64);\n"
"}\n"
"\n"
"// wgmma shared-memory matrix descriptor, SWIZZLE_128B, 1024 bytes between 8-row groups.\n"
"// lbo: 16 for K-major operands (unused there), 1024 for MN-major ones (whose MN extent is\n"
"// exactly one 64-element atom here, so only the 8-row stride matters)\n"
"__device__ __forceinline__ u64 gdesc(unsigned addr, unsigned lbo) {\n"
"    return (u64)((addr & 0x3FFFF) >> 4) | ((u64)(lbo >> 4) << 16) | ((u64)(1024 >> 4) << 32) | (1ull << 62);\n"
"}\n"
"__device__ __forceinline__ void wg_fence() { asm volatile(\"wgmma.fence.sync.aligned;\\n\" ::: \"memory\"); }\n"
"__device__ __forceinline__ void wg_commit() { asm volatile(\"wgmma.commit_group.sync.aligned;\\n\" ::: \"memory\"); }\n"
"template <int N> __device__ __forceinline__ void wg_wait() {\n"
"    asm volatile(\"wgmma.wait_group.sync.aligned %0;\\n\" :: \"n\"(N) : \"memory\");\n"
"}\n"
"// keep the compiler from touching accumulators across the asynchronous wgmma\n"
"template <int N> __device__ __forceinline__ void fence_regs(float *d) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < N; i++) asm volatile(\"\" : \"+f\"(d[i]) :: \"memory\");\n"
"}\n"
"// generic-proxy shared-memory writes (cp.async, st.shared) made visible to wgmma\n"
"__device__ __forceinline__ void fence_proxy() { asm volatile(\"fence.proxy.async.shared::cta;\\n\" ::: \"memory\"); }\n"
"\n"
"// d (+)= A B on one warpgroup, m64nNk16, bf16 in, fp32 accumulate; accum = 0 overwrites d.\n"
"// TA/TB = 1: that operand is MN-major (transposed)\n"
"template <int TA, int TB>\n"
"__device__ __forceinline__ void wg_ss32(float *d, u64 da, u64 db, int accum) {\n"
"    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %18, 0;\\n\"\n"
"                 \"wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1, %19, %20;\\n}\\n\"\n"
"                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3]), \"+f\"(d[4]), \"+f\"(d[5]), \"+f\"(d[6]), \"+f\"(d[7]), \"+f\"(d[8]), \"+f\"(d[9]), \"+f\"(d[10]), \"+f\"(d[11]), \"+f\"(d[12]), \"+f\"(d[13]), \"+f\"(d[14]), \"+f\"(d[15])\n"
"                 : \"l\"(da), \"l\"(db), \"r\"(accum), \"n\"(TA), \"n\"(TB));\n"
"}\n"
"template <int TA, int TB>\n"
"__device__ __forceinline__ void wg_ss64(float *d, u64 da, u64 db, int accum) {\n"
"    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %34, 0;\\n\"\n"
"                 \"wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, %35, %36;\\n}\\n\"\n"
"                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3]), \"+f\"(d[4]), \"+f\"(d[5]), \"+f\"(d[6]), \"+f\"(d[7]), \"+f\"(d[8]), \"+f\"(d[9]), \"+f\"(d[10]), \"+f\"(d[11]), \"+f\"(d[12]), \"+f\"(d[13]), \"+f\"(d[14]), \"+f\"(d[15]), \"+f\"(d[16]), \"+f\"(d[17]), \"+f\"(d[18]), \"+f\"(d[19]), \"+f\"(d[20]), \"+f\"(d[21]), \"+f\"(d[22]), \"+f\"(d[23]), \"+f\"(d[24]), \"+f\"(d[25]), \"+f\"(d[26]), \"+f\"(d[27]), \"+f\"(d[28]), \"+f\"(d[29]), \"+f\"(d[30]), \"+f\"(d[31])\n"
"                 : \"l\"(da), \"l\"(db), \"r\"(accum), \"n\"(TA), \"n\"(TB));\n"
"}\n"
"template <int TA, int TB>\n"
"__device__ __forceinline__ void wg_ss128(float *d, u64 da, u64 db, int accum) {\n"
"    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %66, 0;\\n\"\n"
"                 \"wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, %67, %68;\\n}\\n\"\n"
"                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3]), \"+f\"(d[4]), \"+f\"(d[5]), \"+f\"(d[6]), \"+f\"(d[7]), \"+f\"(d[8]), \"+f\"(d[9]), \"+f\"(d[10]), \"+f\"(d[11]), \"+f\"(d[12]), \"+f\"(d[13]), \"+f\"(d[14]), \"+f\"(d[15]), \"+f\"(d[16]), \"+f\"(d[17]), \"+f\"(d[18]), \"+f\"(d[19]), \"+f\"(d[20]), \"+f\"(d[21]), \"+f\"(d[22]), \"+f\"(d[23]), \"+f\"(d[24]), \"+f\"(d[25]), \"+f\"(d[26]), \"+f\"(d[27]), \"+f\"(d[28]), \"+f\"(d[29]), \"+f\"(d[30]), \"+f\"(d[31]), \"+f\"(d[32]), \"+f\"(d[33]), \"+f\"(d[34]), \"+f\"(d[35]), \"+f\"(d[36]), \"+f\"(d[37]), \"+f\"(d[38]), \"+f\"(d[39]), \"+f\"(d[40]), \"+f\"(d[41]), \"+f\"(d[42]), \"+f\"(d[43]), \"+f\"(d[44]), \"+f\"(d[45]), \"+f\"(d[46]), \"+f\"(d[47]), \"+f\"(d[48]), \"+f\"(d[49]), \"+f\"(d[50]), \"+f\"(d[51]), \"+f\"(d[52]), \"+f\"(d[53]), \"+f\"(d[54]), \"+f\"(d[55]), \"+f\"(d[56]), \"+f\"(d[57]), \"+f\"(d[58]), \"+f\"(d[59]), \"+f\"(d[60]), \"+f\"(d[61]), \"+f\"(d[62]), \"+f\"(d[63])\n"
"                 : \"l\"(da), \"l\"(db), \"r\"(accum), \"n\"(TA), \"n\"(TB));\n"
"}\n"
"// A from registers (accumulator layout repacked to bf16), B MN-major (transposed)\n"
"__device__ __forceinline__ void wg_rs64_tb(float *d, const unsigned *a, u64 db, int accum) {\n"
"    asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %37, 0;\\n\"\n"
"                 \"wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\\n}\\n\"\n"
"                 : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3]), \"+f\"(d[4]), \"+f\"(d[5]), \"+f\"(d[6]), \"+f\"(d[7]), \"+f\"(d[8]), \"+f\"(d[9]), \"+f\"(d[10]), \"+f\"(d[11]), \"+f\"(d[12]), \"+f\"(d[13]), \"+f\"(d[14]), \"+f\"(d[15]), \"+f\"(d[16]), \"+f\"(d[17]), \"+f\"(d[18]), \"+f\"(d[19]), \"+f\"(d[20]), \"+f\"(d[21]), \"+f\"(d[22]), \"+f\"(d[23]), \"+f\"(d[24]), \"+f\"(d[25]), \"+f\"(d[26]), \"+f\"(d[27]), \"+f\"(d[28]), \"+f\"(d[29]), \"+f\"(d[30]), \"+f\"(d[31])\n"
"                 : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(db), \"r\"(accum));\n"
"}\n"
"\n"
"// ---------------------------------------------------------------- forward\n"
"// grid (B*H, ceil(T/WFWD_BM)), block WFWD_WG warpgroups, each owning 64 query rows; K/V tiles of\n"
"// WFWD_BN keys double-buffered by cp.async. S = Q K^T: A = Q, B = K (both K-major);\n"
"// O += P V: A = P from registers, B = V (MN-major).\n"
"#ifndef WFWD_BN\n"
"#define WFWD_BN 128\n"
"#endif\n"
"#ifndef WFWD_WG\n"
"#define WFWD_WG 2\n"
"#endif\n"
"#define WFWD_BM (64 * WFWD_WG)\n"
"#if SELMASK && WFWD_BN != 128\n"
"#error \"SELMASK needs key tiles of 128 (four mask words a row)\"\n"
"#endif\n"
"#define WFWD_NT (128 * WFWD_WG)\n"
"#ifndef KL_HI  // the indexer-KL module holds the KL kernels only\n"
"extern \"C\" __global__ void __launch_bounds__(WFWD_NT, WFWD_WG == 2 && WNH == 1 ? 2 : 1)\n"
"attn_fwd_wg(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"            int T, int H, float scale_log2\n"
"#if SELMASK\n"
"            , const unsigned *selmask\n"
"#endif\n"
"            ) {\n"
"    extern __shared__ __align__(1024) unsigned char smem_raw[];\n"
"    const unsigned s0 = (smem_addr(smem_raw) + 1023u) & ~1023u;\n"
"    // byte addresses; a tile of R rows is WNH column halves of R * 128 bytes\n"
"    const unsigned sQ = s0, sK = sQ + WNH * WFWD_BM * 128, sV = sK + 2 * WNH * WFWD_BN * 128;\n"
"#if SELMASK\n"
"    // the mask words of a key tile for the block's rows: [2 buffers][WFWD_BM rows][4 words]\n"
"    unsigned *sM = (unsigned *)(smem_raw + (sV + 2 * WFWD_BN * 128 - smem_addr(smem_raw)));\n"
"#endif\n"
"\n"
"    const int KV = H / GROUP;\n"
"    const int b = blockIdx.x / H, h = blockIdx.x % H, kvh = h / GROUP;\n"
"    const int m0 = (gridDim.y - 1 - blockIdx.y) * WFWD_BM;\n"
"    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long qs = (long)H * HD, ks = (long)KV * HD;\n"
"    const bf16 *qb = q + (long)b * T * qs + h * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD;\n"
"    const bf16 *vb = v + (long)b * T * ks + kvh * HD;\n"
"\n"
"    const int jhi = min(T - 1, m0 + WFWD_BM - 1) / WFWD_BN;\n"
"    int jlo = 0;\n"
"#if PATTERN\n"
"    const int rlast = min(T - 1, m0 + WFWD_BM - 1);\n"
"    jlo = pat_next_tile<WFWD_BN>(0, jhi, m0, rlast);\n"
"#else\n"
"    if (WINDOW > 0 && m0 - WINDOW + 1 > 0) jlo = (m0 - WINDOW + 1) / WFWD_BN;\n"
"#endif\n"
"\n"
"    load_swh<WFWD_BM, WFWD_NT>(sQ, qb, qs, m0, T);\n"
"    load_swh<WFWD_BN, WFWD_NT>(sK, kb, ks, jlo * WFWD_BN, T);\n"
"    load_swh<WFWD_BN, WFWD_NT>(sV, vb, ks, jlo * WFWD_BN, T);\n"
"#if SELMASK\n"
"    const unsigned *mrows = selmask + ((long)b * T + m0) * SELW(T);  // row m0, word 0\n"
"#define WFWD_MASK_LOAD(j, buf)                                                              \\\n"
"    if (tid < WFWD_BM)                                                                      \\\n"
"        cp_async16(sM + ((buf) * WFWD_BM + tid) * 4, mrows + (long)(m0 + tid < T ? tid : 0) * SELW(T) + (j) * 4, \\\n"
"                   m0 + tid < T)\n"
"    WFWD_MASK_LOAD(jlo, 0);\n"
"#endif\n"
"    cp_async_commit();\n"
"\n"
"    const int r0 = m0 + wg * 64;          // this warpgroup's first query row\n"
"    const int rw = r0 + warp * 16 + g;    // this thread's rows rw, rw + 8\n"
"    float o[32 * WNH];  // half hh's m64n64 accumulator at o + 32 hh: column 8i + 2t4 (+1) at o[4i (+1)]\n"
"#pragma unroll\n"
"    for (int i = 0; i < 32 * WNH; i++) o[i] = 0.f;\n"
"    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};\n"
"\n"
"#if PATTERN\n"
"    for (int j = jlo, jn, buf = 0; j <= jhi; j = jn, buf ^= 1) {\n"
"        jn = pat_next_tile<WFWD_BN>(j + 1, jhi, m0, rlast);\n"
"#else\n"
"    for (int j = jlo; j <= jhi; j++) {\n"
"        const int buf = (j - jlo) & 1, jn = j + 1;\n"
"#endif\n"
"        if (jn <= jhi) {\n"
"            load_swh<WFWD_BN, WFWD_NT>(sK + (buf ^ 1) * WNH * WFWD_BN * 128, kb, ks, jn * WFWD_BN, T);\n"
"            load_swh<WFWD_BN, WFWD_NT>(sV + (buf ^ 1) * WNH * WFWD_BN * 128, vb, ks, jn * WFWD_BN, T);\n"
"#if SELMASK\n"
"            WFWD_MASK_LOAD(jn, buf ^ 1);\n"
"#endif\n"
"            cp_async_commit();\n"
"            cp_async_wait<1>();\n"
"        } else {\n"
"            cp_async_wait<0>();\n"
"        }\n"
"        fence_proxy();\n"
"        __syncthreads();\n"
"        const int n0 = j * WFWD_BN;\n"
"#if PATTERN\n"
"        const bool skip = r0 >= T || !pat_any(r0, min(T - 1, r0 + 63), n0, min(T - 1, n0 + WFWD_BN - 1));\n"
"#else\n"
"        const bool skip = n0 > r0 + 63 || (WINDOW > 0 && n0 + WFWD_BN - 1 < r0 - WINDOW + 1);\n"
"#endif\n"
"        if (!skip) {\n"
"            const unsigned Kt = sK + buf * WNH * WFWD_BN * 128, Vt = sV + buf * WNH * WFWD_BN * 128;\n"
"            float s[WFWD_BN / 2];\n"
"            wg_fence();\n"
"            // k16 step kk reads column half kk / 4 (steps past HD's last 16 columns skipped)\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < WKS; kk++)\n"
"#if WFWD_BN == 128\n"
"                wg_ss128<0, 0>(s, gdesc(sQ + (kk >> 2) * WFWD_BM * 128 + wg * 8192 + (kk & 3) * 32, 16),\n"
"                               gdesc(Kt + (kk >> 2) * WFWD_BN * 128 + (kk & 3) * 32, 16), kk);\n"
"#else\n"
"                wg_ss64<0, 0>(s, gdesc(sQ + (kk >> 2) * WFWD_BM * 128 + wg * 8192 + (kk & 3) * 32, 16),\n"
"                              gdesc(Kt + (kk >> 2) * WFWD_BN * 128 + (kk & 3) * 32, 16), kk);\n"
"#endif\n"
"            wg_commit();\n"
"            wg_wait<0>();\n"
"            fence_regs<WFWD_BN / 2>(s);\n"
"#if SELMASK\n"
"            {   // the selection: bit (i & 3) * 8 + 2 t4 + (e & 1) of word i / 4 of the thread's rows\n"
"                const unsigned *mw = sM + (buf * WFWD_BM + rw - m0) * 4;\n"
"                const uint4 ma = *(const uint4 *)mw, mb = *(const uint4 *)(mw + 32);  // rows rw, rw + 8\n"
"                const unsigned wa[4] = {ma.x, ma.y, ma.z, ma.w}, wb[4] = {mb.x, mb.y, mb.z, mb.w};\n"
"#pragma unroll\n"
"                for (int i = 0; i < WFWD_BN / 8; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 4; e++) {\n"
"                        const unsigned w = (e >> 1) ? wb[i >> 2] : wa[i >> 2];\n"
"                        if (!((w >> ((i & 3) * 8 + 2 * t4 + (e & 1))) & 1u)) s[4 * i + e] = NEG_INF;\n"
"                    }\n"
"            }\n"
"            const bool need_mask = false;\n"
"#elif PATTERN\n"
"            const bool need_mask = !pat_all(r0, r0 + 63, n0, n0 + WFWD_BN - 1);\n"
"#else\n"
"            const bool need_mask = n0 + WFWD_BN - 1 > r0 || (WINDOW > 0 && n0 < r0 + 63 - WINDOW + 1);\n"
"#endif\n"
"            if (need_mask) {\n"
"#if PATTERN\n"
"                unsigned seen, dil;\n"
"                pat_col_bits<WFWD_BN / 8>(n0, t4, &seen, &dil);\n"
"#endif\n"
"#pragma unroll\n"
"                for (int i = 0; i < WFWD_BN / 8; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 4; e++) {\n"
"                        int row = rw + (e >> 1) * 8, col = n0 + i * 8 + 2 * t4 + (e & 1);\n"
"#if PATTERN\n"
"                        if (!pat_visible_bits(row - col, 2 * i + (e & 1), seen, dil)) s[4 * i + e] = NEG_INF;\n"
"#else\n"
"                        if (MASKED(row, col)) s[4 * i + e] = NEG_INF;\n"
"#endif\n"
"                    }\n"
"            }\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                float mx = NEG_INF;\n"
"#pragma unroll\n"
"                for (int i = 0; i < WFWD_BN / 8; i++) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * r], s[4 * i + 2 * r + 1]));\n"
"                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));\n"
"                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
"                float mnew = fmaxf(mrow[r], mx * scale_log2);\n"
"                float muse = mnew == NEG_INF ? 0.f : mnew;\n"
"                float alpha = fast_exp2(mrow[r] - muse);\n"
"                mrow[r] = mnew;\n"
"                float sum = 0.f;\n"
"#pragma unroll\n"
"                for (int i = 0; i < WFWD_BN / 8; i++) {\n"
"                    s[4 * i + 2 * r] = fast_exp2(fmaf(s[4 * i + 2 * r], scale_log2, -muse));\n"
"                    s[4 * i + 2 * r + 1] = fast_exp2(fmaf(s[4 * i + 2 * r + 1], scale_log2, -muse));\n"
"                    sum += s[4 * i + 2 * r] + s[4 * i + 2 * r + 1];\n"
"                }\n"
"                lrow[r] = lrow[r] * alpha + sum;\n"
"#pragma unroll\n"
"                for (int i = 0; i < 8 * WNH; i++) { o[4 * i + 2 * r] *= alpha; o[4 * i + 2 * r + 1] *= alpha; }\n"
"            }\n"
"            unsigned pa[WFWD_BN / 16][4];\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < WFWD_BN / 16; kk++) {\n"
"                pa[kk][0] = pack_bf16(s[8 * kk], s[8 * kk + 1]);\n"
"                pa[kk][1] = pack_bf16(s[8 * kk + 2], s[8 * kk + 3]);\n"
"                pa[kk][2] = pack_bf16(s[8 * kk + 4], s[8 * kk + 5]);\n"
"                pa[kk][3] = pack_bf16(s[8 * kk + 6], s[8 * kk + 7]);\n"
"            }\n"
"            wg_fence();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < WFWD_BN / 16; kk++)\n"
"#pragma unroll\n"
"                for (int hh = 0; hh < WNH; hh++)\n"
"                    wg_rs64_tb(o + 32 * hh, pa[kk], gdesc(Vt + hh * WFWD_BN * 128 + kk * 2048, 1024), 1);\n"
"            wg_commit();\n"
"            wg_wait<0>();\n"
"            fence_regs<32 * WNH>(o);\n"
"        }\n"
"        __syncthreads();  // the next prefetch overwrites this tile's buffer\n"
"    }\n"
"\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        float l = lrow[r];\n"
"        l += __shfl_xor_sync(0xffffffffu, l, 1);\n"
"        l += __shfl_xor_sync(0xffffffffu, l, 2);\n"
"        int row = rw + r * 8;\n"
"        if (row < T) {\n"
"            float inv = 1.f / l;\n"
"            bf16 *orow = out + ((long)b * T + row) * qs + h * HD;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8 * WNH; i++)\n"
"                if (HD % 64 == 0 || i * 8 < HD)  // HD a multiple of 8: a column pair is real or padding\n"
"                    *(unsigned *)(orow + i * 8 + 2 * t4) = pack_bf16(o[4 * i + 2 * r] * inv, o[4 * i + 2 * r + 1] * inv);\n"
"            if (t4 == 0) lse[((long)b * H + h) * T + row] = (mrow[r] + __log2f(l)) * LN2;\n"
"        }\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// ---------------------------------------------------------------- backward\n"
"// dK, dV for 128 keys of one (b, kv head); warpgroup wg owns keys 64wg..64wg+63 and loops\n"
"// over every (query head of the group, 64-row query tile) that sees the block's keys:\n"
"//   S^T = K Q^T, dP^T = V dO^T (A = K/V, B = Q/dO, K-major, smem; WKS k16 steps);\n"
"//   P^T, dS^T in registers; dV += P^T dO, dK += dS^T Q (A from registers, B MN-major, per\n"
"//   64-column half);\n"
"//   dS^T -> smem; dQ = dS K over the block's 128 keys (A = dS^T MN-major), added to the\n"
"//   fp32 accumulator as WB_DQ_BULK says (below; default 2, one bulk add per tile). At\n"
"//   HD <= 64 warpgroup wg makes dQ's columns 32wg..32wg+31 from K^T, a transposed copy of K\n"
"//   made once per block (K-major); past 64 it makes column half wg, reading K's half wg as\n"
"//   an MN-major operand (no K^T copy: at HD 128 the tiles fill the 227 KB of shared memory).\n"
"// Other widths than 64: columns past HD are zero in shared memory (never loaded) and never\n"
"// stored; dQ's accumulator holds WNH 64-column tiles side by side, so WB_DQ_BULK 2 or 3.\n"
"// grid (B*KV, ceil(T/128)), block 256 threads.\n"
"#ifndef WB_DQ_BULK\n"
"#define WB_DQ_BULK 0\n"
"#endif\n"
"// WB_DQ_BULK 0: each thread adds its dQ values with red.global.add.v4.f32; lanes t, t^1\n"
"// swap halves so that each adds 4 adjacent floats of one row (even t: row g, cols\n"
"// 8i+2t..+3; odd t: row g+8, cols 8i+2t-2..+1)\n"
"__device__ __forceinline__ void dq_reduce(float *dqacc, const float *acc, int m0, int h, int T, long qs,\n"
"                                          int b, int wg, int warp, int g, int t4, float scale) {\n"
"    const bool odd = t4 & 1;\n"
"    const int row = m0 + warp * 16 + g + (odd ? 8 : 0);\n"
"    float *dst = dqacc + ((long)b * T + row) * qs + h * HD + wg * 32 + 2 * (t4 & 2);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++) {\n"
"        float s0 = odd ? acc[4 * i] : acc[4 * i + 2], s1 = odd ? acc[4 * i + 1] : acc[4 * i + 3];\n"
"        float r0 = __shfl_xor_sync(0xffffffffu, s0, 1), r1 = __shfl_xor_sync(0xffffffffu, s1, 1);\n"
"        float x0 = odd ? r0 : acc[4 * i], x1 = odd ? r1 : acc[4 * i + 1];\n"
"        float x2 = odd ? acc[4 * i + 2] : r0, x3 = odd ? acc[4 * i + 3] : r1;\n"
"        if (row < T) red_add4(dst + i * 8, x0 * scale, x1 * scale, x2 * scale, x3 * scale);\n"
"    }\n"
"}\n"
"// WB_DQ_BULK 1: dQ tiles go through shared memory and the bulk copy engine: thread r < 64\n"
"// adds row r of the staged tile (64 floats) with one cp.reduce.async.bulk .add.f32. Correct,\n"
"// but measured 12% slower than red.v4 on H100 (T 2048, GQA), so off by default. The dQ\n"
"// reduction is this kernel's bottleneck either way (without it: +35-45%).\n"
"#define SDQ_LD 68  // staging row stride (floats): 16-byte aligned rows, fewer bank conflicts\n"
"__device__ __forceinline__ void bulk_commit() { asm volatile(\"cp.async.bulk.commit_group;\\n\" ::: \"memory\"); }\n"
"template <int N> __device__ __forceinline__ void bulk_wait_read() {\n"
"    asm volatile(\"cp.async.bulk.wait_group.read %0;\\n\" :: \"n\"(N) : \"memory\");\n"
"}\n"
"template <int N> __device__ __forceinline__ void bulk_wait() {\n"
"    asm volatile(\"cp.async.bulk.wait_group %0;\\n\" :: \"n\"(N) : \"memory\");\n"
"}\n"
"#if DQ_DET\n"
"#if WB_DQ_BULK != 2\n"
"#error \"DQ_DET orders the one 16 KB bulk add per tile of WB_DQ_BULK 2\"\n"
"#endif\n"
"// orders the bulk-copy engine's (async proxy) global accesses with this thread's generic ones\n"
"__device__ __forceinline__ void fence_proxy_global() { asm volatile(\"fence.proxy.async.global;\\n\" ::: \"memory\"); }\n"
"#endif\n"
"__device__ __forceinline__ void dq_bulk_reduce(float *dqacc, const float *sq, int m0, int h, int T, long qs, int b) {\n"
"    const int r = threadIdx.x;\n"
"    if (r < 64) {\n"
"        if (m0 + r < T)\n"
"            asm volatile(\"cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], 256;\\n\"\n"
"                         :: \"l\"(dqacc + ((long)b * T + m0 + r) * qs + h * HD), \"r\"(smem_addr(sq + r * SDQ_LD))\n"
"                         : \"memory\");\n"
"        bulk_commit();\n"
"    }\n"
"}\n"
"// WB_DQ_BULK 2, 3: the accumulator is tiled, [B][H][Tp][64 WNH] fp32 (Tp = T rounded up to 64;\n"
"// attn_bwd_pre_wg zeroes it, attn_bwd_dq_convert_wg turns it into dq), 16-byte chunk c of\n"
"// row r stored at chunk c ^ (r % 8): a block's 64x64 dQ tile is one contiguous 16 KB region,\n"
"// staged in shared memory in that same layout (the swizzle spreads the accumulator-layout\n"
"// float2 stores of 8 rows over all banks). Past HD 64 a 64-row tile is WNH such 64x64 tiles,\n"
"// column half hh the hh-th, contiguous. 2: thread 0 adds the whole tile with one\n"
"// cp.reduce.async.bulk .add.f32 of 16 KB a half (FlashAttention-3's way); 3: all 256 threads\n"
"// add it with fully coalesced red.global.add.v4.f32 (a warp covers 512 contiguous bytes).\n"
"#if HD != 64 && WB_DQ_BULK != 2 && WB_DQ_BULK != 3\n"
"#error \"at HD other than 64 the backward's dQ takes WB_DQ_BULK 2 or 3\"\n"
"#endif\n"
"#define SDQ_TILE 4096  // floats per staged tile\n"
"__device__ __forceinline__ int dqt_off(int r, int c) { return r * 64 + (((c >> 2) ^ (r & 7)) << 2) + (c & 3); }\n"
"// the accumulator's 64-float row of (b * H + h, t) in column half 0 (half hh: + 64 hh rows);\n"
"// at WNH 1 written as the plain [B][H][Tp][64] index\n"
"#define DQT_ROW(bh, t, Tp) (WNH == 1 ? (bh) * (Tp) + (t) : ((bh) * (Tp) + ((t) & ~63)) * WNH + ((t) & 63))\n"
"__device__ __forceinline__ float *dq_tile(float *dqacc, int b, int h, int m0, int T, int H) {\n"
"    const int Tp = (T + 63) & ~63;\n"
"    return dqacc + (((long)b * H + h) * Tp + m0) * (64 * WNH);\n"
"}\n"
"__device__ __forceinline__ void dq_tile_reduce(float *dst, const float *sq) {\n"
"#if WB_DQ_BULK == 2 || WB_DQ_BULK == 4\n"
"    if (threadIdx.x == 0) {\n"
"        asm volatile(\"cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\\n\"\n"
"                     :: \"l\"(dst), \"r\"(smem_addr(sq)), \"n\"(16384 * WNH) : \"memory\");\n"
"        bulk_commit();\n"
"    }\n"
"#else\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4 * WNH; i++) {\n"
"        const int e = (i * 256 + threadIdx.x) * 4;\n"
"        const float4 v = *(const float4 *)(sq + e);\n"
"        red_add4(dst + e, v.x, v.y, v.z, v.w);\n"
"    }\n"
"#endif\n"
"}\n"
"// WB_DQ_BULK 4: as 2, and the block whose add completes a tile (a per-tile counter, zeroed\n"
"// by attn_bwd_pre_wg, reaches the number of key blocks that see the tile) converts it to\n"
"// bf16 dq itself, out of L2: no attn_bwd_dq_convert_wg pass over the accumulator.\n"
"// key blocks (128 keys) whose query range holds query tile mt (64 rows); see ilo, last_q\n"
"__device__ __forceinline__ int dq_tile_adders(int mt, int T) {\n"
"#if PATTERN\n"
"    int c = 0;  // the key blocks at or below the tile whose queries reach it\n"
"    for (int y = 0; y <= (mt >> 1); y++) c += pat_last_query(128 * y, min(T - 1, 128 * y + 127), T) >= 64 * mt;\n"
"    return c;\n"
"#else\n"
"    int ylo = 0;\n"
"    if (WINDOW > 0) { int x = 64 * mt - 126 - WINDOW; ylo = x > 0 ? (x + 127) / 128 : 0; }\n"
"    return (mt >> 1) - ylo + 1;\n"
"#endif\n"
"}\n"
"// thread 0, once the bulk add of tile (h, m0) has completed: count it; 1 if it was the last\n"
"__device__ __forceinline__ int dq_tile_count(int *cnt, int b, int h, int m0, int T, int H) {\n"
"    const int Tp = (T + 63) & ~63;\n"
"    asm volatile(\"fence.proxy.async.global;\\n\" ::: \"memory\");\n"
"    __threadfence();\n"
"    int old = atomicAdd(cnt + (((long)b * H + h) * Tp + m0) / 64, 1);\n"
"    __threadfence();\n"
"    return old == dq_tile_adders(m0 / 64, T) - 1;\n"
"}\n"
"// the whole block: dq rows m0.. (< T) of head h = bf16 of the finished tile\n"
"__device__ __forceinline__ void dq_tile_convert(bf16 *dq, float *dqacc, int b, int h, int m0, int T, int H) {\n"
"    const float *src = dq_tile(dqacc, b, h, m0, T, H);\n"
"    const int r = threadIdx.x >> 2, row = m0 + r;\n"
"    if (row >= T) return;\n"
"#pragma unroll\n"
"    for (int jj = 0; jj < 2; jj++) {\n"
"        const int j = 2 * (threadIdx.x & 3) + jj;\n"
"        const float4 a = __ldcg((const float4 *)(src + r * 64 + (((2 * j) ^ (r & 7)) << 2)));\n"
"        const float4 c = __ldcg((const float4 *)(src + r * 64 + (((2 * j + 1) ^ (r & 7)) << 2)));\n"
"        *(uint4 *)(dq + (((long)b * T + row) * H + h) * 64 + 8 * j) =\n"
"            make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(c.x, c.y), pack_bf16(c.z, c.w));\n"
"    }\n"
"}\n"
"#if WB_DQ_BULK >= 2\n"
"#define SDQ_BUF (SDQ_TILE * WNH)\n"
"#else\n"
"#define SDQ_BUF (64 * SDQ_LD)\n"
"#endif\n"
"\n"
"#define WB_BM 64\n"
"#define WB_BN 128\n"
"#define WB_DQN (64 / (3 - WNH))  // dQ columns a warpgroup makes: 32 (one half, shared), 64 (its half)\n"
"#ifndef KL_HI  // the indexer-KL module holds the KL kernels only\n"
"extern \"C\" __global__ void __launch_bounds__(256, 1)\n"
"attn_bwd_dkdv_wg(bf16 *dk, bf16 *dv, float *dqacc, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"                 const bf16 *dout, const float *lse, const float *Dsum, int T, int H,\n"
"                 float scale, float scale_log2, bf16 *dq, int *dqcnt\n"
"#if SELMASK\n"
"                 , const unsigned *selmask\n"
"#endif\n"
"                 ) {\n"
"    extern __shared__ __align__(1024) unsigned char smem_raw[];\n"
"#if WB_DQ_BULK == 4\n"
"    __shared__ int s_conv[2];  // finished tiles this block converts (-1: none)\n"
"#endif\n"
"    unsigned char *smem = smem_raw + (((smem_addr(smem_raw) + 1023u) & ~1023u) - smem_addr(smem_raw));\n"
"    bf16 *sK = (bf16 *)smem;              // [WNH halves][128 keys][64]\n"
"    bf16 *sV = sK + WNH * WB_BN * 64;     // [WNH][128 keys][64]\n"
"#if WNH == 1\n"
"    bf16 *sKt = sV + WB_BN * 64;          // [2 key blocks][64 dims][64 keys]\n"
"    bf16 *sQ = sKt + WB_BN * 64;          // [2][64 queries][64]\n"
"#else\n"
"    bf16 *sQ = sV + WNH * WB_BN * 64;     // [2][WNH][64 queries][64]\n"
"#endif\n"
"    bf16 *sdO = sQ + 2 * WNH * WB_BM * 64;  // [2][WNH][64 queries][64]\n"
"    bf16 *sdS = sdO + 2 * WNH * WB_BM * 64;  // [2][128 keys][64 queries]  dS^T\n"
"    float *sL = (float *)(sdS + 2 * WB_BN * WB_BM);  // [2][64]\n"
"    float *sD = sL + 2 * WB_BM;                  // [2][64]\n"
"#if SELMASK\n"
"    unsigned *sM = (unsigned *)(sD + 2 * WB_BM);  // [2][64 queries][4 words]: the block's 128 keys\n"
"    float *sdQ = (float *)(sM + 2 * WB_BM * 4);  // [2][SDQ_BUF] fp32 dQ staging (WB_DQ_BULK > 0)\n"
"#else\n"
"    float *sdQ = sD + 2 * WB_BM;                 // [2][SDQ_BUF] fp32 dQ staging (WB_DQ_BULK > 0)\n"
"#endif\n"
"    const unsigned aK = smem_addr(sK), aV = smem_addr(sV), aQ = smem_addr(sQ), adO = smem_addr(sdO);\n"
"#if WNH == 1\n"
"    const unsigned aKt = smem_addr(sKt);\n"
"#endif\n"
"\n"
"    const int KV = H / GROUP;\n"
"    const int b = blockIdx.x / KV, kvh = blockIdx.x % KV;\n"
"    const int n0 = blockIdx.y * WB_BN;\n"
"    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long qs = (long)H * HD, ks = (long)KV * HD;\n"
"    const bf16 *kb = k + (long)b * T * ks + kvh * HD;\n"
"    const bf16 *vb = v + (long)b * T * ks + kvh * HD;\n"
"\n"
"    const int ilo = n0 / WB_BM;\n"
"#if PATTERN\n"
"    const int last_q = pat_last_query(n0, min(T - 1, n0 + WB_BN - 1), T);  // every tile up to it sees some key\n"
"#else\n"
"    const int last_q = WINDOW > 0 ? min(T - 1, n0 + WB_BN - 1 + WINDOW - 1) : T - 1;\n"
"#endif\n"
"    const int nq = last_q / WB_BM - ilo + 1;\n"
"    const int iters = GROUP * nq;\n"
"#if DQ_DET\n"
"    // the fixed-order dQ (DQ_DET): query tiles from the last down, the group's heads inner,\n"
"    // as in attn_bwd_dkdv; a tile's turn counter\n"
"#define WB_H(it) (kvh * GROUP + (it) % GROUP)\n"
"#define WB_M(it) ((ilo + nq - 1 - (it) / GROUP) * WB_BM)\n"
"#define WB_SEM(h, m) (dqcnt + ((long)b * H + (h)) * ((T + 63) / 64) + (m) / 64)\n"
"#else\n"
"#define WB_H(it) (kvh * GROUP + (it) / nq)\n"
"#define WB_M(it) ((ilo + (it) % nq) * WB_BM)\n"
"#endif\n"
"\n"
"    load_swh<WB_BN, 256>(aK, kb, ks, n0, T);\n"
"    load_swh<WB_BN, 256>(aV, vb, ks, n0, T);\n"
"    cp_async_commit();\n"
"\n"
"#if SELMASK\n"
"#define WB_MASK_LOAD(buf, row, ok) \\\n"
"    cp_async16(sM + ((buf) * WB_BM + tid) * 4, selmask + ((long)b * T + ((ok) ? (row) : 0)) * SELW(T) + n0 / 32, ok)\n"
"#else\n"
"#define WB_MASK_LOAD(buf, row, ok)\n"
"#endif\n"
"#define WB_LOAD(it, buf)                                                                    \\\n"
"    do {                                                                                    \\\n"
"        int h_ = WB_H(it), m_ = WB_M(it);                                                   \\\n"
"        long qoff_ = (long)b * T * qs + h_ * HD;                                            \\\n"
"        load_swh<WB_BM, 256>(aQ + (buf) * WNH * WB_BM * 128, q + qoff_, qs, m_, T);         \\\n"
"        load_swh<WB_BM, 256>(adO + (buf) * WNH * WB_BM * 128, dout + qoff_, qs, m_, T);     \\\n"
"        if (tid < WB_BM) {                                                                  \\\n"
"            int row_ = m_ + tid;                                                            \\\n"
"            bool ok_ = row_ < T;                                                            \\\n"
"            long li_ = ((long)b * H + h_) * T + (ok_ ? row_ : 0);                           \\\n"
"            cp_async4(sL + (buf) * WB_BM + tid, lse + li_, ok_);                            \\\n"
"            cp_async4(sD + (buf) * WB_BM + tid, Dsum + li_, ok_);                           \\\n"
"            WB_MASK_LOAD(buf, row_, ok_);                                                   \\\n"
"        }                                                                                   \\\n"
"        cp_async_commit();                                                                  \\\n"
"    } while (0)\n"
"\n"
"    WB_LOAD(0, 0);\n"
"    cp_async_wait<1>();  // K, V landed\n"
"    __syncthreads();\n"
"#if WNH == 1\n"
"    // K^T: sKt[key / 64] holds [dim][key % 64]\n"
"    for (int i = tid; i < WB_BN * 64; i += 256) {\n"
"        int key = i & 127, d = i >> 7;\n"
"        sKt[(key >> 6) * 4096 + swz(d, key & 63)] = sK[swz(key, d)];\n"
"    }\n"
"#endif\n"
"\n"
"    float dka[32 * WNH], dva[32 * WNH], acc[WB_DQN / 2];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 32 * WNH; i++) dka[i] = dva[i] = 0.f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < WB_DQN / 2; i++) acc[i] = 0.f;\n"
"\n"
"    const int kw = wg * 64;                // this warpgroup's first key, local\n"
"    const int krow = kw + warp * 16 + g;   // this thread's key rows krow, krow + 8 (local)\n"
"    // Per iteration the tensor cores see S^T | dP^T | dV | dQ | dK as separate commit\n"
"    // groups, so the exponentials overlap dP^T, dS overlaps dV, the dQ staging overlaps dK.\n"
"    int h_prev = 0, m0_prev = 0;\n"
"    for (int it = 0; it < iters; it++) {\n"
"        const int buf = it & 1;\n"
"        const int h = WB_H(it), m0 = WB_M(it);\n"
"        cp_async_wait<0>();\n"
"        fence_proxy();\n"
"        __syncthreads();  // tile `it` landed; every warpgroup finished reading buffer buf ^ 1\n"
"#if DQ_DET\n"
"        // the add of tile it-2 (issued last iteration) has had an iteration to land: wait for\n"
"        // it and hand the tile to the next key block (before this thread's next loads, which a\n"
"        // release would otherwise wait for)\n"
"        if (tid == 0 && it >= 2) {\n"
"            bulk_wait<0>();\n"
"            fence_proxy_global();\n"
"            dq_sem_signal(WB_SEM(WB_H(it - 2), WB_M(it - 2)));\n"
"        }\n"
"#endif\n"
"        if (WB_DQ_BULK == 1 && it > 0) dq_bulk_reduce(dqacc, sdQ + (buf ^ 1) * SDQ_BUF, m0_prev, h_prev, T, qs, b);\n"
"        if (it + 1 < iters) WB_LOAD(it + 1, buf ^ 1);\n"
"        const unsigned Qt = aQ + buf * WNH * WB_BM * 128, dOt = adO + buf * WNH * WB_BM * 128;\n"
"        const float *Lt = sL + buf * WB_BM, *Dt = sD + buf * WB_BM;\n"
"        bf16 *sdSb = sdS + buf * WB_BN * WB_BM;\n"
"\n"
"        // every warpgroup runs every tile, even one wholly masked for its keys (P = 0 there):\n"
"        // a warpgroup-dependent branch around wgmma makes ptxas serialize them (C7520)\n"
"        unsigned as[4][4];  // dS^T as A fragments, for dK after the barrier\n"
"        {\n"
"            float st[32], dpt[32];\n"
"            wg_fence();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < WKS; kk++)  // k16 step kk: column half kk / 4, bytes 32 (kk % 4) on\n"
"                wg_ss64<0, 0>(st, gdesc(aK + (kk >> 2) * WB_BN * 128 + kw * 128 + (kk & 3) * 32, 16),\n"
"                              gdesc(Qt + (kk >> 2) * WB_BM * 128 + (kk & 3) * 32, 16), kk);\n"
"            wg_commit();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < WKS; kk++)\n"
"                wg_ss64<0, 0>(dpt, gdesc(aV + (kk >> 2) * WB_BN * 128 + kw * 128 + (kk & 3) * 32, 16),\n"
"                              gdesc(dOt + (kk >> 2) * WB_BM * 128 + (kk & 3) * 32, 16), kk);\n"
"            wg_commit();\n"
"            // the previous tile's dQ (staged before this iteration's first barrier) goes out\n"
"            // while the tensor cores run S^T and dP^T\n"
"#if DQ_DET\n"
"            if (it > 0 && tid < 32) {  // tile it-1's turn: every key block below this one has added\n"
"                const int rank = dq_rank<WB_BM, WB_BN>(blockIdx.y, m0_prev / WB_BM, T);\n"
"                if (tid == 0) {\n"
"                    dq_sem_wait(WB_SEM(h_prev, m0_prev), rank);\n"
"                    fence_proxy_global();\n"
"                }\n"
"                __syncwarp();  // warp 0 whole again before its next wgmma.wait_group (.aligned)\n"
"            }\n"
"#endif\n"
"            if (WB_DQ_BULK >= 2 && it > 0)\n"
"                dq_tile_reduce(dq_tile(dqacc, b, h_prev, m0_prev, T, H), sdQ + (buf ^ 1) * SDQ_BUF);\n"
"            const int key0 = n0 + krow;\n"
"#if SELMASK\n"
"            // the selection: bit (krow % 32) + 8 (e >> 1) of word krow / 32 of query ql's words\n"
"            const unsigned *Mt = sM + buf * WB_BM * 4 + (krow >> 5);\n"
"            const bool need_mask = false;\n"
"#elif PATTERN\n"
"            const bool need_mask = !pat_all(m0, m0 + WB_BM - 1, n0 + kw, n0 + kw + 63);\n"
"#else\n"
"            const bool need_mask = m0 < n0 + kw + 63 || (WINDOW > 0 && n0 + kw < m0 + WB_BM - WINDOW);\n"
"#endif\n"
"            wg_wait<1>();  // S^T\n"
"            fence_regs<32>(st);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    int ql = i * 8 + 2 * t4 + (e & 1);\n"
"                    float p = fast_exp2(fmaf(st[4 * i + e], scale_log2, -Lt[ql] * LOG2E));\n"
"#if SELMASK\n"
"                    if (!((Mt[ql * 4] >> ((krow & 31) + (e >> 1) * 8)) & 1u)) p = 0.f;\n"
"#endif\n"
"                    if (need_mask) {\n"
"                        int key = key0 + (e >> 1) * 8, qr = m0 + ql;\n"
"                        if (MASKED(qr, key)) p = 0.f;\n"
"                    }\n"
"                    st[4 * i + e] = p;\n"
"                }\n"
"            unsigned ap[4][4];\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++)\n"
"#pragma unroll\n"
"                for (int r = 0; r < 4; r++) ap[kk][r] = pack_bf16(st[8 * kk + 2 * r], st[8 * kk + 2 * r + 1]);\n"
"            wg_fence();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++)\n"
"#pragma unroll\n"
"                for (int hh = 0; hh < WNH; hh++)\n"
"                    wg_rs64_tb(dva + 32 * hh, ap[kk], gdesc(dOt + hh * WB_BM * 128 + kk * 2048, 1024), 1);\n"
"            wg_commit();\n"
"            wg_wait<1>();  // dP^T\n"
"            fence_regs<32>(dpt);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) dpt[4 * i + e] = st[4 * i + e] * (dpt[4 * i + e] - Dt[i * 8 + 2 * t4 + (e & 1)]);\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++) {\n"
"#pragma unroll\n"
"                for (int r = 0; r < 4; r++) as[kk][r] = pack_bf16(dpt[8 * kk + 2 * r], dpt[8 * kk + 2 * r + 1]);\n"
"                *(unsigned *)(sdSb + swz(krow, 16 * kk + 2 * t4)) = as[kk][0];\n"
"                *(unsigned *)(sdSb + swz(krow + 8, 16 * kk + 2 * t4)) = as[kk][1];\n"
"                *(unsigned *)(sdSb + swz(krow, 16 * kk + 8 + 2 * t4)) = as[kk][2];\n"
"                *(unsigned *)(sdSb + swz(krow + 8, 16 * kk + 8 + 2 * t4)) = as[kk][3];\n"
"            }\n"
"        }\n"
"        fence_proxy();\n"
"        // the reduction of tile it-2 has read sdQ[buf]\n"
"        // (DQ_DET: it has completed, waited for at the top of the iteration)\n"
"        if ((WB_DQ_BULK == 1 && tid < WB_BM) || (WB_DQ_BULK == 2 && !DQ_DET && tid == 0)) bulk_wait_read<1>();\n"
"#if WB_DQ_BULK == 4\n"
"        if (tid == 0) {  // ... and has completed: was it the tile's last add?\n"
"            bulk_wait<1>();\n"
"            int c = -1;\n"
"            if (it >= 2) {\n"
"                const int h2 = WB_H(it - 2), m2 = WB_M(it - 2);\n"
"                if (dq_tile_count(dqcnt, b, h2, m2, T, H)) c = it - 2;\n"
"            }\n"
"            s_conv[0] = c;\n"
"        }\n"
"#endif\n"
"        __syncthreads();  // dS^T complete\n"
"\n"
"        // dQ[m0.., this warpgroup's WB_DQN columns] = dS K over the block's 128 keys, then\n"
"        // dK += dS^T Q; the dQ reduction (global atomics) overlaps dK on the tensor cores\n"
"        wg_fence();\n"
"#pragma unroll\n"
"        for (int s = 0; s < 8; s++)\n"
"#if WNH == 1\n"
"            wg_ss32<1, 0>(acc, gdesc(smem_addr(sdSb) + s * 2048, 1024),\n"
"                          gdesc(aKt + (s >> 2) * 8192 + wg * 4096 + (s & 3) * 32, 16), s);\n"
"#else\n"
"            wg_ss64<1, 1>(acc, gdesc(smem_addr(sdSb) + s * 2048, 1024), gdesc(aK + wg * WB_BN * 128 + s * 2048, 1024), s);\n"
"#endif\n"
"        wg_commit();\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 4; kk++)\n"
"#pragma unroll\n"
"            for (int hh = 0; hh < WNH; hh++)\n"
"                wg_rs64_tb(dka + 32 * hh, as[kk], gdesc(Qt + hh * WB_BM * 128 + kk * 2048, 1024), 1);\n"
"        wg_commit();\n"
"#if WB_DQ_BULK == 4\n"
"        {\n"
"            const int c = *(volatile int *)&s_conv[0];\n"
"            if (c >= 0) dq_tile_convert(dq, dqacc, b, WB_H(c), WB_M(c), T, H);\n"
"        }\n"
"#endif\n"
"        wg_wait<1>();  // dV, dQ\n"
"        fence_regs<WB_DQN / 2>(acc);\n"
"#if WB_DQ_BULK >= 2\n"
"        {   // stage scale * dQ in sdQ[buf] (tiled, swizzled); the next iteration adds it\n"
"            float *sq = sdQ + buf * SDQ_BUF + (WNH == 1 ? 0 : wg * SDQ_TILE);\n"
"#pragma unroll\n"
"            for (int i = 0; i < WB_DQN / 8; i++)\n"
"#pragma unroll\n"
"                for (int r = 0; r < 2; r++)\n"
"                    *(float2 *)(sq + dqt_off(warp * 16 + g + 8 * r, (WNH == 1 ? wg * 32 : 0) + 8 * i + 2 * t4)) =\n"
"                        make_float2(acc[4 * i + 2 * r] * scale, acc[4 * i + 2 * r + 1] * scale);\n"
"        }\n"
"#elif WB_DQ_BULK\n"
"        {   // stage scale * dQ in sdQ[buf]; the next iteration reduces it into global memory\n"
"            float *sq = sdQ + buf * SDQ_BUF;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int r = 0; r < 2; r++)\n"
"                    *(float2 *)(sq + (warp * 16 + g + 8 * r) * SDQ_LD + wg * 32 + 8 * i + 2 * t4) =\n"
"                        make_float2(acc[4 * i + 2 * r] * scale, acc[4 * i + 2 * r + 1] * scale);\n"
"        }\n"
"#else\n"
"        dq_reduce(dqacc, acc, m0, h, T, qs, b, wg, warp, g, t4, scale);\n"
"#endif\n"
"        wg_wait<0>();  // dK: Q, dO of this tile are free once every warpgroup reaches the next barrier\n"
"        fence_regs<32 * WNH>(dva);\n"
"        fence_regs<32 * WNH>(dka);\n"
"        h_prev = h;\n"
"        m0_prev = m0;\n"
"    }\n"
"#undef WB_LOAD\n"
"#if WB_DQ_BULK >= 2\n"
"    fence_proxy();\n"
"    __syncthreads();\n"
"#if DQ_DET\n"
"    if (tid < 32) {  // hand on tile iters-2, then the last tile's turn\n"
"        const int rank = dq_rank<WB_BM, WB_BN>(blockIdx.y, m0_prev / WB_BM, T);\n"
"        if (tid == 0) {\n"
"            if (iters >= 2) {\n"
"                bulk_wait<0>();\n"
"                fence_proxy_global();\n"
"                dq_sem_signal(WB_SEM(WB_H(iters - 2), WB_M(iters - 2)));\n"
"            }\n"
"            dq_sem_wait(WB_SEM(h_prev, m0_prev), rank);\n"
"            fence_proxy_global();\n"
"        }\n"
"    }\n"
"#endif\n"
"    dq_tile_reduce(dq_tile(dqacc, b, h_prev, m0_prev, T, H), sdQ + ((iters - 1) & 1) * SDQ_BUF);\n"
"    if (WB_DQ_BULK == 2 && tid == 0) bulk_wait<0>();\n"
"#if DQ_DET\n"
"    if (tid == 0) {\n"
"        fence_proxy_global();\n"
"        dq_sem_signal(WB_SEM(h_prev, m0_prev));\n"
"    }\n"
"#undef WB_SEM\n"
"#endif\n"
"#if WB_DQ_BULK == 4\n"
"    if (tid == 0) {  // the last two tiles: complete, counted, converted here if last\n"
"        bulk_wait<0>();\n"
"#pragma unroll\n"
"        for (int x = 0; x < 2; x++) {\n"
"            const int t2 = iters - 2 + x;\n"
"            int c = -1;\n"
"            if (t2 >= 0 && dq_tile_count(dqcnt, b, WB_H(t2), WB_M(t2), T, H)) c = t2;\n"
"            s_conv[x] = c;\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"#pragma unroll\n"
"    for (int x = 0; x < 2; x++) {\n"
"        const int c = *(volatile int *)&s_conv[x];\n"
"        if (c >= 0) dq_tile_convert(dq, dqacc, b, WB_H(c), WB_M(c), T, H);\n"
"    }\n"
"#endif\n"
"#elif WB_DQ_BULK\n"
"    fence_proxy();\n"
"    __syncthreads();\n"
"    dq_bulk_reduce(dqacc, sdQ + ((iters - 1) & 1) * SDQ_BUF, m0_prev, h_prev, T, qs, b);\n"
"    if (tid < WB_BM) bulk_wait<0>();\n"
"#endif\n"
"#undef WB_H\n"
"#undef WB_M\n"
"\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        int key = n0 + krow + r * 8;\n"
"        if (key < T) {\n"
"            bf16 *dkr = dk + ((long)b * T + key) * ks + kvh * HD;\n"
"            bf16 *dvr = dv + ((long)b * T + key) * ks + kvh * HD;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8 * WNH; i++)\n"
"                if (HD % 64 == 0 || i * 8 < HD) {  // HD a multiple of 8: a column pair is real or padding\n"
"                    *(unsigned *)(dkr + i * 8 + 2 * t4) = pack_bf16(dka[4 * i + 2 * r] * scale, dka[4 * i + 2 * r + 1] * scale);\n"
"                    *(unsigned *)(dvr + i * 8 + 2 * t4) = pack_bf16(dva[4 * i + 2 * r], dva[4 * i + 2 * r + 1]);\n"
"                }\n"
"        }\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// WB_DQ_BULK 2, 3: the tiled accumulator's preprocess and convert (attn_bwd_pre and\n"
"// attn_bwd_dq_convert with the layout of dq_tile, swizzled 16-byte chunks).\n"
"// D[b,h,t] = sum dO*O; zero row (b,h,t) of the accumulator, every column half (rows t >= T\n"
"// of the last tile only ever receive zeros and are never read). 8 threads per (b,t,h) row,\n"
"// thread c taking columns 8c..8c+7 of each half.\n"
"#ifndef KL_HI  // the indexer-KL module holds the KL kernels only\n"
"extern \"C\" __global__ void attn_bwd_pre_wg(float *Dsum, float *dqacc, const bf16 *out, const bf16 *dout,\n"
"                                           int T, int H, long rows, int *dqcnt) {\n"
"    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;\n"
"    long row = i >> 3;\n"
"    int c = (int)(i & 7);\n"
"    float d = 0.f;\n"
"    long b = 0, t = 0;\n"
"    int h = 0;\n"
"    if (row < rows) {\n"
"#pragma unroll\n"
"        for (int hh = 0; hh < WNH; hh++)\n"
"            if (HD % 64 == 0 || hh * 64 + c * 8 < HD) {\n"
"                uint4 o4 = *(const uint4 *)(out + row * HD + hh * 64 + c * 8);\n"
"                uint4 g4 = *(const uint4 *)(dout + row * HD + hh * 64 + c * 8);\n"
"                unsigned ov[4] = {o4.x, o4.y, o4.z, o4.w}, gv[4] = {g4.x, g4.y, g4.z, g4.w};\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) d += bf16_lo(ov[e]) * bf16_lo(gv[e]) + bf16_hi(ov[e]) * bf16_hi(gv[e]);\n"
"            }\n"
"        long bt = row / H;\n"
"        h = (int)(row % H);\n"
"        b = bt / T; t = bt % T;\n"
"        const long Tp = (T + 63) & ~63;\n"
"        float4 z = make_float4(0.f, 0.f, 0.f, 0.f);\n"
"        float *dst = dqacc + DQT_ROW(b * H + h, t, Tp) * 64 + c * 8;\n"
"#pragma unroll\n"
"        for (int hh = 0; hh < WNH; hh++) {\n"
"            *(float4 *)(dst + hh * 4096) = z;\n"
"            *(float4 *)(dst + hh * 4096 + 4) = z;\n"
"        }\n"
"        if ((WB_DQ_BULK == 4 || DQ_DET) && c == 0 && (t & 63) == 0) dqcnt[((b * H + h) * Tp + t) >> 6] = 0;\n"
"    }\n"
"#pragma unroll\n"
"    for (int off = 4; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);\n"
"    if (row < rows && c == 0) Dsum[(b * H + h) * T + t] = d;\n"
"}\n"
"#endif\n"
"// dq (bf16, [B,T,H,HD]) = the tiled accumulator; 8 elements per thread, n8 = B*T*H*HD/8\n"
"#ifndef KL_HI  // the indexer-KL module holds the KL kernels only\n"
"extern \"C\" __global__ void attn_bwd_dq_convert_wg(bf16 *dq, const float *dqacc, int T, int H, long n8) {\n"
"    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;\n"
"    if (i >= n8) return;\n"
"    long row = HD == 64 ? i >> 3 : i / (HD / 8);\n"
"    int j = HD == 64 ? (int)(i & 7) : (int)(i % (HD / 8)), hh = j >> 3;\n"
"    j &= 7;\n"
"    long bt = row / H;\n"
"    int h = (int)(row % H);\n"
"    long b = bt / T;\n"
"    int t = (int)(bt % T);\n"
"    const long Tp = (T + 63) & ~63;\n"
"    const float *src = dqacc + DQT_ROW(b * H + h, t, Tp) * 64 + hh * 4096;\n"
"    float4 a = *(const float4 *)(src + (((2 * j) ^ (t & 7)) << 2));\n"
"    float4 c = *(const float4 *)(src + (((2 * j + 1) ^ (t & 7)) << 2));\n"
"    *(uint4 *)(dq + i * 8) = make_uint4(pack_bf16(a.x, a.y), pack_bf16(a.z, a.w), pack_bf16(c.x, c.y), pack_bf16(c.z, c.w));\n"
"}\n"
"#endif\n"
"\n"
"// ---------------------------------------------------------------- selection probabilities\n"
"// the kernels below: this iteration's tile landed (the next one, if issued, may still be in\n"
"// flight) and every thread, and the tensor cores, see it\n"
"__device__ __forceinline__ void tile_landed(bool next_issued) {\n"
"    if (next_issued) cp_async_wait<1>();\n"
"    else cp_async_wait<0>();\n"
"    fence_proxy();\n"
"    __syncthreads();\n"
"}\n"
"// SELMASK: psum[t][slot] = invH * sum_h P[t,h,s] for each key s that query t selected, slot =\n"
"// the rank of s among row t's selected keys (the KL target of DSA's indexer; P = exp(S - lse)\n"
"// with the caller's lse). Slots past the selection are not written. grid (B, ceil(T/64)), one\n"
"// warpgroup of 64 query rows holding every head's Q tile (H <= 16); key tiles of 128, one kv\n"
"// head at a time, stream through double-buffered shared memory with their mask words; the\n"
"// heads' P add up in registers and each selected pair is stored once: no atomics.\n"
"#if SELMASK\n"
"#ifndef KL_HI  // the indexer-KL module holds the KL kernels only\n"
"extern \"C\" __global__ void __launch_bounds__(128, 1)\n"
"attn_sel_probs_wg(float *psum, const float *lse, const bf16 *q, const bf16 *k, const unsigned *selmask,\n"
"                  int T, int H, int topk, float scale_log2, float invH) {\n"
"    extern __shared__ __align__(1024) unsigned char smem_raw[];\n"
"    const unsigned s0 = (smem_addr(smem_raw) + 1023u) & ~1023u;\n"
"    const unsigned sQ = s0, sK = sQ + H * 8192;  // Q [H][64 rows][64], K [2][128 keys][64]\n"
"    unsigned *sM = (unsigned *)(smem_raw + (sK + 2 * 16384 - smem_addr(smem_raw)));  // [2][64 rows][4 words]\n"
"    float *sL = (float *)(sM + 2 * 64 * 4);      // [H][64]: lse * log2(e)\n"
"    const int KV = H / GROUP, W = SELW(T);\n"
"    const int b = blockIdx.x, m0 = (gridDim.y - 1 - blockIdx.y) * 64;\n"
"    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const long qs = (long)H * HD, ks = (long)KV * HD;\n"
"    const int iters = (min(T - 1, m0 + 63) / 128 + 1) * KV;  // (key tile, kv head), up to the diagonal\n"
"    for (int h = 0; h < H; h++) load_sw<64, 128>(sQ + h * 8192, q + (long)b * T * qs + h * HD, qs, m0, T);\n"
"    for (int i = tid; i < H * 64; i += 128) {\n"
"        const int h = i >> 6, row = m0 + (i & 63);\n"
"        sL[i] = row < T ? lse[((long)b * H + h) * T + row] * LOG2E : 0.f;\n"
"    }\n"
"#define SP_LOAD(it, buf)                                                                      \\\n"
"    do {                                                                                      \\\n"
"        const int j_ = (it) / KV, kv_ = (it) % KV, r_ = m0 + tid;                            \\\n"
"        load_sw<128, 128>(sK + (buf) * 16384, k + (long)b * T * ks + kv_ * HD, ks, j_ * 128, T); \\\n"
"        if (tid < 64)                                                                         \\\n"
"            cp_async16(sM + ((buf) * 64 + tid) * 4, selmask + ((long)b * T + (r_ < T ? r_ : 0)) * W + j_ * 4, r_ < T); \\\n"
"        cp_async_commit();                                                                    \\\n"
"    } while (0)\n"
"    SP_LOAD(0, 0);\n"
"    const int rl = warp * 16 + g;  // the thread's rows m0 + rl, m0 + rl + 8\n"
"    int base[2] = {0, 0};          // the row's selected keys left of this tile\n"
"    float acc[64];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 64; i++) acc[i] = 0.f;\n"
"    for (int it = 0; it < iters; it++) {\n"
"        const int buf = it & 1, kvh = it % KV;\n"
"        if (it + 1 < iters) SP_LOAD(it + 1, buf ^ 1);\n"
"        tile_landed(it + 1 < iters);\n"
"        const unsigned Kt = sK + buf * 16384;\n"
"        for (int hh = 0; hh < GROUP; hh++) {\n"
"            const int h = kvh * GROUP + hh;\n"
"            float s[64];\n"
"            wg_fence();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++) wg_ss128<0, 0>(s, gdesc(sQ + h * 8192 + kk * 32, 16), gdesc(Kt + kk * 32, 16), kk);\n"
"            wg_commit();\n"
"            wg_wait<0>();\n"
"            fence_regs<64>(s);\n"
"            const float la = sL[h * 64 + rl], lb = sL[h * 64 + rl + 8];\n"
"#pragma unroll\n"
"            for (int i = 0; i < 64; i++) acc[i] += fast_exp2(fmaf(s[i], scale_log2, -((i & 2) ? lb : la)));\n"
"        }\n"
"        if (kvh == KV - 1) {  // the tile's sums are complete: store the selected pairs\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                const uint4 mw = *(const uint4 *)(sM + (buf * 64 + rl + 8 * r) * 4);\n"
"                const unsigned w[4] = {mw.x, mw.y, mw.z, mw.w};\n"
"                const int pre[4] = {0, __popc(w[0]), __popc(w[0]) + __popc(w[1]), __popc(w[0]) + __popc(w[1]) + __popc(w[2])};\n"
"                float *prow = psum + ((long)b * T + m0 + rl + 8 * r) * topk + base[r];\n"
"#pragma unroll\n"
"                for (int i = 0; i < 16; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 2; e++) {\n"
"                        const int bit = (i & 3) * 8 + 2 * t4 + e;  // column 8i + 2 t4 + e: word i / 4\n"
"                        const unsigned x = w[i >> 2];\n"
"                        if ((x >> bit) & 1u) prow[pre[i >> 2] + __popc(x & ((1u << bit) - 1u))] = acc[4 * i + 2 * r + e] * invH;\n"
"                    }\n"
"                base[r] += pre[3] + __popc(w[3]);\n"
"            }\n"
"#pragma unroll\n"
"            for (int i = 0; i < 64; i++) acc[i] = 0.f;\n"
"        }\n"
"        __syncthreads();  // the next load overwrites this buffer\n"
"    }\n"
"}\n"
"#endif\n"
"#endif\n"
"\n"
"// ---------------------------------------------------------------- indexer KL (DSA)\n"
"// KL_HI > 0 (with SELMASK): DSA's indexer loss over the selection as dense tiles (dI = 64).\n"
"// I(t,s) = sum_j w[t,j] relu(qI[t,j] . kI[s]); p[t][rank] is the attention's target in\n"
"// rank order (psum), P its row sum. Per row: lseI = log sum_sel exp(I), loss = sum_sel\n"
"// p/P (log(p/P) - I + lseI) = Spl/P - log P - SpI/P + lseI (0 when P <= 0), and for the\n"
"// backward g(t,s) = dloss (exp(I - lseI) - p/P) on the selected pairs, 0 elsewhere:\n"
"//   dw[t,j] = sum_s g relu(a_j),  dqI[t,j] = sum_s g w[t,j] [a_j > 0] kI[s],\n"
"//   dkI[s] = sum_t sum_j g w[t,j] [a_j > 0] qI[t,j]      (a_j = qI[t,j] . kI[s])\n"
"// attn_sel_kl_stats_wg (loss, lseI, 1/P), attn_sel_kl_dq_wg (dqI, dw; one head per block)\n"
"// and attn_sel_kl_dk_wg (dkI, key-major: no atomics) each recompute the scores on the\n"
"// tensor cores; prefix[B][T][T/128 tiles] = the row's selected keys left of each key tile.\n"
"#if SELMASK && defined(KL_HI)\n"
"__device__ __forceinline__ float kl_bf(bf16 x) { return __uint_as_float(((unsigned)x) << 16); }\n"
"// I (64 x 128 accumulator layout) = sum_j w_j relu(Q_j K^T) over the heads, the head `last`\n"
"// computed last so that a holds its scores on return\n"
"__device__ __forceinline__ void kl_scores(float *I, float *a, unsigned sQ, unsigned Kt, const float *wa,\n"
"                                          const float *wb, int last) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 64; i++) I[i] = 0.f;\n"
"    for (int hh = 1; hh <= KL_HI; hh++) {\n"
"        const int h = (last + hh) % KL_HI;\n"
"        wg_fence();\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 4; kk++) wg_ss128<0, 0>(a, gdesc(sQ + h * 8192 + kk * 32, 16), gdesc(Kt + kk * 32, 16), kk);\n"
"        wg_commit();\n"
"        wg_wait<0>();\n"
"        fence_regs<64>(a);\n"
"        const float xa = wa[h], xb = wb[h];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 64; i++) I[i] += ((i & 2) ? xb : xa) * fmaxf(a[i], 0.f);\n"
"    }\n"
"}\n"
"// a (64 x 64 accumulator) = A B^T for 64-row tiles A, B in shared memory (K-major, 64 columns)\n"
"__device__ __forceinline__ void kl_ab64(float *a, unsigned At, unsigned Bt) {\n"
"    wg_fence();\n"
"#pragma unroll\n"
"    for (int kk = 0; kk < 4; kk++) wg_ss64<0, 0>(a, gdesc(At + kk * 32, 16), gdesc(Bt + kk * 32, 16), kk);\n"
"    wg_commit();\n"
"    wg_wait<0>();\n"
"    fence_regs<32>(a);\n"
"}\n"
"// the query-major kernels' loads: every head's qI tile for rows m0.. (once), key tile j of kI\n"
"// and its mask words (per iteration, double-buffered)\n"
"#define KL_QLOAD()                                                                            \\\n"
"    for (int h = 0; h < KL_HI; h++)                                                           \\\n"
"        load_sw<64, 128>(sQ + h * 8192, qI + (long)b * T * KL_HI * 64 + h * 64, KL_HI * 64, m0, T)\n"
"#define KL_KLOAD(j, buf)                                                                      \\\n"
"    do {                                                                                      \\\n"
"        const int r_ = m0 + tid;                                                              \\\n"
"        load_sw<128, 128>(sK + (buf) * 16384, kI + (long)b * T * 64, 64, (j) * 128, T);       \\\n"
"        if (tid < 64)                                                                         \\\n"
"            cp_async16(sM + ((buf) * 64 + tid) * 4, selmask + ((long)b * T + (r_ < T ? r_ : 0)) * W + (j) * 4, r_ < T); \\\n"
"        cp_async_commit();                                                                    \\\n"
"    } while (0)\n"
"#define KL_PROLOGUE()                                                                         \\\n"
"    extern __shared__ __align__(1024) unsigned char smem_raw[];                               \\\n"
"    const unsigned s0 = (smem_addr(smem_raw) + 1023u) & ~1023u;                               \\\n"
"    const unsigned sQ = s0, sK = sQ + KL_HI * 8192;                                           \\\n"
"    unsigned *sM = (unsigned *)(smem_raw + (sK + 2 * 16384 - smem_addr(smem_raw)));           \\\n"
"    const int W = SELW(T), b = blockIdx.x, m0 = (gridDim.y - 1 - blockIdx.y) * 64;            \\\n"
"    const int tid = threadIdx.x, lane = tid & 31, g = lane >> 2, t4 = lane & 3;               \\\n"
"    const int rl = (tid >> 5) * 16 + g, ra = m0 + rl, rb = ra + 8;                            \\\n"
"    const int jn = min(T - 1, m0 + 63) / 128 + 1;                                             \\\n"
"    float wa[KL_HI], wb[KL_HI];                                                               \\\n"
"    for (int h = 0; h < KL_HI; h++) {                                                         \\\n"
"        wa[h] = ra < T ? kl_bf(w[((long)b * T + ra) * KL_HI + h]) : 0.f;                      \\\n"
"        wb[h] = rb < T ? kl_bf(w[((long)b * T + rb) * KL_HI + h]) : 0.f;                      \\\n"
"    }                                                                                         \\\n"
"    KL_QLOAD();                                                                               \\\n"
"    KL_KLOAD(0, 0)\n"
"#define KL_NEXT(j)                                                                            \\\n"
"    const int buf = (j) & 1;                                                                  \\\n"
"    if ((j) + 1 < jn) KL_KLOAD((j) + 1, buf ^ 1);                                             \\\n"
"    tile_landed((j) + 1 < jn);                                                                \\\n"
"    const unsigned Kt = sK + buf * 16384\n"
"\n"
"// grid (B, ceil(T/64)), one warpgroup of 64 query rows\n"
"extern \"C\" __global__ void __launch_bounds__(128, 1)\n"
"attn_sel_kl_stats_wg(float *loss, float *lseI, float *invP, const float *p, const bf16 *qI, const bf16 *kI,\n"
"                     const bf16 *w, const unsigned *selmask, int T, int topk) {\n"
"    KL_PROLOGUE();\n"
"    float mx[2] = {NEG_INF, NEG_INF}, l[2] = {0.f, 0.f}, Pt[2] = {0.f, 0.f}, Spl[2] = {0.f, 0.f}, SpI[2] = {0.f, 0.f};\n"
"    int base[2] = {0, 0};\n"
"    for (int j = 0; j < jn; j++) {\n"
"        KL_NEXT(j);\n"
"        float I[64], a[64];\n"
"        kl_scores(I, a, sQ, Kt, wa, wb, 0);\n"
"#pragma unroll\n"
"        for (int r = 0; r < 2; r++) {\n"
"            const uint4 mw = *(const uint4 *)(sM + (buf * 64 + rl + 8 * r) * 4);\n"
"            const unsigned wd[4] = {mw.x, mw.y, mw.z, mw.w};\n"
"            const int pre[4] = {0, __popc(wd[0]), __popc(wd[0]) + __popc(wd[1]), __popc(wd[0]) + __popc(wd[1]) + __popc(wd[2])};\n"
"            float tmax = NEG_INF;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 16; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 2; e++)\n"
"                    if ((wd[i >> 2] >> ((i & 3) * 8 + 2 * t4 + e)) & 1u) tmax = fmaxf(tmax, I[4 * i + 2 * r + e]);\n"
"            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));\n"
"            tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));\n"
"            const float mnew = fmaxf(mx[r], tmax);\n"
"            if (mnew != NEG_INF) {\n"
"                l[r] *= __expf(mx[r] - mnew);\n"
"                mx[r] = mnew;\n"
"                const float *prow = p + ((long)b * T + m0 + rl + 8 * r) * topk + base[r];\n"
"#pragma unroll\n"
"                for (int i = 0; i < 16; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 2; e++) {\n"
"                        const int bit = (i & 3) * 8 + 2 * t4 + e;\n"
"                        const unsigned x = wd[i >> 2];\n"
"                        if ((x >> bit) & 1u) {\n"
"                            const float v = I[4 * i + 2 * r + e], pv = prow[pre[i >> 2] + __popc(x & ((1u << bit) - 1u))];\n"
"                            l[r] += __expf(v - mnew);\n"
"                            Pt[r] += pv;\n"
"                            SpI[r] += pv * v;\n"
"                            if (pv > 0.f) Spl[r] += pv * __logf(pv);\n"
"                        }\n"
"                    }\n"
"            }\n"
"            base[r] += pre[3] + __popc(wd[3]);\n"
"        }\n"
"        __syncthreads();  // the next load overwrites this buffer\n"
"    }\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"#pragma unroll\n"
"        for (int o = 1; o <= 2; o <<= 1) {\n"
"            l[r] += __shfl_xor_sync(0xffffffffu, l[r], o);\n"
"            Pt[r] += __shfl_xor_sync(0xffffffffu, Pt[r], o);\n"
"            SpI[r] += __shfl_xor_sync(0xffffffffu, SpI[r], o);\n"
"            Spl[r] += __shfl_xor_sync(0xffffffffu, Spl[r], o);\n"
"        }\n"
"        const int row = m0 + rl + 8 * r;\n"
"        if (t4 == 0 && row < T) {\n"
"            const long n = (long)b * T + row;\n"
"            const float lse = mx[r] + __logf(l[r]), P = Pt[r];\n"
"            loss[n] = P > 0.f ? Spl[r] / P - __logf(P) - SpI[r] / P + lse : 0.f;\n"
"            if (lseI) lseI[n] = lse;\n"
"            if (invP) invP[n] = P > 0.f ? 1.f / P : 0.f;\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// grid (B, ceil(T/64)): dqI and dw of every head for 64 query rows. A key tile is taken in\n"
"// two halves of 64 keys: I and g over the half (the heads' scores once), then per head the\n"
"// scores again, G = g w [a > 0] as the A operand, dqI_j += G kI (all heads' dqI accumulate\n"
"// in registers: 32 a head)\n"
"extern \"C\" __global__ void __launch_bounds__(128, 1)\n"
"attn_sel_kl_dq_wg(bf16 *dqI, bf16 *dw, const float *lseI, const float *invP, const float *p, const bf16 *qI,\n"
"                  const bf16 *kI, const bf16 *w, const unsigned *selmask, int T, int topk, float dloss) {\n"
"    KL_PROLOGUE();\n"
"    float la[2], ia[2];\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        const int row = m0 + rl + 8 * r;\n"
"        la[r] = row < T ? lseI[(long)b * T + row] : 0.f;\n"
"        ia[r] = row < T ? invP[(long)b * T + row] : 0.f;\n"
"    }\n"
"    float dq[KL_HI][32], dws[KL_HI][2];\n"
"#pragma unroll\n"
"    for (int h = 0; h < KL_HI; h++) {\n"
"        dws[h][0] = dws[h][1] = 0.f;\n"
"#pragma unroll\n"
"        for (int i = 0; i < 32; i++) dq[h][i] = 0.f;\n"
"    }\n"
"    int base[2] = {0, 0};\n"
"    for (int j = 0; j < jn; j++) {\n"
"        KL_NEXT(j);\n"
"        unsigned wd[2][4];\n"
"        int pre[2][4];\n"
"#pragma unroll\n"
"        for (int r = 0; r < 2; r++) {\n"
"            const uint4 mw = *(const uint4 *)(sM + (buf * 64 + rl + 8 * r) * 4);\n"
"            wd[r][0] = mw.x; wd[r][1] = mw.y; wd[r][2] = mw.z; wd[r][3] = mw.w;\n"
"            pre[r][0] = base[r];\n"
"#pragma unroll\n"
"            for (int u = 1; u < 4; u++) pre[r][u] = pre[r][u - 1] + __popc(wd[r][u - 1]);\n"
"        }\n"
"#pragma unroll 1\n"
"        for (int half = 0; half < 2; half++) {\n"
"            const unsigned Kh = Kt + half * 8192;\n"
"            float gv[32], a[32];\n"
"#pragma unroll\n"
"            for (int i = 0; i < 32; i++) gv[i] = 0.f;\n"
"#pragma unroll\n"
"            for (int h = 0; h < KL_HI; h++) {\n"
"                kl_ab64(a, sQ + h * 8192, Kh);\n"
"#pragma unroll\n"
"                for (int i = 0; i < 32; i++) gv[i] += ((i & 2) ? wb[h] : wa[h]) * fmaxf(a[i], 0.f);\n"
"            }\n"
"            // g over the half: element 4i + 2r + e is row rl + 8r, key 64 half + 8i + 2 t4 + e\n"
"#pragma unroll\n"
"            for (int r = 0; r < 2; r++) {\n"
"                const float *prow = p + ((long)b * T + m0 + rl + 8 * r) * topk;\n"
"#pragma unroll\n"
"                for (int i = 0; i < 8; i++)\n"
"#pragma unroll\n"
"                    for (int e = 0; e < 2; e++) {\n"
"                        const int c = 4 * i + 2 * r + e, bit = (i & 3) * 8 + 2 * t4 + e, u = 2 * half + (i >> 2);\n"
"                        const unsigned x = wd[r][u];\n"
"                        float v = 0.f;\n"
"                        if ((x >> bit) & 1u)\n"
"                            v = dloss * (__expf(gv[c] - la[r]) - prow[pre[r][u] + __popc(x & ((1u << bit) - 1u))] * ia[r]);\n"
"                        gv[c] = v;\n"
"                    }\n"
"            }\n"
"#pragma unroll\n"
"            for (int h = 0; h < KL_HI; h++) {\n"
"                kl_ab64(a, sQ + h * 8192, Kh);\n"
"                unsigned pa[4][4];\n"
"#pragma unroll\n"
"                for (int kk = 0; kk < 4; kk++)\n"
"#pragma unroll\n"
"                    for (int q2 = 0; q2 < 4; q2++) {\n"
"                        const int i0 = 8 * kk + 2 * q2;  // elements i0, i0 + 1: one row\n"
"                        const float wh = (i0 & 2) ? wb[h] : wa[h];\n"
"                        dws[h][(i0 >> 1) & 1] += gv[i0] * fmaxf(a[i0], 0.f) + gv[i0 + 1] * fmaxf(a[i0 + 1], 0.f);\n"
"                        pa[kk][q2] = pack_bf16(a[i0] > 0.f ? gv[i0] * wh : 0.f, a[i0 + 1] > 0.f ? gv[i0 + 1] * wh : 0.f);\n"
"                    }\n"
"                wg_fence();\n"
"#pragma unroll\n"
"                for (int kk = 0; kk < 4; kk++) wg_rs64_tb(dq[h], pa[kk], gdesc(Kh + kk * 2048, 1024), 1);\n"
"                wg_commit();\n"
"                wg_wait<0>();\n"
"                fence_regs<32>(dq[h]);\n"
"            }\n"
"        }\n"
"#pragma unroll\n"
"        for (int r = 0; r < 2; r++) base[r] = pre[r][3] + __popc(wd[r][3]);\n"
"        __syncthreads();  // the next load overwrites this buffer\n"
"    }\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        const int row = m0 + rl + 8 * r;\n"
"        const long n = (long)b * T + row;\n"
"#pragma unroll\n"
"        for (int h = 0; h < KL_HI; h++) {\n"
"            float x = dws[h][r];\n"
"            x += __shfl_xor_sync(0xffffffffu, x, 1);\n"
"            x += __shfl_xor_sync(0xffffffffu, x, 2);\n"
"            if (row >= T) continue;\n"
"            if (t4 == 0) dw[n * KL_HI + h] = (bf16)(pack_bf16(x, 0.f) & 0xffffu);\n"
"            bf16 *drow = dqI + (n * KL_HI + h) * 64;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8; i++)\n"
"                *(unsigned *)(drow + 8 * i + 2 * t4) = pack_bf16(dq[h][4 * i + 2 * r], dq[h][4 * i + 2 * r + 1]);\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// grid (B, ceil(T/128)), two warpgroups of 64 keys each; walks the query tiles of 64 rows\n"
"// from the block's diagonal on: S^T_j = kI qI_j^T, I^T, g^T, then dkI += G_j^T qI_j\n"
"extern \"C\" __global__ void __launch_bounds__(256, 1)\n"
"attn_sel_kl_dk_wg(bf16 *dkI, const float *lseI, const float *invP, const float *p, const int *prefix,\n"
"                  const bf16 *qI, const bf16 *kI, const bf16 *w, const unsigned *selmask, int T, int topk,\n"
"                  float dloss) {\n"
"    extern __shared__ __align__(1024) unsigned char smem_raw[];\n"
"    const unsigned s0 = (smem_addr(smem_raw) + 1023u) & ~1023u;\n"
"    const unsigned sK = s0, sQ = sK + 16384;  // kI [128 keys][64]; qI [2][KL_HI][64 rows][64]\n"
"    unsigned *sM = (unsigned *)(smem_raw + (sQ + 2 * KL_HI * 8192 - smem_addr(smem_raw)));  // [2][64][4]\n"
"    float *sW = (float *)(sM + 2 * 64 * 4);  // [2][64][KL_HI]\n"
"    float *sL = sW + 2 * 64 * KL_HI;         // [2][64] lseI\n"
"    float *sP = sL + 2 * 64;                 // [2][64] 1/P\n"
"    int *sB = (int *)(sP + 2 * 64);          // [2][64] the row's selected keys left of this block\n"
"    const int W = SELW(T), NT = SELW(T) / 4;\n"
"    const int b = blockIdx.x, n0 = blockIdx.y * 128;\n"
"    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, t4 = lane & 3;\n"
"    const int kw = wg * 64, krow = kw + warp * 16 + g;  // this thread's keys krow, krow + 8 (local)\n"
"    const int ilo = n0 / 64, iters = (T - 1) / 64 - ilo + 1;\n"
"    load_sw<128, 256>(sK, kI + (long)b * T * 64, 64, n0, T);\n"
"#define KLD_LOAD(it, buf)                                                                     \\\n"
"    do {                                                                                      \\\n"
"        const int m_ = (ilo + (it)) * 64;                                                     \\\n"
"        for (int h = 0; h < KL_HI; h++)                                                       \\\n"
"            load_sw<64, 256>(sQ + ((buf) * KL_HI + h) * 8192, qI + (long)b * T * KL_HI * 64 + h * 64, KL_HI * 64, m_, T); \\\n"
"        if (tid < 64) {                                                                       \\\n"
"            const int r_ = m_ + tid;                                                          \\\n"
"            const bool ok_ = r_ < T;                                                          \\\n"
"            const long n_ = (long)b * T + (ok_ ? r_ : 0);                                     \\\n"
"            cp_async16(sM + ((buf) * 64 + tid) * 4, selmask + n_ * W + n0 / 32, ok_);         \\\n"
"            cp_async4(sL + (buf) * 64 + tid, lseI + n_, ok_);                                 \\\n"
"            cp_async4(sP + (buf) * 64 + tid, invP + n_, ok_);                                 \\\n"
"            cp_async4(sB + (buf) * 64 + tid, prefix + n_ * NT + n0 / 128, ok_);               \\\n"
"        }                                                                                     \\\n"
"        for (int i_ = tid; i_ < 64 * KL_HI; i_ += 256) {                                      \\\n"
"            const int r_ = m_ + i_ / KL_HI;                                                   \\\n"
"            sW[(buf) * 64 * KL_HI + i_] = r_ < T ? kl_bf(w[((long)b * T + r_) * KL_HI + i_ % KL_HI]) : 0.f; \\\n"
"        }                                                                                     \\\n"
"        cp_async_commit();                                                                    \\\n"
"    } while (0)\n"
"    KLD_LOAD(0, 0);\n"
"    float dk[32];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 32; i++) dk[i] = 0.f;\n"
"    for (int it = 0; it < iters; it++) {\n"
"        const int buf = it & 1, m0 = (ilo + it) * 64;\n"
"        if (it + 1 < iters) {\n"
"            __syncthreads();  // sW[buf ^ 1] (plain stores) no longer read by iteration it - 1\n"
"            KLD_LOAD(it + 1, buf ^ 1);\n"
"        }\n"
"        tile_landed(it + 1 < iters);\n"
"        const unsigned Qb = sQ + buf * KL_HI * 8192;\n"
"        const float *Wt = sW + buf * 64 * KL_HI, *Lt = sL + buf * 64, *Pi = sP + buf * 64;\n"
"        const unsigned *Mt = sM + buf * 64 * 4;\n"
"        const int *Bt = sB + buf * 64;\n"
"        float It[32], st[32];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 32; i++) It[i] = 0.f;\n"
"        for (int h = 0; h < KL_HI; h++) {\n"
"            kl_ab64(st, sK + kw * 128, Qb + h * 8192);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 32; i++) It[i] += Wt[((i >> 2) * 8 + 2 * t4 + (i & 1)) * KL_HI + h] * fmaxf(st[i], 0.f);\n"
"        }\n"
"        // g^T: rows = keys krow (+8), columns = queries ql = 8i + 2 t4 + (e & 1)\n"
"        const int wi = krow >> 5;\n"
"#pragma unroll\n"
"        for (int i = 0; i < 8; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) {\n"
"                const int ql = i * 8 + 2 * t4 + (e & 1), bit = (krow & 31) + (e >> 1) * 8;\n"
"                const unsigned *mrow = Mt + ql * 4;\n"
"                const unsigned x = mrow[wi];\n"
"                float gv = 0.f;\n"
"                if ((x >> bit) & 1u) {\n"
"                    int rank = Bt[ql] + __popc(x & ((1u << bit) - 1u));\n"
"                    for (int u = 0; u < wi; u++) rank += __popc(mrow[u]);\n"
"                    gv = dloss * (__expf(It[4 * i + e] - Lt[ql]) - p[((long)b * T + m0 + ql) * topk + rank] * Pi[ql]);\n"
"                }\n"
"                It[4 * i + e] = gv;\n"
"            }\n"
"        for (int h = 0; h < KL_HI; h++) {\n"
"            kl_ab64(st, sK + kw * 128, Qb + h * 8192);\n"
"            unsigned ap[4][4];\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++)\n"
"#pragma unroll\n"
"                for (int r = 0; r < 4; r++) {\n"
"                    const int i0 = 8 * kk + 2 * r;  // elements i0, i0 + 1: the same row, queries q, q + 1\n"
"                    const float w0 = Wt[((i0 >> 2) * 8 + 2 * t4) * KL_HI + h], w1 = Wt[((i0 >> 2) * 8 + 2 * t4 + 1) * KL_HI + h];\n"
"                    ap[kk][r] = pack_bf16(st[i0] > 0.f ? It[i0] * w0 : 0.f, st[i0 + 1] > 0.f ? It[i0 + 1] * w1 : 0.f);\n"
"                }\n"
"            wg_fence();\n"
"#pragma unroll\n"
"            for (int kk = 0; kk < 4; kk++) wg_rs64_tb(dk, ap[kk], gdesc(Qb + h * 8192 + kk * 2048, 1024), 1);\n"
"            wg_commit();\n"
"            wg_wait<0>();\n"
"            fence_regs<32>(dk);\n"
"        }\n"
"    }\n"
"#pragma unroll\n"
"    for (int r = 0; r < 2; r++) {\n"
"        const int key = n0 + krow + 8 * r;\n"
"        if (key >= T) continue;\n"
"        bf16 *drow = dkI + ((long)b * T + key) * 64;\n"
"#pragma unroll\n"
"        for (int i = 0; i < 8; i++) *(unsigned *)(drow + 8 * i + 2 * t4) = pack_bf16(dk[4 * i + 2 * r], dk[4 * i + 2 * r + 1]);\n"
"    }\n"
"}\n"
"#endif\n";

/* ---------------------------------------------------------------- host */

typedef struct { CUfunction fwd, pre, dkdv, conv; } AttnKernels;

/* a pattern as the kernels take it (-D options) for one T: a field that changes nothing
   for this T is 0 (so equal masks share a kernel), and a pattern that is dense or a plain
   window comes out as {window} alone, which compiles exactly the kernels it always did.
   span = window * dilation capped at T (a distance t - s is always < T). */
typedef struct { int window, global, stride, dilation, span, block; } AttnPatK;

static AttnPatK attn_pattern_for_(const OpsPattern *p, int T) {
    AttnPatK k = {0, 0, 0, 0, 0, 0};
    if (!p) return k;
    const int pb = p->block > 0 ? p->block : OPS_PATTERN_BLOCK;
    if (p->window <= 0 || p->window >= T || p->global >= T || (p->stride > 0 && p->stride <= pb))
        return k; /* dense causal */
    k.window = p->window;
    k.global = p->global;
    if (p->stride > 0 && p->stride - pb < T) k.stride = p->stride;               /* a summary key < T */
    if (p->dilation >= 2 && (long)(p->dilation - 1) * pb < T) {                   /* a kept block < T */
        k.dilation = p->dilation;
        k.span = (long)p->window * p->dilation < T ? p->window * p->dilation : T;
    }
    if (k.global || k.stride || k.dilation) k.block = pb;
    return k;
}
static int attn_pat_sparse_(const AttnPatK *k) { return k->global || k->stride || k->dilation; }

/* the pattern's -D options, appended to buf (nothing for dense or a plain window) */
static void attn_pattern_options_(char *buf, size_t n, const AttnPatK *k) {
    size_t len = strlen(buf);
    if (attn_pat_sparse_(k) && len < n)
        snprintf(buf + len, n - len, " -DGLOBAL=%d -DSTRIDE=%d -DDILATION=%d -DDSPAN=%d -DPBLOCK=%d",
                 k->global, k->stride, k->dilation, k->span, k->block);
}

/* det: the fixed-order dQ (-DDQ_DET=1, appended last so that the order-dependent variants
   keep their options, hence their modules and code, exactly) */
static void attn_det_option_(char *buf, size_t n, int det) {
    size_t len = strlen(buf);
    if (det && len < n) snprintf(buf + len, n - len, " -DDQ_DET=1");
}
/* The mma.sync kernels' tiles at head dim hd. hdp: the padded tile width, a multiple of 16
   up to 128 and of 32 past it (there the backward splits dK, dV columns between two warps,
   half of hdp each, whole 16-column tiles); 32, 64, 128 are unpadded. Past 128 the forward
   takes 4 warps and 32-key tiles: 2 x hdp/2 accumulator registers a thread leave no room for
   64-key score tiles (hd 256: 255 registers, a 40-byte spill; 192: none). */
static int attn_hdp_(int hd) { return hd <= 128 ? (hd + 15) / 16 * 16 : (hd + 31) / 32 * 32; }
static int attn_fwd_warps_(int hd) { return attn_hdp_(hd) > 128 ? 4 : ATTN_FWD_WARPS; }
static int attn_fwd_bn_(int hd) { return attn_hdp_(hd) > 128 ? 32 : ATTN_FWD_BN; }
static int attn_bwd_bn_(int hd) { return 16 * ATTN_BWD_WARPS / (attn_hdp_(hd) > 128 ? 2 : 1); }
/* threads per row of the backward's preprocess: hd/8 rounded up to a power of two (PRE_TPR) */
static int attn_pre_tpr_(int hd) { return hd <= 32 ? 4 : hd <= 64 ? 8 : hd <= 128 ? 16 : 32; }
/* the head dims the flash kernels take */
static int attn_hd_ok_(int hd) { return hd >= 32 && hd <= 256 && hd % 8 == 0; }

static void attn_options_(char *buf, size_t n, int hd, int group, const AttnPatK *k, int det) {
    snprintf(buf, n, "-DHD=%d -DGROUP=%d -DWINDOW=%d -DFWD_WARPS=%d -DFWD_BN=%d -DBWD_WARPS=%d",
             hd, group, k->window, attn_fwd_warps_(hd), attn_fwd_bn_(hd), ATTN_BWD_WARPS);
    if (attn_hdp_(hd) != hd) { /* only then: the unpadded widths keep their options, hence modules */
        size_t len = strlen(buf);
        if (len < n) snprintf(buf + len, n - len, " -DHDP=%d", attn_hdp_(hd));
    }
    attn_pattern_options_(buf, n, k);
    attn_det_option_(buf, n, det);
}
/* attn_dropout: -DATTN_DROPOUT=1 appended last (the kernels without it keep their options) */
static void attn_dropout_option_(char *buf, size_t n, int dropout) {
    size_t len = strlen(buf);
    if (dropout && len < n) snprintf(buf + len, n - len, " -DATTN_DROPOUT=1");
}

static void attn_check_args_(const char *who, int B, int T, int H, int KV, int hd, const OpsPattern *p) {
    static const OpsPattern dense = {0, 0, 0, 0, 0};
    if (!p) p = &dense;
    if (B < 1 || T < 1 || H < 1 || KV < 1 || H % KV != 0 || !attn_hd_ok_(hd) ||
        p->window < 0 || p->global < 0 || p->stride < 0 || p->dilation < 0 || p->block < 0 ||
        (long)p->dilation * (p->block > 0 ? p->block : OPS_PATTERN_BLOCK) > 0x3fffffff) {
        fprintf(stderr, "%s: unsupported shape B=%d T=%d H=%d KV=%d hd=%d window=%d global=%d stride=%d "
                        "dilation=%d block=%d (need H %% KV == 0, hd a multiple of 8 in 32..256, pattern fields >= 0)\n",
                who, B, T, H, KV, hd, p->window, p->global, p->stride, p->dilation, p->block);
        abort();
    }
}

/* the Hopper kernels (ATTN_WGMMA_SRC): sm_90a; hd 64, or the forward alone at another width
   (attn_wgmma_mode_) */
static void attn_wgmma_options_(char *buf, size_t n, int hd, int group, const AttnPatK *k, int dq_mode, int det) {
    snprintf(buf, n, "--gpu-architecture=sm_90a -DGROUP=%d -DWINDOW=%d -DWFWD_BN=%d -DWFWD_WG=%d -DWB_DQ_BULK=%d",
             group, k->window, ATTN_WFWD_BN, ATTN_WFWD_WG, dq_mode);
    if (hd != 64) { /* -DHD only off the default, so that hd 64's options stay as they were */
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, " -DHD=%d", hd);
    }
    attn_pattern_options_(buf, n, k);
    attn_det_option_(buf, n, det);
}
/* ... under a selection bitmask (SELMASK): no pattern, the mask says everything */
static void attn_select_options_(char *buf, size_t n, int group, int dq_mode, int det) {
    snprintf(buf, n, "--gpu-architecture=sm_90a -DGROUP=%d -DWINDOW=0 -DWFWD_BN=128 -DWFWD_WG=%d -DWB_DQ_BULK=%d -DSELMASK=1",
             group, ATTN_WFWD_WG, dq_mode);
    attn_det_option_(buf, n, det);
}
/* the fixed-order dQ (DQ_DET) unless the caller asked for the order-dependent variants */
static int attn_det_(const Gpu *g) { return !g->nondeterministic; }
/* the Hopper backward's dQ reduction (WB_DQ_BULK): deterministic, the ordered bulk adds of 2;
   else ATTN_WBWD_DQ_BULK, or g->tuning.attn_wbwd_dq (variant 0..4) for A/B runs. At head dims
   other than 64 the tiled accumulator only (2 or 3; 2 for the others) */
static int attn_wbwd_dq_mode_(const Gpu *g, int hd) {
    if (attn_det_(g)) return 2;
    int m = gpu_tuned(g->tuning.attn_wbwd_dq, ATTN_WBWD_DQ_BULK);
    if (m < 0 || m > 4) m = ATTN_WBWD_DQ_BULK;
    return hd != 64 && m != 2 && m != 3 ? 2 : m;
}

/* which passes take the Hopper kernels: bit 0 backward, bit 1 forward. Only on a
   compute capability 9.0 device (sm_90a code runs nowhere else). hd 64: both by default
   (ATTN_WGMMA_DEFAULT); g->tuning.attn_wgmma (variant 0..3) overrides it. Other multiples of
   8 from 32 to 128 (the kernels on 64-column halves): by default the forward at the widths of
   ATTN_WGMMA_FWD_WIDTH and the backward at those of ATTN_WGMMA_BWD_WIDTH; at every one as
   tuning.attn_wgmma says when it is set. */
#ifndef ATTN_WGMMA_DEFAULT
#define ATTN_WGMMA_DEFAULT 3
#endif
/* By tests/gpu_attn_check --wide-only (H100, docs/benchmarks.md 2026-12-05): both passed its
   checks at every width; the wgmma forward is the faster one at every width (hd 32: 0.358 ->
   0.336 ms at T 2048, the least gain), the wgmma backward from 40 up (T 2048, backward ms
   mma.sync -> wgmma: hd 40 1.96 -> 1.87, 72 0.86 -> 0.50, 128 1.18 -> 0.65) but not at 32
   (1.57 -> 1.80: a 32-wide head fills half of each 64-column wgmma operand) */
#ifndef ATTN_WGMMA_FWD_WIDTH
#define ATTN_WGMMA_FWD_WIDTH(hd) 1
#endif
#ifndef ATTN_WGMMA_BWD_WIDTH
#define ATTN_WGMMA_BWD_WIDTH(hd) ((hd) >= 40)
#endif
static int attn_wgmma_mode_(const Gpu *g, int hd) {
    if (g->cc_major != 9 || g->cc_minor != 0) return 0;
    if (hd < 32 || hd > 128 || hd % 8) return 0;
    const int m = gpu_tuned(g->tuning.attn_wgmma, ATTN_WGMMA_DEFAULT) & 3;
    if (hd == 64 || g->tuning.attn_wgmma) return m;
    return m & ((ATTN_WGMMA_FWD_WIDTH(hd) ? 2 : 0) | (ATTN_WGMMA_BWD_WIDTH(hd) ? 1 : 0));
}
/* alignment pad, Q, 2 K and 2 V tiles, each of (hd + 63) / 64 column halves (and 2 tiles of
   mask words under SELMASK) */
static unsigned attn_wfwd_smem_(int selmask, int hd) {
    const int nh = (hd + 63) / 64;
    return (unsigned)(1024 + nh * (64 * ATTN_WFWD_WG * 128 + 4 * ATTN_WFWD_BN * 128) +
                      (selmask ? 2 * 64 * ATTN_WFWD_WG * 16 : 0));
}
/* alignment pad, K and V, K^T (up to hd 64), 2 Q, 2 dO tiles, each of (hd + 63) / 64 column
   halves, 2 dS^T tiles, lse and D (and 2 tiles of mask words, and 2 fp32 dQ staging tiles of
   as many halves). hd 128: 231424 bytes, of the 232448 an sm_90 block can have */
static unsigned attn_wbwd_smem_(int dq_mode, int selmask, int hd) {
    const unsigned nh = (unsigned)(hd + 63) / 64;
    return 1024 + nh * 4 * 16384 + (nh == 1 ? 16384 : 0) + 2 * 16384 + 2 * 2 * 64 * 4 + (selmask ? 2 * 64 * 16 : 0) +
           (dq_mode >= 2 ? nh * 2 * 16384 : dq_mode == 1 ? 2 * 64 * 68 * 4 : 0);
}

static AttnKernels attn_kernels_(Gpu *g, int hd, int group, const AttnPatK *pk, int dropout) {
    char opt[256];
    attn_options_(opt, sizeof opt, hd, group, pk, attn_det_(g));
    attn_dropout_option_(opt, sizeof opt, dropout);
    AttnKernels k;
    k.fwd = gpu_kernel(g, ATTN_KERNELS_SRC, "attn_fwd", opt);
    k.pre = gpu_kernel(g, ATTN_KERNELS_SRC, "attn_bwd_pre", opt);
    k.dkdv = gpu_kernel(g, ATTN_KERNELS_SRC, "attn_bwd_dkdv", opt);
    k.conv = gpu_kernel(g, ATTN_KERNELS_SRC, "attn_bwd_dq_convert", opt);
    return k;
}

/* shared memory of each kernel (bytes), mirroring the carve-up in the kernels */
static unsigned attn_fwd_smem_(int hd) {
    return (unsigned)(2 * (attn_hdp_(hd) + 8) * (16 * attn_fwd_warps_(hd) + 4 * attn_fwd_bn_(hd)));
}
static unsigned attn_bwd_smem_(int hd) {
    int hdp = attn_hdp_(hd), bn = attn_bwd_bn_(hd), bm = ATTN_BWD_BM(hdp);
    return (unsigned)(2 * ((hdp + 8) * (2 * bn + 4 * bm) + bn * (bm + 8)) + 4 * 4 * bm);
}

GPUDEF void gpu_attention_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                  const void *v, int B, int T, int H, int KV, int hd, int window) {
    OpsPattern p = {window, 0, 0, 0, 0};
    gpu_attention_pattern_forward(gpu, out, lse, q, k, v, B, T, H, KV, hd, &p);
}

GPUDEF int gpu_attention_wgmma_passes(const Gpu *gpu, int hd) { return attn_wgmma_mode_(gpu, hd); }

GPUDEF int gpu_attention_select_supported(const Gpu *gpu, int hd) {
    return gpu->cc_major == 9 && gpu->cc_minor == 0 && hd == 64;
}
GPUDEF int gpu_attention_select_words(int T) { return (T + 127) / 128 * 4; }

/* the selection-mask kernels run on the Hopper wgmma path only */
static void attn_require_select_(const Gpu *gpu, const char *who, int hd) {
    if (gpu_attention_select_supported(gpu, hd)) return;
    fprintf(stderr, "%s: needs a compute capability 9.0 GPU and hd 64 (this one: %d.%d, hd %d)\n", who, gpu->cc_major,
            gpu->cc_minor, hd);
    abort();
}

/* the forward under a pattern, or (mask != NULL, Hopper only) under a selection bitmask */
/* attn_dropout's kernel arguments, after the kernel's others */
typedef struct { const int *ctr; unsigned long long seed; int layer; unsigned thresh; float scale; } AttnDropArgs;
static AttnDropArgs attn_drop_args_(const char *who, const OpsDropout *d) {
    AttnDropArgs a = {d->d_ctr, d->seed, d->layer, d->thresh, d->scale};
    if (!d->d_ctr || !(d->scale >= 1)) {
        fprintf(stderr, "%s: dropout needs the device counters {step, micro} (d_ctr %p) and a scale >= 1 (%g)\n",
                who, (const void *)d->d_ctr, (double)d->scale);
        abort();
    }
    return a;
}

static void attn_forward_(Gpu *gpu, void *out, float *lse, const void *q, const void *k, const void *v,
                          int B, int T, int H, int KV, int hd, const OpsPattern *p, const unsigned *mask,
                          const OpsDropout *d) {
    const char *who = mask ? "gpu_attention_select_forward" : "gpu_attention_forward";
    attn_check_args_(who, B, T, H, KV, hd, p);
    const void *ptrs[] = {out, q, k, v, mask};
    gpu_require_aligned16(who, ptrs, mask ? 5 : 4);
    /* the mask in the kernels' terms (W >= T: full causal, one kernel less) */
    const AttnPatK pk = attn_pattern_for_(p, T);
    float scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd));
    void *args[] = {&out, &lse, &q, &k, &v, &T, &H, &scale_log2, &mask};
    if (mask) attn_require_select_(gpu, who, hd);
    if (mask || (!d && (attn_wgmma_mode_(gpu, hd) & 2))) {
        char opt[256];
        if (mask) attn_select_options_(opt, sizeof opt, H / KV, attn_wbwd_dq_mode_(gpu, hd), attn_det_(gpu));
        else attn_wgmma_options_(opt, sizeof opt, hd, H / KV, &pk, attn_wbwd_dq_mode_(gpu, hd), attn_det_(gpu));
        CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_fwd_wg", opt);
        unsigned bm = 64 * ATTN_WFWD_WG;
        gpu_launch(gpu, f, (unsigned)(B * H), (unsigned)((T + bm - 1) / bm), 1, 128 * ATTN_WFWD_WG, 1, 1,
                   attn_wfwd_smem_(mask != NULL, hd), args);
        return;
    }
    AttnKernels kn = attn_kernels_(gpu, hd, H / KV, &pk, d != NULL);
    const int fw = attn_fwd_warps_(hd);
    unsigned mblocks = (unsigned)((T + 16 * fw - 1) / (16 * fw));
    AttnDropArgs da;
    void *dargs[] = {&out, &lse, &q, &k, &v, &T, &H, &scale_log2, &da.ctr, &da.seed, &da.layer, &da.thresh, &da.scale};
    if (d) da = attn_drop_args_(who, d);
    gpu_launch(gpu, kn.fwd, (unsigned)(B * H), mblocks, 1, 32 * fw, 1, 1,
               attn_fwd_smem_(hd), d ? dargs : args);
}

GPUDEF void gpu_attention_pattern_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p) {
    attn_forward_(gpu, out, lse, q, k, v, B, T, H, KV, hd, p, NULL, NULL);
}

GPUDEF void gpu_attention_dropout_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                          const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                          const OpsDropout *d) {
    attn_forward_(gpu, out, lse, q, k, v, B, T, H, KV, hd, p, NULL, d && d->thresh ? d : NULL);
}

GPUDEF int gpu_attention_kernels(const Gpu *gpu, int T, int H, int KV, int hd, const OpsPattern *p,
                                 GpuKernelSpec *out, int max) {
    const AttnPatK pk = attn_pattern_for_(p, T);
    char opt[GPU_KERNEL_OPTIONS_MAX];
    attn_options_(opt, sizeof opt, hd, H / KV, &pk, attn_det_(gpu)); /* the backward loads it in any case */
    int n = gpu_kernel_spec_add(out, max, 0, ATTN_KERNELS_SRC, opt);
    if (attn_wgmma_mode_(gpu, hd)) {
        attn_wgmma_options_(opt, sizeof opt, hd, H / KV, &pk, attn_wbwd_dq_mode_(gpu, hd), attn_det_(gpu));
        n = gpu_kernel_spec_add(out, max, n, ATTN_WGMMA_SRC, opt);
    }
    return n;
}

GPUDEF int gpu_attention_select_kernels(const Gpu *gpu, int H, int KV, int HI, GpuKernelSpec *out, int max) {
    if (!gpu_attention_select_supported(gpu, 64)) return 0;
    const AttnPatK none = attn_pattern_for_(NULL, 1);
    char opt[GPU_KERNEL_OPTIONS_MAX];
    attn_options_(opt, sizeof opt, 64, H / KV, &none, attn_det_(gpu)); /* the backward's attn_kernels_ */
    int n = gpu_kernel_spec_add(out, max, 0, ATTN_KERNELS_SRC, opt);
    attn_select_options_(opt, sizeof opt, H / KV, attn_wbwd_dq_mode_(gpu, 64), attn_det_(gpu));
    n = gpu_kernel_spec_add(out, max, n, ATTN_WGMMA_SRC, opt);
    if (HI >= 1 && gpu_attention_select_kl_supported(gpu, HI, 64)) { /* as gpu_attention_select_kl builds it */
        attn_select_options_(opt, sizeof opt, 1, attn_wbwd_dq_mode_(gpu, 64), attn_det_(gpu));
        size_t len = strlen(opt);
        snprintf(opt + len, sizeof opt - len, " -DKL_HI=%d", HI);
        n = gpu_kernel_spec_add(out, max, n, ATTN_WGMMA_SRC, opt);
    }
    return n;
}

GPUDEF void gpu_attention_select_forward(Gpu *gpu, void *out, float *lse, const void *q, const void *k,
                                         const void *v, const unsigned *mask, int B, int T, int H, int KV, int hd) {
    attn_forward_(gpu, out, lse, q, k, v, B, T, H, KV, hd, NULL, mask, NULL);
}

/* the backward's fp32 scratch (D, dQ accumulator), kept in the Gpu, grown on demand */
static void *attn_scratch_get_(Gpu *g, size_t bytes) {
    return gpu_scratch(g, &g->attn_scratch, &g->attn_scratch_bytes, bytes);
}

GPUDEF void gpu_attention_release(Gpu *gpu) { gpu_scratch_release(gpu, &gpu->attn_scratch, &gpu->attn_scratch_bytes); }

GPUDEF void gpu_attention_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                   const void *out, const float *lse, const void *q, const void *k,
                                   const void *v, int B, int T, int H, int KV, int hd, int window) {
    OpsPattern p = {window, 0, 0, 0, 0};
    gpu_attention_pattern_backward(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, &p);
}

static void attn_backward_(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout, const void *out,
                           const float *lse, const void *q, const void *k, const void *v, int B, int T, int H,
                           int KV, int hd, const OpsPattern *p, const unsigned *mask, const OpsDropout *d) {
    const char *who = mask ? "gpu_attention_select_backward" : "gpu_attention_backward";
    attn_check_args_(who, B, T, H, KV, hd, p);
    const void *ptrs[] = {dq, dk, dv, dout, out, q, k, v, mask};
    gpu_require_aligned16(who, ptrs, mask ? 9 : 8);
    if (mask) attn_require_select_(gpu, who, hd);
    const AttnPatK pk = attn_pattern_for_(p, T);
    AttnKernels kn = attn_kernels_(gpu, hd, H / KV, &pk, d != NULL);
    long rows = (long)B * T * H;
    /* the Hopper backward with WB_DQ_BULK >= 2 keeps dQ in a tiled [B,H,Tp,hd] accumulator
       (Tp = T rounded up to 64), with its own preprocess and convert kernels */
    const int wg_bwd = mask || (!d && (attn_wgmma_mode_(gpu, hd) & 1)), dq_mode = wg_bwd ? attn_wbwd_dq_mode_(gpu, hd) : 0;
    char wopt[256];
    if (mask) attn_select_options_(wopt, sizeof wopt, H / KV, dq_mode, attn_det_(gpu));
    else attn_wgmma_options_(wopt, sizeof wopt, hd, H / KV, &pk, dq_mode, attn_det_(gpu));
    CUfunction pre = kn.pre, conv = kn.conv;
    if (dq_mode >= 2) {
        pre = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_bwd_pre_wg", wopt);
        conv = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_bwd_dq_convert_wg", wopt);
    }
    /* the tiled accumulator is (hd + 63) / 64 halves of 64 columns wide */
    size_t n_d = (size_t)rows,
           n_acc = (size_t)B * H * (((size_t)T + 63) / 64 * 64) * (dq_mode >= 2 ? (size_t)(hd + 63) / 64 * 64 : (size_t)hd);
    /* one int counter per dQ tile (WB_DQ_BULK 4's adds, DQ_DET's turns): tiles of 32 rows or more */
    size_t n_cnt = (size_t)B * H * (((size_t)T + 31) / 32);
    float *Dsum = (float *)attn_scratch_get_(gpu, 4 * (n_d + n_acc + n_cnt + 64));
    /* the accumulator starts 256-byte aligned past D, for 16-byte vector access */
    float *dqacc = Dsum + ((n_d + 63) / 64) * 64;
    int *dqcnt = (int *)(dqacc + n_acc);

    {   /* D = rowsum(dO * O); dqacc = 0 */
        void *args[] = {&Dsum, &dqacc, &out, &dout, &T, &H, &rows, &dqcnt};
        size_t threads = (size_t)rows * (dq_mode >= 2 ? 8 : attn_pre_tpr_(hd)); /* the Hopper one: 8 a row */
        gpu_launch(gpu, pre, (unsigned)((threads + 255) / 256), 1, 1, 256, 1, 1, 0, args);
    }
    {   /* dK, dV; dQ accumulated in fp32 */
        float scale = (float)(1.0 / sqrt((double)hd));
        float scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd));
        void *args[] = {&dk, &dv, &dqacc, &q, &k, &v, &dout, &lse, &Dsum, &T, &H, &scale, &scale_log2,
                        &dq, &dqcnt, &mask};
        if (wg_bwd) { /* Hopper: 128 keys a block, 2 warpgroups */
            CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_bwd_dkdv_wg", wopt);
            gpu_launch(gpu, f, (unsigned)(B * KV), (unsigned)((T + 127) / 128), 1, 256, 1, 1,
                       attn_wbwd_smem_(dq_mode, mask != NULL, hd), args);
        } else {
            int bn = attn_bwd_bn_(hd);
            /* dropout's arguments follow DQ_DET's (dq, dqcnt) when the kernel has those */
            AttnDropArgs da;
            void *dargs[] = {&dk, &dv, &dqacc, &q, &k, &v, &dout, &lse, &Dsum, &T, &H, &scale, &scale_log2,
                             &dq, &dqcnt, &da.ctr, &da.seed, &da.layer, &da.thresh, &da.scale};
            if (d) {
                da = attn_drop_args_(who, d);
                if (!attn_det_(gpu)) memmove(dargs + 13, dargs + 15, 5 * sizeof *dargs);
            }
            gpu_launch(gpu, kn.dkdv, (unsigned)(B * KV), (unsigned)((T + bn - 1) / bn), 1,
                       32 * ATTN_BWD_WARPS, 1, 1, attn_bwd_smem_(hd), d ? dargs : args);
        }
    }
    if (dq_mode != 4) {   /* dq = bf16(dqacc) */
        long n8 = rows * (hd / 8);
        void *args[] = {&dq, &dqacc, &n8};
        void *wargs[] = {&dq, &dqacc, &T, &H, &n8};
        gpu_launch(gpu, conv, (unsigned)((n8 + 255) / 256), 1, 1, 256, 1, 1, 0,
                   dq_mode >= 2 ? wargs : args);
    }
}

GPUDEF void gpu_attention_pattern_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                           const void *out, const float *lse, const void *q, const void *k,
                                           const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p) {
    attn_backward_(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p, NULL, NULL);
}

GPUDEF void gpu_attention_dropout_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                           const void *out, const float *lse, const void *q, const void *k,
                                           const void *v, int B, int T, int H, int KV, int hd, const OpsPattern *p,
                                           const OpsDropout *d) {
    attn_backward_(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, p, NULL, d && d->thresh ? d : NULL);
}

GPUDEF void gpu_attention_select_backward(Gpu *gpu, void *dq, void *dk, void *dv, const void *dout,
                                          const void *out, const float *lse, const void *q, const void *k,
                                          const void *v, const unsigned *mask, int B, int T, int H, int KV, int hd) {
    attn_backward_(gpu, dq, dk, dv, dout, out, lse, q, k, v, B, T, H, KV, hd, NULL, mask, NULL);
}

GPUDEF void gpu_attention_select_probs(Gpu *gpu, float *p, const void *q, const void *k, const float *lse,
                                       const unsigned *mask, int B, int T, int H, int KV, int hd, int topk) {
    attn_check_args_("gpu_attention_select_probs", B, T, H, KV, hd, NULL);
    const void *ptrs[] = {q, k, mask};
    gpu_require_aligned16("gpu_attention_select_probs", ptrs, 3);
    if (!gpu_attention_select_supported(gpu, hd) || H > ATTN_SELECT_PROBS_MAX_H || topk < 1) {
        fprintf(stderr, "gpu_attention_select_probs: needs a compute capability 9.0 GPU, hd 64, H <= %d and "
                        "topk >= 1 (this one: %d.%d, hd %d, H %d, topk %d)\n",
                ATTN_SELECT_PROBS_MAX_H, gpu->cc_major, gpu->cc_minor, hd, H, topk);
        abort();
    }
    char opt[256];
    attn_select_options_(opt, sizeof opt, H / KV, attn_wbwd_dq_mode_(gpu, hd), attn_det_(gpu));
    CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_sel_probs_wg", opt);
    float scale_log2 = (float)(1.4426950408889634 / sqrt((double)hd)), invH = 1.0f / H;
    void *args[] = {&p, &lse, &q, &k, &mask, &T, &H, &topk, &scale_log2, &invH};
    gpu_memset0(gpu, p, (size_t)B * T * topk * 4); /* the slots past each row's selection */
    /* alignment pad, H Q tiles, 2 K tiles, 2 tiles of mask words, lse */
    unsigned smem = (unsigned)(1024 + H * 8192 + 2 * 16384 + 2 * 64 * 16 + H * 64 * 4);
    gpu_launch(gpu, f, (unsigned)B, (unsigned)((T + 63) / 64), 1, 128, 1, 1, smem, args);
}

GPUDEF int gpu_attention_select_kl_supported(const Gpu *gpu, int HI, int dI) {
    return gpu_attention_select_supported(gpu, dI) && HI >= 1 && HI <= ATTN_SELECT_KL_MAX_HI;
}

GPUDEF void gpu_attention_select_kl(Gpu *gpu, float *loss, void *dqI, void *dkI, void *dw, float *lseI, float *invP,
                                    const float *p, const void *qI, const void *kI, const void *w, const unsigned *mask,
                                    const int *prefix, int B, int T, int HI, int topk, float dloss) {
    const void *ptrs[] = {qI, kI, mask, dqI, dkI};
    gpu_require_aligned16("gpu_attention_select_kl", ptrs, dqI ? 5 : 3);
    if (!gpu_attention_select_kl_supported(gpu, HI, 64) || B < 1 || T < 1 || topk < 1 ||
        (dqI && (!dkI || !dw || !lseI || !invP || !prefix))) {
        fprintf(stderr, "gpu_attention_select_kl: needs a compute capability 9.0 GPU, 1 <= HI <= %d, B, T, topk >= 1 "
                        "and, for the backward, dkI, dw, lseI, invP and prefix (this one: %d.%d, HI %d, B %d, T %d, "
                        "topk %d)\n", ATTN_SELECT_KL_MAX_HI, gpu->cc_major, gpu->cc_minor, HI, B, T, topk);
        abort();
    }
    char opt[320];
    attn_select_options_(opt, sizeof opt, 1, attn_wbwd_dq_mode_(gpu, 64), attn_det_(gpu));
    size_t len = strlen(opt);
    snprintf(opt + len, sizeof opt - len, " -DKL_HI=%d", HI);
    /* alignment pad, HI qI tiles, 2 kI tiles, 2 tiles of mask words */
    unsigned smem_q = (unsigned)(1024 + HI * 8192 + 2 * 16384 + 2 * 64 * 16);
    unsigned gy = (unsigned)((T + 63) / 64);
    {
        CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_sel_kl_stats_wg", opt);
        void *args[] = {&loss, &lseI, &invP, &p, &qI, &kI, &w, &mask, &T, &topk};
        gpu_launch(gpu, f, (unsigned)B, gy, 1, 128, 1, 1, smem_q, args);
    }
    if (!dqI) return;
    {
        CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_sel_kl_dq_wg", opt);
        void *args[] = {&dqI, &dw, &lseI, &invP, &p, &qI, &kI, &w, &mask, &T, &topk, &dloss};
        gpu_launch(gpu, f, (unsigned)B, gy, 1, 128, 1, 1, smem_q, args);
    }
    {   /* alignment pad, the key block, 2 x HI qI tiles, 2 x (mask words, w, lseI, 1/P, prefix) */
        unsigned smem = (unsigned)(1024 + 16384 + 2 * HI * 8192 + 2 * 64 * 16 + 2 * 64 * HI * 4 + 3 * 2 * 64 * 4);
        CUfunction f = gpu_kernel(gpu, ATTN_WGMMA_SRC, "attn_sel_kl_dk_wg", opt);
        void *args[] = {&dkI, &lseI, &invP, &p, &prefix, &qI, &kI, &w, &mask, &T, &topk, &dloss};
        gpu_launch(gpu, f, (unsigned)B, (unsigned)((T + 127) / 128), 1, 256, 1, 1, smem, args);
    }
}

/* every specialization tests/gpu_attn_check.c uses: {hd, group, window} */
static const int attn_check_specs_[][3] = {
    {64, 1, 0}, {64, 3, 0}, {64, 3, 16}, {64, 4, 0}, {64, 1, 16}, {64, 4, 100}, {64, 1, 300},
    {32, 1, 0}, {32, 3, 16}, {128, 1, 0}, {128, 3, 16},
    {40, 1, 0}, {72, 3, 0}, {72, 4, 64}, {96, 3, 0}, {96, 1, 32}, {136, 2, 0}, {192, 2, 16}, {256, 4, 0},
    {256, 1, 40},
};
/* ... and its sparse patterns: {hd, group, T, window, global, stride, dilation, block}
   (T matters where window * dilation >= T); ATTN_CHECK_PATTERNS is also its case list */
#define ATTN_CHECK_PATTERNS \
    {64, 2, 700, 128, 64, 0, 0, 0},      /* local + global */                          \
    {64, 1, 1000, 100, 200, 0, 0, 0},    /* global prefix past the window, mid-tile */ \
    {64, 4, 1300, 256, 0, 512, 0, 0},    /* strided, whole 128-key summaries */        \
    {64, 1, 600, 64, 0, 200, 0, 48},     /* strided, 48-key summaries across tiles */  \
    {64, 2, 1500, 128, 0, 0, 4, 0},      /* dilated, span 512 */                       \
    {64, 1, 900, 100, 0, 0, 3, 40},      /* dilated, 40-key blocks */                  \
    {64, 3, 1100, 128, 16, 384, 2, 0},   /* all at once */                             \
    {64, 1, 800, 300, 0, 0, 4, 0},       /* dilated, span capped at T */               \
    {32, 3, 700, 64, 32, 256, 0, 0},     /* hd 32 */                                   \
    {128, 1, 500, 64, 0, 0, 3, 0},       /* hd 128 */                                  \
    {128, 3, 600, 100, 8, 0, 2, 64},                                                   \
    {72, 2, 700, 128, 64, 0, 0, 0},      /* hd 72 (padded), local + global */          \
    {256, 1, 600, 64, 0, 200, 2, 48},    /* hd 256 (split), strided + dilated */
static const int attn_check_patterns_[][8] = {ATTN_CHECK_PATTERNS};

/* one specialization of both sources, order-dependent and fixed-order dQ (DQ_DET); returns
   the number of failures. all_dq: the Hopper backward with every dQ variant, else the default
   and 4 (the one with pattern-specific code) */
static int attn_compile_spec_(const char *arch, int hd, int group, const AttnPatK *pk, int all_dq) {
    int fails = 0;
    char opt[320], *log = NULL;
    for (int det = 0; det < 2; det++) {
        log = NULL;
        attn_options_(opt, sizeof opt, hd, group, pk, det);
        if (gpu_compile_ptx(ATTN_KERNELS_SRC, opt, arch, NULL, &log) != 0) {
            fprintf(stderr, "attn_kernels_compile_check: %s \"%s\" failed:\n%s\n", arch, opt, log ? log : "");
            fails++;
        }
        free(log);
    }
    /* the Hopper kernels at another width: the fixed-order dQ (WB_DQ_BULK 2, DQ_DET) and, with
       all_dq, the order-dependent 3 (the other variants are hd 64's) */
    if (hd != 64 && hd <= 128 && strncmp(arch, "sm_90", 5) == 0)
        for (int m = 0; m < 1 + all_dq; m++) {
            log = NULL;
            attn_wgmma_options_(opt, sizeof opt, hd, group, pk, m ? 3 : 2, !m);
            if (gpu_compile_ptx(ATTN_WGMMA_SRC, opt, arch, NULL, &log) != 0) {
                fprintf(stderr, "attn_kernels_compile_check: sm_90a \"%s\" failed:\n%s\n", opt, log ? log : "");
                fails++;
            }
            free(log);
        }
    /* the Hopper kernels at hd 64: for an sm_90 request, compiled for sm_90a */
    if (hd == 64 && strncmp(arch, "sm_90", 5) == 0) {
        /* every dQ variant (WB_DQ_BULK 0..4), then (m == 5) the fixed-order one */
        for (int m = 0; m < 6; m++) {
            if (!all_dq && m != ATTN_WBWD_DQ_BULK && m != 4 && m != 5) continue;
            log = NULL;
            attn_wgmma_options_(opt, sizeof opt, hd, group, pk, m == 5 ? 2 : m, m == 5);
            if (gpu_compile_ptx(ATTN_WGMMA_SRC, opt, arch, NULL, &log) != 0) {
                fprintf(stderr, "attn_kernels_compile_check: sm_90a \"%s\" failed:\n%s\n", opt, log ? log : "");
                fails++;
            }
            free(log);
        }
    }
    return fails;
}

GPUDEF int attn_kernels_compile_check(const char *arch) {
    int fails = 0;
    if (strncmp(arch, "sm_90", 5) == 0) /* the selection-mask kernels (DSA): groups 1, 3, 16, */
        for (int gi = 0; gi < 6; gi++) { /* order-dependent and fixed-order dQ */
            static const int groups[3] = {1, 3, 16};
            char opt[320], *log = NULL;
            attn_select_options_(opt, sizeof opt, groups[gi % 3], gi < 3 ? ATTN_WBWD_DQ_BULK : 2, gi >= 3);
            if (gi % 3 == 0) strcat(opt, " -DKL_HI=4"); /* with the indexer KL kernels */
            if (gpu_compile_ptx(ATTN_WGMMA_SRC, opt, arch, NULL, &log) != 0) {
                fprintf(stderr, "attn_kernels_compile_check: sm_90a \"%s\" failed:\n%s\n", opt, log ? log : "");
                fails++;
            }
            free(log);
        }
    for (size_t i = 0; i < sizeof attn_check_specs_ / sizeof attn_check_specs_[0]; i++) {
        AttnPatK pk = {attn_check_specs_[i][2], 0, 0, 0, 0, 0};
        fails += attn_compile_spec_(arch, attn_check_specs_[i][0], attn_check_specs_[i][1], &pk, 1);
    }
    for (size_t i = 0; i < sizeof attn_check_patterns_ / sizeof attn_check_patterns_[0]; i++) {
        const int *c = attn_check_patterns_[i];
        OpsPattern p = {c[3], c[4], c[5], c[6], c[7]};
        AttnPatK pk = attn_pattern_for_(&p, c[2]);
        if (!attn_pat_sparse_(&pk)) {
            fprintf(stderr, "attn_kernels_compile_check: pattern %zu is not sparse at T=%d\n", i, c[2]);
            fails++;
        }
        fails += attn_compile_spec_(arch, c[0], c[1], &pk, i == 6); /* "all at once": every variant */
    }
    /* attn_dropout (the mma.sync kernels only): head dims 32, 64, 128, a padded one (72) and one
       past 128 (192: 4-warp forward, split dK/dV columns), GQA, a window and a pattern ("all at
       once"), with both dQ orders */
    static const int drop_specs[][3] = {{64, 1, 0}, {64, 3, 16}, {32, 1, 0}, {128, 3, 0}, {128, 1, 16}, {64, 3, -1},
                                        {72, 3, 0}, {192, 2, 16}};
    for (size_t i = 0; i < sizeof drop_specs / sizeof drop_specs[0]; i++)
        for (int det = 0; det < 2; det++) {
            const int *c6 = attn_check_patterns_[6];
            OpsPattern p = {c6[3], c6[4], c6[5], c6[6], c6[7]};
            AttnPatK pk = {drop_specs[i][2], 0, 0, 0, 0, 0};
            if (drop_specs[i][2] < 0) pk = attn_pattern_for_(&p, c6[2]);
            char opt[320], *log = NULL;
            attn_options_(opt, sizeof opt, drop_specs[i][0], drop_specs[i][1], &pk, det);
            attn_dropout_option_(opt, sizeof opt, 1);
            if (gpu_compile_ptx(ATTN_KERNELS_SRC, opt, arch, NULL, &log) != 0) {
                fprintf(stderr, "attn_kernels_compile_check: %s \"%s\" failed:\n%s\n", arch, opt, log ? log : "");
                fails++;
            }
            free(log);
        }
    return fails;
}

#endif /* GPU_IMPLEMENTATION && !ABLATE_NO_CUDA */
