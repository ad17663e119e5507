"""How far a folder's picking is, per shard, from the files alone (``boxnet-tui pick-status``).

For the pick set ``suffix``, the newest run in its logs (:mod:`boxnet_tui.pick_log`) gives the
recipe (model and settings) and the number of shards N; ``shards`` overrides N. Each micrograph
of the folder, in shard ``sha1(root) mod N``, is then

- **picked**: its pick file carries the recipe's record (with no log yet: any pick file of
  the suffix), or it is marked curated and has a pick file, which a pick keeps;
- **failed**: not picked, and the newest log record about it with this recipe says it failed;
- **pending**: anything else (no pick file, or one from other settings or edited since,
  which a run picks again).

Nothing is written, no process is asked: what N processes on N nodes did is read from the
files they wrote. Memory: the names, counts, and the failed micrographs' lines.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxnet_tui.curation_state import load_state
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import scan_folder
from boxnet_tui.pick_log import PickRecipe, read_logs, read_record
from boxnet_tui.shards import Shard, shard_of


@dataclass
class ShardStatus:
    shard: Shard
    micrographs: int = 0
    picked: int = 0
    failed: int = 0
    pending: int = 0
    curated: int = 0  # among picked: curated, kept
    other_settings: int = 0  # among pending: a pick file from other settings, or edited
    last_pick: float | None = None  # the newest pick file's mtime (s since the epoch)
    last_record: dict[str, Any] | None = None  # the newest log record of this shard


@dataclass
class PickStatus:
    folder: Path
    suffix: str
    count: int  # shards
    recipe: PickRecipe | None  # of the newest run; None when no run was logged
    newest_start: dict[str, Any] | None
    shards: list[ShardStatus]
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file name, error line)

    @property
    def total(self) -> ShardStatus:
        whole = ShardStatus(Shard())
        for status in self.shards:
            for name in ("micrographs", "picked", "failed", "pending", "curated"):
                setattr(whole, name, getattr(whole, name) + getattr(status, name))
            whole.other_settings += status.other_settings
            if status.last_pick is not None:
                whole.last_pick = max(whole.last_pick or 0.0, status.last_pick)
        return whole


def pick_status(
    folder: str | os.PathLike[str], suffix: str, shards: int | None = None
) -> PickStatus:
    """Count the micrographs of ``folder`` picked, failed and pending in the set ``suffix``.

    Raises:
        UserError: the folder does not exist or cannot be listed; a bad suffix or shard count.
    """
    folder = Path(folder)
    paths = scan_folder(folder)
    records = read_logs(folder, suffix)
    starts = [r for r in records if r.get("event") == "start"]
    newest = starts[-1] if starts else None
    count = shards or (_shard_count(newest) if newest is not None else 1)
    Shard(0, count)  # refuses a count below 1
    recipe = PickRecipe.from_json(newest.get("recipe")) if newest is not None else None
    fingerprint = recipe.fingerprint if recipe is not None else None
    failed: dict[str, str] = {}
    last_record: dict[int, dict[str, Any]] = {}
    for record in records:  # oldest first: the newest word on each micrograph wins
        if record.get("event") == "failed" and record.get("fingerprint") == fingerprint:
            failed[str(record.get("root"))] = str(record.get("error", ""))
        index = _record_shard(record, count)
        if index is not None:
            last_record[index] = record
    curated = set(load_state(folder)[0].curated)
    status = PickStatus(
        folder, suffix, count, recipe, newest, [ShardStatus(Shard(k, count)) for k in range(count)]
    )
    for path in paths:
        root = path.stem
        shard = status.shards[shard_of(root, count)]
        shard.micrographs += 1
        star = layout.pick_path(folder, root, suffix)
        try:
            mtime: float | None = star.stat().st_mtime
        except OSError:
            mtime = None
        record = read_record(star) if mtime is not None else None
        if mtime is not None and (fingerprint is None or record == fingerprint):
            shard.picked += 1
            shard.last_pick = max(shard.last_pick or 0.0, mtime)
        elif mtime is not None and root in curated:
            shard.picked += 1
            shard.curated += 1
        elif root in failed:
            shard.failed += 1
            status.failures.append((path.name, failed[root]))
        else:
            shard.pending += 1
            shard.other_settings += mtime is not None
    for index, record in last_record.items():
        status.shards[index].last_record = record
    return status


def _shard_count(record: dict[str, Any]) -> int:
    text = str(record.get("shard", "0/1"))
    _, _, count = text.partition("/")
    return int(count) if count.isdigit() and int(count) > 0 else 1


def _record_shard(record: dict[str, Any], count: int) -> int | None:
    """The shard a log record is of, when it was written by a run with ``count`` shards."""
    index, _, of = str(record.get("shard", "")).partition("/")
    if not (index.isdigit() and of.isdigit()) or int(of) != count or int(index) >= count:
        return None
    return int(index)


def _ago(when: float | None, now: float) -> str:
    if when is None:
        return "-"
    seconds = max(0.0, now - when)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def _record_line(record: dict[str, Any] | None, now: float) -> str:
    """``start on node3 (pid 1234, watch) 2 min ago``."""
    if record is None:
        return "-"
    event = str(record.get("event", "?"))
    parts = [f"ended ({record.get('reason', '?')})" if event == "end" else event]
    if record.get("host"):
        parts.append(f"on {record['host']}")
    details = [f"pid {record['pid']}"] if record.get("pid") else []
    if record.get("mode") == "watch":
        details.append("watch")
    if details:
        parts.append(f"({', '.join(details)})")
    parts.append(_ago(_time(record), now))
    return " ".join(parts)


def _time(record: dict[str, Any]) -> float | None:
    when = record.get("time")
    return float(when) if isinstance(when, int | float) and not isinstance(when, bool) else None


def format_status(status: PickStatus, failures_shown: int = 10, now: float | None = None) -> str:
    """The report ``pick-status`` prints: a header, a table of shards, the failures."""
    now = time.time() if now is None else now
    total = status.total
    shards = "1 shard" if status.count == 1 else f"{status.count} shards"
    lines = [
        f"{status.folder}: {total.micrographs} micrographs, pick set {status.suffix}, {shards}"
    ]
    if status.recipe is not None and status.newest_start is not None:
        lines.append(
            f"settings of the newest run ({_ago(_time(status.newest_start), now)}): "
            f"{status.recipe.describe()} [{status.recipe.fingerprint}]"
        )
    else:
        lines.append("no pick run logged for this pick set: every pick file of it counts as picked")
    header = ("shard", "micrographs", "picked", "failed", "pending", "last pick", "last log record")
    rows = [
        (
            str(s.shard),
            str(s.micrographs),
            str(s.picked),
            str(s.failed),
            str(s.pending),
            _ago(s.last_pick, now),
            _record_line(s.last_record, now),
        )
        for s in status.shards
    ]
    rows.append(
        (
            "all",
            str(total.micrographs),
            str(total.picked),
            str(total.failed),
            str(total.pending),
            _ago(total.last_pick, now),
            "",
        )
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i in (0, 5, 6) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    if total.curated:
        lines.append(f"{total.curated} curated micrographs keep their picks (counted picked)")
    if total.other_settings:
        lines.append(
            f"{total.other_settings} pick files are from other settings or edited since "
            "(counted pending: a pick with these settings replaces them, unless curated)"
        )
    if status.failures:
        lines.append(f"failed ({len(status.failures)}):")
        for name, error in status.failures[:failures_shown]:
            lines.append(f"  {error or name}")
        if len(status.failures) > failures_shown:
            lines.append(f"  and {len(status.failures) - failures_shown} more")
    return "\n".join(lines)
