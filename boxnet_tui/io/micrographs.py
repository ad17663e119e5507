"""Micrographs: MRC (memory-mapped, every common mode) and TIFF, plus a cheap folder scan.

A micrograph is a 2-D image. An MRC with one section (nz == 1) is 2-D; a stack of several
sections (a movie, a tilt series) is refused with a message, since picking needs one image.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from boxnet_tui.errors import MicrographError, UserError

MRC_SUFFIXES = (".mrc", ".mrcs", ".st")
TIFF_SUFFIXES = (".tif", ".tiff")
MICROGRAPH_SUFFIXES = (".mrc", ".tif", ".tiff")


@dataclass(frozen=True)
class MicrographInfo:
    """What a micrograph's header says, read without its pixel data."""

    path: Path
    shape: tuple[int, int]  # (rows, columns)
    dtype: str
    pixel_size: float | None  # Å/px, None when the header has none

    @property
    def root(self) -> str:
        return self.path.stem


@dataclass
class Micrograph:
    """A 2-D float32 image and its pixel size in Å."""

    path: Path
    data: np.ndarray
    pixel_size: float

    @property
    def root(self) -> str:
        return self.path.stem


def micrograph_root(path: str | os.PathLike[str]) -> str:
    return Path(path).stem


def natural_key(name: str) -> list[object]:
    # mic2 before mic10, as a person sorts.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def scan_folder(folder: str | os.PathLike[str]) -> list[Path]:
    """Micrograph files of ``folder`` (not recursive), in natural order; no file is opened.

    Raises:
        UserError: the folder does not exist, is not a folder, or cannot be listed.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    try:
        entries = list(os.scandir(folder))
    except PermissionError:
        raise UserError(f"{folder}: permission denied") from None
    paths = [
        Path(entry.path)
        for entry in entries
        if entry.name.lower().endswith(MICROGRAPH_SUFFIXES)
        and not entry.name.startswith(".")
        and entry.is_file()
    ]
    return sorted(paths, key=lambda p: natural_key(p.name))


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MicrographError(f"{path}: no such file")
    if not path.is_file():
        raise MicrographError(f"{path}: not a file")
    if not os.access(path, os.R_OK):
        raise MicrographError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise MicrographError(f"{path}: empty file (0 bytes)")


def _is_mrc(path: Path) -> bool:
    return path.suffix.lower() in MRC_SUFFIXES


def _open_mrc(path: Path) -> mrcfile.mrcfile.MrcFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # permissive mode warns on odd headers
            mrc = mrcfile.mmap(path, mode="r", permissive=True)
    except PermissionError:
        raise MicrographError(f"{path}: permission denied") from None
    except Exception as error:
        raise MicrographError(f"{path}: not a readable MRC file ({error})") from None
    if mrc.data is None:
        mrc.close()
        raise MicrographError(
            f"{path}: corrupt or truncated MRC (the header promises more data than the file holds)"
        )
    return mrc


def _header_pixel_size(value: float) -> float | None:
    # MRC writers leave 0 (or 1 for "unknown" in some tools, which we cannot tell apart from
    # a true 1 Å): only 0 and non-finite values count as missing.
    value = float(value)
    return round(value, 4) if np.isfinite(value) and value > 0 else None


def _plane_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 3:
        raise MicrographError(
            f"{path}: a stack of {shape[0]} images, not one micrograph "
            "(sum or motion-correct the frames first)"
        )
    if len(shape) != 2:
        raise MicrographError(f"{path}: not a 2-D image (shape {shape})")
    if 0 in shape:
        raise MicrographError(f"{path}: zero-size image (shape {shape})")
    return int(shape[0]), int(shape[1])


def _tiff_pixel_size(tif: tifffile.TiffFile) -> float | None:
    """Å/px from ImageJ metadata or the resolution tags, when the unit is stated."""
    page = tif.pages[0]
    unit = ""
    if tif.imagej_metadata:
        unit = str(tif.imagej_metadata.get("unit", ""))
    tags = page.tags
    if "XResolution" not in tags:
        return None
    numerator, denominator = tags["XResolution"].value
    if not numerator:
        return None
    per_unit = denominator / numerator  # size of one pixel, in the unit
    scale = {
        "a": 1.0,
        "å": 1.0,
        "angstrom": 1.0,
        "nm": 10.0,
        "micron": 1e4,
        "µm": 1e4,
        "um": 1e4,
    }.get(unit.lower().strip("\\"))
    if scale is None and "ResolutionUnit" in tags:
        scale = {3: 1e8}.get(int(tags["ResolutionUnit"].value))  # 3 = centimetre
    return per_unit * scale if scale else None


def read_info(path: str | os.PathLike[str]) -> MicrographInfo:
    """Shape, type and pixel size from the header only (cheap for folders of thousands)."""
    path = Path(path)
    _check_readable(path)
    if _is_mrc(path):
        mrc = _open_mrc(path)
        try:
            shape = _plane_shape(path, mrc.data.shape)
            return MicrographInfo(
                path, shape, str(mrc.data.dtype), _header_pixel_size(mrc.voxel_size.x)
            )
        finally:
            mrc.close()
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape = _plane_shape(path, tuple(series.shape))
            return MicrographInfo(path, shape, str(series.dtype), _tiff_pixel_size(tif))
    except MicrographError:
        raise
    except PermissionError:
        raise MicrographError(f"{path}: permission denied") from None
    except Exception as error:
        raise MicrographError(f"{path}: not a readable TIFF ({error})") from None


def read_micrograph(path: str | os.PathLike[str], pixel_size: float | None = None) -> Micrograph:
    """Read a micrograph as float32.

    Args:
        path: an MRC (modes 0, 1, 2, 6, 12 and friends) or TIFF file.
        pixel_size: Å/px; overrides the header. Required where the header has none.

    Raises:
        MicrographError: missing, unreadable, truncated, corrupt, not 2-D, zero-size, holding
            NaN/inf, or without a pixel size.
    """
    path = Path(path)
    _check_readable(path)
    header_pixel_size: float | None
    if _is_mrc(path):
        mrc = _open_mrc(path)
        try:
            raw = mrc.data
            shape = _plane_shape(path, raw.shape)
            if np.iscomplexobj(raw):
                raise MicrographError(f"{path}: complex MRC (mode {mrc.header.mode}), not an image")
            try:
                # a copy: the memory map closes with the file
                data = np.array(raw, dtype=np.float32).reshape(shape)
            except (OSError, ValueError) as error:
                raise MicrographError(f"{path}: truncated MRC ({error})") from None
            header_pixel_size = _header_pixel_size(mrc.voxel_size.x)
        finally:
            mrc.close()
    else:
        try:
            with tifffile.TiffFile(path) as tif:
                shape = _plane_shape(path, tuple(tif.series[0].shape))
                data = np.asarray(tif.series[0].asarray(), dtype=np.float32).reshape(shape)
                header_pixel_size = _tiff_pixel_size(tif)
        except MicrographError:
            raise
        except Exception as error:
            raise MicrographError(f"{path}: corrupt or truncated TIFF ({error})") from None
    if not np.isfinite(data).all():
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise MicrographError(f"{path}: {bad} pixels are NaN or infinite")
    size = pixel_size if pixel_size is not None else header_pixel_size
    if size is None:
        raise MicrographError(f"{path}: no pixel size in the header; give one (--pixel-size)")
    if not (np.isfinite(size) and size > 0):
        raise MicrographError(f"{path}: pixel size must be positive, got {size}")
    return Micrograph(path, data, float(size))


def write_micrograph(path: str | os.PathLike[str], data: np.ndarray, pixel_size: float) -> None:
    """Write a 2-D image as an MRC (float32, or float16/int8/int16 as given), atomically."""
    from boxnet_tui.io.atomic import atomic_path

    data = np.asarray(data)
    if data.dtype not in (np.int8, np.int16, np.uint16, np.float16):
        data = data.astype(np.float32)
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size
