"""ml.predict on a local Ray cluster: the single-process scores, in the same row order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ml_inputs import RAY, ROWS, run_step

from meshmpc.ml.components_model import predict


@pytest.mark.slow  # test_lost_worker_partitions_are_retried checks a logistic run too
@pytest.mark.parametrize("kind", ["logistic", "scorecard"])
def test_predict_on_ray_equals_one_process(kind: str, tmp_path: Path, ray_cluster: Any) -> None:
    single = run_step(predict, kind, tmp_path / "one", None)
    scaled = run_step(predict, kind, tmp_path / "ray", RAY)
    one, many = single["bank"].tables["scores"], scaled["bank"].tables["scores"]
    assert many.schema == one.schema and many.num_rows == ROWS
    for column in one.column_names:  # same scores, same rows, same order: bit for bit
        assert np.array_equal(many.column(column).to_numpy(), one.column(column).to_numpy())
    assert "scores" not in scaled["gov"].tables
    scale = scaled["bank"].report["scale"]
    assert scale["partitions"] == 6 and scale["workers"] == 2 and scale["retries"] == []
    assert all(0 < m < 2048 for m in scale["worker_peak_rss_mb"])
    assert "scale" not in single["bank"].report  # ray absent: the unchanged path


def test_lost_worker_partitions_are_retried(tmp_path: Path, ray_cluster: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """gov's worker 1 dies at its second partition: both retry only worker 1's unfinished
    partitions (4, 5, and 3 unless its totals reached the bank before the crash) with
    fresh workers, report it, and the scores are right."""
    import ml_inputs
    import ray.cloudpickle

    from meshmpc.ml import predict_scaled

    ray.cloudpickle.register_pickle_by_value(ml_inputs)  # the workers cannot import it
    crash = ml_inputs.CrashOnce(predict_scaled.score_partition, "gov", 4, tmp_path / "flag")
    monkeypatch.setattr(predict_scaled, "score_partition", crash)
    scaled = run_step(predict, "logistic", tmp_path / "ray", RAY)
    monkeypatch.undo()
    assert (tmp_path / "flag").exists()
    single = run_step(predict, "logistic", tmp_path / "one", None)
    one, many = single["bank"].tables["scores"], scaled["bank"].tables["scores"]
    assert many.schema == one.schema and many.num_rows == ROWS
    for column in one.column_names:  # same scores, same rows, same order: bit for bit
        assert np.array_equal(many.column(column).to_numpy(), one.column(column).to_numpy())
    for party in ("bank", "gov"):
        scale = scaled[party].report["scale"]
        assert scale["attempts"] == 2
        (retry,) = scale["retries"]  # worker 1's unfinished partitions only, never 0-2
        assert retry["attempt"] == 0 and {4, 5} <= set(retry["items"]) <= {3, 4, 5}
