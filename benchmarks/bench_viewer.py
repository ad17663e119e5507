"""Viewer speed and memory on 4096² micrographs: issues 5 and 12's bars, beside a peer.

The app (``BoxnetApp``) runs headless (``run_test``, 200×60 cells, half-cell graphics) on
three 4096² micrographs at 1.77 Å/px: real EMPIAR-10017 micrographs Fourier-upscaled to the
originals' size (as bench_pick.py does) with their manual picks, or synthetic ones when the
shared data is absent (or with ``--synthetic``).

(a) Cursor key to new frame (bar: under 16 ms of our own work). "Ours" is the key's action
    (``action_move``) plus the layout, compositor and terminal-output work it causes, timed
    by wrapping the screen's ``_refresh_layout`` / ``_compositor_refresh`` and turning each
    compositor update into the bytes a truecolor terminal would get. The peer re-composes
    and re-encodes the whole frame on every move (``action_move`` + ``redraw()``, same
    rendering). Also the main thread's CPU per key less an empty pause's, the bytes per key,
    and ``Viewer.encodes`` (frames handed to textual-image) over all the moves.
(b) Switching micrograph with ``n`` (bar: under 100 ms with neighbours prefetched): from the
    key to the new frame rendered, with the neighbour prefetched (waited for with
    ``app.cache.ready``) and cold (``app.cache.invalidate`` first). The parts alone: read and
    prepare a 4096² micrograph (the prefetch thread's work), compose the frame
    (``display.render``), encode it as half cells (textual-image).
(c) Memory (bar: flat in the number of micrographs): RSS going through 20 synthetic 2048²
    micrographs with ``n``, beside a peer that prepares every micrograph and keeps them all.
    Each runs in its own process so that peaks do not mix.
(d) Edits (bar: under 50 ms of our own work with the atomic write): ``x`` (remove, recorded:
    two files written), ``u`` (undo), ``a`` (add), ``]`` / ``[`` (display threshold: the
    state file written), ``c`` (curated: the state file), ``g`` and an arrow (the grabbed pick
    moved: its STAR written), ``b``, an arrow and ``e`` (brush dabs: the mask TIFF written),
    each timed as a cursor key is: the action, which returns once the file is on disk (fsync
    and rename), then the layout, compositor and terminal bytes.
(e) Under load (issue 12's bars hold "with a training job running beside it"): (a), (b) and
    (d) again while ``boxnet-tui train --detach`` trains on the CPU (a small synthetic folder,
    a throw-away BOXNET_TUI_HOME, cancelled at the end). The summary puts the figures quiet
    and under load side by side, beside what issue 12 measured by hand in tmux before.

    python benchmarks/bench_viewer.py [--moves 200] [--switches 8] [--edits 20] [--count 20]
                                      [--load both|none|only] [--synthetic]

Scratch files go to a temporary folder under $BOXNET_TUI_HOME/scratch.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from real_data import upscale_real
from rich.console import Console
from textual._compositor import CompositorUpdate
from textual_image.renderable.halfcell import Image as HalfcellRenderable

import boxnet_tui.display as display_module
from boxnet_tui.curation import CurationSession
from boxnet_tui.display import Overlay, prepare, render
from boxnet_tui.io.micrographs import read_micrograph
from boxnet_tui.micrograph_cache import load_prepared
from boxnet_tui.paths import scratch_dir
from boxnet_tui.synth import make_dataset
from boxnet_tui.tui.app import BoxnetApp
from boxnet_tui.tui.halfcell import FastHalfcell
from boxnet_tui.tui.screens.curation import CurationScreen
from boxnet_tui.tui.widgets.viewer import Viewer

HERE = Path(__file__).resolve().parent
REAL = Path(os.environ.get("BOXNET_TUI_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
REAL = REAL / "empiar-10017"
SIZE, PIXEL, DIAMETER = 4096, 1.77, 190.0
SMALL_SIZE = 2048
TERMINAL = (200, 60)
FRAME_BUDGET_MS, SWITCH_BUDGET_MS, EDIT_BUDGET_MS = 16.0, 100.0, 50.0
WAIT_S = 120.0
LOAD_START_S = 600.0  # s for the training job to log its first step (torch import, labels)
# what issue 12 measured by hand in tmux while another job used the CPU: key to screen, ms
BY_HAND = {"cursor": "25–60", "x": "130–250", "a": "130–250", "u": "130–250", "[ ]": "130–250",
           "n": "150–570"}  # fmt: skip


# -- data -------------------------------------------------------------------------------------
def make_big_folder(folder: Path, count: int, synthetic: bool) -> tuple[str, str]:
    """``count`` 4096² micrographs at 1.77 Å/px with picks; returns (suffix, description)."""
    if not synthetic and REAL.is_dir():
        roots = sorted(path.stem for path in REAL.glob("*.mrc"))[:count]
        upscale_real(REAL, folder, roots)
        return "manual", "real EMPIAR-10017, Fourier-upscaled from 2048² at 3.54 Å/px"
    make_dataset(folder, count, size=SIZE, pixel_size=PIXEL, diameter=180.0)
    return "truth", "synthetic (boxnet-tui synth)"


# -- measuring --------------------------------------------------------------------------------
class Meter:
    """Wall time of the screen's layout and compositor work, and the terminal bytes it makes.

    Headless, Textual composes each update but does not write it; here each update is also
    turned into the escape sequences a truecolor terminal would get, as the driver would.
    """

    def __init__(self, app: BoxnetApp) -> None:
        self.render_s = 0.0
        self.bytes = 0
        self._depth = 0
        self._console = Console(
            file=io.StringIO(), color_system="truecolor", force_terminal=True, width=TERMINAL[0]
        )
        screen = app.screen
        for name in ("_refresh_layout", "_compositor_refresh"):
            setattr(screen, name, self._timed(getattr(screen, name)))
        display = app._display

        def terminal_display(screen, renderable) -> None:
            if isinstance(renderable, CompositorUpdate):
                self.bytes += len(renderable.render_segments(self._console).encode())
            display(screen, renderable)

        app._display = terminal_display  # type: ignore[method-assign]

    def _timed(self, method: Callable) -> Callable:
        def timed(*args, **kwargs):
            self._depth += 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.render_s += time.perf_counter() - start

        return timed

    def reset(self) -> None:
        self.render_s, self.bytes = 0.0, 0


@dataclass
class Sample:
    handler_ms: float  # the action itself (for the peer: with the re-composition)
    render_ms: float  # layout + compositor + terminal bytes, until the frame is out
    cpu_ms: float  # the main thread's CPU from the key to the end of the pause
    bytes: int

    @property
    def own_ms(self) -> float:
        return self.handler_ms + self.render_ms


async def measure_key(
    ui: CurationScreen, pilot, meter: Meter, action: Callable[[], None]
) -> Sample:
    meter.reset()
    cpu, start = time.thread_time(), time.perf_counter()
    action()
    handler = time.perf_counter() - start
    await pilot.pause()  # messages, then the screen's layout and compositor refresh
    cpu = time.thread_time() - cpu
    return Sample(handler * 1e3, meter.render_s * 1e3, cpu * 1e3, meter.bytes)


@dataclass
class Switch:
    composed_ms: float  # key to the new frame composed (a cold one: read and prepared first)
    render_ms: float  # then the layout, compositor and terminal bytes of the new frame

    @property
    def total_ms(self) -> float:
        return self.composed_ms + self.render_ms


async def measure_switch(ui: CurationScreen, pilot, meter: Meter, step: int) -> Switch:
    target = ui.index + step  # type: ignore[operator]
    start = time.perf_counter()
    ui.action_micrograph(step)
    await wait_for(lambda: shown(ui, target), f"micrograph {target + 1}")
    composed = time.perf_counter() - start
    meter.reset()
    await pilot.pause()
    return Switch(composed * 1e3, meter.render_s * 1e3)


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


def shown(ui: CurationScreen, index: int) -> bool:
    return (
        ui.index == index
        and ui.view is not None
        and ui.loaded is not None
        and ui.loaded.path == ui.session.entries[index].path
    )


async def settle(ui: CurationScreen) -> None:
    """Wait until the background work is done: list described, neighbours prefetched."""
    await ui.app.workers.wait_for_complete()
    index = ui.index or 0
    held = [i for i in (index - 1, index, index + 1) if 0 <= i < len(ui.session.entries)]
    await wait_for(lambda: all(ui.cache.ready(i) for i in held), "the prefetch")


# -- (a) and (b) --------------------------------------------------------------------------------
@dataclass
class ViewerResults:
    viewer_cells: tuple[int, int]
    frame_px: tuple[int, int]
    baseline_cpu_ms: float
    ours: list[Sample]
    ours_encodes: tuple[int, int]
    edge: list[Sample]
    edge_encodes: tuple[int, int]
    peer: list[Sample]
    peer_encodes: tuple[int, int]
    prefetched: list[Switch]
    cold: list[Switch]
    render_ms: list[float]
    encode_ms: list[float]
    encode_bytes: int
    fast_encode_ms: list[float]
    prepare_ms: list[float]
    edits: dict[str, list[Edit]]


# (d): one round of edit keys, in this order, leaving the picks and threshold as they were
EDIT_KEYS: tuple[tuple[str, Callable[[CurationScreen], None]], ...] = (
    ("x", lambda ui: ui.action_remove(True)),
    ("u", lambda ui: ui.action_undo()),
    ("a", lambda ui: ui.action_add()),
    ("u", lambda ui: ui.action_undo()),
    ("[ ]", lambda ui: ui.action_threshold(0.05)),
    ("[ ]", lambda ui: ui.action_threshold(-0.05)),
    ("c", lambda ui: ui.action_curated()),  # marked, then unmarked: the state file written
    ("c", lambda ui: ui.action_curated()),
    ("g", lambda ui: ui.action_grab()),  # grab the pick (nothing written)
    ("g →", lambda ui: ui.action_move(1, 0)),  # the grabbed pick moves: its STAR written
    ("g →", lambda ui: ui.action_move(-1, 0)),
    ("g", lambda ui: ui.action_grab()),  # dropped where it was
    # the brush: on (a dab), a dab a cell along and back, then "e" switches paint / erase
    # with a dab in the new mode, so each round paints what the last erased (the mask TIFF
    # written for every dab that changes it)
    ("b", lambda ui: ui.action_brush()),
    ("b →", lambda ui: ui.action_move(1, 0)),
    ("b →", lambda ui: ui.action_move(-1, 0)),
    ("e", lambda ui: ui.action_brush_mode()),
    ("b", lambda ui: ui.action_brush()),  # brush off
)


@dataclass
class Edit:
    """One edit key: the Sample, and of its action the core's edit with its atomic write."""

    sample: Sample
    core_ms: float


