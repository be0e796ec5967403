/* emu_linear_dump.c - print attn/gdn.cu.h's CUDA source rewritten as plain C for
   tests/emu_linear.c (a CPU emulation of the kernels: no GPU needed).

   Rewrites: extern "C" dropped; the dynamic shared array becomes a pointer to the emulator's
   buffer; __shared__ becomes static (one block runs at a time, so static is per block);
   the ablate_common.cuh include is dropped (the emulator defines those helpers); the
   mma.sync asm statement becomes a call of the emulator's warp-collective mma_emu; ld_pair's
   8-byte shared load goes through emu_ld2, which checks its alignment.
   usage: emu_linear_dump > build/emu_linear_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/gdn.cu.h"
#include "emu_dump_common.h"

int main(void) {
    static char buf[1 << 20];
    const char *src = GDN_KERNELS_SRC;
    /* 1: the mma asm statement -> mma_emu(...) */
    const char *a = strstr(src, "asm volatile(\"mma.sync");
    const char *e = a ? strstr(a, ");") : NULL;
    if (!a || !e) { fprintf(stderr, "emu_linear_dump: mma asm statement not found\n"); return 1; }
    /* the accumulator array: the name in the first "+f"(NAME[n][0]) operand */
    const char *f = strstr(a, "\"+f\"(");
    if (!f || f > e) { fprintf(stderr, "emu_linear_dump: mma accumulator operand not found\n"); return 1; }
    f += 5;
    int len = (int)strcspn(f, "[");
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%.*s", (int)(a - src), src);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "mma_emu(%.*s[n], af, b0, b1);", len, f);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", e + 2);
    if (n >= sizeof buf) { fprintf(stderr, "emu_linear_dump: source too long\n"); return 1; }
    /* 2: the simple textual rewrites */
    const EmuRule rules[] = {{"extern \"C\" ", ""},
                             {"extern __shared__ __align__(16) float sm[];", "float *sm = g_sm;"},
                             {"__shared__", "static"},
                             {"#include \"ablate_common.cuh\"", ""},
                             /* the 8-byte operand loads: the emulator checks their alignment */
                             {"if (stride == 1) return *(const float2 *)p;", "if (stride == 1) return emu_ld2(p);"}};
    return emu_dump("emu_linear_dump", buf, n, rules, sizeof rules / sizeof *rules);
}
