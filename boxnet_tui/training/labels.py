"""Training examples at 8 Å/px: the image, a label map and an importance map (Warp's 3 pages).

Labels: 0 background, 1 particle (a disc of radius ``max(1.5, D / 64)`` px, a quarter of the
particle radius, at each pick), 2 junk (mask > 0.5, over particles) when training masking.
Importance starts at 1; "extra important" locations set 4 within D/2; "uncertain" ones set 0
within D/2, applied last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from boxnet_tui.imaging import NETWORK_PIXEL_SIZE, WARP_SCALE, NetworkScale, prepare_for_network
from boxnet_tui.io.masks import resize_mask
from boxnet_tui.io.star import Picks

BACKGROUND, PARTICLE, JUNK = 0, 1, 2
EXTRA_IMPORTANCE = 4.0


@dataclass
class Example:
    """One micrograph as the network learns from it (all arrays share one 8 Å/px shape)."""

    image: np.ndarray  # float32, normalised
    label: np.ndarray  # uint8: 0, 1, 2
    importance: np.ndarray  # float32
    name: str = ""


def label_radius(diameter: float, pixel_size: float = NETWORK_PIXEL_SIZE) -> float:
    """Radius (px) of the particle disc: a quarter of the particle radius, at least 1.5 px."""
    return max(1.5, diameter / pixel_size / 8.0)


def paint_discs(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Boolean map of discs of ``radius`` px centred at (x, y), vectorised over the picks."""
    out = np.zeros(shape, bool)
    if len(x) == 0:
        return out
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    cx, cy = np.round(x).astype(int), np.round(y).astype(int)
    # sub-pixel centres: the disc test uses the exact offset of each pixel from its pick
    px = cx[:, None, None] + dx[None]
    py = cy[:, None, None] + dy[None]
    inside = (px - x[:, None, None]) ** 2 + (py - y[:, None, None]) ** 2 <= radius * radius
    inside &= (px >= 0) & (px < shape[1]) & (py >= 0) & (py < shape[0])
    out[py[inside], px[inside]] = True
    return out


def make_example(
    image: np.ndarray,
    pixel_size: float,
    picks: Picks,
    diameter: float,
    *,
    junk: np.ndarray | None = None,
    extra_important: Picks | None = None,
    uncertain: Picks | None = None,
    ignore_border: float = 0.0,
    invert: bool = False,
    name: str = "",
    scale: NetworkScale = WARP_SCALE,
) -> Example:
    """A training example from a micrograph and its curated picks.

    Args:
        image, pixel_size: the micrograph and its Å/px.
        picks: particle centres in micrograph pixels.
        diameter: particle diameter in Å.
        junk: junk mask at 8 Å/px (any shape: it is resized to the example) or None.
        extra_important, uncertain: locations in micrograph pixels (Warp's options).
        ignore_border: a border (micrograph px) whose importance is 0, for label sets that
            left the edge unannotated.
        scale: the pixel size of the example: Warp's 8 Å/px (what example TIFFs hold) or the
            model's diameter-scaled input.
    """
    network_pixel = scale.pixel_size(diameter)
    prepared, factor = prepare_for_network(
        image,
        pixel_size,
        invert=invert,
        target_pixel_size=network_pixel,
        highpass_angstrom=scale.highpass(diameter),
        lowpass_px=scale.lowpass_px,
        normalisation=scale.normalisation,
    )
    shape = prepared.shape
    label = np.zeros(shape, np.uint8)
    centres = (picks.x / factor, picks.y / factor)
    label[paint_discs(shape, *centres, label_radius(diameter, factor * pixel_size))] = PARTICLE
    if junk is not None:
        label[resize_mask(junk, shape)] = JUNK
    importance = np.ones(shape, np.float32)
    radius = diameter / 2 / (factor * pixel_size)
    if extra_important is not None:
        extra = paint_discs(shape, extra_important.x / factor, extra_important.y / factor, radius)
        importance[extra] = EXTRA_IMPORTANCE
    if uncertain is not None:
        unsure = paint_discs(shape, uncertain.x / factor, uncertain.y / factor, radius)
        importance[unsure] = 0.0
    if ignore_border > 0:
        edge = max(1, round(ignore_border / factor))
        importance[:edge] = importance[-edge:] = 0.0
        importance[:, :edge] = importance[:, -edge:] = 0.0
    return Example(prepared, label, importance, name)


