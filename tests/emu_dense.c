/* emu_dense.c - attn/decode.cu.h's dense-room split-K decode attention (DECODE_SRC's dec_split
   and dec_combine) run on the CPU emulation of tests/emu_cuda.h, against softmax(q k / sqrt(hd)) v
   in double over the filled slots, on the same bf16 cache. It proves nothing about timing, and a
   race the barriers happen to order may still hide; tests/gpu_decode_check.c on the device is
   the real test.

   make tests/emu_dense && ./tests/emu_dense    (also in make emucheck)
   Cases (B 2, a plain cache of S slots, no window): GQA with a group of 2 and hd 8 (one segment
   of 8 value columns: 32 lanes, the widest shuffle), hd 64 (16 lanes a segment), hd 72 (9
   segments of 8 lanes: 72 of the 128 threads), hd 256 (32 segments of 4 lanes; 32 key loads, in
   four groups of 8), MQA with 9 heads on one kv head (more than 4 heads: three register passes), a
   position inside the first chunk, one in the second of three (a partial chunk, an empty one
   after it), and the last slot. Bound: max |emulated - reference| <= 2e-2 (bf16 outputs of
   O(1) values).
   Then the step's other kernels of DECODE_SRC: dec_qkv (a warp per (b, q or k head): QK-norm or
   none, RoPE at the position, q to fp32, k and v into the slot; plain and ring caches, heads of
   8 to 128 columns) against the training path's rule in double (the norm's output rounded to
   bf16 before the rotation; bound 2e-2 on bf16 and 1e-4 relative on fp32, every other slot
   untouched) and dec_fill (the prompt's rows into a ring: each slot holds the last position
   that maps to it, exactly), dec_advance. Ends with "N passed, N failed". */
#define _GNU_SOURCE /* sincosf */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../attn.h"
#include "emu_cuda.h"
#include "emu_dense_kernels.inc"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static double ur(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (rs >> 11) * (1.0 / 9007199254740992.0); }
static double nr(void) { return sqrt(-2 * log(ur() + 1e-300)) * cos(6.283185307179586 * ur()); }
static int np_, nf_;

typedef struct { float *q; bf16 *cache; float *part; bf16 *att; int *pos; int H, KV, hd, S, NC; float scale; } DsA;
static void split_body(void *p) {
    DsA *a = p;
    dec_split(a->q, a->cache, a->part, a->pos, a->H, a->KV, a->hd, a->S, 0, a->S, 0, 0, 0, 0, 128, a->scale);
}
static void combine_body(void *p) { DsA *a = p; dec_combine(a->part, a->att, a->pos, a->H, a->hd, a->S, a->NC); }

static void t_case(int H, int KV, int hd, int S, int pos) {
    int B = 2, kvd = KV * hd, NC = (S + CHUNK - 1) / CHUNK, G = H / KV;
    bf16 *cache = malloc(2 * (size_t)B * S * 2 * kvd), *att = malloc(2 * (size_t)B * H * hd);
    float *q = malloc(4 * (size_t)B * H * hd), *part = malloc(4 * (size_t)B * H * NC * (hd + 2));
    for (size_t i = 0; i < (size_t)B * S * 2 * kvd; i++) cache[i] = f2bf((float)nr());
    for (size_t i = 0; i < (size_t)B * H * hd; i++) q[i] = (float)nr();
    float scale = 1 / sqrtf((float)hd);
    DsA a = {q, cache, part, att, &pos, H, KV, hd, S, NC, scale};
    size_t smem = (size_t)G * hd + (size_t)G * CHUNK + 2 * (size_t)G;
    if (smem > sizeof g_sm / sizeof *g_sm) { printf("FAIL shared memory of the case\n"); nf_++; return; }
    emu_grid(B * KV, NC, CHUNK, split_body, &a);
    emu_grid(B * H, 1, hd < 128 ? 64 : 128, combine_body, &a);
    double worst = 0, *sc = malloc(sizeof(double) * S);
    int n = pos + 1 < S ? pos + 1 : S;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int kh = h / G;
            double mx = -1e300, sum = 0;
            for (int s = 0; s < n; s++) {
                const bf16 *k = cache + ((size_t)b * S + s) * 2 * kvd + (size_t)kh * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[((size_t)b * H + h) * hd + i] * scale * bf2f(k[i]);
                sc[s] = d;
                if (d > mx) mx = d;
            }
            for (int s = 0; s < n; s++) { sc[s] = exp(sc[s] - mx); sum += sc[s]; }
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int s = 0; s < n; s++) o += sc[s] / sum * bf2f(cache[((size_t)b * S + s) * 2 * kvd + kvd + (size_t)kh * hd + i]);
                double e = fabs(bf2f(att[((size_t)b * H + h) * hd + i]) - o);
                if (e > worst || isnan(e)) worst = isnan(e) ? 1e9 : e;
            }
        }
    int ok = worst <= 2e-2;
    printf("%s dec_split + dec_combine H %d KV %d hd %d S %d pos %-4d max |emu - ref| %.3e (<= 2e-2)\n",
           ok ? "PASS" : "FAIL", H, KV, hd, S, pos, worst);
    ok ? np_++ : nf_++;
    free(cache); free(att); free(q); free(part); free(sc);
}

