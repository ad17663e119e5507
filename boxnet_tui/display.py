"""What the viewer shows: a micrograph prepared for the eye, the view onto it, and the frame.

A micrograph is prepared once (binned to at most ``PREPARED_SIDE`` px, low-passed, stretched
to uint8) when it is loaded or prefetched; a new low-pass or contrast (``DisplaySettings``)
restyles the binned image kept beside it, in the same background thread. Each frame then crops
the view region, resizes it to the display and draws the mask tint, the picks (circles
coloured by score, or centre dots where circles would be a carpet) and a minimap: a few
milliseconds, with no FFT. The cursor and the pick it points at are not drawn here: the viewer
overlays them, so moving the cursor costs no new frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from boxnet_tui.imaging import bin_image, contrast_stretch, lowpass_filter, normalise
from boxnet_tui.io.micrographs import Micrograph

PREPARED_SIDE = 2048  # enough detail for zoom ×4 on a wide terminal, 4 MB at most
PREVIEW_SIDE = 256  # the minimap's source, made beside the prepared image (off the UI thread)
LOWPASS_ANGSTROM = 20.0
MAX_ZOOM = 5  # 2**5 = 32× over "fit"
LOWPASS_STEPS: tuple[float | None, ...] = (None, 10.0, 20.0, 40.0)  # Å, weakest first
CLIP_STEPS = (0.1, 0.5, 2.0, 5.0)  # % of pixels clipped to black and to white: more contrast
CLIP_PERCENT = 0.5

PICK_COLOUR = (64, 255, 96)  # picks without a score, and the top of the score ramp
LOW_SCORE_COLOUR = (255, 120, 0)  # the bottom of the score ramp: the doubtful ones
GRABBED_COLOUR = (255, 220, 0)
TARGET_COLOUR = (0, 230, 255)  # the pick x and m act on
COMPARE_COLOUR = (255, 96, 255)
MINIMAP_VIEW_COLOUR = (255, 220, 0)
MINIMAP_BORDER_COLOUR = (160, 160, 160)
MASK_COLOUR = np.array([255, 40, 40], dtype=np.float32)
MASK_ALPHA = 0.35

# Overview: circles whose radius is under MIN_CIRCLE_PX display pixels, or whose outlines
# would cover more than MAX_INK of the view, become centre dots (700 circles at ×1 are a carpet)
MIN_CIRCLE_PX = 3.0
MAX_INK = 0.35
OVERVIEW_MODES = ("auto", "dots", "circles")
MINIMAP_FRACTION = 0.16  # the minimap's longer side, of the view's shorter side
CORNERS = ("bottom-right", "top-left")


@dataclass(frozen=True)
class DisplaySettings:
    """How a micrograph is prepared for the eye: Gaussian low-pass (Å, None: none) and the
    percent of pixels clipped at each end of the grey scale (more clipped: more contrast)."""

    lowpass: float | None = LOWPASS_ANGSTROM
    clip: float = CLIP_PERCENT

    def step_lowpass(self, step: int) -> DisplaySettings:
        """One step along ``LOWPASS_STEPS`` (+1: stronger), kept at the ends."""
        return replace(self, lowpass=_step(LOWPASS_STEPS, self.lowpass, step))

    def step_contrast(self, step: int) -> DisplaySettings:
        """One step along ``CLIP_STEPS`` (+1: more contrast), kept at the ends."""
        return replace(self, clip=_step(CLIP_STEPS, self.clip, step))  # type: ignore[arg-type]

    def describe(self) -> str:
        """``low-pass 20 Å · clip 0.5%`` for the status line."""
        lowpass = f"low-pass {self.lowpass:g} Å" if self.lowpass else "no low-pass"
        return f"{lowpass} · clip {self.clip:g}%"


def _step(steps: tuple, value: object, step: int) -> object:
    at = steps.index(value) if value in steps else 0
    return steps[min(len(steps) - 1, max(0, at + step))]


@dataclass(eq=False)
class PreparedImage:
    """A micrograph for the eye: ``pixels`` (uint8) is the micrograph binned by ``factor``.

    ``source`` is the binned micrograph before low-pass and stretch (float16, normalised), kept
    so that new ``settings`` need no new read; None where only ``pixels`` are known.
    """

    pixels: np.ndarray
    factor: int
    shape: tuple[int, int]  # the micrograph's (rows, columns)
    pixel_size: float
    source: np.ndarray | None = None
    settings: DisplaySettings = field(default_factory=DisplaySettings)
    preview: Image.Image | None = None  # at most PREVIEW_SIDE px, for the minimap
    thumbnails: dict = field(default_factory=dict, repr=False)  # minimap images by size


def prepare(micrograph: Micrograph, settings: DisplaySettings | None = None) -> PreparedImage:
    """Bin ``micrograph`` to at most ``PREPARED_SIDE`` px and style it by ``settings``."""
    data = micrograph.data
    factor = max(1, math.ceil(max(data.shape) / PREPARED_SIDE))
    binned = normalise(np.nan_to_num(bin_image(data, factor)))
    source = np.clip(binned, -6e4, 6e4).astype(np.float16)  # half the memory; plenty for the eye
    shape: tuple[int, int] = (data.shape[0], data.shape[1])
    unstyled = PreparedImage(
        np.zeros((0, 0), np.uint8), factor, shape, micrograph.pixel_size, source
    )
    return restyle(unstyled, settings or DisplaySettings())


def restyle(prepared: PreparedImage, settings: DisplaySettings) -> PreparedImage:
    """``prepared`` with new ``settings``: low-pass and stretch of its ``source`` (an FFT)."""
    if prepared.source is None:
        raise ValueError("this prepared image keeps no source to restyle")
    image = prepared.source.astype(np.float32)
    if settings.lowpass:
        # scipy's FFT: 2-3× faster than numpy's on 2048² float32 (measured), and the FFT is
        # most of a micrograph's preparation, so of the start-up's first frame
        import scipy.fft

        spectrum = scipy.fft.rfft2(image)
        spectrum *= _lowpass(image.shape, prepared.pixel_size * prepared.factor, settings.lowpass)
        image = scipy.fft.irfft2(spectrum, s=image.shape).astype(np.float32, copy=False)
    pixels = contrast_stretch(image, settings.clip, 100.0 - settings.clip)
    return PreparedImage(
        pixels,
        prepared.factor,
        prepared.shape,
        prepared.pixel_size,
        prepared.source,
        settings,
        _preview(pixels),
    )


@functools.lru_cache(maxsize=4)
def _lowpass(shape: tuple[int, int], pixel_size: float, cutoff: float) -> np.ndarray:
    """The filter, kept: the micrographs of a folder mostly share shape and pixel size."""
    return lowpass_filter(shape, pixel_size, cutoff)


def _preview(pixels: np.ndarray) -> Image.Image:
    preview = Image.fromarray(pixels, mode="L")
    preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BOX)
    return ImageOps.autocontrast(preview, cutoff=1)  # averaging flattens it: stretch it again


@dataclass
class View:
    """Which part of the micrograph fills a display of ``width`` × ``height`` pixels.

    ``centre`` is in micrograph pixels; ``zoom`` 0 fits the whole micrograph, each step
    doubles the magnification.
    """

    shape: tuple[int, int]
    width: int
    height: int
    centre: tuple[float, float]
    zoom: int = 0

    @property
    def scale(self) -> float:
        """Micrograph pixels per display pixel."""
        rows, cols = self.shape
        fit = max(cols / max(1, self.width), rows / max(1, self.height))
        return fit / 2**self.zoom

    @property
    def origin(self) -> tuple[float, float]:
        """Micrograph (x, y) of the display's top-left corner."""
        s = self.scale
        return self.centre[0] - self.width * s / 2, self.centre[1] - self.height * s / 2

    def to_display(self, x: np.ndarray | float, y: np.ndarray | float) -> tuple:
        ox, oy = self.origin
        s = self.scale
        return (np.asarray(x) - ox) / s, (np.asarray(y) - oy) / s

    def to_micrograph(self, dx: float, dy: float) -> tuple[float, float]:
        ox, oy = self.origin
        s = self.scale
        return ox + dx * s, oy + dy * s

    def clamped(self) -> View:
        """The same view with its centre kept so the micrograph fills as much as it can."""
        rows, cols = self.shape
        s = self.scale
        half_w, half_h = self.width * s / 2, self.height * s / 2
        cx = cols / 2 if half_w * 2 >= cols else min(max(self.centre[0], half_w), cols - half_w)
        cy = rows / 2 if half_h * 2 >= rows else min(max(self.centre[1], half_h), rows - half_h)
        return View(self.shape, self.width, self.height, (cx, cy), self.zoom)

    def follow(self, x: float, y: float, margin: float = 0.1) -> View:
        """A view showing (x, y): unchanged if it already does (with a margin), else recentred."""
        dx, dy = self.to_display(x, y)
        if self.width * margin <= dx <= self.width * (
            1 - margin
        ) and self.height * margin <= dy <= self.height * (1 - margin):
            return self
        moved = View(self.shape, self.width, self.height, (x, y), self.zoom).clamped()
        # at an edge the clamped view is this one: same object, so no new frame is made
        return self if moved == self else moved

    @property
    def extent(self) -> tuple[float, float]:
        """Micrograph pixels (x, y) across the display."""
        return self.width * self.scale, self.height * self.scale

    def shows_all(self) -> bool:
        """Whether the whole micrograph is in view."""
        rows, cols = self.shape
        (x0, y0), (w, h) = self.origin, self.extent
        return x0 <= 0.5 and y0 <= 0.5 and x0 + w >= cols - 0.5 and y0 + h >= rows - 0.5


