/* tests/test_oom.c - library code returns out-of-memory errors instead of exiting: ops_alloc,
   attn/dsa.h's indexer ops, attn_forward / attn_backward's CPU temporaries (MGA), smollm's
   forward and train_step above them.

     cc -O2 -I. tests/test_oom.c -o tests/test_oom -lm
    tests/test_oom                  (make test runs it)

   Each case runs in a child process whose address space is capped (RLIMIT_AS) a few MB above
   what it already uses, so that the allocation under test fails for certain; the child's exit
   status says what the call returned (an exit inside the library shows as status 1 with its
   message, a crash as a signal). Ends with "N passed, N failed".
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define OOM_HEADROOM (16u << 20) /* bytes left to the child above its current size (the ops) */

/* caps the address space at the current size plus headroom bytes; 0 on success. One thread:
   OpenMP's thread stacks would not fit under the cap */
static int oom_cap(size_t headroom) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    int ok = f && fscanf(f, "%lu", &pages) == 1;
    if (f) fclose(f);
    if (!ok) return -1;
    struct rlimit r;
    r.rlim_cur = r.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + headroom;
    return setrlimit(RLIMIT_AS, &r);
}

/* runs fn in a child under the cap: 42 when fn returned the error it should, 43 when the call
   succeeded (the cap did not bite), anything else: the library exited or crashed */
static void oom_case(const char *name, int (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30); /* a call that does not fail would run a long time: a stuck case ends */
        _exit(fn());
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char d[120];
    if (WIFEXITED(st)) snprintf(d, sizeof d, "child exit %d (42: the error returned)", WEXITSTATUS(st));
    else snprintf(d, sizeof d, "child killed by signal %d", WTERMSIG(st));
    report(WIFEXITED(st) && WEXITSTATUS(st) == 42, name, d);
}

#define BIG_T (1 << 22) /* 4M rows: tens of MB per buffer, past OOM_HEADROOM */

static int case_topk(void) {
    ops_real s = 0;
    int idx = 0;
    if (oom_cap(OOM_HEADROOM)) return 2;
    return attn_dsa_indexer_topk(NULL, &idx, &s, 1, BIG_T, 1) == -1 ? 42 : 43;
}

static int case_select(void) {
    ops_real q = 0, k = 0, w = 0;
    int idx = 0;
    if (oom_cap(OOM_HEADROOM)) return 2;
    return attn_dsa_indexer_select(NULL, &idx, &q, &k, &w, 1, BIG_T, 1, 1, 1, ATTN_DSA_PREC_FP32) == -1 ? 42 : 43;
}

static int case_kl_forward(void) {
    ops_real loss = 0, p = 0, q = 0, k = 0, w = 0;
    int idx = 0;
    if (oom_cap(OOM_HEADROOM)) return 2;
    return attn_dsa_indexer_kl_forward(NULL, &loss, &p, &q, &k, &w, &idx, 1, 1, 1, 1, BIG_T) == -1 ? 42 : 43;
}

static int case_kl_backward(void) {
    ops_real loss = 0, p = 0, q = 0, k = 0, w = 0, dq = 7, dk = 7, dw = 7;
    int idx = 0;
    if (oom_cap(OOM_HEADROOM)) return 2;
    int rc = attn_dsa_indexer_kl_backward(NULL, &loss, &dq, &dk, &dw, &p, &q, &k, &w, &idx, 1, 1, 1, 1, BIG_T, 1.0f);
    return rc == -1 && dq == 7 && dk == 7 && dw == 7 ? 42 : 43; /* nothing written on failure */
}

/* an MGA block over BIG_T positions (its CPU core allocates O(T) rows per head) */
typedef struct { AttnConfig c; ops_real *x, *w, *out, *act, *stat, *scr; AttnActs a; AttnScratch s; } MgaBlock;
static int mga_setup(MgaBlock *b, int gate) {
    char err[256];
    memset(b, 0, sizeof *b);
    b->c.kind = ATTN_MGA; b->c.d_model = 8; b->c.n_heads = 2; b->c.head_dim = 4; b->c.mga_gate = gate;
    if (attn_resolve(&b->c, err, sizeof err)) { printf("setup: %s\n", err); return -1; }
    size_t ae, se, N = BIG_T;
    attn_act_sizes(&b->c, 1, BIG_T, &ae, &se);
    b->x = zeros(N * 8); b->out = zeros(N * 8); b->w = zeros(attn_param_count(&b->c));
    b->act = zeros(ae); b->stat = zeros(se); b->scr = zeros(attn_scratch_elems(&b->c, 1, BIG_T));
    if (!b->x || !b->out || !b->w || !b->act || !b->stat || !b->scr) return -1;
    attn_acts_bind(&b->c, &b->a, NULL, b->act, b->stat, 1, BIG_T);
    attn_scratch_bind(&b->c, &b->s, NULL, b->scr, 1, BIG_T);
    return 0;
}

