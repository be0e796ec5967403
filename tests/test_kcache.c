/* test_kcache.c - gpu.h's on-disk kernel cache and parallel compiles, without a GPU.

   Built with GPU_NVRTC_ONLY (libnvrtc, no driver): SHA-256 against the FIPS 180-2 vectors; the
   key changes with each of its inputs; a write/read round trip; a missing file, a file holding
   another key, a truncated file, a corrupt payload or checksum and a longer file are misses, and
   a rewrite makes the key hit again; an unwritable directory is an error message, not a crash;
   two processes writing one key while a third reads never show a partial file; and
   gpu_compile_parallel's PTX equals gpu_compile_ptx's, one failing job reporting its log; and
   gpu_ptx_next_entry / gpu_ptx_entries name and count a PTX text's kernels.
   Ends with "N passed, N failed". */
#define GPU_IMPLEMENTATION
#define GPU_NVRTC_ONLY
#include "gpu.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int n_pass, n_fail;

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-62s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

static void hex(const unsigned char *p, int n, char *out) {
    for (int i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

static int sha_is(const void *data, size_t n, const char *want) {
    unsigned char d[32];
    char h[65];
    gpu_sha256(data, n, d);
    hex(d, 32, h);
    return !strcmp(h, want);
}

static void path_of(char *path, size_t n, const char *dir, const unsigned char *key) {
    char h[65];
    hex(key, 32, h);
    snprintf(path, n, "%s/%s.bin", dir, h);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? -1 : (long)st.st_size;
}

/* flip one byte of the file at offset off */
static void flip(const char *path, long off) {
    FILE *f = fopen(path, "r+b");
    if (!f) return;
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

/* the files in dir whose name contains part */
static int count_files(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static void test_sha(void) {
    report(sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256 of \"\"", NULL);
    report(sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 of \"abc\"",
           NULL);
    const char *m56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* padding spills a block */
    report(sha_is(m56, strlen(m56), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
           "sha256 of the 56-byte vector", NULL);
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    report(sha_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
           "sha256 of a million 'a'", NULL);
    free(a);
}

/* the .entry scanner the compile checks use to say which module holds which kernel */
static void test_entries(void) {
    static const char ptx[] = ".visible .entry k_one(\n\t.param .u64 a\n)\n{\n}\n"
                              ".visible .entry k_two_long_name(\n)\n{\n}\n.func helper()\n";
    char a[32] = "", b[32] = "", c[4] = "";
    const char *e = gpu_ptx_next_entry(ptx, a, sizeof a);
    e = e ? gpu_ptx_next_entry(e, b, sizeof b) : NULL;
    int ok = e && !strcmp(a, "k_one") && !strcmp(b, "k_two_long_name") && !gpu_ptx_next_entry(e, b, sizeof b);
    gpu_ptx_next_entry(ptx, c, sizeof c); /* truncated to fit */
    ok &= !strcmp(c, "k_o") && gpu_ptx_entries(ptx) == 2 && gpu_ptx_entries(NULL) == 0 &&
          gpu_ptx_entries(".func f()\n") == 0 && !gpu_ptx_next_entry(NULL, a, sizeof a);
    report(ok, "ptx entries: names in order, truncated to the buffer, counted; none in NULL or a .func", a);
}

static void test_key(void) {
    static const char src[] = "extern \"C\" __global__ void k(float *x) { x[0] = 1; }";
    static const char src2[] = "extern \"C\" __global__ void k(float *x) { x[0] = 2; }";
    unsigned char k0[32], k1[32];
    gpu_kcache_key(k0, src, "-DA=1", "sm_90", NULL, 13000);
    gpu_kcache_key(k1, src, "-DA=1", "sm_90", NULL, 13000);
    report(!memcmp(k0, k1, 32), "key: the same inputs give the same key", NULL);
    struct { const char *what, *src, *opt, *arch, *home; int drv; } v[] = {
        {"source text", src2, "-DA=1", "sm_90", NULL, 13000},
        {"options", src, "-DA=2", "sm_90", NULL, 13000},
        {"options NULL vs \"-DA=1\"", src, NULL, "sm_90", NULL, 13000},
        {"arch", src, "-DA=1", "sm_80", NULL, 13000},
        {"cuda_home", src, "-DA=1", "sm_90", "/opt/cuda", 13000},
        {"driver version", src, "-DA=1", "sm_90", NULL, 12080},
    };
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char name[96];
        gpu_kcache_key(k1, v[i].src, v[i].opt, v[i].arch, v[i].home, v[i].drv);
        snprintf(name, sizeof name, "key: another %s gives another key", v[i].what);
        report(memcmp(k0, k1, 32) != 0, name, NULL);
    }
    /* NULL options and "" compile alike (gpu_nvrtc_ treats them alike): one key */
    gpu_kcache_key(k0, src, NULL, "sm_90", NULL, 1);
    gpu_kcache_key(k1, src, "", "sm_90", NULL, 1);
    report(!memcmp(k0, k1, 32), "key: options NULL and \"\" are one key", NULL);
}

static void test_files(const char *root) {
    char dir[512], path[1024], err[512], detail[600];
    snprintf(dir, sizeof dir, "%s/a/b/kernels", root); /* missing parents are created */
    unsigned char ka[32], kb[32];
    gpu_kcache_key(ka, "source a", NULL, "sm_90", NULL, 1);
    gpu_kcache_key(kb, "source b", NULL, "sm_90", NULL, 1);
    const char img[] = "a cubin's bytes \0 with a NUL inside";
    size_t n = sizeof img;
    char *got = NULL;
    size_t got_n = 0;

    report(gpu_kcache_read(dir, ka, &got, &got_n) == 1 && !got, "read: no file is a miss (1)", NULL);
    int w = gpu_kcache_write(dir, ka, img, n, err, sizeof err);
    report(w == 0, "write: into a directory it creates with its parents", w ? err : NULL);
    int r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == 0 && got_n == n && !memcmp(got, img, n) && got[n] == 0, "read: round trip, bytes equal, NUL after",
           NULL);
    free(got);
    path_of(path, sizeof path, dir, ka);
    report(file_size(path) == GPU_KCACHE_HEADER + (long)n, "file: header + payload bytes", NULL);
    report(count_files(dir, ".tmp.") == 0, "write: no temporary file left", NULL);

    /* the file of key a under key b's name: the header's key differs */
    char pb[1024], cmd[2200];
    path_of(pb, sizeof pb, dir, kb);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, pb);
    r = system(cmd) == 0 ? gpu_kcache_read(dir, kb, &got, &got_n) : 99;
    report(r == -1 && !got, "read: a file holding another key is a miss (-1)", NULL);

    /* truncated: the payload cut short, then the header too */
    if (truncate(path, GPU_KCACHE_HEADER + (long)n - 3) == 0) r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: a truncated payload is a miss (-1)", NULL);
    if (truncate(path, 20) == 0) r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: a truncated header is a miss (-1)", NULL);
    if (truncate(path, 0) == 0) r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: an empty file is a miss (-1)", NULL);
    w = gpu_kcache_write(dir, ka, img, n, err, sizeof err);
    r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(w == 0 && r == 0 && got_n == n, "write: rewriting a bad file makes it hit again", NULL);
    free(got);

    flip(path, GPU_KCACHE_HEADER + 5);
    r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: a corrupt payload byte is a miss (-1)", NULL);
    gpu_kcache_write(dir, ka, img, n, err, sizeof err);
    flip(path, 48 + 7); /* the checksum */
    r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: a corrupt checksum is a miss (-1)", NULL);
    gpu_kcache_write(dir, ka, img, n, err, sizeof err);
    flip(path, 2); /* the magic */
    r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: a wrong magic is a miss (-1)", NULL);
    gpu_kcache_write(dir, ka, img, n, err, sizeof err);
    FILE *f = fopen(path, "ab");
    if (f) { fputc('x', f); fclose(f); }
    r = gpu_kcache_read(dir, ka, &got, &got_n);
    report(r == -1 && !got, "read: bytes after the payload are a miss (-1)", NULL);

    /* unwritable: the directory's parent is a regular file (fails even for root) */
    char file[600], bad[700];
    snprintf(file, sizeof file, "%s/plainfile", root);
    f = fopen(file, "w");
    if (f) fclose(f);
    snprintf(bad, sizeof bad, "%s/kernels", file);
    err[0] = 0;
    w = gpu_kcache_write(bad, ka, img, n, err, sizeof err);
    snprintf(detail, sizeof detail, "(%s)", err);
    report(w == -1 && strstr(err, bad) != NULL, "write: a directory under a file fails with its path", detail);
    report(gpu_kcache_read(bad, ka, &got, &got_n) != 0 && !got, "read: there, a miss", NULL);
    /* a read-only directory (root writes anyway: then there is nothing to check) */
    char ro[600];
    snprintf(ro, sizeof ro, "%s/readonly", root);
    mkdir(ro, 0555);
    chmod(ro, 0555);
    if (geteuid() != 0) {
        err[0] = 0;
        w = gpu_kcache_write(ro, ka, img, n, err, sizeof err);
        snprintf(detail, sizeof detail, "(%s)", err);
        report(w == -1 && strstr(err, ro) != NULL, "write: a read-only directory fails with its path", detail);
    } else {
        printf("note: running as root, which writes into a mode 0555 directory: that case is not checked\n");
    }
    chmod(ro, 0755);
}

/* two writers of one key and a reader at once: the reader sees the whole file or none */
static void test_concurrent(const char *root) {
    char dir[512], err[512];
    snprintf(dir, sizeof dir, "%s/shared", root);
    unsigned char key[32];
    gpu_kcache_key(key, "shared source", "-DX=1", "sm_90", NULL, 1);
    size_t n = 1 << 20; /* big enough that a write takes several system calls */
    char *img = malloc(n);
    for (size_t i = 0; i < n; i++) img[i] = (char)(i * 2654435761u >> 13);
    pid_t kids[2];
    for (int c = 0; c < 2; c++) {
        kids[c] = fork();
        if (kids[c] == 0) {
            int bad = 0;
            for (int i = 0; i < 60; i++) bad += gpu_kcache_write(dir, key, img, n, err, sizeof err) != 0;
            _exit(bad ? 1 : 0);
        }
    }
    int reads = 0, hits = 0, invalid = 0, wrong = 0;
    for (;;) {
        char *got = NULL;
        size_t got_n = 0;
        int r = gpu_kcache_read(dir, key, &got, &got_n);
        reads++;
        hits += r == 0;
        invalid += r == -1;
        wrong += r == 0 && (got_n != n || memcmp(got, img, n));
        free(got);
        int st, done = 0;
        for (int c = 0; c < 2; c++)
            if (kids[c] && waitpid(kids[c], &st, WNOHANG) == kids[c]) {
                if (!WIFEXITED(st) || WEXITSTATUS(st)) invalid += 1000; /* a writer failed */
                kids[c] = 0;
            }
        for (int c = 0; c < 2; c++) done += kids[c] == 0;
        if (done == 2) break;
    }
    char *got = NULL;
    size_t got_n = 0;
    int r = gpu_kcache_read(dir, key, &got, &got_n);
    char detail[160];
    snprintf(detail, sizeof detail, "(%d reads while writing: %d hits, %d invalid, %d wrong bytes)", reads, hits,
             invalid, wrong);
    report(invalid == 0 && wrong == 0 && r == 0 && got_n == n && !memcmp(got, img, n),
           "two processes writing one key: never a partial file", detail);
    report(count_files(dir, ".tmp.") == 0 && count_files(dir, ".bin") == 1, "two processes: one file, no temporaries",
           NULL);
    free(got);
    free(img);
}

static void test_parallel(void) {
    static const char s1[] = "extern \"C\" __global__ void k1(float *x) { x[threadIdx.x] *= 2.0f; }";
    static const char s2[] = "#include \"ablate_common.cuh\"\n"
                             "extern \"C\" __global__ void k2(float *x) { x[threadIdx.x] += VAL; }";
    static const char bad[] = "extern \"C\" __global__ void k3(float *x) { x[0] = undeclared_name; }";
    GpuCompileJob jobs[4];
    memset(jobs, 0, sizeof jobs);
    const char *src[4] = {s1, s2, bad, s2}, *opt[4] = {NULL, "-DVAL=1.0f", NULL, "-DVAL=3.0f"};
    for (int i = 0; i < 4; i++) {
        jobs[i].source = src[i];
        jobs[i].options = opt[i];
        jobs[i].arch = "compute_80";
    }
    int failed = gpu_compile_parallel(jobs, 4, 2);
    int same = 1;
    for (int i = 0; i < 4; i++) {
        if (i == 2) continue;
        char *ptx = NULL;
        if (gpu_compile_ptx(src[i], opt[i], "compute_80", &ptx, NULL) != 0 || !jobs[i].image ||
            strcmp(ptx, jobs[i].image))
            same = 0;
        free(ptx);
    }
    report(failed == 1 && jobs[2].rc == -1 && jobs[0].rc == 0 && jobs[1].rc == 0 && jobs[3].rc == 0,
           "gpu_compile_parallel: 2 threads, 4 jobs, the bad one fails", NULL);
    report(same, "gpu_compile_parallel: each PTX equals a serial compile's", NULL);
    report(jobs[2].log && strstr(jobs[2].log, "undeclared_name"), "gpu_compile_parallel: the failure's log names it",
           NULL);
    for (int i = 0; i < 4; i++) { free(jobs[i].image); free(jobs[i].log); }
}

int main(void) {
    char root[] = "/tmp/test_kcache_XXXXXX";
    if (!mkdtemp(root)) { perror("mkdtemp"); return 1; }
    test_sha();
    test_entries();
    test_key();
    test_files(root);
    test_concurrent(root);
    test_parallel();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", root);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
