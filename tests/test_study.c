/* tests/test_study.c - the study driver (study.h) and the trainer's resume state (train.h).

     cc -O2 -I. -fopenmp -DABLATE_NO_CUDA tests/test_study.c -o tests/test_study -lm
     tests/test_study [path/to/ablate-cpu]       (make test runs it; default ./ablate-cpu)

   Spec parsing and each of its errors (with line numbers), grid expansion, the command-line
   form, phase selection, the train state round trip, a study killed with SIGKILL and resumed
   (its losses must equal an uninterrupted study's exactly), diverged and failed runs recorded
   while the study goes on, and the report redrawn from stored files (SVGs checked as XML).
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define OPS_IMPLEMENTATION
#define ATTN_IMPLEMENTATION
#define SMOLLM_IMPLEMENTATION
#define TRAIN_IMPLEMENTATION
#define DATA_IMPLEMENTATION
#define STUDY_IMPLEMENTATION
#include "../study.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int n_pass, n_fail;
static const char *ablate_bin = "./ablate-cpu";
static const char *corpus = "/usr/share/common-licenses/GPL-3";

static void report(int ok, const char *name, const char *detail) {
    if (ok) n_pass++; else n_fail++;
    printf("%s %-58s %s\n", ok ? "PASS" : "FAIL", name, detail ? detail : "");
    fflush(stdout);
}

/* ---- spec parsing ---- */
static void test_parse_ok(void) {
    const char *spec = "# a comment\n"
                       "name = mech-1\n"
                       "seeds = 2          ; two seeds from `seed`\n"
                       "seed = 7\n"
                       "d-model = 32\n"
                       "layers = 1\n"
                       "tokens = 4096\n"
                       "\n"
                       "[axes]\n"
                       "attn = [mha, gqa, mqa]\n"
                       "norm = pre,post\n";
    Study s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "t.ini", err, sizeof err);
    int ok = rc == 0 && !strcmp(s.name, "mech-1") && s.n_seeds == 2 && s.seeds[0] == 7 && s.seeds[1] == 8 &&
             s.n_phases == 1 && s.phases[0].n_axes == 2 && s.phases[0].axes[0].n == 3 &&
             !strcmp(s.phases[0].axes[0].values[2], "mqa") && !strcmp(s.phases[0].axes[1].key, "norm");
    report(ok, "spec: base keys, seeds, [axes] with lists", rc ? err : s.name);
    RunConfig c;
    rc = study_base_config(&s, "", &c, err, sizeof err);
    /* tokens budget: 4096 / (batch 8 * seq 256) = 2 steps */
    ok = rc == 0 && c.model.d_model == 32 && c.model.n_layers == 1 && run_config_steps(&c) == 2;
    char d[64];
    snprintf(d, sizeof d, "d_model %d, steps %d", c.model.d_model, run_config_steps(&c));
    report(ok, "spec: base configuration and tokens budget", d);
}

static void expect_error(const char *name, const char *spec, const char *want) {
    Study s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "bad.ini", err, sizeof err);
    char d[600];
    snprintf(d, sizeof d, "%s", rc ? err : "(accepted)");
    report(rc != 0 && strstr(err, want) != NULL, name, d);
}

