/* tests/test_export.c - checkpoints that leave the tool and evaluation beyond loss (export.h,
   eval.h, study.h's init_from / eval_mc / mc acc column).

     cc -O2 -I. -fopenmp tests/test_export.c -o tests/test_export -lm
     tests/test_export                   (make test runs it)

   The architecture each configuration exports as, and config.json's fields for each; the byte-level
   tokenizer.json read back by data.h's Hugging Face tokenizer loader (byte b <-> id b; the Python
   `tokenizers` check is make hfcheck's); export -> init_from round trip (the same weights and loss
   bit for bit) and the refusal that names the first mismatching tensor; multiple-choice scoring
   on a hand-built model whose losses are known in closed form (mean, not sum, normalization;
   ties to the first ending; accuracy and standard error); the JSONL reader's refusals; mc-make's
   determinism and that no item comes from the training part; the greedy reference; and a study
   with eval_mc whose table shows the mc acc column.
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"         /* brings export.h and eval.h */

#include "check.h"

#define TDIR "build/test_export"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) { free(b); b = NULL; }
    if (b) b[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return b;
}

static SmolConfig tiny(void) {
    SmolConfig c = {0};
    c.vocab_size = 256;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.seed = 7;
    return c;
}

/* config.json for cfg: its architecture, and whether it holds each of want (NULL-terminated) */
static void check_config(const char *name, SmolConfig cfg, const char *arch, const char *const *want) {
    char err[512], p[256], detail[512];
    smollm_resolve(&cfg, err, sizeof err);
    ExportShape s = export_shape(&cfg, 64);
    snprintf(p, sizeof p, TDIR "/%s.config.json", name);
    int ok = export_write_config(p, &s, err, sizeof err) == 0;
    char *t = ok ? slurp(p, NULL) : NULL, a[128];
    snprintf(a, sizeof a, "\"architectures\": [\"%s\"]", arch);
    ok = t && strstr(t, a) != NULL;
    snprintf(detail, sizeof detail, "%s", ok ? arch : (t ? t : err));
    for (int i = 0; ok && want[i]; i++)
        if (!strstr(t, want[i])) { ok = 0; snprintf(detail, sizeof detail, "lacks %s", want[i]); }
    char label[128];
    snprintf(label, sizeof label, "config.json of %s", name);
    report(ok, label, detail);
    free(t);
}

