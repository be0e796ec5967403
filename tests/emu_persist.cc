/* emu_persist.cc - attn/decode_persist.cu.h's persistent decode step (pz_step: every layer of a
   dense pre-norm model and the LM head in one kernel) run on the CPU emulation of CUDA
   (tests/emu_cuda_cxx.h: a block's threads as fibers, barriers real, shuffles through per-warp
   slots), as one block of PZ_THREADS, against a decode step of the same model computed in double
   at the step's rounding points (the header's ARITHMETIC: RMSNorm(x) * w rounded to bf16 before
   each GEMV, bf16 GEMV outputs, bf16(res + bf16(y)), SwiGLU of the bf16 halves, QK-norm's output
   rounded before RoPE, fp32 logits). With one block the grid barrier's wait returns at once
   (tests/emu_persist_dump.c): this checks the arithmetic, the work split over the warps and the
   block's barriers, not the grid's; tests/gpu_decode_check.c on the device is the real test.

   make tests/emu_persist && ./tests/emu_persist      (also in make emucheck)
   Shapes (tests/emu_persist_dump.c's table): B 2, 2 layers, d 64, ffn 96, 4 heads of 16 on 2 kv
   heads, vocab 300; B 1, 2 layers, d 96, ffn 128, 3 heads of 64 on one kv head, vocab 200, with
   QK-norm. Layer 0 a plain cache of 100 slots (position 70: three splits of 32 slots), layer 1 4
   global slots and a ring of 36 with a window of 20 (the ring wrapped). Checks: the logits
   (relative L2 1e-2), the final x rows (1e-2), each layer's new key and value in its slot (within
   2e-2 of the reference's bf16 values; every other slot untouched), and greedy's token (the
   kernel's own first largest logit, exactly) and position + 1. Ends with "N passed, N failed". */
#include "emu_cuda_cxx.h"
#include <vector>

