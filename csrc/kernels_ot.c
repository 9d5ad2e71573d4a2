/* The per-batch work of IKNP and KKRT OT extension: PRG expansion of the
 * base-OT seeds into columns, the column correction u, and the transpose
 * into per-OT rows. One call covers a whole batch; Python only orchestrates.
 */
#include <stdlib.h>
#include <string.h>

#include "meshmpc/kernels.h"

/* Columns per chunk: k x chunk bits of scratch stay within ~256 KiB (L2). */
static size_t chunk_bits(size_t k, size_t m) {
    size_t c = ((size_t)1 << 21) / k;
    c = c / 128 * 128;
    if (c < 128) c = 128;
    return c < m ? c : m;
}

int mm_ext_receiver(const mm_aes_key *k0, const mm_aes_key *k1, size_t k, uint64_t ctr,
                    const uint8_t *c, int c_is_row, size_t m, uint8_t *u, uint8_t *t_rows,
                    int path) {
    size_t cw = chunk_bits(k, m), row_bytes = m / 8;
    uint8_t *tcols = malloc(k * cw / 8), *g1 = malloc(cw / 8);
    if (!tcols || !g1) {
        free(tcols);
        free(g1);
        return -1;
    }
    for (size_t j0 = 0; j0 < m; j0 += cw) {
        size_t w = (m - j0 < cw ? m - j0 : cw), wb = w / 8;
        for (size_t i = 0; i < k; i++) {
            uint8_t *t = tcols + i * wb, *ui = u + i * row_bytes + j0 / 8;
            const uint8_t *ci = c + (c_is_row ? 0 : i * row_bytes) + j0 / 8;
            mm_aes128_ctr(&k0[i], ctr + j0 / 128, t, w / 128, path);
            mm_aes128_ctr(&k1[i], ctr + j0 / 128, g1, w / 128, path);
            for (size_t b = 0; b < wb; b++) ui[b] = (uint8_t)(t[b] ^ g1[b] ^ ci[b]);
        }
        mm_transpose(tcols, t_rows + j0 * (k / 8), k, w, path);
    }
    free(tcols);
    free(g1);
    return 0;
}

int mm_ext_sender(const mm_aes_key *ks, const uint8_t *s, size_t k, uint64_t ctr,
                  const uint8_t *u, size_t m, uint8_t *q_rows, int path) {
    size_t cw = chunk_bits(k, m), row_bytes = m / 8;
    uint8_t *qcols = malloc(k * cw / 8);
    if (!qcols) return -1;
    for (size_t j0 = 0; j0 < m; j0 += cw) {
        size_t w = (m - j0 < cw ? m - j0 : cw), wb = w / 8;
        for (size_t i = 0; i < k; i++) {
            uint8_t *q = qcols + i * wb;
            mm_aes128_ctr(&ks[i], ctr + j0 / 128, q, w / 128, path);
            if ((s[i / 8] >> (i % 8)) & 1) {
                const uint8_t *ui = u + i * row_bytes + j0 / 8;
                for (size_t b = 0; b < wb; b++) q[b] ^= ui[b];
            }
        }
        mm_transpose(qcols, q_rows + j0 * (k / 8), k, w, path);
    }
    free(qcols);
    return 0;
}

/* KKRT OPRF outputs for a batch, fused so that no temporaries reach Python. */
#define KKRT_GROUP 64

static void kkrt_frame(uint8_t frame[72], uint64_t index, const uint8_t *row, const uint8_t *code,
                       const uint8_t s[64]) {
    for (int b = 0; b < 8; b++) frame[b] = (uint8_t)(index >> (8 * b));
    for (int b = 0; b < 64; b++) frame[8 + b] = (uint8_t)(row[b] ^ (code ? (code[b] & s[b]) : 0));
}

int mm_kkrt_oprf(mm_blake2b_fn fn, const uint8_t personal[16], const mm_aes_key code_keys[4],
                 const uint8_t s[64], const uint8_t *rows, const int64_t *idx, uint64_t index0,
                 const uint8_t *x, size_t n, uint8_t *out, int path) {
    static const uint8_t salt[16] = {0};
    uint8_t words[4][KKRT_GROUP * 16], code[64], frame[72];
    for (size_t g = 0; g < n; g += KKRT_GROUP) {
        size_t cnt = n - g < KKRT_GROUP ? n - g : KKRT_GROUP;
        if (x)
            for (int k = 0; k < 4; k++) mm_aes128_ecb(&code_keys[k], x + 16 * g, words[k], cnt, path);
        for (size_t i = 0; i < cnt; i++) {
            uint64_t j = idx ? (uint64_t)idx[g + i] : (uint64_t)(g + i);
            if (x)
                for (int k = 0; k < 4; k++) memcpy(code + 16 * k, words[k] + 16 * i, 16);
            kkrt_frame(frame, index0 + j, rows + 64 * j, x ? code : NULL, s);
            if (fn(out + 16 * (g + i), 16, frame, 72, NULL, 0, salt, personal) != 0) return -1;
        }
    }
    return 0;
}
