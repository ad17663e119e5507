"""One retraining run, start to end: ``python -m boxnet_tui.training.job RUN_DIR``.

The job reads the run's ``config.json``, prepares the new examples (Warp's suffix-matched
curated picks), optionally holds the last curated micrograph out for a check, opens the
public set lazily, and trains a copy of the base model, resuming from the run's latest
checkpoint when there is one. Every log step appends a metrics line and rewrites
``status.json``; a checkpoint is written every ``checkpoint_every`` iterations and at the end.
At the end the model is saved to the store under the run's name, and the held-out micrograph
(if any) is picked with the new and the base model and scored against its curated picks.

SIGTERM (and SIGINT when run as a program) asks the job to stop: it finishes the current
iteration, writes a checkpoint and ends "cancelled". Any error ends it "failed" with a
one-line message in ``status.json`` and the traceback in ``log.txt``. A kill -9 leaves the
status "running" with no live process, which reads as "stale" and can be resumed.

Under torchrun (``WORLD_SIZE`` > 1), e.g. ``torchrun --nproc_per_node=4 -m
boxnet_tui.training.job RUN_DIR``, every rank runs this job: rank 0 holds the lock and writes
every file (status, metrics, log, checkpoints, the model) and alone calibrates the threshold
and checks the held-out micrograph; the other ranks train their share of each batch and wait
for rank 0 at barriers. Checkpoints hold every rank's random streams.

Top-level imports are light (no torch) so that the signal handlers are in place before the
heavy imports of a freshly started process.
"""

from __future__ import annotations

import bisect
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.heap import keep_freed_memory
from boxnet_tui.io.micrographs import natural_key
from boxnet_tui.pick_options import RUN_PATH, TRAINED_INVERTED
from boxnet_tui.process import process_start
from boxnet_tui.training.launch import prepare_resume, torchrun_size
from boxnet_tui.training.run_config import HOLD_OUT_MINIMUM, RunConfig, public_set_files
from boxnet_tui.training.run_store import (
    CANCELLED,
    DONE,
    FAILED,
    RUNNING,
    Run,
    RunStatus,
    find_run,
    now_iso,
)

LOCK_WAIT = 5.0  # s to wait for the run's lock (a reader may probe it for an instant)
PUBLIC_CACHE = 8  # public-set examples kept in memory


class Cancelled(Exception):
    """The job was asked to stop."""


# --------------------------------------------------------------------------- examples


def collect_new(config: RunConfig, scale: Any = None) -> list:
    """The examples of the micrographs the run's config lists (Warp's suffix matching), with
    the picks shown at their display thresholds, at ``scale`` (the new model's input scale,
    :meth:`NetworkScale.retrained`; default Warp's 8 Å/px), inverted for negative stain as the
    config says (the threshold's calibration takes these same images). A config without a list
    (a run made before it was recorded) takes what the folder's curation state says now."""
    from boxnet_tui.imaging import WARP_SCALE
    from boxnet_tui.training.export import collect_examples

    return collect_examples(
        config.folder,
        config.positives,
        config.diameter,
        scale=scale or WARP_SCALE,
        **_example_options(config),
    )


def _example_options(config: RunConfig) -> dict[str, Any]:
    """The run's options for its examples, as ``collect_examples`` and ``export_examples``
    take them: the one place that says which of the config's fields make the examples."""
    options: dict[str, Any] = {
        "extra_important": config.extra_important,
        "uncertain": config.uncertain,
        "train_masking": config.train_masking,
        "pixel_size": config.pixel_size,
        "invert": config.invert,
    }
    if config.micrographs is not None:
        options.update(micrographs=config.micrographs, thresholds=config.thresholds or {})
    return options


def open_example_file(path: Path) -> Sequence:
    """A lazy sequence of the examples in one Warp example TIFF."""
    from boxnet_tui.io.examples import ExampleFile

    return ExampleFile(path)


