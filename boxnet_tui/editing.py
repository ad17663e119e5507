"""Curation edits of one micrograph: picks and junk mask, with undo/redo, always on disk.

Every edit is written (atomically) before the call returns, so a kill -9 between two keys
loses nothing. Two windows (or two processes) may edit one micrograph at once: each edit holds
the file's write lock (``io.locking``) while it reads the file as it is on disk, applies its one
change to that and renames the result into place, so both windows' edits land and each then
shows the merged file. A removal or a move names the pick by where it was shown, not by its
place in the file; undo and redo do the same, so they take back this window's edits only.
A pick file that cannot be read is never written; every block and column it holds is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from boxnet_tui.errors import MaskError, StarError, UserError
from boxnet_tui.file_stamp import FileStamp, file_stamp
from boxnet_tui.imaging import scaled_shape
from boxnet_tui.io import layout
from boxnet_tui.io.atomic import folder_syncs_together
from boxnet_tui.io.locking import locked
from boxnet_tui.io.masks import MASK_PIXEL_SIZE, read_mask, write_mask
from boxnet_tui.io.star import (
    SCORE,
    Picks,
    StarDocument,
    X,
    Y,
    read_star_document,
    write_star_document,
)
from boxnet_tui.pick_order import ON_PICK

Stamp = FileStamp | None
Pick = tuple[float, float, float]  # x, y, score
MANUAL_SCORE = 1.0  # a particle a person added is certain; never hidden by a display threshold
SAME_PICK = 1e-3  # px: a pick found this close to where it was shown is that pick (the file
# holds six decimals, memory more)
_UNREADABLE = b"?"  # the digest of a file that could not be read: never equal to a real one


def file_digest(path: Path) -> bytes | None:
    """A digest of the bytes of ``path`` (None when it does not exist). Unlike the stamp it
    cannot match another version of the file (an inode reused within one clock tick)."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except FileNotFoundError:
        return None
    except OSError:
        return _UNREADABLE


@dataclass
class MaskPatch:
    """The mask pixels of ``[y0:y1, x0:x1]`` before a brush dab."""

    y0: int
    x0: int
    before: np.ndarray


