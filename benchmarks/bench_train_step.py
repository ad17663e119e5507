"""A retraining step's time by crop size: each crop beside the retraining's own, one process.

One step as ``boxnet-tui train`` takes it (``sample_batch`` with its augmentation and particle-
centred crops, forward, the weighted loss, backward, AdamW), on the shipped BoxNetMask, batch
8, the crop sizes alternating (in reverse order every other round, so that neither leads),
from examples of the size a retraining makes (1068²: beta-galactosidase's micrographs at 28 px
a diameter; 512²: the ribosome's). Prints the median step of each crop and its ratio to the
retraining's crop (``RunConfig.crop``). Content does not change the time: the examples are
noise with a particle disc every 40 px.

    python benchmarks/bench_train_step.py [--crops 160 192 256] [--size 1068] [--rounds 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from boxnet_tui.model.store import load_model
from boxnet_tui.training.augment import sample_batch
from boxnet_tui.training.labels import Example, class_weights, paint_discs
from boxnet_tui.training.loop import TrainConfig, make_optimizer, weighted_loss
from boxnet_tui.training.run_config import RunConfig


def examples_of(size: int, count: int = 4) -> list[Example]:
    rng = np.random.default_rng(0)
    centres = np.arange(20, size - 20, 40, dtype=float)
    x, y = (grid.ravel() for grid in np.meshgrid(centres, centres))
    label = paint_discs((size, size), x, y, 3.5).astype(np.uint8)
    return [
        Example(
            rng.normal(size=(size, size)).astype(np.float32),
            label,
            np.ones((size, size), np.float32),
            f"noise{i}",
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, nargs="+", default=[160, 192, 256])
    parser.add_argument("--size", type=int, default=1068, help="example side, px (1068)")
    parser.add_argument("--rounds", type=int, default=12, help="steps of each crop (12)")
    args = parser.parse_args()
    reference = RunConfig("x", "f", "p").crop
    crops = sorted({*args.crops, reference})
    network, _ = load_model("BoxNetMask")
    network.train()
    optimizer = make_optimizer(network, TrainConfig())
    examples = examples_of(args.size)
    weights = torch.from_numpy(np.asarray(class_weights(examples), np.float32))
    rng = np.random.default_rng(0)
    times: dict[int, list[float]] = {crop: [] for crop in crops}
    warm = 2
    for round_ in range(args.rounds + warm):
        for crop in crops if round_ % 2 == 0 else crops[::-1]:
            start = time.perf_counter()
            image, label, importance = sample_batch(examples, 8, crop, rng, particle_fraction=0.3)
            image = image.contiguous(memory_format=torch.channels_last)
            loss = weighted_loss(network(image), label, importance, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if round_ >= warm:
                times[crop].append(time.perf_counter() - start)
    medians = {crop: float(np.median(values)) for crop, values in times.items()}
    print(
        f"retraining step, batch 8, {args.size}² examples, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of {args.rounds} each"
    )
    for crop in crops:
        mark = "  (the retraining's crop)" if crop == reference else ""
        ratio = medians[crop] / medians[reference]
        print(f"  crop {crop:4d} px: {medians[crop]:.3f} s, {ratio:.2f}x{mark}")


if __name__ == "__main__":
    main()
