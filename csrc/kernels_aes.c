/* AES-128 batches: ECB, CTR keystream (the PRG), and the fixed-key
 * correlation-robust hashes of Guo-Katz-Wang-Yu (S&P 2020).
 *
 * Three paths with identical output: portable C, AES-NI on 128-bit vectors
 * (8 blocks in flight to hide the aesenc latency), and VAES on 512-bit
 * vectors (16 blocks in flight). Tails shorter than a full pipeline go to the
 * AES-NI code. Each SIMD function carries its own target attribute, so the
 * build needs no -march flag.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels_internal.h"
#include "meshmpc/kernels.h"

#define AESNI __attribute__((target("aes,sse4.1")))
#define VAES512 __attribute__((target("aes,vaes,avx512f,avx512bw")))

/* ---------------------------------------------------------------- portable */

static void ecb_portable(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) mm_aes_block_portable(k, in + 16 * i, out + 16 * i);
}

static void ctr_block(uint64_t c, uint8_t b[16]) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(c >> (8 * i));
    memset(b + 8, 0, 8);
}

static void sigma_portable(const uint8_t x[16], uint8_t y[16]) {
    /* x = xr (bytes 0..7, low half) || xl (bytes 8..15, high half);
     * s(x): high = xl ^ xr, low = xl. */
    for (int i = 0; i < 8; i++) {
        y[i] = x[8 + i];
        y[8 + i] = (uint8_t)(x[i] ^ x[8 + i]);
    }
}

static void ccr_portable(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    uint8_t s[16], e[16];
    for (size_t j = 0; j < n; j++) {
        sigma_portable(in + 16 * j, s);
        mm_aes_block_portable(k, s, e);
        for (int i = 0; i < 16; i++) out[16 * j + i] = (uint8_t)(e[i] ^ s[i]);
    }
}

static void tccr_portable(const mm_aes_key *k, uint64_t tw, const uint8_t *in, uint8_t *out,
                          size_t n) {
    uint8_t y[16], z[16], t[16];
    for (size_t j = 0; j < n; j++) {
        mm_aes_block_portable(k, in + 16 * j, y);
        ctr_block(tw + j, t);
        for (int i = 0; i < 16; i++) t[i] ^= y[i];
        mm_aes_block_portable(k, t, z);
        for (int i = 0; i < 16; i++) out[16 * j + i] = (uint8_t)(z[i] ^ y[i]);
    }
}

/* ----------------------------------------------------------------- AES-NI */

AESNI static inline void load_keys(const mm_aes_key *k, __m128i rk[11]) {
    for (int r = 0; r < 11; r++) rk[r] = _mm_loadu_si128((const __m128i *)(k->rk + 16 * r));
}

#define AES8(b, rk)                                                                       \
    do {                                                                                  \
        for (int q = 0; q < 8; q++) b[q] = _mm_xor_si128(b[q], rk[0]);                   \
        for (int r = 1; r < 10; r++)                                                      \
            for (int q = 0; q < 8; q++) b[q] = _mm_aesenc_si128(b[q], rk[r]);             \
        for (int q = 0; q < 8; q++) b[q] = _mm_aesenclast_si128(b[q], rk[10]);           \
    } while (0)

AESNI static inline __m128i aes1(__m128i x, const __m128i rk[11]) {
    x = _mm_xor_si128(x, rk[0]);
    for (int r = 1; r < 10; r++) x = _mm_aesenc_si128(x, rk[r]);
    return _mm_aesenclast_si128(x, rk[10]);
}

AESNI static void ecb_aesni(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    __m128i rk[11], b[8];
    load_keys(k, rk);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int q = 0; q < 8; q++) b[q] = _mm_loadu_si128((const __m128i *)(in + 16 * (i + q)));
        AES8(b, rk);
        for (int q = 0; q < 8; q++) _mm_storeu_si128((__m128i *)(out + 16 * (i + q)), b[q]);
    }
    for (; i < n; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + 16 * i));
        _mm_storeu_si128((__m128i *)(out + 16 * i), aes1(x, rk));
    }
}

