"""The real dev micrographs at their originals' size, for the benchmarks (no torch imported).

The shared EMPIAR-10017 micrographs are 2048² at 3.54 Å/px, binned from 4096² at 1.77 Å/px:
the benchmarks measure on the size a user's folder has, so they are Fourier-upscaled back.
"""

from __future__ import annotations

from pathlib import Path

from boxnet_tui.imaging import fourier_rescale
from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import read_micrograph, write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks

SIZE, PIXEL = 4096, 1.77


def upscale_real(source: Path, folder: Path, roots: list[str], suffix: str = "manual") -> None:
    """Write each root of ``source`` into ``folder`` at SIZE² and PIXEL Å/px, picks scaled."""
    for root in roots:
        micrograph = read_micrograph(source / f"{root}.mrc")
        # the micrograph itself, not its periodic component: the picker gets what a user has
        big, _ = fourier_rescale(
            micrograph.data, micrograph.pixel_size, PIXEL, out_shape=(SIZE, SIZE), periodic=False
        )
        write_micrograph(folder / f"{root}.mrc", big, PIXEL)
        picks = read_picks(layout.pick_path(source, root, suffix))
        scale = SIZE / micrograph.data.shape[1]
        write_picks(
            layout.pick_path(folder, root, suffix),
            Picks(picks.x * scale, picks.y * scale),
            f"{root}.mrc",
        )
