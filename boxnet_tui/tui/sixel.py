"""Sixel encoding in numpy: a fixed palette for our frames and a band encoder.

A frame is grey (the micrograph) with a few colours drawn in: the mask tint (grey blended with
``MASK_COLOUR``), the picks (``PICK_COLOUR`` to ``LOW_SCORE_COLOUR`` by score), the target,
grabbed and compare colours, the minimap's outline and the Sixel cursor. The palette holds
``GREY_LEVELS`` evenly spaced greys, those colours exactly, tints and score steps, and a small
colour cube for anything else, within the terminal's colour registers. Grey pixels map through
a 256-entry table, others through a table of 32 levels per channel: no per-frame quantiser.

``encode`` turns a frame of palette indices into one Sixel image per row of cells, all rows in
one pass of numpy: per band of six pixel rows and per colour the 6-bit column values, runs of
four or more as ``!n``, ``$`` between the colours of a band and ``-`` between bands. Every
colour an image uses is defined before its first sixel (xterm 379 draws the first band in
wrong colours when a register is defined within it), and P2=1 leaves pixels an image does not
cover as they are (a band of six overhangs a cell row whose height is no multiple of six).

Grey levels against bytes: a micrograph is noise at display scale, so nearly every level is
present in every band and each costs its runs. A whole 4096 px micrograph shrunk to 1000x750
sends 1.3 MB with 32 levels, 1.8 MB with 64, 2.1 MB with 101 (Sixel's percent resolution);
textual-image's octree quantiser sent 0.83 MB with 16-21 uneven greys. 64 (steps of 4 of 255)
shows no banding on smooth, zoomed-in views.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from boxnet_tui.display import (
    COMPARE_COLOUR,
    GRABBED_COLOUR,
    LOW_SCORE_COLOUR,
    MASK_ALPHA,
    MASK_COLOUR,
    MINIMAP_VIEW_COLOUR,
    PICK_COLOUR,
    TARGET_COLOUR,
)

ESC = "\x1b"
CURSOR_COLOUR = (255, 255, 0)  # the Sixel cursor, drawn into the frame (viewer.py)
GREY_LEVELS = 64
TINT_LEVELS = 16  # mask tint over greys
SCORE_STEPS = 8  # between LOW_SCORE_COLOUR and PICK_COLOUR
OVERLAY_COLOURS = (
    PICK_COLOUR,
    LOW_SCORE_COLOUR,
    TARGET_COLOUR,
    GRABBED_COLOUR,
    COMPARE_COLOUR,
    MINIMAP_VIEW_COLOUR,
    CURSOR_COLOUR,
    tuple(int(c) for c in MASK_COLOUR),
)
MAX_REGISTERS = 255  # index 255 marks "no pixel" (padding) in ``encode``
_NONE = 255
_RLE_MIN = 4  # "!4x" is shorter than "xxxx"; "!3x" is not shorter than "xxx"
_SIXEL_ZERO = 63  # "?": no pixel of the six set


class Palette:
    """Colours (``colours``, (n, 3) uint8, n <= 255) and how any RGB pixel maps to one."""

    def __init__(self, colours: np.ndarray) -> None:
        self.colours = colours
        # definitions in percent, Sixel's only RGB unit: "#n;2;r;g;b"
        percent = (colours.astype(np.int32) * 100 + 127) // 255
        self.definitions = [f"#{i};2;{r};{g};{b}" for i, (r, g, b) in enumerate(percent.tolist())]
        greys = colours[:, 0].astype(np.int32)
        is_grey = (colours[:, 0] == colours[:, 1]) & (colours[:, 1] == colours[:, 2])
        grey_index = np.flatnonzero(is_grey)
        levels = np.arange(256)[:, None]
        self.grey_table = grey_index[np.abs(levels - greys[grey_index][None, :]).argmin(axis=1)]
        self.grey_table = self.grey_table.astype(np.uint8)
        centres = (np.arange(32) * 8 + 4).astype(np.float32)
        r, g, b = np.meshgrid(centres, centres, centres, indexing="ij")
        bins = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
        table = np.empty(len(bins), np.uint8)
        float_colours = colours.astype(np.float32)
        for start in range(0, len(bins), 4096):
            part = bins[start : start + 4096]
            distance = ((part[:, None, :] - float_colours[None, :, :]) ** 2).sum(axis=2)
            table[start : start + 4096] = distance.argmin(axis=1)
        self.colour_table = table  # by (r >> 3) << 10 | (g >> 3) << 5 | b >> 3

    def __len__(self) -> int:
        return len(self.colours)

    def indices(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w) uint8 palette indices of an (h, w, 3) uint8 image."""
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        out = self.grey_table[r]
        other = np.nonzero((r != g) | (g != b))
        if other[0].size:
            pixels = rgb[other].astype(np.intp) >> 3
            out[other] = self.colour_table[pixels[:, 0] << 10 | pixels[:, 1] << 5 | pixels[:, 2]]
        return out


