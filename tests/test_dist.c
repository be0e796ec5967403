/* tests/test_dist.c - data-parallel training on CPU ranks (dist.h, train.h's DATA PARALLEL):
   the shared-memory transport's collectives on 2 and 3 ranks (exact sums in rank order, bf16
   rounding, reduce_scatter / all_gather layouts, pieces larger than a slot); a 2-rank run
   against a 1-rank run of the same global batch (grad_accum 2), in this double build through
   study_train and in the float ablate-cpu through the CLI; grad_reduce bf16 against it within
   a stated bound, and differing from fp32; a 2-rank checkpoint resumed on 1 and on 3 ranks, and
   a 1-process one on 2, against an uninterrupted run; a study of 2 runs x 2 ranks
   (gpus_per_run) against the same study in one process per run (identity, config.json,
   losses), through study_run and through ablate run (in workers too), and its refusals; a killed rank failing the run with its name; bad
   --gpus / --ranks / --batch values refused with messages.
     ./tests/test_dist [ABLATE_CPU]     (default ./ablate-cpu; ends "N passed, N failed")
   Built with -DABLATE_REAL=double (Makefile): the training comparisons hold to 1e-12 relative
   here; the ranks add the weight gradients in another order than one process accumulating
   micro-batches (train.h), so equality is to rounding, not bit for bit. */
#define ABLATE_IMPLEMENTATION
#include "study.h"
#include "tests/check.h"
#include "tests/dist_common.h" /* losses, compare */

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *bin = "./ablate-cpu";
static const char *data = "/usr/share/common-licenses/GPL-3";

/* ---- collectives: each rank writes its failures into a shared array the parent reads ---- */
typedef struct { int fails[8][DIST_MAX_WORLD]; char what[8][160]; } Shared;
static Shared *sh;

static void note(int k, int rank, int ok, const char *what) {
    if (!ok) { sh->fails[k][rank]++; snprintf(sh->what[k], sizeof sh->what[k], "rank %d: %s", rank, what); }
}

