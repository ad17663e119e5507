"""Real micrographs as users hand them over: does picking hold when the same data come as
8-bit, 16-bit, filtered, binned or with a gain gradient?

For each protein P of ../shared/data, its micrographs are written again in each style below
(scratch copies under ``$BOXNET_TUI_HOME/scratch/bench_input_styles``; ../shared is only
read), picked with ``pick_folder`` at the model's default threshold and default settings (the
pixel size given, as a user gives ``--pixel-size`` for a TIFF), and scored as
``bench_generalise.py`` scores: F1 within D/2 on the interior (centres farther than
max(label border, 0.8 D) from every edge). Each style's change from the float original is the
figure: 0 means the style costs nothing.

Styles:
  float      the micrographs as shipped (float32 MRC)
  uint8      contrast-stretched to 0..255 (0.5/99.5 percentiles clipped), 8-bit TIFF
  int8       the same stretch to -128..127, MRC mode 0
  uint16     stretched to 200..3000 (a detector's offset and range), MRC mode 6
  lowpass    already low-passed to 20 Å (Gaussian), float32 MRC
  binned     binned 2x2 (twice the pixel size; the references halved), float32 MRC
  gradient   an uncorrected gain/ice gradient: x 0.6 .. 1.4 across the image, float32 MRC
  inverted   protein white (as some pipelines export), picked with --invert

The model: ``--model NAME`` for every protein, or ``--models-root DIR`` for the one trained
without each protein (``DIR/without-<P>/BoxNetMask``, ``scripts/train_generic.py
--leave-out P``): the unseen-protein figure.

    python benchmarks/bench_input_styles.py --models-root DIR [--styles uint8 binned]
    python benchmarks/bench_input_styles.py --model BoxNetMask
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import tifffile
from scipy import ndimage

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.evaluate import evaluate_folders
from boxnet_tui.imaging import bin_image
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import Micrograph, read_micrograph, scan_folder
from boxnet_tui.io.star import Picks, read_picks, write_picks
from boxnet_tui.paths import scratch_dir
from boxnet_tui.picking import WARP_BORDER
from boxnet_tui.training.real_proteins import PROTEINS

VARIANT = "BoxNetMask"


def stretch(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """``image`` linearly mapped to ``low .. high``, its 0.5/99.5 percentiles clipped."""
    a, b = np.percentile(image, [0.5, 99.5])
    return low + (np.clip(image, a, b) - a) / max(b - a, 1e-12) * (high - low)


def gradient(shape: tuple[int, int]) -> np.ndarray:
    """A diagonal ramp 0.6 .. 1.4: an uncorrected gain reference or a wedge of ice."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (0.6 + 0.8 * (rows / shape[0] + cols / shape[1]) / 2).astype(np.float32)


# style: (file suffix, micrograph transform (image, pixel size) -> (data, pixel size), invert)
Transform = Callable[[np.ndarray, float], tuple[np.ndarray, float]]
STYLES: dict[str, tuple[str, Transform, bool]] = {
    "float": (".mrc", lambda im, px: (im, px), False),
    "uint8": (".tif", lambda im, px: (np.round(stretch(im, 0, 255)).astype(np.uint8), px), False),
    "int8": (".mrc", lambda im, px: (np.round(stretch(im, -128, 127)).astype(np.int8), px), False),
    "uint16": (
        ".mrc",
        lambda im, px: (np.round(stretch(im, 200, 3000)).astype(np.uint16), px),
        False,
    ),
    "lowpass": (".mrc", lambda im, px: (ndimage.gaussian_filter(im, 20.0 / px / np.pi), px), False),
    "binned": (".mrc", lambda im, px: (bin_image(im, 2), 2 * px), False),
    "gradient": (
        ".mrc",
        lambda im, px: ((im - im.min() + im.std()) * gradient(im.shape), px),
        False,
    ),
    "inverted": (".mrc", lambda im, px: (-im, px), True),
}


