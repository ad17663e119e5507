"""What the terminal can draw: asked once before Textual starts, remembered per terminal.

One batch of queries goes out (XTVERSION, XTSMGRAPHICS for Sixel's largest image and colour
registers, a Kitty graphics query, the cell size) followed by Primary Device Attributes (DA1),
which every VT100-descendant answers and answers in order: once its reply is in, so is every
other reply, however slow the link. Replies are read until DA1's arrives (or ``WAIT_S``), then
the input is drained, so no reply is left for Textual to read as keys.

Inside tmux the queries are wrapped for passthrough (when ``allow-passthrough`` is on) and go
to the terminal tmux runs in; tmux >= 3.4 built with Sixel answers DA1 with Sixel itself.

What was found is cached under the scratch folder, per terminal (``$TERM`` and the variables
terminals set); the next start sends DA1 alone and, when its reply matches the cached one,
uses the cache (a terminal that never answered is not asked again).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from boxnet_tui import paths

WAIT_S = 2.0  # longest wait for the replies: a slow SSH link answers in one round trip
DRAIN_S = 0.03  # quiet time that ends the drain after the last reply
CACHE_NAME = "terminal-caps.json"
CACHE_VERSION = 1
DEFAULT_SIXEL_MAX = (1000, 1000)  # xterm's default largest Sixel image: safe where none answers
KITTY_PLACEHOLDERS = (0, 28)  # Unicode placeholders (``U=1``) arrived in kitty 0.28

ESC = "\x1b"
DA1 = f"{ESC}[c"
XTVERSION = f"{ESC}[>0q"
SIXEL_GEOMETRY = f"{ESC}[?2;1;0S"  # current largest Sixel image (window and limit)
SIXEL_GEOMETRY_MAX = f"{ESC}[?2;4;0S"  # the limit itself
SIXEL_COLORS = f"{ESC}[?1;1;0S"  # colour registers
KITTY_QUERY = f"{ESC}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA{ESC}\\"
CELL_SIZE = f"{ESC}[16t"

_DA1 = re.compile(r"\x1b\[\?([\d;]*)c")
_XTVERSION = re.compile(r"\x1bP>\|(.*?)\x1b\\")
_XTSMGRAPHICS = re.compile(r"\x1b\[\?(\d+);(\d+);([\d;]*)S")
_KITTY = re.compile(r"\x1b_G([^;\x1b]*);([^\x1b]*)\x1b\\")
_CELL = re.compile(r"\x1b\[6;(\d+);(\d+)t")
_ANY_REPLY = re.compile(r"\x1b(\[[\d;?>]*[a-zA-Z]|P.*?\x1b\\|_.*?\x1b\\)", re.S)


@dataclass(frozen=True)
class Replies:
    """What a terminal answered to the probe batch (None: no answer)."""

    da1: tuple[int, ...] | None = None
    version: str | None = None  # XTVERSION, e.g. "XTerm(379)", "kitty(0.26.5)", "tmux 3.3a"
    sixel_geometry: tuple[int, int] | None = None  # current largest image (w, h)
    sixel_geometry_max: tuple[int, int] | None = None
    sixel_colors: int | None = None
    kitty: str | None = None  # the Kitty query's status: "OK" or an error
    cell: tuple[int, int] | None = None  # (width, height) px of a cell
    other: str = ""  # what was read that is no reply (keys typed meanwhile)


def parse_replies(text: str) -> Replies:
    """The replies in ``text`` (what the terminal sent back, in any order)."""
    found: dict[str, object] = {}
    for match in _DA1.finditer(text):
        found["da1"] = tuple(int(p) for p in match.group(1).split(";") if p.isdigit())
    if match := _XTVERSION.search(text):
        found["version"] = match.group(1)
    for match in _XTSMGRAPHICS.finditer(text):
        item, status, values = int(match.group(1)), int(match.group(2)), match.group(3)
        numbers = [int(v) for v in values.split(";") if v.isdigit()]
        if status != 0 or not numbers:
            continue  # 1: no such item, 2: error, 3: failure
        if item == 1:
            found["sixel_colors"] = numbers[0]
        elif item == 2 and len(numbers) >= 2:
            key = "sixel_geometry_max" if "sixel_geometry" in found else "sixel_geometry"
            found[key] = (numbers[0], numbers[1])
    if match := _KITTY.search(text):
        found["kitty"] = match.group(2)
    if match := _CELL.search(text):
        found["cell"] = (int(match.group(2)), int(match.group(1)))
    found["other"] = _ANY_REPLY.sub("", text)
    return Replies(**found)  # type: ignore[arg-type]


def version_number(version: str | None, name: str) -> tuple[int, ...] | None:
    """(0, 26, 5) from "kitty(0.26.5)" for name "kitty"; None for another terminal."""
    if not version:
        return None
    match = re.match(rf"{re.escape(name)}[ (]v?([\d.]+)", version, re.I)
    if not match:
        return None
    return tuple(int(p) for p in match.group(1).split(".") if p.isdigit())


@dataclass(frozen=True)
class Tmux:
    """The tmux the app runs in."""

    version: tuple[int, ...]
    passthrough: bool
    client_term: str = ""  # TERM of the terminal tmux runs in
    client_type: str = ""  # its XTVERSION, where tmux knows it (3.3+)


@dataclass(frozen=True)
class TerminalCaps:
    """What the terminal (the one tmux runs in, inside tmux) can show."""

    answered: bool = False  # DA1 came back: the terminal answers queries
    sixel: bool = False
    sixel_max: tuple[int, int] | None = None  # largest Sixel image, px
    sixel_colors: int | None = None
    kitty: bool = False  # answers the Kitty graphics query
    version: str = ""  # XTVERSION
    cell: tuple[int, int] | None = None  # px per cell, from the terminal's reply
    da1: tuple[int, ...] = ()
    tmux: Tmux | None = None
    tmux_sixel: bool = False  # tmux itself draws Sixel (3.4+ built with it)
    wait_s: float = 0.0  # how long the replies took

    @property
    def kitty_placeholders(self) -> bool:
        """Unicode placeholders: kitty itself, from 0.28 (others with partial support lack them)."""
        number = version_number(self.version, "kitty")
        return number is not None and number >= KITTY_PLACEHOLDERS

    @property
    def passthrough(self) -> bool:
        """Graphics must be wrapped for tmux passthrough."""
        return self.tmux is not None and not self.tmux_sixel


def caps_from_replies(replies: Replies, wait_s: float = 0.0) -> TerminalCaps:
    """The capabilities that ``replies`` show."""
    da1 = replies.da1 or ()
    geometry = replies.sixel_geometry_max or replies.sixel_geometry
    if replies.sixel_geometry and replies.sixel_geometry_max:
        geometry = (
            max(replies.sixel_geometry[0], replies.sixel_geometry_max[0]),
            max(replies.sixel_geometry[1], replies.sixel_geometry_max[1]),
        )
    return TerminalCaps(
        answered=replies.da1 is not None,
        sixel=4 in da1[1:],
        sixel_max=geometry,
        sixel_colors=replies.sixel_colors,
        kitty=replies.kitty == "OK",
        version=replies.version or "",
        cell=replies.cell,
        da1=tuple(da1),
        wait_s=wait_s,
    )


# -- tmux --------------------------------------------------------------------------------------
_TMUX_FORMAT = "#{version}|#{allow-passthrough}|#{client_termname}|#{client_termtype}"
_OFFSET_FORMAT = "#{pane_top}|#{pane_left}|#{status}|#{status-position}"


def _tmux_display(form: str, env: Mapping[str, str]) -> str | None:
    exe = shutil.which("tmux")
    if exe is None:
        return None
    target = ["-t", env["TMUX_PANE"]] if env.get("TMUX_PANE") else []
    try:
        result = subprocess.run(
            [exe, "display-message", "-p", *target, form],
            capture_output=True,
            text=True,
            timeout=2,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def parse_tmux(line: str) -> Tmux | None:
    """A :class:`Tmux` from ``_TMUX_FORMAT``'s output ("3.3a|1|xterm|XTerm(379)")."""
    parts = [*line.split("|"), "", "", ""][:4]
    number = version_number(f"tmux {parts[0]}", "tmux") or (0,)
    return Tmux(number, parts[1] in ("1", "on", "all"), parts[2], parts[3])


