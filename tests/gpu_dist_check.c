/* tests/gpu_dist_check.c - data-parallel training on GPUs (dist.h's NCCL transport, train.h's
   DATA PARALLEL) against one process, on a GPU machine with libnccl.so.2:
     1 GPU:   one rank over NCCL == the same run without a DistComm, bit for bit (the single-GPU
              path through the data-parallel code: the 1-rank all_reduce and all_gather copy)
     2+ GPUs: 2 ranks x 4 rows == 1 GPU with batch 4 x grad_accum 2 (bf16 compute: training
              losses within 2e-3 relative, the final validation loss within 2e-3); a 2-rank
              checkpoint resumed on 1 GPU == the uninterrupted 1-GPU run (same tolerances)
     grad_reduce bf16 (the ncclBfloat16 all-reduce and the bf16 <-> fp32 kernels): on 1 GPU
              within 3e-3 of the run without a DistComm; on 2 GPUs within 3e-3 of the 1-GPU
              grad_accum 2 run (2e-3 of bf16 compute + 1e-3, tests/test_dist.c's bound for the
              bf16 sum) and differing from the fp32 reduction (the option acts)
     grad_bucket_mb (train.h's GRADIENT BUCKETS: each layer's gradients reduced on a second
              stream while the backward goes on): == one bucket, bit for bit, on 1 GPU (fp32 and
              bf16) and on 2
     gpus_per_run (needs ./ablate, the CUDA build): a study of 2 runs with --gpus 0,1
              --gpus-per-run 2 (each run over both GPUs) == the same study on --gpus 0 within
              2e-3, config.json saying device cuda and gpus_per_run 2
   Every GPU is opened in a forked child, never in this process (dist.h: a CUDA context does not
   survive fork); the GPU count is asked in a child too.
     ./tests/gpu_dist_check            (ends "N passed, N failed") */
#define ABLATE_IMPLEMENTATION
#include "study.h"
#include "tests/check.h"       /* report */
#include "tests/dist_common.h" /* losses, compare */

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *data = "/usr/share/common-licenses/GPL-3";

static void base_config(StudyRunConfig *c, int batch, int accum, int steps) {
    char err[256];
    study_run_config_defaults(c);
    const char *kv[][2] = {{"layers", "2"}, {"d_model", "128"}, {"heads", "2"}, {"seq", "128"}, {"eval_batches", "2"},
                           {"checkpoint_every", "2"}, {"eval_every", "2"}};
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++)
        if (study_run_config_set(c, kv[i][0], kv[i][1], err, sizeof err)) printf("config: %s\n", err);
    c->batch = batch;
    c->train.grad_accum = accum;
    c->train.steps = steps;
    c->data = data;
}

typedef struct { StudyRunConfig c; const char *dir; int nccl; } RunCtx;

static int open_gpu(int idx, Gpu **out) {
    Gpu *g = calloc(1, sizeof *g);
    if (!g || gpu_init(g, idx)) { fprintf(stderr, "GPU %d: %s\n", idx, g ? g->err : "out of memory"); free(g); return -1; }
    *out = g;
    return 0;
}

static int rank_main(DistComm *c, void *ctx) {
    RunCtx *x = ctx;
    Gpu *g;
    if (open_gpu(c->rank, &g)) return 3;
    StudyRunConfig o = x->c;
    if (x->nccl) {
        if (dist_nccl_init(c, g->stream)) { fprintf(stderr, "%s\n", c->err); return 3; }
        o.dist = c;
    }
    StudySummary s = {0};
    int rc = study_train(&o, x->dir, g, 0, &s);
    if (rc) fprintf(stderr, "rank %d: %s\n", c->rank, s.reason);
    dist_nccl_close(c);
    study_close_device(g);
    return rc;
}

/* W ranks over NCCL (nccl = 0: one process without a DistComm) in dir (emptied unless keep) */
static int run(const StudyRunConfig *c, int W, int nccl, const char *dir, int keep, char *err, size_t errlen) {
    char cmd[512];
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
        if (system(cmd)) return -1;
    }
    RunCtx x = {*c, dir, nccl};
    return dist_spawn(W, rank_main, &x, err, errlen);
}

