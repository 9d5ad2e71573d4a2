"""A bad input at one party stops the joint job at every party; details stay local."""

from meshmpc.data import SchemaViolation
from meshmpc.data.jobcheck import PeerInputError, validate_party_input
from meshmpc.net import run_parties


async def _job(ctx, inputs):
    schema, source = inputs[ctx.party]
    try:
        report = await validate_party_input(ctx, schema, source)
    except Exception as exc:  # returned so the test sees every party's outcome
        return exc
    return report


def test_all_inputs_pass(schema_path, write, good_csv):
    data = write("good.csv", good_csv)
    results = run_parties(["bank", "gov", "fin"], _job, {
        p: (schema_path, data) for p in ("bank", "gov", "fin")})
    assert all(r.ok and r.rows == 4 for r in results.values())


def test_one_bad_input_stops_everyone(schema_path, write, good_csv, tmp_path):
    good = write("good.csv", good_csv)
    bad = write("gov.csv", good_csv.replace(",24,", ",99,"))
    results = run_parties(["bank", "gov", "fin"], _job, {
        "bank": (schema_path, good), "gov": (schema_path, bad),
        "fin": (schema_path, tmp_path / "absent.csv")})
    assert isinstance(results["gov"], SchemaViolation)
    assert "gov.csv" in str(results["gov"]) and "'term'" in str(results["gov"])
    assert "row 2" in str(results["gov"])
    assert "absent.csv" in str(results["fin"]) and not isinstance(results["fin"], PeerInputError)
    assert isinstance(results["bank"], PeerInputError)
    assert results["bank"].parties == ["gov", "fin"]
    assert "gov.csv" not in str(results["bank"]) and "term" not in str(results["bank"])
