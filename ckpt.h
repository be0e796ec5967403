/* ckpt.h - checkpoint directories that prove themselves: XXH64 and a MANIFEST.

   USAGE
     #define CKPT_IMPLEMENTATION      // in one .c file (study.h's implementation defines it;
     #include "ckpt.h"                // ABLATE_IMPLEMENTATION too)

     // after every file of DIR is written (and closed):
     if (ckpt_manifest_write("run/ckpt-00000100.tmp", err, sizeof err)) ...   // hashes, fsyncs, writes MANIFEST
     // before trusting DIR:
     if (ckpt_manifest_verify("run/ckpt-00000100", err, sizeof err)) ...      // names the file that differs

   DEPENDS ON: nothing (C99 and POSIX: fsync, opendir).
   LINKAGE: every public function is declared CKPTDEF (extern); define CKPT_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   MANIFEST FORMAT 2 (text, written last: MANIFEST.tmp, fsync, rename, fsync of the directory)
       ablate-manifest 2
       <16 lowercase hex digits: XXH64 of the file, seed 0> <its length in bytes> <file name>
       ...
   one line per regular file of the directory but MANIFEST itself, sorted by name. A name is
   1..CKPT_NAME_LEN-1 characters of [A-Za-z0-9._-] and not "." or "..". Verification refuses a
   missing or unreadable MANIFEST, a malformed line, a duplicate name, a listed file that is
   missing or of another length or hash, and a file of the directory the MANIFEST does not
   list; each message names the directory, the file and what was expected. Format 1 (first
   line "ablate-manifest 1", 64-hex-digit SHA-256 digests, written by ablate before XXH64) is
   refused with a message saying so: such a checkpoint cannot be verified, so a resume sets it
   aside like any other failing one.
   XXH64 (xxHash's 64-bit hash) is written here from its specification and streams (files are
   read 1 MiB at a time); the digest is the 64-bit value in hex, as `xxhsum -H1 FILE` prints
   it, so a manifest can be checked by hand. It detects corruption (cut, flipped, swapped or
   stale bytes), not deliberate forgery: it is not a cryptographic hash.
   Every function returns 0 or -1 with a message in err; none exits.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(CKPT_IMPLEMENTATION)
#define CKPT_IMPLEMENTATION
#endif
#ifndef CKPT_H
#define CKPT_H

/* linkage of every public function: extern, or static with CKPT_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef CKPTDEF
#if defined(CKPT_STATIC) || defined(ABLATE_STATIC)
#define CKPTDEF static
#else
#define CKPTDEF extern
#endif
#endif

/* fileno, fsync, mkdir: POSIX 2008, asked for before the first system header so that the
   implementation builds under a strict -std=c99 too (a file that includes a system header before
   this one, under -std=c99, defines _POSIX_C_SOURCE 200809L itself) */
#if defined(CKPT_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_MAX_FILES 32
#define CKPT_NAME_LEN 64

/* streaming XXH64: init, update over any split of the input, final (which leaves the state as
   it was: more updates may follow) */
typedef struct {
    uint64_t v[4];            /* the four accumulators */
    uint64_t seed;
    uint64_t bytes;           /* input length so far */
    unsigned char buf[32];    /* a partial stripe */
    size_t nbuf;
} CkptXxh64;

CKPTDEF void ckpt_xxh64_init(CkptXxh64 *s, uint64_t seed);
CKPTDEF void ckpt_xxh64_update(CkptXxh64 *s, const void *data, size_t n);
CKPTDEF uint64_t ckpt_xxh64_final(const CkptXxh64 *s);
/* XXH64 (seed 0) and length of a file; sync != 0 also fsyncs it (its bytes reach the disk
   before the manifest that vouches for them) */
CKPTDEF int ckpt_hash_file(const char *path, int sync, uint64_t *hash, uint64_t *len, char *err, size_t errlen);

typedef struct {
    char name[CKPT_NAME_LEN];
    uint64_t len;
    uint64_t hash;            /* XXH64, seed 0 */
} CkptEntry;
/* parses a MANIFEST's text (n bytes; `what` names it in messages): the number of entries, or -1 */
CKPTDEF int ckpt_manifest_parse(const char *text, size_t n, const char *what, CkptEntry *out, int max, char *err,
                                size_t errlen);
CKPTDEF int ckpt_manifest_write(const char *dir, char *err, size_t errlen);
CKPTDEF int ckpt_manifest_verify(const char *dir, char *err, size_t errlen);
/* fsync of a file or a directory (a rename is durable once its directory is synced) */
CKPTDEF int ckpt_fsync_path(const char *path);


