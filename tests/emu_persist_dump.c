/* emu_persist_dump.c - print attn/decode_persist.cu.h's persistent decode step (pz_step) as C++
   for tests/emu_persist.cc (a CPU emulation of it: no GPU needed), once per model shape, each in a
   namespace of its own with the -D options gpu_pz_step builds (pz_options_, the real builder).

   Rewrites: kernels.cu.h's common header is printed once first and its in-memory include
   dropped; extern "C" __global__ becomes static; the dynamic shared array becomes a pointer to
   the emulator's buffer; __shared__ becomes static (one block runs at a time, so static is per
   block); the grid barrier's release add and acquire load become a plain add and load of the
   counter (the emulation runs the step as one block, whose own arrival meets the count, so the
   barrier's wait returns at once: what it checks is the arithmetic and the intra-block
   barriers, not the grid's), the global timer reads 0; Gemv's member load loses __device__ (the
   emulator's __device__ is static). Exits 1 when a rule matches nothing.
   usage: emu_persist_dump > build/emu_persist_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/decode_persist.cu.h"
#include "emu_dump_common.h"

/* the shapes (B, L, D, F, H, KV, hd, V, eps), tests/emu_persist.cc's table in the same order */
static const GpuPzShape shapes[] = {{2, 2, 64, 96, 4, 2, 16, 300, 1e-5f}, {1, 2, 96, 128, 3, 1, 64, 200, 1e-5f}};

int main(void) {
    printf("%s\n", KERNELS_COMMON_SRC);
    const EmuRule rules[] = {
        {"#include \"ablate_common.cuh\"", ""},
        {"extern \"C\" __global__", "static"},
        {"extern __shared__ float sm[];", "float *sm = (float *)emu_smem;"},
        {"__shared__", "static"},
        {"asm volatile(\"red.release.gpu.global.add.u32 [%0], 1;\" : : \"l\"(bar) : \"memory\");", "*bar += 1u;"},
        {"asm volatile(\"ld.acquire.gpu.global.u32 %0, [%1];\" : \"=r\"(v) : \"l\"(bar) : \"memory\");",
         "v = *(volatile unsigned *)bar;"},
        {"asm volatile(\"mov.u64 %0, %%globaltimer;\" : \"=l\"(t));", "t = 0;"},
        /* a member function (the emulator's __device__ is static, which a member cannot be) */
        {"    __device__ __forceinline__ void load(const bf16 *w, int u, int lane) {",
         "    inline void load(const bf16 *w, int u, int lane) {"},
    };
    const size_t nr = sizeof rules / sizeof *rules;
    for (size_t r = 0; r < nr; r++)
        if (!strstr(DECODE_PERSIST_SRC, rules[r].from)) {
            fprintf(stderr, "emu_persist_dump: rule %zu ('%.50s') matches nothing\n", r, rules[r].from);
            return 1;
        }
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        char opt[160], ns[32];
        pz_options_(&shapes[i], opt, sizeof opt);
        snprintf(ns, sizeof ns, "emu_pz_%zu", i);
        printf("// ---- shape %zu (%s)\n", i, opt);
        emu_defines(opt, 0);
        printf("namespace %s {\n", ns);
        fflush(stdout);
        if (emu_dump("emu_persist_dump", DECODE_PERSIST_SRC, strlen(DECODE_PERSIST_SRC), rules, nr)) return 1;
        printf("\n} // namespace %s\n", ns);
        emu_defines(opt, 1);
        emu_undef_all(DECODE_PERSIST_SRC);
    }
    return 0;
}