static void test_parse_errors(void) {
    expect_error("spec error: unknown key, with line", "name = x\n\nbogus = 3\n", "bad.ini:3: unknown key 'bogus'");
    expect_error("spec error: bad value, with line", "layers = 2\nlr = fast\n",
                 "bad.ini:2: lr expects a number >= 0, got 'fast'");
    expect_error("spec error: bad integer", "steps = 0\n", "bad.ini:1: steps expects an integer >= 1, got '0'");
    expect_error("spec error: empty axis", "[axes]\nattn =\n", "bad.ini:2: axis 'attn' is empty");
    expect_error("spec error: empty axis []", "[axes]\n# c\nnorm = [ ]\n", "bad.ini:3: axis 'norm' is empty");
    expect_error("spec error: empty value in a list", "[axes]\nattn = mha,,gqa\n", "bad.ini:2: axis 'attn' has an empty value");
    expect_error("spec error: bad axis value", "[axes]\nattn = mha, flash\n", "bad.ini:2: unknown attention 'flash'");
    expect_error("spec error: unknown axis key", "[axes]\nwidth = 1, 2\n", "bad.ini:2: unknown key 'width'");
    expect_error("spec error: unknown section", "[grid]\n", "bad.ini:1: unknown section [grid]");
    expect_error("spec error: missing =", "layers 2\n", "bad.ini:1: expected key = value, got 'layers 2'");
    expect_error("spec error: axes and phases mixed", "[axes]\nattn = mha\n[phase a]\nnorm = pre\n",
                 "bad.ini:3: [phase a] cannot be mixed with [axes]");
    expect_error("spec error: duplicate axis", "[phase a]\nattn = mha\nattn = gqa\n", "bad.ini:3: axis 'attn' is given twice");
    expect_error("spec error: duplicate key", "lr = 1e-3\nlr = 2e-3\n", "bad.ini:2: key 'lr' is set twice");
    expect_error("spec error: seed as an axis", "[axes]\nseed = 1, 2\n", "bad.ini:2: 'seed' cannot be an axis");
    expect_error("spec error: bad seeds", "seeds = three\n", "bad.ini:1: seeds expects an integer >= 1, got 'three'");
    expect_error("spec error: phase without axes", "[phase a]\n[phase b]\nattn = mha\n", "[phase a] has no axes");
    expect_error("spec error: bad name", "name = a/b\n", "bad.ini:1: name 'a/b'");
    expect_error("spec error: bad device", "device = tpu\n", "bad.ini:1: unknown device 'tpu'");
}

/* ---- grid expansion ---- */
static void test_grid(void) {
    Study s;
    char err[512] = "";
    const char *spec = "seeds = 1, 5\nlayers = 1\n[axes]\nattn = mha, mqa\nnorm = pre, post, sandwich\n";
    int rc = study_parse_text(&s, spec, "g.ini", err, sizeof err);
    StudyRun runs[64];
    int n = rc ? -1 : study_expand(&s, 0, "", runs, 64, err, sizeof err);
    /* first axis slowest, seeds innermost */
    int ok = n == 12 && study_phase_size(&s, 0) == 12 && !strcmp(runs[0].name, "attn-mha_norm-pre_seed1") &&
             !strcmp(runs[1].name, "attn-mha_norm-pre_seed5") && !strcmp(runs[2].name, "attn-mha_norm-post_seed1") &&
             !strcmp(runs[11].name, "attn-mqa_norm-sandwich_seed5") && runs[11].cfg.model.attn == ATTN_MQA &&
             runs[11].cfg.model.norm == NORM_SANDWICH && runs[11].cfg.model.seed == 5 &&
             runs[4].cfg.model.norm == NORM_SANDWICH && runs[4].cfg.model.attn == ATTN_MHA &&
             runs[7].cfg.model.n_layers == 1 && !strcmp(runs[7].config_id, "attn-mqa_norm-pre") &&
             !strcmp(runs[7].axes, "attn=mqa norm=pre");
    char d[300];
    snprintf(d, sizeof d, "%d runs: %.60s .. %.60s", n, n > 0 ? runs[0].name : err, n > 11 ? runs[11].name : "");
    report(ok, "grid: 2 x 3 axes x 2 seeds, order and configs", d);

    /* the command-line form builds the same grid */
    Study c;
    StudyOptions o = {0};
    char *argv[] = {"--axes", "attn=mha,mqa", "norm=pre,post,sandwich", "--seeds", "1,5", "--layers", "1"};
    rc = study_from_args(&c, &o, 7, argv, err, sizeof err);
    StudyRun runs2[64];
    int n2 = rc ? -1 : study_expand(&c, 0, "", runs2, 64, err, sizeof err);
    ok = n2 == n;
    for (int i = 0; ok && i < n; i++)
        ok = !strcmp(runs[i].name, runs2[i].name) && !memcmp(&runs[i].cfg.model, &runs2[i].cfg.model, sizeof(SmolConfig));
    report(ok, "grid: ablate run --axes ... equals the spec", rc ? err : "");

    /* study.ini round trip: written, read back, same grid */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    study_write_spec(&c, mem);
    fclose(mem);
    Study r;
    rc = study_parse_text(&r, text, "study.ini", err, sizeof err);
    int n3 = rc ? -1 : study_expand(&r, 0, "", runs2, 64, err, sizeof err);
    ok = n3 == n;
    for (int i = 0; ok && i < n; i++) ok = !strcmp(runs[i].name, runs2[i].name);
    report(ok, "grid: study.ini written and read back", rc ? err : "");
    free(text);

    /* one seed is written as a list so that it is not read back as a count */
    rc = study_parse_text(&r, "seed = 42\nseeds = 1\n", "x", err, sizeof err);
    text = NULL;
    mem = open_memstream(&text, &len);
    study_write_spec(&r, mem);
    fclose(mem);
    Study r2;
    rc = rc || study_parse_text(&r2, text, "x", err, sizeof err);
    report(!rc && r2.n_seeds == 1 && r2.seeds[0] == 42, "grid: a single seed round-trips", "seeds = 42,");
    free(text);
}

