/* meshmpc wire kernels: checks on bytes received from the network.
 *
 * wire_msgpack_check walks a buffer of concatenated msgpack objects (a BATCH
 * record or a packed message) without building anything, and rejects input
 * whose containers announce more elements than the remaining bytes could
 * hold. msgpack decoders preallocate a container from its announced count, so
 * without this check a few kilobytes of nested array headers (each claiming
 * 65,535 elements) make the decoder allocate tens of megabytes; with it, the
 * sum of the elements every open container still expects never exceeds the
 * bytes left, which bounds the decoder's preallocation by the input size.
 */
#ifndef MESHMPC_WIRE_H
#define MESHMPC_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Maximum container nesting accepted (msgpack-python's own limit is 1024). */
#define WIRE_MSGPACK_MAX_DEPTH 512

/* Returns the number of top-level objects in p[0..n) when every object is
 * complete and well formed under the rule above, or -(1 + offset) of the first
 * offending byte (a reserved byte 0xc1, a truncated object, an over-announcing
 * container, or nesting deeper than WIRE_MSGPACK_MAX_DEPTH). With batch != 0,
 * every top-level object must also be a message item [tag, kind, payload]: a
 * 3-element array whose first element is a string and second a positive
 * fixint <= max_kind. */
int64_t wire_msgpack_check(const uint8_t *p, size_t n, int batch, int max_kind);

#endif
