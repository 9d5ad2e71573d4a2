/* The owner's fused ciphertext x sparse-plaintext products of the HE grouped sum
 * (csrc/bfv_sparse.c; meshmpc.ml.grouped_he). */
#ifndef MESHMPC_BFV_SPARSE_H
#define MESHMPC_BFV_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#define MM_BFV_OK 0
#define MM_BFV_EARG (-1)    /* a size, prime or layout is out of range */
#define MM_BFV_EROOT (-2)   /* psi is not a primitive 2n-th root of unity mod p */
#define MM_BFV_ERANGE (-3)  /* a coefficient is not reduced mod its prime */
#define MM_BFV_ENOMEM (-4)

/* psi^n == -1 mod p: 0 if so, else 1. */
int mm_bfv_is_root(uint64_t psi, size_t n, uint64_t p);

/* One prime's NTT tables (4n + 2 words) from a primitive 2n-th root psi. */
int mm_bfv_tables(uint64_t p, uint64_t psi, size_t n, uint64_t *tab);

/* count x L polynomials of n coefficients, in place, forward or inverse. */
int mm_bfv_ntt(uint64_t *a, size_t count, size_t n, size_t L, const uint64_t *primes,
               const uint64_t *tabs, int inverse);

/* out[g] = sum_b ct[b] * P_{b,g}, coefficient form (see csrc/bfv_sparse.c). */
int mm_bfv_grouped(const uint64_t *ct, size_t blocks, const uint8_t *bins, size_t rows,
                   size_t nfeat, const int64_t *feat, const int64_t *gstart, size_t ngroups,
                   const int64_t *offset, const int64_t *slots, size_t k, size_t n, size_t L,
                   const uint64_t *primes, const uint64_t *tabs, uint64_t *out, int nthreads);

#endif