static void test_configs(void) {
    SmolConfig c = tiny();
    c.attn.kind = ATTN_GQA;
    c.attn.n_kv_heads = 2;
    const char *gqa[] = {"\"model_type\": \"llama\"", "\"num_key_value_heads\": 2", "\"num_attention_heads\": 4",
                         "\"head_dim\": 8", "\"hidden_size\": 32", "\"intermediate_size\": 128",
                         "\"tie_word_embeddings\": true", "\"rope_theta\": 100000", "\"max_position_embeddings\": 64",
                         "\"rms_norm_eps\": 1e-05", "\"attention_bias\": false", NULL};
    check_config("gqa", c, "LlamaForCausalLM", gqa);
    c.attn.kind = ATTN_MQA;
    c.attn.n_kv_heads = 0;
    const char *mqa[] = {"\"num_key_value_heads\": 1", NULL};
    check_config("mqa", c, "LlamaForCausalLM", mqa);
    c.attn.kind = ATTN_MHA;
    const char *mha[] = {"\"num_key_value_heads\": 4", NULL};
    check_config("mha", c, "LlamaForCausalLM", mha);
    c = tiny();
    c.attn.kind = ATTN_SWA;
    c.attn.window = 16;
    const char *swa[] = {"\"model_type\": \"mistral\"", "\"sliding_window\": 16", NULL};
    check_config("swa", c, "MistralForCausalLM", swa);
    c = tiny();
    c.attn.qk_norm = 1;
    const char *qk[] = {"\"model_type\": \"qwen3\"", "\"use_sliding_window\": false", "\"head_dim\": 8", NULL};
    check_config("qk_norm", c, "Qwen3ForCausalLM", qk);
    c.attn.window = 16;
    const char *qkw[] = {"\"use_sliding_window\": true", "\"sliding_window\": 16", "\"max_window_layers\": 0",
                         "\"layer_types\": [\"sliding_attention\", \"sliding_attention\"]", NULL};
    check_config("qk_norm + window", c, "Qwen3ForCausalLM", qkw);
    const char *own[] = {"\"model_type\": \"ablate\"", "\"ablate_doc\"", "\"ablate_why_not_mapped\"", NULL};
    c = tiny();
    c.norm = SMOLLM_NORM_POST;
    check_config("post-norm", c, "AblateForCausalLM", own);
    c = tiny();
    c.norm = SMOLLM_NORM_SANDWICH;
    check_config("sandwich", c, "AblateForCausalLM", own);
    c = tiny();
    c.attn.kind = ATTN_MLA;
    check_config("mla", c, "AblateForCausalLM", own);
    c = tiny();
    c.attn.kind = ATTN_GDN;
    check_config("gdn", c, "AblateForCausalLM", own);
    c = tiny();
    c.attn.kind = ATTN_HIER;
    c.attn.window = 16;
    check_config("hier", c, "AblateForCausalLM", own);
    c = tiny();
    c.attn.window = 16;
    c.attn.global_tokens = 4;
    check_config("window + global", c, "AblateForCausalLM", own);
    c = tiny();
    snprintf(c.attn_layers, sizeof c.attn_layers, "swa:16,gqa");
    check_config("schedule swa,gqa", c, "AblateForCausalLM", own);
    c = tiny();
    snprintf(c.attn_layers, sizeof c.attn_layers, "gqa:kv_heads=2*2");
    check_config("schedule of one item", c, "LlamaForCausalLM", gqa);
}

static void test_tokenizer(void) {
    char err[512];
    int ok = export_write_byte_tokenizer(TDIR "/tokenizer.json", err, sizeof err) == 0;
    DataTokenizer *t = ok ? data_tok_load(TDIR "/tokenizer.json", err, sizeof err) : NULL;
    unsigned char bytes[512], back[600];
    int ids[2048];
    for (int i = 0; i < 512; i++) bytes[i] = (unsigned char)(i * 7 + 3);
    size_t n = t ? data_tok_encode(t, bytes, sizeof bytes, ids) : 0;
    int same = t && n == sizeof bytes && data_tok_vocab(t) == 256;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == bytes[i];
    size_t nb = same ? data_tok_decode(t, ids, n, back, sizeof back) : 0;
    report(same && nb == sizeof bytes && !memcmp(back, bytes, nb), "byte tokenizer.json: every byte b <-> id b",
           t ? "" : err);
    data_tok_free(t);
}

