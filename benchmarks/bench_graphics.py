"""Graphics frames: encode time and bytes per frame for Sixel and Kitty, and a pan step.

A pan or zoom sends a new image; a cursor move sends (Sixel) the rows it changes or (Kitty) a
few bytes of text. Measured at two terminal sizes with 10x20 px cells, on a synthetic
micrograph as the app shows it (low-passed, stretched, mask tint, picks coloured by score,
minimap) or, with ``--source smooth``, on smooth low-passed noise with pick circles:

    python benchmarks/bench_graphics.py [--steps 10] [--source micrograph|smooth]

"pan" is this process's own work for one step: crop the view from the display image, draw
the picks, encode (what the terminal does with the bytes is not counted), as wall time and as
CPU time (steadier where other jobs share the cores; "ours: 0.3x" is the CPU time ratio).
The Sixel frame is as large as xterm's default limit allows (1000x1000) and, for comparison,
unlimited; Sixel is encoded by ours (``tui/sixel.py``: 64 greys, numpy, all rows at once, as
``SixelFrame`` does) and, side by side, by textual-image (row by row, its octree quantiser).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from boxnet_tui.tui.graphics_frames import kitty_payload
from boxnet_tui.tui.sixel import encode, palette
from boxnet_tui.tui.widgets.viewer import KITTY_MAX_PIXELS

CELL = (10, 20)
TERMINALS = ((160, 48), (250, 70))
BROWSER_COLUMNS, OTHER_ROWS = 40, 3  # the list beside the viewer; header, status, footer
MAX_FRAME_SIDE = 2400
XTERM_SIXEL_MAX = (1000, 1000)


def display_image(side: int = 4096, seed: int = 0) -> Image.Image:
    """Smooth noise: long runs, the easy case for Sixel."""
    rng = np.random.default_rng(seed)
    noise = gaussian_filter(rng.normal(size=(side // 4, side // 4)), 2.0)
    grey = ((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8)
    return Image.fromarray(grey).resize((side, side), Image.Resampling.BILINEAR).convert("RGB")


def micrograph_image(side: int = 4096, seed: int = 0) -> Image.Image:
    """A synthetic micrograph rendered by the app's display code at one display px per
    micrograph px, mask tinted, picks scored, minimap: as noisy as a real frame."""
    from boxnet_tui.display import Overlay, View, prepare, render
    from boxnet_tui.io.micrographs import Micrograph
    from boxnet_tui.synth import junk_mask_8a, make_micrograph

    synth = make_micrograph(side, seed=seed)
    prepared = prepare(Micrograph(Path("synth.mrc"), synth.image, synth.pixel_size))
    xy = np.column_stack([synth.picks.x, synth.picks.y])
    scores = np.random.default_rng(seed).random(len(xy))
    mask = junk_mask_8a(synth.junk, synth.pixel_size)
    if not mask.any():  # no carbon drawn: a corner of junk, for the tint's colours
        mask[: mask.shape[0] // 4, : mask.shape[1] // 4] = True
    overlay = Overlay(xy, 60.0, mask=mask, scores=scores, score_span=(0.0, 1.0))
    image = render(prepared, View((side, side), side, side, (side / 2, side / 2), 0), overlay)
    image.info["picks"] = True  # drawn: make_frame adds none
    return image


def frame_size(columns: int, rows: int, limit: tuple[int, int] | None) -> tuple[int, int]:
    width, height = columns * CELL[0], rows * CELL[1]
    shrink = min(1.0, MAX_FRAME_SIDE / max(width, height))
    if limit:
        shrink = min(shrink, limit[0] / width, limit[1] / height)
    return int(width * shrink), int(height * shrink)


def make_frame(source: Image.Image, x: int, y: int, size: tuple[int, int]) -> Image.Image:
    """The view at (x, y), 1 display px a frame px, with pick circles (the smooth source;
    the micrograph has its own)."""
    frame = source.crop((x, y, x + size[0], y + size[1]))
    if source.info.get("picks"):
        return frame
    draw = ImageDraw.Draw(frame)
    for cx in range(40, size[0], 90):
        for cy in range(40, size[1], 90):
            draw.ellipse((cx - 25, cy - 25, cx + 25, cy + 25), outline=(80, 220, 120), width=2)
    return frame


def sixel_rows(frame: Image.Image, rows: range | None = None) -> int:
    """Sixel bytes for ``rows`` (all: the whole frame) cell rows, as SixelFrame sends them:
    the frame in palette indices, the rows encoded in one call."""
    height = CELL[1]
    colours = palette(256)
    indices = colours.indices(np.asarray(frame.convert("RGB")))
    if rows is not None:
        indices = indices[rows.start * height : rows.stop * height]
    return sum(len(image) for image in encode(indices, colours, height))


def sixel_rows_textual_image(frame: Image.Image, rows: range | None = None) -> int:
    """The same with textual-image's encoder, row by row (what SixelFrame did before)."""
    from textual_image._sixel import SixelOptions, image_to_sixels

    height = CELL[1]
    rows = rows if rows is not None else range((frame.height + height - 1) // height)
    total = 0
    for row in rows:
        band = frame.crop((0, row * height, frame.width, min(frame.height, (row + 1) * height)))
        total += len(image_to_sixels(band, SixelOptions(colors=256)))
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
    parser.add_argument("--source", choices=("micrograph", "smooth"), default="micrograph")
    args = parser.parse_args()
    source = micrograph_image() if args.source == "micrograph" else display_image()
    print(f"source: {args.source}")
    head = ("terminal", "method", "frame", "encode ms", "KB", "pan ms", "cpu ms")
    print("{:>9} {:<26} {:>10} {:>10} {:>7} {:>7} {:>7}".format(*head))
    for columns, rows in TERMINALS:
        view = (columns - BROWSER_COLUMNS, rows - OTHER_ROWS)
        xterm, unlimited = frame_size(*view, XTERM_SIXEL_MAX), frame_size(*view, None)
        cases: list[tuple[str, tuple[int, int], Callable[[Image.Image], int]]] = [
            ("sixel (xterm limit)", xterm, sixel_rows),
            ("  textual-image", xterm, sixel_rows_textual_image),
            ("sixel (no limit)", unlimited, sixel_rows),
            ("  textual-image", unlimited, sixel_rows_textual_image),
            ("kitty png", unlimited, lambda f: len(kitty_payload(f, "png")[1])),
            ("kitty zlib", unlimited, lambda f: len(kitty_payload(f, "zlib")[1])),
        ]
        shrink = min(1.0, (KITTY_MAX_PIXELS / (unlimited[0] * unlimited[1])) ** 0.5)
        capped = (int(unlimited[0] * shrink), int(unlimited[1] * shrink))
        cases.append(("kitty png <=1 Mpx (app)", capped, lambda f: len(kitty_payload(f, "png")[1])))
        last_cpu = 0.0
        for name, size, encode_frame in cases:
            frame = make_frame(source, 0, 0, size)
            encode_ms, size_bytes = timed(lambda f=frame, e=encode_frame: e(f), 3)
            steps, cpu = [], []
            for step in range(1, args.steps + 1):
                start, start_cpu = time.perf_counter(), time.process_time()
                encode_frame(make_frame(source, 37 * step, 23 * step, size))
                steps.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
            pan, pan_cpu = statistics.median(steps), statistics.median(cpu)
            ratio = f"  ours: {last_cpu / pan_cpu:.2f}x" if name.startswith("  ") else ""
            last_cpu = pan_cpu
            print(
                f"{columns}x{rows:<6} {name:<26} {size[0]:>4}x{size[1]:<5} {encode_ms:>10.0f} "
                f"{size_bytes / 1000:>7.0f} {pan:>7.0f} {pan_cpu:>7.0f}{ratio}"
            )
        frame = make_frame(source, 0, 0, xterm)
        for name, encode_rows in (("sixel cursor move", sixel_rows),
                                  ("  textual-image", sixel_rows_textual_image)):  # fmt: skip
            move_ms, move_bytes = timed(lambda f=frame, e=encode_rows: e(f, range(10, 13)), 5)
            print(
                f"{columns}x{rows:<6} {name:<26} {'3 rows':>10} {move_ms:>10.0f} "
                f"{move_bytes / 1000:>7.0f}"
            )


if __name__ == "__main__":
    main()
