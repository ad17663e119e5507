"""Issue 12's acceptance, in a real terminal (tmux) with the installed app, driven by keys.

1. Two of four micrographs marked curated with ``c``; a retrain started from the form (``r``,
   a name, ctrl+s): the run's ``config.json`` lists exactly those two micrographs. The run is
   cancelled once its config is written (it is the config that is checked, not the training).
   The pane is 100x30, where the monitor once cut its progress text: it must be whole.
2. A curated micrograph re-picked from the app (``P``, only the current micrograph): its picks
   survive byte for byte. Re-picked again with the form's "overwrite" ticked, they are replaced
   and backed up, and ``boxnet-tui restore`` brings back the curated bytes and the mark.

The folder is a copy of four real EMPIAR-10017 micrographs with their manual picks (under the
name of a model, ``BoxNet``, as if that model had picked them and they had been curated since),
or, where the real data is absent, four small synthetic ones with their true picks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from boxnet_tui.curation_state import state_path
from boxnet_tui.io import layout
from boxnet_tui.io.star import read_picks
from boxnet_tui.training import runs
from tests.conftest import shared_data_dir
from tests.tmux_session import KEY_TIMEOUT, START_TIMEOUT, TMUX, Pane, command

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

MODEL = "BoxNet"  # a shipped model, without masks: the pick set is named after it
TORCH_TIMEOUT = 60.0  # s: a screen that imports torch on first use, on a busy machine
PICK_TIMEOUT = 90.0  # s: one micrograph picked on the CPU (the model loaded first)
PROGRESS = re.compile(r"\d+ / (\d+|\?) iterations\s+\S+ it/s")


@dataclass
class Folder:
    path: Path
    roots: list[str]
    diameter: float

    def star(self, root: str) -> Path:
        return layout.pick_path(self.path, root, MODEL)


@pytest.fixture
def folder(tmp_path: Path, home: Path) -> Folder:
    """Four micrographs with picks of the set ``BoxNet``: real ones when present."""
    folder = tmp_path / "micrographs"
    (folder / "matching").mkdir(parents=True)
    real = shared_data_dir() / "empiar-10017"
    roots = sorted(path.stem for path in real.glob("*.mrc"))[:4] if real.is_dir() else []
    if len(roots) == 4 and all(layout.pick_path(real, r, "manual").is_file() for r in roots):
        for root in roots:
            shutil.copy(real / f"{root}.mrc", folder)
            shutil.copy(
                layout.pick_path(real, root, "manual"), layout.pick_path(folder, root, MODEL)
            )
        return Folder(folder, roots, 190.0)
    synth = [*command(), "synth", str(folder), "--count", "4", "--size", "512", "--pixel-size", "3"]
    subprocess.run(synth, env=os.environ.copy(), check=True, capture_output=True, timeout=120)
    roots = sorted(path.stem for path in folder.glob("*.mrc"))
    for root in roots:
        layout.pick_path(folder, root, "truth").rename(layout.pick_path(folder, root, MODEL))
    return Folder(folder, roots, 180.0)


def curated(folder: Folder) -> list[str]:
    path = state_path(folder.path)
    return sorted(json.loads(path.read_text())["curated"]) if path.exists() else []


def wait_curated(pane: Pane, folder: Folder, roots: list[str], what: str) -> None:
    """Until the folder's state file marks exactly ``roots`` curated (the status line says it
    too, but at 100 columns it is cut before its end)."""
    deadline = time.monotonic() + KEY_TIMEOUT
    while curated(folder) != sorted(roots):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: curated {curated(folder)}, not {roots}; pane:\n{pane.text()}")
        time.sleep(0.05)


def start(pane: Pane, folder: Folder) -> None:
    pane.start([str(folder.path), "--suffix", MODEL, "--diameter", f"{folder.diameter:g}"])
    first = folder.roots[0]
    pane.wait(lambda s: s.total == 4 and s.root == first, f"{first} shown", START_TIMEOUT)


def test_a_retrain_from_the_form_takes_exactly_the_curated_micrographs(folder: Folder, home):
    first, _, third, _ = folder.roots
    name = "CuratedTwo"
    pane = Pane(home, columns=100, rows=30)
    try:
        start(pane, folder)
        pane.send("c")
        wait_curated(pane, folder, [first], "c to mark the first curated")
        pane.send("n", "n")
        pane.wait(lambda s: s.root == third, "n n to the third micrograph")
        pane.send("c")
        wait_curated(pane, folder, [first, third], "c to mark the third curated")

        pane.send("r")
        pane.wait_text("give the new model a name", "r to open the retrain form", TORCH_TIMEOUT)
        pane.wait_text("2 curated micrographs of 4", "the form to say what is trained")
        pane.type(name)
        pane.wait_text(lambda t: "give the new model a name" not in t, "the name typed")
        # name -> positives, extra important, uncertain, diameter, public set, masking, iterations
        pane.send(*["Tab"] * 7)
        pane.wait_still("Tab to the iterations")
        pane.type("10")  # a tiny run: it is cancelled once started anyway
        pane.wait_text(lambda t: "(Warp's rule)" not in t, "10 iterations typed")
        pane.send("C-s")
        text = pane.wait_text(
            lambda t: f"run {name}" in t and PROGRESS.search(t),
            "ctrl+s to start the run and show its monitor",
            TORCH_TIMEOUT,
        )
        config = json.loads((home / "runs" / name / "config.json").read_text())
        assert config["micrographs"] == [first, third], config
        assert config["iterations"] == 10, config
        # at 100 columns the figures are whole: "0 / 10 iterations   - it/s   ETA -"
        (line,) = [line for line in text.splitlines() if PROGRESS.search(line)]
        assert "ETA" in line or "took" in line, text
        runs.cancel(runs.find_run(name), wait=15.0)
        pane.send("d")
        pane.wait(lambda s: s.root == third, "d to detach, back in the viewer")
        pane.send("q")
        assert pane.wait_dead("q to quit") == 0
    finally:
        pane.close()


def test_a_re_pick_keeps_a_curated_micrographs_picks_or_backs_them_up(folder: Folder, home):
    first = folder.roots[0]
    star = folder.star(first)
    pane = Pane(home)
    try:
        start(pane, folder)
        count = len(read_picks(star))
        pane.send("Tab")
        pane.wait(lambda s: s.picks == count, "Tab to a pick")
        pane.send("x")
        pane.wait(lambda s: s.picks == count - 1, "x to remove it")
        pane.send("c")
        pane.wait_text("curated ✓", "c to mark it curated")
        kept = star.read_bytes()
        assert len(read_picks(star)) == count - 1

        pick_current(pane, overwrite=False)
        text = pane.wait_text(
            lambda t: re.search(r"picked \d+ micrographs", t), "the pick to end", PICK_TIMEOUT
        )
        assert star.read_bytes() == kept, "the default pick replaced a curated micrograph's picks"
        assert "curated ✓" in text and curated(folder) == [first]
        pane.wait_text(lambda t: not re.search(r"picked \d+ micrographs", t), "the toast to go")

        pick_current(pane, overwrite=True)
        pane.wait_text(
            lambda t: re.search(r"picked 1 micrographs", t), "the forced pick", PICK_TIMEOUT
        )
        assert star.read_bytes() != kept
        pane.wait_text(lambda t: "curated ✓" not in t, "the mark to follow the content")
        backups = sorted((folder.path / "matching" / ".backup").glob(f"{first}_{MODEL}.*.star"))
        assert len(backups) == 1 and backups[0].read_bytes() == kept
        pane.send("q")
        assert pane.wait_dead("q to quit") == 0
    finally:
        pane.close()
    assert curated(folder) == []

    restore = [*command(), "restore", str(folder.path), star.name]
    result = subprocess.run(restore, env=os.environ.copy(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{first} marked curated again" in result.stdout, result.stdout
    assert star.read_bytes() == kept
    assert curated(folder) == [first]


def pick_current(pane: Pane, *, overwrite: bool) -> None:
    """``P``; "only the current micrograph"; the overwrite box ticked or not; ctrl+s."""
    pane.send("P")
    pane.wait_text("Pick micrographs", "P to open the pick form", TORCH_TIMEOUT)
    pane.wait_text("1 micrograph is marked curated", "the form to count the curated")
    pane.send("Tab", "Tab")  # diameter (focused first) -> threshold -> which micrographs
    pane.wait_still("Tab to the micrographs")
    pane.send("Enter")  # open the list: all, shown, without picks, current
    pane.wait_text("only the current micrograph", "the list of choices")
    pane.send("Down", "Down", "Down", "Enter")
    pane.wait_text(
        lambda t: "only the current micrograph" in t and "the micrographs shown in" not in t,
        "the current micrograph chosen",
    )
    if overwrite:
        pane.send("Tab", "Tab")  # device -> the overwrite box
        pane.wait_still("Tab to the overwrite box")
        pane.send("Space")
        time.sleep(0.3)  # the tick shows only in colour: what it did is checked on disk
    pane.send("C-s")
    pane.wait_text(lambda t: "Pick micrographs" not in t, "ctrl+s to start", KEY_TIMEOUT)
