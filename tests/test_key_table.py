"""One table of keys: the bindings, the `?` screen and the README's table all come from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from boxnet_tui.tui import key_table
from boxnet_tui.tui.screens.help import KEYS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_key_table_is_the_generated_one():
    """Edit key_table.py, then run `python -m boxnet_tui.tui.key_table README.md`."""
    assert key_table.readme_table(README.read_text()) == key_table.markdown()


def test_the_module_prints_the_table():
    printed = subprocess.run(
        [sys.executable, "-m", "boxnet_tui.tui.key_table"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == key_table.markdown() + "\n"


def test_the_help_screen_shows_every_row():
    assert [label for label, _ in KEYS] == [row.label for row in key_table.ROWS]


def test_each_key_is_bound_once_and_the_footer_keeps_its_order():
    bound = [name for b in key_table.bindings() for name in str(b.key).split(",")]
    assert len(bound) == len(set(bound))
    shown = [str(b.key).split(",")[0] for b in key_table.bindings() if b.show]
    assert shown == list(key_table.FOOTER)


def test_the_table_imports_no_textual():
    code = "import sys, boxnet_tui.tui.key_table; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_rewriting_the_readme_replaces_only_the_table(tmp_path):
    readme = tmp_path / "README.md"
    old = f"{key_table.BEGIN}\n\n| keys | what they do |\n| --- | --- |\n| `z` | old |\n\n"
    readme.write_text(f"before\n\n{old}{key_table.END}\n\nafter\n")
    key_table.rewrite_readme(readme)
    text = readme.read_text()
    assert text.startswith("before\n\n") and text.endswith("\n\nafter\n")
    assert key_table.readme_table(text) == key_table.markdown()


def test_every_bound_action_exists_where_it_is_sent():
    """A renamed method would leave its key doing nothing, silently."""
    from boxnet_tui.tui.app import BoxnetApp
    from boxnet_tui.tui.screens.curation import CurationScreen

    for key in key_table.all_keys():
        name = key.action.split("(")[0]
        owner = BoxnetApp if name.startswith("app.") else CurationScreen
        assert callable(getattr(owner, "action_" + name.removeprefix("app."), None)), key
