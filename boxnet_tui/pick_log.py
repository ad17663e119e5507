"""What a pick leaves behind to be resumed and counted: a record in each pick file, and a log.

**The record.** Each pick file that ``pick`` writes starts with one comment line naming the
model and the settings that made it, with their fingerprint::

    # boxnet-tui pick 3f2a9c1b07d4 model=BoxNetMask weights=5be0c1a2d9e4 diameter=200 ...

It is written in the same atomic write as the picks, so a micrograph is picked with a recipe
exactly when its pick file carries that recipe's fingerprint: no second file can disagree,
whenever a process is killed. Comment lines are ignored by RELION, Warp and starfile. An edit
in the app rewrites the file without the line (the picks are no longer the model's): such a
micrograph counts as not picked with the recipe and a ``pick`` of the same suffix picks it
again unless it is marked curated, as any ``pick`` did before.

**The log.** Failures have no pick file to carry them, so each run appends JSON lines to
``matching/.picklog/<suffix>/<shard>.jsonl`` (``<shard>`` is ``3-of-16``, or ``all``): a
``start`` record (time, host, pid, shard, mode, the recipe), one ``failed`` record a micrograph
that could not be picked (its error line, size and mtime), and an ``end`` record with the
counts. One file a shard, so processes of an array never append to the same file; a kill leaves
at worst a torn last line, which readers skip. ``pick-status`` reads these and the pick files
alone (:mod:`boxnet_tui.pick_status`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boxnet_tui.io import layout
from boxnet_tui.picking import PICK_RULE
from boxnet_tui.shards import Shard
from boxnet_tui.training.runs import append_jsonl, read_jsonl

RECORD_PREFIX = "# boxnet-tui pick "
LOG_DIR = ".picklog"  # hidden, under matching/: no pick set, no micrograph
HEAD_BYTES = 1024  # the record is the first line of a pick file


@dataclass(frozen=True)
class PickRecipe:
    """What decides a micrograph's picks: the model (name and weights) and the settings.

    Not in it: the device and batch size (they change the speed, not the picks).
    """

    model: str
    weights: str  # the first 12 hex digits of the SHA-256 of weights.pt
    diameter: float
    threshold: float
    pixel_size: float | None  # None: the micrograph header's
    min_mask_distance: float
    invert: bool
    rule: str = PICK_RULE  # how picks come from the probabilities: another rule, other picks
    scale_factor: float = 1.0  # the network's input scaled beyond the diameter's (scale_check)

    @property
    def fingerprint(self) -> str:
        fields = asdict(self)
        if self.scale_factor == 1.0:  # as before the factor existed: those picks stay picked
            del fields["scale_factor"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def line(self) -> str:
        """The record line written at the head of a pick file (no newline)."""
        pixel = "header" if self.pixel_size is None else f"{self.pixel_size:g}"
        return (
            f"{RECORD_PREFIX}{self.fingerprint} model={self.model} weights={self.weights} "
            f"diameter={self.diameter:g} threshold={self.threshold:g} pixel_size={pixel} "
            f"min_mask_distance={self.min_mask_distance:g} invert={int(self.invert)} "
            f"rule={self.rule}"
            + ("" if self.scale_factor == 1.0 else f" scale_factor={self.scale_factor:g}")
        )

    def describe(self) -> str:
        """``model BoxNetMask, diameter 200 Å, threshold 0.5`` (and what differs from defaults)."""
        parts = [
            f"model {self.model}",
            f"diameter {self.diameter:g} Å",
            f"threshold {self.threshold:g}",
        ]
        if self.pixel_size is not None:
            parts.append(f"pixel size {self.pixel_size:g} Å")
        if self.min_mask_distance:
            parts.append(f"min mask distance {self.min_mask_distance:g} Å")
        if self.invert:
            parts.append("inverted")
        if self.scale_factor != 1.0:
            parts.append(f"scale factor {self.scale_factor:g}")
        return ", ".join(parts)

    @classmethod
    def from_json(cls, data: Any) -> PickRecipe | None:
        """From a log's ``recipe`` object; None when it is not one."""
        try:
            return cls(
                model=str(data["model"]),
                weights=str(data["weights"]),
                diameter=float(data["diameter"]),
                threshold=float(data["threshold"]),
                pixel_size=None if data["pixel_size"] is None else float(data["pixel_size"]),
                min_mask_distance=float(data["min_mask_distance"]),
                invert=bool(data["invert"]),
                rule=str(data.get("rule", "blobs")),  # logs from before peaks: Warp's blobs
                scale_factor=float(data.get("scale_factor", 1.0)),
            )
        except (KeyError, TypeError, ValueError):
            return None