# -- overview: dots, minimap, tile walk --------------------------------------------------------
def crowded(view: View, xy: np.ndarray | None, radius: float) -> bool:
    """Whether circles of ``radius`` (micrograph px) at ``xy`` would be a carpet in ``view``:
    too small to read, or their outlines covering more than ``MAX_INK`` of it."""
    r = radius / view.scale
    if r < MIN_CIRCLE_PX:
        return True
    if xy is None or not len(xy):
        return False
    dx, dy = view.to_display(xy[:, 0], xy[:, 1])
    inside = int(((dx > -r) & (dx < view.width + r) & (dy > -r) & (dy < view.height + r)).sum())
    ink = inside * 2 * math.pi * r * _line_width(r) / max(1, view.width * view.height)
    return ink > MAX_INK


def pick_style(mode: str, view: View, xy: np.ndarray | None, radius: float) -> str:
    """``dots`` or ``circles``: what overview ``mode`` (one of ``OVERVIEW_MODES``) draws."""
    if mode == "auto":
        return "dots" if crowded(view, xy, radius) else "circles"
    return mode


def minimap_size(view: View) -> tuple[int, int]:
    """The minimap's (width, height) in display pixels, in the micrograph's proportions."""
    rows, cols = view.shape
    side = max(8, round(min(view.width, view.height) * MINIMAP_FRACTION))
    if cols >= rows:
        return side, max(4, round(side * rows / cols))
    return max(4, round(side * cols / rows)), side


