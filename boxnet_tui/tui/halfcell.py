"""Half-block images: a fast renderable, and a widget that repaints only the cells that change.

textual-image's own half-cell renderable builds two Colors, a Style and a Segment for every
cell of every frame (about 60 ms for a 160×57 viewer, plus garbage-collector pauses). This one
does the same drawing (upper pixel as foreground, lower as background of "▀") from numpy:
colours are cut to 6 bits a channel (no visible difference in a terminal), Styles are cached
across frames by colour pair, and runs of equal cells become one Segment.

``FastHalfcellImage`` draws the same cells through Textual's line API and keeps the last
image's cell colours: a new image of the same size repaints only the cells it changes (an
edit's circle: a few hundred bytes to the terminal, not the whole frame), and a new image
never asks for a new layout.
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
from textual.geometry import Region, Size
from textual.strip import Strip
from textual_image._geometry import ImageSize
from textual_image._terminal import get_cell_size
from textual_image._utils import StrOrBytesPath

from boxnet_tui.tui.image_widget import ImageWidget

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


def _segments(row: list[int]) -> list[Segment]:
    """One row of cell keys as Segments of "▀", one per run of equal cells."""
    segments = []
    start = 0
    for end in range(1, len(row) + 1):
        if end == len(row) or row[end] != row[start]:
            segments.append(Segment("▀" * (end - start), _style(row[start])))
            start = end
    return segments


def changed_spans(old: np.ndarray, new: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, end column) of the cells that differ between two key arrays of
    one shape, one span per row that changed."""
    differ = old != new
    spans = []
    for row in np.flatnonzero(differ.any(axis=1)).tolist():
        columns = np.flatnonzero(differ[row])
        spans.append((row, int(columns[0]), int(columns[-1]) + 1))
    return spans


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
            yield from _segments(row)
            yield _NEWLINE

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width, _ = self._render_size.get_cell_size(
            options.max_width, options.max_height, get_cell_size()
        )
        return Measurement(width, width)


class FastHalfcellImage(ImageWidget):
    """An image widget drawing half-block cells; a new image repaints only changed cells.

    Set ``image`` (a PIL image, or None) as on textual-image's widgets. The image is fitted
    to the widget's cells (two pixels a cell, upper and lower); the app makes its frames at
    that size, so this is no resize. ``repainted`` counts the cells the last image repainted.
    """

    def __init__(
        self,
        image: PILImage.Image | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._image: PILImage.Image | None = None
        self._keys: np.ndarray | None = None  # (rows, columns) cell keys of what is drawn
        self._strips: list[Strip] = []
        self.repainted = 0
        self.image = image

    def _image_changed(self, value: PILImage.Image | None) -> None:
        size = self.size
        if value is None or self._keys is None or self._keys.shape != (size.height, size.width):
            self._keys = None  # drawn whole, at the size it is shown at
            self.repainted = size.width * size.height
            self.refresh()
            return
        keys = self._cell_keys(size)
        spans = changed_spans(self._keys, keys)
        self._keys = keys
        self.repainted = sum(end - start for _, start, end in spans)
        for row, _, _ in spans:
            self._strips[row] = Strip(_segments(keys[row].tolist()), size.width)
        if spans:
            self.refresh(*(Region(start, row, end - start, 1) for row, start, end in spans))

    def _cell_keys(self, size: Size) -> np.ndarray:
        assert self._image is not None
        image = self._image.convert("RGB")
        if image.size != (size.width, size.height * 2):
            image = image.resize((size.width, size.height * 2), PILImage.Resampling.BOX)
        return cell_keys(np.asarray(image))

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._image.width if self._image is not None else 0

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return (self._image.height + 1) // 2 if self._image is not None else 0

    def render_line(self, y: int) -> Strip:
        size = self.size
        if self._image is None or not size.width or not size.height:
            return Strip.blank(size.width, self.rich_style)
        if self._keys is None or self._keys.shape != (size.height, size.width):
            self._keys = self._cell_keys(size)
            self._strips = [Strip(_segments(row), size.width) for row in self._keys.tolist()]
        return self._strips[y] if y < len(self._strips) else Strip.blank(size.width)
