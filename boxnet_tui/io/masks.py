"""Junk masks: ``mask/<root>.tif``, 8-bit, LZW, at 8 Å/px, rows flipped in Y (Warp's layout).

Non-zero pixels are junk. The mask covers the micrograph rescaled to 8 Å/px, so its shape is
the micrograph's shape times ``pixel_size / 8`` (rounded as :func:`imaging.scaled_shape` does).

Rows: Warp reads every TIFF with its rows flipped in Y (its images have row 0 at the bottom,
as MRC files do) and writes every TIFF flipped back, tagged ``Orientation = BOTLEFT``
(Warp's ``Image.WriteTIFF`` and ``HeaderTiff.ReadData``; its picker writes masks that way, as
float 0/1). Here a mask in memory lies on the micrograph's array as read
(:func:`boxnet_tui.io.micrographs.read_micrograph`), row 0 first, so it is flipped on write
and on read exactly as Warp does: a mask painted here is where Warp shows it, and back.
Warp's own mask brush (its GUI's painter) is the exception: it writes rows as they lie in
its memory, unflipped, so Warp itself reads such a mask back flipped; here it is read as
Warp's reader (and so its picker and trainer) reads it.

Masks written by boxnet-tui before it followed Warp (rows as in memory, no Orientation tag,
tifffile's ``{"shape": ...}`` description) are read as they were written, so that no painted
mask turns upside down; the next save writes them Warp's way.
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
ORIENTATION_TAG = 274  # TIFF Orientation
BOTTOM_LEFT = 4  # ORIENTATION.BOTLEFT: row 0 is the bottom, as Warp tags its TIFFs


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a junk mask as a boolean array (True = junk), rows flipped back as Warp does.

    Raises:
        MaskError: missing, unreadable, corrupt, or not a 2-D image.
    """
    path = Path(path)
    if not path.is_file():
        raise MaskError(f"{path}: no such mask file")
    try:
        with tifffile.TiffFile(path) as tif:
            if not len(tif.pages):
                raise MaskError(f"{path}: corrupt or empty TIFF (no image data)")
            data = tif.asarray()
            flipped = _stored_flipped(tif)
    except MaskError:
        raise
    except PermissionError:
        raise MaskError(f"{path}: permission denied") from None
    except Exception as error:
        raise MaskError(f"{path}: not a readable TIFF ({type(error).__name__}: {error})") from None
    data = np.squeeze(np.asarray(data))
    if data.size == 0:
        raise MaskError(f"{path}: corrupt or empty TIFF (no image data)")
    if data.ndim != 2:
        raise MaskError(f"{path}: a mask must be one 2-D image, this is shaped {data.shape}")
    junk = data > 0
    return np.ascontiguousarray(junk[::-1]) if flipped else junk


def _stored_flipped(tif: tifffile.TiffFile) -> bool:
    """Whether the rows are stored flipped (Warp's way): every TIFF but the legacy masks of
    boxnet-tui (no Orientation tag and tifffile's shape description)."""
    page = tif.pages[0]
    if ORIENTATION_TAG in page.tags:
        return True
    return not tif.is_shaped


def write_mask(path: str | os.PathLike[str], mask: np.ndarray) -> None:
    """Write a junk mask (True/non-zero = junk) as 8-bit LZW TIFF (255 = junk), atomically,
    rows flipped and tagged as Warp writes its TIFFs."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D, got shape {mask.shape}")
    data = np.where(mask[::-1] > 0, 255, 0).astype(np.uint8)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            data,
            compression="lzw",
            photometric="minisblack",
            metadata=None,  # no tifffile description: a plain page, as Warp's
            extratags=[(ORIENTATION_TAG, "H", 1, BOTTOM_LEFT, True)],
        )


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
