"""Curated picks -> training examples, as Warp's retraining dialog gathers them, and their export.

The user chooses one positives STAR, e.g. ``<input>/matching/mic1_manual.star``. Its name minus
the longest micrograph root it starts with is the *suffix* (``manual``); every micrograph of the
folder with ``<root>_<suffix>.star`` in that STAR's own directory becomes a training example.
The optional "extra important" and "uncertain" STARs are suffix-matched the same way (each in
its own directory) and applied to the micrographs that have one. With ``train_masking``, junk
labels come from ``<input>/mask/<root>.tif``, and every training micrograph must have one.

Any micrograph, STAR or mask that cannot be read stops the whole collection with a
:class:`UserError` that names it: training silently on part of the curated data is worse than
stopping.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import WARP_SCALE, NetworkScale
from boxnet_tui.io.examples import write_examples
from boxnet_tui.io.layout import mask_path, match_suffix, matched_files
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.micrographs import read_micrograph, scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.training.labels import Example, make_example

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called after each micrograph (and once with 0 before the first)."""

_SHOWN_MISSING = 3


def _micrograph_paths(folder: Path) -> dict[str, Path]:
    """``{root: path}`` of the folder's micrographs (the first file of a root wins)."""
    paths: dict[str, Path] = {}
    for path in scan_folder(folder):
        paths.setdefault(path.stem, path)
    if not paths:
        raise UserError(f"{folder}: no micrographs (*.mrc, *.tif, *.tiff) in this folder")
    return paths


def _matched(star: str | os.PathLike[str], roots: list[str], what: str) -> dict[str, Path]:
    """``{root: STAR}`` of every micrograph that has a file with the suffix of ``star``."""
    star = Path(star)
    if not star.is_file():
        raise UserError(f"{star}: no such {what} STAR file")
    _, suffix = match_suffix(star, roots)
    return matched_files(star.parent, suffix, roots)


def training_set(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    *,
    extra_important: str | os.PathLike[str] | None = None,
    uncertain: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path], dict[str, Path]]:
    """What a training run would use, without reading any image (for a form to show counts).

    Returns:
        ``(micrographs, positives, extra, uncertain)``: ``{root: path}`` of the micrographs
        with positives, in folder order, and ``{root: STAR}`` of each option's matches among
        them (empty when the option is not given).
    """
    folder = Path(folder)
    all_paths = _micrograph_paths(folder)
    roots = list(all_paths)
    positives = _matched(positives_star, roots, "positives")
    if not positives:
        raise UserError(f"{positives_star}: no micrograph in {folder} has picks with this suffix")
    micrographs = {root: all_paths[root] for root in roots if root in positives}
    extra = _matched(extra_important, roots, "extra-important") if extra_important else {}
    unsure = _matched(uncertain, roots, "uncertain") if uncertain else {}
    extra = {root: path for root, path in extra.items() if root in micrographs}
    unsure = {root: path for root, path in unsure.items() if root in micrographs}
    return micrographs, positives, extra, unsure


def collect_examples(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    diameter: float,
    *,
    extra_important: str | os.PathLike[str] | None = None,
    uncertain: str | os.PathLike[str] | None = None,
    train_masking: bool = False,
    pixel_size: float | None = None,
    invert: bool = False,
    progress: Progress | None = None,
    scale: NetworkScale = WARP_SCALE,
) -> list[Example]:
    """Training examples (image, labels, importance) of every curated micrograph, at 8 Å/px
    (Warp's example TIFFs) or at a model's diameter-scaled input (``scale``).

    Args:
        folder: the micrograph folder (Warp's input folder).
        positives_star: one STAR of the positives; its suffix selects the others.
        diameter: particle diameter in Å.
        extra_important, uncertain: one STAR each (optional), suffix-matched the same way:
            importance 4, resp. 0, within D/2 of their locations.
        train_masking: junk labels from ``mask/<root>.tif`` (required for every micrograph).
        pixel_size: Å/px for every micrograph, overriding the headers.
        invert: negative stain (particles bright).
        progress: ``progress(done, total)`` after each micrograph.

    Returns:
        One example per micrograph, in folder order, named by the micrograph's root.

    Raises:
        UserError: no micrograph matched, a mask missing under ``train_masking``, or any file
            that cannot be read (named in the message).
    """
    if not (diameter > 0):
        raise UserError(f"particle diameter must be positive, got {diameter} Å")
    folder = Path(folder)
    micrographs, positives, extra, unsure = training_set(
        folder, positives_star, extra_important=extra_important, uncertain=uncertain
    )
    if train_masking:
        missing = [root for root in micrographs if not mask_path(folder, root).is_file()]
        if missing:
            shown = ", ".join(missing[:_SHOWN_MISSING])
            more = (
                f" and {len(missing) - _SHOWN_MISSING} more"
                if len(missing) > _SHOWN_MISSING
                else ""
            )
            raise UserError(
                f"train masking needs a junk mask for every training micrograph; "
                f"{len(missing)} of {len(micrographs)} have none in {folder / 'mask'}: "
                f"{shown}{more}"
            )
    total = len(micrographs)
    if progress is not None:
        progress(0, total)
    examples = []
    for done, (root, path) in enumerate(micrographs.items(), start=1):
        micrograph = read_micrograph(path, pixel_size)
        examples.append(
            make_example(
                micrograph.data,
                micrograph.pixel_size,
                read_picks(positives[root]),
                diameter,
                junk=read_mask(mask_path(folder, root)) if train_masking else None,
                extra_important=read_picks(extra[root]) if root in extra else None,
                uncertain=read_picks(unsure[root]) if root in unsure else None,
                invert=invert,
                name=root,
                scale=scale,
            )
        )
        if progress is not None:
            progress(done, total)
    return examples


def export_examples(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    diameter: float,
    out_path: str | os.PathLike[str],
    *,
    extra_important: str | os.PathLike[str] | None = None,
    uncertain: str | os.PathLike[str] | None = None,
    train_masking: bool = False,
    pixel_size: float | None = None,
    invert: bool = False,
    progress: Progress | None = None,
) -> int:
    """Collect the examples (see :func:`collect_examples`) and write them as Warp's TIFF.

    ``out_path`` is usually ``<folder>/boxnet2training/<ModelName>.tif``
    (:func:`boxnet_tui.io.examples.examples_path`). Written atomically, and only once every
    micrograph was read: on any error the old file (if any) is left as it was.

    Returns:
        The number of micrographs written.
    """
    examples = collect_examples(
        folder,
        positives_star,
        diameter,
        extra_important=extra_important,
        uncertain=uncertain,
        train_masking=train_masking,
        pixel_size=pixel_size,
        invert=invert,
        progress=progress,
    )
    write_examples(out_path, examples)
    return len(examples)
