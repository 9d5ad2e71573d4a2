/* Gilboa products straight from correlated OTs, with shortened messages.
 *
 * The random-OT hashing (the circular correlation-robust hash of Guo-Katz-Wang-Yu,
 * one fixed-key AES call per pad; protocols/ot.md has the security argument) and the
 * Gilboa correction run in one pass over small stack batches, so no pad array
 * of 32 bytes per OT is ever written to memory. OT k of an element carries
 * only the 64 - k low bits its product needs (2^k x mod 2^64 depends on x mod
 * 2^(64-k) only), rounded up to bytes: 8 - k / 8 bytes, 288 bytes per element
 * instead of 512 (the trick of CrypTFlow2 / Cheetah's COT-based products). */
#include <string.h>

#include "meshmpc/gilboa.h"

#define GB_ROWS 16 /* elements hashed per batch: 1024 OTs, 16 KiB per buffer */

static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

size_t gilboa_packed_bytes(size_t rows) { return GILBOA_BYTES_PER_ROW * rows + 8; }

static void xor_delta(const uint8_t *q, const uint8_t delta[16], uint8_t *out, size_t n) {
    uint64_t d0 = load64(delta), d1 = load64(delta + 8);
    for (size_t i = 0; i < n; i++) {
        store64(out + 16 * i, load64(q + 16 * i) ^ d0);
        store64(out + 16 * i + 8, load64(q + 16 * i + 8) ^ d1);
    }
}

void gilboa_cot_send(const mm_aes_key *fixed, const uint8_t *q, const uint8_t delta[16],
                     const uint64_t *a, size_t rows, uint8_t *corr, uint64_t *share, int path) {
    uint8_t h0[16 * 64 * GB_ROWS], h1[16 * 64 * GB_ROWS];
    size_t pos = 0;
    for (size_t j0 = 0; j0 < rows; j0 += GB_ROWS) {
        size_t nr = rows - j0 < GB_ROWS ? rows - j0 : GB_ROWS, n = 64 * nr;
        const uint8_t *qb = q + 16 * 64 * j0;
        mm_ccr_hash(fixed, qb, h0, n, path);
        xor_delta(qb, delta, h1, n);
        mm_ccr_hash(fixed, h1, h1, n, path);
        for (size_t j = 0; j < nr; j++) {
            uint64_t sum = 0, aj = a[j0 + j];
            for (unsigned k = 0; k < 64; k++) {
                size_t t = 64 * j + k;
                uint64_t p0 = load64(h0 + 16 * t);
                store64(corr + pos, p0 - load64(h1 + 16 * t) + aj); /* high bytes: overwritten */
                pos += 8 - k / 8;
                sum += p0 << k;
            }
            share[j0 + j] = (uint64_t)0 - sum;
        }
    }
    memset(corr + pos, 0, 8); /* the slack after the last message carries nothing */
}

void gilboa_cot_recv(const mm_aes_key *fixed, const uint8_t *t_rows, const uint64_t *b,
                     size_t rows, const uint8_t *corr, uint64_t *share, int path) {
    uint8_t h[16 * 64 * GB_ROWS];
    size_t pos = 0;
    for (size_t j0 = 0; j0 < rows; j0 += GB_ROWS) {
        size_t nr = rows - j0 < GB_ROWS ? rows - j0 : GB_ROWS, n = 64 * nr;
        mm_ccr_hash(fixed, t_rows + 16 * 64 * j0, h, n, path);
        for (size_t j = 0; j < nr; j++) {
            uint64_t sum = 0, bj = b[j0 + j];
            for (unsigned k = 0; k < 64; k++) {
                uint64_t mask = (uint64_t)0 - ((bj >> k) & 1u);
                /* bytes past the message belong to the next one: shifted out by << k */
                sum += (load64(h + 16 * (64 * j + k)) + (load64(corr + pos) & mask)) << k;
                pos += 8 - k / 8;
            }
            share[j0 + j] = sum;
        }
    }
}
