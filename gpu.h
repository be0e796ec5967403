/* gpu.h - the CUDA device runtime and every non-attention GPU op.

   USAGE
     #define GPU_IMPLEMENTATION      // in exactly one .c file (or ABLATE_IMPLEMENTATION)
     #include "gpu.h"
     cc -DABLATE_CUDA -I$CUDA/include prog.c -lnvrtc -lcublasLt -lcublas -ldl -lm

     Gpu g;
     if (gpu_init(&g, 0) != 0) { ... fall back to the CPU path ... }
     void *x = gpu_alloc(&g, bytes);
     gpu_upload(&g, x, host, bytes);
     gpu_rmsnorm_forward(&g, out, rstd, x, w, N, C, 1e-5f);
     gpu_download(&g, host, out, bytes);    // synchronizes
     gpu_free_all(&g);

   Link with -lnvrtc -lcublasLt -lcublas (and -ldl before glibc 2.34), not
   -lcuda: the driver library libcuda.so.1 comes with the NVIDIA driver, not the
   toolkit, so gpu_init opens it with dlopen and calls it through a table of
   function pointers (THE DRIVER below). A program built with gpu.h therefore
   starts on a machine without the driver; gpu_init then returns -1 and says why
   in g->err.
   Define GPU_NVRTC_ONLY next to GPU_IMPLEMENTATION to build only the NVRTC
   part (gpu_compile_ptx): such a program needs libnvrtc but no driver, so a
   CI machine without a GPU can compile every kernel (tests/nvrtc_compile.c).

   DEPENDS ON: kernels.cu.h, attn/dense.cu.h, attn/dsa.cu.h, attn/gdn.cu.h (the
   kernel sources, in its implementation) and CUDA's cuda.h, nvrtc.h, cublasLt.h.
   BUILDS: the GPU is opt-in (as in ops.h): only -DABLATE_CUDA builds the CUDA runtime. Without
   it this header declares only Gpu, GpuTuning and the tuning parser, and needs no CUDA at all.
   LINKAGE: every public function is declared GPUDEF (extern); define GPU_STATIC (or ABLATE_STATIC,
   for every header) before the include to make them static, private to the .c file. C++ can
   include the header: its declarations sit in extern "C".

   WHAT IS HERE
   - Context: the device's primary context (shared with cuBLASLt, which uses
     the runtime API underneath) and one non-blocking stream. Every op and
     copy is queued on g->stream; only gpu_download and gpu_sync wait.
   - Allocator: cuMemAlloc with bytes_in_use / peak_bytes accounting; failure
     (e.g. out of memory) aborts with the size and the driver's error text.
   - NVRTC JIT: gpu_kernel compiles a kernel source for the device's own
     architecture once per (source, options) and caches the module (the compiled image
     stays in host memory for the process: a later Gpu loads it without compiling). The
     source must be a string that lives for the whole process and does not
     change (a string constant such as KERNELS_SRC): the cache keys on its
     address. Every compile gets the in-memory headers "ablate_common.cuh"
     (kernels.cu.h: bf16 helpers, reductions), "ablate_pattern.cuh" (the sparse attention
     patterns' tile helpers) and "ablate_mma.cuh" (cp.async, ldmatrix, mma.sync wrappers),
     and the CUDA include directory
     (g->tuning.cuda_home's include/, else GPU_CUDA_INCLUDE). With g->tuning.kernel_cache set,
     compiled images are also kept on disk between processes (KERNEL CACHE below), and
     gpu_kernel_prewarm compiles a list of modules in parallel threads before first use.
   - cuBLASLt matmuls (bf16 in, fp32 accumulate), with per-shape cached plans.
   - The ops of ops.h except attention, as gpu_<op>: activations bf16
     (void *), weights a bf16 copy, weight gradients fp32 and accumulated
     (+=), statistics (rstd, losses) fp32. All pointers are device pointers.
   - Optimizer support: gpu_sumsq, gpu_adamw, gpu_f32_to_bf16 (and gpu_bf16_to_f32, for the
     bf16 gradient reduction of data parallel).

   REPRODUCIBILITY (Gpu.nondeterministic; 0, the default, after gpu_init)
     With 0 the same inputs give the same bits on the same GPU model (same SM count) and
     toolkit, run after run and process after process:
     - No fp32 atomics whose order varies. Block-level sums (RMSNorm's dw, the MGA gate conv's
       dw, sumsq for the gradient norm) write one partial row per block to a scratch buffer
       and colsum_add adds the rows in a fixed order (one extra small launch per call; the
       grids are fixed by the shape and the SM count, so the partition is too). The
       embedding backward sorts the positions by token (stable radix sort, unique keys) and
       sums each token's rows in position order, tiles of 32 sorted rows whose carries are
       added in tile order: 15 small launches and a memset instead of one launch (tens
       of microseconds at the 135M shape, measured by tests/gpu_determinism_check; the
       sort's integer atomics are exact).
     - GEMMs: cuBLASLt's first heuristic for the shape, alignment and workspace size (a
       function of them and the device, not of timing); no timing. cuBLAS documents bit-wise
       reproducibility for a fixed algorithm on the same architecture and SM count when
       each stream has its own workspace (the LM head's side stream has its own). Its split-K
       reduction schemes are all ordered (INPLACE serializes with counters, the others
       reduce in a separate pass); GPU_GEMM_REDUCTION_MASK restricts them if ever needed.
     With 1 (ablate bench --nondeterministic, for A/B timing): the fp32 atomics, and every
     GEMM shape times up to GPU_GEMM_CANDIDATES algorithms on first use and keeps the
     fastest, so two processes may pick different algorithms (different summation orders).

   THE DRIVER
     GPU_CU_FUNCS lists every CUDA driver function called by this header and by the GPU
     check programs; calling a new one is one more X(name) line there. gpu_init loads
     libcuda.so.1 (else libcuda.so) once per process and resolves each name to the symbol
     cuda.h maps it to (cuMemAlloc -> cuMemAlloc_v2, cuGraphInstantiate ->
     cuGraphInstantiateWithFlags, ...): the symbol a program linked with -lcuda would
     bind, so every call keeps the ABI version of this toolkit's headers. Calls then read
     gpu_cu()->cuMemAlloc(&p, bytes), with the prototypes of cuda.h.

   TUNING (GpuTuning, g->tuning)
     The kernel variants for A/B runs, the LM head's chunk size, launch checking and the
     NVRTC include directory are fields of g->tuning, zero after gpu_init: the defaults. Set
     a field after gpu_init; it is read each time a kernel is chosen, so a test may change it
     between calls. A variant field holds GPU_TUNE_VARIANT(n) for variant n (0 keeps the
     default): g.tuning.gdn_par = GPU_TUNE_VARIANT(0). gpu_tuning_set parses "KEY=VALUE"
     (ablate --tune; gpu_tuning_keys lists the keys), also in the CPU-only build. This
     header reads no environment variable.

   KERNEL CACHE (g->tuning.kernel_cache: a directory, NULL for none)
     gpu_kernel looks for a module's image in this process's table, then in the directory, and
     only then runs NVRTC (a cubin for the device's sm_XX when this NVRTC targets it, else PTX),
     writing the result there. A file is named by its key, the SHA-256 of everything the image
     depends on: the source text, the in-memory headers, the options, the target arch, the CUDA
     include directory, the fixed NVRTC flags, the NVRTC version and the driver version; so an
     edited kernel, another GPU or another toolkit is a new file, never a stale hit (old files
     stay: delete the directory to reclaim the space). A file holds a header (magic "ABLKCC01",
     the key, the payload's length, its SHA-256) and the image; one whose header, length or
     checksum does not match is ignored and rewritten. Writes go to a temporary file renamed
     into place, so processes sharing the directory (a study's workers) read whole files or
     none. A directory that cannot be written costs a warning on stderr, once per Gpu, never
     a failure. g->jit counts the modules compiled, loaded from disk and found in memory, and
     the seconds spent (ablate bench prints them for the first step).
     gpu_kernel_prewarm(g, specs, n) takes a list of (source, options) modules: those in
     neither the table nor the directory are compiled at once in parallel threads (NVRTC
     compiles separate programs concurrently), so a cold start costs about the longest compile
     rather than their sum. The key, file format and parallel compiles need no GPU (they are in
     GPU_NVRTC_ONLY builds; tests/test_kcache checks them).

   DEBUGGING
     g->tuning.sync_check = 1 (ablate --tune sync_check=1) makes every launch synchronize
     and check for errors, naming the kernel that failed.
*/
/* the GPU is opt-in (as at the top of ops.h, which says why): without ABLATE_CUDA this header
   declares only Gpu and GpuTuning */
#if defined(ABLATE_CUDA) && defined(ABLATE_NO_CUDA)
#error "ABLATE_CUDA and ABLATE_NO_CUDA are both defined: define ABLATE_CUDA for the CUDA build, or neither for the CPU-only one"
#endif
#if !defined(ABLATE_CUDA) && !defined(ABLATE_NO_CUDA)
#define ABLATE_NO_CUDA
#endif
#if defined(ABLATE_IMPLEMENTATION) && !defined(GPU_IMPLEMENTATION)
#define GPU_IMPLEMENTATION
#endif
#ifndef GPU_H
#define GPU_H

/* linkage of every public function: extern, or static with GPU_STATIC or ABLATE_STATIC (each
   .c file that defines the implementation then gets its own private copy) */
#ifndef GPUDEF
#if defined(GPU_STATIC) || defined(ABLATE_STATIC)
#define GPUDEF static
#else
#define GPUDEF extern
#endif
#endif

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ABLATE_GPU_TYPEDEF
#define ABLATE_GPU_TYPEDEF
typedef struct Gpu Gpu;
#endif

/* ---- tuning (TUNING above): declared in the CPU-only build too, so that a driver parses its
   flags the same way in both builds ---- */
/* the kernel-variant fields hold 0 for the default or GPU_TUNE_VARIANT(n) for variant n, so that
   a zero-initialised GpuTuning is the default everywhere (the variants' own numbers start at 0) */
#define GPU_TUNE_VARIANT(n) ((n) + 1)
/* the variant a field selects, or dflt when it is 0 */
static inline int gpu_tuned(int field, int dflt) { return field > 0 ? field - 1 : dflt; }

typedef struct GpuTuning {
    /* 1: every launch synchronizes and checks for errors, naming the kernel that failed.
       Default 0: launches are queued (a check per launch costs a round trip each) */
    int sync_check;
    /* logits bytes per chunk of the fused LM head + cross-entropy. Default 0: GPU_XENT_CHUNK_BYTES
       (512 MB: few chunks for a 49K vocabulary, bounded memory at any batch) */
    size_t xent_chunk_bytes;
    /* which attention passes take the Hopper (sm_90a wgmma) kernels on a compute capability 9.0
       device at head dim 64: variant 0..3, bit 0 backward, bit 1 forward. Default: 3
       (ATTN_WGMMA_DEFAULT), both: they are the fastest there (attn/dense.cu.h) */
    int attn_wgmma;
    /* the Hopper backward's dQ reduction, variant 0..4 (attn/dense.cu.h, ATTN_WBWD_DQ_BULK);
       nondeterministic numerics only (deterministic always takes the ordered variant 2).
       Default: ATTN_WBWD_DQ_BULK (2), the fastest measured */
    int attn_wbwd_dq;
    /* GDN (attn/gdn.cu.h) products: variant 0 fp32 FMA (slower, exact fp32), 1 mma.sync.
       Default 1: the tensor cores */
    int gdn_mma;
    /* GDN delta rule organization: variant 0 one block per sequence and head (gdn_fwd / gdn_bwd),
       1 chunk-parallel (gdn_prep, gdn_state, gdn_out, ...). Default 1: faster on the H100 (135M
       model 114K vs 92K tok/s) */
    int gdn_par;
    /* GDN heads 65..128 wide: variant 0 the wide-head fp32 kernels (gdn_gen_*), 1 the tile
       kernels on tensor cores (gdn_*_w, chunk-parallel). Default 1: 9x (D 72) to 32x (D 128)
       faster forward+backward on the H200 (docs/benchmarks.md) */
    int gdn_wtile;
    /* DSA attention and indexer KL (attn/dsa.cu.h): variant 0 per-token gathers, 1 dense
       tiles under the selection bitmask. Default: chosen per call by a cost rule */
    int sparse_dense;
    /* the gathers' sparse attention backward, variant 0..3; nondeterministic numerics only
       (deterministic has one order). Default 2: the fastest measured on the H100 */
    int sparse_bwd;
    /* the gathers' indexer KL: variant 0 plain, 1 red.v4 dkI and the a_j cache; nondeterministic
       backward only for the red.v4. Default 1: the fastest measured on the H100 */
    int sparse_kl;
    /* the indexer top-k: variant 0 the block-per-row kernel with 4 aggregation passes, 1 with
       one, 2 the warp-per-row kernel for rows up to SPARSE_TOPK_WARP_T (else 1). Default 2: the
       fastest measured on the H100 */
    int sparse_topk;
    /* 1: a decode step of at most SMOLLM_FUSED_MAX_B sequences takes the fused kernels
       (attn/decode_fused.cu.h, smollm.h's fused step: 5 kernels a layer) where every layer is
       the dense room with pre-norms; 2: a step of at most PZ_MAX_B sequences is one persistent
       kernel (attn/decode_persist.cu.h) where the model qualifies (smollm.h's THE PERSISTENT
       STEP), else as 1; 0: the step of separate kernels and cuBLASLt GEMMs. Default 0 */
    int dec_fused;
    /* generation's prefill for the MLA, MGA, Gated DeltaNet, DSA and identity rooms (attn.h,
       attn_gpu_decode_prefill): variant 1 the training forward over the prompt, then fill kernels
       write the decode cache; variant 0 one decode step per prompt token (the cost grows with
       the prompt: the exact-by-construction fallback). Default 1 except for Gated DeltaNet
       (attn.h's attn_gpu_prefill_whole says why): tests/gpu_decode_check and
       gpu_decode_rooms_check compare both with the CPU reference (the dense room always
       prefills with its forward) */
    int dec_prefill;
    /* 1: the fused decode step's kernels and the dense room's decode kernels (dec_qkv,
       dec_split, dec_combine) start by programmatic dependent launch (gpu_launch_dep: each
       one's launch, and the fused GEMV's weight loads, overlap the kernel before it; compute
       capability 9.0+, elsewhere a plain launch); 0: plain launches. Default 0 */
    int dec_pdl;
    /* the CUDA toolkit directory whose include/ NVRTC reads (the caller keeps the string alive;
       ablate.c passes $CUDA_HOME). Default NULL: GPU_CUDA_INCLUDE, the toolkit of the build */
    const char *cuda_home;
    /* the directory of the on-disk kernel cache (KERNEL CACHE above; the caller keeps the string
       alive; ablate.c passes --kernel-cache, default ~/.cache/ablate/kernels). Default NULL: no
       disk cache, every process compiles its kernels */
    const char *kernel_cache;
} GpuTuning;

/* one module, a source string as gpu_kernel gets it and its options, for gpu_kernel_prewarm
   (declared in the CPU-only build too: attn.h's rooms list theirs through it) */
#define GPU_KERNEL_OPTIONS_MAX 384
typedef struct GpuKernelSpec { const char *source; char options[GPU_KERNEL_OPTIONS_MAX]; } GpuKernelSpec;

/* one KEY=VALUE setting (the keys of gpu_tuning_keys, e.g. "gdn_par=0") into *t. 0 on success;
   -1 with a message naming the key or value and what was expected in err */
GPUDEF int gpu_tuning_set(GpuTuning *t, const char *key_value, char *err, size_t errlen);
/* the keys, NULL-terminated pairs {KEY=VALUES, help}, for a driver's --help (sized, so that
   GPU_STATIC can declare it static: C forbids a static array of unknown size before its definition) */
#define GPU_TUNING_NKEYS 14
#if defined(GPU_STATIC) || defined(ABLATE_STATIC)
static const char *const gpu_tuning_keys[GPU_TUNING_NKEYS + 1][2];
#else
extern const char *const gpu_tuning_keys[GPU_TUNING_NKEYS + 1][2];
#endif

#ifdef __cplusplus
}
#endif

#ifndef ABLATE_NO_CUDA

#include <cuda.h>
#include <nvrtc.h>
#include <cublasLt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* where NVRTC finds the toolkit headers unless GpuTuning.cuda_home is set */
#ifndef GPU_CUDA_INCLUDE
#define GPU_CUDA_INCLUDE "/usr/local/cuda/include"
#endif

/* every CUDA driver function called through gpu_cu() (see THE DRIVER above) */
#define GPU_CU_FUNCS(X)              \
    X(cuGetErrorName)                \
    X(cuGetErrorString)              \
    X(cuInit)                        \
    X(cuDriverGetVersion)            \
    X(cuDeviceGetCount)              \
    X(cuDeviceGet)                   \
    X(cuDeviceGetAttribute)          \
    X(cuDevicePrimaryCtxRetain)      \
    X(cuDevicePrimaryCtxRelease)     \
    X(cuCtxSetCurrent)               \
    X(cuStreamCreate)                \
    X(cuStreamDestroy)               \
    X(cuStreamSynchronize)           \
    X(cuStreamWaitEvent)             \
    X(cuStreamIsCapturing)           \
    X(cuStreamBeginCapture)          \
    X(cuStreamEndCapture)            \
    X(cuGraphInstantiate)            \
    X(cuGraphDestroy)                \
    X(cuGraphLaunch)                 \
    X(cuGraphExecDestroy)            \
    X(cuMemAlloc)                    \
    X(cuMemFree)                     \
    X(cuMemsetD8Async)               \
    X(cuMemcpyHtoDAsync)             \
    X(cuMemcpyDtoHAsync)             \
    X(cuMemcpyDtoDAsync)             \
    X(cuModuleLoadData)              \
    X(cuModuleUnload)                \
    X(cuModuleGetFunction)           \
    X(cuFuncSetAttribute)            \
    X(cuFuncGetName)                 \
    X(cuLaunchKernel)                \
    X(cuLaunchKernelEx)              \
    X(cuEventCreate)                 \
    X(cuEventDestroy)                \
    X(cuEventRecord)                 \
    X(cuEventSynchronize)            \
    X(cuEventElapsedTime)

