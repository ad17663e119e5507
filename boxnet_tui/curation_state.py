"""What a curation session leaves behind in the folder, so the next SSH session resumes it.

``<folder>/boxnet-tui.json`` (beside ``matching/``) holds the curated marks, the display
threshold of each pick set, the last micrograph and cursor position, the pick set shown, the
particle diameter and the view settings (low-pass, contrast, Tab order).

One threshold per pick set (suffix) decides what is shown, trained and exported:
:func:`pick_set_threshold` is the rule, and the app, the forms and the CLI all ask it. A file
of an older version kept a threshold per micrograph; it loads with their highest as the
threshold of every pick set (nothing hidden then is trained now), and says so in one line.

Each change holds the file's write lock (``io.locking``) while it re-reads the file, applies
its one change and writes it back, so two windows on one folder do not wipe each other's marks.
The file travels with data folders and may be edited by hand: a value out of its range (NaN,
1e308, a zoom of -100000, a low-pass the keys do not offer) is replaced by its default, with
one warning line.
"""

from __future__ import annotations

import copy
import json
import math
import os
import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxnet_tui.display import CLIP_STEPS, LOWPASS_STEPS, MAX_ZOOM, DisplaySettings
from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.io.locking import locked
from boxnet_tui.names import path_name_problem
from boxnet_tui.picking import MAX_DIAMETER, MIN_DIAMETER

STATE_FILE = "boxnet-tui.json"
VERSION = 2  # 2: thresholds per pick set, view settings
MAX_POSITION = 1e6  # px: no micrograph is this wide; a larger position is damage
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 24  # a hostile value still makes one short line


def state_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / STATE_FILE


TAB_ORDERS = ("reading", "score")  # Tab: reading order, or lowest score first


@dataclass
class CurationState:
    curated: set[str] = field(default_factory=set)
    # pick set (suffix) -> display threshold; a set not listed has ``fallback_threshold``
    set_thresholds: dict[str, float] = field(default_factory=dict)
    fallback_threshold: float = 0.0  # 0, or what an older file's per-micrograph ones hid
    suffix: str | None = None
    diameter: float | None = None
    last_root: str | None = None
    last_position: tuple[float, float] | None = None
    zoom: int = 0
    display: DisplaySettings = field(default_factory=DisplaySettings)
    tab_by_score: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": VERSION,
            "curated": sorted(self.curated),
            "set_thresholds": dict(sorted(self.set_thresholds.items())),
            "suffix": self.suffix,
            "diameter": self.diameter,
            "last": {
                "micrograph": self.last_root,
                "position": list(self.last_position) if self.last_position else None,
                "zoom": self.zoom,
            },
            "view": {
                "lowpass": self.display.lowpass,
                "clip": self.display.clip,
                "tab_order": TAB_ORDERS[self.tab_by_score],
            },
        }
        if self.fallback_threshold:
            data["fallback_threshold"] = self.fallback_threshold
        return data

    @staticmethod
    def from_json(
        data: dict[str, Any], dropped: list[str] | None = None, notes: list[str] | None = None
    ) -> CurationState:
        """The state in ``data``; values that must not be used are left out and, with
        ``dropped``, described there (one phrase each); ``notes`` gets what an older file's
        values became."""
        dropped = dropped if dropped is not None else []
        notes = notes if notes is not None else []
        last = data.get("last") or {}
        root = last.get("micrograph")
        view = data.get("view") or {}
        if not isinstance(view, dict):
            raise ValueError("'view' is not an object")
        set_thresholds = _thresholds(data.get("set_thresholds") or {}, dropped, "set_thresholds")
        fallback = _fallback(data.get("fallback_threshold"), dropped)
        if "set_thresholds" not in data:  # an older file: a threshold per micrograph
            fallback = _per_micrograph(data.get("thresholds") or {}, dropped, notes)
        return CurationState(
            curated={str(root) for root in data.get("curated", [])},
            set_thresholds=set_thresholds,
            fallback_threshold=fallback,
            suffix=_suffix(data.get("suffix"), dropped),
            diameter=_diameter(data.get("diameter"), dropped),
            last_root=root if isinstance(root, str) else None,
            last_position=_position(last.get("position"), dropped),
            zoom=_zoom(last.get("zoom"), dropped),
            display=_display(view, dropped),
            tab_by_score=_tab_order(view.get("tab_order"), dropped),
        )