/* export, then init_from into a model of another seed: the same weights and loss bit for bit */
static void test_round_trip(void) {
    char err[1024], note[1024], p[256];
    SmolConfig c = tiny();
    c.attn.kind = ATTN_GQA;
    c.attn.n_kv_heads = 2;
    SmolModel a, b;
    int B = 2, T = 16;
    smollm_init(&a, &c, NULL, B, T, err, sizeof err);
    int ok = smollm_save(&a, TDIR "/ckpt.safetensors", err, sizeof err) == 0;
    ok = ok && export_dir(TDIR "/ckpt.safetensors", TDIR "/exp", NULL, note, sizeof note, err, sizeof err) == 0;
    report(ok && !note[0], "export_dir of a GQA model: no note", ok ? note : err);
    const char *files[] = {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, TDIR "/exp/%s", files[i]);
        size_t n = 0;
        char *t = slurp(p, &n);
        report(t && n > 0, "export writes", files[i]);
        free(t);
    }
    SmolConfig c2 = c;
    c2.seed = 99;
    smollm_init(&b, &c2, NULL, B, T, err, sizeof err);
    char path[512];
    ok = export_init_path(TDIR "/exp", path, sizeof path, err, sizeof err) == 0 && smollm_load(&b, path, err, sizeof err) == 0;
    report(ok && !memcmp(a.params, b.params, a.n_params * sizeof(ops_real)), "init_from: the exported weights bit for bit",
           ok ? "" : err);
    int tok[32], tg[32], na, nb;
    for (int i = 0; i < B * T; i++) { tok[i] = (i * 37 + 11) % 256; tg[i] = (i * 53 + 5) % 256; }
    double la = smollm_eval(&a, tok, tg, &na), lb = smollm_eval(&b, tok, tg, &nb);
    char d[128];
    snprintf(d, sizeof d, "%.17g vs %.17g", la, lb);
    report(la == lb && na == nb, "init_from: the same loss bit for bit", d);
    SmolConfig c3 = c;
    c3.d_model = 48;
    c3.n_heads = 6;
    SmolModel w;
    smollm_init(&w, &c3, NULL, B, T, err, sizeof err);
    ok = smollm_load(&w, path, err, sizeof err) != 0 && strstr(err, "model.embed_tokens.weight") &&
         strstr(err, "expected [256,48]");
    report(ok, "init_from of other shapes names the first mismatching tensor", err);
    ok = export_init_path(TDIR "/nothing-here", path, sizeof path, err, sizeof err) != 0 && strstr(err, "nothing-here");
    report(ok, "init_from of a missing directory is refused, naming it", err);
    smollm_free(&w);
    /* an unmapped model exports with a note saying so */
    SmolConfig cp = tiny();
    cp.norm = SMOLLM_NORM_POST;
    SmolModel pm;
    smollm_init(&pm, &cp, NULL, B, T, err, sizeof err);
    ok = smollm_save(&pm, TDIR "/post.safetensors", err, sizeof err) == 0 &&
         export_dir(TDIR "/post.safetensors", TDIR "/post", NULL, note, sizeof note, err, sizeof err) == 0;
    report(ok && strstr(note, "AblateForCausalLM") && strstr(note, "post"), "a post-norm export says it is our own",
           ok ? note : err);
    smollm_free(&pm);
    smollm_free(&a);
    smollm_free(&b);
}

/* a model whose next-token distribution is known: no attention or FFN output (o_proj, down_proj
   zero), embedding a * I (d_model = vocab = 256), unit norms. The residual is e_x, the final norm
   gives e_x / sqrt(a^2/256 + eps), logits z [v == x]: the next token repeats the current one with
   logit z = a^2 / sqrt(a^2/256 + eps) (16 a without eps), every other token has logit 0. With
   a = 1/4, z = 3.92: loss(repeat) = log(e^z + 255) - z, loss(other) = log(e^z + 255). */
static void known_model(SmolModel *m, int B, int T) {
    SmolConfig c = {0};
    char err[256];
    c.vocab_size = 256;
    c.d_model = 256;
    c.n_layers = 1;
    c.n_heads = 4;
    c.ffn_dim = 8;
    smollm_init(m, &c, NULL, B, T, err, sizeof err);
    for (int i = 0; i < m->n_specs; i++) {
        const AttnParamSpec *p = &m->specs[i];
        for (size_t j = 0; j < p->numel; j++) m->params[p->offset + j] = p->is_norm ? 1 : 0;
    }
    for (int v = 0; v < 256; v++) m->params[m->wte + (size_t)v * 256 + v] = 0.25f;
    smollm_sync_weights(m);
}

