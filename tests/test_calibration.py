"""Threshold calibration on training micrographs, with a network whose output is known."""

from __future__ import annotations

import numpy as np
import torch

from boxnet_tui.io.star import Picks
from boxnet_tui.model.calibration import CalibrationItem, calibrate_threshold
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
