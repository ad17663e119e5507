"""The installed ``boxnet-tui`` in real terminal emulators on a virtual screen (Xvfb).

Each test starts a terminal running the app on a synthetic micrograph, waits for the frame
the app sent (it saves each one where ``BOXNET_TUI_FRAME_DUMP`` says, with the cells it is
shown in), photographs the screen (ImageMagick's ``import``) and compares the viewer's pixels
with that frame: a correlation, not pixel equality (Sixel quantises colours, Kitty scales).

- xterm with Sixel (``-ti vt340``) at its default settings: the largest Sixel image is
  1000x1000, the viewer is larger (10x20 font), so the frame is made smaller to fit.
- kitty as packaged here (Debian 12: 0.26.5, no Unicode placeholders; software GL).
- tmux with ``allow-passthrough on`` inside that xterm: Sixel wrapped for passthrough.

Each skips with the reason when a program it needs is missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.tmux_session import command

XVFB = shutil.which("Xvfb")
XTERM = shutil.which("xterm")
KITTY = shutil.which("kitty")
TMUX = shutil.which("tmux")
IMPORT = shutil.which("import")  # ImageMagick

SCREEN = (1920, 1200)
COLUMNS, ROWS = 160, 48
FONT = "10x20"  # xfonts-base: a 1200x900 px viewer, larger than xterm's 1000x1000 Sixel limit
START_TIMEOUT = 60.0  # s: the terminal, Python, Textual and the first micrograph, busy machine
QUIET = 1.5  # s without a new frame: the screen shows the last one
MIN_CORRELATION = 0.85

needs_x = pytest.mark.skipif(
    not (XVFB and IMPORT),
    reason="needs Xvfb and ImageMagick's import (apt-get install xvfb imagemagick)",
)
needs_xterm = pytest.mark.skipif(not XTERM, reason="xterm is not installed (apt-get install xterm)")


@pytest.fixture(scope="module")
def display() -> str:
    """A private virtual screen; Xvfb picks a free display number and says it on a pipe."""
    read, write = os.pipe()
    process = subprocess.Popen(
        [XVFB, "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
         "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        process.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic micrograph with picks (no real data needed)."""
    folder = tmp_path_factory.mktemp("micrographs")
    home = tmp_path_factory.mktemp("synth_home")
    synth = [*command(), "synth", str(folder), "--count", "1", "--size", "1024"]
    env = {**os.environ, "BOXNET_TUI_HOME": str(home)}
    subprocess.run(synth, env=env, check=True, capture_output=True, timeout=120)
    return folder


