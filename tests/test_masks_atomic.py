"""Junk masks and atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from boxnet_tui.errors import MaskError
from boxnet_tui.io import atomic
from boxnet_tui.io.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    folder_syncs_together,
)
from boxnet_tui.io.masks import read_mask, write_mask
from tests.conftest import snapshot


def test_mask_round_trip_is_8bit_lzw(tmp_path):
    mask = np.zeros((30, 40), bool)
    mask[5:10, 7:20] = True
    path = tmp_path / "mask" / "m.tif"
    write_mask(path, mask)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint8
        assert page.compression == tifffile.COMPRESSION.LZW
    np.testing.assert_array_equal(read_mask(path), mask)


def test_warp_style_mask_with_ones_reads_as_junk(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, np.eye(8, dtype=np.uint8))
    assert read_mask(path).sum() == 8


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "not a readable TIFF"), (b"II*\x00garbage", "corrupt")]
)
def test_bad_mask_one_line(tmp_path, content, message):
    path = tmp_path / "m.tif"
    path.write_bytes(content)
    with pytest.raises(MaskError, match=message) as caught:
        read_mask(path)
    assert str(path) in str(caught.value)


def test_missing_mask_and_wrong_dimensions(tmp_path):
    with pytest.raises(MaskError, match="no such mask file"):
        read_mask(tmp_path / "none.tif")
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(MaskError, match="one 2-D image"):
        read_mask(path)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failed_atomic_write_keeps_old_file(tmp_path):
    path = tmp_path / "picks.star"
    path.write_text("old")
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash while writing")
    assert snapshot(tmp_path) == before


def test_atomic_write_survives_kill_between_write_and_rename(tmp_path):
    """A writer killed at any moment leaves the old file or the new one, never a mix."""
    import subprocess
    import sys

    path = tmp_path / "picks.txt"
    path.write_text("old\n" * 1000)
    code = (
        "import os, sys\n"
        "from boxnet_tui.io.atomic import atomic_path\n"
        f"with atomic_path({str(path)!r}) as tmp:\n"
        "    tmp.write_text('new\\n' * 1000)\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)
    assert result.returncode == -9
    assert path.read_text() == "old\n" * 1000


def test_atomic_write_bytes_killed_before_the_rename_leaves_the_old_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "picks.star"
    path.write_text("old\n" * 1000)
    code = (
        "import os\n"
        "from boxnet_tui.io import atomic\n"
        "atomic.os.replace = lambda *a: os.kill(os.getpid(), 9)\n"
        f"atomic.atomic_write_bytes({str(path)!r}, b'new\\n' * 1000)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False)
    assert result.returncode == -9
    assert path.read_text() == "old\n" * 1000


def test_failed_atomic_write_bytes_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "picks.star"
    path.write_text("old")

    def refuse(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", refuse)
    with pytest.raises(OSError, match="space"):
        atomic_write_bytes(path, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["picks.star"]
    assert path.read_text() == "old"


def test_writes_in_one_block_sync_their_folder_once_at_its_end(tmp_path, monkeypatch):
    synced: list[str] = []
    monkeypatch.setattr(atomic, "_fsync_dir", lambda folder: synced.append(folder.name))
    atomic_write_text(tmp_path / "a.star", "1")
    assert synced == [tmp_path.name]  # alone: at once
    synced.clear()
    with folder_syncs_together():
        atomic_write_text(tmp_path / "a.star", "2")
        with folder_syncs_together():  # nested: the outer block syncs
            atomic_write_text(tmp_path / "b.star", "3")
        atomic_write_text(tmp_path / "other" / "c.star", "4")
        assert synced == []
        assert (tmp_path / "a.star").read_text() == "2"  # renamed already
    assert synced == [tmp_path.name, "other"]
    synced.clear()
    with pytest.raises(RuntimeError), folder_syncs_together():
        atomic_write_text(tmp_path / "a.star", "5")
        raise RuntimeError("the second write failed")
    assert synced == [tmp_path.name]  # what was renamed is made durable all the same


def test_atomic_write_keeps_mode_or_follows_umask(tmp_path):
    import os

    fresh = tmp_path / "new.star"
    old_umask = os.umask(0o022)
    try:
        atomic_write_text(fresh, "x")
    finally:
        os.umask(old_umask)
    assert fresh.stat().st_mode & 0o777 == 0o644
    shared = tmp_path / "shared.star"
    shared.write_text("x")
    shared.chmod(0o664)
    atomic_write_text(shared, "y")
    assert shared.stat().st_mode & 0o777 == 0o664


def test_a_mask_warps_picker_wrote_reads_right_side_up(tmp_path):
    """Warp writes every TIFF through Image.WriteTIFF: float, rows flipped, Orientation 4."""
    junk = np.zeros((24, 16), bool)
    junk[:6, :4] = True  # the micrograph's first rows (Warp's bottom)
    path = tmp_path / "mask" / "mic.tif"
    path.parent.mkdir()
    stored = junk[::-1].astype(np.float32)
    tifffile.imwrite(path, stored, compression="lzw", extratags=[(274, "H", 1, 4, True)])
    np.testing.assert_array_equal(read_mask(path), junk)
    write_mask(path, junk)  # and written back the same way
    np.testing.assert_array_equal(tifffile.imread(path) > 0, stored > 0)


def test_a_mask_boxnet_tui_wrote_before_the_flip_keeps_its_orientation(tmp_path):
    """Masks of earlier versions (rows as in memory, tifffile's description, no Orientation
    tag) must not turn upside down: a painted mask is never silently changed."""
    junk = np.zeros((24, 16), bool)
    junk[:6] = True
    path = tmp_path / "old.tif"
    tifffile.imwrite(path, np.where(junk, 255, 0).astype(np.uint8), compression="lzw")
    np.testing.assert_array_equal(read_mask(path), junk)
