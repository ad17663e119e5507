"""Collecting training examples from a curated folder (Warp's suffix matching) and exporting."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from boxnet_tui.errors import UserError
from boxnet_tui.io.examples import examples_path, read_examples
from boxnet_tui.io.masks import write_mask
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.training.export import (
    collect_examples,
    count_picks,
    export_examples,
    training_selection,
    training_set,
)
from boxnet_tui.training.labels import JUNK, PARTICLE
from tests.conftest import snapshot

SHAPE = (64, 80)  # at 8 Å/px, so micrograph pixels are example pixels
DIAMETER = 160.0  # label disc radius max(1.5, 160 / 8 / 8) = 2.5 px; D/2 = 10 px


def _mrc(path: Path, seed: int) -> None:
    data = np.random.default_rng(seed).normal(size=SHAPE).astype(np.float32)
    with mrcfile.new(path) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = 8.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """mic1, mic2, mic10; curated ("manual") picks for mic1 and mic10 only."""
    root = tmp_path / "input"
    root.mkdir()
    for seed, name in enumerate(("mic1", "mic2", "mic10")):
        _mrc(root / f"{name}.mrc", seed)
    write_picks(root / "matching" / "mic1_manual.star", Picks([20], [30]), "mic1.mrc")
    write_picks(root / "matching" / "mic10_manual.star", Picks([50, 60], [15, 40]), "mic10.mrc")
    write_picks(root / "matching" / "mic2_BoxNet.star", Picks([10], [10]), "mic2.mrc")
    return root


def test_suffix_matching_longest_root(folder):
    # mic10_manual.star: the suffix is "manual" (root mic10, not mic1 + "0_manual")
    examples = collect_examples(folder, folder / "matching" / "mic10_manual.star", DIAMETER)
    assert [e.name for e in examples] == ["mic1", "mic10"]
    for example in examples:
        assert example.image.shape == example.label.shape == example.importance.shape == SHAPE
        assert example.label.dtype == np.uint8
        assert abs(float(example.image.mean())) < 0.2
        np.testing.assert_array_equal(example.importance, 1.0)


def test_label_discs_at_picks(folder):
    mic1, mic10 = collect_examples(folder, folder / "matching" / "mic1_manual.star", DIAMETER)
    assert mic1.label[30, 20] == PARTICLE  # (row y, column x)
    assert mic1.label[30, 22] == PARTICLE and mic1.label[30, 23] == 0  # radius 2.5 px
    assert set(np.unique(mic1.label)) == {0, PARTICLE}
    # one disc of radius 2.5: the 21 pixels within 2.5 of the centre
    assert np.count_nonzero(mic1.label) == 21
    assert mic10.label[15, 50] == PARTICLE and mic10.label[40, 60] == PARTICLE
    assert np.count_nonzero(mic10.label) == 42
    assert mic10.label[30, 20] == 0  # mic1's pick is not mic10's


def test_extra_important_and_uncertain(folder, tmp_path):
    # each option STAR is matched in its own directory, and only where the micrograph has one
    write_picks(tmp_path / "extra" / "mic1_fp.star", Picks([40], [32]), "mic1.mrc")
    write_picks(tmp_path / "extra" / "mic10_fp.star", Picks([10], [10]), "mic10.mrc")
    write_picks(tmp_path / "unsure" / "mic10_u.star", Picks([60], [40]), "mic10.mrc")
    write_picks(tmp_path / "unsure" / "mic2_u.star", Picks([5], [5]), "mic2.mrc")
    mic1, mic10 = collect_examples(
        folder,
        folder / "matching" / "mic1_manual.star",
        DIAMETER,
        extra_important=tmp_path / "extra" / "mic10_fp.star",
        uncertain=tmp_path / "unsure" / "mic2_u.star",
    )
    assert mic1.importance[32, 40] == 4.0 and mic1.importance[32, 49] == 4.0
    assert mic1.importance[32, 51] == 1.0  # beyond D/2 = 10 px
    assert mic10.importance[10, 10] == 4.0
    assert mic10.importance[40, 60] == 0.0 and mic10.importance[40, 69] == 0.0
    assert mic10.label[40, 60] == PARTICLE  # uncertain changes importance, not the label
    assert set(np.unique(mic1.importance)) == {1.0, 4.0}
    _, _, extra, unsure = training_set(
        folder,
        folder / "matching" / "mic1_manual.star",
        extra_important=tmp_path / "extra" / "mic1_fp.star",
        uncertain=tmp_path / "unsure" / "mic10_u.star",
    )
    assert set(extra) == {"mic1", "mic10"} and set(unsure) == {"mic10"}  # mic2 not trained


def test_masking_refused_when_a_mask_is_missing(folder):
    positives = folder / "matching" / "mic1_manual.star"
    mask = np.zeros(SHAPE, bool)
    mask[0:10, 0:12] = True
    write_mask(folder / "mask" / "mic1.tif", mask)
    write_mask(folder / "mask" / "mic2.tif", mask)  # not a training micrograph: irrelevant
    with pytest.raises(UserError, match=r"1 of 2 have none.*: mic10$") as caught:
        collect_examples(folder, positives, DIAMETER, train_masking=True)
    assert "\n" not in str(caught.value)
    write_mask(folder / "mask" / "mic10.tif", mask)
    mic1, mic10 = collect_examples(folder, positives, DIAMETER, train_masking=True)
    assert (mic1.label[0:10, 0:12] == JUNK).all() and np.count_nonzero(mic1.label == JUNK) == 120
    assert mic1.label[30, 20] == PARTICLE
    assert np.count_nonzero(mic10.label == JUNK) == 120
    # without masking the masks are ignored
    plain = collect_examples(folder, positives, DIAMETER)
    assert not (plain[0].label == JUNK).any()


def test_masking_lists_three_names_and_the_count(folder):
    for name in ("mic3", "mic4", "mic5"):
        _mrc(folder / f"{name}.mrc", 9)
        write_picks(folder / "matching" / f"{name}_manual.star", Picks([9], [9]), f"{name}.mrc")
    with pytest.raises(UserError) as caught:
        collect_examples(folder, folder / "matching" / "mic1_manual.star", 160, train_masking=True)
    assert str(caught.value).endswith(
        "5 of 5 have none in " + str(folder / "mask") + ": mic1, mic3, mic4 and 2 more"
    )


def test_bad_input(folder, tmp_path):
    positives = folder / "matching" / "mic1_manual.star"
    with pytest.raises(UserError, match="no such positives STAR"):
        collect_examples(folder, folder / "matching" / "mic7_manual.star", DIAMETER)
    with pytest.raises(UserError, match="does not start with the name of any micrograph"):
        collect_examples(folder, positives, DIAMETER, uncertain=_star(tmp_path / "other.star"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no micrographs"):
        collect_examples(empty, positives, DIAMETER)
    with pytest.raises(UserError, match="diameter"):
        collect_examples(folder, positives, 0)
    # a training micrograph that cannot be read stops everything, naming it
    (folder / "mic10.mrc").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match=r"mic10\.mrc"):
        collect_examples(folder, positives, DIAMETER)
    # ... but one that is not trained on does not matter
    (folder / "matching" / "mic10_manual.star").unlink()
    assert len(collect_examples(folder, positives, DIAMETER)) == 1


def _star(path: Path) -> Path:
    write_picks(path, Picks([1], [1]), "other.mrc")
    return path


def test_export_writes_warps_file_and_keeps_old_on_error(folder):
    positives = folder / "matching" / "mic10_manual.star"
    out = examples_path(folder, "MyModel")
    seen: list[tuple[int, int]] = []
    count = export_examples(
        folder, positives, DIAMETER, out, progress=lambda done, total: seen.append((done, total))
    )
    assert count == 2 and seen == [(0, 2), (1, 2), (2, 2)]
    collected = collect_examples(folder, positives, DIAMETER)
    back = read_examples(out)
    for original, read in zip(collected, back, strict=True):
        np.testing.assert_array_equal(read.image, original.image)
        np.testing.assert_array_equal(read.label, original.label)
        np.testing.assert_array_equal(read.importance, original.importance)
    before = snapshot(folder)
    (folder / "mic1.mrc").write_bytes(b"garbage")
    before["mic1.mrc"] = b"garbage"
    with pytest.raises(UserError, match=r"mic1\.mrc"):
        export_examples(folder, positives, DIAMETER, out)
    assert snapshot(folder) == before


# --------------------------------------------------------------------------- data safety


def _mark(folder: Path, *roots: str) -> None:
    from boxnet_tui.curation_state import StateStore

    store = StateStore(folder)
    for root in roots:
        store.set_curated(root, True)


def test_curated_marks_choose_the_micrographs_trained_and_exported(folder):
    """Issue 12.1: with micrographs marked curated, only those are examples (unless told all)."""
    positives = folder / "matching" / "mic1_manual.star"
    _mark(folder, "mic10")
    assert [e.name for e in collect_examples(folder, positives, DIAMETER)] == ["mic10"]
    everything = collect_examples(folder, positives, DIAMETER, all_micrographs=True)
    assert [e.name for e in everything] == ["mic1", "mic10"]
    out = examples_path(folder, "Curated")
    assert export_examples(folder, positives, DIAMETER, out) == 1
    assert len(read_examples(out)) == 1
    selection = training_selection(folder, positives)
    assert selection.micrographs == ("mic10",) and selection.text == "1 curated micrograph of 2"
    selection = training_selection(folder, positives, all_micrographs=True)
    assert selection.micrographs == ("mic1", "mic10")
    assert selection.text == "all 2 micrographs (1 of them curated)"


def test_no_curated_marks_is_warps_rule(folder):
    selection = training_selection(folder, folder / "matching" / "mic1_manual.star")
    assert selection.micrographs == ("mic1", "mic10")
    assert selection.text == "2 micrographs (none marked curated: all are used)"


def test_curated_micrographs_without_these_picks_are_refused(folder):
    _mark(folder, "mic2")  # curated, but it has only BoxNet picks
    with pytest.raises(UserError, match="none of the 1 curated micrograph has picks"):
        collect_examples(folder, folder / "matching" / "mic1_manual.star", DIAMETER)


def test_hidden_picks_are_neither_trained_nor_exported(folder):
    """Issue 12.3: a pick below its pick set's display threshold is not a positive."""
    from boxnet_tui.curation_state import StateStore

    picks = Picks([20, 50], [30, 40], [0.9, 0.2])
    write_picks(folder / "matching" / "mic1_manual.star", picks, "mic1.mrc")
    StateStore(folder).set_threshold("manual", 0.5)
    StateStore(folder).set_threshold("BoxNet", 0.95)  # another set's: not this one's
    positives = folder / "matching" / "mic1_manual.star"
    mic1, _ = collect_examples(folder, positives, DIAMETER)
    assert mic1.label[30, 20] == PARTICLE and mic1.label[40, 50] == 0
    assert np.count_nonzero(mic1.label) == 21
    out = examples_path(folder, "Shown")
    export_examples(folder, positives, DIAMETER, out)
    assert read_examples(out)[0].label[40, 50] == 0
    selection = training_selection(folder, positives)
    assert selection.threshold == 0.5 and selection.thresholds == {"mic1": 0.5, "mic10": 0.5}
    assert count_picks(selection) == (3, 1)  # mic1: 1 shown, 1 hidden; mic10: 2, no score
    assert count_picks(training_selection(folder, positives, threshold=0.0)) == (4, 0)