/* one pointer per GPU_CU_FUNCS entry, named and typed as cuda.h declares the function
   (cuda.h's version macros rename member and function alike) */
typedef struct GpuDriver {
    void *lib;                      /* the dlopen handle; NULL until loaded */
#define GPU_CU_MEMBER_(fn) __typeof__(fn) *fn;
    GPU_CU_FUNCS(GPU_CU_MEMBER_)
#undef GPU_CU_MEMBER_
} GpuDriver;

typedef struct GpuModule GpuModule;
typedef struct GpuFunc GpuFunc;
typedef struct GpuGemmPlan GpuGemmPlan;
typedef struct GpuAllocRec GpuAllocRec;

/* where gpu_kernel's modules came from since gpu_init (or since the caller zeroed it) */
typedef struct GpuJitStats {
    int compiled;                   /* modules compiled by NVRTC */
    int from_disk;                  /* loaded from the disk cache (tuning.kernel_cache) */
    int from_memory;                /* images this process had already compiled or loaded */
    double compile_s;               /* wall seconds in NVRTC (parallel compiles count once) */
    double load_s;                  /* wall seconds reading and verifying disk cache files */
} GpuJitStats;

struct Gpu {
    CUdevice dev;
    CUcontext ctx;
    CUstream stream;
    int cc_major, cc_minor, sm_count;
    size_t smem_optin;              /* max dynamic shared memory per block (opt-in) */
    cublasLtHandle_t lt;
    void *lt_workspace;
    size_t lt_workspace_size;
    size_t bytes_in_use, peak_bytes;
    /* private */
    GpuAllocRec *allocs; int n_allocs, cap_allocs;
    GpuModule *mods; int n_mods, cap_mods;
    GpuFunc *funcs; int n_funcs, cap_funcs;
    GpuGemmPlan *plans; int n_plans, cap_plans;
    void *xent_scratch; size_t xent_scratch_bytes;
    /* a second stream with its own cuBLASLt workspace: the LM head's two gradient GEMMs
       (dh, dwte) run side by side, each alone would leave SMs idle */
    CUstream side_stream; CUevent ev_fork, ev_join; void *side_workspace;
    CUstream comm_stream; CUevent ev_comm_fork, ev_comm_join; /* gpu_comm_stream */
    void *attn_scratch; size_t attn_scratch_bytes; /* for attn/dense.cu.h's backward */
    void *sparse_scratch; size_t sparse_scratch_bytes; /* for attn/dsa.cu.h */
    void *sparse_prep; size_t sparse_prep_bytes;       /* attn/dsa.cu.h: padded / quantized indexer inputs */
    void *gdn_scratch; size_t gdn_scratch_bytes;       /* for attn/gdn.cu.h's forward */
    void *qkv_scratch; size_t qkv_scratch_bytes;       /* attn.h's fused q|k|v projection rows */
    /* the caller's choices of kernel variants and debugging (GpuTuning above): zero after
       gpu_init (the defaults); set its fields after gpu_init, read when a kernel is chosen */
    GpuTuning tuning;
    /* 0 (the default): bit-reproducible numerics: no fp32 atomics whose order varies from run
       to run, GEMM algorithms chosen without timing. 1: the faster order-dependent variants
       (for A/B timing; the caller sets it, e.g. ablate bench --nondeterministic) */
    int nondeterministic;
    /* the deterministic reductions' scratch (gpu_det_scratch_): per-block partial rows of
       RMSNorm's and the gate conv's dw, the embedding backward's sort and carries */
    void *det_scratch; size_t det_scratch_bytes;
    float *sumsq_part;              /* sumsq's per-block partials, sized once (GPU_SUMSQ_BLOCKS) */
    void *profile;                  /* ops.h's per-op timing table when profiling, else NULL */
    char arch[16];                  /* NVRTC target, e.g. "sm_90" */
    int driver_version;             /* cuDriverGetVersion, part of the kernel cache's key */
    GpuJitStats jit;                /* the kernels' compiles and cache hits */
    int kcache_warned;              /* a kernel cache write failed and was reported once */
    char err[512];                  /* why gpu_init returned -1 */
};

/* ---- error checks: print file:line, the call and the error text, abort ---- */
#define CU_CHECK(call) gpu_check_cu_((call), #call, __FILE__, __LINE__)
#define NVRTC_CHECK(call) gpu_check_nvrtc_((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) gpu_check_cublas_((call), #call, __FILE__, __LINE__)
GPUDEF void gpu_check_cu_(CUresult r, const char *call, const char *file, int line);
GPUDEF void gpu_check_nvrtc_(nvrtcResult r, const char *call, const char *file, int line);
GPUDEF void gpu_check_cublas_(cublasStatus_t r, const char *call, const char *file, int line);

/* ---- the driver (THE DRIVER above) ---- */
/* loads libcuda and resolves GPU_CU_FUNCS, once per process (gpu_init calls it; not
   thread-safe, as the rest of this runtime). 0 on success (or when already loaded); -1
   with the reason in err: the library cannot be opened (no NVIDIA driver here), or lacks
   a function (a driver older than this build's toolkit) */
GPUDEF int gpu_driver_load(char *err, size_t errlen);
/* the driver's function table; its pointers are valid once gpu_driver_load (or gpu_init)
   has succeeded */
GPUDEF const GpuDriver *gpu_cu(void);

/* ---- runtime ---- */
/* 0 on success; -1 when there is no usable GPU, with the reason in g->err (nothing is
   printed: the caller decides whether to fall back to the CPU) */
GPUDEF int gpu_init(Gpu *g, int device_index);
GPUDEF void gpu_free_all(Gpu *g);
GPUDEF void *gpu_alloc(Gpu *g, size_t bytes);
GPUDEF void gpu_free(Gpu *g, void *p);
GPUDEF void gpu_memset0(Gpu *g, void *p, size_t bytes);
/* a scratch buffer kept in the Gpu (*p, *have bytes), grown to at least `bytes` on demand.
   Growing synchronizes first (kernels queued earlier may still use the old buffer), so it
   cannot happen inside a graph capture: run the shape once eagerly before capturing.
   gpu_scratch_release frees it early; gpu_free_all frees it with everything else. */
GPUDEF void *gpu_scratch(Gpu *g, void **p, size_t *have, size_t bytes);
GPUDEF void gpu_scratch_release(Gpu *g, void **p, size_t *have);
GPUDEF void gpu_upload(Gpu *g, void *dst, const void *src, size_t bytes);
GPUDEF void gpu_download(Gpu *g, void *dst, const void *src, size_t bytes);
GPUDEF void gpu_copy(Gpu *g, void *dst, const void *src, size_t bytes); /* device to device, queued */
GPUDEF void gpu_sync(Gpu *g);
/* a second stream for communication that overlaps the kernels on g->stream (train.h's gradient
   buckets, reduced while the backward runs on): gpu_comm_stream makes it on first use;
   gpu_comm_after_main makes it wait for what g->stream has queued so far, gpu_main_after_comm
   makes g->stream wait for what it has queued */
GPUDEF CUstream gpu_comm_stream(Gpu *g);
GPUDEF void gpu_comm_after_main(Gpu *g);
GPUDEF void gpu_main_after_comm(Gpu *g);
/* CUDA graphs: record what is queued on g->stream between begin and end (nothing may
   synchronize or allocate in between), then replay it with one launch */
GPUDEF void gpu_graph_begin(Gpu *g);
GPUDEF CUgraphExec gpu_graph_end(Gpu *g);
GPUDEF void gpu_graph_launch(Gpu *g, CUgraphExec exec);
GPUDEF void gpu_graph_free(CUgraphExec exec);
/* with tuning.sync_check = 1: synchronize and abort on a pending error */
GPUDEF void gpu_dbg_check(Gpu *g);

/* ---- NVRTC ---- */
/* compiled once per (source address, options); aborts with the NVRTC log on error.
   options: space-separated extra NVRTC options, e.g. "-DHD=64 -DWINDOW=0" (may be NULL) */
GPUDEF CUfunction gpu_kernel(Gpu *g, const char *source, const char *name, const char *options);
/* make the n modules and the core ops' module (KERNELS_SRC) ready before their first
   gpu_kernel: each one this process has not loaded yet is read from the disk cache, and the
   rest are compiled in parallel threads (one per CPU, at most 16) and written to it;
   gpu_kernel then only loads them. A module that fails to compile is left to gpu_kernel, which
   reports it with NVRTC's log */
GPUDEF void gpu_kernel_prewarm(Gpu *g, const GpuKernelSpec *specs, int n);
/* out[n] = {source, options} when n < max (options NULL: ""); returns n + 1 either way, so
   that a list builder returns how many it needed */
GPUDEF int gpu_kernel_spec_add(GpuKernelSpec *out, int max, int n, const char *source, const char *options);
/* pure NVRTC, no GPU: compile for arch ("sm_90", "compute_80", ...). Returns 0 on
   success. *ptx_out (may be NULL) receives the PTX, *log_out (may be NULL) the
   compile log; both malloc'ed, free them. */
GPUDEF int gpu_compile_ptx(const char *source, const char *options, const char *arch,
                           char **ptx_out, char **log_out);
/* the kernels of a PTX text (the compile checks: which module holds what). Returns the first
   ".entry" at or after p with its name in name[n] (may be NULL), and where the next search
   starts; NULL when there is none (ptx NULL too) */
GPUDEF const char *gpu_ptx_next_entry(const char *p, char *name, size_t n);
/* the number of kernels (".entry") in a PTX text; 0 for NULL */
GPUDEF int gpu_ptx_entries(const char *ptx);
/* ---- the on-disk kernel cache and parallel compiles (KERNEL CACHE above); no GPU needed, so
   they are in GPU_NVRTC_ONLY builds too ---- */
#define GPU_KCACHE_KEY 32  /* bytes of a key: a SHA-256 */
#define GPU_KCACHE_HEADER 80 /* magic 8, key 32, payload length 8 (little-endian), SHA-256 of the payload 32 */
/* SHA-256 of n bytes */
GPUDEF void gpu_sha256(const void *data, size_t n, unsigned char out[32]);
/* the key of one compiled image: SHA-256 over the source text, every in-memory header
   (ablate_common.cuh, ...), the options, the target arch, the CUDA include directory
   (cuda_home, NULL: the build's), the fixed NVRTC flags, this NVRTC's version and
   driver_version (cuDriverGetVersion; 0 in a program without the driver) */
GPUDEF void gpu_kcache_key(unsigned char key[GPU_KCACHE_KEY], const char *source, const char *options,
                           const char *arch, const char *cuda_home, int driver_version);
/* the image stored under key in dir, verified (magic, key, length, checksum): 0 and
   *image (malloc'ed, NUL-terminated past *size bytes) on a hit; 1 when there is no such file;
   -1 when the file is unreadable, truncated, corrupt or holds another key (never trusted:
   the caller compiles and gpu_kcache_write replaces it) */
GPUDEF int gpu_kcache_read(const char *dir, const unsigned char key[GPU_KCACHE_KEY], char **image, size_t *size);
/* store image under key in dir (created with its parents when missing): written to a
   temporary file in dir and renamed over the final name, so a reader (another process)
   sees the old file, the new one or none, never part of one. 0 on success; -1 with the
   reason (the path and the system's error) in err: the caller warns, the cache is optional */
GPUDEF int gpu_kcache_write(const char *dir, const unsigned char key[GPU_KCACHE_KEY], const char *image,
                            size_t size, char *err, size_t errlen);
/* one NVRTC compile for gpu_compile_parallel: the inputs, then what it fills in */
typedef struct GpuCompileJob {
    const char *source, *options, *arch, *cuda_home;
    int want_cubin;                 /* 1: a cubin (arch "sm_XX"), 0: PTX */
    int rc;                         /* 0 compiled; -1 failed (log says why) */
    char *image; size_t size;       /* malloc'ed; the caller frees */
    char *log;                      /* malloc'ed; the caller frees */
    double seconds;                 /* this compile's wall time */
} GpuCompileJob;
/* compile the n jobs in up to `threads` threads (NVRTC is thread-safe for separate
   programs); returns the number that failed */
GPUDEF int gpu_compile_parallel(GpuCompileJob *jobs, int n, int threads);
/* launch on g->stream; opts in to > 48 KiB dynamic shared memory when asked */
/* abort, naming who and the argument, unless every p[i] is 16-byte aligned (kernels that
   move rows with 16-byte copies check their tensor arguments with it) */
GPUDEF void gpu_require_aligned16(const char *who, const void *const *p, int n);
GPUDEF void gpu_launch(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                       unsigned bx, unsigned by, unsigned bz, unsigned smem, void **args);
/* gpu_launch by programmatic dependent launch when g->tuning.dec_pdl is set on a compute
   capability 9.0+ device (else exactly gpu_launch): the kernel may start before the kernel ahead
   of it on the stream has ended, so it must call pdl_wait() (ablate_common.cuh) before it reads
   anything an earlier kernel writes and before its first store; what comes before pdl_wait
   (loading weights, say) overlaps that kernel. Kept in a captured graph as a programmatic edge. */
GPUDEF void gpu_launch_dep(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                           unsigned bx, unsigned by, unsigned bz, unsigned smem, void **args);
/* a 1-D cooperative launch (every block resident at once, or the launch fails and aborts with
   the driver's message): for kernels that synchronize their whole grid (attn/decode_persist.cu.h).
   Kept in a captured graph as a cooperative kernel node */
GPUDEF void gpu_launch_coop(Gpu *g, CUfunction f, unsigned gx, unsigned bx, unsigned smem, void **args);

/* ---- ops (ops.h semantics; ops_real is float in every CUDA build) ---- */
GPUDEF void gpu_embed_forward(Gpu *g, void *out, const int *tok, const void *wte, int N, int C);
GPUDEF void gpu_embed_backward(Gpu *g, float *dwte, const void *dout, const int *tok, int N, int C);
GPUDEF void gpu_matmul_forward(Gpu *g, void *out, const void *in, const void *w, int N, int C, int OC);
/* din (= or +=) dout @ w, skipped when din == NULL; dw += dout^T @ in, skipped when dw == NULL */
GPUDEF void gpu_matmul_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in,
                                const void *w, int N, int C, int OC, int accumulate_din);
/* rstd may be NULL (inference) */
GPUDEF void gpu_add_rmsnorm_forward(Gpu *g, void *sum, void *out, float *rstd, const void *a, const void *b,
                                     const void *w, int N, int C, float eps);
GPUDEF void gpu_rmsnorm_forward(Gpu *g, void *out, float *rstd, const void *in, const void *w,
                                int N, int C, float eps);
GPUDEF void gpu_rmsnorm_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in,
                                 const void *w, const float *rstd, int N, int C, int accumulate_din);
GPUDEF void gpu_rope_forward(Gpu *g, void *x, int N, int T, int nh, int hd, float theta);
GPUDEF void gpu_rope_backward(Gpu *g, void *dx, int N, int T, int nh, int hd, float theta);
/* RoPE on the first rd elements of each of nh heads spaced ld apart (op_rope_part_*);
   sign +1 forward, -1 backward */
GPUDEF void gpu_rope_part(Gpu *g, void *x, int N, int T, int nh, int ld, int rd, float theta, float sign);
/* split the fused q|k|v rows [N, (H + 2 KV) hd] into q [N,H,hd], k, v [N,KV,hd], rotating
   q and k (theta 0: no rotation); merge 1 is the gradient: dq, dk rotated back, into the
   fused rows (op_qkv_split / op_qkv_merge) */
GPUDEF void gpu_qkv_split(Gpu *g, void *q, void *k, void *v, void *qkv, int N, int T, int H, int KV, int hd,
                          float theta, int merge);
/* dst[i*dld + j] (= or +=) scale * sum_{g < groups} src[i*sld + g*gld + j] (op_copy_cols,
   op_sum_cols) */
GPUDEF void gpu_copy_cols(Gpu *g, void *dst, size_t dld, const void *src, size_t sld, size_t gld,
                          int groups, size_t rows, int cols, float scale, int accumulate);
/* MGA's O(T) decomposition (ops.h op_mga_*, op_time_cumsum) */
GPUDEF void gpu_mga_unit_forward(Gpu *g, void *u, float *nrm, const void *gin, size_t rows, int hd);
GPUDEF void gpu_time_cumsum(Gpu *g, float *out, const void *in, int in_is_act, int B, int T, int C, int reverse);
GPUDEF void gpu_mga_den_forward(Gpu *g, float *den, float *rinv, const void *u, const float *C, int B, int T,
                                int H, int hd, int window, int faithful);
GPUDEF void gpu_mga_query_forward(Gpu *g, void *q, float *f, const void *u, const float *den, const float *S,
                                  int B, int T, int H, int hd, int faithful);