/* ---- phases: the best value of a phase is carried into the next ---- */
static void test_phases(void) {
    Study s;
    char err[512] = "";
    const char *spec = "seeds = 2\nlayers = 1\n[phase mechanism]\nattn = mha, gqa, mqa\n[phase norm]\nnorm = pre, post\n";
    int rc = study_parse_text(&s, spec, "p.ini", err, sizeof err);
    StudyRun runs[16];
    int n = rc ? -1 : study_expand(&s, 0, "", runs, 16, err, sizeof err);
    StudySummary sums[16];
    memset(sums, 0, sizeof sums);
    /* mean val loss: mha 3.0, gqa 2.5 (one seed diverged: ignored), mqa 2.6 */
    double loss[6] = {3.1, 2.9, 2.5, NAN, 2.5, 2.7};
    for (int i = 0; i < 6 && n == 6; i++) {
        snprintf(sums[i].status, sizeof sums[i].status, "%s", isfinite(loss[i]) ? "ok" : "diverged");
        sums[i].final_val_loss = loss[i];
        sums[i].tokens_per_s = 100 * (i + 1);
    }
    char best[256] = "";
    rc = n == 6 ? study_select(&s, runs, sums, n, best, sizeof best, err, sizeof err) : -1;
    report(rc == 0 && !strcmp(best, "attn=gqa"), "phases: best by mean val loss over ok seeds", rc ? err : best);
    StudyRun next[16];
    int m = study_expand(&s, 1, best, next, 16, err, sizeof err);
    int ok = m == 4 && next[0].cfg.model.attn == ATTN_GQA && next[3].cfg.model.attn == ATTN_GQA &&
             next[3].cfg.model.norm == NORM_POST && !strcmp(next[0].name, "attn-gqa_norm-pre_seed1337") &&
             !strcmp(next[0].phase, "norm");
    report(ok, "phases: the next phase carries attn=gqa", m > 0 ? next[0].name : err);
    s.select_tps = 1;
    rc = study_select(&s, runs, sums, n, best, sizeof best, err, sizeof err);
    report(rc == 0 && !strcmp(best, "attn=mqa"), "phases: select = tokens_per_s", rc ? err : best);
    s.select_tps = 0;
    for (int i = 0; i < 6; i++) snprintf(sums[i].status, sizeof sums[i].status, "diverged");
    rc = study_select(&s, runs, sums, n, best, sizeof best, err, sizeof err);
    report(rc != 0 && strstr(err, "no run of phase 'mechanism'"), "phases: nothing to carry is an error", err);
}

