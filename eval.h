/* eval.h - evaluation beyond loss: multiple-choice accuracy, cloze items made from a held-out
   text, and a reference greedy continuation.

   USAGE
     #define EVAL_IMPLEMENTATION     // in one .c file (study.h's implementation defines it;
     #include "eval.h"                // ABLATE_IMPLEMENTATION too)

     EvalMcSet set;
     char err[512];
     if (eval_mc_load("items.jsonl", &set, err, sizeof err)) { fprintf(stderr, "%s\n", err); ... }
     EvalMcResult r;
     if (eval_mc_score(&model, &set, NULL, &r, NULL, err, sizeof err) == 0)   // NULL: byte-level
         printf("accuracy %.4f +- %.4f over %d items\n", r.acc, r.se, r.n);
     eval_mc_free(&set);

   MULTIPLE-CHOICE FILES (JSON lines, the HellaSwag layout that llm.c's evaluation reads): one
   object per line with "ctx" (the context, a string), "endings" (2 to EVAL_MC_MAX_ENDINGS
   non-empty strings) and "label" (the index of the right ending); other members are ignored,
   blank lines skipped. An ending is appended to the context as it is: it carries its own leading
   space. A line that breaks this is refused with its line number and what was expected.

   SCORING (eval_mc_score): each ending is tokenized on its own (byte-level: one token per byte;
   else the tokenizer given) after the context's tokens; the row is cut from the left to the
   model's context T + 1 when longer. The score of an ending is its MEAN token loss given the
   context (the loss summed over the ending's tokens / their count: llm.c's acc_norm, which does
   not favour short endings); the prediction is the ending with the lowest score (ties: the
   first). Accuracy = right / items, with standard error sqrt(acc (1 - acc) / items). Rows go
   through smollm_eval_rows in batches of the model's B, so the GPU scores them too.

   CLOZE ITEMS FROM A TEXT (eval_mc_make, ablate mc-make): a proxy for a benchmark, not a
   standard one, so that every study can report an accuracy on its own validation text. Only
   the held-out part of the text is used: its last val_frac bytes, cut exactly as data.h cuts a
   text file's validation split (n - (size_t)(n val_frac) bytes of training first), so no item
   comes from text a model trained on. Sentences end at '.', '!' or '?' followed by a blank, or
   at a line end; those of 24 to 400 bytes with at least 4 blanks are candidates. An item is a
   candidate sentence cut at the blank nearest its middle: ctx = up to context_bytes bytes of
   the held-out text before the sentence (starting after a blank) + the sentence's first half;
   the right ending is its second half; the others are second halves of other candidates, drawn
   at random (no two endings alike); the right one's position is random too. Candidates are
   taken in a seeded random order (splitmix64): the same text, seed and options give the same
   file byte for byte. Each line also carries "offset", the sentence's byte offset in the text.

   GREEDY REFERENCE (eval_greedy_reference): the argmax continuation by re-running the whole
   forward pass for every new token (no KV cache): a reference to check an export against, not
   a generator. CPU models only.

   DEPENDS ON: smollm.h (and so attn.h, ops.h), data.h (tokenizers).
   LINKAGE: every public function is declared EVALDEF (extern); EVAL_STATIC (or ABLATE_STATIC) makes
   them static. C++ can include the header: its declarations sit in extern "C".
   Functions return 0, or -1 with a message; nothing exits.
*/
/* ABLATE_IMPLEMENTATION turns on every header's implementation (before the include guard:
   the header may have been included before, without it) */
#if defined(ABLATE_IMPLEMENTATION) && !defined(EVAL_IMPLEMENTATION)
#define EVAL_IMPLEMENTATION
#endif
#ifndef EVAL_H
#define EVAL_H

/* linkage of every public function: extern, or static with EVAL_STATIC or ABLATE_STATIC */
#ifndef EVALDEF
#if defined(EVAL_STATIC) || defined(ABLATE_STATIC)
#define EVALDEF static
#else
#define EVALDEF extern
#endif
#endif

#include "smollm.h"
#include "data.h"
#include <stdint.h>
#include <stdio.h>

#define EVAL_MC_MAX_ENDINGS 16

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *ctx;
    char *endings[EVAL_MC_MAX_ENDINGS];
    int n_endings, label, line;
} EvalMcItem;

typedef struct { EvalMcItem *items; int n; } EvalMcSet;

typedef struct { int n, correct; double acc, se; } EvalMcResult;

