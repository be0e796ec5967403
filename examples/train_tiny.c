/* examples/train_tiny.c - the headers without the driver: train a 2-layer model on a
   text file for 100 steps on the CPU and print its loss over the whole validation split.

     cc -O2 examples/train_tiny.c -o train_tiny -lm
     ./train_tiny /usr/share/common-licenses/GPL-3
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../train.h"
#include "../data.h"
#include <math.h>
#include <stdio.h>

static void next_batch(void *sampler, int *tokens, int *targets) { data_next_batch(sampler, tokens, targets); }

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/usr/share/common-licenses/GPL-3";
    char err[256];
    DataSet ds;
    if (data_open_text(&ds, path, 0.1f, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }

    SmolConfig cfg = {0};               /* zero fields take the SmolLM2-135M defaults */
    cfg.vocab_size = ds.vocab_size;     /* 256: byte-level */
    cfg.d_model = 64;
    cfg.n_layers = 2;
    cfg.n_heads = 4;
    cfg.attn.kind = ATTN_GQA;
    cfg.attn.n_kv_heads = 2;
    SmolModel model;
    if (smollm_init(&model, &cfg, NULL, 8, 64, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }

    TrainConfig tc = {0};
    tc.steps = 100;
    tc.warmup = 10;
    TrainState tr;
    if (train_init(&tr, &model, &tc)) { fprintf(stderr, "out of memory for the optimizer state\n"); return 1; }
    DataSampler train = {&ds, DATA_TRAIN, 8, 64, 1, 0};
    for (int s = 0; s < tc.steps; s++) {
        TrainStats st = train_step(&tr, next_batch, &train);
        if (st.step % 20 == 0) printf("step %d loss %.3f grad norm %.3f\n", st.step, st.loss, st.grad_norm);
    }
    /* every validation token scored once: windows tile the split (max_rows 0 = all of it) */
    DataEval val;
    TrainEval ev;
    if (data_eval_init(&val, &ds, DATA_VAL, 64, 8, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    if (train_evaluate(&model, data_eval_batch, &val, data_eval_batches(&val), 0, &ev)) {
        fprintf(stderr, "evaluation: out of memory\n");
        return 1;
    }
    printf("validation loss %.3f, perplexity %.2f, bits per byte %.3f over %.0f tokens\n", ev.loss, exp(ev.loss),
           ev.loss / log(2.0), ev.tokens); /* byte-level text: a token is a byte */
    train_free(&tr);
    smollm_free(&model);
    data_close(&ds);
    return 0;
}