#ifdef __cplusplus
}
#endif
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

/* XXH64, written from its specification (xxHash's doc/xxhash_spec.md, "XXH64 Algorithm
   Description"): five 64-bit primes; four accumulators, each taking one 8-byte lane of every
   32-byte stripe (acc = rotl(acc + lane * P2, 31) * P1); at the end the accumulators are
   rotated by 1, 7, 12, 18, summed and each merged in (acc = (acc ^ round(0, v)) * P1 + P4), or
   for an input under 32 bytes acc = seed + P5; then the length is added, the last 0..31 bytes
   are folded in 8, 4 and 1 at a time, and an avalanche (shifts 33, 29, 32 with multiplies by
   P2 and P3) mixes the result. Lanes are read little-endian whatever the host. */
#define CKPT_P1_ 0x9E3779B185EBCA87ull
#define CKPT_P2_ 0xC2B2AE3D27D4EB4Full
#define CKPT_P3_ 0x165667B19E3779F9ull
#define CKPT_P4_ 0x85EBCA77C2B2AE63ull
#define CKPT_P5_ 0x27D4EB2F165667C5ull

/* inline: without it gcc -O2 calls ckpt_le64_ once per lane, at half the speed */
static inline uint64_t ckpt_rotl_(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t ckpt_le64_(const unsigned char *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}
static inline uint64_t ckpt_le32_(const unsigned char *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}
static inline uint64_t ckpt_round_(uint64_t acc, uint64_t lane) { return ckpt_rotl_(acc + lane * CKPT_P2_, 31) * CKPT_P1_; }
static uint64_t ckpt_merge_(uint64_t acc, uint64_t v) { return (acc ^ ckpt_round_(0, v)) * CKPT_P1_ + CKPT_P4_; }
/* whole stripes of p (n a multiple of 32) into the four accumulators */
static void ckpt_stripes_(uint64_t v[4], const unsigned char *p, size_t n) {
    uint64_t a = v[0], b = v[1], c = v[2], d = v[3];
    for (const unsigned char *e = p + n; p < e; p += 32) {
        a = ckpt_round_(a, ckpt_le64_(p));
        b = ckpt_round_(b, ckpt_le64_(p + 8));
        c = ckpt_round_(c, ckpt_le64_(p + 16));
        d = ckpt_round_(d, ckpt_le64_(p + 24));
    }
    v[0] = a; v[1] = b; v[2] = c; v[3] = d;
}

CKPTDEF void ckpt_xxh64_init(CkptXxh64 *s, uint64_t seed) {
    s->v[0] = seed + CKPT_P1_ + CKPT_P2_;
    s->v[1] = seed + CKPT_P2_;
    s->v[2] = seed;
    s->v[3] = seed - CKPT_P1_;
    s->seed = seed;
    s->bytes = 0;
    s->nbuf = 0;
}

CKPTDEF void ckpt_xxh64_update(CkptXxh64 *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->bytes += n;
    if (s->nbuf) { /* fill the partial stripe first */
        size_t k = 32 - s->nbuf < n ? 32 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k; p += k; n -= k;
        if (s->nbuf < 32) return;
        ckpt_stripes_(s->v, s->buf, 32);
        s->nbuf = 0;
    }
    size_t whole = n & ~(size_t)31;
    ckpt_stripes_(s->v, p, whole);
    memcpy(s->buf, p + whole, n - whole);
    s->nbuf = n - whole;
}

CKPTDEF uint64_t ckpt_xxh64_final(const CkptXxh64 *s) {
    uint64_t h;
    if (s->bytes >= 32) {
        h = ckpt_rotl_(s->v[0], 1) + ckpt_rotl_(s->v[1], 7) + ckpt_rotl_(s->v[2], 12) + ckpt_rotl_(s->v[3], 18);
        for (int i = 0; i < 4; i++) h = ckpt_merge_(h, s->v[i]);
    } else h = s->seed + CKPT_P5_;
    h += s->bytes;
    const unsigned char *p = s->buf;
    size_t n = s->nbuf;
    for (; n >= 8; p += 8, n -= 8) h = ckpt_rotl_(h ^ ckpt_round_(0, ckpt_le64_(p)), 27) * CKPT_P1_ + CKPT_P4_;
    if (n >= 4) { h = ckpt_rotl_(h ^ ckpt_le32_(p) * CKPT_P1_, 23) * CKPT_P2_ + CKPT_P3_; p += 4; n -= 4; }
    for (; n; p++, n--) h = ckpt_rotl_(h ^ *p * CKPT_P5_, 11) * CKPT_P1_;
    h ^= h >> 33; h *= CKPT_P2_;
    h ^= h >> 29; h *= CKPT_P3_;
    h ^= h >> 32;
    return h;
}

CKPTDEF int ckpt_fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

CKPTDEF int ckpt_hash_file(const char *path, int sync, uint64_t *hash, uint64_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, errlen, "cannot open %s", path); return -1; }
    CkptXxh64 s;
    ckpt_xxh64_init(&s, 0);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    ssize_t k = 0;
    while (buf && (k = read(fd, buf, cap)) > 0) ckpt_xxh64_update(&s, buf, (size_t)k);
    int bad = !buf || k < 0 || (sync && fsync(fd));
    free(buf);
    close(fd);
    if (bad) { snprintf(err, errlen, "cannot %s %s", sync ? "read and sync" : "read", path); return -1; }
    *len = s.bytes;
    *hash = ckpt_xxh64_final(&s);
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