def pick_set_threshold(state: CurationState, suffix: str) -> float:
    """The display threshold of pick set ``suffix``: its picks below it are hidden in the app,
    and are neither trained nor exported. The one rule every caller asks."""
    return state.set_thresholds.get(suffix, state.fallback_threshold)


def stored_threshold(folder: str | os.PathLike[str], suffix: str) -> float:
    """:func:`pick_set_threshold` of ``suffix`` as the folder's state file has it now."""
    return pick_set_threshold(load_state(folder)[0], suffix)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (text, NaN, infinity, true/false, a list...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _thresholds(value: Any, dropped: list[str], key: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} is not an object")
    kept, bad = {}, []
    for root, threshold in value.items():
        number = _number(threshold)
        if number is not None and 0.0 <= number <= 1.0:
            kept[str(root)] = number
        else:
            bad.append(f"{_SHORT.repr(root)}: {_SHORT.repr(threshold)}")
    if bad:
        more = f" and {len(bad) - 2} more" if len(bad) > 2 else ""
        dropped.append(f"threshold not in 0–1 ({', '.join(bad[:2])}{more})")
    return kept


def _per_micrograph(value: Any, dropped: list[str], notes: list[str]) -> float:
    """The threshold of every pick set from an older file's per-micrograph ones: the highest,
    so that no pick hidden then is trained or exported now."""
    kept = _thresholds(value, dropped, "thresholds")
    values = sorted(set(kept.values()))
    if not values or values[-1] == 0.0:
        return 0.0
    was = f"{values[0]:.2f}–{values[-1]:.2f}" if len(values) > 1 else f"{values[-1]:.2f}"
    notes.append(
        f"display thresholds were per micrograph ({was}), now one per pick set: "
        f"{values[-1]:.2f} for each until changed with [ and ]"
    )
    return values[-1]


def _fallback(value: Any, dropped: list[str]) -> float:
    if value is None:
        return 0.0
    number = _number(value)
    if number is not None and 0.0 <= number <= 1.0:
        return number
    dropped.append(f"fallback_threshold {_SHORT.repr(value)} not in 0–1")
    return 0.0


def _display(view: dict[str, Any], dropped: list[str]) -> DisplaySettings:
    """The low-pass and contrast of ``view``: only the steps the keys offer."""
    default = DisplaySettings()
    lowpass, clip = default.lowpass, default.clip
    if "lowpass" in view:
        value = view["lowpass"]
        number = None if value is None else _number(value)
        if (value is None or number is not None) and number in LOWPASS_STEPS:
            lowpass = number
        else:
            steps = ", ".join("none" if s is None else f"{s:g}" for s in LOWPASS_STEPS)
            dropped.append(f"lowpass {_SHORT.repr(value)} not one of {steps} Å")
    if "clip" in view:
        value = view["clip"]
        number = _number(value)
        if number is not None and number in CLIP_STEPS:
            clip = number
        else:
            steps = ", ".join(f"{s:g}" for s in CLIP_STEPS)
            dropped.append(f"clip {_SHORT.repr(value)} not one of {steps} %")
    return DisplaySettings(lowpass, clip)


def _tab_order(value: Any, dropped: list[str]) -> bool:
    if value is None or value == TAB_ORDERS[0]:
        return False
    if value == TAB_ORDERS[1]:
        return True
    dropped.append(f"tab_order {_SHORT.repr(value)} not {' or '.join(TAB_ORDERS)}")
    return False


def _diameter(value: Any, dropped: list[str]) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if number is not None and MIN_DIAMETER <= number <= MAX_DIAMETER:
        return number
    dropped.append(f"diameter {_SHORT.repr(value)} not in {MIN_DIAMETER:g}–{MAX_DIAMETER:g} Å")
    return None


def _position(value: Any, dropped: list[str]) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        x, y = _number(value[0]), _number(value[1])
        if x is not None and y is not None and 0 <= x <= MAX_POSITION and 0 <= y <= MAX_POSITION:
            return (x, y)
    dropped.append(f"position {_SHORT.repr(value)} not two pixel coordinates in 0–{MAX_POSITION:g}")
    return None


def _zoom(value: Any, dropped: list[str]) -> int:
    if value is None:
        return 0
    number = _number(value)
    if number is not None and number.is_integer() and 0 <= number <= MAX_ZOOM:
        return int(number)
    # 2**zoom is computed for every frame: a huge one never ends, a negative one divides by 0
    dropped.append(f"zoom {_SHORT.repr(value)} not a whole number in 0–{MAX_ZOOM}")
    return 0


def _suffix(value: Any, dropped: list[str]) -> str | None:
    """The pick set shown last; one that is no single path component is never used: the file
    travels with data folders, and the suffix becomes part of the files written."""
    if value is None or value == "":
        return None
    problem = path_name_problem(value)
    if problem is None:
        return value
    dropped.append(f"suffix {str(value)[:48]!r} ignored ({problem})")
    return None


def load_state(folder: str | os.PathLike[str]) -> tuple[CurationState, str | None]:
    """The folder's saved state and, when the file is damaged or values in it were left out,
    a one-line warning."""
    state, warning = _read_state(folder)
    return state or CurationState(), warning


def _read_state(folder: str | os.PathLike[str]) -> tuple[CurationState | None, str | None]:
    """The saved state (None when the file is damaged) and a one-line warning, if any."""
    path = state_path(folder)
    dropped: list[str] = []
    notes: list[str] = []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        state = CurationState.from_json(data, dropped, notes)
    except FileNotFoundError:
        return CurationState(), None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        return None, f"{path}: unreadable curation state ({error}); starting afresh"
    parts = [f"{'; '.join(dropped)}; using the default"] if dropped else []
    return state, f"{path}: {'; '.join(parts + notes)}" if parts or notes else None


def save_state(folder: str | os.PathLike[str], state: CurationState) -> None:
    """Write ``state`` atomically."""
    atomic_write_text(state_path(folder), json.dumps(state.to_json(), indent=1) + "\n")


class StateStore:
    """The state of one folder; every setter merges into the file as it is on disk now."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.state, self.warning = load_state(folder)
        self.error: str | None = None  # the last failed write, for the user

    def _update(self, change: Callable[[CurationState], None]) -> None:
        """Apply ``change`` to this session's state and to the file as it is on disk now."""
        change(self.state)
        try:
            # the lock spans read, change and write: another window's change between our read
            # and our rename would otherwise be written over
            with locked(state_path(self.folder)):
                fresh, _ = _read_state(self.folder)
                if fresh is None:  # unreadable now: build on what this session knows
                    fresh = copy.deepcopy(self.state)
                else:
                    change(fresh)
                save_state(self.folder, fresh)
            self.error = None
        except OSError as error:
            self.error = f"{state_path(self.folder)}: cannot save curation state ({error})"
            return
        # show what other windows marked and set too; the view (suffix, position, low-pass,
        # contrast, Tab order) stays this window's
        self.state.curated = set(fresh.curated)
        self.state.set_thresholds = dict(fresh.set_thresholds)
        self.state.fallback_threshold = fresh.fallback_threshold

    def set_curated(self, root: str, curated: bool) -> None:
        def change(state: CurationState) -> None:
            (state.curated.add if curated else state.curated.discard)(root)

        self._update(change)

    def set_threshold(self, suffix: str, threshold: float) -> None:
        """The display threshold of pick set ``suffix`` (clamped to 0–1)."""
        threshold = round(min(1.0, max(0.0, threshold)), 4)
        self._update(lambda state: state.set_thresholds.__setitem__(suffix, threshold))

    def set_position(self, root: str, position: tuple[float, float], zoom: int) -> None:
        def change(state: CurationState) -> None:
            state.last_root, state.last_position, state.zoom = root, position, zoom

        self._update(change)

    def set_view(self, *, suffix: str | None = None, diameter: float | None = None) -> None:
        def change(state: CurationState) -> None:
            if suffix is not None:
                state.suffix = suffix
            if diameter is not None:
                state.diameter = diameter

        self._update(change)

    def set_display(self, display: DisplaySettings, tab_by_score: bool) -> None:
        """The view settings of this folder: low-pass, contrast and Tab order."""

        def change(state: CurationState) -> None:
            state.display, state.tab_by_score = display, tab_by_score

        self._update(change)
