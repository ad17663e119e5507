"""Warp's folder layout: suffix matching, longest roots, available pick sets."""

from __future__ import annotations

import os

import numpy as np
import pytest

from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.io.star import Picks, write_picks


def test_longest_root_wins():
    roots = frozenset({"mic1", "mic10", "mic1_a"})
    assert layout.longest_root("mic10_manual", roots) == "mic10"
    assert layout.longest_root("mic1_manual", roots) == "mic1"
    assert layout.longest_root("mic1_a_manual", roots) == "mic1_a"
    assert layout.longest_root("mic1", roots) == "mic1"
    assert layout.longest_root("mic2_manual", roots) is None


def test_match_suffix_from_chosen_star(tmp_path):
    roots = ["Falcon_1", "Falcon_10"]
    chosen = tmp_path / "matching" / "Falcon_10_BoxNet2Mask_20180918.star"
    assert layout.match_suffix(chosen, roots) == ("Falcon_10", "BoxNet2Mask_20180918")
    with pytest.raises(UserError, match="does not start with the name of any micrograph"):
        layout.match_suffix(tmp_path / "other_manual.star", roots)


def test_paths_follow_warp_layout(tmp_path):
    assert layout.pick_path(tmp_path, "m", "manual") == tmp_path / "matching" / "m_manual.star"
    assert layout.false_positives_path(tmp_path, "m", "BoxNet") == (
        tmp_path / "matching" / "m_BoxNet_falsepositives.star"
    )
    assert layout.mask_path(tmp_path, "m") == tmp_path / "mask" / "m.tif"


def test_matched_files_and_available_suffixes(tmp_path):
    roots = ["mic1", "mic10", "mic2"]
    for root in ["mic1", "mic10"]:
        write_picks(layout.pick_path(tmp_path, root, "manual"), Picks([1.0], [1.0]), root)
    write_picks(layout.pick_path(tmp_path, "mic2", "BoxNet"), Picks([1.0], [1.0]), "mic2")
    write_picks(layout.false_positives_path(tmp_path, "mic1", "manual"), Picks(), "mic1")
    newer = layout.pick_path(tmp_path, "mic2", "BoxNet")
    os.utime(newer, (2e9, 2e9))
    (tmp_path / "matching" / "notes.txt").write_text("x")

    found = layout.matched_files(tmp_path / "matching", "manual", roots)
    assert sorted(found) == ["mic1", "mic10"]
    suffixes = layout.available_suffixes(tmp_path, roots)
    assert [(s.suffix, s.count) for s in suffixes] == [("BoxNet", 1), ("manual", 2)]


def test_available_suffixes_without_matching_folder(tmp_path):
    assert layout.available_suffixes(tmp_path, ["a"]) == []


def test_common_tail():
    assert layout.common_tail(["mic1_manual", "mic10_manual"]) == "_manual"
    assert layout.common_tail(["a_x_BoxNet", "b_y_BoxNet"]) == "_BoxNet"
    assert layout.common_tail(["a_b", "c_d"]) == ""
    assert layout.common_tail([]) == ""


@pytest.mark.parametrize("suffix", ["x/../../../outside/evil", "..", "a\x00b"])
def test_a_suffix_that_leaves_matching_is_refused(tmp_path, suffix):
    with pytest.raises(UserError, match=r"^pick suffix "):
        layout.pick_path(tmp_path, "m", suffix)
    with pytest.raises(UserError, match=r"^pick suffix "):
        layout.false_positives_path(tmp_path, "m", suffix)
    assert not any(tmp_path.iterdir())


def test_available_suffixes_skip_names_no_pick_set_may_have(tmp_path):
    write_picks(layout.pick_path(tmp_path, "mic1", "manual"), Picks([1.0], [1.0]), "mic1")
    (tmp_path / "matching" / "mic1_a\x01b.star").write_text("")
    suffixes = layout.available_suffixes(tmp_path, ["mic1"])
    assert [s.suffix for s in suffixes] == ["manual"]


def test_a_root_that_is_another_root_with_a_suffix_gives_the_picks_to_the_shorter(tmp_path):
    # mic.mrc beside mic_manual.mrc: mic_manual.star is mic's manual picks, not mic_manual's
    roots = frozenset({"mic", "mic_manual", "mic1"})
    assert layout.split_star_name("mic_manual.star", roots) == ("mic", "manual")
    assert layout.split_star_name("mic_manual_manual.star", roots) == ("mic_manual", "manual")
    assert layout.split_star_name("mic1.star", roots) == ("mic1", "")  # no shorter root: as before
    assert layout.match_suffix(tmp_path / "mic_manual.star", roots) == ("mic", "manual")

    from boxnet_tui.folder import describe
    from boxnet_tui.io.micrographs import write_micrograph

    for root in ("mic", "mic_manual"):
        write_micrograph(tmp_path / f"{root}.mrc", np.zeros((8, 8), np.float32), 1.0)
        write_picks(layout.pick_path(tmp_path, root, "manual"), Picks([1.0], [1.0]), root)
    files = {entry.root: entry.pick_files for entry in describe(tmp_path)}
    assert files["mic"] == {"manual": tmp_path / "matching" / "mic_manual.star"}
    assert files["mic_manual"] == {"manual": tmp_path / "matching" / "mic_manual_manual.star"}
