"""Joint scoring with a strict model: weights stay secret-shared, the bank learns z only.

The compute parties of training reload their share words of the weights
(same suite, same parties, same order); every owner registers its rows as in
training; z = sum_o X_o @ <w_o> + <b> is opened to the bank only. Costs one
forward pass (no sigmoid: the bank applies it to the opened z).
"""

from __future__ import annotations

import numpy as np

from meshmpc.jobs.api import StepContext
from meshmpc.ml.logistic import exchange_widths
from meshmpc.ml.model_io import LogisticModel
from meshmpc.ml.vertical import VerticalError, VerticalSession, tensor_from_words


async def score_strict(step: StepContext, model: LogisticModel, x: np.ndarray,
                       bank: str) -> np.ndarray | None:
    """The bank's z for every row of ``x`` (the others get None)."""
    compute = model.config.get("compute_parties")
    session = await VerticalSession.open(step.ctx.scope("session"), bank, model.security,
                                         triples=str(model.config.get("triples", "ot")),
                                         compute=compute)
    scale = np.asarray(model.config.get("feature_scale") or np.ones(x.shape[1]))
    x = x / scale
    widths = await exchange_widths(session, x.shape[1])
    n = x.shape[0]
    for owner, width in widths.items():
        if width:
            await session.register(owner, x if owner == step.party else None, (n, width))
    if not session.computes:
        return None
    if model.shares is None:
        raise VerticalError(f"party {step.party}: the strict model holds no weight shares; "
                            f"score with the compute parties of training")
    backend = session.require_backend()
    w = tensor_from_words(backend, model.shares["words"], int(model.shares["scale"]))
    z = None
    offset = 0
    for owner, width in widths.items():
        if not width:
            continue
        part = await session.forward(owner, x, slice(0, n), w[offset: offset + width], width)
        z = part if z is None else z + part
        offset += width
    assert z is not None
    z = z + w[offset:].broadcast_to((n,))
    opened = await z.reveal(to=bank)
    return None if opened is None else np.asarray(opened, dtype=np.float64)
