"""Starting, cancelling and resuming a run's job: the processes of the run store.

A run is trained by its own process (:mod:`boxnet_tui.training.job`), started in a new session
so that closing the terminal or losing SSH never stops it. ``cancel`` signals only the process
that holds the run's lock and recorded itself there (:mod:`~boxnet_tui.process`). This
module does not import the job: the job imports it (``torchrun_size``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from boxnet_tui.errors import UserError
from boxnet_tui.process import Identity, process_start
from boxnet_tui.training.run_store import (
    CANCELLED,
    DONE,
    FINAL_STATES,
    LOG,
    QUEUED,
    Run,
    RunStatus,
    busy,
    find_run,
)

# Children started by this process: held so that they are not reported as leaked, and reaped.
_children: list[subprocess.Popen] = []


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
    if busy(run, status):
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
            pid=process.pid, pid_start=process_start(process.pid), host=socket.gethostname()
        )
    return process.pid


START_WAIT = 5.0  # s a job just launched may take to hold its lock and record itself


def cancel(run: Run, wait: float = 0.0) -> RunStatus:
    """Ask the run's job to stop (SIGTERM to its process group); it checkpoints and ends
    "cancelled". A run no job holds (never started, or its process gone) is marked cancelled
    here; see :func:`cancel_run` for the line that says which.

    Args:
        wait: seconds to wait for the job to finish cancelling (0: do not wait).

    Raises:
        UserError: the run has finished already, or runs on another host.
    """
    return cancel_run(run, wait)[0]


def cancel_run(run: Run, wait: float = 0.0) -> tuple[RunStatus, str]:
    """:func:`cancel`, with one line for the user saying what was done.

    Only the process that holds the run's lock and recorded itself there (pid and start
    time) is signalled: a stale ``status.json`` naming a live process, or a pid reused
    after a kill -9, is never signalled.
    """
    status = run.status()
    if status.effective_state in FINAL_STATES:
        raise UserError(f"run {run.name!r} is {status.effective_state} already; nothing to cancel")
    if status.host is not None and status.host != socket.gethostname() and run.is_locked():
        raise UserError(f"run {run.name!r} runs on {status.host}; cancel it there")
    holder = _wait_for_holder(run, status)
    if holder is None and not run.is_locked():
        marked = _mark_cancelled(run)
        if marked is not None:
            return marked, f"{run.name}: not running (no job holds it); marked cancelled"
        holder = _wait_for_holder(run, status)  # a job took the lock just now
    if holder is not None and not holder.is_local():
        raise UserError(f"run {run.name!r} runs on {holder.host}; cancel it there")
    signalled = run.signal_holder(signal.SIGTERM)
    if signalled is None:
        if not run.is_locked():  # it ended meanwhile
            return run.status(), f"{run.name}: {run.status().effective_state}"
        raise UserError(
            f"run {run.name!r} is not running: the process holding its lock is not its job; "
            "nothing signalled"
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if run.raw_status().state in FINAL_STATES or not signalled.matches():
            break
        time.sleep(0.05)
    status = run.status()
    if status.effective_state not in FINAL_STATES and not run.is_locked():
        status = _mark_cancelled(run) or run.status()  # it ended without saying so
    if status.effective_state in FINAL_STATES:
        return status, f"{run.name}: {status.effective_state}"
    return status, f"{run.name}: cancelling (pid {signalled.pid}); it checkpoints, then stops"


def _mark_cancelled(run: Run) -> RunStatus | None:
    """Mark a run no job holds cancelled, holding its lock meanwhile so that a job starting
    now reads "cancelled" and does nothing; None when a job holds the lock."""
    fd = run.lock(record=False)
    if fd is None:
        return None
    try:
        if run.raw_status().state in FINAL_STATES:
            return run.status()
        return run.update_status(state=CANCELLED, error=None)
    finally:
        os.close(fd)


def _wait_for_holder(run: Run, status: RunStatus) -> Identity | None:
    """The lock's holder, waiting a moment for a job just started to take the lock and
    record itself; None when no job holds the run (or the holder never recorded itself)."""
    deadline = time.monotonic() + START_WAIT
    while True:
        holder = run.lock_holder()
        if holder is not None or time.monotonic() > deadline:
            return holder
        launched = Identity(status.pid, status.pid_start) if status.pid else None
        starting = (
            status.state == QUEUED and launched is not None and launched.matches()
        )  # launched by _launch, not holding the lock yet
        if not run.is_locked() and not starting:
            return None
        time.sleep(0.05)
        status = run.raw_status()


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
    if busy(run, status):
        raise UserError(f"run {run.name!r} is running (pid {status.pid}); cancel it first")
    latest = run.checkpoints()
    where = f"iteration {latest[-1][0]}" if latest else "the start (no checkpoint)"
    run.log(f"resume requested: continuing from {where}")
    run.update_status(state=QUEUED, error=None, pid=None, pid_start=None, host=None)
    return run


def resume_detached(name: str) -> Run:
    """Continue a run that did not finish, from its latest checkpoint, in a detached job.

    Raises:
        UserError: no such run, it is done, or it is running.
    """
    run = prepare_resume(name)
    # Not start_detached: its check would see the killed job's lingering lock, now that
    # prepare_resume has cleared the dead pid that showed the lock to be stale.
    _launch(run)
    return run
