"""The run store and the training job: files, states, checkpoints, detached runs, kill -9.

The new examples come from a stand-in for ``training.export.collect_examples`` defined here
(built with ``labels.make_example`` from the curated STAR files), so these tests do not
depend on that module. Detached jobs get the stand-in through a ``sitecustomize`` shim on
their PYTHONPATH; ``BOXNET_TEST_SLEEP`` slows their iterations so they can be caught mid-way.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from boxnet_tui.errors import UserError
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import ModelInfo, find_model, save_model, shipped_models_dir
from boxnet_tui.synth import make_dataset
from boxnet_tui.training import job, runs
from boxnet_tui.training.labels import Example
from boxnet_tui.training.runs import (
    CANCELLED,
    DONE,
    QUEUED,
    RUNNING,
    STALE,
    Run,
    RunConfig,
    create_run,
    find_run,
    list_runs,
)

REPO = Path(__file__).resolve().parents[1]
TINY = Architecture(widths=(4, 8, 8))
SLEEP_VARIABLE = "BOXNET_TEST_SLEEP"

SHIM = f"""
import os, sys, types
sys.path.insert(0, {str(REPO)!r})

def _collect_examples(*args, **kwargs):
    from tests.test_runs import fake_collect_examples
    return fake_collect_examples(*args, **kwargs)

