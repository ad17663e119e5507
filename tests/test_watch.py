"""``pick --watch``: micrographs picked as they appear, whole files only, across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.cli import main
from boxnet_tui.io import layout
from boxnet_tui.io.star import read_picks
from boxnet_tui.pick_log import read_logs
from boxnet_tui.shards import Shard, shard_of
from boxnet_tui.watch import incomplete, watch_folder

SETTINGS = PickSettings(diameter=150.0)
REPO = Path(__file__).resolve().parents[1]


def _mrc_bytes(seed: int, shape=(512, 512)) -> bytes:
    """The bytes of a whole MRC micrograph (2 Å/px), to write in one go or in parts."""
    path = Path(os.environ["BOXNET_TUI_HOME"]) / f"scratch_{seed}.mrc"
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.random.default_rng(seed).normal(size=shape).astype(np.float32))
        mrc.voxel_size = 2.0
    return path.read_bytes()


def _stars(folder: Path, suffix: str = "TinyMask") -> set[str]:
    return {p.name[: -len(f"_{suffix}.star")] for p in (folder / "matching").glob("*.star")}


def _wait(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_incomplete_tells_a_truncated_mrc_or_tiff_from_a_whole_one(tmp_path):
    whole = _mrc_bytes(1)
    mrc = tmp_path / "a.mrc"
    for cut in (0, 100, 1024, len(whole) // 2, len(whole) - 1):
        mrc.write_bytes(whole[:cut])
        assert incomplete(mrc) is not None, cut
    mrc.write_bytes(whole)
    assert incomplete(mrc) is None
    tif = tmp_path / "b.tif"
    tifffile.imwrite(tif, np.zeros((256, 256), np.float32), resolution=(5e7, 5e7))
    data = tif.read_bytes()
    assert incomplete(tif) is None
    for cut in (4, 64, len(data) // 2, len(data) - 1):
        tif.write_bytes(data[:cut])
        assert incomplete(tif) is not None, cut


def test_watch_picks_a_file_that_appears_and_a_truncated_one_only_once_whole(tmp_path, tiny_model):
    folder = tmp_path / "mics"
    folder.mkdir()
    (folder / "first.mrc").write_bytes(_mrc_bytes(0))
    settle = 0.3
    stop = threading.Event()
    notices: list[str] = []
    result = {}

    def watch() -> None:
        result["summary"] = watch_folder(
            folder,
            tiny_model,
            SETTINGS,
            device="cpu",
            poll=0.05,
            settle=settle,
            give_up=60.0,
            should_stop=stop.is_set,
            notice=notices.append,
        )

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        _wait(lambda: "first" in _stars(folder))
        written = time.time()
        (folder / "late.mrc").write_bytes(_mrc_bytes(1))  # appears during the run
        whole = _mrc_bytes(2)
        partial = folder / "partial.mrc"
        partial.write_bytes(whole[: len(whole) // 2])  # a copy half done
        _wait(lambda: "late" in _stars(folder))
        star = layout.pick_path(folder, "late", tiny_model)
        assert star.stat().st_mtime >= written + settle - 0.05  # not before it settled
        _wait(lambda: any("waiting for partial.mrc" in line for line in notices))
        time.sleep(4 * settle)  # settled long since, and still short of its header's size
        assert "partial" not in _stars(folder)
        with open(partial, "ab") as handle:  # the copy ends
            handle.write(whole[len(whole) // 2 :])
        _wait(lambda: "partial" in _stars(folder))
    finally:
        stop.set()
        thread.join(20)
    summary = result["summary"]
    assert summary.picked == 3 and not summary.errors and summary.stopped
    assert "truncated MRC" in next(line for line in notices if "partial.mrc" in line)
    # picked from the whole file: the same picks as a pick of it now
    expected = tmp_path / "again"
    expected.mkdir()
    (expected / "partial.mrc").write_bytes(whole)
    pick_folder(expected, tiny_model, SETTINGS, device="cpu")
    got = read_picks(layout.pick_path(folder, "partial", tiny_model))
    want = read_picks(layout.pick_path(expected, "partial", tiny_model))
    assert np.allclose(got.xy, want.xy)


def test_watch_goes_on_across_restarts_and_retries_a_failure_once_changed(tmp_path, tiny_model):
    folder = tmp_path / "mics"
    folder.mkdir()
    for seed, name in enumerate(["a", "b", "c"]):
        (folder / f"{name}.mrc").write_bytes(_mrc_bytes(seed))
    (folder / "bad.mrc").write_bytes(b"\x01" * 2000)
    seen = []
    first = pick_folder(
        folder,
        tiny_model,
        SETTINGS,
        device="cpu",
        progress=seen.append,
        should_stop=lambda: len(seen) >= 3,  # a, b, bad (natural order: a, b, bad, c)
        log=True,
    )
    assert first.stopped and first.picked == 2 and len(first.errors) == 1
    quick = {"device": "cpu", "poll": 0.05, "settle": 0.0, "idle_exit": 0.5}
    again = watch_folder(folder, tiny_model, SETTINGS, **quick)
    assert again.picked == 1 and again.already_picked == 2
    assert not again.errors  # bad.mrc failed as it is: not tried again
    (folder / "bad.mrc").write_bytes(_mrc_bytes(9))  # replaced: tried again
    fixed = watch_folder(folder, tiny_model, SETTINGS, **quick)
    assert fixed.picked == 1 and fixed.already_picked == 3
    assert _stars(folder) == {"a", "b", "c", "bad"}
    modes = [r.get("mode") for r in read_logs(folder, tiny_model) if r["event"] == "start"]
    assert modes == ["pick", "watch", "watch"]


def test_watch_takes_its_shard_only(tmp_path, tiny_model):
    folder = tmp_path / "mics"
    folder.mkdir()
    names = [f"w{i}" for i in range(6)]
    for seed, name in enumerate(names):
        (folder / f"{name}.mrc").write_bytes(_mrc_bytes(seed))
    quick = {"device": "cpu", "poll": 0.05, "settle": 0.0, "idle_exit": 0.3}
    summary = watch_folder(folder, tiny_model, SETTINGS, shard=Shard(1, 2), **quick)
    mine = {name for name in names if shard_of(name, 2) == 1}
    assert _stars(folder) == mine and summary.picked == len(mine)


def test_watch_cli_ends_when_idle_and_refuses_watch_options_alone(tmp_path, tiny_model, capsys):
    folder = tmp_path / "mics"
    folder.mkdir()
    (folder / "a.mrc").write_bytes(_mrc_bytes(0))
    base = ["pick", str(folder), "--model", tiny_model, "--diameter", "150", "--device", "cpu"]
    assert main([*base, "--settle", "1"]) == 2
    assert "--settle goes with --watch" in capsys.readouterr().err
    watch = ["--watch", "--settle", "0", "--poll", "0.05", "--idle-exit", "0.3"]
    assert main([*base, *watch]) == 0
    out = capsys.readouterr().out
    assert "watching" in out and "picked a.mrc" in out and "watch ended: picked 1" in out


def test_ctrl_c_ends_a_watch_cleanly(tmp_path, tiny_model):
    folder = tmp_path / "mics"
    folder.mkdir()
    (folder / "a.mrc").write_bytes(_mrc_bytes(0))
    args = [sys.executable, "-m", "boxnet_tui", "pick", str(folder), "--model", tiny_model]
    args += ["--diameter", "150", "--device", "cpu", "--watch", "--settle", "0", "--poll", "0.1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait(lambda: "a" in _stars(folder) or process.poll() is not None, timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "watch ended: picked 1" in out and "Traceback" not in err
    ends = [r for r in read_logs(folder, tiny_model) if r["event"] == "end"]
    assert [r["reason"] for r in ends] == ["stopped"]
