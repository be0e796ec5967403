/* ckpt.h - checkpoint directories that prove themselves: SHA-256 and a MANIFEST.

   USAGE
     #define CKPT_IMPLEMENTATION      // in one .c file (study.h's implementation defines it)
     #include "ckpt.h"

     // after every file of DIR is written (and closed):
     if (ckpt_manifest_write("run/ckpt-00000100.tmp", err, sizeof err)) ...   // hashes, fsyncs, writes MANIFEST
     // before trusting DIR:
     if (ckpt_manifest_verify("run/ckpt-00000100", err, sizeof err)) ...      // names the file that differs

   MANIFEST FORMAT (text, written last: MANIFEST.tmp, fsync, rename, fsync of the directory)
       ablate-manifest 1
       <64 hex digits: SHA-256 of the file> <its length in bytes> <file name>
       ...
   one line per regular file of the directory but MANIFEST itself, sorted by name. A name is
   1..CKPT_NAME_LEN-1 characters of [A-Za-z0-9._-] and not "." or "..". Verification refuses a
   missing or unreadable MANIFEST, a malformed line, a duplicate name, a listed file that is
   missing or of another length or hash, and a file of the directory the MANIFEST does not
   list; each message names the directory, the file and what was expected.
   SHA-256 (FIPS 180-4) is written here from the standard; `sha256sum FILE` prints the same
   digests, so a manifest can be checked by hand.
   Every function returns 0 or -1 with a message in err; none exits.
*/
#ifndef CKPT_H
#define CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAX_FILES 32
#define CKPT_NAME_LEN 64

typedef struct {
    uint32_t h[8];
    uint64_t bytes;           /* message length so far */
    unsigned char buf[64];    /* a partial block */
    size_t nbuf;
} CkptSha256;

void ckpt_sha256_init(CkptSha256 *s);
void ckpt_sha256_update(CkptSha256 *s, const void *data, size_t n);
void ckpt_sha256_final(CkptSha256 *s, unsigned char out[32]);
/* SHA-256 and length of a file; sync != 0 also fsyncs it (its bytes reach the disk before the
   manifest that vouches for them) */
int ckpt_hash_file(const char *path, int sync, unsigned char digest[32], uint64_t *len, char *err, size_t errlen);

typedef struct {
    char name[CKPT_NAME_LEN];
    uint64_t len;
    unsigned char digest[32];
} CkptEntry;
/* parses a MANIFEST's text (n bytes; `what` names it in messages): the number of entries, or -1 */
int ckpt_manifest_parse(const char *text, size_t n, const char *what, CkptEntry *out, int max, char *err,
                        size_t errlen);
int ckpt_manifest_write(const char *dir, char *err, size_t errlen);
int ckpt_manifest_verify(const char *dir, char *err, size_t errlen);
/* fsync of a file or a directory (a rename is durable once its directory is synced) */
int ckpt_fsync_path(const char *path);

#endif /* CKPT_H */

#ifdef CKPT_IMPLEMENTATION
#ifndef CKPT_IMPLEMENTATION_DONE
#define CKPT_IMPLEMENTATION_DONE

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the cube roots of the
   first 64 primes */
