"""Picking folders: files written, bad input, the CLI, and the shipped generic models."""

from __future__ import annotations

import os

import mrcfile
import numpy as np
import pytest

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.cli import main
from boxnet_tui.errors import UserError
from boxnet_tui.evaluate import evaluate_folders
from boxnet_tui.io import layout
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.star import read_picks
from boxnet_tui.model.store import find_model, shipped_models_dir
from boxnet_tui.synth import make_dataset
from tests.conftest import snapshot

SHIPPED = shipped_models_dir()


@pytest.fixture
def synth_folder(tmp_path):
    folder = tmp_path / "mics"
    make_dataset(folder, 2, size=768, pixel_size=2.0, diameter=180.0, seed=11)
    return folder


def _write_mrc(path, shape, voxel_size):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        mrc.voxel_size = voxel_size


def test_pick_folder_writes_star_and_mask_per_micrograph(synth_folder, tiny_model):
    seen = []
    summary = pick_folder(
        synth_folder,
        tiny_model,
        PickSettings(diameter=180.0, threshold=0.0),
        device="cpu",
        progress=seen.append,
    )
    assert summary.picked == 2 and not summary.errors
    assert [p.done for p in seen] == [1, 2] and seen[-1].rate > 0
    for root in ["synth_000", "synth_001"]:
        picks = read_picks(layout.pick_path(synth_folder, root, "TinyMask"))
        assert picks.has_scores or len(picks) == 0
        assert read_mask(layout.mask_path(synth_folder, root)).shape == (192, 192)


def test_bad_micrographs_are_reported_and_others_picked(tmp_path, tiny_model):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _write_mrc(folder / "good.mrc", (512, 512), 2.0)
    _write_mrc(folder / "tiny.mrc", (100, 100), 2.0)  # 25 px at 8 Å/px
    _write_mrc(folder / "nopixel.mrc", (512, 512), 0.0)
    (folder / "corrupt.mrc").write_bytes(b"\x01" * 2000)
    before = snapshot(folder)
    summary = pick_folder(folder, tiny_model, PickSettings(diameter=150.0), device="cpu")
    assert summary.picked == 1
    messages = "\n".join(summary.errors)
    assert "tiny.mrc: too small to pick" in messages
    assert "nopixel.mrc: no pixel size in the header" in messages
    assert "corrupt.mrc" in messages
    after = snapshot(folder)
    new = {name for name in set(after) - set(before) if not name.endswith(".lock")}
    assert new == {"matching/good_TinyMask.star", "mask/good.tif"}  # and their write locks


def test_pixel_sizes_beyond_sense_are_refused_before_any_allocation(tmp_path, tiny_model):
    folder = tmp_path / "odd"
    folder.mkdir()
    _write_mrc(folder / "huge_pixel.mrc", (256, 256), 300.0)  # 300 Å/px: a 5 GB rescale
    _write_mrc(folder / "absurd.mrc", (256, 256), 1e30)
    _write_mrc(folder / "good.mrc", (512, 512), 2.0)
    summary = pick_folder(folder, tiny_model, PickSettings(diameter=150.0), device="cpu")
    assert summary.picked == 1 and len(summary.errors) == 2
    assert all("pixel size" in line and "--pixel-size" in line for line in summary.errors)
    assert all("\n" not in line for line in summary.errors)


