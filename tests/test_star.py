"""STAR picks: reading any RELION coordinate file, writing Warp's, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import starfile

from boxnet_tui.errors import StarError
from boxnet_tui.io.star import (
    Picks,
    read_micrograph_names,
    read_picks,
    read_star_document,
    write_picks,
    write_star_document,
)
from tests.conftest import snapshot


def test_round_trip_keeps_coordinates_scores_and_name(tmp_path):
    picks = Picks([10.5, 200.25], [30.0, 40.75], [0.9, 0.5])
    path = tmp_path / "mic_BoxNet.star"
    write_picks(path, picks, "mic.mrc")
    back = read_picks(path)
    np.testing.assert_allclose(back.x, picks.x)
    np.testing.assert_allclose(back.y, picks.y)
    np.testing.assert_allclose(back.score, picks.score)
    assert read_micrograph_names(path) == ["mic.mrc"]


def test_written_file_has_warp_columns_and_angles_when_asked(tmp_path):
    path = tmp_path / "a.star"
    write_picks(path, Picks([1.0], [2.0], [0.7]), "a.mrc", with_angles=True)
    table = starfile.read(path)
    assert list(table.columns) == [
        "rlnCoordinateX",
        "rlnCoordinateY",
        "rlnMicrographName",
        "rlnAutopickFigureOfMerit",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
    ]
    assert table["rlnAngleTilt"].iloc[0] == 0


def test_picks_without_scores_write_no_score_column(tmp_path):
    path = tmp_path / "a.star"
    write_picks(path, Picks([1.0, 2.0], [3.0, 4.0]), "a.mrc")
    assert "rlnAutopickFigureOfMerit" not in starfile.read(path).columns
    assert not read_picks(path).has_scores


def test_empty_picks_round_trip(tmp_path):
    path = tmp_path / "empty.star"
    write_picks(path, Picks(), "a.mrc")
    assert len(read_picks(path)) == 0


def test_reads_named_block_among_others(tmp_path):
    path = tmp_path / "particles.star"
    path.write_text(
        "data_optics\nloop_\n_rlnOpticsGroup\n1\n\n"
        "data_particles\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnMicrographName\n"
        "11.0 12.0 m.mrc\n13.5 14.5 m.mrc\n"
    )
    picks = read_picks(path)
    np.testing.assert_allclose(picks.x, [11.0, 13.5])
    np.testing.assert_allclose(picks.y, [12.0, 14.5])


def test_reads_single_row_key_value_block(tmp_path):
    path = tmp_path / "one.star"
    path.write_text("data_\n_rlnCoordinateX 5.0\n_rlnCoordinateY 6.0\n")
    picks = read_picks(path)
    assert (picks.x[0], picks.y[0]) == (5.0, 6.0)


def test_names_with_spaces_and_unicode(tmp_path):
    path = tmp_path / "grille à 1_manual.star"
    write_picks(path, Picks([1.0], [2.0]), "grille à 1.mrc")
    assert read_micrograph_names(path) == ["grille à 1.mrc"]
    assert len(read_picks(path)) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n3 abc\n", "holds text"),
        ("data_\nloop_\n_rlnCoordinateX\n_rlnMicrographName\n1 a.mrc\n", "no rlnCoordinateX"),
        ("", "empty file"),
        ("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 nan\n", "NaN"),
    ],
)
def test_bad_star_gives_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad_manual.star"
    path.write_text(content)
    before = snapshot(tmp_path)
    with pytest.raises(StarError) as caught:
        read_picks(path)
    text = str(caught.value)
    assert str(path) in text
    assert message in text
    assert "\n" not in text
    assert snapshot(tmp_path) == before


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(StarError, match="no such file"):
        read_picks(tmp_path / "nope.star")
    with pytest.raises(StarError, match="is a folder"):
        read_picks(tmp_path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.star"
    write_picks(path, Picks([1.0], [2.0]), "a.mrc")
    path.chmod(0)
    # root reads any file, so tell the reader what an ordinary user's access check says
    monkeypatch.setattr("boxnet_tui.io.star.os.access", lambda *_: False)
    with pytest.raises(StarError, match="permission denied"):
        read_picks(path)


def test_above_keeps_unscored_and_drops_low():
    picks = Picks([1, 2, 3], [1, 2, 3], [0.2, np.nan, 0.8])
    kept = picks.above(0.5)
    np.testing.assert_array_equal(kept.x, [2, 3])


def test_reads_real_manual_picks(real_folder):
    path = real_folder / "matching" / "Falcon_2012_06_12-14_33_35_0_manual.star"
    picks = read_picks(path)
    assert len(picks) > 100
    assert (picks.x > 0).all() and (picks.x < 2048).all()


def test_a_document_writes_back_every_block_in_its_own_form(tmp_path):
    path = tmp_path / "mic_manual.star"
    path.write_text(
        'data_general\n_rlnImageSizeX 4096\n_rlnMicrographName "a b.mrc"\n\n'
        "data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n1 300.0\n\n"
        "data_particles\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnAnglePsi\n"
        "1.5 2.5 45.0\n3.5 4.5 -10.0\n"
    )
    document = read_star_document(path)
    assert document.table_name == "particles" and document.refusal is None
    edited = document.inserted(
        1, document.row_for({"rlnCoordinateX": 9.0, "rlnCoordinateY": 8.0}, "m")
    )
    write_star_document(path, edited.deleted(0))
    assert len(document.table) == 2  # an edit returns a new document
    text = path.read_text()
    assert "data_general\n\n_rlnImageSizeX" in text  # still key/value pairs, not a loop
    blocks = starfile.read(path, always_dict=True)
    assert list(blocks) == ["general", "optics", "particles"]
    assert blocks["general"] == {"rlnImageSizeX": 4096, "rlnMicrographName": "a b.mrc"}
    assert blocks["optics"]["rlnVoltage"].tolist() == [300.0]
    particles = blocks["particles"]
    assert particles["rlnCoordinateX"].tolist() == [9.0, 3.5]
    assert particles["rlnAnglePsi"].tolist() == [0.0, -10.0]
    np.testing.assert_array_equal(read_picks(path).x, [9.0, 3.5])


def test_a_document_with_two_blocks_of_one_name_reads_but_refuses_a_rewrite(tmp_path):
    path = tmp_path / "twice.star"
    path.write_text(
        "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n\n"
        "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n3 4\n"
    )
    document = read_star_document(path)
    assert document.refusal is not None and "two data blocks named ''" in document.refusal
    assert "\n" not in document.refusal


def test_count_picks_agrees_with_read_picks_or_declines(tmp_path):
    from boxnet_tui.io.star import count_picks

    plain = tmp_path / "plain.star"
    write_picks(plain, Picks([1.0, 2.0], [3.0, 4.0]), "m.mrc")
    assert count_picks(plain) == len(read_picks(plain)) == 2
    relion = tmp_path / "relion.star"
    relion.write_text(
        "data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n1 300\n\n"
        "data_particles\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnOpticsGroup\n"
        "10 20 1\n30 40 1\n50 60 1\n"
    )
    assert count_picks(relion) == len(read_picks(relion)) == 3
    one = tmp_path / "one.star"
    one.write_text("data_\n_rlnCoordinateX 10\n_rlnCoordinateY 20\n")
    assert count_picks(one) is None  # key/value: left to read_picks
    ragged = tmp_path / "ragged.star"
    ragged.write_text("data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n10 20\n30\n")
    assert count_picks(ragged) is None
    assert count_picks(tmp_path / "missing.star") is None