GPUDEF void gpu_mga_query_backward(Gpu *g, float *du, float *dS, float *dden, const void *dq, const void *dk,
                                   const void *u, const float *f, const float *den, const float *S, int B, int T,
                                   int H, int hd, int faithful);
GPUDEF void gpu_mga_den_backward(Gpu *g, float *du, float *ru, const void *u, const float *C, const float *den,
                                 const float *dden, const float *Sd, int B, int T, int H, int hd, int window,
                                 int faithful);
GPUDEF void gpu_mga_unit_backward(Gpu *g, void *dg, const float *du, const float *Rev, const void *u,
                                  const float *nrm, int B, int T, int H, int hd, int window);
GPUDEF void gpu_dwconv3_silu_forward(Gpu *g, void *conv, void *u, const void *x, const void *w, int B, int T,
                                     int C, int shift);
GPUDEF void gpu_dwconv3_silu_backward(Gpu *g, void *dx, float *dw, const void *du, const void *conv, const void *x,
                                      const void *w, int B, int T, int C, int shift, int accumulate);
GPUDEF void gpu_sigmoid_gate_forward(Gpu *g, void *out, const void *a, const void *gate, size_t n);
GPUDEF void gpu_sigmoid_gate_backward(Gpu *g, void *da, void *dgate, const void *dout, const void *a,
                                      const void *gate, size_t n);
GPUDEF void gpu_swiglu_forward(Gpu *g, void *out, const void *gu, int N, int F);
GPUDEF void gpu_swiglu_backward(Gpu *g, void *dgu, void *act, const void *dout, const void *gu, int N, int F);
GPUDEF void gpu_add(Gpu *g, void *out, const void *a, const void *b, size_t n);
/* residual dropout in place on x [n] (bf16): smollm.h's mask (ops.h's ops_resid_drop_u) for step
   ctr[0], micro-batch forward ctr[1] (device ints), layer, branch; p in [0, 1) */
GPUDEF void gpu_resid_dropout(Gpu *g, void *x, size_t n, float p, unsigned long long seed, const int *ctr, int layer,
                              int branch);
/* ctr[1] += 1 on the device (queued: counts inside a CUDA graph too) */
GPUDEF void gpu_dropout_next(Gpu *g, int *ctr);
/* correct (may be NULL): 1 per row whose target has the largest logit (top-1 accuracy) */
GPUDEF void gpu_xent_forward(Gpu *g, float *losses, float *correct, const void *h, const void *wte,
                             const int *targets, int N, int C, int V);
GPUDEF void gpu_xent_backward(Gpu *g, float *losses, void *dh, float *dwte, const void *h,
                              const void *wte, const int *targets, int N, int C, int V, float dloss);

/* generic GEMM, row-major: D[M,Nn] (= or +=) op(A) @ op(B) with op(X) = X or X^T.
   A, B bf16; D bf16 (d_fp32 == 0) or fp32; fp32 accumulate; beta 0 or 1.
   lda, ldb, ldd: row strides in elements. Exposed for other kernels' host code. */
GPUDEF void gpu_gemm(Gpu *g, void *D, int d_fp32, const void *A, int trans_a, const void *B,
                     int trans_b, int M, int Nn, int K, int lda, int ldb, int ldd, float beta);

/* ---- optimizer support (fp32 device arrays) ---- */
/* *out_dev_scalar += sum(x^2); zero it first with gpu_memset0 */
GPUDEF void gpu_sumsq(Gpu *g, float *out_dev_scalar, const float *x, size_t n);
/* AdamW: g' = grad * min(1, clip / sqrt(*gnorm_sq_dev)) (no clipping when clip <= 0
   or gnorm_sq_dev == NULL); m, v updated; p -= lr*wd*p; p -= lr * (m/bias_corr1) /
   (sqrt(v/bias_corr2) + eps), with bias_corr = 1 - beta^t. param_bf16 (may be NULL)
   receives the bf16 copy of the new parameters. hyper_dev (may be NULL) points to device
   floats {lr, bias_corr1, bias_corr2} that replace the arguments: a CUDA graph of the
   update then stays valid as the schedule moves. */
GPUDEF void gpu_adamw(Gpu *g, float *param, void *param_bf16, const float *grad, float *m, float *v,
                      size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                      float bias_corr1, float bias_corr2, const float *gnorm_sq_dev, float clip,
                      const float *hyper_dev);
GPUDEF void gpu_f32_to_bf16(Gpu *g, void *dst, const float *src, size_t n);
/* dst[i] = src[i] widened (exact): the bf16 gradient sum of data parallel's grad_reduce bf16 */
GPUDEF void gpu_bf16_to_f32(Gpu *g, float *dst, const void *src, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* ABLATE_NO_CUDA */
#endif /* GPU_H */

/* ======================================================================== */
/* the tuning parser: in the CPU-only build too */
#if defined(GPU_IMPLEMENTATION) && !defined(GPU_TUNING_DONE)
#define GPU_TUNING_DONE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one row per key: its field, the largest variant (or -1: a count of MB, -2: a 0|1 switch
   that is not a variant, -3: a choice 0..2 kept as given) */
typedef struct { const char *key; size_t off; int max; } GpuTuneKey_;
#define GPU_TUNE_KEY_(k, m) {#k, offsetof(GpuTuning, k), m}
static const GpuTuneKey_ gpu_tune_table_[] = {
    GPU_TUNE_KEY_(sync_check, -2),  {"xent_chunk_mb", offsetof(GpuTuning, xent_chunk_bytes), -1},
    GPU_TUNE_KEY_(attn_wgmma, 3),   GPU_TUNE_KEY_(attn_wbwd_dq, 4), GPU_TUNE_KEY_(gdn_mma, 1),
    GPU_TUNE_KEY_(gdn_par, 1),      GPU_TUNE_KEY_(gdn_wtile, 2),   GPU_TUNE_KEY_(sparse_dense, 1),
    GPU_TUNE_KEY_(sparse_bwd, 3),
    GPU_TUNE_KEY_(sparse_kl, 1),    GPU_TUNE_KEY_(sparse_topk, 2), GPU_TUNE_KEY_(dec_fused, -3),
    GPU_TUNE_KEY_(dec_prefill, 1),  GPU_TUNE_KEY_(dec_pdl, -2),
};
#undef GPU_TUNE_KEY_
/* GPU_TUNING_NKEYS counts this table's rows (a compile error when they differ) */
typedef char gpu_tune_nkeys_check_[sizeof gpu_tune_table_ / sizeof *gpu_tune_table_ == GPU_TUNING_NKEYS ? 1 : -1];

/* in gpu_tune_table_'s order */
#if defined(GPU_STATIC) || defined(ABLATE_STATIC)
static
#endif
const char *const gpu_tuning_keys[GPU_TUNING_NKEYS + 1][2] = {
    {"sync_check=0|1", "synchronize after every kernel and name the one that failed (default 0)"},
    {"xent_chunk_mb=N", "LM-head logits per chunk, MB, 1..65536 (default 512)"},
    {"attn_wgmma=0..3", "Hopper attention kernels: bit 0 backward, bit 1 forward, at head dims 32..128 "
                        "(default: 3 at 40..128, 2 at 32)"},
    {"attn_wbwd_dq=0..4", "the Hopper backward's dQ reduction (default 2; nondeterministic numerics only)"},
    {"gdn_mma=0|1", "GDN: 0 fp32 products, 1 tensor cores (default 1)"},
    {"gdn_par=0|1", "GDN: 0 one block per sequence and head, 1 chunk-parallel (default 1)"},
    {"gdn_wtile=0..2", "GDN heads wider than 64: 0 fp32 kernels, 1 tensor-core tiles to 128, 2 also past 128 (default; chunk-parallel)"},
    {"sparse_dense=0|1", "DSA attention and indexer KL: 0 per-token gathers, 1 dense tiles (default: by cost)"},
    {"sparse_bwd=0..3", "DSA backward variant (default 2; nondeterministic numerics only)"},
    {"sparse_kl=0|1", "DSA indexer KL variant (default 1)"},
    {"sparse_topk=0..2", "DSA top-k: 0|1 block kernel (4 | 1 passes), 2 warp kernel for T <= 4096 (default 2)"},
    {"dec_fused=0..2", "GPU decode: 1 the fused small-batch step (5 kernels a layer), 2 the persistent step (one kernel; default 0)"},
    {"dec_prefill=0|1", "generation's prefill of mla, mga, gdn, dsa: 0 a decode step per token, 1 the forward (default 1; gdn 0)"},
    {"dec_pdl=0|1", "GPU decode: 1 programmatic dependent launch of the decode kernels (Hopper; default 0)"},
    {NULL, NULL},
};

GPUDEF int gpu_tuning_set(GpuTuning *t, const char *key_value, char *err, size_t errlen) {
    const char *eq = strchr(key_value, '=');
    size_t klen = eq ? (size_t)(eq - key_value) : strlen(key_value);
    const GpuTuneKey_ *k = NULL;
    for (size_t i = 0; i < sizeof gpu_tune_table_ / sizeof *gpu_tune_table_; i++)
        if (strlen(gpu_tune_table_[i].key) == klen && !strncmp(gpu_tune_table_[i].key, key_value, klen))
            k = &gpu_tune_table_[i];
    if (!k) {
        snprintf(err, errlen, "unknown tuning key '%.*s' (expected KEY=VALUE with KEY one of sync_check, "
                 "xent_chunk_mb, attn_wgmma, attn_wbwd_dq, gdn_mma, gdn_par, gdn_wtile, sparse_dense, sparse_bwd, "
                 "sparse_kl, sparse_topk, dec_fused, dec_prefill, dec_pdl)", (int)(klen < 64 ? klen : 64), key_value);
        return -1;
    }
    const char *v = eq ? eq + 1 : "";
    char *end;
    long n = strtol(v, &end, 10);
    int lo = k->max == -1 ? 1 : 0, hi = k->max == -1 ? 65536 : k->max == -2 ? 1 : k->max == -3 ? 2 : k->max;
    if (!*v || *end || n < lo || n > hi) {
        snprintf(err, errlen, "tuning %s: expected an integer in [%d, %d], got '%.64s'", k->key, lo, hi, v);
        return -1;
    }
    if (k->max == -1) t->xent_chunk_bytes = (size_t)n << 20;
    else *(int *)((char *)t + k->off) = k->max <= -2 ? (int)n : GPU_TUNE_VARIANT((int)n);
    return 0;
}
#endif /* GPU_TUNING_DONE */

/* ======================================================================== */
#if defined(GPU_IMPLEMENTATION) && !defined(ABLATE_NO_CUDA) && !defined(GPU_IMPLEMENTATION_DONE)
#define GPU_IMPLEMENTATION_DONE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <dlfcn.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/stat.h>
#include "kernels.cu.h"

/* rows of logits per cross-entropy chunk: chunk * V * 2 bytes stays under this */
#ifndef GPU_XENT_CHUNK_BYTES
#define GPU_XENT_CHUNK_BYTES ((size_t)512 << 20)
#endif
#define GPU_GEMM_CANDIDATES 8 /* cuBLASLt algorithms timed per GEMM shape (nondeterministic = 1) */
/* cuBLASLt split-K reduction schemes allowed (cublasLtReductionScheme_t bits): all of them,
   since each one adds the parts in a fixed order; CUBLASLT_REDUCTION_SCHEME_NONE forbids
   split-K (slower skinny weight-gradient GEMMs) */
#ifndef GPU_GEMM_REDUCTION_MASK
#define GPU_GEMM_REDUCTION_MASK CUBLASLT_REDUCTION_SCHEME_MASK
#endif
#define GPU_SUMSQ_BLOCKS_PER_SM 8 /* sumsq's grid cap: partials per call <= sm_count * this */
#define GPU_LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt's recommendation for Hopper */

struct GpuAllocRec { void *p; size_t bytes; };
struct GpuModule { const char *src; char *opts; CUmodule mod; };
struct GpuFunc { int mod; char *name; CUfunction fn; };
struct GpuGemmPlan {
    int ta, tb, d_fp32;
    int timed;                      /* chosen by timing (g->nondeterministic when it was made) */
    int64_t m, n, k, lda, ldb, ldd;
    unsigned align;                 /* smallest pointer alignment of A, B, D (<= 256) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ld;
    cublasLtMatmulAlgo_t algo;
};

/* ---------------------------------------------------------------- errors */

GPUDEF void gpu_check_nvrtc_(nvrtcResult r, const char *call, const char *file, int line) {
    if (r == NVRTC_SUCCESS) return;
    fprintf(stderr, "%s:%d: NVRTC error %d %s in %s\n", file, line, (int)r, nvrtcGetErrorString(r), call);
    abort();
}

static void *gpu_xmalloc_(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "gpu.h: host malloc(%zu) failed\n", n); abort(); }
    return p;
}

static char *gpu_strdup_(const char *s) {
    size_t n = strlen(s) + 1;
    return (char *)memcpy(gpu_xmalloc_(n), s, n);
}

/* grow the array arr (capacity cap) to hold at least need elements */
/* ---------------------------------------------------------------- NVRTC */

/* the CUDA include directory: cuda_home/include (GpuTuning.cuda_home), else the build-time default */
static void gpu_include_opt_(char *buf, size_t n, const char *home) {
    if (home && *home) snprintf(buf, n, "--include-path=%s/include", home);
    else snprintf(buf, n, "--include-path=%s", GPU_CUDA_INCLUDE);
}

/* the flags gpu_nvrtc_ always passes, as one string for the kernel cache's key: keep them the same */
#define GPU_NVRTC_FIXED_FLAGS "-default-device -std=c++17 -lineinfo"

/* Compile source for arch. want_cubin: return the cubin (for sm_XX) instead of
   the PTX. Returns 0 on success; *out and *out_size receive the image, *log the log. */
static int gpu_nvrtc_(const char *source, const char *options, const char *arch, const char *cuda_home,
                      int want_cubin, char **out, size_t *out_size, char **log) {
    char arch_opt[64], inc_opt[1100];
    snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
    gpu_include_opt_(inc_opt, sizeof inc_opt, cuda_home);
    /* split the extra options at spaces (no quoting: options hold no spaces) */
    char *extra = gpu_strdup_(options ? options : "");
    const char *argv[64];
    int argc = 0;
    /* an explicit --gpu-architecture=... in options (e.g. sm_90a for wgmma kernels)
       replaces the default target */
    if (!options || !strstr(options, "--gpu-architecture=")) argv[argc++] = arch_opt;
    argv[argc++] = "-default-device"; /* these three are GPU_NVRTC_FIXED_FLAGS (the cache key) */
    argv[argc++] = "-std=c++17";
    argv[argc++] = "-lineinfo";
    argv[argc++] = inc_opt;
    char *save = NULL; /* strtok_r: gpu_compile_parallel runs this in several threads */
    for (char *tok = strtok_r(extra, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == 64) { fprintf(stderr, "gpu.h: too many NVRTC options: %s\n", options); abort(); }
        argv[argc++] = tok;
    }
    const char *hdr_src[3] = {KERNELS_COMMON_SRC, KERNELS_PATTERN_SRC, KERNELS_MMA_SRC};
    const char *hdr_name[3] = {KERNELS_COMMON_NAME, KERNELS_PATTERN_NAME, KERNELS_MMA_NAME};
    nvrtcProgram prog;
    NVRTC_CHECK(nvrtcCreateProgram(&prog, source, "kernel.cu", 3, hdr_src, hdr_name));
    nvrtcResult res = nvrtcCompileProgram(prog, argc, argv);
    if (log) {
        size_t n = 0;
        NVRTC_CHECK(nvrtcGetProgramLogSize(prog, &n));
        *log = (char *)gpu_xmalloc_(n + 1);
        NVRTC_CHECK(nvrtcGetProgramLog(prog, *log));
        (*log)[n] = 0;
    }
    if (res == NVRTC_SUCCESS && out) {
        size_t n = 0;
        if (want_cubin) NVRTC_CHECK(nvrtcGetCUBINSize(prog, &n));
        else NVRTC_CHECK(nvrtcGetPTXSize(prog, &n));
        *out = (char *)gpu_xmalloc_(n + 1);
        if (want_cubin) NVRTC_CHECK(nvrtcGetCUBIN(prog, *out));
        else NVRTC_CHECK(nvrtcGetPTX(prog, *out));
        (*out)[n] = 0;
        if (out_size) *out_size = n;
    }
    NVRTC_CHECK(nvrtcDestroyProgram(&prog));
    free(extra);
    return res == NVRTC_SUCCESS ? 0 : -1;
}

GPUDEF int gpu_compile_ptx(const char *source, const char *options, const char *arch, char **ptx_out,
                           char **log_out) {
    return gpu_nvrtc_(source, options, arch, NULL, 0, ptx_out, NULL, log_out);
}

GPUDEF const char *gpu_ptx_next_entry(const char *p, char *name, size_t n) {
    const char *e = p ? strstr(p, ".entry ") : NULL;
    if (!e) return NULL;
    e += 7;
    size_t k = 0;
    while (name && e[k] && e[k] != '(' && e[k] != ' ' && e[k] != '\n' && k + 1 < n) { name[k] = e[k]; k++; }
    if (name && n) name[k] = 0;
    return e;
}

GPUDEF int gpu_ptx_entries(const char *ptx) {
    int n = 0;
    for (const char *e = ptx; (e = gpu_ptx_next_entry(e, NULL, 0)); ) n++;
    return n;
}

/* ---------------------------------------------------------------- the kernel cache */

