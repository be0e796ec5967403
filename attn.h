/* attn.h - attention mechanisms as ablation axes: the registry of mechanisms, their options,
   and the dispatch (config, parameter layout and counts, KV-cache bytes and FLOPs per token,
   activations, forward and backward).

   USAGE
     #define ATTN_IMPLEMENTATION     // in exactly one .c file (or ABLATE_IMPLEMENTATION: all)
     #include "attn.h"
   Depends on: ops.h (the ops every mechanism is built from; gpu.h in the CUDA build). The rooms
   under attn/ are part of this header: attn.h includes them, ATTN_IMPLEMENTATION implements
   them (attn/gdn.h and attn/dsa.h also stand alone as op libraries: their usage blocks).

     AttnConfig c = {0};            // zero = defaults: GQA, SmolLM2-135M widths
     c.kind = ATTN_MQA; c.d_model = 64; c.n_heads = 4; c.window = 32;
     char err[256];
     if (attn_resolve(&c, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
     size_t np = attn_param_count(&c);

   ONE MECHANISM, ONE ROOM. Each mechanism lives in its own header under attn/ (its C reference
   and dispatch; its CUDA source beside it as attn/NAME.cu.h when it has kernels of its own):
     attn/dense.h     MHA, GQA, MQA, SWA: softmax attention over a causal window, with fixed sparse
                      patterns (local+global, strided, dilated) and QK-norm (Vaswani et al. 2017;
                      GQA: Ainslie et al. 2023, arXiv 2305.13245; MQA: Shazeer 2019, 1911.02150;
                      sliding window: Beltagy et al. 2020, 2004.05150). Kernels: attn/dense.cu.h
                      (the flash core every softmax mechanism runs on); GPU decoding (split-K
                      over the KV cache, the device sampler; every room's decode kernels):
                      attn/decode.cu.h
     attn/identity.h  no token mixing: out = W_o (W_v x), the control for "how much does mixing buy"
     attn/mla.h       DeepSeek-V2 multi-head latent attention (arXiv 2405.04434)
     attn/mga.h       pikaia's multi-head genetic attention (danube-ai/pikaia)
     attn/gdn.h       Gated DeltaNet linear attention (Yang et al. 2024, arXiv 2412.06464);
                      kernels attn/gdn.cu.h
     attn/dsa.h       DeepSeek-V3.2 sparse attention with a lightning indexer (DeepSeek-AI 2025);
                      kernels attn/dsa.cu.h
     attn/hier.h      multi-scale attention: a local window plus mean-pooled coarse blocks of the
                      earlier context (CPU)
   A room exports one descriptor (AttnMech: resolve, GPU support, parameter specs, KV/state
   bytes, FLOPs, init, activation and scratch sizes and binding, forward, backward, a hook
   for state that changes during training, and decoding: cache_bytes, decode, prefill; see
   DECODING below) and three macros: ATTN_OPTIONS_room (its option
   table), ATTN_ACTS_room and ATTN_SCRATCH_room (the fields it adds to AttnActs / AttnScratch).

   OPTIONS. Every option of every mechanism is one row of an option table: its one spelling
   (the AttnConfig field, the study spec key, `--key` on the command line, `key=` in a
   schedule item, config.json and the checkpoint's metadata), range and help. attn_option_at
   walks them all; study.h's run keys, ablate's --help and the schedule grammar are generated
   from them. Value 0 means "the default" (the help says what it resolves to).
   attn_dropout (a common option, per mille: options are integers) drops attention probabilities
   in training: smollm.h sets AttnActs.drop_on and the stream (seed, layer, step and micro-batch
   counters; on the GPU those live on the device) before each forward; the dense room's softmax
   core (attn_softmax_core_*, which MLA and MGA run too) calls op_attention_dropout_* (ops.h: the
   counter-based hash, drawn again in the backward; on Hopper the mma.sync flash kernels, not the
   wgmma ones). The other rooms (gdn, dsa, hier, identity) refuse attn_dropout > 0 in attn_resolve,
   naming the kinds that run it.

   ADDING A MECHANISM (the recipe; attn/hier.h was added this way):
     1. attn/NAME.h: the manual block (equations, paper, parameter names, what kv_bytes_per_token
        counts), then, guarded by ATTN_NAME_H (the declarations: attn.h's top includes them)
          #define ATTN_OPTIONS_NAME(X) X(NAME, field, "field", min, max, flags, "help") ...
                                    (room first: seven arguments; the common table has six)
          #define ATTN_ACTS_NAME    void *my_act;      (fields added to AttnActs; may be empty)
          #define ATTN_SCRATCH_NAME void *my_grad;     (fields added to AttnScratch; may be empty)
        and, under `#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) &&
        !defined(ATTN_NAME_DONE)` (then `#define ATTN_NAME_DONE`), the functions and
        `static const AttnMech attn_room_NAME = {...}` (attn/identity.h is the smallest).
        Option names are global (a study spec is flat): prefix them when they could clash.
        A room may call the static functions of a room included before it (hier and dsa use
        dense's projection, parameter specs and activation/scratch carving, and with them get
        qk_norm). A room without kernels returns -1 from gpu_supported with a message naming
        --device cpu: smollm's config check, bench and attn_forward/backward then refuse the
        GPU, and its forward and backward only ever see gpu == NULL (activations are ops_real).
     2. attn.h, three lines: K(ENUM, name, room) at the end of ATTN_REGISTRY below (its order
        is AttnKind's: appending keeps the other kinds' numbers), and `#include "attn/NAME.h"`
        twice, each after the other rooms' (a room may use theirs): before ATTN_REGISTRY (the
        declarations) and after `#define ATTN_ROOMS_NOW` in the implementation section.
     3. its tests: tests/test_NAME.c (gradient check against finite differences in double,
        causality, the equivalences it has with other mechanisms), in the Makefile: its name in
        EXTRA_TESTS and, for the double build, a rule like test_gdn's (the pattern rule builds
        float). The Makefile's HEADERS takes every header under attn/ by itself.
     4. for generation (optional): cache_bytes and decode (and prefill) at the end of its
        AttnMech (NULL: attn_decode_* refuse the room by name), and its line in
        tests/test_decode.c (decode == the full forward).
     5. with GPU kernels of its own (optional): gpu_kernels, the last slot of its AttnMech,
        lists the kernel modules its forward and backward ask gpu_kernel for (with the calls'
        own option builders), so that smollm_init compiles them in parallel before the first
        step (gpu.h's gpu_kernel_prewarm); NULL: they compile one by one on first use. Its line
        in tests/gpu_kcache_check.c checks that the first steps then compile nothing.
     6. the manuals: the room's line in the catalogue above (ONE MECHANISM, ONE ROOM) and its
        name in the schedule grammar below; README.md's Mechanisms table (and where it runs,
        when not on both devices) and its name in the file table's attn.h row.
   Nothing else changes: the flags, spec keys, schedule options, config.json, --help, the run
   identity, checkpoints' metadata and `ablate run` validation follow from the option table,
   and patterns (global/stride/dilation) are refused on it by attn_resolve.
   What adding attn/hier.h took outside attn/hier.h and tests/test_hier.c: 3 files, 11 edit
   sites: attn.h 5 (the registry line, the two includes, the catalogue's line and the schedule
   grammar's name list in this block), Makefile 2 (EXTRA_TESTS, the double rule), README.md 4
   (the table's line, the devices sentence above it, the pointer to the rooms' manuals, the file
   table's row).

   PER-LAYER SCHEDULES (attn_schedule_*): a string of items separated by ',' or '+'
   ('+' inside study axes, where ',' separates values):
     schedule := item { (',' | '+') item }
     item     := name { ':' option } [ '*' count ]
     name     := a registered name (mha, gqa, mqa, swa, mla, mga, gdn, dsa, hier, identity)
     option   := W (a bare integer: the window) | key '=' integer   (key: any option's name)
   "swa:256*3,gqa" is three sliding-window layers (W = 256) then one GQA layer; the expanded
   pattern repeats over the depth (layer l takes item l mod length). Options not given come
   from the base config (the model's --window, --kv-heads, ...).

   PARAMETERS of one block use the PyTorch [out, in] layout and Hugging Face names (each room
   lists its own). Forward: x [B*T, d] -> out [B*T, d]; backward accumulates weight gradients
   and writes dx.
*/
#ifndef ATTN_H
#define ATTN_H

