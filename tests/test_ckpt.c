/* tests/test_ckpt.c - checkpoints that prove themselves (ckpt.h, smollm.h's loader, study.h's resume).

     cc -O2 -I. -fopenmp -DABLATE_NO_CUDA tests/test_ckpt.c -o tests/test_ckpt -lm
     tests/test_ckpt [path/to/ablate-cpu]       (make test runs it; default ./ablate-cpu)

   SHA-256 against FIPS 180-4's examples; MANIFEST writing, parsing and every refusal; the
   safetensors header checks (flipped bytes, shifted and swapped offsets, a 1e30 and a NaN
   weight, dtype, shape, truncated and extended files, unknown and repeated members); and,
   through the CLI with the hidden --test-die-at kill points, each reproducer of the hostile
   test: a wrong step in train.state, batch or heads changed in study.ini before --resume, a
   corrupt newest checkpoint (fallback to the previous one, which is never deleted before a
   newer one is verified), every checkpoint corrupt (a fresh start), kills before the first
   checkpoint, and a kill between summary.json and the final prune.
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define OPS_IMPLEMENTATION
#define ATTN_IMPLEMENTATION
#define SMOLLM_IMPLEMENTATION
#define TRAIN_IMPLEMENTATION
#define DATA_IMPLEMENTATION
#define STUDY_IMPLEMENTATION
#include "../study.h"

#include <sys/wait.h>

static int n_pass, n_fail;
static const char *ablate_bin = "./ablate-cpu";
static const char *tiny = "--layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --eval-batches 1 --device cpu "
                          "--data /usr/share/common-licenses/GPL-3 --quiet";
static char out[1 << 16]; /* the last command's stdout and stderr */

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-62s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

/* runs a shell command, its output into out; its exit status, 128 + the signal if killed */
static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "exec 2>&1; %s", cmd); /* the shell's own "Killed" too */
    FILE *p = popen(full, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    int st = p ? pclose(p) : -1;
    return st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long k = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)k + 1);
    *n = fread(b, 1, (size_t)k, f);
    b[*n] = 0;
    fclose(f);
    return b;
}
static int exists(const char *path) { struct stat st; return stat(path, &st) == 0; }
static double final_val_loss(const char *summary) {
    size_t n;
    char *t = slurp(summary, &n);
    const char *p = t ? strstr(t, "\"final_val_loss\":") : NULL;
    double v = p ? atof(p + 17) : NAN;
    free(t);
    return v;
}

/* ---- SHA-256 ---- */
static void hex(const unsigned char d[32], char o[65]) { for (int i = 0; i < 32; i++) sprintf(o + 2 * i, "%02x", d[i]); }
static void test_sha256(void) {
    static const struct { const char *msg, *want; } v[] = { /* FIPS 180-4 examples (NIST CSRC) */
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"}};
    int ok = 1;
    char h[65], why[200] = "";
    for (int i = 0; i < 3; i++) {
        CkptSha256 s;
        unsigned char d[32];
        ckpt_sha256_init(&s);
        for (const char *p = v[i].msg; *p; p++) ckpt_sha256_update(&s, p, 1); /* byte by byte: the buffering */
        ckpt_sha256_final(&s, d);
        hex(d, h);
        if (strcmp(h, v[i].want)) { ok = 0; snprintf(why, sizeof why, "'%s': %s", v[i].msg, h); }
    }
    CkptSha256 s; /* a million 'a', in blocks of 1000 */
    unsigned char d[32], a[1000];
    memset(a, 'a', sizeof a);
    ckpt_sha256_init(&s);
    for (int i = 0; i < 1000; i++) ckpt_sha256_update(&s, a, sizeof a);
    ckpt_sha256_final(&s, d);
    hex(d, h);
    if (strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")) { ok = 0; snprintf(why, sizeof why, "1e6 a: %s", h); }
    report(ok, "sha256: FIPS 180-4 examples, byte-wise and blockwise", why);
}

/* ---- MANIFEST ---- */
static void test_manifest(void) {
    const char *d = "build/test_ckpt/man";
    char err[600] = "", p[300];
    sh("rm -rf %s && mkdir -p %s && printf 'hello' > %s/a.bin && printf 'world!' > %s/b.txt", d, d, d, d);
    int rc = ckpt_manifest_write(d, err, sizeof err) || ckpt_manifest_verify(d, err, sizeof err);
    report(!rc, "manifest: written and verified", rc ? err : NULL);
    snprintf(p, sizeof p, "%s/MANIFEST", d);
    size_t n;
    char *t = slurp(p, &n);
    report(t && strstr(t, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 a.bin\n") != NULL,
           "manifest: sha256sum's digest and the length per file", t);
    free(t);
    sh("printf 'jello' > %s/a.bin", d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "a.bin does not match its MANIFEST"), "manifest: a changed byte is refused, naming the file", err);
    sh("printf 'hello!' > %s/a.bin", d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "a.bin is 6 bytes, its MANIFEST says 5"), "manifest: another length is refused", err);
    sh("printf 'hello' > %s/a.bin && printf x > %s/extra", d, d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "extra is not in its MANIFEST"), "manifest: an unlisted file is refused", err);
    sh("rm %s/extra %s/b.txt", d, d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "b.txt is missing"), "manifest: a missing file is refused", err);
    sh("rm %s/MANIFEST", d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "no MANIFEST"), "manifest: a directory without one is refused", err);
    static const struct { const char *text, *want; } bad[] = {
        {"", "not an ablate manifest"},
        {"ablate-manifest 1\n", "lists no file"},
        {"ablate-manifest 1\nzz 5 a\n", "line 2 is not"},
        {"ablate-manifest 1\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 ../a\n", "line 2 is not"},
        {"ablate-manifest 1\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 99999999999999999999 a\n", "line 2 is not"},
        {"ablate-manifest 1\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 a", "does not end with a newline"},
        {"ablate-manifest 1\n2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 a\n"
         "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824 5 a\n", "a second time"}};
    int ok = 1;
    char why[700] = "";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CkptEntry e[4];
        err[0] = 0;
        if (ckpt_manifest_parse(bad[i].text, strlen(bad[i].text), "M", e, 4, err, sizeof err) >= 0 || !strstr(err, bad[i].want)) {
            ok = 0;
            snprintf(why, sizeof why, "case %zu: %s", i, err);
        }
    }
    report(ok, "manifest: malformed manifests refused with the line", why);
}

