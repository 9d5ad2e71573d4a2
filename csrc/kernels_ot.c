/* The per-batch work of IKNP and KKRT OT extension: PRG expansion of the
 * base-OT seeds into columns, the column correction u, and the transpose
 * into per-OT rows. One call covers a whole batch; Python only orchestrates.
 */
#include <stdlib.h>

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