AESNI static void ctr_aesni(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t n) {
    __m128i rk[11], b[8];
    load_keys(k, rk);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int q = 0; q < 8; q++) b[q] = _mm_set_epi64x(0, (long long)(c + i + q));
        AES8(b, rk);
        for (int q = 0; q < 8; q++) _mm_storeu_si128((__m128i *)(out + 16 * (i + q)), b[q]);
    }
    for (; i < n; i++)
        _mm_storeu_si128((__m128i *)(out + 16 * i), aes1(_mm_set_epi64x(0, (long long)(c + i)), rk));
}

AESNI static inline __m128i sigma128(__m128i x) {
    const __m128i hi = _mm_set_epi64x(-1, 0);
    return _mm_xor_si128(_mm_shuffle_epi32(x, 0x4E), _mm_and_si128(x, hi));
}

AESNI static void ccr_aesni(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    __m128i rk[11], b[8], s[8];
    load_keys(k, rk);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int q = 0; q < 8; q++)
            b[q] = s[q] = sigma128(_mm_loadu_si128((const __m128i *)(in + 16 * (i + q))));
        AES8(b, rk);
        for (int q = 0; q < 8; q++)
            _mm_storeu_si128((__m128i *)(out + 16 * (i + q)), _mm_xor_si128(b[q], s[q]));
    }
    for (; i < n; i++) {
        __m128i x = sigma128(_mm_loadu_si128((const __m128i *)(in + 16 * i)));
        _mm_storeu_si128((__m128i *)(out + 16 * i), _mm_xor_si128(aes1(x, rk), x));
    }
}

AESNI static void tccr_aesni(const mm_aes_key *k, uint64_t tw, const uint8_t *in, uint8_t *out,
                             size_t n) {
    __m128i rk[11], b[8], y[8];
    load_keys(k, rk);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int q = 0; q < 8; q++) b[q] = _mm_loadu_si128((const __m128i *)(in + 16 * (i + q)));
        AES8(b, rk);
        for (int q = 0; q < 8; q++) {
            y[q] = b[q];
            b[q] = _mm_xor_si128(b[q], _mm_set_epi64x(0, (long long)(tw + i + q)));
        }
        AES8(b, rk);
        for (int q = 0; q < 8; q++)
            _mm_storeu_si128((__m128i *)(out + 16 * (i + q)), _mm_xor_si128(b[q], y[q]));
    }
    for (; i < n; i++) {
        __m128i yy = aes1(_mm_loadu_si128((const __m128i *)(in + 16 * i)), rk);
        __m128i z = aes1(_mm_xor_si128(yy, _mm_set_epi64x(0, (long long)(tw + i))), rk);
        _mm_storeu_si128((__m128i *)(out + 16 * i), _mm_xor_si128(z, yy));
    }
}

/* ------------------------------------------------------------ VAES (512) */

VAES512 static inline void load_keys512(const mm_aes_key *k, __m512i rk[11]) {
    for (int r = 0; r < 11; r++)
        rk[r] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(k->rk + 16 * r)));
}

#define AES16(b, rk)                                                                      \
    do {                                                                                  \
        for (int q = 0; q < 4; q++) b[q] = _mm512_xor_si512(b[q], rk[0]);                \
        for (int r = 1; r < 10; r++)                                                      \
            for (int q = 0; q < 4; q++) b[q] = _mm512_aesenc_epi128(b[q], rk[r]);         \
        for (int q = 0; q < 4; q++) b[q] = _mm512_aesenclast_epi128(b[q], rk[10]);       \
    } while (0)

VAES512 static inline __m512i ctr512(uint64_t c) {
    return _mm512_set_epi64(0, (long long)(c + 3), 0, (long long)(c + 2), 0, (long long)(c + 1),
                            0, (long long)c);
}

VAES512 static size_t ecb_vaes(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    __m512i rk[11], b[4];
    load_keys512(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 4; q++) b[q] = _mm512_loadu_si512(in + 16 * (i + 4 * q));
        AES16(b, rk);
        for (int q = 0; q < 4; q++) _mm512_storeu_si512(out + 16 * (i + 4 * q), b[q]);
    }
    return i;
}

VAES512 static size_t ctr_vaes(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t n) {
    __m512i rk[11], b[4];
    load_keys512(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 4; q++) b[q] = ctr512(c + i + 4 * q);
        AES16(b, rk);
        for (int q = 0; q < 4; q++) _mm512_storeu_si512(out + 16 * (i + 4 * q), b[q]);
    }
    return i;
}