def file_digest(path: Path | None) -> str:
    """The first 12 hex digits of the SHA-256 of a file ("" when there is none)."""
    if path is None or not path.is_file():
        return ""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def read_record(star: Path) -> str | None:
    """The fingerprint recorded at the head of a pick file; None without one (or no file)."""
    try:
        with open(star, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    if not line.startswith(RECORD_PREFIX):
        return None
    fields = line[len(RECORD_PREFIX) :].split()
    return fields[0] if fields else None


# --------------------------------------------------------------------------- the log


def log_dir(folder: str | os.PathLike[str], suffix: str) -> Path:
    """``matching/.picklog/<suffix>/``."""
    layout.pick_file_name("", suffix)  # one path component, as every suffix
    return layout.matching_dir(folder) / LOG_DIR / suffix


def log_path(folder: str | os.PathLike[str], suffix: str, shard: Shard) -> Path:
    return log_dir(folder, suffix) / f"{shard.tag}.jsonl"


class PickLog:
    """The JSON-lines log of one shard's runs of one pick set (see the module's note)."""

    def __init__(self, folder: str | os.PathLike[str], suffix: str, shard: Shard) -> None:
        self.path = log_path(folder, suffix, shard)
        self.shard = shard
        self.problem: str | None = None  # why a record could not be written (the first time)

    def _append(self, event: str, **fields: Any) -> None:
        """Append a record; a log that cannot be written (a read-only or full disk) is noted
        in ``problem`` and the picking goes on: the picks themselves say what is picked."""
        record = {"event": event, "time": round(time.time(), 3), "shard": str(self.shard)}
        record.update(fields)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.path, record)
        except OSError as error:
            if self.problem is None:
                self.problem = f"{error.filename or self.path}: {error.strerror or error}"

    def start(self, recipe: PickRecipe, *, mode: str, device: str, micrographs: int) -> None:
        self._append(
            "start",
            fingerprint=recipe.fingerprint,
            recipe=asdict(recipe),
            mode=mode,
            device=device,
            micrographs=micrographs,
            host=socket.gethostname(),
            pid=os.getpid(),
        )

    def failed(self, path: Path, error: str, recipe: PickRecipe) -> None:
        try:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            size = mtime = None
        self._append(
            "failed",
            root=path.stem,
            file=path.name,
            error=error,
            fingerprint=recipe.fingerprint,
            size=size,
            mtime_ns=mtime,
            pid=os.getpid(),
        )

    def end(self, *, picked: int, failed: int, already: int, seconds: float, reason: str) -> None:
        self._append(
            "end",
            picked=picked,
            failed=failed,
            already_picked=already,
            seconds=round(seconds, 3),
            reason=reason,
            host=socket.gethostname(),
            pid=os.getpid(),
        )


def read_logs(folder: str | os.PathLike[str], suffix: str) -> list[dict[str, Any]]:
    """Every record of every shard's log of a pick set, oldest first."""
    directory = log_dir(folder, suffix)
    try:
        files = sorted(directory.glob("*.jsonl"))
    except OSError:
        return []
    records = []
    for path in files:
        records.extend(record for record in read_jsonl(path)[0] if "event" in record)
    records.sort(key=lambda record: _number(record.get("time")))
    return records


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
