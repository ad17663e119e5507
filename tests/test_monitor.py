"""The training monitor and the run list, driven by Pilot against run folders made by hand.

A fake writer thread plays the training job: it appends metrics lines logged at a known
speed and rewrites status.json, so the live curves, progress, speed and held-out figures can
be checked without training anything. Running states need a live job: the test holds the
run's lock itself and names a live process (its own, or a ``sleep`` it started) as the pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, ProgressBar

from boxnet_tui.cli import main as cli_main
from boxnet_tui.curation import CurationSession
from boxnet_tui.training.runs import Run
from boxnet_tui.tui.app import BoxnetApp
from boxnet_tui.tui.monitor_app import MonitorApp
from boxnet_tui.tui.screens.confirm import ConfirmScreen
from boxnet_tui.tui.screens.monitor import MonitorScreen
from boxnet_tui.tui.screens.runs import RunsScreen
from boxnet_tui.tui.widgets.log_tail import tail_rows
from boxnet_tui.tui.widgets.loss_plot import LossPlot
from tests.test_app import DIAMETER, PICKS, SIZE, make_folder, star
from tests.test_run_monitor import HELDOUT, make_run, step, write_status

POLL = 0.05  # the monitor's poll interval in these tests: quick, and still a real thread
PER_SECOND = 5.0  # the fake job's logged speed (iterations per second in the records)


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def until(pilot, predicate: Callable[[], object], what: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if predicate():
            return
    raise AssertionError(f"timed out waiting for {what}")


def attach(run: Run, body: Callable[[MonitorApp, object], Awaitable[None]]) -> None:
    """Run ``body`` in the monitor app of ``run`` once the first read is shown."""

    async def main() -> None:
        app = MonitorApp(run, poll_seconds=POLL)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: _monitor(app).updates > 0, "the first read")
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())


def _monitor(app) -> MonitorScreen:
    screen = app.screen
    assert isinstance(screen, MonitorScreen), screen
    return screen


def footer_keys(screen) -> set[str]:
    return {binding.binding.action for binding in screen.active_bindings.values()}


@pytest.fixture
def held_lock():
    """Hold runs' locks as their job would; released at the end."""
    fds: list[int] = []

    def hold(run: Run) -> None:
        fd = run.lock()
        assert fd is not None
        fds.append(fd)

    yield hold
    for fd in fds:
        os.close(fd)


class FakeJob(threading.Thread):
    """Logs a step every ``interval`` seconds of wall time, at PER_SECOND in the records."""

    def __init__(self, run: Run, iterations: int, every: int = 10, interval: float = 0.03):
        super().__init__(daemon=True)
        self.run_, self.iterations, self.every, self.interval = run, iterations, every, interval
        self.stop = threading.Event()

    def run(self) -> None:
        for iteration in range(self.every, self.iterations + 1, self.every):
            if self.stop.wait(self.interval):
                return
            self.run_.append_metrics(step(iteration, PER_SECOND))
            write_status(
                self.run_,
                state="running",
                pid=os.getpid(),
                iteration=iteration,
                iterations=self.iterations,
                phase="training",
            )


# --------------------------------------------------------------------------- live


