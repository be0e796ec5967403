/* tests/test_ckpt.c - checkpoints that prove themselves (ckpt.h, smollm.h's loader, study.h's resume).

     cc -O2 -I. -fopenmp tests/test_ckpt.c -o tests/test_ckpt -lm
    tests/test_ckpt [path/to/ablate-cpu]       (make test runs it; default ./ablate-cpu)

   XXH64 against xxhash's values (lengths 0..300, 3 MiB, other seeds, streamed in pieces);
   MANIFEST writing, parsing and every refusal (format 1, SHA-256, too); the
   safetensors header checks (flipped bytes, shifted and swapped offsets, a 1e30 and a NaN
   weight, dtype, shape, truncated and extended files, unknown and repeated members); and,
   through the CLI with the hidden --test-die-at kill points, each reproducer of the hostile
   test: a wrong step in train.state, batch or heads changed in study.ini before --resume, a
   corrupt newest checkpoint (fallback to the previous one, which is never deleted before a
   newer one is verified), every checkpoint corrupt (a fresh start), kills before the first
   checkpoint, and a kill between summary.json and the final prune.
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"

#include <sys/wait.h>

#include "check.h" /* report(), n_pass, n_fail */
static const char *ablate_bin = "./ablate-cpu";
static const char *tiny = "--layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --eval-batches 1 --device cpu "
                          "--data /usr/share/common-licenses/GPL-3 --quiet";
static char out[1 << 16]; /* the last command's stdout and stderr */


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

/* ---- XXH64 ---- */
/* the test bytes: the top byte of each step of a 64-bit LCG (Knuth's MMIX constants) */
static void lcg_bytes(unsigned char *b, size_t n) {
    uint64_t x = 0x0123456789ABCDEFull;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        b[i] = (unsigned char)(x >> 56);
    }
}
/* XXH64 (seed 0) of the first 0..300 of those bytes, from Python's xxhash 4.1.0 (libxxhash
   0.8.4):
     M = 2**64 - 1; x = 0x0123456789ABCDEF; d = bytearray()
     for i in range(N): x = (x * 6364136223846793005 + 1442695040888963407) & M; d.append(x >> 56)
     xxhash.xxh64(bytes(d[:n]), seed=0).intdigest()
   (XXH64 of "" is 0xef46db3751d8e999, the value xxHash documents) */
