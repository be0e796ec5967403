/* attn/gdn.cu.h - Gated DeltaNet (attn/gdn.h) on the GPU: the chunked delta rule
   forward and backward, and the block's small ops (short conv + SiLU, per-head L2 norm, gates,
   gated RMSNorm), as NVRTC source + launchers, the pattern of attn/dense.cu.h.

   USAGE
     #include "gpu.h"
     #include "attn/gdn.cu.h"   // declarations; the definitions come with GPU_IMPLEMENTATION
   attn/gdn.h's op_gdn_* call these when gpu != NULL (same arguments, device pointers;
   activations bf16, g / beta / state / ws / weight gradients fp32).
   DEPENDS ON: gpu.h (included first; it decides the build). Declarations only with
   -DABLATE_CUDA; GPUDEF linkage and extern "C" as in gpu.h.

   API
     gpu_gdn_forward(g, o, state, q, k, v, ld, gd, beta, B, T, H, D, scale)
     gpu_gdn_backward(g, dq, dk, dv, dg, dbeta, dout, q, k, v, ld, gd, beta, B, T, H, D, scale, ws)
       D: a multiple of 8 from 32 to 256 (the chunk is 64). ws: 6*B*H*ceil(T/64)*P*P floats,
       P = max(D, 64) (attn_gdn_block_ws_elems; the one-block-per-sequence backward and the
       wide-head backward use the first sixth; the wide tiles (gdn_wtile) use the Gpu's gdn
       scratch instead: 15 64 x 64 tiles a (b, h, chunk) up to D 128, more than ws holds at
       D < 128, and 3 nb + 2 nb^2 + 1 past it, nb = ceil(D / 64): 45 at D 256; gdn_par_slots_).
     gpu_gdn_conv_silu_forward/backward, gpu_gdn_l2norm_forward/backward,
     gpu_gdn_gates_forward/backward, gpu_gdn_gated_rmsnorm_forward/backward (conv size <= 8,
       head dim <= 256 for the norm's backward)
     gdn_kernels_compile_check(arch)  NVRTC-compiles every variant (GDN_MMA, GDN_PAR, GDN_DET
       each 0/1) for arch, then the modules gpu_gdn_kernels lists at D 64, 128 and 256 (and checks that
       they split the kernels as below); no GPU needed. Returns the number of failures.
     The source compiles as nine modules (GDN_PART; gdn_part_ says which holds a kernel), and
       gpu_gdn_kernels lists the three a head dim needs for gpu_kernel_prewarm, which compiles
       them in parallel: at D <= 64 parts 0 (the delta rule's forward on tiles), 3 (its backward)
       and 2 (the small ops); at D > 64 parts 1 and 4 (the wide-head forward gdn_gen_fwd and
       backward gdn_gen_bwd) and 2, or with tuning.gdn_wtile up to 128 parts 5 and 6 (the wide
       tiles) and 2, past 128 with gdn_wtile=2 parts 7 and 8 (their streaming form) and 2. NVRTC for sm_90 on a 2-core EPYC (build/nvrtc_times gdn
       [128], docs/benchmarks.md 2026-12-04): parts 0, 3, 2 take 0.66, 1.02 and 0.30 s, where
       one module of the three took 1.91 s; parts 1 and 4 0.30 and 1.52 s, where one took 2.15.

   DESIGN (flash-linear-attention's chunk_gated_delta_rule, organized for one kernel per pass)
     Forward gdn_fwd: one block of 256 threads per (b, h) walks the chunks of 64 tokens in
       order with the state Hs [64][64] fp32 in shared memory. Per chunk: K, scale*Q, V (bf16
       -> fp32 tiles, rows past T zero: with g = beta = 0 there they are exact no-ops), the
       cumulative log decay by a warp scan, A~ = K K^T o G and P = Q K^T o G, T = (I + diag(beta)
       A~)^-1 by forward substitution (4 lanes per column, the column's rows chained by
       __syncwarp only), W = T diag(beta e^gam) K, U = T diag(beta) V - W Hs,
       O = diag(e^gam) Q Hs + P U (to global), Hs <- e^gam_63 Hs + K^T diag(dec) U.
     Backward gdn_bwd: a state pass (gdn_fwd with o = NULL) stores every chunk's initial state
       in ws; then one block per (b, h) walks the chunks in reverse with dH in shared memory,
       recomputes the chunk's A~, P, T, W, U and applies the terms listed at attn/gdn.h's
       gdn_chunk_bwd_ (12 tiles: 206 KB of shared memory, so it needs an H100-class 227 KB
       opt-in; sm_80's 163 KB is too small for the backward). dgam and dbeta sum in per-warp
       slots (see DETERMINISM).
     The 64x64x64 products: every register tile is held in the m16n8k16 accumulator layout
       (warp w: rows 16(w/2).., cols 32(w%2)..; 16 entries a thread), so tensor-core results
       are used where they land; row and column sums (for dgam, dbeta) reduce by shuffles in
       the warp and per-warp slots across warps.
       GDN_MMA 1 (default): mma.sync m16n8k16 bf16 tensor cores with fp32 accumulation; the
       fp32 tile operands are rounded to bf16 as the fragments are read (plain shared loads,
       no ldmatrix). GDN_MMA 0: fp32 FMAs in the same layout (exact; tuning.gdn_mma=0 selects
       it, for A/B and accuracy checks).
     Global loads of the next chunk's tiles are issued into registers before the current
       chunk's math, so their latency hides behind it (one block per SM leaves no other warps).
     Tile row stride 68 floats: a transposed operand's fragments load without bank conflicts,
       a row-major one with 2-way conflicts at most.
     Parallelism is B*H blocks (one per SM): at B*H < #SMs part of the GPU idles, and at
       B*H a little above it (the 135M model: 16 x 9 = 144 blocks on 132 SMs) the second
       wave leaves most SMs idle.
   Head dims other than 64. D < 64: the same kernels with the head zero-padded to the 64-wide
     tile inside them: fetch_tile zero-fills columns >= D (never loaded), store_rows_bf16 skips
     them, the state in / out is the [D][D] corner of the tile. Zero k columns leave K K^T, Q K^T
     and the state's extra rows zero, zero v columns zero U, the state's extra columns and the
     outputs there, so the 64-wide arithmetic is the D-wide one; the cost is a 64-wide head's.
     64 < D <= 128 (tuning.gdn_wtile, default 1; chunk-parallel only): the tile kernels gdn_prep_w,
     gdn_state_w, gdn_out_w / gdn_dstate_w, gdn_bwd_local_w (the source's comment at them): the
     head as two 64-wide k-blocks and v-blocks (the second zero-padded past D), each v-block a
     delta rule of its own sharing the chunk's A~, T and W; the passes over the chunks run a
     block per (b, h, v-block), the backward's per-chunk terms both v-blocks in one block (12
     tiles, as gdn_bwd_local). Tensor cores as the 64-wide path (gdn_mma). ptxas (sm_90):
     gdn_bwd_local_w 255 registers with 28 bytes spilled, the others 62-128, no spills. They
     pass the CPU emulation (tests/emu_linear.c at D 72 and 128, both product kinds, the
     repeat bit for bit; the repeat caught a missing barrier before P's first read) and
     tests/gpu_linear_check's wide-tile cases on the H200 (D 72, 80, 96, 128, both product
     kinds, the d 576 block). Forward+backward at T 2048, B 32, H = 1024 / D on the H200
     (docs/benchmarks.md, 2026-12-05): D 72 21.9 ms against the wide-head kernels' 200, D 128
     12.6 against 399 (the 64-wide tiles at D 64: 9.6).
     128 < D <= 256 (tuning.gdn_wtile=2, an option until tests/gpu_linear_check has run them on a
     GPU; chunk-parallel only): gdn_prep_x, gdn_state_x, gdn_out_x / gdn_dstate_x,
     gdn_bwd_local_x (the source's comment at them): the same algebra with nb = 3 or 4 blocks,
     the k-blocks streamed through one or two staging tiles (holding them all would take up to
     20 tiles), the passes over the chunks keeping their v-block's nb state tiles resident, and
     the backward's per-chunk terms in three phases (per v-block: dU, dV and the chunk-sized
     sums; per k-block: dQ whole, dK but its dKK terms, parked in ws; then dKK) so that no
     register tile is kept per k-block. Shared memory 123,136 / 105,472 / 88,064 / 140,288 /
     195,344 bytes; ptxas (sm_90a, local toolkit): gdn_bwd_local_x 178 registers, gdn_state_x
     215, gdn_dstate_x 168, gdn_out_x 128, gdn_prep_x 80, no spills. They pass the CPU emulation
     (tests/emu_linear.c at D 136, 192, 256 and at 72, both product kinds, the repeat bit for
     bit; a dropped barrier, a wrong dH tile and a missing e^gam factor each fail it). Not yet
     run on a GPU, so not yet timed: tests/gpu_linear_check's gdn_wtile=2 cases and its "by head
     dim" table are what turns them on by default.
     D > 64 otherwise (past 128 by default, gdn_wtile=0, gdn_par=0 or a GPU without the opt-in
     shared memory): gdn_gen_fwd / gdn_gen_bwd, one block per (b, h), a line-by-line port of
     attn/gdn.h's chunked reference with the chunk's matrices in fp32 global scratch (the Gpu's
     gdn scratch, gdn_gen_sc_floats_ a block) and plain fp32 loops for the products: correct at
     any D, far slower than the tile path (no tensor cores; tests/gpu_linear_check's "by head
     dim" table measures it).
   Chunk-parallel (tuning.gdn_par=1; flash-linear-attention's decomposition): only the
     state and its gradient travel from chunk to chunk, so
       gdn_prep   (a block per chunk)  A~, T, W = T diag(beta e^gam) K, U~ = T diag(beta) V
                                       [backward: also T and dU_loc = P^T dO]
       gdn_state  (a block per (b,h))  in order: H_c saved, U = U~ - W H_c, H <- e^gam_63 H + K^T diag(dec) U
       gdn_out    (a block per chunk)  O = diag(e^gam) Q H_c + P U                 [forward]
       gdn_dstate (a block per (b,h))  in reverse: dH_c saved, dU = dU_loc + diag(dec) K dH,
                                       dH <- e^gam_63 dH + Q^T diag(e^gam) dO - W^T dU
       gdn_bwd_local (a block per chunk) the sequential backward's per-chunk terms (bwd_terms,
                                       shared with gdn_bwd) from H_c, dH_c, U, T   [backward]
     The passes over the chunks do 2 and 3 products a chunk with everything they read
     prefetched; the rest runs with B*H*ceil(T/64) blocks, prep and out two to an SM. The
     per-chunk tiles go through fp32 workspace: the backward's ws (six tiles a chunk,
     attn_gdn_block_ws_elems), the forward's Gpu scratch (gdn_scratch: H_c, W, U, three tiles a chunk,
     grown on demand, so a graph capture needs one eager call of the shape first, as
     train.h does). The default since its H100 run (2026-11-23: tests/gpu_linear_check 191
     passed; T = 8192 fwd+bwd 10.2 ms vs 11.2; 135M model 114K vs 92K tok/s);
     tuning.gdn_par=0 selects the one-block-per-sequence kernels.
     Small ops: the short conv walks a slab of 128 rows per thread and channel with its last
       8 inputs (and dpre) in registers, so each input is read and each silu' computed once,
       and its backward (din and dw) is one pass (the earlier per-element kernels recomputed
       silu' per tap and divided 64-bit indices per element: 1.25 ms a call on the 135M
       model); one warp per (row, head) for the norms; gates elementwise; the weight
       gradients of the conv, gates and norm reduce per thread or block, then across blocks
       (see DETERMINISM).

   DETERMINISM: with gpu->nondeterministic == 0 (the default) every output is bit-identical
     run after run on the same GPU and launch shapes; no float atomic is left.
       dg, dbeta (GDN_DET 1): the backward's per-row sums dgam / dbet, to which the warps that
         own a row or column of a tile contribute, go to per-warp slots in shared memory (one
         writer thread each, plain adds in program order; [2][64] for rows, [4][64] for
         columns, plus the (e) term's row-63 parts) that 32 threads add up in one fixed order
         at the chunk's end (gam_row / bet_row). Expected to cost nothing measurable: as many
         shared read-add-writes as there were shared atomics, ~8 more shared loads per row once
         a chunk, 2 KB more shared memory (one block per SM either way; ptxas: gdn_bwd_local
         103 registers against the atomics' 128, no spills). The GPU check times both.
       conv dw, dA_log / ddt_bias, o_norm's dw: each block writes its sums (already in a fixed
         order inside the block) to a partial array in the Gpu's gdn scratch, and
         gdn_sum_parts adds the parts up in a fixed order (warp w: parts w, w + 32, ...; then
         the 32 warp sums in warp order) and adds the result to the gradient. One extra small
         launch per op (the conv's partials at the 135M shape: 256 slabs x 6,912 floats, 7 MB).
     gpu->nondeterministic == 1 keeps the earlier order-dependent forms for A/B timing
     (GDN_DET 0: shared-memory float atomics for dgam / dbet; the small ops' blocks
     atomicAdd into the gradient). The forward passes never had atomics.
     Checked: tests/emu_linear.c runs the deterministic backward twice and compares the
     bits; tests/gpu_linear_check.c does the same on the GPU (kernels and the whole block)
     and times both forms.

   STATUS: both organizations ran on the H100 (tests/gpu_linear_check 191 passed,
     tests/gpu_check's GDN training steps, compute-sanitizer 0 errors, 2026-11-23). Both were
     written without a GPU at hand and checked in the emulator first. `make emucheck` runs these kernels on a CPU
     emulation of the CUDA model (tests/emu_linear.c: pthreads as threads, real barriers,
     PTX's mma fragment layouts) against attn/gdn.h's reference: all pass (out, state,
     dq/dk/dv at the bf16 rounding level, 2e-3; dg/dbeta 1e-6 with fp32 products, 3e-3 with
     tensor cores). Timing is unmeasured: tests/gpu_linear_check.c measures it on the device
     next to dense flash attention. Cost per 64-token chunk and head: forward 8 products
     of 64x64x64 + the substitution, backward 23 + a state pass of 5 (+ 2 substitutions).
     Head dims other than 64 (the padding and the wide-head kernels) pass the emulator (D 32, 48
     padded; 72, 128 wide; the gated RMSNorm at 72 and 256) and NVRTC for sm_80 / sm_90, and
     tests/gpu_linear_check's cases of them on the H200 (2026-12-04: 550 passed, 0 failed;
     docs/benchmarks.md).

   SOURCE CONVENTIONS: those of kernels.cu.h (one C string literal per CUDA line,
   KSRC_LINE so NVRTC errors cite this file's line numbers, raw-bit bf16, no headers but gpu.h's
   in-memory ablate_common.cuh).
*/
#ifndef KERNELS_LINEAR_CU_H
#define KERNELS_LINEAR_CU_H

#include "../gpu.h" /* first: it settles ABLATE_NO_CUDA (the GPU is opt-in) */
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

GPUDEF void gpu_gdn_forward(Gpu *gpu, void *o, float *state, const void *q, const void *k, const void *v, int ld,
                            const float *gd, const float *beta, int B, int T, int H, int D, float scale);
GPUDEF void gpu_gdn_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *dg, float *dbeta, const void *dout,
                             const void *q, const void *k, const void *v, int ld, const float *gd, const float *beta,
                             int B, int T, int H, int D, float scale, float *ws);
GPUDEF void gpu_gdn_conv_silu_forward(Gpu *gpu, void *pre, void *out, const void *in, int in_ld, const void *w, int N,
                                      int T, int Ch, int K);
GPUDEF void gpu_gdn_conv_silu_backward(Gpu *gpu, void *din, int in_ld, float *dw, const void *dout, const void *pre,
                                       const void *in, const void *w, int N, int T, int Ch, int K);
GPUDEF void gpu_gdn_l2norm_forward(Gpu *gpu, void *x, int ld, float *rn, int N, int nh, int D, float eps);
GPUDEF void gpu_gdn_l2norm_backward(Gpu *gpu, void *dy, int ld, const void *y, int y_ld, const float *rn, int N, int nh,
                                    int D);
GPUDEF void gpu_gdn_gates_forward(Gpu *gpu, float *gd, float *beta, const void *a, const void *b, int ld,
                                  const void *A_log, const void *dt_bias, int N, int H);
GPUDEF void gpu_gdn_gates_backward(Gpu *gpu, void *da, void *db, int ld, float *dA_log, float *ddt_bias,
                                   const float *dg, const float *dbeta, const void *a, const void *b, const void *A_log,
                                   const void *dt_bias, int N, int H);
GPUDEF void gpu_gdn_gated_rmsnorm_forward(Gpu *gpu, void *y, float *rstd, const void *o, const void *gate, int gate_ld,
                                          const void *w, int N, int H, int D, float eps);
GPUDEF void gpu_gdn_gated_rmsnorm_backward(Gpu *gpu, void *do_, void *dgate, int gate_ld, float *dw, const void *dy,
                                           const void *o, const void *gate, const void *w, const float *rstd, int N,
                                           int H, int D);
/* the modules (gpu_kernel_prewarm's specs) every call above asks for on gpu at head dim D, into
   out (at most max); returns their count, 3: the small ops' module and two of the delta rule's
   (forward and backward: the 64-wide tiles up to D 64, else the wide-head kernels, or with
   tuning.gdn_wtile the wide tiles up to D 128). Built with the calls' own option builder */
GPUDEF int gpu_gdn_kernels(const Gpu *gpu, int D, GpuKernelSpec *out, int max);
GPUDEF int gdn_kernels_compile_check(const char *arch);
#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* KERNELS_LINEAR_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(KERNELS_LINEAR_IMPLEMENTATION_DONE)
#define KERNELS_LINEAR_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#ifndef KSRC_LINE
#define KSRC_STR_(x) #x
#define KSRC_STR(x) KSRC_STR_(x)
#define KSRC_LINE(file) "#line " KSRC_STR(__LINE__) " \"" file "\"\n"
#endif

/* must match the source's CH, LDT, CONV_ROWS and its *_SMEM_FLOATS: forward 140,544 bytes,
   backward 212,752 (+128 static): an H100's 227 KB opt-in holds both, an A100's (163 KB) only
   the forward */
#define GDN_GPU_D 64
/* the head dims the launchers take (attn/gdn.h's ATTN_GDN_GPU_DMIN / _DMAX say the same):
   multiples of 8, up to 64 padded inside the tile kernels, above it the wide-head kernels */
#define GDN_GPU_DMIN 32
#define GDN_GPU_DMAX 256
/* gdn_gen_fwd / gdn_gen_bwd's fp32 scratch a (b, h) block (the source's GEN_SC_FLOATS) */
static size_t gdn_gen_sc_floats_(int D) {
    return 15 * (size_t)GDN_GPU_D * D + 6 * (size_t)GDN_GPU_D * GDN_GPU_D + 3 * (size_t)D * D + 8 * GDN_GPU_D;
}
#define GDN_CONV_ROWS 128
#define GDN_FWD_SMEM_BYTES ((8 * 64 * 68 + 5 * 64) * 4)
#define GDN_BWD_SMEM_BYTES ((12 * 64 * 68 + 15 * 64 + 4) * 4)
/* the chunk-parallel backward's other kernels: 105,728 / 70,656 / 105,472 bytes (two prep
   blocks fit an SM) */
#define GDN_PREP_SMEM_BYTES ((6 * 64 * 68 + 5 * 64) * 4)
#define GDN_STATE_SMEM_BYTES ((4 * 64 * 68 + 4 * 64) * 4)
#define GDN_DSTATE_SMEM_BYTES ((6 * 64 * 68 + 4 * 64) * 4)
#define GDN_OUT_SMEM_BYTES ((5 * 64 * 68 + 4 * 64) * 4)
/* the tile kernels of heads 65..128 wide (gdn_*_w; gdn_bwd_local_w takes GDN_BWD_SMEM_BYTES):
   175,360 / 122,880 / 140,288 / 175,104 bytes, one block an SM */
#define GDN_PREPW_SMEM_BYTES ((10 * 64 * 68 + 5 * 64) * 4)
#define GDN_STATEW_SMEM_BYTES ((7 * 64 * 68 + 4 * 64) * 4)
#define GDN_OUTW_SMEM_BYTES ((8 * 64 * 68 + 4 * 64) * 4)
#define GDN_DSTATEW_SMEM_BYTES ((10 * 64 * 68 + 4 * 64) * 4)
/* heads 129..256 wide (gdn_*_x, the source's *X_SMEM_FLOATS): 123,136 / 105,472 / 88,064 /
   140,288 / 195,344 bytes */
#define GDN_PREPX_SMEM_BYTES ((7 * 64 * 68 + 5 * 64) * 4)
#define GDN_STATEX_SMEM_BYTES ((6 * 64 * 68 + 4 * 64) * 4)
#define GDN_OUTX_SMEM_BYTES ((5 * 64 * 68 + 4 * 64) * 4)
#define GDN_DSTATEX_SMEM_BYTES ((8 * 64 * 68 + 4 * 64) * 4)
#define GDN_LOCALX_SMEM_BYTES ((11 * 64 * 68 + 15 * 64 + 4) * 4)
/* the chunk-parallel kernels of a 64-wide head, of one 65..128 wide and of one 129..256 wide
   (the tiles; gdn_wtile 1 and 2): names and shared memory */
typedef struct {
    const char *prep, *state, *out, *dstate, *local;
    unsigned prep_smem, state_smem, out_smem, dstate_smem, local_smem;
} GdnParK;
static const GdnParK gdn_par_k_[3] = {
    {"gdn_prep", "gdn_state", "gdn_out", "gdn_dstate", "gdn_bwd_local", GDN_PREP_SMEM_BYTES, GDN_STATE_SMEM_BYTES,
     GDN_OUT_SMEM_BYTES, GDN_DSTATE_SMEM_BYTES, GDN_BWD_SMEM_BYTES},
    {"gdn_prep_w", "gdn_state_w", "gdn_out_w", "gdn_dstate_w", "gdn_bwd_local_w", GDN_PREPW_SMEM_BYTES,
     GDN_STATEW_SMEM_BYTES, GDN_OUTW_SMEM_BYTES, GDN_DSTATEW_SMEM_BYTES, GDN_BWD_SMEM_BYTES},
    {"gdn_prep_x", "gdn_state_x", "gdn_out_x", "gdn_dstate_x", "gdn_bwd_local_x", GDN_PREPX_SMEM_BYTES,
     GDN_STATEX_SMEM_BYTES, GDN_OUTX_SMEM_BYTES, GDN_DSTATEX_SMEM_BYTES, GDN_LOCALX_SMEM_BYTES},
};
/* of gdn_par_k_[kind] at head dim D: v-blocks (the passes over the chunks and gdn_out run a
   block each) and the 64 x 64 ws tiles a (b, h, chunk), the forward's or the backward's (the
   wide kinds' in the Gpu's gdn scratch; the 64-wide backward's are the caller's ws) */
static unsigned gdn_par_nv_(int kind, int D) { return kind ? (unsigned)((D + GDN_GPU_D - 1) / GDN_GPU_D) : 1; }
static size_t gdn_par_slots_(int kind, int D, int bwd) {
    const size_t nb = gdn_par_nv_(kind, D);
    if (kind == 1) return bwd ? 15 : 11; /* the source's WS2_* layout */
    if (kind == 2) return bwd ? 3 * nb + 2 * nb * nb + 1 : 2 * nb + nb * nb; /* XS_* */
    return 3;
}

