"""The retrain form, pick and export screens and compare, driven through the app (Pilot)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from textual.widgets._toast import Toast

from boxnet_tui.curation import CurationSession
from boxnet_tui.io.examples import read_examples
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.training import runs
from boxnet_tui.tui.app import BoxnetApp
from boxnet_tui.tui.screens.export import ExportScreen
from boxnet_tui.tui.screens.help import KEYS
from boxnet_tui.tui.screens.pick import PickScreen
from boxnet_tui.tui.screens.retrain import RetrainScreen
from tests.test_app import DIAMETER, make_folder, ready, run, status

FIELDS = (
    "base",
    "name",
    "positives",
    "extra_important",
    "uncertain",
    "diameter",
    "public_set",
    "public_folder",
    "train_masking",
    "iterations",
    "device",
    "all_micrographs",
    "start",
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


async def _wait_for(pilot, condition, what: str) -> None:
    for _ in range(400):
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}")


def test_retrain_form_shows_every_field_and_checks_as_typed(folder, monkeypatch):
    started: list[str] = []
    monkeypatch.setattr(runs, "start_detached", lambda run: started.append(run.name) or 0)

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        for key in FIELDS:
            assert screen.query_one(f"#{key}") is not None
        # the set being curated is the starting choice, with its counts
        info = str(screen.query_one("#positives-info").render())
        assert info == (
            "suffix _BoxNet: 3 micrographs (none marked curated: all are used)\n"
            "9 particles at or above the display threshold 0.00"
        )
        assert "give the new model a name" in str(screen.query_one("#name-error").render())
        assert screen.query_one("#start").disabled
        await pilot.press(*"my net")
        assert "letters, digits" in str(screen.query_one("#name-error").render())
        assert screen.query_one("#start").disabled
        screen.query_one("#name").value = "MyNet"
        assert screen.query_one("#public_set").value is False  # as the CLI's default
        assert screen.query_one("#public_folder").disabled
        screen.query_one("#diameter").value = "5"
        await pilot.pause()
        assert "10 to 700" in str(screen.query_one("#diameter-error").render())
        screen.query_one("#diameter").value = "160"
        screen.query_one("#train_masking").value = True
        await pilot.pause()
        error = str(screen.query_one("#train_masking-error").render())
        assert "3 of 3 micrographs have no mask" in error
        info = str(screen.query_one("#train_masking-info").render())
        assert "0 of 3 curated micrographs have a mask" in info
        screen.query_one("#train_masking").value = False
        await pilot.pause()
        assert "200 (Warp's rule)" in screen.query_one("#iterations").placeholder
        assert not screen.query_one("#start").disabled
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: started, "the run to start")
        assert not isinstance(app.screen, RetrainScreen)

    run(folder, body)
    config = runs.find_run("MyNet").config()
    assert config.diameter == 160.0 and config.public_set is None and started == ["MyNet"]


def test_tab_moves_the_focus_in_a_dialog_and_jumps_between_picks_outside(folder):
    async def body(app, pilot):
        await pilot.press("tab")
        first = app.curation.cursor
        await pilot.press("tab")
        assert app.curation.cursor != first  # the main screen: Tab jumps to the next pick
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        before = screen.focused
        await pilot.press("tab")
        assert screen.focused is not before and app.curation.cursor != first
        cursor = app.curation.cursor
        await pilot.press("shift+tab")
        assert screen.focused is before and app.curation.cursor == cursor
        await pilot.press("escape")
        await pilot.press("shift+tab")
        assert app.curation.cursor == first

    run(folder, body)


def test_retrain_form_cancel_starts_nothing(folder):
    async def body(app, pilot):
        await pilot.press("r")
        await pilot.press("escape")
        assert not isinstance(app.screen, RetrainScreen)

    run(folder, body)
    assert runs.list_runs() == []


def test_pick_screen_picks_the_current_micrograph_as_results_land(folder):
    async def body(app, pilot):
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, PickScreen)
        assert app.focused is screen.query_one("#diameter")  # typing goes to a field
        screen.query_one("#diameter").value = "1"
        await pilot.press("ctrl+s")
        assert "diameter" in str(screen.query_one("#pick-error").render())
        screen.query_one("#diameter").value = "160"
        assert screen.query_one("#model").value == "BoxNet"  # the model named by the suffix
        screen.query_one("#model").value = "BoxNetMask"
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in screen.query_one("#model").query("Static"))
        assert "BoxNetMask  [mask]" in shown  # shown as text, not eaten as a markup tag
        screen.query_one("#which").value = "current"
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, PickScreen)
        await _wait_for(pilot, lambda: not app.workers_in("pick"), "picking to finish")
        await pilot.pause()
        assert not app.query_one("#job").display
        assert app.session.suffix == "BoxNetMask"
        assert "picks BoxNetMask" in app.sub_title and "1/3 mic1" in status(app)

    run(folder, body)
    assert (folder / "matching" / "mic1_BoxNetMask.star").exists()
    read_picks(folder / "matching" / "mic1_BoxNetMask.star")  # valid
    assert not (folder / "matching" / "mic2_BoxNetMask.star").exists()


def test_export_screen_writes_warps_tiff_with_progress(folder):
    async def body(app, pilot):
        await pilot.press("E")
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        assert app.focused is screen.query_one("#positives")
        await pilot.press("ctrl+s")
        assert "choose the positive" in str(screen.query_one("#export-error").render())
        screen.query_one("#positives").value = str(folder / "matching" / "mic1_BoxNet.star")
        await _wait_for(pilot, lambda: screen.query_one("#out").value, "the positives read")
        info = str(screen.query_one("#positives-info").render())
        assert "3 micrographs (none marked curated: all are used)\n9 particles" in info
        assert screen.query_one("#out").value == "BoxNet_3micrographs"  # what the file holds
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen), "the export")

    run(folder, body)
    examples = read_examples(folder / "boxnet2training" / "BoxNet_3micrographs.tif")
    assert len(examples) == 3


def test_export_screen_inverts_for_negative_stain_when_ticked(folder):
    async def export(app, pilot, name, invert):
        await pilot.press("E")
        screen = app.screen
        screen.query_one("#positives").value = str(folder / "matching" / "mic1_BoxNet.star")
        await _wait_for(pilot, lambda: screen.query_one("#out").value, "the positives read")
        screen.query_one("#invert").value = invert
        screen.query_one("#out").value = name
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen), "the export")

    async def body(app, pilot):
        await export(app, pilot, "plain", False)
        await export(app, pilot, "negative", True)

    run(folder, body)
    plain = read_examples(folder / "boxnet2training" / "plain.tif")
    negative = read_examples(folder / "boxnet2training" / "negative.tif")
    assert len(plain) == len(negative) == 3
    for a, b in zip(plain, negative, strict=True):
        assert np.abs(a.image).max() > 0
        np.testing.assert_allclose(b.image, -a.image, atol=1e-4)
        assert np.array_equal(a.label, b.label)


def test_v_compares_with_a_second_pick_set(folder):
    manual = Picks([300.0, 10.0], [100.0, 10.0])  # one on a BoxNet pick, one elsewhere
    write_picks(folder / "matching" / "mic1_manual.star", manual, "mic1.mrc")

    async def body(app, pilot):
        await pilot.press("v")
        assert "Compare BoxNet with which pick set?" in str(app.screen.query_one("Label").render())
        await pilot.press("enter")  # the only other set
        assert app.curation.compare_suffix == "manual" and "compare manual" in app.sub_title
        await app.workers.wait_for_complete()  # the compared picks are read in a worker
        await pilot.pause()
        assert "1 matched · 2 only BoxNet · 1 only manual" in status(app)
        app.curation.set_cursor(50.0, 350.0)  # far from every pick of both sets
        await pilot.press("a")
        await pilot.pause()
        assert "1 matched · 3 only BoxNet · 1 only manual" in status(app)  # counted again
        await pilot.press("v")
        assert app.curation.compare_suffix is None

    run(folder, body, suffix="BoxNet")


def test_compared_picks_are_read_in_a_worker_once_and_again_when_changed(folder, monkeypatch):
    """Issue 12: a redraw follows every key; it must not read the compared STAR file."""
    import threading

    from boxnet_tui.io import star

    write_picks(folder / "matching" / "mic1_manual.star", Picks([300.0], [100.0]), "mic1.mrc")
    reads: list[bool] = []  # on the UI thread?
    real = star.read_picks

    def read_picks(path, *args, **kwargs):
        if Path(path).name == "mic1_manual.star":
            reads.append(threading.current_thread() is threading.main_thread())
        return real(path, *args, **kwargs)

    monkeypatch.setattr(star, "read_picks", read_picks)

    async def body(app, pilot):
        await pilot.press("v", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "1 matched · 2 only BoxNet · 0 only manual" in status(app)
        await pilot.press("right", "down", "tab", "tab", "plus", "minus")  # redraws
        await app.workers.wait_for_complete()
        assert reads == [False]  # once, in a worker
        more = Picks([300.0, 10.0], [100.0, 10.0])
        write_picks(folder / "matching" / "mic1_manual.star", more, "mic1.mrc")
        app.curation._poll()  # what the once-a-second poll does: the file changed
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "1 matched · 2 only BoxNet · 1 only manual" in status(app)
        assert reads == [False, False]

    run(folder, body, suffix="BoxNet")


# --------------------------------------------------------------------------- data safety


def test_retrain_form_trains_the_curated_micrographs_and_says_how_many(folder, monkeypatch):
    """Issue 12.1 through the app: mic1 marked curated (c) -> a run config listing mic1."""
    monkeypatch.setattr(runs, "start_detached", lambda run: 0)

    async def body(app, pilot):
        await pilot.press("c", "r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        await _wait_for(
            pilot, lambda: "1 curated" in str(screen.query_one("#positives-info").render()), "info"
        )
        info = str(screen.query_one("#positives-info").render())
        assert "suffix _BoxNet: 1 curated micrograph of 3\n3 particles" in info
        switch = screen.query_one("#all_micrographs")
        switch.value = True
        await _wait_for(
            pilot, lambda: "all 3" in str(screen.query_one("#positives-info").render()), "all"
        )
        switch.value = False
        screen.query_one("#name").value = "CuratedNet"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, RetrainScreen), "the start")

    run(folder, body)
    assert runs.find_run("CuratedNet").config().micrographs == ["mic1"]


def test_pick_in_the_app_keeps_a_curated_micrographs_picks_unless_told(folder):
    """Issue 12.2 through the app: P on a curated micrograph skips it; forced, it backs up."""
    target = folder / "matching" / "mic1_BoxNet.star"
    curated = target.read_bytes()

    async def pick(app, pilot, *, overwrite: bool) -> None:
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, PickScreen)
        assert "1 micrograph is marked curated" in str(screen.query_one("#curated-info").render())
        screen.query_one("#model").value = "BoxNet"
        screen.query_one("#which").value = "current"
        screen.query_one("#overwrite_curated").value = overwrite
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not app.workers_in("pick"), "picking to finish")
        await pilot.pause()

    async def body(app, pilot):
        await pilot.press("c")
        await pick(app, pilot, overwrite=False)
        assert target.read_bytes() == curated
        assert any("skipped 1 curated" in str(n.message) for n in app._notifications)
        assert app.session.is_curated("mic1")
        await pick(app, pilot, overwrite=True)
        assert target.read_bytes() != curated
        assert not app.session.is_curated("mic1") and "curated" not in status(app)

    run(folder, body)
    (backup,) = (folder / "matching" / ".backup").glob("mic1_BoxNet.*.star")
    assert backup.read_bytes() == curated


def test_forms_never_offer_falsepositives_as_positives(folder):
    """Issue 12.4."""
    removed = folder / "matching" / "mic1_BoxNet_falsepositives.star"
    write_picks(removed, Picks([10.0], [10.0]), "mic1.mrc")

    async def body(app, pilot):
        for key, kind in (("E", ExportScreen), ("r", RetrainScreen)):
            await pilot.press(key)
            screen = app.screen
            assert isinstance(screen, kind)
            offered = screen.query_one("#positives")._legal_values
            assert str(removed) not in offered
            assert str(removed) in screen.query_one("#extra_important")._legal_values
            await pilot.press("escape")

    run(folder, body)


# --------------------------------------------------------------------------- smaller faults


def screen_rows(app) -> list[str]:
    """The screen as rows of plain text, as a terminal would show it."""
    strips = app.screen._compositor.render_strips()
    return ["".join(segment.text for segment in strip) for strip in strips]


def run_at(folder: Path, size: tuple[int, int], body, *, notifications: bool = False) -> None:
    """``run`` at another terminal size; with ``notifications``, toasts are shown."""

    async def main() -> None:
        app = BoxnetApp(CurationSession(folder, diameter=DIAMETER), graphics="halfcell")
        async with app.run_test(size=size, notifications=notifications) as pilot:
            await ready(app, pilot)
            await body(app, pilot)
            await app.workers.wait_for_complete()

    asyncio.run(main())


@pytest.mark.parametrize("size", [(160, 60), (80, 90)])
def test_help_shows_every_description_whole(folder, size):
    """Issue 12: at 160 columns the help cut its descriptions; on a narrow screen they wrap."""

    async def body(app, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        region = app.screen.query_one("#help-keys").content_region
        rows = [row[region.x : region.right] for row in screen_rows(app)[region.y : region.bottom]]
        column = max(len(keys) for keys, _ in KEYS) + 2  # the keys, then the descriptions
        shown: list[tuple[str, list[str]]] = []
        for row in rows[1:]:  # under the column titles
            if row[:column].strip():
                shown.append((row[:column].strip(), []))
            shown[-1][1].append(row[column:].strip())
        assert [keys for keys, _ in shown] == [keys for keys, _ in KEYS]
        for (_, parts), (keys, what) in zip(shown, KEYS, strict=True):
            assert " ".join(parts).split() == what.split(), keys
            if size[0] >= 160 and len(what) <= 80:
                assert len(parts) == 1, keys  # one row each

    run_at(folder, size, body)


def test_the_command_palette_names_each_command_once(folder):
    """Issue 12: "Keys" was there twice (Textual's key panel and the help screen)."""

    async def body(app, pilot):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert len(titles) == len(set(titles)), titles
        keys = [c for c in app.get_system_commands(app.screen) if c.title == "Keys"]
        assert [c.callback for c in keys] == [app.action_help]
        assert "Key panel" in titles

    run(folder, body)


def test_the_files_command_says_where_picks_go_and_how(folder):
    """Issue 13.7: the app says where picks are written and in which convention."""

    async def body(app, pilot):
        (files,) = [c for c in app.get_system_commands(app.screen) if c.title == "Files"]
        files.callback()
        await pilot.pause()
        note = " ".join(str(n.message) for n in app._notifications)
        assert f"picks in {folder / 'matching'}" in note and "x = column, y = row" in note

    run(folder, body)


def test_toasts_leave_the_status_line_visible(folder):
    """Issue 12: a notification covered the status line's zoom field."""

    async def body(app, pilot):
        await pilot.press("c")  # says "mic1 marked curated"
        await pilot.pause(0.3)
        (toast,) = app.screen.query(Toast)
        status_row = app.query_one("#status").region
        assert toast.region.bottom <= status_row.y, (toast.region, status_row)
        assert "zoom ×" in screen_rows(app)[status_row.y]

    run_at(folder, (120, 40), body, notifications=True)


def test_the_retrain_form_keeps_what_was_typed_for_the_session(folder, monkeypatch):
    """Issue 12: escape and r again lost the typed name; `d` still moves the diameter."""
    monkeypatch.setattr(runs, "start_detached", lambda run: 0)

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        await pilot.press(*"KeptNet")
        screen.query_one("#iterations").value = "30"
        screen.query_one("#all_micrographs").value = True
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        assert screen.query_one("#name").value == "KeptNet"
        assert screen.query_one("#iterations").value == "30"
        assert screen.query_one("#all_micrographs").value is True
        assert screen.query_one("#diameter").value == f"{DIAMETER:g}"
        await pilot.press("escape")
        app.session.set_diameter(150.0)  # as `d` does
        await pilot.press("r")
        screen = app.screen
        assert screen.query_one("#diameter").value == "150"
        assert screen.query_one("#name").value == "KeptNet"
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, RetrainScreen), "the start")
        await pilot.pause()
        if app.screen is not app.screen_stack[0]:
            await pilot.press("escape")  # the run's monitor
        await pilot.press("r")
        screen = app.screen
        assert screen.query_one("#name").value == ""  # KeptNet is taken now
        assert screen.query_one("#iterations").value == "30"
        await pilot.press("escape")

    run(folder, body)
    assert runs.find_run("KeptNet").config().diameter == 150.0


