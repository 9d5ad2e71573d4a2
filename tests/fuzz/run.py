"""``make fuzz``: run every fuzz target (or those named) with atheris for a while each.

    python tests/fuzz/run.py [--seconds 60] [TARGET ...]
    python tests/fuzz/run.py --seed            # (re)write the seed inputs

Each target runs in its own process on its corpus ``corpus/<target>/`` (new
inputs that reach new code are added there, then the corpus is minimised);
a crash is written to ``corpus/<target>/crash-*`` so that the replay test in
``make test`` keeps failing until it is fixed. Prints one JSON line per
target: executions, seconds, corpus size, crashes. Without atheris installed
it says so loudly and exits 2.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from targets import load, names  # noqa: E402


def run_one(name: str, seconds: int) -> dict[str, object]:
    corpus = HERE / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in corpus.glob("crash-*")}
    command = [sys.executable, str(Path(__file__)), "--child", name, "--",
               f"-max_total_time={seconds}", "-max_len=4096", "-timeout=10", "-rss_limit_mb=1024",
               f"-artifact_prefix={corpus}/", str(corpus)]
    proc = subprocess.run(command, capture_output=True, text=True)
    runs = re.findall(r"Done (\d+) runs in (\d+) second", proc.stderr)
    crashes = sorted({p.name for p in corpus.glob("crash-*")} - before)
    _minimise(name, corpus)
    if proc.returncode != 0 and not crashes:
        sys.stderr.write(proc.stderr[-3000:])
    return {"target": name, "executions": int(runs[-1][0]) if runs else None,
            "seconds": seconds, "corpus_files": len(list(corpus.iterdir())),
            "new_crashes": crashes, "exit_code": proc.returncode}


def _minimise(name: str, corpus: Path) -> None:
    """Keep only inputs that add coverage (libFuzzer's merge), plus crash files."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__)), "--child", name, "--", "-merge=1", tmp,
             str(corpus)], capture_output=True, text=True,
        )
        kept = list(Path(tmp).iterdir())
        if proc.returncode != 0 or not kept:
            return
        for path in corpus.iterdir():
            if not path.name.startswith("crash-"):
                path.unlink()
        for path in kept:
            shutil.copy(path, corpus / path.name)


def child(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["meshmpc", "targets"]):
        target = load(name)
    atheris.Setup([sys.argv[0], *libfuzzer_args], target)
    atheris.Fuzz()


def main(argv: list[str]) -> int:
    if "--child" in argv:
        i = argv.index("--child")
        child(argv[i + 1], argv[argv.index("--") + 1 :])
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("targets", nargs="*", help=f"default: all of {names()}")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--seed", action="store_true", help="write the seed inputs and stop")
    args = parser.parse_args(argv)
    if args.seed:
        from seeds import write_seeds

        write_seeds(HERE / "corpus", args.targets)
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("*** make fuzz SKIPPED: atheris is not installed (pip install atheris); "
              "the corpus still replays in make test ***", file=sys.stderr)
        return 2
    failed = False
    for name in args.targets or names():
        result = run_one(name, args.seconds)
        print(json.dumps(result), flush=True)
        failed |= bool(result["new_crashes"]) or result["exit_code"] not in (0,)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
