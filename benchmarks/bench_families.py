"""Which particles does a model miss? F1 per synthetic family, size and packing, side by side.

Simulates micrographs of proteins no model was trained on (seeds outside every training and
calibration range) for each family of the generator, at a few diameters and coverages (sparse
to touching), plain float micrographs without carbon, the particle 40 px across; picks them
through the same preparation as ``boxnet-tui pick`` (the model's own scale and normalisation)
and scores within half a diameter on the interior. The picker is told each protein's visible
diameter, as a user states what they see (``synth.stated_diameter``: the training recipe's
three quarters of the simulated diameter for a typical protein, more for a hollow shell), or
with ``--stated simulated`` the simulated one, about a third larger (the figures before stop
30). Several models run on the same micrographs,
so the figures compare recipes. Synthetic figures are for development: the figures that matter
are on real data (``bench_generalise.py``).

    python benchmarks/bench_families.py --model BoxNetMask [--model DIR/BoxNetMask] \
        [--families blobs shell] [--diameters 90 130 250 400] [--coverages 0.2 0.45] [--count 2] \
        [--dose 9 27] [--min-visibility 1.5] [--stated simulated]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch

from boxnet_tui.batch_picking import default_threshold
from boxnet_tui.evaluate import inside, score_picks
from boxnet_tui.io.star import Picks
from boxnet_tui.model.calibration import item_for_example
from boxnet_tui.model.inference import predict_probabilities
from boxnet_tui.model.store import ModelInfo, load_model
from boxnet_tui.picking import PickResult, pick
from boxnet_tui.synth import DOSE_PER_A2, FAMILIES, make_micrograph, stated_diameter
from boxnet_tui.training.labels import Example, make_example

SEED = 5_550_000  # micrographs and proteins of this benchmark only
SIDE = 1200  # px of the simulated micrograph
PARTICLE_PX = 40  # the particle's diameter in micrograph pixels


def f1_on(
    models: list,
    family: str,
    diameter: float,
    coverage: float,
    index: int,
    dose: tuple[float, float] = DOSE_PER_A2,
    min_visibility: float | None = None,
    stated: str = "visible",
) -> list[float]:
    pixel = diameter / PARTICLE_PX
    protein_seed = SEED + 500_000 + 1000 * index + FAMILIES.index(family)
    synthetic = make_micrograph(
        shape=(SIDE, SIDE),
        pixel_size=pixel,
        diameter=diameter,
        seed=SEED + 1000 * index + int(diameter),
        protein_seed=protein_seed,
        family=family,
        coverage=coverage,
        carbon_probability=0.0,
        dose_range=dose,
        min_visibility=min_visibility,
    )
    if stated == "visible":
        diameter = stated_diameter(diameter, family, protein_seed)
    return [
        run_model(network, info, synthetic.image, pixel, synthetic.picks, diameter).f1
        for network, info in models
    ]


@dataclass
class ModelRun:
    """One model on one synthetic micrograph, at the model's input pixels."""

    example: Example  # the micrograph as the model sees it, labels included
    probabilities: np.ndarray  # (3, H, W)
    result: PickResult  # picks at the model's default threshold
    f1: float  # within half a diameter on the interior


def run_model(
    network: torch.nn.Module,
    info: ModelInfo,
    image: np.ndarray,
    pixel_size: float,
    picks: Picks,
    diameter: float,
    junk: np.ndarray | None = None,
) -> ModelRun:
    """The model on a micrograph through the same preparation as ``boxnet-tui pick`` (its own
    scale and normalisation), picked at its default threshold and scored."""
    example = make_example(image, pixel_size, picks, diameter, junk=junk, scale=info.scale)
    network_pixel = info.scale.pixel_size(diameter)
    item = item_for_example(example, image.shape, picks, diameter, network_pixel)
    probabilities = predict_probabilities(network, item.image)
    radius = diameter / 2 / network_pixel
    border = 1.6 * radius  # Warp's border rule: 0.8 D
    reference = inside(item.reference, item.image.shape, border)
    threshold = default_threshold(info)
    result = pick(probabilities, diameter, threshold, pixel_size=network_pixel)
    found = inside(Picks(result.x, result.y, result.score), item.image.shape, border)
    return ModelRun(example, probabilities, result, score_picks(found, reference, radius).f1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model name or folder (repeatable)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--diameters", nargs="+", type=float, default=[90, 130, 250, 400])
    parser.add_argument("--coverages", nargs="+", type=float, default=[0.2, 0.45])
    parser.add_argument("--count", type=int, default=2, help="micrographs per cell")
    parser.add_argument(
        "--dose",
        nargs=2,
        type=float,
        default=list(DOSE_PER_A2),
        metavar=("LOW", "HIGH"),
        help="effective e/Å² (the generator's default): small hollow or thin particles are "
        "barely above the shot noise at the default, so their F1 says more about the dose "
        "than about the model; 30 45 is a 40-60 e/Å² exposure on a counting detector",
    )
    parser.add_argument(
        "--min-visibility",
        type=float,
        help="raise each micrograph's dose until its particles are at least this visible "
        "(synth.particle_visibility: 1.3 for 130 Å blobs and 1.8 for 250 Å shells at the "
        "default dose, 0.45-0.9 for 90-130 Å shells, rings, rods and plates): F1 on "
        "particles one can see, whatever their kind",
    )
    parser.add_argument(
        "--stated",
        choices=["visible", "simulated"],
        default="visible",
        help="the diameter the picker is told: the protein's visible one "
        "(synth.stated_diameter) or the simulated one, about a third larger",
    )
    args = parser.parse_args()
    names = args.model or ["BoxNetMask"]
    models = [load_model(name, "cpu") for name in names]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; models at their own "
        "default thresholds:"
    )
    for index, (name, (_, info)) in enumerate(zip(names, models, strict=True)):
        print(f"  [{index}] {name}: threshold {info.threshold}, {info.scale}")
    header = "family    D (Å)  coverage  " + "  ".join(f"F1 [{i}]" for i in range(len(models)))
    print(header)
    totals: list[list[float]] = [[] for _ in models]
    for family in args.families:
        for diameter in args.diameters:
            if family == "ribosome" and diameter < 200:
                continue  # the generator's ribosomes are 200 Å and more
            for coverage in args.coverages:
                cells = np.mean(
                    [
                        f1_on(
                            models,
                            family,
                            diameter,
                            coverage,
                            i,
                            tuple(args.dose),
                            args.min_visibility,
                            args.stated,
                        )
                        for i in range(args.count)
                    ],
                    axis=0,
                )
                for total, value in zip(totals, cells, strict=True):
                    total.append(float(value))
                row = "  ".join(f"{value:6.2f}" for value in cells)
                print(f"{family:9s} {diameter:5.0f}  {coverage:8.2f}  {row}", flush=True)
    print("mean                       " + "  ".join(f"{np.mean(t):6.3f}" for t in totals))


if __name__ == "__main__":
    main()
