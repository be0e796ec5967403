/* attn/decode.cu.h - GPU generation kernels: the dense room's one-token decode step over its
   KV cache (flash-decoding: split-K over the cached positions, then a combine), the cache fill
   after a prefill, and the model's device sampler (smollm.h's GPU generation).

   USAGE
     #include "gpu.h"
     #include "attn/decode.cu.h"  // declarations; definitions with GPU_IMPLEMENTATION
   DEPENDS ON: gpu.h (included first). Declarations only with -DABLATE_CUDA.

   THE CACHE (attn/dense.h's slot rules, the CPU cache's layout in bf16):
     cache [B][S][2][KV*hd] bf16: slot s of sequence b holds k (KV*hd) then v (KV*hd). The slot
     of position p is p for p < G, else G + (p - G) % ring (S = G + ring; a plain cache has G 0
     and ring S = cap; a window's ring is W; attn_dense_dec_ring gives G and ring). Slots
     0..min(p+1, S)-1 are filled at position p; the position a filled slot s >= G holds is the
     latest p' <= p with slot(p') = s.
     GpuDecShape carries the shape; the position is read on the device (*d_pos) so a captured
     CUDA graph of a step replays at any position.

   API (device pointers)
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
     decode_kernels_compile_check(arch)  NVRTC-compiles the source (tests/nvrtc_compile).

   DESIGN. Split-K: block (b, kv head, chunk of DEC_CHUNK slots), all GROUP query heads of
   the kv head at once, so a GQA group reads its keys and values once; one thread scores one
   slot for every head, a warp per head reduces max and sum, threads over (head, dim) sum the
   weighted values. Chunks past the filled slots exit at once and the combine reads only the
   filled ones: the grid is fixed by cap (graph-replayable), the work by the position. fp32
   scores, softmax and accumulation; bf16 cache. Everything takes its sizes at run time: one
   compile serves every shape.
*/
#ifndef ATTN_DECODE_CU_H
#define ATTN_DECODE_CU_H

#include "../gpu.h"
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

#define DEC_CHUNK 128 /* cache slots per split-K block (one per thread) */

