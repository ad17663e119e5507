"""`boxnet-tui runs attach NAME`: the training monitor of one run, on its own.

For a new SSH session (or tmux window) where only the run matters; leaving it (detach, back)
ends this app and never the run.
"""

from __future__ import annotations

from textual.app import App

from boxnet_tui.training.runs import Run
from boxnet_tui.tui.app import stylesheet
from boxnet_tui.tui.screens.monitor import POLL_SECONDS, MonitorScreen


class MonitorApp(App[str | None]):
    """Returns (from ``run()``) the run's name if the user chose to use its model, else None."""

    TITLE = "boxnet-tui"
    CSS_PATH = stylesheet()

    def __init__(self, run: Run, *, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.training_run = run
        self.poll_seconds = poll_seconds

    def on_mount(self) -> None:
        self.push_screen(
            MonitorScreen(self.training_run, poll_seconds=self.poll_seconds), self.exit
        )
