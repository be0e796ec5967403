/* tests/test_faults.c - the study directory under hostile inputs and faults: long axis values,
   run names that must stay unique, a full disk (a small tmpfs when this runs as root and can
   mount one; a file-size limit, RLIMIT_FSIZE, always), exit statuses, an empty study.ini on
   --resume, two studies on one directory, names that leave runs/, grids too large to count,
   and kill -9 at named points (ablate run's hidden --test-kill) followed by --resume: every
   metrics line there exactly once, the same as an uninterrupted run's.
     ./tests/test_faults [ABLATE_CPU]     (default ./ablate-cpu; ends "N passed, N failed")
   Scratch files go under a fresh directory in /tmp, removed at the end. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin = "./ablate-cpu";
static char tmp[256];

/* ablate ARGS... with stdout and stderr into tmp/out.txt; fsize > 0: a file-size limit in bytes
   (writes past it fail with EFBIG, as on a full disk). The exit status, or 128 + the signal */
static int run_ablate(long fsize, char *const *args) {
    char out[300];
    snprintf(out, sizeof out, "%s/out.txt", tmp);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fsize > 0) {
            struct rlimit rl = {(rlim_t)fsize, (rlim_t)fsize};
            signal(SIGXFSZ, SIG_IGN); /* the write fails instead of killing the process */
            setrlimit(RLIMIT_FSIZE, &rl);
        }
        char *argv[64] = {(char *)bin};
        int n = 1;
        while (args[n - 1] && n < 63) { argv[n] = args[n - 1]; n++; }
        argv[n] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    StrBuf b = {0};
    sb_printf(&b, "%s", "");
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sb_printf(&b, "%.*s", (int)k, chunk);
    fclose(f);
    return b.p;
}

/* the last command's output holds s (said: and shows the output when it does not) */
static int output_has(const char *s, int show) {
    char p[300];
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    char *t = slurp(p);
    int ok = t && strstr(t, s);
    if (!ok && show) printf("   (output: %.600s)\n", t ? t : "(none)");
    free(t);
    return ok;
}
static int said(const char *s) { return output_has(s, 1); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) { fputs(text, f); fclose(f); }
}

static void rm_rf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("   (cannot remove %s)\n", dir);
}

/* run directories of a study directory (those holding config.json) */
static int count_runs(const char *dir, const char *file) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    char p[1200];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s/%s", dir, e->d_name, file);
            n += access(p, F_OK) == 0;
        }
    closedir(d);
    return n;
}

static char *zeros_then_1(int n) { /* "000...01": n digits */
    char *s = malloc(n + 1);
    memset(s, '0', n);
    s[n - 1] = '1';
    s[n] = 0;
    return s;
}

/* a tiny model: every run trains in a fraction of a second */
#define TINY "layers = 1\nd_model = 16\nheads = 1\nseq = 16\nbatch = 1\neval_batches = 1\n"

/* 1: axis values long enough to cut the assignment mid-key */
static void test_long_assignment(void) {
    char *z60 = zeros_then_1(60), *z30 = zeros_then_1(30), spec[2000];
    snprintf(spec, sizeof spec, "name = a\nsteps = 2\n" TINY "[axes]\nwarmup = %s\neval_every = %s\nlog_every = %s\n"
             "grad_accum = %s\ncheckpoint_every = 1, 2\n", z60, z60, z60, z30);
    StudySpec s;
    StudyRun runs[4];
    char err[600] = "";
    int n = study_parse_text(&s, spec, "a.ini", err, sizeof err) ? -2 : study_expand(&s, 0, "", runs, 4, err, sizeof err);
    int ok = n == 2 && strcmp(runs[0].name, runs[1].name) && strlen(runs[0].name) < STUDY_NAME_LEN;
    report(ok, "long assignment: expands, names distinct", n == 2 ? runs[0].name : err);
    char p[300];
    snprintf(p, sizeof p, "%s/a.ini", tmp);
    write_file(p, spec);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/a", tmp);
    int rc = run_ablate(0, (char *[]){"run", p, "--out", dir, "--quiet", NULL});
    report(rc == 0 && count_runs(dir, "summary.json") == 2, "long assignment: ablate run trains both runs", NULL);
    free(z60);
    free(z30);
}

