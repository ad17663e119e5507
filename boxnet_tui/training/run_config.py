"""A run's configuration: every option of a retraining run, checked before anything is written.

``config.json`` of a run folder holds :class:`RunConfig`; :func:`validate_config` checks every
option (and reads the STAR files the run takes) so that a wrong one is one line before the run
exists. No torch at import time.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.names import check_model_name

OPTIMIZERS = ("adamw", "sgd")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


HOLD_OUT_MINIMUM = 3  # micrographs a run needs before it keeps the last one out for a check


@dataclass
class RunConfig:
    """Every option of a run, so that it can be resumed or repeated.

    Paths are stored absolute. ``iterations`` None means Warp's rule: 100 per curated
    micrograph trained on, twice that with the public set. ``micrographs`` lists the roots of
    the micrographs the run takes (chosen when it is made: the curated ones, or all), and
    ``thresholds`` their display thresholds (picks below are no positives); a run made before
    these were recorded (None) takes what the folder's curation state says when it prepares.
    ``invert``: negative stain (particles bright): every image the run prepares (its examples,
    the threshold's calibration, the held-out check) is inverted, and the new model records it
    so that picking with it inverts by default; a config written before it existed reads False.
    The fields from ``batch_size`` to ``particle_fraction`` (and ``seed``, ``iterations``) are
    :class:`TrainConfig`'s, with its defaults.
    """

    name: str
    folder: str
    positives: str
    base: str = "BoxNetMask"
    diameter: float = 200.0
    extra_important: str | None = None
    uncertain: str | None = None
    public_set: str | None = None
    train_masking: bool = False
    invert: bool = False
    pixel_size: float | None = None
    iterations: int | None = None
    device: str = "auto"
    hold_out: bool = True  # keep one out when there are HOLD_OUT_MINIMUM or more
    micrographs: list[str] | None = None
    thresholds: dict[str, float] | None = None
    seed: int = 0
    checkpoint_every: int = 100
    batch_size: int = 8
    crop: int = 256
    optimizer: str = "adamw"
    lr: float = 1e-3
    lr_end: float = 1e-5
    weight_decay: float = 1e-4
    log_every: int = 10
    particle_fraction: float = 0.3
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        """From ``config.json``'s object; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def train_config(self, iterations: int) -> Any:
        """The :class:`~boxnet_tui.training.loop.TrainConfig` of this run (imports torch)."""
        from boxnet_tui.training.loop import TrainConfig

        return TrainConfig(
            iterations=iterations,
            batch_size=self.batch_size,
            crop=self.crop,
            optimizer=self.optimizer,
            lr=self.lr,
            lr_end=self.lr_end,
            weight_decay=self.weight_decay,
            seed=self.seed,
            log_every=self.log_every,
            particle_fraction=self.particle_fraction,
        )

    def default_iterations(self, n_micrographs: int) -> int:
        """Warp's rule: 100 iterations per new micrograph, twice that with the public set."""
        return max(1, n_micrographs) * 100 * (2 if self.public_set else 1)


def _absolute(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def validate_config(config: RunConfig) -> RunConfig:
    """Check every option and make the paths absolute; one-line UserError on the first problem."""
    from boxnet_tui.model.info import find_model
    from boxnet_tui.picking import check_diameter

    check_model_name(config.name)
    folder = Path(config.folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    for what, value in (
        ("positives", config.positives),
        ("extra important", config.extra_important),
        ("uncertain", config.uncertain),
    ):
        if value is not None and not Path(value).expanduser().is_file():
            raise UserError(f"{value}: no such STAR file ({what})")
    if config.public_set is not None:
        public = Path(config.public_set).expanduser()
        if not public.is_dir():
            raise UserError(f"{public}: no such folder (public set)")
        if not public_set_files(public):
            raise UserError(f"{public}: no example files (*.tif) in the public set folder")
    check_diameter(float(config.diameter))
    find_model(config.base)
    if config.pixel_size is not None and not (
        math.isfinite(config.pixel_size) and config.pixel_size > 0
    ):
        raise UserError(f"pixel size must be a positive number of Å, got {config.pixel_size}")
    for what, value, low in (
        ("iterations", config.iterations, 1),
        ("checkpoint every", config.checkpoint_every, 1),
        ("batch size", config.batch_size, 1),
        ("crop", config.crop, 8),
        ("log every", config.log_every, 1),
        ("seed", config.seed, 0),
    ):
        if value is None and what == "iterations":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"{what} must be a whole number of at least {low}, got {value!r}")
    for what, flag in (
        ("train masking", config.train_masking),
        ("invert", config.invert),
        ("hold out", config.hold_out),
    ):
        if not isinstance(flag, bool):
            raise UserError(f"{what} must be true or false, got {flag!r}")
    if config.micrographs is not None and not config.micrographs:
        raise UserError("no micrographs to train on")
    if not DEVICE_PATTERN.match(config.device):
        raise UserError(f"device {config.device!r}: use auto, cpu, cuda, cuda:N or mps")
    if config.optimizer not in OPTIMIZERS:
        raise UserError(f"optimizer {config.optimizer!r}: use {' or '.join(OPTIMIZERS)}")
    if not (config.lr > 0 and config.lr_end > 0):
        raise UserError("learning rates must be positive")
    config.folder = str(folder.resolve())
    config.positives = str(_absolute(config.positives))
    config.extra_important = _absolute(config.extra_important)
    config.uncertain = _absolute(config.uncertain)
    config.public_set = _absolute(config.public_set)
    config.diameter = float(config.diameter)
    check_star_files(config)
    return config


def check_star_files(config: RunConfig) -> None:
    """Read every STAR file the run will take (its positives, extra-important and uncertain
    ones, suffix-matched among its micrographs), so that a bad one is a UserError now and
    not a failed run later. No image is read."""
    from boxnet_tui.io.star import read_picks
    from boxnet_tui.training.export import training_set

    _, positives, extra, unsure = training_set(
        config.folder,
        config.positives,
        extra_important=config.extra_important,
        uncertain=config.uncertain,
        micrographs=config.micrographs,
    )
    taken = set(config.micrographs) if config.micrographs is not None else None
    for matched in (positives, extra, unsure):
        for root, star in matched.items():
            if taken is None or root in taken:
                read_picks(star)


def public_set_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The example TIFFs of a public set folder, sorted by name; hidden files (a write's
    temporary file left by a kill) are none."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in (".tif", ".tiff") and p.is_file() and not p.name.startswith(".")
    )