def test_live_run_curves_progress_speed_and_heldout(held_lock):
    run = make_run("LiveNet", pid=os.getpid(), iterations=400, phase="preparing")
    held_lock(run)
    job = FakeJob(run, 400)

    async def body(app, pilot):
        screen = _monitor(app)
        plot = screen.query_one(LossPlot)
        assert "running (preparing)" in text(screen, "#run-title")
        assert plot.thinned() == {}
        assert "c" in screen.active_bindings and "u" not in screen.active_bindings
        job.start()
        await until(pilot, lambda: len(screen.steps) >= 5, "five steps")
        first = {label: len(xs) for label, (xs, _) in plot.thinned().items()}
        assert set(first) == {"new examples", "old examples"}
        await until(pilot, lambda: len(screen.steps) >= 15, "fifteen steps")
        later = {label: len(xs) for label, (xs, _) in plot.thinned().items()}
        assert all(later[label] > first[label] for label in first)
        await until(pilot, lambda: screen.status.iteration >= 200, "iteration 200")
        await pilot.pause(2 * POLL)
        bar = screen.query_one(ProgressBar)
        assert bar.total == 400 and bar.progress == screen.status.iteration
        rate = text(screen, "#run-rate")
        assert f"{PER_SECOND:.2f} it/s" in rate and "ETA" in rate
        assert "running (training)" in text(screen, "#run-title")
        assert not screen.query_one("#heldout").display
        job.join()
        # the job ends: the held-out check lands, then the state says done
        run.append_metrics({"heldout": HELDOUT})
        write_status(run, state="done", pid=None, iteration=400, iterations=400)
        await until(pilot, lambda: screen.query_one("#heldout").display, "held-out figures")
        heldout = text(screen, "#heldout")
        assert "0.810" in heldout and "0.740" in heldout and "0.674" in heldout
        await until(pilot, lambda: screen.status.effective_state == "done", "done")
        await pilot.pause()
        assert "took 1 min 20 s" in text(screen, "#run-rate")  # 400 at 5/s
        assert "u" in screen.active_bindings and "c" not in screen.active_bindings
        assert len(plot.thinned()["new examples"][0]) == 40
        await pilot.press("u")
        await pilot.pause()
        assert app.return_value == "LiveNet"

    try:
        attach(run, body)
    finally:
        job.stop.set()


def test_curves_are_thinned_to_the_panel_width():
    run = make_run("LongNet", state="done", iteration=5000, iterations=5000)
    lines = (json.dumps(step(iteration)) + "\n" for iteration in range(1, 5001))
    (run.path / "metrics.jsonl").write_text("".join(lines))  # at once: 5000 fsyncs are slow

    async def body(app, pilot):
        plot = _monitor(app).query_one(LossPlot)
        points = plot.thinned()
        assert 0 < len(points["new examples"][0]) <= 2 * plot.size.width < 5000
        assert len(points["old examples"][0]) == len(points["new examples"][0])

    attach(run, body)


def screen_text(app) -> list[str]:
    """The screen as rows of plain text, as a terminal would show it."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip) for strip in strips]


def shown_in(app, widget) -> str:
    """The text on screen inside ``widget``'s content region, rows joined by spaces."""
    region = widget.content_region
    rows = screen_text(app)[region.y : region.bottom]
    return " ".join(row[region.x : region.right] for row in rows)


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
def test_a_small_terminal_shows_all_the_figures_and_the_newest_log_line(held_lock, size):
    """Issue 12: at 100x30 the progress text was cut, and the log pane stopped following
    as soon as a line wrapped."""
    run = make_run("SmallNet", pid=os.getpid(), iteration=12340, iterations=20000,
                   phase="training")  # fmt: skip
    held_lock(run)
    for iteration in range(10, 12341, 10):
        run.append_metrics(step(iteration, per_second=0.05))  # hours to go
    long = "warning: " + "a long message that wraps " * 8
    lines = [f"iteration {i}/20000  loss new 0.1234  lr 1.00e-03  0.05 it/s" for i in range(6)]
    lines[2:2] = [long, long]
    (run.path / "log.txt").write_text("\n".join([*lines, long + " NEWEST"]) + "\n")

    async def main() -> None:
        app = MonitorApp(run, poll_seconds=POLL)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: _monitor(app).updates > 0, "the first read")
            await pilot.pause()
            screen = _monitor(app)
            figures = text(screen, "#run-rate")
            assert "ETA" in figures and "h" in figures
            shown = shown_in(app, screen.query_one("#run-rate"))
            assert shown.split() == figures.split()
            log = screen.query_one("#run-log")
            assert log.region.bottom <= size[1] - 1  # above the footer
            assert shown_in(app, log).rstrip().endswith("NEWEST")

    asyncio.run(main())


