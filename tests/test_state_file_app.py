"""The app and ``boxnet-tui.json``: it starts on a damaged file (it travels with data folders)
with one warning, defaults in place of what is out of range, and the keys work; each pick set
keeps its own display threshold (``s`` shows a set at its own), and the thresholds, low-pass,
contrast and Tab order survive a restart; the forms count the picks the threshold takes."""

from __future__ import annotations

import asyncio
import json

import pytest

from boxnet_tui.curation import CurationSession
from boxnet_tui.curation_state import state_path
from boxnet_tui.display import DisplaySettings
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.tui.app import BoxnetApp
from boxnet_tui.tui.screens.prompts import SuffixScreen
from tests.test_app import SIZE, make_folder, ready, run, star, status


@pytest.mark.parametrize(
    "last",
    [
        {"micrograph": "mic2", "position": [float("nan"), 5.0], "zoom": 0},
        {"micrograph": "mic2", "position": [1e308, 1e308], "zoom": 1},
        {"micrograph": "mic2", "position": [50.0, 60.0], "zoom": -100000},
        {"micrograph": "mic2", "position": [50.0, 60.0], "zoom": 1e308},
    ],
)
def test_a_damaged_state_file_starts_with_one_warning(tmp_path, last):
    folder = make_folder(tmp_path)
    state_path(folder).write_text(
        json.dumps({"curated": ["mic1"], "diameter": 1e308, "last": last})
    )

    async def main() -> None:
        # the diameter too comes from the state file here (1e308: the default, 200 Å)
        app = BoxnetApp(CurationSession(folder), graphics="halfcell")
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await body(app, pilot)
            await app.workers.wait_for_complete()

    async def body(app, pilot):
        assert app.session.diameter == 200.0
        warnings = [n.message for n in app._notifications if "boxnet-tui.json" in n.message]
        assert len(warnings) == 1 and "\n" not in warnings[0]
        assert "using the default" in warnings[0]
        assert app.curation.index == 1 and app.session.is_curated("mic1")  # what is sound is kept
        assert 0 <= app.curation.view.zoom <= 5
        assert 0 <= app.curation.cursor[0] < 400 and 0 <= app.curation.cursor[1] < 400
        await pilot.press("a")
        await pilot.pause()
        assert len(star(folder, "mic2")) == 4 and "4 picks" in status(app)

    asyncio.run(main())


# ------------------------------------------------ one threshold per pick set, the view settings


async def _show_set(app, pilot, suffix: str) -> None:
    """Choose pick set ``suffix`` with ``s``, as a user does."""
    await pilot.press("s")
    assert isinstance(app.screen, SuffixScreen)
    app.screen.query_one("OptionList").highlighted = app.screen.suffixes.index(suffix)
    await pilot.press("enter")
    await ready(app, pilot)
    await pilot.pause()
    assert app.session.suffix == suffix


def test_each_pick_set_keeps_its_own_threshold_when_switched_with_s(tmp_path):
    folder = make_folder(tmp_path)  # BoxNet picks scored 0.9, 0.5, 0.2
    manual = Picks([20.0, 60.0], [20.0, 60.0], [0.95, 0.3])
    write_picks(folder / "matching" / "mic1_manual.star", manual, "mic1.mrc")

    async def body(app, pilot):
        await _show_set(app, pilot, "BoxNet")
        await pilot.press(*["right_square_bracket"] * 12)
        assert "threshold 0.60" in status(app) and "1 picks (3 in file)" in status(app)
        await _show_set(app, pilot, "manual")
        assert "threshold 0.00" in status(app) and "2 picks" in status(app)
        await pilot.press(*["right_square_bracket"] * 8)
        assert "threshold 0.40" in status(app) and "1 picks (2 in file)" in status(app)
        await _show_set(app, pilot, "BoxNet")
        assert "threshold 0.60" in status(app) and "1 picks (3 in file)" in status(app)

    run(folder, body)
    saved = json.loads(state_path(folder).read_text())
    assert saved["set_thresholds"] == {"BoxNet": 0.6, "manual": 0.4}


def test_thresholds_and_view_settings_survive_a_restart(tmp_path):
    folder = make_folder(tmp_path)

    async def first(app, pilot):
        await pilot.press(*["right_square_bracket"] * 4)  # 0.20
        await pilot.press("f", "full_stop", "o")  # low-pass 40 Å, clip 2 %, Tab by score
        assert "threshold 0.20" in status(app) and "tab: lowest score first" in status(app)

    run(folder, first)

    async def second(app, pilot):
        await app.workers.wait_for_complete()
        await pilot.pause()
        curation = app.curation
        assert curation.display_settings == DisplaySettings(lowpass=40.0, clip=2.0)
        assert app.cache.settings == curation.display_settings  # loaded so, not restyled after
        assert curation.loaded.image.settings == curation.display_settings
        assert curation.nav.tab_by_score
        text = status(app)
        assert "threshold 0.20" in text and "tab: lowest score first" in text
        assert "low-pass 40 Å · clip 2%" in text and "…" not in text
        await pilot.press("F", "comma", "o")  # back: kept too
        assert "tab: lowest score first" not in status(app)

    run(folder, second)
    saved = json.loads(state_path(folder).read_text())["view"]
    assert saved == {"lowpass": 20.0, "clip": 0.5, "tab_order": "reading"}


def test_the_retrain_and_export_forms_count_the_picks_at_or_above_the_sets_threshold(tmp_path):
    from boxnet_tui.tui.screens.export import ExportScreen
    from boxnet_tui.tui.screens.retrain import RetrainScreen

    folder = make_folder(tmp_path)
    positives = folder / "matching" / "mic1_BoxNet.star"

    async def info(pilot, screen, words: str) -> str:
        for _ in range(200):
            await pilot.pause(0.05)
            text = str(screen.query_one("#positives-info").render())
            if words in text:
                return text
        raise AssertionError(f"the form never said {words!r}: {text!r}")

    async def body(app, pilot):
        await pilot.press(*["right_square_bracket"] * 9)  # 0.45: 0.9 and 0.5 shown
        threshold = app.session.threshold
        assert threshold == 0.45
        shown = sum(len(star(folder, f"mic{i}").above(threshold)) for i in (1, 2, 3))
        await pilot.press("r")
        assert isinstance(app.screen, RetrainScreen)
        text = await info(pilot, app.screen, "particles")
        assert f"{shown} particles at or above the display threshold 0.45" in text
        assert "; 3 below it are not trained" in text
        await pilot.press("escape")
        await pilot.press("E")
        screen = app.screen
        assert isinstance(screen, ExportScreen)
        screen.query_one("#positives").value = str(positives)
        text = await info(pilot, screen, "particles")
        assert f"{shown} particles at or above the display threshold 0.45" in text
        assert "; 3 below it are not exported" in text
        await pilot.press("escape")

    run(folder, body)
