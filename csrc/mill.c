/* Millionaires' comparison leaves: 1-out-of-16 OT of 2-bit messages from four random
 * OTs (one per choice bit), after CrypTFlow2 (Rathee et al., CCS 2020).
 *
 * A 1-of-16 OT from four 1-of-2 random OTs (Naor-Pinkas): message j is masked by
 * the XOR of the pads that j's four bits select. The messages are two bits, so
 * message j takes bits 2j, 2j+1 of that XOR: every other message uses at least
 * one pad the receiver lacks, at a bit position no other message uses, so the
 * 15 masks it cannot open are independent uniform bits. */
#include <string.h>

#include "meshmpc/mill.h"

#define DIGITS 16

static inline uint32_t pad32(const uint8_t *pads, size_t stride, size_t row) {
    uint32_t v;
    memcpy(&v, pads + stride * row, sizeof v);
    return v;
}

static inline unsigned plane_bit(const uint64_t *planes, size_t w, unsigned d, size_t e) {
    return (unsigned)(planes[d * w + (e >> 6)] >> (e & 63)) & 1u;
}

void mill_send(const uint8_t *m0, const uint8_t *m1, size_t stride, const uint64_t *u, size_t n,
               const uint64_t *lt_s, const uint64_t *eq_s, uint32_t *w_out) {
    size_t w = (n + 63) / 64;
    for (size_t e = 0; e < n; e++) {
        for (unsigned d = 0; d < DIGITS; d++) {
            size_t t = e * DIGITS + d;
            uint32_t p[2][4];
            for (unsigned i = 0; i < 4; i++) {
                p[0][i] = pad32(m0, stride, 4 * t + i);
                p[1][i] = pad32(m1, stride, 4 * t + i);
            }
            uint32_t lo[4], hi[4];
            for (unsigned k = 0; k < 4; k++) {
                lo[k] = p[k & 1][0] ^ p[k >> 1][1];
                hi[k] = p[k & 1][2] ^ p[k >> 1][3];
            }
            unsigned digit = (unsigned)(u[e] >> (4 * d)) & 15u;
            unsigned s = plane_bit(lt_s, w, d, e) | (plane_bit(eq_s, w, d, e) << 1);
            uint32_t word = 0;
            for (unsigned j = 0; j < DIGITS; j++) {
                uint32_t mask = lo[j & 3] ^ hi[j >> 2];
                uint32_t msg = ((digit < j) | ((unsigned)(digit == j) << 1)) ^ s;
                word |= (((mask >> (2 * j)) ^ msg) & 3u) << (2 * j);
            }
            w_out[t] = word;
        }
    }
}

void mill_recv(const uint8_t *m, size_t stride, const uint64_t *v, size_t n, const uint32_t *w_in,
               uint64_t *lt, uint64_t *eq) {
    size_t w = (n + 63) / 64;
    memset(lt, 0, DIGITS * w * sizeof(uint64_t));
    memset(eq, 0, DIGITS * w * sizeof(uint64_t));
    for (size_t e = 0; e < n; e++) {
        for (unsigned d = 0; d < DIGITS; d++) {
            size_t t = e * DIGITS + d;
            unsigned c = (unsigned)(v[e] >> (4 * d)) & 15u;
            uint32_t mask = pad32(m, stride, 4 * t) ^ pad32(m, stride, 4 * t + 1) ^
                            pad32(m, stride, 4 * t + 2) ^ pad32(m, stride, 4 * t + 3);
            unsigned out = (unsigned)((w_in[t] ^ mask) >> (2 * c)) & 3u;
            lt[d * w + (e >> 6)] |= (uint64_t)(out & 1u) << (e & 63);
            eq[d * w + (e >> 6)] |= (uint64_t)(out >> 1) << (e & 63);
        }
    }
}
