"""Warp's folder layout: where picks, false positives and masks of a micrograph live.

```
<input>/<root>.mrc                                  micrograph
<input>/matching/<root>_<suffix>.star               picks (suffix = model name, or "manual")
<input>/matching/<root>_<suffix>_falsepositives.star
<input>/mask/<root>.tif                             junk mask at 8 Å/px
<input>/matching/.backup/<root>_<suffix>.<stamp>.star, <input>/mask/.backup/<root>.<stamp>.tif
                                                    curated files a pick replaced
```
A *suffix* is written here without its leading underscore. Every suffix that makes a path
here is one path component (:func:`boxnet_tui.names.check_path_name`), so no pick file lands
outside ``matching/`` whatever a state file, a model or a command line says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from boxnet_tui.errors import UserError
from boxnet_tui.names import check_path_name, is_path_name

MATCHING = "matching"
MASK = "mask"
TRAINING = "boxnet2training"
FALSE_POSITIVES = "_falsepositives"
BACKUP = ".backup"  # hidden: no pick set, no micrograph


def matching_dir(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / MATCHING


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
    return Path(folder) / MASK / f"{root}.tif"


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
