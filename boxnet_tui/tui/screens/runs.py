"""The run list (`t`): every training run with its state, progress and last losses.

Enter opens a run's monitor. Worker threads re-read the run store while the list is shown
(runs started from the CLI appear, states change) and posts the rows to the UI.
"""

from __future__ import annotations

from contextlib import suppress

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker

from boxnet_tui.errors import UserError
from boxnet_tui.run_monitor import RunRow, run_rows
from boxnet_tui.training.runs import find_run
from boxnet_tui.tui.screens.monitor import POLL_SECONDS, MonitorScreen

REFRESH_SECONDS = 2.0
COLUMNS = ("name", "state", "progress", "loss new", "loss old", "base", "created")


def _loss(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


class RunsScreen(ModalScreen[str | None]):
    """Dismisses with a model's name when the user chose to use it in a run's monitor."""

    BINDINGS = [
        Binding("enter", "open", "monitor", show=True),
        Binding("escape", "back", "back"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[RunRow]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(
        self, *, refresh_seconds: float = REFRESH_SECONDS, poll_seconds: float = POLL_SECONDS
    ) -> None:
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self.poll_seconds = poll_seconds  # handed on to the monitors opened from here
        self.rows: list[RunRow] | None = None  # None until the first read
        self._loader: Worker | None = None
        self._shown = True

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs"):
            yield Static("Training runs, newest first (enter: monitor)", id="runs-title")
            table = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            yield Static("reading the runs…", id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "training runs"
        self.query_one(DataTable).focus()
        self._tick()
        self.set_interval(self.refresh_seconds, self._tick)

    def on_screen_suspend(self) -> None:
        self._shown = False  # a monitor covers the list: no reading meanwhile

    def on_screen_resume(self) -> None:
        self._shown = True
        self._tick()  # back from a monitor: show the states as they are now

    # -- reading: one short worker per tick (an endless one would never let the app's
    # workers complete), which posts the rows and never touches widgets
    def _tick(self) -> None:
        if self._shown and (self._loader is None or self._loader.is_finished):
            self._loader = self._load()

    @work(thread=True, group="runs-list")
    def _load(self) -> None:
        with suppress(OSError):  # OSError: a run folder made or removed now
            self.post_message(self.Loaded(run_rows()))

    def on_runs_screen_loaded(self, message: Loaded) -> None:
        if message.rows == self.rows:
            return
        chosen = self._chosen()  # against the rows shown so far
        self.rows = message.rows
        table = self.query_one(DataTable)
        table.clear()
        for row in message.rows:
            table.add_row(
                row.name,
                row.state,
                row.progress,
                _loss(row.loss_new),
                _loss(row.loss_old),
                row.base,
                row.created[:16].replace("T", " "),
                key=row.name,
            )
        names = [row.name for row in message.rows]
        if chosen in names:
            table.move_cursor(row=names.index(chosen))
        empty = self.query_one("#runs-empty", Static)
        empty.display = not message.rows
        empty.update("no runs yet: start one with r (retrain) or boxnet-tui train")

    def _chosen(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.row_count == 0:
            return None
        row = table.cursor_row
        return self.rows[row].name if 0 <= row < len(self.rows) else None

    # -- actions ----------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.open_monitor(event.row_key.value)

    def action_open(self) -> None:
        name = self._chosen()
        if name is not None:
            self.open_monitor(name)

    def open_monitor(self, name: str) -> None:
        """Push the monitor of run ``name``; using its model dismisses the list too."""
        try:
            run = find_run(name)
        except UserError as error:
            self.notify(str(error), severity="error")
            return

        def closed(model: str | None) -> None:
            if model:
                self.dismiss(model)

        self.app.push_screen(MonitorScreen(run, poll_seconds=self.poll_seconds), closed)

    def action_back(self) -> None:
        self.dismiss(None)
