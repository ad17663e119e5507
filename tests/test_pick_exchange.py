"""export-picks and import-picks (issue 13): a pick set out to cryoSPARC, RELION, crYOLO, Topaz
and EMAN, and their files in as a pick set. Peer files are made by hand from each program's
documented format; where the peer's own reader installs here (Topaz), it reads ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import starfile

from boxnet_tui.cli import main
from boxnet_tui.curation_state import StateStore, load_state
from boxnet_tui.io.interop import read_cbox, sniff_format
from boxnet_tui.io.micrographs import write_micrograph
from boxnet_tui.io.star import Picks, read_picks, write_picks
from tests.conftest import snapshot

SIZE = 256
PICKS = Picks([100.0, 150.5, 40.25], [128.0, 60.0, 200.75], [0.9, 0.5, 0.8])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """mic1..mic3 with manual picks; mic1 and mic2 curated; the set shown from 0.75."""
    folder = tmp_path / "mics"
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        write_micrograph(folder / f"mic{i}.mrc", rng.normal(size=(SIZE, SIZE)), 4.0)
        write_picks(folder / "matching" / f"mic{i}_manual.star", PICKS, f"mic{i}.mrc")
    store = StateStore(folder)
    store.set_curated("mic1", True)
    store.set_curated("mic2", True)
    store.set_threshold("manual", 0.75)
    return folder


def shown(root: str) -> Picks:
    """The picks an export takes of ``root``: those from the set's display threshold 0.75."""
    return PICKS.above(0.75)


def export(folder: Path, fmt: str, out: Path, *extra: str) -> int:
    args = ["export-picks", str(folder), "--suffix", "manual", "--format", fmt, "--out", str(out)]
    return main([*args, *extra])


def import_(folder: Path, *files: Path | str, suffix: str = "imported", extra=()) -> int:
    return main(["import-picks", str(folder), *map(str, files), "--suffix", suffix, *extra])


# --------------------------------------------------------------------------- out


def test_cryosparc_gets_one_star_of_the_curated_shown_picks(folder, tmp_path, capsys):
    out = tmp_path / "particles.star"
    assert export(folder, "cryosparc", out, "--micrograph-prefix", "J2/motioncorrected/") == 0
    text = capsys.readouterr().out
    assert "wrote 4 picks of 2 micrographs" in text
    assert "2 below the display threshold 0.75 left out" in text
    assert "centres in pixels" in text
    table = starfile.read(out)  # one unnamed data_ block, as crYOLO's cryosparc.star
    assert list(table.columns) == [
        "rlnMicrographName",
        "rlnCoordinateX",
        "rlnCoordinateY",
        "rlnAutopickFigureOfMerit",
    ]
    assert sorted(set(table["rlnMicrographName"])) == [
        "J2/motioncorrected/mic1.mrc",
        "J2/motioncorrected/mic2.mrc",
    ]
    mic2 = table[table["rlnMicrographName"].str.endswith("mic2.mrc")]
    assert sorted(mic2["rlnAutopickFigureOfMerit"]) == [0.8, 0.9]  # 0.5 < 0.75: hidden
    np.testing.assert_allclose(table["rlnCoordinateX"][:2], shown("mic1").x)


def test_relion_gets_coordinate_files_and_autopick_star(folder, tmp_path, capsys):
    out = tmp_path / "relion"
    assert export(folder, "relion", out, "--all", "--micrograph-prefix", "MotionCorr/job002/") == 0
    blocks = starfile.read(out / "autopick.star", always_dict=True)
    listing = blocks["coordinate_files"]
    assert list(listing.columns) == ["rlnMicrographName", "rlnMicrographCoordinates"]
    assert list(listing["rlnMicrographName"]) == [
        f"MotionCorr/job002/mic{i}.mrc" for i in (1, 2, 3)
    ]
    for root, path in zip(
        ("mic1", "mic2", "mic3"), listing["rlnMicrographCoordinates"], strict=True
    ):
        coordinates = starfile.read(path)
        np.testing.assert_allclose(coordinates["rlnCoordinateX"], shown(root).x)


def test_topaz_reads_our_table_and_box_files(folder, tmp_path, capsys):
    files = pytest.importorskip("topaz.utils.files")
    table_path = tmp_path / "picks.txt"
    assert export(folder, "topaz", table_path, "--all") == 0
    table = files.read_coordinates(str(table_path))
    assert list(table.columns) == ["image_name", "x_coord", "y_coord", "score"]
    assert list(table["image_name"].unique()) == ["mic1", "mic2", "mic3"]
    np.testing.assert_array_equal(table["x_coord"][:2], np.rint(shown("mic1").x))
    boxes = tmp_path / "boxes"
    assert export(folder, "box", boxes, "--box-size", "64.4") == 0
    box = files.read_coordinates(str(boxes / "mic1.box"))  # int() of every field
    np.testing.assert_allclose(box["x_coord"], shown("mic1").x, atol=1.0)
    np.testing.assert_allclose(box["y_coord"], shown("mic1").y, atol=1.0)