@lru_cache(maxsize=4)
def palette(registers: int = 256) -> Palette:
    """The frame palette for a terminal with ``registers`` colour registers (2 or more)."""
    n = max(2, min(MAX_REGISTERS, registers))
    greys = GREY_LEVELS if n >= 128 else max(2, n // 2)
    extra = [np.array(OVERLAY_COLOURS, np.float32)]
    level = np.linspace(0, 255, TINT_LEVELS, dtype=np.float32)[:, None]
    extra.append(level * (1 - MASK_ALPHA) + MASK_COLOUR[None, :] * MASK_ALPHA)
    t = np.linspace(0, 1, SCORE_STEPS, dtype=np.float32)[1:-1, None]
    low, high = np.array(LOW_SCORE_COLOUR, np.float32), np.array(PICK_COLOUR, np.float32)
    extra.append(low + t * (high - low))
    cube = np.array([0, 128, 255], np.float32)
    r, g, b = np.meshgrid(cube, cube, cube, indexing="ij")
    cube_colours = np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)
    extra.append(cube_colours[(cube_colours[:, 0] != cube_colours[:, 1])
                              | (cube_colours[:, 1] != cube_colours[:, 2])])  # fmt: skip
    grey = np.repeat(np.round(np.linspace(0, 255, greys))[:, None], 3, axis=1)
    others = np.concatenate(extra)[: n - greys]
    colours = np.concatenate([grey, others]).astype(np.int32)
    colours = np.clip(colours, 0, 255).astype(np.uint8)
    return Palette(colours)


