"""Terminal probing and graphics choice without a terminal emulator: replies as terminals send
them (recorded from xterm 379, kitty 0.26.5 and tmux 3.3a), the choice they lead to, the
escape sequences sent, and the probe itself against a slow fake terminal on a pty."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from boxnet_tui.tui.graphics import choose
from boxnet_tui.tui.graphics_frames import kitty_delete, kitty_transmit, sixel
from boxnet_tui.tui.terminal_caps import (
    DA1,
    TerminalCaps,
    Tmux,
    caps_from_replies,
    parse_replies,
    parse_tmux,
    tmux_wrap,
    version_number,
)

XTERM = (
    "\x1bP>|XTerm(379)\x1b\\\x1b[?2;0;1000;960S\x1b[?1;0;1024S\x1b[?2;0;1000;1000S"
    "\x1b[?63;1;2;4;6;9;15;16;22;28c"
)
KITTY = "\x1bP>|kitty(0.26.5)\x1b\\\x1b_Gi=31;OK\x1b\\\x1b[6;20;9t\x1b[4;400;639t\x1b[?62;c"
TMUX_OWN = "\x1bP>|tmux 3.3a\x1b\\\x1b[?1;2c"


def test_xterm_replies() -> None:
    caps = caps_from_replies(parse_replies(XTERM))
    assert caps.answered and caps.sixel and not caps.kitty
    assert caps.sixel_max == (1000, 1000)  # the limit, not the window's share of it
    assert caps.sixel_colors == 1024
    assert caps.version == "XTerm(379)"


def test_kitty_replies() -> None:
    replies = parse_replies(KITTY)
    caps = caps_from_replies(replies)
    assert caps.kitty and not caps.sixel
    assert caps.cell == (9, 20)
    assert not caps.kitty_placeholders  # 0.26.5: placeholders came in 0.28
    newer = caps_from_replies(parse_replies(KITTY.replace("0.26.5", "0.28.1")))
    assert newer.kitty_placeholders


def test_replies_apart_from_keys_typed_meanwhile() -> None:
    boundary = XTERM.index("\x1b[?2")  # between two replies
    replies = parse_replies("j" + XTERM[:boundary] + "k" + XTERM[boundary:])
    assert replies.other == "jk"
    assert replies.da1 is not None


def test_no_answer() -> None:
    caps = caps_from_replies(parse_replies(""))
    assert not caps.answered and not caps.sixel and not caps.kitty


def test_version_numbers() -> None:
    assert version_number("kitty(0.26.5)", "kitty") == (0, 26, 5)
    assert version_number("XTerm(379)", "kitty") is None
    assert version_number("tmux 3.3a", "tmux") == (3, 3)
    assert version_number(None, "kitty") is None


def test_tmux_format() -> None:
    tmux = parse_tmux("3.3a|1|xterm|XTerm(379)")
    assert tmux == Tmux((3, 3), True, "xterm", "XTerm(379)")
    assert not parse_tmux("3.4|0|xterm-kitty|kitty(0.26.5)").passthrough
    assert parse_tmux("3.4|on||").passthrough


def test_tmux_wrap_doubles_escapes() -> None:
    assert tmux_wrap("\x1b[c") == "\x1bPtmux;\x1b\x1b[c\x1b\\"


def caps_of(text: str, tmux: Tmux | None = None) -> TerminalCaps:
    caps = caps_from_replies(parse_replies(text))
    return TerminalCaps(**{**caps.__dict__, "tmux": tmux})


def test_choice() -> None:
    xterm, kitty = caps_of(XTERM), caps_of(KITTY)
    assert choose("auto", xterm).method == "sixel"
    assert choose("auto", xterm).output.sixel_max == (1000, 1000)  # type: ignore[union-attr]
    assert choose("auto", kitty).method == "kitty"
    # WezTerm and Konsole answer both; their Kitty support is partial: Sixel
    wezterm = caps_of(XTERM.replace("XTerm(379)", "WezTerm 20240203") + "\x1b_Gi=31;OK\x1b\\")
    assert choose("auto", wezterm).method == "sixel"
    konsole = caps_of("\x1b_Gi=31;OK\x1b\\\x1b[?62;22c")
    assert choose("auto", konsole).method == "kitty"
    assert choose("auto", None).method == "halfcell"
    assert choose("auto", caps_of("\x1b[?62;22c")).method == "halfcell"
    assert choose("sixel", None).output.sixel_max == (1000, 1000)  # type: ignore[union-attr]
    assert choose("halfcell", xterm).method == "halfcell"  # --graphics overrides


def test_tmux_choice() -> None:
    on, off = Tmux((3, 3), True, "xterm"), Tmux((3, 3), False, "xterm")
    through = choose("auto", caps_of(XTERM, on))
    assert through.method == "sixel" and through.output.tmux  # type: ignore[union-attr]
    closed = choose("auto", caps_of(TMUX_OWN, off))
    assert closed.method == "halfcell"
    assert len(closed.notes) == 1 and "allow-passthrough on" in closed.notes[0]
    native = TerminalCaps(answered=True, sixel=True, tmux=off, tmux_sixel=True)
    assert choose("auto", native).method == "sixel"
    assert not choose("auto", native).output.tmux  # type: ignore[union-attr]


def test_colour_note_only_for_halfcells() -> None:
    assert any("COLORTERM=truecolor" in n for n in choose("auto", None, color_system="256").notes)
    assert not choose("auto", None, color_system="truecolor").notes
    assert not choose("auto", caps_of(XTERM), color_system="256").notes


def test_sixel_defines_colours_before_drawing() -> None:
    """xterm draws the first band in wrong colours when a register is defined within it."""
    image = Image.new("RGB", (30, 20), (0, 0, 0))
    image.paste((200, 200, 200), (0, 0, 10, 20))
    data = sixel(image)
    assert data.startswith('\x1bP0;1;0q"1;1;30;20#')  # P2=1: a band's overhang stays clear
    body = data[data.index("#") :]
    definitions = body[: body.index("!")]
    assert definitions.count(";2;") == 2
    assert ";2;" not in body[len(definitions) :]


def test_kitty_commands() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8))
    commands = kitty_transmit(image, 7, 30, 10, -2)
    assert len(commands) > 1
    assert commands[0].startswith("\x1b_Ga=T,i=7,p=1,f=100,c=30,r=10,C=1,z=-2,q=2,m=1;")
    assert all(c.startswith("\x1b_Gm=1,q=2;") for c in commands[1:-1])
    assert commands[-1].startswith("\x1b_Gm=0,q=2;")
    assert kitty_delete(7) == "\x1b_Ga=d,d=i,i=7,q=2\x1b\\"


# -- the probe against a fake terminal on a pty ----------------------------------------------
CHILD = """
import json, os, select, sys, time
from boxnet_tui.tui.terminal_caps import terminal_caps
start = time.monotonic()
caps = terminal_caps()
took = time.monotonic() - start
print("probed", flush=True)
left = b""
while select.select([0], [], [], 1.0)[0]:
    left += os.read(0, 1024)
