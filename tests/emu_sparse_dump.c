/* emu_sparse_dump.c - print attn/dsa.cu.h's sparse attention kernels (SPARSE_PART 1) as C++ for
   tests/emu_sparse.cc (a CPU emulation of them: no GPU needed), once per configuration, each in
   a namespace of its own with the -D options the launchers build (sparse_attn_opts_: the real
   builder, so HDP and HB are the host's), and a table of the configurations: their tile width
   and head block (sparse_hdp_, sparse_hb_), the test's shape and the kernels. Then the selection's
   kernels: the shared module (SPARSE_PART 0, SPARSE_COMMON_OPTS: top-k, the mask, fill) in
   namespace emu_sp0, and the indexer's score kernels (SPARSE_PART 2, sparse_index_opts_) once per
   (HI, dI) in namespaces emu_ix_N, with the table emu_ix_cfgs (sparse_scores_smem_).

   Rewrites: kernels.cu.h's common header is printed once first and the two in-memory includes
   dropped (the emulator defines ablate_mma.cuh's cp.async, ldmatrix and mma.sync wrappers
   itself); extern "C" __global__ becomes static; a dynamic shared array becomes a pointer to
   the emulator's buffer; __shared__ becomes static (one block runs at a time, so static is per
   block). After each configuration every macro the source defines is undefined again.
   usage: emu_sparse_dump > build/emu_sparse_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/dsa.cu.h"
#include "emu_dump_common.h"

/* the configurations: head dim and group (H / KV: the options), then the test's B, T, H, k */
static const struct { int hd, group, B, T, H, K; const char *what; } cfgs[] = {
    {64, 4, 2, 40, 4, 24, "hd 64, 4 heads on one kv head"},
    {72, 2, 1, 50, 4, 37, "hd 72 (padded tiles), GQA 2"},
    {256, 2, 1, 40, 2, 20, "hd 256 (the widest), 2 heads on one kv head"},
    {200, 1, 1, 30, 2, 33, "hd 200 (padded tiles), MHA: a head a block"},
};

/* the indexer shapes of the score kernels (HI heads of dI; the prep pads 8 and 16 to 32) */
static const struct { int HI, dI; } ixcfgs[] = {{4, 64}, {1, 32}, {2, 128}};
/* the KL test's shape (emu_sparse.cc's run_kl): B sequences of T tokens, topk slots */
#define KL_B 1
#define KL_T 260 /* 260 tokens: key_reduce splits them in two, so key_combine runs */
#define KL_K 10

/* the source (body[0..n)) under the -D options opt, rewritten by rules, in namespace ns, and
   every macro it defines undefined after; 0, or 1 with a message */
static int dump_ns(const char *body, size_t n, const EmuRule *rules, size_t n_rules, const char *opt, const char *ns) {
    emu_defines(opt, 0);
    printf("namespace %s {\n", ns);
    fflush(stdout);
    if (emu_dump("emu_sparse_dump", body, n, rules, n_rules)) return 1;
    printf("\n} // namespace %s\n", ns);
    emu_defines(opt, 1);
    emu_undef_all(SPARSE_KERNELS_SRC);
    return 0;
}

int main(void) {
    printf("%s\n", KERNELS_COMMON_SRC);
    static char body[1 << 21];
    int n = snprintf(body, sizeof body, "%s", SPARSE_KERNELS_SRC);
    if (n < 0 || (size_t)n >= sizeof body) { fprintf(stderr, "emu_sparse_dump: source too long\n"); return 1; }
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
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        char opt[160];
        sparse_attn_opts_(opt, sizeof opt, cfgs[i].hd, cfgs[i].group);
        printf("// ---- configuration %zu: %s (%s)\n", i, cfgs[i].what, opt);
        char ns[32];
        snprintf(ns, sizeof ns, "emu_sparse_%zu", i);
        if (dump_ns(body, (size_t)n, rules, sizeof rules / sizeof *rules, opt, ns)) return 1;
    }
    /* the selection: the shared module, then the score kernels per indexer shape */
    printf("// ---- the shared kernels (%s)\n", SPARSE_COMMON_OPTS);
    if (dump_ns(body, (size_t)n, rules, sizeof rules / sizeof *rules, SPARSE_COMMON_OPTS, "emu_sp0")) return 1;
    for (size_t i = 0; i < sizeof ixcfgs / sizeof *ixcfgs; i++) {
        char opt[160];
        sparse_index_opts_(opt, sizeof opt, ixcfgs[i].HI, ixcfgs[i].dI);
        printf("// ---- indexer scores %zu (%s)\n", i, opt);
        char ns[32];
        snprintf(ns, sizeof ns, "emu_ix_%zu", i);
        if (dump_ns(body, (size_t)n, rules, sizeof rules / sizeof *rules, opt, ns)) return 1;
    }
    printf("static const EmuIxCfg emu_ix_cfgs[] = {\n");
    for (size_t i = 0; i < sizeof ixcfgs / sizeof *ixcfgs; i++)
        printf("    {%d, %d, %u, %u, emu_ix_%zu::idx_scores_bf16, emu_ix_%zu::idx_scores_f32, emu_ix_%zu::idx_kl, "
               "emu_ix_%zu::idx_dk_reduce, {%u, %u}},\n", ixcfgs[i].HI, ixcfgs[i].dI,
               sparse_scores_smem_(ixcfgs[i].HI, ixcfgs[i].dI, 0), sparse_scores_smem_(ixcfgs[i].HI, ixcfgs[i].dI, 1), i, i,
               i, i, sparse_kl_smem_(ixcfgs[i].HI, ixcfgs[i].dI, KL_K, 0), sparse_kl_smem_(ixcfgs[i].HI, ixcfgs[i].dI, KL_K, 1));
    printf("};\n");
    {   /* the KL's deterministic dkI: key_reduce's launch over the whole batch as one chunk
           (sparse_reduce_launch_: nseq sequences, ns splits, the partials' floats at each dI) */
        int nseq, ns = sparse_reduce_splits_(KL_T, 0, (long)KL_B * KL_T, &nseq);
        printf("static const EmuKlShape emu_kl_shape = {%d, %d, %d, %d, %d, %d, %d};\n", KL_B, KL_T, KL_K, nseq, ns,
               SPARSE_RKEYS, SPARSE_RK_THREADS);
    }
    printf("static const EmuSparseCfg emu_sparse_cfgs[] = {\n");
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++)
        printf("    {\"%s\", %d, %d, %d, %d, %d, %d, %d, %d, emu_sparse_%zu::sparse_fwd, emu_sparse_%zu::sparse_bwd, "
               "emu_sparse_%zu::sparse_kv_reduce, emu_sparse_%zu::sparse_probs},\n",
               cfgs[i].what, cfgs[i].hd, sparse_hdp_(cfgs[i].hd), sparse_hb_(cfgs[i].group), cfgs[i].group, cfgs[i].B,
               cfgs[i].T, cfgs[i].H, cfgs[i].K, i, i, i, i);
    printf("};\n");
    return 0;
}