/* zero = defaults */
typedef struct {
    int items;          /* default 500 (fewer when the text has fewer candidates) */
    int endings;        /* default 4 */
    int context_bytes;  /* default 256 */
    float val_frac;     /* default 0.1, as in training */
    uint64_t seed;      /* 0 is a seed like any other */
} EvalMcMake;

EVALDEF int eval_mc_load(const char *path, EvalMcSet *set, char *err, size_t errlen);
/* the same from memory (name for messages) */
EVALDEF int eval_mc_parse(const char *text, size_t n, const char *name, EvalMcSet *set, char *err, size_t errlen);
EVALDEF void eval_mc_free(EvalMcSet *set);
/* tok NULL: byte-level. pred (NULL or set->n entries): each item's chosen ending. -1: a token
   id past the model's vocabulary, out of memory */
EVALDEF int eval_mc_score(SmolModel *m, const EvalMcSet *set, DataTokenizer *tok, EvalMcResult *r, int *pred, char *err,
                  size_t errlen);
/* cloze items from text[0..n) into out (JSON lines); *written: the items written */
EVALDEF int eval_mc_make(const unsigned char *text, size_t n, const EvalMcMake *c, FILE *out, int *written, char *err,
                 size_t errlen);
/* out[0..steps): the greedy continuation of prompt[0..n); m on the CPU with T >= n + steps - 1 */
EVALDEF int eval_greedy_reference(SmolModel *m, const int *prompt, int n, int steps, int *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* EVAL_H */

/* ======================================================================= */
#ifdef EVAL_IMPLEMENTATION
#ifndef EVAL_IMPLEMENTATION_DONE
#define EVAL_IMPLEMENTATION_DONE

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a JSON line: an object of strings, arrays of strings and integers ---- */
typedef struct { const char *s; size_t n, i; } EvalJson;

static void evj_ws(EvalJson *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\r')) j->i++;
}
static int evj_is(EvalJson *j, char c) {
    evj_ws(j);
    if (j->i < j->n && j->s[j->i] == c) { j->i++; return 1; }
    return 0;
}
static int evj_hex4(EvalJson *j, unsigned *v) {
    *v = 0;
    for (int q = 0; q < 4; q++) {
        char h = j->i < j->n ? j->s[j->i++] : 0;
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}
/* a string as UTF-8 bytes (malloc'd, NUL-terminated); NULL when malformed */
static char *evj_str(EvalJson *j) {
    if (!evj_is(j, '"')) return NULL;
    size_t cap = 64, k = 0;
    char *o = malloc(cap);
    while (o && j->i < j->n && j->s[j->i] != '"') {
        if (k + 5 > cap) {
            char *no = realloc(o, cap *= 2);
            if (!no) { free(o); return NULL; }
            o = no;
        }
        unsigned char c = (unsigned char)j->s[j->i++];
        if (c != '\\') { o[k++] = (char)c; continue; }
        char e = j->i < j->n ? j->s[j->i++] : 0;
        const char *map = "\"\"\\\\//b\bf\fn\nr\rt\t";
        const char *hit = e ? strchr(map, e) : NULL;
        if (e == 'u') {
            unsigned v, lo;
            if (evj_hex4(j, &v)) { free(o); return NULL; }
            if (v >= 0xD800 && v < 0xDC00 && j->i + 1 < j->n && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u') {
                j->i += 2;
                if (evj_hex4(j, &lo) || lo < 0xDC00 || lo > 0xDFFF) { free(o); return NULL; }
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (v < 0x80) o[k++] = (char)v;
            else if (v < 0x800) { o[k++] = (char)(0xC0 | (v >> 6)); o[k++] = (char)(0x80 | (v & 63)); }
            else if (v < 0x10000) {
                o[k++] = (char)(0xE0 | (v >> 12)); o[k++] = (char)(0x80 | ((v >> 6) & 63)); o[k++] = (char)(0x80 | (v & 63));
            } else {
                o[k++] = (char)(0xF0 | (v >> 18)); o[k++] = (char)(0x80 | ((v >> 12) & 63));
                o[k++] = (char)(0x80 | ((v >> 6) & 63)); o[k++] = (char)(0x80 | (v & 63));
            }
        } else if (hit && (hit - map) % 2 == 0) o[k++] = hit[1];
        else { free(o); return NULL; }
    }
    if (!o || j->i >= j->n) { free(o); return NULL; }
    j->i++;
    o[k] = 0;
    return o;
}
/* skip any value (for members we do not read); -1 when malformed */
static int evj_skip(EvalJson *j, int depth) {
    evj_ws(j);
    if (depth > 32 || j->i >= j->n) return -1;
    char c = j->s[j->i];
    if (c == '"') { char *s = evj_str(j); int ok = s != NULL; free(s); return ok ? 0 : -1; }
    if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        j->i++;
        if (evj_is(j, close)) return 0;
        do {
            if (c == '{') { char *k = evj_str(j); int ok = k && evj_is(j, ':'); free(k); if (!ok) return -1; }
            if (evj_skip(j, depth + 1)) return -1;
        } while (evj_is(j, ','));
        return evj_is(j, close) ? 0 : -1;
    }
    size_t i0 = j->i;
    while (j->i < j->n && strchr("+-.0123456789eEtrufalsn", j->s[j->i])) j->i++;
    return j->i > i0 ? 0 : -1;
}

static void evm_item_free(EvalMcItem *it) {
    free(it->ctx);
    for (int e = 0; e < it->n_endings; e++) free(it->endings[e]);
    memset(it, 0, sizeof *it);
}

/* one line into it; the message says what was expected */
static int evm_line(const char *s, size_t n, EvalMcItem *it, const char **want) {
    EvalJson j = {s, n, 0};
    int have_label = 0;
    memset(it, 0, sizeof *it);
    it->label = -1;
    *want = "a JSON object {\"ctx\": ..., \"endings\": [...], \"label\": N}";
    if (!evj_is(&j, '{')) return -1;
    if (!evj_is(&j, '}')) do {
        char *key = evj_str(&j);
        if (!key || !evj_is(&j, ':')) { free(key); return -1; }
        int rc = 0;
        if (!strcmp(key, "ctx")) {
            free(it->ctx);
            if (!(it->ctx = evj_str(&j))) { *want = "\"ctx\" a string"; rc = -1; }
        } else if (!strcmp(key, "endings")) {
            for (int e = 0; e < it->n_endings; e++) free(it->endings[e]);
            it->n_endings = 0;
            if (!evj_is(&j, '[')) { *want = "\"endings\" an array of strings"; rc = -1; }
            else if (!evj_is(&j, ']')) do {
                if (it->n_endings == EVAL_MC_MAX_ENDINGS) { *want = "at most 16 endings"; rc = -1; break; }
                char *e = evj_str(&j);
                if (!e) { *want = "\"endings\" an array of strings"; rc = -1; break; }
                it->endings[it->n_endings++] = e;
            } while (evj_is(&j, ','));
            if (!rc && !evj_is(&j, ']')) { *want = "']' closing \"endings\""; rc = -1; }
        } else if (!strcmp(key, "label")) {
            evj_ws(&j);
            char *end;
            long v = j.i < j.n ? strtol(j.s + j.i, &end, 10) : -1;
            if (j.i >= j.n || end == j.s + j.i || v < 0 || v >= EVAL_MC_MAX_ENDINGS) {
                *want = "\"label\" an integer index of an ending";
                rc = -1;
            } else { j.i = (size_t)(end - j.s); it->label = (int)v; have_label = 1; }
        } else if (evj_skip(&j, 0)) rc = -1;
        free(key);
        if (rc) return -1;
    } while (evj_is(&j, ','));
    if (!evj_is(&j, '}')) return -1;
    evj_ws(&j);
    if (j.i != j.n) { *want = "nothing after the object on its line"; return -1; }
    if (!it->ctx) { *want = "a \"ctx\" member"; return -1; }
    if (it->n_endings < 2) { *want = "\"endings\" with at least 2 strings"; return -1; }
    for (int e = 0; e < it->n_endings; e++)
        if (!it->endings[e][0]) { *want = "non-empty endings"; return -1; }
    if (!have_label || it->label >= it->n_endings) { *want = "\"label\" the index of one of the endings"; return -1; }
    return 0;
}

EVALDEF int eval_mc_parse(const char *text, size_t n, const char *name, EvalMcSet *set, char *err, size_t errlen) {
    memset(set, 0, sizeof *set);
    int cap = 0, line = 0;
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && text[b] != '\n') b++;
        line++;
        size_t c = a;
        while (c < b && (text[c] == ' ' || text[c] == '\t' || text[c] == '\r')) c++;
        if (c < b) {
            if (set->n == cap) {
                cap = cap ? 2 * cap : 64;
                EvalMcItem *ni = realloc(set->items, sizeof *ni * (size_t)cap);
                if (!ni) { eval_mc_free(set); snprintf(err, errlen, "%s: out of memory", name); return -1; }
                set->items = ni;
            }
            const char *want;
            EvalMcItem *it = &set->items[set->n];
            if (evm_line(text + a, b - a, it, &want)) {
                evm_item_free(it);
                eval_mc_free(set);
                snprintf(err, errlen, "%s line %d: expected %s", name, line, want);
                return -1;
            }
            it->line = line;
            set->n++;
        }
        a = b + 1;
    }
    if (!set->n) { snprintf(err, errlen, "%s: no items (expected JSON lines with ctx, endings, label)", name); return -1; }
    return 0;
}

