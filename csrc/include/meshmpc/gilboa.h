/* Gilboa products over Z_2^64 from correlated OTs: the glue of the OT triples in C. */
#ifndef MESHMPC_GILBOA_H
#define MESHMPC_GILBOA_H

#include <stddef.h>
#include <stdint.h>

#include "meshmpc/kernels.h"

/* Fused products on correlated OTs (csrc/gilboa.c). OT 64 j + k has the receiver's
 * bit k of b_j as its choice; the sender holds q (64 rows blocks) and delta, the receiver
 * t = q ^ choice * delta. Both hash with H, the circular correlation-robust hash of
 * GKWY20 under the fixed key ``fixed`` (mm_ccr_hash; ``path`` an MM_PATH_*): the
 * receiver's pad is H(t), the sender's H(q) and H(q ^ delta).
 * corr (gilboa_packed_bytes(rows) bytes) carries message k of element j in 8 - k / 8
 * bytes, elements one after the other; the last 8 bytes are zero. */
#define GILBOA_BYTES_PER_ROW 288
size_t gilboa_packed_bytes(size_t rows);
/* Writes corr and share[j] = -sum_k H(q)_low << k. */
void gilboa_cot_send(const mm_aes_key *fixed, const uint8_t *q, const uint8_t delta[16],
                     const uint64_t *a, size_t rows, uint8_t *corr, uint64_t *share, int path);
/* Writes share[j] with share_recv + share_send = a_j b_j mod 2^64. */
void gilboa_cot_recv(const mm_aes_key *fixed, const uint8_t *t_rows, const uint64_t *b,
                     size_t rows, const uint8_t *corr, uint64_t *share, int path);

#endif
