/* meshmpc VOLE / OKVS kernels: the random band OKVS of RR22 PSI and the
 * expand-accumulate compression of silent VOLE.
 *
 * OKVS (oblivious key-value store): Bienstock-Patel-Seo-Yeo, "Near-Optimal
 * Oblivious Key-Value Stores for Efficient PSI, PSU and Volume-Hiding
 * Multi-Maps", USENIX Security 2023 (random band matrices), used as the
 * encoding of Raghuraman-Rindal, "Blazing Fast PSI from Improved OKVS and
 * Subfield VOLE", CCS 2022. Key x (a 16-byte pseudo-random digest) owns row
 * band(x) (MM_OKVS_BAND = 128 bits) starting at column start(x) of an m-column
 * table P of 16-byte elements; decode(P, x) = XOR of P[start(x) + k] over the
 * set bits k of band(x). encode finds P with decode(P, x_i) = v_i for all i by
 * Gaussian elimination over GF(2) on the rows sorted by start.
 *
 * Expand-accumulate (Boyle-Couteau-Gilboa-Ishai-Kohl-Resch-Scholl, CRYPTO 2022):
 * the dual-LPN compression H = B * A with A the N x N accumulator (prefix XOR)
 * and B a public sparse n x N matrix of `weight` uniform positions per row.
 * The map is GF(2)-linear, so it commutes with multiplication by delta.
 */
#ifndef MESHMPC_VOLE_H
#define MESHMPC_VOLE_H

#include <stddef.h>
#include <stdint.h>

#include "meshmpc/kernels.h"

#define MM_OKVS_BAND 128

/* start[i] in [0, m - 128] and band[i] (16 bytes) of every key: start from
 * AES_{k_start}(x), band = AES_{k_band}(x). m >= 128. */
void mm_okvs_hash(const mm_aes_key *k_start, const mm_aes_key *k_band, const uint8_t *keys,
                  size_t n, uint64_t m, uint64_t *start, uint8_t *band, int path);
/* P (m blocks, fully written) with decode(P, x_i) = values[i] for every i;
 * columns without a pivot are zero. Returns 0, -1 when the system has no
 * solution for these hashes (the caller re-hashes with a new seed), -2 when
 * memory runs out. */
int mm_okvs_encode(const uint64_t *start, const uint8_t *band, const uint8_t *values, size_t n,
                   uint64_t m, uint8_t *p);
/* out[i] = decode(P, key i) from its start and band; P has m blocks and
 * every start[i] <= m - 128 (the caller checks). Keys are split over
 * nthreads threads (the output does not depend on the count). */
void mm_okvs_decode(const uint64_t *start, const uint8_t *band, const uint8_t *p, size_t n,
                    uint8_t *out, int nthreads);

/* Dual expand-accumulate compression over rows of `width` blocks (1 or 2,
 * compressed independently with the same matrix): buf (N rows) is
 * overwritten by its prefix XOR, then out[j] = XOR over r < weight of
 * buf[pos(j, r)] for j < n, pos drawn from AES-CTR under the public code key
 * (two keystream blocks per output, 32-bit words w, pos = (w * N) >> 32).
 * weight <= 8, N < 2^32. The prefix XOR and the outputs are split over
 * nthreads threads (the result does not depend on the count). */
void mm_ea_compress(const mm_aes_key *code_key, uint8_t *buf, size_t big_n, size_t width,
                    uint8_t *out, size_t n, int weight, int path, int nthreads);
/* The same compression of the regular noise vector e of t regions of 2^depth
 * rows (N = t 2^depth), e[r 2^depth + alpha[r]] = beta[r] and zero elsewhere,
 * without materialising it: the prefix XOR of e at row p is
 * beta_0 ^ ... ^ beta_{r-1} (^ beta_r when p mod 2^depth >= alpha[r]), r = p >> depth.
 * Equal to mm_ea_compress on e (width 1). Returns 0, or -2 when memory runs out. */
int mm_ea_compress_regular(const mm_aes_key *code_key, const int64_t *alpha, const uint8_t *beta,
                           size_t t, int depth, uint8_t *out, size_t n, int weight, int path,
                           int nthreads);

/* GGM trees (punctured PRF of BCGI+19): each of the t roots doubles `depth`
 * times, child k of tree i at level l being H(tw0 + (l << 40) + i 2^l + k, parent)
 * with H the tweakable CR hash under the fixed key. leaves: t x 2^depth blocks;
 * sums: t x depth x 2 blocks, the XOR of the even / odd nodes of each level. */
void mm_ggm_expand(const mm_aes_key *fixed, const uint8_t *roots, size_t t, int depth,
                   uint64_t tw0, uint8_t *leaves, uint8_t *sums, int path);
/* The punctured side: alpha[i] is the unknown leaf of tree i, chosen holds the
 * t x depth level sums of the side off the path; writes every leaf but
 * alpha[i] (left zero). alpha[i] < 2^depth (the caller checks). */
void mm_ggm_punctured(const mm_aes_key *fixed, const int64_t *alpha, const uint8_t *chosen,
                      size_t t, int depth, uint64_t tw0, uint8_t *leaves, int path);
#endif