def test_cbox_is_read_back_and_needs_a_box_size(folder, tmp_path, capsys):
    out = tmp_path / "cbox"
    before = snapshot(tmp_path)
    assert export(folder, "cbox", out) == 2
    assert "give the box size (--box-size PX)" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert export(folder, "cbox", out, "--box-size", "64") == 0
    back = read_cbox(out / "mic1.cbox")
    np.testing.assert_allclose(back.x, shown("mic1").x)
    np.testing.assert_allclose(back.score, shown("mic1").score)


def test_export_without_curated_micrographs_or_pick_set_is_one_line(folder, tmp_path, capsys):
    for root in ("mic1", "mic2"):
        StateStore(folder).set_curated(root, False)
    assert export(folder, "topaz", tmp_path / "t.txt") == 2
    err = capsys.readouterr().err
    assert "none of the 3 micrographs with picks 'manual' is marked curated" in err
    assert "--all" in err and err.count("\n") == 1
    args = ["export-picks", str(folder), "--suffix", "nope", "--format", "topaz"]
    assert main([*args, "--out", str(tmp_path / "t.txt")]) == 2
    assert "no pick set 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "t.txt").exists()


def test_flip_y_maps_rows_top_down(folder, tmp_path, capsys):
    out = tmp_path / "flipped.star"
    assert export(folder, "cryosparc", out, "--flip-y") == 0
    table = starfile.read(out)
    np.testing.assert_allclose(table["rlnCoordinateY"][:2], SIZE - 1 - shown("mic1").y)


# --------------------------------------------------------------------------- in


def _peer_files(tmp_path: Path) -> dict[str, Path]:
    """One file of each peer, written as each program documents its format."""
    peers = tmp_path / "peers"
    peers.mkdir()
    files = {
        "topaz": peers / "topaz_picks.txt",  # topaz extract: tab separated, integer centres
        "cbox": peers / "mic2.cbox",  # crYOLO 1.8+ CBOX: corners, <NA> for 2-D
        "box": peers / "mic3.box",  # EMAN1: integer corner, width, height
    }
    files["topaz"].write_text(
        "image_name\tx_coord\ty_coord\tscore\nmic1\t100\t128\t3.25\nmic1\t150\t60\t-1.5\n"
    )
    files["cbox"].write_text(
        "\ndata_global\n\n_cbox_format_version 1.0\n\ndata_cryolo\n\nloop_\n"
        "_CoordinateX #1\n_CoordinateY #2\n_CoordinateZ #3\n_Width #4\n_Height #5\n"
        "_Depth #6\n_EstWidth #7\n_EstHeight #8\n_Confidence #9\n_NumBoxes #10\n_Angle #11\n"
        "68.0\t96.0\t<NA>\t64.0\t64.0\t<NA>\t58.0\t61.0\t0.87\t<NA>\t<NA>\n"
        "\ndata_cryolo_include\n\nloop_\n_slice_index #1\n\n"
    )
    files["box"].write_text("68\t96\t64\t64\n10\t20\t64\t64\n")
    return files


def test_peer_files_become_a_pick_set_with_their_scores(folder, tmp_path, capsys):
    files = _peer_files(tmp_path)
    assert [sniff_format(path) for path in files.values()] == ["topaz", "cbox", "box"]
    assert import_(folder, *files.values()) == 0
    assert "wrote pick set 'imported': 5 picks on 3 micrographs" in capsys.readouterr().out
    mic1 = read_picks(folder / "matching" / "mic1_imported.star")
    assert mic1.x.tolist() == [100.0, 150.0] and mic1.score.tolist() == [3.25, -1.5]
    mic2 = read_picks(folder / "matching" / "mic2_imported.star")
    assert (mic2.x.tolist(), mic2.y.tolist(), mic2.score.tolist()) == ([100.0], [128.0], [0.87])
    mic3 = read_picks(folder / "matching" / "mic3_imported.star")
    assert mic3.x.tolist() == [100.0, 42.0] and not mic3.has_scores
    assert starfile.read(folder / "matching" / "mic3_imported.star")["rlnMicrographName"][0] == (
        "mic3.mrc"
    )


def test_relion_coordinates_autopick_star_and_a_particle_star(folder, tmp_path, capsys):
    relion = tmp_path / "AutoPick" / "job007" / "Movies"
    relion.mkdir(parents=True)
    coordinates = relion / "mic1_autopick.star"  # RELION 4's autopick output
    coordinates.write_text(
        "\n# version 30001\n\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n"
        "_rlnClassNumber #3\n_rlnAutopickFigureOfMerit #4\n_rlnAnglePsi #5\n"
        " 100.000000  128.000000 0  1.234 -999.00000\n"
    )
    autopick = tmp_path / "AutoPick" / "job007" / "autopick.star"
    autopick.write_text(
        "\n# version 30001\n\ndata_coordinate_files\n\nloop_\n_rlnMicrographName #1\n"
        "_rlnMicrographCoordinates #2\n"
        "MotionCorr/job002/Movies/mic1.mrc Movies/mic1_autopick.star\n"
    )
    assert import_(folder, autopick, suffix="relion") == 0
    assert read_picks(folder / "matching" / "mic1_relion.star").score.tolist() == [1.234]
    # a particle STAR of many micrographs (what cryoSPARC imports, our own export)
    out = tmp_path / "particles.star"
    assert export(folder, "cryosparc", out, "--all") == 0
    assert import_(folder, out, suffix="back") == 0
    for root in ("mic1", "mic2", "mic3"):
        back = read_picks(folder / "matching" / f"{root}_back.star")
        np.testing.assert_allclose(back.x, shown(root).x)
        np.testing.assert_allclose(back.score, shown(root).score)


