"""Issue 11.13: picks far outside the image (1e30) trapped Tab and could not be removed.

The cursor is kept in the image, so a pick beyond its right or bottom edge could never be
"on" the cursor: the next Tab went back to it for ever, and no key reached it to remove it.
Such a pick file is refused with one line at load (shown without picks, never written).
"""

from __future__ import annotations

import numpy as np
import pytest

from boxnet_tui.editing import MicrographEditor
from boxnet_tui.errors import UserError
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.pick_order import pick_at, reading_key, reading_order, step
from tests.conftest import snapshot

SHAPE = (1000, 800)  # rows, columns


def _editor(folder) -> MicrographEditor:
    return MicrographEditor(folder, "mic1", "BoxNet", "mic1.mrc", SHAPE, 4.0)


@pytest.mark.parametrize("far", ["1e30", "-1e30", "805", "1e300"])
def test_picks_outside_the_image_are_refused_with_one_line_at_load(tmp_path, far):
    path = tmp_path / "matching" / "mic1_BoxNet.star"
    path.parent.mkdir()
    path.write_text(
        f"data_\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n100 100\n{far} 500\n300 300\n"
    )
    before = snapshot(tmp_path)
    editor = _editor(tmp_path)
    assert editor.error is not None and "\n" not in editor.error
    assert "mic1_BoxNet.star: 1 of 3 picks outside the 800x1000 px image" in editor.error
    # Tab has nothing to be trapped on: every pick held can be sat on by the cursor
    shown = np.arange(len(editor.picks))
    order = reading_order(editor.picks.x, editor.picks.y, shown, 50.0)
    target = step(order, reading_key(order, 799.0, 999.0), 1)  # from the last pixel
    if target is not None:
        cursor = editor._clamp(float(editor.picks.x[target]), float(editor.picks.y[target]))
        assert pick_at(editor.picks.x, editor.picks.y, shown, *cursor) == target
    with pytest.raises(UserError, match="not changed until it is fixed"):
        editor.add(5, 5)
    assert snapshot(tmp_path) == before


def test_picks_at_the_very_edge_still_load_and_edit(tmp_path):
    picks = Picks([0.0, 799.5, -0.5], [999.4, 0.0, 10.0], [0.9, 0.8, 0.7])
    write_picks(tmp_path / "matching" / "mic1_BoxNet.star", picks, "mic1.mrc")
    editor = _editor(tmp_path)
    assert editor.error is None and len(editor.picks) == 3
    editor.add(5, 5)
    assert len(editor.picks) == 4
