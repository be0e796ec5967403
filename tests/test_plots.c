/* tests/test_plots.c - a study's SVG plots (study.h: study_report) are readable.

     cc -O2 -I. -fopenmp tests/test_plots.c -o tests/test_plots -lm
    tests/test_plots [DIR]           (make test runs it; DIR: write the studies there and keep them)

   Writes a synthetic 27-run study (9 configurations with long names such as
   "attn=gqa norm=sandwich qk_norm=1", 3 seeds, final losses a few hundredths apart with a seed
   spread larger than that) as summary.json and metrics.jsonl files, runs study_report on it and
   reads back loss.svg, val_vs_throughput.svg and val_vs_memory.svg. Every <text>'s box, its
   width estimated as characters x font size x 0.6 and its height as the font size (0.8 above
   the baseline, 0.2 below; rotated titles turned), must lie inside the canvas and overlap no
   other text's box. Then: the loss plot has a mean line and a band per configuration, each in
   its own colour, and a legend naming each; the Pareto plots have one point and one error bar
   per configuration, a numbered label for each, and a dashed front (and a title saying so)
   only where the front has 2 points or more (throughput here), not where one configuration is
   best on both axes (memory here). A one-run study is drawn without overlaps too. An lr sweep
   (2 configurations x 3 learning rates) gets lr.svg (a line per configuration on a log lr axis,
   its best ringed) and each configuration's best lr in the printed summary.
   Ends with the line "N passed, N failed"; exit 1 on a failure.
*/
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "../study.h"

#include <unistd.h>

#include "check.h" /* report(), n_pass, n_fail */


/* ---- a synthetic study on disk ---- */
static const char *attns[] = {"mha", "gqa", "mqa"}, *norms[] = {"pre", "post", "sandwich"};

/* DIR/NAME/summary.json of a run (the directory made first) */
static void write_summary(const char *dir, const StudySummary *su) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, su->name);
    study_mkdirs(p);
    StrBuf b = {0};
    study_summary_json(&b, su);
    sb_printf(&b, "\n");
    snprintf(p, sizeof p, "%s/%s/summary.json", dir, su->name);
    study_write_text(p, &b);
    free(b.p);
}

/* configuration c (0..8) of n_cfg, seed k: mqa lowest loss and least KV cache, mha fastest, so
   the throughput front has several points and the memory front one; the seed spread (up to
   about 0.14) is larger than the gaps between configurations */
static void write_run(const char *dir, int c, int k, int n_cfg) {
    int a = c / 3, m = c % 3;
    StudySummary s;
    memset(&s, 0, sizeof s);
    snprintf(s.axes, sizeof s.axes, "attn=%s norm=%s qk_norm=1", attns[a], norms[m]);
    snprintf(s.config_id, sizeof s.config_id, "attn-%s_norm-%s_qk_norm-1", attns[a], norms[m]);
    snprintf(s.name, sizeof s.name, "%s_seed%d", s.config_id, 1337 + k);
    snprintf(s.phase, sizeof s.phase, "grid");
    snprintf(s.status, sizeof s.status, "ok");
    s.index = c * 3 + k;
    s.seed = 1337 + k;
    s.identity = 0x1000 + s.index;
    double noise[3] = {-0.12, 0.02, 0.10};
    double offset = 0.012 * (2 - a) * 3 + 0.01 * m; /* 0 .. 0.092 */
    if (n_cfg == 1) noise[k] = 0;
    s.final_val_loss = 3.4 + offset + noise[k] * (1 + 0.2 * m);
    s.final_val_ppl = exp(s.final_val_loss);
    s.best_val_loss = s.final_val_loss;
    s.final_val_bpb = s.final_val_loss / log(2);
    s.tokens_per_s = 12000 - 1000 * a - 150 * m + 400 * noise[(k + m) % 3] * 5;
    s.peak_bytes = 0; /* the CPU measures none: the memory plot uses the KV cache */
    s.kv_bytes_per_token = 128 >> a;
    s.params_total = 23648;
    s.steps = s.steps_done = 100;
    char p[600];
    write_summary(dir, &s);
    StrBuf r = {0};
    for (int step = 1; step <= 100; step++) {
        double dec = 7 * exp(-step / 15.0), end = s.final_val_loss - 7 * exp(-100 / 15.0);
        StudyRow row = {step, step * 128.0, end + dec - 0.2 + 0.05 * sin(step * 1.7 + k), 3e-3, 1.0, s.tokens_per_s,
                        step * 0.01, step % 10 == 0 ? end + dec : NAN, NAN, NAN};
        study_row_json(&r, &row);
    }
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, s.name);
    study_write_text(p, &r);
    free(r.p);
}