/* SHA-256 (FIPS 180-4), streamed: the kernel cache's key and checksum */
typedef struct { uint32_t h[8]; uint64_t bytes; unsigned char buf[64]; size_t nbuf; } GpuSha_;

static const uint32_t gpu_sha_k_[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t gpu_rotr_(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void gpu_sha_init_(GpuSha_ *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->bytes = 0;
    s->nbuf = 0;
}

static void gpu_sha_block_(GpuSha_ *s, const unsigned char *p) {
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = gpu_rotr_(w[i - 15], 7) ^ gpu_rotr_(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = gpu_rotr_(w[i - 2], 17) ^ gpu_rotr_(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = gpu_rotr_(v[4], 6) ^ gpu_rotr_(v[4], 11) ^ gpu_rotr_(v[4], 25);
        uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint32_t t1 = v[7] + S1 + ch + gpu_sha_k_[i] + w[i];
        uint32_t S0 = gpu_rotr_(v[0], 2) ^ gpu_rotr_(v[0], 13) ^ gpu_rotr_(v[0], 22);
        uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + S0 + maj;
    }
    for (int i = 0; i < 8; i++) s->h[i] += v[i];
}

static void gpu_sha_update_(GpuSha_ *s, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    s->bytes += n;
    while (n) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take; p += take; n -= take;
        if (s->nbuf == 64) { gpu_sha_block_(s, s->buf); s->nbuf = 0; }
    }
}

static void gpu_sha_final_(GpuSha_ *s, unsigned char out[32]) {
    uint64_t bits = s->bytes * 8;
    unsigned char pad[72] = {0x80}, len[8];
    size_t npad = (s->nbuf < 56 ? 56 : 120) - s->nbuf;
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
    gpu_sha_update_(s, pad, npad);
    gpu_sha_update_(s, len, 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

GPUDEF void gpu_sha256(const void *data, size_t n, unsigned char out[32]) {
    GpuSha_ s;
    gpu_sha_init_(&s);
    gpu_sha_update_(&s, data, n);
    gpu_sha_final_(&s, out);
}

/* one key field: its length first, so that no two different field lists hash alike */
static void gpu_sha_field_(GpuSha_ *s, const char *str) {
    uint64_t n = str ? strlen(str) : UINT64_MAX; /* NULL differs from "" */
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    gpu_sha_update_(s, len, 8);
    if (str) gpu_sha_update_(s, str, (size_t)n);
}

GPUDEF void gpu_kcache_key(unsigned char key[GPU_KCACHE_KEY], const char *source, const char *options,
                           const char *arch, const char *cuda_home, int driver_version) {
    int major = 0, minor = 0;
    NVRTC_CHECK(nvrtcVersion(&major, &minor));
    char inc[1100], vers[64];
    gpu_include_opt_(inc, sizeof inc, cuda_home);
    snprintf(vers, sizeof vers, "nvrtc %d.%d driver %d", major, minor, driver_version);
    GpuSha_ s;
    gpu_sha_init_(&s);
    /* GPU_NVRTC_FIXED_FLAGS: gpu_nvrtc_'s own flags, so that changing them changes every key */
    const char *fields[] = {"ablate kernel cache 1", GPU_NVRTC_FIXED_FLAGS, source, options ? options : "",
                            arch, inc, vers, KERNELS_COMMON_NAME, KERNELS_COMMON_SRC, KERNELS_PATTERN_NAME,
                            KERNELS_PATTERN_SRC, KERNELS_MMA_NAME, KERNELS_MMA_SRC};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) gpu_sha_field_(&s, fields[i]);
    gpu_sha_final_(&s, key);
}

/* dir/<key in hex>.bin; -1 when it does not fit */
static int gpu_kcache_path_(char *path, size_t n, const char *dir, const unsigned char *key) {
    char hex[2 * GPU_KCACHE_KEY + 1];
    for (int i = 0; i < GPU_KCACHE_KEY; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
    int len = snprintf(path, n, "%s/%s.bin", dir, hex);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

static void gpu_put_u64_(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint64_t gpu_get_u64_(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static const char gpu_kcache_magic_[8] = {'A', 'B', 'L', 'K', 'C', 'C', '0', '1'};

GPUDEF int gpu_kcache_read(const char *dir, const unsigned char key[GPU_KCACHE_KEY], char **image, size_t *size) {
    char path[4096];
    *image = NULL;
    *size = 0;
    if (gpu_kcache_path_(path, sizeof path, dir, key)) return -1;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 1 : -1;
    unsigned char h[GPU_KCACHE_HEADER], sum[32];
    int ok = fread(h, 1, sizeof h, f) == sizeof h && !memcmp(h, gpu_kcache_magic_, 8) &&
             !memcmp(h + 8, key, GPU_KCACHE_KEY);
    uint64_t n = ok ? gpu_get_u64_(h + 40) : 0;
    ok = ok && n > 0 && n < ((uint64_t)1 << 31); /* a cubin is megabytes at most */
    char *buf = ok ? (char *)gpu_xmalloc_((size_t)n + 1) : NULL;
    /* the payload, and nothing after it: a longer file is not what was written */
    ok = ok && fread(buf, 1, (size_t)n, f) == (size_t)n && fgetc(f) == EOF;
    fclose(f);
    if (ok) gpu_sha256(buf, (size_t)n, sum);
    if (!ok || memcmp(sum, h + 48, 32)) { free(buf); return -1; }
    buf[n] = 0;
    *image = buf;
    *size = (size_t)n;
    return 0;
}

/* mkdir -p: dir and its missing parents */
static int gpu_mkdirs_(const char *dir) {
    char p[4096];
    int len = snprintf(p, sizeof p, "%s", dir);
    if (len <= 0 || (size_t)len >= sizeof p) { errno = ENAMETOOLONG; return -1; }
    for (char *c = p + 1; ; c++) {
        if (*c != '/' && *c) continue;
        char keep = *c;
        *c = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *c = keep;
        if (!keep) break;
    }
    struct stat st;
    if (stat(p, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

GPUDEF int gpu_kcache_write(const char *dir, const unsigned char key[GPU_KCACHE_KEY], const char *image,
                            size_t size, char *err, size_t errlen) {
    char path[4096], tmp[4200];
    if (gpu_kcache_path_(path, sizeof path, dir, key)) {
        snprintf(err, errlen, "kernel cache directory path too long (%zu characters, at most about 4000)", strlen(dir));
        return -1;
    }
    if (gpu_mkdirs_(dir) != 0) {
        snprintf(err, errlen, "cannot create the kernel cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* a name no other process or thread has: mkstemp makes it unique and opens it */
    snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file in the kernel cache directory %s: %s", dir, strerror(errno));
        return -1;
    }
    unsigned char h[GPU_KCACHE_HEADER];
    memcpy(h, gpu_kcache_magic_, 8);
    memcpy(h + 8, key, GPU_KCACHE_KEY);
    gpu_put_u64_(h + 40, (uint64_t)size);
    gpu_sha256(image, size, h + 48);
    FILE *f = fdopen(fd, "wb");
    int ok = f && fwrite(h, 1, sizeof h, f) == sizeof h && fwrite(image, 1, size, f) == size;
    int e = errno;
    if (f) { if (fclose(f) != 0 && ok) { ok = 0; e = errno; } }
    else close(fd);
    if (ok && rename(tmp, path) != 0) { ok = 0; e = errno; }
    if (!ok) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write the kernel cache file %s: %s", path, strerror(e));
        return -1;
    }
    /* mkstemp creates the file 0600: readable by its owner's other processes, which is all a
       per-user cache needs */
    return 0;
}

static double gpu_wall_(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* the jobs a thread compiles: every stride-th one from its first */
typedef struct { GpuCompileJob *jobs; int n, first, stride; } GpuCompileShare_;

static void *gpu_compile_thread_(void *arg) {
    GpuCompileShare_ *sh = (GpuCompileShare_ *)arg;
    for (int i = sh->first; i < sh->n; i += sh->stride) {
        GpuCompileJob *j = &sh->jobs[i];
        double t0 = gpu_wall_();
        j->rc = gpu_nvrtc_(j->source, j->options, j->arch, j->cuda_home, j->want_cubin, &j->image, &j->size, &j->log);
        j->seconds = gpu_wall_() - t0;
    }
    return NULL;
}

GPUDEF int gpu_compile_parallel(GpuCompileJob *jobs, int n, int threads) {
    enum { MAX_THREADS = 32 };
    if (threads > n) threads = n;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads < 1) threads = 1;
    pthread_t tid[MAX_THREADS];
    GpuCompileShare_ sh[MAX_THREADS];
    int started = 1; /* share 0 runs on this thread */
    for (int t = 0; t < threads; t++) sh[t] = (GpuCompileShare_){jobs, n, t, threads};
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tid[t], NULL, gpu_compile_thread_, &sh[t]) != 0) break;
        started++;
    }
    /* a thread that could not start: its shares run here (stride `threads` still covers them) */
    for (int t = started; t < threads; t++) gpu_compile_thread_(&sh[t]);
    gpu_compile_thread_(&sh[0]);
    for (int t = 1; t < started; t++) pthread_join(tid[t], NULL);
    int failed = 0;
    for (int i = 0; i < n; i++) failed += jobs[i].rc != 0;
    return failed;
}

GPUDEF int gpu_kernel_spec_add(GpuKernelSpec *out, int max, int n, const char *source, const char *options) {
    if (n < max) {
        out[n].source = source;
        if ((size_t)snprintf(out[n].options, sizeof out[n].options, "%s", options ? options : "") >=
            sizeof out[n].options) {
            fprintf(stderr, "gpu_kernel_spec_add: options longer than %d characters: %s\n",
                    GPU_KERNEL_OPTIONS_MAX - 1, options ? options : "");
            abort(); /* a programming error: GPU_KERNEL_OPTIONS_MAX is too small */
        }
    }
    return n + 1;
}

GPUDEF void gpu_require_aligned16(const char *who, const void *const *p, int n) {
    for (int i = 0; i < n; i++)
        if ((uintptr_t)p[i] & 15) {
            fprintf(stderr, "%s: tensor argument %d (%p) is not 16-byte aligned\n", who, i, p[i]);
            abort();
        }
}

#ifndef GPU_NVRTC_ONLY /* the rest needs the driver and cuBLASLt */

/* ---------------------------------------------------------------- the driver */

/* One table per process, as the driver library itself is loaded once per process (and
   stays loaded: cuBLASLt's runtime and the compiled-image cache outlive any one Gpu). */
static GpuDriver gpu_driver_;

GPUDEF const GpuDriver *gpu_cu(void) { return &gpu_driver_; }

#define GPU_STR_(x) #x
#define GPU_SYMBOL_(fn) GPU_STR_(fn) /* the name after cuda.h's renaming: "cuMemAlloc_v2" */

GPUDEF int gpu_driver_load(char *err, size_t errlen) {
    if (gpu_driver_.lib) return 0;
    /* libcuda.so.1 is the name the driver installs; plain libcuda.so is tried for systems
       that ship only that link */
    const char *path = "libcuda.so.1";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        char why[256];
        const char *e = dlerror();
        snprintf(why, sizeof why, "%s", e ? e : "no reason given");
        path = "libcuda.so";
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(err, errlen, "the NVIDIA driver library libcuda.so.1 could not be loaded (%s; "
                     "no NVIDIA driver on this machine?)", why);
            return -1;
        }
    }
    GpuDriver d;
    memset(&d, 0, sizeof d);
    d.lib = lib;
    /* a missing function means a driver older than the toolkit this was built with */
#define GPU_CU_RESOLVE_(fn)                                                                      \
    if (!(d.fn = (__typeof__(fn) *)dlsym(lib, GPU_SYMBOL_(fn)))) {                               \
        snprintf(err, errlen, "the NVIDIA driver library %s has no function %s: the driver is "   \
                 "older than this build's CUDA %d.%d (update the driver)", path, GPU_SYMBOL_(fn),  \
                 CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);                                \
        dlclose(lib);                                                                            \
        return -1;                                                                               \
    }
    GPU_CU_FUNCS(GPU_CU_RESOLVE_)
#undef GPU_CU_RESOLVE_
    gpu_driver_ = d;
    return 0;
}

/* a checked call's text without the table access, so messages name the driver function as
   its documentation does: "cuInit(0)", not "gpu_cu()->cuInit(0)" */
static const char *gpu_call_text_(const char *call) {
    const char *via = "gpu_cu()->";
    return strncmp(call, via, strlen(via)) ? call : call + strlen(via);
}

GPUDEF void gpu_check_cu_(CUresult r, const char *call, const char *file, int line) {
    if (r == CUDA_SUCCESS) return;
    call = gpu_call_text_(call);
    const char *name = "unknown CUresult", *text = "";
    if (gpu_driver_.lib) { /* r came from the driver, so it is loaded; this is only a guard */
        if (gpu_driver_.cuGetErrorName(r, &name) != CUDA_SUCCESS) name = "unknown CUresult";
        if (gpu_driver_.cuGetErrorString(r, &text) != CUDA_SUCCESS) text = "";
    }
    fprintf(stderr, "%s:%d: CUDA driver error %d %s (%s) in %s\n", file, line, (int)r, name, text, call);
    abort();
}

GPUDEF void gpu_check_cublas_(cublasStatus_t r, const char *call, const char *file, int line) {
    if (r == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "%s:%d: cuBLAS error %d %s (%s) in %s\n", file, line, (int)r,
            cublasLtGetStatusName(r), cublasLtGetStatusString(r), call);
    abort();
}

#define GPU_GROW_(arr, cap, need)                                                        \
    do {                                                                                 \
        if ((need) > (cap)) {                                                            \
            int nc_ = (cap) ? (cap) * 2 : 16;                                            \
            while (nc_ < (need)) nc_ *= 2;                                               \
            void *p_ = realloc((arr), (size_t)nc_ * sizeof *(arr));                      \
            if (!p_) { fprintf(stderr, "gpu.h: host realloc failed\n"); abort(); }       \
            (arr) = p_;                                                                  \
            (cap) = nc_;                                                                 \
        }                                                                                \
    } while (0)

static CUdeviceptr gpu_dptr_(const void *p) { return (CUdeviceptr)(uintptr_t)p; }

/* ---------------------------------------------------------------- runtime */

/* like CU_CHECK, but puts the reason in g->err and returns -1 from gpu_init instead of
   aborting */
#define GPU_INIT_TRY(call)                                                                     \
    do {                                                                                       \
        CUresult r_ = (call);                                                                  \
        if (r_ != CUDA_SUCCESS) {                                                              \
            const char *n_ = NULL;                                                             \
            if (gpu_cu()->cuGetErrorName(r_, &n_) != CUDA_SUCCESS) n_ = "unknown CUresult";    \
            snprintf(g->err, sizeof g->err, "%s failed with %s (%d)", gpu_call_text_(#call), n_, \
                     (int)r_);                                                                 \
            return -1;                                                                         \
        }                                                                                      \
    } while (0)

GPUDEF int gpu_init(Gpu *g, int device_index) {
    memset(g, 0, sizeof *g);
    int count = 0, v = 0;
    if (gpu_driver_load(g->err, sizeof g->err) != 0) return -1;
    GPU_INIT_TRY(gpu_cu()->cuInit(0));
    GPU_INIT_TRY(gpu_cu()->cuDriverGetVersion(&g->driver_version));
    GPU_INIT_TRY(gpu_cu()->cuDeviceGetCount(&count));
    if (device_index < 0 || device_index >= count) {
        snprintf(g->err, sizeof g->err, "device %d requested, %d present", device_index, count);
        return -1;
    }
    GPU_INIT_TRY(gpu_cu()->cuDeviceGet(&g->dev, device_index));
    GPU_INIT_TRY(gpu_cu()->cuDeviceGetAttribute(&g->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->dev));
    GPU_INIT_TRY(gpu_cu()->cuDeviceGetAttribute(&g->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->dev));
    GPU_INIT_TRY(gpu_cu()->cuDeviceGetAttribute(&g->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, g->dev));
    GPU_INIT_TRY(gpu_cu()->cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, g->dev));
    g->smem_optin = (size_t)v;
    if (g->cc_major < 8) {
        snprintf(g->err, sizeof g->err, "compute capability %d.%d, bf16 kernels need 8.0+", g->cc_major,
                 g->cc_minor);
        return -1;
    }
    /* the primary context is the one the runtime API (inside cuBLASLt) uses too */
    GPU_INIT_TRY(gpu_cu()->cuDevicePrimaryCtxRetain(&g->ctx, g->dev));
    GPU_INIT_TRY(gpu_cu()->cuCtxSetCurrent(g->ctx));
    GPU_INIT_TRY(gpu_cu()->cuStreamCreate(&g->stream, CU_STREAM_NON_BLOCKING));

    /* NVRTC target: the device's own arch when this NVRTC knows it, else PTX for
       the newest arch it knows below the device (the driver JITs it) */
    int want = g->cc_major * 10 + g->cc_minor, n_arch = 0, best = 0, exact = 0;
    NVRTC_CHECK(nvrtcGetNumSupportedArchs(&n_arch));
    int *archs = (int *)gpu_xmalloc_(sizeof(int) * (size_t)(n_arch > 0 ? n_arch : 1));
    NVRTC_CHECK(nvrtcGetSupportedArchs(archs));
    for (int i = 0; i < n_arch; i++) {
        if (archs[i] == want) exact = 1;
        if (archs[i] <= want && archs[i] > best) best = archs[i];
    }
    free(archs);
    if (!best) {
        snprintf(g->err, sizeof g->err, "this NVRTC cannot target sm_%d", want);
        return -1;
    }
    snprintf(g->arch, sizeof g->arch, exact ? "sm_%d" : "compute_%d", exact ? want : best);

    cublasStatus_t st = cublasLtCreate(&g->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        snprintf(g->err, sizeof g->err, "cublasLtCreate failed with %s", cublasLtGetStatusName(st));
        return -1;
    }
    g->lt_workspace_size = GPU_LT_WORKSPACE;
    g->lt_workspace = gpu_alloc(g, g->lt_workspace_size);
    /* allocated here, not on first use: the optimizer's CUDA graph captures sumsq */
    g->sumsq_part = (float *)gpu_alloc(g, sizeof(float) * (size_t)g->sm_count * GPU_SUMSQ_BLOCKS_PER_SM);
    return 0;
}

GPUDEF void gpu_free_all(Gpu *g) {
    if (!g->ctx) return;
    CU_CHECK(gpu_cu()->cuCtxSetCurrent(g->ctx));
    CU_CHECK(gpu_cu()->cuStreamSynchronize(g->stream));
    for (int i = 0; i < g->n_plans; i++) {
        GpuGemmPlan *p = &g->plans[i];
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->la));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lb));
        CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->ld));
        CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
    }
    free(g->plans);
    for (int i = 0; i < g->n_funcs; i++) free(g->funcs[i].name);
    free(g->funcs);
    for (int i = 0; i < g->n_mods; i++) {
        CU_CHECK(gpu_cu()->cuModuleUnload(g->mods[i].mod));
        free(g->mods[i].opts);
    }
    free(g->mods);
    for (int i = 0; i < g->n_allocs; i++) CU_CHECK(gpu_cu()->cuMemFree(gpu_dptr_(g->allocs[i].p)));
    free(g->allocs);
    if (g->lt) CUBLAS_CHECK(cublasLtDestroy(g->lt));
    if (g->side_stream) {
        CU_CHECK(gpu_cu()->cuStreamDestroy(g->side_stream));
        CU_CHECK(gpu_cu()->cuEventDestroy(g->ev_fork));
        CU_CHECK(gpu_cu()->cuEventDestroy(g->ev_join));
    }
    if (g->comm_stream) {
        CU_CHECK(gpu_cu()->cuStreamDestroy(g->comm_stream));
        CU_CHECK(gpu_cu()->cuEventDestroy(g->ev_comm_fork));
        CU_CHECK(gpu_cu()->cuEventDestroy(g->ev_comm_join));
    }
    CU_CHECK(gpu_cu()->cuStreamDestroy(g->stream));
    CU_CHECK(gpu_cu()->cuDevicePrimaryCtxRelease(g->dev));
    memset(g, 0, sizeof *g);
}

