"""The run store: one folder a retraining run, ``$BOXNET_TUI_HOME/runs/<Name>/``.

```
config.json     every option of the run (RunConfig), written once at creation
status.json     {"state", "pid", "iteration", "iterations", "started", "updated", "error", ...},
                rewritten atomically at every log step
metrics.jsonl   one JSON object a line: {"iteration", "loss_new", "loss_old", "lr", "time"} per
                logged step, then {"heldout": {...}} at the end; appended with one write + fsync
log.txt         human-readable log; the detached job's stdout and stderr go here too
checkpoints/    ckpt_<iteration>.pt (model, optimiser, numpy and torch RNG states), last two kept
lock            held (flock) by the job for as long as it lives: how a run is known to be alive
```
A run is trained by its own process (:mod:`boxnet_tui.training.job`), started in a new session
so that closing the terminal or losing SSH never stops it. This module never imports torch at
import time: listing runs and reading their state is cheap.

States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``. A ``running`` (or
started ``queued``) run whose process is gone reads as ``stale`` in
:attr:`RunStatus.effective_state`; it can be resumed from its last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import re
import reprlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.io.atomic import atomic_write_text, atomic_write_with
from boxnet_tui.names import check_model_name, check_path_name
from boxnet_tui.paths import runs_dir

CONFIG = "config.json"
STATUS = "status.json"
METRICS = "metrics.jsonl"
LOG = "log.txt"
LOCK = "lock"
CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2

QUEUED, RUNNING, DONE, FAILED, CANCELLED, STALE = (
    "queued",
    "running",
    "done",
    "failed",
    "cancelled",
    "stale",
)
STATES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINAL_STATES = (DONE, FAILED, CANCELLED)
OPTIMIZERS = ("adamw", "sgd")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_CHECKPOINT_PATTERN = re.compile(r"^ckpt_(\d+)\.pt$")

# Children started by this process: held so that they are not reported as leaked, and reaped.
_children: list[subprocess.Popen] = []


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- config


@dataclass
class RunConfig:
    """Every option of a run, so that it can be resumed or repeated.

    Paths are stored absolute. ``iterations`` None means Warp's rule: 100 per curated
    micrograph trained on, twice that with the public set. ``micrographs`` lists the roots of
    the micrographs the run takes (chosen when it is made: the curated ones, or all), and
    ``thresholds`` their display thresholds (picks below are no positives); a run made before
    these were recorded (None) takes what the folder's curation state says when it prepares.
    The fields from ``batch_size`` to ``particle_fraction`` (and ``seed``, ``iterations``) are
    :class:`TrainConfig`'s, with its defaults.
    """

    name: str
    folder: str
    positives: str
    base: str = "BoxNetMask"
    diameter: float = 200.0
    extra_important: str | None = None
    uncertain: str | None = None
    public_set: str | None = None
    train_masking: bool = False
    pixel_size: float | None = None
    iterations: int | None = None
    device: str = "auto"
    hold_out: bool = True
    micrographs: list[str] | None = None
    thresholds: dict[str, float] | None = None
    seed: int = 0
    checkpoint_every: int = 100
    batch_size: int = 8
    crop: int = 256
    optimizer: str = "adamw"
    lr: float = 1e-3
    lr_end: float = 1e-5
    weight_decay: float = 1e-4
    log_every: int = 10
    particle_fraction: float = 0.3
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        """From ``config.json``'s object; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def train_config(self, iterations: int) -> Any:
        """The :class:`~boxnet_tui.training.loop.TrainConfig` of this run (imports torch)."""
        from boxnet_tui.training.loop import TrainConfig

        return TrainConfig(
            iterations=iterations,
            batch_size=self.batch_size,
            crop=self.crop,
            optimizer=self.optimizer,
            lr=self.lr,
            lr_end=self.lr_end,
            weight_decay=self.weight_decay,
            seed=self.seed,
            log_every=self.log_every,
            particle_fraction=self.particle_fraction,
        )

    def default_iterations(self, n_micrographs: int) -> int:
        """Warp's rule: 100 iterations per new micrograph, twice that with the public set."""
        return max(1, n_micrographs) * 100 * (2 if self.public_set else 1)


