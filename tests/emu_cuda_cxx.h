/* tests/emu_cuda_cxx.h - the CPU emulation of the CUDA execution model for kernel sources
   compiled as C++ (tests/emu_sparse.cc, tests/emu_flash.cc: their sources have templates):
   one block at a time, its threads as fibers (ucontext) run one at a time, each until it waits
   at a barrier (__syncthreads, __syncwarp, a warp- or warpgroup-collective) or returns, then
   the next one that can run, in thread order: a schedule a GPU could run, the same every time,
   under which a read whose missing barrier would let it overtake a later thread's write sees
   the stale value;
   shuffles, ballots, ldmatrix and mma.sync m16n8k16 as warp-collective functions following
   PTX's fragment layouts; Hopper's wgmma.mma_async m64nNk16 (bf16 in, fp32 out) as a
   warpgroup-collective one, its operands read through shared-memory matrix descriptors
   (SWIZZLE_128B, K- or MN-major) or A from registers, completing at once (so its fence /
   commit / wait order nothing); shared memory addressed by 32-bit offsets into the block's
   buffer (smem_addr); cp.async as an immediate copy (its commit / wait order nothing);
   float and int atomics plain (one fiber runs at a time). Include it first, then the dumped kernels
   (kernels.cu.h's common header, then the kernel source, each configuration in a namespace of
   its own); emu_launch runs a grid, its blocks in order, or shuffled by emu_block_shuffle's
   seed (so that adds from different blocks land in another order: a determinism test's
   second run; kernels whose blocks wait for each other need the order).
   tests/emu_cuda.h is the plain-C twin for C sources. */
#ifndef EMU_CUDA_CXX_H
#define EMU_CUDA_CXX_H
#include <math.h>
#include "emu_fiber.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <functional>
#include <vector>

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-variable"

/* ---------------------------------------------------------------- the emulated CUDA runtime */
struct Dim3 { unsigned x, y, z; };
static Dim3 threadIdx; /* the running fiber's */
static Dim3 blockIdx, blockDim, gridDim;
static uint32_t slot_[32][32][8];     /* a warp's lanes' published 32-bit values (up to 8 each) */
static const void *ptr_slot_[32][32]; /* a warp's lanes' published addresses (ldmatrix) */
alignas(16) static unsigned char emu_smem[256 * 1024];

#define __device__ static
#define __forceinline__ inline
#define __global__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __restrict__ __restrict
#define __shared__ static /* one block runs at a time: a static is the block's */
struct uint4 { unsigned x, y, z, w; };
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
#define __expf expf
#define __logf logf
#define __log2f log2f
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(unsigned x) { return ffs((int)x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline void __threadfence() {}
template <typename T> static inline T __ldcg(const T *p) { return *p; }
static inline void __syncthreads() { emu_bar_wait(&emu_block_bar); }
static inline int warp_() { return threadIdx.x >> 5; }
static inline int lane_() { return threadIdx.x & 31; }
/* every __syncwarp of these kernels is reached by the whole warp */
static inline void __syncwarp(unsigned m = 0xffffffffu) { (void)m; emu_bar_wait(&emu_warp_bar[warp_()]); }
/* lane `from` of this warp's value v (out-of-range lanes: this lane's own, as the hardware);
   32- or 64-bit values (a double's shuffle: two 32-bit ones on the GPU) */
template <typename T> static T shfl_(T v, int from) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "32- or 64-bit");
    const int w = warp_(), l = lane_();
    memcpy(slot_[w][l], &v, sizeof v);
    __syncwarp();
    T r;
    memcpy(&r, slot_[w][from >= 0 && from < 32 ? from : l], sizeof r);
    __syncwarp();
    return r;
}
template <typename T> static T __shfl_sync(unsigned m, T v, int src, int width = 32) {
    (void)m; const int l = lane_();
    return shfl_(v, (l & ~(width - 1)) + (src & (width - 1)));
}
template <typename T> static T __shfl_xor_sync(unsigned m, T v, int o, int width = 32) {
    (void)m; const int l = lane_(), s = l ^ o;
    return shfl_(v, (s & ~(width - 1)) == (l & ~(width - 1)) ? s : l);
}
template <typename T> static T __shfl_down_sync(unsigned m, T v, int d, int width = 32) {
    (void)m; const int l = lane_(), s = l + d;
    return shfl_(v, (s & ~(width - 1)) == (l & ~(width - 1)) ? s : l);
}
template <typename T> static T __shfl_up_sync(unsigned m, T v, int d, int width = 32) {
    (void)m; const int l = lane_(), s = l - d;
    return shfl_(v, s >= (l & ~(width - 1)) ? s : l);
}
/* the mask of this warp's lanes whose published value v equals want */
static unsigned lanes_equal_(uint32_t v, uint32_t want) {
    const int w = warp_(), l = lane_();
    slot_[w][l][0] = v;
    __syncwarp();
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= (unsigned)(slot_[w][i][0] == want) << i;
    __syncwarp();
    return r;
}
static unsigned __ballot_sync(unsigned m, int f) { (void)m; return lanes_equal_(f != 0, 1); }
/* the lanes whose value equals this lane's */
static unsigned __match_any_sync(unsigned m, int x) { (void)m; return lanes_equal_((uint32_t)x, (uint32_t)x); }
static int __any_sync(unsigned m, int f) { return __ballot_sync(m, f) != 0; }
static int __all_sync(unsigned m, int f) { return __ballot_sync(m, f) == 0xffffffffu; }
static float atomicAdd(float *p, float v) { float o = *p; *p = o + v; return o; }
static int atomicAdd(int *p, int v) { int o = *p; *p = o + v; return o; }
/* ld.acquire of a turn counter another block increments with atomicAdd */
static int emu_load_acquire(const int *p) { return *(const volatile int *)p; }
static unsigned atomicOr(unsigned *p, unsigned v) { unsigned o = *p; *p = o | v; return o; }

