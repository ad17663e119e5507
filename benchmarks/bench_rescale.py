"""Read a 4096² float32 micrograph and rescale it to 8 Å/px: ours vs a plain reference.

The reference is what one writes first: numpy's full rfft2, crop, irfft2. Both run here,
side by side, on the same file, best of several repeats. Prints times and the ratio. Ours
is timed as pickers run it (with the periodic component, ``fourier_rescale``'s default) and
without it; the accuracy check compares the plain crop, which the reference computes.

Then the rescale a diameter-scaled model's picking does (``--diameter``: to 20 px a
diameter, high- and low-passed) with its block mean first (``prebin_block``) against the
exact crop, alternating, and how far apart the two images are (the micrograph is white
noise, the worst case for what the block mean folds back).

    python benchmarks/bench_rescale.py [--size 4096] [--pixel-size 1.77] [--diameter 190]
        [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from boxnet_tui.imaging import fourier_rescale, prebin_block, scaled_shape
from boxnet_tui.io.micrographs import read_micrograph, write_micrograph
from boxnet_tui.paths import scratch_dir
from boxnet_tui.training.generic import GENERIC_SCALE


def reference_rescale(image: np.ndarray, pixel_size: float) -> np.ndarray:
    """Plain numpy Fourier crop: full 2-D rfft, keep the low frequencies, inverse."""
    out_y, out_x = scaled_shape(image.shape, pixel_size)
    spectrum = np.fft.rfft2(image)
    half = out_y // 2
    crop = np.concatenate([spectrum[:half, : out_x // 2 + 1], spectrum[-half:, : out_x // 2 + 1]])
    small = np.fft.irfft2(crop, s=(out_y, out_x))
    return (small * (out_y * out_x) / image.size).astype(np.float32)


def best_of(repeats: int, job) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = job()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--pixel-size", type=float, default=1.77)
    parser.add_argument("--diameter", type=float, default=190.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    scratch_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as folder:
        path = Path(folder) / "bench.mrc"
        rng = np.random.default_rng(0)
        write_micrograph(
            path, rng.normal(size=(args.size, args.size)).astype(np.float32), args.pixel_size
        )

        def ours():
            micrograph = read_micrograph(path)
            return fourier_rescale(micrograph.data, micrograph.pixel_size)[0]

        def ours_plain():
            micrograph = read_micrograph(path)
            return fourier_rescale(micrograph.data, micrograph.pixel_size, periodic=False)[0]

        def plain():
            micrograph = read_micrograph(path)
            return reference_rescale(micrograph.data, micrograph.pixel_size)

        scale, diameter = GENERIC_SCALE, args.diameter
        options = {
            "highpass_angstrom": scale.highpass(diameter),
            "lowpass_px": scale.lowpass_px,
        }

        def scaled(prebin: bool):
            def job():
                micrograph = read_micrograph(path)
                target = scale.pixel_size(diameter)
                return fourier_rescale(
                    micrograph.data, micrograph.pixel_size, target, prebin=prebin, **options
                )[0]

            return job

        t_binned, t_exact = [], []
        for _ in range(args.repeats):  # alternating: neither gets the quieter moments
            t, small_binned = best_of(1, scaled(True))
            t_binned.append(t)
            t, small_exact = best_of(1, scaled(False))
            t_exact.append(t)
        t_read, _ = best_of(args.repeats, lambda: read_micrograph(path))
        t_ours, _ = best_of(args.repeats, ours)
        t_ours_plain, small_ours = best_of(args.repeats, ours_plain)
        t_plain, small_plain = best_of(args.repeats, plain)

    difference = float(np.abs(small_ours - small_plain).max() / np.abs(small_plain).max())
    shape = small_ours.shape
    print(f"micrograph {args.size}² float32 at {args.pixel_size} Å/px -> {shape} at 8 Å/px")
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"read only:                 {t_read * 1000:8.1f} ms")
    print(f"read + rescale, ours:      {t_ours * 1000:8.1f} ms")
    print(f"  without the periodic part: {t_ours_plain * 1000:6.1f} ms")
    print(f"read + rescale, reference: {t_plain * 1000:8.1f} ms")
    print(f"ratio reference / ours:    {t_plain / t_ours:8.2f}x")
    print(f"max relative difference (plain crops): {difference:.2e}")
    block = prebin_block((args.size, args.size), small_exact.shape, scale.lowpass_px)
    gap = small_binned - small_exact
    correlation = np.corrcoef(small_binned.ravel(), small_exact.ravel())[0, 1]
    print(
        f"diameter {diameter:g} Å -> {small_exact.shape} at {scale.pixel_size(diameter):.3g} "
        f"Å/px, {block}x{block} block mean first:"
    )
    print(f"  read + rescale, block mean first: {min(t_binned) * 1000:8.1f} ms")
    print(f"  read + rescale, exact crop:       {min(t_exact) * 1000:8.1f} ms")
    print(f"  ratio exact / block mean first:   {min(t_exact) / min(t_binned):8.2f}x")
    print(
        f"  difference: rms {float(np.sqrt((gap**2).mean()) / small_exact.std()):.3f} of the "
        f"image's spread, correlation {correlation:.4f}"
    )


if __name__ == "__main__":
    main()