static void test_mc_scoring(void) {
    SmolModel m;
    known_model(&m, 3, 16);
    double z = 0.0625 / sqrt(0.0625 / 256 + 1e-5); /* 16 a^2 / rms with the norm's eps: 3.92, not 4 */
    double rep = log(exp(z) + 255) - z, oth = log(exp(z) + 255);
    /* item 1: "bbb" (3 repeats: mean rep) beats "cc" (other, repeat: mean (oth + rep) / 2)
       item 2: "bcccccc" (rep, oth, 5 rep: mean (6 rep + oth) / 7 = 2.31, sum 16.1) against "cd"
       (oth, oth: mean 5.74, sum 11.5): mean loss picks 0, a summed loss would pick 1; label 0
       item 3: every ending a repeat of one token: a tie, the first wins; label 1, so it is wrong
       item 4: a context longer than T + 1: cut from the left, the ending still scored; "x" repeats */
    const char *jl =
        "{\"ctx\": \"ab\", \"endings\": [\"bbb\", \"cc\"], \"label\": 0}\n"
        "\n"
        "{\"label\": 0, \"endings\": [\"bcccccc\", \"cd\"], \"ctx\": \"ab\", \"other\": {\"x\": [1, 2]}}\n"
        "{\"ctx\": \"aa\", \"endings\": [\"a\", \"a\", \"a\"], \"label\": 1}\n"
        "{\"ctx\": \"0123456789abcdefghijklmnopqrstuvwx\", \"endings\": [\"y\", \"x\"], \"label\": 1}\n";
    EvalMcSet set;
    char err[512], d[256];
    int ok = eval_mc_parse(jl, strlen(jl), "hand.jsonl", &set, err, sizeof err) == 0;
    report(ok && set.n == 4 && set.items[1].line == 3 && set.items[2].n_endings == 3, "mc file: 4 items parsed", ok ? "" : err);
    if (!ok) { smollm_free(&m); return; }
    EvalMcResult r;
    int pred[4] = {-1, -1, -1, -1};
    ok = eval_mc_score(&m, &set, NULL, &r, pred, err, sizeof err) == 0;
    snprintf(d, sizeof d, "pred %d %d %d %d, acc %.6f se %.6f", pred[0], pred[1], pred[2], pred[3], r.acc, r.se);
    report(ok && pred[0] == 0 && pred[1] == 0 && pred[2] == 0 && pred[3] == 1, "mc: the mean-loss choice per item", d);
    report(ok && r.n == 4 && r.correct == 3 && fabs(r.acc - 0.75) < 1e-12 && fabs(r.se - sqrt(0.75 * 0.25 / 4)) < 1e-12,
           "mc: accuracy 3/4, standard error sqrt(p(1-p)/n)", d);
    /* the scores themselves, by the closed form: one row per ending through smollm_eval_rows */
    int tok[48] = {0}, tg[48], cnt[3];
    double rl[3];
    for (int i = 0; i < 48; i++) tg[i] = -1;
    const char *row = "abbcccccc"; /* ctx "ab" + "bcccccc": targets from the ending's first token */
    for (int t = 0; t < 8; t++) { tok[t] = row[t]; tg[t] = t >= 1 ? row[t + 1] : -1; }
    smollm_eval_rows(&m, tok, tg, rl, cnt, NULL);
    snprintf(d, sizeof d, "%.6f vs %.6f", rl[0] / cnt[0], (6 * rep + oth) / 7);
    report(cnt[0] == 7 && fabs(rl[0] / cnt[0] - (6 * rep + oth) / 7) < 1e-4, "mc: an ending's score in closed form", d);
    eval_mc_free(&set);
    /* refusals name the line and what was expected */
    const char *bad[][2] = {{"{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 2}\n", "line 1"},
                            {"\n{\"ctx\": \"a\", \"endings\": [\"b\"], \"label\": 0}\n", "line 2"},
                            {"{\"ctx\": \"a\", \"endings\": [\"b\", \"\"], \"label\": 0}\n", "non-empty"},
                            {"{\"endings\": [\"b\", \"c\"], \"label\": 0}\n", "\"ctx\""},
                            {"{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"]}\n", "label"},
                            {"{\"ctx\": \"a\", \"endings\": [\"b\", \"c\"], \"label\": 0} x\n", "nothing after"},
                            {"", "no items"}};
    for (int i = 0; i < 7; i++) {
        ok = eval_mc_parse(bad[i][0], strlen(bad[i][0]), "bad.jsonl", &set, err, sizeof err) != 0 &&
             strstr(err, "bad.jsonl") && strstr(err, bad[i][1]);
        report(ok, "mc file refused with its reason", err);
    }
    /* \u escapes, a surrogate pair included, become UTF-8 */
    const char *u = "{\"ctx\": \"caf\\u00e9 \\ud83c\\udf0d\\n\", \"endings\": [\"\\\"q\\\"\", \"b\"], \"label\": 0}";
    ok = eval_mc_parse(u, strlen(u), "u.jsonl", &set, err, sizeof err) == 0;
    report(ok && !strcmp(set.items[0].ctx, "caf\xc3\xa9 \xf0\x9f\x8c\x8d\n") && !strcmp(set.items[0].endings[0], "\"q\""),
           "mc file: JSON escapes decoded to UTF-8", ok ? set.items[0].ctx : err);
    if (ok) eval_mc_free(&set);
    smollm_free(&m);
    /* the greedy reference on the same model: the last byte repeats */
    SmolModel g;
    known_model(&g, 1, 8);
    int prompt[3] = {'x', 'y', 'q'}, out[4] = {0};
    ok = eval_greedy_reference(&g, prompt, 3, 4, out, err, sizeof err) == 0;
    report(ok && out[0] == 'q' && out[1] == 'q' && out[2] == 'q' && out[3] == 'q', "greedy reference: argmax per step",
           ok ? "" : err);
    ok = eval_greedy_reference(&g, prompt, 3, 7, out, err, sizeof err) != 0 && strstr(err, "T = 8");
    report(ok, "greedy reference: a context past T is refused", err);
    smollm_free(&g);
}

