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
  202400-202423, bench_pick's from 777777). 5 micrographs for training (``--train-count``:
  DESIGN's "10 micrographs on a CPU"), 4 *other* ones for evaluation, 4096² at 1.77 Å/px,
  150 Å particles; the synthetic truth is the curated picks and the reference. A border of
  one diameter is ignored in scoring: Warp's picking drops peaks within 0.8 diameters of the
  edge by design.
- ``real``: beta-galactosidase (EMPIAR-10017, 2048² at 3.54 Å/px, 190 Å): 5 micrographs the
  generic models were trained on, evaluated on the 3 they held out; the 65 px unannotated
  border is ignored. The generic model has seen beta-galactosidase, so this is not an
  unseen protein.

Matches within a third of the particle diameter count (a stricter radius than the usual half
diameter). "best F1" is the best over all thresholds, chosen knowing the answers: shown only
to tell calibration from ranking.

    python benchmarks/bench_retrain.py [--public-set auto|none] [--skip-real] [--skip-synthetic]
        [--protein-seed N --synthetic-diameter Å]   # another unseen synthetic protein
        [--train-count 10]   # curated micrographs trained on (synthetic)

Everything is written under $BOXNET_TUI_HOME (default: a temporary folder made here and
deleted at the end); with $BOXNET_TUI_HOME set, the data sets and the public set are kept and
reused by later runs.

Leave one protein out (``--real-lopo``, only this then): does retraining on 5 curated
micrographs teach the generic model a real protein it never saw, and how does Topaz,
fine-tuned on the same 5, compare? For each protein P of ../shared/data (``--proteins``;
empiar-10028 80S ribosome, 300 Å, 1024² at 5.36 Å/px; empiar-10017 beta-galactosidase, 190 Å,
2048² at 3.54 Å/px):

1. The base: ``--lopo-root DIR`` gives ``DIR/without-<P>/BoxNetMask`` (it must record P as
   left out), made by ``python scripts/train_generic.py --leave-out P --mask-only --out
   DIR/without-<P>``; ``--base-model NAME_OR_FOLDER`` puts one model in for every protein
   instead (a stand-in, e.g. the shipped BoxNetMask, to test the benchmark).
