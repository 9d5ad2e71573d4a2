/* Gilboa products over Z_2^64 from random-OT pads: the glue of the OT triples in C. */
#ifndef MESHMPC_GILBOA_H
#define MESHMPC_GILBOA_H

#include <stddef.h>
#include <stdint.h>

/* Sender of rows elements, 64 OTs each (OT 64 j + k for bit k of the receiver's b_j):
 * pads holds 2 * 64 rows pads of two words (m0 rows first, then m1), of which the first
 * word is used. Writes corr[64 j + k] = m0 - m1 + (a_j << k) and share[j] = -sum_k m0. */
void gilboa_send(const uint64_t *pads, const uint64_t *a, size_t rows, uint64_t *corr,
                 uint64_t *share);

/* Receiver: pads holds the 64 rows pads m_{b_jk} (two words each, first used), corr the
 * sender's corrections. Writes share[j] = sum_k (m + b_jk corr) = a_j b_j - sender's. */
void gilboa_recv(const uint64_t *pads, const uint64_t *b, size_t rows, const uint64_t *corr,
                 uint64_t *share);

#endif