/* a text whose training part says "alpha" and whose held-out part (the last 10%) "beta" */
static unsigned char *two_part_text(size_t *n) {
    size_t cap = 200000, k = 0;
    unsigned char *t = malloc(cap);
    uint64_t s = 5;
    const char *w1[] = {"alpha", "one", "two", "three", "four", "five"}, *w2[] = {"beta", "six", "seven", "eight", "nine", "ten"};
    while (k < 90000) {
        int len = 5 + (int)(evm_next(&s) % 12);
        for (int i = 0; i < len; i++) k += (size_t)sprintf((char *)t + k, "%s%s", i ? " " : "", w1[evm_next(&s) % 6]);
        k += (size_t)sprintf((char *)t + k, ".%s", evm_next(&s) % 3 ? " " : "\n");
    }
    size_t train = k;
    while (k < train + train / 9 + 1) { /* the last 10% of the whole */
        int len = 5 + (int)(evm_next(&s) % 12);
        for (int i = 0; i < len; i++) k += (size_t)sprintf((char *)t + k, "%s%s", i ? " " : "", w2[evm_next(&s) % 6]);
        k += (size_t)sprintf((char *)t + k, "%s%s", evm_next(&s) % 2 ? "." : "!", evm_next(&s) % 3 ? " " : "\n");
    }
    *n = k;
    return t;
}

static char *make_items(const unsigned char *t, size_t n, uint64_t seed, int *written) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    EvalMcMake c = {0};
    c.items = 100;
    c.seed = seed;
    char err[512];
    if (eval_mc_make(t, n, &c, f, written, err, sizeof err)) printf("mc-make: %s\n", err);
    fclose(f);
    return buf;
}