static int case_mga_forward(void) {
    MgaBlock b;
    if (mga_setup(&b, 1) || oom_cap(OOM_HEADROOM)) return 2;
    return attn_forward(NULL, &b.c, b.w, &b.a, b.x, b.out, 1, BIG_T) == -1 ? 42 : 43;
}

static int case_mga_backward(void) {
    MgaBlock b;
    if (mga_setup(&b, 1)) return 2;
    ops_real *dw = zeros(attn_param_count(&b.c)), *dx = zeros((size_t)BIG_T * 8);
    if (!dw || !dx || oom_cap(OOM_HEADROOM)) return 2;
    return attn_backward(NULL, &b.c, b.w, dw, &b.a, &b.s, b.x, b.out, dx, 1, BIG_T) == -1 ? 42 : 43;
}

/* a small MGA model: its forward's temporaries fail under the cap, and so does train_step,
   which reports the step as failed and leaves the step count alone */
static int model_setup(SmolModel *m, int T) {
    char err[256];
    SmolConfig cfg = {0};
    cfg.vocab_size = 16; cfg.d_model = 8; cfg.n_layers = 1; cfg.n_heads = 2; cfg.attn.n_kv_heads = 2;
    cfg.attn.head_dim = 4; cfg.ffn_dim = 8; cfg.attn.kind = ATTN_MGA;
    if (smollm_init(m, &cfg, NULL, 1, T, err, sizeof err)) { printf("setup: %s\n", err); return -1; }
    return 0;
}

static int case_smollm_forward(void) {
    SmolModel m;
    if (model_setup(&m, 1 << 17)) return 2;
    int *tok = calloc(1 << 17, sizeof(int));
    if (!tok || oom_cap(256u << 10)) return 2; /* its O(T) rows are 1 MB */
    return smollm_forward(&m, tok) == -1 ? 42 : 43;
}

static void zero_batch(void *ctx, int *tokens, int *targets) {
    size_t n = *(size_t *)ctx;
    memset(tokens, 0, n * sizeof(int));
    memset(targets, 0, n * sizeof(int));
}
static int case_train_step(void) {
    SmolModel m;
    TrainState tr;
    TrainConfig tc = {0};
    size_t n = 1 << 17;
    /* 1.5 MB: the step's two 512 KB batch buffers fit, the forward's 1 MB rows do not */
    if (model_setup(&m, (int)n) || train_init(&tr, &m, &tc) || oom_cap(1536u << 10)) return 2;
    TrainStats st = train_step(&tr, zero_batch, &n);
    return st.failed && isnan(st.loss) && st.step == 0 && tr.step == 0 ? 42 : 43;
}

/* the same model without the cap: the calls succeed (the cases above fail for the cap). Run
   after the forks: OpenMP's thread pool in the parent would hang a forked child */
static void test_uncapped(void) {
    SmolModel m;
    int tok[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int ok = !model_setup(&m, 8) && smollm_forward(&m, tok) == 0;
    report(ok, "uncapped: smollm_forward on MGA returns 0", "");
    if (ok) smollm_free(&m);
}

int main(void) {
    void *p = ops_alloc(NULL, (size_t)1 << 62); /* 4 EiB: no machine has it */
    report(p == NULL, "ops_alloc: NULL when host memory runs out", p ? "got memory" : "");
    free(p);
    oom_case("attn_dsa_indexer_topk: -1 on host OOM", case_topk);
    oom_case("attn_dsa_indexer_select: -1 on host OOM", case_select);
    oom_case("attn_dsa_indexer_kl_forward: -1 on host OOM", case_kl_forward);
    oom_case("attn_dsa_indexer_kl_backward: -1 on host OOM, outputs untouched", case_kl_backward);
    oom_case("attn_forward (MGA, CPU): -1 on host OOM", case_mga_forward);
    oom_case("attn_backward (MGA, CPU): -1 on host OOM", case_mga_backward);
    oom_case("smollm_forward (MGA layer): -1 on host OOM", case_smollm_forward);
    oom_case("train_step: failed, loss NAN, no step taken on host OOM", case_train_step);
    test_uncapped();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