_module = types.ModuleType("boxnet_tui.training.export")
_module.collect_examples = _collect_examples
# no extent: the retrained scale of a model without one (these micrographs are small anyway)
_module.training_extent = lambda *args, **kwargs: None
sys.modules["boxnet_tui.training.export"] = _module
"""


# --------------------------------------------------------------------------- helpers


def fake_collect_examples(
    folder,
    positives,
    diameter,
    *,
    extra_important=None,
    uncertain=None,
    train_masking=False,
    pixel_size=None,
    invert=False,
    scale=None,
    junk_where_masked=False,
    micrographs=None,
    thresholds=None,
) -> list[Example]:
    """Warp's suffix-matched examples, as ``training.export`` will make them (every matched
    micrograph, all its picks: the runs here list them all, at threshold 0)."""
    from boxnet_tui.imaging import WARP_SCALE
    from boxnet_tui.io.layout import mask_path, match_suffix, matched_files
    from boxnet_tui.io.masks import read_mask
    from boxnet_tui.io.micrographs import read_micrograph, scan_folder
    from boxnet_tui.io.star import read_picks
    from boxnet_tui.training.labels import make_example

    paths = {p.stem: p for p in scan_folder(folder)}
    _, suffix = match_suffix(positives, paths)
    examples = []
    for root, star in sorted(matched_files(Path(positives).parent, suffix, paths).items()):
        micrograph = read_micrograph(paths[root], pixel_size)
        junk = read_mask(mask_path(folder, root)) if train_masking else None
        examples.append(
            make_example(
                micrograph.data,
                micrograph.pixel_size,
                read_picks(star),
                diameter,
                junk=junk,
                invert=invert,
                name=root,
                scale=scale or WARP_SCALE,
            )
        )
    pause = float(os.environ.get(SLEEP_VARIABLE, "0"))
    if pause:  # slow every training iteration down, so a test can catch the job mid-way
        from boxnet_tui.training import loop

        sample = loop.sample_batch

        def slow(*args, **kwargs):
            time.sleep(pause)
            return sample(*args, **kwargs)

        loop.sample_batch = slow
    return examples


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "mics"
    make_dataset(folder, 3, size=256, pixel_size=4.0, diameter=120.0, seed=1)
    return folder


@pytest.fixture
def base_model() -> str:
    import torch

    torch.manual_seed(0)
    return save_model(BoxNet(TINY).eval(), ModelInfo("TinyBase", TINY, has_mask=True)).name


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def fake_export(monkeypatch):
    monkeypatch.setattr(job, "collect_new", lambda config, scale=None: _collect(config))


def _collect(config: RunConfig) -> list[Example]:
    return fake_collect_examples(
        config.folder,
        config.positives,
        config.diameter,
        train_masking=config.train_masking,
        pixel_size=config.pixel_size,
    )


@pytest.fixture
def detached_env(monkeypatch, tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(shim), str(REPO)])))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return shim


def make_config(dataset: Path, name: str, base: str, **changes) -> RunConfig:
    options = dict(
        name=name,
        folder=str(dataset),
        positives=str(dataset / "matching" / "synth_000_truth.star"),
        base=base,
        diameter=120.0,
        device="cpu",
        hold_out=False,
        iterations=12,
        checkpoint_every=4,
        log_every=2,
        batch_size=2,
        crop=32,
        seed=3,
    )
    options.update(changes)
    return RunConfig(**options)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _steps(run: Run) -> list[int]:
    return [m["iteration"] for m in run.metrics() if "iteration" in m]


# --------------------------------------------------------------------------- creation


def test_config_defaults_match_train_config():
    from boxnet_tui.training.loop import TrainConfig

    config = RunConfig("x", "f", "p")
    trained = config.train_config(123)
    assert trained == TrainConfig(**{**vars(TrainConfig()), "iterations": 123, "seed": 0})
    assert RunConfig.from_json({**config.to_json(), "future_option": 1}) == config
    assert config.default_iterations(4) == 400
    config.public_set = "/somewhere"
    assert config.default_iterations(4) == 800


def test_create_run_validates(dataset, base_model):
    run = create_run(make_config(dataset, "NewNet", base_model))
    assert run.path.parent.name == "runs" and run.name == "NewNet"
    assert run.status().state == QUEUED and run.status().pid is None
    config = run.config()
    assert Path(config.folder).is_absolute() and config.created
    assert find_run("NewNet") == run and list_runs() == [run]
    bad = [
        (make_config(dataset, "bad name!", base_model), "letters, digits"),
        (make_config(dataset, "NewNet", base_model), "run named 'NewNet' exists"),
        (make_config(dataset, base_model, base_model), "model named 'TinyBase' exists"),
        (make_config(dataset, "Other", "NoSuchModel"), "no model named"),
        (make_config(dataset / "nowhere", "Other", base_model), "no such folder"),
        (make_config(dataset, "Other", base_model, diameter=5.0), "diameter"),
        (make_config(dataset, "Other", base_model, iterations=0), "iterations"),
        (make_config(dataset, "Other", base_model, device="gpu"), "device"),
        (make_config(dataset, "Other", base_model, public_set=str(dataset)), "no example"),
    ]
    if (shipped_models_dir() / "BoxNetMask").is_dir():
        bad.append((make_config(dataset, "BoxNetMask", base_model), "model named 'BoxNetMask'"))
    for config, message in bad:
        with pytest.raises(UserError, match=message) as caught:
            create_run(config)
        assert "\n" not in str(caught.value)
    assert [r.name for r in list_runs()] == ["NewNet"]
    with pytest.raises(UserError, match="no run named 'Nope'"):
        find_run("Nope")


def test_run_names_outside_the_store_are_refused(dataset, base_model):
    from boxnet_tui.paths import runs_dir

    run = create_run(make_config(dataset, "Named", base_model))
    (runs_dir().parent / "config.json").write_text(json.dumps(run.config().to_json()))
    for name in ("..", ".", "a\\b", "a\x00b", ""):
        with pytest.raises(UserError, match=r"^run name ") as caught:
            find_run(name)
        assert "\n" not in str(caught.value)
    config_path = run.path / "config.json"
    for name in ("../../outside/Evil", "..", 5):
        data = json.loads(config_path.read_text())
        data["name"] = name
        config_path.write_text(json.dumps(data))
        with pytest.raises(UserError, match="model name") as caught:
            run.config()
        assert str(caught.value).startswith(f"{config_path}: ")


def test_list_runs_newest_first(dataset, base_model):
    first = create_run(make_config(dataset, "First", base_model, created="2024-01-01T00:00:00"))
    second = create_run(make_config(dataset, "Second", base_model, created="2025-01-01T00:00:00"))
    assert list_runs() == [second, first]


# --------------------------------------------------------------------------- files


def test_status_round_trip_and_stale(dataset, base_model):
    run = create_run(make_config(dataset, "StatusNet", base_model))
    run.update_status(state=RUNNING, pid=os.getpid(), iteration=5, iterations=10)
    status = run.status()
    assert (status.state, status.iteration, status.iterations, status.pid) == (
        RUNNING,
        5,
        10,
        os.getpid(),
    )
    assert status.effective_state == STALE  # "running" but no job holds the lock
    assert status.fraction == 0.5
    data = json.loads((run.path / "status.json").read_text())
    assert set(data) >= {"state", "pid", "iteration", "iterations", "started", "updated", "error"}
    fd = run.lock()
    assert fd is not None and run.is_locked() and run.lock() is None
    assert run.status().effective_state == RUNNING
    os.close(fd)
    assert not run.is_locked()
    # queued, started by a process that is gone
    run.update_status(state=QUEUED, pid=2**22 + 12345)
    assert run.status().effective_state == STALE
    assert runs.is_alive(os.getpid()) and not runs.is_alive(None)


def test_metrics_round_trip_torn_line_and_tail(dataset, base_model):
    run = create_run(make_config(dataset, "MetricsNet", base_model))
    assert run.metrics() == [] and run.tail_log(5) == []
    for i in (2, 4, 6):
        run.append_metrics(
            {"iteration": i, "loss_new": 1.0 / i, "loss_old": None, "lr": 1e-3, "time": i}
        )
    run.append_metrics({"iteration": 8, "loss_new": float("nan"), "loss_old": None})
    lines, offset = run.read_metrics()
    assert [m["iteration"] for m in lines] == [2, 4, 6, 8] and lines[-1]["loss_new"] is None
    with open(run.path / "metrics.jsonl", "ab") as handle:
        handle.write(b'{"iteration": 10, "loss_n')  # a kill in the middle of a write
    assert _steps(run) == [2, 4, 6, 8]
    more, offset2 = run.read_metrics(offset)
    assert more == [] and offset2 == offset  # the torn line is not consumed
    run.append_metrics({"heldout": {"micrograph": "m", "new": {"f1": 1.0}}})
    assert run.heldout() is None  # glued to the torn line: skipped, never misread
    run.truncate_metrics(4)
    assert _steps(run) == [2, 4]
    assert (run.path / "metrics.jsonl").read_bytes().endswith(b"\n")
    run.append_metrics({"heldout": {"micrograph": "m", "new": {"f1": 1.0}}})
    assert run.heldout() == {"micrograph": "m", "new": {"f1": 1.0}}
    for i in range(50):
        run.log(f"line {i}")
    tail = run.tail_log(3)
    assert [line.split("  ", 1)[1] for line in tail] == ["line 47", "line 48", "line 49"]


def test_checkpoints_keep_last_two(dataset, base_model):
    run = create_run(make_config(dataset, "CkptNet", base_model))
    assert run.latest_checkpoint() is None and run.load_checkpoint() is None
    for i in (4, 8, 12):
        run.save_checkpoint(i, {"iteration": i, "numbers": list(range(i))})
    assert [i for i, _ in run.checkpoints()] == [8, 12]
    assert run.latest_checkpoint().name == "ckpt_12.pt"
    assert run.load_checkpoint()["numbers"] == list(range(12))
    run.latest_checkpoint().write_bytes(b"garbage")  # cannot happen (atomic), but survive it
    assert run.load_checkpoint()["iteration"] == 8


def test_public_set_is_lazy_and_chains(monkeypatch, tmp_path):
    reads = []

    class FakeFile:
        def __init__(self, path, n):
            self.path, self.n = path, n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if not 0 <= i < self.n:
                raise IndexError(i)
            reads.append((self.path.name, i))
            return Example(
                np.zeros((4, 4), np.float32),
                np.zeros((4, 4), np.uint8),
                np.ones((4, 4), np.float32),
                f"{self.path.stem}-{i}",
            )

    for name in ("a.tif", "b.tif", "notes.txt"):
        (tmp_path / name).write_text("x")
    monkeypatch.setattr(
        job, "open_example_file", lambda path: FakeFile(path, 2 + (path.stem == "b"))
    )
    public = job.load_public_set(str(tmp_path))
    assert len(public) == 5 and reads == []
    assert public[3].name == "b-1" and public[-1].name == "b-2"
    assert reads == [("b.tif", 1), ("b.tif", 2)]
    public[3]
    assert len(reads) == 2  # cached
    new = [
        Example(
            np.zeros((4, 4), np.float32),
            np.ones((4, 4), np.uint8),
            np.ones((4, 4), np.float32),
            "new",
        )
    ]
    chained = new + (public or [])
    assert [e.name for e in chained] == ["new", "a-0", "a-1", "b-0", "b-1", "b-2"]
    with pytest.raises(IndexError):
        public[5]


def test_public_set_junk_is_background_unless_training_masking(tmp_path):
    """Warp drops the junk class from every example when it trains without masking."""
    from boxnet_tui.io.examples import write_examples
    from boxnet_tui.training.labels import BACKGROUND, JUNK, PARTICLE

    label = np.zeros((16, 16), np.uint8)
    label[2:5, 2:5] = PARTICLE
    label[8:14, 8:14] = JUNK
    example = Example(
        np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32),
        label,
        np.ones((16, 16), np.float32),
        "mic",
    )
    write_examples(tmp_path / "public.tif", [example])
    before = (tmp_path / "public.tif").read_bytes()
    plain = job.load_public_set(str(tmp_path))[0].label
    masking = job.load_public_set(str(tmp_path), train_masking=True)[0].label
    assert (masking == JUNK).sum() == 36 and (plain == JUNK).sum() == 0
    assert (plain[8:14, 8:14] == BACKGROUND).all()
    assert (plain == PARTICLE).sum() == (masking == PARTICLE).sum() == 9
    assert (tmp_path / "public.tif").read_bytes() == before  # the file is only read


def test_choose_held_out():
    def named(*names):
        return [Example(None, None, None, n) for n in names]

    assert job.choose_held_out(named("mic2", "mic10", "mic9")) == "mic10"
    assert job.choose_held_out(named("a", "b")) is None
    assert job.choose_held_out(named("a", "b", "")) is None


# --------------------------------------------------------------------------- in-process jobs


def test_job_in_process_makes_model_metrics_and_heldout(dataset, base_model, fake_export):
    config = make_config(
        dataset,
        "HeldNet",
        base_model,
        iterations=None,
        hold_out=True,
        checkpoint_every=80,
        log_every=20,
    )
    run = create_run(config)
    assert job.run_job(run.path) == DONE
    status = run.status()
    assert status.state == DONE and status.error is None
    assert status.iteration == status.iterations == 200  # Warp's rule: 2 micrographs x 100
    steps = _steps(run)
    assert steps == list(range(20, 201, 20))
    line = run.metrics()[0]
    assert set(line) == {"iteration", "loss_new", "loss_old", "lr", "time"}
    assert line["loss_old"] is None and line["loss_new"] > 0
    held = run.heldout()
    assert held["micrograph"] == "synth_002"
    assert held["base_scale_factor"] == 1.0  # a Warp base is picked at its 8 Å/px, unchecked
    for key in ("new", "base"):
        assert set(held[key]) >= {"precision", "recall", "f1"}
        assert 0.0 <= held[key]["f1"] <= 1.0
    info = find_model("HeldNet")
    assert info.parent == "TinyBase" and info.has_mask and info.architecture == TINY
    assert info.training["held_out"] == "synth_002"
    assert info.training["examples"] == ["synth_000", "synth_001"]
    assert [i for i, _ in run.checkpoints()] == [160, 200]
    log = "\n".join(run.tail_log(100))
    assert "held-out synth_002" in log and "done" in log
    with pytest.raises(UserError, match="done already"):
        runs.resume("HeldNet", detach=False)
    with pytest.raises(UserError, match="done already"):
        runs.cancel(run)


def test_job_with_public_set(dataset, base_model, fake_export, monkeypatch, tmp_path):
    examples = _collect(make_config(dataset, "x", base_model))
    public = tmp_path / "public"
    public.mkdir()
    (public / "old.tif").write_text("stand-in")
    monkeypatch.setattr(job, "open_example_file", lambda path: examples[:2])
    run = create_run(make_config(dataset, "PublicNet", base_model, public_set=str(public)))
    assert job.run_job(run.path) == DONE
    lines = [m for m in run.metrics() if "iteration" in m]
    assert all(m["loss_old"] is not None for m in lines)


def test_failed_job_reports_one_line(dataset, base_model, monkeypatch):
    def broken(config, scale=None):
        raise ValueError("something broke\nsecond line")

    monkeypatch.setattr(job, "collect_new", broken)
    run = create_run(make_config(dataset, "BrokenNet", base_model))
    assert job.run_job(run.path) == "failed"
    status = run.status()
    assert status.state == "failed" and status.error == "ValueError: something broke"
    assert "Traceback" in (run.path / "log.txt").read_text()
    monkeypatch.setattr(job, "collect_new", lambda config, scale=None: [])
    run2 = create_run(make_config(dataset, "EmptyNet", base_model))
    assert job.run_job(run2.path) == "failed"
    assert "no curated micrographs" in run2.status().error


def test_stop_and_resume_continues_with_identical_state(dataset, base_model, fake_export):
    import torch

    straight = create_run(make_config(dataset, "StraightNet", base_model))
    assert job.run_job(straight.path) == DONE

    stopped = create_run(make_config(dataset, "StoppedNet", base_model))
    calls = []

    def stop_after_7():
        calls.append(1)
        return len(calls) > 8  # asked once before training, then before each iteration

    assert job.run_job(stopped.path, should_stop=stop_after_7) == CANCELLED
    status = stopped.status()
    assert status.state == CANCELLED and status.iteration == 7
    examples = dataset / "boxnet2training"
    assert (examples / "StraightNet.tif").is_file()  # a run done leaves Warp's examples file
    assert not (examples / "StoppedNet.tif").exists()  # a cancelled one none (yet)
    assert [i for i, _ in stopped.checkpoints()] == [4, 7]
    checkpoint = stopped.load_checkpoint()
    assert checkpoint["iteration"] == 7 and checkpoint["iterations"] == 12
    assert checkpoint["numpy_rng"]["bit_generator"] == "PCG64"
    assert _steps(stopped) == [2, 4, 6]
    # the restored generator continues exactly where the stopped one was
    rng = np.random.default_rng(0)
    rng.bit_generator.state = checkpoint["numpy_rng"]
    assert rng.bit_generator.state == checkpoint["numpy_rng"]

    runs.resume("StoppedNet", detach=False)
    assert stopped.status().state == DONE
    assert (examples / "StoppedNet.tif").is_file()
    assert _steps(stopped) == [2, 4, 6, 8, 10, 12]
    assert "resumed from checkpoint at iteration 7/12" in "\n".join(stopped.tail_log(50))
    final_a = straight.load_checkpoint()
    final_b = stopped.load_checkpoint()
    assert final_a["iteration"] == final_b["iteration"] == 12
    assert final_a["numpy_rng"] == final_b["numpy_rng"]
    assert torch.equal(final_a["torch_rng"], final_b["torch_rng"])
    for key, value in final_a["model"].items():
        assert torch.equal(value, final_b["model"][key]), key


def test_cancel_queued_run_and_stale_resume(dataset, base_model, fake_export):
    run = create_run(make_config(dataset, "QueuedNet", base_model))
    assert runs.cancel(run).state == CANCELLED
    assert job.run_job(run.path) == CANCELLED  # a job started late does nothing
    assert not find_model_exists("QueuedNet")
    # a run left "running" by a dead process resumes
    run.update_status(state=RUNNING, pid=2**22 + 999)
    assert run.status().effective_state == STALE
    runs.resume("QueuedNet", detach=False)
    assert run.status().state == DONE and find_model_exists("QueuedNet")


def find_model_exists(name: str) -> bool:
    try:
        find_model(name)
    except UserError:
        return False
    return True


# --------------------------------------------------------------------------- detached jobs


def _final(run: Run) -> bool:
    return run.raw_status().state in runs.FINAL_STATES


def test_detached_run_finishes(dataset, base_model, detached_env):
    run = create_run(make_config(dataset, "DetachedNet", base_model))
    pid = runs.start_detached(run)
    assert pid > 0 and os.getpgid(pid) == pid  # a session of its own
    with pytest.raises(UserError, match="running already"):
        runs.start_detached(run)
    wait_for(lambda: _final(run), what="the detached run to finish")
    status = run.status()
    assert status.state == DONE, run.tail_log(30)
    assert find_model("DetachedNet").parent == "TinyBase"
    assert _steps(run) == [2, 4, 6, 8, 10, 12]
    wait_for(lambda: not runs.is_alive(pid), what="the job to exit")


def test_detached_job_imports_nothing_from_its_run_folder(
    dataset, base_model, detached_env, tmp_path, monkeypatch
):
    marker = tmp_path / "planted-module-ran"
    run = create_run(make_config(dataset, "PlantedNet", base_model, iterations=2))
    # modules the job imports after start-up, planted where a run's files are written
    planted = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for module in ("bisect", "random", "tempfile", "numpy", "torch"):
        (run.path / f"{module}.py").write_text(planted)
    relative = tmp_path / "relative"
    relative.mkdir()
    monkeypatch.chdir(relative)  # a relative PYTHONPATH entry means this folder, not the run's
    monkeypatch.setenv("PYTHONPATH", os.environ["PYTHONPATH"] + os.pathsep + ".")
    runs.start_detached(run)
    wait_for(lambda: _final(run) or marker.exists(), what="the detached run to finish")
    assert not marker.exists(), marker.read_text()
    assert run.status().state == DONE, run.tail_log(30)


def test_detached_run_killed_then_resumed(dataset, base_model, detached_env, monkeypatch):
    monkeypatch.setenv(SLEEP_VARIABLE, "0.01")
    config = make_config(
        dataset, "KilledNet", base_model, iterations=120, checkpoint_every=20, log_every=5
    )
    run = create_run(config)
    pid = runs.start_detached(run)
    wait_for(
        lambda: run.checkpoints() and run.checkpoints()[-1][0] >= 20,
        what="a first checkpoint",
    )
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not runs.is_alive(pid), what="the job to die")
    status = run.status()
    assert status.state == RUNNING and status.effective_state == STALE
    assert status.iteration < 120
    resume_point = run.checkpoints()[-1][0]
    assert resume_point > 0

    runs.resume("KilledNet", detach=True)
    wait_for(lambda: _final(run), what="the resumed run to finish")
    assert run.status().state == DONE, run.tail_log(30)
    steps = _steps(run)
    assert steps == list(range(5, 121, 5))  # no step twice, none missing
    log = (run.path / "log.txt").read_text()
    assert f"resumed from checkpoint at iteration {resume_point}/120" in log
    assert find_model("KilledNet").training["iterations"] == 120


def test_cancel_detached_run(dataset, base_model, detached_env, monkeypatch):
    monkeypatch.setenv(SLEEP_VARIABLE, "0.01")
    run = create_run(make_config(dataset, "CancelNet", base_model, iterations=2000, log_every=5))
    runs.start_detached(run)
    wait_for(lambda: run.status().iteration >= 10, what="the run to get going")
    status = runs.cancel(run, wait=30)
    assert status.state == CANCELLED, run.tail_log(20)
    assert 10 <= status.iteration < 2000
    assert run.checkpoints()[-1][0] == status.iteration
    assert not find_model_exists("CancelNet")
    with pytest.raises(UserError, match="cancelled already"):
        runs.cancel(run)


def test_job_module_usage():
    assert job.main([]) == 2
    assert isinstance(sys.modules["boxnet_tui.training.job"], types.ModuleType)


# ---------------------------------------------------------------- cancel: whom it signals

HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
if sys.argv[2] == "record":
    sys.path.insert(0, {repo!r})
    from boxnet_tui.process import Identity
    os.ftruncate(fd, 0)
    os.pwrite(fd, Identity.of(os.getpid()).to_text().encode(), 0)
print("locked", flush=True)
time.sleep(60)
"""


