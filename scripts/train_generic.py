"""Train the generic models shipped in the package: BoxNetMask, then BoxNet.

Data: synthetic micrographs (boxnet_tui.synth: many pixel sizes, diameters, junk) and the real
beta-galactosidase micrographs of ../shared/data/empiar-10017 with their manual picks, less the
held-out ones (reported on, never trained on) and one whose labels miss many particles.
Batches alternate 1:1 between real and synthetic examples. BoxNetMask learns junk from the
synthetic junk masks; BoxNet is BoxNetMask fine-tuned with junk labelled as background.

    python scripts/train_generic.py [--iterations 3000] [--out boxnet_tui/models]

Writes <out>/BoxNetMask and <out>/BoxNet (refusing to overwrite: delete them first) and prints
the runtime. The command and runtime of the shipped weights are in README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from boxnet_tui.io import layout
from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.io.micrographs import read_micrograph, scan_folder
from boxnet_tui.io.star import Picks, read_picks
from boxnet_tui.model.calibration import CalibrationItem, calibrate_threshold
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import MODEL_JSON, ModelInfo, load_model, save_model
from boxnet_tui.synth import junk_mask_8a, make_micrograph
from boxnet_tui.training.labels import JUNK, Example, make_example
from boxnet_tui.training.loop import LogLine, TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "empiar-10017"
HELD_OUT = (
    "Falcon_2012_06_12-14_33_35_0",
    "Falcon_2012_06_12-15_43_48_0",
    "Falcon_2012_06_12-16_59_12_0",
)
INCOMPLETE_LABELS = ("Falcon_2012_06_12-15_07_41_0",)
REAL_DIAMETER, REAL_BORDER = 190.0, 65.0


def real_examples(folder: Path) -> tuple[list[Example], list[CalibrationItem]]:
    examples, items = [], []
    for path in scan_folder(folder):
        if path.stem in HELD_OUT or path.stem in INCOMPLETE_LABELS:
            continue
        star = layout.pick_path(folder, path.stem, "manual")
        if not star.is_file():
            continue
        micrograph = read_micrograph(path)
        picks = read_picks(star)
        example = make_example(
            micrograph.data,
            micrograph.pixel_size,
            picks,
            REAL_DIAMETER,
            ignore_border=REAL_BORDER,
            name=path.stem,
        )
        examples.append(example)
        scale = micrograph.data.shape[1] / example.image.shape[1]
        items.append(
            CalibrationItem(
                example.image,
                Picks(picks.x / scale, picks.y / scale),
                REAL_DIAMETER,
                REAL_BORDER / scale,
            )
        )
    return examples, items


def synthetic_examples(count: int, seed: int) -> tuple[list[Example], list[CalibrationItem]]:
    rng = np.random.default_rng(seed)
    examples, items = [], []
    for index in range(count):
        pixel_size = float(rng.uniform(0.9, 2.6))
        diameter = float(rng.uniform(90, 350))
        size = int(rng.choice([1536, 2048, 3072]))
        size = min(size, int(900 * 8 / pixel_size))  # about 900 px at 8 Å/px at most
        synthetic = make_micrograph(
            size, pixel_size, diameter, seed=seed * 1000 + index, protein_seed=seed * 1000 + index
        )
        example = make_example(
            synthetic.image,
            synthetic.pixel_size,
            synthetic.picks,
            diameter,
            junk=junk_mask_8a(synthetic.junk, synthetic.pixel_size),
            name=f"synth_{index}",
        )
        examples.append(example)
        scale = synthetic.image.shape[1] / example.image.shape[1]
        items.append(
            CalibrationItem(
                example.image,
                Picks(synthetic.picks.x / scale, synthetic.picks.y / scale),
                diameter,
            )
        )
    return examples, items


def without_junk(examples: list[Example]) -> list[Example]:
    out = []
    for example in examples:
        label = example.label.copy()
        label[label == JUNK] = 0
        out.append(Example(example.image, label, example.importance, example.name))
    return out


def calibrate(network: BoxNet, items: list[CalibrationItem], device: str) -> float:
    threshold, f1 = calibrate_threshold(network, items, device=device)
    print(
        f"calibrated threshold {threshold:.2f} (F1 {f1:.3f} on {len(items)} training micrographs)"
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
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--finetune-iterations", type=int, default=600)
    parser.add_argument("--synthetic", type=int, default=48, help="synthetic micrographs")
    parser.add_argument("--crop", type=int, default=192)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "boxnet_tui" / "models")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--calibrate-only", action="store_true", help="only re-calibrate the models in --out"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    real, real_items = real_examples(REAL)
    synthetic, synthetic_items = synthetic_examples(args.synthetic, args.seed)
    took = time.perf_counter() - start
    print(f"{len(real)} real and {len(synthetic)} synthetic examples ({took:.0f} s)")
    # calibrate on all real training micrographs and as many synthetic ones
    items = real_items + synthetic_items[: len(real_items)]
    if args.calibrate_only:
        for name in ("BoxNetMask", "BoxNet"):
            calibrate_saved(args.out / name, items, args.device)
        return

    def log(line: LogLine) -> None:
        print(
            f"it {line.iteration:5d}  real {line.loss_new:.4f}  synth {line.loss_old or 0:.4f}  "
            f"lr {line.lr:.2e}  {line.time:.0f} s",
            flush=True,
        )

    architecture = Architecture()
    network = BoxNet(architecture)
    config = TrainConfig(iterations=args.iterations, crop=args.crop, seed=args.seed, log_every=50)
    train(network, real, synthetic, config, device=args.device, on_log=log)
    summary = {
        "real": sorted(e.name for e in real),
        "held_out": list(HELD_OUT),
        "synthetic": len(synthetic),
        "iterations": args.iterations,
        "command": "python scripts/train_generic.py",
    }
    threshold = calibrate(network.eval(), items, args.device)
    save_model(
        network.cpu(),
        ModelInfo("BoxNetMask", architecture, has_mask=True, threshold=threshold, training=summary),
        args.out,
    )
    print(f"BoxNetMask saved ({time.perf_counter() - start:.0f} s)")

    finetune = TrainConfig(
        iterations=args.finetune_iterations,
        crop=args.crop,
        lr=3e-4,
        seed=args.seed + 1,
        log_every=50,
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
        ),
        args.out,
    )
    print(f"BoxNet saved; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
