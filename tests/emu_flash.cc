/* emu_flash.cc - attn/dense.cu.h's flash attention kernels (ATTN_KERNELS_SRC, mma.sync: the
   forward attn_fwd, and the backward's attn_bwd_pre, attn_bwd_dkdv with the fixed-order dQ
   (DQ_DET) and attn_bwd_dq_convert) run on the CPU emulation of tests/emu_cuda_cxx.h, launched
   as attn/dense.cu.h's host code launches them, against causal softmax attention under each
   configuration's window or sparse pattern in double, on the same bf16 inputs. It proves
   nothing about timing, and a race the barriers happen to order may still hide;
   tests/gpu_attn_check.c on the device is the real test. At head dims up to 128 it also runs
   Hopper's forward (ATTN_WGMMA_SRC's attn_fwd_wg, its wgmma emulated: emu_cuda_cxx.h's
   emu_wgmma) and backward (attn_bwd_pre_wg, attn_bwd_dkdv_wg with the fixed-order bulk dQ
   adds, attn_bwd_dq_convert_wg; at hd 72 and 128 also with the order-dependent red.v4 dQ adds
   of WB_DQ_BULK 3), against the same reference; then those
   kernels built with SELMASK (DSA's dense tiles under a selection bitmask, groups 1 and 4)
   against attention over a random selection.

   make tests/emu_flash && ./tests/emu_flash      (also in make emucheck)
   Configurations (tests/emu_flash_dump.c, with the launchers' own option builders): hd 64 GQA
   2, hd 72 (80-wide tiles) MHA, hd 128 GQA 4 under a window, hd 256 (two warps share 16 keys),
   hd 40 (48-wide tiles) with a window, global tokens and a stride, hd 64 with a dilated window,
   hd 96 GQA 2, hd 32 under a window.
   Bounds: out, dq, dk, dv relative L2 2e-2 (bf16 outputs and tensor-core operands), lse max abs
   2e-3. Ends with "N passed, N failed". */
#include "emu_cuda_cxx.h"

typedef unsigned short emu_bf16;
struct EmuFlashCfg {
    const char *what;
    int hd, group, T;
    int pat[5]; /* window, global, stride, dilation, block (ops.h's OpsPattern) */
    int fwd_warps, bwd_bn, pre_tpr;
    unsigned fwd_smem, bwd_smem;
    void (*fwd)(emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *, int, int, float);
    void (*pre)(float *, float *, const emu_bf16 *, const emu_bf16 *, int, int, long, int *);
    void (*dkdv)(emu_bf16 *, emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *,
                 const emu_bf16 *, const float *, const float *, int, int, float, float, emu_bf16 *, int *);
    void (*conv)(emu_bf16 *, const float *, long);
    /* the Hopper forward (attn_fwd_wg; nullptr past head dim 128), its shared memory and the
       query rows of its block (two warpgroups of 64) */
    void (*wgfwd)(emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *, int, int, float);
    unsigned wg_smem;
    int wg_bm;
    /* the Hopper backward (nullptr past head dim 128): preprocess, dK/dV with the ordered
       16 KB bulk dQ adds (WB_DQ_BULK 2, DQ_DET), convert; and the dK/dV kernel's shared memory */
    void (*wgpre)(float *, float *, const emu_bf16 *, const emu_bf16 *, int, int, long, int *);
    void (*wgdkdv)(emu_bf16 *, emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *,
                   const emu_bf16 *, const float *, const float *, int, int, float, float, emu_bf16 *, int *);
    void (*wgconv)(emu_bf16 *, const float *, int, int, long);
    unsigned wgbwd_smem;
};
/* the Hopper backward with the order-dependent dQ (WB_DQ_BULK 3) at a configuration (index into
   emu_flash_cfgs) whose tiles are two 64-column halves wide */
struct EmuWg3Cfg {
    int cfg;
    void (*pre)(float *, float *, const emu_bf16 *, const emu_bf16 *, int, int, long, int *);
    void (*dkdv)(emu_bf16 *, emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *,
                 const emu_bf16 *, const float *, const float *, int, int, float, float, emu_bf16 *, int *);
    void (*conv)(emu_bf16 *, const float *, int, int, long);
};
/* DSA's dense tiles under a selection bitmask (SELMASK, head dim 64): group, the forward's and
   the backward's shared memory, the kernels (each taking the mask last) */
