/* The owner's linear combination of the HE grouped sum (meshmpc.ml.grouped_he):
 * sum over blocks b of ct_b * P_b for every plaintext (group of features), where
 * P_b = sum of +-x^e monomials, one per row and feature of the group. SEAL does the
 * scheme (keys, encryption, decryption); this file only computes the products, fused:
 * each plaintext is built from the bin indices straight into a scratch buffer, brought
 * into the NTT domain, and multiplied into a 128-bit accumulator (one reduction every
 * few hundred blocks), with no per-product allocation, serialisation or Python call.
 *
 * The NTT is the negacyclic one of Longa and Naehrig (CT forward with Harvey's lazy
 * butterflies and Shoup's precomputed quotients, GS inverse), over each prime of the
 * ciphertext modulus; its output order is private to this file: inputs and outputs are
 * in coefficient form, so the result equals SEAL's multiply_plain/add_inplace result
 * exactly (tests/ml/test_bfv_sparse.py checks that bit for bit).
 *
 * Layouts (all C-contiguous uint64 unless said): a table of one prime is 4n + 2 words
 * (w, w', iw, iw', n^-1, n^-1'); ct is (blocks, 2, L, n) in NTT form (mm_bfv_ntt);
 * bins is uint8 (features, rows); out is (groups, 2, L, n) in coefficient form.
 */
#include "he_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meshmpc/bfv_sparse.h"

typedef unsigned __int128 u128;

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t p) { return (uint64_t)((u128)a * b % p); }

static uint64_t shoup(uint64_t w, uint64_t p) { return (uint64_t)(((u128)w << 64) / p); }

/* a * w mod p in [0, 2p), for any a < 2^64 (Harvey). */
static inline uint64_t mul_shoup_lazy(uint64_t a, uint64_t w, uint64_t ws, uint64_t p) {
    uint64_t q = (uint64_t)(((u128)a * ws) >> 64);
    return a * w - q * p;
}

static size_t bitrev(size_t x, int bits) {
    size_t r = 0;
    for (int i = 0; i < bits; i++) r |= ((x >> i) & 1) << (bits - 1 - i);
    return r;
}

static int log2_exact(size_t n) {
    int b = 0;
    while (((size_t)1 << b) < n) b++;
    return ((size_t)1 << b) == n ? b : -1;
}

int mm_bfv_tables(uint64_t p, uint64_t psi, size_t n, uint64_t *tab) {
    int bits = log2_exact(n);
    if (bits < 1 || p >> 61 || p < 3) return MM_BFV_EARG;
    if (mm_bfv_is_root(psi, n, p)) return MM_BFV_EROOT;
    uint64_t inv = 1, fwd = 1, psi_inv = 1;
    for (uint64_t e = p - 2, b = psi; e; e >>= 1, b = mulmod(b, b, p))
        if (e & 1) psi_inv = mulmod(psi_inv, b, p);
    uint64_t *w = tab, *ws = tab + n, *iw = tab + 2 * n, *iws = tab + 3 * n;
    for (size_t i = 0; i < n; i++) {
        size_t j = bitrev(i, bits);
        w[j] = fwd;
        iw[j] = inv;
        fwd = mulmod(fwd, psi, p);
        inv = mulmod(inv, psi_inv, p);
    }
    for (size_t i = 0; i < n; i++) {
        ws[i] = shoup(w[i], p);
        iws[i] = shoup(iw[i], p);
    }
    uint64_t ninv = 1;
    for (uint64_t e = p - 2, b = n % p; e; e >>= 1, b = mulmod(b, b, p))
        if (e & 1) ninv = mulmod(ninv, b, p);
    tab[4 * n] = ninv;
    tab[4 * n + 1] = shoup(ninv, p);
    return MM_BFV_OK;
}

/* psi must be a primitive 2n-th root of unity: psi^n == -1 (n a power of two). */
int mm_bfv_is_root(uint64_t psi, size_t n, uint64_t p) {
    uint64_t r = psi % p;
    for (size_t m = 1; m < n; m <<= 1) r = mulmod(r, r, p);
    return r == p - 1 ? 0 : 1;
}

