"""The export screen (`E`): curated picks as Warp's training-example TIFF, with a progress bar.

Writes ``<folder>/boxnet2training/<name>.tif`` (Warp's place for it) through the same core
function as ``boxnet-tui export``: the micrographs marked curated (all when none is, or when
asked), the picks at or above the pick set's display threshold (the one the app shows it at;
the form says which, and how many picks that takes). What a choice takes is read in a worker.

The values are an :class:`ExportForm` the app keeps for the session: closed and opened again,
the form shows what was chosen and typed. The file name, until one is typed, says what the
file holds: ``<pick set>_<n>curated`` or ``<pick set>_<n>micrographs`` (see
:func:`default_name`), never a bare pick-set name that reads as a model's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Select, Static

from boxnet_tui import retrain_form
from boxnet_tui.errors import UserError
from boxnet_tui.io.examples import examples_path
from boxnet_tui.model.info import check_name
from boxnet_tui.picking import DIAMETER_RANGE, MAX_DIAMETER, MIN_DIAMETER, diameter_from_text

if TYPE_CHECKING:
    from boxnet_tui.training.export import Selection

NONE = "none"


@dataclass
class ExportForm:
    """The export form's values as the user left them (the app keeps one for the session)."""

    diameter: str
    positives: str | None = None
    extra_important: str | None = None
    uncertain: str | None = None
    train_masking: bool = False
    invert: bool = False
    all_micrographs: bool = False
    name: str = ""
    name_typed: bool = False  # False: the name is default_name's and follows the choices


def default_name(folder: Path, suffix: str, chosen: Selection) -> str:
    """What the file holds: ``BoxNet_3curated`` (3 curated micrographs of pick set BoxNet) or
    ``manual_16micrographs`` (all 16, none marked curated or all asked for); ``_2``, ``_3``
    ... when such a file is already in boxnet2training/ (a default never replaces a file).

    Not the pick set's name alone: for a set picked by a model that is the model's name, and
    ``BoxNet.tif`` beside the models reads as one of them.
    """
    count = len(chosen.micrographs)
    kind = "curated" if chosen.curated and not chosen.all_micrographs else "micrographs"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", suffix).strip("._-")[:48] or "examples"
    name = f"{stem}_{count}{kind}"
    taken = examples_path(folder, name).parent
    number = 1
    while (taken / f"{name if number == 1 else f'{name}_{number}'}.tif").exists():
        number += 1
    return name if number == 1 else f"{name}_{number}"


