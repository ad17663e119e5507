"""The training monitor: one run's loss curves, progress, speed, log and held-out check.

Every ``poll_seconds`` a worker thread reads what is new in the run folder (``metrics.jsonl``
through :class:`~boxnet_tui.run_monitor.MetricsTail`, ``status.json``, the end of ``log.txt``)
and posts :class:`MonitorScreen.Changed` messages; only the UI thread touches widgets. The run is
its own process: leaving this screen (detach) never stops it, and any run can be shown,
whether started here, from the CLI or in an earlier session, running or long finished.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import Worker

from boxnet_tui.errors import UserError
from boxnet_tui.run_monitor import (
    MetricsTail,
    TailUpdate,
    error_line,
    heldout_lines,
    progress_line,
    state_line,
)
from boxnet_tui.training import runs
from boxnet_tui.training.runs import DONE, FINAL_STATES, METRICS, Run, RunStatus
from boxnet_tui.tui.screens.confirm import ConfirmScreen
from boxnet_tui.tui.widgets.log_tail import LogTail
from boxnet_tui.tui.widgets.loss_plot import LossPlot

POLL_SECONDS = 0.5  # how often the run folder is read: live enough, and cheap
LOG_LINES = 8  # the pane shows at most 8 rows (fewer when lines wrap or the terminal is short)
CANCEL_WAIT = 10.0  # seconds to let the job checkpoint and say "cancelled"


class MonitorScreen(ModalScreen[str | None]):
    """Shows ``run`` live. Dismisses with the run's name when the user chooses to use the
    trained model (`u`), with None on detach or back.

    Modal so that the curation keys of the screen beneath never act while it is shown.
    """

    BINDINGS = [
        Binding("d", "detach", "detach"),
        Binding("c", "cancel_run", "cancel run"),
        Binding("u", "use_model", "use this model"),
        Binding("escape", "back", "back"),
    ]

    class Changed(Message):
        """The worker read something new in the run folder."""

        def __init__(self, update: TailUpdate, status: RunStatus, log: list[str]) -> None:
            super().__init__()
            self.update = update
            self.status = status
            self.log = log

    def __init__(self, run: Run, *, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.run = run
        self.poll_seconds = poll_seconds
        self.steps: list[dict[str, Any]] = []
        self.heldout: dict[str, Any] | None = None
        self.status: RunStatus | None = None  # None until the worker's first read
        self.log_lines: list[str] = []
        self.updates = 0  # Changed messages handled: tests wait on it
        self._tail = MetricsTail(run.path / METRICS)
        self._seen: tuple | None = None  # what was last posted, to post only changes
        self._read_lock = threading.Lock()  # the cancel worker reads too
        self._reader: Worker | None = None

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="monitor"):
            yield Static(self._title_text(), id="run-title")
            yield Static("", id="run-error", classes="error")
            yield LossPlot(id="loss")
            with Horizontal(id="run-progress"):
                yield ProgressBar(total=None, show_eta=False, id="progress")
                yield Static("reading the run…", id="run-rate")
            yield Static("", id="heldout")
            log = LogTail(id="run-log")
            log.border_title = "log.txt"
            yield log
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.run.name}"
        self.query_one("#run-error").display = False
        self.query_one("#heldout").display = False
        self._tick()
        self.set_interval(self.poll_seconds, self._tick)

    # -- the watcher: short reads in worker threads, which post messages and never touch
    # widgets. One read per tick rather than one endless worker, so that waiting for the
    # app's workers (as tests do) still ends.
    def _tick(self) -> None:
        if self._reader is None or self._reader.is_finished:  # never a queue of reads
            self._reader = self._read()

    @work(thread=True, group="monitor-read")
    def _read(self) -> None:
        self._read_once()

    def _read_once(self) -> None:
        """Read what is new in the run folder and post it (any thread; one read at a time)."""
        with self._read_lock:
            try:
                update = self._tail.poll()
                status = self.run.status()
                log = self.run.tail_log(LOG_LINES)
            except OSError:  # a file being replaced this instant: read again next tick
                return
            seen = (status.effective_state, status.to_json(), log)
            if update or seen != self._seen:
                self._seen = seen
                self.post_message(self.Changed(update, status, log))

    def on_monitor_screen_changed(self, message: Changed) -> None:
        update = message.update
        if update.reset:
            self.steps = []
            self.heldout = None
        self.steps.extend(update.steps)
        if update.heldout is not None:
            self.heldout = update.heldout
        before = self.status.effective_state if self.status else None
        self.status = message.status
        self.log_lines = message.log
        self.updates += 1
        self._show()
        if before != self.status.effective_state:
            self.refresh_bindings()  # cancel and use-model depend on the state

    # -- showing ----------------------------------------------------------------------------
    def _title_text(self) -> Text:
        try:
            base = self.run.config().base
        except UserError:
            base = "?"
        state = state_line(self.run.name, self.status) if self.status else "…"
        return Text.assemble(
            (self.run.name, "bold"), f"  from {base}   ", (state, _state_style(self.status))
        )

    def _show(self) -> None:
        status = self.status
        assert status is not None
        self.query_one("#run-title", Static).update(self._title_text())
        error = error_line(status)
        shown_error = self.query_one("#run-error", Static)
        shown_error.display = error is not None
        shown_error.update(Text(f"error: {error}") if error else "")
        self.query_one(LossPlot).set_steps(self.steps, status.iterations)
        bar = self.query_one(ProgressBar)
        if status.iterations:
            bar.update(total=status.iterations, progress=min(status.iteration, status.iterations))
        self.query_one("#run-rate", Static).update(progress_line(status, self.steps))
        heldout = self.query_one("#heldout", Static)
        heldout.display = self.heldout is not None
        if self.heldout is not None:
            heldout.update(Text("\n".join(heldout_lines(self.heldout))))
        self.query_one(LogTail).set_lines(self.log_lines)

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.status.effective_state if self.status else None
        if action == "cancel_run":
            return state is not None and state not in FINAL_STATES
        if action == "use_model":
            return state == DONE
        return True

    def action_detach(self) -> None:
        if self.status is not None and self.status.active:
            self.notify(f"run {self.run.name} goes on; t (or boxnet-tui runs attach) shows it")
        self.dismiss(None)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_use_model(self) -> None:
        if self.status is not None and self.status.effective_state == DONE:
            self.dismiss(self.run.name)

    def action_cancel_run(self) -> None:
        if self.status is None or self.status.effective_state in FINAL_STATES:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify(f"cancelling {self.run.name}…")
                self._cancel()

        question = (
            f"Cancel run {self.run.name}? It stops at its next step; "
            "its last checkpoint is kept (boxnet-tui train --resume continues it)."
        )
        self.app.push_screen(ConfirmScreen(question, yes="Cancel run", no="Keep going"), answered)

    @work(thread=True, exclusive=True, group="monitor-cancel")
    def _cancel(self) -> None:
        try:
            status = runs.cancel(self.run, wait=CANCEL_WAIT)
        except UserError as error:
            self.app.call_from_thread(self.notify, str(error), severity="warning")
            return
        self.app.call_from_thread(self.notify, f"{self.run.name}: {status.effective_state}")
        self._read_once()  # show the new state now, not at the next tick


def _state_style(status: RunStatus | None) -> str:
    state = status.effective_state if status else None
    return {
        "running": "bold green",
        "done": "bold cyan",
        "failed": "bold red",
        "cancelled": "bold yellow",
        "stale": "bold yellow",
    }.get(state or "", "")