/* ---- train state round trip, and a refusal on a schedule mismatch ---- */
static void test_train_state(void) {
    char err[512] = "";
    Dataset ds;
    if (data_open_text(&ds, corpus, 0.1f, err, sizeof err)) { report(0, "train state", err); return; }
    SmolConfig mc = {0};
    mc.vocab_size = 256; mc.d_model = 16; mc.n_layers = 1; mc.n_heads = 2;
    SmolModel m;
    smollm_init(&m, &mc, NULL, 2, 16, err, sizeof err);
    TrainConfig tc = {0};
    tc.steps = 10;
    Trainer a, b;
    train_init(&a, &m, &tc);
    Sampler sa = {&ds, DATA_TRAIN, 2, 16, 3, 0};
    for (int i = 0; i < 3; i++) train_step(&a, (BatchFn)data_next_batch, &sa);
    const char *path = "/tmp/ablate_test_train.state";
    uint64_t w[2] = {sa.rng, 12345}, r[2] = {0, 0};
    int rc = train_save_state(&a, w, 2, path, err, sizeof err);
    train_init(&b, &m, &tc);
    rc = rc || train_load_state(&b, r, 2, path, err, sizeof err);
    int ok = !rc && b.step == 3 && r[0] == sa.rng && r[1] == 12345 && b.gnorm_count == 3 &&
             b.gnorm_max == a.gnorm_max && !memcmp(a.m, b.m, m.n_params * sizeof(real_t)) &&
             !memcmp(a.v, b.v, m.n_params * sizeof(real_t));
    report(ok, "train state: moments, step, stats, user words", rc ? err : "");
    train_free(&b);
    tc.steps = 11;
    train_init(&b, &m, &tc);
    rc = train_load_state(&b, r, 2, path, err, sizeof err);
    report(rc != 0 && strstr(err, "steps is 10 in the file but 11 in this run"), "train state: schedule mismatch refused", err);
    train_free(&b);
    train_free(&a);
    smollm_free(&m);
    data_close(&ds);
    remove(path);
}

/* ---- through the binary ---- */
static pid_t spawn(char *const argv[]) {
    pid_t p = fork();
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); }
        execv(argv[0], argv);
        _exit(127);
    }
    return p;
}

static int wait_rc(pid_t p) {
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int file_has(const char *path, const char *needle) {
    char *t = study_read_all(path, NULL);
    int ok = t && strstr(t, needle);
    free(t);
    return ok;
}

/* the metrics with the timing fields (tokens_per_s, elapsed) left out: what must match */
static char *metrics_sans_time(const char *path) {
    char *t = study_read_all(path, NULL);
    if (!t) return NULL;
    StrBuf b = {0};
    sb_printf(&b, "%s", "");
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        StudyRow r;
        r.step = (int)study_json_num(line, "step");
        r.tokens = study_json_num(line, "tokens");
        r.loss = study_json_num(line, "loss");
        r.lr = study_json_num(line, "lr");
        r.grad_norm = study_json_num(line, "grad_norm");
        r.tokens_per_s = 0;
        r.elapsed = 0;
        r.val_loss = study_json_num(line, "val_loss");
        study_row_json(&b, &r);
    }
    free(t);
    return b.p;
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* nothing to do: the next steps report what is missing */ }
}

