"""Micrographs and pick files arriving in the folder while the app runs (issue 15, "on the
fly"): shown once whole, in name order, with the current micrograph and the list's cursor kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from boxnet_tui.folder import FolderWatch
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import write_picks
from boxnet_tui.tui.widgets.micrograph_list import MicrographList, MicrographTable
from tests.test_app import PICKS, PIXEL, ready, run, status


def make_folder(folder: Path, roots: list[str], picks: bool = True) -> Path:
    rng = np.random.default_rng(1)
    for root in roots:
        write_micrograph(folder / f"{root}.mrc", rng.normal(size=(400, 400)), PIXEL)
        if picks:
            write_picks(folder / "matching" / f"{root}_BoxNet.star", PICKS, f"{root}.mrc")
    return folder


def micrograph_bytes(tmp_path: Path) -> bytes:
    """A whole MRC's bytes, written elsewhere first."""
    source = tmp_path / "elsewhere" / "source.mrc"
    source.parent.mkdir()
    write_micrograph(source, np.random.default_rng(2).normal(size=(400, 400)), PIXEL)
    return source.read_bytes()


def names_shown(app) -> list[str]:
    browser = app.query_one(MicrographList)
    return [app.session.entries[i].root for i in browser.shown]


async def look(app, pilot) -> None:
    """One look at the folder (the timer's every few seconds), and what it starts, done."""
    app.curation.rescan()
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()  # the describe of what arrived
    await pilot.pause()


def test_a_micrograph_arriving_is_listed_in_name_order_and_the_current_one_stays(tmp_path):
    folder = make_folder(tmp_path, ["mic1", "mic2", "mic4"])
    data = micrograph_bytes(tmp_path)

    async def body(app, pilot):
        screen = app.curation
        screen.folder_watch.settle = 0.0  # no waiting for the size to settle in a test
        screen.show_micrograph(1)
        await ready(app, pilot, 1)
        await look(app, pilot)  # nothing new: nothing changes
        assert names_shown(app) == ["mic1", "mic2", "mic4"]
        (folder / "mic3.mrc").write_bytes(data)
        write_picks(folder / "matching" / "mic3_BoxNet.star", PICKS, "mic3.mrc")
        await look(app, pilot)
        assert names_shown(app) == ["mic1", "mic2", "mic3", "mic4"]
        # the current micrograph, its view and the list's cursor are where they were
        assert screen.index == 1 and app.session.entries[1].root == "mic2"
        assert screen.view is not None
        table = app.query_one(MicrographTable)
        assert table.shown[table.cursor_row] == 1
        assert "/4" in status(app)  # the count includes it
        new = app.session.index_of("mic3")
        assert new == 3  # appended to the session: the other indices stay
        assert str(table.get_cell(str(new), "picks")) == "3"  # described like the others
        assert any("1 new micrograph" in n.message for n in app._notifications)
        await pilot.press("n")  # the next in the list is the new one
        await ready(app, pilot, new)

    run(folder, body)


def test_a_half_written_micrograph_is_listed_only_once_whole(tmp_path):
    folder = make_folder(tmp_path, ["mic1", "mic2"])
    data = micrograph_bytes(tmp_path)

    async def body(app, pilot):
        app.curation.folder_watch.settle = 0.0
        path = folder / "mic3.mrc"
        path.write_bytes(data[: len(data) // 2])  # a copy under way
        await look(app, pilot)
        assert names_shown(app) == ["mic1", "mic2"]
        with open(path, "ab") as handle:
            handle.write(data[len(data) // 2 :])
        await look(app, pilot)
        assert names_shown(app) == ["mic1", "mic2", "mic3"]
        assert app.curation.index == 0

    run(folder, body)


def test_a_pick_file_appearing_updates_its_micrographs_count(tmp_path):
    folder = make_folder(tmp_path, ["mic1", "mic2"])
    make_folder(folder, ["mic3"], picks=False)

    async def body(app, pilot):
        table = app.query_one(MicrographTable)
        await look(app, pilot)
        assert str(table.get_cell("2", "picks")) == "–"  # described: no pick file
        write_picks(folder / "matching" / "mic3_BoxNet.star", PICKS, "mic3.mrc")  # pick --watch
        await look(app, pilot)
        assert str(table.get_cell("2", "picks")) == "3"
        assert app.curation.index == 0

    run(folder, body)


def test_a_new_file_waits_until_it_has_settled(tmp_path):
    folder = make_folder(tmp_path, ["mic1"], picks=False)
    watch = FolderWatch(folder, ["mic1"], settle=60.0)
    data = micrograph_bytes(tmp_path)
    (folder / "mic2.mrc").write_bytes(data)  # whole, but written just now
    assert watch.new_micrographs() == []
    (folder / "mic3.mrc").write_bytes(data)
    old = time.time() - 120
    os.utime(folder / "mic3.mrc", (old, old))  # written two minutes ago: settled
    assert [p.name for p in watch.new_micrographs()] == ["mic3.mrc"]
    assert watch.new_micrographs() == []  # each reported once
    watch.settle = 0.0
    assert [p.name for p in watch.new_micrographs()] == ["mic2.mrc"]
