/* attn/decode.cu.h - GPU generation kernels: the one-token decode step of every room with a GPU
   decode (the dense room's split-K attention over its KV cache and its cache fill after a
   prefill; the MLA, MGA, Gated DeltaNet and DSA rooms' cache appends, attention and state
   updates: their gpu_decode slots in attn/mla.h, attn/mga.h, attn/gdn.h, attn/dsa.h) and the
   model's device sampler (smollm.h's GPU generation), as NVRTC source + launchers.

   USAGE
     #include "gpu.h"
     #include "attn/decode.cu.h"  // declarations; definitions with GPU_IMPLEMENTATION
   DEPENDS ON: gpu.h (included first; it decides the build). Declarations only with
   -DABLATE_CUDA; GPUDEF linkage and extern "C" as in gpu.h.

   CONTRACT (every kernel): B sequences decode one token at the position *d_pos (*pos), read on
   the device (so a captured CUDA graph of a step replays at every position); grids depend on B,
   the heads and the cache's capacity only. Activations and caches are bf16, running state and
   scores fp32. The projections around these kernels are the ops' matmuls (N = B); these kernels
   do what sits between them: appending to the cache, the attention or the state update over it,
   RoPE at the device position. Everything takes its sizes at run time: one compile serves every
   shape. Two NVRTC sources, each compiled on its first use: the dense room's and the sampler's
   (DECODE_SRC) and the other rooms' (DECODE_ROOMS_SRC, which tests/emu_decode runs on the CPU).

   THE DENSE CACHE (attn/dense.h's slot rules, the CPU cache's layout in bf16):
     cache [B][S][2][KV*hd] bf16: slot s of sequence b holds k (KV*hd) then v (KV*hd). The slot
     of position p is p for p < G, else G + (p - G) % ring (S = G + ring; a plain cache has G 0
     and ring S = cap; a window's ring is W; attn_dense_dec_ring gives G and ring). Slots
     0..min(p+1, S)-1 are filled at position p; the position a filled slot s >= G holds is the
     latest p' <= p with slot(p') = s.
     GpuDecShape carries the shape.

   API, THE DENSE ROOM AND THE SAMPLER (device pointers)
     gpu_dec_qkv(g, sh, qkv, q, cache, qn, kn, d_pos, B)
       qkv [B][(H + 2 KV) hd] bf16 (the fused projection) -> q [B][H][hd] fp32 (QK-norm with qn,
       then RoPE at *d_pos) and the token's rotated k (QK-norm with kn) and v into its slot.
       qn, kn NULL: no QK-norm.
     gpu_dec_attend(g, sh, att, q, cache, part, d_pos, B)
       att [B][H*hd] bf16 = softmax(q k^T / sqrt(hd)) v over the slots visible from *d_pos (the
       window and sparse pattern of sh), through part (fp32 scratch, gpu_dec_part_bytes).
     gpu_dec_fill(g, sh, cache, k, v, B, T)
       k, v [B][T][KV*hd] (the training forward's rotated keys and values) into the slots of
       positions 0..T-1 (a ring keeps the latest of those sharing a slot).
     gpu_dec_sample(g, tok, logits, d_pos, B, V, temperature, top_k, top_p, seed)
       tok[b] = the next token from logits [B][V] fp32: temperature <= 0 greedy (the first
       largest logit); else softmax(logits / temperature) restricted to the keys at or above the
       top_k-th largest probability (ties kept) and then to the most likely set reaching top_p of
       that mass, drawn with a counter-based hash of (seed, b, *d_pos): no RNG state, the same
       seed gives the same draws on replay.
     gpu_dec_advance(g, d_pos)  *d_pos += 1 (the step's last kernel).

   API, THE MLA, MGA, GDN AND DSA ROOMS (all return nothing; sizes are checked by the rooms
   before a cache is made)
     gpu_dec_mla_append   the normed latent and the rotated shared key into slot pos % S
     gpu_dec_mla_attend   per (b, h) and split of the rows (split-K: the rule of
                          gpu_dec_split_rows): absorbed query q~ = W_UK,h^T q_nope, scores over
                          the cached rows [cn | kpe], the split's softmax and attended latent;
                          then per (b, h) the splits merged and W_UV,h of the latent (the value
                          up-projection applied after the sum: the same product as W_o,h W_UV,h,
                          with o_proj as the matmul that follows). p: gpu_dec_split_floats(B,
                          H, S, r) floats
     gpu_dec_mla_qkn      MLA with QK-norm (the expanded form): per (b, h) the query and key rows
                          rotated over their rotary columns at pos and RMSNormed (fp32 q out),
                          the key and the zero-padded value into the dense cache's slot pos % S
                          (gpu_dec_attend then attends as for MHA of width qk)
     gpu_dec_mga_append   g, v and |g| per head into slot pos % S; the gate conv over its tail
     gpu_dec_mga_attend   per (b, h) and split of the rows: cosine rows over the cached g; then
                          the running sum S, the split's softmax and mix of the cached v; then
                          the splits merged (split-K as MLA's: three kernels, as the softmax's
                          scale needs every row's cosine). p: gpu_dec_split_floats(B, H, S,
                          hd + 1) floats
     gpu_dec_sigmoid_mul  a <- a * sigmoid(z) (MGA's output gate)
     gpu_dec_gdn_conv     the short conv over [tail | new row] + SiLU, then the tail shifts
     gpu_dec_gdn_state    per (b, h): the delta-rule update of the [D, D] fp32 state and the
                          readout
     gpu_dec_rope_rows    optional RMSNorm then RoPE at pos of rows of a bf16 tensor (in place)
     gpu_dec_put_rows     rows of a bf16 tensor into a cache at slot pos (fixed slot stride)
     gpu_dec_dsa_select   per b: the indexer's scores over the cached keys (dI 8, 16, 32, 64 or
                          128), the top k (larger score first, equal scores by lower position:
                          the CPU's rule, exactly), the chosen positions ascending into a list
                          and their count; scores: B * cap floats
     gpu_dec_dsa_attend   per (b, h) and split of the list: softmax attention over the listed
                          positions (GQA), split-K as MLA's; p: gpu_dec_split_floats(B, H, cap,
                          hd) floats
     gpu_dec_hier_pool    per b (hier): the new key and value into the running sum of their
                          block, the block's mean into its row when the block completes, and the
                          rows the step attends (complete blocks before the window, then the
                          window's ring slots) as a list for gpu_dec_dsa_attend
     gpu_dec_fill_rows    prefill (tuning.dec_prefill): rows of a [B, T] activation into a cache,
                          all positions at once: a ring of S slots (slot t % S, the last S
                          positions) or the last S rows in order (a conv tail); in 16-bit units,
                          so fp32 rows (MGA's |g| and running sum) travel as pairs. Sizes and
                          strides in those units; B, T, S, width >= 0 (S or width 0: nothing)

   gpu_decode_kernels_compile_check(arch)  NVRTC-compiles both sources for arch (no GPU needed:
     tests/nvrtc_compile); returns the failures, the compiler's log on stderr.

   DESIGN, DENSE. Split-K: block (b, kv head, chunk of DEC_CHUNK slots), all GROUP query heads of
   the kv head at once, so a GQA group reads its keys and values once; one thread scores one
   slot for every head, a warp per head reduces max and sum, lanes over (8 value columns, every
   RP-th slot) sum the weighted values and shuffles add the RP lanes (DEC_CHUNK_SRC). Every load
   is 16 bytes and 8 are in flight before their first use: at batch 1 the kernel is a chain of
   dependent loads, not a bandwidth question. Chunks past the filled slots exit at once and the combine reads only the
   filled ones: the grid is fixed by cap (graph-replayable), the work by the position. fp32
   scores, softmax and accumulation; bf16 cache.
   DESIGN, THE OTHER ROOMS. One block per (b, h, split of gpu_dec_split_rows rows), a warp per
   cached position for the scores (lanes across the row: coalesced), a thread per output element
   for the split's weighted sum, the scores in fp32 global scratch [B][H][cap] so no
   shared-memory limit binds the context; a merge kernel per room combines the splits
   (DEC_MERGE_SRC). DSA's top k: the indexer scores over many blocks (dsa_iscore: a warp reads
   whole key rows per load), then one block per sequence finds the k-th largest score's
   order-preserving integer key 4 bits a pass (8 passes over the scores, counters in registers,
   no atomics) and writes the keys above it and the ties at it, lowest positions first, in
   position order: O(10 n) reads per sequence and no sort. The one-block bisection it replaces
   (32 passes, scores computed by the same block with a row per thread) took 4.8 ms a layer at
   32768 cached positions on the H200.
*/
#ifndef ATTN_DECODE_CU_H
#define ATTN_DECODE_CU_H

#include "../gpu.h" /* first: it settles ABLATE_NO_CUDA (the GPU is opt-in) */
#include <stddef.h>

/* the split-K over up to n rows (mla_attend and dsa_attend; declared in the CPU-only build too,
   where the rooms size their GPU scratch): rows per split, 64 or more so that at most 128 splits
   cover n (the merge walks every split's partial), a multiple of 32; and the number of splits.
   Fixed by n (a cache's capacity), so a captured graph's grid holds at every position */
static inline int gpu_dec_split_rows(int n) {
    int ch = ((n + 127) / 128 + 31) / 32 * 32;
    return ch < 64 ? 64 : ch;
}
static inline int gpu_dec_splits(int n) { return n < 1 ? 1 : (n + gpu_dec_split_rows(n) - 1) / gpu_dec_split_rows(n); }
/* fp32 scratch of a split attention of B x H queries over up to n rows with outputs of width w:
   the scores [B][H][n], then the splits' partials [B][H][splits][w + 2] */
static inline size_t gpu_dec_split_floats(int B, int H, int n, int w) {
    return (size_t)B * H * ((size_t)n + (size_t)gpu_dec_splits(n) * (w + 2));
}

#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

#define DEC_CHUNK 128 /* cache slots per split-K block (one per thread) */

typedef struct {
    int H, KV, hd;              /* query heads, kv heads, head dim (a multiple of 8, <= 256) */
    int S, G, ring;             /* slots per sequence, global slots, ring length (S = G + ring) */
    int window, global, stride, dilation, block; /* the visibility pattern (ops.h's OpsPattern,
                                                    block resolved); window 0: full causal */
    float theta, eps;           /* RoPE base, QK-norm epsilon */
} GpuDecShape;

/* chunks of the split and the fp32 scratch of gpu_dec_attend for B sequences */
GPUDEF int gpu_dec_chunks(const GpuDecShape *sh);
GPUDEF size_t gpu_dec_part_bytes(const GpuDecShape *sh, int B);
GPUDEF void gpu_dec_qkv(Gpu *g, const GpuDecShape *sh, const void *qkv, float *q, void *cache, const void *qn,
                        const void *kn, const int *d_pos, int B);
GPUDEF void gpu_dec_attend(Gpu *g, const GpuDecShape *sh, void *att, const float *q, const void *cache, float *part,
                           const int *d_pos, int B);
GPUDEF void gpu_dec_fill(Gpu *g, const GpuDecShape *sh, void *cache, const void *k, const void *v, int B, int T);
GPUDEF void gpu_dec_sample(Gpu *g, int *tok, const float *logits, const int *d_pos, int B, int V, float temperature,
                           int top_k, float top_p, unsigned long long seed);
GPUDEF void gpu_dec_advance(Gpu *g, int *d_pos);

/* the MLA, MGA, GDN and DSA rooms */
GPUDEF void gpu_dec_mla_append(Gpu *gpu, void *cache, const void *kva, const void *gamma, const int *pos, int B, int S,
                               int r, int rope, float eps, float theta);
GPUDEF void gpu_dec_mla_attend(Gpu *gpu, void *ol, float *p, const void *cache, const void *qf, const void *wkvb,
                               const int *pos, int B, int H, int S, int window, int r, int rope, int nope, int v,
                               float scale, float theta);
GPUDEF void gpu_dec_mla_qkn(Gpu *gpu, float *q, void *cache, const void *qf, const void *kvb, const void *kva,
                            const void *qw, const void *kw, const int *pos, int B, int H, int S, int qk, int v, int r,
                            int rope, float eps, float theta);
GPUDEF void gpu_dec_mga_append(Gpu *gpu, void *cache, void *u, const void *g, const void *v, const void *x,
                               const void *wc, const int *pos, int B, int S, int H, int KV, int hd, int d, int gate);
