/* attn/hier.cu.h - CUDA kernels of attn/hier.h (multi-scale attention: a sliding window plus one
   mean-pooled key and value per earlier block), as NVRTC source + launchers, the pattern of
   attn/gdn.cu.h.

   USAGE
     #include "gpu.h"
     #include "attn/hier.cu.h"   // declarations; the definitions come with GPU_IMPLEMENTATION
   DEPENDS ON: gpu.h (included first; it decides the build). Declarations only with
   -DABLATE_CUDA; GPUDEF linkage and extern "C" as in gpu.h.

   DESIGN. The window branch is the dense room's flash kernels with window W (tensor cores); this
   file adds the coarse branch and merges the two, so the softmax is over both key sets at once:
     forward   hier_pool: kc, vc = block means of k, v (fp32 sums in position order);
               hier_coarse_fwd: per query row, the coarse scores s_j = q . kc_j / sqrt(hd) over
               the nc(t) complete blocks before the window, their max m, sum l and the weighted
               vc, then merged with the window's row (o_w, lse_w) in place:
                 lse = log(exp(lse_w) + l exp(m)),  o = exp(lse_w - lse) o_w + exp(m - lse) sum_j e_j vc_j
     backward  the window's flash backward runs with the MERGED o and lse: its P = exp(S - lse)
               is then each window key's share of the joint softmax and its D = rowsum(dO o) the
               joint one, so its dq, dk, dv are the window keys' exact part. Then
               hier_coarse_dq: the coarse keys' part of dq (added to the window's) and D per row;
               hier_coarse_dkv: dkc_j, dvc_j per (sequence, block, kv head), summed over the
               queries and the heads of the group in a fixed order (no atomics: bit-reproducible);
               hier_spread: dk, dv of each position of block j += dkc_j / P, dvc_j / P.
   One warp per query row (lanes across the head dim, up to 8 values per lane: hd <= 256);
   fp32 arithmetic, bf16 activations; nothing on tensor cores here (the coarse keys are T/P per
   row: at P = 64 a small share of the window's work). COST: not measured yet.

   API (device pointers; q, att [B, T, H, hd]; k, v, dk, dv [B, T, KV, hd]; kc, vc [B, nb, KV, hd]
   bf16; lse [B, H, T], dkc, dvc [B, nb, KV, hd], D [B, T, H] fp32)
     gpu_hier_pool(g, kc, vc, k, v, B, T, KV, hd, P)
     gpu_hier_coarse_forward(g, att, lse, q, kc, vc, B, T, H, KV, hd, W, P)
     gpu_hier_coarse_backward(g, dq, dk, dv, dkc, dvc, D, datt, att, lse, q, kc, vc, B, T, H, KV, hd, W, P)
     attn_hier_kernels_compile_check(arch)   NVRTC-compiles the source for arch; failures */
#ifndef ATTN_HIER_CU_H
#define ATTN_HIER_CU_H

#include "../gpu.h" /* first: it settles ABLATE_NO_CUDA (the GPU is opt-in) */
#ifndef ABLATE_NO_CUDA

#ifdef __cplusplus
extern "C" {
#endif

GPUDEF void gpu_hier_pool(Gpu *gpu, void *kc, void *vc, const void *k, const void *v, int B, int T, int KV, int hd,
                          int P);
GPUDEF void gpu_hier_coarse_forward(Gpu *gpu, void *att, float *lse, const void *q, const void *kc, const void *vc,
                                    int B, int T, int H, int KV, int hd, int W, int P);
GPUDEF void gpu_hier_coarse_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *dkc, float *dvc, float *D,
                                     const void *datt, const void *att, const float *lse, const void *q,
                                     const void *kc, const void *vc, int B, int T, int H, int KV, int hd, int W, int P);
GPUDEF int attn_hier_kernels_compile_check(const char *arch);
/* the module the three calls above compile (for gpu_kernel_prewarm), into out; returns 1 */
GPUDEF int gpu_hier_kernels(GpuKernelSpec *out, int max);

