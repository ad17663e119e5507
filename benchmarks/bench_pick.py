"""Picking speed and accuracy: boxnet-tui side by side with Topaz on the same micrographs.

The micrographs are the real held-out beta-galactosidase micrographs that the model records
as never trained on (model.json, training.held_out), brought back to the originals' 4096² at
1.77 Å/px by Fourier upscaling, with their reference picks. Both pickers run in this process
(imports and model loading excluded from the times), on the same files:

- boxnet-tui: ``pick_folder`` with default settings and ``--diameter 190``;
- Topaz 0.3 (PyPI topaz-em, pretrained resnet16_u64): ``topaz normalize -s 4`` (its
  ``preprocess``) then ``topaz extract -r 13 -x 4`` at its default threshold (-6), as its
  tutorial does for this particle size (190 Å = 27 px after downsampling by 4).

F1 is measured against the reference picks within half a diameter (53.7 px), ignoring the
unannotated 130 px border; also the best F1 over all thresholds (chosen knowing the answers).

    python benchmarks/bench_pick.py [--model BoxNetMask] [--device cpu] [--skip-topaz]
    python benchmarks/bench_pick.py --model RETRAINED --micrographs ROOT ...   # a retrained model
    python benchmarks/bench_pick.py --synthetic   # a synthetic protein no model has seen
    python benchmarks/bench_pick.py --synthetic --synthetic-diameter 120   # a smaller one

With ``--synthetic`` the micrographs are synthetic (4096², 1.77 Å/px, a 150 Å protein or
``--synthetic-diameter``, drawn from a seed the generic models were not trained on) and the
reference is their ground truth: a stand-in for "a protein the model never saw" where no such
real data is at hand. The network's input is scaled to the particle: a smaller protein on the
same micrograph is a larger input (120 Å: 1208² against 764² for beta-galactosidase).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from real_data import upscale_real

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.evaluate import Report, evaluate_folders
from boxnet_tui.heap import keep_freed_memory
from boxnet_tui.io import layout
from boxnet_tui.io.interop import read_topaz
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import write_picks
from boxnet_tui.model.store import find_model
from boxnet_tui.paths import scratch_dir
from boxnet_tui.synth import make_micrograph

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "data" / "empiar-10017"
DIAMETER, PIXEL, SIZE, BORDER = 190.0, 1.77, 4096, 130.0
SYNTHETIC_DIAMETER = 150.0


def make_folder(folder: Path, roots: list[str]) -> None:
    """Upscale the real 2048² / 3.54 Å micrographs to the originals' 4096² / 1.77 Å."""
    upscale_real(REAL, folder, roots)


def make_synthetic_folder(folder: Path, count: int, diameter: float = SYNTHETIC_DIAMETER) -> None:
    """Synthetic micrographs of an unseen protein; reference picks under the suffix 'manual'."""
    for index in range(count):
        synthetic = make_micrograph(
            SIZE, PIXEL, diameter, seed=777_000 + index, protein_seed=777_777
        )
        root = f"unseen_{index:02d}"
        write_micrograph(folder / f"{root}.mrc", synthetic.image, PIXEL)
        write_picks(layout.pick_path(folder, root, "manual"), synthetic.picks, f"{root}.mrc")


def score(folder: Path, suffix: str, diameter: float, border: float) -> Report:
    return evaluate_folders(
        folder / "matching",
        folder / "matching",
        diameter / 2 / PIXEL,
        picks_suffix=suffix,
        reference_suffix="manual",
        border=border,
        image_shape=(SIZE, SIZE),
    )


