/* tests/bench_hash.c - the speed of ckpt.h's file hash (every checkpoint file is hashed twice:
   when its MANIFEST is written and when the checkpoint is read back).

     make tests/bench_hash && tests/bench_hash        (not part of make test)

   Hashes 256 MiB of pseudo-random bytes in memory in 1 MiB updates (as ckpt_hash_file feeds its
   reads), best of 3, then the same bytes as a file through ckpt_hash_file (page cache: read()
   plus the hash). Prints MB/s (10^6 bytes per second). */
#define CKPT_IMPLEMENTATION
#include "ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    const size_t n = (size_t)256 << 20, chunk = (size_t)1 << 20;
    unsigned char *b = malloc(n);
    if (!b) { fprintf(stderr, "bench_hash: out of memory\n"); return 1; }
    uint64_t x = 0x0123456789ABCDEFull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (unsigned char)(x >> 56);
    }
    double best = 1e30;
    uint64_t h = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        CkptXxh64 s;
        ckpt_xxh64_init(&s, 0);
        for (size_t o = 0; o < n; o += chunk) ckpt_xxh64_update(&s, b + o, chunk);
        h = ckpt_xxh64_final(&s);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("xxh64, memory: %zu MiB in %.3f s: %.0f MB/s (%016llx)\n", n >> 20, best, (double)n / best / 1e6,
           (unsigned long long)h);
    const char *path = "build/bench_hash.bin";
    FILE *f = (system("mkdir -p build"), fopen(path, "wb"));
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) { fprintf(stderr, "bench_hash: cannot write %s\n", path); return 1; }
    char err[300];
    uint64_t len;
    best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        if (ckpt_hash_file(path, 0, &h, &len, err, sizeof err)) { fprintf(stderr, "bench_hash: %s\n", err); return 1; }
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("xxh64, ckpt_hash_file (page cache): %.3f s: %.0f MB/s\n", best, (double)n / best / 1e6);
    remove(path);
    free(b);
    return 0;
}
