"""ml.predict on a local Ray cluster: the single-process scores, in the same row order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ml_inputs import RAY, ROWS, run_step

from meshmpc.ml.components_model import predict


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
