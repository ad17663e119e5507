"""Image widgets that send real pixels: Sixel rows and Kitty direct placements.

Both draw a PIL image the app made at the size it is shown at (Sixel has no scaling: one image
pixel is one screen pixel; Kitty scales the image to the widget's cells).

``SixelFrame`` sends one Sixel image per row of cells, after that row's blank cells: text
written over a Sixel erases it, so a row Textual repaints is drawn again with it, and a new
frame sends only the rows that changed (a cursor move: two or three rows, not the frame).

``KittyFrame`` uses the graphics protocol's direct placement (``a=T``, kitty since 0.20,
WezTerm, Konsole), not Unicode placeholders (kitty >= 0.28 only): below the text (negative
z), so the cursor cell and the ring's widget show over it; sent again only when the image
changes, placed again (a few bytes) when the screen is redrawn, deleted while another screen
is shown. Inside tmux every sequence is wrapped for passthrough and put at the pane's offset.
"""

from __future__ import annotations

import itertools
import random
import zlib
from base64 import standard_b64encode
from dataclasses import dataclass
from io import BytesIO

import numpy as np
from PIL import Image as PILImage
from rich.segment import ControlType, Segment
from textual import events
from textual.dom import NoScreen
from textual.geometry import Region
from textual.strip import Strip

from boxnet_tui.tui.image_widget import ImageWidget
from boxnet_tui.tui.sixel import encode, palette, sixel_image
from boxnet_tui.tui.terminal_caps import ESC, tmux_pane_offset, tmux_wrap

KITTY_CHUNK = 4096  # base64 bytes per Kitty command: the protocol's limit
_CONTROL = ((ControlType.CURSOR_FORWARD, 0),)  # marks a segment as control: Rich leaves it be


@dataclass(frozen=True)
class Output:
    """How frames reach the terminal."""

    method: str  # "sixel" or "kitty"
    cell: tuple[int, int]  # px per cell
    sixel_max: tuple[int, int] | None = None  # largest Sixel image
    sixel_colors: int = 256
    tmux: bool = False  # wrap for tmux passthrough
    kitty_format: str = "png"  # "png" or "zlib" (raw RGB, deflated)


def cup(column: int, row: int) -> str:
    """Cursor to (column, row), 0-based."""
    return f"{ESC}[{row + 1};{column + 1}H"


def sixel(image: PILImage.Image, colors: int = 256) -> str:
    """``image`` as one Sixel image (see ``sixel.py``: our palette, colours defined first,
    P2=1 so pixels it does not cover stay as they are)."""
    return sixel_image(np.asarray(image.convert("RGB")), colors)


def kitty_payload(image: PILImage.Image, kind: str = "png") -> tuple[str, str]:
    """(format keys, base64 data) for ``image``: PNG, or raw RGB deflated."""
    rgb = image.convert("RGB")
    if kind == "zlib":
        data = zlib.compress(rgb.tobytes(), 1)
        keys = f"f=24,s={rgb.width},v={rgb.height},o=z"
    else:
        buffer = BytesIO()
        rgb.save(buffer, format="PNG", compress_level=1)
        data = buffer.getvalue()
        keys = "f=100"
    return keys, standard_b64encode(data).decode("ascii")


def kitty_transmit(
    image: PILImage.Image,
    image_id: int,
    columns: int,
    rows: int,
    z: int,
    kind: str = "png",
) -> list[str]:
    """Commands that send ``image`` and show it over columns x rows cells at the cursor
    (one placement, id 1: sent again it replaces the last, it does not add one)."""
    keys, data = kitty_payload(image, kind)
    chunks = [data[i : i + KITTY_CHUNK] for i in range(0, len(data), KITTY_CHUNK)] or [""]
    first = f"a=T,i={image_id},p=1,{keys},c={columns},r={rows},C=1,z={z},q=2"
    commands = []
    for n, chunk in enumerate(chunks):
        more = int(n < len(chunks) - 1)
        control = f"{first},m={more}" if n == 0 else f"m={more},q=2"
        commands.append(f"{ESC}_G{control};{chunk}{ESC}\\")
    return commands