def _bystander():
    """A live process that is not the run's job, in a session of its own (as a job is)."""
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )


def _lock_holder(run: Run, mode: str):
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK.format(repo=str(REPO)), str(run.path / "lock"), mode],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def _stop(*processes) -> None:
    for process in processes:
        process.kill()
        process.wait()


def test_cancel_never_signals_a_stale_status_pid(dataset, base_model):
    """status.json naming a live process that holds no lock: not signalled, one line."""
    from boxnet_tui.process import process_start

    run = create_run(make_config(dataset, "StaleNet", base_model))
    bystander = _bystander()
    try:
        run.update_status(state=RUNNING, pid=bystander.pid, pid_start=process_start(bystander.pid))
        status, line = runs.cancel_run(run)
        assert bystander.poll() is None, "a process that is not the run's job was signalled"
        assert line == "StaleNet: not running (no job holds it); marked cancelled"
        assert status.state == CANCELLED
    finally:
        _stop(bystander)


@pytest.mark.parametrize("start", ["known", "unknown"])
def test_cancel_never_signals_a_pid_that_does_not_hold_the_lock(dataset, base_model, start):
    """The lock is held (by a process that did not record itself) while status.json names
    another live pid, with its start time or without it (a reused pid): nothing signalled."""
    from boxnet_tui.process import process_start

    run = create_run(make_config(dataset, f"Held{start}", base_model))
    bystander = _bystander()
    holder = _lock_holder(run, "silent")
    try:
        pid_start = process_start(bystander.pid) if start == "known" else None
        run.update_status(state=RUNNING, pid=bystander.pid, pid_start=pid_start)
        with pytest.raises(UserError, match="not running") as caught:
            runs.cancel_run(run)
        assert "\n" not in str(caught.value)
        assert bystander.poll() is None and holder.poll() is None
    finally:
        _stop(bystander, holder)


