/* smollm.h - a SmolLM2-style decoder-only language model: token embedding,
   N blocks (attention + SwiGLU FFN, RMSNorm placed by the norm strategy),
   final RMSNorm, LM head tied to the embedding, cross-entropy loss.

   USAGE
     #define ABLATE_IMPLEMENTATION   // in exactly one .c file (or OPS_, ATTN_ and
     #include "smollm.h"             // SMOLLM_IMPLEMENTATION)

     SmolConfig cfg = {0};                 // zero = SmolLM2-135M
     cfg.vocab_size = 256; cfg.d_model = 64; cfg.n_layers = 2; cfg.n_heads = 4;
     SmolModel m;
     char err[256];
     if (smollm_init(&m, &cfg, NULL, 8, 64, err, sizeof err)) { puts(err); exit(1); }
     float loss = smollm_step(&m, tokens, targets, 1.0f / (8 * 64));  // forward + backward
     ...
     smollm_free(&m);

   DEPENDS ON: attn.h (which includes ops.h). Builds CPU-only unless -DABLATE_CUDA (ops.h).
   LINKAGE: every public function is declared SMOLLMDEF (extern); define SMOLLM_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   DEFAULTS (a zeroed field takes the SmolLM2-135M value): vocab 49152, d_model 576, 30 layers,
   9 heads, 3 KV heads (GQA), head dim d_model/heads, ffn 1536 (8/3 d_model rounded up to 64),
   RoPE theta 100000, RMSNorm eps 1e-5, tied embeddings, no biases, pre-norm.
   ATTENTION PER LAYER: `attn` (and its options) for every layer, or `attn_layers`, a schedule
   such as "swa:256*3,gqa" (grammar in attn.h) whose items overlay those fields layer by layer;
   parameter counts, KV bytes and FLOPs are summed over the layers' own configs.

   NORM STRATEGIES
     pre       (Llama, SmolLM2)  h = x + Attn(N(x));        y = h + FFN(N(h))
     post      (OLMo 2)          h = x + N(Attn(x));        y = h + N(FFN(h))
     sandwich  (Gemma 2)         h = x + N(Attn(N(x)));     y = h + N(FFN(N(h)))
   every strategy ends with a final RMSNorm before the LM head.

   GENERATION (CPU): smollm_gen_init, smollm_prefill, smollm_decode_step, smollm_sample (greedy,
   temperature, top-k, top-p, seeded) and smollm_gen_free; each layer decodes from its
   mechanism's cache (attn.h, DECODING). Declared with their contract at the end of the header.

   INITIALIZATION (seeded; the same seed gives the same weights bit for bit on any machine
   and thread count): every 2^20-element chunk of every tensor draws from its own splitmix64
   stream seeded by (seed, tensor index, chunk), Box-Muller in double; linear weights and embeddings N(0, init_std = 0.02), o_proj and down_proj
   N(0, 0.02 / sqrt(2 n_layers)) (GPT-2's residual scaling), norm scales 1.

   PARAMETER NAMES follow Hugging Face Llama / OLMo 2 / Gemma 2 (see smollm_param_specs):
     model.embed_tokens.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
     model.layers.{i}.self_attn.{q,k}_norm.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
     model.layers.{i}.input_layernorm.weight (pre / sandwich: before attention),
     model.layers.{i}.post_attention_layernorm.weight (pre: before the FFN, as Llama names it;
       post / sandwich: on the attention output), model.layers.{i}.pre_feedforward_layernorm.weight
     (sandwich), model.layers.{i}.post_feedforward_layernorm.weight (post / sandwich), model.norm.weight.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(SMOLLM_IMPLEMENTATION)
#define SMOLLM_IMPLEMENTATION
#endif
#ifndef SMOLLM_H
#define SMOLLM_H

/* linkage of every public function: extern, or static with SMOLLM_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef SMOLLMDEF
#if defined(SMOLLM_STATIC) || defined(ABLATE_STATIC)
#define SMOLLMDEF static
#else
#define SMOLLMDEF extern
#endif
#endif

/* fileno, fseeko, off_t: POSIX 2008, asked for before the first system header so that the
   implementation builds under a strict -std=c99 too (a file that includes a system header before
   this one, under -std=c99, defines _POSIX_C_SOURCE 200809L itself) */
#if defined(SMOLLM_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "attn.h"
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SIZE LIMITS (smollm_resolve and smollm_init refuse more, naming the value): far above any
   model this trains, low enough that no size product (vocab x d_model, B x T x ffn, ...)
   overflows a size_t and the token count B x T of a batch fits the ops' int indices */
#define SMOLLM_MAX_LAYERS 1024
#define SMOLLM_MAX_WIDTH 65536        /* d_model, heads, head dims, latents */
#define SMOLLM_MAX_FFN 1048576
#define SMOLLM_MAX_VOCAB 1048576      /* 2^20: four times the largest tokenizers in use (256K) */
#define SMOLLM_MAX_SEQ 1048576        /* context length, and windows, top-k and strides within it */
#define SMOLLM_MAX_BATCH 65536        /* sequences per micro-batch (and micro-batches per step) */

typedef enum { SMOLLM_NORM_DEFAULT = 0, SMOLLM_NORM_PRE, SMOLLM_NORM_POST, SMOLLM_NORM_SANDWICH } SmolNormKind;

typedef struct {
    int vocab_size, d_model, n_layers, n_heads, ffn_dim;
    float rope_theta, norm_eps, init_std;
    SmolNormKind norm;
    /* every layer's attention (attn.h): attn.kind and its options (attn.n_kv_heads, attn.window,
       ...; 0 = defaults) and attn.head_dim; its d_model, n_heads, rope_theta and norm_eps are
       the model's (smollm_layer_attn copies them in) */
    AttnConfig attn;
    /* per-layer schedule (attn.h's grammar, e.g. "swa:256*3,gqa"); empty = `attn` everywhere.
       `attn` is the base each item overlays. */
    char attn_layers[256];
    uint64_t seed;
    /* dropout on each sublayer's output before its residual add (GPT-2's resid_pdrop), the
       probability of zeroing an element (kept ones scaled by 1 / (1 - p)); 0: none. Training
       forwards only (smollm_at_step turns it on, evaluations run without it). Dropout on the
       attention probabilities is an attention option (attn.attn_dropout, per mille) */
    float resid_dropout;
} SmolConfig;

typedef struct { size_t attention, ffn, embedding, norms, total; } SmolParamCounts;

/* where one block's tensors live in the flat parameter buffer; SIZE_MAX = absent */
typedef struct {
    AttnConfig attn;
    size_t attn_pre, attn_post, ffn_pre, ffn_post; /* norm scales */
    size_t attn_w, gate, up, down;
} SmolLayer;

/* saved activations of one block. Only what the backward cannot cheaply redo is kept:
   the normed sublayer inputs are recomputed from the residual and the saved rstd,
   silu(gate)*up is recomputed from gu, and a sublayer's output is kept only when a
   post-norm needs it as its input (post, sandwich). */
typedef struct {
    void *h;                  /* residual after the attention branch */
    void *gu;                 /* fused gate|up projection [N, 2F] */
    void *attn_out, *ffn_out; /* sublayer outputs, post-norm strategies only */
    ops_real *a_in_rstd, *a_res_rstd, *f_in_rstd, *f_res_rstd;
    AttnActs attn;
} SmolActs;

typedef struct {
    SmolConfig cfg;
    Gpu *gpu;                /* NULL: CPU */
    int B, T;                /* batch shape the activations are sized for */
    int n_specs;
    AttnParamSpec *specs;
    size_t n_params;
    SmolLayer *layers;
    size_t wte, final_norm;
    ops_real *params, *grads;  /* fp32 master weights and gradients (device memory on the GPU) */
    void *wc;                /* compute weights: == params on the CPU, a bf16 copy on the GPU */
    /* activations */
    void *act_mem, *scratch_mem;
    ops_real *stat_mem;
    void **res;              /* residual stream entering block l, l = 0..n_layers */
    SmolActs *acts;
    void *xf;                /* final norm output */
    ops_real *xf_rstd, *losses;
    int *tokens, *targets;   /* backend copies of the current batch */
    void *norm_tmp, *sub_tmp, *act_tmp; /* [N,d], [N,d], [N,F]: recomputed, not saved */
    void *dres, *dtmp, *dtmp2, *dact, *dgu;
    void *attn_scratch_mem;  /* the largest layer's attention backward scratch */
    ops_real *host_losses;
    ops_real *correct, *host_correct; /* top-1 hits per token, allocated by the first smollm_eval_acc */
    /* dropout's state (resid_dropout, attn.attn_dropout): on from smollm_at_step (training) to
       the next evaluation; the mask of a forward is a hash of (seed, step, its forward's number
       within the step, layer, branch or position): the backward regenerates it, a resumed run
       draws the same masks. On the GPU {step, micro} also live on the device (drop_ctr), counted
       there by each forward, so that a CUDA graph of the step draws fresh masks at each replay */
    int dropout_on, dropout_step, dropout_micro;
    int dropout_any;         /* some dropout probability > 0 */
    int *drop_ctr;           /* GPU: device {step, micro} */
    /* the backward's progress, for a caller that acts on gradients before it ends (train.h's
       gradient buckets, reduced over ranks while the backward goes on): called when the
       gradients [lo, lo + n) of the parameters are final for this backward, highest addresses
       first: the final norm, layers n_layers - 1 down to 0, the embedding last (the tied LM
       head writes its gradient first, the embedding's own backward last). The ranges tile
       [0, n_params) once. On the GPU the kernels that produce them are queued on gpu->stream,
       not finished. A non-zero return ends the backward (smollm_backward_device returns -1).
       NULL: not called */
    int (*grads_ready)(void *ctx, size_t lo, size_t n);
    void *grads_ready_ctx;
} SmolModel;

SMOLLMDEF const char *smollm_norm_kind_name(SmolNormKind k);
SMOLLMDEF int smollm_norm_kind_parse(const char *s, SmolNormKind *out);
/* fill defaults and validate; message names the bad value; 0 on success */
SMOLLMDEF int smollm_resolve(SmolConfig *c, char *err, size_t errlen);
SMOLLMDEF AttnConfig smollm_layer_attn(const SmolConfig *c, int layer);
/* the checks smollm_init makes before it allocates anything, so that a caller can refuse a
   configuration early (ablate run checks every run of a study before the first one): the
   shape resolves (smollm_resolve, cfg resolved in place), B and T are in range, a dsa top-k
   fits the sparse kernels at T, and on a GPU every layer's mechanism has kernels */
SMOLLMDEF int smollm_check(SmolConfig *cfg, Gpu *gpu, int B, int T, char *err, size_t errlen);
/* allocate and initialize for batches of B x T tokens (gpu NULL: CPU); -1 with a message for
   sizes past SMOLLM_MAX_* and for parameter tables or weights that cannot be allocated */
SMOLLMDEF int smollm_init(SmolModel *m, const SmolConfig *cfg, Gpu *gpu, int B, int T, char *err, size_t errlen);
SMOLLMDEF void smollm_free(SmolModel *m);
SMOLLMDEF SmolParamCounts smollm_param_counts(const SmolModel *m);
/* KV-cache bytes per token summed over layers, bf16 */
SMOLLMDEF size_t smollm_kv_bytes_per_token(const SmolModel *m);
/* every layer's mechanism state for optimizer step `step` (attn_at_step: DSA's dense warm-up and
   k schedule); 1 when it changed anything (a captured CUDA graph is then stale) */
SMOLLMDEF int smollm_at_step(SmolModel *m, int step);
/* training FLOPs per token (forward + backward = 3x forward) at context T; the _config form
   needs no model (cfg resolved by smollm_resolve): what `ablate bench --dry-run` prints and
   tools/peers.py must match */
SMOLLMDEF double smollm_train_flops_per_token(const SmolModel *m, int T);
SMOLLMDEF double smollm_config_train_flops_per_token(const SmolConfig *cfg, int T);
/* refresh the compute copy after the master weights changed (no-op on the CPU) */
SMOLLMDEF void smollm_sync_weights(SmolModel *m);

/* tokens, targets: host arrays of B*T ids (target < 0 ignored).
   smollm_step: forward + backward, grads += dloss * d(sum of token losses); returns mean loss.
   smollm_eval: forward only; returns the sum of token losses (and *count the counted tokens). */
SMOLLMDEF float smollm_step(SmolModel *m, const int *tokens, const int *targets, float dloss);
SMOLLMDEF double smollm_eval(SmolModel *m, const int *tokens, const int *targets, int *count);
/* the same, and *hits = the number of counted tokens whose target got the largest logit
   (top-1 accuracy = hits / count: the metric of the synthetic tasks) */
SMOLLMDEF double smollm_eval_acc(SmolModel *m, const int *tokens, const int *targets, int *count, double *hits);
/* the same per row: row_loss[b] = the sum of row b's token losses, row_count[b] its counted
   tokens (either may be NULL); returns the batch's sum. On the GPU the per-token losses are
   copied to the host anyway, so per-row sums cost nothing more. NAN when host memory runs out
   (the forward's CPU attention temporaries, or the buffers that score accuracy) */
SMOLLMDEF double smollm_eval_rows(SmolModel *m, const int *tokens, const int *targets, double *row_loss, int *row_count,
                                  double *hits);
/* lower-level: forward to the final norm output m->xf; 0, or -1 when a CPU attention path runs
   out of host memory for its temporaries (attn_forward) */
SMOLLMDEF int smollm_forward(SmolModel *m, const int *tokens);
/* backward from the final norm output; needs smollm_forward first. NAN when a CPU attention
   path runs out of host memory (attn_backward): the gradients are incomplete then */
SMOLLMDEF float smollm_backward(SmolModel *m, const int *targets, float dloss);
/* lowest level, for CUDA graphs: copy a batch to the backend, then forward and backward on
   the backend's copy with no host synchronization in between, then read the mean loss */
SMOLLMDEF void smollm_set_batch(SmolModel *m, const int *tokens, const int *targets);
SMOLLMDEF int smollm_forward_device(SmolModel *m);             /* 0, or -1 as smollm_forward */
SMOLLMDEF int smollm_backward_device(SmolModel *m, float dloss); /* 0, or -1: out of host memory, or
                                                                   grads_ready said stop */
SMOLLMDEF float smollm_read_loss(SmolModel *m, const int *targets);

/* safetensors I/O of the fp32 master weights (Hugging Face names). smollm_save also writes the
   resolved SmolConfig and the sequence length into the header's __metadata__ (string values, as
   the format requires: "ablate.d_model": "576", ...; attn and norm by name) and the batch shape
   it was trained at, so a checkpoint rebuilds its model: smollm_read_config reads them back
   (*batch, *seq: that shape, 0 if absent; either may be NULL). A checkpoint without them is
   refused with a message.
   smollm_load trusts nothing: the header must be one JSON object of "__metadata__" (strings)
   and exactly the model's tensors, each {"dtype": "F32", "shape": its shape, "data_offsets":
   [b0, b1]} with b1 - b0 its size; the tensors' data must lie back to back from the start of
   the data, with no gap or overlap, and end at the end of the file; every weight must be
   finite (a finite weight of any size is legal: an edited value is caught by a checkpoint's
   MANIFEST, ckpt.h). The message names the file, the tensor and what was expected. The
   weights are changed only when everything passed. smollm_save writes path.tmp, fsyncs it
   and renames it. */
