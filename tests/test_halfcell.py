"""Our half-block renderable draws what textual-image's does, cell for cell."""

from __future__ import annotations

import numpy as np
from PIL import Image
from rich.console import Console
from textual_image.renderable.halfcell import Image as TextualImageHalfcell

from boxnet_tui.tui.halfcell import FastHalfcell, cell_keys


def _cells(renderable, console: Console, width: int, height: int) -> list[tuple[str, object]]:
    options = console.options.update(width=width, height=height)
    cells = []
    for segment in renderable.__rich_console__(console, options):
        if segment.text == "\n":
            cells.append(("\n", None))
            continue
        style = segment.style
        colours = (style.color.triplet, style.bgcolor.triplet)
        cells.extend((char, colours) for char in segment.text)
    return cells


def test_same_cells_as_textual_image_for_6_bit_colours():
    rng = np.random.default_rng(0)
    pixels = (rng.integers(0, 64, (20, 30, 3)) * 4).astype(np.uint8)
    pixels[:, :10] = 0  # a black band: one Segment for the run, same cells
    image = Image.fromarray(pixels)
    console = Console(width=40, height=20, color_system="truecolor")
    ours = _cells(FastHalfcell(image, 30, 10), console, 30, 10)
    theirs = _cells(TextualImageHalfcell(image, 30, 10), console, 30, 10)
    assert ours == theirs and len(ours) == 31 * 10


def test_odd_heights_pair_the_last_row_with_itself():
    rgb = np.zeros((3, 2, 3), np.uint8)
    rgb[2] = (8, 16, 32)
    keys = cell_keys(rgb)
    colour = (8 << 16) | (16 << 8) | 32
    assert keys.shape == (2, 2) and (keys[1] == (colour << 24) | colour).all()
    assert (keys[0] == 0).all()


def test_a_new_image_repaints_only_the_cells_it_changes():
    """An edit's new frame differs from the last in a circle's cells: only those are sent."""
    import asyncio
    import io

    from textual._compositor import CompositorUpdate
    from textual.app import App

    from boxnet_tui.tui.halfcell import FastHalfcellImage

    rng = np.random.default_rng(1)
    first = (rng.integers(0, 64, (40, 60, 3)) * 4).astype(np.uint8)
    second = first.copy()
    second[10:14, 20:26] = (252, 0, 0)  # rows 10-13: cells 5 and 6, columns 20-25

    class Frame(App):
        CSS = "FastHalfcellImage { width: 60; height: 20; }"

        def compose(self):
            yield FastHalfcellImage(Image.fromarray(first))

    sent: list[int] = []

    async def body() -> None:
        app = Frame()
        async with app.run_test(size=(80, 24)) as pilot:
            console = Console(file=io.StringIO(), color_system="truecolor", force_terminal=True)
            display = app._display

            def counting(screen, renderable) -> None:
                if isinstance(renderable, CompositorUpdate):
                    sent.append(len(renderable.render_segments(console).encode()))
                display(screen, renderable)

            app._display = counting  # type: ignore[method-assign]
            widget = app.query_one(FastHalfcellImage)
            await pilot.pause()
            sent.clear()  # the first paint
            widget.image = Image.fromarray(second)
            await pilot.pause()
            edit = sum(sent)
            assert widget.repainted == 2 * 6
            sent.clear()
            widget.image = None
            widget.image = Image.fromarray(first)  # drawn whole, as a new micrograph is
            await pilot.pause()
            assert widget.repainted == 60 * 20
            full = sum(sent)
            assert 0 < edit < full / 20
            assert widget.render_line(5).cell_length == 60

    asyncio.run(body())
