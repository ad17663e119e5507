"""The one file stamp: what changed, what is gone, and what an unreadable path counts as."""

from __future__ import annotations

import os

import pytest

from boxnet_tui.file_stamp import NEVER, file_stamp


def test_a_stamp_changes_with_an_atomic_rewrite_and_is_none_once_gone(tmp_path):
    path = tmp_path / "a.star"
    path.write_text("one")
    first = file_stamp(path)
    assert first is not None and first.size == 3 and first != NEVER
    assert file_stamp(path) == first  # looked at again, unchanged
    temporary = tmp_path / "a.star.tmp"
    temporary.write_text("two")  # same size, maybe the same mtime: a new inode tells
    os.replace(temporary, path)
    assert file_stamp(path) != first
    path.unlink()
    assert file_stamp(path) is None
    assert file_stamp(path, unreadable_is_gone=True) is None


def test_an_unreadable_path_is_raised_for_an_editor_and_gone_for_a_listing(tmp_path):
    too_long = tmp_path / ("x" * 5000)  # the system refuses to look: not "missing"
    with pytest.raises(OSError):
        file_stamp(too_long)
    assert file_stamp(too_long, unreadable_is_gone=True) is None