static const uint32_t ckpt_k_[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ckpt_ror_(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }

static void ckpt_sha256_block_(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ckpt_ror_(w[t - 15], 7) ^ ckpt_ror_(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ckpt_ror_(w[t - 2], 17) ^ ckpt_ror_(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = k + (ckpt_ror_(e, 6) ^ ckpt_ror_(e, 11) ^ ckpt_ror_(e, 25)) + ((e & f) ^ (~e & g)) + ckpt_k_[t] + w[t];
        uint32_t t2 = (ckpt_ror_(a, 2) ^ ckpt_ror_(a, 13) ^ ckpt_ror_(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void ckpt_sha256_init(CkptSha256 *s) {
    /* section 5.3.3: the fractional parts of the square roots of the first 8 primes */
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->bytes = 0;
    s->nbuf = 0;
}

void ckpt_sha256_update(CkptSha256 *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->bytes += n;
    if (s->nbuf) { /* fill the partial block first */
        size_t k = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k; p += k; n -= k;
        if (s->nbuf < 64) return;
        ckpt_sha256_block_(s->h, s->buf);
        s->nbuf = 0;
    }
    for (; n >= 64; p += 64, n -= 64) ckpt_sha256_block_(s->h, p);
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

void ckpt_sha256_final(CkptSha256 *s, unsigned char out[32]) {
    uint64_t bits = s->bytes * 8;
    unsigned char pad[72] = {0x80};
    size_t k = (s->nbuf < 56 ? 56 : 120) - s->nbuf; /* the 0x80 and zeros up to 8 bytes before a block end */
    for (int i = 0; i < 8; i++) pad[k + i] = (unsigned char)(bits >> (56 - 8 * i));
    ckpt_sha256_update(s, pad, k + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

int ckpt_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ckpt_hash_file(const char *path, int sync, unsigned char digest[32], uint64_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, errlen, "cannot open %s", path); return -1; }
    CkptSha256 s;
    ckpt_sha256_init(&s);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    ssize_t k = 0;
    while (buf && (k = read(fd, buf, cap)) > 0) ckpt_sha256_update(&s, buf, (size_t)k);
    int bad = !buf || k < 0 || (sync && fsync(fd));
    free(buf);
    close(fd);
    if (bad) { snprintf(err, errlen, "cannot %s %s", sync ? "read and sync" : "read", path); return -1; }
    *len = s.bytes; /* before final(), which counts its padding in */
    ckpt_sha256_final(&s, digest);
    return 0;
}

static int ckpt_name_ok_(const char *n) {
    size_t k = strlen(n);
    if (k == 0 || k >= CKPT_NAME_LEN || !strcmp(n, ".") || !strcmp(n, "..")) return 0;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') || (*n >= '0' && *n <= '9') || *n == '.' ||
              *n == '_' || *n == '-'))
            return 0;
    return 1;
}

static int ckpt_hexval_(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ckpt_manifest_parse(const char *text, size_t n, const char *what, CkptEntry *out, int max, char *err,
                        size_t errlen) {
    static const char magic[] = "ablate-manifest 1\n";
    if (n < sizeof magic - 1 || memcmp(text, magic, sizeof magic - 1)) {
        snprintf(err, errlen, "%s: not an ablate manifest (expected a first line \"ablate-manifest 1\")", what);
        return -1;
    }
    size_t i = sizeof magic - 1;
    int count = 0;
    for (int line = 2; i < n; line++) {
        const char *l = text + i;
        const char *nl = memchr(l, '\n', n - i);
        if (!nl) { snprintf(err, errlen, "%s: line %d does not end with a newline (a cut file?)", what, line); return -1; }
        size_t len = (size_t)(nl - l);
        i += len + 1;
        CkptEntry e;
        memset(&e, 0, sizeof e);
        int ok = len > 66 && l[64] == ' ';
        for (int j = 0; ok && j < 32; j++) {
            int hi = ckpt_hexval_(l[2 * j]), lo = ckpt_hexval_(l[2 * j + 1]);
            ok = hi >= 0 && lo >= 0;
            e.digest[j] = (unsigned char)(hi * 16 + lo);
        }
        size_t p = 65, digits = 0;
        for (; ok && p < len && l[p] >= '0' && l[p] <= '9'; p++, digits++) {
            ok = e.len <= (UINT64_MAX - 9) / 10 && digits < 19;
            e.len = e.len * 10 + (uint64_t)(l[p] - '0');
        }
        ok = ok && digits > 0 && p < len && l[p] == ' ' && len - p - 1 < CKPT_NAME_LEN;
        if (ok) {
            memcpy(e.name, l + p + 1, len - p - 1);
            e.name[len - p - 1] = 0;
            ok = ckpt_name_ok_(e.name) && strlen(e.name) == len - p - 1;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: line %d is not \"<64 lowercase hex digits> <length> <file name>\"", what, line);
            return -1;
        }
        for (int j = 0; j < count; j++)
            if (!strcmp(out[j].name, e.name)) {
                snprintf(err, errlen, "%s: line %d lists %s a second time", what, line, e.name);
                return -1;
            }
        if (count == max) { snprintf(err, errlen, "%s: more than %d files listed", what, max); return -1; }
        out[count++] = e;
    }
    if (!count) { snprintf(err, errlen, "%s: lists no file", what); return -1; }
    return count;
}

static int ckpt_cmp_names_(const void *a, const void *b) { return strcmp(a, b); }

/* the regular files of dir but MANIFEST (and its .tmp), sorted; -1 with a message */
static int ckpt_list_(const char *dir, char names[][CKPT_NAME_LEN], int max, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) { snprintf(err, errlen, "cannot open checkpoint directory %s", dir); return -1; }
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) && !rc) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "MANIFEST") ||
            !strcmp(e->d_name, "MANIFEST.tmp"))
            continue;
        if (!ckpt_name_ok_(e->d_name)) {
            snprintf(err, errlen, "%s: file name '%.80s' is not a checkpoint file's (expected [A-Za-z0-9._-], "
                     "under %d characters)", dir, e->d_name, CKPT_NAME_LEN);
            rc = -1;
        } else if (n == max) {
            snprintf(err, errlen, "%s: more than %d files", dir, max);
            rc = -1;
        } else memcpy(names[n++], e->d_name, strlen(e->d_name) + 1); /* checked: shorter than CKPT_NAME_LEN */
    }
    closedir(d);
    if (rc) return -1;
    qsort(names, (size_t)n, CKPT_NAME_LEN, ckpt_cmp_names_);
    return n;
}