def test_an_unwritable_matching_folder_is_one_line_per_micrograph(tmp_path, tiny_model, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the check needs an ordinary user")
    folder = tmp_path / "ro"
    folder.mkdir()
    for name in ("a", "b"):
        _write_mrc(folder / f"{name}.mrc", (512, 512), 2.0)
    (folder / "matching").mkdir()
    (folder / "matching").chmod(0o555)
    try:
        code = main(["pick", str(folder), "--model", tiny_model, "--diameter", "150"])
    finally:
        (folder / "matching").chmod(0o755)
    err = capsys.readouterr().err
    assert code == 1 and err.count("Permission denied") == 2 and "Traceback" not in err


def test_a_write_error_is_one_line_and_the_batch_goes_on(tmp_path, tiny_model, monkeypatch):
    """A full disk or a file-size limit (EFBIG) while writing one micrograph's picks."""
    import errno

    from boxnet_tui import batch_picking

    folder = tmp_path / "full"
    folder.mkdir()
    for name in ("a", "b", "c"):
        _write_mrc(folder / f"{name}.mrc", (512, 512), 2.0)
    real_save = batch_picking.save_picks

    def save(folder_, result, suffix, **kwargs):
        if result.path.stem == "b":
            raise OSError(errno.EFBIG, "File too large", str(folder_ / "matching" / "b.star"))
        return real_save(folder_, result, suffix, **kwargs)

    monkeypatch.setattr(batch_picking, "save_picks", save)
    summary = pick_folder(folder, tiny_model, PickSettings(diameter=150.0), device="cpu")
    assert summary.picked == 2
    assert summary.errors == [f"{folder / 'matching' / 'b.star'}: File too large"]


def test_folder_level_errors(tmp_path, tiny_model):
    with pytest.raises(UserError, match="no micrographs"):
        pick_folder(tmp_path, tiny_model)
    _write_mrc(tmp_path / "a.mrc", (512, 512), 2.0)
    with pytest.raises(UserError, match="no model named 'Missing'"):
        pick_folder(tmp_path, "Missing")
    with pytest.raises(UserError, match="10–700 Å"):
        pick_folder(tmp_path, tiny_model, PickSettings(diameter=800.0))
    assert not (tmp_path / "matching").exists()


def test_pick_cli_reports_and_exit_code(tmp_path, tiny_model, capsys):
    _write_mrc(tmp_path / "a.mrc", (512, 512), 2.0)
    (tmp_path / "b.mrc").write_bytes(b"")
    code = main(
        ["pick", str(tmp_path), "--model", tiny_model, "--diameter", "150", "--device", "cpu"]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "picked 1 micrographs" in out and "1 failed" in out
    assert "b.mrc: empty file" in err
    assert (tmp_path / "matching" / "a_TinyMask.star").is_file()
    assert main(["pick", str(tmp_path / "nowhere"), "--model", tiny_model]) == 2


def test_models_cli_lists_user_and_shipped(tiny_model, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "TinyMask\tmask" in out


@pytest.mark.skipif(not (SHIPPED / "BoxNetMask").is_dir(), reason="no shipped weights yet")
@pytest.mark.parametrize("name", ["BoxNetMask", "BoxNet"])
def test_shipped_model_picks_synthetic_particles(synth_folder, name):
    info = find_model(name)
    assert info.shipped and info.has_mask == (name == "BoxNetMask")
    summary = pick_folder(synth_folder, name, PickSettings(diameter=180.0), device="cpu")
    assert summary.picked == 2
    report = evaluate_folders(
        synth_folder / "matching",
        synth_folder / "matching",
        45.0,
        picks_suffix=name,
        reference_suffix="truth",
    )
    # random or broken pickers score far below this on these low-SNR micrographs
    assert report.total.f1 > 0.6, report.total


@pytest.mark.skipif(not (SHIPPED / "BoxNetMask").is_dir(), reason="no shipped weights yet")
def test_a_gain_gradient_does_not_hide_particles(tmp_path):
    """A micrograph whose brightness runs 0.6x to 1.4x across it (an uncorrected gain
    reference, a wedge of ice) is picked as well as the flat one."""
    folder = tmp_path / "mics"
    make_dataset(folder, 1, size=1024, pixel_size=200.0 / 30, diameter=200.0, seed=5)
    path = folder / "synth_000.mrc"
    with mrcfile.open(path, "r+") as mrc:
        data = np.array(mrc.data, np.float32)
        rows, cols = np.mgrid[0:1024, 0:1024]
        ramp = 0.6 + 0.8 * (rows + cols) / 2048
        mrc.set_data(((data - data.min() + data.std()) * ramp).astype(np.float32))
    flat = tmp_path / "flat"
    make_dataset(flat, 1, size=1024, pixel_size=200.0 / 30, diameter=200.0, seed=5)
    f1 = {}
    for where in (folder, flat):
        pick_folder(where, "BoxNetMask", PickSettings(diameter=200.0), device="cpu")
        f1[where.name] = evaluate_folders(
            where / "matching",
            where / "matching",
            15.0,
            picks_suffix="BoxNetMask",
            reference_suffix="truth",
            border=0.8 * 30,
            image_shape=(1024, 1024),
        ).total.f1
    assert f1["flat"] > 0.7, f1
    assert f1["mics"] > f1["flat"] - 0.05, f1


@pytest.mark.skipif(not (SHIPPED / "BoxNetMask").is_dir(), reason="no shipped weights yet")
@pytest.mark.parametrize("diameter", [100.0, 450.0])
def test_shipped_model_finds_small_and_large_particles(tmp_path, diameter):
    """One generic model for every size: its input is scaled by the particle diameter."""
    folder = tmp_path / "mics"
    pixel = diameter / 30  # 30 px across in the micrograph
    make_dataset(folder, 1, size=1024, pixel_size=pixel, diameter=diameter, seed=21)
    settings = PickSettings(diameter=diameter)  # the model's calibrated default threshold
    summary = pick_folder(folder, "BoxNetMask", settings, device="cpu")
    assert summary.picked == 1
    report = evaluate_folders(
        folder / "matching",
        folder / "matching",
        15.0,
        picks_suffix="BoxNetMask",
        reference_suffix="truth",
        border=0.8 * 30,  # the picker drops peaks this close to the edge
        image_shape=(1024, 1024),
    )
    assert report.total.f1 > 0.7, report.total
