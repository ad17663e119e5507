"""Retraining bar: generic model vs. a model retrained on 5 curated micrographs, default settings.

For each data set: pick the evaluation micrographs with the generic model (its default
threshold), retrain it with exactly the CLI's default settings

    boxnet-tui train TRAIN --name N --positives TRAIN/matching/<root>_manual.star \
        --diameter D --device cpu [--public-set auto|none]

(run as a subprocess, wall clock timed), pick the same evaluation micrographs with the new
model at its own default threshold, and score both against the reference picks.

Data sets:

- ``synthetic``: a protein no model has seen (protein seed 515151, used nowhere else; the
  generic models' synthetic proteins come from seeds 1000-1047, the public set's from
  202400-202423, bench_pick's from 777777). 5 micrographs for training, 4 *other* ones for
  evaluation, 4096² at 1.77 Å/px, 150 Å particles; the synthetic truth is the curated picks
  and the reference. A border of one diameter is ignored in scoring: Warp's picking drops
  peaks within 0.8 diameters of the edge by design.
- ``real``: beta-galactosidase (EMPIAR-10017, 2048² at 3.54 Å/px, 190 Å): 5 micrographs the
  generic models were trained on, evaluated on the 3 they held out; the 65 px unannotated
  border is ignored. The generic model has seen beta-galactosidase, so this is not an
  unseen protein.

Matches within a third of the particle diameter count (a stricter radius than the usual half
diameter). "best F1" is the best over all thresholds, chosen knowing the answers: shown only
to tell calibration from ranking.

    python benchmarks/bench_retrain.py [--public-set auto|none] [--skip-real] [--skip-synthetic]
        [--protein-seed N --synthetic-diameter Å]   # another unseen synthetic protein

Everything is written under $BOXNET_TUI_HOME (default: a temporary folder made here and
deleted at the end); with $BOXNET_TUI_HOME set, the data sets and the public set are kept and
reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "empiar-10017"
GENERIC = "BoxNetMask"
RADIUS_FRACTION = 1 / 3  # of the diameter

SYNTHETIC_SIZE, SYNTHETIC_PIXEL, SYNTHETIC_DIAMETER = 4096, 1.77, 150.0
SYNTHETIC_PROTEIN = 515_151
SYNTHETIC_TRAIN, SYNTHETIC_EVAL = 5, 4

REAL_DIAMETER, REAL_BORDER = 190.0, 65.0
REAL_HELD_OUT = (
    "Falcon_2012_06_12-14_33_35_0",
    "Falcon_2012_06_12-15_43_48_0",
    "Falcon_2012_06_12-16_59_12_0",
)
REAL_TRAIN = (  # the first five by name of those the generic models trained on
    "Falcon_2012_06_12-15_17_31_0",
    "Falcon_2012_06_12-15_27_22_0",
    "Falcon_2012_06_12-15_30_21_0",
    "Falcon_2012_06_12-15_33_42_0",
    "Falcon_2012_06_12-15_36_26_0",
)


@dataclass
class DataSet:
    name: str
    train: Path
    evaluate: Path
    diameter: float  # Å
    pixel_size: float  # Å/px
    border: float  # px ignored at the edge when scoring
    note: str


@dataclass
class Row:
    data: str
    model: str
    threshold: float
    precision: float
    recall: float
    f1: float
    best_f1: float
    best_threshold: float
    seconds: float | None  # wall clock of the train command
    train_seconds: float | None  # the training loop alone (model.json)


# --------------------------------------------------------------------------- data


def make_synthetic(root: Path, protein: int, diameter: float) -> DataSet:
    from boxnet_tui.io import layout
    from boxnet_tui.io.micrographs import write_micrograph
    from boxnet_tui.io.star import write_picks
    from boxnet_tui.synth import make_micrograph

    train, evaluate = root / "train", root / "eval"
    for index in range(SYNTHETIC_TRAIN + SYNTHETIC_EVAL):
        folder = train if index < SYNTHETIC_TRAIN else evaluate
        name = f"unseen_{index:02d}"
        star = layout.pick_path(folder, name, "manual")
        if (folder / f"{name}.mrc").is_file() and star.is_file():
            continue
        synthetic = make_micrograph(
            SYNTHETIC_SIZE, SYNTHETIC_PIXEL, diameter, protein * 10 + index, protein_seed=protein
        )
        write_micrograph(folder / f"{name}.mrc", synthetic.image, SYNTHETIC_PIXEL)
        write_picks(layout.pick_path(folder, name, "manual"), synthetic.picks, f"{name}.mrc")
    return DataSet(
        "synthetic",
        train,
        evaluate,
        diameter,
        SYNTHETIC_PIXEL,
        diameter / SYNTHETIC_PIXEL,
        f"unseen synthetic protein (seed {protein}), {SYNTHETIC_SIZE}² at {SYNTHETIC_PIXEL} "
        f"Å/px, {diameter:g} Å; {SYNTHETIC_TRAIN} training, {SYNTHETIC_EVAL} other "
        "micrographs evaluated",
    )


def make_real(root: Path) -> DataSet:
    from boxnet_tui.io import layout

    if not REAL.is_dir():
        raise SystemExit(f"real data not found at {REAL}")
    train, evaluate = root / "train", root / "eval"
    for folder, names in ((train, REAL_TRAIN), (evaluate, REAL_HELD_OUT)):
        layout.matching_dir(folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            for source, target in (
                (REAL / f"{name}.mrc", folder / f"{name}.mrc"),
                (layout.pick_path(REAL, name, "manual"), layout.pick_path(folder, name, "manual")),
            ):
                if not target.is_file():
                    shutil.copyfile(source, target)
    return DataSet(
        "real",
        train,
        evaluate,
        REAL_DIAMETER,
        3.54,
        REAL_BORDER,
        "beta-galactosidase 2048² at 3.54 Å/px; 5 training micrographs, the 3 held out by "
        "the generic models evaluated. NOT an unseen protein: the generic models were "
        "trained on beta-galactosidase (these 5 micrographs included)",
    )


# --------------------------------------------------------------------------- steps


def pick_and_score(data: DataSet, model: str, label: str, seconds: float | None) -> Row:
    from boxnet_tui.batch_picking import PickSettings, default_threshold, pick_folder
    from boxnet_tui.evaluate import evaluate_folders
    from boxnet_tui.model.store import find_model

    info = find_model(model)
    summary = pick_folder(
        data.evaluate, model, PickSettings(diameter=data.diameter), suffix=model, device="cpu"
    )
    if summary.errors:
        raise SystemExit("; ".join(summary.errors))
    report = evaluate_folders(
        data.evaluate / "matching",
        data.evaluate / "matching",
        RADIUS_FRACTION * data.diameter / data.pixel_size,
        picks_suffix=model,
        reference_suffix="manual",
        border=data.border,
    )
    sweep = report.sweep
    train_seconds = info.training.get("seconds") if info.training else None
    return Row(
        data.name,
        label,
        default_threshold(info),
        report.total.precision,
        report.total.recall,
        report.total.f1,
        sweep.best_f1 if sweep is not None else report.total.f1,
        sweep.best_threshold if sweep is not None else float("nan"),
        seconds,
        train_seconds,
    )


def retrain(data: DataSet, name: str, public_set: str | None, extra: list[str]) -> float:
    """Run the train command as a user would; its wall clock in seconds."""
    first = sorted(data.train.glob("*.mrc"))[0].stem
    command = [
        sys.executable,
        "-m",
        "boxnet_tui",
        "train",
        str(data.train),
        "--name",
        name,
        "--positives",
        str(data.train / "matching" / f"{first}_manual.star"),
        "--diameter",
        f"{data.diameter:g}",
        "--device",
        "cpu",
    ]
    if public_set is not None:
        command += ["--public-set", public_set]
    command += extra
    print("$ boxnet-tui " + " ".join(command[3:]), flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"train failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds


def run_summary(name: str) -> str:
    """The run's held-out line and calibration line, from its log."""
    from boxnet_tui.training.runs import find_run

    run = find_run(name)
    lines = [
        line.split("  ", 1)[-1]
        for line in run.tail_log(400)
        if "default threshold" in line or "held-out" in line or "micrograph(s) to train" in line
    ]
    return "\n".join(f"    {line}" for line in lines)


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'data':10s} {'model':26s} {'thresh':>6s} {'P':>6s} {'R':>6s} {'F1':>6s}"
        f" {'train s':>8s} {'loop s':>7s}   {'best F1 (at)':>13s}"
    )
    out = [head, "-" * len(head)]
    for row in rows:
        wall = f"{row.seconds:8.0f}" if row.seconds is not None else f"{'-':>8s}"
        loop = f"{row.train_seconds:7.0f}" if row.train_seconds is not None else f"{'-':>7s}"
        out.append(
            f"{row.data:10s} {row.model:26s} {row.threshold:6.2f} {row.precision:6.3f}"
            f" {row.recall:6.3f} {row.f1:6.3f} {wall} {loop}   {row.best_f1:.3f}"
            f" ({row.best_threshold:.2f})"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--public-set",
        choices=["auto", "none", "default"],
        default="default",
        help="passed to train (default: not passed, the CLI's default)",
    )
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument(
        "--protein-seed",
        type=int,
        default=SYNTHETIC_PROTEIN,
        help=f"another unseen synthetic protein (default {SYNTHETIC_PROTEIN})",
    )
    parser.add_argument(
        "--synthetic-diameter", type=float, default=SYNTHETIC_DIAMETER, help="Å (default 150)"
    )
    parser.add_argument(
        "--train-args", default="", help="extra train options (not the default settings!)"
    )
    args = parser.parse_args()

    temporary = None
    if not os.environ.get("BOXNET_TUI_HOME"):
        temporary = tempfile.mkdtemp(prefix="bench_retrain_")
        os.environ["BOXNET_TUI_HOME"] = temporary
    try:
        run(args)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    import torch

    from boxnet_tui.paths import home

    root = home() / "bench_retrain"
    public = None if args.public_set == "default" else args.public_set
    print(
        f"BOXNET_TUI_HOME={home()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, CPU; train option --public-set "
        f"{public or '(not given: the default)'}"
    )
    if public == "auto":
        from boxnet_tui.training.public_set import ensure_public_set

        start = time.perf_counter()
        ensure_public_set()
        print(f"public set ready ({time.perf_counter() - start:.0f} s, once per home)")
    makers = []
    if not args.skip_synthetic:
        protein, diameter = args.protein_seed, args.synthetic_diameter
        if (
            protein < 100
            or 1000 <= protein < 1048
            or 202400 <= protein < 202424
            or (protein == 777_777)
        ):  # the tests', the generic models', the public set's and bench_pick's proteins
            raise SystemExit(f"protein seed {protein} is used elsewhere; choose an unseen one")
        folder = root / f"synthetic_{protein}_{diameter:g}"
        makers.append((lambda f: make_synthetic(f, protein, diameter), folder))
    if not args.skip_real:
        makers.append((make_real, root / "real"))
    rows: list[Row] = []
    notes: list[str] = []
    stamp = time.strftime("%H%M%S")
    for maker, folder in makers:
        data = maker(folder)
        radius = RADIUS_FRACTION * data.diameter / data.pixel_size
        print(
            f"\n[{data.name}] {data.note}; match radius {radius:.1f} px, "
            f"border {data.border:.0f} px"
        )
        rows.append(pick_and_score(data, GENERIC, f"{GENERIC} (generic)", None))
        print(format_table(rows[-1:]), flush=True)
        tag = {"auto": "Pub", "none": "NoPub", None: "Default"}[public]
        name = f"Bench{data.name.capitalize()}{tag}{stamp}"
        seconds = retrain(data, name, public, args.train_args.split())
        rows.append(pick_and_score(data, name, f"retrained ({tag.lower()})", seconds))
        print(format_table(rows[-1:]))
        summary = run_summary(name)
        print(summary, flush=True)
        notes.append(f"{data.name}: {data.note}\n{summary}")
    print("\n" + format_table(rows))
    print(
        "train s: wall clock of the whole train command (examples, training, calibration, "
        "held-out check, save); loop s: the training loop alone.\n"
        "Shared 2-core CPU: another process was using it at the same time, so times are "
        "somewhat inflated."
    )
    print(json.dumps([row.__dict__ for row in rows]))


if __name__ == "__main__":
    main()