GPUDEF void gpu_dec_mga_attend(Gpu *gpu, void *att, float *p, void *cache, const int *pos, int B, int S, int H, int KV,
                               int hd, int d, int window, float eps);
GPUDEF void gpu_dec_sigmoid_mul(Gpu *gpu, void *a, const void *z, int n);
GPUDEF void gpu_dec_gdn_conv(Gpu *gpu, void *qkv, void *tails, const void *proj, const void *w, int B, int P, int C,
                             int K);
GPUDEF void gpu_dec_gdn_state(Gpu *gpu, void *o, float *state, const void *qkv, const float *g, const float *beta,
                              int B, int H, int D, float scale);
GPUDEF void gpu_dec_rope_rows(Gpu *gpu, void *x, const void *norm_w, const int *pos, int rows, int width, int rd,
                              float eps, float theta);
GPUDEF void gpu_dec_put_rows(Gpu *gpu, void *cache, const void *src, const int *pos, int B, int width, int S,
                             size_t seq_stride, size_t slot_stride, size_t col);
GPUDEF void gpu_dec_dsa_select(Gpu *gpu, int *list, int *count, float *scores, const void *ikc, const void *iq,
                               const void *iw, const int *pos, int B, int cap, int HI, int dI, int topk);
GPUDEF void gpu_dec_dsa_attend(Gpu *gpu, void *att, float *p, const void *kvc, const void *q, const int *list,
                               const int *count, int B, int H, int KV, int hd, int cap);
GPUDEF void gpu_dec_fill_rows(Gpu *gpu, void *dst, const void *src, int B, int T, int S, int width, size_t src_ld,
                              size_t seq, size_t slot_ld, int ring);
GPUDEF void gpu_dec_hier_pool(Gpu *gpu, void *cache, float *run, int *list, int *count, const int *pos, int B,
                              int rows, int ring, int kvd, int window, int block);
/* NVRTC-compiles both sources for arch; the failures */
GPUDEF int gpu_decode_kernels_compile_check(const char *arch);

#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* ATTN_DECODE_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(ATTN_DECODE_IMPLEMENTATION_DONE)
#define ATTN_DECODE_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef KSRC_LINE
#define KSRC_STR_(x) #x
#define KSRC_STR(x) KSRC_STR_(x)
#define KSRC_LINE(file) "#line " KSRC_STR(__LINE__) " \"" file "\"\n"
#endif
#define DEC_STR_(x) #x
#define DEC_STR(x) DEC_STR_(x)

#define DEC_SAMPLE_THREADS 1024

/* the cache's slot rule and the visibility pattern, as device code: DECODE_SRC's and
   attn/decode_fused.cu.h's kernels both read the cache through them */
#define DEC_MASK_SRC \
"// the slot of position p\n" \
"__device__ __forceinline__ int dec_slot(int p, int G, int ring) { return p < G ? p : G + (p - G) % ring; }\n" \
"\n" \
"// ops.h's ops_pattern_visible: query t sees key s\n" \
"__device__ __forceinline__ bool dec_visible(int t, int s, int W, int glob, int stride, int dil, int pb) {\n" \
"    long d = (long)t - s;\n" \
"    if (s < 0 || d < 0) return false;\n" \
"    if (W <= 0 || d < W) return true;\n" \
"    if (s < glob) return true;\n" \
"    if (stride > 0 && s % stride >= stride - pb) return true;\n" \
"    if (dil >= 2 && d < (long)W * dil && (s / pb) % dil == dil - 1) return true;\n" \
"    return false;\n" \
"}\n"

/* the merge of split-K partials (o unnormalized | m | l, stride w + 2), as device code: the
   dense room's dec_combine, fz_attend's last chunk (dec_chunk_merge) and the other rooms'
   merges (DECODE_ROOMS_SRC) take it. Volatile reads: dec_chunk_merge reads partials that other
   blocks of its own launch wrote, where a cached copy could be stale; for the others they cost
   nothing measurable */
#define DEC_MERGE_SRC \
"// the largest m of the first nc partials\n" \
"__device__ __forceinline__ float parts_max(const volatile float *pt, int nc, int w) {\n" \
"    float M = NEG_INF;\n" \
"    for (int c = 0; c < nc; c++) M = fmaxf(M, pt[(u64)c * (w + 2) + w]);\n" \
"    return M;\n" \
"}\n" \
"// element e of their merge, normalized (0 when no partial saw a row); M: parts_max's\n" \
"__device__ __forceinline__ float parts_merged(const volatile float *pt, int nc, int w, int e, float M) {\n" \
"    float o = 0.0f, L = 0.0f;\n" \
"    for (int c = 0; c < nc; c++) {\n" \
"        const volatile float *q = pt + (u64)c * (w + 2);\n" \
"        float m = q[w];\n" \
"        if (m == NEG_INF) continue;\n" \
"        float f = __expf(m - M);\n" \
"        o += f * q[e];\n" \
"        L += f * q[w + 1];\n" \
"    }\n" \
"    return L > 0.0f ? o / L : 0.0f;\n" \
"}\n"

/* the dot product of two groups of 8 packed bf16 (one 16-byte load each), fp32, as device code:
   the fused step's GEMV and the persistent step's sum the same way with it */
#define DEC_DOT8_SRC \
"__device__ __forceinline__ float dec_dot8(uint4 a, uint4 b) {\n" \
"    u32 x[4] = {a.x, a.y, a.z, a.w}, y[4] = {b.x, b.y, b.z, b.w};\n" \
"    float s = 0.0f;\n" \
"    for (int k = 0; k < 4; k++)\n" \
"        s += __uint_as_float(x[k] << 16) * __uint_as_float(y[k] << 16) +\n" \
"             __uint_as_float(x[k] & 0xffff0000u) * __uint_as_float(y[k] & 0xffff0000u);\n" \
"    return s;\n" \
"}\n"

/* 8 packed bf16 (one 16-byte load) to fp32, as device code */
#define DEC_UNPACK_SRC \
"__device__ __forceinline__ void dec_unpack8(uint4 u, float *f) {\n" \
"    u32 w[4] = {u.x, u.y, u.z, u.w};\n" \
"    for (int k = 0; k < 4; k++) { f[2 * k] = __uint_as_float(w[k] << 16); f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u); }\n" \
"}\n"

/* one split-K chunk of the dense cache, as device code: dec_split and attn/decode_fused.cu.h's
   fz_attend both run it, so the two steps stay the same arithmetic. Loads are 16 bytes (8 bf16;
   the GPU's dense head dims are multiples of 8) and up to 8 are issued before their first use:
   at batch 1 a chunk is a chain of dependent loads, and its length is the kernel's time */
#define DEC_CHUNK_SRC \
"#define DC_GB 4 // query heads whose sums a thread holds in registers at once (4, not 8: see dec_split)\n" \
"#define DC_VU 8 // 16-byte loads in flight per thread\n" \
"// Block of CHUNK threads: the chunk of n slots from s0 (slot s's k row at base + s 2 kvd + kh hd,\n" \
"// its v row kvd further) for the kv head's GROUP query heads qs [GROUP][hd] (shared, scaled; qg\n" \
"// given: staged here from qg [GROUP][hd] fp32 times scale, after the first key loads are issued):\n" \
"// part rows pr + g * NC (stride hd + 2) get (o unnormalized, m, l). sc [GROUP][CHUNK], ms,\n" \
"// ls [GROUP]: shared scratch. Scores: a thread per slot, DC_GB heads per pass. Softmax: a warp per\n" \
"// head. Weighted sum: RP consecutive lanes per 8 value columns, slot j to lane j % RP, summed by\n" \
"// shuffles (every lane of a warp reaches them). The first DC_VU value loads are issued before\n" \
"// the softmax, which does not need them: they arrive while it runs.\n" \
"__device__ void dec_chunk_attend(float *qs, const float *qg, float scale, float *sc, float *ms, float *ls,\n" \
"                                 const bf16 *base, float *part, u64 pr, int NC, int p, int s0, int n, int GROUP,\n" \
"                                 int kvd, int kh, int hd, int G, int ring, int W, int glob, int stride, int dil,\n" \
"                                 int pb) {\n" \
"    int tid = threadIdx.x, h8 = hd / 8;\n" \
"    bool vis = false;\n" \
"    if (tid < n) {\n" \
"        int s = s0 + tid, ps;\n" \
"        if (s < G) ps = s;\n" \
"        else { int r = s - G; ps = G + r + ring * ((p - G - r) / ring); }\n" \
"        vis = dec_visible(p, ps, W, glob, stride, dil, pb);\n" \
"    }\n" \
"    const uint4 *k8 = (const uint4 *)(base + (u64)(s0 + (vis ? tid : 0)) * 2 * kvd + (u64)kh * hd);\n" \
"    uint4 kv[DC_VU];\n" \
"#pragma unroll\n" \
"    for (int u = 0; u < DC_VU; u++) if (vis && u < h8) kv[u] = k8[u];\n" \
"    if (qg) {\n" \
"        for (int i = tid; i < GROUP * hd; i += CHUNK) qs[i] = qg[i] * scale;\n" \
"        __syncthreads();\n" \
"    }\n" \
"    for (int g0 = 0; g0 < GROUP; g0 += DC_GB) {\n" \
"        float a[DC_GB];\n" \
"#pragma unroll\n" \
"        for (int x = 0; x < DC_GB; x++) a[x] = 0.0f;\n" \
"        if (vis)\n" \
"            for (int i0 = 0; i0 < h8; i0 += DC_VU) {\n" \
"                if (g0 > 0 || i0 > 0) // past the loads issued above (hd > 8 DC_VU, or GROUP > DC_GB)\n" \
"#pragma unroll\n" \
"                    for (int u = 0; u < DC_VU; u++) if (i0 + u < h8) kv[u] = k8[i0 + u];\n" \
"#pragma unroll\n" \
"                for (int u = 0; u < DC_VU; u++) {\n" \
"                    if (i0 + u >= h8) break;\n" \
"                    float kf[8];\n" \
"                    dec_unpack8(kv[u], kf);\n" \
"#pragma unroll\n" \
"                    for (int x = 0; x < DC_GB; x++)\n" \
"                        if (g0 + x < GROUP) {\n" \
"                            const float *qq = qs + (g0 + x) * hd + (i0 + u) * 8;\n" \
"#pragma unroll\n" \
"                            for (int e = 0; e < 8; e++) a[x] += qq[e] * kf[e];\n" \
"                        }\n" \
"                }\n" \
"            }\n" \
"#pragma unroll\n" \
"        for (int x = 0; x < DC_GB; x++)\n" \
"            if (g0 + x < GROUP) sc[(g0 + x) * CHUNK + tid] = vis ? a[x] : NEG_INF;\n" \
"    }\n" \
"    __syncthreads();\n" \
"    int RP = 1; // a power of two <= 32, so a segment's lanes share a warp\n" \
"    while (RP < 32 && 2 * RP * h8 <= CHUNK) RP *= 2;\n" \
"    int seg = tid / RP, r = tid % RP, rs = 2 * kvd / 8;\n" \
"    bool act = seg < h8;\n" \
"    const uint4 *v8 = (const uint4 *)(base + (u64)s0 * 2 * kvd + kvd + (u64)kh * hd) + (act ? seg : 0);\n" \
"    uint4 vv[DC_VU];\n" \
"#pragma unroll\n" \
"    for (int u = 0; u < DC_VU; u++) if (act && r + u * RP < n) vv[u] = v8[(u64)(r + u * RP) * rs];\n" \
"    int warp = tid / 32, lane = tid % 32;\n" \
"    for (int g = warp; g < GROUP; g += CHUNK / 32) { // a warp per head: max, exp, sum\n" \
"        float m = NEG_INF;\n" \
"        for (int j = lane; j < CHUNK; j += 32) m = fmaxf(m, sc[g * CHUNK + j]);\n" \
"        m = warp_max(m);\n" \
"        float l = 0.0f;\n" \
"        for (int j = lane; j < CHUNK; j += 32) {\n" \
"            float e = m == NEG_INF ? 0.0f : __expf(sc[g * CHUNK + j] - m);\n" \
"            sc[g * CHUNK + j] = e;\n" \
"            l += e;\n" \
"        }\n" \
"        l = warp_sum(l);\n" \
"        if (lane == 0) { ms[g] = m; ls[g] = l; }\n" \
"    }\n" \
"    __syncthreads();\n" \
"    for (int g0 = 0; g0 < GROUP; g0 += DC_GB) {\n" \
"        float o[DC_GB][8];\n" \
"#pragma unroll\n" \
"        for (int x = 0; x < DC_GB; x++)\n" \
"#pragma unroll\n" \
"            for (int e = 0; e < 8; e++) o[x][e] = 0.0f;\n" \
"        if (act)\n" \
"            for (int j0 = r; j0 < n; j0 += DC_VU * RP) {\n" \
"                if (g0 > 0 || j0 > r) // past the loads issued before the softmax\n" \
"#pragma unroll\n" \
"                    for (int u = 0; u < DC_VU; u++) if (j0 + u * RP < n) vv[u] = v8[(u64)(j0 + u * RP) * rs];\n" \
"#pragma unroll\n" \
"                for (int u = 0; u < DC_VU; u++) {\n" \
"                    int j = j0 + u * RP;\n" \
"                    if (j >= n) break;\n" \
"                    float vf[8];\n" \
"                    dec_unpack8(vv[u], vf);\n" \
"#pragma unroll\n" \
"                    for (int x = 0; x < DC_GB; x++)\n" \
"                        if (g0 + x < GROUP) {\n" \
"                            float pj = sc[(g0 + x) * CHUNK + j];\n" \
"#pragma unroll\n" \
"                            for (int e = 0; e < 8; e++) o[x][e] += pj * vf[e];\n" \
"                        }\n" \
"                }\n" \
"            }\n" \
"#pragma unroll\n" \
"        for (int x = 0; x < DC_GB; x++) {\n" \
"            if (g0 + x >= GROUP) break;\n" \
"#pragma unroll\n" \
"            for (int e = 0; e < 8; e++)\n" \
"                for (int off = RP / 2; off > 0; off /= 2) o[x][e] += __shfl_xor_sync(0xffffffffu, o[x][e], off);\n" \
"            if (act && r == 0) {\n" \
"                float *pt = part + (pr + (u64)(g0 + x) * NC) * (hd + 2) + 8 * seg;\n" \
"#pragma unroll\n" \
"                for (int e = 0; e < 8; e++) pt[e] = o[x][e];\n" \
"            }\n" \
"        }\n" \
"    }\n" \
"    for (int g = tid; g < GROUP; g += CHUNK) {\n" \
"        float *pt = part + (pr + (u64)g * NC) * (hd + 2);\n" \
"        pt[hd] = ms[g];\n" \
"        pt[hd + 1] = ls[g];\n" \
"    }\n" \
"}\n" \
"#undef DC_GB\n" \
"#undef DC_VU\n" \
"// After dec_chunk_attend: the block counts its chunk done in cnt[blockIdx.x]; the last of the nc\n" \
"// filled chunks of (b, kv head) to finish merges every chunk's partial, in chunk order (so the\n" \
"// result does not depend on which block is last), into att rows h0 .. h0 + GROUP - 1, and resets\n" \
"// the counter for the next step (a graph replay). The fused step's fz_attend ends with it; the\n" \
"// dense room's step keeps dec_combine (B * H blocks): at batch 32 and 4096 cached positions one\n" \
"// block per (b, kv head) walking 32 partials serially made the step 12% slower on the H200.\n" \
"__device__ void dec_chunk_merge(bf16 *att, const float *part, int *cnt, u64 h0, int NC, int nc, int GROUP, int hd) {\n" \
"    __shared__ int last;\n" \
"    __threadfence(); // the partials out before the count: the block that counts last reads them\n" \
"    __syncthreads();\n" \
"    if (threadIdx.x == 0) last = atomicAdd(cnt + blockIdx.x, 1) == nc - 1;\n" \
"    __syncthreads();\n" \
"    if (!last) return;\n" \
"    if (threadIdx.x == 0) cnt[blockIdx.x] = 0;\n" \
"    for (int e = threadIdx.x; e < GROUP * hd; e += blockDim.x) {\n" \
"        int g = e / hd, i = e % hd;\n" \
"        const volatile float *pt = part + (h0 + g) * NC * (hd + 2);\n" \
"        att[(h0 + g) * hd + i] = f2bf(parts_merged(pt, nc, hd, i, parts_max(pt, nc, hd)));\n" \
"    }\n" \
"}\n"

