/* emu_sparse.cc - attn/dsa.cu.h's sparse attention kernels (SPARSE_PART 1: sparse_fwd,
   sparse_bwd, sparse_kv_reduce, sparse_probs) run on the CPU: an emulation of the CUDA execution
   model (one block at a time, its 128 threads as pthreads; __syncthreads and __syncwarp as
   barriers; shuffles, ballots, ldmatrix and mma.sync m16n8k16 as warp-collective functions
   following PTX's fragment layouts; cp.async as an immediate copy; float atomics under a
   mutex), against softmax(q k^T / sqrt(hd)) v over each token's selected slots in double, on
   the same bf16 inputs. It proves nothing about timing, and a race the barriers happen to order
   (or that cp.async's immediate copies hide) may still hide; tests/gpu_sparse_check.c on the
   device is the real test. C++, because the kernel source uses templates.

   make tests/emu_sparse && ./tests/emu_sparse      (also in make emucheck)
   The source is included once per configuration, each in a namespace of its own with the
   launchers' options (tests/emu_sparse_dump.c): hd 64 (4 heads on one kv head), hd 72 (tiles of
   80: zero columns), hd 256 (the widest the kernels compile for; 2 heads on one kv head) and hd
   200 (tiles of 208, MHA: a head a block). Per configuration: the forward (out, lse), the backward's two organizations (mode 1:
   dK, dV by float atomics, psum by stores when one block holds all heads; the deterministic
   one: each pair's rows staged, then sparse_kv_reduce adds them key-major) and sparse_probs.
   Bounds: out, dq, dk, dv relative L2 2e-2 (bf16 outputs, bf16 tensor-core operands); lse, psum
   max abs 2e-3. Ends with "N passed, N failed". */
#include "emu_cuda_cxx.h"

/* one configuration: its name, head dim, tile width, head block, group (H / KV), the case's B, T,
   H and k, and its kernels as plain function pointers (the namespaces' own) */
typedef unsigned short bf16; /* as the common header's (a repeated typedef is the same type) */
struct EmuSparseCfg {
    const char *what;
    int hd, hdp, hb, group, B, T, H, K;
    void (*fwd)(bf16 *, float *, const bf16 *, const bf16 *, const bf16 *, const int *, int, int, int, float);
    void (*bwd)(bf16 *, float *, float *, float *, const bf16 *, const bf16 *, const float *, const bf16 *, const bf16 *,
                const bf16 *, const int *, int, int, int, float, float, float, int, float *, long, int, float *, float *);
    void (*reduce)(float *, float *, const float *, const float *, const int *, int, int, long, long, int, int, float *);
    void (*probs)(float *, const float *, const bf16 *, const bf16 *, const int *, int, int, int, float, float, int, int);
};

/* kernels.cu.h's common header (bf16, pack2, load8, warp_sum, ...), then the kernels once per
   configuration with the launchers' own options, and the table emu_sparse_cfgs
   (tests/emu_sparse_dump.c) */
#include "emu_sparse_kernels.inc"

