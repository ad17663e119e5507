"""Does a generic model's calibration rule choose a good threshold for real proteins?

A generic model's default threshold is the middle of the near-best plateau of its mean F1 over
48 synthetic micrographs of proteins it never trained on (``scripts/train_generic.py``, each
micrograph counting equally). Some of those micrographs hold particles too faint to pick at
any threshold; they may pull the threshold down. For each model this prints the threshold the
rule chooses over all 48 and over only those whose best F1 reaches ``--min-best`` values, and
the F1 each threshold gives on real micrographs the model never trained on: held-out
beta-galactosidase at 4096² (``bench_pick.py``'s set), or every micrograph of a protein a
leave-one-out model never saw (``bench_generalise.py``'s set, scored the same way: within half
a diameter, on the interior). Each model picks each real micrograph once, at the lowest
threshold; the picks at a higher one are those that score as much (the threshold comes last).

    python benchmarks/bench_calibration.py --model BoxNetMask:held-out \\
        --model DIR/without-empiar-10028/BoxNetMask:empiar-10028 [--min-best 0.5 0.7]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from bench_generalise import PROTEINS, make_setup
from bench_pick import BORDER, DIAMETER, REAL, make_folder

from boxnet_tui.batch_picking import PickSettings, default_threshold, pick_folder
from boxnet_tui.evaluate import Score, inside, score_picks
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import read_info, scan_folder
from boxnet_tui.io.star import Picks, read_picks
from boxnet_tui.model.calibration import PLATEAU, THRESHOLDS, micrograph_scores, plateau_middle
from boxnet_tui.model.store import find_model, load_model
from boxnet_tui.paths import scratch_dir
from boxnet_tui.picking import WARP_BORDER
from boxnet_tui.training.generic import CALIBRATION_SEED, GENERIC_SCALE, synthetic_examples

HELD_OUT = "held-out"  # the model's held-out beta-galactosidase micrographs at 4096²
REAL_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.10, 0.99, 0.02))


def real_set(name: str, model: str, work: Path) -> tuple[Path, float, float]:
    """(folder, diameter Å, label border px) of the real micrographs to score ``model`` on."""
    folder = work / name
    if name == HELD_OUT:
        held_out = find_model(model).training.get("held_out") or {}
        roots = held_out.get(REAL.name, []) if isinstance(held_out, dict) else []
        if not roots:
            raise SystemExit(f"model {model} records no held-out {REAL.name} micrographs")
        if not folder.exists():
            (folder / layout.MATCHING).mkdir(parents=True)
            make_folder(folder, roots)
        return folder, DIAMETER, BORDER
    if name not in PROTEINS:
        raise SystemExit(f"unknown set {name!r}: {HELD_OUT} or one of {', '.join(PROTEINS)}")
    setup = make_setup(name, folder)
    return folder, setup.diameter, setup.label_border


def real_f1(
    model: str, folder: Path, diameter: float, label_border: float, suffix: str
) -> dict[float, Score]:
    """Pooled scores on the interior at each of REAL_THRESHOLDS, from one picking."""
    settings = PickSettings(diameter=diameter, threshold=REAL_THRESHOLDS[0])
    summary = pick_folder(folder, model, settings, suffix=suffix, device="cpu")
    assert not summary.errors, summary.errors
    totals = {t: Score(0, 0, 0) for t in REAL_THRESHOLDS}
    for path in scan_folder(folder):
        info = read_info(path)
        border = max(label_border, WARP_BORDER * diameter / info.pixel_size)
        reference = inside(
            read_picks(layout.pick_path(folder, path.stem, "manual")), info.shape, border
        )
        picks = inside(read_picks(layout.pick_path(folder, path.stem, suffix)), info.shape, border)
        radius = diameter / 2 / info.pixel_size
        for t in REAL_THRESHOLDS:
            kept = picks.score >= t - 1e-9
            found = Picks(picks.x[kept], picks.y[kept], picks.score[kept])
            totals[t] = totals[t] + score_picks(found, reference, radius)
    return totals


def chosen(scores: list[dict[float, Score]], min_best: float) -> tuple[float, int]:
    """The rule's threshold over the micrographs whose best F1 reaches ``min_best``."""
    kept = [s for s in scores if max(score.f1 for score in s.values()) >= min_best]
    kept = kept or scores
    mean = {t: sum(s[t].f1 for s in kept) / len(kept) for t in THRESHOLDS}
    return plateau_middle(mean, PLATEAU), len(kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL:SET",
        help=f"a model and its real set: {HELD_OUT} (beta-galactosidase at 4096²) or a protein "
        "it never saw (empiar-10017, empiar-10028); repeatable",
    )
    parser.add_argument("--min-best", type=float, nargs="+", default=[0.3, 0.5, 0.6, 0.7, 0.8])
    parser.add_argument("--seed", type=int, default=1, help="train_generic.py's --seed (1)")
    args = parser.parse_args()
    pairs = [entry.rsplit(":", 1) for entry in args.model]
    if any(len(pair) != 2 for pair in pairs):
        parser.error("--model takes MODEL:SET")
    _, items = synthetic_examples(48, CALIBRATION_SEED + args.seed, GENERIC_SCALE)
    rules = [0.0, *args.min_best]
    header = "  ".join(f"{'all' if r == 0 else f'best>={r}':>15}" for r in rules)
    print("threshold: real F1 (calibration micrographs kept) per rule; 'all' is the rule as is")
    print(f"{'model':40s}  stored        {header}  real best")
    means: dict[float, list[float]] = {r: [] for r in rules}
    scratch_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        for index, (model, name) in enumerate(pairs):
            folder, diameter, label_border = real_set(name, model, Path(tmp) / str(index))
            network, info = load_model(model, "cpu")
            scores = micrograph_scores(network.eval(), items)
            real = real_f1(model, folder, diameter, label_border, f"cal{index}")
            cells = []
            for rule in rules:
                threshold, kept = chosen(scores, rule)
                means[rule].append(real[threshold].f1)
                cells.append(f"{threshold:.2f}: {real[threshold].f1:.3f} ({kept:2d})")
            best = max(REAL_THRESHOLDS, key=lambda t: real[t].f1)
            # the nearest of the grid (a calibrated threshold is on it)
            stored = min(REAL_THRESHOLDS, key=lambda t: abs(t - default_threshold(info)))
            label = f"{Path(model).parent.name}/{Path(model).name} on {name}"[-40:]
            print(
                f"{label:40s}  {stored:.2f}: {real[stored].f1:.3f}  {'  '.join(cells)}"
                f"  {best:.2f}: {real[best].f1:.3f}",
                flush=True,
            )
    print(
        f"{'mean real F1':40s}  {'':11s}  "
        + "  ".join(f"{np.mean(v):15.4f}" for v in means.values())
    )


if __name__ == "__main__":
    main()
