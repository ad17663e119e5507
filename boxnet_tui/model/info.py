"""What a model is, without loading it: ``model.json`` (:class:`ModelInfo`), and finding
and listing the model folders.

Torch-free on purpose: the app's header names the model of the shown picks and the forms list
the models; importing torch for that costs seconds at start-up. Loading and saving weights
is :mod:`boxnet_tui.model.store` (which re-exports all of this).

Shipped models live inside the package (``boxnet_tui/models/<Name>/``); a user's under
``$BOXNET_TUI_HOME/models/<Name>/``.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import NETWORK_PIXEL_SIZE, NetworkScale
from boxnet_tui.names import check_model_name, is_path_name
from boxnet_tui.paths import models_dir

WEIGHTS = "weights.pt"
MODEL_JSON = "model.json"
DEFAULT_MODEL = "BoxNetMask"
MAX_MODEL_JSON_BYTES = 1 << 20  # a description is a few kB; more is not one of ours
STAGING = ".staging"  # the end of a save's staging folder name (hidden: it starts with ".")
OLD_STAGING_AGE = 24 * 3600.0  # s: an older version's staging folder is surely abandoned
# a staging folder of older versions: ".<name>.<8 random characters>" (mkdtemp's)
_OLD_STAGING = re.compile(r"^\.[A-Za-z0-9_.-]+\.[a-z0-9_]{8}$")


# What a model.json may ask for: far above any useful BoxNet, far below what exhausts memory.
MAX_STAGES = 8
MAX_WIDTH = 1024
MAX_BLOCKS = 4
MAX_STEM_STRIDE = 2
CONTEXT_POOL = 4


@dataclass(frozen=True)
class Architecture:
    """What is needed to rebuild the network; stored in model.json."""

    name: str = "boxnet-unet"
    widths: tuple[int, ...] = (8, 16, 32, 64, 128)
    blocks_per_stage: int = 1
    # a coarse junk logit: residual blocks on the deepest features pooled CONTEXT_POOL times
    # coarser, added to the junk class alone (a wide view of junk areas for little
    # arithmetic); 0 for none, as the shipped models
    context_blocks: int = 0
    # 2 (the shipped models since stop 28): the first convolution halves the input, every
    # stage works at half the resolution and the logits are upsampled back (bilinear); 1, what
    # a model.json without the key means: full resolution
    stem_stride: int = 1

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Architecture:
        """From model.json's object, checked before any network is built from it.

        Raises:
            UserError: one line on the first value beyond sense (negative or huge widths...).
        """
        if not isinstance(data, dict):
            raise UserError("architecture: not a JSON object")
        widths = data.get("widths")
        if not (
            isinstance(widths, list | tuple)
            and 1 <= len(widths) <= MAX_STAGES
            and all(_whole(width, 1, MAX_WIDTH) for width in widths)
        ):
            raise UserError(
                f"architecture: widths must be 1 to {MAX_STAGES} whole numbers from 1 to "
                f"{MAX_WIDTH}, got {reprlib.repr(widths)}"
            )
        blocks = data.get("blocks_per_stage", 1)
        if not _whole(blocks, 1, MAX_BLOCKS):
            raise UserError(
                f"architecture: blocks_per_stage must be a whole number from 1 to {MAX_BLOCKS}, "
                f"got {reprlib.repr(blocks)}"
            )
        context = data.get("context_blocks", 0)
        if not _whole(context, 0, MAX_BLOCKS):
            raise UserError(
                f"architecture: context_blocks must be a whole number from 0 to {MAX_BLOCKS}, "
                f"got {reprlib.repr(context)}"
            )
        stride = data.get("stem_stride", 1)
        if not _whole(stride, 1, MAX_STEM_STRIDE):
            raise UserError(
                f"architecture: stem_stride must be a whole number from 1 to {MAX_STEM_STRIDE}, "
                f"got {reprlib.repr(stride)}"
            )
        name = data.get("name", "boxnet-unet")
        if not isinstance(name, str):
            raise UserError(f"architecture: name must be text, got {reprlib.repr(name)}")
        return cls(
            name=name,
            widths=tuple(widths),
            blocks_per_stage=blocks,
            context_blocks=context,
            stem_stride=stride,
        )

    @property
    def divisor(self) -> int:
        """Input sides must be multiples of this (one halving per stage after the first, the
        stem's stride and the context's pooling)."""
        pooling = CONTEXT_POOL if self.context_blocks else 1
        return 2 ** (len(self.widths) - 1) * self.stem_stride * pooling


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def shipped_models_dir() -> Path:
    return Path(str(files("boxnet_tui"))) / "models"


@dataclass
class ModelInfo:
    """What ``model.json`` holds, plus where the model lives."""

    name: str
    architecture: Architecture = field(default_factory=Architecture)
    pixel_size: float = NETWORK_PIXEL_SIZE  # Warp's field; the input's scale is ``scale``
    has_mask: bool = False
    threshold: float | None = None  # default picking threshold, calibrated on training data
    parent: str | None = None
    training: dict = field(default_factory=dict)
    date: str = ""
    path: Path | None = None
    shipped: bool = False
    scale: NetworkScale = field(default_factory=NetworkScale)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "architecture": self.architecture.to_json(),
            "pixel_size": self.pixel_size,
            "pixels_per_diameter": self.scale.to_json(),
            "normalisation": self.scale.normalisation,
            "has_mask": self.has_mask,
            "threshold": self.threshold,
            "parent": self.parent,
            "training": self.training,
            "date": self.date,
        }

    @classmethod
    def from_json(cls, data: dict, path: Path, shipped: bool) -> ModelInfo:
        """From ``model.json``'s object, every value checked for its type and range.

        Raises:
            UserError: a name or an architecture beyond sense.
            KeyError, TypeError, ValueError: a value missing or of the wrong type or range.
        """
        pixel_size = _number(data.get("pixel_size", NETWORK_PIXEL_SIZE), "pixel_size")
        if not pixel_size > 0:
            raise ValueError(f"pixel_size must be positive, got {pixel_size}")
        threshold = data.get("threshold")
        if threshold is not None and not 0.0 <= _number(threshold, "threshold") <= 1.0:
            raise ValueError(f"threshold must be from 0 to 1, got {threshold!r}")
        return cls(
            name=check_name(data["name"]),  # it becomes a pick suffix: part of file names
            architecture=Architecture.from_json(data["architecture"]),
            pixel_size=pixel_size,
            has_mask=_typed(data.get("has_mask", False), bool, "has_mask"),
            threshold=None if threshold is None else float(threshold),
            parent=_typed(data.get("parent"), str | None, "parent"),
            training=_typed(data.get("training", {}), dict, "training"),
            date=_typed(data.get("date", ""), str, "date"),
            path=path,
            shipped=shipped,
            scale=NetworkScale.from_json(
                _number(data.get("pixels_per_diameter"), "pixels_per_diameter", True),
                # absent: models made before the choice existed were all mean-std
                _typed(data.get("normalisation", "mean-std"), str, "normalisation"),
            ),
        )


def _typed(value: Any, kind: Any, key: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{key} is {reprlib.repr(value)}, of the wrong type")
    return value


def _number(value: Any, key: str, optional: bool = False) -> Any:
    """A finite JSON number (not a boolean); None too where ``optional``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key} is {reprlib.repr(value)}, not a number")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        raise ValueError(f"{key} is {reprlib.repr(value)}, not a finite number")
    return value


