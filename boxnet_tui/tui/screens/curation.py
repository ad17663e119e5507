"""The curation screen: micrograph list beside the viewer, keys in the Footer, `?` for all.

It turns keys, clicks and drags into calls of the core (``CurationSession`` and its editors:
every edit is on disk when the call returns) and of the navigation model (``Navigation``: view,
cursor, grab, brush, Tab, tiles), and draws what they report. The micrograph and a compared
pick set are read in workers, never on the UI thread; an edit is written on it (on disk before
the next key is handled, by design; a brush dab of the mouse likewise).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image as PILImage
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static
from textual.worker import Worker, get_current_worker

from boxnet_tui.curation import CurationSession
from boxnet_tui.display import (
    DisplaySettings,
    Overlay,
    View,
    pick_style,
    render,
    score_range,
)
from boxnet_tui.editing import MicrographEditor, Stamp
from boxnet_tui.errors import UserError
from boxnet_tui.file_stamp import file_stamp
from boxnet_tui.folder import FolderWatch
from boxnet_tui.micrograph_cache import Loaded, MicrographCache
from boxnet_tui.navigation import Navigation, hit_radius
from boxnet_tui.tui import key_table
from boxnet_tui.tui.screens.prompts import DiameterScreen, SuffixScreen
from boxnet_tui.tui.widgets.micrograph_list import MicrographList
from boxnet_tui.tui.widgets.viewer import Viewer

if TYPE_CHECKING:
    from pathlib import Path

    from boxnet_tui.tui.app import BoxnetApp

POLL_SECONDS = 1.0  # how often the shown files are checked for changes by others
FOLDER_POLL_SECONDS = 3.0  # how often the folder is looked at for micrographs and picks arriving
ROWS_PER_BATCH, BATCH_SECONDS = 200, 0.05  # described rows sent to the list at most this late
OVERVIEW_WORDS = {"auto": "dots where circles crowd", "dots": "dots", "circles": "circles"}


def cells_between(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The cells of a straight line from ``start`` to ``end``, ``start`` left out: each one a
    step from the last (sideways, up or down, or diagonal). A pointer moved fast skips cells
    between two reports; the brush paints these too, so a stroke has no gaps."""
    (x0, y0), (x1, y1) = start, end
    steps = max(abs(x1 - x0), abs(y1 - y0))
    return [
        (x0 + round((x1 - x0) * i / steps), y0 + round((y1 - y0) * i / steps))
        for i in range(1, steps + 1)
    ]


