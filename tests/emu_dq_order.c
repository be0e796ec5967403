/* emu_dq_order.c - CPU model of kernels_attn.cu.h's fixed-order dQ (DQ_DET), transcribed:
   dq_rank (descending key-block turns), the ascending tile walk with the group's heads inner,
   and dq_take_block's item -> (x, key block) map. Checks, for causal, windows and patterns:
   (1) the kernel's adders of every query tile (key block y visits tiles ilo..last_q/BM) are
       exactly the blocks with some visible (query, key) pair in the tile (ops.h's mask);
   (2) dq_rank gives them ranks 0..n-1, rank 0 the highest key block, descending;
   (3) the item map is a bijection with key block n+1 taken before n in each (b, kv head);
   (4) a step simulation of P SMs taking items in order, with the kernels' hand-over timing
       (Hopper: wait for tile i in iteration i+1, release at the top of i+2; mma.sync: wait
       in i, release in i+1) never deadlocks and adds every tile in descending key-block
       order; it also counts the steps blocks spend waiting.
   make build/emu_attn_pattern_helpers.inc (the pattern helpers as C), then
   cc -O2 -Ibuild tests/emu_dq_order.c -o tests/emu_dq_order && ./tests/emu_dq_order
   Ends with "N checks: N passed, N failed"; exits non-zero on a failure. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int min(int a, int b) { return a < b ? a : b; }
static int max(int a, int b) { return a > b ? a : b; }
static int WINDOW, GLOBAL, STRIDE, DILATION, DSPAN, PBLOCK, PATTERN;
#include "emu_attn_pattern_helpers.inc"
static int W_, G_, S_, R_, PB_;
static bool doc_visible(int t, int s) { /* ops.h's mask, as tests/emu_attn_pattern.c writes it */
    long d = (long)t - s;
    if (d < 0) return false;
    if (!PATTERN) return WINDOW == 0 || d < WINDOW;
    return d < W_ || s < G_ || (S_ > 0 && s % S_ >= S_ - PB_) ||
           (R_ >= 2 && d < (long)W_ * R_ && (s / PB_) % R_ == R_ - 1);
}
/* the kernels' query-tile range of key block y */
static void range_of(int y, int BM, int BN, int T, int *lo, int *hi) {
    const int n0 = BN * y;
    const int last_q = PATTERN ? pat_last_query(n0, min(T - 1, n0 + BN - 1), T)
                               : WINDOW > 0 ? min(T - 1, n0 + BN - 1 + WINDOW - 1) : T - 1;
    *lo = n0 / BM;
    *hi = last_q / BM;
}
/* dq_rank, transcribed: the pattern branch runs the 32 lanes of the ballot loop */
static int dq_rank(int BM, int BN, int y, int mt, int T) {
    const int y_hi = min((T - 1) / BN, (BM * mt + BM - 1) / BN);
    if (PATTERN) {
        int c = 0;
        for (int y0 = y + 1; y0 <= y_hi; y0 += 32)
            for (int lane = 0; lane < 32; lane++) {
                const int y2 = y0 + lane;
                c += y2 <= y_hi && pat_last_query(BN * y2, min(T - 1, BN * y2 + BN - 1), T) >= BM * mt;
            }
        return c;
    }
    return y_hi - y;
}
static int item_x(int item, int X) { return item % X; }
static int item_n(int item, int X, int NB) { return NB - 1 - item / X; }

static long fails, checks;
#define CHECK(c, ...) do { checks++; if (!(c)) { if (fails++ < 20) printf("FAIL " __VA_ARGS__); } } while (0)

/* (1), (2) for one shape */
static void check_ranks(int T, int BM, int BN, bool brute) {
    const int NB = (T + BN - 1) / BN, ntm = (T + BM - 1) / BM;
    int *lo = malloc(NB * sizeof(int)), *hi = malloc(NB * sizeof(int));
    for (int y = 0; y < NB; y++) range_of(y, BM, BN, T, &lo[y], &hi[y]);
    for (int mt = 0; mt < ntm; mt++) {
        int n = 0;
        for (int y = NB - 1; y >= 0; y--) {
            const bool adds = lo[y] <= mt && mt <= hi[y];
            if (brute) {
                bool vis = false;
                for (int q = BM * mt; q < min(T, BM * mt + BM) && !vis; q++)
                    for (int k = BN * y; k < min(T, BN * y + BN) && !vis; k++) vis = doc_visible(q, k);
                CHECK(vis == adds, "T %d BM %d tile %d block %d: visits %d, mask says %d\n", T, BM, mt, y, adds, vis);
            }
            if (!adds) continue;
            const int r = dq_rank(BM, BN, y, mt, T);
            CHECK(r == n, "T %d BM %d W %d tile %d block %d: rank %d, want %d\n", T, BM, WINDOW, mt, y, r, n);
            n++;
        }
        CHECK(n >= 1, "T %d BM %d tile %d: no adder\n", T, BM, mt);
    }
    free(lo); free(hi);
}

