"""The retraining form's checks: each field's problem named, Warp's warnings, the run config."""

from __future__ import annotations

import numpy as np
import pytest

from boxnet_tui import retrain_form
from boxnet_tui.errors import UserError
from boxnet_tui.io.masks import write_mask
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.retrain_form import RetrainForm, check, to_config, warnings


def _folder(tmp_path, count=4):
    for i in range(count):
        write_micrograph(tmp_path / f"mic{i + 1}.mrc", np.zeros((64, 64), np.float32), 4.0)
        picks = Picks([10.0, 20.0], [10.0, 20.0])
        write_picks(tmp_path / "matching" / f"mic{i + 1}_manual.star", picks, f"mic{i + 1}.mrc")
        write_picks(tmp_path / "matching" / "training" / f"mic{i + 1}_manual.star", picks, "x")
    write_picks(tmp_path / "matching" / "mic1_manual_falsepositives.star", Picks([5.0], [5.0]), "x")
    return tmp_path


def _good(folder) -> RetrainForm:
    return RetrainForm(
        str(folder),
        name="MyNet",
        positives=str(folder / "matching" / "mic1_manual.star"),
        public_set=False,
    )


def test_star_choices_group_by_suffix_and_folder(tmp_path):
    folder = _folder(tmp_path)
    labels = [c.label for c in retrain_form.star_choices(folder)]
    assert labels == [
        "matching/*_manual.star  (4 micrographs)",
        "matching/*_manual_falsepositives.star  (1 micrographs)",
        "training/*_manual.star  (4 micrographs)",
    ]


def test_matched_counts_micrographs_and_particles(tmp_path):
    folder = _folder(tmp_path)
    found = retrain_form.matched(folder, folder / "matching" / "mic3_manual.star")
    assert (found.suffix, found.micrographs, found.particles) == ("manual", 4, 8)


def test_a_good_form_has_no_problems_and_warp_iterations(tmp_path):
    form = _good(_folder(tmp_path))
    assert check(form) == {}
    assert retrain_form.default_iterations(form) == 300  # 4 micrographs, one held out
    form.public_set = True
    assert retrain_form.default_iterations(form) == 600


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": ""}, "name", "give the new model a name"),
        ({"name": "my net!"}, "name", "letters, digits"),
        ({"name": "BoxNetMask"}, "name", "of its own"),
        ({"name": "BoxNet"}, "name", "exists already"),
        ({"positives": None}, "positives", "choose"),
        ({"diameter": "5"}, "diameter", "10 to 700"),
        ({"diameter": "abc"}, "diameter", "10 to 700"),
        ({"iterations": "0"}, "iterations", "at least 1"),
        ({"iterations": "1.5"}, "iterations", "whole number"),
        ({"public_set": True, "public_folder": "/no/such"}, "public_folder", "no such folder"),
        ({"base": "Nope"}, "base", "no model named"),
        ({"train_masking": True}, "train_masking", "4 of 4 micrographs have no mask"),
    ],
)
def test_each_problem_is_named_at_its_field(tmp_path, change, field, words):
    form = _good(_folder(tmp_path))
    for key, value in change.items():
        setattr(form, key, value)
    problems = check(form)
    assert field in problems and words in problems[field]


def test_a_star_whose_name_matches_no_micrograph(tmp_path):
    folder = _folder(tmp_path)
    stray = folder / "matching" / "other_manual.star"
    write_picks(stray, Picks([1.0], [1.0]), "other.mrc")
    form = _good(folder)
    form.extra_important = str(stray)
    assert "does not start with the name of any micrograph" in check(form)["extra_important"]


def test_empty_positives_are_refused(tmp_path):
    folder = _folder(tmp_path)
    for star in (folder / "matching").glob("*_manual.star"):
        write_picks(star, Picks(), "x")
    assert "no particles" in check(_good(folder))["positives"]


def test_masking_warnings_follow_warp(tmp_path):
    folder = _folder(tmp_path)
    for i in range(4):
        write_mask(folder / "mask" / f"mic{i + 1}.tif", np.zeros((32, 32), bool))
    form = _good(folder)
    form.train_masking, form.base = True, "BoxNet"
    assert check(form) == {}
    advice = warnings(form)
    assert "Mask" in advice["name"] and "masking base" in advice["base"]
    form.name, form.base = "MyMaskNet", "BoxNetMask"
    assert warnings(form) == {}


