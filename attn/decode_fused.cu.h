/* attn/decode_fused.cu.h - the fused small-batch decode step's kernels (smollm.h, tuning
   dec_fused=1): a skinny GEMM (GEMV for one row) of our own with the RMSNorm, residual add and
   SwiGLU folded into it, and one attention kernel per layer that does the dense room's RoPE,
   cache append, split-K attention and merge. A decode step of a small batch reads 270 MB of
   weights in ~0.06 ms on an H200; what costs is the number of kernels and each one's latency,
   so a layer here is 5 kernels instead of ~10.

   USAGE
     #include "gpu.h"
     #include "attn/decode_fused.cu.h"  // declarations; definitions with GPU_IMPLEMENTATION
   DEPENDS ON: gpu.h, attn/decode.cu.h (GpuDecShape, the cache layout and DEC_CHUNK).

   API (device pointers; activations bf16 [rows, columns], weights as op_matmul_forward takes
   them: w [OC][C], out = in @ w^T)
     gpu_fz_linear(g, out, x, w, nw, res, B, C, OC, eps, out_fp32)
       out [B][OC] = n(x) @ w^T, n(x) = RMSNorm(x) * nw rounded to bf16 (rmsnorm_forward's
       arithmetic; nw NULL: x as it is). out_fp32: fp32 out (the LM head's logits); else bf16,
       plus res [B][OC] when res is given: bf16(res + bf16(y)) (op_add's rounding).
     gpu_fz_swiglu(g, act, x, w, nw, B, C, F, eps)
       w [2F][C] the fused gate|up weights: act [B][F] = silu(g) * u with g, u = n(x) @ w^T's
       two halves, each rounded to bf16 first (as the GEMM's bf16 output then swiglu_forward).
     gpu_fz_attend(g, sh, att, qkv, cache, qn, kn, part, cnt, d_pos, B)
       qkv [B][(H + 2 KV) hd] (the fused projection) -> att [B][H*hd]: gpu_dec_qkv then
       gpu_dec_attend in one kernel, the same arithmetic (the same bits). part: fp32 scratch of
       gpu_dec_part_bytes; cnt: B*KV ints, zero before the first call (each call leaves it 0).
     gpu_fz_smem(C)  the GEMV's shared memory bytes for C input columns (<= gpu->smem_optin).
     gpu_decode_fused_kernels_compile_check(arch)  NVRTC-compiles the source (tests/nvrtc_compile).

   DESIGN
     fz_gemv: block of 8 warps, grid (column tiles, row tiles of FZ_ROWS = 8 rows). The block
     stages its rows into shared memory (normalized: each block recomputes the rows' rstd, d is
     small), a warp owns one output column (SwiGLU: warps 0-3 gate columns j, 4-7 the matching
     up columns F + j) and walks its weight row in 16-byte loads, all of them issued before the
     staging so they are in flight during it; fp32 accumulation, one warp sum per row; the
     epilogue (residual add, SwiGLU, fp32 logits) before the single store. Batches over 8 rows
     take more row tiles, which read the weights again (from L2 mostly).
     fz_attend: dec_split's chunk body (DEC_CHUNK_SRC; block (b * KV + kv head, chunk of
     DEC_CHUNK slots)) with dec_qkv's work in front and, where the step of separate kernels
     runs dec_combine, the last block of (b, kv head) to finish merging the chunks
     (dec_chunk_merge). Each block rotates its GROUP query heads; the block whose chunk holds
     the token's slot also writes the rotated key and the value there before it reads the
     chunk. Sizes are run-time arguments: one compile serves every shape.
*/
#ifndef ATTN_DECODE_FUSED_CU_H
#define ATTN_DECODE_FUSED_CU_H

#include "../gpu.h"
#include "decode.cu.h"
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

#define FZ_ROWS 8    /* rows per GEMV block (one row tile) */
#define FZ_THREADS 256 /* 8 warps: one output column each */

GPUDEF size_t gpu_fz_smem(int C);
GPUDEF void gpu_fz_linear(Gpu *g, void *out, const void *x, const void *w, const void *nw, const void *res, int B,
                          int C, int OC, float eps, int out_fp32);
GPUDEF void gpu_fz_swiglu(Gpu *g, void *act, const void *x, const void *w, const void *nw, int B, int C, int F,
                          float eps);
