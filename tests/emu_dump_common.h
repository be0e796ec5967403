/* tests/emu_dump_common.h - the rewriting the emu_*_dump programs share: a kernel source (an
   NVRTC string) turned into plain C for a CPU emulator (tests/emu_linear.c, emu_decode.c,
   emu_attn_pattern.c) by literal replacements, printed to stdout.

   EmuRule {from, to}: every occurrence of from becomes to, left to right, without overlaps. The
   rules apply one after another: a later rule sees what the earlier ones wrote.
   emu_dump(who, src, n, rules, n_rules): src[0..n) rewritten, written to stdout; 0, or 1 with a
   message on stderr that starts with who.
   For a source dumped once per configuration (emu_flash_dump, emu_sparse_dump: each in a
   namespace of its own): emu_defines(opt, 0) prints `#define NAME VALUE` for each -DNAME=VALUE
   of a launcher's NVRTC options, emu_defines(opt, 1) the matching `#undef`s, and
   emu_undef_all(src) `#undef NAME` for every `#define NAME` of src, so the next configuration
   starts from the source's own defaults.

   Each program includes it after gpu.h and its kernel header (GPU_IMPLEMENTATION, GPU_NVRTC_ONLY:
   the sources as strings, no driver needed). */
#ifndef EMU_DUMP_COMMON_H
#define EMU_DUMP_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *from, *to; } EmuRule;

static int emu_dump(const char *who, const char *src, size_t n, const EmuRule *rules, size_t n_rules) {
    char *buf = malloc(n + 1);
    if (!buf) { fprintf(stderr, "%s: out of memory for a source of %zu bytes\n", who, n); return 1; }
    memcpy(buf, src, n);
    for (size_t r = 0; r < n_rules; r++) {
        size_t fl = strlen(rules[r].from), tl = strlen(rules[r].to), m = 0;
        if (fl == 0) {
            fprintf(stderr, "%s: rule %zu replaces an empty string (expected a non-empty 'from')\n", who, r);
            free(buf);
            return 1;
        }
        /* at most n / fl matches, each growing the text by at most tl */
        char *out = malloc(n + (n / fl) * tl + 1);
        if (!out) { fprintf(stderr, "%s: out of memory rewriting %zu bytes (rule %zu)\n", who, n, r); free(buf); return 1; }
        for (size_t i = 0; i < n;) {
            if (i + fl <= n && !memcmp(buf + i, rules[r].from, fl)) { memcpy(out + m, rules[r].to, tl); m += tl; i += fl; }
            else out[m++] = buf[i++];
        }
        free(buf);
        buf = out;
        n = m;
    }
    int bad = fwrite(buf, 1, n, stdout) != n;
    if (bad) fprintf(stderr, "%s: writing %zu bytes to stdout failed\n", who, n);
    free(buf);
    return bad;
}

/* print `#define NAME VALUE` for each -DNAME=VALUE of opt; `#undef NAME` when undef */
static void emu_defines(const char *opt, int undef) {
    for (const char *p = opt; (p = strstr(p, "-D")); p += 2) {
        char name[64], val[64] = "";
        if (sscanf(p + 2, "%63[A-Za-z0-9_]=%63s", name, val) < 1) continue;
        if (undef) printf("#undef %s\n", name);
        else printf("#define %s %s\n", name, val[0] ? val : "1");
    }
}

/* `#undef NAME` for every `#define NAME` in src */
static void emu_undef_all(const char *src) {
    for (const char *p = src; (p = strstr(p, "#define ")); p += 8) {
        char name[64];
        if (sscanf(p + 8, "%63[A-Za-z0-9_]", name) == 1) printf("#undef %s\n", name);
    }
}

#endif /* EMU_DUMP_COMMON_H */
