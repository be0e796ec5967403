/* decode_step.c - one GPU generation configuration at the SmolLM2-135M shape (random weights),
   for a profiler to look inside: the prompt, then GEN decode steps (the first two eager, the
   rest replays of the step's CUDA graph), printing prefill and decode tokens/s as
   ablate bench --only decode does (study_decode_bench). tools/ncu_decode.sh runs it under
   Nsight Compute and sums the last step's kernels.

   build: make build/decode_step (part of make gpuprogs)
   usage: decode_step MECHANISM BATCH CONTEXT [GEN [FUSED [PDL]]]   (GEN default 6, FUSED 0..2: tuning
          dec_fused, PDL 0|1: tuning dec_pdl)
   GQA takes 3 KV heads (the anchor's); DSA top-2048. */
#define ABLATE_IMPLEMENTATION
#include "study.h"
#include "gpu.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: decode_step MECHANISM BATCH CONTEXT [GEN [FUSED [PDL]]]\n");
        return 2;
    }
    const char *mech = argv[1];
    int B = atoi(argv[2]), ctx = atoi(argv[3]), gen = argc > 4 ? atoi(argv[4]) : 6, fused = argc > 5 ? atoi(argv[5]) : 0;
    int pdl = argc > 6 && atoi(argv[6]);
    SmolConfig cfg = {0};
    cfg.vocab_size = 49152;
    if (attn_kind_parse(mech, &cfg.attn.kind)) {
        fprintf(stderr, "decode_step: unknown mechanism '%s' (expected %s)\n", mech, ATTN_KIND_LIST);
        return 2;
    }
    if (fused < 0 || fused > 2) {
        fprintf(stderr, "decode_step: FUSED %d: expected 0 (separate kernels), 1 (fused) or 2 (persistent)\n", fused);
        return 2;
    }
    if (B < 1 || gen < 1 || ctx <= gen) {
        fprintf(stderr, "decode_step: batch %d, context %d, gen %d: expected batch >= 1, gen >= 1, context > gen\n", B,
                ctx, gen);
        return 2;
    }
    if (cfg.attn.kind == ATTN_GQA) cfg.attn.n_kv_heads = 3;
    if (cfg.attn.kind == ATTN_DSA) cfg.attn.topk = 2048;
    static Gpu gpu;
    if (gpu_init(&gpu, 0)) {
        fprintf(stderr, "decode_step: %s\n", gpu.err);
        return 1;
    }
    gpu.tuning.dec_fused = fused;
    gpu.tuning.dec_pdl = pdl;
    SmolModel m;
    StudyDecodeBench r;
    char err[512];
    if (smollm_init(&m, &cfg, &gpu, 1, 1, err, sizeof err) ||
        study_decode_bench(&m, B, ctx - gen, gen, &r, err, sizeof err)) {
        fprintf(stderr, "decode_step: %s\n", err);
        return 1;
    }
    printf("%s batch %d context %d%s%s: prefill %.0f tok/s, decode %.0f tok/s\n", mech, B, ctx, r.fused == 2 ? " persistent" : r.fused ? " fused" : "", pdl ? " dec_pdl=1" : "",
           r.prefill_tps, r.decode_tps);
    smollm_free(&m);
    return 0;
}