/* ---------------------------------------------------------------- kernels */
static const char GDN_KERNELS_SRC[] =
KSRC_LINE("attn/gdn.cu.h") "// Gated DeltaNet: the chunked delta rule (forward, backward) and the block's small ops.\n"
"#include \"ablate_common.cuh\"\n"
"#ifndef GDN_MMA\n"
"#define GDN_MMA 1\n"
"#endif\n"
"#ifndef GDN_PAR          // the delta-rule kernels compiled: 0 one block per (b, h), 1 chunk-parallel,\n"
"#define GDN_PAR 0        // 2 both (the CPU emulator); one set keeps the NVRTC compile short\n"
"#endif\n"
"#ifndef GDN_PART         // the kernels compiled: 0 the delta rule's forward on 64-wide tiles, 3 its\n"
"#define GDN_PART (-1)    // backward, 1 and 4 the wide-head path's forward and backward (D > 64),\n"
"#endif                   // 5 and 6 the wide tiles' for D <= 128, 7 and 8 theirs past 128, 2 the\n"
"                         // small ops; undefined: all\n"
"#define GDN_IN(p) (GDN_PART < 0 || GDN_PART == (p))\n"
"#ifndef GDN_DET          // 1: the backward's row and column sums (dg, dbeta) in a fixed order, so\n"
"#define GDN_DET 1        // bit-reproducible; 0: shared-memory float atomics (Gpu.nondeterministic)\n"
"#endif\n"
"#define CH 64            // chunk length = head dim: every tile is [64][64]\n"
"#define LDT 68           // fp32 tile row stride (4 mod 32): the mma fragments of a transposed\n"
"                         // operand hit 32 different banks, a row-major one 2-way at most\n"
"#define TILE (CH * LDT)\n"
"#define NT 256           // threads per block: 8 warps\n"
"\n"
"// ---- ownership of a 64 x 64 register tile float acc[4][4] ----\n"
"// The m16n8k16 accumulator layout, so tensor-core results stay where they land: warp w owns\n"
"// rows 16 (w / 2) .. +15 and columns 32 (w % 2) .. +31; its lane 4 g + q holds, in each\n"
"// 8-column group n, the entries (g, 2q), (g, 2q + 1), (g + 8, 2q), (g + 8, 2q + 1):\n"
"//   acc[n][e] is row own_row(e), column own_col(n, e).\n"
"// A row's 64 columns live in 4 lanes (a quad) of each of two warps; a column's 64 rows in the\n"
"// 8 g-lanes of 4 warps: row and column sums reduce within the warp, then add up across warps\n"
"// (ROW_ADD / COL_ADD below: per-warp slots summed in a fixed order, or shared atomics).\n"
"__device__ __forceinline__ int own_row(int e) { return 16 * (threadIdx.x >> 6) + ((threadIdx.x & 31) >> 2) + 8 * (e >> 1); }\n"
"__device__ __forceinline__ int own_col(int n, int e) {\n"
"    return 32 * ((threadIdx.x >> 5) & 1) + 8 * n + 2 * (threadIdx.x & 3) + (e & 1);\n"
"}\n"
"#define QUAD0 ((threadIdx.x & 3) == 0)   // the lane that adds a row's warp-sum\n"
"#define GROW0 ((threadIdx.x & 28) == 0)  // a lane with g == 0: adds a column's warp-sum\n"
"\n"
"// ---- the backward's per-row vectors dgam, dbet: sums over the warps that own a row ----\n"
"// GDN_DET 1: every warp adds into its own slot, and gam_row / bet_row add the slots up in one\n"
"// order, so the result does not depend on which warp comes first. A row's entries live in\n"
"// warps w and w ^ 1 (column halves), a column's in the 4 warps of one w % 2: row slots are\n"
"// [2][64] by w % 2, column slots [4][64] by w / 2, and each slot has exactly one writer\n"
"// thread (the QUAD0 / GROW0 lane that owns it), so plain += in program order is race-free.\n"
"// dgam also keeps the (e) term's sum over all rows that lands on row 63: [2][64] slots of\n"
"// its per-row values (ROW63_ADD) and one for the state term (X63_ADD), summed by gam_row.\n"
"//   dgam: rows [0, 2CH)  columns [2CH, 6CH)  row-63 terms [6CH, 8CH)  state term 8CH\n"
"//   dbet: rows [0, 2CH)\n"
"// GDN_DET 0: one float per row, shared-memory atomics (the order warps arrive in decides the\n"
"// last bits).\n"
"#if GDN_DET\n"
"#define DGAM_FLOATS (8 * CH + 4)\n"
"#define DBET_FLOATS (2 * CH)\n"
"// (parameter names end in _ so that threadIdx.x in the bodies stays itself)\n"
"#define ROW_ADD(v_, r_, x_) ((v_)[CH * ((threadIdx.x >> 5) & 1) + (r_)] += (x_))\n"
"#define COL_ADD(v_, c_, x_) ((v_)[2 * CH + CH * (threadIdx.x >> 6) + (c_)] += (x_))\n"
"#define ROW63_ADD(v_, r_, x_) ((v_)[6 * CH + CH * ((threadIdx.x >> 5) & 1) + (r_)] += (x_))\n"
"#define X63_ADD(v_, x_) ((v_)[8 * CH] += (x_))\n"
"#else\n"
"#define DGAM_FLOATS CH\n"
"#define DBET_FLOATS CH\n"
"#define ROW_ADD(v_, r_, x_) atomicAdd(&(v_)[r_], (x_))\n"
"#define COL_ADD(v_, c_, x_) atomicAdd(&(v_)[c_], (x_))\n"
"#define ROW63_ADD(v_, r_, x_) atomicAdd(&(v_)[CH - 1], (x_))\n"
"#define X63_ADD(v_, x_) atomicAdd(&(v_)[CH - 1], (x_))\n"
"#endif\n"
"\n"
"// ---- 64 x 64 x 64 products on fp32 shared-memory tiles ----\n"
"// Operands are strided views, so transposes are free:\n"
"//   A(r, k) = a[r * ars + k * aks],  B(k, c) = b[k * bks + c * bcs],  optional ks[k] scales B's row k.\n"
"// acc[n][e] += sum_k A(own_row(e), k) ks[k] B(k, own_col(n, e)).\n"
"// GDN_MMA 1: bf16 tensor cores (mma.sync m16n8k16, fp32 accumulate), the fp32 operands\n"
"// rounded to bf16 as the fragments are read (plain shared loads, no ldmatrix).\n"
"// GDN_MMA 0: fp32 FMAs (exact fp32; the reference the mma path is compared with).\n"
"__device__ __forceinline__ void mm_simt(float acc[4][4], const float *a, int ars, int aks, const float *b,\n"
"                                        int bks, int bcs, const float *ks, int K) {\n"
"    const int r0 = own_row(0), c0 = own_col(0, 0);\n"
"    for (int k = 0; k < K; k++) {\n"
"        const float s = ks ? ks[k] : 1.f;\n"
"        const float a0 = a[r0 * ars + k * aks], a1 = a[(r0 + 8) * ars + k * aks];\n"
"#pragma unroll\n"
"        for (int n = 0; n < 4; n++) {\n"
"            const float b0 = s * b[k * bks + (c0 + 8 * n) * bcs], b1 = s * b[k * bks + (c0 + 8 * n + 1) * bcs];\n"
"            acc[n][0] = fmaf(a0, b0, acc[n][0]);\n"
"            acc[n][1] = fmaf(a0, b1, acc[n][1]);\n"
"            acc[n][2] = fmaf(a1, b0, acc[n][2]);\n"
"            acc[n][3] = fmaf(a1, b1, acc[n][3]);\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"#if GDN_MMA\n"
"// elements k and k+1 of an operand (stride apart): one 8-byte load when they are adjacent\n"
"// (k even, every tile 8-byte aligned), which halves the shared loads of that operand\n"
"__device__ __forceinline__ float2 ld_pair(const float *p, int stride) {\n"
"    if (stride == 1) return *(const float2 *)p;\n"
"    return make_float2(p[0], p[stride]);\n"
"}\n"
"__device__ __forceinline__ void mm_tc(float acc[4][4], const float *a, int ars, int aks, const float *b,\n"
"                                      int bks, int bcs, const float *ks, int K) {\n"
"    const int lane = threadIdx.x & 31;\n"
"    const int r0 = 16 * (threadIdx.x >> 6), c0 = 32 * ((threadIdx.x >> 5) & 1);\n"
"    const int gr = lane >> 2, gc = 2 * (lane & 3);\n"
"    for (int k0 = 0; k0 < K; k0 += 16) {\n"
"        u32 af[4];\n"
"        // A fragment: (gr, gc..gc+1), (gr+8, ..), (gr, gc+8..), (gr+8, gc+8..)\n"
"#pragma unroll\n"
"        for (int q = 0; q < 4; q++) {\n"
"            int r = r0 + gr + 8 * (q & 1), k = k0 + gc + 8 * (q >> 1);\n"
"            const float2 x = ld_pair(a + r * ars + k * aks, aks);\n"
"            af[q] = pack2(x.x, x.y);\n"
"        }\n"
"        float s0 = 1.f, s1 = 1.f, s2 = 1.f, s3 = 1.f;\n"
"        if (ks) { s0 = ks[k0 + gc]; s1 = ks[k0 + gc + 1]; s2 = ks[k0 + gc + 8]; s3 = ks[k0 + gc + 9]; }\n"
"#pragma unroll\n"
"        for (int n = 0; n < 4; n++) {\n"
"            // B fragment: (k = gc..gc+1, col gr), (k = gc+8.., col gr)\n"
"            int c = c0 + 8 * n + gr, k = k0 + gc;\n"
"            const float2 x0 = ld_pair(b + k * bks + c * bcs, bks), x1 = ld_pair(b + (k + 8) * bks + c * bcs, bks);\n"
"            u32 b0 = pack2(s0 * x0.x, s1 * x0.y);\n"
"            u32 b1 = pack2(s2 * x1.x, s3 * x1.y);\n"
"            asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\\n\"\n"
"                         : \"+f\"(acc[n][0]), \"+f\"(acc[n][1]), \"+f\"(acc[n][2]), \"+f\"(acc[n][3])\n"
"                         : \"r\"(af[0]), \"r\"(af[1]), \"r\"(af[2]), \"r\"(af[3]), \"r\"(b0), \"r\"(b1));\n"
"        }\n"
"    }\n"
"}\n"
"#define MM_(acc, a, ars, aks, b, bks, bcs, ks) mm_tc(acc, a, ars, aks, b, bks, bcs, ks, CH)\n"
"#else\n"
"#define MM_(acc, a, ars, aks, b, bks, bcs, ks) mm_simt(acc, a, ars, aks, b, bks, bcs, ks, CH)\n"
"#endif\n"
"// (one level of indirection so the operand-view macros below expand into three arguments each)\n"
"#define MM(acc, ...) MM_(acc, __VA_ARGS__)\n"
"\n"
"// operand views of a tile X [64][LDT]: row-major (X) or transposed (X^T), as A or B\n"
"#define AR(X) X, LDT, 1\n"
"#define AT(X) X, 1, LDT\n"
"#define BR(X) X, LDT, 1\n"
"#define BT(X) X, 1, LDT\n"
"\n"
"__device__ __forceinline__ void zero4(float a[4][4]) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) a[i][j] = 0.f;\n"
"}\n"
"__device__ __forceinline__ void store4(float *X, const float a[4][4]) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) X[own_row(j) * LDT + own_col(i, j)] = a[i][j];\n"
"}\n"
"// the thread's part of row own_row(2 hh) of acc * X, summed over its quad: out[hh] is this\n"
"// warp's half of the row sum (QUAD0 lanes add it up across the two warps)\n"
"__device__ __forceinline__ void rowdot2(const float a[4][4], const float *X, float out[2]) {\n"
"    out[0] = out[1] = 0.f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) out[j >> 1] += a[i][j] * X[own_row(j) * LDT + own_col(i, j)];\n"
"#pragma unroll\n"
"    for (int hh = 0; hh < 2; hh++) {\n"
"        out[hh] += __shfl_xor_sync(0xffffffffu, out[hh], 1);\n"
"        out[hh] += __shfl_xor_sync(0xffffffffu, out[hh], 2);\n"
"    }\n"
"}\n"
"// rows < L and columns < D of s * acc to global bf16 (rows ld apart; pairs of columns as one\n"
"// 4-byte store; D even, so a pair is all in or all out): a head narrower than the 64-wide tile\n"
"// keeps its padding columns (zeros, see fetch_tile) out of memory\n"
"__device__ __forceinline__ void store_rows_bf16(bf16 *dst, u64 ld, int L, const float a[4][4], float s, int D) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int hh = 0; hh < 2; hh++) {\n"
"            int r = own_row(2 * hh);\n"
"            if (r < L && own_col(i, 2 * hh) < D)\n"
"                *(u32 *)(dst + (u64)r * ld + own_col(i, 2 * hh)) = pack2(s * a[i][2 * hh], s * a[i][2 * hh + 1]);\n"
"        }\n"
"}\n"
"\n"
"// acc = (Q H) o exp(gamma) by row: the carried state's share of a chunk's output (the\n"
"// chunk's own share, P U, is added after it)\n"
"__device__ __forceinline__ void chunk_out_state(float acc[4][4], const float *Qs, const float *Hs, const float *eg) {\n"
"    zero4(acc);\n"
"    MM(acc, AR(Qs), BR(Hs), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] *= eg[own_row(j)];\n"
"}\n"
"\n"
"// v[r] += rs * (row sums), v[c] += cs * (column sums) of a tile whose thread parts are\n"
"// row[hh] (row own_row(2 hh), summed over the thread's columns) and col[i][b] (column\n"
"// own_col(i, b), summed over its two rows): reduced within the warp, added across warps\n"
"// by ROW_ADD / COL_ADD (cs == 0 skips the columns)\n"
"__device__ __forceinline__ void add_row_col_sums(float *v, float row[2], const float col[4][2], float rs, float cs) {\n"
"#pragma unroll\n"
"    for (int hh = 0; hh < 2; hh++) {\n"
"        row[hh] += __shfl_xor_sync(0xffffffffu, row[hh], 1);\n"
"        row[hh] += __shfl_xor_sync(0xffffffffu, row[hh], 2);\n"
"    }\n"
"    if (QUAD0)\n"
"        for (int hh = 0; hh < 2; hh++) ROW_ADD(v, own_row(2 * hh), rs * row[hh]);\n"
"    if (cs == 0.f) return;\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int b = 0; b < 2; b++) {\n"
"            float x = col[i][b];\n"
"            x += __shfl_xor_sync(0xffffffffu, x, 4);\n"
"            x += __shfl_xor_sync(0xffffffffu, x, 8);\n"
"            x += __shfl_xor_sync(0xffffffffu, x, 16);\n"
"            if (GROW0) COL_ADD(v, own_col(i, b), cs * x);\n"
"        }\n"
"}\n"
"\n"
"// A [64 rows][64] bf16 tile of the NEXT chunk is fetched into registers (8 bf16 pairs per\n"
"// thread) while the current chunk computes, then stored as fp32 at the next chunk's start:\n"
"// with one block per SM nothing else would hide the global-memory latency. Rows >= L are 0,\n"
"// and so are columns >= D (a head dim D < 64 padded to the tile inside the kernel, never read\n"
"// from memory): zero k columns leave K K^T, Q K^T and the state's extra rows zero, zero v\n"
"// columns give zero U, state columns and outputs, so the 64-wide math is the D-wide one.\n"
"// (ld and D even and 4-byte aligned bases: checked by the launchers.)\n"
"__device__ __forceinline__ void fetch_tile(u32 r[8], const bf16 *src, u64 ld, int L, int D) {\n"
"#pragma unroll\n"
"    for (int m = 0; m < 8; m++) {\n"
"        int e = 2 * threadIdx.x + 512 * m, row = e >> 6, col = e & 63;\n"
"        r[m] = row < L && col < D ? *(const u32 *)(src + (u64)row * ld + col) : 0u;\n"
"    }\n"
"}\n"
"__device__ __forceinline__ void put_tile(float *X, const u32 r[8], float s) {\n"
"#pragma unroll\n"
"    for (int m = 0; m < 8; m++) {\n"
"        int e = 2 * threadIdx.x + 512 * m, row = e >> 6, col = e & 63;\n"
"        X[row * LDT + col] = s * __uint_as_float(r[m] << 16);\n"
"        X[row * LDT + col + 1] = s * __uint_as_float(r[m] & 0xffff0000u);\n"
"    }\n"
"}\n"
"// a chunk's fp32 state [64][64] (hsave) in 16 floats per thread, likewise\n"
"__device__ __forceinline__ void fetch_state(float r[16], const float *src) {\n"
"#pragma unroll\n"
"    for (int m = 0; m < 4; m++) {\n"
"        float4 v = *(const float4 *)(src + 4 * threadIdx.x + 1024 * m);\n"
"        r[4 * m] = v.x; r[4 * m + 1] = v.y; r[4 * m + 2] = v.z; r[4 * m + 3] = v.w;\n"
"    }\n"
"}\n"
"__device__ __forceinline__ void put_state(float *X, const float r[16]) {\n"
"#pragma unroll\n"
"    for (int m = 0; m < 16; m++) {\n"
"        int e = 4 * threadIdx.x + 1024 * (m >> 2) + (m & 3);\n"
"        X[(e >> 6) * LDT + (e & 63)] = r[m];\n"
"    }\n"
"}\n"
"\n"
"// a shared fp32 tile [64][LDT] <-> a dense global [D][D] one, its top-left corner (D = CH for\n"
"// the workspace's tiles, the head dim for the caller's state [B, H, D, D]); the padding rows\n"
"// and columns of a loaded tile are zeros (src NULL: all zeros)\n"
"__device__ __forceinline__ void save_tile(float *dst, const float *X, int D) {\n"
"    for (int e = threadIdx.x; e < D * D; e += NT) dst[e] = X[(e / D) * LDT + e % D];\n"
"}\n"
"__device__ __forceinline__ void load_tile(float *X, const float *src, int D) {\n"
"    for (int e = threadIdx.x; e < CH * CH; e += NT) {\n"
"        const int r = e >> 6, c = e & 63;\n"
"        X[r * LDT + c] = src && r < D && c < D ? src[r * D + c] : 0.f;\n"
"    }\n"
"}\n"
"\n"
"// the chunk's gates: gam = cumsum(g) (inclusive), beta; rows >= L get g = 0, beta = 0, which\n"
"// makes them exact no-ops (k = v = q = 0 there too). eg = exp(gam), dec = exp(gam_63 - gam).\n"
"__device__ void load_gates(float *gam, float *bet, float *eg, float *dec, const float *g, const float *beta,\n"
"                           u64 ldg, int L) {\n"
"    if (threadIdx.x < 32) {\n"
"        int l = threadIdx.x;\n"
"        float x0 = l < L ? g[(u64)l * ldg] : 0.f, x1 = l + 32 < L ? g[(u64)(l + 32) * ldg] : 0.f;\n"
"        for (int o = 1; o < 32; o <<= 1) {\n"
"            float y0 = __shfl_up_sync(0xffffffffu, x0, o), y1 = __shfl_up_sync(0xffffffffu, x1, o);\n"
"            if (l >= o) { x0 += y0; x1 += y1; }\n"
"        }\n"
"        x1 += __shfl_sync(0xffffffffu, x0, 31);\n"
"        gam[l] = x0; gam[l + 32] = x1;\n"
"        bet[l] = l < L ? beta[(u64)l * ldg] : 0.f;\n"
"        bet[l + 32] = l + 32 < L ? beta[(u64)(l + 32) * ldg] : 0.f;\n"
"        float last = __shfl_sync(0xffffffffu, x1, 31);\n"
"        eg[l] = __expf(x0); eg[l + 32] = __expf(x1);\n"
"        dec[l] = __expf(last - x0); dec[l + 32] = __expf(last - x1);\n"
"    }\n"
"}\n"
"\n"
"// A~ = strict_lower((K K^T) o G) and P = lower_incl((Q K^T) o G), G_rc = exp(gam_r - gam_c);\n"
"// Ps == NULL (the state pass, no outputs) skips P\n"
"__device__ void chunk_scores(float *As, float *Ps, const float *Ks, const float *Qs, const float *gam) {\n"
"    float a[4][4], p[4][4];\n"
"    zero4(a); zero4(p);\n"
"    MM(a, AR(Ks), BT(Ks), (const float *)0);\n"
"    if (Ps) MM(p, AR(Qs), BT(Ks), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j), c = own_col(i, j);\n"
"            float G = c <= r ? __expf(gam[r] - gam[c]) : 0.f;\n"
"            As[r * LDT + c] = c < r ? a[i][j] * G : 0.f;\n"
"            if (Ps) Ps[r * LDT + c] = p[i][j] * G;\n"
"        }\n"
"}\n"
"\n"
"// T = (I + diag(beta) A~)^-1 by forward substitution, one column per 4 lanes of a warp (64\n"
"// columns over the block's 256 threads). Lane part of column col keeps T(j, col) for\n"
"// j = part + 4 i in registers t[i]; row r's value is a quad sum of As(r, j) t over all 16\n"
"// (A~ is strictly lower, so the terms with j >= r are zeros times zeros), then lands in the\n"
"// register of the lane that owns row r (a select over the 16, so no index is dynamic). The\n"
"// As loads do not wait on the chain, and no shared-memory round trip or __syncwarp sits\n"
"// between rows. Rows go four at a time (a rolled loop keeps the NVRTC compile short).\n"
"__device__ void chunk_inverse(float *Ts, const float *As, const float *bet) {\n"
"    const int col = threadIdx.x >> 2, part = threadIdx.x & 3;\n"
"    float t[16];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 16; i++) t[i] = 0.f;\n"
"#pragma unroll 1\n"
"    for (int m = 0; m < 16; m++) {\n"
"#pragma unroll\n"
"        for (int u = 0; u < 4; u++) {\n"
"            const int r = 4 * m + u;\n"
"            const float *a = As + r * LDT + part;\n"
"            float s0 = 0.f, s1 = 0.f;\n"
"#pragma unroll\n"
"            for (int i = 0; i < 16; i += 2) {\n"
"                s0 += a[4 * i] * t[i];\n"
"                s1 += a[4 * i + 4] * t[i + 1];\n"
"            }\n"
"            float s = s0 + s1;\n"
"            s += __shfl_xor_sync(0xffffffffu, s, 1);\n"
"            s += __shfl_xor_sync(0xffffffffu, s, 2);\n"
"            const float x = r == col ? 1.f : (r > col ? -bet[r] * s : 0.f);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 16; i++)\n"
"                if (i == m && part == u) t[i] = x;\n"
"        }\n"
"    }\n"
"#pragma unroll\n"
"    for (int i = 0; i < 16; i++) Ts[(part + 4 * i) * LDT + col] = t[i];\n"
"}\n"
"\n"
"// W = T diag(beta e^gam) K -> Ws;  U = T diag(beta) V - W H0 -> Us   (two barriers inside)\n"
"__device__ void chunk_wu(float *Ws, float *Us, const float *Ts, const float *Ks, const float *Vs, const float *Hs,\n"
"                         const float *bet, const float *eg, float *tmpv) {\n"
"    float w[4][4], u[4][4];\n"
"    if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"    __syncthreads();\n"
"    zero4(w); zero4(u);\n"
"    MM(w, AR(Ts), BR(Ks), tmpv);\n"
"    store4(Ws, w);\n"
"    MM(u, AR(Ts), BR(Vs), bet);\n"
"    __syncthreads();\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) w[i][j] = 0.f;\n"
"    MM(w, AR(Ws), BR(Hs), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) u[i][j] -= w[i][j];\n"
"    store4(Us, u);\n"
"}\n"
"\n"
"#if GDN_IN(0) || GDN_IN(3) || GDN_IN(5) || GDN_IN(6) || GDN_IN(7) || GDN_IN(8) // the tile kernels (to the wide-head path)\n"
"#if GDN_PAR != 1\n"
"// shared memory of the forward: 8 tiles + vectors\n"
"#define FWD_SMEM_FLOATS (8 * TILE + 5 * CH)\n"
"\n"
"// Forward, one block per (b, h); chunks in order, the state Hs [dk][dv] in shared memory.\n"
"// o may be NULL (the backward's state pass); hsave (may be NULL) gets each chunk's initial\n"
"// state [nc][64][64]; state (may be NULL) is the initial state in and the final state out.\n"
"#if GDN_IN(0)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_fwd(bf16 *o, float *state, float *hsave, const bf16 *q,\n"
"                                                         const bf16 *k, const bf16 *v, int ld, const float *g,\n"
"                                                         const float *beta, int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Hs = sm, *Ks = Hs + TILE, *Qs = Ks + TILE, *Vs = Qs + TILE, *As = Vs + TILE, *Ts = As + TILE,\n"
"          *Ps = Ts + TILE, *Ws = Ps + TILE, *gam = Ws + TILE, *bet = gam + CH, *eg = bet + CH, *dec = eg + CH,\n"
"          *tmpv = dec + CH;\n"
"    const int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    float *st = state ? state + (u64)bh * D * D : 0;\n"
"    load_tile(Hs, st, D);\n"
"    u32 rk[8], rq[8], rv[8];\n"
"    {\n"
"        const u64 r0 = (u64)b * T;\n"
"        const int L0 = min(CH, T);\n"
"        fetch_tile(rk, k + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(rq, q + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(rv, v + r0 * ld + h * D, ld, L0, D);\n"
"    }\n"
"    for (int ci = 0; ci < nc; ci++) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();  // the previous chunk is done with every tile\n"
"        if (hsave) {\n"
"            float *hs = hsave + ((u64)bh * nc + ci) * CH * CH;\n"
"            save_tile(hs, Hs, CH);\n"
"        }\n"
"        put_tile(Ks, rk, 1.f);\n"
"        put_tile(Qs, rq, scale);\n"
"        put_tile(Vs, rv, 1.f);\n"
"        if (ci + 1 < nc) {  // the next chunk's tiles are in flight while this one computes\n"
"            const u64 r1 = row0 + CH;\n"
"            const int L1 = min(CH, T - t0 - CH);\n"
"            fetch_tile(rk, k + r1 * ld + h * D, ld, L1, D);\n"
"            fetch_tile(rq, q + r1 * ld + h * D, ld, L1, D);\n"
"            fetch_tile(rv, v + r1 * ld + h * D, ld, L1, D);\n"
"        }\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        __syncthreads();\n"
"        chunk_scores(As, o ? Ps : (float *)0, Ks, Qs, gam);\n"
"        __syncthreads();\n"
"        chunk_inverse(Ts, As, bet);\n"
"        __syncthreads();\n"
"        chunk_wu(Ws, As, Ts, Ks, Vs, Hs, bet, eg, tmpv);  // U -> As\n"
"        __syncthreads();\n"
"        float acc[4][4], hn[4][4];\n"
"        if (o) {\n"
"            chunk_out_state(acc, Qs, Hs, eg);\n"
"            MM(acc, AR(Ps), BR(As), (const float *)0);\n"
"            store_rows_bf16(o + row0 * H * D + h * D, (u64)H * D, L, acc, 1.f, D);\n"
"        }\n"
"        zero4(hn);\n"
"        MM(hn, AT(Ks), BR(As), dec);  // K^T diag(dec) U\n"
"        const float el = eg[CH - 1];\n"
"        __syncthreads();  // every read of H0 is done\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) {\n"
"                float *hp = Hs + own_row(j) * LDT + own_col(i, j);\n"
"                *hp = el * *hp + hn[i][j];\n"
"            }\n"
"    }\n"
"    __syncthreads();\n"
"    if (st) save_tile(st, Hs, D);\n"
"}\n"
"#endif\n"
"\n"
"#endif\n"
"// shared memory of the backward: 12 tiles + vectors (dgam, dbet at GDN_DET 1's size\n"
"// either way, so the launchers need one figure: 2 KB more than GDN_DET 0 uses)\n"
"#define BWD_SMEM_FLOATS (12 * TILE + 5 * CH + 10 * CH + 4)\n"
"\n"
"// row r of dgam / dbet once every warp has added its part (after a barrier). GDN_DET 1: the\n"
"// slots in one fixed order; gam_row is warp-collective (the first 32 threads call it together:\n"
"// the row-63 terms go through a shuffle tree, whose order is fixed too).\n"
"#if GDN_DET\n"
"__device__ __forceinline__ float gam_row(const float *v, int r) {\n"
"    const int l = threadIdx.x & 31;\n"
"    float e = (v[6 * CH + l] + v[7 * CH + l]) + (v[6 * CH + l + 32] + v[7 * CH + l + 32]);\n"
"    e = warp_sum(e) + v[8 * CH];\n"
"    const float x = (v[r] + v[CH + r]) + ((v[2 * CH + r] + v[3 * CH + r]) + (v[4 * CH + r] + v[5 * CH + r]));\n"
"    return r == CH - 1 ? x + e : x;\n"
"}\n"
"__device__ __forceinline__ float bet_row(const float *v, int r) { return v[r] + v[CH + r]; }\n"
"#else\n"
"__device__ __forceinline__ float gam_row(const float *v, int r) { return v[r]; }\n"
"__device__ __forceinline__ float bet_row(const float *v, int r) { return v[r]; }\n"
"#endif\n"
"\n"
"// dP (acc: dO U^T, the thread's entries) -> dgam's rows and columns from dP o P, and dD = dP o G\n"
"// over P in Ps (lower, inclusive); every read of P by other threads must be done\n"
"__device__ __forceinline__ void bwd_dd(float *Ps, const float acc[4][4], const float *gam, float *dgam) {\n"
"    float rowp[2] = {0.f, 0.f}, colp[4][2] = {{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j), c = own_col(i, j);\n"
"            float dp = c <= r ? acc[i][j] : 0.f, pp = dp * Ps[r * LDT + c];\n"
"            rowp[j >> 1] += pp;\n"
"            colp[i][j & 1] += pp;\n"
"            Ps[r * LDT + c] = c <= r ? dp * __expf(gam[r] - gam[c]) : 0.f;\n"
"        }\n"
"    add_row_col_sums(dgam, rowp, colp, 1.f, -1.f);\n"
"}\n"
"// (a): acc = T^T (dT T^T) (the thread's entries): dM = strict_lower(-acc); dgam, dbet from\n"
"// dM o A~ (As); dKK = beta_r dM G into Ps\n"
"__device__ __forceinline__ void bwd_dkk(float *Ps, const float acc[4][4], const float *As, const float *bet,\n"
"                                        const float *gam, float *dgam, float *dbet) {\n"
"    float rowb[2] = {0.f, 0.f}, rowg[2] = {0.f, 0.f};\n"
"    float colg[4][2] = {{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j), c = own_col(i, j);\n"
"            float dm = c < r ? -acc[i][j] : 0.f, a = As[r * LDT + c], ar = bet[r] * dm * a;\n"
"            rowb[j >> 1] += dm * a;\n"
"            rowg[j >> 1] += ar;\n"
"            colg[i][j & 1] += ar;\n"
"            Ps[r * LDT + c] = c < r ? bet[r] * dm * __expf(gam[r] - gam[c]) : 0.f;\n"
"        }\n"
"    add_row_col_sums(dgam, rowg, colg, 1.f, -1.f);\n"
"    const float nocol[4][2] = {{0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}, {0.f, 0.f}};\n"
"    add_row_col_sums(dbet, rowb, nocol, 1.f, 0.f);\n"
"}\n"
"// dY = T^T dU: the chunk's dV = diag(beta) dY (rows < L, columns < D, to dst) and dbeta_r += V_r . dY_r\n"
"__device__ __forceinline__ void bwd_dv(bf16 *dst, int ld, int L, int D, const float *Ts, const float *dUs,\n"
"                                       const float *Vs, const float *bet, float *dbet) {\n"
"    float acc[4][4], rd[2];\n"
"    zero4(acc);\n"
"    MM(acc, AT(Ts), BR(dUs), (const float *)0);\n"
"    rowdot2(acc, Vs, rd);\n"
"    if (QUAD0)\n"
"        for (int hh = 0; hh < 2; hh++) ROW_ADD(dbet, own_row(2 * hh), rd[hh]);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] *= bet[own_row(j)];\n"
"    store_rows_bf16(dst, ld, L, acc, 1.f, D);\n"
"}\n"
"// the chunk's dg (the reverse cumsum of dgam) and dbeta, rows < L, once every warp has added\n"
"// its part (after a barrier): the first warp\n"
"__device__ __forceinline__ void store_dg_dbeta(float *dg, float *dbeta, const float *dgam, const float *dbet,\n"
"                                               u64 row0, int H, int h, int L) {\n"
"    if (threadIdx.x < 32) {\n"
"        int l = threadIdx.x;\n"
"        float x0 = gam_row(dgam, 63 - l), x1 = gam_row(dgam, 31 - l);  // x0: rows 63..32, x1: rows 31..0\n"
"        for (int o2 = 1; o2 < 32; o2 <<= 1) {\n"
"            float y0 = __shfl_up_sync(0xffffffffu, x0, o2), y1 = __shfl_up_sync(0xffffffffu, x1, o2);\n"
"            if (l >= o2) { x0 += y0; x1 += y1; }\n"
"        }\n"
"        x1 += __shfl_sync(0xffffffffu, x0, 31);\n"
"        if (63 - l < L) { dg[(row0 + 63 - l) * H + h] = x0; dbeta[(row0 + 63 - l) * H + h] = bet_row(dbet, 63 - l); }\n"
"        if (31 - l < L) { dg[(row0 + 31 - l) * H + h] = x1; dbeta[(row0 + 31 - l) * H + h] = bet_row(dbet, 31 - l); }\n"
"    }\n"
"}\n"
"\n"
"// the backward's shared-memory tiles and vectors, carved from sm\n"
"typedef struct {\n"
"    float *Hs, *dHs, *Ks, *Qs, *Vs, *dOs, *Ts, *As, *Ps, *Ws, *Us, *dUs, *gam, *bet, *eg, *dec, *tmpv, *dgam, *dbet;\n"
"} BwdSm;\n"
"__device__ __forceinline__ BwdSm bwd_carve(float *sm) {\n"
"    BwdSm s;\n"
"    s.Hs = sm; s.dHs = s.Hs + TILE; s.Ks = s.dHs + TILE; s.Qs = s.Ks + TILE; s.Vs = s.Qs + TILE;\n"
"    s.dOs = s.Vs + TILE; s.Ts = s.dOs + TILE; s.As = s.Ts + TILE; s.Ps = s.As + TILE; s.Ws = s.Ps + TILE;\n"
"    s.Us = s.Ws + TILE; s.dUs = s.Us + TILE; s.gam = s.dUs + TILE; s.bet = s.gam + CH; s.eg = s.bet + CH;\n"
"    s.dec = s.eg + CH; s.tmpv = s.dec + CH; s.dgam = s.tmpv + CH; s.dbet = s.dgam + DGAM_FLOATS;\n"
"    return s;\n"
"}\n"
"\n"
"// with the chunk's tiles in place: its gates, dgam = dbet = 0 (every slot), then A~ and P\n"
"// (barriers around)\n"
"__device__ __forceinline__ void bwd_scores(const BwdSm s, const float *g, const float *beta, int H, int L) {\n"
"    load_gates(s.gam, s.bet, s.eg, s.dec, g, beta, H, L);\n"
"    for (int e = threadIdx.x; e < DGAM_FLOATS + DBET_FLOATS; e += NT) s.dgam[e] = 0.f;  // dbet follows dgam\n"
"    __syncthreads();\n"
"    chunk_scores(s.As, s.Ps, s.Ks, s.Qs, s.gam);\n"
"    __syncthreads();\n"
"}\n"
"\n"
"// One chunk's backward terms (attn/gdn.h's gdn_chunk_bwd_, phase by phase), after its tiles\n"
"// Hs (H0), dHs (the gradient of the chunk's end state), Ks, Qs (scaled), Vs, dOs, As (A~), Ps,\n"
"// Ts, Us and the gates are in place (dgam, dbet zeroed). Writes the chunk's dq, dk, dv, dg,\n"
"// dbeta. seq (the one-block-per-sequence kernel): also W (in Ws) -> dH0, the gradient of the\n"
"// chunk's initial state, into dHs; the chunk-parallel kernels get dH from gdn_dstate instead,\n"
"// and Ws is only scratch to them.\n"
"__device__ __forceinline__ void bwd_terms(const BwdSm s, const int seq, bf16 *dq, bf16 *dk, bf16 *dv, float *dg,\n"
"                                          float *dbeta, int ld, int H, int D, int h, u64 row0, int L,\n"
"                                          float scale) {\n"
"    float *Hs = s.Hs, *dHs = s.dHs, *Ks = s.Ks, *Qs = s.Qs, *Vs = s.Vs, *dOs = s.dOs, *Ts = s.Ts, *As = s.As,\n"
"          *Ps = s.Ps, *Ws = s.Ws, *Us = s.Us, *dUs = s.dUs, *gam = s.gam, *bet = s.bet, *eg = s.eg, *dec = s.dec,\n"
"          *dgam = s.dgam, *dbet = s.dbet;\n"
"    const float el = eg[CH - 1];\n"
"    float acc[4][4], dK[4][4], dQ[4][4], dH0[4][4], rd[2];\n"
"    // (e) dU = diag(dec) K dH; s_j = dU_j . U_j; dK = diag(dec) U dH^T; dH0 = el dH\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ks), BR(dHs), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] *= dec[own_row(j)];\n"
"    rowdot2(acc, Us, rd);\n"
"    if (QUAD0)\n"
"        for (int hh = 0; hh < 2; hh++) { ROW_ADD(dgam, own_row(2 * hh), -rd[hh]); ROW63_ADD(dgam, own_row(2 * hh), rd[hh]); }\n"
"    store4(dUs, acc);\n"
"    zero4(dK);\n"
"    MM(dK, AR(Us), BT(dHs), (const float *)0);\n"
"    float hdh = 0.f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j), c = own_col(i, j);\n"
"            dK[i][j] *= dec[r];\n"
"            hdh += Hs[r * LDT + c] * dHs[r * LDT + c];\n"
"            if (seq) dH0[i][j] = el * dHs[r * LDT + c];\n"
"        }\n"
"    hdh = block_sum(hdh);\n"
"    if (threadIdx.x == 0) X63_ADD(dgam, el * hdh);\n"
"    // (d) dQ = diag(eg) dO H0^T; dgam_r += eg_r (Q H0)_r . dO_r; dH0 += Q^T diag(eg) dO; dU += P^T dO\n"
"    zero4(dQ);\n"
"    MM(dQ, AR(dOs), BT(Hs), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) dQ[i][j] *= eg[own_row(j)];\n"
"    // e_r (Q H0)_r . dO_r = Q_r . e_r (dO H0^T)_r: the dQ term just made, no product of its own\n"
"    rowdot2(dQ, Qs, rd);\n"
"    if (QUAD0)\n"
"        for (int hh = 0; hh < 2; hh++) ROW_ADD(dgam, own_row(2 * hh), rd[hh]);\n"
"    if (seq) MM(dH0, AT(Qs), BR(dOs), eg);\n"
"    zero4(acc);\n"
"    MM(acc, AT(Ps), BR(dOs), (const float *)0);\n"
"    __syncthreads();  // dUs (e) complete before the read-modify-write below... (own entries)\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) dUs[own_row(j) * LDT + own_col(i, j)] += acc[i][j];\n"
"    // dP = lower_incl(dO U^T); dgam from dP o P; dD = dP o G replaces P\n"
"    zero4(acc);\n"
"    MM(acc, AR(dOs), BT(Us), (const float *)0);\n"
"    __syncthreads();  // every read of P is done\n"
"    bwd_dd(Ps, acc, gam, dgam);\n"
"    __syncthreads();  // dD and dU complete\n"
"    MM(dQ, AR(Ps), BR(Ks), (const float *)0);\n"
"    MM(dK, AT(Ps), BR(Qs), (const float *)0);\n"
"    store_rows_bf16(dq + row0 * ld + h * D, ld, L, dQ, scale, D);\n"
"    // (c) dH0 -= W^T dU (seq); dW = -dU H0^T replaces W; dH0 replaces dH (seq)\n"
"    if (seq) {\n"
"        zero4(acc);\n"
"        MM(acc, AT(Ws), BR(dUs), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) dH0[i][j] -= acc[i][j];\n"
"    }\n"
"    zero4(acc);\n"
"    MM(acc, AR(dUs), BT(Hs), (const float *)0);\n"
"    __syncthreads();  // every read of W and dH is done\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] = -acc[i][j];\n"
"    store4(Ws, acc);\n"
"    if (seq) store4(dHs, dH0);\n"
"    __syncthreads();\n"
"    // (b) dX = T^T dW: dK += diag(beta eg) dX, dbeta_r += eg_r K_r.dX_r, dgam_r += beta_r eg_r K_r.dX_r\n"
"    zero4(acc);\n"
"    MM(acc, AT(Ts), BR(Ws), (const float *)0);\n"
"    rowdot2(acc, Ks, rd);\n"
"    if (QUAD0)\n"
"        for (int hh = 0; hh < 2; hh++) {\n"
"            int r = own_row(2 * hh);\n"
"            ROW_ADD(dbet, r, eg[r] * rd[hh]);\n"
"            ROW_ADD(dgam, r, bet[r] * eg[r] * rd[hh]);\n"
"        }\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j);\n"
"            dK[i][j] += bet[r] * eg[r] * acc[i][j];\n"
"        }\n"
"    //     dY = T^T dU: dV = diag(beta) dY, dbeta_r += V_r . dY_r\n"
"    bwd_dv(dv + row0 * ld + h * D, ld, L, D, Ts, dUs, Vs, bet, dbet);\n"
"    //     dT = (dW K^T diag(eg) + dU V^T) diag(beta) -> Us\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ws), BT(Ks), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] *= eg[own_col(i, j)];\n"
"    MM(acc, AR(dUs), BT(Vs), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) acc[i][j] *= bet[own_col(i, j)];\n"
"    store4(Us, acc);\n"
"    __syncthreads();\n"
"    // (a) dM = strict_lower(-T^T (dT T^T)); dKK = beta_r dM G replaces dD\n"
"    zero4(acc);\n"
"    MM(acc, AR(Us), BT(Ts), (const float *)0);\n"
"    __syncthreads();  // every read of dW is done\n"
"    store4(Ws, acc);\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AT(Ts), BR(Ws), (const float *)0);\n"
"    bwd_dkk(Ps, acc, As, bet, gam, dgam, dbet);\n"
"    __syncthreads();\n"
"    MM(dK, AR(Ps), BR(Ks), (const float *)0);\n"
"    MM(dK, AT(Ps), BR(Ks), (const float *)0);\n"
"    store_rows_bf16(dk + row0 * ld + h * D, ld, L, dK, 1.f, D);\n"
"    __syncthreads();  // dgam, dbet complete\n"
"    store_dg_dbeta(dg, dbeta, dgam, dbet, row0, H, h, L);\n"
"}\n"
"\n"
"#if GDN_PAR != 1\n"
"// Backward, one block per (b, h); chunks in reverse; hsave holds each chunk's initial state\n"
"// (gdn_fwd's state pass). dH (gradient of the chunk's end state) lives in shared memory.\n"
"#if GDN_IN(3)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_bwd(bf16 *dq, bf16 *dk, bf16 *dv, float *dg, float *dbeta,\n"
"                                                         const bf16 *dout, const float *hsave, const bf16 *q,\n"
"                                                         const bf16 *k, const bf16 *v, int ld, const float *g,\n"
"                                                         const float *beta, int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    const BwdSm s = bwd_carve(sm);\n"
"    const int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    load_tile(s.dHs, (const float *)0, CH);\n"
"    const u64 ldo = (u64)H * D;\n"
"    u32 rk[8], rq[8], rv[8], ro[8];\n"
"    float rh[16];\n"
"    {\n"
"        const int t0 = (nc - 1) * CH, L0 = T - t0;\n"
"        const u64 r0 = (u64)b * T + t0;\n"
"        fetch_tile(rk, k + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(rq, q + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(rv, v + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(ro, dout + r0 * ldo + h * D, ldo, L0, D);\n"
"        fetch_state(rh, hsave + ((u64)bh * nc + nc - 1) * CH * CH);\n"
"    }\n"
"    for (int ci = nc - 1; ci >= 0; ci--) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();\n"
"        put_state(s.Hs, rh);\n"
"        put_tile(s.Ks, rk, 1.f);\n"
"        put_tile(s.Qs, rq, scale);\n"
"        put_tile(s.Vs, rv, 1.f);\n"
"        put_tile(s.dOs, ro, 1.f);\n"
"        if (ci > 0) {  // the previous chunk's inputs are in flight while this one computes\n"
"            const u64 r1 = row0 - CH;\n"
"            fetch_tile(rk, k + r1 * ld + h * D, ld, CH, D);\n"
"            fetch_tile(rq, q + r1 * ld + h * D, ld, CH, D);\n"
"            fetch_tile(rv, v + r1 * ld + h * D, ld, CH, D);\n"
"            fetch_tile(ro, dout + r1 * ldo + h * D, ldo, CH, D);\n"
"            fetch_state(rh, hsave + ((u64)bh * nc + ci - 1) * CH * CH);\n"
"        }\n"
"        bwd_scores(s, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        chunk_inverse(s.Ts, s.As, s.bet);\n"
"        __syncthreads();\n"
"        chunk_wu(s.Ws, s.Us, s.Ts, s.Ks, s.Vs, s.Hs, s.bet, s.eg, s.tmpv);\n"
"        __syncthreads();\n"
"        bwd_terms(s, 1, dq, dk, dv, dg, dbeta, ld, H, D, h, row0, L, scale);\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"#endif\n"
"// ---- the chunk-parallel backward (flash-linear-attention's decomposition) ----\n"
"// Only the state and its gradient are passed from chunk to chunk; everything else is local\n"
"// to a chunk. Four kernels, their per-chunk results in the workspace ws as fp32 [64][64]\n"
"// tiles, slot X of chunk ci of sequence-head bh at ws + (X * BH * nc + bh * nc + ci) * 4096:\n"
"//   gdn_prep    (grid nc x BH)  W = T diag(beta e^gam) K, U~ = T diag(beta) V, T, dU_loc = P^T dO\n"
"//   gdn_state   (grid BH)       in order: H_c (chunk initial state), U = U~ - W H_c replaces U~\n"
"//   gdn_dstate  (grid BH)       in reverse: dH_c (gradient of the chunk's end state) from\n"
"//                               dU = dU_loc + diag(dec) K dH, dH <- el dH + Q^T diag(eg) dO - W^T dU\n"
"//   gdn_bwd_local (grid nc x BH) bwd_terms with H_c, dH_c, U, T loaded (A~ and P recomputed)\n"
"// The two passes that walk the chunks do 2 and 3 products a chunk; the rest (24 products and\n"
"// the substitution a chunk) runs with nc * BH blocks in flight instead of BH.\n"
"#if GDN_PAR != 0\n"
"#define WS_H 0\n"
"#define WS_W 1\n"
"#define WS_U 2\n"
"#define WS_DU 3\n"
"#define WS_DH 4\n"
"#define WS_T 5\n"
"#define PREP_SMEM_FLOATS (6 * TILE + 5 * CH)\n"
"#define STATE_SMEM_FLOATS (4 * TILE + 4 * CH)\n"
"#define DSTATE_SMEM_FLOATS (6 * TILE + 4 * CH)\n"
"\n"
"// P = lower_incl((Q K^T) o G) -> Ps (chunk_scores makes it together with A~ when both are needed)\n"
"__device__ __forceinline__ void chunk_p(float *Ps, const float *Qs, const float *Ks, const float *gam) {\n"
"    float acc[4][4];\n"
"    zero4(acc);\n"
"    MM(acc, AR(Qs), BT(Ks), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            int r = own_row(j), c = own_col(i, j);\n"
"            Ps[r * LDT + c] = c <= r ? acc[i][j] * __expf(gam[r] - gam[c]) : 0.f;\n"
"        }\n"
"}\n"
"__device__ __forceinline__ float *ws_tile(float *ws, int slot, int BH, int nc, int bh, int ci) {\n"
"    return ws + (((u64)slot * BH + bh) * nc + ci) * (CH * CH);\n"
"}\n"
"// a dense fp32 [64][64] tile in global memory <-> a register tile (float2 per row pair)\n"
"__device__ __forceinline__ void load_acc(float a[4][4], const float *src) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int hh = 0; hh < 2; hh++) {\n"
"            float2 x = *(const float2 *)(src + own_row(2 * hh) * CH + own_col(i, 2 * hh));\n"
"            a[i][2 * hh] = x.x;\n"
"            a[i][2 * hh + 1] = x.y;\n"
"        }\n"
"}\n"
"__device__ __forceinline__ void save_acc(float *dst, const float a[4][4]) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int hh = 0; hh < 2; hh++)\n"
"            *(float2 *)(dst + own_row(2 * hh) * CH + own_col(i, 2 * hh)) = make_float2(a[i][2 * hh], a[i][2 * hh + 1]);\n"
"}\n"
"\n"
"// Per chunk: W, U~ (and with dout, the backward's T and dU_loc = P^T dO) into ws.\n"
"#if GDN_IN(0)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_prep(float *ws, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"                                                          int ld, const bf16 *dout, const float *g,\n"
"                                                          const float *beta, int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Ks = sm, *Vs = Ks + TILE, *Qs = Vs + TILE, *dOs = Qs + TILE, *As = dOs + TILE, *Ts = As + TILE,\n"
"          *gam = Ts + TILE, *bet = gam + CH, *eg = bet + CH, *dec = eg + CH, *tmpv = dec + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    {\n"
"        u32 rk[8], rv[8], rq[8], ro[8];\n"
"        fetch_tile(rk, k + row0 * ld + h * D, ld, L, D);\n"
"        fetch_tile(rv, v + row0 * ld + h * D, ld, L, D);\n"
"        if (dout) {\n"
"            fetch_tile(rq, q + row0 * ld + h * D, ld, L, D);\n"
"            fetch_tile(ro, dout + row0 * ldo + h * D, ldo, L, D);\n"
"        }\n"
"        put_tile(Ks, rk, 1.f);\n"
"        put_tile(Vs, rv, 1.f);\n"
"        if (dout) {\n"
"            put_tile(Qs, rq, scale);\n"
"            put_tile(dOs, ro, 1.f);\n"
"        }\n"
"    }\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    __syncthreads();\n"
"    chunk_scores(As, (float *)0, Ks, Qs, gam);\n"
"    __syncthreads();\n"
"    chunk_inverse(Ts, As, bet);\n"
"    if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"    __syncthreads();\n"
"    float acc[4][4];\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(Ks), tmpv);\n"
"    save_acc(ws_tile(ws, WS_W, BH, nc, bh, ci), acc);\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(Vs), bet);\n"
"    save_acc(ws_tile(ws, WS_U, BH, nc, bh, ci), acc);\n"
"    if (!dout) return;\n"
"    save_tile(ws_tile(ws, WS_T, BH, nc, bh, ci), Ts, CH);\n"
"    // P = lower_incl((Q K^T) o G) replaces A~ (every read of A~ ended before the barrier above)\n"
"    chunk_p(As, Qs, Ks, gam);\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AT(As), BR(dOs), (const float *)0);\n"
"    save_acc(ws_tile(ws, WS_DU, BH, nc, bh, ci), acc);\n"
"}\n"
"#endif\n"
"\n"
"// In chunk order per (b, h): H_c -> ws slot WS_H, U = U~ - W H_c over U~ (slot WS_U);\n"
"// state (may be NULL): the initial state in, the final state out, as gdn_fwd's.\n"
"#if GDN_IN(0)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_state(float *ws, float *state, const bf16 *k, int ld,\n"
"                                                           const float *g, const float *beta, int T, int H, int D) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Hs = sm, *Ws = Hs + TILE, *Ks = Ws + TILE, *Us = Ks + TILE, *gam = Us + TILE, *bet = gam + CH,\n"
"          *eg = bet + CH, *dec = eg + CH;\n"
"    const int bh = blockIdx.x, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    float *st = state ? state + (u64)bh * D * D : 0;\n"
"    load_tile(Hs, st, D);\n"
"    u32 rk[8];\n"
"    float rw[16], ru[4][4];\n"
"    fetch_tile(rk, k + (u64)b * T * ld + h * D, ld, min(CH, T), D);\n"
"    fetch_state(rw, ws_tile(ws, WS_W, BH, nc, bh, 0));\n"
"    load_acc(ru, ws_tile(ws, WS_U, BH, nc, bh, 0));\n"
"    for (int ci = 0; ci < nc; ci++) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();  // the previous chunk is done with every tile\n"
"        save_tile(ws_tile(ws, WS_H, BH, nc, bh, ci), Hs, CH);\n"
"        put_tile(Ks, rk, 1.f);\n"
"        put_state(Ws, rw);\n"
"        float u[4][4], w[4][4];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) u[i][j] = ru[i][j];\n"
"        if (ci + 1 < nc) {  // the next chunk's inputs are in flight while this one computes\n"
"            fetch_tile(rk, k + (row0 + CH) * ld + h * D, ld, min(CH, T - t0 - CH), D);\n"
"            fetch_state(rw, ws_tile(ws, WS_W, BH, nc, bh, ci + 1));\n"
"            load_acc(ru, ws_tile(ws, WS_U, BH, nc, bh, ci + 1));\n"
"        }\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        __syncthreads();\n"
"        zero4(w);\n"
"        MM(w, AR(Ws), BR(Hs), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) u[i][j] -= w[i][j];\n"
"        save_acc(ws_tile(ws, WS_U, BH, nc, bh, ci), u);\n"
"        store4(Us, u);\n"
"        __syncthreads();  // U complete; every read of H_c is done\n"
"        zero4(w);\n"
"        MM(w, AT(Ks), BR(Us), dec);  // K^T diag(dec) U\n"
"        const float el = eg[CH - 1];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) {\n"
"                float *hp = Hs + own_row(j) * LDT + own_col(i, j);\n"
"                *hp = el * *hp + w[i][j];\n"
"            }\n"
"    }\n"
"    __syncthreads();\n"
"    if (st) save_tile(st, Hs, D);\n"
"}\n"
"#endif\n"
"\n"
"// In reverse chunk order per (b, h): dH_c (the gradient of chunk c's end state) -> slot WS_DH.\n"
"#if GDN_IN(3)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_dstate(float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                            const bf16 *dout, const float *g, const float *beta,\n"
"                                                            int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *dHs = sm, *Ks = dHs + TILE, *Qs = Ks + TILE, *dOs = Qs + TILE, *Ws = dOs + TILE, *dUs = Ws + TILE,\n"
"          *gam = dUs + TILE, *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int bh = blockIdx.x, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    const u64 ldo = (u64)H * D;\n"
"    load_tile(dHs, (const float *)0, CH);\n"
"    u32 rk[8], rq[8], ro[8];\n"
"    float rw[16], rdu[4][4];\n"
"    {\n"
"        const int t0 = (nc - 1) * CH, L0 = T - t0;\n"
"        const u64 r0 = (u64)b * T + t0;\n"
"        fetch_tile(rk, k + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(rq, q + r0 * ld + h * D, ld, L0, D);\n"
"        fetch_tile(ro, dout + r0 * ldo + h * D, ldo, L0, D);\n"
"        fetch_state(rw, ws_tile(ws, WS_W, BH, nc, bh, nc - 1));\n"
"        load_acc(rdu, ws_tile(ws, WS_DU, BH, nc, bh, nc - 1));\n"
"    }\n"
"    for (int ci = nc - 1; ci >= 0; ci--) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();  // the later chunk is done with every tile\n"
"        save_tile(ws_tile(ws, WS_DH, BH, nc, bh, ci), dHs, CH);\n"
"        put_tile(Ks, rk, 1.f);\n"
"        put_tile(Qs, rq, scale);\n"
"        put_tile(dOs, ro, 1.f);\n"
"        put_state(Ws, rw);\n"
"        float du[4][4], dh0[4][4], acc[4][4];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) du[i][j] = rdu[i][j];\n"
"        if (ci > 0) {  // the earlier chunk's inputs are in flight while this one computes\n"
"            const u64 r1 = row0 - CH;\n"
"            fetch_tile(rk, k + r1 * ld + h * D, ld, CH, D);\n"
"            fetch_tile(rq, q + r1 * ld + h * D, ld, CH, D);\n"
"            fetch_tile(ro, dout + r1 * ldo + h * D, ldo, CH, D);\n"
"            fetch_state(rw, ws_tile(ws, WS_W, BH, nc, bh, ci - 1));\n"
"            load_acc(rdu, ws_tile(ws, WS_DU, BH, nc, bh, ci - 1));\n"
"        }\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        __syncthreads();\n"
"        // dU = dU_loc + diag(dec) K dH\n"
"        zero4(acc);\n"
"        MM(acc, AR(Ks), BR(dHs), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) du[i][j] += dec[own_row(j)] * acc[i][j];\n"
"        store4(dUs, du);\n"
"        zero4(dh0);\n"
"        MM(dh0, AT(Qs), BR(dOs), eg);  // Q^T diag(eg) dO\n"
"        __syncthreads();  // dU complete; every read of dH is done\n"
"        zero4(acc);\n"
"        MM(acc, AT(Ws), BR(dUs), (const float *)0);\n"
"        const float el = eg[CH - 1];\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int j = 0; j < 4; j++) {\n"
"                float *hp = dHs + own_row(j) * LDT + own_col(i, j);\n"
"                *hp = el * *hp + dh0[i][j] - acc[i][j];\n"
"            }\n"
"    }\n"
"}\n"
"#endif\n"
"\n"
"// One block per chunk: the chunk's gradients from ws (H_c, dH_c, U, T) and its inputs.\n"
"#if GDN_IN(3)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_bwd_local(bf16 *dq, bf16 *dk, bf16 *dv, float *dg,\n"
"                                                               float *dbeta, const bf16 *dout, float *ws,\n"
"                                                               const bf16 *q, const bf16 *k, const bf16 *v, int ld,\n"
"                                                               const float *g, const float *beta, int T, int H, int D,\n"
"                                                               float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    const BwdSm s = bwd_carve(sm);\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    {\n"
"        u32 rk[8], rq[8], rv[8], ro[8];\n"
"        float rh[16], rdh[16], ru[16], rt[16];\n"
"        fetch_tile(rk, k + row0 * ld + h * D, ld, L, D);\n"
"        fetch_tile(rq, q + row0 * ld + h * D, ld, L, D);\n"
"        fetch_tile(rv, v + row0 * ld + h * D, ld, L, D);\n"
"        fetch_tile(ro, dout + row0 * ldo + h * D, ldo, L, D);\n"
"        fetch_state(rh, ws_tile(ws, WS_H, BH, nc, bh, ci));\n"
"        fetch_state(rdh, ws_tile(ws, WS_DH, BH, nc, bh, ci));\n"
"        fetch_state(ru, ws_tile(ws, WS_U, BH, nc, bh, ci));\n"
"        fetch_state(rt, ws_tile(ws, WS_T, BH, nc, bh, ci));\n"
"        put_tile(s.Ks, rk, 1.f);\n"
"        put_tile(s.Qs, rq, scale);\n"
"        put_tile(s.Vs, rv, 1.f);\n"
"        put_tile(s.dOs, ro, 1.f);\n"
"        put_state(s.Hs, rh);\n"
"        put_state(s.dHs, rdh);\n"
"        put_state(s.Us, ru);\n"
"        put_state(s.Ts, rt);\n"
"    }\n"
"    bwd_scores(s, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    bwd_terms(s, 0, dq, dk, dv, dg, dbeta, ld, H, D, h, row0, L, scale);\n"
"}\n"
"#endif\n"
"\n"
"// The chunk-parallel forward's last kernel (after gdn_prep without dout and gdn_state):\n"
"// per chunk O = diag(e^gam) Q H_c + P U, H_c and U from ws (slots WS_H, WS_U).\n"
"#define OUT_SMEM_FLOATS (5 * TILE + 4 * CH)\n"
"#if GDN_IN(0)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_out(bf16 *o, float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                         const float *g, const float *beta, int T, int H, int D,\n"
"                                                         float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Qs = sm, *Ks = Qs + TILE, *Hs = Ks + TILE, *Us = Hs + TILE, *Ps = Us + TILE, *gam = Ps + TILE,\n"
"          *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0;\n"
"    {\n"
"        u32 rq[8], rk[8];\n"
"        float rh[16], ru[16];\n"
"        fetch_tile(rq, q + row0 * ld + h * D, ld, L, D);\n"
"        fetch_tile(rk, k + row0 * ld + h * D, ld, L, D);\n"
"        fetch_state(rh, ws_tile(ws, WS_H, BH, nc, bh, ci));\n"
"        fetch_state(ru, ws_tile(ws, WS_U, BH, nc, bh, ci));\n"
"        put_tile(Qs, rq, scale);\n"
"        put_tile(Ks, rk, 1.f);\n"
"        put_state(Hs, rh);\n"
"        put_state(Us, ru);\n"
"    }\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    __syncthreads();\n"
"    chunk_p(Ps, Qs, Ks, gam);\n"
"    float acc[4][4];\n"
"    chunk_out_state(acc, Qs, Hs, eg);\n"
"    __syncthreads();  // P complete\n"
"    MM(acc, AR(Ps), BR(Us), (const float *)0);\n"
"    store_rows_bf16(o + row0 * H * D + h * D, (u64)H * D, L, acc, 1.f, D);\n"
"}\n"
"#endif\n"
"\n"
"// ---- the chunk-parallel kernels for heads 65..128 wide (gdn_*_w, tuning gdn_wtile) ----\n"
"// A head of D in (64, 128] is two 64-wide column blocks (the second zero-padded past D, never\n"
"// loaded: fetch_tile's bound): q, k split as K_0 | K_1 (k-blocks kk), v and the output as\n"
"// V_0 | V_1 (v-blocks j), the state [D][D] as four 64 x 64 blocks H_{kk,j}. The delta rule\n"
"// is linear in v, so each v-block is a problem of its own with the chunk's A~, T, W shared:\n"
"//   A~ = (K_0 K_0^T + K_1 K_1^T) o G, T as before, W_kk = T diag(beta e^gam) K_kk,\n"
"//   U_j = T diag(beta) V_j - sum_kk W_kk H_{kk,j},  O_j = diag(e^gam) sum_kk Q_kk H_{kk,j} + P U_j,\n"
"//   H_{kk,j} <- e^gam_63 H_{kk,j} + K_kk^T diag(dec) U_j,  P = (Q_0 K_0^T + Q_1 K_1^T) o G.\n"
"// The passes over the chunks (gdn_state_w, gdn_dstate_w) run a block per (b, h, v-block):\n"
"// twice the parallelism of a 64-wide head's, the same two / three products per k-block. The\n"
"// backward's per-chunk terms (gdn_bwd_local_w) walk the two v-blocks in one block, each\n"
"// adding its share of dq, dk (registers, both k-blocks), dg and dbeta (the per-warp slots, in\n"
"// program order: deterministic) and writing its dv block.\n"
"// ws slots a (b, h, chunk), 64 x 64 each: W_kk 0-1, U_j 2-3, dU_loc_j 4-5, T 6, H_{kk,j} 7 + 2kk + j,\n"
"// dH_{kk,j} 11 + 2kk + j (the host's gdn_par_slots_, in its gdn scratch; the forward: slots 0-10).\n"
"#define WS2_W 0\n"
"#define WS2_U 2\n"
"#define WS2_DU 4\n"
"#define WS2_T 6\n"
"#define WS2_H 7\n"
"#define WS2_DH 11\n"
"#define PREPW_SMEM_FLOATS (10 * TILE + 5 * CH)\n"
"#define STATEW_SMEM_FLOATS (7 * TILE + 4 * CH)\n"
"#define OUTW_SMEM_FLOATS (8 * TILE + 4 * CH)\n"
"#define DSTATEW_SMEM_FLOATS (10 * TILE + 4 * CH)\n"
"\n"
"// the [64][64] block (r0, c0) of a dense global [D][D] matrix <-> a shared tile (padding zeros)\n"
"__device__ __forceinline__ void load_block(float *X, const float *src, int D, int r0, int c0) {\n"
"    for (int e = threadIdx.x; e < CH * CH; e += NT) {\n"
"        const int r = e >> 6, c = e & 63;\n"
"        X[r * LDT + c] = src && r0 + r < D && c0 + c < D ? src[(u64)(r0 + r) * D + c0 + c] : 0.f;\n"
"    }\n"
"}\n"
"__device__ __forceinline__ void save_block(float *dst, const float *X, int D, int r0, int c0) {\n"
"    for (int e = threadIdx.x; e < CH * CH; e += NT) {\n"
"        const int r = e >> 6, c = e & 63;\n"
"        if (r0 + r < D && c0 + c < D) dst[(u64)(r0 + r) * D + c0 + c] = X[r * LDT + c];\n"
"    }\n"
"}\n"
"// masked products of the chunk with both k-blocks summed: acc (zeroed here) = X_0 Y_0^T + X_1 Y_1^T\n"
"__device__ __forceinline__ void mm_kk(float acc[4][4], const float *X0, const float *X1, const float *Y0,\n"
"                                      const float *Y1) {\n"
"    zero4(acc);\n"
"    MM(acc, AR(X0), BT(Y0), (const float *)0);\n"
"    MM(acc, AR(X1), BT(Y1), (const float *)0);\n"
"}\n"
"// A~ (strict lower) and / or P (lower, inclusive) o G from the accumulated products\n"
"__device__ __forceinline__ void mask_g(float *X, const float a[4][4], const float *gam, int strict) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int j = 0; j < 4; j++) {\n"
"            const int r = own_row(j), c = own_col(i, j);\n"
"            X[r * LDT + c] = (strict ? c < r : c <= r) ? a[i][j] * __expf(gam[r] - gam[c]) : 0.f;\n"
"        }\n"
"}\n"
"\n"
"#if GDN_IN(5)\n"
"// Per chunk: W_kk, U~_j (and with dout, T and dU_loc_j = P^T dO_j) into ws.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_prep_w(float *ws, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"                                                            int ld, const bf16 *dout, const float *g,\n"
"                                                            const float *beta, int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *K0 = sm, *K1 = K0 + TILE, *V0 = K1 + TILE, *V1 = V0 + TILE, *Q0 = V1 + TILE, *Q1 = Q0 + TILE,\n"
"          *dO0 = Q1 + TILE, *dO1 = dO0 + TILE, *As = dO1 + TILE, *Ts = As + TILE, *gam = Ts + TILE, *bet = gam + CH,\n"
"          *eg = bet + CH, *dec = eg + CH, *tmpv = dec + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    {\n"
"        u32 r[8];\n"
"        const bf16 *kb = k + row0 * ld + h * D, *vb = v + row0 * ld + h * D;\n"
"        fetch_tile(r, kb, ld, L, D); put_tile(K0, r, 1.f);\n"
"        fetch_tile(r, kb + CH, ld, L, D - CH); put_tile(K1, r, 1.f);\n"
"        fetch_tile(r, vb, ld, L, D); put_tile(V0, r, 1.f);\n"
"        fetch_tile(r, vb + CH, ld, L, D - CH); put_tile(V1, r, 1.f);\n"
"        if (dout) {\n"
"            const bf16 *qb = q + row0 * ld + h * D, *ob = dout + row0 * ldo + h * D;\n"
"            fetch_tile(r, qb, ld, L, D); put_tile(Q0, r, scale);\n"
"            fetch_tile(r, qb + CH, ld, L, D - CH); put_tile(Q1, r, scale);\n"
"            fetch_tile(r, ob, ldo, L, D); put_tile(dO0, r, 1.f);\n"
"            fetch_tile(r, ob + CH, ldo, L, D - CH); put_tile(dO1, r, 1.f);\n"
"        }\n"
"    }\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    __syncthreads();\n"
"    float acc[4][4];\n"
"    mm_kk(acc, K0, K1, K0, K1);\n"
"    mask_g(As, acc, gam, 1);\n"
"    __syncthreads();\n"
"    chunk_inverse(Ts, As, bet);\n"
"    if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(K0), tmpv);\n"
"    save_acc(ws_tile(ws, WS2_W, BH, nc, bh, ci), acc);\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(K1), tmpv);\n"
"    save_acc(ws_tile(ws, WS2_W + 1, BH, nc, bh, ci), acc);\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(V0), bet);\n"
"    save_acc(ws_tile(ws, WS2_U, BH, nc, bh, ci), acc);\n"
"    zero4(acc);\n"
"    MM(acc, AR(Ts), BR(V1), bet);\n"
"    save_acc(ws_tile(ws, WS2_U + 1, BH, nc, bh, ci), acc);\n"
"    if (!dout) return;\n"
"    save_tile(ws_tile(ws, WS2_T, BH, nc, bh, ci), Ts, CH);\n"
"    mm_kk(acc, Q0, Q1, K0, K1);\n"
"    __syncthreads();  // every read of A~ is done (chunk_inverse)\n"
"    mask_g(As, acc, gam, 0);  // P replaces A~\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AT(As), BR(dO0), (const float *)0);\n"
"    save_acc(ws_tile(ws, WS2_DU, BH, nc, bh, ci), acc);\n"
"    zero4(acc);\n"
"    MM(acc, AT(As), BR(dO1), (const float *)0);\n"
"    save_acc(ws_tile(ws, WS2_DU + 1, BH, nc, bh, ci), acc);\n"
"}\n"
"\n"
"// In chunk order per (b, h, v-block j = blockIdx.y): H_{kk,j} -> ws, U_j = U~_j - sum_kk W_kk H_{kk,j}\n"
"// over U~_j; state (may be NULL): the initial state in, the final state out ([D][D] per (b, h)).\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_state_w(float *ws, float *state, const bf16 *k, int ld,\n"
"                                                             const float *g, const float *beta, int T, int H, int D) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *H0 = sm, *H1 = H0 + TILE, *W0 = H1 + TILE, *W1 = W0 + TILE, *K0 = W1 + TILE, *K1 = K0 + TILE,\n"
"          *Us = K1 + TILE, *gam = Us + TILE, *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int bh = blockIdx.x, j = blockIdx.y, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    float *st = state ? state + (u64)bh * D * D : 0;\n"
"    load_block(H0, st, D, 0, CH * j);\n"
"    load_block(H1, st, D, CH, CH * j);\n"
"    for (int ci = 0; ci < nc; ci++) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();  // the previous chunk is done with every tile\n"
"        save_tile(ws_tile(ws, WS2_H + j, BH, nc, bh, ci), H0, CH);\n"
"        save_tile(ws_tile(ws, WS2_H + 2 + j, BH, nc, bh, ci), H1, CH);\n"
"        {\n"
"            u32 r[8];\n"
"            float rw[16];\n"
"            fetch_tile(r, k + row0 * ld + h * D, ld, L, D); put_tile(K0, r, 1.f);\n"
"            fetch_tile(r, k + row0 * ld + h * D + CH, ld, L, D - CH); put_tile(K1, r, 1.f);\n"
"            fetch_state(rw, ws_tile(ws, WS2_W, BH, nc, bh, ci)); put_state(W0, rw);\n"
"            fetch_state(rw, ws_tile(ws, WS2_W + 1, BH, nc, bh, ci)); put_state(W1, rw);\n"
"        }\n"
"        float u[4][4], w[4][4];\n"
"        load_acc(u, ws_tile(ws, WS2_U + j, BH, nc, bh, ci));\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        __syncthreads();\n"
"        zero4(w);\n"
"        MM(w, AR(W0), BR(H0), (const float *)0);\n"
"        MM(w, AR(W1), BR(H1), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) u[i][e] -= w[i][e];\n"
"        save_acc(ws_tile(ws, WS2_U + j, BH, nc, bh, ci), u);\n"
"        store4(Us, u);\n"
"        __syncthreads();  // U_j complete; every read of H is done\n"
"        const float el = eg[CH - 1];\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            float *Hk = kk ? H1 : H0;\n"
"            zero4(w);\n"
"            MM(w, AT(kk ? K1 : K0), BR(Us), dec);  // K_kk^T diag(dec) U_j\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    float *hp = Hk + own_row(e) * LDT + own_col(i, e);\n"
"                    *hp = el * *hp + w[i][e];\n"
"                }\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"    if (st) {\n"
"        save_block(st, H0, D, 0, CH * j);\n"
"        save_block(st, H1, D, CH, CH * j);\n"
"    }\n"
"}\n"
"\n"
"// The forward's last kernel: per (chunk, b, h, v-block j) O_j = diag(e^gam) sum_kk Q_kk H_{kk,j} + P U_j.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_out_w(bf16 *o, float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                           const float *g, const float *beta, int T, int H, int D,\n"
"                                                           float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Q0 = sm, *Q1 = Q0 + TILE, *K0 = Q1 + TILE, *K1 = K0 + TILE, *H0 = K1 + TILE, *H1 = H0 + TILE,\n"
"          *Us = H1 + TILE, *Ps = Us + TILE, *gam = Ps + TILE, *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, j = blockIdx.z, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0;\n"
"    {\n"
"        u32 r[8];\n"
"        float rs[16];\n"
"        const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D;\n"
"        fetch_tile(r, qb, ld, L, D); put_tile(Q0, r, scale);\n"
"        fetch_tile(r, qb + CH, ld, L, D - CH); put_tile(Q1, r, scale);\n"
"        fetch_tile(r, kb, ld, L, D); put_tile(K0, r, 1.f);\n"
"        fetch_tile(r, kb + CH, ld, L, D - CH); put_tile(K1, r, 1.f);\n"
"        fetch_state(rs, ws_tile(ws, WS2_H + j, BH, nc, bh, ci)); put_state(H0, rs);\n"
"        fetch_state(rs, ws_tile(ws, WS2_H + 2 + j, BH, nc, bh, ci)); put_state(H1, rs);\n"
"        fetch_state(rs, ws_tile(ws, WS2_U + j, BH, nc, bh, ci)); put_state(Us, rs);\n"
"    }\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    __syncthreads();\n"
"    float acc[4][4];\n"
"    mm_kk(acc, Q0, Q1, K0, K1);\n"
"    mask_g(Ps, acc, gam, 0);\n"
"    zero4(acc);\n"
"    MM(acc, AR(Q0), BR(H0), (const float *)0);\n"
"    MM(acc, AR(Q1), BR(H1), (const float *)0);\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) acc[i][e] *= eg[own_row(e)];\n"
"    __syncthreads();  // P complete\n"
"    MM(acc, AR(Ps), BR(Us), (const float *)0);\n"
"    store_rows_bf16(o + row0 * H * D + h * D + CH * j, (u64)H * D, L, acc, 1.f, D - CH * j);\n"
"}\n"
"#endif\n"
"\n"
"#if GDN_IN(6)\n"
"// In reverse chunk order per (b, h, v-block j = blockIdx.y): dH_{kk,j} -> ws, from\n"
"// dU_j = dU_loc_j + diag(dec) sum_kk K_kk dH_{kk,j}, dH_{kk,j} <- el dH_{kk,j} + Q_kk^T diag(eg) dO_j - W_kk^T dU_j.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_dstate_w(float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                              const bf16 *dout, const float *g, const float *beta,\n"
"                                                              int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *dH0 = sm, *dH1 = dH0 + TILE, *K0 = dH1 + TILE, *K1 = K0 + TILE, *Q0 = K1 + TILE, *Q1 = Q0 + TILE,\n"
"          *dOs = Q1 + TILE, *W0 = dOs + TILE, *W1 = W0 + TILE, *dUs = W1 + TILE, *gam = dUs + TILE, *bet = gam + CH,\n"
"          *eg = bet + CH, *dec = eg + CH;\n"
"    const int bh = blockIdx.x, j = blockIdx.y, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    const u64 ldo = (u64)H * D;\n"
"    load_tile(dH0, (const float *)0, CH);\n"
"    load_tile(dH1, (const float *)0, CH);\n"
"    for (int ci = nc - 1; ci >= 0; ci--) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        __syncthreads();  // the later chunk is done with every tile\n"
"        save_tile(ws_tile(ws, WS2_DH + j, BH, nc, bh, ci), dH0, CH);\n"
"        save_tile(ws_tile(ws, WS2_DH + 2 + j, BH, nc, bh, ci), dH1, CH);\n"
"        {\n"
"            u32 r[8];\n"
"            float rw[16];\n"
"            const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D;\n"
"            fetch_tile(r, kb, ld, L, D); put_tile(K0, r, 1.f);\n"
"            fetch_tile(r, kb + CH, ld, L, D - CH); put_tile(K1, r, 1.f);\n"
"            fetch_tile(r, qb, ld, L, D); put_tile(Q0, r, scale);\n"
"            fetch_tile(r, qb + CH, ld, L, D - CH); put_tile(Q1, r, scale);\n"
"            fetch_tile(r, dout + row0 * ldo + h * D + CH * j, ldo, L, D - CH * j); put_tile(dOs, r, 1.f);\n"
"            fetch_state(rw, ws_tile(ws, WS2_W, BH, nc, bh, ci)); put_state(W0, rw);\n"
"            fetch_state(rw, ws_tile(ws, WS2_W + 1, BH, nc, bh, ci)); put_state(W1, rw);\n"
"        }\n"
"        float du[4][4], acc[4][4];\n"
"        load_acc(du, ws_tile(ws, WS2_DU + j, BH, nc, bh, ci));\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        __syncthreads();\n"
"        zero4(acc);\n"
"        MM(acc, AR(K0), BR(dH0), (const float *)0);\n"
"        MM(acc, AR(K1), BR(dH1), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) du[i][e] += dec[own_row(e)] * acc[i][e];\n"
"        store4(dUs, du);\n"
"        float dh0[4][4], dh1[4][4];\n"
"        zero4(dh0);\n"
"        zero4(dh1);\n"
"        MM(dh0, AT(Q0), BR(dOs), eg);  // Q_kk^T diag(eg) dO_j\n"
"        MM(dh1, AT(Q1), BR(dOs), eg);\n"
"        __syncthreads();  // dU_j complete; every read of dH is done\n"
"        const float el = eg[CH - 1];\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            float *dHk = kk ? dH1 : dH0;\n"
"            zero4(acc);\n"
"            MM(acc, AT(kk ? W1 : W0), BR(dUs), (const float *)0);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    float *hp = dHk + own_row(e) * LDT + own_col(i, e);\n"
"                    *hp = el * *hp + (kk ? dh1[i][e] : dh0[i][e]) - acc[i][e];\n"
"                }\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// One block per chunk: the chunk's gradients, v-block by v-block (see above), from ws (H, dH,\n"
"// T) and its inputs; every tile of one v-block's terms is attn/gdn.h's gdn_chunk_bwd_, as\n"
"// bwd_terms computes them for a 64-wide head, with the k-blocks' sums where the head's width is\n"
"// summed. 12 tiles: H_{.,j} and dH_{.,j} (2 each), K, Q (2 each), dO_j, U_j, dU_j, P; later V_j\n"
"// and T take H's place, dW dH's, A~ dO's.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_bwd_local_w(bf16 *dq, bf16 *dk, bf16 *dv, float *dg,\n"
"                                                                 float *dbeta, const bf16 *dout, float *ws,\n"
"                                                                 const bf16 *q, const bf16 *k, const bf16 *v, int ld,\n"
"                                                                 const float *g, const float *beta, int T, int H,\n"
"                                                                 int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Hb[2], *dHb[2], *Kb[2], *Qb[2];\n"
"    Hb[0] = sm; Hb[1] = Hb[0] + TILE; dHb[0] = Hb[1] + TILE; dHb[1] = dHb[0] + TILE;\n"
"    Kb[0] = dHb[1] + TILE; Kb[1] = Kb[0] + TILE; Qb[0] = Kb[1] + TILE; Qb[1] = Qb[0] + TILE;\n"
"    float *dOs = Qb[1] + TILE, *Us = dOs + TILE, *dUs = Us + TILE, *Ps = dUs + TILE, *gam = Ps + TILE, *bet = gam + CH,\n"
"          *eg = bet + CH, *dec = eg + CH, *tmpv = dec + CH, *dgam = tmpv + CH, *dbet = dgam + DGAM_FLOATS;\n"
"    float *Vs = Hb[0], *Ts = Hb[1], *As = dOs;  // (after H_{.,j} and dO_j are done with)\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    {\n"
"        u32 r[8];\n"
"        const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D;\n"
"        fetch_tile(r, kb, ld, L, D); put_tile(Kb[0], r, 1.f);\n"
"        fetch_tile(r, kb + CH, ld, L, D - CH); put_tile(Kb[1], r, 1.f);\n"
"        fetch_tile(r, qb, ld, L, D); put_tile(Qb[0], r, scale);\n"
"        fetch_tile(r, qb + CH, ld, L, D - CH); put_tile(Qb[1], r, scale);\n"
"    }\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    for (int e = threadIdx.x; e < DGAM_FLOATS + DBET_FLOATS; e += NT) dgam[e] = 0.f;  // dbet follows dgam\n"
"    float dQ[2][4][4], dK[2][4][4], acc[4][4], rd[2];\n"
"    zero4(dQ[0]); zero4(dQ[1]); zero4(dK[0]); zero4(dK[1]);\n"
"    float hdh = 0.f;\n"
"    for (int j = 0; j < 2; j++) {\n"
"        __syncthreads();  // the previous v-block is done with every tile (and the gates are in)\n"
"        {\n"
"            u32 r[8];\n"
"            float rs[16];\n"
"    #pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"                fetch_state(rs, ws_tile(ws, WS2_H + 2 * kk + j, BH, nc, bh, ci)); put_state(Hb[kk], rs);\n"
"                fetch_state(rs, ws_tile(ws, WS2_DH + 2 * kk + j, BH, nc, bh, ci)); put_state(dHb[kk], rs);\n"
"            }\n"
"            fetch_state(rs, ws_tile(ws, WS2_U + j, BH, nc, bh, ci)); put_state(Us, rs);\n"
"            fetch_tile(r, dout + row0 * ldo + h * D + CH * j, ldo, L, D - CH * j); put_tile(dOs, r, 1.f);\n"
"        }\n"
"        mm_kk(acc, Qb[0], Qb[1], Kb[0], Kb[1]);\n"
"        mask_g(Ps, acc, gam, 0);  // (the last v-block's reads of P ended before the barrier above)\n"
"        __syncthreads();  // the tiles and P are in\n"
"        // (e) dU_j = diag(dec) sum_kk K_kk dH_{kk,j}; s_r = dU_r . U_r; dK_kk += diag(dec) U_j dH_{kk,j}^T\n"
"        zero4(acc);\n"
"        MM(acc, AR(Kb[0]), BR(dHb[0]), (const float *)0);\n"
"        MM(acc, AR(Kb[1]), BR(dHb[1]), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) acc[i][e] *= dec[own_row(e)];\n"
"        rowdot2(acc, Us, rd);\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) { ROW_ADD(dgam, own_row(2 * hh), -rd[hh]); ROW63_ADD(dgam, own_row(2 * hh), rd[hh]); }\n"
"        store4(dUs, acc);\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            float t[4][4];\n"
"            zero4(t);\n"
"            MM(t, AR(Us), BT(dHb[kk]), (const float *)0);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    const int r = own_row(e), c = own_col(i, e);\n"
"                    dK[kk][i][e] += dec[r] * t[i][e];\n"
"                    hdh += Hb[kk][r * LDT + c] * dHb[kk][r * LDT + c];\n"
"                }\n"
"        }\n"
"        // (d) dQ_kk += diag(eg) dO_j H_{kk,j}^T; dgam_r += Q_r . that; dU_j += P^T dO_j\n"
"        float rq[2] = {0.f, 0.f};\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            float t[4][4];\n"
"            zero4(t);\n"
"            MM(t, AR(dOs), BT(Hb[kk]), (const float *)0);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) t[i][e] *= eg[own_row(e)];\n"
"            rowdot2(t, Qb[kk], rd);\n"
"            rq[0] += rd[0]; rq[1] += rd[1];\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) dQ[kk][i][e] += t[i][e];\n"
"        }\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) ROW_ADD(dgam, own_row(2 * hh), rq[hh]);\n"
"        zero4(acc);\n"
"        MM(acc, AT(Ps), BR(dOs), (const float *)0);\n"
"        __syncthreads();  // dU_j (e) complete\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) dUs[own_row(e) * LDT + own_col(i, e)] += acc[i][e];\n"
"        // dP = lower_incl(dO_j U_j^T); dgam from dP o P; dD = dP o G replaces P\n"
"        zero4(acc);\n"
"        MM(acc, AR(dOs), BT(Us), (const float *)0);\n"
"        __syncthreads();  // every read of P is done\n"
"        bwd_dd(Ps, acc, gam, dgam);\n"
"        __syncthreads();  // dD and dU_j complete\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            MM(dQ[kk], AR(Ps), BR(Kb[kk]), (const float *)0);\n"
"            MM(dK[kk], AT(Ps), BR(Qb[kk]), (const float *)0);\n"
"        }\n"
"        // (c) dW_kk = -dU_j H_{kk,j}^T into dH's place (dH is done with since (e))\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            zero4(acc);\n"
"            MM(acc, AR(dUs), BT(Hb[kk]), (const float *)0);\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) acc[i][e] = -acc[i][e];\n"
"            store4(dHb[kk], acc);\n"
"        }\n"
"        __syncthreads();  // every read of H and dO is done: V_j, T into H's place, A~ into dO's\n"
"        {\n"
"            u32 r[8];\n"
"            float rs[16];\n"
"            fetch_tile(r, v + row0 * ld + h * D + CH * j, ld, L, D - CH * j); put_tile(Vs, r, 1.f);\n"
"            fetch_state(rs, ws_tile(ws, WS2_T, BH, nc, bh, ci)); put_state(Ts, rs);\n"
"        }\n"
"        mm_kk(acc, Kb[0], Kb[1], Kb[0], Kb[1]);\n"
"        mask_g(As, acc, gam, 1);\n"
"        if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"        __syncthreads();\n"
"        // (b) dX_kk = T^T dW_kk: dK_kk += diag(beta eg) dX_kk, dbeta_r += eg_r K_r.dX_r, dgam_r += beta_r eg_r K_r.dX_r\n"
"        float rx[2] = {0.f, 0.f};\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            zero4(acc);\n"
"            MM(acc, AT(Ts), BR(dHb[kk]), (const float *)0);\n"
"            rowdot2(acc, Kb[kk], rd);\n"
"            rx[0] += rd[0]; rx[1] += rd[1];\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) dK[kk][i][e] += tmpv[own_row(e)] * acc[i][e];\n"
"        }\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) {\n"
"                const int r = own_row(2 * hh);\n"
"                ROW_ADD(dbet, r, eg[r] * rx[hh]);\n"
"                ROW_ADD(dgam, r, bet[r] * eg[r] * rx[hh]);\n"
"            }\n"
"        //     dY = T^T dU_j: dV_j = diag(beta) dY, dbeta_r += V_r . dY_r\n"
"        bwd_dv(dv + row0 * ld + h * D + CH * j, ld, L, D - CH * j, Ts, dUs, Vs, bet, dbet);\n"
"        //     dT = (sum_kk dW_kk K_kk^T diag(eg) + dU_j V_j^T) diag(beta) -> Us (U_j is done with)\n"
"        mm_kk(acc, dHb[0], dHb[1], Kb[0], Kb[1]);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) acc[i][e] *= eg[own_col(i, e)];\n"
"        MM(acc, AR(dUs), BT(Vs), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) acc[i][e] *= bet[own_col(i, e)];\n"
"        __syncthreads();  // every read of U_j is done (dP above, rowdot (e))\n"
"        store4(Us, acc);\n"
"        __syncthreads();\n"
"        // (a) dM = strict_lower(-T^T (dT T^T)); dKK = beta_r dM G replaces dD\n"
"        zero4(acc);\n"
"        MM(acc, AR(Us), BT(Ts), (const float *)0);\n"
"        __syncthreads();  // every read of dW is done\n"
"        store4(dHb[0], acc);\n"
"        __syncthreads();\n"
"        zero4(acc);\n"
"        MM(acc, AT(Ts), BR(dHb[0]), (const float *)0);\n"
"        bwd_dkk(Ps, acc, As, bet, gam, dgam, dbet);\n"
"        __syncthreads();\n"
"#pragma unroll\n"
"        for (int kk = 0; kk < 2; kk++) {\n"
"            MM(dK[kk], AR(Ps), BR(Kb[kk]), (const float *)0);\n"
"            MM(dK[kk], AT(Ps), BR(Kb[kk]), (const float *)0);\n"
"        }\n"
"    }\n"
"    hdh = block_sum(hdh);  // (after the loop's barriers: the gates are in)\n"
"    if (threadIdx.x == 0) X63_ADD(dgam, eg[CH - 1] * hdh);\n"
"#pragma unroll\n"
"    for (int kk = 0; kk < 2; kk++) {\n"
"        store_rows_bf16(dq + row0 * ld + h * D + CH * kk, ld, L, dQ[kk], scale, D - CH * kk);\n"
"        store_rows_bf16(dk + row0 * ld + h * D + CH * kk, ld, L, dK[kk], 1.f, D - CH * kk);\n"
"    }\n"
"    __syncthreads();  // dgam, dbet complete\n"
"    store_dg_dbeta(dg, dbeta, dgam, dbet, row0, H, h, L);\n"
"}\n"
"#endif\n"
"// ---- the chunk-parallel kernels for heads 129..256 wide (gdn_*_x, tuning gdn_wtile=2) ----\n"
"// The algebra of the gdn_*_w kernels above with nb = ceil(D / 64) k-blocks and v-blocks (3 or\n"
"// 4; the kernels take any nb from 1 to XNB): per v-block j a delta rule of its own that shares\n"
"// the chunk's A~ = sum_kk K_kk K_kk^T o G, T and W_kk. Holding every k-block's tiles would take\n"
"// up to 20 of them (348 KB), so the k-blocks stream through one or two staging tiles and only\n"
"// what the walk needs all of stays resident: a pass over the chunks keeps its v-block's nb state\n"
"// blocks H_{kk,j} (or dH_{kk,j}); gdn_prep_x the nb K blocks (for W).\n"
"// gdn_bwd_local_x reorders gdn_bwd_local_w's terms so that no register tile is kept per k-block:\n"
"//   phase 1, per v-block j: dU_j = diag(dec) sum_kk K_kk dH_{kk,j} + P^T dO_j (to ws), dV_j, and\n"
"//     the chunk-sized sums dP = sum_j dO_j U_j^T, dT_v = sum_j dU_j V_j^T (registers);\n"
"//   then dD from dP, as for one v-block (every term in dP is linear);\n"
"//   phase 2, per k-block kk: dQ_kk = diag(eg) sum_j dO_j H_{kk,j}^T + dD K_kk (finished: to dq),\n"
"//     dW_kk = -sum_j dU_j H_{kk,j}^T, and dK_kk's terms but dKK's (diag(dec) sum_j U_j\n"
"//     dH_{kk,j}^T + dD^T Q_kk + diag(beta eg) T^T dW_kk: parked in ws, W_kk's slot), dT += dW_kk\n"
"//     K_kk^T diag(eg);\n"
"//   phase 3: dKK from dT as for one v-block, then dK_kk = parked + dKK K_kk + dKK^T K_kk.\n"
"// The row sums dgam, dbeta take the same terms as gdn_bwd_local_w's, summed over j (or kk)\n"
"// before the row dot where a term is linear; per-warp slots in program order (deterministic).\n"
"// ws slots a (b, h, chunk), functions of the block's nb: W_kk, U_j, H_{kk,j} (the forward's\n"
"// 2 nb + nb^2), then T, dU_j, dH_{kk,j} (3 nb + 2 nb^2 + 1 in all: 45 at nb 4).\n"
"#define XNB 4\n"
"#define XS_W(kk) (kk)\n"
"#define XS_U(j) (nb + (j))\n"
"#define XS_H(kk, j) (2 * nb + nb * (kk) + (j))\n"
"#define XS_T (2 * nb + nb * nb)\n"
"#define XS_DU(j) (XS_T + 1 + (j))\n"
"#define XS_DH(kk, j) (XS_T + 1 + nb + nb * (kk) + (j))\n"
"#define PREPX_SMEM_FLOATS ((XNB + 3) * TILE + 5 * CH)\n"
"#define STATEX_SMEM_FLOATS ((XNB + 2) * TILE + 4 * CH)\n"
"#define OUTX_SMEM_FLOATS (5 * TILE + 4 * CH)\n"
"#define DSTATEX_SMEM_FLOATS ((XNB + 4) * TILE + 4 * CH)\n"
"#define LOCALX_SMEM_FLOATS (11 * TILE + 5 * CH + DGAM_FLOATS + DBET_FLOATS)\n"
"\n"
"// column block kk of a head's chunk rows (columns 64 kk.., zeros past D) -> a shared tile, times s\n"
"__device__ __forceinline__ void get_block(float *X, const bf16 *src, u64 ld, int L, int D, int kk, float s) {\n"
"    u32 r[8];\n"
"    fetch_tile(r, src + CH * kk, ld, L, D - CH * kk);\n"
"    put_tile(X, r, s);\n"
"}\n"
"// a workspace tile -> a shared tile\n"
"__device__ __forceinline__ void get_ws(float *X, const float *src) {\n"
"    float r[16];\n"
"    fetch_state(r, src);\n"
"    put_state(X, r);\n"
"}\n"
"// X <- el X + a over the thread's entries (a state tile's step from one chunk to the next)\n"
"__device__ __forceinline__ void decay_add(float *X, float el, const float a[4][4]) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) {\n"
"            float *xp = X + own_row(e) * LDT + own_col(i, e);\n"
"            *xp = el * *xp + a[i][e];\n"
"        }\n"
"}\n"
"__device__ __forceinline__ void scale_rows(float a[4][4], const float *v) {\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) a[i][e] *= v[own_row(e)];\n"
"}\n"
"\n"
"#if GDN_IN(7)\n"
"// Per chunk: W_kk, U~_j (and with dout, T and dU_loc_j = P^T dO_j) into ws. 7 tiles: the nb K\n"
"// blocks, A~ (later P), T, one staging tile for V_j, Q_kk, dO_j.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_prep_x(float *ws, const bf16 *q, const bf16 *k, const bf16 *v,\n"
"                                                            int ld, const bf16 *dout, const float *g,\n"
"                                                            const float *beta, int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Kb = sm, *As = Kb + XNB * TILE, *Ts = As + TILE, *X = Ts + TILE, *gam = X + TILE, *bet = gam + CH,\n"
"          *eg = bet + CH, *dec = eg + CH, *tmpv = dec + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int nb = (D + CH - 1) / CH, t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D, *vb = v + row0 * ld + h * D;\n"
"    for (int kk = 0; kk < nb; kk++) get_block(Kb + kk * TILE, kb, ld, L, D, kk, 1.f);\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    __syncthreads();\n"
"    float acc[4][4];\n"
"    zero4(acc);\n"
"    for (int kk = 0; kk < nb; kk++) MM(acc, AR(Kb + kk * TILE), BT(Kb + kk * TILE), (const float *)0);\n"
"    mask_g(As, acc, gam, 1);\n"
"    __syncthreads();\n"
"    chunk_inverse(Ts, As, bet);\n"
"    if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"    __syncthreads();\n"
"    for (int kk = 0; kk < nb; kk++) {  // W_kk = T diag(beta e^gam) K_kk\n"
"        zero4(acc);\n"
"        MM(acc, AR(Ts), BR(Kb + kk * TILE), tmpv);\n"
"        save_acc(ws_tile(ws, XS_W(kk), BH, nc, bh, ci), acc);\n"
"    }\n"
"    for (int j = 0; j < nb; j++) {  // U~_j = T diag(beta) V_j\n"
"        if (j) __syncthreads();  // every read of V_{j-1} is done\n"
"        get_block(X, vb, ld, L, D, j, 1.f);\n"
"        __syncthreads();\n"
"        zero4(acc);\n"
"        MM(acc, AR(Ts), BR(X), bet);\n"
"        save_acc(ws_tile(ws, XS_U(j), BH, nc, bh, ci), acc);\n"
"    }\n"
"    if (!dout) return;\n"
"    save_tile(ws_tile(ws, XS_T, BH, nc, bh, ci), Ts, CH);\n"
"    zero4(acc);  // P = sum_kk Q_kk K_kk^T, masked\n"
"    for (int kk = 0; kk < nb; kk++) {\n"
"        __syncthreads();  // every read of the staging tile is done\n"
"        get_block(X, qb, ld, L, D, kk, scale);\n"
"        __syncthreads();\n"
"        MM(acc, AR(X), BT(Kb + kk * TILE), (const float *)0);\n"
"    }\n"
"    mask_g(As, acc, gam, 0);  // P replaces A~ (read last by chunk_inverse, barriers ago)\n"
"    for (int j = 0; j < nb; j++) {\n"
"        __syncthreads();  // P complete; every read of the staging tile is done\n"
"        get_block(X, dout + row0 * ldo + h * D, ldo, L, D, j, 1.f);\n"
"        __syncthreads();\n"
"        zero4(acc);\n"
"        MM(acc, AT(As), BR(X), (const float *)0);\n"
"        save_acc(ws_tile(ws, XS_DU(j), BH, nc, bh, ci), acc);\n"
"    }\n"
"}\n"
"\n"
"// In chunk order per (b, h, v-block j = blockIdx.y): H_{kk,j} -> ws, U_j = U~_j - sum_kk W_kk H_{kk,j}\n"
"// over U~_j, H_{kk,j} <- e^gam_63 H_{kk,j} + K_kk^T diag(dec) U_j; state (may be NULL): the initial\n"
"// state in, the final state out ([D][D] per (b, h)). 6 tiles: the nb H blocks, U_j, one staging\n"
"// tile for W_kk and K_kk (the next one fetched into registers while the current one multiplies).\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_state_x(float *ws, float *state, const bf16 *k, int ld,\n"
"                                                             const float *g, const float *beta, int T, int H, int D) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Hb = sm, *Us = Hb + XNB * TILE, *X = Us + TILE, *gam = X + TILE, *bet = gam + CH, *eg = bet + CH,\n"
"          *dec = eg + CH;\n"
"    const int bh = blockIdx.x, j = blockIdx.y, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    const int nb = (D + CH - 1) / CH;\n"
"    float *st = state ? state + (u64)bh * D * D : 0;\n"
"    for (int kk = 0; kk < nb; kk++) load_block(Hb + kk * TILE, st, D, CH * kk, CH * j);\n"
"    for (int ci = 0; ci < nc; ci++) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        const bf16 *kb = k + row0 * ld + h * D;\n"
"        float rw[16], u[4][4], w[4][4];\n"
"        u32 rk[8];\n"
"        fetch_state(rw, ws_tile(ws, XS_W(0), BH, nc, bh, ci));\n"
"        load_acc(u, ws_tile(ws, XS_U(j), BH, nc, bh, ci));\n"
"        __syncthreads();  // the previous chunk is done with every tile\n"
"        for (int kk = 0; kk < nb; kk++) save_tile(ws_tile(ws, XS_H(kk, j), BH, nc, bh, ci), Hb + kk * TILE, CH);\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        zero4(w);\n"
"        for (int kk = 0; kk < nb; kk++) {\n"
"            if (kk) __syncthreads();  // every read of W_{kk-1} is done\n"
"            put_state(X, rw);\n"
"            __syncthreads();\n"
"            if (kk + 1 < nb) fetch_state(rw, ws_tile(ws, XS_W(kk + 1), BH, nc, bh, ci));\n"
"            else fetch_tile(rk, kb, ld, L, D);\n"
"            MM(w, AR(X), BR(Hb + kk * TILE), (const float *)0);\n"
"        }\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) u[i][e] -= w[i][e];\n"
"        save_acc(ws_tile(ws, XS_U(j), BH, nc, bh, ci), u);\n"
"        store4(Us, u);\n"
"        const float el = eg[CH - 1];\n"
"        for (int kk = 0; kk < nb; kk++) {\n"
"            __syncthreads();  // U_j complete, every read of H and of the staging tile is done\n"
"            put_tile(X, rk, 1.f);\n"
"            __syncthreads();\n"
"            if (kk + 1 < nb) fetch_tile(rk, kb + CH * (kk + 1), ld, L, D - CH * (kk + 1));\n"
"            zero4(w);\n"
"            MM(w, AT(X), BR(Us), dec);  // K_kk^T diag(dec) U_j\n"
"            decay_add(Hb + kk * TILE, el, w);\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"    if (st)\n"
"        for (int kk = 0; kk < nb; kk++) save_block(st, Hb + kk * TILE, D, CH * kk, CH * j);\n"
"}\n"
"\n"
"// The forward's last kernel: per (chunk, b, h, v-block j) O_j = diag(e^gam) sum_kk Q_kk H_{kk,j} + P U_j,\n"
"// P = sum_kk Q_kk K_kk^T, masked. 5 tiles: Q_kk, K_kk, H_{kk,j} staged a k-block at a time, P, U_j.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_out_x(bf16 *o, float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                           const float *g, const float *beta, int T, int H, int D,\n"
"                                                           float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Xq = sm, *Xk = Xq + TILE, *Xh = Xk + TILE, *Ps = Xh + TILE, *Us = Ps + TILE, *gam = Us + TILE,\n"
"          *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, j = blockIdx.z, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int nb = (D + CH - 1) / CH, t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0;\n"
"    const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D;\n"
"    get_ws(Us, ws_tile(ws, XS_U(j), BH, nc, bh, ci));\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    float p[4][4], acc[4][4];\n"
"    zero4(p);\n"
"    zero4(acc);\n"
"    for (int kk = 0; kk < nb; kk++) {\n"
"        if (kk) __syncthreads();  // every read of the k-block kk - 1 is done\n"
"        get_block(Xq, qb, ld, L, D, kk, scale);\n"
"        get_block(Xk, kb, ld, L, D, kk, 1.f);\n"
"        get_ws(Xh, ws_tile(ws, XS_H(kk, j), BH, nc, bh, ci));\n"
"        __syncthreads();\n"
"        MM(p, AR(Xq), BT(Xk), (const float *)0);\n"
"        MM(acc, AR(Xq), BR(Xh), (const float *)0);\n"
"    }\n"
"    mask_g(Ps, p, gam, 0);\n"
"    scale_rows(acc, eg);\n"
"    __syncthreads();  // P complete\n"
"    MM(acc, AR(Ps), BR(Us), (const float *)0);\n"
"    store_rows_bf16(o + row0 * H * D + h * D + CH * j, (u64)H * D, L, acc, 1.f, D - CH * j);\n"
"}\n"
"#endif\n"
"\n"
"#if GDN_IN(8)\n"
"// In reverse chunk order per (b, h, v-block j = blockIdx.y): dH_{kk,j} -> ws, from\n"
"// dU_j = dU_loc_j + diag(dec) sum_kk K_kk dH_{kk,j}, dH_{kk,j} <- el dH_{kk,j} + Q_kk^T diag(eg) dO_j - W_kk^T dU_j.\n"
"// 8 tiles: the nb dH blocks, dO_j, dU_j, two staging tiles (K_kk; then Q_kk and W_kk).\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_dstate_x(float *ws, const bf16 *q, const bf16 *k, int ld,\n"
"                                                              const bf16 *dout, const float *g, const float *beta,\n"
"                                                              int T, int H, int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *dHb = sm, *dOs = dHb + XNB * TILE, *dUs = dOs + TILE, *X = dUs + TILE, *Y = X + TILE, *gam = Y + TILE,\n"
"          *bet = gam + CH, *eg = bet + CH, *dec = eg + CH;\n"
"    const int bh = blockIdx.x, j = blockIdx.y, BH = gridDim.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    const int nb = (D + CH - 1) / CH;\n"
"    const u64 ldo = (u64)H * D;\n"
"    for (int kk = 0; kk < nb; kk++) load_tile(dHb + kk * TILE, (const float *)0, CH);\n"
"    for (int ci = nc - 1; ci >= 0; ci--) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D;\n"
"        float du[4][4], acc[4][4], rw[16];\n"
"        u32 rk[8], ro[8];\n"
"        fetch_tile(rk, kb, ld, L, D);\n"
"        fetch_tile(ro, dout + row0 * ldo + h * D + CH * j, ldo, L, D - CH * j);\n"
"        load_acc(du, ws_tile(ws, XS_DU(j), BH, nc, bh, ci));\n"
"        __syncthreads();  // the later chunk is done with every tile\n"
"        for (int kk = 0; kk < nb; kk++) save_tile(ws_tile(ws, XS_DH(kk, j), BH, nc, bh, ci), dHb + kk * TILE, CH);\n"
"        put_tile(dOs, ro, 1.f);\n"
"        load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"        zero4(acc);\n"
"        for (int kk = 0; kk < nb; kk++) {\n"
"            if (kk) __syncthreads();  // every read of K_{kk-1} is done\n"
"            put_tile(X, rk, 1.f);\n"
"            __syncthreads();\n"
"            if (kk + 1 < nb) fetch_tile(rk, kb + CH * (kk + 1), ld, L, D - CH * (kk + 1));\n"
"            else fetch_tile(rk, qb, ld, L, D);\n"
"            MM(acc, AR(X), BR(dHb + kk * TILE), (const float *)0);\n"
"        }\n"
"        fetch_state(rw, ws_tile(ws, XS_W(0), BH, nc, bh, ci));\n"
"        scale_rows(acc, dec);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) du[i][e] += acc[i][e];\n"
"        store4(dUs, du);\n"
"        const float el = eg[CH - 1];\n"
"        for (int kk = 0; kk < nb; kk++) {\n"
"            __syncthreads();  // dU_j complete; every read of dH, of K and of the staging tiles is done\n"
"            put_tile(X, rk, scale);\n"
"            put_state(Y, rw);\n"
"            __syncthreads();\n"
"            if (kk + 1 < nb) {\n"
"                fetch_tile(rk, qb + CH * (kk + 1), ld, L, D - CH * (kk + 1));\n"
"                fetch_state(rw, ws_tile(ws, XS_W(kk + 1), BH, nc, bh, ci));\n"
"            }\n"
"            float t[4][4];\n"
"            zero4(acc);\n"
"            zero4(t);\n"
"            MM(acc, AT(X), BR(dOs), eg);  // Q_kk^T diag(eg) dO_j\n"
"            MM(t, AT(Y), BR(dUs), (const float *)0);  // W_kk^T dU_j\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) acc[i][e] -= t[i][e];\n"
"            decay_add(dHb + kk * TILE, el, acc);\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// One block per chunk: the chunk's gradients in the three phases above, from ws (H, dH, U, T)\n"
"// and its inputs. 11 tiles: T, A~, P (later dD, then dKK) throughout; phase 1 dO_j, U_j, dU_j,\n"
"// V_j and two staging tiles (K_kk, dH_{kk,j}); phase 2 K_kk, Q_kk, dO_j, U_j, dU_j, H_{kk,j},\n"
"// dH_{kk,j}, dW_kk; phase 3 dT, dT T^T, K_kk in three of those.\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_bwd_local_x(bf16 *dq, bf16 *dk, bf16 *dv, float *dg,\n"
"                                                                 float *dbeta, const bf16 *dout, float *ws,\n"
"                                                                 const bf16 *q, const bf16 *k, const bf16 *v, int ld,\n"
"                                                                 const float *g, const float *beta, int T, int H,\n"
"                                                                 int D, float scale) {\n"
"    extern __shared__ __align__(16) float sm[];\n"
"    float *Ts = sm, *As = Ts + TILE, *Ps = As + TILE, *dOs = Ps + TILE, *Us = dOs + TILE, *dUs = Us + TILE,\n"
"          *Kx = dUs + TILE, *Qx = Kx + TILE, *Hx = Qx + TILE, *dHx = Hx + TILE, *dWx = dHx + TILE, *gam = dWx + TILE,\n"
"          *bet = gam + CH, *eg = bet + CH, *dec = eg + CH, *tmpv = dec + CH, *dgam = tmpv + CH,\n"
"          *dbet = dgam + DGAM_FLOATS;\n"
"    float *Vs = dWx;  // phase 1's V_j (dW_kk's tile comes later)\n"
"    const int ci = blockIdx.x, bh = blockIdx.y, BH = gridDim.y, b = bh / H, h = bh % H, nc = gridDim.x;\n"
"    const int nb = (D + CH - 1) / CH, t0 = ci * CH, L = min(CH, T - t0);\n"
"    const u64 row0 = (u64)b * T + t0, ldo = (u64)H * D;\n"
"    const bf16 *qb = q + row0 * ld + h * D, *kb = k + row0 * ld + h * D, *vb = v + row0 * ld + h * D,\n"
"               *ob = dout + row0 * ldo + h * D;\n"
"    get_ws(Ts, ws_tile(ws, XS_T, BH, nc, bh, ci));\n"
"    load_gates(gam, bet, eg, dec, g + row0 * H + h, beta + row0 * H + h, H, L);\n"
"    for (int e = threadIdx.x; e < DGAM_FLOATS + DBET_FLOATS; e += NT) dgam[e] = 0.f;  // dbet follows dgam\n"
"    float acc[4][4], p[4][4], rd[2];\n"
"    // A~ and P over the k-blocks\n"
"    zero4(acc);\n"
"    zero4(p);\n"
"    for (int kk = 0; kk < nb; kk++) {\n"
"        if (kk) __syncthreads();  // every read of the k-block kk - 1 is done\n"
"        get_block(Kx, kb, ld, L, D, kk, 1.f);\n"
"        get_block(Qx, qb, ld, L, D, kk, scale);\n"
"        __syncthreads();\n"
"        MM(acc, AR(Kx), BT(Kx), (const float *)0);\n"
"        MM(p, AR(Qx), BT(Kx), (const float *)0);\n"
"    }\n"
"    mask_g(As, acc, gam, 1);\n"
"    mask_g(Ps, p, gam, 0);\n"
"    if (threadIdx.x < CH) tmpv[threadIdx.x] = bet[threadIdx.x] * eg[threadIdx.x];\n"
"    // phase 1, per v-block: dU_j, dV_j; dP and dT_v summed over j (p, dt)\n"
"    float dt[4][4];\n"
"    zero4(p);\n"
"    zero4(dt);\n"
"    for (int j = 0; j < nb; j++) {\n"
"        __syncthreads();  // the last v-block (or A~, P's products) is done with every staging tile\n"
"        get_block(dOs, ob, ldo, L, D, j, 1.f);\n"
"        get_block(Vs, vb, ld, L, D, j, 1.f);\n"
"        get_ws(Us, ws_tile(ws, XS_U(j), BH, nc, bh, ci));\n"
"        // (e) diag(dec) sum_kk K_kk dH_{kk,j}: dgam_r -= that_r . U_r (and its sum onto row 63)\n"
"        zero4(acc);\n"
"        for (int kk = 0; kk < nb; kk++) {\n"
"            if (kk) __syncthreads();  // every read of K_{kk-1}, dH_{kk-1,j} is done\n"
"            get_block(Kx, kb, ld, L, D, kk, 1.f);\n"
"            get_ws(dHx, ws_tile(ws, XS_DH(kk, j), BH, nc, bh, ci));\n"
"            __syncthreads();\n"
"            MM(acc, AR(Kx), BR(dHx), (const float *)0);\n"
"        }\n"
"        scale_rows(acc, dec);\n"
"        rowdot2(acc, Us, rd);\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) { ROW_ADD(dgam, own_row(2 * hh), -rd[hh]); ROW63_ADD(dgam, own_row(2 * hh), rd[hh]); }\n"
"        // (d) dU_j = that + P^T dO_j; dP += dO_j U_j^T\n"
"        MM(acc, AT(Ps), BR(dOs), (const float *)0);\n"
"        store4(dUs, acc);\n"
"        save_acc(ws_tile(ws, XS_DU(j), BH, nc, bh, ci), acc);  // (dU_loc_j is not read again)\n"
"        MM(p, AR(dOs), BT(Us), (const float *)0);\n"
"        __syncthreads();  // dU_j complete\n"
"        // (b) dY = T^T dU_j: dV_j = diag(beta) dY, dbeta_r += V_r . dY_r; dT_v += dU_j V_j^T\n"
"        bwd_dv(dv + row0 * ld + h * D + CH * j, ld, L, D - CH * j, Ts, dUs, Vs, bet, dbet);\n"
"        MM(dt, AR(dUs), BT(Vs), (const float *)0);\n"
"    }\n"
"    // dP = lower_incl(sum_j dO_j U_j^T); dgam from dP o P; dD = dP o G replaces P\n"
"    __syncthreads();  // every read of P is done\n"
"    bwd_dd(Ps, p, gam, dgam);\n"
"    // phase 2, per k-block\n"
"    float hdh = 0.f;\n"
"    for (int kk = 0; kk < nb; kk++) {\n"
"        float dQ[4][4], dK[4][4], dW[4][4];\n"
"        zero4(dQ);\n"
"        zero4(dK);\n"
"        zero4(dW);\n"
"        for (int j = 0; j < nb; j++) {\n"
"            __syncthreads();  // dD complete; every read of the last tiles is done\n"
"            if (j == 0) {\n"
"                get_block(Kx, kb, ld, L, D, kk, 1.f);\n"
"                get_block(Qx, qb, ld, L, D, kk, scale);\n"
"            }\n"
"            get_block(dOs, ob, ldo, L, D, j, 1.f);\n"
"            get_ws(Us, ws_tile(ws, XS_U(j), BH, nc, bh, ci));\n"
"            get_ws(dUs, ws_tile(ws, XS_DU(j), BH, nc, bh, ci));\n"
"            get_ws(Hx, ws_tile(ws, XS_H(kk, j), BH, nc, bh, ci));\n"
"            get_ws(dHx, ws_tile(ws, XS_DH(kk, j), BH, nc, bh, ci));\n"
"            __syncthreads();\n"
"            MM(dQ, AR(dOs), BT(Hx), (const float *)0);  // dO_j H_{kk,j}^T\n"
"            MM(dK, AR(Us), BT(dHx), (const float *)0);  // U_j dH_{kk,j}^T\n"
"            MM(dW, AR(dUs), BT(Hx), (const float *)0);  // dU_j H_{kk,j}^T\n"
"#pragma unroll\n"
"            for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"                for (int e = 0; e < 4; e++) {\n"
"                    const int r = own_row(e), c = own_col(i, e);\n"
"                    hdh += Hx[r * LDT + c] * dHx[r * LDT + c];\n"
"                }\n"
"        }\n"
"        // (d) dQ_kk = diag(eg) sum_j dO_j H^T (dgam_r += Q_r . that) + dD K_kk\n"
"        scale_rows(dQ, eg);\n"
"        rowdot2(dQ, Qx, rd);\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) ROW_ADD(dgam, own_row(2 * hh), rd[hh]);\n"
"        MM(dQ, AR(Ps), BR(Kx), (const float *)0);\n"
"        store_rows_bf16(dq + row0 * ld + h * D + CH * kk, ld, L, dQ, scale, D - CH * kk);\n"
"        // (e) dK_kk = diag(dec) sum_j U_j dH^T + dD^T Q_kk\n"
"        scale_rows(dK, dec);\n"
"        MM(dK, AT(Ps), BR(Qx), (const float *)0);\n"
"        // (c) dW_kk = -sum_j dU_j H^T\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) dW[i][e] = -dW[i][e];\n"
"        store4(dWx, dW);\n"
"        __syncthreads();  // dW_kk complete\n"
"        // (b) dX = T^T dW_kk: dK_kk += diag(beta eg) dX, dbeta_r += eg_r K_r.dX_r, dgam_r += beta_r eg_r K_r.dX_r\n"
"        zero4(acc);\n"
"        MM(acc, AT(Ts), BR(dWx), (const float *)0);\n"
"        rowdot2(acc, Kx, rd);\n"
"        if (QUAD0)\n"
"            for (int hh = 0; hh < 2; hh++) {\n"
"                const int r = own_row(2 * hh);\n"
"                ROW_ADD(dbet, r, eg[r] * rd[hh]);\n"
"                ROW_ADD(dgam, r, bet[r] * eg[r] * rd[hh]);\n"
"            }\n"
"        scale_rows(acc, tmpv);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) dK[i][e] += acc[i][e];\n"
"        save_acc(ws_tile(ws, XS_W(kk), BH, nc, bh, ci), dK);  // parked until dKK is known (W_kk is not read again)\n"
"        //     dT_w += dW_kk K_kk^T diag(eg)\n"
"        zero4(acc);\n"
"        MM(acc, AR(dWx), BT(Kx), (const float *)0);\n"
"#pragma unroll\n"
"        for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"            for (int e = 0; e < 4; e++) dt[i][e] += acc[i][e] * eg[own_col(i, e)];\n"
"    }\n"
"    hdh = block_sum(hdh);\n"
"    if (threadIdx.x == 0) X63_ADD(dgam, eg[CH - 1] * hdh);\n"
"    // phase 3: dT = (dT_w + dT_v) diag(beta); (a) dM = strict_lower(-T^T (dT T^T)); dKK = beta_r dM G replaces dD\n"
"#pragma unroll\n"
"    for (int i = 0; i < 4; i++)\n"
"#pragma unroll\n"
"        for (int e = 0; e < 4; e++) dt[i][e] *= bet[own_col(i, e)];\n"
"    __syncthreads();  // (block_sum's barriers already order it) every read of the phase-2 tiles is done\n"
"    store4(Us, dt);\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AR(Us), BT(Ts), (const float *)0);\n"
"    store4(dUs, acc);\n"
"    __syncthreads();\n"
"    zero4(acc);\n"
"    MM(acc, AT(Ts), BR(dUs), (const float *)0);\n"
"    bwd_dkk(Ps, acc, As, bet, gam, dgam, dbet);\n"
"    for (int kk = 0; kk < nb; kk++) {\n"
"        __syncthreads();  // dKK complete; every read of K_{kk-1} is done\n"
"        get_block(Kx, kb, ld, L, D, kk, 1.f);\n"
"        __syncthreads();\n"
"        float dK[4][4];\n"
"        load_acc(dK, ws_tile(ws, XS_W(kk), BH, nc, bh, ci));\n"
"        MM(dK, AR(Ps), BR(Kx), (const float *)0);\n"
"        MM(dK, AT(Ps), BR(Kx), (const float *)0);\n"
"        store_rows_bf16(dk + row0 * ld + h * D + CH * kk, ld, L, dK, 1.f, D - CH * kk);\n"
"    }\n"
"    __syncthreads();  // dgam, dbet complete\n"
"    store_dg_dbeta(dg, dbeta, dgam, dbet, row0, H, h, L);\n"
"}\n"
"#endif\n"
"#endif\n"
"#endif // GDN_IN(0) || GDN_IN(3) || GDN_IN(5) || GDN_IN(6) || GDN_IN(7) || GDN_IN(8)\n"
"#if GDN_IN(1) || GDN_IN(4) // the wide-head path: 1 its forward, 4 its backward\n"
"// ---- the wide-head path: D in (64, 256] (gdn_gen_fwd, gdn_gen_bwd) ----\n"
"// The tile kernels above hold a head in one 64-wide tile. A wider head runs here instead: a\n"
"// line-by-line port of attn/gdn.h's chunked reference (gdn_chunk_prep_, gdn_chunk_out_,\n"
"// gdn_chunk_bwd_) with the chunk's matrices in a per-(b, h) fp32 scratch in global memory,\n"
"// the products as plain fp32 loops over the block's threads (gen_mm). Correct for any D; slow\n"
"// next to the tile path (no tensor cores, operands from L1/L2), one block per (b, h).\n"
"// Chunk C = 64 as on the tile path; a chunk of L rows keeps the reference's [L][*] strides.\n"
"// Scratch a block (GEN_SC_FLOATS(D), the host's gdn_gen_sc_floats_ must match):\n"
"//   Hs [D][D] | K Q V W U [C][D] | At Tm P [C][C] | dU dQ dK dW dO X Y dX dY [C][D] |\n"
"//   dP dT [C][C] | tm [C][C + D] | dH0 dH [D][D] | gam bet vec dgam dbet [C] (+3C spare)\n"
"#define GEN_SC_FLOATS(D) (15 * CH * (D) + 6 * CH * CH + 3 * (D) * (D) + 8 * CH)\n"
"typedef struct {\n"
"    float *Hs, *K, *Q, *V, *W, *U, *At, *Tm, *P, *dU, *dQ, *dK, *dW, *dO, *X, *Y, *dX, *dY, *dP, *dT, *tm,\n"
"        *dH0, *dH, *gam, *bet, *vec, *dgam, *dbet;\n"
"} GenSc;\n"
"__device__ __forceinline__ GenSc gen_carve(float *sc, int D) {\n"
"    GenSc s;\n"
"    const int CD = CH * D, CC = CH * CH;\n"
"    s.Hs = sc; s.K = s.Hs + D * D; s.Q = s.K + CD; s.V = s.Q + CD; s.W = s.V + CD; s.U = s.W + CD;\n"
"    s.At = s.U + CD; s.Tm = s.At + CC; s.P = s.Tm + CC;\n"
"    s.dU = s.P + CC; s.dQ = s.dU + CD; s.dK = s.dQ + CD; s.dW = s.dK + CD; s.dO = s.dW + CD; s.X = s.dO + CD;\n"
"    s.Y = s.X + CD; s.dX = s.Y + CD; s.dY = s.dX + CD; s.dP = s.dY + CD; s.dT = s.dP + CC; s.tm = s.dT + CC;\n"
"    s.dH0 = s.tm + CC + CD; s.dH = s.dH0 + D * D; s.gam = s.dH + D * D; s.bet = s.gam + CH; s.vec = s.bet + CH;\n"
"    s.dgam = s.vec + CH; s.dbet = s.dgam + CH;\n"
"    return s;\n"
"}\n"
"// C[M][N] (= or, acc, +=) alpha op(A) op(B): A [M][K] row-major (ta: stored [K][M]), B [K][N]\n"
"// (tb: stored [N][K]); C aliases neither. Every thread calls it; a barrier ends it.\n"
"__device__ void gen_mm(float *C, const float *A, int ta, const float *B, int tb, int M, int K, int N, float alpha,\n"
"                       int acc) {\n"
"    for (int e = threadIdx.x; e < M * N; e += NT) {\n"
"        const int i = e / N, j = e - (e / N) * N;\n"
"        float s = 0.f;\n"
"        for (int p = 0; p < K; p++) s += (ta ? A[p * M + i] : A[i * K + p]) * (tb ? B[j * K + p] : B[p * N + j]);\n"
"        C[e] = (acc ? C[e] : 0.f) + alpha * s;\n"
"    }\n"
"    __syncthreads();\n"
"}\n"
"// dgam[r] += sum_j M[r][j], then dgam[j] -= sum_r M[r][j] (M [L][L]; one thread a row, then a\n"
"// column: each sum in a fixed order)\n"
"__device__ void gen_rowcol(float *dgam, const float *M, int L) {\n"
"    if (threadIdx.x < L) {\n"
"        float x = 0.f;\n"
"        for (int j = 0; j < L; j++) x += M[threadIdx.x * L + j];\n"
"        dgam[threadIdx.x] += x;\n"
"    }\n"
"    __syncthreads();\n"
"    if (threadIdx.x < L) {\n"
"        float x = 0.f;\n"
"        for (int r = 0; r < L; r++) x += M[r * L + threadIdx.x];\n"
"        dgam[threadIdx.x] -= x;\n"
"    }\n"
"    __syncthreads();\n"
"}\n"
"// the chunk's K, scale Q, V rows t0.. (L of them) and gates, then A~, P, T, W and U = U~ - W H0\n"
"// (gdn_chunk_prep_); H0 [D][D]\n"
"__device__ void gen_prep(const GenSc s, const float *H0, const bf16 *q, const bf16 *k, const bf16 *v, int ld,\n"
"                         const float *g, const float *beta, int H, int D, int L, float scale) {\n"
"    for (int e = threadIdx.x; e < L * D; e += NT) {\n"
"        const int r = e / D, i = e - (e / D) * D;\n"
"        s.K[e] = bf2f(k[(u64)r * ld + i]);\n"
"        s.Q[e] = bf2f(q[(u64)r * ld + i]) * scale;\n"
"        s.V[e] = bf2f(v[(u64)r * ld + i]);\n"
"    }\n"
"    if (threadIdx.x == 0) {\n"
"        float cum = 0.f;\n"
"        for (int r = 0; r < L; r++) {\n"
"            cum += g[(u64)r * H];\n"
"            s.gam[r] = cum;\n"
"            s.bet[r] = beta[(u64)r * H];\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"    gen_mm(s.At, s.K, 0, s.K, 1, L, D, L, 1.f, 0);\n"
"    gen_mm(s.P, s.Q, 0, s.K, 1, L, D, L, 1.f, 0);\n"
"    for (int e = threadIdx.x; e < L * L; e += NT) {\n"
"        const int r = e / L, j = e - (e / L) * L;\n"
"        const float G = j <= r ? __expf(s.gam[r] - s.gam[j]) : 0.f;\n"
"        s.At[e] *= j < r ? G : 0.f;\n"
"        s.P[e] *= G;\n"
"    }\n"
"    __syncthreads();\n"
"    if (threadIdx.x < L) {  // T = (I + diag(beta) A~)^-1, one column a thread\n"
"        const int col = threadIdx.x;\n"
"        for (int r = 0; r < L; r++) {\n"
"            float acc = 0.f;\n"
"            for (int j = col; j < r; j++) acc += s.At[r * L + j] * s.Tm[j * L + col];\n"
"            s.Tm[r * L + col] = (r == col ? 1.f : 0.f) - (r > col ? s.bet[r] * acc : 0.f);\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"    for (int e = threadIdx.x; e < L * D; e += NT) {\n"
"        const int r = e / D, i = e - (e / D) * D;\n"
"        float w = 0.f, u = 0.f;\n"
"        for (int j = 0; j <= r; j++) {\n"
"            const float t = s.Tm[r * L + j] * s.bet[j];\n"
"            w += t * __expf(s.gam[j]) * s.K[j * D + i];\n"
"            u += t * s.V[j * D + i];\n"
"        }\n"
"        s.W[e] = w;\n"
"        s.U[e] = u;\n"
"    }\n"
"    __syncthreads();\n"
"    gen_mm(s.U, s.W, 0, H0, 0, L, D, D, -1.f, 1);\n"
"}\n"
"// forward, one block per (b, h): o (may be NULL) and the state, as gdn_fwd's arguments; sc the\n"
"// blocks' scratch (GEN_SC_FLOATS(D) each); state NULL: zero start, the final state not kept\n"
"#if GDN_IN(1)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_gen_fwd(bf16 *o, float *state, float *hsave, const bf16 *q,\n"
"                                                             const bf16 *k, const bf16 *v, int ld, const float *g,\n"
"                                                             const float *beta, int T, int H, int D, float scale,\n"
"                                                             float *sc) {\n"
"    const int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH;\n"
"    const GenSc s = gen_carve(sc + (u64)bh * GEN_SC_FLOATS(D), D);\n"
"    float *Hs = state ? state + (u64)bh * D * D : s.Hs;\n"
"    if (!state)\n"
"        for (int e = threadIdx.x; e < D * D; e += NT) Hs[e] = 0.f;\n"
"    __syncthreads();\n"
"    for (int ci = 0; ci < nc; ci++) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0);\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        if (hsave)\n"
"            for (int e = threadIdx.x; e < D * D; e += NT) hsave[((u64)bh * nc + ci) * D * D + e] = Hs[e];\n"
"        gen_prep(s, Hs, q + row0 * ld + h * D, k + row0 * ld + h * D, v + row0 * ld + h * D, ld, g + row0 * H + h,\n"
"                 beta + row0 * H + h, H, D, L, scale);\n"
"        if (o)  // O = diag(e^gam) Q H0 + P U\n"
"            for (int e = threadIdx.x; e < L * D; e += NT) {\n"
"                const int r = e / D, j = e - (e / D) * D;\n"
"                float a = 0.f, c = 0.f;\n"
"                for (int i = 0; i < D; i++) a += s.Q[r * D + i] * Hs[i * D + j];\n"
"                for (int m = 0; m <= r; m++) c += s.P[r * L + m] * s.U[m * D + j];\n"
"                o[(row0 + r) * H * D + h * D + j] = f2bf(__expf(s.gam[r]) * a + c);\n"
"            }\n"
"        __syncthreads();  // every read of H0 is done\n"
"        const float gl = s.gam[L - 1], el = __expf(gl);\n"
"        for (int e = threadIdx.x; e < D * D; e += NT) {  // H <- e^gam_L H + K^T diag(dec) U\n"
"            const int i = e / D, j = e - (e / D) * D;\n"
"            float acc = 0.f;\n"
"            for (int m = 0; m < L; m++) acc += s.K[m * D + i] * __expf(gl - s.gam[m]) * s.U[m * D + j];\n"
"            Hs[e] = el * Hs[e] + acc;\n"
"        }\n"
"        __syncthreads();\n"
"    }\n"
"}\n"
"#endif\n"
"// backward, one block per (b, h), after gdn_gen_fwd's state pass put each chunk's initial state\n"
"// in hsave [BH][nc][D][D]: the chunks in reverse, gdn_chunk_bwd_'s terms in its order\n"
"#if GDN_IN(4)\n"
"extern \"C\" __global__ void __launch_bounds__(NT) gdn_gen_bwd(bf16 *dq, bf16 *dk, bf16 *dv, float *dg, float *dbeta,\n"
"                                                             const bf16 *dout, const float *hsave, const bf16 *q,\n"
"                                                             const bf16 *k, const bf16 *v, int ld, const float *g,\n"
"                                                             const float *beta, int T, int H, int D, float scale,\n"
"                                                             float *sc) {\n"
"    const int bh = blockIdx.x, b = bh / H, h = bh % H, nc = (T + CH - 1) / CH, DD = D * D;\n"
"    const GenSc s = gen_carve(sc + (u64)bh * GEN_SC_FLOATS(D), D);\n"
"    const u64 ldo = (u64)H * D;\n"
"    for (int e = threadIdx.x; e < DD; e += NT) s.dH[e] = 0.f;\n"
"    __syncthreads();\n"
"    for (int ci = nc - 1; ci >= 0; ci--) {\n"
"        const int t0 = ci * CH, L = min(CH, T - t0), LD = L * D, LL = L * L;\n"
"        const u64 row0 = (u64)b * T + t0;\n"
"        const float *H0 = hsave + ((u64)bh * nc + ci) * DD;\n"
"        gen_prep(s, H0, q + row0 * ld + h * D, k + row0 * ld + h * D, v + row0 * ld + h * D, ld, g + row0 * H + h,\n"
"                 beta + row0 * H + h, H, D, L, scale);\n"
"        const float gl = s.gam[L - 1], el = __expf(gl);\n"
"        for (int e = threadIdx.x; e < LD; e += NT) {\n"
"            const int r = e / D, j = e - (e / D) * D;\n"
"            s.dO[e] = bf2f(dout[(row0 + r) * ldo + h * D + j]);\n"
"        }\n"
"        if (threadIdx.x < L) { s.dgam[threadIdx.x] = 0.f; s.dbet[threadIdx.x] = 0.f; }\n"
"        __syncthreads();\n"
"        // (e) dU = diag(dec) K dH, dK = diag(dec) U dH^T, s_j = dU_j . U_j, dH0 = el dH\n"
"        gen_mm(s.dU, s.K, 0, s.dH, 0, L, D, D, 1.f, 0);\n"
"        gen_mm(s.dK, s.U, 0, s.dH, 1, L, D, D, 1.f, 0);\n"
"        if (threadIdx.x < L) {\n"
"            const int j = threadIdx.x;\n"
"            const float dj = __expf(gl - s.gam[j]);\n"
"            float sj = 0.f;\n"
"            for (int i = 0; i < D; i++) {\n"
"                s.dU[j * D + i] *= dj;\n"
"                s.dK[j * D + i] *= dj;\n"
"                sj += s.dU[j * D + i] * s.U[j * D + i];\n"
"            }\n"
"            s.vec[j] = sj;\n"
"        }\n"
"        float hdh = 0.f;\n"
"        for (int e = threadIdx.x; e < DD; e += NT) { hdh += H0[e] * s.dH[e]; s.dH0[e] = el * s.dH[e]; }\n"
"        hdh = block_sum(hdh);  // (its barriers also publish vec)\n"
"        __syncthreads();\n"
"        if (threadIdx.x == 0) {\n"
"            for (int j = 0; j < L; j++) { s.dgam[L - 1] += s.vec[j]; s.dgam[j] -= s.vec[j]; }\n"
"            s.dgam[L - 1] += el * hdh;\n"
"        }\n"
"        __syncthreads();\n"
"        // (d) dQ = diag(e) dO H0^T, dgam_r += e_r (Q H0)_r . dO_r, dH0 += Q^T diag(e) dO,\n"
"        //     dU += P^T dO, dP = lower_incl(dO U^T) -> dD = dP o G, dQ += dD K, dK += dD^T Q\n"
"        gen_mm(s.dQ, s.dO, 0, H0, 1, L, D, D, 1.f, 0);\n"
"        gen_mm(s.tm, s.Q, 0, H0, 0, L, D, D, 1.f, 0);\n"
"        if (threadIdx.x < L) {\n"
"            const int r = threadIdx.x;\n"
"            const float er = __expf(s.gam[r]);\n"
"            float qd = 0.f;\n"
"            for (int i = 0; i < D; i++) {\n"
"                s.dQ[r * D + i] *= er;\n"
"                qd += s.tm[r * D + i] * s.dO[r * D + i];\n"
"                s.X[r * D + i] = er * s.dO[r * D + i];\n"
"            }\n"
"            s.dgam[r] += er * qd;\n"
"        }\n"
"        __syncthreads();\n"
"        gen_mm(s.dH0, s.Q, 1, s.X, 0, D, L, D, 1.f, 1);\n"
"        gen_mm(s.dU, s.P, 1, s.dO, 0, L, L, D, 1.f, 1);\n"
"        gen_mm(s.dP, s.dO, 0, s.U, 1, L, D, L, 1.f, 0);\n"
"        for (int e = threadIdx.x; e < LL; e += NT) {\n"
"            const int r = e / L, j = e - (e / L) * L;\n"
"            s.tm[e] = j <= r ? s.dP[e] * s.P[e] : 0.f;\n"
"            s.dP[e] = j <= r ? s.dP[e] * __expf(s.gam[r] - s.gam[j]) : 0.f;\n"
"        }\n"
"        __syncthreads();\n"
"        gen_rowcol(s.dgam, s.tm, L);\n"
"        gen_mm(s.dQ, s.dP, 0, s.K, 0, L, L, D, 1.f, 1);\n"
"        gen_mm(s.dK, s.dP, 1, s.Q, 0, L, L, D, 1.f, 1);\n"
"        // (c) dW = -dU H0^T, dH0 -= W^T dU\n"
"        gen_mm(s.dW, s.dU, 0, H0, 1, L, D, D, -1.f, 0);\n"
"        gen_mm(s.dH0, s.W, 1, s.dU, 0, D, L, D, -1.f, 1);\n"
"        // (b) X = diag(beta e) K, Y = diag(beta) V; dX = T^T dW, dY = T^T dU\n"
"        for (int e = threadIdx.x; e < LD; e += NT) {\n"
"            const int r = e / D;\n"
"            s.X[e] = s.bet[r] * __expf(s.gam[r]) * s.K[e];\n"
"            s.Y[e] = s.bet[r] * s.V[e];\n"
"        }\n"
"        __syncthreads();\n"
"        gen_mm(s.dX, s.Tm, 1, s.dW, 0, L, L, D, 1.f, 0);\n"
"        gen_mm(s.dY, s.Tm, 1, s.dU, 0, L, L, D, 1.f, 0);\n"
"        if (threadIdx.x < L) {\n"
"            const int r = threadIdx.x;\n"
"            const float er = __expf(s.gam[r]), bb = s.bet[r];\n"
"            float kx = 0.f, vy = 0.f;\n"
"            for (int i = 0; i < D; i++) {\n"
"                kx += s.K[r * D + i] * s.dX[r * D + i];\n"
"                vy += s.V[r * D + i] * s.dY[r * D + i];\n"
"                s.dK[r * D + i] += bb * er * s.dX[r * D + i];\n"
"                dv[(row0 + r) * ld + h * D + i] = f2bf(bb * s.dY[r * D + i]);\n"
"            }\n"
"            s.dbet[r] = er * kx + vy;\n"
"            s.dgam[r] += bb * er * kx;\n"
"        }\n"
"        __syncthreads();\n"
"        gen_mm(s.dT, s.dW, 0, s.X, 1, L, D, L, 1.f, 0);\n"
"        gen_mm(s.dT, s.dU, 0, s.Y, 1, L, D, L, 1.f, 1);\n"
"        // (a) dM = strict_lower(-T^T dT T^T); dbeta, dgam from dM o A~; dKK = beta_r dM G\n"
"        gen_mm(s.tm, s.dT, 0, s.Tm, 1, L, L, L, 1.f, 0);\n"
"        gen_mm(s.dP, s.Tm, 1, s.tm, 0, L, L, L, -1.f, 0);\n"
"        if (threadIdx.x < L) {\n"
"            const int r = threadIdx.x;\n"
"            float sb = 0.f;\n"
"            for (int j = 0; j < L; j++) {\n"
"                const float dm = j < r ? s.dP[r * L + j] : 0.f, a = s.At[r * L + j];\n"
"                sb += dm * a;\n"
"                s.tm[r * L + j] = s.bet[r] * dm * a;\n"
"                s.dP[r * L + j] = j < r ? s.bet[r] * dm * __expf(s.gam[r] - s.gam[j]) : 0.f;\n"
"            }\n"
"            s.dbet[r] += sb;\n"
"        }\n"
"        __syncthreads();\n"
"        gen_rowcol(s.dgam, s.tm, L);\n"
"        gen_mm(s.dK, s.dP, 0, s.K, 0, L, L, D, 1.f, 1);\n"
"        gen_mm(s.dK, s.dP, 1, s.K, 0, L, L, D, 1.f, 1);\n"
"        // out: dq = scale dQ, dk, dg = reverse cumsum of dgam, dbeta; dH <- dH0\n"
"        for (int e = threadIdx.x; e < LD; e += NT) {\n"
"            const int r = e / D, i = e - (e / D) * D;\n"
"            dq[(row0 + r) * ld + h * D + i] = f2bf(scale * s.dQ[e]);\n"
"            dk[(row0 + r) * ld + h * D + i] = f2bf(s.dK[e]);\n"
"        }\n"
"        if (threadIdx.x == 0) {\n"
"            float acc = 0.f;\n"
"            for (int r = L - 1; r >= 0; r--) {\n"
"                acc += s.dgam[r];\n"
"                dg[(row0 + r) * H + h] = acc;\n"
"                dbeta[(row0 + r) * H + h] = s.dbet[r];\n"
"            }\n"
"        }\n"
"        for (int e = threadIdx.x; e < DD; e += NT) s.dH[e] = s.dH0[e];\n"
"        __syncthreads();\n"
"    }\n"
"}\n"
"#endif\n"
"#endif // GDN_IN(1) || GDN_IN(4)\n"
"// ---- the small ops (GDN_PART 2) ----\n"
"#if GDN_IN(2)\n"
"// ---- the block's small ops (bf16 activations, fp32 statistics and weight gradients) ----\n"
"__device__ __forceinline__ float sigm(float x) { return 1.f / (1.f + __expf(-x)); }\n"
"__device__ __forceinline__ float softplus(float x) { return x > 20.f ? x : log1pf(__expf(x)); }\n"
"\n"
"// The short causal conv: one thread per channel walks a slab of CONV_ROWS rows, keeping the\n"
"// last 8 inputs (and, backward, the last 8 dpre) in registers, right-aligned: xw[7] is row n,\n"
"// xw[7 - d] row n - d. Each input is loaded and each silu' computed once a row; taps that\n"
"// would reach into another sequence are masked by the row's time t (rows are sequence-major).\n"
"#define CONV_ROWS 128\n"
"// pre = sum_j w[j] x_{t-K+1+j}, out = silu(pre): pre, out [N, Ch]; in [N, in_ld]; w [Ch, K]\n"
"extern \"C\" __global__ void gdn_conv_fwd(bf16 *pre, bf16 *out, const bf16 *in, int in_ld, const bf16 *w,\n"
"                                        int N, int T, int Ch, int K) {\n"
"    const int c = blockIdx.x * blockDim.x + threadIdx.x;\n"
"    if (c >= Ch) return;\n"
"    const int n0 = blockIdx.y * CONV_ROWS, n1 = min(N, n0 + CONV_ROWS);\n"
"    float wr[8], xw[8];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 8; i++) {\n"
"        wr[i] = i >= 8 - K ? bf2f(w[(u64)c * K + i - (8 - K)]) : 0.f;  // weighs row n - (7 - i)\n"
"        const int m = n0 - 8 + i;  // the halo before the slab, one place early (the loop shifts first)\n"
"        xw[i] = m >= 0 && i > 0 ? bf2f(in[(u64)m * in_ld + c]) : 0.f;\n"
"    }\n"
"    int t = n0 % T;\n"
"    for (int n = n0; n < n1; n++) {\n"
"#pragma unroll\n"
"        for (int i = 0; i < 7; i++) xw[i] = xw[i + 1];\n"
"        xw[7] = bf2f(in[(u64)n * in_ld + c]);\n"
"        float acc = 0.f;\n"
"#pragma unroll\n"
"        for (int i = 0; i < 8; i++)\n"
"            if (t >= 7 - i) acc += wr[i] * xw[i];\n"
"        pre[(u64)n * Ch + c] = f2bf(acc);\n"
"        out[(u64)n * Ch + c] = f2bf(acc * sigm(acc));\n"
"        if (++t == T) t = 0;\n"
"    }\n"
"}\n"
"// The backward in one pass over the slab (plus K - 1 rows of look-ahead):\n"
"//   dpre_n = dout_n silu'(pre_n);  din_s = sum_j w[j] dpre_{s+K-1-j} (ready K - 1 rows late);\n"
"//   dw[c][j] += sum_t dpre_t x_{t-K+1+j} (per thread over its slab; then, with part, the slab's\n"
"//   sums to part[slab][c][j] for gdn_sum_parts (fixed order), else one atomicAdd per tap)\n"
"extern \"C\" __global__ void gdn_conv_bwd(bf16 *din, int in_ld, float *dw, float *part, const bf16 *dout,\n"
"                                        const bf16 *pre, const bf16 *in, const bf16 *w, int N, int T, int Ch,\n"
"                                        int K) {\n"
"    const int c = blockIdx.x * blockDim.x + threadIdx.x;\n"
"    if (c >= Ch) return;\n"
"    const int n0 = blockIdx.y * CONV_ROWS, n1 = min(N, n0 + CONV_ROWS);\n"
"    float wj[8], xw[8], dp[8], acc[8];\n"
"#pragma unroll\n"
"    for (int i = 0; i < 8; i++) {\n"
"        wj[i] = i < K ? bf2f(w[(u64)c * K + i]) : 0.f;  // wj[j] = w[c][j]\n"
"        const int m = n0 - 8 + i;\n"
"        xw[i] = m >= 0 && i > 0 ? bf2f(in[(u64)m * in_ld + c]) : 0.f;\n"
"        dp[i] = 0.f;\n"
"        acc[i] = 0.f;\n"
"    }\n"
"    int t = n0 % T;                   // time of row n\n"
"    int ts = ((n0 - (K - 1)) % T + T) % T;  // time of row s = n - (K - 1)\n"
"    for (int n = n0; n < n1 + K - 1; n++) {\n"
"#pragma unroll\n"
"        for (int i = 0; i < 7; i++) { xw[i] = xw[i + 1]; dp[i] = dp[i + 1]; }\n"
"        float d = 0.f;\n"
"        if (n < N) {\n"
"            const float p = bf2f(pre[(u64)n * Ch + c]), sg = sigm(p);\n"
"            d = bf2f(dout[(u64)n * Ch + c]) * sg * (1.f + p * (1.f - sg));\n"
"            xw[7] = bf2f(in[(u64)n * in_ld + c]);\n"
"        }\n"
"        dp[7] = d;\n"
"        if (n < n1)  // dw: tap j pairs dpre_n with x_{n-K+1+j} = xw[8-K+j]\n"
"#pragma unroll\n"
"            for (int i = 0; i < 8; i++)\n"
"                if (i >= 8 - K && t >= 7 - i) acc[i] += d * xw[i];\n"
"        const int s = n - (K - 1);\n"
"        if (s >= n0) {  // din_s: tap j reads dpre_{n-j} = dp[7-j], if still in s's sequence\n"
"            float x = 0.f;\n"
"#pragma unroll\n"
"            for (int j = 0; j < 8; j++)\n"
"                if (j < K && ts + K - 1 - j < T) x += wj[j] * dp[7 - j];\n"
"            din[(u64)s * in_ld + c] = f2bf(x);\n"
"        }\n"
"        if (++t == T) t = 0;\n"
"        if (++ts == T) ts = 0;\n"
"    }\n"
"    float *dst = part ? part + (u64)blockIdx.y * Ch * K : dw;\n"
"#pragma unroll\n"
"    for (int i = 0; i < 8; i++)\n"
"        if (i >= 8 - K) {\n"
"            if (part) dst[(u64)c * K + i - (8 - K)] = acc[i];\n"
"            else atomicAdd(&dst[(u64)c * K + i - (8 - K)], acc[i]);\n"
"        }\n"
"}\n"
"\n"
"// dst[i] += sum over p of part[p][i] (n outputs, nparts parts), the same order every run:\n"
"// warp w of the block adds the parts p = w, w + nw, ... in turn for 32 consecutive outputs\n"
"// (coalesced), then warp 0 adds the nw warp sums in warp order. Outputs i >= n0 go to\n"
"// dst1[i - n0] (two vectors from one partial array). The second pass of the weight\n"
"// gradients whose blocks would otherwise atomicAdd in whatever order they finish.\n"
"extern \"C\" __global__ void gdn_sum_parts(float *dst, float *dst1, int n0, const float *part, int n, int nparts) {\n"
"    __shared__ float wsum[32][33];\n"
"    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5, i = blockIdx.x * 32 + lane;\n"
"    float s = 0.f;\n"
"    if (i < n)\n"
"#pragma unroll 4\n"
"        for (int p = w; p < nparts; p += nw) s += part[(u64)p * n + i];\n"
"    wsum[w][lane] = s;\n"
"    __syncthreads();\n"
"    if (w == 0 && i < n) {\n"
"        for (int v2 = 1; v2 < nw; v2++) s += wsum[v2][lane];\n"
"        if (i < n0) dst[i] += s;\n"
"        else dst1[i - n0] += s;\n"
"    }\n"
"}\n"
"\n"
"// per-head L2 norm in place, one warp per (row, head)\n"
"extern \"C\" __global__ void gdn_l2norm_fwd(bf16 *x, int ld, float *rn, int N, int nh, int D, float eps) {\n"
"    u64 wid = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;\n"
"    int lane = threadIdx.x & 31;\n"
"    if (wid >= (u64)N * nh) return;\n"
"    bf16 *p = x + (wid / nh) * ld + (wid % nh) * D;\n"
"    float ss = 0.f;\n"
"    for (int i = lane; i < D; i += 32) { float a = bf2f(p[i]); ss += a * a; }\n"
"    float r = rsqrtf(warp_sum(ss) + eps);\n"
"    for (int i = lane; i < D; i += 32) p[i] = f2bf(bf2f(p[i]) * r);\n"
"    if (lane == 0) rn[wid] = r;\n"
"}\n"
"// dx = rn (dy - y (y . dy)) in place on dy\n"
"extern \"C\" __global__ void gdn_l2norm_bwd(bf16 *dy, int ld, const bf16 *y, int y_ld, const float *rn, int N,\n"
"                                          int nh, int D) {\n"
"    u64 wid = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;\n"
"    int lane = threadIdx.x & 31;\n"
"    if (wid >= (u64)N * nh) return;\n"
"    bf16 *d = dy + (wid / nh) * ld + (wid % nh) * D;\n"
"    const bf16 *p = y + (wid / nh) * y_ld + (wid % nh) * D;\n"
"    float dot = 0.f;\n"
"    for (int i = lane; i < D; i += 32) dot += bf2f(p[i]) * bf2f(d[i]);\n"
"    dot = warp_sum(dot);\n"
"    float r = rn[wid];\n"
"    for (int i = lane; i < D; i += 32) d[i] = f2bf(r * (bf2f(d[i]) - bf2f(p[i]) * dot));\n"
"}\n"
"\n"
"extern \"C\" __global__ void gdn_gates_fwd(float *g, float *beta, const bf16 *a, const bf16 *b, int ld,\n"
"                                         const bf16 *A_log, const bf16 *dt_bias, int N, int H) {\n"
"    GRID_STRIDE(i, (u64)N * H) {\n"
"        u64 n = i / H;\n"
"        int h = (int)(i % H);\n"
"        g[i] = -__expf(bf2f(A_log[h])) * softplus(bf2f(a[n * ld + h]) + bf2f(dt_bias[h]));\n"
"        beta[i] = sigm(bf2f(b[n * ld + h]));\n"
"    }\n"
"}\n"
"// blockIdx.y = head h; threads over rows; per block, sums for dA_log[h] and ddt_bias[h]: with\n"
"// part, to part[block][h] and part[block][H + h] for gdn_sum_parts, else one atomicAdd each\n"
"extern \"C\" __global__ void gdn_gates_bwd(bf16 *da, bf16 *db, int ld, float *dA_log, float *ddt, float *part,\n"
"                                         const float *dg, const float *dbeta, const bf16 *a, const bf16 *b,\n"
"                                         const bf16 *A_log, const bf16 *dt_bias, int N, int H) {\n"
"    int h = blockIdx.y;\n"
"    float ea = __expf(bf2f(A_log[h])), dtb = bf2f(dt_bias[h]), sA = 0.f, sD = 0.f;\n"
"    for (u64 n = (u64)blockIdx.x * blockDim.x + threadIdx.x; n < (u64)N; n += (u64)gridDim.x * blockDim.x) {\n"
"        u64 j = n * H + h;\n"
"        float z = bf2f(a[n * ld + h]) + dtb, d = dg[j];\n"
"        float dz = -d * ea * sigm(z);\n"
"        sA += d * -ea * softplus(z);\n"
"        sD += dz;\n"
"        da[n * ld + h] = f2bf(dz);\n"
"        float be = sigm(bf2f(b[n * ld + h]));\n"
"        db[n * ld + h] = f2bf(dbeta[j] * be * (1.f - be));\n"
"    }\n"
"    sA = block_sum(sA);\n"
"    sD = block_sum(sD);\n"
"    if (threadIdx.x == 0) {\n"
"        if (part) { part[(u64)blockIdx.x * 2 * H + h] = sA; part[(u64)blockIdx.x * 2 * H + H + h] = sD; }\n"
"        else { atomicAdd(&dA_log[h], sA); atomicAdd(&ddt[h], sD); }\n"
"    }\n"
"}\n"
"\n"
"// gated RMSNorm per head: y = o rstd w silu(gate); one warp per (row, head), D <= 256\n"
"extern \"C\" __global__ void gdn_gnorm_fwd(bf16 *y, float *rstd, const bf16 *o, const bf16 *gate, int gate_ld,\n"
"                                         const bf16 *w, int N, int H, int D, float eps) {\n"
"    u64 wid = ((u64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;\n"
"    int lane = threadIdx.x & 31;\n"
"    if (wid >= (u64)N * H) return;\n"
"    const bf16 *x = o + wid * D, *z = gate + (wid / H) * gate_ld + (wid % H) * D;\n"
"    float ss = 0.f;\n"
"    for (int i = lane; i < D; i += 32) { float a = bf2f(x[i]); ss += a * a; }\n"
"    float r = rsqrtf(warp_sum(ss) / D + eps);\n"
"    for (int i = lane; i < D; i += 32) {\n"
"        float zz = bf2f(z[i]);\n"
"        y[wid * D + i] = f2bf(bf2f(x[i]) * r * bf2f(w[i]) * zz * sigm(zz));\n"
"    }\n"
"    if (lane == 0) rstd[wid] = r;\n"
"}\n"
"// warps stride over (row, head); dw partials per lane, summed over the block's warps in shared\n"
"// memory in warp order, then per block: with part, to part[block][i] for gdn_sum_parts, else\n"
"// one atomicAdd per element\n"
"extern \"C\" __global__ void gdn_gnorm_bwd(bf16 *d_o, bf16 *dgate, int gate_ld, float *dw, float *part,\n"
"                                         const bf16 *dy, const bf16 *o, const bf16 *gate, const bf16 *w,\n"
"                                         const float *rstd, int N, int H, int D) {\n"
"    __shared__ float wpart[8][256];  // head dims to 256: 8 entries a lane\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
"    float pw[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};\n"
"    u64 nw = (u64)gridDim.x * (blockDim.x >> 5);\n"
"    for (u64 wid = (u64)blockIdx.x * (blockDim.x >> 5) + warp; wid < (u64)N * H; wid += nw) {\n"
"        const bf16 *x = o + wid * D, *z = gate + (wid / H) * gate_ld + (wid % H) * D, *d = dy + wid * D;\n"
"        float r = rstd[wid], dot = 0.f;\n"
"#pragma unroll\n"
"        for (int q = 0; q < 8; q++) {\n"
"            int i = lane + 32 * q;\n"
"            if (i < D) {\n"
"                float zz = bf2f(z[i]), sg = sigm(zz), xi = bf2f(x[i]), wi = bf2f(w[i]), di = bf2f(d[i]);\n"
"                float dn = di * zz * sg;\n"
"                dgate[(wid / H) * gate_ld + (wid % H) * D + i] = f2bf(di * xi * r * wi * sg * (1.f + zz * (1.f - sg)));\n"
"                dot += xi * wi * dn;\n"
"                pw[q] += dn * xi * r;\n"
"            }\n"
"        }\n"
"        dot = warp_sum(dot) / D;\n"
"#pragma unroll\n"
"        for (int q = 0; q < 8; q++) {\n"
"            int i = lane + 32 * q;\n"
"            if (i < D) {\n"
"                float zz = bf2f(z[i]), xi = bf2f(x[i]), wi = bf2f(w[i]);\n"
"                float dn = bf2f(d[i]) * zz * sigm(zz);\n"
"                d_o[wid * D + i] = f2bf(r * wi * dn - xi * r * r * r * dot);\n"
"            }\n"
"        }\n"
"    }\n"
"#pragma unroll\n"
"    for (int q = 0; q < 8; q++) wpart[warp][lane + 32 * q] = pw[q];\n"
"    __syncthreads();\n"
"    for (int i = threadIdx.x; i < D; i += blockDim.x) {\n"
"        float s = 0.f;\n"
"        for (int v2 = 0; v2 < (int)(blockDim.x >> 5); v2++) s += wpart[v2][i];\n"
"        if (part) part[(u64)blockIdx.x * D + i] = s;\n"
"        else atomicAdd(&dw[i], s);\n"
"    }\n"
"}\n"
"#endif // GDN_PART 2\n";

/* ---------------------------------------------------------------- host */

/* tuning.gdn_mma variant 0 selects the fp32 FMA products (slower, exact fp32), 1 (default) mma.sync */
static int gdn_mma_mode_(const Gpu *gpu) { return gpu_tuned(gpu->tuning.gdn_mma, 1) == 0 ? 0 : 1; }

/* the chunk-parallel kernels (gdn_prep, gdn_state, gdn_out / gdn_dstate, gdn_bwd_local) by
   default; tuning.gdn_par variant 0 selects the one-block-per-sequence gdn_fwd / gdn_bwd (H100,
   2026-11-23: 135M model 114K vs 92K tok/s; T = 8192 fwd+bwd 10.2 vs 11.2 ms) */
static int gdn_par_mode_(const Gpu *gpu) { return gpu_tuned(gpu->tuning.gdn_par, 1) != 0; }

/* The source's modules (GDN_PART), compiled in parallel: 0 the delta rule's forward on tiles
   (gdn_prep and gdn_state serve the backward too), 3 its backward, 1 and 4 the wide-head
   kernels gdn_gen_fwd (the backward's state pass too) and gdn_gen_bwd, 2 the small ops (conv,
   norms, gates, gdn_sum_parts), which depend on no other option. GDN_DET follows gpu->nondeterministic (0, the default: fixed-order sums). */
#define GDN_OPS_OPTS "-DGDN_PART=2"
static void gdn_opts_(char *opts, size_t n, const Gpu *gpu, int part) {
    if (part == 2) snprintf(opts, n, "%s", GDN_OPS_OPTS);
    else snprintf(opts, n, "-DGDN_PART=%d -DGDN_MMA=%d -DGDN_PAR=%d -DGDN_DET=%d", part, gdn_mma_mode_(gpu),
                  gdn_par_mode_(gpu), !gpu->nondeterministic);
}
/* which tiles a head wider than 64 runs on: 1 heads 65..128 (gdn_*_w; tuning.gdn_wtile 1, the
   default, or 2), 2 heads 129..256 (gdn_*_x; tuning.gdn_wtile 2 only, until the GPU checks have
   run them), else 0 (the wide-head fp32 kernels). Both need the chunk-parallel organization and
   a GPU with the backward's shared memory (an H100-class opt-in). */
static int gdn_wtile_(const Gpu *gpu, int D, int BH) {
    const int v = gpu_tuned(gpu->tuning.gdn_wtile, 1);
    if (!v || !gdn_par_mode_(gpu) || D <= GDN_GPU_D || BH > 65535 ||
        (gpu->smem_optin != 0 /* 0: no device, the compile check's lists */ && gpu->smem_optin < GDN_BWD_SMEM_BYTES))
        return 0;
    return D <= 2 * GDN_GPU_D ? 1 : v >= 2 ? 2 : 0;
}

/* the module of kernel `name`: the delta rule's forward kernels (part 0; the wide tiles' 5, past
   128 7), its backward's (3; 6, 8), the wide-head forward (1) and backward (4); the rest are the
   small ops (2). The chunk-parallel names come from gdn_par_k_, the launchers' own table */
static int gdn_part_(const char *name) {
    if (!strcmp(name, "gdn_fwd")) return 0;
    if (!strcmp(name, "gdn_bwd")) return 3;
    if (!strcmp(name, "gdn_gen_fwd")) return 1;
    if (!strcmp(name, "gdn_gen_bwd")) return 4;
    static const int fwd_part[3] = {0, 5, 7}, bwd_part[3] = {3, 6, 8};
    for (int w = 0; w < 3; w++) {
        const GdnParK *k = &gdn_par_k_[w];
        if (!strcmp(name, k->prep) || !strcmp(name, k->state) || !strcmp(name, k->out)) return fwd_part[w];
        if (!strcmp(name, k->dstate) || !strcmp(name, k->local)) return bwd_part[w];
    }
    return 2;
}
static CUfunction gdn_k_(Gpu *gpu, const char *name) {
    char opts[96];
    gdn_opts_(opts, sizeof opts, gpu, gdn_part_(name));
    return gpu_kernel(gpu, GDN_KERNELS_SRC, name, opts);
}

GPUDEF int gpu_gdn_kernels(const Gpu *gpu, int D, GpuKernelSpec *out, int max) {
    /* the delta rule's forward and backward modules: the 64-wide tiles' up to D 64, past it the
       wide-head kernels' (gpu_gdn_forward / _backward), or the wide tiles' (gdn_wtile_: up to
       128 by default, past it with tuning gdn_wtile=2); then the small ops' */
    const int wt = gdn_wtile_(gpu, D, 1), narrow = D <= GDN_GPU_D;
    const int parts[3] = {narrow ? 0 : wt == 2 ? 7 : wt ? 5 : 1, narrow ? 3 : wt == 2 ? 8 : wt ? 6 : 4, 2};
    char opts[96];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        gdn_opts_(opts, sizeof opts, gpu, parts[i]);
        n = gpu_kernel_spec_add(out, max, n, GDN_KERNELS_SRC, opts);
    }
    return n;
}

/* The weight gradients of the conv, gates and norm: each block's sums go to a partial array
   that gdn_sum_parts adds up in a fixed order (bit-reproducible), or, under
   gpu->nondeterministic, straight to the gradient by atomicAdd (NULL here: the kernels test
   it). The partials live in the Gpu's gdn scratch, which is free between calls (the forward
   uses it only inside gpu_gdn_forward); like the forward's use, it grows on the first eager
   call of a shape, so a CUDA graph captured after one eager step never allocates. */
static float *gdn_parts_(Gpu *gpu, size_t floats) {
    if (gpu->nondeterministic) return NULL;
    return gpu_scratch(gpu, &gpu->gdn_scratch, &gpu->gdn_scratch_bytes, floats * sizeof(float));
}
/* dst[i] += sum_p part[p][i] for i < n0, dst1[i - n0] likewise for n0 <= i < n; 32 outputs and
   32 warps over the parts a block */
static void gdn_sum_parts_(Gpu *gpu, float *dst, float *dst1, int n0, const float *part, int n, int nparts) {
    if (n <= 0) return;
    void *args[] = {&dst, &dst1, &n0, &part, &n, &nparts};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_sum_parts"), (unsigned)((n + 31) / 32), 1, 1, 1024, 1, 1, 0, args);
}

/* 1-D grid-stride launch over `work` items, 256 threads a block (as gpu.h's) */
static void gdn_launch1d_(Gpu *gpu, CUfunction f, size_t work, void **args) {
    if (work == 0) return;
    size_t blocks = (work + 255) / 256, cap = (size_t)gpu->sm_count * 32;
    if (blocks > cap) blocks = cap;
    gpu_launch(gpu, f, (unsigned)blocks, 1, 1, 256, 1, 1, 0, args);
}

static void gdn_check_shape_(Gpu *gpu, const char *who, int B, int T, int H, int D, unsigned smem) {
    if (B < 1 || T < 1 || H < 1 || D < GDN_GPU_DMIN || D > GDN_GPU_DMAX || D % 8) {
        fprintf(stderr, "%s: unsupported shape B=%d T=%d H=%d D=%d (the GPU kernels need B, T, H >= 1 and a head "
                "dim that is a multiple of 8 from %d to %d)\n", who, B, T, H, D, GDN_GPU_DMIN, GDN_GPU_DMAX);
        abort();
    }
    if (D <= GDN_GPU_D && smem > gpu->smem_optin) { /* the wide-head kernels use no shared tiles */
        fprintf(stderr, "%s: needs %u bytes of shared memory per block, the device allows %zu\n", who, smem,
                gpu->smem_optin);
        abort();
    }
}

/* the chunk kernels read bf16 pairs (4 bytes) and fp32 x4 (16 bytes) */
static void gdn_check_aligned_(const char *who, int ld, const void *const *p, int n) {
    uintptr_t u = 0;
    for (int i = 0; i < n; i++) u |= (uintptr_t)p[i];
    if ((u & 3) || (ld & 1)) {
        fprintf(stderr, "%s: q/k/v/o/dout/dq/dk/dv must be 4-byte aligned and ld even (ld %d)\n", who, ld);
        abort();
    }
}

static void gdn_fwd_launch_(Gpu *gpu, void *o, float *state, float *hsave, const void *q, const void *k,
                            const void *v, int ld, const float *gd, const float *beta, int B, int T, int H, int D,
                            float scale) {
    unsigned smem = GDN_FWD_SMEM_BYTES;
    void *args[] = {&o, &state, &hsave, &q, &k, &v, &ld, &gd, &beta, &T, &H, &D, &scale};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_fwd"), (unsigned)(B * H), 1, 1, 256, 1, 1, smem, args);
}

/* the wide-head forward (D > 64): o may be NULL, hsave (may be NULL) gets each chunk's initial
   state [B*H][nc][D][D]; its scratch is the Gpu's gdn scratch (grown on the first eager call of
   a shape, as the chunk-parallel forward's) */
static void gdn_gen_fwd_launch_(Gpu *gpu, void *o, float *state, float *hsave, const void *q, const void *k,
                                const void *v, int ld, const float *gd, const float *beta, int B, int T, int H, int D,
                                float scale) {
    float *sc = gpu_scratch(gpu, &gpu->gdn_scratch, &gpu->gdn_scratch_bytes,
                            (size_t)B * H * gdn_gen_sc_floats_(D) * sizeof(float));
    void *args[] = {&o, &state, &hsave, &q, &k, &v, &ld, &gd, &beta, &T, &H, &D, &scale, &sc};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_gen_fwd"), (unsigned)(B * H), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_gdn_forward(Gpu *gpu, void *o, float *state, const void *q, const void *k, const void *v, int ld,
                            const float *gd, const float *beta, int B, int T, int H, int D, float scale) {
    gdn_check_shape_(gpu, "gpu_gdn_forward", B, T, H, D, GDN_FWD_SMEM_BYTES);
    const void *p[] = {q, k, v, o};
    gdn_check_aligned_("gpu_gdn_forward", ld, p, 4);
    /* the chunk-parallel kernels put B*H in gridDim.y (at most 65535) */
    const int wide = gdn_wtile_(gpu, D, B * H);
    if (D > GDN_GPU_D && !wide) {
        gdn_gen_fwd_launch_(gpu, o, state, NULL, q, k, v, ld, gd, beta, B, T, H, D, scale);
        return;
    }
    if (gdn_par_mode_(gpu) && B * H <= 65535) { /* prep, state, out: H_c, W, U in the Gpu's gdn scratch */
        const GdnParK *kn = &gdn_par_k_[wide];
        unsigned nc = (unsigned)((T + GDN_GPU_D - 1) / GDN_GPU_D), bh = (unsigned)(B * H), nv = gdn_par_nv_(wide, D);
        float *ws = gpu_scratch(gpu, &gpu->gdn_scratch, &gpu->gdn_scratch_bytes,
                                gdn_par_slots_(wide, D, 0) * bh * nc * GDN_GPU_D * GDN_GPU_D * 4);
        const void *no_dout = NULL;
        void *a1[] = {&ws, &q, &k, &v, &ld, &no_dout, &gd, &beta, &T, &H, &D, &scale};
        gpu_launch(gpu, gdn_k_(gpu, kn->prep), nc, bh, 1, 256, 1, 1, kn->prep_smem, a1);
        void *a2[] = {&ws, &state, &k, &ld, &gd, &beta, &T, &H, &D};
        gpu_launch(gpu, gdn_k_(gpu, kn->state), bh, nv, 1, 256, 1, 1, kn->state_smem, a2);
        if (!o) return;
        void *a3[] = {&o, &ws, &q, &k, &ld, &gd, &beta, &T, &H, &D, &scale};
        gpu_launch(gpu, gdn_k_(gpu, kn->out), nc, bh, nv, 256, 1, 1, kn->out_smem, a3);
        return;
    }
    gdn_fwd_launch_(gpu, o, state, NULL, q, k, v, ld, gd, beta, B, T, H, D, scale);
}

GPUDEF void gpu_gdn_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *dg, float *dbeta, const void *dout,
                             const void *q, const void *k, const void *v, int ld, const float *gd, const float *beta,
                             int B, int T, int H, int D, float scale, float *ws) {
    gdn_check_shape_(gpu, "gpu_gdn_backward", B, T, H, D, GDN_BWD_SMEM_BYTES);
    const void *p[] = {q, k, v, dout, ws, dq, dk, dv};
    gdn_check_aligned_("gpu_gdn_backward", ld, p, 8);
    if ((uintptr_t)ws & 15) { fprintf(stderr, "gpu_gdn_backward: ws must be 16-byte aligned\n"); abort(); }
    const int wide = gdn_wtile_(gpu, D, B * H); /* a head wider than 64 on the tiles */
    if (D > GDN_GPU_D && !wide) { /* the wide-head path: a state pass into ws, then the chunks in reverse */
        gdn_gen_fwd_launch_(gpu, NULL, NULL, ws, q, k, v, ld, gd, beta, B, T, H, D, scale);
        float *sc = gpu->gdn_scratch; /* sized by the state pass just above */
        void *args[] = {&dq, &dk, &dv, &dg, &dbeta, &dout, &ws, &q, &k, &v, &ld, &gd, &beta, &T, &H, &D, &scale, &sc};
        gpu_launch(gpu, gdn_k_(gpu, "gdn_gen_bwd"), (unsigned)(B * H), 1, 1, 256, 1, 1, 0, args);
        return;
    }
    if (gdn_par_mode_(gpu) && B * H <= 65535) {
        const GdnParK *kn = &gdn_par_k_[wide];
        unsigned nc = (unsigned)((T + GDN_GPU_D - 1) / GDN_GPU_D), bh = (unsigned)(B * H), nv = gdn_par_nv_(wide, D);
        if (wide) /* (grown on demand like the forward's: a graph capture follows an eager call) */
            ws = gpu_scratch(gpu, &gpu->gdn_scratch, &gpu->gdn_scratch_bytes,
                             gdn_par_slots_(wide, D, 1) * bh * nc * GDN_GPU_D * GDN_GPU_D * 4);
        void *a1[] = {&ws, &q, &k, &v, &ld, &dout, &gd, &beta, &T, &H, &D, &scale};
        gpu_launch(gpu, gdn_k_(gpu, kn->prep), nc, bh, 1, 256, 1, 1, kn->prep_smem, a1);
        float *no_state = NULL;
        void *a2[] = {&ws, &no_state, &k, &ld, &gd, &beta, &T, &H, &D};
        gpu_launch(gpu, gdn_k_(gpu, kn->state), bh, nv, 1, 256, 1, 1, kn->state_smem, a2);
        void *a3[] = {&ws, &q, &k, &ld, &dout, &gd, &beta, &T, &H, &D, &scale};
        gpu_launch(gpu, gdn_k_(gpu, kn->dstate), bh, nv, 1, 256, 1, 1, kn->dstate_smem, a3);
        void *a4[] = {&dq, &dk, &dv, &dg, &dbeta, &dout, &ws, &q, &k, &v, &ld, &gd, &beta, &T, &H, &D, &scale};
        gpu_launch(gpu, gdn_k_(gpu, kn->local), nc, bh, 1, 256, 1, 1, kn->local_smem, a4);
        return;
    }
    /* the state pass: every chunk's initial state into ws */
    gdn_fwd_launch_(gpu, NULL, NULL, ws, q, k, v, ld, gd, beta, B, T, H, D, scale);
    unsigned smem = GDN_BWD_SMEM_BYTES;
    void *args[] = {&dq, &dk, &dv, &dg, &dbeta, &dout, &ws, &q, &k, &v, &ld, &gd, &beta, &T, &H, &D, &scale};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_bwd"), (unsigned)(B * H), 1, 1, 256, 1, 1, smem, args);
}

/* one thread per channel, CONV_ROWS rows a block (y) */
static void gdn_conv_grid_(int N, int Ch, unsigned *gx, unsigned *gy) {
    *gx = (unsigned)((Ch + 255) / 256);
    *gy = (unsigned)((N + GDN_CONV_ROWS - 1) / GDN_CONV_ROWS);
}

GPUDEF void gpu_gdn_conv_silu_forward(Gpu *gpu, void *pre, void *out, const void *in, int in_ld, const void *w, int N,
                                      int T, int Ch, int K) {
    if (K < 1 || K > 8) { fprintf(stderr, "gpu_gdn_conv_silu_forward: conv size %d (expected 1..8)\n", K); abort(); }
    unsigned gx, gy;
    gdn_conv_grid_(N, Ch, &gx, &gy);
    void *args[] = {&pre, &out, &in, &in_ld, &w, &N, &T, &Ch, &K};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_conv_fwd"), gx, gy, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_gdn_conv_silu_backward(Gpu *gpu, void *din, int in_ld, float *dw, const void *dout, const void *pre,
                                       const void *in, const void *w, int N, int T, int Ch, int K) {
    if (K < 1 || K > 8) { fprintf(stderr, "gpu_gdn_conv_silu_backward: conv size %d (expected 1..8)\n", K); abort(); }
    unsigned gx, gy;
    gdn_conv_grid_(N, Ch, &gx, &gy);
    float *part = gdn_parts_(gpu, (size_t)gy * Ch * K);
    void *args[] = {&din, &in_ld, &dw, &part, &dout, &pre, &in, &w, &N, &T, &Ch, &K};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_conv_bwd"), gx, gy, 1, 256, 1, 1, 0, args);
    if (part) gdn_sum_parts_(gpu, dw, NULL, Ch * K, part, Ch * K, (int)gy);
}

/* one warp per (row, head) */
static unsigned gdn_warp_blocks_(size_t rows) { return (unsigned)((rows * 32 + 255) / 256); }

GPUDEF void gpu_gdn_l2norm_forward(Gpu *gpu, void *x, int ld, float *rn, int N, int nh, int D, float eps) {
    void *args[] = {&x, &ld, &rn, &N, &nh, &D, &eps};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_l2norm_fwd"), gdn_warp_blocks_((size_t)N * nh), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_gdn_l2norm_backward(Gpu *gpu, void *dy, int ld, const void *y, int y_ld, const float *rn, int N, int nh,
                                    int D) {
    void *args[] = {&dy, &ld, &y, &y_ld, &rn, &N, &nh, &D};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_l2norm_bwd"), gdn_warp_blocks_((size_t)N * nh), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_gdn_gates_forward(Gpu *gpu, float *gd, float *beta, const void *a, const void *b, int ld,
                                  const void *A_log, const void *dt_bias, int N, int H) {
    void *args[] = {&gd, &beta, &a, &b, &ld, &A_log, &dt_bias, &N, &H};
    gdn_launch1d_(gpu, gdn_k_(gpu, "gdn_gates_fwd"), (size_t)N * H, args);
}

GPUDEF void gpu_gdn_gates_backward(Gpu *gpu, void *da, void *db, int ld, float *dA_log, float *ddt_bias,
                                   const float *dg, const float *dbeta, const void *a, const void *b, const void *A_log,
                                   const void *dt_bias, int N, int H) {
    unsigned bx = (unsigned)((N + 255) / 256);
    if (bx > 64) bx = 64;
    float *part = gdn_parts_(gpu, (size_t)bx * 2 * H);
    void *args[] = {&da, &db, &ld, &dA_log, &ddt_bias, &part, &dg, &dbeta, &a, &b, &A_log, &dt_bias, &N, &H};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_gates_bwd"), bx, (unsigned)H, 1, 256, 1, 1, 0, args);
    if (part) gdn_sum_parts_(gpu, dA_log, ddt_bias, H, part, 2 * H, (int)bx);
}

GPUDEF void gpu_gdn_gated_rmsnorm_forward(Gpu *gpu, void *y, float *rstd, const void *o, const void *gate, int gate_ld,
                                          const void *w, int N, int H, int D, float eps) {
    void *args[] = {&y, &rstd, &o, &gate, &gate_ld, &w, &N, &H, &D, &eps};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_gnorm_fwd"), gdn_warp_blocks_((size_t)N * H), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_gdn_gated_rmsnorm_backward(Gpu *gpu, void *do_, void *dgate, int gate_ld, float *dw, const void *dy,
                                           const void *o, const void *gate, const void *w, const float *rstd, int N,
                                           int H, int D) {
    if (D > GDN_GPU_DMAX) {
        fprintf(stderr, "gpu_gdn_gated_rmsnorm_backward: head dim %d (expected at most %d)\n", D, GDN_GPU_DMAX);
        abort();
    }
    unsigned blocks = gdn_warp_blocks_((size_t)N * H), cap = (unsigned)gpu->sm_count * 8;
    if (blocks > cap) blocks = cap;
    float *part = gdn_parts_(gpu, (size_t)blocks * D);
    void *args[] = {&do_, &dgate, &gate_ld, &dw, &part, &dy, &o, &gate, &w, &rstd, &N, &H, &D};
    gpu_launch(gpu, gdn_k_(gpu, "gdn_gnorm_bwd"), blocks, 1, 1, 256, 1, 1, 0, args);
    if (part) gdn_sum_parts_(gpu, dw, NULL, D, part, D, (int)blocks);
}

GPUDEF int gdn_kernels_compile_check(const char *arch) {
    int failed = 0;
    char *whole = NULL; /* variant 7's PTX (the default GDN_MMA 1, GDN_PAR 1, GDN_DET 1), all parts */
    for (int variant = 0; variant < 8; variant++) { /* GDN_MMA x GDN_PAR (0, 1) x GDN_DET */
        char opts[64], *log = NULL, *ptx = NULL;
        snprintf(opts, sizeof opts, "-DGDN_MMA=%d -DGDN_PAR=%d -DGDN_DET=%d", variant & 1, (variant >> 1) & 1,
                 variant >> 2);
        if (gpu_compile_ptx(GDN_KERNELS_SRC, opts, arch, variant == 7 ? &ptx : NULL, &log) != 0) {
            fprintf(stderr, "attn/gdn.cu.h %s %s:\n%s\n", arch, opts, log ? log : "");
            failed++;
        } else if (log && log[0]) {
            fprintf(stderr, "attn/gdn.cu.h %s %s (log):\n%s\n", arch, opts, log);
        }
        if (variant == 7) whole = ptx;
        free(log);
    }
    /* the modules gpu_gdn_kernels lists: three at D = 64 (the tiles' forward and backward, the
       small ops), three at D = 128 with gdn_wtile=0 (the wide-head forward and backward, the
       small ops), three at 128 by default (the wide tiles' forward and backward, the small ops)
       and three at 256 with gdn_wtile=2 (the tiles past 128, the small ops). Each module's
       entries must be the ones gdn_k_ looks for in it (gdn_part_), and the nine different
       modules together exactly the whole source's. */
    static Gpu g0, g1, g2; /* g0: gdn_wtile=0; g1: every tuning default (gdn_wtile 1); g2: gdn_wtile=2 */
    g0.tuning.gdn_wtile = GPU_TUNE_VARIANT(0);
    g2.tuning.gdn_wtile = GPU_TUNE_VARIANT(2);
    GpuKernelSpec sp[16];
    int n64 = gpu_gdn_kernels(&g1, 64, sp, 4), n128 = gpu_gdn_kernels(&g0, 128, sp + 4, 4);
    int n128w = gpu_gdn_kernels(&g1, 128, sp + 8, 4), n256x = gpu_gdn_kernels(&g2, 256, sp + 12, 4), nm = 0;
    const int listed[4] = {n64, n128, n128w, n256x};
    for (int i = 0; i < 16; i++) /* the different modules of the lists, in sp[0..nm) */
        if (i % 4 < listed[i / 4]) {
            int dup = 0;
            for (int j = 0; j < nm && !dup; j++) dup = !strcmp(sp[j].options, sp[i].options);
            if (!dup) sp[nm++] = sp[i];
        }
    int entries = 0, whole_entries = 0, misplaced = 0;
    for (int m = 0; m < nm; m++) {
        char *ptx = NULL, *log = NULL, name[64];
        const char *po = strstr(sp[m].options, "-DGDN_PART=");
        const int part = po ? atoi(po + 11) : -1;
        if (gpu_compile_ptx(sp[m].source, sp[m].options, arch, &ptx, &log) != 0) {
            fprintf(stderr, "attn/gdn.cu.h %s %s:\n%s\n", arch, sp[m].options, log ? log : "");
            failed++;
        }
        for (const char *e = ptx; (e = gpu_ptx_next_entry(e, name, sizeof name)); ) {
            entries++;
            if (gdn_part_(name) != part) {
                fprintf(stderr, "attn/gdn.cu.h %s: kernel %s is in module \"%s\", but gdn_k_ looks for it in "
                        "GDN_PART %d\n", arch, name, sp[m].options, gdn_part_(name));
                misplaced++;
            }
        }
        free(ptx); free(log);
    }
    whole_entries = gpu_ptx_entries(whole);
    free(whole);
    if (n64 != 3 || n128 != 3 || n128w != 3 || n256x != 3 || nm != 9 || misplaced || entries != whole_entries) {
        fprintf(stderr, "attn/gdn.cu.h %s: gpu_gdn_kernels lists %d module(s) at D 64, %d at D 128, %d with "
                "gdn_wtile and %d at D 256 with gdn_wtile=2 (expected 3 each, 9 different); their kernels: %d, %d "
                "misplaced (expected the whole source's %d, none misplaced)\n", arch, n64, n128, n128w, n256x, entries,
                misplaced, whole_entries);
        failed++;
    }
    return failed;
}

#endif /* GPU_IMPLEMENTATION */