def _absolute(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def validate_config(config: RunConfig) -> RunConfig:
    """Check every option and make the paths absolute; one-line UserError on the first problem."""
    from boxnet_tui.model.store import find_model
    from boxnet_tui.picking import check_diameter

    check_model_name(config.name)
    folder = Path(config.folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    for what, value in (
        ("positives", config.positives),
        ("extra important", config.extra_important),
        ("uncertain", config.uncertain),
    ):
        if value is not None and not Path(value).expanduser().is_file():
            raise UserError(f"{value}: no such STAR file ({what})")
    if config.public_set is not None:
        public = Path(config.public_set).expanduser()
        if not public.is_dir():
            raise UserError(f"{public}: no such folder (public set)")
        if not public_set_files(public):
            raise UserError(f"{public}: no example files (*.tif) in the public set folder")
    check_diameter(float(config.diameter))
    find_model(config.base)
    if config.pixel_size is not None and not (
        math.isfinite(config.pixel_size) and config.pixel_size > 0
    ):
        raise UserError(f"pixel size must be a positive number of Å, got {config.pixel_size}")
    for what, value, low in (
        ("iterations", config.iterations, 1),
        ("checkpoint every", config.checkpoint_every, 1),
        ("batch size", config.batch_size, 1),
        ("crop", config.crop, 8),
        ("log every", config.log_every, 1),
    ):
        if value is None and what == "iterations":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{what} must be a whole number of at least {low}, got {value!r}")
    if config.micrographs is not None and not config.micrographs:
        raise UserError("no micrographs to train on")
    if not DEVICE_PATTERN.match(config.device):
        raise UserError(f"device {config.device!r}: use auto, cpu, cuda, cuda:N or mps")
    if config.optimizer not in OPTIMIZERS:
        raise UserError(f"optimizer {config.optimizer!r}: use {' or '.join(OPTIMIZERS)}")
    if not (config.lr > 0 and config.lr_end > 0):
        raise UserError("learning rates must be positive")
    config.folder = str(folder.resolve())
    config.positives = str(_absolute(config.positives))
    config.extra_important = _absolute(config.extra_important)
    config.uncertain = _absolute(config.uncertain)
    config.public_set = _absolute(config.public_set)
    config.diameter = float(config.diameter)
    return config


def public_set_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The example TIFFs of a public set folder, sorted by name."""
    folder = Path(folder)
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".tif", ".tiff") and p.is_file()
    )


# --------------------------------------------------------------------------- status


@dataclass
class RunStatus:
    """What ``status.json`` holds; ``effective_state`` is derived when it is read."""

    state: str = QUEUED
    pid: int | None = None
    iteration: int = 0
    iterations: int | None = None
    started: str | None = None
    updated: str | None = None
    error: str | None = None
    phase: str | None = None  # what a running job is doing: "preparing", "training", ...
    pid_start: int | None = None  # the process's start time (/proc), against pid reuse
    host: str | None = None  # where the process runs (the home may be shared)
    effective_state: str = QUEUED

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["effective_state"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStatus:
        """From ``status.json``'s object. A value of the wrong type or beyond sense (and an
        unknown key) is dropped, so that its field keeps the default: a damaged file never
        crashes whoever shows the run."""
        status = cls()
        for key, value in data.items():
            check = _STATUS_CHECKS.get(key)
            if check is not None and check(value):
                setattr(status, key, value)
        status.effective_state = status.state
        return status

    @property
    def active(self) -> bool:
        """Queued or running, with (as far as can be told) a live process or one to come."""
        return self.effective_state in (QUEUED, RUNNING)

    @property
    def fraction(self) -> float:
        return self.iteration / self.iterations if self.iterations else 0.0


def _whole(low: int, high: int = 2**63 - 1, optional: bool = False) -> Any:
    def check(value: Any) -> bool:
        if optional and value is None:
            return True
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return check


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


_STATUS_CHECKS = {
    "state": lambda value: isinstance(value, str) and value in STATES,
    "pid": _whole(1, 2**31 - 1, optional=True),  # a pid ever signalled: never 0 or -1
    "iteration": _whole(0),
    "iterations": _whole(0, optional=True),
    "started": _text,
    "updated": _text,
    "error": _text,
    "phase": _text,
    "pid_start": _whole(0, optional=True),
    "host": _text,
}


# --------------------------------------------------------------------------- JSON lines


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line crash-safely: a single write on an O_APPEND fd, then fsync.

    A kill can at worst leave a torn last line, which readers skip.
    """
    data = (_dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        while written < len(data):  # only for enormous lines; still one line
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(_finite(record), separators=(", ", ": "))


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def read_jsonl(path: str | os.PathLike[str], offset: int = 0) -> tuple[list[dict], int]:
    """The complete lines of a JSON-lines file from byte ``offset``, and the offset after them.

    A last line without its newline (being written, or torn by a kill) is not consumed; lines
    that are not JSON objects are skipped. To tail a file, call again with the returned
    offset; if the file became shorter than the offset (rewritten on resume), start at 0.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return parse_json_lines(data[:end]), offset + end


STEP_NUMBERS = ("loss_new", "loss_old", "lr", "time")


def check_metrics_record(record: dict[str, Any]) -> str | None:
    """Why a ``metrics.jsonl`` record cannot be shown, or None where it can (completed).

    A step line has a whole ``iteration``, and each of :data:`STEP_NUMBERS` is a number or
    null (a NaN loss is written as null); those missing are set to None here, so that a
    reader may index them. A held-out line holds an object.
    """
    if "heldout" in record:
        if "iteration" in record:  # each reader must take it for the same kind of line
            return "both a step and a held-out line"
        return None if isinstance(record["heldout"], dict) else "heldout is not an object"
    if "iteration" not in record:
        return "neither a step nor a held-out line"
    if not _whole(0)(record["iteration"]):
        return f"iteration {reprlib.repr(record['iteration'])} is not a whole number"
    for key in STEP_NUMBERS:
        value = record.setdefault(key, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{key} {reprlib.repr(value)} is not a number"
    return None


def parse_json_lines(data: bytes) -> list[dict[str, Any]]:
    """The JSON objects among ``data``'s lines; anything else (a torn line) is skipped."""
    records = []
    for raw in data.splitlines():
        try:
            record = json.loads(raw)
        except (RecursionError, ValueError):  # not JSON, not UTF-8, nested beyond reason
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


# --------------------------------------------------------------------------- processes


def _process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def is_alive(pid: int | None, start: int | None = None) -> bool:
    """Whether process ``pid`` exists (and is no zombie; started at ``start`` if given)."""
    if not pid or pid <= 0:
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child that has exited: reap it
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _is_zombie(pid):
        return False
    if start is not None:
        actual = _process_start(pid)
        if actual is not None and actual != start:
            return False  # the pid was reused by another process
    return True


# --------------------------------------------------------------------------- the run


class Run:
    """One run folder. Cheap to make; every method reads the files afresh."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.skipped_metrics: list[str] = []  # notes on the bad lines the last read skipped

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS

    # config -----------------------------------------------------------------

    def config(self) -> RunConfig:
        path = self.path / CONFIG
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError("not a JSON object")
            config = RunConfig.from_json(data)
            check_model_name(config.name)  # the model is saved under it
            return config
        except FileNotFoundError:
            raise UserError(f"{self.path}: not a run folder (no {CONFIG})") from None
        except UserError as error:
            raise UserError(f"{path}: {error}") from None
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise UserError(f"{path}: unreadable run configuration ({error})") from None

    # status -----------------------------------------------------------------

    def raw_status(self) -> RunStatus:
        """``status.json`` as written (``effective_state`` = ``state``)."""
        try:
            data = json.loads((self.path / STATUS).read_text())
            if isinstance(data, dict):
                return RunStatus.from_json(data)
        except (OSError, RecursionError, TypeError, ValueError):
            pass
        return RunStatus()

    def status(self) -> RunStatus:
        """The status, with ``effective_state`` "stale" for a run whose process is gone."""
        status = self.raw_status()
        if status.state == RUNNING:
            gone = not self.job_alive(status)
        elif status.state == QUEUED and status.pid is not None:  # started, not yet running
            gone = not self.job_alive(status) and not self._pid_alive(status)
        else:
            gone = False
        if gone:
            status.effective_state = STALE
        return status

    def write_status(self, status: RunStatus) -> RunStatus:
        status.updated = now_iso()
        atomic_write_text(self.path / STATUS, json.dumps(status.to_json(), indent=1) + "\n")
        status.effective_state = status.state
        return status

    def update_status(self, **changes: Any) -> RunStatus:
        status = self.raw_status()
        for key, value in changes.items():
            setattr(status, key, value)
        return self.write_status(status)

    # liveness ---------------------------------------------------------------

    def lock(self) -> int | None:
        """Take the run's lock for this process (the job does); the fd, or None if held."""
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def job_alive(self, status: RunStatus | None = None) -> bool:
        """Whether a live job holds this run: the lock is held and, where it can be told (same
        host), the process in the status is alive (a lock may outlive a killed process for
        a moment while the kernel releases it)."""
        if not self.is_locked():
            return False
        status = status or self.raw_status()
        return status.pid is None or self._pid_alive(status)

    @staticmethod
    def _pid_alive(status: RunStatus) -> bool:
        if status.pid is None:
            return False
        if status.host is not None and status.host != socket.gethostname():
            return True  # another machine's process: trust the lock
        return is_alive(status.pid, status.pid_start)

    def is_locked(self) -> bool:
        """Whether a live job holds the run's lock (released by the kernel when it dies)."""
        try:
            fd = os.open(self.path / LOCK, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's own lock, if it got one
        return False

    # metrics and log --------------------------------------------------------

    def metrics(self) -> list[dict]:
        """Every complete line of ``metrics.jsonl`` (a torn last line is skipped); see
        :meth:`read_metrics` for the lines skipped and their notes."""
        return self.read_metrics()[0]

    def read_metrics(self, offset: int = 0) -> tuple[list[dict], int]:
        """Lines from byte ``offset`` on, and the new offset: for tailing (:func:`read_jsonl`).

        Only step lines and held-out lines of the right types are returned (see
        :func:`check_metrics_record`); each line skipped leaves a one-line note in
        :attr:`skipped_metrics` (those of the last read).
        """
        records, end = read_jsonl(self.path / METRICS, offset)
        good = []
        self.skipped_metrics = []
        for record in records:
            problem = check_metrics_record(record)
            if problem is None:
                good.append(record)
            else:
                self.skipped_metrics.append(f"{self.path / METRICS}: a line skipped ({problem})")
        return good, end

    def losses(self) -> list[dict]:
        """The per-step lines only (those with an ``iteration``)."""
        return [m for m in self.metrics() if "iteration" in m]

    def heldout(self) -> dict | None:
        """The held-out check written at the end, if any."""
        found = [m["heldout"] for m in self.metrics() if "heldout" in m]
        return found[-1] if found else None

    def truncate_metrics(self, iteration: int) -> None:
        """Keep only the step lines up to ``iteration`` (a resume point), dropping a torn tail,
        lines logged after the checkpoint and any held-out line; rewritten atomically."""
        path = self.path / METRICS
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        kept = [
            m
            for m in read_jsonl(path)[0]
            if isinstance(m.get("iteration"), int) and m["iteration"] <= iteration
        ]
        text = "".join(_dumps(m) + "\n" for m in kept)
        if text.encode("utf-8") != data:
            atomic_write_text(path, text)

    def append_metrics(self, record: dict[str, Any]) -> None:
        append_jsonl(self.path / METRICS, record)

    def log(self, text: str) -> None:
        """Append timestamped lines to ``log.txt`` (one write)."""
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        lines = "".join(f"{stamp}  {line}\n" for line in text.rstrip("\n").split("\n"))
        fd = os.open(self.path / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, lines.encode("utf-8"))
        finally:
            os.close(fd)

    def tail_log(self, n: int = 20) -> list[str]:
        """The last ``n`` lines of ``log.txt`` (reads only the end of the file)."""
        if n <= 0:
            return []
        try:
            with open(self.path / LOG, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                block, data = 8192, b""
                while size > 0 and data.count(b"\n") <= n:
                    step = min(block, size)
                    size -= step
                    handle.seek(size)
                    data = handle.read(step) + data
                    block *= 2
        except FileNotFoundError:
            return []
        lines = data.decode("utf-8", errors="replace").splitlines()
        return lines[-n:]

    # checkpoints ------------------------------------------------------------

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(iteration, path) of every checkpoint, oldest first."""
        found = []
        try:
            entries = list(os.scandir(self.checkpoint_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            match = _CHECKPOINT_PATTERN.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def save_checkpoint(self, iteration: int, state: dict[str, Any]) -> Path:
        """Write ``ckpt_<iteration>.pt`` atomically (torch.save of ``state``); keep the last two."""
        import torch

        path = self.checkpoint_dir / f"ckpt_{iteration}.pt"
        atomic_write_with(path, lambda tmp: torch.save(state, tmp))
        for old_iteration, old in self.checkpoints()[:-KEEP_CHECKPOINTS]:
            if old_iteration != iteration:
                old.unlink(missing_ok=True)
        return path

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The newest readable checkpoint (an unreadable one is skipped), or None."""
        import torch

        for iteration, path in reversed(self.checkpoints()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:
                self.log(f"checkpoint {path.name} unreadable ({error}); trying an older one")
                continue
            if isinstance(state, dict):
                state.setdefault("iteration", iteration)
                return state
        return None


# --------------------------------------------------------------------------- the store


def run_path(name: str) -> Path:
    return runs_dir() / name


def create_run(config: RunConfig) -> Run:
    """Make a new run folder (state queued); nothing is started.

    Raises:
        UserError: a bad option, a bad name, or a run or model of that name exists already.
    """
    from boxnet_tui.model.store import models_dir, shipped_models_dir

    config = validate_config(config)
    if (models_dir() / config.name).exists() or (shipped_models_dir() / config.name).exists():
        raise UserError(f"a model named {config.name!r} exists already; choose another name")
    if config.name == Path(config.base).name:
        raise UserError(f"the new model needs a name of its own, not the base's ({config.base})")
    path = run_path(config.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        raise UserError(
            f"a run named {config.name!r} exists already; choose another name"
        ) from None
    config.created = config.created or now_iso()
    run = Run(path)
    atomic_write_text(path / CONFIG, json.dumps(config.to_json(), indent=1) + "\n")
    run.write_status(RunStatus())
    return run


def list_runs() -> list[Run]:
    """Every run, newest first."""
    root = runs_dir()
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        config = entry / CONFIG
        if entry.is_dir() and config.is_file():
            try:
                created = str(json.loads(config.read_text()).get("created", ""))
            except (OSError, json.JSONDecodeError, AttributeError):
                created = ""
            found.append((created, config.stat().st_mtime, Run(entry)))
    found.sort(key=lambda item: (item[0], item[1], item[2].name), reverse=True)
    return [run for _, _, run in found]


def find_run(name: str) -> Run:
    """A run by name (or by the path of its folder).

    Raises:
        UserError: no such run, naming the runs there are.
    """
    if os.sep in name:
        path = Path(name).expanduser()
        if (path / CONFIG).is_file():
            return Run(path)
        raise UserError(f"{path}: not a run folder")
    path = run_path(check_path_name(name, "run name"))
    if (path / CONFIG).is_file():
        return Run(path)
    names = ", ".join(run.name for run in list_runs()) or "none"
    raise UserError(f"no run named {name!r} (runs: {names})")


def job_command(run: Run) -> list[str]:
    # -P: the job's working folder (the run's) is not put on sys.path, so a module planted
    # there (bisect.py) is never imported; unlike -I it keeps PYTHONPATH and the user site.
    return [sys.executable, "-P", "-m", "boxnet_tui.training.job", str(run.path)]


def job_environment() -> dict[str, str]:
    """This environment, with relative PYTHONPATH entries made absolute: in the job they
    would name folders under the run's folder, not the ones meant here."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        entries = [_absolute_entry(entry) for entry in env["PYTHONPATH"].split(os.pathsep)]
        env["PYTHONPATH"] = os.pathsep.join(entry for entry in entries if entry is not None)
    return env


def _absolute_entry(entry: str) -> str | None:
    try:
        return os.path.abspath(entry)  # "" is the working folder, as Python reads it
    except OSError:
        return None  # this working folder is gone: the entry named nothing that exists


def start_detached(run: Run) -> int:
    """Start the run's job as its own process in a new session; returns its pid.

    The job survives the terminal and the SSH connection closing: it has its own session,
    stdin from /dev/null, and stdout/stderr appended to ``log.txt``.

    Raises:
        UserError: the run is running already.
    """
    status = run.status()
    if _busy(run, status):
        raise UserError(f"run {run.name!r} is running already (pid {status.pid})")
    if status.state == DONE:
        raise UserError(f"run {run.name!r} is done already; start a new run to train more")
    run.update_status(state=QUEUED, error=None, pid=None, pid_start=None, host=None)
    return _launch(run)


def _launch(run: Run) -> int:
    """Start the job of a run already checked and marked queued; returns its pid."""
    # A killed job's lock may linger a moment after its death: the job waits for it.
    with open(run.path / LOG, "ab") as log:
        process = subprocess.Popen(
            job_command(run),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=run.path,
            env=job_environment(),
            start_new_session=True,
            close_fds=True,
        )
    _children.append(process)
    _children[:] = [child for child in _children if child.poll() is None]
    current = run.raw_status()
    if current.state == QUEUED and current.pid is None:
        run.update_status(
            pid=process.pid, pid_start=_process_start(process.pid), host=socket.gethostname()
        )
    return process.pid


def cancel(run: Run, wait: float = 0.0) -> RunStatus:
    """Ask the run's job to stop (SIGTERM to its process group); it checkpoints and ends
    "cancelled". A run whose process is gone (or never started) is marked cancelled here.

    Args:
        wait: seconds to wait for the job to finish cancelling (0: do not wait).

    Raises:
        UserError: the run has finished already.
    """
    status = run.status()
    if status.effective_state in FINAL_STATES:
        raise UserError(f"run {run.name!r} is {status.effective_state} already; nothing to cancel")
    deadline = time.monotonic() + 5.0
    while status.pid is None and run.job_alive(status) and time.monotonic() < deadline:
        time.sleep(0.05)  # the job has just started and is about to write its pid
        status = run.status()
    if status.host is not None and status.host != socket.gethostname() and run.job_alive(status):
        raise UserError(f"run {run.name!r} runs on {status.host}; cancel it there")
    if status.pid is not None and is_alive(status.pid, status.pid_start):
        _signal(status.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if run.raw_status().state in FINAL_STATES or not is_alive(status.pid):
                break
            time.sleep(0.05)
        else:
            return run.status()
    status = run.status()
    if status.state in FINAL_STATES or run.job_alive(status):
        return status
    return run.update_status(state=CANCELLED, error=None)


def _busy(run: Run, status: RunStatus) -> bool:
    """A job holds the run, or one has been started and has not taken the lock yet."""
    if run.job_alive(status):
        return True
    return status.effective_state == QUEUED and status.pid is not None


def _signal(pid: int, signum: int) -> None:
    """Signal the job's process group (it leads its own session), or the process alone."""
    try:
        if os.getpgid(pid) == pid and pid != os.getpgrp():
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def torchrun_size() -> int:
    """The number of training processes torchrun started (``WORLD_SIZE``; 1 without it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
    except ValueError:
        return 1


def torchrun_rank() -> int:
    """This process's rank under torchrun (``RANK``; 0 without it)."""
    try:
        return int(os.environ.get("RANK", "0") or 0) if torchrun_size() > 1 else 0
    except ValueError:
        return 0


def prepare_resume(name: str) -> Run:
    """Check that a run can be continued and mark it queued for a job in this process.

    Raises:
        UserError: no such run, it is done, or it is running.
    """
    run = find_run(name)
    status = run.status()
    if status.state == DONE:
        raise UserError(f"run {run.name!r} is done already; start a new run to train more")
    if _busy(run, status):
        raise UserError(f"run {run.name!r} is running (pid {status.pid}); cancel it first")
    latest = run.checkpoints()
    where = f"iteration {latest[-1][0]}" if latest else "the start (no checkpoint)"
    run.log(f"resume requested: continuing from {where}")
    run.update_status(state=QUEUED, error=None, pid=None, pid_start=None, host=None)
    return run


def resume(name: str, detach: bool = True) -> Run:
    """Continue a run that did not finish, from its latest checkpoint.

    Args:
        detach: start a detached job (default), or run it here and return when it ends
            (every rank of a torchrun launch calls this; rank 0 alone writes).

    Raises:
        UserError: no such run, it is done, or it is running.
    """
    if not detach:
        from boxnet_tui.training.job import resume_here

        return resume_here(name)[0]
    run = prepare_resume(name)
    # Not start_detached: its check would see the killed job's lingering lock, now that
    # prepare_resume has cleared the dead pid that showed the lock to be stale.
    _launch(run)
    return run


def iter_runs(states: tuple[str, ...] | None = None) -> Iterator[tuple[Run, RunStatus]]:
    """(run, status) of every run, newest first, optionally only those in ``states``."""
    for run in list_runs():
        status = run.status()
        if states is None or status.effective_state in states:
            yield run, status
