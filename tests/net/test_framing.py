"""Record framing and message codec: any slicing of the stream, any object."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshmpc.net import codec, framing
from meshmpc.net.errors import FrameTooLargeError, MalformedMessageError

bodies = st.lists(st.binary(max_size=3000), min_size=1, max_size=20)


def _stream(records: list[bytes]) -> bytes:
    return b"".join(
        framing.pack_header(len(body), i, framing.BATCH) + body for i, body in enumerate(records)
    )


@given(bodies)
def test_reader_fed_one_byte_at_a_time(records: list[bytes]) -> None:
    reader = framing.RecordReader()
    stream = _stream(records)
    out = []
    for i in range(len(stream)):
        out += reader.feed(stream[i : i + 1])
    assert [body for _h, _c, _t, body in out] == records
    assert [counter for _h, counter, _t, _b in out] == list(range(len(records)))
    assert not reader.partial


@given(bodies, st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=50))
def test_reader_fed_random_slices(records: list[bytes], cuts: list[int]) -> None:
    reader = framing.RecordReader()
    stream = _stream(records)
    out, pos, i = [], 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        out += reader.feed(stream[pos : pos + size])
        pos, i = pos + size, i + 1
    assert [body for *_rest, body in out] == records


def test_reader_handles_records_larger_than_its_buffer() -> None:
    body = bytes(range(256)) * 20_000  # 5 MB, above the initial 1 MiB buffer
    reader = framing.RecordReader()
    out = reader.feed(_stream([body, b"tail"]))
    assert [r[3] for r in out] == [body, b"tail"]


def test_reader_refuses_oversize_frame_before_buffering_it() -> None:
    reader = framing.RecordReader(max_frame=1000, peer="gov")
    with pytest.raises(FrameTooLargeError, match="gov.*1001 bytes exceeds the limit of 1000"):
        reader.feed(framing.pack_header(1001, 0, framing.BATCH))


def test_reader_reports_a_partial_record() -> None:
    reader = framing.RecordReader()
    reader.feed(_stream([b"abcdef"])[:-2])
    assert reader.partial


leaves = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(
    allow_nan=False
) | st.text(max_size=20) | st.binary(max_size=20)
objects = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=5),
    max_leaves=20,
)


@given(objects)
def test_codec_round_trips_msgpack_objects(obj: object) -> None:
    assert codec.unpack(codec.pack(obj)) == obj


@settings(max_examples=30)
@given(
    st.sampled_from(["<u8", "<i4", "<f8", "|u1", "|b1", "<u4"]),
    st.lists(st.integers(0, 5), min_size=0, max_size=3),
)
def test_codec_round_trips_nested_arrays(dtype: str, shape: list[int]) -> None:
    arr = np.arange(int(np.prod(shape)) if shape else 1).astype(dtype).reshape(shape)
    back = codec.unpack(codec.pack({"x": [arr, 1]}))
    assert back["x"][0].dtype == arr.dtype and back["x"][0].shape == arr.shape
    assert np.array_equal(back["x"][0], arr)


def test_codec_rejects_unsendable_objects() -> None:
    with pytest.raises(TypeError, match="cannot send object of type object"):
        codec.pack(object())


def test_raw_array_header_is_checked() -> None:
    with pytest.raises(MalformedMessageError, match="inconsistent"):
        codec.check_raw_array_header(["<u8", [10], 79], max_bytes=1 << 20)
    with pytest.raises(MalformedMessageError, match="exceeds the message limit"):
        codec.check_raw_array_header(["<u8", [1 << 20], 8 << 20], max_bytes=1 << 20)
    with pytest.raises(MalformedMessageError, match="bad dtype"):
        codec.check_raw_array_header(["not-a-dtype", [1], 1], max_bytes=1 << 20)
    for dtype in ["O", "V8", "<U4", "(4,)u1"]:
        with pytest.raises(MalformedMessageError):
            codec.check_raw_array_header([dtype, [1], 8], max_bytes=1 << 20)
    with pytest.raises(MalformedMessageError, match="inconsistent"):
        codec.check_raw_array_header(["<u8", [0], 0], max_bytes=1 << 20)


# Wire version 2 (issue #10): HELLO changed from msgpack to this fixed layout.
# Wire version 3 (issue #19): a suite byte (0 default, 1 gm) after the version.
HELLO_V2_VECTOR = (
    "4d4d5043" "03" "00" + bytes(range(32)).hex() + bytes(range(32, 64)).hex() + "04"
    + "62616e6b"
)


def test_hello_layout_known_answer() -> None:
    from meshmpc.net.secure import WIRE_VERSION, pack_hello, parse_hello

    assert WIRE_VERSION == 3
    body = pack_hello("bank", bytes(range(32)), bytes(range(32, 64)))
    assert body.hex() == HELLO_V2_VECTOR
    hello = parse_hello(body)
    assert (hello.party, hello.fingerprint, hello.ephemeral_public, hello.suite) == (
        "bank", bytes(range(32)), bytes(range(32, 64)), "default")


@pytest.mark.parametrize(
    "body",
    [b"", b"MMPC", bytes.fromhex(HELLO_V2_VECTOR)[:-1], bytes.fromhex(HELLO_V2_VECTOR) + b"x",
     b"MMPC\x01" + bytes(69), b"XXXX" + bytes.fromhex(HELLO_V2_VECTOR)[4:],
     bytes.fromhex(HELLO_V2_VECTOR)[:70] + b"\x00", b"MMPC\x02" + bytes(70),
     b"MMPC\x03\x07" + bytes(69)],
    ids=["empty", "magic-only", "short", "long", "v1", "magic", "no-id", "v2", "suite"],
)
def test_malformed_hello_is_refused(body: bytes) -> None:
    from meshmpc.net.errors import ProtocolMismatchError
    from meshmpc.net.secure import parse_hello

    with pytest.raises(ProtocolMismatchError):
        parse_hello(body)


def test_nested_announcements_cannot_inflate_the_decoder() -> None:
    import tracemalloc

    data = b"\xdc\xff\xff" * 21_845  # 64 KiB of array headers, each claiming 65,535 items
    tracemalloc.start()
    with pytest.raises(MalformedMessageError, match="over-announcing"):
        codec.unpack(data)
    with pytest.raises(MalformedMessageError):
        list(codec.unpack_stream(data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20  # was ~82 MB before the structural check
