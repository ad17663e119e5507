"""The package's own public example set: made once, lazily readable, used by a run."""

from __future__ import annotations

from boxnet_tui.io.examples import ExampleFile
from boxnet_tui.training.public_set import ensure_public_set, public_set_dir, resolve_public_set


def test_made_once_in_home_and_readable_lazily():
    seen = []
    folder = ensure_public_set(count=2, progress=lambda done, total: seen.append((done, total)))
    assert folder == public_set_dir()
    assert seen == [(1, 2), (2, 2)]
    files = sorted(folder.glob("*.tif"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    examples = ExampleFile(files[0])
    assert len(examples) == 2
    example = examples[1]
    assert example.image.shape == example.label.shape
    assert (example.label == 1).any()
    assert ensure_public_set(count=2) == folder
    assert files[0].stat().st_mtime_ns == stamp  # not made again


def test_resolve_choices(tmp_path):
    assert resolve_public_set(None) is None
    assert resolve_public_set("none") is None
    assert resolve_public_set(str(tmp_path)) == str(tmp_path)
