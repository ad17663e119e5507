"""The `?` screen: every key of the viewer, what it does, grouped as the Footer cannot."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

# (keys, what they do), in the order a user learns them
KEYS: list[tuple[str, str]] = [
    ("← ↓ ↑ → / h j k l", "move the cursor one cell"),
    ("shift+arrows / H J K L", "move the cursor eight cells"),
    ("tab / shift+tab", "jump to the next / previous pick"),
    ("a / space", "add a pick at the cursor"),
    ("x / delete", "remove the nearest pick, recorded as a false positive"),
    ("X", "remove the nearest pick without recording it (Warp's Shift)"),
    ("m", "grab the nearest pick; it follows the cursor; m or enter drops it"),
    ("u / ctrl+z", "undo (a recorded removal also leaves the false-positives file)"),
    ("ctrl+y", "redo"),
    ("n / pagedown", "next micrograph"),
    ("p / pageup", "previous micrograph"),
    ("[ / ]", "lower / raise the display threshold (hides picks, never deletes)"),
    ("+ / -", "zoom in / out (the view follows the cursor)"),
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
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static("[b]boxnet-tui keys[/b]  (escape closes)", id="help-title")
            table: DataTable = DataTable(id="help-keys", show_cursor=False)
            table.add_columns("keys", "what it does")
            table.add_rows(KEYS)
            yield table

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
