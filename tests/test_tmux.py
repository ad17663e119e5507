"""The installed ``boxnet-tui`` in a real terminal (tmux), driven by keys as a user would.

Each step waits for the status line to show its result (polling ``capture-pane``), then the
STAR files on disk are checked: ``x`` removes and records a false positive, ``a`` adds,
``X`` removes without recording, ``u`` undoes, ``n`` shows the next micrograph, and a
``kill -9`` as soon as the key after an ``x`` is handled leaves a valid pick file without that
pick (every edit is written before the next key is handled: no timing assumed).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from boxnet_tui.io import layout
from boxnet_tui.io.star import Picks, read_picks
from tests.conftest import shared_data_dir
from tests.tmux_session import KEY_TIMEOUT, START_TIMEOUT, TMUX, Pane, Status, command

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

REAL_ROOTS = (
    "Falcon_2012_06_12-14_33_35_0",
    "Falcon_2012_06_12-15_07_41_0",
    "Falcon_2012_06_12-15_17_31_0",
)


def keyed(picks: Picks) -> Counter[tuple[float, float]]:
    pairs = zip(picks.x, picks.y, strict=True)
    return Counter((round(float(x), 1), round(float(y), 1)) for x, y in pairs)


def near(pick: tuple[float, float], status: Status) -> bool:
    """The status line shows the cursor rounded to whole pixels."""
    return abs(pick[0] - status.x) <= 1 and abs(pick[1] - status.y) <= 1


def curate(folder: Path, roots: list[str], suffix: str, diameter: float, home: Path) -> None:
    """The user's session: x, a, X, u, n, then x and kill -9 on the second micrograph."""
    first, second = roots[0], roots[1]
    stars = {root: layout.pick_path(folder, root, suffix) for root in roots}
    fps = {root: layout.false_positives_path(folder, root, suffix) for root in roots}
    original = {root: read_picks(stars[root]) for root in roots}

    def fp_count(root: str) -> int:
        return len(read_picks(fps[root])) if fps[root].exists() else 0

    pane = Pane(home)
    try:
        pane.start([str(folder), "--suffix", suffix, "--diameter", f"{diameter:g}"])
        start = pane.wait(
            lambda s: s.root == first and s.picks == len(original[first]),
            f"{first} shown with {len(original[first])} picks",
            START_TIMEOUT,
        )
        assert (start.index, start.total) == (1, len(roots))
        count = start.picks

        def tab_and_remove(key: str, before: Picks, here: Status) -> tuple[Picks, Status]:
            """Tab to the next pick, ``key`` removes it: exactly that pick gone from the STAR."""
            pane.send("Tab")
            on_pick = pane.wait(lambda s: (s.x, s.y) != (here.x, here.y), "Tab to a pick")
            pane.send(key)
            pane.wait(lambda s: s.picks == count - 1, f"{key} to leave {count - 1} picks")
            after = read_picks(stars[first])
            assert len(after) == count - 1
            gone = list((keyed(before) - keyed(after)).elements())
            assert len(gone) == 1 and near(gone[0], on_pick), (gone, on_pick)
            return after, on_pick

        # Tab, then x: one pick gone from the STAR, the same one in the false positives
        after_x, on_pick = tab_and_remove("x", original[first], start)
        assert fp_count(first) == 1
        recorded = read_picks(fps[first])
        assert near((float(recorded.x[0]), float(recorded.y[0])), on_pick)

        # a: one pick added at the cursor, nothing more recorded
        pane.send("a")
        pane.wait(lambda s: s.picks == count, f"a to make {count} picks again")
        after_a = read_picks(stars[first])
        assert len(after_a) == count
        added = list((keyed(after_a) - keyed(after_x)).elements())
        assert len(added) == 1 and near(added[0], on_pick), (added, on_pick)
        assert fp_count(first) == 1

        # Tab, then X: removed without recording
        tab_and_remove("X", after_a, on_pick)
        assert fp_count(first) == 1, "X must not record a false positive"

        # u: the unrecorded removal undone
        pane.send("u")
        pane.wait(lambda s: s.picks == count, f"u to bring back {count} picks")
        assert keyed(read_picks(stars[first])) == keyed(after_a)
        assert fp_count(first) == 1

        # n: the next micrograph's name on screen
        pane.send("n")
        shown = pane.wait(
            lambda s: s.root == second and s.picks == len(original[second]),
            f"n to show {second}",
        )
        assert shown.index == 2
        assert second in pane.text()

        # Tab, x, then l, and kill -9 once the l is handled (the cursor moved): the STAR is
        # valid and the pick is gone. A fixed wait instead (0.3 s) failed on a loaded machine.
        pane.send("Tab")
        target = pane.wait(lambda s: (s.x, s.y) != (shown.x, shown.y), "Tab on the second")
        pid = pane.pid()
        pane.send("x")
        pane.send("l")
        pane.wait(lambda s: (s.x, s.y) != (target.x, target.y), "l after the x")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + KEY_TIMEOUT
        while not pane.dead():
            if time.monotonic() > deadline:
                pytest.fail(f"the app (pid {pid}) survived kill -9; pane:\n{pane.text()}")
            time.sleep(0.05)
    finally:
        pane.close()

    killed = read_picks(stars[second])  # valid STAR
    assert len(killed) == len(original[second]) - 1
    gone = list((keyed(original[second]) - keyed(killed)).elements())
    assert len(gone) == 1 and near(gone[0], target), (gone, target)
    assert fp_count(second) == 1
    # the first micrograph as the session left it; every STAR in matching/ still reads
    assert keyed(read_picks(stars[first])) == keyed(after_a)
    for path in sorted(layout.matching_dir(folder).glob("*.star")):
        read_picks(path)


def test_curating_a_copied_real_folder_in_tmux(tmp_path: Path) -> None:
    real = shared_data_dir() / "empiar-10017"
    if not all((real / f"{root}.mrc").is_file() for root in REAL_ROOTS):
        pytest.skip(f"real data ({real}) is not present")
    folder = tmp_path / "micrographs"
    (folder / "matching").mkdir(parents=True)
    for root in REAL_ROOTS:
        shutil.copy(real / f"{root}.mrc", folder)
        shutil.copy(layout.pick_path(real, root, "manual"), folder / "matching")
    curate(folder, list(REAL_ROOTS), "manual", 190.0, tmp_path / "home")


def test_curating_a_synthetic_folder_in_tmux(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic"
    home = tmp_path / "home"
    subprocess.run(
        [*command(), "synth", str(folder), "--count", "2", "--size", "512", "--pixel-size", "3"],
        env={**os.environ, "BOXNET_TUI_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    roots = sorted(path.stem for path in folder.glob("*.mrc"))
    assert len(roots) == 2
    curate(folder, roots, "truth", 180.0, home)