GPUDEF void gpu_fz_attend(Gpu *g, const GpuDecShape *sh, void *att, const void *qkv, void *cache, const void *qn,
                          const void *kn, float *part, int *cnt, const int *d_pos, int B);
GPUDEF int gpu_decode_fused_kernels_compile_check(const char *arch);

#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* ATTN_DECODE_FUSED_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(ATTN_DECODE_FUSED_IMPLEMENTATION_DONE)
#define ATTN_DECODE_FUSED_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define FZ_STR_(x) #x
#define FZ_STR(x) FZ_STR_(x)
#define FZ_UNROLL 6 /* 16-byte weight loads in flight per lane: 6 * 256 covers C = 1536 at once */

static const char DECODE_FUSED_SRC[] =
"#include \"ablate_common.cuh\"\n"
"#define ROWS " FZ_STR(FZ_ROWS) "\n"
"#define CHUNK " FZ_STR(DEC_CHUNK) "\n"
"#define UNROLL " FZ_STR(FZ_UNROLL) "\n"
DEC_MASK_SRC
DEC_MERGE_SRC
DEC_UNPACK_SRC
DEC_DOT8_SRC
DEC_CHUNK_SRC
KSRC_LINE("attn/decode_fused.cu.h")
"\n"
"// 8 weights from row w at column c (zeros past C); vec: the row is 16-byte aligned, C % 8 == 0\n"
"__device__ __forceinline__ uint4 fz_ld8(const bf16 *w, int c, int C, int vec) {\n"
"    uint4 q;\n"
"    if (vec && c + 8 <= C) return *(const uint4 *)(w + c);\n"
"    u32 e[8];\n"
"    for (int k = 0; k < 8; k++) e[k] = c + k < C ? (u32)w[c + k] : 0u;\n"
"    q.x = e[0] | (e[1] << 16); q.y = e[2] | (e[3] << 16); q.z = e[4] | (e[5] << 16); q.w = e[6] | (e[7] << 16);\n"
"    return q;\n"
"}\n"
"\n"
"\n"
"// rows b0 .. b0 + nr - 1 of x [B][C] into xs [ROWS][Cp] (Cp: C rounded up to 8, zero tail),\n"
"// normalized with nw when given: bf16(x * rstd * nw) as rmsnorm_forward stores it. A warp a row.\n"
"__device__ void fz_stage(bf16 *xs, const bf16 *x, const bf16 *nw, int b0, int nr, int C, int Cp, float eps) {\n"
"    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;\n"
"    for (int r = warp; r < nr; r += blockDim.x / 32) {\n"
"        const bf16 *src = x + (u64)(b0 + r) * C;\n"
"        bf16 *dst = xs + (u64)r * Cp;\n"
"        float rs = 1.0f;\n"
"        if (nw) {\n"
"            float ss = 0.0f;\n"
"            for (int c = lane; c < C; c += 32) { float a = bf2f(src[c]); ss += a * a; }\n"
"            rs = rsqrtf(warp_sum(ss) / C + eps);\n"
"        }\n"
"        for (int c = lane; c < Cp; c += 32)\n"
"            dst[c] = c >= C ? (bf16)0 : nw ? f2bf(bf2f(src[c]) * rs * bf2f(nw[c])) : src[c];\n"
"    }\n"
"}\n"
"\n"
"// out = epilogue(n(x) @ w^T) (the header's gpu_fz_linear, gpu_fz_swiglu). mode 0: bf16 out,\n"
"// + res when given; 1: fp32 out; 2: SwiGLU of the gate|up halves (w [2F][C], out [B][F]).\n"
"// Grid (column tiles: 8 columns, or 4 gate|up pairs; row tiles of ROWS). Block 8 warps.\n"
"extern \"C\" __global__ void __launch_bounds__(256)\n"
"fz_gemv(void *out, const bf16 *x, const bf16 *w, const bf16 *nw, const bf16 *res, int B, int C, int OC, int F,\n"
"        int mode, int vec, float eps) {\n"
"    extern __shared__ float sm[];\n"
"    float *ys = sm;                       // [ROWS][8]: the SwiGLU halves\n"
"    bf16 *xs = (bf16 *)(sm + ROWS * 8);   // [ROWS][Cp]\n"
"    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, Cp = (C + 7) / 8 * 8;\n"
"    int b0 = blockIdx.y * ROWS, nr = B - b0 < ROWS ? B - b0 : ROWS;\n"
"    int col, ok;\n"
"    if (mode == 2) {\n"
"        int j = blockIdx.x * 4 + (warp & 3);\n"
"        ok = j < F;\n"
"        col = warp < 4 ? j : F + j;\n"
"    } else {\n"
"        col = blockIdx.x * 8 + warp;\n"
"        ok = col < OC;\n"
"    }\n"
"    const bf16 *wr = w + (u64)(ok ? col : 0) * C;\n"
"    pdl_trigger(); // the next kernel may start loading its weights\n"
"    // the first UNROLL groups of the weight row, loaded before the staging so they are in flight\n"
"    // (and, launched by gpu_launch_dep, before pdl_wait: while the kernel ahead still runs)\n"
"    uint4 wv[UNROLL];\n"
"#pragma unroll\n"
"    for (int u = 0; u < UNROLL; u++) {\n"
"        int c = lane * 8 + u * 256;\n"
"        wv[u] = ok && c < C ? fz_ld8(wr, c, C, vec) : make_uint4(0u, 0u, 0u, 0u);\n"
"    }\n"
"    pdl_wait(); // x and res are the kernel ahead's output\n"
"    fz_stage(xs, x, nw, b0, nr, C, Cp, eps);\n"
"    __syncthreads();\n"
"    float acc[ROWS];\n"
"#pragma unroll\n"
"    for (int r = 0; r < ROWS; r++) acc[r] = 0.0f;\n"
"    for (int c0 = lane * 8; c0 < Cp; c0 += UNROLL * 256) {\n"
"        if (c0 != lane * 8) {\n"
"#pragma unroll\n"
"            for (int u = 0; u < UNROLL; u++) {\n"
"                int c = c0 + u * 256;\n"
"                wv[u] = ok && c < C ? fz_ld8(wr, c, C, vec) : make_uint4(0u, 0u, 0u, 0u);\n"
"            }\n"
"        }\n"
"#pragma unroll\n"
"        for (int u = 0; u < UNROLL; u++) {\n"
"            int c = c0 + u * 256;\n"
"            if (c >= Cp) break;\n"
"#pragma unroll\n"
"            for (int r = 0; r < ROWS; r++)\n"
"                if (r < nr) acc[r] += dec_dot8(wv[u], *(const uint4 *)(xs + (u64)r * Cp + c));\n"
"        }\n"
"    }\n"
"    float mine = 0.0f; // lane r keeps row r's sum\n"
"#pragma unroll\n"
"    for (int r = 0; r < ROWS; r++) {\n"
"        if (r >= nr) break;\n"
"        float t = warp_sum(acc[r]);\n"
"        if (lane == r) mine = t;\n"
"    }\n"
"    if (mode == 2) {\n"
"        if (lane < nr) ys[lane * 8 + warp] = bf2f(f2bf(mine)); // the GEMM's bf16 output\n"
"        __syncthreads();\n"
"        int t = threadIdx.x, r = t / 4, j = blockIdx.x * 4 + t % 4;\n"
"        if (r < nr && j < F) {\n"
"            float g = ys[r * 8 + t % 4], u = ys[r * 8 + 4 + t % 4];\n"
"            ((bf16 *)out)[(u64)(b0 + r) * F + j] = f2bf(g * (1.0f / (1.0f + expf(-g))) * u);\n"
"        }\n"
"        return;\n"
"    }\n"
"    if (!ok || lane >= nr) return;\n"
"    u64 o = (u64)(b0 + lane) * OC + col;\n"
"    if (mode == 1) {\n"
"        ((float *)out)[o] = mine;\n"
"        return;\n"
"    }\n"
"    float y = bf2f(f2bf(mine));\n"
"    ((bf16 *)out)[o] = f2bf(res ? bf2f(res[o]) + y : y);\n"
"}\n"
"\n"
"// block (b * KV + kv head, chunk): the header's gpu_fz_attend. dec_qkv's rotation of the query\n"
"// heads (and, in the block holding the token's slot, of its key, written with the value),\n"
"// then dec_split's chunk (dec_chunk_attend) and the last chunk's merge (dec_chunk_merge).\n"
"extern \"C\" __global__ void __launch_bounds__(CHUNK)\n"
"fz_attend(const bf16 *qkv, bf16 *att, bf16 *cache, float *part, int *cnt, const bf16 *qn, const bf16 *kn,\n"
"          const int *d_pos, int H, int KV, int hd, int S, int G, int ring, int W, int glob, int stride, int dil,\n"
"          int pb, float scale, float theta, float eps) {\n"
"    extern __shared__ float sm[];\n"
"    int GROUP = H / KV, b = blockIdx.x / KV, kh = blockIdx.x % KV, c = blockIdx.y, NC = gridDim.y;\n"
"    pdl_trigger();\n"
"    pdl_wait(); // qkv is the kernel ahead's output (gpu_launch_dep)\n"
"    int p = *d_pos, filled = p + 1 < S ? p + 1 : S, s0 = c * CHUNK;\n"
"    if (s0 >= filled) return; // nothing cached there yet: neither counted nor merged\n"
"    int n = filled - s0 < CHUNK ? filled - s0 : CHUNK, kvd = KV * hd, tid = threadIdx.x, half = hd / 2;\n"
"    int warp = tid / 32, lane = tid % 32, nc = (filled + CHUNK - 1) / CHUNK, sp = dec_slot(p, G, ring);\n"
"    float *qs = sm, *sc = qs + GROUP * hd, *ms = sc + GROUP * CHUNK, *ls = ms + GROUP;\n"
"    const bf16 *row = qkv + (u64)b * (H + 2 * KV) * hd;\n"
"    bf16 *base = cache + (u64)b * S * 2 * kvd;\n"
"    int own = sp >= s0 && sp < s0 + CHUNK; // this chunk holds the token's slot\n"
"    // items: the GROUP query heads, then (own) the kv head's key and value; a warp an item\n"
"    for (int it = warp; it < GROUP + own; it += CHUNK / 32) {\n"
"        int isq = it < GROUP;\n"
"        const bf16 *xh = row + (u64)(isq ? kh * GROUP + it : H + kh) * hd;\n"
"        const bf16 *nw = isq ? qn : kn;\n"
"        float r = 1.0f;\n"
"        if (nw) {\n"
"            float ss = 0.0f;\n"
"            for (int i = lane; i < hd; i += 32) { float a = bf2f(xh[i]); ss += a * a; }\n"
"            r = rsqrtf(warp_sum(ss) / hd + eps);\n"
"        }\n"
"        bf16 *ko = base + (u64)sp * 2 * kvd + (u64)kh * hd;\n"
"        for (int i = lane; i < half; i += 32) {\n"
"            float x1 = bf2f(xh[i]) * r, x2 = bf2f(xh[i + half]) * r;\n"
"            if (nw) { // the training path rounds the norm's output to bf16 before rotating it\n"
"                x1 = bf2f(f2bf(x1 * bf2f(nw[i])));\n"
"                x2 = bf2f(f2bf(x2 * bf2f(nw[i + half])));\n"
"            }\n"
"            float freq = powf(theta, -2.0f * i / hd), s, co;\n"
"            sincosf((float)p * freq, &s, &co);\n"
"            float y1 = x1 * co - x2 * s, y2 = x2 * co + x1 * s;\n"
"            if (isq) {\n"
"                qs[it * hd + i] = y1 * scale;\n"
"                qs[it * hd + i + half] = y2 * scale;\n"
"            } else {\n"
"                ko[i] = f2bf(y1);\n"
"                ko[i + half] = f2bf(y2);\n"
"            }\n"
"        }\n"
"        if (!isq)\n"
"            for (int i = lane; i < hd; i += 32) ko[kvd + i] = row[(u64)(H + KV + kh) * hd + i];\n"
"    }\n"
"    __syncthreads(); // the slot written above is read below by other threads of this block\n"
"    dec_chunk_attend(qs, (const float *)0, 1.0f, sc, ms, ls, base, part, ((u64)b * H + kh * GROUP) * NC + c, NC, p, s0, n, GROUP,\n"
"                     kvd, kh, hd, G, ring, W, glob, stride, dil, pb);\n"
"    dec_chunk_merge(att, part, cnt, (u64)b * H + kh * GROUP, NC, nc, GROUP, hd);\n"
"}\n"
;