def test_export_names_the_file_after_what_it_holds_and_keeps_the_form(folder):
    """Issue 12: the file name defaulted to the pick set's (the model's) name."""
    positives = str(folder / "matching" / "mic1_BoxNet.star")

    async def body(app, pilot):
        await pilot.press("c", "E")  # mic1 curated
        screen = app.screen
        screen.query_one("#positives").value = positives
        await _wait_for(pilot, lambda: screen.query_one("#out").value, "the default name")
        assert screen.query_one("#out").value == "BoxNet_1curated"
        screen.query_one("#all_micrographs").value = True
        await _wait_for(
            pilot, lambda: screen.query_one("#out").value == "BoxNet_3micrographs", "all 3"
        )
        await pilot.press("escape")
        await pilot.press("E")  # the choices are kept
        screen = app.screen
        assert screen.query_one("#positives").value == positives
        assert screen.query_one("#all_micrographs").value is True
        await _wait_for(
            pilot, lambda: screen.query_one("#out").value == "BoxNet_3micrographs", "kept"
        )
        screen.query_one("#out").value = "Mine"  # typed: kept, and no longer the default
        screen.query_one("#all_micrographs").value = False
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.query_one("#out").value == "Mine"
        await pilot.press("escape")
        await pilot.press("E")
        screen = app.screen
        assert screen.query_one("#out").value == "Mine"
        screen.query_one("#out").value = ""  # emptied: the default again
        screen.query_one("#all_micrographs").value = True
        await _wait_for(
            pilot, lambda: screen.query_one("#out").value == "BoxNet_3micrographs", "default"
        )
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen), "the export")
        await pilot.press("E")  # the next default does not replace the file just written
        screen = app.screen
        await _wait_for(
            pilot, lambda: screen.query_one("#out").value == "BoxNet_3micrographs_2", "a new name"
        )
        await pilot.press("escape")

    run(folder, body)
    assert len(read_examples(folder / "boxnet2training" / "BoxNet_3micrographs.tif")) == 3
