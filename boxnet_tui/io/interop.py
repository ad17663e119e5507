"""Pick files of other pickers: EMAN ``.box``, Topaz tables, crYOLO ``.cbox`` and RELION STAR.

All coordinates here are in pixels of the micrograph, on the same axes as our STAR files
(x = column, y = row of the array as stored; no flip). Picks are particle *centres*; formats
that store boxes store the box's corner, ``corner = centre - size / 2``, and reading gives
back ``centre = corner + size / 2``. Every write is atomic (a reader never sees half a file,
and a failed write leaves the old file as it was). Bad input raises :class:`UserError` (or
:class:`StarError`) with one line that names the file and the problem.

=========  ===========================  ===========================================
format     extension                    one file holds
=========  ===========================  ===========================================
``box``    ``.box``                     one micrograph, EMAN1 boxes, no scores
``topaz``  ``.txt``, ``.tsv``           many micrographs, integer centres, scores
``cbox``   ``.cbox``                    one micrograph, crYOLO boxes with confidence
``star``   ``.star``                    one micrograph, RELION coordinates (centres)
=========  ===========================  ===========================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from boxnet_tui.errors import StarError, UserError
from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.io.star import Picks, read_picks, read_star_blocks, write_picks

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


def _image_name(name: str) -> str:
    """A micrograph name without directory and image extension, as Topaz writes it."""
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
    crYOLO read). Values carry up to 3 decimals. Scores are not stored."""
    path = Path(path)
    size = _box_size(box_size, path)
    half = size / 2
    lines = [
        f"{_number(x - half)}\t{_number(y - half)}\t{_number(size)}\t{_number(size)}\n"
        for x, y in zip(picks.x.tolist(), picks.y.tolist(), strict=True)
    ]
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
        image = _image_name(str(name))
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
        xs, ys, scores = found.setdefault(_image_name(fields[name_at]), ([], [], []))
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
