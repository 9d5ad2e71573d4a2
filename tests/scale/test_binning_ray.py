"""ml.binning's label counts on a local Ray cluster: the single-process WOE and IV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ml_inputs import RAY, feature_tables, run_step

from meshmpc.ml.binning_protocol import decoded
from meshmpc.ml.binning_scaled import T, draw_masks
from meshmpc.ml.components_binning import binning


def test_masks_are_uniform_parts_of_zero() -> None:
    masks = draw_masks(5, 300)
    assert masks.shape == (5, 300) and masks.min() >= 0 and masks.max() < T
    assert not np.any(masks.sum(axis=0) % T)
    assert len(np.unique(masks[0])) > 290  # not a constant: each part alone says nothing


def test_binning_on_ray_equals_one_process(tmp_path: Path, ray_cluster: Any) -> None:
    tables = feature_tables()
    params = {"bins": 5}
    single = run_step(binning, "binning", tmp_path / "one", None, tables, params)
    scaled = run_step(binning, "binning", tmp_path / "ray", RAY, tables, params)
    for party in ("bank", "gov"):
        one, many = single[party], scaled[party]
        assert many.models["binning"] == one.models["binning"]  # every WOE, IV and cut
        assert decoded(many.tables["features"]).equals(decoded(one.tables["features"]))
    iv_one, iv_many = single["bank"].report["iv_all"], scaled["bank"].report["iv_all"]
    assert iv_many == iv_one and set(iv_one) >= {"gov.capital", "gov.tax"}
    scale = scaled["bank"].report["scale"]["gov"]
    assert scale["partitions"] == 6 and scale["retries"] == []
    assert "scale" not in single["bank"].report