def minimap_box(view: View, corner: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) display pixels of the minimap in ``corner``, border included."""
    w, h = minimap_size(view)
    if corner == "top-left":
        return 1, 1, w + 2, h + 2
    return view.width - w - 3, view.height - h - 3, view.width - 2, view.height - 2


def minimap_corner(view: View, cursor: tuple[float, float]) -> str | None:
    """Where the minimap goes (None: not shown, the whole micrograph is in view).

    Bottom-right, where in a walk the next tile (or the one below) shows what it hides;
    top-left at the micrograph's bottom-right corner (no tile after it) and where the cursor
    is under it.
    """
    if view.shows_all():
        return None
    rows, cols = view.shape
    (x0, y0), (w, h) = view.origin, view.extent
    corner = "top-left" if x0 + w >= cols - 0.5 and y0 + h >= rows - 0.5 else "bottom-right"
    dx, dy = view.to_display(*cursor)
    left, top, right, bottom = minimap_box(view, corner)
    if left - 2 <= dx <= right + 2 and top - 2 <= dy <= bottom + 2:
        corner = CORNERS[1 - CORNERS.index(corner)]
    return corner


def tile_centres(
    view: View, overlap: float = 0.0, minimap: bool = False
) -> list[tuple[float, float]]:
    """Centres of the views that walk the micrograph at ``view``'s zoom, row by row.

    Neighbouring tiles overlap by ``overlap`` micrograph px (a particle diameter: one cut at
    a tile's edge is whole in the next) and, with the minimap shown, by its size too, so that
    what it hides in one tile another shows.
    """
    rows, cols = view.shape
    span_x, span_y = view.extent
    over_x = over_y = overlap
    if minimap:
        w, h = minimap_size(view)
        over_x, over_y = max(overlap, (w + 4) * view.scale), max(overlap, (h + 4) * view.scale)

    def axis(length: float, span: float, over: float) -> list[float]:
        if span >= length:
            return [length / 2]
        step = span - over if span - over > span / 4 else span / 4
        count = max(2, math.ceil((length - span) / step) + 1)
        first, last = span / 2, length - span / 2
        return [first + i * (last - first) / (count - 1) for i in range(count)]

    return [(x, y) for y in axis(rows, span_y, over_y) for x in axis(cols, span_x, over_x)]


# -- what is drawn over the image ---------------------------------------------------------------
def score_range(scores: np.ndarray) -> tuple[float, float] | None:
    """The (lowest, highest) score of a pick set; None without scores (or all alike)."""
    finite = scores[np.isfinite(scores)] if len(scores) else scores
    if not len(finite):
        return None
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high - low > 1e-6 else None


def score_colours(scores: np.ndarray, span: tuple[float, float] | None) -> np.ndarray:
    """(N, 3) uint8 colours: ``LOW_SCORE_COLOUR`` at the lowest score of ``span`` to
    ``PICK_COLOUR`` at its highest; picks without a score (or no span) get ``PICK_COLOUR``."""
    colours = np.tile(np.array(PICK_COLOUR, np.float32), (len(scores), 1))
    if span is None or not len(scores):
        return colours.astype(np.uint8)
    low, high = span
    scored = np.isfinite(scores)
    t = np.clip((scores[scored] - low) / (high - low), 0.0, 1.0)[:, None]
    ramp_low, ramp_high = np.array(LOW_SCORE_COLOUR, np.float32), np.array(PICK_COLOUR, np.float32)
    colours[scored] = ramp_low + t * (ramp_high - ramp_low)
    return np.round(colours).astype(np.uint8)


@dataclass
class Overlay:
    """What is drawn over the image: picks (display-visible ones), the mask, a second set.

    ``scores`` (aligned with ``xy``) colour the picks along ``score_span``; ``style`` is
    ``circles`` or ``dots``; ``minimap`` is the corner of the minimap (None: none).
    """

    xy: np.ndarray  # (N, 2) micrograph px
    radius: float = 0.0  # micrograph px
    grabbed: int | None = None
    mask: np.ndarray | None = None  # bool at 8 Å/px, covering the whole micrograph
    compare_xy: np.ndarray | None = None
    scores: np.ndarray | None = None
    score_span: tuple[float, float] | None = None
    style: str = "circles"
    minimap: str | None = None


# the last frame's base (micrograph crop resized, mask tint) with what it was made from: an
# edit's frame is the same view, so only the marks are drawn again (the resize is most of it)
_last_base: tuple[PreparedImage, View, np.ndarray | None, Image.Image] | None = None


def render(prepared: PreparedImage, view: View, overlay: Overlay | None = None) -> Image.Image:
    """The RGB frame of ``view``: micrograph, mask tint, picks, minimap."""
    frame = _base(prepared, view, overlay.mask if overlay is not None else None).copy()
    if overlay is not None:
        _draw_picks(frame, view, overlay)
        if overlay.minimap is not None:
            _draw_minimap(frame, prepared, view, overlay.minimap)
    return frame


def _base(prepared: PreparedImage, view: View, mask: np.ndarray | None) -> Image.Image:
    """The view of ``prepared`` tinted by ``mask``; the last one again when nothing changed.

    Prepared images and masks are never changed in place (new settings or a painted mask make
    new ones), so the same objects and an equal view make the same base.
    """
    global _last_base
    last = _last_base
    if last is not None and last[0] is prepared and last[2] is mask and last[1] == view:
        return last[3]
    grey = _crop_resized(prepared, view)
    if mask is not None and mask.any():
        base = _tint(np.asarray(grey), mask, view, prepared.shape)
    else:
        base = grey.convert("RGB")
    _last_base = (prepared, replace(view), mask, base)
    return base


def draw_target(frame: Image.Image, x: float, y: float, radius: float) -> None:
    """Ring the pick at display (x, y) whose circle has ``radius`` display px."""
    r = max(radius + 1.5, MIN_CIRCLE_PX)
    width = 1 if r < 12 else 2
    draw = ImageDraw.Draw(frame)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=TARGET_COLOUR, width=width)


def _line_width(r: float) -> int:
    return 1 if r < 12 else 2


def _crop_resized(prepared: PreparedImage, view: View) -> Image.Image:
    """The view region of the prepared image at display size; black outside the micrograph."""
    s = view.scale / prepared.factor  # prepared pixels per display pixel
    ox, oy = view.origin[0] / prepared.factor, view.origin[1] / prepared.factor
    rows, cols = prepared.pixels.shape
    # the part of the view that the micrograph covers, in prepared and in display pixels
    x0, y0 = max(0.0, ox), max(0.0, oy)
    x1, y1 = min(float(cols), ox + view.width * s), min(float(rows), oy + view.height * s)
    canvas = Image.new("L", (view.width, view.height), 0)
    if x1 <= x0 or y1 <= y0:
        return canvas
    left, top = round((x0 - ox) / s), round((y0 - oy) / s)
    width = max(1, min(view.width - left, round((x1 - x0) / s)))
    height = max(1, min(view.height - top, round((y1 - y0) / s)))
    source = Image.fromarray(prepared.pixels, mode="L")
    # BOX averages when shrinking (no aliasing of the noise), BILINEAR when enlarging
    resample = Image.Resampling.BOX if s > 1 else Image.Resampling.BILINEAR
    part = source.resize((width, height), resample, box=(x0, y0, x1, y1))
    canvas.paste(part, (left, top))
    return canvas


def _tint(grey: np.ndarray, mask: np.ndarray, view: View, shape: tuple[int, int]) -> Image.Image:
    rows, cols = mask.shape
    ys = (np.arange(view.height) + 0.5) * view.scale + view.origin[1]
    xs = (np.arange(view.width) + 0.5) * view.scale + view.origin[0]
    my = np.clip((ys * rows / shape[0]).astype(int), 0, rows - 1)
    mx = np.clip((xs * cols / shape[1]).astype(int), 0, cols - 1)
    inside = ((ys >= 0) & (ys < shape[0]))[:, None] & ((xs >= 0) & (xs < shape[1]))[None, :]
    junk = mask[my[:, None], mx[None, :]] & inside
    rgb = np.repeat(grey[:, :, None].astype(np.float32), 3, axis=2)
    rgb[junk] = rgb[junk] * (1 - MASK_ALPHA) + MASK_COLOUR * MASK_ALPHA
    return Image.fromarray(rgb.astype(np.uint8), mode="RGB")


def _draw_picks(frame: Image.Image, view: View, overlay: Overlay) -> None:
    draw = ImageDraw.Draw(frame)
    r = max(1.0, overlay.radius / view.scale)
    width = _line_width(r)
    side = max(1, round(r / 3))  # of a dot

    def marks(xy: np.ndarray | None, colours: np.ndarray | tuple, skip: int | None = None) -> None:
        if xy is None or not len(xy):
            return
        dx, dy = view.to_display(xy[:, 0], xy[:, 1])
        shown = (dx > -r) & (dx < view.width + r) & (dy > -r) & (dy < view.height + r)
        for i in np.flatnonzero(shown):
            if i == skip:
                continue
            colour = colours if isinstance(colours, tuple) else tuple(colours[i].tolist())
            x, y = float(dx[i]), float(dy[i])
            if overlay.style != "dots":
                draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=width)
            elif side <= 2:
                x0, y0 = round(x - (side - 1) / 2), round(y - (side - 1) / 2)
                draw.rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=colour)
            else:
                h = side / 2
                draw.ellipse((x - h, y - h, x + h, y + h), fill=colour)

    marks(overlay.compare_xy, COMPARE_COLOUR)
    if overlay.scores is not None and overlay.score_span is not None:
        colours: np.ndarray | tuple = score_colours(overlay.scores, overlay.score_span)
    else:
        colours = PICK_COLOUR
    marks(overlay.xy, colours, skip=overlay.grabbed)
    if overlay.grabbed is not None and overlay.grabbed < len(overlay.xy):
        gx, gy = view.to_display(*overlay.xy[overlay.grabbed])
        draw.ellipse((gx - r, gy - r, gx + r, gy + r), outline=GRABBED_COLOUR, width=width + 1)


def _draw_minimap(frame: Image.Image, prepared: PreparedImage, view: View, corner: str) -> None:
    """The whole micrograph, small, with the part in view outlined."""
    w, h = minimap_size(view)
    left, top, right, bottom = minimap_box(view, corner)
    thumbnail = prepared.thumbnails.get((w, h))
    if thumbnail is None:
        if prepared.preview is None:
            prepared.preview = _preview(prepared.pixels)
        thumbnail = prepared.preview.resize((w, h), Image.Resampling.BOX).convert("RGB")
        prepared.thumbnails[(w, h)] = thumbnail
    frame.paste(thumbnail, (left + 1, top + 1))
    draw = ImageDraw.Draw(frame)
    draw.rectangle((left, top, right, bottom), outline=MINIMAP_BORDER_COLOUR)
    rows, cols = view.shape
    (x0, y0), (span_x, span_y) = view.origin, view.extent
    fx, fy = w / cols, h / rows
    box = (
        left + 1 + max(0.0, x0) * fx,
        top + 1 + max(0.0, y0) * fy,
        left + 1 + min(float(cols), x0 + span_x) * fx - 1,
        top + 1 + min(float(rows), y0 + span_y) * fy - 1,
    )
    draw.rectangle(
        (
            round(box[0]),
            round(box[1]),
            max(round(box[0]), round(box[2])),
            max(round(box[1]), round(box[3])),
        ),
        outline=MINIMAP_VIEW_COLOUR,
    )