/* ---- ablate_mma.cuh, emulated ---- */
/* cp.async: the copy happens at once (so the commit / wait pairs order nothing here) */
static void cp_async16(void *dst, const void *src, bool valid) { if (valid) memcpy(dst, src, 16); else memset(dst, 0, 16); }
static void cp_async4(void *dst, const void *src, bool valid) { if (valid) memcpy(dst, src, 4); else memset(dst, 0, 4); }
static void cp_async_commit() {}
template <int N> static void cp_async_wait() {}
/* ldmatrix .x4: lanes 8j..8j+7 give the rows of 8x8 matrix j (8 b16 each); lane i receives
   matrix j's row i/4, columns 2(i%4) and +1 in r[j] (trans: row 2(i%4) and +1 of column i/4) */
static void ldsm_(unsigned r[4], const void *p, bool trans) {
    const int w = warp_(), l = lane_();
    ptr_slot_[w][l] = p;
    __syncwarp();
    for (int j = 0; j < 4; j++) {
        unsigned short e0, e1;
        if (!trans) {
            const unsigned short *row = (const unsigned short *)ptr_slot_[w][8 * j + l / 4];
            e0 = row[2 * (l % 4)]; e1 = row[2 * (l % 4) + 1];
        } else {
            e0 = ((const unsigned short *)ptr_slot_[w][8 * j + 2 * (l % 4)])[l / 4];
            e1 = ((const unsigned short *)ptr_slot_[w][8 * j + 2 * (l % 4) + 1])[l / 4];
        }
        r[j] = (unsigned)e0 | ((unsigned)e1 << 16);
    }
    __syncwarp();
}
static float bfh_(unsigned x, int hi) { return __uint_as_float(hi ? x & 0xffff0000u : x << 16); }
/* a shared-memory address as the kernels' smem_addr gives it: the offset into the block's buffer */
static unsigned smem_addr(const void *p) { return (unsigned)((const unsigned char *)p - emu_smem); }
/* cp.async to a shared address already computed (src-size 0: zero fill) */
static void emu_cp_async_sh(unsigned dst, const void *src, bool valid) {
    if (valid) memcpy(emu_smem + dst, src, 16); else memset(emu_smem + dst, 0, 16);
}
/* element (row r, k) of a wgmma operand through descriptor desc: bits 0-13 the start address
   >> 4, 32-45 the stride between 8-row groups >> 4, 62-63 the swizzle (1: 128 bytes; the only
   one the kernels use). K-major (mn = 0): rows are M or N, the 16 k of a step along the row;
   MN-major (mn = 1): rows are k, columns M or N (at most 64: one swizzle atom). The 128-byte
   swizzle permutes the 16-byte chunks of each 128-byte row by the row's index within its 8-row
   group: address bits 4-6 XOR bits 7-9 (atoms 1024-byte aligned in the buffer) */
static float emu_desc_elem_(uint64_t desc, int r, int k, int mn) {
    if ((desc >> 62) != 1) { fprintf(stderr, "emu_wgmma: descriptor swizzle %d (expected 1: 128 bytes)\n", (int)(desc >> 62)); abort(); }
    const unsigned start = (unsigned)(desc & 0x3FFF) << 4, sbo = (unsigned)((desc >> 32) & 0x3FFF) << 4;
    const int row = mn ? k : r, col = mn ? r : k;
    if (mn && col >= 64) { fprintf(stderr, "emu_wgmma: MN-major operand wider than 64 (column %d)\n", col); abort(); }
    unsigned lin = start + (unsigned)(row / 8) * sbo + (unsigned)(row % 8) * 128 + (unsigned)col * 2;
    lin ^= ((lin >> 7) & 7) << 4;
    unsigned short h;
    memcpy(&h, emu_smem + lin, 2);
    return __uint_as_float((unsigned)h << 16);
}
static float *wg_d_[8][128];
static unsigned wg_a_[8][128][4];
/* d (+)= A B, m64nNk16 on the calling thread's warpgroup; A (64 x 16) from descriptor da (ta:
   MN-major) or, when a != NULL, from registers in mma.sync's A layout per warp (warp w of the
   warpgroup rows 16w..16w+15); B (16 x N) from db (tb: MN-major, else K-major: row n holds
   B[., n]); d per thread: d[4i+e] = row 16w + g + 8 (e >> 1), column 8i + 2t + (e & 1) */
