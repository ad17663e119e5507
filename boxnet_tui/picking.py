"""Probability map -> picks and junk mask: Warp's BoxNet picking, with peaks for blobs.

All distances here are in pixels of the network's image (8 Å/px in Warp) unless said otherwise.
1. junk mask = argmax is "junk", connected components under 20 px dropped (Warp).
2. Peaks: the local maxima (3 x 3) of the particle probability smoothed by a Gaussian of
   σ = D / 20, among the pixels whose particle probability reaches ``PEAK_FLOOR`` (unlike Warp,
   on that probability alone: Warp also wants the particle class to win the pixel), one per
   plateau of equal maxima (its middle).
3. Score = the highest particle probability within D / 8 of the peak (a probability, as Warp's
   score is); position = the centroid of that probability (where it reaches the floor) within
   D / 4. Then, highest score first, each peak removes the weaker ones closer than half a
   diameter. A wide region of high probability that is not one plateau therefore gets a pick
   about every half diameter, where Warp's rule gives one.
   The threshold comes last: the picks at a threshold are exactly the peaks scoring at least
   that much, so a higher threshold keeps a subset of a lower one's picks, and a display
   threshold over saved picks shows what picking at it would give.
4. Picks closer than ``WARP_BORDER`` (0.8) · D to the border dropped (Warp).
5. Picks closer than ``D / 2 + min_mask_distance`` to the junk mask dropped (Warp).

Warp instead takes each peak's connected blob of passing pixels, its centroid and the larger of
two blobs closer than D / 1.5. Touching particles merge into one blob there, so one of them is
lost (or both, the centroid falling between them), and a faint particle must be picked at a
threshold that merges its bright neighbours. Peaks of the smoothed map keep them apart:
measured on real proteins in README ("Picking: peaks, not blobs").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import NETWORK_PIXEL_SIZE
from boxnet_tui.io.star import Picks

MIN_DIAMETER, MAX_DIAMETER = 10.0, 700.0
MIN_MASK_COMPONENT = 20  # px at 8 Å/px


DIAMETER_RANGE = f"a number from {MIN_DIAMETER:g} to {MAX_DIAMETER:g} Å"  # for a form's hint


def diameter_from_text(text: str) -> float | None:
    """The diameter (Å) a user typed, or None when it is not a number within 10–700 Å."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if MIN_DIAMETER <= value <= MAX_DIAMETER else None


def check_diameter(diameter: float) -> float:
    """Return ``diameter`` (Å) if it is within Warp's 10–700 Å, else raise a UserError."""
    if not (MIN_DIAMETER <= diameter <= MAX_DIAMETER):
        raise UserError(
            f"particle diameter must be {MIN_DIAMETER:g}–{MAX_DIAMETER:g} Å, got {diameter:g}"
        )
    return float(diameter)


@dataclass
class PickResult:
    """Picks in the network's pixels (8 Å/px) plus the junk mask they were checked against."""

    x: np.ndarray
    y: np.ndarray
    score: np.ndarray
    junk: np.ndarray  # bool, shape of the probability map

    def to_micrograph(self, scale: float) -> Picks:
        """Picks in micrograph pixels; ``scale`` = micrograph pixels per network pixel."""
        return Picks(self.x * scale, self.y * scale, self.score)

    def above(self, threshold: float) -> PickResult:
        """The picks scoring at least ``threshold``."""
        keep = self.score >= threshold
        return PickResult(self.x[keep], self.y[keep], self.score[keep], self.junk)


def junk_wins(probabilities: np.ndarray) -> np.ndarray:
    """Pixels of a (3, H, W) map whose most probable class is junk: its ``argmax`` is 2 (ties
    go to the lower class, as ``argmax`` gives them), in two comparisons of whole planes
    instead of a strided ``argmax`` (1 ms against 11 on a 764² map)."""
    background, particle, junk = probabilities[0], probabilities[1], probabilities[2]
    return (junk > background) & (junk > particle)