def test_cancel_signals_the_recorded_lock_holder(dataset, base_model):
    run = create_run(make_config(dataset, "HolderNet", base_model))
    holder = _lock_holder(run, "record")
    try:
        run.update_status(state=RUNNING, pid=holder.pid)
        status, line = runs.cancel_run(run, wait=10)
        holder.wait(10)  # signalled (runs.is_alive may have reaped it: returncode 0)
    finally:
        if holder.poll() is None:
            _stop(holder)
    assert line == "HolderNet: cancelled" and status.state == CANCELLED


def test_cancel_never_signals_a_reused_holder_pid(dataset, base_model):
    """The lock file names the holder's pid with another start time (a pid reused)."""
    from boxnet_tui.process import Identity

    run = create_run(make_config(dataset, "ReusedNet", base_model))
    holder = _lock_holder(run, "record")
    try:
        recorded = Identity.of(holder.pid)
        (run.path / "lock").write_text(
            Identity(recorded.pid, (recorded.start or 0) + 1, recorded.host).to_text()
        )
        with pytest.raises(UserError, match="not running"):
            runs.cancel_run(run)
        assert holder.poll() is None
    finally:
        _stop(holder)


# --------------------------------------------------------------------------- delete


def test_delete_run_frees_its_name_and_refuses_a_live_one(dataset, base_model):
    run = create_run(make_config(dataset, "DeleteNet", base_model))
    holder = _lock_holder(run, "record")
    try:
        with pytest.raises(UserError, match="running"):
            runs.delete_run(run)
        assert run.path.is_dir()
    finally:
        _stop(holder)
    assert runs.delete_run(run) == "DeleteNet: deleted"
    assert not run.path.exists() and list_runs() == []
    create_run(make_config(dataset, "DeleteNet", base_model))  # the name is free again


