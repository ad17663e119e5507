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
This module reads and writes those files (:class:`Run`) and the store of runs (create, list,
find, delete); the options are :mod:`~boxnet_tui.training.run_config`'s, and starting,
cancelling and resuming a run's job :mod:`~boxnet_tui.training.launch`'s. It never imports
torch at import time: listing runs and reading their state is cheap.

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
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.io.atomic import atomic_write_text, atomic_write_with
from boxnet_tui.names import check_model_name, check_path_name
from boxnet_tui.paths import runs_dir
from boxnet_tui.process import Identity, flock_holders, is_alive, signal_group
from boxnet_tui.training.run_config import RunConfig, validate_config

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
_CHECKPOINT_PATTERN = re.compile(r"^ckpt_(\d+)\.pt$")
_TEMPORARY_CHECKPOINT = re.compile(r"^\.ckpt_\d+\..+\.tmp\.pt$")  # io.atomic's, of a checkpoint


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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

    def lock(self, *, record: bool = True) -> int | None:
        """Take the run's lock for this process; the fd, or None if held.

        Args:
            record: write this process's :class:`Identity` into the lock file (the job
                does), so that ``cancel`` signals the holder and nothing else.
        """
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            os.ftruncate(fd, 0)
            if record:
                os.pwrite(fd, Identity.of(os.getpid()).to_text().encode("ascii"), 0)
        except OSError:
            pass  # a full disk: the run still runs; cancel then refuses to signal it
        return fd

    def lock_holder(self) -> Identity | None:
        """The process that holds the run's lock, as it recorded itself: None when the lock is
        free, or held by a process that did not record itself (or not yet)."""
        if not self.is_locked():
            return None
        try:
            with open(self.path / LOCK, "rb") as handle:
                text = handle.read(200).decode("ascii", errors="replace")
        except OSError:
            return None
        return Identity.from_text(text)

    def signal_holder(self, signum: int) -> Identity | None:
        """Signal the job that holds the run's lock; the identity signalled, or None.

        Only a process that recorded itself in the lock file, is alive with that pid and
        start time, and (where ``/proc/locks`` tells) holds the lock itself is signalled: a
        stale ``status.json`` or a reused pid never gets a signal.
        """
        holder = self.lock_holder()
        if holder is None or not holder.is_local() or not holder.matches():
            return None
        if holder.pid == os.getpid():  # a lock this process holds: never signal itself
            return None
        holders = flock_holders(self.path / LOCK)
        if holders is not None and holder.pid not in holders:
            return None
        if not self.is_locked():  # released meanwhile: the job has ended
            return None
        signal_group(holder.pid, signum)
        return holder

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
        self.clean_temporary_checkpoints()
        atomic_write_with(path, lambda tmp: torch.save(state, tmp))
        for old_iteration, old in self.checkpoints()[:-KEEP_CHECKPOINTS]:
            if old_iteration != iteration:
                old.unlink(missing_ok=True)
        return path

    def clean_temporary_checkpoints(self) -> None:
        """Remove the ``.ckpt_<N>.*.tmp.pt`` files of checkpoint writes a kill interrupted.

        Only the job holding the run's lock writes checkpoints, and it calls this before it
        writes one: no live process owns those left."""
        try:
            entries = list(os.scandir(self.checkpoint_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            if _TEMPORARY_CHECKPOINT.match(entry.name):
                Path(entry.path).unlink(missing_ok=True)

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


def check_name_free(name: str, base: str | None = None) -> None:
    """Refuse a new run's name that a run or a model (or the base) holds already; writes
    nothing, so it can come before any slow preparation (``--public-set auto``).

    Raises:
        UserError: a bad name, or one taken.
    """
    from boxnet_tui.model.info import models_dir, shipped_models_dir

    check_model_name(name)
    if (models_dir() / name).exists() or (shipped_models_dir() / name).exists():
        raise UserError(f"a model named {name!r} exists already; choose another name")
    if base is not None and name == Path(base).name:
        raise UserError(f"the new model needs a name of its own, not the base's ({base})")
    if run_path(name).exists():
        raise UserError(f"a run named {name!r} exists already; choose another name")


def check_new_run(config: RunConfig) -> RunConfig:
    """Every check :func:`create_run` makes, writing nothing: the options, the STAR files the
    run takes, and its name; the config with its paths made absolute."""
    config = validate_config(config)
    check_name_free(config.name, config.base)
    return config


def create_run(config: RunConfig) -> Run:
    """Make a new run folder (state queued); nothing is started.

    Raises:
        UserError: a bad option, a bad name, or a run or model of that name exists already.
    """
    config = check_new_run(config)
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
    _clean_trash(root)
    found = []
    for entry in root.iterdir():
        if entry.name.startswith("."):
            continue  # a deletion under way
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


def delete_run(run: Run) -> str:
    """Delete a run's folder (its name is free again); a saved model is kept. One line.

    The folder is first renamed out of sight (a hidden name), under the run's lock so that
    no job starts meanwhile, then removed: a kill midway leaves no half run in the list.

    Raises:
        UserError: a job holds the run, or one has been started and is about to.
    """
    import shutil

    status = run.status()
    if busy(run, status):
        raise UserError(f"run {run.name!r} is running (pid {status.pid}); cancel it first")
    fd = run.lock(record=False)
    if fd is None:
        raise UserError(f"run {run.name!r} is running; cancel it first")
    trash = run.path.parent / f".{run.name}.deleting-{os.getpid()}"
    try:
        os.rename(run.path, trash)
    except OSError as error:
        raise UserError(f"{run.path}: cannot delete ({error.strerror or error})") from None
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    kept = " (its model is kept)" if status.state == DONE else ""
    return f"{run.name}: deleted{kept}"


def _clean_trash(root: Path) -> None:
    """Remove the folders of deletions a kill interrupted (their process is gone)."""
    import shutil

    for entry in root.iterdir():
        name, _, pid = entry.name.rpartition(".deleting-")
        if name.startswith(".") and pid.isdigit() and not is_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def busy(run: Run, status: RunStatus) -> bool:
    """A job holds the run, or one has been started and has not taken the lock yet."""
    if run.job_alive(status):
        return True
    return status.effective_state == QUEUED and status.pid is not None


def iter_runs(states: tuple[str, ...] | None = None) -> Iterator[tuple[Run, RunStatus]]:
    """(run, status) of every run, newest first, optionally only those in ``states``."""
    for run in list_runs():
        status = run.status()
        if states is None or status.effective_state in states:
            yield run, status