@dataclass
class Edit:
    """One undoable step. Picks are (x, y, score) triples, found again by position; ``index``
    is where the pick was (a hint for where undo puts it back); ``row`` is every value of an
    added or removed pick's row, so that undo restores columns the editor does not show."""

    kind: str  # "add" | "remove" | "move" | "mask"
    index: int = -1
    before: Pick | None = None
    after: Pick | None = None
    row: dict[str, object] | None = None
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
        self._document: StarDocument | None = None  # the pick file as last read or written
        self._stamp: Stamp = None
        self._digest: bytes | None = None
        self._undo: list[Edit] = []
        self._redo: list[Edit] = []
        self._mask: np.ndarray | None = None
        # the false-positives file as this window last wrote it: (digest, document)
        self._false_positives: tuple[bytes, StarDocument] | None = None
        self._mask_stamp: Stamp = None
        self.mask_error: str | None = None
        self.reload()

    # -- loading ------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the pick file again (missing = no picks yet); forget the edit history."""
        self._undo.clear()
        self._redo.clear()
        self._take_in_disk()

    def _take_in_disk(self) -> bool:
        """Hold the pick file as it is on disk now; True when it differs from what was held."""
        stamp, digest = file_stamp(self.pick_path), file_digest(self.pick_path)
        self._stamp = stamp
        if digest == self._digest and digest != _UNREADABLE:
            return False
        self._digest = digest
        if digest is None:
            self._document, self.picks, self.error = None, Picks(), None
            return True
        try:
            document = read_star_document(self.pick_path)
            picks = document.picks(self.pick_path)
            self._refuse_outside(picks)
            self.picks, self._document, self.error = picks, document, None
        except StarError as error:
            self._document, self.picks, self.error = None, Picks(), str(error)
        return True

    def _refuse_outside(self, picks: Picks) -> None:
        """Refuse a pick file with picks outside the image (1e30, NaN, another micrograph's
        scale): the cursor stays in the image, so Tab would stop at such a pick for ever and
        no key could reach it to remove it.

        Raises:
            StarError: one line, naming how many and the first.
        """
        rows, cols = self.shape
        inside = (
            (picks.x >= -ON_PICK)
            & (picks.x <= cols - 1 + ON_PICK)
            & (picks.y >= -ON_PICK)
            & (picks.y <= rows - 1 + ON_PICK)
        )
        outside = np.flatnonzero(~inside)
        if outside.size:
            first = int(outside[0])
            raise StarError(
                f"{self.pick_path.name}: {outside.size} of {len(picks)} picks outside the "
                f"{cols}x{rows} px image (the first at ({picks.x[first]:.6g}, "
                f"{picks.y[first]:.6g})); fix or remove them in the file"
            )

    def changed_on_disk(self) -> bool:
        return file_stamp(self.pick_path) != self._stamp

    def reload_if_changed(self) -> bool:
        """Show the pick file as another program or window left it; True if it changed.
        The edit history stays: undo finds this window's picks by position."""
        if not self.changed_on_disk() or not self._take_in_disk():
            return False
        self.notices.append(
            f"{self.pick_path.name} changed on disk (another program or window); showing it now"
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
        x, y = self._clamp(x, y)
        with self._editing() as document:
            score = MANUAL_SCORE if (self.picks.has_scores or not len(self.picks)) else math.nan
            row = document.row_for({X: x, Y: y, SCORE: score}, self.micrograph_name)
            index = len(self.picks)
            self._save_picks(document.inserted(index, row))
        self._log(Edit("add", index, after=(x, y, score), row=row))
        return index

    def remove(self, index: int, *, record: bool = True) -> None:
        """Remove pick ``index`` (of those shown); ``record`` also appends it to the
        false-positives file."""
        shown = self._shown(index)
        with self._editing() as document:
            at = self._find(shown, index)
            before, row = self._pick(at), document.row(at)
            if record:
                self._record_false_positive(row, before, present=True)
            try:
                self._save_picks(document.deleted(at))
            except UserError:
                if record:  # the pick stays: so must the false positives
                    self._record_false_positive(row, before, present=False)
                raise
        self._log(Edit("remove", at, before=before, row=row, recorded=record))

    def move(self, index: int, x: float, y: float, *, group: int | None = None) -> int:
        """Move pick ``index`` (of those shown) to (x, y); moves with the same ``group``
        undo as one. Returns the pick's index now (another window's edit may shift it)."""
        shown = self._shown(index)
        x, y = self._clamp(x, y)
        with self._editing() as document:
            at = self._find(shown, index)
            before = self._pick(at)
            self._save_picks(document.moved(at, x, y))
        after = (x, y, before[2])
        last = self._undo[-1] if self._undo else None
        if (
            group is not None
            and last is not None
            and last.kind == "move"
            and last.group == group
            and last.after is not None
            and _same(last.after, before)
        ):
            last.after, last.index = after, at
            self._redo.clear()
            return at
        self._log(Edit("move", at, before=before, after=after, group=group))
        return at

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
        self.paint_stroke([(x, y)], radius_angstrom, junk=junk, group=group)

    def paint_stroke(
        self,
        points: Sequence[tuple[float, float]],
        radius_angstrom: float,
        *,
        junk: bool = True,
        group: int | None,
    ) -> None:
        """A disc at each of ``points`` (micrograph px), written once: a mouse stroke's cells
        between two pointer reports cost one mask write, not one each."""
        with _write_lock(self.mask_path):  # another window's dab lands too: read under the lock
            shown = self.mask()
            if shown is None and self.mask_error is not None:
                raise UserError(f"{self.mask_error}; not painting over it")
            # a copy, held only once saved
            mask = np.zeros(self.mask_shape, dtype=bool) if shown is None else shown.copy()
            rows, cols = mask.shape
            radius = max(0.5, radius_angstrom / MASK_PIXEL_SIZE)
            patches, first = [], None
            for x, y in points:
                mx, my = x * cols / self.shape[1], y * rows / self.shape[0]
                y0, y1 = max(0, int(my - radius)), min(rows, math.ceil(my + radius) + 1)
                x0, x1 = max(0, int(mx - radius)), min(cols, math.ceil(mx + radius) + 1)
                if y0 >= y1 or x0 >= x1:
                    continue
                yy, xx = np.mgrid[y0:y1, x0:x1]
                disc = (yy + 0.5 - my) ** 2 + (xx + 0.5 - mx) ** 2 <= radius**2
                before = mask[y0:y1, x0:x1].copy()
                region = mask[y0:y1, x0:x1]
                region[disc] = junk
                patch = MaskPatch(y0, x0, before)
                first = first or patch
                if not np.array_equal(before, region):
                    patches.append(patch)
            if not patches:
                # nothing changed: written all the same the first time (an empty mask's file)
                if first is None or self.mask_path.exists():
                    return
                patches = [first]
            self._save_mask(mask)
        last = self._undo[-1] if self._undo else None
        self._redo.clear()
        if group is not None and last is not None and last.kind == "mask" and last.group == group:
            last.patches.extend(patches)
            return
        self._undo.append(Edit("mask", patches=patches, group=group))

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
        """Apply the last edit of ``source`` and move it to ``target``. A failed write leaves
        both as they were, so the user can try again; a step whose pick another window removed
        or moved meanwhile is dropped, so the next one can go on."""
        if not source:
            return None
        edit = source[-1]
        try:
            self._apply(edit, reverse=reverse)
        except _Gone as gone:
            source.pop()
            raise UserError(f"{gone}; that step is dropped from the history") from None
        target.append(source.pop())
        return edit

    def _apply(self, edit: Edit, *, reverse: bool) -> None:
        if edit.kind == "mask":
            with _write_lock(self.mask_path):
                self._apply_mask(edit, reverse=reverse)
            return
        with self._editing() as document:
            if edit.kind == "move":
                start, end = (edit.after, edit.before) if reverse else (edit.before, edit.after)
                at = self._find(start, edit.index)  # type: ignore[arg-type]
                self._save_picks(document.moved(at, end[0], end[1]))  # type: ignore[index]
                return
            pick = edit.after if edit.kind == "add" else edit.before
            assert pick is not None and edit.row is not None
            back = (edit.kind == "add") != reverse  # redo an add, or undo a removal
            if back:
                row = document.row_for(edit.row, self.micrograph_name)
                changed = document.inserted(edit.index, row)
            else:  # undo an add, or redo a removal
                at = self._find(pick, edit.index)
                row, changed = document.row(at), document.deleted(at)
            # a recorded removal's false positive leaves when the pick comes back, and returns
            recorded = edit.kind == "remove" and edit.recorded
            if recorded:
                self._record_false_positive(row, pick, present=not back)
            try:
                self._save_picks(changed)
            except UserError:
                if recorded:  # the picks stay as they were: so must the false positives
                    self._record_false_positive(row, pick, present=back)
                raise

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
    @contextlib.contextmanager
    def _editing(self) -> Iterator[StarDocument]:
        """Hold the pick file's write lock and yield the file as it is on disk now.

        A file already known to be unreadable (or not to be rewritten) and unchanged since is
        refused without touching the folder; otherwise it is read again under the lock.
        """
        if self._refusal() is not None and not self.changed_on_disk():
            raise UserError(self._refusal())
        # x writes picks and false positives: one folder fsync for both (a key under load)
        with _write_lock(self.pick_path), folder_syncs_together():
            if self._take_in_disk():
                self.notices.append(
                    f"{self.pick_path.name} changed on disk (another program or window); "
                    "this edit was applied to it as it is now"
                )
            refusal = self._refusal()
            if refusal is not None:
                raise UserError(refusal)
            yield self._document or StarDocument.new(self.micrograph_name)

    def _refusal(self) -> str | None:
        if self.error is not None:
            return f"{self.error}; this file is not changed until it is fixed"
        if self._document is not None and self._document.refusal is not None:
            return self._document.refusal
        return None

    def _shown(self, index: int) -> Pick:
        """The pick the user pointed at: ``index`` of what is shown."""
        if not 0 <= index < len(self.picks):
            raise IndexError(index)
        return self._pick(index)

    def _find(self, pick: Pick, hint: int) -> int:
        """Where ``pick`` is in the file as held now (``hint`` first, as duplicates may be).

        Raises:
            _Gone: another window removed or moved it.
        """
        p = self.picks
        same = (np.abs(p.x - pick[0]) <= SAME_PICK) & (np.abs(p.y - pick[1]) <= SAME_PICK)
        if 0 <= hint < len(p) and same[hint]:
            return hint
        found = np.flatnonzero(same)
        if not found.size:
            raise _Gone(
                f"{self.pick_path.name}: the pick at ({pick[0]:.0f}, {pick[1]:.0f}) was removed "
                "or moved in another window; nothing changed"
            )
        return int(found[0])

    def _log(self, edit: Edit) -> None:
        self._undo.append(edit)
        self._redo.clear()

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        rows, cols = self.shape
        return float(min(max(x, 0.0), cols - 1)), float(min(max(y, 0.0), rows - 1))

    def _pick(self, index: int) -> Pick:
        p = self.picks
        return (float(p.x[index]), float(p.y[index]), float(p.score[index]))

    def _save_picks(self, document: StarDocument) -> None:
        """Write ``document`` and only then hold it: what is shown is what is on disk."""
        picks = document.picks(self.pick_path)
        self._write(lambda: write_star_document(self.pick_path, document), self.pick_path)
        self._document, self.picks = document, picks
        self._stamp, self._digest = file_stamp(self.pick_path), file_digest(self.pick_path)

    def _save_mask(self, mask: np.ndarray) -> None:
        """Write ``mask`` and only then hold it."""
        self._write(lambda: write_mask(self.mask_path, mask), self.mask_path)
        self._mask = mask
        self._mask_stamp = file_stamp(self.mask_path)

    def _write(self, write: Callable[[], None], path: Path) -> None:
        """Run ``write`` (of ``path``); a disk's refusal is a UserError."""
        try:
            write()
        except OSError as error:
            raise UserError(f"{path}: cannot save ({error.strerror or error})") from None

    def _edit_false_positives(self, change: Callable[[StarDocument], StarDocument]) -> None:
        """Apply ``change`` to the false-positives file as it is on disk, under its lock."""
        path = self.false_positives_path
        with _write_lock(path):
            digest = file_digest(path)
            try:
                if digest is None:
                    current = StarDocument.new(self.micrograph_name)
                elif self._false_positives is not None and self._false_positives[0] == digest:
                    current = self._false_positives[1]  # the same bytes as last written: no parse
                else:
                    current = read_star_document(path)
            except StarError as error:
                raise UserError(f"{error}; not recording the false positive over it") from None
            if current.refusal is not None:
                raise UserError(f"{current.refusal}; not recording the false positive in it")
            changed = change(current)
            if changed is not current:
                self._false_positives = None
                self._write(lambda: write_star_document(path, changed), path)
                written = file_digest(path)
                if written is not None:
                    self._false_positives = (written, changed)

    def _record_false_positive(self, row: dict[str, object], pick: Pick, *, present: bool) -> None:
        """Append the removed pick ``row`` to the false-positives file (the values it has
        columns for), or with ``present`` False take the last one at ``pick`` out of it."""
        if present:
            self._edit_false_positives(
                lambda fp: fp.inserted(len(fp.table), fp.row_for(row, self.micrograph_name))
            )
            return

        def drop(fp: StarDocument) -> StarDocument:
            found = fp.picks(self.false_positives_path)
            same = np.flatnonzero(
                (np.abs(found.x - pick[0]) <= SAME_PICK) & (np.abs(found.y - pick[1]) <= SAME_PICK)
            )
            return fp.deleted(int(same[-1])) if same.size else fp

        self._edit_false_positives(drop)


class _Gone(UserError):
    """The pick an edit names is no longer in the file (another window removed or moved it)."""


def _same(a: Pick, b: Pick) -> bool:
    return abs(a[0] - b[0]) <= SAME_PICK and abs(a[1] - b[1]) <= SAME_PICK


@contextlib.contextmanager
def _write_lock(path: Path) -> Iterator[None]:
    """``locked(path)``; a folder where the lock cannot be made (read-only) is a UserError."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(path))
        except OSError as error:
            raise UserError(f"{path}: cannot save ({error.strerror or error})") from None
        yield
