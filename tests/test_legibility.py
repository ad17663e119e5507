"""What makes the picks legible, without Textual: Tab's orders, score colours, overview dots,
the minimap, the tile walk, and the low-pass / contrast of the displayed micrograph."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from boxnet_tui.display import (
    LOW_SCORE_COLOUR,
    PICK_COLOUR,
    DisplaySettings,
    Overlay,
    PreparedImage,
    View,
    crowded,
    minimap_box,
    minimap_corner,
    pick_style,
    prepare,
    render,
    restyle,
    score_colours,
    score_range,
    tile_centres,
)
from boxnet_tui.io.micrographs import Micrograph
from boxnet_tui.micrograph_cache import Loaded, MicrographCache
from boxnet_tui.pick_order import (
    key_of,
    pick_at,
    reading_key,
    reading_order,
    score_order,
    step,
)


# -- Tab's orders --------------------------------------------------------------------------
def test_reading_order_reads_rows_one_diameter_high_left_to_right():
    # a row of three whose y differ by a few px, then a row below: raw y would zigzag
    x = np.array([300.0, 100.0, 200.0, 150.0])
    y = np.array([102.0, 110.0, 95.0, 200.0])
    order = reading_order(x, y, np.arange(4), band=40.0)
    assert order.indices.tolist() == [1, 2, 0, 3]
    by_raw_y = np.lexsort((x, y)).tolist()
    assert by_raw_y == [2, 0, 1, 3]  # what Tab did before


def test_reading_order_steps_from_the_cursor_and_wraps():
    x = np.array([300.0, 100.0, 200.0, 150.0])
    y = np.array([102.0, 110.0, 95.0, 200.0])
    order = reading_order(x, y, np.arange(4), band=40.0)
    assert step(order, reading_key(order, 0.0, 0.0), 1) == 1  # above every row: the first
    assert step(order, reading_key(order, 150.0, 100.0), 1) == 2  # in the first row, x 150
    assert step(order, reading_key(order, 150.0, 100.0), -1) == 1
    assert step(order, reading_key(order, 0.0, 170.0), 1) == 3  # between the rows
    assert step(order, reading_key(order, 0.0, 170.0), -1) == 0
    assert step(order, key_of(order, 3), 1) == 1  # the last wraps to the first
    assert step(order, key_of(order, 1), -1) == 3
    empty = reading_order(x, y, np.array([], int), band=40.0)
    assert step(empty, None, 1) is None


def test_score_order_puts_the_doubtful_first_and_unscored_last():
    x = np.array([10.0, 20.0, 30.0, 40.0])
    y = np.array([10.0, 10.0, 10.0, 10.0])
    score = np.array([0.9, np.nan, 0.3, 0.6])
    order = score_order(x, y, score, np.arange(4))
    assert order.indices.tolist() == [2, 3, 0, 1]
    assert step(order, None, 1) == 2 and step(order, None, -1) == 1
    # from a removed pick's key (score 0.3), on to the next lowest
    assert step(order, (0.3, 10.0, 30.0), 1) == 3
    assert step(order, key_of(order, 0), 1) == 1
    hidden = score_order(x, y, score, np.array([0, 3]))  # only the shown ones
    assert hidden.indices.tolist() == [3, 0]


def test_pick_at_finds_the_pick_under_the_cursor_only():
    x, y = np.array([10.0, 50.0]), np.array([10.0, 50.0])
    assert pick_at(x, y, np.arange(2), 50.0, 50.2) == 1
    assert pick_at(x, y, np.arange(2), 51.5, 50.0) is None
    assert pick_at(x, y, np.array([0]), 50.0, 50.0) is None


# -- colours by score ----------------------------------------------------------------------
def test_score_colours_ramp_from_the_lowest_to_the_highest_score():
    scores = np.array([0.5, 1.0, 0.75, np.nan])
    span = score_range(scores)
    assert span == (0.5, 1.0)
    colours = score_colours(scores, span)
    assert tuple(colours[0]) == LOW_SCORE_COLOUR and tuple(colours[1]) == PICK_COLOUR
    assert tuple(colours[3]) == PICK_COLOUR  # no score: today's colour
    middle = (np.array(LOW_SCORE_COLOUR) + np.array(PICK_COLOUR)) / 2
    assert np.abs(colours[2] - middle).max() <= 1
    assert score_range(np.array([np.nan, np.nan])) is None
    assert score_range(np.array([0.8, 0.8])) is None  # all alike: nothing to tell apart
    assert (score_colours(np.array([0.8]), None) == PICK_COLOUR).all()


def test_frame_colours_circles_by_score():
    prepared = PreparedImage(np.full((100, 200), 128, np.uint8), 1, (100, 200), 1.0)
    view = View((100, 200), 200, 100, (100, 50))
    xy = np.array([[50.0, 50.0], [150.0, 50.0]])
    overlay = Overlay(xy, radius=10, scores=np.array([0.2, 0.9]), score_span=(0.2, 0.9))
    frame = np.asarray(render(prepared, view, overlay))
    assert tuple(frame[50, 60]) == LOW_SCORE_COLOUR  # right edge of the doubtful one
    assert tuple(frame[50, 160]) == PICK_COLOUR


# -- overview: dots and minimap --------------------------------------------------------------
def _carpet(count: int = 700, side: int = 4096, diameter: float = 110.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(diameter, side - diameter, size=(count, 2))


def test_700_picks_at_x1_become_dots_and_circles_again_when_zoomed():
    xy = _carpet()
    whole = View((4096, 4096), 160, 114, (2048, 2048))
    assert crowded(whole, xy, 55.0) and pick_style("auto", whole, xy, 55.0) == "dots"
    zoomed = View((4096, 4096), 160, 114, (2048, 2048), zoom=3)
    assert not crowded(zoomed, xy, 55.0) and pick_style("auto", zoomed, xy, 55.0) == "circles"
    assert pick_style("circles", whole, xy, 55.0) == "circles"
    assert pick_style("dots", zoomed, xy, 55.0) == "dots"
    # on a graphics terminal the same ×1 frame has pixels enough for circles
    assert not crowded(View((4096, 4096), 2400, 1350, (2048, 2048)), xy[:100], 55.0)


def test_dots_mark_centres_without_rings():
    prepared = PreparedImage(np.full((100, 200), 128, np.uint8), 1, (100, 200), 1.0)
    view = View((100, 200), 200, 100, (100, 50))
    overlay = Overlay(np.array([[50.0, 50.0]]), radius=10, style="dots")
    frame = np.asarray(render(prepared, view, overlay))
    assert tuple(frame[50, 50]) == PICK_COLOUR  # the centre
    assert (frame[50, 60] == 128).all()  # no circle


def test_minimap_shows_where_the_view_is_and_keeps_out_of_the_cursors_way():
    shape = (1000, 1000)
    whole = View(shape, 200, 100, (500, 500))
    assert minimap_corner(whole, (500.0, 500.0)) is None  # all in view: no minimap
    view = View(shape, 200, 100, (300, 300), zoom=2).clamped()
    assert minimap_corner(view, view.centre) == "bottom-right"
    left, top, right, bottom = minimap_box(view, "bottom-right")
    under = view.to_micrograph((left + right) / 2, (top + bottom) / 2)
    assert minimap_corner(view, under) == "top-left"  # the cursor is under it: moves away
    last = View(shape, 200, 100, (1e9, 1e9), zoom=2).clamped()  # the bottom-right corner
    assert minimap_corner(last, last.centre) == "top-left"
    prepared = PreparedImage(np.full((1000, 1000), 128, np.uint8), 1, shape, 1.0)
    frame = np.asarray(render(prepared, view, Overlay(np.zeros((0, 2)), minimap="bottom-right")))
    box = frame[top : bottom + 1, left : right + 1]
    assert (box == (255, 220, 0)).all(axis=2).any()  # the view's outline, in yellow


# -- the tile walk ---------------------------------------------------------------------------
def test_tile_walk_reads_row_by_row_and_covers_everything_the_minimap_leaves():
    shape = (3000, 4000)
    diameter = 120.0
    view = View(shape, 160, 114, (2000, 1500), zoom=2).clamped()
    tiles = tile_centres(view, diameter, minimap=True)
    assert len(tiles) > 4
    ys = [y for _, y in tiles]
    assert ys == sorted(ys)  # rows top to bottom
    first_row = [x for x, y in tiles if y == ys[0]]
    assert first_row == sorted(first_row) and len(first_row) < len(tiles)  # left to right
    span_x, _ = view.extent
    assert first_row[1] - first_row[0] <= span_x - diameter  # overlapping by a diameter
    seen = np.zeros((shape[0] // 10, shape[1] // 10), bool)  # 10 px grid
    gy, gx = np.mgrid[0 : shape[0] : 10, 0 : shape[1] : 10] + 5.0
    for centre in tiles:
        tile = View(shape, view.width, view.height, centre, view.zoom).clamped()
        assert tile.centre == centre  # no tile sticks out of the micrograph
        dx, dy = tile.to_display(gx, gy)
        inside = (dx >= 0) & (dx < tile.width) & (dy >= 0) & (dy < tile.height)
        left, top, right, bottom = minimap_box(tile, minimap_corner(tile, centre) or "")
        under = (dx >= left) & (dx <= right + 1) & (dy >= top) & (dy <= bottom + 1)
        seen |= inside & ~under
    assert seen.all()


def test_one_tile_when_the_whole_micrograph_is_in_view():
    assert tile_centres(View((1000, 1000), 200, 100, (500, 500)), 50.0) == [(500.0, 500.0)]


# -- low-pass and contrast -------------------------------------------------------------------
def test_display_settings_step_and_stop_at_the_ends():
    settings = DisplaySettings()
    assert settings.describe() == "low-pass 20 Å · clip 0.5%"
    assert settings.step_lowpass(1).lowpass == 40.0
    assert settings.step_lowpass(1).step_lowpass(1).lowpass == 40.0
    none = settings.step_lowpass(-1).step_lowpass(-1).step_lowpass(-1)
    assert none.lowpass is None and none.describe().startswith("no low-pass")
    assert settings.step_contrast(1).clip == 2.0 and settings.step_contrast(-5).clip == 0.1


def _micrograph(seed: int = 0) -> Micrograph:
    rng = np.random.default_rng(seed)
    return Micrograph(Path(f"m{seed}.mrc"), rng.normal(size=(256, 256)).astype(np.float32), 2.0)


def test_restyle_changes_low_pass_and_contrast_without_the_file():
    prepared = prepare(_micrograph())
    assert prepared.settings == DisplaySettings() and prepared.source is not None
    sharp = restyle(prepared, DisplaySettings(lowpass=None))
    blurred = restyle(prepared, DisplaySettings(lowpass=40.0))
    roughness = [np.abs(np.diff(p.pixels.astype(float), axis=1)).mean() for p in (sharp, blurred)]
    assert roughness[0] > 2 * roughness[1]  # a stronger low-pass: a smoother image
    clipped = restyle(prepared, DisplaySettings(clip=5.0))
    saturated = [((p.pixels == 0) | (p.pixels == 255)).mean() for p in (prepared, clipped)]
    assert saturated[1] > 5 * saturated[0]  # more contrast: more pixels black or white
    assert clipped.source is prepared.source  # the binned image is shared, not copied


def test_cache_restyles_the_held_micrographs_without_reading_them_again(tmp_path: Path):
    paths = [tmp_path / f"m{i}.mrc" for i in range(3)]
    reads: list[Path] = []
    lock = threading.Lock()

    def load(path: Path, pixel_size: float | None) -> Loaded:
        with lock:
            reads.append(path)
        return Loaded(path, prepare(_micrograph(paths.index(path))))

    cache = MicrographCache(paths, load=load)
    cache.keep([0, 1])
    assert cache.get(0).image.settings == DisplaySettings()  # type: ignore[union-attr]
    strong = DisplaySettings(lowpass=40.0, clip=2.0)
    cache.set_settings(strong)
    assert cache.get(0).image.settings == strong  # type: ignore[union-attr]
    assert cache.get(1).image.settings == strong  # type: ignore[union-attr]
    assert cache.get(2).image.settings == strong  # type: ignore[union-attr]  # asked later
    assert sorted(reads) == paths  # each read once
    cache.close()


def test_colour_ramp_is_steady_as_the_display_threshold_hides_picks():
    # the span is the file's: hiding the low ones does not repaint the others
    scores = np.array([0.3, 0.6, 0.9])
    span = score_range(scores)
    shown = scores[scores >= 0.5]
    assert math.isclose(span[0], 0.3)  # type: ignore[index]
    assert (score_colours(shown, span) == score_colours(scores, span)[1:]).all()


def test_cache_restyles_the_shown_micrograph_first(tmp_path: Path, monkeypatch):
    import boxnet_tui.micrograph_cache as micrograph_cache

    paths = [tmp_path / f"m{i}.mrc" for i in range(3)]
    cache = MicrographCache(
        paths, load=lambda path, _: Loaded(path, prepare(_micrograph(paths.index(path))))
    )
    cache.keep([0, 1, 2])
    for index in range(3):
        cache.get(index)
    order: list[int] = []
    sources = {id(cache.get(i).image.source): i for i in range(3)}  # type: ignore[union-attr]
    monkeypatch.setattr(
        micrograph_cache,
        "restyle",
        lambda prepared, settings: (
            order.append(sources[id(prepared.source)]) or restyle(prepared, settings)
        ),
    )
    cache.set_settings(DisplaySettings(lowpass=40.0), first=2)
    for index in range(3):
        cache.get(index)
    assert order[0] == 2 and sorted(order) == [0, 1, 2]
    cache.close()
