"""``meshmpc credit serve``: the decision service at the bank's node.

Connects to the partners over the encrypted mesh (``--config``, ``--party``),
opens the PIR screen sessions with every partner, loads the strategy versions in service
from the store (``--db``) and watches it for new publications, then serves
the HTTP API (:mod:`.app`) with uvicorn. Decisions are stored in the same
database. ``--card`` names the bank's scorecard: the joint job's card of the
bank (``<job>/bank/card/scorecard.json``) makes the score the joint online
score from the partners' joint PIR records (partners serving
:func:`~meshmpc_credit.decision.partner.serve_joint`); the illustrative
points table (the default) scores on the bank's fields alone. ``--node URL
--node-token-file F --model NAME`` takes the card from the bank's node instead:
the version of model NAME deployed there, re-read when an approver deploys
another (:mod:`.deployed`, polled every ``--model-poll`` seconds).

Every decision carries a purpose (``--purpose`` by default, or the request's)
and the applicant's consent reference (``consent_ref`` of the request), sent
with the partners' lookups; see :mod:`.service`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from meshmpc.data.consent import DEFAULT_PURPOSES
from meshmpc.data.vault import Vault, vault_key_beside
from meshmpc.net import Context
from meshmpc.net.config import load_config
from meshmpc.net.keys import IdentityKey
from meshmpc.net.tcp import TcpMesh
from meshmpc.platform.db import make_engine
from meshmpc.userinput import UserError
from meshmpc_credit.decision.deployed import POLL_S, DeployedModel
from meshmpc_credit.decision.joint_score import BankCard, JointRater, is_trained_card
from meshmpc_credit.decision.rating import DEFAULT_CARD, BankScorecard
from meshmpc_credit.decision.records import DecisionRecords
from meshmpc_credit.decision.runtime import StrategyRuntime
from meshmpc_credit.decision.screens import START_TIMEOUT_S, PartnerScreens
from meshmpc_credit.decision.service import DEFAULT_PURPOSE, DecisionService
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
    p.add_argument("--node", metavar="URL", help="the bank's node: score with the deployed "
                   "version of --model / 使用节点上已部署的模型版本")
    p.add_argument("--node-token-file", type=Path, metavar="FILE",
                   help="an API token of the bank's node (chmod 600)")
    p.add_argument("--model", metavar="NAME", help="the model's name on the node, e.g. "
                   "preloan.card.scorecard")
    p.add_argument("--model-poll", type=float, default=POLL_S, metavar="SECONDS",
                   help="seconds between checks of the deployed version")
    p.add_argument("--purpose", default=DEFAULT_PURPOSE, choices=sorted(DEFAULT_PURPOSES),
                   help="purpose of decisions that name none / 默认查询用途")
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
    vault = Vault.open_or_create(vault_key_beside(key_file))
    source = model_source(args, vault)
    service = DecisionService(runtime, screens, rater_for(args.card, partners, vault)
                              if source is None else BankScorecard.load(),
                              DecisionRecords(engine, vault), args.purpose)
    watchers = [asyncio.create_task(runtime.watch())]
    try:
        if source is not None:
            await source.start(service, partners)
            watchers.append(asyncio.create_task(source.watch(service, partners,
                                                             args.model_poll)))
        yield service
    finally:
        for watcher in watchers:
            watcher.cancel()
        service.writer.close()
        await screens.close()
        await mesh.flush()
        await mesh.close()


def model_source(args: argparse.Namespace, vault: Vault | None) -> DeployedModel | None:
    """The node's deployed model (``--node``, ``--node-token-file``, ``--model``), or None."""
    from meshmpc.pir.admit_http import read_token_file

    given = {"--node": args.node, "--node-token-file": args.node_token_file,
             "--model": args.model}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise UserError(f"credit serve: {', '.join(missing)} missing: --node, "
                        "--node-token-file and --model go together / 三者需同时给出")
    return DeployedModel(args.node, read_token_file(args.node_token_file), args.model, vault)


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
    source = model_source(args, None)
    if source is not None:
        source.deployed()  # no deployed version, a bad token, no node: said now, not later
    app = create_app(factory=lambda: open_service(args))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
