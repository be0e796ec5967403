/* export.h - checkpoints that leave the tool: a Hugging Face model directory from a
   checkpoint, and the mapping back for --init-from.

   USAGE
     #define EXPORT_IMPLEMENTATION   // in one .c file (study.h's implementation defines it;
     #include "export.h"              // ABLATE_IMPLEMENTATION too)

     char err[512], note[512];
     if (export_dir("run/model.safetensors", "hf/", NULL, note, sizeof note, err, sizeof err))
         fprintf(stderr, "%s\n", err);
     else if (note[0]) fprintf(stderr, "%s\n", note);   // an architecture of our own

   THE DIRECTORY (export_dir; ablate train --save DIR/model.safetensors writes the other files
   beside the weights, a study's keep_checkpoints writes DIR/RUN/hf)
     model.safetensors        the checkpoint's bytes as they are (a hard link where the file system
                              allows, else a copy): fp32, Hugging Face tensor names,
                              the embedding tied to the LM head (no lm_head.weight), and our
                              configuration in the header's __metadata__ (smollm.h)
     config.json              a Hugging Face configuration (below)
     generation_config.json   greedy decoding; no bos/eos token (none is trained)
     tokenizer.json           byte-level models (vocabulary 256): a BPE of the 256 byte tokens
                              and no merges behind the ByteLevel pre-tokenizer (no regex), so
                              Hugging Face tokenizers maps byte b to id b; other vocabularies:
                              the tokenizer.json given (ablate tokenize writes one beside its
                              shards), else none and a note

   ARCHITECTURES (export_arch). Each mapped equation was checked against transformers'
   modeling code, and `make hfcheck` checks loss and greedy text through transformers:
     LlamaForCausalLM    pre-norm, MHA / GQA / MQA, no QK-norm, full causal: RMSNorm
                         x / sqrt(mean(x^2) + eps) * w, SwiGLU down(silu(gate x) * up x),
                         rotate-half RoPE at positions 0.., scores / sqrt(head_dim), tied
                         embeddings, no biases: ours exactly
     MistralForCausalLM  the same with a sliding window W (Mistral's sliding_window = W: query
                         i sees keys i-W+1..i, our convention)
     Qwen3ForCausalLM    pre-norm with per-head QK-norm (q_norm, k_norm [head_dim], before RoPE,
                         as ours); a window sets use_sliding_window, max_window_layers 0
     AblateForCausalLM   everything else: post and sandwich norms (OLMo 2's post-norm QK-norm
                         spans the whole projection, not one head; Gemma 2 scales embeddings,
                         offsets norm weights by 1 and uses GeLU), MLA, MGA, GDN, DSA, hier, identity,
                         sparse patterns (global, stride, dilation) and per-layer schedules
                         whose layers differ. config.json then names the architecture
                         "AblateForCausalLM" (model_type "ablate"), documents every field and
                         tensor under "ablate_doc", and export_dir's note says so; no transformers
                         class loads it.
   Every SmolConfig field this file reads is read in export_shape: a renamed field is a
   one-place edit.

   IMPORT (export_init_path): --init-from DIR takes DIR/model.safetensors (or a file) and
   loads it into a model of the run's own configuration with smollm_load, which refuses any
   tensor that is missing, extra, not F32 or of another shape and names the first one. A Hugging
   Face Llama or Qwen3 checkpoint of the same shapes, saved in fp32 with tied embeddings, loads
   the same way.

   DEPENDS ON: smollm.h (and so attn.h, ops.h); POSIX: stat, mkdir, link.
   LINKAGE: every public function is declared EXPORTDEF (extern); EXPORT_STATIC (or ABLATE_STATIC)
   makes them static. C++ can include the header: its declarations sit in extern "C".
   Functions return 0, or -1 with a message that names the file or value; nothing exits.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(EXPORT_IMPLEMENTATION)
#define EXPORT_IMPLEMENTATION
#endif
#ifndef EXPORT_H
#define EXPORT_H

/* linkage of every public function: extern, or static with EXPORT_STATIC or ABLATE_STATIC */
#ifndef EXPORTDEF
#if defined(EXPORT_STATIC) || defined(ABLATE_STATIC)
#define EXPORTDEF static
#else
#define EXPORTDEF extern
#endif
#endif