/* linkage of every public function of attn.h and its rooms: extern, or static with ATTN_STATIC
   or ABLATE_STATIC (each .c file that defines the implementation then gets its own copy) */
#ifndef ATTNDEF
#if defined(ATTN_STATIC) || defined(ABLATE_STATIC)
#define ATTNDEF static
#else
#define ATTNDEF extern
#endif
#endif

#include "ops.h"
#include <stddef.h>

/* sizes an option may take (smollm.h's SMOLLM_MAX_WIDTH and SMOLLM_MAX_SEQ are these) */
#define ATTN_MAX_WIDTH 65536      /* heads, head dims, latents */
#define ATTN_MAX_TOKENS 1048576   /* windows, top-k, strides, blocks: within a context */
#define ATTN_MAX_STEPS 1000000000 /* step counts of a training-stage schedule */

/* option flags */
enum {
    ATTN_OPT_BOOL = 1 /* 0 or 1; `--key` alone on the command line sets it */
};

/* the options every mechanism reads (rooms refuse the ones they cannot honour):
   X(field, name, min, max, flags, help) */
#define ATTN_OPTIONS_common(X)                                                                                      \
    X(n_kv_heads, "kv_heads", 0, ATTN_MAX_WIDTH, 0,                                                                  \
      "KV heads; must divide heads (gqa default heads/3, else /2, else 1; mha: heads; mqa: 1)")                      \
    X(qk_norm, "qk_norm", 0, 1, ATTN_OPT_BOOL, "RMSNorm on each head's q and k before RoPE (mha, gqa, mqa, swa, dsa; mla: after)") \
    X(window, "window", 0, ATTN_MAX_TOKENS, 0, "sliding window: token i sees i-W+1..i (0: full causal)")           \
    X(attn_dropout, "attn_dropout", 0, 999, 0,                                                                       \
      "dropout on the attention probabilities in training, per mille (100 = p 0.1; mha, gqa, mqa, swa, mla, mga)")

#include "attn/dense.h"
#include "attn/identity.h"
#include "attn/mla.h"
#include "attn/mga.h"
#include "attn/gdn.h"
#include "attn/dsa.h"
#include "attn/hier.h"

