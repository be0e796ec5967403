/* attn/identity.h - no token mixing: out = W_o (W_v x). The control of every study: what a
   model learns without attention ("how much does mixing buy"). The smallest room of attn.h
   (include attn.h, not this file): read it as the template for a new mechanism.

   PARAMETERS: v_proj [H*hd, d], o_proj [d, H*hd]. No options of its own; no KV cache.
*/
#ifndef ATTN_IDENTITY_H
#define ATTN_IDENTITY_H

#define ATTN_OPTIONS_identity(X) /* none */
#define ATTN_ACTS_identity       /* v (= att) only, from AttnActs */
#define ATTN_SCRATCH_identity    /* datt only */

#endif /* ATTN_IDENTITY_H */

#if defined(ATTN_IMPLEMENTATION) && defined(ATTN_ROOMS_NOW) && !defined(ATTN_IDENTITY_DONE)
#define ATTN_IDENTITY_DONE

static int attn_identity_resolve(AttnConfig *c, char *err, size_t errlen) {
    (void)err, (void)errlen;
    c->n_kv_heads = c->n_heads;
    return 0;
}

static int attn_identity_param_specs(const AttnConfig *c, AttnParamSpec *p) {
    size_t off = 0;
    int qd = c->n_heads * c->head_dim;
    attn_spec_set(&p[0], "v_proj.weight", &off, qd, c->d_model);
    attn_spec_set(&p[1], "o_proj.weight", &off, c->d_model, qd);
    p[1].is_output_proj = 1;
    return 2;
}

static double attn_identity_flops(const AttnConfig *c, int T) {
    (void)T;
    return 2.0 * (double)attn_param_count(c);
}

static void attn_identity_act_sizes(const AttnConfig *c, int B, int T, size_t *act_elems, size_t *stat_elems) {
    *act_elems = (size_t)B * T * c->n_heads * c->head_dim;
    *stat_elems = 0;
}

static void attn_identity_acts_bind(const AttnConfig *c, AttnActs *a, const Gpu *gpu, char *act_mem, char *stat_mem,
                                    int B, int T) {
    (void)stat_mem;
    a->v = a->att = attn_carve(&act_mem, (size_t)B * T * c->n_heads * c->head_dim, ops_act_size(gpu));
}

static size_t attn_identity_scratch_elems(const AttnConfig *c, int B, int T) {
    return (size_t)B * T * c->n_heads * c->head_dim;
}

static void attn_identity_scratch_bind(const AttnConfig *c, AttnScratch *s, const Gpu *gpu, char *mem, int B, int T) {
    s->datt = attn_carve(&mem, (size_t)B * T * c->n_heads * c->head_dim, ops_act_size(gpu));
}

static int attn_identity_forward(Gpu *gpu, const AttnConfig *c, const void *w, AttnActs *a, const void *x, void *out,
                                 int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim;
    op_matmul_forward(gpu, a->v, x, attn_wat(gpu, w, 0), N, d, qd);
    op_matmul_forward(gpu, out, a->att, attn_wat(gpu, w, (size_t)qd * d), N, qd, d);
    return 0;
}

static int attn_identity_backward(Gpu *gpu, const AttnConfig *c, const void *w, ops_real *dw, AttnActs *a,
                                  AttnScratch *s, const void *x, const void *dout, void *dx, int B, int T) {
    int N = B * T, d = c->d_model, qd = c->n_heads * c->head_dim;
    size_t oo = (size_t)qd * d; /* o_proj after v_proj */
    op_matmul_backward(gpu, s->datt, dw + oo, dout, a->att, attn_wat(gpu, w, oo), N, qd, d, 0);
    op_matmul_backward(gpu, dx, dw, s->datt, x, attn_wat(gpu, w, 0), N, d, qd, 0);
    return 0;
}

/* decoding: no cache; the forward on the one token */
static size_t attn_identity_cache_bytes(const AttnConfig *c, int T) { (void)c, (void)T; return 0; }

static int attn_identity_decode(const AttnConfig *c, const ops_real *w, AttnCache *k, const ops_real *x, ops_real *out) {
    int B = k->B, d = c->d_model, qd = c->n_heads * c->head_dim;
    ops_real *v = attn_tmp((size_t)B * qd);
    if (!v) return -1;
    op_matmul_forward(NULL, v, x, w, B, d, qd);
    op_matmul_forward(NULL, out, v, w + (size_t)qd * d, B, qd, d);
    free(v);
    return 0;
}

/* GPU decoding: the forward on the one token (v into the room's scratch); no cache */
static size_t attn_identity_gpu_scratch_bytes(const AttnConfig *c, int B, int cap) {
    (void)cap;
    return (size_t)B * c->n_heads * c->head_dim * 2; /* bf16 v */
}

static int attn_identity_gpu_decode(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                    void *out) {
    int B = k->B, d = c->d_model, qd = c->n_heads * c->head_dim;
    op_matmul_forward(gpu, k->scratch, x, attn_wat(gpu, w, 0), B, d, qd);
    op_matmul_forward(gpu, out, k->scratch, attn_wat(gpu, w, (size_t)qd * d), B, qd, d);
    return 0;
}

/* the prompt at once (attn.h's attn_gpu_prefill_whole: tuning.dec_prefill): the forward over all
   T tokens (two matmuls of N = B*T rows); there is no cache to fill */
static int attn_identity_gpu_prefill(Gpu *gpu, const AttnConfig *c, const void *w, AttnGpuCache *k, const void *x,
                                     void *out, int T) {
#ifndef ABLATE_NO_CUDA
    AttnGpuPrefill pf;
    attn_gpu_prefill_begin(gpu, c, k->B, T, &pf);
    int rc = attn_forward(gpu, c, w, &pf.a, x, out, k->B, T);
    attn_gpu_prefill_end(gpu, &pf);
    return rc;
#else
    (void)gpu, (void)c, (void)w, (void)k, (void)x, (void)out, (void)T;
    return -1; /* the CPU-only build has no GPU */
#endif
}

static const AttnMech attn_room_identity = {
    "identity", attn_identity_resolve, NULL, attn_identity_param_specs, NULL, NULL, attn_identity_flops, NULL,
    attn_identity_act_sizes, attn_identity_acts_bind, attn_identity_scratch_elems, attn_identity_scratch_bind,
    attn_identity_forward, attn_identity_backward, NULL, attn_identity_cache_bytes, attn_identity_decode, NULL,
    attn_identity_cache_bytes, attn_identity_gpu_scratch_bytes, NULL, attn_identity_gpu_decode,
    attn_identity_gpu_prefill,
    NULL, /* kernels compiled ahead: none listed (each compiles on first use) */
};

#endif /* ATTN_IDENTITY_DONE */