static int collectives(DistComm *c, void *ctx) {
    (void)ctx;
    int r = c->rank, W = c->world;
    /* 0: all_reduce of doubles, exact, over more than one slot (pieces) */
    size_t n = DIST_SLOT_BYTES / 8 * 2 + 123;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (double)(r + 1) * (double)(i % 1000) + 0.5 * r;
    int ok = !c->all_reduce(c, x, n, DIST_F64);
    double sr = W * (W + 1) / 2.0, half = 0.5 * W * (W - 1) / 2.0;
    for (size_t i = 0; i < n && ok; i++) ok = x[i] == sr * (double)(i % 1000) + half;
    note(0, r, ok, "all_reduce f64 sums");
    free(x);
    /* 1: the order is rank 0 + rank 1 + ...: (1e16 + 1) - 1e16 is 0 in doubles, not 1; in
       float, 2^24 + 1 + ... likewise */
    double o[1] = {r == 0 ? 1e16 : r == 1 ? 1.0 : r == 2 ? -1e16 : 0};
    ok = !c->all_reduce(c, o, 1, DIST_F64);
    note(1, r, ok && o[0] == (W == 3 ? 0.0 : 1e16 + 1.0), "all_reduce order");
    float f[2] = {r == 0 ? 16777216.0f : 1.0f, (float)r};
    ok = !c->all_reduce(c, f, 2, DIST_F32);
    /* 2^24 + 1 rounds back to 2^24 each time: the left-to-right sum stays 2^24 */
    note(1, r, ok && f[0] == 16777216.0f && f[1] == (float)(W * (W - 1) / 2), "all_reduce f32 order");
    /* 2: bf16: exact values with an exact total come back exact; 1 + 2^-8 + 2^-8 is summed in
       fp32 and rounded once (1 + 2^-7, exact in bf16), where rounding after each addition
       would give 1 (1 + 2^-8 is a tie, to even) */
    uint16_t b[3] = {dist_bf16(r == 0 ? 1.0f : 0.00390625f), dist_bf16(0.5f * (r + 1)), dist_bf16(-3.0f)};
    ok = !c->all_reduce(c, b, 3, DIST_BF16);
    float want0 = 1.0f + (W - 1) * 0.00390625f, want1 = 0.5f * W * (W + 1) / 2, want2 = -3.0f * W;
    note(2, r, ok && dist_f32(b[0]) == dist_f32(dist_bf16(want0)) && dist_f32(b[1]) == want1 && dist_f32(b[2]) == want2,
         "all_reduce bf16 rounding");
    note(2, r, dist_f32(dist_bf16(1.00390625f)) == 1.0f && dist_f32(dist_bf16(1.01171875f)) == 1.015625f,
         "bf16 round to nearest even");
    /* 3: reduce_scatter: rank r gets sum over p of p's send[r n + i] */
    size_t m = DIST_SLOT_BYTES / 4 / W + 77; /* pieces too */
    float *send = malloc(sizeof(float) * m * W), *recv = malloc(sizeof(float) * m);
    for (int q = 0; q < W; q++)
        for (size_t i = 0; i < m; i++) send[q * m + i] = (float)(r * 1000 + q * 100 + (int)(i % 50));
    ok = !c->reduce_scatter(c, send, recv, m, DIST_F32);
    for (size_t i = 0; i < m && ok; i++) ok = recv[i] == (float)(1000 * W * (W - 1) / 2 + W * (r * 100 + (int)(i % 50)));
    note(3, r, ok, "reduce_scatter layout");
    /* 4: all_gather, out of place and in place (send = recv + rank n) */
    float *all = malloc(sizeof(float) * m * W);
    for (size_t i = 0; i < m; i++) send[i] = (float)(r * 100 + (int)(i % 50));
    ok = !c->all_gather(c, send, all, m, DIST_F32);
    for (int q = 0; q < W && ok; q++)
        for (size_t i = 0; i < m && ok; i++) ok = all[q * m + i] == (float)(q * 100 + (int)(i % 50));
    for (size_t i = 0; i < m * W; i++) all[i] = (size_t)r * m <= i && i < (size_t)(r + 1) * m ? (float)(r + 7) : -1;
    ok = ok && !c->all_gather(c, all + (size_t)r * m, all, m, DIST_F32);
    for (int q = 0; q < W && ok; q++)
        for (size_t i = 0; i < m && ok; i++) ok = all[q * m + i] == (float)(q + 7);
    note(4, r, ok, "all_gather layout (and in place)");
    free(send); free(recv); free(all);
    /* 5: broadcast from rank 1, and sum_host */
    char msg[32] = "";
    if (r == 1) strcpy(msg, "from rank one");
    ok = !c->broadcast(c, msg, sizeof msg, 1) && !strcmp(msg, "from rank one");
    double h[2] = {r, 1};
    ok = ok && !c->sum_host(c, h, 2) && h[0] == W * (W - 1) / 2 && h[1] == W;
    ok = ok && !c->barrier(c);
    note(5, r, ok, "broadcast, sum_host, barrier");
    return 0;
}

static void test_collectives(int W) {
    memset(sh, 0, sizeof *sh);
    char err[256] = "", name[80];
    int rc = dist_spawn(W, collectives, NULL, err, sizeof err);
    snprintf(name, sizeof name, "%d ranks: every rank ends with status 0", W);
    report(rc == 0, name, err);
    const char *names[] = {"all_reduce f64 exact sums (pieces beyond a slot)", "sums in rank order (f64, f32)",
                           "bf16: fp32 sum rounded once, exact totals exact", "reduce_scatter layout (pieces)",
                           "all_gather layout, in place too", "broadcast, sum_host, barrier"};
    for (int k = 0; k < 6; k++) {
        int bad = 0;
        for (int q = 0; q < W; q++) bad += sh->fails[k][q];
        snprintf(name, sizeof name, "%d ranks: %s", W, names[k]);
        report(!bad, name, bad ? sh->what[k] : NULL);
    }
}

/* ---- training through study_train on forked ranks ---- */
typedef struct { StudyRunConfig c; const char *dir; } RunCtx;
static int train_rank_(DistComm *c, void *ctx) {
    RunCtx *x = ctx;
    StudyRunConfig o = x->c;
    o.dist = c;
    StudySummary s = {0};
    int rc = study_train(&o, x->dir, NULL, 0, &s);
    if (rc) fprintf(stderr, "rank %d: %s\n", c->rank, s.reason);
    return rc;
}

