/* emu_flash_dump.c - print attn/dense.cu.h's flash attention kernels (ATTN_KERNELS_SRC: the
   mma.sync ones every GPU and every width but Hopper's 64 runs; and ATTN_WGMMA_SRC's forward
   attn_fwd_wg, Hopper's at head dims 32..128, and at 64 its backward) as C++ for tests/emu_flash.cc,
   once per configuration, each in a namespace of its own with the -D options the launchers
   build (attn_options_, attn_pattern_for_: the real builders), and a table of the
   configurations with the launch shapes the host code uses (attn_fwd_warps_, attn_bwd_bn_, ...).

   Rewrites: the in-memory includes (the common header is printed once first; ablate_mma.cuh is
   the emulator's; ablate_pattern.cuh is printed into each namespace, its include guard lifted,
   since its macros follow each configuration's); extern "C" __global__ becomes static; the
   dynamic shared array a pointer to the emulator's buffer; __shared__ static (one block at a
   time); the inline PTX (fp32 reductions, the fixed-order dQ's acquire / release counters)
   plain C++ on the emulator's atomics. The Hopper kernels: ATTN_WGMMA_SRC up to its selection
   probabilities (the forward; the backward's kernels compile at hd 64 only), its wgmma wrappers
   (wg_ss*, wg_rs64_tb) replaced by calls of the emulator's emu_wgmma, its fences, commits and
   waits dropped (the emulated wgmma and bulk copies complete at once), its cp.async to a shared
   address the emulator's, the backward's bulk dQ adds (cp.reduce.async.bulk) float atomics
   element by element; compiled with the launchers' own options
   (attn_wgmma_options_) in a namespace emu_wg_N; and the whole source with SELMASK
   (attn_select_options_: DSA's dense tiles under a selection bitmask) at groups 1 and 4 in
   namespaces emu_sel_N, with the table emu_sel_cfgs. After each configuration every macro the
   sources define is undefined again.
   usage: emu_flash_dump > build/emu_flash_kernels.inc */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include "attn/dense.cu.h"
#include "emu_dump_common.h"

/* the configurations: head dim, group, T (the pattern builder caps by it), pattern */
static const struct { int hd, group, T; OpsPattern p; const char *what; } cfgs[] = {
    {64, 2, 80, {0, 0, 0, 0, 0}, "hd 64, GQA 2, causal"},
    {72, 1, 70, {0, 0, 0, 0, 0}, "hd 72 (tiles 80), MHA"},
    {128, 4, 200, {24, 0, 0, 0, 0}, "hd 128, GQA 4, window 24"},
    {256, 1, 70, {0, 0, 0, 0, 0}, "hd 256 (two warps per 16 keys), MHA"},
    {40, 2, 100, {16, 8, 48, 0, 16}, "hd 40 (tiles 48), window 16 + global 8 + stride 48 (blocks of 16)"},
    {64, 1, 120, {8, 0, 0, 3, 16}, "hd 64, window 8 + dilation 3 (blocks of 16)"},
    {96, 2, 70, {0, 0, 0, 0, 0}, "hd 96, GQA 2"},
    {32, 1, 60, {20, 0, 0, 0, 0}, "hd 32, MHA, window 20"},
};

/* the configurations whose Hopper backward also runs with WB_DQ_BULK 3: tiles two halves wide
   (hd 72, 128) */
static int wg3_cfg(size_t i) { return cfgs[i].hd > 64 && cfgs[i].hd <= 128 && cfgs[i].hd != 96; }

/* dst[0..n) then a[0..na) then b[0..nb); returns the new count (dst sized by the caller) */
static size_t rules_cat(EmuRule *dst, size_t n, const EmuRule *a, size_t na, const EmuRule *b, size_t nb) {
    memcpy(dst + n, a, na * sizeof *a);
    memcpy(dst + n + na, b, nb * sizeof *b);
    return n + na + nb;
}