class PublicSet(Sequence):
    """The examples of every ``*.tif`` of a public-set folder, read on demand (a few cached).

    ``some_list + public_set`` gives an iterable over both that reads each public example
    once, in order: the training loop's class weights count labels that way without holding
    the whole set in memory.
    """

    def __init__(self, files: Sequence[Sequence]) -> None:
        self.files = list(files)
        self.starts = [0]
        for part in self.files:
            self.starts.append(self.starts[-1] + len(part))
        self._cache: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        part = bisect.bisect_right(self.starts, index) - 1
        example = self.files[part][index - self.starts[part]]
        self._cache[index] = example
        if len(self._cache) > PUBLIC_CACHE:
            self._cache.popitem(last=False)
        return example

    def __iter__(self) -> Iterator[Any]:
        for part in self.files:
            for i in range(len(part)):
                yield part[i]

    def __radd__(self, other: Sequence) -> _Chained:
        return _Chained([other, self])


class _Chained(Sequence):
    def __init__(self, parts: list[Sequence]) -> None:
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        for part in self.parts:
            if index < len(part):
                return part[index]
            index -= len(part)
        raise IndexError(index)

    def __iter__(self) -> Iterator[Any]:
        for part in self.parts:
            yield from part


def load_public_set(folder: str, scale: Any = None, *, train_masking: bool = False) -> PublicSet:
    """The public set's example TIFFs (Warp's, at 8 Å/px), each brought to ``scale`` as it is
    read when the model's input is diameter-scaled. Without ``train_masking`` their junk is
    read as background, as Warp trains then: the class is learnt from every example or none."""
    from functools import partial

    from boxnet_tui.training.labels import MappedExamples, junk_as_background, rescale_example

    files = public_set_files(folder)
    if not files:
        raise UserError(f"{folder}: no example files (*.tif) in the public set folder")
    opened = [open_example_file(path) for path in files]
    if scale is not None and scale.pixels_per_diameter is not None:
        opened = [MappedExamples(part, partial(rescale_example, scale=scale)) for part in opened]
    if not train_masking:
        opened = [MappedExamples(part, junk_as_background) for part in opened]
    return PublicSet(opened)


def choose_held_out(examples: Sequence) -> str | None:
    """The micrograph kept out of training: the last by name, when there are at least
    ``HOLD_OUT_MINIMUM``."""
    names = sorted({e.name for e in examples if e.name}, key=natural_key)
    enough = len(examples) >= HOLD_OUT_MINIMUM
    return names[-1] if enough and len(names) == len(examples) else None


# --------------------------------------------------------------------------- ranks


class _QuietRun(Run):
    """The run as a rank other than 0 sees it under torchrun: it reads, and writes nothing."""

    def log(self, text: str) -> None:
        pass

    def write_status(self, status: RunStatus) -> RunStatus:
        return status

    def append_metrics(self, record: dict[str, Any]) -> None:
        pass

    def truncate_metrics(self, iteration: int) -> None:
        pass

    def save_checkpoint(self, iteration: int, state: dict[str, Any]) -> Path:
        return self.checkpoint_dir / f"ckpt_{iteration}.pt"


# --------------------------------------------------------------------------- the job