static CUfunction fz_k_(Gpu *g, const char *name) { return gpu_kernel(g, DECODE_FUSED_SRC, name, NULL); }

static size_t fz_pad8_(int C) { return ((size_t)C + 7) / 8 * 8; }

GPUDEF size_t gpu_fz_smem(int C) { return sizeof(float) * FZ_ROWS * 8 + (size_t)FZ_ROWS * fz_pad8_(C) * 2; }

static void fz_gemv_(Gpu *g, void *out, const void *x, const void *w, const void *nw, const void *res, int B, int C,
                     int OC, int F, int mode, float eps) {
    if (B < 1 || C < 1 || OC < 1 || (mode == 2 && OC != 2 * F)) {
        fprintf(stderr, "fz_gemv: B %d C %d OC %d F %d mode %d: expected sizes >= 1 and OC = 2F for SwiGLU\n", B, C,
                OC, F, mode);
        abort();
    }
    int vec = C % 8 == 0 && ((uintptr_t)w & 15) == 0;
    unsigned tiles = mode == 2 ? (unsigned)((F + 3) / 4) : (unsigned)((OC + 7) / 8);
    void *args[] = {&out, &x, &w, &nw, &res, &B, &C, &OC, &F, &mode, &vec, &eps};
    gpu_launch_dep(g, fz_k_(g, "fz_gemv"), tiles, (unsigned)((B + FZ_ROWS - 1) / FZ_ROWS), 1, FZ_THREADS, 1, 1,
               (unsigned)gpu_fz_smem(C), args);
}

