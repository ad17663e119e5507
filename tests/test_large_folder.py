"""The micrograph list on a folder of 10,000: filtering, rows rendered, cursor, updates."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import App, ComposeResult

from boxnet_tui.io.micrographs import natural_key
from boxnet_tui.tui.widgets.micrograph_list import MicrographList, MicrographTable

COUNT = 10_000


def names(count: int = COUNT) -> list[str]:
    return [
        f"FoilHole_{24000000 + i * 37}_Data_{(i * 7919) % 100000:05d}_{i % 4}" for i in range(count)
    ]


def rows(roots: list[str]) -> list[tuple[Text, Text, Text, Text]]:
    return [(Text(""), Text("…", style="dim"), Text(""), Text(root)) for root in roots]


class ListApp(App[None]):
    CSS = "#browser { width: 40; } #micrographs { height: 1fr; }"

    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[int] = []

    def compose(self) -> ComposeResult:
        yield MicrographList(id="browser")

    def on_micrograph_list_chosen(self, message: MicrographList.Chosen) -> None:
        self.chosen.append(message.index)


def run(body) -> None:
    async def main() -> None:
        app = ListApp()
        async with app.run_test(size=(80, 30)) as pilot:
            browser = app.query_one(MicrographList)
            roots = names()
            browser.set_entries(rows(roots), roots)
            await pilot.pause()
            await body(app, pilot, browser, roots)

    asyncio.run(main())


def test_filtering_ten_thousand_names_shows_exactly_the_matching_rows():
    async def body(app, pilot, browser, roots):
        table = browser.query_one(MicrographTable)
        assert browser.shown == list(range(COUNT)) and table.row_count == COUNT
        browser.query_one("#filter").focus()  # the app's "/" does this
        await pilot.press(*"data_4")  # case-insensitive, on the whole name
        expected = [i for i, root in enumerate(roots) if "data_4" in root.lower()]
        assert 0 < len(expected) < COUNT
        assert browser.shown == expected
        assert [str(table.get_row_at(r)[3]) for r in range(3)] == [
            str(table.rows[i][3]) for i in expected[:3]
        ]
        await pilot.press(*"_1")
        assert browser.shown == [i for i, root in enumerate(roots) if "data_4_1" in root.lower()]
        for _ in "data_4_1":
            await pilot.press("backspace")
        assert browser.shown == list(range(COUNT))
        await pilot.press(*"no such name")
        assert browser.shown == [] and table.row_count == 0

    run(body)


def test_only_the_rows_on_screen_are_rendered(monkeypatch):
    rendered: list[int | None] = []
    line = MicrographTable._line

    def counting(self, index, row, cursor, width):
        rendered.append(index)
        return line(self, index, row, cursor, width)

    monkeypatch.setattr(MicrographTable, "_line", counting)

    async def body(app, pilot, browser, roots):
        table = browser.query_one(MicrographTable)
        height = table.size.height
        rendered.clear()
        table.refresh()
        await pilot.pause()
        assert 0 < len(set(rendered)) <= height  # the header and the rows in view, of 10,000
        rendered.clear()
        browser.select(7000)  # the cursor far down: the list scrolls to it
        await pilot.pause()
        top = table.scroll_offset.y
        assert top <= 7000 < top + height - 1
        shown = {i for i in rendered if i is not None}
        assert 7000 in shown and len(shown) <= height
        assert all(top <= i < top + height for i in shown)

    run(body)


def test_updates_change_the_row_and_the_cursor_follows_the_filter():
    async def body(app, pilot, browser, roots):
        table = browser.query_one(MicrographTable)
        browser.update_entry(9999, (Text("✓"), Text("12"), Text("■"), Text(roots[9999])))
        assert str(table.get_cell("9999", "picks")) == "12"
        assert str(table.get_cell("9999", "curated")) == "✓"
        browser.update_entry(5, (Text(""), Text("…"), Text(""), Text(roots[5], style="red")))
        assert table.get_cell("5", "name").style == "red"  # a style alone is a change too
        browser.select(4)  # the cursor stays on it through a filter that shows it
        needle = roots[4][-9:]
        browser.query_one("#filter").focus()
        await pilot.press(*needle, "enter")
        assert 4 in browser.shown
        assert table.shown[table.cursor_row] == 4

    run(body)


def test_a_click_on_a_row_chooses_its_micrograph():
    async def body(app, pilot, browser, roots):
        table = browser.query_one(MicrographTable)
        await pilot.click(MicrographTable, offset=(10, 3))  # the header, then rows 0, 1, 2
        assert app.chosen == [table.shown[2]]
        assert table.cursor_row == 2

    run(body)


def test_entries_arriving_are_placed_by_name_and_the_view_stays():
    async def body(app, pilot, browser, roots):
        table = browser.query_one(MicrographTable)
        order = sorted(range(COUNT), key=lambda i: natural_key(roots[i]))
        browser.set_entries(rows([roots[i] for i in order]), [roots[i] for i in order])
        browser.select(7000)
        await pilot.pause()
        top = table.shown[table.scroll_offset.y]
        # one sorts first (above the view), one next to the chosen row
        new = ["FoilHole_0_Data_0", roots[order[7000]] + "_b"]
        browser.add_entries(rows(new), new)
        await pilot.pause()
        names = [browser._names[i] for i in browser.shown]
        assert names == sorted(names, key=natural_key) and len(names) == COUNT + 2
        assert names[0] == new[0] and names[names.index(new[1]) - 1] == roots[order[7000]]
        assert table.shown[table.scroll_offset.y] == top  # the rows in view did not move
        assert table.shown[table.cursor_row] == 7000  # nor the cursor
        assert browser.shown[browser.shown.index(COUNT + 1) - 1] == 7000
        browser.query_one("#filter").focus()
        await pilot.press(*"_b")  # the filter sees the new names, in the same order
        assert [browser._names[i] for i in browser.shown] == [new[1]]

    run(body)
