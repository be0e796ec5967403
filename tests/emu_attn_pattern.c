/* emu_attn_pattern.c - the sparse-pattern control flow of attn/dense.cu.h's four attention
   kernels, run on the CPU with the kernels' own helper functions (pat_next_tile, pat_any,
   pat_all, pat_last_query, pat_visible: extracted from the NVRTC header ablate_pattern.cuh,
   kernels.cu.h's KERNELS_PATTERN_SRC, by tests/emu_attn_pattern_dump.c; EMU_SRC 0 = the
   tiling of the mma.sync kernels, 1 = that of the Hopper ones).
   The loops below transcribe the kernels' tile loops, warp (warpgroup) skips, need_mask
   decisions and element masks; no arithmetic is emulated. For each pattern they check that
   pat_next_tile (an O(1) jump) finds the same tile as scanning with pat_any would, that the
   forwards' two-step element mask (pat_col_bits, pat_visible_bits) equals pat_visible, that
   every (query < T, key) pair is let through exactly once iff ops.h's mask (written out here
   again from its table) says the query sees the key, that keys past T never are, and that
   no visited tile (forward: key tile of a query block; backward: query tile of a key block)
   is one nobody sees: such tiles must be skipped, not masked.
     forward  mma.sync: 128 rows x 64-key tiles, warps of 16 rows; wgmma: 128 x 128, 64 rows
     backward mma.sync: 128-key blocks x 64 (hd <= 64) or 32 (hd 128) query tiles, warps of
              16 keys; wgmma: 128 keys x 64 queries, warpgroups of 64 keys, no skip
   make emucheck (no GPU needed). Ends with "N passed, N failed". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef EMU_SRC
#define EMU_SRC 0
#endif
static int min(int a, int b) { return a < b ? a : b; }
static int max(int a, int b) { return a > b ? a : b; }
/* the kernels' compile-time pattern, as variables: the helpers only read them */
static int WINDOW, GLOBAL, STRIDE, DILATION, DSPAN, PBLOCK;
#include "emu_attn_pattern_helpers.inc"

static int W_, G_, S_, R_, PB_; /* the pattern as ops.h documents it */
static bool doc_visible(int t, int s) {
    long d = (long)t - s;
    if (d < 0) return false;
    return d < W_ || s < G_ || (S_ > 0 && s % S_ >= S_ - PB_) ||
           (R_ >= 2 && d < (long)W_ * R_ && (s / PB_) % R_ == R_ - 1);
}

static long pair_errors, empty_tiles, next_errors, mask_errors;

/* cnt[t*T + s] against the mask */
static void compare(const int *cnt, int T) {
    for (int t = 0; t < T; t++)
        for (int s = 0; s < T; s++) pair_errors += cnt[(size_t)t * T + s] != (doc_visible(t, s) ? 1 : 0);
}

/* a forward kernel: blocks of BM query rows, key tiles of BN, sub rows per warp (warpgroup) */
static void forward(int T, int BM, int BN, int sub) {
    int *cnt = calloc((size_t)T * T, sizeof(int));
    for (int m0 = 0; m0 < T; m0 += BM) {
        const int jhi = min(T - 1, m0 + BM - 1) / BN, rlast = min(T - 1, m0 + BM - 1);
        const int jlo = pat_next_tile(BN, 0, jhi, m0, rlast);
        for (int j = 0; j <= jhi + 1; j++) { /* pat_next_tile = the first tile pat_any calls seen */
            int k = j;
            while (k <= jhi && !pat_any(m0, rlast, k * BN, min(T - 1, k * BN + BN - 1))) k++;
            next_errors += pat_next_tile(BN, j, jhi, m0, rlast) != k;
        }
        for (int j = jlo, jn; j <= jhi; j = jn) {
            jn = pat_next_tile(BN, j + 1, jhi, m0, rlast);
            const int n0 = j * BN;
            bool used = false;
            for (int r0 = m0; r0 < m0 + BM; r0 += sub) {
                if (r0 >= T || !pat_any(r0, min(T - 1, r0 + sub - 1), n0, min(T - 1, n0 + BN - 1))) continue;
                const bool need_mask = !pat_all(r0, r0 + sub - 1, n0, n0 + BN - 1);
                for (int row = r0; row < r0 + sub && row < T; row++)
                    for (int col = n0; col < n0 + BN; col++) {
                        /* the kernels' mask: column bits per thread (lane % 4 = t4), then distance */
                        const int x = col - n0, t4 = (x % 8) / 2, cbit = 2 * (x / 8) + x % 2;
                        unsigned seen, dil;
                        pat_col_bits(BN / 8, n0, t4, &seen, &dil);
                        mask_errors += pat_visible_bits(row - col, cbit, seen, dil) != pat_visible(row, col);
                        if (need_mask && !pat_visible_bits(row - col, cbit, seen, dil)) continue;
                        if (col >= T) { pair_errors++; continue; } /* a zero-filled key let through */
                        cnt[(size_t)row * T + col]++;
                        used = true;
                    }
            }
            empty_tiles += !used;
        }
    }
    compare(cnt, T);
    free(cnt);
}