def check_name(name: object) -> str:
    """A model name: letters, digits, ``_ . -``; no spaces or other special characters."""
    return check_model_name(name)


def _read_info(folder: Path, shipped: bool) -> ModelInfo:
    """``model.json`` of ``folder``: any bytes give a ModelInfo or one line, never more."""
    meta = folder / MODEL_JSON
    try:
        with open(meta, "rb") as handle:
            raw = handle.read(MAX_MODEL_JSON_BYTES + 1)
        if len(raw) > MAX_MODEL_JSON_BYTES:
            raise ValueError(f"larger than {MAX_MODEL_JSON_BYTES} bytes")
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return ModelInfo.from_json(data, folder, shipped)
    except FileNotFoundError:
        raise UserError(f"{folder}: not a model folder (no {MODEL_JSON})") from None
    except UserError as error:  # a name or an architecture beyond sense
        raise UserError(f"{meta}: {error}") from None
    except RecursionError:
        raise UserError(f"{meta}: unreadable model description (nested too deeply)") from None
    except KeyError as error:
        raise UserError(f"{meta}: unreadable model description (no {error})") from None
    except (OSError, ArithmeticError, TypeError, ValueError) as error:
        text = " ".join(str(error).split())  # one line, whatever the file held
        raise UserError(f"{meta}: unreadable model description ({text})") from None


