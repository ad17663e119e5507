"""A folder's pick set out to other programs, and other programs' pick files in as a pick set.

Out (:func:`export_pick_set`), for the micrographs marked curated (all with
``all_micrographs``), each pick at or above its pick set's display threshold:

============  =========================================================================
format        what is written at ``out``
============  =========================================================================
cryosparc     one STAR of every pick (``rlnMicrographName``, centres), the file
              cryoSPARC's *Import Particle Stack* reads (as crYOLO's ``cryosparc.star``)
relion        a folder: ``<root>_<suffix>.star`` per micrograph and ``autopick.star``
              listing them (RELION 4/5's coordinate import, *Particle extraction*)
cbox          a folder: ``<root>.cbox`` per micrograph (crYOLO, box size needed)
topaz         one Topaz table (``image_name x_coord y_coord score``)
box           a folder: ``<root>.box`` per micrograph, EMAN1 integer corners (box size)
============  =========================================================================

In (:func:`import_pick_files`): Topaz tables, crYOLO CBOX and STAR, EMAN ``.box``, RELION
coordinate STARs, particle STARs of many micrographs and RELION's ``autopick.star`` (format
told by content), become ``matching/<root>_<suffix>.star`` of the folder, scores kept, to be
curated, compared and trained on like any pick set. A micrograph is found by the file's
micrograph name (Topaz's ``image_name``, ``rlnMicrographName``) or else the file's name
(``<root>.box``, ``<root>_autopick.star``), the longest root winning. Nothing is written when
a pick file of that suffix exists already unless ``replace``: then each one replaced is backed
up first (``matching/.backup``, ``boxnet-tui restore``) and a curated micrograph's mark is
cleared, as a re-pick does.

Convention, both ways: particle centres, in pixels of the micrograph as Warp and boxnet-tui
read it (x = column; y = row; RELION, cryoSPARC and Topaz agree on MRC micrographs). Warp
and boxnet-tui read a TIFF micrograph's rows flipped; a program that reads TIFF rows top
down (Topaz, crYOLO on TIFF micrographs) needs ``flip_y``, which maps ``y`` to
``height - 1 - y`` of each micrograph.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from boxnet_tui.curation_state import StateStore, load_state, pick_set_threshold
from boxnet_tui.errors import UserError
from boxnet_tui.io import interop, layout
from boxnet_tui.io.backups import back_up
from boxnet_tui.io.locking import locked
from boxnet_tui.io.micrographs import read_info, scan_folder
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.names import check_path_name

EXPORT_FORMATS = ("cryosparc", "relion", "cbox", "topaz", "box")
IMPORT_FORMATS = ("topaz", "cbox", "star", "box")
_ONE_FILE = ("cryosparc", "topaz")  # out is a file; the others write a folder of files
_PICK_EXTENSIONS = (".box", ".txt", ".tsv", ".cbox", ".star")
_SHOWN = 3


def _names(items: Iterable[str]) -> str:
    items = list(items)
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _flipped(picks: Picks, height: int) -> Picks:
    return Picks(picks.x, (height - 1) - picks.y, picks.score)


# --------------------------------------------------------------------------- out


@dataclass
class ExportSummary:
    """What an export wrote: the files, how many micrographs and picks."""

    files: list[Path] = field(default_factory=list)
    micrographs: int = 0
    picks: int = 0
    hidden: int = 0  # picks below the display threshold, left out
    threshold: float = 0.0  # the pick set's display threshold


def export_pick_set(
    folder: str | os.PathLike[str],
    suffix: str,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    all_micrographs: bool = False,
    box_size: float | None = None,
    micrograph_prefix: str = "",
    flip_y: bool = False,
) -> ExportSummary:
    """Write the pick set ``suffix`` of ``folder`` in another program's format (see the
    module's table) at ``out``: a file for ``cryosparc`` and ``topaz``, a folder (made when
    missing) for the others.

    Args:
        all_micrographs: every micrograph with picks, not only those marked curated.
        box_size: box side in pixels, needed by ``cbox`` and ``box``.
        micrograph_prefix: put before each micrograph's file name in ``rlnMicrographName``
            (``relion``, ``cryosparc``), e.g. RELION's ``MotionCorr/job002/Movies/``.
        flip_y: write ``height - 1 - y`` (a program reading TIFF rows top down).

    Raises:
        UserError: an unknown format, no such pick set, no curated micrograph (without
            ``all_micrographs``), a missing box size, ``out`` of the wrong kind, or an
            unreadable pick file (named). Nothing is written then.
    """
    folder = Path(folder)
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise UserError(
            f"unknown export format {fmt!r} (choose one of {', '.join(EXPORT_FORMATS)})"
        )
    check_path_name(suffix, "pick suffix")
    out = Path(out)
    if fmt in ("cbox", "box") and box_size is None:
        raise UserError(f"the {fmt} format stores boxes: give the box size (--box-size PX)")
    if fmt in _ONE_FILE and out.is_dir():
        raise UserError(f"{out}: is a folder; the {fmt} format is one file, such as {out}/picks")
    if fmt not in _ONE_FILE and out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file; the {fmt} format writes a folder of files")
    paths = {path.stem: path for path in scan_folder(folder)}
    files = layout.matched_files(layout.matching_dir(folder), suffix, paths)
    if not files:
        raise UserError(
            f"{layout.matching_dir(folder)}: no pick set {suffix!r} "
            f"(no <micrograph>_{suffix}.star for any micrograph of {folder})"
        )
    state, _ = load_state(folder)
    threshold = pick_set_threshold(state, suffix)  # what the app shows of this set
    chosen = list(files)
    if not all_micrographs:
        chosen = [root for root in files if root in state.curated]
        if not chosen:
            raise UserError(
                f"{folder}: none of the {len(files)} micrographs with picks {suffix!r} is marked "
                "curated (c in the app); --all exports every one"
            )
    summary = ExportSummary(threshold=threshold)
    sets: dict[str, Picks] = {}
    for root in chosen:  # every file read before anything is written
        picks = read_picks(files[root])
        shown = picks.above(threshold)
        summary.hidden += len(picks) - len(shown)
        if flip_y:
            shown = _flipped(shown, read_info(paths[root]).shape[0])
        sets[root] = shown
    summary.micrographs = len(sets)
    summary.picks = sum(len(picks) for picks in sets.values())
    names = {root: f"{micrograph_prefix}{paths[root].name}" for root in sets}
    if fmt == "cryosparc":
        interop.write_particles_star(out, {names[root]: picks for root, picks in sets.items()})
        summary.files.append(out)
    elif fmt == "topaz":
        interop.write_topaz(out, sets)
        summary.files.append(out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        listed = {}
        for root, picks in sets.items():
            if fmt == "relion":
                path = out / layout.pick_file_name(root, suffix)
                write_picks(path, picks, names[root])
                listed[names[root]] = str(path)
            elif fmt == "cbox":
                path = out / f"{root}.cbox"
                interop.write_cbox(path, picks, box_size)  # type: ignore[arg-type]
            else:
                path = out / f"{root}.box"
                interop.write_box(path, picks, box_size)  # type: ignore[arg-type]
            summary.files.append(path)
        if fmt == "relion":
            autopick = out / "autopick.star"
            interop.write_autopick_star(autopick, listed)
            summary.files.append(autopick)
    return summary


# --------------------------------------------------------------------------- in


@dataclass
class ImportSummary:
    """What an import wrote, replaced (backed up) and could not place."""

    written: dict[str, Path] = field(default_factory=dict)  # root -> STAR
    picks: int = 0
    backups: list[Path] = field(default_factory=list)
    uncurated: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # "name (in file)" with no micrograph


def _input_files(inputs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in _PICK_EXTENSIONS
                and not p.name.startswith(".")
            )
            if not found:
                raise UserError(
                    f"{path}: no pick files ({', '.join(_PICK_EXTENSIONS)}) in this folder"
                )
            files.extend(found)
        elif not path.exists():
            raise UserError(f"{path}: no such file or folder")
        else:
            files.append(path)
    return files


def _root_of(name: str, roots: frozenset[str]) -> str | None:
    stem = interop.image_stem(name)
    return layout.longest_root(stem, roots)


def read_pick_files(
    inputs: Iterable[str | os.PathLike[str]], roots: Iterable[str], fmt: str | None = None
) -> tuple[dict[str, tuple[Picks, Path]], list[str]]:
    """``({root: (picks, file)}, unmatched)`` of other programs' pick files.

    Raises:
        UserError: a file that cannot be read, or two files for one micrograph.
    """
    roots = frozenset(roots)
    found: dict[str, tuple[Picks, Path]] = {}
    unmatched: list[str] = []

    def add(name: str, picks: Picks, file: Path, fallback: str | None = None) -> None:
        root = _root_of(name, roots) if name else None
        if root is None and fallback is not None:
            root = _root_of(fallback, roots)
        if root is None:
            unmatched.append(f"{name or fallback} (in {file.name})")
            return
        if root in found:
            if found[root][1] == file:  # one file naming a micrograph in two ways
                picks = Picks.concat([found[root][0], picks])
            else:
                raise UserError(
                    f"{file}: picks for {root} came already from {found[root][1]}; "
                    "give one file a micrograph"
                )
        found[root] = (picks, file)

    files = [
        (file, interop.format_of(file, fmt) if fmt else interop.sniff_format(file))
        for file in _input_files(inputs)
    ]
    listings = {file: _autopick_listing(file) for file, kind in files if kind == "star"}
    listed = {
        path.resolve() for listing in listings.values() if listing for path in listing.values()
    }
    for file, kind in files:
        if file.resolve() in listed:
            continue  # read through the autopick.star that lists it
        if kind == "topaz":
            for name, picks in interop.read_topaz(file).items():
                add(name, picks, file)
        elif kind == "box":
            add(file.stem, interop.read_box(file), file)
        elif kind == "cbox":
            add(file.stem, interop.read_cbox(file), file)
        else:
            listing = listings.get(file)
            if listing is not None:
                for name, coordinates in listing.items():
                    add(name, read_picks(coordinates), coordinates, coordinates.stem)
                continue
            by_name = interop.read_star_by_micrograph(file)
            single = len(by_name) == 1
            for name, picks in by_name.items():
                add(name, picks, file, file.stem if single else None)
    return found, unmatched


def _autopick_listing(file: Path) -> dict[str, Path] | None:
    """RELION's ``autopick.star`` (a list of coordinate files), else None."""
    try:
        return interop.read_autopick_star(file)
    except UserError:
        return None


