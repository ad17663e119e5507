"""The pick form's minimum mask distance, invert box and scale factor, and the retrain form's
invert and hold-out boxes, driven through the app (Pilot)."""

from __future__ import annotations

from pathlib import Path

import pytest

from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import ModelInfo, save_model
from boxnet_tui.training import runs
from boxnet_tui.tui.screens.pick import PickScreen
from boxnet_tui.tui.screens.retrain import RetrainScreen
from tests.conftest import snapshot
from tests.test_app import make_folder, run
from tests.test_app_screens import _wait_for

TINY = Architecture(widths=(4, 8, 8))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


def _save_tiny(name: str, *, inverted: bool, has_mask: bool = False) -> str:
    import torch

    torch.manual_seed(0)
    training = {"invert": True} if inverted else {}
    info = ModelInfo(name, TINY, has_mask=has_mask, training=training)
    return save_model(BoxNet(TINY).eval(), info).name


def _text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


# --------------------------------------------------------------------------- the pick form


def _picks_and_masks(folder: Path) -> dict[str, bytes]:
    """Every file but the app's own state (the last micrograph shown, written on quit)."""
    return {k: v for k, v in snapshot(folder).items() if "boxnet-tui.json" not in k}


async def _refused(app, pilot, field, values: tuple[str, ...], message: str) -> None:
    """Each value in the pick form's ``field``: one line under the form, nothing started."""
    screen = app.screen
    for bad in values:
        field.value = bad
        await pilot.press("ctrl+s")
        error = _text(screen, "#pick-error")
        assert message in error and "\n" not in error, bad
        assert app.screen is screen  # nothing started


def test_pick_form_refuses_a_bad_min_mask_distance_and_writes_nothing(folder):
    before = _picks_and_masks(folder)

    async def body(app, pilot):
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, PickScreen)
        field = screen.query_one("#min_mask_distance")
        assert field.value == "0"
        screen.query_one("#which").value = "current"
        message = "minimum mask distance must be a number of Å, 0 or more"
        await _refused(app, pilot, field, ("-5", "far", "", "nan"), message)
        await pilot.press("escape")
        assert not app.workers_in("pick")

    run(folder, body)
    assert _picks_and_masks(folder) == before


def test_pick_form_passes_the_distance_and_invert_to_the_pick(folder):
    model = _save_tiny("TinyPick", inverted=False, has_mask=True)

    async def body(app, pilot):
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, PickScreen)
        screen.query_one("#model").value = model
        await pilot.pause()
        assert screen.query_one("#invert").value is False  # as the model was trained
        screen.query_one("#min_mask_distance").value = "30"
        screen.query_one("#invert").value = True
        screen.query_one("#which").value = "current"
        screen.query_one("#threshold").value = "0"
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, PickScreen)
        await _wait_for(pilot, lambda: not app.workers_in("pick"), "picking to finish")

    run(folder, body)
    head = (folder / "matching" / "mic1_TinyPick.star").read_text().splitlines()[0]
    assert "model=TinyPick" in head
    assert "min_mask_distance=30 invert=1" in head
    assert not (folder / "matching" / "mic2_TinyPick.star").exists()


def test_pick_forms_invert_box_follows_the_models_record(folder):
    stained = _save_tiny("StainPick", inverted=True)

    async def body(app, pilot):
        await pilot.press("P")
        screen = app.screen
        box = screen.query_one("#invert")
        assert screen.query_one("#model").value == "BoxNet" and box.value is False
        screen.query_one("#model").value = stained
        await pilot.pause()
        assert box.value is True
        screen.query_one("#model").value = "BoxNetMask"
        await pilot.pause()
        assert box.value is False
        screen.query_one("#model").value = stained
        await pilot.pause()
        box.value = False  # told not to: the request says so, the model's record is not used
        request = screen.request()
        assert not isinstance(request, str)
        assert request.invert is False and request.min_mask_distance == 0.0
        assert request.settings().invert is False
        await pilot.press("escape")

    run(folder, body)


# --------------------------------------------------------------------------- the retrain form


