"""Curation edits of one micrograph: picks and junk mask, with undo/redo, always on disk.

Every edit is written (atomically) before the call returns, so a kill -9 between two keys
loses nothing. Before each edit the pick file's stamp is compared with the one we last saw:
if another program (or a second instance) changed it, we reload it first and say so, rather
than overwriting its edits. A pick file that cannot be read is never written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from boxnet_tui.errors import MaskError, StarError, UserError
from boxnet_tui.imaging import scaled_shape
from boxnet_tui.io import layout
from boxnet_tui.io.masks import MASK_PIXEL_SIZE, read_mask, write_mask
from boxnet_tui.io.star import Picks, read_picks, write_picks

Stamp = tuple[int, int, int] | None
MANUAL_SCORE = 1.0  # a particle a person added is certain; never hidden by a display threshold


def file_stamp(path: Path) -> Stamp:
    """(mtime_ns, size, inode) of ``path``, or None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass
class MaskPatch:
    """The mask pixels of ``[y0:y1, x0:x1]`` before a brush dab."""

    y0: int
    x0: int
    before: np.ndarray


@dataclass
class Edit:
    """One undoable step. Picks are (x, y, score) triples; index is where the pick lives."""

    kind: str  # "add" | "remove" | "move" | "mask"
    index: int = -1
    before: tuple[float, float, float] | None = None
    after: tuple[float, float, float] | None = None
    recorded: bool = False  # the removal was written to the false-positives file
    patches: list[MaskPatch] = field(default_factory=list)
    after_patches: list[MaskPatch] = field(default_factory=list)
    group: int | None = None  # consecutive moves / brush dabs of one gesture merge


