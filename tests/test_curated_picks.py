"""Issue 12.2: a pick never replaces a curated micrograph's picks or painted mask unasked;
when told to, what it replaces is kept as a backup that restores byte for byte."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from boxnet_tui.batch_picking import PickSettings, pick_folder
from boxnet_tui.cli import main
from boxnet_tui.curation_state import StateStore, load_state
from boxnet_tui.io import layout
from boxnet_tui.io.backups import list_backups, restore_backup
from boxnet_tui.io.masks import write_mask
from boxnet_tui.io.star import Picks, write_picks
from boxnet_tui.model.network import Architecture, BoxNet
from boxnet_tui.model.store import ModelInfo, save_model
from tests.conftest import snapshot

TINY = Architecture(widths=(4, 8, 8))
SETTINGS = PickSettings(diameter=150.0, threshold=0.0)


@pytest.fixture
def tiny_model():
    import torch

    torch.manual_seed(0)
    return save_model(BoxNet(TINY).eval(), ModelInfo("TinyMask", TINY, has_mask=True)).name


@pytest.fixture
def folder(tmp_path, tiny_model):
    """a, b and c picked by TinyMask; b curated by hand (edited picks and a painted mask)."""
    folder = tmp_path / "mics"
    folder.mkdir()
    for seed, name in enumerate("abc"):
        with mrcfile.new(folder / f"{name}.mrc") as mrc:
            data = np.random.default_rng(seed).normal(size=(256, 256)).astype(np.float32)
            mrc.set_data(data)
            mrc.voxel_size = 4.0
    pick_folder(folder, tiny_model, SETTINGS, device="cpu")
    write_picks(layout.pick_path(folder, "b", tiny_model), Picks([40.0], [50.0]), "b.mrc")
    painted = np.zeros((128, 128), bool)
    painted[:10, :10] = True
    write_mask(layout.mask_path(folder, "b"), painted)
    StateStore(folder).set_curated("b", True)
    return folder


def _curated_files(folder, model):
    files = (layout.pick_path(folder, "b", model), layout.mask_path(folder, "b"))
    return {path.name: path.read_bytes() for path in files}


def test_a_pick_skips_curated_micrographs_and_says_how_to_force_it(folder, tiny_model):
    before = _curated_files(folder, tiny_model)
    summary = pick_folder(folder, tiny_model, SETTINGS, device="cpu")
    assert summary.picked == 2 and summary.skipped_curated == ["b"]
    assert _curated_files(folder, tiny_model) == before
    assert "b" in load_state(folder)[0].curated
    assert not (folder / "matching" / ".backup").exists()


def test_a_new_pick_set_on_a_curated_micrograph_keeps_its_painted_mask(folder, tiny_model):
    mask = layout.mask_path(folder, "b").read_bytes()
    summary = pick_folder(folder, tiny_model, SETTINGS, suffix="Other", device="cpu")
    assert summary.picked == 3 and not summary.skipped_curated
    assert layout.pick_path(folder, "b", "Other").is_file()
    assert layout.mask_path(folder, "b").read_bytes() == mask  # not the model's mask
    assert summary.kept_masks == ["b"] and "b" in load_state(folder)[0].curated


def test_forcing_it_keeps_backups_that_restore_byte_for_byte(folder, tiny_model):
    before = _curated_files(folder, tiny_model)
    summary = pick_folder(folder, tiny_model, SETTINGS, device="cpu", overwrite_curated=True)
    assert summary.picked == 3 and summary.uncurated == ["b"]
    assert _curated_files(folder, tiny_model) != before
    assert "b" not in load_state(folder)[0].curated  # the mark follows the content
    backups = list_backups(folder)
    assert sorted(b.original.name for b in backups) == ["b.tif", f"b_{tiny_model}.star"]
    assert all(b.path.parent.name == ".backup" for b in backups)
    for backup in backups:
        restore_backup(folder, backup.path)
    assert _curated_files(folder, tiny_model) == before


def test_backups_are_not_pick_sets(folder, tiny_model):
    from boxnet_tui import retrain_form

    pick_folder(folder, tiny_model, SETTINGS, device="cpu", overwrite_curated=True)
    labels = [c.label for c in retrain_form.star_choices(folder)]
    assert labels == [f"matching/*_{tiny_model}.star  (3 micrographs)"]


def test_a_micrograph_marked_curated_while_picking_is_not_replaced(folder, tiny_model):
    """The app picks in the background while the user curates: the mark is read at write time."""
    target = layout.pick_path(folder, "c", tiny_model)
    kept = target.read_bytes()
    seen = []

    def progress(p):
        seen.append(p.current.stem)
        if p.current.stem == "a":
            StateStore(folder).set_curated("c", True)

    summary = pick_folder(folder, tiny_model, SETTINGS, device="cpu", progress=progress)
    assert target.read_bytes() == kept and summary.skipped_curated == ["b", "c"]


def test_pick_cli_skips_curated_then_forces_and_restores(folder, tiny_model, capsys):
    before = _curated_files(folder, tiny_model)
    args = ["pick", str(folder), "--model", tiny_model, "--diameter", "150", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipped 1 curated micrograph (b)" in out and "--overwrite-curated" in out
    assert _curated_files(folder, tiny_model) == before
    assert main([*args, "--overwrite-curated"]) == 0
    out = capsys.readouterr().out
    assert "replaced the picks of 1 curated micrograph (b)" in out and "boxnet-tui restore" in out
    assert main(["restore", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert f"b_{tiny_model}.star" in listing and "b.tif" in listing
    assert main(["restore", str(folder), f"b_{tiny_model}.star"]) == 0
    assert main(["restore", str(folder), "b.tif"]) == 0
    out = capsys.readouterr().out
    assert "restored" in out
    assert _curated_files(folder, tiny_model) == before
    assert "b" in load_state(folder)[0].curated  # curated content back: the mark too
    assert main(["restore", str(folder), "nothing.star"]) == 2
    assert "no backup of nothing.star" in capsys.readouterr().err


def test_restore_keeps_what_it_replaces(folder, tiny_model):
    pick_folder(folder, tiny_model, SETTINGS, device="cpu", overwrite_curated=True)
    star = layout.pick_path(folder, "b", tiny_model)
    repicked = star.read_bytes()
    (backup,) = [b for b in list_backups(folder) if b.original == star]
    restore_backup(folder, backup.path)
    assert any(b.path.read_bytes() == repicked for b in list_backups(folder) if b.original == star)
    assert snapshot(folder / "matching" / ".backup")  # nothing lost either way