def read_originals(protein: str) -> list[tuple[str, Micrograph, Picks]]:
    """``protein``'s micrographs and reference picks, read once for every style."""
    source = PROTEINS[protein].path()
    return [
        (
            path.stem,
            read_micrograph(path),
            read_picks(layout.pick_path(source, path.stem, "manual")),
        )
        for path in scan_folder(source)
    ]


def write_style(
    originals: list[tuple[str, Micrograph, Picks]], style: str, folder: Path
) -> tuple[float, float, tuple[int, int]]:
    """The micrographs and references written in ``style`` into ``folder``; returns (pixel
    size, factor from the originals' pixels, shape) of the written micrographs."""
    suffix, transform, _ = STYLES[style]
    (folder / layout.MATCHING).mkdir(parents=True)
    pixel, factor, shape = 0.0, 1.0, (0, 0)
    for root, micrograph, reference in originals:
        data, pixel = transform(micrograph.data, micrograph.pixel_size)
        shape, factor = data.shape, micrograph.pixel_size / pixel
        out = folder / f"{root}{suffix}"
        if suffix == ".tif":
            tifffile.imwrite(out, data[::-1])  # Warp's TIFF rows run bottom-up (as read)
        else:
            with mrcfile.new(out) as mrc:
                mrc.set_data(np.ascontiguousarray(data))
                mrc.voxel_size = pixel
        moved = Picks(reference.x * factor, reference.y * factor, reference.score)
        write_picks(layout.pick_path(folder, root, "manual"), moved, out.name)
    return pixel, factor, shape


def score_style(
    protein: str, originals: list[tuple[str, Micrograph, Picks]], style: str, model: str, work: Path
) -> dict:
    """Pick ``protein`` written in ``style`` and score it on the interior."""
    folder = work / style
    pixel, factor, shape = write_style(originals, style, folder)
    real = PROTEINS[protein]
    settings = PickSettings(diameter=real.diameter, pixel_size=pixel, invert=STYLES[style][2])
    start = time.perf_counter()
    summary = pick_folder(folder, model, settings, suffix="ours")
    seconds = time.perf_counter() - start
    if summary.errors:
        return {"style": style, "error": summary.errors[0]}
    matching = folder / layout.MATCHING
    report = evaluate_folders(
        matching,
        matching,
        real.diameter / 2 / pixel,
        picks_suffix="ours",
        reference_suffix="manual",
        border=max(real.border * factor, WARP_BORDER * real.diameter / pixel),
        image_shape=shape,
    )
    total = report.total
    return {
        "style": style,
        "f1": total.f1,
        "precision": total.precision,
        "recall": total.recall,
        "picks": total.n_picks,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="one model (name or folder) for every protein")
    parser.add_argument("--models-root", type=Path, help=f"DIR holding without-<P>/{VARIANT}")
    parser.add_argument("--proteins", nargs="+", default=list(PROTEINS), choices=list(PROTEINS))
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if bool(args.model) == bool(args.models_root):
        parser.error("give --model or --models-root")
    styles = ["float"] + [s for s in args.styles if s != "float"]  # the baseline first
    scratch = scratch_dir() / "bench_input_styles"
    scratch.mkdir(parents=True, exist_ok=True)
    rows = []
    for protein in args.proteins:
        model = args.model or str(args.models_root / f"without-{protein}" / VARIANT)
        print(f"{protein}: model {model}", flush=True)
        baseline, originals = None, read_originals(protein)
        with tempfile.TemporaryDirectory(dir=scratch, prefix=f"{protein}-") as tmp:
            for style in styles:
                row = {"protein": protein, "model": model}
                row.update(score_style(protein, originals, style, model, Path(tmp)))
                rows.append(row)
                if "error" in row:
                    print(f"  {style:9s} failed: {row['error']}", flush=True)
                    continue
                baseline = row["f1"] if baseline is None else baseline
                print(
                    f"  {style:9s} F1 {row['f1']:.3f} (P {row['precision']:.3f}, "
                    f"R {row['recall']:.3f}, {row['picks']} picks)  change "
                    f"{row['f1'] - baseline:+.3f}  {row['seconds']:.1f} s",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
