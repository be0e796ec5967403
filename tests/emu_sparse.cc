/* emu_sparse.cc - attn/dsa.cu.h's sparse attention kernels (SPARSE_PART 1: sparse_fwd,
   sparse_bwd, sparse_kv_reduce, sparse_probs) and the selection's (indexer scores, top-k, the
   mask) run on the CPU: an emulation of the CUDA execution
   model (one block at a time, its 128 threads as fibers; __syncthreads and __syncwarp as
   barriers; shuffles, ballots, ldmatrix and mma.sync m16n8k16 as warp-collective functions
   following PTX's fragment layouts; cp.async as an immediate copy; float atomics plain, one
   fiber running at a time), against softmax(q k^T / sqrt(hd)) v over each token's selected slots in double, on
   the same bf16 inputs. It proves nothing about timing, and a race the barriers happen to order
   (or that cp.async's immediate copies hide) may still hide; tests/gpu_sparse_check.c on the
   device is the real test. C++, because the kernel source uses templates.

   make tests/emu_sparse && ./tests/emu_sparse      (also in make emucheck)
   The source is included once per configuration, each in a namespace of its own with the
   launchers' options (tests/emu_sparse_dump.c): hd 64 (4 heads on one kv head), hd 72 (tiles of
   80: zero columns), hd 256 (the widest the kernels compile for; 2 heads on one kv head) and hd
   200 (tiles of 208, MHA: a head a block). Per configuration: the forward (out, lse), the backward's two organizations (mode 1:
   dK, dV by float atomics, psum by stores when one block holds all heads; the deterministic
   one: each pair's rows staged, then sparse_kv_reduce adds them key-major; each run again with
   its blocks in another order: the deterministic dK the same bits, the atomics' moved) and
   sparse_probs.
   Then the selection (SPARSE_PART 0 and 2): the indexer's scores (idx_scores_bf16, idx_scores_f32
   at HI x dI 4 x 64, 1 x 32, 2 x 128, after fill_f32's -inf, whole and as a chunk of rows)
   against sum_j w_j relu(qI_j . kI) in double; the top-k (idx_topk cached and not, with either
   aggregation, and idx_topk_warp, whole and as a chunk) slot for slot against the CPU's rule on
   rows crowded with ties (-0 and +0, values an ulp apart); idx_adapt (adaptive k) on that
   selection against attn/dsa.h's rule; idx_prep's quantizers (fp16, fp8, int8, int4) bit for bit
   against attn/dsa.h's; the dI 8 / 16 path's bf16 padding to 32 columns and idx_unpad's cut
   back (the rows returned bit for bit); sparse_mask's words and prefix counts; the indexer's KL
   (idx_kl, each dkI organization, with idx_dk_reduce and key_combine) against attn/dsa.h's
   loss and gradients in double.
   Bounds: out, dq, dk, dv relative L2 2e-2 (bf16 outputs, bf16 tensor-core operands); lse, psum
   max abs 2e-3; scores max abs 1e-5 of the largest, -inf above the diagonal; top-k and the mask
   exact. Ends with "N passed, N failed". */
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

/* an indexer shape of the score kernels (SPARSE_PART 2): HI heads of dI, the bf16 and fp32
   kernels' shared memory (sparse_scores_smem_) and the kernels */
struct EmuIxCfg {
    int HI, dI;
    unsigned smem_bf16, smem_f32;
    void (*bf16k)(float *, const bf16 *, const bf16 *, const bf16 *, int, int, int, int);
    void (*f32k)(float *, const float *, const float *, const float *, int, int, int, int);
    /* the indexer KL (idx_kl) and its key-major dkI reduction; idx_kl's shared memory for the
       KL test's topk without and with the a_j cache (sparse_kl_smem_) */
    void (*kl)(float *, bf16 *, float *, bf16 *, const float *, const bf16 *, const bf16 *, const bf16 *, const int *,
               int, int, float, int, long, float *);
    void (*dk_reduce)(float *, const float *, const int *, int, int, long, long, float *);
    unsigned kl_smem[2];
};
/* the KL test's shape and key_reduce's launch for it: sequences nseq, splits ns, RKEYS keys a
   block of rk_threads (sparse_reduce_launch_) */
struct EmuKlShape { int B, T, K, nseq, ns, rkeys, rk_threads; };

