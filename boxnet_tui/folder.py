"""A user's micrograph folder: its micrographs, their headers and which pick sets they have,
and what arrives in it while it is open.

Reading is lazy: listing a folder opens no file; :func:`describe` reads headers only.
:class:`FolderWatch` tells the micrographs that appeared since the last look, each once it is
whole (the rule of ``pick --watch``: settled, and complete by its own header,
:func:`incomplete`), and the pick files that appeared or changed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import tifffile

from boxnet_tui.errors import MicrographError, UserError
from boxnet_tui.file_stamp import FileStamp, file_stamp, stamp_of
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import TIFF_SUFFIXES, MicrographInfo, read_info, scan_folder

SETTLE_SECONDS = 5.0  # s a new file's size and mtime must hold still before it is read
FULL_RESCAN_SECONDS = 30.0  # s: list a folder at least this often, whatever its mtime says


@dataclass
class FolderEntry:
    """One micrograph of a folder: its header, or the one-line reason it cannot be read."""

    path: Path
    info: MicrographInfo | None = None
    error: str | None = None
    pick_files: dict[str, Path] = field(default_factory=dict)  # suffix -> STAR

    @property
    def root(self) -> str:
        return self.path.stem


def micrograph_roots(folder: str | os.PathLike[str]) -> list[str]:
    """Roots (file names without extension) of the micrographs of ``folder``."""
    return [path.stem for path in scan_folder(folder)]


def describe(folder: str | os.PathLike[str]) -> list[FolderEntry]:
    """Every micrograph of ``folder`` with its header and pick files; bad files carry an error.

    Raises:
        UserError: the folder is missing or holds no micrograph.
    """
    paths = scan_folder(folder)
    if not paths:
        raise UserError(f"{folder}: no micrographs (*.mrc, *.tif, *.tiff) in this folder")
    entries = {path.stem: FolderEntry(path) for path in paths}
    roots = frozenset(entries)
    matching = layout.matching_dir(folder)
    if matching.is_dir():
        for star in sorted(matching.glob("*.star")):
            split = layout.split_star_name(star.name, roots)
            if split is not None:
                entries[split[0]].pick_files[split[1]] = star
    for entry in entries.values():
        try:
            entry.info = read_info(entry.path)
        except UserError as error:
            entry.error = str(error)
    return list(entries.values())


# -- what arrives ---------------------------------------------------------------------------------
def incomplete(path: Path) -> str | None:
    """Why ``path`` is not whole by its own header (one line), or None when it is.

    An MRC must hold the 1024-byte header, the extended header and every value its header
    declares (anything else, :func:`boxnet_tui.io.micrographs.read_info` refuses); a TIFF must
    parse and hold every strip or tile that its pages point to.
    """
    try:
        read_info(path)
    except MicrographError as error:
        return str(error)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    try:
        size = path.stat().st_size
        with tifffile.TiffFile(path) as tif:
            end = 0
            for page in tif.pages:
                offsets = getattr(page, "dataoffsets", ()) or ()
                counts = getattr(page, "databytecounts", ()) or ()
                for offset, count in zip(offsets, counts, strict=False):
                    end = max(end, int(offset) + int(count))
    except Exception as error:  # tifffile raises many kinds on a partial file
        return f"{path}: not a whole TIFF yet ({type(error).__name__}: {error})"
    if end > size:
        return f"{path}: its TIFF pages point to byte {end}, the file holds {size}"
    return None


@dataclass
class FolderListing:
    """When a folder was last listed and its mtime then: a folder whose mtime has not moved
    gained or lost no file, so it need not be listed again (cheap at 10,000 files)."""

    mtime_ns: int | None = None
    trusted: bool = False  # the mtime was over a second old: a new file must have changed it
    at: float = -math.inf  # monotonic seconds

    def unchanged(self, directory: Path, now: float) -> bool:
        stamp = file_stamp(directory, unreadable_is_gone=True)
        if stamp is None:
            return False
        if stamp.mtime_ns == self.mtime_ns and self.trusted and now - self.at < FULL_RESCAN_SECONDS:
            return True
        # a file made within the mtime's granularity of the last listing may not move it
        self.mtime_ns, self.at = stamp.mtime_ns, now
        self.trusted = time.time() - stamp.mtime_ns / 1e9 > 1.0
        return False

    def failed(self) -> None:
        """The listing that :meth:`unchanged` allowed failed: list again at the next look."""
        self.at = -math.inf


class FolderWatch:
    """What arrived in ``folder`` since the micrographs ``known`` (roots) were listed.

    Poll it off the UI thread, one caller at a time. Memory: names and stats, no pixels.

    Args:
        settle: seconds a new file's size and mtime must hold still (a file already that old
            when first seen has settled), before its header is checked for completeness.
    """

    def __init__(
        self, folder: str | os.PathLike[str], known: Iterable[str], settle: float = SETTLE_SECONDS
    ) -> None:
        self.folder = Path(folder)
        self.known = set(known)
        self.settle = settle
        self._waiting: dict[Path, tuple[FileStamp, float]] = {}  # -> (stamp, since)
        self._micrographs = FolderListing()
        self._matching = FolderListing()
        self._picks: dict[str, FileStamp] | None = None  # root -> stamp of its pick file
        self._suffix: str | None = None

    def new_micrographs(self) -> list[Path]:
        """The micrographs not known before that are whole now, in natural order; each is
        reported once (known from then on)."""
        now = time.monotonic()
        try:
            directory = layout.micrographs_dir(self.folder)
        except UserError:  # unmounted or renamed for a moment: look again next time
            return []
        if self._micrographs.unchanged(directory, now) and not self._waiting:
            return []
        try:
            paths = scan_folder(self.folder)
        except UserError:
            return []
        new = [path for path in paths if path.stem not in self.known]
        ready = [path for path in new if self._whole(path, now)]
        for path in set(self._waiting) - set(new):  # gone again
            del self._waiting[path]
        for path in ready:
            self.known.add(path.stem)
            self._waiting.pop(path, None)
        return ready

    def _whole(self, path: Path, now: float) -> bool:
        stamp = file_stamp(path, unreadable_is_gone=True)
        if stamp is None:
            return False
        waiting = self._waiting.get(path)
        if waiting is None or waiting[0] != stamp:
            old = time.time() - stamp.mtime_ns / 1e9 >= self.settle  # written that long ago
            waiting = self._waiting[path] = (stamp, now - self.settle if old else now)
        return now - waiting[1] >= self.settle and incomplete(path) is None

    def changed_picks(self, suffix: str, roots: Container[str]) -> set[str]:
        """Roots (of ``roots``) whose pick file of ``suffix`` appeared, changed or went since
        the last call; none on the first call for a suffix (that one is the baseline)."""
        try:
            directory = layout.matching_dir(self.folder)
        except UserError:
            return set()
        if suffix == self._suffix and self._matching.unchanged(directory, time.monotonic()):
            return set()  # our writes and pick --watch's are atomic: a rename moves the mtime
        end = layout.pick_file_name("", suffix)  # "_<suffix>.star"
        found: dict[str, FileStamp] = {}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.endswith(end) and entry.name[: -len(end)] in roots:
                        found[entry.name[: -len(end)]] = stamp_of(entry.stat())
        except OSError:  # no matching/ yet
            pass
        before, self._picks = self._picks, found
        if before is None or suffix != self._suffix:
            self._suffix = suffix
            return set()
        return {
            root for root in found.keys() | before.keys() if found.get(root) != before.get(root)
        }
