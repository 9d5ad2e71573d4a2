/* Millionaires' comparison kernels (CrypTFlow2-style 1-out-of-16 OT on 4-bit digits). */
#ifndef MESHMPC_MILL_H
#define MESHMPC_MILL_H

#include <stddef.h>
#include <stdint.h>

/* Sender of n elements x 16 digits: m0/m1 are the 64 n random-OT pads (rows of `stride`
 * bytes, stride >= 4, of which the first 4 are used; pad 4t+i for bit i of digit instance t = 16 e + d); u the sender's 64-bit values;
 * lt_s/eq_s its random output planes (16 x w words, w = ceil(n/64)). Writes w_out[t]:
 * 16 two-bit messages (lt ^ s_lt, eq ^ s_eq) for every receiver digit j, each masked
 * by bits 2j, 2j+1 of the XOR of the four pads the digit j selects. */
void mill_send(const uint8_t *m0, const uint8_t *m1, size_t stride, const uint64_t *u, size_t n,
               const uint64_t *lt_s, const uint64_t *eq_s, uint32_t *w_out);

/* Receiver: m the 64 n pads of its choices (the bits of v); unmasks message v's digit
 * and writes its shares of [u_d < v_d] and [u_d == v_d] into planes lt/eq (16 x w). */
void mill_recv(const uint8_t *m, size_t stride, const uint64_t *v, size_t n, const uint32_t *w_in,
               uint64_t *lt, uint64_t *eq);

#endif
