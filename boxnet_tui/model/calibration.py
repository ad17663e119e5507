"""Choosing a model's default picking threshold on the micrographs it was trained on.

A network trained with a down-weighted background class (Warp's ``(N_p / N_bg)^(1/3)``) is
over-confident about particles, so a fixed 0.5 picks too much. After training, the model is
run once over its own training micrographs and the middle of the thresholds whose pooled F1
against their labels is within ``RETRAINED_PLATEAU`` of the best is stored in ``model.json``;
``pick`` uses it unless told otherwise. Held-out micrographs are never used for this.

A generic model is meant for proteins it never saw, on which it is less confident than on its
own training proteins (leave-one-protein-out: an unseen protein's F1 is flat up to ~0.6 and
falls beyond, where the seen ones peak at 0.7–0.85). Its threshold is therefore calibrated on
micrographs of proteins it never trained on (``scripts/train_generic.py``), each micrograph
counting equally, and the middle of the near-best plateau is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from boxnet_tui.evaluate import Score, inside, score_picks
from boxnet_tui.imaging import NETWORK_PIXEL_SIZE
from boxnet_tui.io.star import Picks
from boxnet_tui.model.inference import predict_probabilities
from boxnet_tui.model.network import BoxNet
from boxnet_tui.picking import WARP_BORDER, pick_at_each

THRESHOLDS = tuple(np.round(np.arange(0.30, 0.99, 0.02), 2))
# F1 within this of the best counts as tied, and the middle of the tied thresholds is taken:
# F1 rises slowly with the threshold up to a cliff, and its highest point often sits at the
# cliff's edge. A generic model's mean over 48 micrographs is smooth (PLATEAU); a retrained
# model's F1 over its few training micrographs, a few hundred particles, moves by 0.01 or more
# by chance (RETRAINED_PLATEAU): a retrained ribosome model's best, 0.848 at 0.88 beside 0.845
# at 0.82, gave 0.850 on five other micrographs, the middle within 0.01 (0.80) 0.868
PLATEAU = 0.005
RETRAINED_PLATEAU = 0.01


@dataclass
class CalibrationItem:
    """A training micrograph as the network sees it, with its labelled particles."""

    image: np.ndarray  # at the model's input pixel size, normalised
    reference: Picks  # in the same pixels
    diameter: float  # Å
    border: float = 0.0  # pixels left unlabelled at the edge
    pixel_size: float = NETWORK_PIXEL_SIZE  # Å/px of ``image``


def micrograph_scores(
    network: BoxNet,
    items: list[CalibrationItem],
    *,
    device: torch.device | str = "cpu",
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict[float, Score]]:
    """Each item's picks scored at each threshold (matched at half a diameter, on the
    interior a pick can reach): one network pass and one peak search per item."""
    scores = []
    for item in items:
        probabilities = predict_probabilities(network, item.image, device=device)
        # scored where picks can be: a reference the border rule cannot pick says nothing of
        # the threshold (counted as missed at every threshold, it only lowered every F1)
        border = max(item.border, WARP_BORDER * item.diameter / item.pixel_size)
        reference = inside(item.reference, item.image.shape, border)
        radius = item.diameter / 2 / item.pixel_size
        picked = pick_at_each(probabilities, item.diameter, thresholds, pixel_size=item.pixel_size)
        scores.append(
            {
                threshold: score_picks(
                    inside(Picks(result.x, result.y, result.score), item.image.shape, border),
                    reference,
                    radius,
                )
                for threshold, result in picked.items()
            }
        )
    return scores


def plateau_middle(f1: dict[float, float], tolerance: float = 0.0) -> float:
    """The middle of the thresholds whose F1 is within ``tolerance`` of the best: the
    farthest from both edges of the near-best plateau."""
    top = max(f1.values())
    tied = sorted(t for t in f1 if f1[t] >= top - tolerance - 1e-9)
    return tied[len(tied) // 2]


def calibrate_threshold(
    network: BoxNet,
    items: list[CalibrationItem],
    *,
    device: torch.device | str = "cpu",
    thresholds: tuple[float, ...] = THRESHOLDS,
    per_micrograph: bool = False,
    tolerance: float = 0.0,
) -> tuple[float, float]:
    """(threshold, F1) with the best F1 over ``items``, matched at half a diameter.

    Args:
        per_micrograph: F1 is the mean of each micrograph's F1 (each counts equally) instead
            of pooled over all particles (a crowded micrograph weighs more).
        tolerance: thresholds within this of the best F1 count as tied; the middle of the
            tied ones is taken, the farthest from both edges of the plateau.
    """
    scores = micrograph_scores(network, items, device=device, thresholds=thresholds)
    if per_micrograph:
        f1 = {t: sum(s[t].f1 for s in scores) / max(1, len(scores)) for t in thresholds}
    else:
        f1 = {t: Score.total(s[t] for s in scores).f1 for t in thresholds}
    best = plateau_middle(f1, tolerance)
    return float(best), f1[best]


def item_for_example(
    example: object,
    micrograph_shape: tuple[int, ...],
    picks: Picks,
    diameter: float,
    pixel_size: float = NETWORK_PIXEL_SIZE,
    border: float = 0.0,
) -> CalibrationItem:
    """A training example with its picks (micrograph pixels) brought to its own pixels.

    ``border`` is in micrograph pixels, ``pixel_size`` the example's Å/px.
    """
    image = example.image  # type: ignore[attr-defined]
    factor = micrograph_shape[1] / image.shape[1]  # micrograph px per example px
    return CalibrationItem(
        image, Picks(picks.x / factor, picks.y / factor), diameter, border / factor, pixel_size
    )


def items_for_examples(
    examples: list,
    folder: str | Path,
    positives_star: str | Path,
    diameter: float,
    pixel_size: float = NETWORK_PIXEL_SIZE,
) -> list[CalibrationItem]:
    """Calibration items for training examples named by micrograph root (as collected from a
    folder by :func:`boxnet_tui.training.export.collect_examples`): their curated picks are
    read again and brought to the examples' pixels (``pixel_size`` Å/px)."""
    from boxnet_tui.io.layout import match_suffix, pick_file_name
    from boxnet_tui.io.micrographs import read_info, scan_folder
    from boxnet_tui.io.star import read_picks

    paths = {path.stem: path for path in scan_folder(folder)}
    _, suffix = match_suffix(positives_star, paths)
    items = []
    for example in examples:
        if example.name not in paths:
            continue
        picks = read_picks(Path(positives_star).parent / pick_file_name(example.name, suffix))
        shape = read_info(paths[example.name]).shape
        items.append(item_for_example(example, shape, picks, diameter, pixel_size))
    return items