with open(sys.argv[1], "w") as out:
    json.dump({"caps": caps.__dict__ if caps else None, "took": took, "left": left.decode()},
              out, default=str)
"""

REPLIES = {
    "\x1b[>0q": "\x1bP>|FakeTerm(1)\x1b\\",
    "\x1b[?2;4;0S": "\x1b[?2;0;800;600S",
    "\x1b[?1;1;0S": "\x1b[?1;0;64S",
    DA1: "\x1b[?62;4;22c",
}


def fake_terminal(home: Path, out: Path, delay: float) -> str:
    """Run the probe in a child on a pty whose 'terminal' answers after ``delay``; then type
    one key. Returns what the child sent."""
    master, slave = os.openpty()
    env = {**os.environ, "BOXNET_TUI_HOME": str(home), "TERM": "fake-term"}
    for name in ("TMUX", "TMUX_PANE", "TERM_PROGRAM", "KITTY_WINDOW_ID", "XTERM_VERSION"):
        env.pop(name, None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out)],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    os.close(slave)
    sent = ""
    try:
        deadline = time.monotonic() + 30
        while DA1 not in sent:
            assert time.monotonic() < deadline, f"no DA1 query; sent {sent!r}"
            if select.select([master], [], [], 0.5)[0]:
                sent += os.read(master, 4096).decode()
        time.sleep(delay)  # a slow link
        os.write(master, "".join(r for q, r in REPLIES.items() if q in sent).encode())
        while "probed" not in sent:
            assert time.monotonic() < deadline, f"the probe did not end; sent {sent!r}"
            if select.select([master], [], [], 0.5)[0]:
                sent += os.read(master, 4096).decode()
        os.write(master, b"k\r")  # the user's first key (and Enter: the line is cooked)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    assert child.returncode == 0, child.stderr.read().decode() if child.stderr else ""
    return sent


def test_probe_waits_for_a_slow_terminal_and_leaves_no_reply(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    sent = fake_terminal(tmp_path / "home", out, delay=0.6)
    result = json.loads(out.read_text())
    caps = result["caps"]
    assert caps["sixel"] and caps["answered"]
    assert caps["sixel_max"] == [800, 600] and caps["sixel_colors"] == 64
    assert caps["version"] == "FakeTerm(1)"
    assert result["left"].replace("\r", "").replace("\n", "") == "k"  # no reply left as keys
    assert sent.index("\x1b[>0q") < sent.index(DA1)  # DA1 last: its reply ends the wait
    cache = json.loads((tmp_path / "home" / "scratch" / "terminal-caps.json").read_text())
    assert len(cache["terminals"]) == 1

    # the next start: DA1 alone, the rest from the cache
    again = fake_terminal(tmp_path / "home", out, delay=0.05)
    assert again.split("probed")[0].strip() == DA1
    assert json.loads(out.read_text())["caps"]["sixel_max"] == [800, 600]


def test_sixel_frame_sends_only_the_rows_that_change() -> None:
    """A cursor move changes a few rows of a Sixel frame: only those are encoded and sent,
    each as one control segment that blanks its row and draws it."""
    import asyncio
    import io

    from rich.console import Console
    from textual._compositor import CompositorUpdate
    from textual.app import App

    from boxnet_tui.tui.graphics_frames import Output, SixelFrame

    rng = np.random.default_rng(1)
    first = rng.integers(0, 255, (200, 300, 3)).astype(np.uint8)  # 30 x 10 cells of 10 x 20
    second = first.copy()
    second[45:50, 100:120] = (255, 255, 0)  # pixel rows 45-49: cell row 2

    class Frame(SixelFrame):
        output = Output("sixel", (10, 20))

    class Host(App):
        CSS = "Frame { width: 30; height: 10; }"

        def compose(self):
            yield Frame(Image.fromarray(first))

    sent: list[str] = []

    async def body() -> None:
        app = Host()
        async with app.run_test(size=(40, 12)) as pilot:
            console = Console(file=io.StringIO(), color_system="truecolor", force_terminal=True)
            display = app._display

            def recording(screen, renderable) -> None:
                if isinstance(renderable, CompositorUpdate):
                    sent.append(renderable.render_segments(console))
                display(screen, renderable)

            app._display = recording  # type: ignore[method-assign]
            frame = app.query_one(Frame)
            frame.image = Image.fromarray(first)
            await pilot.pause()
            assert frame.rows_encoded == 10
            sent.clear()
            frame.image = Image.fromarray(second)
            await pilot.pause()
            assert frame.rows_encoded == 11  # row 2 again, nothing else
            update = "".join(sent)
            assert update.count("\x1bP0;1;0q") == 1
            assert "\x1b[3;1H\x1bP" in update  # drawn at its row (1-based), first column

    asyncio.run(body())