#ifdef __cplusplus
extern "C" {
#endif

/* THE REGISTRY: one line per attention name. K(ENUM, name, room) names a mechanism and its
   room (attn/room.h); A(ENUM, name, room) is a second name for a room already listed (GQA, MQA
   and SWA are the dense room with other defaults). The order is the order of AttnKind. */
#define ATTN_REGISTRY(K, A)      \
    K(MHA, mha, dense)           \
    A(GQA, gqa, dense)           \
    A(MQA, mqa, dense)           \
    K(IDENTITY, identity, identity) \
    A(SWA, swa, dense)           \
    K(MLA, mla, mla)             \
    K(MGA, mga, mga)             \
    K(GDN, gdn, gdn)             \
    K(DSA, dsa, dsa)             \
    K(HIER, hier, hier)

#define ATTN_KIND_ENUM_(E, name, room) ATTN_##E,
typedef enum { ATTN_DEFAULT = 0, ATTN_REGISTRY(ATTN_KIND_ENUM_, ATTN_KIND_ENUM_) ATTN_KIND_COUNT } AttnKind;
#undef ATTN_KIND_ENUM_
#define ATTN_KIND_LAST (ATTN_KIND_COUNT - 1)
/* every registered name, "mha, gqa, ...", for messages (a constant: static tables may hold it) */
#define ATTN_KIND_LIST_ITEM_(E, name, room) ", " #name
#define ATTN_KIND_LIST (&(ATTN_REGISTRY(ATTN_KIND_LIST_ITEM_, ATTN_KIND_LIST_ITEM_))[2])
#define ATTN_MAX_PARAMS 16 /* parameter tensors of one block, at most (GDN: 13) */

/* every option: the common ones, then each room's, in registry order */
#define ATTN_ROOM_OPTIONS_(E, name, room) ATTN_OPTIONS_##room(ATTN_OPTION_X_)
#define ATTN_NO_ROOM_(E, name, room)

typedef struct {
    AttnKind kind;      /* default GQA */
    /* the shape (smollm.h sets them from the model's) */
    int d_model;        /* default 576 */
    int n_heads;        /* default 9 */
    int head_dim;       /* default d_model / n_heads */
    float rope_theta;   /* default 100000 */
    float norm_eps;     /* default 1e-5 */
    /* the options (int each; 0 = default): n_kv_heads, qk_norm, window, then every room's */
#define ATTN_COMMON_X_(field, name, min, max, flags, help) int field;
#define ATTN_OPTION_X_(room, field, name, min, max, flags, help) int field;
    ATTN_OPTIONS_common(ATTN_COMMON_X_)
    ATTN_REGISTRY(ATTN_ROOM_OPTIONS_, ATTN_NO_ROOM_)
#undef ATTN_OPTION_X_
#undef ATTN_COMMON_X_
} AttnConfig;

/* one row of the option table */
typedef struct {
    const char *name;   /* the one spelling */
    const char *field;  /* the AttnConfig field (checkpoints written before the table used it) */
    const char *room;   /* "common" or the room that reads it */
    size_t offset;      /* of the int field in AttnConfig */
    int min, max;
    unsigned flags;     /* ATTN_OPT_* */
    const char *help;
} AttnOption;

ATTNDEF int attn_option_count(void);
ATTNDEF const AttnOption *attn_option_at(int i);
ATTNDEF const AttnOption *attn_option_find(const char *name); /* NULL: no such option */
/* set one option of c from text (an integer in the option's range); -1 with a message naming the
   option, the value and the range */
ATTNDEF int attn_option_set(AttnConfig *c, const AttnOption *o, const char *value, char *err, size_t errlen);
ATTNDEF int *attn_option_field(AttnConfig *c, const AttnOption *o);
ATTNDEF int attn_option_get(const AttnConfig *c, const AttnOption *o);

/* one parameter tensor: name, place in the flat parameter buffer, shape */
typedef struct {
    char name[96];
    size_t offset, numel;
    int rows, cols;     /* cols = 0 for vectors */
    int is_norm;        /* norm scales: no weight decay unless asked, init to 1 */
    int is_embedding;
    int is_output_proj; /* o_proj / down_proj: init scaled by 1/sqrt(2 n_layers) */
} AttnParamSpec;

/* saved activations of one attention block (pointers into the model's arena), and the
   mechanism's state between steps (attn_at_step) */
#define ATTN_ROOM_ACTS_(E, name, room) ATTN_ACTS_##room
#define ATTN_ROOM_SCRATCH_(E, name, room) ATTN_SCRATCH_##room
typedef struct {
    void *q, *k, *v;         /* after QK-norm and RoPE; IDENTITY uses v only ([N, H*hd]) */
    void *att;               /* attention output before o_proj [N, H*hd] */
    ops_real *lse;             /* [B, H, T] */
    /* attn_dropout's stream: drop_on 1 in training forwards (smollm.h sets it and drop's seed,
       layer and counters; the room sets thresh and scale from attn_dropout), 0 in evaluation */
    int drop_on;
    OpsDropout drop;
    ATTN_REGISTRY(ATTN_ROOM_ACTS_, ATTN_NO_ROOM_)
} AttnActs;

/* backward scratch, shared by all layers: the gradients of att, q, k, v, then the rooms' own */
typedef struct {
    void *datt, *dq, *dk, *dv;
    ATTN_REGISTRY(ATTN_ROOM_SCRATCH_, ATTN_NO_ROOM_)
} AttnScratch;
#undef ATTN_ROOM_ACTS_
#undef ATTN_ROOM_SCRATCH_

/* a room's descriptor. Functions a room does not need are NULL (the defaults in brackets). */
struct GpuKernelSpec; /* gpu.h: one kernel module to compile ahead (the CPU-only build never makes one) */
struct AttnCache;
struct AttnGpuCache;
typedef struct {
    const char *room;
    /* after the common defaults (shape, head_dim, window >= 0): the room's defaults and checks */
    int (*resolve)(AttnConfig *c, char *err, size_t errlen);
    int (*gpu_supported)(const AttnConfig *c, char *err, size_t errlen); /* [no limits] */
    int (*param_specs)(const AttnConfig *c, AttnParamSpec *out);
    size_t (*kv_bytes_per_token)(const AttnConfig *c, int bytes_per_elem); /* [0] */
    size_t (*state_bytes)(const AttnConfig *c);                              /* [0] */
    double (*flops_per_token)(const AttnConfig *c, int T);
    void (*init_special)(const AttnConfig *c, ops_real *w, unsigned long long seed); /* [nothing] */
    void (*act_sizes)(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems);
    void (*acts_bind)(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem, int B, int T);
    size_t (*scratch_elems)(const AttnConfig *c, int B, int T);
    void (*scratch_bind)(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T);
    int (*forward)(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out, int B, int T);
    int (*backward)(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                    const void *x, const void *dout, void *dx, int B, int T);
    /* state that changes during training (DSA's dense warm-up and k schedule), kept in AttnActs:
       set for optimizer step `step`; 1 when it changed (a captured CUDA graph is then stale) [0] */
    int (*at_step)(const AttnConfig *c, AttnActs *a, int step, int T);
    /* ---- decoding (generation; attn_decode_*). NULL: the room does not decode (attn_decode_init
       refuses it by name). Kept last so a room written before them still compiles. ---- */
    /* bytes of one sequence's cache holding T tokens (what is really allocated: a window keeps
       W positions, a recurrent state is constant in T) */
    size_t (*cache_bytes)(const AttnConfig *c, int T);
    /* one token: x [B, d] at position k->pos -> out [B, d], appending to the cache (the caller
       advances pos); w the block's ops_real weights; -1: out of host memory */
    int (*decode)(const AttnConfig *c, const ops_real *w, struct AttnCache *k, const ops_real *x, ops_real *out);
    /* the prompt at once into an empty cache (called at pos 0 only; a later chunk goes token by
       token): x [B, T, d] -> out [B, T, d], cache filled. [NULL: decode, one token at a time] */
    int (*prefill)(const AttnConfig *c, const ops_real *w, struct AttnCache *k, const ops_real *x, ops_real *out, int T);
    /* ---- GPU decoding (attn_gpu_decode_*; GPU DECODING below). NULL gpu_decode: the room
       decodes on the CPU only (attn_gpu_decode_init refuses it by name). ---- */
    /* device bytes of one sequence's cache holding T tokens (bf16 keys/values, fp32 state) */
    size_t (*gpu_cache_bytes)(const AttnConfig *c, int T);
    /* device bytes of a step's scratch for B sequences and cap positions (split-K partials,
       derived weights such as MLA's absorbed matrices) [0] */
    size_t (*gpu_scratch_bytes)(const AttnConfig *c, int B, int cap);
    /* once per generation, after the cache and scratch are zeroed: derive what the steps need
       from the weights (absorbed matrices) [nothing] */
    int (*gpu_decode_init)(Gpu *gpu, const AttnConfig *c, const void *w, struct AttnGpuCache *k);
    /* one token: x [B, d] -> out [B, d] (bf16, device) at the position *k->d_pos, appending to
       the cache; reads the position only on the device (a CUDA graph of the step replays at
       every position), allocates nothing, never synchronizes with the host */
    int (*gpu_decode)(Gpu *gpu, const AttnConfig *c, const void *w, struct AttnGpuCache *k, const void *x,
                      void *out);
    /* the prompt at once into an empty cache (pos 0): x [B, T, d] -> out [B, T, d]; may allocate
       and synchronize [NULL: gpu_decode per token] */
    int (*gpu_prefill)(Gpu *gpu, const AttnConfig *c, const void *w, struct AttnGpuCache *k, const void *x,
                       void *out, int T);
    /* ---- JIT: the GPU kernel modules (gpu.h's GpuKernelSpec) this config's forward and
       backward ask gpu_kernel for at B x T on gpu, into out (at most max); returns how many there
       are. smollm_init hands them to gpu_kernel_prewarm, which compiles them in parallel before
       the first step. List them with the calls' own option builders (gpu_attention_kernels,
       gpu_sparse_kernels, gpu_gdn_kernels), so the list follows the calls. [NULL: none listed:
       they compile one by one on first use] ---- */
    int (*gpu_kernels)(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out, int max);
} AttnMech;

/* one layer's decode state for B sequences (attn_decode_init). The room owns mem's layout. */
typedef struct AttnCache {
    AttnConfig c;    /* resolved */
    int B;           /* sequences */
    int cap;         /* positions it may be given (the generation's length) */
    int pos;         /* tokens appended so far: the next token's position */
    size_t bytes;    /* B * attn_decode_cache_bytes(c, cap): mem's size */
    void *mem;       /* zeroed at init */
    ops_real *derived; /* weights a room derives once per generation (MLA's absorbed matrices) */
} AttnCache;

/* one layer's GPU decode state for B sequences (attn_gpu_decode_init): device memory laid out by
   the room. The position lives on the device (*d_pos, owned by the caller and shared by every
   layer of a model) so that one captured CUDA graph serves every step; pos is its host mirror. */
typedef struct AttnGpuCache {
    AttnConfig c;      /* resolved */
    int B, cap;        /* sequences; positions it may be given */
    int pos;           /* host mirror of *d_pos: tokens appended so far */
    int *d_pos;        /* device int: the next token's position (the caller's) */
    size_t bytes;      /* B * gpu_cache_bytes(c, cap): mem's size */
    void *mem;         /* device, zeroed at init */
    size_t scratch_bytes;
    void *scratch;     /* device, gpu_scratch_bytes(c, B, cap); zeroed at init */
} AttnGpuCache;

ATTNDEF const char *attn_kind_name(AttnKind k);
ATTNDEF int attn_kind_parse(const char *s, AttnKind *out);       /* 0 on success */
ATTNDEF const char *attn_kind_list(void);                        /* ATTN_KIND_LIST */
ATTNDEF const AttnMech *attn_mech(AttnKind k);                   /* the room of a resolved kind */
/* fill defaults and check; on error writes a message naming the bad value, returns -1 */
ATTNDEF int attn_resolve(AttnConfig *c, char *err, size_t errlen);
/* parameter tensors of one block; offsets relative to the block; returns the count
   (out may be NULL to ask for the count) */
ATTNDEF int attn_param_specs(const AttnConfig *c, AttnParamSpec *out);
ATTNDEF size_t attn_param_count(const AttnConfig *c);
/* bytes of KV cache one token adds to one layer, at bytes_per_elem per element */
ATTNDEF size_t attn_kv_bytes_per_token(const AttnConfig *c, int bytes_per_elem);
/* forward FLOPs per token of one block at context T (matmuls + scores + mixing) */
ATTNDEF double attn_flops_per_token(const AttnConfig *c, int T);
/* 0 when the GPU path runs this config, else -1 with a message (each room's limits) */
ATTNDEF int attn_gpu_supported(const AttnConfig *c, char *err, size_t errlen);
/* the room's gpu_kernels (AttnMech above): the kernel modules c asks for at B x T on gpu, into
   out (at most max); returns how many there are (0 when the room lists none) */
ATTNDEF int attn_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                             int max);
/* after the generic init (normal matrices, norm scales 1): the tensors a mechanism
   initializes its own way (GDN: convs, A_log, dt_bias); w is the block's fp32 weights */
ATTNDEF void attn_param_init_special(const AttnConfig *c, ops_real *w, unsigned long long seed);
/* recurrent state bytes per sequence of one layer (GDN: constant in T; 0 for the others,
   whose cache grows per token: attn_kv_bytes_per_token) */
ATTNDEF size_t attn_state_bytes(const AttnConfig *c);

/* schedules (grammar above). attn_schedule_length: items after expansion, or -1 with a
   message. attn_schedule_apply: overlay the item of `layer` onto *c (the base config);
   0 on success, else -1 with a message naming the bad item. Neither resolves *c. */
ATTNDEF int attn_schedule_length(const char *sched, char *err, size_t errlen);
ATTNDEF int attn_schedule_apply(const char *sched, int layer, AttnConfig *c, char *err, size_t errlen);

/* activation memory of one block: elements of activation type and of ops_real */
ATTNDEF void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems);
/* carve AttnActs out of the given memory (sizes from attn_act_sizes); the mechanism's
   training state starts at step 0 */
ATTNDEF void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem,
                    ops_real *stat_mem, int B, int T);
