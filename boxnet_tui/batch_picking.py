"""Picking micrographs with a model: one micrograph, or a whole folder with a progress callback.

Used alike by ``boxnet-tui pick`` and the app. Reading and preparing the next micrograph
overlaps with the network working on the current one (a one-thread prefetch), and only those
two micrographs are in memory at a time, whatever the folder's size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import WARP_SCALE, NetworkScale, prepare_for_network, scaled_shape
from boxnet_tui.io import layout
from boxnet_tui.io.masks import MASK_PIXEL_SIZE, resize_mask, write_mask
from boxnet_tui.io.micrographs import read_micrograph, scan_folder
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.model.inference import predict_probabilities, resolve_device
from boxnet_tui.model.network import BoxNet, fuse_for_inference
from boxnet_tui.model.store import DEFAULT_MODEL, ModelInfo, load_model
from boxnet_tui.picking import check_diameter, pick

DEFAULT_THRESHOLD = 0.5
MIN_SIDE_PX = 64  # px of the network's input, below which a micrograph holds no tile's context
MAX_SIDE_PX = 16384  # px of the network's input: beyond, a header's pixel size is not sane
PIXEL_SIZE_RANGE = (0.05, 100.0)  # Å/px a micrograph may have


@dataclass
class PickSettings:
    diameter: float = 200.0
    threshold: float | None = None  # None: the model's calibrated threshold, else 0.5
    pixel_size: float | None = None  # overrides the header
    min_mask_distance: float = 0.0
    invert: bool = False
    batch_size: int = 4


@dataclass
class Prepared:
    path: Path
    image: np.ndarray  # at the model's input pixel size, normalised
    scale: float  # micrograph pixels per network pixel
    pixel_size: float = 8.0  # Å/px of ``image``
    mask_shape: tuple[int, int] | None = None  # the micrograph's junk mask grid (8 Å/px)


@dataclass
class MicrographPicks:
    path: Path
    picks: Picks | None = None
    junk: np.ndarray | None = None
    error: str | None = None


@dataclass
class FolderProgress:
    done: int
    total: int
    failed: int
    elapsed: float
    current: Path | None = None

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else float("nan")


@dataclass
class FolderSummary:
    picked: int = 0
    particles: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def default_threshold(info: ModelInfo) -> float:
    """The model's calibrated threshold, or Warp's command-line default of 0.5."""
    return info.threshold if info.threshold is not None else DEFAULT_THRESHOLD


def prepare(path: Path, settings: PickSettings, scale: NetworkScale = WARP_SCALE) -> Prepared:
    """Read a micrograph and bring it to what the network sees (``scale``, normalised)."""
    micrograph = read_micrograph(path, settings.pixel_size)
    network_pixel = scale.pixel_size(settings.diameter)
    _check_size(path, micrograph.data.shape, micrograph.pixel_size, network_pixel)
    image, factor = prepare_for_network(
        micrograph.data,
        micrograph.pixel_size,
        invert=settings.invert,
        target_pixel_size=network_pixel,
        highpass_angstrom=scale.highpass(settings.diameter),
        lowpass_px=scale.lowpass_px,
    )
    if min(image.shape) < MIN_SIDE_PX:
        side = MIN_SIDE_PX * network_pixel / micrograph.pixel_size
        raise UserError(
            f"{path}: too small to pick ({micrograph.data.shape[1]}x{micrograph.data.shape[0]} px "
            f"at {micrograph.pixel_size:g} Å/px); each side must be at least {side:.0f} px"
        )
    mask_shape = scaled_shape(micrograph.data.shape, micrograph.pixel_size, MASK_PIXEL_SIZE)
    return Prepared(path, image, factor, factor * micrograph.pixel_size, mask_shape)


def _check_size(
    path: Path, shape: tuple[int, ...], pixel_size: float, network_pixel: float
) -> None:
    """Refuse, before any allocation, a pixel size or rescaled size beyond sense."""
    low, high = PIXEL_SIZE_RANGE
    if not low <= pixel_size <= high:
        raise UserError(
            f"{path}: pixel size {pixel_size:g} Å/px is not from {low:g} to {high:g}; "
            "give the right one with --pixel-size"
        )
    side = max(shape) * pixel_size / network_pixel
    if side > MAX_SIDE_PX:
        raise UserError(
            f"{path}: {shape[-1]}x{shape[0]} px at {pixel_size:g} Å/px is {side:.0f} px at "
            f"the network's {network_pixel:.3g} Å/px (at most {MAX_SIDE_PX}); check the pixel "
            "size and the diameter"
        )


def _failure(path: Path, error: BaseException) -> str:
    """One line for a micrograph that could not be picked or written, naming it."""
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, MemoryError):
        return f"{path}: not enough memory to pick it"
    if isinstance(error, OSError):
        where = error.filename or path
        return f"{where}: {error.strerror or error}"
    return f"{path}: {type(error).__name__}: {error}"


def pick_prepared(
    network: BoxNet, prepared: Prepared, settings: PickSettings, device: torch.device
) -> MicrographPicks:
    probabilities = predict_probabilities(
        network, prepared.image, device=device, batch_size=settings.batch_size
    )
    threshold = DEFAULT_THRESHOLD if settings.threshold is None else settings.threshold
    result = pick(
        probabilities,
        settings.diameter,
        threshold,
        min_mask_distance=settings.min_mask_distance,
        pixel_size=prepared.pixel_size,
    )
    junk = result.junk
    if prepared.mask_shape is not None and junk.shape != prepared.mask_shape:
        junk = resize_mask(junk, prepared.mask_shape)  # masks on disk are at 8 Å/px
    return MicrographPicks(prepared.path, result.to_micrograph(prepared.scale), junk)


def save_picks(
    folder: Path, result: MicrographPicks, suffix: str, *, write_junk_mask: bool
) -> None:
    """Write ``matching/<root>_<suffix>.star`` (and the junk mask) atomically."""
    assert result.picks is not None
    root = result.path.stem
    write_picks(layout.pick_path(folder, root, suffix), result.picks, result.path.name)
    if write_junk_mask and result.junk is not None:
        write_mask(layout.mask_path(folder, root), result.junk)


def _prefetched(
    paths: list[Path], settings: PickSettings, scale: NetworkScale
) -> Iterator[tuple[Path, Future]]:
    """Yield (path, future of Prepared) with the next micrograph already being read."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending: Future | None = pool.submit(prepare, paths[0], settings, scale) if paths else None
        for index, path in enumerate(paths):
            current = pending
            nxt = index + 1
            pending = (
                pool.submit(prepare, paths[nxt], settings, scale) if nxt < len(paths) else None
            )
            assert current is not None
            yield path, current