class ExportScreen(ModalScreen[Path | None]):
    """Dismisses with the written file, or None."""

    BINDINGS = [Binding("escape", "cancel", "close"), Binding("ctrl+s", "start", "export")]

    def __init__(self, folder: Path, diameter: float, form: ExportForm | None = None) -> None:
        """``form``: the values to start from (kept, and updated as the user changes them)."""
        super().__init__()
        self.folder = folder
        self.form = form if form is not None else ExportForm(f"{diameter:g}")
        self.choices = retrain_form.star_choices(folder)
        self.running = False
        self._default = ""  # the name default_name gave for the choices shown

    def on_mount(self) -> None:
        self.query_one("#positives").focus()  # the field a user fills first has the keys
        self._refresh_info()

    def compose(self) -> ComposeResult:
        form = self.form
        positives = [(c.label, str(c.path)) for c in retrain_form.positive_choices(self.choices)]
        optional = [("none", NONE), *[(c.label, str(c.path)) for c in self.choices]]

        def offered(value: str | None, options: list[tuple[str, str]], blank: object) -> object:
            """``value`` if it is still offered (the file may be gone since), else ``blank``."""
            return value if value in {v for _, v in options} else blank

        with VerticalScroll(classes="form", id="export-form"):
            yield Static("[b]Export training examples[/b]  (ctrl+s exports, escape closes)")
            yield Label("Positive examples", classes="field-title")
            yield Select(positives, value=offered(form.positives, positives, Select.NULL),
                         id="positives")  # fmt: skip
            yield Label("", id="positives-info", classes="info")
            yield Checkbox("all micrographs (off: those marked curated with c; all when none is)",
                           value=form.all_micrographs, id="all_micrographs")  # fmt: skip
            yield Label("Extra important locations", classes="field-title")
            yield Select(optional, value=offered(form.extra_important, optional, NONE),
                         allow_blank=False, id="extra_important")  # fmt: skip
            yield Label("Uncertain locations", classes="field-title")
            yield Select(optional, value=offered(form.uncertain, optional, NONE),
                         allow_blank=False, id="uncertain")  # fmt: skip
            yield Label(f"Particle diameter (Å, {MIN_DIAMETER:g}–{MAX_DIAMETER:g})",
                        classes="field-title")  # fmt: skip
            yield Input(value=form.diameter, type="number", id="diameter")
            yield Checkbox("junk labels from mask/<root>.tif", value=form.train_masking,
                           id="train_masking")  # fmt: skip
            yield Checkbox("invert (negative stain: particles bright)", value=form.invert,
                           id="invert")  # fmt: skip
            yield Label("File name (in boxnet2training/; what it holds, until you type one)",
                        classes="field-title")  # fmt: skip
            yield Input(value=form.name if form.name_typed else "",
                        placeholder="e.g. MyProtein_5curated", id="out")  # fmt: skip
            yield Label("", id="export-error", classes="error")
            yield ProgressBar(id="export-progress", show_eta=False)
            with Horizontal(classes="row buttons"):
                yield Button("Export", variant="primary", id="start")
                yield Button("Close", id="cancel")

    def on_select_changed(self, event: Select.Changed) -> None:
        self._read_form()
        if event.select.id == "positives":
            self._refresh_info()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._read_form()
        if event.checkbox.id == "all_micrographs":
            self._refresh_info()

    def on_input_changed(self, event: Input.Changed) -> None:
        name = event.value.strip()
        if event.input.id == "out" and (not name or name != self._default):
            self.form.name_typed = bool(name)  # emptied: the default again
        self._read_form()

    def _read_form(self) -> None:
        """Keep what the form shows in ``self.form``, so that it outlives the screen."""
        form = self.form
        form.positives = self._selected("positives")
        form.extra_important = self._selected("extra_important")
        form.uncertain = self._selected("uncertain")
        form.diameter = self.query_one("#diameter", Input).value
        form.train_masking = self.query_one("#train_masking", Checkbox).value
        form.invert = self.query_one("#invert", Checkbox).value
        form.all_micrographs = self.query_one("#all_micrographs", Checkbox).value
        form.name = self.query_one("#out", Input).value.strip()

    def _refresh_info(self) -> None:
        positives = self._selected("positives")
        if positives is None:
            self.query_one("#positives-info", Label).update("")
            return
        self._describe(positives, self.query_one("#all_micrographs", Checkbox).value)

    @work(thread=True, exclusive=True, group="describe")
    def _describe(self, positives: str, all_micrographs: bool) -> None:
        """What the chosen positives take (read off the UI thread): counts and the default
        file name, or the problem."""
        form = retrain_form.RetrainForm(
            str(self.folder), positives=positives, all_micrographs=all_micrographs
        )
        name = ""
        try:
            suffix = retrain_form.matched_for(form, positives).suffix
            name = default_name(self.folder, suffix, retrain_form.selection(form))
            text = retrain_form.positives_text(form, "exported")
        except UserError as error:
            text = str(error)
        self.app.call_from_thread(self._described, text, name)

    def _described(self, text: str, name: str) -> None:
        if not self.is_attached:  # closed while the worker read
            return
        self.query_one("#positives-info", Label).update(text)
        out = self.query_one("#out", Input)
        if name and not self.form.name_typed:
            self._default = name
            out.value = name

    def _selected(self, key: str) -> str | None:
        value = self.query_one(f"#{key}", Select).value
        return None if value in (Select.NULL, NONE) else str(value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_start() if event.button.id == "start" else self.action_cancel()

    def action_cancel(self) -> None:
        if not self.running:
            self.dismiss(None)

    def action_start(self) -> None:
        if self.running:
            return
        error = self.query_one("#export-error", Label)
        positives = self._selected("positives")
        name = self.query_one("#out", Input).value.strip()
        diameter = diameter_from_text(self.query_one("#diameter", Input).value)
        if positives is None:
            error.update("choose the positive examples")
            return
        if diameter is None:
            error.update(f"diameter: {DIAMETER_RANGE}")
            return
        try:
            check_name(name)
        except UserError as problem:
            error.update(str(problem).replace("model name", "file name"))
            return
        out = examples_path(self.folder, name)  # boxnet3training/ in a Warp 2 folder
        error.update("")
        self.running = True
        options = {
            "extra_important": self._selected("extra_important"),
            "uncertain": self._selected("uncertain"),
            "train_masking": self.query_one("#train_masking", Checkbox).value,
            "invert": self.query_one("#invert", Checkbox).value,
            "all_micrographs": self.query_one("#all_micrographs", Checkbox).value,
        }
        self._export(positives, diameter, out, options)

    @work(thread=True, exclusive=True)
    def _export(self, positives: str, diameter: float, out: Path, options: dict) -> None:
        """The export, off the UI thread (it reads the widgets' values only from ``options``)."""
        from boxnet_tui.training.export import export_examples

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(self._progress, done, total)

        try:
            count = export_examples(
                self.folder, positives, diameter, out, progress=progress, **options
            )
        except UserError as problem:
            self.app.call_from_thread(self._finished, None, str(problem))
            return
        except Exception as problem:  # a bug or the machine: say it, keep the app
            self.app.call_from_thread(self._finished, None, f"export failed: {problem!r}")
            return
        self.app.call_from_thread(self._finished, out, f"wrote {count} micrographs to {out}")

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#export-progress", ProgressBar).update(total=total, progress=done)

    def _finished(self, out: Path | None, message: str) -> None:
        self.running = False
        self.query_one("#export-error", Label).update(message)
        if out is not None:
            self.form.name_typed = False  # the next export gets a name of its own, not this one
            self.app.notify(message)
            self.dismiss(out)