ATTNDEF size_t attn_scratch_elems(const AttnConfig *c, int B, int T);
ATTNDEF void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T);
/* the mechanism's state for optimizer step `step` (DSA: dense warm-up, k schedule);
   1 when it changed */
ATTNDEF int attn_at_step(const AttnConfig *c, AttnActs *a, int step, int T);

/* w: the block's compute weights (act type); out [N, d] written */
ATTNDEF int attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x,
                 void *out, int B, int T);
/* dw: the block's weight gradients (accumulated); dx [N, d] written (=). Both return 0, or -1
   when the CPU path runs out of host memory for its temporaries (MGA, DSA's indexer) or the
   config is one the GPU does not run (a caller that skipped attn_gpu_supported): nothing is
   reported, the caller names the layer */
ATTNDEF int attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a,
                  AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T);

/* DECODING (CPU reference; the GPU build runs it on a host copy of the weights). A cache per
   layer; every room decodes exactly what its forward computes (tests/test_decode.c: logits of
   prefill-then-decode equal the full forward's to 1e-9 in double). What each cache holds:
     dense      K and V of the KV heads; with a plain window a ring of W positions; with a
                local+global pattern the first G positions and a ring of W (G + W); dilated, a
                ring of W*R (+ G); strided, every position (its far keys recur through the
                whole prefix: O(T))
     identity   nothing
     mla        the normed latent and the rotated shared key (r + rope per token), decoded in
                the absorbed form (attn_mla_absorbed_forward's algebra); window: a ring
     mga        g (and its norm) and v per position (a ring under a window) and the running sum
                S of 1/den per head; the gate's conv tail (2 rows of x). mga_faithful is refused
                (its normalization reads the future)
     gdn        the recurrent state [H, D, D] and the short conv's tail (conv_size - 1 rows):
                constant in T
     dsa        K, V and the indexer's keys of every position; each step scores the cache,
                takes the top-k (k = attn_topk(c, cap) under topk_pct) and attends to those
   attn_decode_supported: 0, or -1 naming the room that has no decode path (or the option it
   refuses). attn_decode_init: zeroed cache of B sequences for up to cap tokens; -1 with a
   message (unsupported, out of memory). attn_decode_step: x [B, d] -> out [B, d] at position
   k->pos, then pos + 1; -1 with a message at cap or out of memory. attn_decode_prefill: T tokens
   x [B, T, d] -> out [B, T, d]: the dense room (mha, gqa, mqa, swa, patterns) runs its training
   forward over the prompt and copies the rotated K, V into the cache; the other rooms run the
   decode step per token (exact by construction; the GPU's forward prefills of MLA, MGA, GDN and
   DSA, behind tuning.dec_prefill, are under GPU DECODING below). */
ATTNDEF int attn_decode_supported(const AttnConfig *c, char *err, size_t errlen);
ATTNDEF size_t attn_decode_cache_bytes(const AttnConfig *c, int T); /* per sequence; 0 when unsupported */
ATTNDEF int attn_decode_init(AttnCache *k, const AttnConfig *c, int B, int cap, char *err, size_t errlen);
ATTNDEF int attn_decode_step(AttnCache *k, const ops_real *w, const ops_real *x, ops_real *out, char *err, size_t errlen);
ATTNDEF int attn_decode_prefill(AttnCache *k, const ops_real *w, const ops_real *x, ops_real *out, int T, char *err, size_t errlen);
ATTNDEF void attn_decode_free(AttnCache *k);

/* GPU DECODING. The same contract as the CPU's (every room decodes what its forward computes),
   on the device with bf16 activations: tests/gpu_decode_check.c compares each room's steps with
   attn_decode_step on the same (bf16-rounded) weights within bf16 bounds.
   attn_gpu_decode_supported: 0, or -1 naming the room without GPU decode kernels (or the option
   it refuses). attn_gpu_decode_init: zeroed cache and scratch of B sequences x cap positions,
   d_pos the caller's device int (the position), then the room's gpu_decode_init with the block's
   device weights w; -1 with a message. attn_gpu_decode_step: x [B, d] -> out [B, d] (device, act
   type) at the position *d_pos (== k->pos; the caller advances both afterwards, once per model
   step); queued on gpu->stream, nothing allocated: capturable in a CUDA graph.
   attn_gpu_decode_prefill: T tokens x [B, T, d] -> out [B, T, d] into an empty cache: the room's
   gpu_prefill (the training kernels) when attn_gpu_prefill_whole says so, else gpu_decode per
   token (writing *d_pos = t before each); on return k->pos == *d_pos == T.
   attn_gpu_prefill_whole(tuning, c, cap): 1 when the prefill of c into a cache of cap positions
   runs the room's training forward over the whole prompt: always for the dense room; for mla,
   mga, gdn, dsa (k = attn_topk(c, cap) <= SPARSE_MAX_TOPK, the forward's
   limit) and identity (no cache: its forward alone) unless tuning->dec_prefill selects variant 0
   (ablate --tune dec_prefill=0; tests/gpu_decode_check and tests/gpu_decode_rooms_check run every
   room both ways against the CPU reference); gdn only when it selects variant 1 (one case of
   the rooms check is past its bound); 0: one decode step per prompt token, whose cost grows with
   the prompt (ablate bench --only decode then measures context 512 only). NULL tuning: the
   default.
   Each of those prefills is the training forward (its output is the prefill's output), then
   attn/decode.cu.h's fill_rows copies what the decode step would have appended, for all
   positions at once, in the cache's layout:
     mla   the forward's normed latent and the rotated shared key (a head's rotary key columns)
           into the rows [cn | kpe] (the last W positions under a window); with qk_norm every
           head's normed key and zero-padded value into the dense room's layout (gpu_dec_fill)
     mga   g (one more projection), v and |g| into the slots, the forward's running sum S of
           1/den at the last position, the gate's tail (the last 2 rows of x)
     gdn   the chunked forward hands out its final state into the cache's state (AttnGdnActs.state),
           the tail is the last conv_size - 1 rows of the projection
     dsa   the rotated (and QK-normed) K, V and indexer keys; the forward runs with the decode's
           selection: k = attn_topk(c, cap), no warm-up or k ramp, the indexer's products in fp32
   attn_gpu_decode_free releases the device memory.
   Rooms with GPU decode slots: dense (mha, gqa, mqa, swa and the patterns: the CPU cache's slots
   in bf16, [B][slots][k | v]; a step is the fused q|k|v GEMM, QK-norm and RoPE at *d_pos with k, v
   into the slot, split-K attention over the filled slots and o_proj: attn/decode.cu.h; prefill is
   the training forward, then its rotated k, v copied into the slots) and identity (no cache).
   Rooms with GPU decode kernels in attn/decode.cu.h too (checked by tests/gpu_decode_rooms_check.c):
     mla   bf16 rows [cn | RoPE(kr)] per position (a ring under a window); a block per (b, h):
           absorbed query, scores over the latents, softmax, then W_UV,h of the attended latent
     mga   |g| per position and the running sum S in fp32, g and v in bf16 (ring), the gate tail
     gdn   the fp32 state [B][H, D, D] and the bf16 conv tail: constant in T
     dsa   bf16 K, V and indexer keys of every position; the top k (attn_topk at cap) per
           sequence on the device, ties broken as on the CPU (lower position first)
     hier  bf16 [k | v] rows: the window's ring, then one row per block (its mean, written when
           the block completes) and the fp32 running sums; DSA's list attention over the rows
   Each step's scratch (gpu_scratch_bytes, carved with attn_dec_take) holds the projections and
   fp32 scores [B][H][cap]. */
ATTNDEF int attn_gpu_decode_supported(const AttnConfig *c, char *err, size_t errlen);
ATTNDEF size_t attn_gpu_decode_cache_bytes(const AttnConfig *c, int T); /* per sequence; 0: unsupported */
ATTNDEF int attn_gpu_decode_init(Gpu *gpu, AttnGpuCache *k, const AttnConfig *c, const void *w, int B, int cap,
                                 int *d_pos, char *err, size_t errlen);
ATTNDEF int attn_gpu_decode_step(Gpu *gpu, AttnGpuCache *k, const void *w, const void *x, void *out, char *err,
                                 size_t errlen);
ATTNDEF int attn_gpu_decode_prefill(Gpu *gpu, AttnGpuCache *k, const void *w, const void *x, void *out, int T,
                                    char *err, size_t errlen);
