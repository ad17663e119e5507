"""The micrograph list beside the viewer: name, picks shown, curated mark, mask; a name filter.

A folder may hold tens of thousands of micrographs, so the list is virtual: it keeps one
tuple of cells per micrograph and renders only the rows on screen (a DataTable builds an
object per row and measures every cell: ~1 s per filter key at 10,000). It looks as the
DataTable it replaces did (same component classes), and answers ``get_cell``,
``get_row_at`` and ``row_count`` as a DataTable does.
"""

from __future__ import annotations

import bisect
import contextlib

from rich.console import Console, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from boxnet_tui.curation import Entry, distinct_names
from boxnet_tui.io.micrographs import natural_key

# curated, picks, mask, name; the name is plain text unless styled (a red name): 10,000
# rows then hold 10,000 strings, not 10,000 Text objects (start-up and memory)
Row = tuple[Text, Text, Text, Text | str]
# (header, key, width; None: as wide as the longest name). The name last: long names are cut
# by the panel, never the counts.
COLUMNS = (
    ("✓", "curated", 1),
    ("picks", "picks", 5),
    ("mask", "mask", 4),
    ("micrograph", "name", None),
)
PADDING = 1  # cells each side of a cell, as DataTable's cell_padding
_CACHE_ROWS = 512  # rendered rows kept (a few screens)


class MicrographTable(ScrollView, can_focus=False):
    """The rows of ``shown`` entries, one line each, below a fixed header line.

    The viewer keeps the keys (the table never takes focus); a click chooses a row.
    """

    COMPONENT_CLASSES = {
        "datatable--header",
        "datatable--cursor",
        "datatable--even-row",
        "datatable--odd-row",
    }
    # DataTable's own rules for these classes, so that the list looks as it did
    DEFAULT_CSS = """
    MicrographTable {
        background: $surface;
        color: $foreground;
        &:dark > .datatable--even-row {
            background: $surface-darken-1 40%;
        }
        & > .datatable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .datatable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .datatable--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .datatable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class Clicked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[Row] = []  # by entry index
        self.shown: list[int] = []  # entry indices in display order
        self.cursor_row = -1  # the row (of ``shown``) of the chosen micrograph; -1: none
        self._widths = [width or len(label) for label, _, width in COLUMNS]
        self._cache: dict[tuple, Strip] = {}

    # -- what DataTable answered ------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self.shown)

    def get_row_at(self, row: int) -> list[Text]:
        return [_text(cell) for cell in self.rows[self.shown[row]]]

    def get_cell(self, row_key: str, column_key: str) -> Text:
        """The cell of entry ``row_key`` (its index, as text) in column ``column_key``."""
        keys = [key for _, key, _ in COLUMNS]
        return _text(self.rows[int(row_key)][keys.index(column_key)])

    # -- changing it -----------------------------------------------------------------------
    def set_rows(self, rows: list[Row]) -> None:
        """Every entry's cells (call ``set_shown`` next)."""
        self.rows = rows
        name_width = max((_cell_len(row[3]) for row in rows), default=0)
        self._widths[3] = max(len(COLUMNS[3][0]), name_width)

    def set_shown(self, shown: list[int], chosen: int | None, top: int | None = None) -> None:
        """Show the entries ``shown``, the cursor on ``chosen`` when it is among them; from
        row ``top`` (None: from the first, scrolled to the cursor)."""
        self.shown = shown
        self.cursor_row = -1
        if chosen is not None:
            with contextlib.suppress(ValueError):  # not among them: no cursor
                self.cursor_row = shown.index(chosen)
        self._cache.clear()
        width = sum(w + 2 * PADDING for w in self._widths)
        self.virtual_size = Size(width, len(shown) + 1)  # + the header line
        if top is None:
            self.scroll_to(y=0, animate=False, immediate=True)
            self._scroll_to_cursor()
        else:
            self.scroll_to(y=top, animate=False, immediate=True)
        self.refresh()

    def set_row(self, index: int, row: Row, line: int | None) -> None:
        """Entry ``index`` has cells ``row``; ``line`` is its row in ``shown``, if shown."""
        self.rows[index] = row
        if line is None:
            return
        for key in [key for key in self._cache if key[0] == index]:
            del self._cache[key]
        if self.scroll_offset.y <= line < self.scroll_offset.y + self.size.height:
            self.refresh_line(line + 1)

    def move_cursor(self, line: int) -> None:
        before = self.cursor_row
        self.cursor_row = line
        if before >= 0:
            self.refresh_line(before + 1)
        self.refresh_line(line + 1)
        self._scroll_to_cursor()

    def _has_cursor(self) -> bool:
        return 0 <= self.cursor_row < len(self.shown)

    def _scroll_to_cursor(self) -> None:
        if not self._has_cursor():
            return
        top, visible = self.scroll_offset.y, max(1, self.size.height - 1)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    # -- rendering -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()  # a theme change restyles every row

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            strip = self._line(None, -1, False, width)
        else:
            row = scroll_y + y - 1
            if row >= len(self.shown):
                return Strip.blank(width, base)
            strip = self._line(self.shown[row], row, row == self.cursor_row, width)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _line(self, index: int | None, row: int, cursor: bool, width: int) -> Strip:
        """The whole line of entry ``index`` at ``row`` (None, -1: the header)."""
        key = (index, row % 2, cursor, width)
        strip = self._cache.get(key)
        if strip is not None:
            return strip
        if index is None:
            cells: tuple[RenderableType, ...] = tuple(label for label, _, _ in COLUMNS)
            style = self.get_component_rich_style("datatable--header")
        else:
            cells = self.rows[index]
            stripe = "datatable--odd-row" if row % 2 else "datatable--even-row"
            style = self.get_component_rich_style(stripe)
        cursor_style = self.get_component_rich_style("datatable--cursor") if cursor else Style()
        # as DataTable: the cursor's colour over the cell's own, the cell's background kept
        post = Style.from_color(color=cursor_style.color) if cursor else Style.null()
        pre = style + cursor_style
        console = self.app.console
        segments: list[Segment] = []
        # each cell's own meta, as DataTable's: a click reads the row; the output is the same
        for column, (cell, cell_width) in enumerate(zip(cells, self._widths, strict=True)):
            meta = Style.from_meta({"row": row, "column": column})
            segments += _cell(console, cell, cell_width, pre + meta, post)
        table_width = sum(w + 2 * PADDING for w in self._widths)
        outside = Style.from_meta({"row": row, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, width - table_width), pre + outside))
        strip = Strip(segments).simplify()
        if len(self._cache) >= _CACHE_ROWS:
            self._cache.clear()
        self._cache[key] = strip
        return strip

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if isinstance(row, int) and 0 <= row < len(self.shown):
            event.stop()
            self.move_cursor(row)
            self.post_message(self.Clicked(self.shown[row]))