def run_job(
    run_dir: str | os.PathLike[str],
    *,
    should_stop: Callable[[], bool] | None = None,
    signals: tuple[int, ...] = (signal.SIGTERM,),
) -> str:
    """Run (or continue) the run in ``run_dir`` here, until done, cancelled or failed.

    Args:
        should_stop: also stop (checkpoint, "cancelled") when this returns True.
        signals: signals that request a stop (handled only on the main thread).

    Returns:
        The final state: "done", "cancelled" or "failed".

    Raises:
        UserError: another job holds the run.
    """
    run = Run(run_dir)
    requested = threading.Event()
    previous = _install_handlers(signals, requested)

    def stop() -> bool:
        return requested.is_set() or bool(should_stop and should_stop())

    try:
        if torchrun_size() > 1:
            return _run_distributed(run, stop)
        fd = _acquire(run)
        if fd is None:
            raise UserError(f"run {run.name!r} is running already in another process")
        try:
            return _run_locked(run, stop)
        finally:
            os.close(fd)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_distributed(run: Run, stop: Callable[[], bool]) -> str:
    """One rank of a torchrun job: rank 0 takes the lock and tells the others whether to train."""
    from boxnet_tui.model.inference import resolve_device
    from boxnet_tui.training import distributed

    config = run.config()
    world, _ = distributed.setup(resolve_device(config.device))
    if world.is_main:
        fd = _acquire(run)
        if fd is None:
            distributed.broadcast("locked", world)
            raise UserError(f"run {run.name!r} is running already in another process")
        try:
            state = _run_locked(run, stop, world)
        finally:
            os.close(fd)
    else:
        verdict = distributed.broadcast(None, world)
        if verdict == "locked":
            raise UserError(f"run {run.name!r} is running already in another process")
        try:
            if verdict != RUNNING:  # done or cancelled already: nothing to train
                state = verdict
            else:
                state = _train(_QuietRun(run.path), run.config(), stop, RunStatus(), world)
        except Cancelled:
            state = CANCELLED
        except UserError as error:
            print(f"boxnet-tui job (rank {world.rank}): {error}", file=sys.stderr)
            return FAILED
        except Exception:
            traceback.print_exc()  # torchrun shows it; rank 0 records the failure in the run
            return FAILED
    if state in (DONE, CANCELLED):
        # the others end only once rank 0 has written its last file: torchrun stops every
        # process as soon as one of them exits with an error code
        distributed.barrier(world)
    return state


def run_here(prepare: Callable[[], Run], device: str = "auto") -> tuple[Run, str]:
    """Make (or ready) a run with ``prepare`` and train it in this process until it ends.

    Under torchrun only rank 0 calls ``prepare`` (it writes files) and the other ranks are
    given its run; every rank then runs the job.

    Args:
        device: the run's device option, which picks the process group's backend.

    Returns:
        The run and its final state ("done", "cancelled" or "failed").
    """
    if torchrun_size() <= 1:
        run = prepare()
        return run, run_job(run.path)
    from boxnet_tui.model.inference import resolve_device
    from boxnet_tui.training import distributed

    world, _ = distributed.setup(resolve_device(device))
    if world.is_main:
        try:
            run = prepare()
        except BaseException as error:
            distributed.broadcast(("error", str(error)), world)
            raise
        distributed.broadcast(("ok", str(run.path)), world)
    else:
        kind, value = distributed.broadcast(None, world)
        if kind == "error":
            raise UserError(value)
        run = Run(value)
    return run, run_job(run.path)


def resume_here(name: str) -> tuple[Run, str]:
    """Continue an unfinished run in this process (every rank under torchrun)."""
    device = find_run(name).config().device
    return run_here(lambda: prepare_resume(name), device)


def _install_handlers(signals: tuple[int, ...], requested: threading.Event) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}

    def handler(signum: int, frame: object) -> None:
        requested.set()

    return {signum: signal.signal(signum, handler) for signum in signals}


def _acquire(run: Run) -> int | None:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        fd = run.lock()
        if fd is not None or time.monotonic() > deadline:
            return fd
        time.sleep(0.05)


