/* tools/decode_trace.c - where the persistent decode step's time goes (tuning dec_fused=2,
   attn/decode_persist.cu.h): at the SmolLM2-135M GQA shape (random weights), after a prompt
   of CONTEXT - 1 tokens, STEPS eager steps with the kernel's trace on; prints the phases' mean
   microseconds per layer (A q|k|v GEMV, B attention, C merge + o GEMV, D gate|up, E down; each
   from the barrier before it to the next, as block 0 saw them), the LM head, the greedy token's
   choice, a bare grid barrier's cost (8 of them, timed before the step's work) and the kernel's
   total, from the last step (block 0's SM clock, scaled by the global
   timer over the kernel). Greedy decoding: the kernel picks the token itself.

   build: make build/decode_trace (part of make gpuprogs)
   usage: decode_trace BATCH CONTEXT [STEPS]   (STEPS default 5) */
#define ABLATE_IMPLEMENTATION
#include "study.h"
#include "gpu.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: decode_trace BATCH CONTEXT [STEPS]\n");
        return 2;
    }
    int B = atoi(argv[1]), ctx = atoi(argv[2]), steps = argc > 3 ? atoi(argv[3]) : 5;
    if (B < 1 || B > PZ_MAX_B || ctx < 2 || steps < 1) {
        fprintf(stderr, "decode_trace: batch %d, context %d, steps %d: expected batch 1..%d, context >= 2, steps >= 1\n",
                B, ctx, steps, PZ_MAX_B);
        return 2;
    }
    static Gpu gpu;
    if (gpu_init(&gpu, 0)) {
        fprintf(stderr, "decode_trace: %s\n", gpu.err);
        return 1;
    }
    gpu.tuning.dec_fused = 2;
    SmolConfig cfg = {0};
    cfg.vocab_size = 49152;
    cfg.attn.kind = ATTN_GQA;
    cfg.attn.n_kv_heads = 3;
    SmolModel m;
    SmolGpuGen g;
    SmolSampler greedy = {0};
    char err[512];
    if (smollm_init(&m, &cfg, &gpu, 1, 1, err, sizeof err) ||
        smollm_gpu_gen_init(&g, &m, B, ctx + steps, &greedy, 1, 1, err, sizeof err)) {
        fprintf(stderr, "decode_trace: %s\n", err);
        return 1;
    }
    if (g.fused != 2) {
        fprintf(stderr, "decode_trace: the persistent step does not cover this shape (it took step %d)\n", g.fused);
        return 1;
    }
    int L = m.cfg.n_layers, T = ctx - 1, *prompt = calloc((size_t)B * T, sizeof(int));
    size_t n = GPU_PZ_TRACE_LEN(L);
    unsigned long long *tr = calloc(n, sizeof *tr);
    for (int i = 0; i < B * T; i++) prompt[i] = (i * 7919 + 13) % m.cfg.vocab_size;
    g.pz_trace = gpu_alloc(&gpu, n * sizeof *tr);
    int rc = smollm_gpu_prefill(&g, &m, prompt, T, err, sizeof err);
    for (int s = 0; s < steps && !rc; s++) rc = smollm_gpu_decode_step(&g, &m, err, sizeof err);
    if (rc) {
        fprintf(stderr, "decode_trace: %s\n", err);
        return 1;
    }
    gpu_download(&gpu, tr, g.pz_trace, n * sizeof *tr);
    gpu_sync(&gpu);
    double ns = (double)(tr[1] - tr[0]), cyc = (double)(tr[5 * L + 5] - tr[2]), us = ns / 1e3 / cyc;
    double ph[5] = {0};
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 5; k++) ph[k] += (double)(tr[3 + 5 * l + k + 1] - tr[3 + 5 * l + k]) * us / L;
    /* phase k of layer l runs from barrier 5 l + k + 1 (entry 3 + 5 l + k) to the next; the last
       layer's E ends at the LM head's barrier (entry 3 + 5 L) */
    printf("persistent step, GQA 135M shape, batch %d, context %d: kernel %.1f us (%.0f tok/s per sequence "
           "from the kernel alone)\n", B, ctx, ns / 1e3, 1e9 / ns);
    printf("per layer, us: A q|k|v %.2f  B attention %.2f  C merge+o %.2f  D gate|up %.2f  E down %.2f  (sum %.2f)\n",
           ph[0], ph[1], ph[2], ph[3], ph[4], ph[0] + ph[1] + ph[2] + ph[3] + ph[4]);
    const unsigned long long *tb = tr + 5 * L + 6; /* the bare barriers, timed first */
    printf("before the first barrier %.2f us; LM head %.2f us; the greedy token's choice %.2f us; "
           "a bare grid barrier %.2f us (mean of 8)\n", (double)(tr[3] - tb[8]) * us,
           (double)(tr[5 * L + 4] - tr[3 + 5 * L]) * us, (double)(tr[5 * L + 5] - tr[5 * L + 4]) * us,
           (double)(tb[8] - tb[0]) * us / 8);
    gpu_free(&gpu, g.pz_trace);
    g.pz_trace = NULL;
    smollm_gpu_gen_free(&g, &m);
    smollm_free(&m);
    free(prompt);
    free(tr);
    return 0;
}
