"""The scale check: at what size a generic model sees a folder's particles best.

A generic model learnt particles about 20 px across at the diameter its training stated for
them. What a user states for their protein need not be what the network would call its
diameter (the full extent or the dense core; a protein that looks smaller or larger than its
size), and a generic model finds particles best near the size it was trained on. So before a
folder is picked with a generic model, a few of its micrographs go through the network at
0.71-1.41 times the stated scale (``CHECK_FACTORS``), and the folder is picked at the factor
where the largest share of the network's peaks clear the model's threshold: where the objects
it finds look most like particles to it. Picks stay in the stated diameter's terms (their
separation, the border, the distance from junk); only the network's input is scaled.

Measured on real proteins the models never saw (README, "The scale check"): the share peaks
where F1 at the model's threshold peaks, whether the diameter was stated right or 0.8 or 1.25
times the true one. A retrained model was trained at the stated diameter of the very protein it
picks, so it is not checked (nor is a Warp model, at its fixed 8 Å/px).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boxnet_tui.errors import UserError

CHECK_FACTORS = (0.707, 0.794, 0.891, 1.0, 1.122, 1.26, 1.414)  # 2 ** (k / 6), k = -3 .. 3
CHECK_MICROGRAPHS = 4  # the first in name order
SCALE_FACTOR_RANGE = (0.5, 2.0)  # what a user may give with --scale-factor


def _refused(got: str) -> UserError:
    low, high = SCALE_FACTOR_RANGE
    return UserError(f"scale factor must be a number from {low:g} to {high:g}, got {got}")


def check_scale_factor(value: float) -> float:
    """Return ``value`` if a user may give it as the scale factor, else raise a UserError."""
    low, high = SCALE_FACTOR_RANGE
    if not (math.isfinite(value) and low <= value <= high):
        raise _refused(f"{value:g}")
    return float(value)


@dataclass(frozen=True)
class Share:
    """How many of the peaks at one factor clear the threshold, of how many."""

    decisive: int
    peaks: int

    @property
    def value(self) -> float:
        return self.decisive / self.peaks if self.peaks else 0.0

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.value * (1 - self.value) / self.peaks) if self.peaks else 0.0


def scale_factor_from_text(text: str) -> float | None:
    """The scale factor a user typed; None for an empty field (the check decides).

    Raises:
        UserError: not a number, or beyond ``SCALE_FACTOR_RANGE`` (one line).
    """
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _refused(repr(text)) from None
    return check_scale_factor(value)


def decisive_share(scores: Sequence[np.ndarray], threshold: float) -> Share:
    """The peaks (every score, all micrographs together) at ``threshold`` or more."""
    pooled = [np.asarray(s, float).ravel() for s in scores]
    return Share(sum(int(np.sum(s >= threshold)) for s in pooled), sum(s.size for s in pooled))


def choose_factor(shares: Mapping[float, Share]) -> float:
    """The factor of the largest share; among those within its standard error of it (a few
    micrographs' chance), the one nearest 1, the stated scale. 1 without peaks."""
    if not any(share.peaks for share in shares.values()):
        return 1.0
    best = max(shares.values(), key=lambda share: share.value)
    near = [f for f, share in shares.items() if share.value >= best.value - best.standard_error]
    return min(near, key=lambda factor: (abs(math.log(factor)), factor))


def sample(paths: Sequence[Path], count: int = CHECK_MICROGRAPHS) -> list[Path]:
    """The first ``count`` of ``paths`` in name order: the same sample for every shard and
    every re-run, and still the same once the folder grows (micrographs of a session arrive in
    name order), so the folder keeps one factor and what is picked stays picked."""
    return sorted(paths, key=lambda path: path.name)[:count]


@dataclass(frozen=True)
class ScaleCheck:
    """What the check found: the factor chosen and the share of decisive peaks at each."""

    factor: float
    shares: dict[float, Share]
    micrographs: int
    seconds: float = 0.0

    def describe(self, diameter: float) -> str:
        """One line for the user: what was chosen, on what, and how to override it."""
        table = " ".join(f"{f:.2f}:{share.value:.2f}" for f, share in self.shares.items())
        if self.factor == 1.0:
            what = f"picks at the stated {diameter:g} Å"
        else:
            what = (
                f"the network sees these particles best at {self.factor:.2f}x the stated "
                f"{diameter:g} Å"
            )
        return (
            f"scale check on {self.micrographs} micrograph(s) ({self.seconds:.1f} s): {what} "
            f"(share of peaks over the threshold by factor {table}; --scale-factor F fixes it)"
        )