/* 2: run names cut short must stay unique: 4 runs, 4 directories */
static void test_unique_names(void) {
    char *z60 = zeros_then_1(60), spec[2000], p[300], dir[300];
    snprintf(spec, sizeof spec, "name = b\nsteps = 2\n" TINY "[axes]\neval_every = %s\nlog_every = %s\n"
             "warmup = 0, 3\nlr = 0.001, 0.002\n", z60, z60);
    snprintf(p, sizeof p, "%s/b.ini", tmp);
    write_file(p, spec);
    snprintf(dir, sizeof dir, "%s/b", tmp);
    int rc = run_ablate(0, (char *[]){"run", p, "--out", dir, "--quiet", NULL});
    int n = count_runs(dir, "summary.json");
    char d[64];
    snprintf(d, sizeof d, "exit %d, %d run directories", rc, n);
    report(rc == 0 && n == 4, "cut run names: 4 runs keep 4 directories", d);
    free(z60);
}

/* the steps of DIR/RUN/metrics.jsonl in order, and their losses; -1: unreadable */
static int metrics_steps(const char *path, int *steps, char (*loss)[40], int max) {
    char *t = slurp(path);
    if (!t) return -1;
    int n = 0;
    for (char *line = t; *line && n < max;) {
        char *nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        const char *l = strstr(line, "\"loss\": ");
        steps[n] = atoi(line + 9);
        snprintf(loss[n], sizeof loss[n], "%.*s", l ? (int)strcspn(l + 8, ",") : 0, l ? l + 8 : "");
        n++;
        line = nl + 1;
    }
    free(t);
    return n;
}

#define KSTEPS 24
static const char *kill_spec = "name = k\nsteps = 24\n" TINY "eval_every = 8\n[axes]\nlr = 0.001, 0.002\n";

/* 10: kill -9 at named points, then --resume: the metrics of both runs equal the reference's */
static void test_kill_resume(const char *ref) {
    const char *points[] = {"metrics:5", "metrics:8", "metrics:24", "metrics:30", "summary:1", "summary:2"};
    char p[300], dir[300];
    snprintf(p, sizeof p, "%s/k.ini", tmp);
    for (int k = 0; k < 6; k++) {
        snprintf(dir, sizeof dir, "%s/k%d", tmp, k);
        int rc1 = run_ablate(0, (char *[]){"run", p, "--out", dir, "--quiet", "--test-kill", (char *)points[k], NULL});
        int rc2 = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
        int ok = rc1 == 128 + SIGKILL && rc2 == 0;
        const char *runs[] = {"lr-0.001_seed1337", "lr-0.002_seed1337"};
        for (int r = 0; r < 2 && ok; r++) {
            int sa[64], sb[64];
            char la[64][40], lb[64][40], pa[600], pb[600];
            snprintf(pa, sizeof pa, "%s/%s/metrics.jsonl", dir, runs[r]);
            snprintf(pb, sizeof pb, "%s/%s/metrics.jsonl", ref, runs[r]);
            int na = metrics_steps(pa, sa, la, 64), nb = metrics_steps(pb, sb, lb, 64);
            ok = na == KSTEPS && nb == KSTEPS;
            for (int i = 0; ok && i < na; i++) ok = sa[i] == i + 1 && sb[i] == i + 1 && !strcmp(la[i], lb[i]);
        }
        char name[96], d[64];
        snprintf(name, sizeof name, "kill -9 at %s, --resume: every metrics line once", points[k]);
        snprintf(d, sizeof d, "exits %d then %d", rc1, rc2);
        report(ok, name, d);
    }
}