static void make_study(const char *dir, int n_cfg, int seeds) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* nothing to remove */ }
    study_mkdirs(dir);
    for (int c = 0; c < n_cfg; c++)
        for (int k = 0; k < seeds; k++) write_run(dir, c, k, n_cfg);
}

/* ---- reading an SVG back ---- */
typedef struct { double x0, y0, x1, y1; char text[160]; } Box;

/* the value of attribute name in the tag starting at tag (up to its '>'); 0 when absent */
static int attr(const char *tag, const char *name, char *out, size_t n) {
    const char *end = strchr(tag, '>');
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *p = strstr(tag, pat);
    if (!p || (end && p > end)) return 0;
    p += strlen(pat);
    size_t k = 0;
    while (*p && *p != '"' && k + 1 < n) out[k++] = *p++;
    out[k] = 0;
    return 1;
}

static double attr_num(const char *tag, const char *name, double dflt) {
    char v[64];
    return attr(tag, name, v, sizeof v) ? atof(v) : dflt;
}

/* every <text>'s estimated box; -1 with why on something the estimate cannot handle */
static int text_boxes(const char *svg, Box *out, int max, double *W, double *H, char *why, size_t wn) {
    const char *root = strstr(svg, "<svg");
    if (!root) { snprintf(why, wn, "no <svg> element"); return -1; }
    *W = attr_num(root, "width", 0);
    *H = attr_num(root, "height", 0);
    double fs0 = attr_num(root, "font-size", 16);
    int n = 0;
    for (const char *t = strstr(svg, "<text"); t; t = strstr(t + 5, "<text")) {
        const char *gt = strchr(t, '>'), *close = strstr(t, "</text>");
        if (!gt || !close) { snprintf(why, wn, "an unclosed <text>"); return -1; }
        if (n == max) { snprintf(why, wn, "more than %d texts", max); return -1; }
        Box *b = &out[n++];
        int chars = 0, k = 0;
        for (const char *c = gt + 1; c < close; c++) {
            if (*c == '<') { snprintf(why, wn, "markup inside a <text> (not estimated)"); return -1; }
            if (*c == '&') { const char *semi = strchr(c, ';'); if (semi && semi < close) c = semi; }
            chars += ((unsigned char)*c & 0xC0) != 0x80;
            if (k + 1 < (int)sizeof b->text) b->text[k++] = *c;
        }
        b->text[k] = 0;
        double x = attr_num(t, "x", 0), y = attr_num(t, "y", 0), fs = attr_num(t, "font-size", fs0);
        double w = chars * fs * 0.6;
        char anchor[16] = "start", tr[80] = "";
        attr(t, "text-anchor", anchor, sizeof anchor);
        int a = !strcmp(anchor, "middle") ? 1 : !strcmp(anchor, "end") ? 2 : 0;
        double before = a == 0 ? 0 : a == 1 ? w / 2 : w; /* along the text, before the anchor */
        if (attr(t, "transform", tr, sizeof tr)) {
            double deg, cx, cy;
            if (sscanf(tr, "rotate(%lf %lf %lf)", &deg, &cx, &cy) != 3 || deg != -90 || cx != x || cy != y) {
                snprintf(why, wn, "transform '%s' (only rotate(-90 x y) about the text's own x, y)", tr);
                return -1;
            }
            /* turned -90 degrees: the text runs upwards, its top to the left */
            b->x0 = x - 0.8 * fs;
            b->y0 = y - (w - before);
            b->x1 = x + 0.2 * fs;
            b->y1 = y + before;
        } else {
            b->x0 = x - before;
            b->x1 = b->x0 + w;
            b->y0 = y - 0.8 * fs;
            b->y1 = y + 0.2 * fs;
        }
    }
    return n;
}