struct GpuTuning; /* gpu.h (declared in the CPU-only build too) */
ATTNDEF int attn_gpu_prefill_whole(const struct GpuTuning *tuning, const AttnConfig *c, int cap);
ATTNDEF void attn_gpu_decode_free(Gpu *gpu, AttnGpuCache *k);
#ifndef ABLATE_NO_CUDA
#include "attn/decode.cu.h" /* GpuDecShape */
/* the dense room's step as parts, for a caller that fuses them (smollm.h's fused decode step,
   attn/decode_fused.cu.h): the kernels' shape of k's cache and the step's device weights (within
   the block's w): the fused q|k|v [(H + 2 KV) hd, d], o [d, H hd] and the QK-norm scales (NULL
   without QK-norm). 0, or -1 when k's room is not the dense one */
typedef struct { GpuDecShape sh; const void *wqkv, *wo, *qn, *kn; } AttnGpuDenseStep;
ATTNDEF int attn_gpu_decode_dense(const Gpu *gpu, const AttnGpuCache *k, const void *w, AttnGpuDenseStep *out);
#endif

/* rooms' public extras */
/* MLA's inference form (CPU): up-projections absorbed into the query and the output,
   attention over the cached latent; same out [N, d] as attn_forward; -1: out of host memory */
ATTNDEF int attn_mla_absorbed_forward(const AttnConfig *c, const ops_real *w, const ops_real *x, ops_real *out, int B, int T);
/* DSA: keys each query attends to at context T (the buffers' size) */
ATTNDEF int attn_topk(const AttnConfig *c, int T);


#ifdef __cplusplus
}
#endif
#endif /* ATTN_H */

/* ======================================================================= */
#ifdef ATTN_IMPLEMENTATION
#ifndef ATTN_IMPLEMENTATION_DONE
#define ATTN_IMPLEMENTATION_DONE

#include "gpu.h" /* GpuTuning (both builds; it also settles ABLATE_NO_CUDA) */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <stdint.h>
#include <math.h>

/* ---- the rooms' toolkit ---- */

/* take n elements of size es from a moving cursor (a NULL base measures) */
static void *attn_carve(char **cur, size_t n, size_t es) { void *p = *cur; *cur += n * es; return p; }

static void attn_spec_set(AttnParamSpec *p, const char *name, size_t *off, int rows, int cols) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = *off;
    p->rows = rows;
    p->cols = cols;
    p->numel = (size_t)rows * (cols ? cols : 1);
    p->is_norm = cols == 0;
    p->is_embedding = 0;
    p->is_output_proj = 0;
    *off += p->numel;
}

/* offset of the named tensor within the block (every caller asks for one that exists) */
static size_t attn_spec_off(const AttnConfig *c, const char *name) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    int n = attn_param_specs(c, p);
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].name, name)) return p[i].offset;
    fprintf(stderr, "attn: no tensor %s in attn %s\n", name, attn_kind_name(c->kind));
    abort();
}

/* element offset -> pointer, for weights stored in activation precision */
static const void *attn_wat(const Gpu *gpu, const void *base, size_t off) {
    return (const char *)base + off * ops_act_size(gpu);
}
/* element offset -> writable pointer, for activations */
static void *attn_act_at(const Gpu *gpu, void *base, size_t off) { return (char *)base + off * ops_act_size(gpu); }

/* zeroed host scratch of the CPU paths; NULL when memory runs out (the caller frees what it got
   and returns -1) */
static ops_real *attn_tmp(size_t n) { return calloc(n ? n : 1, sizeof(ops_real)); }

/* the first key query t sees under a window (0: all) */
static int attn_first_key(int t, int window) { return (window > 0 && t - window + 1 > 0) ? t - window + 1 : 0; }

/* ---- decoding helpers of the rooms ---- */

/* RoPE of nh heads of one token at position pos (ops.h's rotation: pairs (i, i + rd/2), angle
   pos * theta^(-2i/rd)); heads ld apart, the first rd elements of each rotate */
static void attn_rope_at(ops_real *x, int nh, int ld, int rd, float theta, int pos) {
    int half = rd / 2;
    for (int i = 0; i < half; i++) {
        double ang = pos * pow((double)theta, -2.0 * i / rd);
        ops_real cs = cos(ang), sn = sin(ang);
        for (int h = 0; h < nh; h++) {
            ops_real *p = x + (size_t)h * ld, a = p[i], b = p[i + half];
            p[i] = a * cs - b * sn;
            p[i + half] = b * cs + a * sn;
        }
    }
}

/* o [hd] = softmax_s(scale q . K[s]) V[s] over the n rows given (key and value rows by pointer);
   p holds n */
static void attn_dec_attend(ops_real *o, const ops_real *q, const ops_real *const *ks, const ops_real *const *vs, int n,
                            int hd, int dv, ops_real scale, ops_real *p) {
    ops_real mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        ops_real a = 0;
        for (int i = 0; i < hd; i++) a += q[i] * ks[j][i];
        p[j] = a * scale;
        if (p[j] > mx) mx = p[j];
    }
    for (int i = 0; i < dv; i++) o[i] = 0;
    for (int j = 0; j < n; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < dv; i++) o[i] += p[j] / sum * vs[j][i];
}

/* positions a cache keeps: a ring of W under a plain window, else all cap */
static int attn_dec_slots(int window, int cap) { return window > 0 && window < cap ? window : cap; }

#include "attn/decode.cu.h" /* the split-K rule (gpu_dec_split_rows), in the CPU-only build too */

/* the GPU decode scratch's next piece of `bytes` at *cur, 256-byte aligned: the MLA, MGA, GDN and
   DSA rooms carve their scratch (gpu_scratch_bytes, gpu_decode) with it; from a NULL base the
   carving only measures (cur - base: the bytes) */
static void *attn_dec_take(char **cur, size_t bytes) {
    void *p = *cur;
    *cur += (bytes + 255) / 256 * 256;
    return p;
}

#ifndef ABLATE_NO_CUDA
/* a room's gpu_prefill runs its training forward over the prompt: activations for B x T on the
   device, bound in pf->a (a room may set more of pf->a before attn_forward: GDN's final-state
   pointer); attn_gpu_prefill_end waits for the queued kernels that read them, then frees them */
typedef struct { void *am; ops_real *sm; AttnActs a; } AttnGpuPrefill;
static void attn_gpu_prefill_begin(Gpu *gpu, const AttnConfig *c, int B, int T, AttnGpuPrefill *pf) {
    size_t ae, se;
    attn_act_sizes(c, B, T, &ae, &se);
    pf->am = ops_alloc(gpu, ae * ops_act_size(gpu) + 16);
    pf->sm = (ops_real *)ops_alloc(gpu, se * sizeof(ops_real) + 16);
    attn_acts_bind(c, &pf->a, gpu, pf->am, pf->sm, B, T);
}
static void attn_gpu_prefill_end(Gpu *gpu, AttnGpuPrefill *pf) {
    gpu_sync(gpu); /* the queued kernels read the activations freed here */
    ops_free(gpu, pf->am);
    ops_free(gpu, pf->sm);
}
#endif

/* ---- the rooms ---- */
#define ATTN_ROOMS_NOW
#include "attn/dense.h"
#include "attn/identity.h"
#include "attn/mla.h"
#include "attn/mga.h"
#include "attn/gdn.h"
#include "attn/dsa.h"
#include "attn/hier.h"

/* ---- the registry as tables ---- */
#define ATTN_NAME_(E, name, room) #name,
static const char *const attn_names_[] = {"default", ATTN_REGISTRY(ATTN_NAME_, ATTN_NAME_)};
#undef ATTN_NAME_
#define ATTN_MECH_(E, name, room) &attn_room_##room,
static const AttnMech *const attn_mechs_[] = {NULL, ATTN_REGISTRY(ATTN_MECH_, ATTN_MECH_)};
#undef ATTN_MECH_