typedef struct {
    int H, KV, hd;              /* query heads, kv heads, head dim (even, <= 256) */
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
GPUDEF int decode_kernels_compile_check(const char *arch);

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

static const char DECODE_SRC[] =
"#include \"ablate_common.cuh\"\n"
"#define CHUNK " DEC_STR(DEC_CHUNK) "\n"
"#define SAMPLE_THREADS " DEC_STR(DEC_SAMPLE_THREADS) "\n"
DEC_MASK_SRC
KSRC_LINE("attn/decode.cu.h")
"\n"
"// one warp per (b, head of q or k): QK-norm, RoPE at *d_pos (kernels.cu.h's rope_sincos\n"
"// angle), q to fp32, k and the head's v into the cache slot\n"
"extern \"C\" __global__ void dec_qkv(const bf16 *qkv, float *q, bf16 *cache, const bf16 *qn, const bf16 *kn,\n"
"                                    const int *d_pos, int H, int KV, int hd, int S, int G, int ring,\n"
"                                    float theta, float eps) {\n"
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
"// (o unnormalized: sum_j exp(s_j - m) v_j; l = sum_j exp(s_j - m); m = -inf: nothing seen)\n"
"extern \"C\" __global__ void __launch_bounds__(CHUNK)\n"
"dec_split(const float *q, const bf16 *cache, float *part, const int *d_pos, int H, int KV, int hd, int S, int G,\n"
"          int ring, int W, int glob, int stride, int dil, int pb, float scale) {\n"
"    extern __shared__ float sm[];\n"
"    int GROUP = H / KV, b = blockIdx.x / KV, kh = blockIdx.x % KV, c = blockIdx.y, NC = gridDim.y;\n"
"    int p = *d_pos, filled = p + 1 < S ? p + 1 : S, s0 = c * CHUNK;\n"
"    if (s0 >= filled) return; // nothing cached there yet: the combine stops before this chunk\n"
"    int n = filled - s0 < CHUNK ? filled - s0 : CHUNK, kvd = KV * hd, tid = threadIdx.x;\n"
"    float *qs = sm, *sc = qs + GROUP * hd, *ms = sc + GROUP * CHUNK, *ls = ms + GROUP;\n"
"    for (int i = tid; i < GROUP * hd; i += CHUNK) qs[i] = q[((u64)b * H + kh * GROUP) * hd + i] * scale;\n"
"    __syncthreads();\n"
"    const bf16 *base = cache + (u64)b * S * 2 * kvd;\n"
"    if (tid < n) {\n"
"        int s = s0 + tid, ps;\n"
"        if (s < G) ps = s;\n"
"        else { int r = s - G; ps = G + r + ring * ((p - G - r) / ring); }\n"
"        bool vis = dec_visible(p, ps, W, glob, stride, dil, pb);\n"
"        const bf16 *k = base + (u64)s * 2 * kvd + (u64)kh * hd;\n"
"        for (int g = 0; g < GROUP; g++) {\n"
"            float a = 0.0f;\n"
"            if (vis)\n"
"                for (int i = 0; i < hd; i += 2) {\n"
"                    u32 kk = *(const u32 *)(k + i);\n"
"                    a += qs[g * hd + i] * __uint_as_float(kk << 16) + qs[g * hd + i + 1] * __uint_as_float(kk & 0xffff0000u);\n"
"                }\n"
"            sc[g * CHUNK + tid] = vis ? a : NEG_INF;\n"
"        }\n"
"    } else {\n"
"        for (int g = 0; g < GROUP; g++) sc[g * CHUNK + tid] = NEG_INF;\n"
"    }\n"
"    __syncthreads();\n"
"    int warp = tid / 32, lane = tid % 32;\n"
"    for (int g = warp; g < GROUP; g += CHUNK / 32) { // a warp per head: max, exp, sum\n"
"        float m = NEG_INF;\n"
"        for (int j = lane; j < CHUNK; j += 32) m = fmaxf(m, sc[g * CHUNK + j]);\n"
"        m = warp_max(m);\n"
"        float l = 0.0f;\n"
"        for (int j = lane; j < CHUNK; j += 32) {\n"
"            float e = m == NEG_INF ? 0.0f : __expf(sc[g * CHUNK + j] - m);\n"
"            sc[g * CHUNK + j] = e;\n"
"            l += e;\n"
"        }\n"
"        l = warp_sum(l);\n"
"        if (lane == 0) { ms[g] = m; ls[g] = l; }\n"
"    }\n"
"    __syncthreads();\n"
"    for (int e = tid; e < GROUP * hd; e += CHUNK) {\n"
"        int g = e / hd, i = e % hd;\n"
"        float o = 0.0f;\n"
"        const bf16 *v = base + (u64)s0 * 2 * kvd + kvd + (u64)kh * hd + i;\n"
"        for (int j = 0; j < n; j++) o += sc[g * CHUNK + j] * bf2f(v[(u64)j * 2 * kvd]);\n"
"        float *pt = part + (((u64)b * H + kh * GROUP + g) * NC + c) * (hd + 2);\n"
"        pt[i] = o;\n"
"        if (i == 0) { pt[hd] = ms[g]; pt[hd + 1] = ls[g]; }\n"
"    }\n"
"}\n"
"\n"
"// block (b * H + h): the filled chunks' partials merged, normalized, to bf16\n"
"extern \"C\" __global__ void dec_combine(const float *part, bf16 *att, const int *d_pos, int H, int hd, int S,\n"
"                                        int NC) {\n"
"    int bh = blockIdx.x, p = *d_pos, filled = p + 1 < S ? p + 1 : S;\n"
"    int nc = (filled + CHUNK - 1) / CHUNK;\n"
"    const float *pt = part + (u64)bh * NC * (hd + 2);\n"
"    float M = NEG_INF;\n"
"    for (int c = 0; c < nc; c++) M = fmaxf(M, pt[(u64)c * (hd + 2) + hd]);\n"
"    for (int i = threadIdx.x; i < hd; i += blockDim.x) {\n"
"        float o = 0.0f, L = 0.0f;\n"
"        for (int c = 0; c < nc; c++) {\n"
"            const float *q = pt + (u64)c * (hd + 2);\n"
"            if (q[hd] == NEG_INF) continue;\n"
"            float f = __expf(q[hd] - M);\n"
"            o += f * q[i];\n"
"            L += f * q[hd + 1];\n"
"        }\n"
"        att[(u64)bh * hd + i] = f2bf(L > 0.0f ? o / L : 0.0f);\n"
"    }\n"
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
    if (sh->hd < 2 || sh->hd % 2 || sh->hd > 256 || sh->KV < 1 || sh->H % sh->KV || sh->S < 1 || sh->ring < 1 ||
        sh->G + sh->ring != sh->S) {
        fprintf(stderr, "%s: shape H %d KV %d hd %d S %d G %d ring %d: expected hd even <= 256, KV dividing H, "
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
    gpu_launch(g, dec_k_(g, "dec_qkv"), (unsigned)B, (unsigned)(H + KV), 1, 32, 1, 1, 0, args);
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
    gpu_launch(g, dec_k_(g, "dec_split"), (unsigned)(B * KV), (unsigned)NC, 1, DEC_CHUNK, 1, 1, smem, a1);
    void *a2[] = {&part, &att, &d_pos, &H, &hd, &S, &NC};
    gpu_launch(g, dec_k_(g, "dec_combine"), (unsigned)(B * H), 1, 1, (unsigned)(hd < 128 ? 64 : 128), 1, 1, 0, a2);
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

GPUDEF int decode_kernels_compile_check(const char *arch) {
    char *log = NULL;
    int rc = gpu_compile_ptx(DECODE_SRC, "", arch, NULL, &log);
    if (rc) fprintf(stderr, "decode_kernels_compile_check: %s failed:\n%s\n", arch, log ? log : "");
    else if (log && log[0]) printf("      log:\n%s\n", log);
    free(log);
    return rc != 0;
}

#endif /* GPU_IMPLEMENTATION && !ABLATE_NO_CUDA */