def test_the_log_tail_keeps_whole_lines_and_the_newest_at_the_bottom():
    rows = [str(row) for row in tail_rows(["one", "two " * 5, "three"], 10, 3)]
    assert rows == ["three"]  # "two ..." takes 2 rows: it does not fit beside "three"
    rows = [str(row) for row in tail_rows(["a", "b", "x" * 25], 10, 2)]
    assert rows == ["x" * 10, "x" * 5]  # a newest line taller than the pane: its end
    assert [str(row) for row in tail_rows(["a", "", "b"], 10, 5)] == ["a", "", "b"]


# --------------------------------------------------------------------------- attach


def test_attach_to_a_finished_run_and_use_its_model():
    run = make_run("DoneNet", state="done", iteration=100, iterations=100)
    for iteration in range(10, 110, 10):
        run.append_metrics(step(iteration))
    run.append_metrics({"heldout": HELDOUT})
    run.log("training done")

    async def body(app, pilot):
        screen = _monitor(app)
        assert "done" in text(screen, "#run-title")
        assert "100 / 100 iterations" in text(screen, "#run-rate")
        assert "0.773" in text(screen, "#heldout")
        assert "training done" in text(screen, "#run-log")
        assert not screen.query_one("#run-error").display
        assert screen.query_one(ProgressBar).percentage == 1.0
        # the watcher is short reads, not an endless worker: waiting for workers ends
        await asyncio.wait_for(app.workers.wait_for_complete(), timeout=5)
        await pilot.press("c")  # nothing to cancel: no dialog
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("u")
        await pilot.pause()

    async def main() -> str | None:
        app = MonitorApp(run, poll_seconds=POLL)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: _monitor(app).updates > 0, "the first read")
            await body(app, pilot)
        return app.return_value

    assert asyncio.run(main()) == "DoneNet"


def test_attach_to_a_failed_run_shows_its_error():
    run = make_run("FailNet", state="failed", iteration=30, error="CUDA out of memory")
    for iteration in (10, 20, 30):
        run.append_metrics(step(iteration, old=False))

    async def main() -> str | None:
        app = MonitorApp(run, poll_seconds=POLL)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: _monitor(app).updates > 0, "the first read")
            await pilot.pause()
            screen = _monitor(app)
            assert screen.query_one("#run-error").display
            assert text(screen, "#run-error") == "error: CUDA out of memory"
            assert "failed" in text(screen, "#run-title")
            assert set(screen.query_one(LossPlot).thinned()) == {"new examples"}
            assert "u" not in screen.active_bindings and "c" not in screen.active_bindings
            await pilot.press("u")  # no model to use: stays
            await pilot.pause()
            assert app.screen is screen
            await pilot.press("d")  # detach ends the attach app
            await pilot.pause()
        return app.return_value

    assert asyncio.run(main()) is None


def test_cancel_a_running_job_after_confirming():
    # the job: a process that holds the run's lock and records itself there, as a job does
    # (cancel signals nothing else: issue 11.5)
    run = make_run("CancelNet", iteration=20, phase="training")
    sleeper = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(run.path)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert sleeper.stdout.readline().strip() == "locked"
    run.update_status(pid=sleeper.pid)
    for iteration in (10, 20):
        run.append_metrics(step(iteration))

    async def main() -> None:
        app = MonitorApp(run, poll_seconds=POLL)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: _monitor(app).updates > 0, "the first read")
            screen = _monitor(app)
            assert screen.status.effective_state == "running"
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            await pilot.press("n")  # keep going
            await pilot.pause()
            assert app.screen is screen and sleeper.poll() is None
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
            await pilot.press("y")
            await until(pilot, lambda: screen.status.effective_state == "cancelled", "cancelled")
            await pilot.pause()
            assert "cancelled" in text(screen, "#run-title")
            assert "c" not in screen.active_bindings

    try:
        asyncio.run(main())
        sleeper.wait(timeout=5)  # it got the SIGTERM (the monitor reaped it already, maybe)
        assert run.raw_status().state == "cancelled"
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


