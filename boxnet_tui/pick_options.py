"""The pick options a user gives that are checked or resolved the same way everywhere.

Torch-free, so that the app's pick form can call it on the UI thread; the CLI, the app and
:func:`boxnet_tui.batch_picking.load_picker` all call these functions, so each rule is here once:

- the minimum distance from the junk mask: a finite number of Å, 0 or more;
- inverting the contrast (negative stain, particles bright): a pick inverts when asked to
  (``--invert``, the pick form's box ticked), does not when told not to (``--no-invert``, the
  box cleared), and otherwise does as the model was trained: a model retrained with
  ``invert`` records it in the training section of its ``model.json``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from boxnet_tui.errors import UserError

if TYPE_CHECKING:
    from boxnet_tui.model.info import ModelInfo

MIN_MASK_DISTANCE_RANGE = "a number of Å, 0 or more"  # for a form's hint
TRAINED_INVERTED = "invert"  # the key of model.json's training section a run writes
RUN_PATH = "run_path"  # the key naming the run that made a model (only `train` writes it)


def check_min_mask_distance(value: float) -> float:
    """Return ``value`` (Å) if it is a finite number of 0 or more, else raise a UserError."""
    if not (math.isfinite(value) and value >= 0.0):
        raise UserError(f"minimum mask distance must be {MIN_MASK_DISTANCE_RANGE}, got {value:g}")
    return float(value)


def min_mask_distance_from_text(text: str) -> float:
    """The minimum mask distance (Å) a user typed.

    Raises:
        UserError: not a number, negative, infinite or NaN (one line).
    """
    try:
        value = float(text.strip())
    except ValueError:
        raise UserError(
            f"minimum mask distance must be {MIN_MASK_DISTANCE_RANGE}, got {text.strip()!r}"
        ) from None
    return check_min_mask_distance(value)


def trained_inverted(info: ModelInfo) -> bool:
    """Whether a model was trained on inverted micrographs (negative stain), as its run
    recorded; False for a model without the record (the shipped ones, older retrainings)."""
    return info.training.get(TRAINED_INVERTED) is True


def resolve_invert(requested: bool | None, info: ModelInfo) -> bool:
    """Whether a pick with ``info``'s model inverts: as ``requested`` when it is True or False
    (``--invert`` / ``--no-invert``, the form's box), else (None) as the model was trained."""
    return trained_inverted(info) if requested is None else bool(requested)