SMOLLMDEF int smollm_save(const SmolModel *m, const char *path, char *err, size_t errlen);
SMOLLMDEF int smollm_load(SmolModel *m, const char *path, char *err, size_t errlen);
/* what smollm_load checks, without changing the model's weights */
SMOLLMDEF int smollm_verify(SmolModel *m, const char *path, char *err, size_t errlen);
SMOLLMDEF int smollm_read_config(const char *path, SmolConfig *cfg, int *batch, int *seq, char *err, size_t errlen);

/* GENERATION (CPU reference). A SmolGen holds every layer's decode cache (attn.h's AttnCache)
   for B sequences of up to cap tokens and the one-token activations. smollm_decode_step feeds
   tokens [B] (one per sequence) at position g->pos and leaves the logits [B, vocab] in
   g->logits; smollm_prefill feeds a prompt tokens [B, T] through every block at once (each
   layer's attn_decode_prefill: the training forward for the dense room, the decode step per token
   for the others) and leaves the last position's logits. A prompt may come in several chunks. Both return -1 with
   a message (a layer's mechanism without a decode path, the cache full, out of memory). The
   model must be a CPU model (m->gpu NULL; a GPU model generates with SmolGpuGen below).
   smollm_sample: the next token from logits [V]: temperature 0 = greedy (the first largest
   logit); else softmax(logits / temperature), kept to the top_k most likely (0 = all), then to
   the smallest set whose probability reaches top_p (0 or 1 = all), drawn with *rng (splitmix64:
   seed it once per sequence; the same seed gives the same text). */
typedef struct {
    int B, cap, pos, n_layers;
    AttnCache *layers;          /* [n_layers] */
    size_t cache_bytes;         /* all layers' caches: the memory they really take */
    ops_real *x, *h, *nt, *sub, *gu, *act, *xf, *rstd, *logits; /* [B, d] ..., gu [B, 2F], logits [B, V] */
} SmolGen;
typedef struct { float temperature; int top_k; float top_p; } SmolSampler;
/* 0 when every layer of c decodes (on_gpu: attn_gpu_decode_supported, else attn_decode_supported);
   else -1, the first layer that does not in *layer (-1: c itself does not resolve) and why in err.
   What generation checks before it allocates; a caller that has only a configuration (a study
   that samples, generate choosing its device) asks it the same question. */
SMOLLMDEF int smollm_decode_check(const SmolConfig *c, int on_gpu, int *layer, char *err, size_t errlen);
SMOLLMDEF int smollm_gen_init(SmolGen *g, const SmolModel *m, int B, int cap, char *err, size_t errlen);
SMOLLMDEF int smollm_decode_step(SmolGen *g, const SmolModel *m, const int *tokens, char *err, size_t errlen);
SMOLLMDEF int smollm_prefill(SmolGen *g, const SmolModel *m, const int *tokens, int T, char *err, size_t errlen);
SMOLLMDEF void smollm_gen_free(SmolGen *g);
/* the decode cache bytes per sequence of every layer at T tokens (attn_decode_cache_bytes,
   ops_real elements); 0 when some layer cannot decode */
SMOLLMDEF size_t smollm_cache_bytes(const SmolModel *m, int T);
SMOLLMDEF int smollm_sample(const ops_real *logits, int V, const SmolSampler *s, uint64_t *rng);

/* GENERATION ON THE GPU (a model on the GPU, m->gpu). A SmolGpuGen holds every layer's device
   cache (attn.h's AttnGpuCache, all sharing one device position d_pos), the one-token
   activations (bf16), the logits [B, V] (fp32) and the tokens of the next step d_tok [B], all on
   the device. smollm_gpu_prefill runs the prompt tokens [B, T] through every block at once (each
   layer's attn_gpu_decode_prefill: the training kernels for the dense room), then the LM head
   and the sampler on the last position; smollm_gpu_decode_step feeds the tokens last sampled
   and samples the next: embedding, every layer, the final norm, the LM head (fp32 logits),
   the sampler and the position's increment, queued with no host synchronization in between
   and, after one eager warm-up step, captured once as a CUDA graph and replayed (eager = 1:
   never captured, for debugging). Only the tokens [B] come back (g->tokens, host). Sampling
   on the device: temperature 0 greedy (the first largest logit of g->logits: the same choice
   as smollm_sample on those logits); else temperature, top-k, top-p with a counter-based draw
   keyed by (seed, sequence, position) (attn/decode.cu.h: the same seed gives the same text on
   the GPU; it need not equal the CPU's draws). smollm_gpu_set_tokens overrides the tokens the
   next step feeds (forced decoding). A layer whose mechanism has no GPU decode kernels is
   refused by init with attn_gpu_decode_supported's message ("layer L: ..."). The prompt comes
   in one call (at position 0). The CPU-only build refuses init (no GPU).
   THE FUSED STEP (gpu->tuning.dec_fused = 1, ablate --tune dec_fused=1; default 0): init sets
   g->fused when B <= SMOLLM_FUSED_MAX_B and every layer is the dense room (mha, gqa, mqa, swa,
   the patterns; QK-norm or not) without post-norms; its decode steps then take
   attn/decode_fused.cu.h's kernels: per layer the q|k|v GEMV with the attention norm folded in,
   one attention kernel (RoPE, cache append, split-K, merge), the o GEMV with the residual add,
   the gate|up GEMV with the FFN norm and SwiGLU, the down GEMV with the residual add (5
   kernels instead of ~10), then the final norm folded into the LM head's GEMV. Otherwise
   (g->fused 0) the step of separate kernels. The prefill is the same either way.
   gpu->tuning.dec_pdl = 1 (--tune dec_pdl=1; Hopper) launches the fused kernels and the dense
   room's attention kernels by programmatic dependent launch (gpu.h's gpu_launch_dep), read at
   each launch and when the step's graph is captured: the same bits, 1.6% to 5% faster at batch 1
   on an H200 (docs/benchmarks.md), so it is off by default. */
/* THE PERSISTENT STEP (gpu->tuning.dec_fused = 2, ablate --tune dec_fused=2): init sets
   g->fused = 2 when B <= PZ_MAX_B (8), the model qualifies for the fused step, every layer has
   the same heads, kv heads and head dim (at most 64), and attn/decode_persist.cu.h's
   gpu_pz_check takes the shape; otherwise it falls back to the fused step where that one applies. The step is then
   one cooperative kernel (every layer and the LM head, grid barriers between the phases; its
   weight loads issued before each barrier) and a memset; greedy, the kernel also picks the
   token (dec_sample's rule, the first largest logit) and advances the position, else the
   sampler and the increment follow it as in the other steps. Same arithmetic as the fused step except the
   attention's order of summation (attn/decode_persist.cu.h's ARITHMETIC). */
#define SMOLLM_FUSED_MAX_B 32 /* the fused step's largest batch (its GEMV reads the weights once per 8 rows) */
typedef struct {
    int B, cap, pos, n_layers, eager, steps;
    int fused;                   /* the steps take the fused kernels (1, THE FUSED STEP above) or the
                                    persistent kernel (2, THE PERSISTENT STEP) */
    void *fqkv, *fatt;           /* the fused step's device scratch: q|k|v [B, (H+2KV) hd], att [B, H hd] bf16, */
    float *fpart;                /* the split-K partials, */
    int *fcnt;                   /* the chunk counters [B * KV] (zero between steps) */
    void *pz_layers;             /* the persistent step's layer table (device GpuPzLayer [n_layers]) */
    unsigned *pz_bar;            /* its grid barrier's counter (device) */
    unsigned long long *pz_trace; /* NULL, or the caller's device buffer of GPU_PZ_TRACE_LEN(n_layers)
                                    that each persistent step fills (tools/decode_trace; eager steps) */
    SmolSampler sampler;
    uint64_t seed;
    AttnGpuCache *layers;        /* [n_layers] */
    size_t cache_bytes;          /* all layers' device caches, as allocated */
    int *d_pos, *d_tok;          /* device: the position; the tokens the next step feeds [B] */
    void *x, *h, *nt, *sub, *gu, *act, *xf; /* device bf16 [B, d] ..., gu [B, 2F], act [B, F] */
    ops_real *rstd, *logits;     /* device fp32 [B], [B, V] */
    int *tokens;                 /* host [B]: the tokens last sampled */
    void *graph;                 /* the captured step (CUgraphExec), NULL until captured */
} SmolGpuGen;
SMOLLMDEF int smollm_gpu_gen_init(SmolGpuGen *g, const SmolModel *m, int B, int cap, const SmolSampler *s,
                                  uint64_t seed, int eager, char *err, size_t errlen);
SMOLLMDEF int smollm_gpu_prefill(SmolGpuGen *g, const SmolModel *m, const int *tokens, int T, char *err, size_t errlen);
SMOLLMDEF int smollm_gpu_decode_step(SmolGpuGen *g, const SmolModel *m, char *err, size_t errlen);
SMOLLMDEF int smollm_gpu_set_tokens(SmolGpuGen *g, const SmolModel *m, const int *tokens, char *err, size_t errlen);
SMOLLMDEF void smollm_gpu_gen_free(SmolGpuGen *g, const SmolModel *m);
/* the GPU decode caches' bytes per sequence of every layer at T tokens (attn_gpu_decode_cache_bytes,
   bf16); 0 when some layer has no GPU decode path */
SMOLLMDEF size_t smollm_gpu_cache_bytes(const SmolModel *m, int T);

#ifdef __cplusplus
}
#endif
#endif /* SMOLLM_H */

/* ======================================================================= */
#ifdef SMOLLM_IMPLEMENTATION
#ifndef SMOLLM_IMPLEMENTATION_DONE
#define SMOLLM_IMPLEMENTATION_DONE

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* OMP_: ops.h's kit (declared with its interface, so this implementation compiles without ops.h's) */

static const char *norm_names[] = {"default", "pre", "post", "sandwich"};

SMOLLMDEF const char *smollm_norm_kind_name(SmolNormKind k) { return (k >= 0 && k <= SMOLLM_NORM_SANDWICH) ? norm_names[k] : "?"; }

SMOLLMDEF int smollm_norm_kind_parse(const char *s, SmolNormKind *out) {
    for (int i = 1; i <= SMOLLM_NORM_SANDWICH; i++)
        if (strcmp(s, norm_names[i]) == 0) { *out = (SmolNormKind)i; return 0; }
    return -1;
}

/* the base config, then the schedule's item for this layer (validated by smollm_resolve) */
SMOLLMDEF AttnConfig smollm_layer_attn(const SmolConfig *c, int layer) {
    AttnConfig a = c->attn;
    a.d_model = c->d_model;
    a.n_heads = c->n_heads;
    a.rope_theta = c->rope_theta;
    a.norm_eps = c->norm_eps;
    if (c->attn_layers[0]) {
        char err[256];
        attn_schedule_apply(c->attn_layers, layer, &a, err, sizeof err);
    }
    return a;
}

SMOLLMDEF int smollm_resolve(SmolConfig *c, char *err, size_t errlen) {
    if (!(c->resid_dropout >= 0 && c->resid_dropout < 1)) {
        snprintf(err, errlen, "resid_dropout %g must be in [0, 1): the probability of dropping an element",
                 (double)c->resid_dropout);
        return -1;
    }
    if (c->vocab_size == 0) c->vocab_size = 49152;
    if (c->d_model == 0) c->d_model = 576;
    if (c->n_layers == 0) c->n_layers = 30;
    if (c->n_heads == 0) c->n_heads = 9;
    /* bounds before any product of them: 8 * d_model below must not overflow */
    if (c->vocab_size > SMOLLM_MAX_VOCAB) {
        snprintf(err, errlen, "vocab_size %d is over the limit %d (SMOLLM_MAX_VOCAB)", c->vocab_size, SMOLLM_MAX_VOCAB);
        return -1;
    }
    if (c->n_layers > SMOLLM_MAX_LAYERS) {
        snprintf(err, errlen, "layers %d is over the limit %d (SMOLLM_MAX_LAYERS)", c->n_layers, SMOLLM_MAX_LAYERS);
        return -1;
    }
    if (c->d_model < 1 || c->d_model > SMOLLM_MAX_WIDTH) {
        snprintf(err, errlen, "d_model %d must be in [1, %d]", c->d_model, SMOLLM_MAX_WIDTH);
        return -1;
    }
    if (c->ffn_dim < 0 || c->ffn_dim > SMOLLM_MAX_FFN) {
        snprintf(err, errlen, "ffn %d must be in [1, %d] (0: the default)", c->ffn_dim, SMOLLM_MAX_FFN);
        return -1;
    }
    if (!(c->rope_theta >= 0) || !(c->norm_eps >= 0) || !(c->init_std >= 0)) {
        snprintf(err, errlen, "rope_theta %g, norm_eps %g and init_std %g must be > 0 (0: the default)",
                 (double)c->rope_theta, (double)c->norm_eps, (double)c->init_std);
        return -1;
    }
    if (c->ffn_dim == 0) c->ffn_dim = ((8 * c->d_model / 3 + 63) / 64) * 64;
    if (c->rope_theta == 0) c->rope_theta = 100000.0f;
    if (c->norm_eps == 0) c->norm_eps = 1e-5f;
    if (c->init_std == 0) c->init_std = 0.02f;
    if (c->norm == SMOLLM_NORM_DEFAULT) c->norm = SMOLLM_NORM_PRE;
    if (c->vocab_size < 2) { snprintf(err, errlen, "vocab_size %d must be >= 2", c->vocab_size); return -1; }
    if (c->n_layers < 1) { snprintf(err, errlen, "layers %d must be >= 1", c->n_layers); return -1; }
    if (c->ffn_dim < 1) { snprintf(err, errlen, "ffn %d must be >= 1", c->ffn_dim); return -1; }
    if (c->norm < SMOLLM_NORM_PRE || c->norm > SMOLLM_NORM_SANDWICH) {
        snprintf(err, errlen, "unknown norm strategy %d (expected pre, post or sandwich)", (int)c->norm);
        return -1;
    }
    if (c->attn_layers[0]) { /* every layer resolves on its own; the base keeps its zeros */
        char e2[256];
        if (attn_schedule_length(c->attn_layers, err, errlen) < 0) return -1;
        for (int l = 0; l < c->n_layers; l++) {
            AttnConfig a = smollm_layer_attn(c, l);
            if (attn_resolve(&a, e2, sizeof e2)) {
                snprintf(err, errlen, "attn-layers '%s', layer %d (%s): %s", c->attn_layers, l, attn_kind_name(a.kind), e2);
                return -1;
            }
        }
        if (c->attn.kind == ATTN_DEFAULT) c->attn.kind = smollm_layer_attn(c, 0).kind;
        return 0;
    }
    AttnConfig a = smollm_layer_attn(c, 0);
    if (attn_resolve(&a, err, errlen)) return -1;
    c->attn = a; /* resolved: its defaults filled in */
    return 0;
}

/* ---- parameter layout ---- */

