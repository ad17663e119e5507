"""Retraining step time: the fine-tuning form against every layer and batch norm trained.

``boxnet-tui train`` retrains its base in :func:`~boxnet_tui.model.network.fine_tuning_form`
(batch norms folded into their convolutions, stem and first stage frozen); before, it trained
every parameter with batch norms in training mode. Both run here side by side, in alternating
rounds in one process, through the real training loop (crop sampling included) with the run
defaults (batch 8, 256² crops) from the same base model. Prints seconds an iteration, the
ratio, and the projected time of Warp's 400 iterations (4 micrographs).

    python benchmarks/bench_fine_tuning.py [--base BoxNetMask] [--rounds 3] [--steps 6]
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import numpy as np
import torch

from boxnet_tui.model.network import fine_tuning_form
from boxnet_tui.model.store import load_model
from boxnet_tui.training.labels import Example
from boxnet_tui.training.loop import train
from boxnet_tui.training.run_config import RunConfig


def examples(count: int, size: int, seed: int = 0) -> list[Example]:
    """Noise images with 1 % particle pixels: the step time does not depend on the content."""
    rng = np.random.default_rng(seed)
    return [
        Example(
            rng.normal(size=(size, size)).astype(np.float32),
            (rng.random((size, size)) < 0.01).astype(np.uint8),
            np.ones((size, size), np.float32),
        )
        for _ in range(count)
    ]


def seconds_an_iteration(network, data: list[Example], steps: int) -> float:
    defaults = RunConfig(name="Bench", folder=".", positives="")
    config = replace(defaults.train_config(steps + 1), log_every=1)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_log(line) -> None:
        now = time.perf_counter()
        if line.iteration > 1:  # the first step warms oneDNN's caches
            times.append(now - last[0])
        last[0] = now

    train(network, data, None, config, on_log=on_log)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="BoxNetMask")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--size", type=int, default=512, help="example side in px (512)")
    args = parser.parse_args()

    base, _ = load_model(args.base, "cpu")
    data = examples(4, args.size)
    ways = {
        "every layer, batch norms training": lambda: copy.deepcopy(base),
        "fine-tuning form": lambda: fine_tuning_form(copy.deepcopy(base)),
    }
    measured: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, make in ways.items():
            torch.manual_seed(0)
            measured[name].append(seconds_an_iteration(make(), data, args.steps))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; base {args.base}; "
        f"{args.rounds} alternating rounds of {args.steps} iterations, batch 8, crop 256"
    )
    old, new = (float(np.median(values)) for values in measured.values())
    for (name, values), median in zip(measured.items(), (old, new), strict=True):
        rounds = " ".join(f"{v:.3f}" for v in values)
        print(f"  {name:36s} {median:.3f} s an iteration ({rounds}); 400 in {400 * median:.0f} s")
    print(f"ratio fine-tuning form / every layer: {new / old:.2f}")


if __name__ == "__main__":
    main()