class Terminal:
    """One terminal emulator window on ``display`` running ``argv``; killed on close."""

    def __init__(self, display: str, argv: list[str], home: Path, extra_env: dict | None = None):
        self.dump = Path(tempfile.mkdtemp(prefix="boxnet-frames-"))
        self.log = self.dump / "terminal.log"
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "COLORTERM")}
        env.update(
            DISPLAY=display,
            BOXNET_TUI_HOME=str(home),
            BOXNET_TUI_FRAME_DUMP=str(self.dump),
            **(extra_env or {}),
        )
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=log, start_new_session=True
            )

    def frame(self, timeout: float = START_TIMEOUT) -> dict:
        """The last frame's facts, once no new one came for ``QUIET`` seconds."""
        info_path = self.dump / "frame.json"
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"the terminal ended ({self.process.returncode}): {self.log_text()}")
            text = info_path.read_text() if info_path.exists() else None
            if text != last:
                last, since = text, time.monotonic()
            elif text is not None and time.monotonic() - since > QUIET:
                return json.loads(text)
            if time.monotonic() > deadline:
                pytest.fail(f"no frame after {timeout:g} s; terminal: {self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.dump, ignore_errors=True)


def screenshot(display: str) -> np.ndarray:
    """The whole virtual screen, grey levels 0-1."""
    png = subprocess.run(
        [IMPORT, "-display", display, "-window", "root", "png:-"],
        capture_output=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return np.asarray(Image.open(BytesIO(png)).convert("L"), dtype=np.float32) / 255


def expected(dump: Path, info: dict) -> tuple[np.ndarray, tuple[int, int]]:
    """What the viewer should show on screen (grey levels) and its top left in pixels."""
    frame = Image.open(dump / "frame.png").convert("L")
    x, y, columns, rows = info["region"]
    cw, ch = info["cell"]
    if info["method"] == "kitty":  # the terminal scales the frame to the cells
        frame = frame.resize((columns * cw, rows * ch), Image.Resampling.BILINEAR)
    return np.asarray(frame, dtype=np.float32) / 255, (x * cw, y * ch)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / scale) if scale > 0 else 0.0


def best_correlation(shot: np.ndarray, want: np.ndarray, origin: tuple[int, int]) -> float:
    """The frame's correlation with the screen, over small shifts (a terminal's border and
    the window's place on the screen move the cells by a few pixels)."""
    height, width = want.shape
    inner = want[8 : height - 8 : 2, 8 : width - 8 : 2]
    best = -1.0
    for dy in range(-2, 14):
        for dx in range(-2, 14):
            top, left = origin[1] + dy + 8, origin[0] + dx + 8
            if top < 0 or left < 0:
                continue
            part = shot[top : top + height - 16 : 2, left : left + width - 16 : 2]
            if part.shape == inner.shape:
                best = max(best, correlation(part, inner))
    return best


def check_shown(display: str, terminal: Terminal, method: str) -> tuple[dict, float]:
    info = terminal.frame()
    time.sleep(0.5)  # the terminal draws what it was sent
    assert info["method"] == method, f"the app chose {info['method']}, not {method}"
    want, origin = expected(terminal.dump, info)
    shot = screenshot(display)
    keep = os.environ.get("BOXNET_TUI_TEST_SHOTS")  # a folder: keep the photographs
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        Image.fromarray((shot * 255).astype(np.uint8)).save(
            Path(keep) / f"{method}-{os.getpid()}-{time.time():.0f}.png"
        )
    found = best_correlation(shot, want, origin)
    blank = best_correlation(np.zeros_like(shot), want, origin)
    assert found >= MIN_CORRELATION, (
        f"the viewer does not show the frame: correlation {found:.3f} (a blank viewer "
        f"{blank:.3f}); frame {info}; terminal: {terminal.log_text()}"
    )
    return info, found


def xterm_argv(app: list[str]) -> list[str]:
    """xterm as a Sixel terminal, at its default settings otherwise (no resources loaded)."""
    return [XTERM, "-ti", "vt340", "-fn", FONT, "-geometry", f"{COLUMNS}x{ROWS}+0+0",
            "-xrm", "XTerm*internalBorder: 2", "-e", *app]  # fmt: skip


@needs_x
@needs_xterm
def test_xterm_sixel_default_settings(display: str, folder: Path, tmp_path: Path) -> None:
    """xterm -ti vt340 as installed: the frame is made to fit its 1000x1000 Sixel limit."""
    terminal = Terminal(display, xterm_argv([*command(), str(folder)]), tmp_path / "home")
    try:
        info, found = check_shown(display, terminal, "sixel")
    finally:
        terminal.close()
    width, height = info["size"]
    region_px = (info["region"][2] * info["cell"][0], info["region"][3] * info["cell"][1])
    assert width <= 1000 and height <= 1000, info
    if region_px[0] > 1000 or region_px[1] > 1000:  # 10x20 font present: scaled to fit
        assert (width, height) < region_px, info
    print(f"xterm sixel: correlation {found:.3f}, frame {width}x{height}, viewer {region_px}")


@needs_x
@needs_xterm
@pytest.mark.slow
@pytest.mark.skipif(not TMUX, reason="tmux is not installed (apt-get install tmux)")
def test_tmux_passthrough_in_xterm(display: str, folder: Path, tmp_path: Path) -> None:
    """The app in tmux (allow-passthrough on) in xterm: Sixel wrapped for passthrough."""
    socket_dir = Path(tempfile.mkdtemp(prefix="boxnet-tmux-"))
    config = socket_dir / "tmux.conf"
    config.write_text("set -g allow-passthrough on\n")
    app = " ".join([*command(), str(folder)])
    tmux = [TMUX, "-S", str(socket_dir / "socket"), "-f", str(config), "new-session", f"exec {app}"]
    terminal = Terminal(display, xterm_argv(tmux), tmp_path / "home")
    try:
        info, found = check_shown(display, terminal, "sixel")
        assert info["tmux"], info
    finally:
        terminal.close()
        subprocess.run([TMUX, "-S", str(socket_dir / "socket"), "kill-server"],
                       capture_output=True, timeout=10)  # fmt: skip
        shutil.rmtree(socket_dir, ignore_errors=True)
    print(f"tmux in xterm: correlation {found:.3f}")


@needs_x
@pytest.mark.slow
@pytest.mark.skipif(not KITTY, reason="kitty is not installed (apt-get install kitty)")
def test_kitty_as_packaged(display: str, folder: Path, tmp_path: Path) -> None:
    """kitty (0.26.5 on Debian 12: direct placement, no Unicode placeholders)."""
    argv = [KITTY, "--config", "NONE", "-o", "remember_window_size=no",
            "-o", "initial_window_width=1600", "-o", "initial_window_height=1000",
            "-o", "font_size=13", *command(), str(folder)]  # fmt: skip
    terminal = Terminal(display, argv, tmp_path / "home", {"LIBGL_ALWAYS_SOFTWARE": "1"})
    try:
        time.sleep(1.0)
        if terminal.process.poll() is not None and "OpenGL" in terminal.log_text():
            pytest.skip(f"kitty cannot start on this display: {terminal.log_text()[-300:]}")
        info, found = check_shown(display, terminal, "kitty")
    finally:
        terminal.close()
    print(f"kitty: correlation {found:.3f}, frame {info['size']}")
