"""The retraining form's logic: the choices it offers, what each field means, what is wrong.

The app's form (and any other front end) fills a ``RetrainForm``; ``check`` says, field by
field, why it cannot start yet, ``warnings`` what is allowed but unwise, ``to_config`` makes
the run's ``RunConfig``. Nothing here reads an image, so it is cheap to call on each key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from boxnet_tui.errors import StarError, UserError
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.model.info import (
    DEFAULT_MODEL,
    ModelInfo,
    check_name,
    list_models,
    models_dir,
)
from boxnet_tui.paths import runs_dir
from boxnet_tui.pick_options import trained_inverted
from boxnet_tui.picking import DIAMETER_RANGE, diameter_from_text
from boxnet_tui.training.export import (
    Marks,
    Selection,
    check_positives_suffix,
    curation_marks,
    select_micrographs,
)
from boxnet_tui.training.runs import RunConfig

T = TypeVar("T")

DEVICES = ("auto", "cpu", "cuda")
AUTO_PUBLIC_SET = "auto"


@dataclass(frozen=True)
class StarChoice:
    """One pick set a user can choose: a suffix in one folder, and one of its files."""

    path: Path  # the file a user "chooses"; the others are matched by suffix
    suffix: str
    micrographs: int

    @property
    def label(self) -> str:
        where = self.path.parent.name
        return f"{where}/*_{self.suffix}.star  ({self.micrographs} micrographs)"

    @property
    def false_positives(self) -> bool:
        """Removed picks (``*_falsepositives.star``): extra important or uncertain at most."""
        return self.suffix.endswith(layout.FALSE_POSITIVES)


def star_choices(folder: str | os.PathLike[str]) -> list[StarChoice]:
    """Pick sets in ``matching/`` and its subfolders (Warp suggests ``matching/training``);
    hidden folders (the backups in ``matching/.backup``) are none."""
    folder = Path(folder)
    roots = frozenset(path.stem for path in scan_folder(folder))
    matching = layout.matching_dir(folder)
    subfolders = (p for p in matching.glob("*") if p.is_dir() and not p.name.startswith("."))
    directories = [matching, *sorted(subfolders)]
    choices = []
    for directory in directories:
        if not directory.is_dir():
            continue
        groups: dict[str, list[Path]] = {}
        for star in sorted(directory.glob("*.star")):
            split = layout.split_star_name(star.name, roots)
            if split is not None:
                groups.setdefault(split[1], []).append(star)
        for suffix, files in sorted(groups.items()):
            choices.append(StarChoice(files[0], suffix, len(files)))
    return choices


def positive_choices(choices: list[StarChoice]) -> list[StarChoice]:
    """The choices a user may take as positive examples (never a falsepositives set)."""
    return [choice for choice in choices if not choice.false_positives]


@dataclass(frozen=True)
class Matched:
    """What a chosen STAR matches in the folder; ``counts``: ``{root: (picks, shown)}``, the
    picks of each file and those at or above the pick set's display ``threshold``."""

    suffix: str
    micrographs: int
    particles: int
    unreadable: list[str] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    threshold: float = 0.0


def matched(
    folder: str | os.PathLike[str],
    star: str | os.PathLike[str],
    marks: Marks | None = None,
) -> Matched:
    """The suffix of ``star`` and the micrographs and particles it matches; a pick below the
    pick set's display threshold (in ``marks``, default: none) counts as hidden.

    Raises:
        UserError: the name starts with no micrograph root.
    """
    roots = [path.stem for path in scan_folder(folder)]
    _, suffix = layout.match_suffix(star, roots)
    files = layout.matched_files(Path(star).parent, suffix, roots)
    threshold = marks.threshold(suffix) if marks is not None else 0.0
    particles, unreadable, counts = 0, [], {}
    for root, path in files.items():
        try:
            picks = read_picks(path)
        except StarError:
            unreadable.append(path.name)
            continue
        shown = len(picks.above(threshold))
        particles += len(picks)
        counts[root] = (len(picks), shown)
    return Matched(suffix, len(files), particles, unreadable, counts, files, threshold)


