"""The `?` screen: every key of the viewer, what it does, grouped as the Footer cannot.

The rows come from ``key_table`` (as the bindings and the README table do).

The keys are a Rich table in a scrolling box as wide as the table needs and the screen
allows: on a narrow terminal the descriptions wrap instead of being cut.
"""

from __future__ import annotations

from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from boxnet_tui.tui.key_table import help_rows

MAX_WIDTH = 110  # cells: wider, the eye loses the row between the keys and what they do

# (keys, what they do), in the order a user learns them; a long description wraps by itself
KEYS: list[tuple[str, str]] = help_rows()


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static("[b]boxnet-tui keys[/b]  (escape closes)", id="help-title")
            yield Static(key_table(), id="help-keys")

    def on_mount(self) -> None:
        """The box as wide as the table's longest row, its border, padding and scroll bar
        (up to MAX_WIDTH: longer descriptions wrap, as they do on a narrow screen)."""
        console = self.app.console
        unbounded = console.options.update_width(1000)
        natural = Measurement.get(console, unbounded, key_table()).maximum
        self.query_one("#help").styles.width = min(natural + 6, MAX_WIDTH)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


def key_table() -> Table:
    """The keys and what they do; the second column wraps when the screen is narrow."""
    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column("keys", style="bold", no_wrap=True)
    table.add_column("what it does", overflow="fold")
    for keys, what in KEYS:
        table.add_row(Text(keys), Text(what))  # plain text: "[ / ]" is no markup
    return table