def test_list_runs_clears_an_interrupted_deletion(dataset, base_model):
    run = create_run(make_config(dataset, "HalfGone", base_model))
    trash = run.path.parent / ".HalfGone.deleting-4194000"  # a pid beyond any live one
    os.rename(run.path, trash)
    assert list_runs() == [] and not trash.exists()


def test_temporary_checkpoints_of_a_killed_write_are_removed(dataset, base_model):
    import torch

    run = create_run(make_config(dataset, "TempCkpt", base_model))
    run.checkpoint_dir.mkdir()
    left = run.checkpoint_dir / ".ckpt_8.k3j_x9a1.tmp.pt"  # as io.atomic names them
    left.write_bytes(b"half a checkpoint")
    run.save_checkpoint(12, {"iteration": 12, "model": {"w": torch.zeros(1)}})
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["ckpt_12.pt"]


def test_a_checkpoint_made_at_another_input_scale_is_not_resumed(dataset, base_model, fake_export):
    """A run checkpointed by a version that retrained at another scale must start anew: its
    weights learnt one size of particle, the examples now show another."""
    import torch

    run = create_run(make_config(dataset, "RescaledNet", base_model))
    calls = []

    def stop_after_5():
        calls.append(1)
        return len(calls) > 6

    assert job.run_job(run.path, should_stop=stop_after_5) == CANCELLED
    iteration, path = run.checkpoints()[-1]
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert state["pixels_per_diameter"] is None  # Warp's 8 Å/px base: retrained at 8 Å/px
    state["pixels_per_diameter"] = 20.0
    torch.save(state, path)
    before = path.read_bytes()
    runs.resume("RescaledNet", detach=False)
    status = run.status()
    assert status.state != DONE and status.iteration == iteration
    assert "trained at 20 px a diameter" in status.error
    assert "retrains at Warp's 8 Å/px; start a new run" in status.error
    assert path.read_bytes() == before  # the checkpoint is left as it was
