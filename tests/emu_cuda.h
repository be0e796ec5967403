/* emu_cuda.h - the CPU emulation of the CUDA execution model that tests/emu_decode.c,
   tests/emu_dense.c, tests/emu_fused.c and tests/emu_hier.c run kernels on (one block at a
   time, its threads as fibers (ucontext) run one at a time, each until it waits at a barrier
   or returns, in thread order, as tests/emu_cuda_cxx.h's; __syncthreads and __syncwarp as
   barriers; shuffles and ballots through per-warp slots; atomics trivially ordered: one
   fiber runs at a time, blocks one after another, in order or shuffled by emu_block_shuffle's
   seed: a determinism test's second run). Include it, then the dumped kernels (plain C), after
   the headers the test needs. */
#ifndef EMU_CUDA_H
#define EMU_CUDA_H
#include <stdbool.h>
/* helpers one test or one kernel file does not use; the kernels' CUDA-style int/unsigned mixing */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "emu_fiber.h"
typedef unsigned short bf16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef struct { unsigned x, y, z; } Dim3;
static Dim3 threadIdx; /* the running fiber's */
static Dim3 blockIdx, blockDim, gridDim;
static float shfl_slot[32][32];
static int bal_slot[32][32];
static float g_sm[60000] __attribute__((aligned(16), unused));
#define __global__
#define __device__ static
#define __forceinline__ inline
#define NEG_INF (-INFINITY)
#define __expf expf
#define __logf logf
static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
static inline float __uint_as_float(u32 u) { float f; memcpy(&f, &u, 4); return f; }
static inline u32 __float_as_uint(float f) { u32 u; memcpy(&u, &f, 4); return u; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline void __syncthreads(void) { emu_bar_wait(&emu_block_bar); }
/* (a 2-D block's warps and lanes count its threads x first, as CUDA does) */
static inline int warp_(void) { return (threadIdx.y * blockDim.x + threadIdx.x) >> 5; }
static inline int lane_(void) { return (threadIdx.y * blockDim.x + threadIdx.x) & 31; }
static inline void __syncwarp(void) { emu_bar_wait(&emu_warp_bar[warp_()]); }
static float __shfl_xor_sync(unsigned m, float v, int o) {
    (void)m; int w = warp_(), l = lane_();
    shfl_slot[w][l] = v; __syncwarp(); float r = shfl_slot[w][l ^ o]; __syncwarp(); return r;
}
static unsigned __ballot_sync(unsigned m, int f) {
    (void)m; int w = warp_(), l = lane_();
    bal_slot[w][l] = f != 0; __syncwarp();
    unsigned r = 0; for (int i = 0; i < 32; i++) r |= (unsigned)bal_slot[w][i] << i;
    __syncwarp(); return r;
}
static float bf2f(bf16 x) { return __uint_as_float((u32)x << 16); }
static bf16 f2bf(float f) { u32 u; memcpy(&u, &f, 4); u += 0x7fffu + ((u >> 16) & 1u); return (bf16)(u >> 16); }
static float warp_sum(float x) { for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o); return x; }
static float warp_max(float x) { for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o)); return x; }
/* programmatic dependent launch: one kernel at a time here, so nothing to wait for */
static void pdl_trigger(void) {}
static void pdl_wait(void) {}
static float block_sum(float x) {
    static float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    x = warp_sum(x); __syncthreads(); if (lane == 0) part[warp] = x; __syncthreads();
    x = lane < nwarp ? part[lane] : 0.0f; return warp_sum(x);
}
static float block_max(float x) {
    static float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarp = blockDim.x >> 5;
    x = warp_max(x); __syncthreads(); if (lane == 0) part[warp] = x; __syncthreads();
    x = lane < nwarp ? part[lane] : NEG_INF; return warp_max(x);
}
#define GRID_STRIDE(i, n) for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (u64)gridDim.x * blockDim.x)
typedef struct { u32 x, y, z, w; } uint4;
static inline uint4 make_uint4(u32 x, u32 y, u32 z, u32 w) { uint4 q = {x, y, z, w}; return q; }
static inline int atomicAdd(int *p, int v) { int o = *p; *p = o + v; return o; } /* blocks run one at a time */
#define __threadfence() ((void)0)
#define __launch_bounds__(...)

static void (*emu_body_)(void *);
static void *emu_bctx_;
static void emu_fiber_body_(void) { emu_body_(emu_bctx_); }
/* a launch of gx x gy x gz blocks of bx x by threads (threadIdx.x < bx, threadIdx.y < by) */
static void emu_launch_(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, void (*body)(void *),
                        void *ctx) {
    gridDim = (Dim3){gx, gy, gz}; blockDim = (Dim3){bx, by, 1};
    emu_body_ = body;
    emu_bctx_ = ctx;
    emu_block_dim_x = by > 1 ? bx : 0;
    emu_fiber_grid(gx, gy, gz, bx * by, emu_block_shuffle, &blockIdx.x, &blockIdx.y, &blockIdx.z, emu_fiber_body_,
                   &threadIdx.x, "emu_grid");
    emu_block_dim_x = 0;
    threadIdx.y = 0;
}
static void emu_grid3(unsigned gx, unsigned gy, unsigned gz, unsigned bx, void (*body)(void *), void *ctx) {
    emu_launch_(gx, gy, gz, bx, 1, body, ctx);
}
static void emu_grid(unsigned gx, unsigned gy, unsigned bx, void (*body)(void *), void *ctx) {
    emu_launch_(gx, gy, 1, bx, 1, body, ctx);
}
/* a grid of 2-D blocks, bx x by threads */
static void emu_grid2d(unsigned gx, unsigned gy, unsigned bx, unsigned by, void (*body)(void *), void *ctx) {
    emu_launch_(gx, gy, 1, bx, by, body, ctx);
}

#endif /* EMU_CUDA_H */
