"""The navigation model without Textual: view, cursor, Tab, tiles, grab, brush, hit radius."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boxnet_tui.display import MAX_ZOOM, View, tile_centres
from boxnet_tui.editing import MicrographEditor
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.navigation import BRUSH_SIZES, Navigation, hit_radius

SHAPE = (400, 400)  # rows, cols
SIZE = (160, 120)  # display px (width, height)
DIAMETER = 40.0  # px
# three picks in reading order; scores lowest first: 2, 1, 0
PICKS = Picks([300.0, 100.0, 200.0], [100.0, 200.0, 300.0], [0.9, 0.5, 0.2])
ALL = np.arange(3)


def opened(position: tuple[float, float] | None = None, zoom: int = 0) -> Navigation:
    nav = Navigation(cell=(1.0, 2.0))
    nav.open(SHAPE, SIZE, position, zoom)
    return nav


@pytest.fixture
def editor(tmp_path: Path) -> MicrographEditor:
    write_picks(tmp_path / "matching" / "mic1_BoxNet.star", PICKS, "mic1.mrc")
    return MicrographEditor(tmp_path, "mic1", "BoxNet", "mic1.mrc", SHAPE, 4.0)


def test_open_puts_the_cursor_in_the_centre_or_keeps_a_saved_one_inside():
    assert opened().cursor == (200.0, 200.0)
    assert opened((50.0, 60.0)).cursor == (50.0, 60.0)
    nav = opened((-5.0, 1e6), zoom=2)  # from another micrograph size, or a hand edit
    assert nav.cursor == (0.0, 399.0) and nav.view is not None and nav.view.zoom == 2
    assert nav.unsaved


def test_place_keeps_the_cursor_inside_and_says_when_the_view_moved():
    nav = opened(zoom=2)
    view = nav.view
    assert nav.place(205.0, 200.0) is False and nav.view is view  # still well in view
    assert nav.place(1e4, -3.0) is True and nav.cursor == (399.0, 0.0)
    assert nav.view is not view
    dx, dy = nav.view.to_display(*nav.cursor)  # type: ignore[union-attr]
    assert 0 <= dx <= SIZE[0] and 0 <= dy <= SIZE[1]


def test_move_steps_whole_cells_at_this_zoom():
    nav = opened(zoom=1)
    step_x, step_y = nav.cell_step()
    assert step_y == pytest.approx(2 * step_x)  # a cell is twice as high as wide
    x, y = nav.cursor
    nav.move(3, -2)
    assert nav.cursor == pytest.approx((x + 3 * step_x, y - 2 * step_y))


def test_cells_and_micrograph_points_agree():
    nav = opened((123.0, 77.0), zoom=2)
    col, row = nav.cursor_cell()
    x, y = nav.cell_to_micrograph(col, row)
    step_x, step_y = nav.cell_step()
    assert abs(x - 123.0) <= step_x / 2 + 1e-9 and abs(y - 77.0) <= step_y / 2 + 1e-9


def test_without_a_view_nothing_moves():
    nav = Navigation()
    assert nav.place(1.0, 1.0) is False and nav.move(1, 0) is False
    assert nav.zoom(1) is False and nav.resize(SIZE) is False
    assert nav.step_tile(1, DIAMETER) and nav.minimap_corner() is None


def test_zoom_is_around_the_cursor_bounded_and_ends_a_walk():
    nav = opened((100.0, 100.0))
    nav.tile = (0, 4)
    assert nav.zoom(-1) is False  # already the whole micrograph
    assert nav.zoom(2) is True and nav.view.zoom == 2  # type: ignore[union-attr]
    assert nav.tile is None
    dx, dy = nav.view.to_display(*nav.cursor)  # type: ignore[union-attr]
    assert 0 <= dx <= SIZE[0] and 0 <= dy <= SIZE[1]
    while nav.zoom(1):
        pass
    assert nav.view.zoom == MAX_ZOOM  # type: ignore[union-attr]


def test_resize_keeps_centre_and_zoom():
    nav = opened((100.0, 100.0), zoom=2)
    before = nav.view
    assert nav.resize((80, 60)) is True
    assert nav.view == View(SHAPE, 80, 60, before.centre, 2).clamped()  # type: ignore[union-attr]


def test_minimap_only_when_zoomed_in_and_on():
    nav = opened()
    assert nav.minimap_corner() is None  # the whole micrograph is in view
    nav.zoom(2)
    assert nav.minimap_corner() in ("bottom-right", "top-left")
    nav.toggle_minimap()
    assert nav.minimap_corner() is None


def test_overview_cycles_through_its_modes():
    nav = Navigation()
    assert [nav.next_overview() for _ in range(3)] == ["dots", "circles", "auto"]


def test_tiles_walk_row_by_row_and_say_where_they_end():
    nav = opened()
    assert "whole micrograph" in (nav.step_tile(1, DIAMETER) or "")
    nav.zoom(2)
    tiles = tile_centres(nav.view, DIAMETER, minimap=True)  # type: ignore[arg-type]
    assert nav.step_tile(-1, DIAMETER) is None  # a new walk backwards starts at the end
    assert nav.tile == (len(tiles) - 1, len(tiles)) and nav.cursor == tiles[-1]
    assert "last tile" in (nav.step_tile(1, DIAMETER) or "")
    nav.tile = None
    nav.grabbed = 1
    assert nav.step_tile(1, DIAMETER) is None
    assert nav.cursor == tiles[0] and nav.view.centre == tiles[0]  # type: ignore[union-attr]
    assert nav.grabbed is None  # a grabbed pick does not travel with a tile step
    assert nav.step_tile(1, DIAMETER) is None and nav.tile == (1, len(tiles))
    nav.step_tile(-1, DIAMETER)
    assert "first tile" in (nav.step_tile(-1, DIAMETER) or "")


def test_tab_goes_in_reading_order_and_wraps():
    nav = opened((0.0, 0.0))
    seen = []
    for _ in range(4):
        target = nav.jump("mic1", PICKS, ALL, DIAMETER, 1)
        assert target is not None
        nav.place(float(PICKS.x[target]), float(PICKS.y[target]))
        seen.append(target)
    assert seen == [0, 1, 2, 0]
    assert nav.jump("mic1", PICKS, ALL, DIAMETER, -1) == 2  # before the first: the last


def test_tab_by_score_goes_lowest_first_and_resumes_after_a_removed_pick():
    nav = opened((0.0, 0.0))
    assert nav.toggle_tab_order() is True
    first = nav.jump("mic1", PICKS, ALL, DIAMETER, 1)
    assert first == 2  # score 0.2
    nav.place(float(PICKS.x[2]), float(PICKS.y[2]))
    # the pick is gone (removed): the cursor is on nothing, Tab goes on from its score
    assert nav.jump("mic1", PICKS, np.array([0, 1]), DIAMETER, 1) == 1
    assert nav.toggle_tab_order() is False and nav.score_anchor is None


def test_the_target_is_within_half_a_diameter_and_none_while_grabbing(editor):
    assert hit_radius(DIAMETER) == DIAMETER / 2
    nav = opened((305.0, 104.0))
    assert nav.target(editor, 0.0, DIAMETER) == 0
    assert nav.target(editor, 0.95, DIAMETER) is None  # hidden by the threshold
    ring = nav.ring(editor, 0.0, DIAMETER)
    assert ring is not None and ring[2] == pytest.approx(20.0 / nav.view.scale)  # type: ignore[union-attr]
    nav.place(300.0 + DIAMETER, 100.0)
    assert nav.target(editor, 0.0, DIAMETER) is None and nav.ring(editor, 0.0, DIAMETER) is None
    nav.grab(0, 300.0, 100.0)
    assert nav.target(editor, 0.0, DIAMETER) is None


def test_grab_brush_and_their_gestures():
    nav = opened()
    gesture = nav.gesture
    nav.grab(1, 100.0, 200.0)
    assert nav.grabbed == 1 and nav.cursor == (100.0, 200.0) and nav.glyph() == "✥"
    assert nav.gesture == gesture + 1
    assert nav.toggle_brush() is True and nav.grabbed is None and nav.glyph() == "●"
    assert nav.gesture == gesture + 2  # the brush's dabs are a stroke of their own
    assert nav.toggle_erase() is True and nav.glyph() == "○" and nav.gesture == gesture + 3
    assert nav.brush_radius == BRUSH_SIZES[2]
    assert nav.step_brush(10) == BRUSH_SIZES[-1] and nav.step_brush(-10) == BRUSH_SIZES[0]
    assert nav.toggle_brush() is False and nav.glyph() == "╋"


def test_leave_ends_a_grab_and_a_walk():
    nav = opened()
    nav.grab(0, 1.0, 1.0)
    nav.tile = (1, 4)
    nav.leave()
    assert nav.grabbed is None and nav.tile is None


def test_the_model_imports_no_textual():
    code = "import sys, boxnet_tui.navigation; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