def _run_locked(run: Run, stop: Callable[[], bool], world: Any = None) -> str:
    status = run.raw_status()
    verdict = RUNNING
    if status.state == DONE:
        run.log("the run is done already; nothing to do")
        verdict = DONE
    elif status.state == CANCELLED:
        run.log("the run was cancelled before it started")
        verdict = CANCELLED
    if world is not None:  # tell the other ranks whether to train
        from boxnet_tui.training import distributed

        distributed.broadcast(verdict, world)
    if verdict != RUNNING:
        return verdict
    status.state, status.error, status.phase = RUNNING, None, "preparing"
    status.pid, status.pid_start = os.getpid(), process_start(os.getpid())
    status.host = socket.gethostname()
    status.started = status.started or now_iso()
    run.write_status(status)
    ranks = f", {world.size} processes (torchrun)" if world is not None else ""
    run.log(f"job started (pid {os.getpid()}{ranks})")
    run.clean_temporary_checkpoints()  # of a job killed while it wrote one
    try:
        config = run.config()
        state = _train(run, config, stop, status, world)
    except Cancelled:
        run.log("cancelled")
        state = CANCELLED
        status.error = None
    except UserError as error:
        run.log(f"failed: {error}")
        state, status.error = FAILED, str(error)
    except Exception as error:
        run.log("failed:\n" + traceback.format_exc())
        first = (str(error).strip().splitlines() or [""])[0]
        state, status.error = FAILED, f"{type(error).__name__}: {first}".rstrip(": ")
    except BaseException as error:  # KeyboardInterrupt, SystemExit: record, then let it go on
        status.state, status.phase = FAILED, None
        status.error = f"interrupted ({type(error).__name__})"
        run.write_status(status)
        raise
    status.state, status.phase = state, None
    run.write_status(status)
    return state