int main(void) {
    /* the common header, once */
    printf("%s\n", KERNELS_COMMON_SRC);
    static char body[1 << 20];
    int n = snprintf(body, sizeof body, "%s", ATTN_KERNELS_SRC);
    if (n < 0 || (size_t)n >= sizeof body) { fprintf(stderr, "emu_flash_dump: source too long\n"); return 1; }
    char pattern[1 << 16];
    if ((size_t)snprintf(pattern, sizeof pattern, "%s", KERNELS_PATTERN_SRC) >= sizeof pattern) {
        fprintf(stderr, "emu_flash_dump: pattern source too long\n");
        return 1;
    }
    /* the rewrites both sources need, after each one's dynamic shared array (whose
       "__shared__" the fourth would otherwise take) */
    const EmuRule common[] = {
        {"#include \"ablate_pattern.cuh\"", pattern},
        {"#include \"ablate_mma.cuh\"", ""},
        {"extern \"C\" __global__", "static"},
        {"__shared__", "static"},
        {"asm volatile(\"ld.acquire.gpu.global.s32 %0, [%1];\\n\" : \"=r\"(v) : \"l\"(sem) : \"memory\");",
         "v = emu_load_acquire(sem);"},
        {"asm volatile(\"red.release.gpu.global.add.s32 [%0], 1;\\n\" :: \"l\"(sem) : \"memory\");", "atomicAdd(sem, 1);"},
        {"asm volatile(\"red.global.add.v2.f32 [%0], {%1, %2};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b) : \"memory\");",
         "atomicAdd(p, a); atomicAdd(p + 1, b);"},
    };
    const size_t n_common = sizeof common / sizeof *common;
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        const AttnPatK pk = attn_pattern_for_(&cfgs[i].p, cfgs[i].T);
        char opt[256];
        attn_options_(opt, sizeof opt, cfgs[i].hd, cfgs[i].group, &pk, 1);
        printf("// ---- configuration %zu: %s (%s)\n", i, cfgs[i].what, opt);
        emu_defines(opt, 0);
        printf("namespace emu_flash_%zu {\n#undef ABLATE_PATTERN_CUH\n", i);
        fflush(stdout);
        const EmuRule own[] = {
            {"asm volatile(\"red.global.add.f32 [%0], %1;\\n\" :: \"l\"(p), \"f\"(a) : \"memory\");", "atomicAdd(p, a);"},
            {"asm volatile(\"red.global.add.f32 [%0], %1;\\n\" :: \"l\"(p + 1), \"f\"(b) : \"memory\");",
             "atomicAdd(p + 1, b);"},
        };
        EmuRule rules[1 + sizeof common / sizeof *common + sizeof own / sizeof *own] = {{"extern __shared__ __align__(16) bf16 smem[];", "bf16 *smem = (bf16 *)emu_smem;"}};
        const size_t n_rules = rules_cat(rules, 1, common, n_common, own, sizeof own / sizeof *own);
        if (emu_dump("emu_flash_dump", body, (size_t)n, rules, n_rules)) return 1;
        printf("\n} // namespace emu_flash_%zu\n", i);
        emu_defines(opt, 1);
        emu_undef_all(ATTN_KERNELS_SRC);
        emu_undef_all(KERNELS_PATTERN_SRC);
    }
    /* the Hopper kernels where they run (the forward at head dims 32..128, the backward at 64):
       ATTN_WGMMA_SRC up to the selection-mask kernels */
    const char *wsrc = ATTN_WGMMA_SRC,
               *wend = strstr(wsrc, "// ---------------------------------------------------------------- selection probabilities");
    const char *wcut0 = strstr(wsrc, "// d (+)= A B on one warpgroup"), *wcut1 = strstr(wsrc, "// ---------------------------------------------------------------- forward");
    if (!wend || !wcut0 || !wcut1 || !(wcut0 < wcut1 && wcut1 < wend)) {
        fprintf(stderr, "emu_flash_dump: ATTN_WGMMA_SRC's wgmma wrappers, forward or selection markers not found in order\n");
        return 1;
    }
    static const char wg_emu[] =
        "// (emulated) d (+)= A B on one warpgroup: tests/emu_cuda_cxx.h's emu_wgmma\n"
        "template <int TA, int TB> static void wg_ss32(float *d, u64 da, u64 db, int accum) { emu_wgmma(d, 32, da, db, 0, accum, TA, TB); }\n"
        "template <int TA, int TB> static void wg_ss64(float *d, u64 da, u64 db, int accum) { emu_wgmma(d, 64, da, db, 0, accum, TA, TB); }\n"
        "template <int TA, int TB> static void wg_ss128(float *d, u64 da, u64 db, int accum) { emu_wgmma(d, 128, da, db, 0, accum, TA, TB); }\n"
        "static void wg_rs64_tb(float *d, const unsigned *a, u64 db, int accum) { emu_wgmma(d, 64, 0, db, a, accum, 0, 1); }\n\n";
    static char wbody[1 << 18];
    int wn = snprintf(wbody, sizeof wbody, "%.*s%s%.*s", (int)(wcut0 - wsrc), wsrc, wg_emu, (int)(wend - wcut1), wcut1);
    if (wn < 0 || (size_t)wn >= sizeof wbody) { fprintf(stderr, "emu_flash_dump: the Hopper forward is too long\n"); return 1; }
    const EmuRule wown[] = {
        {"asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\" :: \"r\"(dst), \"l\"(src), \"r\"(valid ? 16 : 0));",
         "emu_cp_async_sh(dst, src, valid);"},
        /* the source's cp_async16(unsigned, ...) sits beside ablate_mma.cuh's (void *, ...) on the
           GPU; in a namespace it would hide the emulator's, so bring that one in */
        {"__device__ __forceinline__ void cp_async16(unsigned dst, const void *src, bool valid) {",
         "using ::cp_async16;\n__device__ __forceinline__ void cp_async16(unsigned dst, const void *src, bool valid) {"},
        {"asm volatile(\"red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\\n\" :: \"l\"(p), \"f\"(a), \"f\"(b), \"f\"(c), "
         "\"f\"(d) : \"memory\");", "atomicAdd(p, a); atomicAdd(p + 1, b); atomicAdd(p + 2, c); atomicAdd(p + 3, d);"},
        {"asm volatile(\"wgmma.fence.sync.aligned;\\n\" ::: \"memory\");", ""},
        {"asm volatile(\"wgmma.commit_group.sync.aligned;\\n\" ::: \"memory\");", ""},
        {"asm volatile(\"wgmma.wait_group.sync.aligned %0;\\n\" :: \"n\"(N) : \"memory\");", ""},
        {"asm volatile(\"\" : \"+f\"(d[i]) :: \"memory\");", "(void)d[i];"},
        {"asm volatile(\"fence.proxy.async.shared::cta;\\n\" ::: \"memory\");", ""},
        {"asm volatile(\"cp.async.bulk.commit_group;\\n\" ::: \"memory\");", ""},
        {"asm volatile(\"cp.async.bulk.wait_group.read %0;\\n\" :: \"n\"(N) : \"memory\");", ""},
        {"asm volatile(\"cp.async.bulk.wait_group %0;\\n\" :: \"n\"(N) : \"memory\");", ""},
        {"asm volatile(\"fence.proxy.async.global;\\n\" ::: \"memory\");", ""},
        {"asm volatile(\"cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], 256;\\n\"\n"
         "                         :: \"l\"(dqacc + ((long)b * T + m0 + r) * qs + h * HD), \"r\"(smem_addr(sq + r * SDQ_LD))\n"
         "                         : \"memory\");",
         "for (int i_ = 0; i_ < 64; i_++) atomicAdd(dqacc + ((long)b * T + m0 + r) * qs + h * HD + i_, sq[r * SDQ_LD + i_]);"},
        {"asm volatile(\"cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\\n\"\n"
         "                     :: \"l\"(dst), \"r\"(smem_addr(sq)), \"n\"(16384 * WNH) : \"memory\");",
         "for (int i_ = 0; i_ < 4096 * WNH; i_++) atomicAdd(dst + i_, sq[i_]);"},
    };
    EmuRule wrules[1 + sizeof common / sizeof *common + sizeof wown / sizeof *wown] = {{"extern __shared__ __align__(1024) unsigned char smem_raw[];", "unsigned char *smem_raw = emu_smem;"}};
    const size_t n_wrules = rules_cat(wrules, 1, common, n_common, wown, sizeof wown / sizeof *wown);
    /* every configuration up to hd 128 with the fixed-order dQ (namespaces emu_wg_N), then the
       Hopper backward's order-dependent dQ (WB_DQ_BULK 3, red.v4 from the staged tiles) where the
       tiles are two halves wide (emu_wg3_N) */
    for (int nd = 0; nd < 2; nd++)
        for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
            if (nd ? !wg3_cfg(i) : cfgs[i].hd > 128) continue;
            const AttnPatK pk = attn_pattern_for_(&cfgs[i].p, cfgs[i].T);
            char opt[256];
            attn_wgmma_options_(opt, sizeof opt, cfgs[i].hd, cfgs[i].group, &pk, nd ? 3 : 2, !nd);
            printf("// ---- the Hopper kernels%s, configuration %zu (%s)\n", nd ? ", order-dependent dQ" : "", i, opt);
            emu_defines(opt, 0);
            printf("namespace emu_wg%s_%zu {\n#undef ABLATE_PATTERN_CUH\n", nd ? "3" : "", i);
            fflush(stdout);
            if (emu_dump("emu_flash_dump", wbody, (size_t)wn, wrules, n_wrules)) return 1;
            printf("\n} // namespace emu_wg%s_%zu\n", nd ? "3" : "", i);
            emu_defines(opt, 1);
            emu_undef_all(wbody);
            emu_undef_all(KERNELS_PATTERN_SRC);
        }
    printf("static const EmuWg3Cfg emu_wg3_cfgs[] = {\n");
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++)
        if (wg3_cfg(i))
            printf("    {%zu, emu_wg3_%zu::attn_bwd_pre_wg, emu_wg3_%zu::attn_bwd_dkdv_wg, emu_wg3_%zu::attn_bwd_dq_convert_wg},\n",
                   i, i, i, i);
    printf("};\n");
    /* DSA's dense tiles under a selection bitmask (SELMASK: Hopper, head dim 64), at groups 1 and 4:
       the whole source with attn_select_options_'s options (its selection-probability kernel
       compiles too; the indexer-KL kernels need KL_HI, not set) */
    static const int sel_groups[] = {1, 4};
    static char sbody[1 << 19];
    int sn = snprintf(sbody, sizeof sbody, "%.*s%s%s", (int)(wcut0 - wsrc), wsrc, wg_emu, wcut1);
    if (sn < 0 || (size_t)sn >= sizeof sbody) { fprintf(stderr, "emu_flash_dump: ATTN_WGMMA_SRC is too long\n"); return 1; }
    for (size_t i = 0; i < sizeof sel_groups / sizeof *sel_groups; i++) {
        char opt[256];
        attn_select_options_(opt, sizeof opt, sel_groups[i], 2, 1);
        printf("// ---- the selection-mask kernels, group %d (%s)\n", sel_groups[i], opt);
        emu_defines(opt, 0);
        printf("namespace emu_sel_%zu {\n#undef ABLATE_PATTERN_CUH\n", i);
        fflush(stdout);
        if (emu_dump("emu_flash_dump", sbody, (size_t)sn, wrules, n_wrules)) return 1;
        printf("\n} // namespace emu_sel_%zu\n", i);
        emu_defines(opt, 1);
        emu_undef_all(sbody);
        emu_undef_all(KERNELS_PATTERN_SRC);
    }
    printf("static const EmuSelCfg emu_sel_cfgs[] = {\n");
    for (size_t i = 0; i < sizeof sel_groups / sizeof *sel_groups; i++)
        printf("    {%d, %u, %u, emu_sel_%zu::attn_fwd_wg, emu_sel_%zu::attn_bwd_pre_wg, emu_sel_%zu::attn_bwd_dkdv_wg, "
               "emu_sel_%zu::attn_bwd_dq_convert_wg},\n", sel_groups[i], attn_wfwd_smem_(1, 64), attn_wbwd_smem_(2, 1, 64),
               i, i, i, i);
    printf("};\n");
    /* the table: shapes as the launchers compute them */
    printf("static const EmuFlashCfg emu_flash_cfgs[] = {\n");
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        const int hd = cfgs[i].hd;
        char wg[64] = "nullptr", wb[160] = "nullptr, nullptr, nullptr";
        if (hd <= 128) snprintf(wg, sizeof wg, "emu_wg_%zu::attn_fwd_wg", i);
        if (hd <= 128)
            snprintf(wb, sizeof wb, "emu_wg_%zu::attn_bwd_pre_wg, emu_wg_%zu::attn_bwd_dkdv_wg, "
                     "emu_wg_%zu::attn_bwd_dq_convert_wg", i, i, i);
        printf("    {\"%s\", %d, %d, %d, {%d, %d, %d, %d, %d}, %d, %d, %d, %u, %u, emu_flash_%zu::attn_fwd, "
               "emu_flash_%zu::attn_bwd_pre, emu_flash_%zu::attn_bwd_dkdv, emu_flash_%zu::attn_bwd_dq_convert, %s, %u, %d, "
               "%s, %u},\n",
               cfgs[i].what, hd, cfgs[i].group, cfgs[i].T, cfgs[i].p.window, cfgs[i].p.global, cfgs[i].p.stride,
               cfgs[i].p.dilation, cfgs[i].p.block, attn_fwd_warps_(hd), attn_bwd_bn_(hd), attn_pre_tpr_(hd),
               attn_fwd_smem_(hd), attn_bwd_smem_(hd), i, i, i, i, wg, attn_wfwd_smem_(0, hd), 64 * ATTN_WFWD_WG, wb,
               attn_wbwd_smem_(2, 0, hd));
    }
    printf("};\n");
    return 0;
}
