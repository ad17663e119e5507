"""The order Tab steps through the picks: reading order, or lowest score first.

Reading order reads the micrograph as text: rows top to bottom, each row left to right. A row
is a band about one particle diameter high that starts at its topmost pick, so two particles
side by side are in one row even when one sits a few pixels higher (raw y would zigzag
between them). Score order puts the doubtful picks first, for a curator who checks those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Key = tuple[float, float, float]
ON_PICK = 1.0  # px: a cursor this close to a pick is on it (Tab puts it there, kept in the image)


@dataclass
class PickOrder:
    """Pick indices in stepping order, with each one's sort key."""

    indices: np.ndarray
    keys: list[Key]
    row_starts: np.ndarray  # reading order: the top y of each row band (empty for scores)
    band: float = 0.0


def row_starts(y: np.ndarray, band: float) -> np.ndarray:
    """The top y of each row: the topmost pick not yet in a row starts one ``band`` high."""
    starts: list[float] = []
    for value in np.sort(y):
        if not starts or value > starts[-1] + band:
            starts.append(float(value))
    return np.array(starts)


def _row(starts: np.ndarray, band: float, y: float) -> float:
    """Row number of ``y``; between two rows (or outside all) a half: before the next one."""
    at = int(np.searchsorted(starts, y, side="right")) - 1  # the last row starting at or above
    if at >= 0 and y <= starts[at] + band:
        return float(at)
    return at + 0.5


def reading_order(x: np.ndarray, y: np.ndarray, indices: np.ndarray, band: float) -> PickOrder:
    """Picks ``indices`` (into ``x``, ``y``) in reading order with rows ``band`` px high."""
    xs, ys = x[indices], y[indices]
    starts = row_starts(ys, band)
    keys = [(_row(starts, band, float(b)), float(a), float(b)) for a, b in zip(xs, ys, strict=True)]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return PickOrder(indices[order], [keys[i] for i in order], starts, band)


def score_order(x: np.ndarray, y: np.ndarray, score: np.ndarray, indices: np.ndarray) -> PickOrder:
    """Picks ``indices`` lowest score first (no score: last), ties top to bottom."""
    keys = [
        (float(score[i]) if math.isfinite(score[i]) else math.inf, float(y[i]), float(x[i]))
        for i in indices
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return PickOrder(indices[order], [keys[i] for i in order], np.array([]))


def reading_key(order: PickOrder, x: float, y: float) -> Key:
    """Where the point (x, y) falls in reading order ``order``."""
    return (_row(order.row_starts, order.band, y), x, y)


def key_of(order: PickOrder, index: int) -> Key | None:
    """The key of pick ``index`` in ``order`` (None: not in it)."""
    at = np.flatnonzero(order.indices == index)
    return order.keys[int(at[0])] if at.size else None


def step(order: PickOrder, here: Key | None, direction: int) -> int | None:
    """The pick after (``direction`` > 0) or before ``here``, wrapping at the ends; from no
    place, the first (or the last). None when ``order`` is empty."""
    if not order.keys:
        return None
    if here is None:
        return int(order.indices[0 if direction > 0 else -1])
    if direction > 0:
        after = [n for n, key in enumerate(order.keys) if key > here]
        return int(order.indices[after[0] if after else 0])
    before = [n for n, key in enumerate(order.keys) if key < here]
    return int(order.indices[before[-1] if before else -1])


def pick_at(x: np.ndarray, y: np.ndarray, indices: np.ndarray, cx: float, cy: float) -> int | None:
    """The pick of ``indices`` the point (cx, cy) is on (within ``ON_PICK`` px), if any."""
    if not len(indices):
        return None
    distance = np.hypot(x[indices] - cx, y[indices] - cy)
    at = int(np.argmin(distance))
    return int(indices[at]) if distance[at] <= ON_PICK else None
