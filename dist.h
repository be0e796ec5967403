/* dist.h - data-parallel collectives for training one run over several ranks (processes):
   one interface, DistComm, with two transports, and the launcher that starts the ranks.

   USAGE
     #define ABLATE_IMPLEMENTATION   // in one .c file (or DIST_IMPLEMENTATION)
     #include "dist.h"

     static int rank_main(DistComm *c, void *ctx) {        // runs in each rank's process
         float g[4] = {1, 2, 3, 4};
         if (c->all_reduce(c, g, 4, DIST_F32)) { fprintf(stderr, "%s\n", c->err); return 1; }
         return 0;                                         // the rank's exit status
     }
     char err[256];
     int rc = dist_spawn(3, rank_main, NULL, err, sizeof err);   // 0: every rank returned 0
     if (rc) fprintf(stderr, "%s\n", err);                 // names the rank that failed

   THE INTERFACE (DistComm: function pointers; every call is collective: every rank makes the
   same calls in the same order, else they wait for ever; 0 on success, else c->err says why)
     all_reduce(c, buf, n, type)            buf[i] = sum over ranks of buf[i], in place
     reduce_scatter(c, send, recv, n, type) send holds world * n elements; rank r's recv[i] =
                                            sum over ranks q of q's send[r * n + i]
     all_gather(c, send, recv, n, type)     recv[q * n + i] = rank q's send[i] (send may be
                                            recv + rank * n: in place)
     broadcast(c, buf, bytes, root)         root's bytes to every rank
     barrier(c)                             every rank has reached it
     sum_host(c, x, n)                      host doubles summed over ranks in rank order (both
                                            transports: loss, seconds and flags of a step)
   Buffers are host memory for the CPU transport and device memory for NCCL (sum_host and
   barrier always go through the shared region, so they work the same with both).

   REDUCTION ORDER: the CPU transport adds rank 0 + rank 1 + ... + rank N-1, left to right,
   on every rank, so every rank gets the same bits and a run with N ranks sums the same way
   every time. DIST_BF16 elements are uint16_t bfloat16: each is widened to fp32, the sum is
   taken in fp32 in rank order and rounded once to bf16 (round to nearest even), so a sum of
   values exact in bf16 whose total is exact in bf16 comes back exact. NCCL chooses its own
   order (a ring): with 2 ranks each element is a + b on one rank (the same bits either way),
   beyond that its sums may differ from the CPU order in the last bits.
   train.h's grad_reduce bf16 sums gradients this way: the CPU transport's bf16 sum is what
   NCCL's bf16 all-reduce computes for 2 ranks, so the CPU tests run the GPU's numerics.

   TRANSPORTS
     dist_shm_*  the CPU transport: one anonymous shared mapping (mmap MAP_SHARED|MAP_ANONYMOUS)
                 made by dist_spawn before it forks, so every rank inherits it: a process-shared
                 pthread barrier and one slot of DIST_SLOT_BYTES per rank. A collective copies
                 its part into its slot, waits at the barrier, reads every slot, waits again;
                 longer buffers go in slot-sized pieces.
     dist_nccl_* NCCL, opened at run time with dlopen("libnccl.so.2") (no link dependency; CUDA
                 build only, DIST_NCCL). Rank 0 makes the unique id (ncclGetUniqueId) and hands
                 it to the other ranks through the shared region (dist_spawn's parent made it
                 before the fork), then each rank calls ncclCommInitRank on its current CUDA
                 context (open the GPU first) and stream. NCCL's NVLink multicast (NVLS) must be
                 off on the machines here: the driver (ablate.c) sets NCCL_NVLS_ENABLE=0 before
                 dist_nccl_init; this header reads no environment.

   THE LAUNCHER: dist_spawn(world, fn, ctx) forks one child per rank (fork without exec: the
   ranks share the parent's parsed state, and the shared region must be inherited). Each child
   asks the kernel to kill it when the parent dies (PR_SET_PDEATHSIG, Linux), calls fn with its
   DistComm and ends with fn's return value as its exit status (_exit: the parent's atexit
   handlers and stdio buffers are not run twice; the child flushes its own stdout and stderr).
   The parent waits for every child; the first that exits non-zero or is killed makes it kill
   the others (SIGKILL, by pid: a rank blocked in a collective on a dead peer would wait for
   ever) and return non-zero with err naming the rank and how it ended: the rank's exit status,
   or 128 + the signal for a rank killed by one (a crash, an out-of-memory kill), -1 when a
   rank could not be started. A CUDA program must not
   touch the GPU in the parent before dist_spawn (a forked CUDA context is unusable), nor run
   OpenMP code there (GNU libgomp's thread pool does not survive a fork: a child's first
   parallel region would wait for ever).

   DEPENDS ON: POSIX (mmap, fork, pthread barriers), Linux prctl; libdl for NCCL.
   LINKAGE: every public function is declared DISTDEF (extern); define DIST_STATIC (or
   ABLATE_STATIC, for every header) before the include to make them static. C++ can include
   the header: its declarations sit in extern "C".
*/
#if defined(ABLATE_IMPLEMENTATION) && !defined(DIST_IMPLEMENTATION)
#define DIST_IMPLEMENTATION
#endif
#ifndef DIST_H
#define DIST_H