def _train(
    run: Run,
    config: RunConfig,
    stop: Callable[[], bool],
    status: RunStatus,
    world: Any = None,
) -> str:
    """Prepare, train, checkpoint, and (rank 0) calibrate, save and check the held-out one.

    Under torchrun every rank runs this with the same arguments (the others with a
    :class:`_QuietRun`); their collective steps happen at the same points on all ranks.
    """
    import numpy as np
    import torch

    from boxnet_tui.model.inference import resolve_device
    from boxnet_tui.model.store import find_model, load_model
    from boxnet_tui.training import distributed
    from boxnet_tui.training.export import training_extent
    from boxnet_tui.training.loop import LogLine, make_optimizer, train

    world = world or distributed.World()
    device = resolve_device(config.device)
    if world.distributed:
        _, device = distributed.setup(device)  # joined already; gives cuda:LOCAL_RANK

    def prepare() -> tuple:
        run.log(f"preparing examples: {config.folder}, positives {Path(config.positives).name}")
        extent = training_extent(
            config.folder,
            config.positives,
            pixel_size=config.pixel_size,
            micrographs=config.micrographs,
        )
        scale = find_model(config.base).scale.retrained(config.diameter, extent)
        examples = list(collect_new(config, scale))
        if not examples:
            raise UserError(f"{config.positives}: no curated micrographs match these picks")
        held = choose_held_out(examples) if config.hold_out else None
        training = [e for e in examples if e.name != held] if held else examples
        names = [e.name for e in training]
        warp = _examples_at_8_angstrom(run, config, names) if world.is_main else None
        old = (
            load_public_set(config.public_set, scale, train_masking=config.train_masking)
            if config.public_set
            else None
        )
        run.log(
            f"{len(training)} micrograph(s) to train on"
            + f" at {_scale_words(scale.pixels_per_diameter)}"
            + (f", {held} held out for a check" if held else "")
            + (f", {len(old)} public example(s)" if old is not None else "")
        )
        if stop():
            raise Cancelled
        network, base_info = load_model(config.base, device)
        return held, training, old, network, base_info, scale, run.load_checkpoint(), warp

    try:
        held, training, old, network, base_info, scale, checkpoint, warp = distributed.together(
            prepare, world
        )
    except distributed.RankFailed as error:
        if error.kind == Cancelled.__name__:
            raise Cancelled from None
        raise UserError(str(error)) from None
    if checkpoint is not None and config.iterations is None:
        iterations = int(checkpoint["iterations"])
    else:
        iterations = config.iterations or config.default_iterations(len(training))
    train_config = config.train_config(iterations)
    optimizer = make_optimizer(network, train_config)
    # every rank its own streams (rank 0's are those of a single process)
    rng = np.random.default_rng(config.seed + world.rank)
    start, elapsed = 0, 0.0
    if checkpoint is not None:
        # a checkpoint without the key is older: those versions retrained at the base's scale
        trained_at = checkpoint.get("pixels_per_diameter", base_info.scale.pixels_per_diameter)
        if trained_at != scale.pixels_per_diameter:
            raise UserError(
                f"run {run.name}: its checkpoint was trained at {_scale_words(trained_at)}, "
                f"this version retrains at {_scale_words(scale.pixels_per_diameter)}; start a "
                "new run"
            )
        network.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        _restore_streams(run, checkpoint, rng, world, config.seed)
        start, elapsed = int(checkpoint["iteration"]), float(checkpoint.get("elapsed", 0.0))
        names = [e.name for e in training]
        if checkpoint.get("examples") not in (None, names):
            run.log("warning: the curated micrographs changed since the checkpoint")
        run.log(f"resumed from checkpoint at iteration {start}/{iterations}")
    else:
        torch.manual_seed(config.seed + world.rank)
    run.truncate_metrics(start)
    status.iteration, status.iterations, status.phase = start, iterations, "training"
    run.write_status(status)
    processes = f", {world.size} processes" if world.distributed else ""
    run.log(
        f"training {config.base} -> {config.name} on {device}{processes}: iterations "
        f"{start}..{iterations}, batch {config.batch_size}, crop {config.crop}, "
        f"{config.optimizer} lr {config.lr:g}"
    )

    last_checkpoint = start
    last_losses: dict[str, float | None] = {"new": None, "old": None}
    stopped_at: list[int] = []

    def streams() -> dict[str, Any]:
        return {
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        }

    def write_checkpoint(iteration: int, seconds: float) -> None:
        """Write a checkpoint (rank 0), with every rank's random streams (a collective)."""
        ranks = distributed.gather(streams(), world)
        state = {
            "iteration": iteration,
            "iterations": iterations,
            "model": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "numpy_rng": ranks[0]["numpy_rng"],
            "torch_rng": ranks[0]["torch_rng"],
            # under torchrun rank 0's own GPU only: all of them would open a context on each
            "cuda_rng": ranks[0]["cuda_rng"]
            if world.distributed or device.type != "cuda"
            else torch.cuda.get_rng_state_all(),
            "elapsed": seconds,
            "examples": [e.name for e in training],
            "base": config.base,
            "pixels_per_diameter": scale.pixels_per_diameter,
        }
        if world.distributed:
            state["ranks"] = ranks
        run.save_checkpoint(iteration, state)

    def on_log(line: LogLine) -> None:
        nonlocal last_checkpoint
        seconds = elapsed + line.time
        loss_new = line.loss_new if line.loss_new == line.loss_new else None
        last_losses["new"], last_losses["old"] = loss_new, line.loss_old
        run.append_metrics(
            {
                "iteration": line.iteration,
                "loss_new": loss_new,
                "loss_old": line.loss_old,
                "lr": line.lr,
                "time": round(seconds, 3),
            }
        )
        rate = (line.iteration - start) / line.time if line.time > 0 else 0.0
        old_text = f"  old {line.loss_old:.4f}" if line.loss_old is not None else ""
        new_text = f"{loss_new:.4f}" if loss_new is not None else "-"
        run.log(
            f"iteration {line.iteration}/{iterations}  loss new {new_text}{old_text}  "
            f"lr {line.lr:.2e}  {rate:.2f} it/s"
        )
        if line.iteration - last_checkpoint >= config.checkpoint_every or (
            line.iteration == iterations
        ):
            write_checkpoint(line.iteration, seconds)
            last_checkpoint = line.iteration
        status.iteration = line.iteration
        run.write_status(status)

    began = time.perf_counter()
    train(
        network,
        training,
        old,
        train_config,
        device=device,
        start_iteration=start,
        optimizer=optimizer,
        rng=rng,
        on_log=on_log,
        should_stop=stop,
        on_stop=stopped_at.append,
    )
    seconds = elapsed + time.perf_counter() - began
    if stopped_at:
        reached = stopped_at[0]
        if reached > last_checkpoint:
            write_checkpoint(reached, seconds)
        status.iteration = reached
        run.log(f"stopped at iteration {reached}/{iterations}; checkpoint written")
        raise Cancelled
    if last_checkpoint < iterations:
        write_checkpoint(iterations, seconds)
    status.iteration, status.phase = iterations, "saving"
    run.write_status(status)
    if not world.is_main:
        distributed.barrier(world)  # while rank 0 calibrates, saves and checks
        return DONE
    try:
        _finish(
            run,
            config,
            stop,
            status,
            training,
            held,
            network,
            base_info,
            scale,
            device,
            seconds,
            iterations,
            last_losses,
            warp,
        )
    finally:
        distributed.barrier(world)
    return DONE


