/* Ring kernels for secret sharing: Z_2^64 bit slicing and Z_2^128 arithmetic.
 *
 * Z_2^128 elements are stored as two little-endian uint64 words (lo, hi), so an
 * array of n elements is 2n uint64. All functions are C99 with no Python.h.
 */
#ifndef MESHMPC_RING_H
#define MESHMPC_RING_H

#include <stddef.h>
#include <stdint.h>

/* Bit-slice n words into 64 planes of w = ceil(n/64) words:
 * bit t of planes[j*w + k] is bit j of x[64k + t] (missing tail elements are 0). */
void ring_bitslice64(const uint64_t *x, size_t n, uint64_t *planes, size_t w);

/* Inverse of one plane: out[i] = bit i of plane (0 or 1), for i < n. */
void ring_plane_to_u64(const uint64_t *plane, size_t n, uint64_t *out);

/* Pack n 0/1 words (only bit 0 used) into one plane of ceil(n/64) words. */
void ring_u64_to_plane(const uint64_t *bits, size_t n, uint64_t *plane);

/* out (m x p) = A^T @ B over Z_2^64, where A is stored row-major as k x m and B as
 * k x p: one streaming pass over the rows of A (numpy's integer matmul walks a
 * transposed operand column by column). */
void ring64_matmul_tn(const uint64_t *a, const uint64_t *b, uint64_t *out,
                      size_t k, size_t m, size_t p);

/* out (m x p) = A @ B over Z_2^64, A row-major m x k, B row-major k x p (p small:
 * the owner-matrix products of meshmpc.ml, one pass over A's rows). */
void ring64_matmul_nn(const uint64_t *a, const uint64_t *b, uint64_t *out,
                      size_t m, size_t k, size_t p);

/* out (m x p) = round(X * scale) @ B over Z_2^64 for a double matrix X (m x k):
 * fixed-point encoding fused with the product, one pass over X. Returns -1 (out
 * unspecified) if some |round(x * scale)| >= bound or x is not finite, else 0. */
int ring64_matmul_fixed(const double *x, const uint64_t *b, uint64_t *out,
                        size_t m, size_t k, size_t p, double scale, double bound);

/* Z_2^128 element-wise: out = a op b over n elements (2n words each). */
void ring128_add(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n);
void ring128_sub(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n);
void ring128_mul(const uint64_t *a, const uint64_t *b, uint64_t *out, size_t n);

/* out (m x p) = a (m x k) @ b (k x p) over Z_2^128, row-major. */
void ring128_matmul(const uint64_t *a, const uint64_t *b, uint64_t *out,
                    size_t m, size_t k, size_t p);

/* Arithmetic (signed) right shift by s < 128 of n elements. */
void ring128_sar(const uint64_t *a, uint64_t *out, size_t n, unsigned s);

/* Logical right shift by s < 128 of n elements. */
void ring128_shr(const uint64_t *a, uint64_t *out, size_t n, unsigned s);

/* Fixed-point encode round(x * 2^f) (two's complement) and decode to double. */
void ring128_from_double(const double *x, uint64_t *out, size_t n, unsigned f);
void ring128_to_double(const uint64_t *a, double *out, size_t n, unsigned f);

#endif