static const uint64_t xxh64_prefix[301] = {
    0xef46db3751d8e999ull, 0xc029548aed30b115ull, 0xd7c0c6644a2b8635ull, 0x445f5b65c3372ca0ull,
    0xea0469098327a087ull, 0x947a55d24a1116f7ull, 0x7d117be06af5f1c1ull, 0x4c90267883e57344ull,
    0x85d486d40685566eull, 0x68dd725b02ada1abull, 0xade919393999255aull, 0x337da96e9db2c598ull,
    0x38e45e0f1054c8b9ull, 0x9b03cee8f98d20f2ull, 0xa4d57238b5c88106ull, 0x4f731ad19d92ddd9ull,
    0x1ab7a5be656e82daull, 0x73c9749e621d02e5ull, 0xa3a3d32c302e7bb9ull, 0x192d6c95d4b44995ull,
    0xb7e3e24337d2c380ull, 0x198b380a97490950ull, 0xab917dae771eeb2full, 0xbe325953819bd108ull,
    0xc532063adc50fb69ull, 0x325cc53539054bb2ull, 0x207f89951ecfd5a1ull, 0x323df43d73a12a9dull,
    0x65eff756b6f9ecfcull, 0x45d8ab1af6dc6ed8ull, 0x0330ec1de59abea1ull, 0xb55399997d9be289ull,
    0xde6e5cbf0c498e3eull, 0xeb699708db50f408ull, 0x6fb1ed06c75bfc17ull, 0x3a789df0bad7712full,
    0xcdce1eda74262be9ull, 0x4b5c08e8e56e845full, 0xc6c12d8eec6a7e03ull, 0x72442cc05bf0876cull,
    0x3e294739f7517d6dull, 0x99b50ba951a7ad6full, 0xc812e5b33377a733ull, 0x6deefba8f43f719dull,
    0xaacfddb5ade2bb47ull, 0xcd642cd462482909ull, 0x0fabf84f4ff4eb76ull, 0xdbce436bebb71334ull,
    0x98561992fa31488cull, 0x558ab5d94ae3beb2ull, 0x620cc0d054a7a1f1ull, 0xc9a40dfa0a38b8d6ull,
    0xda09c4074f672152ull, 0xe1ddf2c73decce5cull, 0xe42a0a876a4b346cull, 0xc18560a9d8612907ull,
    0x748703adc121c160ull, 0x046d4c935c6bec3cull, 0x533c966c501c58d4ull, 0x255031dac7b39d12ull,
    0x7f53307bab11ca94ull, 0x4b890aec006c4a5aull, 0x0c890eefdd8aa6c1ull, 0x10761f6ad63da9d9ull,
    0x5a81d8e3bdaf0866ull, 0x81f9919494fe9bc4ull, 0xec883c60930f8303ull, 0xe833f49cdc41ea27ull,
    0x84b1b5d6a7ca05bbull, 0x1c3512f98274987eull, 0xa54798ff0160f4d0ull, 0x83053767bb4dbb11ull,
    0xda69d3682136e220ull, 0x0b4ea600b90e4457ull, 0xb7bbd3dae97e7790ull, 0x75fbae1953623a87ull,
    0xf92201df1cfe71a8ull, 0x82e060aaf73d04ebull, 0x9ae1bef53a13d827ull, 0xfa03e24a812db11dull,
    0x93b470b480c6aa0cull, 0xc068ae96591590a3ull, 0x22f0a3f2289a6e69ull, 0x374d0c6df983798dull,
    0x35802b7ff397c8e6ull, 0xbca8f8f38c60d809ull, 0xf8bbd17ce9edabeaull, 0xdfbcff182554c5bfull,
    0x98eee5aa7b74c34eull, 0x531f10842e6fbb5aull, 0xa9a6e5d85178af9bull, 0xc004da08caec3cbbull,
    0xc8de1d638bd8dc07ull, 0x401167657b2a7018ull, 0xc15feaf230a6af6cull, 0x2671b0ae0fedbef2ull,
    0x84591d075c27d8ecull, 0xd704c3f515c7f679ull, 0x3c252068ad7ea539ull, 0x9d0b50f75e5b24a5ull,
    0x93c8350c28cfa337ull, 0x82be0db3883a3639ull, 0x21b06119b5b61d99ull, 0x288d65c269042f1aull,
    0x8e0a913d02cccd53ull, 0x635cd9b4b60027e8ull, 0xd2b64b65b3d8b9a3ull, 0xe566c64025890b2aull,
    0x43e512ede12e1136ull, 0x892a4c56a5ee7551ull, 0xf5b0273c58dd20b3ull, 0x5d93fa701cfa407aull,
    0xf7a6c0f5333203eeull, 0xd5d57882ffc972d6ull, 0x61718c51587c3b19ull, 0x40c32f278f3d4d7full,
    0x741e0b0355e0098full, 0xea80af8dadf2f327ull, 0xb4b40b129d9d307dull, 0xcf5887d9fedc19bfull,
    0x9092c3146dd0b2c4ull, 0xb2f7582f544e3752ull, 0x702fa14b88697529ull, 0xb002f24dc53cfb1dull,
    0xe4570b14a0d5ff0cull, 0xde45e3ac9cbe81d8ull, 0x58475a34d2cbda81ull, 0x3ed1ac6cebc15617ull,
    0xf34df7ecefe9c18aull, 0x9b109f62dfaffc28ull, 0x6bede072203d659full, 0xef3288f1b687cdefull,
    0x95405dbf73a16578ull, 0x69a92e3568c22c10ull, 0x309be0facefd33d9ull, 0x983c5d3154762754ull,
    0x797e28b0e73cc74full, 0x79a034e5ccaa1a4cull, 0xeb1a02c57c3d728bull, 0x4aecdf77a80102ebull,
    0x3fd77c081ec66664ull, 0xd33b7070ef1afb8bull, 0x020fd2b70a341427ull, 0x276e2a3383f20f15ull,
    0x0b17339359cfea35ull, 0x3d558beadf5ea4f0ull, 0x2f36da17d51f82a2ull, 0x9cdaf1f8943bc8d8ull,
    0x1c800c5acbcc2f1eull, 0x95cdd3c959c81e58ull, 0x4c0e6ee93a09a766ull, 0xd1b2c2cba2a8c2bcull,
    0x97624c7b316f0898ull, 0x5c3bb2a66e01e1cdull, 0x94aebc59bd0837a2ull, 0xb6c2e75d892f2cf3ull,
    0xa4b58d641b4b7abcull, 0x4c0079de884d0918ull, 0xd71743d5f6f2f5a1ull, 0x774fbdb7630bfa8cull,
    0x40067c78aa6027b0ull, 0xe15b422add35ac1bull, 0x886d57661a96b821ull, 0x98b148e238bbc87full,
    0x3fa0ad9afe0536eaull, 0x5cdba6cd034051baull, 0x556682cd1cc91e69ull, 0xd2713768ba54d5c8ull,
    0x217541def881a1e8ull, 0x1c9c3ca1c7004c84ull, 0xed6d353844a703a1ull, 0x84d943acdeb51091ull,
    0xe9b52e4c45c3534full, 0x1de8ffa842868a32ull, 0x17c3d74dfd1d0cf7ull, 0x22e9076fe885e9b1ull,
    0x4a80f2685f62ced1ull, 0x2564a9bd274367cdull, 0xdfbc04833569b75eull, 0x0be4422e74521575ull,
    0x06b658023fb39d38ull, 0xb5ed1b01fa7ef488ull, 0xd84a1a86ad565bf1ull, 0x857d694da4bea1d5ull,
    0xe2ccefa597d133f3ull, 0xc29011d76db111a5ull, 0xbe9fadf7d273e025ull, 0xb56adc4f3356f01eull,
    0x213f2c657fddb9b1ull, 0x791376d47157cac6ull, 0x7a04438e5f775893ull, 0x26a6ccf5961ebb62ull,
    0x82786ee907348f58ull, 0x0f018b0a29eb9df0ull, 0x75254fa76c77611dull, 0x37f764ff319462caull,
    0x95df8cdd4e15c61bull, 0x74ffcc06733002afull, 0xc07ca05706e28b38ull, 0x9aa1c737f4ed6a59ull,
    0x5e99dcd3d322f024ull, 0xc4914f25a5d4b4d1ull, 0xf9a1b430bea7cfebull, 0xc800ea30a9880ef6ull,
    0xa27ee9f47e3282a9ull, 0x43775e6b32474abbull, 0x73e0a45d24e20e76ull, 0x388224db78287f64ull,
    0xed7f553a34cfb6cfull, 0xce46a7c7c630f5b9ull, 0x8e9f1a3d7f3ae079ull, 0xf930854611fb83b8ull,
    0xcec082884f62124aull, 0x7b5e1d77c76ca5d9ull, 0x620f90b4b83500c5ull, 0x81951d4e27ab30b7ull,
    0xae0abd828bd65340ull, 0x7c6271ce20fa9d52ull, 0xc4237386b1f3b371ull, 0xe48f8bea30032c15ull,
    0x25da7611d2b7283cull, 0x0d20761801dbcfc9ull, 0x31ba909465415487ull, 0x13283ee2f98831ffull,
    0xcbb169b1edf2eb27ull, 0xa1f15455f36f1ff0ull, 0xa2612cc7c08055d6ull, 0x77abb97afc92dab7ull,
    0x0eef32a67802f935ull, 0x1155f8281fe3e9d5ull, 0xcd07c59419e5eeecull, 0xa7c7ed2d239cba8aull,
    0x68cbad4a0529fdb0ull, 0xf112ef388aab8ed7ull, 0x5c20c0888ce2a1f1ull, 0xc6d44329c4809f3bull,
    0xe78d7c371d509ff9ull, 0xd1718a9217edb24eull, 0x33f58fa03cf30100ull, 0x6d71df0c353085b1ull,
    0x7a6149aa8c251cffull, 0x726db77d44841919ull, 0xecd252400be73586ull, 0xc2357e4fc7f4fc8dull,
    0x66bcb2635680e4dfull, 0xb0dcefe5a2015f0aull, 0x12722357c3b06774ull, 0x67295dede1e325b4ull,
    0x68bd3de82d84dfd6ull, 0x3f0d3b05fc586c60ull, 0xece87ef248eed4baull, 0x42e42e463915cb94ull,
    0xc0788e42d69a6ea3ull, 0xf0dc76eeebe6f8b1ull, 0xc7af46c668f89ebfull, 0xc755e38c55aeb95bull,
    0x66b3302df340405eull, 0xf0e690d50e86d6f8ull, 0x9994365fdb0eefccull, 0x30070017384d1ca9ull,
    0xcf5793f6fef06131ull, 0xeab2a9d626270fc1ull, 0x83801fa8d2342b79ull, 0x41f9bc514b502344ull,
    0xc40ecc217ffd0270ull, 0xaeeadc8f32ef84bdull, 0x58abda44cf8f82bfull, 0xf6a1c9059ca21245ull,
    0x47e676777a4f5fcaull, 0x65620e2e2dbedac8ull, 0x51c256d047074c8bull, 0xbc04253d4c93a256ull,
    0xf7536c20c8effe51ull, 0xd7c7f15a055477d3ull, 0x125bacc57257bdd1ull, 0x66bae2ca656dffdcull,
    0x4fb9d8aab0654e01ull, 0x98bb5446bfec3b3full, 0x84ead207b1d6bbcbull, 0xe58a67e99175852cull,
    0x20073003cca26a5aull, 0xe340d849ad00aadcull, 0xd27b0e752f604bd9ull, 0x96fb4a0409fa2fe4ull,
    0x0c01535b5c072955ull, 0xebdfec1466635bebull, 0x8484e77cd63636faull, 0xb3159e1c8d247790ull,
    0x84e961e930856b02ull, 0xa04d44f55fbae44full, 0x8ca6c1e251a58341ull, 0xf4c7b4e23a041722ull,
    0x0c0d23a587f0db7cull, 0x74fd9b4aa3bb6b75ull, 0xe0e1a1eb9f393ab7ull, 0xdc99f9e4628029eaull,
    0xaa00a27725ae8bc5ull, 0x68d6975c57bd534dull, 0xb4248d2a9efc3b6full, 0xbc089b115b8eb775ull,
    0x45c26a2a729e9957ull,
};

