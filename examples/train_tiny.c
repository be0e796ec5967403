/* examples/train_tiny.c - the headers without the driver: train a 2-layer model on a
   text file for 100 steps on the CPU and print its validation perplexity.

     cc -O2 -DABLATE_NO_CUDA examples/train_tiny.c -o train_tiny -lm
     ./train_tiny /usr/share/common-licenses/GPL-3
*/
#define OPS_IMPLEMENTATION
#define ATTN_IMPLEMENTATION
#define SMOLLM_IMPLEMENTATION
#define TRAIN_IMPLEMENTATION
#define DATA_IMPLEMENTATION
#include "../train.h"
#include "../data.h"
#include <math.h>
#include <stdio.h>

static void next_batch(void *sampler, int *tokens, int *targets) { data_next_batch(sampler, tokens, targets); }

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/usr/share/common-licenses/GPL-3";
    char err[256];
    Dataset ds;
    if (data_open_text(&ds, path, 0.1f, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }

    SmolConfig cfg = {0};               /* zero fields take the SmolLM2-135M defaults */
    cfg.vocab_size = ds.vocab_size;     /* 256: byte-level */
    cfg.d_model = 64;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.attn = ATTN_GQA;
    cfg.n_kv_heads = 2;
    SmolModel model;
    if (smollm_init(&model, &cfg, NULL, 8, 64, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }

    TrainConfig tc = {0};
    tc.steps = 100;
    tc.warmup = 10;
    Trainer tr;
    train_init(&tr, &model, &tc);
    Sampler train = {&ds, DATA_TRAIN, 8, 64, 1, 0}, val = {&ds, DATA_VAL, 8, 64, 0, 0};
    for (int s = 0; s < tc.steps; s++) {
        TrainStats st = train_step(&tr, next_batch, &train);
        if (st.step % 20 == 0) printf("step %d loss %.3f grad norm %.3f\n", st.step, st.loss, st.grad_norm);
    }
    double v = train_eval(&tr, next_batch, &val, 4);
    printf("validation loss %.3f, perplexity %.2f\n", v, exp(v));
    train_free(&tr);
    smollm_free(&model);
    data_close(&ds);
    return 0;
}
