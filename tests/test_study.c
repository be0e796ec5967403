/* tests/test_study.c - the study driver (study.h) and the trainer's resume state (train.h).

     cc -O2 -I. -fopenmp tests/test_study.c -o tests/test_study -lm
    tests/test_study [path/to/ablate-cpu]       (make test runs it; default ./ablate-cpu)

   Spec parsing and each of its errors (with line numbers), grid expansion, the command-line
   form, phase selection, the train state round trip, a study killed with SIGKILL and resumed
   (its losses must equal an uninterrupted study's exactly), diverged and failed runs recorded
   while the study goes on, and the report redrawn from stored files (SVGs checked as XML).
   Issue 14: the table of run keys (changing any single key changes the identity and
   config.json), quoted axis values (a data mix), long values (no crash, no shared directory),
   the statistics over seeds (t quantiles, the t tail against closed forms and integrals, Welch
   against values computed by numerical integration, the report's verdicts), and a study over
   latent_dim (mla), topk (dsa) and data (two texts and a mix) that trains every run.
   Issue 22: gpus_per_run (spec key, --gpus-per-run, study.ini, the --gpus groups, the refusals
   before the start) and grad_reduce (fp32 outside the identity, bf16 in it).
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h" /* report(), n_pass, n_fail */
static char *report_text(const char *dir);
static const char *ablate_bin = "./ablate-cpu";
static const char *corpus = "/usr/share/common-licenses/GPL-3";


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
    StudySpec s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "t.ini", err, sizeof err);
    int ok = rc == 0 && !strcmp(s.name, "mech-1") && s.n_seeds == 2 && s.seeds[0] == 7 && s.seeds[1] == 8 &&
             s.n_phases == 1 && s.phases[0].n_axes == 2 && s.phases[0].axes[0].n == 3 &&
             !strcmp(s.phases[0].axes[0].values[2], "mqa") && !strcmp(s.phases[0].axes[1].key, "norm");
    report(ok, "spec: base keys, seeds, [axes] with lists", rc ? err : s.name);
    StudyRunConfig c;
    rc = study_base_config(&s, "", &c, err, sizeof err);
    /* tokens budget: 4096 / (batch 8 * seq 256) = 2 steps */
    ok = rc == 0 && c.model.d_model == 32 && c.model.n_layers == 1 && study_run_config_steps(&c) == 2;
    char d[64];
    snprintf(d, sizeof d, "d_model %d, steps %d", c.model.d_model, study_run_config_steps(&c));
    report(ok, "spec: base configuration and tokens budget", d);
}

static void expect_error(const char *name, const char *spec, const char *want) {
    StudySpec s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "bad.ini", err, sizeof err);
    char d[600];
    snprintf(d, sizeof d, "%s", rc ? err : "(accepted)");
    report(rc != 0 && strstr(err, want) != NULL, name, d);
}

static void test_parse_errors(void) {
    expect_error("spec error: unknown key, with line", "name = x\n\nbogus = 3\n", "bad.ini:3: unknown key 'bogus'");
    expect_error("spec error: bad value, with line", "layers = 2\nlr = fast\n",
                 "bad.ini:2: lr expects a number > 0, got 'fast'");
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
    StudySpec s;
    char err[512] = "";
    const char *spec = "seed_list = 1, 5\nlayers = 1\n[axes]\nattn = mha, mqa\nnorm = pre, post, sandwich\n";
    int rc = study_parse_text(&s, spec, "g.ini", err, sizeof err);
    StudyRun runs[64];
    int n = rc ? -1 : study_expand(&s, 0, "", runs, 64, err, sizeof err);
    /* first axis slowest, seeds innermost */
    int ok = n == 12 && study_phase_size(&s, 0) == 12 && !strcmp(runs[0].name, "attn-mha_norm-pre_seed1") &&
             !strcmp(runs[1].name, "attn-mha_norm-pre_seed5") && !strcmp(runs[2].name, "attn-mha_norm-post_seed1") &&
             !strcmp(runs[11].name, "attn-mqa_norm-sandwich_seed5") && runs[11].cfg.model.attn.kind == ATTN_MQA &&
             runs[11].cfg.model.norm == SMOLLM_NORM_SANDWICH && runs[11].cfg.model.seed == 5 &&
             runs[4].cfg.model.norm == SMOLLM_NORM_SANDWICH && runs[4].cfg.model.attn.kind == ATTN_MHA &&
             runs[7].cfg.model.n_layers == 1 && !strcmp(runs[7].config_id, "attn-mqa_norm-pre") &&
             !strcmp(runs[7].axes, "attn=mqa norm=pre");
    char d[300];
    snprintf(d, sizeof d, "%d runs: %.60s .. %.60s", n, n > 0 ? runs[0].name : err, n > 11 ? runs[11].name : "");
    report(ok, "grid: 2 x 3 axes x 2 seeds, order and configs", d);

    /* a later phase that sets a carried key again: the run takes the phase's value, and its name
       and axes show only that one (a carried key the phase does not set stays, first) */
    StudySpec ph;
    rc = study_parse_text(&ph, "layers = 1\n[phase a]\nattn = mha, gqa\n[phase b]\nattn = mqa, mha\nlr = 0.001, 0.01\n",
                          "p.ini", err, sizeof err);
    StudyRun pr[8];
    int np = rc ? -1 : study_expand(&ph, 1, "attn=gqa kv_heads=1", pr, 8, err, sizeof err);
    ok = np == 4 && !strcmp(pr[0].name, "kv_heads-1_attn-mqa_lr-0.001_seed1337") &&
         !strcmp(pr[0].axes, "kv_heads=1 attn=mqa lr=0.001") && pr[0].cfg.model.attn.kind == ATTN_MQA &&
         pr[0].cfg.model.attn.n_kv_heads == 1 && !strcmp(pr[3].axes, "kv_heads=1 attn=mha lr=0.01") &&
         pr[3].cfg.model.attn.kind == ATTN_MHA;
    snprintf(d, sizeof d, "%d runs: %.80s / %.60s", np, np > 0 ? pr[0].name : err, np > 0 ? pr[0].axes : "");
    report(ok, "phases: a key the phase sets again is not carried into its names", d);

    /* the command-line form builds the same grid */
    StudySpec c;
    StudyOptions o = {0};
    char *argv[] = {"--axes", "attn=mha,mqa", "norm=pre,post,sandwich", "--seed-list", "1,5", "--layers", "1"};
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
    StudySpec r;
    rc = study_parse_text(&r, text, "study.ini", err, sizeof err);
    int n3 = rc ? -1 : study_expand(&r, 0, "", runs2, 64, err, sizeof err);
    ok = n3 == n;
    for (int i = 0; ok && i < n; i++) ok = !strcmp(runs[i].name, runs2[i].name);
    report(ok, "grid: study.ini written and read back", rc ? err : "");
    free(text);

    /* study.ini names the seeds themselves (seed_list): a count from `seed`, one seed, a list */
    const char *forms[] = {"seed = 42\nseeds = 1\n", "seed = 1338\nseeds = 3\n", "seed_list = 1338\n", "seed_list = 9, 1, 7\n"};
    const uint64_t want[][3] = {{42}, {1338, 1339, 1340}, {1338}, {9, 1, 7}};
    const int nwant[] = {1, 3, 1, 3};
    for (int f = 0; f < 4; f++) {
        rc = study_parse_text(&r, forms[f], "x", err, sizeof err);
        text = NULL;
        mem = open_memstream(&text, &len);
        study_write_spec(&r, mem);
        fclose(mem);
        StudySpec r2;
        rc = rc || study_parse_text(&r2, text, "x", err, sizeof err);
        ok = !rc && r2.n_seeds == nwant[f] && r.n_seeds == nwant[f] && strstr(text, "seed_list = ");
        for (int i = 0; ok && i < nwant[f]; i++) ok = r2.seeds[i] == want[f][i] && r.seeds[i] == want[f][i];
        char name[100];
        snprintf(name, sizeof name, "seeds: %.40s round-trips through study.ini", forms[f]);
        for (char *c = name; *c; c++) if (*c == '\n') *c = ' ';
        report(ok, name, rc ? err : "");
        free(text);
    }
}

