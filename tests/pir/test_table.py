"""The keyword table: sealing, geometry, input checks, batch capacity."""

import numpy as np
import pytest

from meshmpc.pir import table
from meshmpc.pir.errors import PirInputError, PirProtocolError


def test_seal_unseal_roundtrip_and_padding() -> None:
    key = bytes(range(16))
    sealed = table.seal(key, b"hello", 32)
    assert len(sealed) == table.NONCE_BYTES + table.LEN_BYTES + 32
    assert b"hello" not in sealed
    assert table.unseal(key, sealed) == b"hello"
    assert table.unseal(bytes(16), sealed) != b"hello"
    again = table.seal(key, b"hello", 32)  # fresh nonce: no keystream is ever reused
    assert again[: table.NONCE_BYTES] != sealed[: table.NONCE_BYTES] and again != sealed
    assert table.unseal(key, again) == b"hello"


def test_duplicate_server_keys_name_both_rows() -> None:
    with pytest.raises(PirInputError, match=r"rows 0 and 2"):
        table.build_database([b"a", b"b", b"a"], [b"1", b"2", b"3"], 8, key_name="credit_code")


def test_overlong_record_names_the_row() -> None:
    with pytest.raises(PirInputError, match=r"row 1 .*9 bytes exceeds .* 8"):
        table.build_database([b"a", b"b"], [b"1", b"x" * 9], 8)


def test_bucket_capacity_bounds_overflow() -> None:
    assert table.bucket_capacity(1, 16) == 1
    assert table.bucket_capacity(7, 1) == 7
    t = table.bucket_capacity(1000, 16)
    assert 1000 / 16 < t < 1000
    # an empirical check: the maximum load of random batches stays below t
    rng = np.random.default_rng(5)
    loads = [np.bincount(rng.integers(0, 16, 1000), minlength=16).max() for _ in range(200)]
    assert max(loads) <= t


def test_table_holds_every_record_in_one_of_its_columns() -> None:
    keys = [b"k%d" % i for i in range(500)]
    db = table.build_database(keys, [b"r%d" % i for i in range(500)], 6, buckets=2)
    p = db.params
    assert db.db.shape == (p.rows, p.columns) and db.hint.shape == (p.rows, 1024)
    mats = np.frombuffer(
        b"".join(table.material(f, p.salt) for f in db.oprf_key.evaluate(keys)), np.uint8
    ).reshape(len(keys), -1)
    pos = table.place(mats, p.buckets, p.columns)
    for i in range(0, 500, 37):
        rows = db.bucket_rows(int(pos.bucket[i]))
        found = []
        for col in {int(pos.col1[i]), int(pos.col2[i])}:  # the two choices may coincide
            slots = rows[:, col].reshape(p.slots, p.slot_bytes)
            found += [s for s in slots if (s[:8] == pos.tags[i]).all()]
        assert len(found) == 1
        assert table.unseal(pos.keys[i].tobytes(), found[0][8:].tobytes()) == b"r%d" % i


def test_params_from_wire_rejects_wrong_lwe_parameters() -> None:
    db = table.build_database([b"a"], [b"1"], 4)
    wire = db.params.to_wire()
    table.PirParams.from_wire(wire, "fin")
    with pytest.raises(PirProtocolError, match="party 'fin' uses LWE n=512"):
        table.PirParams.from_wire({**wire, "lwe_n": 512}, "fin")
    with pytest.raises(PirProtocolError, match="'salt' is not 16 bytes"):
        table.PirParams.from_wire({**wire, "salt": b"x"}, "fin")
    with pytest.raises(PirProtocolError, match="without"):
        table.PirParams.from_wire({"version": "x"}, "fin")


def test_tables_of_another_format_are_rejected_not_misread() -> None:
    db = table.build_database([b"a"], [b"1"], 4)
    wire = db.params.to_wire()
    assert wire["format"] == table.FORMAT
    old = {k: v for k, v in wire.items() if k != "format"}  # a table from before formats
    with pytest.raises(PirProtocolError, match="format 'pir-1 .*rebuild its table"):
        table.PirParams.from_wire(old, "fin")
    ristretto = wire["format"].replace("pir-3:oprf-3:x25519", "pir-2:oprf-2:ristretto255")
    with pytest.raises(PirProtocolError, match="format 'pir-2:oprf-2.*rebuild its table"):
        table.PirParams.from_wire({**wire, "format": ristretto}, "fin")
    with pytest.raises(PirProtocolError, match="format 'pir-9'"):
        table.PirParams.from_wire({**wire, "format": "pir-9"}, "fin")