/* -1 when the table cannot grow (out of memory); smol_layout reports it */
static int smol_add_spec(SmolModel *m, int *cap, const char *name, size_t *off, int rows, int cols) {
    if (m->n_specs == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        AttnParamSpec *ns = realloc(m->specs, sizeof(AttnParamSpec) * nc);
        if (!ns) return -1;
        m->specs = ns;
        *cap = nc;
    }
    AttnParamSpec *p = &m->specs[m->n_specs++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = *off;
    p->rows = rows;
    p->cols = cols;
    p->numel = (size_t)rows * (cols ? cols : 1);
    p->is_norm = cols == 0;
    *off += p->numel;
    return 0;
}

static size_t smol_norm(SmolModel *m, int *cap, int layer, const char *which, size_t *off, int *oom) {
    char name[96];
    snprintf(name, sizeof name, "model.layers.%d.%s.weight", layer, which);
    size_t o = *off;
    *oom |= smol_add_spec(m, cap, name, off, m->cfg.d_model, 0);
    return o;
}

/* the parameter table and the layers; -1 when out of memory (smollm_init says so) */
static int smol_layout(SmolModel *m) {
    SmolConfig *c = &m->cfg;
    int cap = 0, d = c->d_model, F = c->ffn_dim, oom = 0;
    size_t off = 0, none = (size_t)-1;
    char name[96];
    m->n_specs = 0;
    m->wte = off;
    m->layers = calloc(c->n_layers, sizeof(SmolLayer));
    if (!m->layers || smol_add_spec(m, &cap, "model.embed_tokens.weight", &off, c->vocab_size, d)) return -1;
    m->specs[0].is_embedding = 1;
    for (int l = 0; l < c->n_layers && !oom; l++) {
        SmolLayer *L = &m->layers[l];
        L->attn = smollm_layer_attn(c, l);
        attn_resolve(&L->attn, name, sizeof name); /* validated in smollm_resolve */
        int pre = c->norm != SMOLLM_NORM_POST, post = c->norm != SMOLLM_NORM_PRE;
        L->attn_pre = L->attn_post = L->ffn_pre = L->ffn_post = none;
        if (pre) L->attn_pre = smol_norm(m, &cap, l, "input_layernorm", &off, &oom);
        L->attn_w = off;
        AttnParamSpec ap[ATTN_MAX_PARAMS];
        int na = attn_param_specs(&L->attn, ap);
        for (int i = 0; i < na && !oom; i++) {
            snprintf(name, sizeof name, "model.layers.%d.self_attn.%.40s", l, ap[i].name);
            oom |= smol_add_spec(m, &cap, name, &off, ap[i].rows, ap[i].cols);
            if (!oom) m->specs[m->n_specs - 1].is_output_proj = ap[i].is_output_proj;
        }
        if (c->norm == SMOLLM_NORM_PRE) L->ffn_pre = smol_norm(m, &cap, l, "post_attention_layernorm", &off, &oom);
        if (post) L->attn_post = smol_norm(m, &cap, l, "post_attention_layernorm", &off, &oom);
        if (c->norm == SMOLLM_NORM_SANDWICH) L->ffn_pre = smol_norm(m, &cap, l, "pre_feedforward_layernorm", &off, &oom);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
        L->gate = off;
        oom |= smol_add_spec(m, &cap, name, &off, F, d);
        snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
        L->up = off;
        oom |= smol_add_spec(m, &cap, name, &off, F, d);
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
        L->down = off;
        oom |= smol_add_spec(m, &cap, name, &off, d, F);
        if (!oom) m->specs[m->n_specs - 1].is_output_proj = 1;
        if (post) L->ffn_post = smol_norm(m, &cap, l, "post_feedforward_layernorm", &off, &oom);
    }
    m->final_norm = off;
    oom |= smol_add_spec(m, &cap, "model.norm.weight", &off, d, 0);
    m->n_params = off;
    return oom ? -1 : 0;
}

/* ---- seeded initialization ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in (0, 1): 53 random bits, never 0 (Box-Muller takes its log) */
static double rng_uniform(uint64_t *s) { return ((splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Each tensor is cut into chunks of 2^20 elements, each drawn from its own stream
   seeded by (seed, tensor, chunk): the result does not depend on the thread count,
   and the 135M-parameter init runs in parallel (it dominated the time to first step). */
#define SMOL_INIT_CHUNK ((size_t)1 << 20)

static void smol_init_weights(SmolModel *m, ops_real *host) {
    const SmolConfig *c = &m->cfg;
    size_t n_work = 0;
    for (int i = 0; i < m->n_specs; i++) n_work += (m->specs[i].numel + SMOL_INIT_CHUNK - 1) / SMOL_INIT_CHUNK;
    int *work_spec = malloc(sizeof(int) * n_work);
    size_t *work_chunk = malloc(sizeof(size_t) * n_work), w = 0;
    for (int i = 0; i < m->n_specs; i++)
        for (size_t ch = 0; ch * SMOL_INIT_CHUNK < m->specs[i].numel; ch++) { work_spec[w] = i; work_chunk[w++] = ch; }
    OMP_(omp parallel for schedule(dynamic))
    for (long wi = 0; wi < (long)n_work; wi++) {
        int i = work_spec[wi];
        const AttnParamSpec *p = &m->specs[i];
        size_t j0 = work_chunk[wi] * SMOL_INIT_CHUNK, j1 = j0 + SMOL_INIT_CHUNK < p->numel ? j0 + SMOL_INIT_CHUNK : p->numel;
        ops_real *wt = host + p->offset;
        if (p->is_norm) {
            for (size_t j = j0; j < j1; j++) wt[j] = 1;
            continue;
        }
        double std = c->init_std;
        if (p->is_output_proj) std /= sqrt(2.0 * c->n_layers);
        uint64_t s = c->seed * 0x100000001B3ull + (uint64_t)i * 0x9E3779B97F4A7C15ull + work_chunk[wi] * 0xD1B54A32D192ED03ull + 1;
        for (size_t j = j0; j < j1; j += 2) {
            double r = sqrt(-2 * log(rng_uniform(&s))), th = 6.283185307179586 * rng_uniform(&s);
            wt[j] = (ops_real)(std * r * cos(th));
            if (j + 1 < j1) wt[j + 1] = (ops_real)(std * r * sin(th));
        }
    }
    free(work_spec);
    free(work_chunk);
    for (int l = 0; l < c->n_layers; l++) /* e.g. GDN's decay and conv init */
        attn_param_init_special(&m->layers[l].attn, host + m->layers[l].attn_w, c->seed * 1000003ull + (unsigned)l);
}

/* ---- activations ---- */

/* bases and byte offsets: a measuring pass (bases NULL) counts bytes without forming pointers
   from NULL, which C leaves undefined (UBSan: "applying non-zero offset to null pointer") */
typedef struct { char *act_base, *stat_base; size_t es; int dry; size_t act, stat; } SmolCursor;

static void *take_act(SmolCursor *k, size_t n) {
    void *p = k->act_base ? k->act_base + k->act : NULL;
    k->act += n * k->es;
    return p;
}
static ops_real *take_stat(SmolCursor *k, size_t n) {
    ops_real *p = k->stat_base ? (ops_real *)(k->stat_base + k->stat) : NULL;
    k->stat += n * sizeof(ops_real);
    return p;
}

/* one pass lays out every activation; with base pointers 0 it only measures */
static void smol_bind_acts(SmolModel *m, SmolCursor *k) {
    const SmolConfig *c = &m->cfg;
    size_t N = (size_t)m->B * m->T, d = c->d_model, F = c->ffn_dim, none = (size_t)-1;
    for (int l = 0; l <= c->n_layers; l++) m->res[l] = take_act(k, N * d);
    for (int l = 0; l < c->n_layers; l++) {
        SmolLayer *L = &m->layers[l];
        SmolActs *a = &m->acts[l];
        memset(a, 0, sizeof *a);
        if (L->attn_pre != none) a->a_in_rstd = take_stat(k, N);
        size_t ae, se;
        attn_act_sizes(&L->attn, m->B, m->T, &ae, &se);
        void *am = take_act(k, ae);
        ops_real *sm = take_stat(k, se);
        if (!k->dry) attn_acts_bind(&L->attn, &a->attn, m->gpu, am, sm, m->B, m->T);
        if (L->attn_post != none) { a->attn_out = take_act(k, N * d); a->a_res_rstd = take_stat(k, N); }
        a->h = take_act(k, N * d);
        if (L->ffn_pre != none) a->f_in_rstd = take_stat(k, N);
        a->gu = take_act(k, N * 2 * F);
        if (L->ffn_post != none) { a->ffn_out = take_act(k, N * d); a->f_res_rstd = take_stat(k, N); }
    }
    m->xf = take_act(k, N * d);
    m->xf_rstd = take_stat(k, N);
    m->losses = take_stat(k, N);
}

/* -1 when the per-layer tables cannot be allocated (the buffers themselves: ops_alloc) */
static int smol_alloc_acts(SmolModel *m) {
    const SmolConfig *c = &m->cfg;
    size_t N = (size_t)m->B * m->T, d = c->d_model, F = c->ffn_dim, es = ops_act_size(m->gpu);
    m->res = calloc(c->n_layers + 1, sizeof(void *));
    m->acts = calloc(c->n_layers, sizeof(SmolActs));
    if (!m->res || !m->acts) return -1;
    SmolCursor dry = {NULL, NULL, es, 1, 0, 0};
    smol_bind_acts(m, &dry);
    m->act_mem = ops_alloc(m->gpu, (size_t)dry.act);
    m->stat_mem = ops_alloc(m->gpu, (size_t)dry.stat);
    if (!m->act_mem || !m->stat_mem) return -1;
    SmolCursor k = {m->act_mem, (char *)m->stat_mem, es, 0, 0, 0};
    smol_bind_acts(m, &k);
    /* scratch shared by all layers: recomputed forward values and backward gradients */
    size_t attn_s = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t s = attn_scratch_elems(&m->layers[l].attn, m->B, m->T);
        if (s > attn_s) attn_s = s;
    }
    size_t total = 5 * N * d + 4 * N * F + attn_s;
    m->scratch_mem = ops_alloc(m->gpu, total * es);
    if (!m->scratch_mem) return -1;
    SmolCursor sc = {m->scratch_mem, NULL, es, 0, 0, 0};
    m->norm_tmp = take_act(&sc, N * d);
    m->sub_tmp = take_act(&sc, N * d);
    m->dres = take_act(&sc, N * d);
    m->dtmp = take_act(&sc, N * d);
    m->dtmp2 = take_act(&sc, N * d);
    m->act_tmp = take_act(&sc, N * F);
    m->dact = take_act(&sc, N * F);
    m->dgu = take_act(&sc, N * 2 * F);
    m->attn_scratch_mem = take_act(&sc, attn_s); /* bound per layer in the backward: mechanisms differ */
    m->tokens = ops_alloc(m->gpu, N * sizeof(int));
    m->targets = ops_alloc(m->gpu, N * sizeof(int));
    m->host_losses = calloc(N, sizeof(ops_real));
    m->dropout_any = c->resid_dropout > 0;
    for (int l = 0; l < c->n_layers; l++) m->dropout_any |= m->layers[l].attn.attn_dropout > 0;
    if (m->gpu && m->dropout_any) m->drop_ctr = ops_alloc(m->gpu, 2 * sizeof(int));
    return m->tokens && m->targets && m->host_losses && (!m->gpu || !m->dropout_any || m->drop_ctr) ? 0 : -1;
}

SMOLLMDEF int smollm_check(SmolConfig *cfg, Gpu *gpu, int B, int T, char *err, size_t errlen) {
    if (smollm_resolve(cfg, err, errlen)) return -1;
    if (B < 1 || T < 1 || B > SMOLLM_MAX_BATCH || T > SMOLLM_MAX_SEQ || (long long)B * T > INT_MAX / 2) {
        snprintf(err, errlen, "batch %d and seq %d must be in [1, %d] and [1, %d] with batch x seq at most %d", B, T,
                 SMOLLM_MAX_BATCH, SMOLLM_MAX_SEQ, INT_MAX / 2);
        return -1;
    }
    for (int l = 0; l < cfg->n_layers; l++) { /* a top-k given as a share of the context meets T here */
        AttnConfig a = smollm_layer_attn(cfg, l);
        attn_resolve(&a, err, errlen);
        if (a.kind == ATTN_DSA && attn_topk(&a, T) > SPARSE_MAX_TOPK) {
            snprintf(err, errlen, "dsa layer %d: top-k %d (topk_pct %d of seq %d) is more than the %d keys per query "
                     "the sparse kernels take", l, attn_topk(&a, T), a.topk_pct, T, SPARSE_MAX_TOPK);
            return -1;
        }
    }
    if (gpu)
        for (int l = 0; l < cfg->n_layers; l++) {
            AttnConfig a = smollm_layer_attn(cfg, l);
            attn_resolve(&a, err, errlen);
            if (attn_gpu_supported(&a, err, errlen)) return -1;
        }
    return 0;
}

#ifndef ABLATE_NO_CUDA
/* the kernel modules every layer's attention will ask for (attn_gpu_kernels), each once, and the
   core ops', compiled in parallel (or loaded from the disk cache) before the first step instead
   of one by one as each is first called: a cold start then costs about the longest compile */
static void smol_prewarm(SmolModel *m) {
    enum { MAX_SPECS = 64 };
    GpuKernelSpec *all = malloc(sizeof *all * MAX_SPECS), one[16];
    if (!all) return; /* only a head start: gpu_kernel compiles on first use anyway */
    int n = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        int k = attn_gpu_kernels(m->gpu, &m->layers[l].attn, m->B, m->T, one, 16);
        for (int i = 0; i < k && i < 16; i++) {
            int seen = 0;
            for (int j = 0; j < n && !seen; j++)
                seen = all[j].source == one[i].source && !strcmp(all[j].options, one[i].options);
            if (!seen && n < MAX_SPECS) all[n++] = one[i];
        }
    }
    gpu_kernel_prewarm(m->gpu, all, n);
    free(all);
}
#endif

SMOLLMDEF int smollm_init(SmolModel *m, const SmolConfig *cfg, Gpu *gpu, int B, int T, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (smollm_check(&m->cfg, gpu, B, T, err, errlen)) return -1;
    m->gpu = gpu;
    m->B = B;
    m->T = T;
    if (smol_layout(m)) {
        snprintf(err, errlen, "out of memory for the parameter table of %d layers", m->cfg.n_layers);
        smollm_free(m);
        return -1;
    }
    ops_real *host = m->n_params < SIZE_MAX / 4 / sizeof(ops_real) ? calloc(m->n_params, sizeof(ops_real)) : NULL;
    if (!host) {
        snprintf(err, errlen, "out of memory for %zu parameters (%.1f GB)", m->n_params,
                 (double)m->n_params * sizeof(ops_real) / 1e9);
        smollm_free(m);
        return -1;
    }
    smol_init_weights(m, host);
    if (gpu) {
        m->params = ops_alloc(gpu, m->n_params * sizeof(ops_real));
        if (m->params) ops_to_device(gpu, m->params, host, m->n_params * sizeof(ops_real));
        free(host);
        m->wc = ops_alloc(gpu, m->n_params * ops_act_size(gpu));
    } else {
        m->params = host;
        m->wc = host;
    }
    m->grads = ops_alloc(gpu, m->n_params * sizeof(ops_real));
    if (!m->params || !m->wc || !m->grads) {
        snprintf(err, errlen, "out of memory for the weights and gradients of %zu parameters (%.1f GB)", m->n_params,
                 (double)m->n_params * 2 * sizeof(ops_real) / 1e9);
        smollm_free(m);
        return -1;
    }
    smollm_sync_weights(m);
    if (smol_alloc_acts(m)) {
        snprintf(err, errlen, "out of memory for the activations of %d layers, batch %d x seq %d", m->cfg.n_layers, B, T);
        smollm_free(m);
        return -1;
    }
#ifndef ABLATE_NO_CUDA
    if (gpu) smol_prewarm(m);
#endif
    return 0;
}

SMOLLMDEF void smollm_free(SmolModel *m) {
    Gpu *g = m->gpu;
    if (m->wc != m->params) ops_free(g, m->wc);
    ops_free(g, m->params);
    ops_free(g, m->grads);
    ops_free(g, m->act_mem);
    ops_free(g, m->stat_mem);
    ops_free(g, m->scratch_mem);
    ops_free(g, m->tokens);
    ops_free(g, m->targets);
    if (m->drop_ctr) ops_free(g, m->drop_ctr);
    free(m->host_losses);
    if (m->correct) ops_free(g, m->correct);
    free(m->host_correct);
    free(m->res);
    free(m->acts);
    free(m->layers);
    free(m->specs);
    memset(m, 0, sizeof *m);
}

SMOLLMDEF void smollm_sync_weights(SmolModel *m) {
    if (m->wc != m->params) ops_weights_to_compute(m->gpu, m->wc, m->params, m->n_params);
}

SMOLLMDEF SmolParamCounts smollm_param_counts(const SmolModel *m) {
    SmolParamCounts pc = {0};
    for (int i = 0; i < m->n_specs; i++) {
        const AttnParamSpec *p = &m->specs[i];
        if (p->is_embedding) pc.embedding += p->numel;
        else if (p->is_norm && !strstr(p->name, "self_attn")) pc.norms += p->numel;
        else if (strstr(p->name, "self_attn")) pc.attention += p->numel;
        else pc.ffn += p->numel;
        pc.total += p->numel;
    }
    return pc;
}

SMOLLMDEF int smollm_at_step(SmolModel *m, int step) {
    m->dropout_on = 1;
    m->dropout_step = step;
    m->dropout_micro = 0;
    if (m->drop_ctr) { /* queued before the step's forwards (a graph replay reads it) */
        int ctr[2] = {step, 0};
        ops_to_device(m->gpu, m->drop_ctr, ctr, sizeof ctr);
    }
    int changed = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) changed |= attn_at_step(&m->layers[l].attn, &m->acts[l].attn, step, m->T);
    return changed;
}

SMOLLMDEF size_t smollm_kv_bytes_per_token(const SmolModel *m) {
    size_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) b += attn_kv_bytes_per_token(&m->layers[l].attn, 2);
    return b;
}

