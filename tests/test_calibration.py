"""Threshold calibration on training micrographs, with a network whose output is known."""

from __future__ import annotations

import numpy as np
import torch

from boxnet_tui.io.star import Picks
from boxnet_tui.model.calibration import (
    CalibrationItem,
    calibrate_threshold,
    micrograph_scores,
    plateau_middle,
)
from boxnet_tui.model.network import Architecture


class FixedMap(torch.nn.Module):
    """Returns logits whose softmax is a given (3, H, W) probability map."""

    architecture = Architecture(widths=(4,))

    def __init__(self, probabilities: np.ndarray) -> None:
        super().__init__()
        self.logits = torch.from_numpy(np.log(np.clip(probabilities, 1e-6, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[None].expand(x.shape[0], -1, -1, -1)


def _blob_map(shape, blobs):
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 1.0
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for x, y, p in blobs:
        inside = (yy - y) ** 2 + (xx - x) ** 2 <= 4
        probabilities[1][inside] = p
        probabilities[0][inside] = 1 - p
    return probabilities


def test_threshold_separates_true_from_false_blobs():
    true = [(30, 30), (70, 30), (30, 70), (70, 70)]
    false = [(50, 50), (100, 100)]
    blobs = [(x, y, 0.96) for x, y in true] + [(x, y, 0.7) for x, y in false]
    network = FixedMap(_blob_map((128, 128), blobs))
    item = CalibrationItem(
        np.zeros((128, 128), np.float32),
        Picks([x for x, _ in true], [y for _, y in true]),
        diameter=120.0,
    )
    threshold, f1 = calibrate_threshold(network, [item])
    assert 0.7 < threshold <= 0.96
    assert f1 == 1.0


def test_unlabelled_border_is_ignored():
    blobs = [(60, 60, 0.9), (20, 60, 0.9)]  # the second lies in an unlabelled border
    network = FixedMap(_blob_map((120, 120), blobs))
    item = CalibrationItem(np.zeros((120, 120), np.float32), Picks([60], [60]), 80.0, border=25)
    _, f1 = calibrate_threshold(network, [item])
    assert f1 == 1.0


class MapPerImage(torch.nn.Module):
    """Returns the probability map whose index is the input image's first pixel."""

    architecture = Architecture(widths=(4,))

    def __init__(self, maps: list[np.ndarray]) -> None:
        super().__init__()
        self.logits = [torch.from_numpy(np.log(np.clip(m, 1e-6, 1))) for m in maps]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.logits[int(image[0, 0, 0])] for image in x])


def test_each_micrograph_counts_equally_when_asked():
    # one crowded micrograph wants a high threshold (faint false blobs), two sparse ones a low
    # one (their true particles are faint): pooled F1 follows the crowded one, the
    # per-micrograph mean the majority
    grid = [(x, y) for x in range(20, 101, 20) for y in range(20, 101, 20)][:24]
    true, false = grid[:16], grid[16:]
    crowded = _blob_map(
        (128, 128), [(x, y, 0.96) for x, y in true] + [(x, y, 0.7) for x, y in false]
    )
    sparse = _blob_map((128, 128), [(40, 40, 0.7), (80, 80, 0.7)])
    network = MapPerImage([crowded, sparse])
    items = [
        CalibrationItem(np.full((128, 128), 0, np.float32), Picks(*zip(*true, strict=True)), 120.0),
        CalibrationItem(np.full((128, 128), 1, np.float32), Picks([40, 80], [40, 80]), 120.0),
        CalibrationItem(np.full((128, 128), 1, np.float32), Picks([40, 80], [40, 80]), 120.0),
    ]
    pooled, _ = calibrate_threshold(network, items)
    mean, f1 = calibrate_threshold(network, items, per_micrograph=True)
    assert pooled > 0.7
    assert mean <= 0.7
    assert abs(f1 - (0.8 + 1 + 1) / 3) < 1e-9


def test_tolerance_takes_the_middle_of_the_near_best_plateau():
    # a particle at 0.9 and one at 0.55: F1 1.0 up to 0.54, then 2/3 up to 0.9
    network = FixedMap(_blob_map((128, 128), [(40, 40, 0.9), (80, 80, 0.55)]))
    item = CalibrationItem(np.zeros((128, 128), np.float32), Picks([40, 80], [40, 80]), 120.0)
    strict, _ = calibrate_threshold(network, [item])
    loose, _ = calibrate_threshold(network, [item], tolerance=0.5)
    assert strict < 0.55 <= loose


def test_plateau_middle_takes_the_middle_of_the_tied_thresholds():
    f1 = {0.3: 0.80, 0.4: 0.895, 0.5: 0.90, 0.6: 0.897, 0.7: 0.70}
    assert plateau_middle(f1) == 0.5
    assert plateau_middle(f1, tolerance=0.005) == 0.5  # 0.4, 0.5, 0.6 tied
    assert plateau_middle(f1, tolerance=0.2) == 0.5  # 0.3 .. 0.7
    assert plateau_middle({0.3: 0.5, 0.4: 0.9, 0.5: 0.9}) == 0.5  # of two, the higher


def test_micrograph_scores_are_each_items_own():
    # one micrograph found whole at any threshold up to 0.9, one only up to 0.54
    network = MapPerImage(
        [
            _blob_map((128, 128), [(40, 40, 0.96), (80, 80, 0.96)]),
            _blob_map((128, 128), [(40, 40, 0.55), (80, 80, 0.55)]),
        ]
    )
    items = [
        CalibrationItem(np.full((128, 128), k, np.float32), Picks([40, 80], [40, 80]), 120.0)
        for k in (0, 1)
    ]
    first, second = micrograph_scores(network, items, thresholds=(0.5, 0.6))
    assert (first[0.5].f1, first[0.6].f1) == (1.0, 1.0)
    assert (second[0.5].f1, second[0.6].f1) == (1.0, 0.0)
    mean, f1 = calibrate_threshold(network, items, thresholds=(0.5, 0.6), per_micrograph=True)
    assert (mean, f1) == (0.5, 1.0)


def test_references_the_border_rule_cannot_pick_are_not_counted():
    # 120 Å at 8 Å/px: 15 px, picks closer than 12 px to the edge are dropped by design
    network = FixedMap(_blob_map((128, 128), [(40, 40, 0.9), (80, 80, 0.9), (5, 64, 0.9)]))
    item = CalibrationItem(
        np.zeros((128, 128), np.float32), Picks([40, 80, 5], [40, 80, 64]), diameter=120.0
    )
    _, f1 = calibrate_threshold(network, [item])
    assert f1 == 1.0  # not 0.8: the reference at x = 5 is outside what any pick could reach