#ifndef DISTDEF
#if defined(DIST_STATIC) || defined(ABLATE_STATIC)
#define DISTDEF static
#else
#define DISTDEF extern
#endif
#endif

/* fork, kill, mmap's MAP_ANONYMOUS and pthread barriers: POSIX 2008 and the BSD/GNU mapping
   flag, asked for before the first system header */
#if defined(DIST_IMPLEMENTATION) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
/* the CUDA build carries the NCCL transport (opened with dlopen: no link dependency) */
#if defined(ABLATE_CUDA) && !defined(DIST_NCCL)
#define DIST_NCCL
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DIST_MAX_WORLD 64
#define DIST_SLOT_BYTES (4u << 20) /* per rank: a collective moves its buffer in pieces of this */

typedef enum { DIST_F32 = 0, DIST_F64 = 1, DIST_BF16 = 2 } DistType;

typedef struct DistComm DistComm;
struct DistComm {
    int rank, world;
    int (*all_reduce)(DistComm *c, void *buf, size_t n, DistType t);
    int (*reduce_scatter)(DistComm *c, const void *send, void *recv, size_t n, DistType t);
    int (*all_gather)(DistComm *c, const void *send, void *recv, size_t n, DistType t);
    int (*broadcast)(DistComm *c, void *buf, size_t bytes, int root);
    int (*barrier)(DistComm *c);
    int (*sum_host)(DistComm *c, double *x, int n);
    void *shm;        /* the shared region (both transports) */
    void *nccl;       /* DistNccl_ (NCCL transport), else NULL */
    char err[256];
};

/* the shared region for `world` ranks: made by dist_spawn (a test may make one itself and
   fork); NULL with err set when it cannot be mapped */
DISTDEF void *dist_shm_create(int world, char *err, size_t errlen);
DISTDEF void dist_shm_destroy(void *shm);
/* a CPU-transport communicator for `rank` on a region made by dist_shm_create */
DISTDEF void dist_shm_comm(DistComm *c, void *shm, int rank);
/* starts `world` ranks (see THE LAUNCHER); 0 when every rank returned 0 */
typedef int (*DistRankFn)(DistComm *c, void *ctx);
DISTDEF int dist_spawn(int world, DistRankFn fn, void *ctx, char *err, size_t errlen); /* > 128: killed */
/* turns c (a CPU-transport communicator from dist_spawn) into an NCCL one on `stream` (a
   CUstream; NULL: the default stream) of the CUDA context current on this thread; collective.
   0, or -1 with c->err: libnccl.so.2 missing (the message says how to get it) or an NCCL call
   failed (its error string). Without DIST_NCCL (the CPU build) it always fails, saying so. */