/* ---- the safetensors header against the model ---- */
typedef struct { char *hdr; uint64_t hl; char *data; size_t dlen; } StFile;
static int st_read(const char *path, StFile *s) {
    size_t n;
    char *b = slurp(path, &n);
    if (!b || n < 8) return -1;
    memcpy(&s->hl, b, 8);
    s->hdr = calloc(s->hl + 64, 1);
    memcpy(s->hdr, b + 8, s->hl);
    s->dlen = n - 8 - s->hl;
    s->data = malloc(s->dlen + 64);
    memcpy(s->data, b + 8 + s->hl, s->dlen);
    free(b);
    return 0;
}
static void st_write(const char *path, const char *hdr, const char *data, size_t dlen) {
    FILE *f = fopen(path, "wb");
    uint64_t hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    fwrite(data, 1, dlen, f);
    fclose(f);
}
/* hdr with the first `from` replaced by `to` */
static char *subst(const char *hdr, const char *from, const char *to) {
    const char *p = strstr(hdr, from);
    if (!p) return NULL;
    char *r = malloc(strlen(hdr) + strlen(to) + 1);
    sprintf(r, "%.*s%s%s", (int)(p - hdr), hdr, to, p + strlen(from));
    return r;
}

static const char *run_dir = "build/test_ckpt/s1/attn-mha_seed1337";