/* every text inside the canvas, no two overlapping; why names the first offender */
static int texts_readable(const char *svg, char *why, size_t wn) {
    static Box b[4000];
    double W, H;
    int n = text_boxes(svg, b, 4000, &W, &H, why, wn);
    if (n < 0) return 0;
    for (int i = 0; i < n; i++)
        if (b[i].x0 < 0 || b[i].y0 < 0 || b[i].x1 > W || b[i].y1 > H) {
            snprintf(why, wn, "'%s' spans x %.0f..%.0f, y %.0f..%.0f: outside the %.0fx%.0f canvas", b[i].text, b[i].x0,
                     b[i].x1, b[i].y0, b[i].y1, W, H);
            return 0;
        }
    int overlaps = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (b[i].x0 < b[j].x1 && b[j].x0 < b[i].x1 && b[i].y0 < b[j].y1 && b[j].y0 < b[i].y1) {
                if (!overlaps++)
                    snprintf(why, wn, "'%s' (x %.0f..%.0f, y %.0f..%.0f) overlaps '%s' (x %.0f..%.0f, y %.0f..%.0f)",
                             b[i].text, b[i].x0, b[i].x1, b[i].y0, b[i].y1, b[j].text, b[j].x0, b[j].x1, b[j].y0, b[j].y1);
            }
    if (overlaps) {
        char more[40];
        snprintf(more, sizeof more, "; %d overlapping pairs", overlaps);
        if (strlen(why) + strlen(more) < wn) strcat(why, more);
        return 0;
    }
    snprintf(why, wn, "%d texts in %.0fx%.0f", n, W, H);
    return 1;
}

static int count(const char *s, const char *pat) {
    int n = 0;
    for (const char *p = s ? strstr(s, pat) : NULL; p; p = strstr(p + 1, pat)) n++;
    return n;
}

/* a text element whose content is exactly s */
static int has_text(const char *svg, const char *s) {
    char pat[600];
    for (const char *t = strstr(svg, "<text"); t; t = strstr(t + 5, "<text")) {
        const char *gt = strchr(t, '>');
        snprintf(pat, sizeof pat, "%s</text>", s);
        if (gt && !strncmp(gt + 1, pat, strlen(pat))) return 1;
    }
    return 0;
}

/* a point's label (class="label") reading s */
static int has_label(const char *svg, const char *s) {
    for (const char *t = strstr(svg, "<text"); t; t = strstr(t + 5, "<text")) {
        const char *gt = strchr(t, '>');
        char cls[32] = "";
        if (gt && attr(t, "class", cls, sizeof cls) && !strcmp(cls, "label") && !strncmp(gt + 1, s, strlen(s)) &&
            !strncmp(gt + 1 + strlen(s), "</text>", 7))
            return 1;
    }
    return 0;
}

static char *read_svg(const char *dir, const char *file) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return study_read_all(p, NULL);
}

static const char *plots[] = {"loss.svg", "val_vs_throughput.svg", "val_vs_memory.svg"};

static void check_readable(const char *dir, const char *what) {
    for (int i = 0; i < 3; i++) {
        char *svg = read_svg(dir, plots[i]), why[600] = "missing", name[120];
        snprintf(name, sizeof name, "%s: %s texts inside, no overlap", what, plots[i]);
        report(svg && texts_readable(svg, why, sizeof why), name, why);
        free(svg);
    }
}

