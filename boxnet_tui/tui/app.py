"""The curation app: micrograph list beside the viewer, keys in the Footer, `?` for all.

The app holds a ``CurationSession`` (the core) and turns keys and clicks into its calls;
every edit is on disk when the call returns. It keeps only view state: which micrograph,
the cursor, the zoom, a grabbed pick, the brush.
"""

from __future__ import annotations

import gc
import math
import os
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from textual import work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static
from textual.worker import get_current_worker

from boxnet_tui.curation import CurationSession
from boxnet_tui.display import (
    MAX_ZOOM,
    OVERVIEW_MODES,
    DisplaySettings,
    Overlay,
    View,
    minimap_corner,
    pick_style,
    render,
    score_range,
    tile_centres,
)
from boxnet_tui.editing import MicrographEditor
from boxnet_tui.errors import UserError
from boxnet_tui.micrograph_cache import Loaded, MicrographCache
from boxnet_tui.pick_order import (
    Key,
    key_of,
    pick_at,
    reading_key,
    reading_order,
    score_order,
    step,
)
from boxnet_tui.tui.graphics import image_widget_class
from boxnet_tui.tui.screens.help import HelpScreen
from boxnet_tui.tui.screens.prompts import DiameterScreen, SuffixScreen
from boxnet_tui.tui.widgets.micrograph_list import MicrographList
from boxnet_tui.tui.widgets.viewer import Viewer

if TYPE_CHECKING:
    from boxnet_tui.tui.screens.pick import PickRequest

# The retrain, pick and export screens and the model store import torch (seconds, hundreds of
# MB): they are imported when first used, so the viewer starts at once.

BIG_STEP = 8  # cells per shift+arrow
THRESHOLD_STEP = 0.05
BRUSH_SIZES = (16.0, 32.0, 64.0, 128.0, 256.0, 512.0)  # brush radius, Å
POLL_SECONDS = 1.0  # how often the shown files are checked for changes by others


