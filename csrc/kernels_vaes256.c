/* AES-128 CTR, the circular and the tweakable CR hashes on 256-bit VAES (AVX2 + VAES, no AVX-512),
 * as on AMD Zen 3: two blocks per instruction and 16 blocks in flight, twice the
 * blocks per cycle of 128-bit AES-NI there. Same output as the other paths; the
 * dispatch in kernels_aes.c sends the bulk here under MM_PATH_AESNI when the CPU
 * has VAES but no AVX-512, and the tail (fewer than 16 blocks) to AES-NI. */
#include <immintrin.h>

#include "kernels_internal.h"
#include "meshmpc/kernels.h"

#define VAES256 __attribute__((target("aes,vaes,avx2")))

VAES256 static inline void load_keys256(const mm_aes_key *k, __m256i rk[11]) {
    for (int r = 0; r < 11; r++)
        rk[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(k->rk + 16 * r)));
}

#define AES16x256(b, rk)                                                                  \
    do {                                                                                  \
        for (int q = 0; q < 8; q++) b[q] = _mm256_xor_si256(b[q], rk[0]);                \
        for (int r = 1; r < 10; r++)                                                      \
            for (int q = 0; q < 8; q++) b[q] = _mm256_aesenc_epi128(b[q], rk[r]);         \
        for (int q = 0; q < 8; q++) b[q] = _mm256_aesenclast_epi128(b[q], rk[10]);       \
    } while (0)

VAES256 static inline __m256i ctr256(uint64_t c) {
    return _mm256_set_epi64x(0, (long long)(c + 1), 0, (long long)c);
}

VAES256 size_t mm_ctr_vaes256(const mm_aes_key *k, uint64_t c, uint8_t *out, size_t n) {
    __m256i rk[11], b[8];
    load_keys256(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 8; q++) b[q] = ctr256(c + i + 2 * q);
        AES16x256(b, rk);
        for (int q = 0; q < 8; q++) _mm256_storeu_si256((__m256i *)(out + 16 * (i + 2 * q)), b[q]);
    }
    return i;
}

VAES256 size_t mm_tccr_vaes256(const mm_aes_key *k, uint64_t tw, const uint8_t *in,
                               uint8_t *out, size_t n) {
    __m256i rk[11], b[8], y[8];
    load_keys256(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 8; q++)
            b[q] = _mm256_loadu_si256((const __m256i *)(in + 16 * (i + 2 * q)));
        AES16x256(b, rk);
        for (int q = 0; q < 8; q++) {
            y[q] = b[q];
            b[q] = _mm256_xor_si256(b[q], ctr256(tw + i + 2 * q));
        }
        AES16x256(b, rk);
        for (int q = 0; q < 8; q++)
            _mm256_storeu_si256((__m256i *)(out + 16 * (i + 2 * q)), _mm256_xor_si256(b[q], y[q]));
    }
    return i;
}

VAES256 size_t mm_ccr_vaes256(const mm_aes_key *k, const uint8_t *in, uint8_t *out, size_t n) {
    __m256i rk[11], b[8], s[8];
    const __m256i hi = _mm256_set_epi64x(-1, 0, -1, 0);
    load_keys256(k, rk);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int q = 0; q < 8; q++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(in + 16 * (i + 2 * q)));
            /* sigma per 128-bit lane: high = xl ^ xr, low = xl */
            b[q] = s[q] = _mm256_xor_si256(_mm256_shuffle_epi32(x, 0x4E), _mm256_and_si256(x, hi));
        }
        AES16x256(b, rk);
        for (int q = 0; q < 8; q++)
            _mm256_storeu_si256((__m256i *)(out + 16 * (i + 2 * q)), _mm256_xor_si256(b[q], s[q]));
    }
    return i;
}
