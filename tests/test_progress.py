"""meshmpc.progress: phase lines with rate and ETA, rate-limited, thread-safe, silent when off."""

from __future__ import annotations

import io
import re
import threading
import time

from meshmpc.progress import Progress, progress_text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_progress_text_gives_share_rate_and_time_left() -> None:
    assert progress_text(250, 1000, 5.0) == "250/1,000  25.0%, 50/s, ETA 15 s"
    assert progress_text(1000, 1000, 5.0) == "1,000/1,000 100.0%, 200/s"
    assert progress_text(7, None, 0.0) == "7, 0/s"


def test_a_phase_prints_ticks_with_eta_then_one_final_line() -> None:
    out = io.StringIO()
    progress = Progress("psi bank", True, interval_s=0.0, stream=out)
    with progress.phase("rr22: OPRF values", 300, "keys") as phase:
        for _ in range(3):
            time.sleep(0.002)
            phase.advance(100)
    lines = _lines(out)
    assert len(lines) == 3, lines
    assert re.fullmatch(r"psi bank: rr22: OPRF values 100/300  33\.3%, [\d,]+/s, ETA \d+ s "
                        r"\[ +\d+\.\d s\]", lines[0]), lines[0]
    assert "200/300" in lines[1] and "ETA" in lines[1]
    assert re.fullmatch(r"psi bank: rr22: OPRF values: 300 keys in \d+\.\d\d s, [\d,]+/s "
                        r"\[ +\d+\.\d s\]", lines[2]), lines[2]
    phase.finish()
    assert len(_lines(out)) == 3, "a phase has one final line"


def test_ticks_are_rate_limited_to_one_line_per_interval() -> None:
    out = io.StringIO()
    progress = Progress("pir serve", True, interval_s=3600.0, stream=out)
    with progress.phase("building the table", 10_000, "keys") as phase:
        for _ in range(100):
            phase.advance(100)
    assert len(_lines(out)) == 1 and "10,000 keys in" in out.getvalue()
    progress.stage("listening")
    assert _lines(out)[-1].startswith("pir serve: listening [")


def test_off_prints_nothing_whatever_is_ticked() -> None:
    out = io.StringIO()
    for progress in (Progress("psi bank", False, interval_s=0.0, stream=out), Progress.off()):
        with progress.phase("kkrt: OT extension", 10, "bins") as phase:
            phase.advance(5)
            phase.advance(5)
        progress.stage("done")
        progress.update("buckets", 1, 2)
        progress.done()
    assert out.getvalue() == ""


def test_ticks_from_worker_threads_are_all_counted() -> None:
    out = io.StringIO()
    progress = Progress("psi gov", True, interval_s=0.0, stream=out)
    phase = progress.phase("kkrt: OPRF values", None, "values")

    def work() -> None:
        for _ in range(500):
            phase.advance(2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert phase.done == 4000
    phase.finish()
    assert "kkrt: OPRF values: 4,000 values in" in _lines(out)[-1]
    assert all(line.startswith("psi gov: kkrt: OPRF values") for line in _lines(out))


def test_at_a_terminal_ticks_redraw_one_line() -> None:
    out = Terminal()
    progress = Progress("psi bank", True, interval_s=0.0, stream=out)
    with progress.phase("writing out.csv", 3, "rows") as phase:
        for _ in range(3):
            phase.advance(1)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r\x1b[K") == 3  # two ticks, then the final line over them
    assert "writing out.csv: 3 rows in" in text.rsplit("\r\x1b[K", 1)[1]


def test_the_first_tick_waits_a_tenth_of_the_interval() -> None:
    out = io.StringIO()
    progress = Progress("psi bank", True, interval_s=0.5, stream=out)
    phase = progress.phase("ecdh: exponentiations", 100, "points")
    phase.advance(1)
    assert out.getvalue() == "", "a phase quicker than a tenth of the interval prints no tick"
    time.sleep(0.06)
    phase.advance(1)
    assert "2/100" in out.getvalue() and "ETA" in out.getvalue()