def short_path(path: object, limit: int = 40) -> str:
    """``path`` for the header: the home folder as ``~``, and only its last parts when long,
    so that the pick set, model and diameter beside it stay on screen."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        text = "~" + text[len(home) :]
    parts = text.split(os.sep)
    while len(text) > limit and len(parts) > 2:
        parts = parts[1:]
        text = "…" + os.sep + os.sep.join(parts)
    return text


def stylesheet() -> str:
    return str(resources.files("boxnet_tui.styles") / "app.tcss")


class BoxnetApp(App[None]):
    """Browse, view and curate the micrographs of ``session``."""

    TITLE = "boxnet-tui"
    CSS_PATH = stylesheet()
    BINDINGS = [
        Binding("left,h", "move(-1, 0)", "move", show=False),
        Binding("right,l", "move(1, 0)", "move", show=False),
        Binding("up,k", "move(0, -1)", "move", show=False),
        Binding("down,j", "move(0, 1)", "move", show=False),
        Binding("shift+left,H", f"move(-{BIG_STEP}, 0)", "move more", show=False),
        Binding("shift+right,L", f"move({BIG_STEP}, 0)", "move more", show=False),
        Binding("shift+up,K", f"move(0, -{BIG_STEP})", "move more", show=False),
        Binding("shift+down,J", f"move(0, {BIG_STEP})", "move more", show=False),
        Binding("tab", "jump(1)", "next pick", show=False, priority=True),
        Binding("shift+tab", "jump(-1)", "previous pick", show=False, priority=True),
        Binding("o", "tab_order", "tab order", show=False),
        Binding("a,space", "add", "add"),
        Binding("x,delete", "remove(True)", "remove"),
        Binding("X", "remove(False)", "remove, not recorded", show=False),
        Binding("m", "grab", "move pick"),
        Binding("enter", "drop", "drop", show=False),
        Binding("u,ctrl+z", "undo", "undo"),
        Binding("ctrl+y", "redo", "redo", show=False),
        Binding("n,pagedown", "micrograph(1)", "next"),
        Binding("p,pageup", "micrograph(-1)", "prev"),
        Binding("left_square_bracket", f"threshold(-{THRESHOLD_STEP})", "thr-", show=False),
        Binding("right_square_bracket", f"threshold({THRESHOLD_STEP})", "thr+", show=False),
        Binding("plus,equals_sign", "zoom(1)", "zoom", show=False),
        Binding("minus", "zoom(-1)", "zoom out", show=False),
        Binding("w", "tile(1)", "next tile", show=False),
        Binding("W", "tile(-1)", "previous tile", show=False),
        Binding("O", "overview", "overview", show=False),
        Binding("M", "minimap", "minimap", show=False),
        Binding("f", "lowpass(1)", "low-pass+", show=False),
        Binding("F", "lowpass(-1)", "low-pass-", show=False),
        Binding("full_stop", "contrast(1)", "contrast+", show=False),
        Binding("comma", "contrast(-1)", "contrast-", show=False),
        Binding("c", "curated", "curated"),
        Binding("b", "brush", "brush"),
        Binding("e", "brush_mode", "paint/erase", show=False),
        Binding("left_curly_bracket", "brush_size(-1)", "brush-", show=False),
        Binding("right_curly_bracket", "brush_size(1)", "brush+", show=False),
        Binding("slash", "filter", "filter", show=False),
        Binding("s", "choose_suffix", "pick set", show=False),
        Binding("d", "choose_diameter", "diameter", show=False),
        Binding("r", "retrain", "retrain"),
        Binding("P", "pick", "pick", show=False),
        Binding("E", "export", "export", show=False),
        Binding("v", "compare", "compare", show=False),
        Binding("ctrl+x", "cancel_job", "cancel job", show=False),
        Binding("question_mark", "help", "help"),
        Binding("t", "runs", "runs"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, session: CurationSession, *, graphics: str = "auto") -> None:
        super().__init__()
        self.session = session
        self.image_class = image_widget_class(graphics)
        self.cache = MicrographCache([e.path for e in session.entries], session.pixel_size)
        self.index: int | None = None
        self.loaded: Loaded | None = None
        self.view: View | None = None
        self.cursor: tuple[float, float] = (0.0, 0.0)
        self.grabbed: int | None = None
        self.gesture = 0  # moves of one grab / dabs of one brush stroke undo together
        self.brush = False
        self.erase = False
        self.brush_size = 2  # index into BRUSH_SIZES
        self.compare_suffix: str | None = None
        self._compare_cache: tuple[tuple[str, str | None], np.ndarray | None] | None = None
        self._compare_counts_cache: tuple[tuple, str] | None = None
        self._position_dirty = False
        self._pending: tuple[tuple[float, float] | None, int] = (None, 0)
        self._press: tuple[int, int] | None = None  # the cell of a left press, until release
        self._job_cancelled = False
        self.model_name: str | None = None  # found in a worker: it imports torch
        # the retrain and export forms as the user left them (kept for the session), each with
        # the diameter it was last offered
        self.forms: dict[str, tuple[Any, str]] = {}
        # legibility: Tab's order, overview style, minimap, tile walk, low-pass and contrast
        self.tab_by_score = False
        self._score_anchor: tuple[str, Key] | None = None  # the pick Tab last went to, by score
        self.overview = OVERVIEW_MODES[0]
        self.minimap = True
        self.drawn: tuple[str, str | None] = ("circles", None)  # last frame: style, minimap
        self.tile: tuple[int, int] | None = None  # a walk's tile and its number of tiles
        self.display_settings = DisplaySettings()

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
        self._update_header()
        if session.store.warning:
            self.notify(session.store.warning, severity="warning")
        self._note_layout()
        self.query_one(Viewer).focus()
        state = session.store.state
        start = session.index_of(state.last_root) or 0
        self.call_after_refresh(self._start, start, state.last_position, state.zoom)
        self.describe_all()
        self._find_model()
        self.set_interval(POLL_SECONDS, self._poll)
        self.call_after_refresh(gc.freeze)

    def _start(self, index: int, position: tuple[float, float] | None, zoom: int) -> None:
        self.show_micrograph(index, position=position, zoom=zoom)

    def _update_header(self) -> None:
        s = self.session
        self.title = f"boxnet-tui  {short_path(s.folder)}"
        compare = f" · compare {self.compare_suffix}" if self.compare_suffix else ""
        model = self.model_name or "…"
        self.sub_title = f"picks {s.suffix} · model {model} · diameter {s.diameter:g} Å{compare}"

    @work(thread=True, exclusive=True, group="model")
    def _find_model(self) -> None:
        name = self.session.model
        self.call_from_thread(self._model_found, name)

    def _model_found(self, name: str) -> None:
        if self.model_name is None:
            self.model_name = name
        self._update_header()
        # the import made ~10^5 long-lived objects: keep the collector from walking them again
        gc.freeze()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Keys":  # Textual's key panel: "Keys" below is the help screen
                command = command._replace(
                    title="Key panel", help="Show or hide the keys of the focused field"
                )
            yield command
        yield SystemCommand(
            "Pick set", "Choose which pick set (suffix) is shown", self.action_choose_suffix
        )
        yield SystemCommand(
            "Compare", "Show a second pick set in another colour", self.action_compare
        )
        yield SystemCommand(
            "Diameter", "Set the particle diameter (Å)", self.action_choose_diameter
        )
        yield SystemCommand("Redo", "Redo the last undone edit", self.action_redo)
        yield SystemCommand("Filter", "Filter the micrograph list by name", self.action_filter)
        yield SystemCommand(
            "Files", "Where this folder's picks and masks are written, and how", self._say_files
        )
        yield SystemCommand(
            "Reload", "Read the shown micrograph's files again", self._reload_current
        )
        yield SystemCommand("Keys", "Every key and what it does (the ? screen)", self.action_help)

    # -- the list -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="describe")
    def describe_all(self) -> None:
        """Headers, pick counts and masks of every micrograph, in the background."""
        worker = get_current_worker()
        for index in range(len(self.session.entries)):
            if worker.is_cancelled:  # a newer call (another pick set) does it over
                return
            if self.session.entries[index].described:
                continue
            self.session.describe_entry(index)
            self.call_from_thread(self._refresh_row, index)

    def _refresh_row(self, index: int) -> None:
        entry = self.session.entries[index]
        browser = self.query_one(MicrographList)
        browser.update_entry(index, browser.row(entry, self.session.is_curated(entry.root)))

    def _files_note(self) -> str | None:
        """Where this folder's picks and masks are, and the coordinate convention."""
        from boxnet_tui.io import layout

        try:
            found = layout.find_layout(self.session.folder)  # cached by the session's scan
        except UserError:
            return None
        return f"{found.describe()}; {layout.convention_note()}"

    def _say_files(self) -> None:
        self.notify(self._files_note() or "cannot tell this folder's layout", timeout=15)

    def _note_layout(self) -> None:
        """Say where a Warp folder's micrographs, picks and masks are (a flat folder needs no
        word): the same line ``pick`` and ``info`` print. The session's scan cached it."""
        from boxnet_tui.io import layout

        try:
            found = layout.find_layout(self.session.folder)
        except UserError as error:
            self.notify(str(error), severity="warning")
            return
        if found.kind != layout.FLAT:
            self.notify(f"{found.describe()}; {layout.convention_note()}", timeout=10)

    def on_micrograph_list_chosen(self, message: MicrographList.Chosen) -> None:
        if message.index != self.index:
            self.show_micrograph(message.index)
        self.query_one(Viewer).focus()

    def on_micrograph_list_filter_done(self, message: MicrographList.FilterDone) -> None:
        browser = self.query_one(MicrographList)
        if browser.shown and self.index not in browser.shown:  # at the working zoom
            self.show_micrograph(browser.shown[0], zoom=self.view.zoom if self.view else 0)
        self.query_one(Viewer).focus()

    # -- showing a micrograph ------------------------------------------------------------
    def _neighbours(self, index: int) -> list[int]:
        shown = self.query_one(MicrographList).shown or list(range(len(self.session.entries)))
        if index not in shown:
            return [index]
        at = shown.index(index)
        return [index] + [shown[i] for i in (at + 1, at - 1) if 0 <= i < len(shown)]

    def show_micrograph(
        self, index: int, *, position: tuple[float, float] | None = None, zoom: int = 0
    ) -> None:
        """Make ``index`` current; shown at once when prefetched, else loaded in a worker."""
        self._save_position()
        self.grabbed = None
        self.index = index
        self.tile = None  # a tile walk is over one micrograph
        self.query_one(MicrographList).select(index)
        self._pending = (position, zoom)
        if self.cache.ready(index):
            self._display_loaded(index, self.cache.get(index))
        else:
            # no view while it loads: keys must not edit a micrograph that is not on screen
            self.view = self.loaded = None
            self.query_one(Viewer).show_frame(None, f"loading {self.session.entries[index].root}…")
            self._load(index)

    @work(thread=True, exclusive=True, group="load")
    def _load(self, index: int) -> None:
        loaded = self.cache.get(index)
        self.call_from_thread(self._display_loaded, index, loaded)

    def _display_loaded(self, index: int, loaded: Loaded) -> None:
        if index != self.index:
            return  # the user moved on while it loaded
        self.loaded = loaded
        entry = self.session.entries[index]
        viewer = self.query_one(Viewer)
        if loaded.image is None:
            self.view = None
            viewer.show_frame(None, loaded.error or "cannot show this micrograph")
            self._status()
            return
        if not entry.described:
            self.session.describe_entry(index)
        try:
            editor = self.session.editor(index)
        except UserError as error:
            self.view = None
            viewer.show_frame(None, str(error))
            self._status()
            return
        if editor.error:
            self.notify(f"{editor.error}; shown without picks, never overwritten", severity="error")
        position, zoom = self._pending
        shape = loaded.image.shape
        if position is None:
            position = (shape[1] / 2, shape[0] / 2)
        # a saved position may come from another micrograph size (or a hand-edited state file)
        position = (
            min(max(position[0], 0.0), shape[1] - 1.0),
            min(max(position[1], 0.0), shape[0] - 1.0),
        )
        self.cursor = position
        width, height = viewer.frame_size
        self.view = View(shape, width, height, position, zoom).clamped()
        self._position_dirty = True  # a new SSH session resumes on this micrograph
        self.redraw()
        self._refresh_row(index)
        if loaded.image.settings != self.display_settings:  # loading when they changed
            self._restyle(index)
        # read the neighbours once this frame is on screen, not while it is drawn; those of
        # the micrograph current by then (the user may have moved on, and what keep drops
        # is cancelled)
        self.call_after_refresh(self._prefetch)

    def _prefetch(self) -> None:
        if self.index is not None:
            self.cache.keep(self._neighbours(self.index))

    def editor(self) -> MicrographEditor | None:
        if self.index is None or self.view is None:
            return None
        try:
            return self.session.editor(self.index)
        except UserError:
            return None

    def redraw(self) -> None:
        """Compose and show a new frame (picks, mask or view changed), then the cursor."""
        editor = self.editor()
        if editor is None or self.loaded is None or self.loaded.image is None or self.view is None:
            return
        root = editor.root
        visible = editor.visible(self.session.threshold(root))
        index_map = {int(i): n for n, i in enumerate((visible).nonzero()[0])}
        xy = editor.picks.xy[visible]
        compare = None
        if self.compare_suffix:
            compare = self._compare_picks(root)
        radius = self.session.diameter_px(self.index) / 2  # type: ignore[arg-type]
        overlay = Overlay(
            xy,
            radius=radius,
            grabbed=index_map.get(self.grabbed) if self.grabbed is not None else None,
            mask=editor.mask(),
            compare_xy=compare,
            scores=editor.picks.score[visible],
            score_span=score_range(editor.picks.score),  # the file's: steady as threshold moves
            style=pick_style(self.overview, self.view, xy, radius),
            minimap=self._minimap_corner(self.view),
        )
        self.drawn = (overlay.style, overlay.minimap)
        frame: PILImage.Image = render(self.loaded.image, self.view, overlay)
        self.query_one(Viewer).show_frame(frame, target=self._target_ring())
        self._place_cursor()
        self._status()

    def _minimap_corner(self, view: View) -> str | None:
        return minimap_corner(view, self.cursor) if self.minimap else None

    def target(self) -> int | None:
        """The pick ``x`` and ``m`` act on: the shown one nearest the cursor within half a
        diameter (None: none, or a pick is grabbed and ``m`` drops it)."""
        editor = self.editor()
        if editor is None or self.grabbed is not None:
            return None
        threshold = self.session.threshold(editor.root)
        return editor.nearest(*self.cursor, self._remove_radius(), threshold)

    def _target_ring(self) -> tuple[float, float, float] | None:
        """The target's circle in display pixels, for the viewer to ring."""
        target, editor = self.target(), self.editor()
        if target is None or editor is None or self.view is None:
            return None
        dx, dy = self.view.to_display(float(editor.picks.x[target]), float(editor.picks.y[target]))
        return float(dx), float(dy), self._remove_radius() / self.view.scale

    def _compare_picks(self, root: str) -> np.ndarray | None:
        """The compared set's picks of ``root``, read once per micrograph and set (a redraw
        follows every key: it must not read a STAR file each time)."""
        from boxnet_tui.io import layout
        from boxnet_tui.io.star import read_picks

        key = (root, self.compare_suffix)
        if self._compare_cache is None or self._compare_cache[0] != key:
            try:
                path = layout.pick_path(self.session.folder, root, self.compare_suffix)
                xy = read_picks(path).xy
            except UserError:
                xy = None
            self._compare_cache = (key, xy)
        return self._compare_cache[1]

    def _compare_counts(self, editor: MicrographEditor, threshold: float) -> str:
        """``580 matched · 40 only BoxNet · 25 only manual`` (within half a diameter).

        The status line is redrawn on every cursor move: the matching is redone only when the
        picks (a new object after each edit), the threshold or the compared set change.
        """
        from boxnet_tui.evaluate import match_picks

        other = self._compare_picks(editor.root)
        if other is None:
            return f"no {self.compare_suffix} picks here"
        cached = self._compare_counts_cache
        if cached is not None:
            (picks, shown_at, compared), text = cached
            if picks is editor.picks and shown_at == threshold and compared is other:
                return text
        shown = editor.picks.xy[editor.visible(threshold)]
        radius = self.session.diameter_px(self.index) / 2  # type: ignore[operator]
        matched = len(match_picks(shown, other, radius))
        text = (
            f"{matched} matched · {len(shown) - matched} only {self.session.suffix} · "
            f"{len(other) - matched} only {self.compare_suffix}"
        )
        self._compare_counts_cache = ((editor.picks, threshold, other), text)
        return text

    def _place_cursor(self) -> None:
        viewer = self.query_one(Viewer)
        if self.view is None:
            return
        g = viewer.geometry
        dx, dy = self.view.to_display(*self.cursor)
        glyph = (
            ("○" if self.erase else "●")
            if self.brush
            else ("✥" if self.grabbed is not None else "╋")
        )
        viewer.place_cursor(math.floor(dx / g.x), math.floor(dy / g.y), glyph)
        viewer.set_target(self._target_ring())  # its cells change only when another pick is hit

    def _status(self) -> None:
        status = self.query_one("#status", Static)
        if self.index is None:
            status.update("")
            return
        entry = self.session.entries[self.index]
        editor = self.editor()
        parts = [f"{self.index + 1}/{len(self.session.entries)} {entry.root}"]
        if editor is not None and self.view is not None:
            threshold = self.session.threshold(entry.root)
            shown = int(editor.visible(threshold).sum())
            parts += [
                f"x {self.cursor[0]:.0f} y {self.cursor[1]:.0f} px",
                f"{shown} picks"
                + (f" ({len(editor.picks)} in file)" if shown != len(editor.picks) else ""),
            ]
            target = self.target()  # the ringed pick
            if target is not None:
                score = float(editor.picks.score[target])
                parts.append(f"score {score:.2f}" if math.isfinite(score) else "no score")
            tile = f" tile {self.tile[0] + 1}/{self.tile[1]}" if self.tile else ""
            parts += [f"threshold {threshold:.2f}", f"zoom ×{2**self.view.zoom}{tile}"]
            if self.brush:
                mode = "erase" if self.erase else "paint"
                parts.append(f"brush {mode} {BRUSH_SIZES[self.brush_size]:g} Å")
            if self.grabbed is not None:
                parts.append("moving a pick: m or enter drops it")
            if self.compare_suffix:
                parts.append(self._compare_counts(editor, threshold))
        if self.session.is_curated(entry.root):
            parts.append("curated ✓")
        if editor is not None and self.view is not None:
            if self.tab_by_score:
                parts.append("tab: lowest score first")
            if self.drawn[0] == "dots":
                parts.append("picks as dots")
            image = self.loaded.image if self.loaded else None
            pending = "…" if image is not None and image.settings != self.display_settings else ""
            parts.append(self.display_settings.describe() + pending)
        status.update("  │  ".join(parts))

    # -- keys: cursor and view -----------------------------------------------------------
    def _cell_step(self) -> tuple[float, float]:
        assert self.view is not None
        g = self.query_one(Viewer).geometry
        return g.x * self.view.scale, g.y * self.view.scale

    def set_cursor(self, x: float, y: float) -> None:
        """Move the cursor to micrograph (x, y); the view follows; a grabbed pick or brush too."""
        if self.view is None:
            return
        rows, cols = self.view.shape
        self.cursor = (min(max(x, 0.0), cols - 1.0), min(max(y, 0.0), rows - 1.0))
        self._position_dirty = True  # saved by the poll, at most once a second
        editor = self.editor()
        changed = False
        if editor is not None and self.grabbed is not None:
            changed = self._edit(lambda: self._move_grabbed(editor))
        if editor is not None and self.brush:
            changed = self._paint(editor) or changed
        view = self.view.follow(*self.cursor)
        # the minimap moves out of the cursor's way: a new frame, as when the view moves
        if view is not self.view or changed or self._minimap_corner(view) != self.drawn[1]:
            self.view = view
            self.redraw()
        else:
            self._place_cursor()
            self._status()

    def _move_grabbed(self, editor: MicrographEditor) -> None:
        assert self.grabbed is not None
        # another window's edit may have shifted the pick in the file: follow it
        self.grabbed = editor.move(self.grabbed, *self.cursor, group=self.gesture)

    def action_move(self, cols: int, rows: int) -> None:
        if self.view is None:
            return
        step_x, step_y = self._cell_step()
        self.set_cursor(self.cursor[0] + cols * step_x, self.cursor[1] + rows * step_y)

    def action_jump(self, direction: int) -> None:
        """Cursor to the next / previous shown pick: in reading order (rows one diameter
        high), or lowest score first (``o``)."""
        if self.screen is not self.screen_stack[0]:
            # a dialog is open: Tab moves its focus (the binding is a priority one so that
            # it beats the focus chain of the main screen only)
            raise SkipAction()
        editor = self.editor()
        if editor is None or self.index is None:
            return
        picks = editor.picks
        shown = editor.visible(self.session.threshold(editor.root)).nonzero()[0]
        if not shown.size:
            self.notify("no picks shown on this micrograph")
            return
        on = pick_at(picks.x, picks.y, shown, *self.cursor)
        here: Key | None
        if self.tab_by_score:
            order = score_order(picks.x, picks.y, picks.score, shown)
            anchor = self._score_anchor
            # off a pick (e.g. it was just removed): on from the score of the last one visited
            here = key_of(order, on) if on is not None else None
            if here is None and anchor is not None and anchor[0] == editor.root:
                here = anchor[1]
        else:
            order = reading_order(picks.x, picks.y, shown, self.session.diameter_px(self.index))
            here = key_of(order, on) if on is not None else reading_key(order, *self.cursor)
        target = step(order, here, direction)
        if target is None:
            return
        if self.tab_by_score:
            self._score_anchor = (editor.root, key_of(order, target))  # type: ignore[assignment]
        self.set_cursor(float(picks.x[target]), float(picks.y[target]))

    def action_tab_order(self) -> None:
        self.tab_by_score = not self.tab_by_score
        self._score_anchor = None
        self.notify(
            "tab: lowest score first (the doubtful picks)"
            if self.tab_by_score
            else "tab: reading order"
        )
        self._status()

    def action_tile(self, direction: int) -> None:
        """The view to the next / previous tile of a walk over the micrograph at this zoom,
        row by row like reading; the cursor to its centre."""
        if self.view is None or self.index is None:
            return
        diameter = self.session.diameter_px(self.index)
        tiles = tile_centres(self.view, diameter, minimap=self.minimap)
        if len(tiles) == 1:
            self.notify("the whole micrograph is in view: zoom in (+) to walk it tile by tile")
            return
        if self.tile is None or self.tile[1] != len(tiles):  # a new walk (or a new grid)
            at = 0 if direction > 0 else len(tiles) - 1
        else:
            at = self.tile[0] + direction
            if not 0 <= at < len(tiles):
                self.notify(
                    "last tile of this micrograph (n: the next one)"
                    if direction > 0
                    else "first tile of this micrograph"
                )
                return
        self._drop_grab()  # neither a grabbed pick nor the brush travels with a tile step
        self.tile = (at, len(tiles))
        x, y = tiles[at]
        v = self.view
        self.view = View(v.shape, v.width, v.height, (x, y), v.zoom).clamped()
        self.cursor = (x, y)
        self._position_dirty = True
        self.redraw()

    def action_overview(self) -> None:
        """Picks as circles, centre dots, or dots where circles would be a carpet (auto)."""
        at = OVERVIEW_MODES.index(self.overview)
        self.overview = OVERVIEW_MODES[(at + 1) % len(OVERVIEW_MODES)]
        words = {"auto": "dots where circles crowd", "dots": "dots", "circles": "circles"}
        self.notify(f"picks as {words[self.overview]}")
        self.redraw()

    def action_minimap(self) -> None:
        self.minimap = not self.minimap
        self.tile = None  # the walk's overlap depends on it
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
        self.cache.set_settings(settings, first=self.index)  # the one on screen first
        self._status()
        if self.index is not None and self.view is not None:
            self._restyle(self.index)

    @work(thread=True, exclusive=True, group="restyle")
    def _restyle(self, index: int) -> None:
        loaded = self.cache.get(index)
        self.call_from_thread(self._restyled, index, loaded)

    def _restyled(self, index: int, loaded: Loaded) -> None:
        if index != self.index or self.view is None or loaded.image is None:
            return
        if loaded.image.settings != self.display_settings:
            return  # changed again meanwhile: the later worker brings it
        self.loaded = loaded
        self.redraw()

    def action_zoom(self, change: int) -> None:
        if self.view is None:
            return
        zoom = min(MAX_ZOOM, max(0, self.view.zoom + change))
        if zoom != self.view.zoom:
            v = self.view
            self.view = View(v.shape, v.width, v.height, self.cursor, zoom).clamped()
            self.tile = None  # another zoom, another walk
            self.redraw()
            self._position_dirty = True

    def on_viewer_resized(self, message: Viewer.Resized) -> None:
        if self.view is not None:
            width, height = self.query_one(Viewer).frame_size
            v = self.view
            self.view = View(v.shape, width, height, v.centre, v.zoom).clamped()
            self.redraw()

    # -- the mouse ----------------------------------------------------------------------
    def _cell_to_micrograph(self, col: int, row: int) -> tuple[float, float]:
        assert self.view is not None
        g = self.query_one(Viewer).geometry
        return self.view.to_micrograph((col + 0.5) * g.x, (row + 0.5) * g.y)

    def on_viewer_pressed(self, message: Viewer.Pressed) -> None:
        """Left press: remember it (a click adds, a drag moves); right press removes."""
        editor = self.editor()
        if editor is None or self.view is None:
            return
        self._drop_grab()
        x, y = self._cell_to_micrograph(message.col, message.row)
        self.cursor = (x, y)
        if message.button == 3:
            self.action_remove(record=not message.shift)
            return
        self._press = (message.col, message.row) if message.button == 1 else None
        self._place_cursor()
        self._status()

    def on_viewer_released(self, message: Viewer.Released) -> None:
        press, self._press = self._press, None
        editor = self.editor()
        if press is None or editor is None or message.button != 1 or self.view is None:
            return
        if (message.col, message.row) == press:
            self.action_add()
            return
        start = self._cell_to_micrograph(*press)
        target = editor.nearest(*start, self._remove_radius(), self.session.threshold(editor.root))
        if target is None:
            return
        self.cursor = self._cell_to_micrograph(message.col, message.row)
        if self._edit(lambda: editor.move(target, *self.cursor)):
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
        self._position_dirty = True
        if self.index is not None:
            self.session.update_entry(self.index)
            self._refresh_row(self.index)
        return True

    def _remove_radius(self) -> float:
        assert self.index is not None
        return self.session.diameter_px(self.index) / 2

    def action_add(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        self._drop_grab()
        if self._edit(lambda: editor.add(*self.cursor)):
            self.redraw()

    def action_remove(self, record: bool = True) -> None:
        editor = self.editor()
        if editor is None:
            return
        self._drop_grab()
        target = editor.nearest(
            *self.cursor, self._remove_radius(), self.session.threshold(editor.root)
        )
        if target is None:
            self.notify("no pick within half a diameter of the cursor")
            return
        if self._edit(lambda: editor.remove(target, record=record)):
            self.redraw()

    def action_grab(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        if self.grabbed is not None:
            self.action_drop()
            return
        target = editor.nearest(
            *self.cursor, self._remove_radius(), self.session.threshold(editor.root)
        )
        if target is None:
            self.notify("no pick within half a diameter of the cursor to move")
            return
        self.gesture += 1
        self.grabbed = target
        self.cursor = (float(editor.picks.x[target]), float(editor.picks.y[target]))
        self.redraw()

    def action_drop(self) -> None:
        if self.grabbed is not None:
            self._drop_grab()
            self.redraw()

    def _drop_grab(self) -> None:
        self.grabbed = None
        self.gesture += 1

    def action_undo(self) -> None:
        self._history(undo=True)

    def action_redo(self) -> None:
        self._history(undo=False)

    def _history(self, *, undo: bool) -> None:
        editor = self.editor()
        if editor is None:
            return
        self._drop_grab()
        done = []
        self._edit(lambda: done.append(editor.undo() if undo else editor.redo()))
        if not done or done[0] is None:
            self.notify(f"nothing to {'undo' if undo else 'redo'} on this micrograph")
        self.redraw()

    def action_threshold(self, change: float) -> None:
        if self.index is None:
            return
        root = self.session.entries[self.index].root
        self.session.set_threshold(root, self.session.threshold(root) + change)
        self._store_error()
        self.session.update_entry(self.index)
        self._refresh_row(self.index)
        self.redraw()

    def action_curated(self) -> None:
        if self.index is None:
            return
        root = self.session.entries[self.index].root
        curated = self.session.toggle_curated(root)
        self._store_error()
        self._refresh_row(self.index)
        self._status()
        self.notify(f"{root} marked {'curated' if curated else 'not curated'}")

    # -- keys: the brush ----------------------------------------------------------------
    def _paint(self, editor: MicrographEditor) -> bool:
        radius = BRUSH_SIZES[self.brush_size]
        return self._edit(
            lambda: editor.paint(*self.cursor, radius, junk=not self.erase, group=self.gesture)
        )

    def action_brush(self) -> None:
        editor = self.editor()
        if editor is None:
            return
        self._drop_grab()
        self.brush = not self.brush
        if self.brush:
            self._paint(editor)
            self._refresh_row(self.index)  # type: ignore[arg-type]
        self.redraw()

    def action_brush_mode(self) -> None:
        self.erase = not self.erase
        self.gesture += 1
        if self.brush and (editor := self.editor()) is not None:
            self._paint(editor)
        self.redraw()

    def action_brush_size(self, change: int) -> None:
        self.brush_size = min(len(BRUSH_SIZES) - 1, max(0, self.brush_size + change))
        self._status()

    # -- keys: micrographs, dialogs ------------------------------------------------------
    def action_micrograph(self, step: int) -> None:
        shown = self.query_one(MicrographList).shown
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
        self.show_micrograph(target, zoom=self.view.zoom if self.view else 0)

    def action_filter(self) -> None:
        self.query_one("#filter").focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_choose_suffix(self) -> None:
        suffixes = self.session.refresh_suffixes()
        if not suffixes:
            self.notify("no pick sets in matching/ yet")
            return

        def chosen(suffix: str | None) -> None:
            if suffix and suffix != self.session.suffix:
                self._switch_suffix(suffix)

        self.push_screen(SuffixScreen(suffixes, self.session.suffix), chosen)

    def _switch_suffix(self, suffix: str) -> None:
        """Show pick set ``suffix``: header, list counts and the current micrograph."""
        self.session.set_suffix(suffix)
        self._update_header()
        self.describe_all()
        if self.index is not None:
            self.show_micrograph(
                self.index, position=self.cursor, zoom=self.view.zoom if self.view else 0
            )

    def action_compare(self) -> None:
        suffixes = [s for s in self.session.refresh_suffixes() if s != self.session.suffix]
        if self.compare_suffix is not None or not suffixes:
            self.compare_suffix = None
            self._update_header()
            self.redraw()
            return

        def chosen(suffix: str | None) -> None:
            self.compare_suffix = suffix
            self._update_header()
            self.redraw()

        title = f"Compare {self.session.suffix} with which pick set? (newest first)"
        self.push_screen(SuffixScreen(suffixes, "", title), chosen)

    def action_choose_diameter(self) -> None:
        def chosen(diameter: float | None) -> None:
            if diameter:
                self.session.set_diameter(diameter)
                self._update_header()
                self.redraw()

        self.push_screen(DiameterScreen(self.session.diameter), chosen)

    def _reload_current(self) -> None:
        editor = self.editor()
        if editor is not None:
            editor.reload()
            self.redraw()

    # -- retraining, picking, export ----------------------------------------------------
    def action_retrain(self) -> None:
        from boxnet_tui.retrain_form import RetrainForm
        from boxnet_tui.tui.screens.retrain import RetrainScreen

        folder = str(self.session.folder)
        form = self._kept_form("retrain", lambda d: RetrainForm(folder, diameter=d))
        form.forget()  # marks, picks and models may have changed since: read them afresh
        screen = RetrainScreen(form, curating=self.session.suffix)
        self.push_screen(screen, self._retrain_started)

    def _kept_form(self, kind: str, new: Callable[[str], Any]) -> Any:
        """The ``kind`` form as the user last left it in this session (``new(diameter)`` the
        first time). Its diameter follows `d` when that changed since the form was last open;
        otherwise what was typed in it stays."""
        diameter = f"{self.session.diameter:g}"
        kept = self.forms.get(kind)
        if kept is None:
            form = new(diameter)
        else:
            form, offered = kept
            if offered != diameter:
                form.diameter = diameter
        self.forms[kind] = (form, diameter)
        return form

    def _retrain_started(self, name: str | None) -> None:
        if name:
            self.forms["retrain"][0].name = ""  # taken now: the next run needs a name of its own
            self.notify(f"training {name} in the background; it goes on if you quit or log out")
            self.open_run(name)

    def open_run(self, name: str) -> None:
        """Show a run's monitor (the screen comes with the training monitor)."""
        self.action_runs(name)

    def action_pick(self) -> None:
        if self.workers_in("pick"):
            self.notify("picking is already running (ctrl+x cancels it)")
            return
        from boxnet_tui.tui.screens.pick import PickScreen

        model = self.model_name or self.session.model
        curated = sum(self.session.is_curated(entry.root) for entry in self.session.entries)
        self.push_screen(PickScreen(self.session.diameter, model, curated), self._pick)

    def workers_in(self, group: str) -> bool:
        return any(w.group == group and w.is_running for w in self.workers)

    def _pick(self, request: PickRequest | None) -> None:
        if request is None:
            return
        from boxnet_tui.io import layout
        from boxnet_tui.tui.screens.pick import choose_paths

        entries = self.session.entries
        unpicked = [
            i
            for i, e in enumerate(entries)
            if not layout.pick_path(self.session.folder, e.root, request.model).exists()
        ]
        paths = choose_paths(
            request.which,
            [e.path for e in entries],
            self.query_one(MicrographList).shown,
            self.index,
            unpicked,
        )
        if not paths:
            self.notify("no micrographs to pick")
            return
        # show the new picks as they land
        if self.session.suffix != request.model:
            self._switch_suffix(request.model)
        self._job_cancelled = False
        self._show_job(f"picking {len(paths)} with {request.model}", len(paths))
        self._run_pick(request, paths)

    @work(thread=True, exclusive=True, group="pick")
    def _run_pick(self, request: PickRequest, paths: list) -> None:
        from boxnet_tui.batch_picking import PickSettings, pick_folder

        settings = PickSettings(diameter=request.diameter, threshold=request.threshold)
        try:
            summary = pick_folder(
                self.session.folder,
                request.model,
                settings,
                device=request.device,
                paths=paths,
                progress=lambda p: self.call_from_thread(self._picked_one, p),
                should_stop=lambda: self._job_cancelled,
                overwrite_curated=request.overwrite_curated,
                store=self.session.store,  # its marks are read, and cleared where replaced
            )
        except UserError as error:
            self.call_from_thread(self._job_done, str(error), "error")
            return
        except Exception as error:  # a bug or the machine (no CUDA, no memory): keep the app
            self.call_from_thread(self._job_done, f"picking failed: {error!r}", "error")
            return
        stopped = " (cancelled)" if self._job_cancelled else ""
        message = (
            f"picked {summary.picked} micrographs, {summary.particles} particles in "
            f"{summary.seconds:.0f} s{stopped}; {len(summary.errors)} failed"
        )
        for error in summary.errors[:3]:
            self.call_from_thread(self.notify, error, severity="error")
        note = summary.curated_note("ticking 'overwrite' in the pick form (P)")
        if note:
            message += f"; {note.replace('FOLDER', str(self.session.folder))}"
        severity = "warning" if summary.skipped_curated else "information"
        self.call_from_thread(self._job_done, message, severity)

    def _picked_one(self, progress) -> None:
        bar = self.query_one("#job-progress", ProgressBar)
        bar.update(total=progress.total, progress=progress.done)  # less curated ones skipped
        index = self.session.index_of(progress.current.stem) if progress.current else None
        if index is None or not progress.written:  # unchanged: keep its editor (and undo)
            return
        self.session.forget_editor(index)
        self.session.update_entry(index)
        self._refresh_row(index)
        if index == self.index:
            self.grabbed = None  # an index into the picks just replaced
            self.redraw()

    def action_cancel_job(self) -> None:
        if self.workers_in("pick"):
            self._job_cancelled = True
            self.notify("cancelling after the current micrograph…")

    def _show_job(self, text: str, total: int) -> None:
        self.query_one("#job-label", Label).update(text + "  (ctrl+x cancels)")
        self.query_one("#job-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#job").display = True

    def _job_done(self, message: str, severity: str) -> None:
        self.query_one("#job").display = False
        self.notify(message, severity=severity, timeout=8)  # type: ignore[arg-type]
        self.session.refresh_suffixes()

    def action_export(self) -> None:
        from boxnet_tui.tui.screens.export import ExportForm, ExportScreen

        form = self._kept_form("export", ExportForm)
        self.push_screen(ExportScreen(self.session.folder, self.session.diameter, form))

    # -- housekeeping ---------------------------------------------------------------------
    def _poll(self) -> None:
        """Show edits another program made to the current files."""
        editor = self.editor()
        if editor is None:
            return
        if editor.reload_if_changed():
            for notice in editor.notices:
                self.notify(notice, severity="warning", timeout=8)
            editor.notices.clear()
            self.grabbed = None
            self.redraw()
        if self._position_dirty:
            self._save_position()

    def _store_error(self) -> None:
        if self.session.store.error:
            self.notify(self.session.store.error, severity="error")

    def _save_position(self) -> None:
        if self.index is None or self.view is None:
            return
        self._position_dirty = False
        root = self.session.entries[self.index].root
        self.session.store.set_position(root, self.cursor, self.view.zoom)

    def action_runs(self, name: str = "") -> None:
        """The training runs to choose from, or run ``name``'s monitor straight away."""
        # imported when asked, which keeps the app's start fast
        from boxnet_tui.training.runs import find_run
        from boxnet_tui.tui.screens.monitor import MonitorScreen
        from boxnet_tui.tui.screens.runs import RunsScreen

        def chosen(model: str | None) -> None:
            if model:
                self.model_name = model  # the pick screen offers it first
                self._update_header()
                self.notify(f"model {model} is ready: pick the micrographs with it (P)")

        if not name:
            self.push_screen(RunsScreen(), chosen)
            return
        try:
            run = find_run(name)
        except UserError as error:
            self.notify(str(error), severity="error")
            return
        self.push_screen(MonitorScreen(run), chosen)

    async def action_quit(self) -> None:
        if self.workers_in("pick"):  # quitting stops it: the rest would keep their old picks
            from boxnet_tui.tui.screens.confirm import ConfirmScreen

            bar = self.query_one("#job-progress", ProgressBar)
            done = f" ({bar.progress:.0f} of {bar.total:.0f} done)" if bar.total else ""
            question = (
                f"Picking is running{done}. Quit and stop it? The micrographs not picked yet "
                "keep their old picks."
            )
            self.push_screen(ConfirmScreen(question, "Quit", "Keep picking"), self._quit_if)
            return
        self._quit()

    def _quit_if(self, yes: bool | None) -> None:
        if yes:
            self._job_cancelled = True
            self._quit()

    def _quit(self) -> None:
        self._save_position()
        self.cache.close()
        self.exit()