/* ---------------------------------------------------------------- the test */
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static double ur() { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr() { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static int np_, nf_;
static void report(bool ok, const char *what, double err, double bound) {
    printf("%s %-64s %.3e (bound %.1e)\n", ok ? "PASS" : "FAIL", what, err, bound);
    ok ? np_++ : nf_++;
}
static double rel_l2(const std::vector<double> &ref, const std::vector<double> &got) {
    double n = 0, d = 0;
    for (size_t i = 0; i < ref.size(); i++) { n += (got[i] - ref[i]) * (got[i] - ref[i]); d += ref[i] * ref[i]; }
    return sqrt(n / (d > 0 ? d : 1));
}
static double max_abs(const std::vector<double> &ref, const std::vector<double> &got) {
    double m = 0;
    for (size_t i = 0; i < ref.size(); i++) m = fmax(m, fabs(got[i] - ref[i]));
    return m;
}
static std::vector<double> from_bf(const std::vector<bf16> &x) {
    std::vector<double> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = bf2f(x[i]);
    return r;
}
static std::vector<double> from_f(const std::vector<float> &x) { return std::vector<double>(x.begin(), x.end()); }

/* B sequences of T tokens, H query heads on KV kv heads, K slots a token (some -1, ascending
   positions <= t first, as the select writes them) */
static void run_case(const EmuSparseCfg &kr) {
    const int B = kr.B, T = kr.T, H = kr.H, K = kr.K;
    const int hd = kr.hd, KV = H / kr.group, HB = kr.hb, NY = H / HB, N = B * T;
    printf("case hd %d (tiles %d) B %d T %d H %d KV %d k %d\n", hd, kr.hdp, B, T, H, KV, K);
    std::vector<bf16> q((size_t)N * H * hd), k((size_t)N * KV * hd), v((size_t)N * KV * hd), dout((size_t)N * H * hd);
    for (auto &x : q) x = f2bf((float)nr());
    for (auto &x : k) x = f2bf((float)nr());
    for (auto &x : v) x = f2bf((float)nr());
    for (auto &x : dout) x = f2bf((float)nr());
    std::vector<int> idx((size_t)N * K, -1);
    for (int n = 0; n < N; n++) {
        const int t = n % T;
        int c = 0;
        for (int s = 0; s <= t && c < K; s++)  /* a random subset of the causal keys, ascending */
            if (t - s < K / 2 || ur() < 0.5 || s == t) idx[(size_t)n * K + c++] = s;
    }
    /* the reference, in double on the bf16 inputs */
    const double scale = 1.0 / sqrt((double)hd);
    std::vector<double> o_ref((size_t)N * H * hd, 0), lse_ref((size_t)B * H * T, 0), dq_ref(q.size(), 0),
        dk_ref(k.size(), 0), dv_ref(v.size(), 0), ps_ref((size_t)N * K, 0);
    std::vector<double> p(K), dp(K);
    for (int n = 0; n < N; n++) {
        const int b = n / T, t = n % T;
        for (int h = 0; h < H; h++) {
            const int kvh = h / kr.group;
            const bf16 *qr = &q[((size_t)n * H + h) * hd];
            double m = -1e300;
            for (int j = 0; j < K; j++) {
                const int s = idx[(size_t)n * K + j];
                if (s < 0) { p[j] = -1e300; continue; }
                const bf16 *kr_ = &k[(((size_t)b * T + s) * KV + kvh) * hd];
                double d = 0;
                for (int c = 0; c < hd; c++) d += (double)bf2f(qr[c]) * bf2f(kr_[c]);
                p[j] = d * scale;
                m = fmax(m, p[j]);
            }
            double sum = 0;
            for (int j = 0; j < K; j++) sum += idx[(size_t)n * K + j] >= 0 ? exp(p[j] - m) : 0;
            lse_ref[((size_t)b * H + h) * T + t] = m + log(sum);
            double Dsum = 0;
            for (int j = 0; j < K; j++) {
                const int s = idx[(size_t)n * K + j];
                p[j] = s >= 0 ? exp(p[j] - m) / sum : 0;
                if (s < 0) continue;
                ps_ref[(size_t)n * K + j] += p[j] / H;
                const bf16 *vr = &v[(((size_t)b * T + s) * KV + kvh) * hd];
                for (int c = 0; c < hd; c++) o_ref[((size_t)n * H + h) * hd + c] += p[j] * bf2f(vr[c]);
            }
            /* the backward from the bf16-rounded output, as the kernels read it */
            const bf16 *g = &dout[((size_t)n * H + h) * hd];
            for (int c = 0; c < hd; c++) Dsum += (double)bf2f(g[c]) * bf2f(f2bf((float)o_ref[((size_t)n * H + h) * hd + c]));
            for (int j = 0; j < K; j++) {
                const int s = idx[(size_t)n * K + j];
                if (s < 0) continue;
                const size_t ko = (((size_t)b * T + s) * KV + kvh) * hd;
                double d = 0;
                for (int c = 0; c < hd; c++) d += (double)bf2f(g[c]) * bf2f(v[ko + c]);
                const double ds = p[j] * (d - Dsum) * scale;
                for (int c = 0; c < hd; c++) {
                    dq_ref[((size_t)n * H + h) * hd + c] += ds * bf2f(k[ko + c]);
                    dk_ref[ko + c] += ds * bf2f(qr[c]);
                    dv_ref[ko + c] += p[j] * bf2f(g[c]);
                }
            }
        }
    }
    /* the forward */
    std::vector<bf16> out(q.size());
    std::vector<float> lse(lse_ref.size());
    const float scale_log2 = (float)(1.4426950408889634 * scale), fscale = (float)scale, invH = 1.0f / H;
    emu_launch(N, NY, 1, 128, [&] { kr.fwd(out.data(), lse.data(), q.data(), k.data(), v.data(), idx.data(), T, H, K, scale_log2); });
    char what[96];
    snprintf(what, sizeof what, "hd %d: forward out (relative L2)", hd);
    double e = rel_l2(o_ref, from_bf(out));
    report(e <= 2e-2, what, e, 2e-2);
    snprintf(what, sizeof what, "hd %d: forward lse (max abs)", hd);
    e = max_abs(lse_ref, from_f(lse));
    report(e <= 2e-3, what, e, 2e-3);
    /* the backward, mode 1: dK, dV by float atomics; psum by stores when one block holds all heads */
    for (int det = 0; det < 2; det++) {
        std::vector<bf16> dq(q.size());
        std::vector<float> dkacc(k.size(), 0.f), dvacc(v.size(), 0.f), psum((size_t)N * K, 0.f);
        if (!det) {
            int flags = NY == 1 ? 1 : 0;
            emu_launch(N, NY, 1, 128, [&] {
                kr.bwd(dq.data(), dkacc.data(), dvacc.data(), psum.data(), dout.data(), out.data(), lse.data(), q.data(),
                       k.data(), v.data(), idx.data(), T, H, K, fscale, scale_log2, invH, flags, NULL, 0, 0, NULL, NULL);
            });
        } else { /* the deterministic organization: one head block at a time, each pair's rows staged, then
                    sparse_kv_reduce adds them key-major (one chunk: every token) */
            std::vector<float> stk((size_t)N * K * hd), stv((size_t)N * K * hd);
            const int flags = 4 | 16 | (NY == 1 ? 1 : 32);
            for (int y0 = 0; y0 < NY; y0++) {
                const int kvh = y0 * HB / kr.group;
                emu_launch(N, 1, 1, 128, [&] {
                    kr.bwd(dq.data(), dkacc.data(), dvacc.data(), psum.data(), dout.data(), out.data(), lse.data(),
                           q.data(), k.data(), v.data(), idx.data(), T, H, K, fscale, scale_log2, invH, flags, NULL, 0,
                           y0, stk.data(), stv.data());
                });
                emu_launch((T + 63) / 64, B, 1, 256, [&] {
                    kr.reduce(dkacc.data(), dvacc.data(), stk.data(), stv.data(), idx.data(), T, K, 0, N, KV, kvh, NULL);
                });
            }
        }
        const char *how = det ? "staged + key-major reduce" : "mode 1, atomics";
        snprintf(what, sizeof what, "hd %d: backward dq (%s)", hd, how);
        e = rel_l2(dq_ref, from_bf(dq));
        report(e <= 2e-2, what, e, 2e-2);
        snprintf(what, sizeof what, "hd %d: backward dk (%s)", hd, how);
        e = rel_l2(dk_ref, from_f(dkacc));
        report(e <= 2e-2, what, e, 2e-2);
        snprintf(what, sizeof what, "hd %d: backward dv (%s)", hd, how);
        e = rel_l2(dv_ref, from_f(dvacc));
        report(e <= 2e-2, what, e, 2e-2);
        snprintf(what, sizeof what, "hd %d: backward psum (%s)", hd, how);
        e = max_abs(ps_ref, from_f(psum));
        report(e <= 2e-3, what, e, 2e-3);
    }
    /* sparse_probs: the KL target alone (head blocks one at a time, plain adds) */
    std::vector<float> pr((size_t)N * K, 0.f);
    for (int y0 = 0; y0 < NY; y0++)
        emu_launch(N, 1, 1, 128, [&] {
            kr.probs(pr.data(), lse.data(), q.data(), k.data(), idx.data(), T, H, K, scale_log2, invH, y0, 1);
        });
    snprintf(what, sizeof what, "hd %d: sparse_probs (max abs)", hd);
    e = max_abs(ps_ref, from_f(pr));
    report(e <= 2e-3, what, e, 2e-3);
}

int main() {
    for (const EmuSparseCfg &c : emu_sparse_cfgs) run_case(c);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
