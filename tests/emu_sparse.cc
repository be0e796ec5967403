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
   The source is included once per head-width configuration, each in a namespace of its own:
   hd 64 (4 heads on one kv head), hd 72 (tiles of 80: zero columns), hd 256 (the widest the
   kernels compile for; 2 heads on one kv head) and hd 200 (tiles of 208, MHA: a head a
   block). Per configuration: the forward (out, lse), the backward's two organizations (mode 1:
   dK, dV by float atomics, psum by stores when one block holds all heads; the deterministic
   one: each pair's rows staged, then sparse_kv_reduce adds them key-major) and sparse_probs.
   Bounds: out, dq, dk, dv relative L2 2e-2 (bf16 outputs, bf16 tensor-core operands); lse, psum
   max abs 2e-3. Ends with "N passed, N failed". */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <functional>
#include <vector>

#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-variable"

/* ---------------------------------------------------------------- the emulated CUDA runtime */
struct Dim3 { unsigned x, y, z; };
static thread_local Dim3 threadIdx;
static Dim3 blockIdx, blockDim, gridDim;
static pthread_barrier_t block_bar, warp_bar[32];
static pthread_mutex_t atomic_mu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t slot_[32][32][8];     /* a warp's lanes' published 32-bit values (up to 8 each) */
static const void *ptr_slot_[32][32]; /* a warp's lanes' published addresses (ldmatrix) */
alignas(16) static unsigned char emu_smem[256 * 1024];