GPUDEF void *gpu_alloc(Gpu *g, size_t bytes) {
    CUdeviceptr p = 0;
    CUresult r = gpu_cu()->cuMemAlloc(&p, bytes ? bytes : 1);
    if (r != CUDA_SUCCESS) {
        const char *name = NULL, *text = NULL;
        if (gpu_cu()->cuGetErrorName(r, &name) != CUDA_SUCCESS) name = "unknown CUresult";
        if (gpu_cu()->cuGetErrorString(r, &text) != CUDA_SUCCESS) text = "";
        fprintf(stderr, "gpu_alloc: cuMemAlloc of %zu bytes (%.2f GiB; %.2f GiB already in use) failed: %s (%s)\n",
                bytes, bytes / 1073741824.0, g->bytes_in_use / 1073741824.0, name, text);
        abort();
    }
    GPU_GROW_(g->allocs, g->cap_allocs, g->n_allocs + 1);
    g->allocs[g->n_allocs].p = (void *)(uintptr_t)p;
    g->allocs[g->n_allocs].bytes = bytes;
    g->n_allocs++;
    g->bytes_in_use += bytes;
    if (g->bytes_in_use > g->peak_bytes) g->peak_bytes = g->bytes_in_use;
    return (void *)(uintptr_t)p;
}

GPUDEF void *gpu_scratch(Gpu *g, void **p, size_t *have, size_t bytes) {
    if (*have < bytes) {
        CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
        CU_CHECK(gpu_cu()->cuStreamIsCapturing(g->stream, &cs));
        if (cs != CU_STREAM_CAPTURE_STATUS_NONE) {
            fprintf(stderr, "gpu_scratch: a scratch buffer must grow from %zu to %zu bytes during a CUDA graph "
                    "capture, which cannot hold an allocation: run this shape once eagerly before capturing\n",
                    *have, bytes);
            abort();
        }
        gpu_scratch_release(g, p, have);
        *p = gpu_alloc(g, bytes);
        *have = bytes;
    }
    return *p;
}

GPUDEF void gpu_scratch_release(Gpu *g, void **p, size_t *have) {
    if (*p) {
        gpu_sync(g); /* kernels queued earlier may still use it */
        gpu_free(g, *p);
    }
    *p = NULL;
    *have = 0;
}

GPUDEF void gpu_free(Gpu *g, void *p) {
    if (!p) return;
    /* newest first: temporaries are usually freed soon after they are made */
    for (int i = g->n_allocs - 1; i >= 0; i--) {
        if (g->allocs[i].p != p) continue;
        CU_CHECK(gpu_cu()->cuMemFree(gpu_dptr_(p)));
        g->bytes_in_use -= g->allocs[i].bytes;
        g->allocs[i] = g->allocs[--g->n_allocs];
        return;
    }
    fprintf(stderr, "gpu_free: %p was not allocated by gpu_alloc (or freed twice)\n", p);
    abort();
}

GPUDEF void gpu_memset0(Gpu *g, void *p, size_t bytes) {
    if (bytes) CU_CHECK(gpu_cu()->cuMemsetD8Async(gpu_dptr_(p), 0, bytes, g->stream));
}

/* from pageable memory the copy has left src when this returns, so src may be reused */
GPUDEF void gpu_upload(Gpu *g, void *dst, const void *src, size_t bytes) {
    if (bytes) CU_CHECK(gpu_cu()->cuMemcpyHtoDAsync(gpu_dptr_(dst), src, bytes, g->stream));
}

GPUDEF void gpu_download(Gpu *g, void *dst, const void *src, size_t bytes) {
    if (bytes) CU_CHECK(gpu_cu()->cuMemcpyDtoHAsync(dst, gpu_dptr_(src), bytes, g->stream));
    CU_CHECK(gpu_cu()->cuStreamSynchronize(g->stream));
}

GPUDEF void gpu_copy(Gpu *g, void *dst, const void *src, size_t bytes) {
    if (bytes) CU_CHECK(gpu_cu()->cuMemcpyDtoDAsync(gpu_dptr_(dst), gpu_dptr_(src), bytes, g->stream));
}

GPUDEF void gpu_sync(Gpu *g) { CU_CHECK(gpu_cu()->cuStreamSynchronize(g->stream)); }

/* `waiter` runs what is queued on it next only after what `source` has queued so far (ev is
   recorded on source; one event per direction is enough: a wait takes the event as it stands
   when the wait is queued) */
static void gpu_stream_after_(CUstream waiter, CUevent ev, CUstream source) {
    CU_CHECK(gpu_cu()->cuEventRecord(ev, source));
    CU_CHECK(gpu_cu()->cuStreamWaitEvent(waiter, ev, 0));
}

GPUDEF CUstream gpu_comm_stream(Gpu *g) {
    if (!g->comm_stream) {
        CU_CHECK(gpu_cu()->cuStreamCreate(&g->comm_stream, CU_STREAM_NON_BLOCKING));
        CU_CHECK(gpu_cu()->cuEventCreate(&g->ev_comm_fork, CU_EVENT_DISABLE_TIMING));
        CU_CHECK(gpu_cu()->cuEventCreate(&g->ev_comm_join, CU_EVENT_DISABLE_TIMING));
    }
    return g->comm_stream;
}
/* gpu_comm_stream makes the events: it runs in a statement of its own, before they are read (as
   arguments of one call, the order in which they are evaluated is unspecified) */
GPUDEF void gpu_comm_after_main(Gpu *g) {
    CUstream comm = gpu_comm_stream(g);
    gpu_stream_after_(comm, g->ev_comm_fork, g->stream);
}
GPUDEF void gpu_main_after_comm(Gpu *g) {
    CUstream comm = gpu_comm_stream(g);
    gpu_stream_after_(g->stream, g->ev_comm_join, comm);
}

GPUDEF void gpu_graph_begin(Gpu *g) { CU_CHECK(gpu_cu()->cuStreamBeginCapture(g->stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)); }

GPUDEF CUgraphExec gpu_graph_end(Gpu *g) {
    CUgraph graph;
    CUgraphExec exec;
    CU_CHECK(gpu_cu()->cuStreamEndCapture(g->stream, &graph));
    CU_CHECK(gpu_cu()->cuGraphInstantiate(&exec, graph, 0));
    CU_CHECK(gpu_cu()->cuGraphDestroy(graph));
    return exec;
}

GPUDEF void gpu_graph_launch(Gpu *g, CUgraphExec exec) { CU_CHECK(gpu_cu()->cuGraphLaunch(exec, g->stream)); }

GPUDEF void gpu_graph_free(CUgraphExec exec) {
    if (exec) CU_CHECK(gpu_cu()->cuGraphExecDestroy(exec));
}

static void gpu_dbg_check_at_(Gpu *g, const char *what) {
    if (!g->tuning.sync_check) return;
    CUresult r = gpu_cu()->cuStreamSynchronize(g->stream);
    if (r != CUDA_SUCCESS) {
        const char *name = NULL;
        if (gpu_cu()->cuGetErrorName(r, &name) != CUDA_SUCCESS) name = "unknown CUresult";
        fprintf(stderr, "sync_check: error %s after %s\n", name, what);
        abort();
    }
}

GPUDEF void gpu_dbg_check(Gpu *g) { gpu_dbg_check_at_(g, "gpu_dbg_check"); }

static int gpu_same_opts_(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Compiled images kept in host memory for the whole process, keyed like the modules plus
   the target: a Gpu made after gpu_free_all (a check that starts each run on a fresh
   context, so that GEMM plans are chosen anew) loads them instead of compiling again.
   Not thread-safe, as the rest of this runtime. */
typedef struct { const char *src; char *opts; char arch[16]; char *image; } GpuImage;
static GpuImage *gpu_images_;
static int gpu_n_images_, gpu_cap_images_;

static char *gpu_image_find_(const char *source, const char *options, const char *arch) {
    for (int i = 0; i < gpu_n_images_; i++) {
        GpuImage *c = &gpu_images_[i];
        if (c->src == source && gpu_same_opts_(c->opts, options) && !strcmp(c->arch, arch)) return c->image;
    }
    return NULL;
}

/* image: malloc'ed, now owned by the table */
static void gpu_image_add_(const char *source, const char *options, const char *arch, char *image) {
    GPU_GROW_(gpu_images_, gpu_cap_images_, gpu_n_images_ + 1);
    GpuImage *c = &gpu_images_[gpu_n_images_++];
    c->src = source;
    c->opts = gpu_strdup_(options ? options : "");
    snprintf(c->arch, sizeof c->arch, "%s", arch);
    c->image = image;
}

/* the disk cache is an optimization: a failure to write it is said once per Gpu, and the
   kernels still run from memory */
static void gpu_kcache_store_(Gpu *g, const unsigned char *key, const char *image, size_t size) {
    char err[4400];
    if (gpu_kcache_write(g->tuning.kernel_cache, key, image, size, err, sizeof err) == 0 || g->kcache_warned) return;
    fprintf(stderr, "gpu_kernel: warning: %s (continuing without caching compiled kernels there)\n", err);
    g->kcache_warned = 1;
}

static int gpu_kcache_on_(const Gpu *g) { return g->tuning.kernel_cache && *g->tuning.kernel_cache; }

/* the disk cache's image for (source, options) on g's target into the table, or NULL; key
   receives the key (when the cache is on) */
static char *gpu_kcache_load_(Gpu *g, const char *source, const char *options, unsigned char *key) {
    if (!gpu_kcache_on_(g)) return NULL;
    double t0 = gpu_wall_();
    char *image = NULL;
    size_t size = 0;
    gpu_kcache_key(key, source, options, g->arch, g->tuning.cuda_home, g->driver_version);
    /* 1 absent, -1 unreadable or corrupt: both compile, and the write replaces the file */
    if (gpu_kcache_read(g->tuning.kernel_cache, key, &image, &size) == 0) {
        gpu_image_add_(source, options, g->arch, image);
        g->jit.from_disk++;
    }
    g->jit.load_s += gpu_wall_() - t0;
    return image;
}

/* the compiled image of (source, options) for g: this process's table, else the disk cache,
   else NVRTC (then stored in both); aborts with NVRTC's log when the source does not compile */
static char *gpu_image_get_(Gpu *g, const char *source, const char *options, const char *name) {
    char *image = gpu_image_find_(source, options, g->arch);
    if (image) { g->jit.from_memory++; return image; }
    unsigned char key[GPU_KCACHE_KEY];
    if ((image = gpu_kcache_load_(g, source, options, key))) return image;
    char *log = NULL;
    size_t size = 0;
    int cubin = strncmp(g->arch, "sm_", 3) == 0;
    double t0 = gpu_wall_();
    if (gpu_nvrtc_(source, options, g->arch, g->tuning.cuda_home, cubin, &image, &size, &log) != 0) {
        fprintf(stderr, "gpu_kernel: NVRTC failed to compile the source of kernel '%s' for %s "
                        "with options \"%s\":\n%s\n", name, g->arch, options ? options : "", log);
        abort();
    }
    g->jit.compile_s += gpu_wall_() - t0;
    g->jit.compiled++;
    free(log);
    /* (a PTX's size counts its NUL; gpu_kcache_read adds one after any image anyway) */
    if (gpu_kcache_on_(g)) gpu_kcache_store_(g, key, image, size);
    gpu_image_add_(source, options, g->arch, image);
    return image;
}

GPUDEF void gpu_kernel_prewarm(Gpu *g, const GpuKernelSpec *specs, int n) {
    GpuCompileJob *jobs = (GpuCompileJob *)gpu_xmalloc_(sizeof *jobs * (size_t)(n + 1));
    unsigned char *keys = (unsigned char *)gpu_xmalloc_((size_t)GPU_KCACHE_KEY * (size_t)(n + 1));
    int nj = 0, cubin = strncmp(g->arch, "sm_", 3) == 0;
    for (int i = -1; i < n; i++) { /* -1: the core ops' module, which every model uses */
        const char *src = i < 0 ? KERNELS_SRC : specs[i].source, *opt = i < 0 ? "" : specs[i].options;
        int dup = 0; /* listed twice: one compile */
        for (int j = 0; j < nj && !dup; j++) dup = jobs[j].source == src && gpu_same_opts_(jobs[j].options, opt);
        if (dup || gpu_image_find_(src, opt, g->arch)) continue;
        if (gpu_kcache_load_(g, src, opt, keys + (size_t)GPU_KCACHE_KEY * nj)) continue;
        GpuCompileJob *j = &jobs[nj++];
        memset(j, 0, sizeof *j);
        j->source = src; j->options = opt; j->arch = g->arch; j->cuda_home = g->tuning.cuda_home;
        j->want_cubin = cubin;
    }
    if (nj) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        double t0 = gpu_wall_();
        gpu_compile_parallel(jobs, nj, cpus < 1 ? 1 : cpus > 16 ? 16 : (int)cpus);
        g->jit.compile_s += gpu_wall_() - t0;
    }
    for (int i = 0; i < nj; i++) {
        GpuCompileJob *j = &jobs[i];
        free(j->log);
        if (j->rc != 0) { free(j->image); continue; } /* gpu_kernel compiles it again and reports it */
        g->jit.compiled++;
        if (gpu_kcache_on_(g))
            gpu_kcache_store_(g, keys + (size_t)GPU_KCACHE_KEY * i, j->image, j->size);
        gpu_image_add_(j->source, j->options, g->arch, j->image);
    }
    free(keys);
    free(jobs);
}

GPUDEF CUfunction gpu_kernel(Gpu *g, const char *source, const char *name, const char *options) {
    for (int i = 0; i < g->n_funcs; i++) {
        GpuFunc *f = &g->funcs[i];
        GpuModule *m = &g->mods[f->mod];
        if (m->src == source && strcmp(f->name, name) == 0 && gpu_same_opts_(m->opts, options))
            return f->fn;
    }
    int mi = -1;
    for (int i = 0; i < g->n_mods; i++)
        if (g->mods[i].src == source && gpu_same_opts_(g->mods[i].opts, options)) { mi = i; break; }
    if (mi < 0) {
        char *image = gpu_image_get_(g, source, options, name);
        GPU_GROW_(g->mods, g->cap_mods, g->n_mods + 1);
        GpuModule *m = &g->mods[g->n_mods];
        CU_CHECK(gpu_cu()->cuModuleLoadData(&m->mod, image));
        m->src = source;
        m->opts = gpu_strdup_(options ? options : "");
        mi = g->n_mods++;
    }
    CUfunction fn;
    CUresult r = gpu_cu()->cuModuleGetFunction(&fn, g->mods[mi].mod, name);
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "gpu_kernel: no kernel named '%s' in the module (options \"%s\"); "
                        "is it extern \"C\" __global__?\n", name, options ? options : "");
        CU_CHECK(r);
    }
    GPU_GROW_(g->funcs, g->cap_funcs, g->n_funcs + 1);
    g->funcs[g->n_funcs].mod = mi;
    g->funcs[g->n_funcs].name = gpu_strdup_(name);
    g->funcs[g->n_funcs].fn = fn;
    g->n_funcs++;
    return fn;
}

