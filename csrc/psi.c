/* Hash-table kernels for private set intersection; see meshmpc/psi.h. */
#include "meshmpc/psi.h"

#include <stdlib.h>
#include <string.h>

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Open addressing with linear probing; slots hold row index + 1 (0 = empty). */
typedef struct {
    int64_t *slots;
    uint64_t mask;
} psi_table;

static int table_init(psi_table *t, size_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n + 16)
        cap <<= 1;
    t->slots = (int64_t *)calloc(cap, sizeof(int64_t));
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

/* Index of the first stored row equal to v, or -1. */
static int64_t table_find(const psi_table *t, const uint8_t *base, size_t width,
                          const uint8_t *v)
{
    uint64_t h = load64(v) & t->mask;
    for (;;) {
        int64_t s = t->slots[h];
        if (s == 0)
            return -1;
        if (memcmp(base + (size_t)(s - 1) * width, v, width) == 0)
            return s - 1;
        h = (h + 1) & t->mask;
    }
}

/* Insert row i unless an equal row is stored; return the stored row or i. */
static int64_t table_insert(psi_table *t, const uint8_t *base, size_t width, int64_t i)
{
    const uint8_t *v = base + (size_t)i * width;
    uint64_t h = load64(v) & t->mask;
    for (;;) {
        int64_t s = t->slots[h];
        if (s == 0) {
            t->slots[h] = i + 1;
            return i;
        }
        if (memcmp(base + (size_t)(s - 1) * width, v, width) == 0)
            return s - 1;
        h = (h + 1) & t->mask;
    }
}

/* Slots of the row PREFETCH_AHEAD rows on are fetched while this one probes: the
 * table is far larger than the cache, and overlapping the misses roughly halves the
 * time of a 10^6-row match (the results do not change). */
#define PREFETCH_AHEAD 16

static inline void prefetch_slot(const psi_table *t, const uint8_t *v)
{
    __builtin_prefetch(&t->slots[load64(v) & t->mask]);
}

int64_t psi_match(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, size_t width,
                  int64_t *out)
{
    psi_table t;
    int64_t hits = 0;
    if (table_init(&t, nb) != 0)
        return -1;
    for (size_t j = 0; j < nb; j++) {
        if (j + PREFETCH_AHEAD < nb)
            prefetch_slot(&t, b + (j + PREFETCH_AHEAD) * width);
        table_insert(&t, b, width, (int64_t)j);
    }
    for (size_t i = 0; i < na; i++) {
        if (i + PREFETCH_AHEAD < na)
            prefetch_slot(&t, a + (i + PREFETCH_AHEAD) * width);
        out[i] = table_find(&t, b, width, a + i * width);
        hits += out[i] >= 0;
    }
    free(t.slots);
    return hits;
}

int64_t psi_first_index(const uint8_t *v, size_t n, size_t width, int64_t *out)
{
    psi_table t;
    int64_t repeats = 0;
    if (table_init(&t, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (i + PREFETCH_AHEAD < n)
            prefetch_slot(&t, v + (i + PREFETCH_AHEAD) * width);
        out[i] = table_insert(&t, v, width, (int64_t)i);
        repeats += out[i] != (int64_t)i;
    }
    free(t.slots);
    return repeats;
}

uint64_t psi_cuckoo_bin(const uint8_t *x, int j, uint64_t nbins)
{
    return ((uint64_t)load32(x + 4 * j) * nbins) >> 32;
}

int64_t psi_cuckoo_insert(const uint8_t *items, size_t n, uint64_t nbins, size_t max_kicks,
                          int64_t *table, uint8_t *which, int64_t *stash)
{
    int64_t nstash = 0;
    uint64_t walk = 0x9E3779B97F4A7C15ULL; /* xorshift state: eviction choices, not secret */
    for (uint64_t b = 0; b < nbins; b++) {
        table[b] = -1;
        which[b] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t cur = (int64_t)i;
        size_t kicks = 0;
        for (;;) {
            const uint8_t *x = items + (size_t)cur * 16;
            int placed = 0;
            for (int j = 0; j < 3 && !placed; j++) {
                uint64_t b = psi_cuckoo_bin(x, j, nbins);
                if (table[b] < 0) {
                    table[b] = cur;
                    which[b] = (uint8_t)j;
                    placed = 1;
                }
            }
            if (placed)
                break;
            if (kicks++ >= max_kicks) {
                stash[nstash++] = cur;
                break;
            }
            /* Random walk: evict the occupant of one of cur's bins, then place it. */
            walk ^= walk << 13;
            walk ^= walk >> 7;
            walk ^= walk << 17;
            int h = (int)(walk % 3);
            uint64_t b = psi_cuckoo_bin(x, h, nbins);
            int64_t evicted = table[b];
            table[b] = cur;
            which[b] = (uint8_t)h;
            cur = evicted;
        }
    }
    return nstash;
}

void psi_permutation(const uint64_t *rand, int64_t n, int64_t *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(((unsigned __int128)rand[i] * (uint64_t)(i + 1)) >> 64);
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}
