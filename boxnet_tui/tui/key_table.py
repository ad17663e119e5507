"""Every key of the curation screen, written once: the bindings, the `?` screen and the
README's key table are all made from ``ROWS``.

The module is plain Python (Textual is imported only inside ``bindings``), so the README
table can be printed without starting anything::

    python -m boxnet_tui.tui.key_table            # prints the table
    python -m boxnet_tui.tui.key_table README.md  # rewrites the table inside README.md

Actions without a prefix are the curation screen's; ``app.``-prefixed ones (dialogs of their
own, jobs, quitting) are the App's.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.binding import Binding

BIG_STEP = 8  # cells per shift+arrow
THRESHOLD_STEP = 0.05


@dataclass(frozen=True)
class Key:
    """One binding: Textual key names (comma-separated), the action, its Footer word."""

    keys: str
    action: str
    description: str
    priority: bool = False


@dataclass(frozen=True)
class Row:
    """One line of the help: the keys as a person reads them, what they do, the bindings
    behind them (none for the mouse or Textual's own keys), and what only the README adds."""

    label: str
    what: str
    bindings: tuple[Key, ...] = ()
    more: str = ""  # appended in the README, where there is room for detail
    is_key: bool = True  # "mouse" and "colours" are no keys: not set as code in the README


ROWS: tuple[Row, ...] = (
    Row(
        "← ↓ ↑ → / h j k l",
        "move the cursor one cell",
        (
            Key("left,h", "move(-1, 0)", "move"),
            Key("right,l", "move(1, 0)", "move"),
            Key("up,k", "move(0, -1)", "move"),
            Key("down,j", "move(0, 1)", "move"),
        ),
        more="; the view follows it",
    ),
    Row(
        "shift+arrows / H J K L",
        "move the cursor eight cells",
        (
            Key("shift+left,H", f"move(-{BIG_STEP}, 0)", "move more"),
            Key("shift+right,L", f"move({BIG_STEP}, 0)", "move more"),
            Key("shift+up,K", f"move(0, -{BIG_STEP})", "move more"),
            Key("shift+down,J", f"move(0, {BIG_STEP})", "move more"),
        ),
    ),
    Row(
        "tab / shift+tab",
        "next / previous pick, in reading order (rows one diameter high)",
        (
            # priority: beats the focus chain (the filter field) of this screen only
            Key("tab", "jump(1)", "next pick", priority=True),
            Key("shift+tab", "jump(-1)", "previous pick", priority=True),
        ),
        more=", each row left to right",
    ),
    Row(
        "o",
        "tab steps lowest score first (the doubtful picks), or in reading order",
        (Key("o", "tab_order", "tab order"),),
        more=" (kept for the folder)",
    ),
    Row("a / space", "add a pick at the cursor", (Key("a,space", "add", "add"),)),
    Row(
        "x / delete",
        "remove the ringed pick, recorded as a false positive",
        (Key("x,delete", "remove(True)", "remove"),),
        more=" in `<root>_<suffix>_falsepositives.star`; the ringed pick is the nearest within "
        "half a diameter",
    ),
    Row(
        "X",
        "remove the nearest pick without recording it (Warp's Shift)",
        (Key("X", "remove(False)", "remove, not recorded"),),
    ),
    Row(
        "m",
        "grab the nearest pick; it follows the cursor; m or enter drops it",
        (Key("m", "grab", "move pick"), Key("enter", "drop", "drop")),
    ),
    Row(
        "u / ctrl+z",
        "undo (a recorded removal also leaves the false-positives file)",
        (Key("u,ctrl+z", "undo", "undo"),),
    ),
    Row("ctrl+y", "redo", (Key("ctrl+y", "redo", "redo"),)),
    Row(
        "n / pagedown",
        "next micrograph",
        (Key("n,pagedown", "micrograph(1)", "next"),),
        more=" (the neighbours are loaded ahead)",
    ),
    Row("p / pageup", "previous micrograph", (Key("p,pageup", "micrograph(-1)", "prev"),)),
    Row(
        "[ / ]",
        "lower / raise the display threshold (hides picks, never deletes)",
        (
            Key("left_square_bracket", f"threshold(-{THRESHOLD_STEP})", "thr-"),
            Key("right_square_bracket", f"threshold({THRESHOLD_STEP})", "thr+"),
        ),
        more="; one per pick set, on all its micrographs: hidden picks are neither trained nor "
        "exported",
    ),
    Row(
        "+ / -",
        "zoom in / out (the view follows the cursor)",
        (Key("plus,equals_sign", "zoom(1)", "zoom"), Key("minus", "zoom(-1)", "zoom out")),
    ),
    Row(
        "w / W",
        "next / previous tile: walk the micrograph at this zoom, row by row",
        (Key("w", "tile(1)", "next tile"), Key("W", "tile(-1)", "previous tile")),
        more="; tiles overlap by a diameter (and by the minimap's size, so nothing stays under it)",
    ),
    Row(
        "O",
        "picks as dots where circles crowd (default), as dots, or as circles",
        (Key("O", "overview", "overview"),),
    ),
    Row(
        "M",
        "minimap on/off (shown when zoomed in: where the view is)",
        (Key("M", "minimap", "minimap"),),
    ),
    Row(
        "f / F",
        "stronger / weaker low-pass of the image: none, 10, 20, 40 Å",
        (Key("f", "lowpass(1)", "low-pass+"), Key("F", "lowpass(-1)", "low-pass-")),
        more=" (20 Å by default; kept for the folder in boxnet-tui.json)",
    ),
    Row(
        ", / .",
        "less / more contrast: 0.1, 0.5, 2 or 5 % of pixels clipped at each end",
        (Key("full_stop", "contrast(1)", "contrast+"), Key("comma", "contrast(-1)", "contrast-")),
        more=" (0.5 % by default; kept for the folder)",
    ),
    Row("c", "mark the micrograph curated (or not)", (Key("c", "curated", "curated"),)),
    Row(
        "b",
        "mask brush on/off: the cursor paints junk while on",
        (Key("b", "brush", "brush"),),
        more=" into `mask/<root>.tif` (8 Å/px)",
    ),
    Row("e", "brush paints / erases", (Key("e", "brush_mode", "paint/erase"),)),
    Row(
        "{ / }",
        "smaller / larger brush",
        (
            Key("left_curly_bracket", "brush_size(-1)", "brush-"),
            Key("right_curly_bracket", "brush_size(1)", "brush+"),
        ),
    ),
    Row(
        "r",
        "retrain: the form; Start runs training in the background",
        (Key("r", "app.retrain", "retrain"),),
        more=" (every option of Warp's dialog, checked as you type; tab / shift+tab between "
        "fields, space ticks a box, ctrl+s starts)",
    ),
    Row(
        "t",
        "training runs: pick one to watch its loss curves, cancel it",
        (Key("t", "app.runs", "runs"),),
        more=" (the monitor also shows progress, the log and held-out scores)",
    ),
    Row(
        "P",
        "pick micrographs with a model (progress under the viewer)",
        (Key("P", "app.pick", "pick"),),
        more=": all, the filtered ones, the unpicked ones, or this one",
    ),
    Row("ctrl+x", "cancel the picking", (Key("ctrl+x", "app.cancel_job", "cancel job"),)),
    Row(
        "E",
        "export the curated picks as Warp training examples",
        (Key("E", "app.export", "export"),),
        more=" (`boxnet2training/<name>.tif`)",
    ),
    Row(
        "v",
        "compare: show a second pick set in another colour (v again: off)",
        (Key("v", "compare", "compare"),),
    ),
    Row(
        "/",
        "filter micrographs by name (enter returns to the viewer)",
        (Key("slash", "filter", "filter"),),
    ),
    Row("s", "choose the pick set (suffix) shown", (Key("s", "choose_suffix", "pick set"),)),
    Row("d", "set the particle diameter", (Key("d", "choose_diameter", "diameter"),)),
    Row("ctrl+p", "command palette: everything else"),  # Textual's own binding
    Row("?", "this help", (Key("question_mark", "app.help", "help"),)),
    Row("q", "quit (every edit is already on disk)", (Key("q", "app.quit", "quit"),)),
    Row(
        "mouse",
        "click adds, right-click removes (shift: not recorded), drag moves; with the brush "
        "on, click and drag paint (erase after e), right-click and right-drag erase",
        is_key=False,
    ),
    Row(
        "colours",
        "picks orange (lowest score) to green (highest, or no score); cyan ring: the pick x "
        "and m act on (score in the status line); magenta: compared set",
        is_key=False,
    ),
)

# The keys the Footer shows, in its order (by each binding's first key); the rest are in `?`.
FOOTER = ("a", "x", "m", "u", "n", "p", "c", "b", "r", "question_mark", "t", "q")


def all_keys() -> list[Key]:
    """Every binding: the Footer's first, in ``FOOTER`` order, then the rest as listed."""
    every = [key for row in ROWS for key in row.bindings]
    first = {key.keys.split(",")[0]: key for key in every}
    shown = [first[name] for name in FOOTER]
    return shown + [key for key in every if key not in shown]


def bindings() -> list[Binding]:
    """Textual bindings for the curation screen."""
    from textual.binding import Binding

    shown = {id(key) for key in all_keys()[: len(FOOTER)]}
    return [
        Binding(key.keys, key.action, key.description, show=id(key) in shown, priority=key.priority)
        for key in all_keys()
    ]


def help_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for the `?` screen, in the order a user learns them."""
    return [(row.label, row.what) for row in ROWS]


def _code(label: str) -> str:
    return " / ".join(f"`{part}`" for part in label.split(" / "))


def markdown() -> str:
    """The README's key table (Markdown), without a trailing newline."""
    lines = ["| keys | what they do |", "| --- | --- |"]
    for row in ROWS:
        label = _code(row.label) if row.is_key else row.label
        lines.append(f"| {label} | {row.what}{row.more} |")
    return "\n".join(lines)


BEGIN = "<!-- keys: made by `python -m boxnet_tui.tui.key_table README.md` from key_table.py -->"
END = "<!-- end of keys -->"


def readme_table(readme: str) -> str:
    """The key table as it stands between the markers of README text ``readme``."""
    match = re.search(re.escape(BEGIN) + r"\n\n(.*?)\n\n" + re.escape(END), readme, re.S)
    if match is None:
        raise ValueError("the README has no key table markers")
    return match.group(1)


def rewrite_readme(path: Path) -> None:
    """Put the current table between the markers of the README at ``path``."""
    text = path.read_text()
    old = readme_table(text)
    new = text.replace(f"{BEGIN}\n\n{old}\n\n{END}", f"{BEGIN}\n\n{markdown()}\n\n{END}")
    path.write_text(new)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rewrite_readme(Path(sys.argv[1]))
    else:
        print(markdown())