/* ---- seeds = N is a count, seed_list = ... the seeds themselves ---- */
static void test_seeds(void) {
    expect_error("seeds: a list in seeds is refused, pointing at seed_list", "seeds = 1, 7, 42\n",
                 "bad.ini:1: seeds = 1, 7, 42: seeds is a count (N seeds from `seed`); a list of seeds goes in "
                 "seed_list = 1, 7, 42");
    expect_error("seeds: seeds = 1338 is a count (too many)", "seeds = 1338\n", "bad.ini:1: seeds = 1338: expected at most 64");
    expect_error("seeds: seeds and seed_list together are refused", "seeds = 2\nseed_list = 5\n",
                 "bad.ini:2: seed_list = 5: seeds (a count from `seed`) and seed_list (the seeds themselves) are both given");
    expect_error("seeds: a seed listed twice is refused", "seed_list = 3, 4, 3\n", "seed 3 is listed twice");
    expect_error("seeds: a bad seed in seed_list", "seed_list = 3, x\n", "got 'x'");
    expect_error("seeds: seed_list is not an axis", "[axes]\nseed_list = 1, 2\n", "'seed_list' cannot be an axis");
    StudySpec s;
    StudyOptions o = {0};
    char err[512] = "";
    char *a1[] = {"--seeds", "3", "--seed", "10"};
    int rc = study_from_args(&s, &o, 4, a1, err, sizeof err);
    report(!rc && s.n_seeds == 3 && s.seeds[0] == 10 && s.seeds[2] == 12, "seeds: --seeds 3 counts up from --seed", err);
    char *a2[] = {"--seed-list", "1338"};
    rc = study_from_args(&s, &o, 2, a2, err, sizeof err);
    report(!rc && s.n_seeds == 1 && s.seeds[0] == 1338, "seeds: --seed-list 1338 is the one seed 1338", err);
    char *a3[] = {"--seeds", "1,2"};
    rc = study_from_args(&s, &o, 2, a3, err, sizeof err);
    report(rc && strstr(err, "--seed-list 1,2"), "seeds: --seeds 1,2 is refused, pointing at --seed-list", err);
}