static uint64_t xxh64_of(const unsigned char *b, size_t n, uint64_t seed, size_t step) {
    CkptXxh64 s;
    ckpt_xxh64_init(&s, seed);
    for (size_t o = 0; o < n; o += step) ckpt_xxh64_update(&s, b + o, n - o < step ? n - o : step);
    return ckpt_xxh64_final(&s);
}

static void test_xxh64(void) {
    enum { BIG = 3 * 1048576 + 17 };
    unsigned char *b = malloc(BIG);
    lcg_bytes(b, BIG);
    int ok = 1;
    char why[300] = "";
    /* every length 0..300: in one update, byte by byte, and in 7- and 33-byte pieces (the
       partial-stripe buffering) */
    static const size_t steps[] = {301, 1, 7, 33};
    for (size_t n = 0; n <= 300; n++)
        for (int k = 0; k < 4; k++) {
            uint64_t h = xxh64_of(b, n, 0, steps[k]);
            if (h != xxh64_prefix[n] && ok) {
                ok = 0;
                snprintf(why, sizeof why, "length %zu in pieces of %zu: %016llx, expected %016llx", n, steps[k],
                         (unsigned long long)h, (unsigned long long)xxh64_prefix[n]);
            }
        }
    report(ok, "xxh64: lengths 0..300 against xxhash's, whole and in pieces", why);
    /* 3 MiB + 17 bytes in 1 MiB updates (as ckpt_hash_file reads), in odd pieces, and with
       final() called midway (it leaves the state as it was) */
    const uint64_t want = 0xbfda1fce0984c4d3ull;
    uint64_t h1 = xxh64_of(b, BIG, 0, 1 << 20), h2 = xxh64_of(b, BIG, 0, 4099);
    CkptXxh64 s;
    ckpt_xxh64_init(&s, 0);
    ckpt_xxh64_update(&s, b, 1000003);
    uint64_t mid = ckpt_xxh64_final(&s);
    ckpt_xxh64_update(&s, b + 1000003, BIG - 1000003);
    uint64_t h3 = ckpt_xxh64_final(&s);
    snprintf(why, sizeof why, "%016llx %016llx %016llx, expected %016llx", (unsigned long long)h1,
             (unsigned long long)h2, (unsigned long long)h3, (unsigned long long)want);
    report(h1 == want && h2 == want && h3 == want && mid == xxh64_of(b, 1000003, 0, 1 << 20),
           "xxh64: 3 MiB + 17 bytes, in 1 MiB and 4099-byte updates", why);
    /* other seeds (the accumulators' initial values, the short-input path), lengths 0, 31, 32, 300 */
    static const struct { uint64_t seed, h[4]; } sv[] = {
        {1, {0xd5afba1336a3be4bull, 0xe75fa41ae55379a7ull, 0x0c222f687beef623ull, 0xeaacab47432d54e4ull}},
        {0x9E3779B185EBCA87ull, {0x6ec6d05f61c7e7a7ull, 0xb94025fcca555f1bull, 0x0fd1c12dda500cf9ull, 0x442951de27583d68ull}},
        {UINT64_MAX, {0x298f4c84b24f5380ull, 0x707718a89fc2988full, 0x165fd6ba0e22b26eull, 0xf45e1f8df12dacb5ull}}};
    static const size_t lens[4] = {0, 31, 32, 300};
    ok = 1;
    why[0] = 0;
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) {
            uint64_t h = xxh64_of(b, lens[k], sv[i].seed, 5);
            if (h != sv[i].h[k] && ok) {
                ok = 0;
                snprintf(why, sizeof why, "seed %llx, length %zu: %016llx", (unsigned long long)sv[i].seed, lens[k],
                         (unsigned long long)h);
            }
        }
    report(ok, "xxh64: seeds 1, PRIME64_1 and 2^64-1", why);
    /* ckpt_hash_file: the same bytes as a file */
    FILE *f = fopen("build/test_ckpt/big.bin", "wb");
    int wrote = f && fwrite(b, 1, BIG, f) == BIG;
    if (f) fclose(f);
    uint64_t h = 0, len = 0;
    char err[300] = "";
    int rc = !wrote || ckpt_hash_file("build/test_ckpt/big.bin", 0, &h, &len, err, sizeof err);
    report(!rc && h == want && len == BIG, "xxh64: ckpt_hash_file of those bytes as a file", err);
    remove("build/test_ckpt/big.bin");
    free(b);
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
    /* XXH64 of "hello" and "world!": xxhash.xxh64(b"hello").hexdigest(), as `xxhsum -H1` prints it */
    report(t && !strcmp(t, "ablate-manifest 2\n26c7827d889f6da3 5 a.bin\n4b9e2ae5ccbb2726 6 b.txt\n"),
           "manifest: format 2, XXH64 and the length per file", t);
    free(t);
    sh("printf 'jello' > %s/a.bin", d);
    rc = ckpt_manifest_verify(d, err, sizeof err);
    report(rc && strstr(err, "a.bin does not match its MANIFEST: XXH64 5e570b99d9f20f60, expected 26c7827d889f6da3"),
           "manifest: a changed byte is refused, naming the file", err);
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
    #define SHA "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" /* SHA-256 of "hello" */
    static const struct { const char *text, *want; } bad[] = {
        {"", "not an ablate manifest"},
        {"ablate-manifest 3\n26c7827d889f6da3 5 a\n", "not an ablate manifest (expected a first line \"ablate-manifest 2\")"},
        {"ablate-manifest 2\n", "lists no file"},
        {"ablate-manifest 2\nzz 5 a\n", "line 2 is not \"<16 lowercase hex digits> <length> <file name>\""},
        {"ablate-manifest 2\n26c7827d889f6da3 5 ../a\n", "line 2 is not"},
        {"ablate-manifest 2\n26c7827d889f6da3 99999999999999999999 a\n", "line 2 is not"},
        {"ablate-manifest 2\n26C7827D889F6DA3 5 a\n", "line 2 is not"},  /* uppercase */
        {"ablate-manifest 2\n26c7827d889f6da 5 a\n", "line 2 is not"},   /* 15 digits */
        {"ablate-manifest 2\n26c7827d889f6da30 5 a\n", "line 2 is not"}, /* 17 digits */
        {"ablate-manifest 2\n26c7827d889f6da3  5 a\n", "line 2 is not"}, /* two spaces */
        {"ablate-manifest 2\n26c7827d889f6da3 5 a\n" SHA " 5 b\n", "line 3 is not"}, /* a format-1 line */
        {"ablate-manifest 2\n26c7827d889f6da3 5 a", "does not end with a newline"},
        {"ablate-manifest 2\n26c7827d889f6da3 5 a\n"
         "26c7827d889f6da3 5 a\n", "line 3 lists a a second time"},
        /* format 1, as ablate wrote it before XXH64: refused, saying so */
        {"ablate-manifest 1\n" SHA " 5 a\n", "manifest format 1 (SHA-256 digests, written by an older ablate)"}};
    #undef SHA
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
    CkptEntry e[4];
    const char *good = "ablate-manifest 2\n26c7827d889f6da3 5 a.bin\nffffffffffffffff 1000000000000000000 b\n";
    int k = ckpt_manifest_parse(good, strlen(good), "M", e, 4, err, sizeof err);
    report(k == 2 && e[0].hash == 0x26c7827d889f6da3ull && e[0].len == 5 && !strcmp(e[0].name, "a.bin") &&
           e[1].hash == UINT64_MAX && e[1].len == 1000000000000000000ull && !strcmp(e[1].name, "b"),
           "manifest: a well-formed one parses (hash, length, name)", err);
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
/* rewrites checkpoint dir's MANIFEST in format 1, as ablate wrote it before XXH64: SHA-256 (as
   sha256sum prints it), length and name per file */
