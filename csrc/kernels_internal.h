/* Private declarations shared by the csrc/kernels_*.c files (not bound). */
#ifndef MESHMPC_KERNELS_INTERNAL_H
#define MESHMPC_KERNELS_INTERNAL_H

#include <stdint.h>

#include "meshmpc/kernels.h"

void mm_aes_block_portable(const mm_aes_key *k, const uint8_t in[16], uint8_t out[16]);

#endif
