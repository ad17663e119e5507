"""The generic models' recipe: examples from synthetic micrographs and from real ones.

Used by ``scripts/train_generic.py`` (which makes the shipped models) and by the tests, which
train the same recipe for a few iterations. Every example is at the diameter-scaled input
(``GENERIC_SCALE``), so particles of 60 Å and of 500 Å look alike in size to the network.
"""

from __future__ import annotations

import numpy as np

from boxnet_tui.imaging import DEFAULT_PIXELS_PER_DIAMETER, NetworkScale
from boxnet_tui.model.calibration import CalibrationItem, item_for_example
from boxnet_tui.model.info import Architecture
from boxnet_tui.training.labels import Example, junk_as_background, make_example

GENERIC_SCALE = NetworkScale(DEFAULT_PIXELS_PER_DIAMETER, normalisation="percentile")
# the shipped models' network, scripts/train_generic.py's default: a strided stem and four
# stages from half resolution on. Against the full-resolution 8-16-32-64-128 (Architecture()'s
# default, the shipped shape before): the same real F1 never seen within a run's spread
# (two runs: ribosome 0.837, 0.837 against 0.838; beta-galactosidase 0.838, 0.806 against
# 0.806-0.821), picking 0.58x the time, a training step 0.48x (README)
GENERIC_ARCHITECTURE = Architecture(widths=(16, 32, 64, 128), stem_stride=2)
# Synthetic particles seen at 20 px a diameter are far cleaner than real ones (whose noise
# is also ice, detector and upstream processing): white noise of this many standard deviations
# of the image (log-uniform) is added before the example is normalised again. Measured: without
# it the leave-one-protein-out model found 12 of 865 real ribosomes.
NOISE_RANGE = (0.2, 1.5)
_NOISE_TAG = 0x6E6F6973
# the unseen synthetic proteins a generic model's threshold is calibrated on (plus the
# training seed): never trained on
CALIBRATION_SEED = 9_000_000


def with_real_noise(
    example: Example,
    rng: np.random.Generator,
    noise_range: tuple[float, float] = NOISE_RANGE,
    normalisation: str = "mean-std",
) -> Example:
    """The example with white (or, one time in three, slightly correlated) noise added."""
    from scipy import ndimage

    from boxnet_tui.imaging import normalise

    sigma = float(np.exp(rng.uniform(np.log(noise_range[0]), np.log(noise_range[1]))))
    noise = rng.standard_normal(example.image.shape).astype(np.float32)
    if rng.random() < 1 / 3:
        noise = ndimage.gaussian_filter(noise, 0.7)
        noise /= noise.std()
    image = normalise(example.image + np.float32(sigma) * noise, normalisation)
    return Example(image, example.label, example.importance, example.name)


def synthetic_examples(
    count: int,
    first_seed: int,
    scale: NetworkScale = GENERIC_SCALE,
    *,
    diameter_range: tuple[float, float] = (60.0, 500.0),
) -> tuple[list[Example], list[CalibrationItem]]:
    """``count`` examples of :func:`boxnet_tui.synth.training_micrograph` from ``first_seed``
    on (every protein family, size, packing, junk and input style), with calibration items."""
    from boxnet_tui.synth import training_micrograph

    examples, items = [], []
    for seed in range(first_seed, first_seed + count):
        synthetic = training_micrograph(seed, diameter_range=diameter_range)
        example = make_example(
            synthetic.image,
            synthetic.pixel_size,
            synthetic.picks,
            synthetic.diameter,
            junk=synthetic.junk,
            name=f"synth_{seed}_{synthetic.family}_{synthetic.style}",
            scale=scale,
        )
        rng = np.random.default_rng([seed, _NOISE_TAG])
        example = with_real_noise(example, rng, normalisation=scale.normalisation)
        examples.append(example)
        network_pixel = scale.pixel_size(synthetic.diameter)
        shape = synthetic.image.shape
        items.append(
            item_for_example(example, shape, synthetic.picks, synthetic.diameter, network_pixel)
        )
    return examples, items


def without_junk(examples: list[Example]) -> list[Example]:
    """The examples with junk labelled as background (for a model without the junk class)."""
    return [junk_as_background(example) for example in examples]
