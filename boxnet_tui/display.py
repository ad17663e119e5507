"""What the viewer shows: a micrograph prepared for the eye, the view onto it, and the frame.

A micrograph is prepared once (binned to at most ``PREPARED_SIDE`` px, low-passed, stretched
to uint8) when it is loaded or prefetched. Each frame then crops the view region, resizes it
to the display and draws the mask tint and pick circles: a few milliseconds, with no FFT.
The cursor is not drawn here: the viewer overlays it, so moving it costs no new frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from boxnet_tui.imaging import display_image
from boxnet_tui.io.micrographs import Micrograph

PREPARED_SIDE = 2048  # enough detail for zoom ×4 on a wide terminal, 4 MB at most
LOWPASS_ANGSTROM = 20.0
MAX_ZOOM = 5  # 2**5 = 32× over "fit"

PICK_COLOUR = (64, 255, 96)
GRABBED_COLOUR = (255, 220, 0)
COMPARE_COLOUR = (255, 96, 255)
MASK_COLOUR = np.array([255, 40, 40], dtype=np.float32)
MASK_ALPHA = 0.35


@dataclass
class PreparedImage:
    """A micrograph for the eye: ``pixels`` (uint8) is the micrograph binned by ``factor``."""

    pixels: np.ndarray
    factor: int
    shape: tuple[int, int]  # the micrograph's (rows, columns)
    pixel_size: float


def prepare(micrograph: Micrograph) -> PreparedImage:
    pixels, factor = display_image(
        micrograph.data, micrograph.pixel_size, PREPARED_SIDE, lowpass_angstrom=LOWPASS_ANGSTROM
    )
    return PreparedImage(pixels, factor, micrograph.data.shape, micrograph.pixel_size)  # type: ignore[arg-type]


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


@dataclass
class Overlay:
    """What is drawn over the image: picks (display-visible ones), the mask, a second set."""

    xy: np.ndarray  # (N, 2) micrograph px
    radius: float = 0.0  # micrograph px
    grabbed: int | None = None
    mask: np.ndarray | None = None  # bool at 8 Å/px, covering the whole micrograph
    compare_xy: np.ndarray | None = None


def render(prepared: PreparedImage, view: View, overlay: Overlay | None = None) -> Image.Image:
    """The RGB frame of ``view``: micrograph, mask tint, pick circles."""
    grey = _crop_resized(prepared, view)
    if overlay is not None and overlay.mask is not None and overlay.mask.any():
        frame = _tint(np.asarray(grey), overlay.mask, view, prepared.shape)
    else:
        frame = grey.convert("RGB")
    if overlay is not None:
        _draw_picks(frame, view, overlay)
    return frame


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
    width = 1 if r < 12 else 2

    def circles(xy: np.ndarray, colour: tuple[int, int, int], skip: int | None = None) -> None:
        if xy is None or not len(xy):
            return
        dx, dy = view.to_display(xy[:, 0], xy[:, 1])
        shown = (dx > -r) & (dx < view.width + r) & (dy > -r) & (dy < view.height + r)
        for i in np.flatnonzero(shown):
            if i == skip:
                continue
            draw.ellipse((dx[i] - r, dy[i] - r, dx[i] + r, dy[i] + r), outline=colour, width=width)

    circles(overlay.compare_xy, COMPARE_COLOUR)
    circles(overlay.xy, PICK_COLOUR, skip=overlay.grabbed)
    if overlay.grabbed is not None and overlay.grabbed < len(overlay.xy):
        gx, gy = view.to_display(*overlay.xy[overlay.grabbed])
        draw.ellipse((gx - r, gy - r, gx + r, gy + r), outline=GRABBED_COLOUR, width=width + 1)