static void test_27(const char *base) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/s27", base);
    make_study(dir, 9, 3);
    report(study_report(dir, NULL) == 0, "27 runs: study_report writes the files", dir);
    check_readable(dir, "27 runs");
    char names[9][80], why[300];
    for (int c = 0; c < 9; c++) snprintf(names[c], sizeof names[c], "attn=%s norm=%s qk_norm=1", attns[c / 3], norms[c % 3]);

    char *svg = read_svg(dir, "loss.svg");
    int named = 0, colours = 1;
    for (int c = 0; svg && c < 9; c++) named += has_text(svg, names[c]);
    char seen[9][16] = {{0}};
    const char *p = svg;
    for (int k = 0; p && k < 9; k++) { /* the validation lines' colours: nine different ones */
        p = strstr(p, "class=\"val\"");
        if (!p || !attr(p - 10, "stroke", seen[k], sizeof seen[k])) { colours = 0; break; }
        for (int j = 0; j < k; j++) colours &= strcmp(seen[j], seen[k]) != 0;
        p++;
    }
    snprintf(why, sizeof why, "%d val lines, %d train lines, %d bands, %d/9 names", count(svg, "class=\"val\""),
             count(svg, "class=\"train\""), count(svg, "class=\"band\""), named);
    report(svg && count(svg, "class=\"val\"") == 9 && count(svg, "class=\"train\"") == 9 &&
               count(svg, "class=\"band\"") == 18 && named == 9,
           "loss.svg: per configuration mean lines, bands, legend", why);
    report(colours, "loss.svg: one colour per configuration", colours ? seen[8] : "repeated or missing");
    free(svg);

    for (int i = 1; i < 3; i++) {
        svg = read_svg(dir, plots[i]);
        named = 0;
        int labels = 0;
        for (int c = 0; svg && c < 9; c++) {
            char num[8];
            snprintf(num, sizeof num, "%d", c + 1);
            named += has_text(svg, names[c]);
            labels += has_label(svg, num);
        }
        int bars = count(svg, "class=\"errbar\""), pts = count(svg, "class=\"point\"");
        int lines = 0; /* each bar group draws a bar and its two caps on the loss axis at least */
        for (const char *q = svg ? strstr(svg, "class=\"errbar\"") : NULL; q; q = strstr(q + 1, "class=\"errbar\"")) {
            const char *end = strstr(q, "</g>");
            int l = 0;
            for (const char *r = strstr(q, "<line"); r && end && r < end; r = strstr(r + 1, "<line")) l++;
            lines += l >= 3;
        }
        char name[120];
        snprintf(why, sizeof why, "%d points, %d error bars (%d drawn), %d/9 labels, %d/9 names", pts, bars, lines,
                 labels, named);
        snprintf(name, sizeof name, "%s: a numbered point, error bar, key entry each", plots[i]);
        report(svg && pts == 9 && bars == 9 && lines == 9 && labels == 9 && named == 9, name, why);
        int dashed = svg && strstr(svg, "class=\"pareto\"") && strstr(svg, "(Pareto front dashed)</text>");
        int none = svg && !strstr(svg, "class=\"pareto\"") && !strstr(svg, "dashed");
        snprintf(name, sizeof name, "%s: %s", plots[i], i == 1 ? "a front of 2+ points dashed, title says so"
                                                                : "a one-point front: no dashes, title says none");
        report(i == 1 ? dashed : none, name, "");
        free(svg);
    }
    /* throughput varies by seed here: its bars are on both axes */
    svg = read_svg(dir, "val_vs_throughput.svg");
    report(svg && strstr(svg, "on both axes"), "val_vs_throughput.svg: tokens/s bars too (seeds vary)", "");
    free(svg);
}