def _staging_prefix(name: str) -> str:
    """``.<name>.<pid>-<start>.``: a save's staging folder names the process that owns it."""
    from boxnet_tui.process import process_start

    pid = os.getpid()
    start = process_start(pid)
    return f".{name}.{pid}-{'x' if start is None else start}."


def _clean_staging(root: Path) -> None:
    """Remove the staging folders of saves a kill interrupted: those whose process is gone
    (a live process's, another save under way, are left alone)."""
    from boxnet_tui.process import is_alive

    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for entry in entries:
        owner = _staging_owner(entry.name)
        if owner is None:
            continue
        pid, start = owner
        if pid == 0:  # an older version's: its owner unknown, so only once it is old
            try:
                if time.time() - entry.stat().st_mtime < OLD_STAGING_AGE:
                    continue
            except OSError:
                continue
        elif is_alive(pid, start):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _staging_owner(name: str) -> tuple[int, int | None] | None:
    """(pid, start time) of the process that owns staging folder ``name``; None if the name
    is no staging folder's. Folders of older saves (no owner in the name) are owned by pid 0:
    nobody."""
    if name.startswith(".") and name.endswith(STAGING):
        parts = name[1:].split(".")  # name, pid-start, mkdtemp's random part, "staging"
        if len(parts) >= 4:
            pid, _, start = parts[-3].partition("-")
            if pid.isdigit() and (start.isdigit() or start == "x"):
                return int(pid), int(start) if start.isdigit() else None
        return None
    return (0, None) if _OLD_STAGING.match(name) else None


def list_models() -> list[ModelInfo]:
    """Shipped models first, then the user's, each sorted by name; broken folders skipped,
    and hidden ones (a save's staging folder) never listed."""
    found = []
    for root, shipped in ((shipped_models_dir(), True), (models_dir(), False)):
        if not root.is_dir():
            continue
        if not shipped:
            _clean_staging(root)
        for folder in sorted(root.iterdir()):
            if folder.name.startswith("."):
                continue
            if (folder / MODEL_JSON).is_file():
                try:
                    found.append(_read_info(folder, shipped))
                except UserError:
                    continue
    return found


def find_model(name_or_path: str | os.PathLike[str]) -> ModelInfo:
    """A model by name (user models, then shipped ones) or by the path of its folder.

    Raises:
        UserError: no such model, naming the models there are.
    """
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if os.sep in text or (candidate.is_dir() and (candidate / MODEL_JSON).is_file()):
        if not candidate.is_dir():
            raise UserError(f"{candidate}: no such model folder")
        return _read_info(candidate, shipped=False)
    for root, shipped in ((models_dir(), False), (shipped_models_dir(), True)):
        folder = root / text
        if is_path_name(text) and (folder / MODEL_JSON).is_file():
            return _read_info(folder, shipped)
    names = ", ".join(info.name for info in list_models()) or "none"
    raise UserError(f"no model named {text!r} (models: {names})")
