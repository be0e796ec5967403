/* nvrtc_compile.c - compile every kernel source and specialization with NVRTC
   for sm_80 and sm_90 (no GPU needed: CI runs this on a CPU machine).

   cc -O2 -I. tests/nvrtc_compile.c -o /tmp/nvrtc_compile -I/usr/local/cuda/include \
      -L/usr/local/cuda/lib64 -lnvrtc -lcublasLt -lcublas -lpthread -lm

   usage: tests/nvrtc_compile [NAME]...   (NAMEs: only the kernel files whose name contains one)
   Prints "[k/n] arch file ..." as each (kernel file, arch) group starts, "... still compiling"
   every 20 s while it runs and one ok/FAIL line with its time when it ends, then
   "N passed, N failed";
   exits non-zero on any failure. Compiling for sm_XX runs ptxas too, so
   register or shared-memory overflows fail here, not on the device. */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY /* no libcuda needed at run time */
#include "gpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

/* the attention kernels, when that file exists */
#if defined(__has_include)
#if __has_include("attn/dense.cu.h")
#include "attn/dense.cu.h"
#define HAVE_ATTN 1
#endif
#endif

/* the sparse attention (DSA) kernels, when that file exists */
#if defined(__has_include)
#if __has_include("attn/dsa.cu.h")
#include "attn/dsa.cu.h"
#define HAVE_SPARSE 1
#endif
#endif

/* the Gated DeltaNet kernels (attn/gdn.h's GPU path), when that file exists */
#if defined(__has_include)
#if __has_include("attn/gdn.cu.h")
#include "attn/gdn.cu.h"
#define HAVE_LINEAR 1
#endif
#endif

/* the generation kernels (the dense room's decode attention, the sampler; the one-token decode
   kernels of the MLA, MGA, GDN and DSA rooms; the fused small-batch step), when those files exist */
#if defined(__has_include)
#if __has_include("attn/decode.cu.h")
#include "attn/decode.cu.h"
#define HAVE_DECODE 1
#endif
#if __has_include("attn/decode_fused.cu.h")
#include "attn/decode_fused.cu.h"
#define HAVE_DECODE_FUSED 1
#endif
#if __has_include("attn/decode_persist.cu.h")
#include "attn/decode_persist.cu.h"
#define HAVE_DECODE_PERSIST 1
#endif
#endif

/* the multi-scale room's coarse branch */
#if defined(__has_include)
#if __has_include("attn/hier.cu.h")
#include "attn/hier.cu.h"
#define HAVE_HIER 1
#endif
#endif

static int passed, failed;

/* one kernel group: a source file's specializations for one arch; run returns the failures */
typedef struct { const char *set, *what; int (*run)(const char *arch); } Group;

/* kernels.cu.h takes every size at run time: one specialization, its PTX size and any log shown
   (a kernel should never need to spill or warn) */
static int check_kernels(const char *arch) {
    char *ptx = NULL, *log = NULL;
    int rc = gpu_compile_ptx(KERNELS_SRC, "", arch, &ptx, &log);
    if (rc == 0) printf("      ptx %zu bytes\n", strlen(ptx));
    if (log && log[0]) printf("      log:\n%s\n", log);
    free(ptx);
    free(log);
    return rc != 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* a group can take minutes (attn/dense.cu.h: dozens of specializations): a second thread
   prints "      ... still compiling" every HEARTBEAT_S seconds until the group ends */
#ifndef HEARTBEAT_S
#define HEARTBEAT_S 20
#endif
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    const char *arch, *set;
    double t0;
} Heartbeat;

static void *heartbeat_main(void *p) {
    Heartbeat *h = p;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += HEARTBEAT_S;
        while (!h->done && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0) {}
        if (h->done) break;
        printf("      ... still compiling %s for %s: %.0f s\n", h->set, h->arch, now_s() - h->t0);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int main(int argc, char **argv) {
    /* line-buffered even into a pipe or a file: make test tees this to the terminal as progress */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        puts("usage: tests/nvrtc_compile [NAME]...\n"
             "Compiles every kernel group (a kernel source's specializations for sm_80 and sm_90)\n"
             "with NVRTC; NAMEs keep only the groups whose file name contains one of them.");
        return 0;
    }
    const Group all[] = {
        {"kernels.cu.h", "one specialization (sizes at run time)", check_kernels},
#ifdef HAVE_ATTN
        /* its own specializations; its failures go to stderr */
        {"attn/dense.cu.h", "every specialization it lists", attn_kernels_compile_check},
#endif
#ifdef HAVE_SPARSE
        {"attn/dsa.cu.h", "every specialization it lists", sparse_kernels_compile_check},
#endif
#ifdef HAVE_LINEAR
        /* both product variants (GDN_MMA 0 and 1) of both delta-rule organizations (GDN_PAR) */
        {"attn/gdn.cu.h", "GDN_MMA=0/1 x GDN_PAR=0/1", gdn_kernels_compile_check},
#endif
#ifdef HAVE_DECODE
        {"attn/decode.cu.h", "its two sources (sizes at run time)", gpu_decode_kernels_compile_check},
#endif
#ifdef HAVE_HIER
        {"attn/hier.cu.h", "one specialization (sizes at run time)", attn_hier_kernels_compile_check},
#endif
#ifdef HAVE_DECODE_FUSED
        {"attn/decode_fused.cu.h", "one specialization (sizes at run time)",
         gpu_decode_fused_kernels_compile_check},
#endif
#ifdef HAVE_DECODE_PERSIST
        {"attn/decode_persist.cu.h", "4 model shapes (sizes at compile time)",
         gpu_decode_persist_kernels_compile_check},
#endif
    };
    const char *archs[] = {"sm_80", "sm_90"};
    int n_all = (int)(sizeof all / sizeof all[0]), keep[16] = {0}, n = 0;
    for (int g = 0; g < n_all; g++) {
        keep[g] = argc < 2;
        for (int i = 1; i < argc; i++) keep[g] |= strstr(all[g].set, argv[i]) != NULL;
        n += keep[g] * 2;
    }
    if (n == 0) {
        fprintf(stderr, "nvrtc_compile: no kernel group matches '%s' (expected part of kernels.cu.h, "
                        "attn/dense.cu.h, attn/dsa.cu.h, attn/gdn.cu.h, attn/decode.cu.h, attn/decode_fused.cu.h, attn/decode_persist.cu.h "
                        "or attn/hier.cu.h)\n", argv[1]);
        return 2;
    }
    /* "[k/n] arch file" before each group and its time after: a whole run takes minutes, and the
       lines start with '[', a word or "...", never with "N passed", so run_tests --count-from
       still reads the last line */
    int k = 0;
    for (int g = 0; g < n_all; g++)
        for (int a = 0; a < 2 && keep[g]; a++) {
            printf("[%d/%d] %s %s ...\n", ++k, n, archs[a], all[g].set);
            Heartbeat h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, archs[a], all[g].set, now_s()};
            pthread_t th;
            int beating = pthread_create(&th, NULL, heartbeat_main, &h) == 0;
            int f = all[g].run(archs[a]);
            pthread_mutex_lock(&h.mu);
            h.done = 1;
            pthread_cond_signal(&h.cv);
            pthread_mutex_unlock(&h.mu);
            if (beating) pthread_join(th, NULL);
            double t0 = h.t0;
            printf("%s  %-8s %-28s %s (%d failed) %.0f s\n", f ? "FAIL" : "ok  ", archs[a], all[g].set, all[g].what,
                   f, now_s() - t0);
            if (f) failed++; else passed++;
        }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