def _restore_streams(run: Run, checkpoint: dict[str, Any], rng: Any, world: Any, seed: int) -> None:
    """This rank's random streams from a checkpoint (fresh ones if it had no such rank)."""
    import numpy as np
    import torch

    ranks = checkpoint.get("ranks")
    if ranks is not None and world.rank < len(ranks):
        mine = ranks[world.rank]
    elif world.rank == 0:
        mine = checkpoint
    else:
        mine = None
    if (len(ranks) if ranks is not None else 1) != world.size:
        run.log("warning: the number of processes changed since the checkpoint")
    if mine is None:
        fresh = np.random.default_rng([seed, world.rank, int(checkpoint["iteration"])])
        rng.bit_generator.state = fresh.bit_generator.state
        torch.manual_seed(seed + world.rank + int(checkpoint["iteration"]))
        return
    rng.bit_generator.state = mine["numpy_rng"]
    torch.set_rng_state(mine["torch_rng"])
    cuda = mine.get("cuda_rng")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, list | tuple):  # a single process saves every GPU's
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda)


def _finish(
    run: Run,
    config: RunConfig,
    stop: Callable[[], bool],
    status: RunStatus,
    training: list,
    held: str | None,
    network: Any,
    base_info: Any,
    scale: Any,
    device: Any,
    seconds: float,
    iterations: int,
    last_losses: dict[str, float | None],
    warp_examples: list | None,
) -> None:
    """Calibrate the threshold, save the model, leave its examples in Warp's format beside
    the micrographs and check the held-out micrograph, all at the new model's input
    ``scale`` (the one its examples were made at)."""
    summary = {
        "run": run.name,
        RUN_PATH: str(run.path),
        "folder": config.folder,
        "positives": config.positives,
        "diameter": config.diameter,
        "iterations": iterations,
        "examples": [e.name for e in training],
        "held_out": held,
        "public_set": config.public_set,
        "train_masking": config.train_masking,
        TRAINED_INVERTED: config.invert,  # a pick with the model inverts by default
        "optimizer": config.optimizer,
        "lr": config.lr,
        "final_loss_new": last_losses["new"],
        "final_loss_old": last_losses["old"],
        "seconds": round(seconds, 1),
    }
    threshold = _calibrate(run, config, training, network, device, scale)
    summary["threshold"] = threshold
    _save(run, config, network, base_info, scale, summary, threshold)
    if warp_examples:
        _write_examples_file(run, config, warp_examples)
    if held is not None:
        if stop():
            run.log("held-out check skipped: cancel requested after the model was saved")
        else:
            status.phase = "evaluating"
            run.write_status(status)
            record = held_out_check(config, held, network, device, threshold, scale)
            run.append_metrics({"heldout": record})
            run.log(_format_heldout(record))
    run.log(f"done: model {config.name} saved")


def _examples_at_8_angstrom(run: Run, config: RunConfig, names: list[str]) -> list | None:
    """The examples of the micrographs trained on (``names``; not the held-out one) at 8 Å/px,
    as Warp's example TIFF holds them, made from the same picks as the run's own; written by
    :func:`_write_examples_file` once the model is saved (a run that fails or is cancelled
    leaves none). None where there is nothing to write: the file exists already, or the
    micrographs could not be read again (a line in the log, not the run's failure)."""
    from boxnet_tui.io.examples import examples_path
    from boxnet_tui.training.export import collect_examples

    out = examples_path(config.folder, config.name)
    if out.exists():
        _log_not_replaced(run, out)
        return None
    options = {**_example_options(config), "micrographs": names}  # thresholds as trained
    try:
        # the junk class where a mask exists, as Warp's export writes it
        return collect_examples(
            config.folder, config.positives, config.diameter, junk_where_masked=True, **options
        )
    except (UserError, OSError) as error:
        run.log(f"warning: training examples not written to {out}: {error}")
        return None


