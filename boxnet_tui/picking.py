"""Probability map -> picks and junk mask, following Warp's BoxNet picking step by step.

All distances here are in pixels of the network's 8 Å/px image unless said otherwise.
1. ``pred = p_particle`` where the argmax is "particle" and ``p_particle >= threshold``, else 0.
2. junk mask = argmax is "junk", connected components under 20 px dropped.
3. Local maxima of ``pred`` within a radius of ``round(D / 8 / 4)`` px.
4. Peaks closer than ``0.8 · D / 8`` to the border dropped.
5. Each peak's connected ``pred > 0`` blob: position = blob centroid, score = ``pred`` there.
6. Picks closer than ``D / 2 + min_mask_distance`` to the junk mask dropped.
7. Of two picks closer than ``D / 1.5``, the one with the larger blob kept.
"""

from __future__ import annotations

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
    blob_size: np.ndarray
    junk: np.ndarray  # bool, shape of the probability map

    def to_micrograph(self, scale: float) -> Picks:
        """Picks in micrograph pixels; ``scale`` = micrograph pixels per network pixel."""
        return Picks(self.x * scale, self.y * scale, self.score)


def junk_mask(labels: np.ndarray, min_size: int = MIN_MASK_COMPONENT) -> np.ndarray:
    """Pixels whose argmax is "junk", without connected components smaller than ``min_size``."""
    junk = labels == 2
    components, count = ndimage.label(junk)
    if count == 0:
        return junk
    sizes = np.bincount(components.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[components]


def particle_map(probabilities: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, argmax)``: particle probability where it wins and passes ``threshold``, else 0."""
    labels = probabilities.argmax(axis=0)
    particle = probabilities[1]
    pred = np.where((labels == 1) & (particle >= threshold), particle, 0.0).astype(np.float32)
    return pred, labels


def disc(radius: int) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius


def local_maxima(pred: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of pixels > 0 that equal the maximum of ``pred`` within ``radius``."""
    radius = max(1, radius)
    # a disc's maximum is also the maximum of the 3x3 square inside it (of the cross for
    # radius 1): find those cheaply, then check the few candidates against the whole disc (a
    # disc footprint over every pixel cost 3x the network's time at 28 px a diameter)
    near = disc(1) if radius == 1 else np.ones((3, 3), bool)
    peak = ndimage.maximum_filter(pred, footprint=near, mode="constant", cval=0.0)
    rows, cols = np.nonzero((pred > 0) & (pred >= peak))
    if radius == 1 or rows.size == 0:
        return rows, cols
    dy, dx = (offset - radius for offset in np.nonzero(disc(radius)))
    padded = np.pad(pred, radius)  # zeros: the filter's constant 0 beyond the edge
    keep = np.empty(rows.size, bool)
    chunk = max(1, 2**22 // dy.size)  # bounded memory when a low threshold leaves many
    for first in range(0, rows.size, chunk):
        r, c = rows[first : first + chunk, None], cols[first : first + chunk, None]
        around = padded[r + radius + dy, c + radius + dx].max(axis=1)
        keep[first : first + chunk] = pred[r[:, 0], c[:, 0]] >= around
    return rows[keep], cols[keep]


def suppress_close(x: np.ndarray, y: np.ndarray, size: np.ndarray, distance: float) -> np.ndarray:
    """Indices kept when, of two points closer than ``distance``, the larger ``size`` wins."""
    order = np.lexsort((np.arange(size.size), -size))  # larger blobs first, stable
    if size.size < 2:
        return order
    tree = cKDTree(np.stack([x, y], axis=1))
    pairs = tree.query_pairs(distance, output_type="ndarray")
    if pairs.size == 0:
        return order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    neighbours: dict[int, list[int]] = {}
    for a, b in pairs:
        neighbours.setdefault(int(a), []).append(int(b))
        neighbours.setdefault(int(b), []).append(int(a))
    removed = np.zeros(size.size, bool)
    kept = []
    for index in order:  # a loop over picks (hundreds), not pixels
        if removed[index]:
            continue
        kept.append(index)
        for other in neighbours.get(int(index), ()):
            if rank[other] > rank[index]:
                removed[other] = True
    return np.asarray(kept, dtype=np.int64)


def pick(
    probabilities: np.ndarray,
    diameter: float,
    threshold: float = 0.5,
    *,
    min_mask_distance: float = 0.0,
    pixel_size: float = NETWORK_PIXEL_SIZE,
) -> PickResult:
    """Warp's picking on a (3, H, W) probability map at ``pixel_size`` (8 Å/px).

    Args:
        diameter: particle diameter, Å.
        threshold: minimum particle probability (0.5 in Warp's CLI, 0.95 in its GUI).
        min_mask_distance: extra distance (Å) kept from the junk mask beyond the radius.
    """
    check_diameter(diameter)
    d_px = diameter / pixel_size
    pred, labels = particle_map(probabilities, threshold)
    junk = junk_mask(labels)
    rows, cols = local_maxima(pred, round(d_px / 4))
    border = 0.8 * d_px
    height, width = pred.shape
    inside = (
        (rows >= border) & (rows < height - border) & (cols >= border) & (cols < width - border)
    )
    rows, cols = rows[inside], cols[inside]

    blobs, _ = ndimage.label(pred > 0)
    blob_ids = np.unique(blobs[rows, cols])
    empty = np.zeros(0)
    if blob_ids.size == 0:
        return PickResult(empty, empty, empty, empty, junk)
    where = np.flatnonzero(blobs)  # only blob pixels: few, compared with the image
    ids = blobs.ravel()[where]
    yy, xx = np.divmod(where, width)
    count = np.bincount(ids).astype(np.float64)
    sum_y = np.bincount(ids, weights=yy, minlength=count.size)
    sum_x = np.bincount(ids, weights=xx, minlength=count.size)
    size = count[blob_ids]
    cy, cx = sum_y[blob_ids] / size, sum_x[blob_ids] / size
    at_centre = pred[np.round(cy).astype(int), np.round(cx).astype(int)]
    # each blob's peak over its own pixels (ndimage.maximum sorts the whole image: 5x slower)
    peak = np.zeros(count.size)
    np.maximum.at(peak, ids, pred.ravel()[where])
    peak_value = peak[blob_ids]
    score = np.where(at_centre > 0, at_centre, peak_value).astype(np.float64)

    if junk.any():
        distance = ndimage.distance_transform_edt(~junk)
        clear = distance[np.round(cy).astype(int), np.round(cx).astype(int)]
        keep = clear >= d_px / 2 + min_mask_distance / pixel_size
        cx, cy, score, size = cx[keep], cy[keep], score[keep], size[keep]

    kept = suppress_close(cx, cy, size, d_px / 1.5)
    return PickResult(cx[kept], cy[kept], score[kept], size[kept], junk)
