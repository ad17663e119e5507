"""Micrographs: MRC (memory-mapped, every common mode) and TIFF, plus a cheap folder scan.

A micrograph is a 2-D image. An MRC with one section (nz == 1) is 2-D; a stack of several
sections (a movie, a tilt series) is refused with a message, since picking needs one image.

Files are untrusted: whatever their bytes, a reader returns or raises :class:`MicrographError`
with one line, and refuses a header that claims more than the file can hold before anything is
allocated. An MRC's header must describe the file exactly (1024 bytes + the extended header +
the data, the rule ``mrcfile.validate`` applies): a file shorter is truncated, and a file
longer holds an image other than the one declared, which read as declared would be scrambled.

A TIFF's rows are read flipped in Y, as Warp reads every TIFF (Warp's images have row 0 at
the bottom, as MRC files do; a TIFF's first row is its top): pick coordinates on a TIFF
micrograph are then the same here as in Warp's STAR files. MRC files are read as stored.

A colour TIFF (RGB, RGBA, a palette, any image with several samples a pixel) is refused, not
converted to grey: a micrograph is recorded in one channel, so a colour file is a rendering (a
screenshot, an export through a colour map, annotations) whose values are no longer the
detector's; picking on its grey conversion would silently be worse. Save the recorded image as
a one-channel TIFF or an MRC instead.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import mrcfile.utils
import numpy as np
import tifffile
from mrcfile.constants import MAP_ID
from mrcfile.dtypes import HEADER_DTYPE

from boxnet_tui.errors import MicrographError, UserError

MRC_SUFFIXES = (".mrc", ".mrcs", ".st")
TIFF_SUFFIXES = (".tif", ".tiff")
MICROGRAPH_SUFFIXES = (".mrc", ".tif", ".tiff")

# 32768² pixels (4 GiB as float32): far beyond any detector (a K3's super-resolution frame is
# 11520 x 8184); a header claiming more is damaged, and reading it would exhaust the memory.
MAX_PIXELS = 1 << 30
# A compressed TIFF expands at most this much: deflate's limit is about 1032, LZW's 12-bit codes
# about 2730; a header that claims more than this over the file's size is damaged.
MAX_TIFF_EXPANSION = 4096


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

    In a Warp folder these are Warp's averages (``average/``, see
    :func:`boxnet_tui.io.layout.find_layout`), not the movies beside them.

    Raises:
        UserError: the folder does not exist, is not a folder, or cannot be listed.
    """
    from boxnet_tui.io.layout import micrographs_dir

    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    folder = micrographs_dir(folder)
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


