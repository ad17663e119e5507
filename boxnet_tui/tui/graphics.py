"""Which widget draws the micrograph: Kitty graphics, Sixel or half-block cells.

``auto`` asks the terminal first (see ``terminal_caps``): kitty itself gets Kitty graphics,
a terminal that answers DA1 with Sixel gets Sixel sized to its largest image, one that only
answers the Kitty query (WezTerm, Konsole without Sixel) gets Kitty, everything else and
every test gets half-block cells. ``--graphics`` overrides the choice (the probe still tells
the sizes). Must run before Textual starts: afterwards Textual reads every reply as keys.

textual-image's own probes (at import of its ``renderable`` and ``widget`` packages: 0.1 s
each, which over SSH leaves late replies in the input) are never run: nothing here imports
those packages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from textual.widget import Widget

from boxnet_tui.tui.graphics_frames import KittyFrame, Output, SixelFrame
from boxnet_tui.tui.halfcell import FastHalfcellImage
from boxnet_tui.tui.terminal_caps import DEFAULT_SIXEL_MAX, TerminalCaps, terminal_caps

GRAPHICS = ("auto", "halfcell", "sixel", "kitty")
DEFAULT_CELL = (10, 20)  # px: a VT340's cell, where nothing tells

_notes: list[str] = []


@dataclass(frozen=True)
class Choice:
    """The method chosen, how it reaches the terminal, and what to tell the user."""

    method: str  # "halfcell", "sixel" or "kitty"
    output: Output | None
    notes: tuple[str, ...] = ()


def choose(
    requested: str,
    caps: TerminalCaps | None,
    cell: tuple[int, int] = DEFAULT_CELL,
    color_system: str | None = "truecolor",
) -> Choice:
    """What to draw with, given ``--graphics`` and what the terminal answered."""
    notes = []
    method = requested
    if requested == "auto":
        method = "halfcell"
        if caps is not None and caps.kitty and caps.version.lower().startswith("kitty"):
            method = "kitty"
        elif caps is not None and caps.sixel:
            method = "sixel"  # WezTerm and Konsole too: their Kitty support is partial
        elif caps is not None and caps.kitty:
            method = "kitty"
    tmux = caps.tmux if caps is not None else None
    if (
        requested != "halfcell"
        and tmux is not None
        and not tmux.passthrough
        and not (caps is not None and caps.tmux_sixel)
    ):
        notes.append(
            "tmux: for real pixels add 'set -g allow-passthrough on' to ~/.tmux.conf "
            "(tmux >= 3.3) and start again; half-cells until then"
        )
        if requested == "auto":
            method = "halfcell"
    if method == "halfcell" and color_system not in (None, "truecolor"):
        colours = {"256": "256", "standard": "16", "windows": "16"}.get(color_system, "few")
        notes.append(
            f"only {colours} colours found: if the terminal has 24-bit colour, "
            "COLORTERM=truecolor makes the image smoother"
        )
    if method == "halfcell":
        return Choice("halfcell", None, tuple(notes))
    wrap = caps is not None and caps.passthrough and (tmux is not None and tmux.passthrough)
    sixel_max = (caps.sixel_max if caps is not None else None) or DEFAULT_SIXEL_MAX
    colors = (caps.sixel_colors if caps is not None else None) or 256
    output = Output(
        method,
        cell,
        sixel_max=sixel_max,
        sixel_colors=min(256, colors),
        tmux=wrap,
        kitty_format=os.environ.get("BOXNET_TUI_KITTY_FORMAT", "png"),
    )
    return Choice(method, output, tuple(notes))


def cell_size(caps: TerminalCaps | None, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """Pixels per cell: the kernel's window size (terminals and sshd keep it), else the
    terminal's reply, else textual-serve's variables, else a VT340's."""
    env = os.environ if env is None else env
    try:
        import fcntl
        import struct
        import termios

        packed = fcntl.ioctl(sys.__stdout__.fileno(), termios.TIOCGWINSZ, b"\0" * 8)  # type: ignore[union-attr]
        rows, columns, width, height = struct.unpack("HHHH", packed)
        if rows and columns and width and height:
            return width // columns, height // rows
    except (OSError, AttributeError, ValueError, ImportError):
        pass
    if caps is not None and caps.cell:
        return caps.cell
    width, height = env.get("TEXTUAL_CELL_WIDTH", ""), env.get("TEXTUAL_CELL_HEIGHT", "")
    if width.isdigit() and height.isdigit() and int(width) and int(height):
        return int(width), int(height)
    return DEFAULT_CELL


def _prime_textual_image(cell: tuple[int, int]) -> None:
    """textual-image asks the terminal its cell size on first use, which once Textual runs
    would race Textual for the reply: give it the answer found here."""
    from textual_image._terminal import CellSize, get_cell_size

    get_cell_size._result = CellSize(*cell)  # type: ignore[attr-defined]


def _color_system() -> str | None:
    from rich.console import Console

    forced = os.environ.get("TEXTUAL_COLOR_SYSTEM")
    if forced and forced != "auto":
        return forced
    return Console(file=sys.__stdout__).color_system if sys.__stdout__ else None


def image_widget_class(graphics: str = "auto") -> type[Widget]:
    """The image widget for ``graphics`` (one of ``GRAPHICS``), made for this terminal."""
    _notes.clear()
    if graphics == "halfcell":
        return FastHalfcellImage
    caps = terminal_caps()
    cell = cell_size(caps)
    _prime_textual_image(cell)
    tty = sys.__stdout__ is not None and sys.__stdout__.isatty()
    choice = choose(graphics, caps, cell, _color_system() if tty else "truecolor")
    _notes.extend(choice.notes)
    if choice.output is None:
        return FastHalfcellImage
    base = SixelFrame if choice.method == "sixel" else KittyFrame
    return type(base.__name__, (base,), {"output": choice.output})


def startup_notes() -> list[str]:
    """One line each that the user should read at start-up (what tmux or colours need)."""
    return list(_notes)


def is_halfcell(widget_class: type[Widget]) -> bool:
    return issubclass(widget_class, FastHalfcellImage)


def draws_over_text(widget_class: type[Widget]) -> bool:
    """Sixel pixels are erased by text written over them: the cursor must be in the image."""
    return issubclass(widget_class, SixelFrame)


def output_of(widget_class: type[Widget]) -> Output | None:
    """How a graphics widget class reaches the terminal (None: half-cells)."""
    return getattr(widget_class, "output", None)
