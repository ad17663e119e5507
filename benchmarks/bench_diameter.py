"""How forgiving is a model when the user states the wrong particle diameter?

Picks the first micrographs of a real protein of ../shared/data with a model at stated
diameters 0.7x .. 1.4x the true one and scores them against the reference picks, always
within half the *true* diameter, on the interior (border max(label border, 0.8 D)). F1 at a
few thresholds, since a wrong size also moves the score scale.

    python benchmarks/bench_diameter.py --model DIR/without-empiar-10017/BoxNetMask \
        [--protein empiar-10017] [--count 5]
"""

from __future__ import annotations

import argparse

from boxnet_tui.batch_picking import PickSettings, prepare
from boxnet_tui.evaluate import Score, inside, score_picks
from boxnet_tui.io.micrographs import read_info, scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.model.inference import predict_probabilities
from boxnet_tui.model.store import load_model
from boxnet_tui.picking import WARP_BORDER, pick_at_each
from boxnet_tui.training.real_proteins import PROTEINS

FACTORS = (0.7, 0.85, 1.0, 1.2, 1.4)
THRESHOLDS = (0.4, 0.6, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model name or folder")
    parser.add_argument("--protein", default="empiar-10017", choices=sorted(PROTEINS))
    parser.add_argument("--count", type=int, default=5, help="micrographs")
    args = parser.parse_args()
    protein = PROTEINS[args.protein]
    network, info = load_model(args.model, "cpu")
    paths = [p for p in scan_folder(protein.path()) if p.stem not in protein.skipped][: args.count]
    print(
        f"{args.model} on {len(paths)} micrographs of {args.protein}, true D {protein.diameter:g} Å"
    )
    for factor in FACTORS:
        stated = factor * protein.diameter
        totals = {t: Score(0, 0, 0) for t in THRESHOLDS}
        for path in paths:
            reference = read_picks(protein.path() / "matching" / f"{path.stem}_manual.star")
            prepared = prepare(path, PickSettings(diameter=stated), info.scale)
            probabilities = predict_probabilities(network, prepared.image)
            shape = read_info(path).shape
            true_px = protein.diameter / (prepared.pixel_size / prepared.scale)
            border = max(protein.border, WARP_BORDER * true_px)
            picked = pick_at_each(probabilities, stated, THRESHOLDS, pixel_size=prepared.pixel_size)
            for t, result in picked.items():
                picks = inside(result.to_micrograph(prepared.scale), shape, border)
                totals[t] += score_picks(picks, inside(reference, shape, border), true_px / 2)
        cells = "  ".join(f"t {t}: F1 {s.f1:.3f}" for t, s in totals.items())
        print(f"stated {stated:5.0f} Å ({factor:.2f}x)  {cells}", flush=True)


if __name__ == "__main__":
    main()
