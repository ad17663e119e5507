"""The monitor's core: tailing metrics.jsonl, thinning curves, speed, ETA, the lines shown.

``make_run`` writes a run folder by hand in runs.py's format (no model, no folder checks), so
these tests and the screen tests in test_monitor.py can set up any state in milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.run_monitor import (
    NEW,
    OLD,
    MetricsTail,
    curves,
    error_line,
    eta,
    format_duration,
    heldout_lines,
    last_step,
    progress_line,
    run_rows,
    speed,
    state_line,
    step_line,
    thin,
)
from boxnet_tui.training.runs import CONFIG, STATUS, Run, RunConfig, RunStatus, run_path

HELDOUT = {
    "micrograph": "mic3",
    "reference": 42,
    "new": {"precision": 0.81, "recall": 0.74, "f1": 0.7734},
    "base": {"precision": 0.65, "recall": 0.7, "f1": 0.674},
}


def make_run(
    name: str,
    *,
    state: str = "running",
    iteration: int = 0,
    iterations: int | None = 200,
    created: str = "2025-01-02T03:04:05+00:00",
    **status: Any,
) -> Run:
    """A run folder as runs.create_run and the job leave it, written directly."""
    path = run_path(name)
    path.mkdir(parents=True)
    config = RunConfig(name, "/data/mics", "/data/mics/matching/a_BoxNet.star", created=created)
    (path / CONFIG).write_text(json.dumps(config.to_json(), indent=1))
    write_status(
        Run(path),
        state=state,
        iteration=iteration,
        iterations=iterations,
        started="2025-01-02T03:04:06+00:00",
        updated="2025-01-02T03:04:07+00:00",
        **status,
    )
    return Run(path)


def write_status(run: Run, **fields: Any) -> None:
    """status.json with fixed fields (Run.write_status would stamp the time)."""
    data = RunStatus().to_json()
    data.update(fields)
    atomic_write_text(run.path / STATUS, json.dumps(data, indent=1))


def step(iteration: int, per_second: float = 5.0, old: bool = True) -> dict[str, Any]:
    """A metrics line logged at ``per_second`` iterations a second."""
    return {
        "iteration": iteration,
        "loss_new": 1.0 / (1 + iteration / 50),
        "loss_old": 0.5 / (1 + iteration / 100) if old else None,
        "lr": 1e-3,
        "time": iteration / per_second,
    }


# --------------------------------------------------------------------------- tailing


def test_tail_follows_appends_and_leaves_a_torn_line(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert not tail.poll()  # no file yet
    with open(path, "w") as handle:
        handle.write(json.dumps(step(10)) + "\n" + json.dumps(step(20)) + "\n")
    update = tail.poll()
    assert [s["iteration"] for s in update.steps] == [10, 20] and not update.reset
    assert not tail.poll()
    with open(path, "a") as handle:
        handle.write('{"iteration": 30, "loss_n')  # being written
    assert not tail.poll()
    with open(path, "a") as handle:
        handle.write('ew": 0.5, "time": 6.0}\n{"heldout": ' + json.dumps(HELDOUT) + "}\n")
    update = tail.poll()
    assert [s["iteration"] for s in update.steps] == [30] and update.heldout == HELDOUT


def test_tail_restarts_when_a_resume_rewrites_the_file(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(step(i)) + "\n" for i in (10, 20, 30, 40)))
    tail = MetricsTail(path)
    assert len(tail.poll().steps) == 4
    # truncate_metrics keeps the steps up to the checkpoint, written atomically (new inode)
    atomic_write_text(path, "".join(json.dumps(step(i)) + "\n" for i in (10, 20)))
    update = tail.poll()
    assert update.reset and [s["iteration"] for s in update.steps] == [10, 20]
    # the same file made shorter in place
    with open(path, "r+") as handle:
        handle.truncate(len(json.dumps(step(10))) + 1)
    update = tail.poll()
    assert update.reset and [s["iteration"] for s in update.steps] == [10]
    # rewritten to the very same size: still a new file, still read afresh
    atomic_write_text(path, json.dumps(step(10)) + "\n")
    update = tail.poll()
    assert update.reset and [s["iteration"] for s in update.steps] == [10]
    os.unlink(path)
    assert tail.poll().reset


# --------------------------------------------------------------------------- curves


def test_curves_skip_missing_losses_and_leave_out_an_empty_old_curve():
    steps = [step(i, old=False) for i in (10, 20, 30)]
    steps[1]["loss_new"] = None  # NaN written as null
    assert set(curves(steps)) == {NEW}
    assert curves(steps)[NEW][0] == [10.0, 30.0]
    both = curves([step(10), step(20)])
    assert set(both) == {NEW, OLD} and both[OLD][1] == [0.5 / 1.1, 0.5 / 1.2]
    assert curves([]) == {}


def test_thin_averages_groups_and_keeps_the_end():
    xs = [float(i) for i in range(10)]
    assert thin(xs, xs, 20) == (xs, xs)
    tx, ty = thin(xs, [2 * x for x in xs], 5)
    assert tx == [0.5, 2.5, 4.5, 6.5, 8.5] and ty == [1.0, 5.0, 9.0, 13.0, 17.0]
    many = [float(i) for i in range(1000)]
    tx, _ = thin(many, many, 37)
    assert len(tx) == 37 and tx[-1] > 985 and tx == sorted(tx)
    assert len(thin(many, many, 0)[0]) == 1


# --------------------------------------------------------------------------- speed


def test_speed_and_eta_from_the_records_times():
    assert speed([]) is None and speed([step(10)]) is None
    steps = [step(i, per_second=4.0) for i in range(10, 110, 10)]
    assert speed(steps) == pytest.approx(4.0)
    assert eta(steps, 300) == pytest.approx(50.0)  # 200 left at 4/s
    assert eta(steps, None) is None
    # only the recent window counts: the run got faster
    faster = steps + [{**step(i), "time": 25.0 + (i - 100) / 10.0} for i in range(110, 600, 10)]
    assert speed(faster) == pytest.approx(10.0)
    assert speed([{**step(10), "time": 5.0}, {**step(20), "time": 5.0}]) is None


def test_format_duration():
    assert format_duration(None) == "-"
    assert format_duration(44.6) == "45 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(2 * 3600 + 4 * 60 + 10) == "2 h 04 min"


# --------------------------------------------------------------------------- text


def test_progress_state_and_error_lines():
    steps = [step(i) for i in range(10, 110, 10)]
    running = RunStatus(state="running", iteration=100, iterations=200, phase="training")
    running.effective_state = "running"
    assert progress_line(running, steps) == "100 / 200 iterations   5.00 it/s   ETA 20 s"
    assert state_line("Net", running) == "running (training)"
    assert error_line(running) is None
    done = RunStatus(state="done", iteration=100, iterations=100)
    done.effective_state = "done"
    assert progress_line(done, steps) == "100 / 100 iterations   5.00 it/s   took 20 s"
    queued = RunStatus()
    assert progress_line(queued, []) == "0 / ? iterations   - it/s   ETA -"
    failed = RunStatus(state="failed", error="CUDA out of memory")
    failed.effective_state = "failed"
    assert state_line("Net", failed) == "failed" and error_line(failed) == "CUDA out of memory"
    failed.error = None
    assert "log.txt" in str(error_line(failed))
    stale = RunStatus(state="running")
    stale.effective_state = "stale"
    assert "--resume Net" in state_line("Net", stale)


def test_heldout_lines():
    lines = heldout_lines(HELDOUT)
    assert lines[0].startswith("held-out mic3 (42 curated picks)")
    assert lines[0].split()[-3:] == ["precision", "recall", "F1"]
    assert lines[1].split() == ["new", "model", "0.810", "0.740", "0.773"]
    assert lines[2].split() == ["base", "model", "0.650", "0.700", "0.674"]
    assert len({len(line) for line in lines}) == 1  # the columns line up
    assert heldout_lines({"micrograph": "m", "error": "no micrograph m"}) == [
        "held-out check of m: no micrograph m"
    ]


def test_heldout_lines_warn_when_the_new_model_is_worse_than_its_base():
    worse = {**HELDOUT, "new": HELDOUT["base"], "base": HELDOUT["new"]}
    lines = heldout_lines(worse)
    assert len(lines) == 4 and lines[-1].startswith("warning: the new model scores below")
    assert "0.674 < 0.773" in lines[-1]
    assert not any(line.startswith("warning") for line in heldout_lines(HELDOUT))
    # a difference that the three decimals shown do not show is no warning
    level = {
        **HELDOUT,
        "new": {**HELDOUT["new"], "f1": 0.8391},
        "base": {**HELDOUT["base"], "f1": 0.8393},
    }
    assert not any(line.startswith("warning") for line in heldout_lines(level))


# --------------------------------------------------------------------------- run list


def test_run_rows_newest_first_with_last_losses():
    old = make_run("OldNet", state="done", iteration=200, created="2024-01-01T00:00:00")
    for i in range(10, 210, 10):
        old.append_metrics(step(i))
    old.append_metrics({"heldout": HELDOUT})  # after the last step: not a step
    new = make_run("NewNet", state="queued", iterations=None, created="2025-06-01T00:00:00")
    rows = run_rows()
    assert [r.name for r in rows] == ["NewNet", "OldNet"]
    assert (rows[0].state, rows[0].progress, rows[0].loss_new) == ("queued", "0/?", None)
    assert rows[1].progress == "200/200" and rows[1].loss_new == pytest.approx(1 / 5)
    assert rows[1].loss_old == pytest.approx(0.5 / 3) and rows[1].base == "BoxNetMask"
    # a long file: only its end is read, and that is enough
    for i in range(1000):
        new.append_metrics(step(i))
    assert last_step(new)["iteration"] == 999
    (old.path / CONFIG).write_text("{broken")
    assert [r.base for r in run_rows()] == ["BoxNetMask", "?"]


def test_step_line_shows_a_dash_for_a_missing_or_bad_value():
    record = {"iteration": 7, "loss_new": 0.01234, "loss_old": 0.5, "lr": 1e-3, "time": 12.4}
    assert step_line(record) == "it 7\tloss new 0.0123\told 0.5000\tlr 1.00e-03\t12 s"
    assert step_line({"iteration": 8, "loss_new": None, "lr": "x"}) == (
        "it 8\tloss new -\tlr -\t- s"
    )