def _log_not_replaced(run: Run, out: Path) -> None:
    run.log(f"training examples not written: {out} exists (not replaced)")


def _write_examples_file(run: Run, config: RunConfig, examples: list) -> None:
    """``boxnet2training/<name>.tif`` (Warp 2: boxnet3training), as Warp's retraining leaves
    it: a corpus for later runs, in Warp or here. A file of that name is never replaced, and
    a folder that cannot be written costs a line in the log, not the model."""
    from boxnet_tui.io.examples import examples_path, write_examples

    out = examples_path(config.folder, config.name)
    try:
        write_examples(out, examples, replace=False)
    except FileExistsError:
        _log_not_replaced(run, out)
        return
    except (UserError, OSError) as error:
        run.log(f"warning: training examples not written to {out}: {error}")
        return
    run.log(f"training examples of {len(examples)} micrograph(s) written to {out} (Warp's format)")


def _scale_words(pixels_per_diameter: float | None) -> str:
    if pixels_per_diameter is None:
        return "Warp's 8 Å/px"
    return f"{pixels_per_diameter:g} px a diameter"


def _calibrate(
    run: Run, config: RunConfig, training: list, network: Any, device: Any, scale: Any
) -> float | None:
    """The new model's default threshold: the middle of the near-best F1 plateau on its own
    training micrographs."""
    from boxnet_tui.model.calibration import (
        RETRAINED_PLATEAU,
        calibrate_threshold,
        items_for_examples,
    )

    network_pixel = scale.pixel_size(config.diameter)
    if config.thresholds:
        items = _shown_items(config, training, network_pixel)
    else:
        items = items_for_examples(
            training, config.folder, config.positives, config.diameter, network_pixel
        )
    if not items:
        return None
    network.eval()
    threshold, f1 = calibrate_threshold(network, items, device=device, tolerance=RETRAINED_PLATEAU)
    run.log(f"default threshold {threshold:.2f} (F1 {f1:.3f} on the training micrographs)")
    return threshold


def _shown_items(config: RunConfig, training: list, network_pixel: float) -> list:
    """Calibration items of the training examples with the picks shown at their display
    thresholds (as they were labelled), not every pick of the file."""
    from boxnet_tui.io.layout import match_suffix, pick_file_name
    from boxnet_tui.io.micrographs import read_info, scan_folder
    from boxnet_tui.io.star import read_picks
    from boxnet_tui.model.calibration import item_for_example

    paths = {path.stem: path for path in scan_folder(config.folder)}
    _, suffix = match_suffix(config.positives, paths)
    thresholds = config.thresholds or {}
    items = []
    for example in training:
        if example.name not in paths:
            continue
        star = Path(config.positives).parent / pick_file_name(example.name, suffix)
        picks = read_picks(star).above(thresholds.get(example.name, 0.0))
        shape = read_info(paths[example.name]).shape
        items.append(item_for_example(example, shape, picks, config.diameter, network_pixel))
    return items


def _save(
    run: Run,
    config: RunConfig,
    network: Any,
    base_info: Any,
    scale: Any,
    summary: dict,
    threshold: float | None = None,
) -> None:
    from boxnet_tui.model.network import place
    from boxnet_tui.model.store import ModelInfo, find_model, models_dir, save_model

    if (models_dir() / config.name / "model.json").is_file():
        existing = find_model(str(models_dir() / config.name))
        if existing.training.get(RUN_PATH) == str(run.path):
            run.log(f"model {config.name} was saved by this run before; kept")
            return
    device = next(network.parameters()).device
    info = ModelInfo(
        config.name,
        base_info.architecture,
        pixel_size=base_info.pixel_size,
        has_mask=base_info.has_mask or config.train_masking,
        threshold=threshold,
        parent=base_info.name,
        training=summary,
        scale=scale,
    )
    save_model(network.to("cpu"), info)
    place(network, device)