@pytest.mark.parametrize(
    ("fmt", "out", "extra", "atol"),
    [
        ("topaz", "t.txt", [], 0.5),
        ("box", "box", ["--box-size", "64"], 0.5),
        ("cbox", "cbox", ["--box-size", "64"], 1e-6),
        ("relion", "relion", [], 1e-6),
    ],
)
def test_every_format_round_trips(folder, tmp_path, capsys, fmt, out, extra, atol):
    assert export(folder, fmt, tmp_path / out, "--all", *extra) == 0
    assert import_(folder, tmp_path / out, suffix=f"rt_{fmt}") == 0
    for root in ("mic1", "mic2", "mic3"):
        back = read_picks(folder / "matching" / f"{root}_rt_{fmt}.star")
        np.testing.assert_allclose(back.x, shown(root).x, atol=atol)
        np.testing.assert_allclose(back.y, shown(root).y, atol=atol)


def test_an_existing_pick_set_is_never_replaced_unasked(folder, tmp_path, capsys):
    files = _peer_files(tmp_path)
    before = snapshot(folder)
    assert import_(folder, files["topaz"], suffix="manual") == 2
    err = capsys.readouterr().err
    assert "pick set 'manual' exists already for mic1" in err and "--replace" in err
    assert snapshot(folder) == before
    assert import_(folder, files["topaz"], suffix="manual", extra=["--replace"]) == 0
    out = capsys.readouterr().out
    assert "1 replaced files backed up" in out and "curated mark cleared" in out
    assert read_picks(folder / "matching" / "mic1_manual.star").x.tolist() == [100.0, 150.0]
    backups = list((folder / "matching" / ".backup").iterdir())
    assert len(backups) == 1 and read_picks(backups[0]).x.tolist() == PICKS.x.tolist()
    assert "mic1" not in load_state(folder)[0].curated
    assert main(["restore", str(folder), "mic1_manual.star"]) == 0  # and it comes back
    assert read_picks(folder / "matching" / "mic1_manual.star").x.tolist() == PICKS.x.tolist()


def test_names_of_no_micrograph_are_reported_and_bad_files_are_one_line(folder, tmp_path, capsys):
    other = tmp_path / "other.txt"
    other.write_text("image_name\tx_coord\ty_coord\nmic1\t1\t2\nzzz\t3\t4\n")
    assert import_(folder, other) == 0
    assert "skipped: zzz (in other.txt)" in capsys.readouterr().out
    none = tmp_path / "none.txt"
    none.write_text("image_name\tx_coord\ty_coord\nzzz\t3\t4\n")
    assert import_(folder, none, suffix="n") == 2
    assert "name none of its micrographs" in capsys.readouterr().err
    garbage = tmp_path / "notes.box"
    garbage.write_text("hello world\n")
    before = snapshot(folder)
    assert import_(folder, garbage, suffix="g") == 2
    err = capsys.readouterr().err
    assert str(garbage) in err and "cannot tell the pick format" in err and err.count("\n") == 1
    assert import_(folder, garbage, suffix="g", extra=["--format", "box"]) == 2
    assert "line 1 has 2 fields" in capsys.readouterr().err
    assert snapshot(folder) == before


def test_a_folder_of_cbox_files_and_flip_y(folder, tmp_path, capsys):
    cbox = tmp_path / "CBOX"
    assert export(folder, "cbox", cbox, "--all", "--box-size", "64") == 0
    assert import_(folder, cbox, suffix="flipped", extra=["--flip-y"]) == 0
    back = read_picks(folder / "matching" / "mic3_flipped.star")
    np.testing.assert_allclose(back.y, SIZE - 1 - shown("mic3").y)


def test_cryosparc_tools_reads_our_particle_star(folder, tmp_path, capsys):
    """cryoSPARC's own STAR reader (cryosparc-tools), where it is installed."""
    star = pytest.importorskip("cryosparc.star")
    out = tmp_path / "particles.star"
    assert export(folder, "cryosparc", out, "--all") == 0
    rows = star.read(out)[""]  # crYOLO's cryosparc.star is read the same way
    assert rows.dtype.names == (
        "rlnMicrographName",
        "rlnCoordinateX",
        "rlnCoordinateY",
        "rlnAutopickFigureOfMerit",
    )
    assert len(rows) == 6 and rows["rlnMicrographName"][0] == "mic1.mrc"
    np.testing.assert_allclose(rows["rlnCoordinateX"][:2], shown("mic1").x)
