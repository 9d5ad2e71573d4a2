/* Random OT pads from correlated OT (Guo-Katz-Wang-Yu hashing), trimmed to the
 * bytes a consumer needs: the millionaires' leaves use 4 bytes of each pad and
 * the AND-pair triples 1, so the full 16-byte pads of both messages need never
 * be written out and copied (at 2^26 OTs that is 2 GiB of stores). */
#include <string.h>

#include "meshmpc/cot_hash.h"

#define BATCH 1024 /* OTs hashed at a time: 16 KiB per stack buffer */

static void trim(const uint8_t *h, size_t n, size_t width, uint8_t *out) {
    for (size_t i = 0; i < n; i++) memcpy(out + width * i, h + 16 * i, width);
}

void cot_low_send(const mm_aes_key *fixed, uint64_t tweak, const uint8_t *q,
                  const uint8_t delta[16], size_t n, size_t width, uint8_t *out0,
                  uint8_t *out1) {
    uint8_t h[16 * BATCH];
    uint64_t d[2];
    memcpy(d, delta, 16);
    for (size_t j0 = 0; j0 < n; j0 += BATCH) {
        size_t m = n - j0 < BATCH ? n - j0 : BATCH;
        const uint8_t *qb = q + 16 * j0;
        mm_tccr_hash(fixed, tweak + j0, qb, h, m, MM_PATH_AUTO);
        trim(h, m, width, out0 + width * j0);
        for (size_t i = 0; i < m; i++) {
            uint64_t w[2];
            memcpy(w, qb + 16 * i, 16);
            w[0] ^= d[0];
            w[1] ^= d[1];
            memcpy(h + 16 * i, w, 16);
        }
        mm_tccr_hash(fixed, tweak + j0, h, h, m, MM_PATH_AUTO);
        trim(h, m, width, out1 + width * j0);
    }
}

void cot_low_recv(const mm_aes_key *fixed, uint64_t tweak, const uint8_t *t, size_t n,
                  size_t width, uint8_t *out) {
    uint8_t h[16 * BATCH];
    for (size_t j0 = 0; j0 < n; j0 += BATCH) {
        size_t m = n - j0 < BATCH ? n - j0 : BATCH;
        mm_tccr_hash(fixed, tweak + j0, t + 16 * j0, h, m, MM_PATH_AUTO);
        trim(h, m, width, out + width * j0);
    }
}