/* ---- phases: the best value of a phase is carried into the next ---- */
static void test_phases(void) {
    StudySpec s;
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
    int ok = m == 4 && next[0].cfg.model.attn.kind == ATTN_GQA && next[3].cfg.model.attn.kind == ATTN_GQA &&
             next[3].cfg.model.norm == SMOLLM_NORM_POST && !strcmp(next[0].name, "attn-gqa_norm-pre_seed1337") &&
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
    DataSet ds;
    if (data_open_text(&ds, corpus, 0.1f, err, sizeof err)) { report(0, "train state", err); return; }
    SmolConfig mc = {0};
    mc.vocab_size = 256; mc.d_model = 16; mc.n_layers = 1; mc.n_heads = 2;
    SmolModel m;
    smollm_init(&m, &mc, NULL, 2, 16, err, sizeof err);
    TrainConfig tc = {0};
    tc.steps = 10;
    TrainState a, b;
    train_init(&a, &m, &tc);
    DataSampler sa = {&ds, DATA_TRAIN, 2, 16, 3, 0};
    for (int i = 0; i < 3; i++) train_step(&a, (TrainBatchFn)data_next_batch, &sa);
    const char *path = "/tmp/ablate_test_train.state";
    uint64_t w[2] = {sa.rng, 12345}, r[2] = {0, 0};
    int rc = train_save_state(&a, w, 2, path, err, sizeof err);
    train_init(&b, &m, &tc);
    rc = rc || train_load_state(&b, r, 2, path, err, sizeof err);
    int ok = !rc && b.step == 3 && r[0] == sa.rng && r[1] == 12345 && b.gnorm_count == 3 &&
             b.gnorm_max == a.gnorm_max && !memcmp(a.m, b.m, m.n_params * sizeof(ops_real)) &&
             !memcmp(a.v, b.v, m.n_params * sizeof(ops_real));
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

/* the same with stdout and stderr into a file */
static pid_t spawn_out(char *const argv[], const char *path) {
    pid_t p = fork();
    if (p == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
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
    /* seq 5000 needs more validation text than GPL-3's tenth: a run that fails on its data (a
       bad shape is refused before the study starts: test_check_cli) */
    char *args[] = {(char *)ablate_bin, "run", "--axes", "lr=1e30,3e-3", "seq=16,5000", "--steps", "12", "--layers", "1",
                    "--d-model", "32", "--heads", "4", "--batch", "2", "--eval-batches", "1", "--data", (char *)corpus,
                    "--name", "fails", "--out", dir, NULL};
    int rc = wait_rc(spawn(args));
    StudySummary s[4];
    const char *names[] = {"lr-1e30_seq-16_seed1337", "lr-1e30_seq-5000_seed1337", "lr-3e-3_seq-16_seed1337",
                           "lr-3e-3_seq-5000_seed1337"};
    int got = 0;
    for (int i = 0; i < 4; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s/summary.json", dir, names[i]);
        got += study_summary_read(p, &s[i]) == 0;
    }
    /* exit status 1: the study ran, some runs did not finish ok */
    report(rc == 1 && got == 4, "failures: the study finishes every run, exit status 1", dir);
    if (got < 4) return;
    report(!strcmp(s[0].status, "diverged") && strstr(s[0].reason, "loss is"), "failures: NaN/inf loss recorded as diverged",
           s[0].reason);
    report(!strcmp(s[1].status, "failed") && strstr(s[1].reason, "seq 5000 needs at least 5001"),
           "failures: a run whose data is too short recorded as failed", s[1].reason);
    report(!strcmp(s[2].status, "ok") && isfinite(s[2].final_val_loss) && s[2].params_total > 0 &&
               s[2].kv_bytes_per_token == 64 && s[2].grad_norm_max >= s[2].grad_norm_mean && s[2].smoothness > 0,
           "failures: the good run is complete (params, KV, grad norms)", s[2].status);
    /* the CPU's peak: at least the fp32 weights, gradients and both AdamW moments */
    char d[120];
    snprintf(d, sizeof d, "peak %.0f bytes, 16 x params %.0f", s[2].peak_bytes, 16 * s[2].params_total);
    report(isfinite(s[2].peak_bytes) && s[2].peak_bytes >= 16 * s[2].params_total && s[2].peak_bytes < 1e9,
           "cpu peak memory: measured per run (resident set high-water mark)", d);
    char *out = report_text(dir);
    int ok = out && strstr(out, "best by memory:     ") && strstr(out, "(mean peak ") && !strstr(out, "peak 0.0") &&
             !strstr(out, "no run measured");
    report(ok, "cpu peak memory: the table's best by memory line", ok ? NULL : out);
    free(out);
}

/* ---- a spec is checked whole before anything is written ---- */
static void expect_check(const char *name, const char *spec, const char *w1, const char *w2, const char *w3) {
    StudySpec s;
    char err[2048] = "";
    int rc = study_parse_text(&s, spec, "bad.ini", err, sizeof err);
    if (!rc) rc = study_check(&s, NULL, err, sizeof err);
    int ok = rc < 0 && strstr(err, w1) && strstr(err, w2) && (!w3 || strstr(err, w3));
    report(ok, name, rc ? err : "(accepted)");
}

static void test_check(void) {
    expect_check("check: a shape error in phase 0 names the line and the run",
                 "name = x\nlayers = 1\nd_model = 64\n[axes]\nattn = mha, gqa, mqa\n",
                 "bad.ini:3 (d_model = 64): phase 'grid', run attn-mha_seed1337 (attn=mha): d_model 64 is not divisible "
                 "by heads 9", "3 of the 3 configurations of phase 'grid' are refused (3 runs)", NULL);
    expect_check("check: an axis line is named with the run's value",
                 "layers = 1\nd_model = 32\nseeds = 2\n[axes]\nattn = mha, gqa\nheads = 4, 5\n",
                 "bad.ini:2 (d_model = 32), bad.ini:6 (heads = 5): phase 'grid', run attn-mha_heads-5_seed1337 "
                 "(attn=mha heads=5)", "2 of the 4 configurations of phase 'grid' are refused (4 runs)", NULL);
    /* phase 1 alone is broken, and only with one of the values phase 0 could carry */
    expect_check("check: a later phase with every value that could be carried",
                 "layers = 1\nd_model = 64\nheads = 4\n[phase m]\nattn = gqa, mha\n[phase kv]\nkv_heads = 2, 4\n",
                 "bad.ini:3 (heads = 4), bad.ini:5 (attn = mha), bad.ini:7 (kv_heads = 2): phase 'kv', run attn-mha_kv_heads-2_seed1337 "
                 "(attn=mha kv_heads=2): attn mha needs kv_heads = heads (4), got 2",
                 "1 of the 4 configurations that phase 'kv' could run with the values carried from earlier phases is refused",
                 NULL);
    expect_check("check: a dsa top-k against seq (smollm_check)",
                 "layers = 1\nd_model = 32\nheads = 4\nseq = 8192\nattn = dsa\n[axes]\ntopk_pct = 10, 50\n",
                 "bad.ini:4 (seq = 8192), bad.ini:7 (topk_pct = 50): phase 'grid', run topk_pct-50_seed1337",
                 "is more than the 2048 keys", "1 of the 2 configurations");
    expect_check("check: a synthetic task's sizes (an axis the message does not name)",
                 "layers = 1\nd_model = 32\nheads = 4\nseq = 8\ntask = mqar\n[axes]\ntask_size = 1, 3\n",
                 "bad.ini:7 (task_size = 3)", "task mqar: 3 pairs need", NULL);
    /* a value a later phase sets again is not carried: no false alarm */
    StudySpec s;
    char err[2048] = "";
    /* mha with phase a's kv_heads = 1 or 2 would be refused, but phase b sets kv_heads again */
    int rc = study_parse_text(&s, "layers = 1\nd_model = 64\nheads = 4\n[phase a]\nkv_heads = 1, 2\n"
                                  "[phase b]\nattn = mha\nkv_heads = 4\n", "ok.ini", err, sizeof err);
    if (!rc) rc = study_check(&s, NULL, err, sizeof err);
    report(rc == 0, "check: a key set again by a later phase is not carried", rc ? err : NULL);
    /* more configurations than STUDY_CHECK_MAX: said, not refused */
    StrBuf b = {0};
    sb_printf(&b, "[axes]\n");
    const char *keys[] = {"warmup", "log_every", "eval_every", "checkpoint_every"};
    for (int k = 0; k < 4; k++) {
        sb_printf(&b, "%s = 1", keys[k]);
        for (int v = 2; v <= 32; v++) sb_printf(&b, ", %d", v);
        sb_printf(&b, "\n");
    }
    rc = study_parse_text(&s, b.p, "big.ini", err, sizeof err);
    free(b.p);
    if (!rc) rc = study_check(&s, NULL, err, sizeof err);
    report(rc == 1 && strstr(err, "phase 'grid' could run 1048576 configurations") && strstr(err, "more than the 200000"),
           "check: a study past STUDY_CHECK_MAX is said to be checked in part", err);
}

/* ---- gpus_per_run (GPUS PER RUN) and grad_reduce: parsing, the groups of --gpus, refusals ---- */
static void test_gpus_per_run(void) {
    StudySpec s;
    char err[1024] = "";
    int rc = study_parse_text(&s, "layers = 1\ngpus_per_run = 2\nbatch = 4\n[axes]\nattn = mha, gqa\n", "g.ini", err,
                              sizeof err);
    report(rc == 0 && s.gpus_per_run == 2, "gpus_per_run: a study key of the spec", err);
    /* study.ini keeps it, so workers and --resume read it back */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    study_write_spec(&s, mem);
    fclose(mem);
    StudySpec back;
    rc = study_parse_text(&back, text, "study.ini", err, sizeof err);
    report(rc == 0 && strstr(text, "gpus_per_run = 2\n") && back.gpus_per_run == 2, "gpus_per_run: written to study.ini, read back",
           text);
    free(text);
    expect_error("gpus_per_run: 0 refused", "gpus_per_run = 0\n", "bad.ini:1: gpus_per_run expects an integer >= 1, got '0'");
    expect_error("gpus_per_run: more ranks than dist.h holds refused", "gpus_per_run = 65\n",
                 "gpus_per_run = 65: expected 1 to 64 ranks per run");
    expect_error("gpus_per_run: not an axis", "[axes]\ngpus_per_run = 1, 2\n", "bad.ini:2: 'gpus_per_run' cannot be an axis");
    /* the command-line form: --gpus-per-run N with --gpus */
    char *argv[] = {"--axes", "attn=mha,gqa", "--gpus-per-run", "2", "--gpus", "0,1,2,3", "--layers", "1"};
    StudyOptions o = {0};
    rc = study_from_args(&s, &o, 8, argv, err, sizeof err);
    report(rc == 0 && s.gpus_per_run == 2 && o.workers == 4 && !strcmp(o.gpus, "0,1,2,3"),
           "gpus_per_run: --gpus-per-run N on the command line", err);
    /* the groups: the list cut into runs of N in order */
    char g[64];
    int ok = !study_gpu_group("0,1,2,3", 2, 0, g, sizeof g) && !strcmp(g, "0,1");
    ok = ok && !study_gpu_group("0,1,2,3", 2, 1, g, sizeof g) && !strcmp(g, "2,3");
    ok = ok && study_gpu_group("0,1,2,3", 2, 2, g, sizeof g) == -1 && !g[0];
    ok = ok && !study_gpu_group("10,11,12,13,14,15", 3, 1, g, sizeof g) && !strcmp(g, "13,14,15");
    ok = ok && !study_gpu_group("4,5,6", 1, 2, g, sizeof g) && !strcmp(g, "6"); /* one per worker, as before */
    ok = ok && !study_gpu_group("4,5,6", 0, 1, g, sizeof g) && !strcmp(g, "5");
    ok = ok && study_gpu_group("0,1,2", 2, 1, g, sizeof g) == -1; /* a group short of N */
    report(ok, "gpus_per_run: --gpus 0,1,2,3 cut into groups 0,1 and 2,3 (study_gpu_group)", g);
    /* the checks before the start: on a GPU the list's length a multiple of N, --gpus needed;
       on the CPU the ranks are CPU processes and --gpus is refused */
    StudyOptions q = {0};
    q.gpus = "0,1,2,3";
    q.workers = 4;
    s.gpus_per_run = 2;
    report(study_gpu_groups(&s, &q, 1, err, sizeof err) == 2, "gpus_per_run 2 over --gpus 0,1,2,3: 2 workers", err);
    s.gpus_per_run = 4;
    report(study_gpu_groups(&s, &q, 1, err, sizeof err) == 1, "gpus_per_run 4 over --gpus 0,1,2,3: 1 worker", err);
    s.gpus_per_run = 3;
    rc = study_gpu_groups(&s, &q, 1, err, sizeof err);
    report(rc == -1 && strstr(err, "--gpus 0,1,2,3 lists 4 GPUs: expected a multiple of gpus_per_run = 3"),
           "gpus_per_run 3 over 4 GPUs refused, naming both", err);
    q.gpus = NULL;
    q.workers = 0;
    s.gpus_per_run = 2;
    rc = study_gpu_groups(&s, &q, 1, err, sizeof err);
    report(rc == -1 && strstr(err, "gpus_per_run = 2 on a GPU needs --gpus LIST of a multiple of 2 GPUs"),
           "gpus_per_run 2 on a GPU without --gpus refused", err);
    report(study_gpu_groups(&s, &q, 0, err, sizeof err) == 0, "gpus_per_run 2 on the CPU: CPU ranks, no worker", err);
    q.gpus = "0,1";
    q.workers = 2;
    rc = study_gpu_groups(&s, &q, 0, err, sizeof err);
    report(rc == -1 && strstr(err, "gpus_per_run = 2 with --gpus 0,1 on the CPU"), "gpus_per_run on the CPU with --gpus refused",
           err);
    s.gpus_per_run = 0;
    report(study_gpu_groups(&s, &q, 1, err, sizeof err) == 2, "no gpus_per_run: one worker per listed GPU, as before", err);
    /* every run's batch must split over the ranks: refused before the start, naming the lines */
    expect_check("gpus_per_run: a batch that does not split over the ranks refused before the start",
                 "layers = 1\nd_model = 32\nheads = 4\ngpus_per_run = 4\n[axes]\nbatch = 8, 6\n",
                 "bad.ini:6 (batch = 6): phase 'grid', run batch-6_seed1337 (batch=6): batch 6 cannot be split over "
                 "gpus_per_run = 4 ranks: expected a multiple of 4", "1 of the 2 configurations", NULL);
    /* grad_reduce: a run key; fp32 (the default) leaves the identity as it was, bf16 changes it */
    StudyRunConfig a, b;
    study_run_config_defaults(&a);
    b = a;
    uint64_t id0 = study_run_config_identity(&a, 1);
    ok = !study_run_config_set(&b, "--grad-reduce", "fp32", err, sizeof err) && study_run_config_identity(&b, 1) == id0 &&
         b.train.grad_reduce == TRAIN_REDUCE_FP32;
    ok = ok && !study_run_config_set(&b, "grad_reduce", "bf16", err, sizeof err) && b.train.grad_reduce == TRAIN_REDUCE_BF16 &&
         study_run_config_identity(&b, 1) != id0;
    char *canon = study_run_config_canonical(&a, 1);
    ok = ok && canon && !strstr(canon, "grad_reduce");
    free(canon);
    ok = ok && study_run_config_set(&b, "grad_reduce", "fp16", err, sizeof err) == -1 && strstr(err, "fp16") &&
         strstr(err, "fp32 or bf16");
    report(ok, "grad_reduce: fp32 keeps the identity (not in the canonical text), bf16 changes it, fp16 refused", err);
}

/* broken specs through the binary: exit 2, the line and the run in the message, no directory */
static void test_check_cli(const char *base) {
    const char *specs[][2] = {
        {"phase0", "name = broken\nlayers = 1\nd_model = 64\nsteps = 2\n[axes]\nattn = mha, gqa\n"},
        {"later", "name = broken\nlayers = 1\nd_model = 64\nheads = 4\nsteps = 2\n[phase m]\nattn = gqa, mha\n"
                  "[phase kv]\nkv_heads = 2, 4\n"},
        {"unknown", "name = broken\nlayers = 1\nsteps = 2\n[phase m]\nattn = mha\n[phase n]\nnorm = pre, middle\n"}};
    const char *want[][2] = {{"phase0.ini:3 (d_model = 64)", "run attn-mha_seed1337 (attn=mha)"},
                             {"later.ini:9 (kv_heads = 2)", "run attn-mha_kv_heads-2_seed1337"},
                             {"unknown.ini:7: ", "unknown norm strategy 'middle'"}};
    for (int i = 0; i < 3; i++) {
        char spec[400], dir[400], out[400];
        snprintf(spec, sizeof spec, "%s/%s.ini", base, specs[i][0]);
        snprintf(dir, sizeof dir, "%s/%s-dir", base, specs[i][0]);
        snprintf(out, sizeof out, "%s/%s.out", base, specs[i][0]);
        FILE *f = fopen(spec, "w");
        if (f) { fputs(specs[i][1], f); fclose(f); }
        char *args[] = {(char *)ablate_bin, "run", spec, "--out", dir, NULL};
        int rc = wait_rc(spawn_out(args, out));
        char *text = study_read_all(out, NULL);
        int ok = rc == 2 && text && strstr(text, want[i][0]) && strstr(text, want[i][1]) && !study_exists(dir);
        char name[100];
        snprintf(name, sizeof name, "check: ablate run refuses a broken spec (%s), no directory", specs[i][0]);
        report(ok, name, ok ? NULL : text);
        free(text);
    }
    /* the same spec, fixed, runs in the place the broken one left free */
    char spec[400], dir[400];
    snprintf(spec, sizeof spec, "%s/phase0.ini", base);
    snprintf(dir, sizeof dir, "%s/phase0-dir", base);
    FILE *f = fopen(spec, "w");
    if (f) { fprintf(f, "name = fixed\nlayers = 1\nd_model = 16\nheads = 2\nseq = 16\nbatch = 2\nsteps = 2\n"
                        "eval_batches = 1\ndata = %s\n[axes]\nattn = mha, gqa\n", corpus); fclose(f); }
    char *args[] = {(char *)ablate_bin, "run", spec, "--out", dir, "--quiet", NULL};
    report(wait_rc(spawn(args)) == 0, "check: the fixed spec then runs in the same --out", NULL);
}

/* a run that keeps killing its worker process is given up after 3 tries without checkpoint
   progress within one invocation (tests/test_ckpt: kills across invocations never fail a run) */
static void test_attempts(const char *base) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/attempts", base);
    char *args[] = {(char *)ablate_bin, "run", "--axes", "attn=mha,mqa", "--steps", "3", "--layers", "1", "--d-model",
                    "16", "--heads", "2", "--seq", "8", "--batch", "2", "--eval-batches", "1", "--data",
                    (char *)corpus, "--out", dir, "--workers", "1", "--test-die-at", "run-start", "--quiet", NULL};
    int rc = wait_rc(spawn(args)); /* every worker kills itself as a run starts */
    StudySummary s;
    snprintf(p, sizeof p, "%s/attn-mqa_seed1337/summary.json", dir);
    int ok = rc == 1 && !study_summary_read(p, &s) && !strcmp(s.status, "failed") && strstr(s.reason, "died 3 times");
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
               "eval_batches = 1\ndata = %s\nseed_list = 1, 2\n[phase mechanism]\nattn = mha, mqa, identity\n"
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
    snprintf(p1, sizeof p1, "%s/runs.csv", one);
    snprintf(p2, sizeof p2, "%s/runs.csv", two);
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

/* --workers 3 over and over: several processes share a phase's runs and the study's files (a
   race on study.ini's temporary file once made this fail now and then) */
static void test_workers_stress(const char *base) {
    char spec[300];
    snprintf(spec, sizeof spec, "%s/stress.ini", base);
    FILE *f = fopen(spec, "w");
    if (!f) { report(0, "workers stress: write the spec", spec); return; }
    fprintf(f, "name = stress\nsteps = 3\nlayers = 1\nd_model = 16\nheads = 2\nseq = 16\nbatch = 2\n"
               "eval_batches = 1\ndata = %s\nseed_list = 1, 2\n[axes]\nattn = mha, mqa, identity\n", corpus);
    fclose(f);
    const char *runs[] = {"attn-mha_seed1", "attn-mha_seed2", "attn-mqa_seed1", "attn-mqa_seed2", "attn-identity_seed1",
                          "attn-identity_seed2"};
    int good = 0, tries = 10;
    char why[300] = "";
    double t0 = train_now();
    for (int t = 0; t < tries; t++) {
        char dir[300], out[300];
        snprintf(dir, sizeof dir, "%s/stress%d", base, t);
        snprintf(out, sizeof out, "%s/stress%d.out", base, t);
        char *args[] = {(char *)ablate_bin, "run", spec, "--out", dir, "--workers", "3", NULL};
        int rc = wait_rc(spawn_out(args, out)), ok_runs = 0;
        for (int i = 0; i < 6; i++) {
            char p[400];
            StudySummary sm;
            snprintf(p, sizeof p, "%s/%s/summary.json", dir, runs[i]);
            ok_runs += !study_summary_read(p, &sm) && !strcmp(sm.status, "ok");
        }
        char *text = study_read_all(out, NULL);
        int clean = text && !strstr(text, "cannot write") && !strstr(text, "ended badly") && !strstr(text, "cannot ");
        if (rc == 0 && ok_runs == 6 && clean) good++;
        else if (!why[0]) snprintf(why, sizeof why, "try %d: exit %d, %d of 6 runs ok, %.200s", t, rc, ok_runs,
                                   clean ? "" : text ? text : "(no output)");
        free(text);
        rm_rf(dir);
    }
    char d[400];
    snprintf(d, sizeof d, "%d of %d studies clean in %.1f s%s%s", good, tries, train_now() - t0, why[0] ? "; " : "", why);
    report(good == tries, "workers stress: --workers 3, 6 runs, 10 times", d);
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
    const char *files[] = {"results.json", "results.csv", "runs.csv", "loss.svg", "val_vs_throughput.svg",
                           "val_vs_memory.svg"};
    for (int i = 0; i < 6; i++) { snprintf(p, sizeof p, "%s/%s", dir, files[i]); remove(p); }
    char *args[] = {(char *)ablate_bin, "report", dir, NULL};
    int rc = wait_rc(spawn(args));
    int all = 1;
    for (int i = 0; i < 6; i++) { snprintf(p, sizeof p, "%s/%s", dir, files[i]); all &= study_exists(p); }
    report(rc == 0 && all, "report: ablate report DIR redraws every file", dir);
    const char *want[][4] = {{"loss.svg", "class=\"train\"", "class=\"val\"", "<circle"},
                             {"val_vs_throughput.svg", "class=\"point\"", "attn=gqa", "tokens/s"},
                             {"val_vs_memory.svg", "class=\"point\"", "attn=mha", "peak memory (MB"}};
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
    snprintf(p, sizeof p, "%s/runs.csv", dir);
    char *t = study_read_all(p, NULL);
    int lines = 0;
    for (char *c = t; c && *c; c++) lines += *c == '\n';
    report(t && lines == 3 && !strncmp(t, "run,config,phase", 16) && strstr(t, "attn-gqa_seed1337,attn-gqa,grid"),
           "report: runs.csv has a header and a row per run", "");
    free(t);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    t = study_read_all(p, NULL);
    lines = 0;
    for (char *c = t; c && *c; c++) lines += *c == '\n';
    report(t && lines == 3 && !strncmp(t, "config,phase,axes,runs,runs_ok,val_loss_mean", 44) &&
               strstr(t, "\nattn-gqa,grid,\"attn=gqa\",1,1,"),
           "report: results.csv has a header and a row per configuration", "");
    free(t);
    snprintf(p, sizeof p, "%s/results.json", dir);
    t = study_read_all(p, NULL);
    report(t && !strncmp(t, "{\"configs\": [", 13) && strstr(t, "\"runs\": [") && strstr(t, "\"status\": \"ok\"") &&
               strstr(t, "\"best_val_ppl\"") && strstr(t, "\"vs_best\": \"untested\"") && strstr(t, "\"identity\": \""),
           "report: results.json lists configurations and runs", "");
    free(t);
    char *bad[] = {(char *)ablate_bin, "report", "/nonexistent/study", NULL};
    report(wait_rc(spawn(bad)) == 2, "report: a missing directory is refused", "rc 2");
}

/* ---- every key is an axis: the table of run keys drives the identity and config.json ---- */
/* a value of key k different from its resolved value in r (the test only needs it to differ) */
static void other_value(const StudyRunKey *k, const StudyRunConfig *r, char *v, size_t n) {
    char cur[512];
    study_run_key_format(k, r, cur, sizeof cur);
    switch (k->type) {
    case STUDY_RUN_KEY_INT: { /* 3 more, or the minimum when that is below it (task_vocab >= 8) */
        unsigned long long x = strtoull(cur, NULL, 10) + 3;
        snprintf(v, n, "%llu", x < k->min ? (unsigned long long)k->min : x);
        break;
    }
    case STUDY_RUN_KEY_NUM: snprintf(v, n, "%.10g", strtod(cur, NULL) + 0.5); break;
    case STUDY_RUN_KEY_BOOL: snprintf(v, n, "%d", !atoi(cur)); break;
    case STUDY_RUN_KEY_ENUM:
        for (int i = 1; i < 64; i++) {
            int x;
            if (!k->parse(k->name_of(i), &x) && strcmp(k->name_of(i), cur)) { snprintf(v, n, "%s", k->name_of(i)); break; }
        }
        break;
    case STUDY_RUN_KEY_STR:
        if (k->choices) snprintf(v, n, "%.*s", (int)strcspn(k->choices, "|"), k->choices);
        else if (k->check) snprintf(v, n, "mha");
        else snprintf(v, n, "%.100s.other", cur);
        break;
    }
}

static char *config_json_text(const StudyRunConfig *c) {
    StrBuf b = {0};
    run_config_json(&b, c);
    return b.p;
}

static void test_keys(void) {
    StudyRunConfig base;
    study_run_config_defaults(&base);
    base.data = corpus;
    uint64_t id0 = study_run_config_identity(&base, 1), cid0 = study_run_config_identity(&base, 0);
    char *json0 = config_json_text(&base);
    StudyRunConfig resolved;
    run_config_resolved(&base, &resolved);
    int n = study_run_key_count(), changed = 0, bad = 0;
    char why[600] = "", store[128][128];
    for (int i = 0; i < n && i < 128; i++) {
        const StudyRunKey *k = study_run_key_at(i);
        StudyRunConfig c = base;
        char err[256] = "";
        other_value(k, &resolved, store[i], sizeof store[i]);
        if (study_run_config_set(&c, k->name, store[i], err, sizeof err)) {
            bad++;
            snprintf(why, sizeof why, "%s = %.100s refused: %.300s", k->name, store[i], err);
            continue;
        }
        uint64_t id = study_run_config_identity(&c, 1), cid = study_run_config_identity(&c, 0);
        char *json = config_json_text(&c);
        int json_changed = strcmp(json, json0) != 0;
        free(json);
        int ok;
        if (k->flags & STUDY_RUN_KEY_NOT_IDENTITY) ok = id == id0 && json_changed; /* save: recorded, not identity */
        else if (k->store == STUDY_RUN_AT_U64) ok = id != id0 && cid == cid0 && json_changed; /* the seed */
        else ok = id != id0 && cid != cid0 && json_changed;
        if (ok) changed++;
        else {
            bad++;
            snprintf(why, sizeof why, "%s = %.100s: identity %s, config identity %s, config.json %s", k->name, store[i],
                     id != id0 ? "changed" : "same", cid != cid0 ? "changed" : "same", json_changed ? "changed" : "same");
        }
    }
    free(json0);
    char d[700];
    snprintf(d, sizeof d, "%d keys, %d as expected%s%s", n, changed, bad ? "; " : "", why);
    report(n > 50 && n <= 128 && !bad, "keys: changing any single key changes the identity", d);

    /* every key named in the issue is in the table, each a valid axis but seed and save */
    const char *want[] = {"latent_dim", "q_latent_dim", "rope_dim", "v_head_dim", "topk", "topk_pct", "indexer_heads",
                          "indexer_dim", "indexer_fp32", "dsa_warmup", "topk_start", "topk_ramp", "global", "stride",
                          "dilation", "pattern_block", "mga_gate", "mga_faithful", "conv_size", "chunk", "data",
                          "final_eval_tokens", "task"};
    int found = 0;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const StudyRunKey *k = study_run_key_find(want[i]);
        found += k && !(k->flags & STUDY_RUN_KEY_NO_AXIS);
    }
    report(found == (int)(sizeof want / sizeof *want), "keys: mechanism knobs, data, final_eval_tokens are axes", NULL);
    /* the attention options are generated from attn.h's option table: every row is a run key of
       the same name, range and help; and an unset option stays out of the run identity */
    int gen = 0;
    for (int i = 0; i < attn_option_count(); i++) {
        const AttnOption *o = attn_option_at(i);
        const StudyRunKey *k = study_run_key_find(o->name);
        gen += k && k->min == o->min && k->max == o->max && !strcmp(k->help, o->help) &&
               k->offset == offsetof(StudyRunConfig, model.attn) + o->offset;
    }
    char gd[64];
    snprintf(gd, sizeof gd, "%d of %d options", gen, attn_option_count());
    report(gen == attn_option_count(), "keys: every attention option is a run key (name, range, help, field)", gd);
    {
        StudyRunConfig a, b;
        study_run_config_defaults(&a);
        b = a;
        char *ca = study_run_config_canonical(&a, 1);
        b.model.attn.mga_decomposed = 1;
        uint64_t ia = study_run_config_identity(&a, 1), ib = study_run_config_identity(&b, 1);
        report(!strstr(ca, "mga_decomposed") && !strstr(ca, "latent_dim") && ia != ib,
               "identity: attention options at 0 are left out of it (a new option keeps old identities)", ca);
        free(ca);
    }
    /* - spelling, defaults from the table, a key's messages */
    StudyRunConfig c;
    char err[256] = "";
    study_run_config_defaults(&c);
    int ok = c.batch == 8 && c.seq == 256 && c.train.steps == 200 && c.model.seed == 1337 && c.val_frac == 0.1f &&
             c.eval_batches == 8 && c.log_every == 1 && c.model.attn.latent_dim == 0 &&
             !study_run_config_set(&c, "--final-eval-tokens", "1e6", err, sizeof err) && c.final_eval_tokens == 1e6 &&
             !study_run_config_set(&c, "indexer-fp32", "true", err, sizeof err) && c.model.attn.indexer_fp32 == 1 &&
             !study_run_config_set(&c, "clip", "0", err, sizeof err) && c.train.clip == -1 &&
             !study_run_config_set(&c, "seed", "18446744073709551615", err, sizeof err) && c.model.seed == UINT64_MAX &&
             study_run_config_set(&c, "task", "or", err, sizeof err) && strstr(err, "expected mqar, copy or induction") &&
             study_run_config_set(&c, "lr", "1e40", err, sizeof err) && strstr(err, "lr expects a number <= 1e+30, got '1e40'");
    report(ok, "keys: defaults, - spelling, bool, clip, u64 seed, choices", err);
    /* a key already at its resolved default keeps the identity: heads = 9 is the default */
    StudyRunConfig h = base;
    study_run_config_set(&h, "heads", "9", err, sizeof err);
    report(study_run_config_identity(&h, 1) == id0, "keys: a key set to its resolved default is the same run", NULL);
    char *canon = study_run_config_canonical(&base, 1);
    report(canon && !strstr(canon, "\"latent_dim\"") && strstr(canon, "\"kv_heads\": 3") &&
               strstr(canon, "\"seed\": 1337") && !strstr(canon, "\"save\""),
           "keys: the canonical text has every key but save and the attention options at 0", canon);
    free(canon);
}

/* ---- quoted values: a data mix as an axis value ---- */
static void test_quotes(void) {
    const char *spec = "name = q\nlayers = 1\ndata = \"a.txt:0.7, b.txt:0.3\"   # a quoted base value\n"
                       "[axes]\ndata = \"a.txt:0.7,b.txt:0.3\", c.txt, \"d;e #f.txt\"\ntask = copy, mqar\n";
    StudySpec s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "q.ini", err, sizeof err);
    int ok = !rc && s.n_phases == 1 && s.phases[0].n_axes == 2 && s.phases[0].axes[0].n == 3 &&
             !strcmp(s.phases[0].axes[0].values[0], "a.txt:0.7,b.txt:0.3") &&
             !strcmp(s.phases[0].axes[0].values[2], "d;e #f.txt") && !strcmp(s.base_values[1], "a.txt:0.7, b.txt:0.3");
    report(ok, "quotes: a quoted mix in a spec's axis and base value", rc ? err : s.phases[0].axes[0].values[0]);
    StudyRun runs[16];
    int n = rc ? -1 : study_expand(&s, 0, "", runs, 16, err, sizeof err);
    /* the runs' strings point into the StudySpec (they outlive study_expand's buffers) */
    const char *lo = (const char *)&s, *hi = lo + sizeof s;
    ok = n == 6;
    for (int i = 0; ok && i < n; i++)
        ok = runs[i].cfg.data >= lo && runs[i].cfg.data < hi && runs[i].cfg.task >= lo && runs[i].cfg.task < hi;
    ok = ok && !strcmp(runs[0].cfg.data, "a.txt:0.7,b.txt:0.3") && !strcmp(runs[1].cfg.task, "mqar") &&
         !strcmp(runs[5].cfg.data, "d;e #f.txt") && !strcmp(runs[0].axes, "data=\"a.txt:0.7,b.txt:0.3\" task=copy") &&
         !strcmp(runs[0].name, "data-a.txt-0.7-b.txt-0.3_task-copy_seed1337");
    report(ok, "quotes: data and task axes point into the StudySpec", n > 0 ? runs[0].name : err);
    /* the carried assignment of a quoted value parses back */
    StudyRunConfig c;
    rc = study_base_config(&s, runs[5].axes, &c, err, sizeof err);
    report(!rc && c.data == runs[5].cfg.data, "quotes: a carried quoted value", rc ? err : runs[5].axes);
    /* study.ini round trip */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    study_write_spec(&s, mem);
    fclose(mem);
    StudySpec r;
    rc = study_parse_text(&r, text, "study.ini", err, sizeof err);
    StudyRun again[16];
    int m = rc ? -1 : study_expand(&r, 0, "", again, 16, err, sizeof err);
    ok = m == n;
    for (int i = 0; ok && i < n; i++) ok = again[i].identity == runs[i].identity && !strcmp(again[i].name, runs[i].name);
    report(ok, "quotes: study.ini with quoted values reads back", rc ? err : "");
    free(text);
    /* the command line: --axes 'data="a:0.7,b:0.3",c.txt' */
    StudySpec a;
    StudyOptions o = {0};
    char *argv[] = {"--axes", "data=\"a.txt:0.7,b.txt:0.3\",c.txt", "--layers", "1"};
    rc = study_from_args(&a, &o, 4, argv, err, sizeof err);
    report(!rc && a.phases[0].axes[0].n == 2 && !strcmp(a.phases[0].axes[0].values[0], "a.txt:0.7,b.txt:0.3"),
           "quotes: --axes data=\"a:0.7,b:0.3\",c.txt", rc ? err : "");
    expect_error("quotes: an unbalanced quote is an error", "[axes]\ndata = \"a.txt, b.txt\n", "bad.ini:2: axis 'data': unbalanced");
    expect_error("quotes: text after a quoted value is an error", "[axes]\ndata = \"a\"b, c\n", "unexpected 'b'");
    expect_error("quotes: save is not an axis", "[axes]\nsave = a, b\n", "'save' cannot be an axis");
    /* a base value with a double quote inside (an unbalanced one, or after the first character):
       study.ini's quoting could not write it back (the fuzzer's case: data = "  ; ...) */
    expect_error("quotes: an unbalanced quote in a base value is an error", "data = \"  ;  x\n",
                 "holds a double quote");
    expect_error("quotes: a quote inside a base value is an error", "data = a\"b.txt\n", "holds a double quote");
    char *qargv[] = {"--data", "a\"b;c.txt"};
    rc = study_from_args(&a, &o, 2, qargv, err, sizeof err);
    report(rc != 0 && strstr(err, "holds a double quote") != NULL, "quotes: --data with a double quote inside refused", err);
}