/* ---- dec_qkv, dec_fill, dec_advance ---- */
typedef struct { const bf16 *qkv, *qn, *kn, *k, *v; float *q; bf16 *cache; int *pos; int H, KV, hd, S, G, ring, B, T; float theta, eps; } QkA;
static void qkv_body(void *p) {
    QkA *a = p;
    dec_qkv(a->qkv, a->q, a->cache, a->qn, a->kn, a->pos, a->H, a->KV, a->hd, a->S, a->G, a->ring, a->theta, a->eps);
}
static void fill_body(void *p) { QkA *a = p; dec_fill(a->cache, a->k, a->v, a->B, a->T, a->KV * a->hd, a->S, a->G, a->ring); }
static void advance_body(void *p) { QkA *a = p; dec_advance(a->pos); }
/* the cache slot of position p: the first G positions keep theirs, the rest share a ring of
   `ring` slots after them (decode.cu.h's dec_slot, attn/dense.h's attn_dense_dec_slot) */
static int slot_of(int p, int G, int ring) { return p < G ? p : G + (p - G) % ring; }

static void t_qkv(int H, int KV, int hd, int S, int G, int ring, int pos, int qk_norm) {
    const int B = 2, P = (H + 2 * KV) * hd, kvd = KV * hd;
    const float theta = 10000.0f, eps = 1e-6f;
    bf16 *qkv = malloc(2 * (size_t)B * P), *qn = malloc(2 * (size_t)hd), *kn = malloc(2 * (size_t)hd);
    bf16 *cache = malloc(2 * (size_t)B * S * 2 * kvd), *cache0 = malloc(2 * (size_t)B * S * 2 * kvd);
    float *q = malloc(4 * (size_t)B * H * hd);
    for (int i = 0; i < B * P; i++) qkv[i] = f2bf((float)nr());
    for (int i = 0; i < hd; i++) qn[i] = f2bf((float)(1 + 0.3 * nr())), kn[i] = f2bf((float)(1 + 0.3 * nr()));
    for (size_t i = 0; i < (size_t)B * S * 2 * kvd; i++) cache[i] = cache0[i] = f2bf((float)nr());
    QkA a = {qkv, qk_norm ? qn : NULL, qk_norm ? kn : NULL, NULL, NULL, q, cache, &pos, H, KV, hd, S, G, ring, B, 1,
             theta, eps};
    emu_grid((unsigned)B, (unsigned)(H + KV), 32, qkv_body, &a);
    /* the training path's rule: per head, RMSNorm * w rounded to bf16 (QK-norm), then RoPE at pos */
    double wq = 0, wk = 0, wv = 0;
    size_t other = 0;
    const int sl = slot_of(pos, G, ring), half = hd / 2;
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < H + KV; h++) {
            const bf16 *x = qkv + (size_t)b * P + (size_t)h * hd;
            const bf16 *w = h < H ? qn : kn;
            double ss = 0, y[256];
            for (int i = 0; i < hd; i++) ss += (double)bf2f(x[i]) * bf2f(x[i]);
            const double r = qk_norm ? 1 / sqrt(ss / hd + eps) : 1;
            for (int i = 0; i < hd; i++) y[i] = qk_norm ? bf2f(f2bf((float)(bf2f(x[i]) * r * bf2f(w[i])))) : bf2f(x[i]);
            for (int i = 0; i < half; i++) {
                const double ang = pos * pow(theta, -2.0 * i / hd), c = cos(ang), s = sin(ang);
                const double y1 = y[i] * c - y[i + half] * s, y2 = y[i + half] * c + y[i] * s;
                if (h < H) {
                    const float *qo = q + ((size_t)b * H + h) * hd;
                    wq = fmax(wq, fmax(fabs(qo[i] - y1), fabs(qo[i + half] - y2)) / (fabs(y1) + fabs(y2) + 1));
                } else {
                    const bf16 *ko = cache + ((size_t)b * S + sl) * 2 * kvd + (size_t)(h - H) * hd;
                    wk = fmax(wk, fmax(fabs(bf2f(ko[i]) - y1), fabs(bf2f(ko[i + half]) - y2)));
                }
            }
            if (h >= H) /* the head's v, copied */
                for (int i = 0; i < hd; i++)
                    wv = fmax(wv, fabs(bf2f(cache[((size_t)b * S + sl) * 2 * kvd + kvd + (size_t)(h - H) * hd + i]) -
                                       bf2f(qkv[(size_t)b * P + (size_t)(H + KV) * hd + (size_t)(h - H) * hd + i])));
        }
        for (int s2 = 0; s2 < S; s2++) /* every other slot untouched */
            if (s2 != sl)
                for (int i = 0; i < 2 * kvd; i++)
                    other += cache[((size_t)b * S + s2) * 2 * kvd + i] != cache0[((size_t)b * S + s2) * 2 * kvd + i];
    }
    int ok = wq <= 1e-4 && wk <= 2e-2 && wv == 0 && other == 0;
    printf("%s dec_qkv H %d KV %d hd %d S %d (G %d ring %d) pos %-4d qk-norm %d: q %.1e k %.1e v %.0f other %zu\n",
           ok ? "PASS" : "FAIL", H, KV, hd, S, G, ring, pos, qk_norm, wq, wk, wv, other);
    ok ? np_++ : nf_++;
    /* dec_advance: the position moves by one (its launch is one thread: called as such, with no
       fibers, since the emulator's blocks are whole warps) */
    int p0 = pos;
    threadIdx.x = 0, blockIdx = (Dim3){0, 0, 0}, gridDim = (Dim3){1, 1, 1}, blockDim = (Dim3){1, 1, 1};
    advance_body(&a);
    ok = pos == p0 + 1;
    printf("%s dec_advance %d -> %d\n", ok ? "PASS" : "FAIL", p0, pos);
    ok ? np_++ : nf_++;
    free(qkv); free(qn); free(kn); free(cache); free(cache0); free(q);
}