CKPTDEF int ckpt_manifest_parse(const char *text, size_t n, const char *what, CkptEntry *out, int max, char *err,
                                size_t errlen) {
    static const char magic[] = "ablate-manifest 2\n", old[] = "ablate-manifest 1\n";
    if (n >= sizeof old - 1 && !memcmp(text, old, sizeof old - 1)) {
        snprintf(err, errlen, "%s: manifest format 1 (SHA-256 digests, written by an older ablate); this ablate "
                 "reads format 2 (XXH64) only, so the checkpoint cannot be verified", what);
        return -1;
    }
    if (n < sizeof magic - 1 || memcmp(text, magic, sizeof magic - 1)) {
        snprintf(err, errlen, "%s: not an ablate manifest (expected a first line \"ablate-manifest 2\")", what);
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
        int ok = len > 18 && l[16] == ' ';
        for (int j = 0; ok && j < 16; j++) {
            int v = ckpt_hexval_(l[j]);
            ok = v >= 0;
            e.hash = e.hash << 4 | (uint64_t)(v & 15);
        }
        size_t p = 17, digits = 0;
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
            snprintf(err, errlen, "%s: line %d is not \"<16 lowercase hex digits> <length> <file name>\"", what, line);
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

CKPTDEF int ckpt_manifest_write(const char *dir, char *err, size_t errlen) {
    char names[CKPT_MAX_FILES][CKPT_NAME_LEN], path[4200], tmp[4200];
    int n = ckpt_list_(dir, names, CKPT_MAX_FILES, err, errlen);
    if (n < 0) return -1;
    if (n == 0) { snprintf(err, errlen, "%s: no file to list in a manifest", dir); return -1; }
    size_t cap = 32 + (size_t)n * (16 + 24 + CKPT_NAME_LEN), len = 0;
    char *text = malloc(cap);
    if (!text) { snprintf(err, errlen, "%s: out of memory", dir); return -1; }
    len += (size_t)snprintf(text, cap, "ablate-manifest 2\n");
    for (int i = 0; i < n; i++) {
        uint64_t h, flen;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (ckpt_hash_file(path, 1, &h, &flen, err, errlen)) { free(text); return -1; }
        len += (size_t)snprintf(text + len, cap - len, "%016llx %llu %s\n", (unsigned long long)h,
                                (unsigned long long)flen, names[i]);
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

CKPTDEF int ckpt_manifest_verify(const char *dir, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s has no MANIFEST (an unfinished or foreign checkpoint)", dir); return -1; }
    char text[CKPT_MAX_FILES * (64 + 24 + CKPT_NAME_LEN) + 64]; /* room for a format-1 manifest too, so that
                                                                    its refusal names the format */
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
        uint64_t h, len;
        if (ckpt_hash_file(path, 0, &h, &len, err, errlen)) return -1;
        if (h != e[j].hash || len != e[j].len) {
            snprintf(err, errlen, "%s does not match its MANIFEST: XXH64 %016llx, expected %016llx (the file "
                     "changed after it was written)", path, (unsigned long long)h, (unsigned long long)e[j].hash);
            return -1;
        }
    }
    return 0;
}

#endif /* CKPT_IMPLEMENTATION_DONE */
#endif /* CKPT_IMPLEMENTATION */