_HOLD_LOCK = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from boxnet_tui.training.runs import Run
fd = Run(sys.argv[1]).lock()
print("locked", flush=True)
time.sleep(60)
"""


# --------------------------------------------------------------------------- the run list


def test_t_lists_the_runs_and_enter_opens_a_monitor(tmp_path: Path):
    folder = make_folder(tmp_path)
    make_run("OlderNet", state="done", iteration=200, created="2024-01-01T00:00:00")
    newer = make_run("NewerNet", state="failed", iteration=40, error="disk full")
    newer.append_metrics(step(40))

    async def main() -> None:
        session = CurationSession(folder, diameter=DIAMETER)
        app = BoxnetApp(session, graphics="halfcell")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen), "the run list")
            runs = app.screen
            await until(pilot, lambda: runs.rows is not None, "the rows")
            await pilot.pause()
            table = runs.query_one(DataTable)
            assert table.row_count == 2
            assert [str(c) for c in table.get_row_at(0)[:5]] == [
                "NewerNet",
                "failed",
                "40/200",
                f"{step(40)['loss_new']:.4f}",
                f"{step(40)['loss_old']:.4f}",
            ]
            assert str(table.get_row_at(1)[1]) == "done"
            await pilot.press("down", "enter")
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
            assert app.screen.run.name == "OlderNet"
            await pilot.press("a")  # a curation key does nothing under the monitor
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is runs, "back to the list")
            await pilot.press("enter")  # the cursor stayed on OlderNet
            await until(pilot, lambda: isinstance(app.screen, MonitorScreen), "the monitor")
            assert app.screen.run.name == "OlderNet"
            await pilot.press("escape", "escape")
            await until(pilot, lambda: not isinstance(app.screen, RunsScreen), "the app")
            assert len(star(folder)) == len(PICKS)  # the `a` above added nothing

    asyncio.run(main())


def test_empty_run_list(tmp_path: Path):
    async def main() -> None:
        app = BoxnetApp(CurationSession(make_folder(tmp_path, 1), diameter=DIAMETER))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("t")
            await until(pilot, lambda: getattr(app.screen, "rows", None) == [], "no rows")
            await pilot.pause()
            assert "no runs yet" in text(app.screen, "#runs-empty")

    asyncio.run(main())


# --------------------------------------------------------------------------- CLI


def test_attach_to_a_missing_run_says_so_in_one_line(capsys):
    assert cli_main(["runs", "attach", "NOPE"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run named 'NOPE'" in err
    assert cli_main(["runs", "attach"]) == 2
    assert "needs the name of a run" in capsys.readouterr().err


# --------------------------------------------------------------------------- snapshot


def snapshot_run() -> Run:
    """A run half-way, with both curves: every figure fixed, nothing read from a clock."""
    run = make_run("SnapNet", pid=os.getpid(), iteration=150, iterations=300, phase="training")
    for iteration in range(10, 160, 10):
        record = step(iteration, per_second=2.5)
        record["loss_new"] += 0.03 * ((iteration // 10) % 3 - 1)  # a little noise, fixed
        run.append_metrics(record)
    lines = [
        f"2025-01-02 03:{4 + i // 6:02d}:{(i * 10) % 60:02d}  iteration {i * 10}/300  "
        f"loss new {step(i * 10)['loss_new']:.4f}  lr 1.00e-03  2.50 it/s"
        for i in range(1, 16)
    ]
    (run.path / "log.txt").write_text("\n".join(lines) + "\n")
    return run


def test_monitor_snapshot(snap_compare, held_lock):
    run = snapshot_run()
    held_lock(run)

    async def shown(pilot) -> None:
        await until(pilot, lambda: _monitor(pilot.app).updates > 0, "the first read")
        await pilot.pause()

    assert snap_compare(MonitorApp(run, poll_seconds=POLL), terminal_size=SIZE, run_before=shown)
