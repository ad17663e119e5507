"""Picking with glibc keeping freed blocks (``heap.keep_freed_memory``, as ``boxnet-tui``
runs) against glibc's own thresholds: ``bench_pick.py --skip-topaz`` both ways, alternating,
each in a process of its own (the setting is per process). Prints each run's seconds a
micrograph and peak memory, the medians and their ratio.

    python benchmarks/bench_heap.py [--rounds 3] [bench_pick options, e.g. --synthetic]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(heap: str, extra: list[str]) -> tuple[float, float]:
    """(seconds a micrograph, peak MB) of one ``bench_pick.py`` run."""
    command = [sys.executable, str(HERE / "bench_pick.py"), "--skip-topaz", "--heap", heap]
    out = subprocess.run([*command, *extra], capture_output=True, text=True, check=True).stdout
    seconds = float(re.search(r"boxnet-tui\s+([\d.]+) s/mic", out).group(1))
    peak = float(re.search(r"(\d+) MB after \d+ more", out).group(1))
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args, extra = parser.parse_known_args()
    results: dict[str, list[tuple[float, float]]] = {"kept": [], "default": []}
    for round_ in range(args.rounds):
        order = ("kept", "default") if round_ % 2 == 0 else ("default", "kept")
        for heap in order:  # alternating: neither gets the quieter moments
            results[heap].append(run(heap, extra))
            seconds, peak = results[heap][-1]
            print(
                f"round {round_ + 1} {heap:8s} {seconds:.2f} s/mic  peak {peak:.0f} MB", flush=True
            )
    kept, default = (statistics.median(s for s, _ in results[h]) for h in ("kept", "default"))
    print(f"median kept {kept:.2f} s/mic, default {default:.2f} s/mic: {default / kept:.2f}x")


if __name__ == "__main__":
    main()