EVALDEF int eval_mc_load(const char *path, EvalMcSet *set, char *err, size_t errlen) {
    memset(set, 0, sizeof *set);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open multiple-choice file %s", path); return -1; }
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; }
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    int rc = eval_mc_parse(buf, n, path, set, err, errlen);
    free(buf);
    return rc;
}

EVALDEF void eval_mc_free(EvalMcSet *set) {
    for (int i = 0; i < set->n; i++) evm_item_free(&set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* ids of s (malloc'd), *n their count */
static int *evm_encode(DataTokenizer *tok, const char *s, size_t *n) {
    size_t len = strlen(s);
    int *ids = malloc(sizeof(int) * (tok ? data_tok_max_ids(tok, len) : len) + 1);
    if (!ids) return NULL;
    if (tok) *n = data_tok_encode(tok, (const unsigned char *)s, len, ids);
    else for (*n = 0; *n < len; (*n)++) ids[*n] = (unsigned char)s[*n];
    return ids;
}

EVALDEF int eval_mc_score(SmolModel *m, const EvalMcSet *set, DataTokenizer *tok, EvalMcResult *r, int *pred, char *err,
                  size_t errlen) {
    int B = m->B, T = m->T, rc = 0;
    size_t rows = 0, nr = 0;
    for (int i = 0; i < set->n; i++) rows += (size_t)set->items[i].n_endings;
    int *tokens = malloc(sizeof(int) * (size_t)B * T), *targets = malloc(sizeof(int) * (size_t)B * T);
    int *row_count = malloc(sizeof(int) * (size_t)B), *row_item = malloc(sizeof(int) * (size_t)B);
    double *row_loss = malloc(sizeof(double) * (size_t)B), *score = malloc(sizeof(double) * rows);
    memset(r, 0, sizeof *r);
    if (errlen) err[0] = 0;
    if (!tokens || !targets || !row_count || !row_item || !row_loss || !score) {
        snprintf(err, errlen, "multiple-choice scoring: out of memory");
        rc = -1;
    }
    int fill = 0;
    for (int i = 0; i < set->n && !rc; i++) {
        const EvalMcItem *it = &set->items[i];
        size_t nc;
        int *ctx = evm_encode(tok, it->ctx, &nc);
        for (int e = 0; e < it->n_endings && !rc && ctx; e++) {
            size_t ne;
            int *end = evm_encode(tok, it->endings[e], &ne);
            if (!end) { rc = -1; break; }
            /* the row: context then ending, cut from the left to T + 1 tokens */
            size_t len = nc + ne, skip = len > (size_t)T + 1 ? len - (size_t)T - 1 : 0;
            int *row = tokens + (size_t)fill * T, *tg = targets + (size_t)fill * T;
            for (int t = 0; t < T; t++) {
                size_t a = skip + (size_t)t, b = a + 1;
                row[t] = a < len ? (a < nc ? ctx[a] : end[a - nc]) : 0;
                tg[t] = b < len && b >= nc ? end[b - nc] : -1;
                if (row[t] >= m->cfg.vocab_size || tg[t] >= m->cfg.vocab_size) {
                    snprintf(err, errlen, "multiple-choice item on line %d: token id %d is past the model's vocabulary "
                             "%d (another tokenizer?)", it->line, row[t] >= m->cfg.vocab_size ? row[t] : tg[t],
                             m->cfg.vocab_size);
                    rc = -1;
                    break;
                }
            }
            free(end);
            row_item[fill++] = (int)nr++;
            if (rc) break;
            int last = i == set->n - 1 && e == it->n_endings - 1;
            if (fill == B || last) {
                for (int b = fill; b < B; b++)
                    for (int t = 0; t < T; t++) { tokens[(size_t)b * T + t] = 0; targets[(size_t)b * T + t] = -1; }
                if (!isfinite(smollm_eval_rows(m, tokens, targets, row_loss, row_count, NULL))) {
                    snprintf(err, errlen, "multiple-choice scoring: out of memory in the forward pass");
                    rc = -1;
                    break;
                }
                for (int b = 0; b < fill; b++)
                    score[row_item[b]] = row_count[b] ? row_loss[b] / row_count[b] : INFINITY;
                fill = 0;
            }
        }
        if (!ctx) rc = -1;
        free(ctx);
        if (rc && !err[0]) snprintf(err, errlen, "multiple-choice scoring: out of memory");
    }
    size_t at = 0;
    for (int i = 0; i < set->n && !rc; i++) {
        const EvalMcItem *it = &set->items[i];
        int best = 0;
        for (int e = 1; e < it->n_endings; e++)
            if (score[at + e] < score[at + best]) best = e;
        at += (size_t)it->n_endings;
        if (pred) pred[i] = best;
        r->correct += best == it->label;
    }
    if (!rc) {
        r->n = set->n;
        r->acc = (double)r->correct / set->n;
        r->se = sqrt(r->acc * (1 - r->acc) / set->n);
    }
    free(tokens);
    free(targets);
    free(row_count);
    free(row_item);
    free(row_loss);
    free(score);
    return rc;
}

/* ---- cloze items ---- */
static uint64_t evm_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [0, n) (the modulo's bias is far below anything an item set could show) */
static size_t evm_below(uint64_t *s, size_t n) { return (size_t)(evm_next(s) % n); }

typedef struct { size_t start, cut, end; } EvalSentence; /* [start, cut) first half, [cut, end) ending */

static void evm_json(FILE *f, const unsigned char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') fprintf(f, "\\%c", s[i]);
        else if (s[i] == '\n') fputs("\\n", f);
        else if (s[i] < 0x20 || s[i] == 0x7F) fprintf(f, "\\u%04x", s[i]);
        else fputc(s[i], f);
    }
    fputc('"', f);
}

static int evm_same(const unsigned char *t, const EvalSentence *a, const EvalSentence *b) {
    return a->end - a->cut == b->end - b->cut && !memcmp(t + a->cut, t + b->cut, a->end - a->cut);
}

EVALDEF int eval_mc_make(const unsigned char *text, size_t n, const EvalMcMake *c, FILE *out, int *written, char *err,
                 size_t errlen) {
    int items = c->items ? c->items : 500, K = c->endings ? c->endings : 4;
    int ctxb = c->context_bytes ? c->context_bytes : 256;
    double vf = c->val_frac > 0 ? c->val_frac : 0.1f;
    *written = 0;
    if (K < 2 || K > EVAL_MC_MAX_ENDINGS) {
        snprintf(err, errlen, "endings %d must be in [2, %d]", K, EVAL_MC_MAX_ENDINGS);
        return -1;
    }
    if (items < 1 || ctxb < 0 || !(vf > 0 && vf < 1)) {
        snprintf(err, errlen, "items %d must be >= 1, context %d >= 0 and val_frac %g in (0, 1)", items, ctxb, vf);
        return -1;
    }
    size_t lo = n - (size_t)(n * vf); /* data.h's split of a text file: the training text ends here */
    size_t cap = 1024, ns = 0;
    EvalSentence *sent = malloc(sizeof *sent * cap);
    if (!sent) { snprintf(err, errlen, "mc-make: out of memory"); return -1; }
    for (size_t a = lo; a < n;) {
        while (a < n && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t')) a++;
        size_t b = a;
        while (b < n && text[b] != '\n' &&
               !((text[b] == '.' || text[b] == '!' || text[b] == '?') && (b + 1 == n || text[b + 1] == ' ' || text[b + 1] == '\n')))
            b++;
        size_t end = b < n && text[b] != '\n' ? b + 1 : b; /* the end mark belongs to the sentence */
        while (end > a && (text[end - 1] == '\r' || text[end - 1] == ' ')) end--;
        int blanks = 0;
        size_t cut = 0, mid = a + (end - a) / 2;
        for (size_t i = a; i < end; i++)
            if (text[i] == ' ') {
                blanks++;
                if (!cut || (i > mid ? i - mid : mid - i) < (cut > mid ? cut - mid : mid - cut)) cut = i;
            }
        if (end - a >= 24 && end - a <= 400 && blanks >= 4) {
            if (ns == cap) {
                EvalSentence *nw = realloc(sent, sizeof *sent * (cap *= 2));
                if (!nw) { free(sent); snprintf(err, errlen, "mc-make: out of memory"); return -1; }
                sent = nw;
            }
            sent[ns++] = (EvalSentence){a, cut, end};
        }
        a = end > a ? end : a + 1;
    }
    if ((size_t)K > ns) {
        snprintf(err, errlen, "the held-out text (the last %g of %zu bytes) holds %zu candidate sentences, expected "
                 "at least %d (the endings per item)", vf, n, ns, K);
        free(sent);
        return -1;
    }
    size_t *order = malloc(sizeof(size_t) * ns);
    if (!order) { free(sent); snprintf(err, errlen, "mc-make: out of memory"); return -1; }
    uint64_t rng = c->seed * 0x100000001B3ull + 0x5DEECE66Dull;
    for (size_t i = 0; i < ns; i++) order[i] = i;
    for (size_t i = ns; i > 1; i--) { size_t j = evm_below(&rng, i), x = order[i - 1]; order[i - 1] = order[j]; order[j] = x; }
    for (size_t k = 0; k < ns && *written < items; k++) {
        const EvalSentence *s = &sent[order[k]];
        size_t pick[EVAL_MC_MAX_ENDINGS];
        int label = (int)evm_below(&rng, (size_t)K), ok = 1;
        pick[label] = order[k];
        for (int e = 0; e < K && ok; e++) {
            if (e == label) continue;
            int tries = 0, fresh;
            do { /* another sentence whose ending differs from every one taken */
                pick[e] = evm_below(&rng, ns);
                fresh = 1;
                for (int q = 0; q < K && fresh; q++)
                    if (q != e && (q == label || q < e) && evm_same(text, &sent[pick[q]], &sent[pick[e]])) fresh = 0;
            } while (!fresh && ++tries < 100);
            ok = fresh;
        }
        if (!ok) continue;
        size_t c0 = s->start > lo + (size_t)ctxb ? s->start - (size_t)ctxb : lo;
        while (c0 > lo && c0 < s->start && text[c0 - 1] != ' ' && text[c0 - 1] != '\n') c0++; /* after a blank */
        fprintf(out, "{\"ctx\": ");
        evm_json(out, text + c0, s->cut - c0);
        fprintf(out, ", \"endings\": [");
        for (int e = 0; e < K; e++) {
            if (e) fprintf(out, ", ");
            evm_json(out, text + sent[pick[e]].cut, sent[pick[e]].end - sent[pick[e]].cut);
        }
        fprintf(out, "], \"label\": %d, \"offset\": %zu}\n", label, s->start);
        (*written)++;
    }
    free(order);
    free(sent);
    if (ferror(out)) { snprintf(err, errlen, "mc-make: write failed"); return -1; }
    return 0;
}

/* ---- greedy reference ---- */
EVALDEF int eval_greedy_reference(SmolModel *m, const int *prompt, int n, int steps, int *out, char *err, size_t errlen) {
    int T = m->T, d = m->cfg.d_model, V = m->cfg.vocab_size;
    if (m->gpu) { snprintf(err, errlen, "the greedy reference runs on the CPU only (got a GPU model)"); return -1; }
    if (n < 1 || steps < 1 || n + steps - 1 > T) {
        snprintf(err, errlen, "greedy reference: prompt %d + %d steps needs a context of %d, the model has T = %d "
                 "(expected a prompt of >= 1 token)", n, steps, n + steps - 1, T);
        return -1;
    }
    int *tok = calloc((size_t)m->B * T, sizeof(int));
    if (!tok) { snprintf(err, errlen, "greedy reference: out of memory"); return -1; }
    memcpy(tok, prompt, sizeof(int) * (size_t)n);
    int len = n;
    for (int s = 0; s < steps; s++) {
        /* causal: the zeros after position len-1 do not change its output */
        if (smollm_forward(m, tok)) { free(tok); snprintf(err, errlen, "greedy reference: out of memory"); return -1; }
        const ops_real *x = (const ops_real *)m->xf + (size_t)(len - 1) * d, *w = m->params + m->wte;
        int best = 0;
        double bv = -INFINITY;
        for (int v = 0; v < V; v++) {
            double z = 0;
            for (int i = 0; i < d; i++) z += (double)x[i] * w[(size_t)v * d + i];
            if (z > bv) { bv = z; best = v; }
        }
        out[s] = best;
        if (len < T) tok[len++] = best;
    }
    free(tok);
    return 0;
}

#endif /* EVAL_IMPLEMENTATION_DONE */
#endif /* EVAL_IMPLEMENTATION */
