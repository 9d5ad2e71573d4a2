/* Structural check of msgpack input from the network; see wire.h. */
#include "meshmpc/wire.h"

#include <string.h>

static uint64_t be(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
    return v;
}

/* Decode the header at p[pos]: sets *skip (payload bytes after the header),
 * *count (elements a container announces, 0 otherwise). Returns the header
 * length, or 0 when the header is reserved or truncated. */
static size_t header(const uint8_t *p, size_t n, size_t pos, uint64_t *skip, uint64_t *count) {
    uint8_t b = p[pos];
    size_t left = n - pos;
    *skip = 0;
    *count = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return 1;
    if (b >= 0x80 && b <= 0x8f) { *count = 2u * (b & 0x0f); return 1; }
    if (b >= 0x90 && b <= 0x9f) { *count = b & 0x0f; return 1; }
    if (b >= 0xa0 && b <= 0xbf) { *skip = b & 0x1f; return 1; }
    static const uint8_t fixed[] = {
        /* 0xca..0xd3: float32, float64, uint8..64, int8..64 */
        4, 8, 1, 2, 4, 8, 1, 2, 4, 8,
        /* 0xd4..0xd8: fixext 1, 2, 4, 8, 16 (plus the type byte) */
        2, 3, 5, 9, 17,
    };
    if (b >= 0xca && b <= 0xd8) { *skip = fixed[b - 0xca]; return 1; }
    int lenbytes = 0, ext = 0, container = 0, pairs = 0;
    switch (b) {
    case 0xc4: case 0xd9: lenbytes = 1; break;            /* bin8, str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;            /* bin16, str16 */
    case 0xc6: case 0xdb: lenbytes = 4; break;            /* bin32, str32 */
    case 0xc7: lenbytes = 1; ext = 1; break;              /* ext8 */
    case 0xc8: lenbytes = 2; ext = 1; break;              /* ext16 */
    case 0xc9: lenbytes = 4; ext = 1; break;              /* ext32 */
    case 0xdc: lenbytes = 2; container = 1; break;        /* array16 */
    case 0xdd: lenbytes = 4; container = 1; break;        /* array32 */
    case 0xde: lenbytes = 2; container = 1; pairs = 1; break; /* map16 */
    case 0xdf: lenbytes = 4; container = 1; pairs = 1; break; /* map32 */
    default: return 0;                                     /* 0xc1: reserved */
    }
    if (left < (size_t)(1 + lenbytes)) return 0;
    uint64_t v = be(p + pos + 1, lenbytes);
    if (container) *count = pairs ? 2 * v : v;
    else *skip = v + (uint64_t)ext;
    return 1 + (size_t)lenbytes;
}

static int is_str(uint8_t b) {
    return (b >= 0xa0 && b <= 0xbf) || b == 0xd9 || b == 0xda || b == 0xdb;
}

/* The batch rule for the object starting with byte b (see wire.h). */
static int item_ok(uint8_t b, int depth, const uint64_t *remaining, int max_kind) {
    if (depth == 0) return b == 0x93;
    if (depth == 1) {
        uint64_t slot = 3 - remaining[0];
        if (slot == 0) return is_str(b);
        if (slot == 1) return b <= (uint8_t)max_kind;
    }
    return 1;
}

int64_t wire_msgpack_check(const uint8_t *p, size_t n, int batch, int max_kind) {
    uint64_t remaining[WIRE_MSGPACK_MAX_DEPTH];
    int depth = 0;
    uint64_t expected = 0; /* elements all open containers still expect */
    size_t pos = 0;
    int64_t objects = 0;
    while (pos < n) {
        uint64_t skip, count;
        if (batch && !item_ok(p[pos], depth, remaining, max_kind)) return -(int64_t)(1 + pos);
        size_t h = header(p, n, pos, &skip, &count);
        if (h == 0) return -(int64_t)(1 + pos);
        size_t start = pos;
        pos += h;
        if (skip > n - pos) return -(int64_t)(1 + start);
        pos += (size_t)skip;
        if (depth > 0) {                      /* this object fills one slot */
            remaining[depth - 1]--;
            expected--;
        }
        if (count > 0) {
            if (depth == WIRE_MSGPACK_MAX_DEPTH || count > n - pos - expected)
                return -(int64_t)(1 + start);
            remaining[depth++] = count;
            expected += count;
            continue;
        }
        while (depth > 0 && remaining[depth - 1] == 0) depth--;
        if (depth == 0) objects++;
    }
    if (depth > 0) return -(int64_t)(1 + n);  /* truncated inside a container */
    return objects;
}
