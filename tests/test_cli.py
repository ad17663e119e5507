"""The command line: each subcommand through main(), and as the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from boxnet_tui.cli import main
from boxnet_tui.errors import UserError
from boxnet_tui.io.examples import read_examples
from boxnet_tui.io.star import Picks, read_picks
from boxnet_tui.paths import runs_dir
from boxnet_tui.training.run_config import RunConfig, validate_config
from tests.conftest import snapshot


def _write_mrc(path, shape=(64, 64), voxel_size=2.0):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ones(shape, np.float32))
        mrc.voxel_size = voxel_size


def test_help_lists_commands_and_the_app(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "synth" in out and "opens the curation app" in out


def test_app_on_a_folder_without_micrographs_says_so(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no micrographs" in capsys.readouterr().err


def test_info_lists_good_files_and_names_bad_ones(tmp_path, capsys):
    _write_mrc(tmp_path / "good.mrc")
    (tmp_path / "broken.mrc").write_bytes(b"\x00" * 10)
    before = snapshot(tmp_path)
    assert main(["info", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "good\t64x64\tfloat32\t2.000 Å/px" in out
    assert "1 micrographs readable, 1 not" in out
    assert err.count("\n") == 1 and "broken.mrc" in err
    assert snapshot(tmp_path) == before


def test_info_counts_the_picks_of_each_set(tmp_path, capsys):
    from boxnet_tui.io.star import write_picks

    for root in ("a", "b"):
        _write_mrc(tmp_path / f"{root}.mrc")
    write_picks(tmp_path / "matching" / "a_manual.star", Picks([1.0, 2, 3], [1.0, 2, 3]), "a.mrc")
    write_picks(tmp_path / "matching" / "b_manual.star", Picks([5.0], [5.0]), "b.mrc")
    write_picks(tmp_path / "matching" / "b_BoxNet.star", Picks([], []), "b.mrc")
    (tmp_path / "matching" / "a_BoxNet.star").write_text("not a star file\n")
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\tBoxNet (unreadable), manual (3)" in out and "\tBoxNet (0), manual (1)" in out
    assert "pick set manual: 4 picks on 2 micrographs" in out
    assert "pick set BoxNet: 0 picks on 2 micrographs" in out


def test_info_empty_folder_is_one_line_error(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    expected = f"boxnet-tui: {tmp_path}: no micrographs (*.mrc, *.tif, *.tiff) in this folder"
    assert err.strip() == expected


def test_out_of_range_diameter_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["synth", str(tmp_path / "d"), "--diameter", "5"])
    assert caught.value.code == 2
    assert "diameter must be 10–700 Å" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_synth_then_evaluate_truth_against_itself(tmp_path, capsys):
    folder = tmp_path / "demo"
    assert main(["synth", str(folder), "--count", "2", "--size", "512", "--seed", "3"]) == 0
    stars = sorted((folder / "matching").glob("*_truth.star"))
    assert len(stars) == 2 and len(sorted(folder.glob("*.mrc"))) == 2
    assert all(len(read_picks(star)) > 0 for star in stars)
    capsys.readouterr()
    matching = str(folder / "matching")
    assert main(["evaluate", matching, matching, "--radius", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["f1"] == pytest.approx(1.0)
    assert len(report["micrographs"]) == 2


def test_installed_console_script_runs():
    executable = shutil.which("boxnet-tui")
    if executable is None:
        pytest.skip("boxnet-tui is not installed on PATH")
    result = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("boxnet-tui ")


def test_styles_ship_inside_the_package():
    from importlib.resources import files

    assert "Screen" in files("boxnet_tui.styles").joinpath("app.tcss").read_text()


def test_export_writes_warp_examples_and_refuses_bad_star(tmp_path, capsys):
    from boxnet_tui.io.examples import read_examples
    from boxnet_tui.synth import make_dataset

    folder = tmp_path / "mics"
    make_dataset(folder, 2, size=256, pixel_size=4.0, diameter=120.0, seed=2)
    out = tmp_path / "examples.tif"
    star = folder / "matching" / "synth_000_truth.star"
    args = ["export", str(folder), "--positives", str(star), "--diameter", "120"]
    assert main([*args, "--out", str(out)]) == 0
    assert "wrote 2 micrographs" in capsys.readouterr().out
    assert len(read_examples(out)) == 2
    bad = folder / "matching" / "unrelated.star"
    bad.write_text("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n")
    before = snapshot(tmp_path)
    code = main(
        ["export", str(folder), "--positives", str(bad), "--diameter", "120", "--out", str(out)]
    )
    assert code == 2
    assert "does not start with the name of any micrograph" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_train_runs_and_tail_from_the_command_line(tmp_path, capsys, monkeypatch):
    import torch

    from boxnet_tui.model.network import Architecture, BoxNet
    from boxnet_tui.model.store import ModelInfo, find_model, save_model
    from boxnet_tui.synth import make_dataset

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    tiny = Architecture(widths=(4, 8, 8))
    save_model(BoxNet(tiny).eval(), ModelInfo("TinyBase", tiny, has_mask=True))
    folder = tmp_path / "mics"
    make_dataset(folder, 3, size=256, pixel_size=4.0, diameter=120.0, seed=4)
    star = folder / "matching" / "synth_000_truth.star"
    args = ["train", str(folder), "--name", "TinyNew", "--positives", str(star)]
    args += ["--diameter", "120", "--base", "TinyBase", "--iterations", "4", "--device", "cpu"]
    assert main(args) == 0
    assert "TinyNew: done" in capsys.readouterr().out
    info = find_model("TinyNew")
    assert info.parent == "TinyBase" and info.training["held_out"] == "synth_002"
    # the examples trained on (not the held-out synth_002) left beside the micrographs, as
    # Warp's retraining leaves them
    examples = read_examples(folder / "boxnet2training" / "TinyNew.tif")
    assert len(examples) == 2 and all((e.label == 1).any() for e in examples)
    assert main(["runs"]) == 0
    assert "TinyNew\tdone\t4/4" in capsys.readouterr().out
    assert main(["runs", "tail", "TinyNew", "--once"]) == 0
    out = capsys.readouterr().out
    assert "it 4\tloss new" in out and "held-out synth_002" in out
    assert "{" not in out  # the held-out check as a table, not a raw record
    assert main(args) == 2  # the name is taken now
    assert "exists already" in capsys.readouterr().err
    kept = folder / "boxnet2training" / "TinyKeep.tif"
    kept.write_bytes(b"the user's own file")
    assert main([*args[:2], "--name", "TinyKeep", *args[4:]]) == 0
    assert kept.read_bytes() == b"the user's own file"  # never replaced
    log = (runs_dir() / "TinyKeep" / "log.txt").read_text()
    assert "TinyKeep.tif exists (not replaced)" in log
    assert main(["runs", "cancel"]) == 2
    assert main(["train", str(folder)]) == 2
    assert "missing: --name --positives" in capsys.readouterr().err


def test_demo_makes_and_picks_its_folder_under_the_home_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the current folder
    assert main(["demo", "--no-app"]) == 0
    out = capsys.readouterr().out
    home = Path(os.environ["BOXNET_TUI_HOME"])
    assert f"demo folder: {home / 'demo'}" in out and "F1" in out
    stars = sorted((home / "demo" / "matching").glob("*_BoxNetMask.star"))
    assert len(stars) == 6 and not list(tmp_path.iterdir())
    stamps = [star.stat().st_mtime_ns for star in stars]
    assert main(["demo", "--no-app"]) == 0  # already there: not made or picked again
    assert [star.stat().st_mtime_ns for star in stars] == stamps


def test_names_that_leave_their_folder_are_refused_before_anything_is_written(tmp_path, capsys):
    from boxnet_tui.synth import make_dataset

    folder = tmp_path / "data" / "mics"
    make_dataset(folder, 1, size=256, pixel_size=4.0, diameter=120.0, seed=5)
    star = folder / "matching" / "synth_000_truth.star"
    before = snapshot(tmp_path), sorted(tmp_path.rglob("*"))
    evil, matching, auto = "q/../../../outside/pk", folder / "matching", ["--public-set", "auto"]
    commands = [
        ["pick", str(folder), "--suffix", evil, "--diameter", "120", "--device", "cpu"],
        ["open", str(folder), "--suffix", evil],
        ["evaluate", str(matching), str(matching), "--radius", "5", "--picks-suffix", evil],
        ["train", str(folder), "--name", "../../outside/Net", "--positives", str(star), *auto],
    ]
    for command in commands:
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("suffix 'q/" in err or "model name '../" in err), err
    assert (snapshot(tmp_path), sorted(tmp_path.rglob("*"))) == before  # no folder made either


# --------------------------------------------------------------------------- data safety


def _curated_folder(folder: Path) -> Path:
    """mic1..mic4 with manual picks; mic2 and mic4 marked curated."""
    from boxnet_tui.curation_state import StateStore
    from boxnet_tui.io.micrographs import write_micrograph
    from boxnet_tui.io.star import Picks, write_picks

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 5):
        write_micrograph(folder / f"mic{i}.mrc", rng.normal(size=(128, 128)), 8.0)
        picks = Picks([40.0, 80.0], [40.0, 80.0], [0.9, 0.2])
        write_picks(folder / "matching" / f"mic{i}_manual.star", picks, f"mic{i}.mrc")
    store = StateStore(folder)
    store.set_curated("mic2", True)
    store.set_curated("mic4", True)
    store.set_threshold("manual", 0.5)  # the set's: 0.2 hidden on every micrograph
    return folder


def test_train_takes_the_curated_micrographs_and_the_config_lists_them(
    tmp_path, monkeypatch, capsys
):
    """Issue 12.1, from the shell: 2 of 4 curated -> a run config listing those 2."""
    from boxnet_tui.training import runs

    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    args = ["train", str(folder), "--positives", positives, "--base", "BoxNet", "--detach"]
    assert main([*args, "--name", "CuratedNet"]) == 0
    out = capsys.readouterr().out
    assert "2 curated micrographs of 4" in out and "--all-micrographs" in out
    config = runs.find_run("CuratedNet").config()
    assert config.micrographs == ["mic2", "mic4"]
    assert config.thresholds == {"mic2": 0.5, "mic4": 0.5}
    assert "2 particles at or above the display threshold 0.50; 2 below it not trained" in out
    assert main([*args, "--name", "AllNet", "--all-micrographs"]) == 0
    assert "all 4 micrographs (2 of them curated)" in capsys.readouterr().out
    assert runs.find_run("AllNet").config().micrographs == ["mic1", "mic2", "mic3", "mic4"]


def test_train_seed_is_recorded_and_a_negative_one_refused(tmp_path, monkeypatch, capsys):
    from boxnet_tui.training import runs

    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    args = ["train", str(folder), "--positives", positives, "--base", "BoxNet", "--detach"]
    assert main([*args, "--name", "SeededNet", "--seed", "3"]) == 0
    assert runs.find_run("SeededNet").config().seed == 3
    assert main([*args, "--name", "DefaultNet"]) == 0
    assert runs.find_run("DefaultNet").config().seed == 0
    capsys.readouterr()
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--name", "BadSeed", "--seed", "-1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().endswith("argument --seed: must be at least 0, got -1")
    assert snapshot(tmp_path) == before
    config = RunConfig(name="X", folder=str(folder), positives=positives, seed=-2)
    with pytest.raises(UserError, match="seed must be a whole number of at least 0, got -2"):
        validate_config(config)


def test_export_takes_the_curated_micrographs_and_shown_picks(tmp_path, capsys):
    from boxnet_tui.io.examples import read_examples

    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    out = tmp_path / "out.tif"
    args = ["export", str(folder), "--positives", positives, "--diameter", "160", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "2 curated micrographs of 4" in text and "wrote 2 micrographs" in text
    assert "2 particles at or above the display threshold 0.50; 2 below it not exported" in text
    assert len(read_examples(out)) == 2
    assert main([*args, "--all-micrographs"]) == 0
    assert "wrote 4 micrographs" in capsys.readouterr().out
    assert main([*args, "--threshold", "0"]) == 0  # told: the stored one is not used
    assert "4 particles at or above the display threshold 0.00" in capsys.readouterr().out


def test_falsepositives_as_positives_is_one_line_error(tmp_path, capsys):
    from boxnet_tui.io.star import Picks, write_picks

    folder = _curated_folder(tmp_path / "mics")
    removed = folder / "matching" / "mic1_manual_falsepositives.star"
    write_picks(removed, Picks([1.0], [1.0]), "mic1.mrc")
    args = ["export", str(folder), "--positives", str(removed), "--diameter", "160"]
    assert main([*args, "--out", str(tmp_path / "x.tif")]) == 2
    err = capsys.readouterr().err
    assert "never positives" in err and err.count("\n") == 1


def test_export_out_to_a_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    from boxnet_tui.synth import make_dataset

    folder = tmp_path / "mics"
    make_dataset(folder, 1, size=128, pixel_size=4.0, diameter=120.0, seed=3)
    out = tmp_path / "examples"
    out.mkdir()
    before = snapshot(tmp_path)
    star = folder / "matching" / "synth_000_truth.star"
    args = ["export", str(folder), "--positives", str(star), "--diameter", "120"]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out}: is a folder" in err and err.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_a_closed_pipe_ends_the_output_quietly(tmp_path):
    # `boxnet-tui info FOLDER | head`: the reader leaves before the output is written
    import subprocess
    import sys

    from boxnet_tui.synth import make_dataset

    make_dataset(tmp_path / "mics", 3, size=128, pixel_size=4.0, diameter=60.0, seed=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "boxnet_tui", "info", str(tmp_path / "mics")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before anything is written
    error = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in error and "BrokenPipe" not in error, error


# --------------------------------------------------------------------------- issue 11.13: runs


def test_a_bad_positives_star_creates_no_run_and_keeps_the_name_free(tmp_path, capsys):
    from boxnet_tui.paths import runs_dir
    from boxnet_tui.training import runs

    folder = _curated_folder(tmp_path / "mics")
    bad = folder / "matching" / "mic2_bad.star"
    bad.write_bytes(b"garbage\x00\x01")  # matched to mic2, curated: not a STAR file
    args = ["train", str(folder), "--name", "BadPos", "--base", "BoxNet", "--detach"]
    assert main([*args, "--positives", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mic2_bad.star" in err and "binary" in err, err
    assert not runs_dir().exists() or not list(runs_dir().iterdir())
    assert runs.list_runs() == []


def test_public_set_auto_is_not_made_for_a_name_already_taken(tmp_path, capsys, monkeypatch):
    from boxnet_tui.training import public_set, runs

    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    made = []
    monkeypatch.setattr(public_set, "ensure_public_set", lambda: made.append(1) or tmp_path)
    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    args = ["train", str(folder), "--positives", positives, "--base", "BoxNet", "--detach"]
    assert main([*args, "--name", "Taken"]) == 0
    capsys.readouterr()
    assert main([*args, "--name", "Taken", "--public-set", "auto"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert made == []  # checked before the (slow) public set is made


def test_runs_delete_frees_the_name_and_refuses_a_live_run(tmp_path, capsys, monkeypatch):
    from boxnet_tui.training import runs

    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    args = ["train", str(folder), "--positives", positives, "--base", "BoxNet", "--detach"]
    assert main([*args, "--name", "Gone"]) == 0
    capsys.readouterr()
    run = runs.find_run("Gone")
    fd = run.lock()  # as a live job holds it
    try:
        assert main(["runs", "delete", "Gone"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cancel it first" in err
    finally:
        os.close(fd)
    assert main(["runs", "delete", "Gone"]) == 0
    assert capsys.readouterr().out == "Gone: deleted\n"
    assert main(["runs", "delete", "Gone"]) == 2  # no such run now
    assert main([*args, "--name", "Gone"]) == 0  # the name is free again


def test_runs_cancel_of_a_stale_status_naming_a_live_pid_signals_nothing(tmp_path, capsys):
    """Issue 11.5: status.json naming a live process that is not the run's job."""
    import sys

    from boxnet_tui.process import process_start
    from boxnet_tui.training import runs

    folder = _curated_folder(tmp_path / "mics")
    positives = str(folder / "matching" / "mic1_manual.star")
    config = runs.RunConfig("Stale", str(folder), positives, base="BoxNet")
    run = runs.create_run(config)
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        start = process_start(bystander.pid)
        run.update_status(state="running", pid=bystander.pid, pid_start=start)
        assert main(["runs", "cancel", "Stale"]) == 0
        assert capsys.readouterr().out == "Stale: not running (no job holds it); marked cancelled\n"
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
