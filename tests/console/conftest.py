"""Two real nodes (bank, gov) serving the built console, and one headless Chromium per session.

The browser is Debian's ``chromium`` driven by Playwright (never a downloaded browser). When
chromium, Playwright or the built console is missing, every test here is skipped with the
command that fixes it, so the summary (``-ra``) shows them as not run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meshmpc.platform.console import bundle_dir

from .nodes import RunningNode

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).with_name("screenshots")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is missing: apt-get install -y chromium (make test does as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is missing: .venv/bin/pip install playwright (in the dev extras)"
    if not (bundle_dir() / "index.html").exists():
        return "the console is not built: make console (needs npm)"
    return None


# Module scope: Playwright's sync API keeps an event loop running while it is open, which
# would break asyncio.run in the tests that follow this directory.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    reason = _missing()
    if reason:
        pytest.skip(f"browser tests NOT RUN: {reason}")
    from playwright.sync_api import sync_playwright

    # Playwright gives every launch a fresh, empty --user-data-dir of its own (and refuses one
    # passed in args), so the profile is new each session.
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")  # stopped before other test directories run
def nodes(tmp_path_factory, browser) -> Iterator[tuple[RunningNode, RunningNode, Path]]:
    tmp_path = tmp_path_factory.mktemp("console-nodes")
    bank, gov = RunningNode(tmp_path, "bank"), RunningNode(tmp_path, "gov")
    try:
        bank.pair(gov)
        gov.pair(bank)
        keys = [f"9111{i:014d}" for i in range(60)]
        pq.write_table(pa.table({"credit_code": keys[:40],
                                 "default_12m": [i % 2 for i in range(40)]}),
                       tmp_path / "bank.parquet")
        pq.write_table(pa.table({"credit_code": keys[20:], "reg_capital": list(range(40))}),
                       tmp_path / "registry.parquet")
        write_model_data(tmp_path)
        yield bank, gov, tmp_path
    finally:
        bank.stop()
        gov.stop()


def write_model_data(folder: Path, rows: int = 200) -> None:
    """Bank labels and a deposit feature, gov a registry feature; 160 keys in common, the
    default risk driven by one latent factor both see (a model has something to find)."""
    rng = np.random.default_rng(7)
    keys = [f"9122{i:014d}" for i in range(rows + 40)]
    risk = rng.normal(size=rows + 40)
    label = (risk + rng.normal(scale=0.8, size=rows + 40) > 0.3).astype(np.int64)
    pq.write_table(pa.table({"credit_code": keys[:rows], "default_12m": label[:rows],
                             "deposit": np.round(50 - 10 * risk[:rows], 2)}),
                   folder / "model_bank.parquet")
    pq.write_table(pa.table({"credit_code": keys[40:], "reg_capital": np.round(
        100 * risk[40:] + rng.normal(scale=50, size=rows), 1)}), folder / "model_gov.parquet")


class Watched:
    """A page whose uncaught exceptions, console errors and 5xx answers are recorded."""

    def __init__(self, page: object) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("response", lambda r: r.status >= 500 and self.problems.append(
            f"HTTP {r.status} from {r.url}"))

    def _console(self, message: object) -> None:
        # Chromium logs every non-2xx fetch as "Failed to load resource"; the 401 before
        # login and the 4xx a test provokes on purpose are not console errors of ours
        # (5xx answers are caught above).
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console error: {message.text}")


@pytest.fixture
def open_page(browser, request) -> Iterator[object]:
    """Pages in fresh browser contexts (own cookies); each checked for errors afterwards."""
    watched: list[Watched] = []
    contexts = []

    def open_one(url: str) -> object:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        watched.append(Watched(page))
        page.goto(url)
        return page

    yield open_one
    SHOTS.mkdir(exist_ok=True)
    for i, w in enumerate(watched):
        w.page.screenshot(path=str(SHOTS / f"{request.node.name}-{i}.png"), full_page=True)
    for context in contexts:
        context.close()
    problems = [p for w in watched for p in w.problems]
    assert not problems, problems
