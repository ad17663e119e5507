"""The curation edits: each on disk when it returns, undoable, never over a changed or bad file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import starfile

from boxnet_tui.editing import MicrographEditor
from boxnet_tui.errors import UserError
from boxnet_tui.io.masks import read_mask, write_mask
from boxnet_tui.io.star import Picks, read_picks, write_picks
from tests.conftest import snapshot

SHAPE = (1000, 800)  # rows, columns
PIXEL = 4.0  # Å/px: the mask is 500 x 400


def _editor(folder, picks: Picks | None = None, suffix: str = "BoxNet") -> MicrographEditor:
    if picks is not None:
        write_picks(folder / "matching" / f"mic1_{suffix}.star", picks, "mic1.mrc")
    return MicrographEditor(folder, "mic1", suffix, "mic1.mrc", SHAPE, PIXEL)


def _three() -> Picks:
    return Picks([100, 300, 500], [100, 300, 500], [0.9, 0.4, 0.7])


def _on_disk(editor: MicrographEditor) -> Picks:
    return read_picks(editor.pick_path)


def test_add_writes_the_star_at_once_with_a_certain_score(tmp_path):
    editor = _editor(tmp_path, _three())
    index = editor.add(250.4, 260.6)
    disk = _on_disk(editor)
    assert len(disk) == 4 and index == 3
    assert (disk.x[3], disk.y[3], disk.score[3]) == (250.4, 260.6, 1.0)
    # edited files carry Warp's angle columns
    assert "rlnAngleRot" in editor.pick_path.read_text()


def test_add_into_a_folder_without_picks_creates_the_file(tmp_path):
    editor = _editor(tmp_path, suffix="manual")
    assert len(editor.picks) == 0 and editor.error is None
    editor.add(10, 20)
    assert len(_on_disk(editor)) == 1
    assert not editor.notices  # nobody else changed it


def test_add_is_clamped_inside_the_micrograph(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.add(-50, 5000)
    disk = _on_disk(editor)
    assert (disk.x[-1], disk.y[-1]) == (0.0, SHAPE[0] - 1)


def test_remove_records_a_false_positive_and_undo_takes_it_back(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.remove(1, record=True)
    assert len(_on_disk(editor)) == 2
    fp = read_picks(editor.false_positives_path)
    assert (fp.x[0], fp.y[0]) == (300, 300)
    editor.undo()
    disk = _on_disk(editor)
    assert len(disk) == 3 and (disk.x[1], disk.y[1], disk.score[1]) == (300, 300, 0.4)
    assert len(read_picks(editor.false_positives_path)) == 0
    editor.redo()
    assert len(_on_disk(editor)) == 2
    assert len(read_picks(editor.false_positives_path)) == 1


def test_shift_remove_writes_no_false_positive(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.remove(0, record=False)
    assert len(_on_disk(editor)) == 2
    assert not editor.false_positives_path.exists()
    editor.undo()
    assert len(_on_disk(editor)) == 3 and not editor.false_positives_path.exists()


def test_false_positives_accumulate_and_undo_drops_only_its_own(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.remove(0)
    editor.remove(0)
    assert len(read_picks(editor.false_positives_path)) == 2
    editor.undo()
    fp = read_picks(editor.false_positives_path)
    assert len(fp) == 1 and fp.x[0] == 100


def test_moves_of_one_gesture_undo_together(tmp_path):
    editor = _editor(tmp_path, _three())
    for step in range(1, 4):
        editor.move(0, 100 + step * 10, 100, group=7)
        assert _on_disk(editor).x[0] == 100 + step * 10  # each step is on disk
    editor.move(0, 200, 200, group=8)
    editor.undo()
    assert _on_disk(editor).x[0] == 130
    editor.undo()
    assert _on_disk(editor).x[0] == 100
    editor.redo()
    assert _on_disk(editor).x[0] == 130


def test_undo_and_redo_replay_a_mixed_sequence(tmp_path):
    editor = _editor(tmp_path, _three())
    original = _on_disk(editor).xy.copy()
    editor.add(50, 60)
    editor.remove(2)
    editor.move(0, 111, 222)
    after = _on_disk(editor).xy.copy()
    for _ in range(3):
        editor.undo()
    np.testing.assert_array_equal(_on_disk(editor).xy, original)
    assert editor.undo() is None  # nothing left
    for _ in range(3):
        editor.redo()
    np.testing.assert_array_equal(_on_disk(editor).xy, after)
    assert editor.redo() is None


def test_a_new_edit_clears_redo(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.add(1, 1)
    editor.undo()
    editor.add(2, 2)
    assert not editor.can_redo


def test_nearest_ignores_hidden_picks_and_far_ones(tmp_path):
    editor = _editor(tmp_path, _three())
    assert editor.nearest(305, 295, within=20) == 1
    assert editor.nearest(305, 295, within=20, threshold=0.5) is None  # 0.4 is hidden
    assert editor.nearest(200, 200, within=20) is None


def test_a_file_changed_by_someone_else_is_reloaded_not_overwritten(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.add(10, 10)
    # another window adds a pick to the same file
    other = MicrographEditor(tmp_path, "mic1", "BoxNet", "mic1.mrc", SHAPE, PIXEL)
    other.add(700, 900)
    os.utime(editor.pick_path, ns=(1, 1))  # make sure the stamp differs on coarse clocks
    editor.add(20, 20)
    disk = _on_disk(editor)
    assert len(disk) == 6  # 3 + ours + theirs + ours again: nothing lost
    assert any("changed on disk" in notice for notice in editor.notices)
    assert not editor.can_undo or editor.undo() is not None


def test_an_unreadable_star_is_reported_and_never_written(tmp_path):
    path = tmp_path / "matching" / "mic1_BoxNet.star"
    path.parent.mkdir()
    path.write_text("data_\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\nabc def\n")
    before = snapshot(tmp_path)
    editor = _editor(tmp_path)
    assert editor.error is not None and "mic1_BoxNet.star" in editor.error
    with pytest.raises(UserError, match="not changed until it is fixed"):
        editor.add(5, 5)
    assert snapshot(tmp_path) == before


def test_an_unreadable_false_positives_file_stops_the_removal(tmp_path):
    editor = _editor(tmp_path, _three())
    editor.false_positives_path.write_text("garbage")
    before = _without_locks(snapshot(tmp_path))
    with pytest.raises(UserError, match="falsepositives"):
        editor.remove(0)
    assert _without_locks(snapshot(tmp_path)) == before and len(editor.picks) == 3


def test_brush_paints_at_8_angstrom_and_undoes_per_stroke(tmp_path):
    editor = _editor(tmp_path, _three())
    assert editor.mask() is None and editor.mask_shape == (500, 400)
    editor.paint(400, 500, 40.0, group=1)  # 40 Å = 5 mask px around mask (200, 250)
    editor.paint(420, 500, 40.0, group=1)
    mask = read_mask(editor.mask_path)
    assert mask.shape == (500, 400)
    assert mask[250, 200] and mask[250, 210] and not mask[250, 230] and not mask[200, 200]
    painted = int(mask.sum())
    editor.paint(420, 500, 40.0, junk=False, group=2)  # erase
    assert int(read_mask(editor.mask_path).sum()) < painted
    editor.undo()
    assert int(read_mask(editor.mask_path).sum()) == painted
    editor.undo()  # the whole first stroke
    assert not read_mask(editor.mask_path).any()
    editor.redo()
    assert int(read_mask(editor.mask_path).sum()) == painted


def test_a_stroke_of_many_dabs_is_written_once_and_paints_as_the_dabs_would(tmp_path, monkeypatch):
    one_by_one = _editor(tmp_path / "a", _three())
    points = [(300.0 + 10 * i, 500.0) for i in range(12)] + [(400.0, 100.0)]
    for x, y in points:
        one_by_one.paint(x, y, 40.0, group=1)
    stroke = _editor(tmp_path / "b", _three())
    writes = []
    save = stroke._save_mask
    monkeypatch.setattr(stroke, "_save_mask", lambda mask: (writes.append(1), save(mask)))
    stroke.paint_stroke(points, 40.0, group=1)
    assert len(writes) == 1
    painted = read_mask(stroke.mask_path)
    assert np.array_equal(painted, read_mask(one_by_one.mask_path)) and painted.any()
    stroke.paint_stroke(points, 40.0, group=1)  # nothing changes: nothing written
    assert len(writes) == 1
    stroke.paint_stroke(points[:3], 40.0, junk=False, group=2)
    assert len(writes) == 2 and read_mask(stroke.mask_path).sum() < painted.sum()
    stroke.undo()
    assert np.array_equal(read_mask(stroke.mask_path), painted)
    stroke.undo()
    assert not read_mask(stroke.mask_path).any()


def test_brush_keeps_an_existing_masks_own_size(tmp_path):
    write_mask(tmp_path / "mask" / "mic1.tif", np.zeros((100, 80), bool))
    editor = _editor(tmp_path, _three())
    editor.paint(400, 500, 8.0, group=1)  # centre of the micrograph
    mask = read_mask(editor.mask_path)
    assert mask.shape == (100, 80) and mask[50, 40]


def test_a_corrupt_mask_is_not_painted_over(tmp_path):
    (tmp_path / "mask").mkdir()
    (tmp_path / "mask" / "mic1.tif").write_bytes(b"not a tiff")
    editor = _editor(tmp_path, _three())
    before = _without_locks(snapshot(tmp_path))
    with pytest.raises(UserError, match="not painting over it"):
        editor.paint(10, 10, 40.0, group=1)
    assert _without_locks(snapshot(tmp_path)) == before


@pytest.mark.parametrize("edit", ["remove", "move"])
def test_an_edit_after_a_change_on_disk_lands_on_the_pick_that_was_shown(tmp_path, edit):
    editor = _editor(tmp_path, _three())
    index = editor.nearest(100, 100, within=10)
    assert index == 0
    # another program rewrites the file: the same picks in another order, one more
    os.utime(editor.pick_path, ns=(0, 0))  # a different stamp even within one clock tick
    write_picks(editor.pick_path, Picks([500, 300, 100, 7], [500, 300, 100, 7]), "mic1.mrc")
    if edit == "remove":
        editor.remove(index, record=True)
        assert list(_on_disk(editor).x) == [500, 300, 7]
        assert list(read_picks(editor.false_positives_path).x) == [100]
    else:
        editor.move(index, 50, 60)
        assert list(_on_disk(editor).x) == [500, 300, 50, 7]
        assert list(_on_disk(editor).y) == [500, 300, 60, 7]
    np.testing.assert_array_equal(editor.picks.xy, _on_disk(editor).xy)  # shows the merge
    editor.undo()
    assert list(_on_disk(editor).x) == [500, 300, 100, 7]
    assert list(_on_disk(editor).y) == [500, 300, 100, 7]


@pytest.mark.parametrize("edit", ["remove", "move"])
def test_an_edit_of_a_pick_another_window_removed_is_one_line_and_changes_nothing(tmp_path, edit):
    editor = _editor(tmp_path, _three())
    other = _editor(tmp_path)
    other.remove(0, record=False)  # the pick at (100, 100)
    before = _without_locks(snapshot(tmp_path))
    with pytest.raises(UserError, match="another window") as caught:
        if edit == "remove":
            editor.remove(0)
        else:
            editor.move(0, 40, 40)
    assert "\n" not in str(caught.value)
    assert _without_locks(snapshot(tmp_path)) == before
    assert list(editor.picks.x) == [300, 500]  # it shows the file as it is now


def test_undo_takes_back_only_this_windows_edit(tmp_path):
    editor = _editor(tmp_path, _three())
    other = _editor(tmp_path)
    editor.add(11, 12)
    other.add(21, 22)
    other.remove(0, record=True)
    editor.undo()  # its add, not the other window's
    assert sorted(_on_disk(editor).x) == [21, 300, 500]
    editor.redo()
    assert sorted(_on_disk(editor).x) == [11, 21, 300, 500]


def _interleaved(monkeypatch, file_name: str, other_edit) -> list[threading.Thread]:
    """Run ``other_edit`` (another window) just before this window renames ``file_name`` into
    place, after it has read and checked the file: the race of two windows editing at once."""
    real_replace = os.replace
    others: list[threading.Thread] = []

    def replace(src, dst):
        if not others and Path(dst).name == file_name:
            other = threading.Thread(target=other_edit)
            others.append(other)
            other.start()
            other.join(timeout=0.5)  # with the lock it waits for this window: the point
        real_replace(src, dst)

    monkeypatch.setattr("boxnet_tui.io.atomic.os.replace", replace)
    return others


def test_two_windows_adding_at_the_same_moment_keep_both_picks(tmp_path, monkeypatch):
    editor, other = _editor(tmp_path, _three()), _editor(tmp_path)
    others = _interleaved(monkeypatch, "mic1_BoxNet.star", lambda: other.add(700, 900))
    editor.add(10, 20)
    others[0].join(timeout=10)
    disk = _on_disk(editor)
    assert sorted(map(tuple, disk.xy.tolist())) == [
        (10, 20),
        (100, 100),
        (300, 300),
        (500, 500),
        (700, 900),
    ]
    np.testing.assert_array_equal(other.picks.xy, disk.xy)  # the later window shows both
    editor.reload_if_changed()
    np.testing.assert_array_equal(editor.picks.xy, disk.xy)
    assert editor.can_undo  # merging another window's edit keeps this window's history


def test_two_windows_removing_at_the_same_moment_record_both_false_positives(tmp_path, monkeypatch):
    editor, other = _editor(tmp_path, _three()), _editor(tmp_path)
    others = _interleaved(
        monkeypatch, "mic1_BoxNet_falsepositives.star", lambda: other.remove(2, record=True)
    )
    editor.remove(0, record=True)
    others[0].join(timeout=10)
    assert list(_on_disk(editor).x) == [300]
    assert sorted(read_picks(editor.false_positives_path).x) == [100, 500]


def _without_locks(files: dict[str, bytes]) -> dict[str, bytes]:
    """A snapshot without the (empty) lock files that serialise writers."""
    return {name: data for name, data in files.items() if not name.endswith(".lock")}


# -- what a STAR file holds besides coordinates is kept --------------------------------------
RELION_EXTRA = """
data_

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnClassNumber #3
_rlnAnglePsi #4
_rlnHelicalTubeID #5
_rlnAutopickFigureOfMerit #6
100.0 100.0 2 45.5 3 0.9
300.0 300.0 1 -90.0 3 0.4
500.0 500.0 2 12.25 4 0.7
"""

RELION_OPTICS = """
data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnImagePixelSize #3
opticsGroup1 1 1.06
opticsGroup2 2 1.06

