"""The app starts on a damaged ``boxnet-tui.json`` (it travels with data folders): one warning,
defaults in place of what is out of range, and the keys work."""

from __future__ import annotations

import asyncio
import json

import pytest

from boxnet_tui.curation import CurationSession
from boxnet_tui.curation_state import state_path
from boxnet_tui.tui.app import BoxnetApp
from tests.test_app import SIZE, make_folder, ready, star, status


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