struct EmuSelCfg {
    int group;
    unsigned fwd_smem, bwd_smem;
    void (*fwd)(emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *, int, int, float,
                const unsigned *);
    void (*pre)(float *, float *, const emu_bf16 *, const emu_bf16 *, int, int, long, int *);
    void (*dkdv)(emu_bf16 *, emu_bf16 *, float *, const emu_bf16 *, const emu_bf16 *, const emu_bf16 *,
                 const emu_bf16 *, const float *, const float *, int, int, float, float, emu_bf16 *, int *,
                 const unsigned *);
    void (*conv)(emu_bf16 *, const float *, int, int, long);
};
#include "emu_flash_kernels.inc"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static double ur() { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr() { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static int np_, nf_;
static void report(bool ok, const char *what, double err, double bound) {
    printf("%s %-72s %.3e (bound %.1e)\n", ok ? "PASS" : "FAIL", what, err, bound);
    ok ? np_++ : nf_++;
}
static double rel_l2(const std::vector<double> &ref, const std::vector<emu_bf16> &got) {
    double n = 0, d = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        const double x = bf2f(got[i]);
        n += (x - ref[i]) * (x - ref[i]);
        d += ref[i] * ref[i];
    }
    return sqrt(n / (d > 0 ? d : 1));
}

/* ops.h's mask: query t sees key s (causal; a window W > 0 and the pattern's extra keys) */
static bool visible(const int pat[5], int t, int s) {
    const long d = (long)t - s, W = pat[0], pb = pat[4] > 0 ? pat[4] : 128;
    if (s < 0 || d < 0) return false;
    if (W <= 0 || d < W) return true;
    if (s < pat[1]) return true;
    if (pat[2] > 0 && s % pat[2] >= pat[2] - pb) return true;
    if (pat[3] >= 2 && d < W * pat[3] && (s / pb) % pat[3] == pat[3] - 1) return true;
    return false;
}

/* q, k, v and dout of N tokens, H query heads on KV kv heads: N(0, 1) rounded to bf16 */
struct Inputs { std::vector<emu_bf16> q, k, v, dout; };
static Inputs make_inputs(int N, int H, int KV, int hd) {
    Inputs in{std::vector<emu_bf16>((size_t)N * H * hd), std::vector<emu_bf16>((size_t)N * KV * hd),
              std::vector<emu_bf16>((size_t)N * KV * hd), std::vector<emu_bf16>((size_t)N * H * hd)};
    for (auto *x : {&in.q, &in.k, &in.v, &in.dout})
        for (auto &e : *x) e = f2bf((float)nr());
    return in;
}

/* attention in double on the bf16 inputs, query t of sequence b seeing key s where vis(b, t, s)
   (never s > t): out, lse and the backward from the bf16-rounded output */
struct Ref { std::vector<double> o, lse, dq, dk, dv; };
static Ref reference(const std::vector<emu_bf16> &q, const std::vector<emu_bf16> &k, const std::vector<emu_bf16> &v,
                     const std::vector<emu_bf16> &dout, int B, int T, int H, int KV, int hd,
                     const std::function<bool(int, int, int)> &vis) {
    const int group = H / KV;
    const double scale = 1.0 / sqrt((double)hd);
    Ref r{std::vector<double>(q.size(), 0), std::vector<double>((size_t)B * H * T), std::vector<double>(q.size(), 0),
          std::vector<double>(k.size(), 0), std::vector<double>(v.size(), 0)};
    std::vector<double> p(T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const size_t qo = (((size_t)b * T + t) * H + h) * hd;
                const int kvh = h / group;
                double m = -1e300;
                for (int s = 0; s <= t; s++) {
                    if (!vis(b, t, s)) continue;
                    const size_t ko = (((size_t)b * T + s) * KV + kvh) * hd;
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += (double)bf2f(q[qo + e]) * bf2f(k[ko + e]);
                    p[s] = d * scale;
                    m = fmax(m, p[s]);
                }
                double sum = 0;
                for (int s = 0; s <= t; s++) sum += vis(b, t, s) ? exp(p[s] - m) : 0;
                r.lse[((size_t)b * H + h) * T + t] = m + log(sum);
                for (int s = 0; s <= t; s++) {
                    p[s] = vis(b, t, s) ? exp(p[s] - m) / sum : 0;
                    const size_t ko = (((size_t)b * T + s) * KV + kvh) * hd;
                    for (int e = 0; e < hd; e++) r.o[qo + e] += p[s] * bf2f(v[ko + e]);
                }
                double D = 0; /* from the bf16 output, as the kernels read it */
                for (int e = 0; e < hd; e++) D += (double)bf2f(dout[qo + e]) * bf2f(f2bf((float)r.o[qo + e]));
                for (int s = 0; s <= t; s++) {
                    if (p[s] == 0) continue;
                    const size_t ko = (((size_t)b * T + s) * KV + kvh) * hd;
                    double dp = 0;
                    for (int e = 0; e < hd; e++) dp += (double)bf2f(dout[qo + e]) * bf2f(v[ko + e]);
                    const double ds = p[s] * (dp - D) * scale;
                    for (int e = 0; e < hd; e++) {
                        r.dq[qo + e] += ds * bf2f(k[ko + e]);
                        r.dk[ko + e] += ds * bf2f(q[qo + e]);
                        r.dv[ko + e] += p[s] * bf2f(dout[qo + e]);
                    }
                }
            }
    return r;
}

