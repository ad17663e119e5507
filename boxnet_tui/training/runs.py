"""Retraining runs: one folder a run, ``$BOXNET_TUI_HOME/runs/<Name>/``. The front of three
modules, whose names are all importable from here:

- :mod:`~boxnet_tui.training.run_config`: every option of a run (:class:`RunConfig`), checked
  (:func:`validate_config`) before anything is written;
- :mod:`~boxnet_tui.training.run_store`: the run folder's files (:class:`Run`: status, metrics,
  log, checkpoints, the lock) and the store (:func:`create_run`, :func:`list_runs`,
  :func:`find_run`, :func:`delete_run`);
- :mod:`~boxnet_tui.training.launch`: the run's job as a process (:func:`start_detached`,
  :func:`cancel`, :func:`resume`), with :mod:`~boxnet_tui.process` telling processes
  apart by pid and start time.

A run is trained by :mod:`boxnet_tui.training.job`, which imports those modules, not this one.
States: ``queued`` → ``running`` → ``done`` | ``failed`` | ``cancelled``. A ``running`` (or
started ``queued``) run whose process is gone reads as ``stale`` in
:attr:`RunStatus.effective_state`; it can be resumed from its last checkpoint.
"""

from __future__ import annotations

from boxnet_tui.process import Identity, is_alive, process_start
from boxnet_tui.training.launch import (
    START_WAIT,
    _children,
    _launch,
    cancel,
    cancel_run,
    job_command,
    job_environment,
    prepare_resume,
    resume_detached,
    start_detached,
    torchrun_rank,
    torchrun_size,
)
from boxnet_tui.training.run_config import (
    DEVICE_PATTERN,
    OPTIMIZERS,
    RunConfig,
    check_star_files,
    public_set_files,
    validate_config,
)
from boxnet_tui.training.run_store import (
    CANCELLED,
    CHECKPOINTS,
    CONFIG,
    DONE,
    FAILED,
    FINAL_STATES,
    KEEP_CHECKPOINTS,
    LOCK,
    LOG,
    METRICS,
    QUEUED,
    RUNNING,
    STALE,
    STATES,
    STATUS,
    STEP_NUMBERS,
    Run,
    RunStatus,
    append_jsonl,
    busy,
    check_metrics_record,
    check_name_free,
    check_new_run,
    create_run,
    delete_run,
    find_run,
    iter_runs,
    list_runs,
    now_iso,
    parse_json_lines,
    read_jsonl,
    run_path,
)

_process_start = process_start  # the names these had here before the split
_busy = busy

__all__ = [
    "CANCELLED",
    "CHECKPOINTS",
    "CONFIG",
    "DEVICE_PATTERN",
    "DONE",
    "FAILED",
    "FINAL_STATES",
    "KEEP_CHECKPOINTS",
    "LOCK",
    "LOG",
    "METRICS",
    "OPTIMIZERS",
    "QUEUED",
    "RUNNING",
    "STALE",
    "START_WAIT",
    "STATES",
    "STATUS",
    "STEP_NUMBERS",
    "Identity",
    "Run",
    "RunConfig",
    "RunStatus",
    "_children",
    "_launch",
    "append_jsonl",
    "busy",
    "cancel",
    "cancel_run",
    "check_metrics_record",
    "check_name_free",
    "check_new_run",
    "check_star_files",
    "create_run",
    "delete_run",
    "find_run",
    "is_alive",
    "iter_runs",
    "job_command",
    "job_environment",
    "list_runs",
    "now_iso",
    "parse_json_lines",
    "prepare_resume",
    "process_start",
    "public_set_files",
    "read_jsonl",
    "resume",
    "resume_detached",
    "run_path",
    "start_detached",
    "torchrun_rank",
    "torchrun_size",
    "validate_config",
]


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
    return resume_detached(name)
