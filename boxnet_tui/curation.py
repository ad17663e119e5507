"""A curation session on one folder: its micrographs, the pick set shown, the saved state.

This is what the app holds and sends intentions to; it knows nothing of the screen. The
micrograph list comes from the folder scan (no file opened); headers, pick counts and mask
presence are filled in by ``describe_entry``, which the app calls from a worker.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from boxnet_tui.curation_state import StateStore, pick_set_threshold
from boxnet_tui.display import DisplaySettings
from boxnet_tui.editing import MicrographEditor, Stamp
from boxnet_tui.errors import StarError, UserError
from boxnet_tui.file_stamp import file_stamp
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import read_info, scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.names import check_path_name

DEFAULT_DIAMETER = 200.0  # Å, Warp's default
MANUAL_SUFFIX = "manual"


@dataclass
class Entry:
    """One micrograph of the list; ``shape``/``pixel_size`` are None until described."""

    path: Path
    shape: tuple[int, int] | None = None
    pixel_size: float | None = None
    error: str | None = None
    picks: int | None = None  # above the display threshold; None: no pick file
    picks_error: str | None = None
    has_mask: bool = False
    described: bool = False
    # the pick file's scores, sorted, as last read, and that file's stamp: a new
    # threshold recounts 10,000 micrographs from these instead of reading every STAR again.
    # float32 (about 1 KB a micrograph); a score within 1e-7 of the threshold may count
    # either way in this list (training and export compare exactly)
    scores: np.ndarray | None = None
    scores_stamp: Stamp = None

    @cached_property
    def root(self) -> str:
        return self.path.stem  # kept: asked for 10,000s of times at start-up in a big folder


NAME_SEPARATORS = "_-. "


def distinct_names(roots: list[str], shortest_prefix: int = 6) -> list[str]:
    """The part of each name that tells the micrographs apart, for a narrow list.

    The prefix common to all names, cut back to just after a separator (``_-. ``) so that a
    field is never split, becomes "…": ``Falcon_2012_06_12-14_33_35_0`` among others of that
    day shows as ``…14_33_35_0``. Prefixes shorter than ``shortest_prefix`` are kept, and so
    is a name the prefix would leave empty.
    """
    if len(roots) < 2:
        return list(roots)
    prefix = os.path.commonprefix(roots)  # noqa: RUF071 (characters: names, not paths)
    cut = max((prefix.rfind(c) for c in NAME_SEPARATORS), default=-1) + 1
    if cut < shortest_prefix or any(len(root) == cut for root in roots):
        return list(roots)
    return ["…" + root[cut:] for root in roots]


class CurationSession:
    """The folder being curated.

    Args:
        folder: the micrograph folder.
        suffix: the pick set to show; default: the last one shown here, else the newest.
        diameter: particle diameter in Å; default: the last one used here, else 200.
        pixel_size: overrides the micrographs' headers.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        suffix: str | None = None,
        diameter: float | None = None,
        pixel_size: float | None = None,
    ) -> None:
        if suffix:
            check_path_name(suffix, "suffix")  # it becomes part of the files written
        self.folder = Path(folder).resolve()
        paths = scan_folder(self.folder)
        if not paths:
            raise UserError(f"{self.folder}: no micrographs (*.mrc, *.tif, *.tiff) in this folder")
        self.entries = [Entry(path) for path in paths]
        self.roots = frozenset(entry.root for entry in self.entries)
        self.pixel_size = pixel_size
        self.store = StateStore(self.folder)
        state = self.store.state
        self.suffixes = [info.suffix for info in layout.available_suffixes(self.folder, self.roots)]
        self.suffix = suffix or (state.suffix if state.suffix else None)
        if self.suffix is None:
            self.suffix = self.suffixes[0] if self.suffixes else MANUAL_SUFFIX
        self.diameter = float(diameter or state.diameter or DEFAULT_DIAMETER)
        self._editors: dict[str, MicrographEditor] = {}
        # editors are built ahead in workers (their STAR and mask reads off the UI thread):
        # one build per micrograph, or two editors would split its undo history
        self._editor_lock = threading.RLock()

    # -- what the header shows -------------------------------------------------------------
    @property
    def model(self) -> str:
        """The model the shown picks came from, when the suffix names one; else the default."""
        from boxnet_tui.model.info import DEFAULT_MODEL, find_model  # torch-free: model.json

        try:
            return find_model(self.suffix.lstrip("_")).name
        except UserError:
            return DEFAULT_MODEL

    def refresh_suffixes(self) -> list[str]:
        self.suffixes = [info.suffix for info in layout.available_suffixes(self.folder, self.roots)]
        return self.suffixes

    def set_suffix(self, suffix: str) -> None:
        with self._editor_lock:  # no worker may finish an editor of the old set after this
            self.suffix = check_path_name(suffix, "suffix")
            self._editors.clear()
        for entry in self.entries:
            entry.described = False
            entry.scores = entry.scores_stamp = None  # another set's file
        self.store.set_view(suffix=suffix)

    def set_diameter(self, diameter: float) -> None:
        self.diameter = diameter
        self.store.set_view(diameter=diameter)

    # -- the shown pick set's threshold, the view settings --------------------------------------
    @property
    def threshold(self) -> float:
        """The display threshold of the pick set shown (one for all its micrographs)."""
        return pick_set_threshold(self.store.state, self.suffix)

    def set_threshold(self, threshold: float) -> None:
        """Set the shown pick set's threshold; every micrograph's count is made again."""
        self.store.set_threshold(self.suffix, threshold)
        for entry in self.entries:
            entry.described = False

    @property
    def display(self) -> DisplaySettings:
        """The low-pass and contrast of this folder's micrographs, as last set."""
        return self.store.state.display

    @property
    def tab_by_score(self) -> bool:
        return self.store.state.tab_by_score

    def set_display(self, display: DisplaySettings, tab_by_score: bool) -> None:
        self.store.set_display(display, tab_by_score)

    # -- per micrograph ----------------------------------------------------------------------
    def is_curated(self, root: str) -> bool:
        return root in self.store.state.curated

    def toggle_curated(self, root: str) -> bool:
        curated = not self.is_curated(root)
        self.store.set_curated(root, curated)
        return curated

    def describe_entry(self, index: int) -> Entry:
        """Fill in the header, the pick count and mask presence of entry ``index``."""
        entry = self.entries[index]
        if entry.shape is None and entry.error is None:
            try:
                info = read_info(entry.path)
                entry.shape = info.shape
                entry.pixel_size = self.pixel_size or info.pixel_size
            except UserError as error:
                entry.error = str(error)
        self.update_entry(index)
        entry.described = True
        return entry

    def update_entry(self, index: int) -> None:
        """Count the picks shown of entry ``index`` again and look for its mask."""
        entry = self.entries[index]
        entry.has_mask = layout.mask_path(self.folder, entry.root).is_file()
        editor = self._editors.get(entry.root)
        if editor is not None and editor.error is None:
            entry.picks = int(editor.visible(self.threshold).sum())
            entry.picks_error = None
            return
        path = layout.pick_path(self.folder, entry.root, self.suffix)
        entry.picks, entry.picks_error = None, None
        stamp = file_stamp(path)
        if stamp is None:
            entry.scores = entry.scores_stamp = None
            return
        if entry.scores is None or stamp != entry.scores_stamp:
            try:
                picks = read_picks(path)
            except StarError as error:
                entry.picks_error = str(error)
                entry.scores = entry.scores_stamp = None
                return
            entry.scores = np.sort(np.asarray(picks.score, np.float32))  # unscored (NaN) last
            entry.scores_stamp = stamp
        # picks without a score are shown whatever the threshold, as Picks.above keeps them
        below = np.searchsorted(entry.scores, np.float32(self.threshold), side="left")
        entry.picks = int(entry.scores.size - below)

    def editor(self, index: int) -> MicrographEditor:
        """The editor of entry ``index`` (kept for the session, so undo survives n then p).

        Raises:
            UserError: the micrograph's header cannot be read.
        """
        with self._editor_lock:
            entry = self.entries[index]
            if not entry.described:
                self.describe_entry(index)
            if entry.error is not None:
                raise UserError(entry.error)
            editor = self._editors.get(entry.root)
            if editor is None:
                assert entry.shape is not None
                editor = MicrographEditor(
                    self.folder,
                    entry.root,
                    self.suffix,
                    entry.path.name,
                    entry.shape,
                    entry.pixel_size or 1.0,
                )
                self._editors[entry.root] = editor
            return editor

    def forget_editor(self, index: int) -> None:
        """Drop the editor of entry ``index`` (its file was rewritten, e.g. by picking)."""
        with self._editor_lock:
            self._editors.pop(self.entries[index].root, None)

    def diameter_px(self, index: int) -> float:
        entry = self.entries[index]
        return self.diameter / (entry.pixel_size or self.pixel_size or 1.0)

    def add_entries(self, paths: list[Path]) -> list[int]:
        """Micrographs that appeared in the folder since it was listed, appended: the indices
        of the others (the list's, the cache's) stay. Returns the new ones' indices."""
        start = len(self.entries)
        self.entries += [Entry(path) for path in paths if path.stem not in self.roots]
        self.roots = self.roots | {entry.root for entry in self.entries[start:]}
        return list(range(start, len(self.entries)))

    def index_of(self, root: str | None) -> int | None:
        for i, entry in enumerate(self.entries):
            if entry.root == root:
                return i
        return None
