"""A faster half-block renderable for textual-image's image widget.

textual-image's own half-cell renderable builds two Colors, a Style and a Segment for every
cell of every frame (about 60 ms for a 160×57 viewer, plus garbage-collector pauses). This one
does the same drawing (upper pixel as foreground, lower as background of "▀") from numpy:
colours are cut to 6 bits a channel (no visible difference in a terminal), Styles are cached
across frames by colour pair, and runs of equal cells become one Segment.
"""

from __future__ import annotations

from typing import IO

import numpy as np
from PIL import Image as PILImage
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from textual_image._geometry import ImageSize
from textual_image._terminal import get_cell_size
from textual_image._utils import StrOrBytesPath

_STYLES: dict[int, Style] = {}
_MAX_STYLES = 200_000  # a few MB; cleared (not evicted one by one) when full
_NEWLINE = Segment("\n")


def _style(key: int) -> Style:
    style = _STYLES.get(key)
    if style is None:
        if len(_STYLES) >= _MAX_STYLES:
            _STYLES.clear()
        top, bottom = key >> 24, key & 0xFFFFFF
        style = Style(
            color=Color.from_rgb(top >> 16, (top >> 8) & 255, top & 255),
            bgcolor=Color.from_rgb(bottom >> 16, (bottom >> 8) & 255, bottom & 255),
        )
        _STYLES[key] = style
    return style


def cell_keys(rgb: np.ndarray) -> np.ndarray:
    """(rows/2, cols) int64 keys: upper pixel's 24-bit colour << 24 | lower pixel's."""
    if rgb.shape[0] % 2:
        rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
    packed = (rgb.astype(np.int64) & 0xFC) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int64)
    return (packed[0::2] << 24) | packed[1::2]


class FastHalfcell:
    """Rich renderable with textual-image's renderable interface (see its ``_protocol``)."""

    def __init__(
        self,
        image: StrOrBytesPath | IO[bytes] | PILImage.Image,
        width: int | str | None = None,
        height: int | str | None = None,
    ) -> None:
        if not isinstance(image, PILImage.Image):
            image = PILImage.open(image)  # type: ignore[arg-type]
        self._image = image.convert("RGB")
        self._render_size = ImageSize(self._image.width, self._image.height, width, height)

    def cleanup(self) -> None:
        pass

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, height = self._render_size.get_cell_size(
            options.max_width, options.max_height, get_cell_size()
        )
        image = self._image
        if image.size != (width, height * 2):
            image = image.resize((width, height * 2), PILImage.Resampling.BOX)
        for row in cell_keys(np.asarray(image)).tolist():
            start = 0
            for end in range(1, len(row) + 1):
                if end == len(row) or row[end] != row[start]:
                    yield Segment("▀" * (end - start), _style(row[start]))
                    start = end
            yield _NEWLINE

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width, _ = self._render_size.get_cell_size(
            options.max_width, options.max_height, get_cell_size()
        )
        return Measurement(width, width)