def test_a_previous_version_of_the_old_format_is_refused_with_a_rebuild_message() -> None:
    """A pir-2 (ristretto255) version cannot seed a pir-3 one: its OPRF key and cached
    outputs belong to another PRF; both the patch and the fresh-build paths refuse it."""
    from dataclasses import replace

    from meshmpc.crypto.oprf import OprfKey
    from meshmpc.pir.rebuild import rebuild_database

    db = table.build_database([b"a", b"b"], [b"1", b"2"], 4)
    old = replace(db, params=replace(db.params, format="pir-2:oprf-2:ristretto255:x"),
                  oprf_key=OprfKey.generate())  # type: ignore[arg-type]
    with pytest.raises(PirInputError, match="format 'pir-2.*rebuild the table from scratch"):
        rebuild_database(old, [b"a", b"b"], [b"1", b"3"], 4)
    with pytest.raises(PirInputError, match="rebuild the table from scratch"):
        table.build_database([b"a"], [b"1"], 4, previous=old)


def test_rebuild_reuses_oprf_outputs_of_unchanged_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from meshmpc.pir import prfcache

    keys = [b"k%d" % i for i in range(300)]
    first = table.build_database(keys, [b"v%d" % i for i in range(300)], 8)
    computed: list[int] = []
    real = prfcache.prf_outputs

    def counting(*args):  # noqa: ANN002, ANN202
        out = real(*args)
        computed.append(out[2])
        return out

    monkeypatch.setattr(table, "prf_outputs", counting)
    changed = keys[:297] + [b"new1", b"new2", b"new3"]
    second = table.build_database(changed, [b"w%d" % i for i in range(300)], 8, previous=first)
    assert computed == [3] and second.oprf_key == first.oprf_key
    assert second.params.version != first.params.version and second.params.salt != first.params.salt
    fresh = second.oprf_key.evaluate(changed)
    assert second.prf_cache is not None
    found, at = second.prf_cache.lookup(prfcache.key_digests(changed))
    assert found.all()
    assert [second.prf_cache.outputs[i].tobytes() for i in at] == fresh


def test_rebuild_checks_its_input_like_a_build() -> None:
    from meshmpc.pir.rebuild import rebuild_database

    first = table.build_database([b"a", b"b"], [b"1", b"2"], 4)
    with pytest.raises(PirInputError, match="rows 0 and 2"):
        rebuild_database(first, [b"a", b"c", b"a"], [b"1", b"2", b"3"], 4)
    with pytest.raises(PirInputError, match="row 1"):
        rebuild_database(first, [b"a", b"c"], [b"1", b"toolong"], 4)


def _client_cost(max_load: int, slot_bytes: int, slots: int) -> float:
    """Client multiply-adds of one query row: A s (columns) plus H_b s (rows of a bucket)."""
    columns = max_load / (table.LOAD_FACTOR * slots)
    return (columns + slots * slot_bytes) * 1024


@pytest.mark.parametrize("max_load", [2_000, 55_000, 62_500])
def test_choose_slots_squares_small_buckets(max_load: int) -> None:
    """Where the hint fits under the cap, the bucket is about square: the client's cost is
    within 10 % of the best slot count and far below the small-hint geometry's."""
    size = 113
    slots = table.choose_slots(max_load, size, 1)
    best = min(_client_cost(max_load, size, s) for s in range(4, 4097))
    assert _client_cost(max_load, size, slots) <= 1.1 * best
    small_hint = max(4, int(np.ceil(np.sqrt(max_load / 0.9 * size / 24) / size)))
    if max_load > 10_000:
        assert _client_cost(max_load, size, slots) < 0.5 * _client_cost(max_load, size,
                                                                        small_hint)


def test_choose_slots_keeps_the_hint_under_the_cap() -> None:
    """Many buckets: no more slots than the hint cap allows, and never fewer than the
    small-hint geometry (at 2^20 records that floor, 4 slots, is what is chosen)."""
    size = 266
    for buckets, load in ((32, 33_000), (4, 40_000)):
        slots = table.choose_slots(load, size, buckets)
        floor = max(4, int(np.ceil(np.sqrt(load / 0.9 * size / 24) / size)))
        assert slots >= floor
        assert slots == floor or buckets * slots * size * 1024 * 4 <= table.HINT_CAP_BYTES
    assert table.choose_slots(33_000, size, 32) == 4
    assert table.choose_slots(40_000, size, 4) > 4  # 4 buckets: room for a taller bucket