DISTDEF int dist_nccl_init(DistComm *c, void *stream);
DISTDEF void dist_nccl_close(DistComm *c);
/* the stream NCCL's next collectives queue on (a CUstream): train.h's gradient buckets run on a
   second stream so that they overlap the backward; returns the previous one. A CPU-transport
   communicator has no stream: it returns NULL and does nothing */
DISTDEF void *dist_nccl_set_stream(DistComm *c, void *stream);

/* bf16 <-> fp32 (round to nearest even; NaN stays NaN), the CPU transport's conversions */
DISTDEF uint16_t dist_bf16(float x);
DISTDEF float dist_f32(uint16_t b);

/* "0,1,3" -> ids; the count, or -1 with err naming the bad item (not a number >= 0, repeated,
   more than max) */
DISTDEF int dist_parse_gpus(const char *list, int *ids, int max, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* DIST_H */

/* ======================================================================= */
#ifdef DIST_IMPLEMENTATION
#ifndef DIST_IMPLEMENTATION_DONE
#define DIST_IMPLEMENTATION_DONE

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef DIST_NCCL
#include <dlfcn.h>
#endif

typedef struct {
    pthread_barrier_t bar;
    int world;
    volatile int nccl_id_ready;
    char nccl_id[128];          /* ncclUniqueId, written by rank 0 */
    size_t slot_bytes;
    /* then world slots of slot_bytes, 64-byte aligned */
} DistShm_;

static char *dist_slot_(DistShm_ *s, int r) {
    size_t head = (sizeof(DistShm_) + 63) & ~(size_t)63;
    return (char *)s + head + (size_t)r * s->slot_bytes;
}

DISTDEF uint16_t dist_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
DISTDEF float dist_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static size_t dist_esize_(DistType t) { return t == DIST_F64 ? 8 : t == DIST_F32 ? 4 : 2; }

DISTDEF void *dist_shm_create(int world, char *err, size_t errlen) {
    if (world < 1 || world > DIST_MAX_WORLD) {
        snprintf(err, errlen, "%d ranks: expected 1..%d", world, DIST_MAX_WORLD);
        return NULL;
    }
    size_t head = (sizeof(DistShm_) + 63) & ~(size_t)63, bytes = head + (size_t)world * DIST_SLOT_BYTES;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %zu bytes of shared memory for %d ranks: %s", bytes, world, strerror(errno));
        return NULL;
    }
    DistShm_ *s = p;
    memset(s, 0, sizeof *s);
    s->world = world;
    s->slot_bytes = DIST_SLOT_BYTES;
    pthread_barrierattr_t a;
    int bad = pthread_barrierattr_init(&a) || pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED) ||
              pthread_barrier_init(&s->bar, &a, (unsigned)world);
    pthread_barrierattr_destroy(&a);
    if (bad) {
        snprintf(err, errlen, "cannot make a process-shared barrier for %d ranks", world);
        munmap(p, bytes);
        return NULL;
    }
    return p;
}

DISTDEF void dist_shm_destroy(void *shm) {
    if (!shm) return;
    DistShm_ *s = shm;
    size_t head = (sizeof(DistShm_) + 63) & ~(size_t)63;
    /* no pthread_barrier_destroy: glibc's waits for every rank to leave the barrier, and a
       killed rank never does; the barrier holds nothing beyond the mapping */
    munmap(shm, head + (size_t)s->world * s->slot_bytes);
}

static int dist_shm_barrier_(DistComm *c) {
    int r = pthread_barrier_wait(&((DistShm_ *)c->shm)->bar);
    if (r && r != PTHREAD_BARRIER_SERIAL_THREAD) {
        snprintf(c->err, sizeof c->err, "rank %d: barrier failed (error %d)", c->rank, r);
        return -1;
    }
    return 0;
}