/* dq, dk, dv against the reference, relative L2 2e-2, one report each named "<who> <tensor>" */
static void report_grads(const char *who, const Ref &r, const std::vector<emu_bf16> &dq, const std::vector<emu_bf16> &dk,
                         const std::vector<emu_bf16> &dv) {
    const struct { const char *name; const std::vector<double> *ref; const std::vector<emu_bf16> *got; } g[] = {
        {"dq", &r.dq, &dq}, {"dk", &r.dk, &dk}, {"dv", &r.dv, &dv}};
    for (const auto &x : g) {
        char what[200];
        snprintf(what, sizeof what, "%s %s", who, x.name);
        const double e = rel_l2(*x.ref, *x.got);
        report(e <= 2e-2, what, e, 2e-2);
    }
}

static void run_cfg(const EmuFlashCfg &c, int B, int H) {
    const int hd = c.hd, T = c.T, KV = H / c.group, N = B * T;
    printf("case %s: B %d T %d H %d KV %d\n", c.what, B, T, H, KV);
    Inputs in = make_inputs(N, H, KV, hd);
    const std::vector<emu_bf16> &q = in.q, &k = in.k, &v = in.v, &dout = in.dout;
    const double scale = 1.0 / sqrt((double)hd);
    Ref ref = reference(q, k, v, dout, B, T, H, KV, hd, [&](int, int t, int s) { return visible(c.pat, t, s); });
    const std::vector<double> &o_ref = ref.o, &lse_ref = ref.lse;
    /* the forward, as attn_forward_ launches it */
    std::vector<emu_bf16> out(q.size());
    std::vector<float> lse(lse_ref.size());
    const float fscale = (float)scale, scale_log2 = (float)(1.4426950408889634 * scale);
    const unsigned fbm = 16 * c.fwd_warps;
    emu_launch(B * H, (T + fbm - 1) / fbm, 1, 32 * c.fwd_warps,
               [&] { c.fwd(out.data(), lse.data(), q.data(), k.data(), v.data(), T, H, scale_log2); });
    char what[160];
    snprintf(what, sizeof what, "%s: forward out", c.what);
    double e = rel_l2(o_ref, out);
    report(e <= 2e-2, what, e, 2e-2);
    e = 0;
    for (size_t i = 0; i < lse.size(); i++) e = fmax(e, fabs(lse[i] - lse_ref[i]));
    snprintf(what, sizeof what, "%s: forward lse (max abs)", c.what);
    report(e <= 2e-3, what, e, 2e-3);
    if (c.wgfwd) { /* the Hopper forward, as attn_forward_ launches it: 256 threads, 128 rows a block */
        std::vector<emu_bf16> wout(q.size(), 0xFFFF); /* NaN: every element must be written */
        std::vector<float> wlse(lse_ref.size(), NAN);
        if (c.wg_smem > sizeof emu_smem) { fprintf(stderr, "emu_flash: %u bytes of shared memory\n", c.wg_smem); exit(1); }
        emu_launch(B * H, (T + c.wg_bm - 1) / c.wg_bm, 1, 2 * c.wg_bm,
                   [&] { c.wgfwd(wout.data(), wlse.data(), q.data(), k.data(), v.data(), T, H, scale_log2); });
        snprintf(what, sizeof what, "%s: Hopper forward out", c.what);
        e = rel_l2(o_ref, wout);
        report(e <= 2e-2, what, e, 2e-2);
        e = 0;
        for (size_t i = 0; i < wlse.size(); i++) e = fmax(e, fabs(wlse[i] - lse_ref[i])); /* NaN: fmax keeps e */
        bool finite = true;
        for (float x : wlse) finite &= std::isfinite(x);
        snprintf(what, sizeof what, "%s: Hopper forward lse (max abs)", c.what);
        report(finite && e <= 2e-3, what, finite ? e : NAN, 2e-3);
    }
    /* the backward, as attn_backward_ launches it (the fixed-order dQ) */
    const long rows = (long)B * T * H;
    const size_t n_d = rows, n_acc = (size_t)B * H * ((T + 63) / 64 * 64) * hd, n_cnt = (size_t)B * H * ((T + 31) / 32);
    std::vector<float> scratch((n_d + 63) / 64 * 64 + n_acc + n_cnt + 64, 12345.f); /* the kernels must zero what they use */
    float *Dsum = scratch.data(), *dqacc = Dsum + (n_d + 63) / 64 * 64;
    int *dqcnt = (int *)(dqacc + n_acc);
    std::vector<emu_bf16> dq(q.size()), dk(k.size()), dv(v.size());
    const size_t threads = (size_t)rows * c.pre_tpr;
    emu_launch((unsigned)((threads + 255) / 256), 1, 1, 256,
               [&] { c.pre(Dsum, dqacc, out.data(), dout.data(), T, H, rows, dqcnt); });
    emu_launch(B * KV, (T + c.bwd_bn - 1) / c.bwd_bn, 1, 256, [&] {
        c.dkdv(dk.data(), dv.data(), dqacc, q.data(), k.data(), v.data(), dout.data(), lse.data(), Dsum, T, H, fscale,
               scale_log2, dq.data(), dqcnt);
    });
    const long n8 = rows * (hd / 8);
    emu_launch((unsigned)((n8 + 255) / 256), 1, 1, 256, [&] { c.conv(dq.data(), dqacc, n8); });
    snprintf(what, sizeof what, "%s: backward", c.what);
    report_grads(what, ref, dq, dk, dv);
    /* the Hopper backward, as attn_backward_ launches it (its tiled dQ accumulator) */
    auto hopper_bwd = [&](decltype(c.wgpre) wgpre, decltype(c.wgdkdv) wgdkdv, decltype(c.wgconv) wgconv, const char *label) {
        if (c.wgbwd_smem > sizeof emu_smem) { fprintf(stderr, "emu_flash: %u bytes of shared memory\n", c.wgbwd_smem); exit(1); }
        /* the tiled accumulator: (hd + 63) / 64 halves of 64 columns */
        const size_t wn_acc = (size_t)B * H * ((T + 63) / 64 * 64) * ((hd + 63) / 64 * 64);
        scratch.assign((n_d + 63) / 64 * 64 + wn_acc + n_cnt + 64, 12345.f);
        Dsum = scratch.data(), dqacc = Dsum + (n_d + 63) / 64 * 64, dqcnt = (int *)(dqacc + wn_acc);
        std::vector<emu_bf16> wdq(q.size(), 0xFFFF), wdk(k.size(), 0xFFFF), wdv(v.size(), 0xFFFF);
        const size_t wthreads = (size_t)rows * 8; /* 8 a row, every column half */
        emu_launch((unsigned)((wthreads + 255) / 256), 1, 1, 256,
                   [&] { wgpre(Dsum, dqacc, out.data(), dout.data(), T, H, rows, dqcnt); });
        emu_launch(B * KV, (T + 127) / 128, 1, 256, [&] {
            wgdkdv(wdk.data(), wdv.data(), dqacc, q.data(), k.data(), v.data(), dout.data(), lse.data(), Dsum, T, H,
                   fscale, scale_log2, wdq.data(), dqcnt);
        });
        emu_launch((unsigned)((n8 + 255) / 256), 1, 1, 256, [&] { wgconv(wdq.data(), dqacc, T, H, n8); });
        snprintf(what, sizeof what, "%s: %s", c.what, label);
        report_grads(what, ref, wdq, wdk, wdv);
    };
    if (c.wgdkdv) hopper_bwd(c.wgpre, c.wgdkdv, c.wgconv, "Hopper backward");
    for (const EmuWg3Cfg &w3 : emu_wg3_cfgs) /* and with the order-dependent dQ, where it has its own build */
        if (&emu_flash_cfgs[w3.cfg] == &c) hopper_bwd(w3.pre, w3.dkdv, w3.conv, "Hopper backward, WB_DQ_BULK 3");
}

