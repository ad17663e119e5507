"""Leave-one-protein-out: does a generic model pick a real protein it never saw? Topaz beside it.

For each protein P of ../shared/data (empiar-10017 beta-galactosidase, 190 Å; empiar-10028 80S
ribosome, 300 Å), on all of P's micrographs as shipped (no rescaling):

1. The model: ``--model NAME_OR_PATH`` (one model for every protein, e.g. the shipped
   BoxNetMask, which saw beta-galactosidase but never the ribosome); or ``--models-root DIR``,
   the model ``DIR/without-<P>/<variant>`` trained without P; with ``--train`` that model is
   first trained where missing, timed, by ``python scripts/train_generic.py --leave-out P
   --out DIR/without-<P> [--mask-only] [--iterations N]`` (DIR defaults to
   ``$BOXNET_TUI_HOME/scratch/bench_generalise/models``; ``--mask-only`` for BoxNetMask).
2. boxnet-tui picks every micrograph with ``pick_folder`` and ``PickSettings(diameter=D)``: the
   model's default (calibrated) threshold and default settings, after one untimed warm-up
   micrograph. The folder is a scratch copy under ``$BOXNET_TUI_HOME/scratch`` (micrographs
   and ``matching/*_manual.star`` symlinked); nothing is written into ../shared. For
   information it picks again (untimed) at thresholds 0.1 .. 0.9 (``--grid``) and reports the
   best F1 among those and the default (chosen knowing the answers).
3. Scores: ``evaluate_folders`` against ``matching/<root>_manual.star``, match radius D/2, on
   the interior: border = max(label border (65 px for 10017, 0 for 10028), 0.8 D in px).
   Warp's picker drops picks within 0.8 D of the edge by design, so every picker is scored
   on that same interior. In brackets, the "whole" figure: only the label border removed.
   Where the model trained on some of P's micrographs it says so, with F1 on the others.
4. Topaz 0.3.20 pretrained (resnet16, its default model), in this process through the
   torchvision stand-in benchmarks/topaz_shim: ``topaz normalize -s 2`` (its ``preprocess``)
   then ``topaz extract -r R -x 2 -t -10`` with R = round(D / 2 / (2 x pixel)) (14 px for the
   ribosome at 10.72 Å/px, 13 px for beta-gal at 7.08 Å/px). Extraction is a greedy
   non-maximum suppression in descending score order, so the picks above any threshold
   t >= -10 are exactly what ``-t t`` gives: F1 at Topaz's default threshold (``extract -t``
   defaults to -6, "p >= 0.0025"; picks with score > -6 are kept) and the best F1 over all
   thresholds come from one run. Topaz's picks are cached per protein under the scratch dir,
   keyed by the micrographs' content and the Topaz options (``--no-cache`` to redo them).
5. Where both pickers run: of each one's false picks (no reference within D/2, interior), how
   many the other one also picks, Topaz at its best threshold (``false_pick_agreement``).
   Pickers that agree on most of their false picks have found objects the reference leaves
   out: the F1 of either is then bounded by the reference, not by the picker.
6. Times: seconds per micrograph, imports and model loading excluded (Topaz's own model load,
   timed separately, is subtracted; both pickers get one untimed warm-up micrograph). The
   lower extraction floor (-10 instead of -6) costs Topaz about 0.1 s a micrograph.

    pip install --no-deps topaz-em==0.3.20 && pip install h5py scikit-learn tqdm psutil future
    BOXNET_TUI_HOME=/work/benchhome python benchmarks/bench_generalise.py --model BoxNetMask
    python benchmarks/bench_generalise.py --models-root DIR [--proteins empiar-10028]
    python benchmarks/bench_generalise.py --train [--models-root DIR] [--iterations 3000]
    options: --variant BoxNet, --device cuda, --grid [T ...], --skip-topaz, --no-cache,
             --json PATH
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from boxnet_tui.batch_picking import PickSettings, default_threshold, pick_folder
from boxnet_tui.evaluate import Report, Score, evaluate_folders, inside, match_picks
from boxnet_tui.io import layout
from boxnet_tui.io.interop import read_topaz
from boxnet_tui.io.micrographs import read_info, scan_folder
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.model.store import find_model
from boxnet_tui.paths import scratch_dir
from boxnet_tui.picking import WARP_BORDER
from boxnet_tui.training.real_proteins import PROTEINS as REAL_PROTEINS
from boxnet_tui.training.real_proteins import SHARED_DATA

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = SHARED_DATA
# protein: (particle diameter in Å, px of the micrograph's edge the annotators left out)
PROTEINS = {name: (p.diameter, p.border) for name, p in REAL_PROTEINS.items()}
GRID = [round(0.1 * k, 1) for k in range(1, 10)]  # thresholds re-picked for information
TOPAZ_SCALE, TOPAZ_FLOOR, TOPAZ_DEFAULT = 2, -10.0, -6.0  # -6: `topaz extract -t` default


@dataclass
class Setup:
    """One protein's scratch folder and how it is scored."""

    name: str
    folder: Path
    diameter: float  # Å
    pixel: float  # Å/px of the micrographs
    shape: tuple[int, int]
    label_border: float  # px

    @property
    def radius(self) -> float:
        return self.diameter / 2 / self.pixel

    @property
    def border(self) -> float:
        return max(self.label_border, WARP_BORDER * self.diameter / self.pixel)

    @property
    def micrographs(self) -> list[Path]:
        return scan_folder(self.folder)