def test_to_config_carries_every_option(tmp_path):
    folder = _folder(tmp_path)
    form = _good(folder)
    form.iterations, form.device, form.diameter = "50", "cpu", "150"
    form.uncertain = str(folder / "matching" / "mic1_manual_falsepositives.star")
    config = to_config(form)
    assert (config.name, config.iterations, config.device, config.diameter) == (
        "MyNet",
        50,
        "cpu",
        150.0,
    )
    assert config.public_set is None and config.uncertain == form.uncertain
    form.name = ""
    with pytest.raises(UserError, match="name"):
        to_config(form)


def test_the_form_reads_the_folder_once_and_start_reads_it_afresh(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    form = _good(folder)
    reads: list[str] = []
    real = retrain_form.read_picks
    monkeypatch.setattr(retrain_form, "read_picks", lambda path: reads.append(path) or real(path))
    for typed in ("M", "My", "MyN", "MyNe", "MyNet"):  # a check on every key
        form.name = typed
        assert check(form) == {}
        retrain_form.default_iterations(form)
        retrain_form.mask_counts(form)
    assert len(reads) == 4  # each matched STAR once
    (folder / "matching" / "mic2_manual.star").write_text("not a star")
    assert check(form) == {}  # still the remembered reading
    with pytest.raises(UserError, match=r"unreadable STAR: mic2_manual\.star"):
        to_config(form)


# --------------------------------------------------------------------------- data safety


def _mark(folder, *roots):
    from boxnet_tui.curation_state import StateStore

    store = StateStore(folder)
    for root in roots:
        store.set_curated(root, True)


def test_the_run_config_lists_exactly_the_curated_micrographs(tmp_path):
    """Issue 12.1: 2 of 4 marked curated -> a config listing those 2, and Warp's rule on 2."""
    folder = _folder(tmp_path)
    _mark(folder, "mic2", "mic4")
    form = _good(folder)
    assert retrain_form.selection(form).text == "2 curated micrographs of 4"
    assert retrain_form.default_iterations(form) == 200  # 2 micrographs: none held out
    config = to_config(form)
    assert config.micrographs == ["mic2", "mic4"]
    form.all_micrographs = True
    assert retrain_form.selection(form).text == "all 4 micrographs (2 of them curated)"
    assert to_config(form).micrographs == ["mic1", "mic2", "mic3", "mic4"]


def test_without_curated_marks_every_micrograph_is_listed(tmp_path):
    form = _good(_folder(tmp_path))
    assert to_config(form).micrographs == ["mic1", "mic2", "mic3", "mic4"]
    assert "none marked curated" in retrain_form.positives_text(form)


def test_the_form_counts_picks_hidden_by_the_display_threshold(tmp_path):
    """Issue 12.3: the threshold shown is the one trained; the form says how many it hides."""
    from boxnet_tui.curation_state import StateStore

    folder = _folder(tmp_path)
    picks = Picks([10.0, 20.0, 30.0], [10.0, 20.0, 30.0], [0.9, 0.6, 0.1])
    write_picks(folder / "matching" / "mic1_manual.star", picks, "mic1.mrc")
    StateStore(folder).set_threshold("manual", 0.5)
    form = _good(folder)
    text = retrain_form.positives_text(form)
    assert "8 particles at or above the display threshold 0.50; 1 below it is not trained" in text
    assert to_config(form).thresholds == dict.fromkeys(["mic1", "mic2", "mic3", "mic4"], 0.5)


def test_falsepositives_are_never_offered_or_taken_as_positives(tmp_path):
    """Issue 12.4."""
    folder = _folder(tmp_path)
    labels = [c.label for c in retrain_form.positive_choices(retrain_form.star_choices(folder))]
    assert labels == [
        "matching/*_manual.star  (4 micrographs)",
        "training/*_manual.star  (4 micrographs)",
    ]
    form = _good(folder)
    form.positives = str(folder / "matching" / "mic1_manual_falsepositives.star")
    assert "never positives" in check(form)["positives"]


def test_positives_from_a_folder_outside_matching(tmp_path):
    """Warp: it doesn't matter where the curated STAR files are; they match by suffix."""
    folder = _folder(tmp_path / "mics")
    elsewhere = tmp_path / "picks"
    for i in range(3):
        write_picks(elsewhere / f"mic{i + 1}_mine.star", Picks([30.0], [30.0]), f"mic{i + 1}.mrc")
    form = _good(folder)
    form.positives_path = str(elsewhere / "nothing_here.star")
    assert check(form)["positives"] == f"{form.positives_path}: no such STAR file"
    form.positives_path = str(elsewhere / "mic1_mine.star")
    form.positives = form.positives_path
    assert check(form) == {}
    config = to_config(form)
    assert config.positives == form.positives_path and len(config.micrographs) == 3