#define ATTN_COMMON_ROW_(field, name, min, max, flags, help) {name, #field, "common", offsetof(AttnConfig, field), min, max, flags, help},
#define ATTN_ROW_(room, field, name, min, max, flags, help) {name, #field, #room, offsetof(AttnConfig, field), min, max, flags, help},
#define ATTN_ROOM_ROWS_(E, name, room) ATTN_OPTIONS_##room(ATTN_ROW_)
static const AttnOption attn_option_rows_[] = {
    ATTN_OPTIONS_common(ATTN_COMMON_ROW_)
    ATTN_REGISTRY(ATTN_ROOM_ROWS_, ATTN_NO_ROOM_)
};
#undef ATTN_COMMON_ROW_
#undef ATTN_ROW_
#undef ATTN_ROOM_ROWS_

ATTNDEF int attn_option_count(void) { return (int)(sizeof attn_option_rows_ / sizeof *attn_option_rows_); }
ATTNDEF const AttnOption *attn_option_at(int i) { return i >= 0 && i < attn_option_count() ? &attn_option_rows_[i] : NULL; }

ATTNDEF const AttnOption *attn_option_find(const char *name) {
    for (int i = 0; i < attn_option_count(); i++)
        if (!strcmp(attn_option_rows_[i].name, name)) return &attn_option_rows_[i];
    return NULL;
}

ATTNDEF int *attn_option_field(AttnConfig *c, const AttnOption *o) { return (int *)(void *)((char *)c + o->offset); }
ATTNDEF int attn_option_get(const AttnConfig *c, const AttnOption *o) { return *(const int *)(const void *)((const char *)c + o->offset); }

ATTNDEF int attn_option_set(AttnConfig *c, const AttnOption *o, const char *value, char *err, size_t errlen) {
    char *end;
    long v = strtol(value, &end, 10);
    if (end == value || *end || v < o->min || v > o->max) {
        snprintf(err, errlen, "%s expects %s %d..%d, got '%s'", o->name,
                 (o->flags & ATTN_OPT_BOOL) ? "0 or 1:" : "an integer", o->min, o->max, value);
        return -1;
    }
    *attn_option_field(c, o) = (int)v;
    return 0;
}

ATTNDEF const char *attn_kind_name(AttnKind k) { return (k >= 0 && k <= ATTN_KIND_LAST) ? attn_names_[k] : "?"; }

ATTNDEF int attn_kind_parse(const char *s, AttnKind *out) {
    for (int i = 1; i <= ATTN_KIND_LAST; i++)
        if (strcmp(s, attn_names_[i]) == 0) { *out = (AttnKind)i; return 0; }
    return -1;
}

ATTNDEF const char *attn_kind_list(void) { return ATTN_KIND_LIST; }

ATTNDEF const AttnMech *attn_mech(AttnKind k) { return k > 0 && k <= ATTN_KIND_LAST ? attn_mechs_[k] : NULL; }

/* ---- dispatch ---- */

ATTNDEF int attn_resolve(AttnConfig *c, char *err, size_t errlen) {
    if (c->kind == ATTN_DEFAULT) c->kind = ATTN_GQA;
    const AttnMech *m = attn_mech(c->kind);
    if (!m) {
        snprintf(err, errlen, "unknown attention kind %d", (int)c->kind);
        return -1;
    }
    if (c->d_model == 0) c->d_model = 576;
    if (c->n_heads == 0) c->n_heads = 9;
    if (c->rope_theta == 0) c->rope_theta = 100000.0f;
    if (c->norm_eps == 0) c->norm_eps = 1e-5f;
    if (c->d_model < 1 || c->n_heads < 1) {
        snprintf(err, errlen, "d_model %d and heads %d must be positive", c->d_model, c->n_heads);
        return -1;
    }
    if (c->head_dim == 0) {
        if (c->d_model % c->n_heads) {
            snprintf(err, errlen, "d_model %d is not divisible by heads %d (or give head_dim)",
                     c->d_model, c->n_heads);
            return -1;
        }
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->head_dim < 2 || c->head_dim % 2) {
        snprintf(err, errlen, "head_dim %d must be even and >= 2 (RoPE rotates pairs)", c->head_dim);
        return -1;
    }
    if (c->window < 0) {
        snprintf(err, errlen, "window %d must be >= 1 (or 0 for full causal attention)", c->window);
        return -1;
    }
    for (int i = 0; i < attn_option_count(); i++) { /* every option within its row's range */
        const AttnOption *o = &attn_option_rows_[i];
        int v = *attn_option_field(c, o);
        if (v < o->min || v > o->max) {
            snprintf(err, errlen, "%s %d is out of range (expected %d..%d)", o->name, v, o->min, o->max);
            return -1;
        }
    }
    if (m->resolve(c, err, errlen)) return -1;
    /* the rooms whose attention is the dense room's softmax core (attn_softmax_core_*, with ops.h's
       op_attention_dropout_*) drop probabilities; the others have no P of that kind to drop */
    if (c->attn_dropout > 0 && strcmp(m->room, "dense") && strcmp(m->room, "mla") && strcmp(m->room, "mga")) {
        snprintf(err, errlen, "attn_dropout %d: %s has no dropout on its attention probabilities; it runs "
                 "attn_dropout 0 (mha, gqa, mqa, swa, mla and mga run any; resid_dropout works with every kind)",
                 c->attn_dropout, attn_kind_name(c->kind));
        return -1;
    }
    if (c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads) {
        snprintf(err, errlen, "heads %d is not divisible by kv_heads %d", c->n_heads, c->n_kv_heads);
        return -1;
    }
    return attn_dense_pattern_check(c, err, errlen);
}

ATTNDEF int attn_gpu_supported(const AttnConfig *c, char *err, size_t errlen) {
    const AttnMech *m = attn_mech(c->kind);
    return m->gpu_supported ? m->gpu_supported(c, err, errlen) : 0;
}

ATTNDEF int attn_gpu_kernels(const Gpu *gpu, const AttnConfig *c, int B, int T, struct GpuKernelSpec *out,
                             int max) {
    const AttnMech *m = attn_mech(c->kind);
    return m->gpu_kernels ? m->gpu_kernels(gpu, c, B, T, out, max) : 0;
}

ATTNDEF int attn_param_specs(const AttnConfig *c, AttnParamSpec *out) {
    AttnParamSpec tmp[ATTN_MAX_PARAMS];
    return attn_mech(c->kind)->param_specs(c, out ? out : tmp);
}

ATTNDEF size_t attn_param_count(const AttnConfig *c) {
    AttnParamSpec p[ATTN_MAX_PARAMS];
    int n = attn_param_specs(c, p);
    return p[n - 1].offset + p[n - 1].numel;
}

ATTNDEF size_t attn_kv_bytes_per_token(const AttnConfig *c, int bytes_per_elem) {
    const AttnMech *m = attn_mech(c->kind);
    return m->kv_bytes_per_token ? m->kv_bytes_per_token(c, bytes_per_elem) : 0;
}

ATTNDEF size_t attn_state_bytes(const AttnConfig *c) {
    const AttnMech *m = attn_mech(c->kind);
    return m->state_bytes ? m->state_bytes(c) : 0;
}

ATTNDEF void attn_param_init_special(const AttnConfig *c, ops_real *w, unsigned long long seed) {
    const AttnMech *m = attn_mech(c->kind);
    if (m->init_special) m->init_special(c, w, seed);
}

ATTNDEF double attn_flops_per_token(const AttnConfig *c, int T) { return attn_mech(c->kind)->flops_per_token(c, T); }

ATTNDEF void attn_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    attn_mech(c->kind)->act_sizes(c, B, T, act_elems, stat_elems);
}

ATTNDEF void attn_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, void *act_mem, ops_real *stat_mem, int B,
                    int T) {
    memset(a, 0, sizeof *a);
    attn_mech(c->kind)->acts_bind(c, a, gpu, (char *)act_mem, (char *)stat_mem, B, T);
}

ATTNDEF size_t attn_scratch_elems(const AttnConfig *c, int B, int T) { return attn_mech(c->kind)->scratch_elems(c, B, T); }

ATTNDEF void attn_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, void *mem, int B, int T) {
    memset(s, 0, sizeof *s);
    attn_mech(c->kind)->scratch_bind(c, s, gpu, (char *)mem, B, T);
}

ATTNDEF int attn_at_step(const AttnConfig *c, AttnActs *a, int step, int T) {
    const AttnMech *m = attn_mech(c->kind);
    return m->at_step ? m->at_step(c, a, step, T) : 0;
}

/* a GPU call for a config the GPU does not run is a caller that skipped attn_gpu_supported:
   -1 then (attn_forward and attn_backward return it, computing nothing) */
