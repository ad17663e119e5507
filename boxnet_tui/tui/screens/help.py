"""The `?` screen: every key of the viewer, what it does, grouped as the Footer cannot.

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

MAX_WIDTH = 110  # cells: wider, the eye loses the row between the keys and what they do

# (keys, what they do), in the order a user learns them; a long description wraps by itself
KEYS: list[tuple[str, str]] = [
    ("← ↓ ↑ → / h j k l", "move the cursor one cell"),
    ("shift+arrows / H J K L", "move the cursor eight cells"),
    ("tab / shift+tab", "next / previous pick, in reading order (rows one diameter high)"),
    ("o", "tab steps lowest score first (the doubtful picks), or in reading order"),
    ("a / space", "add a pick at the cursor"),
    ("x / delete", "remove the ringed pick, recorded as a false positive"),
    ("X", "remove the nearest pick without recording it (Warp's Shift)"),
    ("m", "grab the nearest pick; it follows the cursor; m or enter drops it"),
    ("u / ctrl+z", "undo (a recorded removal also leaves the false-positives file)"),
    ("ctrl+y", "redo"),
    ("n / pagedown", "next micrograph"),
    ("p / pageup", "previous micrograph"),
    ("[ / ]", "lower / raise the display threshold (hides picks, never deletes)"),
    ("+ / -", "zoom in / out (the view follows the cursor)"),
    ("w / W", "next / previous tile: walk the micrograph at this zoom, row by row"),
    ("O", "picks as dots where circles crowd (default), as dots, or as circles"),
    ("M", "minimap on/off (shown when zoomed in: where the view is)"),
    ("f / F", "stronger / weaker low-pass of the image: none, 10, 20, 40 Å"),
    (", / .", "less / more contrast: 0.1, 0.5, 2 or 5 % of pixels clipped at each end"),
    ("c", "mark the micrograph curated (or not)"),
    ("b", "mask brush on/off: the cursor paints junk while on"),
    ("e", "brush paints / erases"),
    ("{ / }", "smaller / larger brush"),
    ("r", "retrain: the form; Start runs training in the background"),
    ("t", "training runs: pick one to watch its loss curves, cancel it"),
    ("P", "pick micrographs with a model (progress under the viewer)"),
    ("ctrl+x", "cancel the picking"),
    ("E", "export the curated picks as Warp training examples"),
    ("v", "compare: show a second pick set in another colour (v again: off)"),
    ("/", "filter micrographs by name (enter returns to the viewer)"),
    ("s", "choose the pick set (suffix) shown"),
    ("d", "set the particle diameter"),
    ("ctrl+p", "command palette: everything else"),
    ("?", "this help"),
    ("q", "quit (every edit is already on disk)"),
    ("mouse", "click adds, right-click removes (shift: not recorded), drag moves"),
    (
        "colours",
        "picks orange (lowest score) to green (highest, or no score); cyan ring: the pick x "
        "and m act on (score in the status line); magenta: compared set",
    ),
]


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
