"""The numpy Sixel encoder (``tui/sixel.py``): known bytes for small images, and whatever it
encodes decoded again by a small Sixel decoder here gives the palette's picture of it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from boxnet_tui.display import MASK_ALPHA, MASK_COLOUR, PICK_COLOUR, TARGET_COLOUR
from boxnet_tui.tui.sixel import CURSOR_COLOUR, GREY_LEVELS, encode, palette, sixel_image

HEADER = re.compile(r'\x1bP0;1;0q"1;1;(\d+);(\d+)')
TOKEN = re.compile(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?|!(\d+)([?-~])|([?-~])|(\$)|(-)")
UNSET = (-1, -1, -1)


def decode(data: str) -> np.ndarray:
    """(h, w, 3) int RGB of one Sixel image; UNSET where no sixel set the pixel. Strict: a
    register used before it is defined, a sixel past the width or a definition after the first
    sixel (xterm 379 draws that band in wrong colours) fail."""
    header = HEADER.match(data)
    assert header, data[:40]
    assert data.endswith("\x1b\\")
    width, height = int(header.group(1)), int(header.group(2))
    body = data[header.end() : -2]
    image = np.full((height + 6, width, 3), UNSET, int)
    registers: dict[int, tuple[int, int, int]] = {}
    x = y = 0
    colour = None
    drawn = False
    at = 0
    while at < len(body):
        token = TOKEN.match(body, at)
        assert token, f"not Sixel at {at}: {body[at : at + 20]!r}"
        at = token.end()
        number, r, g, b, repeat, repeated, single, carriage, newline = token.groups()
        if number is not None and r is not None:
            assert not drawn, "a colour defined after the first sixel"
            registers[int(number)] = tuple(round(int(v) * 255 / 100) for v in (r, g, b))
        elif number is not None:
            colour = int(number)
            assert colour in registers, f"register {colour} used undefined"
        elif repeat is not None or single is not None:
            count, char = (int(repeat), repeated) if repeat is not None else (1, single)
            assert colour is not None
            bits = ord(char) - 63
            assert x + count <= width, "a sixel past the image's width"
            for row in range(6):
                if bits >> row & 1:
                    image[y + row, x : x + count] = registers[colour]
            x += count
            drawn = True
        elif carriage:
            x = 0
        elif newline:
            x, y = 0, y + 6
    assert (image[height:] == UNSET).all(), "pixels set below the image"
    return image[:height]


def expected(colours, indices: np.ndarray) -> np.ndarray:
    """The palette's colours as the decoder reads them back (Sixel has percent steps)."""
    percent = (colours.colours.astype(int) * 100 + 127) // 255
    return np.round(percent * 255 / 100).astype(int)[indices]


def test_known_bytes() -> None:
    """Black then white columns, six rows: one band, two colours, "$" between them."""
    image = np.zeros((6, 4, 3), np.uint8)
    image[:, 2:] = 255
    white = GREY_LEVELS - 1
    definitions = f"#0;2;0;0;0#{white};2;100;100;100"
    assert sixel_image(image) == f'\x1bP0;1;0q"1;1;4;6{definitions}#0~~$#{white}??~~\x1b\\'


def test_runs_bands_and_partial_band() -> None:
    """Runs of four or more as "!n", "-" between bands; the last band has four rows only."""
    image = np.full((10, 12, 3), 255, np.uint8)
    data = sixel_image(image)
    white = GREY_LEVELS - 1
    assert data.endswith(f"#{white}!12~-#{white}!12N\x1b\\")  # N: 0b001111 + 63
    assert (decode(data) == 255).all()


def test_round_trip_random() -> None:
    """Random greys, overlay colours and noise in any colour, cut in rows of 20 (the last
    shorter), decode to the palette's colours everywhere; each image defines what it uses."""
    rng = np.random.default_rng(3)
    rgb = np.repeat(rng.integers(0, 256, (67, 53, 1), np.uint8), 3, axis=2)
    rgb[5:9, 3:40] = PICK_COLOUR
    rgb[30:31, :] = CURSOR_COLOUR
    rgb[40:60, 10:20] = rng.integers(0, 256, (20, 10, 3), np.uint8)
    colours = palette(256)
    indices = colours.indices(rgb)
    images = encode(indices, colours, 20)
    assert len(images) == 4
    for n, data in enumerate(images):
        part = indices[n * 20 : (n + 1) * 20]
        assert (decode(data) == expected(colours, part)).all(), n
        defined = set(int(d) for d in re.findall(r"#(\d+);2;", data))
        assert defined == set(np.unique(part).tolist())


def test_sparse_colours_and_wide_runs() -> None:
    """Few pixels of a colour far apart (long empty runs inside a line, none at its end)."""
    rgb = np.zeros((20, 2400, 3), np.uint8)
    rgb[3, 5] = rgb[17, 2399] = rgb[0, 1200] = (255, 255, 255)
    colours = palette(256)
    (data,) = encode(colours.indices(rgb), colours, 20)
    assert (decode(data) == expected(colours, colours.indices(rgb))).all()
    assert "!1194?" in data  # from column 6 to 1200 in the first band


def test_palette_greys_and_overlay_colours() -> None:
    colours = palette(256)
    grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    levels = colours.colours[colours.indices(grey)[0]]
    assert len(np.unique(levels[:, 0])) == GREY_LEVELS
    assert np.abs(levels.astype(int) - grey[0]).max() <= 255 / (GREY_LEVELS - 1) / 2 + 0.5
    for colour in (PICK_COLOUR, TARGET_COLOUR, CURSOR_COLOUR):
        pixel = np.array([[colour]], np.uint8)
        assert tuple(colours.colours[colours.indices(pixel)[0, 0]]) == colour
    tint = (128 * (1 - MASK_ALPHA) + MASK_COLOUR * MASK_ALPHA).astype(np.uint8)
    found = colours.colours[colours.indices(tint[None, None, :])[0, 0]]
    assert np.abs(found.astype(int) - tint).max() <= 12


@pytest.mark.parametrize("registers", [16, 64, 1024])
def test_register_limit(registers: int) -> None:
    """No register numbered at or past the terminal's limit (XTSMGRAPHICS' answer)."""
    colours = palette(registers)
    assert len(colours) <= min(registers, 255)
    rgb = np.random.default_rng(0).integers(0, 256, (12, 40, 3), np.uint8)
    data = sixel_image(rgb, registers)
    assert max(int(n) for n in re.findall(r"#(\d+)", data)) < min(registers, 255)
    assert (decode(data) == expected(colours, colours.indices(rgb))).all()