/* ---- long values: no crash, no cut names, no shared directories ---- */
static void test_long_values(void) {
    char z60[2][64]; /* 60-digit values: zero-padded integers */
    snprintf(z60[0], sizeof z60[0], "%060d", 7);
    snprintf(z60[1], sizeof z60[1], "%060d", 9);
    char spec[4096];
    snprintf(spec, sizeof spec, "[axes]\nwarmup = %s, %s\nwindow = %s, %s\ncheckpoint_every = %s, %s\n", z60[0], z60[1],
             z60[0], z60[1], z60[0], z60[1]);
    StudySpec s;
    char err[512] = "";
    int rc = study_parse_text(&s, spec, "long.ini", err, sizeof err);
    StudyRun runs[16];
    int n = rc ? -1 : study_expand(&s, 0, "", runs, 16, err, sizeof err);
    int ok = n == 8, distinct = 1;
    for (int i = 0; ok && i < n; i++) {
        ok = strlen(runs[i].config_id) < STUDY_ID_LEN && strstr(runs[i].axes, "checkpoint_every=") &&
             strlen(runs[i].name) < STUDY_NAME_LEN;
        for (int j = 0; j < i; j++) distinct &= strcmp(runs[i].name, runs[j].name) != 0;
    }
    char d[300];
    snprintf(d, sizeof d, "%s", n > 0 ? runs[n - 1].name : err);
    report(ok && distinct && runs[7].cfg.model.attn.window == 9 && runs[0].cfg.checkpoint_every == 7,
           "long values: 60-digit values expand, names cut and made unique", d);
    /* two values that differ only in characters a directory cannot hold */
    rc = study_parse_text(&s, "[axes]\ndata = \"a b.txt\", a-b.txt, a+b.txt\n", "clash.ini", err, sizeof err);
    n = rc ? -1 : study_expand(&s, 0, "", runs, 16, err, sizeof err);
    ok = n == 3 && strcmp(runs[0].name, runs[1].name) && !strncmp(runs[0].name, "data-a-b.txt-", 13) &&
         !strncmp(runs[1].name, "data-a-b.txt-", 13) && !strcmp(runs[2].name, "data-a+b.txt_seed1337");
    report(ok, "long values: names that would clash get the identity's hex", n > 1 ? runs[1].name : err);
    /* an assignment that cannot fit is refused at parse time, with a message */
    StrBuf b = {0};
    sb_printf(&b, "[axes]\n");
    const char *keys[] = {"layers", "d_model", "heads", "kv_heads", "ffn", "window", "global", "stride", "dilation",
                          "pattern_block", "latent_dim", "q_latent_dim", "rope_dim", "v_head_dim", "conv_size", "chunk"};
    for (int k = 0; k < 16; k++) sb_printf(&b, "%s = %0150d\n", keys[k], 1);
    rc = study_parse_text(&s, b.p, "huge.ini", err, sizeof err);
    free(b.p);
    report(rc && strstr(err, "more than 2047"), "long values: an assignment too long for a run is refused", err);
}

