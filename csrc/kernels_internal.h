/* Private declarations shared by the csrc/kernels_*.c files (not bound). */
#ifndef MESHMPC_KERNELS_INTERNAL_H
#define MESHMPC_KERNELS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "meshmpc/kernels.h"

void mm_aes_block_portable(const mm_aes_key *k, const uint8_t in[16], uint8_t out[16]);
/* 256-bit VAES bulk of CTR / ccr / tccr (csrc/kernels_vaes256.c): the blocks done, a multiple
 * of 16; call only when mm_cpu_features() has MM_CPU_VAES256. */
size_t mm_ctr_vaes256(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t n);
size_t mm_ccr_vaes256(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n);
size_t mm_tccr_vaes256(const mm_aes_key *k, uint64_t tw, const uint8_t *in, uint8_t *out,
                       size_t n);

/* 128 x 128 bit-block transposes (csrc/kernels_bits.c, AVX2 only): block b is 128 rows
 * of 16 bytes at in + 2048 b and becomes the 128 rows at out + 2048 b. */
void mm_transpose128_blocks_avx2(const uint8_t *in, uint8_t *out, size_t nblocks);
/* SoftSpokenOT with the leaf PRG and level sums fused on 256-bit VAES (k <= 4;
 * csrc/softspoken_vaes256.c): same contract and output as mm_softspoken_receiver /
 * mm_softspoken_sender; call only when mm_softspoken_fused_ok(k). */
int mm_softspoken_fused_ok(int k);
int mm_softspoken_receiver_vaes256(const mm_aes_key *leaf_keys, int k, uint64_t ctr,
                                   const uint8_t *r, size_t m, uint8_t *corrections,
                                   uint8_t *t_rows);
int mm_softspoken_sender_vaes256(const mm_aes_key *leaf_keys, int k, const uint8_t delta[16],
                                 uint64_t ctr, const uint8_t *corrections, size_t m,
                                 uint8_t *q_rows);

#endif
