"""The picking steps, each on hand-made probability maps at 8 Å/px."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from boxnet_tui.errors import UserError
from boxnet_tui.picking import (
    PEAK_SMOOTHING,
    clear_of,
    junk_mask,
    junk_wins,
    particle_evidence,
    pick,
    pick_at_each,
    suppress_close,
)

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


def test_evidence_is_the_particle_probability_smoothed_over_a_twentieth_of_the_diameter():
    probabilities = _maps((61, 61))
    probabilities[1, 30, 30] = 1.0  # one bright pixel: a point, not a particle's core
    evidence = particle_evidence(probabilities[1], 20.0)
    expected = ndimage.gaussian_filter(probabilities[1], PEAK_SMOOTHING * 20.0)
    np.testing.assert_allclose(evidence, expected, atol=1e-7)
    assert evidence[30, 30] < 0.5 and evidence.sum() == pytest.approx(1.0, abs=1e-4)


def test_score_is_the_highest_probability_near_the_peak():
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4, value=0.9)
    probabilities[1, 101, 101] = 0.97  # one pixel off the centre, within D / 8
    result = pick(probabilities, DIAMETER, threshold=0.5)
    assert result.score.tolist() == pytest.approx([0.97])


def test_small_junk_components_are_dropped():
    labels = np.zeros((50, 50), int)
    labels[5:9, 5:9] = 2  # 16 px: dropped
    labels[20:30, 20:30] = 2  # 100 px: kept
    mask = junk_mask(labels == 2)
    assert not mask[5:9, 5:9].any()
    assert mask[20:30, 20:30].all()


def test_junk_wins_is_the_argmax_of_junk():
    probabilities = np.random.default_rng(5).random((3, 40, 50)).astype(np.float32)
    probabilities[:, 0, :3] = 0.5  # ties: argmax gives them to the lower class
    probabilities[2, 1, 0] = probabilities[1, 1, 0] = 0.9
    np.testing.assert_array_equal(junk_wins(probabilities), probabilities.argmax(axis=0) == 2)


@pytest.mark.parametrize("distance", [0.0, 0.5, 1.0, 3.0, 7.5, 10.0, 23.9, 40.0])
def test_clearance_from_the_mask_is_the_distance_transforms(distance):
    rng = np.random.default_rng(int(distance * 10))
    mask = ndimage.binary_dilation(rng.random((120, 90)) > 0.995, iterations=2)
    rows, cols = np.nonzero(np.ones(mask.shape, bool))
    expected = ndimage.distance_transform_edt(~mask)[rows, cols] >= distance
    np.testing.assert_array_equal(clear_of(mask, rows, cols, distance), expected)


def test_blob_centroid_and_score():
    probabilities = _maps()
    _blob(probabilities, 100.3, 60.0)
    result = pick(probabilities, DIAMETER)
    assert len(result.x) == 1
    assert result.x[0] == pytest.approx(60.0, abs=0.3)
    assert result.y[0] == pytest.approx(100.0, abs=0.5)
    assert 0.95 < result.score[0] <= 0.99


def test_a_ring_gives_one_pick_near_its_centre():
    # a hollow particle the network outlines: one pick, pulled into the ring, scored by the
    # brightest probability near its peak
    probabilities = _maps()
    y, x = np.mgrid[:200, :200]
    r = np.hypot(y - 100, x - 100)
    ring = (r >= 3) & (r <= 5)
    probabilities[1][ring] = 0.8 + 0.01 * (x[ring] > 100)
    probabilities[0][ring] = 1 - probabilities[1][ring]
    _blob(probabilities, 40, 160, value=0.99)
    result = pick(probabilities, DIAMETER, threshold=0.3)
    assert len(result.x) == 2
    ring_pick = int(np.argmin(np.hypot(result.x - 100, result.y - 100)))
    assert np.hypot(result.x[ring_pick] - 100, result.y[ring_pick] - 100) < 20 / 4
    assert result.score[ring_pick] == pytest.approx(0.81, abs=1e-6)
    assert result.score[1 - ring_pick] > 0.9


def test_touching_particles_are_two_picks():
    # two cores 0.8 D apart whose tails join above the threshold: Warp's blob rule merges them
    probabilities = _maps()
    _blob(probabilities, 100, 92, radius=5)
    _blob(probabilities, 100, 108, radius=5)
    probabilities[1, 97:104, 92:109] = np.maximum(probabilities[1, 97:104, 92:109], 0.6)
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER, threshold=0.5)
    assert sorted(result.x.tolist()) == pytest.approx([92.0, 108.0], abs=1.0)


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


def test_close_peaks_keep_the_stronger():
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4, value=0.99)
    _blob(probabilities, 100, 108, radius=2, value=0.8)  # 8 px < half of 20 px
    result = pick(probabilities, DIAMETER)
    assert len(result.x) == 1 and result.x[0] == pytest.approx(100.0, abs=1.0)


def test_a_saturated_plateau_is_one_pick():
    probabilities = _maps()
    probabilities[1, 91:110, 91:110] = 1.0  # saturated: a plateau of equal maxima 11 px across
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER)
    assert len(result.x) == 1
    assert (result.x[0], result.y[0]) == pytest.approx((100.0, 100.0), abs=1.0)


def test_suppress_close_is_transitive_by_strength():
    x = np.array([0.0, 10.0, 20.0])
    y = np.zeros(3)
    strength = np.array([5.0, 10.0, 5.0])
    # the middle (strongest) removes both neighbours; neither survives to remove the other
    assert suppress_close(x, y, strength, 12.0).tolist() == [1]


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


def test_a_weak_particle_beside_a_wide_strong_core_is_kept():
    # separate cores 0.8 D apart; the strong one's flank reaches within D/2 of the weak peak
    probabilities = _maps()
    _blob(probabilities, 100, 92, radius=7, value=0.99)
    _blob(probabilities, 100, 108, radius=3, value=0.7)
    result = pick(probabilities, DIAMETER, threshold=0.5)
    assert sorted(result.x.tolist()) == pytest.approx([92.0, 108.0], abs=1.0)


def test_a_wide_saturated_region_is_one_pick_at_once():
    probabilities = _maps((300, 300))
    probabilities[1, 90:210, 90:210] = 1.0  # 6 diameters across, every inner pixel tied
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER)
    assert len(result.x) == 1
    assert (result.x[0], result.y[0]) == pytest.approx((149.5, 149.5), abs=1.0)


def test_a_pixel_passes_on_its_particle_probability_alone():
    # unlike Warp, which also wants the particle class to win: at a threshold under 0.5 a
    # faint particle where background still wins is picked
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4, value=0.42)
    assert pick(probabilities, DIAMETER, threshold=0.3).x.tolist() == pytest.approx(
        [100.0], abs=0.5
    )
    assert len(pick(probabilities, DIAMETER, threshold=0.5).x) == 0


def test_position_is_the_centroid_of_the_passing_probability_near_the_peak():
    probabilities = _maps()
    y, x = np.mgrid[:200, :200]
    core = (np.abs(y - 100) <= 1) & (x >= 96) & (x <= 104)  # a bar, brightest at its left end
    probabilities[1][core] = 0.9 - 0.02 * (x[core] - 96)
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER, threshold=0.5)
    assert len(result.x) == 1
    peak_x = 96 + 1  # smoothing moves the peak a little into the bar
    assert result.x[0] > peak_x + 1  # pulled to the bar's middle by the centroid
    assert result.y[0] == pytest.approx(100.0, abs=0.01)


def test_score_ignores_a_brighter_pixel_beyond_an_eighth_of_the_diameter():
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4, value=0.8)
    probabilities[1, 100, 104] = 0.95  # 4 px = D/5 from the peak: outside D/8
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER, threshold=0.5)
    assert result.score.tolist() == pytest.approx([0.8], abs=1e-6)


def test_a_nan_pixel_does_not_remove_a_particle():
    probabilities = _maps()
    _blob(probabilities, 100, 100, radius=4)
    probabilities[:, 101, 101] = np.nan
    result = pick(probabilities, DIAMETER)
    assert result.x.tolist() == pytest.approx([100.0], abs=0.5)


def test_two_cores_on_a_diagonal_are_two_picks():
    # flat cores 0.6 D apart at 45°: their maxima must not be taken for one plateau
    probabilities = _maps()
    y, x = np.mgrid[:200, :200]
    for centre in (96.0, 104.5):
        core = np.hypot(y - centre, x - centre) <= 7
        probabilities[1][core] = 0.99
    probabilities[0] = 1 - probabilities[1]
    result = pick(probabilities, DIAMETER, threshold=0.3)
    assert len(result.x) == 2


def test_suppress_close_keeps_points_exactly_at_the_distance():
    x, y = np.array([0.0, 10.0, 19.0]), np.zeros(3)
    assert suppress_close(x, y, np.array([3.0, 2.0, 1.0]), 10.0).tolist() == [0, 1]


def _noisy_maps(seed: int, shape=(160, 160)):
    """Particles of varied strength, some touching, on a noisy background."""
    rng = np.random.default_rng(seed)
    probabilities = _maps(shape)
    for _ in range(25):
        cy, cx = rng.uniform(10, shape[0] - 10, 2)
        _blob(probabilities, cy, cx, radius=int(rng.integers(2, 6)), value=rng.uniform(0.2, 1.0))
    probabilities[1] = np.clip(probabilities[1] + rng.normal(0, 0.05, shape), 0, 1)
    probabilities[0] = 1 - probabilities[1]
    return probabilities


@pytest.mark.parametrize("seed", range(5))
def test_a_higher_threshold_keeps_a_subset_of_the_picks(seed):
    # what a display threshold over saved picks shows is what picking at it gives
    probabilities = _noisy_maps(seed)
    low = pick(probabilities, DIAMETER, threshold=0.3)
    for threshold in (0.4, 0.5, 0.7, 0.9):
        high = pick(probabilities, DIAMETER, threshold=threshold)
        kept = low.score >= threshold
        np.testing.assert_array_equal(high.x, low.x[kept])
        np.testing.assert_array_equal(high.score, low.score[kept])


def test_of_two_close_peaks_the_higher_score_wins_at_every_threshold():
    # a wide core (the stronger smoothed evidence) and, within D/2, a narrow brighter one
    probabilities = _maps()
    _blob(probabilities, 100, 96, radius=5, value=0.9)
    probabilities[1, 100, 104:106] = 0.97
    probabilities[0] = 1 - probabilities[1]
    for threshold in (0.5, 0.95):
        result = pick(probabilities, DIAMETER, threshold=threshold)
        assert result.score.tolist() == pytest.approx([0.97])


def test_pick_at_each_is_pick_at_each_threshold():
    probabilities = _noisy_maps(7)
    thresholds = (0.05, 0.1, 0.3, 0.62, 0.9)
    shared = pick_at_each(probabilities, DIAMETER, thresholds)
    assert list(shared) == list(thresholds)
    for threshold in thresholds:
        alone = pick(probabilities, DIAMETER, threshold=threshold)
        np.testing.assert_array_equal(shared[threshold].x, alone.x)
        np.testing.assert_array_equal(shared[threshold].y, alone.y)
        np.testing.assert_array_equal(shared[threshold].score, alone.score)
