"""Shards side by side: N ``boxnet-tui pick --shard K/N`` processes against one process.

One folder of synthetic micrographs (``boxnet-tui synth``'s, cached under
``$BOXNET_TUI_HOME/scratch``) is picked, in one run of this script, by

1. one process: ``boxnet-tui pick FOLDER`` (torch's default threads: every core);
2. N shard processes started together: ``boxnet-tui pick FOLDER --shard K/N`` (each with
   torch's default threads, so N × cores threads on the cores);
3. the same N shards with ``OMP_NUM_THREADS = max(1, cores // N)`` (what the README's sbatch
   script sets from ``$SLURM_CPUS_PER_TASK``).

Each run picks its own folder of symbolic links to the same micrographs (same files, same page
cache, no run sees another's pick files). Times are wall clock from the first launch to the
last exit: each process pays its own start (Python, torch, the model), as a SLURM array does.
Also printed: the picking seconds each process reports, the largest resident memory of one
process, and a check that the shards together picked every micrograph exactly once, with the
same picks as the one process.

    python benchmarks/bench_shards.py [--count 24] [--size 2048] [--shards 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from boxnet_tui.io import layout
from boxnet_tui.io.micrographs import scan_folder
from boxnet_tui.io.star import read_picks
from boxnet_tui.paths import scratch_dir
from boxnet_tui.synth import make_dataset

PICKED = re.compile(r"picked (\d+) micrographs, \d+ particles in ([\d.]+) s")
SHARE = re.compile(r"shard \d+/\d+: (\d+) micrographs")


def micrographs(count: int, size: int, pixel: float, diameter: float) -> list[Path]:
    folder = scratch_dir() / f"bench_shards_{count}x{size}_{pixel:g}A_{diameter:g}"
    if len(scan_folder(folder) if folder.is_dir() else []) != count:
        print(f"making {count} synthetic {size}² micrographs in {folder} ...", flush=True)
        make_dataset(folder, count, size=size, pixel_size=pixel, diameter=diameter, seed=5)
    return scan_folder(folder)


def linked_folder(paths: list[Path], folder: Path) -> Path:
    """A folder of symbolic links to ``paths`` (a fresh one: no pick files yet)."""
    folder.mkdir(parents=True)
    for path in paths:
        (folder / path.name).symlink_to(path)
    return folder


def run(folder: Path, args: argparse.Namespace, shards: int, threads: int | None) -> dict:
    """Start ``shards`` pick processes (1: no --shard) together; wait for all of them."""
    command = [sys.executable, "-m", "boxnet_tui", "pick", str(folder), "--model", args.model]
    command += ["--diameter", str(args.diameter), "--device", args.device, "--suffix", "bench"]
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            command + ([] if shards == 1 else ["--shard", f"{k}/{shards}"]),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(shards)
    ]
    outputs = [process.communicate() for process in processes]
    wall = time.perf_counter() - start
    picked, picking, shares = 0, [], []
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"a pick process failed ({process.returncode}):\n{err}")
        found = PICKED.search(out)
        assert found, out
        picked += int(found.group(1))
        picking.append(float(found.group(2)))
        share = SHARE.search(out)
        shares.append(int(share.group(1)) if share else int(found.group(1)))
    return {"wall": wall, "picked": picked, "picking": picking, "shares": shares}


def check(paths: list[Path], one: Path, sharded: Path) -> str:
    """Every micrograph picked exactly once by the shards, with the one process's picks."""
    differ = 0
    for path in paths:
        a = read_picks(layout.pick_path(one, path.stem, "bench"))
        b = read_picks(layout.pick_path(sharded, path.stem, "bench"))
        same = len(a) == len(b) and np.allclose(a.xy, b.xy, atol=1e-3)
        differ += not same
    return "identical picks" if not differ else f"{differ} micrographs picked differently"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--pixel-size", type=float, default=1.5)
    parser.add_argument("--diameter", type=float, default=180.0)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--model", default="BoxNetMask")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    paths = micrographs(args.count, args.size, args.pixel_size, args.diameter)
    work = scratch_dir() / f"bench_shards_run_{os.getpid()}"
    threads = max(1, cores // args.shards)
    modes = [
        ("1 process", 1, None),
        (f"{args.shards} shards", args.shards, None),
        (f"{args.shards} shards, {threads} thread(s) each", args.shards, threads),
    ]
    results = []
    for index, (name, shards, threads) in enumerate(modes):
        folder = linked_folder(paths, work / f"mode{index}")
        print(f"{name} ...", flush=True)
        results.append((name, shards, folder, run(folder, args, shards, threads)))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    base = results[0][3]
    print()
    print(
        f"{args.count} micrographs {args.size}² at {args.pixel_size:g} Å/px, model {args.model}, "
        f"{args.device}, {cores} cores"
    )
    print(f"{'run':<28}{'wall s':>8}{'mic/s':>8}{'ratio':>7}  micrographs / picking s, per process")
    for name, _, _, result in results:
        rate = result["picked"] / result["wall"]
        ratio = base["wall"] / result["wall"]
        per = ", ".join(
            f"{n}/{s:.1f}" for n, s in zip(result["shares"], result["picking"], strict=True)
        )
        print(f"{name:<28}{result['wall']:>8.1f}{rate:>8.2f}{ratio:>7.2f}  {per}")
    for name, _, folder, result in results[1:]:
        once = result["picked"] == len(paths)
        print(
            f"{name}: {result['picked']} of {len(paths)} micrographs picked "
            f"({'each once' if once else 'NOT each once'}), "
            f"{check(paths, results[0][2], folder)} to the one process's"
        )
    print(f"largest resident memory of one process: {rss:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