static void test_resume(const char *base) {
    char a_dir[300], b_dir[300];
    snprintf(a_dir, sizeof a_dir, "%s/whole", base);
    snprintf(b_dir, sizeof b_dir, "%s/killed", base);
    /* two runs of 150 steps, a checkpoint every 5: plenty of steps left after the kill */
    char *args[] = {(char *)ablate_bin, "run", "--axes", "attn=mha,gqa", "--steps", "150", "--layers", "1",
                    "--d-model", "32", "--heads", "4", "--seq", "32", "--batch", "4", "--eval-every", "7",
                    "--eval-batches", "2", "--checkpoint-every", "5", "--data", (char *)corpus, "--out", a_dir, NULL};
    int na = (int)(sizeof args / sizeof *args) - 2;
    int rc = wait_rc(spawn(args));
    report(rc == 0, "resume: uninterrupted study", a_dir);
    args[na] = b_dir;
    pid_t p = spawn(args);
    /* kill it in the second run, some steps past a checkpoint */
    char ck[400], mpath[400];
    snprintf(ck, sizeof ck, "%s/attn-gqa_seed1337/ckpt-00000020", b_dir);
    snprintf(mpath, sizeof mpath, "%s/attn-gqa_seed1337/metrics.jsonl", b_dir);
    int waited = 0;
    while (!study_exists(ck) && waited < 60000) { usleep(500); waited++; }
    while (!file_has(mpath, "\"step\": 22,") && waited < 60000) { usleep(500); waited++; }
    kill(p, SIGKILL);
    int st;
    waitpid(p, &st, 0);
    char sp[400];
    snprintf(sp, sizeof sp, "%s/attn-gqa_seed1337/summary.json", b_dir);
    int mid = WIFSIGNALED(st) && !study_exists(sp) && study_exists(ck);
    report(mid, "resume: study killed with SIGKILL mid-run", mid ? "killed past step 22" : "not killed mid-run");
    char *rargs[] = {(char *)ablate_bin, "run", "--resume", b_dir, NULL};
    rc = wait_rc(spawn(rargs));
    report(rc == 0 && study_exists(sp), "resume: --resume finishes the study", b_dir);
    const char *runs[] = {"attn-mha_seed1337", "attn-gqa_seed1337"};
    for (int i = 0; i < 2; i++) {
        char pa[400], pb[400];
        snprintf(pa, sizeof pa, "%s/%s/metrics.jsonl", a_dir, runs[i]);
        snprintf(pb, sizeof pb, "%s/%s/metrics.jsonl", b_dir, runs[i]);
        char *x = metrics_sans_time(pa), *y = metrics_sans_time(pb);
        int same = x && y && !strcmp(x, y) && strstr(x, "\"step\": 150,") && strstr(x, "val_loss");
        char name[100];
        snprintf(name, sizeof name, "resume: %s losses equal the uninterrupted run", runs[i]);
        report(same, name, same ? "150 steps, bit-identical" : "differ");
        free(x);
        free(y);
    }
    StudySummary sa, sb;
    char pa[400];
    snprintf(pa, sizeof pa, "%s/attn-gqa_seed1337/summary.json", a_dir);
    int ok = !study_summary_read(pa, &sa) && !study_summary_read(sp, &sb) && sa.final_val_loss == sb.final_val_loss &&
             sa.grad_norm_max == sb.grad_norm_max && sa.grad_norm_mean == sb.grad_norm_mean && sb.steps_done == 150 &&
             sa.smoothness == sb.smoothness && sa.tokens == sb.tokens;
    report(ok, "resume: summaries agree (val loss, grad norms, tokens)", "");
    char ck0[400];
    snprintf(ck0, sizeof ck0, "%s/attn-gqa_seed1337/ckpt-00000020", b_dir);
    report(!study_exists(ck0), "resume: checkpoints removed once a run finishes", "");
    /* a second resume has nothing left to do */
    rc = wait_rc(spawn(rargs));
    report(rc == 0, "resume: a finished study resumes as a no-op", "");
    /* --out on an existing study is refused */
    args[na] = a_dir;
    rc = wait_rc(spawn(args));
    report(rc == 2, "resume: --out on an existing study is refused", "rc 2");
}