/* ---- statistics over seeds ---- */
static int near(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1); }

static void test_stats(void) {
    double x[4] = {1, 2, 3, 4};
    StudyStat st = study_stat(x, 4);
    /* mean 2.5, sd sqrt(5/3), half width t(0.975, 3) = 3.18244630528 times sd / 2 */
    double half = 3.18244630528 * sqrt(5.0 / 3) / 2;
    int ok = st.n == 4 && st.mean == 2.5 && near(st.sd, sqrt(5.0 / 3), 1e-14) && near(st.ci_lo, 2.5 - half, 1e-9) &&
             near(st.ci_hi, 2.5 + half, 1e-9);
    char d[200];
    snprintf(d, sizeof d, "mean %g sd %.6f CI [%.6f, %.6f]", st.mean, st.sd, st.ci_lo, st.ci_hi);
    report(ok, "stats: mean, sample sd, 95% CI by hand", d);
    StudyStat one = study_stat(x, 1);
    report(one.mean == 1 && isnan(one.sd) && isnan(one.ci_lo), "stats: one value has no sd or CI", NULL);
    /* t quantiles from the tables: df 1, 2, 10, 30, 100 */
    double df[5] = {1, 2, 10, 30, 100}, q[5] = {12.7062047362, 4.30265272975, 2.22813885196, 2.04227245630, 1.98397151845};
    ok = 1;
    for (int i = 0; i < 5; i++) ok &= near(study_t_quantile(0.975, df[i]), q[i], 1e-9);
    ok &= near(study_t_quantile(0.025, 10), -q[2], 1e-9);
    report(ok, "stats: t quantiles 0.975 for df 1, 2, 10, 30, 100", NULL);
    /* exact closed forms: df 1 (Cauchy) 1 - 2 atan(t) / pi; df 2: 1 - t / sqrt(2 + t^2) */
    ok = 1;
    for (double t = 0.1; t < 50; t *= 1.7) {
        ok &= near(study_t_p2(t, 1), 1 - 2 * atan(t) / M_PI, 1e-12);
        ok &= near(study_t_p2(-t, 2), 1 - t / sqrt(2 + t * t), 1e-12);
    }
    /* a textbook value and one at a fractional df (both by numerical integration of the density) */
    ok &= near(study_t_p2(2.0, 10), 0.0733880347707, 1e-7) && near(study_t_p2(1.5, 3.7), 0.213598169202, 1e-7);
    report(ok, "stats: two-sided t tail against closed forms and integrals", NULL);
    /* Welch: B = {1.3, 1.35, 1.5} against A = {1.0, 1.1, 1.2}: t 3.4, df 3.99361, p 0.0273453 */
    double a[3] = {1.0, 1.1, 1.2}, bb[3] = {1.3, 1.35, 1.5}, c[4] = {1.05, 1.25, 1.15, 1.0};
    StudyStat A = study_stat(a, 3), B = study_stat(bb, 3), C = study_stat(c, 4);
    double t, dfw;
    double p = study_welch_p(&B, &A, &t, &dfw);
    ok = near(t, 3.4, 1e-12) && near(dfw, 3.99361022364, 1e-10) && near(p, 0.0273453006098, 1e-7);
    double p2 = study_welch_p(&C, &A, &t, &dfw);
    ok &= near(t, 0.156173761889, 1e-10) && near(dfw, 4.71553246753, 1e-10) && near(p2, 0.882359882871, 1e-7);
    snprintf(d, sizeof d, "p %.10f and %.10f", p, p2);
    report(ok, "stats: Welch's t-test (t, Welch-Satterthwaite df, p)", d);
    report(isnan(study_welch_p(&one, &A, NULL, NULL)), "stats: one seed is untested (NAN)", NULL);
}