def import_pick_files(
    folder: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    suffix: str,
    fmt: str | None = None,
    *,
    replace: bool = False,
    flip_y: bool = False,
) -> ImportSummary:
    """Turn other programs' pick files into the pick set ``suffix`` of ``folder`` (see the
    module's notes). Each STAR is written atomically under its write lock.

    Raises:
        UserError: no micrograph matched, an unreadable input (named), or a pick file of the
            suffix that exists already without ``replace`` (nothing is written then).
    """
    folder = Path(folder)
    check_path_name(suffix, "pick suffix")
    if suffix.endswith(layout.FALSE_POSITIVES):
        raise UserError(f"pick suffix {suffix!r}: names removed picks, not a pick set")
    if fmt is not None:
        fmt = interop.format_of("", fmt)
    paths = {path.stem: path for path in scan_folder(folder)}
    found, unmatched = read_pick_files(inputs, paths, fmt)
    if not found:
        shown = f" (names not found: {_names(unmatched)})" if unmatched else ""
        raise UserError(f"{folder}: the pick files name none of its micrographs{shown}")
    targets = {root: layout.pick_path(folder, root, suffix) for root in found}
    existing = [root for root, path in targets.items() if path.exists()]
    if existing and not replace:
        raise UserError(
            f"{layout.matching_dir(folder)}: pick set {suffix!r} exists already for "
            f"{_names(existing)}; choose another --suffix, or --replace (the old files are "
            "backed up in matching/.backup)"
        )
    summary = ImportSummary(unmatched=unmatched)
    state = StateStore(folder) if existing else None
    for root, (picks, _) in found.items():
        if flip_y:
            picks = _flipped(picks, read_info(paths[root]).shape[0])
        star = targets[root]
        with locked(star):
            if star.exists():
                summary.backups.append(back_up(star))
            write_picks(star, picks, paths[root].name)
        summary.written[root] = star
        summary.picks += len(picks)
        if state is not None and root in existing and root in state.state.curated:
            state.set_curated(root, False)
            summary.uncurated.append(root)
    if state is not None and state.error:
        raise UserError(state.error)
    return summary


def summary_lines(summary: ImportSummary, folder: Path, suffix: str) -> list[str]:
    """What an import did, for the command line."""
    lines = [
        f"wrote pick set {suffix!r}: {summary.picks} picks on {len(summary.written)} "
        f"micrographs in {layout.matching_dir(folder)}"
    ]
    if summary.backups:
        lines.append(f"{len(summary.backups)} replaced files backed up in matching/.backup")
    if summary.uncurated:
        lines.append(f"curated mark cleared (picks replaced): {_names(summary.uncurated)}")
    if summary.unmatched:
        lines.append(f"not a micrograph of {folder}, skipped: {_names(summary.unmatched)}")
    return lines
