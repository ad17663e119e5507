"""The demo folder: synthetic micrographs with known particles, picked by the generic model."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from boxnet_tui.batch_picking import FolderProgress, PickSettings, pick_folder
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import scan_folder
from boxnet_tui.model.info import DEFAULT_MODEL
from boxnet_tui.paths import home

DEMO_COUNT = 6
DEMO_DIAMETER = 180.0  # Å, the synthetic particles' size
DEMO_SEED = 424_242  # a protein the shipped models were not trained on


def default_demo_folder() -> Path:
    return home() / "demo"


def ensure_demo(
    folder: str | os.PathLike[str] | None = None,
    progress: Callable[[FolderProgress], None] | None = None,
    *,
    count: int = DEMO_COUNT,
    size: int = 2048,
) -> Path:
    """Make the demo folder if it has no micrographs, and pick it if it has no picks yet."""
    from boxnet_tui.synth import make_dataset

    folder = Path(folder) if folder is not None else default_demo_folder()
    if not folder.is_dir() or not scan_folder(folder):
        make_dataset(folder, count, size=size, diameter=DEMO_DIAMETER, seed=DEMO_SEED)
    roots = [path.stem for path in scan_folder(folder)]
    if not all(layout.pick_path(folder, root, DEFAULT_MODEL).exists() for root in roots):
        pick_folder(folder, DEFAULT_MODEL, PickSettings(diameter=DEMO_DIAMETER), progress=progress)
    return folder


def demo_score(folder: str | os.PathLike[str]) -> str:
    """One line: how the generic model's picks compare with the demo's known particles."""
    from boxnet_tui.evaluate import evaluate_folders
    from boxnet_tui.io.micrographs import read_info

    matching = layout.matching_dir(folder)
    first = read_info(scan_folder(folder)[0])
    radius = DEMO_DIAMETER / (first.pixel_size or 1.0) / 3  # a third of the diameter
    report = evaluate_folders(
        matching, matching, radius, picks_suffix=DEFAULT_MODEL, reference_suffix="truth"
    )
    t = report.total
    return (
        f"{DEFAULT_MODEL} against the known particles: precision {t.precision:.3f}, "
        f"recall {t.recall:.3f}, F1 {t.f1:.3f} ({t.n_picks} picks, {t.n_reference} particles)"
    )