/* summaries written by hand into a study directory: the report's statistics and verdicts */
static void put_summary(const char *dir, const char *config, int index, uint64_t seed, double loss, double peak,
                        double acc) {
    StudySummary s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s_seed%llu", config, (unsigned long long)seed);
    snprintf(s.config_id, sizeof s.config_id, "%s", config);
    snprintf(s.phase, sizeof s.phase, "grid");
    snprintf(s.axes, sizeof s.axes, "attn=%s", config);
    snprintf(s.status, sizeof s.status, "ok");
    s.index = index;
    s.seed = seed;
    s.final_val_loss = loss;
    s.final_val_ppl = exp(loss);
    s.final_val_bpb = loss / log(2);
    s.final_val_acc = acc; /* NAN: not a synthetic task */
    s.best_val_loss = loss;
    s.tokens_per_s = 1000 + index;
    s.peak_bytes = peak;
    s.kv_bytes_per_token = 100 - index;
    s.params_total = 1000;
    char p[400];
    snprintf(p, sizeof p, "%s/%s", dir, s.name);
    study_mkdirs(p);
    snprintf(p, sizeof p, "%s/%s/summary.json", dir, s.name);
    StrBuf b = {0};
    study_summary_json(&b, &s);
    study_write_atomic(p, b.p, b.n);
    free(b.p);
}

