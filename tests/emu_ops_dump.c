/* emu_ops_dump.c - print kernels.cu.h's common training kernels (KERNELS_SRC: embedding,
   RMSNorm, RoPE and the q|k|v split, SwiGLU, the residual add, cross-entropy rows, the
   fixed-order column sums, sumsq, AdamW, ...) rewritten as plain C for tests/emu_ops.c (a CPU
   emulation: no GPU needed), preceded by the common header's load8 / store8 (tests/emu_cuda.h
   defines the header's other helpers).

   Rewrites: extern "C" dropped; the dynamic shared array becomes a pointer to the emulator's
   buffer; __shared__ becomes static (one block runs at a time, so static is per block); the
   ablate_common.cuh include is dropped; colsum_add's 32 x 32 block is linearized (the emulator's
   blocks are one-dimensional): threadIdx.y becomes threadIdx.x >> 5 and its threadIdx.x
   threadIdx.x & 31, CUDA's own order of a 2-D block's threads. Exits 1 when a rule finds
   nothing to rewrite or colsum_add keeps a threadIdx.y.
   usage: emu_ops_dump > build/emu_ops_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "emu_dump_common.h"

int main(void) {
    /* load8 .. store8 of the common header: the part up to warp_sum */
    const char *a = strstr(KERNELS_COMMON_SRC, "// 8 consecutive bf16");
    const char *e = a ? strstr(a, "__device__ __forceinline__ float warp_sum") : NULL;
    if (!a || !e) {
        fprintf(stderr, "emu_ops_dump: load8 / store8 not found in KERNELS_COMMON_SRC\n");
        return 1;
    }
    printf("%.*s\n", (int)(e - a), a);
    fflush(stdout);
    const EmuRule rules[] = {{"extern \"C\" ", ""},
                             {"extern __shared__ float sdw[];", "float *sdw = g_sm;"},
                             {"__shared__", "static"},
                             {"#include \"ablate_common.cuh\"", ""},
                             {"int c = blockIdx.x * 32 + threadIdx.x, g = threadIdx.y;",
                              "int c = blockIdx.x * 32 + (threadIdx.x & 31), g = threadIdx.x >> 5;"},
                             {"s[g][threadIdx.x] = a;", "s[g][threadIdx.x & 31] = a;"},
                             {"t += s[k][threadIdx.x];", "t += s[k][threadIdx.x & 31];"}};
    const size_t nr = sizeof rules / sizeof *rules;
    for (size_t r = 0; r < nr; r++)
        if (!strstr(KERNELS_SRC, rules[r].from)) {
            fprintf(stderr, "emu_ops_dump: rule %zu ('%.40s') matches nothing in KERNELS_SRC\n", r, rules[r].from);
            return 1;
        }
    /* colsum_add's text (to the next kernel) holds one threadIdx.y, the one rule 4 rewrites
       (time_cumsum's and dwconv3_silu_backward's 2-D blocks are not run here) */
    const char *cs = strstr(KERNELS_SRC, "colsum_add(float *dst"), *ce = cs ? strstr(cs, "extern \"C\"") : NULL;
    const char *y1 = cs ? strstr(cs, "threadIdx.y") : NULL, *y2 = y1 ? strstr(y1 + 1, "threadIdx.y") : NULL;
    if (!cs || !y1 || (ce && y1 > ce) || (y2 && (!ce || y2 < ce))) {
        fprintf(stderr, "emu_ops_dump: expected one threadIdx.y in colsum_add (its 32 x 32 block, linearized here)\n");
        return 1;
    }
    return emu_dump("emu_ops_dump", KERNELS_SRC, strlen(KERNELS_SRC), rules, nr);
}
