"""Negative stain end to end: a run's ``invert`` option, the images it prepares, the record in
the new model's ``model.json``, and picking with that model (inverted unless told not to).

The folders are synthetic micrographs (bright background, dark particles) and the same ones
with their contrast inverted (dark background, bright particles: negative stain).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from boxnet_tui import batch_picking, cli
from boxnet_tui.errors import UserError
from boxnet_tui.io.micrographs import read_micrograph, write_micrograph
from boxnet_tui.model import calibration
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import MODEL_JSON, ModelInfo, find_model, save_model
from boxnet_tui.pick_options import resolve_invert, trained_inverted
from boxnet_tui.picking import PICK_RULE
from boxnet_tui.synth import make_dataset
from boxnet_tui.training import job, runs
from boxnet_tui.training.run_config import RunConfig, validate_config
from boxnet_tui.training.runs import DONE, create_run, find_run
from tests.test_runs import make_config

TINY = Architecture(widths=(4, 8, 8))
DIAMETER = 120.0
NAME = "StainNet"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(cryo, stain): 3 synthetic micrographs with truth picks, and the same inverted."""
    root = tmp_path_factory.mktemp("stain")
    cryo = root / "cryo"
    make_dataset(cryo, 3, size=256, pixel_size=4.0, diameter=DIAMETER, seed=1)
    stain = root / "stain"
    shutil.copytree(cryo, stain)
    for path in sorted(stain.glob("*.mrc")):
        micrograph = read_micrograph(path)
        data = micrograph.data
        write_micrograph(path, (data.max() + data.min() - data).astype(np.float32), 4.0)
    return cryo, stain


def _base() -> str:
    import torch

    torch.manual_seed(0)
    return save_model(BoxNet(TINY).eval(), ModelInfo("TinyBase", TINY, has_mask=True)).name


def _config(folder: Path, name: str = NAME, **changes) -> RunConfig:
    """test_runs' tiny run, held out and 4 iterations unless ``changes`` say otherwise."""
    options = {"hold_out": True, "iterations": 4, "diameter": DIAMETER, **changes}
    return make_config(folder, name, "TinyBase", **options)


# --------------------------------------------------------------------------- the run config


def test_run_config_round_trip_with_and_without_invert(folders):
    _, stain = folders
    _base()
    inverted = _config(stain, invert=True)
    assert RunConfig.from_json(json.loads(json.dumps(inverted.to_json()))) == inverted
    plain = _config(stain)
    assert plain.invert is False
    assert RunConfig.from_json(json.loads(json.dumps(plain.to_json()))) == plain

    run = create_run(_config(stain, invert=True))
    assert json.loads((run.path / "config.json").read_text())["invert"] is True
    assert find_run(NAME).config().invert is True

    old = plain.to_json()  # a config.json written before the option existed
    del old["invert"]
    assert RunConfig.from_json(old).invert is False

    with pytest.raises(UserError, match="invert must be true or false"):
        validate_config(_config(stain, name="Bad", invert="yes"))


# --------------------------------------------------------------------------- the run


def test_a_negative_stain_run_inverts_every_image_it_prepares_and_records_it(folders, monkeypatch):
    cryo, stain = folders
    _base()
    collected: list = []
    real_collect = job.collect_new

    def collect(config, scale=None):
        examples = real_collect(config, scale)
        collected.append((config.invert, scale, examples))
        return examples

    calibrated: list = []
    options: list = []
    real_calibrate = calibration.calibrate_threshold

    def calibrate(network, items, **kwargs):
        calibrated.extend(items)
        options.append(kwargs)
        return real_calibrate(network, items, **kwargs)

    monkeypatch.setattr(job, "collect_new", collect)
    monkeypatch.setattr(calibration, "calibrate_threshold", calibrate)
    prepared = _spy_on_prepare(monkeypatch)

    run = create_run(_config(stain, invert=True))
    assert job.run_job(run.path) == DONE
    ((invert, scale, examples),) = collected
    assert invert is True and [e.name for e in examples] == ["synth_000", "synth_001", "synth_002"]

    # the stain folder inverted is the cryo folder as it is: particles dark, as the net knows
    as_cryo = job.collect_new(_config(cryo), scale)
    not_inverted = job.collect_new(_config(stain), scale)
    for stained, plain, raw in zip(examples, as_cryo, not_inverted, strict=True):
        np.testing.assert_allclose(stained.image, plain.image, atol=1e-3)
        np.testing.assert_allclose(stained.image, -raw.image, atol=1e-3)
        particles = stained.label == 1
        assert stained.image[particles].mean() < 0 < raw.image[particles].mean()

    # the threshold is calibrated on the same inverted images (the held-out one left out)
    assert len(calibrated) == 2
    assert (
        options[0]["tolerance"] == calibration.RETRAINED_PLATEAU
    )  # the middle of the near-best plateau
    for item, example in zip(calibrated, examples[:2], strict=True):
        np.testing.assert_array_equal(item.image, example.image)
    # the held-out check prepares its micrograph inverted, for the new and the base model
    assert prepared and all(flag is True for flag in prepared)
    assert run.heldout()["micrograph"] == "synth_002"

    saved = json.loads((find_model(NAME).path / MODEL_JSON).read_text())
    assert saved["training"]["invert"] is True
    assert trained_inverted(find_model(NAME))


