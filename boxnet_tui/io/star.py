"""RELION coordinate STAR files: the picks of one micrograph.

Coordinates are in pixels of the original micrograph, at the particle centre, with
x = column and y = row of the array as stored (RELION's and Warp's convention).
"""

from __future__ import annotations

import codecs
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
from starfile.writer import loop_block, package_info, simple_block

from boxnet_tui.errors import StarError
from boxnet_tui.io.atomic import atomic_write_text

X, Y, NAME, SCORE = (
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnMicrographName",
    "rlnAutopickFigureOfMerit",
)
ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")


def _floats(values: object = ()) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1)


@dataclass
class Picks:
    """Particle positions of one micrograph; ``score`` is NaN where the file has none."""

    x: np.ndarray = field(default_factory=_floats)
    y: np.ndarray = field(default_factory=_floats)
    score: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = _floats(self.x)
        self.y = _floats(self.y)
        self.score = np.full(self.x.shape, np.nan) if self.score is None else _floats(self.score)
        if not (self.x.shape == self.y.shape == self.score.shape):
            raise ValueError("x, y and score must have the same length")

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def has_scores(self) -> bool:
        return bool(len(self)) and not bool(np.isnan(self.score).all())

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) array of (x, y)."""
        return np.stack([self.x, self.y], axis=1)

    def subset(self, keep: np.ndarray) -> Picks:
        return Picks(self.x[keep], self.y[keep], self.score[keep])

    def above(self, threshold: float) -> Picks:
        """Picks whose score is at least ``threshold`` (picks without a score are kept)."""
        return self.subset(~(self.score < threshold))

    @staticmethod
    def concat(parts: list[Picks]) -> Picks:
        if not parts:
            return Picks()
        return Picks(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.score for p in parts]),
        )


def read_picks(path: str | os.PathLike[str]) -> Picks:
    """Read the picks of a RELION coordinate STAR file (any data block name).

    Raises:
        StarError: the file is missing, unreadable, or has no usable coordinate columns.
    """
    path = Path(path)
    return _table_picks(_coordinate_table(path), path)


def count_picks(path: str | os.PathLike[str]) -> int | None:
    """How many picks a STAR file holds, by scanning its lines (a folder listing of thousands:
    ~50x faster than :func:`read_picks`); None when the file is not a plain coordinate STAR
    file that this scan can count (use :func:`read_picks` to say why)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    count, columns, in_loop = None, [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("data_") or line == "loop_":
            in_loop, columns = line == "loop_", []
            continue
        if line.startswith("_"):
            if not in_loop and line.split()[0] in ("_rlnCoordinateX", "_rlnCoordinateY"):
                return None  # one pick as key/value pairs: read_picks knows it
            columns.append(line.split()[0])
            continue
        if in_loop and "_rlnCoordinateX" in columns and "_rlnCoordinateY" in columns:
            if len(line.split()) != len(columns):
                return None
            count = (count or 0) + 1
        elif in_loop and ("_rlnCoordinateX" in columns) != ("_rlnCoordinateY" in columns):
            return None
    if count is None and any(c in ("_rlnCoordinateX", "_rlnCoordinateY") for c in columns):
        return 0  # a loop header with no rows
    return count


def read_micrograph_names(path: str | os.PathLike[str]) -> list[str]:
    """The distinct ``rlnMicrographName`` values of a STAR file (empty if the column is absent)."""
    table = _coordinate_table(Path(path))
    if NAME not in table.columns:
        return []
    return sorted({str(v) for v in table[NAME]})


def read_star_blocks(path: Path, kind: str = "STAR") -> dict[str, pd.DataFrame]:
    """Every data block of a STAR file as a table (single-row key/value blocks included).

    Raises:
        StarError: the file is not UTF-8 text, or not STAR that starfile can parse.
    """
    _check_text(path, kind)
    try:
        content = starfile.read(path, always_dict=True)
    except Exception as error:  # starfile raises many kinds on malformed text
        text = " ".join(str(error).split())  # pandas' messages run over lines
        raise StarError(
            f"{path}: not a readable {kind} file ({type(error).__name__}: {text})"
        ) from None
    tables = {}
    for name, block in content.items():
        if isinstance(block, dict):  # a single-row, loop-less block
            block = pd.DataFrame({k: [v] for k, v in block.items()})
        if isinstance(block, pd.DataFrame):
            tables[name] = block
    return tables


_TEXT_CHUNK = 1 << 20


def _check_text(path: Path, kind: str) -> None:
    """Refuse a file that is not UTF-8 text (starfile would read it as empty).

    Raises:
        StarError: the file holds NUL bytes (binary, or UTF-16/32) or bytes that are not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_TEXT_CHUNK):
                if offset == 0 and (wide := _wide_encoding(chunk)):
                    raise StarError(
                        f"{path}: {wide} text, not UTF-8: save the {kind} file as UTF-8"
                    )
                if (nul := chunk.find(b"\0")) >= 0:
                    raise StarError(
                        f"{path}: a binary file (a NUL byte at byte {offset + nul}), "
                        f"not a text {kind} file"
                    )
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    raise StarError(
                        f"{path}: not UTF-8 text (byte {offset + error.start}); "
                        f"save the {kind} file as UTF-8"
                    ) from None
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise StarError(f"{path}: not UTF-8 text (it ends inside a character)") from None
    except OSError:
        return  # a missing or unreadable file is reported by the caller


def _wide_encoding(start: bytes) -> str | None:
    """The wide encoding of a file whose first bytes are ``start``, else None: UTF-32 or UTF-16
    by its byte-order mark, or UTF-16 where every other byte is NUL (ASCII without a mark)."""
    if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    even, odd = start[0::2], start[1::2]
    marked = len(start) >= 8 and any(
        half.count(0) >= 0.9 * len(half) and other.count(0) <= 0.1 * len(other)
        for half, other in ((even, odd), (odd, even))
    )
    return "UTF-16" if marked else None


def _coordinate_table(path: Path) -> pd.DataFrame:
    blocks, name = _coordinate_blocks(path)
    return blocks[name]


def _coordinate_blocks(path: Path) -> tuple[dict[str, pd.DataFrame], str]:
    """Every block of the file and the name of the first with coordinate columns."""
    if not path.exists():
        raise StarError(f"{path}: no such file")
    if path.is_dir():
        raise StarError(f"{path}: is a folder, not a STAR file")
    if not os.access(path, os.R_OK):
        raise StarError(f"{path}: permission denied")
    content = read_star_blocks(path, "STAR")
    for name, block in content.items():
        if X in block.columns and Y in block.columns:
            return content, name
    if path.stat().st_size == 0:
        raise StarError(f"{path}: empty file, no data block")
    if not content:
        raise StarError(f"{path}: no data block (no line starting with data_): not a STAR file")
    raise StarError(f"{path}: no {X}/{Y} columns in any data block")


def picks_table(picks: Picks, micrograph_name: str, *, with_angles: bool = False) -> pd.DataFrame:
    """The STAR table Warp writes for ``picks`` (angles are zero, as in Warp's edited files)."""
    columns: dict[str, object] = {X: picks.x, Y: picks.y, NAME: [micrograph_name] * len(picks)}
    if picks.has_scores:
        columns[SCORE] = np.nan_to_num(picks.score, nan=0.0)
    if with_angles:
        for angle in ANGLES:
            columns[angle] = np.zeros(len(picks))
    return pd.DataFrame(columns)


def write_picks(
    path: str | os.PathLike[str],
    picks: Picks,
    micrograph_name: str,
    *,
    with_angles: bool = False,
    record: str | None = None,
) -> None:
    """Write ``picks`` as a RELION coordinate STAR file, atomically.

    ``record`` (one line, e.g. a pick run's fingerprint comment) becomes the file's first line.
    """
    table = picks_table(picks, micrograph_name, with_angles=with_angles)
    text = star_text({"": table})
    atomic_write_text(path, text if record is None else f"{record}\n{text}")


# -- the text of a STAR file --------------------------------------------------------------------
# starfile.write runs every cell through DataFrame.map and to_csv: ~7 ms for a few hundred
# picks, most of an edit's time. star_text writes the same bytes from numpy columns instead
# (~10x faster) and leaves a column it cannot be sure of to starfile's own loop writer.
_FLOAT_FORMAT = "%.6f"  # starfile's default, what RELION writes
_NA = "<NA>"  # starfile's (pandas') text for a missing value


def star_text(content: dict[str, pd.DataFrame | dict[str, object]]) -> str:
    """The text ``starfile.write(content, ...)`` writes: the same header line, blocks and bytes.

    ``content`` maps block names to tables (loops) or dicts (key/value blocks), as
    :meth:`StarDocument.content` returns them.
    """
    lines = [package_info(), "", ""]
    for name, block in content.items():
        if isinstance(block, dict):
            lines.extend(simple_block(name, block))
        else:
            lines.extend(_loop_lines(name, block))
    return "".join(line + "\n" for line in lines)


def _loop_lines(name: str, table: pd.DataFrame) -> list[str]:
    columns = [_column_text(table.iloc[:, i]) for i in range(table.shape[1])]
    if not columns or any(column is None for column in columns):
        return list(loop_block(name, table))  # a column type of its own: starfile decides
    header = [f"data_{name}", "", "loop_"]
    header += [f"_{column} #{i}" for i, column in enumerate(table.columns, 1)]
    # one %-format a row: each float column formats as "%.6f", the others are text already
    row = "\t".join(form for form, _ in columns)  # type: ignore[misc]
    rows = [row % values for values in zip(*(cells for _, cells in columns), strict=True)]  # type: ignore[misc]
    return [*header, *rows, "", ""]


def _column_text(column: pd.Series) -> tuple[str, list[object]] | None:
    """(a %-format, the cells) that print ``column`` as starfile does; None where unsure."""
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        values = column.to_numpy()
        missing = np.isnan(values)
        if not missing.any():
            return _FLOAT_FORMAT, values.tolist()
        text = [_FLOAT_FORMAT % value for value in values.tolist()]
        for i in np.flatnonzero(missing).tolist():
            text[i] = _NA
        return "%s", text
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return "%s", column.to_numpy().tolist()  # str() of Python ints and bools
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "O"):
        text: list[object] = []
        for value in column.to_numpy(dtype=object).tolist():
            if isinstance(value, str):
                # a tab or a line break needs csv escapes (starfile raises) or splits the line
                if not value.isprintable():
                    return None
                text.append(f'"{value}"' if (" " in value or not value) else value)
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                text.append(_NA)
            else:  # a number in a text column: pandas' str() of it, left to starfile
                return None
        return "%s", text
    return None


# -- editing a file in place, keeping what it holds besides coordinates ------------------------
# An edit rewrites the whole file: every block and every column it had are written back, the
# values of the rows it did not touch unchanged (floats to six decimals, as RELION writes them).
# A new pick gets neutral values in the columns it does not set: 0 for numbers (class, angles,
# tube id, ...: "none"), and the column's most common value for text (the micrograph name) and
# for numbers where 0 names nothing that exists (optics and group numbers, the half-set).
FROM_MOST_COMMON = frozenset({"rlnOpticsGroup", "rlnGroupNumber", "rlnRandomSubset"})
_BLOCK_HEADER = re.compile(r"^[ \t]*data_(\S*)", re.MULTILINE)
_LOOP = re.compile(r"^[ \t]*loop_", re.MULTILINE)


@dataclass
class StarDocument:
    """A whole coordinate STAR file: its blocks in file order, ``table`` the coordinate one.

    ``refusal`` says why the file is shown but must not be rewritten (a rewrite would lose
    part of it); None when it may be. Edits return a new document and leave this one as it is.
    """

    blocks: dict[str, pd.DataFrame]
    table_name: str
    simple: frozenset[str] = frozenset()  # blocks written as key/value pairs, not loops
    refusal: str | None = None

    @staticmethod
    def new(micrograph_name: str) -> StarDocument:
        """The document of a pick file not written yet (Warp's columns, no rows)."""
        return StarDocument({"": picks_table(Picks(), micrograph_name, with_angles=True)}, "")

    @property
    def table(self) -> pd.DataFrame:
        return self.blocks[self.table_name]

    def picks(self, path: str | os.PathLike[str] = "") -> Picks:
        """The coordinates and scores of the table.

        Raises:
            StarError: a coordinate column holds text, NaN or infinity.
        """
        return _table_picks(self.table, Path(path))

    def row(self, index: int) -> dict[str, object]:
        """Every value of row ``index``, by column."""
        return {column: _scalar(value) for column, value in self.table.iloc[index].items()}

    def row_for(self, values: dict[str, object], micrograph_name: str) -> dict[str, object]:
        """A row of this table: ``values`` where they name its columns, neutral values in the
        others (see above); ``micrograph_name`` names the micrograph of an empty table."""
        table = self.table
        row: dict[str, object] = {}
        for column in table.columns:
            value = values.get(column)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                value = _neutral(table[column], column, micrograph_name)
            row[column] = value
        if table.empty:  # the first row chooses the columns: a score, a removed row's extras
            for column, value in values.items():
                if column not in row and not (isinstance(value, float) and math.isnan(value)):
                    row[column] = value
        return row

    def inserted(self, index: int, row: dict[str, object]) -> StarDocument:
        """This document with ``row`` (from ``row_for``) inserted before row ``index``."""
        table = self.table
        new = pd.DataFrame([row], columns=list(row))
        if table.empty:
            return self._with_table(new)
        dtypes = {c: _row_dtype(table[c], new[c]) for c in new.columns}
        changed = {c: dtype for c, dtype in dtypes.items() if dtype != new[c].dtype}
        if changed:  # astype copies every column: only where a dtype changes
            new = new.astype(changed)
        index = min(max(index, 0), len(table))
        parts = [part for part in (table.iloc[:index], new, table.iloc[index:]) if len(part)]
        return self._with_table(pd.concat(parts, ignore_index=True))

    def deleted(self, index: int) -> StarDocument:
        table = self.table
        return self._with_table(table.drop(table.index[index]).reset_index(drop=True))

    def moved(self, index: int, x: float, y: float) -> StarDocument:
        table = self.table.copy()
        for column, value in ((X, x), (Y, y)):
            # a file may hold whole-pixel coordinates (read as integers): a move makes them float
            table[column] = pd.to_numeric(table[column]).astype(np.float64)
            table.iloc[index, table.columns.get_loc(column)] = value
        return self._with_table(table)

    def _with_table(self, table: pd.DataFrame) -> StarDocument:
        for angle in ANGLES:  # edited files carry Warp's angle columns (0 where new)
            if angle not in table.columns:
                table = table.assign(**{angle: 0.0})
        blocks = dict(self.blocks)
        blocks[self.table_name] = table
        # a loop from now on: a single-row block cannot hold a second pick
        return StarDocument(blocks, self.table_name, self.simple - {self.table_name}, self.refusal)

    def content(self) -> dict[str, pd.DataFrame | dict[str, object]]:
        """The blocks as ``starfile.write`` takes them (key/value blocks as dicts)."""
        return {
            name: (
                {k: _scalar(v) for k, v in block.iloc[0].items()}
                if name in self.simple and len(block) == 1
                else block
            )
            for name, block in self.blocks.items()
        }


def read_star_document(path: str | os.PathLike[str]) -> StarDocument:
    """The whole STAR file at ``path``, for an edit that keeps every block and column.

    A file that reads but cannot be written back whole gets a ``refusal`` (two data blocks of
    one name: the reader keeps only the last of them).

    Raises:
        StarError: as ``read_picks``.
    """
    path = Path(path)
    blocks, table_name = _coordinate_blocks(path)  # the checks and messages of read_picks
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise StarError(f"{path}: cannot read ({error.strerror or error})") from None
    names, simple, refusal = [], set(), None
    headers = list(_BLOCK_HEADER.finditer(text))
    for i, header in enumerate(headers):
        name = header.group(1)
        if name in names and refusal is None:
            refusal = (
                f"{path}: two data blocks named {name!r}; an edit would keep only the last, "
                "so this file is not changed (rename one of them)"
            )
        names.append(name)
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        if not _LOOP.search(text, header.end(), end):
            simple.add(name)
    document = StarDocument(blocks, table_name, frozenset(simple), refusal)
    document.picks(path)  # refuse unusable coordinates now, as read_picks does
    return document


def write_star_document(path: str | os.PathLike[str], document: StarDocument) -> None:
    """Write ``document`` to ``path``, atomically."""
    atomic_write_text(path, star_text(document.content()))


def _table_picks(table: pd.DataFrame, path: Path) -> Picks:
    try:
        x = pd.to_numeric(table[X], errors="raise").to_numpy(np.float64)
        y = pd.to_numeric(table[Y], errors="raise").to_numpy(np.float64)
        score = (
            pd.to_numeric(table[SCORE], errors="raise").to_numpy(np.float64)
            if SCORE in table.columns
            else None
        )
    except (ValueError, TypeError) as error:
        raise StarError(f"{path}: a coordinate column holds text, not numbers ({error})") from None
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise StarError(f"{path}: coordinates contain NaN or infinity")
    return Picks(x, y, score)


def _neutral(column: pd.Series, name: str, micrograph_name: str) -> object:
    """The value a new pick gets in ``column`` (see the comment above ``StarDocument``)."""
    if name in ANGLES:
        return 0.0
    if name == NAME and column.empty:
        return micrograph_name
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if (name in FROM_MOST_COMMON or not numeric) and column.notna().any():
        return _scalar(column.value_counts().index[0])
    if pd.api.types.is_bool_dtype(column):
        return False
    return 0 if pd.api.types.is_integer_dtype(column) else 0.0


def _row_dtype(column: pd.Series, new: pd.Series) -> object:
    """The dtype a new row's value takes so that concatenating keeps ``column``'s dtype (an
    integer column stays integer when the new value is a whole number)."""
    if pd.api.types.is_integer_dtype(column) and pd.api.types.is_integer_dtype(new):
        return column.dtype
    if pd.api.types.is_numeric_dtype(column) and pd.api.types.is_numeric_dtype(new):
        return np.float64 if pd.api.types.is_float_dtype(column) else new.dtype
    return new.dtype


def _scalar(value: object) -> object:
    """A plain Python value (numpy scalars print as ``np.float64(...)`` in some places)."""
    return value.item() if isinstance(value, np.generic) else value