@dataclass
class RetrainForm:
    """Every option of Warp's retraining dialog, as typed (strings where a user types)."""

    folder: str
    base: str = DEFAULT_MODEL
    name: str = ""
    positives: str | None = None
    # a STAR file anywhere (Warp: "it doesn't matter where you put the separate folder"); when
    # given, it is the positives, over the choice of those in matching/ and its subfolders
    positives_path: str = ""
    extra_important: str | None = None
    uncertain: str | None = None
    diameter: str = "200"
    # off, as the CLI's --public-set none: on the retraining benchmark the public set was never
    # more accurate and took twice as long (Warp has it on)
    public_set: bool = False
    public_folder: str = AUTO_PUBLIC_SET
    train_masking: bool = False
    all_micrographs: bool = False  # off: the micrographs marked curated (all when none is)
    iterations: str = ""  # empty: Warp's rule
    device: str = "auto"
    hold_out: bool = True  # the last micrograph kept out and scored (job.choose_held_out)
    invert: bool = False  # negative stain: particles bright
    # what was read from disk for this form (folder scan, STAR counts, models): the form is
    # checked on every key, and a folder of 1000 micrographs takes seconds to read
    _memo: dict[tuple[str, ...], object] = field(default_factory=dict, repr=False, compare=False)

    def remembered(self, key: tuple[str, ...], compute: Callable[[], T]) -> T:
        """``compute()``'s result (or UserError) for ``key``, read once per form."""
        if key not in self._memo:
            try:
                self._memo[key] = compute()
            except UserError as error:
                self._memo[key] = error
        value = self._memo[key]
        if isinstance(value, UserError):
            raise value
        return value  # type: ignore[return-value]

    def forget(self) -> None:
        """Read the disk afresh at the next check (as Start does)."""
        self._memo.clear()


def matched_for(form: RetrainForm, star: str) -> Matched:
    """:func:`matched` of ``star`` in the form's folder, read once per form."""
    marks = _marks(form)
    return form.remembered(("matched", star), lambda: matched(form.folder, star, marks))


def _roots(form: RetrainForm) -> list[str]:
    return form.remembered(("roots",), lambda: [p.stem for p in scan_folder(form.folder)])


def _marks(form: RetrainForm) -> Marks:
    """The folder's curated marks, pick-set thresholds and state warning, read once per form."""
    return form.remembered(("marks",), lambda: curation_marks(form.folder))


def selection(form: RetrainForm) -> Selection:
    """The micrographs the run would take: the curated ones of those with positives, or all.

    Raises:
        UserError: no positives chosen or matched, or none of the curated ones matched.
    """
    if not form.positives:
        raise UserError("choose the curated STAR files")
    found = matched_for(form, form.positives)
    check_positives_suffix(form.positives, found.suffix)
    return select_micrographs(
        _roots(form),
        found.files,
        _marks(form),
        suffix=found.suffix,
        all_micrographs=form.all_micrographs,
    )


def positives_text(form: RetrainForm, used: str = "trained") -> str:
    """What the positives field takes, with its counts, in two lines: ``suffix _BoxNet: 3
    curated micrographs of 16`` and ``412 particles at or above the display threshold 0.60; 38
    below it are not trained`` (empty when there is nothing to say; the reason a choice is bad
    is :func:`check`'s)."""
    try:
        chosen = selection(form)
        found = matched_for(form, str(form.positives))
    except UserError:
        return ""
    counts = [found.counts.get(root, (0, 0)) for root in chosen.micrographs]
    shown = sum(c[1] for c in counts)
    hidden = sum(c[0] for c in counts) - shown
    text = f"suffix _{found.suffix}: {chosen.text}\n"  # two lines: each fits a narrow form
    text += f"{shown} particles at or above the display threshold {chosen.threshold:.2f}"
    if hidden:
        text += f"; {hidden} below it {'is' if hidden == 1 else 'are'} not {used}"
    return text


def _models(form: RetrainForm) -> dict[str, ModelInfo]:
    return form.remembered(("models",), lambda: {m.name: m for m in list_models()})


def _model_masks(form: RetrainForm) -> dict[str, bool]:
    return {name: bool(m.has_mask) for name, m in _models(form).items()}


def base_inverts(form: RetrainForm) -> bool:
    """Whether the form's base model was trained on inverted micrographs (negative stain):
    what the invert box starts as, as ``train`` defaults to it."""
    base = _models(form).get(form.base)
    return base is not None and trained_inverted(base)


def mask_counts(form: RetrainForm) -> tuple[int, int]:
    """(micrographs with a mask, micrographs with positives)."""
    roots = _positive_roots(form)

    def count() -> int:
        return sum(layout.mask_path(form.folder, root).is_file() for root in roots)

    key = ("masks", str(form.positives), *roots)
    return form.remembered(key, count), len(roots)


def _positive_roots(form: RetrainForm) -> list[str]:
    """The roots the run would take (none while the positives are not right)."""
    try:
        return list(selection(form).micrographs)
    except UserError:
        return []


