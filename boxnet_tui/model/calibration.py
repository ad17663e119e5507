"""Choosing a model's default picking threshold on the micrographs it was trained on.

A network trained with a down-weighted background class (Warp's ``(N_p / N_bg)^(1/3)``) is
over-confident about particles, so a fixed 0.5 picks too much. After training, the model is
run once over its own training micrographs and the threshold with the best pooled F1 against
their labels is stored in ``model.json``; ``pick`` uses it unless told otherwise. Held-out
micrographs are never used for this.
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
from boxnet_tui.picking import pick

THRESHOLDS = tuple(np.round(np.arange(0.30, 0.99, 0.02), 2))


@dataclass
class CalibrationItem:
    """A training micrograph as the network sees it, with its labelled particles."""

    image: np.ndarray  # at the model's input pixel size, normalised
    reference: Picks  # in the same pixels
    diameter: float  # Å
    border: float = 0.0  # pixels left unlabelled at the edge
    pixel_size: float = NETWORK_PIXEL_SIZE  # Å/px of ``image``


def calibrate_threshold(
    network: BoxNet,
    items: list[CalibrationItem],
    *,
    device: torch.device | str = "cpu",
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> tuple[float, float]:
    """(threshold, pooled F1) with the best F1 over ``items``, matched at half a diameter."""
    totals = {threshold: Score(0, 0, 0) for threshold in thresholds}
    for item in items:
        probabilities = predict_probabilities(network, item.image, device=device)
        reference = inside(item.reference, item.image.shape, item.border)
        radius = item.diameter / 2 / item.pixel_size
        for threshold in thresholds:
            result = pick(probabilities, item.diameter, threshold, pixel_size=item.pixel_size)
            found = inside(Picks(result.x, result.y, result.score), item.image.shape, item.border)
            totals[threshold] = totals[threshold] + score_picks(found, reference, radius)
    top = max(score.f1 for score in totals.values())
    # several thresholds may tie: take the middle of them, the farthest from both edges
    tied = sorted(t for t in thresholds if totals[t].f1 >= top - 1e-9)
    best = tied[len(tied) // 2]
    return float(best), totals[best].f1


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