/* kernels.cu.h's common header (bf16, pack2, load8, warp_sum, ...), then the kernels once per
   configuration with the launchers' own options, and the table emu_sparse_cfgs; the shared
   module (emu_sp0) and the score kernels with emu_ix_cfgs (tests/emu_sparse_dump.c) */
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
    /* the backward, mode 1: dK, dV by float atomics; psum by stores when one block holds all heads.
       Each organization twice, its blocks in two shuffled orders (emu_block_shuffle): the
       deterministic one must give the same bits, the atomics' dK must move */
    std::vector<float> first_dk[2];
    for (int det = 0, again = 0; det < 2; det += again, again ^= 1) {
        emu_block_shuffle = 1 + again;
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
        emu_block_shuffle = 0;
        const char *how = det ? "staged + key-major reduce" : "mode 1, atomics";
        if (again) {
            const bool same = memcmp(first_dk[det].data(), dkacc.data(), dkacc.size() * 4) == 0;
            snprintf(what, sizeof what, "hd %d: backward dk (%s) %s in another block order", hd, how,
                     det ? "the same bits" : "moved");
            report(det ? same : !same, what, 0, 0);
            continue;
        }
        first_dk[det] = dkacc;
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

/* ---------------------------------------------------------------- the selection */
/* the rows q0..q0+R-1 of sequences b0..b0+nb-1 into a chunk [(bi*R + t - q0) * T + s], as
   sparse_scores_launch_ launches them, after fill_f32's -inf (grid capped as the host does) */
template <typename E, typename K>
static std::vector<float> scores_chunk(K kern, unsigned smem, unsigned threads, const E *qI, const E *kI, const E *w,
                                       int T, int b0, int nb, int q0, int R) {
    std::vector<float> sc((size_t)nb * R * T);
    const unsigned long long n = sc.size();
    float ninf = -INFINITY, *p = sc.data();
    emu_launch((unsigned)std::min<unsigned long long>((n + 255) / 256, 16), 1, 1, 256, [&] { emu_sp0::fill_f32(p, ninf, n); });
    if (smem > sizeof emu_smem) { fprintf(stderr, "emu_sparse: %u bytes of shared memory\n", smem); exit(1); }
    emu_launch((unsigned)((R + 63) / 64), (unsigned)nb, 1, threads, [&] { kern(p, qI, kI, w, T, b0, q0, R); });
    return sc;
}

/* the indexer's score of one (query row, key) pair in double, sum_h w_h relu(q_h . k) (attn/dsa.h's
   sparse_index_score_), with a[h] = q_h . k when a is not NULL */
static double iscore_ref(const float *q, const float *k, const float *w, int HI, int DI, double *a) {
    double x = 0;
    for (int h = 0; h < HI; h++) {
        double d = 0;
        for (int e = 0; e < DI; e++) d += (double)q[h * DI + e] * k[e];
        if (a) a[h] = d;
        x += w[h] * fmax(d, 0.0);
    }
    return x;
}
static std::vector<float> to_f(const std::vector<bf16> &x) {
    std::vector<float> r(x.size());
    for (size_t i = 0; i < x.size(); i++) r[i] = bf2f(x[i]);
    return r;
}

/* idx_scores_bf16 and idx_scores_f32 against sum_j w_j relu(qI_j . kI) in double on the same
   (bf16) values: the causal entries within 1e-5 of the largest, the ones above the diagonal -inf;
   the whole batch, then a chunk (the second sequence, rows 64..T-1) */
static void run_scores(const EmuIxCfg &c) {
    const int B = 2, T = 150, HI = c.HI, DI = c.dI; /* T: 3 row blocks, a tail, odd for the stores */
    printf("case indexer scores HI %d dI %d: B %d T %d\n", HI, DI, B, T);
    std::vector<bf16> q((size_t)B * T * HI * DI), k((size_t)B * T * DI), w((size_t)B * T * HI);
    for (auto &x : q) x = f2bf((float)nr());
    for (auto &x : k) x = f2bf((float)nr());
    for (auto &x : w) x = f2bf((float)(2 * ur() - 1));
    const std::vector<float> qf = to_f(q), kf = to_f(k), wf = to_f(w);
    std::vector<double> ref((size_t)B * T * T, 0);
    double mx = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int s = 0; s <= t; s++) {
                const size_t n = (size_t)b * T + t;
                const double x = iscore_ref(&qf[n * HI * DI], &kf[((size_t)b * T + s) * DI], &wf[n * HI], HI, DI, nullptr);
                ref[n * T + s] = x;
                mx = fmax(mx, fabs(x));
            }
    for (int kind = 0; kind < 2; kind++)
        for (int chunk = 0; chunk < 2; chunk++) {
            const int b0 = chunk, nb = chunk ? 1 : B, q0 = chunk ? 64 : 0, R = chunk ? T - 64 : T;
            std::vector<float> sc = kind ? scores_chunk(c.f32k, c.smem_f32, 256, qf.data(), kf.data(), wf.data(), T, b0, nb, q0, R)
                                         : scores_chunk(c.bf16k, c.smem_bf16, 128, q.data(), k.data(), w.data(), T, b0, nb, q0, R);
            double e = 0;
            long above = 0;
            for (int bi = 0; bi < nb; bi++)
                for (int t = q0; t < q0 + R; t++)
                    for (int s = 0; s < T; s++) {
                        const float g = sc[((size_t)bi * R + t - q0) * T + s];
                        if (s > t) above += !(std::isinf(g) && g < 0);
                        else e = std::isfinite(g) ? fmax(e, fabs(g - ref[((size_t)(b0 + bi) * T + t) * T + s])) : INFINITY;
                    }
            char what[96];
            snprintf(what, sizeof what, "scores HI %d dI %d %s%s (max abs / max)", HI, DI, kind ? "fp32" : "bf16",
                     chunk ? ", a chunk" : "");
            report(e / mx <= 1e-5 && above == 0, what, e / mx, 1e-5);
            if (above) printf("  %ld entries above the diagonal not -inf\n", above);
        }
}

