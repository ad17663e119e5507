"""The generic models' recipe: diameter-scaled examples of every synthetic family, and a short
training that already finds small and large particles alike."""

from __future__ import annotations

import numpy as np
import pytest

from boxnet_tui.evaluate import score_picks
from boxnet_tui.imaging import prepare_for_network
from boxnet_tui.io.star import Picks
from boxnet_tui.model.inference import predict_probabilities
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.picking import pick
from boxnet_tui.synth import make_micrograph
from boxnet_tui.training.generic import GENERIC_SCALE, synthetic_examples, without_junk
from boxnet_tui.training.labels import JUNK, PARTICLE, diameter_from_labels
from boxnet_tui.training.loop import TrainConfig, train


def test_synthetic_examples_show_every_size_at_one_size_in_pixels():
    examples, items = synthetic_examples(4, 40, diameter_range=(60.0, 500.0))
    assert len(examples) == len(items) == 4
    for example, item in zip(examples, items, strict=True):
        assert example.image.shape == example.label.shape == example.importance.shape
        # 28-45 simulated diameters a side, 20 px a stated (visible) diameter
        assert 28 * 20 * 0.8 < max(example.image.shape) < 45 * 20 / 0.75 * 1.2
        assert (example.label == PARTICLE).any()
        # discs a quarter of the particle radius: 20 px across -> 2.5 px radius
        found = diameter_from_labels(example.label, item.pixel_size)
        assert found == pytest.approx(item.diameter, rel=0.35)
        assert len(item.reference) > 0
    assert all((e.label != JUNK).all() for e in without_junk(examples))


def _f1(network: BoxNet, diameter: float, seed: int) -> float:
    pixel = diameter / 30  # the micrograph shows the particle 30 px across
    # particles at least as visible as those of a real protein one picks: faint ones test
    # the dose, not the scale (synth.particle_visibility; bench_families --min-visibility)
    synthetic = make_micrograph(
        1024, pixel, diameter, seed=seed, protein_seed=seed, min_visibility=1.5
    )
    network_pixel = GENERIC_SCALE.pixel_size(diameter)
    image, factor = prepare_for_network(
        synthetic.image,
        pixel,
        target_pixel_size=network_pixel,
        highpass_angstrom=GENERIC_SCALE.highpass(diameter),
        lowpass_px=GENERIC_SCALE.lowpass_px,
        normalisation=GENERIC_SCALE.normalisation,
    )
    probabilities = predict_probabilities(network, image)
    result = pick(probabilities, diameter, 0.5, pixel_size=factor * pixel)
    picks = result.to_micrograph(factor)
    border = 0.8 * diameter / pixel  # the picker drops peaks this close to the edge
    keep = (
        (synthetic.picks.x > border)
        & (synthetic.picks.x < 1024 - border)
        & (synthetic.picks.y > border)
        & (synthetic.picks.y < 1024 - border)
    )
    reference = Picks(synthetic.picks.x[keep], synthetic.picks.y[keep])
    return score_picks(picks, reference, diameter / pixel / 2).f1


@pytest.mark.slow
def test_a_short_training_of_the_recipe_finds_small_and_large_particles():
    import torch

    torch.manual_seed(0)
    # the recipe's BoxNet (no junk class): in 500 iterations, learning the junk class (carbon
    # takes up to a third of a micrograph) would take the whole budget and find nothing
    examples = without_junk(synthetic_examples(6, 7, diameter_range=(100.0, 300.0))[0])
    network = BoxNet(Architecture(widths=(8, 16, 32, 32)))
    config = TrainConfig(
        iterations=500, batch_size=4, crop=96, lr=3e-3, seed=0, log_every=50, mosaic=False
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores: OpenMP's spinning slows a small net
    try:
        train(network, examples, None, config)
    finally:
        torch.set_num_threads(threads)
    # trained on 100-300 Å only, it finds 100 Å and 480 Å particles: the scale is the input's
    small, large = _f1(network.eval(), 100.0, 3), _f1(network, 480.0, 4)
    assert small > 0.6 and large > 0.6, (small, large)
    assert np.isfinite(small + large)
