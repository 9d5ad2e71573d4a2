"""pir query's consent references: per key row or a covering set, checked before sending."""

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from meshmpc.data.consent import merkle_root
from meshmpc.pir.consent_refs import BatchConsent, read_consent_refs
from meshmpc.userinput import UserError

KEYS = [b"A", b"B", b"C"]


def test_per_key_references_follow_their_keys_into_each_batch() -> None:
    # five rows: B repeated at row 3 and an empty key at row 4 (dropped by the reader)
    consent = BatchConsent("credit_approval", ["ra", "rb", "rc", "rb2", "r-empty"], KEYS,
                           rows=[0, 1, 2], key_rows=5)
    assert consent([b"C", b"A"]) == {"purpose": "credit_approval",
                                     "consent": {"count": 2, "root": merkle_root(["rc", "ra"])}}
    consent([b"B"])
    assert consent.sent == [2, 1] and consent.answered_before_last() == 2


def test_a_covering_set_goes_whole_with_every_batch() -> None:
    refs = [f"batch-consent-{i}" for i in range(4)]
    consent = BatchConsent("loan_monitoring", refs, KEYS, rows=[0, 1, 2], key_rows=3 + 4)
    whole = {"purpose": "loan_monitoring", "consent": {"count": 4, "root": merkle_root(refs)}}
    assert consent([b"A"]) == whole and consent([b"B", b"C"]) == whole


def test_bad_purpose_or_too_few_references_are_refused() -> None:
    with pytest.raises(UserError, match="'marketing' is not configured"):
        BatchConsent("marketing", ["r"] * 3, KEYS, [0, 1, 2], 3)
    with pytest.raises(UserError, match="holds 2 consent references for 3 distinct keys"):
        BatchConsent("credit_approval", ["r1", "r2"], KEYS, [0, 1, 2], 3)
    with pytest.raises(UserError, match="at most 256 characters"):
        BatchConsent("credit_approval", ["r" * 300] * 3, KEYS, [0, 1, 2], 3)


def test_references_from_text_and_csv(tmp_path: Path) -> None:
    text = tmp_path / "refs.txt"
    text.write_text("r1\n\n  r2  \nr3\n")
    assert read_consent_refs(text) == ["r1", "r2", "r3"]
    table = tmp_path / "refs.csv"
    pacsv.write_csv(pa.table({"credit_code": ["A", "B"], "consent_ref": ["0001", "c2"]}), table)
    assert read_consent_refs(table) == ["0001", "c2"]  # read as text: leading zeros kept
    pacsv.write_csv(pa.table({"a": ["1"], "b": ["2"]}), table)
    with pytest.raises(UserError, match="no 'consent_ref' column"):
        read_consent_refs(table)
    with pytest.raises(UserError, match="No such file"):
        read_consent_refs(tmp_path / "missing.txt")