/* idx_kl, the indexer's KL over each token's selection, against attn/dsa.h's rule in double on
   the same bf16 values: loss_t = sum_j ph_j (log ph_j - (I_j - lse_I)) with ph = p renormalized
   over the used slots and I_j = sum_h w_h relu(qI_h . kI_j); its gradients through
   g_j = dloss (softmax_j(I) - ph_j): dw_h += g_j relu(a_hj), dqI_h += g_j w_h [a_hj > 0] kI_j,
   dkI_j += g_j w_h [a_hj > 0] qI_h. The backward with the order-dependent dkI adds (red.v4,
   a lane per slot with the a_j cache: the default) and the deterministic one: each pair's dkI
   row into a stage (flags 8), then idx_dk_reduce key-major and key_combine over the splits, as
   sparse_kl_backward_ launches them; each twice, the tokens' blocks in two shuffled orders
   (emu_block_shuffle): the deterministic dkI the same bits both times, the red.v4 one moved
   (the comparison sees a moving sum); with `all` also the forward alone and the backward's
   red.v2 (a warp per slot, no cache). */
static void run_kl(const EmuIxCfg &c, bool all) {
    const EmuKlShape &S = emu_kl_shape;
    const int B = S.B, T = S.T, K = S.K, HI = c.HI, DI = c.dI, N = B * T;
    const float dloss = 0.7f;
    printf("case indexer KL HI %d dI %d: B %d T %d k %d (dkI reduce: %d sequences, %d splits)\n", HI, DI, B, T, K,
           S.nseq, S.ns);
    std::vector<bf16> q((size_t)N * HI * DI), k((size_t)N * DI), w((size_t)N * HI);
    for (auto &x : q) x = f2bf((float)nr());
    for (auto &x : k) x = f2bf((float)nr());
    for (auto &x : w) x = f2bf((float)(2 * ur() - 0.5));
    std::vector<int> idx((size_t)N * K, -1);
    std::vector<float> p((size_t)N * K, 0.f);
    for (int n = 0; n < N; n++) {
        const int t = n % T;
        int cnt = 0;
        for (int s = 0; s <= t && cnt < K; s++)
            if (t - s < K / 3 || ur() < 0.3) {
                idx[(size_t)n * K + cnt] = s;
                p[(size_t)n * K + cnt++] = ur() < 0.1 ? 0.f : (float)ur();
            }
    }
    /* the reference */
    const std::vector<float> qf = to_f(q), kf = to_f(k), wf = to_f(w);
    std::vector<double> loss_ref(N), dq_ref(q.size(), 0), dk_ref(k.size(), 0), dw_ref(w.size(), 0);
    std::vector<double> I(K), ph(K), a((size_t)K * HI);
    for (int n = 0; n < N; n++) {
        const int b = n / T;
        double mx = -INFINITY, ps = 0;
        for (int j = 0; j < K; j++) {
            const int s = idx[(size_t)n * K + j];
            if (s < 0) continue;
            I[j] = iscore_ref(&qf[(size_t)n * HI * DI], &kf[((size_t)b * T + s) * DI], &wf[(size_t)n * HI], HI, DI,
                              &a[(size_t)j * HI]);
            mx = fmax(mx, I[j]);
            ps += p[(size_t)n * K + j];
        }
        double se = 0;
        for (int j = 0; j < K; j++) if (idx[(size_t)n * K + j] >= 0) se += exp(I[j] - mx);
        const double lse = mx + log(se);
        double l = 0;
        for (int j = 0; j < K; j++) {
            const int s = idx[(size_t)n * K + j];
            ph[j] = s < 0 || ps <= 0 ? 0 : p[(size_t)n * K + j] / ps;
            if (ph[j] > 0) l += ph[j] * (log(ph[j]) - (I[j] - lse));
            if (s < 0) continue;
            const double g = dloss * (exp(I[j] - lse) - ph[j]);
            for (int h = 0; h < HI; h++) {
                const double ah = a[(size_t)j * HI + h];
                if (ah <= 0) continue;
                dw_ref[(size_t)n * HI + h] += g * ah;
                const double cw = g * wf[(size_t)n * HI + h];
                for (int e = 0; e < DI; e++) {
                    dq_ref[((size_t)n * HI + h) * DI + e] += cw * kf[((size_t)b * T + s) * DI + e];
                    dk_ref[((size_t)b * T + s) * DI + e] += cw * qf[((size_t)n * HI + h) * DI + e];
                }
            }
        }
        loss_ref[n] = l;
    }
    char what[128];
    int Tv = T, Kv = K;
    if (all) { /* the forward alone: a warp per slot (flags 0) */
        std::vector<float> loss(N, NAN);
        float *lp = loss.data();
        emu_launch(N, 1, 1, 128, [&] {
            c.kl(lp, nullptr, nullptr, nullptr, p.data(), q.data(), k.data(), w.data(), idx.data(), Tv, Kv, 0.f, 0, 0, nullptr);
        });
        snprintf(what, sizeof what, "KL HI %d dI %d forward, flags 0: loss (max abs)", HI, DI);
        const double e = max_abs(loss_ref, from_f(loss));
        report(e <= 1e-4, what, e, 1e-4);
    }
    /* the backward: order-dependent adds (flags 0: red.v2; 1 | 2 | 4: red.v4, the cache), then
       the deterministic stage (8, with the cache) and key-major reduction */
    std::vector<float> first[2];
    for (int run = all ? 0 : 1; run < 5; run++) {
        /* runs 1, 2: red.v4 under two block orders; 3, 4: the deterministic one likewise; 0: red.v2 */
        const int det = run >= 3, flags = run == 0 ? 0 : !det ? 1 | 2 | 4 : 2 | 4 | 8;
        std::vector<float> loss(N, NAN), dkacc(k.size(), 0.f), stage(det ? (size_t)N * K * DI : 0, NAN),
            part(S.ns > 1 ? (size_t)S.ns * S.nseq * T * DI : 0, NAN);
        std::vector<bf16> dq(q.size(), 0xFFFF), dw(w.size(), 0xFFFF);
        float *lp = loss.data(), *ap = dkacc.data(), *sp = det ? stage.data() : nullptr, *pp = S.ns > 1 ? part.data() : nullptr;
        bf16 *qp = dq.data(), *wp = dw.data();
        if (c.kl_smem[(flags & 2) != 0] > sizeof emu_smem) { fprintf(stderr, "emu_sparse: KL shared memory\n"); exit(1); }
        emu_block_shuffle = run == 0 ? 0 : 1 + (run & 1); /* two orders for each organization */
        emu_launch(N, 1, 1, 128, [&] {
            c.kl(lp, qp, ap, wp, p.data(), q.data(), k.data(), w.data(), idx.data(), Tv, Kv, dloss, flags, 0, sp);
        });
        emu_block_shuffle = 0;
        if (det) {
            long n0 = 0, n1 = N;
            emu_launch((unsigned)((T + S.rkeys - 1) / S.rkeys), (unsigned)S.nseq, (unsigned)S.ns, (unsigned)S.rk_threads,
                       [&] { c.dk_reduce(ap, sp, idx.data(), Tv, Kv, n0, n1, pp); });
            if (S.ns > 1) {
                const unsigned long long nc = (unsigned long long)S.nseq * T * DI / 4;
                int nkv = 1, kvh = 0, ns = S.ns, nseq = S.nseq, rw = DI, nm = 1;
                emu_launch((unsigned)std::min<unsigned long long>((nc + 255) / 256, 8), 1, 1, 256,
                           [&] { emu_sp0::key_combine(ap, ap, pp, Tv, n0, n1, nkv, kvh, ns, nseq, rw, nm); });
            }
        }
        const char *how = run == 0 ? "red.v2" : !det ? "red.v4, a_j cache" : "deterministic";
        snprintf(what, sizeof what, "KL HI %d dI %d backward (%s): loss (max abs)", HI, DI, how);
        double e = max_abs(loss_ref, from_f(loss));
        report(e <= 1e-4, what, e, 1e-4);
        snprintf(what, sizeof what, "KL HI %d dI %d backward (%s): dqI", HI, DI, how);
        e = rel_l2(dq_ref, from_bf(dq));
        report(e <= 1e-2, what, e, 1e-2);
        snprintf(what, sizeof what, "KL HI %d dI %d backward (%s): dw", HI, DI, how);
        e = rel_l2(dw_ref, from_bf(dw));
        report(e <= 1e-2, what, e, 1e-2);
        snprintf(what, sizeof what, "KL HI %d dI %d backward (%s): dkI (fp32 accumulator)", HI, DI, how);
        e = rel_l2(dk_ref, from_f(dkacc));
        report(e <= 1e-5, what, e, 1e-5);
        if (run == 1 || run == 3) first[det] = dkacc;
        if (run == 2) {
            snprintf(what, sizeof what, "KL HI %d dI %d red.v4 dkI: moved by another block order", HI, DI);
            report(memcmp(first[0].data(), dkacc.data(), dkacc.size() * 4) != 0, what, 0, 0);
        }
        if (run == 4) {
            snprintf(what, sizeof what, "KL HI %d dI %d deterministic dkI: the same bits in another block order", HI, DI);
            report(memcmp(first[1].data(), dkacc.data(), dkacc.size() * 4) == 0, what, 0, 0);
        }
    }
}