/* a backward kernel: key blocks of BN, query tiles of BMQ, sub keys per warp (warpgroup);
   skip: the warp-level skip of the mma.sync kernel (the wgmma one masks instead) */
static void backward(int T, int BN, int BMQ, int sub, bool skip) {
    int *cnt = calloc((size_t)T * T, sizeof(int));
    for (int n0 = 0; n0 < T; n0 += BN) {
        const int ilo = n0 / BMQ, last_q = pat_last_query(n0, min(T - 1, n0 + BN - 1), T);
        const int nq = last_q / BMQ - ilo + 1;
        for (int it = 0; it < nq; it++) {
            const int m0 = (ilo + it) * BMQ;
            bool used = false;
            for (int kw = 0; kw < BN; kw += sub) {
                if (skip && (n0 + kw >= T || !pat_any(m0, min(T - 1, m0 + BMQ - 1), n0 + kw, min(T - 1, n0 + kw + sub - 1))))
                    continue;
                const bool need_mask = !pat_all(m0, m0 + BMQ - 1, n0 + kw, n0 + kw + sub - 1);
                /* rows >= T carry dO = 0 and keys >= T are never written: not counted */
                for (int key = n0 + kw; key < n0 + kw + sub && key < T; key++)
                    for (int qr = m0; qr < m0 + BMQ && qr < T; qr++)
                        if (!need_mask || pat_visible(qr, key)) { cnt[(size_t)qr * T + key]++; used = true; }
            }
            empty_tiles += !used;
        }
    }
    compare(cnt, T);
    free(cnt);
}

int main(void) {
    /* {T, window, global, stride, dilation, block}, as the host passes them (attn_pattern_for_:
       0 < window < T, a stride > block, dilation >= 2, every part reaching below T) */
    static const int cases[][6] = {
        {700, 128, 64, 0, 0, 128},  {1000, 100, 200, 0, 0, 128}, {1300, 256, 0, 512, 0, 128},
        {600, 64, 0, 200, 0, 48},   {1500, 128, 0, 0, 4, 128},   {900, 100, 0, 0, 3, 40},
        {1100, 128, 16, 384, 2, 128}, {800, 300, 0, 0, 4, 128},  {700, 64, 32, 256, 0, 128},
        {500, 64, 0, 0, 3, 128},    {600, 100, 8, 0, 2, 64},     {2048, 512, 128, 1024, 4, 128},
        {333, 1, 1, 130, 0, 128},   {257, 5, 3, 7, 3, 2},        {129, 1, 0, 0, 2, 1},
        {3000, 512, 64, 2048, 4, 128},
    };
    int pass = 0, fail = 0;
    printf("sparse-pattern control flow of the %s, helpers from the NVRTC header ablate_pattern.cuh\n",
           EMU_SRC ? "ATTN_WGMMA_SRC tiling (Hopper kernels)" : "ATTN_KERNELS_SRC tiling (mma.sync kernels)");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i], T = c[0];
        WINDOW = W_ = c[1]; GLOBAL = G_ = c[2]; STRIDE = S_ = c[3]; DILATION = R_ = c[4]; PBLOCK = PB_ = c[5];
        DSPAN = DILATION > 1 ? ((long)WINDOW * DILATION < T ? WINDOW * DILATION : T) : 0;
        long e0 = pair_errors, t0 = empty_tiles, x0 = next_errors, k0 = mask_errors;
        if (EMU_SRC == 0) {
            forward(T, 128, 64, 16);
            backward(T, 128, 64, 16, true);
            backward(T, 128, 32, 16, true);
        } else {
            forward(T, 128, 128, 64);
            backward(T, 128, 64, 64, false);
        }
        int ok = pair_errors == e0 && empty_tiles == t0 && next_errors == x0 && mask_errors == k0;
        ok ? pass++ : fail++;
        printf("%s T=%4d window=%3d global=%3d stride=%4d dilation=%d block=%3d: %ld wrong pairs, %ld empty tiles "
               "visited, %ld wrong next tiles, %ld column-bit masks != pat_visible\n", ok ? "PASS" : "FAIL", T, c[1],
               c[2], c[3], c[4], c[5], pair_errors - e0, empty_tiles - t0, next_errors - x0, mask_errors - k0);
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail != 0;
}
