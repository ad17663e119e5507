"""Two windows (two processes) editing one folder at the same moment: nothing is lost.

Each process goes through the session the app holds (``CurationSession``), as a key press
does: ``session.editor(index).add(...)`` for ``a``, ``session.toggle_curated(root)`` for ``c``.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from boxnet_tui.curation import CurationSession
from boxnet_tui.curation_state import load_state
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks

EDITS = 50
ORIGINAL = Picks([10.0, 20.0, 30.0], [10.0, 20.0, 30.0], [0.9, 0.8, 0.7])


def _folder(folder: Path) -> Path:
    write_micrograph(folder / "mic1.mrc", np.zeros((400, 400), np.float32), 4.0)
    write_picks(folder / "matching" / "mic1_BoxNet.star", ORIGINAL, "mic1.mrc")
    return folder


def _add_picks(folder: str, window: int, start, done) -> None:
    session = CurationSession(folder, suffix="BoxNet")
    editor = session.editor(0)
    start.wait()
    for i in range(EDITS):
        editor.add(100.0 + window * 100 + i, 50.0 + i)  # positions unique to this window
    done.put(len(editor.picks))
    editor.reload_if_changed()
    done.put(len(editor.picks))


def _mark_curated(folder: str, window: int, start, done) -> None:
    session = CurationSession(folder, suffix="BoxNet")
    start.wait()
    for i in range(EDITS):
        session.toggle_curated(f"w{window}_{i}")
        assert session.store.error is None, session.store.error
    done.put(len(session.store.state.curated))


def _run_two(target, folder: Path) -> list[int]:
    context = multiprocessing.get_context("spawn")  # two fresh interpreters, like two windows
    start, done = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=target, args=(str(folder), window, start, done)) for window in (1, 2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0, 0]
    results = []
    while not done.empty():
        results.append(done.get(timeout=5))
    return results


def test_two_processes_adding_50_picks_each_at_once_lose_none(tmp_path):
    folder = _folder(tmp_path)
    counts = _run_two(_add_picks, folder)
    picks = read_picks(folder / "matching" / "mic1_BoxNet.star")
    assert len(picks) == len(ORIGINAL) + 2 * EDITS
    expected = set(map(tuple, ORIGINAL.xy.tolist()))
    for window in (1, 2):
        expected |= {(100.0 + window * 100 + i, 50.0 + i) for i in range(EDITS)}
    assert set(map(tuple, picks.xy.tolist())) == expected
    # each window, once it looks again, shows the merged file
    assert counts.count(len(ORIGINAL) + 2 * EDITS) >= 2


def test_two_processes_marking_50_micrographs_each_at_once_lose_none(tmp_path):
    folder = _folder(tmp_path)
    _run_two(_mark_curated, folder)
    state, warning = load_state(folder)
    assert warning is None
    assert state.curated == {f"w{w}_{i}" for w in (1, 2) for i in range(EDITS)}