SMOLLMDEF double smollm_config_train_flops_per_token(const SmolConfig *c, int T) {
    double f = 2.0 * c->d_model * c->vocab_size; /* LM head */
    for (int l = 0; l < c->n_layers; l++) {
        AttnConfig a = smollm_layer_attn(c, l);
        char err[256];
        attn_resolve(&a, err, sizeof err); /* as smollm_init does: validated by smollm_resolve */
        f += attn_flops_per_token(&a, T) + 2.0 * 3 * c->d_model * c->ffn_dim;
    }
    return 3 * f;
}

SMOLLMDEF double smollm_train_flops_per_token(const SmolModel *m, int T) { return smollm_config_train_flops_per_token(&m->cfg, T); }

/* ---- forward / backward ---- */

static const void *wptr(const SmolModel *m, size_t off) { return (const char *)m->wc + off * ops_act_size(m->gpu); }

SMOLLMDEF void smollm_set_batch(SmolModel *m, const int *tokens, const int *targets) {
    size_t N = (size_t)m->B * m->T;
    if (tokens) ops_to_device(m->gpu, m->tokens, tokens, sizeof(int) * N);
    if (targets) ops_to_device(m->gpu, m->targets, targets, sizeof(int) * N);
}

SMOLLMDEF int smollm_forward(SmolModel *m, const int *tokens) {
    smollm_set_batch(m, tokens, NULL);
    return smollm_forward_device(m);
}

/* the current forward's dropout stream of layer l (its masks: ops.h, op_resid_dropout and
   op_attention_dropout_*) */
static OpsDropout smol_drop_stream(const SmolModel *m, int l) {
    OpsDropout d = {0};
    d.seed = m->cfg.seed;
    d.layer = l;
    d.step = m->dropout_step;
    d.micro = m->dropout_micro;
    d.d_ctr = m->drop_ctr;
    return d;
}
/* residual dropout: x [N*d] of branch (0 attention, 1 FFN) of layer l times the mask of the
   current forward, scaled by 1 / (1 - p) (the backward: the same on the gradient) */
static void smol_dropout(const SmolModel *m, void *x, int l, int branch) {
    OpsDropout d = smol_drop_stream(m, l);
    op_resid_dropout(m->gpu, x, (size_t)m->B * m->T * m->cfg.d_model, m->cfg.resid_dropout, &d, branch);
}

SMOLLMDEF int smollm_forward_device(SmolModel *m) {
    const SmolConfig *c = &m->cfg;
    Gpu *g = m->gpu;
    int N = m->B * m->T, d = c->d_model, F = c->ffn_dim;
    float eps = c->norm_eps;
    size_t none = (size_t)-1;
    int drop = m->dropout_on && c->resid_dropout > 0;
    if (m->dropout_on && m->dropout_any) { /* this forward's masks (its backward reads the same number) */
        m->dropout_micro++;
        if (m->drop_ctr) op_dropout_next(g, m->drop_ctr);
    }
    op_embed_forward(g, m->res[0], m->tokens, wptr(m, m->wte), N, d);
    /* every residual add is fused with the norm that reads its result (the next
       sublayer's pre-norm or the final norm); only the first block's input norm
       stands alone */
    if (m->layers[0].attn_pre != none)
        op_rmsnorm_forward(g, m->norm_tmp, m->acts[0].a_in_rstd, m->res[0], wptr(m, m->layers[0].attn_pre), N, d, eps);
    for (int l = 0; l < c->n_layers; l++) {
        SmolLayer *L = &m->layers[l];
        SmolActs *a = &m->acts[l];
        const void *x = m->res[l];
        /* attention branch: h = x + [N](Attn([N](x))) */
        const void *ain = L->attn_pre != none ? m->norm_tmp : x;
        void *aout = L->attn_post != none ? a->attn_out : m->sub_tmp;
        a->attn.drop_on = m->dropout_on && L->attn.attn_dropout > 0; /* attn_dropout in training only */
        a->attn.drop = smol_drop_stream(m, l);
        if (attn_forward(g, &L->attn, wptr(m, L->attn_w), &a->attn, ain, aout, m->B, m->T)) return -1;
        if (L->attn_post != none)
            op_rmsnorm_forward(g, m->sub_tmp, a->a_res_rstd, aout, wptr(m, L->attn_post), N, d, eps);
        if (drop) smol_dropout(m, m->sub_tmp, l, 0);
        const void *fin = a->h;
        if (L->ffn_pre != none) {
            op_add_rmsnorm_forward(g, a->h, m->norm_tmp, a->f_in_rstd, x, m->sub_tmp, wptr(m, L->ffn_pre), N, d, eps);
            fin = m->norm_tmp;
        } else {
            op_add(g, a->h, x, m->sub_tmp, (size_t)N * d);
        }
        /* FFN branch: y = h + [N](down(silu(gate) * up)), gate|up as one GEMM */
        op_matmul_forward(g, a->gu, fin, wptr(m, L->gate), N, d, 2 * F);
        op_swiglu_forward(g, m->act_tmp, a->gu, N, F);
        void *fout = L->ffn_post != none ? a->ffn_out : m->sub_tmp;
        op_matmul_forward(g, fout, m->act_tmp, wptr(m, L->down), N, F, d);
        if (L->ffn_post != none)
            op_rmsnorm_forward(g, m->sub_tmp, a->f_res_rstd, fout, wptr(m, L->ffn_post), N, d, eps);
        if (drop) smol_dropout(m, m->sub_tmp, l, 1);
        if (l + 1 == c->n_layers)
            op_add_rmsnorm_forward(g, m->res[l + 1], m->xf, m->xf_rstd, a->h, m->sub_tmp, wptr(m, m->final_norm),
                                   N, d, eps);
        else if (m->layers[l + 1].attn_pre != none)
            op_add_rmsnorm_forward(g, m->res[l + 1], m->norm_tmp, m->acts[l + 1].a_in_rstd, a->h, m->sub_tmp,
                                   wptr(m, m->layers[l + 1].attn_pre), N, d, eps);
        else
            op_add(g, m->res[l + 1], a->h, m->sub_tmp, (size_t)N * d);
    }
    return 0;
}

SMOLLMDEF float smollm_backward(SmolModel *m, const int *targets, float dloss) {
    smollm_set_batch(m, NULL, targets);
    if (smollm_backward_device(m, dloss)) return NAN;
    return smollm_read_loss(m, targets);
}

SMOLLMDEF float smollm_read_loss(SmolModel *m, const int *targets) {
    int N = m->B * m->T;
    ops_to_host(m->gpu, m->host_losses, m->losses, sizeof(ops_real) * N);
    double sum = 0;
    int count = 0;
    for (int n = 0; n < N; n++)
        if (targets[n] >= 0) { sum += m->host_losses[n]; count++; }
    return count ? (float)(sum / count) : 0.0f;
}

/* where layer l's parameters start (its input norm, else its attention's weights): layer l
   holds [smol_layer_lo(l), smol_layer_lo(l + 1)), the last one up to the final norm */
static size_t smol_layer_lo(const SmolModel *m, int l) {
    const SmolLayer *L = &m->layers[l];
    return L->attn_pre != (size_t)-1 ? L->attn_pre : L->attn_w;
}
/* gradients [lo, hi) are final: tell grads_ready, if set */
static int smol_grads_ready(SmolModel *m, size_t lo, size_t hi) {
    return m->grads_ready && hi > lo ? m->grads_ready(m->grads_ready_ctx, lo, hi - lo) : 0;
}

/* d(residual) flows through m->dres; each sublayer adds its branch's gradient */
SMOLLMDEF int smollm_backward_device(SmolModel *m, float dloss) {
    const SmolConfig *c = &m->cfg;
    Gpu *g = m->gpu;
    int N = m->B * m->T, d = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    float eps = c->norm_eps;
    size_t none = (size_t)-1;
    ops_real *G = m->grads;
    int drop = m->dropout_on && c->resid_dropout > 0;
    op_xent_backward(g, m->losses, m->dtmp, G + m->wte, m->xf, wptr(m, m->wte), m->targets, N, d, V, dloss);
    op_rmsnorm_backward(g, m->dres, G + m->final_norm, m->dtmp, m->res[c->n_layers],
                        wptr(m, m->final_norm), m->xf_rstd, N, d, 0);
    if (smol_grads_ready(m, m->final_norm, m->n_params)) return -1;
    for (int l = c->n_layers - 1; l >= 0; l--) {
        SmolLayer *L = &m->layers[l];
        SmolActs *a = &m->acts[l];
        /* FFN branch */
        const void *dffn = m->dres, *fin = a->h, *x = m->res[l], *ain = x;
        if (drop) { /* the branch's gradient through the forward's mask */
            ops_copy(g, m->dtmp2, m->dres, ops_act_size(g) * (size_t)N * d);
            smol_dropout(m, m->dtmp2, l, 1);
            dffn = m->dtmp2;
        }
        if (L->ffn_post != none) {
            op_rmsnorm_backward(g, m->dtmp, G + L->ffn_post, dffn, a->ffn_out, wptr(m, L->ffn_post),
                                a->f_res_rstd, N, d, 0);
            dffn = m->dtmp;
        }
        if (L->ffn_pre != none) { /* recompute the normed input */
            op_rmsnorm_forward(g, m->norm_tmp, a->f_in_rstd, a->h, wptr(m, L->ffn_pre), N, d, eps);
            fin = m->norm_tmp;
        }
        /* d act first; the SwiGLU backward then recomputes act for the down weight gradient */
        op_matmul_backward(g, m->dact, NULL, dffn, NULL, wptr(m, L->down), N, F, d, 0);
        op_swiglu_backward(g, m->dgu, m->act_tmp, m->dact, a->gu, N, F);
        op_matmul_backward(g, NULL, G + L->down, dffn, m->act_tmp, wptr(m, L->down), N, F, d, 0);
        op_matmul_backward(g, m->dtmp2, G + L->gate, m->dgu, fin, wptr(m, L->gate), N, d, 2 * F, 0);
        if (L->ffn_pre != none)
            op_rmsnorm_backward(g, m->dres, G + L->ffn_pre, m->dtmp2, a->h, wptr(m, L->ffn_pre),
                                a->f_in_rstd, N, d, 1);
        else
            op_add(g, m->dres, m->dres, m->dtmp2, (size_t)N * d);
        /* attention branch */
        const void *dattn = m->dres;
        if (drop) {
            ops_copy(g, m->dtmp, m->dres, ops_act_size(g) * (size_t)N * d);
            smol_dropout(m, m->dtmp, l, 0);
            dattn = m->dtmp;
        }
        if (L->attn_post != none) {
            /* (sub_tmp is free in the backward; dtmp2 receives the attention's dx below) */
            op_rmsnorm_backward(g, drop ? m->sub_tmp : m->dtmp, G + L->attn_post, dattn, a->attn_out,
                                wptr(m, L->attn_post), a->a_res_rstd, N, d, 0);
            dattn = drop ? m->sub_tmp : m->dtmp;
        }
        if (L->attn_pre != none) { /* recompute the normed input */
            op_rmsnorm_forward(g, m->norm_tmp, a->a_in_rstd, x, wptr(m, L->attn_pre), N, d, eps);
            ain = m->norm_tmp;
        }
        AttnScratch as;
        attn_scratch_bind(&L->attn, &as, g, m->attn_scratch_mem, m->B, m->T);
        if (attn_backward(g, &L->attn, wptr(m, L->attn_w), G + L->attn_w, &a->attn, &as, ain, dattn, m->dtmp2, m->B,
                          m->T))
            return -1;
        if (L->attn_pre != none)
            op_rmsnorm_backward(g, m->dres, G + L->attn_pre, m->dtmp2, x, wptr(m, L->attn_pre),
                                a->a_in_rstd, N, d, 1);
        else
            op_add(g, m->dres, m->dres, m->dtmp2, (size_t)N * d);
        if (smol_grads_ready(m, smol_layer_lo(m, l), l + 1 < c->n_layers ? smol_layer_lo(m, l + 1) : m->final_norm))
            return -1;
    }
    op_embed_backward(g, G + m->wte, m->dres, m->tokens, N, d);
    return smol_grads_ready(m, m->wte, smol_layer_lo(m, 0)) ? -1 : 0;
}

SMOLLMDEF float smollm_step(SmolModel *m, const int *tokens, const int *targets, float dloss) {
    if (smollm_forward(m, tokens)) return NAN;
    return smollm_backward(m, targets, dloss);
}

SMOLLMDEF double smollm_eval(SmolModel *m, const int *tokens, const int *targets, int *count) {
    return smollm_eval_acc(m, tokens, targets, count, NULL);
}

SMOLLMDEF double smollm_eval_acc(SmolModel *m, const int *tokens, const int *targets, int *count, double *hits) {
    int cnt = 0;
    double sum = smollm_eval_rows(m, tokens, targets, NULL, NULL, hits);
    for (int n = 0; n < m->B * m->T; n++) cnt += targets[n] >= 0;
    if (count) *count = cnt;
    return sum;
}