static const char DECODE_SRC[] =
"#include \"ablate_common.cuh\"\n"
"#define CHUNK " DEC_STR(DEC_CHUNK) "\n"
"#define SAMPLE_THREADS " DEC_STR(DEC_SAMPLE_THREADS) "\n"
DEC_MASK_SRC
DEC_MERGE_SRC
DEC_UNPACK_SRC
DEC_CHUNK_SRC
KSRC_LINE("attn/decode.cu.h")
"\n"
"// one warp per (b, head of q or k): QK-norm, RoPE at *d_pos (kernels.cu.h's rope_sincos\n"
"// angle), q to fp32, k and the head's v into the cache slot\n"
"extern \"C\" __global__ void dec_qkv(const bf16 *qkv, float *q, bf16 *cache, const bf16 *qn, const bf16 *kn,\n"
"                                    const int *d_pos, int H, int KV, int hd, int S, int G, int ring,\n"
"                                    float theta, float eps) {\n"
"    pdl_trigger();\n"
"    pdl_wait(); // qkv is the kernel ahead's output (gpu_launch_dep)\n"
"    int b = blockIdx.x, h = blockIdx.y, lane = threadIdx.x, half = hd / 2, p = *d_pos;\n"
"    int kvd = KV * hd;\n"
"    const bf16 *row = qkv + (u64)b * (H + 2 * KV) * hd;\n"
"    bool isq = h < H;\n"
"    const bf16 *x = row + (u64)h * hd;\n"
"    const bf16 *nw = isq ? qn : kn;\n"
"    float r = 1.0f;\n"
"    if (nw) {\n"
"        float ss = 0.0f;\n"
"        for (int i = lane; i < hd; i += 32) { float a = bf2f(x[i]); ss += a * a; }\n"
"        ss = warp_sum(ss);\n"
"        r = rsqrtf(ss / hd + eps);\n"
"    }\n"
"    bf16 *slot = cache + ((u64)b * S + dec_slot(p, G, ring)) * 2 * kvd;\n"
"    for (int i = lane; i < half; i += 32) {\n"
"        float x1 = bf2f(x[i]) * r, x2 = bf2f(x[i + half]) * r;\n"
"        if (nw) {\n"
"            // the training path rounds the norm's output to bf16 before rotating it\n"
"            x1 = bf2f(f2bf(x1 * bf2f(nw[i])));\n"
"            x2 = bf2f(f2bf(x2 * bf2f(nw[i + half])));\n"
"        }\n"
"        float freq = powf(theta, -2.0f * i / hd), s, c;\n"
"        sincosf((float)p * freq, &s, &c);\n"
"        float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;\n"
"        if (isq) {\n"
"            float *qo = q + ((u64)b * H + h) * hd;\n"
"            qo[i] = y1;\n"
"            qo[i + half] = y2;\n"
"        } else {\n"
"            bf16 *ko = slot + (u64)(h - H) * hd;\n"
"            ko[i] = f2bf(y1);\n"
"            ko[i + half] = f2bf(y2);\n"
"        }\n"
"    }\n"
"    if (!isq) {\n"
"        const bf16 *v = row + (u64)(H + KV) * hd + (u64)(h - H) * hd;\n"
"        bf16 *vo = slot + kvd + (u64)(h - H) * hd;\n"
"        for (int i = lane; i < hd; i += 32) vo[i] = v[i];\n"
"    }\n"
"}\n"
"\n"
"// split-K: block (b * KV + kv head, chunk); part [B][H][NC][hd + 2] = (o, m, l) of the chunk\n"
"// (o unnormalized: sum_j exp(s_j - m) v_j; l = sum_j exp(s_j - m); m = -inf: nothing seen).\n"
"// 6 blocks an SM (80 registers with DC_GB 4; ptxas spills about 200 bytes a thread, to L1): batch\n"
"// 32 at 768 cached slots is 576 blocks, one wave on 132 SMs, where 4 blocks an SM (128 registers)\n"
"// made it two. 5 blocks (96 registers, 20 bytes spilled) would also fit one wave; not measured\n"
"extern \"C\" __global__ void __launch_bounds__(CHUNK, 6)\n"
"dec_split(const float *q, const bf16 *cache, float *part, const int *d_pos, int H, int KV, int hd, int S, int G,\n"
"          int ring, int W, int glob, int stride, int dil, int pb, float scale) {\n"
"    extern __shared__ float sm[];\n"
"    int GROUP = H / KV, b = blockIdx.x / KV, kh = blockIdx.x % KV, c = blockIdx.y, NC = gridDim.y;\n"
"    pdl_trigger();\n"
"    pdl_wait(); // q and the token's cache slot are the kernel ahead's output (gpu_launch_dep)\n"
"    int p = *d_pos, filled = p + 1 < S ? p + 1 : S, s0 = c * CHUNK;\n"
"    if (s0 >= filled) return; // nothing cached there yet: the combine stops before this chunk\n"
"    int n = filled - s0 < CHUNK ? filled - s0 : CHUNK, kvd = KV * hd;\n"
"    float *qs = sm, *sc = qs + GROUP * hd, *ms = sc + GROUP * CHUNK, *ls = ms + GROUP;\n"
"    dec_chunk_attend(qs, q + ((u64)b * H + kh * GROUP) * hd, scale, sc, ms, ls, cache + (u64)b * S * 2 * kvd, part,\n"
"                     ((u64)b * H + kh * GROUP) * NC + c, NC, p, s0, n, GROUP, kvd, kh, hd, G, ring, W, glob, stride,\n"
"                     dil, pb);\n"
"}\n"
"\n"
"// block (b * H + h): the filled chunks' partials merged, normalized, to bf16\n"
"extern \"C\" __global__ void dec_combine(const float *part, bf16 *att, const int *d_pos, int H, int hd, int S,\n"
"                                        int NC) {\n"
"    pdl_trigger();\n"
"    pdl_wait(); // part is dec_split's output (gpu_launch_dep)\n"
"    int bh = blockIdx.x, p = *d_pos, filled = p + 1 < S ? p + 1 : S;\n"
"    int nc = (filled + CHUNK - 1) / CHUNK;\n"
"    const float *pt = part + (u64)bh * NC * (hd + 2);\n"
"    float M = parts_max(pt, nc, hd);\n"
"    for (int i = threadIdx.x; i < hd; i += blockDim.x) att[(u64)bh * hd + i] = f2bf(parts_merged(pt, nc, hd, i, M));\n"
"}\n"
"\n"
"// k, v [B][T][KV*hd] into the cache; position t is written only when no later t' < T shares\n"
"// its slot (the ring keeps the latest)\n"
"extern \"C\" __global__ void dec_fill(bf16 *cache, const bf16 *k, const bf16 *v, int B, int T, int kvd, int S,\n"
"                                     int G, int ring) {\n"
"    GRID_STRIDE(e, (u64)B * T * kvd) {\n"
"        u64 row = e / kvd;\n"
"        int i = (int)(e % kvd), t = (int)(row % T), b = (int)(row / T);\n"
"        if (t >= G && t + ring <= T - 1) continue;\n"
"        bf16 *slot = cache + ((u64)b * S + dec_slot(t, G, ring)) * 2 * kvd;\n"
"        slot[i] = k[e];\n"
"        slot[kvd + i] = v[e];\n"
"    }\n"
"}\n"
"\n"
"extern \"C\" __global__ void dec_advance(int *d_pos) { *d_pos += 1; }\n"
"\n"
"// splitmix64 of (seed, b, position): a uniform in [0, 1)\n"
"__device__ __forceinline__ u64 dec_mix(u64 z) {\n"
"    z += 0x9e3779b97f4a7c15ull;\n"
"    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;\n"
"    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;\n"
"    return z ^ (z >> 31);\n"
"}\n"
"\n"
"// block-wide sum of x (every thread gets it); red holds 32 floats\n"
"__device__ float dec_block_sum(float x, float *red) {\n"
"    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nw = blockDim.x / 32;\n"
"    x = warp_sum(x);\n"
"    __syncthreads();\n"
"    if (lane == 0) red[warp] = x;\n"
"    __syncthreads();\n"
"    float t = lane < nw ? red[lane] : 0.0f;\n"
"    return warp_sum(t);\n"
"}\n"
"\n"
"// the probability of logit l (unnormalized: the largest is 1)\n"
"__device__ __forceinline__ float dec_prob(float l, float mx, float inv_temp) { return __expf((l - mx) * inv_temp); }\n"
"\n"
"// mass (or count) of the probabilities at or above t\n"
"__device__ float dec_mass_above(const float *lg, int V, float mx, float inv_temp, float t, int count, float *red) {\n"
"    float a = 0.0f;\n"
"    for (int i = threadIdx.x; i < V; i += blockDim.x) {\n"
"        float pr = dec_prob(lg[i], mx, inv_temp);\n"
"        if (pr >= t) a += count ? 1.0f : pr;\n"
"    }\n"
"    return dec_block_sum(a, red);\n"
"}\n"
"\n"
"// the largest threshold (as float bits, probabilities in [0, 1]) whose mass (count) at or\n"
"// above it reaches need; lo's mass must reach it\n"
"__device__ float dec_threshold(const float *lg, int V, float mx, float inv_temp, float lo_t, float need, int count,\n"
"                               float *red) {\n"
"    u32 lo = __float_as_uint(lo_t), hi = __float_as_uint(1.0f) + 1u;\n"
"    while (hi - lo > 1u) {\n"
"        u32 mid = lo + (hi - lo) / 2u;\n"
"        if (dec_mass_above(lg, V, mx, inv_temp, __uint_as_float(mid), count, red) >= need) lo = mid;\n"
"        else hi = mid;\n"
"    }\n"
"    return __uint_as_float(lo);\n"
"}\n"
"\n"
"// block b: sequence b's next token (the header's gpu_dec_sample)\n"
"extern \"C\" __global__ void __launch_bounds__(SAMPLE_THREADS)\n"
"dec_sample(int *tok, const float *logits, const int *d_pos, int V, float temp, int top_k, float top_p, u64 seed) {\n"
"    __shared__ float red[32], seg_sum[SAMPLE_THREADS];\n"
"    __shared__ float bv[32];\n"
"    __shared__ int bi[32], pick;\n"
"    int b = blockIdx.x, tid = threadIdx.x, lane = tid % 32, warp = tid / 32, nw = blockDim.x / 32;\n"
"    const float *lg = logits + (u64)b * V;\n"
"    // argmax, the first largest\n"
"    float best = NEG_INF;\n"
"    int besti = V;\n"
"    for (int i = tid; i < V; i += blockDim.x)\n"
"        if (lg[i] > best) { best = lg[i]; besti = i; }\n"
"    for (int o = 16; o > 0; o >>= 1) {\n"
"        float v2 = __shfl_xor_sync(0xffffffffu, best, o);\n"
"        int i2 = __shfl_xor_sync(0xffffffffu, besti, o);\n"
"        if (v2 > best || (v2 == best && i2 < besti)) { best = v2; besti = i2; }\n"
"    }\n"
"    if (lane == 0) { bv[warp] = best; bi[warp] = besti; }\n"
"    __syncthreads();\n"
"    if (warp == 0) {\n"
"        best = lane < nw ? bv[lane] : NEG_INF;\n"
"        besti = lane < nw ? bi[lane] : V;\n"
"        for (int o = 16; o > 0; o >>= 1) {\n"
"            float v2 = __shfl_xor_sync(0xffffffffu, best, o);\n"
"            int i2 = __shfl_xor_sync(0xffffffffu, besti, o);\n"
"            if (v2 > best || (v2 == best && i2 < besti)) { best = v2; besti = i2; }\n"
"        }\n"
"        if (lane == 0) { bv[0] = best; bi[0] = besti < V ? besti : 0; pick = -1; }\n"
"    }\n"
"    __syncthreads();\n"
"    float mx = bv[0];\n"
"    int arg = bi[0];\n"
"    if (temp <= 0.0f || !(mx > NEG_INF)) { // greedy (or no finite logit)\n"
"        if (tid == 0) tok[b] = arg;\n"
"        return;\n"
"    }\n"
"    float inv_temp = 1.0f / temp, thr = 0.0f;\n"
"    if (top_k > 0 && top_k < V) thr = dec_threshold(lg, V, mx, inv_temp, 0.0f, (float)top_k, 1, red);\n"
"    float kept = dec_mass_above(lg, V, mx, inv_temp, thr, 0, red);\n"
"    if (top_p > 0.0f && top_p < 1.0f) {\n"
"        thr = dec_threshold(lg, V, mx, inv_temp, thr, top_p * kept, 0, red);\n"
"        kept = dec_mass_above(lg, V, mx, inv_temp, thr, 0, red);\n"
"    }\n"
"    u64 h = dec_mix(seed ^ dec_mix(((u64)b << 32) ^ (u64)(u32)*d_pos));\n"
"    float u = (float)(h >> 40) * (1.0f / 16777216.0f) * kept;\n"
"    // contiguous segments in index order, their sums scanned: the segment holding u walks it\n"
"    int per = (V + blockDim.x - 1) / blockDim.x, i0 = tid * per, i1 = i0 + per < V ? i0 + per : V;\n"
"    float a = 0.0f;\n"
"    for (int i = i0; i < i1; i++) { float pr = dec_prob(lg[i], mx, inv_temp); if (pr >= thr) a += pr; }\n"
"    seg_sum[tid] = a;\n"
"    __syncthreads();\n"
"    if (tid == 0) { // a serial scan of 1024 sums: once per token, negligible\n"
"        float acc = 0.0f;\n"
"        for (int t = 0; t < (int)blockDim.x; t++) { float s = seg_sum[t]; seg_sum[t] = acc; acc += s; }\n"
"    }\n"
"    __syncthreads();\n"
"    float acc = seg_sum[tid];\n"
"    if (u >= acc && u < acc + a) {\n"
"        for (int i = i0; i < i1; i++) {\n"
"            float pr = dec_prob(lg[i], mx, inv_temp);\n"
"            if (pr < thr) continue;\n"
"            acc += pr;\n"
"            if (u < acc) { pick = i; break; }\n"
"        }\n"
"    }\n"
"    __syncthreads();\n"
"    if (tid == 0) tok[b] = pick >= 0 ? pick : arg; // rounding left u past the last: the likeliest\n"
"}\n"
;

