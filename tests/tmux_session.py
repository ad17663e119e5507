"""The installed ``boxnet-tui`` in a real terminal: one tmux pane on a private server.

Shared by the tmux tests. A :class:`Pane` starts a command with ``exec`` (so the pane's process
is the app), sends keys (and, where a user would click, mouse clicks), and polls
``capture-pane`` until the screen shows what a step should show; a timeout fails the test
with the pane's text.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")

COLUMNS, ROWS = 160, 48
START_TIMEOUT = 30.0  # s: Python, Textual and the first micrograph, on a busy machine
KEY_TIMEOUT = 10.0  # s: one key's result on screen
POLL = 0.05  # s between two captures

STATUS = re.compile(
    r"(?P<index>\d+)/(?P<total>\d+) (?P<root>\S+)\s+│\s+"
    r"x (?P<x>-?\d+) y (?P<y>-?\d+) px\s+│\s+(?P<picks>\d+) picks"
)


@dataclass(frozen=True)
class Status:
    """What the viewer's status line says."""

    index: int
    total: int
    root: str
    x: int
    y: int
    picks: int


def parse_status(text: str) -> Status | None:
    for line in text.splitlines():
        match = STATUS.search(line)
        if match:
            g = match.groupdict()
            return Status(
                int(g["index"]),
                int(g["total"]),
                g["root"],
                int(g["x"]),
                int(g["y"]),
                int(g["picks"]),
            )
    return None


def command() -> list[str]:
    """The installed console script (as a user runs it), else the module."""
    script = shutil.which("boxnet-tui")
    return [script] if script else [sys.executable, "-m", "boxnet_tui"]


class Pane:
    """One command in one detached tmux session on a private server."""

    def __init__(self, home: Path, columns: int = COLUMNS, rows: int = ROWS) -> None:
        # a private server; its socket in a short temporary folder (sockets have a length limit)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="boxnet-tmux-"))
        self.socket = str(self.socket_dir / "socket")
        self.home = home
        self.columns = columns
        self.rows = rows
        self.started = False
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        self.env["BOXNET_TUI_HOME"] = str(home)

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TMUX, "-S", self.socket, "-f", "/dev/null", *args],  # type: ignore[list-item]
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=10,
        )

    def start(self, args: list[str]) -> None:
        """Run ``boxnet-tui ARGS`` in the pane; again (once the last has ended) in the same one."""
        line = "exec " + shlex.join(command() + args)
        if self.started:
            self.tmux("respawn-pane", "-k", "-t", "app", line)
            return
        self.tmux(
            "new-session", "-d", "-x", str(self.columns), "-y", str(self.rows), "-s", "app",
            "-e", f"BOXNET_TUI_HOME={self.home}",
            line,
            ";", "set-option", "-t", "app", "remain-on-exit", "on",
        )  # fmt: skip
        self.started = True

    def text(self, history: bool = False) -> str:
        """The screen; with ``history``, the lines scrolled off it above (what a command printed
        before it ended, say)."""
        start = ["-S", "-"] if history else []
        result = self.tmux("capture-pane", "-p", *start, "-t", "app", check=False)
        return result.stdout if result.returncode == 0 else f"(no pane: {result.stderr.strip()})"

    def send(self, *keys: str) -> None:
        """Keys by tmux's names (``Tab``, ``C-s``, ``PageDown``) or single characters."""
        self.tmux("send-keys", "-t", "app", *keys)

    def type(self, text: str) -> None:
        """Literal text, as typed."""
        self.tmux("send-keys", "-t", "app", "-l", text)

    def click(self, column: int, row: int) -> None:
        """A left click on the cell at (column, row), 0-based, as an SGR mouse report (what a
        terminal sends an app that asked for mouse events, as Textual does)."""
        self.type(f"\x1b[<0;{column + 1};{row + 1}M")
        self.type(f"\x1b[<0;{column + 1};{row + 1}m")

    def wait(self, ok: Callable[[Status], bool], what: str, timeout: float = KEY_TIMEOUT) -> Status:
        """Poll the screen until the status line satisfies ``ok``."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            status = parse_status(text)
            if status is not None and ok(status):
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; pane:\n{text}")
            time.sleep(POLL)

    def wait_text(
        self, ok: Callable[[str], object] | str, what: str, timeout: float = KEY_TIMEOUT
    ) -> str:
        """Poll the screen until its text contains ``ok`` (a string) or satisfies it (a
        function); returns the text."""
        test = (lambda text: ok in text) if isinstance(ok, str) else ok
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if test(text):
                return text
            if self.dead():
                pytest.fail(f"the pane's command ended while waiting for {what}; pane:\n{text}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; pane:\n{text}")
            time.sleep(POLL)

    def wait_still(self, what: str, quiet: float = 0.3, timeout: float = KEY_TIMEOUT) -> str:
        """Wait until the screen has not changed for ``quiet`` seconds (a scroll animated to
        its end, say: before a click on what it shows); returns the text."""
        deadline = time.monotonic() + timeout
        text, since = self.text(), time.monotonic()
        while time.monotonic() - since < quiet:
            if time.monotonic() > deadline:
                pytest.fail(f"the screen kept changing for {timeout:g} s ({what}):\n{text}")
            time.sleep(POLL)
            now = self.text()
            if now != text:
                text, since = now, time.monotonic()
        return text

    def wait_dead(self, what: str, timeout: float = KEY_TIMEOUT) -> int:
        """Wait for the pane's command to end; its exit status (-N: killed by signal N)."""
        deadline = time.monotonic() + timeout
        form = "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}"
        nudged = time.monotonic()
        while True:
            result = self.tmux("list-panes", "-t", "app", "-F", form, check=False)
            dead, status, signal = [*result.stdout.strip().split("|"), "", "", ""][:3]
            if dead == "1" and status.isdigit():
                return int(status)
            if dead == "1" and signal.isdigit():
                return -int(signal)
            if dead == "1" and time.monotonic() - nudged > 1.0:
                # The pane reads as dead (its pty closed) before tmux has reaped the process.
                # Here, tmux (3.3a) now and then never does: the command stays a zombie and
                # the status empty, for a plain `python -c 'sleep 1'` too. The end of another
                # child of the server makes it reap every one.
                self.tmux("run-shell", "true", check=False)
                nudged = time.monotonic()
            if time.monotonic() > deadline:
                text = self.text()
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; pane:\n{text}")
            time.sleep(POLL)

    def pid(self) -> int:
        """The app's process: the pane's own (it runs the command via exec), else a child."""
        pane = int(self.tmux("list-panes", "-t", "app", "-F", "#{pane_pid}").stdout.split()[0])
        if "boxnet" in _cmdline(pane):
            return pane
        for child in _children(pane):
            if "boxnet" in _cmdline(child):
                return child
        pytest.fail(f"no boxnet-tui process under pane pid {pane}")

    def dead(self) -> bool:
        result = self.tmux("list-panes", "-t", "app", "-F", "#{pane_dead}", check=False)
        return result.returncode != 0 or result.stdout.strip() == "1"

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def find_cell(text: str, needle: str, after: int = 0) -> tuple[int, int]:
    """(column, row) of the first ``needle`` on screen at or below row ``after``."""
    for row, line in enumerate(text.splitlines()):
        if row >= after and needle in line:
            return line.index(needle), row
    pytest.fail(f"{needle!r} is not on screen; pane:\n{text}")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        result = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True)
        return result.stdout.decode()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        ps = ["ps", "-o", "pid=", "--ppid", str(pid)]
        text = subprocess.run(ps, capture_output=True, text=True).stdout
    return [int(p) for p in text.split()]