# --------------------------------------------------------------------------- held-out check


def held_out_check(
    config: RunConfig,
    held: str,
    network: Any,
    device: Any,
    threshold: float | None,
    scale: Any,
) -> dict[str, Any]:
    """Pick the held-out micrograph with the new and the base model, each at its own default
    threshold and input scale (the new one's: ``scale``; a generic base's as its scale check on
    the folder chooses, as a pick of the folder with it would); score both against its curated
    picks (match radius: half the diameter)."""
    from boxnet_tui.batch_picking import (
        PickSettings,
        check_scale,
        default_threshold,
        load_picker,
        pick_prepared,
        prepare,
    )
    from boxnet_tui.evaluate import score_picks, sweep_thresholds
    from boxnet_tui.io.layout import match_suffix, pick_file_name
    from boxnet_tui.io.micrographs import scan_folder
    from boxnet_tui.io.star import read_picks

    paths = {path.stem: path for path in scan_folder(config.folder)}
    if held not in paths:
        return {"micrograph": held, "error": f"no micrograph {held} in {config.folder}"}
    _, suffix = match_suffix(config.positives, paths)
    reference = read_picks(Path(config.positives).parent / pick_file_name(held, suffix))
    reference = reference.above((config.thresholds or {}).get(held, 0.0))  # the picks shown
    # the micrograph as the run's examples saw it (inverted for negative stain or not), for
    # both models: they are compared on the same images
    settings = PickSettings(
        diameter=config.diameter, pixel_size=config.pixel_size, invert=config.invert
    )
    base_picker = check_scale(
        load_picker(config.base, settings, device=str(device)), list(paths.values())
    )
    base, base_info = base_picker.network, base_picker.info
    scales = {"new": scale, "base": base_picker.scale}
    # once per distinct scale: a retrained Warp model sees what its base sees
    by_scale = {each: prepare(paths[held], settings, each) for each in set(scales.values())}
    prepared = {key: by_scale[each] for key, each in scales.items()}
    radius = config.diameter / 2 / (prepared["base"].pixel_size / prepared["base"].scale)
    thresholds = {
        "new": threshold if threshold is not None else default_threshold(base_info),
        "base": default_threshold(base_info),
    }
    record: dict[str, Any] = {
        "micrograph": held,
        "reference": len(reference),
        "radius": radius,
        "threshold": thresholds["new"],
        "base_threshold": thresholds["base"],
        "base_scale_factor": base_picker.settings.scale_factor,
    }
    network.eval()
    for key, model in (("new", network), ("base", base)):
        chosen = replace(settings, threshold=thresholds[key])
        picks = pick_prepared(model, prepared[key], chosen, device).picks
        assert picks is not None
        score = score_picks(picks, reference, radius)
        sweep = sweep_thresholds([(picks, reference)], radius)
        record[key] = {
            "precision": score.precision,
            "recall": score.recall,
            "f1": score.f1,
            "picks": score.n_picks,
            "tp": score.tp,
            "best_f1": sweep.best_f1 if sweep is not None else score.f1,
            "average_precision": sweep.average_precision if sweep is not None else None,
        }
    return record


def _format_heldout(record: dict[str, Any]) -> str:
    from boxnet_tui.run_monitor import heldout_lines  # the one formatter of the check

    return "\n".join(heldout_lines(record))


# --------------------------------------------------------------------------- program


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m boxnet_tui.training.job RUN_DIR", file=sys.stderr)
        return 2
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # outlive a terminal even in the foreground
    keep_freed_memory()
    try:
        state = run_job(args[0], signals=(signal.SIGTERM, signal.SIGINT))
    except UserError as error:
        print(f"boxnet-tui job: {error}", file=sys.stderr)
        return 1
    return 0 if state in (DONE, CANCELLED) else 1


if __name__ == "__main__":
    raise SystemExit(main())