def class_weights(examples: list[Example]) -> np.ndarray:
    """Per-class loss weights: ``(N_particle / N_class) ** (1/3)`` for background and junk
    (at most 1), particles 1.

    The background weight is Warp's. Giving junk the same treatment keeps a large junk class
    from outweighing background 4:1, which made the generic masking model call whole regions
    junk and drop the particles beside them.
    """
    counts = np.zeros(3, np.float64)
    for example in examples:
        counts += np.bincount(example.label.ravel(), minlength=3)[:3]
    weights = np.ones(3, np.float32)
    if counts[PARTICLE]:
        for cls in (BACKGROUND, JUNK):
            if counts[cls]:
                weights[cls] = min(1.0, (counts[PARTICLE] / counts[cls]) ** (1.0 / 3.0))
    return weights


def diameter_from_labels(label: np.ndarray, pixel_size: float = NETWORK_PIXEL_SIZE) -> float | None:
    """The particle diameter (Å) an example's label discs were painted for, or None.

    Warp's example TIFFs store neither pixel size nor diameter, but each disc has the radius
    :func:`label_radius` gives (a quarter of the particle radius): the median area of the
    isolated discs gives it back. Discs at the 1.5 px floor only say "96 Å or less" at 8 Å/px.
    """
    from scipy import ndimage

    components, count = ndimage.label(label == PARTICLE)
    if count == 0:
        return None
    areas = np.bincount(components.ravel())[1:]
    radius = float(np.sqrt(np.median(areas) / np.pi))
    return radius * 8.0 * pixel_size


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)


def rescale_example(
    example: Example, scale: NetworkScale, pixel_size: float = NETWORK_PIXEL_SIZE
) -> Example:
    """An example at ``pixel_size`` (Warp's TIFFs: 8 Å/px) brought to a model's input scale.

    The diameter is read from the label discs; the image is Fourier-rescaled and normalised
    again, labels and importance resampled by nearest neighbour (a disc stays a quarter of the
    particle radius at any scale). Unlabelled examples are returned unchanged.
    """
    from boxnet_tui.imaging import fourier_rescale, scaled_shape

    diameter = diameter_from_labels(example.label, pixel_size)
    if diameter is None or scale.pixels_per_diameter is None:
        return example
    target = scale.pixel_size(diameter)
    shape = scaled_shape(example.image.shape, pixel_size, target)
    image, _ = fourier_rescale(
        example.image, pixel_size, target, out_shape=shape, lowpass_px=scale.lowpass_px
    )
    rows = _nearest_indices(example.image.shape[0], shape[0])[:, None]
    cols = _nearest_indices(example.image.shape[1], shape[1])[None, :]
    return Example(
        scale.normalise(image),
        example.label[rows, cols],
        example.importance[rows, cols],
        example.name,
    )


def junk_as_background(example: Example) -> Example:
    """The example with its junk labelled as background: what a model learns from when it is
    trained without "Train masking" (Warp drops the class from every example then)."""
    if not (example.label == JUNK).any():
        return example
    label = np.where(example.label == JUNK, BACKGROUND, example.label).astype(example.label.dtype)
    return Example(example.image, label, example.importance, example.name)


class MappedExamples:
    """A lazy sequence of examples (e.g. an example TIFF), each read through ``function``."""

    def __init__(self, examples: object, function: Callable[[Example], Example]) -> None:
        self.examples = examples
        self.function = function

    def __len__(self) -> int:
        return len(self.examples)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Example:
        return self.function(self.examples[index])  # type: ignore[index]