def junk_mask(junk: np.ndarray, min_size: int = MIN_MASK_COMPONENT) -> np.ndarray:
    """The junk pixels (boolean, :func:`junk_wins`) without connected components smaller
    than ``min_size``."""
    components, count = ndimage.label(junk)
    if count == 0:
        return junk
    sizes = np.bincount(components.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[components]


WARP_BORDER = 0.8  # diameters: picks this close to the edge are dropped (Warp)
PICK_RULE = "scored-peaks"  # recorded with the picks: another rule's files are picked again
PEAK_FLOOR = 0.1  # peaks are found down to this score whatever the threshold (see pick)
PEAK_SMOOTHING = 0.05  # σ of the Gaussian over the particle probability, in diameters
PEAK_SEPARATION = 0.5  # peaks closer than this (diameters) are one particle
SCORE_RADIUS = 0.125  # a pick's score: the highest probability within this (diameters)
CENTRE_RADIUS = 0.25  # a pick's position: the probability's centroid within this (diameters)


def particle_evidence(particle: np.ndarray, diameter_px: float) -> np.ndarray:
    """The particle probability smoothed over a twentieth of the diameter: its peaks are the
    particles' cores, one each, where one pixel's noise would split a core or join two."""
    return ndimage.gaussian_filter(particle, PEAK_SMOOTHING * diameter_px)


def disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def suppress_close(
    x: np.ndarray,
    y: np.ndarray,
    strength: np.ndarray,
    distance: float,
    tie: np.ndarray | None = None,
) -> np.ndarray:
    """Indices kept (ascending) when, strongest first (of equal ones, the higher ``tie``, then
    the first), each point removes the weaker ones closer than ``distance``."""
    if strength.size < 2:
        return np.arange(strength.size)
    closer = np.nextafter(distance, 0)  # closer than, not at: query_pairs includes its r
    pairs = cKDTree(np.stack([x, y], axis=1)).query_pairs(closer, output_type="ndarray")
    if pairs.size == 0:
        return np.arange(strength.size)
    keys = (np.arange(strength.size),) + (() if tie is None else (-tie,)) + (-strength,)
    order = np.lexsort(keys)  # strongest first
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    # each pair once, from the stronger point to the weaker: a CSR list of whom each beats
    stronger = np.where(rank[pairs[:, 0]] < rank[pairs[:, 1]], pairs[:, 0], pairs[:, 1])
    weaker = pairs[:, 0] + pairs[:, 1] - stronger
    by = np.argsort(stronger, kind="stable")
    starts = np.searchsorted(stronger[by], np.arange(strength.size + 1))
    beaten = weaker[by]
    removed = np.zeros(strength.size, bool)
    for index in order:  # a loop over peaks (hundreds), not pixels
        if not removed[index]:  # (a point never beats itself: pairs are of two points)
            removed[beaten[starts[index] : starts[index + 1]]] = True
    return np.flatnonzero(~removed)


def around(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, dy, dx): ``image`` over the disc of ``radius`` around each point, one row per
    point (0 beyond the edge), and the disc's row and column offsets."""
    r = max(1, round(radius))
    return _over(image, rows, cols, disc(r))


def _over(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, footprint: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, dy, dx): ``image`` over the odd-sided boolean ``footprint`` centred on each
    point, one row per point (0 or False beyond the edge), and its row and column offsets."""
    r = footprint.shape[0] // 2
    dy, dx = (offset - r for offset in np.nonzero(footprint))
    padded = np.pad(image, r)
    return padded[rows[:, None] + r + dy, cols[:, None] + r + dx], dy, dx


def centroids(
    pred: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """(y, x): the ``pred``-weighted centroid of the disc of ``radius`` around each point (each
    one > 0)."""
    weights, dy, dx = around(pred, rows, cols, radius)
    total = weights.sum(axis=1)
    return rows + (weights * dy).sum(axis=1) / total, cols + (weights * dx).sum(axis=1) / total


def one_per_plateau(shape: tuple[int, ...], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the local maxima kept when each group of touching ones, a plateau
    of equal values (saturated probability makes them), keeps the one nearest its middle."""
    if rows.size < 2:
        return np.arange(rows.size)
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    groups, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    group = groups[rows, cols]
    count = np.bincount(group)
    centre_y = np.bincount(group, weights=rows) / np.maximum(count, 1)
    centre_x = np.bincount(group, weights=cols) / np.maximum(count, 1)
    off_centre = np.hypot(rows - centre_y[group], cols - centre_x[group])
    order = np.lexsort((off_centre, group))  # by plateau, its middle first
    _, first = np.unique(group[order], return_index=True)
    return np.sort(order[first])


def peaks(
    probabilities: np.ndarray,
    diameter: float,
    floor: float = PEAK_FLOOR,
    *,
    min_mask_distance: float = 0.0,
    pixel_size: float = NETWORK_PIXEL_SIZE,
) -> PickResult:
    """Every pick scoring at least ``floor`` on a (3, H, W) probability map at ``pixel_size``:
    :func:`pick` at any threshold from ``floor`` up is this, :meth:`PickResult.above` it."""
    check_diameter(diameter)
    d_px = diameter / pixel_size
    junk = junk_mask(junk_wins(probabilities))
    particle = np.nan_to_num(probabilities[1].astype(np.float32, copy=False), nan=0.0)
    passing = np.where(particle >= floor, particle, 0.0).astype(np.float32)
    evidence = particle_evidence(particle, d_px)
    cores = np.where(passing > 0, evidence, 0.0).astype(np.float32)
    # 3 x 3 maxima: touching ones are then equal, a plateau (``one_per_plateau``)
    peak = ndimage.maximum_filter(cores, size=3, mode="constant", cval=0.0)
    rows, cols = np.nonzero((cores > 0) & (cores >= peak))
    middle = one_per_plateau(cores.shape, rows, cols)
    rows, cols = rows[middle], cols[middle]
    score = around(particle, rows, cols, SCORE_RADIUS * d_px)[0].max(axis=1).astype(np.float64)
    # peak against peak: of two closer than half a diameter, the higher score (then the
    # stronger core); by score, so that a threshold keeps what suppression among the peaks
    # passing it would keep
    kept = suppress_close(cols, rows, score, PEAK_SEPARATION * d_px, tie=cores[rows, cols])
    rows, cols, score = rows[kept], cols[kept], score[kept]
    cy, cx = centroids(passing, rows, cols, CENTRE_RADIUS * d_px)

    border = WARP_BORDER * d_px
    height, width = particle.shape
    keep = (cy >= border) & (cy < height - border) & (cx >= border) & (cx < width - border)
    cx, cy, score = cx[keep], cy[keep], score[keep]
    if junk.any() and cx.size:
        keep = clear_of(
            junk,
            np.round(cy).astype(int),
            np.round(cx).astype(int),
            d_px / 2 + min_mask_distance / pixel_size,
        )
        cx, cy, score = cx[keep], cy[keep], score[keep]
    return PickResult(cx, cy, score, junk)


# Beyond this clearance (px) one distance transform of the mask is cheaper than a disc per pick
# (1000 picks on a 764² mask: a disc of 10 px 2.7 ms, of 24 px 26 ms, the transform 48 ms)
CLEARANCE_BY_DISC = 24


def clear_of(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, distance: float) -> np.ndarray:
    """For each pixel (rows, cols), whether every ``mask`` pixel is at least ``distance`` px
    away (pixels beyond the edge are not in the mask): a look at the disc of radius
    ``distance`` around each one, the answer the Euclidean distance transform of the mask
    gives, for far less at the usual clearance (half a diameter, 10 px at 20 px a diameter);
    the transform itself beyond :data:`CLEARANCE_BY_DISC`."""
    if distance > CLEARANCE_BY_DISC:
        return ndimage.distance_transform_edt(~mask)[rows, cols] >= distance
    r = max(0, math.ceil(distance) - 1)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    closer = dy * dy + dx * dx < distance * distance  # closer than ``distance``: not clear
    return ~_over(mask, rows, cols, closer)[0].any(axis=1)


def pick(
    probabilities: np.ndarray,
    diameter: float,
    threshold: float = 0.5,
    *,
    min_mask_distance: float = 0.0,
    pixel_size: float = NETWORK_PIXEL_SIZE,
) -> PickResult:
    """Picks on a (3, H, W) probability map at ``pixel_size`` (8 Å/px in Warp).

    Args:
        diameter: particle diameter, Å.
        threshold: minimum score (0.5 in Warp's CLI, 0.95 in its GUI).
        min_mask_distance: extra distance (Å) kept from the junk mask beyond the radius.
    """
    found = peaks(
        probabilities,
        diameter,
        min(threshold, PEAK_FLOOR),
        min_mask_distance=min_mask_distance,
        pixel_size=pixel_size,
    )
    return found.above(threshold)


def pick_at_each(
    probabilities: np.ndarray,
    diameter: float,
    thresholds: Sequence[float],
    *,
    min_mask_distance: float = 0.0,
    pixel_size: float = NETWORK_PIXEL_SIZE,
) -> dict[float, PickResult]:
    """:func:`pick` at each threshold, the peaks found once for all those from ``PEAK_FLOOR``
    up (calibration tries dozens of thresholds per micrograph)."""
    options = {"min_mask_distance": min_mask_distance, "pixel_size": pixel_size}
    shared: PickResult | None = None
    results: dict[float, PickResult] = {}
    for threshold in thresholds:
        if threshold < PEAK_FLOOR:
            results[threshold] = pick(probabilities, diameter, threshold, **options)
            continue
        if shared is None:
            shared = peaks(probabilities, diameter, PEAK_FLOOR, **options)
        results[threshold] = shared.above(threshold)
    return results