/* the GPU count, asked in a child (this process keeps no CUDA context); -1: none usable */
static int gpu_count(void) {
    pid_t p = fork();
    if (p == 0) {
        Gpu *g;
        if (open_gpu(0, &g)) _exit(255);
        int n = 0;
        if (gpu_cu()->cuDeviceGetCount(&n) != CUDA_SUCCESS) n = 0;
        _exit(n > 100 ? 100 : n);
    }
    int st = 0;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) == 255) return -1;
    return WEXITSTATUS(st);
}

int main(void) {
    int n = gpu_count();
    if (n < 1) { printf("no usable GPU\n0 passed, 1 failed\n"); return 1; }
    printf("%d GPU(s)\n", n);
    if (system("mkdir -p build/gpu_dist")) return 1;
    char err[512] = "";
    StudyRunConfig c;
    base_config(&c, 8, 1, 4);
    int rc = run(&c, 1, 0, "build/gpu_dist/plain", 0, err, sizeof err);
    report(rc == 0, "1 GPU without a DistComm: trains", err);
    err[0] = 0;
    rc = run(&c, 1, 1, "build/gpu_dist/nccl1", 0, err, sizeof err);
    report(rc == 0, "1 GPU, one NCCL rank: trains", err);
    compare("1 NCCL rank == no DistComm (bit for bit)", "build/gpu_dist/plain", "build/gpu_dist/nccl1", 4, 0, 0, 1);
    StudyRunConfig cb = c;
    cb.train.grad_reduce = TRAIN_REDUCE_BF16;
    err[0] = 0;
    rc = run(&cb, 1, 1, "build/gpu_dist/nccl1_bf16", 0, err, sizeof err);
    report(rc == 0, "1 GPU, one NCCL rank, grad_reduce bf16: trains", err);
    compare("1 NCCL rank bf16 ~ no DistComm", "build/gpu_dist/plain", "build/gpu_dist/nccl1_bf16", 4, 3e-3, 3e-3, 1);
    /* GRADIENT BUCKETS (train.h): a bucket per layer on the comm stream while the backward runs
       (1e-9 MB), fp32 and bf16: the same sums as one bucket, bit for bit */
    {
        const char *dirs[2] = {"build/gpu_dist/nccl1_buckets", "build/gpu_dist/nccl1_buckets_bf16"};
        const char *ref[2] = {"build/gpu_dist/nccl1", "build/gpu_dist/nccl1_bf16"};
        for (int k = 0; k < 2; k++) {
            StudyRunConfig cu = k ? cb : c;
            cu.train.grad_bucket_mb = 1e-9f;
            err[0] = 0;
            rc = run(&cu, 1, 1, dirs[k], 0, err, sizeof err);
            char name[160];
            snprintf(name, sizeof name, "1 GPU, one NCCL rank, a bucket per layer%s: trains", k ? ", bf16" : "");
            report(rc == 0, name, err);
            snprintf(name, sizeof name, "1 NCCL rank, a bucket per layer%s == one bucket (bit for bit)", k ? ", bf16" : "");
            compare(name, ref[k], dirs[k], 4, 0, 0, 1);
        }
    }
    if (n >= 2) {
        StudyRunConfig one, two;
        base_config(&one, 4, 2, 4);
        base_config(&two, 8, 1, 4);
        err[0] = 0;
        rc = run(&one, 1, 0, "build/gpu_dist/accum2", 0, err, sizeof err);
        report(rc == 0, "1 GPU, batch 4 x grad_accum 2: trains", err);
        err[0] = 0;
        rc = run(&two, 2, 1, "build/gpu_dist/ranks2", 0, err, sizeof err);
        report(rc == 0, "2 GPUs, batch 8: trains", err);
        compare("2 GPUs == 1 GPU with grad_accum 2", "build/gpu_dist/accum2", "build/gpu_dist/ranks2", 4, 2e-3, 2e-3, 1);
        StudyRunConfig twob = two;
        twob.train.grad_reduce = TRAIN_REDUCE_BF16;
        err[0] = 0;
        rc = run(&twob, 2, 1, "build/gpu_dist/ranks2_bf16", 0, err, sizeof err);
        report(rc == 0, "2 GPUs, batch 8, grad_reduce bf16: trains", err);
        compare("2 GPUs bf16 ~ 1 GPU with grad_accum 2", "build/gpu_dist/accum2", "build/gpu_dist/ranks2_bf16", 4, 3e-3,
                3e-3, 1);
        {
            double a[64], b[64], most = 0;
            int na = losses("build/gpu_dist/ranks2", 0, a, 64), nb = losses("build/gpu_dist/ranks2_bf16", 0, b, 64);
            for (int i = 0; i < na && i < nb; i++) most = fmax(most, fabs(a[i] - b[i]));
            char d[120];
            snprintf(d, sizeof d, "largest difference of the training losses %.3g over %d steps", most, na);
            report(na == nb && na == 4 && most > 0, "2 GPUs: bf16 reduction differs from fp32 (the option acts)", d);
        }
        /* the buckets over 2 GPUs: NCCL adds 2 ranks' elements as a + b whatever the buffer */
        StudyRunConfig twok = two;
        twok.train.grad_bucket_mb = 1e-9f;
        err[0] = 0;
        rc = run(&twok, 2, 1, "build/gpu_dist/ranks2_buckets", 0, err, sizeof err);
        report(rc == 0, "2 GPUs, a bucket per layer: trains", err);
        compare("2 GPUs, a bucket per layer == one bucket (bit for bit)", "build/gpu_dist/ranks2",
                "build/gpu_dist/ranks2_buckets", 4, 0, 0, 1);
        StudyRunConfig six;
        base_config(&six, 8, 1, 6);
        err[0] = 0;
        rc = run(&six, 1, 0, "build/gpu_dist/whole", 0, err, sizeof err);
        report(rc == 0, "1 GPU, batch 8, 6 steps: trains", err);
        six.die_at = "checkpoint-written:4";
        err[0] = 0;
        rc = run(&six, 2, 1, "build/gpu_dist/resume", 0, err, sizeof err);
        report(rc != 0 && strstr(err, "rank 0 of 2 was killed"), "2 GPUs killed after checkpoint 4: rank 0 named", err);
        six.die_at = NULL;
        err[0] = 0;
        rc = run(&six, 1, 1, "build/gpu_dist/resume", 1, err, sizeof err);
        report(rc == 0, "its checkpoint resumed on 1 GPU: trains to step 6", err);
        compare("2-GPU checkpoint resumed on 1 == uninterrupted", "build/gpu_dist/whole", "build/gpu_dist/resume", 6,
                2e-3, 2e-3, 1);
        /* a study whose runs each take both GPUs, through the binary (fork + exec of workers,
           each forking its ranks) */
        if (access("./ablate", X_OK)) report(0, "gpus_per_run study", "./ablate is not built (make ablate)");
        else {
            const char *study = "./ablate run --axes attn=mha,gqa --layers 2 --d-model 128 --heads 2 --seq 128 --batch 8 "
                                "--steps 4 --eval-batches 2 --eval-every 2 --quiet --data /usr/share/common-licenses/GPL-3";
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "rm -rf build/gpu_dist/study_dp2 && %s --gpus 0,1 --gpus-per-run 2 --out "
                                      "build/gpu_dist/study_dp2", study);
            rc = system(cmd);
            report(rc == 0, "study: 2 runs, each over GPUs 0,1 (--gpus-per-run 2)", NULL);
            snprintf(cmd, sizeof cmd, "rm -rf build/gpu_dist/study_dp1 && %s --gpus 0 --out build/gpu_dist/study_dp1", study);
            rc = system(cmd);
            report(rc == 0, "study: the same 2 runs on GPU 0 alone", NULL);
            const char *runs[2] = {"attn-mha_seed1337", "attn-gqa_seed1337"};
            for (int i = 0; i < 2; i++) {
                char a[300], b[300], name[160];
                snprintf(a, sizeof a, "build/gpu_dist/study_dp1/%s", runs[i]);
                snprintf(b, sizeof b, "build/gpu_dist/study_dp2/%s", runs[i]);
                snprintf(name, sizeof name, "study %s: 2 GPUs == 1 GPU", runs[i]);
                compare(name, a, b, 4, 2e-3, 2e-3, 1);
                snprintf(cmd, sizeof cmd, "grep -q '\"device\": \"cuda\", \"gpus_per_run\": 2,' %s/config.json", b);
                snprintf(name, sizeof name, "study %s: config.json says cuda, gpus_per_run 2", runs[i]);
                report(system(cmd) == 0, name, NULL);
            }
        }
    } else
        printf("(one GPU: the 2-rank checks need a machine with 2 or more)\n");
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail != 0;
}
