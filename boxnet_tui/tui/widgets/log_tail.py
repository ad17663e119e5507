"""The end of a log file, wrapped to the pane: its newest row is always the pane's last."""

from __future__ import annotations

from textual.app import RenderResult
from textual.content import Content
from textual.widget import Widget


def tail_rows(lines: list[str], width: int, height: int) -> list[Content]:
    """The last lines of ``lines`` wrapped at ``width`` cells (long words folded) that fit in
    ``height`` rows, whole lines only, but for a newest line taller than the pane (its end)."""
    if width <= 0 or height <= 0:
        return []
    rows: list[Content] = []
    for line in reversed(lines):
        wrapped = Content(line.rstrip()).wrap(width) or [Content("")]
        if rows and len(rows) + len(wrapped) > height:
            break
        rows[:0] = wrapped
    return rows[-height:]


class LogTail(Widget):
    """Shows the lines it is given, wrapped, keeping the last ones that fit.

    A plain text widget wraps too, but then the rows beyond its height are the newest and are
    cut: the pane stops following the log as soon as one line is longer than the pane.
    Wrapping at render time keeps it right after a resize.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[str] = []

    def set_lines(self, lines: list[str]) -> None:
        self.lines = lines
        self.refresh()

    def rows(self) -> list[Content]:
        """The rows as drawn."""
        size = self.content_size
        return tail_rows(self.lines, size.width, size.height)

    def render(self) -> RenderResult:
        return Content("\n").join(self.rows())