GPUDEF void gpu_fz_linear(Gpu *g, void *out, const void *x, const void *w, const void *nw, const void *res, int B,
                          int C, int OC, float eps, int out_fp32) {
    fz_gemv_(g, out, x, w, nw, out_fp32 ? NULL : res, B, C, OC, 0, out_fp32 ? 1 : 0, eps);
}

GPUDEF void gpu_fz_swiglu(Gpu *g, void *act, const void *x, const void *w, const void *nw, int B, int C, int F,
                          float eps) {
    fz_gemv_(g, act, x, w, nw, NULL, B, C, 2 * F, F, 2, eps);
}

GPUDEF void gpu_fz_attend(Gpu *g, const GpuDecShape *sh, void *att, const void *qkv, void *cache, const void *qn,
                          const void *kn, float *part, int *cnt, const int *d_pos, int B) {
    if (sh->hd < 8 || sh->hd % 8 || sh->hd > 256 || sh->KV < 1 || sh->H % sh->KV || sh->S < 1 || sh->ring < 1 ||
        sh->G + sh->ring != sh->S) {
        fprintf(stderr, "gpu_fz_attend: shape H %d KV %d hd %d S %d G %d ring %d: expected hd a multiple of 8 <= 256, KV "
                        "dividing H, S = G + ring >= 1\n", sh->H, sh->KV, sh->hd, sh->S, sh->G, sh->ring);
        abort();
    }
    int H = sh->H, KV = sh->KV, hd = sh->hd, S = sh->S, G = sh->G, ring = sh->ring, NC = gpu_dec_chunks(sh);
    int W = sh->window, glob = sh->global, stride = sh->stride, dil = sh->dilation, pb = sh->block > 0 ? sh->block : 128;
    float scale = 1.0f / sqrtf((float)hd), theta = sh->theta, eps = sh->eps;
    int group = H / KV;
    unsigned smem = (unsigned)(sizeof(float) * ((size_t)group * hd + (size_t)group * DEC_CHUNK + 2 * (size_t)group));
    void *args[] = {&qkv, &att, &cache, &part, &cnt, &qn, &kn, &d_pos, &H, &KV, &hd, &S, &G,
                    &ring, &W, &glob, &stride, &dil, &pb, &scale, &theta, &eps};
    gpu_launch_dep(g, fz_k_(g, "fz_attend"), (unsigned)(B * KV), (unsigned)NC, 1, DEC_CHUNK, 1, 1, smem, args);
}

GPUDEF int gpu_decode_fused_kernels_compile_check(const char *arch) {
    char *log = NULL;
    int rc = gpu_compile_ptx(DECODE_FUSED_SRC, "", arch, NULL, &log);
    if (rc) fprintf(stderr, "gpu_decode_fused_kernels_compile_check: %s failed:\n%s\n", arch, log ? log : "");
    else if (log && log[0]) printf("      log:\n%s\n", log);
    free(log);
    return rc != 0;
}

#endif /* GPU_IMPLEMENTATION && !ABLATE_NO_CUDA */
