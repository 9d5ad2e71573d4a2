/* Half-gates garbling (Zahur-Rosulek-Evans, EUROCRYPT 2015) of layers of AND gates.
 *
 * Labels are 16-byte blocks; free-XOR with a global offset delta; point-and-
 * permute uses bit `color` of a label (any bit set in delta). The gate hash is
 * the tweakable correlation-robust hash of the C core, H(j, x) =
 * pi(pi(x) ^ j) ^ pi(x) with pi fixed-key AES (mm_tccr_hash, AES-NI/VAES
 * chosen at run time). Gate i of a layer uses tweaks tweak + i (generator
 * half) and tweak + n + i (evaluator half); a layer consumes 2n tweaks.
 */
#ifndef MESHMPC_GC_H
#define MESHMPC_GC_H

#include <stddef.h>
#include <stdint.h>

#include "meshmpc/kernels.h"

/* round_keys: an expanded AES-128 key (mm_aes_key, 176 bytes), the fixed key pi.
 *
 * Garble n AND gates with zero-labels a0[i], b0[i]: writes the output zero-labels
 * c0[i] and the tables (2 blocks per gate: T_G, T_E). scratch: 4n blocks. */
void gc_garble_and(const uint8_t *round_keys, uint64_t tweak, const uint8_t *a0,
                   const uint8_t *b0,
                   const uint8_t delta[16], unsigned color, uint8_t *c0, uint8_t *tables,
                   uint8_t *scratch, size_t n);

/* Evaluate n AND gates on active labels a[i], b[i] with the garbler's tables:
 * writes the active output labels c[i]. scratch: 2n blocks. */
void gc_eval_and(const uint8_t *round_keys, uint64_t tweak, const uint8_t *a,
                 const uint8_t *b,
                 unsigned color, const uint8_t *tables, uint8_t *c, uint8_t *scratch, size_t n);

/* Colour bits of n labels: out[i] = bit `color` of label i (0 or 1). */
void gc_colors(const uint8_t *labels, unsigned color, uint8_t *out, size_t n);

#endif
