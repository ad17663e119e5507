"""Following a training run from outside: what the monitor screen and the run list show.

Plain Python (no Textual), so the screens stay thin and the arithmetic is tested on its own.
:class:`MetricsTail` follows a run's ``metrics.jsonl`` the way ``tail -f`` would, noticing when
a resume rewrote the file; the functions turn step records into curves thinned to a panel's
width, a speed in iterations per second, an ETA, and lines of text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.training.runs import (
    DONE,
    FAILED,
    METRICS,
    QUEUED,
    RUNNING,
    STALE,
    Run,
    RunStatus,
    list_runs,
    parse_json_lines,
)

NEW, OLD = "new examples", "old examples"  # the curves' labels, as Warp names the two losses
SPEED_WINDOW = 20  # step records the speed is measured over: recent, but not jumpy
TAIL_BYTES = 8192  # enough of the end of metrics.jsonl for its last step record


@dataclass
class TailUpdate:
    """What one :meth:`MetricsTail.poll` found.

    Attributes:
        steps: the new step records (those with an integer ``iteration``), in file order.
        heldout: the held-out record if one arrived in this poll.
        reset: the file was replaced or shortened (a resume rewrote it): forget what was read
            before; ``steps`` then holds the whole new file.
    """

    steps: list[dict[str, Any]] = field(default_factory=list)
    heldout: dict[str, Any] | None = None
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.steps) or self.heldout is not None or self.reset


class MetricsTail:
    """Follows a ``metrics.jsonl``: each :meth:`poll` returns the complete lines added since.

    A half-written last line is left for the next poll. A file that was replaced (another
    inode: ``truncate_metrics`` writes atomically) or got shorter is read again from the
    start, with ``reset`` set, so a resumed run's curves never carry the discarded steps.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.offset = 0
        self._identity: tuple[int, int] | None = None

    def poll(self) -> TailUpdate:
        """Read what was appended since the last poll (nothing if the file does not exist)."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115  (fstat of the very file read)
        except FileNotFoundError:
            reset = self.offset > 0
            self.offset, self._identity = 0, None
            return TailUpdate(reset=reset)
        with handle:
            info = os.fstat(handle.fileno())
            identity = (info.st_dev, info.st_ino)
            reset = self._identity is not None and (
                identity != self._identity or info.st_size < self.offset
            )
            if reset:
                self.offset = 0
            self._identity = identity
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        update = TailUpdate(reset=reset)
        for record in parse_json_lines(data[:end]):
            if isinstance(record.get("iteration"), int):
                update.steps.append(record)
            elif isinstance(record.get("heldout"), dict):
                update.heldout = record["heldout"]
        return update


# --------------------------------------------------------------------------- curves


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value else None  # NaN is no point


def curves(steps: list[dict[str, Any]]) -> dict[str, tuple[list[float], list[float]]]:
    """The "new examples" and "old examples" loss curves as (iterations, losses).

    A step without a loss (null: NaN, or no public set) gives no point; a curve without any
    point is left out, so runs without the public set have the new curve only.
    """
    found: dict[str, tuple[list[float], list[float]]] = {}
    for label, key in ((NEW, "loss_new"), (OLD, "loss_old")):
        xs, ys = [], []
        for step in steps:
            y = _number(step.get(key))
            if y is not None:
                xs.append(float(step["iteration"]))
                ys.append(y)
        if xs:
            found[label] = (xs, ys)
    return found


def thin(xs: list[float], ys: list[float], points: int) -> tuple[list[float], list[float]]:
    """At most ``points`` points: consecutive points averaged in equal groups.

    Averaging (not skipping) keeps a noisy loss readable at any width; the last point is
    always the last group's, so the curve still ends where training is.
    """
    n = len(xs)
    points = max(1, points)
    if n <= points:
        return list(xs), list(ys)
    thinned_x, thinned_y = [], []
    for group in range(points):
        start, stop = group * n // points, (group + 1) * n // points
        count = stop - start
        thinned_x.append(sum(xs[start:stop]) / count)
        thinned_y.append(sum(ys[start:stop]) / count)
    return thinned_x, thinned_y


# --------------------------------------------------------------------------- speed


def speed(steps: list[dict[str, Any]], window: int = SPEED_WINDOW) -> float | None:
    """Iterations per second over the last ``window`` step records, from their ``iteration``
    and ``time`` (seconds since the run started); None until two records differ in time."""
    timed = [
        (step["iteration"], t)
        for step in steps[-max(2, window) :]
        if (t := _number(step.get("time"))) is not None
    ]
    if len(timed) < 2:
        return None
    (first_iteration, first_time), (last_iteration, last_time) = timed[0], timed[-1]
    if last_time <= first_time or last_iteration <= first_iteration:
        return None
    return (last_iteration - first_iteration) / (last_time - first_time)


def eta(steps: list[dict[str, Any]], iterations: int | None) -> float | None:
    """Seconds left at the current :func:`speed`; None while it cannot be told."""
    rate = speed(steps)
    if rate is None or not iterations or not steps:
        return None
    return max(0.0, (iterations - steps[-1]["iteration"]) / rate)


def format_duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 04 min``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_line(status: RunStatus, steps: list[dict[str, Any]]) -> str:
    """``120 / 400 iterations   2.31 it/s   ETA 2 min 10 s`` (``took …`` once done)."""
    total = status.iterations if status.iterations is not None else "?"
    parts = [f"{status.iteration} / {total} iterations"]
    rate = speed(steps)
    parts.append(f"{rate:.2f} it/s" if rate is not None else "- it/s")
    if status.effective_state == DONE:
        took = _number(steps[-1].get("time")) if steps else None
        parts.append(f"took {format_duration(took)}")
    elif status.effective_state in (QUEUED, RUNNING):
        parts.append(f"ETA {format_duration(eta(steps, status.iterations))}")
    return "   ".join(parts)


# --------------------------------------------------------------------------- text


def state_line(run_name: str, status: RunStatus) -> str:
    """The state in words, with the phase while it runs and what to do when it is stale."""
    state = status.effective_state
    if state in (QUEUED, RUNNING) and status.phase:
        return f"{state} ({status.phase})"
    if state == STALE:
        return f"stale: its process is gone; continue it with boxnet-tui train --resume {run_name}"
    if state == FAILED:
        return "failed"
    return state


def error_line(status: RunStatus) -> str | None:
    """The one-line error of a failed run (None otherwise)."""
    if status.effective_state != FAILED:
        return None
    return status.error or "failed without a message; see log.txt"


def step_line(record: dict[str, Any]) -> str:
    """One training step of ``metrics.jsonl`` as a line (``runs tail``); "-" for a missing or
    non-finite value."""

    def cell(key: str, spec: str) -> str:
        value = _number(record.get(key))
        return "-" if value is None else format(value, spec)

    old = "" if record.get("loss_old") is None else f"\told {cell('loss_old', '.4f')}"
    return (
        f"it {record.get('iteration', '?')}\tloss new {cell('loss_new', '.4f')}{old}"
        f"\tlr {cell('lr', '.2e')}\t{cell('time', '.0f')} s"
    )


def heldout_lines(record: dict[str, Any]) -> list[str]:
    """The held-out check as a small table: precision, recall and F1 of the new and base
    model on the micrograph left out of training."""
    where = record.get("micrograph", "?")
    if "error" in record:
        return [f"held-out check of {where}: {record['error']}"]
    reference = record.get("reference")
    head = f"held-out {where}" + (f" ({reference} curated picks)" if reference is not None else "")
    lines = [f"{head:<40}" + "".join(f"{name:>10}" for name in ("precision", "recall", "F1"))]
    for key, label in (("new", "new model"), ("base", "base model")):
        score = record.get(key)
        if not isinstance(score, dict):
            continue
        values = [_number(score.get(name)) for name in ("precision", "recall", "f1")]
        cells = "".join(f"{v:>10.3f}" if v is not None else f"{'-':>10}" for v in values)
        lines.append(f"  {label:<38}{cells}")
    f1 = {
        key: _number(record[key].get("f1")) if isinstance(record.get(key), dict) else None
        for key in ("new", "base")
    }
    # as shown: a difference under the third decimal read "F1 0.839 < 0.839"
    if (
        f1["new"] is not None
        and f1["base"] is not None
        and round(f1["new"], 3) < round(f1["base"], 3)
    ):
        lines.append(
            f"warning: the new model scores below its base here (F1 {f1['new']:.3f} < "
            f"{f1['base']:.3f}). Keep picking with the base, or curate more micrographs (and "
            "check that their picks are complete) and train again."
        )
    return lines


# --------------------------------------------------------------------------- run list


@dataclass
class RunRow:
    """One line of the run list."""

    name: str
    state: str
    iteration: int
    iterations: int | None
    loss_new: float | None
    loss_old: float | None
    base: str
    created: str

    @property
    def progress(self) -> str:
        total = self.iterations if self.iterations is not None else "?"
        return f"{self.iteration}/{total}"


def last_step(run: Run) -> dict[str, Any] | None:
    """The last complete step record of ``metrics.jsonl``, reading only the file's end."""
    path = run.path / METRICS
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return None
    steps = [r for r in parse_json_lines(data) if isinstance(r.get("iteration"), int)]
    return steps[-1] if steps else None


def run_row(run: Run) -> RunRow:
    """The run list's line of ``run`` (an unreadable config shows as "?")."""
    status = run.status()
    try:
        config = run.config()
        base, created = config.base, config.created
    except UserError:  # a broken run folder still gets its line
        base, created = "?", ""
    step = last_step(run) or {}
    return RunRow(
        name=run.name,
        state=status.effective_state,
        iteration=status.iteration,
        iterations=status.iterations,
        loss_new=_number(step.get("loss_new")),
        loss_old=_number(step.get("loss_old")),
        base=base,
        created=created,
    )


def run_rows() -> list[RunRow]:
    """Every run's line, newest first."""
    return [run_row(run) for run in list_runs()]
