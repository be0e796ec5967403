/* emu_decode_dump.c - print attn/decode.cu.h's rooms source (DECODE_ROOMS_SRC) or, with the
   argument "fused", attn/decode_fused.cu.h's, rewritten as plain C for tests/emu_decode.c
   (tests/emu_fused.c): a CPU emulation of the decode kernels, no GPU needed.

   Rewrites: extern "C" dropped; the dynamic shared array becomes a pointer to the emulator's
   buffer; __shared__ becomes static (one block runs at a time, so static is per block); the
   ablate_common.cuh include is dropped (the emulator defines those helpers).
   usage: emu_decode_dump > build/emu_decode_kernels.inc
          emu_decode_dump fused > build/emu_fused_kernels.inc
          emu_decode_dump dense > build/emu_dense_kernels.inc (the dense room's DECODE_SRC) */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/decode.cu.h"
#include "attn/decode_fused.cu.h"
#include "emu_dump_common.h"

int main(int argc, char **argv) {
    int fused = argc > 1 && !strcmp(argv[1], "fused"), dense = argc > 1 && !strcmp(argv[1], "dense");
    if (argc > 1 && !fused && !dense) {
        fprintf(stderr, "emu_decode_dump: unknown source '%s' (expected none, fused or dense)\n", argv[1]);
        return 2;
    }
    const char *src = fused ? DECODE_FUSED_SRC : dense ? DECODE_SRC : DECODE_ROOMS_SRC;
    const EmuRule rules[] = {{"extern \"C\" ", ""},
                             {"extern __shared__ float sm[];", "float *sm = g_sm;"},
                             {"__shared__", "static"},
                             {"#include \"ablate_common.cuh\"", ""}};
    return emu_dump("emu_decode_dump", src, strlen(src), rules, sizeof rules / sizeof *rules);
}