static int attn_gpu_refuses(const Gpu *gpu, const AttnConfig *c) {
    char err[256];
    return gpu && attn_gpu_supported(c, err, sizeof err) ? -1 : 0;
}

ATTNDEF int attn_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out, int B,
                 int T) {
    if (attn_gpu_refuses(gpu, c)) return -1;
    return attn_mech(c->kind)->forward(gpu, c, w, a, x, out, B, T);
}

ATTNDEF int attn_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a, AttnScratch *s,
                  const void *x, const void *dout, void *dx, int B, int T) {
    if (attn_gpu_refuses(gpu, c)) return -1;
    return attn_mech(c->kind)->backward(gpu, c, w, dw, a, s, x, dout, dx, B, T);
}

/* ---- decoding ---- */

ATTNDEF int attn_decode_supported(const AttnConfig *c, char *err, size_t errlen) {
    const AttnMech *m = attn_mech(c->kind);
    if (!m || !m->decode || !m->cache_bytes) {
        snprintf(err, errlen, "attn %s (room %s) has no decode path yet: generation needs a room with "
                 "cache_bytes and decode (expected one of identity, mha, gqa, mqa, swa, mla, mga, gdn, dsa, hier)",
                 attn_kind_name(c->kind), m ? m->room : "?");
        return -1;
    }
    if (c->kind == ATTN_MGA && c->mga_faithful) {
        snprintf(err, errlen, "attn mga with mga_faithful 1 cannot decode: its normalization sums over future "
                 "tokens (expected mga_faithful 0)");
        return -1;
    }
    return 0;
}

ATTNDEF size_t attn_decode_cache_bytes(const AttnConfig *c, int T) {
    const AttnMech *m = attn_mech(c->kind);
    char err[256];
    return m && m->cache_bytes && !attn_decode_supported(c, err, sizeof err) ? m->cache_bytes(c, T) : 0;
}

ATTNDEF int attn_decode_init(AttnCache *k, const AttnConfig *c, int B, int cap, char *err, size_t errlen) {
    memset(k, 0, sizeof *k);
    if (attn_decode_supported(c, err, errlen)) return -1;
    if (B < 1 || cap < 1) {
        snprintf(err, errlen, "decode cache of %d sequences x %d positions: expected both >= 1", B, cap);
        return -1;
    }
    k->c = *c;
    k->B = B;
    k->cap = cap;
    k->bytes = (size_t)B * attn_decode_cache_bytes(c, cap);
    k->mem = calloc(k->bytes ? k->bytes : 1, 1);
    if (!k->mem) {
        snprintf(err, errlen, "decode cache of attn %s: out of host memory for %zu bytes", attn_kind_name(c->kind),
                 k->bytes);
        return -1;
    }
    return 0;
}

ATTNDEF int attn_decode_step(AttnCache *k, const ops_real *w, const ops_real *x, ops_real *out, char *err, size_t errlen) {
    if (k->pos >= k->cap) {
        snprintf(err, errlen, "decode at position %d: the cache holds %d positions (expected pos < cap)", k->pos,
                 k->cap);
        return -1;
    }
    if (attn_mech(k->c.kind)->decode(&k->c, w, k, x, out)) {
        snprintf(err, errlen, "decode of attn %s at position %d: out of host memory", attn_kind_name(k->c.kind),
                 k->pos);
        return -1;
    }
    k->pos++;
    return 0;
}

ATTNDEF int attn_decode_prefill(AttnCache *k, const ops_real *w, const ops_real *x, ops_real *out, int T, char *err,
                        size_t errlen) {
    const AttnMech *m = attn_mech(k->c.kind);
    if (T < 0 || k->pos + T > k->cap) {
        snprintf(err, errlen, "prefill of %d tokens at position %d: the cache holds %d positions", T, k->pos, k->cap);
        return -1;
    }
    if (m->prefill && k->pos == 0 && T > 0) {
        if (m->prefill(&k->c, w, k, x, out, T)) {
            snprintf(err, errlen, "prefill of attn %s: out of host memory", attn_kind_name(k->c.kind));
            return -1;
        }
        k->pos += T;
        return 0;
    }
    int B = k->B, d = k->c.d_model;
    ops_real *xt = malloc(sizeof(ops_real) * B * d), *ot = malloc(sizeof(ops_real) * B * d);
    int rc = xt && ot ? 0 : -1;
    if (rc) snprintf(err, errlen, "prefill of attn %s: out of host memory", attn_kind_name(k->c.kind));
    for (int t = 0; t < T && !rc; t++) {
        for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * d, x + ((size_t)b * T + t) * d, sizeof(ops_real) * d);
        rc = attn_decode_step(k, w, xt, ot, err, errlen);
        for (int b = 0; b < B && !rc; b++) memcpy(out + ((size_t)b * T + t) * d, ot + (size_t)b * d, sizeof(ops_real) * d);
    }
    free(xt);
    free(ot);
    return rc;
}

ATTNDEF void attn_decode_free(AttnCache *k) {
    free(k->mem);
    free(k->derived);
    memset(k, 0, sizeof *k);
}

/* ---- GPU decoding ---- */

ATTNDEF int attn_gpu_decode_supported(const AttnConfig *c, char *err, size_t errlen) {
    const AttnMech *m = attn_mech(c->kind);
    if (attn_decode_supported(c, err, errlen)) return -1;
    if (!m->gpu_decode || !m->gpu_cache_bytes) {
        snprintf(err, errlen, "attn %s (room %s) decodes on the CPU only: it has no GPU decode kernels yet "
                 "(expected --device cpu for it)", attn_kind_name(c->kind), m->room);
        return -1;
    }
    return attn_gpu_supported(c, err, errlen);
}

ATTNDEF size_t attn_gpu_decode_cache_bytes(const AttnConfig *c, int T) {
    const AttnMech *m = attn_mech(c->kind);
    char err[256];
    return m && m->gpu_decode && m->gpu_cache_bytes && !attn_gpu_decode_supported(c, err, sizeof err)
               ? m->gpu_cache_bytes(c, T) : 0;
}

ATTNDEF int attn_gpu_decode_init(Gpu *gpu, AttnGpuCache *k, const AttnConfig *c, const void *w, int B, int cap,
                                 int *d_pos, char *err, size_t errlen) {
    memset(k, 0, sizeof *k);
    if (!gpu || !d_pos) {
        snprintf(err, errlen, "GPU decode cache: expected a GPU and a device position (got %s)",
                 gpu ? "no position" : "no GPU");
        return -1;
    }
    if (attn_gpu_decode_supported(c, err, errlen)) return -1;
    if (B < 1 || cap < 1) {
        snprintf(err, errlen, "GPU decode cache of %d sequences x %d positions: expected both >= 1", B, cap);
        return -1;
    }
    const AttnMech *m = attn_mech(c->kind);
    k->c = *c;
    k->B = B;
    k->cap = cap;
    k->d_pos = d_pos;
    k->bytes = (size_t)B * m->gpu_cache_bytes(c, cap);
    k->scratch_bytes = m->gpu_scratch_bytes ? m->gpu_scratch_bytes(c, B, cap) : 0;
    k->mem = ops_alloc(gpu, k->bytes ? k->bytes : 16);
    k->scratch = ops_alloc(gpu, k->scratch_bytes ? k->scratch_bytes : 16);
    if (m->gpu_decode_init && m->gpu_decode_init(gpu, c, w, k)) {
        snprintf(err, errlen, "GPU decode cache of attn %s: deriving its decode weights failed",
                 attn_kind_name(c->kind));
        attn_gpu_decode_free(gpu, k);
        return -1;
    }
    return 0;
}

ATTNDEF int attn_gpu_decode_step(Gpu *gpu, AttnGpuCache *k, const void *w, const void *x, void *out, char *err,
                                 size_t errlen) {
    if (k->pos >= k->cap) {
        snprintf(err, errlen, "decode at position %d: the cache holds %d positions (expected pos < cap)", k->pos,
                 k->cap);
        return -1;
    }
    if (attn_mech(k->c.kind)->gpu_decode(gpu, &k->c, w, k, x, out)) {
        snprintf(err, errlen, "GPU decode of attn %s at position %d failed", attn_kind_name(k->c.kind), k->pos);
        return -1;
    }
    return 0;
}

