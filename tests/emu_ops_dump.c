/* emu_ops_dump.c - print kernels.cu.h's common training kernels (KERNELS_SRC: embedding,
   RMSNorm, RoPE and the q|k|v split, SwiGLU, the residual add, cross-entropy rows, the
   fixed-order column sums, sumsq, AdamW, ...) rewritten as plain C for tests/emu_ops.c (a CPU
   emulation: no GPU needed), preceded by the common header's load8 / store8 (tests/emu_cuda.h
   defines the header's other helpers).

   Rewrites: extern "C" dropped; the dynamic shared array becomes a pointer to the emulator's
   buffer; __shared__ becomes static (one block runs at a time, so static is per block); the
   ablate_common.cuh include is dropped. Exits 1 when a rule finds nothing to rewrite.
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
                             {"#include \"ablate_common.cuh\"", ""}};
    const size_t nr = sizeof rules / sizeof *rules;
    for (size_t r = 0; r < nr; r++)
        if (!strstr(KERNELS_SRC, rules[r].from)) {
            fprintf(stderr, "emu_ops_dump: rule %zu ('%.40s') matches nothing in KERNELS_SRC\n", r, rules[r].from);
            return 1;
        }
    return emu_dump("emu_ops_dump", KERNELS_SRC, strlen(KERNELS_SRC), rules, nr);
}
