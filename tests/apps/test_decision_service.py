"""The decision service end to end over an in-memory mesh with real PIR partners."""

from __future__ import annotations

import asyncio
import copy
import json
import sys
from pathlib import Path
from typing import Any

import httpx
from meshmpc_credit.decision.app import create_app
from meshmpc_credit.decision.runtime import key_fraction
from meshmpc_credit.decision.service import DecisionService
from meshmpc_credit.strategy.document import DEFAULT_STRATEGY

from meshmpc.net import run

sys.path.insert(0, str(Path(__file__).parent))
from decision_harness import ALICE, BOB, GOOD_FIELDS, running_service  # noqa: E402


def client(service: DecisionService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)),
                             base_url="http://bank")


async def post(http: httpx.AsyncClient, key: str, fields: dict[str, Any] | None = None
               ) -> httpx.Response:
    return await http.post("/v1/decisions", json={"key": key, "fields": fields or GOOD_FIELDS})


def test_decisions_are_explained_stored_and_replay_identically(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service, client(service) as http:
            answers = {}
            for key in ["K-OK", "K-FRAUD", "K-TWO", "K-TEL", "K-GOV"]:
                response = await post(http, key)
                assert response.status_code == 200, response.text
                answers[key] = response.json()
            assert answers["K-OK"]["decision"] == "approve"
            assert answers["K-OK"]["grade"] == "A" and answers["K-OK"]["strategy_version"] == 1
            assert answers["K-FRAUD"]["decision"] == "decline"
            assert "screens/fin_fraud" in answers["K-FRAUD"]["reasons"]
            assert "FIN_FRAUD" in answers["K-FRAUD"]["reasons"]
            assert {"screens/fin_malicious_default", "screens/gov_abnormal_operation",
                    "screens/multi_list"} <= set(answers["K-TWO"]["reasons"])
            assert answers["K-TEL"]["decision"] == "refer"
            assert answers["K-GOV"]["decision"] == "decline"
            for key, answer in answers.items():
                stored = (await http.get(f"/v1/decisions/{answer['decision_id']}")).json()
                assert stored["applicant"] == key and stored["version"] == 1
                assert stored["context"]["screen"]["fin"]["listed"] == (key in (
                    "K-FRAUD", "K-TWO"))
                replay = (await http.post(f"/v1/decisions/{answer['decision_id']}/replay"))
                assert replay.json()["identical"] is True
                assert replay.json()["replayed"]["decision"] == answer["decision"]
            assert (await http.get("/v1/decisions/nope")).status_code == 404
    run(main())


def test_bad_fields_are_refused_naming_the_field(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service, client(service) as http:
            response = await post(http, "K-1", {**GOOD_FIELDS, "loan_amount": "lots"})
            assert response.status_code == 422 and "loan_amount" in response.text
            response = await post(http, "K-1", {**GOOD_FIELDS, "loan_amout": 1})
            assert response.status_code == 422 and "loan_amout" in response.text
    run(main())


def test_partner_down_gives_refer_never_approve(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path, silent=["gov"], timeout_s=0.3) as service, \
                client(service) as http:
            for key in ["K-OK", "K-OTHER"]:  # approved when every partner answers
                answer = (await post(http, key)).json()
                assert answer["decision"] == "refer"
                assert answer["partners_unavailable"] == ["gov"]
                assert answer["reasons"][0] == "partner unavailable: gov"
                assert answer["suggested_limit"] == 0
            answer = (await post(http, "K-FRAUD")).json()  # other screens still work
            assert "screens/fin_fraud" in answer["reasons"]
            replay = (await http.post(f"/v1/decisions/{answer['decision_id']}/replay")).json()
            assert replay["identical"] is True
    run(main())


def version_doc(band: str) -> str:
    """The default strategy with grade A's price band renamed (identifies the version)."""
    doc = json.loads(DEFAULT_STRATEGY.read_text())
    terms = next(n for n in doc["nodes"] if n["name"] == "terms")
    terms["content"]["rules"][0]["band"] = json.dumps(band)
    return json.dumps(doc)


def test_hot_update_under_concurrent_load(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service, client(service) as http:
            store = service.runtime.store
            bands = {1: "P1"}
            answers: list[dict[str, Any]] = []
            stop = asyncio.Event()

            async def load(worker: int) -> None:
                i = 0
                while not stop.is_set():
                    response = await post(http, f"K-{worker}-{i}")
                    assert response.status_code == 200, response.text
                    answers.append(response.json())
                    i += 1

            workers = [asyncio.create_task(load(w)) for w in range(8)]
            for n in range(5):
                await asyncio.sleep(0.15)
                band = f"P1-v{n + 2}"
                version = await asyncio.to_thread(store.propose, "preloan", version_doc(band),
                                                  ALICE)
                bands[version] = band
                await asyncio.to_thread(store.publish, "preloan", version, BOB)
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*workers)
            seen = {a["strategy_version"] for a in answers}
            assert len(seen) >= 4 and max(seen) == 6
            for answer in answers:  # each decision ran one version, end to end
                assert answer["grade"] == "A"
                assert answer["price_band"] == bands[answer["strategy_version"]]
            assert service.runtime.swaps >= 6
    run(main())


def test_challenger_share_by_key_hash(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service, client(service) as http:
            store = service.runtime.store
            version = store.propose("preloan", version_doc("P1-challenger"), ALICE)
            store.challenge("preloan", version, 0.5, BOB)
            service.runtime.refresh()
            keys = [f"K-split-{i}" for i in range(40)]
            answers = [(await post(http, k)).json() for k in keys]
            for key, answer in zip(keys, answers, strict=True):
                challenger = key_fraction(key) < 0.5
                assert answer["arm"] == ("challenger" if challenger else "champion")
                assert answer["strategy_version"] == (version if challenger else 1)
                row = service.records.get(answer["decision_id"])
                assert row is not None and (row["shadow"] is not None) == challenger
            summary = (await http.get("/v1/strategy")).json()
            assert summary["challenger"] == version
            n_challenger = sum(key_fraction(k) < 0.5 for k in keys)
            assert summary["comparison"]["challenger_decisions"] == n_challenger
            assert summary["comparison"]["agreement"] == 1.0  # same decisions, other band
    run(main())


def test_replay_detects_a_tampered_record(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service:
            answer = await service.decide("K-OK", GOOD_FIELDS)
            row = copy.deepcopy(service.records.get(answer["decision_id"]))
            assert row is not None
            row["id"] = "tampered"
            row["context"]["screen"]["fin"].update(listed=True, list_type="fraud")
            service.records.add(row)
            result = service.replay("tampered")
            assert result is not None and result["identical"] is False
            assert result["replayed"]["decision"] == "decline"
    run(main())


class _Unscorable(LookupError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__("no joint score")
        self.missing = missing


class _JointScorerWithoutTheKey:
    """A Rater as the joint scorer behaves for a key some partner does not hold."""

    async def score(self, key: str, bank_fields: Any) -> float:
        raise _Unscorable(["fin"])


def test_score_unavailable_gives_refer(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_service(tmp_path) as service:
            service.rater = _JointScorerWithoutTheKey()
            answer = await service.decide("K-OK", GOOD_FIELDS)
            assert (answer["decision"], answer["score"]) == ("refer", None)
            assert answer["partners_unavailable"] == [] and answer["no_record"] == ["fin"]
            assert answer["reasons"][0] == "score unavailable: no record at fin"
            assert service.replay(answer["decision_id"])["identical"] is True  # type: ignore[index]
    run(main())


def test_sessions_share_one_hint_and_answer_concurrently(tmp_path: Path) -> None:
    """A partner's sessions hold one hint (downloaded once, refresh_shared), and concurrent
    decisions spread over them still get each applicant's own screen."""
    async def body() -> None:
        async with running_service(tmp_path) as service, client(service) as http:
            for link in service.screens.links.values():
                first = link.clients[0]
                assert first.hint is not None and len(link.clients) > 1
                assert all(c.hint is first.hint and c.params == first.params
                           for c in link.clients[1:])
            keys = ["K-FRAUD", "K-OK"] * 4
            answers = await asyncio.gather(*(post(http, key) for key in keys))
            assert all(a.status_code == 200 for a in answers)
            got = [a.json()["decision"] for a in answers]
            assert got == ["decline", "approve"] * 4

    run(body())