static void test_one(const char *base) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/s1", base);
    make_study(dir, 1, 1);
    report(study_report(dir, NULL) == 0, "1 run: study_report writes the files", dir);
    check_readable(dir, "1 run");
    char *svg = read_svg(dir, "val_vs_memory.svg");
    report(svg && !strstr(svg, "class=\"pareto\"") && !strstr(svg, "dashed") && count(svg, "class=\"point\"") == 1,
           "1 run: one point, no front line", "");
    free(svg);
}

/* study_report of dir into text (what it prints), checked as a test named what */
static void report_text(const char *dir, const char *what, char *text, size_t n) {
    FILE *f = tmpfile();
    report(f && study_report(dir, f) == 0, what, dir);
    text[0] = 0;
    if (!f) return;
    rewind(f);
    size_t got = fread(text, 1, n - 1, f);
    text[got] = 0;
    fclose(f);
}

/* one finished run of an lr study: summary.json, config.json (its lr), metrics.jsonl */
static void lr_run(const char *dir, const char *axes, const char *id, int index, uint64_t seed, double lr, double loss) {
    char p[700];
    StudySummary su;
    memset(&su, 0, sizeof su);
    snprintf(su.axes, sizeof su.axes, "%s", axes);
    snprintf(su.config_id, sizeof su.config_id, "%s", id);
    snprintf(su.name, sizeof su.name, "%s_seed%llu", id, (unsigned long long)seed);
    snprintf(su.phase, sizeof su.phase, "grid");
    snprintf(su.status, sizeof su.status, "ok");
    su.index = index;
    su.seed = seed;
    su.final_val_loss = su.best_val_loss = loss;
    su.final_val_ppl = exp(loss);
    su.final_val_bpb = NAN;
    su.tokens_per_s = 1000;
    su.steps = su.steps_done = 10;
    write_summary(dir, &su);
    StrBuf c = {0};
    sb_printf(&c, "{\"model\": {\"attn\": \"mha\", \"lr\": %g}}\n", lr);
    snprintf(p, sizeof p, "%s/%s/config.json", dir, su.name);
    study_write_text(p, &c);
    free(c.p);
    StrBuf r = {0};
    for (int step = 1; step <= 10; step++) {
        StudyRow row = {step, step * 128.0, loss + 10 - step, lr, 1.0, 1000, step * 0.01,
                        step % 5 == 0 ? loss + (10 - step) * 0.1 : NAN, NAN, NAN};
        study_row_json(&r, &row);
    }
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, su.name);
    study_write_text(p, &r);
    free(r.p);
}

/* an lr sweep: 2 mechanisms x lr 0.001, 0.003, 0.01, 2 seeds; mha's loss lowest at 0.003, gqa's
   at 0.01 (the edge of the sweep) */