class MicrographList(Vertical):
    """Rows keyed by the entry's index in the session; only names matching the filter shown."""

    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class FilterDone(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.shown: list[int] = []  # entry indices in display order
        self._row_of: dict[int, int] = {}  # entry index -> its row, for a folder of thousands
        self._names: list[str] = []  # full names: the filter matches them
        self._lower: list[str] = []  # the same, lower case: a filter key runs no .lower()
        self._shown_names: list[str] = []  # the parts that tell them apart
        self._chosen: int | None = None  # the entry selected last (kept through filters)
        # entry indices in name order; None: the indices' own (the folder's listing is sorted;
        # micrographs that arrive later are appended to it, so then it is not)
        self._order: list[int] | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter names (/)", id="filter")
        yield MicrographTable(id="micrographs")

    @property
    def table(self) -> MicrographTable:
        return self.query_one(MicrographTable)

    @staticmethod
    def row(entry: Entry, curated: bool) -> Row:
        if entry.error:
            picks = _shared("✗", "bold red")
        elif entry.picks_error:
            picks = _shared("STAR!", "bold red")
        elif entry.picks is None:
            picks = _shared("–" if entry.described else "…", "dim")
        else:
            picks = _shared(str(entry.picks), "", "right")
        name = Text(entry.root, style="red") if entry.error else entry.root
        mask = _shared("■" if entry.has_mask else "", "red")
        return (_shared("✓" if curated else "", "bold green"), picks, mask, name)

    def set_entries(self, rows: list[Row], names: list[str]) -> None:
        self._names = names
        self._order = None  # in the order given (the folder's listing is sorted)
        self._lower = [name.lower() for name in names]
        self._shown_names = distinct_names(names)
        named = [self._named(index, row) for index, row in enumerate(rows)]
        self.shown = self._matching()
        self._row_of = {index: line for line, index in enumerate(self.shown)}
        table = self.table
        table.set_rows(named)
        table.set_shown(self.shown, self._chosen)

    def _named(self, index: int, row: Row) -> Row:
        """The row with its name cut to the part that tells it from the others."""
        name = row[3]
        if index < len(self._shown_names):
            short = self._shown_names[index]
        else:
            short = name if isinstance(name, str) else name.plain
        if isinstance(name, Text) and name.style:
            return (*row[:3], Text(short, style=name.style))
        return (*row[:3], short)

    def add_entries(self, rows: list[Row], names: list[str]) -> None:
        """Entries appended after those set (their indices follow), each shown where its name
        sorts; the chosen row and the rows in view stay where they are on screen."""
        if not names:
            return
        start = len(self._names)
        table = self.table
        anchor = table.shown[table.scroll_offset.y] if table.shown else None  # the top row
        self._names += names
        self._lower += [name.lower() for name in names]
        renamed = distinct_names(self._names)
        old, self._shown_names = self._shown_names, renamed
        named = list(table.rows)
        if renamed[:start] != old:  # a new name shortened the shared prefix: all change
            named = [self._named(index, row) for index, row in enumerate(named)]
        named += [self._named(start + k, row) for k, row in enumerate(rows)]
        table.set_rows(named)
        order = self._order if self._order is not None else list(range(start))
        for index in range(start, len(self._names)):
            bisect.insort(order, index, key=lambda i: natural_key(self._names[i]))
        self._order = order
        self._refill(anchor)

    def update_entry(self, index: int, row: Row) -> None:
        try:
            table = self.table
        except NoMatches:  # a describe's late word, the screen already gone
            return
        if not 0 <= index < len(table.rows):
            return
        row = self._named(index, row)
        if _look(table.rows[index]) != _look(row):  # a describe of 10,000 changes few
            table.set_row(index, row, self._row_of.get(index))

    def select(self, index: int) -> None:
        self._chosen = index
        if index in self._row_of:
            self.table.move_cursor(self._row_of[index])

    def _matching(self) -> list[int]:
        needle = self.query_one("#filter", Input).value.strip().lower()
        if self._order is not None:
            lower = self._lower
            return [i for i in self._order if needle in lower[i]]
        if not needle:
            return list(range(len(self._names)))
        return [i for i, name in enumerate(self._lower) if needle in name]

    def _refill(self, anchor: int | None = None) -> None:
        """Show the entries matching the filter; with ``anchor``, that entry's row stays at
        the top (else the list starts at the top, scrolled to the cursor)."""
        self.shown = self._matching()
        self._row_of = {index: line for line, index in enumerate(self.shown)}
        top = self._row_of.get(anchor) if anchor is not None else None
        self.table.set_shown(self.shown, self._chosen, top)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._refill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.FilterDone())

    def on_key(self, event: events.Key) -> None:
        # escape leaves the filter as enter does (keeping it), so the next key is a command
        if event.key == "escape" and self.query_one("#filter", Input).has_focus:
            event.stop()
            event.prevent_default()
            self.post_message(self.FilterDone())

    def on_micrograph_table_clicked(self, event: MicrographTable.Clicked) -> None:
        event.stop()
        self._chosen = event.index
        self.post_message(self.Chosen(event.index))


