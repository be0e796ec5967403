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
   O(1) values). Ends with "N passed, N failed". */
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

int main(void) {
    t_case(4, 2, 8, 300, 37);
    t_case(4, 2, 64, 300, 200);
    t_case(4, 2, 72, 300, 299);
    t_case(9, 1, 64, 300, 200);
    t_case(9, 3, 64, 256, 255);
    t_case(2, 1, 256, 200, 150);
    printf("%d passed, %d failed\n", np_, nf_);
    return nf_ != 0;
}