/* mkdir, stat: POSIX 2008, asked for before the first system header (a strict -std=c99 build) */
#if defined(EXPORT_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "smollm.h"
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { EXPORT_LLAMA = 0, EXPORT_MISTRAL, EXPORT_QWEN3, EXPORT_OWN } ExportArch;

/* what the exported files need of a configuration: the one reader of SmolConfig's fields */
typedef struct {
    int vocab, d_model, layers, heads, kv_heads, head_dim, ffn, window, qk_norm, seq;
    int sparse;          /* global / stride / dilation set: a pattern beyond a window */
    int uniform;         /* every layer has the same attention configuration */
    float rope_theta, norm_eps, init_std;
    const char *norm, *attn, *schedule;
    SmolNormKind norm_kind;
    AttnKind attn_kind;
} ExportShape;

/* cfg resolved (smollm_resolve); seq: the trained context (max_position_embeddings) */
EXPORTDEF ExportShape export_shape(const SmolConfig *cfg, int seq);
/* the Hugging Face architecture that computes the same function, or EXPORT_OWN with the reason */
EXPORTDEF ExportArch export_arch(const ExportShape *s, char *why, size_t whylen);
EXPORTDEF const char *export_arch_name(ExportArch a);
EXPORTDEF int export_write_config(const char *path, const ExportShape *s, char *err, size_t errlen);
EXPORTDEF int export_write_generation_config(const char *path, char *err, size_t errlen);
/* the byte-level tokenizer.json: byte b <-> id b */
EXPORTDEF int export_write_byte_tokenizer(const char *path, char *err, size_t errlen);
/* config.json, generation_config.json and tokenizer.json into dir for the checkpoint's model;
   tokenizer: a tokenizer.json to copy (NULL: the byte-level one when the vocabulary is 256).
   note: set when the architecture is our own or no tokenizer was written ("" otherwise) */
EXPORTDEF int export_sidecars(const char *dir, const SmolConfig *cfg, int seq, const char *tokenizer, char *note,
                    size_t notelen, char *err, size_t errlen);
/* the whole directory from a checkpoint file: weights checked (smollm_verify), copied, sidecars */
EXPORTDEF int export_dir(const char *ckpt, const char *dir, const char *tokenizer, char *note, size_t notelen, char *err,
               size_t errlen);
