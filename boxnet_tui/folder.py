"""A user's micrograph folder: its micrographs, their headers and which pick sets they have.

Reading is lazy: listing a folder opens no file; :func:`describe` reads headers only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import MicrographInfo, read_info, scan_folder


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
