"""Where the curator is on a micrograph: the view, the cursor, a grabbed pick, the brush, the
order Tab steps in and the tile walk.

Plain Python, no Textual: the curation screen turns keys and clicks into these calls and
draws what they report (a method returns whether the view moved, the pick to go to, or why
nothing happened); tests drive it without a terminal. Edits are not made here: the screen
hands them to the core (``MicrographEditor``) with the cursor and gesture kept here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from boxnet_tui.display import MAX_ZOOM, OVERVIEW_MODES, View, minimap_corner, tile_centres
from boxnet_tui.editing import MicrographEditor
from boxnet_tui.io.star import Picks
from boxnet_tui.pick_order import Key, key_of, pick_at, reading_key, reading_order, score_order
from boxnet_tui.pick_order import step as order_step

BRUSH_SIZES = (16.0, 32.0, 64.0, 128.0, 256.0, 512.0)  # brush radius, Å


def hit_radius(diameter_px: float) -> float:
    """How far from the cursor ``x``, ``m`` and a drag find a pick: half a diameter."""
    return diameter_px / 2


@dataclass
class Navigation:
    """The curator's place on the shown micrograph (``view`` None: none is shown)."""

    cell: tuple[float, float] = (1.0, 2.0)  # display px per terminal cell (the viewer's)
    view: View | None = None
    cursor: tuple[float, float] = (0.0, 0.0)  # micrograph px
    grabbed: int | None = None  # the pick that follows the cursor
    gesture: int = 0  # moves of one grab / dabs of one brush stroke share it: undone together
    brush: bool = False
    erase: bool = False
    brush_size: int = 2  # index into BRUSH_SIZES
    tab_by_score: bool = False
    score_anchor: tuple[str, Key] | None = None  # the pick Tab last went to, by score
    tile: tuple[int, int] | None = None  # a walk's tile and its number of tiles
    minimap: bool = True
    overview: str = OVERVIEW_MODES[0]
    unsaved: bool = False  # cursor or zoom changed since the position was last saved

    # -- a micrograph -------------------------------------------------------------------------
    def open(
        self,
        shape: tuple[int, int],
        size: tuple[int, int],
        position: tuple[float, float] | None,
        zoom: int,
    ) -> None:
        """Show a micrograph of ``shape`` (rows, cols) in a display of ``size`` (width,
        height) pixels, the cursor at ``position`` (None: the centre)."""
        rows, cols = shape
        if position is None:
            position = (cols / 2, rows / 2)
        # a saved position may come from another micrograph size (or a hand-edited state file)
        self.cursor = (
            min(max(position[0], 0.0), cols - 1.0),
            min(max(position[1], 0.0), rows - 1.0),
        )
        self.view = View(shape, size[0], size[1], self.cursor, zoom).clamped()
        self.unsaved = True  # a new SSH session resumes on this micrograph

    def leave(self) -> None:
        """Another micrograph: neither a grabbed pick nor a tile walk goes with it."""
        self.grabbed = None
        self.tile = None

    def resize(self, size: tuple[int, int]) -> bool:
        """The display is now ``size`` (width, height) pixels; True when a view changed."""
        if self.view is None:
            return False
        v = self.view
        self.view = View(v.shape, size[0], size[1], v.centre, v.zoom).clamped()
        return True

    # -- the cursor ---------------------------------------------------------------------------
    def cell_step(self) -> tuple[float, float]:
        """Micrograph px (x, y) of one terminal cell at this zoom."""
        assert self.view is not None
        return self.cell[0] * self.view.scale, self.cell[1] * self.view.scale

    def cell_to_micrograph(self, col: int, row: int) -> tuple[float, float]:
        """The micrograph point at the middle of viewer cell (col, row)."""
        assert self.view is not None
        return self.view.to_micrograph((col + 0.5) * self.cell[0], (row + 0.5) * self.cell[1])

    def cursor_cell(self) -> tuple[int, int]:
        """The viewer cell (col, row) the cursor is in."""
        assert self.view is not None
        dx, dy = self.view.to_display(*self.cursor)
        return math.floor(dx / self.cell[0]), math.floor(dy / self.cell[1])

    def place(self, x: float, y: float) -> bool:
        """Cursor to (x, y), kept in the micrograph; the view follows. True when it moved."""
        if self.view is None:
            return False
        rows, cols = self.view.shape
        self.cursor = (min(max(x, 0.0), cols - 1.0), min(max(y, 0.0), rows - 1.0))
        self.unsaved = True  # saved by the poll, at most once a second
        view = self.view.follow(*self.cursor)
        moved = view is not self.view
        self.view = view
        return moved

    def move(self, cols: int, rows: int) -> bool:
        """Cursor by (cols, rows) terminal cells; True when the view moved."""
        if self.view is None:
            return False
        step_x, step_y = self.cell_step()
        return self.place(self.cursor[0] + cols * step_x, self.cursor[1] + rows * step_y)

    def glyph(self) -> str:
        """The cursor's look: brush (paint / erase), a grabbed pick, or the cross."""
        if self.brush:
            return "○" if self.erase else "●"
        return "✥" if self.grabbed is not None else "╋"

    # -- the view -----------------------------------------------------------------------------
    def zoom(self, change: int) -> bool:
        """Zoom by ``change`` steps around the cursor; True when the zoom changed."""
        if self.view is None:
            return False
        zoom = min(MAX_ZOOM, max(0, self.view.zoom + change))
        if zoom == self.view.zoom:
            return False
        v = self.view
        self.view = View(v.shape, v.width, v.height, self.cursor, zoom).clamped()
        self.tile = None  # another zoom, another walk
        self.unsaved = True
        return True

    def minimap_corner(self) -> str | None:
        """Where the minimap is drawn (None: off, or the whole micrograph is in view)."""
        if not self.minimap or self.view is None:
            return None
        return minimap_corner(self.view, self.cursor)

    def toggle_minimap(self) -> None:
        self.minimap = not self.minimap
        self.tile = None  # the walk's overlap depends on it

    def next_overview(self) -> str:
        """Picks as circles, centre dots, or dots where circles would be a carpet (auto)."""
        at = OVERVIEW_MODES.index(self.overview)
        self.overview = OVERVIEW_MODES[(at + 1) % len(OVERVIEW_MODES)]
        return self.overview

    def step_tile(self, direction: int, diameter_px: float) -> str | None:
        """The view to the next / previous tile of a walk over the micrograph at this zoom,
        row by row like reading, the cursor to its centre. None when it went there, else why
        not (for the user)."""
        if self.view is None:
            return "no micrograph shown"
        tiles = tile_centres(self.view, diameter_px, minimap=self.minimap)
        if len(tiles) == 1:
            return "the whole micrograph is in view: zoom in (+) to walk it tile by tile"
        if self.tile is None or self.tile[1] != len(tiles):  # a new walk (or a new grid)
            at = 0 if direction > 0 else len(tiles) - 1
        else:
            at = self.tile[0] + direction
            if not 0 <= at < len(tiles):
                if direction > 0:
                    return "last tile of this micrograph (n: the next one)"
                return "first tile of this micrograph"
        self.drop()  # neither a grabbed pick nor the brush travels with a tile step
        self.tile = (at, len(tiles))
        x, y = tiles[at]
        v = self.view
        self.view = View(v.shape, v.width, v.height, (x, y), v.zoom).clamped()
        self.cursor = (x, y)
        self.unsaved = True
        return None

    # -- picks: Tab, the target ---------------------------------------------------------------
    def toggle_tab_order(self) -> bool:
        """Tab lowest score first (True) or in reading order."""
        self.tab_by_score = not self.tab_by_score
        self.score_anchor = None
        return self.tab_by_score

    def jump(
        self, root: str, picks: Picks, shown: np.ndarray, diameter_px: float, direction: int
    ) -> int | None:
        """The shown pick (of ``shown`` indices) after / before the cursor: in reading order
        (rows one diameter high), or lowest score first. None: no pick to go to. The cursor
        is not moved: the caller moves it (a grabbed pick and the brush go with it)."""
        on = pick_at(picks.x, picks.y, shown, *self.cursor)
        here: Key | None
        if self.tab_by_score:
            order = score_order(picks.x, picks.y, picks.score, shown)
            anchor = self.score_anchor
            # off a pick (e.g. it was just removed): on from the score of the last one visited
            here = key_of(order, on) if on is not None else None
            if here is None and anchor is not None and anchor[0] == root:
                here = anchor[1]
        else:
            order = reading_order(picks.x, picks.y, shown, diameter_px)
            here = key_of(order, on) if on is not None else reading_key(order, *self.cursor)
        target = order_step(order, here, direction)
        if target is not None and self.tab_by_score:
            self.score_anchor = (root, key_of(order, target))  # type: ignore[assignment]
        return target

    def target(self, editor: MicrographEditor, threshold: float, diameter_px: float) -> int | None:
        """The pick ``x`` and ``m`` act on: the shown one nearest the cursor within half a
        diameter (None: none, or a pick is grabbed and ``m`` drops it)."""
        if self.grabbed is not None:
            return None
        return editor.nearest(*self.cursor, hit_radius(diameter_px), threshold)

    def ring(
        self, editor: MicrographEditor, threshold: float, diameter_px: float
    ) -> tuple[float, float, float] | None:
        """The target's circle (x, y, radius) in display pixels, for the viewer to ring."""
        target = self.target(editor, threshold, diameter_px)
        if target is None or self.view is None:
            return None
        x, y = float(editor.picks.x[target]), float(editor.picks.y[target])
        dx, dy = self.view.to_display(x, y)
        return float(dx), float(dy), hit_radius(diameter_px) / self.view.scale

    # -- a grabbed pick, the brush ------------------------------------------------------------
    def grab(self, index: int, x: float, y: float) -> None:
        """Pick ``index`` at (x, y) follows the cursor from now on (one undoable gesture)."""
        self.gesture += 1
        self.grabbed = index
        self.cursor = (x, y)

    def drop(self) -> None:
        """Let go of a grabbed pick; the next move or dab is a gesture of its own."""
        self.grabbed = None
        self.gesture += 1

    def toggle_brush(self) -> bool:
        """Brush on (True) or off; a grabbed pick is dropped."""
        self.drop()
        self.brush = not self.brush
        return self.brush

    def toggle_erase(self) -> bool:
        """The brush erases (True) or paints; a new stroke."""
        self.erase = not self.erase
        self.gesture += 1
        return self.erase

    def step_brush(self, change: int) -> float:
        """A smaller / larger brush; its radius in Å."""
        self.brush_size = min(len(BRUSH_SIZES) - 1, max(0, self.brush_size + change))
        return self.brush_radius

    @property
    def brush_radius(self) -> float:
        """Å."""
        return BRUSH_SIZES[self.brush_size]
