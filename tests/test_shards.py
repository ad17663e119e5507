"""Facility-scale picking: shards, skipping what is picked, resuming a killed run, status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.cli import build_parser, main
from boxnet_tui.curation_state import StateStore
from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.io.star import count_picks, read_picks, read_star_document
from boxnet_tui.pick_log import RECORD_PREFIX, read_logs, read_record
from boxnet_tui.pick_status import format_status, pick_status
from boxnet_tui.picking import PICK_RULE
from boxnet_tui.shards import Shard, parse_shard, shard_of

SETTINGS = PickSettings(diameter=150.0)
REPO = Path(__file__).resolve().parents[1]


def _write_mrc(path: Path, seed: int = 0, shape=(512, 512)) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.random.default_rng(seed).normal(size=shape).astype(np.float32))
        mrc.voxel_size = 2.0


def _folder(path: Path, names) -> Path:
    path.mkdir(exist_ok=True)
    for seed, name in enumerate(names):
        _write_mrc(path / f"{name}.mrc", seed)
    return path


def _stars(folder: Path, suffix: str = "TinyMask") -> dict[str, int]:
    """root -> mtime_ns of each pick file of ``suffix``."""
    return {
        p.name[: -len(f"_{suffix}.star")]: p.stat().st_mtime_ns
        for p in (folder / "matching").glob(f"*_{suffix}.star")
    }


# ----------------------------------------------------------------------------- the partition


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 64])
def test_shards_partition_a_folder_exactly_and_stay_put_as_files_are_added(count):
    names = [Path(f"FoilHole_{i}_Data_{i * 7 % 13}.mrc") for i in range(500)]
    shards = [Shard(k, count) for k in range(count)]
    parts = [shard.select(names) for shard in shards]
    assert sorted(p for part in parts for p in part) == sorted(names)  # none missed, none twice
    assert sum(len(part) for part in parts) == len(names)
    if count <= 16:  # even to within chance: each shard near its share
        assert min(len(part) for part in parts) >= 0.6 * len(names) / count
    more = names + [Path(f"late_{i}.tif") for i in range(200)]
    again = [shard.select(more) for shard in shards]
    for before, after in zip(parts, again, strict=True):
        assert after[: len(before)] == before  # no micrograph moves to another shard
    assert sorted(p for part in again for p in part) == sorted(more)
    assert all(shard_of(p.stem, count) == k for k, part in enumerate(again) for p in part)


def test_files_sharing_a_pick_file_share_a_shard():
    """``mic.mrc`` and ``mic.tif`` both write ``mic_<suffix>.star``: never two processes."""
    pair = [Path("a/mic.mrc"), Path("b/mic.tif")]
    taken = [Shard(k, 16).select(pair) for k in range(16)]
    assert taken.count(pair) == 1 and taken.count([]) == 15


@pytest.mark.parametrize("text", ["3", "a/4", "4/4", "1/0", "-1/4", "1/2/3", ""])
def test_bad_shards_are_one_line(text):
    with pytest.raises(UserError) as caught:
        parse_shard(text)
    assert "\n" not in str(caught.value) and "K/N" in str(caught.value)


def test_pick_cli_refuses_a_bad_shard_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["pick", str(tmp_path), "--shard", "16/16"])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "shards count from 0" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- picking shards


def test_shard_runs_pick_each_micrograph_once_and_new_files_on_the_next_run(tmp_path, tiny_model):
    folder = _folder(tmp_path / "mics", [f"mic{i}" for i in range(7)])
    count = 3
    picked = [
        pick_folder(folder, tiny_model, SETTINGS, device="cpu", shard=Shard(k, count)).picked
        for k in range(count)
    ]
    assert sum(picked) == 7 and set(_stars(folder)) == {f"mic{i}" for i in range(7)}
    first = _stars(folder)
    for i in range(7, 11):  # new micrographs arrive between runs
        _write_mrc(folder / f"mic{i}.mrc", i)
    summaries = [
        pick_folder(
            folder, tiny_model, SETTINGS, device="cpu", shard=Shard(k, count), skip_picked=True
        )
        for k in range(count)
    ]
    assert sum(s.picked for s in summaries) == 4
    assert sum(s.already_picked for s in summaries) == 7
    assert sum(s.micrographs for s in summaries) == 11
    after = _stars(folder)
    assert set(after) == {f"mic{i}" for i in range(11)}
    assert {root: after[root] for root in first} == first  # the picked ones were not rewritten


def test_a_stopped_run_resumed_picks_only_the_rest(tmp_path, tiny_model):
    folder = _folder(tmp_path / "mics", [f"m{i}" for i in range(6)])
    seen = []
    summary = pick_folder(
        folder,
        tiny_model,
        SETTINGS,
        device="cpu",
        progress=seen.append,
        should_stop=lambda: len(seen) >= 2,
        skip_picked=True,
        log=True,
    )
    assert summary.stopped and summary.picked == 2
    first = _stars(folder)
    again = pick_folder(folder, tiny_model, SETTINGS, device="cpu", skip_picked=True, log=True)
    assert not again.stopped and again.picked == 4 and again.already_picked == 2
    assert {root: _stars(folder)[root] for root in first} == first
    ends = [r for r in read_logs(folder, tiny_model) if r["event"] == "end"]
    assert [r["reason"] for r in ends] == ["stopped", "done"]


def test_a_killed_process_rerun_picks_only_the_rest(tmp_path, tiny_model):
    """kill -9 in the middle of a shard: every pick file is whole, and the re-run does the rest."""
    total = 40
    folder = _folder(tmp_path / "mics", [f"k{i:02d}" for i in range(total)])
    args = [sys.executable, "-m", "boxnet_tui", "pick", str(folder), "--model", tiny_model]
    args += ["--diameter", "150", "--device", "cpu", "--batch-size", "1", "--shard", "0/1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _stars(folder) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    done = _stars(folder)
    assert 0 < len(done) < total, "the kill did not land in the middle of the run"
    for root in done:  # atomic writes: each pick file is whole and carries its record
        star = layout.pick_path(folder, root, tiny_model)
        read_picks(star)
        assert star.read_text().startswith(RECORD_PREFIX)
    summary = pick_folder(folder, tiny_model, SETTINGS, device="cpu", skip_picked=True)
    assert summary.picked == total - len(done) and summary.already_picked == len(done)
    assert {root: _stars(folder)[root] for root in done} == done


def test_other_settings_or_repick_pick_again_and_curated_stay(tmp_path, tiny_model):
    folder = _folder(tmp_path / "mics", ["a", "b", "c"])
    pick_folder(folder, tiny_model, SETTINGS, device="cpu")
    StateStore(folder).set_curated("b", True)
    curated = layout.pick_path(folder, "b", tiny_model).read_bytes()
    same = pick_folder(folder, tiny_model, SETTINGS, device="cpu", skip_picked=True)
    assert same.picked == 0 and same.already_picked == 2 and same.skipped_curated == ["b"]
    other = PickSettings(diameter=150.0, threshold=0.3)
    changed = pick_folder(folder, tiny_model, other, device="cpu", skip_picked=True)
    assert changed.picked == 2 and changed.already_picked == 0
    forced = pick_folder(folder, tiny_model, other, device="cpu", skip_picked=False)
    assert forced.picked == 2  # --repick: the same settings again
    assert layout.pick_path(folder, "b", tiny_model).read_bytes() == curated


def test_a_file_picked_by_another_rule_is_picked_again(tmp_path, tiny_model):
    # a pick file written before the peaks rule carries the blobs recipe's fingerprint
    from dataclasses import replace

    from boxnet_tui.pick_log import PickRecipe

    folder = _folder(tmp_path / "mics", ["a", "b"])
    pick_folder(folder, tiny_model, SETTINGS, device="cpu")
    star = layout.pick_path(folder, "a", tiny_model)
    lines = star.read_text().splitlines()
    fields = dict(item.split("=", 1) for item in lines[0].split()[4:])
    assert fields["rule"] == PICK_RULE
    recipe = PickRecipe(
        fields["model"],
        fields["weights"],
        float(fields["diameter"]),
        float(fields["threshold"]),
        None,
        float(fields["min_mask_distance"]),
        fields["invert"] == "1",
    )
    assert recipe.line() == lines[0]  # the record is the recipe
    older = replace(recipe, rule="blobs")
    star.write_text("\n".join([older.line(), *lines[1:]]) + "\n")
    again = pick_folder(folder, tiny_model, SETTINGS, device="cpu", skip_picked=True)
    assert again.picked == 1 and again.already_picked == 1
    assert read_record(star) == recipe.fingerprint
    assert PickRecipe.from_json({**recipe.__dict__, "rule": "x"}).rule == "x"
    old_log = {k: v for k, v in recipe.__dict__.items() if k != "rule"}
    assert PickRecipe.from_json(old_log).rule == "blobs"  # a log from before the rule


def test_the_record_is_one_comment_line_that_every_reader_passes(tmp_path, tiny_model):
    import starfile

    folder = _folder(tmp_path / "mics", ["a"])
    pick_folder(folder, tiny_model, PickSettings(diameter=150.0, threshold=0.0), device="cpu")
    star = layout.pick_path(folder, "a", tiny_model)
    first = star.read_text().splitlines()[0]
    assert first.startswith(RECORD_PREFIX) and "model=TinyMask" in first
    assert "diameter=150" in first and read_record(star) == first.split()[3]
    picks = read_picks(star)
    assert len(picks) > 0 and count_picks(star) == len(picks)
    assert len(starfile.read(star)) == len(picks)
    assert read_star_document(star).refusal is None


# ----------------------------------------------------------------------------- status


def test_status_counts_picked_failed_pending_per_shard_from_the_files(tmp_path, tiny_model):
    folder = _folder(tmp_path / "mics", [f"s{i}" for i in range(9)])
    (folder / "broken.mrc").write_bytes(b"\x01" * 2000)
    count = 2
    broken_shard = shard_of("broken", count)
    summary = pick_folder(
        folder, tiny_model, SETTINGS, device="cpu", shard=Shard(broken_shard, count), log=True
    )
    assert len(summary.errors) == 1
    status = pick_status(folder, tiny_model)
    assert status.count == count and status.recipe is not None
    shards = {s.shard.index: s for s in status.shards}
    done, other = shards[broken_shard], shards[1 - broken_shard]
    assert done.failed == 1 and done.pending == 0 and done.picked == done.micrographs - 1
    assert other.picked == 0 and other.failed == 0 and other.pending == other.micrographs
    assert status.total.micrographs == 10
    assert [name for name, _ in status.failures] == ["broken.mrc"]
    text = format_status(status)
    assert f"{broken_shard}/2" in text and "broken.mrc" in text and "ended (done)" in text
    # the other shard, picked later, and a re-run that fixes the broken file
    pick_folder(folder, tiny_model, SETTINGS, device="cpu", shard=Shard(1 - broken_shard, 2))
    _write_mrc(folder / "broken.mrc", 99)
    pick_folder(folder, tiny_model, SETTINGS, device="cpu", shard=Shard(broken_shard, 2), log=True)
    total = pick_status(folder, tiny_model).total
    assert (total.picked, total.failed, total.pending) == (10, 0, 0)


def test_pick_status_cli(tmp_path, tiny_model, capsys):
    folder = _folder(tmp_path / "mics", ["x", "y", "z"])
    base = ["pick", str(folder), "--model", tiny_model, "--diameter", "150", "--device", "cpu"]
    assert main([*base, "--shard", "0/2"]) == 0
    out = capsys.readouterr().out
    assert "shard 0/2:" in out
    assert main(["pick-status", str(folder), "--model", tiny_model]) == 0
    out = capsys.readouterr().out
    assert "3 micrographs, pick set TinyMask, 2 shards" in out and "diameter 150 Å" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isdigit()}
    assert set(lines) == {"0/2", "1/2"} and lines["1/2"][2] == "0"
    assert main([*base, "--shard", "0/2"]) == 0  # a re-run skips what is picked
    out = capsys.readouterr().out
    assert "picked 0 micrographs" in out and "--repick" in out
    assert main(["pick-status", str(folder), "--suffix", "nothing", "--shards", "3"]) == 0
    assert "0/3" in capsys.readouterr().out


# ----------------------------------------------------------------------------- devices


def test_a_device_per_gpu_is_accepted_and_a_missing_one_is_one_line(tmp_path, capsys):
    import torch

    from boxnet_tui.model.inference import resolve_device

    parser = build_parser()
    for device in ("cuda:1", "cuda", "cpu", "auto", "mps"):
        assert parser.parse_args(["pick", "f", "--device", device]).device == device
    with pytest.raises(SystemExit):
        parser.parse_args(["pick", "f", "--device", "gpu1"])
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.device_count() < 2:
        with pytest.raises(UserError, match="cuda:1") as caught:
            resolve_device("cuda:1")
        assert "\n" not in str(caught.value)
        _write_mrc(tmp_path / "a.mrc")
        assert main(["pick", str(tmp_path), "--device", "cuda:1"]) == 2
        assert "cuda:1" in capsys.readouterr().err
    else:
        assert resolve_device("cuda:1") == torch.device("cuda:1")


# ----------------------------------------------------------------------------- the README


def _readme_sbatch() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("#!/bin/bash\n#SBATCH")
    return text[start : text.index("```", start)]


def test_the_readme_sbatch_script_runs_each_shard_as_written(tmp_path, tiny_model, capsys):
    """Run the README's script with bash as SLURM would (a stub boxnet-tui records the command
    line of each array task), then run one task's command line for real."""
    script = tmp_path / "pick.sbatch"
    script.write_text(_readme_sbatch())
    stub = tmp_path / "bin" / "boxnet-tui"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\nprintf "%s\\n" "$OMP_NUM_THREADS" "$@" > "$STUB_OUT"\n')
    stub.chmod(0o755)
    folder = _folder(tmp_path / "mics", [f"r{i}" for i in range(5)])
    commands = []
    for task in range(16):  # --array=0-15
        out = tmp_path / f"task{task}.txt"
        env = {
            **os.environ,
            "PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}",
            "SLURM_ARRAY_TASK_ID": str(task),
            "SLURM_ARRAY_TASK_COUNT": "16",
            "SLURM_CPUS_PER_TASK": "4",
            "STUB_OUT": str(out),
        }
        extra = ["--model", tiny_model, "--diameter", "150", "--device", "cpu"]
        subprocess.run(["bash", str(script), str(folder), *extra], env=env, check=True)
        threads, *argv = out.read_text().splitlines()
        assert threads == "4"
        commands.append(argv)
    shards = [build_parser().parse_args(argv).shard for argv in commands]
    assert [(s.index, s.count) for s in shards] == [(k, 16) for k in range(16)]
    owner = shard_of("r0", 16)
    assert main(commands[owner]) == 0  # the task's command line, run for real
    assert "shard" in capsys.readouterr().out and set(_stars(folder)) >= {"r0"}
    with pytest.raises(subprocess.CalledProcessError):  # no folder: the usage line, exit 1
        subprocess.run(
            ["bash", str(script)],
            env={**os.environ, "SLURM_ARRAY_TASK_ID": "0"},
            check=True,
            capture_output=True,
        )


def test_a_log_that_cannot_be_written_does_not_stop_the_pick(
    tmp_path, tiny_model, monkeypatch, capsys
):
    import errno

    from boxnet_tui import pick_log

    def refuse(path, record):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(pick_log, "append_jsonl", refuse)
    folder = _folder(tmp_path / "mics", ["a", "b"])
    args = ["pick", str(folder), "--model", tiny_model, "--diameter", "150", "--device", "cpu"]
    assert main(args) == 0
    assert set(_stars(folder)) == {"a", "b"}
    err = capsys.readouterr().err
    assert "pick log could not be written" in err and "Read-only file system" in err
    assert main(args) == 0  # the records in the pick files still skip them
    assert "2 micrographs already picked" in capsys.readouterr().out