static void test_mc_make(void) {
    size_t n;
    unsigned char *t = two_part_text(&n);
    int w1, w2, w3;
    char *a = make_items(t, n, 1, &w1), *b = make_items(t, n, 1, &w2), *c = make_items(t, n, 2, &w3);
    report(w1 == 100 && w2 == 100 && !strcmp(a, b), "mc-make: the same text and seed give the same file", "");
    report(strcmp(a, c) != 0, "mc-make: another seed gives other items", "");
    EvalMcSet set;
    char err[512];
    int ok = eval_mc_parse(a, strlen(a), "made.jsonl", &set, err, sizeof err) == 0 && set.n == 100;
    report(ok, "mc-make: its file reads back as 100 items of 4 endings", ok ? "" : err);
    size_t lo = n - (size_t)(n * (double)0.1f);
    int clean = ok, right = ok, distinct = ok;
    for (int i = 0; ok && i < set.n; i++) {
        const EvalMcItem *it = &set.items[i];
        clean &= !strstr(it->ctx, "alpha") && it->n_endings == 4;
        for (int e = 0; e < it->n_endings; e++) {
            clean &= !strstr(it->endings[e], "alpha") && !strstr(it->endings[e], "one");
            for (int q = 0; q < e; q++) distinct &= strcmp(it->endings[e], it->endings[q]) != 0;
        }
        /* the context's end and the right ending are contiguous text of the held-out part */
        char joined[2048];
        snprintf(joined, sizeof joined, "%s%s", it->ctx, it->endings[it->label]);
        const char *at = strstr((const char *)t + lo, joined);
        right &= at != NULL;
    }
    report(clean, "mc-make: no item holds a word of the training part", "");
    report(right, "mc-make: context + right ending is the held-out text itself", "");
    report(distinct, "mc-make: an item's endings all differ", "");
    if (ok) eval_mc_free(&set);
    const char *lab = strstr(a, "\"label\": ");
    int counts[4] = {0};
    for (; lab; lab = strstr(lab + 1, "\"label\": ")) counts[atoi(lab + 9) & 3]++;
    report(counts[0] > 10 && counts[1] > 10 && counts[2] > 10 && counts[3] > 10, "mc-make: the right ending's place varies", "");
    EvalMcMake cfg = {0};
    cfg.endings = 4;
    int wr;
    char buf[512];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    ok = eval_mc_make((const unsigned char *)"Too short. Really.", 18, &cfg, f, &wr, err, sizeof err) != 0 &&
         strstr(err, "candidate sentences");
    fclose(f);
    report(ok, "mc-make: a text without enough sentences is refused", err);
    free(a);
    free(b);
    free(c);
    free(t);
}

