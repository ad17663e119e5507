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
from boxnet_tui.model.store import DEFAULT_MODEL, check_name, list_models, models_dir
from boxnet_tui.paths import runs_dir
from boxnet_tui.picking import DIAMETER_RANGE, diameter_from_text
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


def star_choices(folder: str | os.PathLike[str]) -> list[StarChoice]:
    """Pick sets in ``matching/`` and its subfolders (Warp suggests ``matching/training``)."""
    folder = Path(folder)
    roots = frozenset(path.stem for path in scan_folder(folder))
    matching = layout.matching_dir(folder)
    directories = [matching, *sorted(p for p in matching.glob("*") if p.is_dir())]
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


@dataclass(frozen=True)
class Matched:
    """What a chosen STAR matches in the folder."""

    suffix: str
    micrographs: int
    particles: int
    unreadable: list[str] = field(default_factory=list)


def matched(folder: str | os.PathLike[str], star: str | os.PathLike[str]) -> Matched:
    """The suffix of ``star`` and the micrographs and particles it matches.

    Raises:
        UserError: the name starts with no micrograph root.
    """
    roots = [path.stem for path in scan_folder(folder)]
    _, suffix = layout.match_suffix(star, roots)
    files = layout.matched_files(Path(star).parent, suffix, roots)
    particles, unreadable = 0, []
    for path in files.values():
        try:
            particles += len(read_picks(path))
        except StarError:
            unreadable.append(path.name)
    return Matched(suffix, len(files), particles, unreadable)


@dataclass
class RetrainForm:
    """Every option of Warp's retraining dialog, as typed (strings where a user types)."""

    folder: str
    base: str = DEFAULT_MODEL
    name: str = ""
    positives: str | None = None
    extra_important: str | None = None
    uncertain: str | None = None
    diameter: str = "200"
    # off, as the CLI's --public-set none: on the retraining benchmark the public set was never
    # more accurate and took twice as long (Warp has it on)
    public_set: bool = False
    public_folder: str = AUTO_PUBLIC_SET
    train_masking: bool = False
    iterations: str = ""  # empty: Warp's rule
    device: str = "auto"
    hold_out: bool = True
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
    return form.remembered(("matched", star), lambda: matched(form.folder, star))


def _roots(form: RetrainForm) -> list[str]:
    return form.remembered(("roots",), lambda: [p.stem for p in scan_folder(form.folder)])


def _model_masks(form: RetrainForm) -> dict[str, bool]:
    return form.remembered(("models",), lambda: {m.name: bool(m.has_mask) for m in list_models()})


def mask_counts(form: RetrainForm) -> tuple[int, int]:
    """(micrographs with a mask, micrographs with positives)."""
    roots = _positive_roots(form)

    def count() -> int:
        return sum(layout.mask_path(form.folder, root).is_file() for root in roots)

    return form.remembered(("masks", str(form.positives)), count), len(roots)


def _positive_roots(form: RetrainForm) -> list[str]:
    positives = form.positives
    if not positives:
        return []

    def find() -> list[str]:
        roots = _roots(form)
        _, suffix = layout.match_suffix(positives, roots)
        return list(layout.matched_files(Path(positives).parent, suffix, roots))

    try:
        return form.remembered(("positive roots", positives), find)
    except UserError:
        return []


def default_iterations(form: RetrainForm) -> int:
    """Warp's rule on the micrographs that will be trained on (one is held out from 3 up)."""
    n = len(_positive_roots(form))
    trained = n - 1 if form.hold_out and n >= 3 else n
    return max(1, trained) * 100 * (2 if form.public_set else 1)


def _taken(name: str) -> bool:
    from boxnet_tui.model.store import shipped_models_dir

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
    for key in ("positives", "extra_important", "uncertain"):
        value = getattr(form, key)
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
    )