def kitty_place(image_id: int, columns: int, rows: int, z: int) -> str:
    return f"{ESC}_Ga=p,i={image_id},p=1,c={columns},r={rows},C=1,z={z},q=2{ESC}\\"


def kitty_delete(image_id: int, free: bool = False) -> str:
    """Remove the image's placements (and its data, with ``free``)."""
    return f"{ESC}_Ga=d,d={'I' if free else 'i'},i={image_id},q=2{ESC}\\"


class _Frame(ImageWidget):
    """What both share: the image, the output, where the pane is inside tmux."""

    output: Output  # set on the subclass made for a terminal (see graphics.py)

    DEFAULT_CSS = """
    _Frame { width: 100%; height: 100%; }
    """

    def __init__(
        self,
        image: PILImage.Image | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._image: PILImage.Image | None = image
        self.bytes_sent = 0  # to the terminal, for tests and benchmarks
        self._pane_offset = (0, 0)

    def on_mount(self) -> None:
        if self.output.tmux:
            self._pane_offset = tmux_pane_offset()

    def on_resize(self, event: events.Resize) -> None:
        if self.output.tmux:  # a pane moves when another is split or closed
            self._pane_offset = tmux_pane_offset()

    def _seq(self, column: int, row: int, body: str, keep: bool = True) -> str:
        """``body`` drawn with the cursor at screen cell (column, row); the cursor kept (DECSC
        has one slot: ``keep=False`` where the caller saves it). Inside tmux, wrapped for
        passthrough and put at the pane's offset: the terminal's own cursor is anywhere."""
        if self.output.tmux:
            left, top = self._pane_offset
            return tmux_wrap(f"{ESC}7{cup(left + column, top + row)}{body}{ESC}8")
        if not keep:
            return f"{cup(column, row)}{body}"
        return f"{ESC}7{cup(column, row)}{body}{ESC}8"

    def _erase(self, width: int) -> str:
        """Blank ``width`` cells from the cursor in the widget's background (ECH: the cursor
        stays). Inside tmux it is not wrapped: tmux blanks its own copy of the cells too."""
        color = self.rich_style.bgcolor
        sgr = ""
        if color is not None:
            r, g, b = color.get_truecolor()
            sgr = f"{ESC}[48;2;{r};{g};{b}m"
        return f"{sgr}{ESC}[{width}X"

    def _active(self) -> bool:
        try:
            return self.screen.is_active
        except NoScreen:
            return False

    def _blank(self, width: int) -> Strip:
        return Strip([Segment(" " * width, self.rich_style)], width)


class SixelFrame(_Frame):
    """Shows ``image`` as Sixel, one image per row of cells; repaints changed rows only."""

    def __init__(self, image: PILImage.Image | None = None, **kwargs) -> None:
        super().__init__(image, **kwargs)
        self._indices: np.ndarray | None = None  # the image in palette indices
        self._rows: dict[int, tuple[tuple[int, int], str]] = {}  # row: ((x0, x1), sixel)
        self.rows_encoded = 0

    def _image_changed(self, value: PILImage.Image | None) -> None:
        indices = None
        if value is not None:
            indices = palette(self.output.sixel_colors).indices(np.asarray(value.convert("RGB")))
        old, self._indices = self._indices, indices
        if indices is None or old is None or old.shape != indices.shape:
            self._rows.clear()
            self.refresh()
            return
        height = self.output.cell[1]
        changed = np.flatnonzero((old != indices).any(axis=1))
        rows = sorted({int(y) // height for y in changed})
        for row in rows:
            self._rows.pop(row, None)
        width = self.size.width
        if rows and width:
            self.refresh(*(Region(0, row, width, 1) for row in rows))

    def _encode_rows(self, first: int, last: int, x0: int, x1: int) -> None:
        """Encode the rows ``first``..``last`` not yet cached for columns x0..x1, in one go."""
        assert self._indices is not None
        missing = [
            row
            for row in range(first, last + 1)
            if (cached := self._rows.get(row)) is None or cached[0] != (x0, x1)
        ]
        if not missing:
            return
        cw, ch = self.output.cell
        low, high = missing[0], missing[-1]
        block = self._indices[low * ch : (high + 1) * ch, x0 * cw : x1 * cw]
        images = encode(block, palette(self.output.sixel_colors), ch) if block.size else []
        for row in range(low, high + 1):  # all encoded anew: keep them all
            n = row - low
            self._rows[row] = ((x0, x1), images[n] if n < len(images) else "")
        self.rows_encoded += len(images)

    def render_lines(self, crop: Region) -> list[Strip]:
        blank = self._blank(crop.width)
        if self._indices is None or not self._active():
            return [blank] * crop.height
        region = self.region
        strips = []
        self._encode_rows(crop.y, crop.bottom - 1, crop.x, crop.right)
        for row in range(crop.y, crop.bottom):
            data = self._rows[row][1]
            if not data:
                strips.append(blank)
                continue
            # One control segment and no text: Textual writes it whole whenever any cell of
            # the row is repainted (and text after a Sixel would erase it): it blanks the
            # row itself, then draws the row's image.
            image = self._seq(region.x + crop.x, region.y + row, data, keep=False)
            sequence = f"{ESC}7{self._erase(crop.width)}{image}{ESC}8"
            self.bytes_sent += len(sequence)
            strips.append(Strip([Segment(sequence, control=_CONTROL)], crop.width))
        return strips


class KittyFrame(_Frame):
    """Shows ``image`` by Kitty direct placement, scaled to the widget's cells, under text."""

    _ids = itertools.count(random.randint(1 << 20, 1 << 30))

    def __init__(self, image: PILImage.Image | None = None, **kwargs) -> None:
        super().__init__(image, **kwargs)
        self.image_id = next(self._ids)
        self._version = 0  # of the image; the terminal has ``_sent``
        self._sent = -1
        self._placed = False
        self._placed_at: tuple[int, int, int, int] | None = None
        # the ring (a small image) over the frame: both below the text
        self.z = -1 if self.id == "ring" else -2

    def _image_changed(self, value: PILImage.Image | None) -> None:
        self._version += 1
        if value is None:
            self._remove()
        self.refresh()

    def on_mount(self) -> None:
        super().on_mount()
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def on_unmount(self) -> None:
        self._remove(free=True)

    def on_hide(self) -> None:
        self._remove()

    def on_show(self) -> None:
        self.refresh()

    def _screen_changed(self, screen: object) -> None:
        if self._active():
            self.refresh()  # placed again by the repaint
        else:
            self._remove()  # another screen (help, a form) is over the viewer

    def _write(self, data: str) -> None:
        """Out of the repaint: straight to the terminal, in order with Textual's output."""
        driver = getattr(self.app, "_driver", None)
        if driver is None:
            return
        try:
            driver.write(data)
        except (AssertionError, OSError):  # the app is ending: the terminal drops its images
            return
        self.bytes_sent += len(data)

    def _remove(self, free: bool = False) -> None:
        if self._placed or free:
            command = kitty_delete(self.image_id, free)
            self._write(tmux_wrap(command) if self.output.tmux else command)
            self._placed = False
            self._placed_at = None
            if free:
                self._sent = -1

    def render_lines(self, crop: Region) -> list[Strip]:
        strips = [self._blank(crop.width)] * crop.height
        if self._image is None or not self._active() or not crop.height:
            return strips
        region = self.region
        cells = (region.x, region.y, region.width, region.height)
        if self._sent == self._version and self._placed_at == cells:
            return strips  # already there: text written over it does not erase it
        z = self.z
        if self._sent != self._version:
            commands = kitty_transmit(
                self._image, self.image_id, region.width, region.height, z,
                self.output.kitty_format,
            )  # fmt: skip
            self._sent = self._version
        else:
            commands = [kitty_place(self.image_id, region.width, region.height, z)]
        first = self._seq(region.x, region.y, commands[0])
        rest = [tmux_wrap(c) if self.output.tmux else c for c in commands[1:]]
        sequence = first + "".join(rest)
        self.bytes_sent += len(sequence)
        self._placed = True
        self._placed_at = cells
        # first in the first row: a toast over the bottom right does not take it along
        strips[0] = Strip([Segment(sequence, control=_CONTROL), *strips[0]], crop.width)
        return strips
