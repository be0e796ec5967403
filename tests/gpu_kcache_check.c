/* gpu_kcache_check.c - gpu.h's on-disk kernel cache and gpu_kernel_prewarm on a GPU.

   Each "fresh process" is a forked child that opens the GPU (the parent touches CUDA only after
   the last fork), sets tuning.kernel_cache, converts fp32 to bf16 with the core kernels (checked
   bit for bit against the CPU's round to nearest even) and sends its GpuJitStats back:
     1. an empty cache directory: the core module is compiled (1) and written (one .bin file);
     2. a second process: loaded from the disk (1), nothing compiled;
     3. the file with one payload byte flipped: compiled again (1), not loaded, and the file
        rewritten valid;
   then in this process: gpu_kernel_prewarm of two modules compiles both (2) into a new
   directory, after which the conversion compiles nothing (from memory); an unwritable cache
   directory (under /proc) warns once and the kernels still run; and for GQA, a sliding window, a
   sparse pattern, DSA (with and without its dense warm-up), GDN, MLA, MGA and HIER (windows), smollm_init's prewarm lists
   every module the first two training steps ask for: the steps compile nothing. (The images
   stay in this process's table from one model to the next, so a module missing from a later
   model's list but listed by an earlier one goes unseen: each is listed by its own room.)
   Ends with "N passed, N failed". */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "train.h"
#include "tests/gpu_test.h"
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_pass, n_fail;
static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-62s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

/* f32_to_bf16 on the device equals the CPU's rounding, every bit */
static int convert_ok(Gpu *g) {
    enum { N = 4099 };
    float *h = xmalloc(N * 4);
    uint16_t *got = xmalloc(N * 2);
    for (int i = 0; i < N; i++) h[i] = (float)(3 * nrand());
    float *d = dev_upload(g, h, N * 4);
    void *o = gpu_alloc(g, N * 2);
    gpu_f32_to_bf16(g, o, d, N);
    gpu_download(g, got, o, N * 2);
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= got[i] == f2bf(h[i]);
    gpu_free(g, d);
    gpu_free(g, o);
    free(h);
    free(got);
    return ok;
}

typedef struct { int init_ok, convert_ok; GpuJitStats jit; } Result;

/* a fresh process: open the GPU with the cache in dir, convert, report through a pipe */
static Result fresh_process(const char *dir) {
    Result r;
    memset(&r, 0, sizeof r);
    int fd[2];
    if (pipe(fd)) { perror("pipe"); exit(1); }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        Gpu g;
        Result c;
        memset(&c, 0, sizeof c);
        if (gpu_init(&g, 0) == 0) {
            c.init_ok = 1;
            g.tuning.kernel_cache = dir;
            c.convert_ok = convert_ok(&g);
            c.jit = g.jit;
            gpu_free_all(&g);
        } else {
            fprintf(stderr, "gpu_init: %s\n", g.err);
        }
        ssize_t w = write(fd[1], &c, sizeof c);
        _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) memset(&r, 0, sizeof r);
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return r;
}

static int count_bin(const char *dir, char *first, size_t n) {
    DIR *d = opendir(dir);
    int c = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".bin") && !strstr(e->d_name, ".tmp.")) {
            if (!c++ && first) snprintf(first, n, "%s/%s", dir, e->d_name);
        }
    closedir(d);
    return c;
}

static void stats_detail(char *buf, size_t n, const Result *r) {
    snprintf(buf, n, "(compiled %d in %.2f s, from disk %d in %.3f s, from memory %d)", r->jit.compiled,
             r->jit.compile_s, r->jit.from_disk, r->jit.load_s, r->jit.from_memory);
}

static void steps_batch(void *ctx, int *tok, int *tgt) {
    uint64_t *s = ctx;
    for (int i = 0; i < 2 * 128; i++) { tok[i] = (int)(splitmix64(s) % 256); tgt[i] = (int)(splitmix64(s) % 256); }
}

/* a small model of one mechanism: after smollm_init (which prewarms), its first two training
   steps compile no kernel module */
static void prewarm_covers(const char *attn, int window, int global, int topk, int warmup) {
    Gpu g;
    char err[256], name[128], detail[160];
    snprintf(name, sizeof name, "prewarm lists every module: %s window %d global %d%s", attn, window, global,
             warmup ? ", a dense warm-up step" : "");
    if (gpu_init(&g, 0) != 0) { report(0, name, g.err); return; }
    SmolConfig cfg = {0};
    if (attn_kind_parse(attn, &cfg.attn.kind)) { report(0, name, "unknown mechanism"); gpu_free_all(&g); return; }
    cfg.vocab_size = 256; cfg.d_model = 128; cfg.n_layers = 2; cfg.n_heads = 2; cfg.seed = 11;
    cfg.attn.window = window;
    cfg.attn.topk = topk;
    cfg.attn.global_tokens = global;
    cfg.attn.dsa_warmup = warmup;
    SmolModel m;
    if (smollm_init(&m, &cfg, &g, 2, 128, err, sizeof err)) { report(0, name, err); gpu_free_all(&g); return; }
    int before = g.jit.compiled;
    memset(&g.jit, 0, sizeof g.jit);
    TrainConfig tc = {0};
    tc.steps = 4;
    TrainState tr;
    uint64_t seed = 3;
    if (train_init(&tr, &m, &tc)) { report(0, name, "train_init failed"); smollm_free(&m); gpu_free_all(&g); return; }
    train_step(&tr, steps_batch, &seed);
    train_step(&tr, steps_batch, &seed);
    snprintf(detail, sizeof detail, "(init compiled %d; the steps compiled %d, found %d in memory)", before,
             g.jit.compiled, g.jit.from_memory);
    report(g.jit.compiled == 0, name, detail);
    train_free(&tr);
    smollm_free(&m);
    gpu_free_all(&g);
}