2. The split, by name: the first 5 micrographs train, the last 5 evaluate; beta-gal's
   Falcon_2012_06_12-15_07_41_0 (labels miss many particles) is skipped. Ribosome: train
   EMPIAR-10028_061..065, evaluate _311.._315. Beta-gal: train Falcon_2012_06_12-14_33_35_0,
   -15_17_31_0, -15_27_22_0, -15_30_21_0, -15_33_42_0; evaluate -16_48_06_0, -16_51_03_0,
   -16_55_40_0, -16_59_12_0, -17_02_43_0. Copies (micrographs and matching/*_manual.star) go to
   $BOXNET_TUI_HOME/bench_retrain/lopo/<P>/{train,eval}; nothing is written into ../shared.
3. Ours: the base picks the evaluation micrographs at its default threshold ("generic"); then

       boxnet-tui train TRAIN --name N --positives TRAIN/matching/<first root>_manual.star \
           --diameter D --device cpu --base <the base>   [--iterations N: tests only]

   runs as a subprocess, wall clock timed (so 4 micrographs trained on, 1 held out for the
   check, 400 iterations: the CLI's defaults; ``--seed`` is passed as well, 0 unless
   ``--seeds`` says more), and the new model picks the evaluation
   micrographs at its own default threshold ("retrained"). Best F1: re-picked from the same
   probability maps at thresholds 0.05 .. 0.95.
4. Topaz 0.3.20, in this process through the torchvision stand-in benchmarks/topaz_shim (as
   bench_generalise.py runs it), its output in ``lopo/<P>/topaz/topaz.log``: ``topaz
   normalize -s 2`` (its ``preprocess``: ribosome 10.72 Å/px, beta-gal 7.08 Å/px) of the 5
   training micrographs, their references scaled by 1/2 as the targets, then

       topaz train --train-images SMALL --train-targets targets.txt -n N --method PN \
           -m resnet8 --units 32 --pretrained --num-epochs E --epoch-size S \
           --num-workers 1 -j 1 -d -1

   Topaz's default training model, initialised from its pretrained resnet8_u32 (on 2 busy
   cores an update of the pretrained resnet16_u64 that ``extract`` uses by default costs
   ~30 s, resnet8_u64 ~7 s, resnet8_u32 ~1 s), and its defaults otherwise (minibatch 256, a
   sixteenth of it positive, lr 2e-4, label radius 3). ``--num-workers 1 -j 1``: one core
   augments the crops (a data worker), one runs the network, 6x faster an update than its
   defaults on 2 cores. N: the mean reference count of the training micrographs
   (``--topaz-particles``): every particle there is labelled, so the prior of positives
   among the unlabelled pixels that Topaz's default GE-binomial objective needs is 0, where
   Topaz itself falls back to PN (positive vs. negative, weighted by that prior); PN is asked
   for outright (``--topaz-method``; GE-binomial with a prior of ~0 collapsed in a 20-update
   test, every score pushed down). E x S: ``--topaz-updates`` (2000, the issue's budget) in
   epochs of at most Topaz's 1000 updates. Seeded, its crop sampler too (an unseeded
   ``np.random.default_rng()`` in Topaz), so runs repeat. Timed: normalize + train. Then
   ``topaz extract -m MODEL -r R -x 2 -t -10 -d -1`` on the normalized evaluation
   micrographs (R = D / 2 / 2 px: 14 ribosome, 13 beta-gal) with the fine-tuned model and,
   for reference, its pretrained start. F1 at Topaz's default threshold -6 (score > -6) and
   the best over all scores >= -10 (greedy NMS in descending score order: thresholding
   afterwards is the same as ``-t``).
5. Scores: ``evaluate_folders`` within D/2 on the interior: border max(label border (65 px
   beta-gal, 0 ribosome), 0.8 D px), since Warp's picker drops picks within 0.8 D of the edge
   by design; in brackets the whole figure (label border only). Best F1 thresholds are chosen
   knowing the answers: shown only to tell calibration from ranking.

    BOXNET_TUI_HOME=/work/benchhome python benchmarks/bench_retrain.py --real-lopo \
        --lopo-root /work/benchhome/lopo --json /work/benchhome/bench_retrain_lopo.json
    # options: --proteins empiar-10028, --topaz-updates 2000, --topaz-method PN,
    #          --topaz-particles N, --skip-topaz,
    #          --seeds 0 1 2 (one retraining each, their mean in the table: one run's F1
    #          moves by about 0.01 with the seed; Topaz, seeded, runs once)
    # end-to-end test, tiny (not a measurement):
    BOXNET_TUI_HOME=/work/benchhome python benchmarks/bench_retrain.py --real-lopo \
        --base-model BoxNetMask --iterations 20 --topaz-updates 20
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

from boxnet_tui.picking import WARP_BORDER
from boxnet_tui.training.real_proteins import PROTEINS as REAL_PROTEINS
from boxnet_tui.training.real_proteins import SHARED_DATA

HERE = Path(__file__).resolve().parent
REAL = REAL_PROTEINS["empiar-10017"].path()
GENERIC = "BoxNetMask"
RADIUS_FRACTION = 1 / 3  # of the diameter

SYNTHETIC_SIZE, SYNTHETIC_PIXEL, SYNTHETIC_DIAMETER = 4096, 1.77, 150.0
SYNTHETIC_PROTEIN = 515_151
SYNTHETIC_TRAIN, SYNTHETIC_EVAL = 5, 4

REAL_DIAMETER = REAL_PROTEINS["empiar-10017"].diameter
REAL_BORDER = REAL_PROTEINS["empiar-10017"].border
REAL_HELD_OUT = REAL_PROTEINS["empiar-10017"].held_out
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
    whole_border: float = 0.0  # px: only the labels' unannotated edge (the "whole" figure)


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


def make_synthetic(
    root: Path, protein: int, diameter: float, train_count: int = SYNTHETIC_TRAIN
) -> DataSet:
    from boxnet_tui.io import layout
    from boxnet_tui.io.micrographs import write_micrograph
    from boxnet_tui.io.star import write_picks
    from boxnet_tui.synth import make_micrograph

    train, evaluate = root / "train", root / "eval"
    for index in range(train_count + SYNTHETIC_EVAL):
        folder = train if index < train_count else evaluate
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
        f"Å/px, {diameter:g} Å; {train_count} training, {SYNTHETIC_EVAL} other "
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


def retrain(
    data: DataSet, name: str, public_set: str | None, extra: list[str], base: str | None = None
) -> float:
    """Run the train command as a user would (``--base`` only if given); its wall clock in s."""
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
    if base is not None:
        command += ["--base", base]
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
    wanted = ("default threshold", "held-out", "micrograph(s) to train")
    rows = ("new model", "base model")  # the held-out check's figures, under its header
    texts = [line.split("  ", 1)[-1] for line in run.tail_log(400)]
    lines = [
        text
        for text in texts
        if any(word in text for word in wanted) or text.strip().startswith(rows)
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


# --------------------------------------------------------------------------- leave one protein out

DATA = SHARED_DATA
# protein: (particle diameter in Å, px of the micrograph's edge the annotators left out)
LOPO_PROTEINS = {
    name: (REAL_PROTEINS[name].diameter, REAL_PROTEINS[name].border)
    for name in ("empiar-10028", "empiar-10017")
}
LOPO_SKIPPED = tuple(name for p in REAL_PROTEINS.values() for name in p.skipped)
LOPO_TRAIN = LOPO_EVAL = 5
LOPO_VARIANT = "BoxNetMask"
GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # re-picked for the best F1
TOPAZ_SCALE, TOPAZ_FLOOR, TOPAZ_DEFAULT = 2, -10.0, -6.0  # -6: `topaz extract -t` default
TOPAZ_ARCH, TOPAZ_UNITS = "resnet8", 32  # `topaz train`'s default model (pretrained u32)
TOPAZ_EPOCH = 1000  # `topaz train --epoch-size` default
TOPAZ_SEED = 0
# one core for Topaz's per-crop augmentation (a worker process), one for the network: on 2
# busy cores 1.0 s an update, against 6.4 s with its defaults (all in one process, 2 threads)
TOPAZ_RESOURCES = ("--num-workers", "1", "-j", "1")


@dataclass
class Figures:
    """One picker with one model on the evaluation micrographs."""

    threshold: float
    picks: int
    precision: float
    recall: float
    f1: float  # interior
    whole_f1: float  # only the labels' border left out
    best_f1: float
    best_threshold: float
    note: str = ""


def lopo_split(protein: str) -> tuple[list[str], list[str]]:
    """The first 5 micrographs by name train, the last 5 evaluate (flawed labels skipped)."""
    roots = [p.stem for p in sorted((DATA / protein).glob("*.mrc")) if p.stem not in LOPO_SKIPPED]
    if len(roots) < LOPO_TRAIN + LOPO_EVAL:
        raise SystemExit(f"{DATA / protein}: {len(roots)} usable micrographs, need 10")
    return roots[:LOPO_TRAIN], roots[-LOPO_EVAL:]


def make_lopo(protein: str, root: Path) -> DataSet:
    """Copies of the protein's training and evaluation micrographs with their manual picks."""
    from boxnet_tui.io import layout
    from boxnet_tui.io.micrographs import read_info

    source = DATA / protein
    if not source.is_dir():
        raise SystemExit(f"real data not found at {source}")
    diameter, label_border = LOPO_PROTEINS[protein]
    train, evaluate = root / "train", root / "eval"
    train_roots, eval_roots = lopo_split(protein)
    for folder, names in ((train, train_roots), (evaluate, eval_roots)):
        layout.matching_dir(folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            for original, target in (
                (source / f"{name}.mrc", folder / f"{name}.mrc"),
                (
                    layout.pick_path(source, name, "manual"),
                    layout.pick_path(folder, name, "manual"),
                ),
            ):
                if not target.is_file() or target.stat().st_size != original.stat().st_size:
                    shutil.copyfile(original, target)  # copies: nothing is written into shared/
    info = read_info(source / f"{eval_roots[0]}.mrc")
    pixel = info.pixel_size
    assert pixel is not None
    return DataSet(
        protein,
        train,
        evaluate,
        diameter,
        pixel,
        max(label_border, WARP_BORDER * diameter / pixel),
        f"{protein} {info.shape[1]}x{info.shape[0]} at {pixel:g} Å/px, D {diameter:g} Å; "
        f"train {', '.join(train_roots)}; evaluate {', '.join(eval_roots)}",
        label_border,
    )


def lopo_base(protein: str, args: argparse.Namespace) -> str:
    """The generic model that never saw ``protein`` (or the stand-in ``--base-model``)."""
    from boxnet_tui.model.store import find_model

    if args.base_model:
        return args.base_model
    if args.lopo_root is None:
        raise SystemExit("--real-lopo needs --lopo-root DIR (or a stand-in --base-model)")
    out = args.lopo_root.expanduser().resolve() / f"without-{protein}"
    model = out / LOPO_VARIANT
    if not (model / "model.json").is_file():
        raise SystemExit(
            f"no model {model}: make it with python scripts/train_generic.py --leave-out "
            f"{protein} --mask-only --out {out}"
        )
    left_out = find_model(str(model)).training.get("left_out") or []
    if protein not in left_out:
        raise SystemExit(f"{model} does not record {protein} as left out (left_out {left_out})")
    return str(model)


def seen_by(model: str, roots: list[str]) -> list[str]:
    """Which of ``roots`` the model records as trained on."""
    from boxnet_tui.model.store import find_model

    real = find_model(model).training.get("real") or []
    if isinstance(real, dict):  # per protein since the two-protein recipe
        real = [name for names in real.values() for name in names]
    return [root for root in roots if root in set(real)]


def lopo_score(data: DataSet, suffix: str, border: float | None = None):
    """``matching/*_<suffix>.star`` against ``*_manual.star`` within D/2 (interior default)."""
    from boxnet_tui.evaluate import evaluate_folders

    matching = data.evaluate / "matching"
    report = evaluate_folders(
        matching,
        matching,
        data.diameter / 2 / data.pixel_size,
        picks_suffix=suffix,
        reference_suffix="manual",
        border=data.border if border is None else border,
    )
    assert not report.errors, report.errors
    return report


def grid_suffix(prefix: str, threshold: float) -> str:
    return f"{prefix}{round(threshold * 1000):04d}"


def repick_grid(data: DataSet, model: str, prefix: str, thresholds: list[float]) -> None:
    """Pick again at every threshold from one probability map per micrograph."""
    from boxnet_tui.batch_picking import PickSettings, check_scale, load_picker, prepare
    from boxnet_tui.io import layout
    from boxnet_tui.io.micrographs import scan_folder
    from boxnet_tui.io.star import write_picks
    from boxnet_tui.model.inference import predict_probabilities
    from boxnet_tui.picking import pick_at_each

    paths = scan_folder(data.evaluate)
    # as pick_folder does: inverted as the model was trained, a generic model's scale checked
    # on the folder (the same check, this process's, so the same factor)
    picker = check_scale(
        load_picker(model, PickSettings(diameter=data.diameter), device="cpu"), paths
    )
    settings = picker.settings
    for path in paths:
        prepared = prepare(path, settings, picker.scale)
        probabilities = predict_probabilities(
            picker.network, prepared.image, device=picker.device, batch_size=settings.batch_size
        )
        picked = pick_at_each(
            probabilities,
            data.diameter,
            thresholds,
            min_mask_distance=settings.min_mask_distance,
            pixel_size=prepared.pixel_size,
        )
        for threshold, result in picked.items():
            write_picks(
                layout.pick_path(data.evaluate, path.stem, grid_suffix(prefix, threshold)),
                result.to_micrograph(prepared.scale),
                path.name,
            )


def ours_figures(data: DataSet, model: str, suffix: str) -> Figures:
    """Pick the evaluation micrographs at the model's default threshold; best F1 on a grid."""
    from boxnet_tui.batch_picking import PickSettings, default_threshold, pick_folder
    from boxnet_tui.model.store import find_model

    summary = pick_folder(
        data.evaluate, model, PickSettings(diameter=data.diameter), suffix=suffix, device="cpu"
    )
    if summary.errors:
        raise SystemExit("; ".join(summary.errors))
    threshold = default_threshold(find_model(model))
    total = lopo_score(data, suffix).total
    grid = sorted({*GRID, threshold})
    repick_grid(data, model, suffix, grid)
    f1s = [lopo_score(data, grid_suffix(suffix, t)).total.f1 for t in grid]
    # ties (a saturated map picks the same at many thresholds): the one nearest the default
    best = max(range(len(grid)), key=lambda k: (f1s[k], -abs(grid[k] - threshold)))
    again = f1s[grid.index(threshold)]
    note = "" if abs(again - total.f1) < 1e-9 else f"re-pick at {threshold:g}: F1 {again:.3f}"
    return Figures(
        threshold,
        total.n_picks,
        total.precision,
        total.recall,
        total.f1,
        lopo_score(data, suffix, data.whole_border).total.f1,
        f1s[best],
        grid[best],
        note,
    )


def topaz_radius(data: DataSet) -> int:
    """The particle radius in px of Topaz's downsampled micrographs."""
    return round(data.diameter / 2 / (data.pixel_size * TOPAZ_SCALE))


def topaz_schedule(updates: int) -> tuple[int, int]:
    """(epochs, updates per epoch): Topaz's 1000-update epochs, fewer for a short run."""
    epochs = max(1, -(-updates // TOPAZ_EPOCH))
    return epochs, -(-updates // epochs)


def topaz_finetune(
    data: DataSet, work: Path, updates: int, method: str, particles: float | None
) -> dict:
    """Fine-tune Topaz's pretrained model on the training micrographs; score it and its start.

    In this process, through the torchvision stand-in, as ``topaz normalize`` (its
    ``preprocess``), ``topaz train`` and ``topaz extract`` would run; its output goes to
    ``work/topaz.log``.
    """
    import contextlib
    import random
    from unittest import mock

    import numpy as np
    import torch

    from boxnet_tui.io import layout
    from boxnet_tui.io.interop import read_topaz, write_topaz
    from boxnet_tui.io.micrographs import scan_folder
    from boxnet_tui.io.star import Picks, read_picks, write_picks

    shim = str(HERE / "topaz_shim")  # the torchvision stand-in topaz imports
    if shim not in sys.path:
        sys.path.insert(0, shim)
    from topaz.commands import extract, normalize, train

    if work.exists():
        shutil.rmtree(work)
    small_train, small_eval = work / "train", work / "eval"
    small_train.mkdir(parents=True)
    small_eval.mkdir()
    train_paths, eval_paths = scan_folder(data.train), scan_folder(data.evaluate)
    references = {
        p.stem: read_picks(layout.pick_path(data.train, p.stem, "manual")) for p in train_paths
    }
    targets = work / "targets.txt"
    write_topaz(
        targets, {k: Picks(p.x / TOPAZ_SCALE, p.y / TOPAZ_SCALE) for k, p in references.items()}
    )
    mean = sum(map(len, references.values())) / len(references)
    per_micrograph = mean if particles is None else particles  # -n: every particle labelled
    epochs, epoch_size = topaz_schedule(updates)
    model_path, curve = work / "finetuned.sav", work / "curve.txt"
    gpu = "-1"
    train_args = ["--train-images", str(small_train), "--train-targets", str(targets)]
    train_args += ["-n", f"{per_micrograph:.2f}", "--method", method]
    train_args += ["-m", TOPAZ_ARCH, "--units", str(TOPAZ_UNITS)]
    train_args += ["--pretrained", "--num-epochs", str(epochs), "--epoch-size", str(epoch_size)]
    train_args += [*TOPAZ_RESOURCES, "-d", gpu, "-o", str(curve)]
    scale = ["-s", str(TOPAZ_SCALE), "-d", gpu]
    result: dict = {
        "model": f"{TOPAZ_ARCH}_u{TOPAZ_UNITS}",
        "normalize": ["-s", str(TOPAZ_SCALE)],
        "train": train_args,
        "updates": epochs * epoch_size,
        "radius_px": topaz_radius(data),
        "particles_per_micrograph": per_micrograph,
        "mean_training_references": mean,
    }

    def seed() -> None:
        random.seed(TOPAZ_SEED)
        np.random.seed(TOPAZ_SEED)
        torch.manual_seed(TOPAZ_SEED)

    unseeded = np.random.default_rng

    def seeded(seed: object = None) -> np.random.Generator:
        return unseeded(TOPAZ_SEED if seed is None else seed)

    with (
        open(work / "topaz.log", "w") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        seed()
        start = time.perf_counter()
        normalize.main(
            normalize.add_arguments().parse_args(
                [*map(str, train_paths), *scale, "-o", str(small_train)]
            )
        )
        result["normalize_train_seconds"] = time.perf_counter() - start
        threads = torch.get_num_threads()
        seed()
        try:
            # Topaz 0.3.20 samples its crops from np.random.default_rng(), unseeded: seed it
            with mock.patch.object(np.random, "default_rng", seeded):
                classifier = train.main(train.add_arguments().parse_args(train_args))
        finally:
            torch.set_num_threads(threads)  # `-j 1` set it for the whole process
        result["train_seconds"] = time.perf_counter() - start
        result["train_loop_seconds"] = result["train_seconds"] - result["normalize_train_seconds"]
        torch.save(classifier.cpu(), model_path)
        seed()
        start = time.perf_counter()
        normalize.main(
            normalize.add_arguments().parse_args(
                [*map(str, eval_paths), *scale, "-o", str(small_eval)]
            )
        )
        result["normalize_eval_seconds"] = time.perf_counter() - start
        small = [str(small_eval / p.name) for p in eval_paths]
        for key, model in (("pretrained", result["model"]), ("finetuned", str(model_path))):
            table = work / f"{key}.txt"
            extract_args = [*small, "-m", model, "-r", str(topaz_radius(data))]
            extract_args += ["-x", str(TOPAZ_SCALE), "-t", str(TOPAZ_FLOOR), "-d", gpu]
            start = time.perf_counter()
            extract.main(extract.add_arguments().parse_args([*extract_args, "-o", str(table)]))
            result[f"{key}_extract_seconds"] = time.perf_counter() - start
            result["extract"] = extract_args[len(small) + 2 :]
    switched = "setting method to PN" in (work / "topaz.log").read_text()
    result["method"] = "PN" if switched else method
    lines = [line.split("\t") for line in curve.read_text().splitlines()[1:] if "\ttrain\t" in line]
    losses = [float(line[3]) for line in lines]
    if losses:
        tail = max(1, len(losses) // 10)
        result["loss_first_last"] = [
            sum(losses[:tail]) / tail,
            sum(losses[-tail:]) / tail,
        ]
    for key in ("pretrained", "finetuned"):
        picks = read_topaz(work / f"{key}.txt")
        suffix = f"topaz{key}"
        for path in eval_paths:
            found = picks.get(path.stem, Picks())
            default = found.subset(found.score > TOPAZ_DEFAULT)
            write_picks(layout.pick_path(data.evaluate, path.stem, suffix), found, path.name)
            write_picks(
                layout.pick_path(data.evaluate, path.stem, f"{suffix}def"), default, path.name
            )
        report, sweep = lopo_score(data, f"{suffix}def"), lopo_score(data, suffix).sweep
        total = report.total
        result[key] = Figures(
            TOPAZ_DEFAULT,
            total.n_picks,
            total.precision,
            total.recall,
            total.f1,
            lopo_score(data, f"{suffix}def", data.whole_border).total.f1,
            sweep.best_f1 if sweep is not None else 0.0,
            sweep.best_threshold if sweep is not None else float("nan"),
        )
    return result


def mean_figures(runs: list[dict]) -> Figures:
    """The per-seed figures of ``runs`` averaged (picks rounded; the thresholds averaged too)."""
    keys = ("threshold", "picks", "precision", "recall", "f1", "whole_f1", "best_f1")
    mean = {key: sum(run["figures"][key] for run in runs) / len(runs) for key in keys}
    mean["picks"] = round(mean["picks"])
    best_at = sum(run["figures"]["best_threshold"] for run in runs) / len(runs)
    return Figures(**mean, best_threshold=best_at, note=f"{len(runs)} seeds")


def describe(label: str, figures: Figures, seconds: float | None = None) -> str:
    took = f"{seconds:7.0f}" if seconds is not None else f"{'-':>7s}"
    return (
        f"  {label:34s} {figures.threshold:6.2f} {figures.picks:6d} {figures.precision:6.3f} "
        f"{figures.recall:6.3f} {figures.f1:6.3f} ({figures.whole_f1:.3f})   "
        f"{figures.best_f1:.3f} ({figures.best_threshold:.2f}) {took}"
        + (f"  [{figures.note}]" if figures.note else "")
    )


LOPO_HEAD = (
    f"  {'picker':34s} {'thresh':>6s} {'picks':>6s} {'P':>6s} {'R':>6s} {'F1 (whole)':>14s}   "
    f"{'best F1 (at)':12s} {'train s':>7s}"
)


def run_lopo_protein(protein: str, base: str, args: argparse.Namespace, stamp: str) -> dict:
    from boxnet_tui.model.store import find_model
    from boxnet_tui.paths import home

    data = make_lopo(protein, home() / "bench_retrain" / "lopo" / protein)
    train_roots, eval_roots = lopo_split(protein)
    print(
        f"\n[{protein}] {data.note}\n  match radius {data.diameter / 2 / data.pixel_size:.1f} px,"
        f" interior border {data.border:.1f} px (whole: {data.whole_border:g} px); "
        f"base {base}",
        flush=True,
    )
    seen = seen_by(base, train_roots + eval_roots)
    if seen:
        print(f"  note: the base model trained on {len(seen)} of these: {', '.join(seen)}")
    print(LOPO_HEAD)
    generic = ours_figures(data, base, "generic")
    print(describe("boxnet-tui generic (the base)", generic), flush=True)
    common = args.train_args.split()
    if args.iterations:
        common += ["--iterations", str(args.iterations)]
    runs = []
    for seed in args.seeds:
        name = f"Lopo{protein.split('-')[-1]}_{stamp}" + (
            f"_seed{seed}" if len(args.seeds) > 1 else ""
        )
        extra = [*common, "--seed", str(seed)]
        seconds = retrain(data, name, None, extra, base=base)
        info = find_model(name)
        retrained = ours_figures(data, name, f"s{seed}retrained")  # s1retrained0500: unique
        print(describe(f"boxnet-tui retrained, seed {seed}", retrained, seconds), flush=True)
        print(run_summary(name), flush=True)
        runs.append(
            {
                "seed": seed,
                "model": name,
                "train_extra_args": extra,
                "figures": vars(retrained),
                "train_seconds": seconds,
                "train_loop_seconds": info.training.get("seconds"),
                "train_iterations": info.training.get("iterations"),
            }
        )
    if len(runs) > 1:
        print(describe("boxnet-tui retrained, mean of seeds", mean_figures(runs)), flush=True)
    row: dict = {
        "protein": protein,
        "train_micrographs": train_roots,
        "eval_micrographs": eval_roots,
        "diameter": data.diameter,
        "pixel_size": data.pixel_size,
        "radius_px": data.diameter / 2 / data.pixel_size,
        "border_px": data.border,
        "whole_border_px": data.whole_border,
        "base": base,
        "base_seen": seen,
        "generic": vars(generic),
        "retrained": runs,  # one per seed
    }
    if not args.skip_topaz:
        topaz = topaz_finetune(
            data,
            data.train.parent / "topaz",
            args.topaz_updates,
            args.topaz_method,
            args.topaz_particles,
        )
        print(describe(f"Topaz pretrained {topaz['model']}", topaz["pretrained"]))
        print(
            describe(
                f"Topaz fine-tuned ({topaz['updates']} upd.)",
                topaz["finetuned"],
                topaz["train_seconds"],
            ),
            flush=True,
        )
        loss = topaz.get("loss_first_last")
        print(
            f"    topaz train {' '.join(topaz['train'])}\n    topaz extract "
            f"{' '.join(topaz['extract'])}"
            + f"\n    objective {topaz['method']}; {topaz['normalize_train_seconds']:.0f} s "
            f"normalize + {topaz['train_loop_seconds']:.0f} s train"
            + (f"; loss (first/last tenth) {loss[0]:.4f} -> {loss[1]:.4f}" if loss else "")
        )
        row["topaz"] = {
            **topaz,
            "pretrained": vars(topaz["pretrained"]),
            "finetuned": vars(topaz["finetuned"]),
        }
    return row


def lopo_table(rows: list[dict]) -> str:
    """One line a protein; with several seeds, the retrained figures are their mean and each
    seed's F1 follows the table."""
    header = (
        f"{'protein':13s} | {'generic F1':10s} | {'retrained F1 (whole)':20s} | "
        f"{'retr. best F1':13s} | {'ours s':6s} | {'Topaz ft F1':11s} | {'Topaz best':10s} | "
        f"{'Topaz s':7s}"
    )
    lines, seeds = [header, "-" * len(header)], []
    for row in rows:
        generic, runs, topaz = row["generic"], row["retrained"], row.get("topaz")
        retrained = vars(mean_figures(runs))
        seconds = sum(run["train_seconds"] for run in runs) / len(runs)
        cells = [
            f"{row['protein']:13s}",
            f"{generic['f1']:.3f}".ljust(10),
            f"{retrained['f1']:.3f} ({retrained['whole_f1']:.3f})".ljust(20),
            f"{retrained['best_f1']:.3f}".ljust(13),
            f"{seconds:.0f}".ljust(6),
        ]
        if topaz:
            finetuned = topaz["finetuned"]
            cells += [
                f"{finetuned['f1']:.3f}".ljust(11),
                f"{finetuned['best_f1']:.3f}".ljust(10),
                f"{topaz['train_seconds']:.0f}",
            ]
        else:
            cells += ["-".ljust(11), "-".ljust(10), "-"]
        lines.append(" | ".join(cells))
        if len(runs) > 1:
            each = ", ".join(
                f"seed {run['seed']} {run['figures']['f1']:.3f} ({run['figures']['best_f1']:.3f})"
                for run in runs
            )
            seeds.append(f"{row['protein']}: mean of {len(runs)} seeds; {each}")
    return "\n".join(lines + seeds)


def run_lopo(args: argparse.Namespace) -> None:
    import torch

    from boxnet_tui.paths import home

    start = time.perf_counter()
    print(
        f"BOXNET_TUI_HOME={home()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} cores, CPU; leave one protein out: {', '.join(args.proteins)}"
    )
    bases = {protein: lopo_base(protein, args) for protein in args.proteins}  # all, first
    stamp = time.strftime("%H%M%S")
    rows = [run_lopo_protein(protein, bases[protein], args, stamp) for protein in args.proteins]
    print("\n" + lopo_table(rows))
    print(
        "F1 within D/2 at each picker's default threshold, on the interior (border max(label "
        f"border, {WARP_BORDER} D)); (whole): label border only. best F1: over thresholds "
        "chosen knowing the answers (ours: a 0.05 grid; Topaz: every score >= "
        f"{TOPAZ_FLOOR:g}). ours s: wall clock of `boxnet-tui train`; Topaz s: its normalize + "
        f"train on the 5 training micrographs. Total {time.perf_counter() - start:.0f} s."
    )
    if args.json:
        args.json.write_text(json.dumps({"proteins": rows}, indent=2) + "\n")


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
        "--train-count",
        type=int,
        default=SYNTHETIC_TRAIN,
        help=f"synthetic micrographs curated and trained on (default {SYNTHETIC_TRAIN}; "
        "DESIGN's bar: 10 on a CPU, a better model in minutes)",
    )
    parser.add_argument(
        "--train-args", default="", help="extra train options (not the default settings!)"
    )
    lopo = parser.add_argument_group("leave one protein out (--real-lopo)")
    lopo.add_argument(
        "--real-lopo",
        action="store_true",
        help="retrain the generic model that never saw a real protein on 5 of its micrographs, "
        "Topaz fine-tuned beside it (only this; not the synthetic and real data sets)",
    )
    lopo.add_argument(
        "--proteins", nargs="+", default=list(LOPO_PROTEINS), choices=list(LOPO_PROTEINS)
    )
    lopo.add_argument(
        "--lopo-root", type=Path, help=f"DIR holding without-<protein>/{LOPO_VARIANT}"
    )
    lopo.add_argument(
        "--base-model",
        help="one base for every protein instead (name or folder; a stand-in for tests)",
    )
    lopo.add_argument("--iterations", type=int, help="passed to train (not the default settings!)")
    lopo.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="retrain once with each training seed (train --seed; default 0, train's own; "
        "the synthetic and real sets too, a row each): a retraining's F1 moves by about 0.01 "
        "from one seed to the next",
    )
    lopo.add_argument(
        "--topaz-updates", type=int, default=2000, help="Topaz fine-tuning updates (2000)"
    )
    lopo.add_argument(
        "--topaz-method",
        default="PN",
        choices=["PN", "GE-binomial", "GE-KL", "PU"],
        help="topaz train --method (PN: every particle of the training micrographs labelled)",
    )
    lopo.add_argument(
        "--topaz-particles",
        type=float,
        help="topaz train -n (default: the mean reference count of the training micrographs)",
    )
    lopo.add_argument("--skip-topaz", action="store_true")
    lopo.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if any(word.split("=")[0] == "--seed" for word in args.train_args.split()):
        parser.error("give the training seeds with --seeds, not in --train-args")
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds: each must be at least 0, got {args.seeds}")

    temporary = None
    if not os.environ.get("BOXNET_TUI_HOME"):
        temporary = tempfile.mkdtemp(prefix="bench_retrain_")
        os.environ["BOXNET_TUI_HOME"] = temporary
    try:
        if args.real_lopo:
            run_lopo(args)
        else:
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
        count = args.train_count
        # another count splits the same micrographs differently: its own folder
        extra = "" if count == SYNTHETIC_TRAIN else f"_{count}train"
        folder = root / f"synthetic_{protein}_{diameter:g}{extra}"
        makers.append((lambda f: make_synthetic(f, protein, diameter, count), folder))
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
        several = len(args.seeds) > 1
        for seed in args.seeds:
            name = f"Bench{data.name.capitalize()}{tag}{stamp}" + (f"S{seed}" if several else "")
            options = args.train_args.split() + (["--seed", str(seed)] if seed else [])
            seconds = retrain(data, name, public, options)
            label = f"retrained ({tag.lower()})" + (f" s{seed}" if several else "")
            rows.append(pick_and_score(data, name, label, seconds))
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
