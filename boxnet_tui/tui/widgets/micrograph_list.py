"""The micrograph list beside the viewer: name, picks shown, curated mark, mask; a name filter."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from boxnet_tui.curation import Entry, distinct_names


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
        self._rows: dict[int, tuple[Text, ...]] = {}
        self._names: list[str] = []  # full names: the filter matches them
        self._shown_names: list[str] = []  # the parts that tell them apart
        self._filling = False

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter names (/)", id="filter")
        table: DataTable = DataTable(id="micrographs", cursor_type="row", zebra_stripes=True)
        table.can_focus = False  # the viewer keeps the keys; a click still chooses a row
        yield table

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # the name last: long names are cut by the panel, never the counts
        table.add_column("✓", key="curated", width=1)
        table.add_column("picks", key="picks", width=5)
        table.add_column("mask", key="mask", width=4)
        table.add_column("micrograph", key="name")

    @staticmethod
    def row(entry: Entry, curated: bool) -> tuple[Text, Text, Text, Text]:
        if entry.error:
            picks = Text("✗", style="bold red")
        elif entry.picks_error:
            picks = Text("STAR!", style="bold red")
        elif entry.picks is None:
            picks = Text("–" if entry.described else "…", style="dim")
        else:
            picks = Text(str(entry.picks), justify="right")
        name = Text(entry.root, style="red" if entry.error else "")
        mask = Text("■" if entry.has_mask else "", style="red")
        return (Text("✓" if curated else "", style="bold green"), picks, mask, name)

    def set_entries(self, rows: list[tuple[Text, Text, Text, Text]], names: list[str]) -> None:
        self._names = names
        self._shown_names = distinct_names(names)
        self._rows = {index: self._named(index, row) for index, row in enumerate(rows)}
        self._refill()

    def _named(self, index: int, row: tuple[Text, Text, Text, Text]) -> tuple[Text, ...]:
        """The row with its name cut to the part that tells it from the others."""
        name = row[3]
        short = self._shown_names[index] if index < len(self._shown_names) else name.plain
        return (*row[:3], Text(short, style=name.style))

    def update_entry(self, index: int, row: tuple[Text, Text, Text, Text]) -> None:
        row = self._named(index, row)
        before = self._rows.get(index)
        self._rows[index] = row
        if index not in self._row_of:
            return
        table = self.query_one(DataTable)
        for n, (key, value) in enumerate(
            zip(("curated", "picks", "mask", "name"), row, strict=True)
        ):
            # only what changed (an edit changes the count): each update redraws the table
            if before is None or before[n] != value:
                table.update_cell(str(index), key, value, update_width=False)

    def select(self, index: int) -> None:
        if index in self._row_of:
            table = self.query_one(DataTable)
            table.move_cursor(row=self._row_of[index], scroll=True)

    def _refill(self) -> None:
        needle = self.query_one("#filter", Input).value.strip().lower()
        table = self.query_one(DataTable)
        self._filling = True
        table.clear()
        self.shown = [i for i, name in enumerate(self._names) if needle in name.lower()]
        self._row_of = {index: row for row, index in enumerate(self.shown)}
        for index in self.shown:
            table.add_row(*self._rows[index], key=str(index))
        self._filling = False

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

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if not self._filling and event.row_key.value is not None:
            self.post_message(self.Chosen(int(event.row_key.value)))
