/* nvrtc_compile.c - compile every kernel source and specialization with NVRTC
   for sm_80 and sm_90 (no GPU needed: CI runs this on a CPU machine).

   cc -O2 -I. tests/nvrtc_compile.c -o /tmp/nvrtc_compile -I/usr/local/cuda/include \
      -L/usr/local/cuda/lib64 -lnvrtc -lcublasLt -lcublas -lm

   Prints one line per (kernel set, arch) and ends with "N passed, N failed";
   exits non-zero on any failure. Compiling for sm_XX runs ptxas too, so
   register or shared-memory overflows fail here, not on the device. */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY /* no libcuda needed at run time */
#include "gpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the attention kernels, when that file exists */
#if defined(__has_include)
#if __has_include("kernels_attn.cu.h")
#include "kernels_attn.cu.h"
#define HAVE_ATTN 1
#endif
#endif

/* the sparse attention (DSA) kernels, when that file exists */
#if defined(__has_include)
#if __has_include("kernels_sparse.cu.h")
#include "kernels_sparse.cu.h"
#define HAVE_SPARSE 1
#endif
#endif

/* the Gated DeltaNet kernels (attn_linear.h's GPU path), when that file exists */
#if defined(__has_include)
#if __has_include("kernels_linear.cu.h")
#include "kernels_linear.cu.h"
#define HAVE_LINEAR 1
#endif
#endif

typedef struct { const char *set, *src, *opts; } Spec;

static int passed, failed;

/* compile one spec for one arch; count and report the result */
static void check(const Spec *s, const char *arch) {
    char *ptx = NULL, *log = NULL;
    int rc = gpu_compile_ptx(s->src, s->opts, arch, &ptx, &log);
    /* a kernel should never need to spill or warn: show the log even on success */
    int has_log = log && log[0];
    if (rc == 0) {
        passed++;
        printf("ok    %-8s %-28s %-40s ptx %zu bytes\n", arch, s->set, s->opts ? s->opts : "",
               strlen(ptx));
        if (has_log) printf("      log:\n%s\n", log);
    } else {
        failed++;
        printf("FAIL  %-8s %-28s %-40s\n%s\n", arch, s->set, s->opts ? s->opts : "", log ? log : "");
    }
    free(ptx);
    free(log);
}

int main(void) {
    Spec specs[8];
    int n = 0;
    /* kernels.cu.h takes every size at run time: one specialization */
    specs[n++] = (Spec){"kernels.cu.h", KERNELS_SRC, ""};
    const char *archs[] = {"sm_80", "sm_90"};
    for (int i = 0; i < n; i++)
        for (int a = 0; a < 2; a++) check(&specs[i], archs[a]);
#ifdef HAVE_ATTN
    /* kernels_attn.cu.h compiles its own specializations (its failures go to stderr) */
    for (int a = 0; a < 2; a++) {
        int f = attn_kernels_compile_check(archs[a]);
        printf("%s  %-8s %-28s every specialization it lists (%d failed)\n", f ? "FAIL" : "ok  ",
               archs[a], "kernels_attn.cu.h", f);
        if (f) failed++; else passed++;
    }
#else
    printf("skip  kernels_attn.cu.h absent\n");
#endif
#ifdef HAVE_SPARSE
    for (int a = 0; a < 2; a++) {
        int f = sparse_kernels_compile_check(archs[a]);
        printf("%s  %-8s %-28s every specialization it lists (%d failed)\n", f ? "FAIL" : "ok  ",
               archs[a], "kernels_sparse.cu.h", f);
        if (f) failed++; else passed++;
    }
#else
    printf("skip  kernels_sparse.cu.h absent\n");
#endif
#ifdef HAVE_LINEAR
    /* kernels_linear.cu.h: both product variants (GDN_MMA 0 and 1) of both delta-rule organizations (GDN_PAR) */
    for (int a = 0; a < 2; a++) {
        int f = gdn_kernels_compile_check(archs[a]);
        printf("%s  %-8s %-28s GDN_MMA=0/1 x GDN_PAR=0/1 (%d failed)\n", f ? "FAIL" : "ok  ", archs[a],
               "kernels_linear.cu.h", f);
        if (f) failed++; else passed++;
    }
#else
    printf("skip  kernels_linear.cu.h absent\n");
#endif
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
