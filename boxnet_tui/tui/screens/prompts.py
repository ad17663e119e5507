"""Small modal questions: which pick set to show, which particle diameter."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from boxnet_tui.picking import DIAMETER_RANGE, MAX_DIAMETER, MIN_DIAMETER, diameter_from_text


class SuffixScreen(ModalScreen[str | None]):
    """Choose one of the folder's pick sets; dismisses with the suffix or None."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(
        self, suffixes: list[str], current: str, title: str = "Pick set to show (newest first)"
    ) -> None:
        super().__init__()
        self.suffixes = suffixes
        self.current = current
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            options = [
                Option(s + ("  (shown)" if s == self.current else ""), id=s) for s in self.suffixes
            ]
            yield OptionList(*options, id="suffixes")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.current in self.suffixes:
            options.highlighted = self.suffixes.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class DiameterScreen(ModalScreen[float | None]):
    """Ask for the particle diameter in Å; refuses values outside Warp's range."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Particle diameter in Å ({MIN_DIAMETER:g}–{MAX_DIAMETER:g})")
            yield Input(value=f"{self.current:g}", id="diameter", type="number")
            yield Label("", id="diameter-error", classes="error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = diameter_from_text(event.value)
        if value is None:
            self.query_one("#diameter-error", Label).update(f"must be {DIAMETER_RANGE}")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
