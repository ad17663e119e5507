"""The loss panel: the "new examples" and "old examples" curves of a training run (plotext)."""

from __future__ import annotations

from typing import Any

from textual.app import RenderResult
from textual_plotext import PlotextPlot

from boxnet_tui.run_monitor import NEW, OLD, curves, thin

COLORS = {NEW: "cyan", OLD: "orange"}
FALLBACK_WIDTH = 80  # cells, before the first layout


class LossPlot(PlotextPlot):
    """Holds a run's step records; every render thins them to the panel's width.

    Thinning at render time (not when records arrive) keeps the curves right after a resize.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.steps: list[dict[str, Any]] = []
        self.iterations: int | None = None

    def set_steps(self, steps: list[dict[str, Any]], iterations: int | None) -> None:
        """Show ``steps`` (the list is kept, not copied) on an x axis to ``iterations``."""
        self.steps = steps
        self.iterations = iterations
        self.refresh()

    def thinned(self) -> dict[str, tuple[list[float], list[float]]]:
        """The curves as drawn: at most two points a cell (braille dots are two a cell)."""
        width = self.size.width or FALLBACK_WIDTH
        return {label: thin(xs, ys, 2 * width) for label, (xs, ys) in curves(self.steps).items()}

    def render(self) -> RenderResult:
        plt = self.plt
        plt.clear_data()
        shown = self.thinned()
        for label, (xs, ys) in shown.items():
            plt.plot(xs, ys, label=label, marker="braille", color=COLORS[label])
        plt.title("loss" if shown else "loss (waiting for the first logged step)")
        plt.xlabel("iteration")
        if self.iterations:
            plt.xlim(0, self.iterations)
        return super().render()