/* the CPU's rule (attn/dsa.h's sparse_topk_row_): the K largest of row[0..n), equal scores the
   lower position first (-0 equal to +0), ascending; -1 after when n <= K */
static std::vector<int> topk_ref(const float *row, int n, int K) {
    std::vector<int> out(K, -1);
    if (n <= K) { for (int i = 0; i < n; i++) out[i] = i; return out; }
    std::vector<int> ord(n);
    for (int i = 0; i < n; i++) ord[i] = i;
    std::stable_sort(ord.begin(), ord.end(), [&](int a, int b) { return row[a] > row[b]; });
    std::sort(ord.begin(), ord.begin() + K);
    std::copy(ord.begin(), ord.begin() + K, out.begin());
    return out;
}

/* idx_adapt on a selection (idx, from the scores sc): each row's k_t = clamp(round(exp(H_t) pct /
   100), min(kmin, K), K) from the entropy H_t of softmax over its causal scores (attn/dsa.h's
   attn_dsa_adaptive_k, in double), the k_t largest of the selected slots kept (equal scores: the
   earlier slots), in order, -1 after; as sparse_adapt_launch_ launches it */
static void run_adapt(const std::vector<float> &sc, const std::vector<int> &sel, int B, int T, int K) {
    const int kmin = 4, pct = 40;
    std::vector<int> idx = sel, want = sel;
    long trimmed = 0;
    for (int r = 0; r < B * T; r++) {
        const float *v = &sc[(size_t)r * T];
        const int n = r % T + 1, have = n < K ? n : K;
        double mx = -INFINITY, z = 0, m1 = 0;
        for (int s = 0; s < n; s++) mx = fmax(mx, v[s]);
        for (int s = 0; s < n; s++) { const double d = v[s] - mx, e = exp(d); z += e; m1 += e * d; }
        const double kk = floor(exp(log(z) - m1 / z) * pct / 100.0 + 0.5);
        const int lo = kmin < K ? kmin : K, k = kk < lo ? lo : kk > K ? K : (int)kk;
        if (k >= have) continue;
        int *w = &want[(size_t)r * K];
        std::vector<int> ord(w, w + have);
        std::stable_sort(ord.begin(), ord.end(), [&](int a, int b) { return v[a] + 0.0f > v[b] + 0.0f; });
        std::sort(ord.begin(), ord.begin() + k);
        for (int j = 0; j < K; j++) w[j] = j < k ? ord[j] : -1;
        trimmed++;
    }
    int *ip = idx.data(), Tv = T, Kv = K, km = kmin, pc = pct;
    const float *sp = sc.data();
    emu_launch((unsigned)T, (unsigned)B, 1, 256, [&] { emu_sp0::idx_adapt(ip, sp, Tv, 0, 0, Tv, Kv, km, pc); });
    long bad = 0;
    for (int r = 0; r < B * T; r++)
        bad += !std::equal(&idx[(size_t)r * K], &idx[(size_t)r * K] + K, &want[(size_t)r * K]);
    printf("  idx_adapt: %ld of %d rows trimmed by the reference\n", trimmed, B * T);
    report(bad == 0 && trimmed > 0, "idx_adapt: rows off the CPU's rule", (double)bad, 0);
}