def pick_folder(
    folder: str | os.PathLike[str],
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    settings: PickSettings | None = None,
    *,
    suffix: str | None = None,
    device: str = "auto",
    paths: list[Path] | None = None,
    progress: Callable[[FolderProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FolderSummary:
    """Pick every micrograph of ``folder`` (or ``paths``), writing STAR files and masks.

    A micrograph that cannot be read or picked is reported in ``errors`` (one line each) and
    nothing is written for it; the others carry on.

    Raises:
        UserError: bad folder, no micrographs, unknown model, diameter out of range.
    """
    settings = settings or PickSettings()
    check_diameter(settings.diameter)
    folder = Path(folder)
    paths = scan_folder(folder) if paths is None else paths
    if not paths:
        raise UserError(f"{folder}: no micrographs (*.mrc, *.tif, *.tiff) in this folder")
    torch_device = resolve_device(device)
    network, info = load_model(model, torch_device)
    fuse_for_inference(network)
    if settings.threshold is None:
        settings = replace(settings, threshold=default_threshold(info))
    suffix = suffix or info.name
    summary = FolderSummary()
    start = time.perf_counter()
    for done, (path, future) in enumerate(_prefetched(paths, settings, info.scale), start=1):
        if should_stop is not None and should_stop():
            break
        try:
            result = pick_prepared(network, future.result(), settings, torch_device)
            save_picks(folder, result, suffix, write_junk_mask=info.has_mask)
            summary.picked += 1
            assert result.picks is not None
            summary.particles += len(result.picks)
        except (UserError, OSError, MemoryError) as error:
            # one line for this micrograph and the batch goes on (a read-only matching/, a
            # full disk or a file-size limit, an allocation beyond this machine)
            summary.errors.append(_failure(path, error))
        if progress is not None:
            progress(
                FolderProgress(
                    done, len(paths), len(summary.errors), time.perf_counter() - start, path
                )
            )
    summary.seconds = time.perf_counter() - start
    return summary