/* out[i] = sum over ranks of slot(r)[off + i], rank 0 first */
static void dist_shm_sum_(DistShm_ *s, size_t off, void *out, size_t n, DistType t) {
    int W = s->world;
    if (t == DIST_F64) {
        double *o = out;
        for (size_t i = 0; i < n; i++) {
            double acc = ((double *)dist_slot_(s, 0))[off + i];
            for (int r = 1; r < W; r++) acc += ((double *)dist_slot_(s, r))[off + i];
            o[i] = acc;
        }
    } else if (t == DIST_F32) {
        float *o = out;
        for (size_t i = 0; i < n; i++) {
            float acc = ((float *)dist_slot_(s, 0))[off + i];
            for (int r = 1; r < W; r++) acc += ((float *)dist_slot_(s, r))[off + i];
            o[i] = acc;
        }
    } else {
        uint16_t *o = out;
        for (size_t i = 0; i < n; i++) {
            float acc = dist_f32(((uint16_t *)dist_slot_(s, 0))[off + i]);
            for (int r = 1; r < W; r++) acc += dist_f32(((uint16_t *)dist_slot_(s, r))[off + i]);
            o[i] = dist_bf16(acc);
        }
    }
}

static int dist_shm_all_reduce_(DistComm *c, void *buf, size_t n, DistType t) {
    DistShm_ *s = c->shm;
    size_t es = dist_esize_(t), per = s->slot_bytes / es;
    for (size_t off = 0; off < n; off += per) {
        size_t k = n - off < per ? n - off : per;
        memcpy(dist_slot_(s, c->rank), (char *)buf + off * es, k * es);
        if (dist_shm_barrier_(c)) return -1;
        dist_shm_sum_(s, 0, (char *)buf + off * es, k, t);
        if (dist_shm_barrier_(c)) return -1; /* every rank has read the slots before they are reused */
    }
    return 0;
}

static int dist_shm_reduce_scatter_(DistComm *c, const void *send, void *recv, size_t n, DistType t) {
    DistShm_ *s = c->shm;
    int W = c->world;
    size_t es = dist_esize_(t), per = s->slot_bytes / es / W; /* a piece of every rank's part */
    for (size_t off = 0; off < n; off += per) {
        size_t k = n - off < per ? n - off : per;
        for (int q = 0; q < W; q++)
            memcpy(dist_slot_(s, c->rank) + (size_t)q * k * es, (const char *)send + ((size_t)q * n + off) * es, k * es);
        if (dist_shm_barrier_(c)) return -1;
        dist_shm_sum_(s, (size_t)c->rank * k, (char *)recv + off * es, k, t);
        if (dist_shm_barrier_(c)) return -1;
    }
    return 0;
}

static int dist_shm_all_gather_(DistComm *c, const void *send, void *recv, size_t n, DistType t) {
    DistShm_ *s = c->shm;
    size_t es = dist_esize_(t), per = s->slot_bytes / es;
    for (size_t off = 0; off < n; off += per) {
        size_t k = n - off < per ? n - off : per;
        memcpy(dist_slot_(s, c->rank), (const char *)send + off * es, k * es);
        if (dist_shm_barrier_(c)) return -1;
        for (int q = 0; q < c->world; q++)
            if (q != c->rank || (const char *)recv + ((size_t)q * n + off) * es != (const char *)send + off * es)
                memcpy((char *)recv + ((size_t)q * n + off) * es, dist_slot_(s, q), k * es);
        if (dist_shm_barrier_(c)) return -1;
    }
    return 0;
}