#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* ATTN_HIER_CU_H */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(ATTN_HIER_IMPLEMENTATION_DONE)
#define ATTN_HIER_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>

#ifndef KSRC_LINE
#define KSRC_STR_(x) #x
#define KSRC_STR(x) KSRC_STR_(x)
#define KSRC_LINE(file) "#line " KSRC_STR(__LINE__) " \"" file "\"\n"
#endif

static const char ATTN_HIER_SRC[] =
KSRC_LINE("attn/hier.cu.h") "// Multi-scale attention's coarse branch (attn/hier.cu.h).\n"
"#include \"ablate_common.cuh\"\n"
"#define HV 8 // values per lane: hd <= 256\n"
"\n"
"// coarse blocks query t sees: the complete blocks ending before its window starts (attn/hier.h)\n"
"__device__ __forceinline__ int coarse_n(int t, int W, int P) { return t - W + 1 > 0 ? (t - W + 1) / P : 0; }\n"
"// row r of hd bf16 into this lane's fp32 values (lane + 32 i)\n"
"__device__ __forceinline__ void row_load(float *x, const bf16 *r, int hd) {\n"
"    const int lane = threadIdx.x & 31;\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) x[i] = lane + 32 * i < hd ? bf2f(r[lane + 32 * i]) : 0.0f;\n"
"}\n"
"__device__ __forceinline__ float row_dot(const float *x, const bf16 *r, int hd) {\n"
"    const int lane = threadIdx.x & 31;\n"
"    float s = 0.0f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) if (lane + 32 * i < hd) s += x[i] * bf2f(r[lane + 32 * i]);\n"
"    return warp_sum(s);\n"
"}\n"
"\n"
"// grid (nb, B), block 256: kc, vc [b, j] = means of k, v over the block's P positions, in order\n"
"extern \"C\" __global__ void hier_pool(bf16 *kc, bf16 *vc, const bf16 *k, const bf16 *v, int T, int kvd, int P,\n"
"                                      int nb) {\n"
"    const int j = blockIdx.x, b = blockIdx.y;\n"
"    for (int e = threadIdx.x; e < kvd; e += blockDim.x) {\n"
"        float sk = 0.0f, sv = 0.0f;\n"
"        for (int s = j * P; s < (j + 1) * P; s++) {\n"
"            sk += bf2f(k[((u64)b * T + s) * kvd + e]);\n"
"            sv += bf2f(v[((u64)b * T + s) * kvd + e]);\n"
"        }\n"
"        kc[((u64)b * nb + j) * kvd + e] = f2bf(sk / (float)P);\n"
"        vc[((u64)b * nb + j) * kvd + e] = f2bf(sv / (float)P);\n"
"    }\n"
"}\n"
"\n"
"// a warp per row (b, t, h), 4 rows a block: the coarse branch merged into the window's att, lse\n"
"extern \"C\" __global__ void __launch_bounds__(128)\n"
"hier_coarse_fwd(bf16 *att, float *lse, const bf16 *q, const bf16 *kc, const bf16 *vc, int T, int H, int KV, int hd,\n"
"                int W, int P, int nb, float scale, u64 rows) {\n"
"    const u64 row = (u64)blockIdx.x * 4 + (threadIdx.x >> 5);\n"
"    if (row >= rows) return;\n"
"    const int lane = threadIdx.x & 31, h = (int)(row % H), t = (int)((row / H) % T), b = (int)(row / ((u64)H * T));\n"
"    const int nc = coarse_n(t, W, P), kh = h / (H / KV), kvd = KV * hd;\n"
"    if (nc == 0) return; // the window's row is already the whole softmax\n"
"    float qv[HV], o[HV], m = NEG_INF, l = 0.0f;\n"
"    row_load(qv, q + row * hd, hd);\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) o[i] = 0.0f;\n"
"    for (int j = 0; j < nc; j++) { // online softmax over the coarse keys\n"
"        const u64 off = ((u64)b * nb + j) * kvd + (u64)kh * hd;\n"
"        const float s = row_dot(qv, kc + off, hd) * scale, mn = fmaxf(m, s), c = __expf(m - mn), e = __expf(s - mn);\n"
"        l = l * c + e;\n"
"#pragma unroll\n"
"        for (int i = 0; i < HV; i++) o[i] = o[i] * c + (lane + 32 * i < hd ? e * bf2f(vc[off + lane + 32 * i]) : 0.0f);\n"
"        m = mn;\n"
"    }\n"
"    float *lp = lse + ((u64)b * H + h) * T + t;\n"
"    const float lw = *lp, lc = m + __logf(l), mx = fmaxf(lw, lc);\n"
"    const float L = mx + __logf(__expf(lw - mx) + __expf(lc - mx)), aw = __expf(lw - L), ac = __expf(m - L);\n"
"    bf16 *ar = att + row * hd;\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) {\n"
"        const int e = lane + 32 * i;\n"
"        if (e < hd) ar[e] = f2bf(aw * bf2f(ar[e]) + ac * o[i]);\n"
"    }\n"
"    __syncwarp(); // every lane has read lse_w before lane 0 overwrites it\n"
"    if (lane == 0) *lp = L;\n"
"}\n"
"\n"
"// a warp per row: D = rowsum(dO o) into D[row], and the coarse keys' part of dq added to dq's row\n"
"extern \"C\" __global__ void __launch_bounds__(128)\n"
"hier_coarse_dq(bf16 *dq, float *D, const bf16 *datt, const bf16 *att, const float *lse, const bf16 *q,\n"
"               const bf16 *kc, const bf16 *vc, int T, int H, int KV, int hd, int W, int P, int nb, float scale,\n"
"               u64 rows) {\n"
"    const u64 row = (u64)blockIdx.x * 4 + (threadIdx.x >> 5);\n"
"    if (row >= rows) return;\n"
"    const int lane = threadIdx.x & 31, h = (int)(row % H), t = (int)((row / H) % T), b = (int)(row / ((u64)H * T));\n"
"    const int nc = coarse_n(t, W, P), kh = h / (H / KV), kvd = KV * hd;\n"
"    float go[HV], ov[HV], qv[HV], g[HV];\n"
"    row_load(go, datt + row * hd, hd);\n"
"    row_load(ov, att + row * hd, hd);\n"
"    float d = 0.0f;\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) d += go[i] * ov[i];\n"
"    d = warp_sum(d);\n"
"    if (lane == 0) D[row] = d;\n"
"    if (nc == 0) return;\n"
"    row_load(qv, q + row * hd, hd);\n"
"    const float L = lse[((u64)b * H + h) * T + t];\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) g[i] = 0.0f;\n"
"    for (int j = 0; j < nc; j++) {\n"
"        const u64 off = ((u64)b * nb + j) * kvd + (u64)kh * hd;\n"
"        const float p = __expf(row_dot(qv, kc + off, hd) * scale - L), ds = p * (row_dot(go, vc + off, hd) - d) * scale;\n"
"#pragma unroll\n"
"        for (int i = 0; i < HV; i++) if (lane + 32 * i < hd) g[i] += ds * bf2f(kc[off + lane + 32 * i]);\n"
"    }\n"
"    bf16 *dr = dq + row * hd;\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) {\n"
"        const int e = lane + 32 * i;\n"
"        if (e < hd) dr[e] = f2bf(bf2f(dr[e]) + g[i]);\n"
"    }\n"
"}\n"
"\n"
"// grid (nb, KV, B), 4 warps: dkc, dvc of block j, kv head kh, summed over the queries that see it\n"
"// (t >= (j + 1) P + W - 1) and the group's heads; warp w takes every 4th (t, h) pair and the\n"
"// warps' partials are added in warp order (the same bits every run)\n"
"extern \"C\" __global__ void __launch_bounds__(128)\n"
"hier_coarse_dkv(float *dkc, float *dvc, const float *D, const bf16 *datt, const float *lse, const bf16 *q,\n"
"                const bf16 *kc, const bf16 *vc, int T, int H, int KV, int hd, int W, int P, int nb, float scale) {\n"
"    __shared__ float part[4][2][32 * HV];\n"
"    const int j = blockIdx.x, kh = blockIdx.y, b = blockIdx.z, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;\n"
"    const int G = H / KV, kvd = KV * hd, t0 = (j + 1) * P + W - 1;\n"
"    const u64 off = ((u64)b * nb + j) * kvd + (u64)kh * hd;\n"
"    float kv[HV], vv[HV], gk[HV], gv[HV];\n"
"    row_load(kv, kc + off, hd);\n"
"    row_load(vv, vc + off, hd);\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) gk[i] = gv[i] = 0.0f;\n"
"    const int n = t0 < T ? (T - t0) * G : 0;\n"
"    for (int x = warp; x < n; x += 4) {\n"
"        const int t = t0 + x / G, h = kh * G + x % G;\n"
"        const u64 row = ((u64)b * T + t) * H + h;\n"
"        float qv[HV], go[HV];\n"
"        row_load(qv, q + row * hd, hd);\n"
"        row_load(go, datt + row * hd, hd);\n"
"        float s = 0.0f, dp = 0.0f;\n"
"#pragma unroll\n"
"        for (int i = 0; i < HV; i++) { s += qv[i] * kv[i]; dp += go[i] * vv[i]; }\n"
"        s = warp_sum(s);\n"
"        dp = warp_sum(dp);\n"
"        const float p = __expf(s * scale - lse[((u64)b * H + h) * T + t]), ds = p * (dp - D[row]) * scale;\n"
"#pragma unroll\n"
"        for (int i = 0; i < HV; i++) { gk[i] += ds * qv[i]; gv[i] += p * go[i]; }\n"
"    }\n"
"#pragma unroll\n"
"    for (int i = 0; i < HV; i++) { part[warp][0][lane + 32 * i] = gk[i]; part[warp][1][lane + 32 * i] = gv[i]; }\n"
"    __syncthreads();\n"
"    for (int e = threadIdx.x; e < hd; e += blockDim.x) {\n"
"        float a = 0.0f, c = 0.0f;\n"
"        for (int w = 0; w < 4; w++) { a += part[w][0][e]; c += part[w][1][e]; }\n"
"        dkc[off + e] = a;\n"
"        dvc[off + e] = c;\n"
"    }\n"
"}\n"
"\n"
"// dk, dv of every pooled position += its block's gradient / P (one thread per element)\n"
"extern \"C\" __global__ void hier_spread(bf16 *dk, bf16 *dv, const float *dkc, const float *dvc, int T, int kvd,\n"
"                                        int P, int nb, int B) {\n"
"    const u64 per = (u64)nb * P * kvd;\n"
"    GRID_STRIDE(i, (u64)B * per) {\n"
"        const u64 b = i / per, r = i % per, s = r / kvd, e = r % kvd, src = (b * nb + s / P) * kvd + e;\n"
"        const u64 dst = (b * T + s) * kvd + e;\n"
"        dk[dst] = f2bf(bf2f(dk[dst]) + dkc[src] / (float)P);\n"
"        dv[dst] = f2bf(bf2f(dv[dst]) + dvc[src] / (float)P);\n"
"    }\n"
"}\n";