static CUfunction dec_k_(Gpu *g, const char *name) { return gpu_kernel(g, DECODE_SRC, name, NULL); }

GPUDEF int gpu_dec_chunks(const GpuDecShape *sh) { return (sh->S + DEC_CHUNK - 1) / DEC_CHUNK; }

GPUDEF size_t gpu_dec_part_bytes(const GpuDecShape *sh, int B) {
    return (size_t)B * sh->H * gpu_dec_chunks(sh) * (sh->hd + 2) * sizeof(float);
}

static void dec_check_shape_(const char *who, const GpuDecShape *sh) {
    if (sh->hd < 8 || sh->hd % 8 || sh->hd > 256 || sh->KV < 1 || sh->H % sh->KV || sh->S < 1 || sh->ring < 1 ||
        sh->G + sh->ring != sh->S) {
        fprintf(stderr, "%s: shape H %d KV %d hd %d S %d G %d ring %d: expected hd a multiple of 8 <= 256, KV dividing H, "
                        "S = G + ring >= 1\n", who, sh->H, sh->KV, sh->hd, sh->S, sh->G, sh->ring);
        abort();
    }
}

GPUDEF void gpu_dec_qkv(Gpu *g, const GpuDecShape *sh, const void *qkv, float *q, void *cache, const void *qn,
                        const void *kn, const int *d_pos, int B) {
    dec_check_shape_("gpu_dec_qkv", sh);
    int H = sh->H, KV = sh->KV, hd = sh->hd, S = sh->S, G = sh->G, ring = sh->ring;
    float theta = sh->theta, eps = sh->eps;
    void *args[] = {&qkv, &q, &cache, &qn, &kn, &d_pos, &H, &KV, &hd, &S, &G, &ring, &theta, &eps};
    gpu_launch_dep(g, dec_k_(g, "dec_qkv"), (unsigned)B, (unsigned)(H + KV), 1, 32, 1, 1, 0, args);
}

GPUDEF void gpu_dec_attend(Gpu *g, const GpuDecShape *sh, void *att, const float *q, const void *cache, float *part,
                           const int *d_pos, int B) {
    dec_check_shape_("gpu_dec_attend", sh);
    int H = sh->H, KV = sh->KV, hd = sh->hd, S = sh->S, G = sh->G, ring = sh->ring, NC = gpu_dec_chunks(sh);
    int W = sh->window, glob = sh->global, stride = sh->stride, dil = sh->dilation, pb = sh->block > 0 ? sh->block : 128;
    float scale = 1.0f / sqrtf((float)hd);
    int group = H / KV;
    unsigned smem = (unsigned)(sizeof(float) * ((size_t)group * hd + (size_t)group * DEC_CHUNK + 2 * (size_t)group));
    void *a1[] = {&q, &cache, &part, &d_pos, &H, &KV, &hd, &S, &G, &ring, &W, &glob, &stride, &dil, &pb, &scale};
    gpu_launch_dep(g, dec_k_(g, "dec_split"), (unsigned)(B * KV), (unsigned)NC, 1, DEC_CHUNK, 1, 1, smem, a1);
    void *a2[] = {&part, &att, &d_pos, &H, &hd, &S, &NC};
    gpu_launch_dep(g, dec_k_(g, "dec_combine"), (unsigned)(B * H), 1, 1, (unsigned)(hd < 128 ? 64 : 128), 1, 1, 0, a2);
}