/* ---- a diverged run and a failed run are recorded; the study goes on ---- */
static void test_failures(const char *base) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/fail", base);
    char *args[] = {(char *)ablate_bin, "run", "--axes", "lr=1e30,3e-3", "heads=4,5", "--steps", "12", "--layers", "1",
                    "--d-model", "32", "--seq", "16", "--batch", "2", "--eval-batches", "1", "--data", (char *)corpus,
                    "--name", "fails", "--out", dir, NULL};
    int rc = wait_rc(spawn(args));
    StudySummary s[4];
    const char *names[] = {"lr-1e30_heads-4_seed1337", "lr-1e30_heads-5_seed1337", "lr-3e-3_heads-4_seed1337",
                           "lr-3e-3_heads-5_seed1337"};
    int got = 0;
    for (int i = 0; i < 4; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s/summary.json", dir, names[i]);
        got += study_summary_read(p, &s[i]) == 0;
    }
    report(rc == 0 && got == 4, "failures: the study finishes every run", dir);
    if (got < 4) return;
    report(!strcmp(s[0].status, "diverged") && strstr(s[0].reason, "loss is"), "failures: NaN/inf loss recorded as diverged",
           s[0].reason);
    report(!strcmp(s[1].status, "failed") && strstr(s[1].reason, "d_model 32 is not divisible by heads 5"),
           "failures: a bad shape recorded as failed", s[1].reason);
    report(!strcmp(s[2].status, "ok") && isfinite(s[2].final_val_loss) && s[2].params_total > 0 &&
               s[2].kv_bytes_per_token == 64 && s[2].grad_norm_max >= s[2].grad_norm_mean && s[2].smoothness > 0,
           "failures: the good run is complete (params, KV, grad norms)", s[2].status);
}

/* a run that keeps killing the process is given up after 3 tries without checkpoint progress */
static void test_attempts(const char *base) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/attempts", base);
    char *args[] = {(char *)ablate_bin, "run", "--axes", "attn=mha,mqa", "--steps", "3", "--layers", "1", "--d-model",
                    "16", "--heads", "2", "--seq", "8", "--batch", "2", "--eval-batches", "1", "--data",
                    (char *)corpus, "--out", dir, NULL};
    int rc = wait_rc(spawn(args));
    /* pretend the second run crashed the process three times before its first checkpoint */
    snprintf(p, sizeof p, "%s/attn-mqa_seed1337/summary.json", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/attn-mqa_seed1337/attempts", dir);
    FILE *f = fopen(p, "w");
    if (f) { fputs("3 0\n", f); fclose(f); }
    char *rargs[] = {(char *)ablate_bin, "run", "--resume", dir, NULL};
    rc = rc || wait_rc(spawn(rargs));
    StudySummary s;
    snprintf(p, sizeof p, "%s/attn-mqa_seed1337/summary.json", dir);
    int ok = !rc && !study_summary_read(p, &s) && !strcmp(s.status, "failed") && strstr(s.reason, "died 3 times");
    report(ok, "failures: a run that kills the process is not retried forever", ok ? s.reason : "");
}

/* phases through the binary: the winner of phase 1 is carried, a repeated run is not retrained */
static void test_phases_run(const char *base) {
    char dir[300], spec[300], p[400];
    snprintf(dir, sizeof dir, "%s/phased", base);
    snprintf(spec, sizeof spec, "%s/phased.ini", base);
    FILE *f = fopen(spec, "w");
    if (!f) { report(0, "phases: write the spec", spec); return; }
    fprintf(f, "name = phased\nsteps = 8\nlayers = 1\nd_model = 16\nheads = 2\nseq = 16\nbatch = 2\n"
               "eval_batches = 1\ndata = %s\n[phase mechanism]\nattn = mha, mqa\n[phase norm]\n"
               "norm = pre, post\n", corpus);
    fclose(f);
    char *args[] = {(char *)ablate_bin, "run", spec, "--out", dir, NULL};
    int rc = wait_rc(spawn(args));
    StudySummary a, b;
    snprintf(p, sizeof p, "%s/attn-mha_seed1337/summary.json", dir);
    int ok = !rc && !study_summary_read(p, &a);
    snprintf(p, sizeof p, "%s/attn-mqa_seed1337/summary.json", dir);
    ok = ok && !study_summary_read(p, &b);
    const char *win = ok && b.final_val_loss < a.final_val_loss ? "mqa" : "mha";
    char post[400], pre[400];
    snprintf(post, sizeof post, "%s/attn-%s_norm-post_seed1337/summary.json", dir, win);
    snprintf(pre, sizeof pre, "%s/attn-%s_norm-pre_seed1337", dir, win);
    ok = ok && study_exists(post) && !study_exists(pre); /* norm=pre is the default: same run as phase 1's */
    report(ok, "phases: ablate run carries the winner, reuses runs", win);
}

