/* meshmpc psi kernels: hash-table matching, first-occurrence detection and
 * cuckoo hashing over fixed-width pseudo-random values (item digests, ECDH
 * outputs, OPRF outputs).
 *
 * The values these kernels index are outputs of a cryptographic hash or PRF,
 * so their first 8 bytes serve directly as the table hash; every lookup still
 * compares the full width, so structure in the values costs speed, never
 * correctness. Nothing here is secret-dependent in a way the protocols rely on:
 * the tables hold public or own-party data only.
 */
#ifndef MESHMPC_PSI_H
#define MESHMPC_PSI_H

#include <stddef.h>
#include <stdint.h>

/* For every value a[i] (width bytes, width >= 8), out[i] = the smallest j with
 * b[j] == a[i], or -1. Returns the number of i that matched, or -1 when the
 * table could not be allocated. */
int64_t psi_match(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, size_t width,
                  int64_t *out);

/* out[i] = the smallest j <= i with v[j] == v[i] (i itself for a first
 * occurrence). Returns the number of repeated rows (out[i] != i), or -1 when
 * the table could not be allocated. */
int64_t psi_first_index(const uint8_t *v, size_t n, size_t width, int64_t *out);

/* Bin of 16-byte item x under cuckoo hash function j (0..2):
 * ((32-bit little-endian word j of x) * nbins) >> 32. */
uint64_t psi_cuckoo_bin(const uint8_t *x, int j, uint64_t nbins);

/* Cuckoo hashing with 3 hash functions (psi_cuckoo_bin) into nbins bins.
 * table[b] receives the item index placed in bin b or -1; which[b] the hash
 * function that placed it. Items that still have no bin after max_kicks
 * evictions go to stash[0..] (returned count). Returns the stash size.
 * Deterministic given the inputs (a fixed xorshift walk picks evictions). */
int64_t psi_cuckoo_insert(const uint8_t *items, size_t n, uint64_t nbins, size_t max_kicks,
                          int64_t *table, uint8_t *which, int64_t *stash);

/* Fisher-Yates shuffle: out becomes a permutation of 0..n-1 driven by the
 * caller's n 64-bit random words (from the OS); index i picks
 * (rand[i] * (i + 1)) >> 64, a bias below 2^-40 for n < 2^24 per step. */
void psi_permutation(const uint64_t *rand, int64_t n, int64_t *out);

#endif