GPUDEF void gpu_dec_fill(Gpu *g, const GpuDecShape *sh, void *cache, const void *k, const void *v, int B, int T) {
    dec_check_shape_("gpu_dec_fill", sh);
    int kvd = sh->KV * sh->hd, S = sh->S, G = sh->G, ring = sh->ring;
    void *args[] = {&cache, &k, &v, &B, &T, &kvd, &S, &G, &ring};
    size_t n = (size_t)B * T * kvd;
    unsigned blocks = (unsigned)((n + 255) / 256 < 65535 ? (n + 255) / 256 : 65535);
    gpu_launch(g, dec_k_(g, "dec_fill"), blocks ? blocks : 1, 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_dec_sample(Gpu *g, int *tok, const float *logits, const int *d_pos, int B, int V, float temperature,
                           int top_k, float top_p, unsigned long long seed) {
    void *args[] = {&tok, &logits, &d_pos, &V, &temperature, &top_k, &top_p, &seed};
    gpu_launch(g, dec_k_(g, "dec_sample"), (unsigned)B, 1, 1, DEC_SAMPLE_THREADS, 1, 1, 0, args);
}

GPUDEF void gpu_dec_advance(Gpu *g, int *d_pos) {
    void *args[] = {&d_pos};
    gpu_launch(g, dec_k_(g, "dec_advance"), 1, 1, 1, 1, 1, 1, 0, args);
}

/* ---- the MLA, MGA, GDN and DSA rooms ---- */

#define DEC_THREADS 256

static const char DECODE_ROOMS_SRC[] =
"// One-token decode kernels of the MLA, MGA, GDN and DSA rooms (attn/decode.cu.h).\n"
"#include \"ablate_common.cuh\"\n"
DEC_MERGE_SRC
DEC_UNPACK_SRC
KSRC_LINE("attn/decode.cu.h")
"\n"
"// first cached position a query at pos sees under a window (0: none)\n"
"__device__ __forceinline__ int first_key(int pos, int window) {\n"
"    return (window > 0 && pos - window + 1 > 0) ? pos - window + 1 : 0;\n"
"}\n"
"// RoPE pair i of rd at pos (ops.h's rotation: pairs (i, i + rd/2), angle pos theta^(-2i/rd))\n"
"__device__ __forceinline__ void rope_pair(float *a, float *b, int i, int rd, int pos, float theta) {\n"
"    float ang = (float)pos * powf(theta, -2.0f * (float)i / (float)rd), sn, cs;\n"
"    sincosf(ang, &sn, &cs);\n"
"    float x = *a, y = *b;\n"
"    *a = x * cs - y * sn;\n"
"    *b = y * cs + x * sn;\n"
"}\n"
"__device__ __forceinline__ float sigm(float x) { return 1.0f / (1.0f + __expf(-x)); }\n"
"\n"
"// ---- split-K (flash-decoding) over the rows a query attends: block z of gridDim.z takes rows\n"
"// [z CH, min(n, (z + 1) CH)) and leaves a partial (o unnormalized | m | l) of width w + 2 in\n"
"// part [B][H][NS][w + 2]; a merge (merge_parts) after it. Without it a block per (b, h) walked\n"
"// every row alone (MLA's attend took 0.7 ms a layer at context 4096 on the H200).\n"
"// exp(p[j] - m) in place over [j0, j1) (raw scores in, this block's); returns their sum, *m the max\n"
"__device__ float softmax_range(float *p, int j0, int j1, float *m) {\n"
"    float mx = NEG_INF;\n"
"    for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) mx = fmaxf(mx, p[j]);\n"
"    mx = block_max(mx);\n"
"    float s = 0.0f;\n"
"    for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) { float e = __expf(p[j] - mx); p[j] = e; s += e; }\n"
"    *m = mx;\n"
"    return block_sum(s); // its barriers also publish p[] to the block\n"
"}\n"
"// the first nc partials of pt merged and normalized (DEC_MERGE_SRC): out[e] for e < w (this block's threads)\n"
"__device__ void merge_parts(float *out, const float *pt, int nc, int w) {\n"
"    float M = parts_max(pt, nc, w);\n"
"    for (int e = threadIdx.x; e < w; e += blockDim.x) out[e] = parts_merged(pt, nc, w, e, M);\n"
"}\n"
"\n"
"// ---- MLA ----\n"
"// grid B: cache[b][pos % S] = [RMSNorm(kva[:r]) * gamma | RoPE(kva[r:])]\n"
"extern \"C\" __global__ void mla_append(bf16 *cache, const bf16 *kva, const bf16 *gamma, const int *pos_p,\n"
"                                       int S, int r, int rope, float eps, float theta) {\n"
"    int b = blockIdx.x, pos = *pos_p, R = r + rope;\n"
"    const bf16 *src = kva + (u64)b * R;\n"
"    bf16 *dst = cache + ((u64)b * S + pos % S) * R;\n"
"    float ss = 0.0f;\n"
"    for (int j = threadIdx.x; j < r; j += blockDim.x) { float x = bf2f(src[j]); ss += x * x; }\n"
"    float rs = rsqrtf(block_sum(ss) / (float)r + eps);\n"
"    for (int j = threadIdx.x; j < r; j += blockDim.x) dst[j] = f2bf(bf2f(src[j]) * rs * bf2f(gamma[j]));\n"
"    int half = rope / 2;\n"
"    for (int i = threadIdx.x; i < half; i += blockDim.x) {\n"
"        float a = bf2f(src[r + i]), c = bf2f(src[r + i + half]);\n"
"        rope_pair(&a, &c, i, rope, pos, theta);\n"
"        dst[r + i] = f2bf(a);\n"
"        dst[r + i + half] = f2bf(c);\n"
"    }\n"
"}\n"
"\n"
"// grid (H, B, NS): split z of the visible rows (see split-K above); shared: qe [r + rope] fp32.\n"
"// p: [B][H][S] fp32 scratch; part [B][H][NS][r + 2]: the split's unnormalized attended latent\n"
"extern \"C\" __global__ void mla_attend(float *part, float *p_all, const bf16 *cache, const bf16 *qf, const bf16 *wkvb,\n"
"                                       const int *pos_p, int S, int window, int r, int rope, int nope, int v,\n"
"                                       float scale, float theta, int CH) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, z = blockIdx.z, H = gridDim.x, NS = gridDim.z, R = r + rope;\n"
"    int kw = nope + v, qk = nope + rope, pos = *pos_p, s0 = first_key(pos, window), n = pos - s0 + 1;\n"
"    int j0 = z * CH, j1 = j0 + CH < n ? j0 + CH : n;\n"
"    float *pt = part + (((u64)b * H + h) * NS + z) * (r + 2);\n"
"    if (j0 >= j1) { // no row here yet: the merge skips it\n"
"        if (threadIdx.x == 0) { pt[r] = NEG_INF; pt[r + 1] = 0.0f; }\n"
"        return;\n"
"    }\n"
"    float *qe = sm, *p = p_all + ((u64)b * H + h) * S;\n"
"    const bf16 *q = qf + ((u64)b * H + h) * qk, *wh = wkvb + (u64)h * kw * r;\n"
"    for (int j = threadIdx.x; j < r; j += blockDim.x) { // q~ = W_UK,h^T q_nope (rows of W_UK,h are [r])\n"
"        float acc = 0.0f;\n"
"        for (int i = 0; i < nope; i++) acc += bf2f(q[i]) * bf2f(wh[(u64)i * r + j]);\n"
"        qe[j] = acc;\n"
"    }\n"
"    int half = rope / 2;\n"
"    for (int i = threadIdx.x; i < half; i += blockDim.x) {\n"
"        float a = bf2f(q[nope + i]), c = bf2f(q[nope + i + half]);\n"
"        rope_pair(&a, &c, i, rope, pos, theta);\n"
"        qe[r + i] = a;\n"
"        qe[r + i + half] = c;\n"
"    }\n"
"    __syncthreads();\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
"    for (int j = j0 + warp; j < j1; j += nw) { // a warp per cached row\n"
"        const bf16 *row = cache + ((u64)b * S + (s0 + j) % S) * R;\n"
"        float acc = 0.0f;\n"
"        for (int e = lane; e < R; e += 32) acc += qe[e] * bf2f(row[e]);\n"
"        acc = warp_sum(acc);\n"
"        if (lane == 0) p[j] = acc * scale;\n"
"    }\n"
"    __syncthreads();\n"
"    float m, l = softmax_range(p, j0, j1, &m);\n"
"    for (int e = threadIdx.x; e < r; e += blockDim.x) { // the unnormalized attended latent (rows' first r)\n"
"        float acc = 0.0f;\n"
"        for (int j = j0; j < j1; j++) acc += p[j] * bf2f(cache[((u64)b * S + (s0 + j) % S) * R + e]);\n"
"        pt[e] = acc;\n"
"    }\n"
"    if (threadIdx.x == 0) { pt[r] = m; pt[r + 1] = l; }\n"
"}\n"
"\n"
"// grid (H, B): the splits merged into the attended latent lo [r] (shared, fp32), then o_h = W_UV,h lo\n"
"extern \"C\" __global__ void mla_merge(bf16 *ol, const float *part, const bf16 *wkvb, const int *pos_p, int window,\n"
"                                      int r, int nope, int v, int CH, int NS) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, kw = nope + v;\n"
"    int pos = *pos_p, n = pos - first_key(pos, window) + 1, nc = (n + CH - 1) / CH;\n"
"    float *lo = sm;\n"
"    merge_parts(lo, part + ((u64)b * H + h) * NS * (r + 2), nc < NS ? nc : NS, r);\n"
"    __syncthreads();\n"
"    const bf16 *wh = wkvb + (u64)h * kw * r;\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
"    for (int e = warp; e < v; e += nw) { // o_h = W_UV,h lo: a warp per output, lanes across r\n"
"        const bf16 *uv = wh + (u64)(nope + e) * r;\n"
"        float acc = 0.0f;\n"
"        for (int j = lane; j < r; j += 32) acc += lo[j] * bf2f(uv[j]);\n"
"        acc = warp_sum(acc);\n"
"        if (lane == 0) ol[((u64)b * H + h) * v + e] = f2bf(acc);\n"
"    }\n"
"}\n"
"\n"
"// MLA with QK-norm (attn/mla.h's expanded form), grid (H, B): head h's query row qf [qk] and key\n"
"// row [k_nope of kvb | kva's shared rotary key], each rotated over its last rope columns at pos and\n"
"// RMSNormed with its scale, in fp32 (shared: 2 qk floats): q [B][H][qk] fp32 for the dense\n"
"// attention; the key and the head's value (kvb's, zero-padded to qk) into slot pos % S of the dense\n"
"// cache [B][S][2][H qk]\n"
"extern \"C\" __global__ void mla_qkn(float *q, bf16 *cache, const bf16 *qf, const bf16 *kvb, const bf16 *kva,\n"
"                                    const bf16 *qw, const bf16 *kw, const int *pos_p, int S, int qk, int v, int r,\n"
"                                    int rope, float eps, float theta) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, pos = *pos_p, nope = qk - rope, half = rope / 2;\n"
"    u64 bh = (u64)b * H + h, kvd = (u64)H * qk;\n"
"    const bf16 *qs = qf + bh * qk, *ks = kvb + bh * (nope + v), *kp = kva + (u64)b * (r + rope) + r;\n"
"    float *qr = sm, *kr = sm + qk;\n"
"    for (int j = threadIdx.x; j < qk; j += blockDim.x) {\n"
"        qr[j] = bf2f(qs[j]);\n"
"        kr[j] = bf2f(j < nope ? ks[j] : kp[j - nope]);\n"
"    }\n"
"    __syncthreads();\n"
"    for (int i = threadIdx.x; i < half; i += blockDim.x) {\n"
"        rope_pair(&qr[nope + i], &qr[nope + i + half], i, rope, pos, theta);\n"
"        rope_pair(&kr[nope + i], &kr[nope + i + half], i, rope, pos, theta);\n"
"    }\n"
"    __syncthreads();\n"
"    float sq = 0.0f, sk = 0.0f;\n"
"    for (int j = threadIdx.x; j < qk; j += blockDim.x) { sq += qr[j] * qr[j]; sk += kr[j] * kr[j]; }\n"
"    float rq = rsqrtf(block_sum(sq) / (float)qk + eps), rk = rsqrtf(block_sum(sk) / (float)qk + eps);\n"
"    bf16 *slot = cache + ((u64)b * S + pos % S) * 2 * kvd + (u64)h * qk;\n"
"    for (int j = threadIdx.x; j < qk; j += blockDim.x) {\n"
"        q[bh * qk + j] = qr[j] * rq * bf2f(qw[j]);\n"
"        slot[j] = f2bf(kr[j] * rk * bf2f(kw[j]));\n"
"        slot[kvd + j] = j < v ? ks[nope + j] : f2bf(0.0f);\n"
"    }\n"
"}\n"
"\n"
"// ---- MGA ----\n"
"// per sequence: run [H] fp32 | gn [S][H] fp32 | g [S][H*hd] bf16 | v [S][KV*hd] bf16 | tail [2][d] bf16\n"
"typedef struct { float *run, *gn; bf16 *g, *v, *tail; } MgaSeq;\n"
"__device__ MgaSeq mga_seq(void *cache, int b, int S, int H, int KV, int hd, int d) {\n"
"    u64 fl = (u64)H * (1 + S), bs = (u64)S * (H + KV) * hd + 2 * (u64)d;\n"
"    u64 seq = (fl * 4 + bs * 2 + 15) / 16 * 16;\n"
"    char *base = (char *)cache + (u64)b * seq;\n"
"    MgaSeq m;\n"
"    m.run = (float *)base;\n"
"    m.gn = m.run + H;\n"
"    m.g = (bf16 *)(base + fl * 4);\n"
"    m.v = m.g + (u64)S * H * hd;\n"
"    m.tail = m.v + (u64)S * KV * hd;\n"
"    return m;\n"
"}\n"
"\n"
"// grid B: g, v and |g| per head into slot pos % S; with gate: u = silu(conv3 over [tail | x]), tail shifts\n"
"extern \"C\" __global__ void mga_append(void *cache, bf16 *u, const bf16 *g, const bf16 *v, const bf16 *x,\n"
"                                       const bf16 *wc, const int *pos_p, int S, int H, int KV, int hd, int d,\n"
"                                       int gate) {\n"
"    int b = blockIdx.x, slot = *pos_p % S, qd = H * hd, kvd = KV * hd;\n"
"    MgaSeq m = mga_seq(cache, b, S, H, KV, hd, d);\n"
"    for (int i = threadIdx.x; i < qd; i += blockDim.x) m.g[(u64)slot * qd + i] = g[(u64)b * qd + i];\n"
"    for (int i = threadIdx.x; i < kvd; i += blockDim.x) m.v[(u64)slot * kvd + i] = v[(u64)b * kvd + i];\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
"    for (int h = warp; h < H; h += nw) {\n"
"        float ss = 0.0f;\n"
"        for (int e = lane; e < hd; e += 32) { float t = bf2f(g[(u64)b * qd + h * hd + e]); ss += t * t; }\n"
"        ss = warp_sum(ss);\n"
"        if (lane == 0) m.gn[(u64)slot * H + h] = sqrtf(ss);\n"
"    }\n"
"    if (gate) {\n"
"        for (int ch = threadIdx.x; ch < d; ch += blockDim.x) {\n"
"            float t0 = bf2f(m.tail[ch]), t1 = bf2f(m.tail[d + ch]), xt = bf2f(x[(u64)b * d + ch]);\n"
"            float acc = bf2f(wc[ch * 3]) * t0 + bf2f(wc[ch * 3 + 1]) * t1 + bf2f(wc[ch * 3 + 2]) * xt;\n"
"            u[(u64)b * d + ch] = f2bf(acc * sigm(acc));\n"
"            m.tail[ch] = m.tail[d + ch];\n"
"            m.tail[d + ch] = x[(u64)b * d + ch];\n"
"        }\n"
"    }\n"
"}\n"
"\n"
"// MGA split-K: the softmax's scale f needs the cosines' sum over every visible row, so three\n"
"// passes: mga_scores (grid (H, B, NS)) the cosines of split z's rows into p and their sum into\n"
"// psum [B][H][NS]; mga_attend (same grid) f from all the sums and the running sum S (read, not\n"
"// written), the split's softmax and weighted values into part [B][H][NS][hd + 2]; mga_merge\n"
"// (grid (H, B)) the splits merged into att and S advanced once\n"
"__device__ float mga_rowsum(const float *ps, int nc) {\n"
"    float t = 0.0f;\n"
"    for (int c = 0; c < nc; c++) t += ps[c]; // every thread the same order: one value\n"
"    return t;\n"
"}\n"
"// shared: gi [hd] fp32. p: [B][H][S] fp32 scratch\n"
"extern \"C\" __global__ void mga_scores(float *psum, float *p_all, void *cache, const int *pos_p, int S, int KV,\n"
"                                       int hd, int d, int window, float eps, int CH) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, z = blockIdx.z, H = gridDim.x, NS = gridDim.z, qd = H * hd;\n"
"    int pos = *pos_p, s0 = first_key(pos, window), n = pos - s0 + 1, j0 = z * CH, j1 = j0 + CH < n ? j0 + CH : n;\n"
"    if (j0 >= j1) { if (threadIdx.x == 0) psum[((u64)b * H + h) * NS + z] = 0.0f; return; }\n"
"    MgaSeq m = mga_seq(cache, b, S, H, KV, hd, d);\n"
"    float *gi = sm, *p = p_all + ((u64)b * H + h) * S;\n"
"    const bf16 *gsrc = m.g + (u64)(pos % S) * qd + h * hd;\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) gi[e] = bf2f(gsrc[e]);\n"
"    __syncthreads();\n"
"    float ni = m.gn[(u64)(pos % S) * H + h], rowsum = 0.0f;\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
"    for (int j = j0 + warp; j < j1; j += nw) { // cosine of row pos with row s0 + j\n"
"        int sl = (s0 + j) % S;\n"
"        const bf16 *gj = m.g + (u64)sl * qd + h * hd;\n"
"        float dd = 0.0f;\n"
"        for (int e = lane; e < hd; e += 32) dd += gi[e] * bf2f(gj[e]);\n"
"        dd = warp_sum(dd);\n"
"        float cr = dd / (ni * m.gn[(u64)sl * H + h] + eps);\n"
"        if (lane == 0) p[j] = cr;\n"
"        rowsum += lane == 0 ? cr : 0.0f;\n"
"    }\n"
"    rowsum = block_sum(rowsum);\n"
"    if (threadIdx.x == 0) psum[((u64)b * H + h) * NS + z] = rowsum;\n"
"}\n"
"\n"
"extern \"C\" __global__ void mga_attend(float *part, const float *psum, float *p_all, void *cache, const int *pos_p,\n"
"                                       int S, int KV, int hd, int d, int window, int CH) {\n"
"    int h = blockIdx.x, b = blockIdx.y, z = blockIdx.z, H = gridDim.x, NS = gridDim.z, kvd = KV * hd;\n"
"    int kh = h / (H / KV), pos = *pos_p, s0 = first_key(pos, window), n = pos - s0 + 1;\n"
"    int j0 = z * CH, j1 = j0 + CH < n ? j0 + CH : n, nc = (n + CH - 1) / CH;\n"
"    float *pt = part + (((u64)b * H + h) * NS + z) * (hd + 2);\n"
"    if (j0 >= j1) { if (threadIdx.x == 0) { pt[hd] = NEG_INF; pt[hd + 1] = 0.0f; } return; }\n"
"    MgaSeq m = mga_seq(cache, b, S, H, KV, hd, d);\n"
"    float *p = p_all + ((u64)b * H + h) * S;\n"
"    float den = 1.0f + mga_rowsum(psum + ((u64)b * H + h) * NS, nc < NS ? nc : NS) / (2.0f * (float)(pos + 1));\n"
"    float f = 1.0f / (den * (m.run[h] + 1.0f / den));\n"
"    for (int j = j0 + threadIdx.x; j < j1; j += blockDim.x) p[j] = f * (1.0f + p[j]) * 0.5f;\n"
"    __syncthreads();\n"
"    float mx, l = softmax_range(p, j0, j1, &mx);\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) {\n"
"        float acc = 0.0f;\n"
"        for (int j = j0; j < j1; j++) acc += p[j] * bf2f(m.v[(u64)((s0 + j) % S) * kvd + kh * hd + e]);\n"
"        pt[e] = acc;\n"
"    }\n"
"    if (threadIdx.x == 0) { pt[hd] = mx; pt[hd + 1] = l; }\n"
"}\n"
"\n"
"// shared: hd fp32\n"
"extern \"C\" __global__ void mga_merge(bf16 *att, const float *part, const float *psum, void *cache, const int *pos_p,\n"
"                                      int S, int KV, int hd, int d, int window, int CH, int NS) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, qd = H * hd;\n"
"    int pos = *pos_p, n = pos - first_key(pos, window) + 1, nc = (n + CH - 1) / CH;\n"
"    if (nc > NS) nc = NS;\n"
"    merge_parts(sm, part + ((u64)b * H + h) * NS * (hd + 2), nc, hd);\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) att[(u64)b * qd + h * hd + e] = f2bf(sm[e]);\n"
"    if (threadIdx.x == 0) { // the running sum moves once, after every split read it\n"
"        MgaSeq m = mga_seq(cache, b, S, H, KV, hd, d);\n"
"        float den = 1.0f + mga_rowsum(psum + ((u64)b * H + h) * NS, nc) / (2.0f * (float)(pos + 1));\n"
"        m.run[h] = m.run[h] + 1.0f / den;\n"
"    }\n"
"}\n"
"\n"
"extern \"C\" __global__ void sigmoid_mul(bf16 *a, const bf16 *z, int n) {\n"
"    GRID_STRIDE(i, (u64)n) a[i] = f2bf(bf2f(a[i]) * sigm(bf2f(z[i])));\n"
"}\n"
"\n"
"// ---- Gated DeltaNet ----\n"
"// thread per (b, channel c < C): qkv[b][c] = silu(sum_i w[c][i] win[i]), win = [tail rows | proj row]\n"
"extern \"C\" __global__ void gdn_conv(bf16 *qkv, bf16 *tails, const bf16 *proj, const bf16 *w, int B, int P,\n"
"                                     int C, int K) {\n"
"    GRID_STRIDE(i, (u64)B * C) {\n"
"        int b = (int)(i / C), c = (int)(i % C);\n"
"        bf16 *tail = tails + (u64)b * (K - 1) * C;\n"
"        bf16 xn = proj[(u64)b * P + c];\n"
"        float acc = bf2f(w[(u64)c * K + K - 1]) * bf2f(xn);\n"
"        for (int t = 0; t < K - 1; t++) acc += bf2f(w[(u64)c * K + t]) * bf2f(tail[(u64)t * C + c]);\n"
"        qkv[(u64)b * C + c] = f2bf(acc * sigm(acc));\n"
"        for (int t = 0; t + 1 < K - 1; t++) tail[(u64)t * C + c] = tail[(u64)(t + 1) * C + c];\n"
"        if (K > 1) tail[(u64)(K - 2) * C + c] = xn;\n"
"    }\n"
"}\n"
"\n"
"// grid (H, B), D threads (D <= 1024); shared: q, k, u [D]. Thread j owns column j of the state:\n"
"// pred_j = sum_i S[i][j] k_i, u_j = beta (v_j - a pred_j), S[i][j] <- a S[i][j] + k_i u_j,\n"
"// o_j = scale sum_i S[i][j] q_i (attn/gdn.h's gdn_recurrent_seq_).\n"
"extern \"C\" __global__ void gdn_state(bf16 *o, float *state, const bf16 *qkv, const float *g, const float *beta,\n"
"                                      int D, float scale) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, HD = H * D, j = threadIdx.x;\n"
"    float *q = sm, *k = sm + D;\n"
"    const bf16 *row = qkv + (u64)b * 3 * HD;\n"
"    q[j] = bf2f(row[h * D + j]);\n"
"    k[j] = bf2f(row[HD + h * D + j]);\n"
"    float vj = bf2f(row[2 * HD + h * D + j]);\n"
"    __syncthreads();\n"
"    float a = __expf(g[(u64)b * H + h]), be = beta[(u64)b * H + h];\n"
"    float *Sm = state + ((u64)b * H + h) * D * D;\n"
"    float pred = 0.0f;\n"
"    for (int i = 0; i < D; i++) pred += Sm[(u64)i * D + j] * k[i];\n"
"    float uj = be * (vj - a * pred), out = 0.0f;\n"
"    for (int i = 0; i < D; i++) {\n"
"        float s = a * Sm[(u64)i * D + j] + k[i] * uj;\n"
"        Sm[(u64)i * D + j] = s;\n"
"        out += s * q[i];\n"
"    }\n"
"    o[(u64)b * HD + h * D + j] = f2bf(out * scale);\n"
"}\n"
"\n"
"// ---- generic rows (DSA) ----\n"
"// grid rows: x[row][:width] <- RoPE_pos(RMSNorm(x[row]) * w) over its first rd (w NULL: no norm)\n"
"extern \"C\" __global__ void rope_rows(bf16 *x, const bf16 *w, const int *pos_p, int width, int rd, float eps,\n"
"                                      float theta) {\n"
"    u64 base = (u64)blockIdx.x * width;\n"
"    int pos = *pos_p, half = rd / 2;\n"
"    float rs = 1.0f;\n"
"    if (w) {\n"
"        float ss = 0.0f;\n"
"        for (int e = threadIdx.x; e < width; e += blockDim.x) { float t = bf2f(x[base + e]); ss += t * t; }\n"
"        rs = rsqrtf(block_sum(ss) / (float)width + eps);\n"
"        // block_sum's barriers: every read above is done before the writes below\n"
"        for (int e = threadIdx.x; e < width; e += blockDim.x)\n"
"            x[base + e] = f2bf(bf2f(x[base + e]) * rs * bf2f(w[e]));\n"
"        __syncthreads();\n"
"    }\n"
"    for (int i = threadIdx.x; i < half; i += blockDim.x) {\n"
"        float a = bf2f(x[base + i]), c = bf2f(x[base + i + half]);\n"
"        rope_pair(&a, &c, i, rd, pos, theta);\n"
"        x[base + i] = f2bf(a);\n"
"        x[base + i + half] = f2bf(c);\n"
"    }\n"
"}\n"
"\n"
"// grid B: cache[b * seq + (pos % S) * slot + col + e] = src[b][e]\n"
"extern \"C\" __global__ void put_rows(bf16 *cache, const bf16 *src, const int *pos_p, int width, int S, u64 seq,\n"
"                                     u64 slot, u64 col) {\n"
"    int b = blockIdx.x;\n"
"    bf16 *dst = cache + (u64)b * seq + (u64)(*pos_p % S) * slot + col;\n"
"    for (int e = threadIdx.x; e < width; e += blockDim.x) dst[e] = src[(u64)b * width + e];\n"
"}\n"
"\n"
"// ---- hier: grid B. cache [B][rows][2 kvd]: ring slots 0..ring-1 (the window, pos % ring),\n"
"// then one row per block (ring + j); run [B][2 kvd] fp32, the sums of the block being filled.\n"
"// The token at pos (its k, v already in slot pos % ring) joins its block's sum; when it ends the\n"
"// block, the block's mean goes to row ring + pos / P and the sum restarts. Then the rows query\n"
"// pos sees: complete blocks ending before its window (attn/hier.h), then the window's slots.\n"
"extern \"C\" __global__ void hier_pool(bf16 *cache, float *run, int *list, int *count, const int *pos_p, int rows,\n"
"                                      int ring, int kvd, int window, int P) {\n"
"    int b = blockIdx.x, pos = *pos_p;\n"
"    const bf16 *src = cache + ((u64)b * rows + pos % ring) * 2 * kvd;\n"
"    float *r = run + (u64)b * 2 * kvd;\n"
"    bool ends = pos % P == P - 1;\n"
"    bf16 *mean = cache + ((u64)b * rows + ring + pos / P) * 2 * kvd;\n"
"    for (int e = threadIdx.x; e < 2 * kvd; e += blockDim.x) {\n"
"        float s = r[e] + bf2f(src[e]);\n"
"        if (ends) { mean[e] = f2bf(s / (float)P); s = 0.0f; }\n"
"        r[e] = s;\n"
"    }\n"
"    int first = first_key(pos, window), nc = pos - window + 1 > 0 ? (pos - window + 1) / P : 0;\n"
"    int *li = list + (u64)b * rows;\n"
"    for (int j = threadIdx.x; j < nc; j += blockDim.x) li[j] = ring + j;\n"
"    for (int s = first + threadIdx.x; s <= pos; s += blockDim.x) li[nc + s - first] = s % ring;\n"
"    if (threadIdx.x == 0) count[b] = nc + pos - first + 1;\n"
"}\n"
"\n"
"// ---- prefill (the rooms' gpu_prefill, tuning.dec_prefill) ----\n"
"// grid (T, B): the rows t >= T - S of each sequence's T source rows into a cache of S slots,\n"
"// dst[b * seq + slot * slot_ld + e] = src[(b * T + t) * src_ld + e] for e < width, in 16-bit units\n"
"// (an fp32 row is 2 units per value); slot = t % S for a ring (the decode step's pos % S), else\n"
"// t - (T - S): the last S rows in order (a conv tail), slots before position 0 left as they are.\n"
"// Each slot is written by one row (the last position that lands on it), so the blocks never race.\n"
"extern \"C\" __global__ void fill_rows(unsigned short *dst, const unsigned short *src, int T, int S, int width,\n"
"                                      u64 src_ld, u64 seq, u64 slot_ld, int ring) {\n"
"    int t = blockIdx.x, b = blockIdx.y;\n"
"    if (t < T - S) return;\n"
"    int slot = ring ? t % S : t - (T - S);\n"
"    const unsigned short *from = src + ((u64)b * T + t) * src_ld;\n"
"    unsigned short *to = dst + (u64)b * seq + (u64)slot * slot_ld;\n"
"    for (int e = threadIdx.x; e < width; e += blockDim.x) to[e] = from[e];\n"
"}\n"
"\n"
"// the order-preserving unsigned key of a float (larger float, larger key)\n"
"__device__ __forceinline__ u32 fkey(float x) {\n"
"    u32 u = __float_as_uint(x);\n"
"    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);\n"
"}\n"
"// grid (ceil(cap / ISC_KEYS), B), block 256: scores[b][s] = sum_j w_j relu(q_j . k_s) for the\n"
"// block's ISC_KEYS positions s <= pos (attn/dsa.h's sparse_index_score_); nothing when pos + 1 <=\n"
"// topk (dsa_select then lists every position). L = dI / 8 lanes per key, 8 dims each, their\n"
"// products summed by shuffles, so one load instruction of a warp reads 32 / L whole rows (one\n"
"// contiguous span); a warp's loads for its ISC_KEYS / 8 keys are all issued before the first use.\n"
"// Shared: the indexer queries [HI * dI] and weights [HI] fp32.\n"
"#define ISC_KEYS 256\n"
"extern \"C\" __global__ void __launch_bounds__(256) dsa_iscore(float *scores, const bf16 *ikc, const bf16 *iq,\n"
"                                                          const bf16 *iw, const int *pos_p, int cap, int HI,\n"
"                                                          int dI, int topk) {\n"
"    extern __shared__ float sm[];\n"
"    int b = blockIdx.y, n = *pos_p + 1, s0 = blockIdx.x * ISC_KEYS;\n"
"    if (n <= topk || s0 >= n) return;\n"
"    float *q = sm, *w = sm + HI * dI;\n"
"    for (int i = threadIdx.x; i < HI * dI; i += blockDim.x) q[i] = bf2f(iq[(u64)b * HI * dI + i]);\n"
"    for (int i = threadIdx.x; i < HI; i += blockDim.x) w[i] = bf2f(iw[(u64)b * HI + i]);\n"
"    __syncthreads();\n"
"    int L = dI / 8, kpw = 32 / L, lane = threadIdx.x & 31, l = lane % L;\n"
"    int e = s0 + (threadIdx.x >> 5) * (ISC_KEYS / 8) + lane / L; // this lane's first key; then every kpw-th\n"
"    uint4 kv[16]; // L <= 16 steps of kpw keys cover the warp's 32\n"
"#pragma unroll\n"
"    for (int st = 0; st < 16; st++) {\n"
"        int s = e + st * kpw;\n"
"        kv[st] = st < L && s < n ? *(const uint4 *)(ikc + ((u64)b * cap + s) * dI + 8 * l) : make_uint4(0u, 0u, 0u, 0u);\n"
"    }\n"
"    const float *qq = q + 8 * l;\n"
"#pragma unroll\n"
"    for (int st = 0; st < 16; st++) {\n"
"        if (st >= L) break;\n"
"        int s = e + st * kpw;\n"
"        float kf[8], acc = 0.0f;\n"
"        dec_unpack8(kv[st], kf);\n"
"        for (int j = 0; j < HI; j++) {\n"
"            float a = 0.0f;\n"
"#pragma unroll\n"
"            for (int k = 0; k < 8; k++) a += qq[j * dI + k] * kf[k];\n"
"            for (int off = L / 2; off > 0; off /= 2) a += __shfl_xor_sync(0xffffffffu, a, off);\n"
"            if (a > 0.0f) acc += w[j] * a;\n"
"        }\n"
"        if (l == 0 && s < n) scores[(u64)b * cap + s] = acc;\n"
"    }\n"
"}\n"
"\n"
"// grid B, block 1024 (32 warps): the top k of dsa_iscore's scores by (score desc, position asc),\n"
"// list[b][0..count) ascending. The k-th largest score's key t, 4 bits a pass from the top: each\n"
"// pass counts the next digit of the keys that match t so far (16 counters a thread, summed a warp\n"
"// then a column at a time: no atomics, the same counts every run) and keeps the digit holding\n"
"// the need-th largest. Then each warp takes a contiguous range of positions and, after one scan\n"
"// of the warps' counts, writes the keys above t and the ties at t that still fit, lowest\n"
"// positions first, in position order (ballots rank them inside a warp).\n"
"extern \"C\" __global__ void __launch_bounds__(1024) dsa_select(int *list, int *count, const float *scores,\n"
"                                                           const int *pos_p, int cap, int topk) {\n"
"    __shared__ float cnt[32][16], tot[16];\n"
"    __shared__ int pick[2], wa[32], wt[32];\n"
"    int b = blockIdx.x, n = *pos_p + 1, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;\n"
"    const float *sc = scores + (u64)b * cap;\n"
"    int *out = list + (u64)b * cap;\n"
"    if (n <= topk) { // every position\n"
"        for (int s = tid; s < n; s += blockDim.x) out[s] = s;\n"
"        if (tid == 0) count[b] = n;\n"
"        return;\n"
"    }\n"
"    u32 t = 0u, mask = 0u;\n"
"    int need = topk; // how many of the keys matching t so far are still to take\n"
"    for (int shift = 28; shift >= 0; shift -= 4) {\n"
"        float c[16];\n"
"#pragma unroll\n"
"        for (int d = 0; d < 16; d++) c[d] = 0.0f;\n"
"        for (int s = tid; s < n; s += blockDim.x) {\n"
"            u32 key = fkey(sc[s]);\n"
"            if ((key & mask) != t) continue;\n"
"            u32 dg = (key >> shift) & 15u;\n"
"#pragma unroll\n"
"            for (int d = 0; d < 16; d++) c[d] += dg == (u32)d ? 1.0f : 0.0f;\n"
"        }\n"
"#pragma unroll\n"
"        for (int d = 0; d < 16; d++) {\n"
"            float v = warp_sum(c[d]); // counts < 2^24: exact in fp32\n"
"            if (lane == 0) cnt[warp][d] = v;\n"
"        }\n"
"        __syncthreads();\n"
"        if (warp == 0) {\n"
"            if (lane < 16) {\n"
"                float a = 0.0f;\n"
"                for (int w2 = 0; w2 < nw; w2++) a += cnt[w2][lane];\n"
"                tot[lane] = a;\n"
"            }\n"
"            __syncwarp();\n"
"            if (lane == 0) {\n"
"                int above = 0, d = 15;\n"
"                for (; d > 0 && above + (int)tot[d] < need; d--) above += (int)tot[d];\n"
"                pick[0] = d;\n"
"                pick[1] = need - above;\n"
"            }\n"
"        }\n"
"        __syncthreads(); // pick is read below; cnt is written again only after the next pass's loop\n"
"        t |= (u32)pick[0] << shift;\n"
"        mask |= 15u << shift;\n"
"        need = pick[1];\n"
"    }\n"
"    // keys above t and ties at t in each warp's range [a0, a1), a multiple of 32 wide\n"
"    int seg = ((n + nw - 1) / nw + 31) / 32 * 32, a0 = warp * seg, a1 = a0 + seg < n ? a0 + seg : n;\n"
"    int above = 0, ties = 0;\n"
"    for (int s0 = a0; s0 < a1; s0 += 32) {\n"
"        int s = s0 + lane;\n"
"        u32 key = s < a1 ? fkey(sc[s]) : 0u;\n"
"        above += __popc(__ballot_sync(0xffffffffu, s < a1 && key > t));\n"
"        ties += __popc(__ballot_sync(0xffffffffu, s < a1 && key == t));\n"
"    }\n"
"    if (lane == 0) { wa[warp] = above; wt[warp] = ties; }\n"
"    __syncthreads();\n"
"    int tb = 0, sb = 0; // ties seen and positions taken before this warp's range\n"
"    for (int w2 = 0; w2 < warp; w2++) {\n"
"        int left = need - tb > 0 ? need - tb : 0;\n"
"        sb += wa[w2] + (wt[w2] < left ? wt[w2] : left);\n"
"        tb += wt[w2];\n"
"    }\n"
"    unsigned before = (1u << lane) - 1u;\n"
"    for (int s0 = a0; s0 < a1; s0 += 32) {\n"
"        int s = s0 + lane;\n"
"        u32 key = s < a1 ? fkey(sc[s]) : 0u;\n"
"        int tie = s < a1 && key == t;\n"
"        unsigned tm = __ballot_sync(0xffffffffu, tie);\n"
"        int sel = s < a1 && (key > t || (tie && tb + __popc(tm & before) < need));\n"
"        unsigned sm2 = __ballot_sync(0xffffffffu, sel);\n"
"        if (sel) out[sb + __popc(sm2 & before)] = s;\n"
"        tb += __popc(tm);\n"
"        sb += __popc(sm2);\n"
"    }\n"
"    if (tid == 0) count[b] = topk; // the keys above t and need ties: topk in all\n"
"}\n"
"\n"
"// grid (H, B, NS): split z of the listed rows (see split-K above); shared: q [hd] fp32.\n"
"// kvc [B][cap][2 * KV * hd] (K row then V row per slot); p [B][H][cap]; part [B][H][NS][hd + 2]\n"
"extern \"C\" __global__ void dsa_attend(float *part, float *p_all, const bf16 *kvc, const bf16 *qr, const int *list,\n"
"                                       const int *count, int KV, int hd, int cap, int CH) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, z = blockIdx.z, H = gridDim.x, NS = gridDim.z, kvd = KV * hd;\n"
"    int kh = h / (H / KV), n = count[b], j0 = z * CH, j1 = j0 + CH < n ? j0 + CH : n;\n"
"    float *pt = part + (((u64)b * H + h) * NS + z) * (hd + 2);\n"
"    if (j0 >= j1) {\n"
"        if (threadIdx.x == 0) { pt[hd] = NEG_INF; pt[hd + 1] = 0.0f; }\n"
"        return;\n"
"    }\n"
"    float *q = sm, *p = p_all + ((u64)b * H + h) * cap, scale = rsqrtf((float)hd);\n"
"    const int *li = list + (u64)b * cap;\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) q[e] = bf2f(qr[((u64)b * H + h) * hd + e]);\n"
"    __syncthreads();\n"
"    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
"    for (int j = j0 + warp; j < j1; j += nw) {\n"
"        const bf16 *kr = kvc + ((u64)b * cap + li[j]) * 2 * kvd + kh * hd;\n"
"        float acc = 0.0f;\n"
"        for (int e = lane; e < hd; e += 32) acc += q[e] * bf2f(kr[e]);\n"
"        acc = warp_sum(acc);\n"
"        if (lane == 0) p[j] = acc * scale;\n"
"    }\n"
"    __syncthreads();\n"
"    float m, l = softmax_range(p, j0, j1, &m);\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) {\n"
"        float acc = 0.0f;\n"
"        for (int j = j0; j < j1; j++) acc += p[j] * bf2f(kvc[((u64)b * cap + li[j]) * 2 * kvd + kvd + kh * hd + e]);\n"
"        pt[e] = acc;\n"
"    }\n"
"    if (threadIdx.x == 0) { pt[hd] = m; pt[hd + 1] = l; }\n"
"}\n"
"\n"
"// grid (H, B): dsa_attend's splits merged into att [B][H][hd] bf16 (shared: hd fp32)\n"
"extern \"C\" __global__ void dsa_merge(bf16 *att, const float *part, const int *count, int hd, int CH, int NS) {\n"
"    extern __shared__ float sm[];\n"
"    int h = blockIdx.x, b = blockIdx.y, H = gridDim.x, nc = (count[b] + CH - 1) / CH;\n"
"    merge_parts(sm, part + ((u64)b * H + h) * NS * (hd + 2), nc < NS ? nc : NS, hd);\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) att[((u64)b * H + h) * hd + e] = f2bf(sm[e]);\n"
"}\n";

static CUfunction dec_rooms_k_(Gpu *gpu, const char *name) { return gpu_kernel(gpu, DECODE_ROOMS_SRC, name, NULL); }

GPUDEF void gpu_dec_mla_append(Gpu *gpu, void *cache, const void *kva, const void *gamma, const int *pos, int B, int S,
                               int r, int rope, float eps, float theta) {
    void *args[] = {&cache, &kva, &gamma, &pos, &S, &r, &rope, &eps, &theta};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mla_append"), (unsigned)B, 1, 1, DEC_THREADS, 1, 1, 0, args);
}

GPUDEF void gpu_dec_mla_qkn(Gpu *gpu, float *q, void *cache, const void *qf, const void *kvb, const void *kva,
                            const void *qw, const void *kw, const int *pos, int B, int H, int S, int qk, int v, int r,
                            int rope, float eps, float theta) {
    void *args[] = {&q, &cache, &qf, &kvb, &kva, &qw, &kw, &pos, &S, &qk, &v, &r, &rope, &eps, &theta};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mla_qkn"), (unsigned)H, (unsigned)B, 1, 128, 1, 1,
               (unsigned)(sizeof(float) * 2 * (size_t)qk), args);
}

GPUDEF void gpu_dec_mla_attend(Gpu *gpu, void *ol, float *p, const void *cache, const void *qf, const void *wkvb,
                               const int *pos, int B, int H, int S, int window, int r, int rope, int nope, int v,
                               float scale, float theta) {
    int CH = gpu_dec_split_rows(S), NS = gpu_dec_splits(S);
    float *part = p + (size_t)B * H * S; /* gpu_dec_split_floats(B, H, S, r) in all */
    void *args[] = {&part, &p, &cache, &qf, &wkvb, &pos, &S, &window, &r, &rope, &nope, &v, &scale, &theta, &CH};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mla_attend"), (unsigned)H, (unsigned)B, (unsigned)NS, DEC_THREADS, 1, 1,
               (unsigned)(sizeof(float) * ((size_t)r + rope)), args);
    void *a2[] = {&ol, &part, &wkvb, &pos, &window, &r, &nope, &v, &CH, &NS};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mla_merge"), (unsigned)H, (unsigned)B, 1, DEC_THREADS, 1, 1,
               (unsigned)(sizeof(float) * r), a2);
}

