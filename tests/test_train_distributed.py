"""Training under torchrun: two CPU processes (gloo) train one run; rank 0 alone writes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import ModelInfo, find_model, models_dir, save_model
from boxnet_tui.synth import make_dataset
from boxnet_tui.training.runs import DONE, find_run

TINY = Architecture(widths=(4, 8, 8))

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_torchrun_two_processes_train_one_run(tmp_path):
    folder = tmp_path / "mics"
    make_dataset(folder, 3, size=256, pixel_size=4.0, diameter=120.0, seed=1)
    torch.manual_seed(0)
    save_model(BoxNet(TINY).eval(), ModelInfo("TinyBase", TINY, has_mask=True))

    result = torchrun(
        "-m",
        "boxnet_tui",
        "train",
        str(folder),
        "--name",
        "DistNet",
        "--positives",
        str(folder / "matching" / "synth_000_truth.star"),
        "--base",
        "TinyBase",
        "--diameter",
        "120",
        "--iterations",
        "20",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("DistNet: done") == 1  # printed by rank 0 only

    run = find_run("DistNet")
    status = run.status()
    assert status.state == DONE and status.iteration == status.iterations == 20
    assert sorted(p.name for p in run.path.iterdir() if "metrics" in p.name) == ["metrics.jsonl"]
    steps = [m["iteration"] for m in run.metrics() if "iteration" in m]
    assert steps == [10, 20]  # one line a step, not one per process
    assert len([m for m in run.metrics() if "heldout" in m]) == 1  # checked on rank 0 only
    log = (run.path / "log.txt").read_text()
    assert log.count("job started") == 1 and "2 processes" in log
    assert log.count("done: model DistNet saved") == 1

    assert sorted(p.name for p in models_dir().iterdir()) == ["DistNet", "TinyBase"]
    info = find_model("DistNet")
    assert info.parent == "TinyBase" and info.training["held_out"] == "synth_002"

    checkpoint = torch.load(run.latest_checkpoint(), weights_only=True)
    assert checkpoint["iteration"] == 20
    ranks = checkpoint["ranks"]
    assert len(ranks) == 2 and ranks[0]["numpy_rng"] != ranks[1]["numpy_rng"]  # own streams


def test_one_process_world_and_batch_shares(monkeypatch):
    from boxnet_tui.training import distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.world_from_env() == distributed.World()
    assert not distributed.World().distributed
    assert distributed.batch_share(8, distributed.World()) == 8
    assert distributed.batch_share(8, distributed.World(1, 3)) == 3
    assert distributed.batch_share(8, distributed.World(2, 3)) == 2
    assert distributed.batch_share(1, distributed.World(1, 2), minimum=1) == 1
    assert distributed.any_rank(True, distributed.World()) is True
    assert distributed.mean_over_ranks([1.0], distributed.World()) == [1.0]


@pytest.mark.slow
def test_torchrun_cancel_then_resume(tmp_path, monkeypatch):
    """A torchrun job cancelled through rank 0 stops every rank with a checkpoint; resumed
    under torchrun it continues from there and logs every step once."""
    from boxnet_tui.training import runs
    from tests.test_runs import SHIM, SLEEP_VARIABLE, make_config, wait_for

    folder = tmp_path / "mics"
    make_dataset(folder, 3, size=256, pixel_size=4.0, diameter=120.0, seed=1)
    torch.manual_seed(0)
    save_model(BoxNet(TINY).eval(), ModelInfo("TinyBase", TINY, has_mask=True))
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM)  # slows each iteration down (see test_runs)
    monkeypatch.setenv("PYTHONPATH", str(shim))
    monkeypatch.setenv(SLEEP_VARIABLE, "0.02")
    run = runs.create_run(
        make_config(folder, "DistCancelNet", "TinyBase", iterations=400, log_every=5)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "boxnet_tui.training.job", str(run.path)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        wait_for(lambda: run.status().iteration >= 10, timeout=90, what="the run to get going")
        status = runs.cancel(run, wait=30)
        assert process.wait(timeout=60) == 0  # the job module ends 0 when cancelled
    finally:
        if process.poll() is None:
            process.kill()
    assert status.state == runs.CANCELLED, run.tail_log(20)
    stopped = status.iteration
    assert 10 <= stopped < 400 and run.checkpoints()[-1][0] == stopped

    monkeypatch.setenv(SLEEP_VARIABLE, "0")
    result = torchrun("-m", "boxnet_tui", "train", "--resume", "DistCancelNet", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert run.status().state == DONE
    steps = [m["iteration"] for m in run.metrics() if "iteration" in m]
    assert steps == list(range(5, 401, 5))
    assert (
        f"resumed from checkpoint at iteration {stopped}/400"
        in run.path.joinpath("log.txt").read_text()
    )