/* (3) */
static void check_items(int X, int NB) {
    int *pos = malloc((size_t)X * NB * sizeof(int));
    for (int i = 0; i < X * NB; i++) pos[i] = -1;
    for (int item = 0; item < X * NB; item++) {
        const int x = item_x(item, X), n = item_n(item, X, NB);
        CHECK(x >= 0 && x < X && n >= 0 && n < NB && pos[x * NB + n] < 0, "item %d -> (%d, %d) X %d NB %d\n", item, x, n, X, NB);
        if (x >= 0 && x < X && n >= 0 && n < NB) pos[x * NB + n] = item;
    }
    for (int x = 0; x < X; x++)
        for (int n = 0; n + 1 < NB; n++)
            CHECK(pos[x * NB + n + 1] < pos[x * NB + n], "X %d NB %d: block %d after %d\n", X, NB, n + 1, n);
    free(pos);
}

/* (4): X chains of GROUP heads, P SMs, hopper: the wgmma timing, else mma.sync's */
typedef struct { int item, x, y, lo, nq, iters, j, phase; } Blk;
static long sim(int T, int BM, int BN, int X, int GROUP, int P, bool hopper) {
    const int NB = (T + BN - 1) / BN, ntm = (T + BM - 1) / BM;
    const int ntiles = X * GROUP * ntm;
    int *cnt = calloc(ntiles, sizeof(int)), *last = malloc(ntiles * sizeof(int));
    for (int i = 0; i < ntiles; i++) last[i] = 1 << 30;
    Blk *run = calloc(P, sizeof(Blk));
    int next = 0, active = 0;
    long waits = 0;
    for (int s = 0; s < P; s++) run[s].item = -1;
    for (;;) {
        for (int s = 0; s < P; s++)  /* free SMs take the next items */
            if (run[s].item < 0 && next < X * NB) {
                Blk *b = &run[s];
                b->item = next++;
                b->x = item_x(b->item, X); b->y = item_n(b->item, X, NB);
                int hi; range_of(b->y, BM, BN, T, &b->lo, &hi);
                b->nq = hi - b->lo + 1; b->iters = GROUP * b->nq; b->j = 0; b->phase = 0;
                active++;
            }
        if (!active) break;
        bool progress = false;
        for (int s = 0; s < P; s++) {
            Blk *b = &run[s];
            if (b->item < 0) continue;
            /* iteration it's tile: (head it % GROUP, query tile lo + it / GROUP) */
#define TILE(it) ((b->x * GROUP + (it) % GROUP) * ntm + b->lo + (it) / GROUP)
            const int j = b->j;
            /* hopper: iteration j (0..iters) releases tile j-2 (phase 0), then waits for and adds
               tile j-1; j == iters is the tail (wait, add, release the last tile too).
               mma.sync: iteration j releases j-1, waits for and adds tile j; j == iters releases. */
            if (b->phase == 0) {
                const int rel = hopper ? j - 2 : j - 1;
                if (rel >= 0 && !(hopper && j == b->iters + 1)) cnt[TILE(rel)]++;
                b->phase = 1;
            }
            const int want = hopper ? j - 1 : j;
            if (want >= 0 && want < b->iters) {
                const int t = TILE(want), mt = b->lo + want / GROUP;
                if (cnt[t] < dq_rank(BM, BN, b->y, mt, T)) { waits++; continue; }
                CHECK(cnt[t] == dq_rank(BM, BN, b->y, mt, T) && b->y < last[t],
                      "sim T %d: tile %d added by block %d after %d\n", T, t, b->y, last[t]);
                last[t] = b->y;
                if (hopper && j == b->iters) cnt[t]++;  /* the tail releases the last tile */
            }
            progress = true;
            b->phase = 0;
            if (++b->j > b->iters) { b->item = -1; active--; }
#undef TILE
        }
        if (!progress) {
            CHECK(0, "sim T %d BM %d X %d G %d P %d hopper %d: deadlock\n", T, BM, X, GROUP, P, hopper);
            break;
        }
    }
    for (int t = 0; t < ntiles; t++) {  /* every tile got all of its adds */
        const int mt = t % ntm;
        int n = 0;
        for (int y = 0; y < NB; y++) { int lo, hi; range_of(y, BM, BN, T, &lo, &hi); n += lo <= mt && mt <= hi; }
        CHECK(cnt[t] == n, "sim T %d: tile %d counted %d of %d adds\n", T, t, cnt[t], n);
    }
    free(cnt); free(last); free(run);
    return waits;
}

