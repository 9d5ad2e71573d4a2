/* Random OT from correlated OT, keeping only the low bytes of each pad. */
#ifndef MESHMPC_COT_HASH_H
#define MESHMPC_COT_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "meshmpc/kernels.h"

/* Sender of n COTs q (16 bytes each) with correlation delta: out0 row j gets the low
 * `width` bytes of H(tweak + j, q_j), out1 those of H(tweak + j, q_j ^ delta), H the
 * tweakable CR hash under `fixed`. The hash runs on small stack batches, so no 32-byte
 * pad pair per OT reaches memory. width in 1..16. */
void cot_low_send(const mm_aes_key *fixed, uint64_t tweak, const uint8_t *q,
                  const uint8_t delta[16], size_t n, size_t width, uint8_t *out0,
                  uint8_t *out1);

/* Receiver: out row j = low `width` bytes of H(tweak + j, t_j). */
void cot_low_recv(const mm_aes_key *fixed, uint64_t tweak, const uint8_t *t, size_t n,
                  size_t width, uint8_t *out);

#endif