def test_a_run_without_invert_records_false_and_old_models_read_false(folders):
    _, stain = folders
    _base()
    run = create_run(_config(stain, name="PlainNet", hold_out=False))
    assert job.run_job(run.path) == DONE
    assert find_model("PlainNet").training["invert"] is False
    assert not trained_inverted(find_model("PlainNet"))
    assert not trained_inverted(find_model("BoxNetMask"))  # shipped: no record
    assert not trained_inverted(find_model("TinyBase"))


# --------------------------------------------------------------------------- picking


def _spy_on_prepare(monkeypatch) -> list[bool | None]:
    """The ``invert`` of every micrograph ``batch_picking.prepare`` prepares, in order."""
    prepared: list[bool | None] = []
    real_prepare = batch_picking.prepare

    def prepare(path, settings, scale=batch_picking.WARP_SCALE):
        prepared.append(settings.invert)
        return real_prepare(path, settings, scale)

    monkeypatch.setattr(batch_picking, "prepare", prepare)
    return prepared


def _inverted_model() -> str:
    """A model as a negative-stain run saves it: ``invert`` in its training section."""
    import torch

    torch.manual_seed(0)
    info = ModelInfo("StainTiny", TINY, has_mask=False, training={"invert": True})
    return save_model(BoxNet(TINY).eval(), info).name


def test_the_precedence_of_invert_is_the_request_then_the_models_record():
    inverted = ModelInfo("A", TINY, training={"invert": True})
    plain = ModelInfo("B", TINY)
    assert resolve_invert(None, inverted) is True
    assert resolve_invert(None, plain) is False
    assert resolve_invert(False, inverted) is False
    assert resolve_invert(True, plain) is True


def test_picking_with_a_model_trained_inverted_inverts_by_default(folders, monkeypatch):
    _, stain = folders
    name = _inverted_model()
    picker = batch_picking.load_picker(name, batch_picking.PickSettings(DIAMETER), device="cpu")
    assert picker.settings.invert is True and picker.recipe.invert is True
    told = batch_picking.PickSettings(DIAMETER, invert=False)
    assert batch_picking.load_picker(name, told, device="cpu").settings.invert is False
    plain = batch_picking.load_picker(_base(), batch_picking.PickSettings(DIAMETER), device="cpu")
    assert plain.settings.invert is False

    prepared = _spy_on_prepare(monkeypatch)
    common = ["pick", str(stain), "--model", name, "--diameter", "120", "--device", "cpu"]
    assert cli.main([*common, "--suffix", "byrecord"]) == 0
    assert prepared == [True] * 3
    head = (stain / "matching" / "synth_000_byrecord.star").read_text().splitlines()[0]
    assert head.endswith(f"invert=1 rule={PICK_RULE}")

    prepared.clear()
    assert cli.main([*common, "--suffix", "told", "--no-invert"]) == 0
    assert prepared == [False] * 3
    head = (stain / "matching" / "synth_000_told.star").read_text().splitlines()[0]
    assert head.endswith(f"invert=0 rule={PICK_RULE}")


def test_pick_refuses_a_bad_min_mask_distance_in_one_line(folders, capsys):
    _, stain = folders
    before = sorted(p.name for p in (stain / "matching").iterdir())
    for value in ("-1", "nan", "inf", "far"):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["pick", str(stain), f"--min-mask-distance={value}"])
        assert exit_.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert "minimum mask distance must be a number of Å, 0 or more" in error
    assert sorted(p.name for p in (stain / "matching").iterdir()) == before


def test_export_inverts_with_invert(folders, tmp_path):
    from boxnet_tui.io.examples import read_examples

    _, stain = folders
    positives = str(stain / "matching" / "synth_000_truth.star")
    out = {}
    for flag in ("", "--invert"):
        path = tmp_path / f"out{flag}.tif"
        args = ["export", str(stain), "--positives", positives, "--diameter", "120"]
        assert cli.main([*args, "--out", str(path), *([flag] if flag else [])]) == 0
        out[flag] = read_examples(path)
    for plain, inverted in zip(out[""], out["--invert"], strict=True):
        np.testing.assert_allclose(inverted.image, -plain.image, atol=1e-3)


def test_train_inverts_as_its_base_was_trained_unless_told(folders, monkeypatch):
    _, stain = folders
    base = _inverted_model()
    monkeypatch.setattr(runs, "start_detached", lambda run: 0)
    common = ["train", str(stain), "--positives", str(stain / "matching" / "synth_000_truth.star")]
    common += ["--base", base, "--diameter", "120", "--device", "cpu", "--detach"]
    assert cli.main([*common, "--name", "FromStained"]) == 0
    assert runs.find_run("FromStained").config().invert is True
    assert cli.main([*common, "--name", "ToldNot", "--no-invert"]) == 0
    assert runs.find_run("ToldNot").config().invert is False
    plain = [*common[:4], "--base", _base(), *common[6:]]
    assert cli.main([*plain, "--name", "FromPlain"]) == 0
    assert runs.find_run("FromPlain").config().invert is False


def test_models_lists_which_were_trained_inverted(capsys):
    _inverted_model()
    _base()
    assert cli.main(["models"]) == 0
    lines = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "\tinvert=yes\t" in lines["StainTiny"]
    assert "\tinvert=no\t" in lines["TinyBase"] and "\tinvert=no\t" in lines["BoxNetMask"]