/* idx_topk (row cached in shared memory or not, match.any aggregation in the first pass or in all
   four) and idx_topk_warp against topk_ref, slot for slot, on rows crowded with ties: values from a
   few (-0 and +0 among them, neighbours one ulp apart, which only the last radix pass tells apart)
   and some random; the whole batch, then a chunk of rows */
static void run_topk() {
    const int B = 2, T = 220, K = 40;
    printf("case top-k: B %d T %d k %d\n", B, T, K);
    static const float few[] = {-1.5f, -0.0f, 0.0f, 0.25f, 1.0f, 1.00000012f, 1.00000024f, 3.0f};
    std::vector<float> sc((size_t)B * T * T, -INFINITY);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int s = 0; s <= t; s++)
                sc[((size_t)b * T + t) * T + s] = ur() < 0.7 ? few[(int)(ur() * 8) & 7] : (float)nr();
    for (int kind = 0; kind < 3; kind++)
        for (int chunk = 0; chunk < 2; chunk++) {
            const int b0 = chunk, nb = chunk ? 1 : B, q0 = chunk ? 100 : 0, R = chunk ? 100 : T;
            const float *src = sc.data() + (size_t)b0 * T * T + (size_t)q0 * T; /* the chunk's rows */
            std::vector<int> idx((size_t)B * T * K, -7);
            int *ip = idx.data(), Tv = T, Kv = K;
            if (kind < 2) {
                const int cache = kind == 0, aggr = kind == 0 ? 1 : 4;
                emu_launch((unsigned)R, (unsigned)nb, 1, 256,
                           [&] { emu_sp0::idx_topk(ip, src, Tv, b0, q0, R, Kv, cache, aggr); });
            } else {
                emu_launch((unsigned)((R + 3) / 4), (unsigned)nb, 1, 128, [&] { emu_sp0::idx_topk_warp(ip, src, Tv, b0, q0, R, Kv); });
            }
            long bad = 0, untouched = 0;
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++) {
                    const int *got = &idx[((size_t)b * T + t) * K];
                    if (b < b0 || b >= b0 + nb || t < q0 || t >= q0 + R) { /* outside the chunk: not written */
                        for (int j = 0; j < K; j++) untouched += got[j] != -7;
                        continue;
                    }
                    bad += topk_ref(&sc[((size_t)b * T + t) * T], t + 1, K) != std::vector<int>(got, got + K);
                }
            if (kind == 2 && chunk == 0) run_adapt(sc, idx, B, T, K);
            static const char *const kinds[] = {"idx_topk (row cached, aggregated first pass)",
                                                "idx_topk (from global, aggregated passes)", "idx_topk_warp"};
            char what[128];
            snprintf(what, sizeof what, "%s%s: rows off the CPU's rule", kinds[kind], chunk ? ", a chunk" : "");
            report(bad == 0 && untouched == 0, what, (double)bad, 0);
            if (untouched) printf("  %ld slots written outside the chunk\n", untouched);
        }
}

