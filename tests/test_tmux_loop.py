"""The retraining loop in a real terminal (tmux), driven by keys as a user would.

1. A run started detached from the CLI (``boxnet-tui train ... --detach``) and attached with
   ``boxnet-tui runs attach NAME`` shows the loss panel with both curves ("new examples" and
   "old examples": the run is diluted with a small public set exported from the folder itself)
   and its progress growing; ``c`` and ``y`` cancel it. The app's ``r`` form shows every field.
2. A whole session: the demo, two micrographs curated, a retrain from the form, detach, quit,
   reopen, the run list, the run watched until it is done, "use this model", a re-pick with it,
   and compare.

Every step waits for the screen to show its result (polling ``capture-pane``) and checks the
files on disk. The form is filled by keys alone: Tab between fields, space for a checkbox.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from boxnet_tui.curation_state import state_path
from boxnet_tui.io import layout
from boxnet_tui.io.star import read_picks
from boxnet_tui.training import runs
from tests.tmux_session import (
    KEY_TIMEOUT,
    START_TIMEOUT,
    TMUX,
    Pane,
    command,
    find_cell,
    parse_status,
)

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

DIAMETER = "180"  # Å, the demo's particles
SUFFIX = "BoxNetMask"  # the demo's picks, by the generic model
DEMO_TIMEOUT = 180.0  # s: 3 synthetic micrographs made and picked, then the app
TORCH_TIMEOUT = 60.0  # s: a screen that imports torch on first use
STEP_TIMEOUT = 240.0  # s: 10 logged iterations of a CPU run on a busy 2-core machine
TRAIN_TIMEOUT = 300.0  # s: the whole tiny run (30 iterations, held-out check, calibration)
PICK_TIMEOUT = 180.0  # s: 3 micrographs picked with the new model
FORM_TITLES = (
    "Base model",
    "New model name",
    "Positive examples",
    "Extra important locations",
    "Uncertain locations",
    "Particle diameter",
    "Public example set",
    "Start",  # the button
    "Train masking",
    "Iterations",
    "Device",
)
PROGRESS = re.compile(r"(\d+) / (\d+) iterations")
WARP_RULE = re.compile(r"(\d+) \(Warp's rule\)")


def boxnet(*args: object, timeout: float = 180.0) -> str:
    """Run the installed command to its end; its standard output."""
    result = subprocess.run(
        [*command(), *map(str, args)],
        env=os.environ.copy(),  # BOXNET_TUI_HOME: the test's
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"boxnet-tui {args}: {result.stdout}{result.stderr}"
    return result.stdout


def run_state(home: Path, name: str) -> dict:
    return json.loads((home / "runs" / name / "status.json").read_text())


def progress(text: str) -> tuple[int, int] | None:
    match = PROGRESS.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def title_line(text: str, name: str) -> str:
    """The monitor's first line: ``NAME  from BASE   STATE``."""
    for line in text.splitlines():
        if line.strip().startswith(f"{name}  from "):
            return line
    return ""


def form_text(pane: Pane) -> str:
    """Everything the retrain form shows, scrolled through with PageDown to its buttons."""
    seen = [pane.text()]
    for _ in range(8):
        if re.search(r"Start\s+Cancel", seen[-1]):
            break
        pane.send("PageDown")
        deadline = time.monotonic() + KEY_TIMEOUT
        while pane.text() == seen[-1] and time.monotonic() < deadline:
            time.sleep(0.05)
        text = pane.wait_still("PageDown to scroll the form")  # to the end of its animation
        if text == seen[-1]:
            break  # the end of the form
        seen.append(text)
    return "\n".join(seen)


def check_form_fields(pane: Pane, folder: Path) -> None:
    """``boxnet-tui FOLDER``, ``r``: every field's title on screen (scrolled), then quit."""
    pane.start([str(folder), "--diameter", DIAMETER])
    pane.wait(lambda s: s.total == 3, "the app on the demo folder", START_TIMEOUT)
    pane.send("r")
    pane.wait_text("Retrain a BoxNet", "r to open the retrain form", TORCH_TIMEOUT)
    pane.wait_text("New model name", "the form's fields")
    shown = form_text(pane)
    missing = [title for title in FORM_TITLES if title not in shown]
    assert not missing, f"the retrain form does not show {missing}; screens:\n{shown}"
    assert re.search(r"Start\s+Cancel", shown), f"no Start button on the form:\n{shown}"
    pane.send("Escape")  # then wait: ESC and a key sent at once read as alt+key
    pane.wait_text(
        lambda t: parse_status(t) is not None and "Iterations" not in t,
        "escape to close the form",
    )
    pane.send("q")
    assert pane.wait_dead("q to quit the app") == 0