static void test_header(void) {
    /* a checkpoint to work on: steps 4, one per step, killed once ckpt-3 is verified */
    int st = sh("rm -rf build/test_ckpt/s1 && %s run --axes attn=mha %s --steps 4 --checkpoint-every 1 --out "
                "build/test_ckpt/s1 --test-die-at checkpoint-written:3", ablate_bin, tiny);
    char src[300], err[600] = "";
    snprintf(src, sizeof src, "%s/ckpt-00000003/model.safetensors", run_dir);
    report(st == 137 && exists(src), "test hook: --test-die-at checkpoint-written:3 kills after ckpt-3", out);
    SmolConfig cfg;
    int B, T;
    if (smollm_read_config(src, &cfg, &B, &T, err, sizeof err)) { report(0, "header: read the configuration", err); return; }
    SmolModel m;
    if (smollm_init(&m, &cfg, NULL, B, T, err, sizeof err)) { report(0, "header: build the model", err); return; }
    StFile s = {0};
    if (st_read(src, &s)) { report(0, "header: read the checkpoint", src); return; }
    const char *t = "build/test_ckpt/t.safetensors";
    st_write(t, s.hdr, s.data, s.dlen);
    int rc = smollm_load(&m, t, err, sizeof err);
    report(!rc, "header: the checkpoint as written loads", err);
    static const struct { const char *from, *to, *want, *name; } cases[] = {
        {"[16448,17472]", "[16452,17476]", "q_proj.weight starts at data byte 16452, expected 16448 (a gap",
         "shifted offsets refused"},
        {"[17472,18496]", "[17468,18492]", "k_proj.weight starts at data byte 17468, expected 17472 (it overlaps",
         "overlapping offsets refused"},
        {"[16448,17472]", "[16448,17476]", "q_proj.weight has data_offsets [16448,17476], expected a span of 1024",
         "a span of the wrong size refused"},
        {"[32896,32960]", "[32960,33024]", "model.norm.weight starts at data byte 32960, expected 32896",
         "offsets past the data refused"},
        {"\"F32\"", "\"BF16\"", "model.embed_tokens.weight has dtype BF16, expected F32", "dtype BF16 refused"},
        {"[256,16]", "[16,256]", "model.embed_tokens.weight has shape [16,256], expected [256,16]", "a transposed shape refused"},
        {"\"shape\":[16]", "\"shape\":[16,1]", "has shape [16,1], expected [16]", "an extra dimension refused"},
        {"\"model.norm.weight\"", "\"model.norm.weightx\"", "model.norm.weight is missing", "a missing tensor refused"},
        {"\"dtype\":\"F32\",\"shape\":[16]", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[16]", "unknown or repeated member \"dtype\"",
         "a repeated member refused"},
        {"\"data_offsets\"", "\"offsets\"", "unknown or repeated member \"offsets\"", "an unknown member refused"},
        {"{\"__metadata__\"", "[{\"__metadata__\"", "expected '{' at byte 0", "a header that is not an object refused"},
        {"\"format\":\"pt\"", "\"format\":7", "expected '\"' at byte", "a non-string metadata value refused"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *h = subst(s.hdr, cases[i].from, cases[i].to);
        if (!h) { report(0, cases[i].name, "(the case's text is not in the header)"); continue; }
        st_write(t, h, s.data, s.dlen);
        err[0] = 0;
        rc = smollm_load(&m, t, err, sizeof err);
        report(rc && strstr(err, cases[i].want) && strstr(err, t), cases[i].name, err);
        free(h);
    }
    /* a tensor listed twice (the header read with a copy of one tensor's member appended) */
    char *h = subst(s.hdr, "\"model.norm.weight\"", "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[32896,32960]},\"model.norm.weight\"");
    st_write(t, h, s.data, s.dlen);
    rc = smollm_load(&m, t, err, sizeof err);
    report(rc && strstr(err, "lists tensor model.norm.weight twice"), "header: a tensor listed twice refused", err);
    free(h);
    st_write(t, s.hdr, s.data, s.dlen - 4);
    rc = smollm_load(&m, t, err, sizeof err);
    report(rc && strstr(err, "truncated"), "header: a file 4 bytes short refused", err);
    memset(s.data + s.dlen, 0, 4);
    st_write(t, s.hdr, s.data, s.dlen + 4);
    rc = smollm_load(&m, t, err, sizeof err);
    report(rc && strstr(err, "bytes past the last tensor"), "header: a file 4 bytes long refused", err);
    /* same-size tensors with their offsets swapped: a legal file (the format allows any layout),
       so a bare file loads; in a checkpoint the MANIFEST refuses it (below) */
    char *h1 = subst(s.hdr, "[16448,17472]", "[QQ]"), *h2 = subst(h1, "[17472,18496]", "[16448,17472]"),
         *h3 = subst(h2, "[QQ]", "[17472,18496]");
    st_write(t, h3, s.data, s.dlen);
    err[0] = 0;
    rc = smollm_load(&m, t, err, sizeof err);
    report(!rc, "header: swapped same-size offsets are a legal bare file", err);
    free(h1); free(h2); free(h3);
    float big = 1e30f, nan = NAN;
    memcpy(s.data + 100, &big, 4);
    st_write(t, s.hdr, s.data, s.dlen);
    err[0] = 0;
    rc = smollm_load(&m, t, err, sizeof err);
    report(!rc, "header: a finite 1e30 weight is a legal bare file", err);
    memcpy(s.data + 100, &nan, 4);
    st_write(t, s.hdr, s.data, s.dlen);
    rc = smollm_load(&m, t, err, sizeof err);
    report(rc && strstr(err, "tensor model.embed_tokens.weight holds nan at index 25, expected finite"),
           "header: a NaN weight refused, naming tensor and index", err);
    /* the same edits inside a checkpoint directory: its MANIFEST refuses each (ablate eval DIR) */
    const char *edits[][2] = {{"flipped data byte", "printf '\\125' | dd of=%s/model.safetensors bs=1 seek=30000 conv=notrunc"},
                              {"1e30 weight", "printf '\\312\\362\\111\\161' | dd of=%s/model.safetensors bs=1 seek=20000 conv=notrunc"},
                              {"swapped offsets", "sed -i 's/16448,17472/QQ/; s/17472,18496/16448,17472/; s/QQ/17472,18496/' %s/model.safetensors"},
                              {"truncated", "truncate -s -4 %s/model.safetensors"},
                              {"extended", "printf 'xxxx' >> %s/model.safetensors"}};
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char ed[600], name[120];
        sh("rm -rf build/test_ckpt/c && cp -r %s/ckpt-00000003 build/test_ckpt/c", run_dir);
        snprintf(ed, sizeof ed, edits[i][1], "build/test_ckpt/c");
        sh("%s", ed);
        int e = sh("%s eval build/test_ckpt/c --data /usr/share/common-licenses/GPL-3 --max-tokens 64", ablate_bin);
        snprintf(name, sizeof name, "eval DIR: %s refused by the MANIFEST", edits[i][0]);
        report(e == 2 && strstr(out, "model.safetensors") && (strstr(out, "MANIFEST")), name, out);
    }
    int e = sh("%s eval %s/ckpt-00000003 --data /usr/share/common-licenses/GPL-3 --max-tokens 64", ablate_bin, run_dir);
    report(e == 0 && strstr(out, "loss "), "eval DIR: an intact checkpoint evaluates", out);
    free(s.hdr);
    free(s.data);
    smollm_free(&m);
}