/* a phased study over 2 worker processes gives the same runs and losses as one process */
static void test_workers(const char *base) {
    char one[300], two[300], spec[300];
    snprintf(one, sizeof one, "%s/w1", base);
    snprintf(two, sizeof two, "%s/w2", base);
    snprintf(spec, sizeof spec, "%s/workers.ini", base);
    FILE *f = fopen(spec, "w");
    if (!f) { report(0, "workers: write the spec", spec); return; }
    fprintf(f, "name = workers\nsteps = 8\nlayers = 1\nd_model = 16\nheads = 2\nseq = 16\nbatch = 2\n"
               "eval_batches = 1\ndata = %s\nseeds = 1, 2\n[phase mechanism]\nattn = mha, mqa, identity\n"
               "[phase norm]\nnorm = post, sandwich\n", corpus);
    fclose(f);
    char *a1[] = {(char *)ablate_bin, "run", spec, "--out", one, "--quiet", NULL};
    char *a2[] = {(char *)ablate_bin, "run", spec, "--out", two, "--quiet", "--workers", "2", NULL};
    int rc = wait_rc(spawn(a1)) | wait_rc(spawn(a2));
    const char *names[] = {"attn-mha_seed1", "attn-mqa_seed2", "attn-identity_seed1"};
    int ok = !rc, same = 0;
    for (int i = 0; i < 3 && ok; i++) {
        char p1[400], p2[400];
        StudySummary x, y;
        snprintf(p1, sizeof p1, "%s/%s/summary.json", one, names[i]);
        snprintf(p2, sizeof p2, "%s/%s/summary.json", two, names[i]);
        ok = !study_summary_read(p1, &x) && !study_summary_read(p2, &y) && x.final_val_loss == y.final_val_loss;
        same += ok;
    }
    char p1[400], p2[400];
    snprintf(p1, sizeof p1, "%s/results.csv", one);
    snprintf(p2, sizeof p2, "%s/results.csv", two);
    char *r1 = study_read_all(p1, NULL), *r2 = study_read_all(p2, NULL);
    /* same rows, the same number of runs in phase 2: the same winner was carried */
    int lines1 = 0, lines2 = 0;
    for (char *c = r1; c && *c; c++) lines1 += *c == '\n';
    for (char *c = r2; c && *c; c++) lines2 += *c == '\n';
    ok = ok && r1 && r2 && lines1 == lines2 && lines1 > 6;
    free(r1);
    free(r2);
    char d[64];
    snprintf(d, sizeof d, "%d of 3 runs equal, %d/%d result rows", same, lines1, lines2);
    report(ok, "workers: --workers 2 = one process (losses, phases, results)", d);
    char *bad[] = {(char *)ablate_bin, "run", "--axes", "attn=mha", "--gpus", "0,x", NULL};
    report(wait_rc(spawn(bad)) == 2, "workers: --gpus with a bad list is refused", NULL);
}