class CurationScreen(Screen[None]):
    """Browse, view and curate the micrographs of ``session``."""

    BINDINGS = key_table.bindings()

    def __init__(self, session: CurationSession, cache: MicrographCache, image_class: type) -> None:
        super().__init__()
        self.session = session
        self.cache = cache
        self.image_class = image_class
        self.nav = Navigation()
        self.index: int | None = None
        self.loaded: Loaded | None = None
        self.compare_suffix: str | None = None
        # a compared set's picks per (root, suffix), with the file's stamp when read: read in
        # a worker (a redraw follows every key: it must not read a STAR file), read again when
        # the poll finds the file changed
        self._compare: dict[tuple[str, str], tuple[Stamp, np.ndarray | None]] = {}
        self._compare_reading: set[tuple[str, str]] = set()
        self._compare_counts_cache: tuple[tuple, str] | None = None
        self._pending: tuple[tuple[float, float] | None, int] = (None, 0)
        self._press: tuple[int, int] | None = None  # the cell of a left press, until release
        # a brush stroke of the mouse, until release: the editor it paints, its last cell and
        # whether it erases whatever the brush's mode (the right button's)
        self._stroke: tuple[MicrographEditor, tuple[int, int], bool] | None = None
        self.drawn: tuple[str, str | None] = ("circles", None)  # last frame: style, minimap
        # the folder's view settings as last set (low-pass, contrast, Tab order)
        self.display_settings = session.display
        cache.set_settings(self.display_settings)
        self.nav.tab_by_score = session.tab_by_score
        # the first micrograph is read and prepared in the cache's thread while the app mounts
        # (each takes about as long: side by side, not one after the other)
        state = session.store.state
        self._first = session.index_of(state.last_root) or 0
        cache.keep([self._first])
        self._described_once = False  # the describe of every micrograph waits for a frame
        # micrographs and pick files arriving while the app runs (pick --watch, a transfer)
        self.folder_watch = FolderWatch(session.folder, session.roots)
        self._rescanning = threading.Lock()
        self._disk_check: Worker | None = None  # the poll's look at the shown pick file

    @property
    def boxnet(self) -> BoxnetApp:
        return cast("BoxnetApp", self.app)

    # the navigation state, read by tests and the benchmark as the screen's
    @property
    def view(self) -> View | None:
        return self.nav.view

    @property
    def cursor(self) -> tuple[float, float]:
        return self.nav.cursor

    @property
    def grabbed(self) -> int | None:
        return self.nav.grabbed

    @property
    def tile(self) -> tuple[int, int] | None:
        return self.nav.tile

    @property
    def overview(self) -> str:
        return self.nav.overview

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield MicrographList(id="browser")
            yield Viewer(self.image_class, id="viewer")
        with Horizontal(id="job"):
            yield Label("", id="job-label")
            yield ProgressBar(id="job-progress", show_eta=True)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        session = self.session
        browser = self.query_one(MicrographList)
        browser.set_entries(
            [browser.row(e, session.is_curated(e.root)) for e in session.entries],
            [e.root for e in session.entries],
        )
        self.query_one(Viewer).focus()
        state = session.store.state
        self.call_after_refresh(self._start, self._first, state.last_position, state.zoom)
        # describe_all starts once the first frame is on screen (_display_loaded): its reads
        # would compete with the first micrograph's
        self.set_interval(POLL_SECONDS, self._poll)
        self.set_interval(FOLDER_POLL_SECONDS, self.rescan)

    def _start(self, index: int, position: tuple[float, float] | None, zoom: int) -> None:
        self.show_micrograph(index, position=position, zoom=zoom)

    @property
    def shown(self) -> list[int]:
        """The micrographs the list shows (filtered), in its order."""
        return self.query_one(MicrographList).shown

    # -- the list -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="describe")
    def describe_all(self) -> None:
        """Headers, pick counts and masks of every micrograph, in the background."""
        worker = get_current_worker()
        done: list[int] = []
        sent = time.monotonic()
        for index in range(len(self.session.entries)):
            if worker.is_cancelled:  # a newer call (another pick set) does it over
                return
            if self.session.entries[index].described:
                continue
            self.session.describe_entry(index)
            done.append(index)
            # rows go to the UI in batches: one call per micrograph is 10,000 UI callbacks
            if len(done) >= ROWS_PER_BATCH or time.monotonic() - sent >= BATCH_SECONDS:
                self.app.call_from_thread(self.refresh_rows, done)
                done, sent = [], time.monotonic()
        if done:
            self.app.call_from_thread(self.refresh_rows, done)

    @work(thread=True, group="rescan")
    def rescan(self) -> None:
        """Look for micrographs that arrived in the folder (shown once whole) and pick files
        that appeared or changed; in a worker: at 10,000 micrographs a listing takes a while."""
        if not self._rescanning.acquire(blocking=False):  # the last look is still listing
            return
        try:
            new = self.folder_watch.new_micrographs()
            roots = self.session.roots | {path.stem for path in new}
            changed = self.folder_watch.changed_picks(self.session.suffix, roots)
        finally:
            self._rescanning.release()
        if new or changed:
            self.app.call_from_thread(self._arrived, new, changed)

    def _arrived(self, new: list[Path], changed: set[str]) -> None:
        """Append micrographs ``new`` to the session and the list (the current micrograph,
        the list's cursor and view stay); count the picks of ``changed`` (roots) again."""
        if not self.is_attached:
            return
        session = self.session
        added = session.add_entries(new)
        if added:
            entries = [session.entries[i] for i in added]
            self.cache.add(entry.path for entry in entries)
            browser = self.query_one(MicrographList)
            browser.add_entries(
                [browser.row(entry, session.is_curated(entry.root)) for entry in entries],
                [entry.root for entry in entries],
            )
            count = len(added)
            self.notify(f"{count} new micrograph{'' if count == 1 else 's'}", timeout=4)
            self._status()
        if changed:
            index_of = {entry.root: i for i, entry in enumerate(session.entries)}
            for root in changed:
                if (i := index_of.get(root)) is not None:
                    session.entries[i].described = False
        if self._described_once:  # else it starts with the first frame and covers them
            self.describe_all()

    def refresh_rows(self, indices: list[int]) -> None:
        """Show the rows of entries ``indices`` as the session now describes them."""
        if not self.is_attached:  # a worker's late word: the screen is gone
            return
        try:
            browser = self.query_one(MicrographList)
        except NoMatches:
            return
        session = self.session
        for index in indices:
            entry = session.entries[index]
            browser.update_entry(index, browser.row(entry, session.is_curated(entry.root)))

    def refresh_row(self, index: int) -> None:
        self.refresh_rows([index])

    def on_micrograph_list_chosen(self, message: MicrographList.Chosen) -> None:
        if message.index != self.index:
            self.show_micrograph(message.index)
        self.query_one(Viewer).focus()

    def on_micrograph_list_filter_done(self, message: MicrographList.FilterDone) -> None:
        browser = self.query_one(MicrographList)
        if browser.shown and self.index not in browser.shown:  # at the working zoom
            self.show_micrograph(browser.shown[0], zoom=self._zoom())
        self.query_one(Viewer).focus()

    # -- showing a micrograph ------------------------------------------------------------
    def _zoom(self) -> int:
        return self.nav.view.zoom if self.nav.view else 0

    def _neighbours(self, index: int) -> list[int]:
        shown = self.shown or list(range(len(self.session.entries)))
        if index not in shown:
            return [index]
        at = shown.index(index)
        return [index] + [shown[i] for i in (at + 1, at - 1) if 0 <= i < len(shown)]

    def show_micrograph(
        self, index: int, *, position: tuple[float, float] | None = None, zoom: int = 0
    ) -> None:
        """Make ``index`` current; shown at once when prefetched, else loaded in a worker."""
        self.save_position()
        self.nav.leave()
        self.index = index
        self.query_one(MicrographList).select(index)
        self._pending = (position, zoom)
        if self.cache.ready(index):
            self._display_loaded(index, self.cache.get(index))
        else:
            # no view while it loads: keys must not edit a micrograph that is not on screen
            self.nav.view = self.loaded = None
            self.query_one(Viewer).show_frame(None, f"loading {self.session.entries[index].root}…")
            self._load(index)

    @work(thread=True, exclusive=True, group="load")
    def _load(self, index: int) -> None:
        loaded = self.cache.get(index)
        self._build_editors([index])
        self.app.call_from_thread(self._display_loaded, index, loaded)

    def _build_editors(self, indices: list[int]) -> None:
        """Describe and build the editors of ``indices`` here, in a worker: their header, STAR
        and mask reads stay off the UI thread (showing one then only looks it up)."""
        for index in indices:
            with contextlib.suppress(UserError):  # shown when the micrograph is
                self.session.editor(index)

    @work(thread=True, exclusive=True, group="editors")
    def _prefetch_editors(self, indices: list[int]) -> None:
        self._build_editors(indices)

    def _display_loaded(self, index: int, loaded: Loaded) -> None:
        if index != self.index:
            return  # the user moved on while it loaded
        self.loaded = loaded
        if not self._described_once:  # once the first frame is drawn: the rest of the list
            self._described_once = True
            self.call_after_refresh(self.describe_all)
        viewer = self.query_one(Viewer)
        if loaded.image is None:
            self.nav.view = None
            viewer.show_frame(None, loaded.error or "cannot show this micrograph")
            self._status()
            return
        try:
            editor = self.session.editor(index)  # describes the entry first if need be
        except UserError as error:
            self.nav.view = None
            viewer.show_frame(None, str(error))
            self._status()
            return
        if editor.error:
            self.notify(f"{editor.error}; shown without picks, never overwritten", severity="error")
        position, zoom = self._pending
        self._sync_cell()
        self.nav.open(loaded.image.shape, viewer.frame_size, position, zoom)
        self.redraw()
        self.refresh_row(index)
        if loaded.image.settings != self.display_settings:  # loading when they changed
            self._restyle(index)
        # read the neighbours once this frame is on screen, not while it is drawn; those of
        # the micrograph current by then (the user may have moved on, and what keep drops
        # is cancelled)
        self.call_after_refresh(self._prefetch)

    def _prefetch(self) -> None:
        if self.index is not None:
            neighbours = self._neighbours(self.index)
            self.cache.keep(neighbours)
            self._prefetch_editors(neighbours)

    def editor(self) -> MicrographEditor | None:
        if self.index is None or self.nav.view is None:
            return None
        try:
            return self.session.editor(self.index)
        except UserError:
            return None

    def _diameter_px(self) -> float:
        assert self.index is not None
        return self.session.diameter_px(self.index)

    def _sync_cell(self) -> None:
        """The viewer's display pixels per cell (the terminal may tell them late)."""
        g = self.query_one(Viewer).geometry
        self.nav.cell = (g.x, g.y)

    def redraw(self) -> None:
        """Compose and show a new frame (picks, mask or view changed), then the cursor."""
        editor, view = self.editor(), self.nav.view
        if editor is None or self.loaded is None or self.loaded.image is None or view is None:
            return
        root = editor.root
        visible = editor.visible(self.session.threshold)
        index_map = {int(i): n for n, i in enumerate((visible).nonzero()[0])}
        xy = editor.picks.xy[visible]
        compare = self._compare_picks(root) if self.compare_suffix else None
        radius = self._diameter_px() / 2
        grabbed = self.nav.grabbed
        overlay = Overlay(
            xy,
            radius=radius,
            grabbed=index_map.get(grabbed) if grabbed is not None else None,
            mask=editor.mask(),
            compare_xy=compare,
            scores=editor.picks.score[visible],
            score_span=score_range(editor.picks.score),  # the file's: steady as threshold moves
            style=pick_style(self.nav.overview, view, xy, radius),
            minimap=self.nav.minimap_corner(),
        )
        self.drawn = (overlay.style, overlay.minimap)
        frame: PILImage.Image = render(self.loaded.image, view, overlay)
        self.query_one(Viewer).show_frame(frame, target=self._target_ring())
        self._place_cursor()
        self._status()

    def target(self) -> int | None:
        """The pick ``x`` and ``m`` act on: the shown one nearest the cursor within half a
        diameter (None: none, or a pick is grabbed and ``m`` drops it)."""
        editor = self.editor()
        if editor is None:
            return None
        return self.nav.target(editor, self.session.threshold, self._diameter_px())

    def _target_ring(self) -> tuple[float, float, float] | None:
        """The target's circle in display pixels, for the viewer to ring."""
        editor = self.editor()
        if editor is None:
            return None
        return self.nav.ring(editor, self.session.threshold, self._diameter_px())

    # -- a compared pick set, read in a worker ----------------------------------------------
    def _compare_picks(self, root: str) -> np.ndarray | None:
        """The compared set's picks of ``root`` as last read; a read is started (and None
        returned) the first time."""
        assert self.compare_suffix is not None
        key = (root, self.compare_suffix)
        if key in self._compare:
            return self._compare[key][1]
        self._read_compare(key)
        return None

    def _read_compare(self, key: tuple[str, str]) -> None:
        if key not in self._compare_reading:  # one read at a time for each file
            self._compare_reading.add(key)
            self._compare_worker(key, self._compare.get(key, (None, None))[0])

    @work(thread=True, group="compare")
    def _compare_worker(self, key: tuple[str, str], known: Stamp) -> None:
        """Read ``key``'s picks unless the file is as it was when last read (``known``)."""
        from boxnet_tui.io import layout, star

        root, suffix = key
        path = layout.pick_path(self.session.folder, root, suffix)
        stamp = file_stamp(path)
        if key in self._compare and stamp == known:
            self.app.call_from_thread(self._compare_unchanged, key)
            return
        try:
            xy = star.read_picks(path).xy
        except UserError:
            xy = None
        self.app.call_from_thread(self._compare_read, key, stamp, xy)

    def _compare_unchanged(self, key: tuple[str, str]) -> None:
        self._compare_reading.discard(key)

    def _compare_read(self, key: tuple[str, str], stamp: Stamp, xy: np.ndarray | None) -> None:
        self._compare_reading.discard(key)
        self._compare[key] = (stamp, xy)
        if self.index is not None and key == (self._root(), self.compare_suffix):
            self.redraw()

    def forget_compare(self, root: str | None = None) -> None:
        """Read the compared picks (of ``root``, or all) again when next shown."""
        for key in [k for k in self._compare if root is None or k[0] == root]:
            del self._compare[key]

    def _root(self) -> str:
        assert self.index is not None
        return self.session.entries[self.index].root

    def _compare_counts(self, editor: MicrographEditor, threshold: float) -> str:
        """``580 matched · 40 only BoxNet · 25 only manual`` (within half a diameter).

        The status line is redrawn on every cursor move: the matching is redone only when the
        picks (a new object after each edit), the threshold or the compared set change.
        """
        from boxnet_tui.evaluate import match_picks

        key = (editor.root, self.compare_suffix)
        if key not in self._compare:
            return f"reading the {self.compare_suffix} picks…"
        other = self._compare[key][1]  # type: ignore[index]
        if other is None:
            return f"no {self.compare_suffix} picks here"
        cached = self._compare_counts_cache
        if cached is not None:
            (picks, shown_at, compared), text = cached
            if picks is editor.picks and shown_at == threshold and compared is other:
                return text
        shown = editor.picks.xy[editor.visible(threshold)]
        radius = self._diameter_px() / 2
        matched = len(match_picks(shown, other, radius))
        text = (
            f"{matched} matched · {len(shown) - matched} only {self.session.suffix} · "
            f"{len(other) - matched} only {self.compare_suffix}"
        )
        self._compare_counts_cache = ((editor.picks, threshold, other), text)
        return text

    # -- the cursor and the status line -------------------------------------------------
    def _place_cursor(self) -> None:
        if self.nav.view is None:
            return
        self._sync_cell()
        viewer = self.query_one(Viewer)
        viewer.place_cursor(*self.nav.cursor_cell(), self.nav.glyph())
        viewer.set_target(self._target_ring())  # its cells change only when another pick is hit

    def _status(self) -> None:
        status = self.query_one("#status", Static)
        if self.index is None:
            status.update("")
            return
        nav = self.nav
        entry = self.session.entries[self.index]
        editor = self.editor()
        parts = [f"{self.index + 1}/{len(self.session.entries)} {entry.root}"]
        if editor is not None and nav.view is not None:
            threshold = self.session.threshold
            shown = int(editor.visible(threshold).sum())
            parts += [
                f"x {nav.cursor[0]:.0f} y {nav.cursor[1]:.0f} px",
                f"{shown} picks"
                + (f" ({len(editor.picks)} in file)" if shown != len(editor.picks) else ""),
            ]
            target = self.target()  # the ringed pick
            if target is not None:
                score = float(editor.picks.score[target])
                parts.append(f"score {score:.2f}" if math.isfinite(score) else "no score")
            tile = f" tile {nav.tile[0] + 1}/{nav.tile[1]}" if nav.tile else ""
            parts += [f"threshold {threshold:.2f}", f"zoom ×{2**nav.view.zoom}{tile}"]
            if nav.brush:
                mode = "erase" if nav.erase else "paint"
                parts.append(f"brush {mode} {nav.brush_radius:g} Å")
            if nav.grabbed is not None:
                parts.append("moving a pick: m or enter drops it")
            if self.compare_suffix:
                parts.append(self._compare_counts(editor, threshold))
        if self.session.is_curated(entry.root):
            parts.append("curated ✓")
        if editor is not None and nav.view is not None:
            if nav.tab_by_score:
                parts.append("tab: lowest score first")
            if self.drawn[0] == "dots":
                parts.append("picks as dots")
            image = self.loaded.image if self.loaded else None
            pending = "…" if image is not None and image.settings != self.display_settings else ""
            parts.append(self.display_settings.describe() + pending)
        status.update("  │  ".join(parts))

    # -- keys: cursor and view -----------------------------------------------------------
    def _cell_step(self) -> tuple[float, float]:
        self._sync_cell()
        return self.nav.cell_step()

    def set_cursor(self, x: float, y: float) -> None:
        """Move the cursor to micrograph (x, y); the view follows; a grabbed pick or brush too."""
        nav = self.nav
        if nav.view is None:
            return
        moved = nav.place(x, y)
        editor = self.editor()
        changed = False
        if editor is not None and nav.grabbed is not None:
            changed = self._edit(lambda: self._move_grabbed(editor))
        if editor is not None and nav.brush:
            changed = self._paint(editor) or changed
        # the minimap moves out of the cursor's way: a new frame, as when the view moves
        if moved or changed or nav.minimap_corner() != self.drawn[1]:
            self.redraw()
        else:
            self._place_cursor()
            self._status()

    def _move_grabbed(self, editor: MicrographEditor) -> None:
        nav = self.nav
        assert nav.grabbed is not None
        # another window's edit may have shifted the pick in the file: follow it
        nav.grabbed = editor.move(nav.grabbed, *nav.cursor, group=nav.gesture)

    def action_move(self, cols: int, rows: int) -> None:
        if self.nav.view is None:
            return
        step_x, step_y = self._cell_step()
        x, y = self.nav.cursor
        self.set_cursor(x + cols * step_x, y + rows * step_y)

    def action_jump(self, direction: int) -> None:
        """Cursor to the next / previous shown pick: in reading order (rows one diameter
        high), or lowest score first (``o``)."""
        editor = self.editor()
        if editor is None or self.index is None:
            return
        picks = editor.picks
        shown = editor.visible(self.session.threshold).nonzero()[0]
        if not shown.size:
            self.notify("no picks shown on this micrograph")
            return
        target = self.nav.jump(editor.root, picks, shown, self._diameter_px(), direction)
        if target is not None:
            self.set_cursor(float(picks.x[target]), float(picks.y[target]))

    def action_tab_order(self) -> None:
        by_score = self.nav.toggle_tab_order()
        self.session.set_display(self.display_settings, by_score)
        self._store_error()
        self.notify(
            "tab: lowest score first (the doubtful picks)" if by_score else "tab: reading order"
        )
        self._status()

    def action_tile(self, direction: int) -> None:
        """The view to the next / previous tile of a walk over the micrograph at this zoom,
        row by row like reading; the cursor to its centre."""
        if self.nav.view is None or self.index is None:
            return
        why_not = self.nav.step_tile(direction, self._diameter_px())
        if why_not:
            self.notify(why_not)
            return
        self.redraw()

    def action_overview(self) -> None:
        """Picks as circles, centre dots, or dots where circles would be a carpet (auto)."""
        self.notify(f"picks as {OVERVIEW_WORDS[self.nav.next_overview()]}")
        self.redraw()

    def action_minimap(self) -> None:
        self.nav.toggle_minimap()
        self.redraw()

    def action_lowpass(self, change: int) -> None:
        self._set_display(self.display_settings.step_lowpass(change))

    def action_contrast(self, change: int) -> None:
        self._set_display(self.display_settings.step_contrast(change))

    def _set_display(self, settings: DisplaySettings) -> None:
        """Prepare the micrograph (and the prefetched ones) for the eye with ``settings``."""
        if settings == self.display_settings:
            return
        self.display_settings = settings
        self.session.set_display(settings, self.nav.tab_by_score)
        self._store_error()
        self.cache.set_settings(settings, first=self.index)  # the one on screen first
        self._status()
        if self.index is not None and self.nav.view is not None:
            self._restyle(self.index)

    @work(thread=True, exclusive=True, group="restyle")
    def _restyle(self, index: int) -> None:
        loaded = self.cache.get(index)
        self.app.call_from_thread(self._restyled, index, loaded)

    def _restyled(self, index: int, loaded: Loaded) -> None:
        if index != self.index or self.nav.view is None or loaded.image is None:
            return
        if loaded.image.settings != self.display_settings:
            return  # changed again meanwhile: the later worker brings it
        self.loaded = loaded
        self.redraw()

    def action_zoom(self, change: int) -> None:
        if self.nav.zoom(change):
            self.redraw()

    def on_viewer_resized(self, message: Viewer.Resized) -> None:
        self._sync_cell()
        if self.nav.resize(self.query_one(Viewer).frame_size):
            self.redraw()

    # -- the mouse ----------------------------------------------------------------------
    def on_viewer_pressed(self, message: Viewer.Pressed) -> None:
        """Left press: remember it (a click adds, a drag moves), or with the brush on a dab
        there (a drag paints on); right press removes, or with the brush on erases there (a
        drag erases on)."""
        editor = self.editor()
        if editor is None or self.nav.view is None:
            return
        self.nav.drop()  # a new gesture: one stroke is undone at once
        self._sync_cell()
        self._stroke = None
        self.nav.cursor = self.nav.cell_to_micrograph(message.col, message.row)
        if message.button == 3 and not self.nav.brush:
            self.action_remove(record=not message.shift)
            return
        if message.button in (1, 3) and self.nav.brush:
            self._press = None  # a brush stroke adds no pick and removes none
            erase = message.button == 3  # the right button erases, whatever the brush's mode
            self._stroke = (editor, (message.col, message.row), erase)
            if not self._paint(editor, erase=erase):
                self._stroke = None  # refused (one message, not one for each cell)
            self.redraw()
            return
        self._press = (message.col, message.row) if message.button == 1 else None
        self._place_cursor()
        self._status()

    def _end_gesture(self) -> None:
        """End a mouse press, drag or stroke: the next dab is a stroke of its own."""
        if self._stroke is not None:
            self.nav.drop()
        self._stroke, self._press = None, None

    def end_mouse_gesture(self) -> None:
        """Forget a pressed button whose release will go elsewhere (a dialog opened over this
        screen, another window of the desktop): hovering afterwards paints nothing."""
        self._end_gesture()
        self.query_one(Viewer).let_go()

    def on_screen_suspend(self) -> None:
        self.end_mouse_gesture()

    def on_viewer_dragged(self, message: Viewer.Dragged) -> None:
        """The pointer moved with a button held: a brush stroke paints (or erases) the cells
        passed."""
        if self._stroke is not None:
            self._stroke_to(message.col, message.row)

    def _stroke_to(self, col: int, row: int) -> None:
        """Paint the stroke on from its last cell to (col, row): a dab at every viewer cell of
        the line between, as the keyboard brush makes one at each cell the cursor enters."""
        assert self._stroke is not None
        editor, last, erase = self._stroke
        nav = self.nav
        if editor is not self.editor() or not nav.brush or nav.view is None:
            self._stroke = None  # another micrograph, or the brush went off meanwhile
            return
        self._stroke = (editor, (col, row), erase)
        cols, rows = self.query_one(Viewer).size
        cells = [
            (c, r) for c, r in cells_between(last, (col, row)) if 0 <= c < cols and 0 <= r < rows
        ]
        if not cells:  # the same cell, or off the viewer
            return
        self._sync_cell()
        points = [nav.cell_to_micrograph(c, r) for c, r in cells]
        nav.cursor = points[-1]
        if not self._paint(editor, points, erase=erase):
            self._stroke = None
        self.redraw()

    def on_viewer_released(self, message: Viewer.Released) -> None:
        press, self._press = self._press, None
        if self._stroke is not None:
            if message.button != 0:  # 0: the release was lost, the pointer is only hovering
                self._stroke_to(message.col, message.row)
            self._end_gesture()
            return
        editor = self.editor()
        if press is None or editor is None or message.button != 1 or self.nav.view is None:
            return
        if not message.inside:
            return
        if (message.col, message.row) == press:
            self.action_add()
            return
        self._sync_cell()
        start = self.nav.cell_to_micrograph(*press)
        radius = hit_radius(self._diameter_px())
        target = editor.nearest(*start, radius, self.session.threshold)
        if target is None:
            return
        self.nav.cursor = self.nav.cell_to_micrograph(message.col, message.row)
        if self._edit(lambda: editor.move(target, *self.nav.cursor)):
            self.redraw()

    # -- keys: editing ------------------------------------------------------------------
    def _edit(self, change: Callable[[], object]) -> bool:
        """Run one edit of the core; a refusal becomes one line for the user."""
        editor = self.editor()
        try:
            change()
        except UserError as error:
            self.notify(str(error), severity="error", timeout=8)
            return False
        finally:
            if editor is not None:
                for notice in editor.notices:
                    self.notify(notice, severity="warning", timeout=8)
                editor.notices.clear()
        self.nav.unsaved = True
        if self.index is not None:
            self.session.update_entry(self.index)
            self.refresh_row(self.index)
        return True

    def action_add(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        self.nav.drop()
        if self._edit(lambda: editor.add(*self.nav.cursor)):
            self.redraw()

    def action_remove(self, record: bool = True) -> None:
        editor = self.editor()
        if editor is None:
            return
        self.nav.drop()
        target = self.target()
        if target is None:
            self.notify("no pick within half a diameter of the cursor")
            return
        if self._edit(lambda: editor.remove(target, record=record)):
            self.redraw()

    def action_grab(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        if self.nav.grabbed is not None:
            self.action_drop()
            return
        target = self.target()
        if target is None:
            self.notify("no pick within half a diameter of the cursor to move")
            return
        self.nav.grab(target, float(editor.picks.x[target]), float(editor.picks.y[target]))
        self.redraw()

    def action_drop(self) -> None:
        if self.nav.grabbed is not None:
            self.nav.drop()
            self.redraw()

    def action_undo(self) -> None:
        self._history(undo=True)

    def action_redo(self) -> None:
        self._history(undo=False)

    def _history(self, *, undo: bool) -> None:
        editor = self.editor()
        if editor is None:
            return
        self.nav.drop()
        done = []
        self._edit(lambda: done.append(editor.undo() if undo else editor.redo()))
        if not done or done[0] is None:
            self.notify(f"nothing to {'undo' if undo else 'redo'} on this micrograph")
        self.redraw()

    def action_threshold(self, change: float) -> None:
        if self.index is None:
            return
        # one threshold for the pick set shown: every micrograph's count changes
        self.session.set_threshold(self.session.threshold + change)
        self._store_error()
        self.session.update_entry(self.index)
        self.refresh_row(self.index)
        self.describe_all()
        self.redraw()

    def action_curated(self) -> None:
        if self.index is None:
            return
        root = self._root()
        curated = self.session.toggle_curated(root)
        self._store_error()
        self.refresh_row(self.index)
        self._status()
        self.notify(f"{root} marked {'curated' if curated else 'not curated'}")

    # -- keys: the brush ----------------------------------------------------------------
    def _paint(
        self,
        editor: MicrographEditor,
        at: list[tuple[float, float]] | None = None,
        *,
        erase: bool = False,
    ) -> bool:
        """A dab of the brush at the cursor, or one at each point of ``at`` (a mouse stroke),
        written at once, all of this gesture (undone together); it erases in the brush's erase
        mode, and with ``erase`` in either (the right button's stroke)."""
        nav = self.nav
        points = [nav.cursor] if at is None else at
        junk = not (erase or nav.erase)
        return self._edit(
            lambda: editor.paint_stroke(points, nav.brush_radius, junk=junk, group=nav.gesture)
        )

    def action_brush(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        if self.nav.toggle_brush():
            self._paint(editor)
            self.refresh_row(self.index)  # type: ignore[arg-type]
        self.redraw()

    def action_brush_mode(self) -> None:
        self.nav.toggle_erase()
        if self.nav.brush and (editor := self.editor()) is not None:
            self._paint(editor)
        self.redraw()

    def action_brush_size(self, change: int) -> None:
        self.nav.step_brush(change)
        self._status()

    # -- keys: micrographs, pick sets, the diameter --------------------------------------
    def action_micrograph(self, step: int) -> None:
        shown = self.shown
        if not shown:
            return
        if self.index not in shown:
            target = shown[0]
        else:
            at = shown.index(self.index) + step
            if not 0 <= at < len(shown):
                self.notify("last micrograph" if step > 0 else "first micrograph")
                return
            target = shown[at]
        self.show_micrograph(target, zoom=self._zoom())

    def action_filter(self) -> None:
        self.query_one("#filter").focus()

    def action_choose_suffix(self) -> None:
        self._list_suffixes(self._offer_suffixes)

    @work(thread=True, exclusive=True, group="suffixes")
    def _list_suffixes(self, then: Callable[[list[str]], None]) -> None:
        """List matching/'s pick sets off the UI thread (a listing of 10,000 files), then
        hand them to ``then`` on it."""
        suffixes = self.session.refresh_suffixes()
        if not get_current_worker().is_cancelled:  # s then v at once: only the last one asks
            self.app.call_from_thread(then, suffixes)

    def _offer_suffixes(self, suffixes: list[str]) -> None:
        if not suffixes:
            self.notify("no pick sets in matching/ yet")
            return

        def chosen(suffix: str | None) -> None:
            if suffix and suffix != self.session.suffix:
                self.switch_suffix(suffix)

        self.app.push_screen(SuffixScreen(suffixes, self.session.suffix), chosen)

    def switch_suffix(self, suffix: str) -> None:
        """Show pick set ``suffix``: header, list counts and the current micrograph."""
        self.session.set_suffix(suffix)
        self.boxnet.update_header()
        self.describe_all()
        if self.index is not None:
            self.show_micrograph(self.index, position=self.nav.cursor, zoom=self._zoom())

    def action_compare(self) -> None:
        if self.compare_suffix is not None:
            self._stop_comparing()
        else:
            self._list_suffixes(self._offer_compare)

    def _stop_comparing(self) -> None:
        self.compare_suffix = None
        self.forget_compare()  # shown again later: read afresh
        self.boxnet.update_header()
        self.redraw()

    def _offer_compare(self, listed: list[str]) -> None:
        suffixes = [s for s in listed if s != self.session.suffix]
        if self.compare_suffix is not None or not suffixes:
            self._stop_comparing()
            return

        def chosen(suffix: str | None) -> None:
            self.compare_suffix = suffix
            self.boxnet.update_header()
            self.redraw()

        title = f"Compare {self.session.suffix} with which pick set? (newest first)"
        self.app.push_screen(SuffixScreen(suffixes, "", title), chosen)

    def action_choose_diameter(self) -> None:
        def chosen(diameter: float | None) -> None:
            if diameter:
                self.session.set_diameter(diameter)
                self.boxnet.update_header()
                self.redraw()

        self.app.push_screen(DiameterScreen(self.session.diameter), chosen)

    def reload_current(self) -> None:
        """Read the shown micrograph's files again (and a compared set's)."""
        editor = self.editor()
        if editor is not None:
            editor.reload()
            self.forget_compare(editor.root)
            self.redraw()

    # -- a pick job's bar and results ------------------------------------------------------
    def show_job(self, text: str, total: int) -> None:
        self.query_one("#job-label", Label).update(text + "  (ctrl+x cancels)")
        self.query_one("#job-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#job").display = True

    def job_progress(self, done: int, total: int) -> None:
        self.query_one("#job-progress", ProgressBar).update(total=total, progress=done)

    def hide_job(self) -> None:
        self.query_one("#job").display = False

    def job_bar(self) -> tuple[float, float | None]:
        """(done, total) of the job's bar."""
        bar = self.query_one("#job-progress", ProgressBar)
        return bar.progress, bar.total

    def picks_replaced(self, index: int) -> None:
        """A job wrote micrograph ``index``'s picks: its editor, row and frame are stale."""
        self.session.forget_editor(index)
        self.session.update_entry(index)
        self.forget_compare(self.session.entries[index].root)
        self.refresh_row(index)
        if index == self.index:
            self.nav.grabbed = None  # an index into the picks just replaced
            self.redraw()

    # -- housekeeping ---------------------------------------------------------------------
    def _poll(self) -> None:
        """Show edits another program made to the current files; keep the position."""
        editor = self.editor()
        if editor is None:
            return
        if self._disk_check is None or self._disk_check.is_finished:  # never a queue of stats
            self._disk_check = self._check_disk(editor)
        if self.compare_suffix:  # read again in a worker if the file changed
            self._read_compare((editor.root, self.compare_suffix))
        if self.nav.unsaved:
            self.save_position()

    @work(thread=True, group="disk-check")
    def _check_disk(self, editor: MicrographEditor) -> None:
        # a stat on a network disk can take seconds: never on the UI thread
        if editor.changed_on_disk():
            self.app.call_from_thread(self._take_in_changes, editor)

    def _take_in_changes(self, editor: MicrographEditor) -> None:
        if editor is not self.editor() or not editor.reload_if_changed():
            return  # another micrograph by now, or the file changed back
        for notice in editor.notices:
            self.notify(notice, severity="warning", timeout=8)
        editor.notices.clear()
        self.nav.grabbed = None
        self.redraw()

    def _store_error(self) -> None:
        if self.session.store.error:
            self.notify(self.session.store.error, severity="error")

    def save_position(self) -> None:
        if self.index is None or self.nav.view is None:
            return
        self.nav.unsaved = False
        self.session.store.set_position(self._root(), self.nav.cursor, self.nav.view.zoom)
