/* meshmpc kernels: AES-128, AES-CTR PRG, correlation-robust hashes, item hash,
 * bit-matrix transpose, GF(2^128) arithmetic, block helpers, OT-extension steps.
 *
 * Every entry point taking `int path` runs the requested implementation:
 * MM_PATH_AUTO picks the fastest one the CPU supports (checked at run time with
 * __builtin_cpu_supports), the others force one path so tests can compare them.
 * A forced path the CPU lacks falls back to the best available one below it.
 * All paths give bit-identical output.
 *
 * Conventions: a block is 16 bytes; a 128-bit integer is stored little-endian
 * (byte 0 least significant); bit j of a packed bit string is bit (j % 8) of
 * byte j / 8 (numpy.packbits(bitorder="little")).
 */
#ifndef MESHMPC_KERNELS_H
#define MESHMPC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define MM_PATH_AUTO (-1)
#define MM_PATH_PORTABLE 0
#define MM_PATH_AESNI 1 /* AES-NI + SSE2/SSE4 + PCLMUL; AVX2 for the transpose */
#define MM_PATH_VAES 2  /* VAES on 512-bit vectors (AVX-512F), VPCLMULQDQ */

#define MM_CPU_AESNI 1
#define MM_CPU_PCLMUL 2
#define MM_CPU_AVX2 4
#define MM_CPU_AVX512 8 /* avx512f + avx512bw */
#define MM_CPU_VAES 16  /* vaes usable on 512-bit vectors */
#define MM_CPU_VPCLMUL 32
#define MM_CPU_VAES256 64 /* vaes on 256-bit vectors (AVX2), used by the AES-NI path */

/* CPU features found at run time (MM_CPU_* bits). */
int mm_cpu_features(void);
/* The path MM_PATH_AUTO resolves to for AES work on this CPU. */
int mm_best_path(void);
/* Clamp a requested path to what the CPU supports. */
int mm_resolve_path(int path);

/* Expanded AES-128 key: 11 round keys in FIPS-197 byte order. */
typedef struct {
    uint8_t rk[11 * 16];
} mm_aes_key;

void mm_aes128_expand(const uint8_t key[16], mm_aes_key *out);
/* out[i] = AES_k(in[i]) for n blocks; in and out may alias exactly. */
void mm_aes128_ecb(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, int path);
/* out[i] = AES_k(ctr + i) with the counter a 128-bit little-endian integer
 * whose high 64 bits are zero: the PRG keystream of seed k. */
void mm_aes128_ctr(const mm_aes_key *k, uint64_t ctr, uint8_t *out, size_t n, int path);
/* Fill nbytes of out with the keystream starting at block ctr (a partial last
 * block is truncated). Returns the number of blocks consumed. */
uint64_t mm_prg_fill(const mm_aes_key *k, uint64_t ctr, uint8_t *out, size_t nbytes, int path);

/* Circular correlation-robust hash of GKWY20: H(x) = pi(s(x)) ^ s(x) with
 * s(xl || xr) = (xl ^ xr) || xl and pi = AES under the fixed key k. */
void mm_ccr_hash(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, int path);
/* Tweakable correlation-robust hash of GKWY20: H(i, x) = pi(pi(x) ^ i) ^ pi(x)
 * with tweak i = tweak0 + j for block j. */
void mm_tccr_hash(const mm_aes_key *k, uint64_t tweak0, const uint8_t *in, uint8_t *out,
                  size_t n, int path);

/* BLAKE2b-with-salt-and-personalisation function, as libsodium exports it
 * (crypto_generichash_blake2b_salt_personal). The C core links no library:
 * the caller passes libsodium's function pointer. */
typedef int (*mm_blake2b_fn)(unsigned char *out, size_t outlen, const unsigned char *in,
                             unsigned long long inlen, const unsigned char *key, size_t keylen,
                             const unsigned char *salt, const unsigned char *personal);
/* Item i is data[offsets[i] : offsets[i+1]]; out[i] = BLAKE2b-128(item, key, personal).
 * key may be NULL (keylen 0); personal is 16 bytes. Returns 0, or -1 on failure. */
int mm_item_hash(mm_blake2b_fn fn, const uint8_t *data, const int64_t *offsets, size_t n,
                 const uint8_t *key, size_t keylen, const uint8_t personal[16], uint8_t *out);

/* Bit-matrix transpose: in has `rows` rows of `cols` bits (row stride cols/8
 * bytes); out gets `cols` rows of `rows` bits (row stride rows/8 bytes).
 * rows and cols must be multiples of 8. */