/* attn/dsa.h's quantizers (op_indexer_quantize), as the CPU reference computes them: fp16 / fp8
   (e4m3) on the grid of m mantissa bits with normals down to 2^emin, nearest-even, saturated; int8
   / int4 with one fp32 scale per row (max|x| / levels), nearest-even, clamped */
static double quant_float_ref(double x, int m, int emin, double mx) {
    if (x == 0 || x != x) return x;
    int e;
    frexp(x, &e);
    const int lead = e - 1 < emin ? emin : e - 1;
    const double ulp = ldexp(1.0, lead - m), r = rint(x / ulp) * ulp;
    return r > mx ? mx : r < -mx ? -mx : r;
}
static void quant_row_ref(float *row, int dim, int prec) {
    if (prec == 2 || prec == 3) {
        for (int i = 0; i < dim; i++)
            row[i] = (float)(prec == 2 ? quant_float_ref(row[i], 10, -14, 65504) : quant_float_ref(row[i], 3, -6, 448));
        return;
    }
    volatile float levels = prec == 4 ? 127.f : 7.f, fmx = 0.f;
    for (int i = 0; i < dim; i++) fmx = fabsf(row[i]) > fmx ? fabsf(row[i]) : fmx;
    if (fmx == 0.f) return;
    volatile float scale = fmx / levels;
    for (int i = 0; i < dim; i++) {
        volatile float r = row[i] / scale;
        const float qv = rintf(r);
        volatile float v = scale * (qv > levels ? levels : qv < -levels ? -levels : qv);
        row[i] = v;
    }
}