static int dist_shm_broadcast_(DistComm *c, void *buf, size_t bytes, int root) {
    DistShm_ *s = c->shm;
    if (root < 0 || root >= c->world) {
        snprintf(c->err, sizeof c->err, "broadcast root %d: expected 0..%d", root, c->world - 1);
        return -1;
    }
    for (size_t off = 0; off < bytes; off += s->slot_bytes) {
        size_t k = bytes - off < s->slot_bytes ? bytes - off : s->slot_bytes;
        if (c->rank == root) memcpy(dist_slot_(s, root), (char *)buf + off, k);
        if (dist_shm_barrier_(c)) return -1;
        if (c->rank != root) memcpy((char *)buf + off, dist_slot_(s, root), k);
        if (dist_shm_barrier_(c)) return -1;
    }
    return 0;
}

static int dist_shm_sum_host_(DistComm *c, double *x, int n) {
    return n < 0 ? -1 : dist_shm_all_reduce_(c, x, (size_t)n, DIST_F64);
}

DISTDEF void dist_shm_comm(DistComm *c, void *shm, int rank) {
    memset(c, 0, sizeof *c);
    c->shm = shm;
    c->rank = rank;
    c->world = ((DistShm_ *)shm)->world;
    c->all_reduce = dist_shm_all_reduce_;
    c->reduce_scatter = dist_shm_reduce_scatter_;
    c->all_gather = dist_shm_all_gather_;
    c->broadcast = dist_shm_broadcast_;
    c->barrier = dist_shm_barrier_;
    c->sum_host = dist_shm_sum_host_;
}

DISTDEF int dist_spawn(int world, DistRankFn fn, void *ctx, char *err, size_t errlen) {
    void *shm = dist_shm_create(world, err, errlen);
    if (!shm) return -1;
    pid_t pids[DIST_MAX_WORLD];
    pid_t parent = getpid();
    fflush(stdout); /* buffered output would be written once by each child too */
    fflush(stderr);
    int started = 0, rc = 0;
    for (int r = 0; r < world; r++) {
        pid_t p = fork();
        if (p < 0) {
            snprintf(err, errlen, "cannot start rank %d of %d: fork: %s", r, world, strerror(errno));
            rc = -1;
            break;
        }
        if (p == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* no orphan blocked in a collective */
            if (getppid() != parent) _exit(1); /* the parent died before the line above */
            DistComm c;
            dist_shm_comm(&c, shm, r);
            int st = fn(&c, ctx);
            dist_nccl_close(&c);
            fflush(stdout);
            fflush(stderr);
            _exit(st & 0xff ? st & 0xff : st ? 1 : 0);
        }
        pids[started++] = p;
    }
    /* the first rank to fail (in the order they end) is the one named */
    int left = started;
    while (left > 0) {
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int r = -1;
        for (int i = 0; i < started; i++)
            if (pids[i] == p) { r = i; pids[i] = 0; }
        if (r < 0) continue; /* not one of ours */
        left--;
        int bad = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (bad && !rc) {
            if (WIFSIGNALED(status))
                snprintf(err, errlen, "rank %d of %d was killed by signal %d (%s); the other ranks were stopped", r, world,
                         WTERMSIG(status), strsignal(WTERMSIG(status)));
            else
                snprintf(err, errlen, "rank %d of %d failed (exit status %d); the other ranks were stopped", r, world,
                         WEXITSTATUS(status));
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); /* as a shell says it */
            for (int i = 0; i < started; i++)
                if (pids[i]) kill(pids[i], SIGKILL);
        }
    }
    if (rc == -1) { /* a fork failed: the ranks already started wait for it at a barrier */
        for (int i = 0; i < started; i++)
            if (pids[i]) { kill(pids[i], SIGKILL); waitpid(pids[i], NULL, 0); }
    }
    dist_shm_destroy(shm);
    return rc;
}