SMOLLMDEF double smollm_eval_rows(SmolModel *m, const int *tokens, const int *targets, double *row_loss, int *row_count,
                                  double *hits) {
    int N = m->B * m->T;
    m->dropout_on = 0; /* evaluations run without dropout, until the next training step */
    if (smollm_forward(m, tokens)) return NAN; /* out of host memory: no evaluation */
    ops_to_device(m->gpu, m->targets, targets, sizeof(int) * N);
    if (hits && !m->correct) { /* only evaluations that score accuracy pay for it */
        m->correct = ops_alloc(m->gpu, sizeof(ops_real) * N);
        m->host_correct = calloc(N, sizeof(ops_real));
        if (!m->correct || !m->host_correct) { /* out of host memory: no evaluation, and none half set up */
            if (m->correct) ops_free(m->gpu, m->correct);
            free(m->host_correct);
            m->correct = NULL;
            m->host_correct = NULL;
            return NAN;
        }
    }
    op_xent_forward(m->gpu, m->losses, hits ? m->correct : NULL, m->xf, wptr(m, m->wte), m->targets, N,
                    m->cfg.d_model, m->cfg.vocab_size);
    ops_to_host(m->gpu, m->host_losses, m->losses, sizeof(ops_real) * N);
    if (hits) ops_to_host(m->gpu, m->host_correct, m->correct, sizeof(ops_real) * N);
    double sum = 0, hit = 0;
    for (int b = 0; b < m->B; b++) {
        double rs = 0;
        int rc = 0;
        for (int n = b * m->T; n < (b + 1) * m->T; n++)
            if (targets[n] >= 0) { /* the loss ops write 0 at ignored targets; they are not counted either */
                rs += m->host_losses[n];
                if (hits) hit += m->host_correct[n];
                rc++;
            }
        sum += rs;
        if (row_loss) row_loss[b] = rs;
        if (row_count) row_count[b] = rc;
    }
    if (hits) *hits = hit;
    return sum;
}

/* ---- safetensors: u64 header length, JSON header, raw little-endian F32 data ---- */

/* every integer field of SmolConfig but the attention options, as it is named in the checkpoint's
   metadata ("ablate.d_model"); the attention options follow attn.h's option table
   ("ablate.kv_heads", "ablate.latent_dim", ...). Version 1 named every attention option by its
   AttnConfig field ("ablate.n_kv_heads", "ablate.global_tokens") and is still read. A field added
   to SmolConfig must be added here (or below, for the other types), else checkpoints lose it */
#define SMOL_META_INTS(X) X(vocab_size) X(d_model) X(n_layers) X(n_heads) X(ffn_dim)
#define SMOL_META_FLOATS(X) X(rope_theta) X(norm_eps) X(init_std)
#define SMOL_META_VERSION 2

/* the metadata object's members after "format" (strings only, as safetensors requires) */
static size_t smol_meta_write(const SmolModel *m, char *out, size_t cap) {
    const SmolConfig *c = &m->cfg;
    size_t n = 0;
#define SMOL_PUT_(...) n += (size_t)snprintf(out && n < cap ? out + n : NULL, out && n < cap ? cap - n : 0, __VA_ARGS__)
    SMOL_PUT_(",\"ablate.version\":\"%d\",\"ablate.batch\":\"%d\",\"ablate.seq\":\"%d\"", SMOL_META_VERSION, m->B,
              m->T);
#define SMOL_INT_(f) SMOL_PUT_(",\"ablate." #f "\":\"%d\"", c->f);
    SMOL_META_INTS(SMOL_INT_)
    SMOL_PUT_(",\"ablate.head_dim\":\"%d\"", c->attn.head_dim);
    for (int i = 0; i < attn_option_count(); i++) {
        const AttnOption *o = attn_option_at(i);
        SMOL_PUT_(",\"ablate.%s\":\"%d\"", o->name, attn_option_get(&c->attn, o));
    }
#define SMOL_FLOAT_(f) SMOL_PUT_(",\"ablate." #f "\":\"%.9g\"", (double)c->f);
    SMOL_META_FLOATS(SMOL_FLOAT_)
    SMOL_PUT_(",\"ablate.resid_dropout\":\"%.9g\"", (double)c->resid_dropout);
    SMOL_PUT_(",\"ablate.norm\":\"%s\",\"ablate.attn\":\"%s\",\"ablate.seed\":\"%llu\"", smollm_norm_kind_name(c->norm),
              attn_kind_name(c->attn.kind), (unsigned long long)c->seed);
    SMOL_PUT_(",\"ablate.attn_layers\":\""); /* its grammar has no quote or backslash; escaped anyway */
    for (const char *p = c->attn_layers; *p; p++) SMOL_PUT_(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    SMOL_PUT_("\"");
#undef SMOL_INT_
#undef SMOL_FLOAT_
#undef SMOL_PUT_
    return n;
}

/* the string value of "key" in the header's __metadata__ object, or -1 */
static int smol_meta_get(const char *hdr, const char *key, char *out, size_t cap) {
    const char *md = strstr(hdr, "\"__metadata__\"");
    const char *end = md ? strchr(md, '}') : NULL; /* the object holds strings only: no nested braces */
    char k[96];
    snprintf(k, sizeof k, "\"%s\"", key);
    const char *p = md ? strstr(md, k) : NULL;
    if (!p || p > end) return -1;
    p += strlen(k);
    while (*p == ' ' || *p == ':') p++;
    if (*p++ != '"') return -1;
    size_t n = 0;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        if (n + 1 < cap) out[n++] = *p;
    }
    out[n] = 0;
    return *p == '"' ? 0 : -1;
}

static char *smol_read_header(const char *path, FILE **fp, uint64_t *hl_out, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open checkpoint %s", path); return NULL; }
    uint64_t hl = 0;
    struct stat st = {0}; /* read in the message even when fread or fstat failed */
    if (fread(&hl, 8, 1, f) != 1 || fstat(fileno(f), &st) || hl > (1u << 30) || hl + 8 > (uint64_t)st.st_size) {
        fclose(f);
        snprintf(err, errlen, "%s: not a safetensors file (header length %llu, expected at most %llu, the bytes "
                 "after the length field)", path, (unsigned long long)hl,
                 (unsigned long long)(st.st_size > 8 ? st.st_size - 8 : 0));
        return NULL;
    }
    char *hdr = malloc(hl + 1);
    if (!hdr || fread(hdr, 1, hl, f) != hl) {
        free(hdr);
        fclose(f);
        snprintf(err, errlen, "%s: truncated header", path);
        return NULL;
    }
    hdr[hl] = 0;
    if (fp) *fp = f;
    else fclose(f);
    if (hl_out) *hl_out = hl;
    return hdr;
}

SMOLLMDEF int smollm_read_config(const char *path, SmolConfig *cfg, int *batch, int *seq, char *err, size_t errlen) {
    char *hdr = smol_read_header(path, NULL, NULL, err, errlen), v[300];
    if (!hdr) return -1;
    SmolConfig c;
    memset(&c, 0, sizeof c);
    int bad = 0;
    if (smol_meta_get(hdr, "ablate.version", v, sizeof v)) {
        snprintf(err, errlen, "%s carries no model configuration in its metadata (written by another tool, or by "
                 "ablate before checkpoints recorded it): cannot rebuild its model", path);
        free(hdr);
        return -1;
    }
    int version = atoi(v);
    if (version != 1 && version != SMOL_META_VERSION) {
        snprintf(err, errlen, "%s: configuration metadata version %s (this build reads 1 and %d)", path, v,
                 SMOL_META_VERSION);
        free(hdr);
        return -1;
    }
    const char *missing = NULL;
#define SMOL_GET_(f) if (!missing && smol_meta_get(hdr, "ablate." #f, v, sizeof v)) missing = #f;
#define SMOL_INT_(f) SMOL_GET_(f) else if (!missing) c.f = atoi(v);
    SMOL_META_INTS(SMOL_INT_)
#define SMOL_FLOAT_(f) SMOL_GET_(f) else if (!missing) c.f = strtof(v, NULL);
    SMOL_META_FLOATS(SMOL_FLOAT_)
    SMOL_GET_(norm) else if (!missing) bad |= smollm_norm_kind_parse(v, &c.norm) ? 1 : 0;
    SMOL_GET_(attn) else if (!missing) bad |= attn_kind_parse(v, &c.attn.kind) ? 2 : 0;
    if (!missing && smol_meta_get(hdr, "ablate.head_dim", v, sizeof v)) missing = "head_dim";
    else if (!missing) c.attn.head_dim = atoi(v);
    for (int i = 0; i < attn_option_count() && !missing; i++) { /* an option added later is absent: 0 */
        const AttnOption *o = attn_option_at(i);
        char key[96];
        snprintf(key, sizeof key, "ablate.%s", version == 1 ? o->field : o->name);
        if (!smol_meta_get(hdr, key, v, sizeof v)) *attn_option_field(&c.attn, o) = atoi(v);
    }
    SMOL_GET_(seed) else if (!missing) c.seed = strtoull(v, NULL, 10);
    if (!smol_meta_get(hdr, "ablate.resid_dropout", v, sizeof v)) c.resid_dropout = strtof(v, NULL); /* absent: 0 */
    SMOL_GET_(attn_layers) else if (!missing) snprintf(c.attn_layers, sizeof c.attn_layers, "%.255s", v);
#undef SMOL_INT_
#undef SMOL_FLOAT_
#undef SMOL_GET_
    int sq = smol_meta_get(hdr, "ablate.seq", v, sizeof v) ? 0 : atoi(v);
    int bt = smol_meta_get(hdr, "ablate.batch", v, sizeof v) ? 0 : atoi(v);
    free(hdr);
    if (missing) { snprintf(err, errlen, "%s: configuration metadata lacks ablate.%s", path, missing); return -1; }
    if (bad) { snprintf(err, errlen, "%s: unknown %s in the configuration metadata", path, bad & 1 ? "norm" : "attn"); return -1; }
    SmolConfig r = c;
    char e2[256];
    if (smollm_resolve(&r, e2, sizeof e2)) { snprintf(err, errlen, "%s: its configuration does not resolve: %s", path, e2); return -1; }
    *cfg = c;
    if (seq) *seq = sq;
    if (batch) *batch = bt;
    return 0;
}

SMOLLMDEF int smollm_save(const SmolModel *m, const char *path, char *err, size_t errlen) {
    size_t meta = smol_meta_write(m, NULL, 0);
    size_t cap = 256 + meta + (size_t)m->n_specs * 200, len = 0;
    char *hdr = malloc(cap);
    if (!hdr) { snprintf(err, errlen, "cannot write checkpoint %s: out of memory", path); return -1; }
    len += snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"");
    len += smol_meta_write(m, hdr + len, cap - len);
    len += snprintf(hdr + len, cap - len, "}");
    for (int i = 0; i < m->n_specs; i++) {
        const AttnParamSpec *p = &m->specs[i];
        size_t b0 = p->offset * 4, b1 = (p->offset + p->numel) * 4;
        if (p->cols)
            len += snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}",
                            p->name, p->rows, p->cols, b0, b1);
        else
            len += snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
                            p->name, p->rows, b0, b1);
    }
    len += snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' '; /* the format pads the header to 8 bytes */
    float *w = malloc(m->n_params * sizeof(float));
    ops_real *host = malloc(m->n_params * sizeof(ops_real));
    ops_to_host(m->gpu, host, m->params, m->n_params * sizeof(ops_real));
    for (size_t i = 0; i < m->n_params; i++) w[i] = (float)host[i];
    free(host);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f != NULL;
    if (ok) {
        uint64_t hl = len;
        ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(hdr, 1, len, f) == len &&
             fwrite(w, sizeof(float), m->n_params, f) == m->n_params;
        ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0; /* on disk before the rename that publishes it */
        ok = (fclose(f) == 0) && ok;
    }
    free(hdr);
    free(w);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write checkpoint %s", path);
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- the strict reading of a safetensors header: a JSON object whose members are
   "__metadata__" (an object of strings) and tensors {"dtype": S, "shape": [N...],
   "data_offsets": [B0, B1]}; anything else is refused, so that what is loaded is what the
   header says and nothing else ---- */
typedef struct {
    char name[96], dtype[16];
    int ndim;
    uint64_t shape[8], b0, b1;
} SmolTensorHdr;

typedef struct {
    const char *s;
    size_t n, i;
    const char *path;
    char *err;
    size_t errlen;
} SmolJson;

static int smol_json_fail(SmolJson *j, const char *want) {
    snprintf(j->err, j->errlen, "%s: safetensors header: expected %s at byte %zu of %zu", j->path, want, j->i, j->n);
    return -1;
}
static void smol_json_ws(SmolJson *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\n' || j->s[j->i] == '\r' || j->s[j->i] == '\t')) j->i++;
}
static int smol_json_ch(SmolJson *j, char c) {
    smol_json_ws(j);
    if (j->i < j->n && j->s[j->i] == c) { j->i++; return 0; }
    char w[8];
    snprintf(w, sizeof w, "'%c'", c);
    return smol_json_fail(j, w);
}
/* a string into out (cap bytes; longer ones are refused); \uXXXX outside ASCII becomes '?' */
static int smol_json_str(SmolJson *j, char *out, size_t cap) {
    if (smol_json_ch(j, '"')) return -1;
    size_t k = 0;
    while (j->i < j->n && j->s[j->i] != '"') {
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c < 0x20) return smol_json_fail(j, "no control character in a string");
        if (c == '\\') {
            if (j->i >= j->n) break;
            char e = j->s[j->i++];
            const char *map = strchr("\"\"\\\\//b\bf\fn\nr\rt\t", e);
            if (e == 'u') {
                unsigned v = 0;
                for (int q = 0; q < 4; q++, j->i++) {
                    char h = j->i < j->n ? j->s[j->i] : 0;
                    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) return smol_json_fail(j, "4 hex digits after \\u");
                    v = v * 16 + (unsigned)d;
                }
                c = v && v < 0x80 ? (unsigned char)v : '?';
            } else if (e && map && (map - "\"\"\\\\//b\bf\fn\nr\rt\t") % 2 == 0) c = (unsigned char)map[1];
            else return smol_json_fail(j, "a JSON escape");
        }
        if (k + 1 >= cap) return smol_json_fail(j, "a shorter string");
        out[k++] = (char)c;
    }
    if (j->i >= j->n) return smol_json_fail(j, "the end of a string");
    j->i++;
    out[k] = 0;
    return 0;
}
static int smol_json_u64(SmolJson *j, uint64_t *out) {
    smol_json_ws(j);
    uint64_t v = 0;
    size_t d = 0;
    for (; j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9'; j->i++, d++) {
        if (v > (UINT64_MAX - 9) / 10) return smol_json_fail(j, "a smaller integer");
        v = v * 10 + (uint64_t)(j->s[j->i] - '0');
    }
    if (!d) return smol_json_fail(j, "a non-negative integer");
    *out = v;
    return 0;
}
/* '[' integers ']' into out (at most max; *k set) */
static int smol_json_u64s(SmolJson *j, uint64_t *out, int max, int *k) {
    *k = 0;
    if (smol_json_ch(j, '[')) return -1;
    smol_json_ws(j);
    if (j->i < j->n && j->s[j->i] == ']') { j->i++; return 0; }
    for (;;) {
        if (*k == max) return smol_json_fail(j, "fewer array elements");
        if (smol_json_u64(j, &out[(*k)++])) return -1;
        smol_json_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
        return smol_json_ch(j, ']');
    }
}
/* '{' ... '}': calls member(j, key, ctx) after each "key": */
static int smol_json_object(SmolJson *j, int (*member)(SmolJson *, const char *, void *), void *ctx) {
    char key[128];
    if (smol_json_ch(j, '{')) return -1;
    smol_json_ws(j);
    if (j->i < j->n && j->s[j->i] == '}') { j->i++; return 0; }
    for (;;) {
        if (smol_json_str(j, key, sizeof key) || smol_json_ch(j, ':') || member(j, key, ctx)) return -1;
        smol_json_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
        return smol_json_ch(j, '}');
    }
}
static int smol_meta_member(SmolJson *j, const char *key, void *ctx) {
    char v[512];
    (void)key; (void)ctx;
    return smol_json_str(j, v, sizeof v); /* the format allows string values only */
}
static int smol_tensor_member(SmolJson *j, const char *key, void *ctx) {
    SmolTensorHdr *t = ctx;
    int k = 0;
    uint64_t off[2];
    if (!strcmp(key, "dtype") && !t->dtype[0]) return smol_json_str(j, t->dtype, sizeof t->dtype) ? -1 : (t->dtype[0] ? 0 : smol_json_fail(j, "a dtype"));
    if (!strcmp(key, "shape") && t->ndim < 0) return smol_json_u64s(j, t->shape, 8, &t->ndim);
    if (!strcmp(key, "data_offsets") && t->b1 == UINT64_MAX) {
        if (smol_json_u64s(j, off, 2, &k)) return -1;
        if (k != 2) return smol_json_fail(j, "data_offsets of two integers");
        t->b0 = off[0];
        t->b1 = off[1];
        return 0;
    }
    snprintf(j->err, j->errlen, "%s: safetensors header: tensor %s has an unknown or repeated member \"%s\" "
             "(expected dtype, shape and data_offsets once each)", j->path, t->name, key);
    return -1;
}
typedef struct { SmolTensorHdr *t; int n, max, meta; } SmolHdrList;
static int smol_top_member(SmolJson *j, const char *key, void *ctx) {
    SmolHdrList *l = ctx;
    if (!strcmp(key, "__metadata__")) {
        if (l->meta++) return smol_json_fail(j, "one __metadata__");
        return smol_json_object(j, smol_meta_member, NULL);
    }
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, key)) {
            snprintf(j->err, j->errlen, "%s: safetensors header lists tensor %s twice", j->path, key);
            return -1;
        }
    if (l->n == l->max) {
        snprintf(j->err, j->errlen, "%s: safetensors header lists more than %d tensors, the model's count", j->path, l->max);
        return -1;
    }
    SmolTensorHdr *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", key);
    t->ndim = -1;
    t->b1 = UINT64_MAX;
    if (smol_json_object(j, smol_tensor_member, t)) return -1;
    if (!t->dtype[0] || t->ndim < 0 || t->b1 == UINT64_MAX) {
        snprintf(j->err, j->errlen, "%s: safetensors header: tensor %s lacks %s", j->path, key,
                 !t->dtype[0] ? "dtype" : t->ndim < 0 ? "shape" : "data_offsets");
        return -1;
    }
    return 0;
}