static void base_config(StudyRunConfig *c, int batch, int accum, int steps) {
    study_run_config_defaults(c);
    char err[256];
    const char *kv[][2] = {{"layers", "2"}, {"d_model", "32"}, {"heads", "4"}, {"seq", "32"}, {"eval_batches", "1"},
                           {"checkpoint_every", "2"}, {"eval_every", "2"}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (study_run_config_set(c, kv[i][0], kv[i][1], err, sizeof err)) printf("config: %s\n", err);
    c->batch = batch;
    c->train.grad_accum = accum;
    c->train.steps = steps;
    c->data = data;
}

/* runs W ranks (0: one process, no DistComm) of c in dir (made empty unless keep) */
static int run(const StudyRunConfig *c, int W, const char *dir, int keep, char *err, size_t errlen) {
    char cmd[512];
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
        if (system(cmd)) return -1;
    }
    RunCtx x = {*c, dir};
    if (W == 0) { /* in a child too: this process must not start OpenMP's threads before a fork
                     (GNU libgomp's pool does not survive one; dist.h) */
        fflush(stdout);
        pid_t p = fork();
        if (p == 0) {
            StudySummary s = {0};
            int rc = study_train(c, dir, NULL, 0, &s);
            if (rc) fprintf(stderr, "%s\n", s.reason);
            fflush(stderr);
            _exit(rc);
        }
        int st = 0;
        if (p < 0 || waitpid(p, &st, 0) != p) return -1;
        snprintf(err, errlen, "status %d", st);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
    return dist_spawn(W, train_rank_, &x, err, errlen);
}

static void test_training(void) {
    StudyRunConfig one, two;
    char err[512] = "";
    /* the same global batch of 8 rows per step: 1 process x 4 rows x accum 2, 2 ranks x 4 rows */
    base_config(&one, 4, 2, 4);
    base_config(&two, 8, 1, 4);
    int rc1 = run(&one, 0, "build/test_dist/accum2", 0, err, sizeof err);
    report(rc1 == 0, "1 process, batch 4 x grad_accum 2: trains", err);
    int rc2 = run(&two, 2, "build/test_dist/ranks2", 0, err, sizeof err);
    report(rc2 == 0, "2 ranks, batch 8 (4 rows each): trains", err);
    compare("2 ranks == accum 2", "build/test_dist/accum2", "build/test_dist/ranks2", 4, 0, 1e-12, 1);
    /* grad_reduce bf16: each rank's gradients rounded to bf16 and summed in bf16 (the numerics
       of NCCL's bf16 all-reduce; train.h). The bound: a bf16 element holds 8 significant bits,
       so each rank's gradient moves by at most 2^-9 of itself and the sum by 2^-9 more; AdamW
       divides each element by its own RMS, so each update is within ~2^-8 (0.4%) of fp32's
       and so is each step's change of the loss. Over these 4 steps the loss falls by ~0.4 from
       ~5.6: 0.4% of that is ~2e-3, ~3e-4 of the loss. Checked at 1e-3 relative (3x margin:
       the per-element errors do not all add up in one direction); and the losses must differ
       from fp32's by more than 1e-7 somewhere, so that the option is seen to act */
    StudyRunConfig bf = two;
    bf.train.grad_reduce = TRAIN_REDUCE_BF16;
    rc2 = run(&bf, 2, "build/test_dist/ranks2_bf16", 0, err, sizeof err);
    report(rc2 == 0, "2 ranks, grad_reduce bf16: trains", err);
    compare("2 ranks bf16 ~ accum 2", "build/test_dist/accum2", "build/test_dist/ranks2_bf16", 4, 1e-3, 1e-3, 1);
    {
        double a[64], b[64], most = 0;
        int na = losses("build/test_dist/ranks2", 1, a, 64), nb = losses("build/test_dist/ranks2_bf16", 1, b, 64);
        for (int i = 0; i < na && i < nb; i++) most = fmax(most, fabs(a[i] - b[i]) / fabs(a[i]));
        char d[120];
        snprintf(d, sizeof d, "largest relative difference of the val losses %.3g over %d evaluations", most, na);
        report(na == nb && na >= 1 && most > 1e-7, "2 ranks bf16 differs from fp32 (the option acts)", d);
    }
    /* GRADIENT BUCKETS (train.h): the same sums grouped otherwise, so bit for bit the runs above.
       The model holds 39072 doubles (0.30 MB; a layer 0.12, the embedding 0.06): 1e-9 MB makes a
       bucket of each range the backward hands over (final norm, layer 1, layer 0, embedding);
       0.2 MB reduces the final norm with both layers during the backward and the embedding
       after it */
    {
        const char *what[3] = {"a bucket per layer", "2 buckets", "a bucket per layer, bf16"};
        const char *dirs[3] = {"build/test_dist/bucket_layer", "build/test_dist/bucket_2", "build/test_dist/bucket_bf16"};
        float mb[3] = {1e-9f, 0.2f, 1e-9f};
        for (int k = 0; k < 3; k++) {
            StudyRunConfig b = k == 2 ? bf : two;
            b.train.grad_bucket_mb = mb[k];
            err[0] = 0;
            rc2 = run(&b, 2, dirs[k], 0, err, sizeof err);
            char name[160];
            snprintf(name, sizeof name, "2 ranks, grad_bucket_mb %g (%s): trains", mb[k], what[k]);
            report(rc2 == 0, name, err);
            snprintf(name, sizeof name, "2 ranks, %s == one bucket, bit for bit", what[k]);
            compare(name, k == 2 ? "build/test_dist/ranks2_bf16" : "build/test_dist/ranks2", dirs[k], 4, 0, 0, 0);
        }
        /* 3 ranks x grad_accum 2 (the buckets ride only the last micro-batch's backward) */
        StudyRunConfig three;
        base_config(&three, 6, 2, 4);
        err[0] = 0;
        int r1 = run(&three, 3, "build/test_dist/ranks3_accum2", 0, err, sizeof err);
        three.train.grad_bucket_mb = 1e-9f;
        int r2 = r1 ? r1 : run(&three, 3, "build/test_dist/ranks3_accum2_buckets", 0, err, sizeof err);
        report(r1 == 0 && r2 == 0, "3 ranks x grad_accum 2, with and without a bucket per layer: train", err);
        compare("3 ranks x grad_accum 2: a bucket per layer == one bucket, bit for bit", "build/test_dist/ranks3_accum2",
                "build/test_dist/ranks3_accum2_buckets", 4, 0, 0, 0);
    }
    /* the state of 2 ranks (batch 6: 3 rows each) resumed on 1 and on 3 ranks, against one
       uninterrupted process of batch 6 */
    StudyRunConfig six;
    base_config(&six, 6, 1, 6);
    rc1 = run(&six, 0, "build/test_dist/whole", 0, err, sizeof err);
    report(rc1 == 0, "1 process, batch 6, 6 steps: trains", err);
    six.die_at = "checkpoint-written:4"; /* rank 0 writes it, then dies */
    const char *dirs[2] = {"build/test_dist/resume1", "build/test_dist/resume3"};
    int on[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        err[0] = 0;
        rc2 = run(&six, 2, dirs[k], 0, err, sizeof err);
        char name[120];
        snprintf(name, sizeof name, "2 ranks killed after checkpoint 4: fails naming rank 0 (%s)", dirs[k] + 16);
        report(rc2 != 0 && strstr(err, "rank 0 of 2 was killed by signal 9") != NULL, name, err);
        StudyRunConfig again = six;
        again.die_at = NULL;
        err[0] = 0;
        rc2 = run(&again, on[k], dirs[k], 1, err, sizeof err);
        snprintf(name, sizeof name, "its checkpoint resumed on %d rank%s: trains to step 6", on[k], on[k] > 1 ? "s" : "");
        report(rc2 == 0, name, err);
        snprintf(name, sizeof name, "resumed on %d == 1 process", on[k]);
        /* 6 rows in one process and 3 + 3 on two ranks add the rows' gradients in another
           order: ~1e-16 apart in double. AdamW divides each gradient by its own running RMS,
           so an element whose gradient nearly cancels turns that rounding into a full-size
           update of its weight: after 6 steps the validation losses differ by ~1e-10 (not
           1e-12). The training losses are floats: an ulp (1.2e-7) at most */
        compare(name, "build/test_dist/whole", dirs[k], 6, 2.5e-7, 1e-9, 0);
    }
    /* and the other way: one process's state (batch 6) resumed on 2 ranks */
    err[0] = 0;
    rc1 = run(&six, 0, "build/test_dist/resume_from1", 0, err, sizeof err);
    report(rc1 != 0, "1 process killed after checkpoint 4: fails", err);
    {
        StudyRunConfig again = six;
        again.die_at = NULL;
        err[0] = 0;
        rc2 = run(&again, 2, "build/test_dist/resume_from1", 1, err, sizeof err);
        report(rc2 == 0, "its checkpoint resumed on 2 ranks: trains to step 6", err);
        compare("1 process resumed on 2 == 1 process", "build/test_dist/whole", "build/test_dist/resume_from1", 6, 2.5e-7,
                1e-9, 0);
    }
    /* a batch that the ranks cannot share */
    StudyRunConfig odd;
    base_config(&odd, 8, 1, 2);
    err[0] = 0;
    rc2 = run(&odd, 3, "build/test_dist/odd", 0, err, sizeof err);
    report(rc2 == 2, "batch 8 over 3 ranks: refused (status 2)", err);
}

/* ---- smollm.h's grads_ready: the ranges the buckets reduce while the backward goes on ---- */
typedef struct {
    SmolModel *m;
    int k;
    size_t lo[16], n[16];
    ops_real *copy[16];
} Ready;
static int ready_record(void *ctx, size_t lo, size_t n) {
    Ready *r = ctx;
    if (r->k == 16 || !(r->copy[r->k] = malloc(n * sizeof(ops_real)))) return -1;
    memcpy(r->copy[r->k], r->m->grads + lo, n * sizeof(ops_real));
    r->lo[r->k] = lo;
    r->n[r->k++] = n;
    return 0;
}
/* every norm placement with one layer of several mechanisms (MLA's, GDN's and DSA's own weights,
   identity's none): the backward hands over n_layers + 2 ranges, highest first, that tile the
   parameters once, each already final (the rest of the backward leaves it as it was: the tied
   embedding's range would not be, were it handed over before the embedding's own backward);
   then a callback that says stop ends the backward with -1 */
static void test_grads_ready(void) {
    const char *norms[3] = {"pre", "post", "sandwich"};
    for (int k = 0; k < 3; k++) {
        SmolConfig cfg = {0};
        cfg.vocab_size = 64;
        cfg.d_model = 32;
        cfg.n_layers = 5;
        cfg.n_heads = 4;
        cfg.norm = (SmolNormKind)(SMOLLM_NORM_PRE + k);
        snprintf(cfg.attn_layers, sizeof cfg.attn_layers, "mha,mla,gdn,identity,dsa");
        SmolModel m;
        char err[256], name[400];
        snprintf(name, sizeof name, "grads_ready, %s norm, layers %s", norms[k], cfg.attn_layers);
        if (smollm_init(&m, &cfg, NULL, 2, 16, err, sizeof err)) {
            report(0, name, err);
            continue;
        }
        int tok[32], tgt[32];
        for (int i = 0; i < 32; i++) tok[i] = (i * 7 + 3) % 64, tgt[i] = (i * 5 + 1) % 64;
        Ready r = {&m, 0, {0}, {0}, {0}};
        m.grads_ready = ready_record;
        m.grads_ready_ctx = &r;
        memset(m.grads, 0, m.n_params * sizeof(ops_real));
        float loss = smollm_step(&m, tok, tgt, 1.0f / 32);
        int tiled = isfinite(loss) && r.k == cfg.n_layers + 2, final = r.k > 0;
        size_t hi = m.n_params;
        for (int i = 0; i < r.k; i++) {
            tiled = tiled && r.n[i] > 0 && r.lo[i] + r.n[i] == hi;
            hi = r.lo[i];
            final = final && !memcmp(r.copy[i], m.grads + r.lo[i], r.n[i] * sizeof(ops_real));
            free(r.copy[i]);
        }
        tiled = tiled && hi == 0;
        char d[160];
        snprintf(d, sizeof d, "%d ranges, expected %d; the lowest starts at %zu of %zu", r.k, cfg.n_layers + 2, hi,
                 m.n_params);
        report(tiled, name, d);
        snprintf(name, sizeof name, "grads_ready, %s norm: each range final when handed over", norms[k]);
        report(final, name, NULL);
        /* stop at the third range: the backward says so */
        Ready stop = {&m, 13, {0}, {0}, {0}};
        m.grads_ready_ctx = &stop;
        smollm_forward(&m, tok);
        smollm_set_batch(&m, NULL, tgt);
        int rc = smollm_backward_device(&m, 1.0f / 32);
        for (int i = 13; i < stop.k; i++) free(stop.copy[i]);
        snprintf(name, sizeof name, "grads_ready, %s norm: a callback's -1 ends the backward with -1", norms[k]);
        report(rc == -1 && stop.k == 16, name, NULL);
        smollm_free(&m);
    }
}

/* ---- a study whose runs each train over 2 CPU ranks (gpus_per_run, study.h's GPUS PER RUN) ---- */
static int study_in_child(const char *spec_text, const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) return -1;
    fflush(stdout);
    pid_t p = fork(); /* study_run forks the ranks: no OpenMP in this process before (dist.h) */
    if (p == 0) {
        StudySpec s;
        char err[1024];
        if (study_parse_text(&s, spec_text, "dp.ini", err, sizeof err)) { fprintf(stderr, "%s\n", err); _exit(3); }
        StudyOptions o = {0};
        o.out = dir;
        o.quiet = 1;
        int rc = study_run(&s, &o, NULL);
        fflush(stdout);
        _exit(rc);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* the text of a small file, or "" */
static void slurp(const char *path, char *out, size_t n) {
    FILE *f = fopen(path, "r");
    size_t k = f ? fread(out, 1, n - 1, f) : 0;
    out[k] = 0;
    if (f) fclose(f);
}

static void test_study(void) {
    char spec[1024];
    const char *fmt = "name = dp\nlayers = 2\nd_model = 32\nheads = 4\nseq = 32\nbatch = 4\nsteps = 4\n"
                      "eval_batches = 1\neval_every = 2\ndata = %s\n%s[axes]\nattn = mha, gqa\n";
    snprintf(spec, sizeof spec, fmt, data, "gpus_per_run = 2\n");
    int rc = study_in_child(spec, "build/test_dist/study_dp2");
    report(rc == 0, "study: 2 runs x 2 CPU ranks (gpus_per_run = 2): every run ok", NULL);
    snprintf(spec, sizeof spec, fmt, data, "");
    rc = study_in_child(spec, "build/test_dist/study_dp1");
    report(rc == 0, "study: the same 2 runs in one process each", NULL);
    const char *runs[2] = {"attn-mha_seed1337", "attn-gqa_seed1337"};
    for (int i = 0; i < 2; i++) {
        char a[512], b[512], ja[8192], jb[8192], name[160];
        snprintf(a, sizeof a, "build/test_dist/study_dp2/%s", runs[i]);
        snprintf(b, sizeof b, "build/test_dist/study_dp1/%s", runs[i]);
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/config.json", a);
        snprintf(pb, sizeof pb, "%s/config.json", b);
        slurp(pa, ja, sizeof ja);
        slurp(pb, jb, sizeof jb);
        const char *ia = strstr(ja, "\"identity\": \""), *ib = strstr(jb, "\"identity\": \"");
        int same_id = ia && ib && !strncmp(ia, ib, 30);
        snprintf(name, sizeof name, "study %s: gpus_per_run recorded (2 and 1), the same identity", runs[i]);
        int ok = same_id && strstr(ja, "\"gpus_per_run\": 2,") && strstr(jb, "\"gpus_per_run\": 1,");
        report(ok, name, ok ? NULL : ja);
        /* 2 + 2 rows on two ranks against 4 rows in one backward: the order of the sums only */
        snprintf(name, sizeof name, "study %s: 2 ranks == 1 process", runs[i]);
        compare(name, b, a, 4, 2.5e-7, 1e-9, 0);
    }
}

/* ---- the CLI (the float ablate-cpu) ---- */
static int sh_run(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    size_t k = 0;
    if (!p) return -1;
    while (k + 1 < n && fgets(out + k, (int)(n - k), p)) k += strlen(out + k);
    out[k] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cli(void) {
    static char a[65536], b[65536];
    char cmd[1024];
    const char *args = "--layers 2 --d-model 32 --heads 4 --seq 32 --steps 4 --eval-batches 1 --eval-every 4 --device cpu";
    snprintf(cmd, sizeof cmd, "%s train %s --data %s --batch 4 --grad-accum 2 2>&1 | grep '^step .*loss'", bin, args, data);
    int ra = sh_run(cmd, a, sizeof a);
    snprintf(cmd, sizeof cmd, "%s train %s --data %s --batch 8 --ranks 2 2>&1 | grep -v 'data parallel' | grep '^step .*loss'",
             bin, args, data);
    int rb = sh_run(cmd, b, sizeof b);
    /* the step lines print 4 decimals of the loss and grad norm: float rounding stays below */
    char la[65536], lb[65536];
    size_t ka = 0, kb = 0;
    /* each line up to its tok/s field (timings differ) */
    for (const char *p = strtok(a, "\n"); p; p = strtok(NULL, "\n")) {
        const char *e = strstr(p, "tok/s");
        while (e && e > p && *e != '|') e--;
        ka += snprintf(la + ka, sizeof la - ka, "%.*s\n", e ? (int)(e - p) : (int)strlen(p), p);
    }
    for (const char *p = strtok(b, "\n"); p; p = strtok(NULL, "\n")) {
        const char *e = strstr(p, "tok/s");
        while (e && e > p && *e != '|') e--;
        kb += snprintf(lb + kb, sizeof lb - kb, "%.*s\n", e ? (int)(e - p) : (int)strlen(p), p);
    }
    int lines = 0;
    for (const char *p = la; *p; p++) lines += *p == '\n';
    /* 4 step lines and the final evaluation's */
    report(ra == 0 && rb == 0 && lines == 5 && !strcmp(la, lb),
           "CLI: train --ranks 2 prints the losses of --grad-accum 2", lines == 5 ? NULL : la);
    if (strcmp(la, lb)) printf("   accum:\n%s   ranks:\n%s", la, lb);

    snprintf(cmd, sizeof cmd, "%s train %s --data %s --batch 8 --ranks 2 --test-die-rank 1 2>&1", bin, args, data);
    int rc = sh_run(cmd, a, sizeof a);
    report(rc != 0 && strstr(a, "rank 1 of 2 was killed by signal 9") != NULL,
           "CLI: a killed rank fails the run, named", rc ? NULL : a);
    struct { const char *flags, *want; } bad[] = {
        {"--gpus 0,1", "--gpus: this is the CPU-only build"},
        {"--gpus 0,x", "--gpus '0,x': item 2 is not a GPU index"},
        {"--gpus 1,1", "--gpus '1,1': GPU 1 is listed twice"},
        {"--gpus 0,", "--gpus '0,': a trailing comma"},
        {"--gpus -1", "--gpus '-1': item 1 is not a GPU index"},
        {"--ranks 0", "--ranks expects an integer in [1, 64], got '0'"},
        {"--ranks 3", "--batch 8 cannot be split over 3 ranks: expected a multiple of 3"},
        {"--ranks 2 --gpus 0", "--gpus and --ranks are given together"},
        {"--ranks 2 --grad-reduce fp16", "expected fp32 or bf16"},
    };
    /* a study through the binary: gpus_per_run on CPU ranks, in this process and in 2 workers;
       and its refusals before the start (exit 2, nothing written) */
    const char *study = "--axes attn=mha,gqa --layers 2 --d-model 32 --heads 4 --seq 32 --steps 2 --batch 4 "
                        "--eval-batches 1 --device cpu --quiet";
    const char *sflags[] = {"--gpus-per-run 2", "--gpus-per-run 2 --workers 2", "--gpus-per-run 2 --grad-reduce bf16"};
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "rm -rf build/test_dist/cli_study && %s run %s --data %s %s --out build/test_dist/cli_study "
                                  "2>&1 && cat build/test_dist/cli_study/attn-gqa_seed1337/config.json",
                 bin, study, data, sflags[i]);
        rc = sh_run(cmd, a, sizeof a);
        char name[120];
        snprintf(name, sizeof name, "CLI: ablate run %s: ok, recorded in config.json", sflags[i]);
        int ok = rc == 0 && strstr(a, "\"gpus_per_run\": 2,") && (i < 2 || strstr(a, "\"grad_reduce\": \"bf16\""));
        report(ok, name, ok ? NULL : a);
    }
    struct { const char *flags, *want; } sbad[] = {
        {"--gpus-per-run 2 --gpus 0,1", "gpus_per_run = 2 with --gpus 0,1 on the CPU"},
        {"--gpus-per-run 3", "batch 4 cannot be split over gpus_per_run = 3 ranks: expected a multiple of 3"},
        {"--gpus-per-run 0", "--gpus-per-run expects an integer >= 1, got '0'"},
        {"--grad-reduce fp16", "unknown gradient reduction 'fp16' for --grad-reduce: expected fp32 or bf16"},
    };
    for (size_t i = 0; i < sizeof sbad / sizeof *sbad; i++) {
        snprintf(cmd, sizeof cmd, "rm -rf build/test_dist/cli_bad && %s run %s --data %s %s --out build/test_dist/cli_bad 2>&1; "
                                  "echo status $?; test -e build/test_dist/cli_bad && echo DIRECTORY-MADE",
                 bin, study, data, sbad[i].flags);
        sh_run(cmd, a, sizeof a);
        char name[120];
        snprintf(name, sizeof name, "CLI: ablate run %s refused", sbad[i].flags);
        int ok = strstr(a, "status 2") && strstr(a, sbad[i].want) && !strstr(a, "DIRECTORY-MADE");
        report(ok, name, ok ? NULL : a);
    }
    snprintf(cmd, sizeof cmd, "%s bench --gpus 2 2>&1", bin);
    rc = sh_run(cmd, a, sizeof a);
    report(rc == 2 && strstr(a, "bench --gpus: this is the CPU-only build"), "CLI: bench --gpus on the CPU build refused", a);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "%s train %s --data %s --batch 8 %s 2>&1", bin, args, data, bad[i].flags);
        rc = sh_run(cmd, a, sizeof a);
        char name[120];
        snprintf(name, sizeof name, "CLI: %s refused", bad[i].flags);
        report(rc == 2 && strstr(a, bad[i].want) != NULL, name, rc == 2 && strstr(a, bad[i].want) ? NULL : a);
    }
}

static void test_parse(void) {
    int ids[4];
    char err[256];
    report(dist_parse_gpus("0,1,3", ids, 4, err, sizeof err) == 3 && ids[2] == 3, "dist_parse_gpus 0,1,3", NULL);
    report(dist_parse_gpus("0,1,2,3,4", ids, 4, err, sizeof err) == -1 && strstr(err, "more than 4"),
           "dist_parse_gpus: more GPUs than ranks allowed, refused", err);
    report(dist_parse_gpus("", ids, 4, err, sizeof err) == -1 && strstr(err, "expected GPU indices"),
           "dist_parse_gpus: empty, refused", err);
}

int main(int argc, char **argv) {
    if (argc > 1) bin = argv[1];
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) { printf("cannot map shared memory\n"); return 1; }
    test_collectives(2);
    test_collectives(3);
    test_parse();
    if (system("mkdir -p build/test_dist")) printf("cannot make build/test_dist\n");
    test_training();
    test_study();
    if (access(bin, X_OK)) report(0, "CLI checks", "ablate-cpu is not built (make ablate-cpu)");
    else test_cli();
    test_grads_ready(); /* last: it runs OpenMP in this process, after which it must not fork */
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