VAES512 static size_t ccr_vaes(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    __m512i rk[11], b[4], s[4];
    const __m512i hi = _mm512_set_epi64(-1, 0, -1, 0, -1, 0, -1, 0);
    load_keys512(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 4; q++) {
            __m512i x = _mm512_loadu_si512(in + 16 * (i + 4 * q));
            b[q] = s[q] = _mm512_xor_si512(_mm512_shuffle_epi32(x, (_MM_PERM_ENUM)0x4E),
                                           _mm512_and_si512(x, hi));
        }
        AES16(b, rk);
        for (int q = 0; q < 4; q++)
            _mm512_storeu_si512(out + 16 * (i + 4 * q), _mm512_xor_si512(b[q], s[q]));
    }
    return i;
}

VAES512 static size_t tccr_vaes(const mm_aes_key *k, uint64_t tw, const uint8_t *in,
                                uint8_t *out, size_t n) {
    __m512i rk[11], b[4], y[4];
    load_keys512(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 4; q++) b[q] = _mm512_loadu_si512(in + 16 * (i + 4 * q));
        AES16(b, rk);
        for (int q = 0; q < 4; q++) {
            y[q] = b[q];
            b[q] = _mm512_xor_si512(b[q], ctr512(tw + i + 4 * q));
        }
        AES16(b, rk);
        for (int q = 0; q < 4; q++)
            _mm512_storeu_si512(out + 16 * (i + 4 * q), _mm512_xor_si512(b[q], y[q]));
    }
    return i;
}

/* --------------------------------------------------------------- dispatch */

void mm_aes128_ecb(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, int path) {
    path = mm_resolve_path(path);
    size_t done = 0;
    if (path == MM_PATH_PORTABLE) {
        ecb_portable(k, in, out, n);
        return;
    }
    if (path == MM_PATH_VAES) done = ecb_vaes(k, in, out, n);
    ecb_aesni(k, in + 16 * done, out + 16 * done, n - done);
}

void mm_aes128_ctr(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t n, int path) {
    path = mm_resolve_path(path);
    size_t done = 0;
    if (path == MM_PATH_PORTABLE) {
        for (size_t i = 0; i < n; i++) {
            uint8_t b[16];
            ctr_block(c + i, b);
            mm_aes_block_portable(k, b, out + 16 * i);
        }
        return;
    }
    if (path == MM_PATH_VAES) done = ctr_vaes(k, c, out, n);
    else if (mm_cpu_features() & MM_CPU_VAES256) done = mm_ctr_vaes256(k, c, out, n);
    ctr_aesni(k, c + done, out + 16 * done, n - done);
}

uint64_t mm_prg_fill(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t nbytes, int path) {
    size_t full = nbytes / 16, rest = nbytes % 16;
    mm_aes128_ctr(k, c, out, full, path);
    if (rest) {
        uint8_t last[16];
        mm_aes128_ctr(k, c + full, last, 1, path);
        memcpy(out + 16 * full, last, rest);
        return full + 1;
    }
    return full;
}

void mm_ccr_hash(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n, int path) {
    path = mm_resolve_path(path);
    size_t done = 0;
    if (path == MM_PATH_PORTABLE) {
        ccr_portable(k, in, out, n);
        return;
    }
    if (path == MM_PATH_VAES) done = ccr_vaes(k, in, out, n);
    else if (mm_cpu_features() & MM_CPU_VAES256) done = mm_ccr_vaes256(k, in, out, n);
    ccr_aesni(k, in + 16 * done, out + 16 * done, n - done);
}

void mm_tccr_hash(const mm_aes_key *k, uint64_t tw, const uint8_t *in, uint8_t *out, size_t n,
                  int path) {
    path = mm_resolve_path(path);
    size_t done = 0;
    if (path == MM_PATH_PORTABLE) {
        tccr_portable(k, tw, in, out, n);
        return;
    }
    if (path == MM_PATH_VAES) done = tccr_vaes(k, tw, in, out, n);
    else if (mm_cpu_features() & MM_CPU_VAES256) done = mm_tccr_vaes256(k, tw, in, out, n);
    tccr_aesni(k, tw + done, in + 16 * done, out + 16 * done, n - done);
}