/* the header (hl bytes) of a file of file_len bytes against model m: every tensor of m once, as
   F32 of its shape, the data laid out back to back from byte 0 of the data with no gap, overlap
   or excess, ending at the end of the file. off[i]: spec i's byte offset in the data */
static int smol_header_check(const SmolModel *m, const char *hdr, uint64_t hl, uint64_t file_len, const char *path,
                             uint64_t *off, char *err, size_t errlen) {
    SmolHdrList l = {calloc((size_t)m->n_specs + 1, sizeof(SmolTensorHdr)), 0, m->n_specs, 0};
    if (!l.t) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    SmolJson j = {hdr, (size_t)hl, 0, path, err, errlen};
    int rc = smol_json_object(&j, smol_top_member, &l);
    smol_json_ws(&j);
    if (!rc && j.i != j.n) rc = smol_json_fail(&j, "only blanks after the header object");
    int *order = rc ? NULL : malloc(sizeof(int) * (size_t)m->n_specs); /* tensors by data offset */
    if (!rc && !order) { snprintf(err, errlen, "%s: out of memory", path); rc = -1; }
    for (int i = 0; i < m->n_specs && !rc; i++) {
        const AttnParamSpec *p = &m->specs[i];
        const SmolTensorHdr *t = NULL;
        for (int k = 0; k < l.n && !t; k++)
            if (!strcmp(l.t[k].name, p->name)) t = &l.t[k];
        char want[64], have[200] = "";
        if (p->cols) snprintf(want, sizeof want, "[%d,%d]", p->rows, p->cols);
        else snprintf(want, sizeof want, "[%d]", p->rows);
        if (t)
            for (int d = 0, k = 0; d < t->ndim; d++)
                k += snprintf(have + k, sizeof have - (size_t)k, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        if (!t) {
            snprintf(err, errlen, "%s: tensor %s is missing (the model has %d tensors)", path, p->name, m->n_specs);
            rc = -1;
        } else if (strcmp(t->dtype, "F32")) {
            snprintf(err, errlen, "%s: tensor %s has dtype %s, expected F32", path, p->name, t->dtype);
            rc = -1;
        } else if (t->ndim != (p->cols ? 2 : 1) || t->shape[0] != (uint64_t)p->rows || (p->cols && t->shape[1] != (uint64_t)p->cols)) {
            snprintf(err, errlen, "%s: tensor %s has shape [%s], expected %s", path, p->name, have, want);
            rc = -1;
        } else if (t->b1 < t->b0 || t->b1 - t->b0 != p->numel * 4) {
            snprintf(err, errlen, "%s: tensor %s has data_offsets [%llu,%llu], expected a span of %zu bytes "
                     "(%zu F32 values)", path, p->name, (unsigned long long)t->b0, (unsigned long long)t->b1,
                     p->numel * 4, p->numel);
            rc = -1;
        } else off[i] = t->b0;
        order[i] = i;
    }
    if (!rc && l.n != m->n_specs) { /* every spec was found, so one name is not the model's */
        for (int k = 0; k < l.n; k++) {
            int known = 0;
            for (int i = 0; i < m->n_specs && !known; i++) known = !strcmp(l.t[k].name, m->specs[i].name);
            if (!known) { snprintf(err, errlen, "%s: tensor %s is not a tensor of this model", path, l.t[k].name); break; }
        }
        rc = -1;
    }
    if (!rc) { /* by offset (insertion sort: a few hundred tensors), then back to back */
        for (int a = 1; a < m->n_specs; a++)
            for (int b = a; b > 0 && off[order[b]] < off[order[b - 1]]; b--) { int x = order[b]; order[b] = order[b - 1]; order[b - 1] = x; }
        uint64_t at = 0;
        for (int a = 0; a < m->n_specs && !rc; a++) {
            const AttnParamSpec *p = &m->specs[order[a]];
            if (off[order[a]] != at) {
                snprintf(err, errlen, "%s: tensor %s starts at data byte %llu, expected %llu (%s)", path, p->name,
                         (unsigned long long)off[order[a]], (unsigned long long)at,
                         off[order[a]] < at ? "it overlaps the tensor before it" : "a gap before it");
                rc = -1;
            }
            at += p->numel * 4;
        }
        if (!rc && file_len != 8 + hl + at) {
            snprintf(err, errlen, "%s is %llu bytes, expected %llu (8 + a %llu-byte header + %llu bytes of tensors): %s",
                     path, (unsigned long long)file_len, (unsigned long long)(8 + hl + at), (unsigned long long)hl,
                     (unsigned long long)at, file_len < 8 + hl + at ? "truncated" : "bytes past the last tensor");
            rc = -1;
        }
    }
    free(order);
    free(l.t);
    return rc;
}

/* header checked, then every weight read and checked finite; upload 0 only verifies */
static int smol_load_impl(SmolModel *m, const char *path, int upload, char *err, size_t errlen) {
    FILE *f = NULL;
    uint64_t hl = 0;
    char *hdr = smol_read_header(path, &f, &hl, err, errlen);
    if (!hdr) return -1;
    struct stat st;
    uint64_t *off = malloc(sizeof(uint64_t) * (size_t)m->n_specs);
    int rc = off && fstat(fileno(f), &st) == 0 ? 0 : -1;
    if (rc) snprintf(err, errlen, "%s: cannot read its size", path);
    rc = rc || smol_header_check(m, hdr, hl, (uint64_t)st.st_size, path, off, err, errlen);
    ops_real *host = rc ? NULL : malloc(m->n_params * sizeof(ops_real));
    float *buf = NULL;
    size_t bufcap = 0;
    if (!rc && !host) { snprintf(err, errlen, "%s: out of memory", path); rc = -1; }
    for (int i = 0; i < m->n_specs && rc == 0; i++) {
        const AttnParamSpec *p = &m->specs[i];
        if (bufcap < p->numel) {
            float *nb = realloc(buf, p->numel * sizeof(float));
            if (!nb) { snprintf(err, errlen, "%s: out of memory", path); rc = -1; break; }
            buf = nb;
            bufcap = p->numel;
        }
        if (fseeko(f, (off_t)(8 + hl + off[i]), SEEK_SET) || fread(buf, sizeof(float), p->numel, f) != p->numel) {
            snprintf(err, errlen, "%s: tensor %s cannot be read", path, p->name);
            rc = -1;
            break;
        }
        for (size_t j = 0; j < p->numel && rc == 0; j++) {
            /* a finite weight of any size is a legal weight; NaN or infinity never is */
            if (!isfinite(buf[j])) {
                snprintf(err, errlen, "%s: tensor %s holds %g at index %zu, expected finite weights", path, p->name,
                         (double)buf[j], j);
                rc = -1;
            }
            host[p->offset + j] = buf[j];
        }
    }
    if (rc == 0 && upload) {
        ops_to_device(m->gpu, m->params, host, m->n_params * sizeof(ops_real));
        smollm_sync_weights(m);
    }
    free(off);
    free(buf);
    free(host);
    free(hdr);
    fclose(f);
    return rc;
}

SMOLLMDEF int smollm_load(SmolModel *m, const char *path, char *err, size_t errlen) { return smol_load_impl(m, path, 1, err, errlen); }
SMOLLMDEF int smollm_verify(SmolModel *m, const char *path, char *err, size_t errlen) { return smol_load_impl(m, path, 0, err, errlen); }

/* ---- generation ---- */

SMOLLMDEF void smollm_gen_free(SmolGen *g) {
    if (g->layers)
        for (int l = 0; l < g->n_layers; l++) attn_decode_free(&g->layers[l]);
    free(g->layers);
    free(g->x); free(g->h); free(g->nt); free(g->sub); free(g->gu); free(g->act); free(g->xf); free(g->rstd);
    free(g->logits);
    memset(g, 0, sizeof *g);
}

SMOLLMDEF size_t smollm_cache_bytes(const SmolModel *m, int T) {
    size_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        char err[8];
        if (attn_decode_supported(&m->layers[l].attn, err, sizeof err)) return 0;
        b += attn_decode_cache_bytes(&m->layers[l].attn, T);
    }
    return b;
}

/* what smollm_gen_init (on_gpu 0) and smollm_gpu_gen_init (on_gpu 1) check before they allocate:
   the model on that side, B and cap in range, every layer's attention decodable there */
static int smol_gen_check(const SmolModel *m, int B, int cap, int on_gpu, char *err, size_t errlen) {
    if (!m->gpu != !on_gpu) {
        snprintf(err, errlen, "%s", on_gpu ? "GPU generation needs a model on the GPU (got a CPU model: use smollm_gen_init)"
                                           : "SmolGen decodes a CPU model (got a GPU model: use smollm_gpu_gen_init, "
                                             "or --device cpu)");
        return -1;
    }
    if (B < 1 || B > SMOLLM_MAX_BATCH || cap < 1 || cap > SMOLLM_MAX_SEQ) {
        snprintf(err, errlen, "generation of %d sequences x %d tokens: expected 1..%d x 1..%d", B, cap,
                 SMOLLM_MAX_BATCH, SMOLLM_MAX_SEQ);
        return -1;
    }
    int layer;
    char e2[256];
    if (smollm_decode_check(&m->cfg, on_gpu, &layer, e2, sizeof e2)) {
        snprintf(err, errlen, "layer %d: %s", layer, e2);
        return -1;
    }
    return 0;
}

SMOLLMDEF int smollm_decode_check(const SmolConfig *c, int on_gpu, int *layer, char *err, size_t errlen) {
    SmolConfig r = *c;
    *layer = -1;
    if (smollm_resolve(&r, err, errlen)) return -1;
    for (int l = 0; l < r.n_layers; l++) {
        AttnConfig a = smollm_layer_attn(&r, l);
        if (attn_resolve(&a, err, errlen) ||
            (on_gpu ? attn_gpu_decode_supported(&a, err, errlen) : attn_decode_supported(&a, err, errlen))) {
            *layer = l;
            return -1;
        }
    }
    return 0;
}

SMOLLMDEF int smollm_gen_init(SmolGen *g, const SmolModel *m, int B, int cap, char *err, size_t errlen) {
    const SmolConfig *c = &m->cfg;
    memset(g, 0, sizeof *g);
    if (smol_gen_check(m, B, cap, 0, err, errlen)) return -1;
    size_t d = c->d_model, F = c->ffn_dim;
    g->B = B;
    g->n_layers = c->n_layers;
    g->layers = calloc(c->n_layers, sizeof *g->layers);
    g->x = calloc(B * d, sizeof(ops_real)); g->h = calloc(B * d, sizeof(ops_real)); g->nt = calloc(B * d, sizeof(ops_real));
    g->sub = calloc(B * d, sizeof(ops_real)); g->xf = calloc(B * d, sizeof(ops_real));
    g->gu = calloc(B * 2 * F, sizeof(ops_real)); g->act = calloc(B * F, sizeof(ops_real));
    g->rstd = calloc(B, sizeof(ops_real)); g->logits = calloc((size_t)B * c->vocab_size, sizeof(ops_real));
    if (!g->layers || !g->x || !g->h || !g->nt || !g->sub || !g->xf || !g->gu || !g->act || !g->rstd || !g->logits) {
        snprintf(err, errlen, "generation of %d sequences: out of host memory for the activations", B);
        smollm_gen_free(g);
        return -1;
    }
    for (int l = 0; l < c->n_layers; l++) {
        char e2[256];
        if (attn_decode_init(&g->layers[l], &m->layers[l].attn, B, cap, e2, sizeof e2)) {
            snprintf(err, errlen, "layer %d: %s", l, e2);
            smollm_gen_free(g);
            return -1;
        }
        g->cache_bytes += g->layers[l].bytes;
    }
    g->cap = cap;
    return 0;
}