GPUDEF void gpu_dec_mga_append(Gpu *gpu, void *cache, void *u, const void *g, const void *v, const void *x,
                               const void *wc, const int *pos, int B, int S, int H, int KV, int hd, int d, int gate) {
    void *args[] = {&cache, &u, &g, &v, &x, &wc, &pos, &S, &H, &KV, &hd, &d, &gate};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mga_append"), (unsigned)B, 1, 1, DEC_THREADS, 1, 1, 0, args);
}

GPUDEF void gpu_dec_mga_attend(Gpu *gpu, void *att, float *p, void *cache, const int *pos, int B, int S, int H, int KV,
                               int hd, int d, int window, float eps) {
    int CH = gpu_dec_split_rows(S), NS = gpu_dec_splits(S);
    /* gpu_dec_split_floats(B, H, S, hd + 1) in all: the scores, the partials, the cosine sums */
    float *part = p + (size_t)B * H * S, *psum = part + (size_t)B * H * NS * (hd + 2);
    unsigned smem = (unsigned)(sizeof(float) * hd);
    void *a1[] = {&psum, &p, &cache, &pos, &S, &KV, &hd, &d, &window, &eps, &CH};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mga_scores"), (unsigned)H, (unsigned)B, (unsigned)NS, DEC_THREADS, 1, 1, smem, a1);
    void *a2[] = {&part, &psum, &p, &cache, &pos, &S, &KV, &hd, &d, &window, &CH};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mga_attend"), (unsigned)H, (unsigned)B, (unsigned)NS, DEC_THREADS, 1, 1, 0, a2);
    void *a3[] = {&att, &part, &psum, &cache, &pos, &S, &KV, &hd, &d, &window, &CH, &NS};
    gpu_launch(gpu, dec_rooms_k_(gpu, "mga_merge"), (unsigned)H, (unsigned)B, 1, DEC_THREADS, 1, 1, smem, a3);
}

