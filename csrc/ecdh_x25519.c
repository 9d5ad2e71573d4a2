/* Batched X25519 for ECDH PSI on two libraries (see meshmpc/ecdh.h).
 *
 * Why here and not in Python: ECDH PSI of 2^20 x 2^20 rows is 4 * 2^20 scalar
 * multiplications; one Python call per point (cryptography's X25519 objects)
 * cost as much as the multiplication, and Intel's multi-buffer X25519 needs
 * eight points per call. The caller runs one batch per chunk on a worker
 * thread (the GIL is released), so this file has no threads of its own.
 */
#include "meshmpc/ecdh.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define MB_LANES 8
#define MBX_ALGO_X25519 4 /* enum MBX_ALGO in crypto_mb/cpu_features.h */
#define MBX_WIDTH_MB8 8

typedef uint32_t (*mb8_fn)(uint8_t *const out[8], const uint8_t *const key[8],
                           const uint8_t *const pub[8]);
typedef uint64_t (*features_fn)(void);
typedef int (*applicable_fn)(uint64_t);
typedef uint64_t (*algo_info_fn)(int);

static mb8_fn g_mb8 = NULL;

int mm_x25519_mb_ready(void) { return g_mb8 != NULL; }

static int cpu_has_ifma(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512ifma") &&
           __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("bmi2");
#else
    return 0;
#endif
}

static int refuse(char *why, size_t whylen, const char *fmt, const char *arg) {
    if (whylen) snprintf(why, whylen, fmt, arg ? arg : "");
    return 0;
}

int mm_x25519_mb_load(const char *const *paths, size_t n, int check_cpu, char *why,
                      size_t whylen) {
    if (whylen) why[0] = '\0';
    if (g_mb8) return 1;
    if (check_cpu && !cpu_has_ifma())
        return refuse(why, whylen, "this CPU has no AVX-512 IFMA/VBMI2%s", NULL);
    if (n == 0) return refuse(why, whylen, "no libcrypto_mb path given%s", NULL);
    for (size_t i = 0; i + 1 < n; i++)
        if (!dlopen(paths[i], RTLD_NOW | RTLD_GLOBAL))
            return refuse(why, whylen, "cannot load %s", dlerror());
    void *lib = dlopen(paths[n - 1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return refuse(why, whylen, "cannot load %s", dlerror());
    mb8_fn mb8 = (mb8_fn)dlsym(lib, "mbx_x25519_mb8");
    features_fn features = (features_fn)dlsym(lib, "mbx_get_cpu_features");
    applicable_fn applicable = (applicable_fn)dlsym(lib, "mbx_is_crypto_mb_applicable");
    algo_info_fn info = (algo_info_fn)dlsym(lib, "mbx_get_algo_info");
    if (!mb8 || !features || !applicable || !info)
        return refuse(why, whylen, "%s lacks mbx_x25519_mb8 or its CPU queries", paths[n - 1]);
    if (!applicable(features()))
        return refuse(why, whylen, "libcrypto_mb says it is not applicable on this CPU "
                      "(mbx_is_crypto_mb_applicable)%s", NULL);
    if (!(info(MBX_ALGO_X25519) & MBX_WIDTH_MB8))
        return refuse(why, whylen, "libcrypto_mb has no 8-way X25519 for this CPU "
                      "(mbx_get_algo_info)%s", NULL);
    g_mb8 = mb8;
    return 1;
}

/* RFC 7748 decodeUCoordinate: clear bit 255, then reduce mod p = 2^255 - 19
 * (u >= p only for the 19 values p .. 2^255 - 1). Both libraries compute
 * X25519 of the same residue; this makes sure neither sees a different one. */
static void canonical_u(uint8_t u[32]) {
    u[31] &= 0x7f;
    if (u[31] != 0x7f || u[0] < 0xed) return;
    for (int i = 1; i < 31; i++)
        if (u[i] != 0xff) return;
    u[0] = (uint8_t)(u[0] - 0xed);
    memset(u + 1, 0, 31);
}

static int all_zero(const uint8_t *q) {
    uint8_t acc = 0;
    for (int i = 0; i < 32; i++) acc |= q[i];
    return acc == 0;
}

/* Fill lanes with the next m <= 8 inputs as canonical u-coordinates. */
static int load_lanes(const mm_ecdh_fns *f, const uint8_t *in, size_t m,
                      const uint8_t *personal, uint8_t u[MB_LANES][32]) {
    for (size_t j = 0; j < m; j++) {
        if (personal) {
            if (f->blake2b(u[j], 32, in + 16 * j, 16, NULL, 0, NULL, personal) != 0) return -1;
        } else {
            memcpy(u[j], in + 32 * j, 32);
        }
        canonical_u(u[j]);
    }
    return 0;
}

int64_t mm_x25519_batch(const mm_ecdh_fns *f, int path, const uint8_t key[32],
                        const uint8_t *in, size_t n, const uint8_t *personal, uint8_t *out) {
    if (path == MM_X25519_MB8 ? !g_mb8 : path != MM_X25519_SODIUM) return -2;
    uint8_t k[32], u[MB_LANES][32], q[MB_LANES][32];
    memcpy(k, key, 32);
    k[0] &= 248, k[31] &= 127, k[31] |= 64; /* RFC 7748 decodeScalar25519 */
    const uint8_t *keys[MB_LANES];
    uint8_t *outs[MB_LANES];
    const uint8_t *pubs[MB_LANES];
    for (int j = 0; j < MB_LANES; j++) keys[j] = k, outs[j] = q[j], pubs[j] = u[j];
    int64_t failed = -1;
    size_t step = personal ? 16 : 32;
    for (size_t i = 0; i < n && failed < 0; i += MB_LANES) {
        size_t m = n - i < MB_LANES ? n - i : MB_LANES;
        if (load_lanes(f, in + step * i, m, personal, u) != 0) return (int64_t)i;
        for (size_t j = m; j < MB_LANES; j++) memcpy(u[j], u[0], 32); /* idle lanes */
        uint32_t status = 0;
        if (path == MM_X25519_MB8)
            status = g_mb8(outs, keys, pubs);
        else
            for (size_t j = 0; j < m; j++)
                if (f->scalarmult(q[j], k, u[j]) != 0) status |= 0xFu << (4 * j);
        for (size_t j = 0; j < m; j++) {
            if (((status >> (4 * j)) & 0xF) || all_zero(q[j])) {
                failed = (int64_t)(i + j);
                break;
            }
            memcpy(out + 32 * (i + j), q[j], 32);
        }
    }
    explicit_bzero(k, sizeof k); /* the secret exponent: not left on the stack */
    return failed;
}
