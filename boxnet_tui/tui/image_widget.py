"""A widget that shows one PIL image: the property every image frame shares."""

from __future__ import annotations

from PIL import Image as PILImage
from textual.widget import Widget


class ImageWidget(Widget):
    """``image`` is the picture shown; setting it calls :meth:`_image_changed`, where each
    kind of frame decides what a new picture means for the terminal."""

    _image: PILImage.Image | None = None

    @property
    def image(self) -> PILImage.Image | None:
        return self._image

    @image.setter
    def image(self, value: PILImage.Image | None) -> None:
        self._image = value
        self._image_changed(value)

    def _image_changed(self, value: PILImage.Image | None) -> None:
        self.refresh()
