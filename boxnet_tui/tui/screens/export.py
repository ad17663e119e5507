"""The export screen (`E`): curated picks as Warp's training-example TIFF, with a progress bar.

Writes ``<folder>/boxnet2training/<name>.tif`` (Warp's place for it) through the same core
function as ``boxnet-tui export``: the micrographs marked curated (all when none is, or when
asked), the picks shown at their display thresholds. What a choice takes is read in a worker.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Select, Static

from boxnet_tui import retrain_form
from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.model.store import check_name
from boxnet_tui.picking import DIAMETER_RANGE, MAX_DIAMETER, MIN_DIAMETER, diameter_from_text

NONE = "none"


class ExportScreen(ModalScreen[Path | None]):
    """Dismisses with the written file, or None."""

    BINDINGS = [Binding("escape", "cancel", "close"), Binding("ctrl+s", "start", "export")]

    def __init__(self, folder: Path, diameter: float) -> None:
        super().__init__()
        self.folder = folder
        self.diameter = diameter
        self.choices = retrain_form.star_choices(folder)
        self.running = False

    def on_mount(self) -> None:
        self.query_one("#positives").focus()  # the field a user fills first has the keys

    def compose(self) -> ComposeResult:
        positives = [(c.label, str(c.path)) for c in retrain_form.positive_choices(self.choices)]
        optional = [("none", NONE), *[(c.label, str(c.path)) for c in self.choices]]
        with VerticalScroll(classes="form", id="export-form"):
            yield Static("[b]Export training examples[/b]  (ctrl+s exports, escape closes)")
            yield Label("Positive examples", classes="field-title")
            yield Select(positives, id="positives")
            yield Label("", id="positives-info", classes="info")
            yield Checkbox("all micrographs (off: those marked curated with c; all when none is)",
                           id="all_micrographs")  # fmt: skip
            yield Label("Extra important locations", classes="field-title")
            yield Select(optional, value=NONE, allow_blank=False, id="extra_important")
            yield Label("Uncertain locations", classes="field-title")
            yield Select(optional, value=NONE, allow_blank=False, id="uncertain")
            yield Label(f"Particle diameter (Å, {MIN_DIAMETER:g}–{MAX_DIAMETER:g})",
                        classes="field-title")  # fmt: skip
            yield Input(value=f"{self.diameter:g}", type="number", id="diameter")
            yield Checkbox("junk labels from mask/<root>.tif", id="train_masking")
            yield Label("File name (in boxnet2training/)", classes="field-title")
            yield Input(value="", placeholder="e.g. MyProtein", id="out")
            yield Label("", id="export-error", classes="error")
            yield ProgressBar(id="export-progress", show_eta=False)
            with Horizontal(classes="row buttons"):
                yield Button("Export", variant="primary", id="start")
                yield Button("Close", id="cancel")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "positives":
            self._refresh_info()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "all_micrographs":
            self._refresh_info()

    def _refresh_info(self) -> None:
        positives = self._selected("positives")
        if positives is None:
            self.query_one("#positives-info", Label).update("")
            return
        self._describe(positives, self.query_one("#all_micrographs", Checkbox).value)

    @work(thread=True, exclusive=True, group="describe")
    def _describe(self, positives: str, all_micrographs: bool) -> None:
        """What the chosen positives take (read off the UI thread): counts, or the problem."""
        form = retrain_form.RetrainForm(
            str(self.folder), positives=positives, all_micrographs=all_micrographs
        )
        suffix = None
        try:
            suffix = retrain_form.matched_for(form, positives).suffix
            retrain_form.selection(form)
            text = retrain_form.positives_text(form, "exported")
        except UserError as error:
            text = str(error)
        self.app.call_from_thread(self._described, text, suffix)

    def _described(self, text: str, suffix: str | None) -> None:
        if not self.is_attached:  # closed while the worker read
            return
        self.query_one("#positives-info", Label).update(text)
        out = self.query_one("#out", Input)
        if suffix and not out.value:
            out.value = suffix

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
        out = self.folder / layout.TRAINING / f"{name}.tif"
        error.update("")
        self.running = True
        options = {
            "extra_important": self._selected("extra_important"),
            "uncertain": self._selected("uncertain"),
            "train_masking": self.query_one("#train_masking", Checkbox).value,
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
            self.app.notify(message)
            self.dismiss(out)