#define __device__ static
#define __forceinline__ inline
#define __global__
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __restrict__ __restrict
struct uint4 { unsigned x, y, z, w; };
struct float4 { float x, y, z, w; };
struct float2 { float x, y; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
#define __expf expf
#define __logf logf
#define __log2f log2f
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __ffs(unsigned x) { return ffs((int)x); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline void __threadfence() {}
static inline void __syncthreads() { pthread_barrier_wait(&block_bar); }
static inline int warp_() { return threadIdx.x >> 5; }
static inline int lane_() { return threadIdx.x & 31; }
/* every __syncwarp of these kernels is reached by the whole warp */
static inline void __syncwarp(unsigned m = 0xffffffffu) { (void)m; pthread_barrier_wait(&warp_bar[warp_()]); }
template <typename T> static uint32_t bits_(T v) { static_assert(sizeof(T) == 4, "32-bit"); uint32_t u; memcpy(&u, &v, 4); return u; }
template <typename T> static T from_bits_(uint32_t u) { T v; memcpy(&v, &u, 4); return v; }
/* lane `from` of this warp's value v (out-of-range lanes: this lane's own, as the hardware) */
template <typename T> static T shfl_(T v, int from) {
    const int w = warp_(), l = lane_();
    slot_[w][l][0] = bits_(v);
    __syncwarp();
    const uint32_t r = slot_[w][from >= 0 && from < 32 ? from : l][0];
    __syncwarp();
    return from_bits_<T>(r);
}
template <typename T> static T __shfl_sync(unsigned m, T v, int src, int width = 32) {
    (void)m; const int l = lane_();
    return shfl_(v, (l & ~(width - 1)) + (src & (width - 1)));
}
template <typename T> static T __shfl_xor_sync(unsigned m, T v, int o, int width = 32) {
    (void)m; const int l = lane_(), s = l ^ o;
    return shfl_(v, (s & ~(width - 1)) == (l & ~(width - 1)) ? s : l);
}
template <typename T> static T __shfl_down_sync(unsigned m, T v, int d, int width = 32) {
    (void)m; const int l = lane_(), s = l + d;
    return shfl_(v, (s & ~(width - 1)) == (l & ~(width - 1)) ? s : l);
}
template <typename T> static T __shfl_up_sync(unsigned m, T v, int d, int width = 32) {
    (void)m; const int l = lane_(), s = l - d;
    return shfl_(v, s >= (l & ~(width - 1)) ? s : l);
}
static unsigned __ballot_sync(unsigned m, int f) {
    (void)m; const int w = warp_(), l = lane_();
    slot_[w][l][0] = f != 0;
    __syncwarp();
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= slot_[w][i][0] << i;
    __syncwarp();
    return r;
}
/* the lanes whose value equals this lane's */
static unsigned __match_any_sync(unsigned m, int x) {
    (void)m; const int w = warp_(), l = lane_();
    slot_[w][l][0] = (uint32_t)x;
    __syncwarp();
    unsigned r = 0;
    for (int i = 0; i < 32; i++) r |= (unsigned)(slot_[w][i][0] == (uint32_t)x) << i;
    __syncwarp();
    return r;
}
static int __any_sync(unsigned m, int f) { return __ballot_sync(m, f) != 0; }
static int __all_sync(unsigned m, int f) { return __ballot_sync(m, f) == 0xffffffffu; }
static float atomicAdd(float *p, float v) {
    pthread_mutex_lock(&atomic_mu); float o = *p; *p = o + v; pthread_mutex_unlock(&atomic_mu); return o;
}
static int atomicAdd(int *p, int v) {
    pthread_mutex_lock(&atomic_mu); int o = *p; *p = o + v; pthread_mutex_unlock(&atomic_mu); return o;
}
static unsigned atomicOr(unsigned *p, unsigned v) {
    pthread_mutex_lock(&atomic_mu); unsigned o = *p; *p = o | v; pthread_mutex_unlock(&atomic_mu); return o;
}

/* kernels.cu.h's common header (bf16, pack2, load8, warp_sum, ...) as the kernels see it */
#include "emu_sparse_kernels.inc"

/* ---- ablate_mma.cuh, emulated ---- */
/* cp.async: the copy happens at once (so the commit / wait pairs order nothing here) */
static void cp_async16(void *dst, const void *src, bool valid) { if (valid) memcpy(dst, src, 16); else memset(dst, 0, 16); }
static void cp_async4(void *dst, const void *src, bool valid) { if (valid) memcpy(dst, src, 4); else memset(dst, 0, 4); }
static void cp_async_commit() {}
template <int N> static void cp_async_wait() {}
/* ldmatrix .x4: lanes 8j..8j+7 give the rows of 8x8 matrix j (8 b16 each); lane i receives
   matrix j's row i/4, columns 2(i%4) and +1 in r[j] (trans: row 2(i%4) and +1 of column i/4) */
static void ldsm_(unsigned r[4], const void *p, bool trans) {
    const int w = warp_(), l = lane_();
    ptr_slot_[w][l] = p;
    __syncwarp();
    for (int j = 0; j < 4; j++) {
        unsigned short e0, e1;
        if (!trans) {
            const unsigned short *row = (const unsigned short *)ptr_slot_[w][8 * j + l / 4];
            e0 = row[2 * (l % 4)]; e1 = row[2 * (l % 4) + 1];
        } else {
            e0 = ((const unsigned short *)ptr_slot_[w][8 * j + 2 * (l % 4)])[l / 4];
            e1 = ((const unsigned short *)ptr_slot_[w][8 * j + 2 * (l % 4) + 1])[l / 4];
        }
        r[j] = (unsigned)e0 | ((unsigned)e1 << 16);
    }
    __syncwarp();
}
static void ldsm_x4(unsigned r[4], const void *p) { ldsm_(r, p, false); }
static void ldsm_x4_t(unsigned r[4], const void *p) { ldsm_(r, p, true); }
static float bfh_(unsigned x, int hi) { return __uint_as_float(hi ? x & 0xffff0000u : x << 16); }
/* d += a b, m16n8k16 (row.col): A (16 x 16) a0 (row g, cols 2t, 2t+1), a1 (row g+8), a2 (row g,
   cols 2t+8, +9), a3 (row g+8, cols 2t+8, +9); B (16 x 8) b0 (rows 2t, 2t+1 of col g), b1 (rows
   2t+8, +9); C c0, c1 (row g, cols 2t, 2t+1), c2, c3 (row g+8) */
static void mma(float d[4], const unsigned a[4], unsigned b0, unsigned b1) {
    const int w = warp_(), l = lane_();
    for (int i = 0; i < 4; i++) slot_[w][l][i] = a[i];
    slot_[w][l][4] = b0; slot_[w][l][5] = b1;
    __syncwarp();
    const int g = l >> 2, t = l & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        float s = 0.f;
        for (int k = 0; k < 16; k++) {
            const int la = (row % 8) * 4 + (k % 8) / 2, ra = (row >= 8) + 2 * (k >= 8);
            const int lb = col * 4 + (k % 8) / 2, rb = 4 + (k >= 8);
            s += bfh_(slot_[w][la][ra], k & 1) * bfh_(slot_[w][lb][rb], k & 1);
        }
        d[e] += s;
    }
    __syncwarp();
}
static unsigned pack_bf16(float lo, float hi) { return pack2(lo, hi); }
static float bf16_lo(unsigned x) { return __uint_as_float(x << 16); }
static float bf16_hi(unsigned x) { return __uint_as_float(x & 0xffff0000u); }
static float fast_exp2(float x) { return exp2f(x); }

/* ---- the kernels, once per configuration ---- */
#define EMU_SPARSE_KERNELS
#define SPARSE_PART 1
#define HD 64
#define HB 4
#define GROUP 4
namespace c64 {
#include "emu_sparse_kernels.inc"
}
#undef HD
#undef HDP
#undef HB
#undef GROUP
#define HD 72
#define HDP 80
#define HB 2
#define GROUP 2
namespace c72 {
#include "emu_sparse_kernels.inc"
}
#undef HD
#undef HDP
#undef HB
#undef GROUP
#define HD 256
#define HB 2
#define GROUP 2
namespace c256 {
#include "emu_sparse_kernels.inc"
}
#undef HD
#undef HDP
#undef HB
#undef GROUP
#define HD 200
#define HDP 208
#define HB 1
#define GROUP 1
namespace c200 {
#include "emu_sparse_kernels.inc"
}
#undef HD
#undef HDP
#undef HB
#undef GROUP

/* one launch: gx x gy x gz blocks of bx threads (bx <= 1024, a multiple of 32), one block at a
   time, each thread running body */
static void emu_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, const std::function<void()> &body) {
    pthread_barrier_init(&block_bar, NULL, bx);
    for (unsigned w = 0; w < bx / 32; w++) pthread_barrier_init(&warp_bar[w], NULL, 32);
    gridDim = Dim3{gx, gy, gz};
    blockDim = Dim3{bx, 1, 1};
    struct Arg { const std::function<void()> *body; unsigned tid; };
    std::vector<pthread_t> th(bx);
    std::vector<Arg> args(bx);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                blockIdx = Dim3{x, y, z};
                for (unsigned i = 0; i < bx; i++) {
                    args[i] = Arg{&body, i};
                    pthread_create(&th[i], &attr, [](void *p) -> void * {
                        Arg *a = (Arg *)p;
                        threadIdx = Dim3{a->tid, 0, 0};
                        (*a->body)();
                        return nullptr;
                    }, &args[i]);
                }
                for (unsigned i = 0; i < bx; i++) pthread_join(th[i], NULL);
            }
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&block_bar);
    for (unsigned w = 0; w < bx / 32; w++) pthread_barrier_destroy(&warp_bar[w]);
}

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