typedef unsigned short bf16; /* as the common header's */
static long long clock64() { return 0; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
#include "emu_persist_kernels.inc"

static uint64_t rs = 0xD1B54A32D192ED03ull;
static double ur() { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr() { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static int np_, nf_;
static void report(bool ok, const char *what, double err, double bound) {
    printf("%s %-66s %.3e (bound %.1e)\n", ok ? "PASS" : "FAIL", what, err, bound);
    ok ? np_++ : nf_++;
}
static float bfv(bf16 x) { return __uint_as_float((unsigned)x << 16); }
static bf16 tobf(double x) { return emu_f2bf_((float)x); }
static double rbf(double x) { return bfv(tobf(x)); } /* rounded to bf16 */
static std::vector<bf16> randbf(size_t n, double sd) {
    std::vector<bf16> v(n);
    for (auto &x : v) x = tobf(sd * nr());
    return v;
}

/* the shapes, in emu_persist_dump.c's order, and their kernels */
struct Shape { int B, L, D, F, H, KV, hd, V, qkn; };
static const Shape shapes[] = {{2, 2, 64, 96, 4, 2, 16, 300, 0}, {1, 2, 96, 128, 3, 1, 64, 200, 1}};

/* one layer's weights and cache (host memory: the emulation's device) */
struct HostLayer {
    std::vector<bf16> wqkv, wo, wgu, wdown, an, fn, qn, kn, cache, cache0;
    int S, G, ring, W;
    float theta;
};
static int slot_of(int p, int G, int ring) { return p < G ? p : G + (p - G) % ring; }

/* y[o] = sum_c x[c] w[o][c] for o < O (w [O][C] bf16), then rounded to bf16 */
static void gemv_ref(double *y, const double *x, const bf16 *w, int O, int C) {
    for (int o = 0; o < O; o++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += x[c] * bfv(w[(size_t)o * C + c]);
        y[o] = s;
    }
}
static void norm_ref(double *out, const double *x, const bf16 *w, int C, double eps) {
    double ss = 0;
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    const double r = 1 / sqrt(ss / C + eps);
    for (int c = 0; c < C; c++) out[c] = rbf(x[c] * r * bfv(w[c]));
}

template <class Kernel, class LayerT>
static void run_shape(const Shape &s, Kernel kernel, LayerT *) {
    const int B = s.B, D = s.D, F = s.F, H = s.H, KV = s.KV, hd = s.hd, V = s.V, kvd = KV * hd, QW = (H + 2 * KV) * hd;
    const int p = 70;
    const double eps = 1e-5, qk_eps = 1e-6, scale = 1 / sqrt((double)hd);
    char what[128];
    printf("case B %d, %d layers, d %d, ffn %d, %d heads of %d on %d kv heads, vocab %d%s; position %d\n", B, s.L, D, F,
           H, hd, KV, V, s.qkn ? ", QK-norm" : "", p);
    std::vector<bf16> wte = randbf((size_t)V * D, 1), fnorm(D);
    for (auto &x : fnorm) x = tobf(1 + 0.2 * nr());
    std::vector<HostLayer> hl(s.L);
    for (int li = 0; li < s.L; li++) {
        HostLayer &l = hl[li];
        const double sd = 1 / sqrt((double)D);
        l.wqkv = randbf((size_t)QW * D, sd), l.wo = randbf((size_t)D * H * hd, 1 / sqrt((double)H * hd));
        l.wgu = randbf((size_t)2 * F * D, sd), l.wdown = randbf((size_t)D * F, 1 / sqrt((double)F));
        l.an.resize(D), l.fn.resize(D), l.qn.resize(hd), l.kn.resize(hd);
        for (auto &x : l.an) x = tobf(1 + 0.2 * nr());
        for (auto &x : l.fn) x = tobf(1 + 0.2 * nr());
        for (auto &x : l.qn) x = tobf(1 + 0.2 * nr());
        for (auto &x : l.kn) x = tobf(1 + 0.2 * nr());
        l.S = li == 0 ? 100 : 40, l.G = li == 0 ? 100 : 4, l.ring = li == 0 ? 1 : 36, l.W = li == 0 ? 0 : 20;
        l.theta = li == 0 ? 10000.0f : 500.0f;
        l.cache = randbf((size_t)B * l.S * 2 * kvd, 1); /* the earlier positions' keys and values */
        l.cache0 = l.cache;
    }
    int tok[8];
    for (int b = 0; b < B; b++) tok[b] = (int)(ur() * V);

    /* ---- the reference, in double ---- */
    std::vector<double> x((size_t)B * D), xn(D), qkv(QW), h1(D), hn(D), g(2 * F), act(F), y(D > F ? D : F);
    std::vector<std::vector<double>> kref(s.L, std::vector<double>((size_t)B * kvd)), vref = kref;
    std::vector<double> logits_ref((size_t)B * V), q((size_t)H * hd);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < D; c++) x[(size_t)b * D + c] = bfv(wte[(size_t)tok[b] * D + c]);
    for (int li = 0; li < s.L; li++) {
        const HostLayer &l = hl[li];
        std::vector<bf16> cache = l.cache; /* with this step's key and value written */
        const int sp = slot_of(p, l.G, l.ring), filled = p + 1 < l.S ? p + 1 : l.S;
        for (int b = 0; b < B; b++) {
            double *xb = &x[(size_t)b * D];
            norm_ref(xn.data(), xb, l.an.data(), D, eps);
            gemv_ref(qkv.data(), xn.data(), l.wqkv.data(), QW, D);
            for (auto &v : qkv) v = rbf(v);
            for (int hh = 0; hh < H + KV; hh++) { /* QK-norm (rounded), RoPE at p */
                double *xh = &qkv[(size_t)hh * hd], r = 1;
                const bf16 *nw = hh < H ? l.qn.data() : l.kn.data();
                if (s.qkn) {
                    double ss = 0;
                    for (int i = 0; i < hd; i++) ss += xh[i] * xh[i];
                    r = 1 / sqrt(ss / hd + qk_eps);
                }
                double rot[256];
                for (int i = 0; i < hd; i++) rot[i] = s.qkn ? rbf(xh[i] * r * bfv(nw[i])) : xh[i];
                for (int i = 0; i < hd / 2; i++) {
                    const double ang = p * pow((double)l.theta, -2.0 * i / hd), c = cos(ang), sn = sin(ang);
                    const double y1 = rot[i] * c - rot[i + hd / 2] * sn, y2 = rot[i + hd / 2] * c + rot[i] * sn;
                    if (hh < H) q[(size_t)hh * hd + i] = y1 * scale, q[(size_t)hh * hd + i + hd / 2] = y2 * scale;
                    else {
                        bf16 *ko = &cache[((size_t)b * l.S + sp) * 2 * kvd + (size_t)(hh - H) * hd];
                        ko[i] = tobf(y1), ko[i + hd / 2] = tobf(y2);
                    }
                }
            }
            for (int i = 0; i < kvd; i++) { /* the value copied into the slot */
                cache[((size_t)b * l.S + sp) * 2 * kvd + kvd + i] = tobf(qkv[(size_t)(H + KV) * hd + i]);
                kref[li][(size_t)b * kvd + i] = bfv(cache[((size_t)b * l.S + sp) * 2 * kvd + i]);
                vref[li][(size_t)b * kvd + i] = bfv(cache[((size_t)b * l.S + sp) * 2 * kvd + kvd + i]);
            }
            /* attention over the filled slots whose position the window lets p see */
            std::vector<double> att((size_t)H * hd, 0.0);
            for (int hh = 0; hh < H; hh++) {
                const int kh = hh / (H / KV);
                std::vector<double> sc(filled, -INFINITY);
                double mx = -INFINITY;
                for (int sl = 0; sl < filled; sl++) {
                    int ps = -1; /* the latest position <= p that maps to slot sl */
                    for (int t = 0; t <= p; t++)
                        if (slot_of(t, l.G, l.ring) == sl) ps = t;
                    if (ps < 0 || (l.W > 0 && p - ps >= l.W)) continue;
                    double d = 0;
                    for (int i = 0; i < hd; i++)
                        d += q[(size_t)hh * hd + i] * bfv(cache[((size_t)b * l.S + sl) * 2 * kvd + (size_t)kh * hd + i]);
                    sc[sl] = d, mx = d > mx ? d : mx;
                }
                double sum = 0;
                for (int sl = 0; sl < filled; sl++) sc[sl] = sc[sl] == -INFINITY ? 0 : exp(sc[sl] - mx), sum += sc[sl];
                for (int sl = 0; sl < filled; sl++)
                    for (int i = 0; i < hd; i++)
                        att[(size_t)hh * hd + i] +=
                            sc[sl] / sum * bfv(cache[((size_t)b * l.S + sl) * 2 * kvd + kvd + (size_t)kh * hd + i]);
            }
            for (auto &v : att) v = rbf(v);
            gemv_ref(y.data(), att.data(), l.wo.data(), D, H * hd);
            for (int c = 0; c < D; c++) h1[c] = rbf(xb[c] + rbf(y[c]));
            norm_ref(hn.data(), h1.data(), l.fn.data(), D, eps);
            gemv_ref(g.data(), hn.data(), l.wgu.data(), 2 * F, D);
            for (int f = 0; f < F; f++) {
                const double gt = rbf(g[f]), uq = rbf(g[F + f]);
                act[f] = rbf(gt / (1 + exp(-gt)) * uq);
            }
            gemv_ref(y.data(), act.data(), l.wdown.data(), D, F);
            for (int c = 0; c < D; c++) xb[c] = rbf(h1[c] + rbf(y[c]));
        }
    }
    for (int b = 0; b < B; b++) {
        norm_ref(xn.data(), &x[(size_t)b * D], fnorm.data(), D, eps);
        gemv_ref(&logits_ref[(size_t)b * V], xn.data(), wte.data(), V, D);
    }

    /* ---- the kernel, one block ---- */
    std::vector<LayerT> layers(s.L);
    for (int li = 0; li < s.L; li++) {
        HostLayer &l = hl[li];
        LayerT &d = layers[li];
        d.wqkv = l.wqkv.data(), d.wo = l.wo.data(), d.wgu = l.wgu.data(), d.wdown = l.wdown.data();
        d.an = l.an.data(), d.fn = l.fn.data(), d.qn = s.qkn ? l.qn.data() : nullptr, d.kn = s.qkn ? l.kn.data() : nullptr;
        d.cache = l.cache.data(), d.S = l.S, d.G = l.G, d.ring = l.ring, d.W = l.W, d.glob = 0, d.stride = 0, d.dil = 0;
        d.pb = 1, d.theta = l.theta, d.qk_eps = (float)qk_eps;
    }
    std::vector<bf16> xk((size_t)B * D, 0xffff), hk((size_t)B * D, 0xffff), actk((size_t)B * F, 0xffff),
        qkvk((size_t)B * QW, 0xffff);
    std::vector<float> part((size_t)B * H * 32 * (hd + 2) + 2 * B, NAN), logits((size_t)B * V, NAN);
    unsigned bar[2] = {0, 0};
    int dtok[8], dpos = p;
    for (int b = 0; b < B; b++) dtok[b] = tok[b];
    const LayerT *lp = layers.data();
    const bf16 *wp = wte.data(), *fp = fnorm.data();
    bf16 *xp = xk.data(), *hp = hk.data(), *ap = actk.data(), *qp = qkvk.data();
    float *pp = part.data(), *lg = logits.data();
    emu_launch(1, 1, 1, 384, [&] { kernel(lp, wp, fp, dtok, &dpos, xp, hp, ap, qp, pp, lg, bar, (unsigned long long *)0,
                                           (float)eps, (float)scale, 1); });
    double num = 0, den = 0;
    for (size_t i = 0; i < logits.size(); i++) num += (logits[i] - logits_ref[i]) * (logits[i] - logits_ref[i]),
                                               den += logits_ref[i] * logits_ref[i];
    report(sqrt(num / den) <= 1e-2, "logits", sqrt(num / den), 1e-2);
    num = den = 0;
    for (size_t i = 0; i < xk.size(); i++) num += (bfv(xk[i]) - x[i]) * (bfv(xk[i]) - x[i]), den += x[i] * x[i];
    report(sqrt(num / den) <= 1e-2, "the last layer's x rows", sqrt(num / den), 1e-2);
    for (int li = 0; li < s.L; li++) {
        const HostLayer &l = hl[li];
        const int sp = slot_of(p, l.G, l.ring);
        double worst = 0;
        size_t other = 0;
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < kvd; i++) {
                const size_t o = ((size_t)b * l.S + sp) * 2 * kvd;
                worst = fmax(worst, fabs(bfv(l.cache[o + i]) - kref[li][(size_t)b * kvd + i]));
                worst = fmax(worst, fabs(bfv(l.cache[o + kvd + i]) - vref[li][(size_t)b * kvd + i]));
            }
            for (int sl = 0; sl < l.S; sl++)
                if (sl != sp)
                    for (int i = 0; i < 2 * kvd; i++)
                        other += l.cache[((size_t)b * l.S + sl) * 2 * kvd + i] != l.cache0[((size_t)b * l.S + sl) * 2 * kvd + i];
        }
        snprintf(what, sizeof what, "layer %d (slot %d of %d%s): the new key and value in the slot", li, sp, l.S,
                 l.ring > 1 ? ", a ring" : "");
        report(worst <= 2e-2, what, worst, 2e-2);
        snprintf(what, sizeof what, "layer %d: every other slot untouched (elements changed)", li);
        report(other == 0, what, (double)other, 0);
    }
    long off = dpos != p + 1;
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[(size_t)b * V + v] > logits[(size_t)b * V + best]) best = v;
        off += dtok[b] != best;
    }
    report(off == 0, "greedy: each row's first largest logit, and the position + 1", (double)off, 0);
}

int main() {
    emu_fiber_seed = 0x9E3779B97F4A7C15ull; /* the block's threads in shuffled orders */
    run_shape(shapes[0], emu_pz_0::pz_step, (emu_pz_0::Layer *)nullptr);
    run_shape(shapes[1], emu_pz_1::pz_step, (emu_pz_1::Layer *)nullptr);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
