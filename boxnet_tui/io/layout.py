"""Warp's folder layouts: where the micrographs, picks, false positives and masks live.

Three layouts are opened as they are, found by :func:`find_layout` (and said by
:meth:`FolderLayout.describe`):

```
flat (ours)              Warp 1                          Warp 2 (WarpTools, Warp 2 GUI)
<f>/<root>.mrc           <f>/<movie>.tif  (movies)       <f>/<movie>.tif (or elsewhere)
<f>/matching/, mask/     <f>/average/<root>.mrc          <f>/<proc>/average/<root>.mrc
<f>/boxnet2training/     <f>/matching/, mask/            <f>/<proc>/matching/, mask/
                         <f>/boxnet2training/            <f>/<proc>/boxnet3training/
```
``<proc>`` is Warp 2's processing folder (``warp_frameseries`` by convention); opening the
processing folder itself works too. In every layout:

```
<data>/matching/<root>_<suffix>.star               picks (suffix = model name, or "manual")
<data>/matching/<root>_<suffix>_falsepositives.star
<data>/mask/<root>.tif                             junk mask at 8 Å/px
<data>/matching/.backup/<root>_<suffix>.<stamp>.star, <data>/mask/.backup/<root>.<stamp>.tif
                                                   curated files a pick replaced
```
where ``<data>`` is the folder (flat, Warp 1) or the processing folder (Warp 2). The functions
here take the folder the user opened and resolve the layout themselves (cached, one ``stat``
a call), so every caller reads and writes where Warp does. The curation state
(``boxnet-tui.json``) stays in the folder opened.

A *suffix* is written here without its leading underscore. Every suffix that makes a path
here is one path component (:func:`boxnet_tui.names.check_path_name`), so no pick file lands
outside ``matching/`` whatever a state file, a model or a command line says.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from boxnet_tui.errors import UserError
from boxnet_tui.io.micrographs import MICROGRAPH_SUFFIXES
from boxnet_tui.names import check_path_name, is_path_name

MATCHING = "matching"
MASK = "mask"
AVERAGE = "average"
TRAINING = "boxnet2training"  # Warp 1's (and ours in a flat folder)
TRAINING_WARP2 = "boxnet3training"  # Warp 2's GUI: <processing folder>/boxnet3training
WARP2_PROCESSING = "warp_frameseries"  # WarpTools' conventional processing folder
FALSE_POSITIVES = "_falsepositives"
BACKUP = ".backup"  # hidden: no pick set, no micrograph

FLAT, WARP1, WARP2 = "flat", "warp1", "warp2"


@dataclass(frozen=True)
class FolderLayout:
    """Where a folder's micrographs and pick files are.

    Attributes:
        kind: ``flat`` (micrographs in the folder), ``warp1`` (averages in ``average/``,
            pick files beside it) or ``warp2`` (a processing folder holding ``average/`` and
            the pick files, the folder opened or a subfolder of it).
        folder: the folder opened.
        micrographs: the folder of the micrographs (Warp's averages).
        data: the folder that holds ``matching/``, ``mask/`` and the training examples.
    """

    kind: str
    folder: Path
    micrographs: Path
    data: Path

    @property
    def training(self) -> Path:
        """Where Warp puts a model's training examples: ``boxnet2training/`` (Warp 1, flat)
        or ``boxnet3training/`` in the processing folder (Warp 2's GUI)."""
        return self.data / (TRAINING_WARP2 if self.kind == WARP2 else TRAINING)

    def describe(self) -> str:
        """One line: which layout, and where micrographs, picks and masks are."""
        if self.kind == FLAT:
            return (
                f"{self.folder}: micrographs in the folder, picks in {self.data / MATCHING}, "
                f"masks in {self.data / MASK}"
            )
        name = "Warp 1" if self.kind == WARP1 else "Warp 2"
        return (
            f"{self.folder}: {name} layout, micrographs (averages) in {self.micrographs}, "
            f"picks in {self.data / MATCHING}, masks in {self.data / MASK}"
        )


_cache: dict[str, tuple[tuple[int | None, ...], FolderLayout]] = {}
_cache_lock = threading.Lock()


def _mtime(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _has_micrographs(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(
                entry.name.lower().endswith(MICROGRAPH_SUFFIXES)
                and not entry.name.startswith(".")
                and entry.is_file()
                for entry in entries
            )
    except OSError:
        return False


def _processing_folders(folder: Path) -> list[Path]:
    """Subfolders of ``folder`` holding Warp's ``average/`` with micrographs in it."""
    try:
        with os.scandir(folder) as entries:
            subfolders = [
                Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()
            ]
    except OSError:
        return []
    return sorted(p for p in subfolders if _has_micrographs(p / AVERAGE))


def _warp2_settings_names(folder: Path) -> set[str]:
    """Processing folders named by WarpTools settings files (``<name>.settings``) here."""
    try:
        return {p.stem for p in folder.glob("*.settings") if p.is_file()}
    except OSError:
        return set()


def _detect(folder: Path) -> tuple[tuple[int | None, ...], FolderLayout]:
    stamp: tuple[int | None, ...] = (_mtime(folder), _mtime(folder / AVERAGE))
    if _has_micrographs(folder / AVERAGE):
        # Warp 1, or Warp 2's processing folder opened itself (WarpTools keeps a
        # <name>.settings beside its processing folder <name>)
        parent = folder.parent
        kind = WARP2 if folder.name in _warp2_settings_names(parent) else WARP1
        return stamp, FolderLayout(kind, folder, folder / AVERAGE, folder)
    candidates = _processing_folders(folder)
    if candidates:
        named = _warp2_settings_names(folder)
        chosen = [p for p in candidates if p.name in named] or [
            p for p in candidates if p.name == WARP2_PROCESSING
        ]
        if len(candidates) == 1:
            chosen = candidates
        if len(chosen) != 1:
            shown = ", ".join(p.name for p in candidates)
            raise UserError(
                f"{folder}: several Warp processing folders with averages ({shown}); "
                "open the one to curate"
            )
        processing = chosen[0]
        stamp = (*stamp, _mtime(processing), _mtime(processing / AVERAGE))
        return stamp, FolderLayout(WARP2, folder, processing / AVERAGE, processing)
    return stamp, FolderLayout(FLAT, folder, folder, folder)


def find_layout(folder: str | os.PathLike[str]) -> FolderLayout:
    """The layout of ``folder``: Warp 1 when ``<folder>/average/`` holds micrographs, Warp 2
    when one subfolder does (``<folder>/<proc>/average/``), else flat. Cached while the
    folders it looked at are unchanged. A folder that does not exist is flat.

    Raises:
        UserError: several subfolders hold Warp averages and no settings file tells which.
    """
    folder = Path(folder)
    key = os.path.abspath(folder)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        stamp, found = cached
        now = (_mtime(folder), _mtime(folder / AVERAGE))
        if found.kind == WARP2 and found.data != found.folder:
            now = (*now, _mtime(found.data), _mtime(found.micrographs))
        if now == stamp and stamp[0] is not None:
            return found if found.folder == folder else _rebased(found, folder)
    if not folder.is_dir():
        return FolderLayout(FLAT, folder, folder, folder)
    stamp, found = _detect(folder)
    with _cache_lock:
        _cache[key] = (stamp, found)
    return found


def _rebased(found: FolderLayout, folder: Path) -> FolderLayout:
    """``found`` spelled from ``folder`` (the same folder, written another way)."""

    def move(path: Path) -> Path:
        return folder / path.relative_to(found.folder)

    return FolderLayout(found.kind, folder, move(found.micrographs), move(found.data))


def convention_note() -> str:
    """How picks are written, in one line (``pick`` says it, after where)."""
    return (
        "picks are particle centres in pixels of the micrograph as Warp reads it "
        "(x = column, y = row; TIFF rows flipped as Warp does)"
    )


def micrographs_dir(folder: str | os.PathLike[str]) -> Path:
    """The folder of the micrographs: the folder itself, or Warp's ``average/``."""
    return find_layout(folder).micrographs


def data_dir(folder: str | os.PathLike[str]) -> Path:
    """The folder of ``matching/`` and ``mask/``: the folder, or Warp 2's processing folder."""
    return find_layout(folder).data


def matching_dir(folder: str | os.PathLike[str]) -> Path:
    return data_dir(folder) / MATCHING


def mask_dir(folder: str | os.PathLike[str]) -> Path:
    return data_dir(folder) / MASK


def training_dir(folder: str | os.PathLike[str]) -> Path:
    """Where the training examples go: ``boxnet2training/``, or Warp 2's ``boxnet3training/``."""
    return find_layout(folder).training


def pick_path(folder: str | os.PathLike[str], root: str, suffix: str) -> Path:
    """``<folder>/matching/<root>_<suffix>.star``."""
    return matching_dir(folder) / pick_file_name(root, suffix)


def pick_file_name(root: str, suffix: str) -> str:
    """``<root>_<suffix>.star`` (``<root>.star`` without a suffix).

    Raises:
        UserError: the suffix is no single path component (``a/../..``, NUL, too long).
    """
    _check_suffix(suffix)
    return f"{root}_{suffix}.star" if suffix else f"{root}.star"


def false_positives_path(folder: str | os.PathLike[str], root: str, suffix: str) -> Path:
    _check_suffix(suffix)
    return matching_dir(folder) / f"{root}_{suffix}{FALSE_POSITIVES}.star"


def _check_suffix(suffix: str) -> None:
    if suffix:  # no suffix is Warp's <root>.star
        check_path_name(suffix, "pick suffix")


def mask_path(folder: str | os.PathLike[str], root: str) -> Path:
    return mask_dir(folder) / f"{root}.tif"


def backup_dir(directory: str | os.PathLike[str]) -> Path:
    """Where the backups of the files of ``directory`` (``matching/``, ``mask/``) go."""
    return Path(directory) / BACKUP


def longest_root(stem: str, roots: set[str] | frozenset[str]) -> str | None:
    """The longest root that ``stem`` is made of: ``stem == root`` or ``stem`` = ``root_...``.

    ``mic10_manual`` belongs to ``mic10``, not ``mic1``; ``mic1_a_manual`` to ``mic1_a`` when
    both ``mic1`` and ``mic1_a`` are micrographs.
    """
    if stem in roots:
        return stem
    cut = stem.rfind("_")
    while cut > 0:
        if stem[:cut] in roots:
            return stem[:cut]
        cut = stem.rfind("_", 0, cut)
    return None


def split_star_name(name: str, roots: set[str] | frozenset[str]) -> tuple[str, str] | None:
    """``(root, suffix)`` of a pick file name such as ``mic1_BoxNet.star``, or None.

    A name that is a root itself and also a shorter root with a suffix (``mic_manual.star``
    beside ``mic.mrc`` and ``mic_manual.mrc``) is the shorter root's: Warp writes every pick
    file with a suffix, so a suffix-less ``<root>.star`` is the less likely reading.
    """
    stem = name[:-5] if name.endswith(".star") else name
    root = longest_root(stem, roots)
    if root is None:
        return None
    cut = stem.rfind("_")
    if root == stem and cut > 0:
        root = longest_root(stem[:cut], roots) or root
    return root, stem[len(root) + 1 :]


def match_suffix(star: str | os.PathLike[str], roots: Iterable[str]) -> tuple[str, str]:
    """The (root, suffix) of the STAR file a user chose, as Warp's retraining dialog does.

    Raises:
        UserError: the name starts with no micrograph root.
    """
    star = Path(star)
    split = split_star_name(star.name, frozenset(roots))
    if split is None:
        raise UserError(f"{star}: its name does not start with the name of any micrograph here")
    return split


def matched_files(
    directory: str | os.PathLike[str], suffix: str, roots: Iterable[str]
) -> dict[str, Path]:
    """``{root: <directory>/<root>_<suffix>.star}`` for every root whose file exists."""
    directory = Path(directory)
    found = {}
    for root in roots:
        candidate = directory / pick_file_name(root, suffix)
        if candidate.is_file():
            found[root] = candidate
    return found


@dataclass(frozen=True)
class SuffixInfo:
    """One pick set of a folder: its suffix, how many micrographs have it, when last written."""

    suffix: str
    count: int
    modified: float


def available_suffixes(folder: str | os.PathLike[str], roots: Iterable[str]) -> list[SuffixInfo]:
    """Every pick suffix in ``<folder>/matching`` (false positives excluded), newest first."""
    roots = frozenset(roots)
    directory = matching_dir(folder)
    counts: dict[str, int] = {}
    newest: dict[str, float] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.name.endswith(".star") or not entry.is_file():
            continue
        split = split_star_name(entry.name, roots)
        if split is None or split[1].endswith(FALSE_POSITIVES):
            continue
        suffix = split[1]
        if suffix and not is_path_name(suffix):  # a name no pick set of ours may have
            continue
        counts[suffix] = counts.get(suffix, 0) + 1
        newest[suffix] = max(newest.get(suffix, 0.0), entry.stat().st_mtime)
    infos = [SuffixInfo(s, counts[s], newest[s]) for s in counts]
    return sorted(infos, key=lambda info: (-info.modified, info.suffix))


def common_tail(stems: Iterable[str]) -> str:
    """The longest ``_...`` ending that all ``stems`` share (``""`` if none).

    Used to find micrograph roots in a folder of STAR files that has no micrographs beside it:
    ``mic1_manual``, ``mic10_manual`` share ``_manual``, so the roots are ``mic1`` and ``mic10``.
    """
    stems = list(stems)
    if not stems:
        return ""
    shortest = min(stems, key=len)
    cut = shortest.find("_")
    while cut >= 0:
        tail = shortest[cut:]
        if all(s.endswith(tail) and len(s) > len(tail) for s in stems):
            return tail
        cut = shortest.find("_", cut + 1)
    return ""
