/* emu_hier_dump.c - print attn/hier.cu.h's source (ATTN_HIER_SRC) rewritten as plain C for
   tests/emu_hier.c: a CPU emulation of the multi-scale room's coarse-branch kernels.

   Rewrites (tests/emu_dump_common.h): extern "C" dropped; __shared__ becomes static (one block
   runs at a time); the ablate_common.cuh include is dropped (tests/emu_cuda.h defines those).
   usage: emu_hier_dump > build/emu_hier_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/hier.cu.h"
#include "emu_dump_common.h"

int main(void) {
    const EmuRule rules[] = {{"extern \"C\" ", ""}, {"__shared__", "static"}, {"#include \"ablate_common.cuh\"", ""}};
    return emu_dump("emu_hier_dump", ATTN_HIER_SRC, strlen(ATTN_HIER_SRC), rules, sizeof rules / sizeof *rules);
}
