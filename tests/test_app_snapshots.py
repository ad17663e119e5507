"""SVG snapshots of the main screen (update with `pytest --snapshot-update` and look at them)."""

from __future__ import annotations

from pathlib import Path

from boxnet_tui.curation import CurationSession
from boxnet_tui.tui.app import BoxnetApp
from tests.test_app import DIAMETER, SIZE, make_folder


def _app(folder: Path) -> BoxnetApp:
    return BoxnetApp(CurationSession(folder, diameter=DIAMETER), graphics="halfcell")


async def _shown(pilot) -> None:
    app = pilot.app
    for _ in range(200):
        await pilot.pause(0.02)
        if app.curation.view is not None:
            break
    await app.workers.wait_for_complete()
    app.title = "boxnet-tui  demo"  # the temp folder's path differs from run to run
    app.curation.set_cursor(0.0, 0.0)
    await pilot.pause()


def test_main_screen(snap_compare, tmp_path):
    assert snap_compare(_app(make_folder(tmp_path)), terminal_size=SIZE, run_before=_shown)


def _after(*keys: str, settle: float = 0.0):
    """A run_before that waits for the first frame, presses ``keys`` and lets them land."""

    async def press(pilot) -> None:
        await _shown(pilot)
        await pilot.press(*keys)
        await pilot.pause(settle or None)

    return press


def test_main_screen_after_curation_with_mask_and_zoom(snap_compare, tmp_path):
    curate = _after("tab", "x", "c", "plus", "b", "right", "right", "b", "tab")
    assert snap_compare(_app(make_folder(tmp_path)), terminal_size=SIZE, run_before=curate)


def test_help_screen(snap_compare, tmp_path):
    help_ = _after("question_mark")
    assert snap_compare(_app(make_folder(tmp_path)), terminal_size=SIZE, run_before=help_)


def test_retrain_form(snap_compare, tmp_path):
    async def form(pilot) -> None:
        await _shown(pilot)
        await pilot.press("r", *"BetaGal2")
        # the form reads the folder in workers: wait for them, not for a fixed time (a loaded
        # machine took longer than any pause)
        for _ in range(500):
            await pilot.pause(0.02)
            screen = pilot.app.screen
            if not any(w.is_running for w in screen.workers) and str(
                screen.query_one("#positives-info").render()
            ):
                break
        for field in pilot.app.screen.query("Input"):
            field.cursor_blink = False  # a blinking cursor is drawn or not by the clock
        await pilot.pause()

    assert snap_compare(_app(make_folder(tmp_path)), terminal_size=SIZE, run_before=form)