async def measure_edits(ui: CurationScreen, pilot, meter: Meter, rounds: int) -> dict[str, list]:
    """``rounds`` rounds of EDIT_KEYS with the cursor on a pick (2 more to warm up). The
    editor's edits and the session's threshold are timed too: the core's work, file written."""
    editor = ui.editor()
    assert editor is not None and len(editor.picks), "no picks to edit"
    middle = int(np.argmin(np.hypot(*(editor.picks.xy - np.array(ui.cursor)).T)))
    ui.set_cursor(float(editor.picks.x[middle]), float(editor.picks.y[middle]))
    await pilot.pause()
    core: list[float] = []

    def timed(method: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                core.append((time.perf_counter() - start) * 1e3)

        return wrapper

    wrapped = [(editor, name) for name in ("add", "remove", "undo", "move", "paint_stroke")]
    wrapped += [(ui.session, "set_threshold"), (ui.session, "toggle_curated")]
    for owner, name in wrapped:
        setattr(owner, name, timed(getattr(owner, name)))
    samples: dict[str, list[Edit]] = {}
    try:
        for round_ in range(rounds + 2):
            for key, action in EDIT_KEYS:
                core.clear()
                sample = await measure_key(ui, pilot, meter, lambda a=action: a(ui))
                if round_ >= 2:
                    samples.setdefault(key, []).append(Edit(sample, sum(core)))
    finally:
        for owner, name in wrapped:
            delattr(owner, name)  # the instance's wrapper: the class's method again
    return samples


async def run_viewer(
    folder: Path, suffix: str, moves: int, switches: int, edits: int
) -> ViewerResults:
    session = CurationSession(folder, suffix=suffix, diameter=DIAMETER)
    app = BoxnetApp(session, graphics="halfcell")
    async with app.run_test(size=TERMINAL) as pilot:
        ui = app.curation  # the keys, the viewer and the list
        await wait_for(lambda: ui.index is not None and shown(ui, ui.index), "a micrograph")
        if ui.index != 0:  # the pass before this one left the folder resuming on another
            ui.show_micrograph(0)
        await wait_for(lambda: shown(ui, 0), "the first micrograph")
        await pilot.pause()
        await settle(ui)
        viewer = app.query_one(Viewer)
        meter = Meter(app)
        rows, cols = ui.view.shape  # type: ignore[union-attr]

        # an empty pause: what the Pilot costs the main thread without any key
        baseline = []
        for _ in range(20):
            cpu = time.thread_time()
            await pilot.pause()
            baseline.append((time.thread_time() - cpu) * 1e3)

        async def keys(count: int, peer: bool) -> tuple[list[Sample], tuple[int, int]]:
            def move(step: int) -> Callable[[], None]:
                def action() -> None:
                    ui.action_move(step, 0)
                    if peer:
                        ui.redraw()
                        # and sent whole: the frame widget would send only changed cells
                        image = viewer.query_one("#frame")
                        frame, image.image = image.image, None  # type: ignore[attr-defined]
                        image.image = frame  # type: ignore[attr-defined]

                return action

            for i in range(5):  # warm up
                await measure_key(ui, pilot, meter, move(1 if i % 2 == 0 else -1))
            before = viewer.encodes
            samples = [
                await measure_key(ui, pilot, meter, move(1 if i % 2 == 0 else -1))
                for i in range(count)
            ]
            return samples, (before, viewer.encodes)

        # the cursor in the middle of the view: right, left, right, ... (the cell changes)
        ui.set_cursor(cols / 2, rows / 2)
        await pilot.pause()
        ours, ours_encodes = await keys(moves, peer=False)
        # the same moves with the cursor near the top edge of the micrograph, at zoom 0
        ui.set_cursor(cols / 2, rows * 0.03)
        await pilot.pause()
        edge, edge_encodes = await keys(max(20, moves // 4), peer=False)
        ui.set_cursor(cols / 2, rows / 2)
        await pilot.pause()
        peer, peer_encodes = await keys(max(20, moves // 4), peer=True)

        # (d) the edit keys, the cursor on the pick nearest the middle of the micrograph
        ui.set_cursor(cols / 2, rows / 2)
        await pilot.pause()
        edit_samples = await measure_edits(ui, pilot, meter, edits)

        # the frame's parts alone, on the shown micrograph and view
        prepared, view = ui.loaded.image, ui.view  # type: ignore[union-attr]
        editor = ui.editor()
        assert prepared is not None and view is not None and editor is not None
        overlay = Overlay(
            np.column_stack([editor.picks.x, editor.picks.y]),
            radius=session.diameter_px(0) / 2,
            mask=editor.mask(),
        )
        render_ms, encode_ms, encode_bytes, fast_ms = [], [], 0, []
        for _ in range(20):
            display_module._last_base = None  # composed whole, as for a new view
            start = time.perf_counter()
            frame = render(prepared, view, overlay)
            render_ms.append((time.perf_counter() - start) * 1e3)
            out = io.StringIO()
            console = Console(
                file=out, color_system="truecolor", force_terminal=True, width=viewer.size.width
            )
            start = time.perf_counter()
            console.print(HalfcellRenderable(frame, viewer.size.width, viewer.size.height), end="")
            encode_ms.append((time.perf_counter() - start) * 1e3)
            encode_bytes = len(out.getvalue().encode())
            # the renderable the app uses, same frame, same console
            start = time.perf_counter()
            console.print(FastHalfcell(frame, viewer.size.width, viewer.size.height), end="")
            fast_ms.append((time.perf_counter() - start) * 1e3)

        # (b) n to the next micrograph, prefetched; p back, cold
        prefetched: list[Switch] = []
        cold: list[Switch] = []
        for _ in range(switches):
            await settle(ui)
            assert ui.index == 0 and app.cache.ready(1)
            prefetched.append(await measure_switch(ui, pilot, meter, 1))
            await settle(ui)
            app.cache.invalidate(0)
            assert not app.cache.ready(0)
            cold.append(await measure_switch(ui, pilot, meter, -1))

        await settle(ui)
        viewer_cells = (viewer.size.width, viewer.size.height)
        frame_px = viewer.frame_size
        await app.workers.wait_for_complete()
    app.cache.close()  # its prefetch thread: the pass under load starts an app of its own

    prepare_ms = []
    for _ in range(3):
        start = time.perf_counter()
        load_prepared(session.entries[0].path)
        prepare_ms.append((time.perf_counter() - start) * 1e3)

    return ViewerResults(
        viewer_cells,
        frame_px,
        median(baseline),
        ours,
        ours_encodes,
        edge,
        edge_encodes,
        peer,
        peer_encodes,
        prefetched,
        cold,
        render_ms,
        encode_ms,
        encode_bytes,
        fast_ms,
        prepare_ms,
        edit_samples,
    )


# -- (e) a training job beside it ----------------------------------------------------------------
class TrainingLoad:
    """``boxnet-tui train --detach`` on two synthetic 1024² micrographs, on the CPU, for as
    long as the ``with`` block lasts (a run far longer than that, cancelled at its end).

    The run lives in a BOXNET_TUI_HOME of its own under ``scratch``: nothing is left in the
    user's run list.
    """

    NAME = "BenchViewerLoad"

    def __init__(self, scratch: Path) -> None:
        self.folder = scratch / "load"
        self.env = {**os.environ, "BOXNET_TUI_HOME": str(scratch / "load-home")}
        self.status_path = scratch / "load-home" / "runs" / self.NAME / "status.json"
        self.rate = ""

    def _cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "boxnet_tui", *args]
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"boxnet-tui {args[0]} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> TrainingLoad:
        make_dataset(self.folder, 2, size=1024, pixel_size=PIXEL, diameter=180.0)
        positives = sorted((self.folder / "matching").glob("*_truth.star"))[0]
        self._cli("train", str(self.folder), "--name", self.NAME, "--positives", str(positives),
                  "--diameter", "180", "--iterations", "1000000", "--device", "cpu",
                  "--detach")  # fmt: skip
        deadline = time.monotonic() + LOAD_START_S
        while (status := self.status()).get("iteration", 0) < 1:  # training, not preparing
            if status.get("state") in ("failed", "cancelled") or time.monotonic() > deadline:
                raise SystemExit(f"the training job did not start: {status}")
            time.sleep(1.0)
        self.start = (time.monotonic(), status["iteration"])
        return self

    def __exit__(self, *exc: object) -> None:
        status = self.status()
        seconds = time.monotonic() - self.start[0]
        done = status.get("iteration", 0) - self.start[1]
        self.rate = f"{done / seconds:.2f} it/s over {seconds:.0f} s" if seconds else ""
        self._cli("runs", "cancel", self.NAME)


# -- (c) memory, in a child process -----------------------------------------------------------
CHECKPOINTS = (2, 10, 20)


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process, MB."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resident / 2**20, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_app(folder: Path) -> dict[int, tuple[float, float]]:
    """Go through the folder with n, as a user would, each neighbour prefetched."""
    result: dict[int, tuple[float, float]] = {0: rss_mb()}

    async def main() -> None:
        app = BoxnetApp(CurationSession(folder, suffix="truth"), graphics="halfcell")
        async with app.run_test(size=TERMINAL) as pilot:
            ui = app.curation
            count = len(app.session.entries)
            for index in range(count):
                if index:
                    ui.action_micrograph(1)
                await wait_for(lambda i=index: shown(ui, i), f"micrograph {index + 1}")
                await pilot.pause()
                await settle(ui)
                if index + 1 in CHECKPOINTS or index + 1 == count:
                    result[index + 1] = rss_mb()
            await app.workers.wait_for_complete()

    asyncio.run(main())
    return result


def memory_eager(folder: Path) -> dict[int, tuple[float, float]]:
    """The peer: every micrograph read and prepared up front, all kept (not lazy)."""
    result: dict[int, tuple[float, float]] = {0: rss_mb()}
    held = []
    paths = sorted(folder.glob("*.mrc"))
    for index, path in enumerate(paths):
        micrograph = read_micrograph(path)
        held.append((micrograph, prepare(micrograph)))
        if index + 1 in CHECKPOINTS or index + 1 == len(paths):
            result[index + 1] = rss_mb()
    return result


def run_memory(kind: str, folder: Path) -> dict[int, tuple[float, float]]:
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {int(k): tuple(v) for k, v in json.loads(output.splitlines()[-1]).items()}


# -- report -----------------------------------------------------------------------------------
def row(name: str, ours: str, peer: str, ratio: str = "") -> str:
    return f"  {name:44s} {ours:>16s} {peer:>22s} {ratio:>9s}"


def stats(values: list[float]) -> tuple[float, float]:
    return median(values), p95(values)


def report(results: ViewerResults, moves: int) -> None:
    r = results
    print(
        f"viewer {r.viewer_cells[0]}×{r.viewer_cells[1]} cells, frame {r.frame_px[0]}×"
        f"{r.frame_px[1]} px (half cells); empty pause {r.baseline_cpu_ms:.2f} ms CPU "
        "(subtracted below)"
    )
    print()
    print(f"(a) cursor key → new frame, {moves} moves (bar: < {FRAME_BUDGET_MS:g} ms own work)")
    print(row("", "ours (overlay)", "peer (re-compose+encode)", "peer/ours"))
    ours_own, peer_own = [s.own_ms for s in r.ours], [s.own_ms for s in r.peer]
    for label, pick in (("median", 0), ("p95", 1)):
        o, p = stats(ours_own)[pick], stats(peer_own)[pick]
        print(row(f"key handler + render, {label} ms", f"{o:.2f}", f"{p:.2f}", f"{p / o:.0f}×"))
    for label, attr in (
        ("key handler, median ms", "handler_ms"),
        ("render, median ms", "render_ms"),
    ):
        o = median([getattr(s, attr) for s in r.ours])
        p = median([getattr(s, attr) for s in r.peer])
        print(row(label, f"{o:.2f}", f"{p:.2f}", f"{p / o:.0f}×"))
    o = median([s.cpu_ms for s in r.ours]) - r.baseline_cpu_ms
    p = median([s.cpu_ms for s in r.peer]) - r.baseline_cpu_ms
    print(
        row(
            "main-thread CPU per key, median ms", f"{o:.2f}", f"{p:.2f}", f"{p / max(o, 1e-3):.0f}×"
        )
    )
    o, p = median([s.bytes for s in r.ours]), median([s.bytes for s in r.peer])
    print(row("bytes to the terminal per key, median", f"{o:.0f}", f"{p:.0f}", f"{p / o:.0f}×"))
    print(
        row(
            "Viewer.encodes before → after",
            f"{r.ours_encodes[0]} → {r.ours_encodes[1]}",
            f"{r.peer_encodes[0]} → {r.peer_encodes[1]}",
        )
    )
    edge = [s.own_ms for s in r.edge]
    print(
        row(
            f"ours, cursor near the top edge ({len(r.edge)} moves)",
            f"{median(edge):.2f} / {p95(edge):.2f}",
            "(median / p95 ms)",
        )
    )
    print(
        row("  its Viewer.encodes before → after", f"{r.edge_encodes[0]} → {r.edge_encodes[1]}", "")
    )
    verdict = "met" if stats(ours_own)[1] < FRAME_BUDGET_MS else "MISSED"
    print(f"  bar (p95 < {FRAME_BUDGET_MS:g} ms, cursor away from the edges): {verdict}")
    print()
    print(f"(b) n → next micrograph, {len(r.prefetched)} switches each")
    print(row("", "prefetched", "cold (not prefetched)", "cold/pref"))
    for label, pick in (("key → new frame rendered, median ms", 0), ("p95 ms", 1)):
        o = stats([w.total_ms for w in r.prefetched])[pick]
        p = stats([w.total_ms for w in r.cold])[pick]
        print(row(label, f"{o:.1f}", f"{p:.1f}", f"{p / o:.1f}×"))
    for label, attr in (
        ("  key → frame composed, median ms", "composed_ms"),
        ("  then layout + render, median ms", "render_ms"),
    ):
        o = median([getattr(w, attr) for w in r.prefetched])
        p = median([getattr(w, attr) for w in r.cold])
        print(row(label, f"{o:.1f}", f"{p:.1f}"))
    met = stats([w.total_ms for w in r.prefetched])[1] < SWITCH_BUDGET_MS
    print(f"  bar (p95 < {SWITCH_BUDGET_MS:g} ms prefetched): {'met' if met else 'MISSED'}")
    print("  the parts alone, median ms:")
    print(row("  read + prepare a 4096² micrograph (prefetch)", f"{median(r.prepare_ms):.1f}", ""))
    print(row("  compose the frame (display.render)", f"{median(r.render_ms):.1f}", ""))
    encoded = f"  half-cell encode, textual-image's ({r.encode_bytes / 1024:.0f} KiB)"
    print(row(encoded, f"{median(r.encode_ms):.1f}", ""))
    fast = median(r.fast_encode_ms)
    ratio = f"{median(r.encode_ms) / fast:.0f}× faster" if fast else ""
    print(row("  half-cell encode, ours (boxnet_tui.tui.halfcell)", f"{fast:.1f}", ratio))
    print()
    rounds = len(next(iter(r.edits.values())))
    print(f"(d) edit keys, {rounds} rounds (bar: < {EDIT_BUDGET_MS:g} ms own work, the write "
          "included)")  # fmt: skip
    print(row("", "own work med/p95", "action (edit+write) / render", ""))
    for key, edits in r.edits.items():
        own = [e.sample.own_ms for e in edits]
        handler = median([e.sample.handler_ms for e in edits])
        core = median([e.core_ms for e in edits])
        render_ = median([e.sample.render_ms for e in edits])
        print(row(f"{key}, ms", f"{median(own):.1f} / {p95(own):.1f}",
                  f"{handler:.1f} ({core:.1f}) / {render_:.1f}"))  # fmt: skip
    worst = max(p95([e.sample.own_ms for e in edits]) for edits in r.edits.values())
    print(f"  bar (p95 < {EDIT_BUDGET_MS:g} ms): {'met' if worst < EDIT_BUDGET_MS else 'MISSED'}")


def speed_figures(r: ViewerResults) -> dict[str, tuple[float, float]]:
    """Issue 12's figures, own work per key in ms: (median, p95)."""
    figures = {"cursor": stats([s.own_ms for s in r.ours])}
    for key, edits in r.edits.items():
        figures[key] = stats([e.sample.own_ms for e in edits])
    figures["n"] = stats([w.total_ms for w in r.prefetched])
    return figures


def report_speed(quiet: ViewerResults | None, loaded: ViewerResults | None, load: str) -> None:
    """Issue 12's speed figures: by hand before, quiet and under load now, and the bars."""
    bars = {"cursor": FRAME_BUDGET_MS, "n": SWITCH_BUDGET_MS}
    names = {
        "cursor": "cursor move",
        "x": "x remove (2 files written)",
        "a": "a add",
        "u": "u undo",
        "[ ]": "[ ] threshold (state written)",
        "c": "c curated (state written)",
        "g": "g grab / drop",
        "g →": "g then arrow (pick moved)",
        "b": "b brush on (a dab) / off",
        "b →": "b then arrow (a dab)",
        "e": "e paint/erase (a dab)",
        "n": "n, prefetched",
    }
    columns = [("quiet", quiet), ("under load", loaded)]
    columns = [(title, r) for title, r in columns if r is not None]
    figures = {title: speed_figures(r) for title, r in columns}
    print()
    print("issue 12's speed figures: our own work per key, key handler to terminal bytes, ms")
    if load:
        print(f"  under load: {load}")
    head = "".join(f"{title + ' med/p95':>22s}" for title, _ in columns)
    print(f"  {'key':32s}{'by hand, tmux, before':>24s}{head}{'bar (p95)':>20s}")
    for key, name in names.items():
        bar = bars.get(key, EDIT_BUDGET_MS)
        cells = ""
        for title, _ in columns:
            med, high = figures[title][key]
            cells += f"{f'{med:.1f} / {high:.1f}':>22s}"
        verdicts = ["met" if figures[t][key][1] < bar else "MISSED" for t, _ in columns]
        by_hand = BY_HAND.get(key, "-")
        print(f"  {name:32s}{by_hand:>24s}{cells}{f'< {bar:g} ' + '/'.join(verdicts):>20s}")
    print("  (by hand: key to screen in tmux, terminal and tmux included; here: the app's own "
          "work, headless)")  # fmt: skip


def report_memory(
    ours: dict[int, tuple[float, float]], eager: dict[int, tuple[float, float]]
) -> None:
    count = max(ours)
    print()
    print(f"(c) memory through {count} synthetic {SMALL_SIZE}² micrographs (bar: flat)")
    print(row("after micrographs", "ours: RSS / peak MB", "peer: all read, kept", ""))
    for n in sorted(ours):
        o, p = ours[n], eager.get(n, (float("nan"), float("nan")))
        name = f"{n}" if n else "0 (after the imports)"
        print(row(name, f"{o[0]:.0f} / {o[1]:.0f}", f"{p[0]:.0f} / {p[1]:.0f}"))
    first, last = min(n for n in ours if n), max(ours)
    for label, at in (("RSS", 0), ("peak", 1)):
        growth = ours[last][at] - ours[first][at]
        peer_growth = eager[last][at] - eager[first][at]
        print(
            f"  {label} growth from {first} to {last} micrographs: ours {growth:+.0f} MB, "
            f"peer {peer_growth:+.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200, help="cursor keys timed (ours)")
    parser.add_argument("--switches", type=int, default=8, help="n / p switches timed, each")
    parser.add_argument("--edits", type=int, default=20, help="rounds of edit keys timed")
    parser.add_argument("--count", type=int, default=20, help="micrographs for the memory part")
    parser.add_argument(
        "--load",
        choices=("both", "none", "only"),
        default="both",
        help="measure quiet, then with a training job beside it (both); or one of them",
    )
    parser.add_argument("--synthetic", action="store_true", help="no real data, even if present")
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.memory_child:
        kind, folder = args.memory_child
        result = (memory_app if kind == "app" else memory_eager)(Path(folder))
        print(json.dumps(result))
        return

    print("$ python benchmarks/bench_viewer.py " + shlex.join(sys.argv[1:]))
    print(
        f"Python {platform.python_version()}, Textual {metadata.version('textual')}, "
        f"textual-image {metadata.version('textual-image')}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; terminal {TERMINAL[0]}×{TERMINAL[1]} headless"
    )
    scratch_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        big = Path(tmp) / "big"
        big.mkdir()
        suffix, source = make_big_folder(big, 3, args.synthetic)
        print(f"3 micrographs {SIZE}² float32 at {PIXEL} Å/px, {source}; diameter {DIAMETER:g} Å")
        measure = (args.moves, args.switches, args.edits)
        quiet = loaded = None
        if args.load != "only":
            quiet = asyncio.run(run_viewer(big, suffix, *measure))
            report(quiet, args.moves)

            small = Path(tmp) / "small"
            make_dataset(small, args.count, size=SMALL_SIZE, pixel_size=PIXEL, diameter=180.0)
            report_memory(run_memory("app", small), run_memory("eager", small))
        load = ""
        if args.load != "none":
            print()
            print("(e) again, with a training job beside it (boxnet-tui train --detach, CPU)")
            with TrainingLoad(Path(tmp)) as job:
                loaded = asyncio.run(run_viewer(big, suffix, *measure))
                print(f"  load average {os.getloadavg()[0]:.1f} at the end")
            load = f"training on the CPU beside it, {job.rate}"
            report(loaded, args.moves)
        report_speed(quiet, loaded, load)


if __name__ == "__main__":
    main()
