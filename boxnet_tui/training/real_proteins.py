"""The real proteins of ``../shared/data`` the generic recipe trains on and the benchmarks score.

One table, read by ``scripts/train_generic.py`` and ``benchmarks/``: each protein's stated
diameter, the unlabelled edge its annotators left, the micrographs held out of training and
those whose labels are too incomplete to use. ``BOXNET_TUI_SHARED_DATA`` points elsewhere
than the checkout's ``../shared/data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get(
        "BOXNET_TUI_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"
    )
)


@dataclass(frozen=True)
class RealProtein:
    """A real data set of ../shared/data and how it is used."""

    folder: str
    diameter: float  # Å
    border: float  # micrograph px the annotators left unlabelled
    held_out: tuple[str, ...]  # reported on, never trained on
    skipped: tuple[str, ...] = ()  # labels that miss many particles

    def path(self) -> Path:
        return SHARED_DATA / self.folder


PROTEINS = {
    protein.folder: protein
    for protein in (
        RealProtein(
            "empiar-10017",  # beta-galactosidase, 2048² at 3.54 Å/px
            190.0,
            65.0,
            (
                "Falcon_2012_06_12-14_33_35_0",
                "Falcon_2012_06_12-15_43_48_0",
                "Falcon_2012_06_12-16_59_12_0",
            ),
            ("Falcon_2012_06_12-15_07_41_0",),
        ),
        RealProtein(  # 80S ribosome, 1024² at 5.36 Å/px
            "empiar-10028", 300.0, 0.0, ("EMPIAR-10028_065", "EMPIAR-10028_315")
        ),
    )
}
