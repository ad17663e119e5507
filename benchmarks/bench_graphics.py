"""Graphics frames: encode time and bytes per frame for Sixel and Kitty, and a pan step.

A pan or zoom sends a new image; a cursor move sends (Sixel) the rows it changes or (Kitty) a
few bytes of text. Measured at two terminal sizes with 10x20 px cells, on a low-passed noise
image like a micrograph with pick circles drawn in:

    python benchmarks/bench_graphics.py [--steps 10]

"pan" is this process's own work for one step: crop the view from the display image, draw
the picks, encode (what the terminal does with the bytes is not counted). The Sixel frame is
as large as xterm's default limit allows (1000x1000) and, for comparison, unlimited.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from boxnet_tui.tui.graphics_frames import kitty_payload, sixel
from boxnet_tui.tui.widgets.viewer import KITTY_MAX_PIXELS

CELL = (10, 20)
TERMINALS = ((160, 48), (250, 70))
BROWSER_COLUMNS, OTHER_ROWS = 40, 3  # the list beside the viewer; header, status, footer
MAX_FRAME_SIDE = 2400
XTERM_SIXEL_MAX = (1000, 1000)


def display_image(side: int = 4096, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.normal(size=(side // 4, side // 4)), 2.0)
    grey = ((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)
    return Image.fromarray(grey).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")


def frame_size(columns: int, rows: int, limit: tuple[int, int] | None) -> tuple[int, int]:
    width, height = columns * CELL[0], rows * CELL[1]
    shrink = min(1.0, MAX_FRAME_SIDE / max(width, height))
    if limit:
        shrink = min(shrink, limit[0] / width, limit[1] / height)
    return int(width * shrink), int(height * shrink)


def make_frame(source: Image.Image, x: int, y: int, size: tuple[int, int]) -> Image.Image:
    """The view at (x, y), 1 display px a frame px, with pick circles."""
    frame = source.crop((x, y, x + size[0], y + size[1]))
    draw = ImageDraw.Draw(frame)
    for cx in range(40, size[0], 90):
        for cy in range(40, size[1], 90):
            draw.ellipse((cx - 25, cy - 25, cx + 25, cy + 25), outline=(80, 220, 120), width=2)
    return frame


def sixel_rows(frame: Image.Image, rows: range | None = None) -> int:
    """Sixel bytes for ``rows`` (all: the whole frame) cell rows, as SixelFrame sends them."""
    height = CELL[1]
    rows = rows if rows is not None else range((frame.height + height - 1) // height)
    total = 0
    for row in rows:
        band = frame.crop((0, row * height, frame.width, min(frame.height, (row + 1) * height)))
        total += len(sixel(band))
    return total


def timed(function: Callable[[], int], repeats: int) -> tuple[float, int]:
    """Median ms and the bytes of the last call."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="pan steps per figure")
    args = parser.parse_args()
    source = display_image()
    print(f"{'terminal':>9} {'method':<22} {'frame':>10} {'encode ms':>10} {'KB':>7} {'pan ms':>7}")
    for columns, rows in TERMINALS:
        view = (columns - BROWSER_COLUMNS, rows - OTHER_ROWS)
        cases: list[tuple[str, tuple[int, int], Callable[[Image.Image], int]]] = [
            ("sixel (xterm limit)", frame_size(*view, XTERM_SIXEL_MAX), sixel_rows),
            ("sixel (no limit)", frame_size(*view, None), sixel_rows),
            ("kitty png", frame_size(*view, None), lambda f: len(kitty_payload(f, "png")[1])),
            ("kitty zlib", frame_size(*view, None), lambda f: len(kitty_payload(f, "zlib")[1])),
        ]
        full = frame_size(*view, None)
        shrink = min(1.0, (KITTY_MAX_PIXELS / (full[0] * full[1])) ** 0.5)
        capped = (int(full[0] * shrink), int(full[1] * shrink))
        cases.append(("kitty png <=1 Mpx (app)", capped, lambda f: len(kitty_payload(f, "png")[1])))
        for name, size, encode in cases:
            frame = make_frame(source, 0, 0, size)
            encode_ms, size_bytes = timed(lambda f=frame, e=encode: e(f), 3)
            steps = []
            for step in range(1, args.steps + 1):
                start = time.perf_counter()
                encode(make_frame(source, 37 * step, 23 * step, size))
                steps.append((time.perf_counter() - start) * 1000)
            print(
                f"{columns}x{rows:<6} {name:<22} {size[0]:>4}x{size[1]:<5} {encode_ms:>10.0f} "
                f"{size_bytes / 1000:>7.0f} {statistics.median(steps):>7.0f}"
            )
        size = frame_size(*view, XTERM_SIXEL_MAX)
        frame = make_frame(source, 0, 0, size)
        move_ms, move_bytes = timed(lambda f=frame: sixel_rows(f, range(10, 13)), 5)
        print(
            f"{columns}x{rows:<6} {'sixel cursor move':<22} {'3 rows':>10} {move_ms:>10.0f} "
            f"{move_bytes / 1000:>7.0f}"
        )


if __name__ == "__main__":
    main()