@lru_cache(maxsize=8)
def _run_tokens(longest: int) -> np.ndarray:
    """((longest + 1) * 64,) little-endian uint64: entry ``n * 64 + v`` holds the bytes that
    write a run of n sixels of value v ("x", "xx", "xxx", "!4x", ..., "!2400x"), the rest of
    its 8 bytes zero; entries for n = 0 are zero (a line's trailing empty run: not written)."""
    n = np.arange(longest + 1)
    digits = np.char.str_len(n.astype(str))
    base = np.zeros(longest + 1, np.uint64)
    for place in range(int(digits.max())):  # "!" then the digits, from byte 0
        digit = (n // 10 ** np.maximum(digits - 1 - place, 0)) % 10 + ord("0")
        base += np.where(place < digits, digit, 0).astype(np.uint64) << np.uint64(8 * (place + 1))
    base += np.uint64(ord("!"))
    char_shift = (8 * (1 + digits)).astype(np.uint64)  # the sixel after "!n"
    repeat = np.array([0, 0x1, 0x101, 0x10101], np.uint64)  # "x", "xx", "xxx"
    long = n >= _RLE_MIN
    multiplier = np.where(long, np.uint64(1) << char_shift, repeat[np.minimum(n, 3)])
    base[~long] = 0
    chars = np.arange(_SIXEL_ZERO, _SIXEL_ZERO + 64, dtype=np.uint64)
    table = base[:, None] + chars[None, :] * multiplier[:, None].astype(np.uint64)
    return table.ravel().astype("<u8")


def _line_tokens(registers: np.ndarray, separators: np.ndarray) -> np.ndarray:
    """Little-endian uint64 per line: its separator byte (0: none), then "#" and its
    register (up to 3 digits), as many bytes as it takes, the rest zero."""
    digits = 1 + (registers >= 10) + (registers >= 100)
    tokens = separators.astype(np.uint64) + (np.uint64(ord("#")) << np.uint64(8))
    for place in range(3):
        digit = (registers // 10 ** np.maximum(digits - 1 - place, 0)) % 10 + ord("0")
        byte = np.where(place < digits, digit, 0).astype(np.uint64)
        tokens += byte << np.uint64(8 * (place + 2))
    return tokens.astype("<u8")


def encode(indices: np.ndarray, palette: Palette, height: int) -> list[str]:
    """One Sixel image per ``height`` rows of ``indices`` ((h, w) palette indices; the last
    image may be shorter), each with its colours defined first and P2=1."""
    rows, width = indices.shape
    if not rows or not width:
        return []
    images = -(-rows // height)
    bands_per = -(-height // 6)
    # colours present anywhere, renumbered densely (``colours`` stands for "no pixel")
    used = np.flatnonzero(np.bincount(indices.ravel(), minlength=256)[:_NONE])
    colours = len(used)
    dense = np.full(256, colours, np.uint8)
    dense[used] = np.arange(colours, dtype=np.uint8)
    stack = np.full((images, bands_per * 6, width), colours, np.uint8)
    whole = rows // height
    stack[:whole, :height] = dense[indices[: whole * height]].reshape(whole, height, width)
    if whole < images:
        stack[whole, : rows - whole * height] = dense[indices[whole * height :]]
    bands = stack.reshape(-1, 6, width)
    count = len(bands)
    # one line per colour of each band (in band, then register order): its 6-bit columns
    key = bands + (np.arange(count, dtype=np.intp) * (colours + 1))[:, None, None]
    present = np.bincount(key.ravel(), minlength=count * (colours + 1)) > 0
    present = present.reshape(count, colours + 1)
    present[:, colours] = False  # "no pixel" is drawn by no line
    band_of, colour_of = np.nonzero(present)
    m = len(band_of)
    line_id = np.full((count, colours + 1), m, np.intp)  # line m: a scratch line
    line_id[band_of, colour_of] = np.arange(m)
    target = line_id.ravel()[key] * width + np.arange(width)
    lines = np.zeros((m + 1) * width, np.uint8)
    for r in range(6):
        lines[target[:, r]] |= np.uint8(1 << r)
    lines = lines[: m * width].reshape(m, width)
    # runs of equal columns: one starts at column 0 of each line and wherever a value changes
    changes = np.ones((m, width), bool)
    np.not_equal(lines[:, 1:], lines[:, :-1], out=changes[:, 1:])
    starts = np.flatnonzero(changes)
    lengths = np.diff(np.append(starts, m * width))
    values = lines.ravel()[starts]
    first_run = np.searchsorted(starts, np.arange(m) * width)
    last_run = np.append(first_run[1:], len(starts)) - 1
    lengths[last_run[values[last_run] == 0]] = 0  # a trailing empty run: not written
    runs = _run_tokens(width)[lengths * 64 + values]
    # before each line's runs: "$" (next colour) or "-" (next band; none first in an image),
    # then "#n"
    image_of_line = band_of // bands_per
    new_band = np.ones(m, bool)
    new_band[1:] = band_of[1:] != band_of[:-1]
    new_image = np.ones(m, bool)
    new_image[1:] = image_of_line[1:] != image_of_line[:-1]
    separators = np.where(new_band, ord("-"), ord("$"))
    separators[new_image] = 0
    tokens = np.insert(runs, first_run, _line_tokens(used[colour_of], separators))
    # cut per image; the colours each image uses, defined up front
    line_starts = first_run + np.arange(m)  # where each line's token is, after the insert
    image_first = np.searchsorted(image_of_line, np.arange(images + 1))
    bounds = np.append(line_starts, len(tokens))[image_first]
    uses = np.zeros((images, colours), bool)
    uses[image_of_line, colour_of] = True
    data = tokens.view(np.uint8)
    result = []
    for i in range(images):
        if bounds[i] == bounds[i + 1]:
            result.append("")
            continue
        body = data[bounds[i] * 8 : bounds[i + 1] * 8].tobytes().translate(None, b"\0")
        definitions = "".join(palette.definitions[c] for c in used[uses[i]])
        h = min(height, rows - i * height)
        result.append(f'{ESC}P0;1;0q"1;1;{width};{h}{definitions}{body.decode("ascii")}{ESC}\\')
    return result


def sixel_image(rgb: np.ndarray, registers: int = 256) -> str:
    """An (h, w, 3) uint8 image as one Sixel image."""
    colours = palette(registers)
    images = encode(colours.indices(rgb), colours, rgb.shape[0])
    return images[0] if images else ""
