"""Folders as Warp makes them (issue 13): Warp 1 and Warp 2 layouts, TIFF and mask Y-flips.

Each folder is made the way Warp lays it out (movies as small stacks beside the averages,
per-movie XML, ``matching/``, ``mask/`` made the Warp way), then opened in the app, picked,
trained on and exported from, and every file is checked to land where Warp keeps it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import tifffile

from boxnet_tui.cli import main
from boxnet_tui.errors import UserError
from boxnet_tui.io import layout
from boxnet_tui.io.masks import read_mask
from boxnet_tui.io.micrographs import read_micrograph, scan_folder, write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks

PIXEL = 4.0  # Å/px of the averages
SIZE = 256  # px: 128 px at 8 Å/px
DIAMETER = 120.0
PICKS = Picks([60.0, 140.0, 200.0], [64.0, 128.0, 190.0], [0.9, 0.8, 0.7])


def write_warp_mask(path: Path, junk_rows: slice, shape=(SIZE // 2, SIZE // 2)) -> np.ndarray:
    """A junk mask as Warp's picker writes it (Image.WriteTIFF): float 0/1, rows flipped in Y,
    Orientation = BOTLEFT, LZW. Returns the mask as it lies on the micrograph (row 0 first)."""
    mask = np.zeros(shape, np.float32)
    mask[junk_rows, :] = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path,
        mask[::-1],
        compression="lzw",
        metadata=None,
        extratags=[(274, "H", 1, 4, True)],
        resolution=(100, 100),
    )
    return mask > 0


def write_movie(path: Path, frames: int = 3) -> None:
    """A movie: a small stack of frames (what the folder scan used to reject)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).poisson(2, size=(frames, 64, 64)).astype(np.uint16)
    tifffile.imwrite(path, data, photometric="minisblack")


def fill_processing(processing: Path, roots: list[str]) -> None:
    """average/, matching/, mask/ and the per-movie XML of a Warp processing folder."""
    rng = np.random.default_rng(3)
    for root in roots:
        write_micrograph(
            processing / "average" / f"{root}.mrc", rng.normal(size=(SIZE, SIZE)), PIXEL
        )
        write_picks(processing / "matching" / f"{root}_manual.star", PICKS, f"{root}.mrc")
        (processing / f"{root}.xml").write_text('<Movie DataDirectory="" />\n')
    write_warp_mask(processing / "mask" / f"{roots[0]}.tif", slice(0, 20))


@pytest.fixture
def warp1(tmp_path: Path) -> Path:
    """Warp 1: movies in the folder, averages in average/, matching/ and mask/ beside."""
    folder = tmp_path / "warp1"
    for root in ("mic1", "mic2", "mic3"):
        write_movie(folder / f"{root}.tif")
    fill_processing(folder, ["mic1", "mic2", "mic3"])
    return folder


@pytest.fixture
def warp2(tmp_path: Path) -> Path:
    """Warp 2 (WarpTools): movies in frames/, warp_frameseries.settings, and the processing
    folder warp_frameseries/ with average/, matching/, mask/ and the XML."""
    folder = tmp_path / "warp2"
    for root in ("mic1", "mic2", "mic3"):
        write_movie(folder / "frames" / f"{root}.tif")
    (folder / "warp_frameseries.settings").write_text("<Settings />\n")
    fill_processing(folder / "warp_frameseries", ["mic1", "mic2", "mic3"])
    return folder


# --------------------------------------------------------------------------- layouts


def test_warp1_layout_lists_the_averages_not_the_movies(warp1):
    found = layout.find_layout(warp1)
    assert (found.kind, found.micrographs, found.data) == ("warp1", warp1 / "average", warp1)
    assert [p.name for p in scan_folder(warp1)] == ["mic1.mrc", "mic2.mrc", "mic3.mrc"]
    assert layout.pick_path(warp1, "mic1", "x") == warp1 / "matching" / "mic1_x.star"
    assert layout.mask_path(warp1, "mic1") == warp1 / "mask" / "mic1.tif"
    assert layout.training_dir(warp1) == warp1 / "boxnet2training"
    assert "Warp 1 layout" in found.describe() and str(warp1 / "average") in found.describe()