data_particles

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnMicrographName #3
_rlnOpticsGroup #4
100.0 100.0 MotionCorr/mic1.mrc 2
300.0 300.0 MotionCorr/mic1.mrc 2
500.0 500.0 MotionCorr/mic1.mrc 1
"""


def _star_file(folder, text: str):
    path = folder / "matching" / "mic1_BoxNet.star"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_an_edit_keeps_every_column_and_gives_a_new_pick_neutral_values(tmp_path):
    path = _star_file(tmp_path, RELION_EXTRA)
    editor = _editor(tmp_path)
    editor.add(50, 60)
    editor.move(1, 310, 320)
    table = starfile.read(path)
    for column in ("rlnClassNumber", "rlnAnglePsi", "rlnHelicalTubeID"):
        assert column in table.columns
    assert list(table["rlnAnglePsi"]) == [45.5, -90.0, 12.25, 0.0]  # kept, a moved pick too
    assert list(table["rlnClassNumber"]) == [2, 1, 2, 0]
    assert list(table["rlnHelicalTubeID"]) == [3, 3, 4, 0]
    assert (table["rlnCoordinateX"][1], table["rlnCoordinateY"][1]) == (310, 320)
    assert table["rlnAutopickFigureOfMerit"].iloc[-1] == 1.0


def test_undoing_a_removal_brings_back_the_whole_row(tmp_path):
    path = _star_file(tmp_path, RELION_EXTRA)
    original = starfile.read(path)
    editor = _editor(tmp_path)
    editor.remove(1, record=True)
    assert list(starfile.read(path)["rlnAnglePsi"]) == [45.5, 12.25]
    editor.undo()
    back = starfile.read(path)
    assert list(back.columns)[: len(original.columns)] == list(original.columns)
    back = back[original.columns]  # edited files carry Warp's angle columns too
    assert sorted(map(tuple, back.to_numpy().tolist())) == sorted(
        map(tuple, original.to_numpy().tolist())
    )


def test_an_edit_keeps_the_optics_block_and_a_new_pick_takes_the_common_group(tmp_path):
    path = _star_file(tmp_path, RELION_OPTICS)
    editor = _editor(tmp_path)
    editor.add(50, 60)
    blocks = starfile.read(path, always_dict=True)
    assert list(blocks) == ["optics", "particles"]
    assert blocks["optics"]["rlnOpticsGroupName"].tolist() == ["opticsGroup1", "opticsGroup2"]
    particles = blocks["particles"]
    assert len(particles) == 4 and particles["rlnOpticsGroup"].tolist() == [2, 2, 1, 2]
    assert particles["rlnMicrographName"].iloc[-1] == "MotionCorr/mic1.mrc"


def test_a_single_row_block_becomes_a_loop_keeping_its_values(tmp_path):
    path = _star_file(
        tmp_path, "data_\n_rlnCoordinateX 5.0\n_rlnCoordinateY 6.0\n_rlnClassNumber 3\n"
    )
    editor = _editor(tmp_path)
    editor.add(50, 60)
    table = starfile.read(path)
    assert table["rlnCoordinateX"].tolist() == [5.0, 50.0]
    assert table["rlnClassNumber"].tolist() == [3, 0]


def test_two_blocks_of_one_name_are_shown_but_never_edited(tmp_path):
    _star_file(
        tmp_path,
        "data_a\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n\n"
        "data_a\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n3 4\n",
    )
    before = _without_locks(snapshot(tmp_path))
    editor = _editor(tmp_path)
    with pytest.raises(UserError, match="two data blocks named 'a'") as caught:
        editor.add(50, 60)
    assert "\n" not in str(caught.value)
    assert _without_locks(snapshot(tmp_path)) == before


@pytest.mark.parametrize("edit", ["add", "remove", "move", "paint"])
def test_a_failed_write_is_one_message_and_leaves_memory_as_the_disk(tmp_path, monkeypatch, edit):
    editor = _editor(tmp_path, _three())
    before = _without_locks(snapshot(tmp_path))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("boxnet_tui.editing.write_star_document", full_disk)
    monkeypatch.setattr("boxnet_tui.editing.write_mask", full_disk)
    actions = {
        "add": lambda: editor.add(10, 10),
        "remove": lambda: editor.remove(0, record=False),
        "move": lambda: editor.move(0, 20, 20),
        "paint": lambda: editor.paint(100, 100, 64.0, group=1),
    }
    with pytest.raises(UserError, match="cannot save \\(No space left on device\\)"):
        actions[edit]()
    assert _without_locks(snapshot(tmp_path)) == before
    assert list(editor.picks.x) == [100, 300, 500] and editor.mask() is None
    assert not editor.can_undo
