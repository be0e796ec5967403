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
#include <sys/mman.h>
#include <ucontext.h>
typedef unsigned short bf16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef struct { unsigned x, y, z; } Dim3;
static Dim3 threadIdx; /* the running fiber's */
static Dim3 blockIdx, blockDim, gridDim;
/* a barrier of `count` threads: the last to arrive releases the others (gen moves on) */
typedef struct { unsigned count, arrived, gen; } EmuBar;
static EmuBar block_bar, warp_bar[32];
/* the fibers: the scheduler's context, each thread's, its state (0 can run, 1 waits at
   emu_wait_on_ for emu_wait_gen_ to move on, 2 returned) */
static ucontext_t emu_sched_, emu_ctx_[1024];
static unsigned emu_cur_;
static unsigned char emu_state_[1024];
static EmuBar *emu_wait_on_[1024];
static unsigned emu_wait_gen_[1024];
static void emu_bar_wait(EmuBar *b) {
    if (++b->arrived == b->count) { b->arrived = 0; b->gen++; return; }
    const unsigned me = emu_cur_;
    emu_state_[me] = 1;
    emu_wait_on_[me] = b;
    emu_wait_gen_[me] = b->gen;
    swapcontext(&emu_ctx_[me], &emu_sched_);
}
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
static inline void __syncthreads(void) { emu_bar_wait(&block_bar); }
static inline int warp_(void) { return threadIdx.x >> 5; }
static inline int lane_(void) { return threadIdx.x & 31; }
static inline void __syncwarp(void) { emu_bar_wait(&warp_bar[warp_()]); }
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

/* nonzero: emu_grid3 runs its blocks in an order shuffled by this seed (0: in order) */
static unsigned long long emu_block_shuffle = 0;
static void (*emu_body_)(void *);
static void *emu_bctx_;
static void emu_fiber_(void) {
    emu_body_(emu_bctx_);
    emu_state_[emu_cur_] = 2;
} /* returns to emu_sched_ (uc_link) */
static void emu_grid3(unsigned gx, unsigned gy, unsigned gz, unsigned bx, void (*body)(void *), void *ctx) {
    enum { STACK = 1 << 18 };
    static unsigned char *stacks; /* 256 KB a fiber, reserved once for the most threads a block can have */
    if (!stacks) {
        void *m = mmap(NULL, (size_t)1024 * STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) { fprintf(stderr, "emu_grid: cannot map the fibers' stacks\n"); exit(1); }
        stacks = (unsigned char *)m;
    }
    if (bx < 1 || bx > 1024 || bx % 32) { fprintf(stderr, "emu_grid: %u threads a block\n", bx); exit(1); }
    block_bar = (EmuBar){bx, 0, 0};
    for (unsigned w = 0; w < bx / 32; w++) warp_bar[w] = (EmuBar){32, 0, 0};
    gridDim = (Dim3){gx, gy, gz}; blockDim = (Dim3){bx, 1, 1};
    emu_body_ = body;
    emu_bctx_ = ctx;
    const size_t nblk = (size_t)gx * gy * gz;
    size_t *order = malloc(nblk * sizeof *order);
    if (!order) { fprintf(stderr, "emu_grid: out of memory for %zu blocks\n", nblk); exit(1); }
    for (size_t i = 0; i < nblk; i++) order[i] = i;
    unsigned long long r = emu_block_shuffle;
    for (size_t i = nblk; emu_block_shuffle && i > 1; i--) { /* Fisher-Yates */
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        const size_t j = r % i, t = order[i - 1];
        order[i - 1] = order[j]; order[j] = t;
    }
    for (size_t bi = 0; bi < nblk; bi++) {
                const unsigned x = (unsigned)(order[bi] % gx), y = (unsigned)(order[bi] / gx % gy), z = (unsigned)(order[bi] / gx / gy);
                blockIdx = (Dim3){x, y, z};
                for (unsigned i = 0; i < bx; i++) {
                    getcontext(&emu_ctx_[i]);
                    emu_ctx_[i].uc_stack.ss_sp = stacks + (size_t)i * STACK;
                    emu_ctx_[i].uc_stack.ss_size = STACK;
                    emu_ctx_[i].uc_link = &emu_sched_;
                    makecontext(&emu_ctx_[i], emu_fiber_, 0);
                    emu_state_[i] = 0;
                }
                /* in thread order, round and round: each runnable fiber runs until it waits or returns */
                for (unsigned left = bx;;) {
                    unsigned ran = 0;
                    for (unsigned i = 0; i < bx; i++) {
                        if (emu_state_[i] == 2) continue;
                        if (emu_state_[i] == 1) {
                            if (emu_wait_on_[i]->gen == emu_wait_gen_[i]) continue;
                            emu_state_[i] = 0;
                        }
                        emu_cur_ = i;
                        threadIdx = (Dim3){i, 0, 0};
                        swapcontext(&emu_sched_, &emu_ctx_[i]);
                        ran++;
                        if (emu_state_[i] == 2) left--;
                    }
                    if (!left) break;
                    if (!ran) {
                        fprintf(stderr, "emu_grid: block (%u, %u, %u): every live thread waits at a barrier the others "
                                "never reach\n", x, y, z);
                        exit(1);
                    }
                }
    }
    free(order);
}
static void emu_grid(unsigned gx, unsigned gy, unsigned bx, void (*body)(void *), void *ctx) {
    emu_grid3(gx, gy, 1, bx, body, ctx);
}

#endif /* EMU_CUDA_H */