def test_retrain_form_invert_and_hold_out_reach_the_run(folder, monkeypatch):
    monkeypatch.setattr(runs, "start_detached", lambda run: 0)

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, RetrainScreen)
        invert, hold_out = screen.query_one("#invert"), screen.query_one("#hold_out")
        assert invert.value is False and str(invert.label) == "off"
        assert hold_out.value is True and str(hold_out.label) == "on"  # as before: on
        invert.value = True
        hold_out.value = False
        await pilot.pause()
        assert str(invert.label) == "on" and str(hold_out.label) == "off"
        screen.query_one("#name").value = "StainedNet"
        await pilot.pause()
        assert not screen.query_one("#start").disabled
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, RetrainScreen), "the start")

    run(folder, body)
    config = runs.find_run("StainedNet").config()
    assert config.invert is True and config.hold_out is False


def test_retrain_form_defaults_make_a_run_that_holds_out_and_does_not_invert(folder, monkeypatch):
    monkeypatch.setattr(runs, "start_detached", lambda run: 0)

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        screen.query_one("#name").value = "PlainNet"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, RetrainScreen), "the start")

    run(folder, body)
    config = runs.find_run("PlainNet").config()
    assert config.invert is False and config.hold_out is True


def test_retrain_form_invert_follows_the_base_and_warns_when_cleared(folder):
    base = _save_tiny("StainBase", inverted=True, has_mask=True)

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        box = screen.query_one("#invert")
        screen.query_one("#base").value = base
        await pilot.pause()
        assert box.value is True  # as the base was trained, as `train` defaults
        assert not screen.query_one("#invert-error").display
        box.value = False  # cleared by hand: allowed, with a warning
        await pilot.pause()
        warning = _text(screen, "#invert-error")
        assert "⚠" in warning and "inverted micrographs" in warning
        screen.query_one("#base").value = "BoxNetMask"
        await pilot.pause()
        assert box.value is False and not screen.query_one("#invert-error").display
        box.value = True  # a negative-stain user on a plain base
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("r")  # opened again: the box as the user left it
        await pilot.pause()
        assert app.screen.query_one("#invert").value is True
        await pilot.press("escape")

    run(folder, body)


def test_retrain_form_takes_positives_from_another_folder(folder, tmp_path, monkeypatch):
    from boxnet_tui.io.star import Picks, write_picks

    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    elsewhere = tmp_path / "elsewhere"
    star = elsewhere / "mic1_mine.star"
    write_picks(star, Picks([40.0, 90.0], [40.0, 90.0]), "mic1.mrc")

    async def body(app, pilot):
        await pilot.press("r")
        screen = app.screen
        screen.query_one("#name").value = "ElsewhereNet"
        screen.query_one("#positives_path").value = str(elsewhere / "missing.star")
        await pilot.pause()
        assert "no such STAR file" in _text(screen, "#positives-error")
        assert screen.query_one("#start").disabled
        screen.query_one("#positives_path").value = str(star)
        await pilot.pause()
        assert not screen.query_one("#positives-error").display
        assert "suffix _mine" in _text(screen, "#positives-info")
        await pilot.press("escape")
        await pilot.press("r")  # opened again: the typed path kept, the form still valid
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#positives_path").value == str(star)
        assert not screen.query_one("#start").disabled
        await pilot.press("ctrl+s")
        await _wait_for(pilot, lambda: not isinstance(app.screen, RetrainScreen), "the start")

    run(folder, body)
    config = runs.find_run("ElsewhereNet").config()
    assert config.positives == str(star) and config.micrographs == ["mic1"]


def test_pick_form_takes_a_scale_factor_or_leaves_it_to_the_check(folder):
    before = _picks_and_masks(folder)

    async def body(app, pilot):
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, PickScreen)
        field = screen.query_one("#scale_factor")
        assert field.value == ""  # empty: a generic model checks it on the folder
        request = screen.request()
        assert not isinstance(request, str) and request.scale_factor is None
        assert request.settings().scale_factor is None
        screen.query_one("#which").value = "current"
        message = "scale factor must be a number from 0.5 to 2"
        await _refused(app, pilot, field, ("3", "big", "0", "nan"), message)
        field.value = " 0.8 "
        request = screen.request()
        assert not isinstance(request, str) and request.settings().scale_factor == 0.8
        await pilot.press("escape")
        assert not app.workers_in("pick")

    run(folder, body)
    assert _picks_and_masks(folder) == before