def default_iterations(form: RetrainForm) -> int:
    """Warp's rule on the micrographs that will be trained on (one is held out from 3 up)."""
    n = len(_positive_roots(form))
    trained = n - 1 if form.hold_out and n >= 3 else n
    return max(1, trained) * 100 * (2 if form.public_set else 1)


def _taken(name: str) -> bool:
    from boxnet_tui.model.info import shipped_models_dir

    return any((d / name).exists() for d in (models_dir(), shipped_models_dir(), runs_dir()))


def check(form: RetrainForm) -> dict[str, str]:
    """Field -> why the form cannot start; empty when it can."""
    problems: dict[str, str] = {}
    if not form.name:
        problems["name"] = "give the new model a name"
    else:
        try:
            check_name(form.name)
            if form.name == form.base:
                problems["name"] = "the new model needs a name of its own, not the base's"
            elif _taken(form.name):
                problems["name"] = f"a model or run named {form.name!r} exists already"
        except UserError as error:
            problems["name"] = str(error)
    if form.base not in _model_masks(form):
        problems["base"] = f"no model named {form.base!r}"
    typed = form.positives_path.strip()
    if typed and not Path(typed).expanduser().is_file():
        problems["positives"] = f"{typed}: no such STAR file"
    for key in ("positives", "extra_important", "uncertain"):
        value = getattr(form, key)
        if key in problems:
            continue
        if value is None:
            if key == "positives":
                problems[key] = "choose the curated STAR files"
            continue
        try:
            found = matched_for(form, value)
        except UserError as error:
            problems[key] = str(error)
            continue
        if found.unreadable:
            problems[key] = f"unreadable STAR: {', '.join(found.unreadable[:3])}"
        elif key == "positives" and not found.particles:
            problems[key] = "these STAR files hold no particles"
        elif key == "positives":
            try:
                taken = selection(form).micrographs
            except UserError as error:
                problems[key] = str(error)
                continue
            if not sum(found.counts[root][1] for root in taken if root in found.counts):
                problems[key] = (
                    f"every pick of these micrographs is below the pick set's display "
                    f"threshold {selection(form).threshold:.2f} (lower it with [ in the app)"
                )
    if diameter_from_text(form.diameter) is None:
        problems["diameter"] = DIAMETER_RANGE
    public = form.public_folder.strip()
    if form.public_set and public.lower() != AUTO_PUBLIC_SET and not Path(public).is_dir():
        problems["public_folder"] = f"{public}: no such folder"
    if form.train_masking:
        have, total = mask_counts(form)
        if have < total:
            problems["train_masking"] = (
                f"{total - have} of {total} micrographs have no mask/<root>.tif; paint them "
                "(b) or turn masking off"
            )
    if form.iterations.strip():
        try:
            if int(form.iterations) < 1:
                raise ValueError
        except ValueError:
            problems["iterations"] = "a whole number of at least 1 (empty: Warp's rule)"
    if form.device not in DEVICES:
        problems["device"] = f"one of {', '.join(DEVICES)}"
    return problems


def warnings(form: RetrainForm) -> dict[str, str]:
    """Field -> advice that does not stop the run (Warp's own warnings)."""
    advice = {}
    if form.train_masking and "mask" not in form.name.lower():
        advice["name"] = "a masking model is best named with 'Mask' in it"
    if form.train_masking and not _model_masks(form).get(form.base, False):
        advice["base"] = "training masking works best from a masking base model"
    if not form.invert and base_inverts(form):
        advice["invert"] = "the base model was trained on inverted micrographs (negative stain)"
    return advice


def to_config(form: RetrainForm) -> RunConfig:
    """The run's configuration (makes the package's public set on first use).

    Raises:
        UserError: the form has a problem (the first one).
    """
    from boxnet_tui.training.public_set import resolve_public_set

    form.forget()  # Start checks the files as they are now
    problems = check(form)
    if problems:
        key, message = next(iter(problems.items()))
        raise UserError(f"{key.replace('_', ' ')}: {message}")
    taken = selection(form)
    return RunConfig(
        name=form.name,
        folder=str(form.folder),
        positives=str(form.positives),
        base=form.base,
        diameter=float(form.diameter),
        extra_important=form.extra_important,
        uncertain=form.uncertain,
        public_set=resolve_public_set(form.public_folder) if form.public_set else None,
        train_masking=form.train_masking,
        iterations=int(form.iterations) if form.iterations.strip() else None,
        device=form.device,
        hold_out=form.hold_out,
        invert=form.invert,
        micrographs=list(taken.micrographs),
        thresholds=taken.thresholds,
    )