def run_ours(folder: Path, model: str, device: str, diameter: float) -> float:
    """Seconds a micrograph of a second pass over the folder; the peak memory after the first
    pass and after the second (a pass, not one micrograph, warms up: picking reads ahead in a
    thread of its own, whose freed memory glibc then keeps too)."""
    settings = PickSettings(diameter=diameter)
    warm = pick_folder(folder, model, settings, suffix="warmup", device=device)
    after_one = peak_rss_mb()
    if warm.scale_check is not None:  # once a folder (this process reuses it): not in s/mic
        print(warm.scale_check.describe(diameter))
    summary = pick_folder(folder, model, settings, suffix="ours", device=device)
    assert not summary.errors, summary.errors
    print(
        f"peak memory: {after_one:.0f} MB after {warm.picked} micrographs, {peak_rss_mb():.0f} MB "
        f"after {summary.picked} more (flat = bounded by one micrograph plus the model)"
    )
    return summary.seconds / summary.picked


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_topaz(folder: Path, device: str, diameter: float) -> float:
    sys.path.insert(0, str(HERE / "topaz_shim"))
    from topaz.commands import extract, normalize

    paths = [str(p) for p in sorted(folder.glob("*.mrc"))]
    small = folder / "topaz_small"
    small.mkdir()
    table = folder / "topaz.txt"
    gpu = 0 if device == "cuda" else -1
    radius = round(diameter / 2 / (PIXEL * 4))  # the particle radius after downsampling by 4
    normalize_args = normalize.add_arguments().parse_args(
        [*paths, "-s", "4", "-o", str(small), "-d", str(gpu)]
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        normalize.main(normalize_args)
        small_paths = [str(p) for p in sorted(small.glob("*.mrc"))]
        extract_args = extract.add_arguments().parse_args(
            [*small_paths, "-r", str(radius), "-x", "4", "-d", str(gpu), "-o", str(table)]
        )
        extract.main(extract_args)
    seconds = time.perf_counter() - start
    for name, picks in read_topaz(table).items():
        write_picks(layout.pick_path(folder, name, "topaz"), picks, f"{name}.mrc")
    return seconds / len(paths)


def describe(name: str, report: Report, seconds: float) -> str:
    total = report.total
    line = (
        f"{name:10s} {seconds:7.2f} s/mic   P {total.precision:.3f}  R {total.recall:.3f}  "
        f"F1 {total.f1:.3f}"
    )
    if report.sweep is not None:
        line += f"   best F1 {report.sweep.best_f1:.3f} at {report.sweep.best_threshold:.3g}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="BoxNetMask")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip-topaz", action="store_true")
    parser.add_argument(
        "--heap",
        choices=["kept", "default"],
        default="kept",
        help="kept: glibc keeps freed blocks, as `boxnet-tui` sets it (heap.keep_freed_memory); "
        "default: glibc's own thresholds (benchmarks/bench_heap.py compares the two)",
    )
    parser.add_argument("--synthetic", action="store_true", help="an unseen synthetic protein")
    parser.add_argument("--count", type=int, default=3, help="synthetic micrographs")
    parser.add_argument(
        "--synthetic-diameter",
        type=float,
        default=SYNTHETIC_DIAMETER,
        help=f"Å ({SYNTHETIC_DIAMETER:g}): the network's input grows as the particle shrinks",
    )
    parser.add_argument(
        "--micrographs",
        nargs="+",
        metavar="ROOT",
        help="these beta-galactosidase micrographs instead of the model's held-out ones (a "
        "retrained model holds out one: give micrographs neither it nor its base trained on)",
    )
    args = parser.parse_args()
    scratch_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        folder = Path(tmp)
        if args.synthetic:
            diameter, border = args.synthetic_diameter, 0.0
            make_synthetic_folder(folder, args.count, diameter)
            print(
                f"{args.count} synthetic micrographs of an unseen {diameter:g} Å protein, {SIZE}² "
                f"at {PIXEL} Å/px"
            )
        else:
            if not REAL.is_dir():
                raise SystemExit(f"real data not found at {REAL}")
            held_out = args.micrographs or find_model(args.model).training.get("held_out") or []
            if isinstance(held_out, dict):  # per real protein since the two-protein recipe
                held_out = held_out.get(REAL.name, [])
            if isinstance(held_out, str):  # a retrained model's one held-out micrograph
                held_out = [held_out]
            if not held_out:
                raise SystemExit(f"model {args.model} records no held-out micrographs")
            diameter, border = DIAMETER, BORDER
            make_folder(folder, held_out)
            what = "chosen" if args.micrographs else "held-out"
            print(f"{len(held_out)} {what} micrographs, {SIZE}² float32 at {PIXEL} Å/px")
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
        if args.heap == "kept":  # as the CLI runs, from here: the folder's making is not picking
            keep_freed_memory()
        ours = run_ours(folder, args.model, args.device, diameter)
        print(describe("boxnet-tui", score(folder, "ours", diameter, border), ours))
        if not args.skip_topaz:
            topaz = run_topaz(folder, args.device, diameter)
            print(describe("topaz", score(folder, "topaz", diameter, border), topaz))
            print(f"speed ratio topaz / boxnet-tui: {topaz / ours:.1f}x")


if __name__ == "__main__":
    main()
