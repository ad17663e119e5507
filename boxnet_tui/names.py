"""Names that become part of a path: pick suffixes, model and run names, file names.

One rule for all of them, wherever they come from (the command line, a form,
``boxnet-tui.json``, ``model.json``, a run's ``config.json``): a name is one path component
of sane length, so whatever is written under it stays inside its folder.
"""

from __future__ import annotations

import re
import reprlib
import unicodedata

from boxnet_tui.errors import UserError

MAX_BYTES = 128  # with "<root>_" and "_falsepositives.star" still under NAME_MAX (255)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SHORT = reprlib.Repr()
_SHORT.maxstring = 48  # a huge or hostile value still makes one short line


def path_name_problem(value: object) -> str | None:
    """Why ``value`` cannot be one path component, or None when it can."""
    if not isinstance(value, str):
        return "must be text"
    if not value:
        return "must not be empty"
    if "/" in value or "\\" in value:
        return "must not contain / or \\"
    if value in (".", ".."):
        return "must not be . or .."
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        return "must not contain control characters"
    if len(value.encode("utf-8")) > MAX_BYTES:
        return f"too long (at most {MAX_BYTES} bytes)"
    return None


def is_path_name(value: object) -> bool:
    """Whether ``value`` may be one path component (for forms and filters)."""
    return path_name_problem(value) is None


def check_path_name(value: object, what: str) -> str:
    """``value`` if it may be one path component.

    Raises:
        UserError: one line, ``<what> '<value>': <why>``.
    """
    problem = path_name_problem(value)
    if problem is not None:
        raise UserError(f"{what} {_SHORT.repr(value)}: {problem}")
    assert isinstance(value, str)
    return value


def check_model_name(value: object, what: str = "model name") -> str:
    """A model (and run) name: a path name of letters, digits and ``_ . -`` only."""
    name = check_path_name(value, what)
    if not MODEL_NAME.fullmatch(name):
        raise UserError(
            f"{what} {_SHORT.repr(name)}: use letters, digits, '_', '.', '-' only (up to 64, "
            "starting with a letter or digit)"
        )
    return name
