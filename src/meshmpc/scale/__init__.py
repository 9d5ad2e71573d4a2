"""Scale-out: one party's side of a job spread over that party's own Ray cluster.

Module map (dependency order):

- :mod:`~meshmpc.scale.options`: the ``ray:`` setting, the lazy Ray import.
- :mod:`~meshmpc.scale.pair`: worker offers and the worker-pair mesh config.
- :mod:`~meshmpc.scale.worker`: the Ray actor that runs one group of items.
- :mod:`~meshmpc.scale.coordinator`: the coordinators' attempts and retries.

psi/ and ml/ call this package; it knows neither. Ray is imported only when a
``ray:`` setting is given (``pip install meshmpc[ray]``). See docs/scale-out.md.
"""

from meshmpc.scale.coordinator import ScaleReport, run_on_ray, split_groups
from meshmpc.scale.options import (
    RayOptions,
    ScaleConfigError,
    ScaleError,
    parse_ray_options,
    require_ray,
)
from meshmpc.scale.worker import PairWork

__all__ = ["PairWork", "RayOptions", "ScaleConfigError", "ScaleError", "ScaleReport",
           "parse_ray_options", "require_ray", "run_on_ray", "split_groups"]
