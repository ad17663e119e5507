"""The micrograph viewer: a textual-image frame with the cursor as a one-cell overlay.

The frame (micrograph, mask, picks) is encoded only when it changes; moving the cursor moves
a one-cell widget on a layer above it, so the terminal gets a few bytes, not a new image.
The ring around the pick the cursor points at is a small image on a layer between the two:
the frame's cells under it with the ring drawn in, so ringing another pick sends those few
cells, not the frame (where text erases the image, Sixel, it is drawn into the frame).
Mouse presses, drags and releases are turned into messages carrying the cell; the screen
decides what they mean.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw
from textual import events
from textual.app import ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from boxnet_tui.display import MIN_CIRCLE_PX, draw_target
from boxnet_tui.tui.graphics import draws_over_text, output_of
from boxnet_tui.tui.sixel import CURSOR_COLOUR

MAX_FRAME_SIDE = 2400  # px; graphics terminals get at most this, however large the window
# Kitty scales a frame to the cells: past a megapixel, PNG encoding takes a pan step over
# 100 ms (benchmarks/bench_graphics.py) for a picture the eye hardly tells apart
KITTY_MAX_PIXELS = 1_000_000
FRAME_DUMP = "BOXNET_TUI_FRAME_DUMP"  # a folder: each frame sent is saved there (tests)


@dataclass(frozen=True)
class CellGeometry:
    """Display pixels per terminal cell, in x and y."""

    x: float
    y: float


class Viewer(Widget):
    """Shows frames made by the app; reports mouse presses, drags and releases by cell."""

    can_focus = True

    class Pressed(Message):
        def __init__(self, col: int, row: int, button: int, shift: bool) -> None:
            super().__init__()
            self.col, self.row, self.button, self.shift = col, row, button, shift

    class Released(Message):
        """A button released on the viewer (``inside``), or off it after a press on it."""

        def __init__(self, col: int, row: int, button: int, *, inside: bool = True) -> None:
            super().__init__()
            self.col, self.row, self.button, self.inside = col, row, button, inside

    class Dragged(Message):
        """The pointer moved to cell (col, row) with a button held since a press on the
        viewer; the cell may lie outside the viewer (the mouse is captured until release)."""

        def __init__(self, col: int, row: int) -> None:
            super().__init__()
            self.col, self.row = col, row

    class Resized(Message):
        pass

    def __init__(self, image_class: type[Widget], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image_class = image_class
        self._frame: PILImage.Image | None = None
        self._message: str | None = None  # none shown yet: the first show_frame sets it
        self.cursor_cell: tuple[int, int] = (0, 0)
        self.cursor_glyph = "╋"
        self.target: tuple[float, float, float] | None = None  # display x, y, circle radius
        self.encodes = 0  # frames handed to textual-image, for tests and benchmarks
        self._held = False  # a button pressed on the viewer, not yet released

    def compose(self) -> ComposeResult:
        yield self._image_class(id="frame")
        yield Static("", id="message")
        yield self._image_class(id="ring")  # hidden off the view: a display change repaints all
        yield Static(self.cursor_glyph, id="cursor")

    @property
    def geometry(self) -> CellGeometry:
        """Frame pixels per cell. Kitty scales a frame to the cells, so a large window gets
        a smaller frame; Sixel cannot: a frame larger than the terminal's largest Sixel
        image is made smaller and shown smaller (clicks are scaled back, ``screen_scale``)."""
        output = output_of(self._image_class)
        if output is None:
            return CellGeometry(1.0, 2.0)
        width, height = float(output.cell[0]), float(output.cell[1])
        cols, rows = self.size
        cols, rows = max(1, cols), max(1, rows)
        shrink = min(1.0, MAX_FRAME_SIDE / max(1.0, cols * width, rows * height))
        if output.method == "kitty":
            shrink = min(shrink, math.sqrt(KITTY_MAX_PIXELS / (cols * width * rows * height)))
        if output.method == "sixel" and output.sixel_max:
            limit_w, limit_h = output.sixel_max
            shrink = min(shrink, limit_w / (cols * width), limit_h / (rows * height))
        return CellGeometry(width * shrink, height * shrink)

    @property
    def frame_size(self) -> tuple[int, int]:
        """The display size in pixels that a frame should have."""
        g = self.geometry
        cols, rows = self.size
        return max(1, math.floor(cols * g.x + 1e-6)), max(1, math.floor(rows * g.y + 1e-6))

    def screen_scale(self) -> tuple[float, float]:
        """Cells of the view per cell of the screen: above 1 where a Sixel frame is shown
        smaller than the viewer."""
        output = output_of(self._image_class)
        if output is None or output.method != "sixel":
            return 1.0, 1.0
        g = self.geometry
        return output.cell[0] / g.x, output.cell[1] / g.y

    def _view_cell(self, col: int, row: int) -> tuple[int, int]:
        sx, sy = self.screen_scale()
        if (sx, sy) == (1.0, 1.0):
            return col, row
        return math.floor((col + 0.5) * sx), math.floor((row + 0.5) * sy)

    def show_frame(
        self,
        frame: PILImage.Image | None,
        message: str = "",
        target: tuple[float, float, float] | None = None,
    ) -> None:
        """Show ``frame`` (None: only ``message``, e.g. why a micrograph cannot be shown),
        ``target`` (display x, y, radius: the pick the cursor points at) ringed."""
        self._frame = frame
        self.target = target
        if message != self._message:  # an update asks for a new layout: only when it changes
            self._message = message
            self.query_one("#message", Static).update(message)
            self.query_one("#message").display = bool(message)
        image = self.query_one("#frame")
        image.display = frame is not None
        self._encode()
        self._show_ring()

    def _encode(self) -> None:
        if self._frame is None:
            return
        frame = self._frame
        if draws_over_text(self._image_class):
            frame = self._frame.copy()
            if self.target is not None:
                draw_target(frame, *self.target)
            g = self.geometry
            col, row = self.cursor_cell
            cx, cy = (col + 0.5) * g.x, (row + 0.5) * g.y
            draw = ImageDraw.Draw(frame)
            draw.line((cx - 2 * g.x, cy, cx + 2 * g.x, cy), fill=CURSOR_COLOUR)
            draw.line((cx, cy - g.y, cx, cy + g.y), fill=CURSOR_COLOUR)
        self.query_one("#frame").image = frame  # type: ignore[attr-defined]
        self.encodes += 1
        if os.environ.get(FRAME_DUMP):
            self.call_after_refresh(self._dump, frame, self.encodes)

    def _dump(self, frame: PILImage.Image, number: int) -> None:
        """Save the frame sent and where it is shown, for tests that photograph the screen."""
        folder = Path(os.environ[FRAME_DUMP])
        folder.mkdir(parents=True, exist_ok=True)
        region = self.query_one("#frame").region
        output = output_of(self._image_class)
        info = {
            "number": number,
            "method": output.method if output else "halfcell",
            "region": [region.x, region.y, region.width, region.height],
            "cell": list(output.cell) if output else None,
            "size": [frame.width, frame.height],
            "tmux": bool(output and output.tmux),
        }
        frame.save(folder / "frame.tmp.png")
        (folder / "frame.tmp.png").replace(folder / "frame.png")
        (folder / "frame.json.tmp").write_text(json.dumps(info))
        (folder / "frame.json.tmp").replace(folder / "frame.json")

    def set_target(self, target: tuple[float, float, float] | None) -> None:
        """Ring another pick (or none): only the cells around it change."""
        if target == self.target:
            return
        self.target = target
        if draws_over_text(self._image_class):
            self._encode()
        else:
            self._show_ring()

    def _show_ring(self) -> None:
        """The cells around the target: the frame's, with the ring drawn in."""
        ring = self.query_one("#ring")
        if self._frame is None or self.target is None or draws_over_text(self._image_class):
            self._hide_ring()
            return
        x, y, radius = self.target
        reach = max(radius + 1.5, MIN_CIRCLE_PX) + 2  # the ring's radius and line
        g = self.geometry
        cols, rows = self.size
        col0, col1 = max(0, math.floor((x - reach) / g.x)), min(cols, math.ceil((x + reach) / g.x))
        row0, row1 = max(0, math.floor((y - reach) / g.y)), min(rows, math.ceil((y + reach) / g.y))
        if col1 <= col0 or row1 <= row0:
            self._hide_ring()
            return
        box = (round(col0 * g.x), round(row0 * g.y), round(col1 * g.x), round(row1 * g.y))
        patch = self._frame.crop(box)
        draw_target(patch, x - box[0], y - box[1], radius)
        ring.image = patch  # type: ignore[attr-defined]
        ring.styles.width, ring.styles.height = col1 - col0, row1 - row0
        ring.styles.offset = (col0, row0)

    def _hide_ring(self) -> None:
        ring = self.query_one("#ring")
        if output_of(self._image_class) is not None and ring.image is not None:  # type: ignore[attr-defined]
            ring.image = None  # type: ignore[attr-defined]  # a Kitty image stays until deleted
        width, height = ring.size
        ring.styles.offset = (-width - 1, -height - 1)  # only its old cells are drawn again

    def place_cursor(self, col: int, row: int, glyph: str | None = None) -> None:
        """Put the cursor on cell (col, row); hidden when off the view."""
        cursor = self.query_one("#cursor", Static)
        if glyph is not None and glyph != self.cursor_glyph:
            self.cursor_glyph = glyph
            cursor.update(glyph)
        cols, rows = self.size
        inside = 0 <= col < cols and 0 <= row < rows
        moved = (col, row) != self.cursor_cell
        self.cursor_cell = (col, row)
        if draws_over_text(self._image_class):
            cursor.display = False
            if moved:
                self._encode()
            return
        cursor.display = inside
        if inside:
            cursor.styles.offset = (col, row)

    def on_resize(self, event: events.Resize) -> None:
        self.post_message(self.Resized())

    def _cell_of(self, event: events.MouseEvent) -> tuple[int, int]:
        """The view cell under ``event``, also off the viewer (a drag, the mouse captured).

        Taken from the screen position: an event that landed on a child (the cursor is a
        widget of its own) carries its offset from that child, not from the viewer."""
        region = self.content_region
        return self._view_cell(event.screen_x - region.x, event.screen_y - region.y)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.screen_offset in self.content_region:
            self.capture_mouse()
            self._held = True
            self.post_message(self.Pressed(*self._cell_of(event), event.button, event.shift))

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if not self._held:
            return
        if event.button == 0:
            # no button is down: its release went elsewhere (a dialog, another window); a
            # release of button 0 ends the gesture and does nothing else
            self.let_go()
            self.post_message(self.Released(*self._cell_of(event), 0, inside=False))
            return
        self.post_message(self.Dragged(*self._cell_of(event)))

    def let_go(self) -> None:
        """Forget a pressed button (its release will not come here)."""
        if self._held:
            self._held = False
            self.release_mouse()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self.release_mouse()
        held, self._held = self._held, False
        inside = event.screen_offset in self.content_region
        if inside or held:
            self.post_message(self.Released(*self._cell_of(event), event.button, inside=inside))