static void ckpt_hex_(const unsigned char d[32], char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int ckpt_manifest_write(const char *dir, char *err, size_t errlen) {
    char names[CKPT_MAX_FILES][CKPT_NAME_LEN], path[4200], tmp[4200];
    int n = ckpt_list_(dir, names, CKPT_MAX_FILES, err, errlen);
    if (n < 0) return -1;
    if (n == 0) { snprintf(err, errlen, "%s: no file to list in a manifest", dir); return -1; }
    size_t cap = 32 + (size_t)n * (64 + 24 + CKPT_NAME_LEN), len = 0;
    char *text = malloc(cap);
    if (!text) { snprintf(err, errlen, "%s: out of memory", dir); return -1; }
    len += (size_t)snprintf(text, cap, "ablate-manifest 1\n");
    for (int i = 0; i < n; i++) {
        unsigned char d[32];
        uint64_t flen;
        char hex[65];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (ckpt_hash_file(path, 1, d, &flen, err, errlen)) { free(text); return -1; }
        ckpt_hex_(d, hex);
        len += (size_t)snprintf(text + len, cap - len, "%s %llu %s\n", hex, (unsigned long long)flen, names[i]);
    }
    snprintf(tmp, sizeof tmp, "%s/MANIFEST.tmp", dir);
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(text, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (f ? fclose(f) == 0 : 0) && ok;
    free(text);
    if (!ok || rename(tmp, path) || ckpt_fsync_path(dir)) {
        remove(tmp);
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

int ckpt_manifest_verify(const char *dir, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s has no MANIFEST (an unfinished or foreign checkpoint)", dir); return -1; }
    char text[CKPT_MAX_FILES * (64 + 24 + CKPT_NAME_LEN) + 64];
    size_t n = fread(text, 1, sizeof text, f);
    int too_long = n == sizeof text;
    fclose(f);
    if (too_long) { snprintf(err, errlen, "%s: over %zu bytes, longer than any manifest", path, sizeof text - 1); return -1; }
    CkptEntry e[CKPT_MAX_FILES];
    int ne = ckpt_manifest_parse(text, n, path, e, CKPT_MAX_FILES, err, errlen);
    if (ne < 0) return -1;
    char names[CKPT_MAX_FILES][CKPT_NAME_LEN];
    int nf = ckpt_list_(dir, names, CKPT_MAX_FILES, err, errlen);
    if (nf < 0) return -1;
    for (int i = 0; i < nf; i++) {
        int listed = 0;
        for (int j = 0; j < ne && !listed; j++) listed = !strcmp(names[i], e[j].name);
        if (!listed) { snprintf(err, errlen, "%s/%s is not in its MANIFEST (a file added after it was written)", dir, names[i]); return -1; }
    }
    for (int j = 0; j < ne; j++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e[j].name);
        if (stat(path, &st) || !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s is missing (its MANIFEST lists it)", path);
            return -1;
        }
        if ((uint64_t)st.st_size != e[j].len) {
            snprintf(err, errlen, "%s is %llu bytes, its MANIFEST says %llu (cut or extended)", path,
                     (unsigned long long)st.st_size, (unsigned long long)e[j].len);
            return -1;
        }
        unsigned char d[32];
        uint64_t len;
        if (ckpt_hash_file(path, 0, d, &len, err, errlen)) return -1;
        if (memcmp(d, e[j].digest, 32) || len != e[j].len) {
            char have[65], want[65];
            ckpt_hex_(d, have);
            ckpt_hex_(e[j].digest, want);
            snprintf(err, errlen, "%s does not match its MANIFEST: SHA-256 %.16s..., expected %.16s... (the file "
                     "changed after it was written)", path, have, want);
            return -1;
        }
    }
    return 0;
}

#endif /* CKPT_IMPLEMENTATION_DONE */
#endif /* CKPT_IMPLEMENTATION */