int main(void) {
    char root[] = "/tmp/gpu_kcache_XXXXXX", dir[64], dir2[64], file[512], detail[200];
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    snprintf(dir, sizeof dir, "%s/k", root);
    snprintf(dir2, sizeof dir2, "%s/prewarm", root);

    Result a = fresh_process(dir);
    if (!a.init_ok) { printf("no GPU: nothing checked\n0 passed, 1 failed\n"); return 1; }
    stats_detail(detail, sizeof detail, &a);
    report(a.convert_ok, "cold cache: f32_to_bf16 bit-exact", NULL);
    report(a.jit.compiled == 1 && a.jit.from_disk == 0, "cold cache: the core module compiled", detail);
    report(count_bin(dir, file, sizeof file) == 1, "cold cache: one file written", NULL);

    Result b = fresh_process(dir);
    stats_detail(detail, sizeof detail, &b);
    report(b.convert_ok, "second process: f32_to_bf16 bit-exact", NULL);
    report(b.jit.compiled == 0 && b.jit.from_disk == 1, "second process: loaded from the disk, not compiled", detail);

    FILE *f = fopen(file, "r+b");
    if (f) {
        fseek(f, GPU_KCACHE_HEADER + 100, SEEK_SET);
        int c = fgetc(f);
        fseek(f, GPU_KCACHE_HEADER + 100, SEEK_SET);
        fputc(c ^ 0xff, f);
        fclose(f);
    }
    Result c = fresh_process(dir);
    stats_detail(detail, sizeof detail, &c);
    report(c.convert_ok, "corrupt file: f32_to_bf16 bit-exact", NULL);
    report(c.jit.compiled == 1 && c.jit.from_disk == 0, "corrupt file: not trusted, compiled again", detail);
    Result d = fresh_process(dir);
    report(d.jit.compiled == 0 && d.jit.from_disk == 1, "corrupt file: rewritten, the next process loads it", NULL);

    /* from here on CUDA in this process (no fork after it) */
    Gpu g;
    if (gpu_init(&g, 0) != 0) { printf("gpu_init: %s\n", g.err); return 1; }
    g.tuning.kernel_cache = dir2;
    GpuKernelSpec specs[2];
    int ns = gpu_kernel_spec_add(specs, 2, 0, KERNELS_SRC, "-DGPU_KCACHE_CHECK=1");
    ns = gpu_kernel_spec_add(specs, 2, ns, KERNELS_SRC, NULL); /* the core module, also added by prewarm: once */
    gpu_kernel_prewarm(&g, specs, ns);
    snprintf(detail, sizeof detail, "(compiled %d, NVRTC %.2f s wall)", g.jit.compiled, g.jit.compile_s);
    report(ns == 2 && g.jit.compiled == 2 && count_bin(dir2, NULL, 0) == 2, "prewarm: two modules compiled and written", detail);
    report(convert_ok(&g) && g.jit.compiled == 2 && g.jit.from_memory == 1, "prewarm: then gpu_kernel compiles nothing",
           NULL);
    gpu_free_all(&g);

    if (gpu_init(&g, 0) != 0) { printf("gpu_init: %s\n", g.err); return 1; }
    g.tuning.kernel_cache = "/proc/ablate-kcache-check"; /* no directory can be made there, even by root */
    GpuKernelSpec other;
    gpu_kernel_spec_add(&other, 1, 0, KERNELS_SRC, "-DGPU_KCACHE_CHECK=2");
    gpu_kernel_prewarm(&g, &other, 1);
    report(g.kcache_warned == 1 && g.jit.compiled == 1 && convert_ok(&g),
           "unwritable cache: warned once, the kernels still run", NULL);
    gpu_free_all(&g);

    static const struct { const char *attn; int window, global, topk, warmup; } mechs[] = {
        /* MLA, MGA and HIER first, each with its own window: GQA's modules (group 1 at this
           shape) would hide theirs */
        {"mla", 0, 0, 0, 0},  {"mga", 16, 0, 0, 0}, {"hier", 24, 0, 0, 0}, {"gqa", 0, 0, 0, 0},  {"swa", 32, 0, 0, 0}, {"gqa", 32, 4, 0, 0},
        {"dsa", 0, 0, 32, 0}, {"dsa", 0, 0, 32, 1}, {"gdn", 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof mechs / sizeof *mechs; i++)
        prewarm_covers(mechs[i].attn, mechs[i].window, mechs[i].global, mechs[i].topk, mechs[i].warmup);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", root);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
