"""A retraining step's time by crop size: each crop beside the retraining's own, one process.

Steps of the training loop itself (``loop.train`` with the retraining's settings, crop
sampling and augmentation included), on the shipped BoxNetMask, short runs of each crop size
alternating (in reverse order every other round, so that neither leads),
from examples of the size a retraining makes (1068²: beta-galactosidase's micrographs at 28 px
a diameter; 512²: the ribosome's). Prints the median step of each crop and its ratio to the
retraining's crop (``RunConfig.crop``). Content does not change the time: the examples are
noise with a particle disc every 40 px.

    python benchmarks/bench_train_step.py [--crops 160 192 256] [--size 1068] [--rounds 4]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from boxnet_tui.model.store import load_model
from boxnet_tui.training.labels import Example, paint_discs
from boxnet_tui.training.loop import TrainConfig, make_optimizer, train
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


def seconds_a_step(network, examples: list[Example], config: TrainConfig, optimizer) -> list:
    """The steps of one short run of the training loop itself, timed between its log lines
    (the first left out: it holds the run's set-up)."""
    times, last = [], [time.perf_counter()]

    def on_log(line) -> None:
        now = time.perf_counter()
        if line.iteration > 1:
            times.append(now - last[0])
        last[0] = now

    train(network, examples, None, config, optimizer=optimizer, on_log=on_log)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, nargs="+", default=[160, 192, 256])
    parser.add_argument("--size", type=int, default=1068, help="example side, px (1068)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of 3 steps a crop (4)")
    args = parser.parse_args()
    defaults = RunConfig("x", "f", "p")
    reference = defaults.crop
    crops = sorted({*args.crops, reference})
    network, _ = load_model("BoxNetMask")
    examples = examples_of(args.size)
    optimizer = make_optimizer(network, defaults.train_config(4))
    times: dict[int, list[float]] = {crop: [] for crop in crops}
    for round_ in range(args.rounds):
        for crop in crops if round_ % 2 == 0 else crops[::-1]:
            config = replace(defaults.train_config(4), crop=crop, log_every=1)
            times[crop] += seconds_a_step(network, examples, config, optimizer)
    medians = {crop: float(np.median(values)) for crop, values in times.items()}
    print(
        f"retraining step, batch {defaults.batch_size}, {args.size}² examples, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; median of "
        f"{len(times[reference])} each"
    )
    for crop in crops:
        mark = "  (the retraining's crop)" if crop == reference else ""
        ratio = medians[crop] / medians[reference]
        print(f"  crop {crop:4d} px: {medians[crop]:.3f} s, {ratio:.2f}x{mark}")


if __name__ == "__main__":
    main()