def test_a_falsepositives_star_is_never_positives(folder):
    """Issue 12.4."""
    removed = folder / "matching" / "mic1_manual_falsepositives.star"
    write_picks(removed, Picks([5], [5]), "mic1.mrc")
    with pytest.raises(UserError, match="removed picks, never positives"):
        collect_examples(folder, removed, DIAMETER)
    # still good as extra-important locations (Warp's use of it)
    examples = collect_examples(
        folder, folder / "matching" / "mic1_manual.star", DIAMETER, extra_important=removed
    )
    assert examples[0].importance[5, 5] == 4.0


def test_the_job_collects_exactly_the_configured_micrographs(folder):
    from boxnet_tui.training.job import collect_new
    from boxnet_tui.training.runs import RunConfig

    picks = Picks([20, 50], [30, 40], [0.9, 0.2])
    write_picks(folder / "matching" / "mic1_manual.star", picks, "mic1.mrc")
    positives = str(folder / "matching" / "mic1_manual.star")
    config = RunConfig(
        "Net", str(folder), positives, diameter=DIAMETER, micrographs=["mic1"], thresholds={}
    )
    (mic1,) = collect_new(config)
    assert mic1.name == "mic1" and mic1.label[40, 50] == PARTICLE
    config.thresholds = {"mic1": 0.5}
    (mic1,) = collect_new(config)
    assert mic1.label[40, 50] == 0
    _mark(folder, "mic10")  # marks made after the run was created change nothing
    assert [e.name for e in collect_new(config)] == ["mic1"]
    # a run made before the config listed micrographs takes what the marks say now
    legacy = RunConfig("Old", str(folder), positives, diameter=DIAMETER)
    assert [e.name for e in collect_new(legacy)] == ["mic10"]


def test_a_damaged_curation_state_is_not_taken_for_no_marks(folder):
    """Unknown marks are not "no marks": training on every micrograph needs asking for it."""
    (folder / "boxnet-tui.json").write_text("{ not json")
    positives = folder / "matching" / "mic1_manual.star"
    with pytest.raises(UserError, match="cannot tell which micrographs are curated") as caught:
        training_selection(folder, positives)
    assert "\n" not in str(caught.value)
    assert training_selection(folder, positives, all_micrographs=True).micrographs == (
        "mic1",
        "mic10",
    )