GPUDEF void gpu_dec_sigmoid_mul(Gpu *gpu, void *a, const void *z, int n) {
    void *args[] = {&a, &z, &n};
    gpu_launch(gpu, dec_rooms_k_(gpu, "sigmoid_mul"), (unsigned)((n + DEC_THREADS - 1) / DEC_THREADS), 1, 1, DEC_THREADS,
               1, 1, 0, args);
}

GPUDEF void gpu_dec_gdn_conv(Gpu *gpu, void *qkv, void *tails, const void *proj, const void *w, int B, int P, int C,
                             int K) {
    void *args[] = {&qkv, &tails, &proj, &w, &B, &P, &C, &K};
    size_t n = (size_t)B * C;
    gpu_launch(gpu, dec_rooms_k_(gpu, "gdn_conv"), (unsigned)((n + DEC_THREADS - 1) / DEC_THREADS), 1, 1, DEC_THREADS, 1,
               1, 0, args);
}

GPUDEF void gpu_dec_gdn_state(Gpu *gpu, void *o, float *state, const void *qkv, const float *g, const float *beta,
                              int B, int H, int D, float scale) {
    void *args[] = {&o, &state, &qkv, &g, &beta, &D, &scale};
    gpu_launch(gpu, dec_rooms_k_(gpu, "gdn_state"), (unsigned)H, (unsigned)B, 1, (unsigned)D, 1, 1,
               (unsigned)(sizeof(float) * 2 * D), args);
}