/* a minimal XML check: the declaration, then tags that nest and close */
static int xml_ok(const char *t, char *why, size_t n) {
    if (strncmp(t, "<?xml", 5)) { snprintf(why, n, "no <?xml declaration"); return 0; }
    char stack[32][32];
    int depth = 0, root = 0;
    for (const char *p = strchr(t + 1, '<'); p; p = strchr(p + 1, '<')) {
        if (p[1] == '?' || p[1] == '!') continue;
        const char *e = strchr(p, '>');
        if (!e) { snprintf(why, n, "unclosed tag"); return 0; }
        char name[32];
        int closing = p[1] == '/', self = e[-1] == '/';
        sscanf(p + 1 + closing, "%31[a-zA-Z0-9_:-]", name);
        if (closing) {
            if (!depth || strcmp(stack[depth - 1], name)) { snprintf(why, n, "</%s> does not match", name); return 0; }
            depth--;
        } else if (!self) {
            if (depth == 32) { snprintf(why, n, "too deep"); return 0; }
            snprintf(stack[depth++], 32, "%s", name);
            root += depth == 1;
        }
    }
    if (depth || root != 1) { snprintf(why, n, "%d tags left open", depth); return 0; }
    return 1;
}

static void test_report(const char *base) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/whole", base);
    const char *files[] = {"results.json", "results.csv", "loss.svg", "val_vs_throughput.svg", "val_vs_memory.svg"};
    for (int i = 0; i < 5; i++) { snprintf(p, sizeof p, "%s/%s", dir, files[i]); remove(p); }
    char *args[] = {(char *)ablate_bin, "report", dir, NULL};
    int rc = wait_rc(spawn(args));
    int all = 1;
    for (int i = 0; i < 5; i++) { snprintf(p, sizeof p, "%s/%s", dir, files[i]); all &= study_exists(p); }
    report(rc == 0 && all, "report: ablate report DIR redraws every file", dir);
    const char *want[][4] = {{"loss.svg", "class=\"train\"", "class=\"val\"", "<circle"},
                             {"val_vs_throughput.svg", "class=\"pareto\"", "attn-gqa", "tokens/s"},
                             {"val_vs_memory.svg", "class=\"pareto\"", "attn-mha", "KV-cache bytes"}};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, want[i][0]);
        char *t = study_read_all(p, NULL), why[100] = "";
        int ok = t && xml_ok(t, why, sizeof why) && strstr(t, "<svg") && strstr(t, want[i][1]) &&
                 strstr(t, want[i][2]) && strstr(t, want[i][3]);
        char name[100];
        snprintf(name, sizeof name, "report: %s is XML with its elements", want[i][0]);
        report(ok, name, t ? why : "missing");
        free(t);
    }
    snprintf(p, sizeof p, "%s/results.csv", dir);
    char *t = study_read_all(p, NULL);
    int lines = 0;
    for (char *c = t; c && *c; c++) lines += *c == '\n';
    report(t && lines == 3 && !strncmp(t, "run,config,phase", 16) && strstr(t, "attn-gqa_seed1337,attn-gqa,grid"),
           "report: results.csv has a header and a row per run", "");
    free(t);
    snprintf(p, sizeof p, "%s/results.json", dir);
    t = study_read_all(p, NULL);
    report(t && t[0] == '[' && strstr(t, "\"status\": \"ok\"") && strstr(t, "\"best_val_ppl\""),
           "report: results.json lists the summaries", "");
    free(t);
    char *bad[] = {(char *)ablate_bin, "report", "/nonexistent/study", NULL};
    report(wait_rc(spawn(bad)) == 2, "report: a missing directory is refused", "rc 2");
}

int main(int argc, char **argv) {
    if (argc > 1) ablate_bin = argv[1];
    /* one thread: the same arithmetic order in every run, and no spinning threads on a busy machine */
    setenv("OMP_NUM_THREADS", "1", 1);
    test_parse_ok();
    test_parse_errors();
    test_grid();
    test_phases();
    test_train_state();
    char base[] = "/tmp/ablate_test_studyXXXXXX";
    if (!mkdtemp(base)) { report(0, "temporary directory", base); return 1; }
    if (access(ablate_bin, X_OK)) report(0, "the ablate-cpu binary", ablate_bin);
    else {
        test_resume(base);
        test_failures(base);
        test_attempts(base);
        test_phases_run(base);
        test_workers(base);
        test_report(base);
    }
    if (!n_fail) rm_rf(base);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