/* idx_prep (the indexer's inputs padded to 32 columns and quantized) bit for bit against the
   CPU's quantizers, as sparse_index_prep_ launches it (a warp per row, 8 rows a block), for
   fp16, fp8 e4m3, int8 and int4 at dI 8, 16 and 64: bf16 rows with values past fp16's and fp8's
   range and below their normals, rows of ties (2.5 and -3.5 at scale 1: to even, down and up),
   an all-zero row; the padding columns zero */
static void run_prep() {
    printf("case indexer input quantization (idx_prep)\n");
    for (int din : {8, 16, 64})
        for (int prec = 2; prec <= 5; prec++) {
            const int dout = din < 32 ? 32 : din, rows = 37;
            std::vector<bf16> in((size_t)rows * din);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < din; c++) {
                    double x = nr() * ldexp(1.0, (int)(ur() * 40) - 20); /* 2^-20 .. 2^20: both formats' ends */
                    if (r == 3) x = 0;                                  /* an all-zero row */
                    if (r == 4) x = c == 0 ? 7.0 : (c % 2 ? 2.5 : -3.5); /* int4's ties (max 7: scale 1) */
                    if (r == 5) x = c == 0 ? 127.0 : (c % 2 ? 62.5 : -63.5); /* int8's: even below, above */
                    in[(size_t)r * din + c] = f2bf((float)x);
                }
            std::vector<float> got((size_t)rows * dout, NAN), want((size_t)rows * dout, 0.f);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < din; c++) want[(size_t)r * dout + c] = bf2f(in[(size_t)r * din + c]);
                quant_row_ref(&want[(size_t)r * dout], din, prec);
            }
            void *op = got.data();
            const void *ip = in.data();
            const unsigned long long nrows = rows;
            int di = din, dd = dout, pr = prec, in_f32 = 0, out_f32 = 1;
            emu_launch((unsigned)((rows + 7) / 8), 1, 1, 256, [&] { emu_sp0::idx_prep(op, ip, nrows, di, dd, pr, in_f32, out_f32); });
            long bad = 0;
            for (size_t i = 0; i < got.size(); i++) bad += memcmp(&got[i], &want[i], 4) != 0;
            static const char *const names[] = {"", "", "fp16", "fp8 e4m3", "int8", "int4"};
            char what[96];
            snprintf(what, sizeof what, "idx_prep %s dI %d -> %d: values off the CPU's bits", names[prec], din, dout);
            report(bad == 0, what, (double)bad, 0);
        }
}

/* the KL's path at indexer dims 8 and 16: idx_prep pads bf16 rows to 32 columns (zeros after),
   idx_unpad cuts them back (a grid-stride loop over 3 blocks): the round trip gives the rows
   back bit for bit */
