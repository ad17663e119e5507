"""The retraining form (`r`): every option of Warp's dialog, checked as it is typed.

Each change re-reads the form and asks the core (``retrain_form.check``) what is wrong; the
reason shows under its field and Start stays disabled until nothing is. Start makes the run
and launches it detached (it outlives the app and the SSH session), then dismisses with the
run's name so the app can open its monitor.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from boxnet_tui import retrain_form
from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.model.info import list_models
from boxnet_tui.retrain_form import RetrainForm
from boxnet_tui.training.run_config import HOLD_OUT_MINIMUM

NONE = "none"
HOLD_OUT = (
    f"Hold out one micrograph for a check (of {HOLD_OUT_MINIMUM} or more, the last is scored "
    "at the end, not trained on)"
)


class RetrainScreen(ModalScreen[str | None]):
    """Dismisses with the started run's name, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "start", "start")]

    def __init__(self, form: RetrainForm, *, curating: str | None = None) -> None:
        """``form``: the values to start from; the app keeps it for the session, so a form
        closed and opened again shows what was typed. ``curating``: the pick set being
        curated, chosen as the positives when none is."""
        super().__init__()
        self.form = form
        self.choices = retrain_form.star_choices(form.folder)
        self.starting = False
        # the base the invert box last followed: the Select reports its first value on mount,
        # and a box the user set must survive that (and closing and opening the form)
        self._followed_base = form.base
        # a kept choice whose files are gone since is no choice (nor a value Select accepts)
        positives = {str(c.path) for c in retrain_form.positive_choices(self.choices)}
        offered = {str(c.path) for c in self.choices}
        if form.positives not in positives and not form.positives_path.strip():
            form.positives = None
        for key in ("extra_important", "uncertain"):
            if getattr(form, key) not in offered:
                setattr(form, key, None)
        in_matching = [c for c in self.choices if c.path.parent.name == layout.MATCHING]
        for choice in in_matching:
            if form.positives is None and choice.suffix == curating:
                form.positives = str(choice.path)

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        form = self.form
        models = [  # plain text: [mask] is no markup tag
            (Content(f"{m.name}  [mask]" if m.has_mask else m.name), m.name) for m in list_models()
        ]
        if form.base not in {name for _, name in models} and models:
            form.base = models[0][1]  # a kept choice of a model removed since
        offered = [(c.label, str(c.path)) for c in self.choices]
        positives = [(c.label, str(c.path)) for c in retrain_form.positive_choices(self.choices)]
        optional = [("none", NONE), *offered]
        with VerticalScroll(id="retrain", classes="form"):
            yield Static("[b]Retrain a BoxNet[/b]  (ctrl+s starts, escape cancels)")
            yield from self._field("Base model (the masking ones marked)", "base")
            yield Select(models, value=form.base, allow_blank=False, id="base", compact=True)
            yield from self._field("New model name", "name")
            yield Input(value=form.name, placeholder="e.g. MyProteinMaskNet", id="name",
                        compact=True)  # fmt: skip
            yield from self._field("Positive examples (curated picks)", "positives")
            listed = form.positives in {value for _, value in positives}
            yield Select(positives, value=form.positives if listed else Select.NULL, id="positives",
                         compact=True)  # fmt: skip
            yield from self._field("Extra important locations (x4 weight)", "extra_important")
            yield Select(optional, value=form.extra_important or NONE, id="extra_important",
                         allow_blank=False, compact=True)  # fmt: skip
            yield from self._field("Uncertain locations (ignored in training)", "uncertain")
            yield Select(optional, value=form.uncertain or NONE, id="uncertain",
                         allow_blank=False, compact=True)  # fmt: skip
            yield from self._field("Particle diameter (Å, 10–700)", "diameter")
            yield Input(value=form.diameter, type="number", id="diameter", compact=True)
            yield from self._field("Public example set (1:1 dilution; 'auto' = built in)",
                                   "public_folder")  # fmt: skip
            with Horizontal(classes="row"):
                yield Checkbox("off", value=form.public_set, id="public_set", compact=True)
                yield Input(value=form.public_folder, id="public_folder", compact=True)
            yield from self._field("Train masking (junk from mask/<root>.tif)", "train_masking")
            yield Checkbox("off", value=form.train_masking, id="train_masking",
                           compact=True)  # fmt: skip
            yield from self._field("Iterations (empty: Warp's rule)", "iterations")
            yield Input(value=form.iterations, id="iterations", compact=True)
            yield from self._field("Device", "device")
            yield Select([(d, d) for d in retrain_form.DEVICES], value=form.device,
                         allow_blank=False, id="device", compact=True)  # fmt: skip
            # last, so that the fields above keep their Tab order (scripts and habits rely on it)
            yield from self._field("Micrographs (off: those marked curated with c; all when "
                                   "none is)", "all_micrographs")  # fmt: skip
            yield Checkbox("curated only", value=form.all_micrographs, id="all_micrographs",
                           compact=True)  # fmt: skip
            yield from self._field("Invert (negative stain: particles bright)", "invert")
            yield Checkbox("off", value=form.invert, id="invert", compact=True)
            yield from self._field(HOLD_OUT, "hold_out")
            yield Checkbox("on", value=form.hold_out, id="hold_out", compact=True)
            yield Label("Positives from another folder (a STAR file's path; over the choice "
                        "above)", classes="field-title")  # fmt: skip
            yield Input(value=form.positives_path, placeholder="e.g. ~/picks/mic1_manual.star",
                        id="positives_path", compact=True)  # fmt: skip
            with Horizontal(classes="row buttons"):
                yield Button("Start", variant="primary", id="start", disabled=True)
                yield Button("Cancel", id="cancel")
            yield Label("", id="form-status")

    @staticmethod
    def _field(title: str, key: str) -> ComposeResult:
        yield Label(title, classes="field-title")
        # empty until there is something to say: hidden, so the form fits a small terminal
        yield Label("", id=f"{key}-info", classes="info").set_styles("display: none;")
        yield Label("", id=f"{key}-error", classes="error").set_styles("display: none;")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self.refresh_form()

    # -- reading and checking -------------------------------------------------------------
    def read_form(self) -> RetrainForm:
        form = self.form

        def selected(key: str) -> str | None:
            value = self.query_one(f"#{key}", Select).value
            return None if value in (Select.NULL, NONE) else str(value)

        form.base = selected("base") or form.base
        form.name = self.query_one("#name", Input).value.strip()
        typed = self.query_one("#positives_path", Input).value.strip()
        form.positives_path = typed
        # a typed path is the positives; else the choice above
        typed_path = str(Path(typed).expanduser().absolute()) if typed else None
        form.positives = typed_path or selected("positives")
        form.extra_important = selected("extra_important")
        form.uncertain = selected("uncertain")
        form.diameter = self.query_one("#diameter", Input).value.strip()
        form.public_set = self.query_one("#public_set", Checkbox).value
        form.public_folder = self.query_one("#public_folder", Input).value.strip()
        form.train_masking = self.query_one("#train_masking", Checkbox).value
        form.all_micrographs = self.query_one("#all_micrographs", Checkbox).value
        form.invert = self.query_one("#invert", Checkbox).value
        form.hold_out = self.query_one("#hold_out", Checkbox).value
        form.iterations = self.query_one("#iterations", Input).value.strip()
        form.device = selected("device") or "auto"
        return form

    def refresh_form(self) -> dict[str, str]:
        """Re-check the form; show each problem and advice under its field."""
        form = self.read_form()
        problems = retrain_form.check(form)
        advice = retrain_form.warnings(form)
        keys = ("base", "name", "positives", "extra_important", "uncertain", "diameter",
                "public_folder", "train_masking", "iterations", "device", "invert")  # fmt: skip
        for key in keys:
            text = problems.get(key) or (f"⚠ {advice[key]}" if key in advice else "")
            _say(self.query_one(f"#{key}-error", Label), text)
        for key in ("positives", "extra_important", "uncertain"):
            _say(self.query_one(f"#{key}-info", Label), self._matched_text(key))
        have, total = retrain_form.mask_counts(form)
        _say(
            self.query_one("#train_masking-info", Label),
            f"{have} of {total} curated micrographs have a mask" if total else "",
        )
        self.query_one(
            "#iterations", Input
        ).placeholder = f"{retrain_form.default_iterations(form)} (Warp's rule)"
        self.query_one("#public_folder", Input).disabled = not form.public_set
        # the box's tick shows only in colour: say it in words too (tmux, monochrome)
        self.query_one("#public_set", Checkbox).label = "on" if form.public_set else "off"
        self.query_one("#train_masking", Checkbox).label = "on" if form.train_masking else "off"
        self.query_one("#all_micrographs", Checkbox).label = (
            "all micrographs" if form.all_micrographs else "curated only"
        )
        self.query_one("#invert", Checkbox).label = "on" if form.invert else "off"
        self.query_one("#hold_out", Checkbox).label = "on" if form.hold_out else "off"
        self.query_one("#start", Button).disabled = bool(problems) or self.starting
        return problems

    def _matched_text(self, key: str) -> str:
        value = getattr(self.form, key)
        if value is None:
            return ""
        if key == "positives":  # what is trained: the curated micrographs, the picks shown
            return retrain_form.positives_text(self.form)
        try:
            found = retrain_form.matched_for(self.form, value)
        except UserError:
            return ""
        return (
            f"suffix _{found.suffix}: {found.micrographs} micrographs, {found.particles} particles"
        )

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refresh_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "base" and event.value != self._followed_base:
            # another base chosen: the invert box starts as it was trained
            self._followed_base = event.value
            inverts = retrain_form.base_inverts(self.read_form())
            self.query_one("#invert", Checkbox).value = inverts
        self.refresh_form()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.refresh_form()

    # -- actions -----------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        if not self.starting:
            self.dismiss(None)

    def action_start(self) -> None:
        if self.starting or self.refresh_form():
            return
        self.starting = True
        self.query_one("#start", Button).disabled = True
        self.query_one("#form-status", Label).update("starting… (the first use makes the "
                                                     "built-in public set: a minute)")  # fmt: skip
        self._start(self.read_form())

    @work(thread=True, exclusive=True, name="start-run")
    def _start(self, form: RetrainForm) -> str | None:
        """The started run's name (None if it could not start; the form says why)."""
        from boxnet_tui.training import runs

        try:
            run = runs.create_run(retrain_form.to_config(form))
            runs.start_detached(run)
        except UserError as error:
            self.app.call_from_thread(self._failed, str(error))
            return None
        except Exception as error:  # a bug or the machine: say it, keep the app
            self.app.call_from_thread(self._failed, f"could not start: {error!r}")
            return None
        return run.name

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # dismissed once the worker is done: dismissing from inside it removed the screen
        # while the worker still ran, which cancelled it
        worker = event.worker
        if worker.name == "start-run" and event.state == WorkerState.SUCCESS and worker.result:
            self.dismiss(worker.result)

    def _failed(self, message: str) -> None:
        self.starting = False
        self.query_one("#form-status", Label).update(f"[red]{message}[/red]")
        self.refresh_form()


def _say(label: Label, text: str) -> None:
    """Show ``text`` in ``label``; an empty one takes no row."""
    label.update(text)
    label.display = bool(text)
