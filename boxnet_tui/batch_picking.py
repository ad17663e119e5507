"""Picking micrographs with a model: one micrograph, or a whole folder with a progress callback.

Used alike by ``boxnet-tui pick`` and the app. Reading and preparing the next micrograph
overlaps with the network working on the current one (a one-thread prefetch), and only those
two micrographs are in memory at a time, whatever the folder's size.

A pick never replaces the picks or the painted mask of a micrograph marked curated unasked:
such a micrograph is skipped when its pick file of the suffix exists, and keeps its mask when
only the mask would change. Told to (``overwrite_curated``), the pick first backs up what it
replaces (:mod:`boxnet_tui.io.backups`) and clears the curated mark, as the content changed.
The mark is read again just before each write: the app picks while its user curates.

For folders of thousands (``pick --shard K/N``, ``pick --watch``): each pick file starts with a
record of the model and settings that made it (:mod:`boxnet_tui.pick_log`), so a re-run skips
what is already picked the same way (``skip_picked``) and finishes the rest; ``shard`` takes
one share of the folder (:mod:`boxnet_tui.shards`); ``log`` writes each failure to the shard's
log, which ``pick-status`` counts. :func:`load_picker` and :func:`pick_paths` are the two
halves of :func:`pick_folder`, for a caller that picks batch after batch with one model
(:mod:`boxnet_tui.watch`).
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

from boxnet_tui.curation_state import StateStore, load_state
from boxnet_tui.errors import UserError
from boxnet_tui.imaging import WARP_SCALE, NetworkScale, prepare_for_network, scaled_shape
from boxnet_tui.io import layout
from boxnet_tui.io.backups import back_up
from boxnet_tui.io.locking import locked
from boxnet_tui.io.masks import MASK_PIXEL_SIZE, resize_mask, write_mask
from boxnet_tui.io.micrographs import Micrograph, read_micrograph, scan_folder
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.model.inference import predict_probabilities, resolve_device
from boxnet_tui.model.network import BoxNet, fuse_for_inference
from boxnet_tui.model.store import DEFAULT_MODEL, WEIGHTS, ModelInfo, load_model
from boxnet_tui.pick_log import PickLog, PickRecipe, file_digest, read_record
from boxnet_tui.pick_options import RUN_PATH, check_min_mask_distance, resolve_invert
from boxnet_tui.picking import PEAK_FLOOR, check_diameter, pick
from boxnet_tui.scale_check import (
    CHECK_FACTORS,
    ScaleCheck,
    check_scale_factor,
    choose_factor,
    decisive_share,
    sample,
)
from boxnet_tui.shards import Shard

DEFAULT_THRESHOLD = 0.5
MIN_SIDE_PX = 64  # px of the network's input, below which a micrograph holds no tile's context
MAX_SIDE_PX = 16384  # px of the network's input: beyond, a header's pixel size is not sane
PIXEL_SIZE_RANGE = (0.05, 100.0)  # Å/px a micrograph may have


@dataclass
class PickSettings:
    diameter: float = 200.0
    threshold: float | None = None  # None: the model's calibrated threshold, else 0.5
    pixel_size: float | None = None  # overrides the header
    min_mask_distance: float = 0.0  # Å kept from the junk mask beyond the particle radius
    # None: as the model was trained (:func:`boxnet_tui.pick_options.resolve_invert`, applied
    # by :func:`load_picker`); :func:`prepare` on its own takes None as not inverted
    invert: bool | None = None
    batch_size: int = 4
    # the network's input scaled by this beyond the stated diameter's; None: a generic model's
    # is checked on the folder (:mod:`boxnet_tui.scale_check`), any other model's is 1
    scale_factor: float | None = None


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
    written: bool = True  # False: nothing was written for ``current`` (failed, or curated)

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
    skipped_curated: list[str] = field(default_factory=list)  # roots: their picks are kept
    kept_masks: list[str] = field(default_factory=list)  # curated roots picked, mask kept
    uncurated: list[str] = field(default_factory=list)  # curated roots replaced (forced)
    backups: list[Path] = field(default_factory=list)  # of what a forced pick replaced
    micrographs: int = 0  # in the folder (or ``paths``) and the shard
    already_picked: int = 0  # skipped: their pick files carry this model's and settings' record
    stopped: bool = False  # ``should_stop`` ended the run before the last micrograph
    log_problem: str | None = None  # why the run's log could not be written
    scale_check: ScaleCheck | None = None  # the scale factor chosen on the folder, if checked

    def curated_note(self, force: str = "--overwrite-curated") -> str:
        """One line on the curated micrographs skipped or replaced ("" when none was);
        ``force`` says how to pick them anyway."""
        notes = []
        if self.skipped_curated:
            notes.append(
                f"skipped {_count(self.skipped_curated, 'curated micrograph')} "
                f"({_names(self.skipped_curated)}): a pick would replace their curated picks; "
                f"{force} picks them anyway, keeping backups"
            )
        if self.uncurated:
            notes.append(
                f"replaced the picks of {_count(self.uncurated, 'curated micrograph')} "
                f"({_names(self.uncurated)}) and cleared their curated marks; the old files are "
                f"in matching/.backup and mask/.backup (boxnet-tui restore FOLDER lists them)"
            )
        return "; ".join(notes)


def _count(items: list, what: str) -> str:
    return f"{len(items)} {what}{'' if len(items) == 1 else 's'}"


def _names(roots: list[str], shown: int = 3) -> str:
    more = f" and {len(roots) - shown} more" if len(roots) > shown else ""
    return ", ".join(roots[:shown]) + more


def default_threshold(info: ModelInfo) -> float:
    """The model's calibrated threshold, or Warp's command-line default of 0.5."""
    return info.threshold if info.threshold is not None else DEFAULT_THRESHOLD


def prepare(path: Path, settings: PickSettings, scale: NetworkScale = WARP_SCALE) -> Prepared:
    """Read a micrograph and bring it to what the network sees (``scale``, normalised)."""
    return prepare_micrograph(read_micrograph(path, settings.pixel_size), settings, scale)


def prepare_micrograph(
    micrograph: Micrograph, settings: PickSettings, scale: NetworkScale = WARP_SCALE
) -> Prepared:
    """A micrograph read already, brought to what the network sees (``scale``, normalised)."""
    path = micrograph.path
    network_pixel = scale.pixel_size(settings.diameter)
    _check_size(path, micrograph.data.shape, micrograph.pixel_size, network_pixel)
    image, factor = prepare_for_network(
        micrograph.data,
        micrograph.pixel_size,
        invert=bool(settings.invert),
        target_pixel_size=network_pixel,
        highpass_angstrom=scale.highpass(settings.diameter),
        lowpass_px=scale.lowpass_px,
        normalisation=scale.normalisation,
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
    folder: Path,
    result: MicrographPicks,
    suffix: str,
    *,
    write_junk_mask: bool,
    record: str | None = None,
) -> None:
    """Write ``matching/<root>_<suffix>.star`` (and the junk mask) atomically, each under
    the write lock an app window's edit takes (so neither write drops the other).

    ``record``: a comment line put first in the STAR file, in the same atomic write
    (:meth:`boxnet_tui.pick_log.PickRecipe.line`). The mask is written first, so a pick file
    with its record means that both are on disk, whenever the process is killed.
    """
    assert result.picks is not None
    root = result.path.stem
    if write_junk_mask and result.junk is not None:
        mask = layout.mask_path(folder, root)
        with locked(mask):
            write_mask(mask, result.junk)
    star = layout.pick_path(folder, root, suffix)
    with locked(star):
        write_picks(star, result.picks, result.path.name, record=record)


def _curated_now(folder: Path, store: StateStore | None) -> set[str]:
    """The roots marked curated now: on disk, and in ``store`` (the app's own marks)."""
    curated = set(load_state(folder)[0].curated)
    return curated | set(store.state.curated) if store is not None else curated


def _save_guarded(
    folder: Path,
    result: MicrographPicks,
    suffix: str,
    *,
    write_junk_mask: bool,
    overwrite_curated: bool,
    store: StateStore | None,
    summary: FolderSummary,
    record: str | None = None,
) -> bool:
    """Write the picks unless that replaces a curated micrograph's picks unasked (False).

    A curated micrograph's mask is kept unless forced; forced, what is replaced is backed up
    first and the curated mark is cleared after.
    """
    root = result.path.stem
    if root not in _curated_now(folder, store):
        save_picks(folder, result, suffix, write_junk_mask=write_junk_mask, record=record)
        return True
    star = layout.pick_path(folder, root, suffix)
    mask = layout.mask_path(folder, root)
    if star.exists() and not overwrite_curated:
        summary.skipped_curated.append(root)
        return False
    mask_replaced = write_junk_mask and result.junk is not None and mask.exists()
    if mask_replaced and not overwrite_curated:
        write_junk_mask = mask_replaced = False
        summary.kept_masks.append(root)
    replaced = [path for path, replace in ((star, star.exists()), (mask, mask_replaced)) if replace]
    backups = [back_up(path) for path in replaced]  # before anything is written
    save_picks(folder, result, suffix, write_junk_mask=write_junk_mask, record=record)
    summary.backups.extend(backups)
    if replaced:
        (store or StateStore(folder)).set_curated(root, False)
        summary.uncurated.append(root)
    return True


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


@dataclass
class Picker:
    """A model loaded for picking, the settings it picks with, and the pick set it writes."""

    network: BoxNet
    info: ModelInfo
    device: torch.device
    settings: PickSettings  # the threshold resolved
    suffix: str
    recipe: PickRecipe
    scale: NetworkScale  # what the network sees: the model's, times the scale factor
    check: ScaleCheck | None = None  # how the scale factor was chosen, where it was checked


def load_picker(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    settings: PickSettings | None = None,
    *,
    suffix: str | None = None,
    device: str = "auto",
) -> Picker:
    """Load ``model`` on ``device`` for picking with ``settings`` into the set ``suffix``.

    The settings left to the model are resolved here: the threshold (None: the model's
    calibrated one) and inverting (None: as the model was trained, negative stain or not).

    Raises:
        UserError: unknown model, no such device, diameter or minimum mask distance out of
            range, a bad suffix.
    """
    settings = settings or PickSettings()
    check_diameter(settings.diameter)
    check_min_mask_distance(settings.min_mask_distance)
    torch_device = resolve_device(device)
    network, info = load_model(model, torch_device)
    fuse_for_inference(network)
    if settings.threshold is None:
        settings = replace(settings, threshold=default_threshold(info))
    settings = replace(settings, invert=resolve_invert(settings.invert, info))
    if settings.scale_factor is not None:
        check_scale_factor(settings.scale_factor)
        if settings.scale_factor != 1.0 and info.scale.pixels_per_diameter is None:
            raise UserError(
                f"{info.name} sees micrographs at Warp's fixed 8 Å/px: a scale factor needs a "
                "model that scales its input by the diameter"
            )
    elif not checks_scale(info):
        settings = replace(settings, scale_factor=1.0)
    suffix = suffix or info.name
    layout.pick_file_name("", suffix)  # a bad suffix is refused before any pick
    assert settings.threshold is not None
    recipe = PickRecipe(
        model=info.name,
        weights=file_digest(info.path / WEIGHTS if info.path is not None else None),
        diameter=float(settings.diameter),
        threshold=float(settings.threshold),
        pixel_size=settings.pixel_size,
        min_mask_distance=float(settings.min_mask_distance),
        invert=bool(settings.invert),
        scale_factor=1.0 if settings.scale_factor is None else settings.scale_factor,
    )
    scale = scaled(info.scale, recipe.scale_factor)
    return Picker(network, info, torch_device, settings, suffix, recipe, scale)


def checks_scale(info: ModelInfo) -> bool:
    """Whether picking with this model checks its scale on the folder: a generic model that
    scales its input by the diameter. A model ``train`` made (its run recorded in
    ``model.json``) learnt one protein at its stated diameter and is not checked; the shipped
    BoxNet, fine-tuned from BoxNetMask by the generic recipe, is generic and is."""
    retrained = RUN_PATH in info.training
    return not retrained and info.scale.pixels_per_diameter is not None


def scaled(scale: NetworkScale, factor: float) -> NetworkScale:
    """``scale`` with the particle ``factor`` times as many pixels across."""
    if factor == 1.0 or scale.pixels_per_diameter is None:
        return scale
    return replace(scale, pixels_per_diameter=scale.pixels_per_diameter * factor)


def with_factor(picker: Picker, factor: float, check: ScaleCheck | None = None) -> Picker:
    """``picker`` picking at ``factor`` (its settings, recipe and scale agree)."""
    return replace(
        picker,
        settings=replace(picker.settings, scale_factor=factor),
        recipe=replace(picker.recipe, scale_factor=factor),
        scale=scaled(picker.info.scale, factor),
        check=check,
    )


_CHECKED: dict[tuple, ScaleCheck] = {}  # this process's checks: one per folder, model, sample


def check_scale(picker: Picker, paths: list[Path]) -> Picker:
    """``picker`` with its scale factor chosen on a sample of ``paths`` (the whole folder,
    before any shard's share) when it has none yet: see :mod:`boxnet_tui.scale_check`.

    A sample micrograph that cannot be read is left out (the pick reports it); with none
    readable, the factor is 1.
    """
    if picker.settings.scale_factor is not None:
        return picker
    chosen = sample(paths)
    # the model's own threshold decides, whatever the user picks at: the factor does not move
    # with the threshold, and a higher threshold still keeps a subset of a lower one's picks
    threshold = default_threshold(picker.info)
    recipe = replace(picker.recipe, threshold=threshold)
    key = (recipe.fingerprint, tuple(str(path) for path in chosen))
    if key not in _CHECKED:
        start = time.perf_counter()
        scores: dict[float, list[np.ndarray]] = {factor: [] for factor in CHECK_FACTORS}
        used = 0
        for path in chosen:
            try:
                micrograph = read_micrograph(path, picker.settings.pixel_size)
                for factor in CHECK_FACTORS:
                    scores[factor].append(_peak_scores(picker, micrograph, factor))
            except (UserError, OSError, MemoryError):
                continue
            used += 1
        shares = {f: decisive_share(s, threshold) for f, s in scores.items()}
        seconds = time.perf_counter() - start
        _CHECKED[key] = ScaleCheck(choose_factor(shares), shares, used, seconds)
    check = _CHECKED[key]
    return with_factor(picker, check.factor, check)


def _peak_scores(picker: Picker, micrograph: Micrograph, factor: float) -> np.ndarray:
    """The scores of every peak the network finds in ``micrograph`` at ``factor``."""
    settings = picker.settings
    try:
        prepared = prepare_micrograph(micrograph, settings, scaled(picker.info.scale, factor))
    except UserError:  # too small (or too large) at this factor: no peaks to count
        return np.zeros(0)
    every_peak = replace(settings, threshold=PEAK_FLOOR)
    picks = pick_prepared(picker.network, prepared, every_peak, picker.device).picks
    assert picks is not None
    return picks.score


def is_picked(folder: Path, root: str, picker: Picker) -> bool:
    """Whether the micrograph's pick file carries ``picker``'s record (same model, settings)."""
    return read_record(layout.pick_path(folder, root, picker.suffix)) == picker.recipe.fingerprint


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
    overwrite_curated: bool = False,
    store: StateStore | None = None,
    shard: Shard | None = None,
    skip_picked: bool = False,
    log: bool = False,
    notice: Callable[[str], None] | None = None,
) -> FolderSummary:
    """Pick every micrograph of ``folder`` (or ``paths``), writing STAR files and masks.

    A micrograph that cannot be read or picked is reported in ``errors`` (one line each) and
    nothing is written for it; the others carry on. A curated micrograph whose pick file of
    the suffix exists is skipped (``skipped_curated``) unless ``overwrite_curated``; see the
    module's note. ``store``: the app's curation state, whose marks are read and cleared too.
    ``shard``: only the micrographs of this share of the folder. ``skip_picked``: leave out the
    micrographs whose pick file records this model and these settings (``already_picked``).
    ``log``: append the run and its failures to the shard's log (:class:`PickLog`).
    ``notice``: told, before any micrograph is picked, what the scale check chose.

    Raises:
        UserError: bad folder, no micrographs, unknown model, diameter out of range.
    """
    settings = settings or PickSettings()
    check_diameter(settings.diameter)
    folder = Path(folder)
    given = paths
    paths = scan_folder(folder) if given is None else given
    if not paths:
        raise UserError(f"{folder}: no micrographs (*.mrc, *.tif, *.tiff) in this folder")
    shard = shard or Shard()
    picker = load_picker(model, settings, suffix=suffix, device=device)
    if picker.settings.scale_factor is None:
        # checked on the whole folder, whatever share of it is picked now: one factor for all
        whole = scan_folder(folder) if given is not None and folder.is_dir() else []
        picker = check_scale(picker, whole or paths)
    if notice is not None and picker.check is not None:
        notice(picker.check.describe(picker.settings.diameter))
    paths = shard.select(paths)
    summary = FolderSummary(micrographs=len(paths), scale_check=picker.check)
    if not overwrite_curated:  # not worth picking: their picks will not be written
        curated = _curated_now(folder, store)
        kept = {
            p
            for p in paths
            if p.stem in curated and layout.pick_path(folder, p.stem, picker.suffix).exists()
        }
        summary.skipped_curated.extend(p.stem for p in paths if p in kept)
        paths = [p for p in paths if p not in kept]
    if skip_picked:
        todo = [p for p in paths if not is_picked(folder, p.stem, picker)]
        summary.already_picked = len(paths) - len(todo)
        paths = todo
    pick_log = PickLog(folder, picker.suffix, shard) if log else None
    if pick_log is not None:
        pick_log.start(
            picker.recipe, mode="pick", device=str(picker.device), micrographs=len(paths)
        )
    pick_paths(
        picker,
        folder,
        paths,
        summary,
        progress=progress,
        should_stop=should_stop,
        overwrite_curated=overwrite_curated,
        store=store,
        log=pick_log,
    )
    if pick_log is not None:
        end_log(pick_log, summary, "stopped" if summary.stopped else "done")
    return summary