static void run_unpad() {
    printf("case indexer rows padded to 32 and cut back (idx_prep bf16, idx_unpad)\n");
    for (int din : {8, 16}) {
        const unsigned long long rows = 111;
        std::vector<bf16> in(rows * din), pad(rows * 32, 0xffff), back(rows * din, 0xffff);
        for (auto &x : in) x = f2bf((float)nr());
        void *pp = pad.data(), *bp = back.data();
        const void *ip = in.data(), *cp = pad.data();
        int di = din, dp = 32, pr = 0, f0 = 0;
        emu_launch((unsigned)((rows + 7) / 8), 1, 1, 256, [&] { emu_sp0::idx_prep(pp, ip, rows, di, dp, pr, f0, f0); });
        emu_launch(3, 1, 1, 256, [&] { emu_sp0::idx_unpad((bf16 *)bp, (const bf16 *)cp, rows, di, dp); });
        long bad = 0;
        for (unsigned long long r = 0; r < rows; r++)
            for (int c = 0; c < 32; c++)
                bad += c < din ? pad[r * 32 + c] != in[r * din + c] : pad[r * 32 + c] != 0;
        char what[96];
        snprintf(what, sizeof what, "idx_prep bf16 dI %d -> 32: values and zero padding (elements off)", din);
        report(bad == 0, what, (double)bad, 0);
        bad = memcmp(back.data(), in.data(), in.size() * 2) != 0;
        snprintf(what, sizeof what, "idx_unpad 32 -> dI %d: the rows back bit for bit (rows off)", din);
        long rows_off = 0;
        for (unsigned long long r = 0; r < rows; r++) rows_off += memcmp(&back[r * din], &in[r * din], 2 * din) != 0;
        report(rows_off == 0 && !bad, what, (double)rows_off, 0);
    }
}

/* sparse_mask: the bitmask and the per-128-key-tile prefix counts of an index list (unused slots
   -1, a row with no selection), as sparse_mask_build_ launches it (8 rows a block) */
static void run_mask() {
    const int B = 2, T = 300, K = 37, W = (T + 127) / 128 * 4;
    printf("case selection mask: B %d T %d k %d (%d words a row)\n", B, T, K, W);
    std::vector<int> idx((size_t)B * T * K, -1);
    for (int n = 0; n < B * T; n++) {
        const int t = n % T;
        if (t == 5) continue; /* nothing selected */
        for (int j = 0; j < K; j++)
            if (ur() < 0.8) idx[(size_t)n * K + j] = (int)(ur() * (t + 1));
    }
    std::vector<unsigned> mask((size_t)B * T * W, 0xdeadbeefu);
    std::vector<int> prefix((size_t)B * T * (W / 4), -7);
    unsigned *mp = mask.data();
    int *pp = prefix.data(), *ip = idx.data(), Kv = K, Wv = W;
    const unsigned long long rows = (unsigned long long)B * T;
    if (W * 4 * 8 > (int)sizeof emu_smem) { fprintf(stderr, "emu_sparse: mask rows too wide\n"); exit(1); }
    emu_launch((unsigned)((rows + 7) / 8), 1, 1, 256, [&] { emu_sp0::sparse_mask(mp, pp, ip, Kv, Wv, rows); });
    long bad_m = 0, bad_p = 0;
    for (size_t r = 0; r < rows; r++) {
        std::vector<unsigned> m(W, 0);
        for (int j = 0; j < K; j++) {
            const int s = idx[r * K + j];
            if (s >= 0) m[s >> 5] |= 1u << (s & 31);
        }
        int run = 0;
        for (int x = 0; x < W; x++) {
            bad_m += mask[r * W + x] != m[x];
            if (x % 4 == 0) bad_p += prefix[r * (W / 4) + x / 4] != run;
            run += __builtin_popcount(m[x]);
        }
    }
    report(bad_m == 0, "sparse_mask: words off the index list", (double)bad_m, 0);
    report(bad_p == 0, "sparse_mask: tile prefix counts off", (double)bad_p, 0);
}

int main() {
    for (const EmuSparseCfg &c : emu_sparse_cfgs) run_case(c);
    for (const EmuIxCfg &c : emu_ix_cfgs) run_scores(c);
    for (const EmuIxCfg &c : emu_ix_cfgs) run_kl(c, &c == emu_ix_cfgs); /* (the emulation is slow: the rest once) */
    run_topk();
    run_prep();
    run_unpad();
    run_mask();
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
