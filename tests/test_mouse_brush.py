"""The mask brush by mouse (Pilot): with the brush on, a press paints a dab where it lands and
a drag paints every cell it passes, both written to ``mask/<root>.tif`` as the keyboard brush
writes them; no pick is added. With the brush off a click still adds a pick."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from boxnet_tui.io.masks import read_mask
from boxnet_tui.tui.screens.curation import cells_between
from boxnet_tui.tui.widgets.viewer import Viewer
from tests.test_app import false_positives, make_folder, run, star, status

ROOT = "mic1"  # 400 x 400 px at 4 Å/px: its mask is 200 x 200 at 8 Å/px


def mask_file(folder):
    return folder / "mask" / f"{ROOT}.tif"


def on_disk(folder) -> np.ndarray:
    """The mask as written (rows flipped back to the micrograph's)."""
    return read_mask(mask_file(folder))


def mask_at(app, mask: np.ndarray, col: int, row: int) -> bool:
    """The mask pixel under the middle of viewer cell (col, row)."""
    x, y = app.curation.nav.cell_to_micrograph(col, row)
    rows, cols = mask.shape
    return bool(mask[int(y * rows / 400), int(x * cols / 400)])


def cell_of(app, x: float, y: float) -> tuple[int, int]:
    """The viewer cell showing micrograph (x, y)."""
    g = app.query_one(Viewer).geometry
    dx, dy = app.curation.view.to_display(x, y)
    return int(dx // g.x), int(dy // g.y)


async def drag(pilot, offset: tuple[int, int]) -> None:
    """The pointer moved to ``offset`` on the viewer with the left button held, as a terminal
    reports a drag (Pilot's ``hover`` reports a move with no button held)."""
    from textual.events import MouseMove

    await pilot._post_mouse_events([MouseMove], Viewer, offset=offset, button=1)


async def stroke(pilot, *points: tuple[int, int]) -> None:
    """Press at the first point, drag through the others, release at the last."""
    await pilot.mouse_down(Viewer, offset=points[0])
    for point in points[1:]:
        await drag(pilot, point)
    await pilot.mouse_up(Viewer, offset=points[-1])


async def brush_on(pilot, folder) -> None:
    """Brush on (``b`` paints at the cursor), that dab undone: an empty mask to start from."""
    await pilot.press("b", "u")
    assert not on_disk(folder).any()


def test_cells_between_leaves_no_gap():
    assert cells_between((3, 4), (3, 4)) == []
    assert cells_between((0, 0), (4, 0)) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert cells_between((5, 5), (2, 8)) == [(4, 6), (3, 7), (2, 8)]
    line = [(0, 0), *cells_between((0, 0), (7, -3))]
    assert line[-1] == (7, -3) and len(line) == 8
    assert all(max(abs(a - c), abs(b - d)) == 1 for (a, b), (c, d) in pairwise(line))


def test_click_with_brush_paints_there_and_adds_no_pick(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        here = cell_of(app, 80.0, 320.0)  # no pick near
        far = cell_of(app, 320.0, 80.0)
        await pilot.click(Viewer, offset=here)
        assert len(star(folder)) == 3  # no pick added
        mask = on_disk(folder)
        assert mask_at(app, mask, *here) and not mask_at(app, mask, *far)
        # one dab of the 64 Å brush (8 mask px): a disc about the click, nothing elsewhere
        ys, xs = np.nonzero(mask)
        x, y = app.curation.nav.cell_to_micrograph(*here)
        assert np.hypot(xs + 0.5 - x / 2, ys + 0.5 - y / 2).max() <= 8.0
        assert app.curation.cursor == (x, y) and "brush paint" in status(app)
        assert np.array_equal(mask, app.curation.editor().mask())  # shown is what is on disk
        await pilot.press("u")  # undone as a keyboard dab is
        assert not on_disk(folder).any()

    run(folder, body)


def test_drag_paints_every_cell_it_passes_as_one_stroke(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        await pilot.press("left_curly_bracket", "left_curly_bracket")  # 16 Å: 2 mask px
        assert "brush paint 16 Å" in status(app)
        col, row = cell_of(app, 80.0, 120.0)
        # one report 14 cells on (a fast drag), then down and back diagonally
        path = [(col, row), (col + 14, row), (col + 14, row + 5), (col + 9, row + 10)]
        await stroke(pilot, *path)
        assert len(star(folder)) == 3  # the release added no pick
        mask = on_disk(folder)
        passed = [path[0]]
        for start, end in pairwise(path):
            passed += cells_between(start, end)
        assert all(mask_at(app, mask, c, r) for c, r in passed)
        # along the first (horizontal) leg the stroke is one unbroken line of mask pixels
        (x0, y), (x1, _) = (app.curation.nav.cell_to_micrograph(c, r) for c, r in path[:2])
        assert mask[int(y / 2), int(x0 / 2) : int(x1 / 2) + 1].all()
        # and nowhere near the cells the pointer did not pass
        assert not mask_at(app, mask, col + 7, row + 6)
        assert np.array_equal(mask, app.curation.editor().mask())
        await pilot.press("u")  # the whole stroke is one undo step
        assert not on_disk(folder).any()

    run(folder, body)


def test_erase_mode_erases_under_click_and_drag(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        col, row = cell_of(app, 60.0, 200.0)
        start, middle, near_end, end = (col, row), (col + 15, row), (col + 22, row), (col + 30, row)
        await stroke(pilot, start, end)  # a long stroke (64 Å brush)
        painted = on_disk(folder)
        assert all(mask_at(app, painted, *c) for c in (start, middle, near_end, end))
        await pilot.press("e")  # erase mode (the key erases at the cursor: the stroke's end)
        assert "brush erase" in status(app)
        await pilot.click(Viewer, offset=start)
        mask = on_disk(folder)
        assert not mask_at(app, mask, *start) and mask_at(app, mask, *middle)
        await stroke(pilot, start, middle)
        mask = on_disk(folder)
        erased = [(c, row) for c in range(start[0], middle[0] + 1)]
        assert not any(mask_at(app, mask, *c) for c in erased)
        assert mask_at(app, mask, *near_end)  # beyond the brush of either erase
        assert mask.sum() < painted.sum() and len(star(folder)) == 3
        assert np.array_equal(mask, app.curation.editor().mask())

    run(folder, body)


def test_drag_off_the_viewer_paints_to_its_edge_and_ends_on_release(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        # zoomed in: the micrograph goes on past the viewer's left edge; a 16 Å brush
        await pilot.press("plus", "left_curly_bracket", "left_curly_bracket")
        row = cell_of(app, 200.0, 200.0)[1]
        assert app.curation.nav.cell_to_micrograph(-6, row)[0] > 20  # still on the micrograph
        await stroke(pilot, (6, row), (-6, row))  # ends over the micrograph list
        mask = on_disk(folder)
        assert all(mask_at(app, mask, c, row) for c in range(7))
        assert not any(mask_at(app, mask, c, row) for c in range(-6, -2))  # never off the view
        assert len(star(folder)) == 3
        await pilot.hover(Viewer, offset=(20, row))  # no button held: the stroke has ended
        assert np.array_equal(on_disk(folder), mask)
        await pilot.press("u")
        assert not on_disk(folder).any()

    run(folder, body)


def test_a_release_lost_to_a_dialog_ends_the_stroke(tmp_path):
    """A dialog opened mid-drag takes the release: hovering afterwards paints nothing."""
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        col, row = cell_of(app, 200.0, 200.0)
        await pilot.mouse_down(Viewer, offset=(col, row))
        await drag(pilot, (col + 3, row))
        await pilot.press("question_mark")  # the help dialog; the release goes to it
        await pilot.mouse_up(offset=(1, 1))
        await pilot.press("escape")
        painted = on_disk(folder)
        assert painted.any()
        for point in ((col + 10, row + 4), (col + 15, row + 6)):
            await pilot.hover(Viewer, offset=point)
            await drag(pilot, point)  # even a move reported with a button paints nothing now
        assert np.array_equal(on_disk(folder), painted)
        assert len(star(folder)) == 3

    run(folder, body)


def test_a_hover_with_no_button_after_a_lost_release_ends_the_stroke(tmp_path):
    """The terminal reports a move with no button held (the release went to another window):
    the stroke ends there, painting nothing more and adding no pick."""
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        col, row = cell_of(app, 200.0, 200.0)
        await pilot.mouse_down(Viewer, offset=(col, row))
        await drag(pilot, (col + 3, row))
        painted = on_disk(folder)
        await pilot.hover(Viewer, offset=(col + 12, row + 5))  # button 0: no longer held
        await drag(pilot, (col + 16, row + 6))
        assert np.array_equal(on_disk(folder), painted)
        assert len(star(folder)) == 3
        await pilot.press("u")  # the stroke that was painted is one undo step
        assert not on_disk(folder).any()

    run(folder, body)


def test_with_the_brush_off_a_click_adds_a_pick_and_paints_nothing(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await pilot.press("b", "u", "b")  # on, its dab undone, off again
        here = cell_of(app, 80.0, 320.0)
        await pilot.click(Viewer, offset=here)
        assert len(star(folder)) == 4
        # again on the same cell, where the cursor now is (a widget of its own): a second pick
        await pilot.click(Viewer, offset=here)
        picks = star(folder)
        assert len(picks) == 5
        x, y = app.curation.nav.cell_to_micrograph(*here)
        assert np.allclose(picks.xy[3:], [[x, y], [x, y]])
        assert not on_disk(folder).any()

    run(folder, body)


async def right_drag(pilot, offset: tuple[int, int]) -> None:
    """The pointer moved to ``offset`` with the right button held (as ``drag``)."""
    from textual.events import MouseMove

    await pilot._post_mouse_events([MouseMove], Viewer, offset=offset, button=3)


async def right_stroke(pilot, *points: tuple[int, int]) -> None:
    """``stroke`` with the right button (Pilot's ``mouse_up`` releases the left one)."""
    from textual.events import MouseMove, MouseUp

    await pilot.mouse_down(Viewer, offset=points[0], button=3)
    for point in points[1:]:
        await right_drag(pilot, point)
    await pilot._post_mouse_events([MouseMove, MouseUp], Viewer, offset=points[-1], button=3)


def test_right_press_with_brush_erases_there_and_leaves_the_picks(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        # a stroke painted through the pick at (100, 200): a right press on it must not remove it
        start, on_pick = cell_of(app, 40.0, 200.0), cell_of(app, 100.0, 200.0)
        await stroke(pilot, start, on_pick)
        painted = on_disk(folder)
        assert mask_at(app, painted, *start) and mask_at(app, painted, *on_pick)
        picks, stamp = star(folder), (folder / "matching" / f"{ROOT}_BoxNet.star").read_bytes()
        await pilot.click(Viewer, offset=on_pick, button=3)
        mask = on_disk(folder)
        assert not mask_at(app, mask, *on_pick) and mask_at(app, mask, *start)
        assert mask.sum() < painted.sum() and np.array_equal(mask, app.curation.editor().mask())
        assert "brush paint" in status(app)  # the left button still paints
        after = star(folder)
        assert len(after) == 3 and np.array_equal(after.xy, picks.xy)
        assert (folder / "matching" / f"{ROOT}_BoxNet.star").read_bytes() == stamp
        assert len(app.curation.editor().picks) == 3
        assert false_positives(folder) == 0
        await pilot.press("u")  # the erase is one step
        assert np.array_equal(on_disk(folder), painted)

    run(folder, body)


def test_right_drag_with_brush_erases_every_cell_it_passes_as_one_stroke(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        col, row = cell_of(app, 60.0, 320.0)  # no pick near
        # a wide band painted (64 Å brush), then erased along its middle with a 16 Å brush
        await stroke(pilot, (col, row), (col + 30, row))
        painted = on_disk(folder)
        await pilot.press("left_curly_bracket", "left_curly_bracket")
        assert "brush paint 16 Å" in status(app)
        path = [(col + 2, row), (col + 16, row), (col + 20, row + 1)]  # a fast report between
        await right_stroke(pilot, *path)
        mask = on_disk(folder)
        passed = [path[0]]
        for start, end in pairwise(path):
            passed += cells_between(start, end)
        assert not any(mask_at(app, mask, c, r) for c, r in passed)
        assert mask_at(app, mask, col + 28, row)  # beyond the stroke: still painted
        assert len(star(folder)) == 3 and false_positives(folder) == 0
        assert np.array_equal(mask, app.curation.editor().mask())
        await pilot.press("u")  # the whole erase stroke is one undo step
        assert np.array_equal(on_disk(folder), painted)

    run(folder, body)


def test_a_lost_right_release_ends_the_erase_stroke(tmp_path):
    """As for painting: a move with no button held ends the right stroke, erasing no more."""
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await brush_on(pilot, folder)
        col, row = cell_of(app, 60.0, 320.0)
        await stroke(pilot, (col, row), (col + 30, row))
        await pilot.mouse_down(Viewer, offset=(col + 2, row), button=3)
        await right_drag(pilot, (col + 5, row))
        erased = on_disk(folder)
        assert not mask_at(app, erased, col + 5, row)
        await pilot.hover(Viewer, offset=(col + 20, row))  # button 0: no longer held
        await right_drag(pilot, (col + 25, row))
        assert np.array_equal(on_disk(folder), erased)
        assert len(star(folder)) == 3

    run(folder, body)


def test_the_right_button_removes_with_the_brush_off_and_erases_with_it_on(tmp_path):
    folder = make_folder(tmp_path)

    async def body(app, pilot):
        await pilot.press("b", "u", "b")  # on, its dab undone, off again
        await pilot.click(Viewer, offset=cell_of(app, 100.0, 200.0), button=3)
        picks = star(folder)
        assert len(picks) == 2 and not np.any(np.all(picks.xy == [100.0, 200.0], axis=1))
        assert false_positives(folder) == 1
        await pilot.click(Viewer, offset=cell_of(app, 300.0, 100.0), button=3, shift=True)
        assert len(star(folder)) == 1 and false_positives(folder) == 1  # shift: not recorded
        await pilot.press("b", "u")  # on again, its dab undone
        await pilot.click(Viewer, offset=cell_of(app, 200.0, 300.0), button=3)
        assert len(star(folder)) == 1 and false_positives(folder) == 1  # the last one stays
        assert not on_disk(folder).any()

    run(folder, body)
