"""A partner's side of the decision service: serve its labelled risk list by keyword PIR.

``serve_risk_list`` is a job for :func:`meshmpc.net.launch.run_party` (or
``python -m meshmpc.net.launch --target meshmpc_credit.decision.partner:serve_risk_list``):
it builds the PIR database from the list file (key column plus ``list_type``,
``risk_level``, ``listed_date`` as the record: the reason code travels in
labelled mode), serves the bank until it closes its session, and rebuilds in
the background when the file changes (``watch_s``), like ``meshmpc pir serve``.
"""

from __future__ import annotations

from typing import Any

from meshmpc.net import Context
from meshmpc.pir.api import serve_job

KEY = "credit_code"


async def serve_risk_list(ctx: Context, risk_list: str, bank: str = "bank", key: str = KEY,
                          watch_s: float = 0.0) -> dict[str, Any]:
    """Serve ``risk_list`` to ``bank`` until it closes; what was served."""
    return await serve_job(ctx, risk_list, key, bank, watch_s=watch_s)