@dataclass
class Figures:
    """One picker on one protein."""

    precision: float
    recall: float
    f1: float
    picks: int
    whole_f1: float
    threshold: float
    best_f1: float
    best_threshold: float
    seconds: float  # per micrograph
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- data


def make_setup(name: str, work: Path) -> Setup:
    """Symlink P's micrographs and reference STAR files into ``work`` (a scratch folder)."""
    source = DATA / name
    if not source.is_dir():
        raise SystemExit(f"real data not found at {source}")
    diameter, label_border = PROTEINS[name]
    (work / layout.MATCHING).mkdir(parents=True)
    paths = scan_folder(source)
    for path in paths:
        (work / path.name).symlink_to(path)
        star = layout.pick_path(source, path.stem, "manual")
        layout.pick_path(work, path.stem, "manual").symlink_to(star)
    info = read_info(paths[0])
    return Setup(name, work, diameter, info.pixel_size, info.shape, label_border)


def score(setup: Setup, suffix: str, border: float | None = None) -> Report:
    """Picks ``matching/*_<suffix>.star`` against ``*_manual.star`` (interior by default)."""
    matching = setup.folder / layout.MATCHING
    report = evaluate_folders(
        matching,
        matching,
        setup.radius,
        picks_suffix=suffix,
        reference_suffix="manual",
        border=setup.border if border is None else border,
        image_shape=setup.shape,
    )
    assert not report.errors, report.errors
    return report


def write_all(setup: Setup, picks: dict[str, Picks], suffix: str) -> None:
    for path in setup.micrographs:
        found = picks.get(path.stem, Picks())
        write_picks(layout.pick_path(setup.folder, path.stem, suffix), found, path.name)


def trained_on(model: str) -> set[str]:
    """The real micrographs the model records as trained on (a list, or lists by protein)."""
    real = find_model(model).training.get("real") or []
    if isinstance(real, dict):
        return {name for names in real.values() for name in names}
    return set(real)


# --------------------------------------------------------------------------- models


