"""The public example set that retraining dilutes new examples with (Warp's "public data").

Warp ships a corpus of curated micrographs; we cannot, so the package makes its own the first
time it is needed: synthetic micrographs (many pixel sizes, particle sizes and junk) written as
Warp example TIFFs under ``$BOXNET_TUI_HOME/public_set/``. A user can point ``--public-set``
at Warp's ``boxnet2training`` folder instead; both are read lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from boxnet_tui.io.examples import write_examples
from boxnet_tui.paths import home

AUTO = "auto"
FILE_NAME = "synthetic.tif"
SIDE_AT_8A = 512  # px: enough context per example, a small file (about 3 MB a micrograph)


def public_set_dir() -> Path:
    return home() / "public_set"


def ensure_public_set(
    count: int = 24, seed: int = 2024, progress: Callable[[int, int], None] | None = None
) -> Path:
    """The folder of the package's own public set, made on first use (atomically)."""
    from boxnet_tui.synth import junk_mask_8a, make_micrograph
    from boxnet_tui.training.labels import make_example

    folder = public_set_dir()
    target = folder / FILE_NAME
    if target.is_file():
        return folder
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(count):
        pixel_size = float(rng.uniform(0.9, 2.6))
        diameter = float(rng.uniform(90, 350))
        size = int(SIDE_AT_8A * 8 / pixel_size)
        synthetic = make_micrograph(
            size, pixel_size, diameter, seed=seed * 100 + index, protein_seed=seed * 100 + index
        )
        examples.append(
            make_example(
                synthetic.image,
                pixel_size,
                synthetic.picks,
                diameter,
                junk=junk_mask_8a(synthetic.junk, pixel_size),
                name=f"public_{index:03d}",
            )
        )
        if progress is not None:
            progress(index + 1, count)
    write_examples(target, examples)
    return folder


def resolve_public_set(choice: str | None) -> str | None:
    """``auto`` -> the package's own set (made if absent); ``none``/None -> no public set."""
    if choice is None or choice.lower() == "none":
        return None
    if choice.lower() == AUTO:
        return str(ensure_public_set())
    return choice
