"""Curated picks -> training examples, as Warp's retraining dialog gathers them, and their export.

The user chooses one positives STAR, e.g. ``<input>/matching/mic1_manual.star``. Its name minus
the longest micrograph root it starts with is the *suffix* (``manual``); the micrographs of the
folder with ``<root>_<suffix>.star`` in that STAR's own directory are the candidates. Of those,
the ones marked curated (``c`` in the app, :mod:`boxnet_tui.curation_state`) become training
examples; all of them when asked (``all_micrographs``) or when no micrograph of the folder is
marked curated (Warp's rule). A pick below its pick set's display threshold
(:func:`boxnet_tui.curation_state.pick_set_threshold`) is hidden in the app, and is no
positive either: one threshold per pick set decides what is shown, trained and exported. A
``*_falsepositives.star`` holds removed picks and is never taken as positives.
The optional "extra important" and "uncertain" STARs are suffix-matched the same way (each in
its own directory) and applied to the micrographs that have one. With ``train_masking``, junk
labels come from ``<input>/mask/<root>.tif``, and every training micrograph must have one.
An export (:func:`export_examples`) adds the junk class wherever a mask exists, as Warp's
export and retraining dialogs write their example TIFFs; Warp drops the class only when it
trains without masking.

Any micrograph, STAR or mask that cannot be read stops the whole collection with a
:class:`UserError` that names it: training silently on part of the curated data is worse than
stopping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from boxnet_tui.curation_state import CurationState, load_state, pick_set_threshold
from boxnet_tui.errors import UserError
from boxnet_tui.imaging import WARP_SCALE, NetworkScale
from boxnet_tui.io.examples import write_examples
from boxnet_tui.io.layout import FALSE_POSITIVES, mask_dir, mask_path, match_suffix, matched_files
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.micrographs import read_info, read_micrograph, scan_folder
from boxnet_tui.io.star import Picks, read_picks
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
    if what == "positives":
        check_positives_suffix(star, suffix)
    return matched_files(star.parent, suffix, roots)


def check_positives_suffix(star: str | os.PathLike[str], suffix: str) -> None:
    """Refuse a ``*_falsepositives.star`` as positives (it holds the picks a user removed).

    Raises:
        UserError: the suffix is a false-positives one.
    """
    if suffix.endswith(FALSE_POSITIVES) or suffix == FALSE_POSITIVES[1:]:
        raise UserError(
            f"{Path(star).name}: a falsepositives file holds removed picks, never positives; "
            "choose the pick set itself (it may be extra important or uncertain locations)"
        )


@dataclass(frozen=True)
class Selection:
    """The micrographs with positives that a run or an export takes, and why.

    ``matched`` micrographs have positives of the suffix; ``curated`` of them are marked
    curated; ``micrographs`` are those taken, in folder order.
    """

    micrographs: tuple[str, ...]
    matched: int
    curated: int
    all_micrographs: bool = False
    thresholds: dict[str, float] = field(default_factory=dict)  # of those taken, when > 0
    positives: dict[str, Path] = field(default_factory=dict)  # {root: STAR} of those taken
    threshold: float = 0.0  # the pick set's display threshold: picks below are no positives

    @property
    def text(self) -> str:
        """``2 curated micrographs of 16``, and the like (for a form or the CLI)."""
        if not self.curated:
            return f"{_micrographs(self.matched)} (none marked curated: all are used)"
        if self.all_micrographs:
            return f"all {_micrographs(self.matched)} ({self.curated} of them curated)"
        return f"{self.curated} curated micrograph{_plural(self.curated)} of {self.matched}"

    @property
    def narrowed(self) -> bool:
        """Only the curated ones of more micrographs are taken (taking all would add some)."""
        return len(self.micrographs) < self.matched


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _micrographs(count: int) -> str:
    return f"{count} micrograph{_plural(count)}"


@dataclass(frozen=True)
class Marks:
    """A folder's curated roots, its saved state (the thresholds of its pick sets), and the
    warning of a damaged state (its values are then unknown, not absent)."""

    curated: set[str]
    state: CurationState = field(default_factory=CurationState)
    warning: str | None = None

    def threshold(self, suffix: str) -> float:
        """The display threshold of pick set ``suffix``."""
        return pick_set_threshold(self.state, suffix)


def select_micrographs(
    roots: Iterable[str],
    positives: Mapping[str, Path],
    marks: Marks,
    *,
    suffix: str,
    all_micrographs: bool = False,
    threshold: float | None = None,
) -> Selection:
    """The micrographs a run takes of ``roots`` (the folder's, in order) with ``positives``
    (``{root: STAR}`` of pick set ``suffix``): the ones marked curated; all when asked or when
    none is marked (Warp's rule). ``marks``: :func:`curation_marks`; ``threshold``: instead of
    the pick set's display threshold.

    Raises:
        UserError: none has positives; marks exist but none of them has positives; the marks
            cannot be read (and all were not asked for).
    """
    roots = list(roots)
    warning = marks.warning
    curated = marks.curated & set(roots)
    if threshold is None:
        threshold = marks.threshold(suffix)
    matched = [root for root in roots if root in positives]
    if not matched:
        raise UserError("no micrograph here has picks with this suffix")
    if all_micrographs or not curated:
        if warning is not None and not all_micrographs:
            raise UserError(
                f"{warning.removesuffix('; starting afresh')}: cannot tell which micrographs "
                "are curated; mark them again (c) or take all micrographs"
            )
        chosen = tuple(matched)
    else:
        chosen = tuple(root for root in matched if root in curated)
    if not chosen:
        raise UserError(
            f"none of the {len(curated)} curated micrograph{_plural(len(curated))} has picks "
            "with this suffix; choose the pick set you curated, or take all micrographs"
        )
    return Selection(
        chosen,
        len(matched),
        sum(root in curated for root in matched),
        all_micrographs,
        {root: threshold for root in chosen} if threshold > 0.0 else {},
        {root: positives[root] for root in chosen},
        threshold,
    )


def curation_marks(folder: str | os.PathLike[str]) -> Marks:
    """The folder's curated roots, saved state, and a warning when its state is damaged."""
    state, warning = load_state(folder)
    damaged = warning is not None and state == type(state)()
    return Marks(set(state.curated), state, warning if damaged else None)


def _suffix(star: str | os.PathLike[str], roots: list[str]) -> str:
    return match_suffix(Path(star), roots)[1]


def training_selection(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    *,
    all_micrographs: bool = False,
    threshold: float | None = None,
) -> Selection:
    """Which micrographs a run or an export on ``positives_star`` takes now, and the display
    threshold of its pick set (read from the folder's curation state unless ``threshold`` is
    given; no image is read).

    Raises:
        UserError: no micrographs, a bad positives STAR, none matched, none curated matched.
    """
    folder = Path(folder)
    roots = list(_micrograph_paths(folder))
    positives = _matched(positives_star, roots, "positives")
    if not positives:
        raise UserError(f"{positives_star}: no micrograph in {folder} has picks with this suffix")
    return select_micrographs(
        roots,
        positives,
        curation_marks(folder),
        suffix=_suffix(positives_star, roots),
        all_micrographs=all_micrographs,
        threshold=threshold,
    )


def shown_picks(star: str | os.PathLike[str], threshold: float = 0.0) -> Picks:
    """The picks of ``star`` at or above the display ``threshold``: the positives it holds."""
    return read_picks(star).above(threshold)


def count_picks(selection: Selection) -> tuple[int, int]:
    """(picks taken as positives, picks hidden below the display thresholds) of a selection.

    Raises:
        StarError: a STAR that cannot be read.
    """
    shown = hidden = 0
    for root, star in selection.positives.items():
        picks = read_picks(star)
        above = len(picks.above(selection.thresholds.get(root, 0.0)))
        shown, hidden = shown + above, hidden + len(picks) - above
    return shown, hidden


def training_set(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    *,
    extra_important: str | os.PathLike[str] | None = None,
    uncertain: str | os.PathLike[str] | None = None,
    micrographs: Iterable[str] | None = None,
    all_micrographs: bool = False,
) -> tuple[dict[str, Path], dict[str, Path], dict[str, Path], dict[str, Path]]:
    """What a training run would use, without reading any image (for a form to show counts).

    Args:
        micrographs: the roots to take (a run's list); default: :func:`training_selection`'s.
        all_micrographs: with ``micrographs`` None, take every micrograph with positives.

    Returns:
        ``(micrographs, positives, extra, uncertain)``: ``{root: path}`` of the micrographs
        taken, in folder order, and ``{root: STAR}`` of each option's matches among them
        (empty when the option is not given).
    """
    folder = Path(folder)
    all_paths = _micrograph_paths(folder)
    roots = list(all_paths)
    positives = _matched(positives_star, roots, "positives")
    if not positives:
        raise UserError(f"{positives_star}: no micrograph in {folder} has picks with this suffix")
    if micrographs is None:
        selection = select_micrographs(
            roots,
            positives,
            curation_marks(folder),
            suffix=_suffix(positives_star, roots),
            all_micrographs=all_micrographs,
        )
        taken = set(selection.micrographs)
    else:
        taken = set(micrographs)
        gone = sorted(taken - set(positives))
        if gone:
            raise UserError(
                f"{', '.join(gone[:_SHOWN_MISSING])}: listed for training but without picks "
                f"with the suffix of {Path(positives_star).name} (or no micrograph) in {folder}"
            )
    micrographs = {root: all_paths[root] for root in roots if root in positives and root in taken}
    extra = _matched(extra_important, roots, "extra-important") if extra_important else {}
    unsure = _matched(uncertain, roots, "uncertain") if uncertain else {}
    extra = {root: path for root, path in extra.items() if root in micrographs}
    unsure = {root: path for root, path in unsure.items() if root in micrographs}
    return micrographs, positives, extra, unsure


def training_extent(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    *,
    pixel_size: float | None = None,
    micrographs: Iterable[str] | None = None,
) -> float | None:
    """The longest side (Å) of the micrographs a run would train on, from their headers
    (``pixel_size`` overrides them); None where none has a pixel size (reading the examples
    then stops with the reason, as it does for a file that cannot be read)."""
    chosen = training_set(folder, positives_star, micrographs=micrographs)[0]
    sides = []
    for path in chosen.values():
        try:
            info = read_info(path)
        except UserError:
            continue
        size = pixel_size or info.pixel_size
        if size:
            sides.append(max(info.shape) * size)
    return max(sides, default=None)


def collect_examples(
    folder: str | os.PathLike[str],
    positives_star: str | os.PathLike[str],
    diameter: float,
    *,
    extra_important: str | os.PathLike[str] | None = None,
    uncertain: str | os.PathLike[str] | None = None,
    train_masking: bool = False,
    junk_where_masked: bool = False,
    pixel_size: float | None = None,
    invert: bool = False,
    progress: Progress | None = None,
    scale: NetworkScale = WARP_SCALE,
    micrographs: Iterable[str] | None = None,
    all_micrographs: bool = False,
    thresholds: Mapping[str, float] | None = None,
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
        junk_where_masked: junk labels from every ``mask/<root>.tif`` that exists, none where
            there is none (Warp's export).
        pixel_size: Å/px for every micrograph, overriding the headers.
        invert: negative stain (particles bright).
        progress: ``progress(done, total)`` after each micrograph.
        micrographs: the roots to take (a run's list); default: the curated ones, or all with
            ``all_micrographs`` or when none is marked (:func:`training_selection`).
        thresholds: ``{root: display threshold}``; picks below it are no positives. Default:
            the pick set's threshold in the folder's curation state, for every micrograph.

    Returns:
        One example per micrograph, in folder order, named by the micrograph's root.

    Raises:
        UserError: no micrograph matched, a mask missing under ``train_masking``, or any file
            that cannot be read (named in the message).
    """
    if not (diameter > 0):
        raise UserError(f"particle diameter must be positive, got {diameter} Å")
    folder = Path(folder)
    chosen, positives, extra, unsure = training_set(
        folder,
        positives_star,
        extra_important=extra_important,
        uncertain=uncertain,
        micrographs=micrographs,
        all_micrographs=all_micrographs,
    )
    if thresholds is None:
        suffix = _suffix(positives_star, list(_micrograph_paths(folder)))
        shown_at = curation_marks(folder).threshold(suffix)
        thresholds = dict.fromkeys(chosen, shown_at)
    if train_masking:
        missing = [root for root in chosen if not mask_path(folder, root).is_file()]
        if missing:
            shown = ", ".join(missing[:_SHOWN_MISSING])
            more = (
                f" and {len(missing) - _SHOWN_MISSING} more"
                if len(missing) > _SHOWN_MISSING
                else ""
            )
            raise UserError(
                f"train masking needs a junk mask for every training micrograph; "
                f"{len(missing)} of {len(chosen)} have none in {mask_dir(folder)}: "
                f"{shown}{more}"
            )
    total = len(chosen)
    if progress is not None:
        progress(0, total)
    examples = []
    for done, (root, path) in enumerate(chosen.items(), start=1):
        micrograph = read_micrograph(path, pixel_size)
        examples.append(
            make_example(
                micrograph.data,
                micrograph.pixel_size,
                shown_picks(positives[root], thresholds.get(root, 0.0)),
                diameter,
                junk=_junk(folder, root, train_masking or junk_where_masked),
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


def _junk(folder: Path, root: str, wanted: bool):
    """The junk mask of ``root`` when ``wanted`` and present, else None."""
    path = mask_path(folder, root)
    return read_mask(path) if wanted and path.is_file() else None


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
    micrographs: Iterable[str] | None = None,
    all_micrographs: bool = False,
    thresholds: Mapping[str, float] | None = None,
) -> int:
    """Collect the examples (see :func:`collect_examples`) and write them as Warp's TIFF.

    As Warp's export, the label pages carry the junk class (2) wherever the micrograph has a
    mask (``mask/<root>.tif``); ``train_masking`` also requires every micrograph to have one.

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
        junk_where_masked=True,
        pixel_size=pixel_size,
        invert=invert,
        progress=progress,
        micrographs=micrographs,
        all_micrographs=all_micrographs,
        thresholds=thresholds,
    )
    write_examples(out_path, examples)
    return len(examples)