def end_log(pick_log: PickLog, summary: FolderSummary, reason: str) -> None:
    """The ``end`` record of a run; notes in ``summary`` if the log could not be written."""
    pick_log.end(
        picked=summary.picked,
        failed=len(summary.errors),
        already=summary.already_picked,
        seconds=summary.seconds,
        reason=reason,
    )
    summary.log_problem = pick_log.problem


def pick_paths(
    picker: Picker,
    folder: Path,
    paths: list[Path],
    summary: FolderSummary,
    *,
    progress: Callable[[FolderProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite_curated: bool = False,
    store: StateStore | None = None,
    log: PickLog | None = None,
) -> list[tuple[Path, bool]]:
    """Pick ``paths`` (all of them: no curated or shard filter here) into ``summary``.

    Returns:
        (path, picked or kept) for each micrograph handled, in order: False where it failed.
        Those left out by ``should_stop`` are not in it (``summary.stopped`` is set).
    """
    handled: list[tuple[Path, bool]] = []
    settings, info = picker.settings, picker.info
    record = picker.recipe.line()
    start = time.perf_counter()
    seconds = summary.seconds
    for done, (path, future) in enumerate(_prefetched(paths, settings, picker.scale), start=1):
        if should_stop is not None and should_stop():
            summary.stopped = True
            break
        written = False
        try:
            result = pick_prepared(picker.network, future.result(), settings, picker.device)
            written = _save_guarded(
                folder,
                result,
                picker.suffix,
                write_junk_mask=info.has_mask,
                overwrite_curated=overwrite_curated,
                store=store,
                summary=summary,
                record=record,
            )
            if written:
                summary.picked += 1
                assert result.picks is not None
                summary.particles += len(result.picks)
            handled.append((path, True))
        except (UserError, OSError, MemoryError) as error:
            # one line for this micrograph and the batch goes on (a read-only matching/, a
            # full disk or a file-size limit, an allocation beyond this machine)
            message = _failure(path, error)
            summary.errors.append(message)
            handled.append((path, False))
            if log is not None:
                log.failed(path, message, picker.recipe)
        if progress is not None:
            progress(
                FolderProgress(
                    done,
                    len(paths),
                    len(summary.errors),
                    time.perf_counter() - start,
                    path,
                    written,
                )
            )
    summary.seconds = seconds + time.perf_counter() - start
    return handled
