/* emu_decode_dump.c - print attn/decode.cu.h's rooms source (DECODE_ROOMS_SRC) or, with the
   argument "fused", attn/decode_fused.cu.h's, rewritten as plain C for tests/emu_decode.c
   (tests/emu_fused.c): a CPU emulation of the decode kernels, no GPU needed.

   Rewrites: extern "C" dropped; the dynamic shared array becomes a pointer to the emulator's
   buffer; __shared__ becomes static (one block runs at a time, so static is per block); the
   ablate_common.cuh include is dropped (the emulator defines those helpers).
   usage: emu_decode_dump > build/emu_decode_kernels.inc
          emu_decode_dump fused > build/emu_fused_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/decode.cu.h"
#include "attn/decode_fused.cu.h"
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    static char buf[1 << 20], out[1 << 20];
    int fused = argc > 1 && !strcmp(argv[1], "fused");
    if (argc > 1 && !fused) { fprintf(stderr, "emu_decode_dump: unknown source '%s' (expected none or fused)\n", argv[1]); return 2; }
    const char *src = fused ? DECODE_FUSED_SRC : DECODE_ROOMS_SRC;
    size_t n = strlen(src);
    if (n >= sizeof buf) { fprintf(stderr, "emu_decode_dump: source of %zu bytes (expected < %zu)\n", n, sizeof buf); return 1; }
    memcpy(buf, src, n);
    const char *rules[][2] = {{"extern \"C\" ", ""},
                              {"extern __shared__ float sm[];", "float *sm = g_sm;"},
                              {"__shared__", "static"},
                              {"#include \"ablate_common.cuh\"", ""}};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        size_t fl = strlen(rules[r][0]), tl = strlen(rules[r][1]), m = 0;
        for (size_t i = 0; i < n;) {
            if (i + fl <= n && !memcmp(buf + i, rules[r][0], fl)) { memcpy(out + m, rules[r][1], tl); m += tl; i += fl; }
            else out[m++] = buf[i++];
        }
        memcpy(buf, out, m);
        n = m;
    }
    fwrite(buf, 1, n, stdout);
    return 0;
}
