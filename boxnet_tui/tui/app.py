"""The curation app: wiring. The curation screen (``screens/curation.py``) holds the keys,
the viewer and the list; this App makes it the first screen, opens the dialogs (help,
retrain, pick, export, runs), runs the pick job in a worker and offers the palette's commands.
Every edit is on disk when the core's call returns.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from boxnet_tui.curation import CurationSession
from boxnet_tui.errors import UserError
from boxnet_tui.micrograph_cache import MicrographCache
from boxnet_tui.tui.graphics import image_widget_class, startup_notes
from boxnet_tui.tui.screens.curation import CurationScreen
from boxnet_tui.tui.screens.help import HelpScreen

if TYPE_CHECKING:
    from boxnet_tui.tui.screens.pick import PickRequest

# The retrain, pick and export screens and the model store import torch (seconds, hundreds of
# MB): they are imported when first used, so the viewer starts at once.


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
    """The curation app: the curation screen (where the keys and the viewer live), the dialogs
    it opens, the pick job, and the commands of the palette."""

    TITLE = "boxnet-tui"
    CSS_PATH = stylesheet()

    def __init__(self, session: CurationSession, *, graphics: str = "auto") -> None:
        super().__init__()
        self.session = session
        self.image_class = image_widget_class(graphics)
        self.cache = MicrographCache([e.path for e in session.entries], session.pixel_size)
        self._curation: CurationScreen | None = None
        self._job_cancelled = False
        self.model_name: str | None = None  # found in a worker: it reads model.json files
        # the retrain and export forms as the user left them (kept for the session), each with
        # the diameter it was last offered
        self.forms: dict[str, tuple[Any, str]] = {}

    def get_default_screen(self) -> CurationScreen:
        self._curation = CurationScreen(self.session, self.cache, self.image_class)
        return self._curation

    @property
    def curation(self) -> CurationScreen:
        """The curation screen: the first on the stack, under any dialog."""
        assert self._curation is not None, "the app is not running"
        return self._curation

    def on_mount(self) -> None:
        session = self.session
        self.update_header()
        if session.store.warning:
            self.notify(session.store.warning, severity="warning")
        if notes := startup_notes():  # what tmux or the colours need for a better image
            self.notify("\n".join(notes), timeout=8)
        self._note_layout()
        self._find_model()
        self.call_after_refresh(gc.freeze)

    def on_app_blur(self) -> None:
        """The terminal lost focus: a button's release will go to another window."""
        if self._curation is not None and self._curation.is_mounted:
            self._curation.end_mouse_gesture()

    def update_header(self) -> None:
        s = self.session
        self.title = f"boxnet-tui  {short_path(s.folder)}"
        compared = self._curation.compare_suffix if self._curation else None
        compare = f" · compare {compared}" if compared else ""
        model = self.model_name or "…"
        self.sub_title = f"picks {s.suffix} · model {model} · diameter {s.diameter:g} Å{compare}"

    @work(thread=True, exclusive=True, group="model")
    def _find_model(self) -> None:
        name = self.session.model
        self.call_from_thread(self._model_found, name)

    def _model_found(self, name: str) -> None:
        if self.model_name is None:
            self.model_name = name
        self.update_header()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Keys":  # Textual's key panel: "Keys" below is the help screen
                command = command._replace(
                    title="Key panel", help="Show or hide the keys of the focused field"
                )
            yield command
        curation = self.curation
        yield SystemCommand(
            "Pick set", "Choose which pick set (suffix) is shown", curation.action_choose_suffix
        )
        yield SystemCommand(
            "Compare", "Show a second pick set in another colour", curation.action_compare
        )
        yield SystemCommand(
            "Diameter", "Set the particle diameter (Å)", curation.action_choose_diameter
        )
        yield SystemCommand("Redo", "Redo the last undone edit", curation.action_redo)
        yield SystemCommand("Filter", "Filter the micrograph list by name", curation.action_filter)
        yield SystemCommand(
            "Files", "Where this folder's picks and masks are written, and how", self._say_files
        )
        yield SystemCommand(
            "Reload", "Read the shown micrograph's files again", curation.reload_current
        )
        yield SystemCommand("Keys", "Every key and what it does (the ? screen)", self.action_help)

    # -- the folder -------------------------------------------------------------------------
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

    # -- dialogs ----------------------------------------------------------------------------
    def action_help(self) -> None:
        self.push_screen(HelpScreen())

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

    def action_export(self) -> None:
        from boxnet_tui.tui.screens.export import ExportForm, ExportScreen

        form = self._kept_form("export", ExportForm)
        self.push_screen(ExportScreen(self.session.folder, self.session.diameter, form))

    def action_runs(self, name: str = "") -> None:
        """The training runs to choose from, or run ``name``'s monitor straight away."""
        # imported when asked, which keeps the app's start fast
        from boxnet_tui.training.runs import find_run
        from boxnet_tui.tui.screens.monitor import MonitorScreen
        from boxnet_tui.tui.screens.runs import RunsScreen

        def chosen(model: str | None) -> None:
            if model:
                self.model_name = model  # the pick screen offers it first
                self.update_header()
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

    # -- the pick job -----------------------------------------------------------------------
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
        self._job_cancelled = False
        # the list's filter and the current micrograph are read here; which micrographs are
        # unpicked, in the worker (a stat of each one's pick file: thousands in a big folder)
        curation = self.curation
        self._run_pick(request, list(curation.shown), curation.index)

    @work(thread=True, exclusive=True, group="pick")
    def _run_pick(self, request: PickRequest, shown: list[int], current: int | None) -> None:
        from boxnet_tui.batch_picking import pick_folder
        from boxnet_tui.io import layout
        from boxnet_tui.tui.screens.pick import choose_paths

        entries = self.session.entries
        unpicked = []
        if request.which == "unpicked":
            folder = self.session.folder
            unpicked = [
                i
                for i, e in enumerate(entries)
                if not layout.pick_path(folder, e.root, request.model).exists()
            ]
        paths = choose_paths(request.which, [e.path for e in entries], shown, current, unpicked)
        if not paths:
            self.call_from_thread(self.notify, "no micrographs to pick")
            return
        self.call_from_thread(self._pick_starts, request, len(paths))
        settings = request.settings()
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
                notice=lambda line: self.call_from_thread(self.notify, line),
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
        check = summary.scale_check
        if check is not None and check.factor != 1.0:
            message += f"; the network saw the particles at {check.factor:.2f}x (scale check)"
        note = summary.curated_note("ticking 'overwrite' in the pick form (P)")
        if note:
            message += f"; {note.replace('FOLDER', str(self.session.folder))}"
        severity = "warning" if summary.skipped_curated else "information"
        self.call_from_thread(self._job_done, message, severity)

    def _pick_starts(self, request: PickRequest, count: int) -> None:
        # show the new picks as they land
        if self.session.suffix != request.model:
            self.curation.switch_suffix(request.model)
        self.curation.show_job(f"picking {count} with {request.model}", count)

    def _picked_one(self, progress) -> None:
        # the total is less the curated ones skipped
        self.curation.job_progress(progress.done, progress.total)
        index = self.session.index_of(progress.current.stem) if progress.current else None
        if index is None or not progress.written:  # unchanged: keep its editor (and undo)
            return
        self.curation.picks_replaced(index)

    def action_cancel_job(self) -> None:
        if self.workers_in("pick"):
            self._job_cancelled = True
            self.notify("cancelling after the current micrograph…")

    def _job_done(self, message: str, severity: str) -> None:
        self.curation.hide_job()
        self.notify(message, severity=severity, timeout=8)  # type: ignore[arg-type]
        self.session.refresh_suffixes()

    # -- quitting ---------------------------------------------------------------------------
    async def action_quit(self) -> None:
        if self.workers_in("pick"):  # quitting stops it: the rest would keep their old picks
            from boxnet_tui.tui.screens.confirm import ConfirmScreen

            progress, total = self.curation.job_bar()
            done = f" ({progress:.0f} of {total:.0f} done)" if total else ""
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
        self.curation.save_position()
        self.cache.close()
        self.exit()