GPUDEF void gpu_dec_rope_rows(Gpu *gpu, void *x, const void *norm_w, const int *pos, int rows, int width, int rd,
                              float eps, float theta) {
    void *args[] = {&x, &norm_w, &pos, &width, &rd, &eps, &theta};
    gpu_launch(gpu, dec_rooms_k_(gpu, "rope_rows"), (unsigned)rows, 1, 1, 128, 1, 1, 0, args);
}

GPUDEF void gpu_dec_put_rows(Gpu *gpu, void *cache, const void *src, const int *pos, int B, int width, int S,
                             size_t seq_stride, size_t slot_stride, size_t col) {
    unsigned long long seq = seq_stride, slot = slot_stride, c = col;
    void *args[] = {&cache, &src, &pos, &width, &S, &seq, &slot, &c};
    gpu_launch(gpu, dec_rooms_k_(gpu, "put_rows"), (unsigned)B, 1, 1, 128, 1, 1, 0, args);
}

GPUDEF void gpu_dec_dsa_select(Gpu *gpu, int *list, int *count, float *scores, const void *ikc, const void *iq,
                               const void *iw, const int *pos, int B, int cap, int HI, int dI, int topk) {
    if (dI < 8 || dI > 128 || dI & (dI - 1)) {
        fprintf(stderr, "gpu_dec_dsa_select: indexer dim %d: expected 8, 16, 32, 64 or 128\n", dI);
        abort();
    }
    void *a1[] = {&scores, &ikc, &iq, &iw, &pos, &cap, &HI, &dI, &topk};
    gpu_launch(gpu, dec_rooms_k_(gpu, "dsa_iscore"), (unsigned)((cap + 255) / 256), (unsigned)B, 1, 256, 1, 1,
               (unsigned)(sizeof(float) * ((size_t)HI * dI + HI)), a1);
    void *a2[] = {&list, &count, &scores, &pos, &cap, &topk};
    gpu_launch(gpu, dec_rooms_k_(gpu, "dsa_select"), (unsigned)B, 1, 1, 1024, 1, 1, 0, a2);
}

GPUDEF void gpu_dec_hier_pool(Gpu *gpu, void *cache, float *run, int *list, int *count, const int *pos, int B,
                              int rows, int ring, int kvd, int window, int block) {
    void *args[] = {&cache, &run, &list, &count, &pos, &rows, &ring, &kvd, &window, &block};
    gpu_launch(gpu, dec_rooms_k_(gpu, "hier_pool"), (unsigned)B, 1, 1, DEC_THREADS, 1, 1, 0, args);
}

GPUDEF void gpu_dec_dsa_attend(Gpu *gpu, void *att, float *p, const void *kvc, const void *q, const int *list,
                               const int *count, int B, int H, int KV, int hd, int cap) {
    int CH = gpu_dec_split_rows(cap), NS = gpu_dec_splits(cap);
    float *part = p + (size_t)B * H * cap; /* gpu_dec_split_floats(B, H, cap, hd) in all */
    void *args[] = {&part, &p, &kvc, &q, &list, &count, &KV, &hd, &cap, &CH};
    gpu_launch(gpu, dec_rooms_k_(gpu, "dsa_attend"), (unsigned)H, (unsigned)B, (unsigned)NS, DEC_THREADS, 1, 1,
               (unsigned)(sizeof(float) * hd), args);
    void *a2[] = {&att, &part, &count, &hd, &CH, &NS};
    gpu_launch(gpu, dec_rooms_k_(gpu, "dsa_merge"), (unsigned)H, (unsigned)B, 1, DEC_THREADS, 1, 1,
               (unsigned)(sizeof(float) * hd), a2);
}

GPUDEF void gpu_dec_fill_rows(Gpu *gpu, void *dst, const void *src, int B, int T, int S, int width, size_t src_ld,
                              size_t seq, size_t slot_ld, int ring) {
    if (B < 1 || T < 1 || S < 1 || width < 1) return; /* nothing to copy (a conv of size 1 has no tail) */
    unsigned long long sl = src_ld, sq = seq, st = slot_ld;
    void *args[] = {&dst, &src, &T, &S, &width, &sl, &sq, &st, &ring};
    gpu_launch(gpu, dec_rooms_k_(gpu, "fill_rows"), (unsigned)T, (unsigned)B, 1, 128, 1, 1, 0, args);
}

/* one source for arch: its failure (1) or 0, the log on stderr either way (a kernel should
   never need to spill or warn) */
static int dec_compile_one_(const char *src, const char *what, const char *arch) {
    char *log = NULL;
    int failed = gpu_compile_ptx(src, "", arch, NULL, &log) != 0;
    if (failed || (log && log[0]))
        fprintf(stderr, "gpu_decode_kernels_compile_check: %s for %s%s:\n%s\n", what, arch,
                failed ? " failed" : " (log)", log ? log : "");
    free(log);
    return failed;
}

GPUDEF int gpu_decode_kernels_compile_check(const char *arch) {
    return dec_compile_one_(DECODE_SRC, "DECODE_SRC (dense, sampler)", arch) +
           dec_compile_one_(DECODE_ROOMS_SRC, "DECODE_ROOMS_SRC (MLA, MGA, GDN, DSA)", arch);
}

#endif /* GPU_IMPLEMENTATION && !ABLATE_NO_CUDA */