ATTNDEF int attn_gpu_decode_prefill(Gpu *gpu, AttnGpuCache *k, const void *w, const void *x, void *out, int T,
                                    char *err, size_t errlen) {
    const AttnMech *m = attn_mech(k->c.kind);
    if (T < 1 || k->pos != 0 || T > k->cap) {
        snprintf(err, errlen, "GPU prefill of %d tokens at position %d: expected an empty cache (pos 0) and "
                 "1 <= T <= %d", T, k->pos, k->cap);
        return -1;
    }
#ifndef ABLATE_NO_CUDA
    int whole = attn_gpu_prefill_whole(&gpu->tuning, &k->c, k->cap);
#else
    int whole = attn_gpu_prefill_whole(NULL, &k->c, k->cap);
#endif
    if (whole) {
        if (m->gpu_prefill(gpu, &k->c, w, k, x, out, T)) {
            snprintf(err, errlen, "GPU prefill of attn %s over %d tokens failed", attn_kind_name(k->c.kind), T);
            return -1;
        }
    } else {
        /* token by token: gather row t of each sequence, decode, scatter (row copies on the device) */
        size_t es = ops_act_size(gpu), row = es * (size_t)k->c.d_model;
        char *xt = (char *)ops_alloc(gpu, row * k->B), *ot = (char *)ops_alloc(gpu, row * k->B);
        for (int t = 0; t < T; t++) {
            ops_to_device(gpu, k->d_pos, &t, sizeof t);
            for (int b = 0; b < k->B; b++)
                ops_copy(gpu, xt + row * b, (const char *)x + row * ((size_t)b * T + t), row);
            k->pos = t;
            if (attn_gpu_decode_step(gpu, k, w, xt, ot, err, errlen)) {
                ops_free(gpu, xt);
                ops_free(gpu, ot);
                return -1;
            }
            for (int b = 0; b < k->B; b++) ops_copy(gpu, (char *)out + row * ((size_t)b * T + t), ot + row * b, row);
        }
        ops_free(gpu, xt);
        ops_free(gpu, ot);
    }
    ops_to_device(gpu, k->d_pos, &T, sizeof T); /* pageable source: copied out before it returns */
    k->pos = T;
    return 0;
}

ATTNDEF int attn_gpu_prefill_whole(const struct GpuTuning *tuning, const AttnConfig *c, int cap) {
    const AttnMech *m = attn_mech(c->kind);
    if (!m || !m->gpu_prefill) return 0;
    if (m == &attn_room_dense) return 1; /* compared with the CPU on the GPU: the default */
    /* DSA's forward takes at most SPARSE_MAX_TOPK keys per query; its decode step takes any k */
    if (c->kind == ATTN_DSA && attn_topk(c, cap) > SPARSE_MAX_TOPK) return 0;
    /* GDN's forward prefill only when asked for (dec_prefill=1): tests/gpu_decode_rooms_check's
       conv_size 1 case after a 24-token forward prefill decodes 4.2e-2 from the CPU (bound 3e-2;
       H200, with the chunked forward's tensor-core or fp32 products alike), not yet explained */
    if (c->kind == ATTN_GDN) return tuning && tuning->dec_prefill == GPU_TUNE_VARIANT(1);
    return !tuning || gpu_tuned(tuning->dec_prefill, 1);
}

ATTNDEF void attn_gpu_decode_free(Gpu *gpu, AttnGpuCache *k) {
    if (k->mem) ops_free(gpu, k->mem);
    if (k->scratch) ops_free(gpu, k->scratch);
    memset(k, 0, sizeof *k);
}

/* ---- per-layer schedules ---- */

/* the spellings of schedule options before each option had one name */
static const char *const attn_sched_renamed_[][2] = {
    {"kv", "kv_heads"},          {"latent", "latent_dim"},        {"q_latent", "q_latent_dim"},
    {"rope", "rope_dim"},        {"v_dim", "v_head_dim"},         {"gate", "mga_gate"},
    {"faithful", "mga_faithful"}, {"conv", "conv_size"},          {"iheads", "indexer_heads"},
    {"idim", "indexer_dim"},     {"ifp32", "indexer_fp32"},       {"pblock", "pattern_block"},
};

/* one item "name:opt:opt*count" (NUL-terminated copy): applies name and options to *c when
   c != NULL, gives the repetition in *count */
static int attn_sched_item(char *item, AttnConfig *c, int *count, char *err, size_t errlen) {
    char whole[128];
    snprintf(whole, sizeof whole, "%s", item);
    *count = 1;
    char *star = strchr(item, '*');
    if (star) {
        *star = 0;
        char *end;
        long n = strtol(star + 1, &end, 10);
        if (end == star + 1 || *end || n < 1 || n > 1 << 20) {
            snprintf(err, errlen, "attn-layers item '%s': repetition '%s' must be an integer 1..%d", whole, star + 1,
                     1 << 20);
            return -1;
        }
        *count = (int)n;
    }
    char *opt = strchr(item, ':');
    if (opt) *opt++ = 0;
    AttnKind k;
    if (attn_kind_parse(item, &k)) {
        snprintf(err, errlen, "attn-layers item '%s': unknown mechanism '%s' (expected one of %s)", whole, item,
                 attn_kind_list());
        return -1;
    }
    AttnConfig tmp = c ? *c : (AttnConfig){0};
    tmp.kind = k;
    while (opt) {
        char *next = strchr(opt, ':');
        if (next) *next++ = 0;
        char *eq = strchr(opt, '=');
        const char *key = "window", *val = opt;
        if (eq) { *eq = 0; key = opt; val = eq + 1; }
        const AttnOption *o = attn_option_find(key);
        if (!o) {
            for (size_t i = 0; i < sizeof attn_sched_renamed_ / sizeof *attn_sched_renamed_; i++)
                if (!strcmp(key, attn_sched_renamed_[i][0])) {
                    snprintf(err, errlen, "attn-layers item '%s': option '%s' is now spelled '%s', as the spec key "
                             "(and --%s on the command line, with - or _)", whole, key, attn_sched_renamed_[i][1],
                             attn_sched_renamed_[i][1]);
                    return -1;
                }
            snprintf(err, errlen, "attn-layers item '%s': unknown option '%s' (expected a window or KEY=N with KEY "
                     "an attention option: ablate run --help lists them)", whole, key);
            return -1;
        }
        char e2[200];
        if (attn_option_set(&tmp, o, val, e2, sizeof e2)) {
            snprintf(err, errlen, "attn-layers item '%s': %s", whole, e2);
            return -1;
        }
        opt = next;
    }
    if (c) *c = tmp;
    return 0;
}

/* walks the items; stops at the one covering expanded index `want` (applied to c) or counts them */
static int attn_sched_walk(const char *sched, int want, AttnConfig *c, char *err, size_t errlen) {
    int total = 0;
    const char *s = sched;
    if (!s || !*s) { snprintf(err, errlen, "attn-layers is empty: expected e.g. swa:256*3,gqa"); return -1; }
    for (;;) {
        size_t len = strcspn(s, ",+");
        char item[128];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "attn-layers '%s': %s item at offset %d", sched, len ? "too long an" : "empty",
                     (int)(s - sched));
            return -1;
        }
        memcpy(item, s, len);
        item[len] = 0;
        int count;
        if (attn_sched_item(item, NULL, &count, err, errlen)) return -1;
        if (want >= total && want < total + count) {
            memcpy(item, s, len);
            item[len] = 0;
            return attn_sched_item(item, c, &count, err, errlen);
        }
        if (total > (1 << 30) - count) {
            snprintf(err, errlen, "attn-layers '%s': more than 2^30 layers", sched);
            return -1;
        }
        total += count;
        if (!s[len]) break;
        s += len + 1;
    }
    return total;
}

ATTNDEF int attn_schedule_length(const char *sched, char *err, size_t errlen) {
    return attn_sched_walk(sched, -1, NULL, err, errlen);
}

ATTNDEF int attn_schedule_apply(const char *sched, int layer, AttnConfig *c, char *err, size_t errlen) {
    int n = attn_schedule_length(sched, err, errlen);
    if (n < 0) return -1;
    return attn_sched_walk(sched, layer % n, c, err, errlen) < 0 ? -1 : 0;
}

#endif /* ATTN_IMPLEMENTATION_DONE */
#endif /* ATTN_IMPLEMENTATION */