def test_warp2_layout_reads_and_writes_in_the_processing_folder(warp2):
    processing = warp2 / "warp_frameseries"
    found = layout.find_layout(warp2)
    assert (found.kind, found.micrographs, found.data) == (
        "warp2",
        processing / "average",
        processing,
    )
    assert [p.parent for p in scan_folder(warp2)] == [processing / "average"] * 3
    assert layout.matching_dir(warp2) == processing / "matching"
    assert layout.mask_path(warp2, "mic2") == processing / "mask" / "mic2.tif"
    assert layout.training_dir(warp2) == processing / "boxnet3training"  # Warp 2's GUI
    from boxnet_tui.io.examples import examples_path

    assert examples_path(warp2, "M") == processing / "boxnet3training" / "M.tif"
    # the processing folder opened itself is Warp 2 too (its settings file is beside it)
    itself = layout.find_layout(processing)
    assert (itself.kind, itself.data) == ("warp2", processing)
    assert "Warp 2 layout" in found.describe()


def test_flat_folder_and_a_missing_one_stay_flat(tmp_path):
    write_micrograph(tmp_path / "a.mrc", np.zeros((8, 8), np.float32), 1.0)
    assert layout.find_layout(tmp_path).kind == "flat"
    assert layout.find_layout(tmp_path / "nope").data == tmp_path / "nope"
    # a Warp 1 average folder appearing later is seen (the cache follows the folder)
    write_micrograph(tmp_path / "average" / "a.mrc", np.zeros((8, 8), np.float32), 1.0)
    assert layout.find_layout(tmp_path).kind == "warp1"


def test_two_processing_folders_without_a_settings_file_is_one_line(tmp_path):
    for name in ("run_a", "run_b"):
        write_micrograph(tmp_path / name / "average" / "m.mrc", np.zeros((8, 8)), 1.0)
    with pytest.raises(UserError, match="several Warp processing folders") as caught:
        layout.find_layout(tmp_path)
    assert "\n" not in str(caught.value)
    (tmp_path / "run_b.settings").write_text("<Settings />")
    assert layout.find_layout(tmp_path).data == tmp_path / "run_b"


def test_info_says_the_layout_and_reads_the_averages(warp1, warp2, capsys):
    assert main(["info", str(warp1)]) == 0
    out = capsys.readouterr().out
    assert "Warp 1 layout" in out and "3 micrographs readable, 0 not" in out
    assert "pick set manual: 9 picks on 3 micrographs" in out
    assert main(["info", str(warp2)]) == 0
    out = capsys.readouterr().out
    assert "Warp 2 layout" in out and "3 micrographs readable, 0 not" in out


# --------------------------------------------------------------------------- the flips


def test_tiff_micrograph_rows_are_read_flipped_as_warp_reads_them(tmp_path):
    """A TIFF's first row is its top; Warp's y axis points up, so its y = height - 1 - row."""
    data = np.zeros((40, 30), np.float32)
    data[5, 7] = 100.0  # file row 5
    tifffile.imwrite(tmp_path / "mic.tif", data)
    image = read_micrograph(tmp_path / "mic.tif", pixel_size=1.0).data
    assert np.unravel_index(np.argmax(image), image.shape) == (40 - 1 - 5, 7)
    assert image.flags.c_contiguous


def test_a_mask_made_the_warp_way_lies_where_warp_shows_it(tmp_path):
    """Junk on the micrograph's first rows (Warp's bottom) is stored in the file's last rows."""
    path = tmp_path / "mask" / "mic1.tif"
    expected = write_warp_mask(path, slice(0, 20))
    assert tifffile.imread(path)[-20:].all()  # the file holds it flipped
    np.testing.assert_array_equal(read_mask(path), expected)


# ------------------------------------------------------------------- app, pick, train, export


def _tiny_model(name: str = "TinyBase") -> None:
    from boxnet_tui.model.network import Architecture, BoxNet
    from boxnet_tui.model.store import ModelInfo, save_model

    tiny = Architecture(widths=(4, 8, 8))
    save_model(BoxNet(tiny).eval(), ModelInfo(name, tiny, has_mask=True))


