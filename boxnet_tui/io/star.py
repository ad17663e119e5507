"""RELION coordinate STAR files: the picks of one micrograph.

Coordinates are in pixels of the original micrograph, at the particle centre, with
x = column and y = row of the array as stored (RELION's and Warp's convention).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from boxnet_tui.errors import StarError
from boxnet_tui.io.atomic import atomic_path

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
    table = _coordinate_table(path)
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


def read_micrograph_names(path: str | os.PathLike[str]) -> list[str]:
    """The distinct ``rlnMicrographName`` values of a STAR file (empty if the column is absent)."""
    table = _coordinate_table(Path(path))
    if NAME not in table.columns:
        return []
    return sorted({str(v) for v in table[NAME]})


def read_star_blocks(path: Path, kind: str = "STAR") -> dict[str, pd.DataFrame]:
    """Every data block of a STAR file as a table (single-row key/value blocks included).

    Raises:
        StarError: the text is not STAR that starfile can parse.
    """
    try:
        content = starfile.read(path, always_dict=True)
    except Exception as error:  # starfile raises many kinds on malformed text
        raise StarError(
            f"{path}: not a readable {kind} file ({type(error).__name__}: {error})"
        ) from None
    tables = {}
    for name, block in content.items():
        if isinstance(block, dict):  # a single-row, loop-less block
            block = pd.DataFrame({k: [v] for k, v in block.items()})
        if isinstance(block, pd.DataFrame):
            tables[name] = block
    return tables


def _coordinate_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise StarError(f"{path}: no such file")
    if path.is_dir():
        raise StarError(f"{path}: is a folder, not a STAR file")
    if not os.access(path, os.R_OK):
        raise StarError(f"{path}: permission denied")
    content = read_star_blocks(path, "STAR")
    for block in content.values():
        if X in block.columns and Y in block.columns:
            return block
    if path.stat().st_size == 0 or not content:
        raise StarError(f"{path}: empty file, no data block")
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
) -> None:
    """Write ``picks`` as a RELION coordinate STAR file, atomically."""
    table = picks_table(picks, micrograph_name, with_angles=with_angles)
    with atomic_path(path) as tmp:
        starfile.write(table, tmp, overwrite=True)