static char *report_text(const char *dir) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    study_report(dir, mem);
    fclose(mem);
    return text;
}

static void test_report_stats(const char *base) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/stats", base);
    /* A = {1.0, 1.1, 1.2} best by its mean; B = {1.3, 1.35, 1.5} significantly worse (p 0.027);
       C = {0.9, 1.25, 1.15, 1.2} not (p 0.807), though its lucky seed has the lowest loss of all
       runs; D one seed: untested */
    double a[3] = {1.0, 1.1, 1.2}, bb[3] = {1.3, 1.35, 1.5}, c[4] = {0.9, 1.25, 1.15, 1.2};
    int idx = 0;
    for (int i = 0; i < 3; i++) put_summary(dir, "b", idx++, 1 + i, bb[i], 0, NAN);
    for (int i = 0; i < 3; i++) put_summary(dir, "a", idx++, 1 + i, a[i], 0, NAN);
    for (int i = 0; i < 4; i++) put_summary(dir, "c", idx++, 1 + i, c[i], 0, NAN);
    put_summary(dir, "d", idx++, 1, 1.3, 0, NAN);
    char *out = report_text(dir);
    snprintf(p, sizeof p, "%s/results.json", dir);
    char *j = study_read_all(p, NULL);
    const char *ja = j ? strstr(j, "{\"config\": \"a\"") : NULL, *jb = j ? strstr(j, "{\"config\": \"b\"") : NULL;
    const char *jc = j ? strstr(j, "{\"config\": \"c\"") : NULL, *jd = j ? strstr(j, "{\"config\": \"d\"") : NULL;
    int ok = ja && jb && jc && jd && near(study_json_num(jb, "welch_p"), 0.0273453006098, 1e-7) &&
             near(study_json_num(jc, "welch_p"), 0.806625995012, 1e-7) && isnan(study_json_num(jd, "welch_p")) &&
             near(study_json_num(ja, "val_loss_mean"), 1.1, 1e-12) && near(study_json_num(ja, "val_loss_sd"), 0.1, 1e-9) &&
             near(study_json_num(ja, "val_loss_ci95_hi"), 1.1 + 4.30265272975 * 0.1 / sqrt(3), 1e-8) &&
             near(study_json_num(ja, "val_bpb_mean"), 1.1 / log(2), 1e-8) && isnan(study_json_num(jd, "val_loss_sd"));
    char v[4][32];
    const char *js[4] = {ja, jb, jc, jd};
    for (int i = 0; i < 4; i++) {
        v[i][0] = 0;
        if (js[i]) study_json_str(js[i], "vs_best", v[i], sizeof v[i]);
    }
    ok = ok && !strcmp(v[0], "best") && !strcmp(v[1], "significant") && !strcmp(v[2], "not significant") &&
         !strcmp(v[3], "untested");
    report(ok, "report stats: results.json means, CIs, Welch p, verdicts", ok ? "" : j);
    free(j);
    /* the printed table: the best by its mean, the verdicts, no CPU memory as "best by memory" */
    ok = out && strstr(out, "best by loss:       a (mean val loss 1.1000 over 3 seeds") && strstr(out, "p=0.027 sig") &&
         strstr(out, "p=0.807 n.s.") && strstr(out, "untested") && strstr(out, "n/a (1 seed)") &&
         !strstr(out, "best by memory") && strstr(out, "no run measured its peak memory") && strstr(out, "Welch") &&
         !strstr(out, "one seed per configuration");
    report(ok, "report stats: the table marks best, sig, n.s., untested", ok ? "" : out);
    /* c's lucky seed (0.9) is named, not crowned */
    ok = out && strstr(out, "lowest single run:  c_seed1 (val loss 0.9000; its configuration's mean is 1.1250)") &&
         strstr(out, "best by throughput: d (mean 1010 tok/s over 1 seed)") && !strstr(out, "val acc");
    report(ok, "report stats: best-of lines by means; the lowest single run named", ok ? "" : out);
    free(out);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    char *csv = study_read_all(p, NULL);
    int lines = 0;
    for (char *q = csv; q && *q; q++) lines += *q == '\n';
    report(csv && lines == 5 && strstr(csv, "\nb,grid,\"attn=b\",3,3,1.38333333,") && strstr(csv, ",significant,") &&
               !strstr(csv, "val_acc"),
           "report stats: results.csv a row per configuration", NULL);
    free(csv);
    /* one seed per configuration: the differences are said to be untested */
    snprintf(dir, sizeof dir, "%s/oneseed", base);
    put_summary(dir, "x", 0, 1, 2.0, 3 << 20, NAN);
    put_summary(dir, "y", 1, 1, 2.1, 2 << 20, NAN);
    out = report_text(dir);
    ok = out && strstr(out, "one seed per configuration: the differences between configurations are untested") &&
         strstr(out, "+0.1000 untested") && strstr(out, "best by memory:     y (mean peak 2.0 MB");
    report(ok, "report stats: a one-seed study says its differences are untested", ok ? "" : out);
    free(out);
    /* a synthetic task: accuracy over seeds in the table, results.csv and runs.csv, and its best-of line */
    snprintf(dir, sizeof dir, "%s/acc", base);
    double acc_m[3] = {0.5, 0.6, 0.7}, acc_q[3] = {0.8, 0.9, 0.85};
    for (int i = 0; i < 3; i++) put_summary(dir, "m", i, 1 + i, 2.0 + 0.1 * i, 0, acc_m[i]);
    for (int i = 0; i < 3; i++) put_summary(dir, "q", 3 + i, 1 + i, 2.1 + 0.1 * i, 0, acc_q[i]);
    out = report_text(dir);
    snprintf(p, sizeof p, "%s/results.csv", dir);
    csv = study_read_all(p, NULL);
    snprintf(p, sizeof p, "%s/runs.csv", dir);
    char *rcsv = study_read_all(p, NULL);
    snprintf(p, sizeof p, "%s/results.json", dir);
    char *jacc = study_read_all(p, NULL);
    ok = out && strstr(out, "val acc (mean ± sd)") && strstr(out, "0.6000 ± 0.1000") && strstr(out, "0.8500 ± 0.0500") &&
         strstr(out, "best by accuracy:   q (mean val acc 0.8500 over 3 seeds)") &&
         strstr(out, "best by loss:       m (mean val loss 2.1000");
    report(ok, "report acc: the table's accuracy column and best by accuracy", ok ? "" : out);
    ok = csv && strstr(csv, "val_bpb_ci95_hi,val_acc_mean,val_acc_sd,val_acc_ci95_lo,val_acc_ci95_hi,val_ppl_mean") &&
         strstr(csv, ",0.6,0.1,") && rcsv && strstr(rcsv, ",best_val_bpb,final_val_acc,final_val_tokens,") &&
         strstr(rcsv, ",0.9,") && jacc && near(study_json_num(jacc, "val_acc_mean"), 0.6, 1e-9) &&
         near(study_json_num(jacc, "val_acc_ci95_hi"), 0.6 + 4.30265272975 * 0.1 / sqrt(3), 1e-8);
    report(ok, "report acc: results.csv, runs.csv and results.json carry accuracy", ok ? "" : csv);
    free(out);
    free(csv);
    free(rcsv);
    free(jacc);
    snprintf(dir, sizeof dir, "%s/oneseed", base);
    snprintf(p, sizeof p, "%s/loss.svg", dir);
    char *svg = study_read_all(p, NULL), why[100] = "";
    report(svg && xml_ok(svg, why, sizeof why) && strstr(svg, "band: min-max"), "report stats: loss.svg says what its band is", why);
    free(svg);
}

