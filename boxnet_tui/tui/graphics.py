"""Which textual-image widget draws the micrograph: Kitty graphics, Sixel or half-block cells.

textual-image picks the best protocol the terminal answers for; where it would fall back to
its coarse unicode blocks (no terminal: tests, pipes) we use half-block cells instead, which
every terminal with colour shows. Imported before the app starts, because textual-image asks
the terminal its cell size at import and cannot once Textual owns the terminal.
"""

from __future__ import annotations

from textual.widget import Widget
from textual_image.renderable import HalfcellImage as HalfcellRenderable
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable import UnicodeImage as UnicodeRenderable
from textual_image.widget import HalfcellImage, SixelImage, TGPImage
from textual_image.widget import Image as AutoImage

from boxnet_tui.tui.halfcell import FastHalfcellImage

GRAPHICS = ("auto", "halfcell", "sixel", "kitty")


def image_widget_class(graphics: str = "auto") -> type[Widget]:
    """The image widget for ``graphics`` (one of ``GRAPHICS``)."""
    if graphics == "halfcell":
        return FastHalfcellImage
    if graphics == "sixel":
        return SixelImage
    if graphics == "kitty":
        return TGPImage
    if AutoRenderable in (UnicodeRenderable, HalfcellRenderable):
        return FastHalfcellImage
    return AutoImage


def is_halfcell(widget_class: type[Widget]) -> bool:
    return issubclass(widget_class, (HalfcellImage, FastHalfcellImage))


def draws_over_text(widget_class: type[Widget]) -> bool:
    """Sixel pixels are erased by text written over them: the cursor must be in the image."""
    return issubclass(widget_class, SixelImage)
