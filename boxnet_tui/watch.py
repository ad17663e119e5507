"""Picking on the fly: ``pick --watch`` picks micrographs as they appear in a folder.

A polling watcher (it works on NFS and Lustre, where inotify sees nothing of other nodes'
writes). A file is picked once it is whole:

1. **settled**: its size and mtime have not changed for ``settle`` seconds, as seen by this
   process (a file already that old when the watch starts counts as settled at once), and
2. **complete by its header**: an MRC holds exactly the bytes its header declares, a TIFF
   holds every strip or tile its pages point to (:func:`boxnet_tui.folder.incomplete`; the
   app shows micrographs arriving in its folder by the same rule).

So a file still being copied or written is never read half-way. One that stays incomplete
(settled, but short of its declared size) for ``give_up`` seconds is reported as failed, as is
one that cannot be picked; either is tried again when the file changes. Already picked
micrographs (their pick file records this model and settings, :mod:`boxnet_tui.pick_log`) are
skipped, so a watch restarted after a crash or a new SSH session goes on where it stopped.
Stops when ``should_stop`` says so (the CLI sets it on Ctrl+C or SIGTERM, after the current
micrograph) or after ``idle_exit`` seconds with nothing new to pick. Memory: the names seen,
never more than two micrographs' pixels.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from boxnet_tui.batch_picking import (
    FolderProgress,
    FolderSummary,
    Picker,
    PickSettings,
    _curated_now,
    check_scale,
    end_log,
    is_picked,
    load_picker,
    pick_paths,
)
from boxnet_tui.errors import UserError
from boxnet_tui.file_stamp import NEVER, FileStamp, file_stamp
from boxnet_tui.folder import SETTLE_SECONDS, FolderListing, incomplete
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import scan_folder
from boxnet_tui.model.info import DEFAULT_MODEL
from boxnet_tui.pick_log import PickLog, read_logs
from boxnet_tui.shards import Shard

DEFAULT_POLL = 2.0  # s between looks at the folder
DEFAULT_SETTLE = SETTLE_SECONDS  # s a file's size and mtime must hold still (the app's too)
GIVE_UP_SETTLES = 24  # a settled file still incomplete after this many settles is reported


@dataclass
class _Seen:
    """A file of the shard not picked yet: its stamp, and since when it holds."""

    stamp: FileStamp
    since: float  # monotonic seconds
    told: bool = False  # its waiting was reported


@dataclass
class _Watch:
    """One watch: what it picks with and how long it waits, and what it knows between polls
    (names and stats only: flat in the pixels)."""

    folder: Path
    picker: Picker
    shard: Shard
    settle: float
    give_up: float
    repick: bool
    overwrite_curated: bool
    log: PickLog | None
    say: Callable[[str], None]
    done: set[str] = field(default_factory=set)  # roots picked, kept or already picked
    failed: dict[str, FileStamp] = field(default_factory=dict)  # root -> its stamp then
    others: set[str] = field(default_factory=set)  # roots of other shards
    seen: dict[Path, _Seen] = field(default_factory=dict)
    listing: FolderListing = field(default_factory=FolderListing)  # of the micrographs
    first: bool = True

    def poll(self, summary: FolderSummary) -> list[Path]:
        """Look at the folder once: the micrographs of the shard settled and whole now."""
        now = time.monotonic()
        unchanged = self.listing.unchanged(layout.micrographs_dir(self.folder), now)
        if unchanged and not self.seen:  # no file added, renamed or removed since the last scan
            return []
        try:
            paths = scan_folder(self.folder)
        except UserError:  # unmounted or renamed for a moment: look again at the next poll
            self.listing.failed()
            return []
        first, self.first = self.first, False
        curated = set() if self.overwrite_curated else _curated_now(self.folder, None)
        ready = []
        for path in paths:
            root = path.stem
            if root in self.done or root in self.others:
                continue
            if not self.shard.owns(root):
                self.others.add(root)
                continue
            star = layout.pick_path(self.folder, root, self.picker.suffix)
            if root in curated and star.exists():
                self.done.add(root)
                summary.skipped_curated.append(root)
                continue
            if not self.repick and is_picked(self.folder, root, self.picker):
                self.done.add(root)
                summary.already_picked += 1
                continue
            if self._whole(path, now, first, summary):
                ready.append(path)
        current = set(paths)
        for path in [p for p in self.seen if p not in current]:
            del self.seen[path]
        return ready

    def _whole(self, path: Path, now: float, first: bool, summary: FolderSummary) -> bool:
        """Whether ``path`` is settled and whole; a file incomplete too long is failed."""
        root = path.stem
        key = file_stamp(path, unreadable_is_gone=True)
        if key is None or self.failed.get(root) == key:
            return False  # gone again, or failed as it is (tried again when it changes)
        self.failed.pop(root, None)
        seen = self.seen.get(path)
        if seen is None or seen.stamp != key:
            # a file already older than ``settle`` when the watch starts has settled
            old = first and time.time() - key.mtime_ns / 1e9 >= self.settle
            seen = self.seen[path] = _Seen(key, now - self.settle if old else now)
        if now - seen.since < self.settle:
            return False
        problem = incomplete(path)
        if problem is None:
            return True
        if now - seen.since >= self.give_up:
            message = f"{problem} (unchanged for {now - seen.since:.0f} s)"
            summary.errors.append(message)
            self.failed[root] = key
            del self.seen[path]
            self.say(message)
            if self.log is not None:
                self.log.failed(path, message, self.picker.recipe)
        elif not seen.told:
            seen.told = True
            self.say(
                f"waiting for {path.name} to be whole (reported as failed if still so after "
                f"{self.give_up:.0f} s unchanged): {problem}"
            )
        return False


def watch_folder(
    folder: str | os.PathLike[str],
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    settings: PickSettings | None = None,
    *,
    suffix: str | None = None,
    device: str = "auto",
    shard: Shard | None = None,
    repick: bool = False,
    overwrite_curated: bool = False,
    log: bool = True,
    poll: float = DEFAULT_POLL,
    settle: float = DEFAULT_SETTLE,
    give_up: float | None = None,
    idle_exit: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[FolderProgress], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> FolderSummary:
    """Pick the micrographs of ``folder`` (of ``shard``) as they appear, until told to stop.

    ``repick``: pick again those already picked with this model and settings (once each in
    this run), and those that failed before as they are. ``give_up`` (default
    ``GIVE_UP_SETTLES`` × ``settle``, at least a minute): seconds a settled file may stay
    incomplete before it is reported as failed. ``notice`` gets one line for each file found
    waiting, given up or failed. ``progress`` is called after each micrograph (``done`` and
    ``total`` count this run's).

    Raises:
        UserError: the folder does not exist, unknown model, no such device, bad settings.
    """
    folder = Path(folder)
    present = scan_folder(folder)  # a missing folder is refused before the model is loaded
    shard = shard or Shard()
    # the scale is checked on the micrographs already there (none: the stated scale), once
    picker = check_scale(load_picker(model, settings, suffix=suffix, device=device), present)
    if picker.check is not None and notice is not None:
        notice(picker.check.describe(picker.settings.diameter))
    stop = should_stop or (lambda: False)
    pick_log = PickLog(folder, picker.suffix, shard) if log else None
    if pick_log is not None:
        pick_log.start(picker.recipe, mode="watch", device=str(picker.device), micrographs=0)
    watch = _Watch(
        folder,
        picker,
        shard,
        settle=settle,
        give_up=max(60.0, GIVE_UP_SETTLES * settle) if give_up is None else give_up,
        repick=repick,
        overwrite_curated=overwrite_curated,
        log=pick_log,
        say=notice or (lambda line: None),
    )
    if not repick:
        watch.failed.update(_failed_before(folder, picker, shard))
    summary = FolderSummary()
    handled = 0
    last_busy = time.monotonic()
    while not stop():
        ready = watch.poll(summary)
        if ready:
            errors = len(summary.errors)

            def report(p: FolderProgress, base: int = handled) -> None:
                if progress is not None:
                    progress(replace(p, done=base + p.done, total=base + p.total))

            for path, ok in pick_paths(
                picker,
                folder,
                ready,
                summary,
                progress=report,
                should_stop=stop,
                overwrite_curated=overwrite_curated,
                log=pick_log,
            ):
                handled += 1
                watch.seen.pop(path, None)
                if ok:
                    watch.done.add(path.stem)
                else:
                    watch.failed[path.stem] = file_stamp(path, unreadable_is_gone=True) or NEVER
            for line in summary.errors[errors:]:
                watch.say(line)
        changes = [seen.since for seen in watch.seen.values()]
        if ready or (changes and max(changes) > last_busy):  # picked, or a file still growing
            last_busy = time.monotonic()
        elif idle_exit is not None and time.monotonic() - last_busy >= idle_exit:
            break
        _sleep(poll, stop)
    for path in watch.seen:
        watch.say(f"{path.name}: not picked, not whole yet when the watch ended")
    summary.micrographs = handled + summary.already_picked + len(summary.skipped_curated)
    summary.stopped = stop()
    if pick_log is not None:
        end_log(pick_log, summary, "stopped" if summary.stopped else "idle")
    return summary


def _failed_before(folder: Path, picker: Picker, shard: Shard) -> dict[str, tuple[int, int]]:
    """The micrographs of the shard that failed with this recipe in earlier runs (logged),
    by (size, mtime) then: tried again only once changed."""
    failed = {}
    for record in read_logs(folder, picker.suffix):
        root = record.get("root")
        if record.get("event") != "failed" or not isinstance(root, str) or not shard.owns(root):
            continue
        size, mtime = record.get("size"), record.get("mtime_ns")
        if record.get("fingerprint") == picker.recipe.fingerprint and isinstance(size, int):
            failed[root] = (size, mtime if isinstance(mtime, int) else -1)
    return failed


def _sleep(seconds: float, stop: Callable[[], bool]) -> None:
    """Sleep ``seconds``, waking early (within 0.1 s) when ``stop`` says so."""
    end = time.monotonic() + seconds
    while not stop():
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.1, left))