/* a study with eval_mc: summary.json's final_mc_acc and the table's mc acc column */
static void test_study_mc(void) {
    size_t n;
    unsigned char *t = two_part_text(&n);
    FILE *f = fopen(TDIR "/text.txt", "wb");
    fwrite(t, 1, n, f);
    fclose(f);
    int w;
    char *items = make_items(t, n, 3, &w);
    f = fopen(TDIR "/mc.jsonl", "wb");
    fputs(items, f);
    fclose(f);
    free(items);
    free(t);
    const char *spec = "name = mc\nlayers = 1\nd_model = 16\nheads = 2\nseq = 32\nbatch = 4\nsteps = 3\n"
                       "data = " TDIR "/text.txt\neval_mc = " TDIR "/mc.jsonl\nfinal_eval_tokens = 256\n"
                       "keep_checkpoints = 1\n"
                       "[axes]\nattn = gqa, mqa\n";
    f = fopen(TDIR "/mc.ini", "wb");
    fputs(spec, f);
    fclose(f);
    StudySpec s;
    char err[512];
    int ok = study_parse_file(&s, TDIR "/mc.ini", err, sizeof err) == 0;
    StudyOptions so = {0};
    so.out = TDIR "/study";
    so.quiet = 1;
    (void)system("rm -rf " TDIR "/study");
    ok = ok && study_run(&s, &so, NULL) == 0;
    report(ok, "a study with eval_mc runs", ok ? "" : err);
    size_t len = 0;
    char *tab = NULL, *sum = NULL;
    FILE *mem = open_memstream(&tab, &len);
    study_report(TDIR "/study", mem);
    fclose(mem);
    report(tab && strstr(tab, "mc acc (mean ± sd)"), "the study table has an mc acc column", tab ? "" : "no table");
    if (tab && !strstr(tab, "mc acc")) printf("%s", tab);
    DIR *d = opendir(TDIR "/study");
    struct dirent *e;
    while (d && (e = readdir(d)) && !sum) {
        char p[1024];
        snprintf(p, sizeof p, TDIR "/study/%s/summary.json", e->d_name);
        if (e->d_name[0] != '.') sum = slurp(p, NULL);
    }
    if (d) closedir(d);
    const char *v = sum ? strstr(sum, "\"final_mc_acc\": ") : NULL;
    double acc = v ? atof(v + 16) : -1;
    char dd[64];
    snprintf(dd, sizeof dd, "final_mc_acc %.4f", acc);
    report(v && acc >= 0 && acc <= 1, "summary.json holds the mc accuracy", dd);
    free(tab);
    free(sum);
    /* keep_checkpoints: the run's own config.json stays; the export is DIR/RUN/hf */
    char *runcfg = NULL, *hfcfg = NULL, *hftok = NULL;
    d = opendir(TDIR "/study");
    while (d && (e = readdir(d)) && !runcfg) {
        char p[1024];
        if (e->d_name[0] == '.' || !strstr(e->d_name, "seed")) continue;
        snprintf(p, sizeof p, TDIR "/study/%s/config.json", e->d_name);
        runcfg = slurp(p, NULL);
        snprintf(p, sizeof p, TDIR "/study/%s/hf/config.json", e->d_name);
        hfcfg = slurp(p, NULL);
        snprintf(p, sizeof p, TDIR "/study/%s/hf/tokenizer.json", e->d_name);
        hftok = slurp(p, NULL);
    }
    if (d) closedir(d);
    report(runcfg && strstr(runcfg, "\"identity\"") && !strstr(runcfg, "architectures"),
           "keep_checkpoints: the run's config.json is still the run's", "");
    report(hfcfg && strstr(hfcfg, "\"architectures\": [\"") && hftok, "keep_checkpoints: RUN/hf is a model directory", "");
    free(runcfg);
    free(hfcfg);
    free(hftok);
    /* ablate train --save DIR/model.safetensors: the directory beside the weights */
    StudyRunConfig rc;
    study_run_config_defaults(&rc);
    const char *kv[][2] = {{"layers", "1"}, {"d_model", "16"}, {"heads", "2"}, {"seq", "16"}, {"batch", "2"},
                           {"steps", "2"}, {"data", TDIR "/text.txt"}, {"save", TDIR "/saved/model.safetensors"},
                           {"final_eval_tokens", "256"}};
    for (int i = 0; i < 9; i++) study_run_config_set(&rc, kv[i][0], kv[i][1], err, sizeof err);
    (void)system("mkdir -p " TDIR "/saved");
    StudySummary sm;
    memset(&sm, 0, sizeof sm);
    int r = study_train(&rc, NULL, NULL, 0, &sm);
    char *sc = slurp(TDIR "/saved/config.json", NULL), *st = slurp(TDIR "/saved/tokenizer.json", NULL);
    report(!r && sc && strstr(sc, "LlamaForCausalLM") && st, "--save DIR/model.safetensors writes config.json and tokenizer.json",
           r ? sm.reason : "");
    free(sc);
    free(st);
}

int main(void) {
    (void)system("mkdir -p " TDIR);
    test_configs();
    test_tokenizer();
    test_round_trip();
    test_mc_scoring();
    test_mc_make();
    test_study_mc();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
