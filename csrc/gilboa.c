/* Gilboa (CRYPTO 1999) products a * b over Z_2^64 from 64 random OTs per element:
 * the receiver chooses with the bits of b, the sender corrects pad pairs to the
 * correlation a 2^k. One pass over the pads instead of numpy's six temporaries. */
#include "meshmpc/gilboa.h"

void gilboa_send(const uint64_t *pads, const uint64_t *a, size_t rows, uint64_t *corr,
                 uint64_t *share) {
    size_t n = 64 * rows;
    const uint64_t *m0 = pads, *m1 = pads + 2 * n;
    for (size_t j = 0; j < rows; j++) {
        uint64_t sum = 0;
        for (unsigned k = 0; k < 64; k++) {
            size_t t = 64 * j + k;
            uint64_t p0 = m0[2 * t];
            corr[t] = p0 - m1[2 * t] + (a[j] << k);
            sum += p0;
        }
        share[j] = (uint64_t)0 - sum;
    }
}

void gilboa_recv(const uint64_t *pads, const uint64_t *b, size_t rows, const uint64_t *corr,
                 uint64_t *share) {
    for (size_t j = 0; j < rows; j++) {
        uint64_t sum = 0;
        for (unsigned k = 0; k < 64; k++) {
            size_t t = 64 * j + k;
            uint64_t mask = (uint64_t)0 - ((b[j] >> k) & 1u);
            sum += pads[2 * t] + (corr[t] & mask);
        }
        share[j] = sum;
    }
}