@pytest.mark.parametrize("kind", ["warp1", "warp2"])
def test_the_app_opens_a_warp_folder_on_its_averages(kind, request):
    from boxnet_tui.curation import CurationSession
    from boxnet_tui.tui.app import BoxnetApp

    folder = request.getfixturevalue(kind)
    session = CurationSession(folder, diameter=DIAMETER)
    assert [e.root for e in session.entries] == ["mic1", "mic2", "mic3"]
    assert session.suffix == "manual"

    async def run() -> None:
        app = BoxnetApp(session, graphics="halfcell")
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                await pilot.pause(0.02)
                if app.curation.view is not None:
                    break
            assert app.curation.view is not None, "no micrograph shown"
            notes = " ".join(str(n.message) for n in app._notifications)
            assert ("Warp 1 layout" if kind == "warp1" else "Warp 2 layout") in notes
            assert "TIFF rows flipped as Warp does" in notes  # where picks go, and how
            await pilot.press("a")  # add a pick at the cursor: written where Warp reads it
            await pilot.pause()
            await app.workers.wait_for_complete()

    asyncio.run(run())
    star = layout.pick_path(folder, "mic1", "manual")
    assert len(read_picks(star)) == len(PICKS) + 1
    assert not (folder / "warp_frameseries").exists() or kind == "warp2"
    assert not (folder / "matching").exists() or kind == "warp1"


@pytest.mark.parametrize("kind", ["warp1", "warp2"])
def test_pick_writes_picks_and_masks_where_warp_keeps_them(kind, request, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    folder = request.getfixturevalue(kind)
    _tiny_model()
    args = ["pick", str(folder), "--model", "TinyBase", "--suffix", "tiny", "--device", "cpu"]
    assert main([*args, "--threshold", "0.0", "--diameter", str(DIAMETER)]) == 0
    out = capsys.readouterr().out
    data = layout.data_dir(folder)
    assert ("Warp 1 layout" if kind == "warp1" else "Warp 2 layout") in out
    assert f"written to {data / 'matching'}" in out and "centres in pixels" in out
    for root in ("mic1", "mic2", "mic3"):
        assert (data / "matching" / f"{root}_tiny.star").is_file()
    movies = sorted(p.name for p in folder.rglob("*.tif") if "mask" not in p.parts)
    assert len(movies) == 3  # the movies untouched, no pick file made for them
    if kind == "warp2":
        assert not (folder / "matching").exists() and not (folder / "mask").exists()


def test_train_on_a_warp2_folder(warp2, capsys, monkeypatch):
    import torch

    from boxnet_tui.model.store import find_model

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    _tiny_model()
    star = warp2 / "warp_frameseries" / "matching" / "mic1_manual.star"
    args = ["train", str(warp2), "--name", "WarpTwoNet", "--positives", str(star)]
    args += ["--diameter", str(DIAMETER), "--base", "TinyBase", "--iterations", "2"]
    assert main([*args, "--device", "cpu", "--train-masking"]) == 1  # 1 mask of 3
    out = capsys.readouterr().out
    assert "train masking needs a junk mask" in out and "warp_frameseries/mask" in out
    assert main([*args[:3], "WarpTwoNet2", *args[4:], "--device", "cpu"]) == 0
    assert "WarpTwoNet2: done" in capsys.readouterr().out
    assert find_model("WarpTwoNet2").parent == "TinyBase"


@pytest.mark.parametrize("kind", ["warp1", "warp2"])
def test_export_adds_junk_wherever_a_mask_exists_as_warp_does(kind, request, capsys, tmp_path):
    """Warp's export labels junk from every mask/<root>.tif there is, without any option."""
    from boxnet_tui.io.examples import read_examples

    folder = request.getfixturevalue(kind)
    star = layout.matching_dir(folder) / "mic1_manual.star"
    out = layout.training_dir(folder) / "Exported.tif"
    args = ["export", str(folder), "--positives", str(star), "--diameter", str(DIAMETER)]
    assert main([*args, "--out", str(out)]) == 0
    assert "junk labels from the masks of 1 of them" in capsys.readouterr().out
    mic1, mic2, mic3 = read_examples(out)
    assert (mic2.label == 2).sum() == 0 and (mic3.label == 2).sum() == 0
    junk = mic1.label == 2
    rows = np.flatnonzero(junk.any(axis=1))
    # the mask's junk is on the micrograph's first 20 rows at 8 Å/px: the example's too
    assert rows.min() == 0 and rows.max() == 19


def test_read_write_of_our_masks_is_warps(tmp_path):
    """A mask written here is stored as Warp stores it: rows flipped, tagged BOTLEFT."""
    from boxnet_tui.io.masks import write_mask

    mask = np.zeros((30, 20), bool)
    mask[:5] = True
    path = tmp_path / "m.tif"
    write_mask(path, mask)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags["Orientation"].value == 4
        stored = tif.asarray()
    assert stored[-5:].all() and not stored[:-5].any()
    np.testing.assert_array_equal(read_mask(path), mask)
