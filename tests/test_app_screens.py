"""The retrain form, pick and export screens and compare, driven through the app (Pilot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet_tui.io.examples import read_examples
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.training import runs
from boxnet_tui.tui.screens.export import ExportScreen
from boxnet_tui.tui.screens.pick import PickScreen
from boxnet_tui.tui.screens.retrain import RetrainScreen
from tests.test_app import make_folder, run, status

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
        assert "suffix _BoxNet: 3 micrographs, 9 particles" in info
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
        first = app.cursor
        await pilot.press("tab")
        assert app.cursor != first  # the main screen: Tab jumps to the next pick
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        before = screen.focused
        await pilot.press("tab")
        assert screen.focused is not before and app.cursor != first
        cursor = app.cursor
        await pilot.press("shift+tab")
        assert screen.focused is before and app.cursor == cursor
        await pilot.press("escape")
        await pilot.press("shift+tab")
        assert app.cursor == first

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
        screen.query_one("#diameter").value = "1"
        await pilot.press("ctrl+s")
        assert "diameter" in str(screen.query_one("#pick-error").render())
        screen.query_one("#diameter").value = "160"
        assert screen.query_one("#model").value == "BoxNet"  # the model named by the suffix
        screen.query_one("#model").value = "BoxNetMask"
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
        await pilot.press("ctrl+s")
        assert "choose the positive" in str(screen.query_one("#export-error").render())
        screen.query_one("#positives").value = str(folder / "matching" / "mic1_BoxNet.star")
        await pilot.pause()
        assert "3 micrographs, 9 particles" in str(screen.query_one("#positives-info").render())
        assert screen.query_one("#out").value == "BoxNet"
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, ExportScreen), "the export")

    run(folder, body)
    examples = read_examples(folder / "boxnet2training" / "BoxNet.tif")
    assert len(examples) == 3


def test_v_compares_with_a_second_pick_set(folder):
    write_picks(folder / "matching" / "mic1_manual.star", Picks([10.0], [10.0]), "mic1.mrc")

    async def body(app, pilot):
        await pilot.press("v")
        await pilot.press("enter")  # the only other set
        assert app.compare_suffix == "manual" and "compare manual" in app.sub_title
        await pilot.press("v")
        assert app.compare_suffix is None

    run(folder, body, suffix="BoxNet")