def _mrc_header(path: Path, size: int) -> np.recarray:
    """The 1024-byte MRC header in its byte order, read as ``mrcfile`` reads it (permissive)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(HEADER_DTYPE.itemsize)
    except PermissionError:
        raise MicrographError(f"{path}: permission denied") from None
    except OSError as error:
        raise MicrographError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(raw) < HEADER_DTYPE.itemsize:
        raise MicrographError(
            f"{path}: not an MRC file ({size} bytes, less than an MRC header's 1024)"
        )
    header = np.frombuffer(raw, HEADER_DTYPE).reshape(()).view(np.recarray)
    try:
        order = mrcfile.utils.byte_order_from_machine_stamp(header.machst)
    except ValueError:
        order = "<"  # as mrcfile does with an unknown machine stamp
    header = header.view(HEADER_DTYPE.newbyteorder(order)).view(np.recarray)
    if not _known_mode(header.mode):  # some writers stamp the wrong byte order
        swapped = header.view(header.dtype.newbyteorder()).view(np.recarray)
        if _known_mode(swapped.mode):
            header = swapped
    return header


def _known_mode(mode: np.ndarray) -> bool:
    try:
        mrcfile.utils.dtype_from_mode(mode)
    except ValueError:
        return False
    return True


def _check_mrc_size(path: Path) -> None:
    """Refuse an MRC whose header does not describe the file, before anything is allocated.

    The file must hold exactly the 1024-byte header, the extended header it declares and
    nx·ny·nz values of its mode: shorter is truncated, longer means the dimensions are wrong.
    """
    size = path.stat().st_size
    header = _mrc_header(path, size)
    if bytes(header.map)[:3] != MAP_ID[:3] and not _known_mode(header.mode):
        raise MicrographError(f"{path}: corrupt or not an MRC file (no MAP stamp, no data mode)")
    if not _known_mode(header.mode):
        raise MicrographError(
            f"{path}: MRC data mode {int(header.mode)} is not supported (0, 1, 2, 6 and 12 are)"
        )
    dims = {axis: int(header[axis]) for axis in ("nx", "ny", "nz")}
    if min(dims.values()) < 1:
        shown = ", ".join(f"{axis}={value}" for axis, value in dims.items())
        raise MicrographError(f"{path}: zero-size or negative MRC dimensions ({shown})")
    _check_pixels(path, dims["ny"], dims["nx"])  # before the file is even mapped
    if mrcfile.utils.spacegroup_is_volume_stack(header.ispg) and int(header.mz) < 1:
        raise MicrographError(
            f"{path}: the MRC header declares a volume stack of mz={int(header.mz)} sections"
        )
    extended = int(header.nsymbt)
    if extended < 0:
        raise MicrographError(f"{path}: negative extended header size in the MRC header")
    shape = mrcfile.utils.data_shape_from_header(header)
    itemsize = mrcfile.utils.data_dtype_from_header(header).itemsize
    values = 1
    for length in shape:
        values *= int(length)  # Python ints: no overflow whatever the header says
    declared = HEADER_DTYPE.itemsize + extended + values * itemsize
    if declared == size:
        return
    what = f"{dims['nx']}x{dims['ny']}x{dims['nz']} values of mode {int(header.mode)}" + (
        f" after a {extended}-byte extended header" if extended else ""
    )
    if declared > size:
        raise MicrographError(
            f"{path}: truncated MRC (the header declares {what}, {declared} bytes in all; "
            f"the file holds {size})"
        )
    raise MicrographError(
        f"{path}: the MRC header does not fit the file (it declares {what}, {declared} bytes "
        f"in all, but the file holds {size}): a damaged header; read as declared the image "
        "would be scrambled"
    )


def _open_mrc(path: Path) -> mrcfile.mrcfile.MrcFile:
    _check_mrc_size(path)
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


def _mrc_pixel_size(mrc: mrcfile.mrcfile.MrcFile) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cella / mx with mx = 0 in a damaged header
        return _header_pixel_size(mrc.voxel_size.x)


def _header_pixel_size(value: float) -> float | None:
    # MRC writers leave 0 (or 1 for "unknown" in some tools, which we cannot tell apart from
    # a true 1 Å): only 0 and non-finite values count as missing.
    value = round(float(value), 4)
    return value if np.isfinite(value) and value > 0 else None


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
    rows, columns = int(shape[0]), int(shape[1])
    _check_pixels(path, rows, columns)
    return rows, columns


def _check_pixels(path: Path, rows: int, columns: int) -> None:
    if rows * columns > MAX_PIXELS:
        raise MicrographError(
            f"{path}: {rows}x{columns} pixels, more than any micrograph "
            f"({MAX_PIXELS} pixels at most): a damaged header?"
        )


_COLOUR = {
    tifffile.PHOTOMETRIC.RGB: "a colour (RGB) image",
    tifffile.PHOTOMETRIC.PALETTE: "an indexed-colour (palette) image",
    tifffile.PHOTOMETRIC.YCBCR: "a colour (YCbCr) image",
    tifffile.PHOTOMETRIC.SEPARATED: "a colour (CMYK) image",
    tifffile.PHOTOMETRIC.CIELAB: "a colour (CIELab) image",
}


def _tiff_plane(path: Path, tif: tifffile.TiffFile) -> tuple[tuple[int, int], np.dtype]:
    """Shape and type of a TIFF's one greyscale image, checked before its pixels are read.

    Refuses a colour image (see the module's note), a stack, and a header that claims more
    pixels than the file could hold, so that a damaged header never allocates gigabytes.
    """
    page = tif.pages[0]
    samples = int(page.samplesperpixel)
    colour = _COLOUR.get(page.photometric)
    if colour is None and samples > 1:
        colour = f"an image of {samples} samples (channels) a pixel"
    if colour is not None:
        raise MicrographError(
            f"{path}: {colour}, not a greyscale micrograph; "
            "save the recorded one-channel image (TIFF or MRC) instead"
        )
    series = tif.series[0]
    shape = _plane_shape(path, tuple(series.shape))
    dtype = np.dtype(series.dtype)
    if dtype.kind not in "iuf":
        raise MicrographError(f"{path}: TIFF of {dtype} values, not an image of numbers")
    declared = shape[0] * shape[1] * dtype.itemsize
    size = path.stat().st_size
    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False):
        if offset < 0 or count < 0 or offset + count > size:  # read as asked, it would allocate
            raise MicrographError(
                f"{path}: truncated or damaged TIFF (image data at bytes {offset} to "
                f"{offset + count}, beyond the end of the file at {size})"
            )
    compressed = int(page.compression) != tifffile.COMPRESSION.NONE
    if declared > size * (MAX_TIFF_EXPANSION if compressed else 1):
        raise MicrographError(
            f"{path}: the TIFF header declares {shape[0]}x{shape[1]} pixels of {dtype}, "
            f"{declared} bytes, more than a file of {size} bytes can hold: truncated or damaged"
        )
    return shape, dtype


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
    return _header_pixel_size(per_unit * scale) if scale else None


def read_info(path: str | os.PathLike[str]) -> MicrographInfo:
    """Shape, type and pixel size from the header only (cheap for folders of thousands)."""
    path = Path(path)
    _check_readable(path)
    if _is_mrc(path):
        mrc = _open_mrc(path)
        try:
            shape = _plane_shape(path, mrc.data.shape)
            return MicrographInfo(path, shape, str(mrc.data.dtype), _mrc_pixel_size(mrc))
        finally:
            mrc.close()
    try:
        with tifffile.TiffFile(path) as tif:
            shape, dtype = _tiff_plane(path, tif)
            return MicrographInfo(path, shape, str(dtype), _tiff_pixel_size(tif))
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
            except MemoryError:
                raise _no_memory(path, shape) from None
            header_pixel_size = _mrc_pixel_size(mrc)
        finally:
            mrc.close()
    else:
        try:
            with tifffile.TiffFile(path) as tif:
                shape, _ = _tiff_plane(path, tif)
                # rows flipped, as Warp reads every TIFF (its y axis points up, as in MRC):
                # y of a pick is then the same here, in Warp and in its STAR files
                raw = tif.series[0].asarray().reshape(shape)
                data = np.array(raw[::-1], dtype=np.float32)  # one contiguous copy
                header_pixel_size = _tiff_pixel_size(tif)
        except MicrographError:
            raise
        except MemoryError:
            raise MicrographError(f"{path}: not enough memory to read this TIFF") from None
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


def _no_memory(path: Path, shape: tuple[int, int]) -> MicrographError:
    return MicrographError(
        f"{path}: not enough memory to read its {shape[0]}x{shape[1]} pixels as float32"
    )


def write_micrograph(path: str | os.PathLike[str], data: np.ndarray, pixel_size: float) -> None:
    """Write a 2-D image as an MRC (float32, or float16/int8/int16 as given), atomically."""
    from boxnet_tui.io.atomic import atomic_path

    data = np.asarray(data)
    if data.dtype not in (np.int8, np.int16, np.uint16, np.float16):
        data = data.astype(np.float32)
    with atomic_path(path) as tmp, mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size
