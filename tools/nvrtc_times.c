/* nvrtc_times.c - what a first step compiles, module by module: the kernel modules a model's
   warm-up (smollm.h's smol_prewarm) hands to gpu_kernel_prewarm, plus the core ops' module, each
   compiled by NVRTC for a GPU architecture on this machine's CPUs (no GPU, no driver needed),
   timed one at a time and then all together in parallel as the warm-up does. A first step with
   the kernel cache off waits about for the longest module (or for the parallel wall, when there
   are fewer cores than modules).

   build: make build/nvrtc_times
   usage: nvrtc_times MECHANISM [HEAD_DIM [ARCH [THREADS]]]   (the SmolLM2-135M shape; GQA takes
          3 KV heads, DSA top-512 as the bench's (a) row, SWA and HIER a window of 512; HEAD_DIM
          default 64; ARCH default sm_90,
          the H100 / H200 target; THREADS for the parallel pass, default this machine's cores up
          to 16, as the warm-up)
   Prints a line per module (source, options, seconds, kernels in it), then the sum, the longest
   and the parallel wall. Exit 1 if a module fails to compile. */
#define ABLATE_IMPLEMENTATION
#include "study.h"
#include "gpu.h"
#include <time.h>
#include <unistd.h>

static double now_(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* a short name for a kernel source, for the table */
static const char *src_name_(const char *s) {
    if (s == KERNELS_SRC) return "core (kernels.cu.h)";
    if (s == ATTN_KERNELS_SRC) return "attn/dense.cu.h";
    if (s == ATTN_WGMMA_SRC) return "attn/dense.cu.h wgmma";
    if (s == SPARSE_KERNELS_SRC) return "attn/dsa.cu.h";
    if (s == GDN_KERNELS_SRC) return "attn/gdn.cu.h";
    if (s == ATTN_HIER_SRC) return "attn/hier.cu.h";
    return "other";
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(argc < 2 ? stderr : stdout, "usage: nvrtc_times MECHANISM [HEAD_DIM [ARCH [THREADS]]]\n"
                "  the NVRTC time of each kernel module a first training step of the SmolLM2-135M shape\n"
                "  compiles (mechanisms: %s), HEAD_DIM default 64, ARCH default sm_90\n", ATTN_KIND_LIST);
        return argc < 2 ? 2 : 0;
    }
    const int hd = argc > 2 ? atoi(argv[2]) : 64;
    const char *arch = argc > 3 ? argv[3] : "sm_90";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = argc > 4 ? atoi(argv[4]) : cpus < 1 ? 1 : cpus > 16 ? 16 : (int)cpus;
    int cc = 0;
    if (sscanf(arch, "sm_%d", &cc) != 1 || cc < 80 || threads < 1 || hd < 8) {
        fprintf(stderr, "nvrtc_times: head dim %d, arch '%s', threads %d: expected a head dim >= 8, sm_XX with "
                "XX >= 80, threads >= 1\n", hd, arch, threads);
        return 2;
    }
    SmolConfig cfg = {0};
    cfg.vocab_size = 49152;
    if (attn_kind_parse(argv[1], &cfg.attn.kind)) {
        fprintf(stderr, "nvrtc_times: unknown mechanism '%s' (expected %s)\n", argv[1], ATTN_KIND_LIST);
        return 2;
    }
    if (cfg.attn.kind == ATTN_GQA) cfg.attn.n_kv_heads = 3;
    if (cfg.attn.kind == ATTN_DSA) cfg.attn.topk = 512;
    if (cfg.attn.kind == ATTN_SWA || cfg.attn.kind == ATTN_HIER) cfg.attn.window = 512;
    cfg.attn.head_dim = hd;
    char err[512];
    if (smollm_resolve(&cfg, err, sizeof err)) {
        fprintf(stderr, "nvrtc_times: %s\n", err);
        return 1;
    }
    /* the Gpu the module lists read: its compute capability and the default tuning */
    static Gpu g;
    g.cc_major = cc / 10;
    g.cc_minor = cc % 10;
    snprintf(g.arch, sizeof g.arch, "%s", arch);
    enum { MAX = 64 };
    GpuKernelSpec all[MAX], one[16];
    int n = gpu_kernel_spec_add(all, MAX, 0, KERNELS_SRC, "");
    for (int l = 0; l < cfg.n_layers; l++) { /* as smol_prewarm: each module once */
        AttnConfig a = smollm_layer_attn(&cfg, l);
        attn_resolve(&a, err, sizeof err);
        int k = attn_gpu_kernels(&g, &a, 16, 2048, one, 16);
        for (int i = 0; i < k && i < 16; i++) {
            int seen = 0;
            for (int j = 0; j < n && !seen; j++)
                seen = all[j].source == one[i].source && !strcmp(all[j].options, one[i].options);
            if (!seen && n < MAX) all[n++] = one[i];
        }
    }
    GpuCompileJob jobs[MAX];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < n; i++) {
        jobs[i].source = all[i].source;
        jobs[i].options = all[i].options;
        jobs[i].arch = arch;
        jobs[i].want_cubin = 1;
    }
    printf("%s at the SmolLM2-135M shape, head dim %d: %d kernel modules for %s\n", argv[1], hd, n, arch);
    printf("%-24s %7s %7s  %s\n", "source", "s", "kernels", "options");
    double sum = 0, longest = 0;
    int failed = 0;
    for (int i = 0; i < n; i++) { /* one at a time: each module's own time */
        char *ptx = NULL;
        int entries = 0;
        failed += gpu_compile_parallel(&jobs[i], 1, 1);
        if (jobs[i].rc == 0 && gpu_compile_ptx(all[i].source, all[i].options, arch, &ptx, NULL) == 0)
            entries = gpu_ptx_entries(ptx);
        free(ptx);
        printf("%-24s %7.2f %7d  %s\n", src_name_(all[i].source), jobs[i].seconds, entries,
               all[i].options[0] ? all[i].options : "(none)");
        if (jobs[i].rc) fprintf(stderr, "%s", jobs[i].log ? jobs[i].log : "");
        sum += jobs[i].seconds;
        if (jobs[i].seconds > longest) longest = jobs[i].seconds;
        free(jobs[i].image); free(jobs[i].log);
        jobs[i].image = jobs[i].log = NULL;
    }
    double t0 = now_();
    failed += gpu_compile_parallel(jobs, n, threads);
    double wall = now_() - t0;
    for (int i = 0; i < n; i++) { free(jobs[i].image); free(jobs[i].log); }
    printf("sum %.2f s, longest %.2f s, all %d in parallel on %d threads: %.2f s wall%s\n", sum, longest, n, threads,
           wall, failed ? " (some FAILED)" : "");
    return failed != 0;
}