/* Forward negacyclic NTT in place; input < 4p, output fully reduced. */
static void ntt_forward(uint64_t *a, size_t n, const uint64_t *tab, uint64_t p) {
    const uint64_t *w = tab, *ws = tab + n;
    uint64_t two_p = 2 * p;
    size_t t = n;
    for (size_t m = 1; m < n; m <<= 1) {
        t >>= 1;
        for (size_t i = 0; i < m; i++) {
            uint64_t W = w[m + i], Ws = ws[m + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                uint64_t u = x[j];
                if (u >= two_p) u -= two_p;
                uint64_t v = mul_shoup_lazy(y[j], W, Ws, p);
                x[j] = u + v;
                y[j] = u - v + two_p;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        uint64_t u = a[j];
        if (u >= two_p) u -= two_p;
        if (u >= p) u -= p;
        a[j] = u;
    }
}

/* Inverse negacyclic NTT in place; input < p, output fully reduced. */
static void ntt_inverse(uint64_t *a, size_t n, const uint64_t *tab, uint64_t p) {
    const uint64_t *iw = tab + 2 * n, *iws = tab + 3 * n;
    uint64_t two_p = 2 * p;
    size_t t = 1;
    for (size_t m = n; m > 1; m >>= 1) {
        size_t h = m >> 1;
        for (size_t i = 0; i < h; i++) {
            uint64_t W = iw[h + i], Ws = iws[h + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                uint64_t u = x[j], v = y[j]; /* both < 2p */
                uint64_t s = u + v;
                x[j] = s >= two_p ? s - two_p : s;
                y[j] = mul_shoup_lazy(u - v + two_p, W, Ws, p);
            }
        }
        t <<= 1;
    }
    uint64_t ni = tab[4 * n], nis = tab[4 * n + 1];
    for (size_t j = 0; j < n; j++) {
        uint64_t u = mul_shoup_lazy(a[j], ni, nis, p);
        a[j] = u >= p ? u - p : u;
    }
}

int mm_bfv_ntt(uint64_t *a, size_t count, size_t n, size_t L, const uint64_t *primes,
               const uint64_t *tabs, int inverse) {
    if (log2_exact(n) < 1) return MM_BFV_EARG;
    for (size_t c = 0; c < count; c++)
        for (size_t l = 0; l < L; l++) {
            uint64_t *poly = a + (c * L + l) * n;
            for (size_t j = 0; j < n; j++)
                if (poly[j] >= primes[l]) return MM_BFV_ERANGE;
            if (inverse) ntt_inverse(poly, n, tabs + l * (4 * n + 2), primes[l]);
            else ntt_forward(poly, n, tabs + l * (4 * n + 2), primes[l]);
        }
    return MM_BFV_OK;
}

typedef struct {
    const uint64_t *ct;
    size_t blocks;
    const uint8_t *bins;
    size_t rows;
    const int64_t *feat, *gstart, *offset, *slots;
    size_t k, n, L;
    const uint64_t *primes, *tabs;
    uint64_t *out;
    size_t every; /* blocks per 128-bit reduction */
} grouped_job;

/* The signs (0, +1, -1) of block b's plaintext for one group; 1 if any is non-zero. */
static int block_signs(const grouped_job *J, size_t g, size_t b, int8_t *sign) {
    size_t lo = b * J->k, hi = lo + J->k < J->rows ? lo + J->k : J->rows;
    int any = 0;
    memset(sign, 0, J->n);
    for (int64_t q = J->gstart[g]; q < J->gstart[g + 1]; q++) {
        int64_t f = J->feat[q];
        const uint8_t *col = J->bins + (size_t)f * J->rows;
        int64_t off = J->offset[f], width = J->slots[f];
        for (size_t row = lo; row < hi; row++) {
            int64_t bin = col[row];
            if (bin >= width) continue;
            int64_t e = (off + bin) * (int64_t)J->k - (int64_t)(row - lo);
            if (e >= 0) sign[e] = 1;
            else sign[(int64_t)J->n + e] = -1;
            any = 1;
        }
    }
    return any;
}

static void reduce_into(u128 *acc, uint64_t *dst, size_t n, size_t L, const uint64_t *primes) {
    for (size_t c = 0; c < 2; c++)
        for (size_t l = 0; l < L; l++) {
            uint64_t p = primes[l];
            u128 *a = acc + (c * L + l) * n;
            uint64_t *d = dst + (c * L + l) * n;
            for (size_t j = 0; j < n; j++) {
                d[j] = (uint64_t)(a[j] % p);
                a[j] = d[j];
            }
        }
}

static int grouped_one(const void *job, size_t g, mm_he_scratch *s) {
    (void)s;
    const grouped_job *J = job;
    size_t n = J->n, L = J->L, poly = 2 * L * n;
    u128 *acc = calloc(poly, sizeof *acc);
    uint64_t *plain = malloc(L * n * sizeof *plain);
    int8_t *sign = malloc(n);
    uint64_t *dst = J->out + g * poly;
    if (!acc || !plain || !sign) {
        free(acc);
        free(plain);
        free(sign);
        return MM_BFV_ENOMEM;
    }
    size_t since = 0;
    for (size_t b = 0; b < J->blocks; b++) {
        if (!block_signs(J, g, b, sign)) continue;
        for (size_t l = 0; l < L; l++) {
            uint64_t p = J->primes[l], *pt = plain + l * n;
            for (size_t j = 0; j < n; j++) pt[j] = sign[j] > 0 ? 1 : sign[j] < 0 ? p - 1 : 0;
            ntt_forward(pt, n, J->tabs + l * (4 * n + 2), p);
        }
        const uint64_t *ct = J->ct + b * poly;
        for (size_t c = 0; c < 2; c++)
            for (size_t l = 0; l < L; l++) {
                const uint64_t *x = ct + (c * L + l) * n, *y = plain + l * n;
                u128 *a = acc + (c * L + l) * n;
                for (size_t j = 0; j < n; j++) a[j] += (u128)x[j] * y[j];
            }
        if (++since == J->every) {
            reduce_into(acc, dst, n, L, J->primes);
            since = 0;
        }
    }
    reduce_into(acc, dst, n, L, J->primes);
    for (size_t c = 0; c < 2; c++)
        for (size_t l = 0; l < L; l++)
            ntt_inverse(dst + (c * L + l) * n, n, J->tabs + l * (4 * n + 2), J->primes[l]);
    free(acc);
    free(plain);
    free(sign);
    return MM_BFV_OK;
}

int mm_bfv_grouped(const uint64_t *ct, size_t blocks, const uint8_t *bins, size_t rows,
                   size_t nfeat, const int64_t *feat, const int64_t *gstart, size_t ngroups,
                   const int64_t *offset, const int64_t *slots, size_t k, size_t n, size_t L,
                   const uint64_t *primes, const uint64_t *tabs, uint64_t *out, int nthreads) {
    if (log2_exact(n) < 1 || k == 0 || k > n || L == 0 || blocks * k < rows) return MM_BFV_EARG;
    uint64_t pmax = 0;
    for (size_t l = 0; l < L; l++) {
        if (primes[l] >> 61 || primes[l] < 3) return MM_BFV_EARG;
        if (primes[l] > pmax) pmax = primes[l];
    }
    for (size_t g = 0; g < ngroups; g++) {
        if (gstart[g] > gstart[g + 1]) return MM_BFV_EARG;
        for (int64_t q = gstart[g]; q < gstart[g + 1]; q++) {
            int64_t f = feat[q];
            if (f < 0 || (size_t)f >= nfeat || offset[f] < 0 || slots[f] < 0 ||
                (size_t)(offset[f] + slots[f]) * k > n)
                return MM_BFV_EARG;
        }
    }
    u128 sq = (u128)(pmax - 1) * (pmax - 1);
    u128 room = ~(u128)0 - (u128)pmax;
    size_t every = (size_t)(room / sq > 4096 ? 4096 : room / sq);
    if (every == 0) return MM_BFV_EARG;
    grouped_job J = {ct, blocks, bins, rows, feat, gstart, offset, slots,
                     k, n, L, primes, tabs, out, every};
    return mm_he_run_rows(grouped_one, &J, ngroups, nthreads);
}
