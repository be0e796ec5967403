/* emu_sparse_dump.c - print attn/dsa.cu.h's CUDA source, after kernels.cu.h's common header, as
   C++ for tests/emu_sparse.cc (a CPU emulation of the sparse attention kernels: no GPU needed).

   Rewrites: the two in-memory includes dropped (the common header is printed first; the
   emulator defines ablate_mma.cuh's cp.async, ldmatrix and mma.sync wrappers itself);
   extern "C" __global__ becomes static (the source is included once per head-width
   configuration, each in a namespace of its own); a dynamic shared array becomes a pointer to the
   emulator's buffer; __shared__ becomes static (one block runs at a time, so static is per
   block). The test defines SPARSE_PART 1, so only the attention kernels compile.
   usage: emu_sparse_dump > build/emu_sparse_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/dsa.cu.h"
#include "emu_dump_common.h"

int main(void) {
    static char buf[1 << 21];
    int n = snprintf(buf, sizeof buf, "%s\n#ifdef EMU_SPARSE_KERNELS\n%s\n#endif\n", KERNELS_COMMON_SRC,
                     SPARSE_KERNELS_SRC);
    if (n < 0 || (size_t)n >= sizeof buf) { fprintf(stderr, "emu_sparse_dump: sources too long\n"); return 1; }
    const EmuRule rules[] = {
        {"#include \"ablate_common.cuh\"", ""},
        {"#include \"ablate_mma.cuh\"", ""},
        {"extern \"C\" __global__", "static"},
        {"extern __shared__ __align__(16) unsigned char smem_raw[];", "unsigned char *smem_raw = (unsigned char *)emu_smem;"},
        {"extern __shared__ __align__(16) int sak[];", "int *sak = (int *)emu_smem;"},
        {"extern __shared__ __align__(16) float swrow[];", "float *swrow = (float *)emu_smem;"},
        {"extern __shared__ __align__(16) float srow[];", "float *srow = (float *)emu_smem;"},
        {"extern __shared__ unsigned smask[];", "unsigned *smask = (unsigned *)emu_smem;"},
        {"__shared__", "static"},
    };
    return emu_dump("emu_sparse_dump", buf, (size_t)n, rules, sizeof rules / sizeof *rules);
}
