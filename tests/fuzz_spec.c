/* tests/fuzz_spec.c - libFuzzer target for study.h's spec parser (`make fuzz` runs it with
   tests/fuzz_data.c's targets, FUZZ_SECONDS each):
     clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz_spec.c -o tests/fuzz_spec
     ./tests/fuzz_spec CORPUS_DIR
   Any text is either refused with a message or parsed; a parsed spec is expanded into its runs
   (phase by phase, the first run's axes carried as a phase selection would), every run name
   is unique within its phase, and the spec written back (study.ini) parses to the same grid. */
#define ABLATE_IMPLEMENTATION /* every included header's implementation */
#include "study.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    static StudySpec s, back; /* large: not on the stack */
    static StudyRun runs[256];
    char err[600] = "";
    char *text = malloc(n + 1);
    memcpy(text, d, n);
    text[n] = 0;
    if (study_parse_text(&s, text, "fuzz.ini", err, sizeof err)) {
        if (!err[0]) abort(); /* a refusal always says why */
        free(text);
        return 0;
    }
    free(text);
    char carried[STUDY_AXES_LEN] = "";
    for (int p = 0; p < s.n_phases; p++) {
        int size = study_phase_size(&s, p);
        if (size < 1) abort();
        if (size > 256) break; /* the expansion itself, not its memory, is under test */
        err[0] = 0;
        int k = study_expand(&s, p, carried, runs, 256, err, sizeof err);
        if (k < 0) {
            if (!err[0]) abort();
            break;
        }
        if (k != size) abort();
        for (int i = 0; i < k; i++)
            for (int j = 0; j < i; j++)
                if (!strcmp(runs[i].name, runs[j].name) && runs[i].identity != runs[j].identity) abort();
        /* a selection carries the axes of one configuration into the next phase */
        snprintf(carried, sizeof carried, "%s", runs[0].axes);
    }
    char *spec = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&spec, &len);
    study_write_spec(&s, f);
    fclose(f);
    if (study_parse_text(&back, spec, "fuzz study.ini", err, sizeof err)) {
        fprintf(stderr, "written spec does not parse: %s\n%s\n", err, spec);
        abort();
    }
    if (back.n_phases != s.n_phases) abort();
    for (int p = 0; p < s.n_phases; p++)
        if (study_phase_size(&back, p) != study_phase_size(&s, p)) abort();
    free(spec);
    return 0;
}