/* the kernels of one configuration, as plain function pointers (the namespaces' own) */
struct Kernels {
    int hd, hdp, hb, group;
    void (*fwd)(bf16 *, float *, const bf16 *, const bf16 *, const bf16 *, const int *, int, int, int, float);
    void (*bwd)(bf16 *, float *, float *, float *, const bf16 *, const bf16 *, const float *, const bf16 *, const bf16 *,
                const bf16 *, const int *, int, int, int, float, float, float, int, float *, long, int, float *, float *);
    void (*reduce)(float *, float *, const float *, const float *, const int *, int, int, long, long, int, int, float *);
    void (*probs)(float *, const float *, const bf16 *, const bf16 *, const int *, int, int, int, float, float, int, int);
};

/* B sequences of T tokens, H query heads on KV kv heads, K slots a token (some -1, ascending
   positions <= t first, as the select writes them) */
static void run_case(const Kernels &kr, int B, int T, int H, int K) {
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

#define KERNELS(NS, hd, hdp, hb, g) Kernels{hd, hdp, hb, g, NS::sparse_fwd, NS::sparse_bwd, NS::sparse_kv_reduce, NS::sparse_probs}

int main() {
    run_case(KERNELS(c64, 64, 64, 4, 4), 2, 40, 4, 24);
    run_case(KERNELS(c72, 72, 80, 2, 2), 1, 50, 4, 37);
    run_case(KERNELS(c256, 256, 256, 2, 2), 1, 40, 2, 20);
    run_case(KERNELS(c200, 200, 208, 1, 1), 1, 30, 2, 33);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