/* dep 1: programmatic dependent launch where tuned so; 2: cooperative */
static void gpu_launch_ex_(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                           unsigned bz, unsigned smem, void **args, int dep) {
    if (smem > 48 * 1024) {
        if (smem > g->smem_optin) {
            fprintf(stderr, "gpu_launch: %u bytes of shared memory asked, the device allows %zu\n",
                    smem, g->smem_optin);
            abort();
        }
        CU_CHECK(gpu_cu()->cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)smem));
    }
    if (dep == 2 || (dep && g->tuning.dec_pdl && g->cc_major >= 9)) {
        CUlaunchAttribute at[1];
        memset(at, 0, sizeof at);
        if (dep == 2) {
            at[0].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
            at[0].value.cooperative = 1;
        } else {
            at[0].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
            at[0].value.programmaticStreamSerializationAllowed = 1;
        }
        CUlaunchConfig lc;
        memset(&lc, 0, sizeof lc);
        lc.gridDimX = gx; lc.gridDimY = gy; lc.gridDimZ = gz;
        lc.blockDimX = bx; lc.blockDimY = by; lc.blockDimZ = bz;
        lc.sharedMemBytes = smem;
        lc.hStream = g->stream;
        lc.attrs = at;
        lc.numAttrs = 1;
        CU_CHECK(gpu_cu()->cuLaunchKernelEx(&lc, f, args, NULL));
    } else {
        CU_CHECK(gpu_cu()->cuLaunchKernel(f, gx, gy, gz, bx, by, bz, smem, g->stream, args, NULL));
    }
    if (g->tuning.sync_check) {
        const char *name = NULL;
        if (gpu_cu()->cuFuncGetName(&name, f) != CUDA_SUCCESS) name = "?";
        char what[256];
        snprintf(what, sizeof what, "kernel %s", name);
        gpu_dbg_check_at_(g, what);
    }
}

GPUDEF void gpu_launch(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                       unsigned by, unsigned bz, unsigned smem, void **args) {
    gpu_launch_ex_(g, f, gx, gy, gz, bx, by, bz, smem, args, 0);
}

GPUDEF void gpu_launch_dep(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                           unsigned by, unsigned bz, unsigned smem, void **args) {
    gpu_launch_ex_(g, f, gx, gy, gz, bx, by, bz, smem, args, 1);
}

GPUDEF void gpu_launch_coop(Gpu *g, CUfunction f, unsigned gx, unsigned bx, unsigned smem, void **args) {
    gpu_launch_ex_(g, f, gx, 1, 1, bx, 1, 1, smem, args, 2);
}

/* ---------------------------------------------------------------- helpers for the ops */

static CUfunction gpu_k_(Gpu *g, const char *name) { return gpu_kernel(g, KERNELS_SRC, name, NULL); }

/* all pointers 16-byte aligned: the kernels may use 16-byte vector accesses */
static int gpu_aligned16_(const void *a, const void *b, const void *c, const void *d) {
    uintptr_t u = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)d;
    return (u & 15) == 0;
}

/* 1-D grid-stride launch over `work` items, 256 threads a block */
static void gpu_launch1d_(Gpu *g, CUfunction f, size_t work, void **args) {
    if (work == 0) return;
    size_t blocks = (work + 255) / 256, cap = (size_t)g->sm_count * 32;
    if (blocks > cap) blocks = cap;
    gpu_launch(g, f, (unsigned)blocks, 1, 1, 256, 1, 1, 0, args);
}

/* ---------------------------------------------------------------- cuBLASLt */

static unsigned gpu_align_of_(const void *p) {
    uintptr_t u = (uintptr_t)p;
    unsigned a = 256;
    while (a > 1 && (u & (a - 1))) a >>= 1;
    return a;
}

/* Row-major D[M,Nn] = op(A) op(B) is column-major D^T[Nn,M] = op(B)^T op(A)^T:
   so cuBLASLt's "A" is our B and its "B" is our A, with the same transposes, and a
   row-major X[r,c] with row stride ld is the column-major [c,r] matrix with ld. */
/* Which of the heuristic's candidates a plan keeps. Deterministic (the default): the first,
   cuBLASLt's own pick for this shape, alignment and workspace, the same in every process.
   g->nondeterministic: cuBLASLt's first heuristic is often not its fastest for our skinny
   shapes (K = 576), so on a plan's first use time up to GPU_GEMM_CANDIDATES of them on the
   real inputs (into a scratch D, so an accumulating call is not disturbed) and keep the
   fastest; timing noise can make two processes keep different algorithms, whose sums are
   ordered differently. Returns the chosen index. */
static int gpu_gemm_tune_(Gpu *g, GpuGemmPlan *p, const void *A, const void *B, int M, int found,
                          const cublasLtMatmulHeuristicResult_t *res) {
    if (found < 2 || !g->nondeterministic) return 0;
    size_t bytes = (size_t)p->ldd * M * (p->d_fp32 ? 4 : 2);
    CUdeviceptr D;
    if (gpu_cu()->cuMemAlloc(&D, bytes) != CUDA_SUCCESS) return 0; /* no room to tune: take the first */
    CUevent e0, e1;
    CU_CHECK(gpu_cu()->cuEventCreate(&e0, CU_EVENT_DEFAULT));
    CU_CHECK(gpu_cu()->cuEventCreate(&e1, CU_EVENT_DEFAULT));
    float alpha = 1.0f, beta = 0.0f, best_ms = 1e30f;
    int best = 0;
    for (int i = 0; i < found; i++) {
        void *d = (void *)(uintptr_t)D;
        float ms = 0;
        if (cublasLtMatmul(g->lt, p->op, &alpha, B, p->la, A, p->lb, &beta, d, p->ld, d, p->ld, &res[i].algo,
                           g->lt_workspace, g->lt_workspace_size, (cudaStream_t)g->stream) != CUBLAS_STATUS_SUCCESS)
            continue; /* a candidate that refuses these pointers is skipped */
        CU_CHECK(gpu_cu()->cuEventRecord(e0, g->stream));
        for (int r = 0; r < 3; r++)
            CUBLAS_CHECK(cublasLtMatmul(g->lt, p->op, &alpha, B, p->la, A, p->lb, &beta, d, p->ld, d, p->ld,
                                        &res[i].algo, g->lt_workspace, g->lt_workspace_size,
                                        (cudaStream_t)g->stream));
        CU_CHECK(gpu_cu()->cuEventRecord(e1, g->stream));
        CU_CHECK(gpu_cu()->cuEventSynchronize(e1));
        CU_CHECK(gpu_cu()->cuEventElapsedTime(&ms, e0, e1));
        if (ms < best_ms) { best_ms = ms; best = i; }
    }
    CU_CHECK(gpu_cu()->cuEventDestroy(e0));
    CU_CHECK(gpu_cu()->cuEventDestroy(e1));
    CU_CHECK(gpu_cu()->cuMemFree(D));
    return best;
}

GPUDEF void gpu_gemm(Gpu *g, void *D, int d_fp32, const void *A, int trans_a, const void *B, int trans_b,
                     int M, int Nn, int K, int lda, int ldb, int ldd, float beta) {
    if (M <= 0 || Nn <= 0) return;
    if (K <= 0) { /* empty sum: D = beta * D */
        if (beta == 0.0f) {
            for (int r = 0; r < M; r++)
                gpu_memset0(g, (char *)D + (size_t)r * ldd * (d_fp32 ? 4 : 2), (size_t)Nn * (d_fp32 ? 4 : 2));
        }
        return;
    }
    unsigned align = gpu_align_of_(A);
    if (gpu_align_of_(B) < align) align = gpu_align_of_(B);
    if (gpu_align_of_(D) < align) align = gpu_align_of_(D);
    /* column-major problem: m = Nn, n = M, k = K; "A" = B, "B" = A */
    int ta = trans_b, tb = trans_a;
    int64_t m = Nn, n = M, k = K;
    GpuGemmPlan *p = NULL;
    for (int i = 0; i < g->n_plans; i++) {
        GpuGemmPlan *q = &g->plans[i];
        if (q->ta == ta && q->tb == tb && q->d_fp32 == d_fp32 && q->m == m && q->n == n && q->k == k &&
            q->lda == ldb && q->ldb == lda && q->ldd == ldd && q->align == align &&
            q->timed == (g->nondeterministic != 0)) { p = q; break; }
    }
    if (!p) {
        GPU_GROW_(g->plans, g->cap_plans, g->n_plans + 1);
        p = &g->plans[g->n_plans];
        memset(p, 0, sizeof *p);
        p->ta = ta; p->tb = tb; p->d_fp32 = d_fp32;
        p->m = m; p->n = n; p->k = k;
        p->lda = ldb; p->ldb = lda; p->ldd = ldd; p->align = align;
        p->timed = g->nondeterministic != 0;
        cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
        /* stored (column-major) shapes: op(X) is rows x cols, X itself is transposed if op is T */
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, ta ? k : m, ta ? m : k, p->lda));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, p->ldb));
        CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->ld, d_fp32 ? CUDA_R_32F : CUDA_R_16BF, m, n, p->ldd));
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        size_t ws = g->lt_workspace_size;
        uint32_t al = align, schemes = GPU_GEMM_REDUCTION_MASK;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                          sizeof schemes));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
        cublasLtMatmulHeuristicResult_t res[GPU_GEMM_CANDIDATES];
        int found = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->lt, p->op, p->la, p->lb, p->ld, p->ld, pref,
                                                    GPU_GEMM_CANDIDATES, res, &found));
        CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
        if (found < 1) {
            fprintf(stderr, "gpu_gemm: cuBLASLt has no algorithm for D[%d,%d] %s= op(A) op(B), K=%d, "
                            "trans_a=%d trans_b=%d, D %s, alignment %u\n", M, Nn, beta != 0.0f ? "+" : "",
                    K, trans_a, trans_b, d_fp32 ? "fp32" : "bf16", align);
            abort();
        }
        p->algo = res[gpu_gemm_tune_(g, p, A, B, M, found, res)].algo;
        g->n_plans++;
    }
    float alpha = 1.0f;
    CUBLAS_CHECK(cublasLtMatmul(g->lt, p->op, &alpha, B, p->la, A, p->lb, &beta, D, p->ld, D, p->ld,
                                &p->algo, g->lt_workspace, g->lt_workspace_size, (cudaStream_t)g->stream));
    gpu_dbg_check_at_(g, "cublasLtMatmul");
}

/* ---------------------------------------------------------------- ops */

GPUDEF void gpu_embed_forward(Gpu *g, void *out, const int *tok, const void *wte, int N, int C) {
    int vec = C % 8 == 0 && gpu_aligned16_(out, wte, NULL, NULL);
    void *args[] = {&out, &tok, &wte, &N, &C, &vec};
    gpu_launch1d_(g, gpu_k_(g, "embed_forward"), (size_t)N * ((C + 7) / 8), args);
}

/* the deterministic reductions' scratch; grows (synchronizing) only outside a graph capture,
   which the first eager training step guarantees for every shape of the step */
static void *gpu_det_scratch_(Gpu *g, size_t bytes) {
    return gpu_scratch(g, &g->det_scratch, &g->det_scratch_bytes, bytes);
}

/* dst[c] += sum over r < rows of part[r * cols + c], summed in a fixed order */
static void gpu_colsum_add_(Gpu *g, float *dst, const float *part, int rows, int cols) {
    if (rows <= 0 || cols <= 0) return;
    void *args[] = {&dst, &part, &rows, &cols};
    gpu_launch(g, gpu_k_(g, "colsum_add"), (unsigned)((cols + 31) / 32), 1, 1, 32, 32, 1, 0, args);
}

static unsigned gpu_round32_(size_t n, unsigned cap) {
    size_t t = (n + 31) / 32 * 32;
    return (unsigned)(t < 32 ? 32 : t > cap ? cap : t);
}

/* Deterministic (the default): the positions sorted by token with a stable LSD radix sort
   of 8-bit digits (passes over digits no token has skip their work; the largest token is
   found first), then each token's rows summed in position order by tiles of
   KERNELS_EMB_TILE sorted rows, the parts of runs that cross tiles added in tile order.
   Scratch: 2N + 256 ceil(N / 1024) ints and ceil(N / 32) C floats (2.7 MB at N 32768,
   C 576). nondeterministic: one fp32 atomicAdd per element. */
GPUDEF void gpu_embed_backward(Gpu *g, float *dwte, const void *dout, const int *tok, int N, int C) {
    int vec = C % 8 == 0 && gpu_aligned16_(dout, NULL, NULL, NULL);
    if (N <= 0 || C <= 0) return;
    if (g->nondeterministic) {
        void *args[] = {&dwte, &dout, &tok, &N, &C, &vec};
        gpu_launch1d_(g, gpu_k_(g, "embed_backward"), (size_t)N * ((C + 7) / 8), args);
        return;
    }
    int P = (N + KERNELS_RADIX_TILE - 1) / KERNELS_RADIX_TILE, R = (N + KERNELS_EMB_TILE - 1) / KERNELS_EMB_TILE;
    int M = 256 * P;
    /* layout, each part 256-byte aligned: max token, two orders, digit counts, carries */
    size_t o_ord0 = 256, o_ord1 = o_ord0 + ((size_t)N * 4 + 255) / 256 * 256;
    size_t o_cnt = o_ord1 + ((size_t)N * 4 + 255) / 256 * 256;
    size_t o_carry = o_cnt + ((size_t)M * 4 + 255) / 256 * 256;
    size_t bytes = o_carry + (size_t)R * C * sizeof(float);
    char *base = (char *)gpu_det_scratch_(g, bytes);
    int *maxtok = (int *)base, *counts = (int *)(base + o_cnt);
    int *ord[2] = {(int *)(base + o_ord0), (int *)(base + o_ord1)};
    float *carry = (float *)(base + o_carry);
    gpu_memset0(g, maxtok, sizeof(int));
    void *margs[] = {&maxtok, &tok, &N};
    gpu_launch1d_(g, gpu_k_(g, "tok_max"), (size_t)N, margs);
    CUfunction hist = gpu_k_(g, "radix_hist"), scan = gpu_k_(g, "radix_scan"), scat = gpu_k_(g, "radix_scatter");
    for (int pass = 0; pass < 4; pass++) { /* ids are ints: at most 4 digits */
        int shift = 8 * pass;
        const int *src = pass ? ord[(pass - 1) & 1] : NULL;
        int *dst = ord[pass & 1];
        void *hargs[] = {&counts, &src, &tok, &maxtok, &N, &shift};
        gpu_launch(g, hist, (unsigned)P, 1, 1, KERNELS_RADIX_TILE, 1, 1, 0, hargs);
        void *sargs[] = {&counts, &maxtok, &M, &shift};
        gpu_launch(g, scan, 1, 1, 1, 1024, 1, 1, 0, sargs);
        void *xargs[] = {&dst, &src, &tok, &counts, &maxtok, &N, &shift};
        gpu_launch(g, scat, (unsigned)P, 1, 1, KERNELS_RADIX_TILE, 1, 1, 0, xargs);
    }
    const int *sorted = ord[1];
    void *rargs[] = {&dwte, &carry, &dout, &tok, &sorted, &N, &C, &vec};
    gpu_launch(g, gpu_k_(g, "embed_backward_runs"), (unsigned)R, 1, 1, gpu_round32_(((size_t)C + 7) / 8, 256), 1, 1,
               0, rargs);
    void *cargs[] = {&dwte, &carry, &tok, &sorted, &N, &C};
    gpu_launch(g, gpu_k_(g, "embed_backward_carry"), (unsigned)R, 1, 1, gpu_round32_((size_t)C, 256), 1, 1, 0, cargs);
}

/* out[N,OC] = in[N,C] @ w[OC,C]^T */
GPUDEF void gpu_matmul_forward(Gpu *g, void *out, const void *in, const void *w, int N, int C, int OC) {
    gpu_gemm(g, out, 0, in, 0, w, 1, N, OC, C, C, C, OC, 0.0f);
}

GPUDEF void gpu_matmul_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in,
                                const void *w, int N, int C, int OC, int accumulate_din) {
    /* din[N,C] (+)= dout[N,OC] @ w[OC,C] */
    if (din) gpu_gemm(g, din, 0, dout, 0, w, 0, N, C, OC, OC, C, C, accumulate_din ? 1.0f : 0.0f);
    /* dw[OC,C] += dout[N,OC]^T @ in[N,C], fp32 */
    if (dw) gpu_gemm(g, dw, 1, dout, 1, in, 0, OC, C, N, OC, C, C, 1.0f);
}