void mm_transpose(const uint8_t *in, uint8_t *out, size_t rows, size_t cols, int path);

/* GF(2^128) modulo x^128 + x^7 + x^2 + x + 1, bit i of the little-endian
 * 128-bit integer = coefficient of x^i. out[i] = a[i] * b[i]. */
void mm_gf128_mul(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n, int path);
/* out = sum_i a[i] * b[i]. */
void mm_gf128_inner(const uint8_t *a, const uint8_t *b, size_t n, uint8_t out[16], int path);

/* Byte-wise helpers over nbytes. */
void mm_xor(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes);
void mm_and(const uint8_t *a, const uint8_t *b, uint8_t *out, size_t nbytes);
/* Block helpers over n blocks of `width` bytes with packed selection bits:
 * out[j] = bit_j ? b[j] : a[j]. */
void mm_select(const uint8_t *bits, const uint8_t *a, const uint8_t *b, uint8_t *out, size_t n,
               size_t width);
/* inout[j] ^= bit_j ? delta : 0 (delta one block of `width` bytes). */
void mm_xor_where(const uint8_t *bits, const uint8_t *delta, uint8_t *inout, size_t n,
                  size_t width);

/* One batch of IKNP / KKRT extension columns (Ishai-Kilian-Nissim-Petrank 03,
 * Kolesnikov-Kumaresan-Rosulek-Trieu 16). There are `k` base-OT seeds (k a
 * multiple of 32), m OTs in the batch (a multiple of 128), every PRG G(seed)
 * read from block counter ctr on (column j of the batch is bit j - 128 ctr of
 * the keystream). Work runs in column chunks that fit in L2.
 *
 * Receiver: t^i = G(k0_i), u^i = t^i ^ G(k1_i) ^ c^i, where c is a k x m bit
 * matrix (IKNP: every row equals the choice bits, pass c_is_row = 1 and one
 * row; KKRT: the transposed code words). Writes u (k rows of m bits, sent to
 * the sender) and t_rows (m rows of k bits, the receiver's output).
 * Returns 0, or -1 when memory runs out. */
int mm_ext_receiver(const mm_aes_key *k0, const mm_aes_key *k1, size_t k, uint64_t ctr,
                    const uint8_t *c, int c_is_row, size_t m, uint8_t *u, uint8_t *t_rows,
                    int path);
/* Sender: q^i = G(ks_i) ^ s_i u^i with s the k choice bits of the base OTs
 * (packed); writes q_rows (m rows of k bits: q_j = t_j ^ (c_j & s)).
 * Returns 0, or -1 when memory runs out. */
int mm_ext_sender(const mm_aes_key *ks, const uint8_t *s, size_t k, uint64_t ctr,
                  const uint8_t *u, size_t m, uint8_t *q_rows, int path);
/* SoftSpokenOT batch (Roy 2022, repetition code): leaf_keys holds 128/k chunks of
 * 2^k expanded leaf seeds (k in 1, 2, 4, 8), m is a multiple of 128. Receiver:
 * r = m choice bits (packed), writes corrections (128/k rows of m bits) and
 * t_rows (m x 16 bytes). Sender: its punctured leaf in chunk i (bits ik..ik+k-1
 * of delta) is never read; writes q_rows with q_j = t_j ^ r_j delta.
 * Both return 0, or -1 when memory runs out. */
int mm_softspoken_receiver(const mm_aes_key *leaf_keys, int k, uint64_t ctr, const uint8_t *r,
                           size_t m, uint8_t *corrections, uint8_t *t_rows, int path);
int mm_softspoken_sender(const mm_aes_key *leaf_keys, int k, const uint8_t delta[16],
                         uint64_t ctr, const uint8_t *corrections, size_t m, uint8_t *q_rows,
                         int path);

/* KKRT OPRF values out[i] = BLAKE2b-128(LE64(index0 + j) || row_j ^ (C(x_i) & s)),
 * personalised, with j = idx[i] (or i when idx is NULL) and C(x) the four AES
 * encryptions of x under code_keys. With x NULL the row is hashed as is (the
 * receiver's side). rows holds 64-byte rows; the caller checks every j. */
int mm_kkrt_oprf(mm_blake2b_fn fn, const uint8_t personal[16], const mm_aes_key code_keys[4],
                 const uint8_t s[64], const uint8_t *rows, const int64_t *idx, uint64_t index0,
                 const uint8_t *x, size_t n, uint8_t *out, int path);

#endif