/* 3: a full disk while metrics.jsonl is written */
static void test_full_disk(void) {
    char p[300], dir[320], mnt[300];
    snprintf(p, sizeof p, "%s/fd.ini", tmp);
    /* no checkpoints: the metrics are what fills the disk */
    write_file(p, "name = fd\nsteps = 200\n" TINY "eval_every = 100\ncheckpoint_every = 1000\n");
    /* a file-size limit: writes past 4096 bytes fail with EFBIG (a tear in the middle of a line) */
    snprintf(dir, sizeof dir, "%s/fd", tmp);
    int rc = run_ablate(4096, (char *[]){"run", p, "--out", dir, "--quiet", NULL});
    char sp[600];
    snprintf(sp, sizeof sp, "%s/base_seed1337/summary.json", dir);
    char *sum = slurp(sp);
    int ok = rc == 1 && sum && strstr(sum, "\"status\": \"failed\"") && strstr(sum, "metrics.jsonl (step") &&
             said("did not finish ok");
    report(ok, "failed metrics write: run failed naming the file, exit 1", sum ? NULL : "no summary.json");
    free(sum);
    /* the limit cuts a line in half unless, by chance of the lines' lengths (elapsed times and
       rates vary in digits), a line ends exactly at byte 4096: then nothing is torn and the
       report must not claim it is */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/base_seed1337/metrics.jsonl", dir);
    char *met = slurp(mp);
    int torn = met && *met && met[strlen(met) - 1] != '\n';
    free(met);
    rc = run_ablate(0, (char *[]){"report", dir, NULL});
    report(rc == 0 && (torn ? said("torn line") : !said("torn line")) && !output_has("although the run says ok", 0),
           torn ? "report names the torn metrics line" : "report: the metrics ended on a whole line, none named torn",
           NULL);
    /* a real full disk: a 16 KiB tmpfs (study.ini, the lock and config.json take a page each) */
    snprintf(mnt, sizeof mnt, "%s/tmpfs", tmp);
    mkdir(mnt, 0755);
    if (geteuid() != 0 || mount("tmpfs", mnt, "tmpfs", 0, "size=16k")) {
        printf("SKIP full tmpfs: cannot mount one (%s): the file-size limit above stands in for it\n",
               geteuid() ? "not root" : strerror(errno));
        return;
    }
    snprintf(dir, sizeof dir, "%s/fd", mnt);
    rc = run_ablate(0, (char *[]){"run", p, "--out", dir, "--quiet", NULL});
    snprintf(sp, sizeof sp, "%s/base_seed1337/summary.json", dir);
    sum = slurp(sp);
    /* the run is recorded failed, naming metrics.jsonl (exit 1), or the study stops at the first
       file of its own it cannot write (summary.json, results.json: exit 2); never ok */
    ok = rc != 0 && (!sum || (strstr(sum, "\"status\": \"failed\"") && strstr(sum, "metrics.jsonl"))) &&
         said("No space left on device");
    char d[64];
    snprintf(d, sizeof d, "exit %d", rc);
    report(ok, "full tmpfs: the run is not ok, the file is named", d);
    free(sum);
    if (umount(mnt)) printf("   (cannot unmount %s: %s)\n", mnt, strerror(errno));
}

/* 4: exit statuses */
static void test_exit_codes(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ex", tmp);
    int rc = run_ablate(0, (char *[]){"run", "--axes", "lr=0.001,1e30", "--steps", "5", "--layers", "1", "--d-model",
                                      "16", "--heads", "1", "--seq", "16", "--batch", "1", "--eval-batches", "1",
                                      "--clip", "0", "--out", dir, "--quiet", NULL});
    report(rc == 1 && said("1 run did not finish ok"), "a diverged run: exit 1", NULL);
    rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
    report(rc == 1, "--resume of a study with a diverged run: exit 1", NULL);
    rc = run_ablate(0, (char *[]){"run", "--axes", "lr=0.001", "--no-such-key", "1", NULL});
    report(rc == 2, "a usage error: exit 2", NULL);
    rc = run_ablate(0, (char *[]){"run", "--help", NULL});
    report(rc == 0 && said("Exit status: 0"), "ablate run --help documents the exit statuses", NULL);
}

/* 5: an empty or missing study.ini on --resume */
static void test_empty_spec(void) {
    char dir[300], p[400];
    snprintf(dir, sizeof dir, "%s/empty", tmp);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/study.ini", dir);
    write_file(p, "# nothing\n\n");
    int rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
    report(rc == 2 && said("study.ini is empty") && count_runs(dir, "config.json") == 0,
           "--resume with an empty study.ini: refused naming it", NULL);
    remove(p);
    rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
    report(rc == 2 && said("cannot read") && said("study.ini"), "--resume without study.ini: refused naming it", NULL);
    rc = run_ablate(0, (char *[]){"--resume", dir, NULL});
    report(rc == 2, "ablate --resume (the default study) with no study.ini: refused", NULL);
}