def model_for(protein: str, args: argparse.Namespace) -> str:
    """The model to score on ``protein``: given, found under the models root, or trained."""
    if args.model:
        return args.model
    root = Path(args.models_root or scratch_dir() / "bench_generalise" / "models")
    out = root / f"without-{protein}"
    model = out / args.variant
    if (model / "model.json").is_file():
        if args.train:
            print(f"{model} exists: not retrained (delete {out} to retrain)")
        return str(model)
    if not args.train:
        raise SystemExit(f"no model {model}: train it (--train) or point --models-root elsewhere")
    if out.exists():
        raise SystemExit(f"{out} exists without {args.variant}: delete it first")
    command = [sys.executable, "scripts/train_generic.py", "--leave-out", protein]
    command += ["--out", str(out)] + (["--mask-only"] if args.variant == "BoxNetMask" else [])
    if args.iterations:
        command += ["--iterations", str(args.iterations)]
    print("training:", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    print(f"trained without {protein} in {(time.perf_counter() - start) / 60:.1f} min")
    return str(model)


# --------------------------------------------------------------------------- boxnet-tui


def run_ours(setup: Setup, model: str, device: str, grid: list[float]) -> Figures:
    settings = PickSettings(diameter=setup.diameter)
    paths = setup.micrographs
    pick_folder(setup.folder, model, settings, suffix="warmup", device=device, paths=paths[:1])
    summary = pick_folder(setup.folder, model, settings, suffix="ours", device=device)
    assert not summary.errors, summary.errors
    if summary.scale_check is not None:  # once a folder, not in s/mic
        print(f"  {summary.scale_check.describe(setup.diameter)}", flush=True)
    threshold = default_threshold(find_model(model))
    report = score(setup, "ours")
    total = report.total
    figures = Figures(
        total.precision,
        total.recall,
        total.f1,
        total.n_picks,
        score(setup, "ours", setup.label_border).total.f1,
        threshold,
        total.f1,
        threshold,
        summary.seconds / summary.picked,
    )
    seen = trained_on(model)
    unseen = Score.total(m.score for m in report.micrographs if m.name not in seen)
    if any(m.name in seen for m in report.micrographs) and unseen.n_reference:
        figures.notes.append(f"F1 on the micrographs the model never trained on: {unseen.f1:.3f}")
    for value in sorted(grid, reverse=True):  # untimed; on ties the default, then the higher
        settings = PickSettings(diameter=setup.diameter, threshold=value)
        pick_folder(setup.folder, model, settings, suffix=grid_suffix(value), device=device)
        f1 = score(setup, grid_suffix(value)).total.f1
        if f1 > figures.best_f1:
            figures.best_f1, figures.best_threshold = f1, value
    return figures


def grid_suffix(threshold: float) -> str:
    return f"grid{round(threshold * 1000):04d}"


# --------------------------------------------------------------------------- Topaz


def topaz_radius(setup: Setup) -> int:
    return round(setup.diameter / 2 / (setup.pixel * TOPAZ_SCALE))


def topaz_cache(setup: Setup) -> Path:
    """The cache folder for this protein's micrographs (by content) and Topaz options."""
    import topaz

    digest = hashlib.sha256()
    digest.update(f"{topaz.__version__} {TOPAZ_SCALE} {topaz_radius(setup)} {TOPAZ_FLOOR}".encode())
    for path in setup.micrographs:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return (
        scratch_dir()
        / "bench_generalise"
        / "topaz-cache"
        / f"{setup.name}-{digest.hexdigest()[:16]}"
    )


def topaz_pick(paths: list[Path], work: Path, radius: int, device: str) -> tuple[Path, float]:
    """``topaz normalize`` then ``topaz extract`` on ``paths``: (the table, seconds)."""
    from topaz.commands import extract, normalize

    small = work / "small"
    small.mkdir(parents=True)
    table = work / "topaz.txt"
    gpu = "0" if device == "cuda" else "-1"
    normalize_args = [*map(str, paths), "-s", str(TOPAZ_SCALE), "-o", str(small), "-d", gpu]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        normalize.main(normalize.add_arguments().parse_args(normalize_args))
        small_paths = [str(small / path.name) for path in paths]
        extract_args = [*small_paths, "-r", str(radius), "-x", str(TOPAZ_SCALE), "-d", gpu]
        extract_args += ["-t", str(TOPAZ_FLOOR), "-o", str(table)]
        extract.main(extract.add_arguments().parse_args(extract_args))
    return table, time.perf_counter() - start


def topaz_load_seconds() -> float:
    """What loading the pretrained resnet16 takes (part of each `extract` run)."""
    from topaz.model.factory import load_model as topaz_load

    start = time.perf_counter()
    topaz_load("resnet16")
    return time.perf_counter() - start


def run_topaz(setup: Setup, device: str, use_cache: bool) -> Figures:
    shim = str(HERE / "topaz_shim")  # the torchvision stand-in topaz imports
    if shim not in sys.path:
        sys.path.insert(0, shim)
    try:
        cache = topaz_cache(setup)
    except ImportError:
        raise SystemExit(
            "Topaz is not installed: pip install --no-deps topaz-em==0.3.20 && "
            "pip install h5py scikit-learn tqdm psutil future (or --skip-topaz)"
        ) from None
    notes = []
    if use_cache and (cache / "timing.json").is_file():
        seconds = json.loads((cache / "timing.json").read_text())["seconds_per_micrograph"]
        notes.append(f"Topaz picks and time from the cache {cache}")
    else:
        paths = setup.micrographs
        with tempfile.TemporaryDirectory(dir=setup.folder.parent) as tmp:
            topaz_pick(paths[:1], Path(tmp) / "warmup", topaz_radius(setup), device)
            table, total = topaz_pick(paths, Path(tmp) / "all", topaz_radius(setup), device)
            seconds = (total - topaz_load_seconds()) / len(paths)
            cache.mkdir(parents=True, exist_ok=True)
            (cache / "topaz.txt").write_bytes(table.read_bytes())
        (cache / "timing.json").write_text(json.dumps({"seconds_per_micrograph": seconds}) + "\n")
    picks = read_topaz(cache / "topaz.txt")
    write_all(setup, picks, "topaz")
    write_all(setup, {k: p.subset(p.score > TOPAZ_DEFAULT) for k, p in picks.items()}, "topazdef")
    report, sweep = score(setup, "topazdef"), score(setup, "topaz").sweep
    assert sweep is not None
    best = {k: p.subset(p.score >= sweep.best_threshold) for k, p in picks.items()}
    write_all(setup, best, "topazbest")
    total = report.total
    return Figures(
        total.precision,
        total.recall,
        total.f1,
        total.n_picks,
        score(setup, "topazdef", setup.label_border).total.f1,
        TOPAZ_DEFAULT,
        sweep.best_f1,
        sweep.best_threshold,
        seconds,
        notes,
    )


@dataclass
class Agreement:
    """Of each picker's false picks (no reference within D/2), how many the other one also
    picks: two pickers that agree on most of their false picks have found objects the
    reference leaves out, not each its own mistakes."""

    ours_false: int
    ours_false_topaz_picks: int
    topaz_false: int
    topaz_false_ours_picks: int


def false_pick_agreement(setup: Setup, ours: str, topaz: str) -> Agreement:
    """:class:`Agreement` of the picks ``matching/*_<ours>.star`` and ``*_<topaz>.star`` on
    the interior, matched (one to one) within D/2 as the scores are."""
    counts = [0, 0, 0, 0]
    for path in setup.micrographs:
        a, b, ref = (interior_xy(setup, path.stem, suffix) for suffix in (ours, topaz, "manual"))
        for slot, (picker, other) in enumerate(((a, b), (b, a))):
            true = set(match_picks(picker, ref, setup.radius)[:, 0].tolist())
            shared = set(match_picks(picker, other, setup.radius)[:, 0].tolist())
            false = set(range(len(picker))) - true
            counts[2 * slot] += len(false)
            counts[2 * slot + 1] += len(false & shared)
    return Agreement(*counts)


def interior_xy(setup: Setup, stem: str, suffix: str) -> np.ndarray:
    """(N, 2) x, y of ``matching/<stem>_<suffix>.star`` on the scored interior."""
    found = read_picks(layout.pick_path(setup.folder, stem, suffix))
    return inside(found, setup.shape, setup.border).xy


# --------------------------------------------------------------------------- output


def describe(name: str, figures: Figures) -> str:
    return (
        f"  {name:10s} at {figures.threshold:g}: {figures.picks} picks, P {figures.precision:.3f} "
        f"R {figures.recall:.3f} F1 {figures.f1:.3f} (whole {figures.whole_f1:.3f}); best F1 "
        f"{figures.best_f1:.3f} at {figures.best_threshold:.3g}; {figures.seconds:.2f} s/mic"
    )


def table(rows: list[dict]) -> str:
    header = (
        f"{'protein':13s} | {'ours F1 default (whole)':23s} | {'ours best F1 (thr)':18s} | "
        f"{'Topaz F1 default':16s} | {'Topaz best F1 (thr)':19s} | {'s/mic ours':10s} | "
        f"{'s/mic topaz':11s} | ratio"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        ours, topaz = row["ours"], row.get("topaz")
        cells = [
            f"{row['protein']:13s}",
            f"{ours['f1']:.3f} ({ours['whole_f1']:.3f})".ljust(23),
            f"{ours['best_f1']:.3f} ({ours['best_threshold']:g})".ljust(18),
        ]
        if topaz:
            cells += [
                f"{topaz['f1']:.3f} ({topaz['whole_f1']:.3f})".ljust(16),
                f"{topaz['best_f1']:.3f} ({topaz['best_threshold']:.2f})".ljust(19),
                f"{ours['seconds']:.2f}".ljust(10),
                f"{topaz['seconds']:.2f}".ljust(11),
                f"{topaz['seconds'] / ours['seconds']:.1f}x",
            ]
        else:
            cells += ["-".ljust(16), "-".ljust(19), f"{ours['seconds']:.2f}".ljust(10)]
            cells += ["-".ljust(11), "-"]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def run_protein(protein: str, args: argparse.Namespace) -> dict:
    model = model_for(protein, args)
    scratch = scratch_dir() / "bench_generalise"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=f"{protein}-") as tmp:
        setup = make_setup(protein, Path(tmp) / "micrographs")
        count = len(setup.micrographs)
        print(
            f"{protein}: {count} micrographs {setup.shape[1]}x{setup.shape[0]} at {setup.pixel:g} "
            f"Å/px, D {setup.diameter:g} Å; radius {setup.radius:.1f} px, interior border "
            f"{setup.border:.1f} px (whole: {setup.label_border:g} px); model {model}",
            flush=True,
        )
        seen = len(trained_on(model) & {path.stem for path in setup.micrographs})
        if seen:
            print(f"  note: the model was trained on {seen} of these {count} micrographs")
        ours = run_ours(setup, model, args.device, args.grid)
        print(describe("boxnet-tui", ours), flush=True)
        row: dict = {
            "protein": protein,
            "model": model,
            "micrographs": count,
            "trained_on": seen,
            "diameter": setup.diameter,
            "pixel_size": setup.pixel,
            "radius_px": setup.radius,
            "border_px": setup.border,
            "whole_border_px": setup.label_border,
            "ours": vars(ours),
        }
        if not args.skip_topaz:
            topaz = run_topaz(setup, args.device, not args.no_cache)
            print(describe("topaz", topaz), flush=True)
            row["topaz"] = {**vars(topaz), "radius_px": topaz_radius(setup), "scale": TOPAZ_SCALE}
            agree = false_pick_agreement(setup, "ours", "topazbest")
            row["false_pick_agreement"] = vars(agree)
            print(
                f"  false picks: {agree.ours_false_topaz_picks} of our {agree.ours_false} are "
                f"Topaz picks at its best threshold, {agree.topaz_false_ours_picks} of its "
                f"{agree.topaz_false} ours",
                flush=True,
            )
        for note in ours.notes + (row.get("topaz", {}).get("notes") or []):
            print(f"  note: {note}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="one model (name or folder) scored on every protein")
    parser.add_argument("--models-root", type=Path, help="DIR holding without-<P>/<variant>")
    parser.add_argument("--train", action="store_true", help="train the missing models first")
    parser.add_argument("--iterations", type=int, help="passed to train_generic.py")
    parser.add_argument("--variant", default="BoxNetMask", choices=["BoxNetMask", "BoxNet"])
    parser.add_argument("--proteins", nargs="+", default=list(PROTEINS), choices=list(PROTEINS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--grid", type=float, nargs="*", default=GRID, help="thresholds re-picked (none: skip)"
    )
    parser.add_argument("--skip-topaz", action="store_true")
    parser.add_argument("--no-cache", action="store_true", help="rerun Topaz even if cached")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if bool(args.model) == bool(args.models_root or args.train):
        parser.error("give either --model, or --models-root and/or --train")
    start = time.perf_counter()
    rows = [run_protein(protein, args) for protein in args.proteins]
    print()
    print(table(rows))
    print(
        f"F1 within D/2 on the interior (border max(label border, 0.8 D)); (whole): label border "
        f"only. Topaz default threshold {TOPAZ_DEFAULT:g} (`topaz extract -t` default); best F1 "
        f"thresholds chosen knowing the answers. Total {time.perf_counter() - start:.0f} s."
    )
    if args.json:
        args.json.write_text(json.dumps({"proteins": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
