/* tests/emu_fiber.h - one emulated block's threads as fibers (ucontext), for the CPU emulations
   of CUDA (tests/emu_cuda.h, tests/emu_cuda_cxx.h, tests/emu_linear.c; plain C, compiles as C++).

   The fibers run one at a time on the calling OS thread: each runs until it waits at a barrier
   (emu_bar_wait: __syncthreads, __syncwarp and the warp- or warpgroup-collectives built on them)
   or returns, then the next one that can run. A pass visits the fibers in thread order, or,
   with emu_fiber_seed nonzero, in an order shuffled afresh each pass from that seed (so that a
   second run with another seed adds in another order: the emulations' determinism checks).
   Either is a schedule a GPU could run; it is the same every time for one seed, and a read
   whose missing barrier lets it overtake another thread's write sees the stale value whenever
   the reader runs first. No locks: atomics are plain read-modify-writes.

   emu_fiber_grid(gx, gy, gz, bx, shuffle, bxi, byi, bzi, fn, tid, who): a launch: its blocks one
   after another, in order or, with `shuffle` nonzero, in an order shuffled from it (so that adds
   from different blocks land in another order: a determinism test's second run; kernels whose
   blocks wait for each other need the order), *bxi, *byi, *bzi set to each block's index and
   the block's barriers (emu_block_bar, emu_warp_bar, emu_wg_bar) reset, then fn on its bx
   threads (a multiple of 32, at most 1024) as fibers, *tid set to the running fiber's index
   before each switch. It exits with a message naming `who` when every live fiber of a block
   waits at a barrier the others never reach. emu_block_shuffle is the emulations' shuffle
   seed for their launches (0: in order). A 2-D block: emu_block_dim_x nonzero makes fiber i
   thread (i % emu_block_dim_x, i / emu_block_dim_x), tid[0] and tid[1] (x and y of the
   emulator's threadIdx) set to those; CUDA numbers a 2-D block's threads x first the same way,
   so warp w is fibers 32w..32w+31 either way. */
#ifndef EMU_FIBER_H
#define EMU_FIBER_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>

/* a barrier of `count` threads: the last to arrive releases the others (gen moves on) */
typedef struct { unsigned count, arrived, gen; } EmuBar;
/* nonzero: each pass of a block visits the fibers in an order shuffled from this seed */
static unsigned long long emu_fiber_seed = 0;
/* nonzero: the launches of tests/emu_cuda.h and tests/emu_cuda_cxx.h shuffle their blocks from it */
static unsigned long long emu_block_shuffle = 0;
/* nonzero: the blocks are emu_block_dim_x wide and bx / emu_block_dim_x high (see above) */
static unsigned emu_block_dim_x = 0;
/* the running block's barriers: all its threads, each warp's, each warpgroup's */
static EmuBar emu_block_bar, emu_warp_bar[32], emu_wg_bar[8];

static ucontext_t emu_sched_, emu_ctx_[1024];
static unsigned emu_cur_;
static unsigned char emu_state_[1024]; /* 0 can run, 1 waits at emu_wait_on_ for gen to move on, 2 returned */
static EmuBar *emu_wait_on_[1024];
static unsigned emu_wait_gen_[1024];
static void (*emu_fiber_fn_)(void);