class MicrographEditor:
    """The picks (one suffix) and the junk mask of one micrograph, and their edit history.

    Args:
        folder: the micrograph folder (holding ``matching/`` and ``mask/``).
        root: the micrograph's root name; ``micrograph_name`` is written into the STAR.
        shape: the micrograph's (rows, columns); ``pixel_size`` in Å (for the mask scale).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        root: str,
        suffix: str,
        micrograph_name: str,
        shape: tuple[int, int],
        pixel_size: float,
    ) -> None:
        self.folder = Path(folder)
        self.root = root
        self.suffix = suffix
        self.micrograph_name = micrograph_name
        self.shape = shape
        self.pixel_size = pixel_size
        self.pick_path = layout.pick_path(folder, root, suffix)
        self.false_positives_path = layout.false_positives_path(folder, root, suffix)
        self.mask_path = layout.mask_path(folder, root)
        self.picks = Picks()
        self.error: str | None = None  # why the pick file cannot be edited
        self.notices: list[str] = []  # for the user: reloads, refusals
        self._stamp: Stamp = None
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._mask: np.ndarray | None = None
        self._mask_stamp: Stamp = None
        self.mask_error: str | None = None
        self.reload()

    # -- loading ------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the pick file again (missing = no picks yet); forget the edit history."""
        self._undo.clear()
        self._redo.clear()
        self._stamp = file_stamp(self.pick_path)
        if self._stamp is None:
            self.picks, self.error = Picks(), None
            return
        try:
            picks = read_picks(self.pick_path)
            # our own arrays: moves write into them, and pandas may hand out read-only views
            self.picks = Picks(picks.x.copy(), picks.y.copy(), picks.score.copy())
            self.error = None
        except StarError as error:
            self.picks, self.error = Picks(), str(error)

    def changed_on_disk(self) -> bool:
        return file_stamp(self.pick_path) != self._stamp

    def reload_if_changed(self) -> bool:
        """Reload when another program changed the pick file; True if it did."""
        if not self.changed_on_disk():
            return False
        self.reload()
        self.notices.append(
            f"{self.pick_path.name} changed on disk (another program or window); reloaded it, "
            "undo history cleared"
        )
        return True

    # -- picks --------------------------------------------------------------------------
    def visible(self, threshold: float) -> np.ndarray:
        """Boolean mask of picks shown at ``threshold`` (picks without a score always are)."""
        return ~(self.picks.score < threshold)

    def nearest(
        self, x: float, y: float, within: float, threshold: float = -math.inf
    ) -> int | None:
        """Index of the visible pick nearest (x, y) within ``within`` px, or None."""
        if not len(self.picks):
            return None
        distance = np.hypot(self.picks.x - x, self.picks.y - y)
        distance[~self.visible(threshold)] = np.inf
        index = int(np.argmin(distance))
        return index if distance[index] <= within else None

    def add(self, x: float, y: float) -> int:
        """Add a pick at (x, y) micrograph px; returns its index."""
        self._begin()
        x, y = self._clamp(x, y)
        score = MANUAL_SCORE if (self.picks.has_scores or not len(self.picks)) else math.nan
        index = len(self.picks)
        self._save_picks(self._inserted(index, (x, y, score)))
        self._log(Edit("add", index, after=(x, y, score)))
        return index

    def remove(self, index: int, *, record: bool = True) -> None:
        """Remove pick ``index``; ``record`` also appends it to the false-positives file."""
        self._begin(index_from_shown=True)
        if not 0 <= index < len(self.picks):
            raise IndexError(index)
        before = self._pick(index)
        if record:
            self._append_false_positive(before)
        try:
            self._save_picks(self._deleted(index))
        except UserError:
            if record:  # the pick stays: so must the false positives
                self._drop_false_positive(before)
            raise
        self._log(Edit("remove", index, before=before, recorded=record))

    def move(self, index: int, x: float, y: float, *, group: int | None = None) -> None:
        """Move pick ``index`` to (x, y); moves with the same ``group`` undo as one."""
        self._begin(index_from_shown=True)
        if not 0 <= index < len(self.picks):
            raise IndexError(index)
        x, y = self._clamp(x, y)
        before = self._pick(index)
        after = (x, y, before[2])
        self._save_picks(self._moved(index, x, y))
        last = self._undo[-1] if self._undo else None
        if (
            group is not None
            and last is not None
            and last.kind == "move"
            and last.group == group
            and last.index == index
        ):
            last.after = after
            self._redo.clear()
            return
        self._log(Edit("move", index, before=before, after=after, group=group))

    # -- mask ---------------------------------------------------------------------------
    @property
    def mask_shape(self) -> tuple[int, int]:
        if self._mask is not None:
            return self._mask.shape  # type: ignore[return-value]
        return scaled_shape(self.shape, self.pixel_size, MASK_PIXEL_SIZE)

    def mask(self) -> np.ndarray | None:
        """The junk mask (bool, 8 Å/px), or None when the micrograph has none."""
        stamp = file_stamp(self.mask_path)
        if self._mask is not None and stamp == self._mask_stamp:
            return self._mask
        self._mask, self._mask_stamp, self.mask_error = None, stamp, None
        if stamp is not None:
            try:
                self._mask = read_mask(self.mask_path)
            except MaskError as error:
                self.mask_error = str(error)
        return self._mask

    def paint(
        self, x: float, y: float, radius_angstrom: float, *, junk: bool = True, group: int | None
    ) -> None:
        """Set (``junk``) or clear the mask in a disc around (x, y) micrograph px."""
        shown = self.mask()
        if shown is None and self.mask_error is not None:
            raise UserError(f"{self.mask_error}; not painting over it")
        # a copy, held only once saved
        mask = np.zeros(self.mask_shape, dtype=bool) if shown is None else shown.copy()
        rows, cols = mask.shape
        mx, my = x * cols / self.shape[1], y * rows / self.shape[0]
        radius = max(0.5, radius_angstrom / MASK_PIXEL_SIZE)
        y0, y1 = max(0, int(my - radius)), min(rows, math.ceil(my + radius) + 1)
        x0, x1 = max(0, int(mx - radius)), min(cols, math.ceil(mx + radius) + 1)
        if y0 >= y1 or x0 >= x1:
            return
        yy, xx = np.mgrid[y0:y1, x0:x1]
        disc = (yy + 0.5 - my) ** 2 + (xx + 0.5 - mx) ** 2 <= radius**2
        before = mask[y0:y1, x0:x1].copy()
        region = mask[y0:y1, x0:x1]
        region[disc] = junk
        if np.array_equal(before, region) and self.mask_path.exists():
            return
        patch = MaskPatch(y0, x0, before)
        self._save_mask(mask)
        last = self._undo[-1] if self._undo else None
        self._redo.clear()
        if group is not None and last is not None and last.kind == "mask" and last.group == group:
            last.patches.append(patch)
            return
        self._undo.append(Edit("mask", patches=[patch], group=group))

    # -- history ------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> Edit | None:
        """Revert the last edit (a recorded removal also leaves the false-positives file)."""
        return self._replay(self._undo, self._redo, reverse=True)

    def redo(self) -> Edit | None:
        return self._replay(self._redo, self._undo, reverse=False)

    def _replay(self, source: list[Edit], target: list[Edit], *, reverse: bool) -> Edit | None:
        """Apply the last edit of ``source`` and move it to ``target``; a failed write leaves
        both as they were, so the user can try again."""
        if self.reload_if_changed() or not source:
            return None
        edit = source[-1]
        self._apply(edit, reverse=reverse)
        target.append(source.pop())
        return edit

    def _apply(self, edit: Edit, *, reverse: bool) -> None:
        if edit.kind == "mask":
            self._apply_mask(edit, reverse=reverse)
            return
        if edit.kind == "move":
            x, y, _ = edit.before if reverse else edit.after  # type: ignore[misc]
            self._save_picks(self._moved(edit.index, x, y))
        elif (edit.kind == "add") != reverse:  # redo an add, or undo a removal
            pick = edit.after if edit.kind == "add" else edit.before
            if edit.kind == "remove" and edit.recorded:
                self._drop_false_positive(edit.before)  # type: ignore[arg-type]
            self._save_picks(self._inserted(edit.index, pick))  # type: ignore[arg-type]
        else:  # undo an add, or redo a removal
            if edit.kind == "remove" and edit.recorded:
                self._append_false_positive(edit.before)  # type: ignore[arg-type]
            self._save_picks(self._deleted(edit.index))

    def _apply_mask(self, edit: Edit, *, reverse: bool) -> None:
        shown = self.mask()
        mask = np.zeros(self.mask_shape, dtype=bool) if shown is None else shown.copy()
        if reverse:
            edit.after_patches = [
                MaskPatch(
                    p.y0,
                    p.x0,
                    mask[p.y0 : p.y0 + p.before.shape[0], p.x0 : p.x0 + p.before.shape[1]].copy(),
                )
                for p in edit.patches
            ]
            patches = list(reversed(edit.patches))
        else:
            patches = list(reversed(edit.after_patches))
        for patch in patches:
            h, w = patch.before.shape
            mask[patch.y0 : patch.y0 + h, patch.x0 : patch.x0 + w] = patch.before
        self._save_mask(mask)

    # -- internals ----------------------------------------------------------------------
    def _begin(self, *, index_from_shown: bool = False) -> None:
        """Before an edit: take in another program's change. An edit naming a pick by its
        index in what was shown is refused then: the index may mean another pick now."""
        reloaded = self.reload_if_changed()
        if self.error is not None:
            raise UserError(f"{self.error}; this file is not changed until it is fixed")
        if reloaded and index_from_shown:
            raise UserError(
                f"{self.pick_path.name} changed on disk and was reloaded; nothing changed, "
                "try again on what is shown now"
            )

    def _log(self, edit: Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        rows, cols = self.shape
        return float(min(max(x, 0.0), cols - 1)), float(min(max(y, 0.0), rows - 1))

    def _pick(self, index: int) -> tuple[float, float, float]:
        p = self.picks
        return (float(p.x[index]), float(p.y[index]), float(p.score[index]))

    def _inserted(self, index: int, pick: tuple[float, float, float]) -> Picks:
        index = min(index, len(self.picks))
        p = self.picks
        return Picks(
            np.insert(p.x, index, pick[0]),
            np.insert(p.y, index, pick[1]),
            np.insert(p.score, index, pick[2]),
        )

    def _moved(self, index: int, x: float, y: float) -> Picks:
        p = self.picks
        moved = Picks(p.x.copy(), p.y.copy(), p.score.copy())
        moved.x[index], moved.y[index] = x, y
        return moved

    def _deleted(self, index: int) -> Picks:
        keep = np.ones(len(self.picks), dtype=bool)
        keep[index] = False
        return self.picks.subset(keep)

    def _save_picks(self, picks: Picks) -> None:
        """Write ``picks`` and only then hold them: what is shown is what is on disk."""
        self._write(picks, self.pick_path)
        self.picks = picks
        self._stamp = file_stamp(self.pick_path)

    def _save_mask(self, mask: np.ndarray) -> None:
        """Write ``mask`` and only then hold it."""
        self._write(mask, self.mask_path)
        self._mask = mask
        self._mask_stamp = file_stamp(self.mask_path)

    def _write(self, data: Picks | np.ndarray, path: Path) -> None:
        """Write picks (STAR) or a mask (TIFF) to ``path``; a disk's refusal is a UserError."""
        try:
            if isinstance(data, Picks):
                write_picks(path, data, self.micrograph_name, with_angles=True)
            else:
                write_mask(path, data)
        except OSError as error:
            raise UserError(f"{path}: cannot save ({error.strerror or error})") from None

    def _edit_false_positives(self, change: Callable[[Picks], Picks]) -> None:
        path = self.false_positives_path
        try:
            current = read_picks(path) if path.exists() else Picks()
        except StarError as error:
            raise UserError(f"{error}; not recording the false positive over it") from None
        self._write(change(current), path)

    def _append_false_positive(self, pick: tuple[float, float, float]) -> None:
        self._edit_false_positives(
            lambda fp: Picks.concat([fp, Picks([pick[0]], [pick[1]], [pick[2]])])
        )

    def _drop_false_positive(self, pick: tuple[float, float, float]) -> None:
        def drop(fp: Picks) -> Picks:
            same = np.flatnonzero(
                np.isclose(fp.x, pick[0], atol=1e-3) & np.isclose(fp.y, pick[1], atol=1e-3)
            )
            if not same.size:
                return fp
            keep = np.ones(len(fp), dtype=bool)
            keep[same[-1]] = False
            return fp.subset(keep)

        self._edit_false_positives(drop)