def _cell(console: Console, cell: str | Text, width: int, pre: Style, post: Style) -> list[Segment]:
    """One cell, padded and cut to ``width`` (+ padding), as DataTable draws it: ``pre`` under
    the cell's own styles, ``post`` over them. Built here, not by rich's Padding and Styled
    renderables: a screen of rows costs ~1 ms, not ~50."""
    text = Text(cell) if isinstance(cell, str) else cell
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width)
    space = width - text.cell_len
    left = space if text.justify == "right" else space // 2 if text.justify == "center" else 0
    segments = [Segment(" " * (PADDING + left), pre)]
    # Text.render leaves out the text's own style (its __rich_console__ adds it): add it here
    under = pre + console.get_style(text.style) if text.style else pre
    for segment in text.render(console):
        if not segment.text:  # an empty cell draws its padding only, as rich's Text does
            continue
        style = under + segment.style + post if segment.style else under + post
        segments.append(Segment(segment.text, style))
    segments.append(Segment(" " * (PADDING + space - left), pre))
    return segments


def _look(row: Row) -> tuple:
    """What a row shows (rich's Text equality ignores the style: a red name is a change)."""
    return tuple(
        (cell, "", None) if isinstance(cell, str) else (cell.plain, str(cell.style), cell.justify)
        for cell in row
    )


# one Text for each distinct mark or count ("…", "✓", "12"): 10,000 rows share a few dozen
# instead of holding 30,000, and a row costs no new Text (never changed in place)
_SHARED: dict[tuple[str, str, str | None], Text] = {}


def _shared(text: str, style: str, justify: str | None = None) -> Text:
    key = (text, style, justify)
    cell = _SHARED.get(key)
    if cell is None:
        cell = _SHARED[key] = Text(text, style=style, justify=justify)  # type: ignore[arg-type]
    return cell


def _text(cell: Text | str) -> Text:
    return Text(cell) if isinstance(cell, str) else cell


def _cell_len(cell: Text | str) -> int:
    if isinstance(cell, str):
        # names are ASCII, or "…" (one cell) and ASCII: no per-character measure for 10,000
        if cell.isascii() or (cell[0] == "…" and cell[1:].isascii()):
            return len(cell)
        return Text(cell).cell_len
    return cell.cell_len