/* the blocks of smollm_forward_device on one token per sequence (N = B rows) */
SMOLLMDEF int smollm_decode_step(SmolGen *g, const SmolModel *m, const int *tokens, char *err, size_t errlen) {
    const SmolConfig *c = &m->cfg;
    int B = g->B, d = c->d_model, F = c->ffn_dim;
    float eps = c->norm_eps;
    size_t none = (size_t)-1;
    const ops_real *w = m->params;
    for (int b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= c->vocab_size) {
            snprintf(err, errlen, "token %d of sequence %d: expected 0..%d", tokens[b], b, c->vocab_size - 1);
            return -1;
        }
    if (g->pos >= g->cap) {
        snprintf(err, errlen, "decode at position %d: the generation holds %d tokens", g->pos, g->cap);
        return -1;
    }
    op_embed_forward(NULL, g->x, tokens, w + m->wte, B, d);
    for (int l = 0; l < c->n_layers; l++) {
        const SmolLayer *L = &m->layers[l];
        const ops_real *ain = g->x;
        if (L->attn_pre != none) {
            op_rmsnorm_forward(NULL, g->nt, g->rstd, g->x, w + L->attn_pre, B, d, eps);
            ain = g->nt;
        }
        char e2[256];
        if (attn_decode_step(&g->layers[l], w + L->attn_w, ain, g->sub, e2, sizeof e2)) {
            snprintf(err, errlen, "layer %d: %s", l, e2);
            return -1;
        }
        if (L->attn_post != none) {
            op_rmsnorm_forward(NULL, g->nt, g->rstd, g->sub, w + L->attn_post, B, d, eps);
            memcpy(g->sub, g->nt, sizeof(ops_real) * B * d);
        }
        op_add(NULL, g->h, g->x, g->sub, (size_t)B * d);
        const ops_real *fin = g->h;
        if (L->ffn_pre != none) {
            op_rmsnorm_forward(NULL, g->nt, g->rstd, g->h, w + L->ffn_pre, B, d, eps);
            fin = g->nt;
        }
        op_matmul_forward(NULL, g->gu, fin, w + L->gate, B, d, 2 * F);
        op_swiglu_forward(NULL, g->act, g->gu, B, F);
        op_matmul_forward(NULL, g->sub, g->act, w + L->down, B, F, d);
        if (L->ffn_post != none) {
            op_rmsnorm_forward(NULL, g->nt, g->rstd, g->sub, w + L->ffn_post, B, d, eps);
            memcpy(g->sub, g->nt, sizeof(ops_real) * B * d);
        }
        op_add(NULL, g->x, g->h, g->sub, (size_t)B * d);
    }
    op_rmsnorm_forward(NULL, g->xf, g->rstd, g->x, w + m->final_norm, B, d, eps);
    op_matmul_forward(NULL, g->logits, g->xf, w + m->wte, B, d, c->vocab_size); /* the tied LM head */
    g->pos++;
    return 0;
}

/* the prompt's rows through every block at once ([B*T, d], sequence-major), each layer's cache
   filled by attn_decode_prefill; the LM head on the last position of each sequence only */
SMOLLMDEF int smollm_prefill(SmolGen *g, const SmolModel *m, const int *tokens, int T, char *err, size_t errlen) {
    const SmolConfig *c = &m->cfg;
    int B = g->B, d = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    size_t N = (size_t)B * T, none = (size_t)-1;
    float eps = c->norm_eps;
    const ops_real *w = m->params;
    if (T < 1 || g->pos + T > g->cap) {
        snprintf(err, errlen, "prefill of %d tokens at position %d: the generation holds %d tokens (expected 1..%d)", T,
                 g->pos, g->cap, g->cap - g->pos);
        return -1;
    }
    for (size_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= V) {
            snprintf(err, errlen, "prompt token %d at %zu: expected 0..%d", tokens[i], i, V - 1);
            return -1;
        }
    ops_real *x = malloc(sizeof(ops_real) * N * d), *h = malloc(sizeof(ops_real) * N * d), *nt = malloc(sizeof(ops_real) * N * d);
    ops_real *sub = malloc(sizeof(ops_real) * N * d), *gu = malloc(sizeof(ops_real) * N * 2 * F);
    ops_real *act = malloc(sizeof(ops_real) * N * F), *rstd = malloc(sizeof(ops_real) * N);
    int rc = x && h && nt && sub && gu && act && rstd ? 0 : -1;
    if (rc) snprintf(err, errlen, "prefill of %d x %d tokens: out of host memory", B, T);
    if (!rc) op_embed_forward(NULL, x, tokens, w + m->wte, (int)N, d);
    for (int l = 0; l < c->n_layers && !rc; l++) {
        const SmolLayer *L = &m->layers[l];
        const ops_real *ain = x;
        if (L->attn_pre != none) {
            op_rmsnorm_forward(NULL, nt, rstd, x, w + L->attn_pre, (int)N, d, eps);
            ain = nt;
        }
        char e2[256];
        if (attn_decode_prefill(&g->layers[l], w + L->attn_w, ain, sub, T, e2, sizeof e2)) {
            snprintf(err, errlen, "layer %d: %s", l, e2);
            rc = -1;
            break;
        }
        if (L->attn_post != none) {
            op_rmsnorm_forward(NULL, nt, rstd, sub, w + L->attn_post, (int)N, d, eps);
            memcpy(sub, nt, sizeof(ops_real) * N * d);
        }
        op_add(NULL, h, x, sub, N * d);
        const ops_real *fin = h;
        if (L->ffn_pre != none) {
            op_rmsnorm_forward(NULL, nt, rstd, h, w + L->ffn_pre, (int)N, d, eps);
            fin = nt;
        }
        op_matmul_forward(NULL, gu, fin, w + L->gate, (int)N, d, 2 * F);
        op_swiglu_forward(NULL, act, gu, (int)N, F);
        op_matmul_forward(NULL, sub, act, w + L->down, (int)N, F, d);
        if (L->ffn_post != none) {
            op_rmsnorm_forward(NULL, nt, rstd, sub, w + L->ffn_post, (int)N, d, eps);
            memcpy(sub, nt, sizeof(ops_real) * N * d);
        }
        op_add(NULL, x, h, sub, N * d);
    }
    if (!rc) {
        for (int b = 0; b < B; b++) memcpy(g->x + (size_t)b * d, x + ((size_t)b * T + T - 1) * d, sizeof(ops_real) * d);
        op_rmsnorm_forward(NULL, g->xf, g->rstd, g->x, w + m->final_norm, B, d, eps);
        op_matmul_forward(NULL, g->logits, g->xf, w + m->wte, B, d, V);
        g->pos += T;
    }
    free(x); free(h); free(nt); free(sub); free(gu); free(act); free(rstd);
    return rc;
}

typedef struct { ops_real p; int i; } SmolCand;
static int smol_cand_cmp(const void *a, const void *b) { /* larger first, then the lower id */
    const SmolCand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

SMOLLMDEF int smollm_sample(const ops_real *logits, int V, const SmolSampler *s, uint64_t *rng) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (!s || s->temperature <= 0) return best;
    SmolCand *cd = malloc(sizeof *cd * V);
    if (!cd) return best; /* out of memory: the greedy choice rather than none */
    for (int i = 0; i < V; i++) { /* unnormalized: only ratios matter below */
        cd[i].p = exp((logits[i] - logits[best]) / s->temperature);
        cd[i].i = i;
    }
    qsort(cd, V, sizeof *cd, smol_cand_cmp);
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double kept = 0;
    for (int i = 0; i < n; i++) kept += cd[i].p;
    if (s->top_p > 0 && s->top_p < 1) { /* the smallest prefix reaching top_p of what top-k kept */
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += cd[i].p;
            if (acc >= s->top_p * kept) { n = i + 1; kept = acc; break; }
        }
    }
    double u = rng_uniform(rng) * kept, acc = 0;
    int pick = cd[n - 1].i;
    for (int i = 0; i < n; i++) {
        acc += cd[i].p;
        if (u < acc) { pick = cd[i].i; break; }
    }
    free(cd);
    return pick;
}

/* ---- generation on the GPU ---- */

#ifndef ABLATE_NO_CUDA
#include "attn/decode.cu.h" /* the sampler */
#include "attn/decode_fused.cu.h" /* the fused step */
#include "attn/decode_persist.cu.h" /* the persistent step */
#endif

#ifndef ABLATE_NO_CUDA
/* the fused step covers g (THE FUSED STEP in the header): 1 or 0 */
static int smol_gpu_fusable(const SmolModel *m, const SmolGpuGen *g) {
    const SmolConfig *c = &m->cfg;
    size_t none = (size_t)-1, smem = gpu_fz_smem(c->d_model > c->ffn_dim ? c->d_model : c->ffn_dim);
    if (g->B > SMOLLM_FUSED_MAX_B || ops_act_size(m->gpu) != 2 || smem > m->gpu->smem_optin) return 0;
    for (int l = 0; l < c->n_layers; l++) {
        AttnGpuDenseStep s;
        const SmolLayer *L = &m->layers[l];
        if (L->attn_post != none || L->ffn_post != none ||
            attn_gpu_decode_dense(m->gpu, &g->layers[l], wptr(m, L->attn_w), &s))
            return 0;
        if (gpu_fz_smem(s.sh.H * s.sh.hd) > m->gpu->smem_optin) return 0;
    }
    return 1;
}

/* the fused step's scratch, each part the largest any layer needs; sets g->fused */
static void smol_gpu_fused_alloc(SmolGpuGen *g, const SmolModel *m) {
    size_t qkv = 16, att = 16, part = 16, cnt = 16;
    for (int l = 0; l < g->n_layers; l++) {
        AttnGpuDenseStep s;
        attn_gpu_decode_dense(m->gpu, &g->layers[l], wptr(m, m->layers[l].attn_w), &s);
        size_t q = (size_t)g->B * (s.sh.H + 2 * s.sh.KV) * s.sh.hd * 2, a = (size_t)g->B * s.sh.H * s.sh.hd * 2;
        size_t p = gpu_dec_part_bytes(&s.sh, g->B), n = (size_t)g->B * s.sh.KV * sizeof(int);
        qkv = q > qkv ? q : qkv; att = a > att ? a : att; part = p > part ? p : part; cnt = n > cnt ? n : cnt;
    }
    g->fqkv = ops_alloc(m->gpu, qkv);
    g->fatt = ops_alloc(m->gpu, att);
    g->fpart = (float *)ops_alloc(m->gpu, part);
    g->fcnt = (int *)ops_alloc(m->gpu, cnt);
    gpu_memset0(m->gpu, g->fcnt, cnt);
    g->fused = 1;
}

/* the persistent step's shape as layer 0 gives it (the step's launch; smol_gpu_persist_shape
   checked at init that every layer has it) */
static void smol_gpu_persist_fill(const SmolModel *m, const SmolGpuGen *g, GpuPzShape *sh) {
    const SmolConfig *c = &m->cfg;
    AttnGpuDenseStep s;
    attn_gpu_decode_dense(m->gpu, &g->layers[0], wptr(m, m->layers[0].attn_w), &s);
    memset(sh, 0, sizeof *sh);
    sh->B = g->B; sh->L = c->n_layers; sh->D = c->d_model; sh->F = c->ffn_dim; sh->V = c->vocab_size;
    sh->eps = c->norm_eps;
    sh->H = s.sh.H; sh->KV = s.sh.KV; sh->hd = s.sh.hd;
}

/* the persistent step's shape when it covers g (THE PERSISTENT STEP in the header): 0, else -1 */
static int smol_gpu_persist_shape(const SmolModel *m, const SmolGpuGen *g, GpuPzShape *sh) {
    const SmolConfig *c = &m->cfg;
    char why[256];
    if (!smol_gpu_fusable(m, g) || m->gpu->cc_major < 6) return -1;
    smol_gpu_persist_fill(m, g, sh);
    for (int l = 0; l < c->n_layers; l++) {
        AttnGpuDenseStep s;
        const SmolLayer *L = &m->layers[l];
        attn_gpu_decode_dense(m->gpu, &g->layers[l], wptr(m, L->attn_w), &s);
        if (s.sh.H != sh->H || s.sh.KV != sh->KV || s.sh.hd != sh->hd) return -1;
        const void *w[] = {s.wqkv, s.wo, wptr(m, L->gate), wptr(m, L->down)};
        for (int i = 0; i < 4; i++)
            if ((uintptr_t)w[i] & 15) return -1; /* its GEMVs load weight rows 16 bytes at a time */
    }
    if ((uintptr_t)wptr(m, m->wte) & 15) return -1;
    return gpu_pz_check(m->gpu, sh, why, sizeof why);
}

/* the persistent step's layer table and barrier; sets g->fused = 2 (the fused step's q|k|v and
   partials scratch serve it, sized for it here) */
static void smol_gpu_persist_alloc(SmolGpuGen *g, const SmolModel *m, const GpuPzShape *sh) {
    size_t none = (size_t)-1;
    GpuPzLayer *t = calloc((size_t)sh->L, sizeof *t);
    if (!t) return; /* no host memory for the table: the step of separate kernels */
    for (int l = 0; l < sh->L; l++) {
        AttnGpuDenseStep s;
        const SmolLayer *L = &m->layers[l];
        attn_gpu_decode_dense(m->gpu, &g->layers[l], wptr(m, L->attn_w), &s);
        t[l].wqkv = s.wqkv; t[l].wo = s.wo; t[l].wgu = wptr(m, L->gate); t[l].wdown = wptr(m, L->down);
        t[l].an = L->attn_pre != none ? wptr(m, L->attn_pre) : NULL;
        t[l].fn = L->ffn_pre != none ? wptr(m, L->ffn_pre) : NULL;
        t[l].qn = s.qn; t[l].kn = s.kn;
        t[l].cache = g->layers[l].mem;
        t[l].S = s.sh.S; t[l].G = s.sh.G; t[l].ring = s.sh.ring; t[l].W = s.sh.window; t[l].glob = s.sh.global;
        t[l].stride = s.sh.stride; t[l].dil = s.sh.dilation; t[l].pb = s.sh.block > 0 ? s.sh.block : 128;
        t[l].theta = s.sh.theta; t[l].qk_eps = s.sh.eps;
    }
    g->pz_layers = ops_alloc(m->gpu, sizeof *t * (size_t)sh->L);
    ops_to_device(m->gpu, g->pz_layers, t, sizeof *t * (size_t)sh->L);
    free(t);
    g->pz_bar = (unsigned *)ops_alloc(m->gpu, 16);
    g->fqkv = ops_alloc(m->gpu, (size_t)sh->B * (sh->H + 2 * sh->KV) * sh->hd * 2);
    g->fpart = (float *)ops_alloc(m->gpu, sizeof(float) * gpu_pz_part_floats(m->gpu, sh));
    g->fused = 2;
}

/* the persistent step, queued: one kernel for the layers and the head; greedy (temperature 0), the
   kernel also picks the token and advances the position, else the sampler and the increment follow */
static void smol_gpu_step_persist(SmolGpuGen *g, const SmolModel *m) {
    const SmolConfig *c = &m->cfg;
    GpuPzShape sh;
    int greedy = g->sampler.temperature <= 0;
    smol_gpu_persist_fill(m, g, &sh); /* not the whole check again: init made it, and nothing it reads changes */
    gpu_pz_step(m->gpu, &sh, (const GpuPzLayer *)g->pz_layers, wptr(m, m->wte), wptr(m, m->final_norm), g->d_tok,
                g->d_pos, g->x, g->h, g->act, g->fqkv, g->fpart, g->logits, g->pz_bar, greedy, g->pz_trace);
    if (greedy) return;
    gpu_dec_sample(m->gpu, g->d_tok, g->logits, g->d_pos, g->B, c->vocab_size, g->sampler.temperature,
                   g->sampler.top_k, g->sampler.top_p, (unsigned long long)g->seed);
    gpu_dec_advance(m->gpu, g->d_pos);
}

/* the fused step, queued (THE FUSED STEP in the header): the embedding of d_tok, 5 kernels a
   layer, the LM head with the final norm folded in, the sampler, the position + 1 */
