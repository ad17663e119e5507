"""Synthetic micrographs as users hand them over: dtypes, stretches, filters, binning, gain.

A picker trained only on float32 electron counts meets, in the wild, 8-bit exports, 16-bit
sums, denoised or low-passed averages, binned images and uncorrected gain. :func:`as_user_input`
turns a simulated image into one of these; :mod:`boxnet_tui.synth` re-exports it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from boxnet_tui.errors import UserError
from boxnet_tui.io.star import Picks

STYLES = ("float", "int8", "uint8", "uint16", "stretched", "filtered", "binned", "gain")


def as_user_input(
    image: np.ndarray, pixel_size: float, style: str, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """``image`` (float, electrons per pixel) as a user's file of ``style`` would hold it.

    Styles (the random parameters are drawn from ``rng``):

    - ``float``: unchanged (float32).
    - ``int8``, ``uint8``: centred on the median and scaled so that ±3–6 robust standard
      deviations fill the range, rounded and clipped (``uint8`` centred on 128).
    - ``uint16``: either counts times a gain (mean 50–20000, as summed frames hold) or a
      normalised image offset to 32768; rounded and clipped to 0..65535.
    - ``stretched``: percentile-clipped (0.1–2 % each tail) and stretched to 0..255, float32:
      what a display-ready export holds, with both tails saturated.
    - ``filtered``: a Gaussian low-pass (0.5 at 8–15 Å, and never finer than 3–6 px): the
      smooth look of a denoised or low-passed average.
    - ``binned``: 2×2 binned (means; an odd last row or column dropped), the pixel size
      doubled. The caller must move picks and masks onto the new grid: :func:`bin_picks`
      (x → (x - 0.5) / 2) and :func:`bin_mask`.
    - ``gain``: an uncorrected gain: a multiplicative gradient (3–20 %) with slow ripples, a
      few hot or cold columns (or rows) and a few hot pixels.

    Returns:
        The image and its pixel size (changed only by ``binned``).

    Raises:
        UserError: ``style`` is not one of :data:`STYLES`.
    """
    if style not in STYLES:
        raise UserError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    image = np.asarray(image, dtype=np.float32)
    if style == "float":
        return image.copy(), pixel_size
    if style == "binned":
        return bin_image2(image), 2 * pixel_size
    if style == "filtered":
        cutoff = max(float(rng.uniform(8.0, 15.0)), float(rng.uniform(3.0, 6.0)) * pixel_size)
        # A Gaussian that passes 0.5 at 1/cutoff has σ = cutoff·sqrt(2 ln 2) / (2π) in real space.
        sigma_px = cutoff * math.sqrt(2 * math.log(2)) / (2 * math.pi) / pixel_size
        return ndimage.gaussian_filter(image, sigma_px, mode="reflect"), pixel_size
    if style == "gain":
        return _gain_defects(image, rng), pixel_size
    sample = image.ravel()[:: max(1, image.size // 250_000)].astype(np.float64)
    if style == "stretched":
        tail = float(rng.uniform(0.1, 2.0))
        low, high = np.percentile(sample, [tail, 100 - tail])
        scaled = (image - np.float32(low)) * np.float32(255 / max(high - low, 1e-12))
        return np.clip(scaled, 0, 255).astype(np.float32), pixel_size
    median = float(np.median(sample))
    low, high = np.percentile(sample, [15.87, 84.13])
    spread = max(float(high - low) / 2, 1e-12)  # the std of a Gaussian, robust to outliers
    z = (image - np.float32(median)) * np.float32(1 / spread)
    if style == "int8":
        scaled = z * np.float32(127 / rng.uniform(3.0, 6.0))
        return np.clip(np.round(scaled), -128, 127).astype(np.int8), pixel_size
    if style == "uint8":
        scaled = z * np.float32(127 / rng.uniform(3.0, 6.0)) + np.float32(128)
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8), pixel_size
    # uint16
    if rng.random() < 0.5:
        mean = max(float(sample.mean()), 1e-12)
        gain = math.exp(rng.uniform(math.log(50.0), math.log(20000.0))) / mean
        scaled = image * np.float32(gain)
    else:
        scaled = z * np.float32(32767 / rng.uniform(4.0, 8.0)) + np.float32(32768)
    return np.clip(np.round(scaled), 0, 65535).astype(np.uint16), pixel_size


def bin_image2(image: np.ndarray) -> np.ndarray:
    """2×2 block means (float32); an odd last row or column is dropped."""
    rows, cols = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = np.asarray(image[:rows, :cols], dtype=np.float32).reshape(rows // 2, 2, cols // 2, 2)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def bin_picks(picks: Picks) -> Picks:
    """Picks on the grid of :func:`bin_image2`: new pixel j covers old pixels 2j and 2j+1."""
    return Picks((picks.x - 0.5) / 2, (picks.y - 0.5) / 2, picks.score)


def bin_mask(mask: np.ndarray) -> np.ndarray:
    """A mask on the grid of :func:`bin_image2`: True where at least half of the block is."""
    return bin_image2(np.asarray(mask, dtype=np.float32)) >= 0.5


def _gain_defects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, cols = image.shape
    strength = float(rng.uniform(0.03, 0.2))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    ys = (np.arange(rows, dtype=np.float32) / max(rows - 1, 1) - np.float32(0.5)) * np.float32(
        math.sin(angle) * strength
    )
    xs = (np.arange(cols, dtype=np.float32) / max(cols - 1, 1) - np.float32(0.5)) * np.float32(
        math.cos(angle) * strength
    )
    # Slow ripples of a few per cent, separable: cheap on a large image.
    ripple_r = _ripple(rng, rows)
    ripple_c = _ripple(rng, cols)
    gain = 1 + ys[:, None] + xs[None, :]
    gain *= 1 + np.float32(rng.uniform(0.0, 0.04)) * ripple_r[:, None] * ripple_c[None, :]
    out = image * gain
    # Defective columns (sometimes rows): a sensor line read too high or too low.
    lines = out if rng.random() < 0.7 else out.T
    for index in rng.choice(lines.shape[1], size=int(rng.integers(1, 7)), replace=False):
        hot = rng.random() < 0.5
        lines[:, index] *= np.float32(rng.uniform(1.2, 2.5) if hot else rng.uniform(0.0, 0.7))
    flat = out.reshape(-1)
    hot_pixels = rng.choice(flat.size, size=int(rng.integers(0, 21)), replace=False)
    flat[hot_pixels] *= np.float32(rng.uniform(5.0, 50.0))
    return out.astype(np.float32, copy=False)


def _ripple(rng: np.random.Generator, n: int) -> np.ndarray:
    """A smooth 1-D curve of mean 0, about ±1, with one to three waves across ``n``."""
    position = np.arange(n, dtype=np.float32) / np.float32(max(n, 1))
    curve = np.zeros(n, np.float32)
    for waves in (1, 2, 3):
        phase = float(rng.uniform(0.0, 2 * math.pi))
        curve += np.float32(rng.normal() / waves) * np.cos(
            np.float32(2 * math.pi * waves) * position + np.float32(phase)
        )
    return curve