/* DIR -> DIR/model.safetensors; a file stays itself. -1 when neither exists */
EXPORTDEF int export_init_path(const char *from, char *out, size_t cap, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EXPORT_H */

/* ======================================================================= */
#ifdef EXPORT_IMPLEMENTATION
#ifndef EXPORT_IMPLEMENTATION_DONE
#define EXPORT_IMPLEMENTATION_DONE

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

EXPORTDEF ExportShape export_shape(const SmolConfig *c, int seq) {
    ExportShape s;
    memset(&s, 0, sizeof s);
    AttnConfig a0 = smollm_layer_attn(c, 0);
    char e[256];
    attn_resolve(&a0, e, sizeof e);
    s.uniform = 1;
    for (int l = 1; l < c->n_layers && s.uniform; l++) {
        AttnConfig a = smollm_layer_attn(c, l);
        attn_resolve(&a, e, sizeof e);
        s.uniform = !memcmp(&a, &a0, sizeof a);
    }
    s.vocab = c->vocab_size;
    s.d_model = c->d_model;
    s.layers = c->n_layers;
    s.heads = a0.n_heads;
    s.kv_heads = a0.n_kv_heads;
    s.head_dim = a0.head_dim;
    s.ffn = c->ffn_dim;
    s.window = a0.window;
    s.qk_norm = a0.qk_norm;
    s.sparse = a0.global_tokens || a0.stride || a0.dilation;
    s.seq = seq;
    s.rope_theta = c->rope_theta;
    s.norm_eps = c->norm_eps;
    s.init_std = c->init_std;
    s.norm_kind = c->norm;
    s.norm = smollm_norm_kind_name(c->norm);
    s.attn_kind = a0.kind;
    s.attn = attn_kind_name(a0.kind);
    s.schedule = c->attn_layers;
    return s;
}

EXPORTDEF ExportArch export_arch(const ExportShape *s, char *why, size_t whylen) {
    const char *r = NULL;
    int dense = s->attn_kind == ATTN_MHA || s->attn_kind == ATTN_GQA || s->attn_kind == ATTN_MQA || s->attn_kind == ATTN_SWA;
    if (s->norm_kind != SMOLLM_NORM_PRE) r = "no Hugging Face architecture places norms as our post/sandwich strategies do";
    else if (!s->uniform) r = "the per-layer schedule gives layers different attention";
    else if (!dense) r = "no Hugging Face architecture computes this attention mechanism";
    else if (s->sparse) r = "global/stride/dilation patterns have no Hugging Face equivalent";
    if (r) {
        snprintf(why, whylen, "%s (norm %s, attention %s%s%s)", r, s->norm, s->attn, s->schedule[0] ? ", layers " : "",
                 s->schedule);
        return EXPORT_OWN;
    }
    if (why && whylen) why[0] = 0;
    if (s->qk_norm) return EXPORT_QWEN3;
    return s->window > 0 ? EXPORT_MISTRAL : EXPORT_LLAMA;
}

EXPORTDEF const char *export_arch_name(ExportArch a) {
    static const char *n[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM", "AblateForCausalLM"};
    return a >= EXPORT_LLAMA && a <= EXPORT_OWN ? n[a] : "?";
}

static FILE *export_open(const char *path, char *tmp, size_t cap, char *err, size_t errlen) {
    snprintf(tmp, cap, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    return f;
}

/* written to path.tmp, then renamed: a reader never sees half a file */
static int export_close(FILE *f, const char *tmp, const char *path, char *err, size_t errlen) {
    int ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        remove(tmp);
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

/* the shortest decimal that reads back as the same float: 1e-05, not 9.99999975e-06 */
static const char *export_float(char *buf, size_t cap, float v) {
    if (v == floorf(v) && fabsf(v) < 1e15f) { snprintf(buf, cap, "%.0f", (double)v); return buf; } /* 100000 */
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

EXPORTDEF int export_write_config(const char *path, const ExportShape *s, char *err, size_t errlen) {
    char why[512], tmp[4200];
    ExportArch a = export_arch(s, why, sizeof why);
    FILE *f = export_open(path, tmp, sizeof tmp, err, errlen);
    if (!f) return -1;
    static const char *mt[] = {"llama", "mistral", "qwen3", "ablate"};
    fprintf(f, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n", export_arch_name(a), mt[a]);
    fprintf(f, "  \"vocab_size\": %d,\n  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n", s->vocab, s->d_model,
            s->ffn);
    fprintf(f, "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"num_key_value_heads\": %d,\n",
            s->layers, s->heads, s->kv_heads);
    fprintf(f, "  \"head_dim\": %d,\n  \"hidden_act\": \"silu\",\n  \"max_position_embeddings\": %d,\n", s->head_dim,
            s->seq);
    /* rope_theta for transformers 4.x; rope_parameters, where 5.x reads it */
    char eps[32], theta[32], std[32];
    export_float(eps, sizeof eps, s->norm_eps);
    export_float(theta, sizeof theta, s->rope_theta);
    export_float(std, sizeof std, s->init_std);
    fprintf(f, "  \"rms_norm_eps\": %s,\n  \"rope_theta\": %s,\n", eps, theta);
    fprintf(f, "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": %s},\n", theta);
    fprintf(f, "  \"rope_scaling\": null,\n  \"initializer_range\": %s,\n", std);
    fprintf(f, "  \"tie_word_embeddings\": true,\n  \"attention_bias\": false,\n  \"attention_dropout\": 0.0,\n");
    if (a == EXPORT_LLAMA) fprintf(f, "  \"mlp_bias\": false,\n  \"pretraining_tp\": 1,\n");
    if (a == EXPORT_MISTRAL) fprintf(f, "  \"sliding_window\": %d,\n", s->window);
    if (a == EXPORT_QWEN3) {
        /* Qwen3 windows layers i >= max_window_layers when use_sliding_window: all of them */
        fprintf(f, "  \"use_sliding_window\": %s,\n  \"sliding_window\": %d,\n  \"max_window_layers\": 0,\n",
                s->window > 0 ? "true" : "false", s->window > 0 ? s->window : s->seq);
        fprintf(f, "  \"layer_types\": [");
        for (int l = 0; l < s->layers; l++)
            fprintf(f, "%s\"%s\"", l ? ", " : "", s->window > 0 ? "sliding_attention" : "full_attention");
        fprintf(f, "],\n");
    }
    if (a == EXPORT_OWN) {
        fprintf(f, "  \"ablate_norm\": \"%s\",\n  \"ablate_attn\": \"%s\",\n  \"ablate_attn_layers\": \"%s\",\n", s->norm,
                s->attn, s->schedule);
        fprintf(f, "  \"ablate_window\": %d,\n  \"ablate_qk_norm\": %d,\n", s->window, s->qk_norm);
        fprintf(f, "  \"ablate_why_not_mapped\": \"%s\",\n", why);
        fprintf(f, "  \"ablate_doc\": {\n"
                   "    \"what\": \"a model of the ablate toolkit that no Hugging Face architecture computes exactly; "
                   "transformers cannot load it. Every configuration field of ours is also in model.safetensors' "
                   "__metadata__ (ablate.*), which ablate eval and --init-from read\",\n"
                   "    \"fields\": \"vocab_size, hidden_size (d_model), intermediate_size (SwiGLU hidden), "
                   "num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps, rope_theta "
                   "(rotate-half RoPE), max_position_embeddings (the trained context), tie_word_embeddings (the LM "
                   "head is the embedding); ablate_norm: pre h = x + A(N(x)), post h = x + N(A(x)), sandwich "
                   "h = x + N(A(N(x))), the FFN alike, then a final RMSNorm; ablate_attn / ablate_attn_layers: the "
                   "mechanism and per-layer schedule (attn.h's manual); ablate_window: keys i-W+1..i (0: all); "
                   "ablate_qk_norm: per-head RMSNorm of q and k before RoPE\",\n"
                   "    \"tensors\": \"model.embed_tokens.weight [vocab, d]; per layer i model.layers.i.: "
                   "input_layernorm (pre/sandwich: before attention), post_attention_layernorm (pre: before the "
                   "FFN; post/sandwich: on the attention output), pre_feedforward_layernorm (sandwich), "
                   "post_feedforward_layernorm (post/sandwich), all [d]; self_attn.* as attn.h names them per "
                   "mechanism ([out, in] layout, no biases); mlp.gate_proj, mlp.up_proj [ffn, d], mlp.down_proj "
                   "[d, ffn]; model.norm.weight [d]\"\n  },\n");
    }
    fprintf(f, "  \"bos_token_id\": null,\n  \"eos_token_id\": null,\n  \"pad_token_id\": null,\n");
    fprintf(f, "  \"torch_dtype\": \"float32\",\n  \"use_cache\": true\n}\n");
    return export_close(f, tmp, path, err, errlen);
}

EXPORTDEF int export_write_generation_config(const char *path, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = export_open(path, tmp, sizeof tmp, err, errlen);
    if (!f) return -1;
    fprintf(f, "{\n  \"do_sample\": false,\n  \"bos_token_id\": null,\n  \"eos_token_id\": null,\n"
               "  \"pad_token_id\": null\n}\n");
    return export_close(f, tmp, path, err, errlen);
}

/* GPT-2's byte-to-character map, as the ByteLevel pre-tokenizer applies it: the printable
   Latin-1 bytes stand for themselves, the rest take U+0100 upwards in byte order */
static unsigned export_byte_char(int b) {
    int k = 0;
    for (int x = 0; x < 256; x++) {
        int keep = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
        if (x == b) return keep ? (unsigned)x : 256u + (unsigned)k;
        if (!keep) k++;
    }
    return 0;
}

EXPORTDEF int export_write_byte_tokenizer(const char *path, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = export_open(path, tmp, sizeof tmp, err, errlen);
    if (!f) return -1;
    /* no regex: a pre-tokenizer split could only regroup bytes, never change ids, but without
       it the text goes through whole; no merges: every byte stays its own token */
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [],\n"
               "  \"normalizer\": null,\n  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
               "\"trim_offsets\": false, \"use_regex\": false},\n  \"post_processor\": null,\n"
               "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, "
               "\"use_regex\": false},\n  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
               "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
               "\"byte_fallback\": false, \"ignore_merges\": false,\n    \"vocab\": {");
    for (int b = 0; b < 256; b++) {
        unsigned cp = export_byte_char(b);
        fprintf(f, "%s\n      \"", b ? "," : "");
        if (cp == '"' || cp == '\\') fprintf(f, "\\%c", (char)cp);
        else if (cp < 0x80) fputc((int)cp, f);
        else if (cp < 0x800) { fputc(0xC0 | (int)(cp >> 6), f); fputc(0x80 | (int)(cp & 63), f); }
        fprintf(f, "\": %d", b);
    }
    fprintf(f, "\n    },\n    \"merges\": []\n  }\n}\n");
    return export_close(f, tmp, path, err, errlen);
}

/* dst as src's bytes: a hard link (no second copy of the weights; checkpoints are replaced by
   rename, never rewritten in place, so the link never sees a change), else a copy */
static int export_copy(const char *src, const char *dst, char *err, size_t errlen) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    remove(tmp);
    if (link(src, tmp) == 0) {
        if (rename(tmp, dst) == 0) return 0;
        remove(tmp);
    }
    FILE *in = fopen(src, "rb");
    if (!in) { snprintf(err, errlen, "cannot open %s: %s", src, strerror(errno)); return -1; }
    FILE *out = export_open(dst, tmp, sizeof tmp, err, errlen);
    if (!out) { fclose(in); return -1; }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    fclose(in);
    if (!ok) { fclose(out); remove(tmp); snprintf(err, errlen, "cannot copy %s to %s", src, dst); return -1; }
    return export_close(out, tmp, dst, err, errlen);
}

EXPORTDEF int export_sidecars(const char *dir, const SmolConfig *cfg, int seq, const char *tokenizer, char *note,
                    size_t notelen, char *err, size_t errlen) {
    char p[4200], why[512];
    if (note && notelen) note[0] = 0;
    ExportShape s = export_shape(cfg, seq);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (export_write_config(p, &s, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    if (export_write_generation_config(p, err, errlen)) return -1;
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (tokenizer) {
        if (export_copy(tokenizer, p, err, errlen)) return -1;
    } else if (s.vocab == 256) {
        if (export_write_byte_tokenizer(p, err, errlen)) return -1;
    }
    size_t k = 0;
    if (export_arch(&s, why, sizeof why) == EXPORT_OWN && note)
        k += (size_t)snprintf(note, notelen, "%s: architecture AblateForCausalLM of our own, which transformers "
                              "cannot load: %s", dir, why);
    if (!tokenizer && s.vocab != 256 && note && k < notelen)
        snprintf(note + k, notelen - k, "%s%s: no tokenizer.json written (vocabulary %d is not byte-level; give the "
                 "tokenizer.json the data was tokenized with)", k ? "\n" : "", dir, s.vocab);
    return 0;
}

EXPORTDEF int export_dir(const char *ckpt, const char *dir, const char *tokenizer, char *note, size_t notelen, char *err,
               size_t errlen) {
    SmolConfig cfg;
    int batch = 0, seq = 0;
    char p[4200], e2[512];
    if (smollm_read_config(ckpt, &cfg, &batch, &seq, err, errlen)) return -1;
    if (smollm_resolve(&cfg, err, errlen)) return -1;
    SmolModel m;
    /* the smallest model that holds the weights: a batch of one token */
    if (smollm_init(&m, &cfg, NULL, 1, 1, e2, sizeof e2)) { snprintf(err, errlen, "%s: %s", ckpt, e2); return -1; }
    int rc = smollm_verify(&m, ckpt, err, errlen);
    smollm_free(&m);
    if (rc) return -1;
    if (mkdir(dir, 0755) && errno != EEXIST) { snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno)); return -1; }
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (export_copy(ckpt, p, err, errlen)) return -1;
    return export_sidecars(dir, &cfg, seq, tokenizer, note, notelen, err, errlen);
}

EXPORTDEF int export_init_path(const char *from, char *out, size_t cap, char *err, size_t errlen) {
    struct stat st;
    if (stat(from, &st)) {
        snprintf(err, errlen, "init_from %s: %s (expected an exported directory or a .safetensors file)", from,
                 strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) snprintf(out, cap, "%s/model.safetensors", from);
    else snprintf(out, cap, "%s", from);
    if (stat(out, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "init_from %s: no model.safetensors in it (expected an exported directory)", from);
        return -1;
    }
    return 0;
}

#endif /* EXPORT_IMPLEMENTATION_DONE */
#endif /* EXPORT_IMPLEMENTATION */