static void smol_gpu_step_fused(SmolGpuGen *g, const SmolModel *m) {
    const SmolConfig *c = &m->cfg;
    Gpu *gpu = m->gpu;
    size_t none = (size_t)-1;
    int B = g->B, d = c->d_model, F = c->ffn_dim;
    float eps = c->norm_eps;
    op_embed_forward(gpu, g->x, g->d_tok, wptr(m, m->wte), B, d);
    for (int l = 0; l < c->n_layers; l++) {
        const SmolLayer *L = &m->layers[l];
        AttnGpuDenseStep s;
        attn_gpu_decode_dense(gpu, &g->layers[l], wptr(m, L->attn_w), &s); /* dense: smol_gpu_fusable said so */
        int H = s.sh.H, KV = s.sh.KV, hd = s.sh.hd;
        const void *an = L->attn_pre != none ? wptr(m, L->attn_pre) : NULL;
        const void *fn = L->ffn_pre != none ? wptr(m, L->ffn_pre) : NULL;
        gpu_fz_linear(gpu, g->fqkv, g->x, s.wqkv, an, NULL, B, d, (H + 2 * KV) * hd, eps, 0);
        gpu_fz_attend(gpu, &s.sh, g->fatt, g->fqkv, g->layers[l].mem, s.qn, s.kn, g->fpart, g->fcnt, g->d_pos, B);
        gpu_fz_linear(gpu, g->h, g->fatt, s.wo, NULL, g->x, B, H * hd, d, eps, 0);       /* h = x + o */
        gpu_fz_swiglu(gpu, g->act, g->h, wptr(m, L->gate), fn, B, d, F, eps);
        gpu_fz_linear(gpu, g->x, g->act, wptr(m, L->down), NULL, g->h, B, F, d, eps, 0); /* x = h + down */
    }
    gpu_fz_linear(gpu, g->logits, g->x, wptr(m, m->wte), wptr(m, m->final_norm), NULL, B, d, c->vocab_size, eps, 1);
    gpu_dec_sample(gpu, g->d_tok, g->logits, g->d_pos, B, c->vocab_size, g->sampler.temperature, g->sampler.top_k,
                   g->sampler.top_p, (unsigned long long)g->seed);
    gpu_dec_advance(gpu, g->d_pos);
}
#endif


SMOLLMDEF size_t smollm_gpu_cache_bytes(const SmolModel *m, int T) {
    size_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        char err[8];
        if (attn_gpu_decode_supported(&m->layers[l].attn, err, sizeof err)) return 0;
        b += attn_gpu_decode_cache_bytes(&m->layers[l].attn, T);
    }
    return b;
}

SMOLLMDEF void smollm_gpu_gen_free(SmolGpuGen *g, const SmolModel *m) {
    Gpu *gpu = m->gpu;
#ifndef ABLATE_NO_CUDA
    if (gpu) gpu_sync(gpu); /* nothing queued may still use what is freed */
    if (g->graph) gpu_graph_free((CUgraphExec)g->graph);
#endif
    if (g->layers)
        for (int l = 0; l < g->n_layers; l++)
            if (g->layers[l].mem) attn_gpu_decode_free(gpu, &g->layers[l]);
    free(g->layers);
    void *dev[] = {g->d_pos, g->d_tok, g->x, g->h, g->nt, g->sub, g->gu, g->act, g->xf, g->rstd, g->logits,
                   g->fqkv, g->fatt, g->fpart, g->fcnt, g->pz_layers, g->pz_bar};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++)
        if (dev[i] && gpu) ops_free(gpu, dev[i]);
    free(g->tokens);
    memset(g, 0, sizeof *g);
}

SMOLLMDEF int smollm_gpu_gen_init(SmolGpuGen *g, const SmolModel *m, int B, int cap, const SmolSampler *s,
                                  uint64_t seed, int eager, char *err, size_t errlen) {
    const SmolConfig *c = &m->cfg;
    memset(g, 0, sizeof *g);
    if (smol_gen_check(m, B, cap, 1, err, errlen)) return -1;
    Gpu *gpu = m->gpu;
    size_t d = c->d_model, F = c->ffn_dim, es = ops_act_size(gpu);
    g->B = B;
    g->cap = cap;
    g->eager = eager;
    g->seed = seed;
    if (s) g->sampler = *s;
    g->n_layers = c->n_layers;
    g->layers = calloc(c->n_layers, sizeof *g->layers);
    g->tokens = calloc(B, sizeof(int));
    if (!g->layers || !g->tokens) {
        snprintf(err, errlen, "GPU generation of %d sequences: out of host memory", B);
        smollm_gpu_gen_free(g, m);
        return -1;
    }
    g->d_pos = ops_alloc(gpu, 16);
    g->d_tok = ops_alloc(gpu, sizeof(int) * B);
    g->x = ops_alloc(gpu, B * d * es); g->h = ops_alloc(gpu, B * d * es); g->nt = ops_alloc(gpu, B * d * es);
    g->sub = ops_alloc(gpu, B * d * es); g->xf = ops_alloc(gpu, B * d * es);
    g->gu = ops_alloc(gpu, B * 2 * F * es); g->act = ops_alloc(gpu, B * F * es);
    g->rstd = ops_alloc(gpu, sizeof(ops_real) * B);
    g->logits = ops_alloc(gpu, sizeof(ops_real) * B * (size_t)c->vocab_size);
    for (int l = 0; l < c->n_layers; l++) {
        char e2[256];
        if (attn_gpu_decode_init(gpu, &g->layers[l], &m->layers[l].attn, wptr(m, m->layers[l].attn_w), B, cap,
                                 g->d_pos, e2, sizeof e2)) {
            snprintf(err, errlen, "layer %d: %s", l, e2);
            smollm_gpu_gen_free(g, m);
            return -1;
        }
        g->cache_bytes += g->layers[l].bytes;
    }
#ifndef ABLATE_NO_CUDA
    GpuPzShape pz;
    if (gpu->tuning.dec_fused == 2 && !smol_gpu_persist_shape(m, g, &pz)) smol_gpu_persist_alloc(g, m, &pz);
    if (gpu->tuning.dec_fused && !g->fused && smol_gpu_fusable(m, g)) smol_gpu_fused_alloc(g, m);
#endif
    return 0;
}

SMOLLMDEF int smollm_gpu_set_tokens(SmolGpuGen *g, const SmolModel *m, const int *tokens, char *err, size_t errlen) {
    for (int b = 0; b < g->B; b++)
        if (tokens[b] < 0 || tokens[b] >= m->cfg.vocab_size) {
            snprintf(err, errlen, "token %d of sequence %d: expected 0..%d", tokens[b], b, m->cfg.vocab_size - 1);
            return -1;
        }
    ops_to_device(m->gpu, g->d_tok, tokens, sizeof(int) * g->B);
    memcpy(g->tokens, tokens, sizeof(int) * g->B);
    return 0;
}

/* the final norm, the tied LM head in fp32 and the sampler on rows xrow [B, d] (device) */
static void smol_gpu_head(SmolGpuGen *g, const SmolModel *m, const void *xrow) {
#ifndef ABLATE_NO_CUDA
    const SmolConfig *c = &m->cfg;
    int B = g->B, d = c->d_model, V = c->vocab_size;
    op_rmsnorm_forward(m->gpu, g->xf, g->rstd, xrow, wptr(m, m->final_norm), B, d, c->norm_eps);
    gpu_gemm(m->gpu, g->logits, 1, g->xf, 0, wptr(m, m->wte), 1, B, V, d, d, d, V, 0.0f);
    gpu_dec_sample(m->gpu, g->d_tok, g->logits, g->d_pos, B, V, g->sampler.temperature, g->sampler.top_k,
                   g->sampler.top_p, (unsigned long long)g->seed);
#else
    (void)g, (void)m, (void)xrow;
#endif
}

/* one block on N rows of one-token or prompt activations: x (in, then the block's output),
   h, nt, sub [N, d], gu [N, 2F], act [N, F], rstd [N]; the attention by attn_step */
typedef struct {
    void *x, *h, *nt, *sub, *gu, *act;
    ops_real *rstd;
    int x_normed; /* nt already holds the next block's attention input (fused with the residual add) */
} SmolGpuRows;

static int smol_gpu_block(const SmolModel *m, int l, SmolGpuRows *r, int N, AttnGpuCache *k, int T, char *err,
                          size_t errlen) {
    const SmolConfig *c = &m->cfg;
    const SmolLayer *L = &m->layers[l];
    Gpu *gpu = m->gpu;
    int d = c->d_model, F = c->ffn_dim;
    size_t none = (size_t)-1, es = ops_act_size(gpu);
    float eps = c->norm_eps;
    const void *ain = r->x;
    if (L->attn_pre != none) {
        if (!r->x_normed) op_rmsnorm_forward(gpu, r->nt, r->rstd, r->x, wptr(m, L->attn_pre), N, d, eps);
        ain = r->nt;
    }
    r->x_normed = 0;
    char e2[256];
    int rc = T > 0 ? attn_gpu_decode_prefill(gpu, k, wptr(m, L->attn_w), ain, r->sub, T, e2, sizeof e2)
                   : attn_gpu_decode_step(gpu, k, wptr(m, L->attn_w), ain, r->sub, e2, sizeof e2);
    if (rc) {
        snprintf(err, errlen, "layer %d: %s", l, e2);
        return -1;
    }
    if (L->attn_post != none) {
        op_rmsnorm_forward(gpu, r->nt, r->rstd, r->sub, wptr(m, L->attn_post), N, d, eps);
        ops_copy(gpu, r->sub, r->nt, (size_t)N * d * es);
    }
    /* each residual add is fused with the norm that follows it (one kernel instead of two: a
       decode step is a few hundred small launches, so their count is its time) */
    const void *fin = r->h;
    if (L->ffn_pre != none) {
        op_add_rmsnorm_forward(gpu, r->h, r->nt, r->rstd, r->x, r->sub, wptr(m, L->ffn_pre), N, d, eps);
        fin = r->nt;
    } else {
        op_add(gpu, r->h, r->x, r->sub, (size_t)N * d);
    }
    op_matmul_forward(gpu, r->gu, fin, wptr(m, L->gate), N, d, 2 * F);
    op_swiglu_forward(gpu, r->act, r->gu, N, F);
    op_matmul_forward(gpu, r->sub, r->act, wptr(m, L->down), N, F, d);
    if (L->ffn_post != none) {
        op_rmsnorm_forward(gpu, r->nt, r->rstd, r->sub, wptr(m, L->ffn_post), N, d, eps);
        ops_copy(gpu, r->sub, r->nt, (size_t)N * d * es);
    }
    const SmolLayer *next = l + 1 < c->n_layers ? &m->layers[l + 1] : NULL;
    if (next && next->attn_pre != none) {
        op_add_rmsnorm_forward(gpu, r->x, r->nt, r->rstd, r->h, r->sub, wptr(m, next->attn_pre), N, d, eps);
        r->x_normed = 1;
    } else {
        op_add(gpu, r->x, r->h, r->sub, (size_t)N * d);
    }
    return 0;
}

SMOLLMDEF int smollm_gpu_prefill(SmolGpuGen *g, const SmolModel *m, const int *tokens, int T, char *err, size_t errlen) {
    const SmolConfig *c = &m->cfg;
    Gpu *gpu = m->gpu;
    int B = g->B, d = c->d_model, F = c->ffn_dim, V = c->vocab_size;
    size_t N = (size_t)B * T, es = ops_act_size(gpu);
    if (g->pos != 0 || T < 1 || T > g->cap) {
        snprintf(err, errlen, "GPU prefill of %d tokens at position %d: expected position 0 and 1..%d tokens", T,
                 g->pos, g->cap);
        return -1;
    }
    for (size_t i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= V) {
            snprintf(err, errlen, "prompt token %d at %zu: expected 0..%d", tokens[i], i, V - 1);
            return -1;
        }
    SmolGpuRows r = {ops_alloc(gpu, N * d * es), ops_alloc(gpu, N * d * es), ops_alloc(gpu, N * d * es),
                     ops_alloc(gpu, N * d * es), ops_alloc(gpu, N * 2 * F * es), ops_alloc(gpu, N * F * es),
                     (ops_real *)ops_alloc(gpu, N * sizeof(ops_real)), 0};
    int *dt = ops_alloc(gpu, N * sizeof(int));
    ops_to_device(gpu, dt, tokens, N * sizeof(int));
    op_embed_forward(gpu, r.x, dt, wptr(m, m->wte), (int)N, d);
    int rc = 0;
    for (int l = 0; l < c->n_layers && !rc; l++) rc = smol_gpu_block(m, l, &r, (int)N, &g->layers[l], T, err, errlen);
    if (!rc) {
        for (int b = 0; b < B; b++) /* each sequence's last position */
            ops_copy(gpu, (char *)g->x + (size_t)b * d * es, (char *)r.x + ((size_t)b * T + T - 1) * d * es, d * es);
        smol_gpu_head(g, m, g->x);
        ops_to_host(gpu, g->tokens, g->d_tok, sizeof(int) * B);
        g->pos = T;
    }
#ifndef ABLATE_NO_CUDA
    gpu_sync(gpu); /* queued kernels may still read the rows freed below */
#endif
    void *tmp[] = {r.x, r.h, r.nt, r.sub, r.gu, r.act, r.rstd, dt};
    for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) ops_free(gpu, tmp[i]);
    return rc;
}

#ifndef ABLATE_NO_CUDA
/* the step, queued: embedding of d_tok, every block, the head and sampler, the position + 1 */
static int smol_gpu_step_queue(SmolGpuGen *g, const SmolModel *m, char *err, size_t errlen) {
    if (g->fused == 2) {
        smol_gpu_step_persist(g, m);
        return 0;
    }
    if (g->fused) {
        smol_gpu_step_fused(g, m);
        return 0;
    }
    SmolGpuRows r = {g->x, g->h, g->nt, g->sub, g->gu, g->act, g->rstd, 0};
    op_embed_forward(m->gpu, g->x, g->d_tok, wptr(m, m->wte), g->B, m->cfg.d_model);
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (smol_gpu_block(m, l, &r, g->B, &g->layers[l], 0, err, errlen)) return -1;
    smol_gpu_head(g, m, g->x);
    gpu_dec_advance(m->gpu, g->d_pos);
    return 0;
}
#endif

SMOLLMDEF int smollm_gpu_decode_step(SmolGpuGen *g, const SmolModel *m, char *err, size_t errlen) {
#ifndef ABLATE_NO_CUDA
    Gpu *gpu = m->gpu;
    if (g->pos >= g->cap) {
        snprintf(err, errlen, "decode at position %d: the generation holds %d tokens", g->pos, g->cap);
        return -1;
    }
    /* the first step runs eagerly (it compiles the kernels and plans the GEMMs, which a capture
       cannot do); the second is captured, and every later one replays it */
    if (g->eager || g->steps == 0) {
        if (smol_gpu_step_queue(g, m, err, errlen)) return -1;
    } else {
        if (!g->graph) {
            gpu_graph_begin(gpu);
            int rc = smol_gpu_step_queue(g, m, err, errlen);
            CUgraphExec exec = gpu_graph_end(gpu);
            if (rc) {
                gpu_graph_free(exec);
                return -1;
            }
            g->graph = (void *)exec;
        }
        gpu_graph_launch(gpu, (CUgraphExec)g->graph);
    }
    ops_to_host(gpu, g->tokens, g->d_tok, sizeof(int) * g->B);
    g->pos++;
    g->steps++;
    for (int l = 0; l < g->n_layers; l++) g->layers[l].pos = g->pos; /* the host mirrors of *d_pos */
    return 0;
#else
    (void)g, (void)m;
    snprintf(err, errlen, "GPU generation: this build has no CUDA (expected the CUDA build, or --device cpu)");
    return -1;
#endif
}

#endif /* SMOLLM_IMPLEMENTATION_DONE */
#endif /* SMOLLM_IMPLEMENTATION */