/* a study over latent_dim (mla), topk (dsa) and data (two texts and a mix) trains every run */
static void test_axes_run(const char *base) {
    char f1[300], f2[300], dir[300], dir2[300], mix[700], list[1400], p[600];
    snprintf(f1, sizeof f1, "%s/one.txt", base);
    snprintf(f2, sizeof f2, "%s/two.txt", base);
    FILE *a = fopen(f1, "w"), *b = fopen(f2, "w");
    if (!a || !b) { report(0, "axes run: write two texts", f1); if (a) fclose(a); if (b) fclose(b); return; }
    char *gpl = study_read_all(corpus, NULL);
    fprintf(a, "%.20000s", gpl ? gpl : "");
    for (int i = 0; i < 3000; i++) fprintf(b, "%d squared is %d; ", i, i * i);
    fclose(a);
    fclose(b);
    free(gpl);
    snprintf(dir, sizeof dir, "%s/mla", base);
    snprintf(mix, sizeof mix, "%s:0.5,%s:0.5", f1, f2);
    snprintf(list, sizeof list, "data=\"%s\",%s,%s", mix, f1, f2);
    char *args[] = {(char *)ablate_bin, "run", "--attn", "mla", "--axes", "latent_dim=8,16", list, "--steps", "4",
                    "--layers", "1", "--d-model", "16", "--heads", "2", "--seq", "16", "--batch", "2", "--eval-batches",
                    "1", "--out", dir, NULL};
    snprintf(p, sizeof p, "%s/mla.out", base);
    int rc = wait_rc(spawn_out(args, p));
    char *out = study_read_all(p, NULL);
    int ok = rc == 0 && out && !strstr(out, "same as"), got = 0;
    double seen[16];
    char axes[16][STUDY_AXES_LEN];
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd)) && got < 16) { /* every run directory's summary */
        StudySummary sm;
        char summ[1200];
        snprintf(summ, sizeof summ, "%s/%s/summary.json", dir, e->d_name);
        if (e->d_name[0] == '.' || study_summary_read(summ, &sm)) continue;
        if (strcmp(sm.status, "ok") || !isfinite(sm.final_val_loss)) { ok = 0; continue; }
        seen[got] = sm.final_val_loss;
        snprintf(axes[got++], sizeof axes[0], "%s", sm.axes);
    }
    if (dd) closedir(dd);
    for (int i = 0; i < got; i++) /* six different assignments, the mix among them */
        for (int k = 0; k < i; k++) ok &= strcmp(axes[i], axes[k]) != 0;
    int mixes = 0;
    for (int i = 0; i < got; i++) mixes += strstr(axes[i], ":0.5,") != NULL;
    ok &= mixes == 2;
    int distinct = 1;
    for (int i = 0; i < got; i++)
        for (int k = 0; k < i; k++) distinct &= seen[i] != seen[k];
    char d[200];
    snprintf(d, sizeof d, "%d of 6 runs ok, %s", got, distinct ? "all losses differ" : "equal losses");
    report(ok && got == 6 && distinct, "axes run: latent_dim (mla) x data (two texts, a mix): every run", d);
    free(out);
    snprintf(dir2, sizeof dir2, "%s/dsa", base);
    char *args2[] = {(char *)ablate_bin, "run", "--attn", "dsa", "--axes", "topk=4,8", "--steps", "4", "--layers", "1",
                     "--d-model", "16", "--heads", "2", "--seq", "16", "--batch", "2", "--eval-batches", "1", "--data",
                     f1, "--out", dir2, NULL};
    snprintf(p, sizeof p, "%s/dsa.out", base);
    rc = wait_rc(spawn_out(args2, p));
    out = study_read_all(p, NULL);
    StudySummary x, y;
    char p1[400], p2[400];
    snprintf(p1, sizeof p1, "%s/topk-4_seed1337/summary.json", dir2);
    snprintf(p2, sizeof p2, "%s/topk-8_seed1337/summary.json", dir2);
    ok = rc == 0 && out && !strstr(out, "same as") && !study_summary_read(p1, &x) && !study_summary_read(p2, &y) &&
         !strcmp(x.status, "ok") && !strcmp(y.status, "ok") && x.final_val_loss != y.final_val_loss && x.identity &&
         x.identity != y.identity;
    report(ok, "axes run: topk (dsa) = 4, 8: both trained", out && !ok ? out : NULL);
    snprintf(p1, sizeof p1, "%s/topk-8_seed1337/config.json", dir2);
    report(file_has(p1, "\"topk\": 8") && file_has(p1, "\"identity\": \"") && file_has(p1, "\"final_eval_tokens\": "),
           "axes run: config.json records topk and the identity", NULL);
    free(out);
}

/* a right-aligned value wider than its column (a GPU's tok/s ± sd) stays apart from the one before */
static void test_table_columns(void) {
    char buf[128] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    study_col(f, "3.19", 10, 0);
    study_col(f, "2825033 ± 442213", 16, 0);
    study_col(f, "1.5", 6, 0);
    fclose(f);
    report(strstr(buf, "      3.19 2825033 ± 442213   1.5") != NULL, "table: an overwide column keeps a blank before it", buf);
}

/* examples/guide.ini (the ablation guide's five phases at d_model 576, 8 heads of 72): it
   parses, every run of every phase passes the checks made before a study starts, and the
   attention of the runs the dense flash kernels serve (mha, gqa, mla, mga, at head dims 72, 96,
   64, 48), GDN's (72: its wide-head kernels) and DSA's (72, 96, 64, 48: the sparse kernels'
   padded tiles) is one the GPU takes */
static void test_guide_spec(void) {
    StudySpec s;
    char err[2048] = "";
    int rc = study_parse_file(&s, "examples/guide.ini", err, sizeof err);
    if (!rc) rc = study_check(&s, NULL, err, sizeof err);
    int ok = rc == 0 && s.n_phases == 5 && study_phase_size(&s, 0) == 18 && study_phase_size(&s, 1) == 54 &&
             study_phase_size(&s, 2) == 9 && study_phase_size(&s, 3) == 18 && study_phase_size(&s, 4) == 27;
    report(ok, "examples/guide.ini: 5 phases parse (18, 54, 9, 18, 27 runs) and every run passes study_check",
           rc ? err : NULL);
    static const char *assign[] = {"attn=mha", "attn=gqa", "attn=mla", "attn=mga", "attn=gdn", "attn=gqa kv_heads=2",
                                   "attn=gqa kv_heads=1", "attn=gqa heads=6 kv_heads=0",
                                   "attn=gqa heads=9 kv_heads=0", "attn=gqa heads=12 kv_heads=0",
                                   "attn=mla heads=6 kv_heads=0 latent_dim=144",
                                   "attn=mla heads=12 kv_heads=0 latent_dim=432",
                                   "attn=mla heads=9 kv_heads=0 latent_dim=288 norm=sandwich qk_norm=1",
                                   "attn=gqa kv_heads=2 norm=post qk_norm=1 lr=1e-2",
                                   "attn=dsa", "attn=dsa heads=6 kv_heads=0", "attn=dsa heads=9 kv_heads=0",
                                   "attn=dsa heads=12 kv_heads=0", "attn=dsa kv_heads=1"};
    char bad[600] = "";
    ok = rc == 0;
    for (size_t i = 0; ok && i < sizeof assign / sizeof assign[0]; i++) {
        StudyRunConfig c;
        char e[512] = "";
        if (study_base_config(&s, assign[i], &c, e, sizeof e) || smollm_resolve(&c.model, e, sizeof e)) {
            ok = 0;
            snprintf(bad, sizeof bad, "%s: %s", assign[i], e);
            break;
        }
        AttnConfig a = smollm_layer_attn(&c.model, 0);
        if (attn_resolve(&a, e, sizeof e) || attn_gpu_supported(&a, e, sizeof e)) {
            ok = 0;
            snprintf(bad, sizeof bad, "%s (head_dim %d): %s", assign[i], a.head_dim, e);
        }
    }
    report(ok, "examples/guide.ini: its mha, gqa, mla, mga, gdn, dsa runs (head dims 48..96) are GPU-supported", bad[0] ? bad : NULL);
}

/* examples/indexer_precision.ini: it parses into 6 configurations x 2 seeds of DSA, one per
   indexer precision 1..6, and every run passes the checks made before a study starts */
static void test_indexer_precision_spec(void) {
    StudySpec s;
    char err[2048] = "";
    int rc = study_parse_file(&s, "examples/indexer_precision.ini", err, sizeof err);
    if (!rc) rc = study_check(&s, NULL, err, sizeof err);
    int ok = rc == 0 && s.n_phases <= 1 && study_phase_size(&s, 0) == 12;
    for (int p = 1; ok && p <= 6; p++) {
        char assign[64], e[512] = "";
        StudyRunConfig c;
        snprintf(assign, sizeof assign, "indexer_precision=%d", p);
        if (study_base_config(&s, assign, &c, e, sizeof e) || c.model.attn.kind != ATTN_DSA ||
            c.model.attn.indexer_precision != p) {
            ok = 0;
            snprintf(err, sizeof err, "%s: %s", assign, e[0] ? e : "not DSA at that precision");
        }
    }
    report(ok, "examples/indexer_precision.ini: 12 DSA runs, precisions 1..6, every run passes study_check",
           ok ? NULL : err);
}

int main(int argc, char **argv) {
    if (argc > 1) ablate_bin = argv[1];
    test_table_columns();
    test_indexer_precision_spec();
    /* one thread: the same arithmetic order in every run, and no spinning threads on a busy machine */
    setenv("OMP_NUM_THREADS", "1", 1);
    test_parse_ok();
    test_parse_errors();
    test_grid();
    test_seeds();
    test_check();
    test_gpus_per_run();
    test_phases();
    test_guide_spec();
    test_train_state();
    test_keys();
    test_quotes();
    test_long_values();
    test_stats();
    char base[] = "/tmp/ablate_test_studyXXXXXX";
    if (!mkdtemp(base)) { report(0, "temporary directory", base); return 1; }
    if (access(ablate_bin, X_OK)) report(0, "the ablate-cpu binary", ablate_bin);
    else {
        test_resume(base);
        test_failures(base);
        test_check_cli(base);
        test_attempts(base);
        test_phases_run(base);
        test_workers(base);
        test_workers_stress(base);
        test_report(base);
        test_axes_run(base);
    }
    test_report_stats(base);
    if (!n_fail) rm_rf(base);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
