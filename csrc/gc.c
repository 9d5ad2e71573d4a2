/* Half-gates garbling and evaluation of AND-gate layers (see meshmpc/gc.h).
 *
 * Garbler, gate i with zero-labels A0, B0, pa = colour(A0), pb = colour(B0):
 *   T_G = H(j, A0) ^ H(j, A0 ^ D) ^ pb D        W_G = H(j, A0) ^ pa T_G
 *   T_E = H(j', B0) ^ H(j', B0 ^ D) ^ A0         W_E = H(j', B0) ^ pb (T_E ^ A0)
 *   C0 = W_G ^ W_E
 * Evaluator with active labels A, B, sa = colour(A), sb = colour(B):
 *   C = H(j, A) ^ sa T_G ^ H(j', B) ^ sb (T_E ^ A)
 * where j = tweak + i and j' = tweak + n + i. Hashing runs in the C core's
 * batched fixed-key AES; the rest is word-wise XOR with masks.
 */
#include "meshmpc/gc.h"

#include <string.h>

static inline unsigned colour_of(const uint8_t *label, unsigned color) {
    return (label[color >> 3] >> (color & 7)) & 1u;
}

static inline void xor_into(uint64_t *dst, const uint64_t *src, uint64_t mask) {
    dst[0] ^= src[0] & mask;
    dst[1] ^= src[1] & mask;
}

void gc_colors(const uint8_t *labels, unsigned color, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)colour_of(labels + 16 * i, color);
}

void gc_garble_and(const uint8_t *round_keys, uint64_t tweak, const uint8_t *a0,
                   const uint8_t *b0,
                   const uint8_t delta[16], unsigned color, uint8_t *c0, uint8_t *tables,
                   uint8_t *scratch, size_t n) {
    const mm_aes_key *k = (const mm_aes_key *)round_keys;
    uint64_t d[2];
    memcpy(d, delta, 16);
    uint8_t *ha0 = scratch, *ha1 = scratch + 16 * n, *hb0 = scratch + 32 * n,
            *hb1 = scratch + 48 * n;
    for (size_t i = 0; i < n; i++) {
        uint64_t t[2];
        memcpy(t, a0 + 16 * i, 16);
        t[0] ^= d[0];
        t[1] ^= d[1];
        memcpy(ha1 + 16 * i, t, 16);
        memcpy(t, b0 + 16 * i, 16);
        t[0] ^= d[0];
        t[1] ^= d[1];
        memcpy(hb1 + 16 * i, t, 16);
    }
    mm_tccr_hash(k, tweak, a0, ha0, n, MM_PATH_AUTO);
    mm_tccr_hash(k, tweak, ha1, ha1, n, MM_PATH_AUTO);
    mm_tccr_hash(k, tweak + n, b0, hb0, n, MM_PATH_AUTO);
    mm_tccr_hash(k, tweak + n, hb1, hb1, n, MM_PATH_AUTO);
    for (size_t i = 0; i < n; i++) {
        uint64_t tg[2], te[2], wg[2], we[2], a[2];
        uint64_t pa = 0 - (uint64_t)colour_of(a0 + 16 * i, color);
        uint64_t pb = 0 - (uint64_t)colour_of(b0 + 16 * i, color);
        memcpy(a, a0 + 16 * i, 16);
        memcpy(wg, ha0 + 16 * i, 16);
        memcpy(tg, ha1 + 16 * i, 16);
        tg[0] ^= wg[0];
        tg[1] ^= wg[1];
        xor_into(tg, d, pb);
        xor_into(wg, tg, pa);
        memcpy(we, hb0 + 16 * i, 16);
        memcpy(te, hb1 + 16 * i, 16);
        te[0] ^= we[0] ^ a[0];
        te[1] ^= we[1] ^ a[1];
        uint64_t ta[2] = {te[0] ^ a[0], te[1] ^ a[1]};
        xor_into(we, ta, pb);
        wg[0] ^= we[0];
        wg[1] ^= we[1];
        memcpy(c0 + 16 * i, wg, 16);
        memcpy(tables + 32 * i, tg, 16);
        memcpy(tables + 32 * i + 16, te, 16);
    }
}

void gc_eval_and(const uint8_t *round_keys, uint64_t tweak, const uint8_t *a,
                 const uint8_t *b,
                 unsigned color, const uint8_t *tables, uint8_t *c, uint8_t *scratch, size_t n) {
    const mm_aes_key *k = (const mm_aes_key *)round_keys;
    uint8_t *ha = scratch, *hb = scratch + 16 * n;
    mm_tccr_hash(k, tweak, a, ha, n, MM_PATH_AUTO);
    mm_tccr_hash(k, tweak + n, b, hb, n, MM_PATH_AUTO);
    for (size_t i = 0; i < n; i++) {
        uint64_t out[2], h[2], tg[2], te[2], al[2];
        uint64_t sa = 0 - (uint64_t)colour_of(a + 16 * i, color);
        uint64_t sb = 0 - (uint64_t)colour_of(b + 16 * i, color);
        memcpy(out, ha + 16 * i, 16);
        memcpy(h, hb + 16 * i, 16);
        memcpy(tg, tables + 32 * i, 16);
        memcpy(te, tables + 32 * i + 16, 16);
        memcpy(al, a + 16 * i, 16);
        out[0] ^= h[0];
        out[1] ^= h[1];
        xor_into(out, tg, sa);
        te[0] ^= al[0];
        te[1] ^= al[1];
        xor_into(out, te, sb);
        memcpy(c + 16 * i, out, 16);
    }
}
