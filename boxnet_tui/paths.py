"""Where boxnet-tui keeps its own files: models, runs, scratch data.

``$BOXNET_TUI_HOME`` if set (tests point it at a temporary folder), else the platform's
user data folder. Nothing is ever written into the user's micrograph folders unasked.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_VARIABLE = "BOXNET_TUI_HOME"


def home() -> Path:
    """The boxnet-tui home folder (not created here)."""
    configured = os.environ.get(HOME_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("boxnet-tui", appauthor=False))


def models_dir() -> Path:
    return home() / "models"


def runs_dir() -> Path:
    return home() / "runs"


def scratch_dir() -> Path:
    return home() / "scratch"