static void set_pattern(int T, int w, int g, int s, int d, int pb) {
    PATTERN = 1;
    WINDOW = W_ = w; GLOBAL = G_ = g; STRIDE = S_ = s; DILATION = R_ = d; PBLOCK = PB_ = pb;
    DSPAN = DILATION > 1 ? ((long)WINDOW * DILATION < T ? WINDOW * DILATION : T) : 0;
}

int main(void) {
    const int BMs[2] = {64, 32};
    /* causal and windows, every T 1..2048 (the mask check at T <= 600 and every 97th) */
    static const int windows[] = {0, 1, 5, 16, 100, 128, 256, 300, 1000};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        long f0 = fails;
        PATTERN = 0; WINDOW = windows[w];
        for (int T = 1; T <= 2048; T++)
            for (int b = 0; b < 2; b++) check_ranks(T, BMs[b], 128, T <= 600 || T % 97 == 0);
        printf("%s window %4d, T 1..2048, BM 64/32: ranks\n", fails == f0 ? "ok  " : "FAIL", windows[w]);
    }
    /* gpu_attn_check's patterns and emu_attn_pattern's, at their T and a few larger ones */
    static const int pats[][6] = { /* T, window, global, stride, dilation, block */
        {700, 128, 64, 0, 0, 128},  {1000, 100, 200, 0, 0, 128}, {1300, 256, 0, 512, 0, 128},
        {600, 64, 0, 200, 0, 48},   {1500, 128, 0, 0, 4, 128},   {900, 100, 0, 0, 3, 40},
        {1100, 128, 16, 384, 2, 128}, {800, 300, 0, 0, 4, 128},  {700, 64, 32, 256, 0, 128},
        {500, 64, 0, 0, 3, 128},    {600, 100, 8, 0, 2, 64},     {2048, 512, 128, 1024, 4, 128},
        {333, 1, 1, 130, 0, 128},   {257, 5, 3, 7, 3, 2},        {129, 1, 0, 0, 2, 1},
        {3000, 512, 64, 2048, 4, 128}, {5000, 64, 4500, 0, 0, 128}, {4500, 64, 0, 0, 40, 64},
    };
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        long f0 = fails;
        for (int dt = 0; dt <= 256; dt += 128) {
            const int T = pats[i][0] + dt;
            set_pattern(T, pats[i][1], pats[i][2], pats[i][3], pats[i][4], pats[i][5]);
            for (int b = 0; b < 2; b++) check_ranks(T, BMs[b], 128, true);
        }
        printf("%s pattern T %d window %d global %d stride %d dilation %d block %d: mask, ranks\n", fails == f0 ? "ok  " : "FAIL",
               pats[i][0], pats[i][1], pats[i][2], pats[i][3], pats[i][4], pats[i][5]);
    }
    {
        long f0 = fails;
        for (int X = 1; X <= 64; X++)
            for (int NB = 1; NB <= 80; NB++) check_items(X, NB);
        printf("%s item map: bijection, key block n+1 before n (X 1..64, NB 1..80)\n", fails == f0 ? "ok  " : "FAIL");
    }
    /* the protocol: no deadlock, descending order, for few and many SMs */
    static const int P_[] = {1, 2, 5, 16, 132};
    for (int c = 0; c < 6; c++) {
        long f0 = fails;
        int T = 2048;
        if (c == 0) { PATTERN = 0; WINDOW = 0; }
        else if (c == 1) { PATTERN = 0; WINDOW = 300; }
        else if (c == 2) { T = 1100; set_pattern(T, 128, 16, 384, 2, 128); }
        else if (c == 3) { T = 1000; set_pattern(T, 100, 200, 0, 0, 128); }
        else if (c == 4) { T = 2048; set_pattern(T, 512, 128, 1024, 4, 128); }
        else { T = 777; PATTERN = 0; WINDOW = 0; }
        for (int p = 0; p < 5; p++)
            for (int G = 1; G <= 3; G += 2)
                for (int hop = 0; hop < 2; hop++)
                    for (int b = 0; b < 2; b++) {
                        if (hop && b) continue;  /* Hopper: BM 64 only */
                        long w = sim(T, BMs[b], 128, 4, G, P_[p], hop);
                        if (P_[p] == 132 && c == 0 && b == 0)
                            printf("      causal T %d G %d %s, 4 chains on 132 SMs: %ld block-steps waiting\n", T, G,
                                   hop ? "hopper" : "mma.sync", w);
                    }
        printf("%s protocol sim case %d (T %d): no deadlock, descending adds, all adds (P 1..132, G 1/3)\n",
               fails == f0 ? "ok  " : "FAIL", c, T);
    }
    printf("%ld checks: %ld passed, %ld failed\n", checks, checks - fails, fails);
    return fails != 0;
}