static CUfunction hier_k_(Gpu *gpu, const char *name) { return gpu_kernel(gpu, ATTN_HIER_SRC, name, NULL); }
GPUDEF int gpu_hier_kernels(GpuKernelSpec *out, int max) { return gpu_kernel_spec_add(out, max, 0, ATTN_HIER_SRC, NULL); }

static int hier_check_(const char *op, int hd) {
    if (hd < 1 || hd > 256) {
        fprintf(stderr, "%s: head_dim %d: expected 1..256 (8 values per lane)\n", op, hd);
        abort(); /* the room refuses such configs first (attn_hier_gpu_supported) */
    }
    return 0;
}

GPUDEF void gpu_hier_pool(Gpu *gpu, void *kc, void *vc, const void *k, const void *v, int B, int T, int KV, int hd,
                          int P) {
    int kvd = KV * hd, nb = T / P;
    if (nb < 1) return;
    void *args[] = {&kc, &vc, &k, &v, &T, &kvd, &P, &nb};
    gpu_launch(gpu, hier_k_(gpu, "hier_pool"), (unsigned)nb, (unsigned)B, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_hier_coarse_forward(Gpu *gpu, void *att, float *lse, const void *q, const void *kc, const void *vc,
                                    int B, int T, int H, int KV, int hd, int W, int P) {
    hier_check_("gpu_hier_coarse_forward", hd);
    int nb = T / P;
    if (nb < 1) return; /* no complete block: the window alone */
    float scale = 1.0f / sqrtf((float)hd);
    uint64_t rows = (uint64_t)B * T * H;
    void *args[] = {&att, &lse, &q, &kc, &vc, &T, &H, &KV, &hd, &W, &P, &nb, &scale, &rows};
    gpu_launch(gpu, hier_k_(gpu, "hier_coarse_fwd"), (unsigned)((rows + 3) / 4), 1, 1, 128, 1, 1, 0, args);
}

GPUDEF void gpu_hier_coarse_backward(Gpu *gpu, void *dq, void *dk, void *dv, float *dkc, float *dvc, float *D,
                                     const void *datt, const void *att, const float *lse, const void *q,
                                     const void *kc, const void *vc, int B, int T, int H, int KV, int hd, int W, int P) {
    hier_check_("gpu_hier_coarse_backward", hd);
    int nb = T / P, kvd = KV * hd;
    if (nb < 1) return;
    float scale = 1.0f / sqrtf((float)hd);
    uint64_t rows = (uint64_t)B * T * H;
    void *a1[] = {&dq, &D, &datt, &att, &lse, &q, &kc, &vc, &T, &H, &KV, &hd, &W, &P, &nb, &scale, &rows};
    gpu_launch(gpu, hier_k_(gpu, "hier_coarse_dq"), (unsigned)((rows + 3) / 4), 1, 1, 128, 1, 1, 0, a1);
    void *a2[] = {&dkc, &dvc, &D, &datt, &lse, &q, &kc, &vc, &T, &H, &KV, &hd, &W, &P, &nb, &scale};
    gpu_launch(gpu, hier_k_(gpu, "hier_coarse_dkv"), (unsigned)nb, (unsigned)KV, (unsigned)B, 128, 1, 1, 0, a2);
    size_t n = (size_t)B * nb * P * kvd, blocks = (n + 255) / 256, cap = (size_t)gpu->sm_count * 32;
    void *a3[] = {&dk, &dv, &dkc, &dvc, &T, &kvd, &P, &nb, &B};
    gpu_launch(gpu, hier_k_(gpu, "hier_spread"), (unsigned)(blocks < cap ? blocks : cap), 1, 1, 256, 1, 1, 0, a3);
}

GPUDEF int attn_hier_kernels_compile_check(const char *arch) {
    char *log = NULL;
    int failed = gpu_compile_ptx(ATTN_HIER_SRC, NULL, arch, NULL, &log) != 0;
    if (failed || (log && log[0])) fprintf(stderr, "attn/hier.cu.h %s%s:\n%s\n", arch, failed ? "" : " (log)",
                                           log ? log : "");
    free(log);
    return failed;
}

#endif /* GPU_IMPLEMENTATION */