/* 6: one study per directory */
static void test_lock(void) {
    char p[300], dir[300], lock[400];
    snprintf(p, sizeof p, "%s/long.ini", tmp);
    write_file(p, "name = long\nsteps = 100000\n" TINY "eval_every = 100000\n");
    snprintf(dir, sizeof dir, "%s/lk", tmp);
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin, bin, "run", p, "--out", dir, "--quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300 && access(lock, F_OK); i++) usleep(20000);
    char want[64];
    snprintf(want, sizeof want, "process %ld on", (long)pid);
    int rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
    report(rc == 2 && said(want), "a second study on a running study's directory: refused naming the holder", NULL);
    rc = run_ablate(0, (char *[]){"run", p, "--out", dir, "--quiet", NULL});
    report(rc == 2, "a fresh study into a running study's directory: refused", NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* the holder is gone: its lock is stale. Take it over (a study of 2 steps this time) */
    write_file(p, "name = long\nsteps = 2\n" TINY);
    char sp[400];
    snprintf(sp, sizeof sp, "%s/study.ini", dir);
    write_file(sp, "name = long\nsteps = 2\n" TINY);
    rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--quiet", NULL});
    report(rc == 0 && said("stale lock") && access(lock, F_OK) != 0,
           "a stale lock (holder killed): taken over with a message, released", NULL);
    /* workers share their parent's lock */
    snprintf(dir, sizeof dir, "%s/wk", tmp);
    rc = run_ablate(0, (char *[]){"run", "--axes", "lr=0.001,0.002,0.003", "--steps", "3", "--layers", "1",
                                  "--d-model", "16", "--heads", "1", "--seq", "16", "--batch", "1", "--eval-batches",
                                  "1", "--workers", "2", "--out", dir, "--quiet", NULL});
    report(rc == 0 && count_runs(dir, "summary.json") == 3, "--workers 2: the workers run under the study's lock", NULL);
    rc = run_ablate(0, (char *[]){"run", "--resume", dir, "--worker", "1", "--workers", "2", "--phase-only", "0",
                                  "--quiet", NULL});
    report(rc == 2 && said("not held by this worker's parent"), "a --worker without its parent's lock: refused", NULL);
}

/* 7: names that leave runs/ */
static void test_names(void) {
    const char *bad[] = {"..", ".", "a/b"};
    for (int i = 0; i < 3; i++) {
        StudySpec s;
        char err[600] = "", name[64];
        study_default(&s, 0);
        int r = study_set(&s, "name", bad[i], err, sizeof err);
        snprintf(name, sizeof name, "name '%s' refused", bad[i]);
        report(r != 0 && strstr(err, bad[i]), name, err);
    }
    int rc = run_ablate(0, (char *[]){"run", "--axes", "lr=0.001", "--name", "..", NULL});
    report(rc == 2 && said("name '..'"), "ablate run --name ..: exit 2", NULL);
}

/* 8: grids too large */
static void test_grid_size(void) {
    /* 6 axes of 32 values and 2 seeds: 2^31 runs, more than an int holds */
    char list[200] = "";
    for (int i = 1; i <= 32; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i > 1 ? "," : "", i);
    const char *keys[] = {"warmup", "eval_every", "log_every", "checkpoint_every", "eval_batches", "grad_accum"};
    char axes[6][240];
    for (int a = 0; a < 6; a++) snprintf(axes[a], sizeof axes[a], "%s=%s", keys[a], list);
    StudySpec s;
    char err[600] = "";
    char *args[] = {"--axes", axes[0], axes[1], axes[2], axes[3], axes[4], axes[5], "--seeds", "2", NULL};
    StudyOptions o = {0};
    int r = study_from_args(&s, &o, 9, args, err, sizeof err);
    report(r == 0 && study_phase_size(&s, 0) == INT_MAX, "2^31 runs: study_phase_size saturates at INT_MAX", err);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/huge", tmp);
    int rc = run_ablate(0, (char *[]){"run", "--axes", axes[0], axes[1], axes[2], axes[3], axes[4], axes[5], "--seeds",
                                      "2", "--out", dir, NULL});
    report(rc == 2 && said("more than 2147483646 runs") && access(dir, F_OK) != 0, "2^31 runs: refused, exit 2", NULL);
    /* 110000 runs: refused unless --allow-large */
    rc = run_ablate(0, (char *[]){"run", "--axes", "lr=1,2,3,4,5,6,7,8,9,10", "warmup=1,2,3,4,5,6,7,8,9,10", "eval_every=1,2,3,4,5,6,7,8,9,10",
                                  "log_every=1,2,3,4,5,6,7,8,9,10", "eval_batches=1,2,3,4,5,6,7,8,9,10,11", "--out", dir, NULL});
    report(rc == 2 && said("110000 runs") && said("--allow-large") && access(dir, F_OK) != 0,
           "110000 runs: refused without --allow-large", NULL);
}

int main(int argc, char **argv) {
    if (argc > 1) bin = argv[1];
    if (access(bin, X_OK)) { fprintf(stderr, "test_faults: %s is not built (make ablate-cpu)\n", bin); return 1; }
    snprintf(tmp, sizeof tmp, "/tmp/test_faults.XXXXXX");
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    test_long_assignment();
    test_unique_names();
    test_full_disk();
    test_exit_codes();
    test_empty_spec();
    test_lock();
    test_names();
    test_grid_size();
    /* the reference: the kill study uninterrupted */
    char p[300], ref[300];
    snprintf(p, sizeof p, "%s/k.ini", tmp);
    write_file(p, kill_spec);
    snprintf(ref, sizeof ref, "%s/kref", tmp);
    int rc = run_ablate(0, (char *[]){"run", p, "--out", ref, "--quiet", NULL});
    report(rc == 0, "the uninterrupted reference study", NULL);
    test_kill_resume(ref);
    rm_rf(tmp);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