static void emu_wgmma(float *d, int N, uint64_t da, uint64_t db, const unsigned *a, int accum, int ta, int tb) {
    const int wg = threadIdx.x >> 7, me = threadIdx.x & 127, w = me >> 5, l = me & 31, g = l >> 2, t = l & 3;
    wg_d_[wg][me] = d;
    if (a) for (int i = 0; i < 4; i++) wg_a_[wg][me][i] = a[i];
    emu_bar_wait(&emu_wg_bar[wg]);
    float A[16][16]; /* this warp's 16 rows */
    for (int rr = 0; rr < 16; rr++)
        for (int k = 0; k < 16; k++) {
            if (a) { /* lane (rr % 8) * 4 + (k % 8) / 2, register (rr >= 8) + 2 (k >= 8), half k & 1 */
                const unsigned x = wg_a_[wg][w * 32 + (rr % 8) * 4 + (k % 8) / 2][(rr >= 8) + 2 * (k >= 8)];
                A[rr][k] = bfh_(x, k & 1);
            } else {
                A[rr][k] = emu_desc_elem_(da, 16 * w + rr, k, ta);
            }
        }
    for (int i = 0; i < N / 8; i++)
        for (int e = 0; e < 4; e++) {
            const int rr = g + 8 * (e >> 1), col = 8 * i + 2 * t + (e & 1);
            float s = 0.f;
            for (int k = 0; k < 16; k++) s += A[rr][k] * emu_desc_elem_(db, col, k, tb);
            d[4 * i + e] = accum ? d[4 * i + e] + s : s;
        }
    emu_bar_wait(&emu_wg_bar[wg]);
}
static void ldsm_x4(unsigned r[4], const void *p) { ldsm_(r, p, false); }
static void ldsm_x4_t(unsigned r[4], const void *p) { ldsm_(r, p, true); }
/* d += a b, m16n8k16 (row.col): A (16 x 16) a0 (row g, cols 2t, 2t+1), a1 (row g+8), a2 (row g,
   cols 2t+8, +9), a3 (row g+8, cols 2t+8, +9); B (16 x 8) b0 (rows 2t, 2t+1 of col g), b1 (rows
   2t+8, +9); C c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8) */
static void mma(float d[4], const unsigned a[4], unsigned b0, unsigned b1) {
    const int w = warp_(), l = lane_();
    for (int i = 0; i < 4; i++) slot_[w][l][i] = a[i];
    slot_[w][l][4] = b0; slot_[w][l][5] = b1;
    __syncwarp();
    const int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float s = 0.f;
        for (int k = 0; k < 16; k++) {
            const int la = (row % 8) * 4 + (k % 8) / 2, ra = (row >= 8) + 2 * (k >= 8);
            const int lb = col * 4 + (k % 8) / 2, rb = 4 + (k >= 8);
            s += bfh_(slot_[w][la][ra], k & 1) * bfh_(slot_[w][lb][rb], k & 1);
        }
        d[e] += s;
    }
    __syncwarp();
}
/* round to nearest even, as cvt.rn.bf16x2.f32 (NaN kept a NaN) */
static unsigned short emu_f2bf_(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}
static unsigned pack_bf16(float lo, float hi) { return (unsigned)emu_f2bf_(lo) | ((unsigned)emu_f2bf_(hi) << 16); }
static float bf16_lo(unsigned x) { return __uint_as_float(x << 16); }
static float bf16_hi(unsigned x) { return __uint_as_float(x & 0xffff0000u); }
static float fast_exp2(float x) { return exp2f(x); }

/* one launch: gx x gy x gz blocks of bx threads (bx <= 1024, a multiple of 32), one block at a
   time, each thread running body */
static const std::function<void()> *emu_body_;
static void emu_fiber_body_() { (*emu_body_)(); }
static void emu_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, const std::function<void()> &body) {
    gridDim = Dim3{gx, gy, gz};
    blockDim = Dim3{bx, 1, 1};
    emu_body_ = &body;
    emu_fiber_grid(gx, gy, gz, bx, emu_block_shuffle, &blockIdx.x, &blockIdx.y, &blockIdx.z, emu_fiber_body_,
                   &threadIdx.x, "emu_launch");
}

#endif /* EMU_CUDA_CXX_H */
