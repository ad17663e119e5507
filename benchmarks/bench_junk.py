"""How well does a model mask junk? Its junk mask against the truth, side by side.

Simulates micrographs of the generic training recipe (``synth.training_micrograph``: carbon,
contamination, aggregates, every input style) from seeds no training or calibration uses,
keeps those whose junk covers at least ``--min-junk`` of the image, and runs each model on
them through the same preparation as ``boxnet-tui pick`` (the model's own scale and
normalisation). Scored at the model's input pixels: the junk mask the picker uses
(``picking.junk_mask``) against the true junk (intersection over union, and the share of
true junk found), the picks that land on true junk, and particle F1 on the interior. A
network that sees less around each pixel can pick as well and mask worse: the particle
benchmarks (``bench_families.py`` has no carbon) do not show it. Synthetic figures are for
development.

    python benchmarks/bench_junk.py --model BoxNetMask [--model DIR/BoxNetMask] [--count 24]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_families import run_model  # the same preparation, picking and scoring

from boxnet_tui.model.store import load_model
from boxnet_tui.picking import junk_mask, junk_wins
from boxnet_tui.synth import TrainingMicrograph, training_micrograph
from boxnet_tui.training.labels import JUNK

SEED = 6_660_000  # micrographs of this benchmark only


class Tally:
    """One model's sums over the micrographs."""

    def __init__(self) -> None:
        self.overlap = self.union = self.true_junk = 0
        self.picks_on_junk = self.picks = 0
        self.f1: list[float] = []

    def add(
        self, found: np.ndarray, truth: np.ndarray, on_junk: int, picks: int, f1: float
    ) -> None:
        self.overlap += int((found & truth).sum())
        self.union += int((found | truth).sum())
        self.true_junk += int(truth.sum())
        self.picks_on_junk += on_junk
        self.picks += picks
        self.f1.append(f1)

    def row(self) -> str:
        iou = self.overlap / max(1, self.union)
        found = self.overlap / max(1, self.true_junk)
        return (
            f"{iou:9.3f}  {found:10.3f}  {self.picks_on_junk:5d} of {self.picks:6d}"
            f"  {np.mean(self.f1):6.3f}"
        )


def score_one(models: list, synthetic: TrainingMicrograph, tallies: list[Tally]) -> None:
    for (network, info), tally in zip(models, tallies, strict=True):
        run = run_model(
            network,
            info,
            synthetic.image,
            synthetic.pixel_size,
            synthetic.picks,
            synthetic.diameter,
            junk=synthetic.junk,
        )
        truth = run.example.label == JUNK
        rows = np.clip(np.round(run.result.y).astype(int), 0, truth.shape[0] - 1)
        cols = np.clip(np.round(run.result.x).astype(int), 0, truth.shape[1] - 1)
        found = junk_mask(junk_wins(run.probabilities))
        tally.add(found, truth, int(truth[rows, cols].sum()), len(rows), run.f1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model name or folder (repeatable)")
    parser.add_argument("--count", type=int, default=24, help="micrographs with junk (24)")
    parser.add_argument(
        "--min-junk", type=float, default=0.02, help="least share of junk a micrograph has"
    )
    args = parser.parse_args()
    if args.count < 1 or not 0 <= args.min_junk < 0.5:
        parser.error("--count must be 1 or more and --min-junk from 0 to under 0.5")
    names = args.model or ["BoxNetMask"]
    models = [load_model(name, "cpu") for name in names]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; models:")
    for index, (name, (_, info)) in enumerate(zip(names, models, strict=True)):
        print(f"  [{index}] {name}: threshold {info.threshold}, {info.scale}")
    tallies = [Tally() for _ in models]
    used, seed = 0, SEED
    while used < args.count:
        if seed - SEED >= 50 * args.count:  # bounded: a large share may be rare
            parser.error(f"only {used} micrographs with {args.min_junk:.0%} junk in {seed - SEED}")
        synthetic = training_micrograph(seed)
        if synthetic.junk.mean() >= args.min_junk:
            score_one(models, synthetic, tallies)
            used += 1
        seed += 1
    print(f"{used} micrographs with junk on at least {args.min_junk:.0%} of the image")
    print("model   junk IoU  junk found  picks on junk       F1")
    for index, tally in enumerate(tallies):
        print(f"[{index}]  {tally.row()}")


if __name__ == "__main__":
    main()
