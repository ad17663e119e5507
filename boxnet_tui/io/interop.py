"""Pick files of other pickers: EMAN ``.box``, Topaz tables, crYOLO ``.cbox`` and RELION STAR.

All coordinates here are in pixels of the micrograph, on the same axes as our STAR files
(x = column, y = row of the micrograph's array as read here, which is Warp's and RELION's
convention; no flip). Picks are particle *centres*; formats that store boxes store the box's
corner, ``corner = centre - size / 2``, and reading gives back ``centre = corner + size / 2``.
Every write is atomic (a reader never sees half a file, and a failed write leaves the old file
as it was). Bad input raises :class:`UserError` (or :class:`StarError`) with one line that
names the file and the problem.

=============  ===================  =======================================================
format         extension            one file holds
=============  ===================  =======================================================
``box``        ``.box``             one micrograph, EMAN1 boxes (integer corners), no scores
``topaz``      ``.txt``, ``.tsv``   many micrographs, integer centres, scores
``cbox``       ``.cbox``            one micrograph, crYOLO boxes with confidence
``star``       ``.star``            RELION coordinates (centres): one micrograph, or many
                                    told apart by ``rlnMicrographName`` (cryoSPARC's import)
=============  ===================  =======================================================

:func:`sniff_format` tells them apart by content. The folder-level commands (a whole pick set
out, files in as a pick set) are in :mod:`boxnet_tui.io.pick_exchange`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from boxnet_tui.errors import StarError, UserError
from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.io.star import (
    NAME,
    SCORE,
    Picks,
    X,
    Y,
    read_picks,
    read_star_blocks,
    write_picks,
)

FORMATS = ("box", "topaz", "cbox", "star")
_ALIASES = {
    "box": "box",
    "eman": "box",
    "topaz": "topaz",
    "txt": "topaz",
    "tsv": "topaz",
    "cbox": "cbox",
    "cryolo": "cbox",
    "star": "star",
    "relion": "star",
}
_EXTENSIONS = {".box": "box", ".txt": "topaz", ".tsv": "topaz", ".cbox": "cbox", ".star": "star"}
_IMAGE_EXTENSIONS = (".mrc", ".mrcs", ".tif", ".tiff", ".png", ".jpg", ".jpeg")

TOPAZ_COLUMNS = ("image_name", "x_coord", "y_coord", "score")
CBOX_COLUMNS = (
    "_CoordinateX",
    "_CoordinateY",
    "_CoordinateZ",
    "_Width",
    "_Height",
    "_Depth",
    "_EstWidth",
    "_EstHeight",
    "_Confidence",
    "_NumBoxes",
    "_Angle",
)
_NA = "<NA>"


# --------------------------------------------------------------------------- helpers


def _number(value: float, decimals: int = 3) -> str:
    """``value`` with at most ``decimals`` decimals and no trailing zeros (``12``, ``12.25``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _box_size(box_size: float | None, path: Path) -> float:
    try:
        size = float(box_size)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UserError(f"{path}: a box size (px) is needed for this format") from None
    if not (math.isfinite(size) and size > 0):
        raise UserError(f"{path}: the box size must be a positive number of pixels, not {size}")
    return size


def _read_text(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a pick file")
    try:
        return path.read_text(encoding="utf-8")
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file (it is not UTF-8)") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror or error})") from None


def _parse_float(text: str, path: Path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"{path}: line {line}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UserError(f"{path}: line {line}: {what} is {text}, not a finite number")
    return value


def image_stem(name: str) -> str:
    """A micrograph name without folder and image extension (``J2/mic1.mrc`` -> ``mic1``), as
    Topaz writes it and as a micrograph's root is matched."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    lower = base.lower()
    for extension in _IMAGE_EXTENSIONS:
        if lower.endswith(extension) and len(base) > len(extension):
            return base[: -len(extension)]
    return base


# --------------------------------------------------------------------------- EMAN .box


def write_box(path: str | os.PathLike[str], picks: Picks, box_size: float) -> None:
    """Write an EMAN1 ``.box`` file: one ``x_corner<TAB>y_corner<TAB>width<TAB>height`` line a
    pick, ``corner = centre - box_size / 2``, same axes as STAR (no flip; what RELION and
    crYOLO read). Every value is a whole number of pixels, as EMAN writes them (Topaz reads
    each with ``int()``): the box size is rounded, and so is each corner. Scores are not
    stored."""
    path = Path(path)
    size = max(1, round(_box_size(box_size, path)))
    corners_x = np.rint(picks.x - size / 2).astype(np.int64).tolist()
    corners_y = np.rint(picks.y - size / 2).astype(np.int64).tolist()
    lines = [f"{x}\t{y}\t{size}\t{size}\n" for x, y in zip(corners_x, corners_y, strict=True)]
    atomic_write_text(path, "".join(lines))


def read_box(path: str | os.PathLike[str]) -> Picks:
    """Read an EMAN1 ``.box`` file (tabs or spaces; ``#`` lines and blank lines skipped).

    Each line is ``x_corner y_corner width height``, optionally with EMAN's 5th column (a box
    type flag, ignored); the pick is the box centre, ``corner + size / 2``. No scores.

    Raises:
        UserError: missing or unreadable file, a line with another number of fields, a field
            that is not a finite number, or a box size <= 0.
    """
    path = Path(path)
    xs: list[float] = []
    ys: list[float] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (4, 5):
            raise UserError(
                f"{path}: line {number} has {len(fields)} fields, "
                "expected 4 (x_corner y_corner width height)"
            )
        x, y, width, height = (
            _parse_float(text, path, number, what)
            for text, what in zip(fields[:4], ("x", "y", "width", "height"), strict=True)
        )
        if width <= 0 or height <= 0:
            raise UserError(f"{path}: line {number}: box size {width} x {height} is not positive")
        xs.append(x + width / 2)
        ys.append(y + height / 2)
    return Picks(xs, ys)


# --------------------------------------------------------------------------- Topaz


def write_topaz(path: str | os.PathLike[str], picks_by_image: Mapping[str, Picks]) -> None:
    """Write a Topaz coordinate table for many micrographs.

    Tab separated, header ``image_name x_coord y_coord score``; ``image_name`` is the
    micrograph name without folder or extension, ``x_coord``/``y_coord`` the particle centre
    rounded to whole pixels (x = column, y = row, Topaz's convention, the same axes as STAR).
    The ``score`` column is written only when some picks carry scores (6 significant digits;
    ``nan`` for a pick without one); without it the file is Topaz's training-target format.
    A micrograph with no picks has no row, so it is absent when the file is read back.
    """
    path = Path(path)
    with_score = any(picks.has_scores for picks in picks_by_image.values())
    columns = TOPAZ_COLUMNS if with_score else TOPAZ_COLUMNS[:3]
    lines = ["\t".join(columns) + "\n"]
    for name, picks in picks_by_image.items():
        image = image_stem(str(name))
        if not image or any(c in image for c in "\t\n\r"):
            raise UserError(f"{path}: {name!r} is not a usable image name")
        x = np.rint(picks.x).astype(np.int64).tolist()
        y = np.rint(picks.y).astype(np.int64).tolist()
        if with_score:
            scores = [f"{s:.6g}" for s in picks.score.tolist()]
            lines.extend(f"{image}\t{a}\t{b}\t{s}\n" for a, b, s in zip(x, y, scores, strict=True))
        else:
            lines.extend(f"{image}\t{a}\t{b}\n" for a, b in zip(x, y, strict=True))
    atomic_write_text(path, "".join(lines))


def read_topaz(path: str | os.PathLike[str]) -> dict[str, Picks]:
    """Read a Topaz coordinate table: ``{image_name: Picks}`` in the order of first appearance.

    Needs a header with ``image_name``, ``x_coord``, ``y_coord`` (any order, tabs or spaces);
    ``score`` is optional (NaN scores without it); other columns are ignored. Image names lose
    any folder and image extension. Coordinates may be integers or decimals.

    Raises:
        UserError: missing or unreadable file, a missing column, a row with another number of
            fields than the header, or a coordinate or score that is not a number.
    """
    path = Path(path)
    lines = _read_text(path).splitlines()
    content = [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not content:
        raise UserError(f"{path}: empty file, expected a Topaz header (image_name x_coord y_coord)")
    header_line, header = content[0]
    missing = [c for c in TOPAZ_COLUMNS[:3] if c not in header]
    if missing:
        raise UserError(
            f"{path}: line {header_line}: missing column {', '.join(missing)} "
            "(a Topaz table needs image_name, x_coord, y_coord)"
        )
    name_at, x_at, y_at = (header.index(c) for c in TOPAZ_COLUMNS[:3])
    score_at = header.index("score") if "score" in header else None
    found: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for number, fields in content[1:]:
        if len(fields) != len(header):
            raise UserError(
                f"{path}: line {number} has {len(fields)} fields, the header has {len(header)}"
            )
        x = _parse_float(fields[x_at], path, number, "x_coord")
        y = _parse_float(fields[y_at], path, number, "y_coord")
        score = math.nan
        if score_at is not None and fields[score_at].lower() not in ("nan", _NA.lower()):
            try:
                score = float(fields[score_at])
            except ValueError:
                raise UserError(
                    f"{path}: line {number}: score {fields[score_at]!r} is not a number"
                ) from None
        xs, ys, scores = found.setdefault(image_stem(fields[name_at]), ([], [], []))
        xs.append(x)
        ys.append(y)
        scores.append(score)
    return {name: Picks(*columns) for name, columns in found.items()}


# --------------------------------------------------------------------------- crYOLO CBOX


def write_cbox(path: str | os.PathLike[str], picks: Picks, box_size: float) -> None:
    """Write a crYOLO ``.cbox`` file (CBOX format 1.0, a STAR file), as crYOLO 1.8+ writes it.

    Blocks: ``data_global`` (``_cbox_format_version 1.0``), ``data_cryolo`` (one row a pick,
    the 11 columns ``_CoordinateX _CoordinateY _CoordinateZ _Width _Height _Depth _EstWidth
    _EstHeight _Confidence _NumBoxes _Angle``) and an empty ``data_cryolo_include`` loop
    (``_slice_index``; only tomograms list slices there). Conventions, as in crYOLO's
    ``CoordsIO.write_cbox_file``: X/Y are the box's corner, ``centre - width / 2``, on the
    same axes as STAR (no flip); for a 2-D micrograph Z, Depth, NumBoxes and Angle are
    ``<NA>``. We have no size estimate, so EstWidth/EstHeight carry the box size.
    Confidence is the pick's score, or 1 for a pick without one (crYOLO compares it with its
    threshold, so it must be a number: unscored picks are read back with score 1).
    """
    path = Path(path)
    size = _box_size(box_size, path)
    half = size / 2
    text = _number(size)
    lines = [
        "\ndata_global\n\n_cbox_format_version 1.0\n\ndata_cryolo\n\nloop_\n",
        *(f"{column} #{k}\n" for k, column in enumerate(CBOX_COLUMNS, start=1)),
    ]
    score = np.where(np.isnan(picks.score), 1.0, picks.score)
    for x, y, s in zip(picks.x.tolist(), picks.y.tolist(), score.tolist(), strict=True):
        row = (_number(x - half), _number(y - half), _NA, text, text, _NA, text, text)
        lines.append("\t".join((*row, f"{s:.6g}", _NA, _NA)) + "\n")
    lines.append("\ndata_cryolo_include\n\nloop_\n_slice_index #1\n\n")
    atomic_write_text(path, "".join(lines))


def read_cbox(path: str | os.PathLike[str]) -> Picks:
    """Read the ``data_cryolo`` block of a crYOLO ``.cbox`` file.

    Centre = ``_CoordinateX/Y + _Width/_Height / 2``; ``_Confidence`` becomes the score
    (NaN where it is ``<NA>``). Other columns are ignored.

    Raises:
        StarError: missing or unreadable file, no ``data_cryolo`` block, a missing column,
            or a coordinate, size or confidence that is not a number.
    """
    path = Path(path)
    _read_text(path)  # the missing/unreadable/binary file messages
    table = read_star_blocks(path, "CBOX (STAR)").get("cryolo")
    if table is None:
        raise StarError(f"{path}: no data_cryolo block, not a crYOLO CBOX file")
    needed = ("CoordinateX", "CoordinateY", "Width", "Height")
    missing = [f"_{c}" for c in needed if c not in table.columns]
    if missing:
        raise StarError(f"{path}: data_cryolo has no {', '.join(missing)} column")
    values = {}
    for column in (*needed, "Confidence"):
        if column not in table.columns:
            continue
        raw = table[column].replace(_NA, np.nan)
        try:
            values[column] = pd.to_numeric(raw, errors="raise").to_numpy(np.float64)
        except (ValueError, TypeError):
            raise StarError(f"{path}: column _{column} holds text, not numbers") from None
    for column in needed:
        if not np.isfinite(values[column]).all():
            raise StarError(f"{path}: column _{column} has empty, NaN or infinite values")
    if (values["Width"] <= 0).any() or (values["Height"] <= 0).any():
        raise StarError(f"{path}: a box has a width or height <= 0")
    return Picks(
        values["CoordinateX"] + values["Width"] / 2,
        values["CoordinateY"] + values["Height"] / 2,
        values.get("Confidence"),
    )


# --------------------------------------------------------------------------- STAR, many micrographs

COORDINATE_FILES = "coordinate_files"  # RELION's autopick.star block
MICROGRAPH_COORDINATES = "rlnMicrographCoordinates"


def write_particles_star(path: str | os.PathLike[str], picks_by_name: Mapping[str, Picks]) -> None:
    """Write the picks of many micrographs as one RELION particle STAR, the file cryoSPARC's
    *Import Particle Stack* takes (with "ignore raw data" and "ignore pose data"; it matches
    each row to a micrograph by ``rlnMicrographName``), laid out as crYOLO's
    ``cryosparc.star``: one unnamed ``data_`` block, columns ``rlnMicrographName``,
    ``rlnCoordinateX``, ``rlnCoordinateY`` (centres, pixels) and, when any pick has a score,
    ``rlnAutopickFigureOfMerit`` (0 for a pick without one).
    """
    path = Path(path)
    with_score = any(picks.has_scores for picks in picks_by_name.values())
    columns = [NAME, X, Y] + ([SCORE] if with_score else [])
    lines = ["\n# written by boxnet-tui\n\ndata_\n\nloop_\n"]
    lines += [f"_{column} #{k}\n" for k, column in enumerate(columns, start=1)]
    for name, picks in picks_by_name.items():
        name = str(name)
        if not name or any(c.isspace() for c in name):
            raise UserError(f"{path}: micrograph name {name!r} is empty or holds white space")
        scores = np.nan_to_num(picks.score, nan=0.0).tolist()
        for x, y, score in zip(picks.x.tolist(), picks.y.tolist(), scores, strict=True):
            row = [name, f"{x:.6f}", f"{y:.6f}"] + ([f"{score:.6f}"] if with_score else [])
            lines.append("\t".join(row) + "\n")
    lines.append("\n")
    atomic_write_text(path, "".join(lines))


def write_autopick_star(path: str | os.PathLike[str], files: Mapping[str, str]) -> None:
    """Write RELION 4/5's ``autopick.star``: block ``data_coordinate_files`` listing, for each
    micrograph (``rlnMicrographName``, as RELION's micrographs STAR names it), its coordinate
    STAR file (``rlnMicrographCoordinates``). Paths are written as given: RELION reads them
    relative to its project folder."""
    path = Path(path)
    lines = [
        "\n# version 30001\n\ndata_coordinate_files\n\nloop_\n",
        f"_{NAME} #1\n_{MICROGRAPH_COORDINATES} #2\n",
    ]
    for name, coordinates in files.items():
        for value in (name, coordinates):
            if not value or any(c.isspace() for c in value):
                raise UserError(f"{path}: path {value!r} is empty or holds white space")
        lines.append(f"{name}\t{coordinates}\n")
    lines.append("\n")
    atomic_write_text(path, "".join(lines))


def read_autopick_star(path: str | os.PathLike[str]) -> dict[str, Path]:
    """``{rlnMicrographName: coordinate file}`` of a RELION ``autopick.star`` (or any STAR with
    a ``rlnMicrographCoordinates`` column). A relative coordinate path is taken relative to
    the current folder (RELION's project folder) when it exists there, else to the STAR's own
    folder.

    Raises:
        StarError: not a STAR file, or no such column.
    """
    path = Path(path)
    for table in read_star_blocks(path, "autopick STAR").values():
        if MICROGRAPH_COORDINATES in table.columns and NAME in table.columns:
            found = {}
            for name, value in zip(table[NAME], table[MICROGRAPH_COORDINATES], strict=True):
                file = Path(str(value))
                if not file.is_absolute() and not file.exists():
                    file = path.parent / file
                found[str(name)] = file
            return found
    raise StarError(f"{path}: no {NAME} / {MICROGRAPH_COORDINATES} columns (not autopick.star)")


def read_star_by_micrograph(path: str | os.PathLike[str]) -> dict[str, Picks]:
    """The picks of a coordinate STAR file by ``rlnMicrographName`` (as written in the file):
    a particle STAR of many micrographs (cryoSPARC's import, RELION's particles) splits into
    one set each. A file without that column gives ``{"": picks}``.

    Raises:
        StarError: missing, unreadable, or without usable coordinate columns.
    """
    path = Path(path)
    picks = read_picks(path)
    names = None
    for table in read_star_blocks(path).values():
        if X in table.columns and Y in table.columns:
            if NAME in table.columns:
                names = np.asarray([str(v) for v in table[NAME]])
            break
    if names is None or len(names) != len(picks):
        return {"": picks}
    found: dict[str, Picks] = {}
    for name in dict.fromkeys(names.tolist()):
        found[name] = picks.subset(names == name)
    return found


# --------------------------------------------------------------------------- telling formats


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def sniff_format(path: str | os.PathLike[str]) -> str:
    """The format of a pick file told by its content, whatever its name: ``cbox`` (a STAR
    with a ``data_cryolo`` block), ``star`` (any other STAR), ``topaz`` (a header with
    ``image_name``, ``x_coord``, ``y_coord``) or ``box`` (lines of 4 or 5 numbers).

    Raises:
        UserError: missing, unreadable, or none of these.
    """
    path = Path(path)
    text = _read_text(path)
    lines = [line.strip() for line in text.splitlines()]
    content = [line for line in lines if line and not line.startswith("#")]
    if any(line.startswith("data_") for line in content):
        return "cbox" if any(line.split()[0] == "data_cryolo" for line in content) else "star"
    if not content:
        return format_of(path)  # an empty file: its extension tells (an empty .box is valid)
    fields = content[0].split()
    if {"image_name", "x_coord", "y_coord"} <= set(fields):
        return "topaz"
    if len(fields) in (4, 5) and all(_NUMBER.match(field) for field in fields):
        return "box"
    raise UserError(
        f"{path}: cannot tell the pick format from its content (not STAR, CBOX, a Topaz table "
        "or EMAN .box); name it with --format"
    )


# --------------------------------------------------------------------------- dispatch


def format_of(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format name (``box``, ``topaz``, ``cbox``, ``star``) of ``fmt`` or of the path's
    extension (``.box``, ``.txt``/``.tsv``, ``.cbox``, ``.star``).

    Raises:
        UserError: an unknown format name or extension.
    """
    if fmt is not None:
        name = _ALIASES.get(fmt.lower().lstrip("."))
        if name is None:
            raise UserError(f"unknown pick format {fmt!r} (choose one of {', '.join(FORMATS)})")
        return name
    name = _EXTENSIONS.get(Path(path).suffix.lower())
    if name is None:
        raise UserError(
            f"{path}: cannot tell the pick format from the extension "
            "(.box, .txt/.tsv for Topaz, .cbox, .star), name the format"
        )
    return name


def export_picks(
    path: str | os.PathLike[str],
    picks: Picks | Mapping[str, Picks],
    fmt: str | None = None,
    *,
    box_size: float | None = None,
    micrograph_name: str | None = None,
) -> None:
    """Write picks in another picker's format (by ``fmt``, else the extension).

    Args:
        picks: the picks of one micrograph; for ``topaz`` also ``{image_name: Picks}``.
        box_size: box side in px, needed by ``box`` and ``cbox``.
        micrograph_name: ``rlnMicrographName`` for ``star`` (default ``<file stem>.mrc``) and
            the image name of a single micrograph for ``topaz`` (default the file stem).

    Raises:
        UserError: unknown format, a missing box size, or several micrographs for a format
            that holds one.
    """
    path = Path(path)
    name = format_of(path, fmt)
    if not isinstance(picks, Picks):
        if name == "topaz":
            write_topaz(path, picks)
            return
        if len(picks) != 1:
            raise UserError(f"{path}: the {name} format holds one micrograph, not {len(picks)}")
        only_name, picks = next(iter(picks.items()))
        micrograph_name = micrograph_name or only_name
    if name == "box":
        write_box(path, picks, _box_size(box_size, path))
    elif name == "cbox":
        write_cbox(path, picks, _box_size(box_size, path))
    elif name == "topaz":
        write_topaz(path, {micrograph_name or path.stem: picks})
    else:
        write_picks(path, picks, micrograph_name or f"{path.stem}.mrc")


def import_picks(path: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Picks] | Picks:
    """Read another picker's file (by ``fmt``, else the extension).

    Returns ``{image_name: Picks}`` for ``topaz`` (one file, many micrographs) and ``Picks``
    for ``box``, ``cbox`` and ``star`` (one file, one micrograph).

    Raises:
        UserError: unknown format or bad input (StarError, a UserError, for STAR and CBOX).
    """
    name = format_of(path, fmt)
    if name == "box":
        return read_box(path)
    if name == "topaz":
        return read_topaz(path)
    if name == "cbox":
        return read_cbox(path)
    return read_picks(path)
