"""The scale check: a generic model's input scale chosen on the folder before picking."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from boxnet_tui.batch_picking import (
    PickSettings,
    check_scale,
    checks_scale,
    load_picker,
    pick_folder,
)
from boxnet_tui.cli import main
from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.model.store import find_model, shipped_models_dir
from boxnet_tui.pick_log import PickRecipe, read_record
from boxnet_tui.scale_check import (
    CHECK_FACTORS,
    CHECK_MICROGRAPHS,
    ScaleCheck,
    Share,
    check_scale_factor,
    choose_factor,
    decisive_share,
    sample,
)
from boxnet_tui.synth import make_dataset

SHIPPED = shipped_models_dir()
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "BoxNetMask").is_dir(), reason="no shipped weights yet"
)


def test_the_factors_run_from_a_half_octave_down_to_one_up_and_hold_one():
    assert 1.0 in CHECK_FACTORS and list(CHECK_FACTORS) == sorted(CHECK_FACTORS)
    ratios = np.array(CHECK_FACTORS[1:]) / np.array(CHECK_FACTORS[:-1])
    assert np.allclose(ratios, 2 ** (1 / 6), atol=2e-3)
    assert CHECK_FACTORS[0] == pytest.approx(2**-0.5, abs=1e-3)
    assert CHECK_FACTORS[-1] == pytest.approx(2**0.5, abs=1e-3)


def test_decisive_share_pools_every_micrographs_peaks():
    scores = [np.array([0.9, 0.2, 0.5]), np.array([0.45]), np.array([])]
    share = decisive_share(scores, 0.45)  # at the threshold counts
    assert (share.decisive, share.peaks, share.value) == (3, 4, 0.75)
    assert share.standard_error == pytest.approx((0.75 * 0.25 / 4) ** 0.5)
    assert decisive_share([], 0.5) == Share(0, 0) and Share(0, 0).value == 0.0
    assert decisive_share([np.array([])], 0.5).standard_error == 0.0


def test_the_largest_share_wins_and_near_ties_go_to_the_stated_scale():
    many = 10_000  # a standard error of at most 0.005
    clear = {0.794: Share(9800, many), 1.0: Share(9400, many), 1.122: Share(9000, many)}
    assert choose_factor(clear) == 0.794
    # within the best's standard error: the factor nearest 1, whichever side
    assert choose_factor({0.891: Share(830, 1000), 1.0: Share(825, 1000)}) == 1.0
    assert choose_factor({0.891: Share(70, 100), 1.122: Share(80, 100), 1.26: Share(82, 100)}) == (
        1.122
    )
    # the same shares on more peaks are told apart
    assert choose_factor({0.891: Share(8300, many), 1.0: Share(8000, many)}) == 0.891
    assert choose_factor({}) == 1.0  # nothing readable: the stated scale
    assert choose_factor({0.891: Share(0, 0), 1.0: Share(0, 0)}) == 1.0


def test_the_sample_is_the_first_in_name_order_and_stays_as_the_folder_grows():
    paths = [Path(f"m_{k:03d}.mrc") for k in range(40)]
    chosen = sample(paths[::-1])  # the order given does not matter
    assert len(chosen) == CHECK_MICROGRAPHS
    assert [p.name for p in chosen] == ["m_000.mrc", "m_001.mrc", "m_002.mrc", "m_003.mrc"]
    assert sample(paths[:10]) == sample(paths)  # more micrographs of the session: the same
    assert sample(paths[:3]) == paths[:3]
    assert sample([]) == []


@pytest.mark.parametrize("bad", [0.3, 2.5, float("nan"), float("inf"), -1.0])
def test_a_scale_factor_beyond_sense_is_one_line(bad):
    with pytest.raises(UserError) as error:
        check_scale_factor(bad)
    assert "scale factor must be a number from 0.5 to 2" in str(error.value)
    assert "\n" not in str(error.value)
    assert check_scale_factor(1.26) == 1.26


def test_a_recipe_at_the_stated_scale_keeps_its_fingerprint():
    recipe = PickRecipe("BoxNetMask", "abc", 200.0, 0.46, None, 0.0, False)
    # the fingerprint of a recipe as it was before the factor existed
    before = {key: value for key, value in asdict(recipe).items() if key != "scale_factor"}
    import hashlib

    old = hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12]
    assert recipe.fingerprint == old
    assert "scale_factor" not in recipe.line()
    moved = replace(recipe, scale_factor=0.794)
    assert moved.fingerprint != recipe.fingerprint
    assert moved.line().endswith("scale_factor=0.794")
    assert "scale factor 0.794" in moved.describe()
    assert PickRecipe.from_json(asdict(moved)) == moved
    assert PickRecipe.from_json(before) == recipe  # a log from before the factor


def test_the_check_describes_what_it_chose():
    check = ScaleCheck(0.794, {0.794: Share(98, 100), 1.0: Share(94, 100)}, 4, 2.5)
    line = check.describe(300.0)
    assert "0.79x the stated 300 Å" in line and "4 micrograph(s) (2.5 s)" in line
    assert "--scale-factor F" in line and "\n" not in line
    assert "0.79:0.98 1.00:0.94" in line
    assert "picks at the stated 190 Å" in ScaleCheck(1.0, {1.0: Share(8, 10)}, 2).describe(190.0)


def test_a_retrained_or_warp_model_is_not_checked(tiny_model, tmp_path):
    info = find_model(tiny_model)
    assert not checks_scale(info)  # the test model sees Warp's 8 Å/px
    picker = load_picker(tiny_model, PickSettings(diameter=180.0), device="cpu")
    assert picker.settings.scale_factor == 1.0
    assert check_scale(picker, [tmp_path / "none.mrc"]) is picker
    generic = replace(info, scale=replace(info.scale, pixels_per_diameter=20.0))
    assert checks_scale(generic)
    assert checks_scale(replace(generic, parent="BoxNetMask"))  # the shipped BoxNet: generic
    retrained = replace(generic, parent="BoxNetMask", training={"run_path": "/runs/New"})
    assert not checks_scale(replace(retrained, scale=replace(info.scale, pixels_per_diameter=28)))
    if (SHIPPED / "BoxNet").is_dir():  # fine-tuned from BoxNetMask by the recipe, not `train`
        assert find_model("BoxNet").parent == "BoxNetMask" and checks_scale(find_model("BoxNet"))
    with pytest.raises(UserError, match="Warp's fixed 8 Å/px"):
        load_picker(tiny_model, PickSettings(diameter=180.0, scale_factor=0.8), device="cpu")


@needs_shipped
@pytest.mark.parametrize(
    ("stated", "allowed"), [(150.0 / 1.4, (0.7, 0.9)), (150.0 * 1.4, (1.0, 1.5))]
)
def test_a_diameter_stated_far_off_is_not_checked_further_off(tmp_path, stated, allowed):
    """Stated 1.4x too small, the network would see the particles larger than it learnt them:
    the check shows them smaller (a factor under 1). Stated 1.4x too large, it stays (the
    generic model learnt sizes 0.7-1.4 times the stated one) or shows them larger: never the
    wrong way."""
    folder = tmp_path / "mics"
    make_dataset(folder, 2, size=1024, pixel_size=3.0, diameter=150.0, seed=11)
    summary = pick_folder(folder, "BoxNetMask", PickSettings(diameter=stated), device="cpu")
    check = summary.scale_check
    assert check is not None and check.micrographs == 2
    assert set(check.shares) == set(CHECK_FACTORS)
    assert allowed[0] <= check.factor <= allowed[1], check
    # the pick files carry the factor: a re-run with the same check skips them, another
    # factor picks them again
    record = read_record(layout.pick_path(folder, "synth_000", "BoxNetMask"))
    picker = load_picker("BoxNetMask", PickSettings(diameter=stated), device="cpu")
    assert record == check_scale(picker, sorted(folder.glob("*.mrc"))).recipe.fingerprint
    again = pick_folder(
        folder, "BoxNetMask", PickSettings(diameter=stated), device="cpu", skip_picked=True
    )
    assert again.already_picked == 2 and again.picked == 0
    other = 1.26 if check.factor != 1.26 else 1.122
    fixed = pick_folder(
        folder,
        "BoxNetMask",
        PickSettings(diameter=stated, scale_factor=other),
        device="cpu",
        skip_picked=True,
    )
    assert fixed.scale_check is None and fixed.picked == 2


@needs_shipped
def test_pick_cli_prints_the_check_and_refuses_a_bad_factor(tmp_path, capsys):
    folder = tmp_path / "mics"
    make_dataset(folder, 1, size=512, pixel_size=2.0, diameter=180.0, seed=3)
    before = sorted(p.name for p in folder.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main(["pick", str(folder), "--diameter", "180", "--scale-factor", "3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "scale factor must be a number from 0.5 to 2, got 3" in err
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing written
    assert main(["pick", str(folder), "--diameter", "180", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "scale check on 1 micrograph(s)" in out
    assert main(["pick", str(folder), "--diameter", "180", "--scale-factor", "1.1"]) == 0
    out = capsys.readouterr().out
    assert "scale check" not in out
    line = (folder / "matching" / "synth_000_BoxNetMask.star").read_text().splitlines()[0]
    assert "scale_factor=1.1" in line


@needs_shipped
def test_a_sample_micrograph_that_cannot_be_read_is_left_out_of_the_check(tmp_path):
    folder = tmp_path / "mics"
    make_dataset(folder, 1, size=512, pixel_size=3.0, diameter=150.0, seed=4)
    (folder / "broken.mrc").write_bytes(b"not an MRC file")
    summary = pick_folder(folder, "BoxNetMask", PickSettings(diameter=150.0), device="cpu")
    assert summary.scale_check is not None and summary.scale_check.micrographs == 1
    assert summary.picked == 1 and len(summary.errors) == 1
    assert "broken.mrc" in summary.errors[0] and "\n" not in summary.errors[0]
    nothing = tmp_path / "bad"
    nothing.mkdir()
    (nothing / "broken.mrc").write_bytes(b"not an MRC file")
    summary = pick_folder(nothing, "BoxNetMask", PickSettings(diameter=150.0), device="cpu")
    assert summary.scale_check is not None and summary.scale_check.micrographs == 0
    assert summary.scale_check.factor == 1.0 and summary.picked == 0
