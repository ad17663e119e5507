"""What a curation session leaves behind in the folder, so the next SSH session resumes it.

``<folder>/boxnet-tui.json`` (beside ``matching/``) holds the curated marks, the display
threshold of each micrograph, the last micrograph and cursor position, the pick set shown and
the particle diameter. Each change re-reads the file and merges into it, so two windows on one
folder do not wipe each other's marks.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boxnet_tui.io.atomic import atomic_write_text
from boxnet_tui.names import path_name_problem

STATE_FILE = "boxnet-tui.json"
VERSION = 1


def state_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / STATE_FILE


@dataclass
class CurationState:
    curated: set[str] = field(default_factory=set)
    thresholds: dict[str, float] = field(default_factory=dict)
    suffix: str | None = None
    diameter: float | None = None
    last_root: str | None = None
    last_position: tuple[float, float] | None = None
    zoom: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "curated": sorted(self.curated),
            "thresholds": dict(sorted(self.thresholds.items())),
            "suffix": self.suffix,
            "diameter": self.diameter,
            "last": {
                "micrograph": self.last_root,
                "position": list(self.last_position) if self.last_position else None,
                "zoom": self.zoom,
            },
        }

    @staticmethod
    def from_json(data: dict[str, Any], dropped: list[str] | None = None) -> CurationState:
        """The state in ``data``; values that must not be used are left out and, with
        ``dropped``, described there (one phrase each)."""
        last = data.get("last") or {}
        position = last.get("position")
        return CurationState(
            curated={str(root) for root in data.get("curated", [])},
            thresholds={str(k): float(v) for k, v in (data.get("thresholds") or {}).items()},
            suffix=_suffix(data.get("suffix"), dropped if dropped is not None else []),
            diameter=float(data["diameter"]) if data.get("diameter") else None,
            last_root=last.get("micrograph"),
            last_position=(float(position[0]), float(position[1])) if position else None,
            zoom=int(last.get("zoom") or 0),
        )


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        state = CurationState.from_json(data, dropped)
    except FileNotFoundError:
        return CurationState(), None
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        return None, f"{path}: unreadable curation state ({error}); starting afresh"
    return state, f"{path}: {'; '.join(dropped)}; using the default" if dropped else None


def save_state(folder: str | os.PathLike[str], state: CurationState) -> None:
    """Write ``state`` atomically."""
    atomic_write_text(state_path(folder), json.dumps(state.to_json(), indent=1) + "\n")


class StateStore:
    """The state of one folder; every setter merges into the file as it is on disk now."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.state, self.warning = load_state(folder)
        self.error: str | None = None  # the last failed write, for the user

    def _update(self, change: Any) -> None:
        fresh, _ = _read_state(self.folder)
        if fresh is None:  # unreadable now: build on what this session knows, never on nothing
            fresh = copy.deepcopy(self.state)
        change(fresh)
        change(self.state)
        try:
            save_state(self.folder, fresh)
            self.error = None
        except OSError as error:
            self.error = f"{state_path(self.folder)}: cannot save curation state ({error})"

    def set_curated(self, root: str, curated: bool) -> None:
        def change(state: CurationState) -> None:
            (state.curated.add if curated else state.curated.discard)(root)

        self._update(change)

    def set_threshold(self, root: str, threshold: float) -> None:
        self._update(lambda state: state.thresholds.__setitem__(root, round(threshold, 4)))

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