GPUDEF void gpu_add_rmsnorm_forward(Gpu *g, void *sum, void *out, float *rstd, const void *a, const void *b,
                                    const void *w, int N, int C, float eps) {
    if (N <= 0) return;
    int vec = C % 8 == 0 && gpu_aligned16_(sum, out, a, b) && gpu_aligned16_(w, NULL, NULL, NULL);
    void *args[] = {&sum, &out, &rstd, &a, &b, &w, &N, &C, &eps, &vec};
    gpu_launch(g, gpu_k_(g, "add_rmsnorm_forward"), (unsigned)((N + 7) / 8), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_rmsnorm_forward(Gpu *g, void *out, float *rstd, const void *in, const void *w, int N,
                                int C, float eps) {
    if (N <= 0) return;
    int vec = C % 8 == 0 && gpu_aligned16_(out, in, w, NULL);
    void *args[] = {&out, &rstd, &in, &w, &N, &C, &eps, &vec};
    /* one warp per row, 8 rows per block */
    gpu_launch(g, gpu_k_(g, "rmsnorm_forward"), (unsigned)((N + 7) / 8), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_rmsnorm_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in,
                                 const void *w, const float *rstd, int N, int C, int accumulate_din) {
    if (N <= 0) return;
    int vec = C % 8 == 0 && gpu_aligned16_(din, dout, in, w);
    /* a few blocks per SM, each walking many rows, so dw has few partial rows (or atomics);
       each warp keeps a C-float row of dw partials in shared memory */
    int warps = 8;
    while (warps > 1 && (size_t)warps * C * sizeof(float) > g->smem_optin) warps /= 2;
    size_t smem = (size_t)warps * C * sizeof(float);
    if (smem > g->smem_optin) {
        fprintf(stderr, "gpu_rmsnorm_backward: C=%d needs %zu bytes of shared memory, the device has %zu\n",
                C, smem, g->smem_optin);
        abort();
    }
    unsigned blocks = (unsigned)((N + warps - 1) / warps), cap = (unsigned)g->sm_count * 4;
    if (blocks > cap) blocks = cap;
    /* deterministic: one partial row per block, summed in block order by colsum_add */
    float *part = g->nondeterministic ? NULL : (float *)gpu_det_scratch_(g, sizeof(float) * blocks * (size_t)C);
    void *args[] = {&din, &dw, &part, &dout, &in, &w, &rstd, &N, &C, &accumulate_din, &vec};
    gpu_launch(g, gpu_k_(g, "rmsnorm_backward"), blocks, 1, 1, 32 * warps, 1, 1, (unsigned)smem, args);
    if (part) gpu_colsum_add_(g, dw, part, (int)blocks, C);
}

GPUDEF void gpu_rope_part(Gpu *g, void *x, int N, int T, int nh, int ld, int rd, float theta, float sign) {
    void *args[] = {&x, &N, &T, &nh, &ld, &rd, &theta, &sign};
    gpu_launch1d_(g, gpu_k_(g, "rope"), (size_t)N * (rd / 2), args);
}

GPUDEF void gpu_rope_forward(Gpu *g, void *x, int N, int T, int nh, int hd, float theta) {
    gpu_rope_part(g, x, N, T, nh, hd, hd, theta, 1.0f);
}

GPUDEF void gpu_qkv_split(Gpu *g, void *q, void *k, void *v, void *qkv, int N, int T, int H, int KV, int hd,
                          float theta, int merge) {
    size_t groups = (size_t)(H + 2 * KV + KERNELS_QKV_GROUP - 1) / KERNELS_QKV_GROUP;
    void *args[] = {&q, &k, &v, &qkv, &N, &T, &H, &KV, &hd, &theta, &merge};
    gpu_launch1d_(g, gpu_k_(g, "qkv_split"), (size_t)N * groups * (hd / 2), args);
}

GPUDEF void gpu_rope_backward(Gpu *g, void *dx, int N, int T, int nh, int hd, float theta) {
    gpu_rope_part(g, dx, N, T, nh, hd, hd, theta, -1.0f);
}

GPUDEF void gpu_copy_cols(Gpu *g, void *dst, size_t dld, const void *src, size_t sld, size_t gld,
                          int groups, size_t rows, int cols, float scale, int accumulate) {
    if (rows == 0 || cols <= 0) return;
    /* 16-byte accesses when every row (and group) start is 16-byte aligned */
    int vec = cols % 8 == 0 && dld % 8 == 0 && sld % 8 == 0 && (groups < 2 || gld % 8 == 0) &&
              gpu_aligned16_(dst, src, NULL, NULL);
    unsigned long long dl = dld, sl = sld, gl = gld, r = rows;
    void *args[] = {&dst, &dl, &src, &sl, &gl, &groups, &r, &cols, &scale, &accumulate, &vec};
    gpu_launch1d_(g, gpu_k_(g, "copy_cols"), rows * ((size_t)(cols + 7) / 8), args);
}

/* MGA: warp-per-row kernels, 8 rows per block */
static void gpu_rows_(Gpu *g, const char *name, size_t rows, void **args) {
    if (rows == 0) return;
    gpu_launch(g, gpu_k_(g, name), (unsigned)((rows + 7) / 8), 1, 1, 256, 1, 1, 0, args);
}

GPUDEF void gpu_mga_unit_forward(Gpu *g, void *u, float *nrm, const void *gin, size_t rows, int hd) {
    unsigned long long r = rows;
    void *args[] = {&u, &nrm, &gin, &r, &hd};
    gpu_rows_(g, "mga_unit_forward", rows, args);
}

GPUDEF void gpu_time_cumsum(Gpu *g, float *out, const void *in, int in_is_act, int B, int T, int C, int reverse) {
    if (B <= 0 || T <= 0 || C <= 0) return;
    void *args[] = {&out, &in, &in_is_act, &T, &C, &reverse};
    gpu_launch(g, gpu_k_(g, "time_cumsum"), (unsigned)((C + 31) / 32), (unsigned)B, 1, 32, 32, 1, 0, args);
}

GPUDEF void gpu_mga_den_forward(Gpu *g, float *den, float *rinv, const void *u, const float *C, int B, int T,
                                int H, int hd, int window, int faithful) {
    void *args[] = {&den, &rinv, &u, &C, &B, &T, &H, &hd, &window, &faithful};
    gpu_rows_(g, "mga_den_forward", (size_t)B * T * H, args);
}

GPUDEF void gpu_mga_query_forward(Gpu *g, void *q, float *f, const void *u, const float *den, const float *S,
                                  int B, int T, int H, int hd, int faithful) {
    void *args[] = {&q, &f, &u, &den, &S, &B, &T, &H, &hd, &faithful};
    gpu_rows_(g, "mga_query_forward", (size_t)B * T * H, args);
}

GPUDEF void gpu_mga_query_backward(Gpu *g, float *du, float *dS, float *dden, const void *dq, const void *dk,
                                   const void *u, const float *f, const float *den, const float *S, int B, int T,
                                   int H, int hd, int faithful) {
    void *args[] = {&du, &dS, &dden, &dq, &dk, &u, &f, &den, &S, &B, &T, &H, &hd, &faithful};
    gpu_rows_(g, "mga_query_backward", (size_t)B * T * H, args);
}

GPUDEF void gpu_mga_den_backward(Gpu *g, float *du, float *ru, const void *u, const float *C, const float *den,
                                 const float *dden, const float *Sd, int B, int T, int H, int hd, int window,
                                 int faithful) {
    void *args[] = {&du, &ru, &u, &C, &den, &dden, &Sd, &B, &T, &H, &hd, &window, &faithful};
    gpu_rows_(g, "mga_den_backward", (size_t)B * T * H, args);
}

GPUDEF void gpu_mga_unit_backward(Gpu *g, void *dg, const float *du, const float *Rev, const void *u,
                                  const float *nrm, int B, int T, int H, int hd, int window) {
    void *args[] = {&dg, &du, &Rev, &u, &nrm, &B, &T, &H, &hd, &window};
    gpu_rows_(g, "mga_unit_backward", (size_t)B * T * H, args);
}

GPUDEF void gpu_dwconv3_silu_forward(Gpu *g, void *conv, void *u, const void *x, const void *w, int B, int T,
                                     int C, int shift) {
    unsigned long long N = (unsigned long long)B * T;
    void *args[] = {&conv, &u, &x, &w, &N, &T, &C, &shift};
    gpu_launch1d_(g, gpu_k_(g, "dwconv3_silu_forward"), (size_t)N * C, args);
}

/* one block per 32 channels x row slice: dw summed in shared memory, then one partial row
   per slice summed in slice order by colsum_add (nondeterministic: one atomic per
   (channel, tap) per block) */
GPUDEF void gpu_dwconv3_silu_backward(Gpu *g, void *dx, float *dw, const void *du, const void *conv, const void *x,
                                      const void *w, int B, int T, int C, int shift, int accumulate) {
    unsigned long long N = (unsigned long long)B * T;
    if (N == 0 || C <= 0) return;
    unsigned gy = (unsigned)((N + 255) / 256);
    if (gy > 1024) gy = 1024;
    float *part = g->nondeterministic ? NULL : (float *)gpu_det_scratch_(g, sizeof(float) * gy * 3 * (size_t)C);
    void *args[] = {&dx, &dw, &part, &du, &conv, &x, &w, &N, &T, &C, &shift, &accumulate};
    gpu_launch(g, gpu_k_(g, "dwconv3_silu_backward"), (unsigned)((C + 31) / 32), gy, 1, 32, 8, 1, 0, args);
    if (part) gpu_colsum_add_(g, dw, part, (int)gy, 3 * C);
}

GPUDEF void gpu_sigmoid_gate_forward(Gpu *g, void *out, const void *a, const void *gate, size_t n) {
    unsigned long long nn = n;
    void *args[] = {&out, &a, &gate, &nn};
    gpu_launch1d_(g, gpu_k_(g, "sigmoid_gate_forward"), n, args);
}

GPUDEF void gpu_sigmoid_gate_backward(Gpu *g, void *da, void *dgate, const void *dout, const void *a,
                                      const void *gate, size_t n) {
    unsigned long long nn = n;
    void *args[] = {&da, &dgate, &dout, &a, &gate, &nn};
    gpu_launch1d_(g, gpu_k_(g, "sigmoid_gate_backward"), n, args);
}

/* gu = [N, 2F]: gate in the first half of each row, up in the second */
GPUDEF void gpu_swiglu_forward(Gpu *g, void *out, const void *gu, int N, int F) {
    const void *up = (const char *)gu + (size_t)F * 2;
    unsigned long long n = (unsigned long long)N, f = (unsigned long long)F, ldi = 2 * f;
    int vec = F % 8 == 0 && gpu_aligned16_(out, gu, NULL, NULL);
    void *args[] = {&out, &gu, &up, &n, &f, &ldi, &vec};
    gpu_launch1d_(g, gpu_k_(g, "swiglu_forward"), (size_t)N * ((F + 7) / 8), args);
}

GPUDEF void gpu_swiglu_backward(Gpu *g, void *dgu, void *act, const void *dout, const void *gu, int N, int F) {
    void *dup = (char *)dgu + (size_t)F * 2;
    const void *up = (const char *)gu + (size_t)F * 2;
    unsigned long long n = (unsigned long long)N, f = (unsigned long long)F, ldi = 2 * f;
    int vec = F % 8 == 0 && gpu_aligned16_(dgu, dout, gu, act);
    void *args[] = {&dgu, &dup, &act, &dout, &gu, &up, &n, &f, &ldi, &vec};
    gpu_launch1d_(g, gpu_k_(g, "swiglu_backward"), (size_t)N * ((F + 7) / 8), args);
}

GPUDEF void gpu_add(Gpu *g, void *out, const void *a, const void *b, size_t n) {
    int vec = gpu_aligned16_(out, a, b, NULL);
    void *args[] = {&out, &a, &b, &n, &vec};
    gpu_launch1d_(g, gpu_k_(g, "add"), (n + 7) / 8, args);
}

GPUDEF void gpu_resid_dropout(Gpu *g, void *x, size_t n, float p, unsigned long long seed, const int *ctr, int layer,
                              int branch) {
    if (!(p >= 0 && p < 1)) {
        fprintf(stderr, "gpu_resid_dropout: p %g must be in [0, 1)\n", (double)p);
        abort();
    }
    /* u < p with u = k / 2^53 (k an integer) is k < ceil(p * 2^53): the CPU's test, exactly */
    unsigned long long thr = (unsigned long long)ceil((double)p * 9007199254740992.0);
    float keep = 1.0f / (1.0f - p);
    unsigned long long nn = n;
    void *args[] = {&x, &nn, &ctr, &seed, &layer, &branch, &thr, &keep};
    gpu_launch1d_(g, gpu_k_(g, "resid_dropout"), n, args);
}

GPUDEF void gpu_dropout_next(Gpu *g, int *ctr) {
    void *args[] = {&ctr};
    gpu_launch(g, gpu_k_(g, "dropout_next"), 1, 1, 1, 32, 1, 1, 0, args);
}

/* Fused tied LM head + cross-entropy, in chunks of rows so that only one chunk's
   bf16 logits exist at a time. Per chunk: logits = h @ wte^T (cuBLASLt), then one
   kernel turns each row into its loss and (backward) overwrites it in place with
   dlogits = dloss * (softmax - onehot); then dh = dlogits @ wte and
   dwte += dlogits^T @ h. */
static void gpu_xent_(Gpu *g, float *losses, float *correct, void *dh, float *dwte, const void *h, const void *wte,
                      const int *targets, int N, int C, int V, float dloss, int backward) {
    if (N <= 0) return;
    size_t row_bytes = (size_t)V * 2;
    size_t chunk_bytes = g->tuning.xent_chunk_bytes ? g->tuning.xent_chunk_bytes : GPU_XENT_CHUNK_BYTES;
    size_t chunk = chunk_bytes / row_bytes;
    if (chunk < 1) chunk = 1;
    if (chunk > (size_t)N) chunk = (size_t)N;
    if (chunk > 64) chunk -= chunk % 64; /* tidy GEMM shapes */
    size_t need = chunk * row_bytes;
    if (g->xent_scratch_bytes < need) {
        gpu_free(g, g->xent_scratch);
        g->xent_scratch = gpu_alloc(g, need);
        g->xent_scratch_bytes = need;
    }
    void *logits = g->xent_scratch;
    CUfunction rows_k = gpu_k_(g, "xent_rows");
    size_t ld = (size_t)V;
    int vec = V % 8 == 0; /* scratch is 256-aligned; rows start 16-aligned when V % 8 == 0 */
    int grad = backward;
    for (size_t r0 = 0; r0 < (size_t)N; r0 += chunk) {
        int rows = (int)((size_t)N - r0 < chunk ? (size_t)N - r0 : chunk);
        const char *h_c = (const char *)h + r0 * C * 2;
        gpu_gemm(g, logits, 0, h_c, 0, wte, 1, rows, V, C, C, C, V, 0.0f);
        float *loss_c = losses + r0;
        const int *tgt_c = targets + r0;
        float *correct_c = correct ? correct + r0 : NULL;
        void *args[] = {&logits, &ld, &loss_c, &correct_c, &tgt_c, &V, &dloss, &grad, &vec};
        gpu_launch(g, rows_k, (unsigned)rows, 1, 1, 512, 1, 1, 0, args);
        if (!backward) continue;
        if (dh && dwte) { /* fork: dh on the side stream, dwte here, join before the next chunk */
            if (!g->side_stream) {
                CU_CHECK(gpu_cu()->cuStreamCreate(&g->side_stream, CU_STREAM_NON_BLOCKING));
                CU_CHECK(gpu_cu()->cuEventCreate(&g->ev_fork, CU_EVENT_DISABLE_TIMING));
                CU_CHECK(gpu_cu()->cuEventCreate(&g->ev_join, CU_EVENT_DISABLE_TIMING));
                g->side_workspace = gpu_alloc(g, g->lt_workspace_size);
            }
            gpu_stream_after_(g->side_stream, g->ev_fork, g->stream);
            CUstream main_stream = g->stream;
            void *main_ws = g->lt_workspace;
            g->stream = g->side_stream; /* gpu_gemm queues on g->stream with g->lt_workspace */
            g->lt_workspace = g->side_workspace;
            gpu_gemm(g, (char *)dh + r0 * C * 2, 0, logits, 0, wte, 0, rows, C, V, V, C, C, 0.0f);
            g->stream = main_stream;
            g->lt_workspace = main_ws;
            CU_CHECK(gpu_cu()->cuEventRecord(g->ev_join, g->side_stream));
            gpu_gemm(g, dwte, 1, logits, 1, h_c, 0, V, C, rows, V, C, C, 1.0f);
            CU_CHECK(gpu_cu()->cuStreamWaitEvent(g->stream, g->ev_join, 0));
        } else {
            if (dh) gpu_gemm(g, (char *)dh + r0 * C * 2, 0, logits, 0, wte, 0, rows, C, V, V, C, C, 0.0f);
            if (dwte) gpu_gemm(g, dwte, 1, logits, 1, h_c, 0, V, C, rows, V, C, C, 1.0f);
        }
    }
}

GPUDEF void gpu_xent_forward(Gpu *g, float *losses, float *correct, const void *h, const void *wte,
                             const int *targets, int N, int C, int V) {
    gpu_xent_(g, losses, correct, NULL, NULL, h, wte, targets, N, C, V, 0.0f, 0);
}

GPUDEF void gpu_xent_backward(Gpu *g, float *losses, void *dh, float *dwte, const void *h, const void *wte,
                              const int *targets, int N, int C, int V, float dloss) {
    gpu_xent_(g, losses, NULL, dh, dwte, h, wte, targets, N, C, V, dloss, 1);
}

/* deterministic: one partial per block into g->sumsq_part (allocated by gpu_init, so a CUDA
   graph may hold it), summed in block order by colsum_add; nondeterministic: one atomic
   per block */
GPUDEF void gpu_sumsq(Gpu *g, float *out_dev_scalar, const float *x, size_t n) {
    int vec = gpu_aligned16_(x, NULL, NULL, NULL);
    float *part = g->nondeterministic ? NULL : g->sumsq_part;
    void *args[] = {&out_dev_scalar, &part, &x, &n, &vec};
    size_t blocks = (n / 4 + 255) / 256 + 1, cap = (size_t)g->sm_count * GPU_SUMSQ_BLOCKS_PER_SM; /* few partials */
    if (n == 0) return;
    if (blocks > cap) blocks = cap;
    gpu_launch(g, gpu_k_(g, "sumsq"), (unsigned)blocks, 1, 1, 256, 1, 1, 0, args);
    if (part) gpu_colsum_add_(g, out_dev_scalar, part, (int)blocks, 1);
}

GPUDEF void gpu_adamw(Gpu *g, float *param, void *param_bf16, const float *grad, float *m, float *v,
                      size_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                      float bias_corr1, float bias_corr2, const float *gnorm_sq_dev, float clip,
                      const float *hyper_dev) {
    int vec = gpu_aligned16_(param, grad, m, v) && ((uintptr_t)param_bf16 & 7) == 0;
    void *args[] = {&param, &param_bf16, &grad, &m, &v, &n, &lr, &beta1, &beta2, &eps,
                    &weight_decay, &bias_corr1, &bias_corr2, &gnorm_sq_dev, &clip, &hyper_dev, &vec};
    gpu_launch1d_(g, gpu_k_(g, "adamw"), vec ? n / 4 + 3 : n, args);
}

GPUDEF void gpu_f32_to_bf16(Gpu *g, void *dst, const float *src, size_t n) {
    void *args[] = {&dst, &src, &n};
    gpu_launch1d_(g, gpu_k_(g, "f32_to_bf16"), n, args);
}

GPUDEF void gpu_bf16_to_f32(Gpu *g, float *dst, const void *src, size_t n) {
    void *args[] = {&dst, &src, &n};
    gpu_launch1d_(g, gpu_k_(g, "bf16_to_f32"), n, args);
}

#else /* GPU_NVRTC_ONLY: the runtime links, but no GPU can be opened */

static void gpu_nvrtc_only_die_(const char *fn) {
    fprintf(stderr, "%s: not available in a GPU_NVRTC_ONLY build\n", fn);
    abort();
}

GPUDEF void gpu_check_cu_(CUresult r, const char *call, const char *file, int line) {
    if (r == CUDA_SUCCESS) return;
    fprintf(stderr, "%s:%d: CUDA driver error %d in %s\n", file, line, (int)r, call);
    abort();
}

GPUDEF void gpu_check_cublas_(cublasStatus_t r, const char *call, const char *file, int line) {
    if (r == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "%s:%d: cuBLAS error %d in %s\n", file, line, (int)r, call);
    abort();
}

GPUDEF int gpu_driver_load(char *err, size_t errlen) {
    snprintf(err, errlen, "the CUDA driver is not loaded by a GPU_NVRTC_ONLY build");
    return -1;
}

GPUDEF const GpuDriver *gpu_cu(void) {
    static const GpuDriver none; /* nothing is loaded here */
    return &none;
}

GPUDEF int gpu_init(Gpu *g, int device_index) {
    (void)device_index;
    memset(g, 0, sizeof *g);
    snprintf(g->err, sizeof g->err, "this program was built with GPU_NVRTC_ONLY");
    return -1;
}

GPUDEF void gpu_free_all(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_free_all");
}

GPUDEF void * gpu_alloc(Gpu *g, size_t bytes) {
    (void)g; (void)bytes;
    gpu_nvrtc_only_die_("gpu_alloc");
    return 0;
}

GPUDEF void gpu_free(Gpu *g, void *p) {
    (void)g; (void)p;
    gpu_nvrtc_only_die_("gpu_free");
}

GPUDEF void gpu_memset0(Gpu *g, void *p, size_t bytes) {
    (void)g; (void)p; (void)bytes;
    gpu_nvrtc_only_die_("gpu_memset0");
}

GPUDEF void *gpu_scratch(Gpu *g, void **p, size_t *have, size_t bytes) {
    (void)g; (void)p; (void)have; (void)bytes;
    gpu_nvrtc_only_die_("gpu_scratch");
    return NULL;
}

GPUDEF void gpu_scratch_release(Gpu *g, void **p, size_t *have) {
    (void)g; (void)p; (void)have;
    gpu_nvrtc_only_die_("gpu_scratch_release");
}

GPUDEF void gpu_upload(Gpu *g, void *dst, const void *src, size_t bytes) {
    (void)g; (void)dst; (void)src; (void)bytes;
    gpu_nvrtc_only_die_("gpu_upload");
}

GPUDEF void gpu_download(Gpu *g, void *dst, const void *src, size_t bytes) {
    (void)g; (void)dst; (void)src; (void)bytes;
    gpu_nvrtc_only_die_("gpu_download");
}

GPUDEF void gpu_sync(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_sync");
}
GPUDEF CUstream gpu_comm_stream(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_comm_stream");
    return NULL;
}
GPUDEF void gpu_comm_after_main(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_comm_after_main");
}
GPUDEF void gpu_main_after_comm(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_main_after_comm");
}
GPUDEF void gpu_graph_begin(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_graph_begin");
}
GPUDEF CUgraphExec gpu_graph_end(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_graph_end");
    return NULL;
}
GPUDEF void gpu_graph_launch(Gpu *g, CUgraphExec exec) {
    (void)g; (void)exec;
    gpu_nvrtc_only_die_("gpu_graph_launch");
}
GPUDEF void gpu_graph_free(CUgraphExec exec) { (void)exec; }

GPUDEF void gpu_dbg_check(Gpu *g) {
    (void)g;
    gpu_nvrtc_only_die_("gpu_dbg_check");
}

GPUDEF CUfunction gpu_kernel(Gpu *g, const char *source, const char *name, const char *options) {
    (void)g; (void)source; (void)name; (void)options;
    gpu_nvrtc_only_die_("gpu_kernel");
    return 0;
}

GPUDEF void gpu_kernel_prewarm(Gpu *g, const GpuKernelSpec *specs, int n) {
    (void)g; (void)specs; (void)n;
    gpu_nvrtc_only_die_("gpu_kernel_prewarm");
}

GPUDEF void gpu_launch(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned smem, void **args) {
    (void)g; (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)smem; (void)args;
    gpu_nvrtc_only_die_("gpu_launch");
}

GPUDEF void gpu_launch_dep(Gpu *g, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                           unsigned bz, unsigned smem, void **args) {
    gpu_launch(g, f, gx, gy, gz, bx, by, bz, smem, args);
}

GPUDEF void gpu_launch_coop(Gpu *g, CUfunction f, unsigned gx, unsigned bx, unsigned smem, void **args) {
    gpu_launch(g, f, gx, 1, 1, bx, 1, 1, smem, args);
}

GPUDEF void gpu_embed_forward(Gpu *g, void *out, const int *tok, const void *wte, int N, int C) {
    (void)g; (void)out; (void)tok; (void)wte; (void)N; (void)C;
    gpu_nvrtc_only_die_("gpu_embed_forward");
}

GPUDEF void gpu_embed_backward(Gpu *g, float *dwte, const void *dout, const int *tok, int N, int C) {
    (void)g; (void)dwte; (void)dout; (void)tok; (void)N; (void)C;
    gpu_nvrtc_only_die_("gpu_embed_backward");
}

GPUDEF void gpu_matmul_forward(Gpu *g, void *out, const void *in, const void *w, int N, int C, int OC) {
    (void)g; (void)out; (void)in; (void)w; (void)N; (void)C; (void)OC;
    gpu_nvrtc_only_die_("gpu_matmul_forward");
}

GPUDEF void gpu_matmul_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in, const void *w, int N, int C, int OC, int accumulate_din) {
    (void)g; (void)din; (void)dw; (void)dout; (void)in; (void)w; (void)N; (void)C; (void)OC; (void)accumulate_din;
    gpu_nvrtc_only_die_("gpu_matmul_backward");
}

GPUDEF void gpu_add_rmsnorm_forward(Gpu *g, void *sum, void *out, float *rstd, const void *a, const void *b,
                                    const void *w, int N, int C, float eps) {
    (void)g; (void)sum; (void)out; (void)rstd; (void)a; (void)b; (void)w; (void)N; (void)C; (void)eps;
    gpu_nvrtc_only_die_("gpu_add_rmsnorm_forward");
}
GPUDEF void gpu_rmsnorm_forward(Gpu *g, void *out, float *rstd, const void *in, const void *w, int N, int C, float eps) {
    (void)g; (void)out; (void)rstd; (void)in; (void)w; (void)N; (void)C; (void)eps;
    gpu_nvrtc_only_die_("gpu_rmsnorm_forward");
}

GPUDEF void gpu_rmsnorm_backward(Gpu *g, void *din, float *dw, const void *dout, const void *in, const void *w, const float *rstd, int N, int C, int accumulate_din) {
    (void)g; (void)din; (void)dw; (void)dout; (void)in; (void)w; (void)rstd; (void)N; (void)C; (void)accumulate_din;
    gpu_nvrtc_only_die_("gpu_rmsnorm_backward");
}

GPUDEF void gpu_rope_forward(Gpu *g, void *x, int N, int T, int nh, int hd, float theta) {
    (void)g; (void)x; (void)N; (void)T; (void)nh; (void)hd; (void)theta;
    gpu_nvrtc_only_die_("gpu_rope_forward");
}

GPUDEF void gpu_rope_backward(Gpu *g, void *dx, int N, int T, int nh, int hd, float theta) {
    (void)g; (void)dx; (void)N; (void)T; (void)nh; (void)hd; (void)theta;
    gpu_nvrtc_only_die_("gpu_rope_backward");
}

GPUDEF void gpu_rope_part(Gpu *g, void *x, int N, int T, int nh, int ld, int rd, float theta, float sign) {
    (void)g; (void)x; (void)N; (void)T; (void)nh; (void)ld; (void)rd; (void)theta; (void)sign;
    gpu_nvrtc_only_die_("gpu_rope_part");
}

GPUDEF void gpu_qkv_split(Gpu *g, void *q, void *k, void *v, void *qkv, int N, int T, int H, int KV, int hd,
                          float theta, int merge) {
    (void)g; (void)q; (void)k; (void)v; (void)qkv; (void)N; (void)T; (void)H; (void)KV; (void)hd;
    (void)theta; (void)merge;
    gpu_nvrtc_only_die_("gpu_qkv_split");
}

GPUDEF void gpu_copy_cols(Gpu *g, void *dst, size_t dld, const void *src, size_t sld, size_t gld,
                          int groups, size_t rows, int cols, float scale, int accumulate) {
    (void)g; (void)dst; (void)dld; (void)src; (void)sld; (void)gld; (void)groups; (void)rows; (void)cols;
    (void)scale; (void)accumulate;
    gpu_nvrtc_only_die_("gpu_copy_cols");
}

/* MGA's decomposition: the CUDA build only (the stubs ignore their arguments) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define GPU_MGA_STUB_(name) { gpu_nvrtc_only_die_(name); }
GPUDEF void gpu_mga_unit_forward(Gpu *g, void *u, float *nrm, const void *gin, size_t rows, int hd)
    GPU_MGA_STUB_("gpu_mga_unit_forward")
GPUDEF void gpu_time_cumsum(Gpu *g, float *out, const void *in, int in_is_act, int B, int T, int C, int reverse)
    GPU_MGA_STUB_("gpu_time_cumsum")
GPUDEF void gpu_mga_den_forward(Gpu *g, float *den, float *rinv, const void *u, const float *C, int B, int T,
                                int H, int hd, int window, int faithful) GPU_MGA_STUB_("gpu_mga_den_forward")
GPUDEF void gpu_mga_query_forward(Gpu *g, void *q, float *f, const void *u, const float *den, const float *S,
                                  int B, int T, int H, int hd, int faithful) GPU_MGA_STUB_("gpu_mga_query_forward")
GPUDEF void gpu_mga_query_backward(Gpu *g, float *du, float *dS, float *dden, const void *dq, const void *dk,
                                   const void *u, const float *f, const float *den, const float *S, int B, int T,
                                   int H, int hd, int faithful) GPU_MGA_STUB_("gpu_mga_query_backward")
GPUDEF void gpu_mga_den_backward(Gpu *g, float *du, float *ru, const void *u, const float *C, const float *den,
                                 const float *dden, const float *Sd, int B, int T, int H, int hd, int window,
                                 int faithful) GPU_MGA_STUB_("gpu_mga_den_backward")
GPUDEF void gpu_mga_unit_backward(Gpu *g, void *dg, const float *du, const float *Rev, const void *u,
                                  const float *nrm, int B, int T, int H, int hd, int window)
    GPU_MGA_STUB_("gpu_mga_unit_backward")
GPUDEF void gpu_dwconv3_silu_forward(Gpu *g, void *conv, void *u, const void *x, const void *w, int B, int T,
                                     int C, int shift) GPU_MGA_STUB_("gpu_dwconv3_silu_forward")
GPUDEF void gpu_dwconv3_silu_backward(Gpu *g, void *dx, float *dw, const void *du, const void *conv, const void *x,
                                      const void *w, int B, int T, int C, int shift, int accumulate)
    GPU_MGA_STUB_("gpu_dwconv3_silu_backward")
GPUDEF void gpu_sigmoid_gate_forward(Gpu *g, void *out, const void *a, const void *gate, size_t n)
    GPU_MGA_STUB_("gpu_sigmoid_gate_forward")
GPUDEF void gpu_sigmoid_gate_backward(Gpu *g, void *da, void *dgate, const void *dout, const void *a,
                                      const void *gate, size_t n) GPU_MGA_STUB_("gpu_sigmoid_gate_backward")
#pragma GCC diagnostic pop

GPUDEF void gpu_swiglu_forward(Gpu *g, void *out, const void *gu, int N, int F) {
    (void)g; (void)out; (void)gu; (void)N; (void)F;
    gpu_nvrtc_only_die_("gpu_swiglu_forward");
}
GPUDEF void gpu_swiglu_backward(Gpu *g, void *dgu, void *act, const void *dout, const void *gu, int N, int F) {
    (void)g; (void)dgu; (void)act; (void)dout; (void)gu; (void)N; (void)F;
    gpu_nvrtc_only_die_("gpu_swiglu_backward");
}

GPUDEF void gpu_add(Gpu *g, void *out, const void *a, const void *b, size_t n) {
    (void)g; (void)out; (void)a; (void)b; (void)n;
    gpu_nvrtc_only_die_("gpu_add");
}
GPUDEF void gpu_resid_dropout(Gpu *g, void *x, size_t n, float p, unsigned long long seed, const int *ctr, int layer,
                              int branch) {
    (void)g; (void)x; (void)n; (void)p; (void)seed; (void)ctr; (void)layer; (void)branch;
    gpu_nvrtc_only_die_("gpu_resid_dropout");
}
GPUDEF void gpu_dropout_next(Gpu *g, int *ctr) {
    (void)g; (void)ctr;
    gpu_nvrtc_only_die_("gpu_dropout_next");
}

GPUDEF void gpu_xent_forward(Gpu *g, float *losses, float *correct, const void *h, const void *wte, const int *targets, int N, int C, int V) {
    (void)correct;
    (void)g; (void)losses; (void)h; (void)wte; (void)targets; (void)N; (void)C; (void)V;
    gpu_nvrtc_only_die_("gpu_xent_forward");
}

GPUDEF void gpu_xent_backward(Gpu *g, float *losses, void *dh, float *dwte, const void *h, const void *wte, const int *targets, int N, int C, int V, float dloss) {
    (void)g; (void)losses; (void)dh; (void)dwte; (void)h; (void)wte; (void)targets; (void)N; (void)C; (void)V; (void)dloss;
    gpu_nvrtc_only_die_("gpu_xent_backward");
}

GPUDEF void gpu_gemm(Gpu *g, void *D, int d_fp32, const void *A, int trans_a, const void *B, int trans_b, int M, int Nn, int K, int lda, int ldb, int ldd, float beta) {
    (void)g; (void)D; (void)d_fp32; (void)A; (void)trans_a; (void)B; (void)trans_b; (void)M; (void)Nn; (void)K; (void)lda; (void)ldb; (void)ldd; (void)beta;
    gpu_nvrtc_only_die_("gpu_gemm");
}

GPUDEF void gpu_sumsq(Gpu *g, float *out_dev_scalar, const float *x, size_t n) {
    (void)g; (void)out_dev_scalar; (void)x; (void)n;
    gpu_nvrtc_only_die_("gpu_sumsq");
}

GPUDEF void gpu_adamw(Gpu *g, float *param, void *param_bf16, const float *grad, float *m, float *v, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, float bias_corr1, float bias_corr2, const float *gnorm_sq_dev, float clip, const float *hyper_dev) {
    (void)g; (void)hyper_dev; (void)param; (void)param_bf16; (void)grad; (void)m; (void)v; (void)n; (void)lr; (void)beta1; (void)beta2; (void)eps; (void)weight_decay; (void)bias_corr1; (void)bias_corr2; (void)gnorm_sq_dev; (void)clip;
    gpu_nvrtc_only_die_("gpu_adamw");
}

GPUDEF void gpu_f32_to_bf16(Gpu *g, void *dst, const float *src, size_t n) {
    (void)g; (void)dst; (void)src; (void)n;
    gpu_nvrtc_only_die_("gpu_f32_to_bf16");
}

GPUDEF void gpu_bf16_to_f32(Gpu *g, float *dst, const void *src, size_t n) {
    (void)g; (void)dst; (void)src; (void)n;
    gpu_nvrtc_only_die_("gpu_bf16_to_f32");
}
#endif /* GPU_NVRTC_ONLY */
#endif /* GPU_IMPLEMENTATION */