static void to_format1(const char *dir) {
    sh("cd %s && { echo 'ablate-manifest 1'; for f in $(ls | grep -vx MANIFEST); do "
       "echo \"$(sha256sum $f | cut -c1-64) $(stat -c %%s $f) $f\"; done; } > MANIFEST.new && mv MANIFEST.new MANIFEST",
       dir);
}

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

    /* checkpoints of a run written before XXH64: their MANIFESTs in format 1 (SHA-256), written
       here over the same files. Each is refused, saying so, and set aside like any failing
       checkpoint: the newest alone, then every one */
    char d8[300];
    sh("rm -rf build/test_ckpt/s8 && cp -r build/test_ckpt/s1 build/test_ckpt/s8");
    const char *r8 = "build/test_ckpt/s8/attn-mha_seed1337";
    snprintf(d8, sizeof d8, "%s/ckpt-00000003", r8);
    to_format1(d8);
    snprintf(p, sizeof p, "%s/MANIFEST", d8);
    size_t n8;
    char *m8 = slurp(p, &n8);
    int is_fmt1 = m8 && !strncmp(m8, "ablate-manifest 1\n", 18) && strstr(m8, " train.state\n");
    free(m8);
    rc = sh("%s eval %s --data /usr/share/common-licenses/GPL-3 --max-tokens 64", ablate_bin, d8);
    report(is_fmt1 && rc == 2 && strstr(out, "manifest format 1 (SHA-256 digests"),
           "eval DIR: a format-1 (SHA-256) MANIFEST refused, saying so", out);
    rc = sh("%s run --resume build/test_ckpt/s8 --quiet", ablate_bin);
    snprintf(p, sizeof p, "%s/summary.json", r8);
    v = final_val_loss(p);
    snprintf(why, sizeof why, "%.9g vs %.9g %.1000s", v, reference_loss, out);
    snprintf(pb, sizeof pb, "%s/ckpt-00000003.bad", r8);
    report(rc == 0 && strstr(out, "ckpt-00000003 is unusable") && strstr(out, "manifest format 1") &&
           strstr(out, "falling back to the one before it, ckpt-00000002") && exists(pb) && v == reference_loss,
           "resume: a format-1 newest checkpoint set aside, the run falls back", why);
    sh("rm -rf build/test_ckpt/s9 && cp -r build/test_ckpt/s1 build/test_ckpt/s9");
    const char *r9 = "build/test_ckpt/s9/attn-mha_seed1337";
    int cks[64], nck = study_list_ckpts(r9, cks, 64);
    for (int k = 0; k < nck; k++) {
        snprintf(p, sizeof p, "%s/ckpt-%08d", r9, cks[k]);
        to_format1(p);
    }
    rc = sh("%s run --resume build/test_ckpt/s9 --quiet", ablate_bin);
    v = final_val_loss("build/test_ckpt/s9/attn-mha_seed1337/summary.json");
    snprintf(why, sizeof why, "%d checkpoints, %.9g vs %.9g %.1000s", nck, v, reference_loss, out);
    report(nck >= 2 && rc == 0 && strstr(out, "manifest format 1") && strstr(out, "starts again from step 0") &&
           !strstr(out, "resumes from") && v == reference_loss,
           "resume: every checkpoint format 1: a fresh start, same result", why);

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
    test_xxh64();
    test_manifest();
    test_header();
    test_resume();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
