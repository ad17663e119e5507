"""Junk masks: ``mask/<root>.tif``, 8-bit, LZW, at 8 Å/px (Warp's layout).

Non-zero pixels are junk. The mask covers the micrograph rescaled to 8 Å/px, so its shape is
the micrograph's shape times ``pixel_size / 8`` (rounded as :func:`imaging.scaled_shape` does).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from boxnet_tui.errors import MaskError
from boxnet_tui.io.atomic import atomic_path

MASK_PIXEL_SIZE = 8.0


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a junk mask as a boolean array (True = junk).

    Raises:
        MaskError: missing, unreadable, corrupt, or not a 2-D image.
    """
    path = Path(path)
    if not path.is_file():
        raise MaskError(f"{path}: no such mask file")
    try:
        data = tifffile.imread(path)
    except PermissionError:
        raise MaskError(f"{path}: permission denied") from None
    except Exception as error:
        raise MaskError(f"{path}: not a readable TIFF ({type(error).__name__}: {error})") from None
    data = np.squeeze(np.asarray(data))
    if data.size == 0:
        raise MaskError(f"{path}: corrupt or empty TIFF (no image data)")
    if data.ndim != 2:
        raise MaskError(f"{path}: a mask must be one 2-D image, this is shaped {data.shape}")
    return data > 0


def write_mask(path: str | os.PathLike[str], mask: np.ndarray) -> None:
    """Write a junk mask (True/non-zero = junk) as 8-bit LZW TIFF (255 = junk), atomically."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D, got shape {mask.shape}")
    data = np.where(mask > 0, 255, 0).astype(np.uint8)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, compression="lzw")


def resize_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask (masks may be off by a pixel in rounding)."""
    mask = np.asarray(mask) > 0.5
    if mask.shape == tuple(shape):
        return mask
    zoom = (shape[0] / mask.shape[0], shape[1] / mask.shape[1])
    resized = ndimage.zoom(mask.astype(np.uint8), zoom, order=0)
    out = np.zeros(shape, bool)
    h, w = min(shape[0], resized.shape[0]), min(shape[1], resized.shape[1])
    out[:h, :w] = resized[:h, :w] > 0
    return out
