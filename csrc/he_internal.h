/* Shared between csrc/he.c (GMP kernels, the thread pool) and csrc/he_mont.c
 * (Montgomery kernels over OpenSSL's BIGNUM). Not a public header. */
#ifndef MESHMPC_HE_INTERNAL_H
#define MESHMPC_HE_INTERNAL_H

#include <gmp.h>
#include <openssl/bn.h>

#include "meshmpc/he.h"

/* Per-thread scratch: GMP temporaries, and OpenSSL ones made on first use. */
typedef struct {
    mpz_t t, u;
    BN_CTX *bn; /* NULL until mm_he_bn_ready */
    BIGNUM *x, *y, *z;
} mm_he_scratch;

typedef int (*mm_he_row_fn)(const void *job, size_t i, mm_he_scratch *s);

/* Run fn(job, i, scratch) for i < count on nthreads threads; the first error wins. */
int mm_he_run_rows(mm_he_row_fn fn, const void *job, size_t count, int nthreads);

/* Make the OpenSSL part of a scratch (0, or MM_HE_ENOMEM). */
int mm_he_bn_ready(mm_he_scratch *s);

#endif