/* DSA's dense tiles: the Hopper forward and backward under a random selection bitmask (each
   query its own key and a quarter of the earlier ones), as gpu_attention_select_* launch them */
static void run_sel(const EmuSelCfg &c, int B, int T, int H) {
    const int hd = 64, KV = H / c.group, N = B * T, W = (T + 127) / 128 * 4;
    printf("case selection mask, group %d: B %d T %d H %d KV %d\n", c.group, B, T, H, KV);
    Inputs in = make_inputs(N, H, KV, hd);
    const std::vector<emu_bf16> &q = in.q, &k = in.k, &v = in.v, &dout = in.dout;
    std::vector<unsigned> mask((size_t)N * W, 0);
    for (int n = 0; n < N; n++)
        for (int s = 0; s <= n % T; s++)
            if (s == n % T || ur() < 0.25) mask[(size_t)n * W + s / 32] |= 1u << (s % 32);
    Ref ref = reference(q, k, v, dout, B, T, H, KV, hd,
                        [&](int b, int t, int s) { return (mask[((size_t)b * T + t) * W + s / 32] >> (s % 32)) & 1; });
    const float scale = 1.0f / 8, scale_log2 = (float)(1.4426950408889634 / 8);
    std::vector<emu_bf16> out(q.size(), 0xFFFF), dq(q.size(), 0xFFFF), dk(k.size(), 0xFFFF), dv(v.size(), 0xFFFF);
    std::vector<float> lse(ref.lse.size(), NAN);
    emu_launch(B * H, (T + 127) / 128, 1, 256,
               [&] { c.fwd(out.data(), lse.data(), q.data(), k.data(), v.data(), T, H, scale_log2, mask.data()); });
    const long rows = (long)N * H, n8 = rows * (hd / 8);
    const size_t n_acc = (size_t)B * H * ((T + 63) / 64 * 64) * hd, n_cnt = (size_t)B * H * ((T + 31) / 32);
    std::vector<float> scratch((rows + 63) / 64 * 64 + n_acc + n_cnt + 64, 12345.f);
    float *Dsum = scratch.data(), *dqacc = Dsum + (rows + 63) / 64 * 64;
    int *dqcnt = (int *)(dqacc + n_acc);
    emu_launch((unsigned)((n8 + 255) / 256), 1, 1, 256, [&] { c.pre(Dsum, dqacc, out.data(), dout.data(), T, H, rows, dqcnt); });
    emu_launch(B * KV, (T + 127) / 128, 1, 256, [&] {
        c.dkdv(dk.data(), dv.data(), dqacc, q.data(), k.data(), v.data(), dout.data(), lse.data(), Dsum, T, H, scale,
               scale_log2, dq.data(), dqcnt, mask.data());
    });
    emu_launch((unsigned)((n8 + 255) / 256), 1, 1, 256, [&] { c.conv(dq.data(), dqacc, T, H, n8); });
    char what[160];
    double e = 0;
    bool finite = true;
    for (size_t i = 0; i < lse.size(); i++) { e = fmax(e, fabs(lse[i] - ref.lse[i])); finite &= std::isfinite(lse[i]); }
    snprintf(what, sizeof what, "selection mask, group %d: lse (max abs)", c.group);
    report(finite && e <= 2e-3, what, finite ? e : NAN, 2e-3);
    snprintf(what, sizeof what, "selection mask, group %d: out", c.group);
    e = rel_l2(ref.o, out);
    report(e <= 2e-2, what, e, 2e-2);
    snprintf(what, sizeof what, "selection mask, group %d:", c.group);
    report_grads(what, ref, dq, dk, dv);
}

int main() {
    const int heads[] = {4, 2, 4, 2, 4, 2, 4, 2};
    for (size_t i = 0; i < sizeof emu_flash_cfgs / sizeof *emu_flash_cfgs; i++)
        run_cfg(emu_flash_cfgs[i], 1 + (int)(i % 2), heads[i % 8]);
    for (const EmuSelCfg &c : emu_sel_cfgs) run_sel(c, 2, 150, 4);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