/* ---- resume ---- */
static double reference_loss; /* the uninterrupted run's final validation loss */

static void test_resume(void) {
    char p[400];
    int rc = sh("rm -rf build/test_ckpt/ref && %s run --axes attn=mha %s --steps 4 --checkpoint-every 1 --out build/test_ckpt/ref",
                ablate_bin, tiny);
    reference_loss = final_val_loss("build/test_ckpt/ref/attn-mha_seed1337/summary.json");
    report(rc == 0 && isfinite(reference_loss), "reference: an uninterrupted 4-step run", out);

    /* the newest checkpoint corrupt: the one before it is used, with a message, and is never
       deleted before a newer one is verified */
    sh("rm -rf build/test_ckpt/s2 && cp -r build/test_ckpt/s1 build/test_ckpt/s2");
    const char *r2 = "build/test_ckpt/s2/attn-mha_seed1337";
    sh("printf '\\125' | dd of=%s/ckpt-00000003/model.safetensors bs=1 seek=30000 conv=notrunc", r2);
    rc = sh("%s run --resume build/test_ckpt/s2 --quiet --test-die-at checkpoint-written:3", ablate_bin);
    snprintf(p, sizeof p, "%s/ckpt-00000002", r2);
    char p3[400], pb[400];
    snprintf(p3, sizeof p3, "%s/ckpt-00000003/MANIFEST", r2);
    snprintf(pb, sizeof pb, "%s/ckpt-00000003.bad", r2);
    report(rc == 137 && strstr(out, "ckpt-00000003 is unusable") && strstr(out, "does not match its MANIFEST") &&
           strstr(out, "falling back to the one before it, ckpt-00000002") && strstr(out, "resumes from"),
           "resume: a corrupt newest checkpoint falls back, saying so", out);
    report(exists(p) && exists(p3) && exists(pb), "resume: the older checkpoint kept until a newer is verified",
           "ckpt-2, a new ckpt-3 and ckpt-3.bad");
    rc = sh("%s run --resume build/test_ckpt/s2 --quiet", ablate_bin);
    snprintf(p, sizeof p, "%s/summary.json", r2);
    double v = final_val_loss(p);
    char why[1200];
    snprintf(why, sizeof why, "%.9g vs %.9g %.1000s", v, reference_loss, out);
    report(rc == 0 && v == reference_loss, "resume: after the fallback the run equals an uninterrupted one", why);

    /* every checkpoint corrupt: a fresh start, the same result */
    sh("rm -rf build/test_ckpt/s3 && cp -r build/test_ckpt/s1 build/test_ckpt/s3");
    const char *r3 = "build/test_ckpt/s3/attn-mha_seed1337";
    sh("truncate -s -4 %s/ckpt-00000003/train.state; truncate -s -4 %s/ckpt-00000002/train.state", r3, r3);
    rc = sh("%s run --resume build/test_ckpt/s3 --quiet", ablate_bin);
    snprintf(p, sizeof p, "%s/summary.json", r3);
    v = final_val_loss(p);
    snprintf(why, sizeof why, "%.9g vs %.9g %.1000s", v, reference_loss, out);
    report(rc == 0 && v == reference_loss && strstr(out, "train.state is ") && strstr(out, "starts again from step 0"),
           "resume: no usable checkpoint: a fresh start, same result", why);

    /* train.state's step against its directory (the MANIFEST rewritten, as a buggy writer would) */
    static const struct { const char *to, *want, *name; } steps[] = {
        {"step 0", "gnorm_count is 3 in the file but at most the step, 0", "resume: train.state step 0 in ckpt-3 refused"},
        {"step 4", "says step 4, but its directory is step 3", "resume: train.state step 4 in ckpt-3 refused"},
        {"step 9", "step is 9 in the file but at most 4", "resume: train.state step 9 of 4 refused"}};
    for (int i = 0; i < 3; i++) {
        sh("rm -rf build/test_ckpt/s4 && cp -r build/test_ckpt/s1 build/test_ckpt/s4");
        const char *r4 = "build/test_ckpt/s4/attn-mha_seed1337";
        sh("sed -i '2s/^step 3$/%s/' %s/ckpt-00000003/train.state", steps[i].to, r4);
        char dir[300], err[600] = "";
        snprintf(dir, sizeof dir, "%s/ckpt-00000003", r4);
        ckpt_manifest_write(dir, err, sizeof err);
        rc = sh("%s run --resume build/test_ckpt/s4 --quiet", ablate_bin);
        snprintf(p, sizeof p, "%s/summary.json", r4);
        v = final_val_loss(p);
        report(rc == 0 && strstr(out, steps[i].want) && strstr(out, "ckpt-00000002") && v == reference_loss,
               steps[i].name, out);
    }

    /* a changed configuration: refused, naming the key; nothing recorded or deleted */
    static const struct { const char *from, *to, *key; } keys[] = {{"batch = 2", "batch = 4", "batch is 4"},
                                                                     {"heads = 2", "heads = 4", "heads is 4"}};
    for (int i = 0; i < 2; i++) {
        sh("rm -rf build/test_ckpt/s5 && cp -r build/test_ckpt/s1 build/test_ckpt/s5");
        sh("sed -i 's/^%s$/%s/' build/test_ckpt/s5/study.ini", keys[i].from, keys[i].to);
        rc = sh("%s run --resume build/test_ckpt/s5 --quiet", ablate_bin);
        char name[100];
        snprintf(name, sizeof name, "resume: %s changed in study.ini refused, naming it", keys[i].to);
        report(rc == 2 && strstr(out, keys[i].key) && strstr(out, "but 2 in its checkpoint") &&
               exists("build/test_ckpt/s5/attn-mha_seed1337/ckpt-00000003") &&
               !exists("build/test_ckpt/s5/attn-mha_seed1337/summary.json"), name, out);
    }

    /* kills before the first checkpoint: never failed for good */
    sh("rm -rf build/test_ckpt/s6");
    int ok = 1;
    for (int k = 0; k < 4; k++) {
        rc = sh("%s run %s build/test_ckpt/s6 --test-die-at run-start %s", ablate_bin, k ? "--resume" : "--axes attn=mha --steps 4 --checkpoint-every 1 --out",
                k ? "--quiet" : tiny);
        ok = ok && rc == 137;
    }
    rc = sh("%s run --resume build/test_ckpt/s6 --quiet", ablate_bin);
    v = final_val_loss("build/test_ckpt/s6/attn-mha_seed1337/summary.json");
    snprintf(why, sizeof why, "%.9g vs %.9g %.1000s", v, reference_loss, out);
    report(ok && rc == 0 && v == reference_loss, "resume: 4 kills before the first checkpoint, then ok", why);

    /* a kill between summary.json and the final prune: the next --resume prunes */
    rc = sh("rm -rf build/test_ckpt/s7 && %s run --axes attn=mha %s --steps 4 --checkpoint-every 1 --out build/test_ckpt/s7 "
            "--test-die-at after-summary", ablate_bin, tiny);
    int left = exists("build/test_ckpt/s7/attn-mha_seed1337/ckpt-00000003") &&
               exists("build/test_ckpt/s7/attn-mha_seed1337/summary.json");
    int rc2 = sh("%s run --resume build/test_ckpt/s7 --quiet", ablate_bin);
    report(rc == 137 && left && rc2 == 0 && !exists("build/test_ckpt/s7/attn-mha_seed1337/ckpt-00000003"),
           "resume: a checkpoint left by a kill after summary.json is pruned", out);
}

int main(int argc, char **argv) {
    if (argc > 1) ablate_bin = argv[1];
    sh("mkdir -p build/test_ckpt");
    test_sha256();
    test_manifest();
    test_header();
    test_resume();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