def test_detached_cli_run_attached_in_tmux(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "demo"
    boxnet("demo", folder, "--count", "3", "--size", "1024", "--no-app")
    positives = sorted(layout.matching_dir(folder).glob(f"*_{SUFFIX}.star"))[0]
    # a public set of the folder's own (true) examples: the run has "old examples" at once,
    # without the minutes that --public-set auto takes to make the package's set
    public = tmp_path / "public"
    public.mkdir()
    truth = sorted(layout.matching_dir(folder).glob("*_truth.star"))[0]
    boxnet("export", folder, "--positives", truth, "--diameter", DIAMETER,
           "--out", public / "examples.tif")  # fmt: skip
    name = "DetachedRun"
    out = boxnet("train", folder, "--name", name, "--positives", positives,
                 "--diameter", DIAMETER, "--iterations", "400", "--public-set", public,
                 "--device", "cpu", "--detach")  # fmt: skip
    assert f"{name}: training in the background" in out, out
    assert run_state(home, name)["state"] in ("queued", "running")

    pane = Pane(home)
    try:
        # the form, while the run warms up
        check_form_fields(pane, folder)

        # attach: the monitor, its progress growing and both curves
        pane.start(["runs", "attach", name])
        text = pane.wait_text(lambda t: progress(t) is not None, "the monitor", START_TIMEOUT)
        first, total = progress(text)  # type: ignore[misc]
        assert total == 400
        assert f"run {name}" in text, text
        text = pane.wait_text(
            lambda t: "new examples" in t and "old examples" in t,
            "the loss panel's two curves",
            STEP_TIMEOUT,
        )
        text = pane.wait_text(
            lambda t: (progress(t) or (0, 0))[0] > first,
            f"the progress to grow from {first}/400",
            STEP_TIMEOUT,
        )
        now, _ = progress(text)  # type: ignore[misc]
        assert f"{now} / 400 iterations" in text and "it/s" in text and "ETA" in text, text
        assert run_state(home, name)["iteration"] >= now
        assert "running" in title_line(text, name), text

        # c, then y: cancelled, on disk and on screen
        pane.send("c")
        pane.wait_text("Keep going (n)", "c to ask before cancelling")
        assert f"Cancel run {name}?" in pane.text()
        pane.send("y")
        deadline = time.monotonic() + 30.0
        while run_state(home, name)["state"] != "cancelled":
            if time.monotonic() > deadline:
                pytest.fail(f"not cancelled: {run_state(home, name)}; pane:\n{pane.text()}")
            time.sleep(0.2)
        text = pane.wait_text(
            lambda t: "cancelled" in title_line(t, name), "the monitor to say cancelled"
        )
        pane.wait_text(
            lambda t: "cancel run" not in t.splitlines()[-1], "the footer to drop cancel"
        )
        pane.send("Escape")
        assert pane.wait_dead("escape to leave the monitor") == 0
        assert f"{name}: cancelled" in pane.text(history=True)  # printed as it ends
    finally:
        pane.close()
    assert not runs.find_run(name).status().active


@pytest.mark.slow
def test_whole_session_in_tmux(tmp_path: Path, home: Path) -> None:
    folder = tmp_path / "demo"
    name = "DemoRetrained"
    pane = Pane(home, columns=200)  # the header holds the folder, the model and "compare"
    try:
        # the demo: made, picked with the generic model, opened
        pane.start(["demo", str(folder), "--count", "3", "--size", "1024"])
        start = pane.wait(lambda s: s.total == 3, "the demo app", DEMO_TIMEOUT)
        roots = sorted(path.stem for path in folder.glob("*.mrc"))
        assert start.root == roots[0] and len(roots) == 3
        curate_two(pane, folder, roots)
        # n, c: the third taken as picked, so that one of three is held out for a check
        pane.send("n")
        pane.wait(lambda s: s.root == roots[2], "n to the third")
        pane.send("c")
        pane.wait_text("curated ✓", "c to mark the third curated")
        assert sorted(json.loads(state_path(folder).read_text())["curated"]) == roots

        # r: a name; Tab to the public set, space turns it on and off; Tab to 30 iterations
        pane.send("r")
        pane.wait_text("Retrain a BoxNet", "r to open the retrain form", TORCH_TIMEOUT)
        pane.wait_text("give the new model a name", "the form to check itself")
        pane.type(name)
        text = pane.wait_text(
            lambda t: name in t and "give the new model a name" not in t and WARP_RULE.search(t),
            "the name typed",
        )
        rule = int(WARP_RULE.search(text).group(1))  # type: ignore[union-attr]
        pane.send(*["Tab"] * 5)  # positives, extra important, uncertain, diameter, public set
        pane.wait_still("Tab through the form")
        pane.send("Space")
        pane.wait_text(f"{rule * 2} (Warp's rule)", "space to turn the public set on (twice)")
        pane.send("Space")
        pane.wait_text(f"{rule} (Warp's rule)", "space to turn it off again")
        pane.send("Tab", "Tab")  # train masking, iterations
        pane.wait_still("Tab to the iterations")
        pane.type("30")
        pane.wait_text(lambda t: "(Warp's rule)" not in t, "30 iterations typed")
        pane.send("C-s")
        text = pane.wait_text(
            lambda t: title_line(t, name) != "", "ctrl+s to start and show the monitor", 60.0
        )
        config = json.loads((home / "runs" / name / "config.json").read_text())
        assert config["iterations"] == 30 and config["public_set"] is None, config
        assert Path(config["positives"]).name.endswith(f"_{SUFFIX}.star"), config

        # d: detached, back in the viewer; q: the app ends, the run goes on
        pane.send("d")
        pane.wait_text(
            lambda t: parse_status(t) is not None and not title_line(t, name), "d to detach"
        )
        pane.send("q")
        assert pane.wait_dead("q to quit") == 0
        assert runs.find_run(name).status().effective_state in ("queued", "running", "done")

        # reopen; t, the run; watched until it is done, with the held-out check
        pane.start([str(folder)])
        pane.wait(lambda s: s.total == 3, "the app again", START_TIMEOUT)
        pane.send("t")
        pane.wait_text(lambda t: "Training runs" in t and name in t, "t to list the runs", 60.0)
        pane.send("Enter")
        pane.wait_text(lambda t: title_line(t, name) != "", "enter to open the run's monitor")
        text = pane.wait_text(
            lambda t: "done" in title_line(t, name) and "base model" in t,
            "the run to finish, with its held-out figures",
            TRAIN_TIMEOUT,
        )
        assert "held-out" in text and "new model" in text and "took" in text, text
        assert progress(text) == (30, 30), text
        assert run_state(home, name)["state"] == "done"
        assert (home / "models" / name / "model.json").is_file()

        # u: use this model, then P: picked with it (preselected)
        pane.send("u")
        pane.wait_text(
            lambda t: f"model {name}" in t and not title_line(t, name), "u to use the model"
        )
        pane.send("P")
        text = pane.wait_text("Pick micrographs", "P to open the pick screen", TORCH_TIMEOUT)
        _, model_row = find_cell(text, "Model")
        assert name in "".join(text.splitlines()[model_row : model_row + 4]), text
        pane.send("C-s")
        new_stars = [layout.pick_path(folder, root, name) for root in roots]
        deadline = time.monotonic() + PICK_TIMEOUT
        while not all(path.exists() for path in new_stars):
            if time.monotonic() > deadline:
                pytest.fail(f"no picks by {name} after {PICK_TIMEOUT:g} s:\n{pane.text()}")
            time.sleep(0.2)
        pane.wait_text(f"picks {name}", "the viewer to show the new picks")
        for path in new_stars:
            read_picks(path)

        # v: compare with the generic picks
        pane.send("v")
        title = f"Compare {name} with which pick set?"
        text = pane.wait_text(title, "v to ask which set to compare with")
        choose_option(pane, text, SUFFIX, title)
        pane.wait_text(f"compare {SUFFIX}", "the header to say compare")
        pane.send("q")
        assert pane.wait_dead("q to quit") == 0
    finally:
        pane.close()


def curate_two(pane: Pane, folder: Path, roots: list[str]) -> None:
    """Tab, x, a, c on the first micrograph; n; Tab, x, c on the second; checked on disk."""
    first, second = roots[0], roots[1]
    star = {root: layout.pick_path(folder, root, SUFFIX) for root in roots}
    fps = {root: layout.false_positives_path(folder, root, SUFFIX) for root in roots}
    count = {root: len(read_picks(star[root])) for root in roots}
    assert count[first] >= 1 and count[second] >= 1, count

    def curated() -> list[str]:
        return json.loads(state_path(folder).read_text())["curated"]

    def curate(root: str, shown, add_back: bool) -> None:
        """Tab to a pick, x it (recorded), maybe a it back, c: the files checked after each."""
        pane.send("Tab")
        pane.wait(lambda s: (s.x, s.y) != (shown.x, shown.y), "Tab to a pick")
        pane.send("x")
        pane.wait(lambda s: s.picks == count[root] - 1, "x to remove it")
        assert len(read_picks(star[root])) == count[root] - 1
        assert len(read_picks(fps[root])) == 1
        if add_back:
            pane.send("a")
            pane.wait(lambda s: s.picks == count[root], "a to add one")
            assert len(read_picks(star[root])) == count[root]
        pane.send("c")
        pane.wait_text("curated ✓", "c to mark it curated")

    start = pane.wait(lambda s: s.picks == count[first], f"{first} with {count[first]} picks")
    curate(first, start, add_back=True)
    assert curated() == [first]

    pane.send("n")
    shown = pane.wait(lambda s: s.root == second and s.picks == count[second], "n to the next")
    curate(second, shown, add_back=False)
    assert sorted(curated()) == [first, second]


def choose_option(pane: Pane, text: str, wanted: str, title: str) -> None:
    """Highlight ``wanted`` in the option list under ``title`` with the arrow keys, then Enter."""
    lines = text.splitlines()
    _, top = find_cell(text, title)
    options = [line for line in lines[top + 1 :] if re.search(r"\w", line)]
    names = [re.sub(r"[^\w ]", " ", line).split() for line in options]
    index = next(i for i, words in enumerate(names) if words and words[0] == wanted)
    for _ in range(index):  # the first is highlighted as the list opens
        pane.send("Down")
        time.sleep(0.2)
    pane.send("Enter")
