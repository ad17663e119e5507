"""Warp's picking steps, each on hand-made probability maps at 8 Å/px."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from boxnet_tui.errors import UserError
from boxnet_tui.picking import disc, junk_mask, local_maxima, particle_map, pick, suppress_close

DIAMETER = 160.0  # Å: 20 px at 8 Å/px


def _maps(shape=(200, 200)):
    probabilities = np.zeros((3, *shape), np.float32)
    probabilities[0] = 1.0
    return probabilities


def _blob(probabilities, cy, cx, radius=3, value=0.99):
    y, x = np.mgrid[: probabilities.shape[1], : probabilities.shape[2]]
    inside = (y - cy) ** 2 + (x - cx) ** 2 <= radius * radius
    peak = value - 0.01 * np.sqrt((y - cy) ** 2 + (x - cx) ** 2)
    probabilities[1][inside] = peak[inside]
    probabilities[0][inside] = 1 - peak[inside]


def test_particle_map_needs_argmax_and_threshold():
    probabilities = _maps((4, 4))
    probabilities[:, 0, 0] = [0.2, 0.7, 0.1]  # particle wins, passes 0.5
    probabilities[:, 0, 1] = [0.55, 0.45, 0.0]  # background wins
    probabilities[:, 0, 2] = [0.3, 0.4, 0.3]  # particle wins but below 0.5
    pred, _ = particle_map(probabilities, 0.5)
    assert pred[0, 0] == pytest.approx(0.7)
    assert pred[0, 1] == 0 and pred[0, 2] == 0


def test_small_junk_components_are_dropped():
    labels = np.zeros((50, 50), int)
    labels[5:9, 5:9] = 2  # 16 px: dropped
    labels[20:30, 20:30] = 2  # 100 px: kept
    mask = junk_mask(labels)
    assert not mask[5:9, 5:9].any()
    assert mask[20:30, 20:30].all()


def test_local_maxima_within_radius():
    pred = np.zeros((30, 30), np.float32)
    pred[10, 10], pred[10, 13], pred[20, 20] = 0.9, 0.8, 0.7
    rows, cols = local_maxima(pred, 5)
    assert set(zip(rows.tolist(), cols.tolist(), strict=True)) == {(10, 10), (20, 20)}


def test_blob_centroid_and_score():
    probabilities = _maps()
    _blob(probabilities, 100.3, 60.0)
    result = pick(probabilities, DIAMETER)
    assert len(result.x) == 1
    assert result.x[0] == pytest.approx(60.0, abs=0.3)
    assert result.y[0] == pytest.approx(100.0, abs=0.5)
    assert 0.95 < result.score[0] <= 0.99


def test_score_of_a_ring_blob_is_its_peak():
    # the centroid of a ring lies outside it: the score falls back to the blob's own peak,
    # not to a brighter blob elsewhere
    probabilities = _maps()
    y, x = np.mgrid[:200, :200]
    r = np.hypot(y - 100, x - 100)
    ring = (r >= 4) & (r <= 6)
    probabilities[1][ring] = 0.8 + 0.01 * (x[ring] > 100)
    probabilities[0][ring] = 1 - probabilities[1][ring]
    _blob(probabilities, 40, 160, value=0.99)
    result = pick(probabilities, DIAMETER)
    scores = dict(zip(np.round(result.x).astype(int).tolist(), result.score.tolist(), strict=True))
    assert scores[100] == pytest.approx(0.81, abs=1e-6)
    assert scores[160] > 0.95


def test_border_picks_are_dropped():
    probabilities = _maps()
    _blob(probabilities, 100, 10)  # 10 px from the edge < 0.8 * 20 px
    _blob(probabilities, 100, 100)
    result = pick(probabilities, DIAMETER)
    assert result.x.tolist() == pytest.approx([100.0])


def test_threshold_hides_weak_blobs():
    probabilities = _maps()
    _blob(probabilities, 60, 60, value=0.99)
    _blob(probabilities, 140, 140, value=0.7)
    assert len(pick(probabilities, DIAMETER, threshold=0.5).x) == 2
    assert len(pick(probabilities, DIAMETER, threshold=0.9).x) == 1


def test_picks_near_junk_are_dropped_with_min_mask_distance():
    probabilities = _maps()
    probabilities[:, :, 150:] = 0
    probabilities[2, :, 150:] = 1.0  # junk band on the right
    _blob(probabilities, 100, 135)  # 15 px from junk > radius 10 px
    _blob(probabilities, 40, 60)
    assert len(pick(probabilities, DIAMETER).x) == 2
    result = pick(probabilities, DIAMETER, min_mask_distance=80)  # 10 px more: 20 > 15
    assert result.x.tolist() == pytest.approx([60.0])
    assert result.junk[:, 150:].all()


def test_close_picks_keep_the_larger_blob():
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4)
    _blob(probabilities, 100, 110, radius=2)  # 10 px < 20 / 1.5
    result = pick(probabilities, DIAMETER)
    assert result.x.tolist() == pytest.approx([100.0], abs=0.2)


def test_suppress_close_is_transitive_by_size():
    x = np.array([0.0, 10.0, 20.0])
    y = np.zeros(3)
    size = np.array([5.0, 10.0, 5.0])
    # the middle (largest) removes both neighbours; neither survives to remove the other
    assert suppress_close(x, y, size, 12.0).tolist() == [1]


def test_coordinates_scale_to_micrograph():
    probabilities = _maps()
    _blob(probabilities, 80, 120)
    picks = pick(probabilities, DIAMETER).to_micrograph(8.0 / 1.77)
    assert picks.x[0] == pytest.approx(120 * 8 / 1.77, rel=0.01)


def test_empty_map_gives_no_picks():
    result = pick(_maps(), DIAMETER)
    assert len(result.x) == 0 and result.junk.shape == (200, 200)


@pytest.mark.parametrize("diameter", [5.0, 701.0])
def test_diameter_out_of_range(diameter):
    with pytest.raises(UserError, match="10–700 Å"):
        pick(_maps(), diameter)


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 5, 7, 12])
def test_local_maxima_equal_a_disc_maximum_filter_over_every_pixel(radius):
    rng = np.random.default_rng(radius)
    for trial in range(12):
        height, width = rng.integers(5, 120, 2)
        pred = ndimage.gaussian_filter(rng.random((height, width)), rng.uniform(0, 3))
        pred[pred < np.quantile(pred, rng.uniform(0, 0.9))] = 0
        if trial % 3 == 0:
            pred = np.round(pred, 2)  # plateaus: ties count as maxima
        pred = pred.astype(np.float32)
        full = ndimage.maximum_filter(pred, footprint=disc(max(1, radius)), mode="constant")
        expected = np.nonzero((pred > 0) & (pred >= full))
        found = local_maxima(pred, radius)
        np.testing.assert_array_equal(found[0], expected[0])
        np.testing.assert_array_equal(found[1], expected[1])