def tmux_info(env: Mapping[str, str] | None = None) -> Tmux | None:
    """The tmux this process runs in, None outside tmux."""
    env = os.environ if env is None else env
    if not env.get("TMUX"):
        return None
    line = _tmux_display(_TMUX_FORMAT, env)
    return parse_tmux(line) if line else Tmux((0,), False)


def tmux_pane_offset(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(column, row) of this pane's top left on the terminal tmux draws on: where a wrapped
    image must be put (passthrough goes to the terminal's cursor, not the pane's)."""
    env = os.environ if env is None else env
    line = _tmux_display(_OFFSET_FORMAT, env) or ""
    parts = [*line.split("|"), "", "", "", ""][:4]
    top = int(parts[0]) if parts[0].isdigit() else 0
    left = int(parts[1]) if parts[1].isdigit() else 0
    status_lines = 0 if parts[2] in ("", "off", "0") else int(parts[2]) if parts[2].isdigit() else 1
    if parts[3] == "top":
        top += status_lines
    return left, top


def tmux_wrap(sequence: str) -> str:
    """``sequence`` wrapped for tmux passthrough: its ESCs doubled inside ``ESC P tmux; … ST``."""
    return f"{ESC}Ptmux;" + sequence.replace(ESC, ESC + ESC) + f"{ESC}\\"


# -- the probe ---------------------------------------------------------------------------------
def _read_until(fd: int, done: re.Pattern[str], wait_s: float) -> tuple[str, float, bool]:
    """Read ``fd`` until ``done`` matches (then drain) or ``wait_s`` passes."""
    start = time.monotonic()
    data = b""
    found = False
    while True:
        left = wait_s - (time.monotonic() - start)
        if found:
            left = DRAIN_S
        if left <= 0:
            break
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            if found:
                break
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        if not found and done.search(data.decode("utf-8", "replace")):
            found = True
            elapsed = time.monotonic() - start
    text = data.decode("utf-8", "replace")
    return text, (elapsed if found else time.monotonic() - start), found


def _exchange(queries: str, wait_s: float, wrap: bool) -> tuple[Replies, float]:
    """Send ``queries`` and DA1 (wrapped for tmux passthrough with ``wrap``); the replies."""
    import termios
    import tty

    fd_in, fd_out = sys.__stdin__.fileno(), sys.__stdout__.fileno()  # type: ignore[union-attr]
    saved = termios.tcgetattr(fd_in)
    try:
        tty.setcbreak(fd_in, termios.TCSANOW)  # no echo, no line buffering
        batch = queries + DA1
        if wrap:
            batch = "".join(tmux_wrap(q) for q in _split(queries)) + tmux_wrap(DA1)
        os.write(fd_out, batch.encode())
        text, took, _ = _read_until(fd_in, _DA1, wait_s)
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    return parse_replies(text), took


def _split(queries: str) -> list[str]:
    return [q for q in re.split(r"(?=\x1b[\[_P])", queries) if q]


FULL_QUERIES = (
    XTVERSION + SIXEL_GEOMETRY + SIXEL_GEOMETRY_MAX + SIXEL_COLORS + KITTY_QUERY + CELL_SIZE
)


def probe(wait_s: float = WAIT_S, tmux: Tmux | None = None) -> TerminalCaps:
    """Ask the terminal (and tmux) what it can show. Needs a terminal on stdin and stdout."""
    own_sixel = False
    if tmux is not None:
        # tmux answers DA1 itself: Sixel there means tmux draws it (3.4+), nothing to wrap
        replies, _ = _exchange(SIXEL_GEOMETRY, min(wait_s, 1.0), wrap=False)
        own_sixel = 4 in (replies.da1 or ())[1:]
        if own_sixel or not tmux.passthrough:
            caps = caps_from_replies(replies)
            max_size = caps.sixel_max or DEFAULT_SIXEL_MAX
            return replace(caps, tmux=tmux, tmux_sixel=own_sixel, sixel_max=max_size)
    replies, took = _exchange(FULL_QUERIES, wait_s, wrap=tmux is not None)
    return replace(caps_from_replies(replies, took), tmux=tmux)


# -- the cache ---------------------------------------------------------------------------------
_IDENTITY = (
    "TERM",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "XTERM_VERSION",
    "VTE_VERSION",
    "KONSOLE_VERSION",
    "WEZTERM_VERSION",
    "LC_TERMINAL",
)


def cache_key(env: Mapping[str, str], tmux: Tmux | None) -> str:
    """Which terminal this is, as far as the environment tells."""
    parts = [f"{name}={env.get(name, '')}" for name in _IDENTITY]
    parts.append("kitty" if env.get("KITTY_WINDOW_ID") else "")
    if tmux is not None:
        version = ".".join(map(str, tmux.version))
        parts.append(f"tmux={version},{tmux.passthrough},{tmux.client_term},{tmux.client_type}")
    return "|".join(parts)


def cache_path() -> Path:
    return paths.scratch_dir() / CACHE_NAME


def load_cache(path: Path | None = None) -> dict[str, dict]:
    path = path or cache_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return {}
    entries = data.get("terminals")
    return entries if isinstance(entries, dict) else {}


def save_cache(entries: dict[str, dict], path: Path | None = None) -> None:
    """Write the cache (atomically: two starts at once must not leave half a file)."""
    path = path or cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"version": CACHE_VERSION, "terminals": entries}))
        temporary.replace(path)
    except OSError:
        pass  # a read-only home: probe again next time


def caps_to_json(caps: TerminalCaps) -> dict:
    data = asdict(caps)
    data.pop("tmux")
    return data


def caps_from_json(data: dict, tmux: Tmux | None) -> TerminalCaps | None:
    try:
        fields = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in data.items()
            if k in TerminalCaps.__dataclass_fields__
        }
        return TerminalCaps(**fields, tmux=tmux)
    except TypeError:
        return None


def terminal_caps(
    env: Mapping[str, str] | None = None, wait_s: float | None = None
) -> TerminalCaps | None:
    """The terminal's capabilities: from the cache when DA1 still matches, else probed.
    None where stdin or stdout is no terminal (tests, pipes)."""
    env = os.environ if env is None else env
    if not (sys.__stdin__ and sys.__stdout__ and os.name == "posix"):
        return None
    if not (sys.__stdin__.isatty() and sys.__stdout__.isatty()):
        return None
    if wait_s is None:
        wait_s = float(env.get("BOXNET_TUI_PROBE_WAIT", WAIT_S))
    tmux = tmux_info(env)
    key = cache_key(env, tmux)
    entries = load_cache()
    cached = caps_from_json(entries[key], tmux) if key in entries else None
    try:
        if cached is not None and not cached.answered:
            return cached  # it did not answer last time: do not wait for it again
        if cached is not None and (tmux is None or tmux.passthrough):
            # one query, answered in one round trip: the same DA1, the same terminal
            check_wait = min(wait_s, max(0.3, 4 * cached.wait_s))
            replies, _ = _exchange("", check_wait, wrap=tmux is not None and not cached.tmux_sixel)
            if replies.da1 is not None and replies.da1 == cached.da1:
                return cached
        caps = probe(wait_s, tmux)
    except OSError:
        return None
    entries[key] = caps_to_json(caps)
    save_cache(entries)
    return caps
