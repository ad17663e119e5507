"""The app driven by keys and the mouse (Pilot); after each action the files on disk are checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
from textual.geometry import Region

from boxnet_tui.curation import CurationSession
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.tui.app import BoxnetApp
from boxnet_tui.tui.screens.help import HelpScreen
from boxnet_tui.tui.screens.prompts import DiameterScreen, SuffixScreen
from boxnet_tui.tui.widgets.micrograph_list import MicrographList
from boxnet_tui.tui.widgets.viewer import Viewer
from tests.conftest import snapshot

SIZE = (120, 40)
PIXEL = 4.0
DIAMETER = 160.0  # Å: 40 px, remove radius 20 px
# three picks in reading order, scores for the threshold tests
PICKS = Picks([300.0, 100.0, 200.0], [100.0, 200.0, 300.0], [0.9, 0.5, 0.2])


def make_folder(folder: Path, count: int = 3) -> Path:
    rng = np.random.default_rng(1)
    for i in range(count):
        write_micrograph(folder / f"mic{i + 1}.mrc", rng.normal(size=(400, 400)), PIXEL)
        write_picks(folder / "matching" / f"mic{i + 1}_BoxNet.star", PICKS, f"mic{i + 1}.mrc")
    return folder


def star(folder: Path, root: str = "mic1", suffix: str = "BoxNet") -> Picks:
    return read_picks(folder / "matching" / f"{root}_{suffix}.star")


def false_positives(folder: Path, root: str = "mic1") -> int:
    path = folder / "matching" / f"{root}_BoxNet_falsepositives.star"
    return len(read_picks(path)) if path.exists() else 0


async def ready(app: BoxnetApp, pilot, index: int | None = None) -> None:
    """Wait until the (given) micrograph is shown."""
    for _ in range(200):
        await pilot.pause(0.02)
        if app.curation.view is not None and (index is None or app.curation.index == index):
            await pilot.pause()
            return
    raise AssertionError(f"micrograph {index} never shown; status: {status(app)}")


def status(app: BoxnetApp) -> str:
    return str(app.query_one("#status").render())


def run(folder: Path, body: Callable[[BoxnetApp, object], Awaitable[None]], **session) -> None:
    async def main() -> None:
        app = BoxnetApp(CurationSession(folder, diameter=DIAMETER, **session), graphics="halfcell")
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await body(app, pilot)
            await app.workers.wait_for_complete()

    asyncio.run(main())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


def test_opens_on_the_first_micrograph_with_list_header_and_status(folder):
    async def body(app, pilot):
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.curation.index == 0
        assert "1/3 mic1" in status(app) and "3 picks" in status(app)
        assert "picks BoxNet" in app.sub_title and "diameter 160 Å" in app.sub_title
        assert folder.name in app.title  # the path, shortened to fit the header
        browser = app.query_one(MicrographList)
        assert browser.shown == [0, 1, 2]
        assert str(browser.query_one("#micrographs").get_cell("0", "picks")) == "3"

    run(folder, body)


def test_tab_jumps_through_picks_in_reading_order(folder):
    async def body(app, pilot):
        app.curation.set_cursor(0.0, 0.0)
        await pilot.press("tab")
        assert app.curation.cursor == (300.0, 100.0)
        await pilot.press("tab")
        assert app.curation.cursor == (100.0, 200.0)
        await pilot.press("shift+tab")
        assert app.curation.cursor == (300.0, 100.0)
        await pilot.press("shift+tab")  # wraps to the last
        assert app.curation.cursor == (200.0, 300.0)

    run(folder, body)


def test_x_removes_and_records_u_undoes_ctrl_y_redoes(folder):
    async def body(app, pilot):
        await pilot.press("tab", "x")
        assert len(star(folder)) == 2 and false_positives(folder) == 1
        assert "2 picks" in status(app)
        await pilot.press("u")
        assert len(star(folder)) == 3 and false_positives(folder) == 0
        await pilot.press("ctrl+y")
        assert len(star(folder)) == 2 and false_positives(folder) == 1
        await pilot.press("ctrl+z")
        assert len(star(folder)) == 3

    run(folder, body)


def test_shift_x_and_delete(folder):
    async def body(app, pilot):
        await pilot.press("tab", "X")
        assert len(star(folder)) == 2 and false_positives(folder) == 0
        await pilot.press("tab", "delete")
        assert len(star(folder)) == 1 and false_positives(folder) == 1

    run(folder, body)


def test_remove_far_from_any_pick_changes_nothing(folder):
    before = snapshot(folder / "matching")

    async def body(app, pilot):
        app.curation.set_cursor(10.0, 390.0)
        await pilot.press("x")
        assert snapshot(folder / "matching") == before

    run(folder, body)


def test_a_and_space_add_at_the_cursor(folder):
    async def body(app, pilot):
        app.curation.set_cursor(50.0, 60.0)
        await pilot.press("a")
        picks = star(folder)
        assert len(picks) == 4 and (picks.x[-1], picks.y[-1]) == (50.0, 60.0)
        await pilot.press("right", "space")
        picks = star(folder)
        assert len(picks) == 5 and picks.x[-1] > 50.0

    run(folder, body)


def test_cursor_keys_move_by_cells_and_big_steps(folder):
    async def body(app, pilot):
        x0, y0 = app.curation.cursor
        step_x, step_y = app.curation._cell_step()
        await pilot.press("right", "l")
        assert app.curation.cursor == pytest.approx((x0 + 2 * step_x, y0))
        await pilot.press("down", "j", "up", "k", "left", "h")
        assert app.curation.cursor == pytest.approx((x0, y0))
        await pilot.press("L")
        assert app.curation.cursor == pytest.approx((x0 + 8 * step_x, y0))
        await pilot.press("shift+up")
        assert app.curation.cursor == pytest.approx((x0 + 8 * step_x, y0 - 8 * step_y))

    run(folder, body)


def test_cursor_moves_do_not_re_encode_the_image(folder):
    async def body(app, pilot):
        viewer = app.query_one(Viewer)
        encodes = viewer.encodes
        await pilot.press("right", "down", "left", "up", "right")
        assert viewer.encodes == encodes
        col, row = viewer.cursor_cell
        assert tuple(viewer.query_one("#cursor").styles.offset) != (0, 0) or (col, row) == (0, 0)
        await pilot.press("tab")  # onto a pick: its ring, a few cells over the frame
        assert viewer.encodes == encodes and viewer.target is not None
        await pilot.press("x")  # an edit does redraw
        assert viewer.encodes == encodes + 1

    run(folder, body)


def test_m_grabs_the_pick_it_follows_and_m_or_enter_drops(folder):
    async def body(app, pilot):
        app.curation.set_cursor(0.0, 0.0)
        await pilot.press("tab", "m")
        assert app.curation.grabbed == 0
        step_x, _ = app.curation._cell_step()
        await pilot.press("right", "right")
        assert star(folder).x[0] == pytest.approx(300.0 + 2 * step_x)  # on disk while moving
        await pilot.press("m")
        assert app.curation.grabbed is None
        await pilot.press("right")
        assert star(folder).x[0] == pytest.approx(300.0 + 2 * step_x)  # dropped: stays
        await pilot.press("u")  # the whole drag is one undo
        assert star(folder).x[0] == 300.0
        await pilot.press("tab", "m", "down", "enter")
        assert app.curation.grabbed is None and star(folder).y[1] > 200.0

    run(folder, body)


def test_n_p_and_page_keys_change_micrograph(folder):
    async def body(app, pilot):
        await pilot.press("n")
        await ready(app, pilot, 1)
        assert "2/3 mic2" in status(app)
        await pilot.press("pagedown")
        await ready(app, pilot, 2)
        await pilot.press("n")  # at the end: stays
        assert app.curation.index == 2
        await pilot.press("p")
        await ready(app, pilot, 1)
        await pilot.press("pageup")
        await ready(app, pilot, 0)

    run(folder, body)


def test_undo_history_is_kept_per_micrograph(folder):
    async def body(app, pilot):
        await pilot.press("tab", "x", "n")
        await ready(app, pilot, 1)
        await pilot.press("u")  # nothing to undo on mic2
        assert len(star(folder, "mic2")) == 3
        await pilot.press("p")
        await ready(app, pilot, 0)
        await pilot.press("u")
        assert len(star(folder)) == 3

    run(folder, body)


def test_threshold_hides_picks_but_never_deletes_them(folder):
    before = snapshot(folder / "matching")

    async def body(app, pilot):
        for _ in range(12):
            await pilot.press("right_square_bracket")  # 0.60: only the 0.9 pick is left
        assert "1 picks (3 in file)" in status(app) and "threshold 0.60" in status(app)
        await pilot.press("tab")
        assert app.curation.cursor == (300.0, 100.0)  # the only shown pick
        await pilot.press("tab")
        assert app.curation.cursor == (300.0, 100.0)
        await pilot.press("left_square_bracket")
        assert "threshold 0.55" in status(app)
        assert snapshot(folder / "matching") == before
        await app.workers.wait_for_complete()  # one threshold for the set: every row's count
        table = app.query_one(MicrographList).query_one("#micrographs")
        assert [str(table.get_cell(row, "picks")) for row in ("0", "1", "2")] == ["1"] * 3

    run(folder, body)
    state = json.loads((folder / "boxnet-tui.json").read_text())
    assert state["set_thresholds"] == {"BoxNet": 0.55}


def test_zoom_keys_and_the_view_following_the_cursor(folder):
    async def body(app, pilot):
        await pilot.press("plus", "plus")
        assert app.curation.view.zoom == 2
        scale = app.curation.view.scale
        await pilot.press("minus")
        assert app.curation.view.zoom == 1 and app.curation.view.scale == pytest.approx(scale * 2)
        await pilot.press("equals_sign", "plus", "plus")
        origin = app.curation.view.origin
        for _ in range(30):
            await pilot.press("L")
        assert app.curation.view.origin != origin  # panned
        dx, dy = app.curation.view.to_display(*app.curation.cursor)
        assert 0 <= dx <= app.curation.view.width and 0 <= dy <= app.curation.view.height

    run(folder, body)


def test_c_marks_curated_in_list_and_state(folder):
    async def body(app, pilot):
        await pilot.press("c")
        table = app.query_one(MicrographList).query_one("#micrographs")
        assert str(table.get_cell("0", "curated")) == "✓"
        assert "curated ✓" in status(app)
        assert json.loads((folder / "boxnet-tui.json").read_text())["curated"] == ["mic1"]
        await pilot.press("c")
        assert json.loads((folder / "boxnet-tui.json").read_text())["curated"] == []

    run(folder, body)


def test_brush_paints_erases_resizes_and_undoes(folder):
    mask_file = folder / "mask" / "mic1.tif"

    async def body(app, pilot):
        await pilot.press("b")
        assert "brush paint 64 Å" in status(app)
        painted = int(read_mask(mask_file).sum())
        assert painted > 0 and read_mask(mask_file).shape == (200, 200)
        await pilot.press("right", "right")
        more = int(read_mask(mask_file).sum())
        assert more > painted
        await pilot.press("left_curly_bracket")
        assert "brush paint 32 Å" in status(app)
        await pilot.press("right_curly_bracket", "right_curly_bracket")
        assert "128 Å" in status(app)
        await pilot.press("e")  # erase at the cursor with the larger brush
        assert "brush erase" in status(app)
        assert int(read_mask(mask_file).sum()) < more
        await pilot.press("b")
        await pilot.press("u")  # the erase stroke
        assert int(read_mask(mask_file).sum()) == more
        await pilot.press("u")  # the whole paint stroke
        assert int(read_mask(mask_file).sum()) == 0
        table = app.query_one(MicrographList).query_one("#micrographs")
        assert str(table.get_cell("0", "mask")) == "■"

    run(folder, body)


def test_state_survives_a_restart(folder):
    async def first(app, pilot):
        await pilot.press("n")
        await ready(app, pilot, 1)
        app.curation.set_cursor(0.0, 0.0)
        await pilot.press("c", "right_square_bracket", "plus", "tab")
        await pilot.press("q")

    run(folder, first)

    async def second(app, pilot):
        await ready(app, pilot, 1)
        assert app.curation.index == 1 and app.curation.view.zoom == 1
        assert app.curation.cursor == (300.0, 100.0)
        assert "curated ✓" in status(app) and "threshold 0.05" in status(app)

    run(folder, second)


def test_mouse_click_adds_right_click_removes_drag_moves(folder):
    async def body(app, pilot):
        viewer = app.query_one(Viewer)
        g = viewer.geometry

        def cell(x: float, y: float) -> tuple[int, int]:
            dx, dy = app.curation.view.to_display(x, y)
            return int(dx // g.x), int(dy // g.y)

        await pilot.click(Viewer, offset=cell(50, 350))
        assert len(star(folder)) == 4
        await pilot.click(Viewer, offset=cell(300, 100), button=3)
        assert len(star(folder)) == 3 and false_positives(folder) == 1
        await pilot.click(Viewer, offset=cell(100, 200), button=3, shift=True)
        assert len(star(folder)) == 2 and false_positives(folder) == 1
        start, end = cell(200, 300), cell(260, 330)
        await pilot.mouse_down(Viewer, offset=start)
        await pilot.mouse_up(Viewer, offset=end)
        await pilot.pause()
        picks = star(folder)
        moved = np.flatnonzero(picks.score == 0.2)[0]
        assert picks.x[moved] > 240 and picks.y[moved] > 315

    run(folder, body)


def test_question_mark_lists_every_key(folder):
    async def body(app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys")
        shown = [strip.text for strip in table.render_lines(Region(0, 0, *table.size))]
        assert any("h j k l" in line for line in shown)
        assert any(line.lstrip().startswith("w / W") for line in shown)  # a key of issue 12
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    run(folder, body)


def test_filter_narrows_the_list_and_n_follows_it(tmp_path):
    folder = make_folder(tmp_path, count=4)
    (folder / "mic4.mrc").rename(folder / "other4.mrc")
    (folder / "matching" / "mic4_BoxNet.star").rename(folder / "matching" / "other4_BoxNet.star")

    async def body(app, pilot):
        await pilot.press("slash")
        await pilot.press(*"other")
        assert app.query_one(MicrographList).shown == [3]
        await pilot.press("enter")
        await ready(app, pilot, 3)
        assert "other4" in status(app)
        await pilot.press("n")  # the only one shown: stays
        assert app.curation.index == 3

    run(folder, body)


def test_escape_leaves_the_filter_and_enter_keeps_the_zoom(tmp_path):
    folder = make_folder(tmp_path, count=4)

    async def body(app, pilot):
        await pilot.press("plus", "plus")
        zoom = app.curation.view.zoom
        assert zoom == 2
        await pilot.press("slash", *"mic3", "enter")  # mic1 is not shown: mic3 at this zoom
        await ready(app, pilot, 2)
        assert app.curation.view.zoom == zoom
        await pilot.press("slash", "escape")  # out of the field, the filter kept
        assert app.query_one("#filter").value == "mic3"
        assert isinstance(app.focused, Viewer)
        await pilot.press("minus")  # a command again, not typed into the field
        assert app.curation.view.zoom == zoom - 1
        assert app.query_one("#filter").value == "mic3"

    run(folder, body)


def test_s_switches_the_pick_set(folder):
    write_picks(folder / "matching" / "mic1_manual.star", Picks([10.0], [10.0]), "mic1.mrc")

    async def body(app, pilot):
        await pilot.press("s")
        assert isinstance(app.screen, SuffixScreen)
        await pilot.press("down", "down", "up")  # to the other one, whichever order
        options = app.screen.query_one("OptionList")
        target = "manual" if options.highlighted is not None else None
        options.highlighted = app.screen.suffixes.index("manual")
        await pilot.press("enter")
        await ready(app, pilot)
        await pilot.pause()
        assert target == "manual" and app.session.suffix == "manual"
        assert "1 picks" in status(app) and "picks manual" in app.sub_title

    run(folder, body)


def test_d_sets_the_diameter_and_refuses_nonsense(folder):
    async def body(app, pilot):
        await pilot.press("d")
        assert isinstance(app.screen, DiameterScreen)
        field = app.screen.query_one("Input")
        field.value = "5"
        await pilot.press("enter")
        assert isinstance(app.screen, DiameterScreen)
        assert "10 to 700" in str(app.screen.query_one("#diameter-error").render())
        field.value = "240"
        await pilot.press("enter")
        assert app.session.diameter == 240.0 and "diameter 240 Å" in app.sub_title

    run(folder, body)


def test_a_corrupt_micrograph_is_listed_with_its_error_and_the_others_work(folder):
    (folder / "mic0.mrc").write_bytes(b"\0" * 64)

    async def body(app, pilot):
        assert app.curation.index == 0
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one(MicrographList).query_one("#micrographs")
        assert str(table.get_cell("0", "picks")) == "✗"
        message = str(app.query_one(Viewer).query_one("#message").render())
        assert "mic0.mrc" in message
        await pilot.press("a")  # nothing to edit: no crash, no file
        await pilot.press("n")
        await ready(app, pilot, 1)
        await pilot.press("tab", "x")
        assert len(star(folder)) == 2

    async def start(app, pilot):
        await pilot.pause(0.3)
        await body(app, pilot)

    async def main() -> None:
        app = BoxnetApp(CurationSession(folder, diameter=DIAMETER), graphics="halfcell")
        async with app.run_test(size=SIZE) as pilot:
            await start(app, pilot)

    asyncio.run(main())


def test_an_unreadable_star_is_reported_and_never_overwritten(folder):
    bad = folder / "matching" / "mic1_BoxNet.star"
    bad.write_text("data_\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\nabc def\n")
    before = snapshot(folder)

    async def body(app, pilot):
        await pilot.press("a", "tab", "x", "m", "b")
        assert snapshot(folder / "matching") == {
            k.removeprefix("matching/"): v for k, v in before.items() if k.startswith("matching")
        }
        assert any("mic1_BoxNet.star" in n.message for n in app._notifications)

    run(folder, body)


def test_edits_by_another_window_are_picked_up(folder):
    async def body(app, pilot):
        write_picks(folder / "matching" / "mic1_BoxNet.star", Picks([5.0], [5.0]), "mic1.mrc")
        app.curation._poll()
        await app.workers.wait_for_complete()  # the stat runs in a worker
        await pilot.pause()
        assert "1 picks" in status(app)
        assert any("changed on disk" in n.message for n in app._notifications)

    run(folder, body)


def test_the_poll_looks_at_the_pick_file_in_a_worker(folder, monkeypatch):
    """A stat on a slow network disk must not hold the keys: the poll stats off the UI thread."""
    import threading

    from boxnet_tui.editing import MicrographEditor

    threads = []
    changed_on_disk = MicrographEditor.changed_on_disk

    def recorded(editor):
        threads.append(threading.current_thread() is threading.main_thread())
        return changed_on_disk(editor)

    monkeypatch.setattr(MicrographEditor, "changed_on_disk", recorded)

    async def body(app, pilot):
        app.curation._poll()
        await app.workers.wait_for_complete()
        assert threads == [False]

    run(folder, body)


def test_header_shortens_a_long_folder_path(monkeypatch):
    from boxnet_tui.tui.app import short_path

    monkeypatch.setenv("HOME", "/home/ana")
    assert short_path("/home/ana/data/run1") == "~/data/run1"
    assert short_path("/home/anabel/x") == "/home/anabel/x"  # not ana's home
    long = "/data/cryoem/2026/november/project-with-a-long-name/session_0042/motioncorr"
    shown = short_path(long)
    assert len(shown) <= 40 and shown.startswith("…/") and shown.endswith("/motioncorr")
    assert short_path("/" + "x" * 60) == "/" + "x" * 60  # one long name is kept whole


def test_keys_while_a_micrograph_loads_edit_nothing(folder):
    before = snapshot(folder / "matching")

    async def body(app, pilot):
        app.cache.keep([])  # nothing prefetched,
        app.curation._load = lambda index: None  # and the load never ends
        await pilot.press("n")
        assert app.curation.index == 1 and app.curation.view is None
        await pilot.press("a", "x", "m", "right", "b", "u")
        assert "loading mic2" in str(app.query_one(Viewer).query_one("#message").render())

    run(folder, body)
    assert snapshot(folder / "matching") == before
    assert not (folder / "mask").exists()


def test_a_cursor_move_is_remembered_without_switching_micrograph(folder):
    async def body(app, pilot):
        await pilot.press("n")
        await ready(app, pilot, 1)
        await pilot.press("right", "right", "down")
        app.curation._poll()  # what the once-a-second poll does

    run(folder, body)
    last = json.loads((folder / "boxnet-tui.json").read_text())["last"]
    assert last["micrograph"] == "mic2" and last["position"] != [200.0, 200.0]


def test_a_picking_failure_that_is_a_bug_is_reported_and_the_app_goes_on(folder, monkeypatch):
    from boxnet_tui import batch_picking
    from boxnet_tui.tui.screens.pick import PickRequest

    def broken(*args, **kwargs):
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(batch_picking, "pick_folder", broken)

    async def body(app, pilot):
        app._pick(PickRequest("BoxNet", DIAMETER, None, "current", "cuda"))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not app.query_one("#job").display
        assert any("picking failed" in str(n.message) for n in app._notifications)
        await pilot.press("a")  # still working
        assert len(star(folder)) == len(PICKS) + 1

    run(folder, body)


def test_which_micrographs_are_unpicked_is_found_off_the_ui_thread(folder, monkeypatch):
    """Issue 12: the check stats a pick file per micrograph (thousands in a big folder)."""
    import threading

    from boxnet_tui import batch_picking
    from boxnet_tui.io import layout
    from boxnet_tui.tui.screens.pick import PickRequest

    checked: list[tuple[str, bool]] = []  # (root, on the UI thread)
    real = layout.pick_path

    def pick_path(folder_, root, suffix):
        if suffix == "Fresh":
            checked.append((root, threading.current_thread() is threading.main_thread()))
        return real(folder_, root, suffix)

    asked: list[Path] = []

    def pick_folder(*args, paths, **kwargs):
        asked.extend(paths)
        return batch_picking.FolderSummary(picked=len(paths))

    monkeypatch.setattr(layout, "pick_path", pick_path)
    monkeypatch.setattr(batch_picking, "pick_folder", pick_folder)
    write_picks(folder / "matching" / "mic2_Fresh.star", PICKS, "mic2.mrc")  # picked already

    async def body(app, pilot):
        checked.clear()  # the editors the app made on opening
        app._pick(PickRequest("Fresh", DIAMETER, None, "unpicked", "cpu"))
        assert not any(on_ui for _, on_ui in checked)  # none while the key is handled
        await app.workers.wait_for_complete()
        await pilot.pause()
        in_worker = [root for root, on_ui in checked if not on_ui]
        assert in_worker[:3] == ["mic1", "mic2", "mic3"]
        assert any("picked 2 micrographs" in str(n.message) for n in app._notifications)

    run(folder, body, suffix="BoxNet")
    assert [path.name for path in asked] == ["mic1.mrc", "mic3.mrc"]


def test_n_to_a_prefetched_micrograph_reads_its_picks_off_the_ui_thread(folder, monkeypatch):
    """Issue 12: the next micrograph's editor (its STAR and mask) is built in a worker while
    the current one is on screen, so `n` only looks it up."""
    import threading

    from boxnet_tui import editing

    reads: list[tuple[str, bool]] = []  # (file, on the UI thread)
    real = editing.read_star_document

    def read_star_document(path, *args, **kwargs):
        reads.append((Path(path).name, threading.current_thread() is threading.main_thread()))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(editing, "read_star_document", read_star_document)

    async def body(app, pilot):
        await app.workers.wait_for_complete()  # the neighbours are prefetched
        await pilot.pause()
        reads.clear()
        await pilot.press("n")
        await pilot.pause()
        assert app.curation.index == 1
        assert app.curation.editor() is not None and app.curation.editor().root == "mic2"
        assert not [name for name, on_ui in reads if on_ui]

    run(folder, body)


def test_q_during_a_pick_asks_before_it_quits_and_stops_the_pick(folder, monkeypatch):
    import threading

    from boxnet_tui import batch_picking
    from boxnet_tui.tui.screens.confirm import ConfirmScreen
    from boxnet_tui.tui.screens.pick import PickRequest

    stopped = threading.Event()

    def slow(*args, should_stop, **kwargs):
        while not should_stop():  # a long pick, until asked to stop
            threading.Event().wait(0.02)
        stopped.set()
        return batch_picking.FolderSummary()

    monkeypatch.setattr(batch_picking, "pick_folder", slow)

    async def body(app, pilot):
        app._pick(PickRequest("BoxNet", DIAMETER, None, "all", "cpu"))
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "Picking is running" in str(app.screen.question)
        await pilot.press("n")  # keep picking
        await pilot.pause()
        assert app.is_running and app.workers_in("pick") and not stopped.is_set()
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await app.workers.wait_for_complete()
        assert stopped.is_set()

    run(folder, body)


def test_the_list_shows_the_part_of_the_names_that_differs_and_filters_on_all(tmp_path):
    rng = np.random.default_rng(1)
    for stamp in ("14_33_35_0", "15_07_41_0"):
        write_micrograph(
            tmp_path / f"Falcon_2012_06_12-{stamp}.mrc", rng.normal(size=(64, 64)), PIXEL
        )

    async def body(app, pilot):
        table = app.query_one("#micrographs")
        names = [str(table.get_row_at(row)[3]) for row in range(table.row_count)]
        assert names == ["…14_33_35_0", "…15_07_41_0"]
        await pilot.press("slash", *"Falcon_2012_06_12-15", "enter")  # the whole name matches
        assert app.query_one(MicrographList).shown == [1]

    run(tmp_path, body)


# -- legibility: the target, Tab's orders, overview, minimap, tile walk, low-pass, contrast ----
def test_the_pick_x_acts_on_is_ringed_and_its_score_shown(folder):
    write_picks(folder / "matching" / "mic2_BoxNet.star", Picks([200.0], [200.0]), "mic2.mrc")

    async def body(app, pilot):
        viewer = app.query_one(Viewer)
        app.curation.set_cursor(0.0, 0.0)
        await pilot.pause()
        assert viewer.target is None and "score" not in status(app)
        # within half a diameter of the 0.9 pick at (300, 100)
        app.curation.set_cursor(305.0, 104.0)
        await pilot.pause()
        assert app.curation.target() == 0 and "score 0.90" in status(app)
        dx, dy = app.curation.view.to_display(300.0, 100.0)
        assert viewer.target is not None and viewer.target[:2] == pytest.approx((dx, dy))
        ring, g = viewer.query_one("#ring"), viewer.geometry
        left, top = ring.styles.offset.x.value, ring.styles.offset.y.value
        assert (
            left <= dx / g.x < left + ring.size.width and top <= dy / g.y < top + ring.size.height
        )
        await pilot.press("x")  # removes the ringed one
        assert sorted(star(folder).x) == [100.0, 200.0] and viewer.target is None
        assert ring.styles.offset.x.value < 0  # the ring is off the view
        await pilot.press("n")
        await ready(app, pilot, 1)
        app.curation.set_cursor(200.0, 200.0)
        await pilot.pause()
        assert "no score" in status(app)  # a file without scores

    run(folder, body)


def test_tab_reads_rows_one_diameter_high_not_raw_y(tmp_path):
    folder = make_folder(tmp_path, count=1)
    picks = Picks([300.0, 100.0, 200.0, 150.0], [102.0, 110.0, 95.0, 250.0], [0.9, 0.8, 0.7, 0.6])
    write_picks(folder / "matching" / "mic1_BoxNet.star", picks, "mic1.mrc")

    async def body(app, pilot):
        app.curation.set_cursor(0.0, 0.0)
        seen = []
        for _ in range(4):
            await pilot.press("tab")
            seen.append(app.curation.cursor)
        # the first row (y 95-110) left to right, then the next: raw y went 200, 300, 100
        assert seen == [(100.0, 110.0), (200.0, 95.0), (300.0, 102.0), (150.0, 250.0)]
        await pilot.press("shift+tab")
        assert app.curation.cursor == (300.0, 102.0)

    run(folder, body)


def test_o_makes_tab_step_lowest_score_first(folder):
    async def body(app, pilot):
        app.curation.set_cursor(0.0, 0.0)
        await pilot.press("o")
        assert "tab: lowest score first" in status(app)
        await pilot.press("tab")
        assert app.curation.cursor == (200.0, 300.0)  # 0.2
        await pilot.press("tab")
        assert app.curation.cursor == (100.0, 200.0)  # 0.5
        await pilot.press("shift+tab")
        assert app.curation.cursor == (200.0, 300.0)
        await pilot.press("x", "tab")  # the doubtful one removed: on to the next lowest
        assert len(star(folder)) == 2 and app.curation.cursor == (100.0, 200.0)
        await pilot.press("tab")
        assert app.curation.cursor == (300.0, 100.0)  # 0.9
        await pilot.press("o")  # reading order again
        assert "lowest score" not in status(app)
        await pilot.press("tab")
        assert app.curation.cursor == (100.0, 200.0)

    run(folder, body)


def test_a_crowded_micrograph_shows_dots_until_zoomed_in(tmp_path):
    folder = make_folder(tmp_path, count=1)
    xs, ys = np.meshgrid(np.arange(20.0, 400.0, 38.0), np.arange(20.0, 400.0, 38.0))
    picks = Picks(xs.ravel(), ys.ravel(), np.linspace(0.5, 1.0, xs.size))
    write_picks(folder / "matching" / "mic1_BoxNet.star", picks, "mic1.mrc")

    async def body(app, pilot):
        assert app.curation.drawn[0] == "dots" and "picks as dots" in status(app)
        await pilot.press("plus")
        assert app.curation.drawn[0] == "circles" and "dots" not in status(app)
        await pilot.press("O")  # dots at any zoom
        assert app.curation.overview == "dots" and app.curation.drawn[0] == "dots"
        await pilot.press("O", "minus")  # circles at any zoom
        assert app.curation.overview == "circles" and app.curation.drawn[0] == "circles"
        await pilot.press("O")  # auto again
        assert app.curation.overview == "auto" and app.curation.drawn[0] == "dots"

    run(folder, body)


def test_M_shows_and_hides_the_minimap_when_zoomed_in(folder):
    async def body(app, pilot):
        assert app.curation.drawn[1] is None  # ×1 shows all: no minimap
        await pilot.press("plus", "plus")
        assert app.curation.drawn[1] == "bottom-right"
        frame = np.asarray(app.query_one(Viewer)._frame)
        from boxnet_tui.display import minimap_box

        left, top, right, bottom = minimap_box(app.curation.view, "bottom-right")
        assert (frame[top : bottom + 1, left : right + 1] == (255, 220, 0)).all(axis=2).any()
        await pilot.press("M")
        assert app.curation.drawn[1] is None
        await pilot.press("M")
        assert app.curation.drawn[1] == "bottom-right"

    run(folder, body)


def test_w_walks_the_micrograph_tile_by_tile_at_the_working_zoom(folder):
    from boxnet_tui.display import tile_centres

    async def body(app, pilot):
        await pilot.press("w")
        assert app.curation.tile is None  # ×1 shows it all: nothing to walk
        await pilot.press("plus", "plus", "w")
        tiles = tile_centres(app.curation.view, app.session.diameter_px(0), minimap=True)
        assert app.curation.view.centre == tiles[0] and app.curation.cursor == tiles[0]
        assert f"zoom ×4 tile 1/{len(tiles)}" in status(app)
        await pilot.press("w", "w")
        assert app.curation.view.centre == tiles[2] and f"tile 3/{len(tiles)}" in status(app)
        await pilot.press("W")
        assert app.curation.view.centre == tiles[1]
        await pilot.press("right", "w")  # a look around in the tile: the walk goes on
        assert app.curation.view.centre == tiles[2]
        await pilot.press("W", "W", "W")  # the first tile: stays
        assert app.curation.view.centre == tiles[0]
        await pilot.press("minus")
        assert app.curation.tile is None and "tile" not in status(app)

    run(folder, body)


def test_f_and_comma_full_stop_step_the_low_pass_and_contrast(folder):
    from boxnet_tui.display import DisplaySettings

    async def settled(app, pilot) -> None:
        await app.workers.wait_for_complete()
        await pilot.pause()

    async def body(app, pilot):
        assert "low-pass 20 Å · clip 0.5%" in status(app)
        before = app.curation.loaded.image.pixels.copy()
        await pilot.press("f")
        await settled(app, pilot)
        assert app.curation.loaded.image.settings.lowpass == 40.0 and "low-pass 40 Å" in status(app)
        assert not np.array_equal(app.curation.loaded.image.pixels, before)
        await pilot.press("F", "F", "F", "full_stop")
        await settled(app, pilot)
        assert app.curation.loaded.image.settings == DisplaySettings(lowpass=None, clip=2.0)
        assert "no low-pass · clip 2%" in status(app) and "…" not in status(app)
        await pilot.press("comma", "comma", "comma")
        await settled(app, pilot)
        assert app.curation.loaded.image.settings.clip == 0.1
        await pilot.press("n")  # the next micrograph comes with the same settings
        await ready(app, pilot, 1)
        await settled(app, pilot)
        assert app.curation.loaded.image.settings == DisplaySettings(lowpass=None, clip=0.1)

    run(folder, body)


def test_the_new_keys_are_in_the_help_and_the_readme():
    from boxnet_tui.tui.screens.curation import CurationScreen
    from boxnet_tui.tui.screens.help import KEYS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    bound = {key for b in CurationScreen.BINDINGS for key in b.key.split(",")}  # type: ignore[union-attr]
    for keys, binding in [
        ("o", ["o"]),
        ("w / W", ["w", "W"]),
        ("O", ["O"]),
        ("M", ["M"]),
        ("f / F", ["f", "F"]),
        (", / .", ["comma", "full_stop"]),
    ]:
        assert keys in [k for k, _ in KEYS]
        assert set(binding) <= bound
        readme_keys = " / ".join(f"`{k}`" for k in keys.split(" / "))
        assert f"| {readme_keys} |" in readme