static void test_lr(const char *base) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/slr", base);
    make_study(dir, 0, 0);
    const char *lrs[] = {"0.001", "0.003", "0.01"};
    for (int a = 0; a < 2; a++)
        for (int l = 0; l < 3; l++)
            for (int k = 0; k < 2; k++) {
                char axes[64], id[64];
                snprintf(axes, sizeof axes, "attn=%s lr=%s", attns[a], lrs[l]);
                snprintf(id, sizeof id, "attn-%s_lr-%s", attns[a], lrs[l]);
                double d = log10(atof(lrs[l])) - (a ? -2 : log10(0.003));
                lr_run(dir, axes, id, (a * 3 + l) * 2 + k, 1337 + k, atof(lrs[l]), 3.4 + 0.5 * d * d + (k ? 0.02 : -0.02));
            }
    char text[8192];
    report_text(dir, "lr sweep: study_report writes the files", text, sizeof text);
    const char *m = strstr(text, "  attn=mha: lr 0.003 ("), *g = strstr(text, "  attn=gqa: lr 0.01 (");
    report(strstr(text, "best lr per configuration") && m && g && strstr(g, "edge of the sweep") &&
               !strstr(m, "edge of the sweep\n  attn=gqa"),
           "lr sweep: the summary names each configuration's best lr (gqa's at the sweep's edge)",
           m && g ? "" : text);
    char *svg = read_svg(dir, "lr.svg"), why[600] = "missing";
    report(svg && texts_readable(svg, why, sizeof why), "lr.svg: texts inside, no overlap", why);
    int xl = 0; /* log axis: tick labels are lr values */
    xl = svg && has_text(svg, "0.001") && has_text(svg, "0.002") && has_text(svg, "0.005") && has_text(svg, "0.01");
    snprintf(why, sizeof why, "%d lines, %d points + %d best, %d bars, log ticks %s", count(svg, "class=\"lrline\""),
             count(svg, "class=\"point\""), count(svg, "class=\"best\""), count(svg, "class=\"errbar\""), xl ? "yes" : "no");
    report(svg && count(svg, "class=\"lrline\"") == 2 && count(svg, "class=\"point\"") == 4 &&
               count(svg, "class=\"best\"") == 2 && count(svg, "class=\"errbar\"") == 6 && xl &&
               has_text(svg, "attn=mha") && has_text(svg, "attn=gqa"),
           "lr.svg: a line per configuration over lr (log axis), its best ringed", why);
    /* the best point of mha lies at lr 0.003 on the log axis: between 0.001 and 0.01, at 0.477 */
    free(svg);
    char *none = read_svg(dir, "../s27/lr.svg");
    report(!none, "no lr axis: no lr.svg", "");
    free(none);
}

/* a phased study's lr view: "attn=mha" ran in an earlier phase at lr 0.003 (no lr axis; its
   config.json holds the lr), the lr phase ran 0.001 and 0.01 (its 0.003 run was that same run,
   not trained twice); "attn=gqa kv_heads=1 lr=0.001" is a later phase's carried lr, one value:
   no sweep, no line */
static void test_lr_phases(const char *base) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/slrp", base);
    make_study(dir, 0, 0);
    lr_run(dir, "attn=mha", "attn-mha", 0, 1337, 0.003, 3.1);
    lr_run(dir, "attn=mha lr=0.001", "attn-mha_lr-0.001", 1, 1337, 0.001, 3.3);
    lr_run(dir, "attn=mha lr=0.01", "attn-mha_lr-0.01", 2, 1337, 0.01, 3.5);
    lr_run(dir, "lr=0.001 attn=gqa kv_heads=1", "lr-0.001_attn-gqa_kv_heads-1", 3, 1337, 0.001, 3.2);
    char text[8192];
    report_text(dir, "lr phases: study_report writes the files", text, sizeof text);
    const char *m = strstr(text, "  attn=mha: lr 0.003 (val loss 3.1000 over 1 seed; tried 0.001 0.003 0.01)\n");
    report(m && !strstr(text, "kv_heads=1: lr"),
           "lr phases: an earlier phase's run at the sweep's value is in the sweep; a single lr is no sweep",
           m ? "" : text);
    char *svg = read_svg(dir, "lr.svg");
    report(svg && count(svg, "class=\"lrline\"") == 1 && count(svg, "class=\"point\"") == 2 &&
               count(svg, "class=\"best\"") == 1,
           "lr phases: lr.svg has the one sweep, 3 points (one ringed)", "");
    free(svg);
}

int main(int argc, char **argv) {
    char tmp[] = "/tmp/ablate_plots_XXXXXX";
    const char *base = argc > 1 ? argv[1] : mkdtemp(tmp); /* a directory given is kept, to look at */
    if (!base || (argc > 1 && study_mkdirs(base))) {
        printf("cannot make the directory %s\n0 passed, 1 failed\n", argc > 1 ? argv[1] : tmp);
        return 1;
    }
    test_27(base);
    test_one(base);
    test_lr(base);
    test_lr_phases(base);
    char cmd[600];
    if (!n_fail && argc < 2) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
        if (system(cmd)) { /* leave it */ }
    } else printf("plots kept in %s\n", base);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
