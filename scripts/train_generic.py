"""Train the generic models shipped in the package: BoxNetMask, then BoxNet.

The network's input is scaled by the particle diameter (``NetworkScale``: every particle is
``DEFAULT_PIXELS_PER_DIAMETER`` px across), so one model serves 60 Å and 500 Å proteins alike.

Data:
- synthetic micrographs from ``boxnet_tui.synth.training_micrograph``: proteins of six
  families (blobs, shells, rings, rods, plates, ribosome-like) from 60 to 500 Å, sparse to
  touching, with carbon, contamination, aggregates and broken particles, handed over as users
  do (float, int8/uint8/uint16, stretched, filtered, binned, gain gradients);
- the real proteins of ../shared/data (beta-galactosidase, 80S ribosome) with their manual
  picks, less the micrographs each protein holds out (recorded in ``model.json``, never
  trained on) and any whose labels miss many particles.

Batches are half real, half synthetic. BoxNetMask learns junk from the synthetic junk masks;
BoxNet is BoxNetMask fine-tuned with junk labelled as background. Each model's default
threshold is calibrated only on synthetic micrographs of proteins it never trained on, each
micrograph counting equally (the middle of the thresholds within ``PLATEAU`` of the best mean
F1): on its own training proteins the model is more confident than on a new one, and a
threshold tuned there cut the unseen protein's recall (leave-one-protein-out, beta-gal: F1
0.72 at the 0.82 that its training proteins chose, 0.80 at 0.3–0.6).

    python scripts/train_generic.py [--iterations 1500] [--out boxnet_tui/models]
    python scripts/train_generic.py --leave-out empiar-10028 --out DIR --mask-only
        # leave-one-protein-out: a model that never saw the ribosome (benchmarks/)

Writes <out>/BoxNetMask and <out>/BoxNet (refusing to overwrite: delete them first) and prints
the runtime. The command and runtime of the shipped weights are in README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from boxnet_tui.errors import UserError
from boxnet_tui.imaging import NetworkScale
from boxnet_tui.io import layout
from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.io.micrographs import read_micrograph, scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.model.calibration import PLATEAU, CalibrationItem, calibrate_threshold
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import MODEL_JSON, ModelInfo, load_model, save_model
from boxnet_tui.training.generic import (
    CALIBRATION_SEED,
    GENERIC_ARCHITECTURE,
    GENERIC_SCALE,
    synthetic_examples,
    without_junk,
)
from boxnet_tui.training.labels import Example, make_example
from boxnet_tui.training.loop import LogLine, TrainConfig, train
from boxnet_tui.training.real_proteins import PROTEINS, RealProtein

REPO = Path(__file__).resolve().parents[1]


# the architecture's fields that have a flag here (each flag is the field's name, dashed)
SHAPE_FIELDS = ("widths", "blocks_per_stage", "context_blocks", "stem_stride")
# a user's diameter is often off by a fifth or more: leave-one-protein-out, beta-gal stated
# 1.2x too large lost a tenth of its F1 with Warp's ±20 % size augmentation
SIZE_RANGE = (0.7, 1.4)


def real_examples(protein: RealProtein, scale: NetworkScale) -> list[Example]:
    """The protein's training examples: every labelled micrograph but the held-out and
    skipped ones."""
    examples = []
    for path in scan_folder(protein.path()):
        if path.stem in protein.held_out or path.stem in protein.skipped:
            continue
        star = layout.pick_path(protein.path(), path.stem, "manual")
        if not star.is_file():
            continue
        micrograph = read_micrograph(path)
        examples.append(
            make_example(
                micrograph.data,
                micrograph.pixel_size,
                read_picks(star),
                protein.diameter,
                ignore_border=protein.border,
                name=path.stem,
                scale=scale,
            )
        )
    return examples


def calibrate(network: BoxNet, items: list[CalibrationItem], device: str) -> float:
    threshold, f1 = calibrate_threshold(
        network, items, device=device, per_micrograph=True, tolerance=PLATEAU
    )
    print(
        f"calibrated threshold {threshold:.2f} (mean F1 {f1:.3f} on {len(items)} micrographs "
        "of unseen synthetic proteins)"
    )
    return threshold


def calibrate_saved(folder: Path, items: list[CalibrationItem], device: str) -> None:
    """Re-calibrate the threshold of an already trained model folder in place."""
    network, info = load_model(folder, device)
    info.threshold = calibrate(network, items, device)
    meta = json.loads((folder / MODEL_JSON).read_text())
    meta["threshold"] = info.threshold
    atomic_write_text(folder / MODEL_JSON, json.dumps(meta, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--finetune-iterations", type=int, default=300)
    parser.add_argument("--synthetic", type=int, default=320, help="synthetic micrographs")
    parser.add_argument(
        "--calibration", type=int, default=48, help="unseen synthetic micrographs to calibrate on"
    )
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument(
        "--size-range",
        type=float,
        nargs=2,
        default=SIZE_RANGE,
        metavar=("LOW", "HIGH"),
        help="particles look LOW..HIGH times their size in training crops",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(GENERIC_ARCHITECTURE.widths),
        help="channels of each U-Net stage, the finest first",
    )
    parser.add_argument(
        "--blocks-per-stage", type=int, default=GENERIC_ARCHITECTURE.blocks_per_stage
    )
    parser.add_argument(
        "--context-blocks",
        type=int,
        default=GENERIC_ARCHITECTURE.context_blocks,
        help="residual blocks of a coarse junk branch (0: none)",
    )
    parser.add_argument(
        "--stem-stride",
        type=int,
        default=GENERIC_ARCHITECTURE.stem_stride,
        help="2: the first convolution halves the input and the logits are upsampled (1: none)",
    )
    parser.add_argument(
        "--leave-out",
        action="append",
        default=[],
        choices=sorted(PROTEINS),
        help="a real protein not to train on (repeatable), for leave-one-protein-out",
    )
    parser.add_argument("--mask-only", action="store_true", help="BoxNetMask only, no BoxNet")
    parser.add_argument("--out", type=Path, default=REPO / "boxnet_tui" / "models")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--calibrate-only", action="store_true", help="only re-calibrate the models in --out"
    )
    args = parser.parse_args()
    try:  # checked as model.json's is: one line, before any example is made
        architecture = Architecture.from_json({key: getattr(args, key) for key in SHAPE_FIELDS})
    except UserError as error:
        parser.error(str(error))

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    scale = GENERIC_SCALE
    # calibration needs only the unseen synthetic micrographs: built first, and alone when
    # re-calibrating
    _, items = synthetic_examples(args.calibration, CALIBRATION_SEED + args.seed, scale)
    names = ("BoxNetMask",) if args.mask_only else ("BoxNetMask", "BoxNet")
    if args.calibrate_only:
        for name in names:
            calibrate_saved(args.out / name, items, args.device)
        return
    used = [PROTEINS[name] for name in sorted(PROTEINS) if name not in args.leave_out]
    real, real_names = [], {}
    for protein in used:
        examples = real_examples(protein, scale)
        real += examples
        real_names[protein.folder] = sorted(e.name for e in examples)
    synthetic, _ = synthetic_examples(args.synthetic, args.seed * 100_000, scale)
    took = time.perf_counter() - start
    print(f"{len(real)} real and {len(synthetic)} synthetic examples ({took:.0f} s)", flush=True)

    def log(line: LogLine) -> None:
        print(
            f"it {line.iteration:5d}  real {line.loss_new:.4f}  synth {line.loss_old or 0:.4f}  "
            f"lr {line.lr:.2e}  {line.time:.0f} s",
            flush=True,
        )

    network = BoxNet(architecture)
    size_range = tuple(args.size_range)
    config = TrainConfig(
        iterations=args.iterations,
        crop=args.crop,
        seed=args.seed,
        log_every=50,
        size_range=size_range,
        mosaic=False,
    )
    train(network, real, synthetic, config, device=args.device, on_log=log)
    command = "python scripts/train_generic.py" + "".join(
        f" --leave-out {name}" for name in args.leave_out
    )
    if architecture != GENERIC_ARCHITECTURE:  # every field, as its flag spells it
        for key in SHAPE_FIELDS:
            value = getattr(architecture, key)
            values = value if isinstance(value, tuple) else (value,)
            command += f" --{key.replace('_', '-')} " + " ".join(map(str, values))
    summary = {
        "real": real_names,
        "held_out": {p.folder: list(p.held_out) for p in used},
        "left_out": list(args.leave_out),
        "synthetic": len(synthetic),
        "iterations": args.iterations,
        "size_range": list(size_range),
        "command": command,
    }
    threshold = calibrate(network.eval(), items, args.device)
    save_model(
        network.cpu(),
        ModelInfo(
            "BoxNetMask",
            architecture,
            has_mask=True,
            threshold=threshold,
            training=summary,
            scale=scale,
        ),
        args.out,
    )
    print(f"BoxNetMask saved ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.mask_only:
        return

    finetune = TrainConfig(
        iterations=args.finetune_iterations,
        crop=args.crop,
        lr=3e-4,
        seed=args.seed + 1,
        log_every=50,
        size_range=size_range,
        mosaic=False,
    )
    train(network, real, without_junk(synthetic), finetune, device=args.device, on_log=log)
    summary = {**summary, "finetune_iterations": args.finetune_iterations}
    threshold = calibrate(network.eval(), items, args.device)
    save_model(
        network.cpu(),
        ModelInfo(
            "BoxNet",
            architecture,
            has_mask=False,
            threshold=threshold,
            parent="BoxNetMask",
            training=summary,
            scale=scale,
        ),
        args.out,
    )
    print(f"BoxNet saved; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
