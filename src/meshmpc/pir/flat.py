"""Lists of byte strings as zero-copy arrow arrays, for the C kernels.

The hashing and sealing kernels take (data, offsets); a list of a million
bytes objects reaches them fastest as one ``b"".join`` and the lengths by
``map(len, ...)`` (both C loops), about 3x faster than a per-item comprehension.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa


def as_arrow(items: Any) -> Any:
    """A ``pa.LargeBinaryArray`` over ``items`` when it is a list or tuple of bytes;
    anything else (arrow arrays, numpy rows, mixed lists) is returned unchanged."""
    if not isinstance(items, list | tuple) or not all(type(x) is bytes for x in items):
        return items
    n = len(items)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, items), np.int64, n), out=offsets[1:])
    data = b"".join(items)
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), n,
                                            [None, pa.py_buffer(offsets), pa.py_buffer(data)])