DISTDEF int dist_parse_gpus(const char *list, int *ids, int max, char *err, size_t errlen) {
    int n = 0;
    const char *p = list;
    if (!p || !*p) { snprintf(err, errlen, "--gpus '': expected GPU indices separated by commas, e.g. 0,1"); return -1; }
    while (*p) {
        char *end = NULL;
        errno = 0;
        long v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : -1;
        if (v < 0 || errno || (end && *end && *end != ',') || v > 1023) {
            snprintf(err, errlen, "--gpus '%s': item %d is not a GPU index (expected numbers >= 0 separated by commas, e.g. 0,1)",
                     list, n + 1);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (ids[i] == v) {
                snprintf(err, errlen, "--gpus '%s': GPU %ld is listed twice (one rank per GPU)", list, v);
                return -1;
            }
        if (n == max) { snprintf(err, errlen, "--gpus '%s': more than %d GPUs", list, max); return -1; }
        ids[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && !*p) {
            snprintf(err, errlen, "--gpus '%s': a trailing comma (expected GPU indices separated by commas)", list);
            return -1;
        }
    }
    return n;
}

/* ---- NCCL, opened at run time ---- */
#ifdef DIST_NCCL
typedef struct { char internal[128]; } DistNcclId_;
typedef int DistNcclResult_;
typedef struct {
    void *lib, *comm, *stream;
    DistNcclResult_ (*get_unique_id)(DistNcclId_ *);
    DistNcclResult_ (*init_rank)(void **, int, DistNcclId_, int);
    DistNcclResult_ (*all_reduce)(const void *, void *, size_t, int, int, void *, void *);
    DistNcclResult_ (*reduce_scatter)(const void *, void *, size_t, int, int, void *, void *);
    DistNcclResult_ (*all_gather)(const void *, void *, size_t, int, void *, void *);
    DistNcclResult_ (*broadcast)(const void *, void *, size_t, int, int, void *, void *);
    DistNcclResult_ (*destroy)(void *);
    const char *(*error_string)(DistNcclResult_);
} DistNccl_;
/* ncclDataType_t values (nccl.h since 2.10): ncclFloat32 7, ncclFloat64 8, ncclBfloat16 9; ncclSum 0 */
static int dist_nccl_type_(DistType t) { return t == DIST_F64 ? 8 : t == DIST_F32 ? 7 : 9; }

static int dist_nccl_check_(DistComm *c, DistNcclResult_ r, const char *what) {
    if (r == 0) return 0;
    DistNccl_ *x = c->nccl;
    snprintf(c->err, sizeof c->err, "rank %d: %s failed: NCCL error %d (%s)", c->rank, what, r,
             x && x->error_string ? x->error_string(r) : "?");
    return -1;
}
static int dist_nccl_all_reduce_(DistComm *c, void *buf, size_t n, DistType t) {
    DistNccl_ *x = c->nccl;
    return dist_nccl_check_(c, x->all_reduce(buf, buf, n, dist_nccl_type_(t), 0, x->comm, x->stream), "ncclAllReduce");
}
static int dist_nccl_reduce_scatter_(DistComm *c, const void *send, void *recv, size_t n, DistType t) {
    DistNccl_ *x = c->nccl;
    return dist_nccl_check_(c, x->reduce_scatter(send, recv, n, dist_nccl_type_(t), 0, x->comm, x->stream),
                            "ncclReduceScatter");
}
static int dist_nccl_all_gather_(DistComm *c, const void *send, void *recv, size_t n, DistType t) {
    DistNccl_ *x = c->nccl;
    return dist_nccl_check_(c, x->all_gather(send, recv, n, dist_nccl_type_(t), x->comm, x->stream), "ncclAllGather");
}
static int dist_nccl_broadcast_(DistComm *c, void *buf, size_t bytes, int root) {
    DistNccl_ *x = c->nccl;
    return dist_nccl_check_(c, x->broadcast(buf, buf, bytes, 1 /* ncclUint8 */, root, x->comm, x->stream), "ncclBroadcast");
}
#endif

DISTDEF int dist_nccl_init(DistComm *c, void *stream) {
#ifndef DIST_NCCL
    (void)stream;
    snprintf(c->err, sizeof c->err, "rank %d: NCCL is only in the CUDA build (ablate, not ablate-cpu)", c->rank);
    return -1;
#else
    DistShm_ *s = c->shm;
    DistNccl_ *x = calloc(1, sizeof *x);
    int ok = x != NULL;
    if (ok) x->lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (ok && !x->lib) {
        snprintf(c->err, sizeof c->err, "rank %d: cannot load NCCL (libnccl.so.2: %s); multi-GPU training needs it: "
                 "install NVIDIA's libnccl2 package or put its directory in LD_LIBRARY_PATH", c->rank, dlerror());
        ok = 0;
    }
#define DIST_SYM_(field, name)                                                                  \
    if (ok && !(*(void **)&x->field = dlsym(x->lib, name))) {                                   \
        snprintf(c->err, sizeof c->err, "rank %d: libnccl.so.2 has no %s (NCCL 2.10 or later expected)", c->rank, name); \
        ok = 0;                                                                                 \
    }
    DIST_SYM_(get_unique_id, "ncclGetUniqueId")
    DIST_SYM_(init_rank, "ncclCommInitRank")
    DIST_SYM_(all_reduce, "ncclAllReduce")
    DIST_SYM_(reduce_scatter, "ncclReduceScatter")
    DIST_SYM_(all_gather, "ncclAllGather")
    DIST_SYM_(broadcast, "ncclBroadcast")
    DIST_SYM_(destroy, "ncclCommDestroy")
    DIST_SYM_(error_string, "ncclGetErrorString")
#undef DIST_SYM_
    /* every rank learns whether every rank loaded NCCL before any waits in NCCL's own init */
    double fails = ok ? 0 : 1;
    DistNcclId_ id;
    memset(&id, 0, sizeof id);
    if (ok && c->rank == 0 && x->get_unique_id(&id) != 0) {
        snprintf(c->err, sizeof c->err, "rank 0: ncclGetUniqueId failed");
        ok = 0, fails = 1;
    }
    if (ok && c->rank == 0) memcpy(s->nccl_id, &id, sizeof id);
    if (dist_shm_sum_host_(c, &fails, 1)) ok = 0;
    if (fails > 0) {
        if (ok) snprintf(c->err, sizeof c->err, "rank %d: another rank could not start NCCL", c->rank);
        if (x && x->lib) dlclose(x->lib);
        free(x);
        return -1;
    }
    memcpy(&id, s->nccl_id, sizeof id);
    x->stream = stream;
    c->nccl = x;
    if (dist_nccl_check_(c, x->init_rank(&x->comm, c->world, id, c->rank), "ncclCommInitRank")) {
        dlclose(x->lib);
        free(x);
        c->nccl = NULL;
        return -1;
    }
    c->all_reduce = dist_nccl_all_reduce_;
    c->reduce_scatter = dist_nccl_reduce_scatter_;
    c->all_gather = dist_nccl_all_gather_;
    c->broadcast = dist_nccl_broadcast_;
    return 0;
#endif
}

DISTDEF void *dist_nccl_set_stream(DistComm *c, void *stream) {
#ifdef DIST_NCCL
    DistNccl_ *x = c->nccl;
    if (!x) return NULL;
    void *old = x->stream;
    x->stream = stream;
    return old;
#else
    (void)c;
    (void)stream;
    return NULL;
#endif
}

DISTDEF void dist_nccl_close(DistComm *c) {
#ifdef DIST_NCCL
    DistNccl_ *x = c->nccl;
    if (!x) return;
    if (x->comm) x->destroy(x->comm);
    dlclose(x->lib);
    free(x);
    c->nccl = NULL;
    dist_shm_comm(c, c->shm, c->rank);
#else
    (void)c;
#endif
}

#endif /* DIST_IMPLEMENTATION_DONE */
#endif /* DIST_IMPLEMENTATION */