/* the prompt's rows into the cache: slot s holds the last position t < T with slot_of(t) == s */
static void t_fill(int KV, int hd, int T, int S, int G, int ring) {
    const int B = 2, kvd = KV * hd;
    bf16 *k = malloc(2 * (size_t)B * T * kvd), *v = malloc(2 * (size_t)B * T * kvd);
    bf16 *cache = malloc(2 * (size_t)B * S * 2 * kvd);
    for (size_t i = 0; i < (size_t)B * T * kvd; i++) k[i] = f2bf((float)nr()), v[i] = f2bf((float)nr());
    memset(cache, 0xff, 2 * (size_t)B * S * 2 * kvd); /* NaN: a slot no position reaches stays so */
    QkA a = {NULL, NULL, NULL, k, v, NULL, cache, NULL, 0, KV, hd, S, G, ring, B, T, 0, 0};
    unsigned blocks = (unsigned)(((size_t)B * T * kvd + 255) / 256);
    emu_grid(blocks > 3 ? 3 : blocks, 1, 256, fill_body, &a);
    size_t bad = 0;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            int last = -1;
            for (int t = 0; t < T; t++)
                if (slot_of(t, G, ring) == s) last = t;
            for (int i = 0; i < kvd; i++) {
                const bf16 *c = cache + ((size_t)b * S + s) * 2 * kvd;
                if (last < 0) bad += c[i] != 0xffff || c[kvd + i] != 0xffff;
                else bad += c[i] != k[((size_t)b * T + last) * kvd + i] || c[kvd + i] != v[((size_t)b * T + last) * kvd + i];
            }
        }
    const int ok = bad == 0;
    printf("%s dec_fill KV %d hd %d T %d into S %d (G %d ring %d): elements differing %zu\n", ok ? "PASS" : "FAIL", KV,
           hd, T, S, G, ring, bad);
    ok ? np_++ : nf_++;
    free(k); free(v); free(cache);
}

int main(void) {
    t_case(4, 2, 8, 300, 37);
    t_case(4, 2, 64, 300, 200);
    t_case(4, 2, 72, 300, 299);
    t_case(9, 1, 64, 300, 200);
    t_case(9, 3, 64, 256, 255);
    t_case(2, 1, 256, 200, 150);
    t_qkv(4, 2, 64, 300, 300, 1, 200, 1); /* a plain cache: slot = position */
    t_qkv(4, 2, 64, 300, 300, 1, 7, 0);
    t_qkv(9, 3, 8, 40, 4, 36, 150, 1);   /* 4 global slots and a ring of 36: position 150 wraps */
    t_qkv(2, 1, 128, 64, 0, 64, 64, 0);  /* a pure ring, the first wrap */
    t_fill(2, 16, 300, 300, 300, 1);     /* plain */
    t_fill(3, 8, 100, 40, 4, 36);        /* the ring keeps the latest; global slots keep the first 4 */
    t_fill(1, 8, 10, 40, 4, 36);         /* a short prompt: slots past it stay as they were */
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
