"""``meshmpc credit serve``: the decision service at the bank's node.

Connects to the partners over the encrypted mesh (``--config``, ``--party``),
opens the PIR screen sessions with every partner, loads the strategy versions in service
from the store (``--db``) and watches it for new publications, then serves
the HTTP API (:mod:`.app`) with uvicorn. Decisions are stored in the same
database. ``--card`` names the bank's scorecard: the joint job's card of the
bank (``<job>/bank/card/scorecard.json``) makes the score the joint online
score from the partners' joint PIR records (partners serving
:func:`~meshmpc_credit.decision.partner.serve_joint`); the illustrative
points table (the default) scores on the bank's fields alone.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from meshmpc.data.vault import Vault, vault_key_beside
from meshmpc.net import Context
from meshmpc.net.config import load_config
from meshmpc.net.keys import IdentityKey
from meshmpc.net.tcp import TcpMesh
from meshmpc.platform.db import make_engine
from meshmpc_credit.decision.joint_score import BankCard, JointRater, is_trained_card
from meshmpc_credit.decision.rating import DEFAULT_CARD, BankScorecard
from meshmpc_credit.decision.records import DecisionRecords
from meshmpc_credit.decision.runtime import StrategyRuntime
from meshmpc_credit.decision.screens import START_TIMEOUT_S, PartnerScreens
from meshmpc_credit.decision.service import DecisionService
from meshmpc_credit.strategy.document import StrategyError
from meshmpc_credit.strategy.store import StrategyStore


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the credit commands."""
    p = subparsers.add_parser("serve", help="pre-loan decision service (HTTP) / 贷前决策服务")
    p.add_argument("--config", type=Path, required=True, help="cluster.toml of the mesh")
    p.add_argument("--party", default="bank", help="this node's party id")
    p.add_argument("--key", type=Path, help="identity key (default from the config)")
    p.add_argument("--partners", default="gov,fin,telco", help="partners screened by PIR")
    p.add_argument("--db", default="sqlite:///credit.db", help="strategy and decision store")
    p.add_argument("--strategy", default="preloan")
    p.add_argument("--card", type=Path, default=DEFAULT_CARD,
                   help="bank scorecard JSON: the joint job's bank card gives the joint score "
                        "/ 银行评分卡 (联合建模评分卡则为联合在线评分)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8700)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds a partner may take")
    p.add_argument("--poll", type=float, default=0.2, help="seconds between store polls")
    p.add_argument("--start-timeout", type=float, default=START_TIMEOUT_S,
                   help="seconds the partners may take to publish their tables (hints)")
    p.add_argument("--retry", type=float, default=1.0,
                   help="first back-off (s) before retrying a partner marked down")
    p.set_defaults(func=run)


@asynccontextmanager
async def open_service(args: argparse.Namespace) -> AsyncIterator[DecisionService]:
    """Mesh, PIR sessions, strategy runtime and record store; closed on exit."""
    config = load_config(args.config)
    entry = config.party(args.party)
    key_file = args.key or entry.key_file or args.config.parent / f"{args.party}.key"
    if not key_file.is_absolute():
        key_file = args.config.parent / key_file
    mesh = await TcpMesh.connect(config, args.party, IdentityKey.load(args.party, key_file))
    engine = make_engine(args.db)
    runtime = StrategyRuntime(StrategyStore(engine), args.strategy, args.poll)
    await asyncio.to_thread(runtime.refresh)
    runtime.active  # noqa: B018 - refuse to start without a published version
    partners = args.partners.split(",")
    screens = PartnerScreens(Context(mesh, config), partners, args.timeout,
                             args.start_timeout, retry_s=args.retry)
    await screens.start()
    watcher = asyncio.create_task(runtime.watch())
    vault = Vault.open_or_create(vault_key_beside(key_file))
    service = DecisionService(runtime, screens, rater_for(args.card, partners, vault),
                              DecisionRecords(engine, vault))
    try:
        yield service
    finally:
        watcher.cancel()
        service.writer.close()
        await screens.close()
        await mesh.flush()
        await mesh.close()


def rater_for(card: Path, partners: list[str], vault: Vault | None = None
              ) -> JointRater | BankScorecard:
    """The joint rater for a trained bank card (a sealed artefact opens with ``vault``),
    else the bank's own points table."""
    if is_trained_card(card, vault):
        return JointRater(BankCard.load(card, vault), partners)
    return BankScorecard.load(card)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    import uvicorn

    from meshmpc_credit.decision.app import create_app

    if StrategyStore(args.db).service_state(args.strategy) is None:
        raise StrategyError(args.strategy, f"nothing published in {args.db} / 尚未发布策略: "
                            "publish a version with `meshmpc credit strategy publish` first")
    app = create_app(factory=lambda: open_service(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
