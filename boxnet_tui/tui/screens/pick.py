"""The pick screen (`P`): which model, diameter, threshold, distance from junk, contrast
(inverted for negative stain or not) and micrographs to pick.

It only asks; the app runs the picking in a worker (``PickRequest``) with a progress bar under
the viewer, so the user keeps curating and sees each micrograph's picks as they land.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from boxnet_tui.errors import UserError
from boxnet_tui.model.info import DEFAULT_MODEL, list_models
from boxnet_tui.pick_options import min_mask_distance_from_text, trained_inverted
from boxnet_tui.picking import DIAMETER_RANGE, MAX_DIAMETER, MIN_DIAMETER, diameter_from_text
from boxnet_tui.scale_check import scale_factor_from_text

if TYPE_CHECKING:
    from boxnet_tui.batch_picking import PickSettings

WHICH = (
    ("all micrographs", "all"),
    ("the micrographs shown in the list (filter)", "shown"),
    ("micrographs without picks of this model", "unpicked"),
    ("only the current micrograph", "current"),
)


@dataclass
class PickRequest:
    model: str
    diameter: float
    threshold: float | None  # None: the model's calibrated default
    which: str
    device: str = "auto"
    overwrite_curated: bool = False  # else curated micrographs' picks are kept (skipped)
    min_mask_distance: float = 0.0  # Å kept from junk beyond the particle radius
    invert: bool | None = None  # None: as the model was trained (the form always says)
    scale_factor: float | None = None  # None: a generic model's is checked on the folder

    def settings(self) -> PickSettings:
        """The core's settings of this request (imports torch: call it in the worker)."""
        from boxnet_tui.batch_picking import PickSettings

        return PickSettings(
            diameter=self.diameter,
            threshold=self.threshold,
            min_mask_distance=self.min_mask_distance,
            invert=self.invert,
            scale_factor=self.scale_factor,
        )


class PickScreen(ModalScreen[PickRequest | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "start", "start")]

    def __init__(self, diameter: float, model: str = DEFAULT_MODEL, curated: int = 0) -> None:
        """``curated``: how many micrographs of the folder are marked curated."""
        super().__init__()
        self.diameter = diameter
        self.model = model
        self.curated = curated
        self.inverted: dict[str, bool] = {}  # model name -> trained on inverted micrographs

    def on_mount(self) -> None:
        self.query_one("#diameter").focus()  # the field a user fills first has the keys

    def compose(self) -> ComposeResult:
        models = list_models()
        names = [m.name for m in models]
        self.inverted = {m.name: trained_inverted(m) for m in models}
        options = []
        for m in models:
            default = f"default threshold {m.threshold:.2f}" if m.threshold is not None else ""
            label = f"{m.name}{'  [mask]' if m.has_mask else ''}  {default}"
            options.append((Content(label), m.name))  # plain text: [mask] is no markup tag
        with VerticalScroll(classes="form", id="pick-form"):
            yield Static("[b]Pick micrographs[/b]  (ctrl+s starts, escape cancels)")
            yield Label("Model", classes="field-title")
            value = self.model if self.model in names else DEFAULT_MODEL
            yield Select(options, value=value, allow_blank=False, id="model")
            yield Label("A masking model also rewrites mask/<root>.tif", classes="info")
            yield Checkbox("Invert (negative stain: particles bright)",
                           value=self.inverted.get(value, False), id="invert")  # fmt: skip
            yield Label("ticked by default for a model trained on inverted micrographs",
                        classes="info")  # fmt: skip
            yield Label(f"Particle diameter (Å, {MIN_DIAMETER:g}–{MAX_DIAMETER:g})",
                        classes="field-title")  # fmt: skip
            yield Input(value=f"{self.diameter:g}", type="number", id="diameter")
            yield Label("Threshold (empty: the model's calibrated default)", classes="field-title")
            yield Input(value="", placeholder="default", id="threshold")
            yield Label("Which micrographs", classes="field-title")
            yield Select(WHICH, value="all", allow_blank=False, id="which")
            yield Label("Device", classes="field-title")
            yield Select([(d, d) for d in ("auto", "cpu", "cuda")], value="auto",
                         allow_blank=False, id="device")  # fmt: skip
            yield Label("Curated micrographs", classes="field-title")
            yield Label(_curated_text(self.curated), id="curated-info", classes="info")
            yield Checkbox("overwrite their picks too (backups in matching/.backup)",
                           id="overwrite_curated", disabled=not self.curated)  # fmt: skip
            # last: a Tab from the diameter still goes threshold, micrographs, device
            yield Label("Minimum distance from junk (Å beyond the particle radius)",
                        classes="field-title")  # fmt: skip
            yield Input(value="0", id="min_mask_distance")
            yield Label("Scale factor (empty: a generic model checks it on the folder; 1: the "
                        "stated size)", classes="field-title")  # fmt: skip
            yield Input(value="", placeholder="checked", id="scale_factor")
            yield Label("", id="pick-error", classes="error")
            with Horizontal(classes="row buttons"):
                yield Button("Start", variant="primary", id="start")
                yield Button("Cancel", id="cancel")

    def request(self) -> PickRequest | str:
        """The request, or why it cannot be made."""
        diameter = diameter_from_text(self.query_one("#diameter", Input).value)
        if diameter is None:
            return f"diameter: {DIAMETER_RANGE}"
        text = self.query_one("#threshold", Input).value.strip()
        threshold = None
        if text:
            try:
                threshold = float(text)
            except ValueError:
                threshold = float("nan")
            if not 0.0 <= threshold <= 1.0:
                return "threshold: a number from 0 to 1, or empty for the model's default"
        try:
            distance = min_mask_distance_from_text(
                self.query_one("#min_mask_distance", Input).value
            )
        except UserError as error:
            return str(error)
        try:
            factor = scale_factor_from_text(self.query_one("#scale_factor", Input).value)
        except UserError as error:
            return str(error)
        return PickRequest(
            str(self.query_one("#model", Select).value),
            diameter,
            threshold,
            str(self.query_one("#which", Select).value),
            str(self.query_one("#device", Select).value),
            self.query_one("#overwrite_curated", Checkbox).value,
            distance,
            self.query_one("#invert", Checkbox).value,
            factor,
        )

    def on_select_changed(self, event: Select.Changed) -> None:
        """Another model: the invert box shows what that model was trained on."""
        if event.select.id == "model":
            self.query_one("#invert", Checkbox).value = self.inverted.get(str(event.value), False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_start() if event.button.id == "start" else self.action_cancel()

    def action_start(self) -> None:
        request = self.request()
        if isinstance(request, str):
            self.query_one("#pick-error", Label).update(request)
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _curated_text(count: int) -> str:
    if not count:
        return "no micrograph is marked curated"
    if count == 1:
        return "1 micrograph is marked curated: its picks and mask are kept unless ticked below"
    return f"{count} micrographs are marked curated: their picks and masks are kept unless ticked"


def choose_paths(
    which: str, all_paths: list[Path], shown: list[int], current: int | None, unpicked: list[int]
) -> list[Path]:
    """The micrographs a request means, in folder order."""
    if which == "shown":
        indices = shown
    elif which == "current":
        indices = [] if current is None else [current]
    elif which == "unpicked":
        indices = unpicked
    else:
        indices = list(range(len(all_paths)))
    return [all_paths[i] for i in sorted(indices)]