static void emu_bar_wait(EmuBar *b) {
    if (++b->arrived == b->count) { b->arrived = 0; b->gen++; return; }
    const unsigned me = emu_cur_;
    emu_state_[me] = 1;
    emu_wait_on_[me] = b;
    emu_wait_gen_[me] = b->gen;
    swapcontext(&emu_ctx_[me], &emu_sched_);
}
static void emu_fiber_entry_(void) {
    emu_fiber_fn_();
    emu_state_[emu_cur_] = 2;
} /* returns to emu_sched_ (uc_link) */
static unsigned long long emu_xorshift_(unsigned long long *r) {
    *r ^= *r << 13; *r ^= *r >> 7; *r ^= *r << 17;
    return *r;
}
static void emu_fibers_run_(unsigned bx, void (*fn)(void), unsigned *tid, const char *who) {
    enum { STACK = 1 << 20 };
    static unsigned char *stacks; /* 1 MB a fiber, reserved once (untouched pages cost nothing) */
    static unsigned long long r;
    unsigned vis[1024];
    if (!stacks) {
        void *m = mmap(NULL, (size_t)1024 * STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) { fprintf(stderr, "%s: cannot map the fibers' stacks\n", who); exit(1); }
        stacks = (unsigned char *)m;
    }
    if (bx < 1 || bx > 1024) { fprintf(stderr, "%s: %u threads a block (1..1024)\n", who, bx); exit(1); }
    if (!r) r = emu_fiber_seed ? emu_fiber_seed : 1;
    emu_fiber_fn_ = fn;
    for (unsigned i = 0; i < bx; i++) {
        getcontext(&emu_ctx_[i]);
        emu_ctx_[i].uc_stack.ss_sp = stacks + (size_t)i * STACK;
        emu_ctx_[i].uc_stack.ss_size = STACK;
        emu_ctx_[i].uc_link = &emu_sched_;
        makecontext(&emu_ctx_[i], emu_fiber_entry_, 0);
        emu_state_[i] = 0;
        vis[i] = i;
    }
    for (unsigned left = bx;;) {
        if (emu_fiber_seed)
            for (unsigned i = bx; i > 1; i--) { /* Fisher-Yates */
                const unsigned j = (unsigned)(emu_xorshift_(&r) % i), t = vis[i - 1];
                vis[i - 1] = vis[j]; vis[j] = t;
            }
        unsigned ran = 0;
        for (unsigned n = 0; n < bx; n++) {
            const unsigned i = vis[n];
            if (emu_state_[i] == 2) continue;
            if (emu_state_[i] == 1) {
                if (emu_wait_on_[i]->gen == emu_wait_gen_[i]) continue;
                emu_state_[i] = 0;
            }
            emu_cur_ = i;
            if (emu_block_dim_x) {
                tid[0] = i % emu_block_dim_x;
                tid[1] = i / emu_block_dim_x;
            } else {
                *tid = i;
            }
            swapcontext(&emu_sched_, &emu_ctx_[i]);
            ran++;
            if (emu_state_[i] == 2) left--;
        }
        if (!left) return;
        if (!ran) { fprintf(stderr, "%s: every live thread waits at a barrier the others never reach\n", who); exit(1); }
    }
}
static void emu_block_order_(size_t *order, size_t n, unsigned long long seed) {
    for (size_t i = 0; i < n; i++) order[i] = i;
    unsigned long long r = seed;
    for (size_t i = n; seed && i > 1; i--) { /* Fisher-Yates */
        const size_t j = (size_t)(emu_xorshift_(&r) % i), t = order[i - 1];
        order[i - 1] = order[j]; order[j] = t;
    }
}
static void emu_fiber_grid(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned long long shuffle,
                           unsigned *bxi, unsigned *byi, unsigned *bzi, void (*fn)(void), unsigned *tid,
                           const char *who) {
    if (bx % 32) { fprintf(stderr, "%s: %u threads a block (a multiple of 32)\n", who, bx); exit(1); }
    const size_t nblk = (size_t)gx * gy * gz;
    size_t *order = (size_t *)malloc(nblk * sizeof *order);
    if (!order) { fprintf(stderr, "%s: out of memory for %zu blocks\n", who, nblk); exit(1); }
    emu_block_order_(order, nblk, shuffle);
    for (size_t i = 0; i < nblk; i++) {
        *bxi = (unsigned)(order[i] % gx);
        *byi = (unsigned)(order[i] / gx % gy);
        *bzi = (unsigned)(order[i] / gx / gy);
        emu_block_bar.count = bx;
        emu_block_bar.arrived = 0;
        for (unsigned w = 0; w < 32; w++) { emu_warp_bar[w].count = 32; emu_warp_bar[w].arrived = 0; }
        for (unsigned w = 0; w < 8; w++) { emu_wg_bar[w].count = 128; emu_wg_bar[w].arrived = 0; }
        emu_fibers_run_(bx, fn, tid, who);
    }
    free(order);
}
#endif /* EMU_FIBER_H */
